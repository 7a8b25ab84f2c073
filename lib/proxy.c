/*
 * HTTP CONNECT client: request builder and incremental response parser.
 * See include/iketcp/proxy.h for the accepted grammar.
 *
 * The parser is a byte-at-a-time state machine over the bounded cursor. It
 * keeps no copy of the response (only the status and a short printable copy
 * of the reason phrase), so it needs no buffer, survives any split of the
 * input, and stops on the exact byte that ends the head: the rest of the
 * caller's input is tunnel data and stays in the cursor.
 */
#include "iketcp/proxy.h"

#include <stdio.h>
#include <string.h>

#include "iketcp/cursor.h"
#include "base64_internal.h"

/* ---- request ------------------------------------------------------------- */

/* One piece of the byte sequence to encode. */
struct piece {
	const char *p;
	size_t n;
};

/* A multiple of 3: chunks of it encode to exactly the encoding of the whole. */
#define B64_CHUNK 48

/* Appends the base64 (RFC 4648 §4, padded) of the concatenated pieces. */
static int
put_base64(struct iketcp_wcur *w, const struct piece *pc, size_t np)
{
	uint8_t in[B64_CHUNK];
	char out[IKETCP_B64_LEN(B64_CHUNK) + 1];
	size_t k = 0;

	for (size_t i = 0; i < np; i++) {
		for (size_t j = 0; j < pc[i].n; j++) {
			in[k++] = (uint8_t)pc[i].p[j];
			if (k < sizeof(in))
				continue;
			if (iketcp_wcur_put_bytes(w, out, iketcp__b64_encode(out, in, k)) !=
			    IKETCP_OK)
				return IKETCP_E_SHORT;
			k = 0;
		}
	}
	if (k && iketcp_wcur_put_bytes(w, out, iketcp__b64_encode(out, in, k)) != IKETCP_OK)
		return IKETCP_E_SHORT;
	return IKETCP_OK;
}

static int
put_str(struct iketcp_wcur *w, const char *s)
{
	return iketcp_wcur_put_bytes(w, s, strlen(s));
}

/* A byte allowed in a reg-name or IPv4 address (RFC 3986 §3.2.2). */
static int
name_byte_ok(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("-._~!$&'()*+,;=%", c) != NULL;
}

/* A byte allowed in an IPv6 address literal (hex, ':', '.' for v4-mapped). */
static int
v6_byte_ok(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
	       c == ':' || c == '.';
}

static int
has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* Writes host:port as an authority (IPv6 in brackets). */
static int
put_authority(struct iketcp_wcur *w, const char *host, size_t hlen, int v6, const char *port)
{
	if ((v6 && put_str(w, "[") != IKETCP_OK) ||
	    iketcp_wcur_put_bytes(w, host, hlen) != IKETCP_OK ||
	    (v6 && put_str(w, "]") != IKETCP_OK) || put_str(w, ":") != IKETCP_OK ||
	    put_str(w, port) != IKETCP_OK)
		return IKETCP_E_SHORT;
	return IKETCP_OK;
}

long
iketcp_proxy_request(char *out, size_t cap, const char *host, uint16_t port, const char *user,
		     const char *pass)
{
	struct iketcp_wcur w;
	char portstr[8];
	size_t hlen;
	int v6;

	if (!out || !host || port == 0 || (!user) != (!pass))
		return IKETCP_E_INVAL;
	hlen = strlen(host);
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen > 255)
		return IKETCP_E_INVAL;
	v6 = memchr(host, ':', hlen) != NULL;
	for (size_t i = 0; i < hlen; i++)
		if (!(v6 ? v6_byte_ok((unsigned char)host[i])
			 : name_byte_ok((unsigned char)host[i])))
			return IKETCP_E_INVAL;
	/* RFC 7617 §2: the user-id cannot contain a colon; no CTLs in either. */
	if (user && (strchr(user, ':') || has_ctl(user) || has_ctl(pass)))
		return IKETCP_E_INVAL;
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);

	iketcp_wcur_init(&w, out, cap);
	if (put_str(&w, "CONNECT ") != IKETCP_OK ||
	    put_authority(&w, host, hlen, v6, portstr) != IKETCP_OK ||
	    put_str(&w, " HTTP/1.1\r\nHost: ") != IKETCP_OK ||
	    put_authority(&w, host, hlen, v6, portstr) != IKETCP_OK ||
	    put_str(&w, "\r\n") != IKETCP_OK)
		return IKETCP_E_SHORT;
	if (user) {
		const struct piece cred[3] = {
			{user, strlen(user)},
			{":", 1},
			{pass, strlen(pass)},
		};
		if (put_str(&w, "Proxy-Authorization: Basic ") != IKETCP_OK ||
		    put_base64(&w, cred, 3) != IKETCP_OK || put_str(&w, "\r\n") != IKETCP_OK)
			return IKETCP_E_SHORT;
	}
	if (put_str(&w, "\r\n") != IKETCP_OK)
		return IKETCP_E_SHORT;
	return (long)w.off;
}

/* ---- response parser ----------------------------------------------------- */

static const char http_version[] = "HTTP/1."; /* then '0' or '1' */
#define HTTP_VERSION_LEN 7

int
iketcp_proxy_parser_init(struct iketcp_proxy_parser *p, size_t max_head)
{
	if (!p || max_head > IKETCP_PROXY_HEAD_MAX)
		return IKETCP_E_INVAL;
	memset(p, 0, sizeof(*p));
	p->state = IKETCP_PX_VERSION;
	p->max = max_head ? max_head : IKETCP_PROXY_HEAD_MAX;
	return IKETCP_OK;
}

