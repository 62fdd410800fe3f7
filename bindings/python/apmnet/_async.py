"""IAsyncResult, and the bridge from the library's completion callbacks into Python.

One ctypes trampoline (a module-level CFUNCTYPE object, alive as long as the module) is passed to
every Begin call. The ``void *state`` it receives is an integer id; :data:`_pending` maps that id to
the :class:`AsyncResult`, which holds the user's callback, state and the buffers the library uses,
from just before Begin until the callback ran. Nothing the library may still call or touch can be
garbage collected in between.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import sys
import traceback
from ctypes import POINTER, byref, c_int32, c_size_t, c_uint8, c_void_p
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, Optional, Tuple, TypeVar, Union

from . import _native
from ._native import ASYNC_CALLBACK, PROGRESS_CALLBACK, check, lib
from .errors import ArgumentError, NotSupportedError, Status

__all__ = ["AsyncResult", "AsyncCallback", "ProgressCallback", "ReadableBuffer", "WritableBuffer"]

if TYPE_CHECKING:
    import array

    #: A bytes-like object the library only reads.
    ReadableBuffer = Union[bytes, bytearray, memoryview, "array.array[Any]"]
    #: A writable bytes-like object the library fills in place.
    WritableBuffer = Union[bytearray, memoryview, "array.array[Any]"]
    #: System.AsyncCallback: ``callback(result)``, its return value ignored.
    AsyncCallback = Callable[["AsyncResult"], object]
    #: BeginSendFile's progress: ``progress(result, bytes_sent)``.
    ProgressCallback = Callable[["AsyncResult", int], object]

T = TypeVar("T")

_NOT_RETURNED_BY_US = ("The IAsyncResult object was not returned from the corresponding "
                       "asynchronous method on this class.")

_ids = itertools.count(1)
#: id (the void *state given to Begin) -> AsyncResult, until its callback ran.
_pending: Dict[int, AsyncResult] = {}


class AsyncResult:
    """System.IAsyncResult for one Begin call; give it to the matching End method.

    ``callback(result)`` runs exactly once: inline on the thread that called Begin before Begin
    returns (``completed_synchronously``), or else on one of the library's engine threads. Keep
    callbacks short; an exception raised in one is printed and stored in ``callback_exception``.
    """

    def __init__(self, owner: object, callback: Optional[AsyncCallback], state: Any,
                 keepalive: Any = None, progress: Optional[ProgressCallback] = None) -> None:
        self._owner = owner
        self._callback = callback
        self._state = state
        self._keepalive = keepalive
        self._progress = progress
        self._handle: Optional[int] = None
        self._ended = False
        self._completed_synchronously: Optional[bool] = None
        self._id = next(_ids)
        #: The exception the callback raised, if any.
        self.callback_exception: Optional[BaseException] = None

    def __repr__(self) -> str:
        status = "ended" if self._ended else "pending"
        return f"<apmnet.AsyncResult {self._id} {status} of {self._owner!r}>"

    @property
    def async_state(self) -> Any:
        """The ``state`` object given to Begin, unchanged."""
        return self._state

    @property
    def is_completed(self) -> bool:
        """True once the operation has finished (success, failure or abort)."""
        value = self._query(lib.apm_async_result_is_completed)
        return True if value is None else value

    @property
    def completed_synchronously(self) -> bool:
        """True if the operation finished inside Begin (and the callback ran on Begin's thread)."""
        if self._completed_synchronously is not None:
            return self._completed_synchronously
        value = self._query(lib.apm_async_result_completed_synchronously)
        return bool(self._completed_synchronously) if value is None else value

    def wait(self, timeout_ms: Optional[int] = -1) -> bool:
        """Block until the operation completes or ``timeout_ms`` passes (-1 or None: no limit).

        Returns True if it completed. (End blocks by itself; this is AsyncWaitHandle.WaitOne.)
        """
        value = self._query(lib.apm_async_result_wait, -1 if timeout_ms is None else timeout_ms)
        return True if value is None else value

    def cancel(self) -> None:
        """Cancel the pending operation: it completes with SocketError.OperationAborted (995), its
        callback runs, and End raises that error (a NetworkStream's as an IOException over it). A
        cancelled read has consumed no byte. A completed operation is left alone. Raises
        NotSupportedError for an operation that cannot be cancelled (a custom stream's)."""
        if self._ended:
            return
        status = lib.apm_async_result_cancel(self._handle)
        if status != 0 and not self._ended:
            raise _native.last_error(status)

    def _query(self, function: Any, *args: Any) -> Optional[bool]:
        """The library's 0/1 answer (``function(handle, *args, &answer)``), or None once End has
        released the result."""
        if self._ended:
            return None
        out = c_int32(0)
        status = function(self._handle, *args, byref(out))
        if status != 0:
            error = _native.last_error(status)
            if self._ended:  # End released the result on another thread meanwhile
                return None
            raise error
        return bool(out.value)

    def _before_end(self) -> None:
        # completed_synchronously is fixed once Begin has returned; keep it for after End.
        if not self._ended and self._completed_synchronously is None and self._handle is not None:
            out = c_int32(0)
            if lib.apm_async_result_completed_synchronously(self._handle, byref(out)) == 0:
                self._completed_synchronously = bool(out.value)

    def _released(self) -> None:
        self._ended = True
        self._keepalive = None
        if self._completed_synchronously is None:
            self._completed_synchronously = False


def _report_callback_error(result: AsyncResult, error: BaseException) -> None:
    try:
        print(f"apmnet: exception in the callback of {result!r}:", file=sys.stderr)
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    finally:
        result.callback_exception = error


def _on_complete(result_handle: Optional[int], state: int) -> None:
    result = _pending.pop(state, None)
    if result is None:
        return
    try:
        if result._handle is None:  # the callback ran inline, before Begin handed the result out
            result._handle = result_handle
        result._keepalive = None  # the operation is complete: the library is done with the buffers
        if result._callback is not None:
            result._callback(result)
    except BaseException as error:  # never unwind into the library's frames
        _report_callback_error(result, error)


def _on_progress(result_handle: Optional[int], bytes_sent: int, state: int) -> None:
    result = _pending.get(state)
    if result is None or result._progress is None:
        return
    try:
        result._progress(result, bytes_sent)
    except BaseException as error:
        _report_callback_error(result, error)


_COMPLETE = ASYNC_CALLBACK(_on_complete)
_PROGRESS = PROGRESS_CALLBACK(_on_progress)


def begin(owner: object, function: Any, handle: Optional[int], args: Tuple[Any, ...],
          callback: Optional[AsyncCallback], state: Any, keepalive: Any = None,
          progress: Optional[ProgressCallback] = None) -> AsyncResult:
    """Call ``function(handle, *args, [progress,] callback, state, &result)``.

    Returns the AsyncResult; raises the Begin's error (read on this thread, right after the call).
    """
    for hook in (callback, progress):
        if hook is not None and not callable(hook):
            raise TypeError(f"callbacks must be callable, not {type(hook).__name__!r}")
    result = AsyncResult(owner, callback, state, keepalive, progress)
    _pending[result._id] = result
    out = c_void_p()
    if progress is None:
        status = function(handle, *args, _COMPLETE, result._id, byref(out))
    else:
        status = function(handle, *args, _PROGRESS, _COMPLETE, result._id, byref(out))
    if status != 0:
        error = _native.last_error(status)  # first, on this thread: the record is thread-local
        _pending.pop(result._id, None)  # a failed Begin never calls back
        raise error
    if result._handle is None:
        result._handle = out.value
    return result


def end(function: Any, handle: Optional[int], result: Optional[AsyncResult], *outs: Any) -> None:
    """Call ``function(handle, result, *outs)``, raising the operation's error."""
    if result is None:
        result_handle = None
    elif isinstance(result, AsyncResult):
        result._before_end()
        result_handle = result._handle
    else:
        raise ArgumentError(_NOT_RETURNED_BY_US, Status.ARGUMENT)
    status = function(handle, result_handle, *outs)
    if status != 0:
        error = _native.last_error(status)
        # A null or foreign result is refused before End looks at it; anything else released it.
        if result is not None and status not in (Status.ARGUMENT_NULL, Status.ARGUMENT):
            result._released()
        raise error
    assert result is not None  # End of a null result failed above
    result._released()


async def await_operation(begin_call: Callable[[AsyncCallback], AsyncResult],
                          end_call: Callable[[AsyncResult], T]) -> T:
    """Run one Begin/End pair as an asyncio awaitable.

    ``begin_call(callback)`` starts the operation and returns its AsyncResult; the callback runs
    End (on the engine thread, or inline when the operation completed inside Begin) and hands the
    outcome to the event loop with ``loop.call_soon_threadsafe``.

    Cancelling the awaiting task cancels the operation in the library (``AsyncResult.cancel``):
    a cancelled read has taken no byte. An operation the library cannot cancel (a custom stream's)
    is awaited to its end instead and its outcome returned, so that nothing it brought in is lost.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, error: Optional[BaseException]) -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def on_complete(result: AsyncResult) -> None:
        try:
            value: Any = end_call(result)
            error: Optional[BaseException] = None
        except Exception as exc:  # the operation's error, delivered to the awaiting task
            value, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    result = begin_call(on_complete)
    try:
        # Shielded: the future must outlive a cancellation of this task, to take End's outcome.
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if future.done() or not isinstance(result, AsyncResult):
            raise
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            result.cancel()
        except NotSupportedError:
            return await future  # cannot be cancelled: its outcome goes to whoever keeps this task
        raise


# Buffers ---------------------------------------------------------------------------------------

def readable_buffer(data: Optional[ReadableBuffer]) -> Tuple[Any, int, Any]:
    """``(pointer, length, keepalive)`` for bytes-like ``data`` the library only reads (no copy
    unless it is a read-only buffer other than ``bytes``). ``None`` gives a NULL pointer."""
    if data is None:
        return None, 0, None
    if isinstance(data, bytes):
        return ctypes.cast(data, POINTER(c_uint8)), len(data), data  # type: ignore[arg-type]
    view = _byte_view(data)
    if view.readonly:
        copy = view.tobytes()
        return ctypes.cast(copy, POINTER(c_uint8)), len(copy), copy  # type: ignore[arg-type]
    array = (c_uint8 * view.nbytes).from_buffer(view)
    return array, view.nbytes, (array, view, data)


def writable_buffer(data: Optional[WritableBuffer]) -> Tuple[Any, int, Any]:
    """``(pointer, length, keepalive)`` for a writable bytes-like object (bytearray, memoryview,
    array, ...) the library fills in place. ``None`` gives a NULL pointer."""
    if data is None:
        return None, 0, None
    view = _byte_view(data)
    if view.readonly:
        raise TypeError(f"a writable bytes-like object is required, not {type(data).__name__!r}")
    array = (c_uint8 * view.nbytes).from_buffer(view)
    return array, view.nbytes, (array, view, data)


def _byte_view(data: Any) -> memoryview:
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def buffer_args(buffer: Any, offset: int, count: Optional[int],
                writable: bool = False) -> Tuple[Tuple[Any, int, int, int], Any]:
    """``(pointer, length, offset, count), keepalive``: the library's arguments for
    ``buffer[offset:offset+count]``, with .NET's default count (None: to the end of the buffer). The
    library fills the buffer when ``writable``, else only reads it."""
    pointer, length, keepalive = (writable_buffer if writable else readable_buffer)(buffer)
    if count is None:
        count = max(length - offset, 0) if offset >= 0 else 0
    return (pointer, length, offset, count), keepalive


def sized(function: Any, handle: Optional[int], *args: Any) -> int:
    """``function(handle, *args, &size)``, checked: the byte count it gives (sent, received,
    read)."""
    size = c_size_t(0)
    check(function(handle, *args, byref(size)))
    return size.value


def end_sized(function: Any, handle: Optional[int], result: Optional[AsyncResult]) -> int:
    """:func:`end` for an End that gives a byte count."""
    size = c_size_t(0)
    end(function, handle, result, byref(size))
    return size.value
