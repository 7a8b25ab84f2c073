/*
 * Unit tests for lib/proxy.c: the HTTP CONNECT request bytes, and the
 * incremental response parser on 2xx / 407 / garbage / oversize heads /
 * surplus tunnel bytes, fed whole, split at every position, in three
 * pieces, and byte by byte: the result, the status and the surplus must
 * not depend on how the input was cut.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "iketcp/proxy.h"

/* ---- request ------------------------------------------------------------------ */

static void
expect_request(const char *host, uint16_t port, const char *user, const char *pass,
	       const char *want)
{
	char out[512];
	long n = iketcp_proxy_request(out, sizeof(out), host, port, user, pass);

	assert_int_equal(n, (long)strlen(want));
	assert_memory_equal(out, want, (size_t)n);
}

static void
test_request_plain(void **state)
{
	(void)state;
	expect_request("vpn.example.com", 443, NULL, NULL,
		       "CONNECT vpn.example.com:443 HTTP/1.1\r\n"
		       "Host: vpn.example.com:443\r\n"
		       "\r\n");
	expect_request("192.0.2.1", 4500, NULL, NULL,
		       "CONNECT 192.0.2.1:4500 HTTP/1.1\r\nHost: 192.0.2.1:4500\r\n\r\n");
}

static void
test_request_ipv6(void **state)
{
	(void)state;
	const char *want = "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n";
	expect_request("2001:db8::1", 443, NULL, NULL, want);
	expect_request("[2001:db8::1]", 443, NULL, NULL, want);
}

/* RFC 7617 §2's example credentials. */
static void
test_request_basic_auth(void **state)
{
	(void)state;
	expect_request("gw.example", 443, "Aladdin", "open sesame",
		       "CONNECT gw.example:443 HTTP/1.1\r\n"
		       "Host: gw.example:443\r\n"
		       "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"
		       "\r\n");
	/* Padding with one and two '=' and none. */
	expect_request(
		"h", 1, "a", "", /* "a:" */
		"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nProxy-Authorization: Basic YTo=\r\n\r\n");
	expect_request(
		"h", 1, "a", "b", /* "a:b" */
		"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nProxy-Authorization: Basic YTpi\r\n\r\n");
	expect_request("h", 65535, "ab", "cd", /* "ab:cd" */
		       "CONNECT h:65535 HTTP/1.1\r\nHost: h:65535\r\n"
		       "Proxy-Authorization: Basic YWI6Y2Q=\r\n\r\n");
	expect_request(
		"h", 1, "", "x", /* ":x" */
		"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nProxy-Authorization: Basic Ong=\r\n\r\n");
	/* 111 bytes: encoded in more than one piece, across the pieces of the credentials. */
	char user[41], pass[71];
	memset(user, 'u', 40);
	user[40] = '\0';
	memset(pass, 'p', 70);
	pass[70] = '\0';
	expect_request(
		"h", 1, user, pass,
		"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\nProxy-Authorization: Basic "
		"dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dTpwcHBwcHBwcHBwcHBwcHBw"
		"cHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw"
		"\r\n\r\n");
}

