"""Shared pieces of the attack suite (tests/attack/test_attacks.py).

The wire helpers (IKE headers, frames, stats socket) are the loopback suite's
(tests/loopback/test_gateway.py), imported, not copied. What is here: an
iketcpd process with its resource probes (descriptors, RSS, CPU, log lines,
sanitizer reports), a fake IKE responder as the backend, a legitimate client
that proves its traffic reaches its own session, and small socket helpers for
the adversaries. Every wait is bounded.
"""
import os
import random
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "loopback"))
import test_gateway as tg  # noqa: E402  (ike, esp, frame, read_stats, ...)

shutil.rmtree(tg.TMP, ignore_errors=True)  # its import-time scratch dir; we use our own

ike = tg.ike
esp = tg.esp
frame = tg.frame
dgram_ike = tg.dgram_ike
PREFIX = b"IKETCP"
IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL = 34, 35, 36, 37
F_INITIATOR, F_RESPONSE = 0x08, 0x20

IKETCPD = None  # set by the runner
# The daemons under attack run as root without `user` (allow-root).
os.environ.setdefault("IKETCPD_ALLOW_ROOT", "1")
TMP = None
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "AddressSanitizer:DEADLYSIGNAL")
TICK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# The daemon's peer-triggered log lines are limited per category (3 of them
# today: accept, protocol, session) to a burst of 20, then 5 a second; one
# "suppressed" line may follow each. A bounded log over a window of T seconds
# is therefore at most about 3 * (20 + 2 * 5 * T) lines; the suite allows
# that plus a margin for the daemon's own start/stop lines.


def log_bound(seconds):
    return 100 + int(30 * seconds)


def rand_spi64():
    return random.getrandbits(63) | 1 << 62


def rand_esp_spi():
    return 0xC0000000 | random.getrandbits(24) << 4


def wait_until(cond, timeout, what, step=0.02):
    end = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() >= end:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(step)


def parse_ike(msg):
    """(spi_i, spi_r, exchange, flags, msg_id) of an IKE message without marker, or None."""
    if len(msg) < 28:
        return None
    spi_i, spi_r, _np, _v, ex, fl, mid, _ln = struct.unpack(">QQBBBBII", msg[:28])
    return spi_i, spi_r, ex, fl, mid


def listening(port, timeout=10.0, proc=None):
    """Waits until a TCP socket listens on port (no probe connection: a probe
    would count against the limits under test)."""
    hexport = ":%04X" % port

    def up():
        for f in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(f) as fh:
                    next(fh)
                    for ln in fh:
                        p = ln.split()
                        if p[1].endswith(hexport) and p[3] == "0A":
                            return True
            except OSError:
                pass
        if proc:
            proc.assert_alive()  # a refused option: fail now, not after the timeout
        return False
    wait_until(up, timeout, "TCP port %d to listen" % port)


def daemon_conns(port, ip_hex_filter=None):
    """Established/close-wait TCP connections on the daemon's side of port."""
    hexport = ":%04X" % port
    n = 0
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                next(fh)
                for ln in fh:
                    p = ln.split()
                    if p[1].endswith(hexport) and p[3] in ("01", "08") and (
                            ip_hex_filter is None or p[2].startswith(ip_hex_filter)):
                        n += 1
        except OSError:
            pass
    return n


def ip4_hex(ip):
    return "%08X" % struct.unpack("<I", socket.inet_aton(ip))[0]


# ---- the daemon under attack ------------------------------------------------------

