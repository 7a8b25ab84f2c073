#!/usr/bin/env python3
"""Regenerates the seed corpora under fuzz/corpus/ (see fuzz/README.md).

Usage: fuzz/gen_corpus.py [PCAP]   (default tests/data/libreswan-espintcp-session.pcap)

Needs tshark to read the capture. The seeds are committed; run this only
to change them. It rewrites fuzz/corpus/<target>/seed-* and leaves other
files (for example inputs merged back from fuzzing runs) alone.
"""
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PCAP = os.path.join(HERE, "..", "..", "shared", "testdata",
                            "libreswan-espintcp-session.pcap")


def follow(pcap):
    """Returns (initiator->responder bytes, responder->initiator bytes)."""
    out = subprocess.run(["tshark", "-r", pcap, "-q", "-z", "follow,tcp,raw,0"],
                         check=True, capture_output=True, text=True).stdout
    i2r, r2i = bytearray(), bytearray()
    for line in out.splitlines():
        if line.startswith("\t"):
            r2i += bytes.fromhex(line.strip())
        elif line and all(c in "0123456789abcdef" for c in line):
            i2r += bytes.fromhex(line)
    return bytes(i2r), bytes(r2i)


def frames(stream):
    out, o = [], 0
    while o + 2 <= len(stream):
        n = struct.unpack(">H", stream[o:o + 2])[0]
        out.append(stream[o:o + n])
        o += n
    assert o == len(stream), "capture stream does not end on a frame boundary"
    return out


def ike_hdr(exch, flags=0x08, length=28, version=0x20, np=0, spi_r=0, msgid=0):
    return struct.pack(">QQBBBBII", 0x1122334455667788, spi_r, np, version, exch, flags,
                       msgid, length)


def frame(body):
    return struct.pack(">H", len(body) + 2) + body


def ike_frame(msg):
    return frame(b"\0\0\0\0" + msg)


