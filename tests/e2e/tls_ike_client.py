#!/usr/bin/env python3
"""An IKE_SA_INIT over RFC 9329 over TLS, through `openssl s_client`.

Usage: tls_ike_client.py HOST PORT --servername NAME --cafile CA [--timeout S]

An independent TLS client for tests/e2e/10-tls-openssl-client: OpenSSL's own
command-line client does the TLS (handshake, SNI, certificate and host-name
check); this script only does RFC 9329 through its standard input and output:

  1. starts `openssl s_client -connect HOST:PORT -servername NAME -CAfile CA
     -verify_return_error -verify_hostname NAME -brief -ign_eof -nocommands`
     (-brief: the handshake summary on stderr, no chatter on stdout;
     -ign_eof, -nocommands: stdin is data only, and its end does not close);
  2. writes "IKETCP" and one frame: a 2-byte Length that counts itself, the
     4-byte zero non-ESP marker, then an IKEv2 IKE_SA_INIT request built here
     (header, SA with one proposal ENCR_AES_GCM_16/256 + PRF_HMAC_SHA2_256 +
     Curve25519, KE group 31 with 32 random bytes, Nonce of 32 random bytes);
  3. reads s_client's standard output until one whole frame has come back and
     checks it: Length consistent, non-ESP marker, an IKEv2 header with our
     SPIi, exchange IKE_SA_INIT, the Response flag set, the IKE Length equal to
     the rest of the frame. Lists the response's payload chain.

Prints what it saw (s_client's summary lines included) and exits 0 when the
response passed every check, 1 otherwise.
"""
import argparse
import os
import select
import struct
import subprocess
import sys
import time

PREFIX = b"IKETCP"
IKE_SA_INIT = 34
PAYLOAD_NAMES = {33: "SA", 34: "KE", 35: "IDi", 36: "IDr", 37: "CERT", 38: "CERTREQ",
                 39: "AUTH", 40: "Nonce", 41: "N", 42: "D", 43: "V", 46: "SK"}
NOTIFY_NAMES = {14: "NO_PROPOSAL_CHOSEN", 17: "INVALID_KE_PAYLOAD", 16390: "COOKIE",
                16388: "NAT_DETECTION_SOURCE_IP", 16389: "NAT_DETECTION_DESTINATION_IP",
                16404: "MULTIPLE_AUTH_SUPPORTED", 16430: "IKEV2_FRAGMENTATION_SUPPORTED",
                16431: "SIGNATURE_HASH_ALGORITHMS", 16406: "REDIRECT_SUPPORTED",
                16418: "CHILDLESS_IKEV2_SUPPORTED"}


def transform(ttype, tid, attrs=b"", last=False):
    body = struct.pack("!BxH", ttype, tid) + attrs
    return struct.pack("!BxH", 0 if last else 3, 4 + len(body)) + body


def ike_sa_init(spi_i):
    """IKEv2 IKE_SA_INIT request (RFC 7296): HDR, SA, KE, Ni."""
    key_len_256 = struct.pack("!HH", 0x800E, 256)  # TV attribute Key Length
    transforms = (transform(1, 20, key_len_256)    # ENCR_AES_GCM_16, 256 bits
                  + transform(2, 5)                # PRF_HMAC_SHA2_256
                  + transform(4, 31, last=True))   # DH group 31, Curve25519
    proposal_body = struct.pack("!BBBB", 1, 1, 0, 3) + transforms  # #1, IKE, no SPI, 3
    proposal = struct.pack("!BxH", 0, 4 + len(proposal_body)) + proposal_body
    sa = struct.pack("!BxH", 34, 4 + len(proposal)) + proposal            # next: KE
    ke_body = struct.pack("!HH", 31, 0) + os.urandom(32)
    ke = struct.pack("!BxH", 40, 4 + len(ke_body)) + ke_body              # next: Nonce
    nonce = struct.pack("!BxH", 0, 4 + 32) + os.urandom(32)               # last
    payloads = sa + ke + nonce
    hdr = spi_i + bytes(8) + struct.pack("!BBBBII", 33, 0x20, IKE_SA_INIT, 0x08, 0,
                                         28 + len(payloads))
    return hdr + payloads


def frame(body):
    return struct.pack("!H", 2 + len(body)) + body


