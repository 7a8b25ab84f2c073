#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "iketcp/iketcp.h"
#include "iketcp/proxyproto.h"
#include "log.h"
#include "net.h"
#include "tlscfg.h"

#define RBUF_SIZE 65536u /* one TCP read; frames whole in it are not copied */
#define UDP_BATCH 32     /* datagrams per recvmmsg / sendmmsg */
#define SPI_BUCKETS (1u << 14)
#define SRC_BUCKETS (1u << 12)
#define SESS_SPIS 16  /* SPIs remembered per session, oldest evicted */
#define SESS_REQS 4   /* recent IKE requests remembered per session */
#define DRAIN_MS 2000 /* shutdown: time to write queued frames */
#define ACCEPT_BURST 64

enum close_reason {
	CR_EOF,
	CR_ERROR,
	CR_PREFIX_TIMEOUT,
	CR_BAD_PREFIX,
	CR_BADLEN,
	CR_TOOBIG,
	CR_BAD_FRAMES,
	CR_WRITE,
	CR_NOMEM,
	CR_SHUTDOWN,
	CR_TLS_HANDSHAKE,
	CR_TLS_TIMEOUT,
	CR_PROXY_HDR,
	CR_PROXY_SOURCE,
	CR_REPLACED,
	CR_HEALTH_CHECK,
	CR_COUNT
};

_Static_assert(CR_COUNT <= sizeof(((struct server_stats *)0)->closed) / sizeof(uint64_t),
	       "server_stats.closed has a slot per close reason");

static const char *const close_names[CR_COUNT] = {
	"peer closed",
	"read error",
	"no prefix/first frame in time",
	"bad prefix",
	"length 0 or 1 (R7)",
	"frame over max-frame",
	"too many bad frames (R27)",
	"write error",
	"out of memory",
	"shutdown",
	"TLS handshake failed",
	"no TLS handshake in time",
	"bad PROXY protocol header",
	"max-conns-per-source of the client the PROXY header names",
	"replaced by a newer connection and idle (R34)",
	"the balancer's health check ended",
};

/*
 * SC_PROXY_HDR: proxy-protocol = yes, the load balancer's PROXY header is
 * read before anything else (under prefix-timeout); then the connection
 * goes on as on a listener without it.
 * SC_SNIFF: a plain listener that also takes TLS (sniff-tls) waits for the
 * first byte. SC_TLS_HANDSHAKE: under tls-handshake-timeout. Both count as
 * pending (max-pending) like SC_WAIT_PREFIX, whose prefix-timeout starts
 * when the handshake is done.
 */
enum conn_state {
	SC_PROXY_HDR,
	SC_SNIFF,
	SC_TLS_HANDSHAKE,
	SC_WAIT_PREFIX,
	SC_WAIT_FRAME,
	SC_OPEN,
	SC_DRAINING,
	SC_CLOSED
};

static const char *const state_names[] = {"proxy-header", "sniff", "tls-handshake", "wait-prefix",
					  "wait-frame",   "open",  "draining",      "closed"};

struct session;

struct src_ent {
	struct iketcpd_addr ip;
	unsigned count;
	struct src_ent *next;
};

struct sconn {
	struct server *srv;
	struct watcher w;
	struct timer timer; /* prefix / first frame; drain deadline */
	struct deferred dfr;
	uint64_t id;
	enum conn_state state;
	int pending; /* counted in srv->npending (no prefix yet) */
	char peer_str[64];
	struct src_ent *src;
	struct iketcp_transport tr; /* plain TCP or TLS; ops NULL while sniffing */
	int is_tls;
	int tls_listener; /* accepted on a listen-tls address */
	uint8_t *pp;      /* SC_PROXY_HDR: the header bytes read so far */
	size_t pp_len;
	int pp_local; /* the header named no client: the balancer's own connection */
	struct iketcp_deframer df;
	struct iketcp_sendq q;
	unsigned bad_run;
	uint64_t frames_in, bytes_in;
	uint32_t last_spi; /* ESP fast path: last SPI routed to sess */
	struct session *sess;
	struct sconn *s_next, *s_prev; /* in sess->conns */
	uint64_t attach_seq;
	struct sconn *next, *prev; /* in srv->conns */
};

struct spi_ent {
	uint64_t key;
	uint8_t type; /* 0 unused, 1 IKE, 2 ESP */
	struct session *sess;
	struct spi_ent *next;
};

struct session {
	struct server *srv;
	struct watcher w; /* UDP socket to the backend */
	struct timer expire;
	struct deferred dfr;
	uint64_t id;
	int dead;
	struct sconn *conns; /* attached connections */
	struct sconn *current;
	struct spi_ent spis[SESS_SPIS];
	unsigned spi_next;
	int gso_off; /* the kernel refused UDP GSO on w.fd */
	struct {
		uint64_t spi_i;
		uint32_t msg_id;
		struct sconn *conn;
	} reqs[SESS_REQS];
	unsigned req_next;
	uint8_t *held; /* last IKE datagram from the backend while no connection */
	size_t held_len;
	struct session *next, *prev;
};

struct listener {
	struct watcher w;
	struct iketcpd_addr addr;
	int tls; /* listen-tls: TLS only */
	struct server *srv;
};

struct server {
	struct loop *loop;
	struct iketcpd_server_cfg cfg;
	struct listener ls[2 * IKETCPD_MAX_LISTEN]; /* listen, then listen-tls */
	int nls;
	/* Server TLS context (tls-cert); NULL without one. A reload swaps it;
	 * each TLS connection holds its own reference. */
	struct iketcp_tls_ctx *tls_ctx;
	int sniff; /* plain listeners also take TLS (sniff-tls and a context) */
	int shutting;
	struct sconn *conns;
	unsigned nconns, npending, nsessions;
	struct session *sessions;
	struct spi_ent *spi_tab[SPI_BUCKETS];
	struct src_ent *src_tab[SRC_BUCKETS];
	uint64_t next_id, attach_seq;
	struct server_stats st;
	uint8_t rbuf[RBUF_SIZE];
	/* TCP -> UDP batch: frames bound for one session's socket */
	struct session *batch_sess;
	struct iovec biov[NET_BATCH_MAX]; /* frames of one TCP read, to one session */
	unsigned bn;
	/* UDP -> TCP: recvmmsg buffers */
	struct mmsghdr rmsg[UDP_BATCH];
	struct iovec riov[UDP_BATCH];
	uint8_t *rdg;            /* UDP_BATCH x IKETCP_BODY_MAX */
	struct timer trim_sweep; /* memory: see trim_sweep_cb() */
};

static void conn_close(struct sconn *c, enum close_reason why);
static void conn_close_msg(struct sconn *c, enum close_reason why, const char *detail);
static void conn_flush(struct sconn *c);
static void conn_read(struct sconn *c);
static void session_destroy(struct session *s);

/* ---- small tables --------------------------------------------------------- */

static unsigned
spi_hash(uint64_t key, uint8_t type)
{
	return (unsigned)(((key ^ type) * 0x9E3779B97F4A7C15ull) >> (64 - 14));
}

static struct session *
spi_find(struct server *srv, uint8_t type, uint64_t key)
{
	for (struct spi_ent *e = srv->spi_tab[spi_hash(key, type)]; e; e = e->next)
		if (e->key == key && e->type == type)
			return e->sess;
	return NULL;
}

