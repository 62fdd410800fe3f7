"""NetworkStream: synchronous and Begin/End reads and writes, ordering, lifetime of buffers."""

import gc
import os
import threading

import pytest

import apmnet
from apmnet import FileAccess, SocketShutdown
from conftest import HANG_GUARD, connect, echo, gated, read_exactly, sha256, sink


def test_sync_write_and_read(peer):
    p = peer(echo)
    with connect(p.port) as s, apmnet.NetworkStream(s) as stream:
        assert stream.can_read and stream.can_write
        stream.write(b"0123456789", 3, 4)
        assert read_exactly(stream.readinto, 4) == b"3456"
        stream.write(bytearray(b"bytearray"))
        stream.write(memoryview(b"..memoryview..")[2:-2])
        assert read_exactly(stream.readinto, 19) == b"bytearraymemoryview"
        s.shutdown(SocketShutdown.Send)
        assert stream.read(100) == b""  # end of stream
    assert p.result() == 23


def test_begin_write_end_write_large_buffer(peer):
    p = peer(sink)
    data = os.urandom(8 * 1024 * 1024 + 3)
    with connect(p.port) as s, apmnet.NetworkStream(s) as stream:
        done = threading.Event()
        result = stream.begin_write(data, callback=lambda r: done.set(), state=42)
        assert result.async_state == 42
        assert done.wait(HANG_GUARD)
        stream.end_write(result)
        s.shutdown(SocketShutdown.Send)
    assert p.result() == (len(data), sha256(data))


def test_pending_writes_go_out_in_order_and_survive_gc(peer):
    """Writes queued behind a peer that does not read yet: their callbacks and buffers are only
    referenced by the library's state table, and the bytes arrive in Begin order."""
    gate = threading.Event()
    p = peer(gated(gate, sink))
    chunks = [bytes([i]) * (1024 * 1024 + i) for i in range(40)]
    completed = []
    all_done = threading.Event()
    with connect(p.port) as s, apmnet.NetworkStream(s) as stream:
        def begin(i):
            def on_write(result):
                stream.end_write(result)
                completed.append(i)
                if len(completed) == len(chunks):
                    all_done.set()
            # no reference to the result, the callback or the (copied) buffer is kept here
            stream.begin_write(bytearray(chunks[i]), callback=on_write)

        for i in range(len(chunks)):
            begin(i)
        gc.collect()
        assert not all_done.is_set()  # 40 MiB cannot all fit in the socket buffers
        gate.set()
        assert all_done.wait(HANG_GUARD)
        assert sorted(completed) == list(range(len(chunks)))
        s.shutdown(SocketShutdown.Send)
    total = sum(map(len, chunks))
    assert p.result() == (total, sha256(*chunks))


def test_one_read_and_one_write_pending_together(peer):
    p = peer(echo)
    with connect(p.port) as s, apmnet.NetworkStream(s) as stream:
        buffer = bytearray(5)
        read = stream.begin_read(buffer)
        write = stream.begin_write(b"hello")
        stream.end_write(write)
        n = stream.end_read(read)
        assert 0 < n <= 5 and buffer[:n] == b"hello"[:n]
        assert read_exactly(stream.readinto, 5 - n) == b"hello"[n:]


def test_read_only_and_write_only_streams(peer):
    p = peer(echo)
    with connect(p.port) as s:
        reader = apmnet.NetworkStream(s, FileAccess.Read)
        assert reader.can_read and not reader.can_write
        with pytest.raises(apmnet.InvalidOperationError) as error:
            reader.write(b"no")
        assert error.value.message == "The stream does not support writing."
        writer = apmnet.NetworkStream(s, FileAccess.Write)
        assert writer.can_write and not writer.can_read
        with pytest.raises(apmnet.InvalidOperationError) as error:
            writer.begin_read(bytearray(1))
        assert error.value.message == "The stream does not support reading."
        writer.write(b"ok")
        assert read_exactly(reader.readinto, 2) == b"ok"
        reader.close()
        writer.close()
        assert s.connected  # the streams did not own the socket
        s.send(b"!")


def test_owning_stream_closes_the_socket(peer):
    p = peer(echo)
    s = connect(p.port)
    stream = apmnet.NetworkStream(s, owns_socket=True)
    stream.close()
    assert not stream.can_read and not stream.can_write
    with pytest.raises(apmnet.ObjectDisposedError):
        s.send(b"x")
    with pytest.raises(apmnet.ObjectDisposedError):
        stream.write(b"x")


def test_read_buffer_must_be_writable(peer):
    p = peer(echo)
    with connect(p.port) as s, apmnet.NetworkStream(s) as stream:
        with pytest.raises(TypeError):
            stream.begin_read(b"immutable")


def test_end_of_stream_reads_zero(peer):
    p = peer(lambda conn: conn.sendall(b"bye"))
    with connect(p.port) as s, apmnet.NetworkStream(s) as stream:
        assert read_exactly(stream.readinto, 3) == b"bye"
        result = stream.begin_read(bytearray(10))
        assert stream.end_read(result) == 0
