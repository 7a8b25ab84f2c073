/*
 * Unit tests for lib/proxyproto.c: PROXY protocol v1 and v2 headers.
 *
 * Every valid header goes through check_valid(): each proper prefix must
 * answer 0 (the daemon consumes those bytes as header), the whole header
 * its length, and the header followed by client bytes the same length and
 * the same info. Every malformed input goes through check_bad() with the
 * offset of the first byte that makes it impossible: all shorter prefixes
 * answer 0, that one and every longer one the error, with the same reason.
 * Inputs are parsed from exact heap copies so that ASan sees any read past
 * the end.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "iketcp/proxyproto.h"

/* What an RFC 9329 client sends first, after the header. */
static const uint8_t client_bytes[] = {'I', 'K', 'E', 'T', 'C', 'P', 0x00, 0x06, 0x00, 0x00};

static long
parse(const uint8_t *p, size_t n, size_t max, struct iketcp_pp_info *out, char *reason)
{
	uint8_t *copy = tu_xmalloc(n ? n : 1);
	if (n)
		memcpy(copy, p, n);
	long rc = iketcp_pp_parse(copy, n, max, out, reason);
	free(copy);
	return rc;
}

static void
assert_untouched(const struct iketcp_pp_info *out)
{
	const uint8_t *b = (const uint8_t *)out;
	for (size_t i = 0; i < sizeof(*out); i++)
		assert_int_equal(b[i], 0xa5);
}

/* Checks h[0..len) as a valid header (see the top) and returns its info. */
static struct iketcp_pp_info
check_valid(const uint8_t *h, size_t len, size_t max)
{
	struct iketcp_pp_info out, again;
	char reason[IKETCP_PP_REASON_MAX];
	uint8_t *more = tu_xmalloc(len + sizeof(client_bytes));

	for (size_t k = 0; k < len; k++) {
		memset(&out, 0xa5, sizeof(out));
		memset(reason, 0, sizeof(reason));
		if (parse(h, k, max, &out, reason) != 0)
			fail_msg("prefix %zu of %zu: %s", k, len, reason);
		assert_untouched(&out);
	}
	memset(&out, 0xa5, sizeof(out));
	reason[0] = '\0';
	long rc = parse(h, len, max, &out, reason);
	if (rc != (long)len)
		fail_msg("whole header (%zu): %ld %s", len, rc, reason);
	assert_int_equal(out.len, len);
	assert_true(out.version == 1 || out.version == 2);

	memcpy(more, h, len);
	memcpy(more + len, client_bytes, sizeof(client_bytes));
	memset(&again, 0xa5, sizeof(again));
	assert_int_equal(parse(more, len + sizeof(client_bytes), max, &again, NULL), (long)len);
	/* Field by field: struct padding is not part of the answer. */
	assert_int_equal(again.version, out.version);
	assert_int_equal(again.command, out.command);
	assert_int_equal(again.family, out.family);
	assert_int_equal(again.len, out.len);
	assert_memory_equal(&again.src, &out.src, sizeof(out.src));
	assert_memory_equal(&again.dst, &out.dst, sizeof(out.dst));
	free(more);
	return out;
}

/*
 * Checks that s[0..n) fails at byte bad: every prefix up to bad bytes
 * answers 0, every longer one IKETCP_E_PPHDR with reason want.
 */
static void
check_bad(const uint8_t *s, size_t n, size_t max, size_t bad, const char *want)
{
	struct iketcp_pp_info out;
	char reason[IKETCP_PP_REASON_MAX];

	assert_true(bad < n);
	for (size_t k = 0; k <= n; k++) {
		memset(&out, 0xa5, sizeof(out));
		memset(reason, 0x5a, sizeof(reason));
		long rc = parse(s, k, max, &out, reason);
		if (k <= bad) {
			if (rc != 0)
				fail_msg("prefix %zu (bad at %zu): %ld", k, bad, rc);
		} else {
			if (rc != IKETCP_E_PPHDR)
				fail_msg("prefix %zu (bad at %zu): %ld", k, bad, rc);
			assert_non_null(memchr(reason, '\0', sizeof(reason)));
			assert_string_equal(reason, want);
		}
		assert_untouched(&out);
	}
	/* reason may be NULL. */
	assert_int_equal(parse(s, n, max, NULL, NULL), IKETCP_E_PPHDR);
}

/* A v1 line, bad from the first byte after the prefix ok. */
static void
v1_bad(const char *line, const char *ok, const char *want)
{
	size_t bad = strlen(ok);
	assert_memory_equal(line, ok, bad);
	check_bad((const uint8_t *)line, strlen(line), 0, bad, want);
}

/* A line that fails on the byte after ok, with the reason why. */
struct bad_line {
	const char *line, *ok, *why;
};

static void
check_bad_lines(const struct bad_line *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		v1_bad(b[i].line, b[i].ok, b[i].why);
}

static struct iketcp_pp_info
v1_ok(const char *line)
{
	return check_valid((const uint8_t *)line, strlen(line), 0);
}

static void
assert_zeroed(const struct sockaddr_storage *ss)
{
	static const struct sockaddr_storage zero;
	assert_memory_equal(ss, &zero, sizeof(zero));
}