static void
spi_unlink(struct server *srv, struct spi_ent *x)
{
	struct spi_ent **pp = &srv->spi_tab[spi_hash(x->key, x->type)];
	for (; *pp; pp = &(*pp)->next) {
		if (*pp == x) {
			*pp = x->next;
			break;
		}
	}
	x->type = 0;
	x->next = NULL;
}

/* Remembers an SPI for s; the oldest of its SESS_SPIS entries is evicted. */
static void
spi_add(struct session *s, uint8_t type, uint64_t key)
{
	struct server *srv = s->srv;
	struct spi_ent *e = &s->spis[s->spi_next++ % SESS_SPIS];
	if (e->type)
		spi_unlink(srv, e);
	e->key = key;
	e->type = type;
	e->sess = s;
	unsigned h = spi_hash(key, type);
	e->next = srv->spi_tab[h];
	srv->spi_tab[h] = e;
}

static unsigned
src_hash(const struct iketcpd_addr *a)
{
	const uint8_t *p;
	size_t n;
	uint32_t h = 2166136261u;
	if (a->ss.ss_family == AF_INET) {
		p = (const uint8_t *)&((const struct sockaddr_in *)&a->ss)->sin_addr;
		n = 4;
	} else {
		p = (const uint8_t *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
		n = 16;
	}
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h & (SRC_BUCKETS - 1);
}

static struct src_ent *
src_get(struct server *srv, const struct iketcpd_addr *a, int create)
{
	unsigned h = src_hash(a);
	for (struct src_ent *e = srv->src_tab[h]; e; e = e->next)
		if (net_same_ip(&e->ip, a))
			return e;
	if (!create)
		return NULL;
	struct src_ent *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->ip = *a;
	e->next = srv->src_tab[h];
	srv->src_tab[h] = e;
	return e;
}

static void
src_put(struct server *srv, struct src_ent *e)
{
	if (!e || --e->count)
		return;
	struct src_ent **pp = &srv->src_tab[src_hash(&e->ip)];
	for (; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
	}
}

/* ---- TCP -> UDP batching ---------------------------------------------------- */

static void
batch_flush(struct server *srv)
{
	struct session *s = srv->batch_sess;
	unsigned sent = net_send_batch(s->w.fd, NULL, srv->biov, srv->bn, &s->gso_off);
	srv->st.to_backend += sent;
	srv->st.to_backend_drops += srv->bn - sent;
	srv->bn = 0;
	srv->batch_sess = NULL;
}

static void
batch_add(struct server *srv, struct session *s, const uint8_t *p, size_t len)
{
	if (srv->bn && (srv->batch_sess != s || srv->bn == NET_BATCH_MAX))
		batch_flush(srv);
	srv->batch_sess = s;
	srv->biov[srv->bn].iov_base = (void *)(uintptr_t)p;
	srv->biov[srv->bn].iov_len = len;
	srv->bn++;
}

/* ---- sessions --------------------------------------------------------------- */

static void
session_expire_cb(struct timer *t)
{
	struct session *s = t->data;
	log_peer(LOG_LVL_INFO, LOGC_SESSION, "session %llu expired (no connection)",
		 (unsigned long long)s->id);
	s->srv->st.sessions_expired++;
	session_destroy(s);
}

static void session_udp_cb(struct watcher *w, uint32_t ev);

static struct session *
session_new(struct server *srv)
{
	if (srv->nsessions >= srv->cfg.max_sessions) {
		srv->st.sessions_refused++;
		log_peer(LOG_LVL_WARN, LOGC_SESSION, "session refused: max-sessions %u reached",
			 srv->cfg.max_sessions);
		return NULL;
	}
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->srv = srv;
	s->w.fd = net_udp_socket(srv->cfg.backend.ss.ss_family, NULL, &srv->cfg.backend);
	if (s->w.fd < 0) {
		log_err("%s: backend socket: %s", srv->cfg.name, strerror(errno));
		free(s);
		return NULL;
	}
	s->w.cb = session_udp_cb;
	s->w.data = s;
	if (watcher_start(srv->loop, &s->w, EPOLLIN) < 0) {
		close(s->w.fd);
		free(s);
		return NULL;
	}
	timer_init(&s->expire, session_expire_cb, s);
	s->id = ++srv->next_id;
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	srv->st.sessions_created++;
	return s;
}

static void
session_free_cb(void *arg)
{
	struct session *s = arg;
	free(s->held);
	free(s);
}

static void
session_destroy(struct session *s)
{
	struct server *srv = s->srv;
	if (s->dead)
		return;
	s->dead = 1;
	while (s->conns) /* only at server teardown: sessions expire when empty */
		conn_close(s->conns, CR_SHUTDOWN);
	for (unsigned i = 0; i < SESS_SPIS; i++)
		if (s->spis[i].type)
			spi_unlink(srv, &s->spis[i]);
	if (srv->batch_sess == s)
		batch_flush(srv);
	timer_stop(srv->loop, &s->expire);
	watcher_stop(srv->loop, &s->w);
	close(s->w.fd);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nsessions--;
	loop_defer(srv->loop, &s->dfr, session_free_cb, s);
}

static void
set_current(struct session *s, struct sconn *c)
{
	struct sconn *old = s->current;

	if (old == c)
		return;
	if (old && c)
		s->srv->st.path_switches++;
	s->current = c;
	/* R34: the old connection may still carry the client's retransmissions
	 * for a while; once it has been quiet for replaced-idle-timeout it is
	 * closed (conn_timer_cb). A frame on it re-arms the timer. */
	if (old && c && old->state == SC_OPEN)
		timer_start(s->srv->loop, &old->timer, s->srv->cfg.replaced_idle_ms);
	if (c && c->state == SC_OPEN)
		timer_stop(s->srv->loop, &c->timer);
	if (c)
		log_debug("session %llu: return path now conn %llu (%s)", (unsigned long long)s->id,
			  (unsigned long long)c->id, c->peer_str);
	if (c && s->held) {
		/* R36 (TR side): an IKE message the backend sent while no
		 * connection existed goes out on the next one. */
		if (iketcp_sendq_push_datagram(&c->q, s->held, s->held_len) != IKETCP_OK)
			s->srv->st.sendq_drops++;
		free(s->held);
		s->held = NULL;
		s->held_len = 0;
		conn_flush(c);
	}
}

static void
detach(struct sconn *c)
{
	struct session *s = c->sess;
	if (!s)
		return;
	if (c->s_prev)
		c->s_prev->s_next = c->s_next;
	else
		s->conns = c->s_next;
	if (c->s_next)
		c->s_next->s_prev = c->s_prev;
	c->s_next = c->s_prev = NULL;
	c->sess = NULL;
	for (unsigned i = 0; i < SESS_REQS; i++)
		if (s->reqs[i].conn == c)
			s->reqs[i].conn = NULL;
	if (s->current == c) {
		/* The newest remaining connection takes over: the TO opened
		 * it last, so it is the one it uses (R31). */
		struct sconn *best = NULL;
		for (struct sconn *o = s->conns; o; o = o->s_next)
			if (!best || o->attach_seq > best->attach_seq)
				best = o;
		s->current = NULL;
		set_current(s, best);
	}
	if (!s->conns && !s->dead)
		timer_start(s->srv->loop, &s->expire, s->srv->cfg.session_timeout_ms);
}

static void
attach(struct sconn *c, struct session *s)
{
	if (c->sess == s)
		return;
	detach(c);
	c->sess = s;
	c->attach_seq = ++s->srv->attach_seq;
	c->s_prev = NULL;
	c->s_next = s->conns;
	if (s->conns)
		s->conns->s_prev = c;
	s->conns = c;
	timer_stop(s->srv->loop, &s->expire);
	if (!s->current)
		set_current(s, c);
	log_debug("conn %llu (%s) joins session %llu", (unsigned long long)c->id, c->peer_str,
		  (unsigned long long)s->id);
}

/* Backend -> client. */
static void
session_udp_cb(struct watcher *w, uint32_t ev)
{
	struct session *s = w->data;
	struct server *srv = s->srv;
	(void)ev;

	for (unsigned i = 0; i < UDP_BATCH; i++) {
		srv->riov[i].iov_base = srv->rdg + (size_t)i * IKETCP_BODY_MAX;
		srv->riov[i].iov_len = IKETCP_BODY_MAX;
		srv->rmsg[i].msg_hdr = (struct msghdr){.msg_iov = &srv->riov[i], .msg_iovlen = 1};
	}
	int n = recvmmsg(w->fd, srv->rmsg, UDP_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return; /* EAGAIN, or ICMP errors from a backend that is down */
	for (int i = 0; i < n; i++) {
		const uint8_t *p = srv->riov[i].iov_base;
		size_t len = srv->rmsg[i].msg_len;
		struct iketcp_ike_hdr h;
		int is_ike = len > IKETCP_MARKER_LEN && !p[0] && !p[1] && !p[2] && !p[3];

		srv->st.from_backend++;
		if (len == 1 && p[0] == IKETCP_KEEPALIVE_OCTET) {
			srv->st.backend_keepalives++; /* R47: never framed */
			continue;
		}
		if (is_ike && iketcp_ike_parse(p + 4, len - 4, &h) == IKETCP_OK &&
		    iketcp_ike_is_response(&h)) {
			/* R32: the backend answered a request; the connection it
			 * came on proved itself and becomes the return path. */
			for (unsigned k = 0; k < SESS_REQS; k++)
				if (s->reqs[k].conn && s->reqs[k].spi_i == h.spi_i &&
				    s->reqs[k].msg_id == h.msg_id)
					set_current(s, s->reqs[k].conn);
		}
		if (!s->current) {
			if (is_ike) {
				uint8_t *copy = malloc(len);
				if (copy) {
					memcpy(copy, p, len);
					free(s->held);
					s->held = copy;
					s->held_len = len;
				}
			} else {
				srv->st.no_conn_drops++;
			}
			continue;
		}
		int rc = iketcp_sendq_push_datagram(&s->current->q, p, len);
		if (rc == IKETCP_E_NOBUFS)
			srv->st.sendq_drops++;
		else if (rc != IKETCP_OK)
			srv->st.no_conn_drops++;
	}
	if (s->current)
		conn_flush(s->current);
}

/* ---- memory ---------------------------------------------------------------------- */

/* Buffers are trimmed when a queue empties and after each read; the trims
 * only free what was unused since the previous trim, so that a busy
 * connection does not allocate per frame. A connection that went idle
 * gets no more such calls: this sweep gives it the second one. */
#define TRIM_SWEEP_MS 5000

static void
trim_sweep_cb(struct timer *t)
{
	struct server *srv = t->data;
	for (struct sconn *c = srv->conns; c; c = c->next) {
		iketcp_sendq_trim(&c->q);
		iketcp_deframer_trim(&c->df);
	}
	timer_start(srv->loop, t, TRIM_SWEEP_MS);
}

/* ---- connections ------------------------------------------------------------- */

/* Sets the epoll interest from what the transport waits for (OpenSSL's
 * WANT_READ/WANT_WRITE included) and whether frames are queued. */
static void
conn_want(struct sconn *c)
{
	unsigned want;

	if (c->state == SC_CLOSED)
		return;
	if (c->state == SC_SNIFF || c->state == SC_PROXY_HDR)
		want = IKETCP_WANT_READ;
	else
		want = iketcp_transport_interest(&c->tr, c->state != SC_DRAINING,
						 iketcp_sendq_bytes(&c->q) > 0);
	watcher_set(c->srv->loop, &c->w,
		    (want & IKETCP_WANT_READ ? EPOLLIN : 0) |
			    (want & IKETCP_WANT_WRITE ? EPOLLOUT : 0));
}

/* The transport's last error text, for a close message. */
static const char *
conn_err(struct sconn *c, char *buf, size_t len)
{
	if (iketcp_transport_last_error(&c->tr, buf, len) == 0)
		snprintf(buf, len, "%s", strerror(errno));
	return buf;
}

static void
conn_flush(struct sconn *c)
{
	char e[IKETCP_TRANSPORT_ERR_MAX];

	if (c->state == SC_CLOSED)
		return;
	if (!iketcp_transport_handshake_done(&c->tr)) {
		/* still sniffing or in the TLS handshake: nothing to write yet */
		if (c->state == SC_DRAINING)
			conn_close(c, CR_SHUTDOWN);
		return;
	}
	int rc = iketcp_transport_send(&c->tr, &c->q);
	if (rc == IKETCP_OK)
		iketcp_sendq_trim(&c->q); /* memory: the queue is empty (see trim_sweep_cb) */
	if (rc == IKETCP_OK && c->state == SC_DRAINING) {
		conn_close(c, CR_SHUTDOWN);
		return;
	}
	if (rc != IKETCP_OK && rc != IKETCP_E_AGAIN) {
		conn_close_msg(c, CR_WRITE, conn_err(c, e, sizeof(e)));
		return;
	}
	conn_want(c);
}

static void
conn_free_cb(void *arg)
{
	struct sconn *c = arg;
	iketcp_transport_free(&c->tr); /* drops its TLS context reference */
	free(c->pp);
	iketcp_deframer_free(&c->df);
	iketcp_sendq_free(&c->q);
	free(c);
}

static void
conn_close_msg(struct sconn *c, enum close_reason why, const char *detail)
{
	struct server *srv = c->srv;
	if (c->state == SC_CLOSED)
		return;
	/* HAProxy ends each health check (a LOCAL header, nothing else) with
	 * a reset: every few seconds, forever. Not a warning, not a read error. */
	if (c->pp_local && c->frames_in == 0 && (why == CR_EOF || why == CR_ERROR)) {
		why = CR_HEALTH_CHECK;
		detail = NULL;
	}
	enum log_level lvl = why == CR_HEALTH_CHECK ? LOG_LVL_DEBUG
			     : why == CR_EOF || why == CR_SHUTDOWN || why == CR_REPLACED
				     ? LOG_LVL_INFO
				     : LOG_LVL_WARN;
	log_peer(lvl, LOGC_PROTO,
		 "conn %llu %s%s: closed in %s: %s%s%s (frames in %llu, out %llu, esp dropped "
		 "%llu)",
		 (unsigned long long)c->id, c->peer_str, c->is_tls ? " (TLS)" : "",
		 state_names[c->state], close_names[why], detail ? ": " : "", detail ? detail : "",
		 (unsigned long long)c->frames_in,
		 (unsigned long long)(c->q.stats.frames_out[0] + c->q.stats.frames_out[1]),
		 (unsigned long long)c->q.stats.dropped[IKETCP_CLASS_ESP]);
	srv->st.closed[why]++;
	if (srv->batch_sess && srv->bn)
		batch_flush(srv); /* frames may point into this conn's buffers */
	/* A15: closing on our side (drain, or answering the peer's close) is
	 * TLS close_notify, then FIN. Best effort: the socket is closed next. */
	if ((why == CR_SHUTDOWN || why == CR_EOF || why == CR_REPLACED) &&
	    iketcp_transport_handshake_done(&c->tr) &&
	    iketcp_transport_shutdown(&c->tr) != IKETCP_OK)
		log_debug("conn %llu: no close_notify sent", (unsigned long long)c->id);
	detach(c);
	if (c->pending)
		srv->npending--;
	c->state = SC_CLOSED;
	src_put(srv, c->src);
	c->src = NULL;
	timer_stop(srv->loop, &c->timer);
	watcher_stop(srv->loop, &c->w);
	close(c->w.fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	loop_defer(srv->loop, &c->dfr, conn_free_cb, c);
}

static void
conn_close(struct sconn *c, enum close_reason why)
{
	conn_close_msg(c, why, NULL);
}

static void
conn_timer_cb(struct timer *t)
{
	struct sconn *c = t->data;
	switch (c->state) {
	case SC_DRAINING:
		conn_close(c, CR_SHUTDOWN);
		break;
	case SC_OPEN:
		/* armed only while replaced (set_current); nothing is lost:
		 * replies go to the current connection, and a queue that still
		 * drains gets more time */
		if (!c->sess || c->sess->current == c)
			break;
		if (iketcp_sendq_bytes(&c->q) > 0) {
			timer_start(c->srv->loop, &c->timer, c->srv->cfg.replaced_idle_ms);
			break;
		}
		conn_close(c, CR_REPLACED);
		break;
	case SC_TLS_HANDSHAKE:
		c->srv->st.tls_handshake_timeouts++;
		conn_close(c, CR_TLS_TIMEOUT);
		break;
	default:
		conn_close(c, CR_PREFIX_TIMEOUT);
		break;
	}
}

/* Advances the TLS handshake; when it is done, the prefix timeout starts. */
static void
conn_handshake(struct sconn *c)
{
	struct server *srv = c->srv;
	char e[IKETCP_TRANSPORT_ERR_MAX];
	int rc = iketcp_transport_handshake(&c->tr);

	if (rc == IKETCP_E_AGAIN) {
		conn_want(c);
		return;
	}
	if (rc != IKETCP_OK) {
		srv->st.tls_handshakes_failed++;
		conn_close_msg(c, CR_TLS_HANDSHAKE, conn_err(c, e, sizeof(e)));
		return;
	}
	srv->st.tls_handshakes++;
	if (iketcp_tls_resumed(&c->tr))
		srv->st.tls_resumed++;
	log_debug("conn %llu %s: TLS handshake done: %s, %s%s", (unsigned long long)c->id,
		  c->peer_str, iketcp_tls_version(&c->tr), iketcp_tls_cipher(&c->tr),
		  iketcp_tls_resumed(&c->tr) ? ", resumed session" : "");
	c->state = SC_WAIT_PREFIX;
	if (timer_start(srv->loop, &c->timer, srv->cfg.prefix_timeout_ms) < 0) {
		conn_close(c, CR_NOMEM);
		return;
	}
	conn_read(c); /* the prefix may have come with the client's Finished */
}

/* Starts the TLS server side on c's socket (listen-tls, or sniffed 0x16). */
static void
conn_start_tls(struct sconn *c)
{
	struct server *srv = c->srv;

	if (!srv->tls_ctx) { /* a reload turned TLS off meanwhile */
		conn_close_msg(c, CR_TLS_HANDSHAKE, "TLS is not configured");
		return;
	}
	if (iketcp_tls_server_init(&c->tr, srv->tls_ctx, c->w.fd) != IKETCP_OK) {
		conn_close(c, CR_NOMEM);
		return;
	}
	c->is_tls = 1;
	c->state = SC_TLS_HANDSHAKE;
	if (timer_start(srv->loop, &c->timer, srv->cfg.tls_handshake_timeout_ms) < 0) {
		conn_close(c, CR_NOMEM);
		return;
	}
	conn_handshake(c);
}

/* sniff-tls: the first byte, peeked (it stays in the socket for OpenSSL or
 * the deframer), tells TLS (0x16) from plain RFC 9329. */
static void
conn_sniff(struct sconn *c)
{
	struct server *srv = c->srv;
	int k = iketcp_stream_peek(c->w.fd);

	if (k == IKETCP_E_AGAIN)
		return;
	if (k == IKETCP_STREAM_EOF) {
		conn_close(c, CR_EOF);
		return;
	}
	if (k < 0) {
		conn_close_msg(c, CR_ERROR, strerror(errno));
		return;
	}
	if (k == IKETCP_STREAM_TLS) {
		srv->st.sniffed_tls++;
		conn_start_tls(c);
		return;
	}
	srv->st.sniffed_plain++;
	if (iketcp_transport_tcp_init(&c->tr, c->w.fd, 0) != IKETCP_OK) {
		conn_close(c, CR_NOMEM);
		return;
	}
	c->state = SC_WAIT_PREFIX;
	conn_read(c); /* anything else than 'I' fails as a bad prefix there */
}

/* What a connection does first once any PROXY header is behind it: TLS on
 * a listen-tls address, the first byte with sniff-tls, else plain TCP. */
static void
conn_begin(struct sconn *c)
{
	struct server *srv = c->srv;

	if (c->tls_listener) {
		conn_start_tls(c);
	} else if (srv->sniff) {
		c->state = SC_SNIFF;
		conn_sniff(c);
	} else if (iketcp_transport_tcp_init(&c->tr, c->w.fd, 0) != IKETCP_OK) {
		conn_close(c, CR_NOMEM);
	} else {
		c->state = SC_WAIT_PREFIX;
		conn_read(c);
	}
}

/*
 * proxy-protocol: reads the balancer's PROXY header, exactly: bytes are
 * peeked, and only those that belong to the header are consumed, so the
 * client's stream (RFC 9329 prefix or TLS ClientHello) stays in the socket
 * for what comes next. An incomplete header is consumed whole (every byte
 * of it is header, iketcp_pp_parse() returns 0 only then), so level-
 * triggered epoll does not report the same bytes again.
 */
static void
conn_proxy_hdr(struct sconn *c)
{
	struct server *srv = c->srv;
	struct iketcp_pp_info pi;
	char why[IKETCP_PP_REASON_MAX], as[64];

	if (!c->pp && !(c->pp = malloc(IKETCP_PP_MAX_DEFAULT))) {
		conn_close(c, CR_NOMEM);
		return;
	}
	ssize_t n = recv(c->w.fd, c->pp + c->pp_len, IKETCP_PP_MAX_DEFAULT - c->pp_len, MSG_PEEK);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_close_msg(c, CR_ERROR, strerror(errno));
		return;
	}
	if (n == 0) {
		conn_close(c, CR_EOF);
		return;
	}
	long r = iketcp_pp_parse(c->pp, c->pp_len + (size_t)n, IKETCP_PP_MAX_DEFAULT, &pi, why);
	if (r < 0) {
		conn_close_msg(c, CR_PROXY_HDR, why);
		return;
	}
	size_t take = r > 0 ? (size_t)r - c->pp_len : (size_t)n;
	if (recv(c->w.fd, c->pp + c->pp_len, take, 0) != (ssize_t)take) {
		conn_close_msg(c, CR_ERROR, "short read of a peeked PROXY header");
		return;
	}
	c->pp_len += take;
	if (r == 0)
		return; /* more to come, under prefix-timeout */
	free(c->pp);
	c->pp = NULL;
	srv->st.proxy_headers++;
	if (pi.family == AF_INET || pi.family == AF_INET6) {
		/* From here on the connection is the client's: logs and the
		 * per-source limit use its address, not the balancer's. */
		struct iketcpd_addr client = {.ss = pi.src,
					      .len = pi.family == AF_INET
							     ? sizeof(struct sockaddr_in)
							     : sizeof(struct sockaddr_in6)};
		struct src_ent *src = src_get(srv, &client, 1);
		iketcpd_addr_str(&client, as, sizeof(as));
		log_debug("conn %llu %s: PROXY v%d header: client %s", (unsigned long long)c->id,
			  c->peer_str, pi.version, as);
		if (!src || src->count >= srv->cfg.max_conns_per_source) {
			srv->st.refused_source++;
			if (src && src->count == 0) {
				src->count = 1;
				src_put(srv, src);
			}
			conn_close_msg(c, CR_PROXY_SOURCE, as);
			return;
		}
		/* take the new entry before letting go of the old one: they are
		 * the same when the header names the balancer's own address */
		src->count++;
		src_put(srv, c->src);
		c->src = src;
		snprintf(c->peer_str, sizeof(c->peer_str), "%s", as);
	} else {
		srv->st.proxy_local++;
		c->pp_local = 1;
		log_debug("conn %llu %s: PROXY v%d header without a client (LOCAL or UNKNOWN)",
			  (unsigned long long)c->id, c->peer_str, pi.version);
	}
	conn_begin(c);
}

/* Finds (or, for an IKE_SA_INIT request, creates) the session of a frame. */
static struct session *
route(struct sconn *c, const struct iketcp_frame *f)
{
	struct server *srv = c->srv;
	struct session *s;

	if (f->kind == IKETCP_FRAME_ESP) {
		if (c->sess && f->spi == c->last_spi)
			return c->sess; /* steady state: no table lookup */
		s = spi_find(srv, 2, f->spi);
		if (!s && c->sess) {
			s = c->sess; /* a new CHILD SA of this connection's session */
			spi_add(s, 2, f->spi);
		}
		if (s) {
			attach(c, s);
			c->last_spi = f->spi;
		}
		return s;
	}
	struct iketcp_ike_hdr h;
	if (iketcp_ike_parse(f->msg, f->msg_len, &h) != IKETCP_OK)
		return NULL; /* cannot happen for a classified IKE frame */
	s = spi_find(srv, 1, h.spi_i);
	if (!s) {
		if (c->sess)
			s = c->sess; /* IKE SA rekey: new SPIs on the same connection */
		else if (h.exchange == IKETCP_IKE_SA_INIT && h.spi_r == 0 &&
			 !iketcp_ike_is_response(&h))
			s = session_new(srv);
		if (!s)
			return NULL;
		spi_add(s, 1, h.spi_i);
	}
	attach(c, s);
	if (!iketcp_ike_is_response(&h)) {
		unsigned k = s->req_next++ % SESS_REQS;
		s->reqs[k].spi_i = h.spi_i;
		s->reqs[k].msg_id = h.msg_id;
		s->reqs[k].conn = c;
	}
	return s;
}

/* Returns 0 to keep reading, -1 when the connection was closed. */
static int
conn_frame(struct sconn *c, const uint8_t *fr, size_t flen)
{
	struct server *srv = c->srv;
	struct iketcp_frame f;

	if (iketcp_frame_classify(fr, flen, &f) != IKETCP_OK)
		return 0; /* cannot happen: the deframer hands out whole frames */
	c->frames_in++;
	switch (f.kind) {
	case IKETCP_FRAME_FATAL: /* the deframer already refused Length 0/1 */
		conn_close(c, CR_BADLEN);
		return -1;
	case IKETCP_FRAME_EMPTY:
		srv->st.frames_empty++; /* R5 */
		return 0;
	case IKETCP_FRAME_KEEPALIVE:
		srv->st.frames_keepalive++; /* R48 */
		return 0;
	case IKETCP_FRAME_RUNT:
		srv->st.frames_runt++;
		log_peer(LOG_LVL_DEBUG, LOGC_PROTO, "conn %llu %s: runt frame (%s, length %u)",
			 (unsigned long long)c->id, c->peer_str, iketcp_runt_name(f.runt),
			 f.length);
		break;
	case IKETCP_FRAME_IKE:
	case IKETCP_FRAME_ESP: {
		if (f.kind == IKETCP_FRAME_IKE)
			srv->st.frames_ike++;
		else
			srv->st.frames_esp++;
		struct session *s = route(c, &f);
		if (!s) {
			srv->st.unroutable++;
			break;
		}
		c->bad_run = 0;
		if (c->state == SC_WAIT_FRAME) {
			c->state = SC_OPEN;
			timer_stop(srv->loop, &c->timer);
		}
		if (c->sess && c->sess->current != c && timer_armed(&c->timer))
			timer_start(srv->loop, &c->timer, srv->cfg.replaced_idle_ms);
		batch_add(srv, s, f.body, f.body_len);
		/* A frame assembled in the deframer's buffer is only valid until
		 * the next call: send it now. Frames in rbuf wait for the batch. */
		if (fr < srv->rbuf || fr >= srv->rbuf + sizeof(srv->rbuf))
			batch_flush(srv);
		return 0;
	}
	}
	/* R27: a run of frames that are neither usable IKE nor ESP with a
	 * known SPI means the stream is corrupt. R28: short runs are fine. */
	if (++c->bad_run >= srv->cfg.max_bad_frames) {
		conn_close(c, CR_BAD_FRAMES);
		return -1;
	}
	return 0;
}

/* A pending connection stops being pending once its prefix is complete. */
static void
conn_prefix_check(struct sconn *c)
{
	if (c->pending && iketcp_deframer_prefix_done(&c->df)) {
		c->pending = 0;
		c->srv->npending--;
		c->state = SC_WAIT_FRAME;
	}
}

/* Reads what the connection has into srv->rbuf (net_transport_fill(): one
 * recv for plain TCP, whole TLS records gathered for TLS) and parses the
 * frames in place; bytes handed back by a proxy step are read on too. */
static void
conn_read(struct sconn *c)
{
	struct server *srv = c->srv;
	char e[IKETCP_TRANSPORT_ERR_MAX];

	do {
		long last;
		long n = net_transport_fill(&c->tr, c->is_tls, srv->rbuf, sizeof(srv->rbuf), &last);
		if (n == 0) {
			conn_close(c, CR_EOF);
			return;
		}
		if (n < 0) {
			if (n != IKETCP_E_AGAIN)
				conn_close_msg(c, CR_ERROR, conn_err(c, e, sizeof(e)));
			else if (c->is_tls)
				conn_want(c); /* a TLS read may wait for writability */
			return;
		}
		c->bytes_in += (size_t)n;
		struct iketcp_cur in;
		iketcp_cur_init(&in, srv->rbuf, (size_t)n);
		const uint8_t *fr;
		size_t flen;
		int rc;
		while ((rc = iketcp_deframer_next(&c->df, &in, &fr, &flen)) == 1) {
			conn_prefix_check(c);
			if (conn_frame(c, fr, flen) < 0)
				return;
		}
		conn_prefix_check(c); /* the prefix may end a read without a frame */
		if (srv->bn)
			batch_flush(srv);
		if (rc < 0) {
			enum close_reason why = rc == IKETCP_E_BADPREFIX ? CR_BAD_PREFIX
						: rc == IKETCP_E_BADLEN  ? CR_BADLEN
						: rc == IKETCP_E_TOOBIG  ? CR_TOOBIG
									 : CR_NOMEM;
			conn_close(c, why);
			return;
		}
		if (last == 0) {
			conn_close(c, CR_EOF);
			return;
		}
		if (last != IKETCP_E_AGAIN) {
			conn_close_msg(c, CR_ERROR, conn_err(c, e, sizeof(e)));
			return;
		}
		/* bytes handed back to the transport (iketcp_transport_preread())
		 * are not announced by epoll: read on while there are some */
	} while (c->tr.pre != NULL);
	iketcp_deframer_trim(&c->df); /* memory: keeps a partial frame's buffer */
	if (c->is_tls)
		conn_want(c);
}

static void
conn_cb(struct watcher *w, uint32_t ev)
{
	struct sconn *c = w->data;

	switch (c->state) {
	case SC_PROXY_HDR:
		conn_proxy_hdr(c);
		return;
	case SC_SNIFF:
		conn_sniff(c);
		return;
	case SC_TLS_HANDSHAKE:
		conn_handshake(c);
		return;
	case SC_DRAINING:
		conn_flush(c); /* closes once everything is written */
		if (c->state == SC_DRAINING && (ev & (EPOLLERR | EPOLLHUP)))
			conn_close(c, CR_SHUTDOWN);
		return;
	case SC_CLOSED:
		return;
	default:
		break;
	}
	int rd, wr;
	net_transport_ready(&c->tr, ev, &rd, &wr);
	if (rd)
		conn_read(c);
	if (wr && c->state != SC_CLOSED)
		conn_flush(c);
}

static void
addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	struct iketcpd_addr a = {.ss = *ss,
				 .len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
								 : sizeof(struct sockaddr_in6)};
	iketcpd_addr_str(&a, buf, len);
}

/* proxy-protocol: only the listed balancers may say who the client is. */
static int
proxy_trusted(const struct server *srv, const struct iketcpd_addr *a)
{
	for (int i = 0; i < srv->cfg.nproxy_from; i++)
		if (iketcpd_prefix_match(&srv->cfg.proxy_from[i], a))
			return 1;
	return 0;
}

static void
listener_cb(struct watcher *w, uint32_t ev)
{
	struct listener *ls = w->data;
	struct server *srv = ls->srv;
	(void)ev;

	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct iketcpd_addr peer = {.len = sizeof(peer.ss)};
		int fd = accept4(w->fd, (struct sockaddr *)&peer.ss, &peer.len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_peer(LOG_LVL_WARN, LOGC_ACCEPT, "%s: accept: %s", srv->cfg.name,
					 strerror(errno));
			return;
		}
		char ps[64];
		addr_text(&peer.ss, ps, sizeof(ps));
		struct src_ent *src = src_get(srv, &peer, 1);
		const char *why = NULL;
		if (srv->cfg.proxy_protocol && !proxy_trusted(srv, &peer)) {
			srv->st.refused_proxy_source++;
			why = "not a proxy-protocol-from address";
		} else if (srv->nconns >= srv->cfg.max_conns) {
			srv->st.refused_total++;
			why = "max-conns reached";
		} else if (!src || (!srv->cfg.proxy_protocol &&
				    src->count >= srv->cfg.max_conns_per_source)) {
			/* Behind a balancer every client comes from its address:
			 * the limit applies to the client the header names. */
			srv->st.refused_source++;
			why = "max-conns-per-source reached";
		} else if (srv->npending >= srv->cfg.max_pending) {
			srv->st.refused_pending++;
			why = "max-pending reached";
		}
		struct sconn *c = why ? NULL : calloc(1, sizeof(*c));
		if (!why && !c)
			why = "out of memory";
		if (why) {
			log_peer(LOG_LVL_WARN, LOGC_ACCEPT, "%s: refused %s: %s", srv->cfg.name, ps,
				 why);
			close(fd);
			if (src && src->count == 0) {
				src->count = 1;
				src_put(srv, src);
			}
			continue;
		}
		struct iketcp_deframer_cfg dc = {.expect_prefix = 1,
						 .max_frame = srv->cfg.max_frame};
		struct iketcp_sendq_cfg qc = {.budget = srv->cfg.send_budget,
					      .ike_reserve = srv->cfg.ike_reserve};
		if (iketcp_deframer_init(&c->df, &dc) != IKETCP_OK ||
		    iketcp_sendq_init(&c->q, &qc) != IKETCP_OK) {
			close(fd);
			free(c);
			continue;
		}
		c->srv = srv;
		c->id = ++srv->next_id;
		memcpy(c->peer_str, ps, sizeof(c->peer_str));
		c->w.fd = fd;
		c->w.cb = conn_cb;
		c->w.data = c;
		c->pending = 1;
		c->src = src;
		src->count++;
		(void)net_tcp_tune(fd, srv->cfg.tcp_keepalive);
		timer_init(&c->timer, conn_timer_cb, c);
		/* listen-tls: TLS at once. A plain port with sniff-tls: first byte.
		 * Otherwise plain TCP, exactly as without TLS support. */
		int rc = IKETCP_OK;
		uint32_t tmo = srv->cfg.prefix_timeout_ms;
		c->tls_listener = ls->tls;
		if (srv->cfg.proxy_protocol) {
			c->state = SC_PROXY_HDR; /* then conn_begin() */
		} else if (ls->tls) {
			rc = iketcp_tls_server_init(&c->tr, srv->tls_ctx, fd);
			c->is_tls = 1;
			c->state = SC_TLS_HANDSHAKE;
			tmo = srv->cfg.tls_handshake_timeout_ms;
		} else if (srv->sniff) {
			c->state = SC_SNIFF; /* transport chosen by the first byte */
		} else {
			rc = iketcp_transport_tcp_init(&c->tr, fd, 0);
			c->state = SC_WAIT_PREFIX;
		}
		if (rc != IKETCP_OK || watcher_start(srv->loop, &c->w, EPOLLIN) < 0 ||
		    timer_start(srv->loop, &c->timer, tmo) < 0) {
			watcher_stop(srv->loop, &c->w);
			timer_stop(srv->loop, &c->timer);
			src_put(srv, src);
			iketcp_transport_free(&c->tr);
			iketcp_deframer_free(&c->df);
			iketcp_sendq_free(&c->q);
			close(fd);
			free(c);
			continue;
		}
		c->next = srv->conns;
		if (c->next)
			c->next->prev = c;
		srv->conns = c;
		srv->nconns++;
		srv->npending++;
		srv->st.accepted++;
		log_debug("conn %llu %s: accepted on %s%s", (unsigned long long)c->id, ps,
			  srv->cfg.name, ls->tls ? " (TLS)" : "");
	}
}

