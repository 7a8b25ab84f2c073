/*
 * PROXY protocol v1/v2 header parser. See include/iketcp/proxyproto.h.
 *
 * The function keeps no state between calls: the caller hands it everything
 * received so far and it starts over each time, so the answer depends only
 * on p[0..n). That makes the three-way answer easy to trust, but only if 0
 * is never given for bytes that no valid header can start with: the daemon
 * consumes those bytes as header. Every step therefore asks "can this still
 * be completed?", not merely "is this byte allowed here?": each v1 state
 * knows the fewest bytes that would complete the line (so a line that can
 * no longer end within 107 bytes fails on the byte that makes it so), and
 * the v2 walk checks the declared lengths as soon as each of their bytes is
 * in, before the bytes they cover arrive.
 */
#include "iketcp/proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "iketcp/cursor.h"

/* Writes the reason (when asked for) and returns the one error code. */
static long pp_fail(char *reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static long
pp_fail(char *reason, const char *fmt, ...)
{
	va_list ap;

	if (reason) {
		va_start(ap, fmt);
		vsnprintf(reason, IKETCP_PP_REASON_MAX, fmt, ap);
		va_end(ap);
	}
	return IKETCP_E_PPHDR;
}

static int
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

static int
is_hex(uint8_t c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* port in host order; a zeroed storage for AF_UNSPEC. */
static void
fill_sockaddr(struct sockaddr_storage *ss, int family, const uint8_t *addr, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
		memcpy(&sin.sin_addr, addr, sizeof(sin.sin_addr));
		memcpy(ss, &sin, sizeof(sin));
	} else if (family == AF_INET6) {
		struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
		memcpy(&sin6.sin6_addr, addr, sizeof(sin6.sin6_addr));
		memcpy(ss, &sin6, sizeof(sin6));
	}
}

/* ---- v1 address literals ---------------------------------------------------- */

/* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" */
#define V6_TEXT_MAX 45

/*
 * Where an address literal stands after its bytes so far. IPv6 follows
 * RFC 4291 §2.2 as inet_pton() reads it: 1-4 hex digits a group, at most
 * one "::" standing for at least one zero group, an optional dotted quad
 * in place of the last two groups; no zone ("%eth0"), no brackets. The
 * grammar is a subset of what inet_pton() accepts, which does the
 * conversion once the literal is complete.
 */
enum lit_state {
	LIT_START, /* nothing yet */
	LIT_LEAD,  /* a leading ':', which must become "::" */
	LIT_HEX,   /* in a group */
	LIT_COLON, /* after a ':' that ended a group */
	LIT_DCOLON,
	LIT_QUAD, /* in a dotted quad (all of an IPv4 literal) */
};

struct lit {
	enum lit_state st;
	int dcolon;      /* "::" seen */
	unsigned groups; /* groups ended by ':' */
	unsigned digits; /* in the current group or octet */
	unsigned val;    /* decimal value of the current octet */
	int octet_ok;    /* the current group could still be a first octet */
	unsigned octet;  /* index of the current octet */
	size_t len;
	char txt[V6_TEXT_MAX + 1];
};

static void
lit_init(struct lit *l, int family)
{
	memset(l, 0, sizeof(*l));
	l->st = family == AF_INET ? LIT_QUAD : LIT_START;
}

/* One more digit of a decimal number up to max, without leading zeros. */
static int
dec_byte(unsigned *val, unsigned *digits, uint8_t c, unsigned max)
{
	if (!is_digit(c) || (*digits == 1 && *val == 0))
		return 0;
	*val = *val * 10 + (unsigned)(c - '0');
	++*digits;
	return *val <= max;
}

static int
quad_byte(struct lit *l, uint8_t c)
{
	if (c != '.')
		return dec_byte(&l->val, &l->digits, c, 255);
	if (l->digits == 0 || l->octet == 3)
		return 0;
	l->octet++;
	l->digits = 0;
	l->val = 0;
	return 1;
}

/* Explicit groups the literal may hold: 8, or 7 when "::" stands for one. */
static unsigned
group_room(const struct lit *l)
{
	return l->dcolon ? 7 : 8;
}

static int
group_start(struct lit *l, uint8_t c)
{
	if (!is_hex(c) || l->groups + 1 > group_room(l))
		return 0;
	l->st = LIT_HEX;
	l->digits = 1;
	l->octet_ok = is_digit(c);
	l->val = l->octet_ok ? (unsigned)(c - '0') : 0;
	return 1;
}

static int
v6_byte(struct lit *l, uint8_t c)
{
	switch (l->st) {
	case LIT_START:
		if (c == ':') {
			l->st = LIT_LEAD;
			return 1;
		}
		return group_start(l, c);
	case LIT_LEAD:
	case LIT_COLON:
		if (c == ':') {
			if (l->dcolon)
				return 0;
			l->dcolon = 1;
			l->st = LIT_DCOLON;
			return 1;
		}
		return l->st == LIT_COLON && group_start(l, c);
	case LIT_DCOLON:
		return group_start(l, c);
	case LIT_HEX:
		if (c == ':') {
			/* Another group (or "::") must still fit after this one. */
			if (l->groups + 1 >= group_room(l))
				return 0;
			l->groups++;
			l->st = LIT_COLON;
			return 1;
		}
		if (c == '.') {
			/* A dotted quad takes two groups: exactly the 7th and 8th
			 * without "::", and leaves "::" one group with it. */
			if (!l->octet_ok || (l->dcolon ? l->groups > 5 : l->groups != 6))
				return 0;
			l->st = LIT_QUAD;
			l->octet = 1;
			l->digits = 0;
			l->val = 0;
			return 1;
		}
		if (!is_hex(c) || l->digits == 4)
			return 0;
		l->digits++;
		/* A decimal octet has no leading zero and at most 3 digits. */
		if (!is_digit(c) || l->val == 0 || l->digits > 3)
			l->octet_ok = 0;
		if (l->octet_ok)
			l->val = l->val * 10 + (unsigned)(c - '0');
		if (l->val > 255)
			l->octet_ok = 0;
		return 1;
	case LIT_QUAD:
		return quad_byte(l, c);
	}
	return 0;
}

static int
lit_byte(struct lit *l, int family, uint8_t c)
{
	if (l->len + 1 >= sizeof(l->txt))
		return 0;
	if (!(family == AF_INET ? quad_byte(l, c) : v6_byte(l, c)))
		return 0;
	l->txt[l->len++] = (char)c;
	return 1;
}

/* Fewest bytes that make the literal complete; 0 when it is complete. */
static size_t
lit_need(const struct lit *l)
{
	switch (l->st) {
	case LIT_START:
		return 2; /* "::" */
	case LIT_LEAD:
	case LIT_COLON:
		return 1;
	case LIT_DCOLON:
		return 0;
	case LIT_HEX:
		/* Without "::" eight groups, or "::" right after this one. */
		return l->dcolon || l->groups == 7 ? 0 : 2;
	case LIT_QUAD:
		return (l->digits ? 0 : 1) + 2 * (3 - l->octet); /* ".0" each */
	}
	return 0;
}

/* ---- v1 ---------------------------------------------------------------------- */

enum v1_field {
	V1_MAGIC,   /* "PROXY " */
	V1_PROTO,   /* "TCP4 ", "TCP6 " or "UNKNOWN" */
	V1_UNKNOWN, /* right after "UNKNOWN": SP or CR */
	V1_IGNORED, /* the rest of an UNKNOWN line */
	V1_SRC,
	V1_DST,
	V1_SPORT,
	V1_DPORT,
	V1_LF,
};

static const char v1_magic[] = "PROXY ";
static const char *const v1_protos[] = {"TCP4 ", "TCP6 ", "UNKNOWN"};
static const int v1_families[] = {AF_INET, AF_INET6, AF_UNSPEC};
#define V1_NPROTO (sizeof(v1_protos) / sizeof(v1_protos[0]))

struct v1 {
	enum v1_field f;
	size_t pos;     /* bytes matched in MAGIC / PROTO */
	unsigned cands; /* PROTO: bit i while v1_protos[i] still matches */
	int family;
	struct lit src, dst;
	unsigned digits; /* of the current port */
	unsigned port;
	uint16_t sport, dport;
};

/* The shortest address literal of the line's family. */
static size_t
v1_min_addr(const struct v1 *v)
{
	return v->family == AF_INET ? sizeof("0.0.0.0") - 1 : sizeof("::") - 1;
}

/*
 * Fewest bytes still needed to end the line. MAGIC and PROTO answer 0: at
 * most 13 bytes are in then and every completion is far below 107 bytes.
 */
static size_t
v1_need(const struct v1 *v)
{
	size_t port = v->digits ? 0 : 1;
	size_t ports = sizeof(" 0 0\r\n") - 1;

	switch (v->f) {
	case V1_MAGIC:
	case V1_PROTO:
		return 0;
	case V1_UNKNOWN:
	case V1_IGNORED:
		return 2;
	case V1_SRC:
		return lit_need(&v->src) + 1 + v1_min_addr(v) + ports;
	case V1_DST:
		return lit_need(&v->dst) + ports;
	case V1_SPORT:
		return port + sizeof(" 0\r\n") - 1;
	case V1_DPORT:
		return port + 2;
	case V1_LF:
		return 1;
	}
	return 0;
}

/* Returns 1 when the byte ended the line, 0 to go on, or an error. */
static long
v1_byte(struct v1 *v, uint8_t c, char *reason)
{
	/* Past the keywords (the enum is in line order), a bare LF is the
	 * likeliest mistake: name it. */
	if (c == '\n' && v->f > V1_PROTO && v->f != V1_LF)
		return pp_fail(reason, "v1 LF without CR");
	switch (v->f) {
	case V1_MAGIC:
		if (c != (uint8_t)v1_magic[v->pos])
			return pp_fail(reason, "not a PROXY header");
		if (++v->pos == sizeof(v1_magic) - 1) {
			v->f = V1_PROTO;
			v->pos = 0;
			v->cands = (1u << V1_NPROTO) - 1;
		}
		return 0;
	case V1_PROTO:
		for (size_t i = 0; i < V1_NPROTO; i++) {
			if (!(v->cands & 1u << i))
				continue;
			if (c != (uint8_t)v1_protos[i][v->pos]) {
				v->cands &= ~(1u << i);
			} else if (v1_protos[i][v->pos + 1] == '\0') {
				/* No keyword is a prefix of another: this one it is. */
				v->family = v1_families[i];
				v->f = v->family == AF_UNSPEC ? V1_UNKNOWN : V1_SRC;
				lit_init(&v->src, v->family);
				return 0;
			}
		}
		if (!v->cands)
			return pp_fail(reason, "bad v1 protocol");
		v->pos++;
		return 0;
	case V1_UNKNOWN:
		if (c != ' ' && c != '\r')
			return pp_fail(reason, "bad v1 protocol");
		v->f = c == '\r' ? V1_LF : V1_IGNORED;
		return 0;
	case V1_IGNORED:
		if (c == '\r')
			v->f = V1_LF;
		return 0;
	case V1_SRC:
	case V1_DST: {
		struct lit *l = v->f == V1_SRC ? &v->src : &v->dst;
		int ok = c == ' ' ? lit_need(l) == 0 : lit_byte(l, v->family, c);
		if (!ok)
			return pp_fail(reason, "bad v1 %s address",
				       v->f == V1_SRC ? "source" : "destination");
		if (c == ' ' && v->f == V1_SRC) {
			v->f = V1_DST;
			lit_init(&v->dst, v->family);
		} else if (c == ' ') {
			v->f = V1_SPORT;
		}
		return 0;
	}
	case V1_SPORT:
	case V1_DPORT: {
		uint8_t end = v->f == V1_SPORT ? ' ' : '\r';
		int ok = c == end ? v->digits > 0 : dec_byte(&v->port, &v->digits, c, 65535);
		if (!ok)
			return pp_fail(reason, "bad v1 %s port",
				       v->f == V1_SPORT ? "source" : "destination");
		if (c == end) {
			if (v->f == V1_SPORT) {
				v->sport = (uint16_t)v->port;
				v->f = V1_DPORT;
			} else {
				v->dport = (uint16_t)v->port;
				v->f = V1_LF;
			}
			v->digits = 0;
			v->port = 0;
		}
		return 0;
	}
	case V1_LF:
		if (c != '\n')
			return pp_fail(reason, "v1 CR without LF");
		return 1;
	}
	return pp_fail(reason, "bad v1 state");
}

static long
parse_v1(struct iketcp_cur *c, struct iketcp_pp_info *info, char *reason)
{
	struct v1 v;
	uint8_t b;
	long rc;

	memset(&v, 0, sizeof(v));
	v.f = V1_MAGIC;
	do {
		if (iketcp_cur_get_u8(c, &b) != IKETCP_OK)
			return 0;
		rc = v1_byte(&v, b, reason);
		if (rc < 0)
			return rc;
		if (rc == 0 && c->off + v1_need(&v) > IKETCP_PP_V1_MAX)
			return pp_fail(reason, "v1 line longer than %d bytes", IKETCP_PP_V1_MAX);
	} while (rc == 0);

	uint8_t src[sizeof(struct in6_addr)] = {0}, dst[sizeof(src)] = {0};
	if (v.family != AF_UNSPEC) {
		/* The grammar is stricter than inet_pton(); this cannot fail. */
		if (inet_pton(v.family, v.src.txt, src) != 1)
			return pp_fail(reason, "bad v1 source address");
		if (inet_pton(v.family, v.dst.txt, dst) != 1)
			return pp_fail(reason, "bad v1 destination address");
	}
	info->version = 1;
	info->command = IKETCP_PP_PROXY;
	info->family = v.family;
	fill_sockaddr(&info->src, v.family, src, v.sport);
	fill_sockaddr(&info->dst, v.family, dst, v.dport);
	return (long)c->off;
}

/* ---- v2 ---------------------------------------------------------------------- */

static const uint8_t v2_sig[IKETCP_PP_V2_SIG_LEN] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
						     0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

#define V2_TCP4 0x11
#define V2_TCP6 0x21
#define V2_TLV_HDR 3 /* type, 16-bit length */

/* Bytes of a region that TLVs can fill exactly: none, or one TLV or more. */
static int
tlv_room_ok(size_t left)
{
	return left == 0 || left >= V2_TLV_HDR;
}

/*
 * Walks the TLVs in b up to offset len (b may end sooner: bytes not
 * received yet). Each TLV checks tlv_room_ok() for what follows it as soon
 * as its length is known, so the check at the top only ever fails for the
 * first one (which the caller checks earlier still, from the length).
 * Returns 1 when they fill len exactly, 0 when they may once more bytes
 * arrive, or an error.
 */
static long
walk_tlvs(struct iketcp_cur *b, size_t len, char *reason)
{
	uint8_t type, hi, lo;

	while (b->off < len) {
		size_t left = len - b->off;
		if (!tlv_room_ok(left))
			return pp_fail(reason, "v2 TLV overruns header");
		if (iketcp_cur_get_u8(b, &type) != IKETCP_OK ||
		    iketcp_cur_get_u8(b, &hi) != IKETCP_OK)
			return 0;
		left -= V2_TLV_HDR;
		/* The high byte alone can already rule the TLV out. */
		if ((size_t)hi << 8 > left)
			return pp_fail(reason, "v2 TLV overruns header");
		if (iketcp_cur_get_u8(b, &lo) != IKETCP_OK)
			return 0;
		size_t vlen = (size_t)hi << 8 | lo;
		if (vlen > left || !tlv_room_ok(left - vlen))
			return pp_fail(reason, "v2 TLV overruns header");
		if (iketcp_cur_skip(b, vlen) != IKETCP_OK)
			return 0;
	}
	return 1;
}

static long
parse_v2(struct iketcp_cur *c, size_t max, struct iketcp_pp_info *info, char *reason)
{
	uint8_t b, vc, fam, hi, lo;

	for (size_t i = 0; i < IKETCP_PP_V2_SIG_LEN; i++) {
		if (iketcp_cur_get_u8(c, &b) != IKETCP_OK)
			return 0;
		if (b != v2_sig[i])
			return pp_fail(reason, "not a PROXY header");
	}
	if (iketcp_cur_get_u8(c, &vc) != IKETCP_OK)
		return 0;
	if (vc >> 4 != 2)
		return pp_fail(reason, "v2 version %u", (unsigned)(vc >> 4));
	if ((vc & 0x0f) > IKETCP_PP_PROXY)
		return pp_fail(reason, "v2 command %u", (unsigned)(vc & 0x0f));
	if (iketcp_cur_get_u8(c, &fam) != IKETCP_OK)
		return 0;
	/* undefined family (> 3) or transport (> 2): "must be rejected as
	 * invalid by receivers"; LOCAL discards the family unread */
	if ((vc & 0x0f) == IKETCP_PP_PROXY && ((fam >> 4) > 3 || (fam & 0x0f) > 2))
		return pp_fail(reason, "v2 family/transport 0x%02x undefined", (unsigned)fam);
	if (iketcp_cur_get_u8(c, &hi) != IKETCP_OK)
		return 0;
	if (IKETCP_PP_V2_HDR_LEN + ((size_t)hi << 8) > max)
		return pp_fail(reason, "header longer than %zu bytes", max);
	if (iketcp_cur_get_u8(c, &lo) != IKETCP_OK)
		return 0;
	size_t len = (size_t)hi << 8 | lo;
	if (IKETCP_PP_V2_HDR_LEN + len > max)
		return pp_fail(reason, "header longer than %zu bytes", max);

	/* LOCAL ignores the family; unknown families are skipped whole. */
	int family = AF_UNSPEC;
	size_t alen = 0, block = 0;
	if ((vc & 0x0f) == IKETCP_PP_PROXY && (fam == V2_TCP4 || fam == V2_TCP6)) {
		family = fam == V2_TCP4 ? AF_INET : AF_INET6;
		alen = family == AF_INET ? 4 : 16;
		block = 2 * alen + 4; /* two addresses, two ports: 12 or 36 */
		if (len < block)
			return pp_fail(reason, "v2 address block longer than the header");
		if (!tlv_room_ok(len - block))
			return pp_fail(reason, "v2 TLV overruns header");
	}

	struct iketcp_cur body;
	size_t have = iketcp_cur_left(c) < len ? iketcp_cur_left(c) : len;
	if (iketcp_cur_sub(c, have, &body) != IKETCP_OK)
		return pp_fail(reason, "v2 internal error");

	uint8_t src[sizeof(struct in6_addr)] = {0}, dst[sizeof(src)] = {0};
	uint16_t sport = 0, dport = 0;
	if (family != AF_UNSPEC) {
		if (iketcp_cur_get_bytes(&body, src, alen) != IKETCP_OK ||
		    iketcp_cur_get_bytes(&body, dst, alen) != IKETCP_OK ||
		    iketcp_cur_get_u16(&body, &sport) != IKETCP_OK ||
		    iketcp_cur_get_u16(&body, &dport) != IKETCP_OK)
			return 0;
		long rc = walk_tlvs(&body, len, reason);
		if (rc <= 0)
			return rc;
	}
	if (have < len)
		return 0;
	info->version = 2;
	info->command = (enum iketcp_pp_command)(vc & 0x0f);
	info->family = family;
	fill_sockaddr(&info->src, family, src, sport);
	fill_sockaddr(&info->dst, family, dst, dport);
	return (long)(IKETCP_PP_V2_HDR_LEN + len);
}

/* ---- entry point ------------------------------------------------------------- */

long
iketcp_pp_parse(const uint8_t *p, size_t n, size_t max_len, struct iketcp_pp_info *out,
		char *reason)
{
	struct iketcp_cur c;
	struct iketcp_pp_info info;
	uint8_t first;
	long rc;

	if (max_len == 0)
		max_len = IKETCP_PP_MAX_DEFAULT;
	if (max_len < IKETCP_PP_V1_MAX)
		max_len = IKETCP_PP_V1_MAX;
	iketcp_cur_init(&c, p, n);
	struct iketcp_cur peek = c;
	if (iketcp_cur_get_u8(&peek, &first) != IKETCP_OK)
		return 0;
	memset(&info, 0, sizeof(info));
	if (first == (uint8_t)v1_magic[0])
		rc = parse_v1(&c, &info, reason);
	else if (first == v2_sig[0])
		rc = parse_v2(&c, max_len, &info, reason);
	else
		rc = pp_fail(reason, "not a PROXY header");
	if (rc <= 0)
		return rc;
	info.len = (size_t)rc;
	if (out)
		*out = info;
	return rc;
}
