//! IAsyncResult: one asynchronous operation from Begin to End.
//!
//! The rules (seeds, DESIGN.md section 1): the callback runs exactly once; when the work finished
//! inside Begin it runs on the Begin caller's thread before Begin returns and
//! CompletedSynchronously is true, otherwise on the engine thread that finished the work.
//! IsCompleted is set and waiters are woken before the callback runs. A thread that keeps
//! completing synchronously from inside callbacks would dive down its own stack; past
//! `MAX_INLINE_DEPTH` nested callbacks the next one goes to an engine thread instead (the
//! Framework's ForceAsyncCount guard). A completion that arrives inside its own Begin is held
//! until the Begin's body returns: a Begin that then fails started nothing and runs no callback,
//! whatever its body dropped on the way out.
//!
//! Where results live: `Results` is a store of type-stable slots, one per operation in flight,
//! named by 64-bit keys (`kind:8 | index:24 | generation:32`, the layout of `crate::table`).
//! Results are the one object made and released on every operation, and the one polled most
//! (CompletedSynchronously after every Begin, in the .NET idiom), so they do not go through the
//! general handle table: a slot is never freed, only reused, which lets a query read its flags
//! with no lock and no reference count, checking the generation before and after (a seqlock);
//! and Begin takes a slot from a free list instead of allocating. A slot's life is one atomic
//! word (generation, live bit, references), so a handle ended twice, a stale key and a slot
//! reused by a newer operation are told apart exactly as the table tells them apart.
//!
//! The callback is the `Hook` of whoever owns the store (the C layer calls a C function pointer
//! with the two words it gave Begin); this module knows no handle and no C.

mod pages;

use crate::error::{Error, Result};
use crate::op::{Completion, Outcome, Sink, Value};
use pages::Pages;
use parking_lot_core::{DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN};
use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Nested inline callbacks allowed on one thread before the next is sent to an engine thread.
const MAX_INLINE_DEPTH: u32 = 16;

/// Which Begin started an operation: End accepts only results of its own Begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum OpKind {
    Connect,
    Accept,
    Send,
    Receive,
    SendFile,
    Write,
    Read,
    AuthenticateAsClient,
    AuthenticateAsServer,
    Shutdown,
    GetRequestStream,
    GetResponse,
}

impl OpKind {
    const ALL: [OpKind; 12] = [
        OpKind::Connect,
        OpKind::Accept,
        OpKind::Send,
        OpKind::Receive,
        OpKind::SendFile,
        OpKind::Write,
        OpKind::Read,
        OpKind::AuthenticateAsClient,
        OpKind::AuthenticateAsServer,
        OpKind::Shutdown,
        OpKind::GetRequestStream,
        OpKind::GetResponse,
    ];

    /// The .NET End method, for "{0} can only be called once for each asynchronous operation."
    pub fn end_name(self) -> &'static str {
        match self {
            OpKind::Connect => "EndConnect",
            OpKind::Accept => "EndAccept",
            OpKind::Send => "EndSend",
            OpKind::Receive => "EndReceive",
            OpKind::SendFile => "EndSendFile",
            OpKind::Write => "EndWrite",
            OpKind::Read => "EndRead",
            OpKind::AuthenticateAsClient => "EndAuthenticateAsClient",
            OpKind::AuthenticateAsServer => "EndAuthenticateAsServer",
            OpKind::Shutdown => "EndShutdown",
            OpKind::GetRequestStream => "EndGetRequestStream",
            OpKind::GetResponse => "EndGetResponse",
        }
    }
}

/// The AsyncCallback of the results of one store, implemented by the layer that owns the store.
pub trait Hook: Send + Sync + Sized + 'static {
    /// Runs the caller's callback of the result `key`, with the words its Begin was given;
    /// called at most once per result.
    fn notify(key: u64, words: [usize; 2]);
    /// The one store whose results call this hook.
    fn store() -> &'static Results<Self>;
}

/// What a thread is doing with results, in one thread-local: in a shared library each
/// thread-local access is a call (`__tls_get_addr`), and a completion reads all of it once.
struct Thread {
    /// The key of the result whose Begin is running on this thread, and whether it completed
    /// there (its callback then waits for the Begin's body to return). Kept here, not in the
    /// slot: once the body handed its completion away, the operation may complete elsewhere,
    /// be ended and its slot reused by another Begin before the body returns, so the body's
    /// thread must not read the slot again to learn what happened on it.
    beginning: Cell<(u64, bool)>,
    /// Callbacks running on this thread, nested.
    depth: Cell<u32>,
}