def df_header(flags=0, v=0, sizes=(0x7f,)):
    """Input header of the deframer harnesses (fuzz/deframer_harness.h)."""
    assert 1 <= len(sizes) <= 16
    return bytes([flags]) + struct.pack(">H", v) + bytes([len(sizes) - 1]) + bytes(sizes)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def main():
    pcap = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_PCAP
    i2r, r2i = follow(pcap)
    assert i2r[:6] == b"IKETCP"
    fi, fr = frames(i2r[6:]), frames(r2i)
    ike_i = [f for f in fi if f[2:6] == b"\0\0\0\0"]
    ike_r = [f for f in fr if f[2:6] == b"\0\0\0\0"]
    esp_i = [f for f in fi if f[2:6] != b"\0\0\0\0"]
    esp_r = [f for f in fr if f[2:6] != b"\0\0\0\0"]
    assert len(ike_i) == 2 and len(ike_r) == 2 and len(esp_i) == 3 and len(esp_r) == 3

    # Small synthetic frames, one per row of the frame kinds (docs/conformance.md, "Wire format reference").
    info = ike_hdr(37, flags=0x20, spi_r=0x99AABBCCDDEEFF00, msgid=2)  # empty INFORMATIONAL
    esp = b"\xc0\x01\xd0\x0d" + b"\0\0\0\x01" + bytes(range(16))
    synth = {
        "empty": b"\x00\x02",
        "keepalive": b"\x00\x03\xff",
        "len0": b"\x00\x00",
        "len1": b"\x00\x01",
        "runt-tiny": b"\x00\x04\x12\x34",
        "runt-ike-short": frame(b"\0\0\0\0" + b"\x01\x02\x03\x04"),
        "runt-ike-length": ike_frame(ike_hdr(34, length=999)),
        "runt-ike-v1": ike_frame(ike_hdr(2, version=0x10)),
        "runt-esp-short": frame(b"\xde\xad\xbe\xef\x00\x01"),
        "ike-informational": ike_frame(info),
        "esp-small": frame(esp),
    }
    mixed = b"".join(synth[k] for k in ("empty", "keepalive", "runt-tiny", "runt-ike-short",
                                        "runt-ike-length", "runt-esp-short",
                                        "ike-informational", "esp-small"))

    # fuzz_ike: IKE messages without the marker.
    for name, f in (("sa-init-req", ike_i[0]), ("auth-req", ike_i[1]),
                    ("sa-init-resp", ike_r[0]), ("auth-resp", ike_r[1])):
        write("fuzz_ike", name, f[6:])
    write("fuzz_ike", "informational", info)
    write("fuzz_ike", "resume", ike_hdr(38, length=28))
    write("fuzz_ike", "v1-main-mode", ike_hdr(2, version=0x10))
    write("fuzz_ike", "short-27", info[:27])
    write("fuzz_ike", "empty", b"")

    # fuzz_classify: whole frames, plus bare datagrams for the datagram path.
    write("fuzz_classify", "sa-init-req", ike_i[0])
    write("fuzz_classify", "auth-resp", ike_r[1])
    write("fuzz_classify", "esp-i2r", esp_i[0])
    write("fuzz_classify", "esp-r2i", esp_r[0])
    for k, v in synth.items():
        write("fuzz_classify", k, v)
    write("fuzz_classify", "dgram-ike", b"\0\0\0\0" + info)
    write("fuzz_classify", "dgram-esp", esp)
    write("fuzz_classify", "dgram-keepalive", b"\xff")
    write("fuzz_classify", "dgram-marker", b"\0\0\0\0")
    write("fuzz_classify", "nothing", b"")
    # Zero-padded to a chosen size (fuzz_classify.c padded()): BE16 + low nibble.
    def pad(head, size):
        base = min(size, 0xFFFF)
        return head + struct.pack(">H", base) + bytes([0xB0 | (size - base)])
    write("fuzz_classify", "pad-ike-max", pad(b"\0\0\0\0" + info[:24], 65529))
    write("fuzz_classify", "pad-body-max", pad(esp, 65533))
    write("fuzz_classify", "pad-frame-max", pad(esp, 65535))
    write("fuzz_classify", "pad-ike-over", pad(b"\0\0\0\0" + info[:24], 65530))
    write("fuzz_classify", "pad-body-over", pad(esp, 65534))
    write("fuzz_classify", "pad-frame-over", pad(b"\xc0\x01\xd0\x0d", 65536))
    write("fuzz_classify", "pad-32k", pad(b"\0\0\0\0" + info[:24], 32768))

    # fuzz_deframer: header + stream, no prefix.
    T = "fuzz_deframer"
    write(T, "r2i-whole", df_header(0, 0, (0,)) + r2i)  # all-zero sizes: one chunk
    write(T, "r2i-bytewise", df_header(0, 0, (1,)) + r2i)
    write(T, "i2r-mixed-chunks", df_header(0x08, 0, (7, 0x83, 3, 0x7f)) + i2r[6:])
    write(T, "i2r-caller-asm-trim", df_header(0x04 | 0x10 | 0x20, 0, (5, 0, 64)) + i2r[6:])
    write(T, "synthetic-mix", df_header(0x18, 0, (1, 2, 3)) + mixed)
    write(T, "partial-tail", df_header(0, 0, (3,)) + mixed + ike_i[0][:100])
    write(T, "len0", df_header(0, 0, (1,)) + synth["esp-small"] + b"\x00\x00" + mixed)
    write(T, "len1-split", df_header(0, 0, (1,)) + b"\x00\x01")
    write(T, "toobig-small-max", df_header(0x01, 61, (0x7f,)) + esp_i[0])
    write(T, "max-exact", df_header(0x02, 122 - 3, (9,)) + esp_i[0] + esp_r[0])
    write(T, "free-after", df_header(0x40 | 0x03, 0, (2,)) + synth["keepalive"])
    write(T, "empty-stream", df_header(0, 0, (1,)))

    # fuzz_deframer_prefix: the same, the stream starting with IKETCP.
    T = "fuzz_deframer_prefix"
    write(T, "i2r-whole", df_header(0, 0, (0,)) + i2r)
    write(T, "i2r-prefix-own-read", df_header(0, 0, (6, 0x7f)) + i2r)
    write(T, "i2r-bytewise-trim", df_header(0x08 | 0x20, 0, (1,)) + i2r)
    write(T, "prefix-split-caller-asm", df_header(0x04 | 0x18, 0, (2, 3, 1, 0x81)) + i2r)
    write(T, "synth-prefix-r2i", df_header(0x80, 0, (11, 0x90)) + r2i)
    write(T, "synth-prefix-mix", df_header(0x80 | 0x10, 0, (1, 4)) + mixed)
    write(T, "prefix-only", df_header(0, 0, (1,)) + b"IKETCP")
    write(T, "prefix-partial", df_header(0, 0, (1,)) + b"IKE")
    write(T, "prefix-bad-last", df_header(0, 0, (5, 1)) + b"IKETCX" + synth["empty"])
    write(T, "prefix-lowercase", df_header(0, 0, (0x7f,)) + b"iketcp" + synth["empty"])
    write(T, "no-prefix", df_header(0, 0, (0x7f,)) + r2i)
    write(T, "prefix-len0", df_header(0, 0, (7,)) + b"IKETCP\x00\x00")


if __name__ == "__main__":
    main()
