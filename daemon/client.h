/*
 * Client mode: the TCP originator (TO) side of RFC 9329, behind a local
 * UDP-only IKE initiator.
 *
 * The local IKE daemon sends UDP/4500-style datagrams (non-ESP marker + IKE,
 * or ESP) to the client's --udp address. Datagrams are grouped into *flows*,
 * one per IKE SA, found by the IKE initiator SPI (R25: one TCP connection per
 * IKE SA). Each flow has its own TCP connection to --peer, opened with the
 * prefix written together with the first frame (R15, and peers such as
 * libreswan that read the prefix with a single read).
 *
 * enable-tcp: fallback (default) = UDP first, and TCP once the peer stayed
 * silent for fallback-wait or UDP was refused by ICMP (R3, R13, R64, A4);
 * the peer's address is then remembered for fallback-retry, so new flows
 * go to TCP at once. yes = TCP only; no = a plain UDP relay. UDP goes to
 * the peer's port, TCP to tcp-remoteport (default: the same port).
 *
 * Broken connections are reopened with exponential backoff; the new
 * connection starts with the prefix again (R24) and carries the IKE request
 * that is still unanswered (R36). The local daemon's UDP retransmission of a
 * request that the current connection already carried is dropped (R35).
 * NAT keepalives from the local daemon are never framed (R47).
 *
 * Only the local IKE daemon may use the section (local-peer): its address
 * is configured, or (auto) the sender of the first IKE_SA_INIT is pinned.
 * Datagrams from anyone else are dropped and counted before they are
 * looked at, so they cannot create flows or steer replies. Where a flow's
 * replies go follows IKE from the daemon only, never ESP.
 *
 * Several IKE SAs from one local UDP flow (R25, R30): IKE goes by SPI to
 * its own connection. The SPIs that ESP carries are inside encrypted
 * payloads, so a new outbound ESP SPI is attributed from what can be seen:
 * the flow on which an IKE_AUTH or CREATE_CHILD_SA exchange completed and
 * has not yet been matched with a new SPI (the latest), or the flow on
 * which the peer just started sending a new inbound SPI (the local daemon
 * answers it). When more than one flow qualifies, the choice is provisional:
 * the peer answers the first packet of a new SA on the connection that
 * carries that SA, so the next new inbound SPI confirms the guess or moves
 * the SPI to its own flow. See docs/architecture.md for the limits.
 */
#ifndef IKETCPD_CLIENT_H
#define IKETCPD_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "counters.h"
#include "loop.h"

/*
 * Why a flow's TCP connection ended, or its setup failed: counted in
 * client_stats.closed, named in client_close_reasons (counters.c): log
 * text, stats key closed_<key>. Each connection ends once: the sum over
 * CCR_EOF..CCR_NOMEM is disconnects, over CCR_CONNECT..CCR_PROXY is
 * connect_failures; the rest are closes on our side (no reconnect).
 */
enum client_close_reason {
	/* an open connection broke: reconnect */
	CCR_EOF,
	CCR_READ,
	CCR_WRITE,
	CCR_BAD_PREFIX,
	CCR_BADLEN,
	CCR_TOOBIG,
	CCR_BAD_FRAMES,
	CCR_NOMEM,
	/* the setup failed: retry after the backoff */
	CCR_CONNECT,
	CCR_CONNECT_TIMEOUT,
	CCR_RESOLVE,
	CCR_TLS_HANDSHAKE,
	CCR_TLS_CONTEXT,
	CCR_PROXY,
	/* ended on our side: the flow ends too */
	CCR_IDLE,
	CCR_UNPINNED,
	CCR_SHUTDOWN,
	CCR_COUNT
};

extern const struct ctr_reason client_close_reasons[CCR_COUNT];

struct client_stats {
	uint64_t from_local, local_keepalives, to_peer_frames, unroutable;
	uint64_t retransmits_dropped, requests_resent, sendq_drops;
	uint64_t from_peer_frames, from_peer_runts, to_local, to_local_drops;
	uint64_t connects, connect_failures, disconnects, fallbacks_to_tcp, udp_answers;
	uint64_t flows_created, flows_expired;
	/* enable-tcp fallback: flows started on TCP at once because UDP to the
	 * peer's address went unanswered less than fallback-retry ago */
	uint64_t fallback_sticky;
	/* connections closed or failed, by enum client_close_reason (R27:
	 * closed[CCR_BAD_FRAMES] after max-bad-frames runts in a row) */
	uint64_t closed[CCR_COUNT];
	/* datagrams on --udp from a sender other than the local IKE daemon
	 * (local-peer), dropped unread; not in from_local */
	uint64_t udp_foreign_drops;
	/* tls = yes / proxy: completed handshakes (of which resumed, R75),
	 * refused ones (certificate, pin, alert, timeout) and refused or failed
	 * CONNECTs; both failures also count in connect_failures. */
	uint64_t tls_handshakes, tls_resumed, tls_failures, proxy_failures;
	/* lookups of the peer's and the proxy's names (IP literals are not
	 * looked up) that gave an address, and that failed */
	uint64_t resolves, resolve_failures;
	/* R25, R30: new outbound ESP SPIs (and new IKE SPIs after an IKE
	 * rekey) given to a flow by its exchange or the peer's answer (sure),
	 * by a guess (several or no candidates), and guesses that the peer's
	 * first answer on the new SA moved to another flow */
	uint64_t spi_attributed, spi_guessed, spi_moved;
};

struct client;

struct client *client_new(struct loop *l, const struct iketcpd_client_cfg *cfg);
/* For iketcpd -n: builds the TLS context cfg would use. Returns 0 or -1 with err set. */
int client_check(const struct iketcpd_client_cfg *cfg, char *err, size_t errlen);
int client_reload(struct client *c, const struct iketcpd_client_cfg *cfg);
void client_shutdown(struct client *c);
unsigned client_conns(const struct client *c);
/* Levels the stats socket shows beside the counters (client_counters). */
struct client_gauges {
	uint64_t flows, connections;
};

/* Every counter of a client: key, place, help, log line (counters.c). */
extern const struct ctr_set client_counters;
/* client_counters' log lines (struct ctr_group index) */
enum { CG_FLOWS, CG_TO_PEER, CG_FROM_PEER, CG_SPI, CG_TLS, CG_LOOKUPS, CG_CLOSED, CG_COUNT };

const struct client_stats *client_stats(const struct client *c);
/* Counters as lines "client NAME KEY VALUE" (the stats socket's format). */
void client_print_stats(const struct client *c, FILE *fp);
void client_log_stats(const struct client *c);
/* The gauges' values now. */
struct client_gauges client_gauges(const struct client *c);
/* The status request of the stats socket: a line per flow ("client NAME
 * flow ID key=value ...": the local daemon's address, mode, peer, state,
 * SPIs, age, counters); past max_bytes in fp, one "truncated" line ends it. */
void client_print_status(const struct client *c, FILE *fp, long max_bytes);
const char *client_name(const struct client *c);
void client_free(struct client *c);

#endif
