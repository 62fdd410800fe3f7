"""HttpWebRequest against Python's http.server on 127.0.0.1."""

import asyncio
import base64
import gzip
import hashlib
import http.server
import os
import subprocess
import sys
import threading

import pytest

import apmnet
from conftest import HANG_GUARD, REPO_ROOT


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def reply(self, code, data, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        data = self.body()
        if self.path == "/missing":
            self.reply(404, b"nothing here")
        elif self.path == "/gzip":
            self.reply(200, gzip.compress(b"squeezed " * 100), [("Content-Encoding", "gzip")])
        elif self.path == "/moved":
            self.reply(302, b"", [("Location", "/echo")])
        else:
            text = f"{self.command} {len(data)} {hashlib.sha256(data).hexdigest()}"
            self.reply(200, text.encode(), [("Content-Type", "text/plain")])

    do_GET = do_POST = do_PUT = handle_any


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that hung up mid-request (the ContentLength test does)


def _serve(handler):
    """Serves `handler` on 127.0.0.1 meanwhile; yields the base URI."""
    httpd = Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def server():
    yield from _serve(Handler)


def test_get_and_the_response(server):
    request = apmnet.HttpWebRequest.create(server + "/echo")
    assert request.method == "GET" and request.content_length == -1 and request.timeout == 100000
    with request.get_response() as response:
        assert response.status_code == 200
        assert response.status_description == "OK"
        assert response.content_type == "text/plain"
        assert response.get_header("content-type") == "text/plain"
        assert response.response_uri == server + "/echo"
        assert response.read_all().startswith(b"GET 0 ")


@pytest.mark.parametrize("mode", ["length", "chunked", "buffered"])
def test_post_bodies(server, mode):
    data = bytes(range(256)) * 1000
    request = apmnet.HttpWebRequest.create(server + "/echo")
    request.method = "POST"
    if mode == "length":
        request.content_length = len(data)
    elif mode == "chunked":
        request.send_chunked = True
    stream, context = request.get_request_stream_with_context()
    assert context.get_channel_binding(apmnet.ChannelBindingKind.Unique) is None  # http: none
    with stream:
        stream.write(data)
    with request.get_response() as response:
        assert response.read_all().decode() == f"POST {len(data)} {hashlib.sha256(data).hexdigest()}"
    context.close()


def test_content_length_rules(server):
    request = apmnet.HttpWebRequest.create(server + "/echo")
    request.method = "PUT"
    request.content_length = 3
    stream = request.get_request_stream()
    with pytest.raises(apmnet.ProtocolViolationError):
        stream.write(b"four")
    with pytest.raises(apmnet.InvalidOperationError, match="after writing has started"):
        request.content_length = 5
    stream.write(b"ab")
    with pytest.raises(apmnet.IOException, match="Cannot close stream until all bytes are written."):
        stream.close()
    with pytest.raises(apmnet.WebError) as caught:
        request.get_response()
    assert caught.value.web_status == apmnet.WebExceptionStatus.RequestCanceled
    with pytest.raises(apmnet.ArgumentError, match="must be modified using the appropriate property"):
        apmnet.HttpWebRequest.create(server).headers_set("User-Agent", "x")


def test_protocol_error_carries_a_readable_response(server):
    request = apmnet.HttpWebRequest.create(server + "/missing")
    with pytest.raises(apmnet.WebError) as caught:
        request.get_response()
    error = caught.value
    assert error.web_status == apmnet.WebExceptionStatus.ProtocolError and error.http_status == 404
    assert str(error) == "The remote server returned an error: (404) Not Found."
    with error.response as response:
        assert response.status_code == 404
        assert response.read_all() == b"nothing here"


def test_decompression_and_redirects(server):
    request = apmnet.HttpWebRequest.create(server + "/gzip")
    request.automatic_decompression = apmnet.DecompressionMethods.GZip
    with request.get_response() as response:
        assert response.read_all() == b"squeezed " * 100
    request = apmnet.HttpWebRequest.create(server + "/moved")
    with request.get_response() as response:
        assert response.response_uri == server + "/echo"
    assert request.address == server + "/echo"


def test_begin_end_and_asyncio(server):
    request = apmnet.HttpWebRequest.create(server + "/echo")
    done = threading.Event()
    result = request.begin_get_response(lambda r: done.set())
    assert done.wait(30)
    with request.end_get_response(result) as response:
        assert response.status_code == 200

    async def main():
        r = apmnet.HttpWebRequest.create(server + "/echo")
        r.method = "POST"
        stream, context = await r.get_request_stream_async()
        with stream:
            await stream.write_async(b"xyz")
        response = await r.get_response_async()
        with response:
            return response.read_all()

    assert asyncio.run(main()).startswith(b"POST 3 ")


def test_abort_cancels_and_is_idempotent(server):
    request = apmnet.HttpWebRequest.create(server + "/echo")
    request.abort()
    request.abort()
    with pytest.raises(apmnet.WebError) as caught:
        request.begin_get_response()
    assert caught.value.web_status == apmnet.WebExceptionStatus.RequestCanceled


@pytest.fixture
def proxy(request):
    """ffi-tests/peers/http_proxy_peer.py with the test's marker arguments; yields its URI."""
    marker = request.node.get_closest_marker("proxy_args")
    args = list(marker.args) if marker else []
    script = REPO_ROOT / "ffi-tests" / "peers" / "http_proxy_peer.py"
    peer = subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True)
    port = int(peer.stdout.readline().split()[1])
    yield f"http://127.0.0.1:{port}"
    peer.kill()
    peer.wait(HANG_GUARD)


