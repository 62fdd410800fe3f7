//! Application data. Write encrypts at most `WRITE_CHUNK` bytes at a time and queues each chunk
//! as one segment; the segment's continuation encrypts the next. Read returns what OpenSSL can
//! decrypt from the ciphertext it holds and reads the inner stream only when that yields nothing.
//! One read and one write may be pending at once.

use super::errors::ssl_reason;
use super::{Mode, ReadOp, SslStream, Then, Waiter, WriteOp, CLASS_NAME, WRITE_CHUNK};
use crate::op::{Completion, Value};
use crate::error::{code, Error, Result};
use crate::stream::{ConstBuf, MutBuf};
use crate::tls::msg;
use openssl::ssl::ErrorCode;
use std::sync::Arc;

impl SslStream {
    // ------------------------------------------------------------------------------------
    // Write

    pub(super) fn start_write(self: &Arc<Self>, buf: ConstBuf, done: Completion, mode: Mode) -> Result<()> {
        {
            let mut c = self.core.lock();
            c.usable()?;
            if c.shutdown {
                return Err(Error::invalid_operation(msg::ALREADY_SHUTDOWN));
            }
            if c.writing {
                let method = if mode == Mode::Sync { "Write" } else { "BeginWrite" };
                return Err(Error::not_supported(msg::nested(method, "write")));
            }
            c.writing = true;
        }
        self.write_next(WriteOp { buf, pos: 0, done, mode });
        Ok(())
    }

    /// Encrypts the next chunk of `op` and queues it; its continuation does the rest.
    fn write_next(self: &Arc<Self>, mut op: WriteOp) {
        let mode = op.mode;
        let start = {
            let mut c = self.core.lock();
            let blocked = if c.closed { Some(Error::disposed(CLASS_NAME)) } else { c.write_error.clone() };
            if let Some(e) = blocked {
                drop(c);
                return self.finish_write(op, Err(e));
            }
            if op.buf.len == 0 {
                drop(c);
                return self.finish_write(op, Ok(()));
            }
            let n = (op.buf.len - op.pos).min(WRITE_CHUNK);
            // SAFETY: the caller keeps the buffer valid until the write completes (Begin contract).
            let chunk = unsafe { std::slice::from_raw_parts(op.buf.ptr.add(op.pos), n) };
            let Some(tls) = c.tls.as_mut() else {
                drop(c);
                return self.finish_write(op, Err(Error::disposed(CLASS_NAME)));
            };
            let mut off = 0;
            while off < n {
                match tls.ssl_write(&chunk[off..]) {
                    Ok(k) => off += k,
                    Err(e) => {
                        let err = Error { inner: Some(ssl_reason(&e)), ..Error::new(code::IO, msg::ENCRYPT) };
                        drop(c);
                        return self.finish_write(op, Err(err));
                    }
                }
            }
            let data = c.take_output();
            op.pos += n;
            let me = self.clone();
            let then: Then = Box::new(move |r| match r {
                Ok(()) if op.pos < op.buf.len => me.write_next(op),
                r => me.finish_write(op, r),
            });
            c.push(data, Some(then))
        };
        if start {
            self.pump(mode);
        }
    }

    fn finish_write(self: &Arc<Self>, op: WriteOp, r: Result<()>) {
        let shutdown = {
            let mut c = self.core.lock();
            c.writing = false;
            c.pending_shutdown.take()
        };
        let len = op.buf.len;
        op.done.complete(r.map(|()| Value::Bytes(len)));
        if let Some((done, mode)) = shutdown {
            self.send_close_notify(done, mode);
        }
    }

    // ------------------------------------------------------------------------------------
    // Read

    pub(super) fn start_read(self: &Arc<Self>, buf: MutBuf, done: Completion, mode: Mode) -> Result<()> {
        {
            let mut c = self.core.lock();
            c.usable()?;
            if c.reading {
                let method = if mode == Mode::Sync { "Read" } else { "BeginRead" };
                return Err(Error::not_supported(msg::nested(method, "read")));
            }
            c.reading = true;
        }
        self.read_loop(ReadOp { buf, done, mode });
        Ok(())
    }

    pub(super) fn read_loop(self: &Arc<Self>, mut op: ReadOp) {
        enum Act {
            Done(Result<usize>),
            NeedInput,
        }
        loop {
            let (act, out) = {
                let mut c = self.core.lock();
                let act = if c.closed {
                    Act::Done(Err(Error::disposed(CLASS_NAME)))
                } else if op.buf.len == 0 {
                    Act::Done(Ok(0))
                } else {
                    let eof = c.inner_eof;
                    let boundary = c.framer.at_boundary();
                    let input_error = c.input_error.take();
                    match c.tls.as_mut() {
                        None => Act::Done(Err(Error::disposed(CLASS_NAME))),
                        Some(tls) => {
                            // SAFETY: the caller keeps the buffer valid until the read completes.
                            let user = unsafe { std::slice::from_raw_parts_mut(op.buf.ptr, op.buf.len) };
                            let mut total = 0;
                            let mut act = None;
                            while total < user.len() {
                                match tls.ssl_read(&mut user[total..]) {
                                    Ok(0) => break,
                                    Ok(n) => total += n,
                                    Err(e) if e.code() == ErrorCode::WANT_READ => {
                                        if total == 0 {
                                            act = Some(match (input_error.clone(), eof) {
                                                (Some(err), _) => Act::Done(Err(err)),
                                                (None, true) if boundary => Act::Done(Ok(0)),
                                                (None, true) => Act::Done(Err(Error::new(code::IO, msg::IO_EOF))),
                                                (None, false) => Act::NeedInput,
                                            });
                                        }
                                        break;
                                    }
                                    Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                                        if total == 0 {
                                            act = Some(Act::Done(Ok(0)));
                                        }
                                        break;
                                    }
                                    Err(e) => {
                                        if total == 0 {
                                            let reason = ssl_reason(&e);
                                            let text =
                                                if reason.contains("decrypt") || reason.contains("bad record mac") {
                                                    msg::DECRYPT
                                                } else {
                                                    msg::READ_FAILED
                                                };
                                            act = Some(Act::Done(Err(Error {
                                                inner: Some(reason),
                                                ..Error::new(code::IO, text)
                                            })));
                                        }
                                        break;
                                    }
                                }
                            }
                            if total > 0 {
                                Act::Done(Ok(total))
                            } else {
                                act.unwrap_or(Act::NeedInput)
                            }
                        }
                    }
                };
                // Replies OpenSSL wrote while reading (key update, alerts) keep their place.
                let out = c.take_output();
                let start =
                    if !out.is_empty() && !c.closed && c.write_error.is_none() { c.push(out, None) } else { false };
                (act, start)
            };
            if out {
                self.pump(op.mode);
            }
            match act {
                Act::Done(r) => {
                    self.core.lock().reading = false;
                    op.done.complete(r.map(Value::Bytes));
                    return;
                }
                Act::NeedInput => match self.fetch_input(op.mode, Waiter::Read(op)) {
                    Some(Waiter::Read(o)) => op = o,
                    _ => return,
                },
            }
        }
    }
}
