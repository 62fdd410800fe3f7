"""NegotiateAuthentication: our client against our server with the blobs carried here (NTLM and
Negotiate), wrap/unwrap and integrity checks both ways, a wrong password as a status code, a
channel binding from SslStream TransportContexts, and misuse."""

import os
import socket
import threading

import pytest

from apmnet import (ChannelBindingKind, InvalidOperationError, NegotiateAuthentication,
                    NegotiateAuthenticationClientOptions, NegotiateAuthenticationServerOptions,
                    NegotiateAuthenticationStatusCode as Status, NetworkCredential, PolicyEnforcement,
                    ProtectionLevel, SslStream, X509Certificate2)

os.environ.setdefault("KRB5_CONFIG", "/nonexistent/krb5.conf")


def make(package="NTLM", password="Passw0rd!", level=ProtectionLevel.EncryptAndSign, client_binding=None,
         server_binding=None, enforcement=PolicyEnforcement.Never):
    client = NegotiateAuthentication(NegotiateAuthenticationClientOptions(
        package=package, credential=NetworkCredential("alice", password, "TESTDOM"), target_name="host/localhost",
        binding=client_binding, required_protection_level=level))
    server = NegotiateAuthentication(NegotiateAuthenticationServerOptions(
        package=package, credential=NetworkCredential("TESTDOM\\alice", "Passw0rd!"), binding=server_binding,
        policy_enforcement=enforcement, required_protection_level=level))
    return client, server


def exchange(client, server):
    """Carries the blobs; the last (client, server) statuses."""
    cs = ss = Status.ContinueNeeded
    answer = None
    for _ in range(8):
        blob, cs = client.get_outgoing_blob(answer)
        if cs > Status.ContinueNeeded or blob is None:
            break
        answer, ss = server.get_outgoing_blob(blob)
        if ss > Status.ContinueNeeded or (cs == Status.Completed and answer is None):
            break
    return cs, ss


@pytest.mark.parametrize("package", ["NTLM", "Negotiate"])
def test_both_sides_complete_and_protect_messages(package):
    client, server = make(package)
    assert not client.is_authenticated and server.is_server
    assert exchange(client, server) == (Status.Completed, Status.Completed)
    assert client.is_authenticated and client.is_encrypted and server.is_signed
    assert not client.is_mutually_authenticated
    assert client.protection_level == ProtectionLevel.EncryptAndSign
    assert (client.package, server.package) == ("NTLM", "NTLM")
    assert server.remote_identity.name == "TESTDOM\\alice"
    assert client.remote_identity.name == "host/localhost" == client.target_name
    status, token, encrypted = client.wrap(b"ping", True)
    assert (status, encrypted) == (Status.Completed, True)
    assert server.unwrap(token) == (Status.Completed, b"ping", True)
    status, token, _ = server.wrap(b"pong" * 2000, True)
    assert client.unwrap(token)[:2] == (Status.Completed, b"pong" * 2000)
    mic = client.compute_integrity_check(b"message")
    assert server.verify_integrity_check(b"message", mic)
    assert not server.verify_integrity_check(b"massage", client.compute_integrity_check(b"message"))
    client.close()
    server.close()


def test_a_wrong_password_is_unknown_credentials():
    client, server = make(password="wrong", level=ProtectionLevel.Sign)
    assert exchange(client, server)[1] == Status.UnknownCredentials
    assert not server.is_authenticated


def test_wrap_before_authentication_is_invalid_operation():
    client, _ = make()
    with pytest.raises(InvalidOperationError, match="successfully authenticated context"):
        client.wrap(b"x", False)
    with pytest.raises(InvalidOperationError):
        client.remote_identity
    with pytest.raises(TypeError):
        NegotiateAuthentication("NTLM")


def tls_contexts(pki):
    """The TransportContexts of both ends of a fresh TLS connection."""
    a, b = socket.socketpair()
    client, server = SslStream(a), SslStream(b)
    certificate = X509Certificate2.create_from_pem_file(pki.server_pem, pki.server_key)
    t = threading.Thread(target=server.authenticate_as_server, args=(certificate,))
    t.start()
    client.set_trusted_ca_file(pki.ca_pem)
    client.authenticate_as_client("localhost")
    t.join()
    return client.transport_context, server.transport_context


def test_channel_binding_of_another_connection_is_bad_binding(pki):
    c1, s1 = tls_contexts(pki)
    c2, _ = tls_contexts(pki)
    for client_ctx, kind, want in [(c1, ChannelBindingKind.Unique, Status.Completed),
                                   (c2, ChannelBindingKind.Unique, Status.BadBinding)]:
        client = NegotiateAuthentication(NegotiateAuthenticationClientOptions(
            package="NTLM", credential=NetworkCredential("alice", "Passw0rd!", "TESTDOM"), binding=client_ctx,
            binding_kind=kind, required_protection_level=ProtectionLevel.Sign))
        server = NegotiateAuthentication(NegotiateAuthenticationServerOptions(
            package="NTLM", credential=NetworkCredential("TESTDOM\\alice", "Passw0rd!"), binding=s1, binding_kind=kind,
            policy_enforcement=PolicyEnforcement.Always, required_protection_level=ProtectionLevel.Sign))
        assert exchange(client, server)[1] == want