/* ---- listeners and lifecycle -------------------------------------------------- */

static int
listener_open(struct server *srv, const struct iketcpd_addr *a, int tls)
{
	char as[64];
	struct listener *ls = &srv->ls[srv->nls];
	iketcpd_addr_str(a, as, sizeof(as));
	int fd = net_tcp_listen(a, 1024);
	if (fd < 0) {
		log_err("%s: listen on %s: %s", srv->cfg.name, as, strerror(errno));
		return -1;
	}
	*ls = (struct listener){
		.w = {.fd = fd, .cb = listener_cb, .data = ls}, .addr = *a, .tls = tls, .srv = srv};
	if (watcher_start(srv->loop, &ls->w, EPOLLIN) < 0) {
		close(fd);
		return -1;
	}
	srv->nls++;
	log_info("%s: listening on %s (%s)", srv->cfg.name, as,
		 tls          ? "RFC 9329 over TLS"
		 : srv->sniff ? "RFC 9329 over TCP, and over TLS by the first byte"
			      : "RFC 9329 over TCP");
	return 0;
}

static void
listener_close(struct server *srv, int i)
{
	watcher_stop(srv->loop, &srv->ls[i].w);
	close(srv->ls[i].w.fd);
	/* keep the array dense; watchers point at their slot, so re-register */
	for (int k = i; k + 1 < srv->nls; k++) {
		watcher_stop(srv->loop, &srv->ls[k + 1].w);
		srv->ls[k] = srv->ls[k + 1];
		srv->ls[k].w.data = &srv->ls[k];
		srv->ls[k].w.active = 0;
		watcher_start(srv->loop, &srv->ls[k].w, EPOLLIN);
	}
	srv->nls--;
}

