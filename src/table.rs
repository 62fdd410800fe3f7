//! A generational table of objects with 64-bit keys: what a C caller holds instead of pointers.
//!
//! A key is `kind:8 | index:24 | generation:32`. Every use looks the key up: a value that was
//! never issued is refused (`Invalid`), and one whose object was released is recognised as stale
//! by its generation (`Stale`), so a use after release is an error, never a touch of freed
//! memory. The kind byte travels inside the key, which is how a stale key still knows what it
//! was; the table gives it no meaning. A released slot keeps a 64-bit epitaph chosen by the
//! caller (who ended a result, say) until the slot is reused: it shares its word with the key a
//! live slot owns.
//!
//! The table is sharded by the low bits of the index: new keys go to the shards in turn and a
//! lookup locks only the shard of its key, so Begin and End on different threads seldom meet on
//! one lock. Free slots are reused oldest first, so a slot's generation advances once per
//! `free slots` releases rather than once per release.
//!
//! A slot may own one other key (a stream that owns its socket): releasing the owner hands that
//! key back so the caller can release it too.
//!
//! An object is kept as one word and a tag byte (`Thin`: an Arc, a Box, an enum of them), so
//! that a slot is 24 bytes; a handle's slot is most of what an idle handle costs beside its
//! object.

use std::sync::{Mutex, MutexGuard};
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicUsize, Ordering};

const SHARD_BITS: u32 = 4;
const SHARDS: usize = 1 << SHARD_BITS;
/// Slots per shard: the 24-bit index holds the shard in its low bits and the slot above them.
const SLOTS_PER_SHARD: usize = 1 << (24 - SHARD_BITS);

/// The result of looking a key up.
pub enum Lookup<T> {
    Live(T),
    /// Issued once, released since: its kind byte and the epitaph left at release (0: none, or
    /// the slot has had another occupant since).
    Stale(u8, u64),
    /// Never issued by this table (garbage, or a pointer from elsewhere).
    Invalid,
}

/// What `take_if` found.
pub enum Taken<T> {
    /// The object, now released, and the key it owned (0 for none).
    Object(T, u64),
    /// A live object that `accept` refused; it stays in the table.
    Refused,
    Stale(u8, u64),
    Invalid,
}

/// What a table can hold: a value that is one word and a tag byte.
///
/// # Safety
/// `from_raw` of what `into_raw` made is the same value. The table calls `from_raw` once per
/// `into_raw` to take the value back, and otherwise only to lend it, inside a `ManuallyDrop`
/// that is never dropped, for as long as the shard's lock is held.
pub unsafe trait Thin: Sized {
    fn into_raw(self) -> (u8, usize);
    /// # Safety
    /// As above: `tag` and `word` are what `into_raw` made of a value still in the table.
    unsafe fn from_raw(tag: u8, word: usize) -> Self;
}

// SAFETY: the word is Arc::into_raw's pointer, given back to Arc::from_raw.
unsafe impl<T: Send + Sync> Thin for std::sync::Arc<T> {
    fn into_raw(self) -> (u8, usize) {
        (0, std::sync::Arc::into_raw(self) as usize)
    }
    unsafe fn from_raw(_: u8, word: usize) -> Self {
        // SAFETY: per the trait's contract.
        unsafe { std::sync::Arc::from_raw(word as *const T) }
    }
}

// SAFETY: the word is Box::into_raw's pointer, given back to Box::from_raw.
unsafe impl<T> Thin for Box<T> {
    fn into_raw(self) -> (u8, usize) {
        (0, Box::into_raw(self) as usize)
    }
    unsafe fn from_raw(_: u8, word: usize) -> Self {
        // SAFETY: per the trait's contract.
        unsafe { Box::from_raw(word as *mut T) }
    }
}

struct Slot {
    /// The object's word (`Thin`), while `live`.
    word: usize,
    /// Live: the key this slot owns (0 for none). Released: the epitaph (0 for none).
    aux: u64,
    /// The generation of the current or last occupant; starts at 1 so no key is 0.
    generation: u32,
    /// The kind byte of the current or last occupant's key: a key with another kind is not one
    /// this table issued (a handle of one class passed as another, with its kind byte altered).
    kind: u8,
    /// The object's tag byte (`Thin`), while `live`.
    tag: u8,
    live: bool,
}

