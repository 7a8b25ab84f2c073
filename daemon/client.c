#include "client.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "iketcp/iketcp.h"
#include "connect.h"
#include "log.h"
#include "net.h"
#include "relay.h"
#include "resolve.h"
#include "siphash.h"
#include "spitab.h"
#include "target.h"
#include "tlscfg.h"

#define FLOW_IKE_SPIS 4
#define FLOW_ESP_SPIS 8
#define SPI_BUCKETS (1u << 10)
/* ESP attribution (R25, R30), see attribute_esp(): an SA-creating exchange
 * that completed on a flow is a credit for the next new outbound SPI (or
 * new IKE SPI after an IKE rekey) for ATTRIB_WINDOW_MS; a guess stays open
 * to correction for REPLY_WINDOW_MS, the time the peer's first answer on
 * the new SA pair takes to come back on the right connection. */
#define FLOW_CREDITS 4
#define ATTRIB_WINDOW_MS 30000
#define REPLY_WINDOW_MS 2000
#define PROVISIONAL_MAX 8
/* Peer UDP addresses remembered as blocked (several for a name with
 * several addresses); the oldest entry makes room. */
#define UDP_BLOCKED_MAX 8
enum flow_mode { FM_UDP_TRYING, FM_UDP, FM_TCP };
/*
 * Connection setup, all under connect-timeout: TS_RESOLVING (waiting for the
 * first address of the peer's or proxy's name), TS_CONNECTING (TCP connect,
 * to the peer or the proxy), TS_PROXY (HTTP CONNECT), TS_TLS (handshake),
 * then TS_OPEN.
 */
enum tcp_state {
	TS_DOWN,
	TS_WAIT_RETRY,
	TS_RESOLVING,
	TS_CONNECTING,
	TS_PROXY,
	TS_TLS,
	TS_OPEN,
	TS_DRAINING
};

static const char *const tcp_state_names[] = {"down",  "wait-retry",    "resolving", "connecting",
					      "proxy", "tls-handshake", "open",      "draining"};

struct flow {
	struct relay r; /* first: relay callbacks get the flow from it */
	struct client *cl;
	uint64_t id;
	int dead;
	struct deferred dfr;
	struct iketcpd_addr local; /* the local IKE daemon's address */
	/* its IKE SPIs (initiator's) and outbound ESP SPIs, in cl->spis */
	struct spi_ent ike[FLOW_IKE_SPIS];
	unsigned ike_next;
	struct spi_ent esp[FLOW_ESP_SPIS];
	unsigned esp_next;
	uint64_t last_ike_ms; /* for attributing new ESP SPIs */
	/* completion times of IKE_AUTH / CREATE_CHILD_SA exchanges not yet
	 * matched with a new SPI from the local daemon, oldest first */
	struct credit {
		uint64_t ms;  /* for ATTRIB_WINDOW_MS */
		uint64_t seq; /* order across flows (many in one ms) */
	} credit[FLOW_CREDITS];
	unsigned ncredits;
	uint64_t credit_spi; /* the last credited exchange (IKE SPIi, Message ID) */
	uint32_t credit_msgid;
	/* ESP SPIs the peer sent on this connection (the local daemon's inbound
	 * SAs), and when a new one came that no outbound SPI was paired with */
	uint32_t esp_in[FLOW_ESP_SPIS];
	unsigned esp_in_next;
	uint64_t unpaired_in_ms;
	uint64_t new_out_ms; /* when the last new outbound SPI was given to it */
	uint64_t last_active_ms;
	/* for the status request: created; datagrams and bytes each way */
	uint64_t born_ms, from_local_n, from_local_bytes, from_peer_n, from_peer_bytes;
	enum flow_mode mode;
	struct timer idle;     /* flow-timeout */
	struct timer fallback; /* UDP_TRYING -> TCP */
	/* UDP relay (enable-tcp no / fallback) */
	struct watcher uw;
	struct iketcpd_addr udp_peer; /* where uw sends: the peer's UDP address */
	/* TCP */
	enum tcp_state ts;
	struct timer tt; /* connect timeout, retry wait, drain deadline */
	unsigned backoff_ms;
	uint64_t gen;       /* connection generation */
	uint32_t flowlabel; /* IPv6: kept for every reconnect (R22) */
	/* r.tr: plain TCP or TLS, ops NULL when down; r.is_tls: it is (or
	 * will be, after the proxy) TLS */
	int via_proxy;           /* this connection goes through the proxy */
	unsigned addr_idx;       /* which of the target's addresses it uses */
	struct http_connect *px; /* CONNECT in progress */
	unsigned bad_run;        /* runts in a row on this connection (R27) */
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
	struct target peer;
	struct target proxy; /* host "" = no proxy */
	/* tls = yes: one client context per section, so every reconnect of
	 * every flow offers the last session (R75). A reload builds a new one;
	 * connections keep the one they started with. */
	struct iketcp_tls_ctx *tls_ctx;
	struct watcher uw; /* the --udp socket (everything when iw.fd is -1) */
	/* The IKE lane: a second socket on the --udp address that the kernel
	 * hands every datagram with the non-ESP marker (net_udp_ike_lane()),
	 * so IKE does not queue or drop behind ESP in the receive buffer of
	 * uw under a flood. -1 when the kernel refused the steering. */
	struct watcher iw;
	/* The local IKE daemon (local-peer): the configured address, or with
	 * auto the sender of the first IKE_SA_INIT (pinned = 0 until then).
	 * Port 0 = any port of that address. */
	struct iketcpd_addr pin;
	int pinned;
	struct flow *flows;
	unsigned nflows, nconns;
	/* flows by IKE and ESP SPI, hashed as the server's sessions are: a
	 * lookup per datagram must not scan every flow */
	struct siphash_key hkey;
	struct spitab spis;
	/* enable-tcp fallback: peer UDP addresses that left UDP unanswered;
	 * new flows to them use TCP at once until until_ms (fallback-retry) */
	struct {
		struct iketcpd_addr addr;
		uint64_t until_ms;
	} udp_blocked[UDP_BLOCKED_MAX];
	int shutting;
	uint64_t next_id;
	struct client_stats st;
	/* frames from the peer to the local daemon: the read buffer and the
	 * batch of datagrams parsed from it */
	struct relay_io io;
	int gso_off;        /* the kernel refused UDP GSO on uw.fd */
	struct udprecv urx; /* datagrams from the local daemon */
	/* Flows with frames queued by the current recvmmsg batch: written once
	 * per batch, so a burst of datagrams becomes one writev, not one each. */
	struct flow *dirty;
	uint64_t credit_seq;
	/* outbound ESP SPIs attributed by a guess, open to correction by the
	 * next new inbound SPI (attribute_esp) */
	struct provisional {
		uint32_t spi;
		uint64_t flow_id; /* 0 = free */
		uint64_t first_ms;
		struct credit credit; /* the one it took from that flow, seq 0 = none */
	} prov[PROVISIONAL_MAX];
	int outer_said; /* the outcome of mark / bypass-policy was logged (once per section) */
};

static void flow_tcp_down(struct flow *f, enum client_close_reason why, const char *detail);
static void flow_flush(struct flow *f);
static void flow_handshake(struct flow *f);
static void flow_destroy(struct flow *f);
static void flow_end(struct flow *f, enum client_close_reason why);

/* ---- ports and the UDP-blocked memory ----------------------------------------- */

/* The peer's TCP port: tcp-remoteport, else the port given with peer. */
static uint16_t
tcp_port(const struct client *cl)
{
	return cl->cfg.tcp_remoteport ? (uint16_t)cl->cfg.tcp_remoteport : cl->cfg.peer_port;
}

/* The entry for a, or -1; an expired one no longer counts. */
static int
udp_blocked_find(struct client *cl, const struct iketcpd_addr *a)
{
	uint64_t now = loop_now(cl->loop);
	for (int i = 0; i < UDP_BLOCKED_MAX; i++)
		if (cl->udp_blocked[i].until_ms > now &&
		    iketcpd_addr_equal(&cl->udp_blocked[i].addr, a))
			return i;
	return -1;
}

/* Remembers a as blocked for fallback-retry; returns the wall-clock time
 * it ends at, "HH:MM:SS", in buf. */
static const char *
udp_blocked_set(struct client *cl, const struct iketcpd_addr *a, char *buf, size_t len)
{
	uint64_t now = loop_now(cl->loop);
	int slot = udp_blocked_find(cl, a);
	if (slot < 0) {
		slot = 0;
		for (int i = 1; i < UDP_BLOCKED_MAX; i++)
			if (cl->udp_blocked[i].until_ms < cl->udp_blocked[slot].until_ms)
				slot = i;
	}
	cl->udp_blocked[slot].addr = *a;
	cl->udp_blocked[slot].until_ms = now + cl->cfg.fallback_retry_ms;
	time_t until = time(NULL) + (time_t)(cl->cfg.fallback_retry_ms / 1000);
	struct tm tm;
	if (!localtime_r(&until, &tm) || !strftime(buf, len, "%H:%M:%S", &tm))
		snprintf(buf, len, "in %us", cl->cfg.fallback_retry_ms / 1000);
	return buf;
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
		/* memory: a flow that went quiet gets its second trim here */
		iketcp_sendq_trim(&f->r.q);
		iketcp_deframer_trim(&f->r.df);
		iketcp_tls_trim(&f->r.tr);
		timer_start(f->cl->loop, &f->idle, f->cl->cfg.flow_timeout_ms - idle);
		return;
	}
	log_info("%s: flow %llu idle for %llums, closing", f->cl->cfg.name,
		 (unsigned long long)f->id, (unsigned long long)idle);
	f->cl->st.flows_expired++;
	flow_end(f, CCR_IDLE);
}

