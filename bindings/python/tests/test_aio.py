"""apmnet.aio: coroutine Socket, NetworkStream and SslStream against asyncio's own servers and
clients on 127.0.0.1 (Python's ssl for TLS, certificates from pki.py): echo with data checks,
send_file checked by SHA-256, TLS both ways, closing as the way to abort a pending read, cancelled
calls losing nothing, writes kept in order, many connections in one loop."""

import asyncio
import contextlib
import hashlib
import os
import ssl

import pytest

import apmnet
from apmnet import SocketShutdown, SslProtocols, X509Certificate2, aio
from conftest import HANG_GUARD, closed_port, sha256


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, HANG_GUARD))


async def settle():
    """Let the tasks just started run up to their first real wait (a pending Begin). Only
    scheduling: nothing is timed, and each test is right whether or not the Begin was reached."""
    for _ in range(10):
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def serve(handler, context=None):
    """An asyncio server on 127.0.0.1 running ``handler(reader, writer)`` per connection; yields
    the port."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def echo(reader, writer):
    """Echo until the client's end of stream (or a TLS close_notify), then close."""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


def sink(done):
    """A handler reading to the end; ``done`` gets (byte count, SHA-256 hex digest)."""
    async def handler(reader, writer):
        digest, total = hashlib.sha256(), 0
        while True:
            data = await reader.read(1 << 20)
            if not data:
                break
            digest.update(data)
            total += len(data)
        writer.close()
        done.set_result((total, digest.hexdigest()))

    return handler


def server_context(pki):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_pem, pki.server_key)
    return context


def client_context(pki):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(pki.ca_pem)
    return context


def trusting(pki, **options):
    return aio.SslClientAuthenticationOptions(target_host="localhost", trusted_ca_file=pki.ca_pem,
                                              **options)


async def round_trip(stream, data):
    """Write ``data`` while reading it back (an echo peer); the bytes read."""
    writer = asyncio.ensure_future(stream.write(data))
    received = await stream.readexactly(len(data))
    await writer
    return received


# Echo and the Socket coroutines ---------------------------------------------------------------

def test_network_stream_echo():
    async def main():
        async with serve(echo) as port:
            stream = await aio.open_connection("127.0.0.1", port)
            assert isinstance(stream, aio.NetworkStream) and stream.owns_socket
            async with stream:
                assert stream.can_read and stream.can_write
                data = os.urandom((1 << 20) + 7)
                assert await round_trip(stream, data) == data
                await stream.write(bytearray(b"abc"))
                await stream.write(memoryview(b"xdefx")[1:4])
                assert await stream.readexactly(6) == b"abcdef"
                assert await stream.read(0) == b""
                stream.socket.shutdown(SocketShutdown.Send)
                assert await stream.read(10) == b""
            assert not stream.can_read

    run(main())


def test_socket_connect_send_receive():
    async def main():
        async with serve(echo) as port:
            async with aio.Socket() as sock:
                await sock.connect("127.0.0.1", port)
                assert sock.connected and sock.remote_end_point == ("127.0.0.1", port)
                sock.no_delay = True
                assert sock.no_delay
                data = os.urandom(300000)
                assert await sock.send(data) == len(data)
                received = bytearray()
                while len(received) < len(data):
                    chunk = await sock.receive(65536)
                    assert chunk
                    received += chunk
                assert bytes(received) == data
                sock.shutdown(SocketShutdown.Send)
                assert await sock.receive(10) == b""

    run(main())


def test_socket_accept_and_serve_asyncio_clients():
    """An aio echo server (accept, NetworkStream) with asyncio's own clients."""
    async def main():
        async with aio.Socket() as listener:
            listener.bind("127.0.0.1", 0)
            listener.listen()
            port = listener.local_end_point[1]

            async def client(i):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                message = b"client %d " % i * 500
                writer.write(message)
                writer.write_eof()
                received = await reader.read()
                writer.close()
                return received == message

            clients = asyncio.gather(*(client(i) for i in range(5)))
            for _ in range(5):
                accepted = await listener.accept()
                assert isinstance(accepted, aio.Socket)
                async with aio.NetworkStream(accepted, owns_socket=True) as stream:
                    assert stream.socket is accepted
                    while True:
                        data = await stream.read(4096)
                        if not data:
                            break
                        await stream.write(data)
            assert await clients == [True] * 5

    run(main())


