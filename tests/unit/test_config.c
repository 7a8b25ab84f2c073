/*
 * Unit tests for daemon/config_*.c: the iketcpd configuration file and
 * command-line parser, the cross-field checks, the dump, and address
 * parsing.
 *
 * Every rejected input must (1) name where it happened ("t.conf:LINE" or
 * "command line"), (2) quote the rejected value, and (3) leave the caller's
 * configuration exactly as it was (asserted after every failed call: a
 * half-applied reload would run a configuration nobody wrote).
 *
 * Uses cmocka only (not testutil.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SRC "t.conf"

/* Client preamble: the two keys a client must have. */
#define CLIENT_HDR "[client client]\nudp = 127.0.0.1:4501\npeer = 192.0.2.1\n"

/* ---- helpers ----------------------------------------------------------------- */

/* Fails the test, showing both strings, unless needle occurs in hay. */
#define assert_contains(hay, needle)                                                               \
	do {                                                                                       \
		const char *h_ = (hay), *n_ = (needle);                                            \
		if (strstr(h_, n_) == NULL) {                                                      \
			print_error("\"%s\" does not contain \"%s\"\n", h_, n_);                   \
			fail();                                                                    \
		}                                                                                  \
	} while (0)

static struct iketcpd_cfg *
cfg_new(void)
{
	struct iketcpd_cfg *cfg = malloc(sizeof(*cfg));
	assert_non_null(cfg);
	iketcpd_config_init(cfg);
	return cfg;
}

/* Parses text into a fresh cfg; fails the test on an error. Caller frees. */
static struct iketcpd_cfg *
parse_ok(const char *text)
{
	struct iketcpd_cfg *cfg = cfg_new();
	char err[512] = "";

	if (iketcpd_config_parse_buf(cfg, SRC, text, strlen(text), err, sizeof(err)) != 0) {
		print_error("unexpected error: %s\n--- input:\n%s\n", err, text);
		fail();
	}
	return cfg;
}

/*
 * Parses text (len bytes) into a config that already holds the sections of
 * base and expects a failure whose message contains every needle; the
 * config must not change.
 */
static void
expect_err_base(const char *base, const char *text, size_t len, const char *n1, const char *n2,
		const char *n3)
{
	struct iketcpd_cfg *cfg = cfg_new(), *snap = cfg_new();
	char err[512] = "";

	assert_int_equal(
		iketcpd_config_parse_buf(cfg, "base", base, strlen(base), err, sizeof(err)), 0);
	memcpy(snap, cfg, sizeof(*cfg));
	if (iketcpd_config_parse_buf(cfg, SRC, text, len, err, sizeof(err)) == 0) {
		print_error("unexpected success for:\n%s\n", text);
		fail();
	}
	assert_contains(err, n1);
	if (n2)
		assert_contains(err, n2);
	if (n3)
		assert_contains(err, n3);
	assert_memory_equal(cfg, snap, sizeof(*cfg));
	free(cfg);
	free(snap);
}

/* The usual base: one unrelated server named "keep". */
#define BASE_KEEP "[server keep]\nlisten = 192.0.2.9:9\n"

static void
expect_err_n(const char *text, size_t len, const char *n1, const char *n2, const char *n3)
{
	expect_err_base(BASE_KEEP, text, len, n1, n2, n3);
}

static void
expect_err(const char *text, const char *n1, const char *n2, const char *n3)
{
	expect_err_n(text, strlen(text), n1, n2, n3);
}

/* Runs parse_args on copies of a NULL-terminated list; returns its result. */
static int
args(struct iketcpd_cfg *cfg, const char *mode, char *err, size_t errlen, ...)
{
	char *argv[64];
	const char *a;
	int argc = 0, rc;
	va_list ap;

	va_start(ap, errlen);
	while (argc < 63 && (a = va_arg(ap, const char *)) != NULL) {
		argv[argc] = strdup(a);
		assert_non_null(argv[argc]);
		argc++;
	}
	va_end(ap);
	argv[argc] = NULL;
	rc = iketcpd_config_parse_args(cfg, mode, argc, argv, err, errlen);
	while (argc > 0)
		free(argv[--argc]);
	return rc;
}

/* Dumps cfg into a malloc'ed NUL-terminated string. */
static char *
dump_str(const struct iketcpd_cfg *cfg)
{
	FILE *f = tmpfile();
	char *buf;
	long n;

	assert_non_null(f);
	iketcpd_config_dump(cfg, fileno(f));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* dump -> parse must give the same struct, and dumping that the same text. */
static void
assert_roundtrip(const struct iketcpd_cfg *cfg)
{
	char *text = dump_str(cfg), *text2;
	struct iketcpd_cfg *back = parse_ok(text);

	if (memcmp(cfg, back, sizeof(*cfg)) != 0) {
		print_error("round trip changed the configuration; dump:\n%s\n", text);
		fail();
	}
	text2 = dump_str(back);
	assert_string_equal(text, text2);
	free(text);
	free(text2);
	free(back);
}

static void
assert_addr(const struct iketcpd_addr *a, const char *want)
{
	char buf[64];
	assert_string_equal(iketcpd_addr_str(a, buf, sizeof(buf)), want);
}

/* ---- init and defaults ----------------------------------------------------------- */

static void
test_init_is_empty(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = cfg_new();
	char err[256];

	assert_int_equal(cfg->nservers, 0);
	assert_int_equal(cfg->nclients, 0);
	assert_int_equal(cfg->verbose, 0);
	assert_int_equal(cfg->foreground, 0);
	assert_string_equal(cfg->stats_path, "");
	assert_int_equal(iketcpd_config_check(cfg, err, sizeof(err)), -1);
	assert_contains(err, "no [server] or [client NAME] section");
	free(cfg);
}

static void
test_server_defaults(void **state)
{
	(void)state;
	struct iketcpd_server_cfg s;

	memset(&s, 0x5a, sizeof(s));
	iketcpd_server_defaults(&s, "gw");
	assert_string_equal(s.name, "gw");
	assert_int_equal(s.nlisten, 2);
	assert_addr(&s.listen[0], "[::]:4500");
	assert_addr(&s.listen[1], "0.0.0.0:4500");
	assert_addr(&s.backend, "127.0.0.1:4500");
	assert_int_equal(s.prefix_timeout_ms, 5000);
	assert_int_equal(s.max_conns, 4096);
	assert_int_equal(s.max_conns_per_source, 64);
	assert_int_equal(s.max_pending, 256);
	assert_int_equal(s.max_bad_frames, 8);
	assert_int_equal(s.session_timeout_ms, 600000);
	assert_int_equal(s.replaced_idle_ms, 60000);
	assert_int_equal(s.max_sessions, 8192);
	assert_int_equal(s.send_budget, 262144);
	assert_int_equal(s.ike_reserve, 131072);
	assert_int_equal(s.max_frame, 65535);
	assert_int_equal(s.tcp_keepalive, 1);
	assert_int_equal(s.tcp_user_timeout_ms, 60000);
	assert_int_equal(s.source_prefix4, 32);
	assert_int_equal(s.source_prefix6, 64);
	assert_int_equal(s.max_pending_per_source, 16);
	assert_int_equal(s.max_sessions_per_source, 64);
	assert_int_equal(s.max_half_open, 1024);
	assert_int_equal(s.max_half_open_per_source, 16);
	assert_int_equal(s.half_open_timeout_ms, 30000);
	assert_int_equal(s.frame_timeout_ms, 10000);
	assert_int_equal(s.idle_timeout_ms, 0);
	assert_int_equal(s.backend_source_mode, IKETCPD_BSRC_AUTO);
}

static void
test_client_defaults(void **state)
{
	(void)state;
	struct iketcpd_client_cfg c;

	memset(&c, 0x5a, sizeof(c));
	iketcpd_client_defaults(&c, "office");
	assert_string_equal(c.name, "office");
	assert_int_equal(c.udp.ss.ss_family, AF_UNSPEC); /* no default: required */
	assert_string_equal(c.peer_host, "");
	assert_int_equal(c.peer_port, 4500);
	assert_int_equal(c.enable_tcp, IKETCPD_TCP_FALLBACK); /* RFC 9329: UDP first */
	assert_int_equal(c.tcp_remoteport, 0);                /* = the peer's port */
	assert_int_equal(c.fallback_wait_ms, 2000);
	assert_int_equal(c.fallback_retry_ms, 600000);
	assert_int_equal(c.max_bad_frames, 8);
	assert_int_equal(c.connect_timeout_ms, 5000);
	assert_int_equal(c.reconnect_min_ms, 100);
	assert_int_equal(c.reconnect_max_ms, 5000);
	assert_int_equal(c.resolve_interval_ms, 30000);
	assert_int_equal(c.flow_timeout_ms, 600000);
	assert_int_equal(c.max_flows, 256);
	assert_int_equal(c.send_budget, 262144);
	assert_int_equal(c.ike_reserve, 131072);
	assert_int_equal(c.max_frame, 65535);
	assert_int_equal(c.tcp_keepalive, 1);
	assert_int_equal(c.tcp_user_timeout_ms, 60000);
}

static void
test_defaults_truncate_name(void **state)
{
	(void)state;
	struct iketcpd_server_cfg s;
	struct iketcpd_client_cfg c;
	const char *longname = "0123456789012345678901234567890123456789";

	iketcpd_server_defaults(&s, longname);
	assert_int_equal(strlen(s.name), IKETCPD_NAME_MAX - 1);
	assert_memory_equal(s.name, longname, IKETCPD_NAME_MAX - 1);
	iketcpd_client_defaults(&c, NULL);
	assert_string_equal(c.name, "");
}

/* A bare [server] is the defaults; the file equals iketcpd_server_defaults(). */
static void
test_minimal_server_is_defaults(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = parse_ok("[server]\n");
	struct iketcpd_server_cfg want;

	iketcpd_server_defaults(&want, "server");
	assert_int_equal(cfg->nservers, 1);
	assert_int_equal(cfg->nclients, 0);
	assert_memory_equal(&cfg->servers[0], &want, sizeof(want));
	free(cfg);
}

static void
test_minimal_client(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg =
		parse_ok("[client c1]\nudp = 127.0.0.1:4501\npeer = gw.example\n");
	struct iketcpd_client_cfg *c = &cfg->clients[0];

	assert_int_equal(cfg->nclients, 1);
	assert_string_equal(c->name, "c1");
	assert_addr(&c->udp, "127.0.0.1:4501");
	assert_string_equal(c->peer_host, "gw.example");
	assert_int_equal(c->peer_port, 4500);
	assert_int_equal(c->enable_tcp, IKETCPD_TCP_FALLBACK);
	assert_int_equal(c->max_flows, 256);
	free(cfg);
}

/* ---- syntax: comments, blanks, sections, globals ---------------------------------- */

static void
test_comments_and_blanks(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg =
		parse_ok("# a comment\n"
			 "\n"
			 "   \t \n"
			 "  # indented comment = with equals\n"
			 "stats-socket = /run/a#b   # '#' after a blank: comment\n"
			 "[server]   # header comment\n"
			 "\tbackend\t=\t10.0.0.1:500\t# tabs\r\n"
			 "#max-pending = 99999999\n");

	/* "/run/a#b" keeps its '#', the comment after the blank is gone */
	assert_string_equal(cfg->stats_path, "/run/a#b");
	assert_addr(&cfg->servers[0].backend, "10.0.0.1:500");
	assert_int_equal(cfg->servers[0].max_pending, 256);
	free(cfg);

	/* ...so "10# no" is not a number */
	expect_err("[server]\nmax-conns=10# x\n", SRC ":2:", "\"10# x\"", "not a number");
	/* a value cannot start with '#' (it would read back as a comment) */
	expect_err("stats-socket =#x\n[server]\n", SRC ":1:", "\"#x\"", "comment");
}

static void
test_crlf_and_no_final_newline(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = parse_ok("verbose = 1\r\n[server]\r\nmax-conns = 300");

	assert_int_equal(cfg->verbose, 1);
	assert_int_equal(cfg->servers[0].max_conns, 300);
	free(cfg);
}

static void
test_sections(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = parse_ok("[server]\n"
					   "listen = 192.0.2.1:4500\n"
					   "[ server   edge-2 ]\n"
					   "listen = 192.0.2.2:4500\n"
					   "[server]\n"
					   "listen = 192.0.2.3:4500\n"
					   "[client a.b_c-d]\n" /* all the name characters */
					   "udp = 127.0.0.1:1\n"
					   "peer = x.example\n"
					   "[client Z9]\n"
					   "udp = 127.0.0.1:2\n"
					   "peer = y.example\n");

	assert_int_equal(cfg->nservers, 3);
	assert_string_equal(cfg->servers[0].name, "server");
	assert_string_equal(cfg->servers[1].name, "edge-2");
	assert_string_equal(cfg->servers[2].name, "server3"); /* "serverN": N = its position */
	assert_int_equal(cfg->nclients, 2);
	assert_string_equal(cfg->clients[0].name, "a.b_c-d");
	assert_string_equal(cfg->clients[1].name, "Z9");
	assert_int_equal(cfg->servers[1].nlisten, 1);
	assert_addr(&cfg->servers[1].listen[0], "192.0.2.2:4500");
	free(cfg);
}

static void
test_section_header_errors(void **state)
{
	(void)state;
	expect_err("[client]\n", SRC ":1:", "needs a name", "\"[client]\"");
	expect_err("[client  ]\n", SRC ":1:", "needs a name", NULL);
	expect_err("[serv]\n", SRC ":1:", "unknown section", "\"[serv]\"");
	expect_err("[Server]\n", SRC ":1:", "unknown section", NULL);
	expect_err("[]\n", SRC ":1:", "unknown section", "\"[]\"");
	expect_err("\n[server\n", SRC ":2:", "bad section header", "\"[server\"");
	expect_err("[server] x\n", SRC ":1:", "bad section header", "\"[server] x\"");
	expect_err("[client a b]\n", SRC ":1:", "bad section name", "\"[client a b]\"");
	expect_err("[client a/b]\n", SRC ":1:", "bad section name", NULL);
	expect_err("[client a]]\n", SRC ":1:", "bad section name", NULL);
	expect_err("[server 0123456789012345678901234567890x]\n", SRC ":1:", "too long",
		   "0123456789");
	/* names are unique over servers and clients, and across calls ("keep") */
	expect_err("[server a]\nlisten=192.0.2.1:1\n[client a]\n", SRC ":3:", "already used",
		   "\"[client a]\"");
	expect_err("[server keep]\n", SRC ":1:", "already used", NULL);
	/* a default name that is taken ("keep" is server 1, so this is "server3") */
	expect_err("[server server3]\nlisten=192.0.2.1:1\n[server]\n", SRC ":3:", "already used",
		   "\"[server]\"");
}

static void
test_name_max_len_ok(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = parse_ok("[client 0123456789012345678901234567890]\n"
					   "udp = 127.0.0.1:1\npeer = x.example\n");
	assert_string_equal(cfg->clients[0].name, "0123456789012345678901234567890");
	assert_roundtrip(cfg);
	free(cfg);
}

static void
test_globals(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = parse_ok("verbose = 3\nstats-socket = /run/iketcpd.stats\n"
					   "[server]\n");
	assert_int_equal(cfg->verbose, 3);
	assert_string_equal(cfg->stats_path, "/run/iketcpd.stats");
	free(cfg);

	cfg = parse_ok("verbose = 0\n[server]\n");
	assert_int_equal(cfg->verbose, 0);
	free(cfg);

	expect_err("verbose = 4\n[server]\n", SRC ":1:", "verbose", "\"4\"");
	expect_err("verbose = -1\n[server]\n", SRC ":1:", "\"-1\"", "not a number");
	expect_err("verbose = yes\n[server]\n", SRC ":1:", "\"yes\"", NULL);
	expect_err("stats-socket = run/x\n[server]\n", SRC ":1:", "\"run/x\"", "absolute");
	expect_err("[server]\nverbose = 1\n", SRC ":2:", "\"verbose\"", "before the first section");
	expect_err("[client c]\nstats-socket = /x\n", SRC ":2:", "\"stats-socket\"", "global");
	expect_err("verbose = 1\nverbose = 2\n[server]\n", SRC ":2:", "\"2\"", "line 1");
}

/* max-memory: a global size with k/m/g suffixes, 1m..1024g; unset is 0
 * (main() then takes a quarter of the physical memory). */
/* workers: auto (0) or 1..IKETCPD_WORKERS_MAX; unset is 1 (one process). */
static void
test_workers(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = parse_ok("[server]\n");
	assert_int_equal(cfg->workers, 1);
	free(cfg);
	cfg = parse_ok("workers = auto\n[server]\n");
	assert_int_equal(cfg->workers, 0);
	assert_roundtrip(cfg);
	free(cfg);
	cfg = parse_ok("workers = 4\n[server]\n");
	assert_int_equal(cfg->workers, 4);
	assert_roundtrip(cfg);
	free(cfg);
	cfg = parse_ok("workers = 256\n[server]\n");
	assert_int_equal(cfg->workers, 256);
	free(cfg);
	expect_err("workers = 0\n[server]\n", SRC ":1:", "\"0\"", "out of range");
	expect_err("workers = 257\n[server]\n", SRC ":1:", "\"257\"", "out of range");
	expect_err("workers = all\n[server]\n", SRC ":1:", "\"all\"", "not a number");
	expect_err("[server]\nworkers = 2\n", SRC ":2:", "\"workers\"", "before the first section");
}

static void
test_max_memory(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		uint64_t bytes;
	} ok[] = {
		{"1m", 1u << 20},      {"512M", 512ull << 20}, {"3g", 3ull << 30},
		{"1024g", 1ull << 40}, {"1048576", 1u << 20},  {"4096k", 4u << 20},
	};
	char text[100];

	struct iketcpd_cfg *cfg = parse_ok("[server]\n");
	assert_int_equal(cfg->max_memory, 0);
	free(cfg);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(text, sizeof(text), "max-memory = %s\n[server]\n", ok[i].text);
		cfg = parse_ok(text);
		assert_int_equal(cfg->max_memory, ok[i].bytes);
		assert_roundtrip(cfg);
		free(cfg);
	}
	expect_err("max-memory = 1023k\n[server]\n", SRC ":1:", "\"1023k\"", "out of range");
	expect_err("max-memory = 1025g\n[server]\n", SRC ":1:", "\"1025g\"", "out of range");
	expect_err("max-memory = 99999999999999g\n[server]\n", SRC ":1:", NULL, "out of range");
	expect_err("max-memory = 2t\n[server]\n", SRC ":1:", "\"2t\"", "not a size");
	expect_err("max-memory = lots\n[server]\n", SRC ":1:", "\"lots\"", "not a size");
	expect_err("[server]\nmax-memory = 1g\n", SRC ":2:", "\"max-memory\"",
		   "before the first section");
}

