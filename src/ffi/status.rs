//! Status codes, .NET enum values, the last-error record and the version, as C sees them.
//! The numbers are literals here so cbindgen can emit them; a test ties them to `error::code`.

use super::{boundary, copy_text};
use crate::error::{self, code};
use std::ffi::{c_char, CStr};

/// A status: APM_OK (0) or a negative APM_E_* code naming the .NET exception kind. Each
/// function's doc ends with the codes it returns ("Errors:"); APM_E_INTERNAL, which any function
/// returning apm_status may report for a bug in apmnet (a caught panic), is not repeated there.
pub type apm_status = i32;

/// Success.
pub const APM_OK: apm_status = 0;
/// ArgumentNullException: a required pointer argument was NULL.
pub const APM_E_ARGUMENT_NULL: apm_status = -1;
/// ArgumentOutOfRangeException: an offset, count, port or setting outside its range.
pub const APM_E_ARGUMENT_OUT_OF_RANGE: apm_status = -2;
/// ArgumentException: an invalid argument, a wrong-type or invalid handle, a foreign IAsyncResult.
pub const APM_E_ARGUMENT: apm_status = -3;
/// InvalidOperationException: a call not valid in the object's state, a second End.
pub const APM_E_INVALID_OPERATION: apm_status = -4;
/// NotSupportedException: e.g. send file on a socket that is not connected.
pub const APM_E_NOT_SUPPORTED: apm_status = -5;
/// ObjectDisposedException: the object was closed.
pub const APM_E_OBJECT_DISPOSED: apm_status = -6;
/// IOException: a stream's transfer failed (the SocketException is the inner error).
pub const APM_E_IO: apm_status = -7;
/// SocketException: see apm_last_error_socket_error and apm_last_error_errno.
pub const APM_E_SOCKET: apm_status = -8;
/// AuthenticationException.
pub const APM_E_AUTHENTICATION: apm_status = -9;
/// InvalidCredentialException.
pub const APM_E_INVALID_CREDENTIAL: apm_status = -10;
/// ProtocolViolationException.
pub const APM_E_PROTOCOL_VIOLATION: apm_status = -11;
/// WebException: see apm_last_error_web_status and apm_last_error_http_status.
pub const APM_E_WEB: apm_status = -12;
/// FileNotFoundException.
pub const APM_E_FILE_NOT_FOUND: apm_status = -13;
/// DirectoryNotFoundException.
pub const APM_E_DIRECTORY_NOT_FOUND: apm_status = -14;
/// PlatformNotSupportedException.
pub const APM_E_PLATFORM_NOT_SUPPORTED: apm_status = -15;
/// TimeoutException.
pub const APM_E_TIMEOUT: apm_status = -16;
/// OutOfMemoryException (including running out of handles).
pub const APM_E_OUT_OF_MEMORY: apm_status = -17;
/// An internal error (a bug in apmnet, never the caller's fault).
pub const APM_E_INTERNAL: apm_status = -18;
/// UnauthorizedAccessException (e.g. a file that may not be read).
pub const APM_E_UNAUTHORIZED_ACCESS: apm_status = -19;
/// CryptographicException (a certificate that loaded but one of whose fields cannot be read, as
/// .NET reports it).
pub const APM_E_CRYPTOGRAPHIC: apm_status = -20;

