//! IAsyncResult: one asynchronous operation from Begin to End.
//!
//! The rules (seeds, DESIGN.md section 1): the callback runs exactly once; when the work finished
//! inside Begin it runs on the Begin caller's thread before Begin returns and
//! CompletedSynchronously is true, otherwise on the engine thread that finished the work.
//! IsCompleted is set and waiters are woken before the callback runs. A thread that keeps
//! completing synchronously from inside callbacks would dive down its own stack; past
//! `MAX_INLINE_DEPTH` nested callbacks the next one goes to an engine thread instead (the
//! Framework's ForceAsyncCount guard).

use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::net::socket::Socket;
use parking_lot::{Condvar, Mutex};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
        }
    }
}

/// What a finished operation produced.
pub enum Value {
    Unit,
    Bytes(usize),
    Socket(Arc<Socket>),
}

pub type Outcome = Result<Value>;

/// The continuation an operation calls once with its outcome: an IAsyncResult to complete (no
/// allocation: the common case, one per Begin) or any closure (layered streams, sync waits).
pub struct Completion(Target);

enum Target {
    Result(Arc<AsyncResult>),
    Func(Box<dyn FnOnce(Outcome) + Send>),
}

impl Completion {
    pub fn new(f: impl FnOnce(Outcome) + Send + 'static) -> Completion {
        Completion(Target::Func(Box::new(f)))
    }

    /// Delivers the outcome (consumes the completion: it runs once).
    pub fn complete(self, outcome: Outcome) {
        match self.0 {
            Target::Result(r) => r.complete(outcome),
            Target::Func(f) => f(outcome),
        }
    }
}

/// The user's callback: the C function pointer itself (the one type from the C surface the core
/// holds), so starting an operation allocates nothing for it.
pub type Callback = unsafe extern "C" fn(result: *mut crate::ffi::apm_async_result, state: *mut std::ffi::c_void);

struct Inner {
    outcome: Option<Outcome>,
}

pub struct AsyncResult {
    /// The handle of the object whose Begin created this result.
    pub owner: Handle,
    pub op: OpKind,
    /// The caller's state pointer, as an integer (the library never dereferences it).
    pub state: usize,
    callback: Option<Callback>,
    handle: AtomicU64,
    completed: AtomicBool,
    completed_synchronously: AtomicBool,
    inner: Mutex<Inner>,
    done: Condvar,
}

thread_local! {
    /// The result whose Begin is running on this thread: a completion for it is synchronous.
    static BEGINNING: Cell<*const AsyncResult> = const { Cell::new(std::ptr::null()) };
    static INLINE_DEPTH: Cell<u32> = const { Cell::new(0) };
}

impl AsyncResult {
    pub fn new(owner: Handle, op: OpKind, state: usize, callback: Option<Callback>) -> Arc<AsyncResult> {
        Arc::new(AsyncResult {
            owner,
            op,
            state,
            callback,
            handle: AtomicU64::new(0),
            completed: AtomicBool::new(false),
            completed_synchronously: AtomicBool::new(false),
            inner: Mutex::new(Inner { outcome: None }),
            done: Condvar::new(),
        })
    }

    /// The handle the C caller knows this result by (set once it is in the handle table).
    pub fn handle(&self) -> Handle {
        Handle(self.handle.load(Ordering::Acquire))
    }

    pub fn set_handle(&self, handle: Handle) {
        self.handle.store(handle.0, Ordering::Release);
    }

    /// Runs the body of a Begin: a completion that happens inside `start` on this thread is
    /// synchronous. `start` returns Err only when it started nothing (the completion is dropped).
    pub fn begin(self: &Arc<Self>, start: impl FnOnce(Completion) -> Result<()>) -> Result<()> {
        let previous = BEGINNING.with(|b| b.replace(Arc::as_ptr(self)));
        let result = start(Completion(Target::Result(self.clone())));
        BEGINNING.with(|b| b.set(previous));
        result
    }

    /// Records the outcome, wakes waiters, then runs the callback (exactly once).
    pub fn complete(self: &Arc<Self>, outcome: Outcome) {
        // Synchronous means the callback runs here, before Begin returns; a callback the nesting
        // guard sends to an engine thread runs after Begin returned, so it is not.
        let inline = INLINE_DEPTH.with(|d| d.get()) < MAX_INLINE_DEPTH;
        let synchronous = inline && BEGINNING.with(|b| b.get() == Arc::as_ptr(self));
        {
            let mut inner = self.inner.lock();
            if self.completed.load(Ordering::Acquire) {
                debug_assert!(false, "an operation completed twice");
                return;
            }
            inner.outcome = Some(outcome);
            self.completed_synchronously.store(synchronous, Ordering::Release);
            self.completed.store(true, Ordering::Release);
            self.done.notify_all();
        }
        // The completed flag above lets only one completion through: the callback runs once.
        let Some(callback) = self.callback else { return };
        let (handle, state) = (self.handle(), self.state);
        if inline {
            run_callback(callback, handle, state);
        } else {
            crate::engine::post(Box::new(move || run_callback(callback, handle, state)));
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

/// Runs an operation started by `start` to its outcome, blocking the calling thread: the
/// synchronous form of streams whose Begin does the work (a custom stream, an SslStream).
pub fn wait_for(start: impl FnOnce(Completion) -> Result<()>) -> Outcome {
    let slot = Arc::new((Mutex::new(None::<Outcome>), Condvar::new()));
    let s = slot.clone();
    start(Completion::new(move |o| {
        *s.0.lock() = Some(o);
        s.1.notify_all();
    }))?;
    let mut g = slot.0.lock();
    while g.is_none() {
        slot.1.wait(&mut g);
    }
    g.take().unwrap_or_else(|| Err(Error::internal("an operation left no outcome")))
}

/// The handle of the result whose Begin is running on this thread (NULL outside a Begin).
pub fn current_beginning_handle() -> Handle {
    BEGINNING.with(|b| {
        let p = b.get();
        // SAFETY: a non-null pointer was set by `begin`, which holds an Arc to it meanwhile.
        if p.is_null() {
            Handle::NULL
        } else {
            unsafe { (*p).handle() }
        }
    })
}

fn run_callback(callback: Callback, handle: Handle, state: usize) {
    INLINE_DEPTH.with(|d| d.set(d.get() + 1));
    // SAFETY: the caller's callback with the result's handle and the caller's own state.
    unsafe { callback(handle.0 as usize as *mut crate::ffi::apm_async_result, state as *mut std::ffi::c_void) };
    INLINE_DEPTH.with(|d| d.set(d.get() - 1));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn completion_inside_begin_is_synchronous_and_runs_the_callback_inline() {
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        unsafe extern "C" fn count(_: *mut crate::ffi::apm_async_result, state: *mut std::ffi::c_void) {
            assert_eq!(state as usize, 7);
            CALLS.fetch_add(1, Ordering::SeqCst);
        }
        let calls = &CALLS;
        let r = AsyncResult::new(Handle::NULL, OpKind::Write, 7, Some(count));
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
    fn completion_on_another_thread_is_asynchronous() {
        let r = AsyncResult::new(Handle::NULL, OpKind::Read, 0, None);
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
