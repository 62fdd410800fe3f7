//! The error model: one status code per .NET exception kind, and the failure record that carries
//! the .NET message text, the SocketError value, errno and the inner exception's message.
//!
//! The record of the last failure is thread-local: every failing C call stores it before returning,
//! and End stores the operation's outcome, so it is read on the thread that called End.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

/// A status code, one per .NET exception kind (the C surface returns it as is).
pub(crate) type Status = i32;

/// The status codes, one per .NET exception kind. Append-only: numbers are never reused.
pub mod code {
    use super::Status;
    pub(crate) const OK: Status = 0;
    pub(crate) const ARGUMENT_NULL: Status = -1;
    pub(crate) const ARGUMENT_OUT_OF_RANGE: Status = -2;
    pub(crate) const ARGUMENT: Status = -3;
    pub(crate) const INVALID_OPERATION: Status = -4;
    pub(crate) const NOT_SUPPORTED: Status = -5;
    pub(crate) const OBJECT_DISPOSED: Status = -6;
    pub(crate) const IO: Status = -7;
    pub(crate) const SOCKET: Status = -8;
    pub(crate) const AUTHENTICATION: Status = -9;
    pub(crate) const INVALID_CREDENTIAL: Status = -10;
    pub(crate) const PROTOCOL_VIOLATION: Status = -11;
    pub(crate) const WEB: Status = -12;
    pub(crate) const FILE_NOT_FOUND: Status = -13;
    pub(crate) const DIRECTORY_NOT_FOUND: Status = -14;
    pub(crate) const PLATFORM_NOT_SUPPORTED: Status = -15;
    pub(crate) const TIMEOUT: Status = -16;
    pub(crate) const OUT_OF_MEMORY: Status = -17;
    pub(crate) const INTERNAL: Status = -18;
    pub(crate) const UNAUTHORIZED_ACCESS: Status = -19;
    pub(crate) const CRYPTOGRAPHIC: Status = -20;

    /// The C name of a status code, for logs and wrappers.
    pub fn name(status: Status) -> &'static str {
        match status {
            OK => "APM_OK",
            ARGUMENT_NULL => "APM_E_ARGUMENT_NULL",
            ARGUMENT_OUT_OF_RANGE => "APM_E_ARGUMENT_OUT_OF_RANGE",
            ARGUMENT => "APM_E_ARGUMENT",
            INVALID_OPERATION => "APM_E_INVALID_OPERATION",
            NOT_SUPPORTED => "APM_E_NOT_SUPPORTED",
            OBJECT_DISPOSED => "APM_E_OBJECT_DISPOSED",
            IO => "APM_E_IO",
            SOCKET => "APM_E_SOCKET",
            AUTHENTICATION => "APM_E_AUTHENTICATION",
            INVALID_CREDENTIAL => "APM_E_INVALID_CREDENTIAL",
            PROTOCOL_VIOLATION => "APM_E_PROTOCOL_VIOLATION",
            WEB => "APM_E_WEB",
            FILE_NOT_FOUND => "APM_E_FILE_NOT_FOUND",
            DIRECTORY_NOT_FOUND => "APM_E_DIRECTORY_NOT_FOUND",
            PLATFORM_NOT_SUPPORTED => "APM_E_PLATFORM_NOT_SUPPORTED",
            TIMEOUT => "APM_E_TIMEOUT",
            OUT_OF_MEMORY => "APM_E_OUT_OF_MEMORY",
            INTERNAL => "APM_E_INTERNAL",
            UNAUTHORIZED_ACCESS => "APM_E_UNAUTHORIZED_ACCESS",
            CRYPTOGRAPHIC => "APM_E_CRYPTOGRAPHIC",
            _ => "APM_UNKNOWN",
        }
    }
}

