#!/usr/bin/env python3
"""A small forwarding HTTP proxy for the C harness's HttpWebRequest proxy tests.

  http_proxy_peer.py [--auth USER:PASS | --ntlm] [--refuse-connect CODE] [--timeout S]

Prints "PORT <port>", then serves until killed (or --timeout seconds).

* An absolute-form request (`GET http://host:port/path HTTP/1.1`) is forwarded in origin form
  to host:port (its Proxy-* headers removed), on an upstream connection kept for the client
  connection's later requests to the same server; the response is relayed byte for byte,
  framed as the server framed it (Content-Length, chunked, or to the close).
* `CONNECT host:port` opens a tunnel (200, then bytes both ways until either side closes), or
  is answered CODE with --refuse-connect.
* --auth: a request (CONNECT included) without `Proxy-Authorization: Basic base64(USER:PASS)`
  gets 407 with `Proxy-Authenticate: Basic realm="apmnet-proxy"` and a body.
* --ntlm: a client connection authenticates with NTLM (pyspnego's acceptor, users from
  NTLM_USER_FILE) before anything is forwarded: 407 `Proxy-Authenticate: NTLM` and the
  challenge until the handshake completes; the connection then stays authenticated (the
  request carrying the last token is served). A refused token: 407 with the bare scheme.
* An origin-form request is for the proxy itself:
    /stats   "connections=N tunnels=T forwarded=F"  (client connections accepted, CONNECTs
             that opened a tunnel, requests forwarded)
    /lines   every request line received so far (these two excluded), one per line, each
             followed by " auth=yes" or " auth=no" (whether Proxy-Authorization came with it)
"""
import argparse
import base64
import select
import signal
import socket
import socketserver
import sys
import threading
import urllib.parse

STATS = {"connections": 0, "tunnels": 0, "forwarded": 0}
LINES = []
LOCK = threading.Lock()


def read_head(f):
    """The first line and the headers of a message, or None at the end of the stream."""
    line = f.readline(65537)
    while line in (b"\r\n", b"\n"):
        line = f.readline(65537)
    if not line:
        return None
    headers = []
    while True:
        h = f.readline(65537)
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return line.decode("latin-1").rstrip("\r\n"), headers


def header(headers, name):
    for n, v in headers:
        if n.lower() == name.lower():
            return v
    return None


