/* The stats socket's connections: request, answer, bounds (statsock.h). */
#include "statsock.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iketcp/iketcp.h"
#include "answer.h"
#include "client.h"
#include "metrics_http.h"
#include "server.h"

static void
conn_close(struct statsock_conn *c)
{
	struct statsock *ss = c->ss;
	if (c->w.fd < 0)
		return;
	timer_stop(ss->loop, &c->t);
	watcher_stop(ss->loop, &c->w);
	close(c->w.fd);
	c->w.fd = -1;
	free(c->out);
	c->out = NULL;
	/* a slot is free again: take the next waiting reader */
	if (ss->n-- == STATSOCK_MAX && ss->listener->fd >= 0)
		(void)watcher_set(ss->loop, ss->listener, EPOLLIN);
}

int
statsock_parse(const char *line, size_t len)
{
	static const char *const names[] = {
		[STATSOCK_STATS] = "stats",
		[STATSOCK_STATUS] = "status",
		[STATSOCK_PROMETHEUS] = "prometheus",
	};
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	while (len && line[0] == ' ') {
		line++;
		len--;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && !memcmp(line, names[i], len))
			return (int)i;
	return -1;
}

static void
conn_write(struct statsock_conn *c)
{
	if (answer_send(c->w.fd, c->out, c->out_len, &c->out_off) == 0) {
		(void)watcher_set(c->ss->loop, &c->w, EPOLLOUT);
		return;
	}
	conn_close(c); /* all sent, or the reader went away */
}

/* req < 0: the request was not understood. */
static void
conn_answer(struct statsock_conn *c, int req)
{
	struct statsock *ss = c->ss;
	FILE *fp = open_memstream(&c->out, &c->out_len);
	if (!fp) {
		conn_close(c);
		return;
	}
	if (req < 0)
		fprintf(fp, "error: unknown request (one of: stats, status, prometheus)\n");
	else
		ss->render(ss->arg, (enum statsock_req)req, fp);
	if (fclose(fp) != 0 || !c->out) {
		conn_close(c);
		return;
	}
	c->out_off = 0;
	timer_start(ss->loop, &c->t, STATSOCK_DEADLINE_MS);
	conn_write(c);
}

static void
conn_cb(struct watcher *w, uint32_t ev)
{
	struct statsock_conn *c = w->data;
	(void)ev;
	if (c->w.fd < 0)
		return;
	if (c->out) {
		conn_write(c);
		return;
	}
	for (;;) {
		ssize_t n = answer_recv(c->w.fd, c->req, sizeof(c->req), &c->req_len);
		if (n == ANSWER_AGAIN)
			return;
		if (n < 0) {
			conn_close(c);
			return;
		}
		if (n == 0) {
			/* SHUT_WR: an empty request is the stats answer of old */
			conn_answer(c, c->req_len ? statsock_parse(c->req, c->req_len)
						  : STATSOCK_STATS);
			return;
		}
		char *nl = memchr(c->req, '\n', c->req_len);
		if (nl) {
			conn_answer(c, statsock_parse(c->req, (size_t)(nl - c->req)));
			return;
		}
		if (c->req_len == sizeof(c->req)) {
			conn_answer(c, -1); /* no line this long is a request */
			return;
		}
	}
}

static void
conn_timer_cb(struct timer *t)
{
	struct statsock_conn *c = t->data;
	if (c->out) {
		conn_close(c); /* the deadline: the reader does not read */
		return;
	}
	/* no line: a reader that only reads (the socket of old), or a request
	 * without its newline */
	conn_answer(c, c->req_len ? statsock_parse(c->req, c->req_len) : STATSOCK_STATS);
}

void
statsock_init(struct statsock *ss, struct loop *l, struct watcher *listener,
	      statsock_render_fn *render, void *arg)
{
	memset(ss, 0, sizeof(*ss));
	ss->loop = l;
	ss->listener = listener;
	ss->render = render;
	ss->arg = arg;
	for (int i = 0; i < STATSOCK_MAX; i++) {
		ss->c[i].w.fd = -1;
		ss->c[i].ss = ss;
		timer_init(&ss->c[i].t, conn_timer_cb, &ss->c[i]);
	}
}

void
statsock_listen_cb(struct watcher *w, uint32_t ev)
{
	struct statsock *ss = w->data;
	(void)ev;
	while (ss->n < STATSOCK_MAX) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct statsock_conn *c = NULL;
		for (int i = 0; i < STATSOCK_MAX && !c; i++)
			if (ss->c[i].w.fd < 0)
				c = &ss->c[i];
		c->w = (struct watcher){.fd = fd, .cb = conn_cb, .data = c};
		c->req_len = 0;
		c->out = NULL;
		if (watcher_start(ss->loop, &c->w, EPOLLIN) < 0 ||
		    timer_start(ss->loop, &c->t, STATSOCK_WAIT_MS) < 0) {
			watcher_stop(ss->loop, &c->w);
			close(fd);
			c->w.fd = -1;
			continue;
		}
		ss->n++;
	}
	/* full: the backlog waits until a slot is free (conn_close) */
	(void)watcher_set(ss->loop, w, 0);
}

