#!/usr/bin/env python3
"""Memory of iketcpd server mode: RSS per idle connection and with full send queues.

  bench/mem-bench.py IKETCPD [--old IKETCPD_BEFORE] [--conns 1000] [--full-conns 200]
                     [--max-memory 16m] [--port 23700]

For each binary (the one to measure, and optionally an older build side by side):

  idle plain / idle TLS  N connections each send the IKETCP prefix and one IKE_SA_INIT
                         request; a scripted backend answers it and the client reads the
                         answer, then the connections stay open and silent. VmRSS of
                         iketcpd (/proc/PID/status) is read after one warm-up connection
                         and again 7 s after the N are idle (one trim sweep of the server);
                         the difference / N is the cost of an idle connection.
  full queues            M plain connections whose clients never read (4 KiB receive
                         buffer); the backend sends 3500 ESP datagrams of 1400 bytes (4.9 MB)
                         to every session, more than a send queue (256 KiB) and the kernel's
                         socket buffers (up to tcp_wmem max, 4 MiB here) hold. Kernel socket
                         memory grows by about 4 MiB per connection meanwhile, which is why
                         the default is 200 connections. VmRSS is read once the sends are done, without and (binaries
                         that know it) with max-memory.

Kernel socket buffers are not in VmRSS; only iketcpd's own memory is. Every process started
is stopped on exit; the run takes about a minute per binary with the defaults. Needs root or
a NOFILE limit above 2 x conns (it raises its own soft limit to the hard limit).
"""
import argparse
import os
import resource
import select
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

# iketcpd runs as root without user here (allow-root)
os.environ.setdefault("IKETCPD_ALLOW_ROOT", "1")

PROCS = []
TMP = tempfile.mkdtemp(prefix="iketcp-mem-")


def ike_init(spi):
    payload = b"x" * 200
    n = 28 + len(payload)
    return b"\0\0\0\0" + struct.pack(">QQBBBBII", spi, 0, 33, 0x20, 34, 0x08, 0, n) + payload


def frame(body):
    return struct.pack(">H", len(body) + 2) + body


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    raise RuntimeError("no VmRSS")


def wait_port(port, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("iketcpd did not listen on %d" % port)


def stats(path):
    u = socket.socket(socket.AF_UNIX)
    u.settimeout(3)
    u.connect(path)
    data = b""
    while True:
        c = u.recv(65536)
        if not c:
            break
        data += c
    u.close()
    out = {}
    for ln in data.decode().splitlines()[1:]:
        k, n, key, v = ln.split()
        out[(k, key)] = int(v)
    return out


def make_cert():
    key, crt = os.path.join(TMP, "gw.key"), os.path.join(TMP, "gw.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=gw.test"], check=True, capture_output=True, timeout=30)
    return crt, key


