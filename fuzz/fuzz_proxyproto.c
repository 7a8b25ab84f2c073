/*
 * Target Functions: iketcp_pp_parse (lib/proxyproto.c), PROXY protocol v1
 * and v2 headers as a responder behind a load balancer receives them.
 *
 * Input layout:
 *   byte 0      flags: bits 0-1 pick max_len (0: 0, the default 1024;
 *               1: byte 1 * 4, so 0 and values below 107 are tried;
 *               2: byte 1 + 100, around the v1 limit; 3: 65551, the
 *               largest v2 header); bits 2-3 put a start in front of the
 *               rest, so mutations are not all spent on it (0: nothing,
 *               1: "PROXY TCP4 ", 2: "PROXY TCP6 ", 3: the v2 signature
 *               and version/command 0x21)
 *   byte 1      max_len parameter
 *   the rest    the bytes received (the start above, then these)
 *
 * Oracles:
 *   - every call reads an exact heap copy: a prefix of k bytes is moved to
 *     the end of one allocation, so ASan catches a read past k;
 *   - prefixes agree with the whole: with a header of length L, every
 *     shorter prefix answers 0 and every longer one L with the same info
 *     (p[0..L) alone included); with an error, there is one byte b such
 *     that prefixes up to b answer 0 and all longer ones the error with
 *     the same reason; with 0, every prefix answers 0. All prefixes are
 *     tried up to 512 bytes, a sample beyond;
 *   - a reference written here decides complete inputs independently: v1
 *     by cutting the line at its first CR or LF, splitting at single
 *     spaces and checking tokens with inet_pton() and plain digit rules;
 *     v2 by index arithmetic over the fixed part, the address block and
 *     the TLVs. Where it decides, the parser must agree, with the same
 *     length, family, addresses and ports;
 *   - on success the info is consistent: version 1 or 2, command PROXY
 *     for v1, AF_INET/AF_INET6 with a filled sockaddr_in/sockaddr_in6 and
 *     the rest of the storage zero, AF_UNSPEC with both zeroed; out.len is
 *     the return value; out is not written on 0 or an error;
 *   - the reason is NUL-terminated within IKETCP_PP_REASON_MAX, printable,
 *     and nothing past IKETCP_PP_REASON_MAX is written.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#define ALL_PREFIXES 512
#define SAMPLES 64
#define V2_LARGEST (IKETCP_PP_V2_HDR_LEN + 65535)

static const uint8_t v2_sig[IKETCP_PP_V2_SIG_LEN] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
						     0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

struct result {
	long rc;
	struct iketcp_pp_info info;
	char reason[IKETCP_PP_REASON_MAX];
};

/* ---- one call --------------------------------------------------------------------- */

static void
check_reason(const char *r, size_t cap)
{
	const char *nul = memchr(r, '\0', IKETCP_PP_REASON_MAX);
	CHECK(nul != NULL && nul > r);
	for (const char *c = r; c < nul; c++)
		CHECK(*c >= 0x20 && *c < 0x7f);
	for (size_t i = IKETCP_PP_REASON_MAX; i < cap; i++)
		CHECK((uint8_t)r[i] == 0x5a);
}

static void
check_zero(const void *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		CHECK(((const uint8_t *)p)[i] == 0);
}

static void
check_info(const struct iketcp_pp_info *in, long rc)
{
	const struct sockaddr_storage *ss[2] = {&in->src, &in->dst};

	CHECK(in->len == (size_t)rc);
	CHECK(in->version == 1 || in->version == 2);
	CHECK(in->command == IKETCP_PP_PROXY ||
	      (in->version == 2 && in->command == IKETCP_PP_LOCAL));
	CHECK(in->family == AF_INET || in->family == AF_INET6 || in->family == AF_UNSPEC);
	for (int k = 0; k < 2; k++) {
		switch (in->family) {
		case AF_INET: {
			struct sockaddr_in sin;
			memcpy(&sin, ss[k], sizeof(sin));
			CHECK(sin.sin_family == AF_INET);
			check_zero(&sin.sin_zero, 0, sizeof(sin.sin_zero));
			check_zero(ss[k], sizeof(sin), sizeof(*ss[k]));
			break;
		}
		case AF_INET6: {
			struct sockaddr_in6 sin6;
			memcpy(&sin6, ss[k], sizeof(sin6));
			CHECK(sin6.sin6_family == AF_INET6);
			CHECK(sin6.sin6_flowinfo == 0 && sin6.sin6_scope_id == 0);
			check_zero(ss[k], sizeof(sin6), sizeof(*ss[k]));
			break;
		}
		default:
			check_zero(ss[k], 0, sizeof(*ss[k]));
			break;
		}
	}
	CHECK(in->family == AF_UNSPEC || in->command == IKETCP_PP_PROXY);
}

