/*
 * The stats socket's connections (the listener is main.c's).
 *
 * Protocol: a client connects and may write one request line within
 * STATSOCK_WAIT_MS: "stats" (every counter, "KIND NAME KEY VALUE" lines,
 * the answer of old), "status" (a line per server session and connection
 * and per client flow) or "prometheus" (the counters in the Prometheus text
 * format 0.0.4). A client that writes nothing gets the stats answer when
 * the wait ends, and at once when it shuts its side down (shutdown(SHUT_WR)
 * or EOF): readers written for the connect-and-read socket keep working.
 * An unknown request gets one "error: ..." line. The answer is written
 * non-blocking; a connection is closed once it is written or after
 * STATSOCK_DEADLINE_MS. At most STATSOCK_MAX connections are served at
 * once; beyond, the listener is not polled and the kernel's backlog holds
 * the rest.
 */
#ifndef IKETCPD_STATSOCK_H
#define IKETCPD_STATSOCK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "loop.h"

#define STATSOCK_MAX 16
#define STATSOCK_WAIT_MS 200
#define STATSOCK_DEADLINE_MS 5000
#define STATSOCK_REQ_MAX 64
/* status answers stop (with a "truncated" line) past this size */
#define STATSOCK_STATUS_MAX (8L << 20)
/* sections per mode in one answer (the config's limits are lower) */
#define STATSOCK_SECTIONS_MAX 64

enum statsock_req { STATSOCK_STATS, STATSOCK_STATUS, STATSOCK_PROMETHEUS };

/* Writes the answer to req into fp. */
typedef void statsock_render_fn(void *arg, enum statsock_req req, FILE *fp);

struct statsock;

struct statsock_conn {
	struct watcher w; /* fd -1: a free slot */
	struct timer t;   /* the request wait, then the deadline */
	struct statsock *ss;
	char req[STATSOCK_REQ_MAX];
	size_t req_len;
	char *out; /* the answer; NULL while reading the request */
	size_t out_len, out_off;
};

struct statsock {
	struct loop *loop;
	struct watcher *listener;
	statsock_render_fn *render;
	void *arg;
	struct statsock_conn c[STATSOCK_MAX];
	unsigned n;
};

/* Before the listener is polled: its callback is statsock_listen_cb with
 * data ss. */
void statsock_init(struct statsock *ss, struct loop *l, struct watcher *listener,
		   statsock_render_fn *render, void *arg);
void statsock_listen_cb(struct watcher *w, uint32_t ev);
/* Closes every connection (before the listener is closed). */
void statsock_close_all(struct statsock *ss);

struct server;
struct client;
/* The answer to req for these sections (NULL entries skipped). */
void statsock_render(enum statsock_req req, struct server *const *servers, int nservers,
		     struct client *const *clients, int nclients, FILE *fp);

/* The request a line names, or -1. */
int statsock_parse(const char *line, size_t len);

#endif
