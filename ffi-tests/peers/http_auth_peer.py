#!/usr/bin/env python3
"""An HTTP(S) server whose authentication acceptor is pyspnego, for HttpWebRequest's NTLM and
Negotiate tests (ffi-tests/http_auth.c).

  http_auth_peer.py [--cert C --key K] [--protocol ntlm|negotiate] [--expect-cbt own|none|HEX]
                    [--persist] [--timeout S]

Prints "PORT <port>" (or "SKIP <why>" when pyspnego is missing), then serves until killed.
NTLM users come from NTLM_USER_FILE (DOMAIN:USER:PASSWORD, pyspnego reads it); Kerberos takes its
key for HTTP/localhost from KRB5_KTNAME.

The channel binding the acceptor demands (--expect-cbt): "own" (the default) is the
tls-server-end-point of this server's certificate over TLS (RFC 5929: the SHA-256 of the DER
certificate, whose signature is sha256WithRSAEncryption), none over plain http; "none" demands
nothing; HEX demands the binding of a certificate with that hash (what a client that bound to
another TLS channel sends, or, over plain http, what a TLS-terminating front end would demand).
A demanded binding is required as Windows' Extended Protection "Require" does: an NTLM client that
sends none (no MsvAvChannelBindings, or the all-zero one of a client without a channel, which
pyspnego itself lets through) is refused too.

Paths:
  /auth     challenges with 401 until the handshake completes on this connection, then 200:
            "user=U protocol=P legs=L conn=C method=M len=N sha=HEX" (the client's name, the
            protocol pyspnego settled on, tokens received for it, the connection's number,
            and the request's body as received on the last leg). A refused token: 401 with the
            bare scheme, body "refused: <reason>". Each request authenticates anew unless
            --persist (then an authenticated connection stays so, as IIS keeps NTLM).
            The 401s offer "Basic realm=..., NTLM" in one header (ntlm), or Basic, NTLM and
            Negotiate in three headers (negotiate).
  /loop     401 for ever, each with a fresh NTLM challenge.
  /digest   401 offering only Digest.
  /count    "connections=N requests=R loops=L" (connections accepted, requests, /loop hits).
"""
import argparse
import base64
import hashlib
import http.server
import signal
import socketserver
import ssl
import sys
import threading

from http_peer import read_body

try:
    import spnego
    from spnego.channel_bindings import GssChannelBindings
except ImportError:
    print("SKIP pyspnego is not installed (pip install pyspnego)", flush=True)
    sys.exit(0)

STATS = {"connections": 0, "requests": 0, "loops": 0}
LOCK = threading.Lock()


