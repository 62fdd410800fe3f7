//! Socket, as C sees it. Every function checks its handle: NULL -> APM_E_ARGUMENT_NULL, a closed
//! socket -> APM_E_OBJECT_DISPOSED, anything that is not a socket handle -> APM_E_ARGUMENT.
//! A socket may be used from several threads; one send and one receive may be pending at once,
//! and further ones queue behind them in order.

use super::*;
use crate::net::socket::Socket;
use crate::net::send_file::{self, Progress};

/// Progress of a long send file: `bytes_sent` so far (pre-buffer, file and post-buffer), called
/// on the thread doing the transfer after each batch the kernel accepted, never after the
/// completion callback. `state` is the state given to Begin.
pub type apm_send_file_progress =
    Option<unsafe extern "C" fn(result: *mut apm_async_result, bytes_sent: i64, state: *mut c_void)>;

fn register_socket(socket: Arc<Socket>) -> Result<*mut apm_socket> {
    register(Kind::Socket, Object::Socket(socket.clone()), std::ptr::null()).inspect_err(|_| socket.close())
}

/// The blocking Send and Receive: the socket, the buffer `buf` builds, then the count
/// out-parameter, before `run` transfers.
fn transfer<B>(
    socket: *mut apm_socket,
    buf: impl FnOnce() -> Result<B>,
    out: *mut usize,
    name: &str,
    run: impl FnOnce(&Arc<Socket>, B) -> Result<usize>,
) -> Result<()> {
    let s = lookup::<SocketClass>(socket)?;
    let b = buf()?;
    need_out(out, name)?;
    write_out(out, name, run(&s, b)?)
}

/// Creates a socket: `new Socket(address_family, socket_type, protocol_type)` with .NET's values
/// (APM_ADDRESS_FAMILY_INTER_NETWORK or _V6, APM_SOCKET_TYPE_STREAM, APM_PROTOCOL_TYPE_TCP or 0).
/// IPv6 sockets are IPv6-only. The caller owns `*socket` and releases it with `apm_socket_close`.
/// Starts the engine on first use.
/// Errors: APM_E_ARGUMENT_NULL (socket); APM_E_NOT_SUPPORTED (datagram sockets); APM_E_SOCKET
/// (AddressFamilyNotSupported, SocketNotSupported, ProtocolNotSupported, TooManyOpenSockets, ...);
/// APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_create(
    address_family: i32,
    socket_type: i32,
    protocol_type: i32,
    socket: *mut *mut apm_socket,
) -> apm_status {
    boundary!({
        need_out(socket, "socket")?;
        let s = Socket::create(address_family, socket_type, protocol_type)?;
        write_out(socket, "socket", register_socket(s)?)
    })
}

/// Bind: `address` is an IP literal ("127.0.0.1", "::1", "0.0.0.0", "::"), `port` 0..65535 (0 = any
/// free port; read it back with `apm_socket_get_local_endpoint`).
/// Errors: APM_E_ARGUMENT_NULL (socket, address), APM_E_ARGUMENT (not a socket handle; address not
/// UTF-8 or not an IP address), APM_E_ARGUMENT_OUT_OF_RANGE (port), APM_E_OBJECT_DISPOSED,
/// APM_E_SOCKET (AddressAlreadyInUse, AddressNotAvailable, InvalidArgument when bound already,
/// ...).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_bind(socket: *mut apm_socket, address: *const c_char, port: i32) -> apm_status {
    boundary!({
        let s = lookup::<SocketClass>(socket)?;
        s.bind(str_arg(address, "address")?, port)
    })
}

/// Listen with a `backlog` (negative = the system's maximum); binds an unbound socket to a free
/// port.
/// Errors: APM_E_ARGUMENT_NULL (socket), APM_E_ARGUMENT (not a socket handle),
/// APM_E_OBJECT_DISPOSED, APM_E_SOCKET.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_listen(socket: *mut apm_socket, backlog: i32) -> apm_status {
    boundary!({ lookup::<SocketClass>(socket)?.listen(backlog) })
}