thread_local! {
    static THREAD: Thread = const { Thread { beginning: Cell::new((0, false)), depth: Cell::new(0) } };
}

/// True while the calling thread is inside a callback of an asynchronous operation.
pub fn in_callback() -> bool {
    THREAD.with(|t| t.depth.get()) > 0
}

/// Restores the thread's `beginning` when a Begin's body returns or unwinds.
struct BeginScope((u64, bool));

impl Drop for BeginScope {
    fn drop(&mut self) {
        THREAD.with(|t| t.beginning.set(self.0));
    }
}

/// Counts one callback level on this thread, also when the callback unwinds.
struct DepthScope<'a>(&'a Thread);

impl DepthScope<'_> {
    fn enter(thread: &Thread) -> DepthScope<'_> {
        thread.depth.set(thread.depth.get() + 1);
        DepthScope(thread)
    }
}

impl Drop for DepthScope<'_> {
    fn drop(&mut self) {
        self.0.depth.set(self.0.depth.get() - 1);
    }
}

// ---------------------------------------------------------------------------------------------
// A slot's life: generation:32 | references:31 | live:1, in one word.

/// The handle is out: End has not released it.
const LIVE: u64 = 1;
/// One reference: the completion until its callback has run, or a caller waiting or ending.
const REF: u64 = 2;
const REFS: u64 = 0xffff_fffe;

fn generation(life: u64) -> u32 {
    (life >> 32) as u32
}

fn unused(life: u64) -> bool {
    life & (REFS | LIVE) == 0
}

// The flags of an operation.
const COMPLETED: u8 = 1;
const SYNCHRONOUS: u8 = 2;
/// A thread waits for completion (parked on the slot's address).
const WAITING: u8 = 4;

const SHARD_BITS: u32 = 4;
const SHARDS: usize = 1 << SHARD_BITS;
/// A shard reuses its oldest free slot only once this many are free, so that a result just ended
/// keeps who made it for a while: a second End is then told from a foreign one.
const KEEP_FREE: usize = 8;

/// One operation's result: 64 bytes, so that a pending operation costs little more than that.
struct Slot<H: Hook> {
    life: AtomicU64,
    /// An opaque identity of the object whose Begin made the result (End checks it); kept after
    /// End until the slot is reused, to tell a second End from a foreign one.
    owner: AtomicU64,
    /// The hook's words (the C callback and its state).
    words: [AtomicUsize; 2],
    /// Written once by the completion before COMPLETED is set, then read only by End (which
    /// alone may, holding the handle it released) and by the slot's recycling (with no
    /// reference left). Errors boxed, so that a slot stays small.
    outcome: UnsafeCell<Option<std::result::Result<Value, Box<Error>>>>,
    index: u32,
    op: AtomicU8,
    flags: AtomicU8,
    hook: PhantomData<H>,
}

// SAFETY: every field but `outcome` is atomic; `outcome` is written and read only in the
// exclusive windows its comment names, ordered by the flags' Release/Acquire.
unsafe impl<H: Hook> Sync for Slot<H> {}

/// What a key names in a store.
#[derive(Debug, PartialEq, Eq)]
pub enum Gone {
    /// Issued once, ended since, with the owner and operation of its Begin when still known
    /// (None: the slot has had another occupant since).
    Stale(Option<(u64, OpKind)>),
    /// Never issued by this store (garbage, a handle of another kind).
    Invalid,
}

/// What End found.
pub enum Ended<H: Hook> {
    /// The result, now released: wait for and take its outcome through it.
    Taken(Held<H>),
    /// A live result that `accept` refused (another object's, or another Begin's); it stays.
    Refused,
    Gone(Gone),
}

/// A snapshot of a live result's flags.
pub struct Flags(u8, [usize; 2]);

impl Flags {
    pub fn is_completed(&self) -> bool {
        self.0 & COMPLETED != 0
    }
    pub fn completed_synchronously(&self) -> bool {
        self.0 & SYNCHRONOUS != 0
    }
    pub fn words(&self) -> [usize; 2] {
        self.1
    }
}

