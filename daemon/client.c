#include "client.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "iketcp/iketcp.h"
#include "log.h"
#include "net.h"

#define RBUF_SIZE 65536u
#define UDP_BATCH 32
#define FLOW_IKE_SPIS 4
#define FLOW_ESP_SPIS 8
#define DRAIN_MS 2000

enum flow_mode { FM_UDP_TRYING, FM_UDP, FM_TCP };
enum tcp_state { TS_DOWN, TS_WAIT_RETRY, TS_CONNECTING, TS_OPEN, TS_DRAINING };

static const char *const tcp_state_names[] = {"down", "wait-retry", "connecting", "open",
					      "draining"};

struct flow {
	struct client *cl;
	uint64_t id;
	int dead;
	struct deferred dfr;
	struct iketcpd_addr local; /* the local IKE daemon's address */
	uint64_t ike_spis[FLOW_IKE_SPIS];
	unsigned ike_next;
	uint32_t esp_spis[FLOW_ESP_SPIS];
	unsigned esp_next;
	uint64_t last_ike_ms; /* for attributing new ESP SPIs */
	uint64_t last_active_ms;
	enum flow_mode mode;
	struct timer idle;     /* flow-timeout */
	struct timer fallback; /* UDP_TRYING -> TCP */
	/* UDP relay (enable-tcp no / fallback) */
	struct watcher uw;
	/* TCP */
	enum tcp_state ts;
	struct watcher tw;
	struct timer tt; /* connect timeout, retry wait, drain deadline */
	unsigned backoff_ms;
	uint64_t gen;       /* connection generation */
	uint32_t flowlabel; /* IPv6: kept for every reconnect (R22) */
	size_t prefix_left;
	struct iketcp_deframer df;
	struct iketcp_sendq q;
	/* the outstanding IKE request of the local daemon (R35, R36) */
	uint8_t *req;
	size_t req_len, req_cap;
	uint64_t req_spi;
	uint32_t req_msgid;
	uint64_t req_gen; /* generation that carries it; 0 = none yet */
	int dirty;        /* frames queued during this UDP batch, not yet written */
	struct flow *dirty_next;
	struct flow *next, *prev;
};

struct client {
	struct loop *loop;
	struct iketcpd_client_cfg cfg;
	struct iketcpd_addr peer; /* resolved */
	int have_peer;
	struct watcher uw; /* the --udp socket */
	struct flow *flows;
	unsigned nflows, nconns;
	int shutting;
	uint64_t next_id;
	struct client_stats st;
	uint8_t rbuf[RBUF_SIZE];
	struct mmsghdr rmsg[UDP_BATCH];
	struct iovec riov[UDP_BATCH];
	struct sockaddr_storage rsrc[UDP_BATCH];
	uint8_t *rdg;
	/* frames from the peer to the local daemon */
	struct iovec biov[NET_BATCH_MAX];
	unsigned bn;
	int gso_off; /* the kernel refused UDP GSO on uw.fd */
	struct flow *batch_flow;
	/* Flows with frames queued by the current recvmmsg batch: written once
	 * per batch, so a burst of datagrams becomes one writev, not one each. */
	struct flow *dirty;
};

static void flow_tcp_down(struct flow *f, const char *why);
static void flow_flush(struct flow *f);
static void flow_destroy(struct flow *f);

/* ---- to the local daemon --------------------------------------------------- */

static void
batch_flush(struct client *cl)
{
	struct flow *f = cl->batch_flow;
	unsigned sent = net_send_batch(cl->uw.fd, &f->local, cl->biov, cl->bn, &cl->gso_off);
	cl->st.to_local += sent;
	cl->st.to_local_drops += cl->bn - sent;
	cl->bn = 0;
	cl->batch_flow = NULL;
}

static void
batch_add(struct client *cl, struct flow *f, const uint8_t *p, size_t len)
{
	if (cl->bn && (cl->batch_flow != f || cl->bn == NET_BATCH_MAX))
		batch_flush(cl);
	cl->batch_flow = f;
	cl->biov[cl->bn].iov_base = (void *)(uintptr_t)p;
	cl->biov[cl->bn].iov_len = len;
	cl->bn++;
}

/* ---- flows ----------------------------------------------------------------- */

