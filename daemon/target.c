#include "target.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static int
same_addrs(const struct iketcpd_addr *a, unsigned na, const struct iketcpd_addr *b, unsigned nb)
{
	if (na != nb)
		return 0;
	for (unsigned i = 0; i < na; i++)
		if (a[i].len != b[i].len || memcmp(&a[i].ss, &b[i].ss, a[i].len))
			return 0;
	return 1;
}

static void
lookup_done(void *data, int rc, const struct iketcpd_addr *addrs, unsigned n, const char *err)
{
	struct target *t = data;
	char as[64], was[64], more[48] = "";

	t->job = NULL;
	t->done_ms = loop_now(t->loop);
	if (rc == 0 && !(t->have && same_addrs(addrs, n, t->addrs, t->naddrs))) {
		/* a new answer starts from its first address; the same answer
		 * keeps the one that worked last */
		if (n > 1)
			snprintf(more, sizeof(more), " (and %u more address%s)", n - 1,
				 n > 2 ? "es" : "");
		iketcpd_addr_str(&addrs[0], as, sizeof(as));
		if (!t->have)
			log_info("%s: %s %s is %s%s", t->section, t->what, t->host, as, more);
		else
			log_info("%s: %s %s is now %s%s (was %s)", t->section, t->what, t->host, as,
				 more, iketcpd_addr_str(&t->addr, was, sizeof(was)));
		memcpy(t->addrs, addrs, n * sizeof(*addrs));
		t->naddrs = n;
		t->cur = 0;
		t->addr = addrs[0];
	}
	if (rc == 0) {
		(*t->resolves)++;
		t->have = 1;
	} else {
		(*t->failures)++;
		if (t->have)
			log_warn("%s: cannot resolve %s %s again: %s; still using %s", t->section,
				 t->what, t->host, err, iketcpd_addr_str(&t->addr, as, sizeof(as)));
	}
	t->done(t->owner, t, err);
}

void
target_init(struct target *t, struct loop *l, const char *section, const char *what,
	    target_done_fn *done, void *owner, uint64_t *resolves, uint64_t *failures)
{
	memset(t, 0, sizeof(*t));
	t->loop = l;
	t->section = section;
	t->what = what;
	t->done = done;
	t->owner = owner;
	t->resolves = resolves;
	t->failures = failures;
}

void
target_stop(struct target *t)
{
	resolve_cancel(t->job);
	t->job = NULL;
}

void
target_lookup(struct target *t)
{
	if (t->numeric || t->job || !t->host[0])
		return;
	t->job = resolve_start(t->loop, t->host, t->port, lookup_done, t);
	if (!t->job)
		log_err("%s: cannot start a lookup of %s: %s", t->section, t->host,
			strerror(errno));
}

void
target_refresh(struct target *t, uint32_t interval_ms)
{
	if (t->have && !t->numeric && loop_now(t->loop) - t->done_ms >= interval_ms)
		target_lookup(t);
}

void
target_failed(struct target *t, unsigned idx)
{
	char as[64];
	if (!t->have || t->naddrs < 2 || idx != t->cur)
		return;
	t->cur = (t->cur + 1) % t->naddrs;
	t->addr = t->addrs[t->cur];
	log_info("%s: %s %s: next attempt to address %u of %u, %s", t->section, t->what, t->host,
		 t->cur + 1, t->naddrs, iketcpd_addr_str(&t->addr, as, sizeof(as)));
}

void
target_set(struct target *t, const char *host, uint16_t port)
{
	target_stop(t);
	t->have = t->numeric = 0;
	t->naddrs = t->cur = 0;
	t->done_ms = 0;
	memset(&t->addr, 0, sizeof(t->addr));
	snprintf(t->host, sizeof(t->host), "%s", host);
	t->port = port;
	if (host[0] && resolve_numeric(host, port, &t->addr) == 0) {
		t->have = t->numeric = 1;
		t->addrs[0] = t->addr;
		t->naddrs = 1;
	}
}
