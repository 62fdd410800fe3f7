//! The end of a stream: ShutdownAsync (close_notify after any pending write; later writes fail)
//! and Dispose (`do_close`: no close_notify, as .NET; pending operations complete with
//! ObjectDisposed).

use super::{Mode, Phase, SslStream, Then, Waiter, CLASS_NAME};
use crate::op::{Completion, Value};
use crate::error::{Error, Result};
use crate::tls::msg;
use std::sync::Arc;

impl SslStream {
    /// ShutdownAsync: sends close_notify after any pending write; later writes fail.
    pub fn begin_shutdown(self: &Arc<Self>, done: Completion, mode: Mode) -> Result<()> {
        {
            let mut c = self.core.lock();
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
        self.send_close_notify(done, mode);
        Ok(())
    }

    pub fn shutdown(self: &Arc<Self>) -> Result<()> {
        crate::op::wait_for(|done| self.begin_shutdown(done, Mode::Sync)).map(drop)
    }

    pub(super) fn send_close_notify(self: &Arc<Self>, done: Completion, mode: Mode) {
        let then: Then = Box::new(move |r| done.complete(r.map(|()| Value::Unit)));
        let start = {
            let mut c = self.core.lock();
            let blocked = if c.closed { Some(Error::disposed(CLASS_NAME)) } else { c.write_error.clone() };
            if let Some(e) = blocked {
                drop(c);
                return then(Err(e));
            }
            if let Some(tls) = c.tls.as_mut() {
                let _ = tls.shutdown();
            }
            let out = c.take_output();
            c.push(out, Some(then))
        };
        if start {
            self.pump(mode);
        }
    }

    pub(super) fn do_close(&self) {
        let (waiter, inflight, queued, shutdown) = {
            let mut c = self.core.lock();
            if c.closed {
                return;
            }
            c.closed = true;
            if matches!(c.phase, Phase::Authenticating) {
                c.phase = Phase::Failed(Error::disposed(CLASS_NAME));
            }
            // The SSL goes now; nothing touches it after `closed` is set.
            c.tls = None;
            c.spare_input = None;
            c.spare_output.clear();
            let queued: Vec<Then> = c.outq.drain(..).filter_map(|s| s.then).collect();
            (c.waiter.take(), c.inflight.take(), queued, c.pending_shutdown.take())
        };
        let disposed = || Error::disposed(CLASS_NAME);
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
