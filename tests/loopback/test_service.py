#!/usr/bin/env python3
"""Loopback tests of iketcpd as a service: the sd_notify protocol, journald's
stderr format, the verbose levels across SIGHUP, a relative -c path
after detaching, the stats socket for a monitoring group and its default
path under $RUNTIME_DIRECTORY, and the metrics-listen HTTP endpoint.

No systemd here: this script plays the service manager. It binds the
AF_UNIX datagram socket that $NOTIFY_SOCKET names, sets JOURNAL_STREAM to
the device and inode of the file iketcpd's stderr goes to, and sends the
signals systemctl would send. Real iketcpd processes, 127.0.0.1 only; every
wait is bounded; every process is killed on exit, and its log printed on
failure.

usage: test_service.py PATH/TO/iketcpd [TEST ...]
"""
import grp
import http.client
import os
import pwd
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
# IKETCP_TEST_BASE, and ctest may run both at once. Sections use BASE..+3,
# metrics-listen BASE+8 and BASE+9.
BASE = int(os.environ.get("IKETCP_TEST_BASE", 20000 + (os.getpid() % 600) * 20)) + 20
TMP = tempfile.mkdtemp(prefix="iketcpd-svc-")
PROCS = []   # Popen objects
PIDS = []    # detached daemons (no Popen): killed by pid
LOGS = []    # files to print on failure
STAMP = re.compile(r"\d\d:\d\d:\d\d")


def write_conf(path, extra="", sections=1, verbose=None, stats=None, head=""):
    with open(path, "w") as f:
        f.write(head)
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


def test_root_refused_without_user_unless_told():
    """Started as root without user, iketcpd exits 1 before opening a socket,
    saying why; allow-root = yes or IKETCPD_ALLOW_ROOT=1 lets it stay root."""
    if os.geteuid() != 0:
        print("    (not root: nothing to refuse)")
        return
    conf = os.path.join(TMP, "root.conf")
    write_conf(conf)
    bare = {k: v for k, v in os.environ.items() if k != "IKETCPD_ALLOW_ROOT"}
    p = start(["-f", "-c", conf], "root-refused", env=bare)
    assert p.wait(5) == 1, read_log(p)
    assert "refusing to run as root without user" in read_log(p), read_log(p)
    assert not connects(BASE), "a listener opened before the refusal"
    for name, extra_env, head in (("root-env", {"IKETCPD_ALLOW_ROOT": "1"}, ""),
                                  ("root-key", {}, "allow-root = yes\n")):
        write_conf(conf, head=head)
        p = start(["-f", "-c", conf], name, env=dict(bare, **extra_env))
        wait_for(lambda: connects(BASE), "the listener (%s)" % name)
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


# ---- the stats socket for a monitoring group ----------------------------------------------

ACCOUNTS = []  # (kind, name) made by a test, removed by cleanup()


def make_account(kind, name, *args):
    """groupadd/useradd (system accounts, no home); removed by cleanup()."""
    if kind == "group":
        subprocess.run(["groupadd", "-r", name] + list(args), check=True, capture_output=True)
    else:
        subprocess.run(["useradd", "-r", "-M", "-N", "-s", "/usr/sbin/nologin"] + list(args)
                       + [name], check=True, capture_output=True)
    ACCOUNTS.append((kind, name))


def remove_accounts():
    for kind, name in reversed(ACCOUNTS):
        subprocess.run(["userdel" if kind == "user" else "groupdel", name],
                       capture_output=True)
    ACCOUNTS.clear()


def as_user(user, argv, **kw):
    """argv run as user with its groups from the group database."""
    return subprocess.run(setpriv(user) + argv, capture_output=True, text=True, timeout=10,
                          **kw)


def setpriv(user):
    return ["setpriv", "--reuid=" + user, "--regid=%d" % pwd.getpwnam(user).pw_gid,
            "--init-groups", "--"]


