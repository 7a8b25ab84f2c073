#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "iketcp/iketcp.h"
#include "iketcp/proxyproto.h"
#include "log.h"
#include "net.h"
#include "relay.h"
#include "siphash.h"
#include "spitab.h"
#include "tlscfg.h"

#define SPI_BUCKETS (1u << 14)
#define SRC_BUCKETS (1u << 12)
#define SESS_IKE_SAS 4  /* IKE SAs per session: the SA and its rekeyed successors */
#define SESS_ESP_SPIS 8 /* ESP SPIs per session, for a fast resume (trust model) */
#define ACCEPT_BURST 64
#define ACCEPT_PAUSE_MS 250 /* out of descriptors: stop accepting this long */
/* While a session has no connection, the backend's IKE datagrams wait in a
 * FIFO of this many datagrams and bytes (one larger datagram is held
 * alone); past it the oldest go, counted (held_drops). */
#define HELD_MAX 4
#define HELD_BYTES 16384
/* Datagrams of one backend request remembered to spot retransmissions:
 * an IKE-fragmented request (RFC 7383) has one per fragment. */
#define BREQ_DIGESTS 16

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

/* One source: a client address masked to source-prefix4/6 bits. Lives
 * while it has connections or sessions. */
struct src_ent {
	uint8_t key[17]; /* family byte, then the masked address */
	unsigned conns, pending, sessions, half_open;
	struct session *s_head, *s_tail; /* its sessions, oldest first */
	struct src_ent *next;
};

struct sconn {
	struct relay r; /* first: relay callbacks get the connection from it */
	struct server *srv;
	struct timer timer; /* pending: prefix / first frame; open: conn_arm(); draining */
	struct deferred dfr;
	uint64_t id;
	enum conn_state state;
	int pending; /* counted in srv->npending (no prefix yet) */
	char peer_str[64];
	struct iketcpd_addr peer; /* the client (after a PROXY header: the one it names) */
	struct src_ent *src;
	int tls_listener; /* accepted on a listen-tls address */
	uint8_t *pp;      /* SC_PROXY_HDR: the header bytes read so far */
	size_t pp_len;
	int pp_local; /* the header named no client: the balancer's own connection */
	unsigned bad_run;
	uint64_t frames_in, bytes_in;
	uint32_t last_spi; /* last ESP SPI seen from a member (learning is per new SPI) */
	/* Routing (docs/architecture.md, "Trust model"): a connection with a
	 * session is its member (proven) or its candidate (claims it, not
	 * proven). Its last IKE request is what a backend answer can prove. */
	struct session *sess;
	int member;
	int req_valid;
	uint64_t req_spi;
	uint32_t req_mid;
	struct sconn *s_next, *s_prev; /* in sess->conns */
	uint64_t attach_seq;
	/* Timeouts in the open state: conn_arm() takes the earliest. */
	uint64_t open_ms, last_rx_ms, partial_ms, replaced_ms;
	uint64_t accepted_ms;          /* for the status request */
	uint64_t cookie_ms;            /* the backend asked this connection for a cookie (R39) */
	struct sconn *p_next, *p_prev; /* in srv's pending list, oldest first */
	struct sconn *next, *prev;     /* in srv->conns */
};

/* An IKE SA of a session: its SPIi, and the highest message ID of a
 * backend response relayed to a connection (-1: none). Only an answer
 * above it proves the connection that asked (R32, A13). */
struct ike_sa {
	struct spi_ent ent;
	int64_t answered;
};

struct session {
	struct server *srv;
	struct watcher w; /* UDP socket to the backend */
	struct timer expire;
	struct deferred dfr;
	uint64_t id;
	int dead;
	struct sconn *conns; /* members and candidates */
	unsigned nmembers;
	struct sconn *current; /* a member; the return path (R31) */
	struct ike_sa ike[SESS_IKE_SAS];
	unsigned ike_next;
	struct spi_ent esp[SESS_ESP_SPIS];
	unsigned esp_next;
	struct src_ent *src;                 /* the source that created it */
	struct session *src_next, *src_prev; /* in src's list */
	int half_open;                       /* no response with message ID >= 1 yet */
	struct session *ho_next, *ho_prev;   /* in srv's half-open list, oldest first */
	uint64_t born_ms, lonely_ms;         /* created; without members since */
	struct iketcpd_addr last_ip;         /* the last member's client address */
	/* w.fd's local address: the source the backend sees (the status
	 * request ties the backend's view of a peer back to the client) */
	struct iketcpd_addr local;
	/* frames relayed to the backend, datagrams from it (status) */
	uint64_t to_be_frames, to_be_bytes, from_be_dgrams, from_be_bytes;
	int gso_off; /* the kernel refused UDP GSO on w.fd */
	/* IKE datagrams from the backend while no connection (R36, TR side) */
	struct {
		uint8_t *p;
		size_t len;
	} held[HELD_MAX];
	unsigned nheld;
	size_t held_bytes;
	/* The backend's last request (R35): its datagrams' digests, and the
	 * connection that carried them. A copy is dropped only when that
	 * connection is still the current one: a new connection gets it. */
	int breq_valid;
	uint64_t breq_spi, breq_conn;
	uint32_t breq_mid;
	uint64_t breq_dig[BREQ_DIGESTS];
	unsigned breq_n;
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
	int paused; /* accept paused (out of descriptors) */
	struct timer pause_timer;
	struct sconn *conns;
	struct sconn *p_head, *p_tail; /* pending connections, oldest first */
	unsigned nconns, npending, nsessions, nhalf_open;
	struct session *sessions;
	struct session *ho_head, *ho_tail; /* half-open sessions, oldest first */
	struct siphash_key hkey;           /* keys every table a peer fills */
	struct spitab spis;                /* IKE SPIi and ESP SPIs -> session */
	struct src_ent *src_tab[SRC_BUCKETS];
	uint64_t next_conn_id, next_session_id, attach_seq;
	struct server_stats st;
	struct relay_io io;      /* TCP -> UDP: the read buffer and its datagram batch */
	struct udprecv urx;      /* UDP -> TCP */
	struct timer trim_sweep; /* memory: see trim_sweep_cb() */
};

static void conn_close(struct sconn *c, enum close_reason why);
static void conn_close_msg(struct sconn *c, enum close_reason why, const char *detail);
static void conn_want(struct sconn *c);
static void conn_flush(struct sconn *c);
static void conn_read(struct sconn *c);
static void conn_arm(struct sconn *c);
static void session_destroy(struct session *s, enum close_reason why);

#define DLIST_UNLINK(head, tail, x, nx, pv)                                                        \
	do {                                                                                       \
		if ((x)->pv)                                                                       \
			(x)->pv->nx = (x)->nx;                                                     \
		else                                                                               \
			(head) = (x)->nx;                                                          \
		if ((x)->nx)                                                                       \
			(x)->nx->pv = (x)->pv;                                                     \
		else                                                                               \
			(tail) = (x)->pv;                                                          \
		(x)->nx = (x)->pv = NULL;                                                          \
	} while (0)

#define DLIST_APPEND(head, tail, x, nx, pv)                                                        \
	do {                                                                                       \
		(x)->nx = NULL;                                                                    \
		(x)->pv = (tail);                                                                  \
		if (tail)                                                                          \
			(tail)->nx = (x);                                                          \
		else                                                                               \
			(head) = (x);                                                              \
		(tail) = (x);                                                                      \
	} while (0)

/* ---- keyed tables ------------------------------------------------------------ */

static struct session *
spi_find(const struct server *srv, uint8_t type, uint64_t key)
{
	return spitab_owner(&srv->spis, type, key);
}

/* Puts key into slot e of session s (whatever e held is dropped: a
 * session only ever evicts its own entries). */
static void
spi_set(struct session *s, struct spi_ent *e, uint8_t type, uint64_t key)
{
	spitab_set(&s->srv->spis, e, type, key, s);
}

static struct ike_sa *
ike_sa_add(struct session *s, uint64_t spi_i)
{
	struct ike_sa *sa = &s->ike[s->ike_next++ % SESS_IKE_SAS];
	spi_set(s, &sa->ent, SPI_IKE, spi_i);
	sa->answered = -1;
	return sa;
}

static struct ike_sa *
ike_sa_of(struct session *s, uint64_t spi_i)
{
	for (unsigned i = 0; i < SESS_IKE_SAS; i++)
		if (s->ike[i].ent.type && s->ike[i].ent.key == spi_i)
			return &s->ike[i];
	return NULL;
}

/* The source key of a client address: its family and its address masked to
 * source-prefix4 / source-prefix6 bits (a /64 is one IPv6 source). */