static int
same_addr(const struct iketcpd_addr *a, const struct iketcpd_addr *b)
{
	return a->len == b->len && !memcmp(&a->ss, &b->ss, a->len);
}

/* Does cfg (with TLS available or not) have this listener? */
static int
cfg_has_listener(const struct iketcpd_server_cfg *cfg, const struct listener *l, int tls_ok)
{
	if (l->tls) {
		for (int k = 0; tls_ok && k < cfg->nlisten_tls; k++)
			if (same_addr(&l->addr, &cfg->listen_tls[k]))
				return 1;
		return 0;
	}
	for (int k = 0; k < cfg->nlisten; k++)
		if (same_addr(&l->addr, &cfg->listen[k]))
			return 1;
	return 0;
}

static int
srv_has_listener(const struct server *srv, const struct iketcpd_addr *a, int tls)
{
	for (int i = 0; i < srv->nls; i++)
		if (srv->ls[i].tls == tls && same_addr(&srv->ls[i].addr, a))
			return 1;
	return 0;
}

/* Opens what cfg lists and srv does not have yet. Returns 0 or -1. */
static int
listeners_open(struct server *srv, const struct iketcpd_server_cfg *cfg)
{
	int rc = 0;
	for (int k = 0; k < cfg->nlisten; k++)
		if (!srv_has_listener(srv, &cfg->listen[k], 0) &&
		    listener_open(srv, &cfg->listen[k], 0) < 0)
			rc = -1;
	for (int k = 0; srv->tls_ctx && k < cfg->nlisten_tls; k++)
		if (!srv_has_listener(srv, &cfg->listen_tls[k], 1) &&
		    listener_open(srv, &cfg->listen_tls[k], 1) < 0)
			rc = -1;
	return rc;
}

