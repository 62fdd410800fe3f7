//! The handles C holds, and the one cast layer every export goes through.
//!
//! A handle is a key of the generational `Table` (kind:8 | index:24 | generation:32), handed to C
//! as an opaque pointer that is never dereferenced. Each C class is one `Class` declaration: the
//! object it names, its parameter name and how a table entry casts to it; `lookup`, `register`,
//! `close` and `end_on` are written once for all of them (the analogue of rustls-ffi's
//! `Castable`). Ownership (a stream that owns its socket, an SslStream that owns its inner
//! stream) is recorded in the table: releasing the owner releases what it owns.

use super::callback::CCallback;
use super::negotiate_authentication::AuthObject;
use super::{apm_async_result, apm_socket, apm_stream};
use crate::async_result::{Ended, Gone, OpKind, Results};
use crate::error::{code, msg, Error, Result};
use crate::http::{HttpWebRequest, HttpWebResponse};
use crate::net::network_stream::NetworkStream;
use crate::net::socket::Socket;
use crate::op::{Outcome, Value};
use crate::stream::Stream;
use crate::table::{Lookup, Table, Taken, Thin};
use crate::negotiate::credential::Credentials;
use crate::negotiate::NegotiateStream;
use crate::tls::{Certificate, SslStream, TransportContext};
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
    HttpRequest = 8,
    HttpResponse = 9,
    HttpRequestStream = 10,
    HttpResponseStream = 11,
    NegotiateStream = 12,
    Credential = 13,
    NegotiateAuthentication = 14,
}

impl Kind {
    const ALL: [Kind; 14] = [
        Kind::Socket,
        Kind::AsyncResult,
        Kind::NetworkStream,
        Kind::SslStream,
        Kind::Certificate,
        Kind::TransportContext,
        Kind::CustomStream,
        Kind::HttpRequest,
        Kind::HttpResponse,
        Kind::HttpRequestStream,
        Kind::HttpResponseStream,
        Kind::NegotiateStream,
        Kind::Credential,
        Kind::NegotiateAuthentication,
    ];

    fn from_u8(v: u8) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| *k as u8 == v)
    }

    /// The .NET class a handle of this kind stands for (for ObjectDisposed messages).
    pub fn class_name(self) -> &'static str {
        match self {
            Kind::Socket => crate::net::socket::CLASS_NAME,
            Kind::AsyncResult => "System.IAsyncResult",
            Kind::NetworkStream => crate::net::network_stream::CLASS_NAME,
            Kind::SslStream => crate::tls::ssl_stream::CLASS_NAME,
            Kind::Certificate => "System.Security.Cryptography.X509Certificates.X509Certificate2",
            Kind::TransportContext => "System.Net.TransportContext",
            Kind::CustomStream => "System.IO.Stream",
            Kind::HttpRequest => crate::http::request::CLASS_NAME,
            Kind::HttpResponse => crate::http::response::CLASS_NAME,
            Kind::HttpRequestStream | Kind::HttpResponseStream => crate::http::STREAM_CLASS_NAME,
            Kind::NegotiateStream => crate::negotiate::stream::CLASS_NAME,
            Kind::Credential => "System.Net.NetworkCredential",
            Kind::NegotiateAuthentication => crate::negotiate::authentication::CLASS_NAME,
        }
    }

    fn is_stream(self) -> bool {
        matches!(
            self,
            Kind::NetworkStream
                | Kind::SslStream
                | Kind::CustomStream
                | Kind::HttpRequestStream
                | Kind::HttpResponseStream
                | Kind::NegotiateStream
        )
    }
}

/// The object behind a live handle.
#[derive(Clone)]
pub enum Object {
    Socket(Arc<Socket>),
    NetworkStream(Arc<NetworkStream>),
    /// A custom stream, an HTTP request or response stream: boxed, because the table keeps
    /// one word per object (`Thin`) and a `dyn` Arc is two.
    Stream(Box<Arc<dyn Stream>>),
    SslStream(Arc<SslStream>),
    Certificate(Arc<Certificate>),
    TransportContext(Arc<TransportContext>),
    HttpRequest(Arc<HttpWebRequest>),
    HttpResponse(Arc<HttpWebResponse>),
    NegotiateStream(Arc<NegotiateStream>),
    Credential(Arc<Credentials>),
    NegotiateAuthentication(Arc<AuthObject>),
}

