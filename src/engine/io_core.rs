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
use std::ops::Deref;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU16, AtomicU32, Ordering};
use std::any::TypeId;
use std::cell::Cell;
use std::sync::{Arc, OnceLock};

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

thread_local! {
    /// Set while this thread starts an operation it will wait for itself (`waited`).
    static WAITED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `start`, which submits an operation this thread then waits for by polling the fd
/// itself (a synchronous call): queued, it needs no readiness from the loop, so it does not
/// put the fd in the loop's epoll set (`IoCore::arm`).
pub fn waited<R>(start: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            WAITED.set(self.0);
        }
    }
    let _restore = Restore(WAITED.replace(true));
    start()
}

/// Identifies a queued operation on its core, for cancelling it (sync timeouts). Ids are
/// compared only with operations queued at the same time, so wrapping is harmless.
pub type OpId = u32;

/// Called after each attempt, outside the lock (progress reports).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// An operation's attempt: tried on the caller's thread, and again at each readiness edge until
/// it is ready. Any `FnMut(RawFd) -> Poll` is one.
pub trait Operation: Send {
    fn attempt(&mut self, fd: RawFd) -> Poll;
    /// Called after each attempt, outside the side's lock (send file's progress reports).
    fn progress(&self) -> Option<Notify> {
        None
    }
}

impl<F: FnMut(RawFd) -> Poll + Send> Operation for F {
    fn attempt(&mut self, fd: RawFd) -> Poll {
        self(fd)
    }
}

/// A receive into the caller's buffer (`ptr`, `len`), as a plain function of the core: the
/// operation that waits most, held with no allocation.
pub type ReceiveFn = fn(&IoCore, RawFd, *mut u8, usize) -> Poll;

enum Attempt {
    /// The buffer's address as a number: the Begin contract keeps it valid, and the attempt is
    /// the only user.
    Receive(ReceiveFn, usize, usize),
    Boxed(Box<dyn Operation>),
}

impl Attempt {
    fn run(&mut self, core: &IoCore, fd: RawFd) -> Poll {
        match self {
            Attempt::Receive(run, ptr, len) => run(core, fd, *ptr as *mut u8, *len),
            Attempt::Boxed(op) => op.attempt(fd),
        }
    }

    fn progress(&self) -> Option<Notify> {
        match self {
            Attempt::Receive(..) => None,
            Attempt::Boxed(op) => op.progress(),
        }
    }
}

/// Runs one attempt; a panic inside it becomes the operation's internal error.
fn attempt_once(attempt: impl FnOnce() -> Poll) -> Poll {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(attempt)) {
        Ok(poll) => poll,
        Err(_) => {
            super::report_panic("an I/O attempt");
            Poll::Ready(Err(Error::internal("An internal error occurred in apmnet (a panic was caught).")))
        }
    }
}

struct Queued {
    attempt: Attempt,
    done: Completion,
    id: OpId,
    /// The readiness count (`Readiness::seen`, modulo 2^14) at which this operation last said
    /// EAGAIN, or NEVER. Only equality with the current count matters, and the count a queued
    /// operation compares with is at most a few edges on, so wrapping never matches wrongly.
    pending_at: u16,
}

/// What a direction knows outside its lock, in 16 bits (a socket is mostly idle, and these
/// are two per socket):
/// * above bit 1, how many times readiness was seen (an epoll edge, or a synchronous waiter's
///   poll). An operation that said EAGAIN at the current count waits for the next: the socket
///   is edge-triggered, so whatever arrives after that EAGAIN brings a new edge.
/// * bit 1, armed (the read side's only): the fd is in the loop's epoll set. It goes in when
///   the first operation waits for the loop (`IoCore::arm`); a socket only ever waited on by
///   synchronous callers, which poll the fd themselves, never wakes the loop.
/// * bit 0, missed: the loop saw readiness while another thread held the side; that thread has
///   the queue run again once it lets go (`Held`). Set only by the loop's thread.
#[derive(Default)]
struct Readiness(AtomicU16);

