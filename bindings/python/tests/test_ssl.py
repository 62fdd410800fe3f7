"""SslStream against Python's own ssl module on 127.0.0.1 (a server or client in a thread), with
certificates made at test time (see pki.py): handshakes as client and server over TLS 1.2 and 1.3,
data both ways checked by SHA-256, certificate validation and its callback, the selection callback,
channel bindings compared with Python's, Begin/End and asyncio, X509Certificate2 loading."""

import asyncio
import gc
import hashlib
import os
import queue
import socket
import ssl
import threading
import weakref

import pytest

import apmnet
from apmnet import (ChannelBindingKind, CipherAlgorithmType, SslPolicyErrors, SslProtocols,
                    SslStream, X509Certificate2)
from conftest import HANG_GUARD, connect, read_exactly, sha256

VERSIONS = {"1.2": (ssl.TLSVersion.TLSv1_2, SslProtocols.Tls12),
            "1.3": (ssl.TLSVersion.TLSv1_3, SslProtocols.Tls13)}
SIZE = 4 * 1024 * 1024 + 17  # each way


def python_context(pki, server, version=None, cert="server", require_client_cert=False):
    """Python's ssl side: a server presenting ``cert``, or a client trusting the test CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    if version is not None:
        context.minimum_version = context.maximum_version = VERSIONS[version][0]
    if server:
        context.load_cert_chain(getattr(pki, cert + "_pem"), getattr(pki, cert + "_key"))
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(pki.ca_pem)
    else:
        context.load_verify_locations(pki.ca_pem)
    return context


def receive_hash(tls, count):
    """Read ``count`` bytes from Python's SSLSocket; their SHA-256."""
    digest, got = hashlib.sha256(), 0
    while got < count:
        chunk = tls.recv(min(1 << 20, count - got))
        if not chunk:
            break
        digest.update(chunk)
        got += len(chunk)
    assert got == count, f"the peer received {got} of {count} bytes"
    return digest.hexdigest()


def send_random(tls, count):
    data = os.urandom(count)
    tls.sendall(data)
    return sha256(data)


def python_report(tls):
    return {"version": tls.version(), "unique": tls.get_channel_binding("tls-unique"),
            "cipher": tls.cipher()[0], "alpn": tls.selected_alpn_protocol(),
            "peer": tls.getpeercert(binary_form=True)}


def tls_server(pki, version=None, cert="server", size=SIZE, require_client_cert=False, alpn=None):
    """A peer handler: TLS server on the accepted connection; receives ``size`` bytes, sends
    ``size`` random ones, then waits for our close_notify. A failed handshake returns ``{"failed":
    reason}``."""
    context = python_context(pki, True, version, cert, require_client_cert)
    if alpn:
        context.set_alpn_protocols(alpn)

    def handler(conn):
        try:
            tls = context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as error:
            return {"failed": str(error)}
        with tls:
            report = python_report(tls)
            report["received"] = receive_hash(tls, size)
            report["sent"] = send_random(tls, size)
            try:
                report["close_notify"] = tls.recv(1) == b""
            except (ssl.SSLError, OSError):
                report["close_notify"] = False
            return report

    return handler


def exchange(tls, size=SIZE):
    """Our side of tls_server: send ``size`` random bytes, read ``size``; both hashes."""
    data = os.urandom(size)
    tls.write(data)
    return sha256(data), sha256(read_exactly(tls.readinto, size))


def ssl_client(port, pki=None, **kwargs):
    """An SslStream over a NetworkStream (owning its socket) to 127.0.0.1:port."""
    stream = SslStream(apmnet.NetworkStream(connect(port), owns_socket=True), **kwargs)
    if pki is not None:
        stream.set_trusted_ca_file(pki.ca_pem)
    return stream


def der(path):
    return ssl.PEM_cert_to_DER_cert(path.read_text())


