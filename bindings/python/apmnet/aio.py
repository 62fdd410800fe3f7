"""asyncio for apmnet: Socket, NetworkStream and SslStream whose methods are coroutines.

    import asyncio, apmnet

    async def main():
        async with await apmnet.aio.open_connection("example.org", 443, ssl=True) as tls:
            await tls.write(b"GET / HTTP/1.0\\r\\nHost: example.org\\r\\n\\r\\n")
            print(await tls.read(4096))

    asyncio.run(main())

Each object here wraps one object of the synchronous API, its ``sync`` attribute, and awaits that
object's ``*_async`` coroutines: they run the library's Begin/End pair and hand End's outcome to the
event loop with ``loop.call_soon_threadsafe``. There is no other path into the library. Errors are
the package's exceptions (:class:`~apmnet.ObjectDisposedError`, :class:`~apmnet.IOException`,
:class:`~apmnet.SocketException`, :class:`~apmnet.AuthenticationError`, ...).
``Socket.wrap(sync_socket)``, ``NetworkStream.wrap(sync_stream)``, ``SslStream.wrap(sync_ssl)`` and
``Stream.wrap(any_library_stream)`` put an existing synchronous object behind this interface (they
share its handle: closing either closes both).

Use an object from one event loop (the loop's thread) at a time.

Cancelling. Cancelling a task stops it waiting, by ``asyncio.wait_for`` too, and nothing is lost
or reordered:

- A cancelled ``read``/``receive``/``accept`` cancels the library's operation
  (``AsyncResult.cancel``), which takes no byte and accepts no connection. One the library cannot
  cancel (a custom stream's) goes on, and what it brings in is returned by the next call, as are
  the bytes a cancelled ``readexactly`` had read.
- Writes of one object (``write``, ``send``, ``send_file``, ``SslStream.shutdown``) run one after
  another in call order, as the library's SslStream allows one pending write. A write cancelled
  before its turn came is dropped; one cancelled after it began finishes in the background.
  ``bytes`` are sent as they are; other buffers are copied first, so that the caller may reuse them.
- ``connect``, ``authenticate_as_*`` go on as well: close the object to abort them.

Reads on one object wait one at a time: a second concurrent ``read`` (or ``receive``) raises
:class:`~apmnet.NotSupportedError`, as the library's SslStream does for a second pending read.
Concurrent ``accept`` calls are allowed.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import operator
from typing import (TYPE_CHECKING, Any, Awaitable, Callable, ClassVar, Deque, List, Optional,
                    Sequence, Tuple, Type, TypeVar, Union, overload)

if TYPE_CHECKING:
    from typing import Literal

    from ._async import ReadableBuffer
    from ._handle import StrPath
    from .security import (LocalCertificateSelectionCallback, RemoteCertificateValidationCallback,
                           TransportContext, X509Certificate2)
    from .sockets import EndPoint, LingerOption

from . import security, sockets, streams
from .enums import (AddressFamily, CipherAlgorithmType, FileAccess, ProtocolType, SocketShutdown,
                    SocketType, SslProtocols, TransmitFileOptions)
from .errors import ArgumentOutOfRangeError, NotSupportedError, Status

__all__ = ["Socket", "Stream", "NetworkStream", "SslStream", "SslClientAuthenticationOptions",
           "open_connection"]

T = TypeVar("T")
A = TypeVar("A", bound="_Async")


# Operations that outlive a cancelled caller ---------------------------------------------------

def _retrieved(task: asyncio.Future[Any]) -> None:
    # The outcome of an operation nobody awaits any more is kept for the next caller (or dropped):
    # asyncio must not log it as "never retrieved".
    if not task.cancelled():
        task.exception()


def _start(coroutine: Awaitable[T]) -> asyncio.Future[T]:
    task = asyncio.ensure_future(coroutine)
    task.add_done_callback(_retrieved)
    return task


def _caller_cancelled() -> bool:
    """True when the running task itself is being cancelled (not only something it awaits)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    return True if cancelling is None else cancelling() > 0