static void
test_stats_socket_length(void **state)
{
	(void)state;
	char path[200], text[300];
	struct iketcpd_cfg *cfg;

	/* 107 bytes fit in sun_path with the NUL, 108 do not */
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[107] = '\0';
	snprintf(text, sizeof(text), "stats-socket = %s\n[server]\n", path);
	cfg = parse_ok(text);
	assert_string_equal(cfg->stats_path, path);
	assert_roundtrip(cfg);
	free(cfg);

	path[107] = 'p';
	path[108] = '\0';
	snprintf(text, sizeof(text), "stats-socket = %s\n[server]\n", path);
	expect_err(text, SRC ":1:", "too long", "\"/pppp");
}

static struct iketcpd_cfg *good_cfg(void);
static void expect_check_err(struct iketcpd_cfg *cfg, const char *n1, const char *n2);

/* stats-socket none, stats-socket-mode (octal, default by group),
 * stats-socket-group, metrics-listen: parsed, dumped and read back. */
static void
test_stats_access_metrics_listen(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = parse_ok("[server]\n");
	char buf[64];

	assert_int_equal(cfg->stats_off, 0);
	assert_int_equal(cfg->stats_mode, -1);
	assert_int_equal(iketcpd_stats_mode(cfg), 0600);
	assert_int_equal(cfg->metrics_listen.len, 0);
	free(cfg);

	cfg = parse_ok("stats-socket = none\nstats-socket-group = ikemon\n"
		       "metrics-listen = [::1]:9100\n[server]\n");
	assert_int_equal(cfg->stats_off, 1);
	assert_string_equal(cfg->stats_path, "");
	assert_int_equal(iketcpd_stats_mode(cfg), 0660); /* a group needs rw */
	assert_string_equal(iketcpd_addr_str(&cfg->metrics_listen, buf, sizeof(buf)), "[::1]:9100");
	assert_roundtrip(cfg);
	free(cfg);

	cfg = parse_ok("stats-socket-mode = 640\nstats-socket-group = 4242\n"
		       "metrics-listen = 127.0.0.1\n[server]\n");
	assert_int_equal(iketcpd_stats_mode(cfg), 0640);
	assert_string_equal(iketcpd_addr_str(&cfg->metrics_listen, buf, sizeof(buf)),
			    "127.0.0.1:9575");
	assert_roundtrip(cfg);
	free(cfg);

	cfg = parse_ok("metrics-listen = none\n[server]\n");
	assert_int_equal(cfg->metrics_listen.len, 0);
	free(cfg);

	expect_err("stats-socket-mode = 0800\n[server]\n", SRC ":1:", "\"0800\"", "octal");
	expect_err("stats-socket-mode = 1777\n[server]\n", SRC ":1:", "\"1777\"", "0777");
	expect_err("stats-socket-mode = 00000\n[server]\n", SRC ":1:", "\"00000\"", "octal");
	expect_err("stats-socket-mode = rw\n[server]\n", SRC ":1:", "\"rw\"", "octal");
	expect_err("stats-socket-group = a:b\n[server]\n", SRC ":1:", "\"a:b\"", "not a name");
	expect_err("metrics-listen = localhost:9575\n[server]\n", SRC ":1:", "\"localhost",
		   "not an address");
	expect_err("metrics-listen = 127.0.0.1:0\n[server]\n", SRC ":1:", "127.0.0.1:0",
		   "not an address");
	expect_err("[server]\nmetrics-listen = 127.0.0.1:1\n", SRC ":2:", "\"metrics-listen\"",
		   "before the first section");
}

/* user and group: global keys and flags, names or numbers, dumped and read back. */
static void
test_user_group(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = parse_ok("user = iketcpd\ngroup = ike-gw.2\n[server]\n");
	char err[512] = "";

	assert_string_equal(cfg->user, "iketcpd");
	assert_string_equal(cfg->group, "ike-gw.2");
	assert_roundtrip(cfg);
	free(cfg);

	cfg = parse_ok("user = 4242\n[server]\n");
	assert_string_equal(cfg->user, "4242");
	assert_string_equal(cfg->group, "");
	assert_roundtrip(cfg);
	free(cfg);

	/* 32 bytes fit, 33 do not */
	cfg = parse_ok("user = abcdefghijklmnopqrstuvwxyz012345\n[server]\n");
	assert_int_equal(strlen(cfg->user), 32);
	free(cfg);
	expect_err("user = abcdefghijklmnopqrstuvwxyz0123456\n[server]\n", SRC ":1:", "\"abcdef",
		   "too long");

	expect_err("user = -n\n[server]\n", SRC ":1:", "\"-n\"", "not a name or number");
	expect_err("user = ../x\n[server]\n", SRC ":1:", "\"../x\"", "not a name or number");
	expect_err("user = a b\n[server]\n", SRC ":1:", "\"a b\"", "not a name");
	expect_err("group = x:y\n[server]\n", SRC ":1:", "\"x:y\"", "not a name");
	expect_err("[server]\nuser = nobody\n", SRC ":2:", "\"user\"", "before the first section");
	expect_err("user = a\nuser = b\n[server]\n", SRC ":2:", "\"b\"", "line 1");
	/* group alone would leave uid 0 with every privilege */
	expect_err("group = nogroup\n[server]\n", "group nogroup without user", NULL, NULL);

	/* on the command line, in either mode */
	cfg = cfg_new();
	assert_int_equal(
		args(cfg, "server", err, sizeof(err), "--user", "nobody", "--group=nogroup", NULL),
		0);
	assert_string_equal(cfg->user, "nobody");
	assert_string_equal(cfg->group, "nogroup");
	free(cfg);
	cfg = cfg_new();
	assert_int_equal(args(cfg, "client", err, sizeof(err), "--udp", "127.0.0.1:1", "--peer",
			      "gw.example", "--user", "65534", NULL),
			 0);
	assert_string_equal(cfg->user, "65534");
	free(cfg);
	cfg = cfg_new();
	assert_int_equal(args(cfg, "server", err, sizeof(err), "--user", "", NULL), -1);
	assert_contains(err, "--user");
	assert_string_equal(cfg->user, "");
	free(cfg);

	cfg = good_cfg();
	strcpy(cfg->group, "g");
	expect_check_err(cfg, "group g without user", NULL);
	cfg = good_cfg();
	strcpy(cfg->user, "a/b");
	expect_check_err(cfg, "bad user or group", NULL);
}

/* ---- numeric keys: every key, valid values and boundaries ------------------------- */

struct numcase {
	int client;
	const char *key;
	const char *val;
	size_t off; /* of the uint32_t field in the section struct */
	uint32_t want;
	const char *extra; /* lines set first (to satisfy cross-checks), or NULL */
};

#define SV(k, f, v, w)                                                                             \
	{                                                                                          \
		0, k, v, offsetof(struct iketcpd_server_cfg, f), w, NULL                           \
	}
#define SVX(k, f, v, w, x)                                                                         \
	{                                                                                          \
		0, k, v, offsetof(struct iketcpd_server_cfg, f), w, x                              \
	}
#define CV(k, f, v, w)                                                                             \
	{                                                                                          \
		1, k, v, offsetof(struct iketcpd_client_cfg, f), w, NULL                           \
	}
#define CVX(k, f, v, w, x)                                                                         \
	{                                                                                          \
		1, k, v, offsetof(struct iketcpd_client_cfg, f), w, x                              \
	}

static const struct numcase good[] = {
	/* durations: ms, s, m, h, bare seconds, 1ms..24h */
	SV("prefix-timeout", prefix_timeout_ms, "500ms", 500),
	SV("prefix-timeout", prefix_timeout_ms, "5s", 5000),
	SV("prefix-timeout", prefix_timeout_ms, "2m", 120000),
	SV("prefix-timeout", prefix_timeout_ms, "1h", 3600000),
	SV("prefix-timeout", prefix_timeout_ms, "7", 7000),
	SV("prefix-timeout", prefix_timeout_ms, "1ms", 1),
	SV("prefix-timeout", prefix_timeout_ms, "24h", 86400000),
	SV("prefix-timeout", prefix_timeout_ms, "86400s", 86400000),
	SV("prefix-timeout", prefix_timeout_ms, "1440m", 86400000),
	SV("prefix-timeout", prefix_timeout_ms, "86400000ms", 86400000),
	SV("prefix-timeout", prefix_timeout_ms, "0007s", 7000),
	SV("session-timeout", session_timeout_ms, "30m", 1800000),
	SV("session-timeout", session_timeout_ms, "1ms", 1),
	SV("replaced-idle-timeout", replaced_idle_ms, "90s", 90000),
	CV("fallback-wait", fallback_wait_ms, "750ms", 750),
	CV("fallback-retry", fallback_retry_ms, "30m", 1800000),
	CV("fallback-retry", fallback_retry_ms, "1ms", 1),
	CV("tcp-remoteport", tcp_remoteport, "443", 443),
	CV("tcp-remoteport", tcp_remoteport, "65535", 65535),
	CV("max-bad-frames", max_bad_frames, "1", 1),
	CV("max-bad-frames", max_bad_frames, "1000000", 1000000),
	CV("connect-timeout", connect_timeout_ms, "10s", 10000),
	CV("reconnect-min", reconnect_min_ms, "1ms", 1),
	CV("reconnect-min", reconnect_min_ms, "5s", 5000),
	CVX("reconnect-min", reconnect_min_ms, "24h", 86400000, "reconnect-max = 24h\n"),
	CV("reconnect-max", reconnect_max_ms, "24h", 86400000),
	CV("reconnect-max", reconnect_max_ms, "100ms", 100),
	CVX("reconnect-max", reconnect_max_ms, "1ms", 1, "reconnect-min = 1ms\n"),
	CV("flow-timeout", flow_timeout_ms, "1h", 3600000),
	CV("resolve-interval", resolve_interval_ms, "1ms", 1),
	CV("resolve-interval", resolve_interval_ms, "5m", 300000),
	/* counts 1..1000000 */
	SVX("max-conns", max_conns, "1", 1, "max-pending = 1\nmax-conns-per-source = 1\n"),
	SV("max-conns", max_conns, "1000000", 1000000),
	SV("max-conns-per-source", max_conns_per_source, "1", 1),
	SVX("max-conns-per-source", max_conns_per_source, "1000000", 1000000,
	    "max-conns = 1000000\n"),
	SV("max-pending", max_pending, "1", 1),
	SVX("max-pending", max_pending, "1000000", 1000000, "max-conns = 1000000\n"),
	SV("max-bad-frames", max_bad_frames, "1", 1),
	SV("max-bad-frames", max_bad_frames, "1000000", 1000000),
	SV("max-sessions", max_sessions, "1", 1),
	SV("max-sessions", max_sessions, "1000000", 1000000),
	CV("max-flows", max_flows, "1", 1),
	CV("max-flows", max_flows, "1000000", 1000000),
	/* sizes: bytes, k/K, m/M */
	SV("send-budget", send_budget, "4096", 4096),
	SV("send-budget", send_budget, "4k", 4096),
	SV("send-budget", send_budget, "100000", 100000),
	SV("send-budget", send_budget, "64M", 67108864),
	SV("send-budget", send_budget, "64m", 67108864),
	SV("send-budget", send_budget, "65536k", 67108864),
	CV("send-budget", send_budget, "1M", 1048576),
	SV("ike-reserve", ike_reserve, "65535", 65535),
	SV("ike-reserve", ike_reserve, "64K", 65536),
	SV("ike-reserve", ike_reserve, "64m", 67108864),
	CV("ike-reserve", ike_reserve, "1m", 1048576),
	SV("max-frame", max_frame, "64", 64),
	SV("max-frame", max_frame, "65535", 65535),
	SV("max-frame", max_frame, "1k", 1024),
	CV("max-frame", max_frame, "1500", 1500),
};

/* Builds the file text for a case: section, optional extra lines, the key. */
static void
case_text(const struct numcase *t, const char *val, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s = %s\n", t->client ? CLIENT_HDR : "[server]\n",
		 t->extra ? t->extra : "", t->key, val);
}

/* The line of the case's key in case_text(). */
static int
case_line(const struct numcase *t)
{
	int n = t->client ? 4 : 2;

	for (const char *x = t->extra; x && *x; x++)
		n += *x == '\n';
	return n;
}

static uint32_t
case_field(const struct iketcpd_cfg *cfg, const struct numcase *t)
{
	const char *sect =
		t->client ? (const char *)&cfg->clients[0] : (const char *)&cfg->servers[0];
	uint32_t v;

	memcpy(&v, sect + t->off, sizeof(v));
	return v;
}

static void
test_numeric_keys_valid(void **state)
{
	(void)state;
	char text[512];

	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		const struct numcase *t = &good[i];
		struct iketcpd_cfg *cfg;

		case_text(t, t->val, text, sizeof(text));
		cfg = parse_ok(text);
		if (case_field(cfg, t) != t->want) {
			print_error("%s = %s: got %u, want %u\n", t->key, t->val,
				    case_field(cfg, t), t->want);
			fail();
		}
		assert_roundtrip(cfg);
		free(cfg);
	}
}

struct badcase {
	int client;
	const char *key;
	const char *val;
	const char *why;
};