/// The table keeps each object as its variant's number and its one-word pointer.
macro_rules! thin_variants {
    ($($n:literal => $variant:ident),* $(,)?) => {
        // SAFETY: each payload is itself `Thin` (an Arc or a Box) and goes back under its own
        // variant's number.
        unsafe impl Thin for Object {
            fn into_raw(self) -> (u8, usize) {
                match self {
                    $(Object::$variant(p) => ($n, Thin::into_raw(p).1),)*
                }
            }
            unsafe fn from_raw(tag: u8, word: usize) -> Object {
                match tag {
                    // SAFETY: the word `into_raw` made of this variant's payload.
                    $($n => Object::$variant(unsafe { Thin::from_raw(0, word) }),)*
                    _ => unreachable!("a tag that into_raw never made"),
                }
            }
        }
    };
}

thin_variants!(
    0 => Socket,
    1 => NetworkStream,
    2 => Stream,
    3 => SslStream,
    4 => Certificate,
    5 => TransportContext,
    6 => HttpRequest,
    7 => HttpResponse,
    8 => NegotiateStream,
    9 => Credential,
    10 => NegotiateAuthentication,
);

impl Object {
    /// Dispose: what closing the handle does to its object.
    fn dispose(self) -> Result<()> {
        match self {
            Object::Socket(s) => {
                s.close();
                Ok(())
            }
            Object::NetworkStream(s) => s.close(),
            Object::Stream(s) => s.close(),
            Object::SslStream(s) => s.close(),
            Object::HttpRequest(r) => {
                r.dispose();
                Ok(())
            }
            Object::HttpResponse(r) => {
                r.close();
                Ok(())
            }
            Object::NegotiateStream(s) => s.close(),
            Object::NegotiateAuthentication(a) => {
                a.dispose();
                Ok(())
            }
            Object::Certificate(_) | Object::TransportContext(_) | Object::Credential(_) => {
                Ok(())
            }
        }
    }
}

static TABLE: Table<Object> = Table::new();

/// The IAsyncResults: their own store, as they are made, polled and released on every operation
/// (see crate::async_result); their handles carry the AsyncResult kind byte like any other.
pub(crate) static RESULTS: Results<CCallback> = Results::new(Kind::AsyncResult as u8);

pub(crate) fn key_of<T>(p: *const T) -> u64 {
    p as usize as u64
}

pub(crate) fn pointer_of<T>(key: u64) -> *mut T {
    key as usize as *mut T
}

/// The kind byte of a handle value (live or not); None for garbage.
pub(crate) fn kind_of<T>(p: *const T) -> Option<Kind> {
    Kind::from_u8((key_of(p) >> 56) as u8)
}

/// One C class: the pointer type C holds, the object it names, and how to find that object.
pub(crate) trait Class {
    /// The opaque C type (`apm_socket`, ...).
    type C;
    /// The core object.
    type Target: ?Sized;
    /// The parameter name in ArgumentNull messages.
    const PARAM: &'static str;
    /// The handle type in "The handle is not a valid ... handle."
    const C_NAME: &'static str;
    fn cast(o: &Object) -> Option<Arc<Self::Target>>;
    /// Whether `o` is of this class (`cast` without taking a reference).
    fn cast_ref(o: &Object) -> bool;
    /// The kinds whose stale handles are this class's (ObjectDisposed rather than Argument).
    fn is_kind(k: Kind) -> bool;
}

pub(crate) fn wrong_kind(expected: &str) -> Error {
    Error::argument(format!("The handle is not a valid {expected} handle."))
}

/// The live object of class `K` behind `p`, or the error .NET gives for it.
pub(crate) fn lookup<K: Class>(p: *const K::C) -> Result<Arc<K::Target>> {
    lookup_named::<K>(p, K::PARAM)
}

