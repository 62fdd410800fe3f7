#!/usr/bin/env python3
"""Peer helper for the C harness: makes a throw-away PKI in DIR with the openssl CLI (EC P-256
keys, SHA-256 signatures), then prints "OK" (or "SKIP <why>" without the openssl tool). Nothing here is ever committed: the tests call it
at run time into a temporary directory.

  ca.pem ca.key              the test CA (the tests trust it explicitly)
  server.pem server.key      CN=localhost, SAN DNS:localhost, IP:127.0.0.1, signed by the CA
  server-chain.pem           server.pem followed by ca.pem
  server.p12                 server certificate, key and CA, password "secret"
  client.pem client.key      CN=apmnet client, clientAuth, signed by the CA
  expired.pem expired.key    like server, but its validity ended yesterday
  selfsigned.pem .key        CN=localhost, self-signed (untrusted)
  wronghost.pem .key         CN=wrong.example, SAN DNS:wrong.example, signed by the CA

Usage: make_pki.py DIR
"""
import os
import shutil
import subprocess
import sys


def run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def key(name, cwd):
    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name + ".key", cwd=cwd)


def ext_file(cwd, name, text):
    path = os.path.join(cwd, name + ".ext")
    with open(path, "w") as f:
        f.write(text)
    return name + ".ext"


def signed(name, subject, san, usage, days, cwd):
    key(name, cwd)
    run("req", "-new", "-key", name + ".key", "-subj", subject, "-out", name + ".csr", cwd=cwd)
    ext = ext_file(cwd, name, "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                   f"extendedKeyUsage={usage}\n" + (f"subjectAltName={san}\n" if san else ""))
    run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", str(days), "-sha256", "-extfile", ext, "-out", name + ".pem", cwd=cwd)


def main() -> int:
    d = sys.argv[1]
    if shutil.which("openssl") is None:
        print("SKIP the openssl command-line tool is not installed", flush=True)
        return 0
    os.makedirs(d, exist_ok=True)
    key("ca", d)
    run("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=apmnet test CA", "-days", "2", "-sha256",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-out", "ca.pem", cwd=d)
    signed("server", "/CN=localhost/O=apmnet", "DNS:localhost,IP:127.0.0.1", "serverAuth", 2, d)
    signed("client", "/CN=apmnet client", None, "clientAuth", 2, d)
    signed("expired", "/CN=localhost", "DNS:localhost,IP:127.0.0.1", "serverAuth", -1, d)
    signed("wronghost", "/CN=wrong.example", "DNS:wrong.example", "serverAuth", 2, d)
    key("selfsigned", d)
    run("req", "-x509", "-new", "-key", "selfsigned.key", "-subj", "/CN=localhost", "-days", "2", "-sha256",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-out", "selfsigned.pem", cwd=d)
    with open(os.path.join(d, "server-chain.pem"), "w") as out:
        for name in ("server.pem", "ca.pem"):
            with open(os.path.join(d, name)) as f:
                out.write(f.read())
    run("pkcs12", "-export", "-in", "server.pem", "-inkey", "server.key", "-certfile", "ca.pem",
        "-passout", "pass:secret", "-out", "server.p12", cwd=d)
    print("OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
