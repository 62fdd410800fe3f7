#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/ (committed; run again
only to change the seeds: certificates and keys are new each time).

certificate: real certificates made here with the openssl command (PEM, DER, chains, PKCS#12
with the empty password and "apmnet"), some with what a hostile peer might send (odd names, a
date that is not a time, a key that does not match). tls_peer: real handshake transcripts, the
bytes one side of a TLS 1.2 or 1.3 handshake sent (Python's ssl module on memory buffers, with
the certificate made here), and input that is not TLS. custom_stream: small programs in the
target's encoding (see fuzz/targets/custom_stream.rs). alpn and tls_framer: lists and records.
"""
import os
import shutil
import ssl
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def certificates(tmp):
    def selfsigned(name, keyargs, subj, digest="-sha256", extra=()):
        openssl("req", "-x509", "-newkey", *keyargs, "-nodes", "-keyout", name + ".key", "-out", name + ".pem",
                "-days", "3650", "-subj", subj, *([digest] if digest else []), *extra, cwd=tmp)

    selfsigned("rsa", ["rsa:2048"], "/CN=rsa.example/O=apmnet/C=US")
    selfsigned("p256", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "/CN=localhost/O=apmnet",
               extra=["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
    selfsigned("p384", ["ec", "-pkeyopt", "ec_paramgen_curve:P-384"], "/CN=p384.example", digest="-sha384")
    selfsigned("ed25519", ["ed25519"], "/CN=ed25519.example", digest=None)
    selfsigned("sha1", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "/CN=sha1.example", digest="-sha1")
    selfsigned("names", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
               '/CN=a, "quoted" name+OU=multi/O=x=y;z/emailAddress=a@b.example/1.2.3.4.5=oid value'
               '/L=Z\xc3\xbcrich/ST=<st>/DC=example/serialNumber=42', extra=["-utf8"])
    # A CA and a leaf it signs.
    selfsigned("ca", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "/CN=apmnet test CA",
               extra=["-addext", "basicConstraints=critical,CA:TRUE"])
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key",
            "-out", "leaf.csr", "-subj", "/CN=leaf.example", cwd=tmp)
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "365",
            "-out", "leaf.pem", cwd=tmp)
    for name in ("rsa", "p384", "ed25519", "sha1", "names"):
        openssl("x509", "-in", name + ".pem", "-outform", "DER", "-out", name + ".der", cwd=tmp)
    for pw, out in (("", "leaf-chain-nopass.p12"), ("apmnet", "leaf-chain-apmnet.p12")):
        openssl("pkcs12", "-export", "-in", "leaf.pem", "-inkey", "leaf.key", "-certfile", "ca.pem",
                "-passout", "pass:" + pw, "-iter", "1", "-out", out, cwd=tmp)
    f = lambda n: read(os.path.join(tmp, n))

    write("certificate", "rsa-2048.pem", f("rsa.pem"))
    write("certificate", "ec-p256-cert-and-key.pem", f("p256.pem") + f("p256.key"))
    write("certificate", "leaf-and-ca-chain.pem", f("leaf.pem") + f("ca.pem") + f("leaf.key"))
    write("certificate", "key-does-not-match.pem", f("leaf.pem") + f("ca.key"))
    write("certificate", "rsa-2048.der", f("rsa.der"))
    write("certificate", "ec-p384-sha384.der", f("p384.der"))
    write("certificate", "ed25519-no-single-hash.der", f("ed25519.der"))
    write("certificate", "ec-sha1.der", f("sha1.der"))
    write("certificate", "odd-names.der", f("names.der"))
    write("certificate", "leaf-chain-nopass.p12", f("leaf-chain-nopass.p12"))
    write("certificate", "leaf-chain-apmnet.p12", f("leaf-chain-apmnet.p12"))
    # The notAfter UTCTime of the P-384 certificate with month 13: it loads, its date is no time.
    der = bytearray(f("p384.der"))
    at = der.find(b"\x17\x0d", der.find(b"\x17\x0d") + 2)
    der[at + 4:at + 6] = b"13"
    write("certificate", "not-after-is-no-time.der", bytes(der))
    return tmp


def transcript(tmp, version):
    """What the client and the server sent in one handshake (and a little data)."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(os.path.join(tmp, "p256.pem"), os.path.join(tmp, "p256.key"))
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    for ctx in (server, client):
        ctx.minimum_version = ctx.maximum_version = version
    bios = [ssl.MemoryBIO() for _ in range(4)]
    c = client.wrap_bio(bios[0], bios[1], server_side=False, server_hostname="localhost")
    s = server.wrap_bio(bios[2], bios[3], server_side=True)
    sent = {"client": b"", "server": b""}
    done = set()
    for _ in range(20):
        for name, obj, outgoing, incoming in (("client", c, bios[1], bios[2]), ("server", s, bios[3], bios[0])):
            if name not in done:
                try:
                    obj.do_handshake()
                    done.add(name)
                    obj.write(b"hello from the " + name.encode())
                except ssl.SSLWantReadError:
                    pass
            data = outgoing.read()
            sent[name] += data
            incoming.write(data)
        if len(done) == 2:
            break
    return sent["client"], sent["server"]


