"""NegotiateStream: our client against our server over a socket pair (NTLM at every protection
level, Begin/End, coroutines), wrong passwords, the users' sources, channel binding over an
SslStream, and pyspnego (an independent NTLM/SPNEGO) as the peer when it is installed."""

import asyncio
import hashlib
import os
import socket
import struct
import threading

import pytest

import apmnet
from apmnet import (ExtendedProtectionPolicy, NegotiateStream, NetworkCredential, PolicyEnforcement,
                    ProtectionLevel, TokenImpersonationLevel)

from conftest import HANG_GUARD, eventually

#: No Kerberos here: a krb5.conf naming distant KDCs would only delay the fallback to NTLM.
os.environ.setdefault("KRB5_CONFIG", "/nonexistent/krb5.conf")

ALICE = ("TESTDOM\\alice", "Passw0rd!")


def pair():
    a, b = socket.socketpair()
    return NegotiateStream(a), NegotiateStream(b)


def in_thread(function):
    """Runs ``function`` in a thread; ``join()`` returns its value or raises its exception."""
    box = {}

    def run():
        try:
            box["value"] = function()
        except BaseException as error:  # handed to join()
            box["error"] = error

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def join():
        t.join(HANG_GUARD)
        assert not t.is_alive(), "the thread did not finish"
        if "error" in box:
            raise box["error"]
        return box.get("value")

    return join


def read_exactly(stream, n):
    out = bytearray()
    while len(out) < n:
        chunk = stream.read(n - len(out))
        assert chunk, "the stream ended early"
        out += chunk
    return bytes(out)


def authenticate(client, server, level=ProtectionLevel.EncryptAndSign, credential=ALICE, users=None):
    users = users if users is not None else NetworkCredential(*ALICE)
    done = in_thread(lambda: server.authenticate_as_server(users, None, level))
    client_error = None
    try:
        client.authenticate_as_client(NetworkCredential(*credential), "host/localhost", None, level)
    except apmnet.ApmError as error:
        client_error = error
    server_error = None
    try:
        done()
    except apmnet.ApmError as error:
        server_error = error
    return client_error, server_error


@pytest.mark.parametrize("level", list(ProtectionLevel))
def test_ntlm_at_every_level_both_ways(level):
    client, server = pair()
    with client, server:
        assert authenticate(client, server, level) == (None, None)
        assert client.is_authenticated and server.is_authenticated
        assert server.is_server and not client.is_server
        assert client.is_encrypted == (level == ProtectionLevel.EncryptAndSign)
        assert server.is_signed == (level != ProtectionLevel.None_)
        assert not client.is_mutually_authenticated
        assert server.impersonation_level == TokenImpersonationLevel.Identification
        assert (server.remote_identity.name, server.remote_identity.authentication_type) == ("TESTDOM\\alice", "NTLM")
        assert client.remote_identity.name == "host/localhost"
        for size in (1, 64511, 64512, 64513, 300_000):
            data = os.urandom(size)
            echo = in_thread(lambda: server.write(read_exactly(server, size)))
            client.write(data)
            back = read_exactly(client, size)
            echo()
            assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest()


def test_wrong_password_and_unknown_user_are_invalid_credential_on_both_sides():
    for credential in (("TESTDOM\\alice", "wrong"), ("TESTDOM\\mallory", "Passw0rd!")):
        client, server = pair()
        with client, server:
            client_error, server_error = authenticate(client, server, credential=credential)
            assert isinstance(client_error, apmnet.InvalidCredentialError)
            assert isinstance(server_error, apmnet.InvalidCredentialError)
            assert str(server_error).endswith("The server has rejected the client credentials.")
            # The failure is stored.
            with pytest.raises(apmnet.InvalidCredentialError):
                client.write(b"x")


def test_a_server_requiring_more_protection():
    client, server = pair()
    with client, server:
        done = in_thread(lambda: server.authenticate_as_server(NetworkCredential(*ALICE), None,
                                                               ProtectionLevel.EncryptAndSign))
        with pytest.raises(apmnet.AuthenticationError, match="A remote side security requirement"):
            client.authenticate_as_client(NetworkCredential(*ALICE), "host/localhost", None, ProtectionLevel.Sign)
        with pytest.raises(apmnet.AuthenticationError, match="Required: EncryptAndSign, negotiated: Sign"):
            done()


def test_arguments_and_calls_before_authentication():
    client, server = pair()
    with client, server:
        with pytest.raises(apmnet.InvalidOperationError, match="successfully authenticated"):
            client.write(b"x")
        with pytest.raises(apmnet.ArgumentOutOfRangeError, match="Identification, Impersonation or Delegation"):
            client.authenticate_as_client(NetworkCredential(*ALICE), "t", None, ProtectionLevel.Sign,
                                          TokenImpersonationLevel.Anonymous)
        with pytest.raises(apmnet.ArgumentError, match="custom channel binding or a custom service name"):
            server.authenticate_as_server(None, ExtendedProtectionPolicy(PolicyEnforcement.Always))
        assert not client.is_authenticated
        with pytest.raises(apmnet.InvalidOperationError):
            client.remote_identity


