"""apmnet: .NET System.Net's asynchronous network streams (Begin/End) for Python, over libapmnet.

    import apmnet
    with apmnet.Socket() as sock:
        sock.connect("127.0.0.1", 8080)
        with apmnet.NetworkStream(sock) as stream:
            stream.end_write(stream.begin_write(b"hello"))

    with apmnet.Socket() as sock:
        sock.connect("127.0.0.1", 8443)
        with apmnet.SslStream(apmnet.NetworkStream(sock)) as tls:
            tls.authenticate_as_client("localhost")
            tls.write(b"hello")

    async with await apmnet.aio.open_connection("127.0.0.1", 8080) as stream:  # in a coroutine
        await stream.write(b"hello")
        print(await stream.read(4096))

The shared library is found through ``APMNET_LIBRARY``, then next to this package, then in the
repository's ``target/release`` or ``target/debug`` (when imported from a checkout), then as the
system's ``libapmnet.so.0``. At exit, an ``atexit`` hook calls ``apm_runtime_shutdown`` so pending
operations are aborted (their callbacks run) and the library's threads are joined before Python
finalises.
"""

from __future__ import annotations

import atexit
import warnings
from typing import Tuple

from . import _native
from ._async import AsyncResult
from ._native import check, lib, library_path
from .enums import (AddressFamily, ChannelBindingKind, CipherAlgorithmType, DecompressionMethods,
                    FileAccess, PolicyEnforcement, ProtectionLevel, ProtocolType, SocketError, SocketShutdown,
                    SocketType, SslPolicyErrors, SslProtocols, TokenImpersonationLevel, TransmitFileOptions,
                    WebExceptionStatus)
from .errors import (ApmError, ArgumentError, ArgumentNullError, ArgumentOutOfRangeError,
                     AuthenticationError, DirectoryNotFoundException, FileNotFoundException,
                     InternalError, InvalidCredentialError, InvalidOperationError, IOException,
                     NotSupportedError, ObjectDisposedError, OutOfMemoryError,
                     PlatformNotSupportedError, ProtocolViolationError, SocketException, Status,
                     TimeoutException, UnauthorizedAccessError, WebError, CryptographicError)
from .negotiate import (CredentialCache, CredentialLookup, ExtendedProtectionPolicy, GenericIdentity,
                        NegotiateStream, NetworkCredential, NtlmUserFile)
from .security import ChannelBinding, SslStream, TransportContext, X509Certificate2
from .authentication import (NegotiateAuthentication, NegotiateAuthenticationClientOptions,
                             NegotiateAuthenticationServerOptions, NegotiateAuthenticationStatusCode)
from .sockets import LingerOption, NetworkStream, Socket
from .http import HttpWebRequest, HttpWebResponse
from .streams import Stream
from . import aio  # asyncio: Socket, NetworkStream and SslStream with coroutine methods

__version__ = "0.1.0"

#: The C API version these bindings were written against (major, minor).
API_VERSION = (0, 1)

__all__ = [
    "AddressFamily", "ApmError", "ArgumentError", "ArgumentNullError", "ArgumentOutOfRangeError",
    "AsyncResult", "AuthenticationError", "ChannelBinding", "ChannelBindingKind",
    "CipherAlgorithmType", "CredentialCache", "CredentialLookup", "DecompressionMethods",
    "DirectoryNotFoundException", "ExtendedProtectionPolicy", "GenericIdentity", "HttpWebRequest",
    "HttpWebResponse", "NegotiateAuthentication", "NegotiateAuthenticationClientOptions",
    "NegotiateAuthenticationServerOptions", "NegotiateAuthenticationStatusCode", "NegotiateStream", "NetworkCredential", "NtlmUserFile", "PolicyEnforcement",
    "ProtectionLevel", "TokenImpersonationLevel", "FileAccess", "FileNotFoundException",
    "IOException", "InternalError", "InvalidCredentialError", "InvalidOperationError",
    "LingerOption", "NetworkStream", "NotSupportedError", "ObjectDisposedError", "OutOfMemoryError",
    "PlatformNotSupportedError", "ProtocolType", "ProtocolViolationError", "Socket", "SocketError",
    "SocketException", "SocketShutdown", "SocketType", "SslPolicyErrors", "SslProtocols",
    "SslStream", "Status", "Stream", "TimeoutException", "TransmitFileOptions", "TransportContext",
    "UnauthorizedAccessError", "CryptographicError", "WebError", "WebExceptionStatus", "X509Certificate2", "aio", "library_path",
    "library_version", "runtime_configure", "runtime_shutdown", "status_name",
]


def library_version() -> Tuple[str, Tuple[int, int, int]]:
    """The loaded library's version: ``(text, (major, minor, patch))``."""
    number = lib.apm_version_number()
    text = lib.apm_version()
    return (text.decode("ascii") if text else ""), (number >> 16, (number >> 8) & 0xFF, number & 0xFF)


def status_name(status: int) -> str:
    """``"APM_E_SOCKET"`` for -8, and so on (``"APM_UNKNOWN"`` for other values)."""
    return _native.status_name(status)


def runtime_configure(threads: int, spin_us: int) -> None:
    """``apm_runtime_configure``: before the first use only (else InvalidOperationError).

    ``threads`` 0 = default (cores, or env APMNET_THREADS), else 1..64; ``spin_us`` >= 0.
    """
    check(lib.apm_runtime_configure(threads, spin_us))


def runtime_shutdown() -> None:
    """Abort pending operations (their callbacks run) and join the library's threads.

    The runtime starts again on next use. Not allowed from a callback (InvalidOperationError).
    """
    check(lib.apm_runtime_shutdown())


def _shutdown_at_exit() -> None:
    # atexit runs before the interpreter is torn down, while engine threads can still take the GIL
    # to run callbacks; ctypes releases the GIL around the call, so they can finish and be joined.
    _native.finalizing = True
    lib.apm_runtime_shutdown()


atexit.register(_shutdown_at_exit)


def _check_version() -> None:
    if "apm_version_number" in lib.missing:
        return
    major, minor, _ = library_version()[1]
    if (major, minor) != API_VERSION:
        warnings.warn(f"apmnet: the bindings were written for the C API {API_VERSION[0]}."
                      f"{API_VERSION[1]}, {library_path} is {major}.{minor}", RuntimeWarning)


_check_version()