/// `lookup`, for a parameter with a name of its own.
pub(crate) fn lookup_named<K: Class>(p: *const K::C, param: &str) -> Result<Arc<K::Target>> {
    if p.is_null() {
        return Err(Error::argument_null(param));
    }
    TABLE.with(key_of(p), |found| match found {
        Lookup::Live(o) => K::cast(o).ok_or_else(|| wrong_kind(K::C_NAME)),
        Lookup::Stale(k, _) => match Kind::from_u8(k) {
            Some(kind) if K::is_kind(kind) => Err(disposed(kind)),
            _ => Err(wrong_kind(K::C_NAME)),
        },
        Lookup::Invalid => Err(wrong_kind(K::C_NAME)),
    })
}

/// Reads something of the live object behind `p` without taking a reference (flags, counters).
pub(crate) fn peek<K: Class, R>(p: *const K::C, f: impl FnOnce(&Object) -> Option<R>) -> Result<R> {
    if p.is_null() {
        return Err(Error::argument_null(K::PARAM));
    }
    TABLE.with(key_of(p), |found| match found {
        Lookup::Live(o) => f(o).ok_or_else(|| wrong_kind(K::C_NAME)),
        Lookup::Stale(k, _) => match Kind::from_u8(k) {
            Some(kind) if K::is_kind(kind) => Err(disposed(kind)),
            _ => Err(wrong_kind(K::C_NAME)),
        },
        Lookup::Invalid => Err(wrong_kind(K::C_NAME)),
    })
}

fn disposed(kind: Kind) -> Error {
    Error::disposed(kind.class_name())
}

/// Around fork(2): the table reaches the child consistent, and the child's first call forgets
/// every inherited handle (they report ObjectDisposed; the objects are leaked, as what they were
/// doing is the parent's). See engine::fork.
fn install_fork_hooks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        crate::engine::fork::install(crate::engine::fork::Hooks {
            prepare: || {
                Box::new((TABLE.lock_for_fork(), RESULTS.lock_for_fork(), crate::custom_stream::fork::prepare()))
            },
            forget: || {
                crate::engine::fork::bury(Box::new(TABLE.forget_live()));
                RESULTS.bury_in_use();
                crate::custom_stream::fork::forget();
            },
        })
    });
}

/// A new handle of `kind` for `object`, owning `owned` (NULL for nothing): the caller of the C
/// function owns it.
pub(crate) fn register<C>(kind: Kind, object: Object, owned: *const ()) -> Result<*mut C> {
    install_fork_hooks();
    TABLE
        .insert(kind as u8, object, key_of(owned))
        .map(pointer_of)
        .ok_or_else(|| Error::new(code::OUT_OF_MEMORY, "Too many handles are open."))
}

/// Releases a handle that was never handed out, or that lived only for a callback.
pub(crate) fn unregister<C>(p: *const C) {
    TABLE.remove(key_of(p));
}

/// Dispose for every class: a live handle is released and its object disposed, then what it
/// owned; a closed (stale) handle is a no-op, as a second Dispose is in .NET. The object's own
/// failure (a close that cannot complete cleanly) is reported after everything is released.
pub(crate) fn close<K: Class>(p: *const K::C) -> Result<()> {
    match lookup::<K>(p) {
        Ok(_) => {}
        Err(e) if e.status == code::OBJECT_DISPOSED => return Ok(()),
        Err(e) => return Err(e),
    }
    // Only the thread whose take succeeds disposes: two racing closes dispose once.
    match TABLE.take_if(key_of(p), |o| K::cast_ref(o), 0) {
        Taken::Object(object, owned) => {
            let result = object.dispose();
            release(owned);
            result
        }
        _ => Ok(()),
    }
}

/// Releases an owned handle (and what it owns in turn).
fn release(mut key: u64) {
    while key != 0 {
        match TABLE.remove(key) {
            Some((object, owned)) => {
                let _ = object.dispose();
                key = owned;
            }
            None => return,
        }
    }
}

