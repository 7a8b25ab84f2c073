#!/usr/bin/env python3
"""Hostile byte streams against an RFC 9329 responder (iketcpd server).

Usage: hostile.py HOST PORT --prefix-timeout S --max-frame N [--only NAME...]

Each case opens its own TCP connection, sends some bytes and checks whether
the server closes the connection (EOF or RST) within a bound, or keeps it
open. Prints one line per case ("ok"/"FAIL", what happened, how long it
took) and exits 1 if any case failed. Used by tests/e2e/06-hostile.

"Stays open" cases send the odd frame right after the prefix, check that
the connection is still open 1 s later (before the prefix timeout), then
send a valid IKE frame and check that the connection is still open past
the prefix timeout. The valid frame matters: a server may close a
connection whose first real frame does not arrive within the prefix
timeout (iketcpd does), and that is not what these cases test: they test
that the odd frame neither closes the connection nor breaks the framing.
"""
import argparse
import os
import select
import socket
import struct
import sys
import time

PREFIX = b"IKETCP"


def ike_frame():
    """A well-formed frame holding a bare IKE_SA_INIT request header.

    2-byte Length, 4-byte zero non-ESP marker, then a 28-byte IKEv2 header
    whose own Length (28) matches: random SPIi, zero SPIr, no payloads,
    version 2.0, exchange 34 (IKE_SA_INIT), flags 0x08 (initiator), msgid 0.
    """
    hdr = os.urandom(8) + bytes(8) + bytes([0, 0x20, 34, 0x08]) + struct.pack("!II", 0, 28)
    body = bytes(4) + hdr
    return struct.pack("!H", 2 + len(body)) + body


def connect(host, port):
    s = socket.create_connection((host, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def wait_closed(s, bound):
    """Reads until EOF/RST or until `bound` seconds pass.

    Returns (closed, seconds, how). Bytes the server sends meanwhile are
    read and ignored.
    """
    t0 = time.monotonic()
    while True:
        left = bound - (time.monotonic() - t0)
        if left <= 0:
            return False, time.monotonic() - t0, "still open"
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            return True, time.monotonic() - t0, "RST"
        except OSError as e:
            return True, time.monotonic() - t0, "error %s" % e.strerror
        if not data:
            return True, time.monotonic() - t0, "EOF"


def run_case(host, port, actions):
    """Runs one case. Returns (ok, description)."""
    try:
        s = connect(host, port)
    except OSError as e:
        return False, "connect: %s" % e
    t0 = time.monotonic()
    last_send = t0
    try:
        for act in actions:
            kind = act[0]
            if kind == "send":
                try:
                    s.sendall(act[1])
                except OSError as e:
                    return False, "send failed: %s" % e
                last_send = time.monotonic()
            elif kind == "sleep":
                time.sleep(act[1])
            elif kind == "open":
                hold = act[1]
                closed, secs, how = wait_closed(s, hold)
                if closed:
                    return False, "%s after %.2fs (expected open for %.1fs)" % (how, secs, hold)
            elif kind == "closed":
                # ("closed", lo, hi, since): closed within [lo, hi] seconds,
                # counted from the connect ("connect") or the last send.
                _, lo, hi, since = act
                ref = t0 if since == "connect" else last_send
                closed, _, how = wait_closed(s, max(0.0, ref + hi + 1.0 - time.monotonic()))
                secs = time.monotonic() - ref
                ok = closed and lo <= secs <= hi
                return ok, "%s after %.2fs from the %s (expected closed within [%.1f, %.1f]s)" % (
                    how if closed else "not closed", secs,
                    "connect" if since == "connect" else "last send", lo, hi)
        return True, "still open after %.2fs" % (time.monotonic() - t0)
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--prefix-timeout", type=float, required=True,
                    help="the server's --prefix-timeout, in seconds")
    ap.add_argument("--max-frame", type=int, required=True,
                    help="the server's --max-frame, in bytes")
    ap.add_argument("--only", nargs="*", default=None)
    a = ap.parse_args()
    pt = a.prefix_timeout
    if pt < 1.5:
        sys.exit("--prefix-timeout must be at least 1.5 s for these cases")
    at_once = 1.0       # "closed at once": within 1 s of the last send
    early = 1.0         # first "still open" check, before the prefix timeout
    hold = pt + 1.5     # "stays open": still open past the prefix timeout
    # A connection that never completes the prefix is closed after the
    # prefix timeout: not much before it, and not much after it.
    slow = ("closed", max(0.0, pt - 0.5), pt + 2.5, "connect")
    fast = ("closed", 0.0, at_once, "send")

    oversize = min(a.max_frame + 1, 0xFFFF)
    if oversize <= a.max_frame:
        sys.exit("--max-frame must be below 65535 for the oversize case")

    def stays_open(odd):
        return [("send", PREFIX + odd), ("open", early), ("send", ike_frame()), ("open", hold)]

    cases = [
        ("sends-nothing", [slow]),
        ("partial-prefix-idle", [("send", b"IKE"), slow]),
        ("wrong-prefix", [("send", b"IKETCX" + ike_frame()), fast]),
        ("frame-without-prefix", [("send", ike_frame()), fast]),
        ("split-prefix-then-ike", [("send", b"IK"), ("sleep", 0.2), ("send", b"ETCP"),
                                   ("sleep", 0.2), ("send", ike_frame()), ("open", hold)]),
        ("length-0", [("send", PREFIX + b"\x00\x00"), fast]),
        ("length-1", [("send", PREFIX + b"\x00\x01"), fast]),
        ("length-2-empty", stays_open(b"\x00\x02")),
        ("keepalive-00-03-ff", stays_open(b"\x00\x03\xff")),
        ("runt-3-bytes", stays_open(b"\x00\x05\xaa\xbb\xcc")),
        ("oversize-length", [("send", PREFIX + struct.pack("!H", oversize) + bytes(64)), fast]),
    ]
    failed = 0
    for name, actions in cases:
        if a.only and name not in a.only:
            continue
        ok, what = run_case(a.host, a.port, actions)
        print("%-4s %-24s %s" % ("ok" if ok else "FAIL", name, what), flush=True)
        failed += 0 if ok else 1
    print("hostile: %d case(s) failed" % failed, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