class _Inbound:
    """Operations that bring something in (a read, an accept). Each runs as a task that a caller
    awaits shielded. When the caller is cancelled the library cancels the operation (it takes no
    byte, accepts no connection); one the library cannot cancel runs on, and its outcome is kept
    for the next caller. With ``exclusive`` (the operation's name), only one caller may wait at a
    time."""

    def __init__(self, exclusive: Optional[str] = None) -> None:
        self._exclusive = exclusive
        self._kept: Deque[asyncio.Future[Any]] = collections.deque()
        self._waiting = 0

    async def take(self, start: Callable[[], Awaitable[T]]) -> T:
        """The outcome of a kept operation, or else of ``start()`` (a coroutine)."""
        if self._exclusive and self._waiting:
            name = self._exclusive
            raise NotSupportedError(f"The {name} method cannot be called when another {name} "
                                    "operation is pending.", Status.NOT_SUPPORTED)
        self._waiting += 1
        try:
            while True:
                task = self._kept.popleft() if self._kept else _start(start())
                try:
                    return await asyncio.shield(task)
                except asyncio.CancelledError:
                    if task.cancelled() and not _caller_cancelled():
                        continue  # a kept operation the library cancelled: start a fresh one
                    if not task.done():
                        task.cancel()  # cancels the library's operation where it can
                    self._kept.append(task)
                    raise
        finally:
            self._waiting -= 1


class _Outbound:
    """Operations that send (writes, send_file, close_notify): one at a time, in call order."""

    def __init__(self) -> None:
        self._last: Optional[asyncio.Future[Any]] = None

    async def run(self, start: Callable[[], Awaitable[T]]) -> T:
        """Run ``start()`` (a coroutine) once the operations called before have finished."""
        began: List[bool] = []
        task = _start(self._after(self._last, start, began))
        self._last = task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not began:
                task.cancel()  # nothing was sent yet: drop it
            raise
        finally:
            if self._last is task and task.done():
                self._last = None

    @staticmethod
    async def _after(previous: Optional[asyncio.Future[Any]], start: Callable[[], Awaitable[T]],
                     began: List[bool]) -> T:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])  # its outcome went to its own caller
        began.append(True)
        return await start()


def _owned(data: ReadableBuffer) -> bytes:
    """``data`` for a write that may outlive its caller: bytes as they are, other buffers copied."""
    return data if type(data) is bytes else memoryview(data).tobytes()


def _size(n: int) -> int:
    n = operator.index(n)
    if n < 0:
        raise ArgumentOutOfRangeError("Non-negative number required.",
                                      Status.ARGUMENT_OUT_OF_RANGE)
    return n


class _Reader:
    """``read(n)`` and ``readexactly(n)`` over ``fetch(n)``, a coroutine giving up to n bytes
    (``b""`` at the end). Bytes fetched beyond what a call asked for, or read by a readexactly
    that did not finish, are returned first by the next call."""

    def __init__(self, fetch: Callable[[int], Awaitable[bytes]], name: str) -> None:
        self._fetch = fetch
        self._inbound = _Inbound(name)
        self._unread = b""

    async def read(self, n: int) -> bytes:
        n = _size(n)
        if self._unread:
            data, self._unread = self._unread[:n], self._unread[n:]
            return data
        if n == 0:
            return b""
        data = await self._inbound.take(lambda: self._fetch(n))
        if len(data) > n:  # kept from a cancelled call that asked for more
            data, self._unread = data[:n], data[n:]
        return data

    async def readexactly(self, n: int) -> bytes:
        n = _size(n)
        parts: List[bytes] = []
        got = 0
        try:
            while got < n:
                chunk = await self.read(n - got)
                if not chunk:
                    raise asyncio.IncompleteReadError(b"".join(parts), n)
                parts.append(chunk)
                got += len(chunk)
        except asyncio.IncompleteReadError:
            raise
        except BaseException:  # cancelled or failed: what was read stays readable
            self._unread = b"".join(parts) + self._unread
            raise
        return b"".join(parts)