static void flow_udp_cb(struct watcher *w, uint32_t ev);
static void flow_tcp_cb(struct watcher *w, uint32_t ev);
static void flow_tt_cb(struct timer *t);
static void flow_fallback_cb(struct timer *t);
static void flow_tcp_connect(struct flow *f);

/* ---- outer sockets on a full-tunnel host ------------------------------------------ */

static struct net_outer
outer_opts(const struct client *cl)
{
	return (struct net_outer){.mark = cl->cfg.mark, .bypass = cl->cfg.bypass_policy != 0};
}

/*
 * Says once per section what mark and bypass-policy did on the first outer
 * socket: the host's own tunnel silently swallowing the connection is the
 * failure they exist for, so a bypass that could not be set is a warning
 * when asked for (yes). With auto it is a note: most hosts have no policy
 * covering the peer, and a service without CAP_NET_ADMIN would otherwise
 * warn at every start.
 */
static void
outer_report(struct client *cl, const struct net_outer *o)
{
	char what[96] = "";
	int e = o->bypass_err;

	if (cl->outer_said || o->mark_err)
		return; /* a mark failure is the connection's failure, logged there */
	cl->outer_said = 1;
	if (o->bypass && e) {
		const char *why = e == EPERM ? " (needs CAP_NET_ADMIN)"
				  : e == ENOPROTOOPT
					  ? " (this kernel has no XFRM: no IPsec policy to bypass)"
					  : "";
		if (cl->cfg.bypass_policy == 1)
			log_warn(
				"%s: bypass-policy: cannot exempt the outer sockets from this "
				"host's "
				"IPsec policies, going on without: %s: %s%s; a policy covering the "
				"peer (a full tunnel) would take the connection into its own "
				"tunnel",
				cl->cfg.name,
				cl->peer.addr.ss.ss_family == AF_INET6 ? "IPV6_XFRM_POLICY"
								       : "IP_XFRM_POLICY",
				strerror(e), why);
		else
			log_info("%s: bypass-policy auto: outer sockets not exempted from IPsec "
				 "policies (%s%s); that matters only when this host's own policies "
				 "cover the peer (a full tunnel), see iketcpd(8)",
				 cl->cfg.name, strerror(e), why);
	}
	if (o->mark)
		snprintf(what, sizeof(what), "SO_MARK 0x%x", o->mark);
	if (o->bypass && !e)
		snprintf(what + strlen(what), sizeof(what) - strlen(what), "%sIPsec bypass policy",
			 o->mark ? " and an " : "an ");
	if (what[0])
		log_info("%s: outer sockets carry %s", cl->cfg.name, what);
}

/* The text for a mark that could not be set, for flow_connect_failed(). */
static const char *
mark_error(const struct net_outer *o, char *buf, size_t len)
{
	snprintf(buf, len, "SO_MARK 0x%x: %s%s", o->mark, strerror(o->mark_err),
		 o->mark_err == EPERM ? " (needs CAP_NET_ADMIN, see iketcpd(8))" : "");
	return buf;
}

static int
flow_udp_open(struct flow *f)
{
	struct client *cl = f->cl;
	struct net_outer o = outer_opts(cl);
	char e[160];

	f->udp_peer = cl->peer.addr;
	f->uw.fd = net_udp_connect_outer(&cl->peer.addr, &o);
	if (f->uw.fd < 0) {
		log_err("%s: UDP socket to peer: %s", cl->cfg.name,
			o.mark_err ? mark_error(&o, e, sizeof(e)) : strerror(errno));
		return -1;
	}
	outer_report(cl, &o);
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
	if (cl->cfg.enable_tcp != IKETCPD_TCP_YES && !cl->peer.have) {
		/* UDP to the peer needs its address; the local daemon's
		 * retransmission finds it once the lookup has ended. */
		target_lookup(&cl->peer);
		log_peer(LOG_LVL_WARN, LOGC_SESSION,
			 "%s: peer %s not resolved yet; datagram dropped", cl->cfg.name,
			 cl->cfg.peer_host);
		return NULL;
	}
	struct flow *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	struct iketcp_sendq_cfg qc = {.budget = cl->cfg.send_budget,
				      .ike_reserve = cl->cfg.ike_reserve};
	if (iketcp_sendq_init(&f->r.q, &qc) != IKETCP_OK) {
		free(f);
		return NULL;
	}
	f->cl = cl;
	f->id = ++cl->next_id;
	f->local = *local;
	f->uw.fd = -1;
	f->r.w.fd = -1;
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
	case IKETCPD_TCP_FALLBACK: {
		/* R13 made sticky: a peer whose UDP stayed unanswered is not
		 * tried on UDP again by every new IKE SA (each would wait
		 * fallback-wait) until fallback-retry has passed. */
		int b = udp_blocked_find(cl, &cl->peer.addr);
		f->mode = b < 0 ? FM_UDP_TRYING : FM_TCP;
		if (b >= 0) {
			char as[64];
			uint64_t left = cl->udp_blocked[b].until_ms - loop_now(cl->loop);
			cl->st.fallback_sticky++;
			log_info("%s: flow %llu: UDP to %s was unanswered; using TCP at once (UDP "
				 "is "
				 "tried again in %llus, fallback-retry)",
				 cl->cfg.name, (unsigned long long)f->id,
				 iketcpd_addr_str(&cl->peer.addr, as, sizeof(as)),
				 (unsigned long long)(left + 999) / 1000);
		}
		break;
	}
	}
	if (f->mode != FM_TCP) {
		if (flow_udp_open(f) < 0) {
			iketcp_sendq_free(&f->r.q);
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
	f->born_ms = loop_now(cl->loop);
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
	relay_free(&f->r);
	free(f->req);
	free(f);
}

/* Ends the flow and its connection (closed on our side, for why). */
static void
flow_end(struct flow *f, enum client_close_reason why)
{
	struct client *cl = f->cl;
	if (f->dead)
		return;
	udpbatch_flush_for(&cl->io.batch, cl->uw.fd, &f->local);
	for (unsigned i = 0; i < FLOW_IKE_SPIS; i++)
		spitab_unlink(&cl->spis, &f->ike[i]);
	for (unsigned i = 0; i < FLOW_ESP_SPIS; i++)
		spitab_unlink(&cl->spis, &f->esp[i]);
	flow_tcp_down(f, why, NULL);
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

/* Ends the flow on shutdown (at once, drained, or the drain timed out). */
static void
flow_destroy(struct flow *f)
{
	flow_end(f, CCR_SHUTDOWN);
}

/* ---- TCP connection of a flow ------------------------------------------------ */

/* "vpn.example.com:443" or "... via proxy 192.0.2.1:3128", for logs. */
#define FLOW_TARGET_MAX (2 * IKETCPD_HOST_MAX + 96)
static const char *
flow_target(const struct flow *f, char *buf, size_t len)
{
	const struct client *cl = f->cl;
	char ps[64];
	int v6 = strchr(cl->cfg.peer_host, ':') != NULL;

	if (f->via_proxy) {
		snprintf(buf, len, "%s%s%s:%u via proxy %s", v6 ? "[" : "", cl->cfg.peer_host,
			 v6 ? "]" : "", tcp_port(cl),
			 cl->proxy.have ? iketcpd_addr_str(&cl->proxy.addr, ps, sizeof(ps))
					: cl->cfg.proxy_host);
	} else if (cl->peer.have) {
		struct iketcpd_addr a = cl->peer.addr;
		iketcpd_addr_set_port(&a, tcp_port(cl));
		iketcpd_addr_str(&a, buf, len);
	} else {
		snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", cl->cfg.peer_host, v6 ? "]" : "",
			 tcp_port(cl));
	}
	return buf;
}

static int
flow_connected(const struct flow *f)
{
	return f->ts == TS_CONNECTING || f->ts == TS_PROXY || f->ts == TS_TLS || f->ts == TS_OPEN ||
	       f->ts == TS_DRAINING;
}

/* Epoll interest from what the transport waits for (OpenSSL's WANT_READ /
 * WANT_WRITE included), whether output is waiting, and the setup step. */
static void
flow_want(struct flow *f)
{
	if (!flow_connected(f))
		return;
	if (f->ts == TS_PROXY && iketcp_transport_handshake_done(&f->r.tr))
		relay_watch(f->cl->loop, &f->r, f->px ? http_connect_interest(f->px, &f->r.tr) : 0);
	else
		relay_want(f->cl->loop, &f->r, 1, 0);
}

/* Writes the prefix (first time only) together with queued frames. */
static void
flow_flush(struct flow *f)
{
	char e[IKETCP_TRANSPORT_ERR_MAX];
	if (f->ts != TS_OPEN && f->ts != TS_DRAINING)
		return;
	int rc = relay_flush(&f->r);
	if (rc == IKETCP_OK && f->ts == TS_DRAINING)
		flow_destroy(f);
	else if (rc == IKETCP_OK || rc == IKETCP_E_AGAIN)
		flow_want(f);
	else
		flow_tcp_down(f, CCR_WRITE, relay_error(&f->r, rc, e, sizeof(e)));
}

/* Waits for the next attempt (backoff, doubled up to reconnect-max). */
static void
flow_retry(struct flow *f)
{
	struct client *cl = f->cl;
	f->ts = TS_WAIT_RETRY;
	timer_start(cl->loop, &f->tt, f->backoff_ms);
	f->backoff_ms = f->backoff_ms * 2 > cl->cfg.reconnect_max_ms ? cl->cfg.reconnect_max_ms
								     : f->backoff_ms * 2;
}