/// Accept, blocking the calling thread (no timeout) until a connection arrives or the socket is
/// closed; the calling thread drives the socket itself, so it works inside a callback too. Writes
/// the new connected socket, which the caller owns (`apm_socket_close`).
/// Errors: APM_E_ARGUMENT_NULL (socket, accepted), APM_E_ARGUMENT (not a socket handle),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (not bound: "You must call the Bind method...",
/// not listening: "You must call the Listen method..."), APM_E_SOCKET (OperationAborted when the
/// socket is closed meanwhile; TooManyOpenSockets, ...), APM_E_OUT_OF_MEMORY (no handle left).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_accept(socket: *mut apm_socket, accepted: *mut *mut apm_socket) -> apm_status {
    boundary!({ get::<SocketClass, _>(socket, accepted, "accepted", |s| register_socket(s.accept()?)) })
}

/// BeginAccept: the callback runs once a connection arrived (or the socket was closed); the
/// accepted socket comes from `apm_socket_end_accept`.
/// Errors: APM_E_ARGUMENT_NULL (socket), APM_E_ARGUMENT (not a socket handle),
/// APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION (not bound, not listening), and the Begin rules
/// (see apm_async_result).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_begin_accept(
    socket: *mut apm_socket,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({
        begin_with::<SocketClass, _>(socket, OpKind::Accept, |_| Ok(()), callback, state, result, |s, (), done| {
            s.begin_accept(done).map(drop)
        })
    })
}

/// EndAccept: waits for the BeginAccept, releases `result`, writes the accepted socket, which the
/// caller owns (`apm_socket_close`).
/// Errors: APM_E_ARGUMENT_NULL (socket, accepted), APM_E_ARGUMENT (not a socket handle), the End
/// rules (see apm_async_result; APM_E_OBJECT_DISPOSED once the socket is closed), then the accept's
/// outcome: APM_E_SOCKET (OperationAborted, TooManyOpenSockets, ...), APM_E_OUT_OF_MEMORY.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_end_accept(
    socket: *mut apm_socket,
    result: *mut apm_async_result,
    accepted: *mut *mut apm_socket,
) -> apm_status {
    boundary!({
        end_with::<SocketClass, _>(socket, result, OpKind::Accept, accepted, "accepted", |v| {
            register_socket(v.object::<Socket>()?)
        })
    })
}

/// Connect to `host` (an IP literal or a name, resolved to the socket's family; each address is
/// tried in turn) and `port`, blocking the calling thread, name resolution included (no timeout but
/// the system's). A failed attempt leaves the socket able to try again.
/// Errors: APM_E_ARGUMENT_NULL (socket, host), APM_E_ARGUMENT (not a socket handle; host not
/// UTF-8), APM_E_ARGUMENT_OUT_OF_RANGE (port), APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION
/// (listening, or disconnected by a send file), APM_E_SOCKET (ConnectionRefused, HostNotFound,
/// TimedOut, IsConnected, AlreadyInProgress, ...).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_connect(socket: *mut apm_socket, host: *const c_char, port: i32) -> apm_status {
    boundary!({
        let s = lookup::<SocketClass>(socket)?;
        s.connect(str_arg(host, "host")?, port)
    })
}

/// BeginConnect: as `apm_socket_connect`, asynchronously; names are resolved on a library thread,
/// where the callback may then run. The connection's outcome comes from `apm_socket_end_connect`.
/// Errors: APM_E_ARGUMENT_NULL (socket, host), APM_E_ARGUMENT (not a socket handle; host not
/// UTF-8), APM_E_ARGUMENT_OUT_OF_RANGE (port), APM_E_OBJECT_DISPOSED, APM_E_INVALID_OPERATION
/// (listening, or disconnected by a send file), APM_E_SOCKET (IsConnected, AlreadyInProgress;
/// OperationAborted while the engine shuts down), and the Begin rules (see apm_async_result).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_begin_connect(
    socket: *mut apm_socket,
    host: *const c_char,
    port: i32,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({
        let host = |_: &Socket| str_arg(host, "host");
        begin_with::<SocketClass, _>(socket, OpKind::Connect, host, callback, state, result, |s, host, done| {
            s.begin_connect(host, port, done)
        })
    })
}

/// EndConnect: waits, releases `result`, reports the connection's outcome.
/// Errors: APM_E_ARGUMENT_NULL (socket), APM_E_ARGUMENT (not a socket handle), the End rules (see
/// apm_async_result; APM_E_OBJECT_DISPOSED once the socket is closed), then APM_E_SOCKET
/// (ConnectionRefused, HostNotFound, TimedOut, OperationAborted, ...).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_end_connect(socket: *mut apm_socket, result: *mut apm_async_result) -> apm_status {
    boundary!({ end_on::<SocketClass>(socket, result, OpKind::Connect).map(drop) })
}

