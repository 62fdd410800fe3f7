#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/ (committed; run again
only to change the seeds: certificates and keys are new each time).

certificate: real certificates made here with the openssl command (PEM, DER, chains, PKCS#12
with the empty password and "apmnet"), some with what a hostile peer might send (odd names, a
date that is not a time, a key that does not match). tls_peer: real handshake transcripts, the
bytes one side of a TLS 1.2 or 1.3 handshake sent (Python's ssl module on memory buffers, with
the certificate made here), and input that is not TLS. custom_stream: small programs in the
target's encoding (see fuzz/targets/custom_stream.rs). alpn and tls_framer: lists and records.

nns: the [MS-NNS] frames captured between real .NET 8 peers (fuzz/corpus/nns/dotnet-*, committed
as captured and never rewritten here) and frames at the edges (lengths 4, 5, 65536, 65537,
truncations, HandshakeError in both byte orders). ntlm and spnego: the tokens inside those
captures, the [MS-NLMP] 4.2.4 messages and hostile variants. http_response and http_chunked:
response heads and chunked bodies, good and bad. The targets' first byte is a setting (see each
fuzz/targets/<target>.rs).
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


def nns():
    # The captures stay; what is made here is named edge-*.
    hs = lambda id, payload, version=b"\x01\x00": bytes([id]) + version + struct.pack(">H", len(payload)) + payload
    data = lambda payload, length=None: struct.pack("<I", len(payload) if length is None else length) + payload
    write("nns", "edge-data-length-4", data(b"abcd"))
    write("nns", "edge-data-length-5", data(b"abcde"))
    write("nns", "edge-data-length-65536", data(bytes(range(256)) * 256))
    write("nns", "edge-data-length-65537", data(b"x" * 64, length=65537))
    write("nns", "edge-data-length-0", data(b""))
    write("nns", "edge-data-truncated-header", b"\x10\x00\x00")
    write("nns", "edge-data-truncated-payload", data(b"y" * 50, length=100))
    write("nns", "edge-data-two-frames", data(b"first") + data(b"second!") + b"\x05\x00")
    write("nns", "edge-handshake-truncated-header", b"\x16\x01\x00\x00")
    write("nns", "edge-handshake-truncated-payload", hs(0x16, b"z" * 10)[:12])
    write("nns", "edge-handshake-length-65535", hs(0x16, b"\x00" * 65535))
    write("nns", "edge-handshake-done-empty", hs(0x14, b""))
    write("nns", "edge-handshake-error-dotnet8", hs(0x15, struct.pack("<q", -0x7FF6FCFC)))
    write("nns", "edge-handshake-error-big-endian", hs(0x15, struct.pack(">q", 0x8009030C)))
    write("nns", "edge-handshake-error-trust-failure", hs(0x15, struct.pack(">q", 1790)))
    write("nns", "edge-handshake-error-short", hs(0x15, b"\x04\x03\x09"))
    write("nns", "edge-handshake-other-version-and-id", hs(0x17, b"\xab\xcd", version=b"\x02\x07"))
    write("nns", "edge-handshake-frames-back-to-back", hs(0x16, b"one") + hs(0x14, b"") + hs(0x16, b"par"))


def captures():
    """The handshake payloads of the captured frames, by file name."""
    d = os.path.join(CORPUS, "nns")
    out = {}
    for name in sorted(os.listdir(d)):
        if name.startswith("dotnet-") and "-hs" in name:
            frame = read(os.path.join(d, name))
            out[name[len("dotnet-"):-len(".bin")]] = frame[5:5 + struct.unpack(">H", frame[3:5])[0]]
    return out


def der_tlvs(b):
    """The (tag, value) pairs of a DER run."""
    at = 0
    while at < len(b):
        tag, n = b[at], b[at + 1]
        at += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(b[at:at + k], "big")
            at += k
        yield tag, b[at:at + n]
        at += n


