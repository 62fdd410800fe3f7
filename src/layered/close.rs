//! The end of a stream: shutdown (the protocol's closing output after any pending write; later
//! writes fail) and Dispose (`do_close`: nothing sent, as .NET; pending operations complete with
//! ObjectDisposed; the inner stream closed unless left open).

use super::{msg, Channel, Mode, Phase, Protocol, Then, Waiter};
use crate::error::{Error, Result};
use crate::op::{Completion, Value};
use std::sync::Arc;

impl<P: Protocol> Channel<P> {
    /// ShutdownAsync: sends the closing output after any pending write; later writes fail.
    pub fn begin_shutdown(self: &Arc<Self>, done: Completion, mode: Mode) -> Result<()> {
        {
            let mut c = self.state.lock();
            c.usable()?;
            if c.shutdown {
                return Err(Error::invalid_operation(msg::ALREADY_SHUTDOWN));
            }
            c.shutdown = true;
            if c.writing {
                c.pending_shutdown = Some((done, mode));
                return Ok(());
            }
        }
        self.send_shutdown(done, mode);
        Ok(())
    }

    pub fn shutdown(self: &Arc<Self>) -> Result<()> {
        crate::op::wait_for(|done| self.begin_shutdown(done, Mode::Sync)).map(drop)
    }

    pub(super) fn send_shutdown(self: &Arc<Self>, done: Completion, mode: Mode) {
        let then: Then = Box::new(move |r| done.complete(r.map(|()| Value::Unit)));
        let start = {
            let mut c = self.state.lock();
            let blocked = if c.closed { Some(Error::disposed(P::CLASS_NAME)) } else { c.write_error.clone() };
            if let Some(e) = blocked {
                drop(c);
                return then(Err(e));
            }
            c.protocol.shutdown();
            let out = c.take_output();
            c.push(out, Some(then))
        };
        if start {
            self.pump(mode);
        }
    }

    pub(super) fn do_close(&self) {
        let (waiter, inflight, queued, shutdown) = {
            let mut c = self.state.lock();
            if c.closed {
                return;
            }
            c.closed = true;
            if matches!(c.phase, Phase::Authenticating) {
                c.phase = Phase::Failed(Error::disposed(P::CLASS_NAME));
            }
            // The engine goes now; nothing touches it after `closed` is set.
            c.protocol.dispose();
            c.spare_input = None;
            c.spare_output.clear();
            let queued: Vec<Then> = c.outq.drain(..).filter_map(|s| s.then).collect();
            (c.waiter.take(), c.inflight.take(), queued, c.pending_shutdown.take())
        };
        let disposed = || Error::disposed(P::CLASS_NAME);
        match waiter {
            Some(Waiter::Read(op)) => op.done.complete(Err(disposed())),
            Some(Waiter::Handshake(op)) => op.done.complete(Err(disposed())),
            None => {}
        }
        if let Some(t) = inflight {
            t(Err(disposed()));
        }
        for t in queued {
            t(Err(disposed()));
        }
        if let Some((done, _)) = shutdown {
            done.complete(Err(disposed()));
        }
        if !self.leave_inner_open {
            let _ = self.inner.close();
        }
    }
}
