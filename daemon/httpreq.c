/* The metrics listener's request head parser (httpreq.h). */
#include "httpreq.h"

#include <string.h>

#include "iketcp/cursor.h"

/* RFC 9110 5.6.2: token characters. */
static int
is_tchar(uint8_t c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field value bytes (RFC 9110 5.5): VCHAR, SP, HTAB, obs-text. */
static int
is_vbyte(uint8_t c)
{
	return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f);
}

/* The next line, without its CRLF or LF, as a cursor of its own. Returns 1,
 * or 0 when no LF is left (in is unchanged). A CR elsewhere stays in the
 * line (has_cr() refuses it). */
static int
next_line(struct iketcp_cur *in, struct iketcp_cur *line)
{
	struct iketcp_cur scan = *in;
	size_t n = 0;
	uint8_t c;

	while (iketcp_cur_get_u8(&scan, &c) == IKETCP_OK) {
		if (c == '\n') {
			struct iketcp_cur all;
			if (iketcp_cur_sub(in, n + 1, &all) != IKETCP_OK)
				return 0; /* cannot happen: scan read them */
			size_t body = n;
			if (n > 0) {
				struct iketcp_cur last = all;
				uint8_t p;
				if (iketcp_cur_skip(&last, n - 1) == IKETCP_OK &&
				    iketcp_cur_get_u8(&last, &p) == IKETCP_OK && p == '\r')
					body--;
			}
			return iketcp_cur_sub(&all, body, line) == IKETCP_OK ? 1 : 0;
		}
		n++;
	}
	return 0;
}

/* A bare CR anywhere in a line (the CR of CRLF was cut off already). */
static int
has_cr(struct iketcp_cur line)
{
	uint8_t c;

	while (iketcp_cur_get_u8(&line, &c) == IKETCP_OK)
		if (c == '\r')
			return 1;
	return 0;
}

/* Reads a run of bytes that pass ok(); returns its length. */
static size_t
take_run(struct iketcp_cur *c, int (*ok)(uint8_t), const uint8_t **start)
{
	size_t n = 0;
	uint8_t b;

	*start = iketcp_cur_ptr(c);
	for (;;) {
		struct iketcp_cur t = *c;
		if (iketcp_cur_get_u8(&t, &b) != IKETCP_OK || !ok(b))
			return n;
		*c = t;
		n++;
	}
}

static int
is_target_byte(uint8_t c)
{
	return c >= 0x21 && c <= 0x7e;
}

static int
expect(struct iketcp_cur *c, const char *s)
{
	size_t n = strlen(s);
	const uint8_t *p;
	struct iketcp_cur t = *c;

	if (iketcp_cur_take(&t, n, &p) != IKETCP_OK || memcmp(p, s, n) != 0)
		return 0;
	*c = t;
	return 1;
}

static int
get_digit(struct iketcp_cur *c, int *d)
{
	uint8_t b;
	struct iketcp_cur t = *c;

	if (iketcp_cur_get_u8(&t, &b) != IKETCP_OK || b < '0' || b > '9')
		return 0;
	*c = t;
	*d = b - '0';
	return 1;
}

struct reqline {
	int method; /* 0 GET, 1 HEAD, 2 another token */
	int metrics;
	int major, minor;
};

/* Returns 0 with *rl filled, or the status to answer (400). */
static int
parse_request_line(struct iketcp_cur line, struct reqline *rl)
{
	const uint8_t *m, *t;
	size_t mlen = take_run(&line, is_tchar, &m);

	if (mlen == 0 || !expect(&line, " "))
		return 400;
	rl->method = mlen == 3 && !memcmp(m, "GET", 3)    ? 0
		     : mlen == 4 && !memcmp(m, "HEAD", 4) ? 1
							  : 2;
	size_t tlen = take_run(&line, is_target_byte, &t);
	if (tlen == 0 || t[0] != '/' || !expect(&line, " "))
		return 400;
	size_t plen = 0;
	while (plen < tlen && t[plen] != '?')
		plen++;
	rl->metrics = plen == 8 && !memcmp(t, "/metrics", 8);
	if (!expect(&line, "HTTP/") || !get_digit(&line, &rl->major) || !expect(&line, ".") ||
	    !get_digit(&line, &rl->minor) || iketcp_cur_left(&line) != 0)
		return 400;
	return 0;
}

/* Returns 1 when the header line names Host, 0 for another header, or -1
 * for a line that is no header. */
static int
parse_header(struct iketcp_cur line)
{
	const uint8_t *name, *v;
	size_t nlen = take_run(&line, is_tchar, &name);

	if (nlen == 0 || !expect(&line, ":"))
		return -1;
	(void)take_run(&line, is_vbyte, &v);
	if (iketcp_cur_left(&line) != 0)
		return -1;
	return nlen == 4 && (name[0] | 0x20) == 'h' && (name[1] | 0x20) == 'o' &&
	       (name[2] | 0x20) == 's' && (name[3] | 0x20) == 't';
}

/* 0: the bytes before the first LF can still be a request line; else 400.
 * Only the first line: what follows it is judged once it is a line, so
 * that more bytes never change a decision already made. */
static int
partial_ok(struct iketcp_cur in)
{
	uint8_t c;
	size_t i = 0;

	while (iketcp_cur_get_u8(&in, &c) == IKETCP_OK && c != '\n') {
		if (i++ == 0 ? !is_tchar(c) : (c < 0x20 && c != '\r' && c != '\t') || c == 0x7f)
			return 400;
	}
	return 0;
}

static int
decide(struct httpreq *req, int status, size_t len)
{
	req->status = status;
	req->len = len;
	return 1;
}

int
httpreq_parse(const uint8_t *buf, size_t len, size_t max, struct httpreq *req)
{
	struct iketcp_cur in, line;
	struct reqline rl;
	int hosts = 0, rc;

	memset(req, 0, sizeof(*req));
	iketcp_cur_init(&in, buf, len < max ? len : max);
	if (partial_ok(in) != 0)
		return decide(req, 400, 0);
	rc = next_line(&in, &line);
	if (rc == 0)
		return len >= max ? decide(req, 431, 0) : 0;
	if (has_cr(line) || parse_request_line(line, &rl) != 0)
		return decide(req, 400, 0);
	req->head = rl.method == 1;
	if (rl.major != 1)
		return decide(req, 505, 0);
	for (;;) {
		rc = next_line(&in, &line);
		if (rc == 0)
			return len >= max ? decide(req, 431, 0) : 0;
		if (has_cr(line))
			return decide(req, 400, 0);
		if (iketcp_cur_left(&line) == 0)
			break;
		int h = parse_header(line);
		if (h < 0)
			return decide(req, 400, 0); /* also obs-fold: it starts with a blank */
		hosts += h;
	}
	size_t end = in.off;
	/* RFC 9112 3.2: exactly one Host in HTTP/1.1 */
	if ((rl.minor >= 1 && hosts != 1) || hosts > 1)
		return decide(req, 400, end);
	if (!rl.metrics)
		return decide(req, 404, end);
	if (rl.method == 2)
		return decide(req, 405, end);
	return decide(req, 200, end);
}
