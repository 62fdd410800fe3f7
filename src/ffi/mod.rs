//! The C surface: argument checks, handle lookup, the panic boundary and error recording.
//! No I/O logic lives here; every function hands over to the core after checking its input.

#![allow(non_camel_case_types)]

pub mod async_result;
pub mod certificate;
pub mod custom_stream;
pub mod network_stream;
pub mod runtime;
pub mod socket;
pub mod ssl_stream;
pub mod status;

use crate::async_result::{AsyncResult, Completion, OpKind, Outcome};
use crate::error::{msg, Error, Result};
use crate::handle::{self, Handle, Kind, Lookup, Object};
use crate::net::socket::Socket;
use crate::stream::{ConstBuf, MutBuf, Stream};
use std::ffi::{c_char, c_void, CStr};
use std::sync::Arc;

pub use status::apm_status;

/// A socket (System.Net.Sockets.Socket). Opaque; the caller owns every socket it is handed and
/// releases it with `apm_socket_close` (or hands it to a NetworkStream that owns it). Usable from
/// several threads at once. Every function checks the handle: NULL gives APM_E_ARGUMENT_NULL, a
/// closed socket APM_E_OBJECT_DISPOSED, anything that is not a socket handle APM_E_ARGUMENT.
pub struct apm_socket {
    _private: [u8; 0],
}

/// A stream: a NetworkStream, an SslStream or a stream the caller defines. Opaque; the caller
/// owns every stream it is handed and releases it with `apm_stream_close` (or hands it to an
/// SslStream that owns it). Usable from several threads at once. Every function checks the
/// handle: NULL gives APM_E_ARGUMENT_NULL, a closed stream APM_E_OBJECT_DISPOSED, anything that
/// is not a stream handle (of the kind the function needs) APM_E_ARGUMENT.
pub struct apm_stream {
    _private: [u8; 0],
}

/// One asynchronous operation (IAsyncResult). Opaque; handed out by a Begin function and
/// released by the matching End function, which the caller calls exactly once for every Begin
/// that returned APM_OK (also after closing the object). Usable from any thread until End.
///
/// The Begin rules, shared by every Begin function: APM_E_ARGUMENT_NULL when `result` is NULL,
/// APM_E_OUT_OF_MEMORY when no handle is left. A Begin that fails started nothing, wrote no
/// result and runs no callback.
///
/// The End rules, shared by every End function: APM_E_ARGUMENT_NULL (`result` NULL),
/// APM_E_ARGUMENT (not a result of this object's matching Begin), APM_E_INVALID_OPERATION (an
/// already ended result: "EndXxx can only be called once for each asynchronous operation."); once
/// the object is closed, APM_E_OBJECT_DISPOSED instead. End blocks until the operation completes
/// (not from its own callback: it has completed), then releases the result, whatever the
/// operation's outcome. A result End refuses, or an End that fails on its own arguments (a NULL
/// out-parameter, a NULL or wrong object handle), is left as it was.
pub struct apm_async_result {
    _private: [u8; 0],
}

/// AsyncCallback: called exactly once when the operation completes, with the result Begin
/// returned and the state given to Begin. It runs on the thread that called Begin, before Begin
/// returns, when the operation completed inside Begin (`apm_async_result_completed_synchronously`
/// reports 1), and otherwise on the thread that completed it: an engine thread, or a thread that
/// closed the object or called `apm_custom_stream_complete`. It may call any apmnet function, End
/// and the next Begin included; it must not block for long, and must not unwind (no C++
/// exception or longjmp may leave it).
pub type apm_async_callback = Option<unsafe extern "C" fn(result: *mut apm_async_result, state: *mut c_void)>;

/// Runs the body of an exported function: a Rust panic never crosses into C, and an error is
/// recorded as the thread's last error and returned as its status.
macro_rules! boundary {
    ($body:block) => {{
        let run = || -> $crate::error::Result<()> { $body };
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(run)) {
            Ok(Ok(())) => $crate::error::code::OK,
            Ok(Err(e)) => $crate::error::record(e),
            Err(_) => $crate::error::record($crate::error::Error::internal(
                "An internal error occurred in apmnet (a panic was caught).",
            )),
        }
    }};
}
pub(crate) use boundary;

