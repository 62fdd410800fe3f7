"""AsyncResult.cancel: a pending operation ends with OperationAborted, having consumed nothing."""

import threading

import pytest

import apmnet
from conftest import connect, echo, gated


def test_a_cancelled_receive_ends_aborted_and_the_bytes_go_to_the_next(peer):
    gate = threading.Event()
    server = peer(gated(gate, echo))
    with connect(server.port) as s:
        buffer = bytearray(16)
        result = s.begin_receive(buffer)
        result.cancel()
        with pytest.raises(apmnet.SocketException) as failed:
            s.end_receive(result)
        assert failed.value.socket_error_code == apmnet.SocketError.OperationAborted
        gate.set()
        s.send(b"ping")
        assert s.receive(buffer) == 4 and bytes(buffer[:4]) == b"ping"
        s.shutdown(apmnet.SocketShutdown.Send)


def test_cancelling_a_completed_operation_does_nothing(peer):
    server = peer(echo)
    with connect(server.port) as s:
        result = s.begin_send(b"x")
        assert result.is_completed
        result.cancel()
        assert s.end_send(result) == 1
        result.cancel()  # ended: nothing to do
        s.shutdown(apmnet.SocketShutdown.Send)