/*
 * Closes the TCP connection (if any) and drops its state. graceful: the
 * flow ends on our side (flow-timeout, shutdown): TLS close_notify, then
 * FIN (A15). A broken connection is just closed.
 */
static void
flow_tcp_close(struct flow *f, int graceful)
{
	struct client *cl = f->cl;
	if (flow_connected(f)) {
		if (graceful && (f->ts == TS_OPEN || f->ts == TS_DRAINING) &&
		    iketcp_transport_shutdown(&f->r.tr) != IKETCP_OK)
			log_debug("%s: flow %llu: no close_notify sent", cl->cfg.name,
				  (unsigned long long)f->id);
		watcher_stop(cl->loop, &f->r.w);
		/* A TLS transport keeps its session resumable unless the
		 * connection died of a TLS error (lib/tls.c tls_free). */
		iketcp_transport_free(&f->r.tr);
		close(f->r.w.fd);
		f->r.w.fd = -1;
		cl->nconns--;
		udpbatch_flush_for(&cl->io.batch, cl->uw.fd, &f->local);
	}
	free(f->px);
	f->px = NULL;
	timer_stop(cl->loop, &f->tt);
	/* R23: a partial frame from the peer dies with the connection. Frames
	 * queued but not written are lost too, except the pending request,
	 * which the next connection resends (R36). */
	iketcp_deframer_free(&f->r.df);
	iketcp_sendq_free(&f->r.q);
	f->r.prefix_left = 0;
	/* A request queued for a connection that never opened (generation
	 * gen + 1) went with that queue: the next connection must resend it,
	 * and must not drop the local daemon's retransmission of it (R35). */
	if (f->req_gen > f->gen)
		f->req_gen = 0;
}

/*
 * The connection could not be set up (refused, timed out, the proxy said
 * no, the certificate was refused...): one line naming the reason and the
 * peer, counted as a connect failure, and a new attempt after the backoff.
 */
static void
flow_connect_failed(struct flow *f, enum client_close_reason why, const char *detail)
{
	struct client *cl = f->cl;
	char tgt[FLOW_TARGET_MAX];
	const char *what = client_close_reasons[why].text;

	cl->st.connect_failures++;
	cl->st.closed[why]++;
	flow_target(f, tgt, sizeof(tgt));
	flow_tcp_close(f, 0);
	if (f->dead || cl->shutting) {
		f->ts = TS_DOWN;
		return;
	}
	struct target *t = f->via_proxy ? &cl->proxy : &cl->peer;
	target_refresh(t, cl->cfg.resolve_interval_ms);
	log_warn("%s: flow %llu: cannot connect to %s: %s%s%s; retrying in %ums", cl->cfg.name,
		 (unsigned long long)f->id, tgt, what, detail && detail[0] ? ": " : "",
		 detail ? detail : "", f->backoff_ms);
	/* A name with several addresses (IPv6 and IPv4, say, where one path is
	 * broken): the next attempt tries the next one. Only once per failed
	 * address, however many flows failed on it. */
	target_failed(t, f->addr_idx);
	flow_retry(f);
}

/* ---- names of the peer and the proxy --------------------------------------- */

/* A lookup of t ended: flows that waited for it go on (or fail and back off). */
static void
target_done(void *owner, struct target *t, const char *err)
{
	struct client *cl = owner;
	for (struct flow *f = cl->flows, *next; f; f = next) {
		next = f->next;
		if (f->ts != TS_RESOLVING || (f->via_proxy ? &cl->proxy : &cl->peer) != t)
			continue;
		timer_stop(cl->loop, &f->tt);
		if (t->have) {
			flow_tcp_connect(f);
		} else {
			f->ts = TS_DOWN;
			flow_connect_failed(f, CCR_RESOLVE, err);
		}
	}
}

/* Looks up what the section's connections will need, before the first one. */
static void
client_lookup_targets(struct client *cl)
{
	if (cl->proxy.host[0])
		target_lookup(&cl->proxy);
	/* With a proxy and TCP only, the proxy resolves the peer's name. */
	if (!cl->proxy.host[0] || cl->cfg.enable_tcp != IKETCPD_TCP_YES)
		target_lookup(&cl->peer);
}

static void
flow_tcp_connect(struct flow *f)
{
	struct client *cl = f->cl;
	struct iketcpd_addr dst;
	int rc;

	f->via_proxy = cl->cfg.proxy_host[0] != '\0';
	f->r.is_tls = cl->cfg.use_tls;
	if (f->r.is_tls && !cl->tls_ctx) {
		/* tls = yes but no usable context (a reload failed): never
		 * fall back to plain TCP silently */
		f->ts = TS_DOWN;
		flow_connect_failed(f, CCR_TLS_CONTEXT, "see the earlier error");
		return;
	}
	/* Through a proxy, the proxy resolves the peer's name, not us. */
	struct target *t = f->via_proxy ? &cl->proxy : &cl->peer;
	if (!t->have) {
		target_lookup(t);
		if (!t->job) {
			f->ts = TS_DOWN;
			flow_connect_failed(f, CCR_RESOLVE, "no lookup could be started");
			return;
		}
		/* target_done() goes on; connect-timeout bounds the wait */
		f->ts = TS_RESOLVING;
		timer_start(cl->loop, &f->tt, cl->cfg.connect_timeout_ms);
		return;
	}
	/* the peer's name resolves with its UDP port; TCP may use another */
	dst = t->addr;
	if (!f->via_proxy)
		iketcpd_addr_set_port(&dst, tcp_port(cl));
	f->addr_idx = t->cur;
	struct net_outer o = outer_opts(cl);
	int fd = net_tcp_connect(&dst, &f->flowlabel, &o);
	cl->st.connects++;
	if (fd < 0) {
		char e[160];
		f->ts = TS_DOWN;
		flow_connect_failed(f, CCR_CONNECT,
				    o.mark_err ? mark_error(&o, e, sizeof(e)) : strerror(errno));
		return;
	}
	outer_report(cl, &o);
	/* The non-blocking connect is the transport's first handshake step. */
	if (f->r.is_tls && !f->via_proxy)
		rc = iketcp_tls_client_init(&f->r.tr, cl->tls_ctx, fd, IKETCP_TRANSPORT_CONNECTING);
	else
		rc = iketcp_transport_tcp_init(&f->r.tr, fd, IKETCP_TRANSPORT_CONNECTING);
	if (rc != IKETCP_OK) {
		close(fd);
		f->ts = TS_DOWN;
		flow_connect_failed(f, CCR_CONNECT, iketcp_strerror(rc));
		return;
	}
	f->r.w = (struct watcher){.fd = fd, .cb = flow_tcp_cb, .data = f};
	f->ts = TS_CONNECTING;
	cl->nconns++;
	watcher_start(cl->loop, &f->r.w, EPOLLOUT);
	timer_start(cl->loop, &f->tt, cl->cfg.connect_timeout_ms);
}

static void flow_tcp_read(struct flow *f);

/* Called once the connection (TCP, proxy tunnel, TLS) is set up. */
static void
flow_tcp_open(struct flow *f)
{
	struct client *cl = f->cl;
	char tgt[FLOW_TARGET_MAX], tls[160] = "";
	struct iketcp_deframer_cfg dc = {.expect_prefix = 0, .max_frame = cl->cfg.max_frame};

	timer_stop(cl->loop, &f->tt);
	(void)net_tcp_tune(f->r.w.fd, cl->cfg.tcp_keepalive, cl->cfg.tcp_user_timeout_ms);
	iketcp_deframer_free(&f->r.df);
	if (iketcp_deframer_init(&f->r.df, &dc) != IKETCP_OK) {
		flow_tcp_down(f, CCR_NOMEM, "deframer");
		return;
	}
	f->ts = TS_OPEN;
	f->gen++;
	f->bad_run = 0;
	f->r.prefix_left = IKETCP_PREFIX_LEN;
	/* R36: the request still waiting for its response goes first on the
	 * new connection, byte for byte as the local daemon sent it. */
	if (f->req_len && f->req_gen != f->gen) {
		/* IKE class: it overtakes ESP queued while connecting. */
		if (iketcp_sendq_push_datagram(&f->r.q, f->req, f->req_len) == IKETCP_OK) {
			f->req_gen = f->gen;
			cl->st.requests_resent++;
		} else {
			cl->st.sendq_drops++;
		}
	}
	if (f->r.is_tls) {
		int resumed = iketcp_tls_resumed(&f->r.tr);
		cl->st.tls_handshakes++;
		if (resumed)
			cl->st.tls_resumed++;
		snprintf(tls, sizeof(tls), ", %s %s, %s", iketcp_tls_version(&f->r.tr),
			 iketcp_tls_cipher(&f->r.tr),
			 resumed ? "TLS session resumed" : "new TLS session (not resumed)");
	}
	log_info("%s: flow %llu connected to %s (connection %llu%s)", cl->cfg.name,
		 (unsigned long long)f->id, flow_target(f, tgt, sizeof(tgt)),
		 (unsigned long long)f->gen, tls);
	flow_flush(f);
	/* bytes that came behind the proxy's answer are not announced by epoll */
	if (f->ts == TS_OPEN && f->r.tr.pre)
		flow_tcp_read(f);
}