void
statsock_close_all(struct statsock *ss)
{
	if (!ss->loop)
		return;
	for (int i = 0; i < STATSOCK_MAX; i++)
		conn_close(&ss->c[i]);
}

/* Process-wide values of the stats answer: "global iketcpd KEY VALUE". */
static void
print_global(FILE *fp)
{
	fprintf(fp, "global iketcpd mem_used %zu\n", iketcp_mem_used());
	fprintf(fp, "global iketcpd mem_limit %zu\n", iketcp_mem_limit());
	fprintf(fp, "global iketcpd mem_refused %llu\n", (unsigned long long)iketcp_mem_refused());
	metrics_http_print_stats(fp);
}

static void
prom_global(FILE *fp)
{
	fprintf(fp, "# HELP iketcpd_build_info iketcpd's version\n"
		    "# TYPE iketcpd_build_info gauge\n"
		    "iketcpd_build_info{version=\"");
	ctr_prom_label(IKETCP_VERSION_STRING, fp);
	fprintf(fp, "\"} 1\n");
	fprintf(fp,
		"# HELP iketcpd_mem_used_bytes bytes of send-queue and assembly buffers in use\n"
		"# TYPE iketcpd_mem_used_bytes gauge\n"
		"iketcpd_mem_used_bytes %zu\n"
		"# HELP iketcpd_mem_limit_bytes max-memory: the bound of those buffers\n"
		"# TYPE iketcpd_mem_limit_bytes gauge\n"
		"iketcpd_mem_limit_bytes %zu\n"
		"# HELP iketcpd_mem_refused_total buffer allocations refused by max-memory\n"
		"# TYPE iketcpd_mem_refused_total counter\n"
		"iketcpd_mem_refused_total %llu\n",
		iketcp_mem_used(), iketcp_mem_limit(), (unsigned long long)iketcp_mem_refused());
	metrics_http_prometheus(fp);
}

/* Metric-major over every section of a mode (servers, or else clients): a
 * metric's samples must follow its HELP and TYPE lines together. */
static void
prom_mode(struct server *const *servers, struct client *const *clients, int n, FILE *fp)
{
	const char *names[STATSOCK_SECTIONS_MAX];
	const void *st[STATSOCK_SECTIONS_MAX], *gp[STATSOCK_SECTIONS_MAX];
	union {
		struct server_gauges s;
		struct client_gauges c;
	} g[STATSOCK_SECTIONS_MAX];
	size_t k = 0;

	for (int i = 0; i < n && k < STATSOCK_SECTIONS_MAX; i++) {
		if (servers && servers[i]) {
			names[k] = server_name(servers[i]);
			st[k] = server_stats(servers[i]);
			g[k].s = server_gauges(servers[i]);
		} else if (!servers && clients[i]) {
			names[k] = client_name(clients[i]);
			st[k] = client_stats(clients[i]);
			g[k].c = client_gauges(clients[i]);
		} else {
			continue;
		}
		gp[k] = &g[k];
		k++;
	}
	if (k)
		ctr_prometheus(servers ? &server_counters : &client_counters, k, names, st, gp, fp);
}

void
statsock_render(enum statsock_req req, struct server *const *servers, int nservers,
		struct client *const *clients, int nclients, FILE *fp)
{
	switch (req) {
	case STATSOCK_STATS:
		fprintf(fp, "iketcpd %s\n", IKETCP_VERSION_STRING);
		print_global(fp);
		for (int i = 0; i < nservers; i++)
			if (servers[i])
				server_print_stats(servers[i], fp);
		for (int i = 0; i < nclients; i++)
			if (clients[i])
				client_print_stats(clients[i], fp);
		break;
	case STATSOCK_STATUS:
		fprintf(fp, "iketcpd %s status\n", IKETCP_VERSION_STRING);
		for (int i = 0; i < nservers; i++)
			if (servers[i])
				server_print_status(servers[i], fp, STATSOCK_STATUS_MAX);
		for (int i = 0; i < nclients; i++)
			if (clients[i])
				client_print_status(clients[i], fp, STATSOCK_STATUS_MAX);
		break;
	case STATSOCK_PROMETHEUS:
		prom_global(fp);
		prom_mode(servers, NULL, nservers, fp);
		prom_mode(NULL, clients, nclients, fp);
		break;
	}
}
