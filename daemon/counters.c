/* Counter tables: the stats socket's lines and the log lines from one table. */
#include "counters.h"

#include <string.h>

#include "client.h"
#include "log.h"
#include "server.h"

static size_t
row_lines(const struct ctr_set *set, const struct ctr_row *r)
{
	return r->flags & CTR_REASONS ? set->nreasons : 1;
}

static uint64_t
row_value(const struct ctr_row *r, size_t sub, const void *stats, const void *gauges)
{
	const unsigned char *base = r->flags & CTR_GAUGE ? gauges : stats;
	uint64_t v;

	memcpy(&v, base + r->off + sub * sizeof(uint64_t), sizeof(v));
	return v;
}

static void
row_key(const struct ctr_set *set, const struct ctr_row *r, size_t sub, char *key, size_t keylen)
{
	if (r->flags & CTR_REASONS)
		snprintf(key, keylen, "%s%s", r->key, set->reasons[sub].key);
	else
		snprintf(key, keylen, "%s", r->key);
}

/* The row that line i of the stats socket comes from; *sub: which reason. */
static const struct ctr_row *
locate(const struct ctr_set *set, size_t i, size_t *sub)
{
	for (size_t r = 0; r < set->nrows; r++) {
		size_t n = row_lines(set, &set->rows[r]);
		if (i < n) {
			*sub = i;
			return &set->rows[r];
		}
		i -= n;
	}
	return NULL;
}

size_t
ctr_count(const struct ctr_set *set)
{
	size_t n = 0;
	for (size_t i = 0; i < set->nrows; i++)
		n += row_lines(set, &set->rows[i]);
	return n;
}

const char *
ctr_key(const struct ctr_set *set, size_t i, char *key, size_t keylen)
{
	size_t sub;
	const struct ctr_row *r = locate(set, i, &sub);
	if (r)
		row_key(set, r, sub, key, keylen);
	else if (keylen)
		key[0] = '\0';
	return key;
}

uint64_t
ctr_value(const struct ctr_set *set, size_t i, const void *stats, const void *gauges)
{
	size_t sub;
	const struct ctr_row *r = locate(set, i, &sub);
	return r ? row_value(r, sub, stats, gauges) : 0;
}

void
ctr_print(const struct ctr_set *set, const char *name, const void *stats, const void *gauges,
	  FILE *fp)
{
	char key[96];
	for (size_t i = 0, n = ctr_count(set); i < n; i++)
		fprintf(fp, "%s %s %s %llu\n", set->kind, name, ctr_key(set, i, key, sizeof(key)),
			(unsigned long long)ctr_value(set, i, stats, gauges));
}

void
ctr_prom_label(const char *s, FILE *fp)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', fp);
		if (*s == '\n')
			fputs("\\n", fp);
		else
			fputc(*s, fp);
	}
}

/* HELP text: backslash and newline escaped (no quotes in the format). */
static void
prom_help(const char *s, FILE *fp)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", fp);
		else if (*s == '\n')
			fputs("\\n", fp);
		else
			fputc(*s, fp);
	}
}

/* "iketcpd_KIND_KEY", "_total" added to a counter whose key does not end in
 * it already (refused_total stays one suffix, not two). */
static void
prom_name(const struct ctr_set *set, const char *key, int counter, char *out, size_t len)
{
	size_t k = strlen(key);
	int has = k >= 6 && !strcmp(key + k - 6, "_total");
	snprintf(out, len, "iketcpd_%s_%s%s", set->kind, key, counter && !has ? "_total" : "");
}