def status_as(user, sock):
    """`iketcp status SOCK` as user: (exit status, output)."""
    cli = os.path.join(os.path.dirname(IKETCPD), "iketcp")
    r = as_user(user, [cli, "status", sock])
    return r.returncode, r.stdout + r.stderr


def need_root(name):
    if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("useradd"):
        print("SKIP %s: needs root, setpriv and useradd" % name)
        return False
    return True


def shared_dir(name, owner=None):
    """A directory every account may enter (TMP itself is 0700)."""
    os.chmod(TMP, 0o711)
    d = os.path.join(TMP, name)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    if owner:
        pw = pwd.getpwnam(owner)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    return d


def test_stats_socket_group_and_mode():
    """stats-socket-group: the socket is rw for that group (0660 by default),
    so a non-root member reads `iketcp status`, and an account outside it
    is refused; a SIGHUP to stats-socket-mode 0600 closes it for the member
    again, also after the switch to `user` (the socket is then the user's).
    A non-root iketcpd outside the group cannot give the socket to it and
    says so."""
    if not need_root("test_stats_socket_group_and_mode"):
        return
    tag = "%d" % (os.getpid() % 100000)
    gname, member, outsider, runner = ("ikmon" + tag, "ikmem" + tag, "ikout" + tag,
                                       "ikrun" + tag)
    make_account("group", gname)
    make_account("user", member, "-G", gname)
    make_account("user", outsider)
    make_account("user", runner)
    gid = grp.getgrnam(gname).gr_gid
    d = shared_dir("mon")
    sock = os.path.join(d, "stats.sock")
    conf = os.path.join(d, "group.conf")
    extra_g = "stats-socket-group = %s\n" % gname
    write_conf(conf, stats=sock, head=extra_g)
    os.chmod(conf, 0o644)

    # as root, with the group: 0660 root:GROUP; the member reads, the outsider cannot
    p = start(["-f", "-c", conf], "group-root")
    wait_for(lambda: os.path.exists(sock) and connects(BASE), "the stats socket")
    st = os.stat(sock)
    assert (st.st_mode & 0o777, st.st_gid) == (0o660, gid), (oct(st.st_mode), st.st_gid)
    rc, out = status_as(member, sock)
    assert rc == 0 and out.startswith("iketcpd ") and " status" in out.splitlines()[0], out
    rc, out = status_as(outsider, sock)
    assert rc != 0 and "Permission denied" in out, (rc, out)

    # SIGHUP: mode 0600 for the running socket; the member is refused now
    write_conf(conf, stats=sock, head=extra_g + "stats-socket-mode = 600\n")
    p.send_signal(signal.SIGHUP)
    wait_log(p, r"stats-socket %s: now mode 0600, group %s" % (re.escape(sock), gname))
    assert os.stat(sock).st_mode & 0o777 == 0o600
    rc, out = status_as(member, sock)
    assert rc != 0 and "Permission denied" in out, (rc, out)
    stop(p)
    assert not os.path.exists(sock), "socket left behind"

    # started as root with user = runner: after the switch a reload still
    # changes the mode (the socket was handed to the user)
    os.chown(d, pwd.getpwnam(runner).pw_uid, -1)
    write_conf(conf, stats=sock, head="user = %s\n" % runner + extra_g)
    p = start(["-f", "-c", conf], "group-drop")
    wait_log(p, r"running as user %s" % runner)
    rc, out = status_as(member, sock)
    assert rc == 0, out
    write_conf(conf, stats=sock, head="user = %s\n%sstats-socket-mode = 0600\n" % (runner, extra_g))
    p.send_signal(signal.SIGHUP)
    wait_log(p, r"now mode 0600")
    rc, out = status_as(member, sock)
    assert rc != 0 and "Permission denied" in out, (rc, out)
    stop(p)

    # a non-root iketcpd: the member may give the socket to its group, the
    # runner (not in it) may not, and says why
    for who, ok in ((member, True), (runner, False)):
        os.chown(d, pwd.getpwnam(who).pw_uid, -1)
        write_conf(conf, stats=sock, head=extra_g)
        log = os.path.join(TMP, "group-nonroot-%s.log" % who)
        LOGS.append(log)
        with open(log, "w") as lf:
            q = subprocess.Popen(setpriv(who) + [IKETCPD, "-f", "-c", conf], stdout=lf,
                                 stderr=lf)
        PROCS.append(q)
        if ok:
            wait_for(lambda: os.path.exists(sock) and connects(BASE), "the member's iketcpd")
            st = os.stat(sock)
            assert (st.st_mode & 0o777, st.st_gid) == (0o660, gid), oct(st.st_mode)
            assert status_as(member, sock)[0] == 0
            q.send_signal(signal.SIGTERM)
            assert q.wait(5) == 0
        else:
            assert q.wait(5) == 1
            with open(log) as f:
                text = f.read()
            assert re.search(r"stats-socket-group %s: iketcpd runs as uid \d+, is not root "
                             r"and not a member of group %s" % (gname, gname), text), text
            assert not os.path.exists(sock), "a socket of a refused start stays"


