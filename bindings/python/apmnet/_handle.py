"""The base of every class that owns a library handle, and the argument conversions they share."""

import ctypes
import os
from ctypes import byref, c_int32, c_size_t

from . import _native
from ._native import check
from .errors import Status

__all__ = ["_Handle", "_text", "_path", "_copy_text", "_copy_bytes", "_i32_property",
           "_flag_property", "_text_property", "_bytes_property"]


def _text(value):
    """A NUL-terminated UTF-8 argument (None stays NULL)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _path(value):
    """A file name argument: str, bytes or os.PathLike, in the file system's encoding."""
    if value is None:
        return None
    return os.fsencode(value)


def _copy_text(function, handle):
    """A text the library copies out as ``apm_last_error_message`` does (size first, then fill)."""
    size = c_size_t(0)
    check(function(handle, None, 0, byref(size)))
    buffer = ctypes.create_string_buffer(size.value + 1)
    check(function(handle, buffer, len(buffer), byref(size)))
    return buffer.raw[:min(size.value, len(buffer) - 1)].decode("utf-8", "replace")


def _copy_bytes(function, handle, *args):
    """Bytes the library copies out with a full-length out-parameter (size first, then fill)."""
    size = c_size_t(0)
    check(function(handle, *args, None, 0, byref(size)))
    if size.value == 0:
        return b""
    buffer = (ctypes.c_uint8 * size.value)()
    check(function(handle, *args, buffer, size.value, byref(size)))
    return bytes(buffer)[:size.value]


class _Handle:
    """Holds one library handle. After close the (stale) value is still passed to the library,
    which reports ObjectDisposedError with its own message: its handle table makes that safe."""

    def __init__(self, handle):
        self._handle = handle
        self._closed = False

    def _close_native(self):
        raise NotImplementedError

    def close(self):
        """Close the handle (idempotent). Pending operations complete; their End raises
        ObjectDisposedError."""
        if not self._closed:
            self._closed = True
            check(self._close_native())

    def _mark_closed(self):
        """The library closed this handle together with another object (an owning stream)."""
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        # Pending operations keep their owner alive (see _async), so this runs only when no
        # callback can still come. Once apmnet's atexit hook has shut the runtime down, the handles
        # are left to the process exit rather than waking the runtime up again.
        try:
            if not self._closed and not _native.finalizing:
                self.close()
        except Exception:
            pass

    def _get_i32(self, function):
        out = c_int32(0)
        check(function(self._handle, byref(out)))
        return out.value

    def _get_flag(self, function):
        """A 0/1 state; False once the handle is closed, as .NET's CanRead or IsAuthenticated after
        Dispose."""
        out = c_int32(0)
        status = function(self._handle, byref(out))
        if status == Status.OBJECT_DISPOSED:
            return False
        check(status)
        return bool(out.value)


# Properties of a handle, one line each in the classes ---------------------------------------------

def _i32_property(getter, convert=int, setter=None, doc=None):
    """A property read with ``getter(handle, &int32)`` and ``convert``, and written (when there is a
    ``setter``) with ``setter(handle, int(value))``."""
    def get(self):
        return convert(self._get_i32(getter))

    def put(self, value):
        check(setter(self._handle, int(value)))

    return property(get, None if setter is None else put, doc=doc)


def _flag_property(getter, doc=None):
    """A read-only 0/1 property (see :meth:`_Handle._get_flag`)."""
    return property(lambda self: self._get_flag(getter), doc=doc)


def _text_property(getter, doc=None):
    """A read-only property: the text ``getter`` copies out (see :func:`_copy_text`)."""
    return property(lambda self: _copy_text(getter, self._handle), doc=doc)


def _bytes_property(getter, doc=None):
    """A read-only property: the bytes ``getter`` copies out (see :func:`_copy_bytes`)."""
    return property(lambda self: _copy_bytes(getter, self._handle), doc=doc)
