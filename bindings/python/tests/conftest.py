"""Real peers over 127.0.0.1: Python's own sockets, served from threads."""

import hashlib
import os
import pathlib
import queue
import socket
import struct
import threading
import time

import pytest

import apmnet
import pki as pki_module

# HttpWebRequest's default proxy is the environment's, loopback included (as .NET 8's), read once
# per process: the tests talk to their peers directly unless one sets a proxy itself.
for _variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
    os.environ.pop(_variable, None)

#: Upper bound for any wait in the tests. It only turns a hang into a failure; nothing is timed.
HANG_GUARD = 120

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]


def eventually(predicate, what="the condition"):
    """Poll ``predicate`` until it holds, for things that happen just after a callback returns
    (no event can say "the trampoline has returned"). Only a hang guard: nothing is timed."""
    deadline = time.monotonic() + HANG_GUARD
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened")
        time.sleep(0.005)


class Peer:
    """A listening Python socket on 127.0.0.1; each accepted connection runs ``handler(conn)`` in its
    own thread and the handler's return value (or exception) is queued for :meth:`result`."""

    def __init__(self, handler):
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.results = queue.Queue()
        self.connections = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            self.results.put(self.handler(conn))
        except BaseException as error:  # handed to the test through result()
            self.results.put(error)
        finally:
            conn.close()

    def result(self):
        value = self.results.get(timeout=HANG_GUARD)
        if isinstance(value, BaseException):
            raise value
        return value

    def close(self):
        self.listener.close()
        for conn in self.connections:
            try:
                conn.close()
            except OSError:
                pass


@pytest.fixture
def peer():
    """``peer(handler)`` starts a :class:`Peer`; all are closed after the test."""
    started = []

    def start(handler):
        p = Peer(handler)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


def echo(conn):
    """Echo everything until the client shuts down its sending side."""
    total = 0
    while True:
        data = conn.recv(65536)
        if not data:
            return total
        conn.sendall(data)
        total += len(data)


def sink(conn):
    """Read until EOF; return (byte count, sha256 hex digest)."""
    digest, total = hashlib.sha256(), 0
    while True:
        data = conn.recv(1 << 20)
        if not data:
            return total, digest.hexdigest()
        digest.update(data)
        total += len(data)


def gated(gate, then):
    """A handler that waits for ``gate`` (an Event) before running ``then``."""

    def handler(conn):
        if not gate.wait(HANG_GUARD):
            raise TimeoutError("the test never opened the gate")
        return then(conn)

    return handler


def hold(release):
    """Keep the connection open without reading or writing until ``release`` is set."""
    return gated(release, lambda conn: None)


def reset(conn):
    """Close with an RST (SO_LINGER on, 0 seconds) as soon as the connection arrives."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def connect(port):
    s = apmnet.Socket()
    s.connect("127.0.0.1", port)
    return s


def read_exactly(read_into, count):
    """``count`` bytes from ``read_into(buffer, offset, count)`` (a stream's ``readinto``, a
    socket's ``receive``), which must not reach the end of the stream first."""
    data = bytearray(count)
    got = 0
    while got < count:
        n = read_into(data, got, count - got)
        assert n > 0, "unexpected end of stream"
        got += n
    return bytes(data)


def sha256(*parts):
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


@pytest.fixture
def random_file(tmp_path):
    """A file of random bytes with an odd size (a few MiB); returns (path, content)."""
    content = os.urandom(3 * 1024 * 1024 + 12345)
    path = tmp_path / "payload.bin"
    path.write_bytes(content)
    return path, content


def closed_port():
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A test PKI (see pki.py), made once per run with the openssl tool in a temporary folder."""
    if not pki_module.available():
        pytest.skip("the openssl command-line tool is not installed")
    return pki_module.Pki(tmp_path_factory.mktemp("pki"))


def pytest_configure(config):
    config.addinivalue_line("markers", "proxy_args(*args): the arguments of test_http's proxy peer")
