"""asyncio on top of Begin/End: the callback wakes the loop with call_soon_threadsafe."""

import asyncio
import os
import threading

import pytest

import apmnet
from apmnet import SocketShutdown
from conftest import HANG_GUARD, connect, echo, hold, sha256, sink


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, HANG_GUARD))


def test_write_and_read_coroutines(peer):
    p = peer(echo)

    async def main():
        s = apmnet.Socket()
        await s.connect_async("127.0.0.1", p.port)
        with s, apmnet.NetworkStream(s) as stream:
            data = os.urandom(1 << 20)
            writer = asyncio.ensure_future(stream.write_async(data))
            received = bytearray()
            while len(received) < len(data):
                chunk = await stream.read_async(65536)
                assert chunk
                received += chunk
            await writer
            assert bytes(received) == data
            s.shutdown(SocketShutdown.Send)
            assert await stream.read_async(10) == b""

    run(main())
    assert p.result() == 1 << 20


def test_send_file_coroutine(peer, random_file):
    path, content = random_file
    p = peer(sink)

    async def main():
        with connect(p.port) as s:
            await s.send_file_async(path, b"<", b">")
            s.shutdown(SocketShutdown.Send)

    run(main())
    assert p.result() == (len(content) + 2, sha256(b"<", content, b">"))


def test_many_streams_concurrently(peer):
    p = peer(echo)

    async def one(i):
        with connect(p.port) as s, apmnet.NetworkStream(s) as stream:
            message = b"stream %d " % i * 1000
            await stream.write_async(message)
            got = bytearray()
            while len(got) < len(message):
                got += await stream.read_async(len(message) - len(got))
            return bytes(got) == message

    async def main():
        return await asyncio.gather(*(one(i) for i in range(16)))

    assert run(main()) == [True] * 16


def test_errors_surface_from_await(peer, tmp_path):
    p = peer(echo)

    async def main():
        with connect(p.port) as s:
            with pytest.raises(apmnet.FileNotFoundException):
                await s.send_file_async(tmp_path / "absent")
            stream = apmnet.NetworkStream(s)
            stream.close()
            with pytest.raises(apmnet.ObjectDisposedError):
                await stream.write_async(b"x")

    run(main())


def test_error_completed_on_an_engine_thread_reaches_the_task(peer):
    """A pending read aborted by close: End runs on the engine thread and the task gets the error."""
    release = threading.Event()
    p = peer(hold(release))

    async def main():
        s = connect(p.port)
        stream = apmnet.NetworkStream(s, owns_socket=True)
        reader = asyncio.ensure_future(stream.read_async(10))
        await asyncio.sleep(0)  # let the read begin
        stream.close()
        with pytest.raises(apmnet.ObjectDisposedError):
            await reader

    try:
        run(main())
    finally:
        release.set()