# Client handshakes ----------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_client_against_python_server_data_both_ways(peer, pki, version):
    p = peer(tls_server(pki, version, alpn=["http/1.1", "h2"]))
    with ssl_client(p.port, pki) as tls:
        assert not tls.is_authenticated
        assert tls.transport_context.get_channel_binding(ChannelBindingKind.Unique) is None
        tls.authenticate_as_client("localhost", application_protocols=["h2", "http/1.1"])
        assert tls.is_authenticated and tls.is_encrypted and tls.is_signed
        assert not tls.is_server and not tls.is_mutually_authenticated
        assert tls.ssl_protocol == VERSIONS[version][1]
        assert tls.negotiated_cipher_suite_name.startswith("TLS_")
        assert tls.negotiated_cipher_suite > 0
        if "_AES_" in tls.negotiated_cipher_suite_name:
            assert tls.cipher_algorithm in (CipherAlgorithmType.Aes128, CipherAlgorithmType.Aes256)
        assert tls.negotiated_application_protocol == b"http/1.1"  # the server's preference
        assert tls.target_host_name == "localhost"
        assert not tls.check_cert_revocation_status
        remote = tls.remote_certificate
        assert remote.subject == "O=apmnet, CN=localhost"
        assert remote.issuer == "CN=apmnet test CA"
        assert remote.raw_data == der(pki.server_pem)
        assert tls.local_certificate is None
        context = tls.transport_context
        unique = context.get_channel_binding(ChannelBindingKind.Unique)
        endpoint = context.get_channel_binding(ChannelBindingKind.Endpoint)
        assert context.get_channel_binding(ChannelBindingKind.Unknown) is None
        sent, received = exchange(tls)
        tls.shutdown()  # close_notify
        with pytest.raises(apmnet.InvalidOperationError):
            tls.write(b"after shutdown")
    server = p.result()
    assert server["version"] == "TLSv" + version
    assert server["received"] == sent and server["sent"] == received
    assert server["close_notify"]
    assert server["alpn"] == "http/1.1"
    # tls-unique is the same on both ends; the .NET layout wraps the same token.
    assert unique.token == server["unique"]
    assert unique.kind == ChannelBindingKind.Unique
    assert bytes(unique)[32:] == b"tls-unique:" + server["unique"]
    assert unique.size == len(bytes(unique)) == 32 + len(b"tls-unique:") + len(unique.token)
    assert endpoint.token == hashlib.sha256(der(pki.server_pem)).digest()
    assert bytes(endpoint)[32:] == b"tls-server-end-point:" + endpoint.token


def test_client_protocols_are_honoured(peer, pki):
    """Asking for TLS 1.3 only from a TLS 1.2-only server fails the handshake."""
    p = peer(tls_server(pki, "1.2"))
    with ssl_client(p.port, pki) as tls:
        with pytest.raises((apmnet.AuthenticationError, apmnet.IOException)):
            tls.authenticate_as_client("localhost", None, SslProtocols.Tls13)
        assert not tls.is_authenticated
    assert "failed" in p.result()


# Server handshakes ----------------------------------------------------------------------------

class PythonClient:
    """Python's ssl client in a thread: connects to ``port``, sends ``size`` random bytes, receives
    ``size``, reports like python_report."""

    def __init__(self, pki, port, version=None, size=SIZE, cert=None, server_hostname="localhost"):
        self.results = queue.Queue()
        context = python_context(pki, False, version)
        if cert:
            context.load_cert_chain(getattr(pki, cert + "_pem"), getattr(pki, cert + "_key"))

        def run():
            try:
                with socket.create_connection(("127.0.0.1", port)) as raw, \
                        context.wrap_socket(raw, server_hostname=server_hostname) as tls:
                    report = python_report(tls)
                    report["sent"] = send_random(tls, size)
                    report["received"] = receive_hash(tls, size)
                    self.results.put(report)
            except BaseException as error:
                self.results.put(error)

        threading.Thread(target=run, daemon=True).start()

    def result(self):
        value = self.results.get(timeout=HANG_GUARD)
        if isinstance(value, BaseException):
            raise value
        return value


