//! http_response: the response head parser (`parse_head` in src/http/parse.rs) as the response
//! reader (src/http/request.rs) calls it: on everything read so far, again after every read,
//! with MaximumResponseHeadersLength as its limit.
//!
//! The first byte sets a small limit (16 + 4 * byte) and where the head is cut; the rest is what
//! the server sent. With the default limit (64 KiB) a head must lie within the input, end at a
//! line break and parse the same from its own bytes, and any cut of it must wait for more (the
//! reader parses partial input); with the small limit, the verdict must be the default one where
//! the head fits and an error where it does not; never "wait for more" past the limit, or the
//! reader's buffer would grow without end.

use apmnet::http::parse::{parse_head, HeadError};

const DEFAULT_LIMIT: usize = 64 * 1024;

pub fn run(data: &[u8]) {
    let Some((&knob, buf)) = data.split_first() else { return };
    let small = 16 + 4 * knob as usize;

    let full = parse_head(buf, DEFAULT_LIMIT);
    if let Ok(Some(head)) = &full {
        assert!(head.len <= buf.len() && head.len <= DEFAULT_LIMIT, "a head of {} bytes", head.len);
        assert_eq!(buf[head.len - 1], b'\n', "a head ends at a line break");
        assert!((100..=999).contains(&head.status), "status {}", head.status);
        assert!(head.minor_version <= 1);
        assert_eq!(parse_head(&buf[..head.len], DEFAULT_LIMIT).as_ref(), Ok(&Some(head.clone())), "the head alone");
        let cut = head.len * knob as usize / 256;
        assert_eq!(parse_head(&buf[..cut], DEFAULT_LIMIT), Ok(None), "the head cut at {cut} of {}", head.len);
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
