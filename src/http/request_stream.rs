//! The request stream (.NET Framework's ConnectStream for writing): write-only, one write at a
//! time.
//!
//! * ContentLength set: the head went out with it; each write goes straight to the connection
//!   (no copy), and a write past what is left fails with ProtocolViolation before any of its
//!   bytes is sent. Closing with bytes still owed fails with IO and aborts the request.
//! * SendChunked: each write is one chunk (its size line, the caller's bytes, CRLF); close writes
//!   the last chunk.
//! * Neither: the bytes are buffered (one copy); close hands them to the request, which sends
//!   them with their Content-Length when the response is asked for.

use super::connection::Connection;
use super::io::{self, timed, Mode, Then};
use super::request::HttpWebRequest;
use super::{canceled, msg, protocol_violation, STREAM_CLASS_NAME};
use crate::error::{code, socket_error, Error, Result};
use crate::op::{Completion, Value};
use crate::stream::{ConstBuf, MutBuf, Stream};
use parking_lot::Mutex;
use std::sync::{Arc, Weak};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyMode {
    Length,
    Chunked,
    Buffered,
}

struct State {
    /// Length: bytes still owed.
    remaining: u64,
    /// Buffered: the body; Length and Chunked, with `keeps_copy`: a copy of what was sent.
    buffer: Vec<u8>,
    writing: bool,
    closed: bool,
    aborted: bool,
    failed: Option<Error>,
}

pub struct RequestStream {
    me: Weak<RequestStream>,
    request: Arc<HttpWebRequest>,
    conn: Arc<Connection>,
    pub mode: BodyMode,
    rw_timeout_ms: i32,
    /// The request has credentials: what goes out is also copied into `State::buffer`.
    keeps_copy: bool,
    state: Mutex<State>,
}

fn write_timeout() -> Error {
    Error::new(code::IO, "Unable to write data to the transport connection: The operation has timed out.").with(|fail| {
        fail.socket_error = socket_error::TIMED_OUT;
        fail.web_status = super::web_status::TIMEOUT;
    })
}

impl RequestStream {
    /// `keeps_copy`: a body streamed out is also kept, so that it can be sent again (to answer an
    /// authentication challenge, or a redirect that keeps the method).
    pub fn new(
        request: Arc<HttpWebRequest>,
        conn: Arc<Connection>,
        mode: BodyMode,
        length: u64,
        rw_timeout_ms: i32,
        keeps_copy: bool,
    ) -> Arc<RequestStream> {
        Arc::new_cyclic(|me| RequestStream {
            me: me.clone(),
            request,
            conn,
            mode,
            rw_timeout_ms,
            keeps_copy,
            state: Mutex::new(State {
                remaining: length,
                buffer: Vec::new(),
                writing: false,
                closed: false,
                aborted: false,
                failed: None,
            }),
        })
    }

