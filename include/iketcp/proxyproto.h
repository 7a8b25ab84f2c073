/*
 * PROXY protocol headers (HAProxy's proxy-protocol.txt, versions 1 and 2),
 * as received by an RFC 9329 responder that sits behind a TCP load
 * balancer or TLS router (HAProxy `send-proxy` / `send-proxy-v2`, sslh,
 * IPVS setups): the balancer opens its own connection to us and puts one
 * header in front of the client's bytes saying who the client is.
 *
 * One pure function, no sockets, no allocation. It reads through the
 * bounded cursor and only ever looks at p[0..n).
 *
 * Version 1: "PROXY TCP4 SRC DST SPORT DPORT\r\n", "PROXY TCP6 ...\r\n" or
 * "PROXY UNKNOWN ...\r\n", at most 107 bytes with the CRLF. Addresses are
 * strict literals (dotted quad without leading zeros for TCP4, RFC 4291
 * text for TCP6, an embedded dotted quad allowed, no zone index), ports
 * 0..65535 in decimal without leading zeros, single spaces. UNKNOWN is
 * followed by the CRLF or by a space and anything but CR and LF, which is
 * ignored.
 * Version 2: the 12-byte signature 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A,
 * version/command byte (version 2; command 0 LOCAL or 1 PROXY), family/
 * transport byte, 16-bit length of the rest; for PROXY over TCP/IPv4 (0x11)
 * or TCP/IPv6 (0x21) the address block (12 or 36 bytes) follows, then TLVs,
 * which are walked for well-formedness (each TLV within the length) and
 * otherwise ignored. The other defined family/transport bytes (UNSPEC,
 * UDP, UNIX: family 0..3, transport 0..2) are accepted as "addresses
 * unknown" (family AF_UNSPEC) because the header length still says how much
 * to skip; a PROXY header with a value the specification does not define is
 * refused, as the specification asks of receivers. LOCAL is accepted
 * whatever its family byte (the specification: discard the block,
 * family included). Headers without addresses are skipped whole: their
 * address blocks and TLVs are not looked at.
 */
#ifndef IKETCP_PROXYPROTO_H
#define IKETCP_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "iketcp/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest version 1 header, CRLF included (the specification's limit). */
#define IKETCP_PP_V1_MAX 107
/* Version 2 signature length, and the fixed part before the addresses. */
#define IKETCP_PP_V2_SIG_LEN 12
#define IKETCP_PP_V2_HDR_LEN 16
/* Default limit on a whole header. Version 2 may carry TLVs up to 65535
 * bytes; a load balancer in front of a VPN gateway sends a few dozen. */
#define IKETCP_PP_MAX_DEFAULT 1024
/* Bytes of reason text iketcp_pp_parse() writes on an error. */
#define IKETCP_PP_REASON_MAX 64

enum iketcp_pp_command {
	/* The balancer's own connection (a health check): no client behind
	 * it; use the connection's real addresses. */
	IKETCP_PP_LOCAL = 0,
	/* A relayed client connection: src/dst are the client's view. */
	IKETCP_PP_PROXY = 1,
};

struct iketcp_pp_info {
	int version; /* 1 or 2 */
	enum iketcp_pp_command command;
	/* AF_INET or AF_INET6 when the header gave TCP addresses (ports set,
	 * in network order, in src and dst); AF_UNSPEC otherwise (LOCAL, v1
	 * UNKNOWN, v2 UNSPEC/UDP/UNIX), and src/dst are zeroed. */
	int family;
	struct sockaddr_storage src, dst;
	size_t len; /* header length, == the return value */
};

/*
 * Looks for one PROXY header at the start of p[0..n); max_len limits the
 * whole header (0 = IKETCP_PP_MAX_DEFAULT; values below IKETCP_PP_V1_MAX
 * are raised to IKETCP_PP_V1_MAX so a valid v1 line always fits). A v1
 * line is limited to IKETCP_PP_V1_MAX bytes whatever max_len says.
 *
 * Returns:
 *  - the header length L (> 0) when p[0..L) is one complete valid header;
 *    *out is filled. Bytes from p[L] on are the client's stream.
 *  - 0 when p[0..n) is a proper prefix of some valid header: more bytes
 *    are needed, and every one of the n bytes belongs to the header (so a
 *    caller may consume them all). n == 0 returns 0.
 *  - IKETCP_E_PPHDR when p cannot start a valid header: not a PROXY
 *    header at all (e.g. a client that speaks RFC 9329 directly), bad
 *    syntax, a bad address or port, v2 version or command not allowed,
 *    an address block longer than the length, a TLV overrunning it, or
 *    a header longer than max_len. Decided as early as possible: as soon
 *    as the bytes seen cannot be the start of a valid header.
 *    reason (may be NULL) gets a short NUL-terminated printable text
 *    (at most IKETCP_PP_REASON_MAX bytes with the NUL) for logs.
 * out is written only on success. p may be NULL only when n is 0.
 */
long IKETCP_WUR iketcp_pp_parse(const uint8_t *p, size_t n, size_t max_len,
				struct iketcp_pp_info *out, char *reason);

#ifdef __cplusplus
}
#endif
#endif
