"""Socket and NetworkStream, as System.Net.Sockets names them."""

from __future__ import annotations

import ctypes
from ctypes import byref, c_int32, c_void_p
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, Tuple, Union, cast

from . import _async
from ._async import AsyncResult, await_operation, buffer_args, readable_buffer, sized
from ._handle import _Handle, _i32_property, _i32_setting, _path, _text
from ._native import check, lib
from .enums import (AddressFamily, FileAccess, ProtocolType, SocketShutdown, SocketType,
                    TransmitFileOptions)
from .streams import Stream

__all__ = ["Socket", "NetworkStream", "LingerOption"]

if TYPE_CHECKING:
    from ._async import AsyncCallback, ProgressCallback, ReadableBuffer, WritableBuffer
    from ._handle import StrPath

    #: An end point: ``(address, port)`` (an IPv6 one may have more items, as Python's).
    EndPoint = Tuple[Any, ...]


class LingerOption(NamedTuple):
    """System.Net.Sockets.LingerOption: ``enabled`` and ``linger_time`` (seconds)."""

    enabled: bool
    linger_time: int


_ENDPOINT_TEXT = 64  # an IPv6 literal needs 46 bytes with its NUL


def _end_point(address: Union[str, EndPoint], port: Optional[int]) -> Tuple[str, int]:
    """``(address, port)`` from separate arguments or from an end point tuple in ``address``."""
    if port is None and isinstance(address, tuple):
        address, port = address[:2]
    if port is None:
        raise TypeError("a port is required (or an (address, port) end point)")
    return cast(str, address), port