fn handle_of<T>(p: *const T) -> Handle {
    Handle(p as usize as u64)
}

fn pointer_of<T>(h: Handle) -> *mut T {
    h.0 as usize as *mut T
}

/// Writes an out-parameter, refusing NULL.
pub(crate) fn write_out<T>(out: *mut T, name: &str, value: T) -> Result<()> {
    if out.is_null() {
        return Err(Error::argument_null(name));
    }
    // SAFETY: the caller passes a valid pointer for the out-parameter (checked non-NULL).
    unsafe { out.write(value) };
    Ok(())
}

/// Checks an out-parameter before work starts, so nothing happens when it is NULL.
pub(crate) fn need_out<T>(out: *mut T, name: &str) -> Result<()> {
    if out.is_null() {
        Err(Error::argument_null(name))
    } else {
        Ok(())
    }
}

fn wrong_kind(expected: &str) -> Error {
    Error::argument(format!("The handle is not a valid {expected} handle."))
}

pub(crate) fn socket_of(p: *const apm_socket) -> Result<Arc<Socket>> {
    if p.is_null() {
        return Err(Error::argument_null("socket"));
    }
    match handle::get(handle_of(p)) {
        Lookup::Live(Object::Socket(s)) => Ok(s),
        Lookup::Stale(Kind::Socket) => Err(Error::disposed(Kind::Socket.class_name())),
        _ => Err(wrong_kind("apm_socket")),
    }
}

fn is_stream_kind(kind: Kind) -> bool {
    matches!(kind, Kind::NetworkStream | Kind::SslStream | Kind::CustomStream)
}

pub(crate) fn stream_of(p: *const apm_stream) -> Result<Arc<dyn Stream>> {
    if p.is_null() {
        return Err(Error::argument_null("stream"));
    }
    match handle::get(handle_of(p)) {
        Lookup::Live(Object::Stream(s)) => Ok(s),
        Lookup::Stale(kind) if is_stream_kind(kind) => Err(Error::disposed(kind.class_name())),
        _ => Err(wrong_kind("apm_stream")),
    }
}

/// Dispose for every handle kind: a live handle is released and `dispose` runs on its object; a
/// closed (stale) handle is a no-op, as a second Dispose is in .NET.
pub(crate) fn close_handle<P, T>(
    p: *const P,
    lookup: impl FnOnce(*const P) -> Result<T>,
    dispose: impl FnOnce(Handle, T),
) -> Result<()> {
    match lookup(p) {
        Ok(object) => {
            let h = handle_of(p);
            handle::remove(h);
            dispose(h, object);
            Ok(())
        }
        Err(e) if e.status == crate::error::code::OBJECT_DISPOSED => Ok(()),
        Err(e) => Err(e),
    }
}

/// A NUL-terminated UTF-8 string argument.
pub(crate) fn str_arg<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::argument_null(name));
    }
    // SAFETY: the caller passes a NUL-terminated string that outlives the call.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Error::argument(format!("The string '{name}' is not valid UTF-8.")))
}

/// Copies `text` NUL-terminated into `buffer` (truncated) and writes its full length.
pub(crate) fn copy_text(text: &str, buffer: *mut c_char, buffer_len: usize, text_len: *mut usize) -> Result<()> {
    if buffer.is_null() && buffer_len > 0 {
        return Err(Error::argument_null("buffer"));
    }
    if buffer_len > 0 {
        let n = text.len().min(buffer_len - 1);
        // SAFETY: the caller's buffer holds buffer_len bytes; we write n + 1 <= buffer_len.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buffer as *mut u8, n);
            *buffer.add(n) = 0;
        }
    }
    if !text_len.is_null() {
        // SAFETY: optional out-parameter, checked non-NULL.
        unsafe { *text_len = text.len() };
    }
    Ok(())
}

