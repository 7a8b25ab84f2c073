/*
 * The keyword table of iketcpd's configuration, and the section defaults
 * it gives.
 *
 * One row per key: the sections it is valid in, its type, the field it
 * sets in a server and/or a client section, its default and its range.
 * The parser (config_parse.c) reads a typed value by the row, the
 * defaults below come from the rows, the checks (config_check.c) test
 * every typed field against its row's range, and the dump
 * (config_dump.c) writes the rows in table order. So a new number or
 * yes/no key is one field in config.h and one row here (and its entry in
 * docs/iketcpd.conf.md); only keys with their own syntax name parse and
 * dump functions.
 *
 * The rows are in the order the dump writes them, which is also the order
 * iketcpd -n -v has always printed them in: lookups by name go through the
 * whole table, which is short.
 */
#include <string.h>

#include "config_int.h"
#include "nearest.h"

#define SRV(f) offsetof(struct iketcpd_server_cfg, f)
#define CLI(f) offsetof(struct iketcpd_client_cfg, f)
#define S SECT_SERVER
#define C SECT_CLIENT
#define G SECT_GLOBAL

/* name, sections, server field, client field, then the default and range */
#define DUR(n, sec, so, co, def)                                                                   \
	{                                                                                          \
		n, sec, 0, V_DURATION, so, co, def, DUR_MIN, DUR_MAX, 0, NULL, NULL                \
	}
#define CNT(n, sec, so, co, def, lo, hi)                                                           \
	{                                                                                          \
		n, sec, 0, V_COUNT, so, co, def, lo, hi, 0, NULL, NULL                             \
	}
#define SIZE(n, sec, so, co, def, lo, hi)                                                          \
	{                                                                                          \
		n, sec, 0, V_SIZE, so, co, def, lo, hi, 0, NULL, NULL                              \
	}
#define BOOL(n, sec, so, co, def)                                                                  \
	{                                                                                          \
		n, sec, 0, V_BOOL, so, co, def, 0, 1, 0, NULL, NULL                                \
	}
/* a string of at most size - 1 bytes; without a parse function, a file name */
#define STR(n, sec, so, co, size, parse)                                                           \
	{                                                                                          \
		n, sec, 0, V_STR, so, co, 0, 0, size, 0, parse, NULL                               \
	}
/* own syntax: the parse and dump functions do everything */
#define FN(n, sec, multi, parse, dump)                                                             \
	{                                                                                          \
		n, sec, multi, V_FN, 0, 0, 0, 0, 0, 0, parse, dump                                 \
	}