static void
flow_touch(struct flow *f)
{
	struct client *cl = f->cl;
	f->last_active_ms = loop_now(cl->loop);
	/* re-arming a heap timer per packet would cost log(n); the idle timer
	 * checks last_active_ms when it fires instead */
	if (!timer_armed(&f->idle))
		timer_start(cl->loop, &f->idle, cl->cfg.flow_timeout_ms);
}

static void
flow_idle_cb(struct timer *t)
{
	struct flow *f = t->data;
	uint64_t now = loop_now(f->cl->loop);
	uint64_t idle = now - f->last_active_ms;
	if (idle < f->cl->cfg.flow_timeout_ms) {
		timer_start(f->cl->loop, &f->idle, f->cl->cfg.flow_timeout_ms - idle);
		return;
	}
	log_info("%s: flow %llu idle for %llums, closing", f->cl->cfg.name,
		 (unsigned long long)f->id, (unsigned long long)idle);
	f->cl->st.flows_expired++;
	flow_destroy(f);
}

static void flow_udp_cb(struct watcher *w, uint32_t ev);
static void flow_tcp_cb(struct watcher *w, uint32_t ev);
static void flow_tt_cb(struct timer *t);
static void flow_fallback_cb(struct timer *t);
static void flow_tcp_connect(struct flow *f);

static int
flow_udp_open(struct flow *f)
{
	struct client *cl = f->cl;
	f->uw.fd = net_udp_socket(cl->peer.ss.ss_family, NULL, &cl->peer);
	if (f->uw.fd < 0) {
		log_err("%s: UDP socket to peer: %s", cl->cfg.name, strerror(errno));
		return -1;
	}
	f->uw.cb = flow_udp_cb;
	f->uw.data = f;
	return watcher_start(cl->loop, &f->uw, EPOLLIN);
}

static void
flow_udp_close(struct flow *f)
{
	if (f->uw.fd <= 0)
		return;
	watcher_stop(f->cl->loop, &f->uw);
	close(f->uw.fd);
	f->uw.fd = -1;
}

static struct flow *
flow_new(struct client *cl, const struct iketcpd_addr *local)
{
	if (cl->nflows >= cl->cfg.max_flows) {
		log_peer(LOG_LVL_WARN, LOGC_SESSION, "%s: max-flows %u reached", cl->cfg.name,
			 cl->cfg.max_flows);
		return NULL;
	}
	struct flow *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	struct iketcp_sendq_cfg qc = {.budget = cl->cfg.send_budget,
				      .ike_reserve = cl->cfg.ike_reserve};
	if (iketcp_sendq_init(&f->q, &qc) != IKETCP_OK) {
		free(f);
		return NULL;
	}
	f->cl = cl;
	f->id = ++cl->next_id;
	f->local = *local;
	f->uw.fd = -1;
	f->tw.fd = -1;
	f->backoff_ms = cl->cfg.reconnect_min_ms;
	timer_init(&f->idle, flow_idle_cb, f);
	timer_init(&f->tt, flow_tt_cb, f);
	timer_init(&f->fallback, flow_fallback_cb, f);
	switch (cl->cfg.enable_tcp) {
	case IKETCPD_TCP_YES:
		f->mode = FM_TCP;
		break;
	case IKETCPD_TCP_NO:
		f->mode = FM_UDP;
		break;
	case IKETCPD_TCP_FALLBACK:
		f->mode = FM_UDP_TRYING;
		break;
	}
	if (f->mode != FM_TCP) {
		if (flow_udp_open(f) < 0) {
			iketcp_sendq_free(&f->q);
			free(f);
			return NULL;
		}
		if (f->mode == FM_UDP_TRYING)
			timer_start(cl->loop, &f->fallback, cl->cfg.fallback_wait_ms);
	}
	f->next = cl->flows;
	if (f->next)
		f->next->prev = f;
	cl->flows = f;
	cl->nflows++;
	cl->st.flows_created++;
	if (f->mode == FM_TCP)
		flow_tcp_connect(f);
	log_info("%s: flow %llu started (%s)", cl->cfg.name, (unsigned long long)f->id,
		 f->mode == FM_TCP   ? "TCP"
		 : f->mode == FM_UDP ? "UDP"
				     : "trying UDP first");
	return f;
}

