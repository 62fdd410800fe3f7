//! Keeping SIGPIPE away from the host without touching process-wide state.
//!
//! send() uses MSG_NOSIGNAL, but sendfile(2) has no such flag. Engine threads block SIGPIPE for
//! their whole life. `SigpipeGuard` blocks it around the one call (on a caller's thread), and if
//! the call raised it (EPIPE), takes the pending signal off the thread before the guard ends, so
//! the host's disposition is never consulted and no SIGPIPE is left pending: not on an engine
//! thread (where a callback that unblocks SIGPIPE would otherwise receive it), not on a host
//! thread that blocks SIGPIPE itself. A SIGPIPE that was pending before the call is the host's
//! and stays. This is the technique curl and git use.

use std::cell::Cell;

thread_local! {
    static ENGINE_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn sigpipe_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        set
    }
}

/// Marks the calling thread as an engine thread and blocks SIGPIPE on it for good.
pub fn enter_engine_thread() {
    ENGINE_THREAD.with(|e| e.set(true));
    let set = sigpipe_set();
    // SAFETY: changes only this thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

pub fn is_engine_thread() -> bool {
    ENGINE_THREAD.with(|e| e.get())
}

fn consume_pending_sigpipe() {
    let set = sigpipe_set();
    let zero = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: queries and takes a pending, blocked SIGPIPE of this thread, waiting for nothing.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending);
        if libc::sigismember(&pending, libc::SIGPIPE) == 1 {
            while libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) == -1 && crate::error::errno() == libc::EINTR {}
        }
    }
}

fn sigpipe_pending() -> bool {
    // SAFETY: queries this thread's pending signals into a set we own.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending);
        libc::sigismember(&pending, libc::SIGPIPE) == 1
    }
}

/// Blocks SIGPIPE on this thread until dropped, and takes off a SIGPIPE the guarded call raised.
pub struct SigpipeGuard {
    /// The mask to restore: None when SIGPIPE was blocked already (an engine thread, or a host
    /// that blocks it).
    restore: Option<libc::sigset_t>,
    was_pending: bool,
}

impl SigpipeGuard {
    #[allow(clippy::new_without_default)]
    pub fn new() -> SigpipeGuard {
        if is_engine_thread() {
            return SigpipeGuard { restore: None, was_pending: sigpipe_pending() };
        }
        let set = sigpipe_set();
        // SAFETY: a change of this thread's mask only.
        let old = unsafe {
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            old
        };
        // SAFETY: reads the set filled in above.
        let already_blocked = unsafe { libc::sigismember(&old, libc::SIGPIPE) } == 1;
        SigpipeGuard { restore: (!already_blocked).then_some(old), was_pending: sigpipe_pending() }
    }
}

impl Drop for SigpipeGuard {
    fn drop(&mut self) {
        // A write that failed with EPIPE raised SIGPIPE, even when the call still reported bytes
        // sent before the failure: take a SIGPIPE that became pending under the guard off the
        // thread while it is still blocked.
        if !self.was_pending {
            consume_pending_sigpipe();
        }
        if let Some(old) = self.restore.take() {
            // SAFETY: restores this thread's previous mask.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        }
    }
}