def test_send_file_sha256(random_file):
    path, content = random_file

    async def main():
        done = asyncio.get_running_loop().create_future()
        async with serve(sink(done)) as port:
            async with aio.Socket() as sock:
                await sock.connect("127.0.0.1", port)
                await sock.send_file(path, pre=b"<header>", post=bytearray(b"<trailer>"))
                await sock.send_file(None, pre=b"|", flags=0)
                sock.shutdown(SocketShutdown.Send)
                return await done

    assert run(main()) == (len(content) + 18, sha256(b"<header>", content, b"<trailer>|"))


# TLS ------------------------------------------------------------------------------------------

def test_tls_client_round_trip(pki):
    async def main():
        async with serve(echo, server_context(pki)) as port:
            tls = await aio.open_connection("127.0.0.1", port, ssl=trusting(pki))
            assert isinstance(tls, aio.SslStream)
            async with tls:
                assert tls.is_authenticated and tls.is_encrypted and not tls.is_server
                assert tls.ssl_protocol in (SslProtocols.Tls12, SslProtocols.Tls13)
                assert tls.negotiated_cipher_suite_name.startswith("TLS_")
                assert tls.target_host_name == "localhost"
                assert tls.remote_certificate.subject == "O=apmnet, CN=localhost"
                assert tls.transport_context.get_channel_binding(
                    apmnet.ChannelBindingKind.Unique) is not None
                data = os.urandom((2 << 20) + 3)
                assert await round_trip(tls, data) == data
                await tls.shutdown()  # close_notify: the server's read ends, it closes
                assert await tls.read(10) == b""

    run(main())


def test_tls_server_with_an_asyncio_client(pki):
    data = os.urandom(500000)

    async def main():
        async with aio.Socket() as listener:
            listener.bind("127.0.0.1", 0)
            listener.listen()

            async def client():
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", listener.local_end_point[1], ssl=client_context(pki),
                    server_hostname="localhost")
                writer.write(data)
                received = await reader.readexactly(len(data))
                writer.close()
                return received

            client_task = asyncio.ensure_future(client())
            accepted = await listener.accept()
            certificate = X509Certificate2(pki.server_with_key_pem)
            async with aio.SslStream(aio.NetworkStream(accepted, owns_socket=True)) as tls:
                await tls.authenticate_as_server(certificate)
                assert tls.is_server and tls.is_authenticated
                assert tls.local_certificate == certificate
                await tls.write(await tls.readexactly(len(data)))
                assert await client_task == data

    run(main())


def test_ssl_stream_constructor_and_authenticate_as_client(pki):
    async def main():
        async with serve(echo, server_context(pki)) as port:
            sock = aio.Socket()
            await sock.connect("127.0.0.1", port)
            seen = []

            def validate(sender, certificate, chain, errors):
                seen.append((sender, errors))
                return errors == apmnet.SslPolicyErrors.None_

            async with aio.SslStream(aio.NetworkStream(sock, owns_socket=True), False,
                                     validate) as tls:
                tls.set_trusted_ca_file(pki.ca_pem)
                await tls.authenticate_as_client("localhost",
                                                 enabled_ssl_protocols=SslProtocols.Tls13,
                                                 application_protocols=[b"echo"])
                assert tls.ssl_protocol == SslProtocols.Tls13
                assert seen == [(tls.sync, apmnet.SslPolicyErrors.None_)]
                assert await round_trip(tls, b"hello") == b"hello"
            assert tls.inner_stream.socket is sock
            with pytest.raises(apmnet.ObjectDisposedError):  # closed with the streams
                sock.available

    run(main())


def test_failed_handshake_is_the_package_error(pki):
    async def main():
        async with serve(echo, server_context(pki)) as port:
            with pytest.raises(apmnet.AuthenticationError):  # the test CA is not trusted
                await aio.open_connection("127.0.0.1", port, ssl=True)
            with pytest.raises(TypeError):
                await aio.open_connection("127.0.0.1", port, ssl="yes")

    run(main())


# Writes in order ------------------------------------------------------------------------------