/// .NET's `SocketError` values (System.Net.Primitives) that errno maps to; the whole table is in
/// the C header (`APM_SOCKET_ERROR_*`).
pub mod socket_error {
    pub(crate) const SUCCESS: i32 = 0;
    pub(crate) const SOCKET_ERROR: i32 = -1;
    pub(crate) const OPERATION_ABORTED: i32 = 995;
    pub(crate) const IO_PENDING: i32 = 997;
    pub(crate) const INTERRUPTED: i32 = 10004;
    pub(crate) const ACCESS_DENIED: i32 = 10013;
    pub(crate) const FAULT: i32 = 10014;
    pub(crate) const INVALID_ARGUMENT: i32 = 10022;
    pub(crate) const TOO_MANY_OPEN_SOCKETS: i32 = 10024;
    pub(crate) const WOULD_BLOCK: i32 = 10035;
    pub(crate) const IN_PROGRESS: i32 = 10036;
    pub(crate) const ALREADY_IN_PROGRESS: i32 = 10037;
    pub(crate) const NOT_SOCKET: i32 = 10038;
    pub(crate) const DESTINATION_ADDRESS_REQUIRED: i32 = 10039;
    pub(crate) const MESSAGE_SIZE: i32 = 10040;
    pub(crate) const PROTOCOL_TYPE: i32 = 10041;
    pub(crate) const PROTOCOL_OPTION: i32 = 10042;
    pub(crate) const PROTOCOL_NOT_SUPPORTED: i32 = 10043;
    pub(crate) const SOCKET_NOT_SUPPORTED: i32 = 10044;
    pub(crate) const OPERATION_NOT_SUPPORTED: i32 = 10045;
    pub(crate) const PROTOCOL_FAMILY_NOT_SUPPORTED: i32 = 10046;
    pub(crate) const ADDRESS_FAMILY_NOT_SUPPORTED: i32 = 10047;
    pub(crate) const ADDRESS_ALREADY_IN_USE: i32 = 10048;
    pub(crate) const ADDRESS_NOT_AVAILABLE: i32 = 10049;
    pub(crate) const NETWORK_DOWN: i32 = 10050;
    pub(crate) const NETWORK_UNREACHABLE: i32 = 10051;
    pub(crate) const NETWORK_RESET: i32 = 10052;
    pub(crate) const CONNECTION_ABORTED: i32 = 10053;
    pub(crate) const CONNECTION_RESET: i32 = 10054;
    pub(crate) const NO_BUFFER_SPACE_AVAILABLE: i32 = 10055;
    pub(crate) const IS_CONNECTED: i32 = 10056;
    pub(crate) const NOT_CONNECTED: i32 = 10057;
    pub(crate) const SHUTDOWN: i32 = 10058;
    pub(crate) const TIMED_OUT: i32 = 10060;
    pub(crate) const CONNECTION_REFUSED: i32 = 10061;
    pub(crate) const HOST_DOWN: i32 = 10064;
    pub(crate) const HOST_UNREACHABLE: i32 = 10065;
    pub(crate) const DISCONNECTING: i32 = 10101;
    pub(crate) const HOST_NOT_FOUND: i32 = 11001;
    pub(crate) const NO_DATA: i32 = 11004;

    /// errno -> SocketError, as .NET's SocketErrorPal.Unix maps it.
    pub fn from_errno(errno: i32) -> i32 {
        use libc::*;
        match errno {
            0 => SUCCESS,
            EACCES => ACCESS_DENIED,
            EADDRINUSE => ADDRESS_ALREADY_IN_USE,
            EADDRNOTAVAIL | ENOENT => ADDRESS_NOT_AVAILABLE,
            EAFNOSUPPORT => ADDRESS_FAMILY_NOT_SUPPORTED,
            EAGAIN => WOULD_BLOCK,
            EALREADY => ALREADY_IN_PROGRESS,
            EBADF | EINVAL => INVALID_ARGUMENT,
            ECANCELED => OPERATION_ABORTED,
            ECONNABORTED => CONNECTION_ABORTED,
            ECONNREFUSED => CONNECTION_REFUSED,
            ECONNRESET => CONNECTION_RESET,
            EDESTADDRREQ => DESTINATION_ADDRESS_REQUIRED,
            EFAULT => FAULT,
            EHOSTDOWN => HOST_DOWN,
            ENXIO => HOST_NOT_FOUND,
            EHOSTUNREACH => HOST_UNREACHABLE,
            EINPROGRESS => IN_PROGRESS,
            EINTR => INTERRUPTED,
            EISCONN => IS_CONNECTED,
            EMFILE | ENFILE => TOO_MANY_OPEN_SOCKETS,
            EMSGSIZE => MESSAGE_SIZE,
            ENETDOWN => NETWORK_DOWN,
            ENETRESET => NETWORK_RESET,
            ENETUNREACH => NETWORK_UNREACHABLE,
            ENOBUFS => NO_BUFFER_SPACE_AVAILABLE,
            ENODATA => NO_DATA,
            ENOPROTOOPT => PROTOCOL_OPTION,
            ENOTCONN => NOT_CONNECTED,
            ENOTSOCK => NOT_SOCKET,
            ENOTSUP => OPERATION_NOT_SUPPORTED,
            EPIPE => SHUTDOWN,
            EPFNOSUPPORT => PROTOCOL_FAMILY_NOT_SUPPORTED,
            EPROTONOSUPPORT => PROTOCOL_NOT_SUPPORTED,
            EPROTOTYPE => PROTOCOL_TYPE,
            ESOCKTNOSUPPORT => SOCKET_NOT_SUPPORTED,
            ESHUTDOWN => DISCONNECTING,
            ETIMEDOUT => TIMED_OUT,
            _ => SOCKET_ERROR,
        }
    }
}