/* The connection failed during setup with transport error rc. */
static void
flow_setup_error(struct flow *f, int rc)
{
	struct client *cl = f->cl;
	char e[IKETCP_TRANSPORT_ERR_MAX];
	const char *detail = e;
	enum client_close_reason why;

	iketcp_transport_last_error(&f->r.tr, e, sizeof(e));
	if (rc == IKETCP_E_TLS || rc == IKETCP_E_TLS_VERIFY || rc == IKETCP_E_TLS_PIN) {
		/* "certificate verify failed: certificate has expired",
		 * "... hostname mismatch (expected NAME)", "public key pin
		 * mismatch: ...": the library's reason, as is */
		cl->st.tls_failures++;
		why = CCR_TLS_HANDSHAKE;
	} else if (f->ts == TS_PROXY) {
		cl->st.proxy_failures++;
		why = CCR_PROXY;
	} else {
		/* the transport says "connect: Connection refused"; the
		 * reason's text says "connect" already */
		why = CCR_CONNECT;
		if (!strncmp(e, "connect: ", 9))
			detail = e + 9;
	}
	flow_connect_failed(f, why, e[0] ? detail : iketcp_strerror(rc));
}

/* Switches from the proxy's TCP stream to the tunnel: TLS or plain RFC
 * 9329 on the same socket; bytes read past the proxy's answer are given to
 * the new transport first. */
static void
flow_proxy_done(struct flow *f, const uint8_t *rest, size_t n)
{
	struct client *cl = f->cl;
	int fd = f->r.w.fd, rc;

	log_debug("%s: flow %llu: proxy opened the tunnel (%d %s)", cl->cfg.name,
		  (unsigned long long)f->id, f->px->parser.status, f->px->parser.reason);
	free(f->px);
	f->px = NULL;
	iketcp_transport_free(&f->r.tr);
	if (f->r.is_tls && !cl->tls_ctx) {
		flow_connect_failed(f, CCR_TLS_CONTEXT, "see the earlier error");
		return;
	}
	rc = f->r.is_tls ? iketcp_tls_client_init(&f->r.tr, cl->tls_ctx, fd, 0)
			 : iketcp_transport_tcp_init(&f->r.tr, fd, 0);
	if (rc == IKETCP_OK && n > 0)
		rc = iketcp_transport_preread(&f->r.tr, rest, n);
	if (rc != IKETCP_OK) {
		flow_connect_failed(f, CCR_PROXY, iketcp_strerror(rc));
		return;
	}
	if (!f->r.is_tls) {
		flow_tcp_open(f);
		return;
	}
	f->ts = TS_TLS;
	flow_handshake(f);
}

/* HTTP CONNECT: send the request, read the answer. */
static void
flow_proxy_step(struct flow *f)
{
	struct client *cl = f->cl;
	char e[IKETCP_TRANSPORT_ERR_MAX];
	const uint8_t *rest;
	size_t n;
	int rc;

	switch (http_connect_step(f->px, &f->r.tr, cl->io.rbuf, sizeof(cl->io.rbuf), &rest, &n, &rc,
				  e, sizeof(e))) {
	case HC_AGAIN:
		flow_want(f);
		return;
	case HC_DONE:
		flow_proxy_done(f, rest, n);
		return;
	case HC_IOERR:
		flow_setup_error(f, rc);
		return;
	case HC_REFUSED:
		cl->st.proxy_failures++;
		flow_connect_failed(f, CCR_PROXY, e);
		return;
	}
}

/* Starts the CONNECT request for the peer (host and port as configured). */
static void
flow_proxy_start(struct flow *f)
{
	struct client *cl = f->cl;
	char e[128];

	f->px = http_connect_new(cl->cfg.peer_host, tcp_port(cl), cl->cfg.proxy_auth, e, sizeof(e));
	if (!f->px) {
		cl->st.proxy_failures++;
		flow_connect_failed(f, CCR_PROXY, e);
		return;
	}
	f->ts = TS_PROXY;
	flow_proxy_step(f);
}

/* Advances the setup: TCP connect (to the peer or the proxy), TLS handshake. */
static void
flow_handshake(struct flow *f)
{
	int rc = iketcp_transport_handshake(&f->r.tr);

	if (rc == IKETCP_E_AGAIN) {
		if (f->r.is_tls && !f->via_proxy && !(f->r.tr.flags & IKETCP_TRANSPORT_CONNECTING))
			f->ts = TS_TLS; /* TCP is up, the TLS handshake runs */
		flow_want(f);
		return;
	}
	if (rc != IKETCP_OK) {
		flow_setup_error(f, rc);
		return;
	}
	if (f->via_proxy && f->ts == TS_CONNECTING) {
		flow_proxy_start(f);
		return;
	}
	flow_tcp_open(f);
}

/* Closed on our side: the flow ends with its connection. */
static int
ccr_ours(enum client_close_reason why)
{
	return why == CCR_IDLE || why == CCR_UNPINNED || why == CCR_SHUTDOWN;
}

/*
 * Closes the TCP connection, counted by why (detail: the library's or
 * OpenSSL's words, for the log); the flow stays and reconnects unless it
 * was closed on our side (ccr_ours).
 */
static void
flow_tcp_down(struct flow *f, enum client_close_reason why, const char *detail)
{
	struct client *cl = f->cl;
	enum tcp_state was = f->ts;
	int ours = ccr_ours(why);
	if (flow_connected(f)) {
		cl->st.closed[why]++;
		if (!ours)
			cl->st.disconnects++; /* lost, not closed by us */
	}
	flow_tcp_close(f, ours);
	if (ours || f->dead || cl->shutting) {
		f->ts = TS_DOWN;
		return;
	}
	target_refresh(f->via_proxy ? &cl->proxy : &cl->peer, cl->cfg.resolve_interval_ms);
	log_warn("%s: flow %llu: connection lost in state %s (%s%s%s); reconnecting in %ums",
		 cl->cfg.name, (unsigned long long)f->id, tcp_state_names[was],
		 client_close_reasons[why].text, detail ? ": " : "", detail ? detail : "",
		 f->backoff_ms);
	flow_retry(f);
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
	case TS_RESOLVING:
		/* the lookup goes on; the next attempt waits for it again */
		flow_connect_failed(f, CCR_CONNECT_TIMEOUT, "name lookup not finished");
		break;
	case TS_CONNECTING:
		flow_connect_failed(f, CCR_CONNECT_TIMEOUT, "TCP connection not established");
		break;
	case TS_PROXY:
		f->cl->st.proxy_failures++;
		flow_connect_failed(f, CCR_CONNECT_TIMEOUT, "no answer to CONNECT from the proxy");
		break;
	case TS_TLS:
		f->cl->st.tls_failures++;
		flow_connect_failed(f, CCR_CONNECT_TIMEOUT, "TLS handshake not finished");
		break;
	case TS_DRAINING:
		flow_destroy(f);
		break;
	case TS_OPEN:
		break;
	}
}

static void flow_from_peer(struct flow *f, const struct iketcp_dgram *d);
static struct flow *flow_by_ike(struct client *cl, uint64_t spi);
static void ike_learn(struct flow *f, uint64_t spi);
static void flow_exchange_seen(struct flow *f, const struct iketcp_ike_hdr *h);
static void flow_new_inbound_spi(struct flow *f, uint32_t spi);

/* The generation of the connection that carries what is queued now: the
 * open one, or the next one while (re)connecting. */
static uint64_t
carrier_gen(const struct flow *f)
{
	return f->ts == TS_OPEN || f->ts == TS_DRAINING ? f->gen : f->gen + 1;
}

/* The close reason for a fatal deframer error. */
static enum client_close_reason
deframe_why(int rc)
{
	return rc == IKETCP_E_BADLEN     ? CCR_BADLEN
	       : rc == IKETCP_E_TOOBIG   ? CCR_TOOBIG
	       : rc == IKETCP_E_REPREFIX ? CCR_BAD_PREFIX
	       : rc == IKETCP_E_NOMEM    ? CCR_NOMEM
					 : CCR_READ;
}

/* The relay's frame callback. Returns -1 when the connection went down
 * or was replaced meanwhile. */
static int
flow_frame(struct relay *r, const struct iketcp_dgram *d)
{
	struct flow *f = (struct flow *)r;
	struct client *cl = f->cl;
	uint64_t gen = f->gen;

	switch (d->kind) {
	case IKETCP_DGRAM_IKE:
	case IKETCP_DGRAM_ESP:
		/* R28: ESP is never a bad frame here, whatever its SPI: the
		 * local daemon's SA database decides, and a new CHILD SA's SPI
		 * may be unknown for a moment */
		f->bad_run = 0;
		cl->st.from_peer_frames++;
		f->backoff_ms = cl->cfg.reconnect_min_ms; /* the peer talks to us */
		flow_from_peer(f, d);
		break;
	case IKETCP_DGRAM_RUNT:
		if (d->runt == IKETCP_RUNT_EMPTY)
			break; /* R5: Length 2 */
		cl->st.from_peer_runts++;
		/* R27: a run of unusable frames means the stream is corrupt; a
		 * new connection starts clean */
		if (++f->bad_run >= cl->cfg.max_bad_frames) {
			char why[80];
			snprintf(why, sizeof(why), "%u bad frames in a row, max-bad-frames (R27)",
				 f->bad_run);
			udpbatch_flush(&cl->io.batch);
			flow_tcp_down(f, CCR_BAD_FRAMES, why);
			return -1;
		}
		break;
	case IKETCP_DGRAM_KEEPALIVE: /* R48 */
	case IKETCP_DGRAM_OVERSIZE:  /* cannot happen: the deframer bounds frames */
		break;
	}
	return f->gen != gen || f->ts != TS_OPEN ? -1 : 0;
}

static const struct relay_ops flow_ops = {.frame = flow_frame};

static void
flow_tcp_read(struct flow *f)
{
	char e[IKETCP_TRANSPORT_ERR_MAX];
	int code;

	switch (relay_read(&f->r, &f->cl->io, &flow_ops, &code)) {
	case RELAY_AGAIN:
		if (f->r.is_tls)
			flow_want(f); /* a TLS read may wait for writability */
		return;
	case RELAY_STOPPED:
		return;
	case RELAY_EOF:
		flow_tcp_down(f, CCR_EOF, NULL);
		return;
	case RELAY_IOERR:
		flow_tcp_down(f, CCR_READ, relay_error(&f->r, code, e, sizeof(e)));
		return;
	case RELAY_STREAM:
		flow_tcp_down(f, deframe_why(code), iketcp_strerror(code));
		return;
	}
}

