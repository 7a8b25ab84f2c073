/*
 * HTTP CONNECT client (RFC 9110 §9.3.6, RFC 9112), for reaching an RFC 9329
 * responder through a web proxy (checklist A14: "an HTTP CONNECT proxy may
 * be used with TLS").
 *
 * Two pure pieces, no sockets:
 *  - iketcp_proxy_request() writes the request
 *      CONNECT host:port HTTP/1.1\r\n
 *      Host: host:port\r\n
 *      [Proxy-Authorization: Basic base64(user:pass)\r\n]
 *      \r\n
 *  - struct iketcp_proxy_parser reads the response incrementally, through
 *    the bounded cursor, in whatever pieces the socket delivers. It reads
 *    exactly up to the end of the response head and stops there: whatever
 *    follows in the caller's input belongs to the tunnel (the TLS or
 *    RFC 9329 stream) and is left unread in the cursor.
 *
 * Accepted: "HTTP/1.0" or "HTTP/1.1", one space, three digits, then a space
 * and a reason phrase or the end of the line; header lines are not
 * interpreted (Content-Length and Transfer-Encoding of a 2xx answer to
 * CONNECT are ignored, RFC 9110 §9.3.6); lines end in CRLF or a bare LF
 * (RFC 9112 §2.2). Any 2xx status opens the tunnel; any other status
 * (1xx included: interim answers are not expected for CONNECT) is an error
 * that carries the status and the reason phrase.
 */
#ifndef IKETCP_PROXY_H
#define IKETCP_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "iketcp/cursor.h"
#include "iketcp/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Default and largest response head (status line + headers + blank line). */
#define IKETCP_PROXY_HEAD_MAX 8192
/* Bytes of the reason phrase kept for logs (printable ASCII only). */
#define IKETCP_PROXY_REASON_MAX 64

/*
 * Writes the CONNECT request for host:port to out (not NUL-terminated).
 * host is a DNS name, an IPv4 address or an IPv6 address (with or without
 * brackets; it is written in brackets). user and pass are both NULL (no
 * authentication) or both set (Basic authentication, RFC 7617).
 * Returns the request length (> 0); IKETCP_E_SHORT (cap too small: nothing
 * useful in out); IKETCP_E_INVAL (empty host, port 0, a byte in host that
 * is not allowed in an authority, a ':' in user, a control byte in user or
 * pass, or only one of them given).
 */
long IKETCP_WUR iketcp_proxy_request(char *out, size_t cap, const char *host, uint16_t port,
				     const char *user, const char *pass);

enum iketcp_proxy_state {
	IKETCP_PX_VERSION, /* "HTTP/1." + digit */
	IKETCP_PX_SP,      /* the space before the status */
	IKETCP_PX_STATUS,  /* three digits */
	IKETCP_PX_REASON,  /* space + reason phrase, to the end of the line */
	IKETCP_PX_LINE,    /* at the start of a header line (or the blank line) */
	IKETCP_PX_HEADER,  /* inside a header line */
	IKETCP_PX_DONE,    /* 2xx and the head ended: the tunnel is open */
	IKETCP_PX_FAILED,  /* sticky error */
};

struct iketcp_proxy_parser {
	enum iketcp_proxy_state state;
	int err;           /* the sticky error in FAILED */
	size_t max;        /* head size limit */
	size_t used;       /* head bytes consumed */
	uint8_t pos;       /* bytes matched in VERSION / STATUS */
	uint8_t cr;        /* a CR was seen and an LF must follow */
	int status;        /* 100..999 once the status line is read, else 0 */
	size_t reason_len; /* bytes in reason */
	char reason[IKETCP_PROXY_REASON_MAX + 1]; /* NUL-terminated */
};

/*
 * Initialises p. max_head 0 means IKETCP_PROXY_HEAD_MAX; larger values are
 * refused. Returns IKETCP_OK or IKETCP_E_INVAL.
 */
int IKETCP_WUR iketcp_proxy_parser_init(struct iketcp_proxy_parser *p, size_t max_head);

/*
 * Consumes response bytes from in. Returns
 *   1  the head ended with a 2xx status: the tunnel is open and in is
 *      positioned on the first tunnel byte (iketcp_cur_left(in) surplus
 *      bytes belong to the tunnel);
 *   0  all of in was consumed and the head is not complete: read more;
 *   IKETCP_E_PROXY_STATUS  non-2xx status (p->status, p->reason), known
 *      as soon as the status line is complete;
 *   IKETCP_E_PROXY_SYNTAX  not an HTTP/1.x response, or a NUL or stray CR;
 *   IKETCP_E_PROXY_TOOBIG  the head exceeds the limit.
 * Errors are sticky and consume nothing further; where in stops after an
 * error is unspecified. After 1, further calls return 1 and consume nothing.
 */
int IKETCP_WUR iketcp_proxy_parse(struct iketcp_proxy_parser *p, struct iketcp_cur *in);

/* Returns the static name of a parser state, for logs. */
const char *iketcp_proxy_state_name(enum iketcp_proxy_state s);

#ifdef __cplusplus
}
#endif
#endif