@pytest.fixture
def listener():
    with apmnet.Socket() as s:
        s.bind("127.0.0.1", 0)
        s.listen()
        yield s


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_server_against_python_client_data_both_ways(listener, pki, version):
    certificate = X509Certificate2(pki.server_p12, pki.password)
    assert certificate.has_private_key
    client = PythonClient(pki, listener.local_end_point[1], version)
    with SslStream(apmnet.NetworkStream(listener.accept(), owns_socket=True)) as tls:
        tls.authenticate_as_server(certificate)
        assert tls.is_authenticated and tls.is_server and tls.is_encrypted
        assert not tls.is_mutually_authenticated and tls.remote_certificate is None
        assert tls.ssl_protocol == VERSIONS[version][1]
        assert tls.target_host_name == "localhost"  # the SNI name
        assert tls.local_certificate == certificate
        context = tls.transport_context
        unique = context.get_channel_binding(ChannelBindingKind.Unique)
        endpoint = context.get_channel_binding(ChannelBindingKind.Endpoint)
        data = os.urandom(SIZE)
        received = sha256(read_exactly(tls.readinto, SIZE))
        tls.write(data)
    peer_report = client.result()
    assert peer_report["version"] == "TLSv" + version
    assert peer_report["sent"] == received and peer_report["received"] == sha256(data)
    assert unique.token == peer_report["unique"]
    assert endpoint.token == hashlib.sha256(peer_report["peer"]).digest()


def test_server_requires_and_gets_a_client_certificate(listener, pki):
    client = PythonClient(pki, listener.local_end_point[1], "1.3", size=1000, cert="client")
    with SslStream(apmnet.NetworkStream(listener.accept(), owns_socket=True)) as tls:
        tls.set_trusted_ca_file(pki.ca_pem)
        tls.authenticate_as_server(X509Certificate2.create_from_pem_file(pki.server_pem,
                                                                         pki.server_key), True)
        assert tls.is_mutually_authenticated
        assert tls.remote_certificate.subject == "CN=apmnet client"
        received = sha256(read_exactly(tls.readinto, 1000))
        tls.write(bytes(1000))
    assert client.result()["sent"] == received


def test_server_certificate_chosen_by_the_selection_callback(listener, pki):
    seen = []
    chosen = X509Certificate2(pki.server_with_key_pem)

    def select(sender, target_host, local_certificates, remote_certificate, acceptable_issuers):
        seen.append((sender, target_host, local_certificates, remote_certificate))
        return chosen if target_host == "localhost" else None

    client = PythonClient(pki, listener.local_end_point[1], size=10)
    with SslStream(apmnet.NetworkStream(listener.accept(), owns_socket=True),
                   user_certificate_selection_callback=select) as tls:
        tls.authenticate_as_server(None)
        assert tls.local_certificate == chosen
        read_exactly(tls.readinto, 10)
        tls.write(b"0123456789")
        assert seen == [(tls, "localhost", [], None)]
    client.result()


# Certificate validation -----------------------------------------------------------------------

def test_self_signed_rejected_then_accepted_by_the_callback(peer, pki):
    p = peer(tls_server(pki, cert="selfsigned", size=5))
    with ssl_client(p.port, pki) as tls:
        with pytest.raises(apmnet.AuthenticationError) as caught:
            tls.authenticate_as_client("localhost")
        assert "certificate chain" in caught.value.message
        assert caught.value.status == apmnet.Status.AUTHENTICATION
        # The failure is stored: every later call reports it.
        with pytest.raises(apmnet.AuthenticationError):
            tls.write(b"x")
        assert not tls.is_authenticated
    assert "failed" in p.result()

    expected = hashlib.sha1(der(pki.selfsigned_pem)).hexdigest().upper()
    calls = []

    def pin(sender, certificate, chain, ssl_policy_errors):
        calls.append((sender, certificate.subject, len(chain), ssl_policy_errors))
        # The usual pinning: accept this one certificate despite its chain errors.
        return (ssl_policy_errors == SslPolicyErrors.RemoteCertificateChainErrors
                and certificate.thumbprint == expected)

    p = peer(tls_server(pki, cert="selfsigned", size=5))
    with ssl_client(p.port, pki, user_certificate_validation_callback=pin) as tls:
        tls.authenticate_as_client("localhost")
        assert calls == [(tls, "CN=localhost", calls[0][2], SslPolicyErrors.RemoteCertificateChainErrors)]
        assert calls[0][2] >= 1
        assert isinstance(calls[0][3], SslPolicyErrors)
        sent, received = exchange(tls, 5)
        tls.shutdown()
    server = p.result()
    assert server["received"] == sent and server["sent"] == received