/* ss must be exactly a sockaddr_in/_in6 for addr and port, the rest zero. */
static void
assert_sockaddr(const struct sockaddr_storage *ss, int family, const char *addr, uint16_t port)
{
	struct sockaddr_storage want;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};

	memset(&want, 0, sizeof(want));
	if (family == AF_INET) {
		assert_int_equal(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
		memcpy(&want, &sin, sizeof(sin));
	} else {
		assert_int_equal(inet_pton(AF_INET6, addr, &sin6.sin6_addr), 1);
		memcpy(&want, &sin6, sizeof(sin6));
	}
	assert_memory_equal(ss, &want, sizeof(want));
}

#define assert_sin(ss, addr, port) assert_sockaddr(ss, AF_INET, addr, port)
#define assert_sin6(ss, addr, port) assert_sockaddr(ss, AF_INET6, addr, port)

/* ---- v1 ---------------------------------------------------------------------------- */

/* Valid TCP4/TCP6 lines and what they say. */
static const struct good_line {
	const char *line;
	int family;
	const char *src, *dst;
	uint16_t sport, dport;
} good_lines[] = {
	{"PROXY TCP4 192.0.2.1 198.51.100.2 51234 4500\r\n", AF_INET, "192.0.2.1", "198.51.100.2",
	 51234, 4500},
	/* Smallest and largest values of every field. */
	{"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", AF_INET, "0.0.0.0", "255.255.255.255", 0,
	 65535},
	{"PROXY TCP4 10.0.0.10 100.99.9.250 1 10\r\n", AF_INET, "10.0.0.10", "100.99.9.250", 1, 10},
	{"PROXY TCP6 2001:db8::1 2001:DB8:0:1::FFFF 443 4500\r\n", AF_INET6, "2001:db8::1",
	 "2001:db8:0:1::ffff", 443, 4500},
	{"PROXY TCP6 :: ::1 0 65535\r\n", AF_INET6, "::", "::1", 0, 65535},
	{"PROXY TCP6 ::ffff:192.0.2.1 1:2:3:4:5:6:7:8 1 2\r\n", AF_INET6, "::ffff:192.0.2.1",
	 "1:2:3:4:5:6:7:8", 1, 2},
	{"PROXY TCP6 1:2:3:4:5:6:1.2.3.4 1:2:3:4:5:6:7:: 1 2\r\n", AF_INET6, "1:2:3:4:5:6:1.2.3.4",
	 "1:2:3:4:5:6:7::", 1, 2},
	{"PROXY TCP6 1::2:3:4:5:6:7 0001:0:0:0:0:0:0:abcd 1 2\r\n", AF_INET6, "1::2:3:4:5:6:7",
	 "1::abcd", 1, 2},
};

static void
test_v1_tcp(void **state)
{
	(void)state;
	for (size_t k = 0; k < TU_ARRAY_LEN(good_lines); k++) {
		const struct good_line *g = &good_lines[k];
		struct iketcp_pp_info i = v1_ok(g->line);
		assert_int_equal(i.version, 1);
		assert_int_equal(i.command, IKETCP_PP_PROXY);
		assert_int_equal(i.family, g->family);
		assert_int_equal(i.len, strlen(g->line));
		assert_sockaddr(&i.src, g->family, g->src, g->sport);
		assert_sockaddr(&i.dst, g->family, g->dst, g->dport);
	}
}

/* The 107-byte lines: the specification's worst case, and TCP6 at the limit. */
static void
test_v1_longest(void **state)
{
	(void)state;
	static const char unk[] = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
				  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	static const char a45[] = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
	char line[160];

	assert_int_equal(strlen(unk), IKETCP_PP_V1_MAX);
	struct iketcp_pp_info i = v1_ok(unk);
	assert_int_equal(i.family, AF_UNSPEC);

	/* src 45 bytes, dst 44: 107 bytes. */
	snprintf(line, sizeof(line), "PROXY TCP6 %s %.44s 1 1\r\n", a45, a45);
	assert_int_equal(strlen(line), IKETCP_PP_V1_MAX);
	i = v1_ok(line);
	assert_sin6(&i.src, a45, 1);
	assert_sin6(&i.dst, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.25", 1);

	/* Both 45 bytes: 108. The 45th byte of dst is where no line can end
	 * within 107 bytes any more (" 0 0\r\n" still to come). */
	snprintf(line, sizeof(line), "PROXY TCP6 %s %s 1 1\r\n", a45, a45);
	check_bad((const uint8_t *)line, strlen(line), 0, 11 + 45 + 1 + 44,
		  "v1 line longer than 107 bytes");
}

static void
test_v1_unknown(void **state)
{
	(void)state;
	struct iketcp_pp_info i = v1_ok("PROXY UNKNOWN\r\n");
	assert_int_equal(i.version, 1);
	assert_int_equal(i.command, IKETCP_PP_PROXY);
	assert_int_equal(i.family, AF_UNSPEC);
	assert_int_equal(i.len, 15);
	assert_zeroed(&i.src);
	assert_zeroed(&i.dst);
	/* Anything but CR and LF after a space is ignored. */
	i = v1_ok("PROXY UNKNOWN 192.0.2.1 nonsense 99999 \t\x01\x7f\xff\r\n");
	assert_int_equal(i.family, AF_UNSPEC);
	assert_zeroed(&i.src);
	v1_ok("PROXY UNKNOWN \r\n");

	v1_bad("PROXY UNKNOWNX\r\n", "PROXY UNKNOWN", "bad v1 protocol");
	v1_bad("PROXY UNKNOWN\n", "PROXY UNKNOWN", "v1 LF without CR");
	v1_bad("PROXY UNKNOWN x\rx\r\n", "PROXY UNKNOWN x\r", "v1 CR without LF");

	/* 105 bytes then CRLF is the longest line; one more byte fails. */
	char line[200];
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + 105, "\r\n", 2);
	check_valid((const uint8_t *)line, 107, 0);
	memcpy(line + 105, "x\r\n", 3);
	check_bad((const uint8_t *)line, 108, 0, 105, "v1 line longer than 107 bytes");
	/* A CR as the 107th byte still fits. */
	memcpy(line + 105, "\r\r", 2);
	check_bad((const uint8_t *)line, 108, 0, 106, "v1 CR without LF");
	/* No LF at all within 107 bytes. */
	memset(line + 14, 'x', sizeof(line) - 14);
	check_bad((const uint8_t *)line, sizeof(line), 0, 105, "v1 line longer than 107 bytes");
}