static int
px_fail(struct iketcp_proxy_parser *p, int err)
{
	p->state = IKETCP_PX_FAILED;
	p->err = err;
	return err;
}

/* Field content (RFC 9110 §5.5, RFC 9112 §4): HTAB, SP, VCHAR, obs-text. */
static int
text_byte_ok(uint8_t c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* A line (status line or header) ended: the next state. */
static int
px_line_end(struct iketcp_proxy_parser *p)
{
	switch (p->state) {
	case IKETCP_PX_REASON:
		if (p->status < 200 || p->status > 299)
			return px_fail(p, IKETCP_E_PROXY_STATUS);
		p->state = IKETCP_PX_LINE;
		return 0;
	case IKETCP_PX_HEADER:
		p->state = IKETCP_PX_LINE;
		return 0;
	case IKETCP_PX_LINE:
		p->state = IKETCP_PX_DONE; /* the blank line */
		return 1;
	case IKETCP_PX_VERSION:
	case IKETCP_PX_SP:
	case IKETCP_PX_STATUS:
	case IKETCP_PX_DONE:
	case IKETCP_PX_FAILED:
		break;
	}
	return px_fail(p, IKETCP_E_PROXY_SYNTAX);
}

/* Consumes one byte of the head. Returns 0 (go on), 1 (done) or an error. */
static int
px_byte(struct iketcp_proxy_parser *p, uint8_t c)
{
	if (p->cr) {
		/* A CR ends a line only together with an LF. */
		if (c != '\n')
			return px_fail(p, IKETCP_E_PROXY_SYNTAX);
		p->cr = 0;
		return px_line_end(p);
	}
	switch (p->state) {
	case IKETCP_PX_VERSION:
		if (p->pos < HTTP_VERSION_LEN ? c != (uint8_t)http_version[p->pos]
					      : c != '0' && c != '1')
			return px_fail(p, IKETCP_E_PROXY_SYNTAX);
		if (++p->pos > HTTP_VERSION_LEN)
			p->state = IKETCP_PX_SP;
		return 0;
	case IKETCP_PX_SP:
		if (c != ' ')
			return px_fail(p, IKETCP_E_PROXY_SYNTAX);
		p->state = IKETCP_PX_STATUS;
		p->pos = 0;
		return 0;
	case IKETCP_PX_STATUS:
		/* 3DIGIT; a first digit 0 is no status class. */
		if (c < '0' || c > '9' || (p->pos == 0 && c == '0'))
			return px_fail(p, IKETCP_E_PROXY_SYNTAX);
		p->status = p->status * 10 + (c - '0');
		if (++p->pos == 3)
			p->state = IKETCP_PX_REASON;
		return 0;
	case IKETCP_PX_REASON:
		if (p->pos == 3) {
			/* Right after the digits: a space, or the end of the line. */
			p->pos = 4;
			if (c == ' ')
				return 0;
			if (c == '\r') {
				p->cr = 1;
				return 0;
			}
			if (c == '\n')
				return px_line_end(p);
			return px_fail(p, IKETCP_E_PROXY_SYNTAX);
		}
		if (c == '\r') {
			p->cr = 1;
			return 0;
		}
		if (c == '\n')
			return px_line_end(p);
		if (!text_byte_ok(c))
			return px_fail(p, IKETCP_E_PROXY_SYNTAX);
		if (p->reason_len < IKETCP_PROXY_REASON_MAX) {
			p->reason[p->reason_len++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
			p->reason[p->reason_len] = '\0';
		}
		return 0;
	case IKETCP_PX_LINE:
	case IKETCP_PX_HEADER:
		if (c == '\r') {
			p->cr = 1;
			return 0;
		}
		if (c == '\n')
			return px_line_end(p);
		if (!text_byte_ok(c))
			return px_fail(p, IKETCP_E_PROXY_SYNTAX);
		p->state = IKETCP_PX_HEADER;
		return 0;
	case IKETCP_PX_DONE:
		return 1;
	case IKETCP_PX_FAILED:
		return p->err;
	}
	return px_fail(p, IKETCP_E_PROXY_SYNTAX);
}

int
iketcp_proxy_parse(struct iketcp_proxy_parser *p, struct iketcp_cur *in)
{
	if (p->state == IKETCP_PX_FAILED)
		return p->err;
	while (p->state != IKETCP_PX_DONE) {
		uint8_t c;
		if (iketcp_cur_left(in) == 0)
			return 0;
		if (p->used >= p->max)
			return px_fail(p, IKETCP_E_PROXY_TOOBIG);
		if (iketcp_cur_get_u8(in, &c) != IKETCP_OK)
			return 0;
		p->used++;
		int rc = px_byte(p, c);
		if (rc != 0)
			return rc;
	}
	return 1;
}

const char *
iketcp_proxy_state_name(enum iketcp_proxy_state s)
{
	switch (s) {
	case IKETCP_PX_VERSION:
		return "VERSION";
	case IKETCP_PX_SP:
		return "SP";
	case IKETCP_PX_STATUS:
		return "STATUS";
	case IKETCP_PX_REASON:
		return "REASON";
	case IKETCP_PX_LINE:
		return "LINE";
	case IKETCP_PX_HEADER:
		return "HEADER";
	case IKETCP_PX_DONE:
		return "DONE";
	case IKETCP_PX_FAILED:
		return "FAILED";
	}
	return "UNKNOWN";
}
