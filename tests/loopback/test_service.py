#!/usr/bin/env python3
"""Loopback tests of iketcpd as a service: the sd_notify protocol, journald's
stderr format, the verbose levels across SIGHUP, and a relative -c path
after detaching.

No systemd here: this script plays the service manager. It binds the
AF_UNIX datagram socket that $NOTIFY_SOCKET names, sets JOURNAL_STREAM to
the device and inode of the file iketcpd's stderr goes to, and sends the
signals systemctl would send. Real iketcpd processes, 127.0.0.1 only; every
wait is bounded; every process is killed on exit, and its log printed on
failure.

usage: test_service.py PATH/TO/iketcpd [TEST ...]
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_gateway as g  # noqa: E402

IKETCPD = None
# BASE+20..BASE+29: test_gateway.py uses BASE..BASE+19 of the same
# IKETCP_TEST_BASE, and ctest may run both at once.
BASE = int(os.environ.get("IKETCP_TEST_BASE", 20000 + (os.getpid() % 600) * 20)) + 20
TMP = tempfile.mkdtemp(prefix="iketcpd-svc-")
PROCS = []   # Popen objects
PIDS = []    # detached daemons (no Popen): killed by pid
LOGS = []    # files to print on failure
STAMP = re.compile(r"\d\d:\d\d:\d\d")


def write_conf(path, extra="", sections=1, verbose=None, stats=None):
    with open(path, "w") as f:
        if verbose is not None:
            f.write("verbose = %d\n" % verbose)
        if stats is not None:
            f.write("stats-socket = %s\n" % stats)
        for i in range(sections):
            # small limits: several sections fit any RLIMIT_NOFILE here
            f.write("[server gw%d]\nlisten = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\n"
                    "max-conns = 16\nmax-conns-per-source = 8\nmax-sessions = 16\nmax-pending = 8\n"
                    % (i, BASE + 2 * i, BASE + 2 * i + 1))
        f.write(extra)


def start(args, name, env=None, cwd=None):
    log = open(os.path.join(TMP, name + ".log"), "w")
    LOGS.append(log.name)
    p = subprocess.Popen([IKETCPD] + args, stdout=log, stderr=log, env=env, cwd=cwd)
    p.logname = log.name
    p.logfile = log
    PROCS.append(p)
    return p


def read_log(p):
    with open(p.logname) as f:
        return f.read()


def wait_for(cond, what, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def wait_log(p, pattern, timeout=5.0, count=1):
    return wait_for(lambda: len(re.findall(pattern, read_log(p))) >= count,
                    "%d x %r in %s" % (count, pattern, p.logname), timeout)


def connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def stop(p):
    p.send_signal(signal.SIGTERM)
    rc = p.wait(5)
    assert rc == 0, "exit status %d" % rc


class Manager:
    """The service manager's end of $NOTIFY_SOCKET."""

    def __init__(self, abstract):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "iketcpd-test-%d-%d" % (os.getpid(), BASE)
            self.s.bind("\0" + name)
            self.env_value = "@" + name
        else:
            path = os.path.join(TMP, "notify.sock")
            self.s.bind(path)
            self.env_value = path
        self.msgs = []

    def env(self):
        e = dict(os.environ)
        e["NOTIFY_SOCKET"] = self.env_value
        return e

    def next(self, timeout=5.0):
        """The next datagram as {KEY: VALUE}, with the raw text under ''."""
        self.s.settimeout(timeout)
        try:
            d = self.s.recv(4096).decode()
        except socket.timeout:
            raise AssertionError("no notification within %.1fs (had %r)"
                                 % (timeout, self.msgs))
        self.msgs.append(d)
        kv = {"": d}
        for ln in d.split("\n"):
            if ln:
                k, _, v = ln.partition("=")
                kv[k] = v
        return kv

    def until(self, key, timeout=5.0):
        """Datagrams up to and including the first with key; the list."""
        got = []
        end = time.time() + timeout
        while True:
            m = self.next(max(0.05, end - time.time()))
            got.append(m)
            if key in m:
                return got

    def close(self):
        self.s.close()


