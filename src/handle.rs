//! The handle table: what C holds instead of pointers.
//!
//! A handle is a 64-bit value `kind:8 | index:24 | generation:32`, handed to C as an opaque pointer
//! that is never dereferenced. Every call looks the handle up: a value that was never issued is
//! refused, and one whose object was released is recognised as stale by its generation, so a
//! closed socket reports ObjectDisposed and a second End reports InvalidOperation instead of
//! touching freed memory. The kind travels inside the value, which is how a stale handle still
//! knows what it was.

use crate::async_result::AsyncResult;
use crate::net::socket::Socket;
use crate::stream::Stream;
use parking_lot::RwLock;
use std::sync::Arc;

/// What a handle names. The numbers are part of the handle values; append only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Socket = 1,
    AsyncResult = 2,
    NetworkStream = 3,
    SslStream = 4,
    Certificate = 5,
    TransportContext = 6,
    CustomStream = 7,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        match v {
            1 => Some(Kind::Socket),
            2 => Some(Kind::AsyncResult),
            3 => Some(Kind::NetworkStream),
            4 => Some(Kind::SslStream),
            5 => Some(Kind::Certificate),
            6 => Some(Kind::TransportContext),
            7 => Some(Kind::CustomStream),
            _ => None,
        }
    }

    /// The .NET class a handle of this kind stands for (for ObjectDisposed messages).
    pub fn class_name(self) -> &'static str {
        match self {
            Kind::Socket => "System.Net.Sockets.Socket",
            Kind::AsyncResult => "System.IAsyncResult",
            Kind::NetworkStream => "System.Net.Sockets.NetworkStream",
            Kind::SslStream => "System.Net.Security.SslStream",
            Kind::Certificate => "System.Security.Cryptography.X509Certificates.X509Certificate2",
            Kind::TransportContext => "System.Net.TransportContext",
            Kind::CustomStream => "System.IO.Stream",
        }
    }
}

/// The object behind a live handle.
#[derive(Clone)]
pub enum Object {
    Socket(Arc<Socket>),
    AsyncResult(Arc<AsyncResult>),
    Stream(Arc<dyn Stream>),
    Certificate(Arc<crate::tls::Certificate>),
    TransportContext(Arc<crate::tls::TransportContext>),
}

/// A handle value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle(pub u64);

impl Handle {
    pub const NULL: Handle = Handle(0);

    fn new(kind: Kind, index: u32, generation: u32) -> Handle {
        Handle((kind as u64) << 56 | (index as u64) << 32 | generation as u64)
    }

    pub fn kind(self) -> Option<Kind> {
        Kind::from_u8((self.0 >> 56) as u8)
    }

    fn index(self) -> usize {
        ((self.0 >> 32) & 0x00ff_ffff) as usize
    }

    fn generation(self) -> u32 {
        self.0 as u32
    }
}

/// The result of looking a handle up.
pub enum Lookup {
    Live(Object),
    /// Issued once, released since.
    Stale(Kind),
    /// Never issued by this table (garbage, or a pointer from elsewhere).
    Invalid,
}

struct Slot {
    /// The generation of the current or last occupant; starts at 1 so no handle is 0.
    generation: u32,
    object: Option<Object>,
}

struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

const MAX_SLOTS: usize = 1 << 24;

static TABLE: RwLock<Table> = RwLock::new(Table { slots: Vec::new(), free: Vec::new() });

/// Stores `object` and returns its new handle, or None when 2^24 handles are live.
pub fn insert(kind: Kind, object: Object) -> Option<Handle> {
    let mut table = TABLE.write();
    let index = match table.free.pop() {
        Some(i) => i as usize,
        None if table.slots.len() < MAX_SLOTS => {
            table.slots.push(Slot { generation: 0, object: None });
            table.slots.len() - 1
        }
        None => return None,
    };
    let slot = &mut table.slots[index];
    // Generation 0 is never handed out; wrapping skips it.
    slot.generation = slot.generation.wrapping_add(1).max(1);
    slot.object = Some(object);
    Some(Handle::new(kind, index as u32, slot.generation))
}