def _forward(cls: type, name: str, settable: bool = False) -> Any:
    """A property reading (and writing) the synchronous object's property ``name`` (the class
    bodies give each its type)."""
    def get(self: _Async) -> Any:
        return getattr(self.sync, name)

    def put(self: _Async, value: Any) -> None:
        setattr(self.sync, name, value)

    member = getattr(cls, name, None)
    doc = member.__doc__ if member is not None else None
    return property(get, put if settable else None, doc=doc)


def _sync_of(value: Any) -> Any:
    return value.sync if isinstance(value, _Async) else value


# The classes -----------------------------------------------------------------------------------

class _Async:
    """What the asyncio classes share: ``sync``, ``wrap``, ``close`` and ``async with``."""

    _wraps: ClassVar[type] = object
    #: The synchronous object (apmnet.Socket, NetworkStream, SslStream) this one drives.
    sync: Any

    @classmethod
    def wrap(cls: Type[A], sync: Any) -> A:
        """This interface over the synchronous object ``sync`` (the same handle: no new one)."""
        if not isinstance(sync, cls._wraps):
            raise TypeError(f"apmnet.aio.{cls.__name__}.wrap needs an "
                            f"apmnet.{cls._wraps.__name__}, not {type(sync).__name__!r}")
        self = cls.__new__(cls)
        self._attach(sync)
        return self

    def _attach(self, sync: Any) -> None:
        self.sync = sync
        self._outbound = _Outbound()

    def close(self) -> None:
        """Close (idempotent). Pending operations are aborted: their coroutines raise
        ObjectDisposedError (or IOException)."""
        self.sync.close()

    async def __aenter__(self: A) -> A:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<apmnet.aio.{type(self).__name__} of {self.sync!r}>"


async def _receive(sync_socket: sockets.Socket, n: int) -> bytes:
    buffer = bytearray(n)
    count = await sync_socket.receive_async(buffer)
    del buffer[count:]
    return bytes(buffer)