void
ctr_prometheus(const struct ctr_set *set, size_t n, const char *const *names,
	       const void *const *stats, const void *const *gauges, FILE *fp)
{
	char metric[160], base[96];

	for (size_t r = 0; r < set->nrows; r++) {
		const struct ctr_row *row = &set->rows[r];
		int counter = !(row->flags & CTR_GAUGE);

		if (row->flags & CTR_REASONS) {
			/* "closed_" -> "closed": the reason goes in a label */
			size_t k = strlen(row->key);
			snprintf(base, sizeof(base), "%.*s",
				 (int)(k && row->key[k - 1] == '_' ? k - 1 : k), row->key);
		} else {
			snprintf(base, sizeof(base), "%s", row->key);
		}
		prom_name(set, base, counter, metric, sizeof(metric));
		fprintf(fp, "# HELP %s ", metric);
		prom_help(row->help, fp);
		fprintf(fp, "\n# TYPE %s %s\n", metric, counter ? "counter" : "gauge");
		for (size_t i = 0; i < n; i++) {
			for (size_t sub = 0; sub < row_lines(set, row); sub++) {
				fprintf(fp, "%s{section=\"", metric);
				ctr_prom_label(names[i], fp);
				fprintf(fp, "\",mode=\"%s\"", set->kind);
				if (row->flags & CTR_REASONS)
					fprintf(fp, ",reason=\"%s\"", set->reasons[sub].key);
				fprintf(fp, "} %llu\n",
					(unsigned long long)row_value(row, sub, stats[i],
								      gauges[i]));
			}
		}
	}
}

/* Long enough for a few dozen items, short enough for log_msg's buffer with
 * the name and title in front: a longer group goes on in a second line. */
#define LOG_ITEMS_MAX 480

void
ctr_log(const struct ctr_set *set, const char *name, const void *stats, const void *gauges,
	unsigned show)
{
	size_t n = ctr_count(set);

	for (size_t g = 0; g < set->ngroups; g++) {
		char line[LOG_ITEMS_MAX + 100], key[96];
		size_t len = 0, sub;
		int any = 0;

		for (size_t i = 0; i < n; i++)
			any |= locate(set, i, &sub)->group == g &&
			       ctr_value(set, i, stats, gauges) != 0;
		if (!any && set->groups[g].quiet && !(g < 32 && (show >> g) & 1))
			continue;
		for (size_t i = 0; i < n; i++) {
			const struct ctr_row *row = locate(set, i, &sub);
			uint64_t v = row_value(row, sub, stats, gauges);
			if (row->group != g || (v == 0 && (row->flags & CTR_NONZERO)))
				continue;
			if (len > LOG_ITEMS_MAX) {
				log_info("%s: %s: %s", name, set->groups[g].title, line);
				len = 0;
			}
			int w = snprintf(line + len, sizeof(line) - len, "%s%s %llu",
					 len ? ", " : "", ctr_key(set, i, key, sizeof(key)),
					 (unsigned long long)v);
			if (w > 0)
				len += (size_t)w < sizeof(line) - len ? (size_t)w
								      : sizeof(line) - len - 1;
		}
		if (len)
			log_info("%s: %s: %s", name, set->groups[g].title, line);
	}
}

int
ctr_check(const struct ctr_set *set)
{
	char a[96], b[96];
	size_t n = ctr_count(set);

	for (size_t r = 0; r < set->nrows; r++)
		if (!set->rows[r].key || set->rows[r].group >= set->ngroups || !set->rows[r].help ||
		    !set->rows[r].help[0])
			return -1;
	for (size_t i = 0; i < set->nreasons; i++)
		if (!set->reasons[i].key || !set->reasons[i].text || !set->reasons[i].help)
			return -1;
	for (size_t i = 0; i < n; i++) {
		if (!ctr_key(set, i, a, sizeof(a))[0])
			return -1 - (int)i;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(a, ctr_key(set, j, b, sizeof(b))))
				return -1 - (int)i;
	}
	return 0;
}

/* ---- server mode ------------------------------------------------------------ */