static void
flow_free_cb(void *arg)
{
	struct flow *f = arg;
	iketcp_deframer_free(&f->df);
	iketcp_sendq_free(&f->q);
	free(f->req);
	free(f);
}

static void
flow_destroy(struct flow *f)
{
	struct client *cl = f->cl;
	if (f->dead)
		return;
	if (cl->batch_flow == f && cl->bn)
		batch_flush(cl);
	flow_tcp_down(f, NULL);
	f->dead = 1;
	flow_udp_close(f);
	timer_stop(cl->loop, &f->idle);
	timer_stop(cl->loop, &f->tt);
	timer_stop(cl->loop, &f->fallback);
	if (f->prev)
		f->prev->next = f->next;
	else
		cl->flows = f->next;
	if (f->next)
		f->next->prev = f->prev;
	cl->nflows--;
	loop_defer(cl->loop, &f->dfr, flow_free_cb, f);
}

/* ---- TCP connection of a flow ------------------------------------------------ */

static long
flow_writev(void *ctx, const struct iovec *iov, int cnt)
{
	struct flow *f = ctx;
	ssize_t w = writev(f->tw.fd, iov, cnt);
	if (w >= 0)
		return w;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return IKETCP_E_AGAIN;
	return IKETCP_E_IO;
}

/* Writes the prefix (first time only) together with queued frames. */
static void
flow_flush(struct flow *f)
{
	struct client *cl = f->cl;
	if (f->ts != TS_OPEN && f->ts != TS_DRAINING)
		return;
	while (f->prefix_left) {
		/* R15/R24: the prefix leads, in the same writev as the first
		 * frames so that it arrives in one segment with them. */
		struct iovec iov[1 + IKETCP_SENDQ_IOV_MAX];
		iov[0].iov_base =
			(void *)(uintptr_t)&IKETCP_PREFIX[IKETCP_PREFIX_LEN - f->prefix_left];
		iov[0].iov_len = f->prefix_left;
		int n = iketcp_sendq_iov(&f->q, iov + 1);
		ssize_t w = writev(f->tw.fd, iov, 1 + n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				watcher_set(cl->loop, &f->tw, EPOLLIN | EPOLLOUT);
				return;
			}
			flow_tcp_down(f, strerror(errno));
			return;
		}
		size_t k = (size_t)w < f->prefix_left ? (size_t)w : f->prefix_left;
		f->prefix_left -= k;
		if ((size_t)w > k && iketcp_sendq_consume(&f->q, (size_t)w - k) != IKETCP_OK) {
			flow_tcp_down(f, "write accounting");
			return;
		}
	}
	int rc = iketcp_sendq_flush(&f->q, flow_writev, f);
	if (rc == IKETCP_E_AGAIN) {
		watcher_set(cl->loop, &f->tw, EPOLLIN | EPOLLOUT);
	} else if (rc == IKETCP_OK) {
		if (f->ts == TS_DRAINING)
			flow_destroy(f);
		else
			watcher_set(cl->loop, &f->tw, EPOLLIN);
	} else {
		flow_tcp_down(f, strerror(errno));
	}
}

static void
flow_tcp_connect(struct flow *f)
{
	struct client *cl = f->cl;
	char ps[64];
	if (!cl->have_peer) {
		if (net_resolve(cl->cfg.peer_host, cl->cfg.peer_port, &cl->peer) < 0) {
			log_warn("%s: cannot resolve %s", cl->cfg.name, cl->cfg.peer_host);
			f->ts = TS_WAIT_RETRY;
			timer_start(cl->loop, &f->tt, f->backoff_ms);
			return;
		}
		cl->have_peer = 1;
	}
	int fd = net_tcp_connect(&cl->peer, &f->flowlabel);
	cl->st.connects++;
	if (fd < 0) {
		log_warn("%s: connect to %s: %s", cl->cfg.name,
			 iketcpd_addr_str(&cl->peer, ps, sizeof(ps)), strerror(errno));
		cl->st.connect_failures++;
		f->ts = TS_WAIT_RETRY;
		timer_start(cl->loop, &f->tt, f->backoff_ms);
		return;
	}
	f->tw = (struct watcher){.fd = fd, .cb = flow_tcp_cb, .data = f};
	f->ts = TS_CONNECTING;
	watcher_start(cl->loop, &f->tw, EPOLLOUT);
	timer_start(cl->loop, &f->tt, cl->cfg.connect_timeout_ms);
	cl->nconns++;
}

