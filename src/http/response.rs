//! HttpWebResponse and its body stream.
//!
//! The body is framed by Content-Length, the chunked coding or the end of the connection
//! (RFC 9112 section 6.3); HEAD, 1xx, 204 and 304 responses have none. Where nothing needs
//! decoding, reads go straight into the caller's buffer (at most what is left of the body or of
//! the chunk); bytes that arrived with the head, chunk framing and compressed bodies go through
//! a buffer of the stream. A body read to its end gives its connection back to the pool when both
//! sides keep it alive; closing the stream before the end closes the connection.

use super::connection::Connection;
use super::head::Headers;
use super::io::{self, timed, Mode, Then};
use super::parse::{body_length, content_length, BodyLength, ChunkDecoder, Head};
use super::pool::Lease;
use super::{decompression, msg, web_error, web_status, STREAM_CLASS_NAME};
use crate::error::{code, socket_error, Error, Result};
use crate::op::{Completion, Value};
use crate::stream::{ConstBuf, MutBuf, Stream};
use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};
use parking_lot::Mutex;
use std::io::Write;
use std::sync::{Arc, Weak};

pub const CLASS_NAME: &str = "System.Net.HttpWebResponse";

/// Bytes read from the connection at a time when they go through the stream's buffer.
const RAW_CHUNK: usize = 16 * 1024;

pub struct HttpWebResponse {
    pub status: u16,
    pub description: String,
    pub headers: Headers,
    /// 0: HTTP/1.0, 1: HTTP/1.1.
    pub minor_version: u8,
    /// ResponseUri: the URI of the response, after redirects.
    pub response_uri: String,
    pub method: String,
    /// ContentLength: the Content-Length header, -1 when absent or when the body is decompressed.
    pub content_length: i64,
    pub stream: Arc<ResponseStream>,
}

impl HttpWebResponse {
    /// ContentType: the Content-Type header, "" when absent.
    pub fn content_type(&self) -> &str {
        self.headers.get("Content-Type").unwrap_or("")
    }

    /// Close: closes the response stream (its connection goes back to the pool only when the
    /// body was read to its end).
    pub fn close(&self) {
        let _ = self.stream.close();
    }
}

/// How the body ends.
#[derive(Debug)]
enum Framing {
    Empty,
    Length(u64),
    Chunked(ChunkDecoder),
    Close,
}

impl Framing {
    fn done(&self) -> bool {
        match self {
            Framing::Empty => true,
            Framing::Length(left) => *left == 0,
            Framing::Chunked(d) => d.is_done(),
            Framing::Close => false,
        }
    }
}

enum Decoder {
    /// deflate: zlib-wrapped (RFC 9110's "deflate") or raw, told apart by the first two bytes.
    Sniff(Vec<u8>),
    Gzip(GzDecoder<Vec<u8>>),
    Zlib(ZlibDecoder<Vec<u8>>),
    Raw(DeflateDecoder<Vec<u8>>),
}

impl Decoder {
    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Decoder::Sniff(seen) => {
                seen.extend_from_slice(data);
                if seen.len() >= 2 {
                    self.decide()?;
                }
                Ok(())
            }
            Decoder::Gzip(d) => d.write_all(data),
            Decoder::Zlib(d) => d.write_all(data),
            Decoder::Raw(d) => d.write_all(data),
        }
    }

    fn decide(&mut self) -> std::io::Result<()> {
        let Decoder::Sniff(seen) = self else { return Ok(()) };
        let seen = std::mem::take(seen);
        let zlib = seen.len() >= 2
            && seen[0] & 0x0f == 8
            && seen[0] >> 4 <= 7
            && (u16::from(seen[0]) << 8 | u16::from(seen[1])) % 31 == 0;
        *self = if zlib { Decoder::Zlib(ZlibDecoder::new(Vec::new())) } else { Decoder::Raw(DeflateDecoder::new(Vec::new())) };
        self.write(&seen)
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.decide()?;
        match self {
            Decoder::Sniff(_) => Ok(()),
            Decoder::Gzip(d) => d.try_finish(),
            Decoder::Zlib(d) => d.try_finish(),
            Decoder::Raw(d) => d.try_finish(),
        }
    }

    fn output(&mut self) -> &mut Vec<u8> {
        match self {
            Decoder::Sniff(_) => unreachable!("no output before the format is known"),
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Zlib(d) => d.get_mut(),
            Decoder::Raw(d) => d.get_mut(),
        }
    }

    fn take_output(&mut self, into: &mut Vec<u8>) {
        if !matches!(self, Decoder::Sniff(_)) {
            into.append(self.output());
        }
    }
}

