/*
 * iketcp probe: does HOST:PORT speak RFC 9329?
 *
 * Opens a TCP connection, writes the "IKETCP" prefix together with a framed
 * IKE_SA_INIT request (R15: one segment), and waits for a framed IKEv2
 * response carrying our initiator SPI. Any response counts, including a
 * NO_PROPOSAL_CHOSEN or INVALID_KE_PAYLOAD notify: the responder parsed the
 * stream and answered in it, which is what the probe wants to know. The
 * request is a real first message (SA with common proposals, KE with a
 * random X25519 public value, Nonce) so that strongSwan and libreswan answer
 * instead of silently dropping it; no IKE SA is ever completed, and the
 * half-open SA on the responder expires by itself.
 *
 * Exit status: 0 an IKE response came back; 1 the server did not answer in
 * RFC 9329 (closed, timed out, bad frames, cannot connect); 2 usage.
 */
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "iketcp/iketcp.h"

#define PROBE_PORT "4500"

struct wbuf {
	uint8_t *p;
	size_t len, cap;
};

static void
put8(struct wbuf *b, unsigned v)
{
	if (b->len < b->cap)
		b->p[b->len] = (uint8_t)v;
	b->len++;
}

static void
put16(struct wbuf *b, unsigned v)
{
	put8(b, v >> 8);
	put8(b, v);
}

static void
put32(struct wbuf *b, uint32_t v)
{
	put16(b, v >> 16);
	put16(b, v & 0xffff);
}

static void
patch16(struct wbuf *b, size_t at, size_t v)
{
	if (at + 1 < b->cap) {
		b->p[at] = (uint8_t)(v >> 8);
		b->p[at + 1] = (uint8_t)v;
	}
}

/* Transform substructure (RFC 7296 §3.3.2); keylen 0 = no attribute. */
static void
transform(struct wbuf *b, int last, unsigned type, unsigned id, unsigned keylen)
{
	put8(b, last ? 0 : 3);
	put8(b, 0);
	put16(b, keylen ? 12 : 8);
	put8(b, type);
	put8(b, 0);
	put16(b, id);
	if (keylen) {
		put16(b, 0x800e); /* Key Length, TV format */
		put16(b, keylen);
	}
}

/*
 * Builds an IKE_SA_INIT request into out; returns its length or 0 if cap is
 * too small. One proposal lists AEAD and classic algorithms with the DH
 * groups most responders accept; the KE payload is for X25519 (any 32 bytes
 * are a valid public value, RFC 7748), so a responder preferring another
 * group answers INVALID_KE_PAYLOAD, which still proves the transport.
 */
