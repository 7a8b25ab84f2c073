/*
 * Target Function: httpreq_parse (daemon/httpreq.c), the request head
 * parser of iketcpd's metrics-listen port, which anyone who reaches that
 * port feeds.
 *
 * Input layout:
 *   byte 0      bit 0 set: max = byte 1 + 1 (small limits, so the 431 path
 *               and the limit edge are reached); clear: HTTPREQ_HEAD_MAX.
 *               bit 1 set: "GET /metrics HTTP/1.1\r\nHost: x\r\n" is put
 *               in front of the rest, so mutations are not all spent on it
 *   byte 1      the small max
 *   the rest    the bytes the peer sent
 *
 * Oracles:
 *   - every call reads an exact heap copy of what it is given (ASan sees a
 *     read past it);
 *   - prefixes agree with the whole (the listener calls the parser after
 *     every read): an undecided input has only undecided prefixes; from
 *     the first decided prefix on, every longer one decides the same
 *     status, HEAD flag and head length. All prefixes up to 512 bytes, a
 *     sample beyond;
 *   - the answer is consistent: status one of 200 400 404 405 431 505;
 *     a head length only with 200, 404, 405 or 400 (the Host rule), within
 *     the input and the limit, ending in LF LF or LF CR LF; 0 (undecided)
 *     only below the limit; 431 only when no head ended within the limit;
 *   - a small reference decides 200 independently: it must agree that the
 *     request line is "GET|HEAD /metrics[?...] HTTP/1.d" and the head ends
 *     where the parser says.
 */
#include "harness.h"

#include "httpreq.h"

#define ALL_PREFIXES 512
#define SAMPLES 64

static int
call(const uint8_t *p, size_t n, size_t max, struct httpreq *r)
{
	uint8_t *copy = malloc(n ? n : 1);
	CHECK(copy);
	if (n)
		memcpy(copy, p, n);
	int rc = httpreq_parse(copy, n, max, r);
	free(copy);
	CHECK(rc == 0 || rc == 1);
	return rc;
}

/* The offset just past the first empty line, or 0. */
static size_t
ref_head_end(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < n && p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static int
ref_is_metrics_line(const uint8_t *p, size_t n, int *head)
{
	size_t off;

	if (n >= 4 && !memcmp(p, "GET ", 4)) {
		off = 4;
		*head = 0;
	} else if (n >= 5 && !memcmp(p, "HEAD ", 5)) {
		off = 5;
		*head = 1;
	} else {
		return 0;
	}
	if (n - off < 8 || memcmp(p + off, "/metrics", 8))
		return 0;
	off += 8;
	if (off < n && p[off] == '?')
		while (off < n && p[off] != ' ')
			off++;
	return n - off >= 9 && !memcmp(p + off, " HTTP/1.", 8) && p[off + 8] >= '0' &&
	       p[off + 8] <= '9';
}

static void
check_one(const uint8_t *p, size_t n, size_t max, int rc, const struct httpreq *r)
{
	size_t lim = n < max ? n : max;

	if (rc == 0) {
		CHECK(n < max);
		return;
	}
	CHECK(r->status == 200 || r->status == 400 || r->status == 404 || r->status == 405 ||
	      r->status == 431 || r->status == 505);
	CHECK(r->head == 0 || r->head == 1);
	if (r->len) {
		CHECK(r->status == 200 || r->status == 404 || r->status == 405 || r->status == 400);
		CHECK(r->len <= lim && r->len >= 2);
		CHECK(ref_head_end(p, lim) == r->len);
	} else {
		CHECK(r->status != 200 && r->status != 404 && r->status != 405);
	}
	if (r->status == 431)
		CHECK(n >= max && ref_head_end(p, max) == 0);
	if (r->status == 200) {
		size_t eol = 0;
		while (eol < lim && p[eol] != '\n')
			eol++;
		size_t ll = eol > 0 && p[eol - 1] == '\r' ? eol - 1 : eol;
		int head = -1;
		CHECK(ref_is_metrics_line(p, ll, &head));
		CHECK(head == r->head);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char start[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
	size_t max = HTTPREQ_HEAD_MAX;
	struct httpreq whole, r;

	if (size < 2)
		return 0;
	if (data[0] & 1)
		max = (size_t)data[1] + 1;
	size_t pre = data[0] & 2 ? sizeof(start) - 1 : 0;
	size_t n = pre + size - 2;
	uint8_t *buf = malloc(n ? n : 1);
	CHECK(buf);
	memcpy(buf, start, pre);
	memcpy(buf + pre, data + 2, size - 2);

	int rc = call(buf, n, max, &whole);
	check_one(buf, n, max, rc, &whole);

	int decided = 0;
	struct httpreq first = {0};
	for (size_t k = 0; k <= n; k++) {
		if (k > ALL_PREFIXES && k != n && (k % ((n / SAMPLES) + 1)) != 0)
			continue;
		int prc = call(buf, k, max, &r);
		check_one(buf, k, max, prc, &r);
		if (rc == 0)
			CHECK(prc == 0);
		if (decided) {
			CHECK(prc == 1 && r.status == first.status && r.head == first.head &&
			      r.len == first.len);
		} else if (prc == 1) {
			decided = 1;
			first = r;
		}
	}
	if (rc == 1)
		CHECK(decided && whole.status == first.status && whole.len == first.len);
	free(buf);
	return 0;
}