static void
flow_tcp_cb(struct watcher *w, uint32_t ev)
{
	struct flow *f = w->data;

	switch (f->ts) {
	case TS_CONNECTING:
	case TS_TLS:
		flow_handshake(f);
		return;
	case TS_PROXY:
		flow_proxy_step(f);
		return;
	case TS_OPEN:
	case TS_DRAINING:
		break;
	default:
		return;
	}
	int rd, wr;
	relay_ready(&f->r, ev, &rd, &wr);
	if (rd)
		flow_tcp_read(f);
	if (wr && (f->ts == TS_OPEN || f->ts == TS_DRAINING))
		flow_flush(f);
}

/* ---- datagrams --------------------------------------------------------------- */

/* Something arrived from the peer (TCP frame body or UDP datagram). */
static void
flow_from_peer(struct flow *f, const struct iketcp_dgram *d)
{
	const struct iketcp_ike_hdr *h = &d->ike; /* valid with IKETCP_DGRAM_F_HDR */
	flow_touch(f);
	f->from_peer_n++;
	f->from_peer_bytes += d->len;
	if (d->flags & IKETCP_DGRAM_F_HDR) {
		f->last_ike_ms = loop_now(f->cl->loop);
		if (iketcp_ike_is_response(h) && f->req_len && h->spi_i == f->req_spi &&
		    h->msg_id == f->req_msgid)
			f->req_len = 0; /* answered: nothing to resend */
		/* R25: the peer's IKE for an SA arrives on that SA's connection,
		 * so a rekeyed IKE SA the peer speaks first on is learned here */
		if (!flow_by_ike(f->cl, h->spi_i))
			ike_learn(f, h->spi_i);
		flow_exchange_seen(f, h);
	} else if (d->kind == IKETCP_DGRAM_ESP) {
		uint32_t spi = d->spi;
		int known = 0;
		for (unsigned i = 0; i < FLOW_ESP_SPIS && !known; i++)
			known = f->esp_in[i] == spi;
		if (!known)
			flow_new_inbound_spi(f, spi);
	}
	udpbatch_add(&f->cl->io.batch, f->cl->uw.fd, &f->local, &f->cl->gso_off, d->p, d->len);
}

/*
 * enable-tcp fallback: UDP to the peer failed (no answer in fallback-wait,
 * or an ICMP error such as port unreachable): this flow goes to TCP now and
 * new flows to the same address start on TCP until fallback-retry passes.
 */
static void
flow_fall_back(struct flow *f, const char *why)
{
	struct client *cl = f->cl;
	char until[32];

	if (f->mode != FM_UDP_TRYING)
		return;
	timer_stop(cl->loop, &f->fallback);
	log_info("%s: flow %llu: %s: using TCP for this flow and new flows until %s "
		 "(fallback-retry)",
		 cl->cfg.name, (unsigned long long)f->id, why,
		 udp_blocked_set(cl, &f->udp_peer, until, sizeof(until)));
	cl->st.fallbacks_to_tcp++;
	f->mode = FM_TCP;
	flow_udp_close(f);
	/* The daemon's pending request (usually IKE_SA_INIT) goes out at once
	 * on the new connection rather than waiting for its retransmission. */
	f->req_gen = 0;
	flow_tcp_connect(f);
}

/* An error queued on the connected UDP socket: an ICMP answer from the path
 * (port or host unreachable, administratively prohibited); EPERM from
 * send(): the local firewall drops UDP. */
static int
udp_icmp_error(int e)
{
	return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == EACCES ||
	       e == EPERM;
}

/* ICMP (or the local firewall, EPERM) refused UDP: no point waiting for
 * fallback-wait. */
static void
flow_udp_refused(struct flow *f, int e)
{
	char why[160], as[64];
	snprintf(why, sizeof(why), "UDP to %s refused (%s)",
		 iketcpd_addr_str(&f->udp_peer, as, sizeof(as)), strerror(e));
	flow_fall_back(f, why);
}

static void
flow_udp_cb(struct watcher *w, uint32_t ev)
{
	struct flow *f = w->data;
	struct client *cl = f->cl;
	(void)ev;
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(w->fd, cl->io.rbuf, sizeof(cl->io.rbuf), MSG_DONTWAIT);
		if (n < 0 && f->mode == FM_UDP_TRYING && udp_icmp_error(errno)) {
			flow_udp_refused(f, errno);
			return;
		}
		if (n <= 0)
			break;
		if (f->mode == FM_UDP_TRYING) {
			/* R13: UDP works, so this flow stays on UDP. */
			f->mode = FM_UDP;
			timer_stop(cl->loop, &f->fallback);
			cl->st.udp_answers++;
			int b = udp_blocked_find(cl, &f->udp_peer);
			if (b >= 0) /* another flow gave up on it meanwhile */
				cl->udp_blocked[b].until_ms = 0;
			log_info("%s: flow %llu: peer answered over UDP; not using TCP",
				 cl->cfg.name, (unsigned long long)f->id);
		}
		struct iketcp_dgram d;
		if (iketcp_dgram_classify(cl->io.rbuf, (size_t)n, &d) != IKETCP_OK)
			continue; /* over 65533 bytes: cannot come from the peer's UDP/4500 */
		flow_from_peer(f, &d);
		udpbatch_flush(&cl->io.batch);
	}
}

static void
flow_fallback_cb(struct timer *t)
{
	struct flow *f = t->data;
	char why[160], as[64];
	uint32_t ms = f->cl->cfg.fallback_wait_ms;

	snprintf(why, sizeof(why), "no UDP answer from %s in %u.%u s",
		 iketcpd_addr_str(&f->udp_peer, as, sizeof(as)), ms / 1000, ms % 1000 / 100);
	flow_fall_back(f, why);
}

static struct flow *
flow_by_ike(struct client *cl, uint64_t spi)
{
	return spitab_owner(&cl->spis, SPI_IKE, spi);
}