def test_begin_end_and_coroutines():
    client, server = pair()
    with client, server:
        events = []
        rs = server.begin_authenticate_as_server(NetworkCredential(*ALICE), callback=lambda r: events.append("s"))
        rc = client.begin_authenticate_as_client(NetworkCredential(*ALICE), "host/localhost",
                                                 callback=lambda r: events.append("c"))
        client.end_authenticate_as_client(rc)
        server.end_authenticate_as_server(rs)
        # End may return before the callback has run (waiters are woken first).
        eventually(lambda: sorted(events) == ["c", "s"], "both callbacks")

        async def talk():
            await client.write_async(b"hello")
            return await server.read_async(5)

        assert asyncio.run(talk()) == b"hello"

    client, server = pair()
    with client, server:
        async def both():
            await asyncio.gather(server.authenticate_as_server_async(NetworkCredential(*ALICE)),
                                 client.authenticate_as_client_async(NetworkCredential(*ALICE), "host/localhost"))

        asyncio.run(both())
        assert server.remote_identity.name == "TESTDOM\\alice"


def test_users_from_a_file_and_a_lookup(tmp_path):
    users = tmp_path / "users"
    users.write_text("TESTDOM:alice:Passw0rd!\n:bob:b0b\n")
    client, server = pair()
    with client, server:
        assert authenticate(client, server, users=apmnet.NtlmUserFile(users)) == (None, None)
    seen = []

    def lookup(user, domain):
        seen.append((user, domain))
        return "s3cret" if user == "carol" else None

    for credential, ok in ((("carol@REALM", "s3cret"), True), (("dave", "x"), False)):
        client, server = pair()
        with client, server:
            client_error, server_error = authenticate(client, server, credential=credential,
                                                      users=apmnet.CredentialLookup(lookup))
            assert (client_error is None) == ok and (server_error is None) == ok
    assert seen == [("carol", "REALM"), ("dave", "")]
    assert NetworkCredential("alice@APMNET.TEST", "p").domain == "APMNET.TEST"


def test_channel_binding_over_an_ssl_stream(pki):
    a, b = socket.socketpair()
    tls_client = apmnet.SslStream(a)
    tls_server = apmnet.SslStream(b)
    tls_client.set_trusted_ca_file(pki.ca_pem)
    cert = apmnet.X509Certificate2.create_from_pem_file(pki.server_pem, pki.server_key)
    done = in_thread(lambda: tls_server.authenticate_as_server(cert))
    tls_client.authenticate_as_client("localhost")
    done()
    kind = apmnet.ChannelBindingKind.Endpoint
    client_binding = tls_client.transport_context.get_channel_binding(kind)
    server_binding = tls_server.transport_context.get_channel_binding(kind)
    client, server = NegotiateStream(tls_client), NegotiateStream(tls_server)
    with client, server:
        policy = ExtendedProtectionPolicy(PolicyEnforcement.Always, server_binding)
        done = in_thread(lambda: server.authenticate_as_server(NetworkCredential(*ALICE), policy))
        client.authenticate_as_client(NetworkCredential(*ALICE), "host/localhost", client_binding)
        done()
        client.write(b"bound")
        assert read_exactly(server, 5) == b"bound"


def _pyspnego_or_skip():
    try:
        import spnego  # noqa: F401
    except ImportError:
        pytest.skip("pyspnego is not installed in this Python (pip install pyspnego)")


def test_client_against_a_pyspnego_server():
    """pyspnego's acceptor (NTLM users from NTLM_USER_FILE) behind the [MS-NNS] framing."""
    _pyspnego_or_skip()
    import spnego
    a, b = socket.socketpair()
    os.environ["NTLM_USER_FILE"] = os.path.join(os.path.dirname(__file__), "ntlm_users.txt")

    def serve():
        ctx = spnego.server(protocol="negotiate")
        while True:
            head = b.recv(5, socket.MSG_WAITALL)
            token = b.recv(struct.unpack(">H", head[3:5])[0], socket.MSG_WAITALL)
            out = ctx.step(token)
            if ctx.complete:
                b.sendall(bytes([0x14, 1, 0]) + struct.pack(">H", len(out or b"")) + (out or b""))
                return ctx
            b.sendall(bytes([0x16, 1, 0]) + struct.pack(">H", len(out)) + out)

    done = in_thread(serve)
    with NegotiateStream(a) as client:
        client.authenticate_as_client(NetworkCredential(*ALICE), "host/localhost")
        ctx = done()
        client.write(b"sealed")
        size = struct.unpack("<I", b.recv(4, socket.MSG_WAITALL))[0]
        assert ctx.unwrap(b.recv(size, socket.MSG_WAITALL)).data == b"sealed"
    b.close()
