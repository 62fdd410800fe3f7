#!/usr/bin/env python3
"""HTTP/1.1 server for the C harness's HttpWebRequest tests, on Python's http.server.

  http_peer.py [--cert C --key K [--tls 1.2|1.3]] [--timeout S]

Prints "PORT <port>", then serves until killed (or --timeout seconds). Every request's body is
read (Content-Length or chunked) and hashed. Paths:

  /echo            200: "method=M len=N sha=HEX conn=C te=T cl=L path=P auth=A"
  /raw             200: the request line and headers as received
  /count           200: "connections=N complete=M" (connections accepted, requests whose
                   body arrived whole)
  /status/CODE     CODE with the body "status CODE body"
  /redirect/CODE?to=PATH   CODE with Location: PATH
  /loop            302 to /loop, for ever
  /gzip, /deflate, /deflate-raw   a compressed body of "hello gzip " * 1000
  /chunked?n=N     N pattern bytes, chunked, in chunks of 1000
  /close?n=N       N pattern bytes, no length, then close
  /slow?ms=T       waits T ms, then as /echo
  /cb              (TLS) "unique=HEX endpoint=HEX": the connection's tls-unique and the SHA-256
                   of the server certificate (tls-server-end-point)
  /basic           401 with WWW-Authenticate: Basic unless Authorization is user:pass
  /hostile/truncated-status, /hostile/huge-headers, /hostile/bad-chunk, /hostile/short,
  /hostile/reset, /hostile/silent, /hostile/trickle   misbehaving answers
"""
import argparse
import base64
import gzip
import hashlib
import os
import http.server
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import zlib

STATS = {"connections": 0, "complete": 0}
LOCK = threading.Lock()
COMPRESSIBLE = b"hello gzip " * 1000