@pytest.mark.parametrize("tls", [False, True], ids=["network", "ssl"])
def test_concurrent_writes_go_out_in_call_order(request, tls):
    """Twenty writes started at once: the library's SslStream takes one pending write at a time,
    and the aio layer queues them in call order."""
    chunks = [bytes([i]) * (50000 + i) for i in range(20)]
    pki = request.getfixturevalue("pki") if tls else None

    async def main():
        done = asyncio.get_running_loop().create_future()
        async with serve(sink(done), server_context(pki) if tls else None) as port:
            stream = await aio.open_connection("127.0.0.1", port,
                                               ssl=trusting(pki) if tls else None)
            async with stream:
                await asyncio.gather(*(stream.write(chunk) for chunk in chunks))
                if tls:
                    await stream.shutdown()
                else:
                    stream.socket.shutdown(SocketShutdown.Send)
                return await done

    assert run(main()) == (sum(map(len, chunks)), sha256(*chunks))


# Aborting and cancelling ----------------------------------------------------------------------

def silent(release):
    """A handler that neither reads nor writes until ``release`` (an asyncio.Event) is set, then
    closes."""
    async def handler(reader, writer):
        await release.wait()
        writer.close()

    return handler


@pytest.mark.parametrize("tls", [False, True], ids=["network", "ssl"])
def test_closing_aborts_a_pending_read(request, tls):
    pki = request.getfixturevalue("pki") if tls else None

    async def main():
        release = asyncio.Event()
        async with serve(silent(release), server_context(pki) if tls else None) as port:
            stream = await aio.open_connection("127.0.0.1", port,
                                               ssl=trusting(pki) if tls else None)
            reader = asyncio.ensure_future(stream.read(100))
            exactly = asyncio.ensure_future(stream.readexactly(5))  # a second reader
            await settle()
            assert not reader.done()
            with pytest.raises(apmnet.NotSupportedError):
                await exactly
            stream.close()
            with pytest.raises((apmnet.ObjectDisposedError, apmnet.IOException)):
                await reader
            with pytest.raises(apmnet.ObjectDisposedError):
                await stream.read(100)
            with pytest.raises(apmnet.ObjectDisposedError):
                await stream.write(b"x")
            release.set()

    run(main())


def test_closing_aborts_a_pending_receive_and_accept():
    async def main():
        release = asyncio.Event()
        async with serve(silent(release)) as port:
            sock = aio.Socket()
            await sock.connect("127.0.0.1", port)
            receive = asyncio.ensure_future(sock.receive(10))
            listener = aio.Socket()
            listener.bind("127.0.0.1", 0)
            listener.listen()
            accept = asyncio.ensure_future(listener.accept())
            await settle()
            sock.close()
            listener.close()
            for task in (receive, accept):
                with pytest.raises(apmnet.ObjectDisposedError):
                    await task
            release.set()

    run(main())


def test_a_cancelled_read_loses_no_data():
    async def main():
        send = asyncio.Event()

        async def later(reader, writer):
            await send.wait()
            writer.write(b"hello world")
            await writer.drain()
            await reader.read()
            writer.close()

        async with serve(later) as port:
            async with await aio.open_connection("127.0.0.1", port) as stream:
                reader = asyncio.ensure_future(stream.read(100))
                await settle()
                reader.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await reader
                with pytest.raises(asyncio.TimeoutError):  # wait_for cancels the read as well
                    await asyncio.wait_for(stream.readexactly(3), 0.01)
                send.set()
                assert await stream.read(5) == b"hello"
                assert await stream.readexactly(6) == b" world"

    run(main())


def test_a_cancelled_readexactly_keeps_what_it_read():
    async def main():
        rest = asyncio.Event()

        async def in_two_parts(reader, writer):
            writer.write(b"abc")
            await rest.wait()
            writer.write(b"def")
            await reader.read()
            writer.close()

        async with serve(in_two_parts) as port:
            async with await aio.open_connection("127.0.0.1", port) as stream:
                reading = asyncio.ensure_future(stream.readexactly(6))
                await settle()  # whether or not "abc" arrived by now, nothing may be lost
                reading.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await reading
                rest.set()
                assert await stream.readexactly(6) == b"abcdef"

    run(main())


