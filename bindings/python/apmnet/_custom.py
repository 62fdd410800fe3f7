"""A Python object as a library stream (``apm_stream_create_custom``), so that an SslStream can sit
on anything that reads and writes bytes: a ``socket.socket``, a raw file object, a user class.

The library calls ``begin_read``/``begin_write`` from whatever thread drives the stream (often an
engine thread), and they must not block. So each direction has a worker thread that makes the
object's blocking call and then reports it with the ``complete`` function the library passed. The
module-level ctypes trampolines live as long as the process; the ``ctx`` the library holds is an id
in :data:`_adapters`, which keeps the adapter (the object, the workers) alive until the library has
called ``close(ctx)``.
"""

import ctypes
import itertools
import queue
import socket
import threading
from ctypes import byref, c_uint8, c_void_p

from ._native import (CUSTOM_BEGIN_READ, CUSTOM_BEGIN_WRITE, CUSTOM_CLOSE, StreamVtable, check, lib)
from .errors import Status
from .streams import Stream

__all__ = ["ObjectStream"]

_ids = itertools.count(1)
#: ctx id -> _Adapter, from creation until the library called close(ctx).
_adapters = {}
_lock = threading.Lock()


class _Worker:
    """One daemon thread running one direction's blocking calls in order."""

    def __init__(self, name):
        self._name = name
        self._jobs = queue.SimpleQueue()
        self._thread = None

    def submit(self, job):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def stop(self):
        if self._thread is not None:
            self._jobs.put(None)

    def _run(self):
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()


class _Adapter:
    """What the library's calls reach: the object, how to read and write it, the two workers."""

    def __init__(self, target, close_target):
        self.target = target
        self.close_target = close_target
        self.closed = False
        self.reader = _Worker("apmnet-stream-read")
        self.writer = _Worker("apmnet-stream-write")
        self._read = _reader_of(target)
        self._write = _writer_of(target)

    def read(self, address, count, complete, token):
        def transfer():
            view = memoryview((c_uint8 * count).from_address(address)).cast("B")
            return self._read(view) or 0

        self._submit(self.reader, transfer, complete, token)

    def write(self, address, count, complete, token):
        def transfer():
            done = self._write(ctypes.string_at(address, count))
            return count if done is None else done

        self._submit(self.writer, transfer, complete, token)

    def _submit(self, worker, transfer, complete, token):
        """Run ``transfer()`` (the byte count) on ``worker``, then report it to the library."""
        def job():
            status, done = Status.OK, 0
            try:
                done = transfer()
            except BaseException:  # the object's failure becomes the operation's
                status = Status.OBJECT_DISPOSED if self.closed else Status.IO
            complete(token, int(status), done)

        worker.submit(job)

    def close(self):
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


def _reader_of(target):
    for name in ("recv_into", "readinto"):
        method = getattr(target, name, None)
        if callable(method):
            return method
    read = getattr(target, "recv", None) or getattr(target, "read", None)
    if callable(read):
        def read_into(view):
            data = read(len(view))
            view[:len(data)] = data
            return len(data)

        return read_into
    raise TypeError(f"{type(target).__name__!r} object cannot be read: it needs recv_into, readinto, "
                    "recv or read")


def _writer_of(target):
    for name in ("send", "write"):
        method = getattr(target, name, None)
        if callable(method):
            return method
    raise TypeError(f"{type(target).__name__!r} object cannot be written: it needs send or write")


def _adapter(ctx):
    with _lock:
        return _adapters.get(ctx)


def _on_begin(operation):
    """The library's begin_read or begin_write: ``operation`` (_Adapter.read or .write) of the
    adapter of ``ctx``."""
    def begin(ctx, buffer, count, complete, token):
        adapter = _adapter(ctx)
        if adapter is None or adapter.closed:
            return int(Status.OBJECT_DISPOSED)
        operation(adapter, buffer, count, complete, token)
        return 0

    return begin


def _on_close(ctx):
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

    def __init__(self, target, close_target=True):
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