def has_budgets(binary):
    """Whether this iketcpd has the per-source budgets (issue #8)."""
    r = subprocess.run([binary, "server", "--max-half-open", "1", "-n"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


class Gateway:
    def __init__(self, binary, port, extra, name):
        self.port, self.bport = port, port + 1
        self.be = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.be.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.be.bind(("127.0.0.1", self.bport))
        self.sock = os.path.join(TMP, name + ".stats")
        self.log = open(os.path.join(TMP, name + ".log"), "w")
        # every client of the bench is 127.0.0.1 and stays half-open (IKE_SA_INIT
        # only): lift the per-source and half-open budgets of builds that have
        # them, within what RLIMIT_NOFILE allows (iketcpd refuses to start
        # with limits it cannot have descriptors for)
        lim = "5000"
        args = [binary, "server", "--listen", "127.0.0.1:%d" % port,
                "--backend", "127.0.0.1:%d" % self.bport, "--max-conns", lim,
                "--max-conns-per-source", lim, "--max-pending", lim, "--max-sessions", lim,
                "--stats-socket", self.sock, "-f"] + extra
        if has_budgets(binary):
            args += ["--max-sessions-per-source", lim, "--max-half-open", lim,
                     "--max-half-open-per-source", lim, "--max-pending-per-source", lim,
                     "--half-open-timeout", "1h"]
        self.p = subprocess.Popen(args, stderr=self.log)
        PROCS.append(self.p)
        wait_port(port)
        self.sessions = []

    def connect(self, tls_ctx=None, rcvbuf=None):
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(5)
        s.connect(("127.0.0.1", self.port))
        if tls_ctx:
            s = tls_ctx.wrap_socket(s, server_hostname="gw.test")
        spi = 0x1000 + len(self.sessions)
        s.sendall(b"IKETCP" + frame(ike_init(spi)))
        d, src = self.be.recvfrom(70000)
        self.sessions.append(src)
        return s, d, src

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.be.close()


def recv_frame(s):
    buf = b""
    while len(buf) < 2 or len(buf) < struct.unpack(">H", buf[:2])[0]:
        c = s.recv(4096)
        if not c:
            raise RuntimeError("connection closed")
        buf += c
    return buf


def idle(binary, port, n, tls):
    extra = []
    ctx = None
    if tls:
        crt, key = make_cert()
        extra = ["--tls-cert", crt, "--tls-key", key]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    g = Gateway(binary, port, extra, "idle")
    try:
        conns = []

        def one():
            s, d, src = g.connect(ctx)
            r = bytearray(d)
            r[4 + 19] = 0x20  # the response
            g.be.sendto(bytes(r), src)
            assert recv_frame(s)[2:] == bytes(r)
            return s

        one().close()  # warm-up: libraries, the first heap growth
        time.sleep(0.5)
        r0 = rss_kib(g.p.pid)
        t0 = time.time()
        for _ in range(n):
            conns.append(one())
        time.sleep(7)  # one trim sweep (5 s) after the last answer
        r1 = rss_kib(g.p.pid)
        st = stats(g.sock)
        conns_open = st.get(("server", "connections"), -1)
        for s in conns:
            s.close()
        return r0, r1, conns_open, time.time() - t0
    finally:
        g.stop()


def full(binary, port, n, extra, rounds=3500):
    g = Gateway(binary, port, extra, "full")
    try:
        conns = []
        for _ in range(n):
            s, d, src = g.connect(rcvbuf=4096)
            r = bytearray(d)
            r[4 + 19] = 0x20  # the response makes this connection the return path
            g.be.sendto(bytes(r), src)
            conns.append(s)
        time.sleep(0.5)
        r0 = rss_kib(g.p.pid)
        dg = struct.pack(">II", 0xE5E5E5E5, 1) + b"e" * 1392
        for rnd in range(rounds):
            for src in g.sessions:
                try:
                    g.be.sendto(dg, src)
                except BlockingIOError:
                    pass
            if rnd % 20 == 19:
                time.sleep(0.05)  # lets iketcpd drain its UDP sockets
        time.sleep(2)
        r1 = rss_kib(g.p.pid)
        st = stats(g.sock)
        for s in conns:
            s.close()
        return r0, r1, st
    finally:
        g.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("iketcpd")
    ap.add_argument("--old", help="an older iketcpd to measure side by side")
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--full-conns", type=int, default=200)
    ap.add_argument("--max-memory", default="16m")
    ap.add_argument("--port", type=int, default=23700)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    bins = [("after", a.iketcpd)] + ([("before", a.old)] if a.old else [])
    port = a.port
    print("idle connections: %d; full-queue connections: %d" % (a.conns, a.full_conns))
    print("%-7s %-22s %10s %10s %12s %s" % ("binary", "case", "RSS0 KiB", "RSS1 KiB",
                                            "KiB/conn", "note"))
    for label, b in bins:
        for tls in (False, True):
            r0, r1, open_, secs = idle(b, port, a.conns, tls)
            port += 2
            print("%-7s %-22s %10d %10d %12.2f open=%d" % (
                label, "idle TLS" if tls else "idle plain", r0, r1, (r1 - r0) / a.conns, open_))
        cases = [("full queues", [])]
        if label == "after":
            cases.append(("full, max-memory " + a.max_memory, ["--max-memory", a.max_memory]))
        for name, extra in cases:
            r0, r1, st = full(b, port, a.full_conns, extra)
            port += 2
            note = "sendq_drops=%d" % st.get(("server", "sendq_drops"), 0)
            if ("global", "mem_used") in st:
                note += " mem_used=%d KiB mem_refused=%d" % (
                    st[("global", "mem_used")] // 1024, st[("global", "mem_refused")])
            print("%-7s %-22s %10d %10d %12.2f %s" % (label, name, r0, r1,
                                                      (r1 - r0) / a.full_conns, note))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
