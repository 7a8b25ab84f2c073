/*
 * Addresses and prefixes as the configuration writes them, numeric only (no
 * DNS): "ADDR:PORT", "[V6ADDR]:PORT", "ADDR/BITS". The server and the
 * client use the same functions to compare, match and print addresses.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "config_int.h"

/*
 * Splits "HOST:PORT", "[HOST]:PORT", "[HOST]", "HOST" and a bare IPv6
 * address (more than one ':' and no brackets: it has no port). The port is
 * 1..65535; when absent it is default_port, and default_port 0 makes it
 * mandatory. Returns 0 or -1 (hp then undefined).
 */
int
split_hostport(const char *s, uint16_t default_port, struct hostport *hp)
{
	struct iketcp_cur c, host;
	size_t hl;
	uint8_t b;

	memset(hp, 0, sizeof(*hp));
	hp->port = default_port;
	/* host, brackets, ':' and 5 port digits */
	if (cur_over_str(&c, s, IKETCPD_HOST_MAX + 8) < 0)
		return -1;
	if (cur_peek(&c) == '[') {
		hp->v6 = 1;
		if (iketcp_cur_skip(&c, 1) != IKETCP_OK)
			return -1;
		hl = cur_span_to(&c, ']');
		if (hl == iketcp_cur_left(&c)) /* no ']' */
			return -1;
		if (iketcp_cur_sub(&c, hl, &host) != IKETCP_OK ||
		    iketcp_cur_skip(&c, 1) != IKETCP_OK)
			return -1;
		if (iketcp_cur_left(&c) > 0) {
			if (iketcp_cur_get_u8(&c, &b) != IKETCP_OK || b != ':' ||
			    cur_get_port(&c, &hp->port) < 0)
				return -1;
		}
	} else if (cur_count(&c, ':') > 1) {
		hp->v6 = 1;
		if (iketcp_cur_sub(&c, iketcp_cur_left(&c), &host) != IKETCP_OK)
			return -1;
	} else {
		hl = cur_span_to(&c, ':');
		if (iketcp_cur_sub(&c, hl, &host) != IKETCP_OK)
			return -1;
		if (iketcp_cur_left(&c) > 0) {
			if (iketcp_cur_skip(&c, 1) != IKETCP_OK || cur_get_port(&c, &hp->port) < 0)
				return -1;
		}
	}
	hl = iketcp_cur_left(&host);
	if (hl == 0 || hl >= sizeof(hp->host) ||
	    iketcp_cur_get_bytes(&host, hp->host, hl) != IKETCP_OK)
		return -1;
	hp->host[hl] = '\0';
	return hp->port == 0 ? -1 : 0;
}

/*
 * A DNS name: labels of 1..63 letters, digits, '-' or '_' separated by
 * dots, at most 253 bytes plus an optional final dot, and a last label that
 * is not all digits (so that "1.2.3.999" or "1.2.3" are not taken for
 * names: getaddrinfo() would read them as odd IPv4 forms).
 */
int
valid_hostname(const char *h)
{
	size_t n = strnlen(h, IKETCPD_HOST_MAX), i, label = 0;
	int digits = 1;

	if (n > 0 && h[n - 1] == '.')
		n--; /* a fully qualified "name." */
	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = h[i];
		if (ch == '.') {
			if (label == 0)
				return 0;
			label = 0;
			digits = 1;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return 0;
		if (!(ch >= '0' && ch <= '9'))
			digits = 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && !digits;
}

/* A peer host: IPv6 literal (when written as one), IPv4 literal, or DNS name. */
int
valid_peer_host(const char *h, int v6)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (v6)
		return inet_pton(AF_INET6, h, &a6) == 1;
	return inet_pton(AF_INET, h, &a4) == 1 || valid_hostname(h);
}

/* ---- addresses -------------------------------------------------------------------- */

