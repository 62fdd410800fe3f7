//! What every asynchronous operation hands back, and how: an `Outcome`, delivered once through a
//! `Completion`.
//!
//! This is the leaf every layer shares (the engine completes operations, streams chain them, an
//! IAsyncResult receives them). It knows no IAsyncResult, no handle and no C: the target of a
//! completion is any `Sink` or closure.
//!
//! Exactly once is structural: `complete` consumes the completion, and a completion dropped
//! without completing (a panic unwound past it, a bug) delivers an internal error instead of
//! losing its callback.

use crate::error::{Error, Result};
use parking_lot::{Condvar, Mutex};
use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

/// What a finished operation produced.
pub enum Value {
    Unit,
    Bytes(usize),
    /// An object an End hands out (EndAccept's socket). Type-erased so that this leaf names no
    /// class: the layer that hands it out downcasts it.
    Object(Arc<dyn Any + Send + Sync>),
}

impl Value {
    /// The byte count of a transfer; 0 for any other value.
    pub fn bytes(&self) -> usize {
        match self {
            Value::Bytes(n) => *n,
            _ => 0,
        }
    }

    /// The object of an End that hands one out.
    pub fn object<T: Any + Send + Sync>(self) -> Result<Arc<T>> {
        match self {
            Value::Object(o) => o.downcast::<T>().map_err(|_| Error::internal("an operation produced the wrong object")),
            _ => Err(Error::internal("an operation produced no object")),
        }
    }
}

pub type Outcome = Result<Value>;