/// The .NET (buffer, offset, count) checks, in .NET's order.
fn check_range(is_null: bool, len: usize, offset: usize, count: usize) -> Result<()> {
    if is_null {
        return Err(Error::argument_null("buffer"));
    }
    if offset > len {
        return Err(Error::out_of_range("offset"));
    }
    if count > len - offset {
        return Err(Error::out_of_range("count"));
    }
    Ok(())
}

pub(crate) fn const_buf(p: *const u8, len: usize, offset: usize, count: usize) -> Result<ConstBuf> {
    check_range(p.is_null(), len, offset, count)?;
    // SAFETY: offset <= len, within the caller's buffer.
    Ok(ConstBuf { ptr: unsafe { p.add(offset) }, len: count })
}

pub(crate) fn mut_buf(p: *mut u8, len: usize, offset: usize, count: usize) -> Result<MutBuf> {
    check_range(p.is_null(), len, offset, count)?;
    // SAFETY: offset <= len, within the caller's buffer.
    Ok(MutBuf { ptr: unsafe { p.add(offset) }, len: count })
}

/// An optional buffer (send file's pre/post): NULL or empty means none.
pub(crate) fn optional_buf(p: *const u8, len: usize) -> ConstBuf {
    if p.is_null() {
        ConstBuf::EMPTY
    } else {
        ConstBuf { ptr: p, len }
    }
}

/// The Begin half of every operation: creates the result, lets `start` run with its
/// completion, and hands the result out. When `start` fails nothing was started, the result is
/// released and no callback runs.
pub(crate) fn begin(
    owner: Handle,
    op: OpKind,
    callback: apm_async_callback,
    state: *mut c_void,
    out: *mut *mut apm_async_result,
    start: impl FnOnce(Completion) -> Result<()>,
) -> Result<()> {
    need_out(out, "result")?;
    let state = state as usize;
    let result = AsyncResult::new(owner, op, state, callback);
    let h = handle::insert(Kind::AsyncResult, Object::AsyncResult(result.clone()))
        .ok_or_else(|| Error::new(crate::error::code::OUT_OF_MEMORY, "Too many handles are open."))?;
    result.set_handle(h);
    match result.begin(start) {
        Ok(()) => write_out(out, "result", pointer_of(h)),
        Err(e) => {
            handle::remove(h);
            Err(e)
        }
    }
}

/// The End half: the seed's checks in order, then wait, release and report the outcome.
/// `owner_error` is the owner's disposal (End after close): the result is still released.
pub(crate) fn end(owner: Handle, owner_error: Option<Error>, result: *const apm_async_result, op: OpKind) -> Outcome {
    if result.is_null() {
        return Err(owner_error.unwrap_or_else(|| Error::argument_null("asyncResult")));
    }
    let h = handle_of(result);
    let r = match handle::take_if(h, |o| matches!(o, Object::AsyncResult(r) if r.owner == owner && r.op == op)) {
        handle::Taken::Object(Object::AsyncResult(r)) => r,
        // A second End, or another thread's End got there first.
        handle::Taken::Stale(Kind::AsyncResult) => {
            return Err(owner_error.unwrap_or_else(|| Error::end_called_twice(op.end_name())))
        }
        _ => return Err(owner_error.unwrap_or_else(|| Error::argument(msg::INVALID_ASYNC_RESULT))),
    };
    let outcome = r.take_outcome();
    match owner_error {
        Some(e) => Err(e),
        None => outcome,
    }
}

/// The owner half of an End: the live owner, or the disposal error of a closed one.
pub(crate) fn owner_for_end<T>(
    p: *const T,
    lookup: impl FnOnce(*const T) -> Result<()>,
) -> (Handle, Option<Error>, Result<()>) {
    let h = handle_of(p);
    match lookup(p) {
        Ok(()) => (h, None, Ok(())),
        Err(e) if e.status == crate::error::code::OBJECT_DISPOSED => (h, Some(e), Ok(())),
        Err(e) => (h, None, Err(e)),
    }
}

pub(crate) fn c_void_handle<T>(p: *const T) -> Handle {
    handle_of(p)
}

pub(crate) fn to_pointer<T>(h: Handle) -> *mut T {
    pointer_of(h)
}