/* Field by field: padding in the struct is not part of the answer. */
static int
same_info(const struct iketcp_pp_info *a, const struct iketcp_pp_info *b)
{
	return a->version == b->version && a->command == b->command && a->family == b->family &&
	       a->len == b->len && memcmp(&a->src, &b->src, sizeof(a->src)) == 0 &&
	       memcmp(&a->dst, &b->dst, sizeof(a->dst)) == 0;
}

/*
 * Parses the first k bytes of data, moved to the end of buf (n bytes, an
 * exact allocation), and checks what does not depend on the input.
 */
static struct result
run(uint8_t *buf, size_t n, const uint8_t *data, size_t k, size_t max)
{
	struct result r;
	struct iketcp_pp_info out;
	char reason[IKETCP_PP_REASON_MAX + 16];

	memmove(buf + n - k, data, k);
	memset(&out, 0xa5, sizeof(out));
	memset(reason, 0x5a, sizeof(reason));
	r.rc = iketcp_pp_parse(buf + n - k, k, max, &out, reason);
	memset(&r.info, 0, sizeof(r.info));
	r.reason[0] = '\0';
	if (r.rc > 0) {
		CHECK((size_t)r.rc <= k);
		check_info(&out, r.rc);
		r.info = out;
	} else {
		for (size_t i = 0; i < sizeof(out); i++)
			CHECK(((const uint8_t *)&out)[i] == 0xa5);
	}
	if (r.rc < 0) {
		CHECK(r.rc == IKETCP_E_PPHDR);
		check_rc_names((int)r.rc);
		CHECK(iketcp_err_category((int)r.rc) == IKETCP_CAT_PEER);
		check_reason(reason, sizeof(reason));
		memcpy(r.reason, reason, sizeof(r.reason));
	} else {
		for (size_t i = 0; i < sizeof(reason); i++)
			CHECK((uint8_t)reason[i] == 0x5a);
	}
	return r;
}

/* ---- prefixes ---------------------------------------------------------------------- */

/*
 * What a prefix of k bytes must answer, given the whole input's result
 * and, for an error, the first failing prefix length first_bad.
 */
static void
check_prefix(const struct result *whole, const struct result *p, size_t k, size_t first_bad)
{
	if (whole->rc > 0) {
		if (k < (size_t)whole->rc) {
			CHECK(p->rc == 0);
		} else {
			CHECK(p->rc == whole->rc);
			CHECK(same_info(&p->info, &whole->info));
		}
	} else if (whole->rc == 0 || k < first_bad) {
		CHECK(p->rc == 0);
	} else {
		CHECK(p->rc == whole->rc);
		CHECK(strcmp(p->reason, whole->reason) == 0);
	}
}

static void
check_prefixes(uint8_t *buf, size_t n, const uint8_t *data, size_t max, const struct result *whole)
{
	size_t first_bad = 0;

	if (whole->rc < 0) {
		/* The error is there at n and no answer ever comes back to 0
		 * (checked below), so a binary search finds where it starts. */
		size_t lo = 0, hi = n;
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;
			if (run(buf, n, data, mid, max).rc < 0)
				hi = mid;
			else
				lo = mid;
		}
		first_bad = hi;
		CHECK(run(buf, n, data, lo, max).rc == 0);
	}
	if (n <= ALL_PREFIXES) {
		for (size_t k = 0; k < n; k++) {
			struct result p = run(buf, n, data, k, max);
			check_prefix(whole, &p, k, first_bad);
		}
		return;
	}
	/* Spread samples, and both sides of each boundary. */
	size_t at[SAMPLES + 6] = {0, 1, n - 1, first_bad, first_bad ? first_bad - 1 : 0, 0};
	size_t na = 5;
	if (whole->rc > 0) {
		at[na++] = (size_t)whole->rc;
		at[na++] = (size_t)whole->rc - 1;
	}
	/* n > ALL_PREFIXES, so every stride is at least 8 bytes. */
	size_t stride = n / SAMPLES;
	for (size_t s = 0; s < SAMPLES - 1; s++)
		at[na++] = stride * s + data[s] % stride;
	for (size_t i = 0; i < na; i++) {
		if (at[i] >= n)
			continue;
		struct result p = run(buf, n, data, at[i], max);
		check_prefix(whole, &p, at[i], first_bad);
	}
}