const MISSED: u16 = 1;
const ARMED: u16 = 2;
const COUNT_SHIFT: u32 = 2;

impl Readiness {
    fn saw(&self) {
        self.0.fetch_add(1 << COUNT_SHIFT, Ordering::SeqCst);
    }
    /// The count of readiness seen so far, modulo 2^14 (see `Queued::pending_at`).
    fn seen(&self) -> u16 {
        self.0.load(Ordering::SeqCst) >> COUNT_SHIFT
    }
    fn set_missed(&self) {
        self.0.fetch_or(MISSED, Ordering::SeqCst);
    }
    /// Clears the flag; whether it was set.
    fn take_missed(&self) -> bool {
        self.0.fetch_and(!MISSED, Ordering::SeqCst) & MISSED != 0
    }
    fn set_armed(&self) {
        self.0.fetch_or(ARMED, Ordering::SeqCst);
    }
    fn is_armed(&self) -> bool {
        self.0.load(Ordering::SeqCst) & ARMED != 0
    }
}

/// `Queued::pending_at` of an operation that has not said EAGAIN (above every count).
const NEVER: u16 = u16::MAX;

/// The read side's FIFO of queued operations, with its head inline: a pending read allocates
/// nothing, and almost always at most one operation waits. The rest, rare, is boxed, so that an
/// idle socket pays one word for it rather than a VecDeque's four.
#[derive(Default)]
struct OpQueue {
    head: Option<Queued>,
    // Boxed on purpose: one word while empty, where a VecDeque is four.
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<Queued>>>,
}

/// The queue operations the core uses, the same on both sides.
trait Queue: Send {
    fn is_empty(&self) -> bool;
    fn push_back(&mut self, op: Queued);
    fn front_mut(&mut self) -> Option<&mut Queued>;
    fn pop_front(&mut self) -> Option<Queued>;
    fn remove_id(&mut self, id: OpId) -> Option<Queued>;
    /// The id of the queued operation whose completion has `tag`.
    fn find_tag(&self, tag: usize) -> Option<OpId>;
    fn drain_into(&mut self, into: &mut Vec<Queued>);
}

impl Queue for OpQueue {
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

    fn find_tag(&self, tag: usize) -> Option<OpId> {
        let mut all = self.head.iter().chain(self.rest.iter().flat_map(|r| r.iter()));
        all.find(|q| q.done.tag() == tag).map(|q| q.id)
    }

    fn drain_into(&mut self, into: &mut Vec<Queued>) {
        into.extend(self.head.take());
        into.extend(self.rest.take().into_iter().flat_map(|r| r.into_iter()));
    }
}

/// The write side's FIFO: the read side's, boxed while something waits (writes seldom do), so
/// that an idle socket pays one word for it and a waiting write one allocation.
#[derive(Default)]
struct BoxedQueue(Option<Box<OpQueue>>);

impl BoxedQueue {
    /// Frees the queue once it is empty.
    fn trimmed<R>(&mut self, r: R) -> R {
        if self.0.as_ref().is_some_and(|q| q.is_empty()) {
            self.0 = None;
        }
        r
    }
}

impl Queue for BoxedQueue {
    fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    fn push_back(&mut self, op: Queued) {
        self.0.get_or_insert_with(Box::default).push_back(op);
    }

    fn front_mut(&mut self) -> Option<&mut Queued> {
        self.0.as_mut()?.front_mut()
    }

    fn pop_front(&mut self) -> Option<Queued> {
        let op = self.0.as_mut()?.pop_front();
        self.trimmed(op)
    }

    fn remove_id(&mut self, id: OpId) -> Option<Queued> {
        let op = self.0.as_mut()?.remove_id(id);
        self.trimmed(op)
    }

    fn find_tag(&self, tag: usize) -> Option<OpId> {
        self.0.as_ref()?.find_tag(tag)
    }

    fn drain_into(&mut self, into: &mut Vec<Queued>) {
        if let Some(mut q) = self.0.take() {
            q.drain_into(into);
        }
    }
}

