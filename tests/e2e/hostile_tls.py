#!/usr/bin/env python3
"""Hostile TLS openings against a TLS listener of iketcpd server.

Usage: hostile_tls.py HOST PORT --handshake-timeout S --prefix-timeout S
                      --servername NAME --cafile CA [--only NAME...]

Each case opens its own TCP connection and checks that the server closes it
(EOF or RST; a TLS alert before it is read and ignored) within a bound
counted from the connect. Prints one line per case ("ok"/"FAIL", how it was
closed, after how long) and exits 1 if any case failed. Used by
tests/e2e/11-tls-errors.

  tls-garbage          0x16 (a TLS handshake record's first byte, so a
                       sniffing port takes it for TLS), then 500 random
                       bytes: closed within the handshake timeout + 2.5 s
                       (normally at once: OpenSSL refuses the record)
  truncated-hello      the first half of a real ClientHello (Python's ssl
                       makes it), then silence: closed at the handshake
                       timeout, within [T - 0.5, T + 2.5] s
  slow-handshake       a real ClientHello, one byte per second: closed at
                       the handshake timeout, which each byte must not
                       restart, within [T - 0.5, T + 2.5] s
  handshake-no-prefix  a complete TLS handshake (certificate checked), then
                       nothing, not even the IKETCP prefix: closed within
                       the handshake timeout + the prefix timeout + 2.5 s
"""
import argparse
import os
import select
import socket
import ssl
import sys
import time


def client_hello(name):
    """The bytes of a real ClientHello (TLS record(s)) for SNI name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def connect(host, port):
    s = socket.create_connection((host, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def poll_closed(s, wait):
    """Waits up to `wait` s for the server to close. Returns how, or None."""
    end = time.monotonic() + wait
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            return "RST"
        except OSError as e:
            return "error %s" % e.strerror
        if not data:
            return "EOF"
        # A TLS alert (or anything else) before the close: keep reading.


def expect_closed(t0, how, lo, hi, extra=""):
    secs = time.monotonic() - t0
    if how is None:
        return False, "not closed after %.2fs (expected within [%.1f, %.1f]s)%s" % (
            secs, lo, hi, extra)
    ok = lo <= secs <= hi
    return ok, "%s after %.2fs (expected within [%.1f, %.1f]s)%s" % (how, secs, lo, hi, extra)


def case_garbage(a, hs, pt):
    s = connect(a.host, a.port)
    t0 = time.monotonic()
    try:
        s.sendall(b"\x16" + os.urandom(500))
        return expect_closed(t0, poll_closed(s, hs + 3.5), 0.0, hs + 2.5)
    finally:
        s.close()


def case_truncated(a, hs, pt):
    ch = client_hello(a.servername)
    s = connect(a.host, a.port)
    t0 = time.monotonic()
    try:
        s.sendall(ch[:len(ch) // 2])
        return expect_closed(t0, poll_closed(s, hs + 3.5), hs - 0.5, hs + 2.5,
                             " after %d of %d ClientHello bytes" % (len(ch) // 2, len(ch)))
    finally:
        s.close()


def case_slow(a, hs, pt):
    ch = client_hello(a.servername)
    s = connect(a.host, a.port)
    t0 = time.monotonic()
    sent, how = 0, None
    try:
        while sent < len(ch) and time.monotonic() - t0 < hs + 3.5:
            try:
                s.sendall(ch[sent:sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                how = "RST (on send)"
                break
            sent += 1
            how = poll_closed(s, 1.0)
            if how:
                break
        return expect_closed(t0, how, hs - 0.5, hs + 2.5,
                             ", %d of %d ClientHello bytes sent at 1/s" % (sent, len(ch)))
    finally:
        s.close()


def case_no_prefix(a, hs, pt):
    ctx = ssl.create_default_context(cafile=a.cafile)
    raw = connect(a.host, a.port)
    t0 = time.monotonic()
    try:
        try:
            s = ctx.wrap_socket(raw, server_hostname=a.servername)
        except (ssl.SSLError, OSError) as e:
            return False, "TLS handshake failed: %s" % e
        vers = s.version()
        end = t0 + hs + pt + 3.5
        how = None
        while time.monotonic() < end:
            s.settimeout(max(0.05, end - time.monotonic()))
            try:
                if not s.recv(4096):
                    how = "EOF"
                    break
            except socket.timeout:
                break
            except ConnectionResetError:
                how = "RST"
                break
            except (ssl.SSLError, OSError) as e:
                how = "TLS/socket error (%s)" % e.__class__.__name__
                break
        return expect_closed(t0, how, 0.0, hs + pt + 2.5, " (%s handshake done)" % vers)
    finally:
        raw.close()


CASES = [
    ("tls-garbage", case_garbage),
    ("truncated-hello", case_truncated),
    ("slow-handshake", case_slow),
    ("handshake-no-prefix", case_no_prefix),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--handshake-timeout", type=float, required=True)
    ap.add_argument("--prefix-timeout", type=float, required=True)
    ap.add_argument("--servername", required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--only", nargs="*", default=None)
    a = ap.parse_args()
    failed = 0
    for name, fn in CASES:
        if a.only and name not in a.only:
            continue
        try:
            ok, what = fn(a, a.handshake_timeout, a.prefix_timeout)
        except OSError as e:
            ok, what = False, "error: %s" % e
        print("%-4s %-20s %s" % ("ok" if ok else "FAIL", name, what), flush=True)
        failed += 0 if ok else 1
    print("hostile_tls: %d case(s) failed" % failed, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
