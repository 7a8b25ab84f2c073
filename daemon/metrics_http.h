/*
 * metrics-listen: a minimal HTTP/1.x server for Prometheus scrapers.
 *
 * GET (or HEAD) /metrics answers with the stats socket's Prometheus text
 * (the same render function, statsock.h); every answer ends the
 * connection (Connection: close). What a request may be, and which
 * status any other one gets, is httpreq.h's.
 *
 * The port is reachable from the network, so everything a peer can make
 * it hold is bounded: a request head of at most HTTPREQ_HEAD_MAX bytes, one
 * deadline of METRICS_HTTP_DEADLINE_MS for the whole connection (reading
 * the head, writing the answer, reading what the peer still sends before
 * it closes), and at most METRICS_HTTP_MAX connections at once; a
 * connection beyond that is accepted and closed at once, and counted.
 * Answers are written non-blocking from the event loop, so a scraper that
 * does not read delays nobody else.
 *
 * The counters are process-wide and survive re-binds; the stats socket
 * prints them with the global values.
 */
#ifndef IKETCPD_METRICS_HTTP_H
#define IKETCPD_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "httpreq.h"
#include "loop.h"
#include "statsock.h"

#define METRICS_HTTP_MAX 16
#define METRICS_HTTP_DEADLINE_MS 5000

struct metrics_http;

struct metrics_http_conn {
	struct watcher w; /* fd -1: a free slot */
	struct timer t;   /* the deadline */
	struct metrics_http *m;
	uint8_t req[HTTPREQ_HEAD_MAX];
	size_t req_len;
	char *out; /* the answer; NULL while reading the request */
	size_t out_len, out_off;
	int draining; /* answered and shut down: reading until the peer closes */
};

struct metrics_http {
	struct loop *loop;
	struct watcher listener; /* fd -1: not listening */
	struct iketcpd_addr addr;
	statsock_render_fn *render;
	void *arg;
	struct metrics_http_conn c[METRICS_HTTP_MAX];
	unsigned n;
};

/* Listens on addr. Returns 0, or -1 with errno set (nothing open). */
int metrics_http_open(struct metrics_http *m, struct loop *l, const struct iketcpd_addr *addr,
		      statsock_render_fn *render, void *arg);
/* Closes the listener and every connection; safe on a closed one. */
void metrics_http_close(struct metrics_http *m);
static inline int
metrics_http_is_open(const struct metrics_http *m)
{
	return m->listener.fd >= 0;
}

/* The counters: "global iketcpd metrics_http_* N" lines, and the same as
 * Prometheus metrics. */
void metrics_http_print_stats(FILE *fp);
/* To 0: a worker forked by the supervisor must not count its answers again. */
void metrics_http_reset_stats(void);
void metrics_http_prometheus(FILE *fp);

#endif
