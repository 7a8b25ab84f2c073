/*
 * Where a client's connections go: the peer, or the HTTP proxy. Names are
 * looked up off the loop (resolve.h), IP literals never; connections use
 * the last address that resolved while a new lookup runs, and a failed
 * connect moves on to the name's next address (a broken IPv6 path next to
 * a working IPv4 one).
 */
#ifndef IKETCPD_TARGET_H
#define IKETCPD_TARGET_H

#include <stdint.h>

#include "config.h"
#include "loop.h"
#include "resolve.h"

struct target;

/* A lookup ended: t->have says whether an address is usable; err is the
 * resolver's text when it failed. */
typedef void target_done_fn(void *owner, struct target *t, const char *err);

struct target {
	struct loop *loop;
	const char *section; /* the config section, for logs */
	const char *what;    /* "peer" or "proxy", for logs */
	char host[IKETCPD_HOST_MAX];
	uint16_t port;
	struct iketcpd_addr addr; /* == addrs[cur]: what connections use */
	struct iketcpd_addr addrs[RESOLVE_MAX_ADDRS];
	unsigned naddrs, cur;
	int have;    /* addr is usable */
	int numeric; /* host is an IP literal */
	struct resolve_job *job;
	uint64_t done_ms; /* when the last lookup ended; 0 = none yet */
	target_done_fn *done;
	void *owner;
	uint64_t *resolves, *failures; /* counters */
};

/* Once, before target_set(). */
void target_init(struct target *t, struct loop *l, const char *section, const char *what,
		 target_done_fn *done, void *owner, uint64_t *resolves, uint64_t *failures);
/* (Re)sets t to host:port ("" = none), dropping what an older name resolved to. */
void target_set(struct target *t, const char *host, uint16_t port);
/* Starts a lookup unless one runs or host is an IP literal. */
void target_lookup(struct target *t);
/* A connection to t failed or broke: its name may point elsewhere now
 * (DNS-based failover, a dynamic address). At most every interval_ms. */
void target_refresh(struct target *t, uint32_t interval_ms);
/* A connect to address number idx failed: the next attempt uses the next
 * address, once per failed address however many connections failed on it. */
void target_failed(struct target *t, unsigned idx);
void target_stop(struct target *t);

#endif
