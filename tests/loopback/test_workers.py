#!/usr/bin/env python3
"""Loopback tests of iketcpd with workers = 2 (daemon/workers.h).

Connections come from 127.0.0.2, 127.0.0.3, ... to a server on 127.0.0.1;
which worker holds a connection is read from `ss -tnp` (the process of the
accepted socket) and the worker's index from its "worker K (pid P) ready"
log line. Every wait is bounded; every process is killed on exit.

usage: test_workers.py PATH/TO/iketcpd
"""
import ipaddress
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_gateway as g  # noqa: E402

# BASE+30..BASE+39: test_gateway.py uses BASE..+19, test_service.py +20..+29.
BASE = int(os.environ.get("IKETCP_TEST_BASE", 20000 + (os.getpid() % 600) * 20)) + 30
TMP = tempfile.mkdtemp(prefix="iketcpd-wk-")
PROCS = []
PORT, BACKEND, PORT2 = BASE, BASE + 1, BASE + 2


def wait_for(cond, what, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def write_conf(path, listens=(PORT,), workers=2, stats=None):
    with open(path, "w") as f:
        f.write("workers = %s\n" % workers)
        if stats:
            f.write("stats-socket = %s\n" % stats)
        f.write("[server gw]\n")
        for p in listens:
            f.write("listen = 127.0.0.1:%d\n" % p)
        f.write("backend = 127.0.0.1:%d\n" % BACKEND)


class Gw:
    """iketcpd -c FILE with workers, its backend socket and stats socket."""

    def __init__(self, workers=2, env=None):
        self.conf = os.path.join(TMP, "w.conf")
        self.stats = os.path.join(TMP, "stats.sock")
        write_conf(self.conf, workers=workers, stats=self.stats)
        self.be = g.udp(BACKEND)
        log = open(os.path.join(TMP, "iketcpd.log"), "w")
        self.p = subprocess.Popen([g.IKETCPD, "-f", "-v", "-c", self.conf], stderr=log,
                                  stdout=log, env=env)
        self.p.logname = log.name
        PROCS.append(self.p)
        self.n = workers
        wait_for(lambda: len(self.ready()) == workers and os.path.exists(self.stats),
                 "%d workers ready" % workers, 10)

    def log(self):
        with open(self.p.logname) as f:
            return f.read()

    def ready(self):
        """{index: pid} of the workers' latest "ready" lines."""
        return {int(k): int(p) for k, p in
                re.findall(r"worker (\d+) \(pid (\d+)\) ready", self.log())}

    def children(self):
        out = subprocess.run(["pgrep", "-P", str(self.p.pid)], capture_output=True,
                             text=True).stdout
        return sorted(int(x) for x in out.split())

    def open_session(self, spi, src_ip, port=PORT):
        t = g.tcp_from(src_ip, port)
        m = g.dgram_ike(spi)
        t.sendall(b"IKETCP" + g.frame(m))
        d, src = self.be.recvfrom(70000)
        assert d == m, d
        return t, src

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(10)
        self.be.close()
        assert rc == 0, "exit status %d" % rc
        # every worker stopped on its SIGTERM, none had to be killed, and
        # each exited 0 (a sanitizer's report would make it 1 or 23)
        log = self.log()
        assert "SIGKILL" not in log, log[-2000:]
        assert not re.search(r"exited with status [1-9]|Sanitizer", log), log[-3000:]


def holder(t, port=PORT):
    """The pid of the process that holds the accepted end of connection t."""
    me = t.getsockname()

    def find():
        out = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True,
                             text=True).stdout
        for ln in out.splitlines():
            f = ln.split()
            if len(f) >= 5 and f[2] == "127.0.0.1:%d" % port and \
                    f[3] == "%s:%d" % me and "pid=" in ln:
                return int(re.search(r"pid=(\d+)", ln).group(1))
        return None
    return wait_for(find, "the server end of %s:%d in ss" % me)


def expected_worker(ip, n):
    """The fold the reuseport program computes (workers.c attach_cbpf)."""
    a = int(ipaddress.IPv4Address(ip))
    h = a ^ (a >> 16)
    h ^= h >> 8
    return (h & 0xFFFFFFFF) % n


