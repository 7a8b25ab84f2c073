/*
 * iketcpd configuration: file and command-line parser, checks and dump
 * (see config.h; the reference of every keyword is docs/iketcpd.conf.md).
 *
 * Shape (style.md point 12, after WireGuard's src/config.c and iked's
 * sorted keyword table):
 *
 *   - a push-fed parser: parser_begin() / parser_line() / parser_finish();
 *     iketcpd_config_parse_buf() only cuts the input into lines;
 *   - ONE sorted keyword table (kwtab) maps a word to the sections it is
 *     valid in and to its parse_<key>() handler. The file syntax
 *     (`key = value`) and the command line (`--key value`, `--key=value`)
 *     both go through dispatch(), so they accept exactly the same words and
 *     values;
 *   - numbers are read digit by digit through the bounded cursor, saturate
 *     instead of overflowing, and are range-checked against the named limits
 *     below, which iketcpd_config_check() applies again to the result;
 *   - the parser works on a private copy of the configuration and copies it
 *     back only when everything, including the cross-field checks, passed:
 *     a failed parse (a bad SIGHUP reload) leaves the caller's struct as it
 *     was.
 *
 * Every byte of a config file is read through struct iketcp_cur: lines are
 * cut with iketcp_cur_sub() and copied out with iketcp_cur_get_bytes()
 * into a bounded local buffer, after which they are checked for NUL and
 * control bytes. Values (file or argv) are NUL-terminated strings of at most
 * CFG_LINE_MAX bytes; numbers, ports and addresses are decoded from them
 * through a cursor again.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iketcp/cursor.h"

/* ---- limits ------------------------------------------------------------------ */

#define CFG_FILE_MAX (1024 * 1024) /* iketcpd_config_parse_file() refuses bigger files */
#define CFG_LINE_MAX 1024          /* bytes per line (without '\n') and per value */
#define CFG_QUOTE_MAX 48           /* bytes of a rejected value quoted in a message */
#define CFG_KEY_MAX 32             /* longer words cannot be keywords */
#define CFG_DEFAULT_PORT 4500      /* IKE NAT-T port, also RFC 9329's usual TCP port */
#define CFG_STATS_PATH_MAX 108     /* sizeof(cfg->stats_path) == sizeof(sun_path) */

#define MS_PER_S 1000u
#define MS_PER_M (60u * MS_PER_S)
#define MS_PER_H (60u * MS_PER_M)
#define DUR_MIN 1u               /* 1ms */
#define DUR_MAX (24u * MS_PER_H) /* 24h = 86 400 000 ms: fits easily in uint32_t */
#define KIB 1024u
#define MIB (1024u * KIB)
#define FRAME_MIN 64u
#define FRAME_MAX 65535u /* the largest value of the 16-bit Length field */
#define BUDGET_MIN 4096u
#define BUDGET_MAX (64u * MIB)
#define RESERVE_MIN 65535u /* one frame of the largest size always fits */
#define RESERVE_MAX (64u * MIB)
#define COUNT_MIN 1u
#define COUNT_MAX 1000000u
#define VERBOSE_MAX 3
#define CFG_MAX_MEMORY_MIN ((uint64_t)MIB)
#define CFG_MAX_MEMORY_MAX (1024ull * 1024u * MIB)
#define PORT_MAX 65535u

/*
 * Decimal digits saturate at DEC_SAT while they are read. DEC_SAT is above
 * every range, and small enough that multiplying by the largest unit (h:
 * 3 600 000, m for sizes: 1 048 576) cannot overflow uint64_t:
 * 1e12 * 3.6e6 = 3.6e18 < 1.8e19.
 */
#define DEC_SAT 1000000000000ull

/* Default names: "server"/"client" for the first section, then "server2"... */
#define DEFAULT_SERVER_NAME "server"
#define DEFAULT_CLIENT_NAME "client"