/// What embeds an `IoCore` as its first field (a `Socket`): the socket and its core are one
/// allocation, and the engine keeps that whole `Arc` alive while the fd is registered.
pub trait Owner: Send + Sync + Sized + 'static {
    fn core(&self) -> &IoCore;
}

/// How the engine takes and drops a reference to a core's owner, knowing only the core.
struct OwnerOps {
    owner: TypeId,
    retain: unsafe fn(*const IoCore),
    release: unsafe fn(*const IoCore),
}

/// The one owner type's functions (a `Socket`'s), set by the first `register`: kept here rather
/// than in every core, where they would be a word per socket.
static OWNER: OnceLock<OwnerOps> = OnceLock::new();

fn owner_ops() -> &'static OwnerOps {
    OWNER.get().expect("a core is reached only once it registered")
}

/// # Safety
/// `core` is the first field of a live `T` inside an `Arc<T>` (checked by `register`).
unsafe fn retain<T: Owner>(core: *const IoCore) {
    // SAFETY: per the contract, `core` is the address of the Arc's `T`.
    unsafe { Arc::increment_strong_count(core as *const T) }
}

/// # Safety
/// As `retain`, and the caller gives up one reference it held.
unsafe fn release<T: Owner>(core: *const IoCore) {
    // SAFETY: per the contract.
    unsafe { Arc::decrement_strong_count(core as *const T) }
}

/// A strong reference to a core's owner, held by a task posted to the loop.
pub(super) struct CoreRef(*const IoCore);

// SAFETY: the owner is Send + Sync (`Owner`), and this is one of its Arc's references.
unsafe impl Send for CoreRef {}

impl CoreRef {
    /// # Safety
    /// `core` belongs to a registered owner: it is alive and inside its `Arc`, and the caller
    /// hands over one reference it held.
    pub(super) unsafe fn adopt(core: *const IoCore) -> CoreRef {
        CoreRef(core)
    }

    /// One more reference to the owner of `core`.
    ///
    /// # Safety
    /// `core` belongs to a registered owner that stays alive for the length of the call.
    pub(super) unsafe fn retain(core: *const IoCore) -> CoreRef {
        // SAFETY: per the contract.
        unsafe {
            (owner_ops().retain)(core);
            CoreRef::adopt(core)
        }
    }
}

impl Deref for CoreRef {
    type Target = IoCore;
    fn deref(&self) -> &IoCore {
        // SAFETY: this reference keeps the owner, and so the core, alive.
        unsafe { &*self.0 }
    }
}

impl Drop for CoreRef {
    fn drop(&mut self) {
        // SAFETY: gives back the reference this holds.
        unsafe { (owner_ops().release)(self.0) }
    }
}

/// Whether the socket is closed is its fd: -1, swapped in under both sides' locks.
pub struct IoCore {
    fd: AtomicI32,
    next_id: AtomicU32,
    /// Where the loop's registry keeps this core (`EventLoop::register`); under its lock.
    pub(super) registry_index: AtomicU32,
    read_ready: Readiness,
    write_ready: Readiness,
    lp: Arc<EventLoop>,
    read: Mutex<OpQueue>,
    write: Mutex<BoxedQueue>,
}

enum Guard<'a> {
    Read(MutexGuard<'a, OpQueue>),
    Write(MutexGuard<'a, BoxedQueue>),
}

/// A side's lock, held. The loop never waits for a side another thread holds (a caller sending
/// 64 KiB inline holds it for the length of the syscall, and a loop spinning for it meanwhile
/// takes the CPU the peer needs on a small machine): it records the readiness as missed and
/// moves on, and whoever holds the side has the queue run again on the loop when it lets go.
struct Held<'a> {
    core: &'a IoCore,
    dir: Direction,
    guard: Option<Guard<'a>>,
}

