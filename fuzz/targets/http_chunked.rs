//! http_chunked: the chunked transfer coding (`ChunkDecoder` and `decode_chunked` in
//! src/http/parse.rs), a stateful decoder over whatever pieces the connection delivers.
//!
//! The first byte sets a split point (byte / 255 of the way through the rest) and the response
//! reader's buffer size (src/http/response.rs asks `feed_at_most` for at most that much data,
//! and reads the data of a chunk straight into the caller's buffer past the decoder, reporting
//! it with `took_data`); the rest is the body. Fed at once, in two pieces at the split point, and
//! as the reader feeds it, the decoder must find the same data and give the same verdict (an
//! error, the end of the body after the same number of bytes, or wanting more) as
//! `decode_chunked`; every `Feed` must stay within its input.

use apmnet::http::parse::{decode_chunked, ChunkDecoder};

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Error,
    /// The body ended after this many bytes.
    Done(usize),
    More,
}

/// Feeds `pieces` in turn (each until it is used up, the body ends or the decoder fails), asking
/// for at most `max_data` data bytes a call, and when `direct` takes the data of a chunk past the
/// decoder as the reader does (up to `max_data` bytes, reported with `took_data`).
fn decode(pieces: &[&[u8]], max_data: usize, direct: bool) -> (Vec<u8>, Verdict) {
    let mut d = ChunkDecoder::default();
    let mut data = Vec::new();
    let mut used = 0;
    for piece in pieces {
        let mut at = 0;
        while at < piece.len() && !d.is_done() {
            if let (true, Some(left)) = (direct, d.data_left()) {
                assert!(left > 0, "inside a chunk with no data left");
                let n = (piece.len() - at).min(max_data).min(usize::try_from(left).unwrap_or(usize::MAX));
                data.extend_from_slice(&piece[at..at + n]);
                d.took_data(n);
                at += n;
                continue;
            }
            let Ok(f) = d.feed_at_most(&piece[at..], max_data) else { return (data, Verdict::Error) };
            let rest = piece.len() - at;
            assert!(f.consumed <= rest && f.data.start <= f.data.end && f.data.end <= f.consumed, "{f:?} of {rest} bytes");
            assert!(f.data.len() <= max_data, "{} data bytes, asked for {max_data}", f.data.len());
            assert!(f.data.is_empty() || f.data.end == f.consumed, "feed goes no further than its data");
            assert!(f.consumed > 0 || d.is_done(), "feed consumed nothing of {rest} bytes");
            data.extend_from_slice(&piece[at + f.data.start..at + f.data.end]);
            at += f.consumed;
        }
        used += at;
        if d.is_done() {
            return (data, Verdict::Done(used));
        }
    }
    (data, Verdict::More)
}

pub fn run(data: &[u8]) {
    let Some((&knob, body)) = data.split_first() else { return };
    let split = body.len() * knob as usize / 255;
    let buffer = 1 + (knob as usize % 16) * 37;

    let whole = decode(&[body], usize::MAX, false);
    let expected = match decode_chunked(body) {
        Err(_) => Verdict::Error,
        Ok(Some((d, used))) => {
            assert_eq!(d, whole.0, "decode_chunked's data");
            Verdict::Done(used)
        }
        Ok(None) => Verdict::More,
    };
    assert_eq!(whole.1, expected, "fed at once against decode_chunked");
    let (head, tail) = body.split_at(split);
    assert_eq!(decode(&[head, tail], usize::MAX, false), whole, "in two pieces split at {split}");
    assert_eq!(decode(&[head, tail], buffer, true), whole, "as the reader feeds it, {buffer}-byte buffer, split at {split}");
}
