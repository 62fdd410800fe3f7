"""A Python object as a library stream (``apm_stream_create_custom``), so that an SslStream can sit
on anything that reads and writes bytes: a ``socket.socket``, a raw file object, a user class.

The library calls ``begin_read``/``begin_write`` from whatever thread drives the stream (often an
engine thread), and they must not block. So each direction has a worker thread that makes the
object's blocking call and then reports it with the ``complete`` function the library passed. The
module-level ctypes trampolines live as long as the process; the ``ctx`` the library holds is an id
in :data:`_adapters`, which keeps the adapter (the object, the workers) alive until the library has
called ``close(ctx)``.
"""

from __future__ import annotations

import ctypes
import itertools
import queue
import socket
import threading
from typing import Any, Callable, Dict, Optional
from ctypes import byref, c_uint8, c_void_p

from ._native import (CUSTOM_BEGIN_READ, CUSTOM_BEGIN_WRITE, CUSTOM_CLOSE, StreamVtable, check, lib)
from .errors import Status
from .streams import Stream

__all__ = ["ObjectStream"]

_ids = itertools.count(1)
#: ctx id -> _Adapter, from creation until the library called close(ctx).
_adapters: Dict[int, _Adapter] = {}
_lock = threading.Lock()


class _Worker:
    """One daemon thread running one direction's blocking calls in order."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Optional[Callable[[], None]]] = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None

    def submit(self, job: Callable[[], None]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()


class _Adapter:
    """What the library's calls reach: the object, how to read and write it, the two workers."""

    def __init__(self, target: Any, close_target: bool) -> None:
        self.target = target
        self.close_target = close_target
        self.closed = False
        self.reader = _Worker("apmnet-stream-read")
        self.writer = _Worker("apmnet-stream-write")
        self._read = _reader_of(target)
        self._write = _writer_of(target)

    def read(self, address: int, count: int, complete: Any, token: int) -> None:
        def transfer() -> int:
            view = memoryview((c_uint8 * count).from_address(address)).cast("B")
            return self._read(view) or 0

        self._submit(self.reader, transfer, complete, token)

    def write(self, address: int, count: int, complete: Any, token: int) -> None:
        def transfer() -> int:
            done = self._write(ctypes.string_at(address, count))
            return count if done is None else done

        self._submit(self.writer, transfer, complete, token)

    def _submit(self, worker: _Worker, transfer: Callable[[], int], complete: Any, token: int) -> None:
        """Run ``transfer()`` (the byte count) on ``worker``, then report it to the library."""
        def job() -> None:
            status, done = Status.OK, 0
            try:
                done = transfer()
            except BaseException:  # the object's failure becomes the operation's
                status = Status.OBJECT_DISPOSED if self.closed else Status.IO
            complete(token, int(status), done)

        worker.submit(job)

    def close(self) -> None:
        self.closed = True
        if self.close_target:
            target = self.target
            if isinstance(target, socket.socket) or hasattr(target, "shutdown"):
                try:  # wakes a worker blocked in recv on the socket
                    target.shutdown(socket.SHUT_RDWR)
                except (OSError, TypeError, ValueError):
                    pass
            try:
                target.close()
            except Exception:
                pass
        self.reader.stop()
        self.writer.stop()


def _reader_of(target: Any) -> Callable[[memoryview], Optional[int]]:
    for name in ("recv_into", "readinto"):
        method = getattr(target, name, None)
        if callable(method):
            return method
    read = getattr(target, "recv", None) or getattr(target, "read", None)
    if callable(read):
        def read_into(view: memoryview) -> int:
            data = read(len(view))
            view[:len(data)] = data
            return len(data)

        return read_into
    raise TypeError(f"{type(target).__name__!r} object cannot be read: it needs recv_into, readinto, "
                    "recv or read")


def _writer_of(target: Any) -> Callable[[bytes], Optional[int]]:
    for name in ("send", "write"):
        method = getattr(target, name, None)
        if callable(method):
            return method
    raise TypeError(f"{type(target).__name__!r} object cannot be written: it needs send or write")


def _adapter(ctx: int) -> Optional[_Adapter]:
    with _lock:
        return _adapters.get(ctx)


def _on_begin(operation: Callable[[_Adapter, int, int, Any, int], None]) -> Callable[..., int]:
    """The library's begin_read or begin_write: ``operation`` (_Adapter.read or .write) of the
    adapter of ``ctx``."""
    def begin(ctx: int, buffer: int, count: int, complete: Any, token: int) -> int:
        adapter = _adapter(ctx)
        if adapter is None or adapter.closed:
            return int(Status.OBJECT_DISPOSED)
        operation(adapter, buffer, count, complete, token)
        return 0

    return begin


def _on_close(ctx: int) -> None:
    with _lock:
        adapter = _adapters.pop(ctx, None)
    if adapter is not None:
        try:
            adapter.close()
        except BaseException:  # never unwind into the library
            pass


_BEGIN_READ = CUSTOM_BEGIN_READ(_on_begin(_Adapter.read))
_BEGIN_WRITE = CUSTOM_BEGIN_WRITE(_on_begin(_Adapter.write))
_CLOSE = CUSTOM_CLOSE(_on_close)
_VTABLE = StreamVtable(_BEGIN_READ, _BEGIN_WRITE, _CLOSE)


class ObjectStream(Stream):
    """A library stream whose reads and writes are a Python object's blocking calls:
    ``recv_into``/``readinto`` (or ``recv``/``read``) and ``send``/``write``. Closing the stream closes
    the object when ``close_target`` is true (a socket is shut down first, which wakes a pending
    read)."""

    def __init__(self, target: Any, close_target: bool = True) -> None:
        adapter = _Adapter(target, close_target)
        ctx = next(_ids)
        with _lock:
            _adapters[ctx] = adapter
        out = c_void_p()
        status = lib.apm_stream_create_custom(byref(_VTABLE), ctx, byref(out))
        if status != 0:
            with _lock:
                _adapters.pop(ctx, None)
            check(status)
        super().__init__(out.value)
        self.target = target
        self._adapter = adapter