def end_point_hash(cert_file):
    with open(cert_file) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).digest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with LOCK:
            STATS["connections"] += 1
            self.conn_id = STATS["connections"]
        self.ctx = None
        self.legs = 0
        self.authenticated = None

    def log_message(self, *args):
        pass

    def send(self, code, body, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def offers(self):
        if self.server.protocol == "ntlm":
            return [("WWW-Authenticate", 'Basic realm="apmnet, test", NTLM')]
        return [("WWW-Authenticate", 'Basic realm="apmnet"'), ("WWW-Authenticate", "NTLM"),
                ("WWW-Authenticate", "Negotiate")]

    def new_context(self):
        cb = None
        if self.server.cbt is not None:
            cb = GssChannelBindings(application_data=b"tls-server-end-point:" + self.server.cbt)
        return spnego.server(hostname="localhost", service="HTTP", channel_bindings=cb,
                             protocol=self.server.protocol)

    def refuse(self, scheme, reason):
        self.ctx, self.legs = None, 0
        self.send(401, ("refused: %s" % reason).encode(), [("WWW-Authenticate", scheme)])

    def handle_any(self):
        body = read_body(self.headers, self.rfile)
        if body is None:
            self.close_connection = True
            return
        n, sha = body
        with LOCK:
            STATS["requests"] += 1
        path = self.path.partition("?")[0]
        if path == "/count":
            with LOCK:
                text = "connections=%(connections)d requests=%(requests)d loops=%(loops)d" % STATS
            return self.send(200, text.encode())
        if path == "/digest":
            return self.send(401, b"digest only", [("WWW-Authenticate", 'Digest realm="apmnet", nonce="abc"')])
        if path == "/loop":
            with LOCK:
                STATS["loops"] += 1
            challenge = b""
            auth = self.headers.get("Authorization", "")
            if auth.startswith("NTLM "):
                # A fresh acceptor each time: a valid challenge to whatever token came.
                ctx = spnego.server(protocol="ntlm")
                try:
                    challenge = ctx.step(base64.b64decode(auth[5:])) or b""
                except Exception:
                    challenge = b""
            value = "NTLM " + base64.b64encode(challenge).decode() if challenge else "NTLM"
            return self.send(401, b"again", [("WWW-Authenticate", value)])
        if path != "/auth":
            return self.send(404, b"no such path")
        if self.server.persist and self.authenticated is not None:
            return self.ok(n, sha, None)
        auth = self.headers.get("Authorization", "")
        scheme, _, blob = auth.partition(" ")
        if scheme.lower() not in ("ntlm", "negotiate") or not blob:
            self.ctx, self.legs = None, 0
            return self.send(401, b"credentials, please", self.offers())
        if self.ctx is None:
            self.ctx = self.new_context()
        self.legs += 1
        token = base64.b64decode(blob)
        unbound = self.unbound_ntlm(token)
        if unbound:
            return self.refuse(scheme, unbound)
        try:
            out = self.ctx.step(token)
        except Exception as e:
            return self.refuse(scheme, "%s: %s" % (type(e).__name__, e))
        if not self.ctx.complete:
            return self.send(401, b"go on", [("WWW-Authenticate", scheme + " " + base64.b64encode(out or b"").decode())])
        final = [("WWW-Authenticate", scheme + " " + base64.b64encode(out).decode())] if out else []
        self.authenticated = (str(self.ctx.client_principal), self.ctx.negotiated_protocol, self.legs)
        self.ok(n, sha, final)
        if not self.server.persist:
            self.authenticated = None
        self.ctx, self.legs = None, 0

    def unbound_ntlm(self, token):
        """Why an NTLM AUTHENTICATE message carries no channel binding where one is demanded."""
        if self.server.cbt is None or not token.startswith(b"NTLMSSP\0\x03"):
            return None
        from spnego._ntlm_raw.messages import Authenticate, AvId, NTClientChallengeV2
        nt = Authenticate.unpack(token).nt_challenge_response or b""
        if len(nt) <= 24:
            return "an NTLMv1 response carries no channel binding"
        cb = NTClientChallengeV2.unpack(nt[16:]).av_pairs.get(AvId.channel_bindings)
        if not cb or cb == b"\0" * 16:
            return "the client sent no channel binding (MsvAvChannelBindings)"
        return None

    def ok(self, n, sha, headers):
        user, protocol, legs = self.authenticated
        text = "user=%s protocol=%s legs=%d conn=%d method=%s len=%d sha=%s" % (
            user, protocol, legs, self.conn_id, self.command, n, sha)
        self.send(200, text.encode(), headers or [])

    do_GET = do_POST = do_PUT = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--protocol", default="ntlm", choices=["ntlm", "negotiate"])
    p.add_argument("--expect-cbt", default="own")
    p.add_argument("--persist", action="store_true")
    p.add_argument("--timeout", type=int, default=120)
    args = p.parse_args()
    signal.alarm(args.timeout)
    server = Server(("127.0.0.1", 0), Handler)
    server.protocol = args.protocol
    server.persist = args.persist
    if args.expect_cbt == "own":
        server.cbt = end_point_hash(args.cert) if args.cert else None
    elif args.expect_cbt == "none":
        server.cbt = None
    else:
        server.cbt = bytes.fromhex(args.expect_cbt)
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("PORT", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