static void
tls_warnings(const struct iketcpd_server_cfg *cfg)
{
	if (cfg->tls_cert[0] && cfg->tls.null_cipher)
		log_warn("%s: tls-null-cipher is on: TLS 1.2 clients that ask for it get no TLS "
			 "encryption (RFC 9329 Appendix A allows it, RFC 9325 forbids it; IKE and "
			 "ESP inside stay encrypted)",
			 cfg->name);
}

struct server *
server_new(struct loop *l, const struct iketcpd_server_cfg *cfg)
{
	struct server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return NULL;
	srv->loop = l;
	srv->cfg = *cfg;
	timer_init(&srv->trim_sweep, trim_sweep_cb, srv);
	srv->rdg = malloc((size_t)UDP_BATCH * IKETCP_BODY_MAX);
	if (!srv->rdg) {
		free(srv);
		return NULL;
	}
	if (cfg->tls_cert[0]) {
		char err[512];
		srv->tls_ctx = tlscfg_server_ctx(cfg, err, sizeof(err));
		if (!srv->tls_ctx) {
			log_err("%s: TLS: %s", cfg->name, err);
			server_free(srv);
			return NULL;
		}
		tls_warnings(cfg);
	}
	srv->sniff = srv->tls_ctx && iketcpd_server_sniff_tls(cfg);
	if (listeners_open(srv, cfg) < 0) {
		server_free(srv);
		return NULL;
	}
	timer_start(l, &srv->trim_sweep, TRIM_SWEEP_MS);
	char bs[64];
	log_info("%s: backend %s, prefix-timeout %ums, max-conns %u (%u per source, %u pending)",
		 cfg->name, iketcpd_addr_str(&cfg->backend, bs, sizeof(bs)), cfg->prefix_timeout_ms,
		 cfg->max_conns, cfg->max_conns_per_source, cfg->max_pending);
	if (srv->tls_ctx)
		log_info("%s: TLS certificate %s, key %s, tls-min-version %s, "
			 "tls-handshake-timeout %ums",
			 cfg->name, cfg->tls_cert, cfg->tls_key,
			 cfg->tls.min_version == IKETCPD_TLS_V13 ? "1.3" : "1.2",
			 cfg->tls_handshake_timeout_ms);
	return srv;
}

