//! The handshake loop: the protocol's steps under the lock, their output through the outbound
//! queue, input fetched when a step needs it, and the steps that wait for work outside the lock
//! (a user callback on this thread, a blocking call on the blocking pool). A failed handshake
//! poisons the stream (`Phase::Failed`): every later call reports its error.

use super::{msg, Channel, HsOp, Mode, Phase, Protocol, Step, Then, Waiter, Work};
use crate::error::{Error, Result};
use crate::op::{Completion, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

impl<P: Protocol> Channel<P> {
    /// BeginAuthenticate (Mode::Sync: the synchronous form): the checks every layered stream
    /// makes in .NET's order, then `setup` (the protocol's own checks and its engine), then the
    /// handshake.
    pub fn begin_handshake(
        self: &Arc<Self>,
        done: Completion,
        mode: Mode,
        setup: impl FnOnce(&mut P) -> Result<()>,
    ) -> Result<()> {
        {
            let mut c = self.state.lock();
            if c.closed {
                return Err(Error::disposed(P::CLASS_NAME));
            }
            match &c.phase {
                Phase::Failed(e) if !c.protocol.can_retry() => return Err(e.clone()),
                Phase::Failed(_) => {}
                Phase::Authenticated => return Err(Error::invalid_operation(msg::REAUTH)),
                Phase::Authenticating => {
                    let method = if mode == Mode::Sync { "Authenticate" } else { "BeginAuthenticate" };
                    return Err(Error::not_supported(msg::nested(method, "authenticate")));
                }
                Phase::Created => {}
            }
            setup(&mut c.protocol)?;
            c.phase = Phase::Authenticating;
        }
        self.hs_loop(HsOp { done, mode }, None);
        Ok(())
    }

    /// Steps the handshake until it is done, fails, or waits (for the inner stream, or for
    /// offloaded work). `pending` is the step whose output has just been written.
    pub(super) fn hs_loop(self: &Arc<Self>, mut op: HsOp, mut pending: Option<Step<P::Resume>>) {
        loop {
            match pending.take() {
                Some(Step::Done) => return self.finish_handshake(op),
                Some(Step::NeedInput) => match self.fetch_input(op.mode, Waiter::Handshake(op)) {
                    Some(Waiter::Handshake(o)) => op = o,
                    _ => return,
                },
                Some(Step::Suspend(work)) => {
                    let answer = work();
                    // Bound first: the lock must be released before a failure completes `op`.
                    if let Err(e) = self.resume_with(answer, op.mode) {
                        return self.fail_handshake(op, e);
                    }
                }
                Some(Step::NeedOffload(work)) => match op.mode {
                    Mode::Sync => {
                        if let Err(e) = self.resume_offloaded(run_blocking(work), Mode::Sync) {
                            return self.fail_handshake(op, e);
                        }
                    }
                    Mode::Async => return self.offload(op, work),
                },
                None => {}
            }
            let (result, out) = {
                let mut c = self.state.lock();
                if c.closed {
                    drop(c);
                    return self.fail_handshake(op, Error::disposed(P::CLASS_NAME));
                }
                if let Some(e) = c.input_error.take() {
                    drop(c);
                    return self.fail_handshake(op, e);
                }
                let eof = c.inner_eof;
                let result = c.protocol.handshake(eof);
                (result, c.take_output())
            };
            let step = match result {
                Ok(step) => step,
                Err(e) => {
                    // Whatever the protocol produced with its failure (an alert) still goes to
                    // the peer.
                    if !out.is_empty() {
                        self.send_detached(out, op.mode);
                    }
                    return self.fail_handshake(op, e);
                }
            };
            if !out.is_empty() {
                let me = self.clone();
                let mode = op.mode;
                let then: Then = Box::new(move |r| match r {
                    Ok(()) => me.hs_loop(op, Some(step)),
                    Err(e) => me.fail_handshake(op, e),
                });
                let start = {
                    let mut c = self.state.lock();
                    if c.closed || c.write_error.is_some() {
                        let e = c.write_error.clone().unwrap_or_else(|| Error::disposed(P::CLASS_NAME));
                        drop(c);
                        return then(Err(e));
                    }
                    c.push(out, Some(then))
                };
                if start {
                    self.pump(mode);
                }
                return;
            }
            pending = Some(step);
        }
    }

    /// Runs `work` on the blocking pool. Meanwhile the handshake is parked as the `Waiter`, so
    /// that close completes it at once instead of after the blocking call; when the work is done
    /// the loop goes on on the pool thread (or nothing happens, if the stream was closed).
    fn offload(self: &Arc<Self>, op: HsOp, work: Work<P::Resume>) {
        {
            let mut c = self.state.lock();
            if c.closed {
                drop(c);
                return self.fail_handshake(op, Error::disposed(P::CLASS_NAME));
            }
            c.waiter = Some(Waiter::Handshake(op));
        }
        let me = self.clone();
        let task = Box::new(move || {
            let answer = run_blocking(work);
            let Some(Waiter::Handshake(op)) = me.state.lock().waiter.take() else { return };
            match me.resume_offloaded(answer, Mode::Async) {
                Ok(()) => me.hs_loop(op, None),
                Err(e) => me.fail_handshake(op, e),
            }
        });
        if let Err(e) = crate::engine::spawn_blocking(task) {
            let parked = self.state.lock().waiter.take();
            if let Some(Waiter::Handshake(op)) = parked {
                self.fail_handshake(op, e);
            }
        }
    }

    fn resume_offloaded(self: &Arc<Self>, answer: std::thread::Result<P::Resume>, mode: Mode) -> Result<()> {
        let answer = answer.map_err(|_| Error::internal(msg::OFFLOAD_PANICKED))?;
        self.resume_with(answer, mode)
    }

    /// Hands an answer to the protocol. A failure's output (NegotiateStream's HandshakeError)
    /// still goes to the peer, as a failed step's does.
    fn resume_with(self: &Arc<Self>, answer: P::Resume, mode: Mode) -> Result<()> {
        let (r, out) = {
            let mut c = self.state.lock();
            let r = c.protocol.resume(answer);
            let out = if r.is_err() { c.take_output() } else { Vec::new() };
            (r, out)
        };
        if !out.is_empty() {
            self.send_detached(out, mode);
        }
        r
    }

    fn fail_handshake(&self, op: HsOp, e: Error) {
        {
            let mut c = self.state.lock();
            if !c.closed {
                c.phase = Phase::Failed(e.clone());
            }
        }
        op.done.complete(Err(e));
    }

    fn finish_handshake(&self, op: HsOp) {
        let done = {
            let mut c = self.state.lock();
            if c.closed {
                Err(Error::disposed(P::CLASS_NAME))
            } else {
                let r = c.protocol.handshake_done();
                if r.is_ok() {
                    c.phase = Phase::Authenticated;
                }
                r
            }
        };
        match done {
            Ok(()) => op.done.complete(Ok(Value::Unit)),
            Err(e) => self.fail_handshake(op, e),
        }
    }
}

/// A blocking step's work, with a panic caught: it fails the handshake instead of leaving it
/// pending (and, on the caller's own thread, instead of unwinding into the caller).
fn run_blocking<R>(work: Work<R>) -> std::thread::Result<R> {
    let answer = catch_unwind(AssertUnwindSafe(work));
    if answer.is_err() {
        crate::engine::report_panic("a blocking step of a handshake");
    }
    answer
}
