//! One step of I/O in either form, and the once-only slots that let a timer or Abort race a
//! pending step.
//!
//! Every HTTP exchange is written once, in continuation style, and runs in two modes: `Async`
//! drives the streams with their Begin methods (the continuation runs on whatever thread
//! completes the step), `Sync` with their blocking methods (every continuation runs on the
//! caller's thread before the blocking call returns), so a blocking GetResponse drives its own
//! socket, as a blocking NetworkStream read does.

use crate::engine::{self, Timer};
use crate::error::{Error, Result};
use crate::op::{Completion, Outcome, Value};
use crate::stream::{ConstBuf, MutBuf, Stream};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How a step is driven.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Async,
    Sync,
}

/// A value that is taken at most once, by whichever of several racers gets there first (the
/// step's completion, its timer, Abort).
pub struct Once<T>(Mutex<Option<T>>);

impl<T> Once<T> {
    pub fn new(v: T) -> Once<T> {
        Once(Mutex::new(Some(v)))
    }

    pub fn take(&self) -> Option<T> {
        self.0.lock().take()
    }

    pub fn is_taken(&self) -> bool {
        self.0.lock().is_none()
    }
}

pub type Then<T> = Box<dyn FnOnce(Result<T>) + Send>;

/// Starts one stream operation (`start` hands its completion to a Begin method) so that its
/// outcome, or Begin's own failure, reaches `then` exactly once. A Begin that fails started
/// nothing: the completion it dropped on the way out is ignored in favour of its error.
pub fn start_op(start: impl FnOnce(Completion) -> Result<()>, then: impl FnOnce(Outcome) + Send + 'static) {
    enum St {
        Starting(Option<Outcome>),
        Running,
    }
    let then = Arc::new(Once::new(Box::new(then) as Box<dyn FnOnce(Outcome) + Send>));
    let state = Arc::new(Mutex::new(St::Starting(None)));
    let (t, s) = (then.clone(), state.clone());
    let done = Completion::new(move |o| {
        let mut st = s.lock();
        match &mut *st {
            St::Starting(slot) => *slot = Some(o),
            St::Running => {
                drop(st);
                if let Some(f) = t.take() {
                    f(o)
                }
            }
        }
    });
    let started = start(done);
    let early = std::mem::replace(&mut *state.lock(), St::Running);
    let outcome = match (started, early) {
        (Err(e), _) => Some(Err(e)),
        (Ok(()), St::Starting(Some(o))) => Some(o),
        _ => None,
    };
    if let Some(o) = outcome {
        if let Some(f) = then.take() {
            f(o)
        }
    }
}

/// Writes all of `buf` to `stream`.
pub fn write(stream: &Arc<dyn Stream>, buf: ConstBuf, mode: Mode, then: impl FnOnce(Result<()>) + Send + 'static) {
    match mode {
        Mode::Sync => then(stream.write(buf)),
        Mode::Async => {
            let s = stream.clone();
            start_op(move |done| s.begin_write(buf, done), move |o| then(o.map(drop)))
        }
    }
}

/// Reads up to `buf.len` bytes from `stream` (0 = its end).
pub fn read(stream: &Arc<dyn Stream>, buf: MutBuf, mode: Mode, then: impl FnOnce(Result<usize>) + Send + 'static) {
    match mode {
        Mode::Sync => then(stream.read(buf)),
        Mode::Async => {
            let s = stream.clone();
            start_op(move |done| s.begin_read(buf, done), move |o| then(o.map(|v| v.bytes())))
        }
    }
}

/// Runs a step under a deadline (`timeout_ms` <= 0: none): past it `on_timeout` runs (it
/// closes the connection, so the step stops) and `then` gets `error`. In the Begin form the
/// timer is set only when the step did not complete at once (a step that completes inside its
/// Begin costs no timer); a blocking step is under the timer from its start.
pub fn timed<T: Send + 'static>(
    mode: Mode,
    timeout_ms: i32,
    error: impl FnOnce() -> Error + Send + 'static,
    on_timeout: impl FnOnce() + Send + 'static,
    start: impl FnOnce(Then<T>),
    then: impl FnOnce(Result<T>) + Send + 'static,
) {
    let slot: Arc<Once<Then<T>>> = Arc::new(Once::new(Box::new(then)));
    let timer: Arc<Mutex<Option<Timer>>> = Arc::default();
    let arm = |slot: &Arc<Once<Then<T>>>| {
        let s = slot.clone();
        let at = Instant::now() + Duration::from_millis(timeout_ms as u64);
        let fire = Box::new(move || {
            if let Some(f) = s.take() {
                on_timeout();
                f(Err(error()))
            }
        });
        engine::add_timer(at, fire).ok()
    };
    let mut arm = (timeout_ms > 0).then_some(arm);
    if mode == Mode::Sync {
        if let Some(a) = arm.take() {
            *timer.lock() = a(&slot);
        }
    }
    let (s, tm) = (slot.clone(), timer.clone());
    start(Box::new(move |r| {
        if let Some(f) = s.take() {
            if let Some(t) = tm.lock().take() {
                t.cancel();
            }
            f(r)
        }
    }));
    let Some(arm) = arm else { return };
    if slot.is_taken() {
        return;
    }
    let t = arm(&slot);
    *timer.lock() = t;
    // The step may have completed while the timer was being set.
    if slot.is_taken() {
        if let Some(t) = timer.lock().take() {
            t.cancel();
        }
    }
}

/// The outcome of a step that produced nothing but success.
pub fn unit(r: Result<()>) -> Outcome {
    r.map(|()| Value::Unit)
}
