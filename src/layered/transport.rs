//! The inner stream side of a channel: output goes out through the outbound queue (one segment
//! at a time, in the order the protocol produced it) and input comes in for the operation
//! waiting for it (`Waiter`). `Mode::Sync` drives the inner stream's Read/Write, `Mode::Async`
//! its Begin/End; either way, completions that come inline are looped over (`inline_or_later`),
//! not recursed into.

use super::{Channel, Mode, Protocol, Waiter, READ_BUF, SPARE_OUTPUT};
use crate::error::Result;
use crate::op::{Completion, Outcome};
use crate::stream::{ConstBuf, MutBuf};
use parking_lot::Mutex;
use std::sync::Arc;

/// Runs `start` with a continuation. When the continuation runs before `start` returns, its
/// value is returned and the caller goes on in its own loop; otherwise `later` gets the value
/// when it comes. `start` returns Err only when it started nothing.
fn inline_or_later<T: Send + 'static>(
    start: impl FnOnce(Box<dyn FnOnce(T) + Send>) -> std::result::Result<(), T>,
    later: impl FnOnce(T) + Send + 'static,
) -> Option<T> {
    enum Slot<T> {
        Waiting,
        Inline(T),
        Returned,
    }
    let slot = Arc::new(Mutex::new(Slot::Waiting));
    let s = slot.clone();
    let k = Box::new(move |v: T| {
        let mut g = s.lock();
        if matches!(*g, Slot::Waiting) {
            *g = Slot::Inline(v);
        } else {
            drop(g);
            later(v);
        }
    });
    if let Err(v) = start(k) {
        return Some(v);
    }
    let mut g = slot.lock();
    match std::mem::replace(&mut *g, Slot::Returned) {
        Slot::Inline(v) => Some(v),
        _ => None,
    }
}

impl<P: Protocol> Channel<P> {
    // ------------------------------------------------------------------------------------
    // Inner stream

    fn inner_write(&self, mode: Mode, buf: ConstBuf, k: Box<dyn FnOnce(Result<()>) + Send>) -> Result<()> {
        match mode {
            Mode::Sync => {
                let r = self.inner.write(buf);
                k(r);
                Ok(())
            }
            Mode::Async => self.inner.begin_write(buf, Completion::new(move |o: Outcome| k(o.map(drop)))),
        }
    }

    fn inner_read(&self, mode: Mode, buf: MutBuf, k: Box<dyn FnOnce(Result<usize>) + Send>) -> Result<()> {
        match mode {
            Mode::Sync => {
                let r = self.inner.read(buf);
                k(r);
                Ok(())
            }
            Mode::Async => self.inner.begin_read(buf, Completion::new(move |o: Outcome| k(o.map(|v| v.bytes())))),
        }
    }

    // ------------------------------------------------------------------------------------
    // The outbound queue

    /// Writes queued segments one at a time until the queue is empty.
    pub(super) fn pump(self: &Arc<Self>, mode: Mode) {
        loop {
            let data = {
                let mut c = self.state.lock();
                match c.outq.pop_front() {
                    None => {
                        c.pumping = false;
                        return;
                    }
                    Some(seg) => {
                        c.inflight = seg.then;
                        seg.data
                    }
                }
            };
            if data.is_empty() {
                self.segment_done(data, Ok(()));
                continue;
            }
            let buf = ConstBuf { ptr: data.as_ptr(), len: data.len() };
            let me = self.clone();
            let written = inline_or_later(
                // The segment's buffer travels with the continuation: it lives until written.
                |k| self.inner_write(mode, buf, Box::new(move |r| k((data, r)))).map_err(|e| (Vec::new(), Err(e))),
                move |(data, r): (Vec<u8>, Result<()>)| {
                    me.segment_done(data, r);
                    me.pump(Mode::Async);
                },
            );
            match written {
                Some((data, r)) => self.segment_done(data, r),
                None => return,
            }
        }
    }

