//! Synchronous operations: the asynchronous one, driven to completion by the calling thread.
//!
//! The caller polls the fd itself and runs the socket's queue when it is ready, so a synchronous
//! call never waits for an engine thread: no hop on its path, and no deadlock when it is made
//! from a callback on the very loop that owns the socket. It completes only its own operation
//! on its thread: other threads' operations that it moves along complete on the socket's loop.
//! A timeout cancels the operation (SocketError.TimedOut), as .NET's emulated
//! Send/ReceiveTimeout does.

use crate::op::{Completion, Outcome};
use crate::engine::{Direction, IoCore, OpId};
use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest single poll, so a close that races with us is noticed even if the fd number is reused.
const POLL_SLICE_MS: i64 = 100;

pub fn run(
    core: &IoCore,
    dir: Direction,
    timeout_ms: i32,
    start: impl FnOnce(Completion) -> Result<Option<OpId>>,
) -> Outcome {
    let slot: Arc<Mutex<Option<Outcome>>> = Arc::new(Mutex::new(None));
    let s = slot.clone();
    let id = start(Completion::new(move |outcome| *s.lock() = Some(outcome)))?;
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
            let mut p = libc::pollfd { fd, events, revents: 0 };
            // SAFETY: one pollfd on the stack.
            unsafe { libc::poll(&mut p, 1, wait_ms as i32) };
        }
        core.drive_own(dir, id);
    }
}