def test_callback_rejecting_a_good_certificate(peer, pki):
    p = peer(tls_server(pki, size=1))
    with ssl_client(p.port, pki, user_certificate_validation_callback=lambda *args: False) as tls:
        with pytest.raises(apmnet.AuthenticationError) as caught:
            tls.authenticate_as_client("localhost")
    assert caught.value.message == ("The remote certificate was rejected by the provided "
                                    "RemoteCertificateValidationCallback.")
    p.result()


def test_name_mismatch_is_reported_to_the_callback(peer, pki):
    p = peer(tls_server(pki, size=1))
    errors = []

    def record(sender, certificate, chain, ssl_policy_errors):
        errors.append(ssl_policy_errors)
        return False

    with ssl_client(p.port, pki, user_certificate_validation_callback=record) as tls:
        with pytest.raises(apmnet.AuthenticationError):
            tls.authenticate_as_client("not-localhost.example")
    assert errors == [SslPolicyErrors.RemoteCertificateNameMismatch]
    p.result()


def test_exception_in_the_callback_is_raised_by_authenticate(peer, pki):
    p = peer(tls_server(pki, size=1))

    def explode(*args):
        raise KeyError("from the validation callback")

    with ssl_client(p.port, pki, user_certificate_validation_callback=explode) as tls:
        with pytest.raises(KeyError) as caught:
            tls.authenticate_as_client("localhost")
        assert isinstance(caught.value.__context__, apmnet.AuthenticationError)
        # later calls report the library's stored failure
        with pytest.raises(apmnet.AuthenticationError):
            tls.read(1)
    p.result()


def test_client_certificate_presented_to_a_python_server(peer, pki):
    p = peer(tls_server(pki, "1.2", size=100, require_client_cert=True))
    client_certificate = X509Certificate2.create_from_pem_file(pki.client_pem, pki.client_key)
    offered = []

    def select(sender, target_host, local_certificates, remote_certificate, acceptable_issuers):
        offered.append((target_host, local_certificates, remote_certificate.subject))
        return local_certificates[0]

    with ssl_client(p.port, pki, user_certificate_selection_callback=select) as tls:
        tls.authenticate_as_client("localhost", [client_certificate])
        assert tls.is_mutually_authenticated
        assert tls.local_certificate == client_certificate
        sent, received = exchange(tls, 100)
    assert offered == [("localhost", [client_certificate], "O=apmnet, CN=localhost")]
    server = p.result()
    assert server["peer"] == client_certificate.raw_data
    assert server["received"] == sent


# Session resumption ---------------------------------------------------------------------------

def resuming_server(pki, version):
    """A peer handler with one SSLContext (so one session cache and ticket key) for every
    connection: sends one byte, waits for our close, returns whether the session was reused."""
    context = python_context(pki, True, version)

    def handler(conn):
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"x")
            try:
                tls.recv(1)
            except (ssl.SSLError, OSError):
                pass
            return tls.session_reused

    return handler


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_client_resumes_against_python_server(peer, pki, version):
    p = peer(resuming_server(pki, version))
    server_thumbprint = X509Certificate2.create_from_pem_file(pki.server_pem).thumbprint
    steps = [("localhost", True, False), ("localhost", True, True), ("localhost", True, True),
             ("localhost", False, False), ("localhost", True, True), ("127.0.0.1", True, False)]
    for host, allow, resumed in steps:
        with ssl_client(p.port, pki) as tls:
            assert tls.allow_tls_resume
            with pytest.raises(apmnet.InvalidOperationError):
                tls.is_resumed
            tls.allow_tls_resume = allow
            tls.authenticate_as_client(host)
            assert tls.read(1) == b"x"  # the TLS 1.3 tickets come in before it
            assert tls.is_resumed == resumed, (host, allow)
            assert tls.remote_certificate.thumbprint == server_thumbprint
            with pytest.raises(apmnet.InvalidOperationError):
                tls.allow_tls_resume = True  # authenticated already
        assert p.result() == resumed


