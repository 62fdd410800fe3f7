//! NetworkStream and the Stream functions every stream shares, as C sees them. One read and one
//! write may be pending at once; further writes queue behind the pending one and go out in
//! order, never interleaved.

use super::*;
use crate::async_result::Value;
use crate::net::file_access;
use crate::net::network_stream::NetworkStream;

/// The stream, or None when it was closed (for the properties that report false after Dispose).
fn open_stream(stream: *const apm_stream) -> Result<Option<Arc<dyn Stream>>> {
    match stream_of(stream) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.status == crate::error::code::OBJECT_DISPOSED => Ok(None),
        Err(e) => Err(e),
    }
}

fn end_stream(stream: *const apm_stream, result: *const apm_async_result, op: OpKind) -> Result<Value> {
    let (owner, disposed, check) = owner_for_end(stream, |p| stream_of(p).map(drop));
    check?;
    end(owner, disposed, result, op)
}

/// `new NetworkStream(socket, access, owns_socket)`: `access` is APM_FILE_ACCESS_READ, _WRITE
/// or _READ_WRITE. With `owns_socket` nonzero, closing the stream shuts down and closes the
/// socket and releases its handle. The caller owns `*stream` (`apm_stream_close`).
/// Errors: APM_E_ARGUMENT_NULL, APM_E_OBJECT_DISPOSED (closed socket), APM_E_IO ("The operation
/// is not allowed on non-connected sockets."), APM_E_ARGUMENT_OUT_OF_RANGE (access).
#[no_mangle]
pub unsafe extern "C" fn apm_network_stream_create_with_access(
    socket: *mut apm_socket,
    access: i32,
    owns_socket: i32,
    stream: *mut *mut apm_stream,
) -> apm_status {
    boundary!({
        need_out(stream, "stream")?;
        let s = socket_of(socket)?;
        if !(file_access::READ..=file_access::READ_WRITE).contains(&access) {
            return Err(Error::out_of_range("access"));
        }
        let ns: Arc<dyn Stream> = Arc::new(NetworkStream::new(s, access, owns_socket != 0)?);
        let h = handle::insert(Kind::NetworkStream, Object::Stream(ns))
            .ok_or_else(|| Error::new(crate::error::code::OUT_OF_MEMORY, "Too many handles are open."))?;
        if owns_socket != 0 {
            OWNED_SOCKETS.lock().insert(h, handle_of(socket));
        }
        write_out(stream, "stream", to_pointer(h))
    })
}

/// `new NetworkStream(socket, owns_socket)`: readable and writable.
#[no_mangle]
pub unsafe extern "C" fn apm_network_stream_create(
    socket: *mut apm_socket,
    owns_socket: i32,
    stream: *mut *mut apm_stream,
) -> apm_status {
    apm_network_stream_create_with_access(socket, file_access::READ_WRITE, owns_socket, stream)
}

/// The socket handle each owning stream releases when it closes.
static OWNED_SOCKETS: std::sync::LazyLock<parking_lot::Mutex<std::collections::HashMap<Handle, Handle>>> =
    std::sync::LazyLock::new(Default::default);

/// BeginWrite: writes all `count` bytes at `buffer + offset`; the buffer must stay valid until
/// the operation completes. Errors from Begin, in .NET's order: APM_E_ARGUMENT_NULL (stream),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (a read-only stream), APM_E_ARGUMENT_NULL
/// (buffer), APM_E_ARGUMENT_OUT_OF_RANGE (offset > buffer_len; count > buffer_len - offset),
/// APM_E_ARGUMENT_NULL (result). Transfer failures come from `apm_stream_end_write` as APM_E_IO.
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
        let s = stream_of(stream)?;
        s.check(true)?;
        let buf = const_buf(buffer, buffer_len, offset, count)?;
        begin(handle_of(stream), OpKind::Write, callback, state, result, |done| s.begin_write(buf, done))
    })
}