def test_notify_ready_reload_stopping():
    """READY=1 only once the listener accepts; STATUS names the sections;
    SIGHUP: RELOADING=1 with MONOTONIC_USEC of this reload, then READY=1;
    a refused reload: READY=1 still (the old config runs) and STATUS says
    why; SIGTERM: STOPPING=1 and exit 0. Abstract socket name."""
    mgr = Manager(abstract=True)
    conf = os.path.join(TMP, "notify.conf")
    write_conf(conf)
    try:
        p = start(["-f", "-c", conf], "notify", env=mgr.env())
        first = mgr.until("READY")
        # at READY=1 the port already accepts: no retry loop here
        assert connects(BASE), "READY=1 sent before the listener accepts"
        msgs = first + [mgr.next()]
        status = [m["STATUS"] for m in msgs if "STATUS" in m]
        assert status and "1 server, 0 client sections" in status[0], msgs

        # a good reload with a second section
        write_conf(conf, sections=2)
        before = time.monotonic_ns() // 1000
        p.send_signal(signal.SIGHUP)
        r = mgr.next()
        after = time.monotonic_ns() // 1000
        assert r.get("RELOADING") == "1", r
        assert before <= int(r["MONOTONIC_USEC"]) <= after, (before, r, after)
        got = mgr.until("READY")
        assert connects(BASE + 2), "READY=1 after reload before the new section listens"
        st = mgr.next()
        assert "2 server, 0 client sections" in st.get("STATUS", ""), (got, st)
        assert "refused" not in st["STATUS"], st

        # a refused reload: still READY=1, and the reason in STATUS
        with open(conf, "a") as f:
            f.write("no-such-key = 1\n")
        p.send_signal(signal.SIGHUP)
        assert mgr.next().get("RELOADING") == "1"
        mgr.until("READY")
        st = mgr.next()
        assert re.search(r"last reload refused: .*no-such-key", st.get("STATUS", "")), st
        assert connects(BASE) and connects(BASE + 2), "refused reload changed the sections"

        p.send_signal(signal.SIGTERM)
        got = mgr.until("STOPPING")
        assert got[-1]["STOPPING"] == "1", got
        assert p.wait(5) == 0
    finally:
        mgr.close()


def test_notify_path_socket_and_no_socket():
    """A file-system NOTIFY_SOCKET works the same; an unusable one is
    reported and ignored (iketcpd still runs)."""
    mgr = Manager(abstract=False)
    conf = os.path.join(TMP, "notify2.conf")
    write_conf(conf)
    try:
        p = start(["-f", "-c", conf], "notify-path", env=mgr.env())
        mgr.until("READY")
        assert connects(BASE)
        stop(p)
    finally:
        mgr.close()
    env = dict(os.environ, NOTIFY_SOCKET="relative/name")
    p = start(["-f", "-c", conf], "notify-bad", env=env)
    wait_for(lambda: connects(BASE), "the listener with a bad NOTIFY_SOCKET")
    stop(p)
    assert "NOTIFY_SOCKET=relative/name: not an absolute path" in read_log(p), read_log(p)


def start_journal(args, name, matching=True):
    """stderr to a file whose dev:ino JOURNAL_STREAM names (as systemd does
    for a service whose output goes to journald)."""
    path = os.path.join(TMP, name + ".log")
    log = open(path, "w")
    st = os.fstat(log.fileno())
    env = dict(os.environ)
    env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino + (0 if matching else 1))
    LOGS.append(path)
    p = subprocess.Popen([IKETCPD] + args, stdout=log, stderr=log, env=env)
    p.logname = path
    PROCS.append(p)
    return p