# Begin/End, asyncio, lifetimes ----------------------------------------------------------------

def test_begin_end_authenticate_and_read_write(peer, pki):
    p = peer(tls_server(pki, size=64 * 1024))
    with ssl_client(p.port, pki) as tls:
        done = threading.Event()
        result = tls.begin_authenticate_as_client("localhost", callback=lambda r: done.set(),
                                                  state="handshake")
        assert result.async_state == "handshake"
        assert done.wait(HANG_GUARD)
        tls.end_authenticate_as_client(result)
        with pytest.raises(apmnet.InvalidOperationError):
            tls.end_authenticate_as_client(result)  # a second End
        data = os.urandom(64 * 1024)
        tls.end_write(tls.begin_write(data))
        received = bytearray(64 * 1024)
        got = 0
        while got < len(received):
            got += tls.end_read(tls.begin_read(received, got))
        tls.end_shutdown(tls.begin_shutdown())
    server = p.result()
    assert server["received"] == sha256(data) and server["sent"] == sha256(received)
    assert server["close_notify"]


def test_asyncio_client(peer, pki):
    p = peer(tls_server(pki, "1.3", size=SIZE))

    async def main():
        sock = apmnet.Socket()
        await sock.connect_async("127.0.0.1", p.port)
        with SslStream(apmnet.NetworkStream(sock, owns_socket=True)) as tls:
            tls.set_trusted_ca_file(pki.ca_pem)
            await tls.authenticate_as_client_async("localhost")
            data = os.urandom(SIZE)
            writer = asyncio.ensure_future(tls.write_async(data))
            await writer
            received = bytearray()
            while len(received) < SIZE:
                chunk = await tls.read_async(65536)
                assert chunk
                received += chunk
            await tls.shutdown_async()
            return sha256(data), sha256(received)

    sent, received = asyncio.run(asyncio.wait_for(main(), HANG_GUARD))
    server = p.result()
    assert server["received"] == sent and server["sent"] == received


def test_asyncio_server_and_errors_from_await(listener, pki):
    certificate = X509Certificate2(pki.server_p12.read_bytes(), pki.password)
    client = PythonClient(pki, listener.local_end_point[1], size=1000)

    async def main():
        accepted = await listener.accept_async()
        with SslStream(apmnet.NetworkStream(accepted, owns_socket=True)) as tls:
            await tls.authenticate_as_server_async(certificate)
            received = bytearray()
            while len(received) < 1000:
                received += await tls.read_async(1000 - len(received))
            await tls.write_async(bytes(1000))
            with pytest.raises(apmnet.InvalidOperationError):  # authenticated already
                await tls.authenticate_as_server_async(certificate)
            return sha256(received)

    received = asyncio.run(asyncio.wait_for(main(), HANG_GUARD))
    assert client.result()["sent"] == received


def test_callbacks_and_stream_stay_alive_while_the_handshake_is_pending(peer, pki):
    """Nothing but the pending Begin refers to the stream and its validation callback: both survive
    the garbage collector until the handshake called back."""
    gate = threading.Event()
    server = tls_server(pki, size=3)

    def gated_server(conn):
        assert gate.wait(HANG_GUARD)
        return server(conn)

    p = peer(gated_server)
    outcome = {}
    done = threading.Event()

    def start():
        calls = []

        def validate(sender, certificate, chain, ssl_policy_errors):
            calls.append(ssl_policy_errors)
            return True

        tls = ssl_client(p.port, pki, user_certificate_validation_callback=validate)

        def on_authenticated(result):
            try:
                tls.end_authenticate_as_client(result)
                outcome["calls"] = list(calls)
                outcome["stream"] = tls
            except BaseException as error:
                outcome["error"] = error
            done.set()

        tls.begin_authenticate_as_client("localhost", callback=on_authenticated)
        return weakref.ref(tls), weakref.ref(validate)

    stream_ref, callback_ref = start()
    gc.collect()
    assert stream_ref() is not None and callback_ref() is not None
    gate.set()
    assert done.wait(HANG_GUARD)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["calls"] == [SslPolicyErrors.None_]
    with outcome.pop("stream") as tls:
        sent, received = exchange(tls, 3)
    server = p.result()
    assert server["received"] == sent and server["sent"] == received