const struct ctr_reason server_close_reasons[CR_COUNT] = {
	[CR_EOF] = {"eof", "peer closed", "the client closed the connection"},
	[CR_ERROR] = {"read_error", "read error",
		      "reading the connection failed (reset, TLS error)"},
	[CR_PREFIX_TIMEOUT] = {"prefix_timeout", "no prefix/first frame in time",
			       "no prefix and first routable frame within prefix-timeout"},
	[CR_BAD_PREFIX] = {"bad_prefix", "bad prefix",
			   "the stream did not start with IKETCP, or had it again (F4)"},
	[CR_BADLEN] = {"bad_length", "length 0 or 1 (R7)", "a frame of length 0 or 1 (R7)"},
	[CR_TOOBIG] = {"too_big", "frame over max-frame", "a frame longer than max-frame"},
	[CR_BAD_FRAMES] = {"bad_frames", "too many bad frames (R27)",
			   "max-bad-frames unusable frames in a row (R27)"},
	[CR_WRITE] = {"write_error", "write error", "writing to the connection failed"},
	[CR_NOMEM] = {"no_memory", "out of memory", "a buffer could not be allocated"},
	[CR_SHUTDOWN] = {"shutdown", "shutdown", "closed by iketcpd's shutdown"},
	[CR_TLS_HANDSHAKE] = {"tls_handshake", "TLS handshake failed",
			      "the TLS handshake failed (alert, protocol error)"},
	[CR_TLS_TIMEOUT] = {"tls_handshake_timeout", "no TLS handshake in time",
			    "the TLS handshake did not finish within prefix-timeout"},
	[CR_PROXY_HDR] = {"proxy_header", "bad PROXY protocol header",
			  "a missing or bad PROXY protocol header (proxy-protocol)"},
	[CR_PROXY_SOURCE] = {"proxy_source_limit",
			     "max-conns-per-source of the client the PROXY header names",
			     "the client named by the PROXY header has max-conns-per-source"},
	[CR_REPLACED] = {"replaced_idle", "replaced by a newer connection and idle (R34)",
			 "replaced as its session's return path and then idle (R34)"},
	[CR_HEALTH_CHECK] = {"health_check", "the balancer's health check ended",
			     "a load balancer's health check (PROXY LOCAL, no frame) ended"},
	[CR_FRAME_TIMEOUT] = {"frame_timeout", "frame not completed within frame-timeout",
			      "a frame begun and not completed within frame-timeout"},
	[CR_NOT_JOINED] = {"not_joined", "never joined a session (half-open-timeout)",
			   "never became a member of a session within half-open-timeout"},
	[CR_IDLE] = {"idle", "idle (idle-timeout)", "no frame within idle-timeout"},
	[CR_EVICTED] = {"evicted", "evicted to make room (per-source or total budget)",
			"closed to make room under a per-source or total budget"},
	[CR_HALF_OPEN] = {"half_open", "its session stayed half-open (half-open-timeout)",
			  "its session had no exchange past IKE_SA_INIT in half-open-timeout"},
	[CR_COOKIE] = {"cookie_timeout", "no IKE_SA_INIT retry after a cookie request (R39)",
		       "no IKE_SA_INIT retry after the backend asked for a cookie (R39)"},
};

static const struct ctr_group server_groups[SG_COUNT] = {
	[SG_CONNS] = {"connections", 0}, [SG_SESSIONS] = {"sessions", 0},
	[SG_FRAMES] = {"frames", 0},     [SG_BACKEND] = {"from backend", 0},
	[SG_TLS] = {"TLS", 1},           [SG_PROXY] = {"PROXY protocol", 1},
	[SG_CLOSED] = {"closed", 1},
};

/* One row per field of the stats (or gauge) struct, keyed by its name;
 * clang-format would turn these one-line initialisers into blocks. */
/* clang-format off */
#define S(f, g, h) {#f, offsetof(struct server_stats, f), 0, g, h}
#define SGAUGE(f, g, h) {#f, offsetof(struct server_gauges, f), CTR_GAUGE, g, h}
/* clang-format on */