def test_journal_stream_priority_prefixes():
    """JOURNAL_STREAM naming stderr: every line "<N>text", no timestamp of
    ours, info as <6>, debug (-v) as <7>, an error as <3>. When it names
    some other stream (inherited from a parent), the usual format."""
    conf = os.path.join(TMP, "journal.conf")
    write_conf(conf)
    p = start_journal(["-f", "-v", "-c", conf], "journal")
    wait_for(lambda: connects(BASE), "the listener")
    wait_log(p, r": accepted")
    p.send_signal(signal.SIGHUP)
    wait_log(p, r"configuration reloaded")
    stop(p)
    lines = read_log(p).splitlines()
    assert lines, "no log"
    for ln in lines:
        assert re.match(r"<[0-7]>", ln), "line without a priority prefix: %r" % ln
        assert not STAMP.search(ln), "timestamp in a journal line: %r" % ln
        assert not ln[3:].startswith("iketcpd:"), "own name in a journal line: %r" % ln
    assert any(re.match(r"<6>.*running", ln) for ln in lines), lines
    assert any(re.match(r"<7>.*: accepted", ln) for ln in lines), lines

    # an error: a refused reload
    write_conf(conf)
    p = start_journal(["-f", "-c", conf], "journal-refused")
    wait_for(lambda: connects(BASE), "the listener")
    with open(conf, "a") as f:
        f.write("no-such-key = 1\n")
    p.send_signal(signal.SIGHUP)
    wait_log(p, r"reload refused")
    stop(p)
    assert re.search(r"^<3>reload refused", read_log(p), re.M), read_log(p)

    write_conf(conf)
    p = start_journal(["-f", "-c", conf], "journal-other", matching=False)
    wait_for(lambda: connects(BASE), "the listener")
    stop(p)
    first = read_log(p).splitlines()[0]
    assert STAMP.match(first) and "iketcpd: info:" in first, first


def test_cmdline_verbose_survives_sighup():
    """-v given at start still holds after SIGHUP re-reads a file without
    verbose: a new connection's debug line appears after the reload."""
    conf = os.path.join(TMP, "verbose.conf")
    write_conf(conf)
    p = start(["-f", "-v", "-c", conf], "verbose")
    wait_for(lambda: connects(BASE), "the listener")
    wait_log(p, r"gw0: conn \d+ \S+: accepted")
    p.send_signal(signal.SIGHUP)
    wait_log(p, r"configuration reloaded")
    n = len(re.findall(r": accepted", read_log(p)))
    assert connects(BASE)
    wait_log(p, r"gw0: conn \d+ \S+: accepted", count=n + 1)
    stop(p)


def test_log_ids_and_section_name():
    """Connections and sessions are numbered on their own (conn 1, 2 and
    session 1, 2: no gaps from a shared counter), and every line about
    one names its section."""
    conf = os.path.join(TMP, "ids.conf")
    write_conf(conf, verbose=1)
    p = start(["-f", "-c", conf], "ids")
    wait_log(p, r"running \(")  # not a probe connection: it would take an id
    conns = []
    for spi in (0x1111111111111111, 0x2222222222222222):
        t = socket.create_connection(("127.0.0.1", BASE), timeout=3)
        t.sendall(b"IKETCP" + g.frame(g.dgram_ike(spi)))
        conns.append(t)
    wait_log(p, r"session \d+: client 127\.0\.0\.1:\d+ -> backend sees", count=2)
    for t in conns:
        t.close()
    stop(p)
    log = read_log(p)
    accepted = [int(x) for x in re.findall(r"gw0: conn (\d+) \S+: accepted", log)]
    sessions = [int(x) for x in re.findall(r"gw0: session (\d+): client ", log)]
    assert accepted == [1, 2] and sessions == [1, 2], log
    for ln in log.splitlines():
        if re.search(r"\b(conn|session) \d+", ln):
            assert re.search(r"(^|: |>)gw0: (conn|session) \d+", ln), ln


def frames_runt(path):
    """The server's frames_runt counter from the stats socket (0 if none yet)."""
    if not os.path.exists(path):
        return 0
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
    m = re.search(rb"^server gw0 frames_runt (\d+)$", data, re.M)
    return int(m.group(1)) if m else 0


def test_verbose_levels_differ():
    """verbose 1: connection debug lines, not per-frame detail; verbose 2:
    also per-frame detail (a runt frame). File and -v add up."""
    conf = os.path.join(TMP, "levels.conf")
    sock = os.path.join(TMP, "levels.sock")
    for level, args in ((1, []), (2, []), (1, ["-v"])):
        write_conf(conf, verbose=level, stats=sock)
        p = start(["-f", "-c", conf] + args, "levels-%d%s" % (level, "".join(args)))
        wait_for(lambda: connects(BASE), "the listener")
        t = socket.create_connection(("127.0.0.1", BASE), timeout=3)
        t.sendall(b"IKETCP" + struct.pack(">H", 5) + b"\x01\x02\x03")
        # counted when read, and logged (or not) in the same step
        wait_for(lambda: frames_runt(sock) == 1, "the runt frame counted")
        t.close()
        stop(p)
        eff = level + len(args)
        log = read_log(p)
        assert re.search(r"gw0: conn \d+ \S+: accepted", log), log
        runts = len(re.findall(r"runt frame", log))
        assert runts == (1 if eff >= 2 else 0), "verbose %d: %d runt lines\n%s" % (eff, runts, log)


