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

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cli.h"
#include "iketcp/iketcp.h"
#include "iketcp/proxy.h"
#include "iketcp/tls.h"
#include "iketcp/transport.h"

#define PROBE_PORT "4500"
#define PROBE_TLS_PORT "443"
#define PROXY_PORT "3128"

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
split_target(const char *arg, char *host, size_t hcap, char *port, size_t pcap, const char *defport)
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
			snprintf(port, pcap, "%s", defport);
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
	snprintf(port, pcap, "%s", defport);
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

/* Waits for what a blocked transport operation asked for (IKETCP_WANT_*). */
static int
wait_want(int fd, unsigned want, double deadline_ms)
{
	short ev = (short)((want & IKETCP_WANT_READ ? POLLIN : 0) |
			   (want & IKETCP_WANT_WRITE ? POLLOUT : 0));
	return wait_fd(fd, ev ? ev : POLLIN, deadline_ms);
}

/*
 * Opens the CONNECT tunnel on fd. Tunnel bytes that came with the answer
 * go to *extra (at most ecap). Returns 0, or 1 after printing the result.
 */
static int
proxy_connect(int fd, const char *host, const char *port, double deadline, uint8_t *extra,
	      size_t ecap, size_t *elen)
{
	char req[1024];
	char *end;
	unsigned long pn = strtoul(port, &end, 10);
	long n = *end || !pn || pn > 65535
			 ? IKETCP_E_INVAL
			 : iketcp_proxy_request(req, sizeof(req), host, (uint16_t)pn, NULL, NULL);
	if (n < 0) {
		printf("result: cannot write a CONNECT request for %s:%s: %s\n", host, port,
		       iketcp_strerror((int)n));
		return 1;
	}
	for (long off = 0; off < n;) {
		ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR) && wait_fd(fd, POLLOUT, deadline))
			continue;
		if (w <= 0) {
			printf("result: writing to the proxy failed: %s\n",
			       w < 0 ? strerror(errno) : "?");
			return 1;
		}
		off += w;
	}
	struct iketcp_proxy_parser px;
	if (iketcp_proxy_parser_init(&px, 0) != IKETCP_OK)
		return 1;
	for (;;) {
		uint8_t buf[4096];
		if (!wait_fd(fd, POLLIN, deadline)) {
			printf("result: the proxy did not answer CONNECT in time\n");
			return 1;
		}
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0) {
			printf("result: the proxy %s before answering CONNECT\n",
			       r < 0 ? strerror(errno) : "closed the connection");
			return 1;
		}
		struct iketcp_cur c;
		iketcp_cur_init(&c, buf, (size_t)r);
		int rc = iketcp_proxy_parse(&px, &c);
		if (rc == 0)
			continue;
		if (rc == IKETCP_E_PROXY_STATUS) {
			printf("result: the proxy refused CONNECT %s:%s: %d %s\n", host, port,
			       px.status, px.reason);
			return 1;
		}
		if (rc < 0) {
			printf("result: the proxy's answer is not HTTP: %s\n", iketcp_strerror(rc));
			return 1;
		}
		*elen = iketcp_cur_left(&c) < ecap ? iketcp_cur_left(&c) : ecap;
		memcpy(extra, iketcp_cur_ptr(&c), *elen);
		printf("  proxy: CONNECT %s:%s answered %d %s: tunnel open\n", host, port,
		       px.status, px.reason);
		return 0;
	}
}

static void
print_tls(const struct iketcp_transport *t, const struct iketcp_tls_client_cfg *tc)
{
	printf("  TLS: %s, %s", iketcp_tls_version(t), iketcp_tls_cipher(t));
	if (tc->no_verify)
		printf(", certificate NOT verified (--insecure)\n");
	else
		printf(", certificate verified: chain to %s, name %s\n",
		       tc->ca_file ? tc->ca_file : "the system store", tc->server_name);
	SSL *ssl = iketcp_tls_ssl(t);
	X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	if (cert) {
		char sub[256], iss[256];
		X509_NAME_oneline(X509_get_subject_name(cert), sub, sizeof(sub));
		X509_NAME_oneline(X509_get_issuer_name(cert), iss, sizeof(iss));
		printf("  TLS: server certificate %s, issued by %s\n", sub, iss);
	}
}

static const struct cli_opt probe_opts[] = {
	{"--timeout", "-t", 1},     {"--tls", NULL, 0},
	{"--tls-ca-file", NULL, 1}, {"--tls-server-name", NULL, 1},
	{"--insecure", NULL, 0},    {"--proxy", NULL, 1},
	{"--help", "-h", 0},
};

enum { O_TIMEOUT, O_TLS, O_CA, O_NAME, O_INSECURE, O_PROXY };