/// Cancels the pending operation `tag` (its result's key) through the object `owner` whose Begin
/// started it; false when that object cannot (or has nothing of it left to cancel).
pub(crate) fn cancel(owner: u64, tag: usize) -> bool {
    match TABLE.get(owner) {
        Lookup::Live(Object::Socket(s)) => s.cancel(tag),
        Lookup::Live(Object::NetworkStream(s)) => s.cancel(tag),
        Lookup::Live(Object::Stream(s)) => s.cancel(tag),
        Lookup::Live(Object::SslStream(s)) => s.cancel(tag),
        // HttpWebRequest's one way to stop what it is doing.
        Lookup::Live(Object::HttpRequest(r)) => {
            r.abort();
            true
        }
        Lookup::Live(Object::NegotiateStream(s)) => s.cancel(tag),
        _ => false,
    }
}

/// Creates the result of a Begin on the object `owner` and hands it out; `start` runs the
/// operation with its completion. When `start` fails nothing was started: the result is released
/// and no callback runs.
pub(crate) fn begin_on<C>(
    owner: *const C,
    op: OpKind,
    callback: super::apm_async_callback,
    state: *mut std::ffi::c_void,
    out: *mut *mut apm_async_result,
    start: impl FnOnce(crate::op::Completion, *mut apm_async_result) -> Result<()>,
) -> Result<()> {
    super::need_out(out, "result")?;
    install_fork_hooks();
    let words = CCallback::words(callback, state);
    let key = RESULTS.begin(key_of(owner), op, words, |done, key| start(done, pointer_of(key)))?;
    super::write_out(out, "result", pointer_of::<apm_async_result>(key))
}

/// The End of `op` on the object `owner` of class `K`: the seed's checks in order (the object,
/// NULL, a result of another object or Begin, a second End), then wait, release and report the
/// outcome. After the object was closed the result is still released and End reports
/// ObjectDisposed.
pub(crate) fn end_on<K: Class>(owner: *const K::C, result: *const apm_async_result, op: OpKind) -> Outcome {
    // Only the owner's liveness matters here: looked at in place, no reference taken.
    let owner_error = match peek::<K, ()>(owner, |o| K::cast_ref(o).then_some(())) {
        Ok(()) => None,
        Err(e) if e.status == code::OBJECT_DISPOSED => Some(e),
        Err(e) => return Err(e),
    };
    let owner = key_of(owner);
    if result.is_null() {
        return Err(owner_error.unwrap_or_else(|| Error::argument_null("asyncResult")));
    }
    let r = match RESULTS.end(key_of(result), |o, k| o == owner && k == op) {
        Ended::Taken(r) => r,
        // A second End of this object's operation (or one whose maker is no longer known), or
        // another thread's End got there first.
        Ended::Gone(Gone::Stale(made_by)) if made_by.map_or(true, |m| m == (owner, op)) => {
            return Err(owner_error.unwrap_or_else(|| Error::end_called_twice(op.end_name())))
        }
        _ => return Err(owner_error.unwrap_or_else(|| Error::argument(msg::INVALID_ASYNC_RESULT))),
    };
    let outcome = r.take_outcome();
    match owner_error {
        Some(e) => {
            // Nobody will receive what the operation handed out: an accepted socket is closed
            // (other objects release what they hold when dropped).
            if let Ok(Value::Object(o)) = outcome {
                if let Ok(socket) = o.downcast::<Socket>() {
                    socket.close();
                }
            }
            Err(e)
        }
        None => outcome,
    }
}

// ---------------------------------------------------------------------------------------------
// The classes

/// A class whose handles name one kind of object, held in one `Object` variant.
macro_rules! single_kind_class {
    ($class:ident, $c:ty, $target:ty, $param:literal, $c_name:literal, $variant:ident) => {
        pub(crate) struct $class;
        impl Class for $class {
            type C = $c;
            type Target = $target;
            const PARAM: &'static str = $param;
            const C_NAME: &'static str = $c_name;
            fn cast(o: &Object) -> Option<Arc<$target>> {
                match o {
                    Object::$variant(x) => Some(x.clone()),
                    _ => None,
                }
            }
            fn cast_ref(o: &Object) -> bool {
                matches!(o, Object::$variant(_))
            }
            fn is_kind(k: Kind) -> bool {
                k == Kind::$variant
            }
        }
    };
}

