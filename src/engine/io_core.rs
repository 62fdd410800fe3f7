//! The part of a socket the engine drives: its fd and one FIFO queue per direction.
//!
//! An operation is tried at once when its queue is empty, on the caller's thread; it is queued
//! only when the syscall said EAGAIN. The loop, told by an edge that the socket became ready,
//! retries the head of the queue until it is empty or EAGAIN again. Each queue has its own lock,
//! so one reader and one writer never wait for each other, and every syscall on the fd happens
//! under one of them, which is what lets close() take the fd away safely. No lock is held while a
//! completion (and so a user callback) runs.
//!
//! Lock order: the write side before the read side (close, replace_fd). Attempts run under a
//! side lock and may take global locks (accept registers a new socket with a loop); holders of
//! global locks never take a side lock.
//!
//! Exactly once: an attempt that panics completes its operation with APM_E_INTERNAL and the
//! queue behind it goes on; a synchronous caller driving the queue completes only its own
//! operation on its thread and hands the others' completions to the socket's loop.

use super::event_loop::EventLoop;
use crate::error::{Error, Result};
use crate::op::{Completion, Outcome};
use parking_lot::{Mutex, MutexGuard};
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

/// What one attempt of an operation came to.
pub enum Poll {
    Ready(Outcome),
    /// The syscall said EAGAIN: wait for the next readiness edge.
    Pending,
}

/// Identifies a queued operation, for cancelling it (sync timeouts).
pub type OpId = u64;

pub type Attempt = Box<dyn FnMut(RawFd) -> Poll + Send>;

/// Runs one attempt; a panic inside it becomes the operation's internal error.
fn attempt_once(attempt: &mut (dyn FnMut(RawFd) -> Poll + Send), fd: RawFd) -> Poll {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| attempt(fd))) {
        Ok(poll) => poll,
        Err(_) => {
            super::report_panic("an I/O attempt");
            Poll::Ready(Err(Error::internal("An internal error occurred in apmnet (a panic was caught).")))
        }
    }
}
/// Called after each attempt, outside the lock (progress reports).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

struct Queued {
    id: OpId,
    attempt: Attempt,
    done: Completion,
    notify: Option<Notify>,
    /// The readiness count (`Side::ready`) at which this operation last said EAGAIN, or NEVER.
    pending_at: u64,
}

#[derive(Default)]
struct Side {
    queue: OpQueue,
    closed: bool,
}

/// What a direction knows outside its lock, in one word (a socket is mostly idle, and these
/// are two per socket):
/// * above bit 0, how many times readiness was seen (an epoll edge, or a synchronous waiter's
///   poll). An operation that said EAGAIN at the current count waits for the next: the socket
///   is edge-triggered, so whatever arrives after that EAGAIN brings a new edge.
/// * bit 0, missed: the loop saw readiness while another thread held the side; that thread has
///   the queue run again once it lets go (`Held`). Set only by the loop's thread.
#[derive(Default)]
struct Readiness(AtomicU64);

const MISSED: u64 = 1;

impl Readiness {
    fn saw(&self) {
        self.0.fetch_add(2, Ordering::SeqCst);
    }
    /// The count of readiness seen so far.
    fn seen(&self) -> u64 {
        self.0.load(Ordering::SeqCst) >> 1
    }
    fn set_missed(&self) {
        self.0.fetch_or(MISSED, Ordering::SeqCst);
    }
    /// Clears the flag; whether it was set.
    fn take_missed(&self) -> bool {
        self.0.fetch_and(!MISSED, Ordering::SeqCst) & MISSED != 0
    }
}

/// `Queued::pending_at` of an operation that has not said EAGAIN (counts never get there).
const NEVER: u64 = u64::MAX;

/// A FIFO of queued operations that keeps its head inline: almost always at most one operation
/// waits per direction, and then the queue allocates nothing (a VecDeque would keep a 4-slot
/// buffer for the socket's whole life once anything had waited). The rest, rare, is boxed, so
/// that an idle socket pays one word for it rather than a VecDeque's four.
#[derive(Default)]
struct OpQueue {
    head: Option<Queued>,
    // Boxed on purpose: one word while empty, where a VecDeque is four.
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<Queued>>>,
}

impl OpQueue {
    fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    fn push_back(&mut self, op: Queued) {
        if self.head.is_none() {
            self.head = Some(op);
        } else {
            self.rest.get_or_insert_with(Box::default).push_back(op);
        }
    }

