#!/usr/bin/env python3
"""A small stand-in for iketcpd, to test the e2e harness itself.

NOT the product and not a reference implementation: it exists so that the
scenarios under tests/e2e can be run and debugged before (or independently
of) the real gateway:

    IKETCPD=tests/e2e/tools/mock-iketcpd.py tests/e2e/run-all.sh

It accepts the same command lines as iketcpd (unknown --key value pairs are
ignored):

    mock-iketcpd.py server --listen ADDR:PORT [--listen ...] --backend ADDR:PORT
                    [--prefix-timeout 5s] [--max-frame N] [-f] [-v]
                    [--listen-tls ADDR:PORT ... --tls-cert PEM --tls-key PEM]
                    [--tls-handshake-timeout 5s] [--sniff-tls yes|no]
                    [--tls-min-version 1.2|1.3] [--stats-socket PATH]
    mock-iketcpd.py client --udp ADDR:PORT --peer HOST:PORT
                    [--enable-tcp yes|fallback|no] [--fallback-wait 2s] [-f] [-v]
                    [--tls yes|no] [--tls-server-name NAME] [--tls-ca-file PEM]
                    [--tls-verify yes|no] [--tls-pin-sha256 PIN] [--proxy http://HOST:PORT]
                    [--proxy-auth USER:PASS] [--stats-socket PATH]

TLS (issue #4) uses Python's ssl module; a certificate refusal or a proxy's
refusal is logged (always, also without -v) with OpenSSL's reason or the
proxy's status line. The stats-socket writes a few of iketcpd's counters in
its format ("server default KEY VALUE"). No TLS session resumption.

Simplifications: the client keeps one flow per local UDP source (not per
IKE SA); the server routes backend replies to the connection that last sent
something for the session (iketcpd is meant to be stricter, R31-R33).
"""
import asyncio
import base64
import collections
import hashlib
import os
import socket
import ssl
import struct
import subprocess
import sys
import time

PREFIX = b"IKETCP"
VERBOSE = 0


def log(*a):
    if VERBOSE:
        print("%.3f" % time.monotonic(), *a, file=sys.stderr, flush=True)


def warn(*a):
    print("%.3f" % time.monotonic(), *a, file=sys.stderr, flush=True)


def opt(a, key, default=None):
    return a.get(key, [default])[-1]


def stats_lines(kind, counters):
    return "".join("%s default %s %d\n" % (kind, k, v) for k, v in counters.items())


async def stats_socket(path, obj):
    """A Unix socket that writes the counters of obj and closes."""
    if os.path.exists(path):
        os.unlink(path)

    async def answer(reader, writer):
        writer.write(("iketcpd mock\n" + obj.stats_text()).encode())
        await writer.drain()
        writer.close()
    return await asyncio.start_unix_server(answer, path)


def parse_addr(s, default_port=4500):
    if s.startswith("["):
        host, _, port = s[1:].partition("]:")
    elif s.count(":") == 1:
        host, _, port = s.partition(":")
    else:
        host, port = s, ""
    return host, int(port) if port else default_port


def parse_duration(s):
    s = str(s)
    if s.endswith("ms"):
        return float(s[:-2]) / 1000
    if s.endswith("s"):
        return float(s[:-1])
    return float(s)


def frame(data):
    return struct.pack("!H", len(data) + 2) + data


class Deframer:
    """Yields frame bodies; raises ValueError on a fatal Length."""

    def __init__(self, max_frame):
        self.buf = b""
        self.max_frame = max_frame

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 2:
            (n,) = struct.unpack("!H", self.buf[:2])
            if n < 2 or n > self.max_frame:
                raise ValueError("bad length %d" % n)
            if len(self.buf) < n:
                break
            out.append(self.buf[2:n])
            self.buf = self.buf[n:]
        return out


def is_ike(body):
    return len(body) >= 4 + 28 and body[:4] == b"\0\0\0\0"


# ---------------------------------------------------------------- server ---

class Session:
    def __init__(self, srv):
        self.srv = srv
        self.conn = None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect(srv.backend)
        srv.loop.add_reader(self.sock.fileno(), self.on_udp)
        log("session: UDP port", self.sock.getsockname()[1])

    def on_udp(self):
        while True:
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                return
            if data == b"\xff":  # NAT keepalive from the backend: never framed
                continue
            self.srv.st["from_backend"] += 1
            if self.conn and not self.conn.closed:
                self.conn.writer.write(frame(data))