pub struct Shard<T: Thin> {
    slots: Vec<Slot>,
    free: VecDeque<u32>,
    /// The slots hold `T`s in their raw form.
    objects: PhantomData<T>,
}

impl<T: Thin> Shard<T> {
    /// Lends the live object of `slot`.
    fn lend<R>(&self, slot: usize, f: impl FnOnce(&T) -> R) -> R {
        let e = &self.slots[slot];
        debug_assert!(e.live);
        // SAFETY: a live slot's parts came from `into_raw`; the loan is never dropped and ends
        // before the lock that keeps the slot live does.
        let object = ManuallyDrop::new(unsafe { T::from_raw(e.tag, e.word) });
        f(&object)
    }

    /// Takes the live object out of `slot`; the caller frees the slot.
    fn take(&mut self, slot: usize) -> T {
        let e = &mut self.slots[slot];
        debug_assert!(e.live);
        e.live = false;
        // SAFETY: a live slot's parts, taken back once (the slot is no longer live).
        unsafe { T::from_raw(e.tag, std::mem::take(&mut e.word)) }
    }
}

/// The objects' `Send` is the table's `Send` and `Sync`, as it would be for a `Mutex<T>`.
pub struct Table<T: Thin> {
    shards: [Mutex<Shard<T>>; SHARDS],
}

impl<T: Thin> Drop for Shard<T> {
    fn drop(&mut self) {
        // A Table in a static is never dropped; one in a test drops what it still holds.
        for slot in 0..self.slots.len() {
            if self.slots[slot].live {
                drop(self.take(slot));
            }
        }
    }
}

fn kind_of(key: u64) -> u8 {
    (key >> 56) as u8
}

fn generation_of(key: u64) -> u32 {
    key as u32
}

/// (shard, slot within the shard)
fn place_of(key: u64) -> (usize, usize) {
    let index = ((key >> 32) & 0x00ff_ffff) as usize;
    (index & (SHARDS - 1), index >> SHARD_BITS)
}

fn key(kind: u8, shard: usize, slot: usize, generation: u32) -> u64 {
    let index = ((slot << SHARD_BITS) | shard) as u64;
    (kind as u64) << 56 | index << 32 | generation as u64
}

/// The shard a new key goes to: round robin, so keys spread over the shards whichever threads
/// make them (one relaxed add; a thread-local "home" shard costs more in a shared library, where
/// every thread-local access is a call).
fn next_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS
}

