//! The C surface: argument checks, handle lookup, the panic boundary and error recording.
//! No I/O logic lives here; every function hands over to the core after checking its input.

#![allow(non_camel_case_types)]
// The exports are `unsafe extern "C"`: their safety contract is the C one, written once in the
// header on the types they share (handles are checked, never trusted; buffers are valid for
// their stated lengths until the operation completes; strings are NUL-terminated; callbacks do
// not unwind) rather than in a `# Safety` section on each of a hundred functions.
#![allow(clippy::missing_safety_doc)]

pub mod async_result;
mod callback;
pub mod certificate;
pub mod credential;
pub mod custom_stream;
mod handles;
pub mod http_request;
pub mod http_response;
pub mod negotiate_authentication;
pub mod negotiate_stream;
pub mod network_stream;
pub mod runtime;
pub mod socket;
pub mod ssl_stream;
pub mod status;
pub mod stream;
pub mod transport_context;

use crate::async_result::OpKind;
use crate::error::{Error, Result};
use crate::stream::{ConstBuf, MutBuf, Stream};
use crate::op::{Completion, Value};
use handles::{
    begin_on, close, end_on, lookup, peek, register, Class, Kind, Object, SocketClass, SslStreamClass, StreamClass,
};
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

/// A stream: a NetworkStream, an SslStream, a NegotiateStream or a stream the caller defines.
/// Opaque; the caller owns every stream it is handed and releases it with `apm_stream_close` (or
/// hands it to an SslStream or NegotiateStream that owns it). Usable from several threads at once. Every function checks the
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
        // A forked child's first call abandons what it inherited (engine::fork).
        $crate::engine::fork::after_fork();
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

// The house rule for output buffers, one for every export that fills a caller's buffer:
// - text is copied NUL-terminated and truncated to `buffer_len - 1` bytes (`copy_text`);
// - bytes (DER, ALPN, channel bindings, tokens) are copied up to `buffer_len` bytes, with no NUL,
//   since a byte string may hold one (`copy_bytes`);
// - both write the full length (without the NUL) to an optional length out-parameter, so a
//   caller can size a second call, and accept a NULL buffer with a zero length (a size query).
// A short buffer is never an error: the caller sees from the length what it missed.

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
    write_len(text_len, text.len());
    Ok(())
}

/// Copies up to `buffer_len` bytes of `data` into `buffer` and writes the full length.
pub(crate) fn copy_bytes(data: &[u8], buffer: *mut u8, buffer_len: usize, data_len: *mut usize) -> Result<()> {
    if buffer.is_null() && buffer_len > 0 {
        return Err(Error::argument_null("buffer"));
    }
    let n = data.len().min(buffer_len);
    if n > 0 {
        // SAFETY: the caller's buffer holds buffer_len >= n bytes.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buffer, n) };
    }
    write_len(data_len, data.len());
    Ok(())
}

/// The optional length out-parameter of a copy.
fn write_len(out: *mut usize, len: usize) {
    if !out.is_null() {
        // SAFETY: optional out-parameter, checked non-NULL.
        unsafe { *out = len };
    }
}

/// The .NET (buffer, offset, count) checks, in .NET's order; `count_name` is the parameter name
/// the .NET method gives the count (`size` for Socket and NetworkStream, `count` for Stream).
fn check_range(is_null: bool, len: usize, offset: usize, count: usize, count_name: &str) -> Result<()> {
    if is_null {
        return Err(Error::argument_null("buffer"));
    }
    if offset > len {
        return Err(Error::out_of_range("offset"));
    }
    if count > len - offset {
        return Err(Error::out_of_range(count_name));
    }
    Ok(())
}

pub(crate) fn const_buf(p: *const u8, len: usize, offset: usize, count: usize, count_name: &str) -> Result<ConstBuf> {
    check_range(p.is_null(), len, offset, count, count_name)?;
    // SAFETY: offset <= len, within the caller's buffer.
    Ok(ConstBuf { ptr: unsafe { p.add(offset) }, len: count })
}

pub(crate) fn mut_buf(p: *mut u8, len: usize, offset: usize, count: usize, count_name: &str) -> Result<MutBuf> {
    check_range(p.is_null(), len, offset, count, count_name)?;
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

// The order of checks these helpers give an export: the object first (`this`, which .NET checks
// before any argument; for a constructor, the object it wraps), then the arguments in .NET's
// order, then the out-parameters, all before any work starts. For (NULL object, NULL out) an
// export thus names the object, whichever of its neighbours it is.

/// A getter: the object, then the out-parameter, then the value `get` reads.
pub(crate) fn get<K: Class, T>(
    object: *const K::C,
    out: *mut T,
    name: &str,
    get: impl FnOnce(&K::Target) -> Result<T>,
) -> Result<()> {
    let o = lookup::<K>(object)?;
    need_out(out, name)?;
    let v = get(&o)?;
    write_out(out, name, v)
}

/// A Begin: the object, then its arguments (`args`, which may check the object's state), then
/// the Begin rules; `start` runs the operation with its completion.
pub(crate) fn begin_with<K: Class, A>(
    object: *mut K::C,
    op: OpKind,
    args: impl FnOnce(&K::Target) -> Result<A>,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
    start: impl FnOnce(&Arc<K::Target>, A, Completion) -> Result<()>,
) -> Result<()> {
    let o = lookup::<K>(object)?;
    let a = args(&o)?;
    begin_on(object, op, callback, state, result, |done, _| start(&o, a, done))
}

/// An End with an out-parameter: the object is checked first, as in every other export, but a
/// closed one passes (End still releases its result and reports ObjectDisposed); then the
/// out-parameter, before End releases anything; then End, and `out` gets what `value` makes of
/// the outcome.
pub(crate) fn end_with<K: Class, T>(
    object: *const K::C,
    result: *const apm_async_result,
    op: OpKind,
    out: *mut T,
    name: &str,
    value: impl FnOnce(Value) -> Result<T>,
) -> Result<()> {
    end_checks::<K, T>(object, out, name)?;
    let v = value(end_on::<K>(object, result, op)?)?;
    write_out(out, name, v)
}

/// The checks of an End with an out-parameter before End itself: the object (a closed one
/// passes), then the out-parameter.
pub(crate) fn end_checks<K: Class, T>(object: *const K::C, out: *mut T, name: &str) -> Result<()> {
    match peek::<K, ()>(object, |o| K::cast_ref(o).then_some(())) {
        Err(e) if e.status != crate::error::code::OBJECT_DISPOSED => return Err(e),
        _ => {}
    }
    need_out(out, name)
}