    fn front_mut(&mut self) -> Option<&mut Queued> {
        self.head.as_mut()
    }

    fn pop_front(&mut self) -> Option<Queued> {
        let op = self.head.take();
        self.head = self.rest.as_mut().and_then(|r| r.pop_front());
        if self.rest.as_ref().is_some_and(|r| r.is_empty()) {
            self.rest = None;
        }
        op
    }

    fn remove_id(&mut self, id: OpId) -> Option<Queued> {
        if self.head.as_ref().is_some_and(|q| q.id == id) {
            return self.pop_front();
        }
        let rest = self.rest.as_mut()?;
        let pos = rest.iter().position(|q| q.id == id)?;
        rest.remove(pos)
    }

    fn iter(&self) -> impl Iterator<Item = &Queued> + '_ {
        self.head.iter().chain(self.rest.iter().flat_map(|r| r.iter()))
    }

    fn drain(&mut self) -> impl Iterator<Item = Queued> + '_ {
        self.head.take().into_iter().chain(self.rest.take().into_iter().flat_map(|r| r.into_iter()))
    }
}

pub struct IoCore {
    me: Weak<IoCore>,
    fd: AtomicI32,
    lp: Arc<EventLoop>,
    read: Mutex<Side>,
    write: Mutex<Side>,
    read_ready: Readiness,
    write_ready: Readiness,
    next_id: AtomicU64,
}

/// A side's lock, held. The loop never waits for a side another thread holds (a caller sending
/// 64 KiB inline holds it for the length of the syscall, and a loop spinning for it meanwhile
/// takes the CPU the peer needs on a small machine): it records the readiness as missed and
/// moves on, and whoever holds the side has the queue run again on the loop when it lets go.
struct Held<'a> {
    core: &'a IoCore,
    dir: Direction,
    guard: Option<MutexGuard<'a, Side>>,
}

impl Deref for Held<'_> {
    type Target = Side;
    fn deref(&self) -> &Side {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut Side {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        if self.core.readiness(self.dir).take_missed() {
            self.core.run_again_on_loop(self.dir);
        }
    }
}

impl IoCore {
    /// Takes ownership of the non-blocking `fd` and registers it with `lp`.
    pub fn new(fd: RawFd, lp: Arc<EventLoop>) -> Result<Arc<IoCore>> {
        let core = Arc::new_cyclic(|me| IoCore {
            me: me.clone(),
            fd: AtomicI32::new(fd),
            lp: lp.clone(),
            read: Mutex::default(),
            write: Mutex::default(),
            read_ready: Readiness::default(),
            write_ready: Readiness::default(),
            next_id: AtomicU64::new(1),
        });
        if let Err(e) = lp.register(&core, fd) {
            core.fd.store(-1, Ordering::Release);
            // SAFETY: the fd is ours and was never shared.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        Ok(core)
    }

    fn lock_of(&self, dir: Direction) -> &Mutex<Side> {
        match dir {
            Direction::Read => &self.read,
            Direction::Write => &self.write,
        }
    }

    fn readiness(&self, dir: Direction) -> &Readiness {
        match dir {
            Direction::Read => &self.read_ready,
            Direction::Write => &self.write_ready,
        }
    }

    /// Takes the side's lock, waiting for it.
    fn side(&self, dir: Direction) -> Held<'_> {
        Held { core: self, dir, guard: Some(self.lock_of(dir).lock()) }
    }