static struct flow *
flow_by_esp(struct client *cl, uint32_t spi)
{
	return spitab_owner(&cl->spis, SPI_ESP, spi);
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

/* ---- which IKE SA a new SPI belongs to (R25, R30) ------------------------------------------ */

/*
 * The local daemon sends the IKE and ESP of all its SAs with this peer from
 * one address and port, and after IKE_SA_INIT everything that names an SPI
 * is encrypted. What is visible: the exchange type and Response flag in
 * each IKE header (which flow's IKE_AUTH / CREATE_CHILD_SA just completed),
 * the first packet of each new outbound SPI, and the first packet of each
 * new inbound SPI on each connection. The server and the peer's daemon keep
 * a new SA's inbound ESP on the connection of its IKE SA, so an inbound SPI
 * is always on the right flow; the outbound one is inferred:
 *
 *  1. the peer just started a new inbound SPI on flow F (within
 *     REPLY_WINDOW_MS) that no outbound SPI was paired with: the local
 *     daemon is answering it on that SA pair: F;
 *  2. else the flow whose unmatched exchange completed last before this
 *     packet (a new SA carries traffic as soon as it is installed, and an
 *     IKE rekey leaves an unmatched exchange behind); a guess if another
 *     flow had one too;
 *  3. else the flow of that address with the latest IKE traffic: a guess.
 *
 * A guess is provisional: the next new inbound SPI (the peer's answer to the
 * first packet on the new SA, on the connection that carries the SA) on
 * another flow within REPLY_WINDOW_MS moves it there, oldest guess first.
 */

static void
credits_expire(struct flow *f, uint64_t now)
{
	unsigned k = 0;
	while (k < f->ncredits && now - f->credit[k].ms > ATTRIB_WINDOW_MS)
		k++;
	if (!k)
		return;
	memmove(f->credit, f->credit + k, (f->ncredits - k) * sizeof(f->credit[0]));
	f->ncredits -= k;
}

static void
credit_give(struct flow *f, struct credit c)
{
	unsigned i;
	if (f->ncredits == FLOW_CREDITS) {
		memmove(f->credit, f->credit + 1, (FLOW_CREDITS - 1) * sizeof(f->credit[0]));
		f->ncredits--;
	}
	for (i = f->ncredits; i > 0 && f->credit[i - 1].seq > c.seq; i--)
		f->credit[i] = f->credit[i - 1];
	f->credit[i] = c;
	f->ncredits++;
}

static struct credit
credit_take(struct flow *f)
{
	struct credit c = f->credit[0];
	memmove(f->credit, f->credit + 1, (f->ncredits - 1) * sizeof(f->credit[0]));
	f->ncredits--;
	return c;
}

/* h (from either side, on f) may complete an exchange that creates SAs. */
static void
flow_exchange_seen(struct flow *f, const struct iketcp_ike_hdr *h)
{
	if (!iketcp_ike_is_response(h) ||
	    (h->exchange != IKETCP_IKE_AUTH && h->exchange != IKETCP_IKE_CREATE_CHILD_SA))
		return;
	/* fragments (RFC 7383) and retransmissions of one response count once */
	if (f->credit_spi == h->spi_i && f->credit_msgid == h->msg_id)
		return;
	f->credit_spi = h->spi_i;
	f->credit_msgid = h->msg_id;
	uint64_t now = loop_now(f->cl->loop);
	credits_expire(f, now);
	credit_give(f, (struct credit){.ms = now, .seq = ++f->cl->credit_seq});
}

static struct flow *
flow_by_id(struct client *cl, uint64_t id)
{
	for (struct flow *f = cl->flows; f; f = f->next)
		if (f->id == id && !f->dead)
			return f;
	return NULL;
}

/* A flow replaces its own oldest entry: no flow can push out another's. */
static void
esp_learn(struct flow *f, uint32_t spi)
{
	spitab_set(&f->cl->spis, &f->esp[f->esp_next++ % FLOW_ESP_SPIS], SPI_ESP, spi, f);
}

static void
ike_learn(struct flow *f, uint64_t spi)
{
	spitab_set(&f->cl->spis, &f->ike[f->ike_next++ % FLOW_IKE_SPIS], SPI_IKE, spi, f);
}

static int
same_local(const struct flow *f, const struct iketcpd_addr *local)
{
	return f->local.len == local->len && !memcmp(&f->local.ss, &local->ss, local->len);
}

/*
 * A flow for an SPI the local daemon at src sends and no flow knows (esp: an
 * ESP SPI; else the IKE SPIs of a rekeyed IKE SA, for which rule 1 does not
 * apply: the peer's IKE on a new SA is learned where it arrives).
 */
static struct flow *
attribute_new_spi(struct client *cl, const struct iketcpd_addr *src, int esp, int *guess,
		  struct credit *credit)
{
	uint64_t now = loop_now(cl->loop);
	struct flow *cand = NULL, *answer = NULL;
	unsigned ncand = 0, nanswer = 0;

	for (struct flow *f = cl->flows; f; f = f->next) {
		if (f->dead || !same_local(f, src))
			continue;
		credits_expire(f, now);
		if (esp && f->unpaired_in_ms && now - f->unpaired_in_ms <= REPLY_WINDOW_MS) {
			nanswer++;
			if (!answer || f->unpaired_in_ms < answer->unpaired_in_ms)
				answer = f;
		}
		if (f->ncredits) {
			ncand++;
			if (!cand ||
			    f->credit[f->ncredits - 1].seq > cand->credit[cand->ncredits - 1].seq)
				cand = f;
		}
	}
	*credit = (struct credit){0};
	if (answer) {
		answer->unpaired_in_ms = 0;
		if (answer->ncredits)
			*credit = credit_take(answer);
		*guess = nanswer > 1;
		return answer;
	}
	if (cand) {
		*credit = cand->credit[--cand->ncredits];
		*guess = ncand > 1;
		return cand;
	}
	*guess = 1;
	return flow_latest(cl, src);
}

static void
provisional_add(struct client *cl, struct flow *f, uint32_t spi, struct credit credit)
{
	struct provisional *slot = &cl->prov[0];
	for (unsigned i = 0; i < PROVISIONAL_MAX; i++) {
		struct provisional *p = &cl->prov[i];
		if (!p->flow_id) {
			slot = p;
			break;
		}
		if (p->first_ms < slot->first_ms)
			slot = p; /* full: the oldest guess is closed */
	}
	*slot = (struct provisional){
		.spi = spi, .flow_id = f->id, .first_ms = loop_now(cl->loop), .credit = credit};
}

/* The peer sent ESP with an SPI this connection had not carried before. */
static void
flow_new_inbound_spi(struct flow *f, uint32_t spi)
{
	struct client *cl = f->cl;
	uint64_t now = loop_now(cl->loop);
	struct provisional *oldest = NULL;

	f->esp_in[f->esp_in_next++ % FLOW_ESP_SPIS] = spi;
	for (unsigned i = 0; i < PROVISIONAL_MAX; i++) {
		struct provisional *p = &cl->prov[i];
		if (!p->flow_id)
			continue;
		struct flow *g = flow_by_id(cl, p->flow_id);
		if (!g || now - p->first_ms > REPLY_WINDOW_MS) {
			p->flow_id = 0; /* closed: the guess stands */
			continue;
		}
		if (same_local(g, &f->local) && (!oldest || p->first_ms < oldest->first_ms))
			oldest = p;
	}
	if (oldest) {
		struct flow *g = flow_by_id(cl, oldest->flow_id);
		oldest->flow_id = 0;
		if (g != f) {
			struct spi_ent *e = spitab_find(&cl->spis, SPI_ESP, oldest->spi);
			if (e && e->owner == g)
				spitab_unlink(&cl->spis, e);
			esp_learn(f, oldest->spi);
			if (oldest->credit.seq)
				credit_give(g, oldest->credit);
			credits_expire(f, now);
			if (f->ncredits)
				(void)credit_take(f);
			cl->st.spi_moved++;
			log_debug(
				"%s: outbound ESP SPI %08x moved from flow %llu to flow %llu: the "
				"peer answered on flow %llu (inbound SPI %08x)",
				cl->cfg.name, oldest->spi, (unsigned long long)g->id,
				(unsigned long long)f->id, (unsigned long long)f->id, spi);
		}
		return;
	}
	if (f->new_out_ms && now - f->new_out_ms <= REPLY_WINDOW_MS)
		f->new_out_ms = 0; /* the answer to this flow's new outbound SPI */
	else
		f->unpaired_in_ms = now;
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

/* ---- who may send: local-peer ------------------------------------------------------ */

/* a's IP as 16 bytes (IPv4 as ::ffff:A.B.C.D, the form a dual-stack udp
 * socket reports IPv4 senders in) and its port in network order. */
static int
addr_ip16(const struct iketcpd_addr *a, uint8_t ip[16], uint16_t *port)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (a->ss.ss_family == AF_INET && a->len >= sizeof(sin)) {
		memcpy(&sin, &a->ss, sizeof(sin));
		memset(ip, 0, 10);
		ip[10] = ip[11] = 0xff;
		memcpy(ip + 12, &sin.sin_addr, 4);
		*port = sin.sin_port;
		return 0;
	}
	if (a->ss.ss_family == AF_INET6 && a->len >= sizeof(sin6)) {
		memcpy(&sin6, &a->ss, sizeof(sin6));
		memcpy(ip, &sin6.sin6_addr, 16);
		*port = sin6.sin6_port;
		return 0;
	}
	return -1;
}

/* 1 if src is the pinned daemon (its IP, and its port unless that is 0);
 * *same_ip tells whether at least the IP is. */
static int
pin_match(const struct client *cl, const struct iketcpd_addr *src, int *same_ip)
{
	uint8_t a[16], b[16];
	uint16_t pa, pb;

	*same_ip = 0;
	if (!cl->pinned || addr_ip16(&cl->pin, a, &pa) < 0 || addr_ip16(src, b, &pb) < 0)
		return 0;
	*same_ip = memcmp(a, b, 16) == 0;
	return *same_ip && (pa == 0 || pa == pb);
}

/* The pinned address for logs: "192.0.2.1:500", or "192.0.2.1 (any port)". */
static const char *
pin_str(const struct client *cl, char *buf, size_t len)
{
	uint8_t ip[16];
	uint16_t port;

	if (!cl->pinned)
		return "nobody yet";
	iketcpd_addr_str(&cl->pin, buf, len);
	if (addr_ip16(&cl->pin, ip, &port) == 0 && port == 0) {
		char *colon = strrchr(buf, ':');
		if (colon)
			snprintf(colon, len - (size_t)(colon - buf), " (any port)");
	}
	return buf;
}

/* Closes the flows whose replies would go to someone other than the pinned
 * daemon (after it moved, or local-peer changed on reload). */
static void
close_unpinned_flows(struct client *cl)
{
	int same_ip;

	for (struct flow *f = cl->flows, *next; f; f = next) {
		next = f->next;
		if (pin_match(cl, &f->local, &same_ip))
			continue;
		log_info("%s: flow %llu closed: its local address is no longer the local IKE "
			 "daemon's",
			 cl->cfg.name, (unsigned long long)f->id);
		flow_end(f, CCR_UNPINNED);
	}
}

/*
 * Whether a datagram from src may be handled (sa_init: it is an IKE_SA_INIT
 * request, the only thing that creates a flow). The pinned daemon may; in
 * auto mode an IKE_SA_INIT pins its sender when nobody is pinned yet, and
 * moves the pin to a new port of the pinned IP (the daemon restarted on
 * another port: a new daemon starts with IKE_SA_INIT, and the old one's
 * flows are closed). Nothing else moves the pin. Everyone else is counted
 * and dropped.
 */
static int
local_sender_ok(struct client *cl, const struct iketcpd_addr *src, int sa_init)
{
	char as[64], ps[64];
	int same_ip;

	if (pin_match(cl, src, &same_ip))
		return 1;
	if (sa_init && cl->cfg.local_peer.len == 0 && (!cl->pinned || same_ip)) {
		iketcpd_addr_str(src, as, sizeof(as));
		if (!cl->pinned)
			log_info("%s: local IKE daemon is %s (local-peer auto: other senders are "
				 "refused)",
				 cl->cfg.name, as);
		else
			log_peer(LOG_LVL_WARN, LOGC_SESSION, /* not lost in a flood of drops */
				 "%s: local IKE daemon moved from %s to %s (IKE_SA_INIT from a "
				 "new port); closing the flows of the old one",
				 cl->cfg.name, iketcpd_addr_str(&cl->pin, ps, sizeof(ps)), as);
		cl->pin = *src;
		cl->pinned = 1;
		close_unpinned_flows(cl);
		return 1;
	}
	cl->st.udp_foreign_drops++;
	log_peer(LOG_LVL_WARN, LOGC_ACCEPT,
		 "%s: datagram from %s dropped: not the local IKE daemon (local-peer %s%s)",
		 cl->cfg.name, iketcpd_addr_str(src, as, sizeof(as)),
		 cl->cfg.local_peer.len ? "" : "auto, pinned to ", pin_str(cl, ps, sizeof(ps)));
	return 0;
}

static void
from_local(struct client *cl, const struct iketcpd_addr *src, const uint8_t *p, size_t len)
{
	struct flow *f = NULL;
	struct iketcp_dgram d;
	int is_ike = 0, is_request = 0, sa_init = 0, marker;

	if (iketcp_dgram_classify(p, len, &d) != IKETCP_OK)
		return; /* over 65533 bytes: recvmmsg's buffer is no larger */
	const struct iketcp_ike_hdr *h = &d.ike; /* valid with IKETCP_DGRAM_F_HDR */
	marker = (d.flags & IKETCP_DGRAM_F_MARKER) && len > IKETCP_MARKER_LEN;
	if (d.flags & IKETCP_DGRAM_F_HDR) {
		is_ike = 1;
		is_request = !iketcp_ike_is_response(h);
		sa_init = h->exchange == IKETCP_IKE_SA_INIT && h->spi_r == 0 && is_request;
	}
	if (!local_sender_ok(cl, src, sa_init))
		return;
	cl->st.from_local++;
	if (d.kind == IKETCP_DGRAM_KEEPALIVE) {
		cl->st.local_keepalives++;
		f = flow_latest(cl, src);
		if (f && f->mode != FM_TCP)
			(void)send(f->uw.fd, p, len, 0); /* UDP path: keepalives belong there */
		return;                                  /* R47: never over TCP */
	}
	if (marker) {
		if (!is_ike) {
			cl->st.unroutable++;
			return;
		}
		f = flow_by_ike(cl, h->spi_i);
		int known = f != NULL;
		if (!f && sa_init) {
			f = flow_new(cl, src);
		} else if (!f) {
			/* IKE SA rekeyed: new SPIs, on the flow whose
			 * CREATE_CHILD_SA completed (R25) */
			int guess;
			struct credit credit;
			f = attribute_new_spi(cl, src, 0, &guess, &credit);
			if (f) {
				if (guess)
					cl->st.spi_guessed++;
				else
					cl->st.spi_attributed++;
				log_debug("%s: IKE SPI %016llx: flow %llu (%s)", cl->cfg.name,
					  (unsigned long long)h->spi_i, (unsigned long long)f->id,
					  guess ? "guess" : "its exchange");
			}
		}
		if (!f) {
			cl->st.unroutable++;
			return;
		}
		if (!known)
			ike_learn(f, h->spi_i);
		f->last_ike_ms = loop_now(cl->loop);
		flow_exchange_seen(f, h); /* the daemon answered the peer's CREATE_CHILD_SA */
	} else if (d.kind == IKETCP_DGRAM_ESP) {
		uint32_t spi = d.spi;
		f = flow_by_esp(cl, spi);
		if (!f) {
			int guess;
			struct credit credit;
			f = attribute_new_spi(cl, src, 1, &guess, &credit);
			if (!f) {
				cl->st.unroutable++;
				return;
			}
			esp_learn(f, spi);
			f->new_out_ms = loop_now(cl->loop);
			if (guess) {
				cl->st.spi_guessed++;
				provisional_add(cl, f, spi, credit);
			} else {
				cl->st.spi_attributed++;
			}
			log_debug("%s: outbound ESP SPI %08x: flow %llu (%s)", cl->cfg.name, spi,
				  (unsigned long long)f->id, guess ? "provisional guess" : "sure");
		}
	} else {
		cl->st.unroutable++;
		return;
	}
	/* Replies follow the daemon's IKE (a port change of a daemon with an IP
	 * local-peer and no port), never ESP: an ESP SPI is easy to learn and
	 * would steer the flow's traffic elsewhere. */
	if (is_ike)
		f->local = *src;
	flow_touch(f);
	f->from_local_n++;
	f->from_local_bytes += len;

	if (is_ike && is_request) {
		/* The same bytes, not only the same SPI and message ID: the
		 * fragments of one request (RFC 7383) share both and are each
		 * needed; a retransmitted earlier fragment goes out again,
		 * which costs a duplicate, never a loss. */
		if (f->req_len == len && f->req_spi == h->spi_i && f->req_msgid == h->msg_id &&
		    !memcmp(f->req, p, len) && f->mode == FM_TCP && f->req_gen == carrier_gen(f)) {
			/* R35: this connection already carries it; TCP is reliable. */
			cl->st.retransmits_dropped++;
			return;
		}
		remember_request(f, p, len, h);
	}

	if (f->mode != FM_TCP) {
		if (send(f->uw.fd, p, len, 0) < 0) {
			int e = errno;
			if (f->mode == FM_UDP_TRYING && udp_icmp_error(e)) {
				/* the ICMP answer to an earlier datagram; the
				 * pending request is resent on TCP */
				flow_udp_refused(f, e);
			} else {
				cl->st.sendq_drops++;
			}
		}
		return;
	}
	int rc = iketcp_sendq_push_dgram(&f->r.q, &d);
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
	/* Either socket: the send queue puts IKE ahead of ESP whichever is
	 * read first, so the IKE lane needs no reading order. */
	int n = udprecv_read(&cl->urx, w->fd, 1);
	for (int i = 0; i < n; i++) {
		struct iketcpd_addr src;
		udprecv_src(&cl->urx, i, &src);
		from_local(cl, &src, udprecv_data(&cl->urx, i), udprecv_len(&cl->urx, i));
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

/* What the section does on top of plain TCP, and the warnings it deserves. */
static void
client_tls_info(const struct iketcpd_client_cfg *cfg)
{
	if (cfg->proxy_host[0])
		log_info("%s: through HTTP proxy %s%s%s:%u%s", cfg->name,
			 strchr(cfg->proxy_host, ':') ? "[" : "", cfg->proxy_host,
			 strchr(cfg->proxy_host, ':') ? "]" : "", cfg->proxy_port,
			 cfg->proxy_auth[0] ? " (Basic authentication)" : "");
	if (!cfg->use_tls)
		return;
	log_info("%s: TLS to the peer: server name %s, trust %s%s%s, tls-min-version %s", cfg->name,
		 cfg->tls_server_name[0] ? cfg->tls_server_name : cfg->peer_host,
		 cfg->tls_ca_file[0] ? cfg->tls_ca_file : "the system CA store",
		 cfg->tls_pin[0] ? ", public key pin " : "", cfg->tls_pin,
		 cfg->tls.min_version == IKETCPD_TLS_V13 ? "1.3" : "1.2");
	if (!cfg->tls_verify)
		log_warn("%s: WARNING: tls-verify = no: the peer's TLS certificate is NOT "
			 "checked%s; "
			 "anyone on the path can pose as the TLS server (IKE still authenticates "
			 "the IKE peer)",
			 cfg->name, cfg->tls_pin[0] ? " (only the public key pin is)" : "");
	if (cfg->tls.null_cipher)
		log_warn("%s: tls-null-cipher is on: the client offers TLS 1.2 only, NULL (no "
			 "encryption) first (RFC 9329 Appendix A allows it, RFC 9325 forbids it; "
			 "IKE "
			 "and ESP inside stay encrypted)",
			 cfg->name);
}

struct client *
client_new(struct loop *l, const struct iketcpd_client_cfg *cfg)
{
	char as[64];
	struct client *cl = calloc(1, sizeof(*cl));
	if (!cl)
		return NULL;
	cl->loop = l;
	cl->cfg = *cfg;
	udpbatch_init(&cl->io.batch, &cl->st.to_local, &cl->st.to_local_drops);
	if (siphash_key_random(&cl->hkey) < 0)
		log_warn("%s: no random key from getrandom(): %s; table keys are weaker", cfg->name,
			 strerror(errno));
	if (udprecv_init(&cl->urx) < 0 || spitab_init(&cl->spis, &cl->hkey, SPI_BUCKETS) < 0) {
		udprecv_free(&cl->urx);
		spitab_free(&cl->spis);
		free(cl);
		return NULL;
	}
	int lane_err;
	cl->uw.fd = net_udp_ike_lane(&cfg->udp, &cl->iw.fd, &lane_err);
	if (cl->uw.fd < 0) {
		log_err("%s: UDP socket on %s: %s", cfg->name,
			iketcpd_addr_str(&cfg->udp, as, sizeof(as)), strerror(errno));
		udprecv_free(&cl->urx);
		spitab_free(&cl->spis);
		free(cl);
		return NULL;
	}
	cl->uw.cb = local_udp_cb;
	cl->uw.data = cl;
	cl->iw.cb = local_udp_cb;
	cl->iw.data = cl;
	if (cl->iw.fd < 0)
		log_info("%s: no separate IKE receive socket (%s): IKE shares the UDP socket's "
			 "queue with ESP",
			 cfg->name, strerror(lane_err));
	if (watcher_start(l, &cl->uw, EPOLLIN) < 0 ||
	    (cl->iw.fd >= 0 && watcher_start(l, &cl->iw, EPOLLIN) < 0)) {
		watcher_stop(l, &cl->uw);
		close(cl->uw.fd);
		if (cl->iw.fd >= 0)
			close(cl->iw.fd);
		udprecv_free(&cl->urx);
		spitab_free(&cl->spis);
		free(cl);
		return NULL;
	}
	if (cfg->use_tls) {
		char err[512];
		cl->tls_ctx = tlscfg_client_ctx(cfg, err, sizeof(err));
		if (!cl->tls_ctx) {
			log_err("%s: TLS: %s", cfg->name, err);
			watcher_stop(l, &cl->uw);
			close(cl->uw.fd);
			if (cl->iw.fd >= 0) {
				watcher_stop(l, &cl->iw);
				close(cl->iw.fd);
			}
			udprecv_free(&cl->urx);
			spitab_free(&cl->spis);
			free(cl);
			return NULL;
		}
	}
	if (cfg->local_peer.len) {
		cl->pin = cfg->local_peer;
		cl->pinned = 1;
	}
	target_init(&cl->peer, l, cl->cfg.name, "peer", target_done, cl, &cl->st.resolves,
		    &cl->st.resolve_failures);
	target_init(&cl->proxy, l, cl->cfg.name, "proxy", target_done, cl, &cl->st.resolves,
		    &cl->st.resolve_failures);
	target_set(&cl->peer, cfg->peer_host, cfg->peer_port);
	target_set(&cl->proxy, cfg->proxy_host, cfg->proxy_port);
	client_lookup_targets(cl);
	static const char *const modes[] = {"no", "yes", "fallback"};
	log_info("%s: UDP %s -> peer %s, UDP port %u, TCP port %u, enable-tcp=%s", cfg->name,
		 iketcpd_addr_str(&cfg->udp, as, sizeof(as)), cfg->peer_host, cfg->peer_port,
		 tcp_port(cl), modes[cfg->enable_tcp]);
	if (cfg->enable_tcp == IKETCPD_TCP_FALLBACK && !cfg->tcp_remoteport &&
	    cfg->peer_port != 4500 && cfg->peer_port != 500)
		log_warn("%s: enable-tcp fallback tries UDP to port %u first; if only TCP listens "
			 "there, write peer = %s and tcp-remoteport = %u (UDP then goes to 4500)",
			 cfg->name, cfg->peer_port, cfg->peer_host, cfg->peer_port);
	client_tls_info(cfg);
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
	/* A changed name is looked up again; connections keep their address. */
	if (strcmp(cl->peer.host, cfg->peer_host) || cl->peer.port != cfg->peer_port)
		target_set(&cl->peer, cfg->peer_host, cfg->peer_port);
	if (strcmp(cl->proxy.host, cfg->proxy_host) || cl->proxy.port != cfg->proxy_port)
		target_set(&cl->proxy, cfg->proxy_host, cfg->proxy_port);
	/* TLS files are read again. New connections use the new context (a
	 * full handshake: sessions belong to a context); open ones keep theirs.
	 * A broken file keeps the old context. */
	if (cfg->use_tls) {
		char err[512];
		struct iketcp_tls_ctx *n = tlscfg_client_ctx(cfg, err, sizeof(err));
		if (n) {
			iketcp_tls_ctx_unref(cl->tls_ctx);
			cl->tls_ctx = n;
		} else if (cl->tls_ctx) {
			log_err("%s: reload: TLS: %s; keeping the previous TLS settings", cfg->name,
				err);
		} else {
			log_err("%s: reload: TLS: %s; no connection until it is fixed", cfg->name,
				err);
		}
	} else if (cl->tls_ctx) {
		iketcp_tls_ctx_unref(cl->tls_ctx);
		cl->tls_ctx = NULL;
	}
	/* A new local-peer address is pinned at once; a change to auto keeps
	 * the daemon pinned now (unpinning would let any sender in). Flows of
	 * a sender that is no longer trusted end. */
	int repin = memcmp(&cl->cfg.local_peer, &cfg->local_peer, sizeof(cfg->local_peer)) != 0;
	cl->cfg = *cfg;
	if (repin && cfg->local_peer.len) {
		cl->pin = cfg->local_peer;
		cl->pinned = 1;
	}
	if (repin && cl->pinned)
		close_unpinned_flows(cl);
	cl->outer_said = 0; /* mark and bypass-policy may have changed: say again */
	client_lookup_targets(cl);
	client_tls_info(cfg);
	log_info("%s: configuration reloaded (%u flows kept)", cfg->name, cl->nflows);
	return 0;
}

void
client_shutdown(struct client *cl)
{
	cl->shutting = 1;
	watcher_stop(cl->loop, &cl->uw);
	if (cl->iw.fd >= 0)
		watcher_stop(cl->loop, &cl->iw);
	target_stop(&cl->peer);
	target_stop(&cl->proxy);
	for (struct flow *f = cl->flows, *n; f; f = n) {
		n = f->next;
		if (f->ts == TS_OPEN && iketcp_sendq_bytes(&f->r.q)) {
			f->ts = TS_DRAINING;
			timer_start(cl->loop, &f->tt, RELAY_DRAIN_MS);
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

struct client_gauges
client_gauges(const struct client *cl)
{
	return (struct client_gauges){.flows = cl->nflows, .connections = cl->nconns};
}

void
client_log_stats(const struct client *cl)
{
	struct client_gauges g = client_gauges(cl);
	unsigned show = 0;
	if (cl->cfg.use_tls || cl->cfg.proxy_host[0])
		show |= 1u << CG_TLS;
	if (!cl->peer.numeric || (cl->proxy.host[0] && !cl->proxy.numeric))
		show |= 1u << CG_LOOKUPS;
	ctr_log(&client_counters, cl->cfg.name, &cl->st, &g, show);
}

void
client_print_stats(const struct client *cl, FILE *fp)
{
	struct client_gauges g = client_gauges(cl);
	ctr_print(&client_counters, cl->cfg.name, &cl->st, &g, fp);
}

void
client_free(struct client *cl)
{
	if (!cl)
		return;
	cl->shutting = 1;
	while (cl->flows)
		flow_destroy(cl->flows);
	target_stop(&cl->peer);
	target_stop(&cl->proxy);
	watcher_stop(cl->loop, &cl->uw);
	close(cl->uw.fd);
	if (cl->iw.fd >= 0) {
		watcher_stop(cl->loop, &cl->iw);
		close(cl->iw.fd);
	}
	iketcp_tls_ctx_unref(cl->tls_ctx);
	udprecv_free(&cl->urx);
	spitab_free(&cl->spis);
	free(cl);
}

int
client_check(const struct iketcpd_client_cfg *cfg, char *err, size_t errlen)
{
	char e[512];
	struct iketcp_tls_ctx *ctx;

	if (!cfg->use_tls)
		return 0;
	ctx = tlscfg_client_ctx(cfg, e, sizeof(e));
	if (!ctx) {
		snprintf(err, errlen, "client \"%s\": %s", cfg->name, e);
		return -1;
	}
	iketcp_tls_ctx_unref(ctx);
	return 0;
}

void
client_print_status(const struct client *cl, FILE *fp, long max_bytes)
{
	uint64_t now = loop_now(cl->loop);
	unsigned left = cl->nflows;
	char as[64], ps[IKETCPD_HOST_MAX + 80];

	for (const struct flow *f = cl->flows; f; f = f->next, left--) {
		if (ftell(fp) > max_bytes) {
			fprintf(fp, "client %s truncated flows_left=%u\n", cl->cfg.name, left);
			return;
		}
		if (f->mode == FM_TCP) {
			/* a name as configured: the address may change per connection */
			const char *h = cl->cfg.peer_host;
			snprintf(ps, sizeof(ps), strchr(h, ':') ? "[%s]:%u" : "%s:%u", h,
				 (unsigned)tcp_port(cl));
		} else {
			iketcpd_addr_str(&f->udp_peer, ps, sizeof(ps));
		}
		fprintf(fp, "client %s flow %llu local=%s mode=%s peer=%s", cl->cfg.name,
			(unsigned long long)f->id, iketcpd_addr_str(&f->local, as, sizeof(as)),
			f->mode == FM_TCP   ? "tcp"
			: f->mode == FM_UDP ? "udp"
					    : "udp-trying",
			ps);
		if (f->mode == FM_TCP) {
			struct iketcpd_addr me = {.len = sizeof(me.ss)};
			/* the source the server sees (before any proxy) */
			if (f->ts == TS_OPEN &&
			    getsockname(f->r.w.fd, (struct sockaddr *)&me.ss, &me.len) == 0)
				fprintf(fp, " tcp_local=%s", iketcpd_addr_str(&me, as, sizeof(as)));
			else
				fprintf(fp, " tcp_local=-");
			fprintf(fp, " state=%s via_proxy=%s tls=%s connections=%llu",
				tcp_state_names[f->ts], f->via_proxy ? "yes" : "no",
				f->r.is_tls ? "yes" : "no", (unsigned long long)f->gen);
		} else {
			fprintf(fp, " state=-");
		}
		fprintf(fp, " spi_i=");
		int any = 0;
		for (unsigned i = 0; i < FLOW_IKE_SPIS; i++) {
			const struct spi_ent *e = &f->ike[(f->ike_next + i) % FLOW_IKE_SPIS];
			if (e->type)
				fprintf(fp, "%s%016llx", any++ ? "," : "",
					(unsigned long long)e->key);
		}
		fprintf(fp, "%s esp_out=", any ? "" : "-");
		any = 0;
		for (unsigned i = 0; i < FLOW_ESP_SPIS; i++) {
			const struct spi_ent *e = &f->esp[(f->esp_next + i) % FLOW_ESP_SPIS];
			if (e->type)
				fprintf(fp, "%s%08llx", any++ ? "," : "",
					(unsigned long long)e->key);
		}
		fprintf(fp,
			"%s age_s=%llu idle_s=%llu from_local_dgrams=%llu from_local_bytes=%llu "
			"from_peer_dgrams=%llu from_peer_bytes=%llu queued_bytes=%zu\n",
			any ? "" : "-", (unsigned long long)(now - f->born_ms) / 1000,
			(unsigned long long)(now - (f->last_active_ms ? f->last_active_ms : now)) /
				1000,
			(unsigned long long)f->from_local_n,
			(unsigned long long)f->from_local_bytes, (unsigned long long)f->from_peer_n,
			(unsigned long long)f->from_peer_bytes, iketcp_sendq_bytes(&f->r.q));
	}
}