/* Called once connect() completed. */
static void
flow_tcp_open(struct flow *f)
{
	struct client *cl = f->cl;
	char ps[64];
	struct iketcp_deframer_cfg dc = {.expect_prefix = 0, .max_frame = cl->cfg.max_frame};

	timer_stop(cl->loop, &f->tt);
	(void)net_tcp_tune(f->tw.fd, cl->cfg.tcp_keepalive);
	iketcp_deframer_free(&f->df);
	if (iketcp_deframer_init(&f->df, &dc) != IKETCP_OK) {
		flow_tcp_down(f, "deframer");
		return;
	}
	f->ts = TS_OPEN;
	f->gen++;
	f->prefix_left = IKETCP_PREFIX_LEN;
	/* R36: the request still waiting for its response goes first on the
	 * new connection, byte for byte as the local daemon sent it. */
	if (f->req_len && f->req_gen != f->gen) {
		/* IKE class: it overtakes ESP queued while connecting. */
		if (iketcp_sendq_push_datagram(&f->q, f->req, f->req_len) == IKETCP_OK) {
			f->req_gen = f->gen;
			cl->st.requests_resent++;
		} else {
			cl->st.sendq_drops++;
		}
	}
	log_info("%s: flow %llu connected to %s (connection %llu)", cl->cfg.name,
		 (unsigned long long)f->id, iketcpd_addr_str(&cl->peer, ps, sizeof(ps)),
		 (unsigned long long)f->gen);
	flow_flush(f);
}

/* Closes the TCP connection; the flow stays and reconnects unless why is NULL. */
static void
flow_tcp_down(struct flow *f, const char *why)
{
	struct client *cl = f->cl;
	if (f->ts == TS_CONNECTING || f->ts == TS_OPEN || f->ts == TS_DRAINING) {
		watcher_stop(cl->loop, &f->tw);
		close(f->tw.fd);
		f->tw.fd = -1;
		cl->nconns--;
		if (why)
			cl->st.disconnects++; /* lost, not closed by us */
		if (cl->batch_flow == f && cl->bn)
			batch_flush(cl);
	}
	timer_stop(cl->loop, &f->tt);
	/* R23: a partial frame from the peer dies with the connection. Frames
	 * queued but not written are lost too, except the pending request,
	 * which the next connection resends (R36). */
	iketcp_deframer_free(&f->df);
	iketcp_sendq_free(&f->q);
	f->prefix_left = 0;
	if (!why || f->dead || cl->shutting) {
		f->ts = TS_DOWN;
		return;
	}
	log_warn("%s: flow %llu: connection lost in state %s (%s); reconnecting in %ums",
		 cl->cfg.name, (unsigned long long)f->id, tcp_state_names[f->ts], why,
		 f->backoff_ms);
	f->ts = TS_WAIT_RETRY;
	timer_start(cl->loop, &f->tt, f->backoff_ms);
	f->backoff_ms = f->backoff_ms * 2 > cl->cfg.reconnect_max_ms ? cl->cfg.reconnect_max_ms
								     : f->backoff_ms * 2;
}

static void
flow_tt_cb(struct timer *t)
{
	struct flow *f = t->data;
	switch (f->ts) {
	case TS_WAIT_RETRY:
	case TS_DOWN:
		flow_tcp_connect(f);
		break;
	case TS_CONNECTING:
		f->cl->st.connect_failures++;
		flow_tcp_down(f, "connect timeout");
		break;
	case TS_DRAINING:
		flow_destroy(f);
		break;
	case TS_OPEN:
		break;
	}
}

static void flow_from_peer(struct flow *f, const uint8_t *p, size_t len);

/* The generation of the connection that carries what is queued now: the
 * open one, or the next one while (re)connecting. */
static uint64_t
carrier_gen(const struct flow *f)
{
	return f->ts == TS_OPEN || f->ts == TS_DRAINING ? f->gen : f->gen + 1;
}

