#!/usr/bin/env python3
"""Checks tools/wireshark/iketcp.lua with tshark on two captures.

1. tests/data/libreswan-espintcp-session.pcap, a real RFC 9329 session
   (libreswan + Linux espintcp): the prefix, IKE_SA_INIT and IKE_AUTH both
   ways, 3 ESP frames each way; on the port and through the heuristic alone.
2. A capture made here with tcpdump on lo: a real iketcpd client -> iketcpd
   server pair relays a scripted IKE exchange and ESP, and a scripted RFC 9329
   client sends its stream to the same server in small pieces (prefix split,
   frames split across segments), several frames in one segment (ESP,
   keepalive, empty) and, on a third connection, a Length 1 frame.
   Needs root (tcpdump); without it only part 1 runs.

usage: test_dissector.py PATH/TO/iketcpd [CAPTURE_TO_KEEP]
Skips (exit 0, saying so) only when tshark is missing and CI is not set.
"""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

# The daemons run as root without `user` (allow-root).
os.environ.setdefault("IKETCPD_ALLOW_ROOT", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LUA = os.path.join(ROOT, "tools", "wireshark", "iketcp.lua")
LIBRESWAN = os.path.join(ROOT, "tests", "data", "libreswan-espintcp-session.pcap")
BASE = int(os.environ.get("IKETCP_TEST_BASE", 20000 + (os.getpid() % 600) * 20)) + 15
TMP = tempfile.mkdtemp(prefix="iketcp-ws-")
KEYLOG = os.path.join(TMP, "tls-keys.log")
PROCS = []
FIELDS = ["frame.number", "tcp.stream", "tcp.len", "tcp.segment.count", "iketcp.prefix",
          "iketcp.length", "iketcp.kind", "isakmp.exchangetype", "isakmp.flag_r",
          "isakmp.ispi", "esp.spi", "esp.sequence", "_ws.expert.message"]
IKE, ESP, KEEPALIVE, EMPTY, MALFORMED = 1, 2, 3, 4, 5


def tshark(cap, *opts):
    """One row per packet with iketcp in it: {field: [values]}."""
    cmd = ["tshark", "-n", "-r", cap, "-X", "lua_script:" + LUA, "-Y", "iketcp",
           "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"] + list(opts)
    for fl in FIELDS:
        cmd += ["-e", fl]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 0, "tshark failed: %s" % r.stderr
    assert "Lua Error" not in r.stdout + r.stderr, r.stdout + r.stderr
    rows = []
    for line in r.stdout.splitlines():
        vals = line.split("\t")
        rows.append({k: (v.split("|") if v else []) for k, v in zip(FIELDS, vals)})
    return rows


def col(rows, field, conv=str):
    return [conv(v) for r in rows for v in r[field]]


def check_libreswan():
    for opts in ([], ["-o", "iketcp.tcp_port:0"], ["-o", "tcp.try_heuristic_first:TRUE"],
                 ["-o", "tcpencap.tcp.port:4500"]):
        rows = tshark(LIBRESWAN, *opts)
        what = "libreswan capture %s" % (opts or "on port 4500")
        assert len(rows) == 11, "%s: %d packets with iketcp, want 11" % (what, len(rows))
        assert col(rows, "iketcp.prefix") == ["IKETCP"], what
        assert rows[0]["iketcp.prefix"] and not rows[0]["iketcp.length"], what
        # IKE_SA_INIT and IKE_AUTH, each a request (R=0) then a response (R=1)
        ike = [(int(r["isakmp.exchangetype"][0]), int(r["isakmp.flag_r"][0])) for r in rows
               if r["isakmp.exchangetype"]]
        assert ike == [(34, 0), (34, 1), (35, 0), (35, 1)], (what, ike)
        assert set(col(rows, "isakmp.ispi")) == {"6598f2a720539fd5"}, what
        assert col(rows, "iketcp.length", int) == [834, 446, 391, 231] + [122] * 6, what
        esp = [(r["esp.spi"][0], int(r["esp.sequence"][0])) for r in rows if r["esp.spi"]]
        want = []
        for i in (1, 2, 3):
            want += [("0xd55e1aff", i), ("0xd70f1ce5", i)]
        assert esp == want, (what, esp)
        assert col(rows, "iketcp.kind", int) == [IKE] * 4 + [ESP] * 6, what
    print("PASS libreswan capture: prefix, IKE_SA_INIT/IKE_AUTH both ways, 6 ESP frames "
          "(port 4500, heuristic only, heuristics first, tcpencap on 4500)", flush=True)


def ike(spi_i, spi_r=0, ex=34, flags=0x08, msgid=0, n=400):
    """An IKE message with one Nonce payload of n bytes (valid for isakmp)."""
    nonce = struct.pack(">BBH", 0, 0, 4 + n) + b"n" * n
    return struct.pack(">QQBBBBII", spi_i, spi_r, 40, 0x20, ex, flags, msgid,
                       28 + len(nonce)) + nonce


def frame(body):
    return struct.pack(">H", len(body) + 2) + body


def esp(spi, seq, n=100):
    return struct.pack(">II", spi, seq) + b"e" * n


def start(args, name):
    log = open(os.path.join(TMP, name + ".log"), "w")
    p = subprocess.Popen([IKETCPD] + args + ["-f", "-v"], stderr=log)
    p.logname = log.name
    PROCS.append(p)
    return p


def wait_until(cond, what, timeout=5.0):
    end = time.time() + timeout
    while not cond():
        assert time.time() < end, "timed out: " + what
        time.sleep(0.02)


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def udp_bound(port):
    with open("/proc/net/udp") as fh:
        return any(ln.split()[1].endswith(":%04X" % port) for ln in list(fh)[1:])


def udp(port=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    s.settimeout(5)
    return s


def response(m):
    return m[:23] + bytes([0x20]) + m[24:]  # flags: R, not I (after the marker)


def make_capture(cap):
    srv_port, be_port, cl_port, tls_port = BASE, BASE + 1, BASE + 2, BASE + 3
    key, cert = os.path.join(TMP, "gw.key"), os.path.join(TMP, "gw.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=gw.test"], check=True, timeout=30,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dump = subprocess.Popen(["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-s", "0", "-w", cap,
                             "tcp port %d or tcp port %d" % (srv_port, tls_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    PROCS.append(dump)
    end = time.time() + 5
    line = ""
    while "listening on" not in line:
        assert time.time() < end and dump.poll() is None, "tcpdump did not start: " + line
        line = dump.stderr.readline()
    be = udp(be_port)
    ikd = udp()
    start(["server", "--listen", "127.0.0.1:%d" % srv_port, "--backend",
           "127.0.0.1:%d" % be_port, "--listen-tls", "127.0.0.1:%d" % tls_port,
           "--tls-cert", cert, "--tls-key", key], "server")
    wait_until(lambda: port_open(srv_port), "server port")
    start(["client", "--udp", "127.0.0.1:%d" % cl_port, "--peer",
           "127.0.0.1:%d" % srv_port, "--enable-tcp", "yes"], "client")
    wait_until(lambda: udp_bound(cl_port), "client UDP port")

    # Connection 1: iketcpd client -> server, IKE_SA_INIT and IKE_AUTH, ESP.
    exch = [b"\0\0\0\0" + ike(0xC1), b"\0\0\0\0" + ike(0xC1, 0xD1, 35, msgid=1)]
    for m in exch:
        ikd.sendto(m, ("127.0.0.1", cl_port))
        d, src = be.recvfrom(70000)
        assert d == m
        be.sendto(response(m), src)
        assert ikd.recvfrom(70000)[0] == response(m)
    for i in range(1, 4):
        ikd.sendto(esp(0xC0DE0001, i), ("127.0.0.1", cl_port))
        assert be.recvfrom(70000)[0] == esp(0xC0DE0001, i)
        be.sendto(esp(0xC0DE0002, i), src)
        assert ikd.recvfrom(70000)[0] == esp(0xC0DE0002, i)

    # Connection 2: a scripted client; its stream in small pieces, one
    # segment each (TCP_NODELAY, and each piece waits for the data before
    # it to be acknowledged: the send queue is empty).
    t = socket.create_connection(("127.0.0.1", srv_port), timeout=5)
    t.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    init = b"\0\0\0\0" + ike(0xE1, n=1200)
    stream = b"IKETCP" + frame(init)
    pieces = [stream[:3], stream[3:8], stream[8:500], stream[500:]]
    for p in pieces:
        t.sendall(p)
        wait_until(lambda: unsent(t) == 0, "piece acknowledged")
    assert be.recvfrom(70000)[0] == init
    # several frames in one segment: ESP, a keepalive, an empty frame, ESP
    t.sendall(frame(esp(0xE0E0E0E0, 1)) + b"\x00\x03\xff" + b"\x00\x02" + frame(esp(0xE0E0E0E0, 2)))
    assert be.recvfrom(70000)[0] == esp(0xE0E0E0E0, 1)
    assert be.recvfrom(70000)[0] == esp(0xE0E0E0E0, 2)
    t.close()

    # Connection 4 (RFC 9329 section 8): TLS, its keys logged for tshark;
    # an ESP frame split over two TLS records.
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.keylog_filename = KEYLOG
    t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", tls_port), timeout=5))
    m = b"\0\0\0\0" + ike(0xF1)
    t.sendall(b"IKETCP" + frame(m))
    d, src = be.recvfrom(70000)
    assert d == m
    be.sendto(response(m), src)
    n = struct.unpack(">H", t.recv(2))[0]
    got = b""
    while len(got) < n - 2:
        got += t.recv(n - 2 - len(got))
    assert got == response(m)
    f = frame(esp(0xF0F0F0F0, 1))
    t.sendall(f[:50])
    t.sendall(f[50:])
    assert be.recvfrom(70000)[0] == esp(0xF0F0F0F0, 1)
    t.close()

    # Connection 3: a Length 1 frame (the server closes the connection).
    t = socket.create_connection(("127.0.0.1", srv_port), timeout=5)
    t.sendall(b"IKETCP\x00\x01")
    t.settimeout(5)
    try:
        while t.recv(100):
            pass
    except ConnectionResetError:
        pass
    t.close()
    # tcpdump writes each packet as it comes (--immediate-mode -U): done
    # when the file has stopped growing (the last ACKs and FINs are in).
    sizes = [-1]

    def settled():
        sizes.append(os.path.getsize(cap))
        return len(sizes) > 10 and sizes[-1] == sizes[-10] > 24

    wait_until(settled, "capture file settled")
    dump.terminate()
    dump.wait(5)
    PROCS.remove(dump)
    be.close()
    ikd.close()
    return pieces, init


def unsent(t):
    # SIOCOUTQ: bytes not yet acknowledged by the peer
    import fcntl
    import array
    buf = array.array("i", [0])
    fcntl.ioctl(t.fileno(), 0x5411, buf)
    return buf[0]


def check_own_capture(cap):
    pieces, init = make_capture(cap)
    rows = tshark(cap, "-o", "iketcp.tcp_port:%d" % BASE)
    streams = {}
    for r in rows:
        streams.setdefault(int(r["tcp.stream"][0]), []).append(r)
    def stream_with(pred, what):
        found = [rs for rs in streams.values() if any(pred(r) for r in rs)]
        assert len(found) == 1, "%d streams with %s" % (len(found), what)
        return found[0]

    # (the daemons' own probe connections carry no data and are not listed)
    s0 = stream_with(lambda r: r["isakmp.ispi"] == ["00000000000000c1"], "the pair's IKE SA")
    s1 = stream_with(lambda r: r["isakmp.ispi"] == ["00000000000000e1"], "the scripted IKE SA")
    s2 = stream_with(lambda r: r["iketcp.kind"] == [str(MALFORMED)], "Length 1")
    assert len(streams) == 3, sorted(streams)

    ike0 = [(int(r["isakmp.exchangetype"][0]), int(r["isakmp.flag_r"][0])) for r in s0
            if r["isakmp.exchangetype"]]
    assert ike0 == [(34, 0), (34, 1), (35, 0), (35, 1)], ike0
    assert col(s0, "iketcp.prefix") == ["IKETCP"], col(s0, "iketcp.prefix")
    esp0 = col(s0, "esp.spi")
    assert esp0 == ["0xc0de0001", "0xc0de0002"] * 3, esp0

    # Connection 2: the split prefix and the split IKE_SA_INIT are reassembled:
    # decoded once each, in a packet whose own payload is shorter.
    assert col(s1, "iketcp.prefix") == ["IKETCP"], col(s1, "iketcp.prefix")
    inits = [r for r in s1 if r["isakmp.exchangetype"]]
    assert len(inits) == 1 and inits[0]["isakmp.exchangetype"] == ["34"], inits
    r = inits[0]
    assert int(r["iketcp.length"][0]) == len(init) + 2, r["iketcp.length"]
    assert int(r["tcp.len"][0]) == len(pieces[-1]) < len(init), r["tcp.len"]
    assert int(r["tcp.segment.count"][0]) >= 2, r["tcp.segment.count"]
    assert r["isakmp.ispi"] == ["00000000000000e1"], r["isakmp.ispi"]
    multi = [x for x in s1 if len(x["iketcp.kind"]) > 1]
    assert len(multi) == 1, multi
    assert [int(k) for k in multi[0]["iketcp.kind"]] == [ESP, KEEPALIVE, EMPTY, ESP], multi
    assert [int(x) for x in multi[0]["iketcp.length"]] == [110, 3, 2, 110], multi
    assert multi[0]["esp.spi"] == ["0xe0e0e0e0"] * 2, multi

    # Connection 3: Length 1 flagged as malformed.
    assert col(s2, "iketcp.kind", int) == [MALFORMED], col(s2, "iketcp.kind")
    assert any("Length 1 below 2" in m for m in col(s2, "_ws.expert.message")), s2
    # TLS: decrypted with the key log, found by the heuristic on tls.
    rows = tshark(cap, "-o", "iketcp.tcp_port:%d" % BASE, "-o", "tls.keylog_file:" + KEYLOG,
                  "-d", "tcp.port==%d,tls" % (BASE + 3))
    s3 = [r for r in rows if int(r["tcp.stream"][0]) not in [int(x["tcp.stream"][0]) for x in
                                                             s0 + s1 + s2]]
    ike3 = [(int(r["isakmp.exchangetype"][0]), int(r["isakmp.flag_r"][0])) for r in s3
            if r["isakmp.exchangetype"]]
    assert ike3 == [(34, 0), (34, 1)], ike3
    assert col(s3, "iketcp.prefix") == ["IKETCP"], s3
    assert col(s3, "isakmp.ispi") == ["00000000000000f1"] * 2, s3
    assert col(s3, "esp.spi") == ["0xf0f0f0f0"], s3
    # Two passes (-2; the GUI also dissects again, in any order): the second
    # pass answers from what the first recorded and decodes the same.
    def decoded(rs):
        return [(r["frame.number"], r["iketcp.prefix"], r["iketcp.kind"],
                 r["isakmp.exchangetype"], r["esp.spi"]) for r in rs
                if r["iketcp.kind"] or r["iketcp.prefix"]]
    again = tshark(cap, "-2", "-o", "iketcp.tcp_port:%d" % BASE, "-o", "tls.keylog_file:" + KEYLOG,
                   "-d", "tcp.port==%d,tls" % (BASE + 3))
    assert decoded(again) == decoded(rows), (decoded(again), decoded(rows))
    print("PASS TLS: IKE_SA_INIT both ways and an ESP frame split over two records, "
          "decrypted with the key log", flush=True)
    print("PASS own capture: iketcpd pair (IKE_SA_INIT, IKE_AUTH, ESP both ways), split prefix "
          "and frame reassembled (%d segments), ESP+keepalive+empty+ESP in one segment, "
          "Length 1 malformed" % int(r["tcp.segment.count"][0]), flush=True)


def main():
    global IKETCPD
    if not shutil.which("tshark"):
        if os.environ.get("CI"):
            print("FAIL: tshark is missing (ci/deps.sh installs it)")
            return 1
        print("SKIP test_dissector: tshark is not installed (apt-get install tshark)")
        return 0
    IKETCPD = os.path.abspath(sys.argv[1])
    keep = sys.argv[2] if len(sys.argv) > 2 else None
    ver = subprocess.run(["tshark", "-v"], stdout=subprocess.PIPE, text=True).stdout.splitlines()[0]
    print(ver, "; ports from", BASE, flush=True)
    failed = 0
    checks = [("libreswan", check_libreswan)]
    if os.geteuid() == 0 and shutil.which("tcpdump"):
        cap = keep or os.path.join(TMP, "own.pcap")
        checks.append(("own capture", lambda: check_own_capture(cap)))
    else:
        print("SKIP own capture: needs root and tcpdump", flush=True)
    for name, fn in checks:
        try:
            fn()
        except Exception:
            import traceback
            failed += 1
            print("FAIL", name, flush=True)
            traceback.print_exc()
            for p in PROCS:
                if hasattr(p, "logname"):
                    print("---- %s" % p.logname)
                    with open(p.logname) as fh:
                        print("".join(fh.readlines()[-30:]))
        finally:
            for p in PROCS:
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(5)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
            PROCS.clear()
    print("%d passed, %d failed" % (len(checks) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