# Inner streams and closing --------------------------------------------------------------------

def test_ssl_stream_over_a_python_socket(peer, pki):
    """Any object with blocking recv_into/send works as the inner stream (a custom C stream)."""
    p = peer(tls_server(pki, "1.2", size=SIZE))
    raw = socket.create_connection(("127.0.0.1", p.port))
    with SslStream(raw) as tls:
        tls.set_trusted_ca_file(pki.ca_pem)
        tls.authenticate_as_client("localhost")
        assert tls.ssl_protocol == SslProtocols.Tls12
        sent, received = exchange(tls)
        tls.shutdown()
    assert raw.fileno() == -1  # closed with the SslStream
    server = p.result()
    assert server["received"] == sent and server["sent"] == received


def test_ssl_stream_over_an_ssl_stream(peer, pki):
    """TLS inside TLS: the inner SslStream is the outer one's transport (Python's server runs TLS
    over its SSLObject with memory BIOs)."""
    outer_context = python_context(pki, True)
    inner_context = python_context(pki, True)

    def handler(conn):
        with outer_context.wrap_socket(conn, server_side=True) as outer:
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            inner = inner_context.wrap_bio(incoming, outgoing, server_side=True)

            def flush():
                data = outgoing.read()
                if data:
                    outer.sendall(data)

            def pump(action):
                while True:
                    try:
                        result = action()
                    except ssl.SSLWantReadError:
                        flush()
                        data = outer.recv(65536)
                        if data:
                            incoming.write(data)
                        else:
                            incoming.write_eof()
                        continue
                    flush()
                    return result

            pump(inner.do_handshake)
            message = pump(lambda: inner.read(100))
            pump(lambda: inner.write(message.upper()))
            return message

    p = peer(handler)
    with ssl_client(p.port, pki) as outer:
        outer.authenticate_as_client("localhost")
        with SslStream(outer, leave_inner_stream_open=True) as inner:
            inner.set_trusted_ca_file(pki.ca_pem)
            inner.authenticate_as_client("localhost")
            inner.write(b"nested tls")
            assert read_exactly(inner.readinto, 10) == b"NESTED TLS"
        assert outer.can_read  # left open
    assert p.result() == b"nested tls"


def test_leave_inner_stream_open(peer, pki):
    p = peer(lambda conn: conn.recv(1))
    with connect(p.port) as s:
        inner = apmnet.NetworkStream(s)
        SslStream(inner, leave_inner_stream_open=True).close()
        assert inner.can_read and s.connected
        tls = SslStream(inner)
        tls.close()
        assert not inner.can_read and not tls.can_read
        with pytest.raises(apmnet.ObjectDisposedError):
            inner.write(b"x")
        with pytest.raises(apmnet.ObjectDisposedError):
            tls.authenticate_as_client("localhost")
        assert not tls.is_authenticated
        s.send(b"!")  # the stream did not own the socket
    # The same with a Python object as the inner stream.
    q = peer(lambda conn: conn.recv(1))
    with socket.create_connection(("127.0.0.1", q.port)) as raw:
        SslStream(raw, leave_inner_stream_open=True).close()
        assert raw.fileno() != -1
        raw.sendall(b"!")
        SslStream(raw).close()
        assert raw.fileno() == -1
    assert q.result() == b"!"