/// The results of asynchronous operations whose callback is `H`.
pub struct Results<H: Hook> {
    kind: u8,
    slots: Pages<Slot<H>>,
    /// Indexes never used yet start here.
    fresh: AtomicU32,
    free: [std::sync::Mutex<VecDeque<u32>>; SHARDS],
    next_shard: AtomicUsize,
    hook: PhantomData<H>,
}

impl<H: Hook> Results<H> {
    /// A store whose keys carry the kind byte `kind` (not 0).
    pub const fn new(kind: u8) -> Results<H> {
        Results {
            kind,
            slots: Pages::new(),
            fresh: AtomicU32::new(0),
            free: [const { std::sync::Mutex::new(VecDeque::new()) }; SHARDS],
            next_shard: AtomicUsize::new(0),
            hook: PhantomData,
        }
    }

    fn key(&self, index: u32, generation: u32) -> u64 {
        (self.kind as u64) << 56 | (index as u64) << 32 | generation as u64
    }

    /// The slot `key` points at, if this store issued a key of that kind and index.
    fn slot(&self, key: u64) -> Option<&'static Slot<H>> {
        if (key >> 56) as u8 != self.kind || key as u32 == 0 {
            return None;
        }
        self.slots.get(((key >> 32) & 0x00ff_ffff) as u32)
    }

    fn free_list(&self, shard: usize) -> std::sync::MutexGuard<'_, VecDeque<u32>> {
        // Nothing panics while holding it; a poisoned one is still consistent.
        self.free[shard].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new operation: live, with one reference (its completion).
    fn take_slot(&'static self, owner: u64, op: OpKind, words: [usize; 2]) -> Result<&'static Slot<H>> {
        let shard = self.next_shard.fetch_add(1, Ordering::Relaxed) % SHARDS;
        let reused = {
            let mut free = self.free_list(shard);
            (free.len() > KEEP_FREE).then(|| free.pop_front()).flatten()
        };
        let slot = match reused {
            Some(i) => self.slots.get(i).expect("a freed slot exists"),
            None => {
                let i = self.fresh.fetch_add(1, Ordering::Relaxed);
                let slot = (i < pages::CAPACITY).then(|| self.slots.get_or_make(i, Slot::new));
                match slot.flatten() {
                    Some(s) => s,
                    None => {
                        self.fresh.fetch_sub(1, Ordering::Relaxed);
                        // Full of fresh indexes: any free slot will do.
                        let any = (0..SHARDS).find_map(|s| self.free_list(s).pop_front());
                        let i = any.ok_or_else(|| Error::new(crate::error::code::OUT_OF_MEMORY, "Too many operations are pending."))?;
                        self.slots.get(i).expect("a freed slot exists")
                    }
                }
            }
        };
        // Unused (no handle, no reference): nobody else writes it until its life says live.
        slot.owner.store(owner, Ordering::Relaxed);
        slot.op.store(op as u8, Ordering::Relaxed);
        slot.flags.store(0, Ordering::Relaxed);
        slot.words[0].store(words[0], Ordering::Relaxed);
        slot.words[1].store(words[1], Ordering::Relaxed);
        // Generation 0 is never handed out; wrapping skips it.
        let g = generation(slot.life.load(Ordering::Relaxed)).wrapping_add(1).max(1);
        slot.life.store((g as u64) << 32 | REF | LIVE, Ordering::Release);
        Ok(slot)
    }

    /// Runs a Begin: makes a result for `owner`'s operation `op` and runs `start` with its
    /// completion and key. A completion inside `start` on this thread is synchronous and its
    /// callback runs once `start` has returned Ok. `start` returns Err only when it started
    /// nothing: then the result is released and no callback runs.
    pub fn begin(
        &'static self,
        owner: u64,
        op: OpKind,
        words: [usize; 2],
        start: impl FnOnce(Completion, u64) -> Result<()>,
    ) -> Result<u64> {
        let slot = self.take_slot(owner, op, words)?;
        let key = slot.key();
        // Released again unless Begin succeeds, also when `start` unwinds.
        struct Unhand<H: Hook>(&'static Slot<H>);
        impl<H: Hook> Drop for Unhand<H> {
            fn drop(&mut self) {
                self.0.unhand();
            }
        }
        let handle = Unhand(slot);
        let scope = BeginScope(THREAD.with(|t| t.beginning.replace((key, false))));
        let started = start(Completion::to(slot), key);
        // Deferred: the completion's reference is still held, so the slot is still this key's.
        // Otherwise the slot is not touched again (see `Thread::beginning`).
        let deferred = THREAD.with(|t| t.beginning.get().1);
        drop(scope);
        match started {
            Ok(()) => {
                std::mem::forget(handle);
                if deferred {
                    slot.callback(key);
                }
                Ok(key)
            }
            Err(e) => {
                if deferred {
                    slot.release();
                }
                Err(e)
            }
        }
    }

    /// The flags of the live result `key`, read without a lock.
    pub fn flags(&self, key: u64) -> std::result::Result<Flags, Gone> {
        let slot = self.slot(key).ok_or(Gone::Invalid)?;
        let before = slot.life.load(Ordering::Acquire);
        let flags = Flags(slot.flags.load(Ordering::Acquire), [0, 1].map(|i| slot.words[i].load(Ordering::Relaxed)));
        // The slot may have been ended and reused while we read: then what we read is not
        // this key's, and the second look at its life says so.
        let after = slot.life.load(Ordering::Acquire);
        slot.check(key, before)?;
        if generation(after) != generation(before) || after & LIVE == 0 {
            return Err(slot.gone(key, after));
        }
        Ok(flags)
    }

    /// The live result `key`, kept from reuse while the `Held` lives (to wait on it, say).
    pub fn hold(&self, key: u64) -> std::result::Result<Held<H>, Gone> {
        let slot = self.slot(key).ok_or(Gone::Invalid)?;
        let mut life = slot.life.load(Ordering::Acquire);
        loop {
            slot.check(key, life)?;
            match slot.life.compare_exchange_weak(life, life + REF, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(Held(slot)),
                Err(now) => life = now,
            }
        }
    }

    /// End's release: if `accept(owner, op)` approves of the live result `key`, releases its
    /// handle in one step (two racing Ends cannot both succeed).
    pub fn end(&self, key: u64, accept: impl FnOnce(u64, OpKind) -> bool) -> Ended<H> {
        let Some(slot) = self.slot(key) else { return Ended::Gone(Gone::Invalid) };
        let mut life = slot.life.load(Ordering::Acquire);
        if let Err(g) = slot.check(key, life) {
            return Ended::Gone(g);
        }
        // Live, so owner and op are this key's until the handle is released below.
        let (owner, op) = slot.made_by();
        if !accept(owner, op) {
            return Ended::Refused;
        }
        loop {
            // The handle becomes End's reference: the slot stays until End has the outcome.
            match slot.life.compare_exchange_weak(life, (life & !LIVE) + REF, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ended::Taken(Held(slot)),
                Err(now) => {
                    life = now;
                    if let Err(g) = slot.check(key, life) {
                        return Ended::Gone(g);
                    }
                }
            }
        }
    }

    fn recycle(&self, index: u32) {
        self.free_list(index as usize % SHARDS).push_back(index);
    }
}

/// Around fork(2) (see engine::fork): the store reaches the child consistent, and the child
/// neither uses nor reuses what the parent's operations were doing.
impl<H: Hook> Results<H> {
    /// Takes every free list's lock (the forking thread, before fork); dropping what it returns
    /// releases them, in the parent and in the child alike.
    pub fn lock_for_fork(&self) -> Vec<std::sync::MutexGuard<'_, VecDeque<u32>>> {
        (0..SHARDS).map(|i| self.free_list(i)).collect()
    }

    /// In the child: every result in use becomes stale and its slot is never reused (the
    /// operation it was part of belongs to the parent, and nothing will complete it here).
    pub fn bury_in_use(&self) {
        for i in 0..self.fresh.load(Ordering::Relaxed).min(pages::CAPACITY) {
            if let Some(slot) = self.slots.get(i) {
                let life = slot.life.load(Ordering::Relaxed);
                if !unused(life) {
                    let g = generation(life).wrapping_add(1).max(1);
                    slot.life.store((g as u64) << 32 | REF, Ordering::Relaxed);
                }
            }
        }
    }
}