def test_a_cancelled_accept_keeps_the_connection():
    async def main():
        async with aio.Socket() as listener:
            listener.bind("127.0.0.1", 0)
            listener.listen()
            accepting = asyncio.ensure_future(listener.accept())
            await settle()
            accepting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await accepting
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.local_end_point[1])
            async with await listener.accept() as accepted:
                writer.write(b"ping")
                assert await accepted.receive(4) == b"ping"
            writer.close()

    run(main())


# Errors, wrapping -----------------------------------------------------------------------------

def test_errors_are_the_package_exceptions(tmp_path):
    async def main():
        with pytest.raises(apmnet.SocketException) as refused:
            await aio.open_connection("127.0.0.1", closed_port())
        assert refused.value.socket_error_code == apmnet.SocketError.ConnectionRefused
        async with serve(echo) as port:
            async with aio.Socket() as sock:
                await sock.connect(("127.0.0.1", port))
                with pytest.raises(apmnet.FileNotFoundException):
                    await sock.send_file(tmp_path / "absent")
                stream = aio.NetworkStream(sock)
                with pytest.raises(apmnet.ArgumentOutOfRangeError):
                    await stream.read(-1)
                await stream.write(b"abc")
                sock.shutdown(SocketShutdown.Send)
                with pytest.raises(asyncio.IncompleteReadError) as incomplete:
                    await stream.readexactly(5)
                assert incomplete.value.partial == b"abc"
                stream.close()
                with pytest.raises(apmnet.ObjectDisposedError):
                    await stream.write(b"x")

    run(main())


def test_wrap_existing_synchronous_objects(pki):
    async def main():
        async with serve(echo, server_context(pki)) as port:
            sync_socket = apmnet.Socket()
            sync_socket.connect("127.0.0.1", port)
            sync_stream = apmnet.NetworkStream(sync_socket, owns_socket=True)
            wrapped = aio.NetworkStream.wrap(sync_stream)
            assert wrapped.sync is sync_stream and wrapped.socket.sync is sync_socket
            sync_tls = apmnet.SslStream(sync_stream)
            sync_tls.set_trusted_ca_file(pki.ca_pem)
            tls = aio.Stream.wrap(sync_tls)
            assert type(tls) is aio.SslStream and tls.inner_stream is sync_stream
            async with tls:
                await tls.authenticate_as_client("localhost")  # the server is in this loop
                assert sync_tls.is_authenticated
                assert await round_trip(tls, b"wrapped") == b"wrapped"
            with pytest.raises(apmnet.ObjectDisposedError):  # closed with the streams
                sync_socket.available
            async with aio.Socket.wrap(apmnet.Socket(apmnet.AddressFamily.InterNetworkV6)) as v6:
                assert v6.address_family == apmnet.AddressFamily.InterNetworkV6
            with pytest.raises(TypeError):
                aio.NetworkStream.wrap(sync_socket)
            with pytest.raises(TypeError):
                aio.Stream(sync_stream)

    run(main())


# Many connections -----------------------------------------------------------------------------

@pytest.mark.parametrize("tls", [False, True], ids=["network", "ssl"])
def test_fifty_connections_in_one_loop(request, tls):
    pki = request.getfixturevalue("pki") if tls else None

    async def one(port, i):
        async with await aio.open_connection("127.0.0.1", port,
                                             ssl=trusting(pki) if tls else None) as stream:
            data = os.urandom(20000 + i)
            return await round_trip(stream, data) == data

    async def main():
        async with serve(echo, server_context(pki) if tls else None) as port:
            return await asyncio.gather(*(one(port, i) for i in range(50)))

    assert run(main()) == [True] * 50


def test_a_cancelled_read_of_a_stream_the_library_cannot_cancel_is_kept():
    """A custom stream's read cannot be cancelled in the library (its functions own the buffer
    until they complete): cancelling the task lets it run on, and its bytes go to the next read."""
    import socket

    from apmnet._custom import ObjectStream

    async def main():
        ours, theirs = socket.socketpair()
        with theirs:
            stream = aio.Stream.wrap(ObjectStream(ours))
            try:
                reading = asyncio.ensure_future(stream.read(5))
                await settle()
                reading.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await reading
                theirs.sendall(b"kept!")
                assert await stream.read(5) == b"kept!"
            finally:
                stream.close()

    run(main())