class Daemon:
    def __init__(self, args, name, nofile=None, env=None):
        self.logname = os.path.join(TMP, name + ".log")
        self.log = open(self.logname, "w")
        self.args = [IKETCPD, "-f"] + list(args)

        self.nofile = nofile
        self.p = subprocess.Popen(self.args, stderr=self.log, stdout=self.log, env=env)
        self.pid = self.p.pid

    def lower_nofile(self):
        """iketcpd refuses to start below what its limits need (it raises
        RLIMIT_NOFILE itself), so descriptor exhaustion is made the way it
        happens in the field: the limit shrinks under the running daemon
        (prlimit, or a neighbour eating the system's file table)."""
        if self.nofile:
            resource.prlimit(self.pid, resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def alive(self):
        return self.p.poll() is None

    def assert_alive(self):
        if not self.alive():
            raise AssertionError("iketcpd died (exit status %s)" % self.p.returncode)

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
        raise AssertionError("no VmRSS")

    def cpu_s(self):
        with open("/proc/%d/stat" % self.pid) as f:
            st = f.read()
        fields = st[st.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime

    def cpu_share(self, seconds):
        """CPU used by the daemon over the next `seconds` (1.0 = one core)."""
        c0, t0 = self.cpu_s(), time.time()
        time.sleep(seconds)
        return (self.cpu_s() - c0) / (time.time() - t0)

    def log_lines(self):
        with open(self.logname, errors="replace") as f:
            return sum(1 for _ in f)

    def log_text(self):
        with open(self.logname, errors="replace") as f:
            return f.read()

    def sanitizer_reports(self):
        return [m for m in SANITIZER_MARKS if m in self.log_text()]

    def stop(self):
        """SIGTERM; returns the exit status (killed after 10 s)."""
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode


# ---- the fake IKE responder ---------------------------------------------------------

class Backend(threading.Thread):
    """A UDP IKE responder in the place of strongSwan.

    Sessions are told apart by the source address (ip, port) of iketcpd's
    per-session socket. Each IKE request gets a response (same SPIi and
    message ID, response flag, SPIr set); the last response of each IKE SA is
    kept and sent again for a retransmitted request, as strongSwan does; an
    older message ID is ignored. ESP whose payload starts with PING is
    answered with ESP (SPI ^ 0x40000000, payload PONG + the same token), so a
    client can check round trips; other ESP is only counted (answering a
    flood would make this thread, not iketcpd, the bottleneck).
    """

    def __init__(self, port, host="127.0.0.1"):
        super().__init__(daemon=True)
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.s = socket.socket(fam, socket.SOCK_DGRAM)
        try:  # root: past rmem_max, so a flood does not drop a ping
            self.s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE
        except OSError:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
        self.s.bind((host, port))
        self.s.settimeout(0.1)
        self.lock = threading.Lock()
        self.sas = {}        # spi_i -> [last msg id answered, response bytes, spi_r]
        self.ike_src = {}    # (spi_i, msg_id) -> source address of the request
        self.esp_src = {}    # ping token -> source address
        self.retransmits = 0
        self.ike_requests = 0
        self.datagrams = 0
        self.running = True
        self.start()

    def run(self):
        while self.running:
            try:
                d, a = self.s.recvfrom(70000)
            except socket.timeout:
                continue
            except OSError:
                return
            self.datagrams += 1
            try:
                self.handle(d, a[:2])
            except OSError:
                pass

    def handle(self, d, a):
        if len(d) > 4 and d[:4] == b"\0\0\0\0":
            h = parse_ike(d[4:])
            if not h or h[3] & F_RESPONSE:
                return
            spi_i, spi_r, ex, _fl, mid = h
            with self.lock:
                self.ike_requests += 1
                self.ike_src.setdefault((spi_i, mid), a)
                sa = self.sas.get(spi_i)
                if sa and mid == sa[0]:
                    self.retransmits += 1
                    resp = sa[1]
                elif sa and mid < sa[0]:
                    return
                else:
                    r = (sa[2] if sa else spi_r) or (spi_i * 0x2545F4914F6CDD1D | 1) & (2**64 - 1)
                    resp = b"\0\0\0\0" + ike(spi_i, r, ex, F_RESPONSE, mid, b"R" * 40)
                    self.sas[spi_i] = [mid, resp, r]
            self.s.sendto(resp, a)
        elif len(d) >= 16 and d[8:12] == b"PING":
            spi, seq = struct.unpack(">II", d[:8])
            tok = d[12:20]
            with self.lock:
                self.esp_src[tok] = a
            self.s.sendto(struct.pack(">II", spi ^ 0x40000000, seq) + b"PONG" + tok, a)

    def src_of(self, spi_i, msg_id):
        with self.lock:
            return self.ike_src.get((spi_i, msg_id))

    def sessions(self):
        """Distinct session sockets that sent IKE so far."""
        with self.lock:
            return len(set(self.ike_src.values()))

    def send(self, addr, d):
        self.s.sendto(d, addr)

    def close(self):
        self.running = False
        self.join(2)
        self.s.close()


# ---- connections ----------------------------------------------------------------------

def family_of(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def connect(dst, port, src_ip, timeout=3.0, linger0=False):
    t = socket.socket(family_of(src_ip), socket.SOCK_STREAM)
    if linger0:
        t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    t.bind((src_ip, 0))
    t.settimeout(timeout)
    t.connect((dst, port))
    return t


def rst(t):
    """Closes with a reset (SO_LINGER 0), as a dropped client would."""
    try:
        t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    t.close()


class Frames:
    """Reads RFC 9329 frames from a TCP socket with bounded waits."""

    def __init__(self, t):
        self.t = t
        self.buf = b""
        self.eof = False

    def _fill(self, timeout):
        if self.eof:
            return False
        r, _, _ = select.select([self.t], [], [], max(0.0, timeout))
        if not r:
            return False
        try:
            c = self.t.recv(262144)
        except (ConnectionResetError, BlockingIOError, socket.timeout):
            c = b""
        if not c:
            self.eof = True
            return False
        self.buf += c
        return True

    def _pop(self):
        if len(self.buf) < 2:
            return None
        n = struct.unpack(">H", self.buf[:2])[0]
        if n < 2 or len(self.buf) < n:
            return None
        f, self.buf = self.buf[2:n], self.buf[n:]
        return f

    def next(self, timeout):
        end = time.time() + timeout
        while True:
            f = self._pop()
            if f is not None:
                return f
            if not self._fill(end - time.time()):
                if time.time() >= end or self.eof:
                    return None

    def drain(self, timeout=0.3):
        out = []
        end = time.time() + timeout
        while True:
            f = self.next(max(0.0, end - time.time()))
            if f is None:
                return out
            out.append(f)


def mentions(frames, ike_spi=None, esp_spi=None):
    """The frames that belong to an IKE SA (SPIi) or carry an ESP SPI."""
    out = []
    for f in frames:
        if f[:4] == b"\0\0\0\0":
            h = parse_ike(f[4:])
            if h and ike_spi is not None and h[0] == ike_spi:
                out.append(f)
        elif len(f) >= 4 and esp_spi is not None and struct.unpack(">I", f[:4])[0] == esp_spi:
            out.append(f)
    return out


class Legit:
    """A well-behaved RFC 9329 initiator: IKE_SA_INIT (msg 0), an IKE_AUTH-like
    request (msg 1), then ESP pings. It remembers the backend source address
    of its session at set-up; every later round trip must reach the backend
    from that same address (its own session) and be answered to it."""

    def __init__(self, h, ip, dst=None):
        self.h = h
        self.ip = ip
        self.dst = dst or h.listen_ip
        self.spi_i = rand_spi64()
        self.spi_r = 0
        self.esp_out = rand_esp_spi()
        self.esp_in = self.esp_out ^ 0x40000000
        self.msgid = 0
        self.seq = 0
        self.addr = None  # the session's backend source address
        self.t = None
        self.fr = None
        self.unexpected = []  # frames that were not answers to us

    def connect(self):
        self.t = connect(self.dst, self.h.port, self.ip)
        self.h.track(self.t)
        self.fr = Frames(self.t)
        self.t.sendall(PREFIX)

    def ike(self, ex, timeout=3.0):
        """One IKE exchange; returns the response (asserted)."""
        mid = self.msgid
        req = b"\0\0\0\0" + ike(self.spi_i, self.spi_r, ex, F_INITIATOR, mid)
        self.t.sendall(frame(req))
        end = time.time() + timeout
        while True:
            f = self.fr.next(end - time.time())
            assert f is not None, "%s: no answer to IKE request msg %d (%s)" % (
                self.ip, mid, "connection closed" if self.fr.eof else "timeout")
            h = parse_ike(f[4:]) if f[:4] == b"\0\0\0\0" else None
            if h and h[0] == self.spi_i and h[4] == mid and h[3] & F_RESPONSE:
                break
            self.unexpected.append(f)
        src = self.h.be.src_of(self.spi_i, mid)
        if self.addr is None:
            self.addr = src
        assert src == self.addr, "%s: IKE msg %d reached the backend from %s, its session is %s" % (
            self.ip, mid, src, self.addr)
        self.spi_r = h[1]
        self.msgid += 1
        return f

    def setup(self):
        self.connect()
        self.ike(IKE_SA_INIT)
        self.ike(IKE_AUTH)
        self.ping()
        return self

    def ping(self, timeout=3.0):
        """One ESP round trip; returns its time in seconds (asserted)."""
        self.seq += 1
        tok = os.urandom(8)
        t0 = time.time()
        self.t.sendall(frame(struct.pack(">II", self.esp_out, self.seq) + b"PING" + tok +
                             b"p" * 60))
        end = t0 + timeout
        while True:
            f = self.fr.next(end - time.time())
            assert f is not None, "%s: ESP ping %d unanswered (%s)" % (
                self.ip, self.seq, "connection closed" if self.fr.eof else "timeout")
            if f[:4] == struct.pack(">I", self.esp_in) and f[8:12] == b"PONG" and f[12:20] == tok:
                break
            self.unexpected.append(f)
        rtt = time.time() - t0
        with self.h.be.lock:
            src = self.h.be.esp_src.get(tok)
        assert src == self.addr, "%s: ESP reached the backend from %s, its session is %s" % (
            self.ip, src, self.addr)
        return rtt

    def push_esp(self, n=3, tag=b"DOWN"):
        """The backend sends n ESP packets to this client's session."""
        for i in range(n):
            self.h.be.send(self.addr, struct.pack(">II", self.esp_in, 1000 + i) + tag + b"d" * 40)

    def got_pushed(self, n=3, tag=b"DOWN", timeout=3.0):
        got = 0
        end = time.time() + timeout
        while got < n:
            f = self.fr.next(end - time.time())
            if f is None:
                break
            if f[:4] == struct.pack(">I", self.esp_in) and f[8:12] == tag:
                got += 1
            else:
                self.unexpected.append(f)
        return got

    def drop(self):
        rst(self.t)
        self.h.untrack(self.t)

    def reconnect(self):
        self.connect()


# ---- per-test context ---------------------------------------------------------------------

class H:
    """One attack's world: ports, a backend, daemons, sockets; torn down by close()."""

    def __init__(self, base, listen_ip="127.0.0.1", backend_ip="127.0.0.1"):
        self.base = base
        self.port = base
        self.be_port = base + 1
        self.listen_ip = listen_ip
        self.backend_ip = backend_ip
        self.be = Backend(self.be_port, backend_ip)
        self.daemons = []
        self.socks = []
        self.threads_stop = threading.Event()
        self.cleanups = []
        self.stats_path = os.path.join(TMP, "stats-%d.sock" % base)

    def server(self, extra=(), name="server", stats=True, nofile=None, env=None):
        lip = "[%s]" % self.listen_ip if ":" in self.listen_ip else self.listen_ip
        bip = "[%s]" % self.backend_ip if ":" in self.backend_ip else self.backend_ip
        args = ["server", "--listen", "%s:%d" % (lip, self.port),
                "--backend", "%s:%d" % (bip, self.be_port)]
        if stats:
            args += ["--stats-socket", self.stats_path]
        d = Daemon(args + list(extra), name, nofile=nofile, env=env)
        self.daemons.append(d)
        listening(self.port, proc=d)
        d.lower_nofile()
        return d

    def stats(self, name="server"):
        return {k[2]: v for k, v in tg.read_stats(self.stats_path).items()
                if k[:2] == ("server", name)}

    def track(self, s):
        self.socks.append(s)
        return s

    def untrack(self, s):
        if s in self.socks:
            self.socks.remove(s)

    def conn(self, src_ip, linger0=False, prefix=True):
        t = self.track(connect(self.listen_ip, self.port, src_ip, linger0=linger0))
        if prefix:
            t.sendall(PREFIX)
        return t

    def thread(self, fn):
        th = threading.Thread(target=fn, daemon=True)
        th.start()
        self.cleanups.append(lambda: th.join(5))
        return th

    def close(self):
        self.threads_stop.set()
        for c in reversed(self.cleanups):
            try:
                c()
            except Exception:
                pass
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        self.socks.clear()
        problems = []
        for d in self.daemons:
            alive = d.alive()
            rc = d.stop()
            reps = d.sanitizer_reports()
            if reps:
                problems.append("%s: sanitizer report in the log: %s" % (d.logname, reps))
            elif not alive:
                problems.append("%s: iketcpd had died (exit status %s)" % (d.logname, rc))
            elif rc != 0:
                problems.append("%s: exit status %s after SIGTERM" % (d.logname, rc))
        self.be.close()
        return problems


def check_outcome(d, t0_lines, window_s, fds_max=None, what="attack"):
    """The outcome a user cares about, after an attack on daemon d."""
    d.assert_alive()
    reps = d.sanitizer_reports()
    assert not reps, "sanitizer report during the %s: %s" % (what, reps)
    n = d.log_lines() - t0_lines
    assert n <= log_bound(window_s), "%d log lines during a %.1fs %s (bound %d)" % (
        n, window_s, what, log_bound(window_s))
    if fds_max is not None:
        assert d.fds() <= fds_max, "%d descriptors after the %s (bound %d)" % (
            d.fds(), what, fds_max)


def is_asan(path):
    with open(path, "rb") as f:
        return b"AddressSanitizer" in f.read()


def netns(name):
    """Creates a network namespace with lo up; returns a cleanup function."""
    subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    return lambda: subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)


def setup_tmp():
    global TMP
    TMP = tempfile.mkdtemp(prefix="iketcpd-attack-")
    return TMP
