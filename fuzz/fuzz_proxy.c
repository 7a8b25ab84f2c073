/*
 * Target Functions: iketcp_proxy_parser_init, iketcp_proxy_parse,
 * iketcp_proxy_state_name (lib/proxy.c); iketcp_proxy_request;
 * iketcp_stream_sniff (lib/transport.c) on the same bytes, since both read
 * the first bytes a peer sends on a new connection.
 *
 * Input layout:
 *   byte 0      flags: bits 0-1 pick the head limit (0: default 8192,
 *               1: byte 1 + 1 (1..256), 2: byte 1 * 32 + 32, 3: 8192
 *               given explicitly); bit 2: also split at every position
 *               when the response is at most 512 bytes
 *   byte 1      limit parameter
 *   byte 2      number of chunk sizes K (taken mod 16)
 *   K bytes     chunk sizes (0 = an empty read), used in turn
 *   the rest    the proxy's response (and whatever tunnel bytes follow)
 *
 * Oracles:
 *   - a reference decoder written here with index arithmetic over the whole
 *     buffer (lines, not states) predicts the result: done with the head
 *     length, need more, non-2xx status, syntax error or too big;
 *   - the parser fed whole, fed in the given chunks (each chunk in its own
 *     exact heap allocation, so ASan catches a read past it) and, with
 *     bit 2, split in two at every position, all agree with it: same code,
 *     same status, same head length, same reason text;
 *   - on success exactly the bytes after the head are left in the cursor;
 *     on 0 the whole chunk was consumed; errors are sticky and consume
 *     nothing more; the reason is printable and NUL-terminated;
 *   - the request builder, given host/user/pass cut from the input, either
 *     refuses or writes exactly the documented lines: no CR or LF from the
 *     input ever reaches the output (no header injection).
 */
#include "harness.h"

#include "iketcp/proxy.h"
#include "iketcp/transport.h"

struct result {
	int rc;
	int status;
	size_t head; /* for rc == 1 */
	char reason[IKETCP_PROXY_REASON_MAX + 1];
};

/* ---- reference ---------------------------------------------------------------- */