static void
test_request_invalid(void **state)
{
	char out[256];

	(void)state;
	memset(out, 0x5a, sizeof(out));
	assert_int_equal(iketcp_proxy_request(out, sizeof(out), "", 443, NULL, NULL),
			 IKETCP_E_INVAL);
	assert_int_equal(iketcp_proxy_request(out, sizeof(out), "h", 0, NULL, NULL),
			 IKETCP_E_INVAL);
	assert_int_equal(iketcp_proxy_request(out, sizeof(out), NULL, 1, NULL, NULL),
			 IKETCP_E_INVAL);
	/* Header injection through the host, user or password. */
	assert_int_equal(iketcp_proxy_request(out, sizeof(out), "h\r\nX: y", 1, NULL, NULL),
			 IKETCP_E_INVAL);
	assert_int_equal(iketcp_proxy_request(out, sizeof(out), "a b", 1, NULL, NULL),
			 IKETCP_E_INVAL);
	assert_int_equal(iketcp_proxy_request(out, sizeof(out), "h/x", 1, NULL, NULL),
			 IKETCP_E_INVAL);
	assert_int_equal(iketcp_proxy_request(out, sizeof(out), "2001:db8::g", 1, NULL, NULL),
			 IKETCP_E_INVAL);
	assert_int_equal(iketcp_proxy_request(out, sizeof(out), "[]", 1, NULL, NULL),
			 IKETCP_E_INVAL);
	assert_int_equal(iketcp_proxy_request(out, sizeof(out), "h", 1, "u:v", "p"),
			 IKETCP_E_INVAL);
	assert_int_equal(iketcp_proxy_request(out, sizeof(out), "h", 1, "u\n", "p"),
			 IKETCP_E_INVAL);
	assert_int_equal(iketcp_proxy_request(out, sizeof(out), "h", 1, "u", "p\r"),
			 IKETCP_E_INVAL);
	assert_int_equal(iketcp_proxy_request(out, sizeof(out), "h", 1, "u", NULL), IKETCP_E_INVAL);
	assert_int_equal(iketcp_proxy_request(out, sizeof(out), "h", 1, NULL, "p"), IKETCP_E_INVAL);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal((uint8_t)out[i], 0x5a);
}

/* Every buffer one byte too small fails; nothing is written past cap. */
static void
test_request_short(void **state)
{
	char out[300];
	long full;

	(void)state;
	full = iketcp_proxy_request(out, sizeof(out), "gw.example", 443, "user", "password");
	assert_true(full > 0);
	for (long cap = 0; cap < full; cap++) {
		memset(out, 0x5a, sizeof(out));
		assert_int_equal(iketcp_proxy_request(out, (size_t)cap, "gw.example", 443, "user",
						      "password"),
				 IKETCP_E_SHORT);
		for (size_t i = (size_t)cap; i < sizeof(out); i++)
			assert_int_equal((uint8_t)out[i], 0x5a);
	}
	assert_int_equal(
		iketcp_proxy_request(out, (size_t)full, "gw.example", 443, "user", "password"),
		full);
}

/* ---- parser -------------------------------------------------------------------------- */

struct outcome {
	int rc;      /* final return */
	int status;  /* p.status */
	size_t used; /* head bytes consumed (only meaningful for rc == 1) */
	char reason[IKETCP_PROXY_REASON_MAX + 1];
};

/*
 * Feeds s[0..n) cut at the offsets in cuts[] (ascending, may be empty) and
 * returns the outcome. On success the surplus is checked to be exactly the
 * bytes after the head: the cursor of the piece that ended the head stops
 * on its first byte and nothing before it is lost.
 */
static struct outcome
feed(const char *s, size_t n, const size_t *cuts, size_t ncuts, size_t max)
{
	struct iketcp_proxy_parser p;
	struct outcome o = {0};
	size_t start = 0;

	assert_int_equal(iketcp_proxy_parser_init(&p, max), IKETCP_OK);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n;
		struct iketcp_cur c;
		iketcp_cur_init(&c, s + start, end - start);
		int rc = iketcp_proxy_parse(&p, &c);
		if (rc == 0) {
			assert_int_equal(iketcp_cur_left(&c), 0);
		} else {
			o.rc = rc;
			o.status = p.status;
			memcpy(o.reason, p.reason, sizeof(o.reason));
			if (rc == 1) {
				o.used = start + c.off;
				assert_int_equal(o.used, p.used);
				/* Sticky: a second call consumes nothing. */
				size_t off = c.off;
				assert_int_equal(iketcp_proxy_parse(&p, &c), 1);
				assert_int_equal(c.off, off);
			} else {
				assert_int_equal(iketcp_proxy_parse(&p, &c), rc);
				assert_int_equal(p.state, IKETCP_PX_FAILED);
			}
			return o;
		}
		start = end;
	}
	o.rc = 0;
	o.status = p.status;
	return o;
}