/* ---- messages ---------------------------------------------------------------- */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Writes s[0..n) to out as a double-quoted, printable string: `"` and `\`
 * escaped, other bytes outside 0x20..0x7e as \xHH, at most CFG_QUOTE_MAX
 * input bytes followed by "..." when there were more. Returns out.
 */
static const char *
quote(char *out, size_t outlen, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;
	struct iketcp_cur c;
	uint8_t b;

	/* Worst case: 2 quotes + 4 bytes per input byte + "..." + NUL. */
	if (outlen < 2 + 4 * CFG_QUOTE_MAX + 3 + 1) {
		if (outlen)
			out[0] = '\0';
		return out;
	}
	iketcp_cur_init(&c, s, n);
	out[o++] = '"';
	for (i = 0; i < CFG_QUOTE_MAX && iketcp_cur_get_u8(&c, &b) == IKETCP_OK; i++) {
		if (b == '"' || b == '\\') {
			out[o++] = '\\';
			out[o++] = (char)b;
		} else if (b < 0x20 || b > 0x7e) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[b >> 4];
			out[o++] = hex[b & 15];
		} else {
			out[o++] = (char)b;
		}
	}
	if (iketcp_cur_left(&c) > 0) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

#define QUOTE_BUF (2 + 4 * CFG_QUOTE_MAX + 3 + 1)

/* ---- small cursor helpers -------------------------------------------------- */

/* Returns the next byte without consuming it, or -1 at the end. */
static int
cur_peek(const struct iketcp_cur *c)
{
	struct iketcp_cur t = *c;
	uint8_t b;

	if (iketcp_cur_get_u8(&t, &b) != IKETCP_OK)
		return -1;
	return b;
}

/*
 * Reads decimal digits. Returns how many were read (0: the cursor did not
 * start with a digit); *out is their value, saturated at DEC_SAT.
 */
static size_t
cur_get_dec(struct iketcp_cur *c, uint64_t *out)
{
	uint64_t v = 0;
	size_t nd = 0;
	int b;
	uint8_t d;

	while ((b = cur_peek(c)) >= '0' && b <= '9') {
		if (iketcp_cur_get_u8(c, &d) != IKETCP_OK)
			break;
		v = v * 10 + (uint64_t)(d - '0');
		if (v > DEC_SAT)
			v = DEC_SAT;
		nd++;
	}
	*out = v;
	return nd;
}

/* Counts the bytes equal to ch that are left under c. */
static size_t
cur_count(const struct iketcp_cur *c, uint8_t ch)
{
	struct iketcp_cur t = *c;
	size_t n = 0;
	uint8_t b;

	while (iketcp_cur_get_u8(&t, &b) == IKETCP_OK)
		n += b == ch;
	return n;
}

/* Returns how many bytes precede the first ch (all that is left if none). */
static size_t
cur_span_to(const struct iketcp_cur *c, uint8_t ch)
{
	struct iketcp_cur t = *c;
	size_t n = 0;
	uint8_t b;

	while (iketcp_cur_get_u8(&t, &b) == IKETCP_OK && b != ch)
		n++;
	return n;
}

/*
 * Sets c over the string s, which must be at most max bytes long. Returns 0,
 * or -1 for a longer string (never cut silently).
 */
static int
cur_over_str(struct iketcp_cur *c, const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n > max)
		return -1;
	iketcp_cur_init(c, s, n);
	return 0;
}

/* ---- value decoders (pure: 0 or -1, nothing written on failure) ------------- */

enum num_rc { NUM_OK = 0, NUM_SYNTAX = -1, NUM_RANGE = -2 };

/* Parses a whole string of digits into [min, max]. */
static enum num_rc
dec_count(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	struct iketcp_cur c;
	uint64_t v;

	if (cur_over_str(&c, s, CFG_LINE_MAX) < 0 || cur_get_dec(&c, &v) == 0 ||
	    iketcp_cur_left(&c) != 0)
		return NUM_SYNTAX;
	if (v < min || v > max)
		return NUM_RANGE;
	*out = v;
	return NUM_OK;
}

/* Parses the port digits left under c: 1..65535, nothing after them. */
static int
cur_get_port(struct iketcp_cur *c, uint16_t *port)
{
	uint64_t v;

	if (cur_get_dec(c, &v) == 0 || iketcp_cur_left(c) != 0 || v < 1 || v > PORT_MAX)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* Reads the unit suffix (the rest of c, at most 2 bytes) into a string. */
static int
cur_get_suffix(struct iketcp_cur *c, char suf[3])
{
	size_t n = iketcp_cur_left(c);

	if (n > 2 || iketcp_cur_get_bytes(c, suf, n) != IKETCP_OK)
		return -1;
	suf[n] = '\0';
	return 0;
}

/*
 * Duration: digits with an optional unit, "ms", "s", "m" or "h"; a bare
 * number is seconds. The result is in milliseconds, DUR_MIN..DUR_MAX.
 */
static enum num_rc
dec_duration(const char *s, uint32_t *ms)
{
	struct iketcp_cur c;
	uint64_t v, unit;
	char suf[3];

	if (cur_over_str(&c, s, CFG_LINE_MAX) < 0 || cur_get_dec(&c, &v) == 0 ||
	    cur_get_suffix(&c, suf) < 0)
		return NUM_SYNTAX;
	if (strcmp(suf, "ms") == 0)
		unit = 1;
	else if (strcmp(suf, "s") == 0 || suf[0] == '\0')
		unit = MS_PER_S;
	else if (strcmp(suf, "m") == 0)
		unit = MS_PER_M;
	else if (strcmp(suf, "h") == 0)
		unit = MS_PER_H;
	else
		return NUM_SYNTAX;
	v *= unit; /* no overflow: v <= DEC_SAT */
	if (v < DUR_MIN || v > DUR_MAX)
		return NUM_RANGE;
	*ms = (uint32_t)v;
	return NUM_OK;
}

/* Size in bytes: digits with an optional k/K (1024) or m/M (1024 * 1024). */
static enum num_rc
dec_size(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	struct iketcp_cur c;
	uint64_t v, unit;
	char suf[3];

	if (cur_over_str(&c, s, CFG_LINE_MAX) < 0 || cur_get_dec(&c, &v) == 0 ||
	    cur_get_suffix(&c, suf) < 0)
		return NUM_SYNTAX;
	if (suf[0] == '\0')
		unit = 1;
	else if (strcmp(suf, "k") == 0 || strcmp(suf, "K") == 0)
		unit = KIB;
	else if (strcmp(suf, "m") == 0 || strcmp(suf, "M") == 0)
		unit = MIB;
	else
		return NUM_SYNTAX;
	v *= unit; /* no overflow: v <= DEC_SAT */
	if (v < min || v > max)
		return NUM_RANGE;
	*out = (uint32_t)v;
	return NUM_OK;
}

/* yes/no/true/false/on/off, any case. Returns 1, 0, or -1. */
static int
dec_bool(const char *s)
{
	if (!strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcasecmp(s, "on"))
		return 1;
	if (!strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcasecmp(s, "off"))
		return 0;
	return -1;
}

/* Formats a duration in the largest unit that divides it exactly. */
static const char *
fmt_duration(char *buf, size_t len, uint32_t ms)
{
	if (ms != 0 && ms % MS_PER_H == 0)
		snprintf(buf, len, "%uh", ms / MS_PER_H);
	else if (ms != 0 && ms % MS_PER_M == 0)
		snprintf(buf, len, "%um", ms / MS_PER_M);
	else if (ms != 0 && ms % MS_PER_S == 0)
		snprintf(buf, len, "%us", ms / MS_PER_S);
	else
		snprintf(buf, len, "%ums", ms);
	return buf;
}

/* Formats a size with the largest suffix that divides it exactly. */
static const char *
fmt_size(char *buf, size_t len, uint32_t v)
{
	if (v != 0 && v % MIB == 0)
		snprintf(buf, len, "%um", v / MIB);
	else if (v != 0 && v % KIB == 0)
		snprintf(buf, len, "%uk", v / KIB);
	else
		snprintf(buf, len, "%u", v);
	return buf;
}

/* ---- host:port ----------------------------------------------------------------- */

struct hostport {
	char host[IKETCPD_HOST_MAX];
	int v6; /* written as IPv6: in brackets, or bare with more than one ':' */
	uint16_t port;
};

/*
 * Splits "HOST:PORT", "[HOST]:PORT", "[HOST]", "HOST" and a bare IPv6
 * address (more than one ':' and no brackets: it has no port). The port is
 * 1..65535; when absent it is default_port, and default_port 0 makes it
 * mandatory. Returns 0 or -1 (hp then undefined).
 */
static int
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
static int
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
static int
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
static int
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
static int
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

/* ---- defaults ----------------------------------------------------------------------- */

/* Copies a name, truncated to fit, zero-padded (so structs compare with memcmp). */
static void
set_name(char dst[IKETCPD_NAME_MAX], const char *name)
{
	size_t n = name ? strnlen(name, IKETCPD_NAME_MAX - 1) : 0;

	memset(dst, 0, IKETCPD_NAME_MAX);
	if (n)
		memcpy(dst, name, n);
}

void
iketcpd_config_init(struct iketcpd_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->verbose = 0;
	cfg->foreground = 0;
	cfg->stats_path[0] = '\0';
}

/* The default listen addresses: [::]:4500 and 0.0.0.0:4500. */
static void
default_listen(struct iketcpd_server_cfg *s)
{
	int rc;

	memset(s->listen, 0, sizeof(s->listen));
	rc = iketcpd_parse_addr("[::]:4500", 0, &s->listen[0]);
	rc |= iketcpd_parse_addr("0.0.0.0:4500", 0, &s->listen[1]);
	s->nlisten = rc == 0 ? 2 : 0; /* cannot fail; check() refuses nlisten 0 */
}

void
iketcpd_server_defaults(struct iketcpd_server_cfg *s, const char *name)
{
	memset(s, 0, sizeof(*s));
	set_name(s->name, name);
	default_listen(s);
	if (iketcpd_parse_addr("127.0.0.1:4500", 0, &s->backend) < 0)
		memset(&s->backend, 0, sizeof(s->backend)); /* cannot happen */
	s->prefix_timeout_ms = 5000;
	s->max_conns = 4096;
	s->max_conns_per_source = 64;
	s->max_pending = 256;
	s->max_bad_frames = 8;
	s->session_timeout_ms = 600000;
	s->replaced_idle_ms = 60000;
	s->max_sessions = 8192;
	s->send_budget = 262144;
	s->ike_reserve = 131072;
	s->max_frame = 65535;
	s->tcp_keepalive = 1;
	s->tcp_user_timeout_ms = 60000;
	s->source_prefix4 = 32;
	s->source_prefix6 = 64;
	s->max_pending_per_source = 16;
	s->max_sessions_per_source = 64;
	s->max_half_open = 1024;
	s->max_half_open_per_source = 16;
	s->half_open_timeout_ms = 30000;
	s->frame_timeout_ms = 10000;
	s->idle_timeout_ms = 0;
	s->backend_source_mode = IKETCPD_BSRC_AUTO;
	s->nlisten_tls = 0; /* listen-tls, tls-cert, tls-key, tls lists: none */
	s->tls.min_version = IKETCPD_TLS_V12;
	s->tls.null_cipher = 0;
	s->tls_handshake_timeout_ms = 5000;
	s->sniff_tls = IKETCPD_SNIFF_AUTO;
}

void
iketcpd_client_defaults(struct iketcpd_client_cfg *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	set_name(c->name, name);
	/* udp and peer have no default: check() requires them */
	c->peer_port = CFG_DEFAULT_PORT;
	c->enable_tcp = IKETCPD_TCP_FALLBACK; /* RFC 9329 §2: UDP first (R3, R13, R64) */
	c->tcp_remoteport = 0;                /* the peer's port */
	c->fallback_wait_ms = 2000;
	c->fallback_retry_ms = 600000;
	c->max_bad_frames = 8;
	c->connect_timeout_ms = 5000;
	c->reconnect_min_ms = 100;
	c->reconnect_max_ms = 5000;
	c->resolve_interval_ms = 30000;
	c->flow_timeout_ms = 600000;
	c->max_flows = 256;
	c->send_budget = 262144;
	c->ike_reserve = 131072;
	c->max_frame = 65535;
	c->tcp_keepalive = 1;
	c->tcp_user_timeout_ms = 60000;
	c->use_tls = 0; /* tls-server-name, tls-ca-file, tls-pin-sha256, proxy: none */
	c->tls_verify = 1;
	c->tls.min_version = IKETCPD_TLS_V12;
	c->tls.null_cipher = 0;
	c->proxy_port = 0;
}

int
iketcpd_server_sniff_tls(const struct iketcpd_server_cfg *s)
{
	return s->sniff_tls == 1 || (s->sniff_tls == IKETCPD_SNIFF_AUTO && s->tls_cert[0] != '\0');
}

/* Section names: 1..31 bytes of letters, digits, '.', '_' and '-'. */
static int
valid_name(const char *s)
{
	size_t n = strnlen(s, IKETCPD_NAME_MAX), i;

	if (n == 0 || n >= IKETCPD_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

/* ---- keyword table ------------------------------------------------------------------- */

enum sect {
	SECT_GLOBAL = 1, /* before the first section, or any flag */
	SECT_SERVER = 2,
	SECT_CLIENT = 4,
};

struct parser;
typedef int kw_fn(struct parser *p, const char *val);

/*
 * Most keys set one number or yes/no in the section they are in: for
 * those the table gives the kind, the field's offset in a server and/or a
 * client section (0: not valid there; offset 0 is the name, never a
 * value) and the range, and parse_value() does the rest. Keys with more
 * to check have their own parse function (kind V_FN).
 */
enum vkind { V_FN, V_DURATION, V_COUNT, V_SIZE, V_BOOL };

struct kw {
	const char *name;
	unsigned sections; /* enum sect bits where the key is valid */
	int multi;         /* may be repeated in one section */
	kw_fn *parse;      /* V_FN */
	enum vkind kind;
	size_t srv_off, cli_off; /* the field in iketcpd_server_cfg / _client_cfg */
	uint32_t min, max;       /* V_COUNT, V_SIZE */
};

#define SRV(f) offsetof(struct iketcpd_server_cfg, f)
#define CLI(f) offsetof(struct iketcpd_client_cfg, f)

static kw_fn parse_backend, parse_backend_source, parse_idle_timeout, parse_enable_tcp,
	parse_listen, parse_listen_tcp, parse_listen_tls, parse_local_peer, parse_peer, parse_proxy,
	parse_proxy_auth, parse_proxy_protocol_from, parse_sniff_tls, parse_stats_socket,
	parse_tls_ca_file, parse_tls_cert, parse_tls_ciphers, parse_tls_ciphersuites,
	parse_tls_groups, parse_tls_key, parse_tls_min_version, parse_tls_pin_sha256,
	parse_tls_server_name, parse_udp, parse_verbose, parse_user, parse_group, parse_max_memory;

#define S SECT_SERVER
#define C SECT_CLIENT
#define G SECT_GLOBAL
/* Sorted by strcmp() for bsearch(): keep it sorted when adding a key. */
static const struct kw kwtab[] = {
	{"backend", S, 0, parse_backend, V_FN, 0, 0, 0, 0},
	{"backend-source", S, 0, parse_backend_source, V_FN, 0, 0, 0, 0},
	{"connect-timeout", C, 0, NULL, V_DURATION, 0, CLI(connect_timeout_ms), 0, 0},
	{"enable-tcp", C, 0, parse_enable_tcp, V_FN, 0, 0, 0, 0},
	{"fallback-retry", C, 0, NULL, V_DURATION, 0, CLI(fallback_retry_ms), 0, 0},
	{"fallback-wait", C, 0, NULL, V_DURATION, 0, CLI(fallback_wait_ms), 0, 0},
	{"flow-timeout", C, 0, NULL, V_DURATION, 0, CLI(flow_timeout_ms), 0, 0},
	{"frame-timeout", S, 0, NULL, V_DURATION, SRV(frame_timeout_ms), 0, 0, 0},
	{"group", G, 0, parse_group, V_FN, 0, 0, 0, 0},
	{"half-open-timeout", S, 0, NULL, V_DURATION, SRV(half_open_timeout_ms), 0, 0, 0},
	{"idle-timeout", S, 0, parse_idle_timeout, V_FN, 0, 0, 0, 0},
	{"ike-reserve", S | C, 0, NULL, V_SIZE, SRV(ike_reserve), CLI(ike_reserve), RESERVE_MIN,
	 RESERVE_MAX},
	{"listen", S, 1, parse_listen, V_FN, 0, 0, 0, 0},
	{"listen-tcp", S, 0, parse_listen_tcp, V_FN, 0, 0, 0, 0},
	{"listen-tls", S, 1, parse_listen_tls, V_FN, 0, 0, 0, 0},
	{"local-peer", C, 0, parse_local_peer, V_FN, 0, 0, 0, 0},
	{"max-bad-frames", S | C, 0, NULL, V_COUNT, SRV(max_bad_frames), CLI(max_bad_frames),
	 COUNT_MIN, COUNT_MAX},
	{"max-conns", S, 0, NULL, V_COUNT, SRV(max_conns), 0, COUNT_MIN, COUNT_MAX},
	{"max-conns-per-source", S, 0, NULL, V_COUNT, SRV(max_conns_per_source), 0, COUNT_MIN,
	 COUNT_MAX},
	{"max-flows", C, 0, NULL, V_COUNT, 0, CLI(max_flows), COUNT_MIN, COUNT_MAX},
	{"max-frame", S | C, 0, NULL, V_SIZE, SRV(max_frame), CLI(max_frame), FRAME_MIN, FRAME_MAX},
	{"max-half-open", S, 0, NULL, V_COUNT, SRV(max_half_open), 0, COUNT_MIN, COUNT_MAX},
	{"max-half-open-per-source", S, 0, NULL, V_COUNT, SRV(max_half_open_per_source), 0,
	 COUNT_MIN, COUNT_MAX},
	{"max-memory", G, 0, parse_max_memory, V_FN, 0, 0, 0, 0},
	{"max-pending", S, 0, NULL, V_COUNT, SRV(max_pending), 0, COUNT_MIN, COUNT_MAX},
	{"max-pending-per-source", S, 0, NULL, V_COUNT, SRV(max_pending_per_source), 0, COUNT_MIN,
	 COUNT_MAX},
	{"max-sessions", S, 0, NULL, V_COUNT, SRV(max_sessions), 0, COUNT_MIN, COUNT_MAX},
	{"max-sessions-per-source", S, 0, NULL, V_COUNT, SRV(max_sessions_per_source), 0, COUNT_MIN,
	 COUNT_MAX},
	{"peer", C, 0, parse_peer, V_FN, 0, 0, 0, 0},
	{"prefix-timeout", S, 0, NULL, V_DURATION, SRV(prefix_timeout_ms), 0, 0, 0},
	{"proxy", C, 0, parse_proxy, V_FN, 0, 0, 0, 0},
	{"proxy-auth", C, 0, parse_proxy_auth, V_FN, 0, 0, 0, 0},
	{"proxy-protocol", S, 0, NULL, V_BOOL, SRV(proxy_protocol), 0, 0, 0},
	{"proxy-protocol-from", S, 1, parse_proxy_protocol_from, V_FN, 0, 0, 0, 0},
	{"reconnect-max", C, 0, NULL, V_DURATION, 0, CLI(reconnect_max_ms), 0, 0},
	{"reconnect-min", C, 0, NULL, V_DURATION, 0, CLI(reconnect_min_ms), 0, 0},
	{"replaced-idle-timeout", S, 0, NULL, V_DURATION, SRV(replaced_idle_ms), 0, 0, 0},
	{"resolve-interval", C, 0, NULL, V_DURATION, 0, CLI(resolve_interval_ms), 0, 0},
	{"send-budget", S | C, 0, NULL, V_SIZE, SRV(send_budget), CLI(send_budget), BUDGET_MIN,
	 BUDGET_MAX},
	{"session-timeout", S, 0, NULL, V_DURATION, SRV(session_timeout_ms), 0, 0, 0},
	{"sniff-tls", S, 0, parse_sniff_tls, V_FN, 0, 0, 0, 0},
	{"source-prefix4", S, 0, NULL, V_COUNT, SRV(source_prefix4), 0, 1, 32},
	{"source-prefix6", S, 0, NULL, V_COUNT, SRV(source_prefix6), 0, 1, 128},
	{"stats-socket", G, 0, parse_stats_socket, V_FN, 0, 0, 0, 0},
	{"tcp-keepalive", S | C, 0, NULL, V_BOOL, SRV(tcp_keepalive), CLI(tcp_keepalive), 0, 0},
	{"tcp-remoteport", C, 0, NULL, V_COUNT, 0, CLI(tcp_remoteport), 1, 65535},
	{"tcp-user-timeout", S | C, 0, NULL, V_DURATION, SRV(tcp_user_timeout_ms),
	 CLI(tcp_user_timeout_ms), 0, 0},
	{"tls", C, 0, NULL, V_BOOL, 0, CLI(use_tls), 0, 0},
	{"tls-ca-file", C, 0, parse_tls_ca_file, V_FN, 0, 0, 0, 0},
	{"tls-cert", S, 0, parse_tls_cert, V_FN, 0, 0, 0, 0},
	{"tls-ciphers", S | C, 0, parse_tls_ciphers, V_FN, 0, 0, 0, 0},
	{"tls-ciphersuites", S | C, 0, parse_tls_ciphersuites, V_FN, 0, 0, 0, 0},
	{"tls-groups", S | C, 0, parse_tls_groups, V_FN, 0, 0, 0, 0},
	{"tls-handshake-timeout", S, 0, NULL, V_DURATION, SRV(tls_handshake_timeout_ms), 0, 0, 0},
	{"tls-key", S, 0, parse_tls_key, V_FN, 0, 0, 0, 0},
	{"tls-min-version", S | C, 0, parse_tls_min_version, V_FN, 0, 0, 0, 0},
	{"tls-null-cipher", S | C, 0, NULL, V_BOOL, SRV(tls.null_cipher), CLI(tls.null_cipher), 0,
	 0},
	{"tls-pin-sha256", C, 0, parse_tls_pin_sha256, V_FN, 0, 0, 0, 0},
	{"tls-server-name", C, 0, parse_tls_server_name, V_FN, 0, 0, 0, 0},
	{"tls-verify", C, 0, NULL, V_BOOL, 0, CLI(tls_verify), 0, 0},
	{"udp", C, 0, parse_udp, V_FN, 0, 0, 0, 0},
	{"user", G, 0, parse_user, V_FN, 0, 0, 0, 0},
	{"verbose", G, 0, parse_verbose, V_FN, 0, 0, 0, 0},
};
#undef S
#undef C
#undef G
#undef SRV
#undef CLI
#define NKW (sizeof(kwtab) / sizeof(kwtab[0]))

static int
kw_cmp(const void *key, const void *elem)
{
	return strcmp((const char *)key, ((const struct kw *)elem)->name);
}

static const struct kw *
kw_find(const char *name)
{
	return bsearch(name, kwtab, NKW, sizeof(kwtab[0]), kw_cmp);
}

/* ---- the parser ------------------------------------------------------------------------ */

struct parser {
	struct iketcpd_cfg *cfg;        /* the private working copy */
	const char *src;                /* file name, or "command line" */
	unsigned line;                  /* current line; 0 on the command line */
	int args;                       /* 1: command line (keys are spelt --key) */
	unsigned sect;                  /* SECT_* of the current section */
	unsigned allowed;               /* SECT_* bits a key may have here */
	struct iketcpd_server_cfg *srv; /* current section, or NULL */
	struct iketcpd_client_cfg *cli;
	const struct kw *kw; /* key being parsed */
	int first;           /* first time kw is seen in this section */
	int listen_own;      /* listen / listen-tcp replaced the default pair here */
	unsigned seen[NKW];  /* line where each key was set in this section (1 on argv) */
	unsigned srv_line[IKETCPD_MAX_SERVERS]; /* header line of new sections, 0: unknown */
	unsigned cli_line[IKETCPD_MAX_CLIENTS];
	char *err;
	size_t errlen;
};

static int perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sets "SRC:LINE: message" (or "command line: message"). Returns -1. */
static int
perr(struct parser *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->args)
		seterr(p->err, p->errlen, "%s: %s", p->src, msg);
	else
		seterr(p->err, p->errlen, "%s:%u: %s", p->src, p->line, msg);
	return -1;
}

static int bad_value(struct parser *p, const char *val, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Sets "LOC: KEY: "VALUE" REASON" for the key being parsed. Returns -1. */
static int
bad_value(struct parser *p, const char *val, const char *fmt, ...)
{
	char why[256], q[QUOTE_BUF];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	quote(q, sizeof(q), val, strnlen(val, CFG_LINE_MAX + 1));
	return perr(p, "%s%s: %s %s", p->args ? "--" : "", p->kw->name, q, why);
}

/* Number checks shared by the handlers; they report with bad_value(). */

static int
get_count(struct parser *p, const char *val, uint32_t min, uint32_t max, uint32_t *dst)
{
	uint64_t v;

	switch (dec_count(val, min, max, &v)) {
	case NUM_OK:
		*dst = (uint32_t)v;
		return 0;
	case NUM_RANGE:
		return bad_value(p, val, "is out of range (%u..%u)", min, max);
	case NUM_SYNTAX:
		break;
	}
	return bad_value(p, val, "is not a number (expected digits, %u..%u)", min, max);
}

static int
get_duration(struct parser *p, const char *val, uint32_t *dst)
{
	switch (dec_duration(val, dst)) {
	case NUM_OK:
		return 0;
	case NUM_RANGE:
		return bad_value(p, val, "is out of range (1ms..24h)");
	case NUM_SYNTAX:
		break;
	}
	return bad_value(p, val,
			 "is not a duration (e.g. 500ms, 5s, 2m, 1h; a bare number is seconds)");
}

static int
get_size(struct parser *p, const char *val, uint32_t min, uint32_t max, uint32_t *dst)
{
	char a[24], b[24];

	switch (dec_size(val, min, max, dst)) {
	case NUM_OK:
		return 0;
	case NUM_RANGE:
		return bad_value(p, val, "is out of range (%s..%s)", fmt_size(a, sizeof(a), min),
				 fmt_size(b, sizeof(b), max));
	case NUM_SYNTAX:
		break;
	}
	return bad_value(p, val, "is not a size (bytes, or with a k or m suffix)");
}

static int
get_bool(struct parser *p, const char *val, int *dst)
{
	int v = dec_bool(val);

	if (v < 0)
		return bad_value(p, val, "is not yes/no (or true/false, on/off)");
	*dst = v;
	return 0;
}

static int
get_addr(struct parser *p, const char *val, struct iketcpd_addr *dst)
{
	if (iketcpd_parse_addr(val, CFG_DEFAULT_PORT, dst) < 0)
		return bad_value(p, val,
				 "is not an address (numeric IPV4[:PORT] or [IPV6][:PORT], "
				 "port 1..65535)");
	return 0;
}

/* A field that both section kinds have, in the current section. */
#define SHARED(field) (p->srv ? &p->srv->field : &p->cli->field)

/* ---- one parse_<key>() per key ------------------------------------------------------------ */

static int
parse_verbose(struct parser *p, const char *val)
{
	uint32_t v;

	if (get_count(p, val, 0, VERBOSE_MAX, &v) < 0)
		return -1;
	p->cfg->verbose = (int)v;
	return 0;
}

/* Bytes, or with a k, m or g suffix; 1m..1024g. */
static int
parse_max_memory(struct parser *p, const char *val)
{
	struct iketcp_cur c;
	uint64_t v, unit = 1;
	char suf[3];

	if (cur_over_str(&c, val, CFG_LINE_MAX) < 0 || cur_get_dec(&c, &v) == 0 ||
	    cur_get_suffix(&c, suf) < 0)
		return bad_value(p, val, "is not a size (bytes, or with a k, m or g suffix)");
	if (strcmp(suf, "k") == 0 || strcmp(suf, "K") == 0)
		unit = KIB;
	else if (strcmp(suf, "m") == 0 || strcmp(suf, "M") == 0)
		unit = MIB;
	else if (strcmp(suf, "g") == 0 || strcmp(suf, "G") == 0)
		unit = 1024ull * MIB;
	else if (suf[0] != '\0')
		return bad_value(p, val, "is not a size (bytes, or with a k, m or g suffix)");
	if (v > CFG_MAX_MEMORY_MAX / unit || v * unit < CFG_MAX_MEMORY_MIN)
		return bad_value(p, val, "is out of range (1m..1024g)");
	p->cfg->max_memory = v * unit;
	return 0;
}

/* An absolute path that fits in sun_path with its NUL. */
static int
parse_stats_socket(struct parser *p, const char *val)
{
	size_t n = strnlen(val, CFG_STATS_PATH_MAX);

	if (val[0] != '/')
		return bad_value(p, val, "is not an absolute path");
	if (n >= CFG_STATS_PATH_MAX)
		return bad_value(p, val, "is too long for a unix socket path (at most %d bytes)",
				 CFG_STATS_PATH_MAX - 1);
	memset(p->cfg->stats_path, 0, sizeof(p->cfg->stats_path));
	memcpy(p->cfg->stats_path, val, n);
	return 0;
}

/* Why s cannot be an account name or number for user/group, or NULL.
 * Stricter than useradd: what cannot be mistaken for an option or a path. */
static const char *
account_problem(const char *s)
{
	size_t n = strnlen(s, IKETCPD_USER_MAX);

	if (n >= IKETCPD_USER_MAX)
		return "is too long (at most 32 bytes)";
	if (n == 0 || s[0] == '-')
		return "is not a name or number";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
			return "is not a name or number (letters, digits, '_', '.', '-')";
	}
	return NULL;
}

static int
parse_account(struct parser *p, const char *val, char dst[IKETCPD_USER_MAX])
{
	const char *why = account_problem(val);

	if (why)
		return bad_value(p, val, "%s", why);
	memset(dst, 0, IKETCPD_USER_MAX);
	memcpy(dst, val, strlen(val));
	return 0;
}

static int
parse_user(struct parser *p, const char *val)
{
	return parse_account(p, val, p->cfg->user);
}

static int
parse_group(struct parser *p, const char *val)
{
	return parse_account(p, val, p->cfg->group);
}

/* Why a is no new listen or listen-tls address of s, or NULL. */
static const char *
listen_taken(const struct iketcpd_server_cfg *s, const struct iketcpd_addr *a)
{
	for (int i = 0; i < s->nlisten; i++)
		if (iketcpd_addr_equal(&s->listen[i], a))
			return "is already a listen address of this server";
	for (int i = 0; i < s->nlisten_tls; i++)
		if (iketcpd_addr_equal(&s->listen_tls[i], a))
			return "is already a listen-tls address of this server";
	return NULL;
}

/* Repeatable: the first one replaces the default pair, later ones add. */
static int
parse_listen(struct parser *p, const char *val)
{
	struct iketcpd_server_cfg *s = p->srv;
	struct iketcpd_addr a;
	const char *why;

	if (get_addr(p, val, &a) < 0)
		return -1;
	if (!p->listen_own) {
		memset(s->listen, 0, sizeof(s->listen));
		s->nlisten = 0;
		p->listen_own = 1;
	}
	if ((why = listen_taken(s, &a)) != NULL)
		return bad_value(p, val, "%s", why);
	if (s->nlisten >= IKETCPD_MAX_LISTEN)
		return bad_value(p, val, "is one listen address too many (at most %d)",
				 IKETCPD_MAX_LISTEN);
	s->listen[s->nlisten++] = a;
	return 0;
}

/*
 * libreswan's "listen-tcp" (config setup), for operators who know it: yes =
 * listen on TCP, which a server section always does (on its listen
 * addresses, by default port 4500 everywhere, as libreswan); an address =
 * one more listen address. "no" would mean a server that does not listen.
 */
static int
parse_listen_tcp(struct parser *p, const char *val)
{
	switch (dec_bool(val)) {
	case 1:
		return 0;
	case 0:
		return bad_value(p, val,
				 "cannot be: a [server] section always listens on TCP (remove the "
				 "section instead)");
	default:
		return parse_listen(p, val);
	}
}

static int
parse_backend(struct parser *p, const char *val)
{
	return get_addr(p, val, &p->srv->backend);
}

/* auto | none | PREFIX: where each session's socket to the backend binds. */
static int
parse_backend_source(struct parser *p, const char *val)
{
	struct iketcpd_server_cfg *s = p->srv;

	memset(&s->backend_source, 0, sizeof(s->backend_source));
	if (strcmp(val, "auto") == 0) {
		s->backend_source_mode = IKETCPD_BSRC_AUTO;
		return 0;
	}
	if (strcmp(val, "none") == 0) {
		s->backend_source_mode = IKETCPD_BSRC_NONE;
		return 0;
	}
	if (iketcpd_parse_prefix(val, &s->backend_source) < 0 || s->backend_source.bits < 8 ||
	    s->backend_source.bits > (s->backend_source.family == AF_INET ? 30 : 126))
		return bad_value(p, val,
				 "is not auto, none or a prefix with room for clients (e.g. "
				 "127.0.0.0/8, fd00:1::/64; /8../30 or /8../126)");
	s->backend_source_mode = IKETCPD_BSRC_PREFIX;
	return 0;
}

/* A duration, or 0 / off for none. */
static int
parse_idle_timeout(struct parser *p, const char *val)
{
	if (strcmp(val, "0") == 0 || strcmp(val, "off") == 0) {
		p->srv->idle_timeout_ms = 0;
		return 0;
	}
	return get_duration(p, val, &p->srv->idle_timeout_ms);
}

static int
parse_udp(struct parser *p, const char *val)
{
	return get_addr(p, val, &p->cli->udp);
}

/* HOST[:PORT]: kept as text for the daemon to resolve; only its syntax is checked. */
static int
parse_peer(struct parser *p, const char *val)
{
	struct iketcpd_client_cfg *c = p->cli;
	struct hostport hp;

	if (split_hostport(val, CFG_DEFAULT_PORT, &hp) < 0 || !valid_peer_host(hp.host, hp.v6))
		return bad_value(p, val,
				 "is not a peer (HOST[:PORT], IPV4[:PORT] or [IPV6][:PORT], "
				 "port 1..65535)");
	memset(c->peer_host, 0, sizeof(c->peer_host));
	memcpy(c->peer_host, hp.host, strlen(hp.host));
	c->peer_port = hp.port;
	return 0;
}

static int
parse_enable_tcp(struct parser *p, const char *val)
{
	int v = dec_bool(val);

	if (strcasecmp(val, "fallback") == 0)
		p->cli->enable_tcp = IKETCPD_TCP_FALLBACK;
	else if (v == 1)
		p->cli->enable_tcp = IKETCPD_TCP_YES;
	else if (v == 0)
		p->cli->enable_tcp = IKETCPD_TCP_NO;
	else
		return bad_value(p, val, "is not yes, no or fallback");
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

/* auto, or a numeric ADDR[:PORT]: without a port, any port of ADDR. */
static int
parse_local_peer(struct parser *p, const char *val)
{
	struct iketcpd_addr a, b;

	if (strcasecmp(val, "auto") == 0) {
		memset(&p->cli->local_peer, 0, sizeof(p->cli->local_peer));
		return 0;
	}
	/* Two default ports: the results differ only when no port was written. */
	if (iketcpd_parse_addr(val, 1, &a) < 0 || iketcpd_parse_addr(val, 2, &b) < 0)
		return bad_value(p, val,
				 "is not auto or an address (numeric IPV4[:PORT] or "
				 "[IPV6][:PORT], port 1..65535; no port: any port)");
	if (!iketcpd_addr_equal(&a, &b))
		iketcpd_addr_set_port(&a, 0);
	memcpy(&p->cli->local_peer, &a, sizeof(a));
	return 0;
}

/* ---- TLS and proxy keys (issue #4) ---------------------------------------------------- */

#define TLS_DEFAULT_PORT 443 /* listen-tls without a port */
#define HTTP_DEFAULT_PORT 80 /* proxy http://HOST without a port */
#define PIN_BYTES 32         /* SHA-256 */

/*
 * Repeatable, like listen. The first listen-tls of a section that has no
 * listen (yet) also drops the default plain pair: a server given only
 * listen-tls is TLS-only. A later listen starts its own list as usual.
 */
static int
parse_listen_tls(struct parser *p, const char *val)
{
	struct iketcpd_server_cfg *s = p->srv;
	struct iketcpd_addr a;
	const char *why;

	if (iketcpd_parse_addr(val, TLS_DEFAULT_PORT, &a) < 0)
		return bad_value(p, val,
				 "is not an address (numeric IPV4[:PORT] or [IPV6][:PORT], "
				 "port 1..65535, default 443)");
	if (p->first) {
		memset(s->listen_tls, 0, sizeof(s->listen_tls));
		s->nlisten_tls = 0;
		if (!p->listen_own) {
			memset(s->listen, 0, sizeof(s->listen));
			s->nlisten = 0;
		}
	}
	if ((why = listen_taken(s, &a)) != NULL)
		return bad_value(p, val, "%s", why);
	if (s->nlisten_tls >= IKETCPD_MAX_LISTEN)
		return bad_value(p, val, "is one listen-tls address too many (at most %d)",
				 IKETCPD_MAX_LISTEN);
	s->listen_tls[s->nlisten_tls++] = a;
	return 0;
}

/* Copies a string value that must fit in dst (size bytes with the NUL). */
static int
get_string(struct parser *p, const char *val, char *dst, size_t size, const char *what)
{
	size_t n = strnlen(val, size);

	if (n >= size)
		return bad_value(p, val, "is too long for %s (at most %zu bytes)", what, size - 1);
	memset(dst, 0, size);
	memcpy(dst, val, n);
	return 0;
}

static int
parse_tls_cert(struct parser *p, const char *val)
{
	return get_string(p, val, p->srv->tls_cert, sizeof(p->srv->tls_cert), "a file name");
}

static int
parse_tls_key(struct parser *p, const char *val)
{
	return get_string(p, val, p->srv->tls_key, sizeof(p->srv->tls_key), "a file name");
}

static int
parse_tls_ca_file(struct parser *p, const char *val)
{
	return get_string(p, val, p->cli->tls_ca_file, sizeof(p->cli->tls_ca_file), "a file name");
}

static int
parse_tls_min_version(struct parser *p, const char *val)
{
	int *dst = SHARED(tls.min_version);

	if (strcmp(val, "1.2") == 0)
		*dst = IKETCPD_TLS_V12;
	else if (strcmp(val, "1.3") == 0)
		*dst = IKETCPD_TLS_V13;
	else
		return bad_value(p, val, "is not a TLS version (1.2 or 1.3)");
	return 0;
}

/*
 * An OpenSSL list (ciphers, TLS 1.3 suites, groups): names of letters,
 * digits, '-', '_', '.', '+', '!', '@' and '=' separated by ':' or ','.
 * OpenSSL checks the names when the context is built (iketcpd -n does).
 */
static int
get_tls_list(struct parser *p, const char *val, char *dst, size_t size)
{
	for (const char *c = val; *c; c++) {
		char ch = *c;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr("-_.+!@=:,", ch) != NULL))
			return bad_value(p, val,
					 "is not an OpenSSL list (names separated by ':', no "
					 "blanks)");
	}
	return get_string(p, val, dst, size, "a TLS list");
}

static int
parse_tls_ciphers(struct parser *p, const char *val)
{
	return get_tls_list(p, val, *SHARED(tls.ciphers), IKETCPD_TLS_LIST_MAX);
}

static int
parse_tls_ciphersuites(struct parser *p, const char *val)
{
	return get_tls_list(p, val, *SHARED(tls.ciphersuites), IKETCPD_TLS_LIST_MAX);
}

static int
parse_tls_groups(struct parser *p, const char *val)
{
	return get_tls_list(p, val, *SHARED(tls.groups), IKETCPD_TLS_LIST_MAX);
}

/* yes | no | auto (auto: yes when tls-cert is set; what the dump writes by default). */
static int
parse_sniff_tls(struct parser *p, const char *val)
{
	int v = dec_bool(val);

	if (strcasecmp(val, "auto") == 0)
		p->srv->sniff_tls = IKETCPD_SNIFF_AUTO;
	else if (v >= 0)
		p->srv->sniff_tls = v;
	else
		return bad_value(p, val, "is not yes, no or auto");
	return 0;
}

/* Repeatable: the load balancers allowed to send PROXY headers. */
static int
parse_proxy_protocol_from(struct parser *p, const char *val)
{
	struct iketcpd_server_cfg *s = p->srv;
	struct iketcpd_prefix x;

	if (iketcpd_parse_prefix(val, &x) < 0)
		return bad_value(p, val,
				 "is not an address or prefix (e.g. 192.0.2.10, 10.0.0.0/8, "
				 "2001:db8::/32; no bits set after the prefix length)");
	if (p->first)
		s->nproxy_from = 0;
	if (s->nproxy_from >= IKETCPD_MAX_PROXY_FROM)
		return bad_value(p, val, "is one proxy-protocol-from too many (at most %d)",
				 IKETCPD_MAX_PROXY_FROM);
	s->proxy_from[s->nproxy_from++] = x;
	return 0;
}

/* A DNS name or an IP literal (IPv6 without brackets), as checked in the certificate. */
static int
parse_tls_server_name(struct parser *p, const char *val)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (!valid_hostname(val) && inet_pton(AF_INET, val, &a4) != 1 &&
	    inet_pton(AF_INET6, val, &a6) != 1)
		return bad_value(p, val,
				 "is not a server name (a DNS name, or an IPv4 or IPv6 address "
				 "without brackets)");
	return get_string(p, val, p->cli->tls_server_name, sizeof(p->cli->tls_server_name),
			  "a server name");
}

static int
b64val(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/*
 * The formats libiketcp accepts (tls.h): an optional "sha256//", then 64
 * hex digits (':' between them allowed) or 44 characters of base64 ending
 * in one '='.
 */
static int
valid_pin(const char *s)
{
	size_t n, digits = 0;

	if (strncmp(s, "sha256//", 8) == 0)
		s += 8;
	n = strlen(s);
	if (n == 44 && s[43] == '=' && s[42] != '=') {
		for (size_t i = 0; i < 43; i++)
			if (b64val(s[i]) < 0)
				return 0;
		return 1;
	}
	for (; *s; s++) {
		if (*s == ':')
			continue;
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
		      (*s >= 'A' && *s <= 'F')))
			return 0;
		digits++;
	}
	return digits == 2 * PIN_BYTES;
}

static int
parse_tls_pin_sha256(struct parser *p, const char *val)
{
	if (!valid_pin(val))
		return bad_value(p, val,
				 "is not a SHA-256 public key pin (64 hex digits, or 44 "
				 "characters of base64, optionally after sha256//)");
	return get_string(p, val, p->cli->tls_pin, sizeof(p->cli->tls_pin), "a pin");
}

/* http://HOST[:PORT][/]: the web proxy to send CONNECT to (port 80 by default). */
static int
parse_proxy(struct parser *p, const char *val)
{
	struct iketcpd_client_cfg *c = p->cli;
	char rest[IKETCPD_HOST_MAX + 16];
	struct hostport hp;
	size_t n;

	if (strncasecmp(val, "https://", 8) == 0)
		return bad_value(p, val,
				 "is not supported: only http:// proxies (TLS to the peer runs "
				 "inside the tunnel: tls = yes)");
	if (strncasecmp(val, "http://", 7) != 0)
		return bad_value(p, val, "is not a proxy URL (http://HOST:PORT)");
	n = strnlen(val + 7, sizeof(rest));
	if (n >= sizeof(rest))
		return bad_value(p, val, "is too long for a proxy URL");
	memcpy(rest, val + 7, n);
	rest[n] = '\0';
	if (n > 0 && rest[n - 1] == '/')
		rest[--n] = '\0';
	if (memchr(rest, '@', n) != NULL)
		return bad_value(p, val,
				 "has credentials in the URL: give them with proxy-auth "
				 "USER:PASS");
	if (n == 0 || split_hostport(rest, HTTP_DEFAULT_PORT, &hp) < 0 ||
	    !valid_peer_host(hp.host, hp.v6))
		return bad_value(p, val,
				 "is not a proxy URL (http://HOST:PORT, HOST a name, IPV4 or "
				 "[IPV6], port 1..65535)");
	memset(c->proxy_host, 0, sizeof(c->proxy_host));
	memcpy(c->proxy_host, hp.host, strlen(hp.host));
	c->proxy_port = hp.port;
	return 0;
}

/* USER:PASS for Basic authentication (RFC 7617): the user has no ':'. */
static int
parse_proxy_auth(struct parser *p, const char *val)
{
	const char *colon = strchr(val, ':');
	size_t n = strnlen(val, sizeof(p->cli->proxy_auth));

	/* The value is a secret: messages do not quote it. */
	if (colon == NULL || colon == val)
		return perr(p,
			    "%sproxy-auth: the value (not shown) is not USER:PASS (a user name, "
			    "':', a password)",
			    p->args ? "--" : "");
	if (n >= sizeof(p->cli->proxy_auth))
		return perr(p,
			    "%sproxy-auth: the value (not shown) is too long (at most %zu bytes)",
			    p->args ? "--" : "", sizeof(p->cli->proxy_auth) - 1);
	memset(p->cli->proxy_auth, 0, sizeof(p->cli->proxy_auth));
	memcpy(p->cli->proxy_auth, val, n);
	return 0;
}

/* ---- dispatch: shared by the file and the command line ------------------------------ */

static int
is_space(int ch)
{
	return ch == ' ' || ch == '\t';
}

/*
 * What a value may be, so that the file and the command line accept the
 * same set and a dump always parses back: not empty, at most CFG_LINE_MAX
 * bytes, no control bytes other than tab, no leading or trailing blank, and
 * no '#' at the start or after a blank (the file syntax reads those as a
 * comment).
 */
static const char *
value_problem(const char *val)
{
	size_t n = strnlen(val, CFG_LINE_MAX + 1), i;

	if (n == 0)
		return "is empty";
	if (n > CFG_LINE_MAX)
		return "is too long";
	if (is_space(val[0]) || is_space(val[n - 1]))
		return "starts or ends with a blank";
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)val[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return "contains a control character";
		if (ch == '#' && (i == 0 || is_space(val[i - 1])))
			return "contains a comment mark (# at the start or after a blank)";
	}
	return NULL;
}

/* Where a key belongs, for messages. */
static const char *
sect_label(unsigned sections, int args)
{
	if (sections & SECT_GLOBAL)
		return args ? "a global option" : "a global key";
	if ((sections & SECT_SERVER) && (sections & SECT_CLIENT))
		return args ? "a server and client option" : "a [server] and [client] key";
	if (sections & SECT_SERVER)
		return args ? "a server option" : "a [server] key";
	return args ? "a client option" : "a [client NAME] key";
}

/* A key's value into the current section: through its parse function, or
 * by its table entry. */
static int
parse_value(struct parser *p, const struct kw *kw, const char *val)
{
	void *f;

	if (kw->kind == V_FN)
		return kw->parse(p, val);
	/* the section check before the call guarantees an offset here */
	f = p->srv ? (char *)p->srv + kw->srv_off : (char *)p->cli + kw->cli_off;
	switch (kw->kind) {
	case V_DURATION:
		return get_duration(p, val, f);
	case V_COUNT:
		return get_count(p, val, kw->min, kw->max, f);
	case V_SIZE:
		return get_size(p, val, kw->min, kw->max, f);
	case V_BOOL:
		return get_bool(p, val, f);
	case V_FN:
		break;
	}
	return -1;
}

static int
dispatch(struct parser *p, const char *key, const char *val)
{
	const struct kw *kw = kw_find(key);
	char q[QUOTE_BUF];
	const char *why;
	size_t idx;

	if (p->args) {
		char opt[CFG_QUOTE_MAX + 8];
		snprintf(opt, sizeof(opt), "--%s", key);
		quote(q, sizeof(q), opt, strnlen(opt, sizeof(opt)));
	} else {
		quote(q, sizeof(q), key, strnlen(key, CFG_LINE_MAX + 1));
	}
	if (kw == NULL)
		return perr(p, "unknown %s %s", p->args ? "option" : "key", q);
	p->kw = kw;
	if ((kw->sections & p->allowed) == 0) {
		if (p->args)
			return perr(p, "--%s is %s, not valid in %s mode", kw->name,
				    sect_label(kw->sections, 1),
				    p->sect == SECT_SERVER ? "server" : "client");
		if (kw->sections & SECT_GLOBAL)
			return perr(p, "%s is a global key: put it before the first section", q);
		if (p->sect == SECT_GLOBAL)
			return perr(p, "%s outside a section: it is %s", q,
				    sect_label(kw->sections, 0));
		return perr(p, "%s is %s, not valid in [%s %s]", q, sect_label(kw->sections, 0),
			    p->sect == SECT_SERVER ? "server" : "client",
			    p->srv ? p->srv->name : p->cli->name);
	}
	idx = (size_t)(kw - kwtab);
	if (p->seen[idx] && !kw->multi) {
		if (p->args)
			return bad_value(p, val, "given twice");
		return bad_value(p, val, "duplicates the value set on line %u", p->seen[idx]);
	}
	if ((why = value_problem(val)) != NULL)
		return bad_value(p, val, "%s", why);
	p->first = p->seen[idx] == 0;
	if (parse_value(p, kw, val) < 0)
		return -1;
	p->seen[idx] = p->args ? 1 : p->line;
	return 0;
}

/* ---- sections -------------------------------------------------------------------------- */

static int
name_taken(const struct iketcpd_cfg *cfg, const char *name)
{
	int i;

	for (i = 0; i < cfg->nservers; i++)
		if (strncmp(cfg->servers[i].name, name, IKETCPD_NAME_MAX) == 0)
			return 1;
	for (i = 0; i < cfg->nclients; i++)
		if (strncmp(cfg->clients[i].name, name, IKETCPD_NAME_MAX) == 0)
			return 1;
	return 0;
}

/*
 * Opens a new section of kind SECT_SERVER or SECT_CLIENT. name may be NULL
 * (a server in a file, any command-line section): then the default name is
 * "server" or "client" for the first one, "server2", "server3"... after.
 * what is the text quoted in messages (the header line, or the mode).
 */
static int
new_section(struct parser *p, unsigned kind, const char *name, const char *what)
{
	struct iketcpd_cfg *cfg = p->cfg;
	const char *label = kind == SECT_SERVER ? "server" : "client";
	int n = kind == SECT_SERVER ? cfg->nservers : cfg->nclients;
	int max = kind == SECT_SERVER ? IKETCPD_MAX_SERVERS : IKETCPD_MAX_CLIENTS;
	char q[QUOTE_BUF], defname[IKETCPD_NAME_MAX];

	quote(q, sizeof(q), what, strnlen(what, CFG_LINE_MAX + 1));
	if (n < 0 || n >= max)
		return perr(p, "too many %s sections (at most %d): %s", label, max, q);
	if (name == NULL) {
		if (n == 0)
			snprintf(defname, sizeof(defname), "%s", label);
		else
			snprintf(defname, sizeof(defname), "%s%d", label, n + 1);
		name = defname;
	}
	if (!valid_name(name))
		return perr(p, "bad section name in %s (1..%d letters, digits, '.', '_' or '-')", q,
			    IKETCPD_NAME_MAX - 1);
	if (name_taken(cfg, name))
		return perr(p, "section name already used: %s", q);

	memset(p->seen, 0, sizeof(p->seen));
	p->listen_own = 0;
	p->sect = kind;
	p->allowed = p->args ? (kind | SECT_GLOBAL) : kind;
	if (kind == SECT_SERVER) {
		p->cli = NULL;
		p->srv = &cfg->servers[n];
		iketcpd_server_defaults(p->srv, name);
		p->srv_line[n] = p->line;
		cfg->nservers++;
	} else {
		p->srv = NULL;
		p->cli = &cfg->clients[n];
		iketcpd_client_defaults(p->cli, name);
		p->cli_line[n] = p->line;
		cfg->nclients++;
	}
	return 0;
}

/* Trims blanks at both ends of s[*b..*e) (indices into a local buffer). */
static void
trim(const char *s, size_t *b, size_t *e)
{
	while (*b < *e && is_space(s[*b]))
		(*b)++;
	while (*e > *b && is_space(s[*e - 1]))
		(*e)--;
}

/* "[server]", "[server NAME]" or "[client NAME]"; s is the trimmed line. */
static int
parse_header(struct parser *p, const char *s, size_t n)
{
	char q[QUOTE_BUF], name[IKETCPD_NAME_MAX];
	size_t kb = 1, ke, nb, ne = n - 1;
	unsigned kind;

	quote(q, sizeof(q), s, n);
	if (n < 2 || s[n - 1] != ']')
		return perr(p,
			    "bad section header %s (expected [server], [server NAME] or "
			    "[client NAME])",
			    q);
	trim(s, &kb, &ne);
	for (ke = kb; ke < ne && !is_space(s[ke]); ke++)
		;
	nb = ke;
	trim(s, &nb, &ne);
	if (ke - kb == 6 && memcmp(s + kb, "server", 6) == 0)
		kind = SECT_SERVER;
	else if (ke - kb == 6 && memcmp(s + kb, "client", 6) == 0)
		kind = SECT_CLIENT;
	else
		return perr(p,
			    "unknown section %s (expected [server], [server NAME] or "
			    "[client NAME])",
			    q);
	if (nb == ne && kind == SECT_CLIENT)
		return perr(p, "a client section needs a name: %s", q);
	if (nb == ne)
		return new_section(p, kind, NULL, s);
	if (ne - nb >= sizeof(name))
		return perr(p, "section name too long in %s (at most %d bytes)", q,
			    IKETCPD_NAME_MAX - 1);
	memcpy(name, s + nb, ne - nb);
	name[ne - nb] = '\0';
	return new_section(p, kind, name, s);
}

static void
parser_begin(struct parser *p, struct iketcpd_cfg *work, const char *src, int args, char *err,
	     size_t errlen)
{
	memset(p, 0, sizeof(*p));
	p->cfg = work;
	p->src = src;
	p->args = args;
	p->sect = SECT_GLOBAL;
	p->allowed = SECT_GLOBAL;
	p->err = err;
	p->errlen = errlen;
}

/* Handles one line (without its '\n') held under lc. */
static int
parser_line(struct parser *p, struct iketcp_cur *lc)
{
	char line[CFG_LINE_MAX + 2], q[QUOTE_BUF]; /* + '\r' of a CRLF + NUL */
	size_t n = iketcp_cur_left(lc), i, b, e, eq;

	p->line++;
	if (n > CFG_LINE_MAX + 1) {
		/* too long even for a CRLF line: copy just what the message quotes
		 * (one byte more than quote() shows, so that it adds "...") */
		if (iketcp_cur_get_bytes(lc, line, CFG_QUOTE_MAX + 1) != IKETCP_OK)
			return perr(p, "internal error reading the line");
		return perr(p, "line longer than %d bytes: %s", CFG_LINE_MAX,
			    quote(q, sizeof(q), line, CFG_QUOTE_MAX + 1));
	}
	if (iketcp_cur_get_bytes(lc, line, n) != IKETCP_OK)
		return perr(p, "internal error reading the line");
	if (n > 0 && line[n - 1] == '\r') /* CRLF: the '\r' does not count */
		n--;
	if (n > CFG_LINE_MAX)
		return perr(p, "line longer than %d bytes: %s", CFG_LINE_MAX,
			    quote(q, sizeof(q), line, CFG_QUOTE_MAX + 1));
	line[n] = '\0';
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)line[i];
		if (ch == 0)
			return perr(p, "NUL byte in line: %s", quote(q, sizeof(q), line, n));
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return perr(p, "control character 0x%02x in line: %s", ch,
				    quote(q, sizeof(q), line, n));
	}

	/* A '#' at the start or after a blank starts a comment. */
	for (e = 0; e < n; e++)
		if (line[e] == '#' && (e == 0 || is_space(line[e - 1])))
			break;
	b = 0;
	trim(line, &b, &e);
	if (b == e)
		return 0;
	line[e] = '\0';
	if (line[b] == '[')
		return parse_header(p, line + b, e - b);

	for (eq = b; eq < e && line[eq] != '='; eq++)
		;
	if (eq == e)
		return perr(p, "expected \"key = value\": %s",
			    quote(q, sizeof(q), line + b, e - b));
	{
		size_t kb = b, ke = eq, vb = eq + 1, ve = e;
		trim(line, &kb, &ke);
		trim(line, &vb, &ve);
		if (kb == ke)
			return perr(p, "missing key before '=': %s",
				    quote(q, sizeof(q), line + b, e - b));
		line[ke] = '\0';
		line[ve] = '\0';
		return dispatch(p, line + kb, line + vb);
	}
}

/* ---- checks ------------------------------------------------------------------------------ */

struct chk {
	const char *src;          /* NULL: plain messages (iketcpd_config_check()) */
	int args;                 /* src is the command line: no line numbers */
	const unsigned *srv_line; /* header line per server (0: unknown), or NULL */
	const unsigned *cli_line;
	char *err;
	size_t errlen;
};

static int cerr(const struct chk *c, const struct iketcpd_cfg *cfg, unsigned kind, int idx,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Sets "[SRC[:LINE]: ][server "NAME": ]message". kind 0: not about a section. */
static int
cerr(const struct chk *c, const struct iketcpd_cfg *cfg, unsigned kind, int idx, const char *fmt,
     ...)
{
	char msg[512], where[300] = "", sect[80] = "";
	unsigned line = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (kind == SECT_SERVER) {
		line = c->srv_line ? c->srv_line[idx] : 0;
		snprintf(sect, sizeof(sect), "server \"%.*s\": ", IKETCPD_NAME_MAX - 1,
			 cfg->servers[idx].name);
	} else if (kind == SECT_CLIENT) {
		line = c->cli_line ? c->cli_line[idx] : 0;
		snprintf(sect, sizeof(sect), "client \"%.*s\": ", IKETCPD_NAME_MAX - 1,
			 cfg->clients[idx].name);
	}
	if (c->src && line && !c->args)
		snprintf(where, sizeof(where), "%s:%u: ", c->src, line);
	else if (c->src)
		snprintf(where, sizeof(where), "%s: ", c->src);
	seterr(c->err, c->errlen, "%s%s%s", where, sect, msg);
	return -1;
}

static int
chk_count(const struct chk *c, const struct iketcpd_cfg *cfg, unsigned kind, int idx,
	  const char *key, uint32_t v, uint32_t min, uint32_t max)
{
	if (v < min || v > max)
		return cerr(c, cfg, kind, idx, "%s %u is out of range (%u..%u)", key, v, min, max);
	return 0;
}

static int
chk_duration(const struct chk *c, const struct iketcpd_cfg *cfg, unsigned kind, int idx,
	     const char *key, uint32_t v)
{
	if (v < DUR_MIN || v > DUR_MAX)
		return cerr(c, cfg, kind, idx, "%s %ums is out of range (1ms..24h)", key, v);
	return 0;
}

/* A string field is NUL-terminated inside its array. */
static int
str_ok(const char *s, size_t size)
{
	return strnlen(s, size) < size;
}

/* The TLS settings both kinds share. Returns 0 or -1. */
static int
chk_tls_opts(const struct chk *c, const struct iketcpd_cfg *cfg, unsigned kind, int idx,
	     const struct iketcpd_tls_opts *t)
{
	if (t->min_version != IKETCPD_TLS_V12 && t->min_version != IKETCPD_TLS_V13)
		return cerr(c, cfg, kind, idx, "tls-min-version 0x%04x is not 1.2 or 1.3",
			    (unsigned)t->min_version);
	if (!str_ok(t->ciphers, sizeof(t->ciphers)) ||
	    !str_ok(t->ciphersuites, sizeof(t->ciphersuites)) ||
	    !str_ok(t->groups, sizeof(t->groups)))
		return cerr(c, cfg, kind, idx, "a TLS list is not terminated");
	if (t->null_cipher != 0 && t->null_cipher != 1)
		return cerr(c, cfg, kind, idx, "tls-null-cipher %d is not 0 or 1", t->null_cipher);
	if (t->null_cipher && t->min_version == IKETCPD_TLS_V13)
		return cerr(c, cfg, kind, idx,
			    "tls-null-cipher needs tls-min-version 1.2 (TLS 1.3 has no NULL "
			    "cipher)");
	return 0;
}

/* Names a TLS key of t that differs from its default, or NULL. */
static const char *
tls_opts_set(const struct iketcpd_tls_opts *t)
{
	if (t->min_version != IKETCPD_TLS_V12)
		return "tls-min-version";
	if (t->ciphers[0])
		return "tls-ciphers";
	if (t->ciphersuites[0])
		return "tls-ciphersuites";
	if (t->groups[0])
		return "tls-groups";
	if (t->null_cipher)
		return "tls-null-cipher";
	return NULL;
}

/* The i-th of a server's listen + listen-tls addresses (k < nlisten + nlisten_tls). */
static const struct iketcpd_addr *
srv_addr(const struct iketcpd_server_cfg *s, int k, const char **key)
{
	if (k < s->nlisten) {
		*key = "listen";
		return &s->listen[k];
	}
	*key = "listen-tls";
	return &s->listen_tls[k - s->nlisten];
}

static int
chk_server_tls(const struct chk *c, const struct iketcpd_cfg *cfg, int i)
{
	const struct iketcpd_server_cfg *s = &cfg->servers[i];
	const unsigned K = SECT_SERVER;
	int cert, key;
	const char *k;

	if (!str_ok(s->tls_cert, sizeof(s->tls_cert)) || !str_ok(s->tls_key, sizeof(s->tls_key)))
		return cerr(c, cfg, K, i, "tls-cert or tls-key is not terminated");
	cert = s->tls_cert[0] != '\0';
	key = s->tls_key[0] != '\0';
	if (cert != key)
		return cerr(c, cfg, K, i, "%s is set without %s: they go together",
			    cert ? "tls-cert" : "tls-key", cert ? "tls-key" : "tls-cert");
	if (chk_tls_opts(c, cfg, K, i, &s->tls) < 0 ||
	    chk_duration(c, cfg, K, i, "tls-handshake-timeout", s->tls_handshake_timeout_ms) < 0)
		return -1;
	if (s->sniff_tls != IKETCPD_SNIFF_AUTO && s->sniff_tls != 0 && s->sniff_tls != 1)
		return cerr(c, cfg, K, i, "sniff-tls %d is not yes, no or auto", s->sniff_tls);
	if (cert)
		return 0;
	/* Without a certificate nothing TLS can run: refuse settings that
	 * would be silently ignored. */
	if (s->nlisten_tls > 0)
		return cerr(c, cfg, K, i, "listen-tls needs tls-cert and tls-key");
	if (s->sniff_tls == 1)
		return cerr(c, cfg, K, i, "sniff-tls = yes needs tls-cert and tls-key");
	k = tls_opts_set(&s->tls);
	if (k == NULL && s->tls_handshake_timeout_ms != 5000)
		k = "tls-handshake-timeout";
	if (k != NULL)
		return cerr(c, cfg, K, i,
			    "%s is set but TLS is off (it needs tls-cert and tls-key)", k);
	return 0;
}

static int
chk_server(const struct chk *c, const struct iketcpd_cfg *cfg, int i)
{
	const struct iketcpd_server_cfg *s = &cfg->servers[i];
	const unsigned K = SECT_SERVER;
	int j;

	if (!valid_name(s->name))
		return cerr(c, cfg, K, i, "bad section name");
	if (s->nlisten < 0 || s->nlisten > IKETCPD_MAX_LISTEN || s->nlisten_tls < 0 ||
	    s->nlisten_tls > IKETCPD_MAX_LISTEN || s->nlisten + s->nlisten_tls < 1)
		return cerr(c, cfg, K, i,
			    "%d listen addresses and %d listen-tls addresses (need at least one, "
			    "at most %d of each)",
			    s->nlisten, s->nlisten_tls, IKETCPD_MAX_LISTEN);
	for (j = 0; j < s->nlisten; j++)
		if (!addr_valid(&s->listen[j]))
			return cerr(c, cfg, K, i, "listen address %d is not set", j + 1);
	for (j = 0; j < s->nlisten_tls; j++)
		if (!addr_valid(&s->listen_tls[j]))
			return cerr(c, cfg, K, i, "listen-tls address %d is not set", j + 1);
	if (chk_server_tls(c, cfg, i) < 0)
		return -1;
	if (!addr_valid(&s->backend))
		return cerr(c, cfg, K, i, "no backend address");
	if (chk_duration(c, cfg, K, i, "prefix-timeout", s->prefix_timeout_ms) < 0 ||
	    chk_count(c, cfg, K, i, "max-conns", s->max_conns, COUNT_MIN, COUNT_MAX) < 0 ||
	    chk_count(c, cfg, K, i, "max-conns-per-source", s->max_conns_per_source, COUNT_MIN,
		      COUNT_MAX) < 0 ||
	    chk_count(c, cfg, K, i, "max-pending", s->max_pending, COUNT_MIN, COUNT_MAX) < 0 ||
	    chk_count(c, cfg, K, i, "max-bad-frames", s->max_bad_frames, COUNT_MIN, COUNT_MAX) <
		    0 ||
	    chk_duration(c, cfg, K, i, "session-timeout", s->session_timeout_ms) < 0 ||
	    chk_duration(c, cfg, K, i, "replaced-idle-timeout", s->replaced_idle_ms) < 0 ||
	    chk_count(c, cfg, K, i, "max-sessions", s->max_sessions, COUNT_MIN, COUNT_MAX) < 0 ||
	    chk_count(c, cfg, K, i, "send-budget", s->send_budget, BUDGET_MIN, BUDGET_MAX) < 0 ||
	    chk_count(c, cfg, K, i, "ike-reserve", s->ike_reserve, RESERVE_MIN, RESERVE_MAX) < 0 ||
	    chk_count(c, cfg, K, i, "max-frame", s->max_frame, FRAME_MIN, FRAME_MAX) < 0 ||
	    chk_duration(c, cfg, K, i, "tcp-user-timeout", s->tcp_user_timeout_ms) < 0 ||
	    chk_count(c, cfg, K, i, "source-prefix4", s->source_prefix4, 1, 32) < 0 ||
	    chk_count(c, cfg, K, i, "source-prefix6", s->source_prefix6, 1, 128) < 0 ||
	    chk_count(c, cfg, K, i, "max-pending-per-source", s->max_pending_per_source, COUNT_MIN,
		      COUNT_MAX) < 0 ||
	    chk_count(c, cfg, K, i, "max-sessions-per-source", s->max_sessions_per_source,
		      COUNT_MIN, COUNT_MAX) < 0 ||
	    chk_count(c, cfg, K, i, "max-half-open", s->max_half_open, COUNT_MIN, COUNT_MAX) < 0 ||
	    chk_count(c, cfg, K, i, "max-half-open-per-source", s->max_half_open_per_source,
		      COUNT_MIN, COUNT_MAX) < 0 ||
	    chk_duration(c, cfg, K, i, "half-open-timeout", s->half_open_timeout_ms) < 0 ||
	    chk_duration(c, cfg, K, i, "frame-timeout", s->frame_timeout_ms) < 0 ||
	    (s->idle_timeout_ms &&
	     chk_duration(c, cfg, K, i, "idle-timeout", s->idle_timeout_ms) < 0))
		return -1;
	if (s->backend_source_mode < IKETCPD_BSRC_AUTO ||
	    s->backend_source_mode > IKETCPD_BSRC_PREFIX ||
	    (s->backend_source_mode == IKETCPD_BSRC_PREFIX &&
	     s->backend_source.family != s->backend.ss.ss_family))
		return cerr(c, cfg, K, i,
			    "backend-source must be a prefix of the backend's address family");
	if (s->tcp_keepalive != 0 && s->tcp_keepalive != 1)
		return cerr(c, cfg, K, i, "tcp-keepalive %d is not 0 or 1", s->tcp_keepalive);
	if (s->proxy_protocol != 0 && s->proxy_protocol != 1)
		return cerr(c, cfg, K, i, "proxy-protocol %d is not 0 or 1", s->proxy_protocol);
	if (s->nproxy_from < 0 || s->nproxy_from > IKETCPD_MAX_PROXY_FROM)
		return cerr(c, cfg, K, i, "%d proxy-protocol-from entries (at most %d)",
			    s->nproxy_from, IKETCPD_MAX_PROXY_FROM);
	/* Anyone could claim any client address: only listed balancers may. */
	if (s->proxy_protocol && s->nproxy_from == 0)
		return cerr(c, cfg, K, i,
			    "proxy-protocol = yes needs proxy-protocol-from (the load balancers' "
			    "addresses)");
	if (!s->proxy_protocol && s->nproxy_from > 0)
		return cerr(c, cfg, K, i, "proxy-protocol-from is set but proxy-protocol = no");
	for (j = 0; j < s->nproxy_from; j++)
		if (s->proxy_from[j].family != AF_INET && s->proxy_from[j].family != AF_INET6)
			return cerr(c, cfg, K, i, "proxy-protocol-from %d is not set", j + 1);
	if (s->max_pending > s->max_conns)
		return cerr(c, cfg, K, i, "max-pending (%u) is larger than max-conns (%u)",
			    s->max_pending, s->max_conns);
	if (s->max_conns_per_source > s->max_conns)
		return cerr(c, cfg, K, i, "max-conns-per-source (%u) is larger than max-conns (%u)",
			    s->max_conns_per_source, s->max_conns);
	return 0;
}

static int
chk_client_tls(const struct chk *c, const struct iketcpd_cfg *cfg, int i)
{
	const struct iketcpd_client_cfg *cl = &cfg->clients[i];
	const unsigned K = SECT_CLIENT;
	const char *k = NULL;

	if (cl->use_tls != 0 && cl->use_tls != 1)
		return cerr(c, cfg, K, i, "tls %d is not 0 or 1", cl->use_tls);
	if (cl->tls_verify != 0 && cl->tls_verify != 1)
		return cerr(c, cfg, K, i, "tls-verify %d is not 0 or 1", cl->tls_verify);
	if (!str_ok(cl->tls_server_name, sizeof(cl->tls_server_name)) ||
	    !str_ok(cl->tls_ca_file, sizeof(cl->tls_ca_file)) ||
	    !str_ok(cl->tls_pin, sizeof(cl->tls_pin)) ||
	    !str_ok(cl->proxy_host, sizeof(cl->proxy_host)) ||
	    !str_ok(cl->proxy_auth, sizeof(cl->proxy_auth)))
		return cerr(c, cfg, K, i, "a TLS or proxy string is not terminated");
	if (chk_tls_opts(c, cfg, K, i, &cl->tls) < 0)
		return -1;
	if (cl->proxy_host[0] != '\0' && cl->proxy_port == 0)
		return cerr(c, cfg, K, i, "proxy port 0");
	if (cl->proxy_auth[0] != '\0' && cl->proxy_host[0] == '\0')
		return cerr(c, cfg, K, i, "proxy-auth is set without proxy");
	if (cl->use_tls)
		return 0;
	/* TLS settings of a section that does not use TLS would be ignored. */
	if (cl->tls_server_name[0])
		k = "tls-server-name";
	else if (cl->tls_ca_file[0])
		k = "tls-ca-file";
	else if (!cl->tls_verify)
		k = "tls-verify";
	else if (cl->tls_pin[0])
		k = "tls-pin-sha256";
	else
		k = tls_opts_set(&cl->tls);
	if (k != NULL)
		return cerr(c, cfg, K, i, "%s is set but tls = no (set tls = yes)", k);
	return 0;
}

static int
chk_client(const struct chk *c, const struct iketcpd_cfg *cfg, int i)
{
	const struct iketcpd_client_cfg *cl = &cfg->clients[i];
	const unsigned K = SECT_CLIENT;
	size_t hl = strnlen(cl->peer_host, IKETCPD_HOST_MAX);
	char a[24], b[24];

	if (!valid_name(cl->name))
		return cerr(c, cfg, K, i, "bad section name");
	if (!addr_valid(&cl->udp))
		return cerr(c, cfg, K, i, "no udp address (udp = ADDR:PORT)");
	if (!local_peer_valid(&cl->local_peer))
		return cerr(c, cfg, K, i, "local-peer is not auto or an address");
	if (hl == 0)
		return cerr(c, cfg, K, i, "no peer (peer = HOST[:PORT])");
	if (hl >= IKETCPD_HOST_MAX ||
	    !valid_peer_host(cl->peer_host, memchr(cl->peer_host, ':', hl) != NULL))
		return cerr(c, cfg, K, i, "bad peer host");
	if (cl->peer_port == 0)
		return cerr(c, cfg, K, i, "peer port 0");
	if (cl->tcp_remoteport > 65535)
		return cerr(c, cfg, K, i, "tcp-remoteport %u is out of range (1..65535)",
			    cl->tcp_remoteport);
	if (cl->enable_tcp != IKETCPD_TCP_NO && cl->enable_tcp != IKETCPD_TCP_YES &&
	    cl->enable_tcp != IKETCPD_TCP_FALLBACK)
		return cerr(c, cfg, K, i, "bad enable-tcp value %d", (int)cl->enable_tcp);
	if (chk_duration(c, cfg, K, i, "fallback-wait", cl->fallback_wait_ms) < 0 ||
	    chk_duration(c, cfg, K, i, "fallback-retry", cl->fallback_retry_ms) < 0 ||
	    chk_count(c, cfg, K, i, "max-bad-frames", cl->max_bad_frames, COUNT_MIN, COUNT_MAX) <
		    0 ||
	    chk_duration(c, cfg, K, i, "connect-timeout", cl->connect_timeout_ms) < 0 ||
	    chk_duration(c, cfg, K, i, "reconnect-min", cl->reconnect_min_ms) < 0 ||
	    chk_duration(c, cfg, K, i, "reconnect-max", cl->reconnect_max_ms) < 0 ||
	    chk_duration(c, cfg, K, i, "resolve-interval", cl->resolve_interval_ms) < 0 ||
	    chk_duration(c, cfg, K, i, "flow-timeout", cl->flow_timeout_ms) < 0 ||
	    chk_count(c, cfg, K, i, "max-flows", cl->max_flows, COUNT_MIN, COUNT_MAX) < 0 ||
	    chk_count(c, cfg, K, i, "send-budget", cl->send_budget, BUDGET_MIN, BUDGET_MAX) < 0 ||
	    chk_count(c, cfg, K, i, "ike-reserve", cl->ike_reserve, RESERVE_MIN, RESERVE_MAX) < 0 ||
	    chk_count(c, cfg, K, i, "max-frame", cl->max_frame, FRAME_MIN, FRAME_MAX) < 0 ||
	    chk_duration(c, cfg, K, i, "tcp-user-timeout", cl->tcp_user_timeout_ms) < 0)
		return -1;
	if (cl->tcp_keepalive != 0 && cl->tcp_keepalive != 1)
		return cerr(c, cfg, K, i, "tcp-keepalive %d is not 0 or 1", cl->tcp_keepalive);
	if (cl->reconnect_min_ms > cl->reconnect_max_ms)
		return cerr(c, cfg, K, i, "reconnect-min (%s) is larger than reconnect-max (%s)",
			    fmt_duration(a, sizeof(a), cl->reconnect_min_ms),
			    fmt_duration(b, sizeof(b), cl->reconnect_max_ms));
	return chk_client_tls(c, cfg, i);
}

static int
check_cfg(const struct iketcpd_cfg *cfg, const struct chk *c)
{
	char a[64];
	int i, j, k, l;

	if (cfg->nservers < 0 || cfg->nservers > IKETCPD_MAX_SERVERS || cfg->nclients < 0 ||
	    cfg->nclients > IKETCPD_MAX_CLIENTS)
		return cerr(c, cfg, 0, 0, "bad number of sections (%d servers, %d clients)",
			    cfg->nservers, cfg->nclients);
	if (cfg->nservers + cfg->nclients == 0)
		return cerr(c, cfg, 0, 0, "no [server] or [client NAME] section: nothing to do");
	if (strnlen(cfg->stats_path, sizeof(cfg->stats_path)) >= sizeof(cfg->stats_path) ||
	    (cfg->stats_path[0] != '\0' && cfg->stats_path[0] != '/'))
		return cerr(c, cfg, 0, 0, "stats-socket is not an absolute path");
	if ((cfg->user[0] && account_problem(cfg->user)) ||
	    (cfg->group[0] && account_problem(cfg->group)))
		return cerr(c, cfg, 0, 0, "bad user or group");
	/* root's uid with another gid would keep every privilege: refuse */
	if (cfg->group[0] && !cfg->user[0])
		return cerr(c, cfg, 0, 0, "group %s without user: set user too", cfg->group);
	for (i = 0; i < cfg->nservers; i++)
		if (chk_server(c, cfg, i) < 0)
			return -1;
	for (i = 0; i < cfg->nclients; i++)
		if (chk_client(c, cfg, i) < 0)
			return -1;

	/* Names are unique over both kinds: they identify a section in logs. */
	for (i = 0; i < cfg->nservers; i++) {
		for (j = 0; j < i; j++)
			if (strcmp(cfg->servers[i].name, cfg->servers[j].name) == 0)
				return cerr(c, cfg, SECT_SERVER, i, "section name used twice");
	}
	for (i = 0; i < cfg->nclients; i++) {
		for (j = 0; j < i; j++)
			if (strcmp(cfg->clients[i].name, cfg->clients[j].name) == 0)
				return cerr(c, cfg, SECT_CLIENT, i, "section name used twice");
		for (j = 0; j < cfg->nservers; j++)
			if (strcmp(cfg->clients[i].name, cfg->servers[j].name) == 0)
				return cerr(c, cfg, SECT_CLIENT, i,
					    "section name already used by a server");
	}

	/* Each (server i, address k) against every earlier (server j, address l),
	 * over listen and listen-tls together: one port is one or the other. */
	for (i = 0; i < cfg->nservers; i++) {
		const struct iketcpd_server_cfg *s = &cfg->servers[i];
		for (k = 0; k < s->nlisten + s->nlisten_tls; k++) {
			const char *kk, *lk;
			const struct iketcpd_addr *ak = srv_addr(s, k, &kk);
			for (j = 0; j <= i; j++) {
				const struct iketcpd_server_cfg *t = &cfg->servers[j];
				int lmax = j == i ? k : t->nlisten + t->nlisten_tls;
				for (l = 0; l < lmax; l++) {
					if (!iketcpd_addr_equal(ak, srv_addr(t, l, &lk)))
						continue;
					iketcpd_addr_str(ak, a, sizeof(a));
					if (j == i && strcmp(kk, lk) == 0)
						return cerr(c, cfg, SECT_SERVER, i,
							    "%s %s given twice", kk, a);
					if (j == i)
						return cerr(c, cfg, SECT_SERVER, i,
							    "%s %s is also a %s address", kk, a,
							    lk);
					return cerr(c, cfg, SECT_SERVER, i,
						    "%s %s is also used by server \"%s\"", kk, a,
						    t->name);
				}
			}
		}
	}
	for (i = 0; i < cfg->nclients; i++) {
		for (j = 0; j < i; j++) {
			if (!iketcpd_addr_equal(&cfg->clients[i].udp, &cfg->clients[j].udp))
				continue;
			return cerr(c, cfg, SECT_CLIENT, i, "udp %s is also used by client \"%s\"",
				    iketcpd_addr_str(&cfg->clients[i].udp, a, sizeof(a)),
				    cfg->clients[j].name);
		}
	}
	return 0;
}

int
iketcpd_config_check(const struct iketcpd_cfg *cfg, char *err, size_t errlen)
{
	struct chk c;

	memset(&c, 0, sizeof(c));
	c.err = err;
	c.errlen = errlen;
	if (cfg == NULL) {
		seterr(err, errlen, "no configuration");
		return -1;
	}
	return check_cfg(cfg, &c);
}

/* Runs the checks with the parser's locations in messages. */
static int
parser_finish(struct parser *p)
{
	struct chk c;

	memset(&c, 0, sizeof(c));
	c.src = p->src;
	c.args = p->args;
	c.srv_line = p->srv_line;
	c.cli_line = p->cli_line;
	c.err = p->err;
	c.errlen = p->errlen;
	return check_cfg(p->cfg, &c);
}

/* ---- entry points -------------------------------------------------------------------------- */

int
iketcpd_config_parse_buf(struct iketcpd_cfg *cfg, const char *src, const char *buf, size_t len,
			 char *err, size_t errlen)
{
	struct iketcpd_cfg *work;
	struct iketcp_cur in, lc;
	struct parser p;
	int rc = -1;

	if (src == NULL)
		src = "(config)";
	if (cfg == NULL || (buf == NULL && len > 0)) {
		seterr(err, errlen, "%s: bad arguments", src);
		return -1;
	}
	if ((work = malloc(sizeof(*work))) == NULL) {
		seterr(err, errlen, "%s: out of memory", src);
		return -1;
	}
	*work = *cfg;
	parser_begin(&p, work, src, 0, err, errlen);
	iketcp_cur_init(&in, buf, len);
	while (iketcp_cur_left(&in) > 0) {
		size_t n = cur_span_to(&in, '\n');
		int nl = n < iketcp_cur_left(&in);

		if (iketcp_cur_sub(&in, n, &lc) != IKETCP_OK)
			goto out;
		if (nl && iketcp_cur_skip(&in, 1) != IKETCP_OK)
			goto out;
		if (parser_line(&p, &lc) < 0)
			goto out;
	}
	if (parser_finish(&p) < 0)
		goto out;
	*cfg = *work;
	rc = 0;
out:
	free(work);
	return rc;
}

int
iketcpd_config_parse_file(struct iketcpd_cfg *cfg, const char *path, char *err, size_t errlen)
{
	size_t len = 0, cap = 0;
	char *buf = NULL, *nbuf;
	struct stat st;
	int fd, rc = -1;
	ssize_t r;

	if (path == NULL) {
		seterr(err, errlen, "no configuration file");
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (S_ISREG(st.st_mode) && st.st_size > CFG_FILE_MAX) {
		seterr(err, errlen, "%s: file too large (%lld bytes, at most %d)", path,
		       (long long)st.st_size, CFG_FILE_MAX);
		goto out;
	}
	/* Read to EOF whatever fstat said (pipes, files that grow), one byte
	 * past the limit at most to notice a file that is too large. */
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? 2 * cap : 16384;
			if (ncap > (size_t)CFG_FILE_MAX + 1)
				ncap = (size_t)CFG_FILE_MAX + 1;
			if (ncap == cap) {
				seterr(err, errlen, "%s: file too large (more than %d bytes)", path,
				       CFG_FILE_MAX);
				goto out;
			}
			if ((nbuf = realloc(buf, ncap)) == NULL) {
				seterr(err, errlen, "%s: out of memory", path);
				goto out;
			}
			buf = nbuf;
			cap = ncap;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			seterr(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > CFG_FILE_MAX) {
		seterr(err, errlen, "%s: file too large (more than %d bytes)", path, CFG_FILE_MAX);
		goto out;
	}
	rc = iketcpd_config_parse_buf(cfg, path, buf, len, err, errlen);
out:
	free(buf);
	close(fd);
	return rc;
}

int
iketcpd_config_parse_args(struct iketcpd_cfg *cfg, const char *mode, int argc, char **argv,
			  char *err, size_t errlen)
{
	struct iketcpd_cfg *work;
	char key[CFG_KEY_MAX + 1], q[QUOTE_BUF];
	struct parser p;
	unsigned kind;
	int i, rc = -1;

	if (cfg == NULL || argc < 0 || (argc > 0 && argv == NULL)) {
		seterr(err, errlen, "command line: bad arguments");
		return -1;
	}
	if (mode != NULL && strcmp(mode, "server") == 0) {
		kind = SECT_SERVER;
	} else if (mode != NULL && strcmp(mode, "client") == 0) {
		kind = SECT_CLIENT;
	} else {
		seterr(err, errlen, "command line: unknown mode %s (expected server or client)",
		       quote(q, sizeof(q), mode ? mode : "", mode ? strnlen(mode, 4096) : 0));
		return -1;
	}
	if ((work = malloc(sizeof(*work))) == NULL) {
		seterr(err, errlen, "command line: out of memory");
		return -1;
	}
	*work = *cfg;
	parser_begin(&p, work, "command line", 1, err, errlen);
	if (new_section(&p, kind, NULL, mode) < 0)
		goto out;
	for (i = 0; i < argc; i++) {
		const char *arg = argv[i], *val, *eq;
		size_t kl;

		if (arg == NULL)
			break;
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			perr(&p, "unexpected argument %s (expected --KEY VALUE or --KEY=VALUE)",
			     quote(q, sizeof(q), arg, strnlen(arg, CFG_LINE_MAX + 1)));
			goto out;
		}
		arg += 2;
		eq = strchr(arg, '=');
		kl = eq ? (size_t)(eq - arg) : strlen(arg);
		if (kl > CFG_KEY_MAX) {
			perr(&p, "unknown option %s",
			     quote(q, sizeof(q), argv[i], strnlen(argv[i], CFG_LINE_MAX + 1)));
			goto out;
		}
		memcpy(key, arg, kl);
		key[kl] = '\0';
		if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc && argv[i + 1] != NULL) {
			val = argv[++i];
		} else {
			perr(&p, "%s needs a value",
			     quote(q, sizeof(q), argv[i], strnlen(argv[i], CFG_LINE_MAX + 1)));
			goto out;
		}
		if (dispatch(&p, key, val) < 0)
			goto out;
	}
	if (parser_finish(&p) < 0)
		goto out;
	*cfg = *work;
	rc = 0;
out:
	free(work);
	return rc;
}

/* ---- dump ------------------------------------------------------------------------------------ */

struct out {
	int fd;
	int failed;
	size_t n;
	char buf[4096];
};

static void
out_flush(struct out *o)
{
	size_t off = 0;
	ssize_t w;

	while (!o->failed && off < o->n) {
		w = write(o->fd, o->buf + off, o->n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			o->failed = 1; /* dump is best effort: nothing to report to */
			break;
		}
		off += (size_t)w;
	}
	o->n = 0;
}

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out_printf(struct out *o, const char *fmt, ...)
{
	char line[CFG_LINE_MAX + 64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	if (o->n + (size_t)n > sizeof(o->buf))
		out_flush(o);
	memcpy(o->buf + o->n, line, (size_t)n);
	o->n += (size_t)n;
}

static void
out_addr(struct out *o, const char *key, const struct iketcpd_addr *a)
{
	char buf[64];

	if (addr_valid(a))
		out_printf(o, "%s = %s\n", key, iketcpd_addr_str(a, buf, sizeof(buf)));
}

static void
out_dur(struct out *o, const char *key, uint32_t ms)
{
	char buf[24];

	out_printf(o, "%s = %s\n", key, fmt_duration(buf, sizeof(buf), ms));
}

static void
out_size(struct out *o, const char *key, uint32_t v)
{
	char buf[24];

	out_printf(o, "%s = %s\n", key, fmt_size(buf, sizeof(buf), v));
}

/* A string setting, only when set. */
static void
out_str(struct out *o, const char *key, const char *v, size_t size)
{
	size_t n = strnlen(v, size - 1);

	if (n > 0)
		out_printf(o, "%s = %.*s\n", key, (int)n, v);
}

/* "auto", or the address without ":0" when any port goes. */
static void
out_local_peer(struct out *o, const struct iketcpd_addr *a)
{
	char buf[64];
	size_t n;

	if (!local_peer_valid(a))
		return;
	if (a->len == 0) {
		out_printf(o, "local-peer = auto\n");
		return;
	}
	iketcpd_addr_str(a, buf, sizeof(buf));
	n = strlen(buf);
	if (n > 2 && strcmp(buf + n - 2, ":0") == 0)
		buf[n - 2] = '\0';
	out_printf(o, "local-peer = %s\n", buf);
}

static void
out_tls_opts(struct out *o, const struct iketcpd_tls_opts *t)
{
	out_printf(o, "tls-min-version = %s\n", t->min_version == IKETCPD_TLS_V13 ? "1.3" : "1.2");
	out_str(o, "tls-ciphers", t->ciphers, sizeof(t->ciphers));
	out_str(o, "tls-ciphersuites", t->ciphersuites, sizeof(t->ciphersuites));
	out_str(o, "tls-groups", t->groups, sizeof(t->groups));
	out_printf(o, "tls-null-cipher = %s\n", t->null_cipher ? "yes" : "no");
}

void
iketcpd_config_dump(const struct iketcpd_cfg *cfg, int fd)
{
	static const char *const tcp_mode[] = {"no", "yes", "fallback"};
	struct out *o;
	int i, j;

	if (cfg == NULL || (o = malloc(sizeof(*o))) == NULL)
		return;
	o->fd = fd;
	o->failed = 0;
	o->n = 0;
	out_printf(o, "# iketcpd effective configuration\n");
	/* main() adds -v to verbose after the check: write the level in effect,
	 * 0..VERBOSE_MAX, so that a dump always parses back. */
	out_printf(o, "verbose = %d\n",
		   cfg->verbose < 0 ? 0
				    : (cfg->verbose > VERBOSE_MAX ? VERBOSE_MAX : cfg->verbose));
	if (cfg->stats_path[0] != '\0')
		out_printf(o, "stats-socket = %.*s\n", (int)sizeof(cfg->stats_path) - 1,
			   cfg->stats_path);
	if (cfg->user[0] != '\0')
		out_printf(o, "user = %.*s\n", IKETCPD_USER_MAX - 1, cfg->user);
	if (cfg->group[0] != '\0')
		out_printf(o, "group = %.*s\n", IKETCPD_USER_MAX - 1, cfg->group);
	if (cfg->max_memory) {
		/* in the largest unit that divides it: digits saturate at 10^12 */
		uint64_t m = cfg->max_memory;
		const char *u = m % (1024ull * MIB) == 0 ? "g" : m % MIB == 0 ? "m" : "";
		uint64_t d = u[0] == 'g' ? 1024ull * MIB : u[0] == 'm' ? MIB : 1;
		out_printf(o, "max-memory = %llu%s\n", (unsigned long long)(m / d), u);
	}
	for (i = 0; i < cfg->nservers && i < IKETCPD_MAX_SERVERS; i++) {
		const struct iketcpd_server_cfg *s = &cfg->servers[i];
		out_printf(o, "\n[server %.*s]\n", IKETCPD_NAME_MAX - 1, s->name);
		for (j = 0; j < s->nlisten && j < IKETCPD_MAX_LISTEN; j++)
			out_addr(o, "listen", &s->listen[j]);
		out_addr(o, "backend", &s->backend);
		out_dur(o, "prefix-timeout", s->prefix_timeout_ms);
		out_printf(o, "max-conns = %u\n", s->max_conns);
		out_printf(o, "max-conns-per-source = %u\n", s->max_conns_per_source);
		out_printf(o, "max-pending = %u\n", s->max_pending);
		out_printf(o, "max-bad-frames = %u\n", s->max_bad_frames);
		out_dur(o, "session-timeout", s->session_timeout_ms);
		out_dur(o, "replaced-idle-timeout", s->replaced_idle_ms);
		out_printf(o, "max-sessions = %u\n", s->max_sessions);
		out_size(o, "send-budget", s->send_budget);
		out_size(o, "ike-reserve", s->ike_reserve);
		out_size(o, "max-frame", s->max_frame);
		out_printf(o, "tcp-keepalive = %s\n", s->tcp_keepalive ? "yes" : "no");
		out_dur(o, "tcp-user-timeout", s->tcp_user_timeout_ms);
		out_printf(o, "source-prefix4 = %u\n", s->source_prefix4);
		out_printf(o, "source-prefix6 = %u\n", s->source_prefix6);
		out_printf(o, "max-pending-per-source = %u\n", s->max_pending_per_source);
		out_printf(o, "max-sessions-per-source = %u\n", s->max_sessions_per_source);
		out_printf(o, "max-half-open = %u\n", s->max_half_open);
		out_printf(o, "max-half-open-per-source = %u\n", s->max_half_open_per_source);
		out_dur(o, "half-open-timeout", s->half_open_timeout_ms);
		out_dur(o, "frame-timeout", s->frame_timeout_ms);
		if (s->idle_timeout_ms)
			out_dur(o, "idle-timeout", s->idle_timeout_ms);
		else
			out_printf(o, "idle-timeout = off\n");
		if (s->backend_source_mode == IKETCPD_BSRC_PREFIX) {
			char pb[INET6_ADDRSTRLEN + 8];
			out_printf(o, "backend-source = %s\n",
				   iketcpd_prefix_str(&s->backend_source, pb, sizeof(pb)));
		} else {
			out_printf(o, "backend-source = %s\n",
				   s->backend_source_mode == IKETCPD_BSRC_NONE ? "none" : "auto");
		}
		for (j = 0; j < s->nlisten_tls && j < IKETCPD_MAX_LISTEN; j++)
			out_addr(o, "listen-tls", &s->listen_tls[j]);
		out_str(o, "tls-cert", s->tls_cert, sizeof(s->tls_cert));
		out_str(o, "tls-key", s->tls_key, sizeof(s->tls_key));
		out_tls_opts(o, &s->tls);
		out_dur(o, "tls-handshake-timeout", s->tls_handshake_timeout_ms);
		out_printf(o, "sniff-tls = %s\n",
			   s->sniff_tls == IKETCPD_SNIFF_AUTO ? "auto"
			   : s->sniff_tls                     ? "yes"
							      : "no");
		out_printf(o, "proxy-protocol = %s\n", s->proxy_protocol ? "yes" : "no");
		for (j = 0; j < s->nproxy_from && j < IKETCPD_MAX_PROXY_FROM; j++) {
			char pb[INET6_ADDRSTRLEN + 8];
			out_printf(o, "proxy-protocol-from = %s\n",
				   iketcpd_prefix_str(&s->proxy_from[j], pb, sizeof(pb)));
		}
	}
	for (i = 0; i < cfg->nclients && i < IKETCPD_MAX_CLIENTS; i++) {
		const struct iketcpd_client_cfg *c = &cfg->clients[i];
		size_t hl = strnlen(c->peer_host, IKETCPD_HOST_MAX - 1);
		out_printf(o, "\n[client %.*s]\n", IKETCPD_NAME_MAX - 1, c->name);
		out_addr(o, "udp", &c->udp);
		if (hl > 0 && memchr(c->peer_host, ':', hl) != NULL)
			out_printf(o, "peer = [%.*s]:%u\n", (int)hl, c->peer_host, c->peer_port);
		else if (hl > 0)
			out_printf(o, "peer = %.*s:%u\n", (int)hl, c->peer_host, c->peer_port);
		if ((unsigned)c->enable_tcp <= IKETCPD_TCP_FALLBACK)
			out_printf(o, "enable-tcp = %s\n", tcp_mode[c->enable_tcp]);
		if (c->tcp_remoteport)
			out_printf(o, "tcp-remoteport = %u\n", c->tcp_remoteport);
		out_dur(o, "fallback-wait", c->fallback_wait_ms);
		out_dur(o, "fallback-retry", c->fallback_retry_ms);
		out_printf(o, "max-bad-frames = %u\n", c->max_bad_frames);
		out_dur(o, "connect-timeout", c->connect_timeout_ms);
		out_dur(o, "reconnect-min", c->reconnect_min_ms);
		out_dur(o, "reconnect-max", c->reconnect_max_ms);
		out_dur(o, "resolve-interval", c->resolve_interval_ms);
		out_dur(o, "flow-timeout", c->flow_timeout_ms);
		out_printf(o, "max-flows = %u\n", c->max_flows);
		out_local_peer(o, &c->local_peer);
		out_size(o, "send-budget", c->send_budget);
		out_size(o, "ike-reserve", c->ike_reserve);
		out_size(o, "max-frame", c->max_frame);
		out_printf(o, "tcp-keepalive = %s\n", c->tcp_keepalive ? "yes" : "no");
		out_dur(o, "tcp-user-timeout", c->tcp_user_timeout_ms);
		out_printf(o, "tls = %s\n", c->use_tls ? "yes" : "no");
		out_str(o, "tls-server-name", c->tls_server_name, sizeof(c->tls_server_name));
		out_str(o, "tls-ca-file", c->tls_ca_file, sizeof(c->tls_ca_file));
		out_printf(o, "tls-verify = %s\n", c->tls_verify ? "yes" : "no");
		out_str(o, "tls-pin-sha256", c->tls_pin, sizeof(c->tls_pin));
		out_tls_opts(o, &c->tls);
		hl = strnlen(c->proxy_host, IKETCPD_HOST_MAX - 1);
		if (hl > 0 && memchr(c->proxy_host, ':', hl) != NULL)
			out_printf(o, "proxy = http://[%.*s]:%u\n", (int)hl, c->proxy_host,
				   c->proxy_port);
		else if (hl > 0)
			out_printf(o, "proxy = http://%.*s:%u\n", (int)hl, c->proxy_host,
				   c->proxy_port);
		out_str(o, "proxy-auth", c->proxy_auth, sizeof(c->proxy_auth));
	}
	out_flush(o);
	free(o);
}