class Socket(_Handle):
    """System.Net.Sockets.Socket (TCP, IPv4 or IPv6).

    Synchronous calls block the calling thread (without holding the GIL); ``begin_*`` calls return an
    :class:`AsyncResult` to pass to the matching ``end_*``; ``*_async`` coroutines run Begin/End
    for asyncio.
    """

    def _close_native(self) -> int:
        return lib.apm_socket_close(self._handle)

    def __init__(self, address_family: AddressFamily = AddressFamily.InterNetwork,
                 socket_type: SocketType = SocketType.Stream,
                 protocol_type: ProtocolType = ProtocolType.Tcp, *, _handle: Optional[int] = None) -> None:
        if _handle is None:
            out = c_void_p()
            check(lib.apm_socket_create(int(address_family), int(socket_type), int(protocol_type),
                                        byref(out)))
            _handle = out.value
        super().__init__(_handle)
        self.address_family = AddressFamily(address_family)
        self.socket_type = SocketType(socket_type)
        self.protocol_type = ProtocolType(protocol_type)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<apmnet.Socket {self.address_family.name} {state}>"

    # Bind, listen, accept, connect -------------------------------------------------------------

    def bind(self, address: Union[str, EndPoint], port: Optional[int] = None) -> None:
        """Bind to an IP literal (``"127.0.0.1"``, ``"0.0.0.0"``, ``"::"``) and port (0 = any), or to
        an ``(address, port)`` end point."""
        address, port = _end_point(address, port)
        check(lib.apm_socket_bind(self._handle, _text(address), port))

    def listen(self, backlog: int = 128) -> None:
        check(lib.apm_socket_listen(self._handle, backlog))

    def accept(self) -> Socket:
        """Wait for a connection; return it as a new, connected Socket."""
        out = c_void_p()
        check(lib.apm_socket_accept(self._handle, byref(out)))
        return self._accepted(out.value)

    def begin_accept(self, callback: Optional[AsyncCallback] = None, state: Any = None) -> AsyncResult:
        return _async.begin(self, lib.apm_socket_begin_accept, self._handle, (), callback, state)

    def end_accept(self, async_result: AsyncResult) -> Socket:
        out = c_void_p()
        _async.end(lib.apm_socket_end_accept, self._handle, async_result, byref(out))
        return self._accepted(out.value)

    async def accept_async(self) -> Socket:
        return await await_operation(lambda cb: self.begin_accept(cb), self.end_accept)

    def _accepted(self, handle: Optional[int]) -> Socket:
        return Socket(self.address_family, self.socket_type, self.protocol_type, _handle=handle)

    def connect(self, host: Union[str, EndPoint], port: Optional[int] = None) -> None:
        """Connect to ``host`` (an IP literal or a name) and ``port``, or to an ``(host, port)`` end
        point."""
        host, port = _end_point(host, port)
        check(lib.apm_socket_connect(self._handle, _text(host), port))

    def begin_connect(self, host: Union[str, EndPoint], port: Optional[int],
                      callback: Optional[AsyncCallback] = None, state: Any = None) -> AsyncResult:
        host, port = _end_point(host, port)
        return _async.begin(self, lib.apm_socket_begin_connect, self._handle, (_text(host), port),
                            callback, state)

    def end_connect(self, async_result: AsyncResult) -> None:
        _async.end(lib.apm_socket_end_connect, self._handle, async_result)

    async def connect_async(self, host: Union[str, EndPoint], port: Optional[int]) -> None:
        return await await_operation(lambda cb: self.begin_connect(host, port, cb),
                                     self.end_connect)

    # Send and receive ---------------------------------------------------------------------------

    def send(self, buffer: ReadableBuffer, offset: int = 0, count: Optional[int] = None) -> int:
        """Send ``buffer[offset:offset+count]`` (all of it, blocking); return the bytes sent."""
        args, keep = buffer_args(buffer, offset, count)
        return sized(lib.apm_socket_send, self._handle, *args)

    def begin_send(self, buffer: ReadableBuffer, offset: int = 0, count: Optional[int] = None,
                   callback: Optional[AsyncCallback] = None, state: Any = None) -> AsyncResult:
        args, keep = buffer_args(buffer, offset, count)
        return _async.begin(self, lib.apm_socket_begin_send, self._handle, args, callback, state,
                            keep)

    def end_send(self, async_result: AsyncResult) -> int:
        return _async.end_sized(lib.apm_socket_end_send, self._handle, async_result)

    async def send_async(self, buffer: ReadableBuffer, offset: int = 0,
                         count: Optional[int] = None) -> int:
        return await await_operation(lambda cb: self.begin_send(buffer, offset, count, cb),
                                     self.end_send)

    def receive(self, buffer: WritableBuffer, offset: int = 0, count: Optional[int] = None) -> int:
        """Receive into writable ``buffer`` at ``offset``; return the byte count (0 = end of stream)."""
        args, keep = buffer_args(buffer, offset, count, writable=True)
        return sized(lib.apm_socket_receive, self._handle, *args)

    def begin_receive(self, buffer: WritableBuffer, offset: int = 0, count: Optional[int] = None,
                      callback: Optional[AsyncCallback] = None, state: Any = None) -> AsyncResult:
        args, keep = buffer_args(buffer, offset, count, writable=True)
        return _async.begin(self, lib.apm_socket_begin_receive, self._handle, args, callback, state,
                            keep)

    def end_receive(self, async_result: AsyncResult) -> int:
        return _async.end_sized(lib.apm_socket_end_receive, self._handle, async_result)

    async def receive_async(self, buffer: WritableBuffer, offset: int = 0,
                            count: Optional[int] = None) -> int:
        return await await_operation(lambda cb: self.begin_receive(buffer, offset, count, cb),
                                     self.end_receive)

    # Send file ----------------------------------------------------------------------------------

    def send_file(self, file_name: Optional[StrPath], pre_buffer: Optional[ReadableBuffer] = None,
                  post_buffer: Optional[ReadableBuffer] = None,
                  flags: TransmitFileOptions = TransmitFileOptions.UseDefaultWorkerThread) -> None:
        """Send ``pre_buffer``, the file (None: no file) and ``post_buffer``, blocking."""
        pre, pre_len, pre_keep = readable_buffer(pre_buffer)
        post, post_len, post_keep = readable_buffer(post_buffer)
        check(lib.apm_socket_send_file(self._handle, _path(file_name), pre, pre_len, post, post_len,
                                       int(flags)))

    def begin_send_file(self, file_name: Optional[StrPath], pre_buffer: Optional[ReadableBuffer] = None,
                        post_buffer: Optional[ReadableBuffer] = None,
                        flags: TransmitFileOptions = TransmitFileOptions.UseDefaultWorkerThread,
                        callback: Optional[AsyncCallback] = None, state: Any = None,
                        progress: Optional[ProgressCallback] = None) -> AsyncResult:
        """Start sending ``pre_buffer`` + the file + ``post_buffer``. The file is opened inside
        Begin, so FileNotFoundException/DirectoryNotFoundException come from here.

        ``progress(result, bytes_sent)``, if given, is called on engine threads as bytes go out.
        """
        pre, pre_len, pre_keep = readable_buffer(pre_buffer)
        post, post_len, post_keep = readable_buffer(post_buffer)
        function = (lib.apm_socket_begin_send_file if progress is None
                    else lib.apm_socket_begin_send_file_with_progress)
        return _async.begin(self, function, self._handle,
                            (_path(file_name), pre, pre_len, post, post_len, int(flags)),
                            callback, state, (pre_keep, post_keep), progress)

    def end_send_file(self, async_result: AsyncResult) -> None:
        _async.end(lib.apm_socket_end_send_file, self._handle, async_result)

    async def send_file_async(self, file_name: Optional[StrPath],
                              pre_buffer: Optional[ReadableBuffer] = None,
                              post_buffer: Optional[ReadableBuffer] = None,
                              flags: TransmitFileOptions = TransmitFileOptions.UseDefaultWorkerThread) -> None:
        return await await_operation(
            lambda cb: self.begin_send_file(file_name, pre_buffer, post_buffer, flags, cb),
            self.end_send_file)

    # Shutdown and properties -------------------------------------------------------------------

    def shutdown(self, how: SocketShutdown = SocketShutdown.Both) -> None:
        check(lib.apm_socket_shutdown(self._handle, int(how)))

    def _endpoint(self, function: Any) -> Tuple[str, int]:
        address = ctypes.create_string_buffer(_ENDPOINT_TEXT)
        port = c_int32(0)
        check(function(self._handle, address, len(address), byref(port)))
        return address.value.decode("ascii"), port.value

    @property
    def local_end_point(self) -> Tuple[str, int]:
        """``(address, port)`` this socket is bound to."""
        return self._endpoint(lib.apm_socket_get_local_endpoint)

    @property
    def remote_end_point(self) -> Tuple[str, int]:
        """``(address, port)`` of the peer."""
        return self._endpoint(lib.apm_socket_get_remote_endpoint)

    connected = _i32_property(
        lib.apm_socket_get_connected, bool,
        doc="Connected as of the last operation (.NET's cached flag, not a live probe).")
    available = _i32_property(lib.apm_socket_get_available, int, "Bytes received and not yet read.")
    no_delay = _i32_setting(lib.apm_socket_get_no_delay, lib.apm_socket_set_no_delay, bool,
                            "TCP_NODELAY.")
    send_buffer_size = _i32_setting(lib.apm_socket_get_send_buffer_size,
                                    lib.apm_socket_set_send_buffer_size, int)
    receive_buffer_size = _i32_setting(lib.apm_socket_get_receive_buffer_size,
                                       lib.apm_socket_set_receive_buffer_size, int)
    send_timeout = _i32_setting(lib.apm_socket_get_send_timeout, lib.apm_socket_set_send_timeout, int,
                                "Milliseconds for synchronous sends; 0 or -1 = infinite.")
    receive_timeout = _i32_setting(lib.apm_socket_get_receive_timeout,
                                   lib.apm_socket_set_receive_timeout, int,
                                   "Milliseconds for synchronous receives; 0 or -1 = infinite.")

    @property
    def linger_state(self) -> LingerOption:
        """A :data:`LingerOption`; set it from one or from an ``(enabled, seconds)`` pair."""
        enabled, seconds = c_int32(0), c_int32(0)
        check(lib.apm_socket_get_linger(self._handle, byref(enabled), byref(seconds)))
        return LingerOption(bool(enabled.value), seconds.value)

    @linger_state.setter
    def linger_state(self, value: Union[LingerOption, Tuple[bool, int]]) -> None:
        enabled, seconds = value
        check(lib.apm_socket_set_linger(self._handle, int(bool(enabled)), int(seconds)))


class NetworkStream(Stream):
    """System.Net.Sockets.NetworkStream over a connected Socket.

    One read and one write may be pending at once; several pending writes go out in order. The
    reads and writes (sync, Begin/End and coroutines) come from :class:`Stream`.
    """

    def __init__(self, socket: Optional[Socket], access: FileAccess = FileAccess.ReadWrite,
                 owns_socket: bool = False) -> None:
        out = c_void_p()
        socket_handle = None if socket is None else socket._handle
        check(lib.apm_network_stream_create_with_access(socket_handle, int(access),
                                                        int(bool(owns_socket)), byref(out)))
        super().__init__(out.value)
        self.socket = socket
        self.owns_socket = bool(owns_socket)

    def close(self) -> None:
        super().close()
        self._mark_closed()

    def _mark_closed(self) -> None:
        super()._mark_closed()
        if self.owns_socket and self.socket is not None:
            self.socket._mark_closed()  # the library closed it with the stream
