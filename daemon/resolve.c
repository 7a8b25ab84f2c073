#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* What a lookup thread sends back: one datagram, so it arrives whole or not
 * at all. */
struct resolve_msg {
	int rc;
	unsigned n;
	char err[120];
	struct iketcpd_addr addrs[RESOLVE_MAX_ADDRS];
};

/* Owned by the thread alone. */
struct resolve_arg {
	int fd;
	uint16_t port;
	char host[IKETCPD_HOST_MAX];
};

struct resolve_job {
	struct loop *loop;
	struct watcher w;
	struct deferred dfr;
	resolve_cb cb;
	void *data;
};

/* "[v6]" as written in HOST:PORT becomes "v6". Returns -1 if too long. */
static int
strip_brackets(const char *host, char *h, size_t cap)
{
	size_t n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n >= cap)
		return -1;
	memcpy(h, host, n);
	h[n] = 0;
	return 0;
}

static void
set_port(struct iketcpd_addr *a, uint16_t port)
{
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

/* getaddrinfo() with flags; up to max IPv4/IPv6 results, in its order,
 * into out[0..*n). Returns 0 (*n >= 1) or the EAI_ code. */
static int
lookup(const char *h, uint16_t port, int flags, struct iketcpd_addr *out, unsigned max, unsigned *n)
{
	/* AI_ADDRCONFIG: no IPv6 answer on a host without IPv6, where a
	 * connect would only fail. */
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG | flags};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(h, NULL, &hints, &res);
	if (rc != 0)
		return rc;
	*n = 0;
	for (struct addrinfo *a = res; a && *n < max; a = a->ai_next) {
		if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
		    a->ai_addrlen > sizeof(out->ss))
			continue;
		struct iketcpd_addr *o = &out[*n];
		memset(o, 0, sizeof(*o));
		memcpy(&o->ss, a->ai_addr, a->ai_addrlen);
		o->len = a->ai_addrlen;
		set_port(o, port);
		/* SOCK_STREAM alone still lists an address once per protocol
		 * on some resolvers: keep each address once */
		int dup = 0;
		for (unsigned i = 0; i < *n && !dup; i++)
			dup = out[i].len == o->len && !memcmp(&out[i].ss, &o->ss, o->len);
		if (!dup)
			(*n)++;
	}
	freeaddrinfo(res);
	return *n ? 0 : EAI_FAIL;
}

int
resolve_numeric(const char *host, uint16_t port, struct iketcpd_addr *out)
{
	char h[IKETCPD_HOST_MAX];
	unsigned n;
	if (strip_brackets(host, h, sizeof(h)) < 0)
		return -1;
	return lookup(h, port, AI_NUMERICHOST, out, 1, &n) == 0 ? 0 : -1;
}

static void *
resolve_thread(void *p)
{
	struct resolve_arg *a = p;
	struct resolve_msg m;
	int rc;

	memset(&m, 0, sizeof(m));
	rc = lookup(a->host, a->port, 0, m.addrs, RESOLVE_MAX_ADDRS, &m.n);
	if (rc == 0) {
		m.rc = 0;
	} else {
		m.rc = -1;
		snprintf(m.err, sizeof(m.err), "%s",
			 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	}
	/* The loop may have cancelled: then nobody reads this, and the send
	 * fails quietly (MSG_NOSIGNAL: no SIGPIPE). */
	(void)send(a->fd, &m, sizeof(m), MSG_NOSIGNAL);
	close(a->fd);
	free(a);
	return NULL;
}

static void
job_free(void *p)
{
	free(p);
}

static void
job_end(struct resolve_job *j)
{
	watcher_stop(j->loop, &j->w);
	close(j->w.fd);
	j->w.fd = -1;
	/* never freed inside its own callback (loop.h) */
	loop_defer(j->loop, &j->dfr, job_free, j);
}

static void
job_cb(struct watcher *w, uint32_t ev)
{
	struct resolve_job *j = w->data;
	struct resolve_msg m;
	(void)ev;

	ssize_t n = recv(w->fd, &m, sizeof(m), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n != (ssize_t)sizeof(m) || (m.rc == 0 && (m.n < 1 || m.n > RESOLVE_MAX_ADDRS))) {
		/* cannot happen unless the thread died: say so, do not hang */
		m.rc = -1;
		snprintf(m.err, sizeof(m.err), "resolver thread gave no answer");
	}
	m.err[sizeof(m.err) - 1] = 0;
	if (m.rc != 0)
		m.n = 0;
	j->cb(j->data, m.rc, m.n ? m.addrs : NULL, m.n, m.err);
	job_end(j);
}

struct resolve_job *
resolve_start(struct loop *l, const char *host, uint16_t port, resolve_cb cb, void *data)
{
	struct resolve_job *j = calloc(1, sizeof(*j));
	struct resolve_arg *a = calloc(1, sizeof(*a));
	int sv[2] = {-1, -1};
	pthread_attr_t attr;
	int attr_ok = 0, err;

	if (!j || !a)
		goto fail_errno;
	if (strip_brackets(host, a->host, sizeof(a->host)) < 0) {
		errno = ENAMETOOLONG;
		goto fail_errno;
	}
	a->port = port;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		goto fail_errno;
	a->fd = sv[1];
	j->loop = l;
	j->cb = cb;
	j->data = data;
	j->w = (struct watcher){.fd = sv[0], .cb = job_cb, .data = j};
	if (watcher_start(l, &j->w, EPOLLIN) < 0)
		goto fail_errno;
	/* The thread inherits the caller's blocked signals (main.c blocks
	 * the ones its signalfd reads), so signals still reach the loop. A
	 * small stack: getaddrinfo and NSS need far less than the default. */
	err = pthread_attr_init(&attr);
	if (err == 0) {
		attr_ok = 1;
		err = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	}
	if (err == 0)
		err = pthread_attr_setstacksize(&attr, 256u << 10);
	pthread_t t;
	if (err == 0)
		err = pthread_create(&t, &attr, resolve_thread, a);
	if (attr_ok)
		pthread_attr_destroy(&attr);
	if (err != 0) {
		watcher_stop(l, &j->w);
		errno = err;
		goto fail_errno;
	}
	return j;

fail_errno:
	err = errno;
	if (sv[0] >= 0) {
		close(sv[0]);
		close(sv[1]);
	}
	free(a);
	free(j);
	errno = err;
	return NULL;
}

void
resolve_cancel(struct resolve_job *j)
{
	if (j)
		job_end(j);
}