class ServerConn:
    def __init__(self, srv, reader, writer):
        self.srv, self.reader, self.writer = srv, reader, writer
        self.session = None
        self.closed = False

    async def run(self):
        """Relays until the connection ends; returns the close reason."""
        peer = self.writer.get_extra_info("peername")
        try:
            try:
                p = await asyncio.wait_for(self.reader.readexactly(6), self.srv.prefix_timeout)
            except asyncio.TimeoutError:
                log(peer, "no prefix in time")
                return "prefix_timeout"
            except asyncio.IncompleteReadError:
                return "eof"
            if p != PREFIX:
                log(peer, "bad prefix", p)
                return "bad_prefix"
            d = Deframer(self.srv.max_frame)
            while True:
                data = await self.reader.read(65536)
                if not data:
                    return "eof"
                try:
                    bodies = d.feed(data)
                except ValueError as e:
                    log(peer, e)
                    return "bad_length"
                for b in bodies:
                    self.dispatch(b)
        except (ConnectionError, OSError, ssl.SSLError):
            return "read_error"
        finally:
            self.closed = True
            self.writer.close()

    def dispatch(self, b):
        srv = self.srv
        if len(b) == 0 or b == b"\xff" or len(b) <= 4:
            return  # empty, keepalive, runt
        if b[:4] == b"\0\0\0\0":
            if not is_ike(b):
                return
            srv.st["frames_ike"] += 1
            spi_i, exch = b[4:12], b[4 + 18]
            s = srv.by_ike.get(spi_i)
            if s is None:
                s = self.session if (self.session and exch != 34) else Session(srv)
                srv.by_ike[spi_i] = s
        else:
            srv.st["frames_esp"] += 1
            s = srv.by_esp.get(b[:4]) or self.session
            if s is None:
                return
            srv.by_esp[b[:4]] = s
        self.session = s
        s.conn = self
        try:
            s.sock.send(b)
            srv.st["to_backend"] += 1
        except OSError:
            pass