/// The exact message texts of .NET's resources that this library reports.
pub mod msg {
    pub(crate) const NOT_CONNECTED: &str = "The operation is not allowed on non-connected sockets.";
    pub(crate) const MUST_BIND: &str = "You must call the Bind method before performing this operation.";
    pub(crate) const MUST_LISTEN: &str = "You must call the Listen method before performing this operation.";
    pub(crate) const MUST_NOT_LISTEN: &str = "You may not perform this operation after calling the Listen method.";
    pub(crate) const READ_ONLY_STREAM: &str = "The stream does not support writing.";
    pub(crate) const WRITE_ONLY_STREAM: &str = "The stream does not support reading.";
    pub(crate) const INVALID_ASYNC_RESULT: &str =
        "The IAsyncResult object was not returned from the corresponding asynchronous method on this class.";
    pub(crate) const DISCONNECTED_RECONNECT: &str = "Once the socket has been disconnected, you can only reconnect again asynchronously, and only to a different EndPoint. BeginConnect must be called on a thread that won't exit until the operation has been completed.";
}

/// One failure: what a .NET exception would carry (its fields are `Failure`'s). Boxed, so that
/// a `Result` here is two words rather than the ninety bytes of the fields: every operation's
/// outcome passes through several layers by value, and failing is the rare case.
#[derive(Clone, PartialEq, Eq)]
pub struct Error(Box<Failure>);

/// What an `Error` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: Status,
    pub message: String,
    /// .NET SocketError value of the (inner) SocketException; 0 when there is none.
    pub socket_error: i32,
    /// The errno behind the failure; 0 when there is none.
    pub errno: i32,
    /// The inner exception's message (the SocketException under an IOException, OpenSSL's reason).
    pub inner: Option<String>,
    /// WebExceptionStatus (HTTP); 0 = Success.
    pub web_status: i32,
    /// HTTP status code of a failed response; 0 when there is none.
    pub http_status: i32,
    /// An object the failure carries: the response of a WebException (ProtocolError).
    pub attachment: Option<Attachment>,
}

/// An object an error carries (.NET's WebException.Response), type-erased so that this leaf names
/// no class. Two errors are equal when they carry the same object.
#[derive(Clone)]
pub struct Attachment(pub Arc<dyn Any + Send + Sync>);

impl PartialEq for Attachment {
    fn eq(&self, other: &Attachment) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.0), Arc::as_ptr(&other.0))
    }
}

impl Eq for Attachment {}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Attachment")
    }
}

pub type Result<T> = std::result::Result<T, Error>;

impl std::ops::Deref for Error {
    type Target = Failure;
    fn deref(&self) -> &Failure {
        &self.0
    }
}

