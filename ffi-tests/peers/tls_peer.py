#!/usr/bin/env python3
"""TLS peer for the C harness, on Python's ssl module.

  tls_peer.py server --cert C --key K [--ca CA --require-cert] [--tls 1.2|1.3] [--alpn a,b]
                     [--recv N] [--send N] [--mode normal|close-in-handshake] [--accept N]
  tls_peer.py client --port P --ca CA [--host NAME] [--cert C --key K] [--tls ...] [--alpn a,b]
                     [--send N] [--recv N]

A server prints "PORT <port>" first. After the handshake both print
"HS <version> <tls-unique hex or -> <alpn or -> <peer cert sha256 hex or -> <resumed 0|1>". Then the data
phases run in order: the server receives N bytes then sends N random bytes, the client sends then
receives; each phase prints "RECV <count> <sha256>" / "SENT <count> <sha256>" (RECV stops early at
end of stream). A failed handshake prints "FAIL <reason>". A server with --accept N serves N
connections in turn with one SSLContext (so its session cache and ticket keys), each as above.
Exits by itself after --timeout seconds (default 120).
"""
import argparse
import hashlib
import os
import signal
import socket
import ssl
import sys


def out(*parts):
    print(*parts, flush=True)


def context(args, server):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    if args.tls == "1.2":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif args.tls == "1.3":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    if args.ca:
        ctx.load_verify_locations(args.ca)
    if server:
        ctx.verify_mode = ssl.CERT_REQUIRED if args.require_cert else ssl.CERT_NONE
    if args.alpn:
        ctx.set_alpn_protocols(args.alpn.split(","))
    return ctx


def report(conn):
    cb = conn.get_channel_binding("tls-unique")
    peer = conn.getpeercert(binary_form=True)
    out("HS", conn.version(), cb.hex() if cb else "-", conn.selected_alpn_protocol() or "-",
        hashlib.sha256(peer).hexdigest() if peer else "-", int(conn.session_reused))


def recv_phase(conn, n):
    h = hashlib.sha256()
    got = 0
    while got < n:
        try:
            chunk = conn.recv(min(1 << 20, n - got))
        except (ssl.SSLError, OSError) as e:
            out("ERR", type(e).__name__, str(e).replace("\n", " "))
            break
        if not chunk:
            break
        h.update(chunk)
        got += len(chunk)
    out("RECV", got, h.hexdigest())


def send_phase(conn, n):
    h = hashlib.sha256()
    sent = 0
    while sent < n:
        chunk = os.urandom(min(1 << 20, n - sent))
        conn.sendall(chunk)
        h.update(chunk)
        sent += len(chunk)
    out("SENT", sent, h.hexdigest())


def serve(args, ctx, raw):
    """One server connection."""
    if args.mode == "close-in-handshake":
        # Read the whole ClientHello record (so that closing sends FIN, not RST), hang up.
        header = b""
        while len(header) < 5:
            header += raw.recv(5 - len(header))
        left = int.from_bytes(header[3:5], "big")
        while left > 0:
            left -= len(raw.recv(left))
        raw.close()
        out("CLOSED")
        return
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError) as e:
        out("FAIL", str(e).replace("\n", " "))
        return
    with conn:
        report(conn)
        if args.recv:
            recv_phase(conn, args.recv)
        if args.send:
            send_phase(conn, args.send)
        if args.mode == "wait-eof":
            recv_phase(conn, 1 << 40)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="localhost")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--require-cert", action="store_true")
    p.add_argument("--tls", default="")
    p.add_argument("--alpn", default="")
    p.add_argument("--send", type=int, default=0)
    p.add_argument("--recv", type=int, default=0)
    p.add_argument("--mode", default="normal")
    p.add_argument("--accept", type=int, default=1)
    p.add_argument("--timeout", type=int, default=120)
    args = p.parse_args()
    signal.alarm(args.timeout)

    if args.role == "server":
        ctx = context(args, True)
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            out("PORT", listener.getsockname()[1])
            for _ in range(args.accept):
                raw, _ = listener.accept()
                serve(args, ctx, raw)
        return 0

    raw = socket.create_connection(("127.0.0.1", args.port))
    try:
        conn = context(args, False).wrap_socket(raw, server_hostname=args.host)
    except (ssl.SSLError, OSError) as e:
        out("FAIL", str(e).replace("\n", " "))
        return 0
    with conn:
        report(conn)
        if args.send:
            send_phase(conn, args.send)
        if args.recv:
            recv_phase(conn, args.recv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