impl<H: Hook> Slot<H> {
    fn new(index: u32) -> Slot<H> {
        Slot {
            life: AtomicU64::new(0),
            owner: AtomicU64::new(0),
            words: [AtomicUsize::new(0), AtomicUsize::new(0)],
            outcome: UnsafeCell::new(None),
            index,
            op: AtomicU8::new(0),
            flags: AtomicU8::new(0),
            hook: PhantomData,
        }
    }

    /// The key of the current occupant (called by who holds a reference to it).
    fn key(&self) -> u64 {
        H::store().key(self.index, generation(self.life.load(Ordering::Acquire)))
    }

    fn made_by(&self) -> (u64, OpKind) {
        (self.owner.load(Ordering::Relaxed), OpKind::ALL[self.op.load(Ordering::Relaxed) as usize])
    }

    /// Where a waiter parks: the slot's address, which no other parking in the process uses.
    fn park_key(&self) -> usize {
        self as *const Self as usize
    }

    /// Whether `life` is the live occupant `key` names.
    fn check(&self, key: u64, life: u64) -> std::result::Result<(), Gone> {
        if generation(life) == key as u32 && life & LIVE != 0 {
            Ok(())
        } else {
            Err(self.gone(key, life))
        }
    }

    fn gone(&self, key: u64, life: u64) -> Gone {
        let (mine, now) = (key as u32, generation(life));
        // Generations only grow (until they wrap, after 2^32 uses of one slot): a key ahead of
        // its slot was never issued.
        if mine > now {
            Gone::Invalid
        } else if mine == now {
            Gone::Stale(Some(self.made_by()))
        } else {
            Gone::Stale(None)
        }
    }

