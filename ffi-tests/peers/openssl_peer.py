#!/usr/bin/env python3
"""Runs the openssl command-line tool as a TLS peer for the C harness.

  openssl_peer.py s_server --cert C --key K [--tls 1.2|1.3] [--size N] [--naccept N]
      `openssl s_server -WWW` serving one file of N random bytes at /data.bin. Prints
      "PORT <port>" and "SHA <N> <sha256>", then exits when the --naccept connections (default 1)
      are done.
  openssl_peer.py s_client --port P --ca CA [--tls ...] [--send N] [--recv N]
      `openssl s_client -quiet` sending N random bytes (its stdin) and reading what the server
      sends until it closes. Prints "SENT <N> <sha256>", then "RECV <count> <sha256>" and
      "EXIT <status>".
"""
import argparse
import hashlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading


def out(*parts):
    print(*parts, flush=True)


def tls_flag(v):
    return {"1.2": ["-tls1_2"], "1.3": ["-tls1_3"]}.get(v, [])


def s_server(args):
    with tempfile.TemporaryDirectory(prefix="apmnet-www-") as d:
        data = os.urandom(args.size)
        with open(os.path.join(d, "data.bin"), "wb") as f:
            f.write(data)
        cmd = ["openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", str(args.naccept), "-WWW",
               "-cert", os.path.abspath(args.cert), "-key", os.path.abspath(args.key)] + tls_flag(args.tls)
        proc = subprocess.Popen(cmd, cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for line in proc.stdout:
            m = re.match(rb"ACCEPT .*:(\d+)", line)
            if m:
                out("PORT", int(m.group(1)))
                out("SHA", len(data), hashlib.sha256(data).hexdigest())
                break
        for _ in proc.stdout:
            pass
        out("EXIT", proc.wait())


def s_client(args):
    data = os.urandom(args.send)
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{args.port}", "-quiet", "-verify_return_error",
           "-CAfile", args.ca, "-servername", "localhost"] + tls_flag(args.tls)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def feed():
        try:
            proc.stdin.write(data)
            proc.stdin.close()
        except OSError:
            pass

    t = threading.Thread(target=feed)
    t.start()
    out("SENT", len(data), hashlib.sha256(data).hexdigest())
    h = hashlib.sha256()
    got = 0
    while True:
        chunk = proc.stdout.read(1 << 16)
        if not chunk:
            break
        h.update(chunk)
        got += len(chunk)
    t.join()
    out("RECV", got, h.hexdigest())
    out("EXIT", proc.wait())


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("tool", choices=["s_server", "s_client"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--ca")
    p.add_argument("--tls", default="")
    p.add_argument("--size", type=int, default=0)
    p.add_argument("--naccept", type=int, default=1)
    p.add_argument("--send", type=int, default=0)
    p.add_argument("--recv", type=int, default=0)
    p.add_argument("--timeout", type=int, default=120)
    args = p.parse_args()
    signal.alarm(args.timeout)
    if args.tool == "s_server":
        s_server(args)
    else:
        s_client(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
