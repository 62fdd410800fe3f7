//! The Stream functions every stream shares (System.IO.Stream), as C sees them: Begin/End and
//! blocking reads and writes, CanRead/CanWrite and Close, for a NetworkStream, an SslStream, a
//! NegotiateStream, an HTTP request or response stream or a stream defined in C.

use super::handles::lookup_named;
use super::*;
use crate::layered::Mode;

/// The stream, or None when it was closed (for the properties that report false after Dispose).
fn open_stream(stream: *const apm_stream) -> Result<Option<Arc<dyn Stream>>> {
    match lookup::<StreamClass>(stream) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.status == crate::error::code::OBJECT_DISPOSED => Ok(None),
        Err(e) => Err(e),
    }
}

/// The name .NET Framework 4 gives a transfer's count: `size` in NetworkStream's methods,
/// `count` in Stream's (SslStream, a stream defined in C).
fn count_name(stream: *const apm_stream) -> &'static str {
    if handles::kind_of(stream) == Some(Kind::NetworkStream) {
        "size"
    } else {
        "count"
    }
}

/// The constructor of a stream over a stream (SslStream, NegotiateStream): the inner stream, then
/// the out-parameter, then `new` makes the object; with `leave_inner_stream_open` 0 the new handle
/// owns the inner one (the table releases it with its owner).
pub(crate) fn create_layered(
    inner: *mut apm_stream,
    leave_inner_stream_open: i32,
    out: *mut *mut apm_stream,
    new: impl FnOnce(Arc<dyn Stream>, bool) -> Result<(Kind, Object)>,
) -> Result<()> {
    let inner_stream = lookup_named::<StreamClass>(inner, "innerStream")?;
    need_out(out, "stream")?;
    let (kind, object) = new(inner_stream, leave_inner_stream_open != 0)?;
    let owned = if leave_inner_stream_open == 0 { inner as *const () } else { std::ptr::null() };
    let p: *mut apm_stream = register(kind, object, owned)?;
    write_out(out, "stream", p)
}

/// A core Begin of an authentication: the object, its options, the completion and the mode.
type AuthenticateBegin<T, O> = fn(&Arc<T>, O, Completion, Mode) -> Result<()>;

/// BeginAuthenticateAsClient and AsServer of a stream over a stream (SslStream, NegotiateStream):
/// the stream, then the options `opts` builds, then the Begin rules; `start` is the core's Begin.
pub(crate) fn begin_authenticate<K: Class<C = apm_stream>, O>(
    stream: *mut apm_stream,
    op: OpKind,
    opts: impl FnOnce() -> Result<O>,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
    start: AuthenticateBegin<K::Target, O>,
) -> Result<()> {
    begin_with::<K, _>(stream, op, |_| opts(), callback, state, result, |s, opts, done| {
        start(s, opts, done, Mode::Async)
    })
}

/// The stream for a transfer: the stream, its state for `writing` (or reading), then the buffer
/// `buf` builds, given the name .NET gives the count.
fn open_for<B>(
    stream: &dyn Stream,
    handle: *const apm_stream,
    writing: bool,
    buf: impl FnOnce(&str) -> Result<B>,
) -> Result<B> {
    stream.check(writing)?;
    buf(count_name(handle))
}

/// BeginWrite: writes all `count` bytes at `buffer + offset`; the buffer stays the caller's and
/// must stay valid (and unchanged) until the operation completes. A NetworkStream queues further
/// writes behind a pending one; an SslStream refuses a second one. Transfer failures come from
/// `apm_stream_end_write`.
/// Errors: from Begin, in this order: APM_E_ARGUMENT_NULL (stream), APM_E_ARGUMENT (not a stream
/// handle), APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (a read-only stream; an SslStream not
/// authenticated), an SslStream's stored authentication failure, APM_E_ARGUMENT_NULL (buffer),
/// APM_E_ARGUMENT_OUT_OF_RANGE (offset > buffer_len; count > buffer_len - offset: parameter
/// 'size' on a NetworkStream, 'count' on other streams, as .NET names them), the Begin rules
/// (see apm_async_result), then APM_E_INVALID_OPERATION (an SslStream shut down),
/// APM_E_NOT_SUPPORTED (an SslStream with a write pending), APM_E_IO (the socket under a
/// NetworkStream was closed), or the status a custom stream's begin_write returned.
#[no_mangle]
pub unsafe extern "C" fn apm_stream_begin_write(
    stream: *mut apm_stream,
    buffer: *const u8,
    buffer_len: usize,
    offset: usize,
    count: usize,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({
        let buf = |s: &(dyn Stream + 'static)| {
            open_for(s, stream, true, |n| const_buf(buffer, buffer_len, offset, count, n))
        };
        begin_with::<StreamClass, _>(stream, OpKind::Write, buf, callback, state, result, |s, buf, done| {
            s.begin_write(buf, done)
        })
    })
}

/// EndWrite: waits, releases `result`, reports the write's outcome.
/// Errors: APM_E_ARGUMENT_NULL (stream), APM_E_ARGUMENT (not a stream handle), the End rules (see
/// apm_async_result: APM_E_ARGUMENT_NULL; APM_E_ARGUMENT for a result of another stream or another
/// Begin; APM_E_INVALID_OPERATION "EndWrite can only be called once..."; APM_E_OBJECT_DISPOSED once
/// the stream is closed), then the write's outcome: APM_E_OBJECT_DISPOSED (closed while pending),
/// APM_E_IO ("Unable to write data to the transport connection: ...", with the socket error and
/// errno of the inner SocketException; an SslStream's "The write operation failed, see inner
/// exception."), or the status a custom stream completed the write with (APM_E_IO when unknown).
#[no_mangle]
pub unsafe extern "C" fn apm_stream_end_write(stream: *mut apm_stream, result: *mut apm_async_result) -> apm_status {
    boundary!({ end_on::<StreamClass>(stream, result, OpKind::Write).map(drop) })
}