struct Body {
    lease: Option<Lease>,
    framing: Framing,
    /// Bytes read from the connection and not yet framed: raw[start..end].
    raw: Vec<u8>,
    start: usize,
    end: usize,
    decoder: Option<Decoder>,
    /// Decoded bytes not yet handed out: out[out_at..].
    out: Vec<u8>,
    out_at: usize,
    /// The connection may be reused once the body was read to its end.
    reusable: bool,
    reading: bool,
    closed: bool,
    eof: bool,
    failed: Option<Error>,
    /// The lease to give back or drop once the lock is released (that wakes a waiting request).
    release: Option<(Lease, bool)>,
    /// The request keeps the connection once the body is read (the next leg of a
    /// connection-bound authentication goes on it): `held` gets the lease, not the pool.
    hold: bool,
    held: Option<Lease>,
}

impl Body {
    /// The body was read to its end: the connection goes back to the pool or is closed.
    fn finish(&mut self) {
        self.eof = true;
        if let Some(lease) = self.lease.take() {
            let keep = self.reusable && self.start == self.end && !matches!(self.framing, Framing::Close);
            if keep && self.hold {
                self.held = Some(lease);
            } else {
                self.release = Some((lease, keep));
            }
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = Some(e.clone());
        if let Some(lease) = self.lease.take() {
            self.release = Some((lease, false));
        }
        e
    }
}

/// Gives back or drops the lease `Body` set aside, outside its lock.
fn release(r: Option<(Lease, bool)>) {
    match r {
        Some((lease, true)) => lease.keep(),
        Some((lease, false)) => drop(lease),
        None => {}
    }
}

/// The response stream (.NET's ConnectStream of a response): read-only.
pub struct ResponseStream {
    me: Weak<ResponseStream>,
    conn: Option<Arc<Connection>>,
    rw_timeout_ms: i32,
    body: Mutex<Body>,
}

fn read_error(text: &str, web: i32) -> Error {
    Error::new(code::IO, format!("Unable to read data from the transport connection: {text}"))
        .with(|fail| fail.web_status = web)
}

fn chunk_error() -> Error {
    Error::new(code::IO, msg::protocol_violation("ResponseBody", Some("Response chunk format is invalid")))
        .with(|fail| fail.web_status = web_status::SERVER_PROTOCOL_VIOLATION)
}

fn rw_timeout() -> Error {
    read_error("The operation has timed out.", web_status::TIMEOUT)
        .with(|fail| fail.socket_error = socket_error::TIMED_OUT)
}

/// What the request tells the response about itself.
pub struct Exchange {
    pub method: String,
    pub response_uri: String,
    pub decompression: i32,
    pub rw_timeout_ms: i32,
    pub keep_alive: bool,
    /// Keep the connection for the request once the body is read (see `drain_connection`).
    pub hold: bool,
}

fn has_token(headers: &Headers, name: &str, token: &str) -> bool {
    headers.get(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Whether the server keeps the connection open after this response.
pub fn server_keeps_alive(head: &Head, headers: &Headers) -> bool {
    if has_token(headers, "Connection", "close") {
        return false;
    }
    head.minor_version >= 1 || has_token(headers, "Connection", "keep-alive")
}

impl HttpWebResponse {
    /// The response whose head is `head`; `leftover` holds the bytes that came after the head.
    pub fn new(head: Head, lease: Lease, leftover: Vec<u8>, x: &Exchange) -> Result<Arc<HttpWebResponse>> {
        let mut headers = Headers::default();
        for (n, v) in &head.headers {
            headers.add(n, v.clone());
        }
        let length = content_length(headers.get("Content-Length")).map_err(|_| {
            web_error(
                web_status::SERVER_PROTOCOL_VIOLATION,
                msg::protocol_violation("ResponseHeader", Some("Content-Length header value is invalid")),
                None,
            )
        })?;
        let delimited =
            body_length(head.status, x.method.eq_ignore_ascii_case("HEAD"), headers.get("Transfer-Encoding"), length);
        let no_body = delimited == BodyLength::Empty;
        let framing = match delimited {
            BodyLength::Empty => Framing::Empty,
            BodyLength::Chunked => Framing::Chunked(ChunkDecoder::default()),
            BodyLength::Length(n) => Framing::Length(n),
            BodyLength::UntilClose => Framing::Close,
        };
        let encoding = headers.get("Content-Encoding").map(|e| e.trim().to_ascii_lowercase());
        let decoder = match encoding.as_deref() {
            _ if no_body => None,
            Some("gzip") if x.decompression & decompression::GZIP != 0 => Some(Decoder::Gzip(GzDecoder::new(Vec::new()))),
            Some("deflate") if x.decompression & decompression::DEFLATE != 0 => Some(Decoder::Sniff(Vec::new())),
            _ => None,
        };
        let content_length = match (&decoder, length) {
            (None, Some(n)) => n as i64,
            _ => -1,
        };
        let reusable = x.keep_alive && server_keeps_alive(&head, &headers);
        let conn = lease.conn.clone();
        let end = leftover.len();
        let mut body = Body {
            lease: Some(lease),
            framing,
            raw: leftover,
            start: 0,
            end,
            decoder,
            out: Vec::new(),
            out_at: 0,
            reusable,
            reading: false,
            closed: false,
            eof: false,
            failed: None,
            release: None,
            hold: x.hold,
            held: None,
        };
        if body.framing.done() && body.decoder.is_none() {
            body.finish();
        }
        release(body.release.take());
        let stream =
            Arc::new_cyclic(|me| ResponseStream { me: me.clone(), conn, rw_timeout_ms: x.rw_timeout_ms, body: Mutex::new(body) });
        Ok(Arc::new(HttpWebResponse {
            status: head.status,
            description: head.reason,
            headers,
            minor_version: head.minor_version,
            response_uri: x.response_uri.clone(),
            method: x.method.clone(),
            content_length,
            stream,
        }))
    }
}

/// What one pass over the stream's state found to do.
enum Next {
    Done(Result<usize>),
    /// Read from the connection into the caller's buffer (at most this many bytes).
    Direct(usize),
    /// Read from the connection into the stream's buffer, then look again.
    Fill,
}

impl ResponseStream {
    fn arc(&self) -> Arc<ResponseStream> {
        self.me.upgrade().expect("a response stream in use is alive")
    }

    /// Hands out what the buffers hold, or says where the next bytes come from.
    fn next(&self, b: &mut Body, buf: MutBuf) -> Next {
        loop {
            if b.out_at < b.out.len() {
                let n = buf.len.min(b.out.len() - b.out_at);
                // SAFETY: the caller's buffer holds buf.len bytes (the Begin contract).
                unsafe { std::ptr::copy_nonoverlapping(b.out.as_ptr().add(b.out_at), buf.ptr, n) };
                b.out_at += n;
                if b.out_at == b.out.len() {
                    b.out.clear();
                    b.out_at = 0;
                }
                return Next::Done(Ok(n));
            }
            if b.eof {
                return Next::Done(Ok(0));
            }
            if b.framing.done() {
                if let Some(d) = b.decoder.as_mut() {
                    let r = d.finish();
                    d.take_output(&mut b.out);
                    b.decoder = None;
                    if let Err(e) = r {
                        return Next::Done(Err(b.fail(decode_error(e))));
                    }
                    continue;
                }
                b.finish();
                return Next::Done(Ok(0));
            }
            // Frame what the buffer holds.
            if b.start < b.end {
                let limit = if b.decoder.is_some() { usize::MAX } else { buf.len };
                let avail = b.end - b.start;
                let (consumed, data) = match &mut b.framing {
                    Framing::Length(left) => {
                        let n = avail.min(limit).min(usize::try_from(*left).unwrap_or(usize::MAX));
                        *left -= n as u64;
                        (n, 0..n)
                    }
                    Framing::Close => {
                        let n = avail.min(limit);
                        (n, 0..n)
                    }
                    Framing::Chunked(d) => match d.feed_at_most(&b.raw[b.start..b.end], limit) {
                        Ok(f) => (f.consumed, f.data),
                        Err(_) => return Next::Done(Err(b.fail(chunk_error()))),
                    },
                    Framing::Empty => (avail, 0..0),
                };
                let at = b.start;
                b.start += consumed;
                if b.start == b.end {
                    b.start = 0;
                    b.end = 0;
                }
                if data.is_empty() {
                    continue;
                }
                let data = at + data.start..at + data.end;
                match b.decoder.as_mut() {
                    Some(d) => {
                        let r = d.write(&b.raw[data]);
                        d.take_output(&mut b.out);
                        if let Err(e) = r {
                            return Next::Done(Err(b.fail(decode_error(e))));
                        }
                        continue;
                    }
                    None => {
                        let n = data.len();
                        // SAFETY: n <= buf.len (the limit above); the caller's buffer holds it.
                        unsafe { std::ptr::copy_nonoverlapping(b.raw.as_ptr().add(data.start), buf.ptr, n) };
                        if b.framing.done() {
                            b.finish();
                        }
                        return Next::Done(Ok(n));
                    }
                }
            }
            if b.decoder.is_none() {
                let direct = match &b.framing {
                    Framing::Length(left) => Some(usize::try_from(*left).unwrap_or(usize::MAX)),
                    Framing::Close => Some(usize::MAX),
                    Framing::Chunked(d) => d.data_left().map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
                    Framing::Empty => None,
                };
                if let Some(max) = direct {
                    return Next::Direct(buf.len.min(max));
                }
            }
            return Next::Fill;
        }
    }

    fn read_step(self: Arc<Self>, buf: MutBuf, mode: Mode, then: Then<usize>) {
        let (next, set_aside) = {
            let mut b = self.body.lock();
            if b.closed {
                return then(Err(Error::disposed(STREAM_CLASS_NAME)));
            }
            if let Some(e) = &b.failed {
                return then(Err(e.clone()));
            }
            let next = self.next(&mut b, buf);
            if let Next::Fill = next {
                if b.start > 0 {
                    let (start, end) = (b.start, b.end);
                    b.raw.copy_within(start..end, 0);
                    b.end -= start;
                    b.start = 0;
                }
                if b.end == b.raw.len() {
                    let grown = b.raw.len() + RAW_CHUNK;
                    b.raw.resize(grown, 0);
                }
            }
            (next, b.release.take())
        };
        release(set_aside);
        let Some(conn) = self.conn.clone() else { return then(Ok(0)) };
        let target = match next {
            Next::Done(r) => return then(r),
            Next::Direct(n) => MutBuf { ptr: buf.ptr, len: n },
            Next::Fill => {
                let b = self.body.lock();
                // SAFETY: the spare room of the stream's own buffer; one read at a time uses it.
                MutBuf { ptr: unsafe { b.raw.as_ptr().add(b.end) as *mut u8 }, len: b.raw.len() - b.end }
            }
        };
        let direct = matches!(next, Next::Direct(_));
        let me = self.clone();
        let c = conn.clone();
        timed(
            mode,
            self.rw_timeout_ms,
            rw_timeout,
            move || c.close(),
            move |done| io::read(&conn.stream, target, mode, done),
            move |r: Result<usize>| me.after_read(r, direct, buf, mode, then),
        );
    }

    fn after_read(self: Arc<Self>, r: Result<usize>, direct: bool, buf: MutBuf, mode: Mode, then: Then<usize>) {
        let (r, set_aside) = {
            let mut b = self.body.lock();
            let r = self.account(&mut b, r, direct);
            (r, b.release.take())
        };
        release(set_aside);
        match r {
            Some(r) => then(r),
            None => self.read_step(buf, mode, then),
        }
    }

    /// Records what a read from the connection brought; Some: the read's outcome for the
    /// caller, None: look again (the bytes went to the stream's buffer).
    fn account(&self, b: &mut Body, r: Result<usize>, direct: bool) -> Option<Result<usize>> {
        if b.closed {
            return Some(Err(Error::disposed(STREAM_CLASS_NAME)));
        }
        let n = match r {
            Ok(n) => n,
            Err(e) => return Some(Err(b.fail(e))),
        };
        if n == 0 {
            let eof = match &b.framing {
                Framing::Close => {
                    b.framing = Framing::Empty;
                    b.reusable = false;
                    Ok(())
                }
                Framing::Chunked(_) => Err(chunk_error()),
                _ => Err(read_error("The connection was closed.", web_status::CONNECTION_CLOSED)),
            };
            if let Err(e) = eof {
                return Some(Err(b.fail(e)));
            }
        } else if direct {
            match &mut b.framing {
                Framing::Length(left) => *left -= n as u64,
                Framing::Chunked(d) => d.took_data(n),
                _ => {}
            }
            if b.framing.done() && b.decoder.is_none() {
                b.finish();
            }
            return Some(Ok(n));
        } else {
            b.end += n;
        }
        None
    }

    fn start_read(&self, buf: MutBuf, mode: Mode, then: Then<usize>) -> Result<()> {
        {
            let mut b = self.body.lock();
            if b.closed {
                return Err(Error::disposed(STREAM_CLASS_NAME));
            }
            if b.reading {
                let method = if mode == Mode::Sync { "Read" } else { "BeginRead" };
                return Err(Error::not_supported(crate::layered::msg::nested(method, "read")));
            }
            b.reading = true;
        }
        let me = self.arc();
        if buf.len == 0 {
            me.body.lock().reading = false;
            then(Ok(0));
            return Ok(());
        }
        let m = me.clone();
        me.read_step(
            buf,
            mode,
            Box::new(move |r| {
                m.body.lock().reading = false;
                then(r)
            }),
        );
        Ok(())
    }
}

/// Bytes of a challenge's body read and dropped to keep its connection: past this the
/// connection is closed instead (.NET's MaxResponseDrainSize default, 1 MiB).
const MAX_DRAIN: usize = 1024 * 1024;

/// Where `drain_connection` hands the lease back.
pub(super) type LeaseBack = Box<dyn FnOnce(Option<Lease>) + Send>;

impl ResponseStream {
    /// Reads the rest of the body of a response made with `Exchange::hold` and hands its
    /// connection's lease to `then` (None: the connection cannot carry another request: the server
    /// closes it, or the body failed or was longer than MAX_DRAIN).
    pub(super) fn drain_connection(self: &Arc<Self>, mode: Mode, then: LeaseBack) {
        self.drain_step(vec![0; 16 * 1024], 0, mode, Arc::new(io::Once::new(then)))
    }

    fn drain_step(self: &Arc<Self>, mut scratch: Vec<u8>, total: usize, mode: Mode, then: Arc<io::Once<LeaseBack>>) {
        let give = |me: &ResponseStream, t: &io::Once<LeaseBack>, ok: bool| {
            let lease = me.body.lock().held.take().filter(|_| ok);
            if let Some(f) = t.take() {
                f(lease)
            }
        };
        if self.body.lock().held.is_some() {
            return give(self, &then, true);
        }
        let buf = MutBuf { ptr: scratch.as_mut_ptr(), len: scratch.len() };
        let (me, t) = (self.clone(), then.clone());
        let started = self.start_read(
            buf,
            mode,
            Box::new(move |r| match r {
                Ok(n) if n > 0 && total + n <= MAX_DRAIN => me.drain_step(scratch, total + n, mode, t),
                Ok(0) => give(&me, &t, true),
                _ => give(&me, &t, false),
            }),
        );
        if started.is_err() {
            give(self, &then, false)
        }
    }
}

fn decode_error(e: std::io::Error) -> Error {
    let text = "The response body could not be decompressed: the data is not in the format its Content-Encoding names.";
    Error::new(code::IO, text).with_inner(e.to_string())
}

impl Stream for ResponseStream {
    fn can_read(&self) -> bool {
        !self.body.lock().closed
    }

    fn can_write(&self) -> bool {
        false
    }

    fn check(&self, writing: bool) -> Result<()> {
        if self.body.lock().closed {
            return Err(Error::disposed(STREAM_CLASS_NAME));
        }
        if writing {
            return Err(Error::not_supported(crate::error::msg::READ_ONLY_STREAM));
        }
        Ok(())
    }

    fn begin_write(&self, _buf: ConstBuf, _done: Completion) -> Result<()> {
        self.check(true)
    }

    fn write(&self, _buf: ConstBuf) -> Result<()> {
        self.check(true)
    }

    fn begin_read(&self, buf: MutBuf, done: Completion) -> Result<()> {
        self.start_read(buf, Mode::Async, Box::new(move |r| done.complete(r.map(Value::Bytes))))
    }

    fn read(&self, buf: MutBuf) -> Result<usize> {
        let outcome = crate::op::wait_for(|done| {
            self.start_read(buf, Mode::Sync, Box::new(move |r| done.complete(r.map(Value::Bytes))))
        })?;
        Ok(outcome.bytes())
    }

    /// Closes the stream: a connection whose body was not read to its end is closed, not reused.
    fn close(&self) -> Result<()> {
        let set_aside = {
            let mut b = self.body.lock();
            if std::mem::replace(&mut b.closed, true) {
                return Ok(());
            }
            // Every byte of the body was handed out: the connection is as good as read to its end.
            if !b.eof && !b.reading && b.framing.done() && b.decoder.is_none() && b.out_at >= b.out.len() {
                b.finish();
            }
            b.release.take().or_else(|| b.lease.take().map(|l| (l, false)))
        };
        release(set_aside);
        Ok(())
    }
}