/// Send, blocking the calling thread until all `count` bytes at `buffer + offset` are sent (or
/// SendTimeout passes); the buffer is only read during the call. Writes `count` to `sent`.
/// Errors: APM_E_ARGUMENT_NULL (socket, buffer, sent), APM_E_ARGUMENT (not a socket handle),
/// APM_E_ARGUMENT_OUT_OF_RANGE (offset > buffer_len, count > buffer_len - offset: parameter
/// 'size', as .NET names it),
/// APM_E_OBJECT_DISPOSED, APM_E_SOCKET (TimedOut after SendTimeout, ConnectionReset, Shutdown,
/// OperationAborted when closed meanwhile, ...).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_send(
    socket: *mut apm_socket,
    buffer: *const u8,
    buffer_len: usize,
    offset: usize,
    count: usize,
    sent: *mut usize,
) -> apm_status {
    boundary!({ transfer(socket, || const_buf(buffer, buffer_len, offset, count, "size"), sent, "sent", Socket::send) })
}

/// BeginSend: sends all `count` bytes; the buffer stays the caller's and must stay valid (and
/// unchanged) until the operation completes. Sends queue in order behind a pending one.
/// Errors: APM_E_ARGUMENT_NULL (socket, buffer), APM_E_ARGUMENT (not a socket handle),
/// APM_E_ARGUMENT_OUT_OF_RANGE (offset, count), APM_E_OBJECT_DISPOSED, and the Begin rules (see
/// apm_async_result). Transfer failures come from `apm_socket_end_send`.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_begin_send(
    socket: *mut apm_socket,
    buffer: *const u8,
    buffer_len: usize,
    offset: usize,
    count: usize,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({
        let buf = |_: &Socket| const_buf(buffer, buffer_len, offset, count, "size");
        begin_with::<SocketClass, _>(socket, OpKind::Send, buf, callback, state, result, |s, buf, done| {
            s.begin_send(buf, done).map(drop)
        })
    })
}

/// EndSend: waits, releases `result`, writes the bytes sent (all of them on success).
/// Errors: APM_E_ARGUMENT_NULL (socket, sent), APM_E_ARGUMENT (not a socket handle), the End rules
/// (see apm_async_result; APM_E_OBJECT_DISPOSED once the socket is closed), then APM_E_SOCKET
/// (ConnectionReset, Shutdown, OperationAborted, ...).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_end_send(
    socket: *mut apm_socket,
    result: *mut apm_async_result,
    sent: *mut usize,
) -> apm_status {
    boundary!({ end_with::<SocketClass, _>(socket, result, OpKind::Send, sent, "sent", |v| Ok(v.bytes())) })
}

/// Receive, blocking the calling thread until some bytes arrive (or ReceiveTimeout passes); writes
/// how many, 0 at the end of the stream.
/// Errors: APM_E_ARGUMENT_NULL (socket, buffer, received), APM_E_ARGUMENT (not a socket handle),
/// APM_E_ARGUMENT_OUT_OF_RANGE (offset, count), APM_E_OBJECT_DISPOSED, APM_E_SOCKET (TimedOut after
/// ReceiveTimeout, ConnectionReset, OperationAborted when closed meanwhile, ...).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_receive(
    socket: *mut apm_socket,
    buffer: *mut u8,
    buffer_len: usize,
    offset: usize,
    count: usize,
    received: *mut usize,
) -> apm_status {
    boundary!({
        transfer(socket, || mut_buf(buffer, buffer_len, offset, count, "size"), received, "received", Socket::receive)
    })
}

/// BeginReceive: receives up to `count` bytes into `buffer + offset`; the buffer stays the caller's
/// and must stay valid until the operation completes.
/// Errors: APM_E_ARGUMENT_NULL (socket, buffer), APM_E_ARGUMENT (not a socket handle),
/// APM_E_ARGUMENT_OUT_OF_RANGE (offset, count), APM_E_OBJECT_DISPOSED, and the Begin rules (see
/// apm_async_result). Transfer failures come from `apm_socket_end_receive`.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_begin_receive(
    socket: *mut apm_socket,
    buffer: *mut u8,
    buffer_len: usize,
    offset: usize,
    count: usize,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({
        let buf = |_: &Socket| mut_buf(buffer, buffer_len, offset, count, "size");
        begin_with::<SocketClass, _>(socket, OpKind::Receive, buf, callback, state, result, |s, buf, done| {
            s.begin_receive(buf, done).map(drop)
        })
    })
}