impl<T: Thin> Default for Table<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Thin> Table<T> {
    fn shard(&self, i: usize) -> MutexGuard<'_, Shard<T>> {
        // Nothing panics while holding a shard; a poisoned one is still consistent.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub const fn new() -> Table<T> {
        Table {
            shards: [const { Mutex::new(Shard { slots: Vec::new(), free: VecDeque::new(), objects: PhantomData }) }; SHARDS],
        }
    }

    /// Stores `object` under a new key of `kind` (not 0), owning `owned` (0 for nothing); None
    /// when the table is full.
    pub fn insert(&self, kind: u8, object: T, owned: u64) -> Option<u64> {
        debug_assert!(kind != 0);
        let first = next_shard();
        let mut object = object;
        // A full shard passes the key to the next.
        for i in 0..SHARDS {
            match self.insert_into((first + i) % SHARDS, kind, object, owned) {
                Ok(key) => return Some(key),
                Err(back) => object = back,
            }
        }
        None
    }

    fn insert_into(&self, shard: usize, kind: u8, object: T, owned: u64) -> Result<u64, T> {
        let mut s = self.shard(shard);
        // Reuse the oldest free slot only once a few are free, so that a slot released and taken
        // again at once does not spend its generations.
        let slot = match s.free.len() {
            n if n > 8 || (n > 0 && s.slots.len() >= SLOTS_PER_SHARD) => {
                s.free.pop_front().expect("free is not empty") as usize
            }
            _ if s.slots.len() < SLOTS_PER_SHARD => {
                s.slots.push(Slot { word: 0, aux: 0, generation: 0, kind: 0, tag: 0, live: false });
                s.slots.len() - 1
            }
            _ => return Err(object),
        };
        let entry = &mut s.slots[slot];
        // Generation 0 is never handed out; wrapping skips it.
        entry.generation = entry.generation.wrapping_add(1).max(1);
        entry.kind = kind;
        (entry.tag, entry.word) = object.into_raw();
        entry.live = true;
        entry.aux = owned;
        Ok(key(kind, shard, slot, entry.generation))
    }

    /// Runs `f` on what `key` names, under its shard's lock; `f` must not use the table.
    pub fn with<R>(&self, key: u64, f: impl FnOnce(Lookup<&T>) -> R) -> R {
        let kind = kind_of(key);
        let (shard, slot) = place_of(key);
        let s = self.shard(shard);
        let Some(entry) = s.slots.get(slot) else { return f(Lookup::Invalid) };
        let generation = generation_of(key);
        if kind == 0 || generation == 0 || generation > entry.generation {
            return f(Lookup::Invalid);
        }
        if generation == entry.generation && kind != entry.kind {
            return f(Lookup::Invalid);
        }
        match entry.live {
            true if entry.generation == generation => s.lend(slot, |object| f(Lookup::Live(object))),
            // An epitaph belongs to the last occupant only.
            _ if entry.generation == generation => f(Lookup::Stale(kind, entry.aux)),
            _ => f(Lookup::Stale(kind, 0)),
        }
    }

    /// Releases `key` if `accept` approves of its object, in one step under the shard's lock (so
    /// two racing releases cannot both succeed), leaving `epitaph` in the slot.
    pub fn take_if(&self, key: u64, accept: impl FnOnce(&T) -> bool, epitaph: u64) -> Taken<T> {
        let kind = kind_of(key);
        let (shard, slot) = place_of(key);
        let mut s = self.shard(shard);
        let Some(entry) = s.slots.get(slot) else { return Taken::Invalid };
        let generation = generation_of(key);
        if kind == 0 || generation == 0 || generation > entry.generation {
            return Taken::Invalid;
        }
        if generation == entry.generation && kind != entry.kind {
            return Taken::Invalid;
        }
        match entry.live {
            true if entry.generation == generation => {
                if !s.lend(slot, accept) {
                    return Taken::Refused;
                }
                let object = s.take(slot);
                let owned = std::mem::replace(&mut s.slots[slot].aux, epitaph);
                s.free.push_back(slot as u32);
                Taken::Object(object, owned)
            }
            _ if entry.generation == generation => Taken::Stale(kind, entry.aux),
            _ => Taken::Stale(kind, 0),
        }
    }

    /// Releases `key`: its object and the key it owned, when it was live.
    pub fn remove(&self, key: u64) -> Option<(T, u64)> {
        match self.take_if(key, |_| true, 0) {
            Taken::Object(o, owned) => Some((o, owned)),
            _ => None,
        }
    }
}

/// Around fork(2) (see engine::fork): the table's state must reach the child consistent, and
/// the child must neither use nor drop what the parent's objects were doing.
impl<T: Thin> Table<T> {
    /// Takes every shard's lock (the forking thread, before fork); dropping what it returns
    /// releases them, in the parent and in the child alike (std mutexes: no waiter of the parent
    /// can be handed the lock in the child).
    pub fn lock_for_fork(&self) -> Vec<MutexGuard<'_, Shard<T>>> {
        (0..SHARDS).map(|i| self.shard(i)).collect()
    }

    /// Releases every live key and hands back the objects, for the caller to keep undropped:
    /// the keys become stale.
    pub fn forget_live(&self) -> Vec<T> {
        let mut objects = Vec::new();
        for i in 0..SHARDS {
            let mut s = self.shard(i);
            for slot in 0..s.slots.len() {
                if s.slots[slot].live {
                    objects.push(s.take(slot));
                    s.slots[slot].aux = 0;
                    s.free.push_back(slot as u32);
                }
            }
        }
        objects
    }
}