/// Finds the object behind `handle`.
pub fn get(handle: Handle) -> Lookup {
    let Some(kind) = handle.kind() else { return Lookup::Invalid };
    let table = TABLE.read();
    let Some(slot) = table.slots.get(handle.index()) else { return Lookup::Invalid };
    if handle.generation() == 0 || handle.generation() > slot.generation {
        return Lookup::Invalid;
    }
    match &slot.object {
        Some(object) if slot.generation == handle.generation() => Lookup::Live(object.clone()),
        _ => Lookup::Stale(kind),
    }
}

/// A borrowed look at the object behind a handle.
pub enum LookupRef<'a> {
    Live(&'a Object),
    Stale(Kind),
    Invalid,
}

/// Runs `f` on the object behind `handle` under the table's read lock, without cloning it: for
/// the calls that only read a flag. `f` must not call back into the table.
pub fn with<R>(handle: Handle, f: impl FnOnce(LookupRef<'_>) -> R) -> R {
    let Some(kind) = handle.kind() else { return f(LookupRef::Invalid) };
    let table = TABLE.read();
    let Some(slot) = table.slots.get(handle.index()) else { return f(LookupRef::Invalid) };
    if handle.generation() == 0 || handle.generation() > slot.generation {
        return f(LookupRef::Invalid);
    }
    match &slot.object {
        Some(object) if slot.generation == handle.generation() => f(LookupRef::Live(object)),
        _ => f(LookupRef::Stale(kind)),
    }
}

/// What `take_if` found.
pub enum Taken {
    /// The object, now released from the table.
    Object(Object),
    /// A live object that `accept` refused; it stays in the table.
    Refused,
    Stale(Kind),
    Invalid,
}

/// Releases `handle` if `accept` approves of its object, in one step under the write lock (End's
/// check and release, so two racing Ends cannot both succeed).
pub fn take_if(handle: Handle, accept: impl FnOnce(&Object) -> bool) -> Taken {
    let Some(kind) = handle.kind() else { return Taken::Invalid };
    let mut table = TABLE.write();
    let index = handle.index();
    let Some(slot) = table.slots.get_mut(index) else { return Taken::Invalid };
    if handle.generation() == 0 || handle.generation() > slot.generation {
        return Taken::Invalid;
    }
    match &slot.object {
        Some(object) if slot.generation == handle.generation() => {
            if !accept(object) {
                return Taken::Refused;
            }
            let object = slot.object.take().expect("checked above");
            table.free.push(index as u32);
            Taken::Object(object)
        }
        _ => Taken::Stale(kind),
    }
}

/// Releases `handle`; returns the object when the handle was live.
pub fn remove(handle: Handle) -> Option<Object> {
    let mut table = TABLE.write();
    let index = handle.index();
    let slot = table.slots.get_mut(index)?;
    if slot.generation != handle.generation() || handle.kind().is_none() {
        return None;
    }
    let object = slot.object.take()?;
    table.free.push(index as u32);
    Some(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::async_result::{AsyncResult, OpKind};

    fn result() -> Object {
        Object::AsyncResult(AsyncResult::new(Handle::NULL, OpKind::Write, 0, None))
    }

    #[test]
    fn released_handles_become_stale_and_slots_are_reused() {
        let a = insert(Kind::AsyncResult, result()).unwrap();
        assert!(matches!(get(a), Lookup::Live(Object::AsyncResult(_))));
        assert!(remove(a).is_some());
        assert!(matches!(get(a), Lookup::Stale(Kind::AsyncResult)));
        assert!(remove(a).is_none());
        let b = insert(Kind::AsyncResult, result()).unwrap();
        assert_ne!(a, b);
        assert!(matches!(get(a), Lookup::Stale(_)));
        remove(b);
    }

    #[test]
    fn garbage_is_invalid() {
        assert!(matches!(get(Handle(0)), Lookup::Invalid));
        assert!(matches!(get(Handle(0xdead_beef)), Lookup::Invalid));
        assert!(matches!(get(Handle::new(Kind::Socket, 0xff_fff0, 7)), Lookup::Invalid));
    }
}