/// EndReceive: waits, releases `result`, writes the bytes received (0 = end of stream).
/// Errors: APM_E_ARGUMENT_NULL (socket, received), APM_E_ARGUMENT (not a socket handle), the End
/// rules (see apm_async_result; APM_E_OBJECT_DISPOSED once the socket is closed), then APM_E_SOCKET
/// (ConnectionReset, OperationAborted, ...).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_end_receive(
    socket: *mut apm_socket,
    result: *mut apm_async_result,
    received: *mut usize,
) -> apm_status {
    boundary!({ end_with::<SocketClass, _>(socket, result, OpKind::Receive, received, "received", |v| Ok(v.bytes())) })
}

/// Shutdown with APM_SOCKET_SHUTDOWN_RECEIVE, _SEND or _BOTH; the socket is no longer Connected
/// afterwards. The caller still closes the socket.
/// Errors: APM_E_ARGUMENT_NULL (socket), APM_E_ARGUMENT (not a socket handle),
/// APM_E_OBJECT_DISPOSED, APM_E_SOCKET (InvalidArgument for another `how`; NotConnected when it
/// never was connected).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_shutdown(socket: *mut apm_socket, how: i32) -> apm_status {
    boundary!({ lookup::<SocketClass>(socket)?.shutdown(how) })
}

/// Close (Dispose): closes the connection (honouring linger), completes pending operations (their
/// callbacks run once, possibly on the calling thread before this returns; their End reports
/// APM_E_OBJECT_DISPOSED and must still be called) and releases the handle. Closing a closed socket
/// is a no-op (APM_OK).
/// Errors: APM_E_ARGUMENT_NULL (socket), APM_E_ARGUMENT (not a socket handle).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_close(socket: *mut apm_socket) -> apm_status {
    boundary!({ close::<SocketClass>(socket) })
}

/// An endpoint getter: the socket, the arguments, then the address copied by the house rule for
/// text (see `copy_text`; there is no length out-parameter, and 46 bytes always suffice).
fn endpoint(
    socket: *mut apm_socket,
    remote: bool,
    address: *mut c_char,
    address_len: usize,
    port: *mut i32,
) -> Result<()> {
    let s = lookup::<SocketClass>(socket)?;
    if address.is_null() && address_len > 0 {
        return Err(Error::argument_null("address"));
    }
    need_out(port, "port")?;
    let ep = s.endpoint(remote)?;
    copy_text(&ep.ip().to_string(), address, address_len, std::ptr::null_mut())?;
    write_out(port, "port", ep.port() as i32)
}

/// LocalEndPoint: writes the port, and the IP address as text into the caller's `address` buffer
/// as `apm_last_error_message` copies (NUL-terminated, truncated to `address_len - 1` bytes; 46
/// bytes always suffice; `address` may be NULL when `address_len` is 0, for the port alone).
/// Errors: APM_E_ARGUMENT_NULL (socket, port; address NULL with a nonzero address_len),
/// APM_E_ARGUMENT (not a socket handle), APM_E_OBJECT_DISPOSED, APM_E_SOCKET.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_get_local_endpoint(
    socket: *mut apm_socket,
    address: *mut c_char,
    address_len: usize,
    port: *mut i32,
) -> apm_status {
    boundary!({ endpoint(socket, false, address, address_len, port) })
}

/// RemoteEndPoint: as `apm_socket_get_local_endpoint`, for the peer.
/// Errors: as apm_socket_get_local_endpoint; APM_E_SOCKET (NotConnected) when there is no peer.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_get_remote_endpoint(
    socket: *mut apm_socket,
    address: *mut c_char,
    address_len: usize,
    port: *mut i32,
) -> apm_status {
    boundary!({ endpoint(socket, true, address, address_len, port) })
}

/// Connected: .NET's cached flag, true after a connect or accept until shutdown, close, a
/// Disconnect send file or a failed transfer.
/// Errors: APM_E_ARGUMENT_NULL (socket, connected), APM_E_ARGUMENT (not a socket handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_get_connected(socket: *mut apm_socket, connected: *mut i32) -> apm_status {
    boundary!({ get::<SocketClass, _>(socket, connected, "connected", |s| Ok(s.connected() as i32)) })
}

