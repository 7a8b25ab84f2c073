#!/usr/bin/env python3
"""Loopback tests of iketcpd's server and client modes against scripted peers.

Real iketcpd processes, real TCP and UDP sockets on 127.0.0.1; the IKE daemon
behind the gateway and the RFC 9329 client are played by this script, so each
test can send exact bytes and assert exact bytes. (The strongSwan tunnels are
in tests/e2e.) Every wait is bounded; every process is killed on exit.

usage: test_gateway.py PATH/TO/iketcpd
"""
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

IKETCPD = None
# Every daemon these tests start runs as root without `user`: say so once
# (allow-root); test_service checks the refusal itself.
os.environ.setdefault("IKETCPD_ALLOW_ROOT", "1")
# Ports differ per run (by pid) so parallel runs do not collide; each run
# uses BASE..BASE+19, all below Linux's ephemeral range (32768..) so that no
# outgoing connection can hold one of them. A failure prints BASE, and
# IKETCP_TEST_BASE=N reruns with the same ports.
BASE = int(os.environ.get("IKETCP_TEST_BASE", 20000 + (os.getpid() % 600) * 20))
TMP = tempfile.mkdtemp(prefix="iketcpd-lb-")
PROCS = []


def ike(spi_i, spi_r=0, ex=34, flags=0x08, msgid=0, payload=b"x" * 40):
    n = 28 + len(payload)
    return struct.pack(">QQBBBBII", spi_i, spi_r, 33, 0x20, ex, flags, msgid, n) + payload


def dgram_ike(*a, **k):
    return b"\0\0\0\0" + ike(*a, **k)


def esp(spi, seq, n=100):
    return struct.pack(">II", spi, seq) + b"e" * n


def frame(body):
    return struct.pack(">H", len(body) + 2) + body


def response_of(d):
    r = bytearray(d)
    r[4 + 19] = 0x20
    return bytes(r)


def start(args, name, env=None, wrap=()):
    """wrap: a command that execs iketcpd (prlimit, setpriv), keeping its pid."""
    log = open(os.path.join(TMP, name + ".log"), "w")
    p = subprocess.Popen(list(wrap) + [IKETCPD] + args + ["-f", "-v"], stderr=log, env=env)
    p.logname = log.name
    PROCS.append(p)
    return p


