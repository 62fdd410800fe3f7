"""Socket: synchronous calls, Begin/End, and callbacks arriving from the library's engine threads."""

import ctypes
import socket
import threading

import pytest

import apmnet
from apmnet import SocketShutdown
from conftest import HANG_GUARD, connect, echo, gated, hold, read_exactly


def test_connect_send_receive_sync(peer):
    p = peer(echo)
    with connect(p.port) as s:
        assert s.connected
        assert s.remote_end_point == ("127.0.0.1", p.port)
        address, port = s.local_end_point
        assert address == "127.0.0.1" and port > 0
        message = b"hello, apmnet"
        assert s.send(message) == len(message)
        assert read_exactly(s.receive, len(message)) == message
        # offset/count select part of the buffer, as in .NET
        assert s.send(b"xxABCxx", 2, 3) == 3
        assert read_exactly(s.receive, 3) == b"ABC"
        s.shutdown(SocketShutdown.Send)
        assert s.receive(bytearray(10)) == 0  # the echo peer closes after our FIN
    assert p.result() == len(message) + 3


def test_listen_accept_against_python_client():
    with apmnet.Socket() as listener:
        listener.bind("127.0.0.1", 0)
        listener.listen(4)
        port = listener.local_end_point[1]
        client = socket.create_connection(("127.0.0.1", port))
        with client, listener.accept() as server_side:
            assert server_side.connected
            assert server_side.remote_end_point == client.getsockname()
            client.sendall(b"ping")
            assert read_exactly(server_side.receive, 4) == b"ping"
            server_side.send(b"pong")
            assert client.recv(4) == b"pong"


def test_begin_accept_and_begin_connect_callbacks():
    with apmnet.Socket() as listener:
        listener.bind("127.0.0.1", 0)
        listener.listen(4)
        port = listener.local_end_point[1]
        accepted = {}
        done = threading.Event()

        def on_accept(result):
            accepted["socket"] = listener.end_accept(result)
            accepted["state"] = result.async_state
            done.set()

        accept_result = listener.begin_accept(on_accept, "accept-state")
        with apmnet.Socket() as client:
            connect_result = client.begin_connect("127.0.0.1", port, None, "connect-state")
            assert connect_result.async_state == "connect-state"
            client.end_connect(connect_result)
            assert connect_result.is_completed
            assert client.connected
            assert done.wait(HANG_GUARD)
            assert accept_result.is_completed
            assert accepted["state"] == "accept-state"
            with accepted["socket"] as server_side:
                client.send(b"over apmnet on both ends")
                assert read_exactly(server_side.receive, 24) == b"over apmnet on both ends"


def test_ipv6_loopback():
    try:
        probe = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback")
    probe.close()
    with apmnet.Socket(apmnet.AddressFamily.InterNetworkV6) as listener:
        listener.bind("::1", 0)
        listener.listen(1)
        port = listener.local_end_point[1]
        with apmnet.Socket(apmnet.AddressFamily.InterNetworkV6) as client:
            client.connect(("::1", port))  # an end point tuple works too
            with listener.accept() as server_side:
                assert client.remote_end_point == ("::1", port)
                client.send(b"six")
                assert read_exactly(server_side.receive, 3) == b"six"


def test_callback_comes_from_an_engine_thread(peer):
    """A receive that cannot complete inside Begin calls back later, on a library thread."""
    gate = threading.Event()
    p = peer(gated(gate, lambda conn: conn.sendall(b"hello")))
    with connect(p.port) as s:
        buffer = bytearray(16)
        seen = {}
        done = threading.Event()

        def on_receive(result):
            seen["thread"] = threading.get_ident()
            seen["count"] = s.end_receive(result)
            seen["state"] = result.async_state
            seen["sync"] = result.completed_synchronously
            done.set()

        result = s.begin_receive(buffer, callback=on_receive, state=("my", "state"))
        assert not result.completed_synchronously  # the peer has not sent anything yet
        gate.set()
        assert done.wait(HANG_GUARD)
        assert seen["thread"] != threading.get_ident()
        assert seen["state"] == ("my", "state")
        assert seen["sync"] is False
        assert 0 < seen["count"] <= 5
        assert bytes(buffer[:seen["count"]]) == b"hello"[:seen["count"]]
        assert result.is_completed and result.wait(0)