class Server:
    CLOSE_KEYS = ("eof", "read_error", "prefix_timeout", "bad_prefix", "bad_length",
                  "tls_handshake", "tls_timeout")

    def __init__(self, a):
        self.backend = parse_addr(a["backend"][-1])
        self.listen = [parse_addr(x) for x in a.get("listen", ["0.0.0.0:4500"])]
        self.listen_tls = [parse_addr(x) for x in a.get("listen-tls", [])]
        self.prefix_timeout = parse_duration(opt(a, "prefix-timeout", "5s"))
        self.hs_timeout = parse_duration(opt(a, "tls-handshake-timeout", "5s"))
        self.max_frame = int(opt(a, "max-frame", "65535"))
        self.stats_path = opt(a, "stats-socket")
        self.by_ike, self.by_esp = {}, {}
        self.tls_ctx = None
        if opt(a, "tls-cert"):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(opt(a, "tls-cert"), opt(a, "tls-key"))
            if opt(a, "tls-min-version", "1.2") == "1.3":
                ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            else:
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            self.tls_ctx = ctx
        self.sniff = self.tls_ctx is not None and opt(a, "sniff-tls", "auto") != "no"
        self.nconns = 0
        self.st = collections.Counter()

    def stats_text(self):
        c = {"connections": self.nconns, "accepted": self.st["accepted"]}
        for k in ("frames_ike", "frames_esp", "to_backend", "from_backend", "tls_handshakes",
                  "tls_handshakes_failed", "sniffed_tls", "sniffed_plain"):
            c[k] = self.st[k]
        for k in self.CLOSE_KEYS:
            c["closed_" + k] = self.st["closed_" + k]
        return stats_lines("server", c)

    async def main(self):
        self.loop = asyncio.get_running_loop()
        tasks = []
        for (host, port), tls in ([(x, False) for x in self.listen]
                                  + [(x, True) for x in self.listen_tls]):
            ls = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind((host, port))
            ls.listen(128)
            ls.setblocking(False)
            tasks.append(asyncio.ensure_future(self.accept_loop(ls, tls)))
            log("listening on", host, port, "TLS" if tls else "plain")
        if self.stats_path:
            await stats_socket(self.stats_path, self)
        await asyncio.Event().wait()

    async def accept_loop(self, ls, tls):
        while True:
            sock, _ = await self.loop.sock_accept(ls)
            asyncio.ensure_future(self.handle(sock, tls))

    async def peek1(self, sock):
        """The first byte, left in the socket; None after the prefix timeout."""
        fut = self.loop.create_future()
        self.loop.add_reader(sock.fileno(), lambda: fut.done() or fut.set_result(None))
        try:
            await asyncio.wait_for(fut, self.prefix_timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self.loop.remove_reader(sock.fileno())
        try:
            return sock.recv(1, socket.MSG_PEEK)
        except OSError:
            return b""

    async def handle(self, sock, tls):
        self.st["accepted"] += 1
        self.nconns += 1
        reason = "eof"
        peer = sock.getpeername()
        try:
            if not tls and self.sniff:
                b = await self.peek1(sock)
                if not b:
                    reason = "prefix_timeout" if b is None else "eof"
                    return
                tls = b == b"\x16"
                self.st["sniffed_tls" if tls else "sniffed_plain"] += 1
            reader = asyncio.StreamReader(limit=1 << 20)
            proto = asyncio.StreamReaderProtocol(reader)
            try:
                transport, _ = await self.loop.connect_accepted_socket(
                    lambda: proto, sock, ssl=self.tls_ctx if tls else None,
                    ssl_handshake_timeout=self.hs_timeout if tls else None)
            except (ConnectionAbortedError, asyncio.TimeoutError) as e:
                reason = "tls_timeout" if "longer" in str(e) else "tls_handshake"
                warn(peer, "TLS handshake:", e)
                return
            except (ssl.SSLError, OSError) as e:
                reason = "tls_handshake"
                self.st["tls_handshakes_failed"] += 1
                warn(peer, "TLS handshake failed:", e)
                return
            if tls:
                self.st["tls_handshakes"] += 1
                log(peer, "TLS handshake done")
            writer = asyncio.StreamWriter(transport, proto, reader, self.loop)
            reason = await ServerConn(self, reader, writer).run()
        finally:
            self.nconns -= 1
            self.st["closed_" + reason] += 1
            log(peer, "closed:", reason)
            try:
                sock.close()
            except OSError:
                pass


# ---------------------------------------------------------------- client ---

class ProxyRefused(OSError):
    pass


class PinMismatch(OSError):
    pass


def spki_sha256(der):
    """SHA-256 of a certificate's SubjectPublicKeyInfo (openssl does the ASN.1)."""
    pem = subprocess.run(["openssl", "x509", "-inform", "DER", "-pubkey", "-noout"],
                         input=der, capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"],
                          input=pem, capture_output=True, check=True).stdout
    return hashlib.sha256(spki).digest()


def parse_pin(s):
    """tls-pin-sha256: 64 hex digits (colons allowed) or base64, optionally after sha256//."""
    s = s[len("sha256//"):] if s.startswith("sha256//") else s
    h = s.replace(":", "")
    if len(h) == 64:
        return bytes.fromhex(h)
    return base64.b64decode(s)


class Flow:
    def __init__(self, cli, src):
        self.cli, self.src = cli, src
        self.mode = "tcp" if cli.enable_tcp == "yes" else "udp"
        self.writer = None
        self.connecting = False
        self.queue = []
        self.last_ike = None
        self.udp = None
        self.udp_answered = False
        self.backoff = 0.1
        if self.mode == "udp":
            self.open_udp()
            if cli.enable_tcp == "fallback":
                cli.loop.call_later(cli.fallback_wait, self.maybe_fallback)

    def open_udp(self):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.setblocking(False)
        self.udp.connect(self.cli.peer)
        self.cli.loop.add_reader(self.udp.fileno(), self.on_peer_udp)

    def on_peer_udp(self):
        while True:
            try:
                data = self.udp.recv(65535)
            except (BlockingIOError, ConnectionRefusedError):
                return
            self.udp_answered = True
            self.cli.to_local(data, self.src)

    def maybe_fallback(self):
        if self.udp_answered or self.mode != "udp":
            return
        log("no UDP answer: falling back to TCP")
        self.mode = "tcp"
        if self.last_ike:
            self.queue.append(frame(self.last_ike))
        self.ensure_tcp()

    def from_local(self, data):
        if data == b"\xff":
            return
        if is_ike(data):
            self.last_ike = data
        if self.mode == "udp":
            try:
                self.udp.send(data)
            except OSError:
                pass
            return
        if self.writer is not None:
            self.writer.write(frame(data))
        else:
            self.queue.append(frame(data))
            del self.queue[:-64]
            self.ensure_tcp()

    async def proxy_connect(self, reader, writer):
        host, port = self.cli.peer
        req = "CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n" % (host, port, host, port)
        if self.cli.proxy_auth:
            req += "Proxy-Authorization: Basic %s\r\n" % base64.b64encode(
                self.cli.proxy_auth.encode()).decode()
        writer.write((req + "\r\n").encode())
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            writer.close()
            raise ProxyRefused("connection closed before the answer")
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        parts = status.split(" ", 2)
        if len(parts) < 2 or not parts[1].startswith("2"):
            writer.close()
            raise ProxyRefused(status)
        log("proxy:", status)

    def ensure_tcp(self):
        if self.writer is None and not self.connecting:
            self.connecting = True
            asyncio.ensure_future(self.connect())

    async def connect(self):
        cli = self.cli
        try:
            if cli.proxy:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(*cli.proxy), 5)
                await asyncio.wait_for(self.proxy_connect(reader, writer), 5)
                if cli.tls_ctx:
                    await asyncio.wait_for(
                        writer.start_tls(cli.tls_ctx, server_hostname=cli.tls_name), 5)
            else:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    *cli.peer, ssl=cli.tls_ctx,
                    server_hostname=cli.tls_name if cli.tls_ctx else None), 5)
            if cli.tls_pin:
                der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
                got = spki_sha256(der)
                if got != cli.tls_pin:
                    writer.close()
                    raise PinMismatch("public key pin mismatch: server key sha256 %s" % got.hex())
        except (OSError, asyncio.TimeoutError, ValueError) as e:
            if isinstance(e, ssl.SSLCertVerificationError):
                warn("TLS: certificate of %s:%d refused: %s"
                     % (cli.peer[0], cli.peer[1], e.verify_message))
            elif isinstance(e, PinMismatch):
                warn("TLS: %s:%d refused: %s" % (cli.peer[0], cli.peer[1], e))
            elif isinstance(e, ProxyRefused):
                warn("proxy %s:%d refused CONNECT %s:%d: %s"
                     % (cli.proxy + cli.peer + (e,)))
            else:
                log("connect failed:", repr(e))
            self.connecting = False
            await asyncio.sleep(self.backoff)
            self.backoff = min(self.backoff * 2, 5)
            self.ensure_tcp()
            return
        self.backoff = 0.1
        self.connecting = False
        log("connected", writer.get_extra_info("sockname"))
        writer.write(PREFIX + b"".join(self.queue))
        self.queue = []
        self.writer = writer
        d = Deframer(65535)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for b in d.feed(data):
                    if len(b) > 4 or (b and b != b"\xff"):
                        self.cli.to_local(b, self.src)
        except (ConnectionError, OSError, ValueError) as e:
            log("connection lost:", e)
        writer.close()
        self.writer = None
        log("connection closed; reconnecting")
        await asyncio.sleep(0.1)
        self.ensure_tcp()