const struct kw kwtab[] = {
	FN("verbose", G, 0, parse_verbose, dump_verbose),
	FN("stats-socket", G, 0, parse_stats_socket, dump_stats_socket),
	FN("stats-socket-mode", G, 0, parse_stats_socket_mode, dump_stats_socket_mode),
	FN("stats-socket-group", G, 0, parse_stats_socket_group, dump_stats_socket_group),
	FN("metrics-listen", G, 0, parse_metrics_listen, dump_metrics_listen),
	FN("user", G, 0, parse_user, dump_user),
	FN("allow-root", G, 0, parse_allow_root, dump_allow_root),
	FN("group", G, 0, parse_group, dump_group),
	FN("max-memory", G, 0, parse_max_memory, dump_max_memory),
	FN("workers", G, 0, parse_workers, dump_workers),

	FN("listen", S, 1, parse_listen, dump_listen),
	FN("listen-tcp", S, 0, parse_listen_tcp, NULL), /* dumped as listen */
	FN("backend", S, 0, parse_backend, dump_backend),
	DUR("prefix-timeout", S, SRV(prefix_timeout_ms), 0, 5000),
	CNT("max-conns", S, SRV(max_conns), 0, 4096, COUNT_MIN, COUNT_MAX),
	CNT("max-conns-per-source", S, SRV(max_conns_per_source), 0, 64, COUNT_MIN, COUNT_MAX),
	CNT("max-pending", S, SRV(max_pending), 0, 256, COUNT_MIN, COUNT_MAX),
	FN("udp", C, 0, parse_udp, dump_udp),
	FN("peer", C, 0, parse_peer, dump_peer),
	FN("enable-tcp", C, 0, parse_enable_tcp, dump_enable_tcp),
	{"tcp-remoteport", C, 0, V_COUNT, 0, CLI(tcp_remoteport), 0, 1, PORT_MAX, KW_UNSET0, NULL,
	 NULL},
	DUR("fallback-wait", C, 0, CLI(fallback_wait_ms), 2000),
	DUR("fallback-retry", C, 0, CLI(fallback_retry_ms), 600000),
	CNT("max-bad-frames", S | C, SRV(max_bad_frames), CLI(max_bad_frames), 8, COUNT_MIN,
	    COUNT_MAX),
	DUR("session-timeout", S, SRV(session_timeout_ms), 0, 600000),
	DUR("replaced-idle-timeout", S, SRV(replaced_idle_ms), 0, 60000),
	CNT("max-sessions", S, SRV(max_sessions), 0, 8192, COUNT_MIN, COUNT_MAX),
	DUR("connect-timeout", C, 0, CLI(connect_timeout_ms), 5000),
	DUR("reconnect-min", C, 0, CLI(reconnect_min_ms), 100),
	DUR("reconnect-max", C, 0, CLI(reconnect_max_ms), 5000),
	DUR("resolve-interval", C, 0, CLI(resolve_interval_ms), 30000),
	DUR("flow-timeout", C, 0, CLI(flow_timeout_ms), 600000),
	CNT("max-flows", C, 0, CLI(max_flows), 256, COUNT_MIN, COUNT_MAX),
	FN("local-peer", C, 0, parse_local_peer, dump_local_peer),
	SIZE("send-budget", S | C, SRV(send_budget), CLI(send_budget), 262144, BUDGET_MIN,
	     BUDGET_MAX),
	SIZE("ike-reserve", S | C, SRV(ike_reserve), CLI(ike_reserve), 131072, RESERVE_MIN,
	     RESERVE_MAX),
	SIZE("max-frame", S | C, SRV(max_frame), CLI(max_frame), 65535, FRAME_MIN, FRAME_MAX),
	BOOL("tcp-keepalive", S | C, SRV(tcp_keepalive), CLI(tcp_keepalive), 1), /* R49 */
	DUR("tcp-user-timeout", S | C, SRV(tcp_user_timeout_ms), CLI(tcp_user_timeout_ms), 60000),
	CNT("source-prefix4", S, SRV(source_prefix4), 0, 32, 1, 32),
	CNT("source-prefix6", S, SRV(source_prefix6), 0, 64, 1, 128),
	CNT("max-pending-per-source", S, SRV(max_pending_per_source), 0, 16, COUNT_MIN, COUNT_MAX),
	CNT("max-sessions-per-source", S, SRV(max_sessions_per_source), 0, 64, COUNT_MIN,
	    COUNT_MAX),
	CNT("max-half-open", S, SRV(max_half_open), 0, 1024, COUNT_MIN, COUNT_MAX),
	CNT("max-half-open-per-source", S, SRV(max_half_open_per_source), 0, 16, COUNT_MIN,
	    COUNT_MAX),
	DUR("half-open-timeout", S, SRV(half_open_timeout_ms), 0, 30000),
	DUR("frame-timeout", S, SRV(frame_timeout_ms), 0, 10000),
	{"idle-timeout", S, 0, V_DURATION, SRV(idle_timeout_ms), 0, 0, DUR_MIN, DUR_MAX, KW_OFF,
	 NULL, NULL},
	FN("backend-source", S, 0, parse_backend_source, dump_backend_source),
	FN("listen-tls", S, 1, parse_listen_tls, dump_listen_tls),
	STR("tls-cert", S, SRV(tls_cert), 0, IKETCPD_PATH_MAX, NULL),
	STR("tls-key", S, SRV(tls_key), 0, IKETCPD_PATH_MAX, NULL),
	BOOL("tls", C, 0, CLI(use_tls), 0),
	STR("tls-server-name", C, 0, CLI(tls_server_name), IKETCPD_HOST_MAX, parse_tls_server_name),
	STR("tls-ca-file", C, 0, CLI(tls_ca_file), IKETCPD_PATH_MAX, NULL),
	BOOL("tls-verify", C, 0, CLI(tls_verify), 1),
	STR("tls-pin-sha256", C, 0, CLI(tls_pin), IKETCPD_PIN_MAX, parse_tls_pin_sha256),
	FN("tls-min-version", S | C, 0, parse_tls_min_version, dump_tls_min_version),
	STR("tls-ciphers", S | C, SRV(tls.ciphers), CLI(tls.ciphers), IKETCPD_TLS_LIST_MAX,
	    parse_tls_list),
	STR("tls-ciphersuites", S | C, SRV(tls.ciphersuites), CLI(tls.ciphersuites),
	    IKETCPD_TLS_LIST_MAX, parse_tls_list),
	STR("tls-groups", S | C, SRV(tls.groups), CLI(tls.groups), IKETCPD_TLS_LIST_MAX,
	    parse_tls_list),
	BOOL("tls-null-cipher", S | C, SRV(tls.null_cipher), CLI(tls.null_cipher), 0), /* R72 */
	DUR("tls-handshake-timeout", S, SRV(tls_handshake_timeout_ms), 0, 5000),
	FN("sniff-tls", S, 0, parse_sniff_tls, dump_sniff_tls),
	BOOL("proxy-protocol", S, SRV(proxy_protocol), 0, 0),
	FN("proxy-protocol-from", S, 1, parse_proxy_protocol_from, dump_proxy_protocol_from),
	FN("proxy", C, 0, parse_proxy, dump_proxy),
	STR("proxy-auth", C, 0, CLI(proxy_auth), IKETCPD_AUTH_MAX, parse_proxy_auth),
	FN("bypass-policy", C, 0, parse_bypass_policy, dump_bypass_policy),
	FN("mark", C, 0, parse_mark, dump_mark),
};

