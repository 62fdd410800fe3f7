#!/usr/bin/env python3
"""nns_pyspnego.py: an [MS-NNS] peer on pyspnego (an independent NTLM and SPNEGO implementation).

  nns_pyspnego.py server PORT LEVEL [MECH]                 NTLM users from NTLM_USER_FILE, Kerberos: KRB5_KTNAME
  nns_pyspnego.py client PORT LEVEL USER PASSWORD DOMAIN SPN [MECH]

LEVEL is None, Sign or EncryptAndSign. Without MECH the handshake follows .NET's NegotiateStream (raw NTLM
at None, Negotiate otherwise); MECH "kerberos" is raw Kerberos tokens (a client sends no SPNEGO; a server
takes none: pyspnego's Kerberos acceptor holds krb5 credentials only, so it cannot serve a NegotiateStream
client, which sends SPNEGO), "negotiate-kerberos" is pyspnego's own SPNEGO that must settle on Kerberos
(which it prefers to NTLM). Both need python-gssapi and krb5 (pip install
pyspnego[kerberos]; they build against MIT krb5) and name the client USER@DOMAIN (DOMAIN is the realm).
The data follows the .NET layout (NTLM Sign: signature then plaintext; Kerberos: RFC 4121 wrap tokens).
Prints "listening PORT" (server), "AUTH <package> <name> <encrypted> <signed> <mutual>" or
"FAIL <reason>", then runs the echo protocol of NnsPeer.cs: 8-byte little-endian lengths, the client
checks and prints "OK <size> <sha256>". Prints "SKIP <why>" and exits 0 when a peer it needs is missing.
"""
import hashlib
import os
import socket
import struct
import sys


def skip(why):
    """Says why the test cannot run; a client also connects and hangs up, so that the test's server,
    waiting in accept, gets to read this line."""
    print("SKIP %s" % why, flush=True)
    if sys.argv[1] == "client":
        socket.create_connection(("127.0.0.1", int(sys.argv[2]))).close()
    sys.exit(0)


try:
    import spnego
except ImportError:
    skip("pyspnego is not installed (pip install pyspnego)")

KERBEROS_MECHS = ("kerberos", "negotiate-kerberos")


def kerberos_missing():
    """Why pyspnego cannot do Kerberos here, or None (it needs python-gssapi and krb5 on MIT)."""
    try:
        import gssapi  # noqa: F401
        import krb5  # noqa: F401
    except ImportError as e:
        return "pyspnego has no Kerberos: %s (pip install pyspnego[kerberos], which builds against libkrb5-dev)" % e
    return None


def largest():
    """The last message's size: APMNET_NNS_LARGEST (the test harness lowers it under valgrind), or 16 MiB."""
    n = os.environ.get("APMNET_NNS_LARGEST", "")
    return int(n) if n.isdigit() and int(n) > 64513 else 16 * 1024 * 1024


SIZES = [1, 64511, 64512, 64513, largest()]
IN_PROGRESS, DONE, ERROR = 0x16, 0x14, 0x15