static size_t
build_sa_init(uint8_t *out, size_t cap, uint64_t spi_i)
{
	struct wbuf b = {.p = out, .cap = cap};
	uint8_t rnd[64];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] = (uint8_t)rand();
	/* header */
	put32(&b, (uint32_t)(spi_i >> 32));
	put32(&b, (uint32_t)spi_i);
	put32(&b, 0);
	put32(&b, 0);
	put8(&b, IKETCP_IKE_PL_SA);
	put8(&b, 0x20);
	put8(&b, IKETCP_IKE_SA_INIT);
	put8(&b, IKETCP_IKE_FLAG_INITIATOR);
	put32(&b, 0);
	size_t len_at = b.len;
	put32(&b, 0);
	/* SA payload with one proposal */
	size_t sa_at = b.len;
	put8(&b, IKETCP_IKE_PL_KE);
	put8(&b, 0);
	put16(&b, 0);
	size_t prop_at = b.len;
	put8(&b, 0); /* last proposal */
	put8(&b, 0);
	put16(&b, 0);
	put8(&b, 1); /* proposal number */
	put8(&b, 1); /* protocol IKE */
	put8(&b, 0); /* SPI size */
	put8(&b, 10);
	transform(&b, 0, 1, 20, 256); /* ENCR_AES_GCM_16 */
	transform(&b, 0, 1, 20, 128);
	transform(&b, 0, 1, 12, 256); /* ENCR_AES_CBC */
	transform(&b, 0, 1, 12, 128);
	transform(&b, 0, 2, 5, 0);  /* PRF_HMAC_SHA2_256 */
	transform(&b, 0, 2, 7, 0);  /* PRF_HMAC_SHA2_512 */
	transform(&b, 0, 3, 12, 0); /* AUTH_HMAC_SHA2_256_128 */
	transform(&b, 0, 4, 31, 0); /* Curve25519 */
	transform(&b, 0, 4, 19, 0); /* ECP-256 */
	transform(&b, 1, 4, 14, 0); /* MODP-2048 */
	patch16(&b, prop_at + 2, b.len - prop_at);
	patch16(&b, sa_at + 2, b.len - sa_at);
	/* KE payload */
	put8(&b, IKETCP_IKE_PL_NONCE);
	put8(&b, 0);
	put16(&b, 4 + 4 + 32);
	put16(&b, 31);
	put16(&b, 0);
	for (int i = 0; i < 32; i++)
		put8(&b, rnd[i]);
	/* Nonce payload */
	put8(&b, 0);
	put8(&b, 0);
	put16(&b, 4 + 32);
	for (int i = 32; i < 64; i++)
		put8(&b, rnd[i]);
	if (b.len > cap)
		return 0;
	out[len_at] = (uint8_t)(b.len >> 24);
	out[len_at + 1] = (uint8_t)(b.len >> 16);
	out[len_at + 2] = (uint8_t)(b.len >> 8);
	out[len_at + 3] = (uint8_t)b.len;
	return b.len;
}

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *
payload_name(uint8_t t)
{
	switch (t) {
	case IKETCP_IKE_PL_SA:
		return "SA";
	case IKETCP_IKE_PL_KE:
		return "KE";
	case 38:
		return "CERTREQ";
	case IKETCP_IKE_PL_NONCE:
		return "Nonce";
	case IKETCP_IKE_PL_NOTIFY:
		return "N";
	case 43:
		return "V";
	case IKETCP_IKE_PL_SK:
		return "SK";
	default:
		return "?";
	}
}

static const char *
notify_name(uint16_t t)
{
	switch (t) {
	case 7:
		return "INVALID_SYNTAX";
	case 14:
		return "NO_PROPOSAL_CHOSEN";
	case 17:
		return "INVALID_KE_PAYLOAD";
	case 16384:
		return "INITIAL_CONTACT";
	case 16388:
		return "NAT_DETECTION_SOURCE_IP";
	case 16389:
		return "NAT_DETECTION_DESTINATION_IP";
	case 16390:
		return "COOKIE";
	case 16396:
		return "MOBIKE_SUPPORTED";
	case 16404:
		return "MULTIPLE_AUTH_SUPPORTED";
	case 16406:
		return "REDIRECT_SUPPORTED";
	case 16418:
		return "CHILDLESS_IKEV2_SUPPORTED";
	case 16430:
		return "IKEV2_FRAGMENTATION_SUPPORTED";
	case 16431:
		return "SIGNATURE_HASH_ALGORITHMS";
	default:
		return t < 16384 ? "error" : "status";
	}
}

/* Splits "host", "host:port", "[v6]:port", "v6" into host and port. */
static int
split_target(const char *arg, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon = strrchr(arg, ':');
	size_t hl;

	if (arg[0] == '[') {
		const char *end = strchr(arg, ']');
		if (!end)
			return -1;
		hl = (size_t)(end - arg - 1);
		if (hl >= hcap)
			return -1;
		memcpy(host, arg + 1, hl);
		host[hl] = '\0';
		if (end[1] == ':')
			snprintf(port, pcap, "%s", end + 2);
		else if (end[1] == '\0')
			snprintf(port, pcap, "%s", PROBE_PORT);
		else
			return -1;
		return 0;
	}
	if (colon && strchr(arg, ':') == colon) {
		hl = (size_t)(colon - arg);
		if (hl >= hcap)
			return -1;
		memcpy(host, arg, hl);
		host[hl] = '\0';
		snprintf(port, pcap, "%s", colon + 1);
		return 0;
	}
	if (strlen(arg) >= hcap) /* a bare name or a bare IPv6 address */
		return -1;
	snprintf(host, hcap, "%s", arg);
	snprintf(port, pcap, "%s", PROBE_PORT);
	return 0;
}

