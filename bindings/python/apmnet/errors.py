"""Exceptions named for the .NET exception kinds the library's status codes stand for.

Every exception raised for a failed library call derives from :class:`ApmError` and carries what the
library recorded for the failure on the calling thread: ``status`` (a :class:`Status`), ``message``
(the .NET message text), ``inner_message``, ``socket_error_code`` (a :class:`SocketError`, 0 if none),
``errno`` (0 if none), ``web_status`` and ``http_status``.

Where Python already has a built-in of the natural name (``IOError``, ``FileNotFoundError``,
``TimeoutError``) or the name is taken by an enumeration (``SocketError``), the class keeps the .NET
name (``IOException``, ``FileNotFoundException``, ``TimeoutException``, ``SocketException``) and also
derives from the matching built-in, so ``except OSError`` / ``except FileNotFoundError`` work as well.
"""

from __future__ import annotations

import enum
from typing import Optional, Union

from .enums import SocketError

__all__ = [
    "Status",
    "ApmError",
    "ArgumentError",
    "ArgumentNullError",
    "ArgumentOutOfRangeError",
    "InvalidOperationError",
    "ObjectDisposedError",
    "NotSupportedError",
    "PlatformNotSupportedError",
    "IOException",
    "SocketException",
    "AuthenticationError",
    "InvalidCredentialError",
    "ProtocolViolationError",
    "WebError",
    "FileNotFoundException",
    "DirectoryNotFoundException",
    "TimeoutException",
    "OutOfMemoryError",
    "InternalError",
    "UnauthorizedAccessError", "CryptographicError",
]


class Status(enum.IntEnum):
    """``apm_status`` values (``APM_OK``, ``APM_E_*``)."""

    OK = 0
    ARGUMENT_NULL = -1
    ARGUMENT_OUT_OF_RANGE = -2
    ARGUMENT = -3
    INVALID_OPERATION = -4
    NOT_SUPPORTED = -5
    OBJECT_DISPOSED = -6
    IO = -7
    SOCKET = -8
    AUTHENTICATION = -9
    INVALID_CREDENTIAL = -10
    PROTOCOL_VIOLATION = -11
    WEB = -12
    FILE_NOT_FOUND = -13
    DIRECTORY_NOT_FOUND = -14
    PLATFORM_NOT_SUPPORTED = -15
    TIMEOUT = -16
    OUT_OF_MEMORY = -17
    INTERNAL = -18
    UNAUTHORIZED_ACCESS = -19
    CRYPTOGRAPHIC = -20


def _socket_error(value: int) -> Union[SocketError, int]:
    try:
        return SocketError(value)
    except ValueError:
        return value


