"""The base of the streams over a stream (SslStream, NegotiateStream): creation over a library stream
or a Python object, and closing the inner stream unless it is left open."""

from ctypes import byref, c_void_p
from typing import Any

from . import _native
from ._custom import ObjectStream
from .streams import Stream

__all__ = ["LayeredStream"]


class LayeredStream(Stream):
    """``create(inner, leave, &out)`` makes the library stream over ``inner_stream``: a library stream,
    or any Python object with blocking read/write methods (a ``socket.socket``), adapted."""

    def __init__(self, create: Any, inner_stream: Any, leave_inner_stream_open: Any) -> None:
        leave = bool(leave_inner_stream_open)
        adapter = None
        if inner_stream is None or isinstance(inner_stream, Stream):
            inner = inner_stream
        else:
            adapter = inner = ObjectStream(inner_stream, close_target=not leave)
        out = c_void_p()
        status = create(None if inner is None else inner._handle, int(leave), byref(out))
        if status != 0:
            error = _native.last_error(status)
            if adapter is not None:
                adapter._adapter.close_target = False  # the caller's object stays as it was
                adapter.close()
            raise error
        super().__init__(out.value)
        self.inner_stream = inner_stream
        self.leave_inner_stream_open = leave
        self._inner = inner
        self._adapter_stream = adapter

    def close(self) -> None:
        """Close the stream; with ``leave_inner_stream_open`` false the inner stream is closed too."""
        was_closed = self._closed
        super().close()
        if not was_closed:
            self._mark_closed()

    def _mark_closed(self) -> None:
        super()._mark_closed()
        if not self.leave_inner_stream_open:
            if self._inner is not None:
                self._inner._mark_closed()  # the library closed it with this stream
        elif self._adapter_stream is not None:
            self._adapter_stream.close()  # ours alone; the caller's object stays open