def proxy_lines(proxy):
    request = apmnet.HttpWebRequest.create(proxy + "/lines")
    request.proxy = None
    with request.get_response() as response:
        return response.read_all().decode()


def test_proxy_forwards_in_absolute_form(server, proxy):
    request = apmnet.HttpWebRequest.create(server + "/echo")
    assert request.proxy is None  # the tests' environment has none
    request.proxy = proxy
    assert request.proxy == proxy + "/"
    request.method = "POST"
    request.content_length = 3
    with request.get_request_stream() as stream:
        stream.write(b"abc")
    with request.get_response() as response:
        assert response.read_all().decode() == f"POST 3 {hashlib.sha256(b'abc').hexdigest()}"
    assert f"POST {server}/echo HTTP/1.1 auth=no\n" in proxy_lines(proxy)
    request = apmnet.HttpWebRequest.create(server + "/echo")
    request.proxy = proxy
    request.proxy = None
    assert request.proxy is None
    request.proxy = apmnet.HttpWebRequest.DEFAULT_PROXY
    assert request.proxy is None
    with pytest.raises(apmnet.NotSupportedError, match="Only the 'http' scheme is allowed for proxies."):
        request.proxy = "https://127.0.0.1:1"


@pytest.mark.proxy_args("--auth", "user:pass")
def test_proxy_credentials_answer_407(server, proxy):
    request = apmnet.HttpWebRequest.create(server + "/echo")
    request.proxy = proxy
    with pytest.raises(apmnet.WebError) as caught:
        request.get_response()
    assert caught.value.web_status == apmnet.WebExceptionStatus.ProtocolError and caught.value.http_status == 407
    with caught.value.response as response:
        assert response.read_all() == b"proxy credentials, please"
    request = apmnet.HttpWebRequest.create(server + "/echo")
    request.proxy = proxy
    request.set_proxy_credentials("user", "pass")
    with request.get_response() as response:
        assert response.read_all().startswith(b"GET 0 ")


def test_the_default_proxy_is_the_environments(server, proxy):
    # The environment is read once per process: a fresh one gets it.
    code = (
        "import apmnet; r = apmnet.HttpWebRequest.create(%r); print(r.proxy);"
        " print(apmnet.HttpWebRequest.create('http://skip.example/').proxy)" % (server + "/echo")
    )
    env = dict(os.environ, http_proxy=proxy, no_proxy=".example")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=HANG_GUARD)
    assert out.stdout.split() == [proxy + "/", "None"], out.stderr