def tls_peer(tmp):
    # The first byte: bit 0 server, bits 1-2 protocols (default, 1.2, 1.3, both), bits 3-4 the end
    # (EOF, IO failure, socket failure, begin_read refuses), bits 5-7 the largest piece per read.
    c13, s13 = transcript(tmp, ssl.TLSVersion.TLSv1_3)
    c12, s12 = transcript(tmp, ssl.TLSVersion.TLSv1_2)
    write("tls_peer", "client-reads-tls13-server-flight", bytes([0b000]) + s13)
    write("tls_peer", "client-reads-tls12-server-flight", bytes([0b010]) + s12)
    write("tls_peer", "client-reads-tls12-flight-in-pieces", bytes([0b011_00_01_0]) + s12)
    write("tls_peer", "server-reads-tls13-client-flight", bytes([0b001]) + c13)
    write("tls_peer", "server-reads-tls12-client-flight", bytes([0b011]) + c12)
    write("tls_peer", "server-reads-client-hello-then-io-failure", bytes([0b01_00_1]) + c13[:5 + int.from_bytes(c13[3:5], "big")])
    write("tls_peer", "client-reads-http-response", b"\x00HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    write("tls_peer", "server-reads-http-request", b"\x01GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    write("tls_peer", "server-reads-ssh-banner-then-refuse", b"\x19SSH-2.0-OpenSSH_9.2\r\n")
    write("tls_peer", "client-reads-fatal-alert", b"\x00\x15\x03\x03\x00\x02\x02\x28")
    write("tls_peer", "client-reads-truncated-record", b"\x08\x16\x03\x03\x00\x40" + bytes(10))
    write("tls_peer", "client-reads-nothing", b"\x10")
    return c12, s12


def tls_framer(c12, s12):
    # The first byte: 0 = fed at once, else pieces of 1..=byte bytes.
    write("tls_framer", "tls12-server-flight-at-once", b"\x00" + s12)
    write("tls_framer", "tls12-client-flight-in-3-byte-pieces", b"\x03" + c12)
    write("tls_framer", "record-cut-in-its-header", b"\x01\x17\x03\x03\x00\x05hello\x17\x03")
    write("tls_framer", "record-cut-in-its-body", b"\x02\x17\x03\x03\x01\x00" + bytes(100))
    write("tls_framer", "empty-records", b"\x07" + b"\x17\x03\x03\x00\x00" * 4)
    write("tls_framer", "1024-byte-record-then-alert", b"\xff\x17\x03\x03\x04\x00" + bytes(1024) + b"\x15\x03\x03\x00\x02\x01\x00")
    write("tls_framer", "not-tls", b"\x05GET / HTTP/1.1\r\n\r\n")


def alpn():
    # The first byte splits the rest into two wire-format lists; the rest split at NUL is a list of
    # C strings for apm_ssl_stream_set_application_protocols (a NULL among them when byte % 5 == 4).
    write("alpn", "wire-h2-against-http11-h2", b"\x03\x02h2\x08http/1.1\x02h2")
    write("alpn", "wire-no-common-protocol", b"\x09\x08http/1.1\x02h2\x03h2c")
    write("alpn", "wire-overlong-entry", b"\x02\x05ab\x02h2")
    write("alpn", "names-h2-http11", b"\x01h2\x00http/1.1\x00spdy/3.1")
    write("alpn", "names-server-prefers-second", b"\x02http/1.1\x00h2\x00h2\x00http/1.1")
    write("alpn", "names-not-utf8", b"\x00\xff\xfe\x00h2")
    write("alpn", "names-empty-one", b"\x02h2\x00\x00x")
    write("alpn", "names-256-bytes", b"\x00" + b"a" * 256 + b"\x00h2")
    write("alpn", "names-255-bytes", b"\x01" + b"b" * 255 + b"\x00h2")
    write("alpn", "names-with-null-pointer", b"\x04a\x00b\x00c")


def custom_stream():
    # Opcodes (byte % 12): 0 BeginRead, 2 BeginWrite [stream, count, shape, plan..., callback],
    # 4 complete [pick, status, bytes], 6 End [how, pick], 7 close [stream], 8 queue a plan,
    # 9 query and cancel [pick], 10 blocking [write, stream, count, shape, plan..., callback],
    # 11 another stream. Plans: 0 pending, 4 refuse [status], 5 inline [status, bytes],
    # 7 inline then refuse [status, bytes, status]. Status: 0 OK, 160+k -k, 240 then 4 bytes.
    # Bytes: 0 all, 128 fewer, 160 none, 176 one more, 192 then 1 byte, 224 then 4, 240 then 8,
    # 255 SIZE_MAX. Callback: 0 none, 1 counting, 3 calls End itself.
    begin_read = lambda count, plan=(0,), cb=1, shape=0: bytes([0, 0, count, shape, *plan, cb])
    begin_write = lambda count, plan=(0,), cb=1, shape=0: bytes([2, 0, count, shape, *plan, cb])
    complete = lambda status=0, nbytes=(0,), pick=0: bytes([4, pick, status, *nbytes])
    end = lambda how=0, pick=0: bytes([6, how, pick])
    seeds = {
        "read-complete-end": begin_read(16) + complete() + end(),
        "write-in-two-parts": begin_write(32) + complete(nbytes=(128,)) + complete() + end(),
        "read-inline-5-bytes-end-in-callback": begin_read(16, plan=(5, 0, 192, 5), cb=3),
        "read-reported-one-byte-more": begin_read(16) + complete(nbytes=(176,)) + end(),
        "write-reported-size-max": begin_write(8) + complete(nbytes=(255,)) + end(),
        "write-reported-none": begin_write(8) + complete(nbytes=(160,)) + end(),
        "close-with-read-pending": begin_read(8) + bytes([7, 0]) + complete() + end() + begin_read(8),
        "begin-read-refuses": begin_read(8, plan=(4, 167)),
        "write-inline-then-refuse": begin_write(8, plan=(7, 0, 0, 168)),
        "stale-and-unknown-tokens": begin_read(8) + complete() + complete(pick=200)
        + bytes([4, 250]) + struct.pack("<Q", 0x0100000000000001) + bytes([0, 0]) + end(),
        "status-not-in-header": begin_read(8) + bytes([4, 0, 240]) + struct.pack("<i", 12345) + bytes([0]) + end(),
        "status-every-code": b"".join(begin_read(4) + complete(status=160 + k) + end() for k in range(1, 20)),
        "blocking-write-in-parts": bytes([8, 5, 0, 128, 8, 5, 0, 128, 10, 1, 0, 64, 0, 5, 0, 128, 0]),
        "blocking-read-inline": bytes([10, 0, 0, 32, 0, 5, 0, 192, 7, 0]),
        "query-and-cancel": begin_read(8) + bytes([9, 0]) + complete() + bytes([9, 0]) + end(),
        "wrong-ends-and-second-end": bytes([11]) + begin_read(8) + complete() + end(1) + end(2) + end() + end(),
        "null-and-short-buffers": begin_read(8, shape=0xC1) + begin_read(8, shape=0xC0) + begin_write(8, shape=0xF2),
        "zero-count": begin_read(0) + begin_write(0, cb=3) + end(),
        "offset-read": begin_read(8, shape=0x35) + complete() + end(),
    }
    for name, data in seeds.items():
        write("custom_stream", name, data)


def main():
    if shutil.which("openssl") is None:
        sys.exit("gen_corpus.py needs the openssl command")
    for target in ("alpn", "certificate", "custom_stream", "tls_framer", "tls_peer"):
        shutil.rmtree(os.path.join(CORPUS, target), ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        certificates(tmp)
        c12, s12 = tls_peer(tmp)
        tls_framer(c12, s12)
    alpn()
    custom_stream()
    for target in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, target))
        size = sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)
        print("%-14s %3d seeds, %6d bytes" % (target, len(files), size))


if __name__ == "__main__":
    main()
