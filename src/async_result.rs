//! IAsyncResult: one asynchronous operation from Begin to End.
//!
//! The rules (seeds, DESIGN.md section 1): the callback runs exactly once; when the work finished
//! inside Begin it runs on the Begin caller's thread before Begin returns and
//! CompletedSynchronously is true, otherwise on the engine thread that finished the work.
//! IsCompleted is set and waiters are woken before the callback runs. A thread that keeps
//! completing synchronously from inside callbacks would dive down its own stack; past
//! `MAX_INLINE_DEPTH` nested callbacks the next one goes to an engine thread instead (the
//! Framework's ForceAsyncCount guard).
//!
//! The callback itself is the `Notify` hook of whoever created the result (the C layer calls a C
//! function pointer); this module knows no handle and no C. A completion that arrives inside
//! its own Begin is held until the Begin's body returns: a Begin that then fails started
//! nothing and runs no callback, whatever its body dropped on the way out.

use crate::error::{Error, Result};
use crate::op::{Completion, Outcome, Sink};
use parking_lot::{Condvar, Mutex};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Nested inline callbacks allowed on one thread before the next is sent to an engine thread.
const MAX_INLINE_DEPTH: u32 = 16;

/// Which Begin started an operation: End accepts only results of its own Begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Connect,
    Accept,
    Send,
    Receive,
    SendFile,
    Write,
    Read,
    AuthenticateAsClient,
    AuthenticateAsServer,
    Shutdown,
    GetRequestStream,
    GetResponse,
}

impl OpKind {
    /// The .NET End method, for "{0} can only be called once for each asynchronous operation."
    pub fn end_name(self) -> &'static str {
        match self {
            OpKind::Connect => "EndConnect",
            OpKind::Accept => "EndAccept",
            OpKind::Send => "EndSend",
            OpKind::Receive => "EndReceive",
            OpKind::SendFile => "EndSendFile",
            OpKind::Write => "EndWrite",
            OpKind::Read => "EndRead",
            OpKind::AuthenticateAsClient => "EndAuthenticateAsClient",
            OpKind::AuthenticateAsServer => "EndAuthenticateAsServer",
            OpKind::Shutdown => "EndShutdown",
            OpKind::GetRequestStream => "EndGetRequestStream",
            OpKind::GetResponse => "EndGetResponse",
        }
    }
}

/// The AsyncCallback of a result, implemented by the layer that created it.
pub trait Notify: Send + Sync + 'static {
    /// Runs the caller's callback; called at most once per result.
    fn notify(&self);
}

/// A result without a callback (the caller waits or polls).
impl Notify for () {
    fn notify(&self) {}
}

struct Inner {
    outcome: Option<Outcome>,
}

pub struct AsyncResult<N: Notify> {
    /// An opaque identity of the object whose Begin created this result (End checks it).
    pub owner: u64,
    pub op: OpKind,
    pub notify: N,
    completed: AtomicBool,
    completed_synchronously: AtomicBool,
    /// Completed inside its own Begin: the callback waits for the Begin's body to return.
    deferred: AtomicBool,
    inner: Mutex<Inner>,
    done: Condvar,
}

