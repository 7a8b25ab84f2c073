#!/usr/bin/env python3
"""Tests of the iketcp operator CLI (tools/): version, help, unknown commands
and options, decode of xxd / tcpdump -X / pcap input, probe over TLS and
through an HTTP CONNECT proxy against a real iketcpd (helpers shared with
test_gateway.py).

usage: test_cli.py PATH/TO/iketcpd PATH/TO/iketcp
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_gateway as g  # noqa: E402

CLI = None
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
PCAP = os.path.join(DATA, "libreswan-espintcp-session.pcap")

I2R = [
    "  #0  len=834   ike       IKE_SA_INIT request spi_i=6598f2a720539fd5 "
    "spi_r=0000000000000000 msgid=0 flags=I ike_len=828",
    "  #1  len=391   ike       IKE_AUTH request spi_i=6598f2a720539fd5 "
    "spi_r=d50a5702c7a9f02b msgid=1 flags=I ike_len=385",
    "  #2  len=122   esp       spi=0xd55e1aff seq=1 esp_len=120",
    "  #3  len=122   esp       spi=0xd55e1aff seq=2 esp_len=120",
    "  #4  len=122   esp       spi=0xd55e1aff seq=3 esp_len=120",
]
R2I = [
    "  #0  len=446   ike       IKE_SA_INIT response spi_i=6598f2a720539fd5 "
    "spi_r=d50a5702c7a9f02b msgid=0 flags=R ike_len=440",
    "  #1  len=231   ike       IKE_AUTH response spi_i=6598f2a720539fd5 "
    "spi_r=d50a5702c7a9f02b msgid=1 flags=R ike_len=225",
    "  #2  len=122   esp       spi=0xd70f1ce5 seq=1 esp_len=120",
    "  #3  len=122   esp       spi=0xd70f1ce5 seq=2 esp_len=120",
    "  #4  len=122   esp       spi=0xd70f1ce5 seq=3 esp_len=120",
]
CONN = [
    "connection 1: 192.0.2.1:59050 -> 192.0.2.2:4500 (SYN seen, first packet %d)",
    " 192.0.2.1:59050 -> 192.0.2.2:4500: 1597 bytes in 6 segments, starting with the IKETCP prefix",
] + I2R + [" 192.0.2.2:4500 -> 192.0.2.1:59050: 1043 bytes in 5 segments"] + R2I


def run(*args, stdin=None):
    r = subprocess.run([CLI] + list(args), input=stdin, capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def test_version():
    want = run("version")
    assert want[0] == 0 and want[1].startswith("iketcp "), want
    for a in ("--version", "-V"):
        assert run(a) == want, (a, run(a), want)


def test_unknown_command():
    rc, out, err = run("decod")
    assert rc == 2 and out == "", (rc, out)
    assert err.splitlines() == [
        "iketcp: unknown command 'decod' (did you mean 'decode'?)",
        "commands: demo decode probe stats status version help"], err
    rc, out, err = run("frobnicate")
    assert rc == 2 and err.splitlines()[0] == "iketcp: unknown command 'frobnicate'", err


def test_unknown_option_suggests():
    rc, _, err = run("probe", "--tls-ca", "x", "127.0.0.1")
    assert rc == 2 and "unknown option '--tls-ca' (did you mean --tls-ca-file?)" in err, err
    rc, _, err = run("probe", "--insecur", "127.0.0.1")
    assert rc == 2 and "(did you mean --insecure?)" in err, err
    rc, _, err = run("decode", "--orginator")
    assert rc == 2 and "(did you mean --originator?)" in err, err


def test_help():
    rc, out, _ = run("--help")
    assert rc == 0 and out.startswith("usage: iketcp COMMAND"), out
    for cmd in ("demo", "decode", "probe", "stats", "version", "help"):
        assert "\n  %-8s " % cmd in out, (cmd, out)
        rc, h, err = run(cmd, "--help")
        assert rc == 0 and h.startswith("usage: iketcp " + cmd) and err == "", (cmd, rc, h, err)
        assert run("help", cmd) == (0, h, ""), cmd
    rc, h, _ = run("probe", "--help")
    for opt in ("--tls-ca-file", "--tls-server-name", "--insecure", "--proxy", "--timeout"):
        assert opt in h, (opt, h)


def test_readme_lists_the_cli():
    """README.md shows iketcp --help verbatim; the man page names every command and option."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    _, out, _ = run("--help")
    with open(os.path.join(root, "README.md")) as f:
        assert "```\n" + out + "```\n" in f.read(), out
    with open(os.path.join(root, "man", "iketcp.1")) as f:
        man = f.read().replace("\\-", "-")
    for word in ("demo", "decode", "probe", "stats", "version", "help", "--version", "--tls",
                 "--tls-ca-file", "--tls-server-name", "--insecure", "--proxy", "--originator",
                 "--responder", "--read", "--timeout"):
        assert word in man, word