/// AddressFamily.InterNetwork (IPv4).
pub const APM_ADDRESS_FAMILY_INTER_NETWORK: i32 = 2;
/// AddressFamily.InterNetworkV6 (IPv6).
pub const APM_ADDRESS_FAMILY_INTER_NETWORK_V6: i32 = 23;
/// SocketType.Stream.
pub const APM_SOCKET_TYPE_STREAM: i32 = 1;
/// SocketType.Dgram (not supported: APM_E_NOT_SUPPORTED).
pub const APM_SOCKET_TYPE_DGRAM: i32 = 2;
/// ProtocolType.Tcp.
pub const APM_PROTOCOL_TYPE_TCP: i32 = 6;
/// SocketShutdown.Receive.
pub const APM_SOCKET_SHUTDOWN_RECEIVE: i32 = 0;
/// SocketShutdown.Send.
pub const APM_SOCKET_SHUTDOWN_SEND: i32 = 1;
/// SocketShutdown.Both.
pub const APM_SOCKET_SHUTDOWN_BOTH: i32 = 2;
/// TransmitFileOptions.UseDefaultWorkerThread (0, the default).
pub const APM_TRANSMIT_FILE_USE_DEFAULT_WORKER_THREAD: i32 = 0;
/// TransmitFileOptions.Disconnect: shut the connection down after the transfer.
pub const APM_TRANSMIT_FILE_DISCONNECT: i32 = 1;
/// TransmitFileOptions.ReuseSocket: with Disconnect, leave the socket able to connect again.
pub const APM_TRANSMIT_FILE_REUSE_SOCKET: i32 = 2;
/// TransmitFileOptions.WriteBehind (Windows only; accepted and ignored).
pub const APM_TRANSMIT_FILE_WRITE_BEHIND: i32 = 4;
/// TransmitFileOptions.UseSystemThread (Windows only; accepted and ignored).
pub const APM_TRANSMIT_FILE_USE_SYSTEM_THREAD: i32 = 0x10;
/// TransmitFileOptions.UseKernelApc (Windows only; accepted and ignored).
pub const APM_TRANSMIT_FILE_USE_KERNEL_APC: i32 = 0x20;
/// FileAccess.Read: a NetworkStream that can only read.
pub const APM_FILE_ACCESS_READ: i32 = 1;
/// FileAccess.Write: a NetworkStream that can only write.
pub const APM_FILE_ACCESS_WRITE: i32 = 2;
/// FileAccess.ReadWrite.
pub const APM_FILE_ACCESS_READ_WRITE: i32 = 3;