def ntlm_in(token):
    """The NTLM message in a token: raw, or an OCTET STRING somewhere inside SPNEGO's DER."""
    if token.startswith(b"NTLMSSP\0"):
        return token
    for tag, value in der_tlvs(token):
        if tag == 0x04 and value.startswith(b"NTLMSSP\0"):
            return value
        if tag & 0x20:
            found = ntlm_in(value)
            if found:
                return found
    return None


def utf16(s):
    return s.encode("utf-16-le")


def av_pairs(*pairs):
    return b"".join(struct.pack("<HH", i, len(v)) + v for i, v in pairs) + b"\0\0\0\0"


def ntlm_message(kind, head_len, fixed, fields):
    """An NTLM message: the fixed part (`fixed` at offset 12 on), then each (offset, bytes) field's
    payload in turn, its (len, maxlen, offset) written at that offset."""
    head = bytearray(b"NTLMSSP\0" + struct.pack("<I", kind) + bytes(head_len - 12))
    for at, b in fixed:
        head[at:at + len(b)] = b
    payload = b""
    for at, b in fields:
        head[at:at + 8] = struct.pack("<HHI", len(b), len(b), head_len + len(payload))
        payload += b
    return bytes(head) + payload


def ntlm():
    # The first byte: the server's policy and the client's level (see fuzz/targets/ntlm.rs).
    spec_pairs = av_pairs((2, utf16("Domain")), (1, utf16("Server")))
    version = bytes.fromhex("060070170000000f")
    flags = struct.pack("<I", 0xE28A8233)
    # [MS-NLMP] 4.2.4.3: the CHALLENGE_MESSAGE, and an AUTHENTICATE_MESSAGE assembled from the
    # section's values (LMv2, NTProofStr, the temp of time 0, the encrypted session key).
    challenge = ntlm_message(2, 56, [(20, flags), (24, bytes.fromhex("0123456789abcdef")), (48, version)],
                             [(12, utf16("Server")), (40, spec_pairs)])
    temp = bytes([1, 1, 0, 0, 0, 0, 0, 0]) + bytes(8) + b"\xaa" * 8 + bytes(4) + spec_pairs + bytes(4)
    nt = bytes.fromhex("68cd0ab851e51c96aabc927bebef6a1c") + temp
    lm = bytes.fromhex("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
    key = bytes.fromhex("c5dad2544fc9799094ce1ce90bc9d03e")
    authenticate = ntlm_message(3, 72, [(60, flags), (64, version)],
                                [(12, lm), (20, nt), (28, utf16("Domain")), (36, utf16("User")),
                                 (44, utf16("COMPUTER")), (52, key)])
    write("ntlm", "ms-nlmp-4.2.4-challenge", b"\x30" + challenge)
    write("ntlm", "ms-nlmp-4.2.4-values-authenticate", b"\x00" + authenticate)
    write("ntlm", "ms-nlmp-4.2.4-values-authenticate-policy", b"\x0f" + authenticate)
    for name, token in captures().items():
        if name.startswith("ntlm-"):
            msg = ntlm_in(token)
            if msg:
                level = 0x30 if "EncryptAndSign" in name else 0x10 if "Sign" in name else 0
                write("ntlm", "dotnet-" + name, bytes([level]) + msg)
                write("ntlm", "dotnet-" + name + "-binding-and-spn-required", bytes([level | 0x0F]) + msg)
    # Hostile CHALLENGEs: fields far outside, lengths past the end, a pair running out, and one
    # whose target information nearly fills its 16-bit length.
    def patched(at, b):
        m = bytearray(challenge)
        m[at:at + len(b)] = b
        return bytes(m)
    write("ntlm", "challenge-target-info-offset-absurd", b"\x30" + patched(44, struct.pack("<I", 0xFFFFFFF0)))
    write("ntlm", "challenge-target-info-length-absurd", b"\x30" + patched(40, b"\xff\xff\xff\xff"))
    write("ntlm", "challenge-target-name-offset-absurd", b"\x30" + patched(16, struct.pack("<I", 0x7FFFFFFF)))
    write("ntlm", "challenge-fields-overlap", b"\x30" + patched(44, struct.pack("<I", 12)))
    broken_pairs = struct.pack("<HH", 2, 0x7FFF) + utf16("Domain")
    write("ntlm", "challenge-av-pair-runs-out", b"\x30" + ntlm_message(
        2, 56, [(20, flags), (24, bytes(8)), (48, version)], [(12, b""), (40, broken_pairs)]))
    write("ntlm", "challenge-huge-target-info", b"\x30" + ntlm_message(
        2, 56, [(20, flags), (24, bytes(8)), (48, version)], [(12, b""), (40, av_pairs((2, b"D\0" * 32763)))]))
    write("ntlm", "challenge-truncated", b"\x00" + challenge[:40])
    write("ntlm", "authenticate-nt-response-offset-absurd", b"\x00" + authenticate[:24] + b"\xff\xff\xff\x7f" + authenticate[28:])
    write("ntlm", "negotiate-with-domain-field", b"\x00" + ntlm_message(
        1, 40, [(12, struct.pack("<I", 0xE2088297)), (32, version)], [(16, b"DOMAIN"), (24, b"WS")]))
    write("ntlm", "av-pairs-alone", b"\x00" + spec_pairs)


def spnego():
    # The first byte: bit 0 sends the token after a real NegTokenInit (see fuzz/targets/spnego.rs).
    for name, token in captures().items():
        if name.startswith("kerberos-") or "None" not in name:
            later = "-02-" not in name and "-01-" not in name
            write("spnego", "dotnet-" + name, bytes([1 if later else 0]) + token)
    negotiate = captures()["ntlm-None-01-c2s-hs16"]
    write("spnego", "raw-ntlmssp-negotiate", b"\x00" + negotiate)
    init = captures()["kerberos-EncryptAndSign-01-c2s-hs16"]
    write("spnego", "kerberos-init-truncated", b"\x00" + init[:100])
    # A bare NegTokenInit: the [0] inside the InitialContextToken, without it.
    (_, body), = der_tlvs(init)
    bare = [v for t, v in der_tlvs(body) if t == 0xA0][0]
    write("spnego", "bare-neg-token-init", b"\x00" + b"\xa0" + bytes([0x82]) + struct.pack(">H", len(bare)) + bare)
    write("spnego", "neg-token-resp-reject", b"\x00" + bytes.fromhex("a1073005a0030a0102"))
    write("spnego", "neg-token-resp-request-mic", b"\x01" + bytes.fromhex("a1073005a0030a0103"))
    write("spnego", "der-length-past-the-end", b"\x00" + bytes.fromhex("a18400ffffff3000"))


def http_response():
    # The first byte: the small limit (16 + 4 * (byte & 0x7f)), where the head is cut, and (bit 7)
    # a HEAD request.
    seeds = {
        "200-content-length": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
        "404-http10-close": b"HTTP/1.0 404 Not Found\r\nConnection: close\r\nServer: SimpleHTTP/0.6 Python/3.12\r\n\r\n",
        "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "duplicate-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\nhello",
        "bare-lf": b"HTTP/1.1 302 Found\nLocation: /next\nContent-Length: 0\n\n",
        "obs-fold": b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n  second\r\n\tthird\r\nContent-Length: 0\r\n\r\n",
        "absurd-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
        "content-length-past-i64": b"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n",
        "content-length-with-sign": b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
        "content-lengths-differ": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\nhello!",
        "chunked-not-last": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
        "100-continue-then-200": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        "no-reason-phrase": b"HTTP/1.1 204\r\nDate: Tue, 01 Dec 2026 00:00:00 GMT\r\n\r\n",
        "spaces-in-status-line": b"HTTP/1.1   500   Internal Server Error\r\n\r\n",
        "truncated-status-line": b"HTTP/1.1 2",
        "not-http": b"SSH-2.0-OpenSSH_9.2\r\n",
        "bad-header-name": b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        "cr-without-lf": b"HTTP/1.1 200 OK\r\nA: b\rC: d\r\n\r\n",
        "header-value-with-nul": b"HTTP/1.1 200 OK\r\nA: b\x00c\r\n\r\n",
        "latin1-value": b"HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename=\xe9t\xe9.txt\r\n\r\n",
    }
    for name, data in seeds.items():
        write("http_response", name, b"\x40" + data)
    write("http_response", "head-request-with-length", b"\xc0HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    write("http_response", "long-header-small-limit", b"\x10HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 1000 + b"\r\n\r\n")
    write("http_response", "many-headers", b"\xff" + b"HTTP/1.1 200 OK\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(300)) + b"\r\n")
    write("http_response", "no-end-of-head", b"\x08HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 50)


def http_chunked():
    # The first byte: the split point and the reader's buffer size.
    seeds = {
        "extensions-and-trailers": b"5;name=value\r\nhello\r\n1;a;b=\"q\"\r\n \r\n6\r\n world\r\n0\r\nTrailer: x\r\nMore: y\r\n\r\n",
        "bare-lf": b"3\nabc\n0\n\n",
        "last-chunk-only": b"0\r\n\r\n",
        "bytes-after-the-body": b"1\r\nA\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n",
        "4096-byte-chunk": b"1000\r\n" + bytes(range(256)) * 16 + b"\r\n0\r\n\r\n",
        "upper-case-hex": b"A\r\n0123456789\r\n0\r\n\r\n",
        "bad-size": b"zz\r\nhello\r\n0\r\n\r\n",
        "overflowing-size": b"ffffffffffffffffff\r\nx\r\n0\r\n\r\n",
        "largest-size": b"ffffffffffffffff\r\nx",
        "missing-crlf-after-data": b"5\r\nhelloXX0\r\n\r\n",
        "missing-crlf-after-size": b"5hello\r\n0\r\n\r\n",
        "truncated-in-data": b"5\r\nhel",
        "truncated-in-trailer": b"0\r\nTrailer: x\r\n",
        "negative-size": b"-1\r\nx\r\n0\r\n\r\n",
        "size-with-spaces": b"5 \r\nhello\r\n 0\r\n\r\n",
        "long-extension": b"1;" + b"e" * 5000 + b"\r\nx\r\n0\r\n\r\n",
    }
    for i, (name, data) in enumerate(seeds.items()):
        write("http_chunked", name, bytes([(i * 37) % 256]) + data)


TARGETS = {
    "alpn": alpn, "certificate": None, "custom_stream": custom_stream, "tls_framer": None, "tls_peer": None,
    "nns": nns, "ntlm": ntlm, "spnego": spnego, "http_response": http_response, "http_chunked": http_chunked,
}


def clear(target):
    d = os.path.join(CORPUS, target)
    if target == "nns":
        # The captures are not made here: only the edge seeds go.
        for name in os.listdir(d):
            if not name.startswith("dotnet-"):
                os.remove(os.path.join(d, name))
    else:
        shutil.rmtree(d, ignore_errors=True)


def main():
    """gen_corpus.py [TARGET...]: the seeds of those targets (all of them by default; the TLS
    ones, whose certificates are made new each time, always together)."""
    chosen = sys.argv[1:] or list(TARGETS)
    unknown = [t for t in chosen if t not in TARGETS]
    if unknown:
        sys.exit("gen_corpus.py: no target " + ", ".join(unknown))
    tls = {"certificate", "tls_peer", "tls_framer"}
    if tls & set(chosen):
        chosen = sorted(set(chosen) | tls)
    for target in chosen:
        clear(target)
    if tls & set(chosen):
        if shutil.which("openssl") is None:
            sys.exit("gen_corpus.py needs the openssl command")
        with tempfile.TemporaryDirectory() as tmp:
            certificates(tmp)
            c12, s12 = tls_peer(tmp)
            tls_framer(c12, s12)
    for target in chosen:
        if TARGETS[target]:
            TARGETS[target]()
    for target in sorted(chosen):
        files = os.listdir(os.path.join(CORPUS, target))
        size = sum(os.path.getsize(os.path.join(CORPUS, target, f)) for f in files)
        print("%-14s %3d seeds, %6d bytes" % (target, len(files), size))


if __name__ == "__main__":
    main()