static void
flow_tcp_read(struct flow *f)
{
	struct client *cl = f->cl;
	ssize_t n = read(f->tw.fd, cl->rbuf, sizeof(cl->rbuf));
	if (n == 0) {
		flow_tcp_down(f, "peer closed");
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			flow_tcp_down(f, strerror(errno));
		return;
	}
	struct iketcp_cur in;
	iketcp_cur_init(&in, cl->rbuf, (size_t)n);
	const uint8_t *fr;
	size_t flen;
	int rc;
	uint64_t gen = f->gen;
	while ((rc = iketcp_deframer_next(&f->df, &in, &fr, &flen)) == 1) {
		struct iketcp_frame fm;
		if (iketcp_frame_classify(fr, flen, &fm) != IKETCP_OK)
			continue;
		switch (fm.kind) {
		case IKETCP_FRAME_IKE:
		case IKETCP_FRAME_ESP:
			cl->st.from_peer_frames++;
			f->backoff_ms = cl->cfg.reconnect_min_ms; /* the peer talks to us */
			flow_from_peer(f, fm.body, fm.body_len);
			if (fr < cl->rbuf || fr >= cl->rbuf + sizeof(cl->rbuf))
				batch_flush(cl);
			break;
		case IKETCP_FRAME_RUNT:
			cl->st.from_peer_runts++;
			break;
		case IKETCP_FRAME_EMPTY:
		case IKETCP_FRAME_KEEPALIVE:
		case IKETCP_FRAME_FATAL:
			break;
		}
		if (f->gen != gen || f->ts != TS_OPEN)
			return;
	}
	if (cl->bn)
		batch_flush(cl);
	if (rc < 0)
		flow_tcp_down(f, iketcp_strerror(rc));
}

static void
flow_tcp_cb(struct watcher *w, uint32_t ev)
{
	struct flow *f = w->data;
	if (f->ts == TS_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			f->cl->st.connect_failures++;
			flow_tcp_down(f, strerror(err));
			return;
		}
		if (ev & (EPOLLOUT | EPOLLIN))
			flow_tcp_open(f);
		return;
	}
	if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
		flow_tcp_read(f);
	if ((ev & EPOLLOUT) && (f->ts == TS_OPEN || f->ts == TS_DRAINING))
		flow_flush(f);
}

/* ---- datagrams --------------------------------------------------------------- */

/* Something arrived from the peer (TCP frame body or UDP datagram). */
static void
flow_from_peer(struct flow *f, const uint8_t *p, size_t len)
{
	struct iketcp_ike_hdr h;
	flow_touch(f);
	if (len > IKETCP_MARKER_LEN && !p[0] && !p[1] && !p[2] && !p[3] &&
	    iketcp_ike_parse(p + 4, len - 4, &h) == IKETCP_OK) {
		f->last_ike_ms = loop_now(f->cl->loop);
		if (iketcp_ike_is_response(&h) && f->req_len && h.spi_i == f->req_spi &&
		    h.msg_id == f->req_msgid)
			f->req_len = 0; /* answered: nothing to resend */
	}
	batch_add(f->cl, f, p, len);
}

static void
flow_udp_cb(struct watcher *w, uint32_t ev)
{
	struct flow *f = w->data;
	struct client *cl = f->cl;
	(void)ev;
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(w->fd, cl->rbuf, sizeof(cl->rbuf), MSG_DONTWAIT);
		if (n <= 0)
			break;
		if (f->mode == FM_UDP_TRYING) {
			/* R13: UDP works, so this flow stays on UDP. */
			f->mode = FM_UDP;
			timer_stop(cl->loop, &f->fallback);
			cl->st.udp_answers++;
			log_info("%s: flow %llu: peer answered over UDP; not using TCP",
				 cl->cfg.name, (unsigned long long)f->id);
		}
		flow_from_peer(f, cl->rbuf, (size_t)n);
		batch_flush(cl);
	}
}

static void
flow_fallback_cb(struct timer *t)
{
	struct flow *f = t->data;
	struct client *cl = f->cl;
	if (f->mode != FM_UDP_TRYING)
		return;
	log_info("%s: flow %llu: no UDP answer in %ums, falling back to TCP", cl->cfg.name,
		 (unsigned long long)f->id, cl->cfg.fallback_wait_ms);
	cl->st.fallbacks_to_tcp++;
	f->mode = FM_TCP;
	flow_udp_close(f);
	/* The daemon's pending request (usually IKE_SA_INIT) goes out at once
	 * on the new connection rather than waiting for its retransmission. */
	f->req_gen = 0;
	flow_tcp_connect(f);
}