impl std::ops::DerefMut for Error {
    fn deref_mut(&mut self) -> &mut Failure {
        &mut self.0
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Error {
    pub fn new(status: Status, message: impl Into<String>) -> Error {
        Error(Box::new(Failure {
            status,
            message: message.into(),
            socket_error: 0,
            errno: 0,
            inner: None,
            web_status: 0,
            http_status: 0,
            attachment: None,
        }))
    }

    /// This error with some of its fields set by `f`.
    pub fn with(mut self, f: impl FnOnce(&mut Failure)) -> Error {
        f(&mut self.0);
        self
    }

    /// This error with its inner exception's message.
    pub fn with_inner(self, inner: impl Into<String>) -> Error {
        self.with(|e| e.inner = Some(inner.into()))
    }

    pub fn argument_null(param: &str) -> Error {
        Error::new(code::ARGUMENT_NULL, format!("Value cannot be null. (Parameter '{param}')"))
    }

    pub fn out_of_range(param: &str) -> Error {
        Error::new(
            code::ARGUMENT_OUT_OF_RANGE,
            format!("Specified argument was out of the range of valid values. (Parameter '{param}')"),
        )
    }

    pub fn argument(message: impl Into<String>) -> Error {
        Error::new(code::ARGUMENT, message)
    }

    pub fn invalid_operation(message: impl Into<String>) -> Error {
        Error::new(code::INVALID_OPERATION, message)
    }

    pub fn not_supported(message: impl Into<String>) -> Error {
        Error::new(code::NOT_SUPPORTED, message)
    }

    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(code::INTERNAL, message)
    }

    /// ObjectDisposedException for the .NET class `object_name`.
    pub fn disposed(object_name: &str) -> Error {
        Error::new(code::OBJECT_DISPOSED, format!("Cannot access a disposed object.\nObject name: '{object_name}'."))
    }

    /// "EndXxx can only be called once for each asynchronous operation."
    pub fn end_called_twice(end_method: &str) -> Error {
        Error::invalid_operation(format!("{end_method} can only be called once for each asynchronous operation."))
    }

    /// A SocketException from an errno: its message is the OS text, as on .NET for Unix.
    pub fn socket(errno: i32) -> Error {
        Error::new(code::SOCKET, strerror(errno)).with(|e| {
            e.socket_error = socket_error::from_errno(errno);
            e.errno = errno;
        })
    }

    /// A SocketException for a SocketError value that has no errno of its own.
    pub fn socket_code(socket_error: i32, message: impl Into<String>) -> Error {
        Error::new(code::SOCKET, message).with(|e| e.socket_error = socket_error)
    }

    /// The last OS error as a SocketException.
    pub fn last_os() -> Error {
        Error::socket(errno())
    }

    /// An operation cancelled because its socket was closed or the runtime shut down.
    pub fn aborted() -> Error {
        Error::socket(libc::ECANCELED)
    }

    /// NetworkStream's wrapping of any failure of a transfer (a SocketException, the socket's
    /// ObjectDisposedException) into an IOException, keeping the inner error's code and errno.
    /// An IOException is passed through unchanged.
    pub fn into_io(self, writing: bool) -> Error {
        if self.status == code::IO {
            return self;
        }
        let what = if writing {
            "Unable to write data to the transport connection"
        } else {
            "Unable to read data from the transport connection"
        };
        let message = format!("{what}: {}.", self.message.trim_end_matches('.'));
        self.with(|e| {
            e.status = code::IO;
            e.inner = Some(std::mem::replace(&mut e.message, message));
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", code::name(self.status), self.message)
    }
}

impl std::error::Error for Error {}

/// The calling thread's errno.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The OS text for an errno, without Rust's " (os error N)" suffix.
pub fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

thread_local! {
    static LAST: RefCell<Option<Error>> = const { RefCell::new(None) };
}

/// Records `error` as the calling thread's last failure and returns its status.
pub fn record(error: Error) -> Status {
    let status = error.status;
    LAST.with(|last| *last.borrow_mut() = Some(error));
    status
}

/// Forgets the calling thread's last failure.
pub fn clear() {
    LAST.with(|last| *last.borrow_mut() = None);
}

/// Reads the calling thread's last failure.
pub fn with_last<R>(f: impl FnOnce(Option<&Error>) -> R) -> R {
    LAST.with(|last| f(last.borrow().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_errors_map_like_dotnet() {
        let e = Error::socket(libc::ECONNREFUSED);
        assert_eq!(e.status, code::SOCKET);
        assert_eq!(e.socket_error, socket_error::CONNECTION_REFUSED);
        assert_eq!(e.message, "Connection refused");
        assert_eq!(socket_error::from_errno(libc::EPIPE), socket_error::SHUTDOWN);
        assert_eq!(socket_error::from_errno(libc::EBADF), socket_error::INVALID_ARGUMENT);
        assert_eq!(socket_error::from_errno(12345), socket_error::SOCKET_ERROR);
    }

    #[test]
    fn io_wrapping_keeps_the_inner_socket_error() {
        let e = Error::socket(libc::ECONNRESET).into_io(true);
        assert_eq!(e.status, code::IO);
        assert_eq!(e.message, "Unable to write data to the transport connection: Connection reset by peer.");
        assert_eq!(e.inner.as_deref(), Some("Connection reset by peer"));
        assert_eq!(e.socket_error, socket_error::CONNECTION_RESET);
        assert_eq!(e.errno, libc::ECONNRESET);
    }

    #[test]
    fn the_record_is_per_thread() {
        record(Error::invalid_operation("here"));
        std::thread::spawn(|| with_last(|e| assert!(e.is_none()))).join().unwrap();
        with_last(|e| assert_eq!(e.unwrap().message, "here"));
    }
}