impl<T: Thin + Clone> Table<T> {
    /// A clone of what `key` names.
    pub fn get(&self, key: u64) -> Lookup<T> {
        self.with(key, |l| match l {
            Lookup::Live(o) => Lookup::Live(o.clone()),
            Lookup::Stale(k, e) => Lookup::Stale(k, e),
            Lookup::Invalid => Lookup::Invalid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SAFETY: the number is its own word.
    unsafe impl Thin for u32 {
        fn into_raw(self) -> (u8, usize) {
            (0, self as usize)
        }
        unsafe fn from_raw(_: u8, word: usize) -> Self {
            word as u32
        }
    }

    // SAFETY: as for u32.
    unsafe impl Thin for usize {
        fn into_raw(self) -> (u8, usize) {
            (0, self)
        }
        unsafe fn from_raw(_: u8, word: usize) -> Self {
            word
        }
    }

    #[test]
    fn released_keys_become_stale_and_keep_their_epitaph() {
        let t: Table<u32> = Table::new();
        let a = t.insert(2, 10, 0).unwrap();
        assert!(matches!(t.get(a), Lookup::Live(10)));
        assert!(matches!(t.take_if(a, |_| true, 7), Taken::Object(10, 0)));
        assert!(matches!(t.get(a), Lookup::Stale(2, 7)));
        assert!(t.remove(a).is_none());
        for i in 0..20 {
            t.insert(2, i, 0).unwrap();
        }
        let b = t.insert(2, 11, 0).unwrap();
        assert_ne!(a, b);
        // The slot was reused: the old key is still stale, its epitaph gone with the occupant.
        assert!(matches!(t.get(a), Lookup::Stale(2, _)));
    }

    #[test]
    fn forgotten_keys_are_stale_and_their_objects_are_not_dropped() {
        let t: Table<std::sync::Arc<()>> = Table::new();
        let object = std::sync::Arc::new(());
        let k = t.insert(1, object.clone(), 0).unwrap();
        drop(t.lock_for_fork());
        let kept = t.forget_live();
        assert!(matches!(t.get(k), Lookup::Stale(1, 0)));
        assert_eq!(kept.len(), 1);
        assert_eq!(std::sync::Arc::strong_count(&object), 2, "the table's reference was handed back, not dropped");
    }

    #[test]
    fn a_slot_is_three_words() {
        assert_eq!(std::mem::size_of::<Slot>(), 24);
    }

    #[test]
    fn a_key_with_another_kind_byte_is_invalid() {
        let t: Table<u32> = Table::new();
        let k = t.insert(1, 5, 0).unwrap();
        let forged = (k & 0x00ff_ffff_ffff_ffff) | (4 << 56);
        assert!(matches!(t.get(forged), Lookup::Invalid));
        assert!(t.remove(forged).is_none());
        assert!(matches!(t.get(k), Lookup::Live(5)));
    }

    #[test]
    fn garbage_is_invalid() {
        let t: Table<u32> = Table::new();
        t.insert(1, 1, 0).unwrap();
        assert!(matches!(t.get(0), Lookup::Invalid));
        assert!(matches!(t.get(0xdead_beef), Lookup::Invalid));
        assert!(matches!(t.get(key(1, 0, 0xf_fff0, 7)), Lookup::Invalid));
    }

    #[test]
    fn a_refused_take_leaves_the_object_and_ownership_comes_back_on_release() {
        let t: Table<u32> = Table::new();
        let child = t.insert(1, 1, 0).unwrap();
        let parent = t.insert(3, 2, child).unwrap();
        assert!(matches!(t.take_if(parent, |_| false, 0), Taken::Refused));
        assert_eq!(t.remove(parent), Some((2, child)));
        assert_eq!(t.remove(child), Some((1, 0)));
    }

    #[test]
    fn keys_made_on_several_threads_are_found_on_any() {
        let t: &'static Table<usize> = Box::leak(Box::new(Table::new()));
        let keys: Vec<u64> = (0..4)
            .map(|i| std::thread::spawn(move || t.insert(1, i, 0).unwrap()))
            .map(|h| h.join().unwrap())
            .collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(matches!(t.get(*k), Lookup::Live(v) if v == i));
        }
    }
}
