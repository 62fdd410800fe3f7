"""Socket.send_file / begin_send_file: what the peer receives is checked by hash."""

import threading

import pytest

import apmnet
from apmnet import SocketShutdown, TransmitFileOptions
from conftest import HANG_GUARD, connect, gated, sha256, sink


def test_send_file_sync_with_pre_and_post_buffers(peer, random_file):
    path, content = random_file
    p = peer(sink)
    with connect(p.port) as s:
        s.send_file(path, b"--pre--", bytearray(b"--post--"))
        s.shutdown(SocketShutdown.Send)
    assert p.result() == (len(content) + 15, sha256(b"--pre--", content, b"--post--"))


def test_begin_send_file_calls_back_and_disconnects(peer, random_file):
    path, content = random_file
    gate = threading.Event()
    p = peer(gated(gate, sink))
    with connect(p.port) as s:
        done = threading.Event()
        seen = {}

        def on_sent(result):
            seen["thread"] = threading.get_ident()
            try:
                s.end_send_file(result)
            except BaseException as error:
                seen["error"] = error
            done.set()

        result = s.begin_send_file(str(path), b"head", b"tail", TransmitFileOptions.Disconnect,
                                   on_sent, "file-state")
        assert result.async_state == "file-state"
        gate.set()  # the peer starts reading only now, so the transfer waits on the socket
        assert done.wait(HANG_GUARD)
        assert "error" not in seen, seen.get("error")
        assert result.is_completed
        assert not s.connected  # Disconnect: shut down both ways after sending
    assert p.result() == (len(content) + 8, sha256(b"head", content, b"tail"))


def test_begin_send_file_with_progress(peer, random_file):
    path, content = random_file
    gate = threading.Event()
    p = peer(gated(gate, sink))
    progress = []
    with connect(p.port) as s:
        result = s.begin_send_file(path, progress=lambda r, sent: progress.append(sent))
        gate.set()
        s.end_send_file(result)
        s.shutdown(SocketShutdown.Send)
    assert p.result() == (len(content), sha256(content))
    assert progress, "the progress callback never ran"
    assert progress == sorted(progress)
    assert 0 < progress[-1] <= len(content)


def test_buffers_only_when_the_file_name_is_none(peer):
    p = peer(sink)
    with connect(p.port) as s:
        s.send_file(None, b"only", b" buffers")
        s.end_send_file(s.begin_send_file(None, b"+async"))
        s.shutdown(SocketShutdown.Send)
    assert p.result() == (18, sha256(b"only buffers+async"))


def test_send_file_accepts_bytes_and_pathlike_names(peer, random_file):
    path, content = random_file
    p = peer(sink)
    with connect(p.port) as s:
        s.send_file(bytes(path))
        s.end_send_file(s.begin_send_file(path))
        s.shutdown(SocketShutdown.Send)
    assert p.result() == (2 * len(content), sha256(content, content))


def test_missing_file_is_reported_by_begin(peer, tmp_path):
    p = peer(sink)
    with connect(p.port) as s:
        with pytest.raises(apmnet.FileNotFoundException) as error:
            s.begin_send_file(tmp_path / "missing.bin", callback=lambda r: pytest.fail("called"))
        assert isinstance(error.value, FileNotFoundError)
        assert isinstance(error.value, apmnet.IOException)
        assert error.value.message
        with pytest.raises(apmnet.DirectoryNotFoundException):
            s.begin_send_file(tmp_path / "no-such-dir" / "file.bin")
        with pytest.raises(apmnet.FileNotFoundException):
            s.begin_send_file("")  # "" is a file name for BeginSendFile (unlike SendFile)
        with pytest.raises(apmnet.FileNotFoundException):
            s.send_file(tmp_path / "missing.bin")
        with pytest.raises(apmnet.UnauthorizedAccessError) as denied:
            s.begin_send_file(tmp_path)  # a directory, as .NET's File.OpenHandle reports it
        assert isinstance(denied.value, PermissionError)
        # nothing was sent by the failed calls
        s.shutdown(SocketShutdown.Send)
    assert p.result() == (0, sha256())


def test_send_file_on_a_socket_that_is_not_connected(random_file):
    path, _ = random_file
    with apmnet.Socket() as s:
        with pytest.raises(apmnet.NotSupportedError) as error:
            s.begin_send_file(path)
        assert error.value.message == "The operation is not allowed on non-connected sockets."
        with pytest.raises(apmnet.NotSupportedError):
            s.send_file(path)


def test_reuse_socket_lets_the_socket_connect_again(peer):
    first, second = peer(sink), peer(sink)
    with connect(first.port) as s:
        reuse = TransmitFileOptions.Disconnect | TransmitFileOptions.ReuseSocket
        s.end_send_file(s.begin_send_file(None, b"first", flags=reuse))
        assert not s.connected
        assert first.result() == (5, sha256(b"first"))
        # As in .NET: a disconnected socket reconnects only asynchronously.
        with pytest.raises(apmnet.InvalidOperationError, match="only reconnect again asynchronously"):
            s.connect("127.0.0.1", second.port)
        s.end_connect(s.begin_connect("127.0.0.1", second.port))
        s.send(b"second")
        s.shutdown(SocketShutdown.Send)
    assert second.result() == (6, sha256(b"second"))
