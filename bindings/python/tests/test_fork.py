"""fork without exec (multiprocessing's fork start method): the child may use the library, and
nothing it does reaches the parent, whose connections and pending operations go on."""

import multiprocessing
import os
import sys

import pytest

import apmnet
from conftest import connect, echo, sha256, sink

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork start method")


def _child(inherited, port, out):
    try:
        try:
            inherited.send(b"x")
            out.put("the inherited socket still worked")
            return
        except apmnet.ObjectDisposedError:
            pass
        with connect(port) as s:
            s.send(b"from the child")
            s.shutdown(apmnet.SocketShutdown.Send)
        out.put("ok")
    except BaseException as e:  # reported to the parent, which asserts on it
        out.put(repr(e))


def test_a_forked_child_uses_the_library_and_the_parent_goes_on(peer):
    server = peer(echo)
    children_server = peer(sink)
    ctx = multiprocessing.get_context("fork")
    with connect(server.port) as s:
        buffer = bytearray(64)
        pending = s.begin_receive(buffer)  # still pending while the children come and go
        for _ in range(3):
            out = ctx.Queue()
            child = ctx.Process(target=_child, args=(s, children_server.port, out))
            child.start()
            child.join(30)
            assert child.exitcode == 0
            assert out.get(timeout=5) == "ok"
        payload = b"parent" + os.urandom(1 << 20)
        s.send(payload)
        n = s.end_receive(pending)
        assert n > 0
        got = bytearray(buffer[:n])
        while len(got) < len(payload):
            chunk = bytearray(65536)
            n = s.receive(chunk)
            assert n > 0
            got += chunk[:n]
        assert sha256(bytes(got)) == sha256(payload)
        s.shutdown(apmnet.SocketShutdown.Send)