/// Something an operation's outcome can be delivered to without an allocation per operation:
/// the IAsyncResult of a Begin, whose slot is never freed (`crate::async_result`).
pub trait Sink: Send + Sync {
    fn complete(&'static self, outcome: Outcome);
    /// The operation this completes (see `Completion::tag`); not 0.
    fn tag(&self) -> usize;
}

/// The continuation an operation calls once with its outcome.
///
/// Its `tag` names the operation it completes (the key of its IAsyncResult), so that a
/// layer can find and cancel a pending operation without a registry; a completion that wraps
/// another keeps the tag of the one it wraps (`Completion::wrapping`).
pub struct Completion {
    target: Option<Target>,
}

enum Target {
    Sink(&'static dyn Sink),
    /// A sink whose outcome is mapped first: a layer's error conversion, without a closure to
    /// allocate (a NetworkStream read's IOException over the socket's error).
    Mapped(&'static dyn Sink, fn(Outcome) -> Outcome),
    Func(Box<dyn FnOnce(Outcome) + Send>, usize),
}

/// The error a completion delivers when it is dropped without completing.
pub const ABANDONED: &str = "An internal error occurred in apmnet: the operation was abandoned without completing.";

impl Completion {
    pub fn new(f: impl FnOnce(Outcome) + Send + 'static) -> Completion {
        Completion { target: Some(Target::Func(Box::new(f), 0)) }
    }

    /// A completion delivered to `sink`, for the operation the sink's tag names.
    pub fn to(sink: &'static dyn Sink) -> Completion {
        Completion { target: Some(Target::Sink(sink)) }
    }

    /// A completion that runs `f` and stands for the same operation as `outer` (which `f`
    /// completes in turn).
    pub fn wrapping(outer: Completion, f: impl FnOnce(Outcome, Completion) + Send + 'static) -> Completion {
        let tag = outer.tag();
        Completion { target: Some(Target::Func(Box::new(move |o| f(o, outer)), tag)) }
    }

    /// `outer`, with its outcome passed through `map` first; allocates nothing when `outer` goes
    /// straight to a sink.
    pub fn mapped(mut outer: Completion, map: fn(Outcome) -> Outcome) -> Completion {
        match outer.target.take() {
            Some(Target::Sink(s)) => Completion { target: Some(Target::Mapped(s, map)) },
            target => {
                outer.target = target;
                Completion::wrapping(outer, move |o, outer| outer.complete(map(o)))
            }
        }
    }

    /// Which operation this completes (the key of its IAsyncResult): 0 for none in particular.
    pub fn tag(&self) -> usize {
        match &self.target {
            Some(Target::Sink(s) | Target::Mapped(s, _)) => s.tag(),
            Some(Target::Func(_, tag)) => *tag,
            None => 0,
        }
    }

    /// Delivers the outcome (consumes the completion: it runs once).
    pub fn complete(mut self, outcome: Outcome) {
        if let Some(target) = self.target.take() {
            deliver(target, outcome);
        }
    }
}

fn deliver(target: Target, outcome: Outcome) {
    match target {
        Target::Sink(s) => s.complete(outcome),
        Target::Mapped(s, map) => s.complete(map(outcome)),
        Target::Func(f, _) => f(outcome),
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if let Some(target) = self.target.take() {
            // This may run while a panic unwinds: a second panic here would abort the host.
            let run = move || deliver(target, Err(Error::internal(ABANDONED)));
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).is_err() {
                crate::engine::report_panic("a completion of an abandoned operation");
            }
        }
    }
}

/// Runs an operation started by `start` to its outcome, blocking the calling thread: the
/// synchronous form of streams whose Begin does the work (a custom stream, an SslStream).
pub fn wait_for(start: impl FnOnce(Completion) -> Result<()>) -> Outcome {
    wait_until(start, None, || {})
}

/// `wait_for` with a deadline: past it `on_timeout` runs (it cancels the operation, which then
/// completes with its cancellation error) and the wait goes on for that outcome.
pub fn wait_until(
    start: impl FnOnce(Completion) -> Result<()>,
    deadline: Option<Instant>,
    on_timeout: impl FnOnce(),
) -> Outcome {
    let slot = Arc::new((Mutex::new(None::<Outcome>), Condvar::new()));
    let s = slot.clone();
    start(Completion::new(move |o| {
        *s.0.lock() = Some(o);
        s.1.notify_all();
    }))?;
    let mut g = slot.0.lock();
    let mut on_timeout = Some(on_timeout);
    while g.is_none() {
        match deadline {
            Some(d) if on_timeout.is_some() => {
                if slot.1.wait_until(&mut g, d).timed_out() && g.is_none() {
                    drop(g);
                    if let Some(f) = on_timeout.take() {
                        f();
                    }
                    g = slot.0.lock();
                }
            }
            _ => slot.1.wait(&mut g),
        }
    }
    g.take().unwrap_or_else(|| Err(Error::internal("an operation left no outcome")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::code;

    #[test]
    fn a_dropped_completion_delivers_an_internal_error() {
        let got = Arc::new(Mutex::new(None));
        let g = got.clone();
        drop(Completion::new(move |o: Outcome| *g.lock() = Some(o.err().map(|e| e.status))));
        assert_eq!(*got.lock(), Some(Some(code::INTERNAL)));
    }

    #[test]
    fn a_completion_delivers_exactly_once() {
        let count = Arc::new(Mutex::new(0));
        let c = count.clone();
        Completion::new(move |_| *c.lock() += 1).complete(Ok(Value::Unit));
        assert_eq!(*count.lock(), 1);
    }

    #[test]
    fn wait_for_times_out_through_its_cancel_hook() {
        let keep: Arc<Mutex<Option<Completion>>> = Arc::default();
        let k = keep.clone();
        let k2 = keep.clone();
        let out = wait_until(
            move |done| {
                *k.lock() = Some(done);
                Ok(())
            },
            Some(Instant::now() + std::time::Duration::from_millis(5)),
            move || {
                if let Some(done) = k2.lock().take() {
                    done.complete(Err(Error::socket(libc::ETIMEDOUT)));
                }
            },
        );
        assert_eq!(out.err().map(|e| e.errno), Some(libc::ETIMEDOUT));
    }

    #[test]
    fn a_mapped_completion_maps_once_and_keeps_its_size() {
        let got = Arc::new(Mutex::new(None));
        let g = got.clone();
        let inner = Completion::new(move |o: Outcome| *g.lock() = Some(o.map(|v| v.bytes())));
        fn double(o: Outcome) -> Outcome {
            o.map(|v| Value::Bytes(v.bytes() * 2))
        }
        Completion::mapped(inner, double).complete(Ok(Value::Bytes(21)));
        assert_eq!(*got.lock(), Some(Ok(42)));
        // A sink, a mapped sink or a closure with its tag: one size, that of a queued
        // operation's completion.
        assert_eq!(std::mem::size_of::<Completion>(), 32);
    }

    #[test]
    fn objects_are_downcast_by_the_layer_that_hands_them_out() {
        let v = Value::Object(Arc::new(5u32));
        assert_eq!(*v.object::<u32>().unwrap(), 5);
        assert!(Value::Object(Arc::new(5u32)).object::<u64>().is_err());
    }
}
