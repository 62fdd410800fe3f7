"""Stream: what every library stream shares (System.IO.Stream's reads and writes, sync and Begin/End)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from . import _async
from ._async import AsyncResult, await_operation, buffer_args, sized
from ._handle import _Handle
from ._native import check, lib

__all__ = ["Stream"]

if TYPE_CHECKING:
    from ._async import AsyncCallback, ReadableBuffer, WritableBuffer


class Stream(_Handle):
    """System.IO.Stream over one library stream handle (``apm_stream_*``): the base of
    :class:`NetworkStream` and :class:`SslStream`, and a valid inner stream for an SslStream.

    One read and one write may be pending at once.
    """

    def _close_native(self) -> int:
        return lib.apm_stream_close(self._handle)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<apmnet.{type(self).__name__} {state}>"

    @property
    def can_read(self) -> bool:
        """False once the stream is closed, as in .NET."""
        return self._get_flag(lib.apm_stream_can_read)

    @property
    def can_write(self) -> bool:
        """False once the stream is closed, as in .NET."""
        return self._get_flag(lib.apm_stream_can_write)

    def write(self, buffer: ReadableBuffer, offset: int = 0, count: Optional[int] = None) -> None:
        """Write ``buffer[offset:offset+count]``; returns when all of it was written."""
        args, keep = buffer_args(buffer, offset, count)
        check(lib.apm_stream_write(self._handle, *args))

    def read(self, size: int) -> bytes:
        """Read up to ``size`` bytes; ``b""`` at the end of the stream."""
        buffer = bytearray(size)
        count = self.readinto(buffer)
        return bytes(buffer[:count])

    def readinto(self, buffer: WritableBuffer, offset: int = 0, count: Optional[int] = None) -> int:
        """Read into writable ``buffer`` at ``offset``; return the byte count (0 = end of stream)."""
        args, keep = buffer_args(buffer, offset, count, writable=True)
        return sized(lib.apm_stream_read, self._handle, *args)

    def begin_write(self, buffer: ReadableBuffer, offset: int = 0, count: Optional[int] = None,
                    callback: Optional[AsyncCallback] = None, state: Any = None) -> AsyncResult:
        args, keep = buffer_args(buffer, offset, count)
        return _async.begin(self, lib.apm_stream_begin_write, self._handle, args, callback, state,
                            keep)

    def end_write(self, async_result: AsyncResult) -> None:
        _async.end(lib.apm_stream_end_write, self._handle, async_result)

    def begin_read(self, buffer: WritableBuffer, offset: int = 0, count: Optional[int] = None,
                   callback: Optional[AsyncCallback] = None, state: Any = None) -> AsyncResult:
        args, keep = buffer_args(buffer, offset, count, writable=True)
        return _async.begin(self, lib.apm_stream_begin_read, self._handle, args, callback, state,
                            keep)

    def end_read(self, async_result: AsyncResult) -> int:
        return _async.end_sized(lib.apm_stream_end_read, self._handle, async_result)

    async def write_async(self, data: ReadableBuffer, offset: int = 0,
                          count: Optional[int] = None) -> None:
        """Coroutine: write all of ``data`` (BeginWrite/EndWrite)."""
        return await await_operation(lambda cb: self.begin_write(data, offset, count, cb),
                                     self.end_write)

    async def read_async(self, size: int) -> bytes:
        """Coroutine: read up to ``size`` bytes (BeginRead/EndRead); ``b""`` at the end."""
        buffer = bytearray(size)
        count = await await_operation(lambda cb: self.begin_read(buffer, 0, size, cb),
                                      self.end_read)
        return bytes(buffer[:count])

    async def readinto_async(self, buffer: WritableBuffer, offset: int = 0,
                             count: Optional[int] = None) -> int:
        return await await_operation(lambda cb: self.begin_read(buffer, offset, count, cb),
                                     self.end_read)