class ApmError(Exception):
    """Base class of every error reported by the apmnet library."""

    def __init__(self, message: str, status: Optional[int] = None, *, inner_message: str = "",
                 socket_error_code: int = 0, errno: int = 0, web_status: int = 0,
                 http_status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.inner_message = inner_message
        self.socket_error_code = _socket_error(socket_error_code)
        # OSError subclasses have an errno slot of their own; this sets either.
        self.errno: Optional[int] = errno
        self.web_status = web_status
        self.http_status = http_status

    def __str__(self) -> str:
        return self.message


class ArgumentError(ApmError, ValueError):
    """System.ArgumentException (APM_E_ARGUMENT)."""


class ArgumentNullError(ArgumentError):
    """System.ArgumentNullException (APM_E_ARGUMENT_NULL)."""


class ArgumentOutOfRangeError(ArgumentError):
    """System.ArgumentOutOfRangeException (APM_E_ARGUMENT_OUT_OF_RANGE)."""


class InvalidOperationError(ApmError, RuntimeError):
    """System.InvalidOperationException (APM_E_INVALID_OPERATION)."""


class ObjectDisposedError(InvalidOperationError):
    """System.ObjectDisposedException (APM_E_OBJECT_DISPOSED)."""


class NotSupportedError(ApmError):
    """System.NotSupportedException (APM_E_NOT_SUPPORTED)."""


class PlatformNotSupportedError(NotSupportedError):
    """System.PlatformNotSupportedException (APM_E_PLATFORM_NOT_SUPPORTED)."""


class IOException(ApmError, OSError):
    """System.IO.IOException (APM_E_IO).

    When the failure came from the socket, ``socket_error_code``/``errno`` are the inner
    SocketException's and ``__cause__`` is that :class:`SocketException` (``inner_message``).
    """


class SocketException(ApmError, OSError):
    """System.Net.Sockets.SocketException (APM_E_SOCKET): ``socket_error_code`` and ``errno``."""


class AuthenticationError(ApmError):
    """System.Security.Authentication.AuthenticationException (APM_E_AUTHENTICATION)."""


class InvalidCredentialError(AuthenticationError):
    """System.Security.Authentication.InvalidCredentialException (APM_E_INVALID_CREDENTIAL)."""


class ProtocolViolationError(InvalidOperationError):
    """System.Net.ProtocolViolationException (APM_E_PROTOCOL_VIOLATION)."""


class WebError(InvalidOperationError):
    """System.Net.WebException (APM_E_WEB): ``web_status`` (a WebExceptionStatus number) and
    ``http_status``; ``response`` is the :class:`apmnet.HttpWebResponse` of a ProtocolError (its
    body readable), else None."""

    response = None


class FileNotFoundException(IOException, FileNotFoundError):
    """System.IO.FileNotFoundException (APM_E_FILE_NOT_FOUND)."""


class DirectoryNotFoundException(IOException, FileNotFoundError):
    """System.IO.DirectoryNotFoundException (APM_E_DIRECTORY_NOT_FOUND)."""


class TimeoutException(ApmError, TimeoutError):
    """System.TimeoutException (APM_E_TIMEOUT)."""


class OutOfMemoryError(ApmError, MemoryError):
    """System.OutOfMemoryException (APM_E_OUT_OF_MEMORY)."""


class InternalError(ApmError):
    """A bug inside the library (APM_E_INTERNAL, e.g. a caught panic)."""


class UnauthorizedAccessError(ApmError, PermissionError):
    """System.UnauthorizedAccessException (APM_E_UNAUTHORIZED_ACCESS)."""


class CryptographicError(ApmError):
    """System.Security.Cryptography.CryptographicException (APM_E_CRYPTOGRAPHIC): a certificate
    one of whose fields cannot be read."""


EXCEPTION_FOR_STATUS = {
    Status.ARGUMENT_NULL: ArgumentNullError,
    Status.ARGUMENT_OUT_OF_RANGE: ArgumentOutOfRangeError,
    Status.ARGUMENT: ArgumentError,
    Status.INVALID_OPERATION: InvalidOperationError,
    Status.NOT_SUPPORTED: NotSupportedError,
    Status.OBJECT_DISPOSED: ObjectDisposedError,
    Status.IO: IOException,
    Status.SOCKET: SocketException,
    Status.AUTHENTICATION: AuthenticationError,
    Status.INVALID_CREDENTIAL: InvalidCredentialError,
    Status.PROTOCOL_VIOLATION: ProtocolViolationError,
    Status.WEB: WebError,
    Status.FILE_NOT_FOUND: FileNotFoundException,
    Status.DIRECTORY_NOT_FOUND: DirectoryNotFoundException,
    Status.PLATFORM_NOT_SUPPORTED: PlatformNotSupportedError,
    Status.TIMEOUT: TimeoutException,
    Status.OUT_OF_MEMORY: OutOfMemoryError,
    Status.INTERNAL: InternalError,
    Status.UNAUTHORIZED_ACCESS: UnauthorizedAccessError,
    Status.CRYPTOGRAPHIC: CryptographicError,
}