static struct flow *
flow_by_ike(struct client *cl, uint64_t spi)
{
	for (struct flow *f = cl->flows; f; f = f->next)
		for (unsigned i = 0; i < FLOW_IKE_SPIS; i++)
			if (f->ike_spis[i] == spi)
				return f;
	return NULL;
}

static struct flow *
flow_by_esp(struct client *cl, uint32_t spi)
{
	for (struct flow *f = cl->flows; f; f = f->next)
		for (unsigned i = 0; i < FLOW_ESP_SPIS; i++)
			if (f->esp_spis[i] == spi)
				return f;
	return NULL;
}

/* The flow of this local address with the most recent IKE traffic. */
static struct flow *
flow_latest(struct client *cl, const struct iketcpd_addr *local)
{
	struct flow *best = NULL;
	for (struct flow *f = cl->flows; f; f = f->next)
		if (!memcmp(&f->local.ss, &local->ss, local->len) &&
		    (!best || f->last_ike_ms > best->last_ike_ms))
			best = f;
	return best;
}

static void
remember_request(struct flow *f, const uint8_t *p, size_t len, const struct iketcp_ike_hdr *h)
{
	if (len > f->req_cap) {
		uint8_t *n = realloc(f->req, len);
		if (!n)
			return;
		f->req = n;
		f->req_cap = len;
	}
	memcpy(f->req, p, len);
	f->req_len = len;
	f->req_spi = h->spi_i;
	f->req_msgid = h->msg_id;
	f->req_gen = 0;
}

