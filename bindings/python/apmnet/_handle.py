"""The base of every class that owns a library handle, and the argument conversions they share."""

from __future__ import annotations

import ctypes
import os
from ctypes import byref, c_int32, c_size_t
from typing import TYPE_CHECKING, Any, Callable, Generic, Optional, TypeVar, Union, overload

from . import _native
from ._native import check
from .errors import Status

__all__ = ["_Handle", "_text", "_path", "_copy_text", "_copy_bytes", "_i32_property",
           "_i32_setting", "_flag_property", "_text_property", "_bytes_property", "StrPath"]

if TYPE_CHECKING:
    #: A file name: str, bytes or os.PathLike.
    StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

T = TypeVar("T")
H = TypeVar("H", bound="_Handle")


def _text(value: Any) -> Optional[bytes]:
    """A NUL-terminated UTF-8 argument (None stays NULL)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _path(value: Optional[StrPath]) -> Optional[bytes]:
    """A file name argument: str, bytes or os.PathLike, in the file system's encoding."""
    if value is None:
        return None
    return os.fsencode(value)


def _copy_text(function: Any, handle: Any) -> str:
    """A text the library copies out as ``apm_last_error_message`` does (size first, then fill)."""
    size = c_size_t(0)
    check(function(handle, None, 0, byref(size)))
    buffer = ctypes.create_string_buffer(size.value + 1)
    check(function(handle, buffer, len(buffer), byref(size)))
    return buffer.raw[:min(size.value, len(buffer) - 1)].decode("utf-8", "replace")


def _copy_bytes(function: Any, handle: Any, *args: Any) -> bytes:
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

    def __init__(self, handle: Optional[int]) -> None:
        self._handle = handle
        self._closed = False

    def _close_native(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Close the handle (idempotent). Pending operations complete; their End raises
        ObjectDisposedError."""
        if not self._closed:
            self._closed = True
            check(self._close_native())

    def _mark_closed(self) -> None:
        """The library closed this handle together with another object (an owning stream)."""
        self._closed = True

    def __enter__(self: H) -> H:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Pending operations keep their owner alive (see _async), so this runs only when no
        # callback can still come. Once apmnet's atexit hook has shut the runtime down, the handles
        # are left to the process exit rather than waking the runtime up again.
        try:
            if not self._closed and not _native.finalizing:
                self.close()
        except Exception:
            pass

    def _get_i32(self, function: Any) -> int:
        out = c_int32(0)
        check(function(self._handle, byref(out)))
        return out.value

    def _get_flag(self, function: Any) -> bool:
        """A 0/1 state; False once the handle is closed, as .NET's CanRead or IsAuthenticated after
        Dispose."""
        out = c_int32(0)
        status = function(self._handle, byref(out))
        if status == Status.OBJECT_DISPOSED:
            return False
        check(status)
        return bool(out.value)


# Properties of a handle, one line each in the classes ---------------------------------------------

class _Get(Generic[T]):
    """A read-only property whose value ``read(instance)`` gives (typed: ``_Get[bool]`` reads as a
    bool)."""

    def __init__(self, read: Callable[[Any], T], doc: Optional[str] = None) -> None:
        self._read = read
        self.__doc__ = doc

    @overload
    def __get__(self, instance: None, owner: Optional[type] = None) -> _Get[T]: ...

    @overload
    def __get__(self, instance: object, owner: Optional[type] = None) -> T: ...

    def __get__(self, instance: Optional[object], owner: Optional[type] = None) -> Union[T, _Get[T]]:
        return self if instance is None else self._read(instance)

    def __set__(self, instance: object, value: Any) -> None:
        raise AttributeError("read-only property")


class _GetSet(_Get[T]):
    """A property that ``write(instance, value)`` sets as well."""

    def __init__(self, read: Callable[[Any], T], write: Callable[[Any, T], None],
                 doc: Optional[str] = None) -> None:
        super().__init__(read, doc)
        self._write = write

    def __set__(self, instance: object, value: T) -> None:
        self._write(instance, value)


def _i32_property(getter: Any, convert: Callable[[int], T], doc: Optional[str] = None) -> _Get[T]:
    """A read-only property read with ``getter(handle, &int32)`` and ``convert``."""
    return _Get(lambda self: convert(self._get_i32(getter)), doc)


def _i32_setting(getter: Any, setter: Any, convert: Callable[[int], T],
                 doc: Optional[str] = None) -> _GetSet[T]:
    """:func:`_i32_property` that ``setter(handle, int(value))`` writes."""
    def put(self: _Handle, value: Any) -> None:
        check(setter(self._handle, int(value)))

    return _GetSet(lambda self: convert(self._get_i32(getter)), put, doc)


def _flag_property(getter: Any, doc: Optional[str] = None) -> _Get[bool]:
    """A read-only 0/1 property (see :meth:`_Handle._get_flag`)."""
    return _Get(lambda self: self._get_flag(getter), doc)


def _text_property(getter: Any, doc: Optional[str] = None) -> _Get[str]:
    """A read-only property: the text ``getter`` copies out (see :func:`_copy_text`)."""
    return _Get(lambda self: _copy_text(getter, self._handle), doc)


def _bytes_property(getter: Any, doc: Optional[str] = None) -> _Get[bytes]:
    """A read-only property: the bytes ``getter`` copies out (see :func:`_copy_bytes`)."""
    return _Get(lambda self: _copy_bytes(getter, self._handle), doc)