/* In the stats socket's order of old: consumers read keys, but a diff of
 * two dumps should stay readable across versions. */
static const struct ctr_row server_rows[] = {
	SGAUGE(connections, SG_CONNS, "open connections"),
	SGAUGE(connections_pending, SG_CONNS, "open connections not yet in a session"),
	SGAUGE(sessions, SG_SESSIONS, "IKE sessions (each with its UDP socket to the backend)"),
	S(accepted, SG_CONNS, "connections accepted"),
	S(refused_total, SG_CONNS, "connections refused at accept: max-conns"),
	S(refused_source, SG_CONNS, "connections refused at accept: max-conns-per-source"),
	S(refused_pending, SG_CONNS, "connections refused at accept: max-pending"),
	S(frames_ike, SG_FRAMES, "IKE frames from clients"),
	S(frames_esp, SG_FRAMES, "ESP frames from clients"),
	S(frames_empty, SG_FRAMES, "empty frames (length 2) from clients"),
	S(frames_keepalive, SG_FRAMES, "NAT keepalive frames from clients (not relayed, R47)"),
	S(frames_runt, SG_FRAMES, "unusable frames from clients (R27)"),
	S(unroutable, SG_FRAMES, "IKE and ESP frames that matched no session"),
	S(to_backend, SG_FRAMES, "datagrams sent to the backend"),
	S(to_backend_drops, SG_FRAMES, "datagrams to the backend the kernel refused"),
	S(from_backend, SG_BACKEND, "datagrams from the backend"),
	S(backend_keepalives, SG_BACKEND, "NAT keepalives from the backend (not relayed, R47)"),
	S(sendq_drops, SG_BACKEND, "backend datagrams dropped: the connection's queue was full"),
	S(no_conn_drops, SG_BACKEND, "backend datagrams dropped: the session had no connection"),
	S(sessions_created, SG_SESSIONS, "sessions created by an IKE_SA_INIT request"),
	S(sessions_expired, SG_SESSIONS,
	  "sessions removed after session-timeout without a connection"),
	S(sessions_refused, SG_SESSIONS, "sessions refused: max-sessions, none could be evicted"),
	S(path_switches, SG_SESSIONS, "return path moved to another connection (R31-R33)"),
	SGAUGE(half_open, SG_SESSIONS, "sessions with no exchange past IKE_SA_INIT yet"),
	S(refused_sessions_source, SG_SESSIONS,
	  "sessions refused: max-sessions-per-source, none could be evicted"),
	S(refused_pending_source, SG_CONNS,
	  "connections refused: the source's pending connections are at their limit"),
	S(pending_evicted, SG_CONNS, "pending connections closed to make room for a new one"),
	S(half_open_evicted, SG_SESSIONS, "half-open sessions removed to make room"),
	S(half_open_expired, SG_SESSIONS, "half-open sessions removed after half-open-timeout"),
	S(sessions_evicted, SG_SESSIONS, "sessions without a connection removed to make room"),
	S(joins, SG_SESSIONS, "connections that joined a known session by its SPIs"),
	S(joins_ambiguous, SG_SESSIONS, "joins where the SPIs named more than one session"),
	S(resumes, SG_SESSIONS, "connections that resumed a session from its last address"),
	S(replays_ignored, SG_SESSIONS, "backend answers to replayed requests, not taken as proof"),
	S(esp_unroutable, SG_FRAMES, "ESP frames whose SPI matched no session"),
	S(ike_unroutable, SG_FRAMES, "IKE frames whose SPI matched no session"),
	S(accept_paused, SG_CONNS, "times accepting paused: out of file descriptors"),
	S(retransmits_dropped, SG_BACKEND, "retransmitted backend requests not relayed (R35)"),
	S(held_drops, SG_BACKEND, "datagrams held for a connection dropped: the queue was full"),
	S(cookie_requests, SG_BACKEND, "IKE_SA_INIT answers asking for a cookie (R39)"),
	S(sniffed_tls, SG_TLS, "connections on sniff-tls ports that started with TLS"),
	S(sniffed_plain, SG_TLS, "connections on sniff-tls ports that started without TLS"),
	S(tls_handshakes, SG_TLS, "TLS handshakes completed"),
	S(tls_resumed, SG_TLS, "TLS handshakes that resumed a session"),
	S(tls_handshakes_failed, SG_TLS, "TLS handshakes failed"),
	S(tls_handshake_timeouts, SG_TLS, "TLS handshakes not finished within prefix-timeout"),
	S(refused_proxy_source, SG_PROXY,
	  "connections refused at accept: not from a proxy-protocol-from address"),
	S(proxy_headers, SG_PROXY, "PROXY protocol headers read"),
	S(proxy_local, SG_PROXY, "PROXY headers without a client (LOCAL, UNKNOWN: health checks)"),
	{"closed_", offsetof(struct server_stats, closed), CTR_REASONS | CTR_NONZERO, SG_CLOSED,
	 "connections closed, by reason"},
};