/// SocketError.Success.
pub const APM_SOCKET_ERROR_SUCCESS: i32 = 0;
/// SocketError.SocketError (an unmapped error).
pub const APM_SOCKET_ERROR_SOCKET_ERROR: i32 = -1;
/// SocketError.OperationAborted (the socket was closed while the operation was pending).
pub const APM_SOCKET_ERROR_OPERATION_ABORTED: i32 = 995;
/// SocketError.IOPending.
pub const APM_SOCKET_ERROR_IO_PENDING: i32 = 997;
/// SocketError.Interrupted.
pub const APM_SOCKET_ERROR_INTERRUPTED: i32 = 10004;
/// SocketError.AccessDenied.
pub const APM_SOCKET_ERROR_ACCESS_DENIED: i32 = 10013;
/// SocketError.Fault.
pub const APM_SOCKET_ERROR_FAULT: i32 = 10014;
/// SocketError.InvalidArgument.
pub const APM_SOCKET_ERROR_INVALID_ARGUMENT: i32 = 10022;
/// SocketError.TooManyOpenSockets.
pub const APM_SOCKET_ERROR_TOO_MANY_OPEN_SOCKETS: i32 = 10024;
/// SocketError.WouldBlock.
pub const APM_SOCKET_ERROR_WOULD_BLOCK: i32 = 10035;
/// SocketError.InProgress.
pub const APM_SOCKET_ERROR_IN_PROGRESS: i32 = 10036;
/// SocketError.AlreadyInProgress.
pub const APM_SOCKET_ERROR_ALREADY_IN_PROGRESS: i32 = 10037;
/// SocketError.NotSocket.
pub const APM_SOCKET_ERROR_NOT_SOCKET: i32 = 10038;
/// SocketError.DestinationAddressRequired.
pub const APM_SOCKET_ERROR_DESTINATION_ADDRESS_REQUIRED: i32 = 10039;
/// SocketError.MessageSize.
pub const APM_SOCKET_ERROR_MESSAGE_SIZE: i32 = 10040;
/// SocketError.ProtocolType.
pub const APM_SOCKET_ERROR_PROTOCOL_TYPE: i32 = 10041;
/// SocketError.ProtocolOption.
pub const APM_SOCKET_ERROR_PROTOCOL_OPTION: i32 = 10042;
/// SocketError.ProtocolNotSupported.
pub const APM_SOCKET_ERROR_PROTOCOL_NOT_SUPPORTED: i32 = 10043;
/// SocketError.SocketNotSupported.
pub const APM_SOCKET_ERROR_SOCKET_NOT_SUPPORTED: i32 = 10044;
/// SocketError.OperationNotSupported.
pub const APM_SOCKET_ERROR_OPERATION_NOT_SUPPORTED: i32 = 10045;
/// SocketError.ProtocolFamilyNotSupported.
pub const APM_SOCKET_ERROR_PROTOCOL_FAMILY_NOT_SUPPORTED: i32 = 10046;
/// SocketError.AddressFamilyNotSupported.
pub const APM_SOCKET_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED: i32 = 10047;
/// SocketError.AddressAlreadyInUse.
pub const APM_SOCKET_ERROR_ADDRESS_ALREADY_IN_USE: i32 = 10048;
/// SocketError.AddressNotAvailable.
pub const APM_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE: i32 = 10049;
/// SocketError.NetworkDown.
pub const APM_SOCKET_ERROR_NETWORK_DOWN: i32 = 10050;
/// SocketError.NetworkUnreachable.
pub const APM_SOCKET_ERROR_NETWORK_UNREACHABLE: i32 = 10051;
/// SocketError.NetworkReset.
pub const APM_SOCKET_ERROR_NETWORK_RESET: i32 = 10052;
/// SocketError.ConnectionAborted.
pub const APM_SOCKET_ERROR_CONNECTION_ABORTED: i32 = 10053;
/// SocketError.ConnectionReset.
pub const APM_SOCKET_ERROR_CONNECTION_RESET: i32 = 10054;
/// SocketError.NoBufferSpaceAvailable.
pub const APM_SOCKET_ERROR_NO_BUFFER_SPACE_AVAILABLE: i32 = 10055;
/// SocketError.IsConnected.
pub const APM_SOCKET_ERROR_IS_CONNECTED: i32 = 10056;
/// SocketError.NotConnected.
pub const APM_SOCKET_ERROR_NOT_CONNECTED: i32 = 10057;
/// SocketError.Shutdown (EPIPE: writing after the peer went away).
pub const APM_SOCKET_ERROR_SHUTDOWN: i32 = 10058;
/// SocketError.TimedOut.
pub const APM_SOCKET_ERROR_TIMED_OUT: i32 = 10060;
/// SocketError.ConnectionRefused.
pub const APM_SOCKET_ERROR_CONNECTION_REFUSED: i32 = 10061;
/// SocketError.HostDown.
pub const APM_SOCKET_ERROR_HOST_DOWN: i32 = 10064;
/// SocketError.HostUnreachable.
pub const APM_SOCKET_ERROR_HOST_UNREACHABLE: i32 = 10065;
/// SocketError.ProcessLimit.
pub const APM_SOCKET_ERROR_PROCESS_LIMIT: i32 = 10067;
/// SocketError.SystemNotReady.
pub const APM_SOCKET_ERROR_SYSTEM_NOT_READY: i32 = 10091;
/// SocketError.VersionNotSupported.
pub const APM_SOCKET_ERROR_VERSION_NOT_SUPPORTED: i32 = 10092;
/// SocketError.NotInitialized.
pub const APM_SOCKET_ERROR_NOT_INITIALIZED: i32 = 10093;
/// SocketError.Disconnecting.
pub const APM_SOCKET_ERROR_DISCONNECTING: i32 = 10101;
/// SocketError.TypeNotFound.
pub const APM_SOCKET_ERROR_TYPE_NOT_FOUND: i32 = 10109;
/// SocketError.HostNotFound.
pub const APM_SOCKET_ERROR_HOST_NOT_FOUND: i32 = 11001;
/// SocketError.TryAgain.
pub const APM_SOCKET_ERROR_TRY_AGAIN: i32 = 11002;
/// SocketError.NoRecovery.
pub const APM_SOCKET_ERROR_NO_RECOVERY: i32 = 11003;
/// SocketError.NoData.
pub const APM_SOCKET_ERROR_NO_DATA: i32 = 11004;