static const struct badcase bad[] = {
	/* durations */
	{0, "prefix-timeout", "0", "out of range (1ms..24h)"},
	{0, "prefix-timeout", "0ms", "out of range"},
	{0, "prefix-timeout", "0h", "out of range"},
	{0, "prefix-timeout", "25h", "out of range"},
	{0, "prefix-timeout", "86400001ms", "out of range"},
	{0, "prefix-timeout", "86401", "out of range"},
	{0, "prefix-timeout", "99999999999999999999999999h", "out of range"},
	{0, "prefix-timeout", "1.5s", "not a duration"},
	{0, "prefix-timeout", "5 s", "not a duration"},
	{0, "prefix-timeout", "5S", "not a duration"},
	{0, "prefix-timeout", "5sec", "not a duration"},
	{0, "prefix-timeout", "5us", "not a duration"},
	{0, "prefix-timeout", "-1", "not a duration"},
	{0, "prefix-timeout", "+1", "not a duration"},
	{0, "prefix-timeout", "s", "not a duration"},
	{0, "prefix-timeout", "1d", "not a duration"},
	{0, "session-timeout", "0s", "out of range"},
	{0, "replaced-idle-timeout", "0", "out of range"},
	{0, "replaced-idle-timeout", "1x", "not a duration"},
	{0, "session-timeout", "abc", "not a duration"},
	{1, "fallback-wait", "2 m", "not a duration"},
	{1, "fallback-wait", "0", "out of range"},
	{1, "fallback-retry", "25h", "out of range"},
	{1, "tcp-remoteport", "0", "out of range (1..65535)"},
	{1, "tcp-remoteport", "65536", "out of range (1..65535)"},
	{1, "max-bad-frames", "0", "out of range"},
	{1, "connect-timeout", "1e3", "not a duration"},
	{1, "connect-timeout", "25h", "out of range"},
	{1, "reconnect-min", "0ms", "out of range"},
	{1, "reconnect-min", "ms", "not a duration"},
	{1, "reconnect-max", "1441m", "out of range"},
	{1, "reconnect-max", "0x10", "not a duration"},
	{1, "flow-timeout", "-5m", "not a duration"},
	{1, "flow-timeout", "0m", "out of range"},
	{1, "resolve-interval", "0s", "out of range"},
	/* counts */
	{0, "max-conns", "0", "out of range (1..1000000)"},
	{0, "max-conns", "1000001", "out of range"},
	{0, "max-conns", "18446744073709551617", "out of range"},
	{0, "max-conns", "-1", "not a number"},
	{0, "max-conns", "+1", "not a number"},
	{0, "max-conns", "0x10", "not a number"},
	{0, "max-conns", "1e3", "not a number"},
	{0, "max-conns", "12abc", "not a number"},
	{0, "max-conns", "1 000", "not a number"},
	{0, "max-conns", "1k", "not a number"},
	{0, "max-conns-per-source", "0", "out of range"},
	{0, "max-conns-per-source", "x", "not a number"},
	{0, "max-pending", "0", "out of range"},
	{0, "max-pending", "2000000", "out of range"},
	{0, "max-bad-frames", "0", "out of range"},
	{0, "max-bad-frames", "eight", "not a number"},
	{0, "max-sessions", "0", "out of range"},
	{0, "max-sessions", "1000000000000", "out of range"},
	{1, "max-flows", "0", "out of range"},
	{1, "max-flows", "256.0", "not a number"},
	/* sizes */
	{0, "send-budget", "4095", "out of range (4k..64m)"},
	{0, "send-budget", "3k", "out of range"},
	{0, "send-budget", "65M", "out of range"},
	{0, "send-budget", "67108865", "out of range"},
	{0, "send-budget", "99999999999999999999M", "out of range"},
	{0, "send-budget", "1G", "not a size"},
	{0, "send-budget", "4kb", "not a size"},
	{0, "send-budget", "4 k", "not a size"},
	{0, "send-budget", "-4096", "not a size"},
	{0, "send-budget", "k", "not a size"},
	{1, "send-budget", "0", "out of range"},
	{0, "ike-reserve", "65534", "out of range (65535..64m)"},
	{0, "ike-reserve", "63k", "out of range"},
	{0, "ike-reserve", "65m", "out of range"},
	{1, "ike-reserve", "1.5m", "not a size"},
	{0, "max-frame", "63", "out of range (64..65535)"},
	{0, "max-frame", "64k", "out of range"},
	{0, "max-frame", "65536", "out of range"},
	{1, "max-frame", "0", "out of range"},
	{1, "max-frame", "1500B", "not a size"},
	/* booleans and enums */
	{0, "tcp-keepalive", "1", "not yes/no"},
	{0, "tcp-keepalive", "y", "not yes/no"},
	{1, "tcp-keepalive", "enable", "not yes/no"},
	{1, "enable-tcp", "maybe", "not yes, no or fallback"},
	{1, "enable-tcp", "tcp", "not yes, no or fallback"},
	{1, "enable-tcp", "fallback2", "not yes, no or fallback"},
};

static void
test_value_keys_invalid(void **state)
{
	(void)state;
	char text[512], line[32], quoted[128], key[320];

	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		const struct badcase *t = &bad[i];
		struct numcase nc = {t->client, t->key, t->val, 0, 0, NULL};

		case_text(&nc, t->val, text, sizeof(text));
		snprintf(line, sizeof(line), SRC ":%d: ", case_line(&nc));
		snprintf(quoted, sizeof(quoted), "\"%s\"", t->val);
		snprintf(key, sizeof(key), "%s: %s is %s", t->key, quoted, t->why);
		expect_err(text, line, quoted, key);
	}
}

static void
test_bool_keys(void **state)
{
	(void)state;
	static const struct {
		const char *val;
		int want;
	} v[] = {{"yes", 1}, {"no", 0},  {"true", 1}, {"false", 0}, {"on", 1},
		 {"off", 0}, {"YES", 1}, {"Off", 0},  {"True", 1}};
	char text[256];

	for (size_t i = 0; i < ARRAY_LEN(v); i++) {
		struct iketcpd_cfg *cfg;

		snprintf(text, sizeof(text),
			 "[server]\ntcp-keepalive = %s\n" CLIENT_HDR "tcp-keepalive = %s\n",
			 v[i].val, v[i].val);
		cfg = parse_ok(text);
		assert_int_equal(cfg->servers[0].tcp_keepalive, v[i].want);
		assert_int_equal(cfg->clients[0].tcp_keepalive, v[i].want);
		assert_roundtrip(cfg);
		free(cfg);
	}
}

static void
test_enable_tcp(void **state)
{
	(void)state;
	static const struct {
		const char *val;
		enum iketcpd_enable_tcp want;
	} v[] = {{"yes", IKETCPD_TCP_YES},           {"no", IKETCPD_TCP_NO},
		 {"fallback", IKETCPD_TCP_FALLBACK}, {"Fallback", IKETCPD_TCP_FALLBACK},
		 {"true", IKETCPD_TCP_YES},          {"off", IKETCPD_TCP_NO}};
	char text[256];

	for (size_t i = 0; i < ARRAY_LEN(v); i++) {
		struct iketcpd_cfg *cfg;

		snprintf(text, sizeof(text), CLIENT_HDR "enable-tcp = %s\n", v[i].val);
		cfg = parse_ok(text);
		assert_int_equal(cfg->clients[0].enable_tcp, v[i].want);
		assert_roundtrip(cfg);
		free(cfg);
	}
}

/* ---- address keys ------------------------------------------------------------------- */

static void
test_listen(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg;
	char text[1024];
	size_t o;

	/* the first listen replaces both defaults; later ones add */
	cfg = parse_ok("[server]\nlisten = 192.0.2.1\nlisten = [2001:db8::1]:443\n"
		       "listen = 0.0.0.0:1\n");
	assert_int_equal(cfg->servers[0].nlisten, 3);
	assert_addr(&cfg->servers[0].listen[0], "192.0.2.1:4500");
	assert_addr(&cfg->servers[0].listen[1], "[2001:db8::1]:443");
	assert_addr(&cfg->servers[0].listen[2], "0.0.0.0:1");
	assert_roundtrip(cfg);
	free(cfg);

	/* one listen: the second default slot is cleared, not left behind */
	cfg = parse_ok("[server]\nlisten = 192.0.2.1:1\n");
	assert_int_equal(cfg->servers[0].nlisten, 1);
	assert_int_equal(cfg->servers[0].listen[1].ss.ss_family, AF_UNSPEC);
	free(cfg);

	/* IKETCPD_MAX_LISTEN addresses, and one more */
	o = (size_t)snprintf(text, sizeof(text), "[server]\n");
	for (int i = 1; i <= IKETCPD_MAX_LISTEN; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "listen = 192.0.2.1:%d\n", i);
	cfg = parse_ok(text);
	assert_int_equal(cfg->servers[0].nlisten, IKETCPD_MAX_LISTEN);
	free(cfg);
	snprintf(text + o, sizeof(text) - o, "listen = 192.0.2.1:99\n");
	expect_err(text, SRC ":10:", "\"192.0.2.1:99\"", "at most 8");

	/* the same address twice in one server (also written differently) */
	expect_err("[server]\nlisten = 192.0.2.1:5\nlisten = 192.0.2.1:5\n",
		   SRC ":3:", "\"192.0.2.1:5\"", "already a listen address");
	expect_err("[server]\nlisten = [::0]:4500\nlisten = ::\n", SRC ":3:", "\"::\"", "already");
	/* ...or in two servers: found by the check, at the second server's header */
	expect_err("[server a]\nlisten = 192.0.2.1:5\n[server b]\nlisten = 192.0.2.1:5\n",
		   SRC ":3:", "server \"b\": listen 192.0.2.1:5 is also used by server \"a\"",
		   NULL);
	/* two servers with the default listens collide */
	expect_err("[server a]\n[server b]\n", SRC ":2:", "[::]:4500", "also used");
	expect_err("[server]\nlisten = localhost:4500\n", SRC ":2:", "\"localhost:4500\"",
		   "not an address");
	expect_err("[server]\nlisten = 192.0.2.1:0\n", SRC ":2:", "\"192.0.2.1:0\"",
		   "port 1..65535");

	/* listen-tcp, libreswan's word: yes keeps the listen addresses... */
	cfg = parse_ok("[server]\nlisten-tcp = yes\n");
	assert_int_equal(cfg->servers[0].nlisten, 2);
	assert_addr(&cfg->servers[0].listen[0], "[::]:4500");
	free(cfg);
	cfg = parse_ok("[server]\nlisten = 192.0.2.1\nlisten-tcp = yes\n");
	assert_int_equal(cfg->servers[0].nlisten, 1);
	free(cfg);
	/* ...an address is one more listen address, in either order */
	cfg = parse_ok("[server]\nlisten-tcp = 192.0.2.1:443\nlisten = 192.0.2.2\n");
	assert_int_equal(cfg->servers[0].nlisten, 2);
	assert_addr(&cfg->servers[0].listen[0], "192.0.2.1:443");
	assert_addr(&cfg->servers[0].listen[1], "192.0.2.2:4500");
	assert_roundtrip(cfg);
	free(cfg);
	cfg = parse_ok("[server]\nlisten = 192.0.2.2\nlisten-tcp = 192.0.2.1:443\n"
		       "listen-tls = 192.0.2.3\ntls-cert = c.pem\ntls-key = k.pem\n");
	assert_int_equal(cfg->servers[0].nlisten, 2);
	assert_int_equal(cfg->servers[0].nlisten_tls, 1);
	free(cfg);
	/* listen-tls first still drops the plain defaults; listen-tcp then adds */
	cfg = parse_ok("[server]\nlisten-tls = 192.0.2.3\nlisten-tcp = 192.0.2.1\n"
		       "tls-cert = c.pem\ntls-key = k.pem\n");
	assert_int_equal(cfg->servers[0].nlisten, 1);
	assert_addr(&cfg->servers[0].listen[0], "192.0.2.1:4500");
	free(cfg);
	expect_err("[server]\nlisten-tcp = no\n", SRC ":2:", "\"no\"", "always listens on TCP");
	expect_err("[client c]\nudp = 127.0.0.1:1\npeer = gw\nlisten-tcp = yes\n",
		   SRC ":4:", "listen-tcp", "server");
}

static void
test_backend_and_udp(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg;

	cfg = parse_ok("[server]\nbackend = 10.1.2.3\n"
		       "[client c]\nudp = [::1]:4501\npeer = 192.0.2.1:443\n");
	assert_addr(&cfg->servers[0].backend, "10.1.2.3:4500");
	assert_addr(&cfg->clients[0].udp, "[::1]:4501");
	assert_roundtrip(cfg);
	free(cfg);

	cfg = parse_ok("[server]\nbackend = ::1\n[client c]\nudp = 127.0.0.1\npeer = 192.0.2.1\n");
	assert_addr(&cfg->servers[0].backend, "[::1]:4500");
	assert_addr(&cfg->clients[0].udp, "127.0.0.1:4500");
	free(cfg);

	expect_err("[server]\nbackend = 127.0.0.1:65536\n", SRC ":2:", "backend",
		   "\"127.0.0.1:65536\"");
	expect_err("[server]\nbackend = host.example\n", SRC ":2:", "\"host.example\"",
		   "not an address");
	expect_err("[client c]\nudp = 1.2.3\n", SRC ":2:", "udp", "\"1.2.3\"");
	expect_err("[client c]\nudp = [1.2.3.4]:5\n", SRC ":2:", "\"[1.2.3.4]:5\"", NULL);
	/* two clients may not share the udp address */
	expect_err("[client a]\nudp = 127.0.0.1:7\npeer = 192.0.2.1\n"
		   "[client b]\nudp = 127.0.0.1:7\npeer = 192.0.2.2\n",
		   SRC ":4:", "client \"b\": udp 127.0.0.1:7 is also used by client \"a\"", NULL);
}

static void
test_peer(void **state)
{
	(void)state;
	static const struct {
		const char *in, *host;
		uint16_t port;
	} ok[] = {
		{"vpn.example.com", "vpn.example.com", 4500},
		{"vpn.example.com:443", "vpn.example.com", 443},
		{"vpn.example.com.:1", "vpn.example.com.", 1},
		{"VPN-1.Example_x.com:65535", "VPN-1.Example_x.com", 65535},
		{"localhost", "localhost", 4500},
		{"192.0.2.1", "192.0.2.1", 4500},
		{"192.0.2.1:443", "192.0.2.1", 443},
		{"[2001:db8::1]:443", "2001:db8::1", 443},
		{"[2001:db8::1]", "2001:db8::1", 4500},
		{"2001:db8::1", "2001:db8::1", 4500}, /* bare IPv6: no port */
		{"::ffff:192.0.2.1", "::ffff:192.0.2.1", 4500},
		{"a1.b2", "a1.b2", 4500},
		{"1a", "1a", 4500},
	};
	static const char *const ko[] = {
		"a..b",       ".a",      "a b",         "ho$t",         "host:0",
		"host:65536", "host:",   "host:x",      ":443",         "1.2.3.999",
		"1.2.3",      "12345",   "[1.2.3.4]:5", "[::1",         "[::1]x",
		"[::1]:",     "[]",      "a:b:c",       "fe80::1%eth0", "[fe80::1%eth0]:5",
		"host:+5",    "host:-5", "host:5:6x",
	};
	char text[600];

	for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
		struct iketcpd_cfg *cfg;

		snprintf(text, sizeof(text), "[client c]\nudp = 127.0.0.1:1\npeer = %s\n",
			 ok[i].in);
		cfg = parse_ok(text);
		assert_string_equal(cfg->clients[0].peer_host, ok[i].host);
		assert_int_equal(cfg->clients[0].peer_port, ok[i].port);
		assert_roundtrip(cfg);
		free(cfg);
	}
	for (size_t i = 0; i < ARRAY_LEN(ko); i++) {
		char quoted[80];

		snprintf(text, sizeof(text), "[client c]\nudp = 127.0.0.1:1\npeer = %s\n", ko[i]);
		snprintf(quoted, sizeof(quoted), "peer: \"%s\"", ko[i]);
		expect_err(text, SRC ":3:", quoted, "not a peer");
	}

	/* label and name lengths: 63 per label, 253 in all */
	{
		char name[300];
		struct iketcpd_cfg *cfg;

		memset(name, 'a', 63);
		strcpy(name + 63, ".example");
		snprintf(text, sizeof(text), "[client c]\nudp = 127.0.0.1:1\npeer = %s\n", name);
		cfg = parse_ok(text);
		free(cfg);
		memset(name, 'a', 64);
		strcpy(name + 64, ".example");
		snprintf(text, sizeof(text), "[client c]\nudp = 127.0.0.1:1\npeer = %s\n", name);
		expect_err(text, SRC ":3:", "not a peer", NULL);

		for (int i = 0; i < 253; i++)
			name[i] = (i % 2) ? '.' : 'a';
		name[252] = 'a';
		name[253] = '\0';
		snprintf(text, sizeof(text), "[client c]\nudp = 127.0.0.1:1\npeer = %s:9\n", name);
		cfg = parse_ok(text);
		assert_string_equal(cfg->clients[0].peer_host, name);
		assert_roundtrip(cfg);
		free(cfg);
		strcpy(name + 253, ".b");
		snprintf(text, sizeof(text), "[client c]\nudp = 127.0.0.1:1\npeer = %s\n", name);
		expect_err(text, SRC ":3:", "not a peer", NULL);
	}
}

/* ---- key placement and duplicates ------------------------------------------------- */