impl Held<'_> {
    fn queue(&mut self) -> &mut dyn Queue {
        match self.guard.as_mut().expect("held until dropped") {
            Guard::Read(g) => &mut **g,
            Guard::Write(g) => &mut **g,
        }
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

/// A side opened for a new operation: whether its first attempt runs now (nothing queued), and
/// the readiness count read before that attempt.
struct Opened<'a> {
    held: Held<'a>,
    tried: bool,
    ready: u16,
}

impl IoCore {
    /// Takes ownership of the non-blocking `fd`, for an owner that will `register`.
    pub fn new(fd: RawFd, lp: Arc<EventLoop>) -> IoCore {
        IoCore {
            registry_index: AtomicU32::new(u32::MAX),
            fd: AtomicI32::new(fd),
            lp,
            read: Mutex::default(),
            write: Mutex::default(),
            read_ready: Readiness::default(),
            write_ready: Readiness::default(),
            next_id: AtomicU32::new(1),
        }
    }

    /// Registers the core of `owner` with its loop, which keeps `owner` alive until the fd is
    /// closed.
    pub fn register<T: Owner>(owner: &Arc<T>) {
        let core = owner.core();
        // The engine reaches the owner from the core's address (`OwnerOps`).
        assert!(std::ptr::eq(core as *const IoCore as *const T, Arc::as_ptr(owner)), "the core is not its owner's first field");
        let ops = OWNER.get_or_init(|| OwnerOps { owner: TypeId::of::<T>(), retain: retain::<T>, release: release::<T> });
        assert!(ops.owner == TypeId::of::<T>(), "cores have one owner type");
        let ptr = Arc::into_raw(owner.clone()) as *const IoCore;
        // SAFETY: `ptr` is the reference just taken; the loop owns it from here.
        core.lp.register(unsafe { CoreRef::adopt(ptr) });
    }

    /// Puts the fd in the loop's epoll set, if it is not there yet: an operation is about to
    /// wait for the loop. Called under a side's lock with the fd open, so close and replace_fd,
    /// which hold both, see it settled. Edge-triggered, and the add reports the readiness
    /// there is already, so what came before it (after the operation's EAGAIN) is not missed.
    fn arm(&self) -> Result<()> {
        self.lp.arming(|| {
            if !self.read_ready.is_armed() {
                self.lp.epoll_add(self.fd.load(Ordering::Acquire), self)?;
                self.read_ready.set_armed();
            }
            Ok(())
        })
    }

    fn readiness(&self, dir: Direction) -> &Readiness {
        match dir {
            Direction::Read => &self.read_ready,
            Direction::Write => &self.write_ready,
        }
    }