def pattern(n):
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def read_body(headers, rfile):
    """A request's body (Content-Length or chunked), read and hashed: (length, SHA-256 hex), or
    None when the client stopped before its end. http_auth_peer.py reads its bodies with it too."""
    h = hashlib.sha256()
    n = 0
    te = headers.get("Transfer-Encoding", "")
    if "chunked" in te.lower():
        while True:
            line = rfile.readline()
            if not line:
                return None
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            data = rfile.read(size)
            if len(data) < size:
                return None
            h.update(data)
            n += size
            rfile.readline()
    else:
        left = int(headers.get("Content-Length", "0") or 0)
        while left > 0:
            data = rfile.read(min(left, 1 << 20))
            if not data:
                return None
            h.update(data)
            n += len(data)
            left -= len(data)
    return n, h.hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with LOCK:
            STATS["connections"] += 1
            self.conn_id = STATS["connections"]

    def log_message(self, *args):
        pass

    def read_body(self):
        body = read_body(self.headers, self.rfile)
        if body is not None:
            with LOCK:
                STATS["complete"] += 1
        return body

    def send(self, code, body=b"", headers=(), length=True):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def raw(self, data):
        self.wfile.write(data)
        self.wfile.flush()

    def handle_any(self):
        body = self.read_body()
        if body is None:
            self.close_connection = True
            return
        n, sha = body
        path, _, query = self.path.partition("?")
        args = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        if path == "/echo" or path == "/slow":
            if path == "/slow":
                time.sleep(int(args.get("ms", "100")) / 1000)
            text = (f"method={self.command} len={n} sha={sha} conn={self.conn_id} "
                    f"te={self.headers.get('Transfer-Encoding', '-')} cl={self.headers.get('Content-Length', '-')} "
                    f"path={self.path} auth={self.headers.get('Authorization', '-')}")
            self.send(200, text.encode(), [("Content-Type", "text/plain; charset=utf-8")])
        elif path == "/raw":
            head = self.raw_requestline + b"".join(f"{k}: {v}\r\n".encode() for k, v in self.headers.items()) + b"\r\n"
            self.send(200, head, [("Content-Type", "application/octet-stream")])
        elif path == "/count":
            with LOCK:
                text = f"connections={STATS['connections']} complete={STATS['complete']}"
            self.send(200, text.encode())
        elif path.startswith("/status/"):
            code = int(path.split("/")[2])
            self.send(code, f"status {code} body".encode(), [("Content-Type", "text/plain")])
        elif path.startswith("/redirect/"):
            code = int(path.split("/")[2])
            self.send(code, b"moved", [("Location", args.get("to", "/echo").replace("%3F", "?").replace("%3D", "="))])
        elif path == "/loop":
            self.send(302, b"", [("Location", "/loop")])
        elif path in ("/gzip", "/deflate", "/deflate-raw"):
            if path == "/gzip":
                data, enc = gzip.compress(COMPRESSIBLE), "gzip"
            elif path == "/deflate":
                data, enc = zlib.compress(COMPRESSIBLE), "deflate"
            else:
                c = zlib.compressobj(wbits=-15)
                data, enc = c.compress(COMPRESSIBLE) + c.flush(), "deflate"
            self.send(200, data, [("Content-Encoding", enc), ("X-Accept-Encoding", self.headers.get("Accept-Encoding", "-"))])
        elif path == "/chunked":
            total = int(args.get("n", "0"))
            data = pattern(total)
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, total, 1000):
                part = data[i:i + 1000]
                self.raw(b"%x\r\n" % len(part) + part + b"\r\n")
            self.raw(b"0\r\n\r\n")
        elif path == "/close":
            data = pattern(int(args.get("n", "0")))
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.raw(data)
            self.close_connection = True
        elif path == "/cb":
            unique = self.connection.get_channel_binding("tls-unique")
            cert = self.connection.getpeercert(binary_form=True)  # the client's: none
            own = ssl.PEM_cert_to_DER_cert(open(self.server.cert_file).read())
            text = f"unique={unique.hex() if unique else '-'} endpoint={hashlib.sha256(own).hexdigest()} peer={'yes' if cert else 'no'}"
            self.send(200, text.encode())
        elif path == "/basic":
            want = "Basic " + base64.b64encode(b"user:pass").decode()
            if self.headers.get("Authorization") == want:
                self.send(200, b"welcome")
            else:
                self.send(401, b"who?", [("WWW-Authenticate", 'Basic realm="apmnet"')])
        elif path == "/hostile/truncated-status":
            self.raw(b"HTTP/1.1 20")
            self.close_connection = True
        elif path == "/hostile/huge-headers":
            self.raw(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Filler-%d: %s\r\n" % (i, b"x" * 100) for i in range(1000)) + b"Content-Length: 0\r\n\r\n")
        elif path == "/hostile/bad-chunk":
            self.raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
            self.close_connection = True
        elif path == "/hostile/short":
            self.raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            self.close_connection = True
        elif path == "/hostile/reset":
            self.raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
            time.sleep(0.05)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(self.connection.detach())  # a reset, not the FIN socketserver's shutdown sends
            self.close_connection = True
        elif path == "/hostile/silent":
            time.sleep(30)
            self.close_connection = True
        elif path == "/hostile/trickle":
            self.raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            for _ in range(100):
                time.sleep(1)
                try:
                    self.raw(b"t")
                except OSError:
                    break
            self.close_connection = True
        else:
            self.send(404, b"no such path")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD_ = handle_any

    def do_HEAD(self):
        self.read_body()
        self.send_response(200)
        self.send_header("Content-Length", "1234")
        self.end_headers()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    ssl_context = None
    cert_file = None

    def get_request(self):
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True)
        return sock, addr

    def handle_error(self, request, client_address):
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--tls", default="")
    p.add_argument("--timeout", type=int, default=120)
    args = p.parse_args()
    signal.alarm(args.timeout)
    server = Server(("127.0.0.1", 0), Handler)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if args.tls == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        elif args.tls == "1.3":
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(args.cert, args.key)
        server.ssl_context = ctx
        server.cert_file = args.cert
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
