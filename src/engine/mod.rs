//! The I/O engine: N epoll event loops (each on its own thread, each owning a set of sockets for
//! their whole life) and a small blocking pool for work that cannot be non-blocking.
//!
//! Why this shape (reference/performance.md): waking a thread on the other CPU costs more than a
//! whole 64 KiB write here, so no operation pays a thread hop on its normal path. Begin tries the
//! syscall on the caller's thread first; only EAGAIN queues the operation on its socket, and the
//! loop that sees readiness performs the syscall and runs the callback itself.

mod blocking;
mod event_loop;
pub mod fork;
mod io_core;
pub mod signals;
mod timers;

pub use event_loop::EventLoop;
pub use io_core::{waited, Direction, IoCore, Notify, OpId, Operation, Owner, Poll};

use crate::error::{code, Error, Result};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A unit of work for an engine thread.
pub type Task = Box<dyn FnOnce() + Send>;

/// Settings read when the runtime starts.
#[derive(Clone, Copy)]
struct Config {
    /// Event-loop threads; 0 = APMNET_THREADS or half the CPUs.
    threads: usize,
    /// The most a loop with nothing to do polls before it sleeps; how much of it each wait uses
    /// is adaptive (event_loop::SpinPolicy), zero never spins.
    spin: Duration,
}

/// The default spin cap: long enough to catch the answer of a peer on the same machine without a
/// 20-25 us wake-up, short enough to cost little when a probe finds the loop really idle.
const DEFAULT_SPIN: Duration = Duration::from_micros(50);

static CONFIG: Mutex<Config> = Mutex::new(Config { threads: 0, spin: DEFAULT_SPIN });

struct Runtime {
    loops: Vec<Arc<EventLoop>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next: AtomicUsize,
    blocking: Arc<blocking::Pool>,
}

/// The running runtime. A std mutex, not parking_lot's: a forked child must be able to release
/// it although threads of the parent were waiting for it (see `fork`).
static RUNTIME: std::sync::Mutex<Option<Arc<Runtime>>> = std::sync::Mutex::new(None);

fn runtime_slot() -> std::sync::MutexGuard<'static, Option<Arc<Runtime>>> {
    // Nothing panics while holding it; a poisoned slot is still a valid Option.
    RUNTIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets the thread count and spin time; only before the runtime has started.
pub fn configure(threads: i32, spin_us: i32) -> Result<()> {
    if !(0..=64).contains(&threads) {
        return Err(Error::out_of_range("threads"));
    }
    if !(0..=1_000_000).contains(&spin_us) {
        return Err(Error::out_of_range("spin_us"));
    }
    let runtime = runtime_slot();
    if runtime.is_some() {
        return Err(Error::invalid_operation("The runtime has already started; configure it before first use."));
    }
    *CONFIG.lock() = Config { threads: threads as usize, spin: Duration::from_micros(spin_us as u64) };
    Ok(())
}

/// APMNET_THREADS, else half the CPUs (at least one). Not one per CPU: Begin does most of the
/// work on the caller's thread, and on a small machine a second loop takes the CPU that the
/// application and its peers need (measured: 100-connection echo on 2 vCPUs, one loop ahead of
/// two by about 15%).
fn default_threads() -> usize {
    std::env::var("APMNET_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| (1..=64).contains(n))
        .unwrap_or_else(|| (std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) / 2).clamp(1, 64))
}

fn runtime() -> Result<Arc<Runtime>> {
    let mut slot = runtime_slot();
    if let Some(rt) = slot.as_ref() {
        return Ok(rt.clone());
    }
    fork::register();
    let config = *CONFIG.lock();
    let n = if config.threads == 0 { default_threads() } else { config.threads };
    let mut loops = Vec::with_capacity(n);
    let mut threads = Vec::with_capacity(n);
    for i in 0..n {
        let lp = EventLoop::new(config.spin).map_err(|e| e.with(|fail| fail.status = code::INTERNAL))?;
        let run = lp.clone();
        let thread = std::thread::Builder::new()
            .name(format!("apmnet-loop-{i}"))
            .spawn(move || run.run())
            .map_err(|e| Error::internal(format!("cannot start an engine thread: {e}")))?;
        loops.push(lp);
        threads.push(thread);
    }
    let rt = Arc::new(Runtime {
        loops,
        threads: Mutex::new(threads),
        next: AtomicUsize::new(0),
        blocking: blocking::Pool::new(),
    });
    *slot = Some(rt.clone());
    Ok(rt)
}