int
server_reload(struct server *srv, const struct iketcpd_server_cfg *cfg)
{
	int rc = 0;
	/* The certificate and key files are read again on every reload (a
	 * renewed certificate under the same name). New connections get the new
	 * context; established ones keep theirs (they hold a reference). A
	 * broken new file keeps the old context. */
	if (cfg->tls_cert[0]) {
		char err[512];
		struct iketcp_tls_ctx *n = tlscfg_server_ctx(cfg, err, sizeof(err));
		if (n) {
			iketcp_tls_ctx_unref(srv->tls_ctx);
			srv->tls_ctx = n;
			log_info("%s: TLS certificate %s loaded", cfg->name, cfg->tls_cert);
			tls_warnings(cfg);
		} else if (srv->tls_ctx) {
			log_err("%s: reload: %s; keeping the previous TLS certificate and key",
				cfg->name, err);
			rc = -1;
		} else {
			log_err("%s: reload: %s; TLS stays off", cfg->name, err);
			rc = -1;
		}
	} else if (srv->tls_ctx) {
		iketcp_tls_ctx_unref(srv->tls_ctx);
		srv->tls_ctx = NULL;
	}
	int sniff = srv->tls_ctx && iketcpd_server_sniff_tls(cfg);
	for (int i = srv->nls - 1; i >= 0; i--)
		if (!cfg_has_listener(cfg, &srv->ls[i], srv->tls_ctx != NULL))
			listener_close(srv, i);
	srv->sniff = sniff;
	if (listeners_open(srv, cfg) < 0)
		rc = -1;
	/* New limits and timeouts apply to new connections and sessions;
	 * the backend address applies to new sessions only. */
	srv->cfg = *cfg;
	log_info("%s: configuration reloaded (%u connections kept)", srv->cfg.name, srv->nconns);
	return rc;
}

