//! Pure parsers of what an HTTP/1.x server sends: the response head (through httparse), how its
//! body is delimited, and the chunked transfer coding. No I/O, no allocation beyond the parsed
//! head; the fuzz targets (http_response, http_chunked) and the seed-corpus tests call these
//! functions directly.

use std::ops::Range;

/// A parsed response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    /// Bytes of the buffer the head took (status line, headers and the empty line).
    pub len: usize,
}

/// Why a response head is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// The status line is not `HTTP/1.x NNN reason`.
    StatusLine,
    /// A header line is malformed; the detail names how.
    Header(&'static str),
    /// The head is longer than the limit (MaximumResponseHeadersLength).
    TooLong,
}

/// Parses a response head from the start of `buf`: Ok(None) when more bytes are needed (and the
/// limit is not reached yet). `limit` bounds the whole head in bytes, every line included.
pub fn parse_head(buf: &[u8], limit: usize) -> Result<Option<Head>, HeadError> {
    // Every header takes at least one line: the line breaks bound their number.
    let lines = buf.iter().filter(|&&b| b == b'\n').count();
    let mut headers = vec![httparse::EMPTY_HEADER; lines.clamp(1, limit / 2 + 1)];
    let mut resp = httparse::Response::new(&mut headers);
    let status = httparse::ParserConfig::default()
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .parse_response(&mut resp, buf);
    match status {
        Ok(httparse::Status::Partial) => {
            if buf.len() > limit {
                Err(HeadError::TooLong)
            } else {
                Ok(None)
            }
        }
        Ok(httparse::Status::Complete(len)) => {
            if len > limit {
                return Err(HeadError::TooLong);
            }
            // httparse takes any three digits; "HTTP/1.1 061" is no status (RFC 9110 15: 100 to
            // 599, .NET reads up to 999), and would otherwise be read as a final response below
            // 200, without a body.
            if resp.code.is_some_and(|c| c < 100) {
                return Err(HeadError::StatusLine);
            }
            let headers = resp
                .headers
                .iter()
                .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).trim().to_string()))
                .collect();
            Ok(Some(Head {
                minor_version: resp.version.unwrap_or(1),
                status: resp.code.unwrap_or(0),
                reason: resp.reason.unwrap_or("").to_string(),
                headers,
                len,
            }))
        }
        Err(e) => Err(match e {
            httparse::Error::Status | httparse::Error::Version => HeadError::StatusLine,
            httparse::Error::NewLine if !buf.contains(&b'\n') => HeadError::StatusLine,
            httparse::Error::HeaderName => HeadError::Header("Header name is invalid"),
            httparse::Error::HeaderValue => HeadError::Header("Header value contains invalid characters"),
            httparse::Error::NewLine => HeadError::Header("CR must be followed by LF"),
            httparse::Error::TooManyHeaders => HeadError::TooLong,
            httparse::Error::Token => HeadError::StatusLine,
        }),
    }
}

/// How a response's body is delimited (RFC 9112 section 6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLength {
    /// HEAD, 1xx, 204 and 304 responses.
    Empty,
    Chunked,
    Length(u64),
    /// Read to the end of the connection.
    UntilClose,
}

/// The Content-Length header's value is not a length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadContentLength;

/// The Content-Length value (its repeats joined by commas, as `Headers` keeps them): a length
/// repeated must be the same each time, and is digits only (RFC 9110 8.6; `u64::from_str`
/// alone would also take "+5"), at most `i64::MAX` (ContentLength is a long: a larger one read
/// as a negative number).
pub fn content_length(value: Option<&str>) -> Result<Option<u64>, BadContentLength> {
    let Some(v) = value else { return Ok(None) };
    let mut values = v.split(',').map(|x| {
        let x = x.trim();
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadContentLength);
        }
        x.parse::<u64>().ok().filter(|&n| n <= i64::MAX as u64).ok_or(BadContentLength)
    });
    let first = values.next().unwrap_or(Err(BadContentLength))?;
    if !values.all(|r| r == Ok(first)) {
        return Err(BadContentLength);
    }
    Ok(Some(first))
}

/// The body's framing, from the status, whether the request was HEAD, the Transfer-Encoding
/// value and the Content-Length: chunked wins over a length when it is the last coding.
pub fn body_length(status: u16, head_request: bool, transfer_encoding: Option<&str>, length: Option<u64>) -> BodyLength {
    let chunked =
        transfer_encoding.is_some_and(|v| v.rsplit(',').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked")));
    if head_request || status < 200 || status == 204 || status == 304 {
        BodyLength::Empty
    } else if chunked {
        BodyLength::Chunked
    } else if let Some(n) = length {
        BodyLength::Length(n)
    } else {
        BodyLength::UntilClose
    }
}

/// A chunked body that does not follow RFC 9112 section 7.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkError;

/// Longest chunk-size or trailer line accepted (with its extensions).
const MAX_CHUNK_LINE: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// Reading a chunk-size line (`line` bytes of it seen).
    Size { line: usize },
    /// In the data of a chunk, `left` bytes to go.
    Data { left: u64 },
    /// After a chunk's data: its CRLF (`cr`: the CR was seen).
    DataEnd { cr: bool },
    /// In the trailer section: a line of `line` bytes so far.
    Trailer { line: usize },
    Done,
}