    /// Abort: later writes and close report RequestCanceled.
    pub fn abort(&self) {
        self.state.lock().aborted = true;
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    fn usable(st: &State) -> Result<()> {
        if st.closed {
            return Err(Error::disposed(STREAM_CLASS_NAME));
        }
        if st.aborted {
            return Err(canceled());
        }
        if let Some(e) = &st.failed {
            return Err(e.clone());
        }
        Ok(())
    }

    fn start_write(&self, buf: ConstBuf, mode: Mode, then: Then<()>) -> Result<()> {
        {
            let mut st = self.state.lock();
            Self::usable(&st)?;
            if st.writing {
                let method = if mode == Mode::Sync { "Write" } else { "BeginWrite" };
                return Err(Error::not_supported(crate::layered::msg::nested(method, "write")));
            }
            match self.mode {
                BodyMode::Length => {
                    if buf.len as u64 > st.remaining {
                        return Err(protocol_violation(msg::ENTITY_TOO_BIG));
                    }
                    st.remaining -= buf.len as u64;
                }
                BodyMode::Buffered => {
                    if buf.len > 0 {
                        // SAFETY: the caller's buffer holds buf.len bytes during the call.
                        st.buffer.extend_from_slice(unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) });
                    }
                    drop(st);
                    then(Ok(()));
                    return Ok(());
                }
                BodyMode::Chunked => {}
            }
            if self.keeps_copy && buf.len > 0 {
                // SAFETY: the caller's buffer holds buf.len bytes during the call.
                st.buffer.extend_from_slice(unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) });
            }
            if buf.len == 0 {
                drop(st);
                then(Ok(()));
                return Ok(());
            }
            st.writing = true;
        }
        let me = self.me.upgrade().expect("a request stream in use is alive");
        let finish: Then<()> = Box::new(move |r: Result<()>| {
            {
                let mut st = me.state.lock();
                st.writing = false;
                if let Err(e) = &r {
                    st.failed = Some(e.clone());
                }
            }
            then(r)
        });
        match self.mode {
            BodyMode::Chunked => self.write_chunk(buf, mode, finish),
            _ => self.send(buf, mode, finish),
        }
        Ok(())
    }

    /// One write to the connection under ReadWriteTimeout.
    fn send(&self, buf: ConstBuf, mode: Mode, then: Then<()>) {
        let (conn, c) = (self.conn.clone(), self.conn.clone());
        timed(
            mode,
            self.rw_timeout_ms,
            write_timeout,
            move || c.close(),
            move |done| io::write(&conn.stream, buf, mode, done),
            then,
        );
    }

    fn write_chunk(&self, buf: ConstBuf, mode: Mode, then: Then<()>) {
        let size_line = format!("{:x}\r\n", buf.len).into_bytes();
        let line = ConstBuf { ptr: size_line.as_ptr(), len: size_line.len() };
        let me = self.me.upgrade().expect("a request stream in use is alive");
        self.send(
            line,
            mode,
            Box::new(move |r| {
                drop(size_line);
                if let Err(e) = r {
                    return then(Err(e));
                }
                let m = me.clone();
                me.send(
                    buf,
                    mode,
                    Box::new(move |r| {
                        if let Err(e) = r {
                            return then(Err(e));
                        }
                        static CRLF: &[u8] = b"\r\n";
                        m.send(ConstBuf { ptr: CRLF.as_ptr(), len: 2 }, mode, then)
                    }),
                )
            }),
        );
    }
}

impl Stream for RequestStream {
    fn can_read(&self) -> bool {
        false
    }

    fn can_write(&self) -> bool {
        !self.state.lock().closed
    }

    fn check(&self, writing: bool) -> Result<()> {
        if self.state.lock().closed {
            return Err(Error::disposed(STREAM_CLASS_NAME));
        }
        if !writing {
            return Err(Error::not_supported(crate::error::msg::WRITE_ONLY_STREAM));
        }
        Ok(())
    }

    fn begin_write(&self, buf: ConstBuf, done: Completion) -> Result<()> {
        self.start_write(buf, Mode::Async, Box::new(move |r| done.complete(r.map(|()| Value::Bytes(buf.len)))))
    }

    fn write(&self, buf: ConstBuf) -> Result<()> {
        crate::op::wait_for(|done| {
            self.start_write(buf, Mode::Sync, Box::new(move |r| done.complete(r.map(|()| Value::Bytes(buf.len)))))
        })
        .map(drop)
    }

    fn begin_read(&self, _buf: MutBuf, _done: Completion) -> Result<()> {
        self.check(false)
    }

    fn read(&self, _buf: MutBuf) -> Result<usize> {
        self.check(false).map(|()| 0)
    }

    fn transport_context(&self) -> Option<Arc<crate::tls::TransportContext>> {
        Some(self.conn.context.clone())
    }

    /// Close: a ContentLength body must be complete (else IO, and the request is aborted); a
    /// chunked body gets its last chunk (written before this returns); a buffered body, or the
    /// copy of a streamed one, goes to the request.
    fn close(&self) -> Result<()> {
        let (owed, buffer, failed, aborted) = {
            let mut st = self.state.lock();
            if std::mem::replace(&mut st.closed, true) {
                return Ok(());
            }
            let owed = self.mode == BodyMode::Length && (st.remaining > 0 || st.writing);
            (owed, std::mem::take(&mut st.buffer), st.failed.clone(), st.aborted)
        };
        if aborted {
            return Err(canceled());
        }
        if owed {
            self.request.abort();
            return Err(Error::new(code::IO, msg::NOT_ENOUGH_BYTES));
        }
        if let Some(e) = failed {
            self.request.abort();
            return Err(e);
        }
        match self.mode {
            BodyMode::Length => {}
            BodyMode::Chunked => {
                static LAST: &[u8] = b"0\r\n\r\n";
                if let Err(e) = self.conn.stream.write(ConstBuf { ptr: LAST.as_ptr(), len: LAST.len() }) {
                    self.request.abort();
                    return Err(e);
                }
            }
            BodyMode::Buffered => {}
        }
        if self.keeps_copy || self.mode == BodyMode::Buffered {
            self.request.set_buffered_body(buffer);
        }
        self.request.body_written();
        Ok(())
    }
}