const size_t kw_count = sizeof(kwtab) / sizeof(kwtab[0]);

_Static_assert(sizeof(kwtab) / sizeof(kwtab[0]) <= KW_MAX, "raise KW_MAX");

const struct kw *
kw_find(const char *name)
{
	for (size_t i = 0; i < kw_count; i++)
		if (strcmp(kwtab[i].name, name) == 0)
			return &kwtab[i];
	return NULL;
}

const struct kw *
kw_nearest(const char *name, unsigned sections)
{
	const char *names[KW_MAX];
	int k;

	/* a key of the section being written first, then any key */
	for (size_t i = 0; i < kw_count; i++)
		names[i] = kwtab[i].sections & sections ? kwtab[i].name : NULL;
	if ((k = nearest_word(name, names, kw_count)) < 0) {
		for (size_t i = 0; i < kw_count; i++)
			names[i] = kwtab[i].name;
		k = nearest_word(name, names, kw_count);
	}
	return k < 0 ? NULL : &kwtab[k];
}

size_t
kw_off(const struct kw *kw, unsigned kind)
{
	if (kind == SECT_SERVER)
		return kw->srv_off;
	if (kind == SECT_CLIENT)
		return kw->cli_off;
	return 0;
}

uint32_t
kw_default(const char *name)
{
	const struct kw *kw = kw_find(name);

	return kw ? kw->def : 0;
}