static void
src_key(const struct server *srv, const struct iketcpd_addr *a, uint8_t key[17])
{
	unsigned n, bits;
	const uint8_t *ip;

	memset(key, 0, 17);
	if (a->ss.ss_family == AF_INET) {
		ip = (const uint8_t *)&((const struct sockaddr_in *)&a->ss)->sin_addr;
		n = 4;
		bits = srv->cfg.source_prefix4;
	} else {
		ip = ((const struct sockaddr_in6 *)&a->ss)->sin6_addr.s6_addr;
		n = 16;
		bits = srv->cfg.source_prefix6;
	}
	key[0] = (uint8_t)a->ss.ss_family;
	for (unsigned i = 0; i < n && bits; i++) {
		unsigned take = bits >= 8 ? 8 : bits;
		key[1 + i] = ip[i] & (uint8_t)(0xffu << (8 - take));
		bits -= take;
	}
}

static struct src_ent *
src_get(struct server *srv, const struct iketcpd_addr *a, int create)
{
	uint8_t key[17];
	src_key(srv, a, key);
	unsigned h = (unsigned)siphash24(&srv->hkey, key, sizeof(key)) & (SRC_BUCKETS - 1);
	for (struct src_ent *e = srv->src_tab[h]; e; e = e->next)
		if (!memcmp(e->key, key, sizeof(key)))
			return e;
	if (!create)
		return NULL;
	struct src_ent *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	memcpy(e->key, key, sizeof(key));
	e->next = srv->src_tab[h];
	srv->src_tab[h] = e;
	return e;
}

/* Frees e once nothing counts on it. */
static void
src_release(struct server *srv, struct src_ent *e)
{
	if (!e || e->conns || e->sessions)
		return;
	unsigned h = (unsigned)siphash24(&srv->hkey, e->key, sizeof(e->key)) & (SRC_BUCKETS - 1);
	for (struct src_ent **pp = &srv->src_tab[h]; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
	}
}

/* ---- sessions --------------------------------------------------------------- */

/* The session's one timer: half-open-timeout while half-open, then
 * session-timeout once it has no member. */
static void
session_arm(struct session *s)
{
	struct server *srv = s->srv;
	uint64_t d = UINT64_MAX, now = loop_now(srv->loop);
	if (s->half_open)
		d = s->born_ms + srv->cfg.half_open_timeout_ms;
	if (!s->nmembers && s->lonely_ms + srv->cfg.session_timeout_ms < d)
		d = s->lonely_ms + srv->cfg.session_timeout_ms;
	if (d == UINT64_MAX)
		timer_stop(srv->loop, &s->expire);
	else
		timer_start(srv->loop, &s->expire, d > now ? d - now : 0);
}

static void
session_expire_cb(struct timer *t)
{
	struct session *s = t->data;
	struct server *srv = s->srv;
	uint64_t now = loop_now(srv->loop);

	if (s->half_open && now >= s->born_ms + srv->cfg.half_open_timeout_ms) {
		log_peer(LOG_LVL_INFO, LOGC_SESSION,
			 "%s: session %llu: no IKE exchange past IKE_SA_INIT in %ums: removed",
			 s->srv->cfg.name, (unsigned long long)s->id,
			 srv->cfg.half_open_timeout_ms);
		srv->st.half_open_expired++;
		session_destroy(s, CR_HALF_OPEN);
	} else if (!s->nmembers && now >= s->lonely_ms + srv->cfg.session_timeout_ms) {
		log_peer(LOG_LVL_INFO, LOGC_SESSION, "%s: session %llu expired (no connection)",
			 s->srv->cfg.name, (unsigned long long)s->id);
		srv->st.sessions_expired++;
		session_destroy(s, CR_NOT_JOINED);
	} else {
		session_arm(s);
	}
}

static void
half_open_end(struct session *s)
{
	struct server *srv = s->srv;
	if (!s->half_open)
		return;
	s->half_open = 0;
	DLIST_UNLINK(srv->ho_head, srv->ho_tail, s, ho_next, ho_prev);
	srv->nhalf_open--;
	s->src->half_open--;
}

/* The session's source address towards the backend (backend-source): one
 * address per client source, so that the IKE daemon's per-address limits
 * (strongSwan's block_threshold, cookie_threshold_ip) count each client on
 * its own instead of all of them as one. Returns 0 when there is none. */
static int
backend_source(const struct server *srv, const struct src_ent *src, struct iketcpd_addr *out)
{
	struct iketcpd_prefix p;
	const struct iketcpd_addr *be = &srv->cfg.backend;

	if (srv->cfg.backend_source_mode == IKETCPD_BSRC_NONE)
		return 0;
	if (srv->cfg.backend_source_mode == IKETCPD_BSRC_PREFIX) {
		p = srv->cfg.backend_source;
	} else {
		/* auto: an IPv4 loopback backend has all of 127.0.0.0/8 */
		if (be->ss.ss_family != AF_INET ||
		    ((const uint8_t *)&((const struct sockaddr_in *)&be->ss)->sin_addr)[0] != 127)
			return 0;
		p = (struct iketcpd_prefix){.family = AF_INET, .addr = {127}, .bits = 8};
	}
	/* keyed: a client cannot pick another client's address */
	uint64_t h = siphash24(&srv->hkey, src->key, sizeof(src->key)) ^ 0x5a5a5a5a5a5a5a5aull;
	unsigned n = p.family == AF_INET ? 4 : 16, hostbits = n * 8 - p.bits;
	uint8_t ip[16];
	memcpy(ip, p.addr, n);
	/* hostbits <= 24 (v4, /8 at least) or the low 64 bits (v6): never 0,
	 * never all ones */
	unsigned hb = hostbits > 62 ? 62 : hostbits;
	uint64_t host = 1 + h % ((1ull << hb) - 2);
	for (unsigned i = 0; i < 8 && i < n; i++)
		ip[n - 1 - i] |= (uint8_t)(host >> (8 * i));
	memset(out, 0, sizeof(*out));
	if (p.family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, ip, 4);
		out->len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, ip, 16);
		out->len = sizeof(*sin6);
	}
	return 1;
}

static void session_udp_cb(struct watcher *w, uint32_t ev);

/* The oldest session of src that is half-open (half_open) or has no
 * member (!half_open); NULL if none. At most max-sessions-per-source. */
static struct session *
src_oldest(struct src_ent *src, int half_open)
{
	for (struct session *s = src->s_head; s; s = s->src_next)
		if (half_open ? s->half_open : !s->nmembers)
			return s;
	return NULL;
}

static void
session_evict(struct session *s)
{
	struct server *srv = s->srv;
	if (s->half_open)
		srv->st.half_open_evicted++;
	else
		srv->st.sessions_evicted++;
	log_peer(LOG_LVL_INFO, LOGC_SESSION, "%s: session %llu evicted (%s) to make room",
		 s->srv->cfg.name, (unsigned long long)s->id,
		 s->half_open ? "half-open" : "no connection");
	session_destroy(s, CR_EVICTED);
}

/*
 * Makes room for a new session of src, within the per-source and total
 * budgets: the oldest half-open session goes first (of this source, then
 * of all), then this source's oldest session without a connection. An
 * unauthenticated peer can thus only ever push out its own sessions or the
 * oldest half-open ones, never an established client's. Returns 0, or -1
 * (counted) when nothing may go.
 */
static int
session_room(struct server *srv, struct src_ent *src)
{
	const struct iketcpd_server_cfg *cfg = &srv->cfg;
	struct session *v;

	while (src->half_open >= cfg->max_half_open_per_source && (v = src_oldest(src, 1)))
		session_evict(v);
	while (srv->nhalf_open >= cfg->max_half_open && srv->ho_head)
		session_evict(srv->ho_head);
	while (src->sessions >= cfg->max_sessions_per_source) {
		if (!(v = src_oldest(src, 1)) && !(v = src_oldest(src, 0))) {
			srv->st.refused_sessions_source++;
			log_peer(LOG_LVL_WARN, LOGC_SESSION,
				 "%s: session refused: max-sessions-per-source %u reached, all in "
				 "use",
				 cfg->name, cfg->max_sessions_per_source);
			return -1;
		}
		session_evict(v);
	}
	while (srv->nsessions >= cfg->max_sessions) {
		if (!srv->ho_head) {
			srv->st.sessions_refused++;
			log_peer(LOG_LVL_WARN, LOGC_SESSION,
				 "%s: session refused: max-sessions %u reached", cfg->name,
				 cfg->max_sessions);
			return -1;
		}
		session_evict(srv->ho_head);
	}
	return 0;
}