/// Available: bytes received and not yet read.
/// Errors: APM_E_ARGUMENT_NULL (socket, available), APM_E_ARGUMENT (not a socket handle),
/// APM_E_OBJECT_DISPOSED, APM_E_SOCKET.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_get_available(socket: *mut apm_socket, available: *mut i32) -> apm_status {
    boundary!({ get::<SocketClass, _>(socket, available, "available", Socket::available) })
}

/// A buffer size argument: negative is ArgumentOutOfRange for `param`.
fn size_arg(size: i32, param: &str) -> Result<usize> {
    usize::try_from(size).map_err(|_| Error::out_of_range(param))
}

/// NoDelay (TCP_NODELAY): nonzero disables Nagle's algorithm.
/// Errors: APM_E_ARGUMENT_NULL (socket), APM_E_ARGUMENT (not a socket handle),
/// APM_E_OBJECT_DISPOSED, APM_E_SOCKET.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_set_no_delay(socket: *mut apm_socket, no_delay: i32) -> apm_status {
    boundary!({ lookup::<SocketClass>(socket)?.set_no_delay(no_delay != 0) })
}

/// NoDelay: writes 1 when Nagle's algorithm is off.
/// Errors: APM_E_ARGUMENT_NULL (socket, no_delay), APM_E_ARGUMENT (not a socket handle),
/// APM_E_OBJECT_DISPOSED, APM_E_SOCKET.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_get_no_delay(socket: *mut apm_socket, no_delay: *mut i32) -> apm_status {
    boundary!({ get::<SocketClass, _>(socket, no_delay, "no_delay", |s| s.no_delay().map(i32::from)) })
}

/// SendBufferSize (SO_SNDBUF) in bytes; Linux doubles the value for its bookkeeping, and the getter
/// reports what the kernel uses.
/// Errors: APM_E_ARGUMENT_NULL (socket), APM_E_ARGUMENT (not a socket handle),
/// APM_E_ARGUMENT_OUT_OF_RANGE (negative), APM_E_OBJECT_DISPOSED, APM_E_SOCKET.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_set_send_buffer_size(socket: *mut apm_socket, size: i32) -> apm_status {
    boundary!({
        let s = lookup::<SocketClass>(socket)?;
        s.set_send_buffer_size(size_arg(size, "size")?)
    })
}

/// SendBufferSize as the kernel reports it.
/// Errors: APM_E_ARGUMENT_NULL (socket, size), APM_E_ARGUMENT (not a socket handle),
/// APM_E_OBJECT_DISPOSED, APM_E_SOCKET.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_get_send_buffer_size(socket: *mut apm_socket, size: *mut i32) -> apm_status {
    boundary!({ get::<SocketClass, _>(socket, size, "size", Socket::send_buffer_size) })
}

/// ReceiveBufferSize (SO_RCVBUF) in bytes.
/// Errors: as apm_socket_set_send_buffer_size.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_set_receive_buffer_size(socket: *mut apm_socket, size: i32) -> apm_status {
    boundary!({
        let s = lookup::<SocketClass>(socket)?;
        s.set_receive_buffer_size(size_arg(size, "size")?)
    })
}

/// ReceiveBufferSize as the kernel reports it.
/// Errors: as apm_socket_get_send_buffer_size.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_get_receive_buffer_size(socket: *mut apm_socket, size: *mut i32) -> apm_status {
    boundary!({ get::<SocketClass, _>(socket, size, "size", Socket::receive_buffer_size) })
}

/// SendTimeout in milliseconds for the blocking calls (0 or -1 = infinite); Begin/End operations
/// never time out, as in .NET.
/// Errors: APM_E_ARGUMENT_NULL (socket), APM_E_ARGUMENT (not a socket handle),
/// APM_E_ARGUMENT_OUT_OF_RANGE (< -1), APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_set_send_timeout(socket: *mut apm_socket, timeout_ms: i32) -> apm_status {
    boundary!({ lookup::<SocketClass>(socket)?.set_timeout(true, timeout_ms) })
}

