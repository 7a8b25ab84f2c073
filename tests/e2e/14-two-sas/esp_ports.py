#!/usr/bin/env python3
"""Which session socket carried each ESP packet to the responder.

usage: esp_ports.py CAPTURE.pcap SPI_MAP

CAPTURE: tcpdump -w of UDP to port 4500 on the gateway's lo (the iketcpd
server's session sockets -> the responder). SPI_MAP: lines "SPI PORT", the
responder's inbound CHILD SPIs and the port of the IKE SA they belong to, as
swanctl --list-sas showed them during the run. Each session socket is one TCP
connection of the client, so an ESP packet from a port other than its IKE
SA's rode another IKE SA's connection (R25, R30). Prints a line per SPI and
exits 1 on any such packet (except up to GUESS_MAX first packets of an SPI,
before any on its own connection), or unless ESP of two IKE SAs was seen.
"""
import struct
import sys

# iketcpd's client may guess the IKE SA of a new outbound SPI when several
# exchanges completed before its first packet; the peer's answer moves it.
# Up to this many packets of an SPI, all before the first one on its own
# connection, are that guess (with a ping every 0.2 s: one).
GUESS_MAX = 2


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    end = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    link = struct.unpack(end + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(end + "I", data[off + 8:off + 12])[0]
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if link == 1:  # Ethernet (lo shows up as this)
            if len(pkt) < 14 or pkt[12:14] != b"\x08\x00":
                continue
            pkt = pkt[14:]
        elif link == 113:  # Linux cooked
            pkt = pkt[16:]
        if len(pkt) < 20 or pkt[0] >> 4 != 4 or pkt[9] != 17:
            continue
        ihl = (pkt[0] & 15) * 4
        udp = pkt[ihl:]
        if len(udp) < 8:
            continue
        sport, dport = struct.unpack(">HH", udp[:4])
        yield sport, dport, udp[8:]


def main():
    owner = {}
    with open(sys.argv[2]) as f:
        for ln in f:
            parts = ln.split()
            if len(parts) == 2 and parts[1].isdigit():
                owner.setdefault(int(parts[0], 16), set()).add(int(parts[1]))
    seen = {}
    early = {}  # SPI -> packets on a wrong port before the first on its own
    for sport, dport, body in packets(sys.argv[1]):
        if dport != 4500 or len(body) < 8 or body[:4] == b"\0\0\0\0":
            continue  # IKE (non-ESP marker), keepalives
        spi = struct.unpack(">I", body[:4])[0]
        seen.setdefault(spi, {}).setdefault(sport, 0)
        seen[spi][sport] += 1
        want = owner.get(spi)
        if want and sport not in want and not any(seen[spi].get(p) for p in want):
            early[spi] = early.get(spi, 0) + 1
    bad = unknown = good = guessed = 0
    ports = set()
    for spi, by_port in sorted(seen.items()):
        want = owner.get(spi)
        for port, n in sorted(by_port.items()):
            if want is None:
                verdict = "unknown SPI"
                unknown += n
            elif port in want:
                verdict = "its IKE SA's connection"
                good += n
                ports.add(port)
            else:
                e = early.get(spi, 0)
                verdict = "WRONG connection (IKE SA on %s), %d of them before the first " \
                    "on its own (a guess, then moved)" % (sorted(want), e)
                if e > GUESS_MAX or n > e:
                    bad += n
                else:
                    guessed += n
            print("ESP SPI %08x from session port %d: %d packets, %s" % (spi, port, n, verdict))
        if want and len(want) > 1:
            print("ESP SPI %08x: its IKE SA was seen on ports %s (moved)" % (spi, sorted(want)))
            bad += 1
    print("summary: %d on their IKE SA's connection, %d on another (%d tolerated: the first "
          "packets of a guessed SPI), %d unknown SPI; %d connections carried ESP"
          % (good, bad + guessed, guessed, unknown, len(ports)))
    return 1 if bad or len(ports) < 2 else 0


if __name__ == "__main__":
    sys.exit(main())