static void
test_v1_keywords(void **state)
{
	(void)state;
	static const struct bad_line bad[] = {
		{"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "", "not a PROXY header"},
		{"PROXX TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "PROX", "not a PROXY header"},
		{"PROXY\tTCP4 1.2.3.4 1.2.3.4 1 2\r\n", "PROXY", "not a PROXY header"},
		{"PROXY\r\n", "PROXY", "not a PROXY header"},
		{"PROXY  TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "PROXY ", "bad v1 protocol"},
		{"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", "PROXY TCP", "bad v1 protocol"},
		{"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n", "PROXY U", "bad v1 protocol"},
		{"PROXY tcp4 1.2.3.4 1.2.3.4 1 2\r\n", "PROXY ", "bad v1 protocol"},
		{"PROXY TCP4\r\n", "PROXY TCP4", "bad v1 protocol"},
		{"PROXY UNKNOWM\r\n", "PROXY UNKNOW", "bad v1 protocol"},
		{"PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n", "PROXY TCP4 ", "bad v1 source address"},
		{"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n", "PROXY TCP4 1.2.3.4 ",
		 "bad v1 destination address"},
		{"PROXY TCP4 1.2.3.4 1.2.3.4  1 2\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 ",
		 "bad v1 source port"},
		{"PROXY TCP4 1.2.3.4 1.2.3.4 1  2\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 1 ",
		 "bad v1 destination port"},
		{"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 1 2",
		 "bad v1 destination port"},
	};

	check_bad_lines(bad, TU_ARRAY_LEN(bad));
}

static void
test_v1_addresses(void **state)
{
	(void)state;
	static const struct bad_line bad[] = {
		{"PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n", "PROXY TCP4 0", "bad v1 source address"},
		{"PROXY TCP4 1.2.3.00 1.2.3.4 1 2\r\n", "PROXY TCP4 1.2.3.0",
		 "bad v1 source address"},
		{"PROXY TCP4 1.2.3.4 1.256.3.4 1 2\r\n", "PROXY TCP4 1.2.3.4 1.25",
		 "bad v1 destination address"},
		{"PROXY TCP4 1.2.3.4 1.2.3.1000 1 2\r\n", "PROXY TCP4 1.2.3.4 1.2.3.100",
		 "bad v1 destination address"},
		{"PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n", "PROXY TCP4 1.2.3", "bad v1 source address"},
		{"PROXY TCP4 1.2.3.4.5 1.2.3.4 1 2\r\n", "PROXY TCP4 1.2.3.4",
		 "bad v1 source address"},
		{"PROXY TCP4 1..3.4 1.2.3.4 1 2\r\n", "PROXY TCP4 1.", "bad v1 source address"},
		{"PROXY TCP4 .1.2.3 1.2.3.4 1 2\r\n", "PROXY TCP4 ", "bad v1 source address"},
		{"PROXY TCP4 1.2.3. 1.2.3.4 1 2\r\n", "PROXY TCP4 1.2.3.", "bad v1 source address"},
		{"PROXY TCP4 0x1.2.3.4 1.2.3.4 1 2\r\n", "PROXY TCP4 0", "bad v1 source address"},
		/* The family must match the keyword. */
		{"PROXY TCP4 ::1 1.2.3.4 1 2\r\n", "PROXY TCP4 ", "bad v1 source address"},
		{"PROXY TCP4 1.2.3.4 2001:db8::1 1 2\r\n", "PROXY TCP4 1.2.3.4 200",
		 "bad v1 destination address"},
		{"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "PROXY TCP6 1", "bad v1 source address"},
		{"PROXY TCP6 ::1 ::ffff:1.2.3.4.5 1 2\r\n", "PROXY TCP6 ::1 ::ffff:1.2.3.4",
		 "bad v1 destination address"},
		/* IPv6 details: zone, brackets, groups, "::". */
		{"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "PROXY TCP6 fe80::1",
		 "bad v1 source address"},
		{"PROXY TCP6 [::1] ::1 1 2\r\n", "PROXY TCP6 ", "bad v1 source address"},
		{"PROXY TCP6 ::: ::1 1 2\r\n", "PROXY TCP6 ::", "bad v1 source address"},
		{"PROXY TCP6 :1 ::1 1 2\r\n", "PROXY TCP6 :", "bad v1 source address"},
		{"PROXY TCP6 1: ::1 1 2\r\n", "PROXY TCP6 1:", "bad v1 source address"},
		{"PROXY TCP6 1::2::3 ::1 1 2\r\n", "PROXY TCP6 1::2:", "bad v1 source address"},
		{"PROXY TCP6 12345:: ::1 1 2\r\n", "PROXY TCP6 1234", "bad v1 source address"},
		{"PROXY TCP6 g:: ::1 1 2\r\n", "PROXY TCP6 ", "bad v1 source address"},
		{"PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n", "PROXY TCP6 1:2:3:4:5:6:7",
		 "bad v1 source address"},
		{"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "PROXY TCP6 1:2:3:4:5:6:7:8",
		 "bad v1 source address"},
		{"PROXY TCP6 1:2:3:4:5:6:7:8:: ::1 1 2\r\n", "PROXY TCP6 1:2:3:4:5:6:7:8",
		 "bad v1 source address"},
		/* "::" must stand for at least one group. */
		{"PROXY TCP6 1:2:3:4::5:6:7:8 ::1 1 2\r\n", "PROXY TCP6 1:2:3:4::5:6:7",
		 "bad v1 source address"},
		{"PROXY TCP6 ::1:2:3:4:5:6:7:8 ::1 1 2\r\n", "PROXY TCP6 ::1:2:3:4:5:6:7",
		 "bad v1 source address"},
		/* A dotted quad only in place of the last two groups. */
		{"PROXY TCP6 1:2:3:4:5:6:7:1.2.3.4 ::1 1 2\r\n", "PROXY TCP6 1:2:3:4:5:6:7:1",
		 "bad v1 source address"},
		{"PROXY TCP6 1:2:3:4:5:1.2.3.4 ::1 1 2\r\n", "PROXY TCP6 1:2:3:4:5:1",
		 "bad v1 source address"},
		{"PROXY TCP6 1:2:3:4:5:6::1.2.3.4 ::1 1 2\r\n", "PROXY TCP6 1:2:3:4:5:6::1",
		 "bad v1 source address"},
		{"PROXY TCP6 ::01.2.3.4 ::1 1 2\r\n", "PROXY TCP6 ::01", "bad v1 source address"},
		{"PROXY TCP6 ::1.2.3.4:5 ::1 1 2\r\n", "PROXY TCP6 ::1.2.3.4",
		 "bad v1 source address"},
		{"PROXY TCP6 ::a.2.3.4 ::1 1 2\r\n", "PROXY TCP6 ::a", "bad v1 source address"},
	};

	check_bad_lines(bad, TU_ARRAY_LEN(bad));
}

static void
test_v1_ports(void **state)
{
	(void)state;
	static const struct bad_line bad[] = {
		{"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 0",
		 "bad v1 source port"},
		{"PROXY TCP4 1.2.3.4 1.2.3.4 00 2\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 0",
		 "bad v1 source port"},
		{"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 6553",
		 "bad v1 source port"},
		{"PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 1 6553",
		 "bad v1 destination port"},
		{"PROXY TCP4 1.2.3.4 1.2.3.4 1 100000\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 1 10000",
		 "bad v1 destination port"},
		{"PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 ",
		 "bad v1 source port"},
		{"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 ",
		 "bad v1 source port"},
		{"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 1 2",
		 "bad v1 destination port"},
		{"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 1",
		 "bad v1 source port"},
		{"PROXY TCP4 1.2.3.4 1.2.3.4 1 \r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 1 ",
		 "bad v1 destination port"},
	};

	check_bad_lines(bad, TU_ARRAY_LEN(bad));
}

static void
test_v1_line_end(void **state)
{
	(void)state;
	/* LF without CR, CR without LF, CR CR, nothing at all. */
	v1_bad("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", "PROXY TCP4 1.2.3.4 1.2.3.4 1 2",
	       "v1 LF without CR");
	v1_bad("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX", "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r",
	       "v1 CR without LF");
	v1_bad("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\r\n", "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r",
	       "v1 CR without LF");
	v1_bad("PROXY TCP4 1.2.3.4\n", "PROXY TCP4 1.2.3.4", "v1 LF without CR");
	v1_bad("PROXY TCP4 1.2.3.4\r\n", "PROXY TCP4 1.2.3.4", "bad v1 source address");
	/* Never ending: rejected on the first impossible byte, well before 107. */
	v1_bad("PROXY TCP4 1.2.3.4 1.2.3.4 1 2IKETCP", "PROXY TCP4 1.2.3.4 1.2.3.4 1 2",
	       "bad v1 destination port");
	/* Only the first line is the header; a second one is client data. */
	static const char two[] = "PROXY UNKNOWN\r\nPROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\n";
	struct iketcp_pp_info i;
	assert_int_equal(iketcp_pp_parse((const uint8_t *)two, sizeof(two) - 1, 0, &i, NULL), 15);
}

/* ---- v2 ---------------------------------------------------------------------------- */

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Writes the 16 fixed bytes; returns 16. */
static size_t
v2_fixed(uint8_t *out, uint8_t vc, uint8_t fam, uint16_t len)
{
	memcpy(out, v2_sig, sizeof(v2_sig));
	out[12] = vc;
	out[13] = fam;
	tu_put16(out + 14, len);
	return 16;
}

/* 192.0.2.1:51234 -> 198.51.100.2:4500 */
static const uint8_t block4[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0xc8, 0x22, 0x11, 0x94};

/* 2001:db8::1:443 -> 2001:db8::2:4500 */
static size_t
put_block6(uint8_t *out)
{
	memset(out, 0, 36);
	out[0] = 0x20;
	out[1] = 0x01;
	out[2] = 0x0d;
	out[3] = 0xb8;
	out[15] = 1;
	memcpy(out + 16, out, 15);
	out[31] = 2;
	tu_put16(out + 32, 443);
	tu_put16(out + 34, 4500);
	return 36;
}

static void
test_v2_tcp4(void **state)
{
	uint8_t h[64];

	(void)state;
	size_t n = v2_fixed(h, 0x21, 0x11, 12);
	memcpy(h + n, block4, 12);
	struct iketcp_pp_info i = check_valid(h, 28, 0);
	assert_int_equal(i.version, 2);
	assert_int_equal(i.command, IKETCP_PP_PROXY);
	assert_int_equal(i.family, AF_INET);
	assert_int_equal(i.len, 28);
	assert_sin(&i.src, "192.0.2.1", 51234);
	assert_sin(&i.dst, "198.51.100.2", 4500);
}

static void
test_v2_tcp6(void **state)
{
	uint8_t h[64];

	(void)state;
	size_t n = v2_fixed(h, 0x21, 0x21, 36);
	n += put_block6(h + n);
	struct iketcp_pp_info i = check_valid(h, n, 0);
	assert_int_equal(i.len, 52);
	assert_int_equal(i.version, 2);
	assert_int_equal(i.command, IKETCP_PP_PROXY);
	assert_int_equal(i.family, AF_INET6);
	assert_sin6(&i.src, "2001:db8::1", 443);
	assert_sin6(&i.dst, "2001:db8::2", 4500);
}

/* LOCAL: no client behind it; the family byte and block are ignored. */
static void
test_v2_local(void **state)
{
	uint8_t h[64];

	(void)state;
	v2_fixed(h, 0x20, 0x00, 0);
	struct iketcp_pp_info i = check_valid(h, 16, 0);
	assert_int_equal(i.version, 2);
	assert_int_equal(i.command, IKETCP_PP_LOCAL);
	assert_int_equal(i.family, AF_UNSPEC);
	assert_zeroed(&i.src);
	assert_zeroed(&i.dst);
	/* TCP4 family but no room for the block: fine for LOCAL. */
	v2_fixed(h, 0x20, 0x11, 0);
	i = check_valid(h, 16, 0);
	assert_int_equal(i.family, AF_UNSPEC);
	/* With a block: still ignored. */
	v2_fixed(h, 0x20, 0x11, 12);
	memcpy(h + 16, block4, 12);
	i = check_valid(h, 28, 0);
	assert_int_equal(i.command, IKETCP_PP_LOCAL);
	assert_int_equal(i.family, AF_UNSPEC);
	assert_zeroed(&i.src);
	assert_zeroed(&i.dst);
}

/* UNSPEC, UDP, UNIX: addresses unknown, the length skipped whole. */
static void
test_v2_other_families(void **state)
{
	static const uint8_t fams[] = {0x00, 0x01, 0x02, 0x10, 0x12, 0x20, 0x22, 0x30, 0x31, 0x32};
	static const uint16_t lens[] = {0, 3, 12, 36, 216, 218};
	uint8_t h[16 + 218];

	(void)state;
	for (size_t f = 0; f < TU_ARRAY_LEN(fams); f++) {
		for (size_t l = 0; l < TU_ARRAY_LEN(lens); l++) {
			v2_fixed(h, 0x21, fams[f], lens[l]);
			/* Bytes that would be bad TLVs if they were walked. */
			memset(h + 16, 0xee, lens[l]);
			struct iketcp_pp_info i = check_valid(h, 16 + (size_t)lens[l], 0);
			assert_int_equal(i.command, IKETCP_PP_PROXY);
			assert_int_equal(i.family, AF_UNSPEC);
			assert_zeroed(&i.src);
			assert_zeroed(&i.dst);
		}
	}
	/* UNIX: two 108-byte paths. */
	v2_fixed(h, 0x21, 0x31, 216);
	memset(h + 16, 0, 216);
	memcpy(h + 16, "/run/haproxy.sock", 17);
	memcpy(h + 16 + 108, "/run/iketcpd.sock", 17);
	struct iketcp_pp_info i = check_valid(h, 232, 0);
	assert_int_equal(i.len, 232);
	assert_int_equal(i.family, AF_UNSPEC);
}

/* Undefined family or transport: a PROXY header is refused at that byte
 * (the specification asks receivers to); LOCAL discards the family. */
static void
test_v2_undefined_family(void **state)
{
	static const uint8_t fams[] = {0x13, 0x40, 0x44, 0x03, 0xff, 0x1f};
	uint8_t h[16 + 12];
	char want[IKETCP_PP_REASON_MAX];

	(void)state;
	for (size_t f = 0; f < TU_ARRAY_LEN(fams); f++) {
		v2_fixed(h, 0x21, fams[f], 12);
		memset(h + 16, 0, 12);
		snprintf(want, sizeof(want), "v2 family/transport 0x%02x undefined", fams[f]);
		check_bad(h, sizeof(h), 0, 13, want);
		v2_fixed(h, 0x20, fams[f], 12);
		struct iketcp_pp_info i = check_valid(h, sizeof(h), 0);
		assert_int_equal(i.command, IKETCP_PP_LOCAL);
		assert_int_equal(i.family, AF_UNSPEC);
	}
}

static size_t
put_tlv(uint8_t *out, uint8_t type, const char *val)
{
	size_t n = strlen(val);
	out[0] = type;
	tu_put16(out + 1, (uint16_t)n);
	memcpy(out + 3, val, n);
	return 3 + n;
}

static void
test_v2_tlvs(void **state)
{
	uint8_t h[256];
	size_t n;

	(void)state;
	/* ALPN, authority, NOOP (empty), unique ID. */
	n = 16;
	memcpy(h + n, block4, 12);
	n += 12;
	n += put_tlv(h + n, 0x01, "h2");
	n += put_tlv(h + n, 0x02, "vpn.example.com");
	n += put_tlv(h + n, 0x04, "");
	n += put_tlv(h + n, 0x05, "0123456789abcdef");
	v2_fixed(h, 0x21, 0x11, (uint16_t)(n - 16));
	struct iketcp_pp_info i = check_valid(h, n, 0);
	assert_int_equal(i.family, AF_INET);
	assert_sin(&i.src, "192.0.2.1", 51234);

	/* IPv6 and one TLV. */
	n = 16;
	n += put_block6(h + n);
	n += put_tlv(h + n, 0x30, "netns");
	v2_fixed(h, 0x21, 0x21, (uint16_t)(n - 16));
	i = check_valid(h, n, 0);
	assert_sin6(&i.dst, "2001:db8::2", 4500);

	/* The last TLV one byte longer than the header: known at its length. */
	n = 16 + 12;
	n += put_tlv(h + n, 0x01, "h2");
	size_t at = n;
	n += put_tlv(h + n, 0x02, "vpn");
	tu_put16(h + at + 1, 4);
	v2_fixed(h, 0x21, 0x11, (uint16_t)(n - 16));
	check_bad(h, n, 0, at + 2, "v2 TLV overruns header");

	/* The high length byte alone already overruns. */
	tu_put16(h + at + 1, 0x0100);
	check_bad(h, n, 0, at + 1, "v2 TLV overruns header");

	/* A TLV leaving 1 or 2 bytes: no room for another TLV header. */
	for (size_t extra = 1; extra <= 2; extra++) {
		n = 16 + 12;
		at = n;
		n += put_tlv(h + n, 0x04, "");
		memset(h + n, 0, extra);
		n += extra;
		v2_fixed(h, 0x21, 0x11, (uint16_t)(n - 16));
		check_bad(h, n, 0, at + 2, "v2 TLV overruns header");
	}
	/* 1 or 2 bytes after the block: known from the length. */
	for (size_t extra = 1; extra <= 2; extra++) {
		memset(h + 28, 0, extra);
		v2_fixed(h, 0x21, 0x11, (uint16_t)(12 + extra));
		check_bad(h, 28 + extra, 0, 15, "v2 TLV overruns header");
	}
}

static void
test_v2_bad_fixed(void **state)
{
	uint8_t h[64];

	(void)state;
	/* Version nibble 1 and 3, command 2 and 15. */
	v2_fixed(h, 0x11, 0x11, 12);
	memcpy(h + 16, block4, 12);
	check_bad(h, 28, 0, 12, "v2 version 1");
	h[12] = 0x31;
	check_bad(h, 28, 0, 12, "v2 version 3");
	h[12] = 0x01;
	check_bad(h, 28, 0, 12, "v2 version 0");
	h[12] = 0x22;
	check_bad(h, 28, 0, 12, "v2 command 2");
	h[12] = 0x2f;
	check_bad(h, 28, 0, 12, "v2 command 15");

	/* The address block does not fit in the length. */
	v2_fixed(h, 0x21, 0x11, 11);
	check_bad(h, 27, 0, 15, "v2 address block longer than the header");
	v2_fixed(h, 0x21, 0x21, 35);
	memset(h + 16, 0, 35);
	check_bad(h, 51, 0, 15, "v2 address block longer than the header");
	v2_fixed(h, 0x21, 0x21, 12); /* an IPv4-sized block under TCP6 */
	memcpy(h + 16, block4, 12);
	check_bad(h, 28, 0, 15, "v2 address block longer than the header");

	/* Every signature byte is checked as it arrives. */
	for (size_t k = 0; k < 12; k++) {
		v2_fixed(h, 0x21, 0x11, 12);
		memcpy(h + 16, block4, 12);
		h[k] ^= 0x20;
		/* byte 0 flipped is not 0x0D: not a candidate at all */
		check_bad(h, 28, 0, k, "not a PROXY header");
	}
	/* v1 and v2 mixed. */
	static const char mixed[] = "\r\nPROXY TCP4";
	check_bad((const uint8_t *)mixed, sizeof(mixed) - 1, 0, 2, "not a PROXY header");
}

static void
test_v2_max_len(void **state)
{
	uint8_t *h = tu_xmalloc(16 + 65535);

	(void)state;
	memset(h, 0, 16 + 65535);
	/* Default limit 1024: exactly, and one over (known at the low byte). */
	v2_fixed(h, 0x21, 0x00, 1024 - 16);
	check_valid(h, 1024, 0);
	check_valid(h, 1024, 1024);
	v2_fixed(h, 0x21, 0x00, 1024 - 15);
	check_bad(h, 1025, 0, 15, "header longer than 1024 bytes");
	/* 0x0400: the high byte alone is over. */
	v2_fixed(h, 0x21, 0x00, 0x0400);
	check_bad(h, 16 + 0x400, 0, 14, "header longer than 1024 bytes");
	/* Also with the TCP4 family: the limit is checked first. */
	v2_fixed(h, 0x21, 0x11, 0xffff);
	check_bad(h, 64, 0, 14, "header longer than 1024 bytes");

	/* Below 107 counts as 107. */
	v2_fixed(h, 0x21, 0x00, 107 - 16);
	check_valid(h, 107, 1);
	v2_fixed(h, 0x21, 0x00, 107 - 15);
	check_bad(h, 108, 1, 15, "header longer than 107 bytes");
	static const char unk[] = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
				  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	check_valid((const uint8_t *)unk, sizeof(unk) - 1, 1);

	/* The largest header: 65535 bytes of block and one TLV. */
	v2_fixed(h, 0x21, 0x11, 0xffff);
	memcpy(h + 16, block4, 12);
	h[28] = 0x04;
	tu_put16(h + 29, 0xffff - 12 - 3);
	struct iketcp_pp_info i;
	assert_int_equal(iketcp_pp_parse(h, 16 + 65535, 16 + 65535, &i, NULL), 16 + 65535);
	assert_int_equal(i.family, AF_INET);
	assert_int_equal(iketcp_pp_parse(h, 16 + 65534, 16 + 65535, &i, NULL), 0);
	assert_int_equal(iketcp_pp_parse(h, 16 + 65535, 16 + 65534, &i, NULL), IKETCP_E_PPHDR);
	free(h);
}

/* ---- what is not a PROXY header at all --------------------------------------------- */

static void
test_not_proxy(void **state)
{
	static const uint8_t tls[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
	static const uint8_t esp[] = {0x00, 0x20, 0xc0, 0x01, 0xd0, 0x0d};
	char reason[IKETCP_PP_REASON_MAX];

	(void)state;
	check_bad(client_bytes, sizeof(client_bytes), 0, 0, "not a PROXY header");
	check_bad(tls, sizeof(tls), 0, 0, "not a PROXY header");
	check_bad(esp, sizeof(esp), 0, 0, "not a PROXY header");
	v1_bad("GET / HTTP/1.1\r\n\r\n", "", "not a PROXY header");
	v1_bad("\n", "", "not a PROXY header");
	/* Only the first byte is needed. */
	assert_int_equal(iketcp_pp_parse(client_bytes, 1, 0, NULL, reason), IKETCP_E_PPHDR);
	assert_string_equal(reason, "not a PROXY header");
	assert_int_equal(iketcp_pp_parse(tls, 1, 0, NULL, NULL), IKETCP_E_PPHDR);
	/* Nothing yet: need more. */
	assert_int_equal(iketcp_pp_parse(NULL, 0, 0, NULL, NULL), 0);
	assert_int_equal(iketcp_pp_parse(tls, 0, 0, NULL, NULL), 0);
}

/* ---- the IPv6 and IPv4 grammars against inet_pton() ------------------------------- */

/*
 * A random literal near the valid ones: around the group counts that
 * matter (7, 8, "::" anywhere, a dotted-quad tail), octets around 255 and
 * with leading zeros, 5-digit groups; then, one time in four, one byte
 * replaced by noise.
 */
static void
random_literal(struct tu_rng *r, char *out, size_t cap, int v6)
{
	static const char hex[] = "0123456789abcdefABCDEF";
	static const char noise[] = "0:.aF%g";
	size_t n = 0;
	size_t groups = v6 ? (size_t)tu_rng_below(r, 10) : 0;
	size_t dc = v6 && tu_rng_below(r, 2) ? (size_t)tu_rng_below(r, groups + 1) : SIZE_MAX;
	int quad = !v6 || tu_rng_below(r, 3) == 0;

	for (size_t g = 0; g < groups; g++) {
		if (g == dc)
			n += (size_t)snprintf(out + n, cap - n, "::");
		else if (g)
			out[n++] = ':';
		size_t d = (size_t)tu_rng_range(r, 1, tu_rng_below(r, 8) ? 4 : 5);
		for (size_t j = 0; j < d; j++)
			out[n++] = hex[tu_rng_below(r, sizeof(hex) - 1)];
	}
	if (dc == groups)
		n += (size_t)snprintf(out + n, cap - n, "::");
	if (quad) {
		if (groups && dc != groups)
			out[n++] = ':';
		size_t octets = tu_rng_below(r, 8) ? 4 : (size_t)tu_rng_range(r, 3, 5);
		for (size_t o = 0; o < octets; o++) {
			if (o)
				out[n++] = '.';
			if (tu_rng_below(r, 8) == 0)
				out[n++] = '0';
			n += (size_t)snprintf(out + n, cap - n, "%u",
					      (unsigned)tu_rng_below(r, 260));
		}
	}
	if (n && tu_rng_below(r, 4) == 0)
		out[tu_rng_below(r, n)] = noise[tu_rng_below(r, sizeof(noise) - 1)];
	out[n] = '\0';
}

static void
check_literal_grammar(int family)
{
	struct tu_rng r;
	char lit[128], line[200];
	uint8_t want[16];
	unsigned accepted = 0;

	tu_rng_seed(&r, family == AF_INET6 ? 6 : 4);
	for (int iter = 0; iter < 40000; iter++) {
		random_literal(&r, lit, sizeof(lit), family == AF_INET6);
		int ok = inet_pton(family, lit, want) == 1;
		int n = snprintf(line, sizeof(line), "PROXY %s %s %s 1 2\r\n",
				 family == AF_INET6 ? "TCP6" : "TCP4", lit,
				 family == AF_INET6 ? "::" : "0.0.0.0");
		struct iketcp_pp_info i;
		long rc = iketcp_pp_parse((const uint8_t *)line, (size_t)n, 0, &i, NULL);
		if (ok != (rc == n))
			fail_msg("%s: inet_pton %d, parse %ld", lit, ok, rc);
		if (!ok) {
			assert_int_equal(rc, IKETCP_E_PPHDR);
			continue;
		}
		accepted++;
		if (family == AF_INET6)
			assert_sin6(&i.src, lit, 1);
		else
			assert_sin(&i.src, lit, 1);
	}
	/* The generator must reach both answers often. */
	assert_true(accepted > 4000 && accepted < 36000);
}

static void
test_v6_grammar(void **state)
{
	(void)state;
	check_literal_grammar(AF_INET6);
}

static void
test_v4_grammar(void **state)
{
	(void)state;
	check_literal_grammar(AF_INET);
}

/* The reason always fits and is printable, whatever failed. */
static void
test_reason_text(void **state)
{
	struct tu_rng r;
	uint8_t buf[40];
	char reason[IKETCP_PP_REASON_MAX + 8];

	(void)state;
	tu_rng_seed(&r, 57);
	for (int iter = 0; iter < 20000; iter++) {
		size_t n = (size_t)tu_rng_range(&r, 1, sizeof(buf));
		tu_rng_fill(&r, buf, n);
		/* Start like a header half of the time, to get past byte 0. */
		if (iter & 1)
			memcpy(buf, iter & 2 ? (const uint8_t *)"PROXY T" : v2_sig, n < 7 ? n : 7);
		memset(reason, 0x5a, sizeof(reason));
		long rc = iketcp_pp_parse(buf, n, 0, NULL, reason);
		if (rc >= 0)
			continue;
		assert_int_equal(rc, IKETCP_E_PPHDR);
		size_t len = strnlen(reason, IKETCP_PP_REASON_MAX);
		assert_true(len > 0 && len < IKETCP_PP_REASON_MAX);
		for (size_t k = 0; k < len; k++)
			assert_true(reason[k] >= 0x20 && reason[k] < 0x7f);
		for (size_t k = IKETCP_PP_REASON_MAX; k < sizeof(reason); k++)
			assert_int_equal((uint8_t)reason[k], 0x5a);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp),
		cmocka_unit_test(test_v1_longest),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_keywords),
		cmocka_unit_test(test_v1_addresses),
		cmocka_unit_test(test_v1_ports),
		cmocka_unit_test(test_v1_line_end),
		cmocka_unit_test(test_v2_tcp4),
		cmocka_unit_test(test_v2_tcp6),
		cmocka_unit_test(test_v2_local),
		cmocka_unit_test(test_v2_other_families),
		cmocka_unit_test(test_v2_undefined_family),
		cmocka_unit_test(test_v2_tlvs),
		cmocka_unit_test(test_v2_bad_fixed),
		cmocka_unit_test(test_v2_max_len),
		cmocka_unit_test(test_not_proxy),
		cmocka_unit_test(test_v6_grammar),
		cmocka_unit_test(test_v4_grammar),
		cmocka_unit_test(test_reason_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