static int
probe_usage(void)
{
	fprintf(stderr, "usage: iketcp " PROBE_USAGE "\n");
	return 2;
}

int
cmd_probe(int argc, char **argv)
{
	double timeout_s = 5;
	const char *target = NULL, *val, *ca = NULL, *name = NULL, *proxy = NULL;
	int tls = 0, insecure = 0;
	char host[256], port[32], addr[NI_MAXHOST + NI_MAXSERV + 4] = "";
	char phost[256] = "", pport[32] = "";

	for (int i = 0; i < argc; i++) {
		int o = cli_getopt("probe", probe_opts, sizeof(probe_opts) / sizeof(probe_opts[0]),
				   argc, argv, &i, &val);
		char *end;
		switch (o) {
		case CLI_ERROR:
			return 2;
		case CLI_POSITIONAL:
			if (target)
				return probe_usage();
			target = argv[i];
			break;
		case O_TIMEOUT:
			timeout_s = strtod(val, &end);
			if (*end || !(timeout_s > 0 && timeout_s <= 600)) {
				fprintf(stderr, "iketcp probe: bad timeout '%s' (0 < s <= 600)\n",
					val);
				return 2;
			}
			break;
		case O_TLS:
			tls = 1;
			break;
		case O_CA:
			ca = val;
			break;
		case O_NAME:
			name = val;
			break;
		case O_INSECURE:
			insecure = 1;
			break;
		case O_PROXY:
			proxy = val;
			break;
		default:
			return probe_usage();
		}
	}
	if ((ca || name || insecure) && !tls) {
		fprintf(stderr, "iketcp probe: --tls-ca-file, --tls-server-name and --insecure "
				"need --tls\n");
		return 2;
	}
	if (!target || split_target(target, host, sizeof(host), port, sizeof(port),
				    tls ? PROBE_TLS_PORT : PROBE_PORT) < 0)
		return probe_usage();
	if (proxy) {
		const char *rest = !strncmp(proxy, "http://", 7) ? proxy + 7 : NULL;
		char hp[300];
		size_t rl = rest ? strcspn(rest, "/") : 0;
		if (!rest || !rl || rl >= sizeof(hp) || (rest[rl] && strcmp(rest + rl, "/")) ||
		    memchr(rest, '@', rl)) {
			fprintf(stderr, "iketcp probe: --proxy wants http://HOST:PORT, not '%s'\n",
				proxy);
			return 2;
		}
		memcpy(hp, rest, rl);
		hp[rl] = '\0';
		if (split_target(hp, phost, sizeof(phost), pport, sizeof(pport), PROXY_PORT) < 0) {
			fprintf(stderr, "iketcp probe: bad proxy address '%s'\n", hp);
			return 2;
		}
	}

	double t0 = now_ms(), deadline = t0 + timeout_s * 1e3;
	printf("probe %s port %s%s%s%s, timeout %.1f s\n", host, port, tls ? " over TLS" : "",
	       proxy ? " through the HTTP proxy " : "", proxy ? proxy : "", timeout_s);
	int fd = proxy ? connect_any(phost, pport, deadline, addr, sizeof(addr))
		       : connect_any(host, port, deadline, addr, sizeof(addr));
	if (fd < 0) {
		printf("result: cannot connect over TCP%s\n", proxy ? " to the proxy" : "");
		return 1;
	}
	double t_conn = now_ms();
	printf("  %s: TCP connected in %.1f ms%s\n", addr, t_conn - t0,
	       proxy ? " (the proxy)" : "");
	char where[300];
	if (proxy || strchr(host, ':'))
		snprintf(where, sizeof(where), strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
	else
		snprintf(where, sizeof(where), "%s", addr);

	uint8_t extra[4096];
	size_t elen = 0;
	if (proxy && proxy_connect(fd, host, port, deadline, extra, sizeof(extra), &elen)) {
		close(fd);
		return 1;
	}

	struct iketcp_transport t;
	struct iketcp_tls_ctx *ctx = NULL;
	struct iketcp_tls_client_cfg tc = {.server_name = name ? name : host,
					   .ca_file = ca,
					   .no_verify = insecure,
					   .no_resume = 1};
	int result = -1;
	if (tls) {
		char err[256] = "";
		if (iketcp_tls_client_ctx_new(&tc, &ctx, err, sizeof(err)) != IKETCP_OK) {
			fprintf(stderr, "iketcp probe: TLS settings: %s\n", err);
			close(fd);
			return 2;
		}
		if (iketcp_tls_client_init(&t, ctx, fd, 0) != IKETCP_OK) {
			iketcp_tls_ctx_unref(ctx);
			close(fd);
			return 1;
		}
	} else if (iketcp_transport_tcp_init(&t, fd, 0) != IKETCP_OK) {
		close(fd);
		return 1;
	}
	if (elen && iketcp_transport_preread(&t, extra, elen) != IKETCP_OK)
		result = 1;
	while (result < 0) {
		int rc = iketcp_transport_handshake(&t);
		if (rc == IKETCP_OK)
			break;
		if (rc == IKETCP_E_AGAIN && wait_want(fd, t.hs_want, deadline))
			continue;
		char err[IKETCP_TRANSPORT_ERR_MAX] = "timed out";
		if (rc != IKETCP_E_AGAIN)
			iketcp_transport_last_error(&t, err, sizeof(err));
		printf("result: TLS handshake with %s failed: %s%s\n", where, err,
		       rc == IKETCP_E_TLS_VERIFY ? " (certificate refused; --tls-ca-file, "
						   "--tls-server-name or --insecure)"
						 : "");
		result = 1;
	}
	if (result < 0 && tls)
		print_tls(&t, &tc);

	uint64_t spi_i;
	if (getrandom(&spi_i, sizeof(spi_i), 0) != (ssize_t)sizeof(spi_i) || !spi_i)
		spi_i = 0x1b3c7e5d9a2f4c61ULL ^ (uint64_t)t0;
	uint8_t out[IKETCP_PREFIX_LEN + IKETCP_IKE_OVERHEAD + 1024];
	memcpy(out, IKETCP_PREFIX, IKETCP_PREFIX_LEN);
	size_t mlen = build_sa_init(out + IKETCP_PREFIX_LEN + IKETCP_IKE_OVERHEAD,
				    sizeof(out) - IKETCP_PREFIX_LEN - IKETCP_IKE_OVERHEAD, spi_i);
	if (result < 0 && (!mlen || iketcp_frame_ike_head(out + IKETCP_PREFIX_LEN, mlen) !=
					    IKETCP_IKE_OVERHEAD)) {
		fprintf(stderr, "iketcp probe: cannot build the request\n");
		result = 1;
	}
	size_t total = IKETCP_PREFIX_LEN + IKETCP_IKE_OVERHEAD + mlen, off = 0;
	while (result < 0 && (off < total || iketcp_transport_pending(&t))) {
		long w = 0;
		int rc = IKETCP_OK;
		if (off < total) {
			struct iovec iov = {.iov_base = out + off, .iov_len = total - off};
			w = iketcp_transport_writev(&t, &iov, 1);
		} else {
			rc = iketcp_transport_flush(&t);
		}
		if (w > 0)
			off += (size_t)w;
		if ((w == IKETCP_E_AGAIN || rc == IKETCP_E_AGAIN) &&
		    wait_want(fd, t.wr_want, deadline))
			continue;
		if (w < 0 || rc < 0) {
			char err[IKETCP_TRANSPORT_ERR_MAX] = "timed out";
			if (w != IKETCP_E_AGAIN && rc != IKETCP_E_AGAIN)
				iketcp_transport_last_error(&t, err, sizeof(err));
			printf("result: write failed: %s\n", err);
			result = 1;
		}
	}
	if (result < 0)
		printf("  sent IKETCP prefix + IKE_SA_INIT request (SPIi %016llx, %zu bytes)%s\n",
		       (unsigned long long)spi_i, total, tls ? " inside TLS" : "");

	struct iketcp_deframer df;
	struct iketcp_deframer_cfg dc = {.expect_prefix = 0, .max_frame = IKETCP_FRAME_MAX};
	if (iketcp_deframer_init(&df, &dc) != IKETCP_OK)
		result = 1;
	static uint8_t rbuf[65536];
	unsigned other = 0;
	while (result < 0) {
		long n = iketcp_transport_read(&t, rbuf, sizeof(rbuf));
		if (n == IKETCP_E_AGAIN) {
			if (wait_want(fd, t.rd_want, deadline))
				continue;
			printf("result: no IKE response within %.1f s (%u other frames): the "
			       "server accepted %s but did not answer in RFC 9329\n",
			       timeout_s, other, tls ? "TLS" : "TCP");
			result = 1;
			break;
		}
		if (n <= 0) {
			char err[IKETCP_TRANSPORT_ERR_MAX] = "closed by the server";
			if (n < 0)
				iketcp_transport_last_error(&t, err, sizeof(err));
			printf("result: connection %s after %.1f ms without an IKE response: not "
			       "RFC 9329, or refused by policy\n",
			       err, now_ms() - t_conn);
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
				printf("result: %s speaks RFC 9329 (IKE over TCP)%s%s%s%s\n", where,
				       tls ? " inside " : "", tls ? iketcp_tls_version(&t) : "",
				       proxy ? " through the HTTP proxy " : "", proxy ? addr : "");
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
	iketcp_transport_free(&t);
	iketcp_tls_ctx_unref(ctx);
	close(fd);
	return result;
}
