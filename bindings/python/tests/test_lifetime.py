"""Lifetimes: callbacks and the garbage collector, callback exceptions, shutdown, process exit."""

import gc
import os
import pathlib
import subprocess
import sys
import textwrap
import threading
import weakref

import apmnet
from conftest import HANG_GUARD, connect, echo, eventually, gated, hold


def run_child(code):
    """Run ``code`` in a fresh interpreter that loads the same apmnet package and library."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(pathlib.Path(apmnet.__file__).resolve().parent.parent)
    env["APMNET_LIBRARY"] = apmnet.library_path
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=HANG_GUARD)


def test_process_exits_cleanly_with_operations_pending():
    """The atexit hook shuts the runtime down: pending operations are aborted, their callbacks run
    (End inside them reports the abort), the engine threads are joined, and the process exits 0."""
    child = run_child("""
        import socket
        import apmnet

        server = socket.create_server(("127.0.0.1", 0))
        s = apmnet.Socket()
        s.connect("127.0.0.1", server.getsockname()[1])
        peer, _ = server.accept()  # stays open, never reads nor writes
        stream = apmnet.NetworkStream(s)

        def report(kind, end):
            def callback(result):
                try:
                    end(result)
                    print(kind, "completed", flush=True)
                except apmnet.ApmError as error:
                    print(kind, "aborted", type(error).__name__, flush=True)
            return callback

        read = stream.begin_read(bytearray(16), callback=report("read", stream.end_read))
        write = stream.begin_write(bytes(64 << 20), callback=report("write", stream.end_write))
        listener = apmnet.Socket()
        listener.bind("127.0.0.1", 0)
        listener.listen(1)
        accept = listener.begin_accept()  # no callback at all
        print("pending", read.is_completed, write.is_completed, accept.is_completed, flush=True)
        # the script ends here: no End, no close
    """)
    assert child.returncode == 0, child.stderr
    lines = child.stdout.splitlines()
    assert lines[0] == "pending False False False"
    assert sorted(line.split()[:2] for line in lines[1:]) == [["read", "aborted"],
                                                              ["write", "aborted"]]
    assert "Traceback" not in child.stderr


def test_process_exits_cleanly_from_sys_exit_inside_work():
    child = run_child("""
        import socket, sys
        import apmnet

        server = socket.create_server(("127.0.0.1", 0))
        s = apmnet.Socket()
        s.connect("127.0.0.1", server.getsockname()[1])
        peer, _ = server.accept()
        s.begin_receive(bytearray(1), callback=lambda r: print("callback ran", flush=True))
        sys.exit(3)
    """)
    assert child.returncode == 3, child.stderr
    assert child.stdout.splitlines() == ["callback ran"]


def test_runtime_configure_in_a_fresh_process():
    child = run_child("""
        import socket
        import apmnet

        for threads, spin in ((65, 0), (-1, 0), (2, -1)):
            try:
                apmnet.runtime_configure(threads, spin)
                print("accepted", threads, spin)
            except apmnet.ArgumentOutOfRangeError:
                pass
        apmnet.runtime_configure(2, 0)
        server = socket.create_server(("127.0.0.1", 0))
        with apmnet.Socket() as s:
            s.end_connect(s.begin_connect("127.0.0.1", server.getsockname()[1]))
            s.end_send(s.begin_send(b"x"))
        try:
            apmnet.runtime_configure(2, 0)
            print("configured while running")
        except apmnet.InvalidOperationError:
            print("ok")
    """)
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == ["ok"]


def test_runtime_shutdown_aborts_pending_operations_and_restarts(peer):
    release = threading.Event()
    p = peer(hold(release))
    try:
        with connect(p.port) as s:
            outcome = {}

            def on_receive(result):
                try:
                    outcome["value"] = s.end_receive(result)
                except apmnet.ApmError as error:
                    outcome["value"] = error

            s.begin_receive(bytearray(8), callback=on_receive)
            apmnet.runtime_shutdown()
            # shutdown ran the callback and joined the threads before returning
            assert isinstance(outcome["value"], apmnet.ApmError)
    finally:
        release.set()
    q = peer(echo)
    with connect(q.port) as s, apmnet.NetworkStream(s) as stream:  # the runtime starts again
        stream.end_write(stream.begin_write(b"again"))
        buffer = bytearray(5)
        got = 0
        while got < 5:
            got += stream.end_read(stream.begin_read(buffer, got))
        assert buffer == b"again"


def test_runtime_shutdown_from_a_callback_is_refused(peer):
    gate = threading.Event()
    p = peer(gated(gate, lambda conn: conn.sendall(b"!")))
    outcome = {}
    done = threading.Event()
    with connect(p.port) as s:
        def on_receive(result):
            try:
                apmnet.runtime_shutdown()
                outcome["value"] = "shut down from a callback"
            except apmnet.InvalidOperationError as error:
                outcome["value"] = error
            s.end_receive(result)
            done.set()

        s.begin_receive(bytearray(1), callback=on_receive)
        gate.set()
        assert done.wait(HANG_GUARD)
    assert isinstance(outcome["value"], apmnet.InvalidOperationError)


def test_exception_in_a_callback_is_reported_not_fatal(peer, capfd):
    gate = threading.Event()
    p = peer(gated(gate, echo))
    with connect(p.port) as s:
        def explode(result):
            raise RuntimeError("boom from a callback")

        inline = s.begin_send(b"x", callback=explode)  # completes inside Begin
        assert isinstance(inline.callback_exception, RuntimeError)
        s.end_send(inline)
        pending = s.begin_receive(bytearray(1), callback=explode)
        gate.set()  # the echo comes back: the callback runs on an engine thread
        eventually(lambda: pending.callback_exception is not None, "the callback")
        assert isinstance(pending.callback_exception, RuntimeError)
        assert s.end_receive(pending) == 1
        # the library and the socket carry on
        assert s.send(b"y") == 1
    assert "boom from a callback" in capfd.readouterr().err


def test_a_pending_operation_keeps_its_socket_alive(peer):
    gate = threading.Event()
    p = peer(gated(gate, lambda conn: conn.sendall(b"late")))
    outcome = {}
    done = threading.Event()

    def start():
        s = connect(p.port)
        ref = weakref.ref(s)

        def on_receive(result):
            sock = ref()
            try:
                outcome["count"] = sock.end_receive(result)
            except BaseException as error:
                outcome["count"] = error
            done.set()

        s.begin_receive(bytearray(8), callback=on_receive)
        return ref

    ref = start()
    gc.collect()
    assert ref() is not None  # held by the pending operation, not collected (and not closed)
    gate.set()
    assert done.wait(HANG_GUARD)
    assert isinstance(outcome["count"], int) and outcome["count"] > 0

    def collected():
        gc.collect()
        return ref() is None

    eventually(collected, "collecting the socket once its callback ran")


def test_callbacks_run_exactly_once_under_load(peer):
    p = peer(echo)
    total = 300
    counts = {}
    lock = threading.Lock()
    all_called = threading.Event()
    with connect(p.port) as s, apmnet.NetworkStream(s) as stream:
        results = []
        for i in range(total):
            def on_write(result, i=i):
                with lock:
                    counts[i] = counts.get(i, 0) + 1
                    if len(counts) == total:
                        all_called.set()
            results.append(stream.begin_write(b"%06d" % i, callback=on_write))
        for result in results:
            stream.end_write(result)
        received = bytearray()
        while len(received) < 6 * total:
            chunk = stream.read(65536)
            assert chunk
            received += chunk
        assert all_called.wait(HANG_GUARD)
    with lock:
        assert counts == {i: 1 for i in range(total)}
    assert bytes(received) == b"".join(b"%06d" % i for i in range(total))
