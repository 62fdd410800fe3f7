"""Status codes become exceptions named for the .NET kinds, carrying the library's error record."""

import errno
import socket
import threading

import pytest

import apmnet
from apmnet import SocketError, Status
from apmnet._native import lib
from conftest import HANG_GUARD, closed_port, connect, echo, gated, hold, reset


def test_connection_refused_is_a_socket_exception():
    with apmnet.Socket() as s:
        with pytest.raises(apmnet.SocketException) as caught:
            s.connect("127.0.0.1", closed_port())
    error = caught.value
    assert error.status == Status.SOCKET
    assert error.socket_error_code == SocketError.ConnectionRefused
    assert error.errno == errno.ECONNREFUSED
    assert isinstance(error, OSError)
    assert error.message and str(error) == error.message


def test_connection_refused_from_end_connect_on_the_callback_thread():
    outcome = {}
    done = threading.Event()
    with apmnet.Socket() as s:
        def on_connect(result):
            try:
                s.end_connect(result)
            except apmnet.ApmError as error:  # read on the engine thread, right after End
                outcome["error"] = error
            done.set()

        s.begin_connect("127.0.0.1", closed_port(), on_connect)
        assert done.wait(HANG_GUARD)
    assert isinstance(outcome["error"], apmnet.SocketException)
    assert outcome["error"].socket_error_code == SocketError.ConnectionRefused


def test_peer_reset_during_writes_is_an_io_exception_with_the_socket_error_inside(peer):
    gate = threading.Event()
    p = peer(gated(gate, reset))
    with connect(p.port) as s, apmnet.NetworkStream(s) as stream:
        gate.set()
        p.result()  # the peer has reset the connection
        block = bytes(1 << 20)
        with pytest.raises(apmnet.IOException) as caught:
            for _ in range(256):  # the socket buffers cannot absorb 256 MiB
                stream.write(block)
    error = caught.value
    assert error.status == Status.IO
    assert error.message.startswith("Unable to write data to the transport connection: ")
    assert error.socket_error_code in (SocketError.ConnectionReset, SocketError.Shutdown)
    assert error.errno in (errno.ECONNRESET, errno.EPIPE)
    inner = error.__cause__
    assert isinstance(inner, apmnet.SocketException)
    assert inner.socket_error_code == error.socket_error_code
    assert inner.message == error.inner_message != ""


def test_argument_errors_from_begin(peer):
    p = peer(echo)
    with connect(p.port) as s, apmnet.NetworkStream(s) as stream:
        with pytest.raises(apmnet.ArgumentOutOfRangeError) as caught:
            stream.begin_write(b"abc", 4, 0)  # offset > length
        assert isinstance(caught.value, apmnet.ArgumentError)
        assert isinstance(caught.value, ValueError)
        with pytest.raises(apmnet.ArgumentOutOfRangeError):
            stream.write(b"abc", 1, 3)  # count > length - offset
        with pytest.raises(apmnet.ArgumentOutOfRangeError):
            s.send(b"abc", -1)
        with pytest.raises(apmnet.ArgumentNullError):
            stream.write(None)
        with pytest.raises(apmnet.ArgumentNullError):
            apmnet.NetworkStream(None)
        with pytest.raises(apmnet.ArgumentOutOfRangeError):
            s.receive_timeout = -5


def test_end_rules(peer):
    p = peer(echo)
    with connect(p.port) as s, connect(p.port) as other:
        stream, other_stream = apmnet.NetworkStream(s), apmnet.NetworkStream(other)
        with pytest.raises(apmnet.ArgumentNullError):
            stream.end_write(None)
        result = stream.begin_write(b"once")
        with pytest.raises(apmnet.ArgumentError) as caught:
            other_stream.end_write(result)  # another object's result
        assert caught.value.message == ("The IAsyncResult object was not returned from the "
                                        "corresponding asynchronous method on this class.")
        with pytest.raises(apmnet.ArgumentError):
            stream.end_read(result)  # another Begin kind
        stream.end_write(result)  # the refused Ends did not consume it
        with pytest.raises(apmnet.InvalidOperationError) as caught:
            stream.end_write(result)
        assert caught.value.message == ("EndWrite can only be called once for each asynchronous "
                                        "operation.")
        assert result.is_completed
        with pytest.raises(apmnet.ArgumentError):
            stream.end_write("not an async result")


def test_closed_objects_raise_object_disposed(peer):
    p = peer(echo)
    s = connect(p.port)
    stream = apmnet.NetworkStream(s)
    stream.close()
    with pytest.raises(apmnet.ObjectDisposedError) as caught:
        stream.begin_write(b"x")
    assert isinstance(caught.value, apmnet.InvalidOperationError)
    assert caught.value.message
    s.close()
    for call in (lambda: s.send(b"x"), lambda: s.connected, lambda: s.begin_receive(bytearray(1)),
                 lambda: s.shutdown(), lambda: s.local_end_point):
        with pytest.raises(apmnet.ObjectDisposedError):
            call()


def test_end_after_close_reports_disposed_and_releases_the_result(peer):
    release = threading.Event()
    p = peer(hold(release))
    try:
        s = connect(p.port)
        result = s.begin_receive(bytearray(4))
        s.close()
        with pytest.raises(apmnet.ObjectDisposedError):
            s.end_receive(result)
        with pytest.raises(apmnet.InvalidOperationError):
            s.end_receive(result)  # released all the same: a second End is refused
    finally:
        release.set()


def test_invalid_operations_and_unsupported_kinds():
    with pytest.raises(apmnet.NotSupportedError):
        apmnet.Socket(apmnet.AddressFamily.InterNetwork, apmnet.SocketType.Dgram)
    with apmnet.Socket() as s:
        with pytest.raises(apmnet.IOException):
            apmnet.NetworkStream(s)  # not connected
        with pytest.raises(apmnet.InvalidOperationError):
            s.accept()  # neither bound nor listening


def test_runtime_configure_after_first_use(peer):
    p = peer(echo)
    with connect(p.port) as s:
        s.end_send(s.begin_send(b"the runtime is running"))
        with pytest.raises(apmnet.InvalidOperationError):
            apmnet.runtime_configure(2, 0)


def test_address_already_in_use():
    with socket.create_server(("127.0.0.1", 0)) as taken, apmnet.Socket() as s:
        with pytest.raises(apmnet.SocketException) as caught:
            s.bind("127.0.0.1", taken.getsockname()[1])
    assert caught.value.socket_error_code == SocketError.AddressAlreadyInUse
    assert caught.value.errno == errno.EADDRINUSE


def test_bad_port_and_host():
    with apmnet.Socket() as s:
        with pytest.raises(apmnet.ArgumentOutOfRangeError):
            s.bind("127.0.0.1", 70000)
        with pytest.raises(apmnet.SocketException) as caught:
            s.connect("no-such-host.invalid", 80)
        assert caught.value.socket_error_code in (SocketError.HostNotFound, SocketError.TryAgain,
                                                  SocketError.NoData)


def test_error_record_is_per_thread(peer):
    """A failure on another thread does not change what this thread reads."""
    with apmnet.Socket() as s:
        with pytest.raises(apmnet.SocketException) as mine:
            s.connect("127.0.0.1", closed_port())

    def other_thread():
        with pytest.raises(apmnet.ArgumentNullError):
            apmnet.NetworkStream(None)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join(HANG_GUARD)
    assert lib.apm_last_error_status() == Status.SOCKET
    assert lib.apm_last_error_socket_error() == SocketError.ConnectionRefused
    assert mine.value.socket_error_code == SocketError.ConnectionRefused