/// BeginRead: reads up to `count` bytes into `buffer + offset`; the buffer stays the caller's and
/// must stay valid until the operation completes. Transfer failures come from
/// `apm_stream_end_read`.
/// Errors: as apm_stream_begin_write, for reading: APM_E_INVALID_OPERATION for a write-only stream
/// (an SslStream's shutdown does not stop reads), APM_E_NOT_SUPPORTED for an SslStream with a read
/// pending, a custom stream's begin_read status.
#[no_mangle]
pub unsafe extern "C" fn apm_stream_begin_read(
    stream: *mut apm_stream,
    buffer: *mut u8,
    buffer_len: usize,
    offset: usize,
    count: usize,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({
        let buf = |s: &(dyn Stream + 'static)| {
            open_for(s, stream, false, |n| mut_buf(buffer, buffer_len, offset, count, n))
        };
        begin_with::<StreamClass, _>(stream, OpKind::Read, buf, callback, state, result, |s, buf, done| {
            s.begin_read(buf, done)
        })
    })
}

/// EndRead: waits, releases `result`, writes the bytes read (0 = end of stream).
/// Errors: as apm_stream_end_write ("Unable to read data from the transport connection: ..."; an
/// SslStream's "The decryption operation failed..." or unexpected EOF), plus APM_E_ARGUMENT_NULL
/// (bytes_read).
#[no_mangle]
pub unsafe extern "C" fn apm_stream_end_read(
    stream: *mut apm_stream,
    result: *mut apm_async_result,
    bytes_read: *mut usize,
) -> apm_status {
    boundary!({ end_with::<StreamClass, _>(stream, result, OpKind::Read, bytes_read, "bytes_read", |v| Ok(v.bytes())) })
}

/// Write, blocking the calling thread until all `count` bytes are written (a NetworkStream honours
/// the socket's SendTimeout: APM_E_IO with TimedOut); the buffer is only read during the call. On
/// an SslStream, prefer Begin/End inside callbacks: a blocking call there can wait on its own
/// engine thread.
/// Errors: as apm_stream_begin_write and apm_stream_end_write, without the Begin and End rules.
#[no_mangle]
pub unsafe extern "C" fn apm_stream_write(
    stream: *mut apm_stream,
    buffer: *const u8,
    buffer_len: usize,
    offset: usize,
    count: usize,
) -> apm_status {
    boundary!({
        let s = lookup::<StreamClass>(stream)?;
        s.write(open_for(&*s, stream, true, |n| const_buf(buffer, buffer_len, offset, count, n))?)
    })
}

/// Read, blocking the calling thread until at least one byte is available (a NetworkStream honours
/// the socket's ReceiveTimeout: APM_E_IO with TimedOut); writes how many (0 = end of stream). On an
/// SslStream, prefer Begin/End inside callbacks, as for `apm_stream_write`.
/// Errors: as apm_stream_begin_read and apm_stream_end_read, without the Begin and End rules;
/// APM_E_ARGUMENT_NULL (bytes_read).
#[no_mangle]
pub unsafe extern "C" fn apm_stream_read(
    stream: *mut apm_stream,
    buffer: *mut u8,
    buffer_len: usize,
    offset: usize,
    count: usize,
    bytes_read: *mut usize,
) -> apm_status {
    boundary!({
        let s = lookup::<StreamClass>(stream)?;
        let buf = open_for(&*s, stream, false, |n| mut_buf(buffer, buffer_len, offset, count, n))?;
        need_out(bytes_read, "bytes_read")?;
        write_out(bytes_read, "bytes_read", s.read(buf)?)
    })
}

/// CanRead: 1 if the stream is open and readable (an SslStream: once authenticated); 0 once it is
/// closed (as .NET after Dispose).
/// Errors: APM_E_ARGUMENT_NULL (stream, can_read), APM_E_ARGUMENT (not a stream handle).
#[no_mangle]
pub unsafe extern "C" fn apm_stream_can_read(stream: *mut apm_stream, can_read: *mut i32) -> apm_status {
    boundary!({ write_out(can_read, "can_read", open_stream(stream)?.is_some_and(|s| s.can_read()) as i32) })
}

/// CanWrite: 1 if the stream is open and writable (an SslStream: authenticated and not shut down);
/// 0 once it is closed.
/// Errors: APM_E_ARGUMENT_NULL (stream, can_write), APM_E_ARGUMENT (not a stream handle).
#[no_mangle]
pub unsafe extern "C" fn apm_stream_can_write(stream: *mut apm_stream, can_write: *mut i32) -> apm_status {
    boundary!({ write_out(can_write, "can_write", open_stream(stream)?.is_some_and(|s| s.can_write()) as i32) })
}

/// Close (Dispose): releases the handle. An SslStream completes its pending operations at once; a
/// NetworkStream's complete when its socket finishes them (at once when it owns the socket, which
/// it shuts down, closes and releases); a custom stream's when its functions complete them (its
/// `close` function runs on the calling thread). Callbacks run once each, possibly on the calling
/// thread before this returns; End reports APM_E_OBJECT_DISPOSED and must still be called. An
/// SslStream that owns its inner stream closes it and releases its handle too. Closing a closed
/// stream is a no-op (APM_OK).
/// Errors: APM_E_ARGUMENT_NULL (stream), APM_E_ARGUMENT (not a stream handle).
#[no_mangle]
pub unsafe extern "C" fn apm_stream_close(stream: *mut apm_stream) -> apm_status {
    boundary!({ close::<StreamClass>(stream) })
}