class Client:
    def __init__(self, a):
        self.udp_addr = parse_addr(a["udp"][-1])
        self.peer = parse_addr(a["peer"][-1])
        self.enable_tcp = a.get("enable-tcp", ["yes"])[-1]
        self.fallback_wait = parse_duration(a.get("fallback-wait", ["2s"])[-1])
        self.flows = {}
        self.tls_ctx = None
        self.tls_name = opt(a, "tls-server-name") or self.peer[0]
        if opt(a, "tls", "no") == "yes":
            ca = opt(a, "tls-ca-file")
            ctx = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
            if opt(a, "tls-verify", "yes") == "no":
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self.tls_ctx = ctx
        proxy = opt(a, "proxy")
        self.proxy = parse_addr(proxy.split("://", 1)[-1].rstrip("/"), 8080) if proxy else None
        self.proxy_auth = opt(a, "proxy-auth")
        pin = opt(a, "tls-pin-sha256")
        self.tls_pin = parse_pin(pin) if pin else None
        self.stats_path = opt(a, "stats-socket")

    def stats_text(self):
        return stats_lines("client", {"flows": len(self.flows)})

    async def main(self):
        self.loop = asyncio.get_running_loop()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind(self.udp_addr)
        self.loop.add_reader(self.sock.fileno(), self.on_local)
        log("UDP on", self.udp_addr, "peer", self.peer, "enable-tcp", self.enable_tcp,
            "tls", self.tls_ctx is not None, "proxy", self.proxy)
        if self.stats_path:
            await stats_socket(self.stats_path, self)
        await asyncio.Event().wait()

    def on_local(self):
        while True:
            try:
                data, src = self.sock.recvfrom(65535)
            except BlockingIOError:
                return
            f = self.flows.get(src)
            if f is None:
                f = self.flows[src] = Flow(self, src)
            f.from_local(data)

    def to_local(self, data, src):
        try:
            self.sock.sendto(data, src)
        except OSError:
            pass


def main():
    global VERBOSE
    if len(sys.argv) < 2 or sys.argv[1] not in ("server", "client"):
        sys.exit("usage: mock-iketcpd.py server|client --key value ...")
    mode, args, a = sys.argv[1], sys.argv[2:], {}
    check_only = False
    i = 0
    while i < len(args):
        k = args[i]
        if k == "-n":
            check_only = True
            i += 1
            continue
        if k in ("-f", "--foreground"):
            i += 1
            continue
        if k in ("-v", "--verbose"):
            VERBOSE += 1
            i += 1
            continue
        if not k.startswith("--") or i + 1 >= len(args):
            sys.exit("mock-iketcpd: bad argument %r" % k)
        a.setdefault(k[2:], []).append(args[i + 1])
        i += 2
    if check_only:
        print("mock-iketcpd: configuration not checked (mock)")
        return
    obj = Server(a) if mode == "server" else Client(a)
    try:
        asyncio.run(obj.main())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
