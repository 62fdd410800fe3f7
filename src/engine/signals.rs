//! Keeping SIGPIPE away from the host without touching process-wide state.
//!
//! send() uses MSG_NOSIGNAL, but sendfile(2) has no such flag. Engine threads block SIGPIPE for
//! their whole life. On a caller's thread, `SigpipeGuard` blocks it around the one call, and if
//! the call raised it (EPIPE), takes the pending signal off the thread before restoring the mask,
//! so the host's disposition is never consulted. This is the technique curl and git use.

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

/// Blocks SIGPIPE on this thread until dropped (a no-op on engine threads).
pub struct SigpipeGuard {
    restore: Option<libc::sigset_t>,
    was_pending: bool,
}

impl SigpipeGuard {
    pub fn new() -> SigpipeGuard {
        if is_engine_thread() {
            return SigpipeGuard { restore: None, was_pending: false };
        }
        let set = sigpipe_set();
        // SAFETY: thread-local mask change and a query of pending signals.
        unsafe {
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            let mut pending: libc::sigset_t = std::mem::zeroed();
            libc::sigpending(&mut pending);
            let was_pending = libc::sigismember(&pending, libc::SIGPIPE) == 1;
            let already_blocked = libc::sigismember(&old, libc::SIGPIPE) == 1;
            SigpipeGuard { restore: if already_blocked { None } else { Some(old) }, was_pending }
        }
    }
}

impl Drop for SigpipeGuard {
    fn drop(&mut self) {
        if let Some(old) = self.restore.take() {
            // A write that failed with EPIPE raised SIGPIPE, even when the call still reported
            // bytes sent before the failure: take a SIGPIPE that became pending under the guard
            // off the thread before unblocking.
            if !self.was_pending {
                consume_pending_sigpipe();
            }
            // SAFETY: restores this thread's previous mask.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        }
    }
}