/// SendTimeout in milliseconds (0 = infinite).
/// Errors: APM_E_ARGUMENT_NULL (socket, timeout_ms), APM_E_ARGUMENT (not a socket handle),
/// APM_E_OBJECT_DISPOSED.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_get_send_timeout(socket: *mut apm_socket, timeout_ms: *mut i32) -> apm_status {
    boundary!({ get::<SocketClass, _>(socket, timeout_ms, "timeout_ms", |s| s.timeout(true)) })
}

/// ReceiveTimeout in milliseconds for the blocking calls (0 or -1 = infinite).
/// Errors: as apm_socket_set_send_timeout.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_set_receive_timeout(socket: *mut apm_socket, timeout_ms: i32) -> apm_status {
    boundary!({ lookup::<SocketClass>(socket)?.set_timeout(false, timeout_ms) })
}

/// ReceiveTimeout in milliseconds (0 = infinite).
/// Errors: as apm_socket_get_send_timeout.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_get_receive_timeout(socket: *mut apm_socket, timeout_ms: *mut i32) -> apm_status {
    boundary!({ get::<SocketClass, _>(socket, timeout_ms, "timeout_ms", |s| s.timeout(false)) })
}

/// LingerState: `enabled` nonzero with `seconds` (0..65535) makes close wait that long for unsent
/// data; enabled with 0 makes close reset the connection.
/// Errors: APM_E_ARGUMENT_NULL (socket), APM_E_ARGUMENT (not a socket handle),
/// APM_E_ARGUMENT_OUT_OF_RANGE (seconds outside 0..65535, also when disabled),
/// APM_E_OBJECT_DISPOSED, APM_E_SOCKET.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_set_linger(socket: *mut apm_socket, enabled: i32, seconds: i32) -> apm_status {
    boundary!({ lookup::<SocketClass>(socket)?.set_linger(enabled != 0, seconds) })
}

/// LingerState: writes whether lingering is on and for how many seconds.
/// Errors: APM_E_ARGUMENT_NULL (socket, enabled, seconds), APM_E_ARGUMENT (not a socket handle),
/// APM_E_OBJECT_DISPOSED, APM_E_SOCKET.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_get_linger(
    socket: *mut apm_socket,
    enabled: *mut i32,
    seconds: *mut i32,
) -> apm_status {
    boundary!({
        let s = lookup::<SocketClass>(socket)?;
        need_out(enabled, "enabled")?;
        need_out(seconds, "seconds")?;
        let (on, secs) = s.linger()?;
        write_out(enabled, "enabled", on as i32)?;
        write_out(seconds, "seconds", secs)
    })
}

/// Opens the file of a send file: NULL = none; "" = none for the blocking call, an error for
/// Begin (as .NET does).
fn open_file(file_name: *const c_char, empty_is_none: bool) -> Result<Option<std::fs::File>> {
    if file_name.is_null() {
        return Ok(None);
    }
    let name = str_arg(file_name, "fileName")?;
    if name.is_empty() && empty_is_none {
        return Ok(None);
    }
    send_file::open(name).map(Some)
}

/// SendFile, blocking the calling thread: sends `pre` (may be NULL), the file (`file_name` NULL or
/// "" = none), then `post` (may be NULL), honouring SendTimeout; the buffers are only read during
/// the call. `flags` are TransmitFileOptions: Disconnect and ReuseSocket are honoured (unlike .NET
/// on Linux, whose blocking SendFile rejects them: the same flags behave the same in both forms
/// here); the Windows-only flags are ignored.
/// Errors: APM_E_ARGUMENT_NULL (socket), APM_E_ARGUMENT (not a socket handle; unknown flags;
/// file_name not UTF-8), APM_E_OBJECT_DISPOSED, APM_E_NOT_SUPPORTED (not connected),
/// APM_E_FILE_NOT_FOUND, APM_E_DIRECTORY_NOT_FOUND, APM_E_UNAUTHORIZED_ACCESS (no permission, or a
/// directory), APM_E_IO (the file cannot be opened otherwise), APM_E_SOCKET (TimedOut after
/// SendTimeout, ConnectionReset, Shutdown, ...).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_send_file(
    socket: *mut apm_socket,
    file_name: *const c_char,
    pre: *const u8,
    pre_len: usize,
    post: *const u8,
    post_len: usize,
    flags: i32,
) -> apm_status {
    boundary!({
        let s = lookup::<SocketClass>(socket)?;
        s.check_send_file(flags)?;
        let file = open_file(file_name, true)?;
        s.send_file(file, optional_buf(pre, pre_len), optional_buf(post, post_len), flags)
    })
}