class Socket(_Async):
    """System.Net.Sockets.Socket with coroutines: ``connect``, ``accept``, ``send``, ``receive``,
    ``send_file``; ``bind``, ``listen``, ``shutdown`` and ``close`` are plain calls."""

    _wraps: ClassVar[type] = sockets.Socket
    sync: sockets.Socket

    def __init__(self, address_family: AddressFamily = AddressFamily.InterNetwork,
                 socket_type: SocketType = SocketType.Stream,
                 protocol_type: ProtocolType = ProtocolType.Tcp) -> None:
        self._attach(sockets.Socket(address_family, socket_type, protocol_type))

    def _attach(self, sync: Any) -> None:
        super()._attach(sync)
        self._accepts = _Inbound()
        self._reader = _Reader(functools.partial(_receive, sync), "receive")

    def bind(self, address: Union[str, EndPoint], port: Optional[int] = None) -> None:
        """Bind to an IP literal and port (0 = any), or to an ``(address, port)`` end point."""
        self.sync.bind(address, port)

    def listen(self, backlog: int = 128) -> None:
        self.sync.listen(backlog)

    def shutdown(self, how: SocketShutdown = SocketShutdown.Both) -> None:
        self.sync.shutdown(how)

    async def connect(self, host: Union[str, EndPoint], port: Optional[int] = None) -> None:
        """Connect to ``host`` (an IP literal or a name) and ``port``, or to a ``(host, port)``."""
        await self.sync.connect_async(host, port)

    async def accept(self) -> Socket:
        """The next connection, as a new :class:`Socket`."""
        return Socket.wrap(await self._accepts.take(self.sync.accept_async))

    async def send(self, data: ReadableBuffer) -> int:
        """Send all of ``data`` (bytes-like); returns the byte count."""
        owned = _owned(data)
        return await self._outbound.run(lambda: self.sync.send_async(owned))

    async def receive(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end of the stream."""
        return await self._reader.read(n)

    async def send_file(self, path: Optional[StrPath], pre: Optional[ReadableBuffer] = None,
                        post: Optional[ReadableBuffer] = None,
                        flags: TransmitFileOptions = TransmitFileOptions.UseDefaultWorkerThread) -> None:
        """Send ``pre``, the file at ``path`` (None: no file) and ``post`` (BeginSendFile)."""
        owned_pre = None if pre is None else _owned(pre)
        owned_post = None if post is None else _owned(post)
        await self._outbound.run(lambda: self.sync.send_file_async(path, owned_pre, owned_post, flags))

    address_family: AddressFamily = _forward(sockets.Socket, "address_family")
    connected: bool = _forward(sockets.Socket, "connected")
    available: int = _forward(sockets.Socket, "available")
    local_end_point: Tuple[str, int] = _forward(sockets.Socket, "local_end_point")
    remote_end_point: Tuple[str, int] = _forward(sockets.Socket, "remote_end_point")
    no_delay: bool = _forward(sockets.Socket, "no_delay", settable=True)
    send_buffer_size: int = _forward(sockets.Socket, "send_buffer_size", settable=True)
    receive_buffer_size: int = _forward(sockets.Socket, "receive_buffer_size", settable=True)
    linger_state: Union[LingerOption, Tuple[bool, int]] = _forward(sockets.Socket, "linger_state",
                                                                    settable=True)


class Stream(_Async):
    """A library stream with coroutines: ``await write(data)``, ``await read(n)``, ``await
    readexactly(n)``. Made by :meth:`wrap` (any :class:`apmnet.Stream`) or as a NetworkStream or
    SslStream."""

    _wraps: ClassVar[type] = streams.Stream
    sync: streams.Stream

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("use apmnet.aio.Stream.wrap(stream), apmnet.aio.NetworkStream or "
                        "apmnet.aio.SslStream")

    @classmethod
    def wrap(cls: Type[A], sync: Any) -> A:
        """This interface over the library stream ``sync``: from ``Stream.wrap``, an
        :class:`SslStream` for an apmnet.SslStream and a :class:`NetworkStream` for an
        apmnet.NetworkStream."""
        if cls is Stream:
            for kind in (SslStream, NetworkStream):
                if isinstance(sync, kind._wraps):
                    return kind.wrap(sync)  # type: ignore[return-value]  # cls is Stream
        return super().wrap(sync)

    def _attach(self, sync: Any) -> None:
        super()._attach(sync)
        self._reader = _Reader(sync.read_async, "read")

    async def write(self, data: ReadableBuffer) -> None:
        """Write all of ``data`` (bytes-like)."""
        owned = _owned(data)
        await self._outbound.run(lambda: self.sync.write_async(owned))

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at the end of the stream."""
        return await self._reader.read(n)

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes. The end of the stream first raises ``asyncio.IncompleteReadError``
        (an EOFError) with the bytes read in ``partial``, as ``asyncio.StreamReader`` does."""
        return await self._reader.readexactly(n)

    can_read: bool = _forward(streams.Stream, "can_read")
    can_write: bool = _forward(streams.Stream, "can_write")


class NetworkStream(Stream):
    """System.Net.Sockets.NetworkStream over a connected :class:`Socket` (this module's or the
    synchronous one), with coroutines. ``owns_socket``: closing the stream closes the socket."""

    _wraps: ClassVar[type] = sockets.NetworkStream
    sync: sockets.NetworkStream
    _socket: Optional[Socket]

    def __init__(self, socket: Union[Socket, sockets.Socket], access: FileAccess = FileAccess.ReadWrite,
                 owns_socket: bool = False) -> None:
        self._attach(sockets.NetworkStream(_sync_of(socket), access, owns_socket))
        if isinstance(socket, Socket):
            self._socket = socket

    def _attach(self, sync: Any) -> None:
        super()._attach(sync)
        self._socket = None

    @property
    def socket(self) -> Optional[Socket]:
        """The stream's socket, as a :class:`Socket` of this module."""
        if self._socket is None and self.sync.socket is not None:
            self._socket = Socket.wrap(self.sync.socket)
        return self._socket

    owns_socket: bool = _forward(sockets.NetworkStream, "owns_socket")


class SslStream(Stream):
    """System.Net.Security.SslStream with coroutines. The arguments are the synchronous
    :class:`apmnet.SslStream`'s; ``inner_stream`` may also be a stream of this module. The callbacks
    run on the thread driving the handshake, and their ``sender`` is the synchronous SslStream."""

    _wraps: ClassVar[type] = security.SslStream
    sync: security.SslStream
    _inner_stream: Any

    def __init__(self, inner_stream: Any, leave_inner_stream_open: bool = False,
                 user_certificate_validation_callback: Optional[RemoteCertificateValidationCallback] = None,
                 user_certificate_selection_callback: Optional[LocalCertificateSelectionCallback] = None) -> None:
        self._attach(security.SslStream(_sync_of(inner_stream), leave_inner_stream_open,
                                        user_certificate_validation_callback,
                                        user_certificate_selection_callback))
        self._inner_stream = inner_stream

    def _attach(self, sync: Any) -> None:
        super()._attach(sync)
        self._inner_stream = sync.inner_stream

    @property
    def inner_stream(self) -> Any:
        """The stream given to the constructor (the synchronous one's after :meth:`wrap`)."""
        return self._inner_stream

    leave_inner_stream_open: bool = _forward(security.SslStream, "leave_inner_stream_open")

    def set_trusted_ca_file(self, path: Optional[StrPath]) -> None:
        """Trust exactly the CA certificates of this PEM file (an apmnet extension); before
        authentication."""
        self.sync.set_trusted_ca_file(path)

    async def authenticate_as_client(
            self, target_host: Optional[str],
            client_certificates: Union[None, X509Certificate2, Sequence[X509Certificate2]] = None,
            enabled_ssl_protocols: SslProtocols = SslProtocols.None_,
            check_certificate_revocation: bool = False, *,
            application_protocols: Optional[Sequence[Union[str, bytes]]] = None) -> None:
        """AuthenticateAsClientAsync, with the arguments of
        :meth:`apmnet.SslStream.authenticate_as_client`."""
        await self.sync.authenticate_as_client_async(
            target_host, client_certificates, enabled_ssl_protocols, check_certificate_revocation,
            application_protocols=application_protocols)

    async def authenticate_as_server(
            self, server_certificate: Optional[X509Certificate2],
            client_certificate_required: bool = False,
            enabled_ssl_protocols: SslProtocols = SslProtocols.None_,
            check_certificate_revocation: bool = False, *,
            application_protocols: Optional[Sequence[Union[str, bytes]]] = None) -> None:
        """AuthenticateAsServerAsync, with the arguments of
        :meth:`apmnet.SslStream.authenticate_as_server`."""
        await self.sync.authenticate_as_server_async(
            server_certificate, client_certificate_required, enabled_ssl_protocols,
            check_certificate_revocation, application_protocols=application_protocols)

    async def shutdown(self) -> None:
        """Send the TLS close_notify, after the writes called before it; later writes fail."""
        await self._outbound.run(self.sync.shutdown_async)

    is_authenticated: bool = _forward(security.SslStream, "is_authenticated")
    is_server: bool = _forward(security.SslStream, "is_server")
    is_encrypted: bool = _forward(security.SslStream, "is_encrypted")
    is_signed: bool = _forward(security.SslStream, "is_signed")
    is_mutually_authenticated: bool = _forward(security.SslStream, "is_mutually_authenticated")
    check_cert_revocation_status: bool = _forward(security.SslStream, "check_cert_revocation_status")
    ssl_protocol: SslProtocols = _forward(security.SslStream, "ssl_protocol")
    negotiated_cipher_suite: int = _forward(security.SslStream, "negotiated_cipher_suite")
    negotiated_cipher_suite_name: str = _forward(security.SslStream, "negotiated_cipher_suite_name")
    cipher_algorithm: CipherAlgorithmType = _forward(security.SslStream, "cipher_algorithm")
    cipher_strength: int = _forward(security.SslStream, "cipher_strength")
    negotiated_application_protocol: bytes = _forward(security.SslStream,
                                                      "negotiated_application_protocol")
    target_host_name: str = _forward(security.SslStream, "target_host_name")
    remote_certificate: Optional[X509Certificate2] = _forward(security.SslStream, "remote_certificate")
    local_certificate: Optional[X509Certificate2] = _forward(security.SslStream, "local_certificate")
    transport_context: TransportContext = _forward(security.SslStream, "transport_context")


# Connecting ------------------------------------------------------------------------------------

@dataclasses.dataclass
class SslClientAuthenticationOptions:
    """System.Net.Security.SslClientAuthenticationOptions, for :func:`open_connection`."""

    #: The name sent as SNI and checked against the certificate; None: the host connected to.
    target_host: Optional[str] = None
    #: None, an X509Certificate2 or a sequence of them, as authenticate_as_client takes.
    client_certificates: Union[None, X509Certificate2, Sequence[X509Certificate2]] = None
    enabled_ssl_protocols: SslProtocols = SslProtocols.None_
    check_certificate_revocation: bool = False
    #: ALPN names offered.
    application_protocols: Optional[Sequence[Union[str, bytes]]] = None
    #: ``callback(sender, certificate, chain, ssl_policy_errors) -> bool``, as SslStream takes.
    remote_certificate_validation_callback: Optional[RemoteCertificateValidationCallback] = None
    #: ``callback(sender, target_host, local, remote, issuers)``, as SslStream takes.
    local_certificate_selection_callback: Optional[LocalCertificateSelectionCallback] = None
    #: A PEM file of the CAs to trust instead of the system's (SslStream.set_trusted_ca_file).
    trusted_ca_file: Optional[StrPath] = None


@overload
async def open_connection(host: str, port: int, *, ssl: Literal[None, False] = None,
                          address_family: AddressFamily = AddressFamily.InterNetwork) -> NetworkStream: ...


@overload
async def open_connection(host: str, port: int, *,
                          ssl: Union[Literal[True], SslClientAuthenticationOptions],
                          address_family: AddressFamily = AddressFamily.InterNetwork) -> SslStream: ...


async def open_connection(host: str, port: int, *,
                          ssl: Union[None, bool, SslClientAuthenticationOptions] = None,
                          address_family: AddressFamily = AddressFamily.InterNetwork
                          ) -> Union[NetworkStream, SslStream]:
    """Connect to ``host`` and ``port``; a :class:`NetworkStream` that owns its socket, or with
    ``ssl`` (True for the defaults, or an :class:`SslClientAuthenticationOptions`) an authenticated
    :class:`SslStream` over it. Closing the stream closes the connection; on failure nothing is left
    open."""
    options: Optional[SslClientAuthenticationOptions] = None
    if ssl is True:
        options = SslClientAuthenticationOptions()
    elif isinstance(ssl, SslClientAuthenticationOptions):
        options = ssl
    elif ssl not in (None, False):
        raise TypeError("ssl must be None, True or an SslClientAuthenticationOptions, not "
                        f"{type(ssl).__name__!r}")
    sock = Socket(address_family)
    opened: _Async = sock
    try:
        await sock.connect(host, port)
        opened = stream = NetworkStream(sock, owns_socket=True)
        if options is None:
            return stream
        opened = tls = SslStream(stream, False, options.remote_certificate_validation_callback,
                                 options.local_certificate_selection_callback)
        if options.trusted_ca_file is not None:
            tls.set_trusted_ca_file(options.trusted_ca_file)
        await tls.authenticate_as_client(
            host if options.target_host is None else options.target_host, options.client_certificates,
            options.enabled_ssl_protocols, options.check_certificate_revocation,
            application_protocols=options.application_protocols)
        return tls
    except BaseException:
        opened.close()  # and what it was made over
        raise