    /// Drops the handle without End (a Begin that failed or unwound).
    fn unhand(&'static self) {
        let prev = self.life.fetch_and(!LIVE, Ordering::AcqRel);
        if prev & REFS == 0 && prev & LIVE != 0 {
            self.recycle();
        }
    }

    /// Drops one reference; the last one (with the handle gone) recycles the slot.
    fn release(&'static self) {
        let prev = self.life.fetch_sub(REF, Ordering::AcqRel);
        if prev & REFS == REF && prev & LIVE == 0 {
            self.recycle();
        }
    }

    /// Back to the free list, with what nobody took (the outcome of a Begin that failed) dropped.
    fn recycle(&'static self) {
        // SAFETY: no handle and no reference is left: nobody else looks at the outcome.
        let left = unsafe { (*self.outcome.get()).take() };
        drop(left);
        H::store().recycle(self.index);
    }

    /// Records the outcome, wakes waiters, then runs the callback (exactly once), which ends the
    /// completion's reference.
    fn record(&'static self, outcome: Outcome) {
        THREAD.with(|t| self.record_on(t, outcome))
    }

    fn record_on(&'static self, thread: &Thread, outcome: Outcome) {
        let key = self.key();
        let inside_begin = thread.beginning.get().0 == key;
        // Synchronous means the callback runs here, before Begin returns; a callback the nesting
        // guard sends to an engine thread runs after Begin returned, so it is not.
        let inline = thread.depth.get() < MAX_INLINE_DEPTH;
        if self.flags.load(Ordering::Acquire) & COMPLETED != 0 {
            debug_assert!(false, "an operation completed twice");
            return;
        }
        // SAFETY: the one completion writes it, before COMPLETED says it is there.
        unsafe { *self.outcome.get() = Some(outcome.map_err(Box::new)) };
        if inside_begin {
            thread.beginning.set((key, true));
        }
        let flags = COMPLETED | if inline && inside_begin { SYNCHRONOUS } else { 0 };
        if self.flags.fetch_or(flags, Ordering::AcqRel) & WAITING != 0 {
            // SAFETY: unpark_all is given a key only this slot parks on.
            unsafe { parking_lot_core::unpark_all(self.park_key(), DEFAULT_UNPARK_TOKEN) };
        }
        // The completed flag above lets only one completion through: the callback runs once.
        if !inside_begin {
            self.callback_on(thread, key);
        }
    }

    /// Runs the hook for the occupant `key` (the caller's reference keeps it this occupant's).
    fn callback(&'static self, key: u64) {
        THREAD.with(|t| self.callback_on(t, key))
    }

    fn callback_on(&'static self, thread: &Thread, key: u64) {
        let words = [0, 1].map(|i| self.words[i].load(Ordering::Relaxed));
        if thread.depth.get() < MAX_INLINE_DEPTH {
            self.notify_on(thread, key, words);
        } else {
            crate::engine::post(Box::new(move || THREAD.with(|t| self.notify_on(t, key, words))));
        }
    }

    /// The hook's call, one callback level deeper on `thread`.
    fn notify_on(&'static self, thread: &Thread, key: u64, words: [usize; 2]) {
        let _depth = DepthScope::enter(thread);
        // Released also when the callback unwinds (the engine catches it).
        let _reference = Held(self);
        H::notify(key, words);
    }
}

