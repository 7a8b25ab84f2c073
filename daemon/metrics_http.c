/* metrics-listen: the listener and its connections (metrics_http.h). */
#include "metrics_http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "answer.h"
#include "log.h"
#include "net.h"

static const int codes[] = {200, 400, 404, 405, 431, 505};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

static struct {
	uint64_t answered[NCODES];
	uint64_t refused;  /* beyond METRICS_HTTP_MAX */
	uint64_t timeouts; /* closed at the deadline */
} ctr;

static const char *
reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Bad Request";
	}
}

static void
count(int status)
{
	for (size_t i = 0; i < NCODES; i++)
		if (codes[i] == status)
			ctr.answered[i]++;
}

static void
conn_close(struct metrics_http_conn *c)
{
	struct metrics_http *m = c->m;

	if (c->w.fd < 0)
		return;
	timer_stop(m->loop, &c->t);
	watcher_stop(m->loop, &c->w);
	close(c->w.fd);
	c->w.fd = -1;
	free(c->out);
	c->out = NULL;
	m->n--;
}

/* Reads and drops what the peer still sends after the answer, until it
 * closes: closing with unread bytes would reset the connection, and a
 * reset can destroy the answer before the peer has read it. */
static void
conn_drain(struct metrics_http_conn *c)
{
	char buf[512];

	for (;;) {
		size_t len = 0;
		ssize_t n = answer_recv(c->w.fd, buf, sizeof(buf), &len);
		if (n == ANSWER_AGAIN)
			return;
		if (n <= 0) {
			conn_close(c);
			return;
		}
	}
}

static void
conn_write(struct metrics_http_conn *c)
{
	int r = answer_send(c->w.fd, c->out, c->out_len, &c->out_off);
	if (r == 0) {
		(void)watcher_set(c->m->loop, &c->w, EPOLLOUT);
		return;
	}
	if (r < 0) {
		conn_close(c);
		return;
	}
	free(c->out);
	c->out = NULL;
	c->draining = 1;
	if (shutdown(c->w.fd, SHUT_WR) < 0 || watcher_set(c->m->loop, &c->w, EPOLLIN) < 0) {
		conn_close(c);
		return;
	}
	conn_drain(c);
}

static void
conn_answer(struct metrics_http_conn *c, const struct httpreq *req)
{
	struct metrics_http *m = c->m;
	char *body = NULL, head[256];
	size_t blen = 0;
	FILE *fp = open_memstream(&body, &blen);

	count(req->status);
	if (!fp) {
		conn_close(c);
		return;
	}
	if (req->status == 200)
		m->render(m->arg, STATSOCK_PROMETHEUS, fp);
	else
		fprintf(fp, "%d %s\n", req->status, reason(req->status));
	if (fclose(fp) != 0 || !body) {
		free(body);
		conn_close(c);
		return;
	}
	int hlen = snprintf(head, sizeof(head),
			    "HTTP/1.1 %d %s\r\n"
			    "Content-Type: %s\r\n"
			    "Content-Length: %zu\r\n"
			    "%s"
			    "Connection: close\r\n\r\n",
			    req->status, reason(req->status),
			    req->status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
					       : "text/plain; charset=utf-8",
			    blen, req->status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (hlen < 0 || (size_t)hlen >= sizeof(head)) {
		free(body);
		conn_close(c);
		return;
	}
	if (req->head)
		blen = 0;
	c->out = malloc((size_t)hlen + blen + 1);
	if (!c->out) {
		free(body);
		conn_close(c);
		return;
	}
	memcpy(c->out, head, (size_t)hlen);
	if (blen)
		memcpy(c->out + hlen, body, blen);
	free(body);
	c->out_len = (size_t)hlen + blen;
	c->out_off = 0;
	if (req->status != 200)
		log_debug("metrics-listen: answered %d", req->status);
	conn_write(c);
}

static void
conn_cb(struct watcher *w, uint32_t ev)
{
	struct metrics_http_conn *c = w->data;
	struct httpreq req;

	(void)ev;
	if (c->w.fd < 0)
		return;
	if (c->draining) {
		conn_drain(c);
		return;
	}
	if (c->out) {
		conn_write(c);
		return;
	}
	for (;;) {
		ssize_t n = answer_recv(c->w.fd, c->req, sizeof(c->req), &c->req_len);
		if (n == ANSWER_AGAIN)
			return;
		if (n <= 0) {
			conn_close(c); /* gone before a whole request */
			return;
		}
		if (httpreq_parse(c->req, c->req_len, sizeof(c->req), &req)) {
			conn_answer(c, &req);
			return;
		}
	}
}

static void
conn_timer_cb(struct timer *t)
{
	struct metrics_http_conn *c = t->data;

	ctr.timeouts++;
	conn_close(c);
}

static void
listen_cb(struct watcher *w, uint32_t ev)
{
	struct metrics_http *m = w->data;

	(void)ev;
	for (;;) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or EMFILE and the like: the next event retries */
		struct metrics_http_conn *c = NULL;
		for (int i = 0; i < METRICS_HTTP_MAX && !c; i++)
			if (m->c[i].w.fd < 0)
				c = &m->c[i];
		if (!c) {
			/* full: waiting in the backlog would let a flood hold
			 * the honest scraper off; closing costs nothing */
			ctr.refused++;
			close(fd);
			continue;
		}
		c->w = (struct watcher){.fd = fd, .cb = conn_cb, .data = c};
		c->req_len = 0;
		c->out = NULL;
		c->draining = 0;
		if (watcher_start(m->loop, &c->w, EPOLLIN) < 0 ||
		    timer_start(m->loop, &c->t, METRICS_HTTP_DEADLINE_MS) < 0) {
			watcher_stop(m->loop, &c->w);
			close(fd);
			c->w.fd = -1;
			continue;
		}
		m->n++;
	}
}