class NtlmHandler(http.server.BaseHTTPRequestHandler):
    """/ntlm wants NTLM, its acceptor the library's own NegotiateAuthentication (one context a
    connection, as NTLM authenticates the connection); the answer names the user, the connection's
    number and the body's SHA-256."""

    protocol_version = "HTTP/1.1"
    connections = 0

    def setup(self):
        super().setup()
        NtlmHandler.connections += 1
        self.number = NtlmHandler.connections
        self.context = None

    def log_message(self, *args):
        pass

    def handle_any(self):
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        scheme, _, blob = self.headers.get("Authorization", "").partition(" ")
        if scheme != "NTLM":
            return self.answer(401, b"who are you", "NTLM, Basic realm=\"x\"")
        if self.context is None:
            users = apmnet.NetworkCredential("alice", "Passw0rd!", "TESTDOM")
            self.context = apmnet.NegotiateAuthentication(
                apmnet.NegotiateAuthenticationServerOptions(package="NTLM", credential=users))
        out, status = self.context.get_outgoing_blob(base64.b64decode(blob))
        if status == apmnet.NegotiateAuthenticationStatusCode.ContinueNeeded:
            return self.answer(401, b"go on", "NTLM " + base64.b64encode(out).decode())
        if status != apmnet.NegotiateAuthenticationStatusCode.Completed:
            self.context = None
            return self.answer(401, f"refused {status.name}".encode(), "NTLM")
        who = self.context.remote_identity.name
        self.context = None
        self.answer(200, f"{who} {self.number} {hashlib.sha256(data).hexdigest()}".encode())

    def answer(self, code, data, challenge=None):
        self.send_response(code)
        if challenge:
            self.send_header("WWW-Authenticate", challenge)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = handle_any


@pytest.fixture
def ntlm_server():
    yield from _serve(NtlmHandler)


def test_ntlm_credentials_with_a_domain(ntlm_server):
    data = b"resent on every leg" * 100
    request = apmnet.HttpWebRequest.create(ntlm_server + "/ntlm")
    request.proxy = None
    request.credentials = apmnet.NetworkCredential("alice", "Passw0rd!", "TESTDOM")
    request.method = "POST"
    with request.get_request_stream() as stream:
        stream.write(data)
    with request.get_response() as response:
        assert response.read_all().decode() == f"TESTDOM\\alice 1 {hashlib.sha256(data).hexdigest()}"
    # A wrong password: ProtocolError 401 with the server's answer readable.
    request = apmnet.HttpWebRequest.create(ntlm_server + "/ntlm")
    request.proxy = None
    request.credentials = apmnet.NetworkCredential("alice", "wrong", "TESTDOM")
    with pytest.raises(apmnet.WebError) as caught:
        request.get_response()
    assert caught.value.web_status == apmnet.WebExceptionStatus.ProtocolError and caught.value.http_status == 401
    with caught.value.response as response:
        assert response.read_all().startswith(b"refused ")


def test_credential_settings():
    request = apmnet.HttpWebRequest.create("http://127.0.0.1:1/")
    assert request.credentials is None and not request.use_default_credentials and not request.pre_authenticate
    request.use_default_credentials = True
    assert request.use_default_credentials
    request.credentials = apmnet.NetworkCredential("alice", "p", "D")
    assert not request.use_default_credentials and request.credentials.domain == "D"
    request.credentials = apmnet.CredentialCache.default_credentials()
    assert request.use_default_credentials
    request.pre_authenticate = True
    assert request.pre_authenticate
    with pytest.raises(apmnet.ArgumentError):
        request.credentials = apmnet.NtlmUserFile(os.path.join(os.path.dirname(__file__), "ntlm_users.txt"))