/* Checks s against (rc, status, head length) whole, at every 2- and 3-way
 * split (3-way only for short inputs), and byte by byte. */
static void
check_all_splits(const char *s, size_t n, size_t max, int rc, int status, size_t head)
{
	struct outcome o = feed(s, n, NULL, 0, max);
	assert_int_equal(o.rc, rc);
	assert_int_equal(o.status, status);
	if (rc == 1)
		assert_int_equal(o.used, head);
	for (size_t i = 0; i <= n; i++) {
		size_t cut[1] = {i};
		struct outcome q = feed(s, n, cut, 1, max);
		assert_int_equal(q.rc, rc);
		assert_int_equal(q.status, status);
		if (rc == 1)
			assert_int_equal(q.used, head);
		assert_string_equal(q.reason, o.reason);
	}
	if (n <= 160)
		for (size_t i = 0; i <= n; i++)
			for (size_t j = i; j <= n; j++) {
				size_t cut[2] = {i, j};
				struct outcome q = feed(s, n, cut, 2, max);
				assert_int_equal(q.rc, rc);
				assert_int_equal(q.status, status);
				if (rc == 1)
					assert_int_equal(q.used, head);
			}
	size_t *cuts = tu_xmalloc((n + 1) * sizeof(*cuts));
	for (size_t i = 0; i < n; i++)
		cuts[i] = i + 1;
	struct outcome b = feed(s, n, cuts, n ? n - 1 : 0, max);
	free(cuts);
	assert_int_equal(b.rc, rc);
	assert_int_equal(b.status, status);
	if (rc == 1)
		assert_int_equal(b.used, head);
}

#define CHECK_SPLITS(lit, max, rc, status, head)                                                   \
	check_all_splits((lit), sizeof(lit) - 1, (max), (rc), (status), (head))

