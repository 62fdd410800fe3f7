//! NetworkStream, as C sees it: its constructors. Reads, writes and close are the shared
//! `apm_stream_*` functions (ffi/stream.rs). One read and one write may be pending at once;
//! further writes queue behind the pending one and go out in order, never interleaved.

use super::*;
use crate::net::file_access;
use crate::net::network_stream::NetworkStream;

/// `new NetworkStream(socket, access, owns_socket)`: `access` is APM_FILE_ACCESS_READ, _WRITE or
/// _READ_WRITE. With `owns_socket` nonzero, closing the stream shuts down and closes the socket and
/// releases its handle (the caller then does not close it); with 0 the socket stays the caller's,
/// and must outlive the stream's use. The caller owns `*stream` (`apm_stream_close`).
/// Errors: APM_E_ARGUMENT_NULL (socket, stream), APM_E_ARGUMENT (not a socket handle),
/// APM_E_OBJECT_DISPOSED (closed socket), APM_E_ARGUMENT_OUT_OF_RANGE (access), APM_E_IO ("The
/// operation is not allowed on non-connected sockets."), APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_network_stream_create_with_access(
    socket: *mut apm_socket,
    access: i32,
    owns_socket: i32,
    stream: *mut *mut apm_stream,
) -> apm_status {
    boundary!({
        let s = lookup::<SocketClass>(socket)?;
        if !(file_access::READ..=file_access::READ_WRITE).contains(&access) {
            return Err(Error::out_of_range("access"));
        }
        need_out(stream, "stream")?;
        let ns = Arc::new(NetworkStream::new(s, access, owns_socket != 0)?);
        let owned = if owns_socket != 0 { socket as *const () } else { std::ptr::null() };
        let p: *mut apm_stream = register(Kind::NetworkStream, Object::NetworkStream(ns), owned)?;
        write_out(stream, "stream", p)
    })
}

/// `new NetworkStream(socket, owns_socket)`: readable and writable; otherwise as
/// `apm_network_stream_create_with_access`.
/// Errors: as apm_network_stream_create_with_access (never APM_E_ARGUMENT_OUT_OF_RANGE).
#[no_mangle]
pub unsafe extern "C" fn apm_network_stream_create(
    socket: *mut apm_socket,
    owns_socket: i32,
    stream: *mut *mut apm_stream,
) -> apm_status {
    apm_network_stream_create_with_access(socket, file_access::READ_WRITE, owns_socket, stream)
}
