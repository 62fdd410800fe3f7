#!/usr/bin/env python3
"""Peer for the C harness: listen on 127.0.0.1 port 0, print the port, accept
one connection, read it to EOF, then print "<byte count> <sha256 hex>".

Usage: sha256_sink.py [timeout_seconds]   (default 600; the peer exits by
itself after that so that a failed test never leaves it behind)
"""
import hashlib
import signal
import socket
import sys


def main() -> int:
    timeout = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    signal.alarm(timeout)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        print(listener.getsockname()[1], flush=True)
        conn, _ = listener.accept()
    digest = hashlib.sha256()
    count = 0
    with conn:
        while True:
            chunk = conn.recv(1 << 20)
            if not chunk:
                break
            digest.update(chunk)
            count += len(chunk)
    print(count, digest.hexdigest(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
