//! Synchronous operations: the asynchronous one, driven to completion by the calling thread.
//!
//! The caller polls the fd itself and runs the socket's queue when it is ready, so a synchronous
//! call never waits for an engine thread: no hop on its path, and no deadlock when it is made
//! from a callback on the very loop that owns the socket. It completes only its own operation
//! on its thread: other threads' operations that it moves along complete on the socket's loop.
//! A timeout cancels the operation (SocketError.TimedOut), as .NET's emulated
//! Send/ReceiveTimeout does.
//!
//! The operation does not put the fd in the loop's epoll set (`engine::waited`), so a socket
//! only ever used synchronously never wakes its loop: no second thread woken per readiness, no
//! epoll_ctl. Once an asynchronous operation has waited on the socket, the loop sees the same
//! readiness and may run the queue first, completing the operation on its thread (the data is
//! then read and no longer wakes our poll): the completion then wakes the caller through its
//! thread's eventfd, polled beside the socket.

use crate::op::{Completion, Outcome};
use crate::engine::{self, Direction, IoCore, OpId};
use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest single poll, so a close that races with us is noticed even if the fd number is reused.
const POLL_SLICE_MS: i64 = 100;

/// A thread's eventfd for the completions of its synchronous operations on other threads.
struct Wake(libc::c_int);

impl Wake {
    fn new() -> Option<Wake> {
        // SAFETY: creates an fd this thread owns.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        (fd >= 0).then_some(Wake(fd))
    }

    fn signal(fd: libc::c_int) {
        let one: u64 = 1;
        // SAFETY: 8 bytes from a local to an eventfd that outlives the operation (see `run`).
        unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
    }

    fn drain(fd: libc::c_int) {
        let mut n: u64 = 0;
        // SAFETY: reads 8 bytes into a local.
        unsafe { libc::read(fd, &mut n as *mut u64 as *mut libc::c_void, 8) };
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        // SAFETY: closes the fd this thread owns (at thread exit; no operation of it is pending).
        unsafe { libc::close(self.0) };
    }
}

thread_local! {
    static WAKE: Option<Wake> = Wake::new();
}

pub fn run(
    core: &IoCore,
    dir: Direction,
    timeout_ms: i32,
    start: impl FnOnce(Completion) -> Result<Option<OpId>>,
) -> Outcome {
    let slot: Arc<Mutex<Option<Outcome>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    // Without an eventfd (none left) the poll slices alone bound the wait, as before.
    let wake = WAKE.try_with(|w| w.as_ref().map(|w| w.0)).ok().flatten();
    let owner = std::thread::current().id();
    let id = engine::waited(|| start(Completion::new(move |outcome| {
        let mut slot = s.lock();
        *slot = Some(outcome);
        // Signalled under the slot's lock: the caller takes the outcome after the write, so the
        // eventfd (its thread's) is still open.
        if let Some(fd) = wake.filter(|_| std::thread::current().id() != owner) {
            Wake::signal(fd);
        }
    })))?;
    let deadline = (timeout_ms > 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
    loop {
        if let Some(outcome) = slot.lock().take() {
            return outcome;
        }
        let Some(id) = id else { return Err(Error::internal("a completed operation left no outcome")) };
        let mut wait_ms = POLL_SLICE_MS;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                core.cancel(dir, id, Error::socket(libc::ETIMEDOUT));
                continue;
            }
            wait_ms = wait_ms.min(left.as_millis() as i64 + 1);
        }
        let events = match dir {
            Direction::Read => libc::POLLIN | libc::POLLRDHUP,
            Direction::Write => libc::POLLOUT,
        };
        let waited = core.with_fd(|fd| fd);
        if let Some(fd) = waited {
            let mut p = [
                libc::pollfd { fd, events, revents: 0 },
                libc::pollfd { fd: wake.unwrap_or(-1), events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: two pollfds on the stack (a negative fd is ignored).
            unsafe { libc::poll(p.as_mut_ptr(), 2, wait_ms as i32) };
            if p[1].revents != 0 {
                if let Some(w) = wake {
                    Wake::drain(w);
                }
            }
        }
        core.drive_own(dir, id);
    }
}