// The arguments of the two C exports it serves, as they are.
#[allow(clippy::too_many_arguments)]
fn begin_send_file(
    socket: *mut apm_socket,
    file_name: *const c_char,
    pre: ConstBuf,
    post: ConstBuf,
    flags: i32,
    progress: apm_send_file_progress,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> Result<()> {
    let s = lookup::<SocketClass>(socket)?;
    s.check_send_file(flags)?;
    need_out(result, "result")?;
    let file = open_file(file_name, false)?;
    let state_addr = state as usize;
    begin_on(socket, OpKind::SendFile, callback, state, result, move |done, handle| {
        // The progress report names the operation by its result handle, as the callback does.
        let handle = handle as usize;
        let report: Option<Progress> = progress.map(|f| {
            Arc::new(move |sent: i64| {
                // SAFETY: the caller's progress function with its own state.
                unsafe { f(handle as *mut apm_async_result, sent, state_addr as *mut c_void) }
            }) as Progress
        });
        s.begin_send_file(file, pre, post, flags, report, done).map(drop)
    })
}

/// BeginSendFile: the file is opened inside Begin, so the file errors come from here (`file_name`
/// NULL = buffers only; "" fails). Then `pre`, the whole file by sendfile(2) and `post` go out as
/// one operation: other sends queue behind it. Files of any size (beyond 4 GiB) work. The buffers
/// stay the caller's and must stay valid until completion; the file is closed by the library. Flags
/// as `apm_socket_send_file`. The transfer's outcome comes from `apm_socket_end_send_file`.
/// Errors: APM_E_ARGUMENT_NULL (socket), APM_E_ARGUMENT (not a socket handle; unknown flags;
/// file_name not UTF-8), APM_E_OBJECT_DISPOSED, APM_E_NOT_SUPPORTED (not connected),
/// APM_E_FILE_NOT_FOUND, APM_E_DIRECTORY_NOT_FOUND, APM_E_UNAUTHORIZED_ACCESS, APM_E_IO (the file
/// cannot be opened otherwise), and the Begin rules (see apm_async_result).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_begin_send_file(
    socket: *mut apm_socket,
    file_name: *const c_char,
    pre: *const u8,
    pre_len: usize,
    post: *const u8,
    post_len: usize,
    flags: i32,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({
        begin_send_file(
            socket,
            file_name,
            optional_buf(pre, pre_len),
            optional_buf(post, post_len),
            flags,
            None,
            callback,
            state,
            result,
        )
    })
}

/// BeginSendFile with a progress report: `progress` (may be NULL) is called with the bytes sent so
/// far after each batch the kernel accepted, on the thread doing the transfer (the Begin caller's
/// or an engine thread), never after the completion callback; it must not block.
/// Errors: as apm_socket_begin_send_file.
#[no_mangle]
pub unsafe extern "C" fn apm_socket_begin_send_file_with_progress(
    socket: *mut apm_socket,
    file_name: *const c_char,
    pre: *const u8,
    pre_len: usize,
    post: *const u8,
    post_len: usize,
    flags: i32,
    progress: apm_send_file_progress,
    callback: apm_async_callback,
    state: *mut c_void,
    result: *mut *mut apm_async_result,
) -> apm_status {
    boundary!({
        begin_send_file(
            socket,
            file_name,
            optional_buf(pre, pre_len),
            optional_buf(post, post_len),
            flags,
            progress,
            callback,
            state,
            result,
        )
    })
}

/// EndSendFile: waits, releases `result`, reports the transfer's outcome. After a Disconnect the
/// socket is no longer Connected.
/// Errors: APM_E_ARGUMENT_NULL (socket), APM_E_ARGUMENT (not a socket handle), the End rules (see
/// apm_async_result; APM_E_OBJECT_DISPOSED once the socket is closed), then APM_E_SOCKET
/// (ConnectionReset, Shutdown, OperationAborted, ...).
#[no_mangle]
pub unsafe extern "C" fn apm_socket_end_send_file(
    socket: *mut apm_socket,
    result: *mut apm_async_result,
) -> apm_status {
    boundary!({ end_on::<SocketClass>(socket, result, OpKind::SendFile).map(drop) })
}