int
iketcpd_parse_addr(const char *s, uint16_t default_port, struct iketcpd_addr *out)
{
	struct iketcpd_addr a;
	struct hostport hp;

	if (s == NULL || out == NULL || split_hostport(s, default_port, &hp) < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	if (!hp.v6) {
		struct sockaddr_in sin;
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(hp.port);
		if (inet_pton(AF_INET, hp.host, &sin.sin_addr) != 1)
			return -1;
		memcpy(&a.ss, &sin, sizeof(sin));
		a.len = sizeof(sin);
	} else {
		struct sockaddr_in6 sin6;
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(hp.port);
		if (inet_pton(AF_INET6, hp.host, &sin6.sin6_addr) != 1)
			return -1;
		memcpy(&a.ss, &sin6, sizeof(sin6));
		a.len = sizeof(sin6);
	}
	*out = a;
	return 0;
}

int
iketcpd_parse_prefix(const char *s, struct iketcpd_prefix *out)
{
	struct iketcp_cur c, host;
	struct iketcpd_prefix p;
	char h[INET6_ADDRSTRLEN];
	uint64_t bits;
	size_t hl, i;

	if (s == NULL || out == NULL || cur_over_str(&c, s, INET6_ADDRSTRLEN + 4) < 0)
		return -1;
	hl = cur_span_to(&c, '/');
	if (hl == 0 || hl >= sizeof(h) || iketcp_cur_sub(&c, hl, &host) != IKETCP_OK ||
	    iketcp_cur_get_bytes(&host, h, hl) != IKETCP_OK)
		return -1;
	h[hl] = '\0';
	memset(&p, 0, sizeof(p));
	if (inet_pton(AF_INET, h, p.addr) == 1)
		p.family = AF_INET;
	else if (inet_pton(AF_INET6, h, p.addr) == 1)
		p.family = AF_INET6;
	else
		return -1;
	p.bits = p.family == AF_INET ? 32 : 128;
	if (iketcp_cur_left(&c) > 0) {
		/* "/" then digits without a leading zero, at most the address size */
		if (iketcp_cur_skip(&c, 1) != IKETCP_OK)
			return -1;
		if (cur_peek(&c) == '0' && iketcp_cur_left(&c) > 1)
			return -1;
		if (cur_get_dec(&c, &bits) == 0 || iketcp_cur_left(&c) != 0 || bits > p.bits)
			return -1;
		p.bits = (uint8_t)bits;
	}
	/* no bits after the prefix: "192.0.2.1/24" is a typo, not a network */
	for (i = 0; i < (p.family == AF_INET ? 4u : 16u); i++) {
		unsigned keep = p.bits >= 8 * (i + 1) ? 8 : p.bits > 8 * i ? p.bits - 8 * i : 0;
		if (p.addr[i] & (uint8_t)(0xffu >> keep))
			return -1;
	}
	*out = p;
	return 0;
}

const char *
iketcpd_prefix_str(const struct iketcpd_prefix *p, char *buf, size_t len)
{
	char h[INET6_ADDRSTRLEN] = "?";

	if (buf == NULL || len == 0)
		return buf;
	if (p->family == AF_INET || p->family == AF_INET6)
		inet_ntop(p->family, p->addr, h, sizeof(h));
	snprintf(buf, len, "%s/%u", h, p->bits);
	return buf;
}

int
iketcpd_prefix_match(const struct iketcpd_prefix *p, const struct iketcpd_addr *a)
{
	const uint8_t *ip;
	unsigned i, full = p->bits / 8u, rest = p->bits % 8u;

	if (a->ss.ss_family != p->family)
		return 0;
	if (p->family == AF_INET)
		ip = (const uint8_t *)&((const struct sockaddr_in *)&a->ss)->sin_addr;
	else
		ip = ((const struct sockaddr_in6 *)&a->ss)->sin6_addr.s6_addr;
	for (i = 0; i < full; i++)
		if (ip[i] != p->addr[i])
			return 0;
	return rest == 0 || ((ip[full] ^ p->addr[full]) & (uint8_t)(0xffu << (8 - rest))) == 0;
}

const char *
iketcpd_addr_str(const struct iketcpd_addr *a, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (buf == NULL || len == 0)
		return buf;
	if (a != NULL && a->ss.ss_family == AF_INET && a->len == sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;
		memcpy(&sin, &a->ss, sizeof(sin));
		if (inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host)) != NULL) {
			snprintf(buf, len, "%s:%u", host, ntohs(sin.sin_port));
			return buf;
		}
	} else if (a != NULL && a->ss.ss_family == AF_INET6 &&
		   a->len == sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, &a->ss, sizeof(sin6));
		if (inet_ntop(AF_INET6, &sin6.sin6_addr, host, sizeof(host)) != NULL) {
			snprintf(buf, len, "[%s]:%u", host, ntohs(sin6.sin6_port));
			return buf;
		}
	}
	snprintf(buf, len, "(none)");
	return buf;
}

/* An address with a known family, the matching length, and a port. */
int
addr_valid(const struct iketcpd_addr *a)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (a->ss.ss_family == AF_INET && a->len == sizeof(sin)) {
		memcpy(&sin, &a->ss, sizeof(sin));
		return sin.sin_port != 0;
	}
	if (a->ss.ss_family == AF_INET6 && a->len == sizeof(sin6)) {
		memcpy(&sin6, &a->ss, sizeof(sin6));
		return sin6.sin6_port != 0;
	}
	return 0;
}

/* local-peer: auto (all zero), or an address whose port may be 0 (any). */
int
local_peer_valid(const struct iketcpd_addr *a)
{
	static const struct sockaddr_storage zero;

	if (a->len == 0)
		return memcmp(&a->ss, &zero, sizeof(zero)) == 0;
	return (a->ss.ss_family == AF_INET && a->len == sizeof(struct sockaddr_in)) ||
	       (a->ss.ss_family == AF_INET6 && a->len == sizeof(struct sockaddr_in6));
}

int
iketcpd_addr_equal(const struct iketcpd_addr *x, const struct iketcpd_addr *y)
{
	if (x->ss.ss_family != y->ss.ss_family)
		return 0;
	if (x->ss.ss_family == AF_INET) {
		struct sockaddr_in a, b;
		memcpy(&a, &x->ss, sizeof(a));
		memcpy(&b, &y->ss, sizeof(b));
		return a.sin_port == b.sin_port && a.sin_addr.s_addr == b.sin_addr.s_addr;
	}
	if (x->ss.ss_family == AF_INET6) {
		struct sockaddr_in6 a, b;
		memcpy(&a, &x->ss, sizeof(a));
		memcpy(&b, &y->ss, sizeof(b));
		return a.sin6_port == b.sin6_port &&
		       memcmp(&a.sin6_addr, &b.sin6_addr, sizeof(a.sin6_addr)) == 0;
	}
	return 0;
}

void
iketcpd_addr_set_port(struct iketcpd_addr *a, uint16_t port)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (a->ss.ss_family == AF_INET) {
		memcpy(&sin, &a->ss, sizeof(sin));
		sin.sin_port = htons(port);
		memcpy(&a->ss, &sin, sizeof(sin));
	} else if (a->ss.ss_family == AF_INET6) {
		memcpy(&sin6, &a->ss, sizeof(sin6));
		sin6.sin6_port = htons(port);
		memcpy(&a->ss, &sin6, sizeof(sin6));
	}
}