def test_send_that_fits_completes_synchronously_on_the_calling_thread(peer):
    p = peer(echo)
    with connect(p.port) as s:
        threads = []
        result = s.begin_send(b"tiny", callback=lambda r: threads.append(threading.get_ident()))
        # The callback has run exactly once by the time Begin returned, inline, on this thread.
        assert result.completed_synchronously
        assert threads == [threading.get_ident()]
        assert s.end_send(result) == 4
        assert read_exactly(s.receive, 4) == b"tiny"


def test_wait_with_timeout_on_a_pending_receive(peer):
    release = threading.Event()
    p = peer(hold(release))
    with connect(p.port) as s:
        result = s.begin_receive(bytearray(8))
        assert result.wait(0) is False
        assert result.is_completed is False
        release.set()  # the peer closes: the receive completes with 0 bytes (EOF)
        assert result.wait(HANG_GUARD * 1000)
        assert s.end_receive(result) == 0


def test_callbacks_chain_begin_calls_from_engine_threads(peer):
    """A ping-pong driven entirely from callbacks: each callback Ends and starts the next Begin."""
    p = peer(echo)
    rounds = 200
    with connect(p.port) as s:
        s.no_delay = True
        buffer = bytearray(64)
        state = {"round": 0, "threads": set(), "error": None}
        done = threading.Event()

        def ping():
            message = b"ping %d" % state["round"]
            s.begin_send(message, callback=on_sent, state=message)

        def on_sent(result):
            try:
                assert s.end_send(result) == len(result.async_state)
                s.begin_receive(buffer, callback=on_received, state=(result.async_state, 0))
            except BaseException as error:
                state["error"] = error
                done.set()

        def on_received(result):
            try:
                state["threads"].add(threading.get_ident())
                expected, got = result.async_state
                n = s.end_receive(result)
                assert n > 0
                got += n
                if got < len(expected):
                    s.begin_receive(buffer, got, callback=on_received, state=(expected, got))
                    return
                assert bytes(buffer[:got]) == expected
                state["round"] += 1
                if state["round"] == rounds:
                    done.set()
                else:
                    ping()
            except BaseException as error:
                state["error"] = error
                done.set()

        ping()
        assert done.wait(HANG_GUARD)
        assert state["error"] is None, state["error"]
        assert state["round"] == rounds


def test_many_connections_in_parallel(peer):
    p = peer(echo)
    payloads = [bytes([i]) * (100_000 + i) for i in range(8)]
    sockets = [connect(p.port) for _ in payloads]
    try:
        sends = [s.begin_send(data) for s, data in zip(sockets, payloads)]
        for s, data in zip(sockets, payloads):
            assert read_exactly(s.receive, len(data)) == data
        for s, result, data in zip(sockets, sends, payloads):
            assert s.end_send(result) == len(data)
    finally:
        for s in sockets:
            s.close()


def test_socket_options(peer):
    p = peer(echo)
    with connect(p.port) as s:
        s.no_delay = True
        assert s.no_delay is True
        s.no_delay = False
        assert s.no_delay is False
        s.send_buffer_size = 65536
        assert s.send_buffer_size >= 65536
        s.receive_buffer_size = 65536
        assert s.receive_buffer_size >= 65536
        s.receive_timeout = 1500
        assert s.receive_timeout == 1500
        s.send_timeout = 2500
        assert s.send_timeout == 2500
        s.linger_state = (True, 3)
        assert s.linger_state == apmnet.LingerOption(True, 3)
        s.linger_state = apmnet.LingerOption(False, 0)
        assert s.linger_state.enabled is False
        assert s.available == 0
        s.send(b"abc")
        first = bytearray(1)
        assert s.receive(first) == 1 and first == b"a"
        assert 0 <= s.available <= 2
        assert read_exactly(s.receive, 2) == b"bc"
        assert s.available == 0