static void
test_unknown_key(void **state)
{
	(void)state;
	expect_err("[server]\nbackends = 1.2.3.4\n", SRC ":2:", "unknown key", "\"backends\"");
	expect_err("[server]\nBackend = 1.2.3.4\n", SRC ":2:", "unknown key", "\"Backend\"");
	expect_err("foo = bar\n", SRC ":1:", "unknown key \"foo\"", NULL);
	expect_err("[server]\nmax conns = 5\n", SRC ":2:", "unknown key \"max conns\"", NULL);
}

static void
test_key_in_wrong_section(void **state)
{
	(void)state;
	expect_err("[server s]\nudp = 127.0.0.1:1\n", SRC ":2:", "\"udp\"",
		   "not valid in [server s]");
	expect_err("[server]\npeer = x.example\n", SRC ":2:", "\"peer\"", "[client NAME] key");
	expect_err("[server]\nenable-tcp = yes\n", SRC ":2:", "\"enable-tcp\"", NULL);
	expect_err("[client c]\nlisten = 0.0.0.0:1\n", SRC ":2:", "\"listen\"",
		   "not valid in [client c]");
	expect_err("[client c]\nbackend = 127.0.0.1:1\n", SRC ":2:", "\"backend\"", "[server]");
	expect_err("[client c]\nmax-conns = 1\n", SRC ":2:", "\"max-conns\"", NULL);
	expect_err("max-frame = 1500\n", SRC ":1:", "\"max-frame\" outside a section",
		   "[server] and [client] key");
	expect_err("listen = 0.0.0.0:1\n", SRC ":1:", "\"listen\" outside a section", NULL);
}

/* A valid value for each single-valued key, in its section. */
/* one key per line, not bin-packed */
/* clang-format off */
static const struct {
	int client;
	const char *key, *val;
} every_key[] = {
	{0, "backend", "127.0.0.1:9"},
	{1, "connect-timeout", "3s"},
	{1, "enable-tcp", "fallback"},
	{1, "fallback-wait", "1s"},
	{1, "flow-timeout", "5m"},
	{0, "ike-reserve", "1m"},
	{1, "ike-reserve", "96k"},
	{0, "max-bad-frames", "3"},
	{0, "max-conns", "500"},
	{0, "max-conns-per-source", "5"},
	{1, "max-flows", "10"},
	{0, "max-frame", "1500"},
	{1, "max-frame", "9000"},
	{0, "max-pending", "50"},
	{0, "max-sessions", "70"},
	{0, "prefix-timeout", "2s"},
	{0, "replaced-idle-timeout", "5m"},
	{0, "proxy-protocol", "no"},
	{1, "reconnect-max", "30s"},
	{1, "reconnect-min", "1s"},
	{1, "resolve-interval", "2m"},
	{0, "send-budget", "1m"},
	{1, "send-budget", "512k"},
	{0, "session-timeout", "1h"},
	{0, "tcp-keepalive", "yes"},
	{1, "tcp-keepalive", "on"},
	{1, "udp", "127.0.0.1:5555"},
	{1, "peer", "gw.example.net:443"},
	{0, "listen", "192.0.2.7:4500"},
};
/* clang-format on */

static void
test_duplicate_keys(void **state)
{
	(void)state;
	char text[512], quoted[96];

	for (size_t i = 0; i < ARRAY_LEN(every_key); i++) {
		if (strcmp(every_key[i].key, "listen") == 0)
			continue; /* repeatable */
		snprintf(text, sizeof(text), "%s%s = %s\n%s=%s\n",
			 every_key[i].client ? "[client c]\n" : "[server]\n", every_key[i].key,
			 every_key[i].val, every_key[i].key, every_key[i].val);
		snprintf(quoted, sizeof(quoted), "%s: \"%s\" duplicates the value set on line 2",
			 every_key[i].key, every_key[i].val);
		expect_err(text, SRC ":3:", quoted, NULL);
	}
	/* the same key in two sections is fine */
	struct iketcpd_cfg *cfg = parse_ok("[server a]\nlisten=192.0.2.1:1\nmax-conns = 1000\n"
					   "[server b]\nlisten=192.0.2.1:2\nmax-conns = 2000\n");
	assert_int_equal(cfg->servers[0].max_conns, 1000);
	assert_int_equal(cfg->servers[1].max_conns, 2000);
	free(cfg);
}

/* ---- line-level errors ----------------------------------------------------------------- */

static void
test_line_errors(void **state)
{
	(void)state;
	expect_err("[server]\nbackend 127.0.0.1\n", SRC ":2:", "expected \"key = value\"",
		   "\"backend 127.0.0.1\"");
	expect_err("[server]\n= 5\n", SRC ":2:", "missing key", "\"= 5\"");
	expect_err("[server]\nbackend =\n", SRC ":2:", "backend: \"\" is empty", NULL);
	expect_err("[server]\nbackend = # nothing\n", SRC ":2:", "is empty", NULL);
	expect_err("[server]\nmax-conns = 5\rx\n", SRC ":2:", "control character 0x0d",
		   "\"max-conns = 5\\x0dx\"");
	expect_err("[server]\nmax-conns = \x1b[5\n", SRC ":2:", "control character 0x1b", NULL);
	expect_err("[server]\nmax-conns = 5\x7f\n", SRC ":2:", "control character 0x7f", NULL);
	expect_err_n("[server]\nmax-c\0onns = 5\n", 24, SRC ":2:", "NUL byte",
		     "\"max-c\\x00onns = 5\"");
	expect_err_n("\0", 1, SRC ":1:", "NUL byte", NULL);
	/* bytes >= 0x80 are fine in comments, but not in keys or numbers */
	struct iketcpd_cfg *cfg = parse_ok("# caf\xc3\xa9\n[server]\n");
	free(cfg);
	expect_err("[server]\nmax-conns = 5\xc3\xa9\n", SRC ":2:", "\"5\\xc3\\xa9\"", NULL);
}

static void
test_line_length(void **state)
{
	(void)state;
	char *text = malloc(4096);
	struct iketcpd_cfg *cfg;

	assert_non_null(text);
	/* a 1024-byte line is fine, also with CRLF */
	memset(text, '#', 1024);
	memcpy(text + 1024, "\r\n[server]\n", 12);
	cfg = parse_ok(text);
	free(cfg);
	/* 1025 bytes are not, and the message shows a prefix only */
	memset(text, '#', 1025);
	memcpy(text + 1025, "\n[server]\n", 11);
	expect_err(text, SRC ":1:", "line longer than 1024 bytes", "\"#########");
	char err[512];
	struct iketcpd_cfg *c2 = cfg_new();
	assert_int_equal(iketcpd_config_parse_buf(c2, SRC, text, strlen(text), err, sizeof(err)),
			 -1);
	assert_true(strlen(err) < 200);
	assert_contains(err, "...\"");
	free(c2);
	/* the limit counts from the second line too */
	memcpy(text, "[server]\nmax-conns = ", 21);
	memset(text + 21, '1', 1100);
	text[1121] = '\0';
	expect_err(text, SRC ":2:", "line longer", "\"max-conns = 111");
	free(text);
}

static void
test_too_many_sections(void **state)
{
	(void)state;
	char *text = malloc(16384);
	size_t o = 0;
	int i;

	assert_non_null(text);
	for (i = 1; i <= IKETCPD_MAX_SERVERS; i++)
		o += (size_t)snprintf(text + o, 16384 - o, "[server s%d]\nlisten = 192.0.2.1:%d\n",
				      i, i);
	struct iketcpd_cfg *cfg = parse_ok(text);
	assert_int_equal(cfg->nservers, IKETCPD_MAX_SERVERS);
	free(cfg);
	snprintf(text + o, 16384 - o, "[server s9]\n");
	expect_err_base("[client keep]\nudp = 127.0.0.1:9\npeer = 192.0.2.9\n", text, strlen(text),
			SRC ":17:", "too many server sections (at most 8)", "\"[server s9]\"");

	o = 0;
	for (i = 1; i <= IKETCPD_MAX_CLIENTS; i++)
		o += (size_t)snprintf(text + o, 16384 - o,
				      "[client c%d]\nudp = 127.0.0.1:%d\npeer = 192.0.2.1\n", i, i);
	cfg = parse_ok(text);
	assert_int_equal(cfg->nclients, IKETCPD_MAX_CLIENTS);
	assert_roundtrip(cfg);
	free(cfg);
	snprintf(text + o, 16384 - o, "[client c65]\n");
	expect_err(text, SRC ":193:", "too many client sections (at most 64)", "\"[client c65]\"");
	free(text);
}

static void
test_bad_value_is_quoted_printably(void **state)
{
	(void)state;
	char text[512], err[512];
	struct iketcpd_cfg *cfg = cfg_new();

	/* quotes and backslashes escaped, long values cut with "..." */
	expect_err("[server]\nmax-conns = 1\"2\\3\n", SRC ":2:", "\"1\\\"2\\\\3\"", NULL);
	snprintf(text, sizeof(text), "[server]\nmax-conns = 1%0300d\n", 0);
	assert_int_equal(iketcpd_config_parse_buf(cfg, SRC, text, strlen(text), err, sizeof(err)),
			 -1);
	assert_contains(err, "\"100000000000");
	assert_contains(err, "...\"");
	assert_true(strlen(err) < 250);
	/* a short error buffer is cut, never overrun; NULL is allowed */
	memset(err, 'Z', sizeof(err));
	assert_int_equal(iketcpd_config_parse_buf(cfg, SRC, text, strlen(text), err, 8), -1);
	assert_int_equal(strlen(err), 7);
	assert_int_equal(err[8], 'Z');
	assert_int_equal(iketcpd_config_parse_buf(cfg, SRC, text, strlen(text), NULL, 0), -1);
	free(cfg);
}

/* ---- iketcpd_config_check() ------------------------------------------------------------ */

static struct iketcpd_cfg *
good_cfg(void)
{
	struct iketcpd_cfg *cfg = cfg_new();

	cfg->nservers = 1;
	iketcpd_server_defaults(&cfg->servers[0], "s");
	cfg->nclients = 1;
	iketcpd_client_defaults(&cfg->clients[0], "c");
	assert_int_equal(iketcpd_parse_addr("127.0.0.1:4501", 0, &cfg->clients[0].udp), 0);
	strcpy(cfg->clients[0].peer_host, "gw.example");
	return cfg;
}

static void
expect_check_err(struct iketcpd_cfg *cfg, const char *n1, const char *n2)
{
	char err[512] = "";

	assert_int_equal(iketcpd_config_check(cfg, err, sizeof(err)), -1);
	assert_contains(err, n1);
	if (n2)
		assert_contains(err, n2);
	free(cfg);
}

static void
test_check_ok(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = good_cfg();
	char err[256] = "";

	assert_int_equal(iketcpd_config_check(cfg, err, sizeof(err)), 0);
	assert_int_equal(iketcpd_config_check(cfg, NULL, 0), 0);
	assert_roundtrip(cfg);
	free(cfg);
	assert_int_equal(iketcpd_config_check(NULL, err, sizeof(err)), -1);
}

static void
test_check_failures(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg;

	cfg = good_cfg();
	cfg->nservers = 0;
	cfg->nclients = 0;
	expect_check_err(cfg, "no [server] or [client NAME] section", NULL);

	cfg = good_cfg();
	cfg->nservers = IKETCPD_MAX_SERVERS + 1;
	expect_check_err(cfg, "bad number of sections", NULL);

	cfg = good_cfg();
	memset(&cfg->servers[0].backend, 0, sizeof(cfg->servers[0].backend));
	expect_check_err(cfg, "server \"s\": no backend", NULL);

	cfg = good_cfg();
	cfg->servers[0].nlisten = 0;
	expect_check_err(cfg, "server \"s\": 0 listen addresses", NULL);

	cfg = good_cfg();
	memset(&cfg->clients[0].udp, 0, sizeof(cfg->clients[0].udp));
	expect_check_err(cfg, "client \"c\": no udp address", NULL);

	cfg = good_cfg();
	cfg->clients[0].peer_host[0] = '\0';
	expect_check_err(cfg, "client \"c\": no peer", NULL);

	cfg = good_cfg();
	strcpy(cfg->clients[0].peer_host, "bad host");
	expect_check_err(cfg, "bad peer host", NULL);

	cfg = good_cfg();
	cfg->clients[0].peer_port = 0;
	expect_check_err(cfg, "peer port 0", NULL);

	cfg = good_cfg();
	cfg->clients[0].reconnect_min_ms = 6000;
	expect_check_err(cfg, "client \"c\": reconnect-min (6s) is larger than reconnect-max (5s)",
			 NULL);

	cfg = good_cfg();
	cfg->servers[0].max_pending = 5000;
	expect_check_err(cfg, "max-pending (5000) is larger than max-conns (4096)", NULL);

	cfg = good_cfg();
	cfg->servers[0].max_conns_per_source = 4097;
	expect_check_err(cfg, "max-conns-per-source (4097) is larger than max-conns (4096)", NULL);

	cfg = good_cfg();
	cfg->servers[0].max_frame = 10;
	expect_check_err(cfg, "max-frame 10 is out of range (64..65535)", NULL);

	cfg = good_cfg();
	cfg->clients[0].flow_timeout_ms = 0;
	expect_check_err(cfg, "flow-timeout 0ms is out of range", NULL);

	cfg = good_cfg();
	cfg->clients[0].enable_tcp = (enum iketcpd_enable_tcp)7;
	expect_check_err(cfg, "bad enable-tcp", NULL);

	cfg = good_cfg();
	cfg->servers[0].tcp_keepalive = 2;
	expect_check_err(cfg, "tcp-keepalive 2", NULL);

	cfg = good_cfg();
	strcpy(cfg->stats_path, "relative");
	expect_check_err(cfg, "stats-socket", NULL);

	cfg = good_cfg();
	strcpy(cfg->clients[0].name, "s");
	expect_check_err(cfg, "client \"s\": section name already used by a server", NULL);

	cfg = good_cfg();
	cfg->nservers = 2;
	iketcpd_server_defaults(&cfg->servers[1], "s2");
	expect_check_err(cfg, "server \"s2\": listen [::]:4500 is also used by server \"s\"", NULL);

	cfg = good_cfg();
	cfg->servers[0].listen[1] = cfg->servers[0].listen[0];
	expect_check_err(cfg, "listen [::]:4500 given twice", NULL);

	cfg = good_cfg();
	cfg->nclients = 2;
	cfg->clients[1] = cfg->clients[0];
	strcpy(cfg->clients[1].name, "c2");
	expect_check_err(cfg, "client \"c2\": udp 127.0.0.1:4501 is also used by client \"c\"",
			 NULL);

	cfg = good_cfg();
	cfg->nclients = 2;
	cfg->clients[1] = cfg->clients[0];
	assert_int_equal(iketcpd_parse_addr("127.0.0.1:4502", 0, &cfg->clients[1].udp), 0);
	expect_check_err(cfg, "client \"c\": section name used twice", NULL);

	cfg = good_cfg();
	cfg->servers[0].name[0] = '\0';
	expect_check_err(cfg, "bad section name", NULL);
}

/* Cross-field errors found while parsing name the section's header line. */
static void
test_check_from_file(void **state)
{
	(void)state;
	expect_err("\n[client c]\nudp = 127.0.0.1:1\npeer = x.example\nreconnect-min = 10s\n",
		   SRC ":2: client \"c\": reconnect-min (10s) is larger than reconnect-max (5s)",
		   NULL, NULL);
	expect_err("[server]\nmax-conns = 10\n", SRC ":1: server \"server2\": max-pending (256)",
		   NULL, NULL);
	expect_err("[server]\nmax-conns = 50\nmax-pending = 1\n",
		   "max-conns-per-source (64) is larger than max-conns (50)", NULL, NULL);
	expect_err("[client c]\npeer = x.example\n", SRC ":1: client \"c\": no udp", NULL, NULL);
	expect_err("[client c]\nudp = 127.0.0.1:1\n", SRC ":1: client \"c\": no peer", NULL, NULL);

	/* a file with globals only has nothing to do */
	struct iketcpd_cfg *cfg = cfg_new();
	char err[256];
	assert_int_equal(iketcpd_config_parse_buf(cfg, SRC, "verbose = 1\n", 12, err, sizeof(err)),
			 -1);
	assert_string_equal(err, SRC ": no [server] or [client NAME] section: nothing to do");
	assert_int_equal(iketcpd_config_parse_buf(cfg, SRC, NULL, 0, err, sizeof(err)), -1);
	assert_int_equal(cfg->verbose, 0);
	free(cfg);
}

