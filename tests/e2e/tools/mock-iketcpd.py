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
    mock-iketcpd.py client --udp ADDR:PORT --peer HOST:PORT
                    [--enable-tcp yes|fallback|no] [--fallback-wait 2s] [-f] [-v]

Simplifications: the client keeps one flow per local UDP source (not per
IKE SA); the server routes backend replies to the connection that last sent
something for the session (iketcpd is meant to be stricter, R31-R33).
"""
import asyncio
import socket
import struct
import sys
import time

PREFIX = b"IKETCP"
VERBOSE = 0


def log(*a):
    if VERBOSE:
        print("%.3f" % time.monotonic(), *a, file=sys.stderr, flush=True)


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
            if self.conn and not self.conn.closed:
                self.conn.writer.write(frame(data))


class ServerConn:
    def __init__(self, srv, reader, writer):
        self.srv, self.reader, self.writer = srv, reader, writer
        self.session = None
        self.closed = False

    async def run(self):
        peer = self.writer.get_extra_info("peername")
        try:
            try:
                p = await asyncio.wait_for(self.reader.readexactly(6), self.srv.prefix_timeout)
            except (asyncio.TimeoutError, asyncio.IncompleteReadError):
                log(peer, "no prefix in time")
                return
            if p != PREFIX:
                log(peer, "bad prefix", p)
                return
            d = Deframer(self.srv.max_frame)
            while True:
                data = await self.reader.read(65536)
                if not data:
                    return
                try:
                    bodies = d.feed(data)
                except ValueError as e:
                    log(peer, e)
                    return
                for b in bodies:
                    self.dispatch(b)
        except (ConnectionError, OSError):
            pass
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
            spi_i, exch = b[4:12], b[4 + 18]
            s = srv.by_ike.get(spi_i)
            if s is None:
                s = self.session if (self.session and exch != 34) else Session(srv)
                srv.by_ike[spi_i] = s
        else:
            s = srv.by_esp.get(b[:4]) or self.session
            if s is None:
                return
            srv.by_esp[b[:4]] = s
        self.session = s
        s.conn = self
        try:
            s.sock.send(b)
        except OSError:
            pass


class Server:
    def __init__(self, a):
        self.backend = parse_addr(a["backend"][-1])
        self.listen = [parse_addr(x) for x in a.get("listen", ["0.0.0.0:4500"])]
        self.prefix_timeout = parse_duration(a.get("prefix-timeout", ["5s"])[-1])
        self.max_frame = int(a.get("max-frame", ["65535"])[-1])
        self.by_ike, self.by_esp = {}, {}

    async def main(self):
        self.loop = asyncio.get_running_loop()
        servers = []
        for host, port in self.listen:
            servers.append(await asyncio.start_server(self.accept, host, port, reuse_address=True))
            log("listening on", host, port)
        await asyncio.Event().wait()

    async def accept(self, reader, writer):
        await ServerConn(self, reader, writer).run()


# ---------------------------------------------------------------- client ---

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

    def ensure_tcp(self):
        if self.writer is None and not self.connecting:
            self.connecting = True
            asyncio.ensure_future(self.connect())

    async def connect(self):
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(*self.cli.peer), 5)
        except (OSError, asyncio.TimeoutError) as e:
            log("connect failed:", e)
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

    async def main(self):
        self.loop = asyncio.get_running_loop()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind(self.udp_addr)
        self.loop.add_reader(self.sock.fileno(), self.on_local)
        log("UDP on", self.udp_addr, "peer", self.peer, "enable-tcp", self.enable_tcp)
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
    i = 0
    while i < len(args):
        k = args[i]
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
    obj = Server(a) if mode == "server" else Client(a)
    try:
        asyncio.run(obj.main())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