    fn segment_done(&self, data: Vec<u8>, r: Result<()>) {
        let r = r.map_err(|e| P::inner_failed(e, true));
        let (then, failed) = {
            let mut c = self.state.lock();
            if data.capacity() > 0 && data.capacity() <= 4 * P::CHUNK && c.spare_output.len() < SPARE_OUTPUT {
                let mut data = data;
                data.clear();
                c.spare_output.push(data);
            }
            let then = c.inflight.take();
            let mut failed = Vec::new();
            if let Err(e) = &r {
                if c.write_error.is_none() {
                    c.write_error = Some(e.clone());
                }
                failed = c.outq.drain(..).filter_map(|s| s.then).collect();
            }
            (then, failed)
        };
        if let Some(t) = then {
            t(r.clone());
        }
        if let Err(e) = r {
            for t in failed {
                t(Err(e.clone()));
            }
        }
    }

    /// Queues output that nobody waits for (alerts, post-handshake messages).
    pub(super) fn send_detached(self: &Arc<Self>, data: Vec<u8>, mode: Mode) {
        let start = {
            let mut c = self.state.lock();
            if c.closed || c.write_error.is_some() {
                return;
            }
            c.push(data, None)
        };
        if start {
            self.pump(mode);
        }
    }

    // ------------------------------------------------------------------------------------
    // Inbound

    /// Reads input for `waiter`. Returns the waiter when the read completed inline (the caller
    /// loops); otherwise the completion resumes it later.
    pub(super) fn fetch_input(self: &Arc<Self>, mode: Mode, waiter: Waiter) -> Option<Waiter> {
        let (mut buf, size) = {
            let mut c = self.state.lock();
            c.waiter = Some(waiter);
            if c.inner_reading {
                // The read in flight (started for a read since cancelled) resumes this waiter.
                return None;
            }
            c.inner_reading = true;
            (c.spare_input.take().unwrap_or_default(), c.input_size)
        };
        // A buffer's length is what has been initialized: zeroed once, when it grows.
        if buf.len() < size {
            buf.resize(size, 0);
        }
        let target = MutBuf { ptr: buf.as_mut_ptr(), len: buf.len() };
        let me = self.clone();
        let got = inline_or_later(
            |k| self.inner_read(mode, target, Box::new(move |r| k((buf, r)))).map_err(|e| (Vec::new(), Err(e))),
            move |(buf, r): (Vec<u8>, Result<usize>)| {
                me.on_input(buf, r);
                me.resume();
            },
        );
        let (buf, r) = got?;
        self.on_input(buf, r);
        self.state.lock().waiter.take()
    }

    fn on_input(&self, buf: Vec<u8>, r: Result<usize>) {
        let mut c = self.state.lock();
        c.inner_reading = false;
        if c.closed {
            return;
        }
        match r {
            Ok(0) => c.inner_eof = true,
            Ok(n) => {
                let n = n.min(buf.len());
                if n == buf.len() {
                    c.input_size = (c.input_size * 2).min(READ_BUF);
                }
                let spare = c.protocol.feed(buf, n);
                c.spare_input = Some(spare);
            }
            Err(e) => c.input_error = Some(P::inner_failed(e, false)),
        }
    }

    /// Continues the operation that waited for input.
    fn resume(self: &Arc<Self>) {
        let waiter = self.state.lock().waiter.take();
        match waiter {
            Some(Waiter::Read(op)) => self.read_loop(op),
            Some(Waiter::Handshake(op)) => self.hs_loop(op, None),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_completion_is_returned_and_late_one_goes_to_later() {
        assert_eq!(
            inline_or_later(
                |k| {
                    k(5);
                    Ok(())
                },
                |_: i32| panic!("not later")
            ),
            Some(5)
        );
        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        let mut keep = None;
        assert_eq!(
            inline_or_later(
                |k| {
                    keep = Some(k);
                    Ok(())
                },
                move |v: i32| *s.lock() = Some(v)
            ),
            None
        );
        (keep.unwrap())(7);
        assert_eq!(*seen.lock(), Some(7));
    }
}