def recv_exact(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError("the peer closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return bytes(out)


def send_frame(sock, mid, payload):
    sock.sendall(bytes([mid, 1, 0]) + struct.pack(">H", len(payload)) + payload)


def recv_frame(sock):
    head = recv_exact(sock, 5)
    payload = recv_exact(sock, struct.unpack(">H", head[3:5])[0])
    if head[0] == ERROR:
        code = payload[:8]
        raise RuntimeError("HandshakeError %s" % code.hex())
    return head[0], payload


class Secure:
    """Data frames over an established context (nothing when neither signed nor sealed)."""

    def __init__(self, sock, ctx, level):
        self.sock, self.ctx, self.buf = sock, ctx, b""
        attr = ctx.context_attr
        self.encrypt = bool(attr & spnego.ContextReq.confidentiality) and level == "EncryptAndSign"
        self.framed = level != "None"
        self.ntlm = ctx.negotiated_protocol == "ntlm"

    def write(self, data):
        if not self.framed:
            self.sock.sendall(data)
            return
        for i in range(0, len(data), 64512):
            chunk = data[i:i + 64512]
            if self.encrypt or not self.ntlm:
                payload = self.ctx.wrap(chunk, encrypt=self.encrypt).data
            else:
                payload = self.ctx.sign(chunk) + chunk
            self.sock.sendall(struct.pack("<I", len(payload)) + payload)

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self.framed:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise EOFError("the peer closed")
                self.buf += chunk
                continue
            size = struct.unpack("<I", recv_exact(self.sock, 4))[0]
            if size <= 4 or size > 65536:
                raise ValueError("bad frame size %d" % size)
            payload = recv_exact(self.sock, size)
            if self.encrypt or not self.ntlm:
                self.buf += self.ctx.unwrap(payload).data
            else:
                self.ctx.verify(payload[16:], payload[:16])
                self.buf += payload[16:]
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def context_req(level):
    req = spnego.ContextReq.none if level == "None" else spnego.ContextReq.mutual_auth
    if level != "None":
        req |= spnego.ContextReq.integrity | spnego.ContextReq.sequence_detect | spnego.ContextReq.replay_detect
    if level == "EncryptAndSign":
        req |= spnego.ContextReq.confidentiality
    return req


def client_handshake(sock, args, level, mech):
    user, password, domain, spn = args
    service, _, host = spn.partition("/")
    if mech in KERBEROS_MECHS:
        username, protocol = "%s@%s" % (user, domain) if domain else user, mech.split("-")[0]
    else:
        username = "%s\\%s" % (domain, user) if domain else user
        protocol = mech or ("ntlm" if level == "None" else "negotiate")
    ctx = spnego.client(username, password, hostname=host or None, service=service or None,
                        protocol=protocol, context_req=context_req(level))
    out = ctx.step()
    remote_ok = False
    while True:
        if ctx.complete:
            if out:
                send_frame(sock, DONE, out)
            if not remote_ok:
                mid, _ = recv_frame(sock)
                if mid != DONE:
                    raise RuntimeError("expected HandshakeDone, got %d" % mid)
            return ctx
        send_frame(sock, IN_PROGRESS, out)
        mid, payload = recv_frame(sock)
        remote_ok = mid == DONE
        out = ctx.step(payload)


def server_handshake(sock, level, mech):
    ctx = spnego.server(protocol="kerberos" if mech == "kerberos" else "negotiate")
    while True:
        _, payload = recv_frame(sock)
        out = ctx.step(payload)
        if ctx.complete:
            send_frame(sock, DONE, out or b"")
            return ctx
        send_frame(sock, IN_PROGRESS, out)


def pattern(n):
    return bytes((i * 31 + 7) & 0xFF for i in range(256)) * (n // 256 + 1)


def main():
    role, port, level = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rest = sys.argv[4:] if role == "server" else sys.argv[8:]
    mech = rest[0] if rest else ""
    if mech in KERBEROS_MECHS and kerberos_missing():
        skip(kerberos_missing())
    if role == "server":
        lst = socket.socket()
        lst.bind(("127.0.0.1", port))
        lst.listen(1)
        print("listening %d" % lst.getsockname()[1], flush=True)
        sock, _ = lst.accept()
    else:
        sock = socket.create_connection(("127.0.0.1", port))
    try:
        if role == "server":
            ctx = server_handshake(sock, level, mech)
        else:
            ctx = client_handshake(sock, sys.argv[4:8], level, mech)
        if mech in KERBEROS_MECHS and ctx.negotiated_protocol != "kerberos":
            raise RuntimeError("%s negotiated %s, not Kerberos" % (mech, ctx.negotiated_protocol))
    except Exception as e:  # what failed is the test's output
        print("FAIL %s: %s" % (type(e).__name__, e), flush=True)
        return 2
    attr = ctx.context_attr
    name = getattr(ctx, "client_principal", None) or "-"
    print("AUTH %s %s %s %s %s" % (ctx.negotiated_protocol, name, bool(attr & spnego.ContextReq.confidentiality),
                                  bool(attr & spnego.ContextReq.integrity), bool(attr & spnego.ContextReq.mutual_auth)),
          flush=True)
    s = Secure(sock, ctx, level)
    try:
        if role == "server":
            while True:
                n = struct.unpack("<q", s.read_exact(8))[0]
                if n == 0:
                    return 0
                s.write(s.read_exact(n))
        base = pattern(max(SIZES))
        for n in SIZES:
            data = base[:n]
            s.write(struct.pack("<q", n) + data)
            back = s.read_exact(n)
            if back != data:
                print("MISMATCH %d" % n, flush=True)
                return 1
            print("OK %d %s" % (n, hashlib.sha256(back).hexdigest()), flush=True)
        s.write(struct.pack("<q", 0))
        return 0
    except Exception as e:
        print("FAIL %s: %s" % (type(e).__name__, e), flush=True)
        return 3


if __name__ == "__main__":
    sys.exit(main())