/* ---- reference ---------------------------------------------------------------------- */

struct ref {
	long rc; /* expected: > 0, IKETCP_E_PPHDR, or 0 when undecided */
	int family;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	int version, command;
};

/* Decimal 0..65535 without leading zeros. */
static int
ref_port(const char *s, uint16_t *out)
{
	size_t n = strlen(s);
	unsigned long v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	*out = (uint16_t)v;
	return v <= 65535;
}

/* The complete line d[0..len) (without CRLF). Returns 1 if it is valid. */
static int
ref_v1_line(const uint8_t *d, size_t len, struct ref *r)
{
	char line[IKETCP_PP_V1_MAX + 1], *tok[5];
	size_t nt = 0;

	memcpy(line, d, len);
	line[len] = '\0';
	if (memchr(line, '\0', len) != NULL)
		return strncmp(line, "PROXY UNKNOWN ", 14) == 0; /* NUL only in ignored text */
	if (strcmp(line, "PROXY UNKNOWN") == 0 || strncmp(line, "PROXY UNKNOWN ", 14) == 0) {
		r->family = AF_UNSPEC;
		return 1;
	}
	if (strncmp(line, "PROXY TCP4 ", 11) == 0)
		r->family = AF_INET;
	else if (strncmp(line, "PROXY TCP6 ", 11) == 0)
		r->family = AF_INET6;
	else
		return 0;
	/* Exactly four fields separated by single spaces. */
	char *s = line + 11;
	tok[nt++] = s;
	for (; *s; s++) {
		if (*s != ' ')
			continue;
		if (nt == 5)
			return 0;
		*s = '\0';
		tok[nt++] = s + 1;
	}
	if (nt != 4)
		return 0;
	for (int i = 0; i < 2; i++)
		if (strchr(tok[i], '%') || inet_pton(r->family, tok[i], i ? r->dst : r->src) != 1)
			return 0;
	return ref_port(tok[2], &r->sport) && ref_port(tok[3], &r->dport);
}

static void
ref_v1(const uint8_t *d, size_t n, struct ref *r)
{
	size_t lim = n < IKETCP_PP_V1_MAX ? n : IKETCP_PP_V1_MAX;

	r->version = 1;
	r->command = IKETCP_PP_PROXY;
	for (size_t i = 0; i < lim; i++) {
		if (d[i] == '\n') {
			r->rc = IKETCP_E_PPHDR;
			return;
		}
		if (d[i] != '\r')
			continue;
		if (i + 1 >= n)
			return; /* undecided */
		if (i + 1 >= IKETCP_PP_V1_MAX || d[i + 1] != '\n') {
			r->rc = IKETCP_E_PPHDR;
			return;
		}
		r->rc = ref_v1_line(d, i, r) ? (long)(i + 2) : IKETCP_E_PPHDR;
		return;
	}
	if (n >= IKETCP_PP_V1_MAX)
		r->rc = IKETCP_E_PPHDR; /* no CRLF within the limit */
}

static void
ref_v2(const uint8_t *d, size_t n, size_t max, struct ref *r)
{
	for (size_t i = 0; i < IKETCP_PP_V2_SIG_LEN && i < n; i++)
		if (d[i] != v2_sig[i]) {
			r->rc = IKETCP_E_PPHDR;
			return;
		}
	if (n > 12 && ((d[12] >> 4) != 2 || (d[12] & 15) > 1)) {
		r->rc = IKETCP_E_PPHDR;
		return;
	}
	if (n > 13 && (d[12] & 15) == IKETCP_PP_PROXY && ((d[13] >> 4) > 3 || (d[13] & 15) > 2)) {
		r->rc = IKETCP_E_PPHDR;
		return;
	}
	if (n < 16)
		return;
	size_t len = ref_be16(d + 14), total = 16 + len;
	if (total > max) {
		r->rc = IKETCP_E_PPHDR;
		return;
	}
	if (n < total)
		return;
	r->version = 2;
	r->command = d[12] & 15;
	r->family = AF_UNSPEC;
	r->rc = (long)total;
	if (r->command != IKETCP_PP_PROXY || (d[13] != 0x11 && d[13] != 0x21))
		return;
	size_t alen = d[13] == 0x11 ? 4 : 16;
	if (len < 2 * alen + 4) {
		r->rc = IKETCP_E_PPHDR;
		return;
	}
	r->family = d[13] == 0x11 ? AF_INET : AF_INET6;
	memcpy(r->src, d + 16, alen);
	memcpy(r->dst, d + 16 + alen, alen);
	r->sport = ref_be16(d + 16 + 2 * alen);
	r->dport = ref_be16(d + 18 + 2 * alen);
	for (size_t at = 16 + 2 * alen + 4; at < total;) {
		if (total - at < 3 || ref_be16(d + at + 1) > total - at - 3) {
			r->rc = IKETCP_E_PPHDR;
			return;
		}
		at += 3 + ref_be16(d + at + 1);
	}
}

