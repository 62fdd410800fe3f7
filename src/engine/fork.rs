//! fork(2) without exec: the parent is never affected by what a child does, and a child may use
//! the library again.
//!
//! The parent's engine is shared state in the child: its epoll instances are the same kernel
//! objects (an epoll_ctl in the child changes the parent's set), its threads do not exist, and a
//! lock an engine thread held at the fork stays held. So:
//!
//! * Around fork (`pthread_atfork`), the forking thread takes the locks whose data the child will
//!   read (the runtime slot, each loop's state, and those of the layer that `install`s hooks: the
//!   handle table), so the child inherits that data consistent. The parent releases them all; the
//!   child releases only the std mutexes it will use again (the runtime slot, the table's
//!   shards), as a parking_lot mutex could hand itself to a waiter that did not survive the
//!   fork, and leaves the abandoned loops' locks held. Then it counts the fork.
//! * The first library call in the child (`after_fork`) abandons everything inherited: it closes
//!   the child's copies of the sockets and epoll fds (closing a descriptor never touches the
//!   parent's; no epoll_ctl and no shutdown is ever made on them) and leaks the objects, whose
//!   pending operations belong to the parent and must not complete here. The layers then forget
//!   their handles (they become stale: ObjectDisposed), and the next new socket starts a fresh
//!   engine.

use super::{runtime_slot, Runtime};
use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, MutexGuard, Once, OnceLock};

/// Forks seen by this process's line (the child's value is one more than its parent's at fork).
static FORKS: AtomicU32 = AtomicU32::new(0);
/// The fork count the library last adapted to.
static SEEN: AtomicU32 = AtomicU32::new(0);

/// What a layer above the engine does around a fork (see the module comment).
#[derive(Clone, Copy)]
pub struct Hooks {
    /// Takes the layer's locks (the forking thread, before fork); what it returns is dropped
    /// after the fork on both sides, which releases them. Only std mutexes may be held this way:
    /// in the child a parking_lot mutex may hand itself to a waiter thread that did not survive
    /// the fork.
    pub prepare: fn() -> Box<dyn Any>,
    /// Forgets the layer's inherited objects without dropping them (the child, at its first
    /// call, after the engine has been abandoned).
    pub forget: fn(),
}

static HOOKS: OnceLock<Hooks> = OnceLock::new();
static REGISTER: Once = Once::new();

/// Registers the fork handlers (once; the engine does it when it starts).
pub fn register() {
    REGISTER.call_once(|| {
        // SAFETY: registers plain extern "C" functions that live as long as the library.
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
}

/// Adds the hooks of the layer above the engine (the C surface's handle table), once.
pub fn install(hooks: Hooks) {
    let _ = HOOKS.set(hooks);
    register();
}

/// What a child inherited and must neither use nor drop: kept reachable here for the child's
/// life (a leak by design, and one that memory checkers report as still reachable).
static GRAVE: std::sync::Mutex<Vec<Box<dyn Any + Send>>> = std::sync::Mutex::new(Vec::new());

/// Keeps `inherited` for the child's life, undropped.
pub fn bury(inherited: Box<dyn Any + Send>) {
    GRAVE.lock().unwrap_or_else(|e| e.into_inner()).push(inherited);
}

/// What the forking thread holds across fork(2).
struct Held {
    layer: Option<Box<dyn Any>>,
    slot: MutexGuard<'static, Option<Arc<Runtime>>>,
    runtime: Option<Arc<Runtime>>,
}

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

extern "C" fn prepare() {
    let layer = HOOKS.get().map(|h| (h.prepare)());
    let slot = runtime_slot();
    let runtime = slot.clone();
    if let Some(rt) = &runtime {
        for lp in &rt.loops {
            lp.lock_for_fork();
        }
    }
    HELD.with(|h| *h.borrow_mut() = Some(Held { layer, slot, runtime }));
}

extern "C" fn parent() {
    if let Some(held) = HELD.with(|h| h.borrow_mut().take()) {
        if let Some(rt) = &held.runtime {
            for lp in &rt.loops {
                // SAFETY: `prepare` locked them on this thread; their waiters are alive here.
                unsafe { lp.unlock_after_fork() };
            }
        }
        drop(held);
    }
}

extern "C" fn child() {
    // The loops stay locked: they are abandoned, and never locked again here.
    if let Some(held) = HELD.with(|h| h.borrow_mut().take()) {
        if let Some(rt) = held.runtime {
            bury(Box::new(rt));
        }
        drop(held.slot);
        drop(held.layer);
    }
    FORKS.fetch_add(1, Ordering::Release);
}

/// Called at every entry into the library: in a child that has not adapted yet, abandons the
/// inherited engine and objects. One relaxed load on the normal path.
#[inline]
pub fn after_fork() {
    if FORKS.load(Ordering::Relaxed) != SEEN.load(Ordering::Relaxed) {
        adapt();
    }
}

#[cold]
fn adapt() {
    let forks = FORKS.load(Ordering::Acquire);
    if SEEN.swap(forks, Ordering::AcqRel) == forks {
        return;
    }
    let inherited = runtime_slot().take();
    if let Some(rt) = inherited {
        for lp in &rt.loops {
            lp.abandon_after_fork();
        }
        // The parent's threads are not here to join, and the objects behind the runtime belong
        // to the parent's operations: nothing of it may run or be dropped in the child.
        bury(Box::new(rt));
    }
    super::event_loop::reset_spinner();
    if let Some(h) = HOOKS.get() {
        (h.forget)();
    }
}