def test_argument_and_state_errors(peer, pki):
    with pytest.raises(apmnet.ArgumentNullError):
        SslStream(None)
    with pytest.raises(TypeError):
        SslStream(object())  # neither a library stream nor readable/writable
    with socket.socket() as unconnected, pytest.raises(TypeError):
        SslStream(unconnected, user_certificate_validation_callback="not callable")
    p = peer(tls_server(pki, size=1))
    with ssl_client(p.port, pki) as tls:
        with pytest.raises(apmnet.InvalidOperationError):
            tls.ssl_protocol  # not authenticated yet
        with pytest.raises(TypeError):
            tls.authenticate_as_client("localhost", "not a certificate")
        with pytest.raises(apmnet.FileNotFoundException):
            tls.set_trusted_ca_file(pki.folder / "absent.pem")
        tls.authenticate_as_client("localhost")
        with pytest.raises(apmnet.InvalidOperationError):
            tls.set_trusted_ca_file(pki.ca_pem)  # only before authentication
        exchange(tls, 1)
    p.result()


# X509Certificate2 -----------------------------------------------------------------------------

def test_certificate_loading_and_properties(pki):
    server_der = der(pki.server_pem)
    expected_thumbprint = hashlib.sha1(server_der).hexdigest().upper()
    loaded = {
        "pem file": X509Certificate2(pki.server_pem),
        "pem file with key": X509Certificate2(str(pki.server_with_key_pem)),
        "pem files": X509Certificate2.create_from_pem_file(pki.server_pem, pki.server_key),
        "pem text": X509Certificate2.create_from_pem(pki.server_pem.read_text(),
                                                     pki.server_key.read_text()),
        "pem bytes": X509Certificate2(pki.server_with_key_pem.read_bytes()),
        "der file": X509Certificate2(pki.server_der),
        "der bytes": X509Certificate2(server_der),
        "der bytearray": X509Certificate2(bytearray(server_der)),
        "der loader": X509Certificate2.load_certificate(server_der),
        "loader file": X509Certificate2.load_certificate_from_file(pki.server_pem),
        "pkcs12 file": X509Certificate2(pki.server_p12, pki.password),
        "pkcs12 bytes": X509Certificate2(pki.server_p12.read_bytes(), pki.password),
        "pkcs12 loader": X509Certificate2.load_pkcs12(pki.server_p12.read_bytes(), pki.password),
        "pkcs12 file loader": X509Certificate2.load_pkcs12_from_file(pki.server_p12, pki.password),
    }
    with_key = {"pem file with key", "pem files", "pem text", "pem bytes", "pkcs12 file",
                "pkcs12 bytes", "pkcs12 loader", "pkcs12 file loader"}
    for how, certificate in loaded.items():
        assert certificate.raw_data == server_der, how
        assert certificate.thumbprint == expected_thumbprint, how
        assert certificate.get_cert_hash() == hashlib.sha1(server_der).digest(), how
        assert certificate.subject == "O=apmnet, CN=localhost", how
        assert certificate.issuer == "CN=apmnet test CA", how
        assert certificate.has_private_key == (how in with_key), how
        assert certificate.not_before < certificate.not_after, how
        assert certificate.not_after.tzinfo is not None, how
        assert certificate == loaded["der bytes"], how
    assert len({c for c in loaded.values()}) == 1
    assert "localhost" in repr(loaded["pem file"])
    ca = X509Certificate2(pki.ca_pem)
    assert ca.subject == ca.issuer == "CN=apmnet test CA"
    assert ca != loaded["pem file"]
    for certificate in loaded.values():
        certificate.close()
    with pytest.raises(apmnet.ObjectDisposedError):
        loaded["pem file"].subject


def test_certificate_loading_errors(pki):
    with pytest.raises(apmnet.InvalidCredentialError) as caught:
        X509Certificate2(pki.server_p12, "wrong password")
    assert isinstance(caught.value, apmnet.AuthenticationError)
    with pytest.raises(apmnet.InvalidCredentialError):
        X509Certificate2.load_pkcs12(pki.server_p12.read_bytes(), "wrong password")
    with pytest.raises(apmnet.FileNotFoundException):
        X509Certificate2(pki.folder / "absent.pem")
    with pytest.raises(apmnet.ArgumentError):
        X509Certificate2(b"neither DER nor PKCS#12")
    with pytest.raises(apmnet.ArgumentError):
        X509Certificate2.create_from_pem_file(pki.server_pem, pki.client_key)  # not its key
    with pytest.raises(TypeError):
        X509Certificate2()