int
metrics_http_open(struct metrics_http *m, struct loop *l, const struct iketcpd_addr *addr,
		  statsock_render_fn *render, void *arg)
{
	memset(m, 0, sizeof(*m));
	m->listener.fd = -1;
	m->loop = l;
	m->addr = *addr;
	m->render = render;
	m->arg = arg;
	for (int i = 0; i < METRICS_HTTP_MAX; i++) {
		m->c[i].w.fd = -1;
		m->c[i].m = m;
		timer_init(&m->c[i].t, conn_timer_cb, &m->c[i]);
	}
	int fd = net_tcp_listen(addr, 64);
	if (fd < 0)
		return -1;
	m->listener = (struct watcher){.fd = fd, .cb = listen_cb, .data = m};
	if (watcher_start(l, &m->listener, EPOLLIN) < 0) {
		int e = errno;
		close(fd);
		m->listener.fd = -1;
		errno = e;
		return -1;
	}
	return 0;
}

void
metrics_http_close(struct metrics_http *m)
{
	if (m->listener.fd < 0)
		return;
	for (int i = 0; i < METRICS_HTTP_MAX; i++)
		conn_close(&m->c[i]);
	watcher_stop(m->loop, &m->listener);
	close(m->listener.fd);
	m->listener.fd = -1;
}

void
metrics_http_reset_stats(void)
{
	memset(&ctr, 0, sizeof(ctr));
}

void
metrics_http_print_stats(FILE *fp)
{
	for (size_t i = 0; i < NCODES; i++)
		fprintf(fp, "global iketcpd metrics_http_answered_%d %llu\n", codes[i],
			(unsigned long long)ctr.answered[i]);
	fprintf(fp, "global iketcpd metrics_http_refused %llu\n", (unsigned long long)ctr.refused);
	fprintf(fp, "global iketcpd metrics_http_timeouts %llu\n",
		(unsigned long long)ctr.timeouts);
}

void
metrics_http_prometheus(FILE *fp)
{
	fprintf(fp, "# HELP iketcpd_metrics_http_requests_total requests to metrics-listen, by "
		    "the status answered\n"
		    "# TYPE iketcpd_metrics_http_requests_total counter\n");
	for (size_t i = 0; i < NCODES; i++)
		fprintf(fp, "iketcpd_metrics_http_requests_total{code=\"%d\"} %llu\n", codes[i],
			(unsigned long long)ctr.answered[i]);
	fprintf(fp,
		"# HELP iketcpd_metrics_http_refused_total connections to metrics-listen closed "
		"at once: %d were open\n"
		"# TYPE iketcpd_metrics_http_refused_total counter\n"
		"iketcpd_metrics_http_refused_total %llu\n"
		"# HELP iketcpd_metrics_http_timeouts_total connections to metrics-listen closed "
		"at the %d s deadline\n"
		"# TYPE iketcpd_metrics_http_timeouts_total counter\n"
		"iketcpd_metrics_http_timeouts_total %llu\n",
		METRICS_HTTP_MAX, (unsigned long long)ctr.refused, METRICS_HTTP_DEADLINE_MS / 1000,
		(unsigned long long)ctr.timeouts);
}