impl<H: Hook> Sink for Slot<H> {
    fn complete(&'static self, outcome: Outcome) {
        self.record(outcome);
    }

    /// The result's key (the completion holds a reference, so it is this occupant's).
    fn tag(&self) -> usize {
        self.key() as usize
    }
}

/// A reference to a result: its slot is not reused while this lives.
pub struct Held<H: Hook>(&'static Slot<H>);

impl<H: Hook> Held<H> {
    pub fn key(&self) -> u64 {
        self.0.key()
    }

    /// The identity of the object whose Begin made it.
    pub fn owner(&self) -> u64 {
        self.0.made_by().0
    }

    pub fn is_completed(&self) -> bool {
        self.0.flags.load(Ordering::Acquire) & COMPLETED != 0
    }

    /// Waits for completion; None = forever. Returns whether it completed.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        if self.is_completed() {
            return true;
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let flags = &self.0.flags;
        loop {
            let f = flags.fetch_or(WAITING, Ordering::AcqRel);
            if f & COMPLETED != 0 {
                return true;
            }
            // Sleeps unless the completion came in between: it sets COMPLETED before it looks
            // for WAITING, and unparks under the same queue lock this validation runs under.
            // SAFETY: the key is this slot's address, no callback panics or parks.
            let parked = unsafe {
                parking_lot_core::park(
                    self.0.park_key(),
                    || flags.load(Ordering::Acquire) & COMPLETED == 0,
                    || {},
                    |_, _| {},
                    DEFAULT_PARK_TOKEN,
                    deadline,
                )
            };
            if matches!(parked, parking_lot_core::ParkResult::TimedOut) {
                return self.is_completed();
            }
        }
    }

    /// Waits for completion and takes the outcome (End does this once, holding the handle it
    /// released).
    pub fn take_outcome(&self) -> Outcome {
        self.wait(None);
        // SAFETY: completed (Acquire above), and End is the one reader of the outcome.
        match unsafe { (*self.0.outcome.get()).take() } {
            Some(o) => o.map_err(|e| *e),
            None => Err(Error::internal("the outcome was already taken")),
        }
    }
}

