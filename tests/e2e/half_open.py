#!/usr/bin/env python3
"""Leaves N half-open IKE SAs at the responder behind an iketcpd server.

usage: half_open.py HOST PORT N

Each of N TCP connections sends the RFC 9329 prefix and one valid IKE_SA_INIT
request (tls_ike_client.ike_sa_init: SA, KE, Nonce the responder accepts) and
waits for the responder's IKE_SA_INIT response; it never sends IKE_AUTH, so
the responder keeps N half-open IKE SAs. The connections stay open until
stdin closes (the caller kills us). Prints how many were answered; exit 1
when fewer than N.
"""
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tls_ike_client import PREFIX, frame, ike_sa_init  # noqa: E402


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    conns, answered = [], 0
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(PREFIX + frame(bytes(4) + ike_sa_init(os.urandom(8))))
        conns.append(s)
    end = time.time() + 10
    pending = {s: b"" for s in conns}
    while pending and time.time() < end:
        r, _, _ = select.select(list(pending), [], [], max(0.0, end - time.time()))
        for s in r:
            c = s.recv(65536)
            if not c:
                del pending[s]
                continue
            pending[s] += c
            b = pending[s]
            if len(b) >= 2 and len(b) >= struct.unpack("!H", b[:2])[0]:
                answered += 1
                del pending[s]
    print("half_open: %d of %d IKE_SA_INITs answered" % (answered, n), flush=True)
    if answered < n:
        return 1
    sys.stdin.read()  # hold the connections until the caller is done
    return 0


if __name__ == "__main__":
    sys.exit(main())