const struct ctr_set server_counters = {
	"server",
	server_rows,
	sizeof(server_rows) / sizeof(server_rows[0]),
	server_close_reasons,
	CR_COUNT,
	server_groups,
	SG_COUNT,
};

/* ---- client mode ------------------------------------------------------------ */

const struct ctr_reason client_close_reasons[CCR_COUNT] = {
	[CCR_EOF] = {"eof", "peer closed", "the peer closed the connection"},
	[CCR_READ] = {"read_error", "read error",
		      "reading the connection failed (reset, TLS error)"},
	[CCR_WRITE] = {"write_error", "write error", "writing to the connection failed"},
	[CCR_BAD_PREFIX] = {"bad_prefix", "prefix where a frame should start (F4)",
			    "the peer sent IKETCP where a frame should start (F4)"},
	[CCR_BADLEN] = {"bad_length", "length 0 or 1 (R7)", "a frame of length 0 or 1 (R7)"},
	[CCR_TOOBIG] = {"too_big", "frame over max-frame", "a frame longer than max-frame"},
	[CCR_BAD_FRAMES] = {"bad_frames", "too many bad frames",
			    "max-bad-frames unusable frames in a row (R27)"},
	[CCR_NOMEM] = {"no_memory", "out of memory", "a buffer could not be allocated"},
	[CCR_CONNECT] = {"connect_error", "connect",
			 "the TCP connect failed (refused, unreachable)"},
	[CCR_CONNECT_TIMEOUT] = {"connect_timeout", "connect timeout",
				 "the setup did not finish within connect-timeout"},
	[CCR_RESOLVE] = {"resolve_failed", "cannot resolve the name",
			 "the peer's or the proxy's name could not be looked up"},
	[CCR_TLS_HANDSHAKE] = {"tls_handshake", "TLS handshake failed",
			       "the TLS handshake failed (certificate, pin, alert)"},
	[CCR_TLS_CONTEXT] = {"tls_context", "no TLS context",
			     "tls = yes without a usable TLS context (a failed reload)"},
	[CCR_PROXY] = {"proxy", "proxy", "the HTTP proxy refused or failed the CONNECT"},
	[CCR_IDLE] = {"idle", "idle", "the flow ended after flow-timeout without traffic"},
	[CCR_UNPINNED] = {"not_local_peer", "no longer the local IKE daemon's flow",
			  "the flow's local address is no longer the local IKE daemon's"},
	[CCR_SHUTDOWN] = {"shutdown", "shutdown", "closed by iketcpd's shutdown"},
};