static void
check_sockaddr(const struct sockaddr_storage *ss, int family, const uint8_t *addr, uint16_t port)
{
	if (family == AF_INET) {
		struct sockaddr_in sin;
		memcpy(&sin, ss, sizeof(sin));
		CHECK(memcmp(&sin.sin_addr, addr, 4) == 0);
		CHECK(ntohs(sin.sin_port) == port);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, ss, sizeof(sin6));
		CHECK(memcmp(&sin6.sin6_addr, addr, 16) == 0);
		CHECK(ntohs(sin6.sin6_port) == port);
	}
}

static void
check_reference(const uint8_t *d, size_t n, size_t max, const struct result *whole)
{
	struct ref r;

	memset(&r, 0, sizeof(r));
	if (n == 0)
		CHECK(whole->rc == 0);
	else if (d[0] == 'P')
		ref_v1(d, n, &r);
	else if (d[0] == 0x0D)
		ref_v2(d, n, max, &r);
	else
		r.rc = IKETCP_E_PPHDR;
	if (r.rc == 0)
		return; /* undecided: the prefix oracles cover it */
	CHECK(whole->rc == r.rc);
	if (r.rc < 0)
		return;
	CHECK(whole->info.version == r.version);
	CHECK((int)whole->info.command == r.command);
	CHECK(whole->info.family == r.family);
	check_sockaddr(&whole->info.src, r.family, r.src, r.sport);
	check_sockaddr(&whole->info.dst, r.family, r.dst, r.dport);
}

/* ---- entry ------------------------------------------------------------------------- */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		const char *s;
		size_t n;
	} starts[4] = {
		{"", 0},
		{"PROXY TCP4 ", 11},
		{"PROXY TCP6 ", 11},
		{"\r\n\r\n\0\r\nQUIT\n\x21", 13},
	};
	size_t max;

	if (size < 2)
		return 0;
	uint8_t flags = data[0], param = data[1];
	switch (flags & 3) {
	case 0:
		max = 0;
		break;
	case 1:
		max = (size_t)param * 4;
		break;
	case 2:
		max = (size_t)param + 100;
		break;
	default:
		max = V2_LARGEST;
		break;
	}
	size_t eff = max == 0 ? IKETCP_PP_MAX_DEFAULT : max;
	if (eff < IKETCP_PP_V1_MAX)
		eff = IKETCP_PP_V1_MAX;

	size_t pre = starts[(flags >> 2) & 3].n;
	size_t n = pre + size - 2;
	uint8_t *in = malloc(n ? n : 1), *buf = malloc(n ? n : 1);
	CHECK(in != NULL && buf != NULL);
	memcpy(in, starts[(flags >> 2) & 3].s, pre);
	memcpy(in + pre, data + 2, size - 2);

	struct result whole = run(buf, n, in, n, max);
	check_reference(in, n, eff, &whole);
	check_prefixes(buf, n, in, max, &whole);
	/* The header alone parses the same. */
	if (whole.rc > 0) {
		uint8_t *hdr = malloc((size_t)whole.rc);
		CHECK(hdr != NULL);
		struct result alone = run(hdr, (size_t)whole.rc, in, (size_t)whole.rc, max);
		CHECK(alone.rc == whole.rc);
		CHECK(same_info(&alone.info, &whole.info));
		free(hdr);
	}
	free(buf);
	free(in);
	return 0;
}