    /// Takes the side's lock, waiting for it.
    fn side(&self, dir: Direction) -> Held<'_> {
        let guard = match dir {
            Direction::Read => Guard::Read(self.read.lock()),
            Direction::Write => Guard::Write(self.write.lock()),
        };
        Held { core: self, dir, guard: Some(guard) }
    }

    fn try_lock(&self, dir: Direction) -> Option<Guard<'_>> {
        match dir {
            Direction::Read => self.read.try_lock().map(Guard::Read),
            Direction::Write => self.write.try_lock().map(Guard::Write),
        }
    }

    /// The loop's way in: the side's lock if it is free; else the readiness is left to its
    /// holder (see `Held`). Only the loop's thread calls this.
    fn try_side(&self, dir: Direction) -> Option<Held<'_>> {
        let ready = self.readiness(dir);
        if let Some(g) = self.try_lock(dir) {
            return Some(Held { core: self, dir, guard: Some(g) });
        }
        ready.set_missed();
        // The holder may have let go before it could see the flag: try once more. If someone
        // holds it now, they took it before the flag was set and will see it when they let go.
        let g = self.try_lock(dir)?;
        ready.take_missed();
        Some(Held { core: self, dir, guard: Some(g) })
    }

    /// Runs the queue again on the loop, for readiness that came while another thread held it.
    fn run_again_on_loop(&self, dir: Direction) {
        // SAFETY: `self` is reached through a reference to its owner (a caller's Arc, or the
        // loop's), so the owner is alive and the core registered (nothing else sets `missed`).
        let me = unsafe { CoreRef::retain(self) };
        self.lp.post(Box::new(move || me.drive(dir, None)));
    }

    pub fn is_closed(&self) -> bool {
        self.fd.load(Ordering::Acquire) < 0
    }

    /// Whether an operation is queued in `dir`.
    #[cfg(test)]
    pub(crate) fn has_queued(&self, dir: Direction) -> bool {
        !self.side(dir).queue().is_empty()
    }

    /// Whether the kernel has the open fd in the loop's epoll set.
    #[cfg(test)]
    pub(crate) fn in_epoll_set(&self) -> bool {
        self.with_fd(|fd| self.lp.watches(fd)).unwrap_or(false)
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

    /// Runs `f` with the fd now, on the caller's thread, if the fd is open and nothing is queued
    /// in `dir` (what `f` does then comes in order after every operation before it). None
    /// otherwise: the caller goes the queued way.
    pub fn try_now<R>(&self, dir: Direction, f: impl FnOnce(RawFd) -> R) -> Option<R> {
        let mut side = self.side(dir);
        let fd = self.fd.load(Ordering::Acquire);
        (fd >= 0 && side.queue().is_empty()).then(|| f(fd))
    }

    /// Starts an operation: tries it now when nothing is queued ahead of it, else queues it
    /// (boxed). Returns the id of the queued operation, or None when it completed (`done` has
    /// run).
    pub fn submit<O: Operation + 'static>(&self, dir: Direction, mut op: O, done: Completion) -> Option<OpId> {
        let progress = op.progress();
        let (side, done) = self.open(dir, done)?;
        let first = side.tried.then(|| attempt_once(|| op.attempt(self.fd.load(Ordering::Acquire))));
        self.settle(side, first, done, progress, move || Attempt::Boxed(Box::new(op)))
    }

    /// `submit` for a receive into (`ptr`, `len`), which waits with no allocation.
    pub fn submit_receive(&self, run: ReceiveFn, ptr: *mut u8, len: usize, done: Completion) -> Option<OpId> {
        let (side, done) = self.open(Direction::Read, done)?;
        let first = side.tried.then(|| attempt_once(|| run(self, self.fd.load(Ordering::Acquire), ptr, len)));
        self.settle(side, first, done, None, move || Attempt::Receive(run, ptr as usize, len))
    }

    /// The side, locked for a new operation, and the readiness count before its first attempt;
    /// None when it may not start (`done` has completed with OperationAborted).
    fn open(&self, dir: Direction, done: Completion) -> Option<(Opened<'_>, Completion)> {
        let mut side = self.side(dir);
        // Checked under the side lock, which the loop's abort pass takes after setting `stopping`:
        // an operation either sees it and aborts here, or is queued before the pass drains it.
        if self.is_closed() || self.lp.is_stopping() {
            drop(side);
            done.complete(Err(Error::aborted()));
            return None;
        }
        let tried = side.queue().is_empty();
        // Read before the attempt: readiness seen after it makes the loop try again.
        let ready = self.readiness(dir).seen();
        Some((Opened { held: side, tried, ready }, done))
    }

    /// Completes the operation if its first attempt finished, else queues it.
    fn settle(
        &self,
        side: Opened<'_>,
        first: Option<Poll>,
        done: Completion,
        progress: Option<Notify>,
        attempt: impl FnOnce() -> Attempt,
    ) -> Option<OpId> {
        let Opened { held: mut side, tried, ready } = side;
        let finished = match first {
            Some(Poll::Ready(outcome)) => Some(outcome),
            // About to wait for the loop, which must then watch the fd (a failure to add it is
            // the operation's outcome). The flag first: once armed, a queued operation costs no
            // thread-local access.
            _ if !self.read_ready.is_armed() && !WAITED.get() => self.arm().err().map(Err),
            _ => None,
        };
        let (queued, finished) = match finished {
            Some(outcome) => (None, Some((done, outcome))),
            None => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                // Tried above only when nothing was queued ahead of it.
                let pending_at = if tried { ready } else { NEVER };
                side.queue().push_back(Queued { attempt: attempt(), done, id, pending_at });
                (Some(id), None)
            }
        };
        drop(side);
        if let Some(n) = progress {
            n();
        }
        if let Some((done, outcome)) = finished {
            done.complete(outcome);
        }
        queued
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
            let Some(head) = side.queue().front_mut() else { return };
            // Queued by a Begin (typically in a callback of this very pass) that said EAGAIN after
            // this readiness was seen: trying again now would only say EAGAIN again, one wasted
            // syscall per echo round trip. The next edge brings it back.
            if head.pending_at == ready {
                return;
            }
            let poll = attempt_once(|| head.attempt.run(self, fd));
            let notify = head.attempt.progress();
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
                    let op = side.queue().pop_front().expect("head exists");
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
            let id = side.queue().find_tag(tag);
            if let Some(op) = id.and_then(|id| side.queue().remove_id(id)) {
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
        let Some(op) = side.queue().remove_id(id) else { return false };
        drop(side);
        op.done.complete(Err(error));
        true
    }

    /// Completes everything queued with `error` (runtime shutdown); the socket stays open.
    pub fn abort_pending(&self, error: Error) {
        let mut ops = Vec::new();
        self.side(Direction::Write).queue().drain_into(&mut ops);
        self.side(Direction::Read).queue().drain_into(&mut ops);
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
        let armed = self.read_ready.is_armed();
        if armed {
            self.lp.epoll_del(fd);
        }
        // SAFETY: the fd is ours; every other use of it happens under the locks we hold.
        unsafe { libc::close(fd) };
        let mut ops = Vec::new();
        w.queue().drain_into(&mut ops);
        r.queue().drain_into(&mut ops);
        drop(r);
        drop(w);
        if armed {
            self.lp.release(self as *const IoCore);
        } else {
            self.lp.release_now(self as *const IoCore);
        }
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
        // Out of the epoll set while the file changes, and back in only if it was there: the
        // set watches the open file, not the number.
        let armed = self.read_ready.is_armed();
        if armed {
            self.lp.epoll_del(fd);
        }
        // SAFETY: dup3 atomically replaces the open file behind `fd` with the new one.
        if unsafe { libc::dup3(new_fd, fd, libc::O_CLOEXEC) } < 0 {
            let e = Error::last_os();
            if armed {
                let _ = self.lp.epoll_add(fd, self as *const IoCore);
            }
            return fail(e);
        }
        // SAFETY: `fd` now refers to the same socket; the extra descriptor goes.
        unsafe { libc::close(new_fd) };
        if armed {
            self.lp.epoll_add(fd, self as *const IoCore)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: OpId) -> Queued {
        Queued {
            attempt: Attempt::Boxed(Box::new(|_| Poll::Pending)),
            done: Completion::new(drop),
            id,
            pending_at: NEVER,
        }
    }

    fn fifo(q: &mut dyn Queue) {
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
        let mut all = Vec::new();
        q.drain_into(&mut all);
        assert_eq!(all.iter().map(|o| o.id).collect::<Vec<_>>(), vec![4, 5]);
        assert!(q.is_empty() && q.pop_front().is_none());
    }

    #[test]
    fn the_op_queue_is_fifo_and_cancels_by_id() {
        fifo(&mut OpQueue::default());
        fifo(&mut BoxedQueue::default());
    }

    #[test]
    fn a_queued_receive_fits_its_side_inline() {
        // What an idle socket and a pending read cost (issue 14): see `OpQueue` and `BoxedQueue`.
        assert_eq!(std::mem::size_of::<Queued>(), 64);
        assert_eq!(std::mem::size_of::<Mutex<OpQueue>>(), 80);
        assert_eq!(std::mem::size_of::<Mutex<BoxedQueue>>(), 16);
        assert_eq!(std::mem::size_of::<IoCore>(), 120);
    }
}