static const struct ctr_group client_groups[CG_COUNT] = {
	[CG_FLOWS] = {"flows", 0},         [CG_TO_PEER] = {"to peer", 0},
	[CG_FROM_PEER] = {"from peer", 0}, [CG_SPI] = {"SPI attribution", 1},
	[CG_TLS] = {"TLS and proxy", 1},   [CG_LOOKUPS] = {"name lookups", 1},
	[CG_CLOSED] = {"closed", 1},
};

/* clang-format off */
#define C(f, g, h) {#f, offsetof(struct client_stats, f), 0, g, h}
#define CGAUGE(f, g, h) {#f, offsetof(struct client_gauges, f), CTR_GAUGE, g, h}
/* clang-format on */

static const struct ctr_row client_rows[] = {
	CGAUGE(flows, CG_FLOWS, "flows (one per IKE SA, R25)"),
	CGAUGE(connections, CG_FLOWS, "TCP connections open or being set up"),
	C(from_local, CG_TO_PEER, "datagrams from the local IKE daemon"),
	C(local_keepalives, CG_TO_PEER, "NAT keepalives from the local daemon (not framed, R47)"),
	C(to_peer_frames, CG_TO_PEER, "frames queued to the peer"),
	C(unroutable, CG_TO_PEER, "local datagrams that matched no flow and could not start one"),
	C(udp_foreign_drops, CG_TO_PEER, "datagrams from a sender other than the local daemon"),
	C(retransmits_dropped, CG_TO_PEER, "local retransmissions already carried (R35)"),
	C(requests_resent, CG_TO_PEER, "pending requests resent on a new connection (R36)"),
	C(sendq_drops, CG_TO_PEER, "frames dropped: the connection's queue was full"),
	C(from_peer_frames, CG_FROM_PEER, "IKE and ESP frames from the peer"),
	C(from_peer_runts, CG_FROM_PEER, "unusable frames from the peer (R27)"),
	C(to_local, CG_FROM_PEER, "datagrams sent to the local daemon"),
	C(to_local_drops, CG_FROM_PEER, "datagrams to the local daemon the kernel refused"),
	C(connects, CG_FLOWS, "TCP connects started (to the peer or the proxy)"),
	C(connect_failures, CG_FLOWS, "connection setups that failed (sum of their closed_ keys)"),
	C(disconnects, CG_FLOWS, "open connections that broke (sum of their closed_ keys)"),
	C(fallbacks_to_tcp, CG_FLOWS, "flows moved from UDP to TCP (enable-tcp fallback)"),
	C(fallback_sticky, CG_FLOWS, "flows started on TCP at once: UDP failed recently"),
	{"closed_", offsetof(struct client_stats, closed), CTR_REASONS | CTR_NONZERO, CG_CLOSED,
	 "connections closed or setups failed, by reason"},
	C(udp_answers, CG_FLOWS, "flows trying UDP that got an answer over UDP"),
	C(flows_created, CG_FLOWS, "flows created"),
	C(flows_expired, CG_FLOWS, "flows ended after flow-timeout"),
	C(tls_handshakes, CG_TLS, "TLS handshakes completed"),
	C(tls_resumed, CG_TLS, "TLS handshakes that resumed a session (R75)"),
	C(tls_failures, CG_TLS, "TLS handshakes refused or timed out"),
	C(proxy_failures, CG_TLS, "CONNECTs the proxy refused or failed"),
	C(resolves, CG_LOOKUPS, "name lookups that gave an address"),
	C(resolve_failures, CG_LOOKUPS, "name lookups that failed"),
	C(spi_attributed, CG_SPI, "new SPIs given to a flow by its exchange (R25, R30)"),
	C(spi_guessed, CG_SPI, "new SPIs given to a flow by a guess"),
	C(spi_moved, CG_SPI, "guessed SPIs moved to another flow by the peer's answer"),
};

const struct ctr_set client_counters = {
	"client",
	client_rows,
	sizeof(client_rows) / sizeof(client_rows[0]),
	client_close_reasons,
	CCR_COUNT,
	client_groups,
	CG_COUNT,
};