single_kind_class!(SocketClass, apm_socket, Socket, "socket", "apm_socket", Socket);
single_kind_class!(
    CertificateClass,
    super::certificate::apm_certificate,
    Certificate,
    "certificate",
    "apm_certificate",
    Certificate
);
single_kind_class!(
    TransportContextClass,
    super::ssl_stream::apm_transport_context,
    TransportContext,
    "context",
    "apm_transport_context",
    TransportContext
);
single_kind_class!(
    HttpRequestClass,
    super::http_request::apm_http_request,
    HttpWebRequest,
    "request",
    "apm_http_request",
    HttpRequest
);
single_kind_class!(
    HttpResponseClass,
    super::http_response::apm_http_response,
    HttpWebResponse,
    "response",
    "apm_http_response",
    HttpResponse
);
single_kind_class!(
    CredentialClass,
    super::credential::apm_credential,
    Credentials,
    "credential",
    "apm_credential",
    Credential
);
single_kind_class!(
    NegotiateAuthenticationClass,
    super::negotiate_authentication::apm_negotiate_authentication,
    AuthObject,
    "authentication",
    "apm_negotiate_authentication",
    NegotiateAuthentication
);

/// Any stream: every `apm_stream_*` function.
pub(crate) struct StreamClass;
impl Class for StreamClass {
    type C = apm_stream;
    type Target = dyn Stream;
    const PARAM: &'static str = "stream";
    const C_NAME: &'static str = "apm_stream";
    fn cast(o: &Object) -> Option<Arc<dyn Stream>> {
        match o {
            Object::NetworkStream(s) => Some(s.clone()),
            Object::Stream(s) => Some((**s).clone()),
            Object::SslStream(s) => Some(s.clone()),
            Object::NegotiateStream(s) => Some(s.clone()),
            _ => None,
        }
    }
    fn cast_ref(o: &Object) -> bool {
        matches!(o, Object::NetworkStream(_) | Object::Stream(_) | Object::SslStream(_) | Object::NegotiateStream(_))
    }
    fn is_kind(k: Kind) -> bool {
        k.is_stream()
    }
}

/// A class of streams of one kind (its own functions), whose stale handles are any stream's.
macro_rules! stream_kind_class {
    ($(#[$doc:meta])* $class:ident, $target:ty, $c_name:literal, $variant:ident) => {
        $(#[$doc])*
        pub(crate) struct $class;
        impl Class for $class {
            type C = apm_stream;
            type Target = $target;
            const PARAM: &'static str = "stream";
            const C_NAME: &'static str = $c_name;
            fn cast(o: &Object) -> Option<Arc<$target>> {
                match o {
                    Object::$variant(s) => Some(s.clone()),
                    _ => None,
                }
            }
            fn cast_ref(o: &Object) -> bool {
                matches!(o, Object::$variant(_))
            }
            fn is_kind(k: Kind) -> bool {
                k.is_stream()
            }
        }
    };
}

stream_kind_class!(
    /// A stream that must be an SslStream (the `apm_ssl_stream_*` functions).
    SslStreamClass,
    SslStream,
    "SslStream",
    SslStream
);
stream_kind_class!(
    /// A stream that must be a NegotiateStream (the `apm_negotiate_stream_*` functions).
    NegotiateStreamClass,
    NegotiateStream,
    "NegotiateStream",
    NegotiateStream
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_or_garbage_passed_as_a_socket_is_an_argument_error() {
        let key = RESULTS.begin(1, OpKind::Write, [0, 0], |done, _| {
            done.complete(Ok(Value::Unit));
            Ok(())
        }).unwrap();
        let p = pointer_of::<apm_socket>(key);
        assert_eq!(lookup::<SocketClass>(p).err().map(|e| e.status), Some(code::ARGUMENT));
        assert!(matches!(RESULTS.end(key, |_, _| true), Ended::Taken(_)));
        assert_eq!(lookup::<SocketClass>(p).err().map(|e| e.status), Some(code::ARGUMENT));
        let garbage = 0xdead_beef_usize as *const apm_socket;
        assert_eq!(lookup::<SocketClass>(garbage).err().map(|e| e.status), Some(code::ARGUMENT));
    }

    #[test]
    fn every_kind_round_trips_through_its_byte() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_u8(k as u8), Some(k));
        }
        assert_eq!(Kind::from_u8(0), None);
    }
}
