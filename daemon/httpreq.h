/*
 * The request head parser of the metrics listener (metrics_http.h): a pure
 * function over the bytes received so far, so that fuzz/fuzz_http.c runs
 * exactly what the listener runs.
 *
 * What it takes (RFC 9112): a request line "METHOD SP TARGET SP HTTP/1.x",
 * header lines "name: value", and an empty line; lines end in CRLF or a bare
 * LF. Every byte is read through the bounded cursor. It only decides which
 * answer a head gets; nothing is copied out of it.
 *
 * The answers: 200 for GET or HEAD of /metrics (a query string is ignored),
 * 404 for another path, 405 for another method on /metrics, 505 for an HTTP
 * version other than 1.x, 431 when no head ended within the size limit,
 * 400 for everything else that is not such a head: a bad request line, a
 * bad header line, a folded header line (obs-fold), a bare CR, an HTTP/1.1
 * request without exactly one Host header, or a target that is not an
 * absolute path. Bytes that no request line can start with (a TLS
 * ClientHello, binary junk) are answered with 400 at once, without
 * waiting for a line end.
 */
#ifndef IKETCPD_HTTPREQ_H
#define IKETCPD_HTTPREQ_H

#include <stddef.h>
#include <stdint.h>

/* Largest request head the listener reads (request line, headers, the
 * empty line): a scraper's head is a few hundred bytes. */
#define HTTPREQ_HEAD_MAX 4096

struct httpreq {
	int status; /* the answer: 200, 400, 404, 405, 431 or 505 */
	int head;   /* the method was HEAD: the answer has no body */
	size_t len; /* bytes of the head, empty line included; 0 when it did not end */
};

/*
 * Looks at the first len bytes received on a connection, of which at most
 * max are a head. Returns 0 when more bytes are needed to decide (only
 * while len < max), else 1 with *req filled.
 */
int httpreq_parse(const uint8_t *buf, size_t len, size_t max, struct httpreq *req);

#endif