impl<H: Hook> Drop for Held<H> {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts callbacks per word 0 (tests give each result its own counter index).
    static CALLS: [AtomicUsize; 10] = [const { AtomicUsize::new(0) }; 10];
    struct Count;
    impl Hook for Count {
        fn notify(_key: u64, words: [usize; 2]) {
            CALLS[words[0]].fetch_add(1, Ordering::SeqCst);
        }
        fn store() -> &'static Results<Count> {
            &STORE
        }
    }
    static STORE: Results<Count> = Results::new(2);

    fn calls(i: usize) -> usize {
        CALLS[i].load(Ordering::SeqCst)
    }

    fn end(key: u64) -> Outcome {
        match STORE.end(key, |_, _| true) {
            Ended::Taken(h) => h.take_outcome(),
            _ => panic!("not live"),
        }
    }

    #[test]
    fn completion_inside_begin_is_synchronous_and_runs_the_callback_before_begin_returns() {
        let key = STORE
            .begin(1, OpKind::Write, [0, 0], |done, _| {
                done.complete(Ok(Value::Bytes(3)));
                Ok(())
            })
            .unwrap();
        assert_eq!(calls(0), 1);
        let f = STORE.flags(key).unwrap();
        assert!(f.is_completed() && f.completed_synchronously());
        assert!(matches!(end(key), Ok(Value::Bytes(3))));
        assert_eq!(STORE.flags(key).err(), Some(Gone::Stale(Some((1, OpKind::Write)))));
    }

    #[test]
    fn a_begin_that_fails_runs_no_callback_even_when_its_body_dropped_the_completion() {
        let r = STORE.begin(1, OpKind::Write, [1, 0], |done, _| {
            drop(done);
            Err(Error::argument("no"))
        });
        assert!(r.is_err());
        assert_eq!(calls(1), 0);
    }

    #[test]
    fn a_dropped_completion_after_begin_completes_with_an_internal_error() {
        let mut keep = None;
        let key = STORE
            .begin(1, OpKind::Read, [2, 0], |done, _| {
                keep = Some(done);
                Ok(())
            })
            .unwrap();
        std::thread::spawn(move || drop(keep)).join().unwrap();
        assert_eq!(calls(2), 1);
        assert_eq!(end(key).err().map(|e| e.status), Some(crate::error::code::INTERNAL));
    }

    #[test]
    fn completion_on_another_thread_is_asynchronous() {
        let mut keep = None;
        let key = STORE
            .begin(1, OpKind::Read, [3, 0], |done, _| {
                keep = Some(done);
                Ok(())
            })
            .unwrap();
        let held = STORE.hold(key).unwrap();
        assert!(!held.wait(Some(Duration::from_millis(10))));
        let done = keep.take().unwrap();
        std::thread::spawn(move || done.complete(Ok(Value::Unit))).join().unwrap();
        assert!(held.wait(None));
        drop(held);
        assert!(!STORE.flags(key).unwrap().completed_synchronously());
        assert!(end(key).is_ok());
    }

    #[test]
    fn end_refuses_a_foreign_result_and_a_second_end_knows_who_made_it() {
        let key = STORE.begin(7, OpKind::Send, [4, 0], |done, _| {
            done.complete(Ok(Value::Unit));
            Ok(())
        }).unwrap();
        assert!(matches!(STORE.end(key, |owner, _| owner == 8), Ended::Refused));
        assert!(matches!(STORE.end(key, |owner, op| owner == 7 && op == OpKind::Send), Ended::Taken(_)));
        assert!(matches!(STORE.end(key, |_, _| true), Ended::Gone(Gone::Stale(Some((7, OpKind::Send))))));
    }

    #[test]
    fn keys_of_another_kind_or_ahead_of_their_slot_are_invalid() {
        let key = STORE.begin(1, OpKind::Send, [5, 0], |done, _| {
            done.complete(Ok(Value::Unit));
            Ok(())
        }).unwrap();
        assert_eq!(STORE.flags((key & !(0xff << 56)) | 3 << 56).err(), Some(Gone::Invalid));
        assert_eq!(STORE.flags(key + 1).err(), Some(Gone::Invalid));
        assert_eq!(STORE.flags(0).err(), Some(Gone::Invalid));
        assert_eq!(STORE.flags(2 << 56 | 0x00ff_0000_0000_0001).err(), Some(Gone::Invalid));
        assert!(end(key).is_ok());
    }

    #[test]
    fn a_slot_is_reused_only_when_its_handle_and_its_completion_are_gone() {
        let mut keep = None;
        let key = STORE
            .begin(1, OpKind::Read, [6, 0], |done, _| {
                keep = Some(done);
                Ok(())
            })
            .unwrap();
        // Ended before it completed: End waits on another thread; the slot stays until both
        // the completion's callback and End are done.
        let ender = std::thread::spawn(move || end(key).is_ok());
        std::thread::sleep(Duration::from_millis(5));
        keep.take().unwrap().complete(Ok(Value::Unit));
        assert!(ender.join().unwrap());
        let slot = STORE.slot(key).unwrap();
        assert!(unused(slot.life.load(Ordering::SeqCst)), "no handle and no reference left");
    }

    #[test]
    fn a_begin_whose_operation_completed_ended_and_was_reused_before_its_body_returned_runs_no_callback_of_its_own() {
        // The body hands its completion to another thread, which completes it there; the
        // result is ended and its slot reused by Begins that complete inside themselves, all
        // before the body returns. The body's thread must not mistake the reuser's completion
        // for its own: that was a callback with a stale key and the reuser's words.
        const REUSES: usize = 200;
        let key = STORE
            .begin(1, OpKind::Read, [7, 0], |done, key| {
                std::thread::spawn(move || done.complete(Ok(Value::Unit))).join().unwrap();
                assert!(end(key).is_ok());
                std::thread::spawn(|| {
                    for _ in 0..REUSES {
                        let k = STORE.begin(1, OpKind::Write, [8, 0], |done, _| {
                            done.complete(Ok(Value::Unit));
                            Ok(())
                        });
                        assert!(end(k.unwrap()).is_ok());
                    }
                })
                .join()
                .unwrap();
                Ok(())
            })
            .unwrap();
        assert_eq!((calls(7), calls(8)), (1, REUSES));
        assert!(matches!(STORE.flags(key), Err(Gone::Stale(_))));
    }

    #[test]
    fn a_slot_is_64_bytes() {
        assert_eq!(std::mem::size_of::<Slot<Count>>(), 64);
    }
}