/// What `ChunkDecoder::feed` found in its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feed {
    /// Input bytes consumed (framing and data).
    pub consumed: usize,
    /// Body data found, as a range of the input (within `consumed`).
    pub data: Range<usize>,
}

/// The chunked transfer coding, decoded incrementally over whatever slices arrive.
#[derive(Clone, Debug)]
pub struct ChunkDecoder {
    state: ChunkState,
    /// The chunk-size line being read (it may span reads).
    line: Vec<u8>,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        ChunkDecoder { state: ChunkState::Size { line: 0 }, line: Vec::new() }
    }
}

impl ChunkDecoder {
    /// True once the last chunk and the trailer section were read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// The data bytes left in the current chunk, when the decoder is inside one: the caller may
    /// read up to that many straight into its buffer and report them with `took_data`.
    pub fn data_left(&self) -> Option<u64> {
        match self.state {
            ChunkState::Data { left } => Some(left),
            _ => None,
        }
    }

    /// `n` data bytes of the current chunk were read past the decoder.
    pub fn took_data(&mut self, n: usize) {
        if let ChunkState::Data { left } = self.state {
            let left = left - (n as u64).min(left);
            self.state = if left == 0 { ChunkState::DataEnd { cr: false } } else { ChunkState::Data { left } };
        }
    }

    /// Consumes framing from `input` up to the first data bytes (which it returns without
    /// going past them), the end of the body, or the end of the input.
    pub fn feed(&mut self, input: &[u8]) -> Result<Feed, ChunkError> {
        self.feed_at_most(input, usize::MAX)
    }

    /// `feed`, returning (and consuming) at most `max_data` data bytes.
    pub fn feed_at_most(&mut self, input: &[u8], max_data: usize) -> Result<Feed, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                ChunkState::Done => break,
                ChunkState::Data { left } => {
                    let n = (input.len() - i).min(left.min(usize::MAX as u64) as usize).min(max_data);
                    self.took_data(n);
                    return Ok(Feed { consumed: i + n, data: i..i + n });
                }
                ChunkState::DataEnd { cr } => {
                    match (cr, input[i]) {
                        (false, b'\r') => self.state = ChunkState::DataEnd { cr: true },
                        (_, b'\n') => self.state = ChunkState::Size { line: 0 },
                        _ => return Err(ChunkError),
                    }
                    i += 1;
                }
                ChunkState::Size { line } => {
                    let b = input[i];
                    i += 1;
                    if b != b'\n' {
                        if line + 1 > MAX_CHUNK_LINE {
                            return Err(ChunkError);
                        }
                        self.line.push(b);
                        self.state = ChunkState::Size { line: line + 1 };
                        continue;
                    }
                    self.line.push(b'\n');
                    let size = chunk_size(&self.line)?;
                    self.line.clear();
                    self.state = if size == 0 { ChunkState::Trailer { line: 0 } } else { ChunkState::Data { left: size } };
                }
                ChunkState::Trailer { line } => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\n' if line == 0 => self.state = ChunkState::Done,
                        b'\n' => self.state = ChunkState::Trailer { line: 0 },
                        // A CR alone does not start a trailer field.
                        b'\r' if line == 0 => {}
                        _ if line + 1 > MAX_CHUNK_LINE => return Err(ChunkError),
                        _ => self.state = ChunkState::Trailer { line: line + 1 },
                    }
                }
            }
        }
        Ok(Feed { consumed: i, data: i..i })
    }
}

/// The size of a chunk-size line (hex digits, optional `;extensions`, CRLF or LF).
fn chunk_size(line: &[u8]) -> Result<u64, ChunkError> {
    let mut with_crlf;
    let line = if line.ends_with(b"\r\n") {
        line
    } else {
        with_crlf = line[..line.len() - 1].to_vec();
        with_crlf.extend_from_slice(b"\r\n");
        &with_crlf[..]
    };
    match httparse::parse_chunk_size(line) {
        Ok(httparse::Status::Complete((_, size))) => Ok(size),
        _ => Err(ChunkError),
    }
}