/// The loop a new socket will live on (round robin).
pub fn assign_loop() -> Result<Arc<EventLoop>> {
    let rt = runtime()?;
    let i = rt.next.fetch_add(1, Ordering::Relaxed) % rt.loops.len();
    Ok(rt.loops[i].clone())
}

/// Runs `task` on an engine thread soon: on an engine thread, on its own loop (no cross-CPU
/// wake-up); elsewhere on a loop of the running runtime. It never starts a runtime (after a
/// shutdown that would bring the engine back to run one callback): without one, the task runs
/// on a short-lived thread of its own.
pub fn post(task: Task) {
    if let Some(task) = EventLoop::post_to_current(task) {
        let running = runtime_slot().clone();
        match running {
            Some(rt) => {
                let i = rt.next.fetch_add(1, Ordering::Relaxed) % rt.loops.len();
                rt.loops[i].post(task);
            }
            None => {
                let spawned = std::thread::Builder::new().name("apmnet-callback".into()).spawn(move || {
                    signals::enter_engine_thread();
                    task()
                });
                if let Err(e) = spawned {
                    // The task is gone with the failed spawn; nothing else can run it now.
                    eprintln!("apmnet: cannot start a thread to run a callback: {e}");
                }
            }
        }
    }
}

/// A timer: its task runs on an engine thread at its deadline, unless cancelled first.
pub struct Timer {
    lp: std::sync::Weak<EventLoop>,
    key: timers::TimerKey,
}

impl Timer {
    /// Cancels the timer; false when its task has run (or is running) already.
    pub fn cancel(&self) -> bool {
        self.lp.upgrade().is_some_and(|lp| lp.cancel_timer(self.key))
    }
}

/// Runs `task` on an engine thread at `at`: on the calling loop's own thread when called from
/// one, else on a loop of the runtime (started if need be).
pub fn add_timer(at: std::time::Instant, task: Task) -> Result<Timer> {
    let lp = match EventLoop::current() {
        Some(lp) => lp,
        None => assign_loop()?,
    };
    let key = lp.add_timer(at, task);
    Ok(Timer { lp: Arc::downgrade(&lp), key })
}

/// A panic was caught where it must not spread (an engine thread, a completion): the operation it
/// hit completed with APM_E_INTERNAL; say so on stderr, as there is no caller to tell.
pub fn report_panic(what: &str) {
    eprintln!("apmnet: internal panic in {what} (caught; the operation completed with APM_E_INTERNAL)");
}

/// Runs `task` on the blocking pool (name resolution and other calls that may block).
pub fn spawn_blocking(task: Task) -> Result<()> {
    runtime()?.blocking.spawn(task)
}

/// True on the library's own threads, where waiting would deadlock the engine.
pub fn on_engine_thread() -> bool {
    signals::is_engine_thread()
}

/// Whether the calling thread may shut the runtime down: not an engine thread, and not inside a
/// callback, which can also run on the caller's own thread (inline in Begin, inside a close or a
/// custom stream's completion) where shutting down would abort the engine under it.
pub fn may_shut_down() -> bool {
    !on_engine_thread() && !crate::async_result::in_callback()
}

/// Stops the runtime: every pending operation completes (aborted) and its callback runs, then
/// all threads are joined. The next use starts a new runtime. Refused where `may_shut_down` says
/// no (the C surface reports that under its own function's name first).
pub fn shutdown() -> Result<()> {
    if !may_shut_down() {
        return Err(Error::invalid_operation(
            "The runtime cannot be shut down from a callback or an engine thread.",
        ));
    }
    let Some(rt) = runtime_slot().take() else { return Ok(()) };
    for lp in &rt.loops {
        lp.stop();
    }
    rt.blocking.stop();
    let threads = std::mem::take(&mut *rt.threads.lock());
    for t in threads {
        let _ = t.join();
    }
    rt.blocking.join();
    Ok(())
}