static struct session *
session_new(struct server *srv, struct src_ent *src)
{
	struct iketcpd_addr from;

	if (session_room(srv, src) < 0)
		return NULL;
	struct session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->srv = srv;
	int have_from = backend_source(srv, src, &from);
	s->w.fd = net_udp_socket(srv->cfg.backend.ss.ss_family, have_from ? &from : NULL,
				 &srv->cfg.backend);
	if (s->w.fd < 0 && have_from) {
		char as[64];
		log_peer(LOG_LVL_WARN, LOGC_SESSION,
			 "%s: backend-source address %s: %s; using the default source",
			 srv->cfg.name, iketcpd_addr_str(&from, as, sizeof(as)), strerror(errno));
		s->w.fd = net_udp_socket(srv->cfg.backend.ss.ss_family, NULL, &srv->cfg.backend);
	}
	if (s->w.fd < 0) {
		log_peer(LOG_LVL_WARN, LOGC_SESSION, "%s: backend socket: %s", srv->cfg.name,
			 strerror(errno));
		free(s);
		return NULL;
	}
	s->local.len = sizeof(s->local.ss);
	if (getsockname(s->w.fd, (struct sockaddr *)&s->local.ss, &s->local.len) < 0)
		s->local.len = 0;
	s->w.cb = session_udp_cb;
	s->w.data = s;
	if (watcher_start(srv->loop, &s->w, EPOLLIN) < 0) {
		close(s->w.fd);
		free(s);
		return NULL;
	}
	timer_init(&s->expire, session_expire_cb, s);
	s->id = ++srv->next_session_id;
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	srv->nsessions++;
	srv->st.sessions_created++;
	s->src = src;
	src->sessions++;
	DLIST_APPEND(src->s_head, src->s_tail, s, src_next, src_prev);
	s->half_open = 1;
	src->half_open++;
	srv->nhalf_open++;
	DLIST_APPEND(srv->ho_head, srv->ho_tail, s, ho_next, ho_prev);
	s->born_ms = s->lonely_ms = loop_now(srv->loop);
	session_arm(s);
	return s;
}

static void
held_drop_oldest(struct session *s)
{
	s->held_bytes -= s->held[0].len;
	free(s->held[0].p);
	s->nheld--;
	memmove(&s->held[0], &s->held[1], s->nheld * sizeof(s->held[0]));
}

static void
session_free_cb(void *arg)
{
	struct session *s = arg;
	while (s->nheld)
		held_drop_oldest(s);
	free(s);
}

/* The digest that identifies a backend request's datagram (R35), computed
 * once per datagram; 0 for anything else (a request whose digest happens
 * to be 0 is only relayed again, a duplicate, never a loss). */
static uint64_t
breq_digest(const struct server *srv, const struct iketcp_dgram *d)
{
	if (!(d->flags & IKETCP_DGRAM_F_HDR) || iketcp_ike_is_response(&d->ike))
		return 0;
	return siphash24(&srv->hkey, d->p, d->len);
}

/* R35: was this datagram of a backend request already queued on the
 * connection with id conn (the current one)? A retransmission is the same
 * bytes (each fragment of a fragmented request is its own datagram). */
static int
breq_carried(const struct session *s, const struct iketcp_ike_hdr *h, uint64_t dig, uint64_t conn)
{
	if (!s->breq_valid || s->breq_conn != conn || s->breq_spi != h->spi_i ||
	    s->breq_mid != h->msg_id)
		return 0;
	for (unsigned i = 0; i < s->breq_n; i++)
		if (s->breq_dig[i] == dig)
			return 1;
	return 0;
}

/* Records that a datagram of a backend request went onto connection conn. */
static void
breq_note(struct session *s, const struct iketcp_ike_hdr *h, uint64_t dig, uint64_t conn)
{
	if (!s->breq_valid || s->breq_spi != h->spi_i || s->breq_mid != h->msg_id ||
	    s->breq_conn != conn) {
		s->breq_valid = 1;
		s->breq_spi = h->spi_i;
		s->breq_mid = h->msg_id;
		s->breq_conn = conn;
		s->breq_n = 0;
	}
	for (unsigned i = 0; i < s->breq_n; i++)
		if (s->breq_dig[i] == dig)
			return;
	if (s->breq_n < BREQ_DIGESTS)
		s->breq_dig[s->breq_n++] = dig;
}

/* Queues a backend datagram on connection c; a request is remembered as
 * carried by c. Returns 0, or -1 (counted) when the queue refused it. */
static int
to_conn(struct session *s, struct sconn *c, const struct iketcp_dgram *d, uint64_t dig)
{
	struct server *srv = s->srv;
	int rc = iketcp_sendq_push_dgram(&c->r.q, d);

	if (rc != IKETCP_OK) {
		if (rc == IKETCP_E_NOBUFS)
			srv->st.sendq_drops++;
		else
			srv->st.no_conn_drops++;
		return -1;
	}
	if (dig) /* a backend request: remember what carried it (R35) */
		breq_note(s, &d->ike, dig, c->id);
	return 0;
}

/* Holds an IKE datagram while the session has no connection. A copy of one
 * already held (a retransmission) is not held twice. */
static void
held_push(struct session *s, const uint8_t *p, size_t len)
{
	struct server *srv = s->srv;

	for (unsigned i = 0; i < s->nheld; i++) {
		if (s->held[i].len == len && !memcmp(s->held[i].p, p, len)) {
			srv->st.retransmits_dropped++;
			return;
		}
	}
	uint8_t *copy = malloc(len);
	if (!copy) {
		srv->st.held_drops++;
		return;
	}
	memcpy(copy, p, len);
	while (s->nheld && (s->nheld == HELD_MAX || s->held_bytes + len > HELD_BYTES)) {
		held_drop_oldest(s);
		srv->st.held_drops++;
	}
	s->held[s->nheld].p = copy;
	s->held[s->nheld].len = len;
	s->nheld++;
	s->held_bytes += len;
}