/* ---- command line -------------------------------------------------------------------- */

static void
test_args_server(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = cfg_new();
	char err[512] = "";

	assert_int_equal(args(cfg, "server", err, sizeof(err), "--listen", "0.0.0.0:443",
			      "--listen=[::]:443", "--backend", "127.0.0.1:4500", "--max-conns=100",
			      "--max-pending", "10", "--max-conns-per-source", "2",
			      "--prefix-timeout", "3s", "--tcp-keepalive=on", "--send-budget", "1M",
			      "--verbose=2", "--stats-socket", "/run/s", NULL),
			 0);
	assert_int_equal(cfg->nservers, 1);
	struct iketcpd_server_cfg *s = &cfg->servers[0];
	assert_string_equal(s->name, "server");
	assert_int_equal(s->nlisten, 2);
	assert_addr(&s->listen[0], "0.0.0.0:443");
	assert_addr(&s->listen[1], "[::]:443");
	assert_addr(&s->backend, "127.0.0.1:4500");
	assert_int_equal(s->max_conns, 100);
	assert_int_equal(s->max_pending, 10);
	assert_int_equal(s->max_conns_per_source, 2);
	assert_int_equal(s->prefix_timeout_ms, 3000);
	assert_int_equal(s->tcp_keepalive, 1);
	assert_int_equal(s->send_budget, 1048576);
	assert_int_equal(cfg->verbose, 2);
	assert_string_equal(cfg->stats_path, "/run/s");
	assert_roundtrip(cfg);

	/* a second server appends, named server2 */
	assert_int_equal(args(cfg, "server", err, sizeof(err), "--listen", "192.0.2.1", NULL), 0);
	assert_int_equal(cfg->nservers, 2);
	assert_string_equal(cfg->servers[1].name, "server2");
	free(cfg);

	/* no flags at all: the defaults */
	cfg = cfg_new();
	assert_int_equal(args(cfg, "server", err, sizeof(err), NULL), 0);
	struct iketcpd_server_cfg want;
	iketcpd_server_defaults(&want, "server");
	assert_memory_equal(&cfg->servers[0], &want, sizeof(want));
	free(cfg);
}

static void
test_args_client(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = cfg_new();
	char err[512] = "";

	assert_int_equal(args(cfg, "client", err, sizeof(err), "--udp", "127.0.0.1:4501",
			      "--peer=vpn.example.org:443", "--enable-tcp", "fallback",
			      "--fallback-wait=1500ms", "--reconnect-min", "1s", "--reconnect-max",
			      "1m", "--max-flows", "9", NULL),
			 0);
	struct iketcpd_client_cfg *c = &cfg->clients[0];
	assert_string_equal(c->name, "client");
	assert_addr(&c->udp, "127.0.0.1:4501");
	assert_string_equal(c->peer_host, "vpn.example.org");
	assert_int_equal(c->peer_port, 443);
	assert_int_equal(c->enable_tcp, IKETCPD_TCP_FALLBACK);
	assert_int_equal(c->fallback_wait_ms, 1500);
	assert_int_equal(c->reconnect_min_ms, 1000);
	assert_int_equal(c->reconnect_max_ms, 60000);
	assert_int_equal(c->max_flows, 9);
	assert_roundtrip(cfg);

	assert_int_equal(args(cfg, "client", err, sizeof(err), "--udp", "127.0.0.1:4502", "--peer",
			      "[2001:db8::2]", NULL),
			 0);
	assert_string_equal(cfg->clients[1].name, "client2");
	assert_string_equal(cfg->clients[1].peer_host, "2001:db8::2");
	assert_roundtrip(cfg);
	free(cfg);
}

/* Fails unless args() fails with every needle in the message and cfg unchanged. */
#define expect_args_err(mode, n1, n2, ...)                                                         \
	do {                                                                                       \
		struct iketcpd_cfg *c_ = cfg_new(), *s_ = cfg_new();                               \
		char e_[512] = "";                                                                 \
		if (strcmp(mode, "server") == 0)                                                   \
			assert_int_equal(                                                          \
				args(c_, mode, e_, sizeof(e_), "--listen", "192.0.2.50:1", NULL),  \
				0);                                                                \
		else                                                                               \
			assert_int_equal(args(c_, mode, e_, sizeof(e_), "--udp", "127.0.0.1:9",    \
					      "--peer", "192.0.2.1", NULL),                        \
					 0);                                                       \
		memcpy(s_, c_, sizeof(*c_));                                                       \
		assert_int_equal(args(c_, mode, e_, sizeof(e_), __VA_ARGS__, NULL), -1);           \
		assert_contains(e_, "command line: ");                                             \
		assert_contains(e_, n1);                                                           \
		if (n2)                                                                            \
			assert_contains(e_, (const char *)n2);                                     \
		assert_memory_equal(c_, s_, sizeof(*c_));                                          \
		free(c_);                                                                          \
		free(s_);                                                                          \
	} while (0)