void
server_shutdown(struct server *srv)
{
	srv->shutting = 1;
	while (srv->nls)
		listener_close(srv, srv->nls - 1);
	for (struct sconn *c = srv->conns, *n; c; c = n) {
		n = c->next;
		if (c->state == SC_CLOSED)
			continue;
		c->state = SC_DRAINING;
		timer_start(srv->loop, &c->timer, DRAIN_MS);
		conn_flush(c); /* closes at once when nothing is queued */
	}
}

int
server_check(const struct iketcpd_server_cfg *cfg, char *err, size_t errlen)
{
	char e[512];
	struct iketcp_tls_ctx *ctx;

	if (!cfg->tls_cert[0])
		return 0;
	ctx = tlscfg_server_ctx(cfg, e, sizeof(e));
	if (!ctx) {
		snprintf(err, errlen, "server \"%s\": %s", cfg->name, e);
		return -1;
	}
	iketcp_tls_ctx_unref(ctx);
	return 0;
}

unsigned
server_conns(const struct server *srv)
{
	return srv->nconns;
}

const struct server_stats *
server_stats(const struct server *srv)
{
	return &srv->st;
}

const char *
server_name(const struct server *srv)
{
	return srv->cfg.name;
}

void
server_log_stats(const struct server *srv)
{
	const struct server_stats *st = &srv->st;
	log_info("%s: conns %u (pending %u), sessions %u; accepted %llu, refused %llu/%llu/%llu "
		 "(total/source/pending)",
		 srv->cfg.name, srv->nconns, srv->npending, srv->nsessions,
		 (unsigned long long)st->accepted, (unsigned long long)st->refused_total,
		 (unsigned long long)st->refused_source, (unsigned long long)st->refused_pending);
	log_info("%s: frames ike %llu esp %llu empty %llu keepalive %llu runt %llu unroutable "
		 "%llu; to backend %llu (dropped %llu); from backend %llu (keepalives %llu, "
		 "queue drops %llu, no-conn drops %llu); path switches %llu",
		 srv->cfg.name, (unsigned long long)st->frames_ike,
		 (unsigned long long)st->frames_esp, (unsigned long long)st->frames_empty,
		 (unsigned long long)st->frames_keepalive, (unsigned long long)st->frames_runt,
		 (unsigned long long)st->unroutable, (unsigned long long)st->to_backend,
		 (unsigned long long)st->to_backend_drops, (unsigned long long)st->from_backend,
		 (unsigned long long)st->backend_keepalives, (unsigned long long)st->sendq_drops,
		 (unsigned long long)st->no_conn_drops, (unsigned long long)st->path_switches);
	if (srv->cfg.proxy_protocol || st->proxy_headers)
		log_info("%s: PROXY headers %llu (without a client %llu); refused %llu not from a "
			 "proxy-protocol-from address",
			 srv->cfg.name, (unsigned long long)st->proxy_headers,
			 (unsigned long long)st->proxy_local,
			 (unsigned long long)st->refused_proxy_source);
	if (srv->tls_ctx || st->tls_handshakes || st->tls_handshakes_failed)
		log_info("%s: TLS handshakes %llu (resumed %llu, failed %llu, timed out %llu); "
			 "sniffed TLS %llu, plain %llu",
			 srv->cfg.name, (unsigned long long)st->tls_handshakes,
			 (unsigned long long)st->tls_resumed,
			 (unsigned long long)st->tls_handshakes_failed,
			 (unsigned long long)st->tls_handshake_timeouts,
			 (unsigned long long)st->sniffed_tls,
			 (unsigned long long)st->sniffed_plain);
	for (int r = 0; r < CR_COUNT; r++)
		if (st->closed[r])
			log_info("%s: closed: %s: %llu", srv->cfg.name, close_names[r],
				 (unsigned long long)st->closed[r]);
}