thread_local! {
    /// The address of the result whose Begin is running on this thread.
    static BEGINNING: Cell<usize> = const { Cell::new(0) };
    static INLINE_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// True while the calling thread is inside a callback of an asynchronous operation.
pub fn in_callback() -> bool {
    INLINE_DEPTH.with(|d| d.get()) > 0
}

/// Restores the thread's BEGINNING when a Begin's body returns or unwinds.
struct BeginScope(usize);

impl Drop for BeginScope {
    fn drop(&mut self) {
        BEGINNING.with(|b| b.set(self.0));
    }
}

/// Counts one callback level on this thread, also when the callback unwinds.
struct DepthScope;

impl DepthScope {
    fn enter() -> DepthScope {
        INLINE_DEPTH.with(|d| d.set(d.get() + 1));
        DepthScope
    }
}

impl Drop for DepthScope {
    fn drop(&mut self) {
        INLINE_DEPTH.with(|d| d.set(d.get() - 1));
    }
}

impl<N: Notify> AsyncResult<N> {
    pub fn new(owner: u64, op: OpKind, notify: N) -> Arc<AsyncResult<N>> {
        Arc::new(AsyncResult {
            owner,
            op,
            notify,
            completed: AtomicBool::new(false),
            completed_synchronously: AtomicBool::new(false),
            deferred: AtomicBool::new(false),
            inner: Mutex::new(Inner { outcome: None }),
            done: Condvar::new(),
        })
    }

    fn address(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as *const () as usize
    }

    /// Runs the body of a Begin: a completion that happens inside `start` on this thread is
    /// synchronous, and its callback runs once `start` has returned Ok. `start` returns Err only
    /// when it started nothing: then no callback runs.
    pub fn begin(self: &Arc<Self>, start: impl FnOnce(Completion) -> Result<()>) -> Result<()> {
        let scope = BeginScope(BEGINNING.with(|b| b.replace(self.address())));
        let result = start(Completion::to(self.clone()));
        drop(scope);
        // Set on this thread inside `start`, if at all: a plain load sees it.
        if self.deferred.load(Ordering::Relaxed) && result.is_ok() {
            self.callback();
        }
        result
    }

    /// Records the outcome, wakes waiters, then runs the callback (exactly once).
    fn record(self: &Arc<Self>, outcome: Outcome) {
        let inside_begin = BEGINNING.with(|b| b.get() == self.address());
        // Synchronous means the callback runs here, before Begin returns; a callback the nesting
        // guard sends to an engine thread runs after Begin returned, so it is not.
        let inline = INLINE_DEPTH.with(|d| d.get()) < MAX_INLINE_DEPTH;
        {
            let mut inner = self.inner.lock();
            if self.completed.load(Ordering::Acquire) {
                debug_assert!(false, "an operation completed twice");
                return;
            }
            inner.outcome = Some(outcome);
            self.deferred.store(inside_begin, Ordering::Relaxed);
            self.completed_synchronously.store(inline && inside_begin, Ordering::Release);
            self.completed.store(true, Ordering::Release);
            self.done.notify_all();
        }
        // The completed flag above lets only one completion through: the callback runs once.
        if !inside_begin {
            self.callback();
        }
    }

    fn callback(self: &Arc<Self>) {
        if INLINE_DEPTH.with(|d| d.get()) < MAX_INLINE_DEPTH {
            let _depth = DepthScope::enter();
            self.notify.notify();
        } else {
            let me = self.clone();
            crate::engine::post(Box::new(move || {
                let _depth = DepthScope::enter();
                me.notify.notify();
            }));
        }
    }

    pub fn is_completed(&self) -> bool {
        self.completed.load(Ordering::Acquire)
    }

    pub fn completed_synchronously(&self) -> bool {
        self.completed_synchronously.load(Ordering::Acquire)
    }

    /// Waits for completion; None = forever. Returns whether it completed.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        if self.is_completed() {
            return true;
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut inner = self.inner.lock();
        while !self.is_completed() {
            match deadline {
                None => self.done.wait(&mut inner),
                Some(d) => {
                    if self.done.wait_until(&mut inner, d).timed_out() {
                        return self.is_completed();
                    }
                }
            }
        }
        true
    }

    /// Waits for completion and takes the outcome (End does this once).
    pub fn take_outcome(&self) -> Outcome {
        self.wait(None);
        self.inner.lock().outcome.take().unwrap_or_else(|| Err(Error::internal("the outcome was already taken")))
    }
}

impl<N: Notify> Sink for AsyncResult<N> {
    fn complete(self: Arc<Self>, outcome: Outcome) {
        self.record(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Value;
    use std::sync::atomic::AtomicUsize;

    struct Count(Arc<AtomicUsize>);
    impl Notify for Count {
        fn notify(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn completion_inside_begin_is_synchronous_and_runs_the_callback_before_begin_returns() {
        let calls = Arc::new(AtomicUsize::new(0));
        let r = AsyncResult::new(0, OpKind::Write, Count(calls.clone()));
        r.begin(|done| {
            done.complete(Ok(Value::Bytes(3)));
            Ok(())
        })
        .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(r.is_completed() && r.completed_synchronously());
        assert!(matches!(r.take_outcome(), Ok(Value::Bytes(3))));
    }

    #[test]
    fn a_begin_that_fails_runs_no_callback_even_when_its_body_dropped_the_completion() {
        let calls = Arc::new(AtomicUsize::new(0));
        let r = AsyncResult::new(0, OpKind::Write, Count(calls.clone()));
        assert!(r.begin(|done| { drop(done); Err(Error::argument("no")) }).is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_dropped_completion_after_begin_completes_with_an_internal_error() {
        let calls = Arc::new(AtomicUsize::new(0));
        let r = AsyncResult::new(0, OpKind::Read, Count(calls.clone()));
        let mut keep = None;
        r.begin(|done| {
            keep = Some(done);
            Ok(())
        })
        .unwrap();
        std::thread::spawn(move || drop(keep)).join().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(r.take_outcome().err().map(|e| e.status), Some(crate::error::code::INTERNAL));
    }

    #[test]
    fn completion_on_another_thread_is_asynchronous() {
        let r = AsyncResult::new(0, OpKind::Read, ());
        let mut keep = None;
        r.begin(|done| {
            keep = Some(done);
            Ok(())
        })
        .unwrap();
        assert!(!r.wait(Some(Duration::from_millis(10))));
        let done = keep.take().unwrap();
        std::thread::spawn(move || done.complete(Ok(Value::Unit))).join().unwrap();
        assert!(r.wait(None));
        assert!(!r.completed_synchronously());
    }
}