/// The library version, "MAJOR.MINOR.PATCH" (static storage; never free it). Any thread.
/// Cannot fail.
#[no_mangle]
pub extern "C" fn apm_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// The library version as `MAJOR << 16 | MINOR << 8 | PATCH`; compare with APM_VERSION_NUMBER.
/// Any thread. Cannot fail.
#[no_mangle]
pub extern "C" fn apm_version_number() -> u32 {
    let part = |s: &str| s.parse::<u32>().unwrap_or(0);
    part(env!("CARGO_PKG_VERSION_MAJOR")) << 16
        | part(env!("CARGO_PKG_VERSION_MINOR")) << 8
        | part(env!("CARGO_PKG_VERSION_PATCH"))
}

/// The C name of a status code ("APM_E_SOCKET"), or "APM_UNKNOWN". Static storage (never free
/// it); never NULL. Any thread. Cannot fail.
#[no_mangle]
pub extern "C" fn apm_status_name(status: apm_status) -> *const c_char {
    let name = code::name(status);
    // The names are static; a NUL-terminated copy of each lives in NAMES.
    NAMES.iter().find(|n| n.to_bytes() == name.as_bytes()).map_or(c"APM_UNKNOWN".as_ptr(), |n| n.as_ptr())
}

static NAMES: &[&CStr] = &[
    c"APM_OK",
    c"APM_E_ARGUMENT_NULL",
    c"APM_E_ARGUMENT_OUT_OF_RANGE",
    c"APM_E_ARGUMENT",
    c"APM_E_INVALID_OPERATION",
    c"APM_E_NOT_SUPPORTED",
    c"APM_E_OBJECT_DISPOSED",
    c"APM_E_IO",
    c"APM_E_SOCKET",
    c"APM_E_AUTHENTICATION",
    c"APM_E_INVALID_CREDENTIAL",
    c"APM_E_PROTOCOL_VIOLATION",
    c"APM_E_WEB",
    c"APM_E_FILE_NOT_FOUND",
    c"APM_E_DIRECTORY_NOT_FOUND",
    c"APM_E_PLATFORM_NOT_SUPPORTED",
    c"APM_E_TIMEOUT",
    c"APM_E_OUT_OF_MEMORY",
    c"APM_E_INTERNAL",
    c"APM_E_UNAUTHORIZED_ACCESS",
    c"APM_E_CRYPTOGRAPHIC",
];

/// Copies the message of the calling thread's last failure (the .NET exception's message, UTF-8)
/// into `buffer`, truncated to `buffer_len - 1` bytes and always NUL-terminated when
/// `buffer_len > 0`. `message_len` (optional) receives the full length without the NUL, so a
/// caller can size a second call. `buffer` may be NULL when `buffer_len` is 0. Does not change
/// the record, not even when it fails.
/// Errors: APM_E_ARGUMENT_NULL (buffer NULL with a nonzero length).
#[no_mangle]
pub unsafe extern "C" fn apm_last_error_message(
    buffer: *mut c_char,
    buffer_len: usize,
    message_len: *mut usize,
) -> apm_status {
    let text = error::with_last(|e| e.map(|e| e.message.clone()).unwrap_or_default());
    match copy_text(&text, buffer, buffer_len, message_len) {
        Ok(()) => code::OK,
        Err(e) => e.status,
    }
}

/// Like `apm_last_error_message`, for the inner error's message (the SocketException under an
/// IOException, OpenSSL's or GSSAPI's reason); empty when there is none.
/// Errors: as apm_last_error_message.
#[no_mangle]
pub unsafe extern "C" fn apm_last_error_inner_message(
    buffer: *mut c_char,
    buffer_len: usize,
    message_len: *mut usize,
) -> apm_status {
    let text = error::with_last(|e| e.and_then(|e| e.inner.clone()).unwrap_or_default());
    match copy_text(&text, buffer, buffer_len, message_len) {
        Ok(()) => code::OK,
        Err(e) => e.status,
    }
}

/// The status of the calling thread's last failure: a negative APM_E_* code, or APM_OK when none
/// was recorded. Does not change the record. Cannot fail.
#[no_mangle]
pub extern "C" fn apm_last_error_status() -> apm_status {
    error::with_last(|e| e.map_or(code::OK, |e| e.status))
}

/// The .NET SocketError value of the calling thread's last failure's SocketException (own or
/// inner); 0 if none. Cannot fail.
#[no_mangle]
pub extern "C" fn apm_last_error_socket_error() -> i32 {
    error::with_last(|e| e.map_or(0, |e| e.socket_error))
}