static void
test_args_errors(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = cfg_new();
	char err[512];

	assert_int_equal(args(cfg, "relay", err, sizeof(err), NULL), -1);
	assert_string_equal(err,
			    "command line: unknown mode \"relay\" (expected server or client)");
	assert_int_equal(iketcpd_config_parse_args(cfg, NULL, 0, NULL, err, sizeof(err)), -1);
	assert_int_equal(cfg->nservers + cfg->nclients, 0);
	free(cfg);

	expect_args_err("client", "unexpected argument \"udp\"", NULL, "--udp", "127.0.0.1:1",
			"udp");
	expect_args_err("client", "unexpected argument \"-v\"", NULL, "-v");
	expect_args_err("client", "unexpected argument \"--\"", NULL, "--");
	expect_args_err("client", "unknown option \"--frob\"", NULL, "--frob", "1");
	expect_args_err("client", "unknown option \"--frob\"", NULL, "--frob=1");
	expect_args_err("client", "unknown option \"--aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			NULL, "--aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	expect_args_err("client", "\"--udp\" needs a value", NULL, "--udp");
	expect_args_err("client", "--listen is a server option, not valid in client mode", NULL,
			"--udp", "127.0.0.1:2", "--peer", "x.example", "--listen", "0.0.0.0:1");
	expect_args_err("server", "--peer is a client option, not valid in server mode", NULL,
			"--peer", "x.example");
	expect_args_err("client", "--udp: \"127.0.0.1:3\" given twice", NULL, "--udp",
			"127.0.0.1:2", "--udp", "127.0.0.1:3", "--peer", "x.example");
	expect_args_err("client", "--peer: \"\" is empty", NULL, "--udp", "127.0.0.1:2", "--peer=");
	expect_args_err("client", "--peer: \" x.example\" starts or ends with a blank", NULL,
			"--udp", "127.0.0.1:2", "--peer", " x.example");
	expect_args_err("server", "--stats-socket: \"/a #b\"", "comment", "--stats-socket",
			"/a #b");
	expect_args_err("server", "--stats-socket: \"/a\\x0ab\"", "control character",
			"--stats-socket", "/a\nb");
	expect_args_err("server", "--max-conns: \"0\" is out of range (1..1000000)", NULL,
			"--max-conns", "0");
	expect_args_err("server", "--max-conns: \"10\" given twice", NULL, "--max-conns=10",
			"--max-conns", "10");
	expect_args_err("server", "--tcp-keepalive: \"--max-conns\" is not yes/no", NULL,
			"--tcp-keepalive", "--max-conns", "10");
	/* the section check runs too: client without peer, reconnect order */
	expect_args_err("client", "command line: client \"client2\": no peer", NULL, "--udp",
			"127.0.0.1:2");
	expect_args_err("client", "reconnect-min (6s) is larger than reconnect-max (5s)", NULL,
			"--udp", "127.0.0.1:2", "--peer", "x", "--reconnect-min", "6s");
	expect_args_err("client", "udp 127.0.0.1:9 is also used by client \"client\"", NULL,
			"--udp", "127.0.0.1:9", "--peer", "x");
}

/* ---- TLS and proxy keys (issue #4) --------------------------------------------------- */

#define TLS_FILES "tls-cert = /etc/iketcpd/cert.pem\ntls-key = /etc/iketcpd/key.pem\n"
#define PIN_HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define PIN_B64 "ASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8="

static void
test_tls_server_keys(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg;
	const struct iketcpd_server_cfg *s;

	/* listen-tls alone: TLS only (the default plain pair is dropped) */
	cfg = parse_ok(
		"[server]\nlisten-tls = 192.0.2.1\nlisten-tls = [2001:db8::1]:8443\n" TLS_FILES
		"tls-min-version = 1.3\n"
		"tls-ciphers = ECDHE-RSA-AES128-GCM-SHA256:!aNULL\n"
		"tls-ciphersuites = TLS_AES_128_GCM_SHA256\n"
		"tls-groups = X25519:P-256\n"
		"tls-handshake-timeout = 2s\n"
		"sniff-tls = no\n");
	s = &cfg->servers[0];
	assert_int_equal(s->nlisten, 0);
	assert_int_equal(s->nlisten_tls, 2);
	assert_addr(&s->listen_tls[0], "192.0.2.1:443");
	assert_addr(&s->listen_tls[1], "[2001:db8::1]:8443");
	assert_string_equal(s->tls_cert, "/etc/iketcpd/cert.pem");
	assert_string_equal(s->tls_key, "/etc/iketcpd/key.pem");
	assert_int_equal(s->tls.min_version, IKETCPD_TLS_V13);
	assert_string_equal(s->tls.ciphers, "ECDHE-RSA-AES128-GCM-SHA256:!aNULL");
	assert_string_equal(s->tls.ciphersuites, "TLS_AES_128_GCM_SHA256");
	assert_string_equal(s->tls.groups, "X25519:P-256");
	assert_int_equal(s->tls_handshake_timeout_ms, 2000);
	assert_int_equal(s->sniff_tls, 0);
	assert_false(iketcpd_server_sniff_tls(s));
	assert_roundtrip(cfg);
	free(cfg);

	/* listen before and after listen-tls: both lists as written */
	cfg = parse_ok("[server]\nlisten = 192.0.2.1\nlisten-tls = 192.0.2.1\n" TLS_FILES);
	assert_int_equal(cfg->servers[0].nlisten, 1);
	assert_int_equal(cfg->servers[0].nlisten_tls, 1);
	assert_roundtrip(cfg);
	free(cfg);
	cfg = parse_ok("[server]\nlisten-tls = 192.0.2.1\nlisten = 192.0.2.2\nlisten = 192.0.2.3\n"
		       "tls-null-cipher = yes\n" TLS_FILES);
	assert_int_equal(cfg->servers[0].nlisten, 2);
	assert_addr(&cfg->servers[0].listen[0], "192.0.2.2:4500");
	assert_int_equal(cfg->servers[0].tls.null_cipher, 1);
	assert_roundtrip(cfg);
	free(cfg);

	/* a certificate without listen-tls: the plain ports sniff (auto) */
	cfg = parse_ok("[server]\n" TLS_FILES);
	s = &cfg->servers[0];
	assert_int_equal(s->nlisten, 2);
	assert_int_equal(s->sniff_tls, IKETCPD_SNIFF_AUTO);
	assert_true(iketcpd_server_sniff_tls(s));
	assert_int_equal(s->tls_handshake_timeout_ms, 5000);
	assert_int_equal(s->tls.min_version, IKETCPD_TLS_V12);
	assert_roundtrip(cfg);
	free(cfg);
	cfg = parse_ok("[server]\nsniff-tls = Auto\n");
	assert_false(iketcpd_server_sniff_tls(&cfg->servers[0]));
	free(cfg);

	/* bad values */
	expect_err("[server x]\nlisten-tls = 192.0.2.1:0\n",
		   SRC ":2:", "listen-tls: \"192.0.2.1:0\"", "default 443");
	expect_err("[server x]\ntls-min-version = 1.1\n", SRC ":2:", "\"1.1\" is not a TLS version",
		   NULL);
	expect_err("[server x]\ntls-ciphers = AES128 SHA\n", SRC ":2:", "not an OpenSSL list",
		   NULL);
	expect_err("[server x]\nsniff-tls = maybe\n", "not yes, no or auto", NULL, NULL);
	expect_err("[server x]\ntls-handshake-timeout = 0\n", "out of range (1ms..24h)", NULL,
		   NULL);
	expect_err("[server x]\nlisten = 192.0.2.1:443\nlisten-tls = 192.0.2.1\n" TLS_FILES,
		   SRC ":3:", "already a listen address", NULL);
	expect_err("[server x]\nlisten-tls = 192.0.2.1\nlisten = 192.0.2.1:443\n" TLS_FILES,
		   SRC ":3:", "already a listen-tls address", NULL);
	/* checks across keys, reported at the section header */
	expect_err("[server x]\nlisten-tls = 192.0.2.1\n",
		   SRC ":1:", "server \"x\": listen-tls needs tls-cert and tls-key", NULL);
	expect_err("[server x]\ntls-cert = /c.pem\n", "tls-cert is set without tls-key", NULL,
		   NULL);
	expect_err("[server x]\ntls-key = /k.pem\n", "tls-key is set without tls-cert", NULL, NULL);
	expect_err("[server x]\ntls-ciphers = AES128\n", "tls-ciphers is set but TLS is off", NULL,
		   NULL);
	expect_err("[server x]\ntls-handshake-timeout = 1s\n", "tls-handshake-timeout is set but",
		   NULL, NULL);
	expect_err("[server x]\nsniff-tls = yes\n", "sniff-tls = yes needs tls-cert", NULL, NULL);
	expect_err("[server x]\n" TLS_FILES "tls-min-version = 1.3\ntls-null-cipher = yes\n",
		   "tls-null-cipher needs tls-min-version 1.2", NULL, NULL);
	expect_err("[server a]\nlisten = 192.0.2.1:443\n[server b]\nlisten-tls = "
		   "192.0.2.1\n" TLS_FILES,
		   SRC ":3:", "listen-tls 192.0.2.1:443 is also used by server \"a\"", NULL);
}

static void
test_tls_client_keys(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg;
	const struct iketcpd_client_cfg *c;
	char err[512];

	cfg = parse_ok(CLIENT_HDR "tls = yes\ntls-server-name = gw.example\n"
				  "tls-ca-file = /etc/ca.pem\ntls-verify = no\n"
				  "tls-pin-sha256 = sha256//" PIN_B64 "\n"
				  "tls-null-cipher = yes\ntls-ciphers = ECDHE-RSA-NULL-SHA\n"
				  "proxy = http://proxy.example:3128/\nproxy-auth = user:pa:ss\n");
	c = &cfg->clients[0];
	assert_int_equal(c->use_tls, 1);
	assert_string_equal(c->tls_server_name, "gw.example");
	assert_string_equal(c->tls_ca_file, "/etc/ca.pem");
	assert_int_equal(c->tls_verify, 0);
	assert_string_equal(c->tls_pin, "sha256//" PIN_B64);
	assert_int_equal(c->tls.null_cipher, 1);
	assert_string_equal(c->proxy_host, "proxy.example");
	assert_int_equal(c->proxy_port, 3128);
	assert_string_equal(c->proxy_auth, "user:pa:ss");
	assert_roundtrip(cfg);
	free(cfg);

	/* defaults; other pin forms; proxy to an IPv6 address, default port 80 */
	cfg = parse_ok(CLIENT_HDR "tls = on\ntls-pin-sha256 = " PIN_HEX "\n");
	c = &cfg->clients[0];
	assert_int_equal(c->tls_verify, 1);
	assert_int_equal(c->tls.min_version, IKETCPD_TLS_V12);
	assert_string_equal(c->tls_server_name, "");
	assert_roundtrip(cfg);
	free(cfg);
	cfg = parse_ok(CLIENT_HDR
		       "tls = yes\ntls-server-name = 2001:db8::1\n"
		       "tls-pin-sha256 = 01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:"
		       "01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef\n"
		       "proxy = HTTP://[2001:db8::3]\n");
	c = &cfg->clients[0];
	assert_string_equal(c->proxy_host, "2001:db8::3");
	assert_int_equal(c->proxy_port, 80);
	assert_roundtrip(cfg);
	free(cfg);
	/* a proxy without TLS is plain RFC 9329 through the tunnel */
	cfg = parse_ok(CLIENT_HDR "proxy = http://192.0.2.5:8080\n");
	assert_int_equal(cfg->clients[0].use_tls, 0);
	assert_roundtrip(cfg);
	free(cfg);

	/* bad values */
	expect_err(CLIENT_HDR "tls = maybe\n", SRC ":4:", "not yes/no", NULL);
	expect_err(CLIENT_HDR "tls-pin-sha256 = abc\n", "\"abc\" is not a SHA-256 public key pin",
		   NULL, NULL);
	expect_err(CLIENT_HDR "tls-pin-sha256 = " PIN_HEX "0\n", "not a SHA-256 public key pin",
		   NULL, NULL);
	expect_err(CLIENT_HDR "tls-server-name = bad_name!\n", "is not a server name", NULL, NULL);
	expect_err(CLIENT_HDR "proxy = https://p.example:443\n", "only http:// proxies", NULL,
		   NULL);
	expect_err(CLIENT_HDR "proxy = http://u:pw@p.example:3128\n", "give them with proxy-auth",
		   NULL, NULL);
	expect_err(CLIENT_HDR "proxy = socks5://p.example\n", "is not a proxy URL", NULL, NULL);
	expect_err(CLIENT_HDR "proxy = http://p.example:0\n", "is not a proxy URL", NULL, NULL);
	expect_err(CLIENT_HDR "proxy = http://\n", "is not a proxy URL", NULL, NULL);
	/* checks across keys */
	expect_err(CLIENT_HDR "tls-ca-file = /x.pem\n",
		   SRC ":1:", "client \"client\": tls-ca-file is set but tls = no", NULL);
	expect_err(CLIENT_HDR "tls-verify = no\n", "tls-verify is set but tls = no", NULL, NULL);
	expect_err(CLIENT_HDR "tls-min-version = 1.3\n", "tls-min-version is set but tls = no",
		   NULL, NULL);
	expect_err(CLIENT_HDR "tls = yes\ntls-min-version = 1.3\ntls-null-cipher = yes\n",
		   "tls-null-cipher needs tls-min-version 1.2", NULL, NULL);
	expect_err(CLIENT_HDR "proxy-auth = u:p\n", "proxy-auth is set without proxy", NULL, NULL);

	/* the password is never quoted in a message */
	cfg = cfg_new();
	assert_int_equal(iketcpd_config_parse_buf(cfg, SRC, CLIENT_HDR "proxy-auth = secretword\n",
						  strlen(CLIENT_HDR "proxy-auth = secretword\n"),
						  err, sizeof(err)),
			 -1);
	assert_contains(err, SRC ":4: proxy-auth: the value (not shown) is not USER:PASS");
	assert_true(strstr(err, "secretword") == NULL);
	free(cfg);
}

static void
test_tls_args(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = cfg_new();
	char err[512];

	assert_int_equal(args(cfg, "server", err, sizeof(err), "--listen-tls", "127.0.0.1:8443",
			      "--listen-tls=127.0.0.1:8444", "--tls-cert", "/c.pem", "--tls-key",
			      "/k.pem", "--sniff-tls", "yes", "--tls-handshake-timeout", "3s",
			      NULL),
			 0);
	assert_int_equal(cfg->servers[0].nlisten, 0);
	assert_int_equal(cfg->servers[0].nlisten_tls, 2);
	assert_int_equal(cfg->servers[0].sniff_tls, 1);
	assert_int_equal(args(cfg, "client", err, sizeof(err), "--udp", "127.0.0.1:4501", "--peer",
			      "gw.test:443", "--tls", "yes", "--tls-verify", "no", "--proxy",
			      "http://127.0.0.1:3128", "--proxy-auth", "u:p", NULL),
			 0);
	assert_int_equal(cfg->clients[0].use_tls, 1);
	assert_int_equal(cfg->clients[0].proxy_port, 3128);
	assert_roundtrip(cfg);
	free(cfg);
	expect_args_err("client", "--tls-cert is a server option, not valid in client mode", NULL,
			"--udp", "127.0.0.1:2", "--peer", "x", "--tls-cert", "/c");
	expect_args_err("server", "--tls is a client option, not valid in server mode", NULL,
			"--tls", "yes");
	expect_args_err("client", "--tls: \"yes\" given twice", NULL, "--udp", "127.0.0.1:2",
			"--peer", "x", "--tls", "yes", "--tls", "yes");
}

/* Every keyword gives the same struct from the file and from the command line. */
static void
test_args_match_file(void **state)
{
	(void)state;
	char text[512], flag[64], eqflag[128];

	for (size_t i = 0; i < ARRAY_LEN(every_key); i++) {
		const char *k = every_key[i].key, *v = every_key[i].val;
		int cl = every_key[i].client;
		struct iketcpd_cfg *a = cfg_new(), *b = cfg_new(), *f;
		char err[512] = "";

		/* the client's udp/peer is given last, unless it is the key under test */
		const char *u = strcmp(k, "udp") == 0 ? "127.0.0.1:1" : "127.0.0.1:4501";
		const char *pe = strcmp(k, "peer") == 0 ? "192.0.2.9" : "192.0.2.1";
		if (cl)
			snprintf(text, sizeof(text), "[client client]\n%s = %s\n%s = %s\n", k, v,
				 strcmp(k, "udp") == 0 ? "peer" : "udp",
				 strcmp(k, "udp") == 0 ? pe : u);
		else
			snprintf(text, sizeof(text), "[server]\n%s = %s\n", k, v);
		if (cl && strcmp(k, "udp") != 0 && strcmp(k, "peer") != 0)
			strcat(text, "peer = 192.0.2.1\n");
		f = parse_ok(text);

		snprintf(flag, sizeof(flag), "--%s", k);
		snprintf(eqflag, sizeof(eqflag), "--%s=%s", k, v);
		if (cl && strcmp(k, "udp") == 0) {
			assert_int_equal(
				args(a, "client", err, sizeof(err), flag, v, "--peer", pe, NULL),
				0);
			assert_int_equal(
				args(b, "client", err, sizeof(err), eqflag, "--peer", pe, NULL), 0);
		} else if (cl && strcmp(k, "peer") == 0) {
			assert_int_equal(
				args(a, "client", err, sizeof(err), flag, v, "--udp", u, NULL), 0);
			assert_int_equal(
				args(b, "client", err, sizeof(err), eqflag, "--udp", u, NULL), 0);
		} else if (cl) {
			assert_int_equal(args(a, "client", err, sizeof(err), flag, v, "--udp", u,
					      "--peer", pe, NULL),
					 0);
			assert_int_equal(args(b, "client", err, sizeof(err), eqflag, "--udp", u,
					      "--peer", pe, NULL),
					 0);
		} else {
			assert_int_equal(args(a, "server", err, sizeof(err), flag, v, NULL), 0);
			assert_int_equal(args(b, "server", err, sizeof(err), eqflag, NULL), 0);
		}
		if (memcmp(a, f, sizeof(*a)) != 0 || memcmp(b, f, sizeof(*b)) != 0) {
			print_error("key %s: file and command line differ\n", k);
			fail();
		}
		free(a);
		free(b);
		free(f);
	}
}

static void
test_file_then_args_append(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = parse_ok("[server edge]\nlisten = 192.0.2.1:443\n");
	char err[512];

	assert_int_equal(args(cfg, "server", err, sizeof(err), "--listen", "192.0.2.1:443", NULL),
			 -1);
	assert_contains(err, "command line: server \"server2\": listen 192.0.2.1:443 is also "
			     "used by server \"edge\"");
	assert_int_equal(cfg->nservers, 1);
	assert_int_equal(args(cfg, "server", err, sizeof(err), "--listen", "192.0.2.1:444", NULL),
			 0);
	assert_int_equal(cfg->nservers, 2);
	free(cfg);
}

/* ---- budgets and timeouts against unauthenticated peers --------------------------------- */

static void
test_budget_keys(void **state)
{
	(void)state;
	char b[128];
	struct iketcpd_cfg *cfg =
		parse_ok("[server]\nmax-sessions-per-source = 5\nmax-half-open = 7\n"
			 "max-half-open-per-source = 3\nhalf-open-timeout = 20s\n"
			 "max-pending-per-source = 4\nsource-prefix4 = 24\nsource-prefix6 = 56\n"
			 "frame-timeout = 3s\nidle-timeout = 5m\ntcp-user-timeout = 20s\n"
			 "backend-source = 127.64.0.0/10\n");
	const struct iketcpd_server_cfg *s = &cfg->servers[0];

	assert_int_equal(s->max_sessions_per_source, 5);
	assert_int_equal(s->max_half_open, 7);
	assert_int_equal(s->max_half_open_per_source, 3);
	assert_int_equal(s->half_open_timeout_ms, 20000);
	assert_int_equal(s->max_pending_per_source, 4);
	assert_int_equal(s->source_prefix4, 24);
	assert_int_equal(s->source_prefix6, 56);
	assert_int_equal(s->frame_timeout_ms, 3000);
	assert_int_equal(s->idle_timeout_ms, 300000);
	assert_int_equal(s->tcp_user_timeout_ms, 20000);
	assert_int_equal(s->backend_source_mode, IKETCPD_BSRC_PREFIX);
	assert_string_equal(iketcpd_prefix_str(&s->backend_source, b, sizeof(b)), "127.64.0.0/10");
	assert_int_equal(iketcpd_config_check(cfg, b, sizeof(b)), 0);
	assert_roundtrip(cfg);
	free(cfg);

	cfg = parse_ok("[server]\nbackend-source = none\nidle-timeout = off\n");
	assert_int_equal(cfg->servers[0].backend_source_mode, IKETCPD_BSRC_NONE);
	assert_int_equal(cfg->servers[0].idle_timeout_ms, 0);
	assert_roundtrip(cfg);
	free(cfg);

	expect_err("[server]\nsource-prefix4 = 33\n", SRC ":2:", "source-prefix4", "out of range");
	expect_err("[server]\nsource-prefix6 = 0\n", SRC ":2:", "source-prefix6", "out of range");
	expect_err("[server]\nbackend-source = 127.0.0.1/32\n", SRC ":2:", "backend-source",
		   "room for clients");
	expect_err("[server]\nbackend-source = 10.0.0.1/8\n", SRC ":2:", "backend-source",
		   "room for clients");
	expect_err("[server]\nidle-timeout = never\n", SRC ":2:", "idle-timeout", "not a duration");
	expect_err("[server]\nmax-half-open = 0\n", SRC ":2:", "max-half-open", "out of range");
	/* a prefix of the other family than the backend's */
	expect_err("[server]\nbackend-source = fd00:1::/64\n", "backend-source", "address family",
		   NULL);
}

/* ---- proxy-protocol, proxy-protocol-from, address prefixes ------------------------------ */

static void
test_proxy_protocol_keys(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = parse_ok("[server]\nproxy-protocol = yes\n"
					   "proxy-protocol-from = 10.0.0.0/8\n"
					   "proxy-protocol-from = 2001:db8::1\n"
					   "proxy-protocol-from = 192.0.2.7/32\n");
	const struct iketcpd_server_cfg *s = &cfg->servers[0];
	char b[64];

	assert_int_equal(s->proxy_protocol, 1);
	assert_int_equal(s->nproxy_from, 3);
	assert_string_equal(iketcpd_prefix_str(&s->proxy_from[0], b, sizeof(b)), "10.0.0.0/8");
	assert_string_equal(iketcpd_prefix_str(&s->proxy_from[1], b, sizeof(b)), "2001:db8::1/128");
	assert_string_equal(iketcpd_prefix_str(&s->proxy_from[2], b, sizeof(b)), "192.0.2.7/32");
	assert_int_equal(iketcpd_config_check(cfg, b, sizeof(b)), 0);
	assert_roundtrip(cfg);
	free(cfg);

	/* default: off, nothing listed */
	cfg = parse_ok("[server]\n");
	assert_int_equal(cfg->servers[0].proxy_protocol, 0);
	assert_int_equal(cfg->servers[0].nproxy_from, 0);
	free(cfg);

	static const char *const bad_prefixes[] = {
		"10.0.0.1/8", /* bits after the prefix */
		"10.0.0.0/33",   "10.0.0.0/08",     "10.0.0.0/",      "/8",
		"10.0.0/8",      "10.0.0.0/8x",     "2001:db8::/129", "2001:db8::1/64",
		"[2001:db8::1]", "vpn.example.com", "10.0.0.0//8",    "10.0.0.0/-1",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad_prefixes); i++) {
		char text[128];
		snprintf(text, sizeof(text), "[server]\nproxy-protocol-from = %s\n",
			 bad_prefixes[i]);
		expect_err(text, SRC ":2:", "proxy-protocol-from", "is not an address or prefix");
	}
	expect_err("[server]\nproxy-protocol = maybe\n", SRC ":2:", "is not yes/no", NULL);

	char many[2048] = "[server]\n";
	for (int i = 0; i <= IKETCPD_MAX_PROXY_FROM; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
			 "proxy-protocol-from = 10.%d.0.0/16\n", i);
	expect_err(many, SRC ":18:", "one proxy-protocol-from too many (at most 16)", NULL);

	/* cross checks: an open door or a forgotten switch is refused */
	cfg = good_cfg();
	cfg->servers[0].proxy_protocol = 1;
	expect_check_err(cfg, "server \"s\": proxy-protocol = yes needs proxy-protocol-from", NULL);
	cfg = good_cfg();
	assert_int_equal(iketcpd_parse_prefix("192.0.2.0/24", &cfg->servers[0].proxy_from[0]), 0);
	cfg->servers[0].nproxy_from = 1;
	expect_check_err(cfg, "proxy-protocol-from is set but proxy-protocol = no", NULL);
}

/* Full-tunnel clients: bypass-policy yes|no|auto (default auto) and mark
 * VALUE[/MASK] in decimal or hex; the dump writes them back. */
static void
test_full_tunnel_keys(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = parse_ok(CLIENT_HDR);
	assert_int_equal(cfg->clients[0].bypass_policy, IKETCPD_BYPASS_AUTO);
	assert_int_equal(cfg->clients[0].mark, 0);
	assert_roundtrip(cfg);
	free(cfg);

	cfg = parse_ok(CLIENT_HDR "bypass-policy = yes\nmark = 0x42\n");
	assert_int_equal(cfg->clients[0].bypass_policy, 1);
	assert_int_equal(cfg->clients[0].mark, 0x42);
	assert_int_equal(cfg->clients[0].mark_mask, 0xffffffffu);
	assert_roundtrip(cfg);
	free(cfg);

	cfg = parse_ok(CLIENT_HDR "bypass-policy = off\nmark = 0X4200/0xFF00\n");
	assert_int_equal(cfg->clients[0].bypass_policy, 0);
	assert_int_equal(cfg->clients[0].mark, 0x4200);
	assert_int_equal(cfg->clients[0].mark_mask, 0xff00);
	assert_roundtrip(cfg);
	free(cfg);

	cfg = parse_ok(CLIENT_HDR "bypass-policy = AUTO\nmark = 4294967295\n");
	assert_int_equal(cfg->clients[0].bypass_policy, IKETCPD_BYPASS_AUTO);
	assert_int_equal(cfg->clients[0].mark, 0xffffffffu);
	free(cfg);

	static const char *const bad_syntax[] = {"0x", "0xg",   "-1",  "abc",          "0x42/",
						 "/1", "1/2/3", "1 2", "0x42/0xff00x", "1.5"};
	for (size_t i = 0; i < ARRAY_LEN(bad_syntax); i++) {
		char text[256];
		snprintf(text, sizeof(text), CLIENT_HDR "mark = %s\n", bad_syntax[i]);
		expect_err(text, SRC ":4: mark:", "is not a mark VALUE[/MASK]", NULL);
	}
	static const char *const bad_range[] = {
		"0", "0x100000000", "4294967296", "0x42/0x0f", "1/0", "99999999999999999999999"};
	for (size_t i = 0; i < ARRAY_LEN(bad_range); i++) {
		char text[256];
		snprintf(text, sizeof(text), CLIENT_HDR "mark = %s\n", bad_range[i]);
		expect_err(text, SRC ":4: mark:", "is out of range", NULL);
	}
	expect_err(CLIENT_HDR "bypass-policy = maybe\n", "not yes, no or auto", NULL, NULL);
	/* client keys only: a server's accepted sockets are not marked */
	expect_err("[server x]\nmark = 1\n", SRC ":2:", "mark", NULL);
	expect_err("[server x]\nbypass-policy = yes\n", SRC ":2:", "bypass-policy", NULL);
	/* the command line takes the same words */
	cfg = calloc(1, sizeof(*cfg));
	assert_non_null(cfg);
	iketcpd_config_init(cfg);
	char *argv[] = {"--udp", "127.0.0.1:4501",  "--peer", "gw", "--mark",
			"66",    "--bypass-policy", "no",     NULL};
	char err[512] = "";
	assert_int_equal(iketcpd_config_parse_args(cfg, "client", 8, argv, err, sizeof(err)), 0);
	assert_int_equal(cfg->clients[0].mark, 66);
	assert_int_equal(cfg->clients[0].bypass_policy, 0);
	/* a section built by hand is checked too */
	cfg->clients[0].mark_mask = 0x0f;
	assert_int_equal(iketcpd_config_check(cfg, err, sizeof(err)), -1);
	assert_contains(err, "mark 0x42 sets bits outside its mask 0xf");
	cfg->clients[0].mark_mask = 0xffffffffu;
	cfg->clients[0].bypass_policy = 2;
	assert_int_equal(iketcpd_config_check(cfg, err, sizeof(err)), -1);
	assert_contains(err, "bypass-policy 2 is not yes, no or auto");
	free(cfg);
}