static void
from_local(struct client *cl, const struct iketcpd_addr *src, const uint8_t *p, size_t len)
{
	struct flow *f = NULL;
	struct iketcp_ike_hdr h;
	int is_ike = 0, is_request = 0;

	cl->st.from_local++;
	if (len == 1 && p[0] == IKETCP_KEEPALIVE_OCTET) {
		cl->st.local_keepalives++;
		f = flow_latest(cl, src);
		if (f && f->mode != FM_TCP)
			(void)send(f->uw.fd, p, len, 0); /* UDP path: keepalives belong there */
		return;                                  /* R47: never over TCP */
	}
	if (len > IKETCP_MARKER_LEN && !p[0] && !p[1] && !p[2] && !p[3]) {
		if (iketcp_ike_parse(p + 4, len - 4, &h) != IKETCP_OK) {
			cl->st.unroutable++;
			return;
		}
		is_ike = 1;
		is_request = !iketcp_ike_is_response(&h);
		f = flow_by_ike(cl, h.spi_i);
		if (!f && h.exchange == IKETCP_IKE_SA_INIT && h.spi_r == 0 && is_request)
			f = flow_new(cl, src);
		else if (!f)
			f = flow_latest(cl, src); /* IKE SA rekeyed: new SPIs, same flow */
		if (!f) {
			cl->st.unroutable++;
			return;
		}
		if (!flow_by_ike(cl, h.spi_i))
			f->ike_spis[f->ike_next++ % FLOW_IKE_SPIS] = h.spi_i;
		f->last_ike_ms = loop_now(cl->loop);
	} else if (len >= IKETCP_ESP_MIN) {
		uint32_t spi =
			(uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		f = flow_by_esp(cl, spi);
		if (!f) {
			f = flow_latest(cl, src);
			if (!f) {
				cl->st.unroutable++;
				return;
			}
			f->esp_spis[f->esp_next++ % FLOW_ESP_SPIS] = spi;
		}
	} else {
		cl->st.unroutable++;
		return;
	}
	f->local = *src; /* the daemon may move (port change): follow it */
	flow_touch(f);

	if (is_ike && is_request) {
		if (f->req_len && f->req_spi == h.spi_i && f->req_msgid == h.msg_id &&
		    f->mode == FM_TCP && f->req_gen == carrier_gen(f)) {
			/* R35: this connection already carries it; TCP is reliable. */
			cl->st.retransmits_dropped++;
			return;
		}
		remember_request(f, p, len, &h);
	}

	if (f->mode != FM_TCP) {
		if (send(f->uw.fd, p, len, 0) < 0)
			cl->st.sendq_drops++;
		return;
	}
	int rc = iketcp_sendq_push_datagram(&f->q, p, len);
	if (rc != IKETCP_OK) {
		cl->st.sendq_drops++;
		return;
	}
	cl->st.to_peer_frames++;
	if (is_ike && is_request)
		f->req_gen = carrier_gen(f);
	if (f->ts == TS_OPEN) {
		if (!f->dirty) {
			f->dirty = 1;
			f->dirty_next = cl->dirty;
			cl->dirty = f;
		}
	} else if (f->ts == TS_DOWN)
		flow_tcp_connect(f);
}

static void
local_udp_cb(struct watcher *w, uint32_t ev)
{
	struct client *cl = w->data;
	(void)ev;
	for (unsigned i = 0; i < UDP_BATCH; i++) {
		cl->riov[i].iov_base = cl->rdg + (size_t)i * IKETCP_BODY_MAX;
		cl->riov[i].iov_len = IKETCP_BODY_MAX;
		cl->rmsg[i].msg_hdr = (struct msghdr){.msg_name = &cl->rsrc[i],
						      .msg_namelen = sizeof(cl->rsrc[i]),
						      .msg_iov = &cl->riov[i],
						      .msg_iovlen = 1};
	}
	int n = recvmmsg(w->fd, cl->rmsg, UDP_BATCH, MSG_DONTWAIT, NULL);
	for (int i = 0; i < n; i++) {
		struct iketcpd_addr src = {.len = cl->rmsg[i].msg_hdr.msg_namelen};
		memcpy(&src.ss, &cl->rsrc[i], src.len);
		from_local(cl, &src, cl->riov[i].iov_base, cl->rmsg[i].msg_len);
	}
	/* Flows destroyed meanwhile are still allocated (loop_defer) and marked
	 * dead, so walking the list is safe. */
	while (cl->dirty) {
		struct flow *f = cl->dirty;
		cl->dirty = f->dirty_next;
		f->dirty = 0;
		if (!f->dead && f->ts == TS_OPEN)
			flow_flush(f);
	}
}

/* ---- lifecycle ----------------------------------------------------------------- */

struct client *
client_new(struct loop *l, const struct iketcpd_client_cfg *cfg)
{
	char as[64];
	struct client *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return NULL;
	cl->loop = l;
	cl->cfg = *cfg;
	cl->rdg = malloc((size_t)UDP_BATCH * IKETCP_BODY_MAX);
	if (!cl->rdg) {
		free(cl);
		return NULL;
	}
	cl->uw.fd = net_udp_socket(cfg->udp.ss.ss_family, &cfg->udp, NULL);
	if (cl->uw.fd < 0) {
		log_err("%s: UDP socket on %s: %s", cfg->name,
			iketcpd_addr_str(&cfg->udp, as, sizeof(as)), strerror(errno));
		free(cl->rdg);
		free(cl);
		return NULL;
	}
	cl->uw.cb = local_udp_cb;
	cl->uw.data = cl;
	if (watcher_start(l, &cl->uw, EPOLLIN) < 0) {
		close(cl->uw.fd);
		free(cl->rdg);
		free(cl);
		return NULL;
	}
	if (net_resolve(cfg->peer_host, cfg->peer_port, &cl->peer) == 0)
		cl->have_peer = 1;
	else
		log_warn("%s: cannot resolve %s yet; will retry", cfg->name, cfg->peer_host);
	static const char *const modes[] = {"no", "yes", "fallback"};
	log_info("%s: UDP %s -> peer %s:%u, enable-tcp=%s", cfg->name,
		 iketcpd_addr_str(&cfg->udp, as, sizeof(as)), cfg->peer_host, cfg->peer_port,
		 modes[cfg->enable_tcp]);
	return cl;
}

int
client_reload(struct client *cl, const struct iketcpd_client_cfg *cfg)
{
	if (memcmp(&cl->cfg.udp, &cfg->udp, sizeof(cfg->udp)) != 0) {
		/* The caller replaces the section: its flows and TCP
		 * connections end, the new udp address is opened. */
		log_warn("%s: udp address changed on reload: restarting this section (its flows "
			 "are closed)",
			 cfg->name);
		return -1;
	}
	if (strcmp(cl->cfg.peer_host, cfg->peer_host) || cl->cfg.peer_port != cfg->peer_port)
		cl->have_peer = 0; /* resolved again on the next connect */
	cl->cfg = *cfg;
	log_info("%s: configuration reloaded (%u flows kept)", cfg->name, cl->nflows);
	return 0;
}

void
client_shutdown(struct client *cl)
{
	cl->shutting = 1;
	watcher_stop(cl->loop, &cl->uw);
	for (struct flow *f = cl->flows, *n; f; f = n) {
		n = f->next;
		if (f->ts == TS_OPEN && iketcp_sendq_bytes(&f->q)) {
			f->ts = TS_DRAINING;
			timer_start(cl->loop, &f->tt, DRAIN_MS);
			flow_flush(f);
		} else {
			flow_destroy(f);
		}
	}
}

unsigned
client_conns(const struct client *cl)
{
	return cl->shutting ? cl->nflows : cl->nconns;
}

const struct client_stats *
client_stats(const struct client *cl)
{
	return &cl->st;
}

const char *
client_name(const struct client *cl)
{
	return cl->cfg.name;
}

void
client_log_stats(const struct client *cl)
{
	const struct client_stats *s = &cl->st;
	log_info("%s: flows %u, connections %u; from local %llu (keepalives %llu, unroutable "
		 "%llu), frames to peer %llu (queue drops %llu, retransmits dropped %llu, "
		 "requests resent %llu)",
		 cl->cfg.name, cl->nflows, cl->nconns, (unsigned long long)s->from_local,
		 (unsigned long long)s->local_keepalives, (unsigned long long)s->unroutable,
		 (unsigned long long)s->to_peer_frames, (unsigned long long)s->sendq_drops,
		 (unsigned long long)s->retransmits_dropped,
		 (unsigned long long)s->requests_resent);
	log_info("%s: from peer %llu frames (runts %llu), to local %llu (drops %llu); connects "
		 "%llu (failed %llu, lost %llu), fallbacks to TCP %llu, UDP answered %llu",
		 cl->cfg.name, (unsigned long long)s->from_peer_frames,
		 (unsigned long long)s->from_peer_runts, (unsigned long long)s->to_local,
		 (unsigned long long)s->to_local_drops, (unsigned long long)s->connects,
		 (unsigned long long)s->connect_failures, (unsigned long long)s->disconnects,
		 (unsigned long long)s->fallbacks_to_tcp, (unsigned long long)s->udp_answers);
}

void
client_print_stats(const struct client *cl, FILE *fp)
{
	const struct client_stats *s = &cl->st;
	const char *n = cl->cfg.name;
#define P(key, val) fprintf(fp, "client %s %s %llu\n", n, key, (unsigned long long)(val))
	P("flows", cl->nflows);
	P("connections", cl->nconns);
	P("from_local", s->from_local);
	P("local_keepalives", s->local_keepalives);
	P("to_peer_frames", s->to_peer_frames);
	P("unroutable", s->unroutable);
	P("retransmits_dropped", s->retransmits_dropped);
	P("requests_resent", s->requests_resent);
	P("sendq_drops", s->sendq_drops);
	P("from_peer_frames", s->from_peer_frames);
	P("from_peer_runts", s->from_peer_runts);
	P("to_local", s->to_local);
	P("to_local_drops", s->to_local_drops);
	P("connects", s->connects);
	P("connect_failures", s->connect_failures);
	P("disconnects", s->disconnects);
	P("fallbacks_to_tcp", s->fallbacks_to_tcp);
	P("udp_answers", s->udp_answers);
	P("flows_created", s->flows_created);
	P("flows_expired", s->flows_expired);
#undef P
}

void
client_free(struct client *cl)
{
	if (!cl)
		return;
	cl->shutting = 1;
	while (cl->flows)
		flow_destroy(cl->flows);
	watcher_stop(cl->loop, &cl->uw);
	close(cl->uw.fd);
	free(cl->rdg);
	free(cl);
}