/// The errno behind the calling thread's last failure; 0 if none. Cannot fail.
#[no_mangle]
pub extern "C" fn apm_last_error_errno() -> i32 {
    error::with_last(|e| e.map_or(0, |e| e.errno))
}

/// The WebExceptionStatus of the calling thread's last failure (HTTP); 0 (Success) if none.
/// Cannot fail.
#[no_mangle]
pub extern "C" fn apm_last_error_web_status() -> i32 {
    error::with_last(|e| e.map_or(0, |e| e.web_status))
}

/// The HTTP status code of the calling thread's last failure's response; 0 if none.
/// Cannot fail.
#[no_mangle]
pub extern "C" fn apm_last_error_http_status() -> i32 {
    error::with_last(|e| e.map_or(0, |e| e.http_status))
}

/// Clears the calling thread's last-error record.
/// Errors: none (always APM_OK).
#[no_mangle]
pub extern "C" fn apm_last_error_clear() -> apm_status {
    boundary!({
        error::clear();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_c_constants_are_the_core_codes() {
        let pairs = [
            (APM_OK, code::OK),
            (APM_E_ARGUMENT_NULL, code::ARGUMENT_NULL),
            (APM_E_ARGUMENT_OUT_OF_RANGE, code::ARGUMENT_OUT_OF_RANGE),
            (APM_E_ARGUMENT, code::ARGUMENT),
            (APM_E_INVALID_OPERATION, code::INVALID_OPERATION),
            (APM_E_NOT_SUPPORTED, code::NOT_SUPPORTED),
            (APM_E_OBJECT_DISPOSED, code::OBJECT_DISPOSED),
            (APM_E_IO, code::IO),
            (APM_E_SOCKET, code::SOCKET),
            (APM_E_AUTHENTICATION, code::AUTHENTICATION),
            (APM_E_INVALID_CREDENTIAL, code::INVALID_CREDENTIAL),
            (APM_E_PROTOCOL_VIOLATION, code::PROTOCOL_VIOLATION),
            (APM_E_WEB, code::WEB),
            (APM_E_FILE_NOT_FOUND, code::FILE_NOT_FOUND),
            (APM_E_DIRECTORY_NOT_FOUND, code::DIRECTORY_NOT_FOUND),
            (APM_E_PLATFORM_NOT_SUPPORTED, code::PLATFORM_NOT_SUPPORTED),
            (APM_E_TIMEOUT, code::TIMEOUT),
            (APM_E_OUT_OF_MEMORY, code::OUT_OF_MEMORY),
            (APM_E_INTERNAL, code::INTERNAL),
            (APM_E_UNAUTHORIZED_ACCESS, code::UNAUTHORIZED_ACCESS),
            (APM_E_CRYPTOGRAPHIC, code::CRYPTOGRAPHIC),
        ];
        for (c, core) in pairs {
            assert_eq!(c, core);
            // SAFETY: static NUL-terminated names.
            let name = unsafe { CStr::from_ptr(apm_status_name(c)) }.to_str().unwrap();
            assert_eq!(name, code::name(c));
        }
        assert_eq!(NAMES.len(), pairs.len());
    }

    /// How many `pub const` lines of this file start with `prefix`: a constant added to the C
    /// surface without its pair below makes the walk incomplete, and the test fails.
    fn declared(prefix: &str) -> usize {
        include_str!("status.rs").lines().filter(|l| l.starts_with(&format!("pub const {prefix}"))).count()
    }

    #[test]
    fn every_socket_error_constant_is_the_core_value() {
        use crate::error::socket_error as se;
        let pairs = [
            (APM_SOCKET_ERROR_SUCCESS, se::SUCCESS),
            (APM_SOCKET_ERROR_SOCKET_ERROR, se::SOCKET_ERROR),
            (APM_SOCKET_ERROR_OPERATION_ABORTED, se::OPERATION_ABORTED),
            (APM_SOCKET_ERROR_IO_PENDING, se::IO_PENDING),
            (APM_SOCKET_ERROR_INTERRUPTED, se::INTERRUPTED),
            (APM_SOCKET_ERROR_ACCESS_DENIED, se::ACCESS_DENIED),
            (APM_SOCKET_ERROR_FAULT, se::FAULT),
            (APM_SOCKET_ERROR_INVALID_ARGUMENT, se::INVALID_ARGUMENT),
            (APM_SOCKET_ERROR_TOO_MANY_OPEN_SOCKETS, se::TOO_MANY_OPEN_SOCKETS),
            (APM_SOCKET_ERROR_WOULD_BLOCK, se::WOULD_BLOCK),
            (APM_SOCKET_ERROR_IN_PROGRESS, se::IN_PROGRESS),
            (APM_SOCKET_ERROR_ALREADY_IN_PROGRESS, se::ALREADY_IN_PROGRESS),
            (APM_SOCKET_ERROR_NOT_SOCKET, se::NOT_SOCKET),
            (APM_SOCKET_ERROR_DESTINATION_ADDRESS_REQUIRED, se::DESTINATION_ADDRESS_REQUIRED),
            (APM_SOCKET_ERROR_MESSAGE_SIZE, se::MESSAGE_SIZE),
            (APM_SOCKET_ERROR_PROTOCOL_TYPE, se::PROTOCOL_TYPE),
            (APM_SOCKET_ERROR_PROTOCOL_OPTION, se::PROTOCOL_OPTION),
            (APM_SOCKET_ERROR_PROTOCOL_NOT_SUPPORTED, se::PROTOCOL_NOT_SUPPORTED),
            (APM_SOCKET_ERROR_SOCKET_NOT_SUPPORTED, se::SOCKET_NOT_SUPPORTED),
            (APM_SOCKET_ERROR_OPERATION_NOT_SUPPORTED, se::OPERATION_NOT_SUPPORTED),
            (APM_SOCKET_ERROR_PROTOCOL_FAMILY_NOT_SUPPORTED, se::PROTOCOL_FAMILY_NOT_SUPPORTED),
            (APM_SOCKET_ERROR_ADDRESS_FAMILY_NOT_SUPPORTED, se::ADDRESS_FAMILY_NOT_SUPPORTED),
            (APM_SOCKET_ERROR_ADDRESS_ALREADY_IN_USE, se::ADDRESS_ALREADY_IN_USE),
            (APM_SOCKET_ERROR_ADDRESS_NOT_AVAILABLE, se::ADDRESS_NOT_AVAILABLE),
            (APM_SOCKET_ERROR_NETWORK_DOWN, se::NETWORK_DOWN),
            (APM_SOCKET_ERROR_NETWORK_UNREACHABLE, se::NETWORK_UNREACHABLE),
            (APM_SOCKET_ERROR_NETWORK_RESET, se::NETWORK_RESET),
            (APM_SOCKET_ERROR_CONNECTION_ABORTED, se::CONNECTION_ABORTED),
            (APM_SOCKET_ERROR_CONNECTION_RESET, se::CONNECTION_RESET),
            (APM_SOCKET_ERROR_NO_BUFFER_SPACE_AVAILABLE, se::NO_BUFFER_SPACE_AVAILABLE),
            (APM_SOCKET_ERROR_IS_CONNECTED, se::IS_CONNECTED),
            (APM_SOCKET_ERROR_NOT_CONNECTED, se::NOT_CONNECTED),
            (APM_SOCKET_ERROR_SHUTDOWN, se::SHUTDOWN),
            (APM_SOCKET_ERROR_TIMED_OUT, se::TIMED_OUT),
            (APM_SOCKET_ERROR_CONNECTION_REFUSED, se::CONNECTION_REFUSED),
            (APM_SOCKET_ERROR_HOST_DOWN, se::HOST_DOWN),
            (APM_SOCKET_ERROR_HOST_UNREACHABLE, se::HOST_UNREACHABLE),
            (APM_SOCKET_ERROR_DISCONNECTING, se::DISCONNECTING),
            (APM_SOCKET_ERROR_HOST_NOT_FOUND, se::HOST_NOT_FOUND),
            (APM_SOCKET_ERROR_NO_DATA, se::NO_DATA),
        ];
        for (c, core) in pairs {
            assert_eq!(c, core);
        }
        // The rest of .NET's SocketError enum: no errno maps to them, so the core has no value to
        // tie them to (error::socket_error holds only what it reports).
        let c_only = [
            APM_SOCKET_ERROR_PROCESS_LIMIT,
            APM_SOCKET_ERROR_SYSTEM_NOT_READY,
            APM_SOCKET_ERROR_VERSION_NOT_SUPPORTED,
            APM_SOCKET_ERROR_NOT_INITIALIZED,
            APM_SOCKET_ERROR_TYPE_NOT_FOUND,
            APM_SOCKET_ERROR_TRY_AGAIN,
            APM_SOCKET_ERROR_NO_RECOVERY,
        ];
        assert_eq!(pairs.len() + c_only.len(), declared("APM_SOCKET_ERROR_"));
        // Distinct values, so no constant was pasted with another's number.
        let mut all: Vec<i32> = pairs.iter().map(|p| p.0).chain(c_only).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), declared("APM_SOCKET_ERROR_"));
    }

    #[test]
    fn every_enum_constant_is_the_core_value() {
        use crate::net::*;
        let groups: [(&str, &[(i32, i32)]); 6] = [
            (
                "APM_ADDRESS_FAMILY_",
                &[
                    (APM_ADDRESS_FAMILY_INTER_NETWORK, address_family::INTER_NETWORK),
                    (APM_ADDRESS_FAMILY_INTER_NETWORK_V6, address_family::INTER_NETWORK_V6),
                ],
            ),
            (
                "APM_SOCKET_TYPE_",
                &[(APM_SOCKET_TYPE_STREAM, socket_type::STREAM), (APM_SOCKET_TYPE_DGRAM, socket_type::DGRAM)],
            ),
            ("APM_PROTOCOL_TYPE_", &[(APM_PROTOCOL_TYPE_TCP, protocol_type::TCP)]),
            (
                "APM_SOCKET_SHUTDOWN_",
                &[
                    (APM_SOCKET_SHUTDOWN_RECEIVE, socket_shutdown::RECEIVE),
                    (APM_SOCKET_SHUTDOWN_SEND, socket_shutdown::SEND),
                    (APM_SOCKET_SHUTDOWN_BOTH, socket_shutdown::BOTH),
                ],
            ),
            (
                "APM_TRANSMIT_FILE_",
                &[
                    // UseDefaultWorkerThread is no flag: the absence of all of them.
                    (APM_TRANSMIT_FILE_USE_DEFAULT_WORKER_THREAD, 0),
                    (APM_TRANSMIT_FILE_DISCONNECT, transmit_file_options::DISCONNECT),
                    (APM_TRANSMIT_FILE_REUSE_SOCKET, transmit_file_options::REUSE_SOCKET),
                    (APM_TRANSMIT_FILE_WRITE_BEHIND, transmit_file_options::WRITE_BEHIND),
                    (APM_TRANSMIT_FILE_USE_SYSTEM_THREAD, transmit_file_options::USE_SYSTEM_THREAD),
                    (APM_TRANSMIT_FILE_USE_KERNEL_APC, transmit_file_options::USE_KERNEL_APC),
                ],
            ),
            (
                "APM_FILE_ACCESS_",
                &[
                    (APM_FILE_ACCESS_READ, file_access::READ),
                    (APM_FILE_ACCESS_WRITE, file_access::WRITE),
                    (APM_FILE_ACCESS_READ_WRITE, file_access::READ_WRITE),
                ],
            ),
        ];
        for (prefix, pairs) in groups {
            for &(c, core) in pairs {
                assert_eq!(c, core, "{prefix}");
            }
            assert_eq!(pairs.len(), declared(prefix), "{prefix}");
        }
        // Every flag the core knows has its C constant.
        let flags = [
            APM_TRANSMIT_FILE_DISCONNECT,
            APM_TRANSMIT_FILE_REUSE_SOCKET,
            APM_TRANSMIT_FILE_WRITE_BEHIND,
            APM_TRANSMIT_FILE_USE_SYSTEM_THREAD,
            APM_TRANSMIT_FILE_USE_KERNEL_APC,
        ];
        assert_eq!(flags.iter().fold(0, |a, f| a | f), transmit_file_options::ALL);
    }
}
