//! http_response: the response head parser (`parse_head` in src/http/parse.rs) as the response
//! reader (src/http/request.rs) calls it: on everything read so far, again after every read,
//! with MaximumResponseHeadersLength as its limit.
//!
//! The first byte sets a small limit (16 + 4 * (byte & 0x7f)), where the head is cut, and (bit
//! 7) whether the request was HEAD; the rest is what the server sent. With the default limit (64 KiB) a head must lie within the input, end at a
//! line break and parse the same from its own bytes, and any cut of it must wait for more (the
//! reader parses partial input); with the small limit, the verdict must be the default one where
//! the head fits and an error where it does not; never "wait for more" past the limit, or the
//! reader's buffer would grow without end. A parsed head's body framing (`content_length`,
//! `body_length`, on its headers as the response keeps them) must follow RFC 9112 6.3: a length
//! only where every Content-Length says the same digits, chunked only as the last coding.

use apmnet::http::head::Headers;
use apmnet::http::parse::{body_length, content_length, parse_head, BodyLength, Head, HeadError};

const DEFAULT_LIMIT: usize = 64 * 1024;

pub fn run(data: &[u8]) {
    let Some((&knob, buf)) = data.split_first() else { return };
    let small = 16 + 4 * (knob & 0x7f) as usize;

    let full = parse_head(buf, DEFAULT_LIMIT);
    if let Ok(Some(head)) = &full {
        assert!(head.len <= buf.len() && head.len <= DEFAULT_LIMIT, "a head of {} bytes", head.len);
        assert_eq!(buf[head.len - 1], b'\n', "a head ends at a line break");
        assert!((100..=999).contains(&head.status), "status {}", head.status);
        assert!(head.minor_version <= 1);
        assert_eq!(parse_head(&buf[..head.len], DEFAULT_LIMIT).as_ref(), Ok(&Some(head.clone())), "the head alone");
        let cut = head.len * knob as usize / 256;
        assert_eq!(parse_head(&buf[..cut], DEFAULT_LIMIT), Ok(None), "the head cut at {cut} of {}", head.len);
        check_framing(head, knob & 0x80 != 0);
    }
    if buf.len() > DEFAULT_LIMIT {
        assert!(!matches!(full, Ok(None)), "{} bytes without a head wait for more", buf.len());
    }

    let limited = parse_head(buf, small);
    match &full {
        Ok(Some(head)) if head.len <= small => assert_eq!(limited, full, "a head of {} bytes, limit {small}", head.len),
        Ok(Some(_)) => assert_eq!(limited, Err(HeadError::TooLong), "a head past the limit {small}"),
        Ok(None) if buf.len() > small => assert_eq!(limited, Err(HeadError::TooLong), "{} bytes past the limit {small}", buf.len()),
        Ok(None) => assert_eq!(limited, Ok(None)),
        Err(_) => assert!(limited.is_err(), "limit {small}: {limited:?} where the default limit gives {full:?}"),
    }
}

/// The values of `name`'s headers that are not empty.
fn values<'a>(head: &'a Head, name: &str) -> Vec<&'a str> {
    head.headers.iter().filter(|(n, v)| n.eq_ignore_ascii_case(name) && !v.is_empty()).map(|(_, v)| v.as_str()).collect()
}

fn check_framing(head: &Head, head_request: bool) {
    let mut headers = Headers::default();
    for (n, v) in &head.headers {
        headers.add(n, v.clone());
    }
    let length = content_length(headers.get("Content-Length"));
    let present = head.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("Content-Length"));
    let pieces: Vec<&str> = values(head, "Content-Length").iter().flat_map(|v| v.split(',')).map(str::trim).collect();
    let expected = if !present {
        Ok(None)
    } else {
        let digits = !pieces.is_empty() && pieces.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        let numbers: Vec<Option<u64>> = pieces.iter().map(|p| p.parse::<u64>().ok().filter(|&n| n <= i64::MAX as u64)).collect();
        match numbers.first() {
            Some(&Some(n)) if digits && numbers.iter().all(|&m| m == Some(n)) => Ok(Some(n)),
            _ => Err(()),
        }
    };
    assert_eq!(length.map_err(|_| ()), expected, "Content-Length {pieces:?}");
    let te = values(head, "Transfer-Encoding");
    let chunked = te.last().and_then(|v| v.split(',').next_back()).is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
    let framing = body_length(head.status, head_request, headers.get("Transfer-Encoding"), expected.unwrap_or(None));
    let no_body = head_request || head.status < 200 || head.status == 204 || head.status == 304;
    let want = match expected.unwrap_or(None) {
        _ if no_body => BodyLength::Empty,
        _ if chunked => BodyLength::Chunked,
        Some(n) => BodyLength::Length(n),
        None => BodyLength::UntilClose,
    };
    assert_eq!(framing, want, "status {}, Transfer-Encoding {te:?}", head.status);
}