/* Sets every typed field of a section of kind to its row's default. */
static void
kw_defaults(void *sect, unsigned kind)
{
	for (size_t i = 0; i < kw_count; i++) {
		const struct kw *kw = &kwtab[i];
		size_t off = kw_off(kw, kind);
		int b = (int)kw->def;

		/* strings stay "" from the memset; V_FN fields have their own */
		if (off == 0 || kw->kind == V_STR || kw->kind == V_FN)
			continue;
		if (kw->kind == V_BOOL)
			memcpy((char *)sect + off, &b, sizeof(b));
		else
			memcpy((char *)sect + off, &kw->def, sizeof(kw->def));
	}
}

#undef S
#undef C
#undef G
#undef SRV
#undef CLI
#undef DUR
#undef CNT
#undef SIZE
#undef BOOL
#undef STR
#undef FN

/* ---- defaults ----------------------------------------------------------------------- */

/* Copies a name, truncated to fit, zero-padded (so structs compare with memcmp). */
static void
set_name(char dst[IKETCPD_NAME_MAX], const char *name)
{
	size_t n = name ? strnlen(name, IKETCPD_NAME_MAX - 1) : 0;

	memset(dst, 0, IKETCPD_NAME_MAX);
	if (n)
		memcpy(dst, name, n);
}

void
iketcpd_config_init(struct iketcpd_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->verbose = 0;
	cfg->foreground = 0;
	cfg->stats_path[0] = '\0';
	cfg->stats_mode = -1;
	cfg->workers = 1;
}

unsigned
iketcpd_stats_mode(const struct iketcpd_cfg *cfg)
{
	if (cfg->stats_mode >= 0)
		return (unsigned)cfg->stats_mode;
	/* connect() needs write permission: a group is only useful with rw */
	return cfg->stats_group[0] ? 0660 : 0600;
}

/* The default listen addresses: [::]:4500 and 0.0.0.0:4500. */
static void
default_listen(struct iketcpd_server_cfg *s)
{
	int rc;

	memset(s->listen, 0, sizeof(s->listen));
	rc = iketcpd_parse_addr("[::]:4500", 0, &s->listen[0]);
	rc |= iketcpd_parse_addr("0.0.0.0:4500", 0, &s->listen[1]);
	s->nlisten = rc == 0 ? 2 : 0; /* cannot fail; check() refuses nlisten 0 */
}

void
iketcpd_server_defaults(struct iketcpd_server_cfg *s, const char *name)
{
	memset(s, 0, sizeof(*s));
	set_name(s->name, name);
	kw_defaults(s, SECT_SERVER);
	default_listen(s);
	if (iketcpd_parse_addr("127.0.0.1:4500", 0, &s->backend) < 0)
		memset(&s->backend, 0, sizeof(s->backend)); /* cannot happen */
	s->backend_source_mode = IKETCPD_BSRC_AUTO;
	s->nlisten_tls = 0; /* listen-tls, tls-cert, tls-key, tls lists: none */
	s->tls.min_version = IKETCPD_TLS_V12;
	s->sniff_tls = IKETCPD_SNIFF_AUTO;
}

void
iketcpd_client_defaults(struct iketcpd_client_cfg *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	set_name(c->name, name);
	kw_defaults(c, SECT_CLIENT);
	/* udp and peer have no default: check() requires them */
	c->peer_port = CFG_DEFAULT_PORT;
	c->enable_tcp = IKETCPD_TCP_FALLBACK; /* RFC 9329 §2: UDP first (R3, R13, R64) */
	c->tls.min_version = IKETCPD_TLS_V12;
	c->proxy_port = 0; /* proxy: none */
	c->bypass_policy = IKETCPD_BYPASS_AUTO;
	c->mark = 0; /* mark: none */
	c->mark_mask = 0xffffffffu;
}

int
iketcpd_server_sniff_tls(const struct iketcpd_server_cfg *s)
{
	return s->sniff_tls == 1 || (s->sniff_tls == IKETCPD_SNIFF_AUTO && s->tls_cert[0] != '\0');
}