/* Waits for events on fd until deadline_ms; returns revents, 0 on timeout. */
static int
wait_fd(int fd, short ev, double deadline_ms)
{
	for (;;) {
		double left = deadline_ms - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = {.fd = fd, .events = ev};
		int r = poll(&p, 1, (int)left + 1);
		if (r < 0 && errno == EINTR)
			continue;
		return r > 0 ? p.revents : 0;
	}
}

static int
connect_any(const char *host, const char *port, double deadline_ms, char *addr, size_t acap)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		fprintf(stderr, "iketcp probe: %s: %s\n", host, gai_strerror(rc));
		return -1;
	}
	int fd = -1;
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		char h[NI_MAXHOST], s[NI_MAXSERV];
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, h, sizeof(h), s, sizeof(s),
				NI_NUMERICHOST | NI_NUMERICSERV))
			snprintf(h, sizeof(h), "?");
		snprintf(addr, acap, ai->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, s);
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			printf("  %s: connect: %s\n", addr, strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		int re = wait_fd(fd, POLLOUT, deadline_ms), err = 0;
		socklen_t el = sizeof(err);
		if (!re || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
			printf("  %s: connect: %s\n", addr, re ? strerror(err) : "timed out");
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

static void
print_response(const uint8_t *msg, size_t len, const struct iketcp_ike_hdr *h, double ms)
{
	struct iketcp_ike_payloads pl;
	int rc = iketcp_ike_payloads(msg, len, &pl);

	printf("  got %s response after %.1f ms: SPIr %016llx, %u bytes, payloads",
	       iketcp_ike_exchange_name(h->exchange), ms, (unsigned long long)h->spi_r, h->length);
	for (unsigned i = 0; i < pl.n; i++)
		printf(" %s", payload_name(pl.types[i]));
	if (rc != IKETCP_OK)
		printf(" (malformed: %s)", iketcp_strerror(rc));
	printf("\n");
	if (pl.has_notify)
		printf("  first notify: %s (%u)%s\n", notify_name(pl.notify_type), pl.notify_type,
		       pl.notify_type < 16384 ? " - the responder refused our proposal, which is "
						"fine for a probe"
					      : "");
}

int
cmd_probe(int argc, char **argv)
{
	double timeout_s = 5;
	const char *target = NULL;
	char host[256], port[32], addr[NI_MAXHOST + NI_MAXSERV + 4] = "";

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "-t") && i + 1 < argc) {
			char *end;
			timeout_s = strtod(argv[++i], &end);
			if (*end || !(timeout_s > 0 && timeout_s <= 600)) {
				fprintf(stderr, "iketcp probe: bad timeout '%s' (0 < s <= 600)\n",
					argv[i]);
				return 2;
			}
		} else if (!target && argv[i][0] != '-') {
			target = argv[i];
		} else {
			fprintf(stderr, "usage: iketcp probe [-t SECONDS] HOST[:PORT]\n");
			return 2;
		}
	}
	if (!target || split_target(target, host, sizeof(host), port, sizeof(port)) < 0) {
		fprintf(stderr,
			"usage: iketcp probe [-t SECONDS] HOST[:PORT]   (port default %s)\n",
			PROBE_PORT);
		return 2;
	}

	double t0 = now_ms(), deadline = t0 + timeout_s * 1e3;
	printf("probe %s port %s, timeout %.1f s\n", host, port, timeout_s);
	int fd = connect_any(host, port, deadline, addr, sizeof(addr));
	if (fd < 0) {
		printf("result: cannot connect over TCP\n");
		return 1;
	}
	double t_conn = now_ms();
	printf("  %s: TCP connected in %.1f ms\n", addr, t_conn - t0);

	uint64_t spi_i;
	if (getrandom(&spi_i, sizeof(spi_i), 0) != (ssize_t)sizeof(spi_i) || !spi_i)
		spi_i = 0x1b3c7e5d9a2f4c61ULL ^ (uint64_t)t0;
	uint8_t out[IKETCP_PREFIX_LEN + IKETCP_IKE_OVERHEAD + 1024];
	memcpy(out, IKETCP_PREFIX, IKETCP_PREFIX_LEN);
	size_t mlen = build_sa_init(out + IKETCP_PREFIX_LEN + IKETCP_IKE_OVERHEAD,
				    sizeof(out) - IKETCP_PREFIX_LEN - IKETCP_IKE_OVERHEAD, spi_i);
	if (!mlen || iketcp_frame_ike_head(out + IKETCP_PREFIX_LEN, mlen) != IKETCP_IKE_OVERHEAD) {
		fprintf(stderr, "iketcp probe: cannot build the request\n");
		close(fd);
		return 1;
	}
	size_t total = IKETCP_PREFIX_LEN + IKETCP_IKE_OVERHEAD + mlen, off = 0;
	while (off < total) {
		ssize_t w = send(fd, out + off, total - off, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR) && wait_fd(fd, POLLOUT, deadline))
			continue;
		if (w <= 0) {
			printf("result: write failed: %s\n", w < 0 ? strerror(errno) : "?");
			close(fd);
			return 1;
		}
		off += (size_t)w;
	}
	printf("  sent IKETCP prefix + IKE_SA_INIT request (SPIi %016llx, %zu bytes)\n",
	       (unsigned long long)spi_i, total);

	struct iketcp_deframer df;
	struct iketcp_deframer_cfg dc = {.expect_prefix = 0, .max_frame = IKETCP_FRAME_MAX};
	if (iketcp_deframer_init(&df, &dc) != IKETCP_OK) {
		close(fd);
		return 1;
	}
	static uint8_t rbuf[65536];
	int result = -1;
	unsigned other = 0;
	while (result < 0) {
		if (!wait_fd(fd, POLLIN, deadline)) {
			printf("result: no IKE response within %.1f s (%u other frames): the "
			       "server "
			       "accepted TCP but did not answer in RFC 9329\n",
			       timeout_s, other);
			result = 1;
			break;
		}
		ssize_t n = recv(fd, rbuf, sizeof(rbuf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			printf("result: connection %s after %.1f ms without an IKE response: not "
			       "RFC 9329, or refused by policy\n",
			       n < 0 ? strerror(errno) : "closed by the server", now_ms() - t_conn);
			result = 1;
			break;
		}
		struct iketcp_cur in;
		iketcp_cur_init(&in, rbuf, (size_t)n);
		const uint8_t *fr;
		size_t flen;
		int rc;
		while (result < 0 && (rc = iketcp_deframer_next(&df, &in, &fr, &flen)) == 1) {
			struct iketcp_frame f;
			struct iketcp_ike_hdr h;
			if (iketcp_frame_classify(fr, flen, &f) == IKETCP_OK &&
			    f.kind == IKETCP_FRAME_IKE &&
			    iketcp_ike_parse(f.msg, f.msg_len, &h) == IKETCP_OK &&
			    h.spi_i == spi_i && iketcp_ike_is_response(&h)) {
				print_response(f.msg, f.msg_len, &h, now_ms() - t_conn);
				printf("result: %s speaks RFC 9329 (IKE over TCP)\n", addr);
				result = 0;
			} else {
				other++;
			}
		}
		if (result < 0 && rc < 0) {
			printf("result: the server's bytes are not an RFC 9329 stream (%s)\n",
			       iketcp_strerror(rc));
			result = 1;
		}
	}
	iketcp_deframer_free(&df);
	close(fd);
	return result;
}