/* Short machine-readable names for close reasons, same order as close_names. */
static const char *const close_keys[CR_COUNT] = {
	"eof",          "read_error",         "prefix_timeout",
	"bad_prefix",   "bad_length",         "too_big",
	"bad_frames",   "write_error",        "no_memory",
	"shutdown",     "tls_handshake",      "tls_handshake_timeout",
	"proxy_header", "proxy_source_limit", "replaced_idle",
	"health_check",
};

void
server_print_stats(const struct server *srv, FILE *fp)
{
	const struct server_stats *st = &srv->st;
	const char *n = srv->cfg.name;
#define P(key, val) fprintf(fp, "server %s %s %llu\n", n, key, (unsigned long long)(val))
	P("connections", srv->nconns);
	P("connections_pending", srv->npending);
	P("sessions", srv->nsessions);
	P("accepted", st->accepted);
	P("refused_total", st->refused_total);
	P("refused_source", st->refused_source);
	P("refused_pending", st->refused_pending);
	P("frames_ike", st->frames_ike);
	P("frames_esp", st->frames_esp);
	P("frames_empty", st->frames_empty);
	P("frames_keepalive", st->frames_keepalive);
	P("frames_runt", st->frames_runt);
	P("unroutable", st->unroutable);
	P("to_backend", st->to_backend);
	P("to_backend_drops", st->to_backend_drops);
	P("from_backend", st->from_backend);
	P("backend_keepalives", st->backend_keepalives);
	P("sendq_drops", st->sendq_drops);
	P("no_conn_drops", st->no_conn_drops);
	P("sessions_created", st->sessions_created);
	P("sessions_expired", st->sessions_expired);
	P("sessions_refused", st->sessions_refused);
	P("path_switches", st->path_switches);
	P("sniffed_tls", st->sniffed_tls);
	P("sniffed_plain", st->sniffed_plain);
	P("tls_handshakes", st->tls_handshakes);
	P("tls_resumed", st->tls_resumed);
	P("tls_handshakes_failed", st->tls_handshakes_failed);
	P("tls_handshake_timeouts", st->tls_handshake_timeouts);
	P("refused_proxy_source", st->refused_proxy_source);
	P("proxy_headers", st->proxy_headers);
	P("proxy_local", st->proxy_local);
	for (int r = 0; r < CR_COUNT; r++) {
		char k[48];
		snprintf(k, sizeof(k), "closed_%s", close_keys[r]);
		P(k, st->closed[r]);
	}
#undef P
}

void
server_free(struct server *srv)
{
	if (!srv)
		return;
	while (srv->nls)
		listener_close(srv, srv->nls - 1);
	while (srv->conns)
		conn_close(srv->conns, CR_SHUTDOWN);
	while (srv->sessions)
		session_destroy(srv->sessions);
	for (unsigned i = 0; i < SRC_BUCKETS; i++) {
		while (srv->src_tab[i]) {
			struct src_ent *e = srv->src_tab[i];
			srv->src_tab[i] = e->next;
			free(e);
		}
	}
	timer_stop(srv->loop, &srv->trim_sweep);
	iketcp_tls_ctx_unref(srv->tls_ctx);
	free(srv->rdg);
	free(srv);
}