/// Decodes a whole chunked body in one slice (tests and fuzzing): the data, and the bytes the
/// body took; Ok(None) when the body is not complete.
pub fn decode_chunked(input: &[u8]) -> Result<Option<(Vec<u8>, usize)>, ChunkError> {
    let mut d = ChunkDecoder::default();
    let mut out = Vec::new();
    let mut at = 0;
    while !d.is_done() && at < input.len() {
        let f = d.feed(&input[at..])?;
        out.extend_from_slice(&input[at + f.data.start..at + f.data.end]);
        at += f.consumed;
    }
    Ok(d.is_done().then_some((out, at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 64 * 1024;

    #[test]
    fn a_head_is_parsed_with_its_headers_in_order() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello";
        let h = parse_head(raw, LIMIT).unwrap().unwrap();
        assert_eq!((h.minor_version, h.status, h.reason.as_str()), (1, 200, "OK"));
        assert_eq!(h.headers.len(), 3);
        assert_eq!(h.headers[1], ("X-A".to_string(), "1".to_string()));
        assert_eq!(&raw[h.len..], b"hello");
    }

    #[test]
    fn partial_heads_wait_and_bad_or_long_ones_fail() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nA: b\r\n", LIMIT), Ok(None));
        assert_eq!(parse_head(b"HTT", LIMIT), Ok(None));
        assert_eq!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n", LIMIT), Err(HeadError::StatusLine));
        assert_eq!(parse_head(b"HTTP/1.1 2x0 OK\r\n\r\n", LIMIT), Err(HeadError::StatusLine));
        // Three digits, but no status (found by the http_response fuzz target).
        assert_eq!(parse_head(b"HTTP/1.0 061 \n\r\n", LIMIT), Err(HeadError::StatusLine));
        assert_eq!(parse_head(b"HTTP/1.1 099 X\r\n\r\n", LIMIT), Err(HeadError::StatusLine));
        assert_eq!(parse_head(b"HTTP/1.1 100 Continue\r\n\r\n", LIMIT).unwrap().unwrap().status, 100);
        assert!(matches!(parse_head(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", LIMIT), Err(HeadError::Header(_))));
        let mut long = b"HTTP/1.1 200 OK\r\n".to_vec();
        long.extend(std::iter::repeat_n(b'a', 100));
        assert_eq!(parse_head(&long, 64), Err(HeadError::TooLong));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..2000 {
            many.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&many, LIMIT).unwrap().unwrap().headers.len(), 2000);
        assert_eq!(parse_head(&many, 1024), Err(HeadError::TooLong));
    }

    #[test]
    fn the_body_length_follows_rfc_9112() {
        use BodyLength::*;
        let te = |v| body_length(200, false, Some(v), Some(5));
        assert_eq!(te("chunked"), Chunked);
        assert_eq!(te("gzip, Chunked "), Chunked);
        assert_eq!(te("chunked, gzip"), Length(5));
        assert_eq!(body_length(200, false, None, None), UntilClose);
        for (status, head) in [(200, true), (100, false), (204, false), (304, false)] {
            assert_eq!(body_length(status, head, Some("chunked"), Some(5)), Empty);
        }
        let cl = |v| content_length(Some(v));
        assert_eq!(content_length(None), Ok(None));
        assert_eq!(cl("5"), Ok(Some(5)));
        assert_eq!(cl(" 5 ,5"), Ok(Some(5)));
        assert_eq!(cl("9223372036854775807"), Ok(Some(i64::MAX as u64)));
        for bad in ["5,6", "", "5,", "+5", "-1", "0x10", "5 5", "9223372036854775808", "99999999999999999999999999"] {
            assert_eq!(cl(bad), Err(BadContentLength), "{bad:?}");
        }
    }

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let body = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let (data, used) = decode_chunked(body).unwrap().unwrap();
        assert_eq!(data, b"hello  world");
        assert_eq!(&body[used..], b"NEXT");
        for split in 1..body.len() {
            let mut d = ChunkDecoder::default();
            let mut out = Vec::new();
            for part in [&body[..split], &body[split..]] {
                let mut at = 0;
                while at < part.len() && !d.is_done() {
                    let f = d.feed(&part[at..]).unwrap();
                    out.extend_from_slice(&part[at + f.data.start..at + f.data.end]);
                    at += f.consumed;
                }
            }
            assert!(d.is_done(), "split at {split}");
            assert_eq!(out, b"hello  world", "split at {split}");
        }
    }

    #[test]
    fn bad_chunks_fail() {
        for bad in [&b"zz\r\nhello\r\n0\r\n\r\n"[..], b"5\r\nhelloXX0\r\n\r\n", b"ffffffffffffffffffff\r\n"] {
            assert_eq!(decode_chunked(bad), Err(ChunkError), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(decode_chunked(b"5\r\nhel"), Ok(None));
    }

    /// A fuzz-style sweep over a seed set: every prefix, every one-byte mutation of each seed,
    /// through both parsers; nothing may panic and every success must be self-consistent.
    #[test]
    fn the_parsers_survive_mutations_of_the_seed_set() {
        let seeds: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
            b"HTTP/1.0 404 Not Found\r\nConnection: close\r\n\r\n",
            b"HTTP/1.1 301 Moved\r\nLocation: /x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            b"3\r\nabc\r\n0\r\n\r\n",
            b"a;x=y\r\n0123456789\r\n0\r\nT: v\r\n\r\n",
        ];
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for seed in seeds {
            for cut in 0..=seed.len() {
                check(&seed[..cut]);
            }
            for i in 0..seed.len() {
                for _ in 0..24 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let mut m = seed.to_vec();
                    m[i] = rng as u8;
                    check(&m);
                }
            }
        }
        fn check(input: &[u8]) {
            if let Ok(Some(h)) = parse_head(input, 1024) {
                assert!(h.len <= input.len());
            }
            if let Ok(Some((data, used))) = decode_chunked(input) {
                assert!(used <= input.len() && data.len() <= used);
            }
        }
    }
}