def find_daemon(conf_name):
    """The pid of a detached iketcpd whose command line names conf_name."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0] == IKETCPD.encode() and conf_name.encode() in argv:
            return int(d)
    return None


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_relative_config_path_after_detaching():
    """iketcpd -c RELATIVE without -f detaches (and moves to /); SIGHUP
    must still read the same file: a section added to it starts listening."""
    workdir = os.path.join(TMP, "etc")
    os.makedirs(workdir, exist_ok=True)
    name = "relative-%d.conf" % BASE
    write_conf(os.path.join(workdir, name))
    p = start(["-c", name], "relative", cwd=workdir)
    assert p.wait(5) == 0, "the parent of the daemon: %s" % read_log(p)
    pid = wait_for(lambda: find_daemon(name), "the detached iketcpd")
    PIDS.append(pid)
    wait_for(lambda: connects(BASE), "the listener")
    assert not connects(BASE + 2)
    write_conf(os.path.join(workdir, name), sections=2)
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: connects(BASE + 2), "the section added by SIGHUP (relative -c path)")
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), "the daemon to exit")


def tls_serves(port):
    try:
        g.tls_connect(port).close()
        return True
    except (OSError, ValueError):
        return False


def test_relative_tls_files_after_detaching():
    """tls-cert = cert.pem names a file next to the config file, whatever
    the directory iketcpd starts in: read at start, and again by SIGHUP
    after detaching (and moving to /)."""
    d = os.path.join(TMP, "tlsconf")
    os.makedirs(os.path.join(d, "keys"), exist_ok=True)
    shutil.copy(g.pkf("gw.pem"), os.path.join(d, "cert.pem"))
    shutil.copy(g.pkf("gw.key"), os.path.join(d, "keys", "key.pem"))
    conf = os.path.join(d, "tls-%d.conf" % BASE)

    def write(sections):
        with open(conf, "w") as f:
            for i in range(sections):
                f.write("[server tls%d]\nlisten-tls = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\n"
                        "tls-cert = cert.pem\ntls-key = keys/key.pem\nmax-conns = 16\n"
                        "max-conns-per-source = 8\nmax-sessions = 16\nmax-pending = 8\n"
                        % (i, BASE + 2 * i, BASE + 2 * i + 1))

    write(1)
    elsewhere = os.path.join(TMP, "elsewhere")
    os.makedirs(elsewhere, exist_ok=True)
    rc, out, err = g_run([IKETCPD, "-n", "-v", "-c", conf], cwd=elsewhere)
    assert rc == 0 and "tls-cert = %s/cert.pem\n" % d in out, (rc, out, err)
    p = start(["-c", conf], "relative-tls", cwd=elsewhere)
    assert p.wait(5) == 0, "the parent of the daemon: %s" % read_log(p)
    pid = wait_for(lambda: find_daemon(conf), "the detached iketcpd")
    PIDS.append(pid)
    wait_for(lambda: tls_serves(BASE), "TLS on the first section")
    assert not connects(BASE + 2)
    write(2)
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: tls_serves(BASE + 2), "TLS on the section added by SIGHUP")
    assert tls_serves(BASE)
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), "the daemon to exit")


def g_run(argv, cwd=None):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=cwd)
    return r.returncode, r.stdout, r.stderr


def cleanup():
    """Kills what a test left (children and daemonized pids) and forgets its logs."""
    g.kill_procs(PROCS)
    for pid in PIDS:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    PIDS.clear()
    LOGS.clear()


def main():
    global IKETCPD
    IKETCPD = os.path.abspath(sys.argv[1])
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")]
    print("ports from BASE=%d (IKETCP_TEST_BASE=%d to repeat)" % (BASE, BASE - 20), flush=True)
    return g.run_tests(tests, sys.argv[2:], logs=lambda: list(LOGS), cleanup=cleanup)

if __name__ == "__main__":
    sys.exit(main())
