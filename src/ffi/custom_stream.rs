//! Streams defined by the caller: a table of C functions becomes an apm_stream that every stream
//! function accepts, and that an SslStream can sit on.

use super::*;
use crate::custom_stream::{self, CustomOps, CustomStream};

/// How the caller's stream reports that an operation ended: `apm_custom_stream_complete`.
pub type apm_custom_complete_fn =
    Option<unsafe extern "C" fn(token: u64, status: apm_status, bytes: usize) -> apm_status>;

/// The functions of a stream defined by the caller. `ctx` is the pointer given to
/// `apm_stream_create_custom`.
///
/// * `begin_read(ctx, buffer, count, complete, token)`: start reading up to `count` (> 0) bytes
///   into `buffer`; when done, call `complete(token, APM_OK, bytes_read)` (0 = end of stream, at
///   most `count`) or `complete(token, status, 0)` with a negative APM_E_* status. The buffer
///   stays valid until then.
/// * `begin_write(ctx, buffer, count, complete, token)`: start writing `count` (> 0) bytes; when
///   done, `complete(token, APM_OK, bytes_written)`. Fewer than `count` bytes is fine: the rest
///   is asked for with another `begin_write`; more than `count` is not.
/// * `close(ctx)` (may be NULL): called once when the stream is closed. Operations still pending
///   must still be completed (any status); their results then report APM_E_OBJECT_DISPOSED.
///
/// `complete` may be called from any thread, also from inside `begin_read`/`begin_write`, and
/// exactly once per token. A `begin_*` that returns a status other than APM_OK started nothing
/// and must not complete its token. At most one read and one write are pending at a time when the
/// stream is used by an SslStream. `begin_read` and `begin_write` are required.
#[repr(C)]
pub struct apm_stream_vtable {
    pub begin_read: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            buffer: *mut u8,
            count: usize,
            complete: apm_custom_complete_fn,
            token: u64,
        ) -> apm_status,
    >,
    pub begin_write: Option<
        unsafe extern "C" fn(
            ctx: *mut c_void,
            buffer: *const u8,
            count: usize,
            complete: apm_custom_complete_fn,
            token: u64,
        ) -> apm_status,
    >,
    pub close: Option<unsafe extern "C" fn(ctx: *mut c_void)>,
}

struct CVtable {
    begin_read: unsafe extern "C" fn(*mut c_void, *mut u8, usize, apm_custom_complete_fn, u64) -> apm_status,
    begin_write: unsafe extern "C" fn(*mut c_void, *const u8, usize, apm_custom_complete_fn, u64) -> apm_status,
    close: Option<unsafe extern "C" fn(*mut c_void)>,
    ctx: usize,
}

fn begin_failed(status: apm_status, what: &str) -> Error {
    let status =
        if status < 0 && crate::error::code::name(status) != "APM_UNKNOWN" { status } else { crate::error::code::IO };
    Error::new(status, format!("The custom stream's {what} function failed ({}).", crate::error::code::name(status)))
}

impl CustomOps for CVtable {
    fn begin_read(&self, buf: MutBuf, token: u64) -> Result<()> {
        // SAFETY: the caller's function with its own context and a buffer valid until completion.
        let st = unsafe {
            (self.begin_read)(self.ctx as *mut c_void, buf.ptr, buf.len, Some(apm_custom_stream_complete), token)
        };
        if st == crate::error::code::OK {
            Ok(())
        } else {
            Err(begin_failed(st, "begin_read"))
        }
    }

    fn begin_write(&self, buf: ConstBuf, token: u64) -> Result<()> {
        // SAFETY: as begin_read.
        let st = unsafe {
            (self.begin_write)(self.ctx as *mut c_void, buf.ptr, buf.len, Some(apm_custom_stream_complete), token)
        };
        if st == crate::error::code::OK {
            Ok(())
        } else {
            Err(begin_failed(st, "begin_write"))
        }
    }

    fn close(&self) {
        if let Some(f) = self.close {
            // SAFETY: the caller's close function with its own context, called once.
            unsafe { f(self.ctx as *mut c_void) };
        }
    }
}

/// Creates a stream whose reads and writes are done by `vtable`'s functions with `ctx` (a
/// System.IO.Stream subclass in C; see `apm_stream_vtable`). The table is copied; `ctx` stays the
/// caller's and must stay valid until `close` was called and every pending operation completed. The
/// functions are called on whatever thread starts an operation: the Begin or blocking caller, or
/// the thread that completed the step before (an SslStream on top, the rest of a partial write).
/// The stream can read and write, and works with every `apm_stream_*` function and as the inner
/// stream of an SslStream. The caller owns `*stream` (`apm_stream_close`).
/// Errors: APM_E_ARGUMENT_NULL (vtable, stream, or a required function missing),
/// APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_stream_create_custom(
    vtable: *const apm_stream_vtable,
    ctx: *mut c_void,
    stream: *mut *mut apm_stream,
) -> apm_status {
    boundary!({
        need_out(stream, "stream")?;
        if vtable.is_null() {
            return Err(Error::argument_null("vtable"));
        }
        // SAFETY: checked non-NULL; the caller passes a valid table.
        let v = unsafe { &*vtable };
        let ops = CVtable {
            begin_read: v.begin_read.ok_or_else(|| Error::argument_null("vtable->begin_read"))?,
            begin_write: v.begin_write.ok_or_else(|| Error::argument_null("vtable->begin_write"))?,
            close: v.close,
            ctx: ctx as usize,
        };
        let s: Arc<dyn Stream> = CustomStream::new(Box::new(ops));
        let p: *mut apm_stream = register(Kind::CustomStream, Object::Stream(Box::new(s)), std::ptr::null())?;
        write_out(stream, "stream", p)
    })
}

/// Reports the end of a custom stream's operation: `status` APM_OK with the bytes read (0 = end of
/// stream) or written, or a negative APM_E_* status (the operation then fails with it; an unknown
/// value is reported as APM_E_IO). A count beyond what the operation asked for fails it with
/// APM_E_IO ("The custom stream reported more bytes read than it was asked for.", or "... more
/// bytes written than it was given."; the count never reaches End), as does 0 bytes written.
/// Callable from any thread, once per token; the operation's callback (or the next part of a
/// partial write) may run inside this call.
/// Errors: APM_E_ARGUMENT (a token that is not pending: unknown or already completed).
#[no_mangle]
pub unsafe extern "C" fn apm_custom_stream_complete(token: u64, status: apm_status, bytes: usize) -> apm_status {
    boundary!({ custom_stream::complete(token, status, bytes) })
}