static int
ref_text_ok(uint8_t c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/*
 * Decodes data[0..n) as a whole. Returns what the parser must report when
 * fed these bytes with limit max: 1 (and *head), 0, or an error code.
 */
static int
ref_parse(const uint8_t *d, size_t n, size_t max, int *status, size_t *head)
{
	static const char ver[] = "HTTP/1.";
	size_t lim = n < max ? n : max; /* bytes the parser may look at */
	size_t i;
	int st = 0;

	*status = 0;
	/* Status line: fixed part. */
	for (i = 0; i < 12; i++) {
		if (i >= lim)
			return n > max ? IKETCP_E_PROXY_TOOBIG : 0;
		uint8_t c = d[i];
		int ok;
		if (i < 7)
			ok = c == (uint8_t)ver[i];
		else if (i == 7)
			ok = c == '0' || c == '1';
		else if (i == 8)
			ok = c == ' ';
		else
			ok = c >= '0' && c <= '9' && !(i == 9 && c == '0');
		if (!ok) {
			*status = st;
			return IKETCP_E_PROXY_SYNTAX;
		}
		if (i >= 9)
			*status = st = st * 10 + (c - '0');
	}
	*status = st;
	/* Then lines: the rest of the status line, headers, the blank line. */
	int line = 0;     /* 0: status line rest, then header lines */
	size_t start = i; /* start of the current line's content */
	for (;; i++) {
		if (i >= lim)
			return n > max ? IKETCP_E_PROXY_TOOBIG : 0;
		uint8_t c = d[i];
		if (line == 0 && i == 12 && c != ' ' && c != '\r' && c != '\n')
			return IKETCP_E_PROXY_SYNTAX;
		size_t end;
		if (c == '\n') {
			end = i + 1;
		} else if (c == '\r') {
			if (i + 1 >= lim)
				return n > max ? IKETCP_E_PROXY_TOOBIG : 0;
			if (d[i + 1] != '\n')
				return IKETCP_E_PROXY_SYNTAX;
			end = i + 2;
		} else {
			if (!ref_text_ok(c))
				return IKETCP_E_PROXY_SYNTAX;
			continue;
		}
		/* A line [start, i) ended; the next starts at end. */
		if (line == 0) {
			if (st < 200 || st > 299)
				return IKETCP_E_PROXY_STATUS;
			line = 1;
		} else if (i == start) {
			*head = end;
			return 1;
		}
		start = end;
		i = end - 1;
	}
}

/* ---- the parser, fed in pieces --------------------------------------------------- */

static void
check_reason(const struct iketcp_proxy_parser *p)
{
	CHECK(p->reason_len <= IKETCP_PROXY_REASON_MAX);
	CHECK(p->reason[p->reason_len] == '\0');
	for (size_t i = 0; i < p->reason_len; i++)
		CHECK(p->reason[i] >= 0x20 && p->reason[i] < 0x7f);
}

/*
 * Feeds data in nl chunks of the given lengths (they add up to n), each in
 * its own exact allocation, stopping at the first non-zero result.
 */
static struct result
run(const uint8_t *data, size_t n, size_t max, const size_t *lens, size_t nl)
{
	struct iketcp_proxy_parser p;
	struct result r = {0};
	size_t off = 0;

	CHECK(iketcp_proxy_parser_init(&p, max) == IKETCP_OK);
	CHECK(strcmp(iketcp_proxy_state_name(p.state), "VERSION") == 0);
	for (size_t k = 0; k < nl; k++) {
		size_t len = lens[k];
		CHECK(len <= n - off);
		uint8_t *chunk = malloc(len ? len : 1);
		CHECK(chunk != NULL);
		if (len)
			memcpy(chunk, data + off, len);
		struct iketcp_cur c;
		iketcp_cur_init(&c, len ? chunk : NULL, len);
		int rc = iketcp_proxy_parse(&p, &c);
		check_rc_names(rc);
		check_reason(&p);
		CHECK(p.used <= p.max);
		if (rc == 0) {
			CHECK(iketcp_cur_left(&c) == 0);
			CHECK(p.state != IKETCP_PX_DONE && p.state != IKETCP_PX_FAILED);
			off += len;
			free(chunk);
			continue;
		}
		r.rc = rc;
		memcpy(r.reason, p.reason, sizeof(r.reason));
		size_t at = c.off;
		if (rc == 1) {
			CHECK(p.state == IKETCP_PX_DONE);
			r.head = off + c.off;
			CHECK(r.head == p.used);
			/* The surplus is exactly the rest of this chunk. */
			CHECK(iketcp_cur_left(&c) == len - c.off);
			CHECK(iketcp_proxy_parse(&p, &c) == 1 && c.off == at);
		} else {
			CHECK(rc == IKETCP_E_PROXY_STATUS || rc == IKETCP_E_PROXY_SYNTAX ||
			      rc == IKETCP_E_PROXY_TOOBIG);
			CHECK(p.state == IKETCP_PX_FAILED && p.err == rc);
			CHECK(iketcp_proxy_parse(&p, &c) == rc && c.off == at);
			if (rc == IKETCP_E_PROXY_STATUS)
				CHECK(p.status >= 100 && (p.status < 200 || p.status > 299));
		}
		free(chunk);
		break;
	}
	if (r.rc == 0)
		CHECK(off == n);
	r.status = p.status;
	return r;
}

static void
check_same(const struct result *a, const struct result *b)
{
	CHECK(a->rc == b->rc);
	CHECK(a->status == b->status);
	if (a->rc == 1)
		CHECK(a->head == b->head);
	if (a->rc == 1 || a->rc == IKETCP_E_PROXY_STATUS)
		CHECK(strcmp(a->reason, b->reason) == 0);
}

/* ---- request builder ---------------------------------------------------------------- */

static void
check_request(const uint8_t *data, size_t n)
{
	char host[64], user[32], pass[32], out[512];
	const char *parts[3] = {host, user, pass};
	size_t caps[3] = {sizeof(host), sizeof(user), sizeof(pass)};
	size_t at = 0;

	if (n < 3)
		return;
	uint16_t port = (uint16_t)(data[0] << 8 | data[1]);
	int auth = data[2] & 1;
	at = 3;
	for (int k = 0; k < 3; k++) {
		size_t j = 0;
		char *dst = (char *)(uintptr_t)parts[k];
		while (at < n && data[at] != 0 && j + 1 < caps[k])
			dst[j++] = (char)data[at++];
		dst[j] = '\0';
		at++;
	}
	long len = iketcp_proxy_request(out, sizeof(out), host, port, auth ? user : NULL,
					auth ? pass : NULL);
	check_rc_names(len < 0 ? (int)len : 0);
	if (len < 0) {
		CHECK(len == IKETCP_E_INVAL || len == IKETCP_E_SHORT);
		return;
	}
	CHECK(port != 0 && host[0] != '\0');
	CHECK((size_t)len <= sizeof(out));
	CHECK(memcmp(out, "CONNECT ", 8) == 0);
	CHECK(len >= 4 && memcmp(out + len - 4, "\r\n\r\n", 4) == 0);
	/* Every CR is followed by LF, every LF follows a CR; exactly 3 or 4 lines. */
	int lines = 0;
	for (long i = 0; i < len; i++) {
		if (out[i] == '\r') {
			CHECK(i + 1 < len && out[i + 1] == '\n');
			lines++;
		} else if (out[i] == '\n') {
			CHECK(i > 0 && out[i - 1] == '\r');
		} else {
			CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
		}
	}
	CHECK(lines == (auth ? 4 : 3));
	/* The same call with one byte less room fails cleanly. */
	CHECK(iketcp_proxy_request(out, (size_t)len - 1, host, port, auth ? user : NULL,
				   auth ? pass : NULL) == IKETCP_E_SHORT);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	uint8_t flags = data[0], param = data[1];
	size_t nsizes = data[2] % 16;
	if (size < 3 + nsizes)
		return 0;
	const uint8_t *sizes = data + 3;
	const uint8_t *resp = data + 3 + nsizes;
	size_t n = size - 3 - nsizes;
	size_t max;

	switch (flags & 3) {
	case 0:
		max = 0;
		break;
	case 1:
		max = (size_t)param + 1;
		break;
	case 2:
		max = (size_t)param * 32 + 32;
		break;
	default:
		max = IKETCP_PROXY_HEAD_MAX;
		break;
	}
	size_t eff = max ? max : IKETCP_PROXY_HEAD_MAX;

	/* Sniffing: only the first byte counts. */
	int kind = iketcp_stream_sniff(resp, n);
	if (n == 0)
		CHECK(kind == IKETCP_E_AGAIN);
	else
		CHECK(kind == (resp[0] == 0x16  ? IKETCP_STREAM_TLS
			       : resp[0] == 'I' ? IKETCP_STREAM_RFC9329
						: IKETCP_STREAM_OTHER));
	CHECK(strcmp(iketcp_stream_kind_name(kind), "unknown") != 0 || kind < 0);

	int ref_status = 0;
	size_t ref_head = 0;
	int ref = ref_parse(resp, n, eff, &ref_status, &ref_head);

	size_t one[1] = {n};
	struct result whole = run(resp, n, max, one, 1);
	CHECK(whole.rc == ref);
	CHECK(whole.status == ref_status);
	if (ref == 1)
		CHECK(whole.head == ref_head);
	if (nsizes) {
		/* The chunk sizes in turn (0 = an empty read) until n is covered. */
		size_t *lens = malloc((2 * n + 2 * nsizes + 4) * sizeof(*lens));
		size_t nl = 0, off = 0, k = 0, empties = 0;
		CHECK(lens != NULL);
		while (off < n) {
			size_t len = sizes[k++ % nsizes];
			if (len == 0 && ++empties > n + nsizes)
				len = n - off; /* an all-zero list must end */
			if (len > n - off)
				len = n - off;
			lens[nl++] = len;
			off += len;
		}
		if (nl == 0)
			lens[nl++] = 0;
		struct result chunked = run(resp, n, max, lens, nl);
		check_same(&whole, &chunked);
		free(lens);
	}
	if ((flags & 4) && n <= 512) {
		for (size_t cut = 0; cut <= n; cut++) {
			size_t two[2] = {cut, n - cut};
			struct result s2 = run(resp, n, max, two, 2);
			check_same(&whole, &s2);
		}
	}
	check_request(resp, n);
	return 0;
}