def wait_port(port, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError("port %d never opened" % port)


def wait_udp(port, timeout=10.0):
    """Waits until some socket is bound to UDP port (IPv4 or IPv6), e.g. an
    iketcpd client's --udp socket; slow starts (valgrind) must not lose the
    first datagram."""
    end = time.time() + timeout
    hexport = ":%04X" % port
    while time.time() < end:
        for f in ("/proc/net/udp", "/proc/net/udp6"):
            try:
                with open(f) as fh:
                    next(fh)
                    if any(ln.split()[1].endswith(hexport) for ln in fh):
                        return
            except OSError:
                pass
        time.sleep(0.02)
    raise AssertionError("UDP port %d never bound" % port)


def udp(port=0, rcvbuf=4 << 20):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind(("127.0.0.1", port))
    s.settimeout(3)
    return s


def tcp(port):
    t = socket.create_connection(("127.0.0.1", port), timeout=3)
    t.settimeout(3)
    return t


def recv_exact(t, n):
    b = b""
    while len(b) < n:
        c = t.recv(n - len(b))
        if not c:
            raise AssertionError("EOF after %d of %d bytes" % (len(b), n))
        b += c
    return b


def recv_frame(t):
    h = recv_exact(t, 2)
    n = struct.unpack(">H", h)[0]
    return recv_exact(t, n - 2)


def closed_within(t, seconds):
    """True if the peer closes (EOF or RST) within seconds."""
    t.settimeout(seconds)
    end = time.time() + seconds
    try:
        while time.time() < end:
            if t.recv(4096) == b"":
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
    return False


def still_open(t, seconds=0.3):
    return not closed_within(t, seconds)


def stats_request(path, req, timeout=5.0):
    """The stats socket's answer to a request line (None: write nothing, as
    readers of the connect-and-read socket do)."""
    end = time.time() + timeout
    while not os.path.exists(path):
        assert time.time() < end, "no stats socket " + path
        time.sleep(0.02)
    u = socket.socket(socket.AF_UNIX)
    u.settimeout(timeout)
    u.connect(path)
    if req is not None:
        u.sendall(req.encode() + b"\n")
        u.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        c = u.recv(65536)
        if not c:
            break
        data += c
    u.close()
    return data.decode()


def read_stats_lines(path, timeout=5.0):
    """The stats socket's lines after the version line, as (kind, name, key, value)."""
    end = time.time() + timeout
    while not os.path.exists(path):
        assert time.time() < end, "no stats socket " + path
        time.sleep(0.02)
    lines = stats_request(path, "stats", timeout).splitlines()
    assert lines[0].startswith("iketcpd "), lines[:1]
    out = []
    for ln in lines[1:]:
        kind, name, key, val = ln.split()
        out.append((kind, name, key, int(val)))
    return out


def read_stats(path, timeout=5.0):
    """The stats socket's counters as {(kind, name, key): value}."""
    return {(kind, name, key): v for kind, name, key, v in read_stats_lines(path, timeout)}

class Server:
    def __init__(self, extra=()):
        self.port = BASE
        self.be = udp(BASE + 1)
        self.p = start(["server", "--listen", "127.0.0.1:%d" % self.port,
                        "--backend", "127.0.0.1:%d" % (BASE + 1)] + list(extra), "server")
        wait_port(self.port)
        time.sleep(0.2)  # let the server see the probe connection close

    def open_session(self, spi):
        """A connection that carried an IKE_SA_INIT; returns (tcp, backend source)."""
        t = tcp(self.port)
        m = dgram_ike(spi)
        t.sendall(b"IKETCP" + frame(m))
        d, src = self.be.recvfrom(70000)
        assert d == m, d
        return t, src

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(5)
        self.be.close()
        assert rc == 0, "server exit status %d" % rc


# ---- server mode ---------------------------------------------------------------

def test_server_relays_both_ways():
    s = Server()
    try:
        t, src = s.open_session(0x1111)
        s.be.sendto(response_of(dgram_ike(0x1111)), src)
        assert recv_frame(t) == response_of(dgram_ike(0x1111))
        e = esp(0x100, 1)
        t.sendall(frame(e))
        d, src2 = s.be.recvfrom(70000)
        assert d == e and src2 == src
        s.be.sendto(esp(0xC0DE, 7), src)
        assert recv_frame(t) == esp(0xC0DE, 7)
    finally:
        s.stop()


def test_server_burst_keeps_datagram_boundaries():
    """One TCP write of many frames: equal-sized runs go out as UDP GSO
    batches, and the backend must still get every datagram whole, in order,
    with its own size (runs, a shorter one ending a run, a longer one)."""
    s = Server()
    try:
        t, src = s.open_session(0x5151)
        sizes = [1000] * 70 + [999, 1000, 1000, 64, 1400, 1400, 200] + [300] * 5
        frames = [esp(0x515, i, n) for i, n in enumerate(sizes)]
        t.sendall(b"".join(frame(e) for e in frames))
        got = [s.be.recvfrom(70000) for _ in frames]
        assert [d for d, _ in got] == frames, [len(d) for d, _ in got]
        assert all(a == src for _, a in got)
    finally:
        s.stop()


def test_server_split_prefix_and_frames():
    s = Server()
    try:
        t = tcp(s.port)
        data = b"IKETCP" + frame(dgram_ike(0x2222))
        for b in data:  # one byte per segment
            t.sendall(bytes([b]))
            time.sleep(0.001)
        d, _ = s.be.recvfrom(70000)
        assert d == dgram_ike(0x2222)
    finally:
        s.stop()


def test_server_reconnect_keeps_backend_port():
    """R20/R21: a new connection from a new source port reaches the backend
    from the session's UDP port, and replies follow it once the old one is gone."""
    s = Server()
    try:
        t, src = s.open_session(0x3333)
        t.sendall(frame(esp(0x300, 1)))
        assert s.be.recvfrom(70000)[1] == src
        t.close()
        t2 = tcp(s.port)
        t2.sendall(b"IKETCP" + frame(esp(0x300, 2)))
        d, src2 = s.be.recvfrom(70000)
        assert d == esp(0x300, 2) and src2 == src, (src2, src)
        s.be.sendto(esp(0xAB, 1), src)
        assert recv_frame(t2) == esp(0xAB, 1)
    finally:
        s.stop()


def test_server_new_conn_does_not_steal_return_path():
    """R32, A13: claiming known SPIs on a new connection moves nothing; ESP
    on a connection of no session goes nowhere; the backend answering a
    request that came on it, never answered before, does."""
    sock = os.path.join(TMP, "steal.sock")
    s = Server(["--stats-socket", sock])
    try:
        t, src = s.open_session(0x4444)
        t.sendall(frame(esp(0x400, 1)))
        s.be.recvfrom(70000)
        evil = tcp(s.port)
        evil.sendall(b"IKETCP" + frame(esp(0x400, 99)))
        wait_stat(sock, "esp_unroutable", 1)
        s.be.sendto(esp(0xAB, 2), src)
        assert recv_frame(t) == esp(0xAB, 2)  # still the old connection
        evil.settimeout(0.3)
        try:
            got = evil.recv(100)
            assert got == b"", got
        except socket.timeout:
            pass
        # an IKE request on the new connection, answered by the backend
        req = dgram_ike(0x4444, spi_r=0x55, ex=37, flags=0x08, msgid=5)
        evil.sendall(frame(req))
        assert s.be.recvfrom(70000)[0] == req
        s.be.sendto(response_of(req), src)
        evil.settimeout(3)
        assert recv_frame(evil) == response_of(req)
        s.be.sendto(esp(0xAB, 3), src)
        assert recv_frame(evil) == esp(0xAB, 3)
    finally:
        s.stop()


def test_server_closes_replaced_idle_connection():
    """R34: once the return path has moved to a newer connection, the old
    one is closed after replaced-idle-timeout without a frame from it; a
    frame on it postpones that; the new connection is untouched."""
    sock = os.path.join(TMP, "r34.sock")
    s = Server(["--replaced-idle-timeout", "1500ms", "--stats-socket", sock])
    try:
        t, src = s.open_session(0x6161)
        t2 = tcp(s.port)
        req = dgram_ike(0x6161, spi_r=0x66, ex=37, flags=0x08, msgid=5)
        t2.sendall(b"IKETCP" + frame(req))
        assert s.be.recvfrom(70000)[0] == req
        s.be.sendto(response_of(req), src)  # the answer moves the return path
        assert recv_frame(t2) == response_of(req)
        time.sleep(0.5)
        t.sendall(frame(esp(0x610, 1)))  # the old connection is still used
        assert s.be.recvfrom(70000)[0] == esp(0x610, 1)
        t_frame = time.time()
        assert closed_within(t, 5.0), "the replaced idle connection stayed"
        took = time.time() - t_frame
        # more than the 1.0 s left from the switch: the frame re-armed it
        assert took > 1.2, "closed %.2fs after its last frame (timeout 1.5s)" % took
        assert still_open(t2)
        s.be.sendto(esp(0x61, 2), src)
        assert recv_frame(t2) == esp(0x61, 2)
        st = server_stats(sock)
        assert st["closed_replaced_idle"] == 1 and st["path_switches"] == 1, st
        wait_log(s.p, "replaced by a newer connection and idle (R34)")
    finally:
        s.stop()


def test_server_backend_keepalive_not_framed():
    """R47: the backend's 1-byte 0xFF NAT keepalive never reaches TCP."""
    s = Server()
    try:
        t, src = s.open_session(0x5555)
        s.be.sendto(b"\xff", src)
        s.be.sendto(esp(0xAB, 1), src)
        assert recv_frame(t) == esp(0xAB, 1)
    finally:
        s.stop()


def test_server_hostile_inputs():
    sock = os.path.join(TMP, "stats.sock")
    s = Server(["--prefix-timeout", "1s", "--max-frame", "2000", "--max-bad-frames", "4",
                "--stats-socket", sock])
    try:
        good, src = s.open_session(0x6666)
        cases = []
        t = tcp(s.port); t.sendall(b"IKEUDP"); cases.append(("wrong prefix", t, True, 0.5))
        t = tcp(s.port); t.sendall(b"GET / HTTP/1.1\r\n\r\n"); cases.append(("no prefix", t, True, 0.5))
        t = tcp(s.port); cases.append(("silent", t, True, 2.5))
        t = tcp(s.port); t.sendall(b"IKETCP"); cases.append(("prefix only", t, True, 2.5))
        t = tcp(s.port); t.sendall(b"IKETCP\x00\x00"); cases.append(("length 0", t, True, 0.5))
        t = tcp(s.port); t.sendall(b"IKETCP\x00\x01"); cases.append(("length 1", t, True, 0.5))
        t = tcp(s.port); t.sendall(b"IKETCP\x07\xd1"); cases.append(("over max-frame", t, True, 0.5))
        t = tcp(s.port); t.sendall(b"IKETCP" + frame(b"\x01\x02\x03") * 4)
        cases.append(("4 runts in a row", t, True, 0.5))
        for name, t, want_closed, secs in cases:
            got = closed_within(t, secs)
            assert got == want_closed, "%s: closed=%s" % (name, got)
        # empty frames and keepalives are fine, also many of them (R5, R48)
        t = tcp(s.port)
        t.sendall(b"IKETCP" + b"\x00\x02" * 50 + b"\x00\x03\xff" * 50 + frame(dgram_ike(0x7777)))
        assert s.be.recvfrom(70000)[0] == dgram_ike(0x7777)
        assert still_open(t)
        # 3 runts then a good frame: the run resets (R28)
        t.sendall(frame(b"\x01\x02\x03") * 3 + frame(esp(0x777, 1)) + frame(b"\x01") * 3)
        assert s.be.recvfrom(70000)[0] == esp(0x777, 1)
        assert still_open(t)
        # and the first session never noticed
        good.sendall(frame(esp(0x600, 1)))
        assert s.be.recvfrom(70000) == (esp(0x600, 1), src)
        s.be.sendto(esp(0xAB, 9), src)
        assert recv_frame(good) == esp(0xAB, 9)
        # every bad connection was counted under its reason (stats socket)
        st = {k[2]: v for k, v in read_stats(sock).items() if k[0] == "server"}
        want = {"closed_bad_prefix": 2, "closed_prefix_timeout": 2, "closed_bad_length": 2,
                "closed_too_big": 1, "closed_bad_frames": 1, "frames_empty": 50,
                "frames_keepalive": 50, "frames_runt": 4 + 3 + 3}
        for k, v in want.items():
            assert st[k] == v, "%s = %d, want %d" % (k, st[k], v)
        assert st["connections"] == 2, st["connections"]  # good and t, no bad one left
    finally:
        s.stop()


def wait_stat(sock, key, want, timeout=5.0, name="server", exact=False):
    """Waits until the server's counter key reaches want (equals it, with
    exact); returns the stats."""
    end = time.time() + timeout
    while True:
        st = server_stats(sock, name)
        ok = st[key] == want if exact else st[key] >= want
        if ok or time.time() > end:
            assert ok, "%s = %d, want %s%d" % (key, st[key], "" if exact else ">= ", want)
            return st
        time.sleep(0.02)


def test_server_limits():
    """max-pending-per-source and max-conns-per-source refuse; a full
    max-pending closes the oldest pending connection to admit the new one
    (a few sources holding every slot cannot lock the others out)."""
    sock = os.path.join(TMP, "limits.sock")
    s = Server(["--max-conns-per-source", "3", "--max-pending", "3", "--max-conns", "8",
                "--max-pending-per-source", "2", "--stats-socket", sock])
    try:
        # Server()'s probe connection must be gone: it was pending too
        wait_stat(sock, "connections", 0, exact=True)
        a = [tcp(s.port) for _ in range(2)]  # two pending from 127.0.0.1
        wait_stat(sock, "accepted", 3)  # and the probe
        f = tcp(s.port)
        assert closed_within(f, 1.0), "a third pending connection from one source"
        assert server_stats(sock)["refused_pending_source"] == 1
        c = tcp_from("127.0.0.2", s.port)  # the third pending one
        wait_stat(sock, "accepted", 4)
        g = tcp_from("127.0.0.3", s.port)  # a fourth: the oldest makes room
        assert closed_within(a[0], 1.0), "the oldest pending connection stayed"
        assert still_open(a[1]) and still_open(c) and still_open(g)
        st = server_stats(sock)
        assert st["pending_evicted"] == 1 and st["closed_evicted"] == 1, st
        for t in (a[1], c, g):
            t.sendall(b"IKETCP")
        wait_stat(sock, "connections_pending", 0, exact=True)
        b = [tcp(s.port) for _ in range(2)]  # second and third from 127.0.0.1
        for t in b:
            t.sendall(b"IKETCP")
        assert all(still_open(t) for t in b)
        d = tcp(s.port)
        assert closed_within(d, 1.0), "fourth connection from one source accepted"
        assert still_open(a[1]) and still_open(c)
        assert server_stats(sock)["refused_source"] == 1
    finally:
        s.stop()


def test_server_unknown_session_dropped():
    """Only IKE_SA_INIT creates a session; ESP for no session is dropped,
    and (R28) a run of unknown-SPI ESP longer than max-bad-frames does not
    close the connection."""
    sock = os.path.join(TMP, "unknown.sock")
    s = Server(["--max-bad-frames", "4", "--stats-socket", sock])
    try:
        t = tcp(s.port)
        t.sendall(b"IKETCP" + frame(esp(0x999, 1)) + frame(dgram_ike(0x9999, spi_r=5, ex=37)))
        s.be.settimeout(0.5)
        try:
            d = s.be.recvfrom(70000)
            raise AssertionError("unroutable frame reached the backend: %r" % (d,))
        except socket.timeout:
            pass
        t.sendall(b"".join(frame(esp(0x9990 + i, 1)) for i in range(6)))
        wait_stat(sock, "esp_unroutable", 7)
        assert still_open(t), "unknown-SPI ESP counted toward max-bad-frames (R28)"
    finally:
        s.be.settimeout(3)
        s.stop()


# ---- trust model: what an unauthenticated peer can and cannot do -------------

def established(s, spi, src_ip="127.0.0.1"):
    """A session past IKE_SA_INIT and IKE_AUTH (message IDs 0 and 1
    answered); returns (tcp, backend source, the IKE_AUTH request)."""
    t = tcp_from(src_ip, s.port)
    init = dgram_ike(spi)
    t.sendall(b"IKETCP" + frame(init))
    d, src = s.be.recvfrom(70000)
    assert d == init
    s.be.sendto(response_of(dgram_ike(spi, spi_r=0x99)), src)
    recv_frame(t)
    auth = dgram_ike(spi, spi_r=0x99, ex=35, msgid=1)
    t.sendall(frame(auth))
    assert s.be.recvfrom(70000) == (auth, src)
    s.be.sendto(response_of(auth), src)
    assert recv_frame(t) == response_of(auth)
    return t, src, auth


def nothing_for(t, seconds=0.3):
    t.settimeout(seconds)
    try:
        got = t.recv(100)
    except socket.timeout:
        return True
    finally:
        t.settimeout(3)
    return got == b""


def test_server_replay_does_not_move_return_path():
    """A replayed request (the victim's bytes, on an attacker's connection)
    is answered by the backend from its cache: an answer no newer than one
    already relayed proves nothing, and the return path stays."""
    sock = os.path.join(TMP, "replay.sock")
    s = Server(["--stats-socket", sock])
    try:
        t, src, auth = established(s, 0x8181)
        evil = tcp_from("127.0.0.2", s.port)
        evil.sendall(b"IKETCP" + frame(auth))
        assert s.be.recvfrom(70000) == (auth, src)  # relayed: the backend decides
        s.be.sendto(response_of(auth), src)  # what strongSwan does: the cached answer
        assert recv_frame(t) == response_of(auth)
        s.be.sendto(esp(0x81, 1), src)
        assert recv_frame(t) == esp(0x81, 1)
        assert nothing_for(evil)
        st = server_stats(sock)
        assert st["replays_ignored"] == 1 and st["path_switches"] == 0, st
    finally:
        s.stop()


def test_server_retransmit_on_new_connection_joins():
    """R36: the client's connection broke before the answer came (held);
    the request retransmitted on a new connection from another address is
    answered again, and that answer, newer than any relayed, proves it."""
    sock = os.path.join(TMP, "r36.sock")
    s = Server(["--stats-socket", sock])
    try:
        t, src, _ = established(s, 0x8282)
        req = dgram_ike(0x8282, spi_r=0x99, ex=37, msgid=2)
        t.sendall(frame(req))
        assert s.be.recvfrom(70000) == (req, src)
        t.close()
        wait_stat(sock, "connections", 0, exact=True)
        s.be.sendto(response_of(req), src)  # held: no connection
        t2 = tcp_from("127.0.0.2", s.port)
        t2.sendall(b"IKETCP" + frame(req))
        assert s.be.recvfrom(70000) == (req, src)
        s.be.sendto(response_of(req), src)
        assert recv_frame(t2) == response_of(req)
        s.be.sendto(esp(0x82, 1), src)
        got = recv_frame(t2)
        if got == response_of(req):  # the held copy and the new answer
            got = recv_frame(t2)
        assert got == esp(0x82, 1)
        st = server_stats(sock)
        assert st["joins"] == 1 and st["resumes"] == 0, st
    finally:
        s.stop()


def test_server_fast_resume_only_from_the_same_address():
    """ESP with a session's SPI takes a new connection into the session at
    once only when the session has no connection and the new one comes
    from the client's address; from elsewhere it goes nowhere."""
    sock = os.path.join(TMP, "resume.sock")
    s = Server(["--stats-socket", sock])
    try:
        t, src, _ = established(s, 0x8383)
        t.sendall(frame(esp(0x830, 1)))
        assert s.be.recvfrom(70000) == (esp(0x830, 1), src)
        t.close()
        wait_stat(sock, "connections", 0, exact=True)
        evil = tcp_from("127.0.0.2", s.port)
        evil.sendall(b"IKETCP" + frame(esp(0x830, 2)))
        wait_stat(sock, "esp_unroutable", 1)
        s.be.sendto(esp(0x83, 1), src)
        assert nothing_for(evil)
        t2 = tcp_from("127.0.0.1", s.port)
        t2.sendall(b"IKETCP" + frame(esp(0x830, 3)))
        assert s.be.recvfrom(70000) == (esp(0x830, 3), src)
        s.be.sendto(esp(0x83, 2), src)
        assert recv_frame(t2) == esp(0x83, 2)
        assert server_stats(sock)["resumes"] == 1
    finally:
        s.stop()


def test_server_half_open_budget_and_timeout():
    """One address cannot hold more than max-half-open-per-source sessions
    that never got past IKE_SA_INIT: the oldest is evicted, others keep
    theirs; and a half-open session goes after half-open-timeout."""
    sock = os.path.join(TMP, "halfopen.sock")
    s = Server(["--max-half-open-per-source", "2", "--half-open-timeout", "1500ms",
                "--stats-socket", sock])
    try:
        good, gsrc, _ = established(s, 0x8400, "127.0.0.2")
        srcs = []
        for i in range(5):
            t = tcp(s.port)
            t.sendall(b"IKETCP" + frame(dgram_ike(0x8410 + i)))
            srcs.append(s.be.recvfrom(70000)[1])
            t.close()
        st = wait_stat(sock, "half_open_evicted", 3)
        assert st["sessions"] == 3 and st["half_open"] == 2, st
        # per client address towards the backend (backend-source auto)
        assert len({a for a, _ in srcs}) == 1 and srcs[0][0] != gsrc[0], (srcs, gsrc)
        assert srcs[0][0].startswith("127.") and srcs[0][0] != "127.0.0.1"
        st = wait_stat(sock, "half_open_expired", 2, timeout=5)
        assert st["sessions"] == 1, st
        good.sendall(frame(esp(0x840, 1)))
        assert s.be.recvfrom(70000) == (esp(0x840, 1), gsrc)
        s.be.sendto(esp(0x84, 1), gsrc)
        assert recv_frame(good) == esp(0x84, 1)
    finally:
        s.stop()


def test_server_frame_timeout():
    """A frame begun must end within frame-timeout: a peer cannot park a
    64 KiB buffer in the server forever."""
    sock = os.path.join(TMP, "frametmo.sock")
    s = Server(["--frame-timeout", "600ms", "--stats-socket", sock])
    try:
        t, _ = s.open_session(0x8585)
        t.sendall(b"\xff\xff" + b"\0\0\0\0" + b"x" * 30000)
        t0 = time.time()
        assert closed_within(t, 3.0), "a half-sent frame kept the connection"
        took = time.time() - t0
        assert 0.4 < took < 2.0, took
        assert server_stats(sock)["closed_frame_timeout"] == 1
    finally:
        s.stop()


# ---- issue #11: backend retransmissions, held queue, cookies, versions, F4 ----

def backend_request(spi, msgid, tag=b"", n=40):
    """A request the backend initiates (no Initiator, no Response flag)."""
    return dgram_ike(spi, spi_r=0x99, ex=37, flags=0x00, msgid=msgid,
                     payload=(tag + b"r" * n)[:n])


def test_server_drops_backend_retransmits():
    """R35: a retransmission of a backend request that the current
    connection already carried is not relayed again (each fragment is its
    own datagram and goes once). R36 (TR side): what the backend sent while
    no connection existed goes out first on the next one, and a request
    carried by an earlier connection goes again on a new one."""
    sock = os.path.join(TMP, "r35.sock")
    s = Server(["--stats-socket", sock])
    try:
        t, src, _ = established(s, 0x8686)
        r0 = backend_request(0x8686, 0)
        for _ in range(3):
            s.be.sendto(r0, src)
        assert recv_frame(t) == r0
        wait_stat(sock, "retransmits_dropped", 2, exact=True)
        assert nothing_for(t)
        # a fragmented request: two datagrams with one message ID, each once
        fa, fb = backend_request(0x8686, 1, b"A"), backend_request(0x8686, 1, b"B")
        for d in (fa, fb, fa, fb):
            s.be.sendto(d, src)
        assert recv_frame(t) == fa and recv_frame(t) == fb
        wait_stat(sock, "retransmits_dropped", 4, exact=True)
        assert nothing_for(t)
        # no connection: held once each, in order, with a new request after
        t.close()
        wait_stat(sock, "connections", 0, exact=True)
        r2 = backend_request(0x8686, 2)
        for d in (fa, fb, fa, fb, r2):
            s.be.sendto(d, src)
        wait_stat(sock, "retransmits_dropped", 6, exact=True)
        t2 = tcp_from("127.0.0.1", s.port)  # fast resume by the IKE SPI
        t2.sendall(b"IKETCP" + frame(dgram_ike(0x8686, spi_r=0x99, ex=37, msgid=2)))
        s.be.recvfrom(70000)
        assert [recv_frame(t2) for _ in range(3)] == [fa, fb, r2]
        s.be.sendto(r2, src)  # t2 carried it already
        wait_stat(sock, "retransmits_dropped", 7, exact=True)
        assert nothing_for(t2)
        # a new connection did not carry it: the retransmission goes there
        t2.close()
        wait_stat(sock, "connections", 0, exact=True)
        t3 = tcp_from("127.0.0.1", s.port)
        t3.sendall(b"IKETCP" + frame(dgram_ike(0x8686, spi_r=0x99, ex=37, msgid=3)))
        s.be.recvfrom(70000)
        wait_stat(sock, "resumes", 2, exact=True)
        s.be.sendto(r2, src)
        assert recv_frame(t3) == r2
        s.be.sendto(r2, src)
        wait_stat(sock, "retransmits_dropped", 8, exact=True)
        assert nothing_for(t3)
        assert server_stats(sock)["held_drops"] == 0
    finally:
        s.stop()


def test_server_held_queue_bounded():
    """While a session has no connection the backend's IKE datagrams wait in
    a FIFO of 4 datagrams and 16 KiB; past it the oldest go (held_drops)."""
    sock = os.path.join(TMP, "held.sock")
    s = Server(["--stats-socket", sock])
    try:
        t, src, _ = established(s, 0x8787)
        t.close()
        wait_stat(sock, "connections", 0, exact=True)
        small = [backend_request(0x8787, i) for i in range(6)]
        for d in small:
            s.be.sendto(d, src)
        wait_stat(sock, "held_drops", 2, exact=True)
        t2 = tcp_from("127.0.0.1", s.port)
        t2.sendall(b"IKETCP" + frame(dgram_ike(0x8787, spi_r=0x99, ex=37, msgid=2)))
        s.be.recvfrom(70000)
        assert [recv_frame(t2) for _ in range(4)] == small[2:]
        assert nothing_for(t2)
        t2.close()
        wait_stat(sock, "connections", 0, exact=True)
        big = [backend_request(0x8787, 10 + i, n=7000) for i in range(3)]
        for d in big:
            s.be.sendto(d, src)
        wait_stat(sock, "held_drops", 3, exact=True)  # 3 x 7 KB > 16 KiB
        t3 = tcp_from("127.0.0.1", s.port)
        t3.sendall(b"IKETCP" + frame(dgram_ike(0x8787, spi_r=0x99, ex=37, msgid=3)))
        s.be.recvfrom(70000)
        assert [recv_frame(t3) for _ in range(2)] == big[1:]
        assert nothing_for(t3)
    finally:
        s.stop()


def cookie_response(spi):
    """The responder's IKE_SA_INIT answer asking for a cookie: N(COOKIE)."""
    n = struct.pack(">BBHBBH", 0, 0, 8 + 16, 0, 0, 16390) + b"c" * 16
    hdr = struct.pack(">QQBBBBII", spi, 0, 41, 0x20, 34, 0x20, 0, 28 + len(n))
    return b"\0\0\0\0" + hdr + n


def test_server_cookie_request_closes_connection():
    """R39: after the responder asked for a cookie, the connection is closed
    unless the IKE_SA_INIT retry arrives within prefix-timeout; the half-open
    session goes with it. A retry in time keeps the connection."""
    sock = os.path.join(TMP, "cookie.sock")
    s = Server(["--prefix-timeout", "800ms", "--stats-socket", sock])
    try:
        t, src = s.open_session(0x8888)
        s.be.sendto(cookie_response(0x8888), src)
        assert recv_frame(t) == cookie_response(0x8888)
        assert closed_within(t, 3), "connection kept after an unanswered cookie request"
        st = wait_stat(sock, "closed_cookie_timeout", 1, exact=True)
        assert st["cookie_requests"] == 1 and st["sessions"] == 0, st
        t2, src2 = s.open_session(0x8889)
        s.be.sendto(cookie_response(0x8889), src2)
        assert recv_frame(t2) == cookie_response(0x8889)
        retry = dgram_ike(0x8889, payload=b"with a cookie" + b"x" * 27)
        t2.sendall(frame(retry))
        assert s.be.recvfrom(70000) == (retry, src2)
        assert still_open(t2, 1.5), "closed although the retry came"
        s.be.sendto(response_of(retry), src2)
        assert recv_frame(t2) == response_of(retry)
        assert server_stats(sock)["closed_cookie_timeout"] == 1
    finally:
        s.stop()


def test_server_relays_other_major_versions():
    """A first message of IKE major version 1 or 3 reaches the backend (in
    a half-open session, under the same budgets as IKE_SA_INIT), so the
    backend can answer INVALID_MAJOR_VERSION (RFC 7296 2.5)."""
    sock = os.path.join(TMP, "major.sock")
    s = Server(["--stats-socket", sock])
    try:
        conns = []
        for spi, ver, ex in ((0x8901, 0x30, 34), (0x8902, 0x10, 2)):
            m = bytearray(dgram_ike(spi, ex=ex, flags=0))
            m[4 + 17] = ver
            t = tcp(s.port)
            t.sendall(b"IKETCP" + frame(bytes(m)))
            d, src = s.be.recvfrom(70000)
            assert d == bytes(m), d
            n = struct.pack(">BBHBBHB", 0, 0, 9, 0, 0, 5, 0x20)
            ans = b"\0\0\0\0" + struct.pack(">QQBBBBII", spi, 0, 41, 0x20, 37, 0x20, 0,
                                              28 + len(n)) + n
            s.be.sendto(ans, src)
            assert recv_frame(t) == ans
            conns.append(t)
        st = server_stats(sock)
        assert st["sessions"] == 2 and st["half_open"] == 2 and st["frames_runt"] == 0, st
    finally:
        s.stop()


def test_server_repeated_prefix_refused():
    """F4: "IKETCP" again mid-stream closes the connection at once instead
    of being read as an 18 KB frame (Length 0x494B)."""
    sock = os.path.join(TMP, "reprefix.sock")
    s = Server(["--stats-socket", sock])
    try:
        t, _ = s.open_session(0x8a8a)
        t.sendall(b"IKETCP")
        assert closed_within(t, 2), "a repeated prefix was not refused"
        wait_stat(sock, "closed_bad_prefix", 1, exact=True)
    finally:
        s.stop()


# ---- proxy-protocol: behind a load balancer ----------------------------------

PP2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def pp_v1(src, sport, dst="127.0.0.1", dport=4500):
    return ("PROXY TCP4 %s %s %d %d\r\n" % (src, dst, sport, dport)).encode()


def pp_v2(src=None, sport=0, dst="127.0.0.1", dport=4500, local=False, tlv=b""):
    if local:
        return PP2_SIG + bytes([0x20, 0x00]) + struct.pack(">H", len(tlv)) + tlv
    body = (socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
            + tlv)
    return PP2_SIG + bytes([0x21, 0x11]) + struct.pack(">H", len(body)) + body


def tcp_from(src_ip, port):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind((src_ip, 0))
    t.settimeout(3)
    t.connect(("127.0.0.1", port))
    return t


def test_server_proxy_protocol():
    """proxy-protocol = yes: each connection from a listed balancer starts
    with a PROXY header (v1 or v2, in any pieces); the client it names is
    used for logs and max-conns-per-source, and exactly the header is
    consumed (the prefix and frames behind it in the same segment are
    relayed). Health checks (LOCAL) are counted; a connection without a
    header, or from an address not listed, is closed and counted; a tunnel
    through the balancer keeps working."""
    sock = os.path.join(TMP, "pp.sock")
    s = Server(["--proxy-protocol", "yes", "--proxy-protocol-from", "127.0.0.1",
                "--proxy-protocol-from", "10.0.0.0/8", "--max-conns-per-source", "2",
                "--stats-socket", sock, "-v"])
    try:
        # v2, the header split over two writes, then the client's stream
        t = tcp(s.port)
        h = pp_v2("198.51.100.7", 40000, tlv=bytes([0x04, 0x00, 0x02, 0, 0]))  # a NOOP TLV
        t.sendall(h[:7])
        time.sleep(0.1)
        m = dgram_ike(0x5101)
        t.sendall(h[7:] + b"IKETCP" + frame(m))
        d, src = s.be.recvfrom(70000)
        assert d == m, d
        s.be.sendto(response_of(m), src)
        assert recv_frame(t) == response_of(m)
        wait_log(s.p, "PROXY v2 header: client 198.51.100.7:40000")
        # v1, header + prefix + frame in one segment
        t1 = tcp(s.port)
        m1 = dgram_ike(0x5102)
        t1.sendall(pp_v1("198.51.100.7", 40001) + b"IKETCP" + frame(m1))
        assert s.be.recvfrom(70000)[0] == m1
        # the same client a third time: max-conns-per-source (2) counts
        # clients, not the balancer every connection comes from
        t2 = tcp(s.port)
        t2.sendall(pp_v1("198.51.100.7", 40002) + b"IKETCP" + frame(dgram_ike(0x5103)))
        assert closed_within(t2, 2.0), "a third connection of one client was kept"
        line = wait_log(s.p, "max-conns-per-source of the client the PROXY header names")
        assert line.endswith(": 198.51.100.7:40002 (frames in 0, out 0, esp dropped 0)"), line
        t3 = tcp(s.port)
        m3 = dgram_ike(0x5104)
        t3.sendall(pp_v1("203.0.113.9", 5000) + b"IKETCP" + frame(m3))
        assert s.be.recvfrom(70000)[0] == m3
        # a health check: LOCAL, then the balancer closes
        hc = tcp(s.port)
        hc.sendall(pp_v2(local=True))
        time.sleep(0.1)
        hc.close()
        # no header: an RFC 9329 client that reached us directly
        direct = tcp(s.port)
        direct.sendall(b"IKETCP" + frame(dgram_ike(0x5105)))
        assert closed_within(direct, 2.0)
        wait_log(s.p, "bad PROXY protocol header")
        # an address that is not a listed balancer is refused at accept
        rogue = tcp_from("127.0.0.2", s.port)
        assert closed_within(rogue, 2.0)
        wait_log(s.p, "refused 127.0.0.2:")
        no_datagram(s.be, 0.3)
        # the first tunnel did not notice any of it
        t.sendall(frame(esp(0x51, 1)))
        assert s.be.recvfrom(70000) == (esp(0x51, 1), src)
        end = time.time() + 3
        while True:
            st = server_stats(sock)
            if st["closed_health_check"] == 1 or time.time() > end:
                break
            time.sleep(0.05)
        assert st["proxy_headers"] == 5 and st["proxy_local"] == 1, st
        assert st["refused_proxy_source"] == 1 and st["refused_source"] == 1, st
        assert st["closed_proxy_header"] == 1 and st["closed_proxy_source_limit"] == 1, st
        # the health check's end is neither a warning nor a read error
        assert st["closed_health_check"] == 1 and st["closed_read_error"] == 0, st
        assert st["connections"] == 3, st  # t, t1, t3
    finally:
        s.stop()


def test_server_proxy_protocol_names_the_balancer():
    """A header that names the balancer's own address (a client on the
    balancer's host): the connection moves from the balancer's per-source
    entry to the same entry. (It was freed and then written: ASan found it.)"""
    s = Server(["--proxy-protocol", "yes", "--proxy-protocol-from", "127.0.0.1"])
    try:
        t = tcp(s.port)
        m = dgram_ike(0x5301)
        t.sendall(pp_v1("127.0.0.1", 5555) + b"IKETCP" + frame(m))
        d, src = s.be.recvfrom(70000)
        assert d == m, d
        s.be.sendto(response_of(m), src)
        assert recv_frame(t) == response_of(m)
        t.close()
        t2 = tcp(s.port)  # the entry is still consistent
        m2 = dgram_ike(0x5302)
        t2.sendall(pp_v1("127.0.0.1", 5556) + b"IKETCP" + frame(m2))
        assert s.be.recvfrom(70000)[0] == m2
    finally:
        s.stop()


def test_server_proxy_protocol_then_tls():
    """A TLS port behind a TCP balancer: the PROXY header comes first, in
    clear, then the TLS handshake, then RFC 9329 inside TLS."""
    s = Server(["--listen-tls", "127.0.0.1:%d" % TLS_PORT, "--proxy-protocol", "yes",
                "--proxy-protocol-from", "127.0.0.1"] + tls_files())
    try:
        raw = tcp(TLS_PORT)
        raw.sendall(pp_v2("192.0.2.44", 51000, dport=443))
        t = tls_client_ctx().wrap_socket(raw, server_hostname="gw.test")
        m = dgram_ike(0x5201)
        t.sendall(b"IKETCP" + frame(m))
        d, src = s.be.recvfrom(70000)
        assert d == m, d
        s.be.sendto(response_of(m), src)
        assert recv_frame(t) == response_of(m)
        wait_log(s.p, "PROXY v2 header: client 192.0.2.44:51000")
    finally:
        s.stop()


# ---- client mode ------------------------------------------------------------------

class Pair:
    """iketcpd client -> iketcpd server -> scripted backend."""

    def __init__(self, client_extra=()):
        self.s = Server()
        self.ikd = udp(BASE + 3)
        self.cport = BASE + 2
        self.c = start(["client", "--udp", "127.0.0.1:%d" % self.cport,
                        "--peer", "127.0.0.1:%d" % self.s.port, "--enable-tcp", "yes"]
                       + list(client_extra), "client")
        wait_udp(self.cport)

    def send(self, d):
        self.ikd.sendto(d, ("127.0.0.1", self.cport))

    def stop(self):
        rc = stop_client(self.c, self.ikd)
        self.s.stop()
        assert rc == 0, "client exit status %d" % rc


def test_client_tunnel_and_order():
    p = Pair()
    try:
        m = dgram_ike(0xA1)
        p.send(m)
        d, src = p.s.be.recvfrom(70000)
        assert d == m
        p.s.be.sendto(response_of(m), src)
        assert p.ikd.recvfrom(70000)[0] == response_of(m)
        for i in range(200):
            p.send(esp(0xA00, i, 1300))
        got = [p.s.be.recvfrom(70000)[0] for _ in range(200)]
        assert got == [esp(0xA00, i, 1300) for i in range(200)]
        for i in range(200):
            p.s.be.sendto(esp(0xB00, i, 1300), src)
        got = [p.ikd.recvfrom(70000)[0] for _ in range(200)]
        assert got == [esp(0xB00, i, 1300) for i in range(200)]
        p.send(b"\xff")  # R47: not framed; the server would count it otherwise
    finally:
        p.stop()


def test_client_ike_lane_survives_a_full_receive_queue():
    """Issue #13: IKE is read from a socket of its own (reuseport BPF on the
    non-ESP marker), so a receive queue full of ESP neither holds nor drops
    it. The client is stopped while ESP overfills its UDP socket's queue;
    an IKE message sent last must still reach the backend."""
    p = Pair()
    try:
        m = dgram_ike(0xC1)
        p.send(m)
        d, src = p.s.be.recvfrom(70000)
        assert d == m
        p.s.be.sendto(response_of(m), src)
        assert p.ikd.recvfrom(70000)[0] == response_of(m)
        os.kill(p.c.pid, signal.SIGSTOP)
        try:
            # 8 MiB of queue at most (SO_RCVBUF 4 MiB, doubled): 13 MB overfill it
            for i in range(10000):
                p.send(esp(0xC00, i, 1300))
            # small ones top the queue off past its limit, as a flood does
            # (a queue just under its limit still takes a short datagram)
            for i in range(10000, 12000):
                p.send(esp(0xC00, i, 40))
            info = dgram_ike(0xC1, 0x5151, ex=37, msgid=1)
            p.send(info)
        finally:
            os.kill(p.c.pid, signal.SIGCONT)
        p.s.be.settimeout(5.0)
        while p.s.be.recvfrom(70000)[0] != info:  # socket.timeout: IKE was lost
            pass
    finally:
        p.stop()


def test_client_drops_retransmit_and_resends_after_reconnect():
    """R35: the daemon's retransmission is not put on the connection that
    carried the request. R36: after the connection breaks, the unanswered
    request is resent on the new one (with the prefix again, R24)."""
    p = Pair(["--reconnect-min", "100ms"])
    try:
        m = dgram_ike(0xB1)
        p.send(m)
        d, src = p.s.be.recvfrom(70000)
        p.s.be.sendto(response_of(m), src)
        p.ikd.recvfrom(70000)
        req = dgram_ike(0xB1, spi_r=0x77, ex=37, msgid=1)
        p.send(req)
        assert p.s.be.recvfrom(70000)[0] == req
        p.send(req)  # the daemon retransmits
        p.s.be.settimeout(0.5)
        try:
            d = p.s.be.recvfrom(70000)
            raise AssertionError("retransmission went on the same connection")
        except socket.timeout:
            pass
        p.s.be.settimeout(5)
        # break the client's connection: kill -> restart the server keeps the
        # backend socket? No: use ss -K on the client side connection instead.
        subprocess.run(["ss", "-K", "dst", "127.0.0.1", "dport", "=", str(p.s.port)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5)
        d, src2 = p.s.be.recvfrom(70000)
        assert d == req, d
        assert src2 == src, "session socket changed across reconnect"
        p.s.be.sendto(response_of(req), src)
        assert p.ikd.recvfrom(70000)[0] == response_of(req)
    finally:
        p.stop()


def test_client_relays_every_fragment_of_a_request():
    """RFC 7383: the fragments of one IKE request share its SPIs and message
    ID; R35's duplicate check must not take fragment 2 for a retransmission
    of fragment 1 (an IKE_AUTH with certificates would never complete)."""
    p = Pair()
    try:
        m = dgram_ike(0xB7)
        p.send(m)
        d, src = p.s.be.recvfrom(70000)
        p.s.be.sendto(response_of(m), src)
        p.ikd.recvfrom(70000)
        frags = [dgram_ike(0xB7, spi_r=0x77, ex=35, msgid=1, payload=bytes([53]) + b"f%d" % i * 30)
                 for i in range(1, 4)]
        for fr in frags:
            p.send(fr)
        got = [p.s.be.recvfrom(70000)[0] for _ in frags]
        assert got == frags, [g[-8:] for g in got]
    finally:
        p.stop()


def first_exchange(p, d):
    """The local daemon's first request d reaches the backend and its
    response comes back; returns the source the backend saw."""
    p.send(d)
    got, src = p.s.be.recvfrom(70000)
    assert got == d, got[:12]
    p.s.be.sendto(response_of(d), src)
    assert p.ikd.recvfrom(70000)[0] == response_of(d)
    return src


def exchange(p, src, d):
    """The local daemon's request d goes to the backend from src (its IKE
    SA's session socket) and the backend's response comes back."""
    p.send(d)
    got, s = p.s.be.recvfrom(70000)
    assert (got, s) == (d, src), (got[:12], s, src)
    p.s.be.sendto(response_of(d), src)
    assert p.ikd.recvfrom(70000)[0] == response_of(d)


def two_sas(p, auth=True):
    """Two IKE SAs from one local daemon address (R25): each IKE_SA_INIT
    makes its own flow, connection and backend session socket. auth: then
    IKE_AUTH of A, then of B. Returns the backend's view of both (A, B)."""
    srcs = []
    for spi in (0xA1, 0xB1):
        m = dgram_ike(spi)
        p.send(m)
        d, src = p.s.be.recvfrom(70000)
        assert d == m
        srcs.append(src)
        p.s.be.sendto(response_of(m), src)
        assert p.ikd.recvfrom(70000)[0] == response_of(m)
    assert srcs[0] != srcs[1], "two IKE SAs share one connection"
    if auth:
        exchange(p, srcs[0], dgram_ike(0xA1, spi_r=0xA, ex=35, msgid=1))
        exchange(p, srcs[1], dgram_ike(0xB1, spi_r=0xB, ex=35, msgid=1))
    return srcs


def esp_from(p, spi, seq, want_src):
    p.send(esp(spi, seq))
    d, src = p.s.be.recvfrom(70000)
    assert d == esp(spi, seq), d[:8]
    assert src == want_src, "ESP SPI %x went out on the other IKE SA's connection" % spi


def test_client_esp_follows_its_exchange():
    """R25, R30: a new outbound ESP SPI goes on the connection whose IKE_AUTH
    or CREATE_CHILD_SA completed and had no SPI yet, not on the one with the
    latest IKE traffic (the old rule sent B's ESP on A after A's DPD)."""
    sock = os.path.join(TMP, "c-attr1.sock")
    p = Pair(["--stats-socket", sock])
    try:
        a, b = two_sas(p, auth=False)
        exchange(p, a, dgram_ike(0xA1, spi_r=0xA, ex=35, msgid=1))
        esp_from(p, 0x0A00, 1, a)
        exchange(p, b, dgram_ike(0xB1, spi_r=0xB, ex=35, msgid=1))
        exchange(p, a, dgram_ike(0xA1, spi_r=0xA, ex=37, msgid=2))  # DPD on A
        esp_from(p, 0x0B00, 1, b)
        esp_from(p, 0x0A00, 2, a)
        # CHILD rekey of B: the peer asks, the daemon answers (its response
        # completes the exchange), then DPD on A, then B's new SPI.
        req = dgram_ike(0xB1, spi_r=0xB, ex=36, msgid=0, flags=0x00)
        p.s.be.sendto(req, b)
        assert p.ikd.recvfrom(70000)[0] == req
        p.send(dgram_ike(0xB1, spi_r=0xB, ex=36, msgid=0, flags=0x28))
        assert p.s.be.recvfrom(70000)[1] == b
        exchange(p, a, dgram_ike(0xA1, spi_r=0xA, ex=37, msgid=3))
        esp_from(p, 0x0B01, 1, b)
        st = client_stats(sock)
        assert st["spi_attributed"] == 3 and st["spi_guessed"] == 0, st
    finally:
        p.stop()


def test_client_esp_guess_moved_by_the_peers_answer():
    """R25, R30: both exchanges done (A's, then B's), A's SPI first: the
    latest exchange (B) is only a guess; the peer answers on A's connection
    with a new inbound SPI, which moves A's SPI to A. B's SPI then goes to B."""
    sock = os.path.join(TMP, "c-attr2.sock")
    p = Pair(["--stats-socket", sock])
    try:
        a, b = two_sas(p)
        esp_from(p, 0x0A00, 1, b)  # the guess
        p.s.be.sendto(esp(0xAA00, 1), a)  # the peer's answer, on A
        assert p.ikd.recvfrom(70000)[0] == esp(0xAA00, 1)
        esp_from(p, 0x0A00, 2, a)
        esp_from(p, 0x0B00, 1, b)
        p.s.be.sendto(esp(0xBB00, 1), b)
        assert p.ikd.recvfrom(70000)[0] == esp(0xBB00, 1)
        esp_from(p, 0x0B00, 2, b)
        esp_from(p, 0x0A00, 3, a)
        st = client_stats(sock)
        assert (st["spi_guessed"], st["spi_moved"], st["spi_attributed"]) == (1, 1, 1), st
    finally:
        p.stop()


def test_client_esp_answers_the_peers_new_sa():
    """R25, R30: the peer speaks first on a new SA (inbound SPI on B's
    connection): the daemon's new outbound SPI right after is B's, though
    A's IKE is the most recent and A's exchange the oldest."""
    sock = os.path.join(TMP, "c-attr3.sock")
    p = Pair(["--stats-socket", sock])
    try:
        a, b = two_sas(p)
        exchange(p, a, dgram_ike(0xA1, spi_r=0xA, ex=37, msgid=2))
        p.s.be.sendto(esp(0xBB00, 1), b)
        assert p.ikd.recvfrom(70000)[0] == esp(0xBB00, 1)
        esp_from(p, 0x0B00, 1, b)
        esp_from(p, 0x0A00, 1, a)
        st = client_stats(sock)
        assert (st["spi_attributed"], st["spi_guessed"]) == (2, 0), st
    finally:
        p.stop()


def test_client_rekeyed_ike_sa_stays_on_its_connection():
    """R25: after a CREATE_CHILD_SA on A (an IKE rekey: the new SPIs are
    encrypted), the daemon's first message with the new IKE SPIs goes on A's
    connection though B's IKE was more recent; the peer's first message on a
    new IKE SA of B is learned where it arrives."""
    p = Pair()
    try:
        a, b = two_sas(p)
        esp_from(p, 0x0B00, 1, b)
        esp_from(p, 0x0A00, 1, a)
        exchange(p, a, dgram_ike(0xA1, spi_r=0xA, ex=36, msgid=2))
        exchange(p, b, dgram_ike(0xB1, spi_r=0xB, ex=37, msgid=2))
        exchange(p, a, dgram_ike(0xA2, spi_r=0xA2, ex=37, msgid=0))
        req = dgram_ike(0xB2, spi_r=0xB2, ex=37, msgid=0, flags=0x00)
        p.s.be.sendto(req, b)  # the peer rekeyed B and speaks first
        assert p.ikd.recvfrom(70000)[0] == req
        exchange(p, a, dgram_ike(0xA2, spi_r=0xA2, ex=37, msgid=1))
        p.send(response_of(req))
        assert p.s.be.recvfrom(70000) == (response_of(req), b)
    finally:
        p.stop()


UDP4_MAX = 65507  # the largest UDP payload over IPv4: the largest ESP-in-UDP message


def test_frames_are_exactly_the_udp_messages():
    """R4: what goes on TCP is never larger than the ESP-in-UDP message it
    carries: each datagram, up to the largest UDP payload, becomes exactly one
    frame of its own size + 2 (no padding, no merging, no splitting), in both
    directions, and both modes relay the largest one."""
    s = Server()
    peer = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    peer.bind(("127.0.0.1", BASE + 7))
    peer.listen(1)
    peer.settimeout(5)
    ikd = udp(0)
    c = None
    try:
        t, src = s.open_session(0x4444)
        sizes = [8, 1400, 8000, UDP4_MAX]
        grams = [esp(0x4400 + i, i, n - 8) for i, n in enumerate(sizes)]
        grams.append(response_of(dgram_ike(0x4444, spi_r=0x55, ex=37, msgid=1,
                                           payload=b"i" * (UDP4_MAX - 4 - 28))))
        for g in grams:
            s.be.sendto(g, src)
        got = []  # IKE may overtake ESP in the send queue: compare as a set
        for _ in grams:
            n = struct.unpack(">H", recv_exact(t, 2))[0]
            got.append(recv_exact(t, n - 2))
        assert sorted(got) == sorted(grams), [len(g) for g in got]
        for g in grams[:-1]:  # the other way: frame -> one datagram each
            t.sendall(frame(g))
            assert s.be.recvfrom(70000)[0] == g

        c = start(["client", "--udp", "127.0.0.1:%d" % (BASE + 8),
                   "--peer", "127.0.0.1:%d" % (BASE + 7)], "client-r4")
        wait_udp(BASE + 8)
        m = dgram_ike(0x4545)
        ikd.sendto(m, ("127.0.0.1", BASE + 8))
        a, _ = peer.accept()
        a.settimeout(5)
        assert recv_exact(a, 6) == b"IKETCP"
        assert recv_frame(a) == m
        big = dgram_ike(0x4545, spi_r=0x66, ex=37, msgid=1, payload=b"j" * (UDP4_MAX - 4 - 28))
        for g in grams[:-1] + [big]:
            ikd.sendto(g, ("127.0.0.1", BASE + 8))
            h = recv_exact(a, 2)
            assert struct.unpack(">H", h)[0] == len(g) + 2, (len(g), h)
            assert recv_exact(a, len(g)) == g
        a.sendall(frame(grams[3]))
        assert ikd.recvfrom(70000)[0] == grams[3]
        a.close()
    finally:
        rc = stop_client(c, ikd) if c else 0
        peer.close()
        s.stop()
    assert rc == 0, "client exit status %d" % rc


def tcpdump_start(filt):
    """tcpdump -v on lo, line-buffered; returns once it listens (bounded)."""
    cap = subprocess.Popen(["tcpdump", "-i", "lo", "-nn", "-v", "-l", filt],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    PROCS.append(cap)
    end = time.time() + 5
    line = ""
    while "listening on" not in line:
        assert time.time() < end and cap.poll() is None, "tcpdump did not start: " + line
        line = cap.stderr.readline()
    return cap


def tcpdump_stop(cap):
    """Returns [(proto, tos, src port, dst port, rest)] of what tcpdump -v printed."""
    import re
    time.sleep(0.3)  # packets still in the capture buffer
    cap.terminate()
    out, _ = cap.communicate(timeout=5)
    PROCS.remove(cap)
    pkts, head = [], None
    for line in out.splitlines():
        m = re.search(r"\(tos (0x[0-9a-f]+),.* proto (\w+) ", line)
        if m:
            head = (m.group(2), int(m.group(1), 16))
            continue
        m = re.match(r"\s*[\d.]+\.(\d+) > [\d.]+\.(\d+): (.*)", line)
        if m and head:
            pkts.append((head[0], head[1], int(m.group(1)), int(m.group(2)), m.group(3)))
        head = None
    return pkts


def test_outer_dscp_one_per_connection():
    """R65 (and A9): datagrams with different DSCPs on the UDP side never give
    the TCP connection's segments different DSCPs: one per direction, both
    modes (tcpdump on lo; skipped without root or tcpdump)."""
    import shutil
    if os.geteuid() != 0 or not shutil.which("tcpdump"):
        print("SKIP test_outer_dscp_one_per_connection: needs root + tcpdump")
        return
    p = Pair()
    cap = tcpdump_start("tcp port %d or udp port %d or udp port %d"
                        % (p.s.port, p.cport, BASE + 1))
    pkts = []
    try:
        src = first_exchange(p, dgram_ike(0xD5))
        for i, tos in enumerate([0x00, 0xB8, 0x88, 0x28, 0x00]):
            p.ikd.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
            p.send(esp(0xD500, i, 300))
            assert p.s.be.recvfrom(70000)[0] == esp(0xD500, i, 300)
            p.s.be.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
            p.s.be.sendto(esp(0xD600, i, 300), src)
            assert p.ikd.recvfrom(70000)[0] == esp(0xD600, i, 300)
    finally:
        pkts = tcpdump_stop(cap)
        p.stop()
    into_client = {t for pr, t, sp, dp, _ in pkts if pr == "UDP" and dp == p.cport}
    into_server = {t for pr, t, sp, dp, _ in pkts if pr == "UDP" and sp == BASE + 1}
    up = {t for pr, t, sp, dp, r in pkts if pr == "TCP" and dp == p.s.port and "length 0" not in r}
    down = {t for pr, t, sp, dp, r in pkts if pr == "TCP" and sp == p.s.port and "length 0" not in r}
    # the inputs differed, or the test proves nothing
    assert len(into_client) == 4 and len(into_server) >= 4, (into_client, into_server, pkts[:6])
    assert len(up) == 1 and len(down) == 1, (up, down)


def test_client_ipv6_flow_label_kept_across_reconnect():
    """R22: on IPv6 a reconnect of the same flow carries the same flow label
    (checked on the SYNs with tcpdump; skipped without root or tcpdump)."""
    import re
    import shutil
    if os.geteuid() != 0 or not shutil.which("tcpdump"):
        print("SKIP test_client_ipv6_flow_label_kept_across_reconnect: needs root + tcpdump")
        return
    port, bport, cport = BASE + 4, BASE + 5, BASE + 6
    be = udp(bport)
    ikd = udp(0)
    srv = start(["server", "--listen", "[::1]:%d" % port, "--backend", "127.0.0.1:%d" % bport],
                "server6")
    cap = subprocess.Popen(["tcpdump", "-i", "lo", "-nn", "-v", "-l", "-c", "2",
                            "ip6 and tcp dst port %d and ip6[53] & 2 != 0" % port],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    PROCS.append(cap)
    try:
        end = time.time() + 5
        while True:  # the server is up when [::1]:port accepts; tcpdump needs a moment too
            try:
                socket.create_connection(("::1", port), timeout=1).close()
                break
            except OSError:
                assert time.time() < end, "server on [::1] not up"
                time.sleep(0.05)
        cap.terminate()
        cap.wait(5)
        PROCS.remove(cap)
        cap = subprocess.Popen(["tcpdump", "-i", "lo", "-nn", "-v", "-l", "-c", "2",
                                "ip6 and tcp dst port %d and ip6[53] & 2 != 0" % port],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        PROCS.append(cap)
        time.sleep(1.0)  # tcpdump has no readiness signal; the SYNs come later anyway
        start(["client", "--udp", "127.0.0.1:%d" % cport, "--peer", "[::1]:%d" % port,
               "--enable-tcp", "yes",
               "--reconnect-min", "100ms"], "client6")
        wait_udp(cport)
        m = dgram_ike(0xF6)
        ikd.sendto(m, ("127.0.0.1", cport))
        assert be.recvfrom(70000)[0] == m
        subprocess.run(["ss", "-K", "dst", "[::1]", "dport", "=", str(port)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5)
        assert be.recvfrom(70000)[0] == m  # R36: resent on the new connection
        out, _ = cap.communicate(timeout=10)
        labels = re.findall(r"flowlabel (0x[0-9a-f]+)", out)
        assert len(labels) == 2, out
        assert labels[0] == labels[1] and int(labels[0], 16) != 0, labels
    finally:
        be.close()
        ikd.close()
        srv.send_signal(signal.SIGTERM)


def test_client_fallback_udp_answers():
    """enable-tcp fallback with a peer that answers on UDP: no TCP connection."""
    peer_udp = udp(BASE + 5)
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", BASE + 5))
    lst.listen(5)
    lst.settimeout(0.1)
    ikd = udp(BASE + 6)
    c = start(["client", "--udp", "127.0.0.1:%d" % (BASE + 7), "--peer",
               "127.0.0.1:%d" % (BASE + 5), "--enable-tcp", "fallback",
               "--fallback-wait", "500ms"], "client-fb")
    try:
        wait_udp(BASE + 7)
        m = dgram_ike(0xC1)
        ikd.sendto(m, ("127.0.0.1", BASE + 7))
        d, src = peer_udp.recvfrom(70000)
        assert d == m
        peer_udp.sendto(response_of(m), src)
        assert ikd.recvfrom(70000)[0] == response_of(m)
        time.sleep(1.0)
        try:
            lst.accept()
            raise AssertionError("a TCP connection was made although UDP answered")
        except socket.timeout:
            pass
        # and a silent UDP peer makes it fall back to TCP with the prefix
        m2 = dgram_ike(0xC2)
        ikd.sendto(m2, ("127.0.0.1", BASE + 7))
        peer_udp.recvfrom(70000)  # arrives over UDP first, unanswered
        lst.settimeout(3)
        t, _ = lst.accept()
        t.settimeout(3)
        assert recv_exact(t, 6) == b"IKETCP"
        assert recv_frame(t) == m2
    finally:
        c.send_signal(signal.SIGTERM)
        assert c.wait(5) == 0



def tcp_listener(port):
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", port))
    lst.listen(8)
    return lst


def accept_within(lst, seconds):
    """The next connection to lst, or None after seconds."""
    lst.settimeout(seconds)
    try:
        t, _ = lst.accept()
    except socket.timeout:
        return None
    t.settimeout(3)
    return t


def test_client_default_fallback_fast_and_sticky():
    """R3, R13, R64: with no enable-tcp given the client tries UDP first, to
    the peer's port, and switches to TCP (on tcp-remoteport) within 3 s when
    UDP stays unanswered, saying so in its log. The decision sticks to the
    peer's address: the next IKE SA goes to TCP at once, without UDP, until
    fallback-retry has passed; then UDP is tried again."""
    uport, tport, cport = BASE + 5, BASE + 10, BASE + 7
    sock = os.path.join(TMP, "sticky.sock")
    peer_udp = udp(uport)  # bound and silent: a firewall that drops, no ICMP
    lst = tcp_listener(tport)
    ikd = udp(BASE + 6)
    c = start(["client", "--udp", "127.0.0.1:%d" % cport, "--peer", "127.0.0.1:%d" % uport,
               "--tcp-remoteport", str(tport), "--fallback-retry", "4s",
               "--stats-socket", sock], "client-sticky")
    try:
        wait_udp(cport)
        m1 = dgram_ike(0xD01)
        t0 = time.time()
        ikd.sendto(m1, ("127.0.0.1", cport))
        assert peer_udp.recvfrom(70000)[0] == m1  # UDP first, to the peer's port
        t1 = accept_within(lst, 5)
        took = time.time() - t0
        assert t1 is not None, "no fallback to TCP"
        assert took <= 3.0, "fallback took %.2fs" % took
        assert recv_exact(t1, 6) == b"IKETCP" and recv_frame(t1) == m1
        ln = wait_log(c, "no UDP answer from 127.0.0.1:%d in 2.0 s: using TCP for this flow "
                      "and new flows until " % uport)
        t_fb = time.time()
        # a second IKE SA: straight to TCP, nothing on UDP
        m2 = dgram_ike(0xD02)
        ikd.sendto(m2, ("127.0.0.1", cport))
        t2 = accept_within(lst, 1.0)
        assert t2 is not None, "the second flow did not go to TCP at once"
        assert recv_exact(t2, 6) == b"IKETCP" and recv_frame(t2) == m2
        peer_udp.settimeout(0.3)
        try:
            d = peer_udp.recvfrom(70000)[0]
            raise AssertionError("the second flow tried UDP again: %r" % d[:8])
        except socket.timeout:
            pass
        st = client_stats(sock)
        assert st["fallbacks_to_tcp"] == 1 and st["fallback_sticky"] == 1, st
        # after fallback-retry (4s) a new IKE SA tries UDP again
        time.sleep(max(0.0, 4.3 - (time.time() - t_fb)))
        m3 = dgram_ike(0xD03)
        ikd.sendto(m3, ("127.0.0.1", cport))
        peer_udp.settimeout(3)
        assert peer_udp.recvfrom(70000)[0] == m3, "UDP not retried after fallback-retry"
        assert ln
    finally:
        rc = stop_client(c, ikd, peer_udp, lst)
    assert rc == 0, "client exit status %d" % rc


def test_client_fallback_on_icmp_refusal():
    """R13: UDP refused by ICMP (port unreachable) is a clear answer: TCP at
    once, not after fallback-wait."""
    uport, cport = BASE + 5, BASE + 7
    lst = tcp_listener(uport)  # TCP listens on the port; nothing on UDP there
    ikd = udp(BASE + 6)
    c = start(["client", "--udp", "127.0.0.1:%d" % cport, "--peer", "127.0.0.1:%d" % uport,
               "--enable-tcp", "fallback", "--fallback-wait", "10s"], "client-icmp")
    try:
        wait_udp(cport)
        m = dgram_ike(0xD11)
        t0 = time.time()
        ikd.sendto(m, ("127.0.0.1", cport))
        # the ICMP error is seen on the next datagram at the latest: the
        # local daemon's retransmission
        t = accept_within(lst, 1.0)
        if t is None:
            ikd.sendto(m, ("127.0.0.1", cport))
            t = accept_within(lst, 1.0)
        assert t is not None, "no TCP within 2s of an ICMP refusal (fallback-wait 10s)"
        assert time.time() - t0 < 3.0
        assert recv_exact(t, 6) == b"IKETCP" and recv_frame(t) == m
        wait_log(c, "UDP to 127.0.0.1:%d refused (Connection refused): using TCP" % uport)
    finally:
        rc = stop_client(c, ikd, lst)
    assert rc == 0, "client exit status %d" % rc


def test_client_closes_after_bad_frames():
    """R27 on the client: max-bad-frames runts in a row close the connection
    (and a new one carries the pending request, R36); R28: ESP, whatever its
    SPI, is relayed and breaks the run, so it never counts toward R27. The
    default is 8."""
    tport, cport = BASE + 10, BASE + 7
    sock = os.path.join(TMP, "r27c.sock")
    lst = tcp_listener(tport)
    ikd = udp(BASE + 6)
    runt = frame(b"\x01\x02\x03")
    c = start(["client", "--udp", "127.0.0.1:%d" % cport, "--peer", "127.0.0.1:%d" % tport,
               "--enable-tcp", "yes", "--max-bad-frames", "4", "--reconnect-min", "100ms",
               "--stats-socket", sock], "client-r27")
    c8 = None
    try:
        wait_udp(cport)
        m = dgram_ike(0xD21)
        ikd.sendto(m, ("127.0.0.1", cport))
        t = accept_within(lst, 5)
        assert recv_exact(t, 6) == b"IKETCP" and recv_frame(t) == m
        unknown = esp(0x7E57, 1)  # an SPI the client never saw
        t.sendall(runt * 3 + frame(unknown) + runt * 3)
        assert ikd.recvfrom(70000)[0] == unknown
        assert still_open(t, 0.5), "closed although ESP broke the run (R28)"
        t.sendall(runt)  # the 4th in a row since the ESP
        assert closed_within(t, 3), "4 runts in a row with max-bad-frames 4: still open"
        wait_log(c, "4 bad frames in a row, max-bad-frames (R27)")
        t2 = accept_within(lst, 5)
        assert t2 is not None, "no reconnect after the R27 close"
        assert recv_exact(t2, 6) == b"IKETCP" and recv_frame(t2) == m  # R36
        st = client_stats(sock)
        assert st["closed_bad_frames"] == 1 and st["from_peer_runts"] == 7, st
        t2.close()
        t.close()
        rc = stop_client(c, ikd)
        assert rc == 0, "client exit status %d" % rc
        # the default, 8: 7 runts in a row are fine, the 8th closes
        ikd = udp(BASE + 6)
        c8 = start(["client", "--udp", "127.0.0.1:%d" % cport, "--peer",
                    "127.0.0.1:%d" % tport, "--enable-tcp", "yes"], "client-r27d")
        wait_udp(cport)
        ikd.sendto(m, ("127.0.0.1", cport))
        t = accept_within(lst, 5)
        assert recv_exact(t, 6) == b"IKETCP" and recv_frame(t) == m
        t.sendall(runt * 7)
        assert still_open(t, 0.5), "closed after 7 runts (default max-bad-frames 8)"
        t.sendall(runt)
        assert closed_within(t, 3), "8 runts in a row: still open"
    finally:
        if c.poll() is None:
            c.kill()
        rc = stop_client(c8, ikd, lst) if c8 else stop_client(c, ikd, lst)
    assert rc == 0, "client exit status %d" % rc


def assert_keys_once(lines, kind, must):
    """Each key of kind's section is on one line only, and must are all there."""
    keys = [k for (kd, _, k, _) in lines if kd == kind]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    assert not dup, "%s keys listed more than once: %s" % (kind, dup)
    missing = sorted(set(must) - set(keys))
    assert not missing, "%s keys missing: %s" % (kind, missing)


SERVER_CLOSE_KEYS = ["eof", "read_error", "prefix_timeout", "bad_prefix", "bad_length",
                     "too_big", "bad_frames", "write_error", "no_memory", "shutdown",
                     "tls_handshake", "tls_handshake_timeout", "proxy_header",
                     "proxy_source_limit", "replaced_idle", "health_check", "frame_timeout",
                     "not_joined", "idle", "evicted", "half_open", "cookie_timeout"]
# A connection that broke (counted in disconnects too), a setup that failed
# (in connect_failures), a close on the client's side.
CLIENT_LOST_KEYS = ["eof", "read_error", "write_error", "bad_prefix", "bad_length", "too_big",
                    "bad_frames", "no_memory"]
CLIENT_SETUP_KEYS = ["connect_error", "connect_timeout", "resolve_failed", "tls_handshake",
                     "tls_context", "proxy"]
CLIENT_OURS_KEYS = ["idle", "not_local_peer", "shutdown"]


def test_stats_keys_once_and_client_close_reasons():
    """The stats socket lists each counter once (server and client); the
    client counts each end of a connection by reason: the peer's FIN
    (closed_eof), its reset (closed_read_error), a refused connect
    (closed_connect_error), and the reasons add up to disconnects and
    connect_failures."""
    tport, cport = BASE + 10, BASE + 7
    ssock, csock = os.path.join(TMP, "keys-s.sock"), os.path.join(TMP, "keys-c.sock")
    s = Server(["--stats-socket", ssock])
    lst = tcp_listener(tport)
    ikd = udp(BASE + 6)
    c = start(["client", "--udp", "127.0.0.1:%d" % cport, "--peer", "127.0.0.1:%d" % tport,
               "--enable-tcp", "yes", "--reconnect-min", "100ms", "--reconnect-max", "200ms",
               "--stats-socket", csock], "client-keys")
    ts = []

    def cstat(key, want):
        end = time.time() + 5
        while True:
            st = client_stats(csock)
            if st.get(key, 0) >= want or time.time() > end:
                assert st.get(key, 0) >= want, "%s = %s, want >= %d: %s" % (
                    key, st.get(key), want, st)
                return st
            time.sleep(0.02)

    try:
        wait_udp(cport)
        assert_keys_once(read_stats_lines(ssock), "server",
                         ["connections", "sessions", "half_open", "frames_ike",
                          "proxy_local"] + ["closed_" + k for k in SERVER_CLOSE_KEYS])
        assert_keys_once(read_stats_lines(csock), "client",
                         ["flows", "connections", "disconnects", "spi_moved"] +
                         ["closed_" + k for k in
                          CLIENT_LOST_KEYS + CLIENT_SETUP_KEYS + CLIENT_OURS_KEYS])
        st = client_stats(csock)
        assert all(v == 0 for k, v in st.items() if k.startswith("closed_")), st
        m = dgram_ike(0xC105E)
        ikd.sendto(m, ("127.0.0.1", cport))
        t = accept_within(lst, 5)
        ts.append(t)
        assert t is not None, "no connection from the client"
        assert recv_exact(t, 6) == b"IKETCP" and recv_frame(t) == m
        t.close()  # FIN: the peer closed
        st = cstat("closed_eof", 1)
        assert st["closed_eof"] == 1 and st["disconnects"] == 1, st
        wait_log(c, "connection lost in state open (peer closed)")
        t = accept_within(lst, 5)
        ts.append(t)
        assert t is not None, "no reconnect after the peer closed"
        assert recv_exact(t, 6) == b"IKETCP" and recv_frame(t) == m  # R36
        t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t.close()  # RST: a read error
        st = cstat("closed_read_error", 1)
        assert st["closed_eof"] == 1 and st["disconnects"] == 2, st
        wait_log(c, "(read error: ")
        lst.close()  # nobody listens: the next connects are refused
        lst = None
        st = cstat("closed_connect_error", 1)
        wait_log(c, "cannot connect to 127.0.0.1:%d: connect: Connection refused" % tport)
        assert st["disconnects"] == sum(st["closed_" + k] for k in CLIENT_LOST_KEYS), st
        assert st["connect_failures"] == sum(st["closed_" + k] for k in CLIENT_SETUP_KEYS), st
        assert st["connect_failures"] >= 1 and st["closed_shutdown"] == 0, st
        assert_keys_once(read_stats_lines(csock), "client", [])
    finally:
        for t in ts:
            if t:
                t.close()
        rc = stop_client(c, ikd, lst)
        s.stop()
    assert rc == 0, "client exit status %d" % rc


def test_config_check_mode():
    bad = os.path.join(TMP, "bad.conf")
    with open(bad, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:4500\nbackend = nowhere\n")
    r = subprocess.run([IKETCPD, "-n", "-c", bad], capture_output=True, text=True, timeout=5)
    assert r.returncode != 0
    assert "bad.conf:3" in r.stderr and "nowhere" in r.stderr, r.stderr
    good = os.path.join(TMP, "good.conf")
    with open(good, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:4500\nbackend = 127.0.0.1:4500\n"
                "[client a]\nudp = 127.0.0.1:4501\npeer = gw.example:4500\n"
                "enable-tcp = fallback\n")
    r = subprocess.run([IKETCPD, "-n", "-c", good], capture_output=True, text=True, timeout=5)
    assert r.returncode == 0, r.stderr


def test_sighup_reload_keeps_connections():
    conf = os.path.join(TMP, "reload.conf")
    port, be_port = BASE + 8, BASE + 9
    with open(conf, "w") as f:
        f.write("[server gw]\nlisten = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\n" % (port, be_port))
    be = udp(be_port)
    p = start(["-c", conf], "reload")
    try:
        wait_port(port)
        t = tcp(port)
        t.sendall(b"IKETCP" + frame(dgram_ike(0xD1)))
        _, src = be.recvfrom(70000)
        with open(conf, "a") as f:
            f.write("listen = 127.0.0.1:%d\n" % (BASE + 4))
        p.send_signal(signal.SIGHUP)
        wait_port(BASE + 4)
        t.sendall(frame(esp(0xD00, 1)))
        assert be.recvfrom(70000) == (esp(0xD00, 1), src)
        be.sendto(esp(0xE, 1), src)
        assert recv_frame(t) == esp(0xE, 1)
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(5) == 0


def test_daemonized_handles_signals():
    """Without -f iketcpd forks into the background; SIGTERM must still stop
    it (signals are read through a signalfd that must belong to the child)."""
    port = BASE + 7
    sock = os.path.join(TMP, "daemon-stats.sock")
    r = subprocess.run([IKETCPD, "server", "--listen", "127.0.0.1:%d" % port,
                        "--backend", "127.0.0.1:%d" % (BASE + 8), "--stats-socket", sock],
                       timeout=10)
    assert r.returncode == 0, r.returncode
    wait_port(port)
    out = subprocess.run(["pgrep", "-f", "--", "--listen 127.0.0.1:%d" % port],
                         capture_output=True, text=True).stdout.split()
    assert len(out) == 1, out
    pid = int(out[0])
    try:
        assert read_stats(sock)[("server", "server", "accepted")] >= 1
        os.kill(pid, signal.SIGTERM)
        end = time.time() + 5
        while os.path.exists("/proc/%d" % pid) and time.time() < end:
            time.sleep(0.02)
        assert not os.path.exists("/proc/%d" % pid), "daemon ignored SIGTERM"
        assert not os.path.exists(sock), "stats socket left behind"
    finally:
        if os.path.exists("/proc/%d" % pid):
            os.kill(pid, signal.SIGKILL)


def test_probe_cli():
    """iketcp probe: exit 0 with the response's details when the backend
    answers through the server; exit 1 when a TCP server is not RFC 9329."""
    cli = os.path.join(os.path.dirname(IKETCPD), "iketcp")
    s = Server()
    try:
        pr = subprocess.Popen([cli, "probe", "-t", "5", "127.0.0.1:%d" % s.port],
                              stdout=subprocess.PIPE, text=True)
        req, src = s.be.recvfrom(70000)
        assert req[:4] == b"\0\0\0\0" and req[4 + 18] == 34, req[:32]
        # answer as a responder that refuses the proposal: header + N(NO_PROPOSAL_CHOSEN)
        hdr = bytearray(req[4:4 + 28])
        hdr[8:16] = b"\x11" * 8
        hdr[16] = 41
        hdr[19] = 0x20
        body = bytes([0, 0, 0, 8, 0, 0, 0, 14])
        hdr[24:28] = struct.pack(">I", 28 + len(body))
        s.be.sendto(b"\0\0\0\0" + bytes(hdr) + body, src)
        out, _ = pr.communicate(timeout=10)
        assert pr.returncode == 0, out
        assert "got IKE_SA_INIT response" in out and "NO_PROPOSAL_CHOSEN" in out, out
    finally:
        s.stop()
    # a TCP server that answers with something else
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", BASE + 9))
    ls.listen(1)
    pr = subprocess.Popen([cli, "probe", "-t", "5", "127.0.0.1:%d" % (BASE + 9)],
                          stdout=subprocess.PIPE, text=True)
    c, _ = ls.accept()
    c.recv(4096)
    c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    c.close()
    ls.close()
    out, _ = pr.communicate(timeout=10)
    assert pr.returncode == 1 and "without an IKE response" in out, (pr.returncode, out)


# ---- TLS and HTTP CONNECT (issue #4) ----------------------------------------------------

PKI = None


def openssl(*args, cwd=None):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, "openssl %s: %s" % (" ".join(args), r.stderr)
    return r.stdout


def pki():
    """Certificates made once per run with the openssl CLI, in the run's temp dir:
    ca (the trust anchor), gw (gw.test + IP 127.0.0.1), gw2 (same names, new key:
    the SIGHUP test), expired (January 2020), wrong (other.test only), and
    other-ca with a gw certificate of its own (an issuer the client does not know)."""
    global PKI
    if PKI:
        return PKI
    d = os.path.join(TMP, "pki")
    os.makedirs(os.path.join(d, "db"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
                "-subj", "/CN=iketcp loopback " + ca, "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)

    def leaf(name, san, ca="ca"):
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\nsubjectAltName=%s\n" % san)
        openssl("req", "-new", *ec, "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + san.split(",")[0].split(":")[1], cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-set_serial", str(0x1000 + len(os.listdir(d))), "-days", "2",
                "-extfile", name + ".ext", "-out", name + ".pem", cwd=d)

    leaf("gw", "DNS:gw.test,IP:127.0.0.1")
    leaf("gw2", "DNS:gw.test,IP:127.0.0.1")
    leaf("wrong", "DNS:other.test")
    leaf("stranger", "DNS:gw.test,IP:127.0.0.1", ca="other-ca")
    # an expired certificate needs explicit dates: "openssl ca" has them
    openssl("req", "-new", *ec, "-keyout", "expired.key", "-out", "expired.csr",
            "-subj", "/CN=gw.test", cwd=d)
    open(os.path.join(d, "db", "index.txt"), "w").close()
    with open(os.path.join(d, "db", "serial"), "w") as f:
        f.write("2001\n")
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = lb\n[lb]\ndatabase = %s/db/index.txt\nserial = %s/db/serial\n"
                "new_certs_dir = %s/db\ncertificate = %s/ca.pem\nprivate_key = %s/ca.key\n"
                "default_md = sha256\npolicy = any\nunique_subject = no\n"
                "[any]\ncommonName = supplied\n" % (d, d, d, d, d))
    openssl("ca", "-batch", "-notext", "-config", "ca.cnf", "-in", "expired.csr", "-out",
            "expired.pem", "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
            "-extfile", "gw.ext", cwd=d)
    PKI = d
    return d


def pkf(name):
    return os.path.join(pki(), name)


def spki_pin(cert):
    """sha256//BASE64 of a certificate's SubjectPublicKeyInfo (curl's pin format)."""
    pub = openssl("x509", "-in", cert, "-pubkey", "-noout")
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub.encode(),
                         capture_output=True, timeout=10, check=True).stdout
    import base64
    import hashlib
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def tls_files(cert="gw"):
    return ["--tls-cert", pkf(cert + ".pem"), "--tls-key", pkf(cert + ".key")]


def tls_client_ctx():
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pkf("ca.pem"))
    return ctx


def tls_connect(port, name="gw.test"):
    """A TLS connection (Python's ssl, verifying against the test CA)."""
    t = tls_client_ctx().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=3),
                                     server_hostname=name)
    t.settimeout(3)
    return t


def client_hello():
    """The bytes of a real TLS ClientHello (made with a memory BIO, never sent)."""
    import ssl
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = tls_client_ctx().wrap_bio(inc, out, server_hostname="gw.test")
    try:
        o.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def wait_log(proc, needle, timeout=5.0):
    """Waits until the process's log contains needle; returns the matching line."""
    end = time.time() + timeout
    while True:
        with open(proc.logname) as f:
            for ln in f:
                if needle in ln:
                    return ln.rstrip("\n")
        assert time.time() < end, "%s: no log line with %r" % (proc.logname, needle)
        time.sleep(0.05)


def log_count(proc, needle):
    with open(proc.logname) as f:
        return sum(needle in ln for ln in f)


def no_datagram(sock, secs=0.7):
    sock.settimeout(secs)
    try:
        d = sock.recvfrom(70000)
        raise AssertionError("unexpected datagram: %r" % (d[0][:40],))
    except socket.timeout:
        pass
    finally:
        sock.settimeout(3)


def server_stats(sock, name="server"):
    return {k[2]: v for k, v in read_stats(sock).items() if k[:2] == ("server", name)}


def client_stats(sock, name="client"):
    return {k[2]: v for k, v in read_stats(sock).items() if k[:2] == ("client", name)}


TLS_PORT = BASE + 10


def test_tls_server_relays_both_ways():
    """listen-tls: a Python TLS client sends the prefix and frames inside TLS;
    the backend gets the datagrams and its answers come back framed, inside TLS."""
    s = Server(["--listen-tls", "127.0.0.1:%d" % TLS_PORT] + tls_files())
    try:
        t = tls_connect(TLS_PORT)
        assert t.version() in ("TLSv1.3", "TLSv1.2"), t.version()
        m = dgram_ike(0x7151)
        t.sendall(b"IKETCP" + frame(m))
        d, src = s.be.recvfrom(70000)
        assert d == m
        s.be.sendto(response_of(m), src)
        assert recv_frame(t) == response_of(m)
        big = [esp(0x715, i, 1400) for i in range(60)]  # several TLS records
        t.sendall(b"".join(frame(e) for e in big))
        assert [s.be.recvfrom(70000)[0] for _ in big] == big
        for e in big:
            s.be.sendto(e, src)
        assert [recv_frame(t) for _ in big] == big
        t.close()
        # a plain RFC 9329 client on the TLS-only port is refused (no ClientHello)
        p = tcp(TLS_PORT)
        p.sendall(b"IKETCP" + frame(dgram_ike(0x7152)))
        assert closed_within(p, 2.0)
        no_datagram(s.be)
    finally:
        s.stop()


def test_tls_sniff_plain_and_tls_on_one_port():
    """A certificate without listen-tls: the plain listen port tells TLS (first
    byte 0x16) from RFC 9329 ('I'); both kinds relay, no byte is lost."""
    sock = os.path.join(TMP, "sniff.sock")
    s = Server(tls_files() + ["--stats-socket", sock])
    try:
        plain, psrc = s.open_session(0x5101)
        t = tls_connect(s.port)
        m = dgram_ike(0x5102)
        t.sendall(b"IKETCP" + frame(m))
        d, tsrc = s.be.recvfrom(70000)
        assert d == m and tsrc != psrc
        s.be.sendto(esp(0x51, 1), tsrc)
        assert recv_frame(t) == esp(0x51, 1)
        s.be.sendto(esp(0x52, 1), psrc)
        assert recv_frame(plain) == esp(0x52, 1)
        # one byte per segment on a plain connection: the peeked 'I' is not lost
        p2 = tcp(s.port)
        for b in b"IKETCP" + frame(dgram_ike(0x5103)):
            p2.sendall(bytes([b]))
            time.sleep(0.002)
        assert s.be.recvfrom(70000)[0] == dgram_ike(0x5103)
        st = server_stats(sock)
        assert st["sniffed_tls"] == 1 and st["sniffed_plain"] >= 2, st
        assert st["tls_handshakes"] == 1, st
        # the opt-out: sniff-tls no makes the port plain only
    finally:
        s.stop()
    s = Server(tls_files() + ["--sniff-tls", "no"])
    try:
        raw = tcp(s.port)
        raw.sendall(client_hello())
        assert closed_within(raw, 2.0)  # 0x16 is a bad prefix there
    finally:
        s.stop()


def test_tls_handshake_timeout_and_pending():
    """A TLS connection that does not finish its handshake in time is closed
    and counted, on the TLS port and on a sniffing plain port; while in the
    handshake it counts against max-pending; another tunnel keeps working."""
    sock = os.path.join(TMP, "hs.sock")
    s = Server(["--listen-tls", "127.0.0.1:%d" % TLS_PORT, "--tls-handshake-timeout", "1s",
                "--prefix-timeout", "5s", "--max-pending", "3", "--stats-socket", sock]
               + tls_files())
    try:
        good = tls_connect(TLS_PORT)
        good.sendall(b"IKETCP" + frame(dgram_ike(0x4701)))
        _, src = s.be.recvfrom(70000)
        hello = client_hello()
        t0 = time.time()
        silent = tcp(TLS_PORT)
        half = tcp(TLS_PORT)
        half.sendall(hello[:len(hello) // 2])
        sniffed = tcp(s.port)  # the plain port: 0x16 then half a ClientHello
        sniffed.sendall(hello[:20])
        time.sleep(0.2)
        # three connections in the handshake: max-pending (3) is reached,
        # and a fourth one pushes out the oldest
        extra = tcp(TLS_PORT)
        assert closed_within(silent, 0.5), "max-pending full: the oldest pending one stayed"
        for name, c in (("half hello", half), ("sniffed half", sniffed), ("extra", extra)):
            assert closed_within(c, 3.0), name
        took = time.time() - t0
        assert 0.9 < took < 2.5, took
        # the tunnel did not notice
        good.sendall(frame(esp(0x470, 1)))
        assert s.be.recvfrom(70000) == (esp(0x470, 1), src)
        s.be.sendto(esp(0x47, 2), src)
        assert recv_frame(good) == esp(0x47, 2)
        st = server_stats(sock)
        assert st["closed_tls_handshake_timeout"] == 3, st
        assert st["tls_handshake_timeouts"] == 3, st
        assert st["pending_evicted"] == 1 and st["closed_evicted"] == 1, st
        assert st["connections_pending"] == 0, st
        # the prefix timeout starts after the handshake: a handshake that
        # took most of a second still gets the whole prefix-timeout
        late = tls_connect(TLS_PORT)
        time.sleep(1.3)  # more than tls-handshake-timeout, less than prefix-timeout
        assert still_open(late, 0.2)
        late.sendall(b"IKETCP" + frame(dgram_ike(0x4702)))
        assert s.be.recvfrom(70000)[0] == dgram_ike(0x4702)
    finally:
        s.stop()


def test_tls_garbage_after_0x16_closes():
    """0x16 followed by bytes that are not a ClientHello: the handshake fails
    at once (not after the timeout) and is counted; nothing reaches the backend."""
    sock = os.path.join(TMP, "garbage.sock")
    s = Server(["--listen-tls", "127.0.0.1:%d" % TLS_PORT, "--tls-handshake-timeout", "5s",
                "--stats-socket", sock] + tls_files())
    try:
        for port in (TLS_PORT, s.port):
            g = tcp(port)
            g.sendall(b"\x16\x03\x01\x00\x30" + b"IKETCP" * 8)
            t0 = time.time()
            assert closed_within(g, 2.0)
            assert time.time() - t0 < 1.5
        g = tcp(s.port)
        g.sendall(b"\x16" + b"\xff" * 300)
        assert closed_within(g, 2.0)
        no_datagram(s.be, 0.3)
        st = server_stats(sock)
        assert st["closed_tls_handshake"] == 3, st
        assert st["tls_handshakes_failed"] == 3, st
        # still serving
        t = tls_connect(TLS_PORT)
        t.sendall(b"IKETCP" + frame(dgram_ike(0x6a)))
        assert s.be.recvfrom(70000)[0] == dgram_ike(0x6a)
    finally:
        s.stop()


class TlsPair(Pair):
    """iketcpd client --tls yes -> iketcpd server listen-tls -> scripted backend
    (send and stop as for Pair)."""

    def __init__(self, client_extra=(), server_extra=(), cert="gw"):
        self.s = Server(["--listen-tls", "127.0.0.1:%d" % TLS_PORT] + tls_files(cert)
                        + list(server_extra))
        self.ikd = udp(BASE + 3)
        self.cport = BASE + 2
        self.csock = os.path.join(TMP, "client-%d.sock" % len(os.listdir(TMP)))
        self.c = start(["client", "--udp", "127.0.0.1:%d" % self.cport,
                        "--peer", "127.0.0.1:%d" % TLS_PORT, "--stats-socket", self.csock,
                        "--enable-tcp", "yes"]
                       + list(client_extra), "client")
        wait_udp(self.cport)


TLS_CLIENT = ["--tls", "yes", "--tls-ca-file", None, "--reconnect-min", "100ms",
              "--reconnect-max", "400ms"]


def tls_client_args(*extra):
    a = list(TLS_CLIENT)
    a[3] = pkf("ca.pem")
    return a + list(extra)


def test_client_tls_relays_and_resumes():
    """Client mode with --tls yes against an iketcpd TLS server: relays both
    ways; after ss -K the flow reconnects, resends its request (R36) and the
    TLS handshake resumes the session (R75), which the client logs."""
    p = TlsPair(tls_client_args("--tls-server-name", "gw.test"))
    try:
        m = dgram_ike(0xE1)
        p.send(m)
        d, src = p.s.be.recvfrom(70000)
        assert d == m
        p.s.be.sendto(response_of(m), src)
        assert p.ikd.recvfrom(70000)[0] == response_of(m)
        line = wait_log(p.c, "connected to 127.0.0.1:%d (connection 1, TLSv1.3" % TLS_PORT)
        assert "new TLS session (not resumed)" in line, line
        for i in range(100):
            p.send(esp(0xE00, i, 1300))
        assert [p.s.be.recvfrom(70000)[0] for _ in range(100)] == \
            [esp(0xE00, i, 1300) for i in range(100)]
        for i in range(100):
            p.s.be.sendto(esp(0xE01, i, 1300), src)
        assert [p.ikd.recvfrom(70000)[0] for _ in range(100)] == \
            [esp(0xE01, i, 1300) for i in range(100)]
        req = dgram_ike(0xE1, spi_r=0x99, ex=37, msgid=1)
        p.send(req)
        assert p.s.be.recvfrom(70000)[0] == req
        subprocess.run(["ss", "-K", "dst", "127.0.0.1", "dport", "=", str(TLS_PORT)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5)
        d, src2 = p.s.be.recvfrom(70000)
        assert d == req and src2 == src
        line = wait_log(p.c, "(connection 2, TLSv1.3")
        assert "TLS session resumed" in line, line
        p.s.be.sendto(response_of(req), src)
        assert p.ikd.recvfrom(70000)[0] == response_of(req)
        st = client_stats(p.csock)
        assert st["tls_handshakes"] == 2 and st["tls_resumed"] == 1, st
        assert st["tls_failures"] == 0, st
    finally:
        p.stop()


def refused(cert, client_extra, reason, server_extra=()):
    """The client must refuse the server's certificate: one clear line with
    the reason and the peer, retries with backoff, nothing relayed."""
    p = TlsPair(client_extra, server_extra, cert=cert)
    try:
        p.send(dgram_ike(0xBAD))
        line = wait_log(p.c, reason)
        assert "cannot connect to 127.0.0.1:%d: TLS handshake failed" % TLS_PORT in line, line
        wait_log(p.c, "retrying in")
        no_datagram(p.s.be, 1.0)
        end = time.time() + 5
        while log_count(p.c, reason) < 2:  # it retries (backoff 100ms, 200ms, ...)
            assert time.time() < end, "no retry"
            time.sleep(0.05)
        st = client_stats(p.csock)
        assert st["tls_failures"] >= 2 and st["connect_failures"] >= 2, st
        assert st["tls_handshakes"] == 0, st
        return line
    finally:
        p.stop()


def test_client_tls_refuses_bad_certificates():
    refused("expired", tls_client_args("--tls-server-name", "gw.test"),
            "certificate has expired")
    refused("wrong", tls_client_args("--tls-server-name", "gw.test"),
            "hostname mismatch (expected gw.test)")
    # no tls-server-name: the peer host (127.0.0.1) is checked against the IP SAN
    refused("wrong", tls_client_args(), "IP address mismatch (expected 127.0.0.1)")
    refused("stranger", tls_client_args("--tls-server-name", "gw.test"),
            "unable to get local issuer certificate")


def test_client_tls_verify_no_connects_anyway():
    p = TlsPair(tls_client_args("--tls-verify", "no"), cert="expired")
    try:
        wait_log(p.c, "tls-verify = no: the peer's TLS certificate is NOT checked")
        m = dgram_ike(0xE2)
        p.send(m)
        d, src = p.s.be.recvfrom(70000)
        assert d == m
        p.s.be.sendto(response_of(m), src)
        assert p.ikd.recvfrom(70000)[0] == response_of(m)
    finally:
        p.stop()


def test_client_tls_pin():
    """tls-pin-sha256: the right SPKI pin connects (also with tls-verify no);
    another key's pin is refused with a clear line."""
    good = spki_pin(pkf("gw.pem"))
    for extra in (["--tls-pin-sha256", good],
                  # the bare base64 may itself contain "//": cut the prefix only
                  ["--tls-pin-sha256", good[len("sha256//"):], "--tls-verify", "no"]):
        p = TlsPair(tls_client_args(*extra))
        try:
            m = dgram_ike(0xE3)
            p.send(m)
            d, src = p.s.be.recvfrom(70000)
            assert d == m
            p.s.be.sendto(response_of(m), src)
            assert p.ikd.recvfrom(70000)[0] == response_of(m)
        finally:
            p.stop()
    refused("gw", tls_client_args("--tls-pin-sha256", spki_pin(pkf("gw2.pem"))),
            "public key pin mismatch")


class ConnectProxy:
    """A tiny HTTP CONNECT proxy (threads): records each request head; with
    auth set, answers 407 unless the right Proxy-Authorization is there."""

    def __init__(self, port, auth=None):
        import threading
        self.auth = auth
        self.heads = []
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", port))
        self.ls.listen(16)
        self.port = port
        self.stopped = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        import threading
        while not self.stopped:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        import base64
        import threading
        c.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            b = c.recv(4096)
            if not b:
                c.close()
                return
            head += b
        text = head.split(b"\r\n\r\n")[0].decode()
        self.heads.append(text)
        lines = text.split("\r\n")
        method, target, _ = lines[0].split(" ")
        if self.auth:
            want = "Proxy-Authorization: Basic " + base64.b64encode(self.auth.encode()).decode()
            if want not in lines[1:]:
                c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                          b"Proxy-Authenticate: Basic realm=\"lb\"\r\nContent-Length: 0\r\n\r\n")
                c.close()
                return
        host, port = target.rsplit(":", 1)
        try:
            u = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        except OSError:
            c.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            c.close()
            return
        c.sendall(b"HTTP/1.1 200 Connection established\r\nX-Test: 1\r\n\r\n")
        c.settimeout(None)
        u.settimeout(None)

        def pump(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pump, args=(c, u), daemon=True).start()
        pump(u, c)

    def close(self):
        self.stopped = True
        try:
            self.ls.shutdown(socket.SHUT_RDWR)  # wakes the accept() thread
        except OSError:
            pass
        self.ls.close()


def test_client_through_http_proxy():
    """proxy http://HOST:PORT: CONNECT to the peer (as given), then TLS inside
    the tunnel; a 407 (no proxy-auth) is logged with its reason and retried,
    nothing relayed; with proxy-auth the proxy sees Basic credentials."""
    pport = BASE + 11
    px = ConnectProxy(pport)
    try:
        p = TlsPair(tls_client_args("--tls-server-name", "gw.test",
                                    "--proxy", "http://127.0.0.1:%d" % pport))
        try:
            m = dgram_ike(0xF1)
            p.send(m)
            d, src = p.s.be.recvfrom(70000)
            assert d == m
            p.s.be.sendto(response_of(m), src)
            assert p.ikd.recvfrom(70000)[0] == response_of(m)
            assert px.heads[0].startswith("CONNECT 127.0.0.1:%d HTTP/1.1\r\n" % TLS_PORT), px.heads
            assert "Proxy-Authorization" not in px.heads[0]
            wait_log(p.c, "via proxy 127.0.0.1:%d (connection 1, TLSv1.3" % pport)
        finally:
            p.stop()
    finally:
        px.close()
    # plain RFC 9329 through the proxy as well
    px = ConnectProxy(pport)
    try:
        p = Pair(["--proxy", "http://127.0.0.1:%d" % pport])
        try:
            m = dgram_ike(0xF2)
            p.send(m)
            d, src = p.s.be.recvfrom(70000)
            assert d == m
            p.s.be.sendto(response_of(m), src)
            assert p.ikd.recvfrom(70000)[0] == response_of(m)
            assert px.heads[0].startswith("CONNECT 127.0.0.1:%d " % p.s.port), px.heads
        finally:
            p.stop()
    finally:
        px.close()
    px = ConnectProxy(pport, auth="alice:s3cr:et")
    try:
        p = TlsPair(tls_client_args("--tls-server-name", "gw.test",
                                    "--proxy", "http://127.0.0.1:%d" % pport))
        try:
            p.send(dgram_ike(0xF3))
            # the needle must not be a bare number: "407" also matches a port
            # such as 24072 in the client's start-up line (a CI failure)
            line = wait_log(p.c, "refused CONNECT: 407")
            assert "proxy: refused CONNECT: 407 Proxy Authentication Required" in line, line
            assert "via proxy 127.0.0.1:%d" % pport in line, line
            no_datagram(p.s.be, 1.0)
            st = client_stats(p.csock)
            assert st["proxy_failures"] >= 1 and st["connect_failures"] >= 1, st
        finally:
            p.stop()
        p = TlsPair(tls_client_args("--tls-server-name", "gw.test",
                                    "--proxy", "http://127.0.0.1:%d" % pport,
                                    "--proxy-auth", "alice:s3cr:et"))
        try:
            m = dgram_ike(0xF4)
            p.send(m)
            d, src = p.s.be.recvfrom(70000)
            assert d == m
            p.s.be.sendto(response_of(m), src)
            assert p.ikd.recvfrom(70000)[0] == response_of(m)
            assert "Proxy-Authorization: Basic YWxpY2U6czNjcjpldA==" in px.heads[-1], px.heads
            assert log_count(p.c, "s3cr") == 0, "the password is in the log"
        finally:
            p.stop()
    finally:
        px.close()


def test_tls_sighup_new_certificate():
    """SIGHUP reads the certificate again: new connections get the new one, an
    established TLS connection keeps relaying; a broken file keeps the last
    good certificate and the error names the file."""
    import shutil
    import ssl
    d = os.path.join(TMP, "hup")
    os.makedirs(d, exist_ok=True)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    shutil.copy(pkf("gw.pem"), cert)
    shutil.copy(pkf("gw.key"), key)
    conf = os.path.join(d, "hup.conf")
    be_port = BASE + 9
    with open(conf, "w") as f:
        f.write("[server gw]\nlisten-tls = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\n"
                "tls-cert = %s\ntls-key = %s\n" % (TLS_PORT, be_port, cert, key))
    be = udp(be_port)
    p = start(["-c", conf], "hup")

    def der(name):
        return ssl.PEM_cert_to_DER_cert(open(pkf(name)).read())

    try:
        wait_port(TLS_PORT)
        old = tls_connect(TLS_PORT)
        assert old.getpeercert(binary_form=True) == der("gw.pem")
        old.sendall(b"IKETCP" + frame(dgram_ike(0x4B1)))
        _, src = be.recvfrom(70000)
        shutil.copy(pkf("gw2.pem"), cert)
        shutil.copy(pkf("gw2.key"), key)
        p.send_signal(signal.SIGHUP)
        wait_log(p, "TLS certificate %s loaded" % cert)
        new = tls_connect(TLS_PORT)
        assert new.getpeercert(binary_form=True) == der("gw2.pem")
        old.sendall(frame(esp(0x4B0, 1)))
        assert be.recvfrom(70000) == (esp(0x4B0, 1), src)
        be.sendto(esp(0x4B, 2), src)
        assert recv_frame(old) == esp(0x4B, 2)
        # a broken certificate file: refused, the last good one stays
        with open(cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        p.send_signal(signal.SIGHUP)
        line = wait_log(p, "keeping the previous TLS certificate")
        assert "tls-cert %s" % cert in line, line
        again = tls_connect(TLS_PORT)
        assert again.getpeercert(binary_form=True) == der("gw2.pem")
        again.sendall(b"IKETCP" + frame(dgram_ike(0x4B2)))
        assert be.recvfrom(70000)[0] == dgram_ike(0x4B2)
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(5) == 0
        be.close()


def test_tls_config_checks():
    """iketcpd -n builds the TLS contexts: a missing or mismatched file is an
    error naming the key and the file; the options are the documented words."""
    r = subprocess.run([IKETCPD, "server", "--listen-tls", "127.0.0.1:1", "--tls-cert",
                        "/nonexistent/c.pem", "--tls-key", pkf("gw.key"), "-n"],
                       capture_output=True, text=True, timeout=5)
    assert r.returncode == 1 and "tls-cert /nonexistent/c.pem" in r.stderr, r.stderr
    r = subprocess.run([IKETCPD, "server", "--listen-tls", "127.0.0.1:1", "--tls-cert",
                        pkf("gw.pem"), "--tls-key", pkf("gw2.key"), "-n"],
                       capture_output=True, text=True, timeout=5)
    assert r.returncode == 1 and "tls-key" in r.stderr, r.stderr
    r = subprocess.run([IKETCPD, "-v", "server", "--listen-tls", "127.0.0.1:1", "--tls-cert",
                        pkf("gw.pem"), "--tls-key", pkf("gw.key"), "--tls-ciphers", "NOPE", "-n"],
                       capture_output=True, text=True, timeout=5)
    assert r.returncode == 1 and "tls-ciphers NOPE" in r.stderr, r.stderr
    r = subprocess.run([IKETCPD, "-v", "client", "--udp", "127.0.0.1:1", "--peer",
                        "gw.test:443", "--tls", "yes", "--tls-ca-file", pkf("ca.pem"),
                        "--proxy", "http://127.0.0.1:3128", "-n"],
                       capture_output=True, text=True, timeout=5)
    assert r.returncode == 0, r.stderr
    assert "proxy = http://127.0.0.1:3128\n" in r.stdout and "tls = yes\n" in r.stdout, r.stdout


def test_tls_close_notify_on_graceful_close():
    """A15: where iketcpd ends a TLS connection itself it sends close_notify,
    then FIN: the server when it drains on SIGTERM, the client when a flow
    ends (flow-timeout). The Python peers refuse a FIN without close_notify
    (suppress_ragged_eofs=False raises SSLEOFError)."""
    import ssl
    s = Server(["--listen-tls", "127.0.0.1:%d" % TLS_PORT] + tls_files())
    try:
        raw = socket.create_connection(("127.0.0.1", TLS_PORT), timeout=3)
        t = tls_client_ctx().wrap_socket(raw, server_hostname="gw.test",
                                          suppress_ragged_eofs=False)
        t.settimeout(3)
        t.sendall(b"IKETCP" + frame(dgram_ike(0xC10)))
        s.be.recvfrom(70000)
    finally:
        s.stop()
    assert t.recv(100) == b"", "no clean TLS close"  # SSLEOFError without close_notify
    # the client: a Python TLS responder sees the flow end with close_notify
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(pkf("gw.pem"), pkf("gw.key"))
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", TLS_PORT))
    ls.listen(4)
    ls.settimeout(5)
    ikd = udp(BASE + 3)
    c = start(["client", "--udp", "127.0.0.1:%d" % (BASE + 2), "--peer",
               "127.0.0.1:%d" % TLS_PORT, "--flow-timeout", "1s", "--enable-tcp", "yes"]
              + tls_client_args(), "client")
    try:
        wait_udp(BASE + 2)
        m = dgram_ike(0xC11)
        t0 = time.time()  # the flow's last activity: flow-timeout counts from here
        ikd.sendto(m, ("127.0.0.1", BASE + 2))
        conn, _ = ls.accept()
        tc = sctx.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False)
        tc.settimeout(5)
        assert recv_exact(tc, 6) == b"IKETCP"  # the first application data (A2)
        assert recv_frame(tc) == m
        assert tc.recv(100) == b"", "no clean TLS close"
        assert 0.9 < time.time() - t0 < 5, time.time() - t0
        wait_log(c, "idle for")
    finally:
        ls.close()
        ikd.close()
        c.send_signal(signal.SIGTERM)
        assert c.wait(5) == 0


def stop_client(c, *socks):
    """SIGTERM to an iketcpd started by start(), closes socks; returns its
    exit status (asserted by the caller after its finally: block)."""
    c.send_signal(signal.SIGTERM)
    rc = c.wait(5)
    for x in socks:
        if x:
            x.close()
    return rc


def test_client_request_survives_failed_first_connect():
    """The peer is down when the local daemon sends its IKE_SA_INIT: the
    attempts fail, and once the peer listens the request goes out without
    waiting for the daemon's retransmission (R36); that retransmission then
    finds the request on the open connection and is dropped (R35). (A bug
    found by the name-lookup tests: the request was lost with the failed
    attempt's queue and every retransmission was dropped as a duplicate.)"""
    sock = os.path.join(TMP, "firstfail.sock")
    ikd, cport, sport = udp(BASE + 3), BASE + 2, BASE
    c = start(["client", "--udp", "127.0.0.1:%d" % cport, "--peer", "127.0.0.1:%d" % sport,
               "--reconnect-max", "200ms", "--stats-socket", sock, "--enable-tcp", "yes"],
              "client")
    s = None
    try:
        wait_udp(cport)
        m = dgram_ike(0xF7)
        ikd.sendto(m, ("127.0.0.1", cport))
        line = wait_log(c, "cannot connect to 127.0.0.1:%d" % sport)
        assert "Connection refused" in line, line
        s = Server()
        d, src = s.be.recvfrom(70000)
        assert d == m, d
        wait_log(c, "connected to 127.0.0.1:%d" % sport)
        ikd.sendto(m, ("127.0.0.1", cport))  # the daemon's retransmission
        no_datagram(s.be, 0.5)
        st = client_stats(sock)
        assert st["retransmits_dropped"] == 1 and st["requests_resent"] == 1, st
        s.be.sendto(response_of(m), src)
        assert ikd.recvfrom(70000)[0] == response_of(m)
    finally:
        rc = stop_client(c, ikd)
        if s:
            s.stop()
    assert rc == 0, rc


# ---- who may send to the client's --udp address (local-peer) ------------------

def udp_at(ip, port=0):
    """A UDP socket on another loopback address (127.0.0.2 is as local as
    127.0.0.1 on Linux): a second local sender."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    s.settimeout(3)
    return s


def recv_or_none(sock, secs):
    sock.settimeout(secs)
    try:
        return sock.recvfrom(70000)[0]
    except socket.timeout:
        return None
    finally:
        sock.settimeout(3)


def wait_client_stat(sock, key, want, name="client", timeout=5.0):
    """Polls the stats socket until counter key equals want; returns the counters."""
    end = time.time() + timeout
    while True:
        st = client_stats(sock, name)
        if st.get(key) == want:
            return st
        assert time.time() < end, "%s never became %d: %s" % (key, want, st)
        time.sleep(0.05)


def test_client_foreign_esp_does_not_redirect():
    """An ESP datagram with a flow's SPI from a sender that is not the local
    IKE daemon (local-peer auto pinned the daemon's address and port) is
    dropped and counted: it does not reach the peer, and the peer's traffic
    keeps going to the daemon. Before local-peer it was relayed and the flow's
    replies went to the last sender."""
    sock = os.path.join(TMP, "foreign-esp.sock")
    p = Pair(["--stats-socket", sock])
    evil = [udp_at("127.0.0.2"), udp_at("127.0.0.1")]  # another address, another port
    try:
        m = dgram_ike(0xD1)
        p.send(m)
        d, src = p.s.be.recvfrom(70000)
        assert d == m, d
        p.s.be.sendto(response_of(m), src)
        assert p.ikd.recvfrom(70000)[0] == response_of(m)
        p.send(esp(0xD00, 1))  # the flow's SPI, now known to the client
        assert p.s.be.recvfrom(70000)[0] == esp(0xD00, 1)
        for n, e in enumerate(evil, 1):
            e.sendto(esp(0xD00, 99), ("127.0.0.1", p.cport))
            relayed = recv_or_none(p.s.be, 0.5)  # old behaviour: relayed at once
            p.s.be.sendto(esp(0xE00, n), src)
            stolen = recv_or_none(e, 0.5)
            assert stolen is None, "peer->initiator ESP went to foreign sender %s" % (
                e.getsockname(),)
            assert p.ikd.recvfrom(70000)[0] == esp(0xE00, n)
            assert relayed is None, "foreign ESP reached the peer: %r" % relayed[:8]
            wait_client_stat(sock, "udp_foreign_drops", n)
        p.send(esp(0xD00, 2))  # the daemon itself still gets through
        assert p.s.be.recvfrom(70000)[0] == esp(0xD00, 2)
        st = client_stats(sock)
        assert st["udp_foreign_drops"] == 2 and st["from_local"] == 3, st
        wait_log(p.c, "dropped: not the local IKE daemon (local-peer auto, pinned to "
                 "127.0.0.1:%d)" % (BASE + 3))
    finally:
        for e in evil:
            e.close()
        p.stop()


def test_client_foreign_ike_sa_init_creates_no_flow():
    """IKE_SA_INITs from another local address create no flow (before
    local-peer, 256 of them filled max-flows and locked the daemon out): here
    40 against max-flows 4. Then the daemon "restarts" on a new port of the
    same address: its IKE_SA_INIT moves the pin (the old port's flows close),
    and its replies go to the new port."""
    sock = os.path.join(TMP, "foreign-init.sock")
    p = Pair(["--max-flows", "4", "--stats-socket", sock])
    evil = udp_at("127.0.0.2")
    ikd2 = None
    try:
        m = dgram_ike(0xE1)
        p.send(m)
        d, src = p.s.be.recvfrom(70000)
        assert d == m, d
        p.s.be.sendto(response_of(m), src)
        assert p.ikd.recvfrom(70000)[0] == response_of(m)
        for i in range(40):
            evil.sendto(dgram_ike(0x5000 + i), ("127.0.0.1", p.cport))
        m2 = dgram_ike(0xE2)
        p.send(m2)  # after the flood: the client reads it last
        got = []
        while True:
            d = recv_or_none(p.s.be, 5.0)
            assert d is not None, "the daemon's IKE_SA_INIT never reached the peer; got %d " \
                "others first" % len(got)
            if d == m2:
                break
            got.append(d)
        assert not got, "%d foreign IKE_SA_INITs reached the peer" % len(got)
        st = client_stats(sock)
        assert st["flows"] == 2 and st["flows_created"] == 2, st
        assert st["udp_foreign_drops"] == 40, st
        # the daemon restarts on another port of 127.0.0.1
        ikd2 = udp(0)
        m3 = dgram_ike(0xE3)
        ikd2.sendto(m3, ("127.0.0.1", p.cport))
        d, src3 = p.s.be.recvfrom(70000)
        assert d == m3, d
        p.s.be.sendto(response_of(m3), src3)
        assert ikd2.recvfrom(70000)[0] == response_of(m3)
        wait_log(p.c, "local IKE daemon moved from 127.0.0.1:%d to 127.0.0.1:%d" %
                 (BASE + 3, ikd2.getsockname()[1]))
        st = wait_client_stat(sock, "flows", 1)
        p.send(esp(0xD00, 1))  # the old port is foreign now
        wait_client_stat(sock, "udp_foreign_drops", 41)
    finally:
        evil.close()
        if ikd2:
            ikd2.close()
        p.stop()


def test_client_local_peer_refuses_other_first_sender():
    """local-peer ADDR: the first sender is refused when it is not ADDR (any
    port of ADDR is fine); local-peer ADDR:PORT also refuses other ports."""
    sock = os.path.join(TMP, "local-peer.sock")
    p = Pair(["--local-peer", "127.0.0.2", "--stats-socket", sock])
    good = udp_at("127.0.0.2")
    try:
        m1 = dgram_ike(0xF1)
        p.send(m1)  # 127.0.0.1 is first, but not local-peer
        m2 = dgram_ike(0xF2)
        good.sendto(m2, ("127.0.0.1", p.cport))
        d, src = p.s.be.recvfrom(70000)
        assert d == m2, "the refused sender's IKE_SA_INIT reached the peer: %r" % d[:12]
        p.s.be.sendto(response_of(m2), src)
        assert good.recvfrom(70000)[0] == response_of(m2)
        st = client_stats(sock)
        assert st["udp_foreign_drops"] == 1 and st["flows"] == 1, st
        wait_log(p.c, "datagram from 127.0.0.1:%d dropped: not the local IKE daemon "
                 "(local-peer 127.0.0.2 (any port))" % (BASE + 3))
    finally:
        good.close()
        p.stop()
    p = Pair(["--local-peer", "127.0.0.1:%d" % (BASE + 3), "--stats-socket", sock])
    other = udp(0)
    try:
        other.sendto(dgram_ike(0xF3), ("127.0.0.1", p.cport))
        m4 = dgram_ike(0xF4)
        p.send(m4)
        assert p.s.be.recvfrom(70000)[0] == m4
        st = client_stats(sock)
        assert st["udp_foreign_drops"] == 1 and st["flows"] == 1, st
    finally:
        other.close()
        p.stop()


def test_client_local_peer_reload():
    """SIGHUP with a new local-peer address pins it at once: the flows of the
    sender pinned until then close, and that sender is foreign from now on."""
    conf = os.path.join(TMP, "local-peer.conf")
    sock = os.path.join(TMP, "local-peer-reload.sock")
    s = Server()
    ikd = udp(BASE + 3)
    other = udp_at("127.0.0.2")

    def write(extra):
        with open(conf, "w") as f:
            f.write("stats-socket = %s\n[client c]\nudp = 127.0.0.1:%d\npeer = 127.0.0.1:%d\n"
                    "enable-tcp = yes\n%s" % (sock, BASE + 2, s.port, extra))
    write("")
    c = start(["-c", conf], "client")
    try:
        wait_udp(BASE + 2)
        m = dgram_ike(0xA7)
        ikd.sendto(m, ("127.0.0.1", BASE + 2))
        assert s.be.recvfrom(70000)[0] == m
        wait_client_stat(sock, "flows", 1, "c")
        write("local-peer = 127.0.0.2\n")
        c.send_signal(signal.SIGHUP)
        wait_log(c, "configuration reloaded")
        wait_client_stat(sock, "flows", 0, "c")
        ikd.sendto(esp(0xA00, 1), ("127.0.0.1", BASE + 2))
        wait_client_stat(sock, "udp_foreign_drops", 1, "c")
        m2 = dgram_ike(0xA8)
        other.sendto(m2, ("127.0.0.1", BASE + 2))
        assert s.be.recvfrom(70000)[0] == m2
        wait_client_stat(sock, "flows", 1, "c")
    finally:
        rc = stop_client(c, ikd, other)
        s.stop()
    assert rc == 0, rc


# ---- name lookups of the client's peer and proxy -------------------------------

def slowdns(mapping):
    """Environment that preloads the resolver test double (slowdns.c) into
    iketcpd: names in mapping ({name: (delay_ms, address or "FAIL")}) are
    answered from a file the test may rewrite; lookups are logged."""
    lib = os.environ.get("IKETCP_SLOWDNS") or os.path.join(os.path.dirname(IKETCPD), "slowdns.so")
    assert os.path.exists(lib), "resolver test double not built: %s" % lib
    env = dict(os.environ, LD_PRELOAD=lib, SLOWDNS_FILE=os.path.join(TMP, "slowdns.map"),
               SLOWDNS_LOG=os.path.join(TMP, "slowdns.log"))
    # a preloaded library ahead of the sanitizer runtime is intended here
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    slowdns_map(env, mapping)
    if os.path.exists(env["SLOWDNS_LOG"]):
        os.unlink(env["SLOWDNS_LOG"])
    return env


def slowdns_map(env, mapping):
    tmp = env["SLOWDNS_FILE"] + ".new"
    with open(tmp, "w") as f:
        for name, (delay, addr) in mapping.items():
            f.write("%s %d %s\n" % (name, delay, addr))
    os.rename(tmp, env["SLOWDNS_FILE"])  # a lookup never sees half a file


def slowdns_lookups(env):
    """[(name, thread id, process id)] of the lookups made so far."""
    try:
        with open(env["SLOWDNS_LOG"]) as f:
            return [(n, int(t), int(p)) for n, t, p in (ln.split() for ln in f)]
    except FileNotFoundError:
        return []


def test_client_name_lookup_off_the_loop():
    """A peer name that takes 3 s to resolve must not stall the process: a
    server section in the same iketcpd relays at once meanwhile, and the
    client's first IKE request goes out when the name has resolved. The
    lookup runs in another thread than the loop's."""
    sport, bport, cport = BASE + 12, BASE + 13, BASE + 14
    conf, sock = os.path.join(TMP, "dns.conf"), os.path.join(TMP, "dns.sock")
    with open(conf, "w") as f:
        f.write("stats-socket = %s\n[server gw]\nlisten = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\n"
                "[client c]\nudp = 127.0.0.1:%d\npeer = gw.slowdns.test:%d\nenable-tcp = yes\n"
                % (sock, sport, bport, cport, sport))
    env = slowdns({"gw.slowdns.test": (3000, "127.0.0.1")})
    be, ikd = udp(bport), udp(BASE + 15)
    t0 = time.time()
    p = start(["-c", conf], "dns", env)
    try:
        wait_udp(cport)
        m = dgram_ike(0xC1)
        ikd.sendto(m, ("127.0.0.1", cport))
        # the server section answers while the client's name is looked up
        wait_port(sport)
        t = tcp(sport)
        direct = dgram_ike(0xD1)
        t1 = time.time()
        t.sendall(b"IKETCP" + frame(direct))
        d, _ = be.recvfrom(70000)
        took = time.time() - t1
        assert d == direct, d
        assert took < 1.0, "the server section waited %.2fs for a name lookup" % took
        # the proof: the relay happened while the lookup was still running
        assert log_count(p, "peer gw.slowdns.test is") == 0, "the lookup ended early"
        # the client's request waited for the name, then went out
        be.settimeout(8)
        d, src = be.recvfrom(70000)
        assert d == m, d
        assert time.time() - t0 > 2.5, "sent before the name resolved"
        line = wait_log(p, "peer gw.slowdns.test is 127.0.0.1:%d" % sport)
        be.sendto(response_of(m), src)
        assert ikd.recvfrom(70000)[0] == response_of(m)
        looks = slowdns_lookups(env)
        assert len(looks) == 1 and looks[0][0] == "gw.slowdns.test", looks
        assert looks[0][1] != looks[0][2] and looks[0][2] == p.pid, \
            "the lookup ran on the loop's thread: %s" % (looks,)
        st = client_stats(sock, "c")
        assert st["resolves"] == 1 and st["resolve_failures"] == 0, st
        assert st["connect_failures"] == 0, st
    finally:
        rc = stop_client(p, be, ikd)
    assert rc == 0, rc


def test_client_name_lookup_fails_then_follows_change():
    """A name that does not resolve: each attempt fails with the resolver's
    reason and backs off, nothing is relayed. Once it resolves, the pending
    request goes out (R36). When the name moves to another address and the
    connection breaks, the next lookup finds the new one and the flow
    reconnects there."""
    sock = os.path.join(TMP, "dnsfail.sock")
    env = slowdns({"gw.slowdns.test": (0, "FAIL")})
    s = Server()
    ikd = udp(BASE + 3)
    cport = BASE + 2
    c = start(["client", "--udp", "127.0.0.1:%d" % cport, "--peer", "gw.slowdns.test:%d" % s.port,
               "--reconnect-max", "300ms", "--resolve-interval", "1ms",
               "--stats-socket", sock, "--enable-tcp", "yes"], "client", env)
    s2 = be2 = None
    try:
        wait_udp(cport)
        m = dgram_ike(0xE1)
        ikd.sendto(m, ("127.0.0.1", cport))
        line = wait_log(c, "cannot resolve the name")
        assert "cannot connect to gw.slowdns.test:%d" % s.port in line, line
        assert "Name or service not known" in line, line
        wait_log(c, "retrying in")
        no_datagram(s.be, 0.5)
        st = client_stats(sock)
        assert st["resolve_failures"] >= 2 and st["connect_failures"] >= 2, st
        assert st["resolves"] == 0 and st["connects"] == 0, st
        # the name appears: the remembered request goes out
        slowdns_map(env, {"gw.slowdns.test": (0, "127.0.0.1")})
        d, src = s.be.recvfrom(70000)
        assert d == m, d
        s.be.sendto(response_of(m), src)
        assert ikd.recvfrom(70000)[0] == response_of(m)
        wait_log(c, "peer gw.slowdns.test is 127.0.0.1:%d" % s.port)
        # the name moves to 127.0.0.2, where another server listens
        be2 = udp(BASE + 5)
        s2 = start(["server", "--listen", "127.0.0.2:%d" % s.port,
                    "--backend", "127.0.0.1:%d" % (BASE + 5)], "server2")
        end = time.time() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.2", s.port), timeout=0.2).close()
                break
            except OSError:
                assert time.time() < end, "second server never listened"
                time.sleep(0.02)
        slowdns_map(env, {"gw.slowdns.test": (0, "127.0.0.2")})
        s.stop()  # the first server goes away: the connection breaks
        wait_log(c, "peer gw.slowdns.test is now 127.0.0.2:%d (was 127.0.0.1:%d)"
                 % (s.port, s.port))
        wait_log(c, "connected to 127.0.0.2:%d" % s.port)
        # the same IKE SA starts over there (a new server knows no session
        # of it): its IKE_SA_INIT goes by the moved flow
        ikd.sendto(m, ("127.0.0.1", cport))
        assert be2.recvfrom(70000)[0] == m
        st = client_stats(sock)
        assert st["flows_created"] == 1, st
        st = client_stats(sock)
        assert st["resolves"] >= 2, st
    finally:
        rc = stop_client(c, be2, ikd)
        if s2:
            assert stop_client(s2) == 0
        if s.p.poll() is None:
            s.stop()
    assert rc == 0, rc


def test_client_tries_next_address():
    """A name with two addresses, the first one dead (nothing listens
    there): the failed attempt moves the section to the second address, the
    pending request goes out there, and later attempts stay on it."""
    sock = os.path.join(TMP, "nextaddr.sock")
    s = Server()
    env = slowdns({"gw.slowdns.test": (0, "127.0.0.3,127.0.0.1")})
    ikd, cport = udp(BASE + 3), BASE + 2
    c = start(["client", "--udp", "127.0.0.1:%d" % cport, "--peer", "gw.slowdns.test:%d" % s.port,
               "--reconnect-max", "200ms", "--stats-socket", sock, "--enable-tcp", "yes"],
              "client", env)
    try:
        wait_log(c, "peer gw.slowdns.test is 127.0.0.3:%d (and 1 more address)" % s.port)
        m = dgram_ike(0xEA)
        ikd.sendto(m, ("127.0.0.1", cport))
        line = wait_log(c, "cannot connect to 127.0.0.3:%d" % s.port)
        assert "Connection refused" in line, line
        wait_log(c, "peer gw.slowdns.test: next attempt to address 2 of 2, 127.0.0.1:%d" % s.port)
        d, src = s.be.recvfrom(70000)
        assert d == m, d
        s.be.sendto(response_of(m), src)
        assert ikd.recvfrom(70000)[0] == response_of(m)
        wait_log(c, "connected to 127.0.0.1:%d" % s.port)
        st = client_stats(sock)
        assert st["connect_failures"] == 1 and st["connects"] == 2, st
    finally:
        rc = stop_client(c, ikd)
        s.stop()
    assert rc == 0, rc


def test_client_udp_mode_waits_for_name():
    """enable-tcp no: a datagram before the peer's name resolved is dropped
    and said (the local daemon retransmits); the next one goes by UDP."""
    pport, cport = BASE + 16, BASE + 2
    env = slowdns({"peer.slowdns.test": (1000, "127.0.0.1")})
    peer, ikd = udp(pport), udp(BASE + 3)
    c = start(["client", "--udp", "127.0.0.1:%d" % cport, "--peer",
               "peer.slowdns.test:%d" % pport, "--enable-tcp", "no"], "client", env)
    try:
        wait_udp(cport)
        m = dgram_ike(0xE7)
        ikd.sendto(m, ("127.0.0.1", cport))
        wait_log(c, "peer peer.slowdns.test not resolved yet; datagram dropped")
        wait_log(c, "peer peer.slowdns.test is 127.0.0.1:%d" % pport)
        no_datagram(peer, 0.2)
        ikd.sendto(m, ("127.0.0.1", cport))
        d, src = peer.recvfrom(70000)
        assert d == m, d
        peer.sendto(response_of(m), src)
        assert ikd.recvfrom(70000)[0] == response_of(m)
    finally:
        rc = stop_client(c, peer, ikd)
    assert rc == 0, rc


def test_client_reload_drops_lookup_in_flight():
    """SIGHUP changes the peer's name while the old name is still being
    looked up: the old answer is thrown away when it comes (its thread
    outlives the lookup), the new name is used."""
    conf, cport = os.path.join(TMP, "dnshup.conf"), BASE + 2
    env = slowdns({"old.slowdns.test": (1500, "127.0.0.9"), "new.slowdns.test": (0, "127.0.0.1")})
    s = Server()
    ikd = udp(BASE + 3)

    def write(name):
        with open(conf, "w") as f:
            f.write("[client c]\nudp = 127.0.0.1:%d\npeer = %s:%d\nenable-tcp = yes\n"
                    % (cport, name, s.port))
    write("old.slowdns.test")
    c = start(["-c", conf], "dnshup", env)
    try:
        wait_udp(cport)
        write("new.slowdns.test")
        c.send_signal(signal.SIGHUP)
        wait_log(c, "peer new.slowdns.test is 127.0.0.1:%d" % s.port)
        m = dgram_ike(0xE9)
        ikd.sendto(m, ("127.0.0.1", cport))
        assert s.be.recvfrom(70000)[0] == m
        end = time.time() + 5
        while len(slowdns_lookups(env)) < 2:
            assert time.time() < end, slowdns_lookups(env)
            time.sleep(0.05)
        time.sleep(1.8)  # the old lookup's answer arrives, to nobody
        assert log_count(c, "old.slowdns.test is") == 0
        assert c.poll() is None, "iketcpd died"
        wait_log(c, "connected to 127.0.0.1:%d" % s.port)
    finally:
        rc = stop_client(c, ikd)
        s.stop()
    assert rc == 0, rc


# ---- privileges and descriptors (user/group, RLIMIT_NOFILE) -------------------------

CAP_NET_BIND_SERVICE = 10
CAP_SYS_RESOURCE = 24


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(ln.rstrip("\n").split(":\t", 1) for ln in f if ":\t" in ln)


def proc_nofile(pid):
    """(soft, hard) 'Max open files' of a process; -1 for unlimited."""
    with open("/proc/%d/limits" % pid) as f:
        for ln in f:
            if ln.startswith("Max open files"):
                v = ln.split()[3:5]
                return tuple(-1 if x == "unlimited" else int(x) for x in v)
    raise AssertionError("no Max open files in /proc/%d/limits" % pid)


def nobody():
    import pwd
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def nobody_dir():
    """A directory nobody can read and write (TMP is root's, mode 0700)."""
    d = tempfile.mkdtemp(prefix="iketcpd-nobody-")
    uid, gid = nobody()
    os.chown(d, uid, gid)
    os.chmod(d, 0o755)
    return d


def low_ports():
    """Two ports below 1024 that differ between runs of different BASE."""
    b = 600 + ((BASE // 20) % 200) * 2
    return b, b + 1


def assert_runs_as_nobody(pid, caps):
    uid, gid = nobody()
    st = proc_status(pid)
    assert st["Uid"].split() == [str(uid)] * 4, st["Uid"]
    assert st["Gid"].split() == [str(gid)] * 4, st["Gid"]
    assert "0" not in st["Groups"].split(), st["Groups"]
    for k in ("CapEff", "CapPrm"):
        assert int(st[k], 16) == caps, "%s %s, want %x" % (k, st[k], caps)
    assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0, st


def test_priv_user_nobody():
    """user = nobody: every uid and gid is nobody's, no capability is left
    (no port below 1024), and it still relays both ways, serves the stats
    socket made as root, removes it at exit (its directory is nobody's) and
    exits 0 on SIGTERM."""
    if os.geteuid() != 0:
        print("SKIP test_priv_user_nobody: needs root")
        return
    import shutil
    d = nobody_dir()
    sock = os.path.join(d, "stats.sock")
    try:
        s = Server(["--user", "nobody", "--stats-socket", sock])
        try:
            wait_log(s.p, "running as user nobody")
            assert_runs_as_nobody(s.p.pid, 0)
            t, src = s.open_session(0x9001)
            s.be.sendto(response_of(dgram_ike(0x9001)), src)
            assert recv_frame(t) == response_of(dgram_ike(0x9001))
            t.sendall(frame(esp(0x901, 1)))
            assert s.be.recvfrom(70000) == (esp(0x901, 1), src)
            assert server_stats(sock)["accepted"] >= 1
            assert log_count(s.p, "not writable by user") == 0
        finally:
            s.stop()
        assert not os.path.exists(sock), "stats socket left behind"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_priv_low_port_keeps_only_bind():
    """A port below 1024 keeps CAP_NET_BIND_SERVICE and nothing else, so a
    reload (the config file readable by nobody) can bind another low port."""
    if os.geteuid() != 0:
        print("SKIP test_priv_low_port_keeps_only_bind: needs root")
        return
    import shutil
    lo1, lo2 = low_ports()
    d = nobody_dir()
    conf = os.path.join(d, "low.conf")
    be = udp(BASE + 9)
    with open(conf, "w") as f:
        f.write("user = nobody\n[server gw]\nlisten = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\n"
                % (lo1, BASE + 9))
    os.chmod(conf, 0o644)
    p = start(["-c", conf], "lowport")
    try:
        wait_log(p, "running as user nobody")
        assert_runs_as_nobody(p.pid, 1 << CAP_NET_BIND_SERVICE)
        with open(conf, "a") as f:
            f.write("listen = 127.0.0.1:%d\n" % lo2)
        p.send_signal(signal.SIGHUP)
        wait_port(lo2)
        t = tcp(lo2)
        m = dgram_ike(0x9002)
        t.sendall(b"IKETCP" + frame(m))
        assert be.recvfrom(70000)[0] == m
        t.close()
        assert_runs_as_nobody(p.pid, 1 << CAP_NET_BIND_SERVICE)
    finally:
        be.close()
        shutil.rmtree(d, ignore_errors=True)
        p.send_signal(signal.SIGTERM)
        assert p.wait(5) == 0


CAP_NET_ADMIN = 12


def outer_conn(port):
    """ss -e of the established connection(s) to port (the client's side)."""
    out = subprocess.run(["ss", "-tnHe", "state", "established", "( dport = :%d )" % port],
                         capture_output=True, text=True, check=True).stdout
    return [ln for ln in out.splitlines() if ln.strip()]


def test_client_outer_mark_kept_after_switch():
    """Full-tunnel clients: mark = 0x42 puts SO_MARK on the outer TCP socket
    (ss shows fwmark:0x42), and with user = nobody iketcpd keeps
    CAP_NET_ADMIN (and nothing else) for it, since connections are made
    after the switch. Without mark and with bypass-policy no: no mark, no
    capability."""
    if os.geteuid() != 0 or not shutil.which("ss"):
        print("SKIP test_client_outer_mark_kept_after_switch: needs root and ss")
        return
    for extra, mark, caps in (
            (["--mark", "0x42", "--bypass-policy", "yes"], "fwmark:0x42", 1 << CAP_NET_ADMIN),
            (["--bypass-policy", "no"], None, 0)):
        p = Pair(["--user", "nobody"] + extra)
        try:
            wait_log(p.c, "running as user nobody")
            m = dgram_ike(0xF7)
            p.send(m)
            d, src = p.s.be.recvfrom(70000)
            assert d == m
            p.s.be.sendto(response_of(m), src)
            assert p.ikd.recvfrom(70000)[0] == response_of(m)
            conns = outer_conn(p.s.port)
            assert len(conns) == 1, conns
            if mark:
                assert mark in conns[0].split(), conns
                wait_log(p.c, "outer sockets carry SO_MARK 0x42 and an IPsec bypass policy")
            else:
                assert "fwmark:" not in conns[0], conns
                assert log_count(p.c, "outer sockets carry") == 0
            assert_runs_as_nobody(p.c.pid, caps)
            assert log_count(p.c, "lacks CAP_NET_ADMIN") == 0
        finally:
            p.stop()


def test_client_outer_mark_without_privilege():
    """A mark that cannot be set (no CAP_NET_ADMIN) is said at the start,
    and no connection is made without it: unmarked, it would loop into the
    tunnel. bypass-policy auto without the privilege is a note, and the
    connection goes on."""
    if os.geteuid() == 0:
        uid, gid = nobody()
        wrap = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all"]
    else:
        wrap = []
    if wrap and not shutil.which("setpriv"):
        print("SKIP test_client_outer_mark_without_privilege: needs setpriv")
        return
    s = Server()
    ikd = udp(BASE + 3)
    cport = BASE + 2
    c = start(["client", "--udp", "127.0.0.1:%d" % cport, "--peer", "127.0.0.1:%d" % s.port,
               "--enable-tcp", "yes", "--mark", "0x42"], "client-nomark", wrap=wrap)
    try:
        wait_udp(cport)
        wait_log(c, "lacks CAP_NET_ADMIN")
        ikd.sendto(dgram_ike(0xF8), ("127.0.0.1", cport))
        wait_log(c, "SO_MARK 0x42: Operation not permitted (needs CAP_NET_ADMIN")
        no_datagram(s.be)
        assert outer_conn(s.port) == []
    finally:
        rc = stop_client(c, ikd)
    assert rc == 0, rc
    ikd = udp(BASE + 3)
    c = start(["client", "--udp", "127.0.0.1:%d" % cport, "--peer", "127.0.0.1:%d" % s.port,
               "--enable-tcp", "yes"], "client-auto", wrap=wrap)
    try:
        wait_udp(cport)
        m = dgram_ike(0xF9)
        ikd.sendto(m, ("127.0.0.1", cport))
        assert s.be.recvfrom(70000)[0] == m
        ln = wait_log(c, "bypass-policy auto: outer sockets not exempted")
        assert " info: " in ln, ln
        assert log_count(c, "lacks CAP_NET_ADMIN") == 0
    finally:
        rc = stop_client(c, ikd)
        s.stop()
    assert rc == 0, rc


def test_priv_unreadable_config_named():
    """A -c file the user cannot read is named at the switch, and a reload
    is refused (the running configuration stays and keeps relaying)."""
    if os.geteuid() != 0:
        print("SKIP test_priv_unreadable_config_named: needs root")
        return
    conf = os.path.join(TMP, "rootonly.conf")  # TMP is root's, mode 0700
    be = udp(BASE + 11)
    with open(conf, "w") as f:
        f.write("user = nobody\n[server gw]\nlisten = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\n"
                % (BASE + 10, BASE + 11))
    p = start(["-c", conf], "rootonly")
    try:
        wait_log(p, "config file %s is not readable by user nobody" % conf)
        p.send_signal(signal.SIGHUP)
        wait_log(p, "reload refused, keeping the running configuration")
        t = tcp(BASE + 10)
        m = dgram_ike(0x9003)
        t.sendall(b"IKETCP" + frame(m))
        assert be.recvfrom(70000)[0] == m
        t.close()
    finally:
        be.close()
        p.send_signal(signal.SIGTERM)
        assert p.wait(5) == 0


def has_cap(cap):
    return bool(int(proc_status(os.getpid())["CapEff"], 16) >> cap & 1)


def refusal_need(proc):
    """The number a refusal names, after checking it says what to do."""
    import re
    try:
        rc = proc.wait(5)
    except subprocess.TimeoutExpired:
        raise AssertionError("iketcpd started under a 64:64 limit it cannot raise")
    assert rc == 1, rc
    with open(proc.logname) as f:
        log = f.read()
    m = re.search(r"needs (\d+) open files .*RLIMIT_NOFILE is 64 \(hard limit 64\)", log)
    assert m, log
    assert "max-conns" in log and "max-sessions" in log and "LimitNOFILE" in log, log
    return int(m.group(1))


def test_nofile_raised_or_refused():
    """The defaults need > 4096 + 8192 descriptors: under a 64:64 limit
    iketcpd raises it when it may (CAP_SYS_RESOURCE) and refuses with the
    number otherwise; as nobody it raises the soft limit up to the hard one;
    lower limits are the other way out."""
    defaults_need = 4096 + 8192
    args = ["server", "--listen", "127.0.0.1:%d" % BASE, "--backend", "127.0.0.1:%d" % (BASE + 1)]
    tight = ["prlimit", "--nofile=64:64"]
    as_nobody = ["setpriv", "--reuid=%d" % nobody()[0], "--regid=%d" % nobody()[1],
                 "--clear-groups"]

    # as started (root here): the hard limit is raised only with CAP_SYS_RESOURCE
    p = start(args, "nofile-root", wrap=tight)
    if has_cap(CAP_SYS_RESOURCE):
        wait_log(p, "RLIMIT_NOFILE raised to")
        soft, hard = proc_nofile(p.pid)
        assert soft >= defaults_need and hard >= soft, (soft, hard)
        p.send_signal(signal.SIGTERM)
        assert p.wait(5) == 0
    else:
        print("  (no CAP_SYS_RESOURCE here: root cannot raise the hard limit either)")
        assert refusal_need(p) >= defaults_need

    if os.geteuid() != 0:
        return
    # an unprivileged start cannot raise the hard limit: a refusal
    p = start(args, "nofile-nobody", wrap=tight + as_nobody)
    assert refusal_need(p) >= defaults_need

    # ... but it raises the soft limit up to the hard one (ours: we may not raise it)
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= defaults_need + 1024:
        lim = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        p = start(args, "nofile-soft", wrap=["prlimit", "--nofile=64:" + lim] + as_nobody)
        wait_log(p, "RLIMIT_NOFILE raised to")
        wait_port(BASE)
        soft, h = proc_nofile(p.pid)
        assert defaults_need <= soft < defaults_need + 1024, soft  # what it needs
        assert h == (-1 if lim == "unlimited" else hard), (h, hard)
        p.send_signal(signal.SIGTERM)
        assert p.wait(5) == 0
    else:
        print("  (hard limit %d: no room to test raising the soft limit)" % hard)

    # lower limits fit under the same 64:64 with room for what they need
    small = args + ["--max-conns", "8", "--max-sessions", "8", "--max-pending", "4",
                    "--max-conns-per-source", "4"]
    p = start(small, "nofile-small", wrap=["prlimit", "--nofile=128:128"] + as_nobody)
    wait_port(BASE)
    assert proc_nofile(p.pid) == (128, 128)
    p.send_signal(signal.SIGTERM)
    assert p.wait(5) == 0



# ---- status and Prometheus metrics --------------------------------------------

def status_lines(sock):
    """iketcp status: {(kind, name, what, id): {key: value}}."""
    cli = os.path.join(os.path.dirname(IKETCPD), "iketcp")
    r = subprocess.run([cli, "status", sock], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, (r.returncode, r.stderr)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("iketcpd ") and lines[0].endswith(" status"), lines[:1]
    out = {}
    for ln in lines[1:]:
        w = ln.split()
        out[tuple(w[:4])] = dict(kv.split("=", 1) for kv in w[4:])
    return out


def test_status_ties_backend_address_to_client():
    """iketcp status: the session's client (the address a PROXY header named),
    the source address the backend saw, the SPIi, frame and byte counts each
    way, its connection; the client's flow with its SPIi and mode; the
    session's start is logged with the same mapping."""
    sock = os.path.join(TMP, "status-s.sock")
    csock = os.path.join(TMP, "status-c.sock")
    s = Server(["--stats-socket", sock, "--proxy-protocol", "yes",
                "--proxy-protocol-from", "127.0.0.1"])
    try:
        t = tcp(s.port)
        t.sendall(pp_v1("192.0.2.77", 40123) + b"IKETCP" + frame(dgram_ike(0x5A7A7A5A01020304)))
        d, src = s.be.recvfrom(70000)
        assert d == dgram_ike(0x5A7A7A5A01020304)
        for i in range(3):
            t.sendall(frame(esp(0x700, i)))
            assert s.be.recvfrom(70000)[0] == esp(0x700, i)
        s.be.sendto(response_of(d), src)
        assert recv_frame(t) == response_of(d)
        st = status_lines(sock)
        sess = [(k, v) for k, v in st.items() if k[:3] == ("server", "server", "session")]
        assert len(sess) == 1, st
        k, v = sess[0]
        assert v["client"] == "192.0.2.77:40123", v
        assert v["backend_sees"] == "%s:%d" % src, (v, src)
        assert v["spi_i"] == "5a7a7a5a01020304", v
        assert v["to_backend_frames"] == "4" and v["from_backend_dgrams"] == "1", v
        assert int(v["to_backend_bytes"]) == len(d) + 3 * len(esp(0x700, 0)), v
        assert int(v["from_backend_bytes"]) == len(d), v
        assert v["members"] == "1" and v["candidates"] == "0", v
        conn = st[("server", "server", "conn", v["current"])]
        assert conn["session"] == k[3] and conn["role"] == "current", conn
        assert conn["state"] == "open" and conn["client"] == "192.0.2.77:40123", conn
        assert conn["frames_in"] == "4", conn
        wait_log(s.p, "session %s: client 192.0.2.77:40123 -> backend sees %s:%d" %
                 (k[3], src[0], src[1]))
        t.close()
    finally:
        s.stop()
    p = Pair(["--stats-socket", csock])
    try:
        first_exchange(p, dgram_ike(0xF10F10F1))
        st = status_lines(csock)
        flows = [v for k, v in st.items() if k[:3] == ("client", "client", "flow")]
        assert len(flows) == 1, st
        f = flows[0]
        assert f["local"] == "127.0.0.1:%d" % p.ikd.getsockname()[1], f
        assert f["mode"] == "tcp" and f["state"] == "open", f
        assert f["peer"] == "127.0.0.1:%d" % p.s.port, f
        assert f["spi_i"] == "%016x" % 0xF10F10F1, f
        assert f["from_local_dgrams"] == "1" and f["from_peer_dgrams"] == "1", f
    finally:
        p.stop()


PROM_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
PROM_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def prom_parse(text):
    """A strict reader of the Prometheus text format 0.0.4: every metric has
    one HELP and one TYPE line before its samples, its samples together,
    valid names and labels, no series twice. Returns ({(name, labels):
    value}, {name: type})."""
    types, helps, series, done, cur = {}, {}, {}, set(), None
    assert text.endswith("\n")
    for ln in text.splitlines():
        if ln.startswith("# "):
            kind, name, rest = (ln[2:].split(" ", 2) + [""])[:3]
            assert kind in ("HELP", "TYPE"), ln
            assert PROM_NAME.match(name), ln
            assert name not in done, "metric %s again after other metrics" % name
            book = helps if kind == "HELP" else types
            assert name not in book, "second %s for %s" % (kind, name)
            if kind == "TYPE":
                assert rest in ("counter", "gauge"), ln
                assert name in helps, "TYPE before HELP: " + name
            else:
                assert rest.strip(), "empty HELP: " + ln
            book[name] = rest
            if cur != name and cur is not None:
                done.add(cur)
            cur = name
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", ln)
        assert m, "bad sample line: %r" % ln
        name, labels, value = m.group(1), m.group(3) or "", m.group(4)
        assert name == cur and name in types, "sample of %s outside its block" % name
        pairs = []
        rest = labels
        while rest:
            lm = PROM_LABEL.match(rest)
            assert lm, "bad labels in %r" % ln
            pairs.append((lm.group(1), lm.group(2)))
            rest = rest[lm.end():]
            assert rest == "" or rest.startswith(","), ln
            rest = rest[1:]
        assert len({k for k, _ in pairs}) == len(pairs), ln
        if types[name] == "counter":
            assert name.endswith("_total"), name
        key = (name, tuple(sorted(pairs)))
        assert key not in series, "series twice: %r" % (key,)
        series[key] = float(value)
    assert set(helps) == set(types), set(helps) ^ set(types)
    return series, types


def test_prometheus_matches_stats_and_old_readers_unchanged():
    """prometheus: strictly valid text, HELP and TYPE for every metric, each
    plain counter once with the same value (close reasons as a reason
    label); iketcp stats --prometheus prints it; a reader that writes
    nothing still gets the plain counters, as does one that only shuts
    down its side, and an unknown request gets an error line."""
    sock = os.path.join(TMP, "prom.sock")
    s = Server(["--stats-socket", sock])
    cli = os.path.join(os.path.dirname(IKETCPD), "iketcp")
    try:
        t, src = s.open_session(0xABCDEF)
        bad = tcp(s.port)
        bad.sendall(b"IKETCX")
        assert closed_within(bad, 5)
        wait_stat(sock, "closed_bad_prefix", 1)
        # quiet now: both answers must show the same values
        plain = read_stats(sock)
        r = subprocess.run([cli, "stats", "--prometheus", sock], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        series, types = prom_parse(r.stdout)
        promtool = shutil.which("promtool")  # Debian's prometheus package, when installed
        if promtool:
            pr = subprocess.run([promtool, "check", "metrics"], input=r.stdout,
                                capture_output=True, text=True, timeout=30)
            assert pr.returncode == 0, pr.stdout + pr.stderr
        for (kind, name, key), v in plain.items():
            if kind == "global":
                continue
            labels = {"section": name, "mode": kind}
            if key.startswith("closed_"):
                metric = "iketcpd_%s_closed_total" % kind
                labels["reason"] = key[len("closed_"):]
            else:
                gauge = key in ("connections", "connections_pending", "sessions", "half_open",
                                "flows")
                metric = "iketcpd_%s_%s" % (kind, key)
                if not gauge and not key.endswith("_total"):
                    metric += "_total"
                assert types.get(metric) == ("gauge" if gauge else "counter"), metric
            got = series.get((metric, tuple(sorted(labels.items()))))
            assert got == v, (metric, labels, got, v)
        assert series[("iketcpd_server_closed_total",
                       (("mode", "server"), ("reason", "bad_prefix"),
                        ("section", "server")))] == 1
        assert series[("iketcpd_mem_used_bytes", ())] >= 0
        # the connect-and-read reader of old: the same plain answer, no write
        t0 = time.time()
        old = stats_request(sock, None)
        assert time.time() - t0 < 3, time.time() - t0
        assert old.splitlines()[0] == "iketcpd " + old.split()[1]
        assert {tuple(ln.rsplit(" ", 1)[0].split()) for ln in old.splitlines()[1:]} == \
            set(plain), "old reader got other keys"
        # a reader that shuts its side down without a line: the plain answer at once
        u = socket.socket(socket.AF_UNIX)
        u.settimeout(5)
        u.connect(sock)
        u.shutdown(socket.SHUT_WR)
        assert u.recv(65536).startswith(b"iketcpd ")
        u.close()
        assert stats_request(sock, "bogus").startswith("error: unknown request")
        # more readers at once than are served at once (16), none of them
        # writing: the rest wait in the backlog, and each is answered
        us = []
        for _ in range(24):
            u = socket.socket(socket.AF_UNIX)
            u.settimeout(10)
            end = time.time() + 5
            while True:
                try:
                    u.connect(sock)
                    break
                except BlockingIOError:  # the backlog is full for a moment
                    assert time.time() < end, "stats socket backlog stays full"
                    time.sleep(0.02)
            us.append(u)
        for u in us:
            assert u.recv(65536).startswith(b"iketcpd "), "a waiting reader got nothing"
            u.close()
        t.close()
    finally:
        s.stop()


def kill_procs(procs):
    """Kills what a test left running in procs and empties it."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    procs.clear()


def run_tests(tests, only, logs=None, cleanup=None, width=55):
    """Runs the (name, fn) pairs named in only (all when empty), printing PASS
    or FAIL with the traceback and the last 30 lines of each log of a failed
    test (logs(): their paths; default: this module's processes' logs), and
    calls cleanup() after each (default: kill this module's processes).
    Returns the exit status: 1 when a test failed."""
    if logs is None:
        logs = lambda: [p.logname for p in PROCS if hasattr(p, "logname")]  # noqa: E731
    if cleanup is None:
        cleanup = lambda: kill_procs(PROCS)  # noqa: E731
    failed = 0
    for name, fn in tests:
        if only and name not in only:
            continue
        t0 = time.time()
        try:
            fn()
            print("PASS %-*s %.2fs" % (width, name, time.time() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s" % name, flush=True)
            traceback.print_exc()
            for path in logs():
                print("---- %s (last 30 lines)" % path)
                with open(path) as f:
                    print("".join(f.readlines()[-30:]))
        finally:
            cleanup()
    print("%d failed" % failed)
    return 1 if failed else 0


def main():
    global IKETCPD
    IKETCPD = os.path.abspath(sys.argv[1])
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")]
    print("ports from BASE=%d (IKETCP_TEST_BASE to repeat)" % BASE, flush=True)
    return run_tests(tests, sys.argv[2:])

if __name__ == "__main__":
    sys.exit(main())
