/*
 * Name resolution that never blocks the event loop.
 *
 * getaddrinfo() can wait for seconds (a slow or unreachable DNS server,
 * retries per resolv.conf). One iketcpd process serves many server and
 * client sections from one loop, so a blocking lookup for one client's peer
 * would stall every tunnel of the process. A lookup therefore runs in a
 * short-lived detached thread that owns everything it touches (its copy of
 * the name and one end of a socketpair); the loop watches the other end.
 * Cancelling closes the loop's end: the thread's answer then goes nowhere,
 * and no memory is shared, so nothing can be used after it is freed.
 *
 * Threads are bounded by the callers: a client section has at most one
 * lookup in flight per name (peer, proxy).
 */
#ifndef IKETCPD_RESOLVE_H
#define IKETCPD_RESOLVE_H

#include <stdint.h>

#include "config.h"
#include "loop.h"

struct resolve_job;

/* Addresses kept per answer: a name with an IPv6 and an IPv4 address (or
 * several of each) gives the caller something to try when one fails. */
#define RESOLVE_MAX_ADDRS 8

/* rc 0: addrs[0..n) (n >= 1) are the addresses getaddrinfo() gave, in its
 * order, ports set. rc -1: n is 0 and err says why (gai_strerror, or a
 * system error). The job is freed after the callback returns. */
typedef void (*resolve_cb)(void *data, int rc, const struct iketcpd_addr *addrs, unsigned n,
			   const char *err);

/* Starts resolving host (a name, an IP literal, or "[v6]") for port.
 * Returns the job, or NULL with errno set (no thread or socket could be
 * made; nothing was started). cb runs later from the loop, never from
 * inside resolve_start(). */
struct resolve_job *resolve_start(struct loop *l, const char *host, uint16_t port, resolve_cb cb,
				  void *data);

/* Stops a job: cb is not called. Safe from any callback. */
void resolve_cancel(struct resolve_job *j);

/* Resolves host only if it is an IP literal (no lookup, never blocks).
 * Returns 0 and fills *out, or -1 when host is a name. */
int resolve_numeric(const char *host, uint16_t port, struct iketcpd_addr *out);

#endif