def test_close_completes_pending_operations_and_end_reports_disposed(peer):
    release = threading.Event()
    p = peer(hold(release))
    try:
        s = connect(p.port)
        done = threading.Event()
        outcome = {}

        def on_receive(result):
            try:
                s.end_receive(result)
                outcome["value"] = "no error"
            except apmnet.ApmError as error:
                outcome["value"] = error
            done.set()

        result = s.begin_receive(bytearray(8), callback=on_receive)
        s.close()
        assert done.wait(HANG_GUARD)
        assert isinstance(outcome["value"], apmnet.ObjectDisposedError)
        assert outcome["value"].message
        assert result.is_completed
        with pytest.raises(apmnet.ObjectDisposedError):
            s.send(b"x")
        s.close()  # idempotent
    finally:
        release.set()


def test_deep_chains_of_inline_completions_do_not_grow_the_stack(peer):
    """Each callback starts the next send, which completes inside Begin. The library's stack-dive
    guard must move some callbacks to an engine thread, or Python's recursion limit is hit."""
    p = peer(echo)
    total = 3000
    with connect(p.port) as s:
        state = {"count": 0, "depth": 0, "max_depth": 0, "error": None}
        done = threading.Event()

        def on_sent(result):
            state["depth"] += 1
            state["max_depth"] = max(state["max_depth"], state["depth"])
            try:
                s.end_send(result)
                state["count"] += 1
                if state["count"] == total:
                    done.set()
                else:
                    s.begin_send(b"x", callback=on_sent)
            except BaseException as error:
                state["error"] = error
                done.set()
            finally:
                state["depth"] -= 1

        s.begin_send(b"x", callback=on_sent)
        assert done.wait(HANG_GUARD)
        assert state["error"] is None, repr(state["error"])
        assert state["count"] == total
        assert state["max_depth"] < total


def test_end_blocks_until_the_operation_completes(peer):
    gate = threading.Event()
    p = peer(gated(gate, lambda conn: conn.sendall(b"later")))
    with connect(p.port) as s:
        buffer = bytearray(5)
        result = s.begin_receive(buffer)
        opener = threading.Timer(0.05, gate.set)  # whenever it fires, End must wait for the data
        opener.start()
        n = s.end_receive(result)
        opener.join()
        assert 0 < n <= 5 and buffer[:n] == b"later"[:n]


def test_closing_the_socket_from_its_own_callback(peer):
    gate = threading.Event()
    p = peer(gated(gate, lambda conn: conn.sendall(b"bye")))
    done = threading.Event()
    outcome = {}
    s = connect(p.port)

    def on_receive(result):
        try:
            outcome["count"] = s.end_receive(result)
            s.close()
            outcome["closed"] = True
        except BaseException as error:
            outcome["error"] = error
        done.set()

    s.begin_receive(bytearray(8), callback=on_receive)
    gate.set()
    assert done.wait(HANG_GUARD)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["closed"] and outcome["count"] > 0
    with pytest.raises(apmnet.ObjectDisposedError):
        s.begin_receive(bytearray(1))


def test_receive_timeout_on_a_silent_peer(peer):
    release = threading.Event()
    p = peer(hold(release))
    try:
        with connect(p.port) as s:
            s.receive_timeout = 50
            with pytest.raises(apmnet.SocketException) as caught:
                s.receive(bytearray(1))
            assert caught.value.socket_error_code == apmnet.SocketError.TimedOut
    finally:
        release.set()


def test_async_result_state_is_the_id_the_bindings_passed(peer):
    p = peer(echo)
    with connect(p.port) as s:
        result = s.begin_send(b"state")
        state = ctypes.c_void_p()
        assert apmnet._native.lib.apm_async_result_state(result._handle, ctypes.byref(state)) == 0
        assert state.value == result._id
        s.end_send(result)


def test_second_end_send_names_the_method(peer):
    p = peer(echo)
    with connect(p.port) as s:
        result = s.begin_send(b"once")
        s.end_send(result)
        with pytest.raises(apmnet.InvalidOperationError) as caught:
            s.end_send(result)
        assert caught.value.message == ("EndSend can only be called once for each asynchronous "
                                        "operation.")