/// EndWrite: waits, releases `result`, reports the write's outcome. Errors: the End rules
/// (APM_E_ARGUMENT_NULL; APM_E_ARGUMENT for a result of another stream or another Begin;
/// APM_E_INVALID_OPERATION "EndWrite can only be called once..."), APM_E_OBJECT_DISPOSED after
/// close, APM_E_IO ("Unable to write data to the transport connection: ...", with the socket
/// error and errno of the inner SocketException).
#[no_mangle]
pub unsafe extern "C" fn apm_stream_end_write(stream: *mut apm_stream, result: *mut apm_async_result) -> apm_status {
    boundary!({ end_stream(stream, result, OpKind::Write).map(drop) })
}

/// BeginRead: reads up to `count` bytes into `buffer + offset`; the buffer must stay valid until
/// the operation completes. Errors from Begin as `apm_stream_begin_write` (a write-only stream:
/// APM_E_INVALID_OPERATION).
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
        let s = stream_of(stream)?;
        s.check(false)?;
        let buf = mut_buf(buffer, buffer_len, offset, count)?;
        begin(handle_of(stream), OpKind::Read, callback, state, result, |done| s.begin_read(buf, done))
    })
}

/// EndRead: waits, releases `result`, writes the bytes read (0 = end of stream). Errors as
/// `apm_stream_end_write` ("Unable to read data from the transport connection: ...").
#[no_mangle]
pub unsafe extern "C" fn apm_stream_end_read(
    stream: *mut apm_stream,
    result: *mut apm_async_result,
    bytes_read: *mut usize,
) -> apm_status {
    boundary!({
        need_out(bytes_read, "bytes_read")?;
        match end_stream(stream, result, OpKind::Read)? {
            Value::Bytes(n) => write_out(bytes_read, "bytes_read", n),
            _ => write_out(bytes_read, "bytes_read", 0),
        }
    })
}

/// Write, blocking until all `count` bytes are written. Errors as BeginWrite plus EndWrite.
#[no_mangle]
pub unsafe extern "C" fn apm_stream_write(
    stream: *mut apm_stream,
    buffer: *const u8,
    buffer_len: usize,
    offset: usize,
    count: usize,
) -> apm_status {
    boundary!({
        let s = stream_of(stream)?;
        s.check(true)?;
        s.write(const_buf(buffer, buffer_len, offset, count)?)
    })
}

/// Read, blocking until at least one byte is available; writes how many (0 = end of stream).
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
        let s = stream_of(stream)?;
        s.check(false)?;
        let buf = mut_buf(buffer, buffer_len, offset, count)?;
        need_out(bytes_read, "bytes_read")?;
        write_out(bytes_read, "bytes_read", s.read(buf)?)
    })
}

/// CanRead: 1 if the stream is open and readable; 0 once it is closed (as .NET after Dispose).
/// Errors: APM_E_ARGUMENT_NULL, APM_E_ARGUMENT (not a stream handle).
#[no_mangle]
pub unsafe extern "C" fn apm_stream_can_read(stream: *mut apm_stream, can_read: *mut i32) -> apm_status {
    boundary!({ write_out(can_read, "can_read", open_stream(stream)?.is_some_and(|s| s.can_read()) as i32) })
}

/// CanWrite: 1 if the stream is open and writable; 0 once it is closed.
/// Errors: APM_E_ARGUMENT_NULL, APM_E_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn apm_stream_can_write(stream: *mut apm_stream, can_write: *mut i32) -> apm_status {
    boundary!({ write_out(can_write, "can_write", open_stream(stream)?.is_some_and(|s| s.can_write()) as i32) })
}

/// Close (Dispose): pending operations complete (callbacks run once; End reports
/// APM_E_OBJECT_DISPOSED) and the handle is released; an owned socket is shut down, closed and
/// its handle released too. Closing a closed stream is a no-op (APM_OK).
/// Errors: APM_E_ARGUMENT_NULL, APM_E_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn apm_stream_close(stream: *mut apm_stream) -> apm_status {
    boundary!({
        close_handle(stream, stream_of, |h, s| {
            s.close();
            if let Some(socket) = OWNED_SOCKETS.lock().remove(&h) {
                handle::remove(socket);
            }
        })
    })
}