static void
test_parse_200(void **state)
{
	(void)state;
	static const char r[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	CHECK_SPLITS(r, 0, 1, 200, sizeof(r) - 1);
	static const char r10[] = "HTTP/1.0 200 OK\r\nProxy-Agent: test\r\nVia: 1.1 p\r\n\r\n";
	CHECK_SPLITS(r10, 0, 1, 200, sizeof(r10) - 1);
	/* No reason phrase at all, with and without the space (RFC 9112 §4). */
	CHECK_SPLITS("HTTP/1.1 200\r\n\r\n", 0, 1, 200, 16);
	CHECK_SPLITS("HTTP/1.1 200 \r\n\r\n", 0, 1, 200, 17);
	/* Bare LF line ends (RFC 9112 §2.2 lets a recipient accept them). */
	CHECK_SPLITS("HTTP/1.1 200 OK\nA: b\n\n", 0, 1, 200, 22);
}

static void
test_parse_any_2xx(void **state)
{
	(void)state;
	CHECK_SPLITS("HTTP/1.1 204 No Content\r\n\r\n", 0, 1, 204, 27);
	CHECK_SPLITS("HTTP/1.1 299 X\r\n\r\n", 0, 1, 299, 18);
	/* Content-Length on a 2xx CONNECT answer is ignored (RFC 9110 §9.3.6). */
	static const char cl[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nIKETC";
	CHECK_SPLITS(cl, 0, 1, 200, sizeof(cl) - 1 - 5);
}

static void
test_parse_407(void **state)
{
	(void)state;
	static const char r[] = "HTTP/1.1 407 Proxy Authentication Required\r\n"
				"Proxy-Authenticate: Basic realm=\"x\"\r\n\r\n";
	CHECK_SPLITS(r, 0, IKETCP_E_PROXY_STATUS, 407, 0);
	struct outcome o = feed(r, sizeof(r) - 1, NULL, 0, 0);
	assert_string_equal(o.reason, "Proxy Authentication Required");
	assert_int_equal(iketcp_err_category(IKETCP_E_PROXY_STATUS), IKETCP_CAT_PEER);
	/* Known as soon as the status line ends: no need for the headers. */
	CHECK_SPLITS("HTTP/1.1 403 Forbidden\r\n", 0, IKETCP_E_PROXY_STATUS, 403, 0);
	CHECK_SPLITS("HTTP/1.0 502 Bad Gateway\n", 0, IKETCP_E_PROXY_STATUS, 502, 0);
	CHECK_SPLITS("HTTP/1.1 100 Continue\r\n\r\n", 0, IKETCP_E_PROXY_STATUS, 100, 0);
	CHECK_SPLITS("HTTP/1.1 300 x\r\n", 0, IKETCP_E_PROXY_STATUS, 300, 0);
	CHECK_SPLITS("HTTP/1.1 199 x\r\n", 0, IKETCP_E_PROXY_STATUS, 199, 0);
	/* Non-printable reason bytes are kept as '?' only. */
	static const char ob[] = "HTTP/1.1 500 caf\xc3\xa9\tok\r\n";
	o = feed(ob, sizeof(ob) - 1, NULL, 0, 0);
	assert_int_equal(o.rc, IKETCP_E_PROXY_STATUS);
	assert_string_equal(o.reason, "caf???ok");
}

static void
test_parse_garbage(void **state)
{
	(void)state;
	const char *bad[] = {
		"SSH-2.0-OpenSSH_9.2\r\n",
		"http/1.1 200 OK\r\n\r\n",
		"HTTP/2 200\r\n\r\n",
		"HTTP/1.2 200 OK\r\n\r\n",
		"HTTP/1.1  200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 020 OK\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200OK\r\n\r\n",
		"HTTP/1.1 200 OK\rX\n\r\n",
		"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\r\n",
		"\x16\x03\x01\x02\x00\x01",
		"\r\n",
	};
	for (size_t i = 0; i < TU_ARRAY_LEN(bad); i++) {
		size_t n = strlen(bad[i]);
		struct outcome o = feed(bad[i], n, NULL, 0, 0);
		if (o.rc != IKETCP_E_PROXY_SYNTAX)
			fail_msg("input %zu: rc %d", i, o.rc);
		check_all_splits(bad[i], n, 0, IKETCP_E_PROXY_SYNTAX, o.status, 0);
	}
	/* NUL and other control bytes in a header or the reason. */
	static const char nul[] = "HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n";
	CHECK_SPLITS(nul, 0, IKETCP_E_PROXY_SYNTAX, 200, 0);
	static const char ctl[] = "HTTP/1.1 200 O\x01K\r\n\r\n";
	CHECK_SPLITS(ctl, 0, IKETCP_E_PROXY_SYNTAX, 200, 0);
	static const char del[] = "HTTP/1.1 200 OK\r\nA\x7f: b\r\n\r\n";
	CHECK_SPLITS(del, 0, IKETCP_E_PROXY_SYNTAX, 200, 0);
}

static void
test_parse_incomplete(void **state)
{
	(void)state;
	CHECK_SPLITS("", 0, 0, 0, 0);
	CHECK_SPLITS("HTTP/1.", 0, 0, 0, 0);
	CHECK_SPLITS("HTTP/1.1 200 OK\r\n", 0, 0, 200, 0);
	CHECK_SPLITS("HTTP/1.1 200 OK\r\nA: b\r\n\r", 0, 0, 200, 0);
}

/* A head of exactly the limit passes; one byte more fails at that byte. */
static void
test_parse_oversize(void **state)
{
	(void)state;
	const size_t lim = 200;
	char buf[IKETCP_PROXY_HEAD_MAX + 64];
	static const char line[] = "HTTP/1.1 200 OK\r\nX: ";
	size_t pre = sizeof(line) - 1;

	/* line + filler + "\r\n\r\n" == lim */
	memcpy(buf, line, pre);
	memset(buf + pre, 'a', lim - pre - 4);
	memcpy(buf + lim - 4, "\r\n\r\nTUNNEL", 10);
	check_all_splits(buf, lim + 6, lim, 1, 200, lim);
	/* One more filler byte. */
	memset(buf + pre, 'a', lim - pre - 3);
	memcpy(buf + lim - 3, "\r\n\r\n", 4);
	check_all_splits(buf, lim + 1, lim, IKETCP_E_PROXY_TOOBIG, 200, 0);
	/* Default limit: 8 KiB of headers. */
	size_t big = IKETCP_PROXY_HEAD_MAX + 10;
	memcpy(buf, line, pre);
	memset(buf + pre, 'b', big - pre);
	struct outcome o = feed(buf, big, NULL, 0, 0);
	assert_int_equal(o.rc, IKETCP_E_PROXY_TOOBIG);
	/* Endless status line. */
	memcpy(buf, "HTTP/1.1 200 ", 13);
	memset(buf + 13, 'r', big - 13);
	o = feed(buf, big, NULL, 0, 0);
	assert_int_equal(o.rc, IKETCP_E_PROXY_TOOBIG);
	/* Bad limits. */
	struct iketcp_proxy_parser p;
	assert_int_equal(iketcp_proxy_parser_init(&p, IKETCP_PROXY_HEAD_MAX + 1), IKETCP_E_INVAL);
	assert_int_equal(iketcp_proxy_parser_init(NULL, 0), IKETCP_E_INVAL);
}

/* Whatever follows the blank line is the tunnel's: handed back untouched. */
static void
test_parse_surplus(void **state)
{
	struct iketcp_proxy_parser p;
	struct iketcp_cur c;
	static const char r[] = "HTTP/1.1 200 OK\r\n\r\nIKETCP\x00\x02\x16\x03";
	size_t head = 19;

	(void)state;
	assert_int_equal(iketcp_proxy_parser_init(&p, 0), IKETCP_OK);
	iketcp_cur_init(&c, r, sizeof(r) - 1);
	assert_int_equal(iketcp_proxy_parse(&p, &c), 1);
	assert_int_equal(c.off, head);
	assert_int_equal(iketcp_cur_left(&c), sizeof(r) - 1 - head);
	assert_memory_equal(iketcp_cur_ptr(&c), "IKETCP\x00\x02\x16\x03", 10);
	assert_int_equal(p.state, IKETCP_PX_DONE);
	assert_string_equal(iketcp_proxy_state_name(p.state), "DONE");
	CHECK_SPLITS(r, 0, 1, 200, head);
	/* A second response glued behind the first is tunnel data too. */
	static const char two[] = "HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
	CHECK_SPLITS(two, 0, 1, 200, 19);
}

static void
test_state_names(void **state)
{
	(void)state;
	for (int s = IKETCP_PX_VERSION; s <= IKETCP_PX_FAILED; s++)
		assert_string_not_equal(iketcp_proxy_state_name((enum iketcp_proxy_state)s),
					"UNKNOWN");
	assert_string_equal(iketcp_proxy_state_name((enum iketcp_proxy_state)99), "UNKNOWN");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_plain),      cmocka_unit_test(test_request_ipv6),
		cmocka_unit_test(test_request_basic_auth), cmocka_unit_test(test_request_invalid),
		cmocka_unit_test(test_request_short),      cmocka_unit_test(test_parse_200),
		cmocka_unit_test(test_parse_any_2xx),      cmocka_unit_test(test_parse_407),
		cmocka_unit_test(test_parse_garbage),      cmocka_unit_test(test_parse_incomplete),
		cmocka_unit_test(test_parse_oversize),     cmocka_unit_test(test_parse_surplus),
		cmocka_unit_test(test_state_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
