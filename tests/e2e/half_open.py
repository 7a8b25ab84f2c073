#!/usr/bin/env python3
"""Leaves N half-open IKE SAs at the responder behind an iketcpd server.

usage: half_open.py HOST PORT N HOLD_SECONDS

Each of N TCP connections sends the RFC 9329 prefix and one valid IKE_SA_INIT
request (SA with AES-CBC-128 / HMAC-SHA2-256-128 / PRF-HMAC-SHA2-256 /
Curve25519, KE, Nonce: what the e2e responder accepts without the openssl
plugin) and waits for the responder's IKE_SA_INIT response; it never sends
IKE_AUTH, so the responder keeps N half-open IKE SAs. The connections stay
open HOLD_SECONDS (the caller's cleanup kills us sooner). Prints how many were
accepted (a response whose first payload is SA, not a notify). COOKIE
requests (cookie_threshold_ip) are answered as a real initiator would.
"""
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tls_ike_client import PREFIX, frame, transform  # noqa: E402


def ike_sa_init(spi_i, cookie=None):
    transforms = (transform(1, 12, struct.pack("!HH", 0x800E, 128))  # ENCR_AES_CBC 128
                  + transform(3, 12)                                  # AUTH_HMAC_SHA2_256_128
                  + transform(2, 5)                                   # PRF_HMAC_SHA2_256
                  + transform(4, 31, last=True))                      # Curve25519
    proposal_body = struct.pack("!BBBB", 1, 1, 0, 4) + transforms
    proposal = struct.pack("!BxH", 0, 4 + len(proposal_body)) + proposal_body
    sa = struct.pack("!BxH", 34, 4 + len(proposal)) + proposal            # next: KE
    ke_body = struct.pack("!HH", 31, 0) + os.urandom(32)
    ke = struct.pack("!BxH", 40, 4 + len(ke_body)) + ke_body              # next: Nonce
    nonce = struct.pack("!BxH", 0, 4 + 32) + os.urandom(32)
    body, first = sa + ke + nonce, 33
    if cookie is not None:  # RFC 7296 2.6: the responder asked for a cookie; return it first
        body = struct.pack("!BxHBBH", 33, 8 + len(cookie), 0, 0, 16390) + cookie + body
        first = 41
    return spi_i + bytes(8) + struct.pack("!BBBBII", first, 0x20, 34, 0x08, 0,
                                          28 + len(body)) + body


def cookie_of(b):
    """The COOKIE of a framed IKE_SA_INIT response that asks for one, else None."""
    ike = b[2 + 4:]
    if len(ike) > 36 and ike[16] == 41 and struct.unpack("!H", ike[34:36])[0] == 16390:
        n = struct.unpack("!H", ike[30:32])[0]
        return ike[36:28 + n]
    return None


def main():
    host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    conns, spis, answered = [], {}, 0
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=5)
        spis[s] = os.urandom(8)
        s.sendall(PREFIX + frame(bytes(4) + ike_sa_init(spis[s])))
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
                ck = cookie_of(b)
                if ck is not None:
                    pending[s] = b""
                    s.sendall(frame(bytes(4) + ike_sa_init(spis[s], ck)))
                    continue
                # frame length, non-ESP marker, IKE header: next payload at 16
                answered += len(b) > 2 + 4 + 16 and b[2 + 4 + 16] == 33
                del pending[s]
    print("half_open: %d of %d IKE_SA_INITs accepted" % (answered, n), flush=True)
    time.sleep(hold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
