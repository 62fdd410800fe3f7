//! Application data. Write seals at most `Protocol::CHUNK` bytes at a time and queues each
//! chunk's output as one segment; the segment's continuation seals the next. Read returns what
//! the protocol can open from the input it holds and reads the inner stream only when that
//! yields nothing. One read and one write may be pending at once.

use super::{msg, Channel, Mode, Opened, Protocol, ReadOp, Then, Waiter, WriteOp};
use crate::error::{Error, Result};
use crate::op::{Completion, Value};
use crate::stream::{ConstBuf, MutBuf};
use std::sync::Arc;

impl<P: Protocol> Channel<P> {
    // ------------------------------------------------------------------------------------
    // Write

    pub(super) fn start_write(self: &Arc<Self>, buf: ConstBuf, done: Completion, mode: Mode) -> Result<()> {
        {
            let mut c = self.state.lock();
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

    /// Seals the next chunk of `op` and queues it; its continuation does the rest.
    fn write_next(self: &Arc<Self>, mut op: WriteOp) {
        let mode = op.mode;
        let start = {
            let mut c = self.state.lock();
            let blocked = if c.closed { Some(Error::disposed(P::CLASS_NAME)) } else { c.write_error.clone() };
            if let Some(e) = blocked {
                drop(c);
                return self.finish_write(op, Err(e));
            }
            if op.buf.len == 0 {
                drop(c);
                return self.finish_write(op, Ok(()));
            }
            let n = (op.buf.len - op.pos).min(P::CHUNK);
            // SAFETY: the caller keeps the buffer valid until the write completes (Begin contract).
            let chunk = unsafe { std::slice::from_raw_parts(op.buf.ptr.add(op.pos), n) };
            // Nothing queued and nothing in flight: what the inner stream takes at once goes to
            // it straight from the protocol's buffer, in order.
            let direct = (c.outq.is_empty() && !c.pumping).then_some(&self.inner);
            if let Err(e) = c.protocol.seal(chunk, direct) {
                drop(c);
                return self.finish_write(op, Err(e));
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
            let mut c = self.state.lock();
            c.writing = false;
            c.pending_shutdown.take()
        };
        let len = op.buf.len;
        op.done.complete(r.map(|()| Value::Bytes(len)));
        if let Some((done, mode)) = shutdown {
            self.send_shutdown(done, mode);
        }
    }

    // ------------------------------------------------------------------------------------
    // Read

    pub(super) fn start_read(self: &Arc<Self>, buf: MutBuf, done: Completion, mode: Mode) -> Result<()> {
        {
            let mut c = self.state.lock();
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
                let mut c = self.state.lock();
                let act = if c.closed {
                    Act::Done(Err(Error::disposed(P::CLASS_NAME)))
                } else if op.buf.len == 0 {
                    Act::Done(Ok(0))
                } else {
                    let eof = c.inner_eof;
                    let mut input_error = c.input_error.take();
                    // SAFETY: the caller keeps the buffer valid until the read completes.
                    let user = unsafe { std::slice::from_raw_parts_mut(op.buf.ptr, op.buf.len) };
                    let mut total = 0;
                    let mut act = None;
                    // A failure or the end of input is the read's outcome only when no
                    // plaintext came before it; otherwise the read returns the plaintext it has.
                    while total < user.len() {
                        match c.protocol.open(&mut user[total..]) {
                            Ok(Opened::Data(0)) => break,
                            Ok(Opened::Data(n)) => total += n,
                            Ok(Opened::NeedInput) => {
                                if total == 0 {
                                    act = Some(match (input_error.take(), eof) {
                                        (Some(err), _) => Act::Done(Err(err)),
                                        (None, true) => Act::Done(c.protocol.input_ended().map(|()| 0)),
                                        (None, false) => Act::NeedInput,
                                    });
                                }
                                break;
                            }
                            Ok(Opened::End) => {
                                if total == 0 {
                                    act = Some(Act::Done(Ok(0)));
                                }
                                break;
                            }
                            Err(e) => {
                                if total == 0 {
                                    act = Some(Act::Done(Err(e)));
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
                };
                // Replies the protocol wrote while opening (key update, alerts) keep their place.
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
                    self.state.lock().reading = false;
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