def test_decode_pcap():
    rc, out, err = run("decode", "-r", PCAP)
    assert rc == 0, (rc, out, err)
    lines = out.splitlines()
    assert lines[0] == "pcap: 28 packets (link type 1, Ethernet), 5 not TCP, 1 TCP connections", lines
    assert lines[1:] == [CONN[0] % 3] + CONN[1:], "\n".join(lines)


def tcpdump(flag):
    r = subprocess.run(["tcpdump", "-nr", PCAP, flag, "tcp"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_decode_tcpdump():
    for flag in ("-X", "-xx"):
        dump = tcpdump(flag)
        assert b"\t0x0000:  " in dump, dump[:200]
        rc, out, err = run("decode", stdin=dump)
        assert rc == 0, (flag, rc, out, err)
        lines = out.splitlines()
        assert lines[0] == "tcpdump dump: 23 packets, 0 not TCP, 1 TCP connections", lines
        assert lines[1:] == [CONN[0] % 1] + CONN[1:], (flag, "\n".join(lines))


def stream(name):
    with open(os.path.join(DATA, name)) as f:
        return bytes.fromhex("".join(ln.strip() for ln in f if not ln.startswith("#")))


def test_decode_xxd():
    for name, want, head in (("libreswan-i2r.hex", I2R, "1597 bytes, starting with the IKETCP prefix"),
                             ("libreswan-r2i.hex", R2I, "1043 bytes")):
        dump = subprocess.run(["xxd"], input=stream(name), capture_output=True,
                              check=True).stdout
        rc, out, err = run("decode", stdin=dump)
        assert rc == 0 and out.splitlines() == [head] + want, (name, rc, out, err)
    # a keepalive, an empty frame and a runt, xxd -g1 with an ASCII column of hex letters
    dump = subprocess.run(["xxd", "-g1"], input=b"\x00\x03\xff\x00\x02\x00\x06abcd",
                          capture_output=True, check=True).stdout
    rc, out, err = run("decode", stdin=dump)
    assert rc == 0 and out.splitlines() == [
        "11 bytes", "  #0  len=3     keepalive (NAT keepalive, dropped)",
        "  #1  len=2     empty     (ignored)",
        "  #2  len=6     runt      (esp-short, dropped and counted)"], (rc, out, err)
    # a wrong prefix
    dump = subprocess.run(["xxd"], input=b"IKEUDP\x00\x02", capture_output=True, check=True).stdout
    rc, out, err = run("decode", stdin=dump)
    assert rc == 1 and "stream does not start with IKETCP: 49 4b 45 55 44 50 (\"IKEUDP\")" in err, \
        (rc, out, err)


def probe_backend_answer(s, pr):
    """Answers the probe's IKE_SA_INIT at the scripted backend with N(NO_PROPOSAL_CHOSEN)."""
    import struct
    s.be.settimeout(10)
    req, src = s.be.recvfrom(70000)
    assert req[:4] == b"\0\0\0\0" and req[4 + 18] == 34, req[:32]
    hdr = bytearray(req[4:4 + 28])
    hdr[8:16] = b"\x22" * 8
    hdr[16] = 41
    hdr[19] = 0x20
    body = bytes([0, 0, 0, 8, 0, 0, 0, 14])
    hdr[24:28] = struct.pack(">I", 28 + len(body))
    s.be.sendto(b"\0\0\0\0" + bytes(hdr) + body, src)
    out, err = pr.communicate(timeout=15)
    return pr.returncode, out, err


ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def config_keys():
    """{key: set of "S", "C", "G"} from the keyword table in daemon/config_keys.c."""
    import re
    with open(os.path.join(ROOT, "daemon", "config_keys.c")) as f:
        src = f.read()
    table = src[src.index("const struct kw kwtab[] = {"):src.index("const size_t kw_count")]
    keys = {}
    for m in re.finditer(r'^\s*(?:[A-Z]+\(|\{)"([a-z0-9-]+)",\s*([SCG](?:\s*\|\s*[SCG])*)\s*,',
                         table, re.M):
        keys[m.group(1)] = set(x.strip() for x in m.group(2).split("|"))
    assert len(keys) > 60 and "max-conns" in keys and keys["udp"] == {"C"}, keys
    return keys


def iketcpd(*args, cwd=None):
    r = subprocess.run([g.IKETCPD] + list(args), capture_output=True, timeout=30, cwd=cwd)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def test_daemon_mode_help_lists_the_keys():
    """iketcpd server|client --help: every key of that mode and the globals, none of the other
    mode's, each with a default and a description."""
    keys = config_keys()
    for mode, sect, other in (("server", "S", "C"), ("client", "C", "S")):
        for argv in ((mode, "--help"), ("-f", mode, "--listen", "x", "--help")):
            rc, out, err = iketcpd(*argv)
            assert rc == 0 and err == "" and out.startswith(
                "usage: iketcpd [-f] [-v] [-n] %s " % mode), (argv, rc, out, err)
        listed = {}
        for line in out.splitlines():
            if line.startswith("  --"):
                f = line.split(None, 1)
                listed[f[0][2:]] = f[1] if len(f) > 1 else ""
        for k, secs in keys.items():
            if sect in secs or "G" in secs:
                assert k in listed, (mode, k, out)
                # a default (or "none"/"required") and a description after it
                assert len(listed[k].split()) >= 2, (mode, k, listed[k])
            else:
                assert k not in listed, (mode, k)
        assert set(listed) <= set(keys), set(listed) - set(keys)
    rc, out, _ = iketcpd("server", "--help")
    assert "  --max-conns                 4096 " in out, out
    assert "  --listen                    [::]:4500, 0.0.0.0:4500 " in out, out
    rc, out, _ = iketcpd("--help")
    assert rc == 0 and "iketcpd server --help" in out and "iketcpd client --help" in out, out


def test_daemon_unknown_key_suggests():
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.conf")
        with open(path, "w") as f:
            f.write("# x\n[server]\nmax-con = 5\n")
        rc, out, err = iketcpd("-n", "-c", path)
        assert rc == 1 and err == ('iketcpd: %s:3: unknown key "max-con" (did you mean '
                                   '"max-conns"?)\n' % path), err
        with open(path, "w") as f:
            f.write("[client a]\nudp = 127.0.0.1:1\npeer = x\ntls-serer-name = a\n")
        rc, out, err = iketcpd("-n", "-c", path)
        assert rc == 1 and '(did you mean "tls-server-name"?)' in err, err
        with open(path, "w") as f:
            f.write("[server]\nfrobnicate = 1\n")
        rc, out, err = iketcpd("-n", "-c", path)
        assert rc == 1 and err.endswith(':2: unknown key "frobnicate"\n'), err
    rc, out, err = iketcpd("-n", "server", "--max-con", "5")
    assert rc == 1 and err == ('iketcpd: command line: unknown option "--max-con" (did you mean '
                               '"--max-conns"?)\n'), err
    rc, out, err = iketcpd("-n", "client", "--udp", "127.0.0.1:1", "--peer", "x", "--pear", "y")
    assert rc == 1 and '"--pear" (did you mean "--peer"?)' in err, err


def test_conf_man_page_names_every_key():
    """man/iketcpd.conf.5 documents every key of the table, and iketcpd.8 points to it."""
    with open(os.path.join(ROOT, "man", "iketcpd.conf.5")) as f:
        man = f.read().replace("\\-", "-").replace("\\(em", "-")
    assert man.startswith(".\\\" ") or man.startswith(".TH"), man[:80]
    assert ".TH IKETCPD.CONF 5" in man, man[:400]
    missing = [k for k in config_keys() if "\\fB%s\\fR" % k not in man]
    assert not missing, missing
    with open(os.path.join(ROOT, "man", "iketcpd.8")) as f:
        m8 = f.read()
    assert ".BR iketcpd.conf (5)" in m8[m8.index(".SH SEE ALSO"):], m8[-600:]


def popen(*args):
    return subprocess.Popen([CLI] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_probe_tls_and_proxy():
    s = g.Server(["--listen-tls", "127.0.0.1:%d" % g.TLS_PORT] + g.tls_files())
    px = g.ConnectProxy(g.BASE + 11)
    try:
        target = "127.0.0.1:%d" % g.TLS_PORT
        pr = popen("probe", "-t", "5", "--tls", "--tls-ca-file", g.pkf("ca.pem"),
                   "--tls-server-name", "gw.test", target)
        rc, out, err = probe_backend_answer(s, pr)
        assert rc == 0, (rc, out, err)
        assert "  TLS: TLSv1.3, " in out, out
        assert ", certificate verified: chain to %s, name gw.test" % g.pkf("ca.pem") in out, out
        assert "server certificate /CN=gw.test, issued by /CN=iketcp loopback ca" in out, out
        assert "NO_PROPOSAL_CHOSEN" in out, out
        assert "result: %s speaks RFC 9329 (IKE over TCP) inside TLSv1.3" % target in out, out

        # through the proxy, --insecure
        pr = popen("probe", "-t", "5", "--tls", "--insecure",
                   "--proxy", "http://127.0.0.1:%d" % px.port, target)
        rc, out, err = probe_backend_answer(s, pr)
        assert rc == 0, (rc, out, err)
        assert px.heads[-1].startswith("CONNECT %s HTTP/1.1\r\n" % target), px.heads
        assert "  proxy: CONNECT %s answered 200 Connection established: tunnel open" % target \
            in out, out
        assert "certificate NOT verified (--insecure)" in out, out
        assert ("result: %s speaks RFC 9329 (IKE over TCP) inside TLSv1.3 through the HTTP "
                "proxy 127.0.0.1:%d" % (target, px.port)) in out, out

        # a name the certificate does not carry: refused, exit 1
        pr = popen("probe", "-t", "5", "--tls", "--tls-ca-file", g.pkf("ca.pem"),
                   "--tls-server-name", "nope.test", target)
        out, err = pr.communicate(timeout=15)
        assert pr.returncode == 1 and "result: TLS handshake with %s failed" % target in out \
            and "certificate refused" in out, (out, err)
    finally:
        px.close()
        s.stop()
    # a proxy that refuses
    px = g.ConnectProxy(g.BASE + 12, auth="u:p")
    try:
        pr = popen("probe", "-t", "5", "--proxy", "http://127.0.0.1:%d" % px.port,
                   "127.0.0.1:%d" % g.TLS_PORT)
        out, err = pr.communicate(timeout=15)
        assert pr.returncode == 1 and ("result: the proxy refused CONNECT 127.0.0.1:%d: 407 "
                                       "Proxy Authentication Required" % g.TLS_PORT) in out, out
    finally:
        px.close()


def main():
    global CLI
    g.IKETCPD = os.path.abspath(sys.argv[1])
    CLI = os.path.abspath(sys.argv[2])
    tests = [(n, f) for n, f in sorted(globals().items()) if n.startswith("test_")]
    print("ports from BASE=%d (IKETCP_TEST_BASE to repeat)" % g.BASE, flush=True)
    return g.run_tests(tests, sys.argv[3:], width=40)

if __name__ == "__main__":
    sys.exit(main())