def payload_chain(first, data):
    """Names of the payloads in data (after the IKE header), with notify types."""
    out, nxt, off = [], first, 0
    while nxt != 0:
        if off + 4 > len(data):
            out.append("<truncated>")
            break
        cur = nxt
        nxt, plen = data[off], struct.unpack("!H", data[off + 2:off + 4])[0]
        if plen < 4 or off + plen > len(data):
            out.append("<bad length %d>" % plen)
            break
        name = PAYLOAD_NAMES.get(cur, str(cur))
        if cur == 41 and plen >= 8:
            nt = struct.unpack("!H", data[off + 6:off + 8])[0]
            name = "N(%s)" % NOTIFY_NAMES.get(nt, nt)
        out.append(name)
        off += plen
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--servername", required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--timeout", type=float, default=10.0)
    a = ap.parse_args()

    cmd = ["openssl", "s_client", "-connect", "%s:%d" % (a.host, a.port),
           "-servername", a.servername, "-CAfile", a.cafile, "-verify_return_error",
           "-verify_hostname", a.servername, "-brief", "-ign_eof", "-nocommands"]
    print("running:", " ".join(cmd), flush=True)
    spi_i = os.urandom(8)
    req = ike_sa_init(spi_i)
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    ok = False
    try:
        p.stdin.write(PREFIX + frame(bytes(4) + req))
        p.stdin.flush()
        print("sent: IKETCP + frame of %d bytes (IKE_SA_INIT %d bytes, SPIi %s)"
              % (2 + 4 + len(req), len(req), spi_i.hex()), flush=True)
        buf = b""
        fd = p.stdout.fileno()
        deadline = t0 + a.timeout
        eof = False
        while True:
            if len(buf) >= 2 and len(buf) >= struct.unpack("!H", buf[:2])[0]:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                eof = True
                break
            buf += chunk
        secs = time.monotonic() - t0
        if len(buf) < 2 or len(buf) < struct.unpack("!H", buf[:2])[0]:
            print("FAIL: no whole frame after %.2fs (%d bytes%s): %s"
                  % (secs, len(buf), ", s_client ended" if eof else "", buf[:64].hex()))
        else:
            ok = check(buf, spi_i, secs)
    finally:
        try:
            p.stdin.close()
        except OSError:
            pass
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        err = p.stderr.read()
        for line in err.decode(errors="replace").splitlines():
            print("s_client: " + line)
    return 0 if ok else 1


def check(buf, spi_i, secs):
    flen = struct.unpack("!H", buf[:2])[0]
    body = buf[2:flen]
    print("received: frame Length %d after %.2fs (%d bytes read)" % (flen, secs, len(buf)))
    problems = []
    if flen < 2 + 4 + 28:
        problems.append("frame too short for an IKE message")
    if body[:4] != bytes(4):
        problems.append("no non-ESP marker (first 4 bytes %s)" % body[:4].hex())
    ike = body[4:]
    if len(ike) >= 28:
        spi_r = ike[8:16]
        nxt, ver, exch, flags = ike[16], ike[17], ike[18], ike[19]
        msgid, ilen = struct.unpack("!II", ike[20:28])
        chain = payload_chain(nxt, ike[28:])
        print("IKE: SPIi %s SPIr %s version %#x exchange %d flags %#04x msgid %d length %d"
              % (ike[:8].hex(), spi_r.hex(), ver, exch, flags, msgid, ilen))
        print("payloads: " + " ".join(chain))
        if ike[:8] != spi_i:
            problems.append("SPIi %s is not ours (%s)" % (ike[:8].hex(), spi_i.hex()))
        if exch != IKE_SA_INIT:
            problems.append("exchange %d, not IKE_SA_INIT" % exch)
        if not flags & 0x20:
            problems.append("Response flag not set")
        if flags & 0x08:
            problems.append("Initiator flag set in the response")
        if ver >> 4 != 2:
            problems.append("major version %d" % (ver >> 4))
        if msgid != 0:
            problems.append("message ID %d" % msgid)
        if ilen != len(ike):
            problems.append("IKE Length %d but %d bytes in the frame" % (ilen, len(ike)))
        if spi_r == bytes(8) and not any(c.startswith("N(") for c in chain):
            problems.append("zero SPIr and no notify")
    for pr in problems:
        print("FAIL: " + pr)
    if not problems:
        print("ok: framed IKE_SA_INIT response with our SPIi")
    return not problems


if __name__ == "__main__":
    sys.exit(main())