def test_stats_socket_runtime_directory_default():
    """Without stats-socket, $RUNTIME_DIRECTORY/stats.sock (the first
    directory when systemd names several), mode 0600; `stats-socket = none`
    turns it off, on SIGHUP too, and a later SIGHUP brings it back."""
    rt = os.path.join(TMP, "rt")
    os.makedirs(rt, exist_ok=True)
    sock = os.path.join(rt, "stats.sock")
    conf = os.path.join(TMP, "rt.conf")
    write_conf(conf)
    env = dict(os.environ, RUNTIME_DIRECTORY=rt + ":" + os.path.join(TMP, "rt2"))
    # the umask systemd's unit sets must not decide the mode
    p = subprocess.Popen(["sh", "-c", "umask 000; exec \"$0\" \"$@\"", IKETCPD, "-f", "-c",
                          conf], env=env, stdout=open(os.path.join(TMP, "rt.log"), "w"),
                         stderr=subprocess.STDOUT)
    p.logname = os.path.join(TMP, "rt.log")
    LOGS.append(p.logname)
    PROCS.append(p)
    wait_for(lambda: os.path.exists(sock), "the default stats socket")
    assert os.stat(sock).st_mode & 0o777 == 0o600, oct(os.stat(sock).st_mode)
    assert frames_runt(sock) == 0 and "stats-socket %s (mode 0600)" % sock in read_log(p)
    write_conf(conf, stats="none")
    p.send_signal(signal.SIGHUP)
    wait_for(lambda: not os.path.exists(sock), "the socket gone after stats-socket = none")
    write_conf(conf)
    p.send_signal(signal.SIGHUP)
    wait_for(lambda: os.path.exists(sock), "the default socket back")
    stop(p)
    # none at start: no socket at all
    write_conf(conf, stats="none")
    p = start(["-f", "-c", conf], "rt-none", env=env)
    wait_for(lambda: connects(BASE), "the listener")
    assert not os.path.exists(sock)
    stop(p)
    # and without RUNTIME_DIRECTORY no default either
    write_conf(conf)
    env.pop("RUNTIME_DIRECTORY")
    p = start(["-f", "-c", conf], "rt-unset", env=env)
    wait_for(lambda: connects(BASE), "the listener")
    assert "stats-socket" not in read_log(p), read_log(p)
    stop(p)


# ---- metrics-listen ------------------------------------------------------------------------