def write_head(out, first, headers):
    out.write((first + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n").encode("latin-1"))


def copy_exact(src, out, n):
    while n > 0:
        data = src.read(min(n, 1 << 16))
        if not data:
            raise ConnectionError("the stream ended inside a body")
        if out is not None:
            out.write(data)
        n -= len(data)


def copy_body(src, out, headers, to_close):
    """Copies one body framed by `headers`; `to_close`: without a length, it runs to the end of
    the stream (a response). Returns True when the body ran to the close."""
    te = header(headers, "Transfer-Encoding") or ""
    if "chunked" in te.lower():
        while True:
            line = src.readline(65537)
            if not line:
                raise ConnectionError("the stream ended inside a chunked body")
            if out is not None:
                out.write(line)
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:
                    t = src.readline(65537)
                    if out is not None:
                        out.write(t)
                    if t in (b"\r\n", b"\n", b""):
                        return False
            copy_exact(src, out, size + 2)
    length = header(headers, "Content-Length")
    if length is not None:
        copy_exact(src, out, int(length))
        return False
    if to_close:
        while True:
            data = src.read1(1 << 16) if hasattr(src, "read1") else src.read(1 << 16)
            if not data:
                return True
            if out is not None:
                out.write(data)
    return False


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        with LOCK:
            STATS["connections"] += 1
        self.upstreams = {}
        self.ntlm = None
        self.ntlm_done = False
        try:
            while self.one_request():
                pass
        except (OSError, ValueError, ConnectionError):
            pass
        finally:
            for sock, _ in self.upstreams.values():
                sock.close()

    def answer(self, code, reason, body, extra=()):
        headers = list(extra) + [("Content-Length", str(len(body)))]
        write_head(self.wfile, f"HTTP/1.1 {code} {reason}", headers)
        self.wfile.write(body)
        self.wfile.flush()

    def one_request(self):
        head = read_head(self.rfile)
        if head is None:
            return False
        line, headers = head
        method, target, _version = line.split(" ", 2)
        if not target.startswith("/"):
            with LOCK:
                LINES.append(f"{line} auth={'yes' if header(headers, 'Proxy-Authorization') else 'no'}")
        elif target == "/stats":
            with LOCK:
                text = f"connections={STATS['connections']} tunnels={STATS['tunnels']} forwarded={STATS['forwarded']}"
            self.answer(200, "OK", text.encode())
            return True
        elif target == "/lines":
            with LOCK:
                text = "".join(l + "\n" for l in LINES)
            self.answer(200, "OK", text.encode())
            return True
        else:
            self.answer(404, "Not Found", b"not a proxy path")
            return True
        if self.server.ntlm and not self.ntlm_done:
            challenge = self.ntlm_step(header(headers, "Proxy-Authorization") or "")
            if challenge is not None:
                if method != "CONNECT":
                    copy_body(self.rfile, None, headers, False)
                self.answer(407, "Proxy Authentication Required", b"NTLM, please",
                            [("Proxy-Authenticate", challenge)])
                return True
        if self.server.auth is not None and header(headers, "Proxy-Authorization") != self.server.auth:
            if method != "CONNECT":
                copy_body(self.rfile, None, headers, False)
            self.answer(407, "Proxy Authentication Required", b"proxy credentials, please",
                        [("Proxy-Authenticate", 'Basic realm="apmnet-proxy"')])
            return True
        if method == "CONNECT":
            return self.tunnel(target)
        return self.forward(method, target, headers)

    def ntlm_step(self, value):
        """Steps the connection's NTLM acceptor with a Proxy-Authorization value: None once the
        handshake completed, else the Proxy-Authenticate to answer with."""
        import spnego
        scheme, _, blob = value.partition(" ")
        if scheme.lower() != "ntlm" or not blob:
            self.ntlm = None
            return "NTLM"
        if self.ntlm is None:
            self.ntlm = spnego.server(protocol="ntlm")
        try:
            out = self.ntlm.step(base64.b64decode(blob))
        except Exception:
            self.ntlm = None
            return "NTLM"
        if self.ntlm.complete:
            self.ntlm_done = True
            return None
        return "NTLM " + base64.b64encode(out).decode()

    def tunnel(self, authority):
        if self.server.refuse_connect:
            code = self.server.refuse_connect
            self.answer(code, "Forbidden" if code == 403 else "Refused", b"no tunnel for you")
            return True
        host, _, port = authority.rpartition(":")
        try:
            up = socket.create_connection((host.strip("[]"), int(port)))
        except OSError:
            self.answer(502, "Bad Gateway", b"cannot reach the server")
            return True
        with LOCK:
            STATS["tunnels"] += 1
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        client = self.connection
        try:
            while True:
                ready, _, _ = select.select([client, up], [], [], 60)
                if not ready:
                    break
                for s in ready:
                    data = s.recv(1 << 16)
                    if not data:
                        return False
                    (up if s is client else client).sendall(data)
        finally:
            up.close()
        return False

    def forward(self, method, target, headers):
        uri = urllib.parse.urlsplit(target)
        key = (uri.hostname, uri.port or 80)
        if key not in self.upstreams:
            sock = socket.create_connection(key)
            self.upstreams[key] = (sock, sock.makefile("rwb"))
        sock, up = self.upstreams[key]
        path = (uri.path or "/") + ("?" + uri.query if uri.query else "")
        kept = [(n, v) for n, v in headers if not n.lower().startswith("proxy-")]
        write_head(up, f"{method} {path} HTTP/1.1", kept)
        copy_body(self.rfile, up, headers, False)
        up.flush()
        with LOCK:
            STATS["forwarded"] += 1
        while True:
            head = read_head(up)
            if head is None:
                raise ConnectionError("the server closed without answering")
            status_line, rheaders = head
            write_head(self.wfile, status_line, rheaders)
            status = int(status_line.split(" ")[1])
            if not 100 <= status < 200:
                break
        no_body = method == "HEAD" or status in (204, 304)
        closed = False if no_body else copy_body(up, self.wfile, rheaders, True)
        self.wfile.flush()
        if closed or (header(rheaders, "Connection") or "").lower() == "close":
            up.close()
            sock.close()
            del self.upstreams[key]
        return not closed


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    auth = None
    ntlm = False
    refuse_connect = 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--auth")
    p.add_argument("--ntlm", action="store_true")
    p.add_argument("--refuse-connect", type=int, default=0)
    p.add_argument("--timeout", type=int, default=120)
    args = p.parse_args()
    signal.alarm(args.timeout)
    server = Server(("127.0.0.1", 0), Handler)
    if args.auth:
        server.auth = "Basic " + base64.b64encode(args.auth.encode()).decode()
    server.refuse_connect = args.refuse_connect
    server.ntlm = args.ntlm
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