/* local-peer: auto (default), or ADDR[:PORT] where no port means any port. */
static void
test_local_peer(void **state)
{
	(void)state;
	static const struct {
		const char *val, *addr, *dump; /* addr NULL: auto; iketcpd_addr_str() form */
	} ok[] = {
		{"auto", NULL, "auto"},
		{"AUTO", NULL, "auto"},
		{"127.0.0.2", "127.0.0.2:0", "127.0.0.2"},
		{"127.0.0.2:4500", "127.0.0.2:4500", "127.0.0.2:4500"},
		{"192.0.2.1:1", "192.0.2.1:1", "192.0.2.1:1"},
		{"[::1]", "[::1]:0", "[::1]"},
		{"::1", "[::1]:0", "[::1]"},
		{"[2001:db8::7]:65535", "[2001:db8::7]:65535", "[2001:db8::7]:65535"},
	};
	char text[256], want[128], *dump;

	/* default: auto, and the dump says so */
	struct iketcpd_cfg *cfg = parse_ok(CLIENT_HDR);
	assert_int_equal(cfg->clients[0].local_peer.len, 0);
	dump = dump_str(cfg);
	assert_contains(dump, "\nlocal-peer = auto\n");
	free(dump);
	free(cfg);

	for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
		snprintf(text, sizeof(text), CLIENT_HDR "local-peer = %s\n", ok[i].val);
		cfg = parse_ok(text);
		const struct iketcpd_addr *a = &cfg->clients[0].local_peer;
		if (ok[i].addr)
			assert_addr(a, ok[i].addr);
		else
			assert_int_equal(a->len, 0);
		assert_int_equal(iketcpd_config_check(cfg, NULL, 0), 0);
		dump = dump_str(cfg);
		snprintf(want, sizeof(want), "\nlocal-peer = %s\n", ok[i].dump);
		assert_contains(dump, want);
		free(dump);
		assert_roundtrip(cfg);
		free(cfg);
	}

	static const char *const bad_lp[] = {
		"vpn.example.com", "127.0.0.2:0",   "127.0.0.2:65536", "[::1",   "1.2.3",
		"auto:4500",       "127.0.0.0/8",   "127.0.0.2:",      "any",    "[::1]:x",
		"::1:4500:",       "127.0.0.2 500", "0x7f000001",      "[auto]", "127.0.0.2:-1",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad_lp); i++) {
		snprintf(text, sizeof(text), CLIENT_HDR "local-peer = %s\n", bad_lp[i]);
		expect_err(text, SRC ":4:", "local-peer", "is not auto or an address");
	}
	expect_err("[server]\nlocal-peer = 127.0.0.1\n", SRC ":2:", "local-peer",
		   "is a [client NAME] key");
	expect_err(CLIENT_HDR "local-peer = auto\nlocal-peer = 127.0.0.1\n",
		   SRC ":5:", "duplicates the value set on line 4", NULL);

	/* the flag is the same key */
	cfg = cfg_new();
	char err[512] = "";
	assert_int_equal(args(cfg, "client", err, sizeof(err), "--udp", "127.0.0.1:4501", "--peer",
			      "192.0.2.1", "--local-peer", "127.0.0.9", NULL),
			 0);
	assert_addr(&cfg->clients[0].local_peer, "127.0.0.9:0");
	assert_int_equal(args(cfg, "client", err, sizeof(err), "--udp", "127.0.0.1:4502", "--peer",
			      "192.0.2.1", "--local-peer=[::1]:500", NULL),
			 0);
	assert_addr(&cfg->clients[1].local_peer, "[::1]:500");
	assert_roundtrip(cfg);
	free(cfg);
	expect_args_err("client", "--local-peer", "is not auto or an address", "--local-peer",
			"host.example");
	expect_args_err("server", "--local-peer is a client option", NULL, "--local-peer",
			"127.0.0.1");

	/* the check refuses what the parser never writes */
	cfg = good_cfg();
	cfg->clients[0].local_peer.ss.ss_family = AF_INET; /* len 0 but not empty */
	expect_check_err(cfg, "client \"c\": local-peer is not auto or an address", NULL);
	cfg = good_cfg();
	cfg->clients[0].local_peer.ss.ss_family = AF_INET6;
	cfg->clients[0].local_peer.len = sizeof(struct sockaddr_in);
	expect_check_err(cfg, "local-peer is not auto or an address", NULL);
}

static void
test_prefix_match(void **state)
{
	(void)state;
	static const struct {
		const char *prefix, *addr;
		int match;
	} cases[] = {
		{"10.0.0.0/8", "10.255.1.2:1", 1},
		{"10.0.0.0/8", "11.0.0.1:1", 0},
		{"192.0.2.128/25", "192.0.2.200:1", 1},
		{"192.0.2.128/25", "192.0.2.127:1", 0},
		{"192.0.2.7", "192.0.2.7:9", 1},
		{"192.0.2.7", "192.0.2.6:9", 0},
		{"0.0.0.0/0", "203.0.113.1:1", 1},
		{"0.0.0.0/0", "[::1]:1", 0},
		{"2001:db8::/32", "[2001:db8:ffff::1]:1", 1},
		{"2001:db8::/33", "[2001:db8:8000::1]:1", 0},
		{"2001:db8::/33", "[2001:db8:7fff::1]:1", 1},
		{"::/0", "[2001:db8::1]:1", 1},
		{"::/0", "127.0.0.1:1", 0},
		{"2001:db8::1", "[2001:db8::1]:4500", 1},
		{"2001:db8::1", "[2001:db8::2]:4500", 0},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct iketcpd_prefix p;
		struct iketcpd_addr a;
		assert_int_equal(iketcpd_parse_prefix(cases[i].prefix, &p), 0);
		assert_int_equal(iketcpd_parse_addr(cases[i].addr, 0, &a), 0);
		if (iketcpd_prefix_match(&p, &a) != cases[i].match) {
			print_error("%s in %s: expected %d\n", cases[i].addr, cases[i].prefix,
				    cases[i].match);
			fail();
		}
	}
}

/* ---- dump / parse round trip ------------------------------------------------------------ */

static void
test_dump_text(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = parse_ok("[server]\n" CLIENT_HDR);
	char *text = dump_str(cfg);

	assert_contains(text, "verbose = 0\n");
	assert_true(strstr(text, "stats-socket") == NULL); /* unset: not written */
	assert_contains(text, "\n[server server]\nlisten = [::]:4500\nlisten = 0.0.0.0:4500\n"
			      "backend = 127.0.0.1:4500\nprefix-timeout = 5s\n");
	assert_contains(text, "session-timeout = 10m\n");
	assert_contains(text, "send-budget = 256k\nike-reserve = 128k\nmax-frame = 65535\n"
			      "tcp-keepalive = yes\ntcp-user-timeout = 1m\nsource-prefix4 = 32\n"
			      "source-prefix6 = 64\nmax-pending-per-source = 16\n"
			      "max-sessions-per-source = 64\nmax-half-open = 1024\n"
			      "max-half-open-per-source = 16\nhalf-open-timeout = 30s\n"
			      "frame-timeout = 10s\nidle-timeout = off\nbackend-source = auto\n");
	assert_contains(text, "\n[client client]\nudp = 127.0.0.1:4501\npeer = 192.0.2.1:4500\n"
			      "enable-tcp = fallback\nfallback-wait = 2s\nfallback-retry = 10m\n"
			      "max-bad-frames = 8\n");
	assert_true(strstr(text, "tcp-remoteport") == NULL); /* unset: the peer's port */
	assert_contains(text, "reconnect-min = 100ms\n");
	free(text);
	assert_roundtrip(cfg);
	free(cfg);

	/* an unchecked config dumps what it has (no udp, no peer) */
	cfg = cfg_new();
	cfg->nclients = 1;
	iketcpd_client_defaults(&cfg->clients[0], "x");
	text = dump_str(cfg);
	assert_true(strstr(text, "udp =") == NULL);
	assert_true(strstr(text, "\npeer =") == NULL); /* "local-peer = auto" is there */
	free(text);
	free(cfg);

	/* -v on top of "verbose = 3" (main.c adds them): the dump says 3 */
	cfg = parse_ok("verbose = 3\n[server]\n");
	cfg->verbose += 2;
	text = dump_str(cfg);
	assert_contains(text, "verbose = 3\n");
	free(text);
	free(cfg);

	/* a bad fd is not a crash */
	cfg = parse_ok("[server]\n");
	iketcpd_config_dump(cfg, -1);
	free(cfg);
}

static void
test_roundtrip_full(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = parse_ok("verbose = 1\n"
					   "stats-socket = /run/iketcpd/stats.sock\n"
					   "[server public]\n"
					   "listen = 0.0.0.0:443\n"
					   "listen = [::]:443\n"
					   "listen = [::ffff:192.0.2.1]:8443\n"
					   "backend = [::1]:4500\n"
					   "prefix-timeout = 1500ms\n"
					   "max-conns = 10000\n"
					   "max-conns-per-source = 100\n"
					   "max-pending = 1000\n"
					   "max-bad-frames = 3\n"
					   "session-timeout = 90s\n"
					   "max-sessions = 123457\n"
					   "send-budget = 1000000\n"
					   "ike-reserve = 3m\n"
					   "max-frame = 32k\n"
					   "tcp-keepalive = true\n"
					   "[server]\n"
					   "listen = 192.0.2.2\n"
					   "[client office]\n"
					   "udp = 127.0.0.1:4501\n"
					   "peer = [2001:db8::443]:443\n"
					   "enable-tcp = fallback\n"
					   "fallback-wait = 61s\n"
					   "connect-timeout = 2h\n"
					   "reconnect-min = 1001ms\n"
					   "reconnect-max = 23h\n"
					   "flow-timeout = 24h\n"
					   "max-flows = 1000000\n"
					   "send-budget = 4097\n"
					   "ike-reserve = 65535\n"
					   "max-frame = 64\n"
					   "tcp-keepalive = on\n"
					   "[client home]\n"
					   "udp = [::1]:4501\n"
					   "peer = home.example.net.\n"
					   "enable-tcp = no\n");
	assert_int_equal(cfg->nservers, 2);
	assert_int_equal(cfg->nclients, 2);
	assert_roundtrip(cfg);
	free(cfg);
}

/* Small deterministic PRNG (xorshift64*), local so the test needs nothing else. */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static uint32_t
rnd_range(uint64_t *s, uint32_t lo, uint32_t hi)
{
	return lo + (uint32_t)(rnd(s) % ((uint64_t)hi - lo + 1));
}

/* Appends a random duration in [lo, hi] ms, in a random unit that fits. */
static size_t
put_dur(char *b, size_t len, uint64_t *s, uint32_t lo, uint32_t hi)
{
	uint32_t ms = rnd_range(s, lo, hi);

	switch (rnd(s) % 4) {
	case 0:
		return (size_t)snprintf(b, len, "%ums", ms);
	case 1:
		return (size_t)snprintf(b, len, "%us", ms / 1000 ? ms / 1000 : 1);
	case 2:
		return (size_t)snprintf(b, len, "%u", ms / 1000 ? ms / 1000 : 1);
	default:
		return (size_t)snprintf(b, len, "%um", ms / 60000 ? ms / 60000 : 1);
	}
}

static void
test_roundtrip_random(void **state)
{
	(void)state;
	uint64_t seed = 0x1234567887654321ull;
	char *text = malloc(65536);
	assert_non_null(text);

	for (int iter = 0; iter < 300; iter++) {
		size_t o = 0, cap = 65536;
		int ns = (int)rnd_range(&seed, 0, 3), nc = (int)rnd_range(&seed, ns ? 0 : 1, 4);

		if (rnd(&seed) % 2)
			o += (size_t)snprintf(text + o, cap - o, "verbose = %u\n",
					      rnd_range(&seed, 0, 3));
		if (rnd(&seed) % 2)
			o += (size_t)snprintf(text + o, cap - o, "stats-socket = /run/x%u\n",
					      rnd_range(&seed, 0, 99));
		for (int i = 0; i < ns; i++) {
			uint32_t conns = rnd_range(&seed, 1, 1000000);
			int nl = (int)rnd_range(&seed, 1, IKETCPD_MAX_LISTEN);
			o += (size_t)snprintf(text + o, cap - o, "[server s%d]\n", i);
			for (int l = 0; l < nl; l++) {
				if (rnd(&seed) % 2)
					o += (size_t)snprintf(text + o, cap - o,
							      "listen = 192.0.2.%d:%d\n", i + 1,
							      l + 1);
				else
					o += (size_t)snprintf(text + o, cap - o,
							      "listen = [2001:db8::%d]:%d\n", i + 1,
							      l + 1);
			}
			o += (size_t)snprintf(text + o, cap - o, "backend = 127.0.0.%u:%u\n",
					      rnd_range(&seed, 0, 255), rnd_range(&seed, 1, 65535));
			o += (size_t)snprintf(text + o, cap - o, "prefix-timeout = ");
			o += put_dur(text + o, cap - o, &seed, 1, 86400000);
			o += (size_t)snprintf(
				text + o, cap - o,
				"\nmax-conns = %u\nmax-conns-per-source = %u\nmax-pending = %u\n"
				"max-bad-frames = %u\nmax-sessions = %u\nsend-budget = %uk\n"
				"ike-reserve = %u\nmax-frame = %u\ntcp-keepalive = %s\n"
				"session-timeout = ",
				conns, rnd_range(&seed, 1, conns), rnd_range(&seed, 1, conns),
				rnd_range(&seed, 1, 1000000), rnd_range(&seed, 1, 1000000),
				rnd_range(&seed, 4, 65536), rnd_range(&seed, 65535, 67108864),
				rnd_range(&seed, 64, 65535), (rnd(&seed) % 2) ? "yes" : "off");
			o += put_dur(text + o, cap - o, &seed, 1, 86400000);
			o += (size_t)snprintf(text + o, cap - o, "\n");
		}
		for (int i = 0; i < nc; i++) {
			static const char *const modes[] = {"yes", "no", "fallback"};
			o += (size_t)snprintf(
				text + o, cap - o,
				"[client c%d]\nudp = 127.0.0.1:%d\npeer = %s:%u\n"
				"enable-tcp = %s\nmax-flows = %u\nsend-budget = %u\n"
				"ike-reserve = %um\nmax-frame = %uk\n"
				"reconnect-min = 1ms\nreconnect-max = ",
				i, 1000 + i, (rnd(&seed) % 2) ? "gw.example" : "[2001:db8::7]",
				rnd_range(&seed, 1, 65535), modes[rnd(&seed) % 3],
				rnd_range(&seed, 1, 1000000), rnd_range(&seed, 4096, 67108864),
				rnd_range(&seed, 1, 64), rnd_range(&seed, 1, 63));
			o += put_dur(text + o, cap - o, &seed, 1, 86400000);
			o += (size_t)snprintf(text + o, cap - o, "\nflow-timeout = ");
			o += put_dur(text + o, cap - o, &seed, 1, 86400000);
			o += (size_t)snprintf(text + o, cap - o, "\nfallback-wait = ");
			o += put_dur(text + o, cap - o, &seed, 1, 86400000);
			o += (size_t)snprintf(text + o, cap - o, "\nfallback-retry = ");
			o += put_dur(text + o, cap - o, &seed, 1, 86400000);
			o += (size_t)snprintf(
				text + o, cap - o, "\ntcp-remoteport = %u\nmax-bad-frames = %u",
				rnd_range(&seed, 1, 65535), rnd_range(&seed, 1, 1000000));
			o += (size_t)snprintf(text + o, cap - o, "\nconnect-timeout = ");
			o += put_dur(text + o, cap - o, &seed, 1, 86400000);
			o += (size_t)snprintf(text + o, cap - o, "\n");
		}
		assert_true(o < cap);
		struct iketcpd_cfg *cfg = parse_ok(text);
		assert_int_equal(cfg->nservers, ns);
		assert_int_equal(cfg->nclients, nc);
		assert_roundtrip(cfg);
		free(cfg);
	}
	free(text);
}