    /// The loop's way in: the side's lock if it is free; else the readiness is left to its
    /// holder (see `Held`). Only the loop's thread calls this.
    fn try_side(&self, dir: Direction) -> Option<Held<'_>> {
        let lock = self.lock_of(dir);
        let ready = self.readiness(dir);
        if let Some(g) = lock.try_lock() {
            return Some(Held { core: self, dir, guard: Some(g) });
        }
        ready.set_missed();
        // The holder may have let go before it could see the flag: try once more. If someone
        // holds it now, they took it before the flag was set and will see it when they let go.
        let g = lock.try_lock()?;
        ready.take_missed();
        Some(Held { core: self, dir, guard: Some(g) })
    }

    /// Runs the queue again on the loop, for readiness that came while another thread held it.
    fn run_again_on_loop(&self, dir: Direction) {
        if let Some(me) = self.me.upgrade() {
            self.lp.post(Box::new(move || me.drive(dir, None)));
        }
    }

    pub fn is_closed(&self) -> bool {
        self.fd.load(Ordering::Acquire) < 0
    }

    /// Runs a control syscall (bind, setsockopt, ...) with the fd, which stays open meanwhile.
    pub fn with_fd<R>(&self, f: impl FnOnce(RawFd) -> R) -> Option<R> {
        let _side = self.side(Direction::Read);
        let fd = self.fd.load(Ordering::Acquire);
        if fd < 0 {
            None
        } else {
            Some(f(fd))
        }
    }

    /// Starts an operation: tries it now when nothing is queued ahead of it, else queues it.
    /// Returns the id of the queued operation, or None when it completed (`done` has run).
    pub fn submit<F>(&self, dir: Direction, mut attempt: F, done: Completion, notify: Option<Notify>) -> Option<OpId>
    where
        F: FnMut(RawFd) -> Poll + Send + 'static,
    {
        let mut side = self.side(dir);
        // Checked under the side lock, which the loop's abort pass takes after setting `stopping`:
        // an operation either sees it and aborts here, or is queued before the pass drains it.
        if side.closed || self.lp.is_stopping() {
            drop(side);
            done.complete(Err(Error::aborted()));
            return None;
        }
        let tried = side.queue.is_empty();
        // Read before the attempt: readiness seen after it makes the loop try again.
        let ready = self.readiness(dir).seen();
        if tried {
            let fd = self.fd.load(Ordering::Acquire);
            if let Poll::Ready(outcome) = attempt_once(&mut attempt, fd) {
                drop(side);
                if let Some(n) = notify {
                    n();
                }
                done.complete(outcome);
                return None;
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Tried above only when nothing was queued ahead of it.
        let pending_at = if tried { ready } else { NEVER };
        side.queue.push_back(Queued { id, attempt: Box::new(attempt), done, notify: notify.clone(), pending_at });
        drop(side);
        if let Some(n) = notify {
            n();
        }
        Some(id)
    }

    /// The loop saw readiness in `dir`: run queued operations until one has to wait.
    pub fn on_ready(&self, dir: Direction) {
        self.readiness(dir).saw();
        self.drive(dir, None);
    }

    /// A synchronous caller waiting for its operation `own` saw readiness: run the queue as the
    /// loop would, but complete only `own` here; the operations of others ahead of it complete on
    /// the socket's loop, where their callbacks belong.
    pub fn drive_own(&self, dir: Direction, own: OpId) {
        self.readiness(dir).saw();
        self.drive(dir, Some(own));
    }

    /// Runs the queue of `dir`: the loop's pass when `own` is None (which never waits for the
    /// side's lock), a synchronous caller's otherwise.
    fn drive(&self, dir: Direction, own: Option<OpId>) {
        loop {
            let side = if own.is_some() { Some(self.side(dir)) } else { self.try_side(dir) };
            let Some(mut side) = side else { return };
            let fd = self.fd.load(Ordering::Acquire);
            let ready = self.readiness(dir).seen();
            let Some(head) = side.queue.front_mut() else { return };
            // Queued by a Begin (typically in a callback of this very pass) that said EAGAIN after
            // this readiness was seen: trying again now would only say EAGAIN again, one wasted
            // syscall per echo round trip. The next edge brings it back.
            if head.pending_at == ready {
                return;
            }
            let poll = attempt_once(&mut *head.attempt, fd);
            let notify = head.notify.clone();
            match poll {
                Poll::Pending => {
                    head.pending_at = ready;
                    drop(side);
                    if let Some(n) = notify {
                        n();
                    }
                    return;
                }
                Poll::Ready(outcome) => {
                    let op = side.queue.pop_front().expect("head exists");
                    drop(side);
                    if let Some(n) = notify {
                        n();
                    }
                    match own {
                        Some(id) if id != op.id => self.lp.post(Box::new(move || op.done.complete(outcome))),
                        _ => op.done.complete(outcome),
                    }
                }
            }
        }
    }

    /// Cancels the queued operation whose completion carries `tag` (its IAsyncResult): it
    /// completes with OperationAborted. A queued operation has done nothing that cannot be taken
    /// back, except a send that already sent part of its bytes (the rest is not sent, as in .NET).
    /// False when no queued operation has that tag (it completed, or never waited).
    pub fn cancel_tagged(&self, tag: usize) -> bool {
        if tag == 0 {
            return false;
        }
        for dir in [Direction::Read, Direction::Write] {
            let mut side = self.side(dir);
            let id = side.queue.iter().find(|q| q.done.tag() == tag).map(|q| q.id);
            if let Some(op) = id.and_then(|id| side.queue.remove_id(id)) {
                drop(side);
                op.done.complete(Err(Error::aborted()));
                return true;
            }
        }
        false
    }

    /// Completes the queued operation `id` with `error`, if it is still queued.
    pub fn cancel(&self, dir: Direction, id: OpId, error: Error) -> bool {
        let mut side = self.side(dir);
        let Some(op) = side.queue.remove_id(id) else { return false };
        drop(side);
        op.done.complete(Err(error));
        true
    }

    /// Completes everything queued with `error` (runtime shutdown); the socket stays open.
    pub fn abort_pending(&self, error: Error) {
        let mut ops: Vec<Queued> = self.side(Direction::Write).queue.drain().collect();
        ops.extend(self.side(Direction::Read).queue.drain());
        for op in ops {
            op.done.complete(Err(error.clone()));
        }
    }

    /// Closes the fd; queued operations complete with OperationAborted. Returns false if it was
    /// already closed.
    pub fn close(&self) -> bool {
        let mut w = self.side(Direction::Write);
        let mut r = self.side(Direction::Read);
        let fd = self.fd.swap(-1, Ordering::AcqRel);
        if fd < 0 {
            return false;
        }
        w.closed = true;
        r.closed = true;
        self.lp.epoll_del(fd);
        // SAFETY: the fd is ours; every other use of it happens under the locks we hold.
        unsafe { libc::close(fd) };
        let mut ops: Vec<Queued> = w.queue.drain().collect();
        ops.extend(r.queue.drain());
        drop(r);
        drop(w);
        self.lp.release(self as *const IoCore);
        for op in ops {
            op.done.complete(Err(Error::aborted()));
        }
        true
    }

    /// In a forked child: closes the child's copy of the fd, and nothing else (no epoll_ctl, no
    /// shutdown: both would act on the parent's socket). Queued operations are the parent's and
    /// are never completed here.
    pub(super) fn abandon_after_fork(&self) {
        let fd = self.fd.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            // SAFETY: the child's own descriptor; the parent's stays open.
            unsafe { libc::close(fd) };
        }
    }

    /// Puts the open file `new_fd` in place of the current fd, under the same number, so the socket
    /// can connect again (ReuseSocket, or another address after a failed connect).
    pub fn replace_fd(&self, new_fd: RawFd) -> Result<()> {
        let _w = self.side(Direction::Write);
        let _r = self.side(Direction::Read);
        let fd = self.fd.load(Ordering::Acquire);
        let fail = |e: Error| {
            // SAFETY: new_fd is ours.
            unsafe { libc::close(new_fd) };
            Err(e)
        };
        if fd < 0 {
            return fail(Error::aborted());
        }
        self.lp.epoll_del(fd);
        // SAFETY: dup3 atomically replaces the open file behind `fd` with the new one.
        if unsafe { libc::dup3(new_fd, fd, libc::O_CLOEXEC) } < 0 {
            let e = Error::last_os();
            let _ = self.lp.epoll_add(fd, self as *const IoCore);
            return fail(e);
        }
        // SAFETY: `fd` now refers to the same socket; the extra descriptor goes.
        unsafe { libc::close(new_fd) };
        self.lp.epoll_add(fd, self as *const IoCore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: OpId) -> Queued {
        Queued {
            id,
            attempt: Box::new(|_| Poll::Pending),
            done: Completion::new(drop),
            notify: None,
            pending_at: NEVER,
        }
    }

    #[test]
    fn the_op_queue_is_fifo_and_cancels_by_id() {
        let mut q = OpQueue::default();
        assert!(q.is_empty());
        for id in 1..=4 {
            q.push_back(op(id));
        }
        assert_eq!(q.front_mut().map(|o| o.id), Some(1));
        assert_eq!(q.remove_id(3).map(|o| o.id), Some(3));
        assert_eq!(q.remove_id(1).map(|o| o.id), Some(1));
        assert!(q.remove_id(9).is_none());
        assert_eq!(q.pop_front().map(|o| o.id), Some(2));
        q.push_back(op(5));
        assert_eq!(q.drain().map(|o| o.id).collect::<Vec<_>>(), vec![4, 5]);
        assert!(q.is_empty() && q.pop_front().is_none());
    }
}
