/*
 * Server mode: the TCP responder (TR) side of RFC 9329, in front of a
 * UDP-only IKE daemon.
 *
 * Each accepted connection must send "IKETCP" and a first routable frame
 * within prefix-timeout. Frames are relayed verbatim as UDP/4500 datagrams
 * to the backend through a UDP socket that belongs to the IKE *session*, not
 * to the TCP connection, so a client that reconnects reaches the backend
 * from the same UDP port and its IKE/IPsec SAs survive (R20, R21, R70).
 *
 * Sessions are found by IKE SPI (initiator SPI) and by ESP SPI, learnt from
 * frames on the session's connections. Only an IKE_SA_INIT request creates
 * a session. A connection belongs to one session.
 *
 * Return path (R31-R33): the backend's datagrams go to the session's
 * *current* connection. A new connection that merely claims known SPIs does
 * not become current while the current one is open: it becomes current when
 * the backend answers an IKE request that arrived on it (iketcpd cannot
 * decrypt, so "the backend answered it" stands for "it was valid", R32), or
 * when the current connection closes.
 */
#ifndef IKETCPD_SERVER_H
#define IKETCPD_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "counters.h"
#include "loop.h"

/* Why a connection was closed: counted in server_stats.closed, named in
 * server_close_reasons (counters.c): log text, stats key closed_<key>. */
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
	CR_FRAME_TIMEOUT,
	CR_NOT_JOINED,
	CR_IDLE,
	CR_EVICTED,
	CR_HALF_OPEN,
	CR_COOKIE,
	CR_COUNT
};

extern const struct ctr_reason server_close_reasons[CR_COUNT];

struct server_stats {
	uint64_t accepted;
	uint64_t refused_total, refused_source, refused_pending; /* limits */
	uint64_t closed[CR_COUNT];                               /* by enum close_reason */
	uint64_t frames_ike, frames_esp, frames_empty, frames_keepalive, frames_runt;
	uint64_t unroutable; /* IKE/ESP frames matching no session */
	uint64_t to_backend, to_backend_drops;
	uint64_t from_backend, backend_keepalives, sendq_drops, no_conn_drops;
	uint64_t sessions_created, sessions_expired, sessions_refused, path_switches;
	/* TLS (listen-tls, sniff-tls) */
	uint64_t sniffed_tls, sniffed_plain;  /* first byte on sniffing ports */
	uint64_t tls_handshakes, tls_resumed; /* completed; of which resumed a session */
	uint64_t tls_handshakes_failed, tls_handshake_timeouts;
	/* proxy-protocol: connections refused at accept because their source
	 * is not a proxy-protocol-from; headers read, of which LOCAL/UNKNOWN
	 * (the balancer's own connection, e.g. a health check) */
	uint64_t refused_proxy_source, proxy_headers, proxy_local;
	/* budgets and routing against unauthenticated peers (trust model) */
	uint64_t refused_sessions_source, refused_pending_source, pending_evicted;
	uint64_t half_open_evicted, half_open_expired, sessions_evicted;
	uint64_t joins, joins_ambiguous, resumes, replays_ignored;
	uint64_t esp_unroutable, ike_unroutable, accept_paused;
	/* backend -> client: retransmitted backend requests not relayed (R35),
	 * held datagrams dropped because the queue was full, IKE_SA_INIT
	 * answers asking for a cookie (R39) */
	uint64_t retransmits_dropped, held_drops, cookie_requests;
};

/*
 * Checks what server_new() would build from cfg beyond the config parser's
 * checks: the TLS context (certificate, key, cipher lists). For iketcpd -n.
 * Returns 0, or -1 with err set.
 */
int server_check(const struct iketcpd_server_cfg *cfg, char *err, size_t errlen);

struct server;

/* Creates a server for cfg (copied) and opens its listeners.
 * Returns NULL after logging why. */
struct server *server_new(struct loop *l, const struct iketcpd_server_cfg *cfg);

/* Applies a reloaded configuration: limits and timeouts at once, listeners
 * opened/closed by address; the TLS certificate and key are read again (a
 * broken new one keeps the old); established connections are kept, TLS
 * ones with the context they started with. Returns 0/-1. */
int server_reload(struct server *s, const struct iketcpd_server_cfg *cfg);

/* Stops accepting and starts draining: every connection is closed once its
 * queued frames are written (or after a short deadline). */
void server_shutdown(struct server *s);

/* Takes a connected stream socket in as if the first listener had accepted
 * it (for tests and the routing fuzz target). Returns 0, or -1 with fd
 * closed (refused by a limit, counted). */
int server_adopt(struct server *s, int fd, const struct sockaddr *peer, socklen_t len);

/* Checks the server's internal links and counts; returns 0 when they hold,
 * a negative code naming the first that does not. */
int server_selfcheck(const struct server *s);

/* Number of open connections (0 once a shutdown has finished). */
unsigned server_conns(const struct server *s);

/* Levels the stats socket shows beside the counters (server_counters). */
struct server_gauges {
	uint64_t connections, connections_pending, sessions, half_open;
};

/* Every counter of a server: key, place, help, log line (counters.c). */
extern const struct ctr_set server_counters;
/* server_counters' log lines (struct ctr_group index) */
enum { SG_CONNS, SG_SESSIONS, SG_FRAMES, SG_BACKEND, SG_TLS, SG_PROXY, SG_CLOSED, SG_COUNT };

const struct server_stats *server_stats(const struct server *s);
/* Counters as lines "server NAME KEY VALUE" (the stats socket's format). */
void server_print_stats(const struct server *s, FILE *fp);
void server_log_stats(const struct server *s);
/* The gauges' values now. */
struct server_gauges server_gauges(const struct server *s);
/*
 * The status request of the stats socket: a line per session ("server NAME
 * session ID key=value ...": the client, the source address the backend
 * sees, SPIs, age, counters, connection state) and one per connection
 * ("server NAME conn ID key=value ..."); once fp holds more than max_bytes,
 * one "truncated" line ends it.
 */
void server_print_status(const struct server *s, FILE *fp, long max_bytes);
const char *server_name(const struct server *s);

void server_free(struct server *s);

#endif