def relay_both_ways(gw, t, src, spi, seq):
    e = g.esp(spi, seq)
    t.sendall(g.frame(e))
    d, s2 = gw.be.recvfrom(70000)
    assert d == e and s2 == src, (s2, src)
    gw.be.sendto(g.esp(spi ^ 0xFFFF, seq), src)
    assert g.recv_frame(t) == g.esp(spi ^ 0xFFFF, seq)


# ---- tests -----------------------------------------------------------------


def test_sources_spread_by_address_and_relay():
    """Two source addresses whose folds differ land on the two workers the
    program names (the kernel's own hash would not agree every time), and
    both relay both ways."""
    gw = Gw()
    try:
        ready = gw.ready()
        assert sorted(ready.values()) == gw.children(), (ready, gw.children())
        seen = {}
        for i, ip in enumerate(["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]):
            t, src = gw.open_session(0xA000 + i, ip)
            relay_both_ways(gw, t, src, 0x500 + i, 1)
            w = expected_worker(ip, 2)
            assert holder(t) == ready[w], (ip, holder(t), ready)
            seen[w] = True
        assert len(seen) == 2, seen
    finally:
        gw.stop()


def test_reconnect_from_same_address_finds_its_session():
    """The single-process test_server_reconnect_keeps_backend_port, many
    times over and from two addresses: each reconnect (a new source port)
    reaches the worker that holds the session, so its ESP goes out from the
    session's UDP port and the answers follow the new connection."""
    gw = Gw()
    try:
        for i, ip in enumerate(["127.0.0.2", "127.0.0.3"]):
            t, src = gw.open_session(0xB000 + i, ip)
            pid = holder(t)
            spi = 0x600 + i
            relay_both_ways(gw, t, src, spi, 1)
            for k in range(2, 10):
                t.close()
                t = g.tcp_from(ip, PORT)
                t.sendall(b"IKETCP" + g.frame(g.esp(spi, k)))
                d, src2 = gw.be.recvfrom(70000)
                assert d == g.esp(spi, k) and src2 == src, (ip, k, src2, src)
                gw.be.sendto(g.esp(0xAB, k), src)
                assert g.recv_frame(t) == g.esp(0xAB, k)
                assert holder(t) == pid
            t.close()
    finally:
        gw.stop()


def test_stats_and_status_are_summed():
    gw = Gw()
    try:
        conns = [gw.open_session(0xC000 + i, ip)
                 for i, ip in enumerate(["127.0.0.2", "127.0.0.3"])]
        assert len({holder(t) for t, _ in conns}) == 2
        st = g.read_stats(gw.stats)
        assert st[("server", "gw", "sessions")] == 2, st
        assert st[("server", "gw", "connections")] == 2, st
        assert st[("server", "gw", "accepted")] >= 2, st
        assert st[("global", "iketcpd", "workers")] == 2
        assert st[("global", "iketcpd", "workers_answered")] == 2
        lines = g.read_stats_lines(gw.stats)
        keys = [(k, n, key) for k, n, key, _ in lines]
        assert len(keys) == len(set(keys)), "a key twice"
        status = g.stats_request(gw.stats, "status")
        assert status.count(" status\n") == 1, status
        rows = [ln for ln in status.splitlines() if " session " in ln]
        assert len(rows) == 2 and any("127.0.0.2" in r for r in rows) and \
            any("127.0.0.3" in r for r in rows), status
        prom = g.stats_request(gw.stats, "prometheus")
        assert re.search(r'^iketcpd_server_sessions\{section="gw",mode="server"\} 2$', prom,
                         re.M), prom
        assert len(re.findall(r"^iketcpd_build_info", prom, re.M)) == 1
        assert len(re.findall(r"^# TYPE iketcpd_server_sessions ", prom, re.M)) == 1
    finally:
        gw.stop()


def test_sighup_reaches_every_worker():
    """A listener added by a reload is opened by every worker: each takes
    its address's connections on it."""
    gw = Gw()
    try:
        write_conf(gw.conf, listens=(PORT, PORT2), stats=gw.stats)
        gw.p.send_signal(signal.SIGHUP)
        wait_for(lambda: gw.log().count("configuration reloaded") >= 2,
                 "both workers reloaded")

        def listeners():
            out = subprocess.run(["ss", "-tlnpH"], capture_output=True, text=True).stdout
            return {int(p) for ln in out.splitlines() if "127.0.0.1:%d " % PORT2 in ln
                    for p in re.findall(r"pid=(\d+)", ln)}
        wait_for(lambda: listeners() == set(gw.ready().values()),
                 "both workers listening on the new port")
        for i, ip in enumerate(["127.0.0.2", "127.0.0.3"]):
            t, src = gw.open_session(0xD000 + i, ip, port=PORT2)
            relay_both_ways(gw, t, src, 0x700 + i, 1)
        # once each: a worker passes no signal on to its siblings
        assert gw.log().count("configuration reloaded") == 2, gw.log()[-3000:]
    finally:
        gw.stop()


def test_killed_worker_restarted_others_keep_connections():
    gw = Gw()
    try:
        ready = gw.ready()
        a, src_a = gw.open_session(0xE001, "127.0.0.2")
        b, src_b = gw.open_session(0xE002, "127.0.0.3")
        pa, pb = holder(a), holder(b)
        assert pa != pb
        os.kill(pa, signal.SIGKILL)
        assert g.closed_within(a, 3)
        wait_for(lambda: len(gw.children()) == 2 and pa not in gw.children(),
                 "a new worker", 10)
        wait_for(lambda: len(gw.ready()) == 2 and pa not in gw.ready().values(),
                 "the new worker ready", 10)
        assert "restarting it in" in gw.log()
        # the other worker's connection and session went on
        assert pb in gw.children()
        relay_both_ways(gw, b, src_b, 0x800, 1)
        # the address of the dead worker is served by its successor
        a2, src_a2 = gw.open_session(0xE003, "127.0.0.2")
        relay_both_ways(gw, a2, src_a2, 0x801, 1)
        assert holder(a2) == gw.ready()[[k for k, v in ready.items() if v == pa][0]]
        st = g.read_stats(gw.stats)
        assert st[("global", "iketcpd", "workers_answered")] == 2, st
        # the new worker hears the signals too
        n = gw.log().count("configuration reloaded")
        gw.p.send_signal(signal.SIGHUP)
        wait_for(lambda: gw.log().count("configuration reloaded") >= n + 2,
                 "both workers reloaded")
        relay_both_ways(gw, b, src_b, 0x800, 2)
        assert gw.log().count("configuration reloaded") == n + 2, gw.log()[-3000:]
    finally:
        gw.stop()


def test_sigterm_stops_all_workers():
    gw = Gw()
    kids = gw.children()
    assert len(kids) == 2
    t, src = gw.open_session(0xF001, "127.0.0.2")
    gw.stop()
    for k in kids:
        assert not os.path.exists("/proc/%d" % k) or \
            open("/proc/%d/stat" % k).read().split()[2] == "Z", "worker %d left" % k


def test_supervisor_killed_workers_follow():
    """No orphans: a supervisor that dies without a word (SIGKILL) still
    takes its workers with it."""
    gw = Gw()
    kids = gw.children()
    gw.p.kill()
    gw.p.wait(5)
    gw.be.close()
    wait_for(lambda: not any(os.path.exists("/proc/%d" % k) for k in kids),
             "the workers to exit", 10)


def test_ready_once_all_workers_run():
    """sd_notify READY=1 comes from the supervisor once, after both
    workers said they are ready; the workers send nothing."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = os.path.join(TMP, "notify.sock")
    if os.path.exists(path):
        os.unlink(path)
    s.bind(path)
    s.settimeout(5)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    gw = Gw(env=env)
    try:
        msgs = []
        end = time.time() + 5
        while time.time() < end and not any("READY=1" in m for m, _ in msgs):
            msgs.append((s.recv(4096).decode(), time.time()))
        assert any("READY=1" in m for m, _ in msgs), msgs
        log = gw.log()
        assert log.index("all 2 workers ready") < len(log)
        s.settimeout(0.3)
        try:
            while True:
                msgs.append((s.recv(4096).decode(), time.time()))
        except socket.timeout:
            pass
        assert sum(m.count("READY=1") for m, _ in msgs) == 1, msgs
    finally:
        gw.stop()
        s.close()


def test_one_worker_is_one_process():
    """workers = 1 (the default): no fork, no supervisor."""
    conf = os.path.join(TMP, "one.conf")
    write_conf(conf, workers=1)
    be = g.udp(BACKEND)
    log = open(os.path.join(TMP, "one.log"), "w")
    p = subprocess.Popen([g.IKETCPD, "-f", "-c", conf], stderr=log)
    p.logname = log.name
    PROCS.append(p)
    try:
        g.wait_port(PORT)
        assert subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True).stdout == b""
        t = g.tcp_from("127.0.0.2", PORT)
        t.sendall(b"IKETCP" + g.frame(g.dgram_ike(0x1234)))
        assert be.recvfrom(70000)[0] == g.dgram_ike(0x1234)
        assert holder(t) == p.pid
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(5) == 0
        be.close()


def expected_worker6(ip, n):
    w = struct.unpack(">4I", socket.inet_pton(socket.AF_INET6, ip))
    a = w[0] ^ w[1] ^ w[2] ^ w[3]
    h = a ^ (a >> 16)
    h ^= h >> 8
    return (h & 0xFFFFFFFF) % n


def v6_inner():
    """In a network namespace of its own (test_ipv6_sources_spread): ::2
    and ::3 on its loopback, a server on [::1]."""
    subprocess.run("ip link set lo up && ip addr add ::2/128 dev lo && "
                   "ip addr add ::3/128 dev lo", shell=True, check=True)
    conf = os.path.join(TMP, "v6.conf")
    with open(conf, "w") as f:
        f.write("workers = 2\n[server gw]\nlisten = [::1]:%d\nbackend = 127.0.0.1:%d\n"
                % (PORT, BACKEND))
    be = g.udp(BACKEND)
    log = open(os.path.join(TMP, "v6.log"), "w")
    p = subprocess.Popen([g.IKETCPD, "-f", "-v", "-c", conf], stderr=log)
    try:
        def ready():
            with open(log.name) as f:
                return {int(k): int(v) for k, v in
                        re.findall(r"worker (\d+) \(pid (\d+)\) ready", f.read())}
        wait_for(lambda: len(ready()) == 2, "2 workers ready", 10)
        seen = set()
        for i, src in enumerate(["::2", "::3"] * 3):
            t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            t.bind((src, 0))
            t.settimeout(3)
            t.connect(("::1", PORT))
            m = g.dgram_ike(0x6600 + i)
            t.sendall(b"IKETCP" + g.frame(m))
            assert be.recvfrom(70000)[0] == m
            me = "[%s]:%d" % (src, t.getsockname()[1])

            def find():
                out = subprocess.run(["ss", "-tnpH", "state", "established"],
                                     capture_output=True, text=True).stdout
                for ln in out.splitlines():
                    f = ln.split()
                    if len(f) >= 5 and f[3] == me and "pid=" in ln:
                        return int(re.search(r"pid=(\d+)", ln).group(1))
            w = expected_worker6(src, 2)
            assert wait_for(find, "the server end of " + me) == ready()[w], (src, ready())
            seen.add(w)
            t.close()
        assert seen == {0, 1}
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        be.close()


def test_ipv6_sources_spread():
    """The IPv6 program (the source address at SKF_NET_OFF + 8..23) on this
    kernel: ::2 and ::3 land on the workers it names, every time. Needs
    root for the namespace (like the attack suite: fails without it)."""
    r = subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__),
                        "--v6-inner", g.IKETCPD], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def main():
    if sys.argv[1] == "--v6-inner":
        g.IKETCPD = sys.argv[2]
        v6_inner()
        return 0
    g.IKETCPD = os.path.abspath(sys.argv[1])
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")]
    print("ports from BASE=%d (IKETCP_TEST_BASE to repeat)" % BASE, flush=True)

    def cleanup():
        for p in PROCS:
            for k in subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                    text=True).stdout.split():
                try:
                    os.kill(int(k), signal.SIGKILL)
                except OSError:
                    pass
        g.kill_procs(PROCS)

    return g.run_tests(tests, sys.argv[2:], logs=lambda: [p.logname for p in PROCS
                                                            if hasattr(p, "logname")],
                       cleanup=cleanup)


if __name__ == "__main__":
    sys.exit(main())