def http_get(port, method="GET", path="/metrics", timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r, body


def raw(port, data, timeout=5):
    """Sends data, returns everything until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    got = b""
    while True:
        try:
            c = s.recv(65536)
        except ConnectionResetError:
            break
        if not c:
            break
        got += c
    s.close()
    return got


def scrape_counters(port):
    r, body = http_get(port)
    assert r.status == 200
    series, _ = g.prom_parse(body.decode())
    return series


def test_metrics_listen_scrape_and_errors():
    """GET /metrics: 200, Prometheus 0.0.4 content type, Content-Length,
    Connection: close, the stats socket's prometheus text (strictly valid;
    promtool when present); HEAD: no body; 404, 405 with Allow, 400 for
    junk and a bare CR, 505, 431 for a head over 4 KiB; HTTP/1.0 with bare
    LFs; each answer counted by status."""
    port = BASE + 8
    sock = os.path.join(TMP, "m.sock")
    conf = os.path.join(TMP, "metrics.conf")
    write_conf(conf, stats=sock, head="metrics-listen = 127.0.0.1:%d\n" % port)
    p = start(["-f", "-c", conf], "metrics")
    wait_for(lambda: connects(port), "metrics-listen")
    r, text = http_get(port)
    assert r.status == 200, r.status
    assert r.getheader("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    assert int(r.getheader("Content-Length")) == len(text)
    assert r.getheader("Connection") == "close"
    series, types = g.prom_parse(text.decode())
    assert ("iketcpd_server_connections", (("mode", "server"), ("section", "gw0"))) in series
    promtool = shutil.which("promtool")
    if promtool:
        pr = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            timeout=30)
        assert pr.returncode == 0, pr.stdout + pr.stderr
    # the same text as the stats socket's prometheus answer (the render is shared)
    u = socket.socket(socket.AF_UNIX)
    u.settimeout(5)
    u.connect(sock)
    u.sendall(b"prometheus\n")
    viasock = b""
    while True:
        c = u.recv(65536)
        if not c:
            break
        viasock += c
    u.close()
    strip = lambda t: [ln.split(" ")[0] for ln in t.decode().splitlines()]  # noqa: E731
    assert strip(viasock) == strip(text), "HTTP and stats socket texts differ"

    r, b = http_get(port, "HEAD")
    assert r.status == 200 and b == b"" and int(r.getheader("Content-Length")) > 1000
    r, _ = http_get(port, path="/")
    assert r.status == 404
    r, _ = http_get(port, path="/metrics?x=1")
    assert r.status == 200
    r, _ = http_get(port, "POST")
    assert r.status == 405 and r.getheader("Allow") == "GET, HEAD"
    assert raw(port, b"GET /metrics HTTP/1.0\n\n").startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw(port, b"\x16\x03\x01\x02\x00\x01\x00").startswith(b"HTTP/1.1 400 ")
    assert raw(port, b"GET /metrics HTTP/1.1\rHost: x\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(port, b"GET /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 "), \
        "HTTP/1.1 without Host"
    assert raw(port, b"GET /metrics HTTP/2.0\r\n\r\n").startswith(b"HTTP/1.1 505 ")
    big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 5000 + b"\r\n\r\n"
    assert raw(port, big).startswith(b"HTTP/1.1 431 ")
    c = scrape_counters(port)
    code = lambda n: c[("iketcpd_metrics_http_requests_total", (("code", n),))]  # noqa: E731
    # 200: GET, HEAD, the query, HTTP/1.0 and this scrape (counted before it renders)
    assert (code("200"), code("404"), code("405"), code("400"), code("505"), code("431")) == \
        (5, 1, 1, 3, 1, 1), c
    stop(p)


def test_metrics_listen_slowloris_and_cap():
    """A scraper that trickles its head is cut at the 5 s deadline while
    another is served at once; beyond 16 open connections a new one is
    closed at once and counted, and a scrape works again when they go."""
    port = BASE + 8
    conf = os.path.join(TMP, "metrics2.conf")
    write_conf(conf, head="metrics-listen = 127.0.0.1:%d\n" % port)
    p = start(["-f", "-c", conf], "metrics-slow")
    wait_for(lambda: connects(port), "metrics-listen")
    slow = socket.create_connection(("127.0.0.1", port), timeout=0.2)
    t0 = time.time()
    slow.sendall(b"GET /metrics HTTP/1.1\r\n")
    cut = None
    served = False
    while time.time() - t0 < 9:
        try:
            slow.sendall(b"X")
            d = slow.recv(100)
            if d == b"":
                cut = time.time() - t0
                break
            raise AssertionError("slowloris got an answer: %r" % d)
        except socket.timeout:
            pass
        except (ConnectionResetError, BrokenPipeError):
            cut = time.time() - t0
            break
        if not served and time.time() - t0 > 1:
            t1 = time.time()
            r, _ = http_get(port, timeout=2)
            assert r.status == 200 and time.time() - t1 < 1, "second scraper waited"
            served = True
        time.sleep(0.3)
    slow.close()
    assert served and cut is not None and 4.5 <= cut <= 7, cut
    c = scrape_counters(port)
    assert c[("iketcpd_metrics_http_timeouts_total", ())] == 1, c

    # the cap: 16 idle connections are held, the 17th is closed at once
    idle = [socket.create_connection(("127.0.0.1", port), timeout=3) for _ in range(16)]
    time.sleep(0.05)  # not a wait for a condition: lets the loop accept them in order
    extra = socket.create_connection(("127.0.0.1", port), timeout=3)
    t1 = time.time()
    try:
        assert extra.recv(100) == b"", "17th connection got data"
    except ConnectionResetError:
        pass
    assert time.time() - t1 < 1.5, "17th connection was not closed at once"
    extra.close()
    # the held ones are still served
    idle[0].sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    assert idle[0].recv(20).startswith(b"HTTP/1.1 200")
    for s in idle:
        s.close()
    c = wait_for(lambda: (lambda c: c if c[("iketcpd_metrics_http_refused_total", ())] >= 1
                          else None)(scrape_counters(port)), "a scrape after the cap")
    assert c[("iketcpd_metrics_http_refused_total", ())] == 1, c
    stop(p)


def test_metrics_listen_reload():
    """SIGHUP with another metrics-listen address re-binds (the old port
    refuses); `none` closes it; an unchanged address keeps serving."""
    conf = os.path.join(TMP, "metrics3.conf")

    def conf_with(addr):
        write_conf(conf, head="metrics-listen = %s\n" % addr)

    conf_with("127.0.0.1:%d" % (BASE + 8))
    p = start(["-f", "-c", conf], "metrics-reload")
    wait_for(lambda: connects(BASE + 8), "metrics-listen")
    p.send_signal(signal.SIGHUP)
    wait_log(p, r"configuration reloaded")
    assert http_get(BASE + 8)[0].status == 200
    conf_with("127.0.0.1:%d" % (BASE + 9))
    p.send_signal(signal.SIGHUP)
    wait_for(lambda: connects(BASE + 9), "metrics-listen on the new port")
    assert not connects(BASE + 8), "the old metrics port still accepts"
    assert http_get(BASE + 9)[0].status == 200
    conf_with("none")
    p.send_signal(signal.SIGHUP)
    wait_for(lambda: not connects(BASE + 9), "metrics-listen closed by none")
    stop(p)


def cleanup():
    """Kills what a test left (children and daemonized pids) and forgets its logs."""
    g.kill_procs(PROCS)
    for pid in PIDS:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    PIDS.clear()
    LOGS.clear()
    remove_accounts()


def main():
    global IKETCPD
    IKETCPD = os.path.abspath(sys.argv[1])
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")]
    print("ports from BASE=%d (IKETCP_TEST_BASE=%d to repeat)" % (BASE, BASE - 20), flush=True)
    return g.run_tests(tests, sys.argv[2:], logs=lambda: list(LOGS), cleanup=cleanup)

if __name__ == "__main__":
    sys.exit(main())