static void
session_destroy(struct session *s, enum close_reason why)
{
	struct server *srv = s->srv;
	if (s->dead)
		return;
	s->dead = 1;
	while (s->conns)
		conn_close(s->conns, why);
	for (unsigned i = 0; i < SESS_IKE_SAS; i++)
		if (s->ike[i].ent.type)
			spitab_unlink(&srv->spis, &s->ike[i].ent);
	for (unsigned i = 0; i < SESS_ESP_SPIS; i++)
		if (s->esp[i].type)
			spitab_unlink(&srv->spis, &s->esp[i]);
	udpbatch_flush_for(&srv->io.batch, s->w.fd, NULL);
	half_open_end(s);
	DLIST_UNLINK(s->src->s_head, s->src->s_tail, s, src_next, src_prev);
	s->src->sessions--;
	src_release(srv, s->src);
	s->src = NULL;
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

/*
 * Makes member c the return path. No I/O here: a held datagram is queued
 * and the event loop writes it (conn_want), so a routing decision can
 * never close the connection it is deciding about.
 */
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
	 * closed (conn_timer_cb). */
	if (old && c && old->state == SC_OPEN) {
		old->replaced_ms = loop_now(s->srv->loop);
		conn_arm(old);
	}
	if (!c)
		return;
	conn_arm(c);
	log_peer_debug("%s: session %llu: return path now conn %llu (%s)", s->srv->cfg.name,
		       (unsigned long long)s->id, (unsigned long long)c->id, c->peer_str);
	if (s->nheld) {
		/* R36 (TR side): what the backend sent while no connection
		 * existed goes out first on the next one, oldest first. */
		for (unsigned i = 0; i < s->nheld; i++) {
			struct iketcp_dgram d;
			if (iketcp_dgram_classify(s->held[i].p, s->held[i].len, &d) == IKETCP_OK)
				(void)to_conn(s, c, &d, breq_digest(s->srv, &d));
		}
		while (s->nheld)
			held_drop_oldest(s);
		conn_want(c);
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
	c->req_valid = 0;
	if (!c->member)
		return;
	c->member = 0;
	s->nmembers--;
	if (s->current == c) {
		/* The newest remaining member takes over: the TO opened it
		 * last, so it is the one it uses (R31). */
		struct sconn *best = NULL;
		for (struct sconn *o = s->conns; o; o = o->s_next)
			if (o->member && (!best || o->attach_seq > best->attach_seq))
				best = o;
		s->current = NULL;
		set_current(s, best);
	}
	if (!s->nmembers && !s->dead) {
		s->lonely_ms = loop_now(s->srv->loop);
		session_arm(s);
	}
}

/* c claims s: as a candidate (member 0), or as a proven member. A closed
 * connection is never attached. */
static void
attach(struct sconn *c, struct session *s, int member)
{
	if (c->state == SC_CLOSED || s->dead)
		return;
	if (c->sess != s) {
		detach(c);
		c->sess = s;
		c->s_prev = NULL;
		c->s_next = s->conns;
		if (s->conns)
			s->conns->s_prev = c;
		s->conns = c;
		log_peer_debug("%s: conn %llu (%s) claims session %llu", c->srv->cfg.name,
			       (unsigned long long)c->id, c->peer_str, (unsigned long long)s->id);
	}
	if (member && !c->member) {
		c->member = 1;
		c->attach_seq = ++s->srv->attach_seq;
		s->nmembers++;
		s->last_ip = c->peer;
		if (s->nmembers == 1)
			session_arm(s);
		if (!s->current)
			set_current(s, c);
		log_peer_debug("%s: conn %llu (%s) joins session %llu", c->srv->cfg.name,
			       (unsigned long long)c->id, c->peer_str, (unsigned long long)s->id);
	}
	conn_arm(c);
}

/* The connection whose last request is (spi_i, mid): the current one if it
 * asked, else the only other one that did; NULL when none, or when several
 * did (then nobody can tell which request the backend accepted). */
static struct sconn *
requester(struct session *s, uint64_t spi_i, uint32_t mid, int *ambiguous)
{
	struct sconn *who = NULL;
	*ambiguous = 0;
	if (s->current && s->current->req_valid && s->current->req_spi == spi_i &&
	    s->current->req_mid == mid)
		return s->current;
	for (struct sconn *o = s->conns; o; o = o->s_next) {
		if (!o->req_valid || o->req_spi != spi_i || o->req_mid != mid)
			continue;
		if (who) {
			*ambiguous = 1;
			return NULL;
		}
		who = o;
	}
	return who;
}

/* A response from the backend on its way to s->current: does it prove the
 * connection that asked (R32 as far as a relay can tell: the backend, which
 * can authenticate, accepted a request never answered before)? */
static void
session_response(struct session *s, const struct iketcp_ike_hdr *h)
{
	struct server *srv = s->srv;
	struct ike_sa *sa = ike_sa_of(s, h->spi_i);
	int amb;

	if (!sa)
		return;
	if ((int64_t)h->msg_id <= sa->answered) {
		/* a cached answer to a retransmitted or replayed request:
		 * proves nothing, whoever asked */
		for (struct sconn *o = s->conns; o; o = o->s_next)
			if (o != s->current && o->req_valid && o->req_spi == h->spi_i &&
			    o->req_mid == h->msg_id) {
				srv->st.replays_ignored++;
				break;
			}
		return;
	}
	struct sconn *who = requester(s, h->spi_i, h->msg_id, &amb);
	if (amb)
		srv->st.joins_ambiguous++;
	if (who && who != s->current) {
		if (!who->member) {
			srv->st.joins++;
			attach(who, s, 1);
		}
		set_current(s, who);
	}
	/* Held (no connection) is not relayed: a retransmission on the next
	 * connection may still prove it (R36). */
	if (s->current)
		sa->answered = h->msg_id;
	if (h->msg_id >= 1 && s->current)
		half_open_end(s);
	session_arm(s);
}

/* Backend -> client. */
static void
session_udp_cb(struct watcher *w, uint32_t ev)
{
	struct session *s = w->data;
	struct server *srv = s->srv;
	(void)ev;

	int n = udprecv_read(&srv->urx, w->fd, 0); /* connected: the backend is the sender */
	if (n <= 0)
		return; /* nothing, or ICMP errors from a backend that is down */
	for (int i = 0; i < n; i++) {
		const uint8_t *p = udprecv_data(&srv->urx, i);
		size_t len = udprecv_len(&srv->urx, i);
		struct iketcp_dgram d;

		srv->st.from_backend++;
		s->from_be_dgrams++;
		s->from_be_bytes += len;
		if (iketcp_dgram_classify(p, len, &d) != IKETCP_OK) {
			srv->st.sendq_drops++; /* over 65533 bytes: cannot be framed */
			continue;
		}
		if (d.kind == IKETCP_DGRAM_KEEPALIVE) {
			srv->st.backend_keepalives++; /* R47: never framed */
			continue;
		}
		/* marker and a message: held and relayed as IKE even when its
		 * header is odd, as the backend's own business */
		int is_ike = (d.flags & IKETCP_DGRAM_F_MARKER) && len > IKETCP_MARKER_LEN;
		int parsed = (d.flags & IKETCP_DGRAM_F_HDR) != 0;
		const struct iketcp_ike_hdr *h = &d.ike;
		if (parsed && iketcp_ike_is_response(h))
			session_response(s, h);
		if (!s->current) {
			if (is_ike)
				held_push(s, p, len);
			else
				srv->st.no_conn_drops++;
			continue;
		}
		/* R35: TCP is reliable; the backend's retransmission of a request
		 * the current connection already carries is not sent again. */
		uint64_t dig = breq_digest(srv, &d);
		if (dig && breq_carried(s, h, dig, s->current->id)) {
			srv->st.retransmits_dropped++;
			continue;
		}
		if (to_conn(s, s->current, &d, dig) < 0)
			continue;
		/* R39: the responder asked for a cookie. It keeps no state, so
		 * the connection waits for the retried IKE_SA_INIT no longer
		 * than for a first frame (prefix-timeout), then is closed. */
		if (parsed && iketcp_ike_is_response(h) && h->exchange == IKETCP_IKE_SA_INIT &&
		    iketcp_ike_has_notify(p + 4, len - 4, IKETCP_IKE_N_COOKIE) == 1) {
			srv->st.cookie_requests++;
			s->current->cookie_ms = loop_now(srv->loop);
			conn_arm(s->current);
		}
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
	size_t freed = 0, used = iketcp_mem_used();
	for (struct sconn *c = srv->conns; c; c = c->next)
		freed += relay_trim(&c->r);
	freed += used > iketcp_mem_used() ? used - iketcp_mem_used() : 0;
	/* Buffers of 2 to 64 KiB come from the heap, where glibc keeps what
	 * is freed for reuse: only malloc_trim() gives the pages back (an idle
	 * TLS connection: 34 -> 21 KiB of RSS). A heap walk, so only after a
	 * sweep that freed something worth it. */
	if (freed >= 256 * 1024)
		malloc_trim(0);
	timer_start(srv->loop, t, TRIM_SWEEP_MS);
}

/* ---- connections ------------------------------------------------------------- */

/* Sets the epoll interest from what the transport waits for (OpenSSL's
 * WANT_READ/WANT_WRITE included) and whether frames are queued. */
static void
conn_want(struct sconn *c)
{
	if (c->state == SC_CLOSED)
		return;
	if (c->state == SC_SNIFF || c->state == SC_PROXY_HDR)
		relay_watch(c->srv->loop, &c->r, IKETCP_WANT_READ);
	else
		relay_want(c->srv->loop, &c->r, c->state != SC_DRAINING, 0);
}

static void
conn_flush(struct sconn *c)
{
	char e[IKETCP_TRANSPORT_ERR_MAX];

	if (c->state == SC_CLOSED)
		return;
	if (!iketcp_transport_handshake_done(&c->r.tr)) {
		/* still sniffing or in the TLS handshake: nothing to write yet */
		if (c->state == SC_DRAINING)
			conn_close(c, CR_SHUTDOWN);
		return;
	}
	int rc = relay_flush(&c->r);
	if (rc == IKETCP_OK && c->state == SC_DRAINING) {
		conn_close(c, CR_SHUTDOWN);
		return;
	}
	if (rc != IKETCP_OK && rc != IKETCP_E_AGAIN) {
		conn_close_msg(c, CR_WRITE, relay_error(&c->r, rc, e, sizeof(e)));
		return;
	}
	conn_want(c);
}

static void
conn_free_cb(void *arg)
{
	struct sconn *c = arg;
	relay_free(&c->r); /* the transport drops its TLS context reference */
	free(c->pp);
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
		 "%s: conn %llu %s%s: closed in %s: %s%s%s (frames in %llu, out %llu, esp dropped "
		 "%llu)",
		 c->srv->cfg.name, (unsigned long long)c->id, c->peer_str,
		 c->r.is_tls ? " (TLS)" : "", state_names[c->state], server_close_reasons[why].text,
		 detail ? ": " : "", detail ? detail : "", (unsigned long long)c->frames_in,
		 (unsigned long long)(c->r.q.stats.frames_out[0] + c->r.q.stats.frames_out[1]),
		 (unsigned long long)c->r.q.stats.dropped[IKETCP_CLASS_ESP]);
	srv->st.closed[why]++;
	udpbatch_flush(&srv->io.batch); /* frames may point into this conn's buffers */
	/* A15: closing on our side (drain, or answering the peer's close) is
	 * TLS close_notify, then FIN. Best effort: the socket is closed next. */
	if ((why == CR_SHUTDOWN || why == CR_EOF || why == CR_REPLACED) &&
	    iketcp_transport_handshake_done(&c->r.tr) &&
	    iketcp_transport_shutdown(&c->r.tr) != IKETCP_OK)
		log_peer_debug("%s: conn %llu: no close_notify sent", c->srv->cfg.name,
			       (unsigned long long)c->id);
	detach(c);
	if (c->pending) {
		srv->npending--;
		c->src->pending--;
		DLIST_UNLINK(srv->p_head, srv->p_tail, c, p_next, p_prev);
	}
	c->state = SC_CLOSED;
	c->src->conns--;
	src_release(srv, c->src);
	c->src = NULL;
	timer_stop(srv->loop, &c->timer);
	watcher_stop(srv->loop, &c->r.w);
	close(c->r.w.fd);
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

/*
 * The open state's deadlines, the earliest of which the timer holds: a
 * frame begun and not finished (frame-timeout: a peer that trickles a
 * large frame holds its buffer), a connection that never became a member
 * (half-open-timeout), no frame at all (idle-timeout), and a member
 * replaced as the return path (R34). Times that move with traffic
 * (last_rx_ms) are not re-armed per frame: the timer may fire early and
 * then re-arms for what is left.
 */
static uint64_t
conn_deadline(const struct sconn *c, enum close_reason *why)
{
	const struct iketcpd_server_cfg *cfg = &c->srv->cfg;
	uint64_t d = UINT64_MAX, t;

#define EARLIER(when, reason)                                                                      \
	do {                                                                                       \
		t = (when);                                                                        \
		if (t < d) {                                                                       \
			d = t;                                                                     \
			*why = (reason);                                                           \
		}                                                                                  \
	} while (0)
	if (c->partial_ms)
		EARLIER(c->partial_ms + cfg->frame_timeout_ms, CR_FRAME_TIMEOUT);
	if (c->cookie_ms)
		EARLIER(c->cookie_ms + cfg->prefix_timeout_ms, CR_COOKIE);
	if (!c->member)
		EARLIER(c->open_ms + cfg->half_open_timeout_ms, CR_NOT_JOINED);
	if (cfg->idle_timeout_ms)
		EARLIER(c->last_rx_ms + cfg->idle_timeout_ms, CR_IDLE);
	if (c->member && c->sess->current != c && c->replaced_ms)
		EARLIER((c->last_rx_ms > c->replaced_ms ? c->last_rx_ms : c->replaced_ms) +
				cfg->replaced_idle_ms,
			CR_REPLACED);
#undef EARLIER
	return d;
}

static void
conn_arm(struct sconn *c)
{
	enum close_reason why;
	if (c->state != SC_OPEN)
		return; /* pending states and draining have their own deadline */
	uint64_t d = conn_deadline(c, &why), now = loop_now(c->srv->loop);
	if (d == UINT64_MAX)
		timer_stop(c->srv->loop, &c->timer);
	else
		timer_start(c->srv->loop, &c->timer, d > now ? d - now : 0);
}

static void
conn_timer_cb(struct timer *t)
{
	struct sconn *c = t->data;
	enum close_reason why;

	switch (c->state) {
	case SC_DRAINING:
		conn_close(c, CR_SHUTDOWN);
		break;
	case SC_OPEN:
		if (conn_deadline(c, &why) > loop_now(c->srv->loop)) {
			conn_arm(c);
			break;
		}
		/* R34: nothing is lost: replies go to the current connection,
		 * and a queue that still drains gets more time */
		if (why == CR_REPLACED && iketcp_sendq_bytes(&c->r.q) > 0) {
			c->replaced_ms = loop_now(c->srv->loop);
			conn_arm(c);
			break;
		}
		if (why == CR_COOKIE && c->sess) {
			/* the backend keeps nothing for a cookie request: nor does
			 * the session it created, unless another connection has it */
			struct session *s = c->sess;
			conn_close(c, why);
			if (!s->dead && s->half_open && !s->conns)
				session_destroy(s, why);
			break;
		}
		conn_close(c, why);
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
	int rc = iketcp_transport_handshake(&c->r.tr);

	if (rc == IKETCP_E_AGAIN) {
		conn_want(c);
		return;
	}
	if (rc != IKETCP_OK) {
		srv->st.tls_handshakes_failed++;
		conn_close_msg(c, CR_TLS_HANDSHAKE, relay_error(&c->r, rc, e, sizeof(e)));
		return;
	}
	srv->st.tls_handshakes++;
	if (iketcp_tls_resumed(&c->r.tr))
		srv->st.tls_resumed++;
	log_peer_debug("%s: conn %llu %s: TLS handshake done: %s, %s%s", c->srv->cfg.name,
		       (unsigned long long)c->id, c->peer_str, iketcp_tls_version(&c->r.tr),
		       iketcp_tls_cipher(&c->r.tr),
		       iketcp_tls_resumed(&c->r.tr) ? ", resumed session" : "");
	c->state = SC_WAIT_PREFIX;
	if (timer_start(srv->loop, &c->timer, srv->cfg.prefix_timeout_ms) < 0) {
		conn_close(c, CR_NOMEM);
		return;
	}
	conn_read(c); /* the prefix may have come with the client's Finished */
}

/* Starts the TLS server side on c's socket (listen-tls, or sniffed 0x16);
 * go: advance the handshake now rather than at the first event. */
static void
conn_start_tls(struct sconn *c, int go)
{
	struct server *srv = c->srv;

	if (!srv->tls_ctx) { /* a reload turned TLS off meanwhile */
		conn_close_msg(c, CR_TLS_HANDSHAKE, "TLS is not configured");
		return;
	}
	if (iketcp_tls_server_init(&c->r.tr, srv->tls_ctx, c->r.w.fd) != IKETCP_OK) {
		conn_close(c, CR_NOMEM);
		return;
	}
	c->r.is_tls = 1;
	c->state = SC_TLS_HANDSHAKE;
	if (timer_start(srv->loop, &c->timer, srv->cfg.tls_handshake_timeout_ms) < 0) {
		conn_close(c, CR_NOMEM);
		return;
	}
	if (go)
		conn_handshake(c);
}

/* sniff-tls: the first byte, peeked (it stays in the socket for OpenSSL or
 * the deframer), tells TLS (0x16) from plain RFC 9329. */
static void
conn_sniff(struct sconn *c)
{
	struct server *srv = c->srv;
	int k = iketcp_stream_peek(c->r.w.fd);

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
		conn_start_tls(c, 1);
		return;
	}
	srv->st.sniffed_plain++;
	if (iketcp_transport_tcp_init(&c->r.tr, c->r.w.fd, 0) != IKETCP_OK) {
		conn_close(c, CR_NOMEM);
		return;
	}
	c->state = SC_WAIT_PREFIX;
	conn_read(c); /* anything else than 'I' fails as a bad prefix there */
}

/* The one place that chooses a connection's transport, once any PROXY
 * header is behind it: TLS on a listen-tls address, the first byte with
 * sniff-tls, else plain TCP exactly as without TLS support. go: take the
 * first step now (bytes may wait behind the PROXY header); a connection
 * just accepted waits for its first event instead. */
static void
conn_begin(struct sconn *c, int go)
{
	struct server *srv = c->srv;

	if (c->tls_listener) {
		conn_start_tls(c, go);
	} else if (srv->sniff) {
		c->state = SC_SNIFF;
		if (go)
			conn_sniff(c);
	} else if (iketcp_transport_tcp_init(&c->r.tr, c->r.w.fd, 0) != IKETCP_OK) {
		conn_close(c, CR_NOMEM);
	} else {
		c->state = SC_WAIT_PREFIX;
		if (go)
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
	ssize_t n = recv(c->r.w.fd, c->pp + c->pp_len, IKETCP_PP_MAX_DEFAULT - c->pp_len, MSG_PEEK);
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
	if (recv(c->r.w.fd, c->pp + c->pp_len, take, 0) != (ssize_t)take) {
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
		log_peer_debug("%s: conn %llu %s: PROXY v%d header: client %s", c->srv->cfg.name,
			       (unsigned long long)c->id, c->peer_str, pi.version, as);
		if (src != c->src && (!src || src->conns >= srv->cfg.max_conns_per_source ||
				      src->pending >= srv->cfg.max_pending_per_source)) {
			srv->st.refused_source++;
			src_release(srv, src);
			conn_close_msg(c, CR_PROXY_SOURCE, as);
			return;
		}
		/* the connection (still pending) now counts for the client; the
		 * two are the same when the header names the balancer itself */
		if (src != c->src) {
			src->conns++;
			src->pending++;
			c->src->conns--;
			c->src->pending--;
			src_release(srv, c->src);
			c->src = src;
		}
		c->peer = client;
		snprintf(c->peer_str, sizeof(c->peer_str), "%s", as);
	} else {
		srv->st.proxy_local++;
		c->pp_local = 1;
		log_peer_debug(
			"%s: conn %llu %s: PROXY v%d header without a client (LOCAL or UNKNOWN)",
			c->srv->cfg.name, (unsigned long long)c->id, c->peer_str, pi.version);
	}
	conn_begin(c, 1);
}

/*
 * Fast resume: a session whose client lost its connection takes a new one
 * from the same client address at its first frame, without waiting for an
 * IKE exchange to prove it. A peer elsewhere cannot use this, and while
 * the session has a member nobody can (docs/architecture.md, "Trust
 * model").
 */
static int
may_resume(const struct sconn *c, const struct session *s)
{
	return !s->nmembers && s->last_ip.len && net_same_ip(&c->peer, &s->last_ip);
}

static void
resume(struct sconn *c, struct session *s)
{
	c->srv->st.resumes++;
	log_peer(LOG_LVL_INFO, LOGC_SESSION, "%s: conn %llu %s resumes session %llu",
		 c->srv->cfg.name, (unsigned long long)c->id, c->peer_str,
		 (unsigned long long)s->id);
	attach(c, s, 1);
}

/* An ESP SPI seen on a member is remembered for its session (for a fast
 * resume), unless another session has it: first come, and a session only
 * ever replaces its own oldest entry, so nobody can push out or take over
 * another session's SPIs. */
static void
esp_learn(struct session *s, uint32_t spi)
{
	if (spi_find(s->srv, SPI_ESP, spi))
		return;
	spi_set(s, &s->esp[s->esp_next++ % SESS_ESP_SPIS], SPI_ESP, spi);
}

static struct session *
route_esp(struct sconn *c, uint32_t spi)
{
	struct server *srv = c->srv;
	struct session *s = c->sess;

	if (s) {
		/* members and candidates: only ever to their own session */
		if (c->member && spi != c->last_spi) {
			c->last_spi = spi;
			esp_learn(s, spi);
		}
		return s;
	}
	s = spi_find(srv, SPI_ESP, spi);
	if (s && may_resume(c, s)) {
		resume(c, s);
		c->last_spi = spi;
		return s;
	}
	srv->st.esp_unroutable++;
	return NULL;
}

static struct session *
route_ike(struct sconn *c, const struct iketcp_ike_hdr *hp)
{
	struct server *srv = c->srv;
	const struct iketcp_ike_hdr h = *hp;
	struct session *s;

	int request = !iketcp_ike_is_response(&h);
	s = spi_find(srv, SPI_IKE, h.spi_i);
	if (!s) {
		if (c->member) {
			/* an IKE SA rekey: its new SPIs come on the same connection */
			s = c->sess;
			ike_sa_add(s, h.spi_i);
		} else if (request && h.spi_r == 0 &&
			   (h.exchange == IKETCP_IKE_SA_INIT || iketcp_ike_major(&h) != 2)) {
			/* IKE_SA_INIT, or a first message of another major version:
			 * only the backend can answer INVALID_MAJOR_VERSION (RFC
			 * 7296 2.5), so it gets a half-open session like any
			 * IKE_SA_INIT, under the same budgets */
			detach(c);
			if (!(s = session_new(srv, c->src)))
				return NULL;
			ike_sa_add(s, h.spi_i);
			attach(c, s, 1);
			char bs[64];
			/* what ties the IKE daemon's view (its peer address) to the client */
			log_peer(LOG_LVL_INFO, LOGC_SESSION,
				 "%s: session %llu: client %s -> backend sees %s", srv->cfg.name,
				 (unsigned long long)s->id, c->peer_str,
				 s->local.len ? iketcpd_addr_str(&s->local, bs, sizeof(bs)) : "?");
		} else {
			srv->st.ike_unroutable++;
			return NULL;
		}
	} else if (s != c->sess) {
		if (c->member)
			return s; /* R25: not this connection's SA; relayed, changes nothing */
		if (may_resume(c, s))
			resume(c, s);
		else
			attach(c, s, 0); /* a candidate until the backend answers */
	}
	if (request && h.exchange == IKETCP_IKE_SA_INIT)
		c->cookie_ms = 0; /* R39: the retry (or a new attempt) came */
	if (request) {
		c->req_valid = 1;
		c->req_spi = h.spi_i;
		c->req_mid = h.msg_id;
	}
	return s;
}

static void conn_prefix_check(struct sconn *c);

/* The relay's frame callback. Returns 0 to keep reading, -1 when the
 * connection was closed. */
static int
conn_frame(struct relay *r, const struct iketcp_dgram *d)
{
	struct sconn *c = (struct sconn *)r;
	struct server *srv = c->srv;

	conn_prefix_check(c);
	c->frames_in++;
	switch (d->kind) {
	case IKETCP_DGRAM_OVERSIZE: /* cannot happen: the deframer bounds frames */
		conn_close(c, CR_TOOBIG);
		return -1;
	case IKETCP_DGRAM_KEEPALIVE:
		srv->st.frames_keepalive++; /* R48 */
		return 0;
	case IKETCP_DGRAM_RUNT:
		if (d->runt == IKETCP_RUNT_EMPTY) {
			srv->st.frames_empty++; /* R5: Length 2 */
			return 0;
		}
		srv->st.frames_runt++;
		log_peer(LOG_LVL_DEBUG, LOGC_PROTO, "%s: conn %llu %s: runt frame (%s, length %zu)",
			 c->srv->cfg.name, (unsigned long long)c->id, c->peer_str,
			 iketcp_runt_name(d->runt), d->len + IKETCP_LEN_SIZE);
		break;
	case IKETCP_DGRAM_IKE:
	case IKETCP_DGRAM_ESP: {
		if (d->kind == IKETCP_DGRAM_IKE)
			srv->st.frames_ike++;
		else
			srv->st.frames_esp++;
		struct session *s =
			d->kind == IKETCP_DGRAM_ESP ? route_esp(c, d->spi) : route_ike(c, &d->ike);
		if (!s) {
			srv->st.unroutable++;
			/* R28: ESP whose SPI we do not know is no sign of a
			 * corrupt stream (SA databases briefly disagree); a
			 * connection of no session stays bounded by
			 * prefix-timeout */
			if (d->kind == IKETCP_DGRAM_ESP)
				return 0;
			break;
		}
		c->bad_run = 0;
		if (c->state == SC_WAIT_FRAME) {
			/* the prefix-timeout ends; the open state's deadlines begin */
			c->state = SC_OPEN;
			c->open_ms = loop_now(srv->loop);
			timer_stop(srv->loop, &c->timer);
			conn_arm(c);
		}
		s->to_be_frames++;
		s->to_be_bytes += d->len;
		udpbatch_add(&srv->io.batch, s->w.fd, NULL, &s->gso_off, d->p, d->len);
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
	struct server *srv = c->srv;
	if (c->pending && iketcp_deframer_prefix_done(&c->r.df)) {
		c->pending = 0;
		srv->npending--;
		c->src->pending--;
		DLIST_UNLINK(srv->p_head, srv->p_tail, c, p_next, p_prev);
		c->state = SC_WAIT_FRAME;
	}
}

/* Bytes arrived: the idle and frame timeouts count from here. */
static void
conn_data(struct relay *r, size_t n)
{
	struct sconn *c = (struct sconn *)r;
	c->bytes_in += n;
	c->last_rx_ms = loop_now(c->srv->loop);
}

/* After a read's frames: frame-timeout runs from the start of the frame
 * that is still incomplete, arming the timer once per incomplete stretch;
 * the prefix may end a read without a frame. */
static void
conn_chunk(struct relay *r, int frames)
{
	struct sconn *c = (struct sconn *)r;
	if (!iketcp_deframer_pending(&c->r.df)) {
		c->partial_ms = 0;
	} else if (!c->partial_ms || frames) {
		int was = c->partial_ms != 0;
		c->partial_ms = c->last_rx_ms;
		if (!was)
			conn_arm(c);
	}
	conn_prefix_check(c);
}

static const struct relay_ops conn_ops = {
	.data = conn_data,
	.frame = conn_frame,
	.chunk = conn_chunk,
};

static void
conn_read(struct sconn *c)
{
	char e[IKETCP_TRANSPORT_ERR_MAX];
	int code;

	switch (relay_read(&c->r, &c->srv->io, &conn_ops, &code)) {
	case RELAY_AGAIN:
		if (c->r.is_tls)
			conn_want(c); /* a TLS read may wait for writability */
		return;
	case RELAY_STOPPED:
		return;
	case RELAY_EOF:
		conn_close(c, CR_EOF);
		return;
	case RELAY_IOERR:
		conn_close_msg(c, CR_ERROR, relay_error(&c->r, code, e, sizeof(e)));
		return;
	case RELAY_STREAM:
		conn_close_msg(c,
			       code == IKETCP_E_BADPREFIX || code == IKETCP_E_REPREFIX
				       ? CR_BAD_PREFIX
			       : code == IKETCP_E_BADLEN ? CR_BADLEN
			       : code == IKETCP_E_TOOBIG ? CR_TOOBIG
							 : CR_NOMEM,
			       code == IKETCP_E_REPREFIX ? iketcp_strerror(code) : NULL);
		return;
	}
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
	relay_ready(&c->r, ev, &rd, &wr);
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

/* Out of descriptors: accept() would fail at once again, and a level-
 * triggered listener would spin. Stop polling the listeners for a while;
 * the connections queued in the kernel wait (or time out there). */
static void
accept_pause(struct server *srv)
{
	srv->st.accept_paused++;
	if (srv->paused)
		return;
	srv->paused = 1;
	for (int i = 0; i < srv->nls; i++)
		watcher_stop(srv->loop, &srv->ls[i].w);
	timer_start(srv->loop, &srv->pause_timer, ACCEPT_PAUSE_MS);
}

static void
accept_resume_cb(struct timer *t)
{
	struct server *srv = t->data;
	srv->paused = 0;
	for (int i = 0; i < srv->nls && !srv->shutting; i++)
		watcher_start(srv->loop, &srv->ls[i].w, EPOLLIN);
}

/* Why a new connection from src may not be accepted, or NULL. When only
 * max-pending stands in the way, the oldest pending connection is closed
 * instead: a handful of sources holding every pending slot cannot lock
 * everyone else out. */
static const char *
admit(struct server *srv, struct src_ent *src, const struct iketcpd_addr *peer)
{
	if (srv->cfg.proxy_protocol && !proxy_trusted(srv, peer)) {
		srv->st.refused_proxy_source++;
		return "not a proxy-protocol-from address";
	}
	if (srv->nconns >= srv->cfg.max_conns) {
		srv->st.refused_total++;
		return "max-conns reached";
	}
	if (!src)
		return "out of memory";
	/* Behind a balancer every client comes from its address: the
	 * per-source limits apply to the client the header names. */
	if (!srv->cfg.proxy_protocol &&
	    src->conns - 1 >= srv->cfg.max_conns_per_source) { /* pinned: one more */
		srv->st.refused_source++;
		return "max-conns-per-source reached";
	}
	if (!srv->cfg.proxy_protocol && src->pending >= srv->cfg.max_pending_per_source) {
		srv->st.refused_pending_source++;
		return "max-pending-per-source reached";
	}
	if (srv->npending >= srv->cfg.max_pending) {
		srv->st.pending_evicted++;
		conn_close(srv->p_head, CR_EVICTED);
	}
	return NULL;
}

/* Takes an accepted socket in: counted, timed, started by its listener's
 * kind. Returns 0, or -1 with fd closed. */
static int
conn_adopt(struct server *srv, int fd, const struct iketcpd_addr *peer, int tls)
{
	char ps[64];
	addr_text(&peer->ss, ps, sizeof(ps));
	struct src_ent *src = src_get(srv, peer, 1);
	/* pinned while admit() may close this source's own oldest pending
	 * connection, which would otherwise free the entry under us */
	if (src)
		src->conns++;
	const char *why = admit(srv, src, peer);
	if (src)
		src->conns--;
	struct sconn *c = why ? NULL : calloc(1, sizeof(*c));
	if (!why && !c)
		why = "out of memory";
	if (why) {
		log_peer(LOG_LVL_WARN, LOGC_ACCEPT, "%s: refused %s: %s", srv->cfg.name, ps, why);
		close(fd);
		src_release(srv, src);
		return -1;
	}
	struct iketcp_deframer_cfg dc = {.expect_prefix = 1, .max_frame = srv->cfg.max_frame};
	struct iketcp_sendq_cfg qc = {.budget = srv->cfg.send_budget,
				      .ike_reserve = srv->cfg.ike_reserve};
	if (relay_init(&c->r, &dc, &qc) < 0) {
		close(fd);
		free(c);
		src_release(srv, src);
		return -1;
	}
	c->srv = srv;
	c->id = ++srv->next_conn_id;
	c->accepted_ms = loop_now(srv->loop);
	memcpy(c->peer_str, ps, sizeof(c->peer_str));
	c->peer = *peer;
	c->r.w.fd = fd;
	c->r.w.cb = conn_cb;
	c->r.w.data = c;
	c->pending = 1;
	c->src = src;
	(void)net_tcp_tune(fd, srv->cfg.tcp_keepalive, srv->cfg.tcp_user_timeout_ms);
	timer_init(&c->timer, conn_timer_cb, c);
	c->tls_listener = tls;
	/* a PROXY header first (conn_proxy_hdr() then calls conn_begin());
	 * the prefix-timeout covers it, and the prefix unless TLS restarts it */
	c->state = srv->cfg.proxy_protocol ? SC_PROXY_HDR : SC_WAIT_PREFIX;
	if (watcher_start(srv->loop, &c->r.w, EPOLLIN) < 0 ||
	    timer_start(srv->loop, &c->timer, srv->cfg.prefix_timeout_ms) < 0) {
		watcher_stop(srv->loop, &c->r.w);
		timer_stop(srv->loop, &c->timer);
		relay_free(&c->r);
		close(fd);
		free(c);
		src_release(srv, src);
		return -1;
	}
	src->conns++;
	src->pending++;
	DLIST_APPEND(srv->p_head, srv->p_tail, c, p_next, p_prev);
	c->next = srv->conns;
	if (c->next)
		c->next->prev = c;
	srv->conns = c;
	srv->nconns++;
	srv->npending++;
	srv->st.accepted++;
	log_peer_debug("%s: conn %llu %s: accepted%s", srv->cfg.name, (unsigned long long)c->id, ps,
		       tls ? " (TLS)" : "");
	if (!srv->cfg.proxy_protocol)
		conn_begin(c, 0);
	return c->state == SC_CLOSED ? -1 : 0;
}

int
server_adopt(struct server *srv, int fd, const struct sockaddr *peer, socklen_t len)
{
	struct iketcpd_addr a = {.len = len};
	if (len > sizeof(a.ss)) {
		close(fd);
		return -1;
	}
	memcpy(&a.ss, peer, len);
	return conn_adopt(srv, fd, &a, 0);
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
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				log_peer(LOG_LVL_WARN, LOGC_ACCEPT,
					 "%s: accept: %s: not accepting for %d ms", srv->cfg.name,
					 strerror(errno), ACCEPT_PAUSE_MS);
				accept_pause(srv);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				   errno != ECONNABORTED) {
				log_peer(LOG_LVL_WARN, LOGC_ACCEPT, "%s: accept: %s", srv->cfg.name,
					 strerror(errno));
			}
			return;
		}
		(void)conn_adopt(srv, fd, &peer, ls->tls);
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

/* Does cfg (with TLS available or not) have this listener? */
static int
cfg_has_listener(const struct iketcpd_server_cfg *cfg, const struct listener *l, int tls_ok)
{
	if (l->tls) {
		for (int k = 0; tls_ok && k < cfg->nlisten_tls; k++)
			if (iketcpd_addr_equal(&l->addr, &cfg->listen_tls[k]))
				return 1;
		return 0;
	}
	for (int k = 0; k < cfg->nlisten; k++)
		if (iketcpd_addr_equal(&l->addr, &cfg->listen[k]))
			return 1;
	return 0;
}

static int
srv_has_listener(const struct server *srv, const struct iketcpd_addr *a, int tls)
{
	for (int i = 0; i < srv->nls; i++)
		if (srv->ls[i].tls == tls && iketcpd_addr_equal(&srv->ls[i].addr, a))
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
	timer_init(&srv->pause_timer, accept_resume_cb, srv);
	if (siphash_key_random(&srv->hkey) < 0)
		log_warn("%s: no random key from getrandom(): %s; table keys are weaker", cfg->name,
			 strerror(errno));
	timer_init(&srv->trim_sweep, trim_sweep_cb, srv);
	udpbatch_init(&srv->io.batch, &srv->st.to_backend, &srv->st.to_backend_drops);
	if (udprecv_init(&srv->urx) < 0 || spitab_init(&srv->spis, &srv->hkey, SPI_BUCKETS) < 0) {
		udprecv_free(&srv->urx);
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
	timer_stop(srv->loop, &srv->pause_timer);
	while (srv->nls)
		listener_close(srv, srv->nls - 1);
	for (struct sconn *c = srv->conns, *n; c; c = n) {
		n = c->next;
		if (c->state == SC_CLOSED)
			continue;
		c->state = SC_DRAINING;
		timer_start(srv->loop, &c->timer, RELAY_DRAIN_MS);
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

struct server_gauges
server_gauges(const struct server *srv)
{
	return (struct server_gauges){.connections = srv->nconns,
				      .connections_pending = srv->npending,
				      .sessions = srv->nsessions,
				      .half_open = srv->nhalf_open};
}

void
server_log_stats(const struct server *srv)
{
	struct server_gauges g = server_gauges(srv);
	unsigned show =
		(srv->tls_ctx ? 1u << SG_TLS : 0) | (srv->cfg.proxy_protocol ? 1u << SG_PROXY : 0);
	ctr_log(&server_counters, srv->cfg.name, &srv->st, &g, show);
}

void
server_print_stats(const struct server *srv, FILE *fp)
{
	struct server_gauges g = server_gauges(srv);
	ctr_print(&server_counters, srv->cfg.name, &srv->st, &g, fp);
}

static void
status_conn(const struct server *srv, const struct sconn *c, uint64_t now, FILE *fp)
{
	const struct session *s = c->sess;
	fprintf(fp, "server %s conn %llu", srv->cfg.name, (unsigned long long)c->id);
	if (s)
		fprintf(fp, " session=%llu role=%s", (unsigned long long)s->id,
			s->current == c ? "current"
			: c->member     ? "member"
					: "candidate");
	else
		fprintf(fp, " session=- role=-");
	fprintf(fp,
		" client=%s state=%s tls=%s age_s=%llu idle_s=%llu frames_in=%llu bytes_in=%llu "
		"queued_bytes=%zu\n",
		c->peer_str, state_names[c->state], c->r.is_tls ? "yes" : "no",
		(unsigned long long)(now - c->accepted_ms) / 1000,
		(unsigned long long)(c->last_rx_ms && now > c->last_rx_ms ? now - c->last_rx_ms
									  : 0) /
			1000,
		(unsigned long long)c->frames_in, (unsigned long long)c->bytes_in,
		iketcp_sendq_bytes(&c->r.q));
}

void
server_print_status(const struct server *srv, FILE *fp, long max_bytes)
{
	uint64_t now = loop_now(srv->loop);
	unsigned left = srv->nsessions;
	char as[64], bs[64];

	for (const struct session *s = srv->sessions; s; s = s->next, left--) {
		if (ftell(fp) > max_bytes) {
			fprintf(fp, "server %s truncated sessions_left=%u\n", srv->cfg.name, left);
			return;
		}
		unsigned ncand = 0;
		for (const struct sconn *c = s->conns; c; c = c->s_next)
			ncand += !c->member;
		const struct sconn *cur = s->current;
		fprintf(fp,
			"server %s session %llu client=%s backend_sees=%s spi_i=", srv->cfg.name,
			(unsigned long long)s->id,
			cur              ? cur->peer_str
			: s->last_ip.len ? iketcpd_addr_str(&s->last_ip, as, sizeof(as))
					 : "-",
			s->local.len ? iketcpd_addr_str(&s->local, bs, sizeof(bs)) : "-");
		int any = 0;
		for (unsigned i = 0; i < SESS_IKE_SAS; i++) {
			/* oldest first: the ring's next slot is the oldest */
			const struct ike_sa *sa = &s->ike[(s->ike_next + i) % SESS_IKE_SAS];
			if (sa->ent.type)
				fprintf(fp, "%s%016llx", any++ ? "," : "",
					(unsigned long long)sa->ent.key);
		}
		fprintf(fp, "%s age_s=%llu half_open=%s members=%u candidates=%u current=",
			any ? "" : "-", (unsigned long long)(now - s->born_ms) / 1000,
			s->half_open ? "yes" : "no", s->nmembers, ncand);
		if (cur)
			fprintf(fp, "%llu current_state=%s", (unsigned long long)cur->id,
				state_names[cur->state]);
		else
			fprintf(fp, "- current_state=-");
		if (s->nmembers)
			fprintf(fp, " lonely_s=-");
		else
			fprintf(fp, " lonely_s=%llu",
				(unsigned long long)(now - s->lonely_ms) / 1000);
		fprintf(fp,
			" to_backend_frames=%llu to_backend_bytes=%llu from_backend_dgrams=%llu "
			"from_backend_bytes=%llu held=%u\n",
			(unsigned long long)s->to_be_frames, (unsigned long long)s->to_be_bytes,
			(unsigned long long)s->from_be_dgrams, (unsigned long long)s->from_be_bytes,
			s->nheld);
		for (const struct sconn *c = s->conns; c; c = c->s_next)
			status_conn(srv, c, now, fp);
	}
	/* connections of no session: pending, or not routed yet */
	for (const struct sconn *c = srv->conns; c; c = c->next)
		if (!c->sess) {
			if (ftell(fp) > max_bytes) {
				fprintf(fp, "server %s truncated connections\n", srv->cfg.name);
				return;
			}
			status_conn(srv, c, now, fp);
		}
}

/* Every link between connections, sessions and sources is two-way and
 * every count matches what the lists hold; no closed connection is
 * referred to. For tests and the routing fuzz target. */
int
server_selfcheck(const struct server *srv)
{
	unsigned nconns = 0, npending = 0, nsess = 0, nho = 0;

	for (const struct sconn *c = srv->conns; c; c = c->next) {
		nconns++;
		if (c->state == SC_CLOSED || !c->src || (c->member && !c->sess))
			return -1;
		if (c->pending)
			npending++;
		if (c->sess) {
			const struct sconn *o = c->sess->conns;
			while (o && o != c)
				o = o->s_next;
			if (!o || c->sess->dead)
				return -2;
		}
	}
	for (const struct sconn *c = srv->p_head; c; c = c->p_next)
		if (!c->pending || (c->p_next ? c->p_next->p_prev != c : srv->p_tail != c))
			return -3;
	for (const struct session *s = srv->sessions; s; s = s->next) {
		unsigned members = 0;
		nsess++;
		if (s->dead || !s->src)
			return -4;
		for (const struct sconn *c = s->conns; c; c = c->s_next) {
			if (c->sess != s || c->state == SC_CLOSED)
				return -5;
			members += c->member != 0;
		}
		if (members != s->nmembers ||
		    (s->current && (s->current->sess != s || !s->current->member)) ||
		    (!s->current && members))
			return -6;
		nho += s->half_open != 0;
		size_t hb = 0;
		for (unsigned i = 0; i < s->nheld; i++)
			hb += s->held[i].len;
		if (s->nheld > HELD_MAX || hb != s->held_bytes ||
		    (s->nheld > 1 && hb > HELD_BYTES) || (s->nheld && s->current) ||
		    s->breq_n > BREQ_DIGESTS)
			return -9;
		for (unsigned i = 0; i < SESS_IKE_SAS; i++)
			if (s->ike[i].ent.type && spi_find(srv, SPI_IKE, s->ike[i].ent.key) != s)
				return -7;
	}
	if (nconns != srv->nconns || npending != srv->npending || nsess != srv->nsessions ||
	    nho != srv->nhalf_open)
		return -8;
	return 0;
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
		session_destroy(srv->sessions, CR_SHUTDOWN);
	timer_stop(srv->loop, &srv->pause_timer);
	for (unsigned i = 0; i < SRC_BUCKETS; i++) {
		while (srv->src_tab[i]) {
			struct src_ent *e = srv->src_tab[i];
			srv->src_tab[i] = e->next;
			free(e);
		}
	}
	timer_stop(srv->loop, &srv->trim_sweep);
	iketcp_tls_ctx_unref(srv->tls_ctx);
	udprecv_free(&srv->urx);
	spitab_free(&srv->spis);
	free(srv);
}
