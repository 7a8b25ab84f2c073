/*
 * An HTTP CONNECT exchange with a web proxy on an open transport, for the
 * client's connection set-up: the request goes out, the answer is parsed
 * by libiketcp's proxy parser, and bytes that came behind the answer are
 * handed back for the tunnel (RFC 9329 or TLS) that follows.
 */
#ifndef IKETCPD_CONNECT_H
#define IKETCPD_CONNECT_H

#include <stddef.h>
#include <stdint.h>

#include "iketcp/iketcp.h"

/* A CONNECT request: request line, Host, Proxy-Authorization, blank line. */
#define CONNECT_REQ_MAX 2048

struct http_connect {
	char req[CONNECT_REQ_MAX];
	size_t len, off; /* request bytes, of which sent */
	struct iketcp_proxy_parser parser;
};

/* A new exchange for host:port; auth is "user:password" or "". Returns
 * NULL with err set (out of memory, a request that does not fit). */
struct http_connect *http_connect_new(const char *host, uint16_t port, const char *auth, char *err,
				      size_t errlen);

/* The transport interest while the exchange runs. */
unsigned http_connect_interest(const struct http_connect *hc, const struct iketcp_transport *tr);

enum http_connect_result {
	HC_AGAIN,   /* wait for the transport */
	HC_DONE,    /* the tunnel is open: *rest, *nrest are the bytes behind the answer */
	HC_IOERR,   /* the transport failed: *rc */
	HC_REFUSED, /* the proxy said no, closed, or answered nonsense: err says which */
};

/* Sends what is left of the request and reads the answer into buf. */
enum http_connect_result http_connect_step(struct http_connect *hc, struct iketcp_transport *tr,
					   uint8_t *buf, size_t cap, const uint8_t **rest,
					   size_t *nrest, int *rc, char *err, size_t errlen);

#endif