/* ---- iketcpd_parse_addr() / iketcpd_addr_str() ------------------------------------------ */

static void
test_parse_addr_valid(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		uint16_t def;
		const char *out;
		int family;
	} v[] = {
		{"1.2.3.4:5", 4500, "1.2.3.4:5", AF_INET},
		{"1.2.3.4", 4500, "1.2.3.4:4500", AF_INET},
		{"0.0.0.0:1", 0, "0.0.0.0:1", AF_INET},
		{"255.255.255.255:65535", 0, "255.255.255.255:65535", AF_INET},
		{"[::1]:5", 4500, "[::1]:5", AF_INET6},
		{"[::1]", 4500, "[::1]:4500", AF_INET6},
		{"::1", 4500, "[::1]:4500", AF_INET6},
		{"::", 7, "[::]:7", AF_INET6},
		{"[::]:65535", 0, "[::]:65535", AF_INET6},
		{"2001:db8::1:5", 9, "[2001:db8::1:5]:9", AF_INET6}, /* bare: all address */
		{"[2001:DB8:0:0:0:0:0:1]:443", 0, "[2001:db8::1]:443", AF_INET6},
		{"::ffff:1.2.3.4", 1, "[::ffff:1.2.3.4]:1", AF_INET6},
		{"[::ffff:1.2.3.4]:2", 0, "[::ffff:1.2.3.4]:2", AF_INET6},
		{"1.2.3.4:00080", 0, "1.2.3.4:80", AF_INET},
	};

	for (size_t i = 0; i < ARRAY_LEN(v); i++) {
		struct iketcpd_addr a;
		char buf[64];

		memset(&a, 0x77, sizeof(a));
		if (iketcpd_parse_addr(v[i].in, v[i].def, &a) != 0) {
			print_error("\"%s\" refused\n", v[i].in);
			fail();
		}
		assert_int_equal(a.ss.ss_family, v[i].family);
		assert_int_equal(a.len, v[i].family == AF_INET ? sizeof(struct sockaddr_in)
							       : sizeof(struct sockaddr_in6));
		assert_string_equal(iketcpd_addr_str(&a, buf, sizeof(buf)), v[i].out);
		/* the formatted form parses to the same address */
		struct iketcpd_addr b;
		assert_int_equal(iketcpd_parse_addr(buf, 0, &b), 0);
		assert_memory_equal(&a.ss, &b.ss, a.len);
	}

	/* the sockaddr is usable as is: port in network order, rest zeroed */
	struct iketcpd_addr a;
	struct sockaddr_in sin;
	assert_int_equal(iketcpd_parse_addr("10.0.0.1:4500", 0, &a), 0);
	memcpy(&sin, &a.ss, sizeof(sin));
	assert_int_equal(sin.sin_port, htons(4500));
	assert_int_equal(sin.sin_addr.s_addr, htonl(0x0a000001));
}

static void
test_parse_addr_invalid(void **state)
{
	(void)state;
	static const char *const ko[] = {
		"",
		":",
		"1.2.3.4:",
		"1.2.3.4:0",
		"1.2.3.4:65536",
		"1.2.3.4:99999999999999999999999",
		"1.2.3.4:-1",
		"1.2.3.4:+5",
		"1.2.3.4:5x",
		"1.2.3.4: 5",
		"1.2.3",
		"1.2.3.256",
		"1.2.3.4.5",
		" 1.2.3.4",
		"1.2.3.4 ",
		"0x7f.0.0.1",
		"localhost:5",
		"localhost",
		"[1.2.3.4]:5",
		"[::1]5",
		"[::1]:",
		"[::1]:0",
		"[::1",
		"::1]",
		"[]:5",
		"[]",
		"[[::1]]:5",
		"fe80::1%eth0",
		"[fe80::1%eth0]:5",
		"[::1]:5:6",
		":::",
		"1:2",
		"[::1]:65536",
	};
	struct iketcpd_addr a, snap;
	char longs[2000];

	memset(&a, 0x77, sizeof(a));
	snap = a;
	for (size_t i = 0; i < ARRAY_LEN(ko); i++) {
		if (iketcpd_parse_addr(ko[i], 4500, &a) != -1) {
			print_error("\"%s\" accepted\n", ko[i]);
			fail();
		}
		assert_memory_equal(&a, &snap, sizeof(a)); /* untouched */
	}
	/* default_port 0: the port is required */
	assert_int_equal(iketcpd_parse_addr("1.2.3.4", 0, &a), -1);
	assert_int_equal(iketcpd_parse_addr("[::1]", 0, &a), -1);
	assert_int_equal(iketcpd_parse_addr("::1", 0, &a), -1);
	assert_int_equal(iketcpd_parse_addr("1.2.3.4:1", 0, &a), 0);
	/* NULL and very long input */
	assert_int_equal(iketcpd_parse_addr(NULL, 4500, &a), -1);
	assert_int_equal(iketcpd_parse_addr("1.2.3.4", 4500, NULL), -1);
	memset(longs, '1', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	assert_int_equal(iketcpd_parse_addr(longs, 4500, &a), -1);
	memcpy(longs, "1.2.3.4:", 8); /* "1.2.3.4:111..." with a huge port */
	assert_int_equal(iketcpd_parse_addr(longs, 4500, &a), -1);
}

static void
test_addr_str(void **state)
{
	(void)state;
	struct iketcpd_addr a;
	char buf[64], small[8];

	assert_int_equal(iketcpd_parse_addr("[2001:db8:1:2:3:4:5:6]:65535", 0, &a), 0);
	assert_string_equal(iketcpd_addr_str(&a, buf, sizeof(buf)), "[2001:db8:1:2:3:4:5:6]:65535");
	/* truncated, NUL-terminated */
	assert_ptr_equal(iketcpd_addr_str(&a, small, sizeof(small)), small);
	assert_string_equal(small, "[2001:d");
	/* unset or broken addresses */
	memset(&a, 0, sizeof(a));
	assert_string_equal(iketcpd_addr_str(&a, buf, sizeof(buf)), "(none)");
	assert_string_equal(iketcpd_addr_str(NULL, buf, sizeof(buf)), "(none)");
	assert_int_equal(iketcpd_parse_addr("1.2.3.4:5", 0, &a), 0);
	a.len = 3;
	assert_string_equal(iketcpd_addr_str(&a, buf, sizeof(buf)), "(none)");
	assert_null(iketcpd_addr_str(&a, NULL, 0));
}

/* ---- iketcpd_config_parse_file() -------------------------------------------------------- */

/* Writes len bytes to a new temporary file; returns its path (static buffer copy). */
static void
write_tmp(char *path, size_t pathlen, const char *data, size_t len)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	snprintf(path, pathlen, "%s/test_config.XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void
test_parse_file(void **state)
{
	(void)state;
	static const char text[] = "# sample\n[server]\nmax-conns = 777\n";
	struct iketcpd_cfg *cfg = cfg_new();
	char path[512], err[512] = "", want[600];

	write_tmp(path, sizeof(path), text, strlen(text));
	assert_int_equal(iketcpd_config_parse_file(cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg->servers[0].max_conns, 777);
	unlink(path);

	/* errors name the file */
	write_tmp(path, sizeof(path), "[server]\nmax-conns = 0\n", 23);
	assert_int_equal(iketcpd_config_parse_file(cfg, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:2: max-conns: \"0\" is out of range", path);
	assert_contains(err, want);
	unlink(path);
	assert_int_equal(cfg->nservers, 1);
	free(cfg);
}

/* tls-cert, tls-key, tls-ca-file: relative to the file's directory (made
 * absolute), to the current directory on the command line, kept as written
 * by parse_buf (no directory). */
static void
test_relative_file_names(void **state)
{
	(void)state;
	static const char text[] = "[server]\nlisten-tls = 127.0.0.1:443\ntls-cert = c.pem\n"
				   "tls-key = /abs/k.pem\n[client a]\nudp = 127.0.0.1:1\npeer = x\n"
				   "tls = yes\ntls-ca-file = sub/../ca.pem\n";
	struct iketcpd_cfg *cfg = cfg_new();
	char tmpl[512], dir[PATH_MAX], path[PATH_MAX + 16], want[PATH_MAX + 32], cwd[PATH_MAX];
	char err[512] = "";
	const char *t = getenv("TMPDIR");
	FILE *f;

	snprintf(tmpl, sizeof(tmpl), "%s/test_config.XXXXXX", t && *t ? t : "/tmp");
	assert_non_null(mkdtemp(tmpl));
	assert_non_null(realpath(tmpl, dir));
	snprintf(path, sizeof(path), "%s/iketcpd.conf", tmpl);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
	assert_int_equal(iketcpd_config_parse_file(cfg, path, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/c.pem", dir);
	assert_string_equal(cfg->servers[0].tls_cert, want);
	assert_string_equal(cfg->servers[0].tls_key, "/abs/k.pem");
	snprintf(want, sizeof(want), "%s/sub/../ca.pem", dir);
	assert_string_equal(cfg->clients[0].tls_ca_file, want);
	unlink(path);
	rmdir(tmpl);
	free(cfg);

	cfg = parse_ok(text);
	assert_string_equal(cfg->servers[0].tls_cert, "c.pem");
	free(cfg);

	cfg = cfg_new();
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(args(cfg, "server", err, sizeof(err), "--listen-tls", "127.0.0.1:443",
			      "--tls-cert", "c.pem", "--tls-key", "k.pem", NULL),
			 0);
	snprintf(want, sizeof(want), "%s/c.pem", strcmp(cwd, "/") ? cwd : "");
	assert_string_equal(cfg->servers[0].tls_cert, want);
	free(cfg);

	/* the absolute name must fit too */
	char longname[250];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cfg = cfg_new();
	assert_int_equal(args(cfg, "server", err, sizeof(err), "--tls-cert", longname, NULL), -1);
	assert_contains(err, "is too long for a file name in ");
	free(cfg);
}

static void
test_parse_file_errors(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = cfg_new();
	char path[512], err[512] = "", want[600];
	const char *dir = getenv("TMPDIR");
	char *big;

	assert_int_equal(
		iketcpd_config_parse_file(cfg, "/nonexistent/iketcpd.conf", err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/iketcpd.conf: No such file or directory");

	assert_int_equal(
		iketcpd_config_parse_file(cfg, dir && *dir ? dir : "/tmp", err, sizeof(err)), -1);
	assert_contains(err, ": Is a directory");
	assert_int_equal(iketcpd_config_parse_file(cfg, NULL, err, sizeof(err)), -1);

	/* exactly 1 MiB is read; one byte more is refused before parsing */
	big = malloc(1024 * 1024 + 1);
	assert_non_null(big);
	memset(big, '\n', 1024 * 1024 + 1);
	memcpy(big, "[server]\n", 9);
	write_tmp(path, sizeof(path), big, 1024 * 1024);
	assert_int_equal(iketcpd_config_parse_file(cfg, path, err, sizeof(err)), 0);
	unlink(path);
	write_tmp(path, sizeof(path), big, 1024 * 1024 + 1);
	assert_int_equal(iketcpd_config_parse_file(cfg, path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: file too large", path);
	assert_contains(err, want);
	unlink(path);
	free(big);
	assert_int_equal(cfg->nservers, 1);
	free(cfg);
}

/* A pipe has no size: the limit must still hold while reading. */
static void
test_parse_file_pipe(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = cfg_new();
	char path[64], err[512] = "";
	int fds[2];

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "[server]\nmax-frame = 1k\n", 24), 24);
	close(fds[1]);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
	if (access(path, R_OK) != 0) {
		close(fds[0]);
		free(cfg);
		skip();
	}
	assert_int_equal(iketcpd_config_parse_file(cfg, path, err, sizeof(err)), 0);
	assert_int_equal(cfg->servers[0].max_frame, 1024);
	close(fds[0]);
	free(cfg);
}

/* A failed parse (like a bad reload) leaves the previous configuration. */
static void
test_failure_keeps_cfg(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = parse_ok("verbose = 2\n[server]\n"), *snap = cfg_new();
	static const char bad_text[] = "verbose = 1\n[server more]\nlisten = 192.0.2.1:1\n"
				       "max-conns = 5\nmax-frame = huge\n";
	char err[512];

	memcpy(snap, cfg, sizeof(*cfg));
	assert_int_equal(
		iketcpd_config_parse_buf(cfg, SRC, bad_text, strlen(bad_text), err, sizeof(err)),
		-1);
	assert_contains(err, SRC ":5: max-frame: \"huge\"");
	assert_memory_equal(cfg, snap, sizeof(*cfg));
	/* a good one appends */
	assert_int_equal(
		iketcpd_config_parse_buf(cfg, SRC, bad_text,
					 (size_t)(strstr(bad_text, "max-conns") - bad_text), err,
					 sizeof(err)),
		0);
	assert_int_equal(cfg->nservers, 2);
	assert_string_equal(cfg->servers[1].name, "more");
	assert_int_equal(cfg->verbose, 1);
	free(cfg);
	free(snap);
}

/* iketcpd server|client --help describes every key of the table. */
static void
test_every_key_has_help(void **state)
{
	(void)state;
	for (size_t i = 0; i < kw_count; i++) {
		const char *t = kw_help_text(kwtab[i].name);
		if (t == NULL || t[0] == '\0')
			fail_msg("key %s has no --help line (daemon/config_help.c)", kwtab[i].name);
		assert_null(strchr(t, '\n'));
	}
	assert_null(kw_help_text("no-such-key"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key_has_help),
		cmocka_unit_test(test_relative_file_names),
		cmocka_unit_test(test_init_is_empty),
		cmocka_unit_test(test_server_defaults),
		cmocka_unit_test(test_client_defaults),
		cmocka_unit_test(test_defaults_truncate_name),
		cmocka_unit_test(test_minimal_server_is_defaults),
		cmocka_unit_test(test_minimal_client),
		cmocka_unit_test(test_comments_and_blanks),
		cmocka_unit_test(test_crlf_and_no_final_newline),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_section_header_errors),
		cmocka_unit_test(test_name_max_len_ok),
		cmocka_unit_test(test_globals),
		cmocka_unit_test(test_stats_access_metrics_listen),
		cmocka_unit_test(test_user_group),
		cmocka_unit_test(test_max_memory),
		cmocka_unit_test(test_workers),
		cmocka_unit_test(test_stats_socket_length),
		cmocka_unit_test(test_numeric_keys_valid),
		cmocka_unit_test(test_value_keys_invalid),
		cmocka_unit_test(test_bool_keys),
		cmocka_unit_test(test_enable_tcp),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_backend_and_udp),
		cmocka_unit_test(test_peer),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_key_in_wrong_section),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_line_errors),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_too_many_sections),
		cmocka_unit_test(test_bad_value_is_quoted_printably),
		cmocka_unit_test(test_check_ok),
		cmocka_unit_test(test_check_failures),
		cmocka_unit_test(test_check_from_file),
		cmocka_unit_test(test_args_server),
		cmocka_unit_test(test_args_client),
		cmocka_unit_test(test_args_errors),
		cmocka_unit_test(test_args_match_file),
		cmocka_unit_test(test_file_then_args_append),
		cmocka_unit_test(test_dump_text),
		cmocka_unit_test(test_roundtrip_full),
		cmocka_unit_test(test_roundtrip_random),
		cmocka_unit_test(test_parse_addr_valid),
		cmocka_unit_test(test_parse_addr_invalid),
		cmocka_unit_test(test_addr_str),
		cmocka_unit_test(test_parse_file),
		cmocka_unit_test(test_parse_file_errors),
		cmocka_unit_test(test_parse_file_pipe),
		cmocka_unit_test(test_failure_keeps_cfg),
		cmocka_unit_test(test_tls_server_keys),
		cmocka_unit_test(test_tls_client_keys),
		cmocka_unit_test(test_tls_args),
		cmocka_unit_test(test_budget_keys),
		cmocka_unit_test(test_proxy_protocol_keys),
		cmocka_unit_test(test_prefix_match),
		cmocka_unit_test(test_local_peer),
		cmocka_unit_test(test_full_tunnel_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
