/*
 * Unit tests for daemon/counters.c: each mode's table names every field of
 * its stats and gauge structs exactly once, under a unique key, and the
 * stats socket keeps the keys and order that tools and tests read.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "counters.h"
#include "server.h"

/* The stats socket's keys before the counter tables, in their order: a
 * consumer that diffs two dumps or reads by key keeps working. */
static const char *const server_keys_before[] = {
	"connections",
	"connections_pending",
	"sessions",
	"accepted",
	"refused_total",
	"refused_source",
	"refused_pending",
	"frames_ike",
	"frames_esp",
	"frames_empty",
	"frames_keepalive",
	"frames_runt",
	"unroutable",
	"to_backend",
	"to_backend_drops",
	"from_backend",
	"backend_keepalives",
	"sendq_drops",
	"no_conn_drops",
	"sessions_created",
	"sessions_expired",
	"sessions_refused",
	"path_switches",
	"half_open",
	"refused_sessions_source",
	"refused_pending_source",
	"pending_evicted",
	"half_open_evicted",
	"half_open_expired",
	"sessions_evicted",
	"joins",
	"joins_ambiguous",
	"resumes",
	"replays_ignored",
	"esp_unroutable",
	"ike_unroutable",
	"accept_paused",
	"retransmits_dropped",
	"held_drops",
	"cookie_requests",
	"sniffed_tls",
	"sniffed_plain",
	"tls_handshakes",
	"tls_resumed",
	"tls_handshakes_failed",
	"tls_handshake_timeouts",
	"refused_proxy_source",
	"proxy_headers",
	"proxy_local",
	"closed_eof",
	"closed_read_error",
	"closed_prefix_timeout",
	"closed_bad_prefix",
	"closed_bad_length",
	"closed_too_big",
	"closed_bad_frames",
	"closed_write_error",
	"closed_no_memory",
	"closed_shutdown",
	"closed_tls_handshake",
	"closed_tls_handshake_timeout",
	"closed_proxy_header",
	"closed_proxy_source_limit",
	"closed_replaced_idle",
	"closed_health_check",
	"closed_frame_timeout",
	"closed_not_joined",
	"closed_idle",
	"closed_evicted",
	"closed_half_open",
	"closed_cookie_timeout",
};
static const char *const client_keys_before[] = {
	"flows",
	"connections",
	"from_local",
	"local_keepalives",
	"to_peer_frames",
	"unroutable",
	"udp_foreign_drops",
	"retransmits_dropped",
	"requests_resent",
	"sendq_drops",
	"from_peer_frames",
	"from_peer_runts",
	"to_local",
	"to_local_drops",
	"connects",
	"connect_failures",
	"disconnects",
	"fallbacks_to_tcp",
	"fallback_sticky",
	"closed_bad_frames",
	"udp_answers",
	"flows_created",
	"flows_expired",
	"tls_handshakes",
	"tls_resumed",
	"tls_failures",
	"proxy_failures",
	"resolves",
	"resolve_failures",
	"spi_attributed",
	"spi_guessed",
	"spi_moved",
};

struct dump {
	char kind[16], name[16], key[96];
	uint64_t value;
};

/* Prints set with every uint64_t slot of the stats struct holding its slot
 * number + 1 and of the gauge struct 10000 + slot number, and parses the
 * lines back. Returns the number of lines. */
static size_t
dump(const struct ctr_set *set, size_t stats_size, size_t gauges_size, struct dump *out, size_t max)
{
	uint64_t *st = calloc(1, stats_size), *g = calloc(1, gauges_size);
	char *buf = NULL, *line, *save = NULL;
	size_t len = 0, n = 0;
	FILE *fp = open_memstream(&buf, &len);

	assert_non_null(st);
	assert_non_null(g);
	assert_non_null(fp);
	for (size_t i = 0; i < stats_size / sizeof(uint64_t); i++)
		st[i] = i + 1;
	for (size_t i = 0; i < gauges_size / sizeof(uint64_t); i++)
		g[i] = 10000 + i;
	ctr_print(set, "x", st, g, fp);
	assert_int_equal(fclose(fp), 0);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long v;
		assert_true(n < max);
		assert_int_equal(sscanf(line, "%15s %15s %95s %llu", out[n].kind, out[n].name,
					out[n].key, &v),
				 4);
		assert_string_equal(out[n].kind, set->kind);
		assert_string_equal(out[n].name, "x");
		out[n++].value = v;
	}
	free(buf);
	free(st);
	free(g);
	return n;
}

/* Every slot of both structs appears exactly once, under a unique key. */
static void
check_complete(const struct ctr_set *set, size_t stats_size, size_t gauges_size)
{
	size_t nst = stats_size / sizeof(uint64_t), ng = gauges_size / sizeof(uint64_t);
	struct dump d[256];
	size_t n = dump(set, stats_size, gauges_size, d, 256);

	assert_int_equal(ctr_check(set), 0);
	assert_int_equal(n, ctr_count(set));
	assert_int_equal(n, nst + ng);
	for (size_t i = 0; i < n; i++) {
		uint64_t v = d[i].value;
		assert_true((v >= 1 && v <= nst) || (v >= 10000 && v < 10000 + ng));
		for (size_t j = 0; j < i; j++) {
			assert_string_not_equal(d[i].key, d[j].key);
			assert_true(d[i].value != d[j].value);
		}
	}
}

static void
test_server_table_complete(void **state)
{
	(void)state;
	check_complete(&server_counters, sizeof(struct server_stats), sizeof(struct server_gauges));
}

static void
test_client_table_complete(void **state)
{
	(void)state;
	check_complete(&client_counters, sizeof(struct client_stats), sizeof(struct client_gauges));
}

/* The keys of before are all there, in the same order (new keys may come
 * in between). */
static void
check_order(const struct ctr_set *set, size_t stats_size, size_t gauges_size,
	    const char *const *before, size_t nbefore)
{
	struct dump d[256];
	size_t n = dump(set, stats_size, gauges_size, d, 256), j = 0;

	for (size_t i = 0; i < n && j < nbefore; i++)
		if (!strcmp(d[i].key, before[j]))
			j++;
	if (j < nbefore)
		fail_msg("%s key %s missing or out of order", set->kind, before[j]);
}

static void
test_keys_kept(void **state)
{
	(void)state;
	check_order(&server_counters, sizeof(struct server_stats), sizeof(struct server_gauges),
		    server_keys_before, TU_ARRAY_LEN(server_keys_before));
	check_order(&client_counters, sizeof(struct client_stats), sizeof(struct client_gauges),
		    client_keys_before, TU_ARRAY_LEN(client_keys_before));
}

/* Each close reason's slot of the stats struct's closed array (at
 * closed_off) is the closed_<key> line, and no other line. */
static void
check_reasons(const struct ctr_set *set, size_t stats_size, size_t closed_off, size_t gauges_size)
{
	uint64_t *st = calloc(1, stats_size), *g = calloc(1, gauges_size);
	char key[96], want[96];

	assert_non_null(st);
	assert_non_null(g);
	for (size_t r = 0; r < set->nreasons; r++) {
		memset(st, 0, stats_size);
		st[closed_off / sizeof(uint64_t) + r] = 7;
		snprintf(want, sizeof(want), "closed_%s", set->reasons[r].key);
		int found = 0;
		for (size_t i = 0; i < ctr_count(set); i++) {
			ctr_key(set, i, key, sizeof(key));
			assert_int_equal(ctr_value(set, i, st, g), strcmp(key, want) ? 0 : 7);
			found += !strcmp(key, want);
		}
		assert_int_equal(found, 1);
	}
	free(st);
	free(g);
}

static void
test_reason_keys(void **state)
{
	(void)state;
	check_reasons(&server_counters, sizeof(struct server_stats),
		      offsetof(struct server_stats, closed), sizeof(struct server_gauges));
	check_reasons(&client_counters, sizeof(struct client_stats),
		      offsetof(struct client_stats, closed), sizeof(struct client_gauges));
	assert_int_equal(server_counters.nreasons, CR_COUNT);
	assert_int_equal(client_counters.nreasons, CCR_COUNT);
	assert_string_equal(server_close_reasons[CR_BAD_FRAMES].key, "bad_frames");
	assert_string_equal(client_close_reasons[CCR_BAD_FRAMES].key, "bad_frames");
	assert_string_equal(client_close_reasons[CCR_EOF].key, "eof");
}

/* ctr_check finds a duplicate key and a row without help. */
static void
test_check_rejects(void **state)
{
	static const struct ctr_row rows[] = {
		{"a", 0, 0, 0, "first"},
		{"b_", 8, CTR_REASONS, 0, "by reason"},
		{"b_x", 24, 0, 0, "same key as a reason"},
	};
	static const struct ctr_reason reasons[] = {{"w", "w", "w"}, {"x", "x", "x"}};
	static const struct ctr_group groups[] = {{"g", 0}};
	struct ctr_set set = {"t", rows, 2, reasons, 2, groups, 1};
	(void)state;

	assert_int_equal(ctr_check(&set), 0);
	assert_int_equal(ctr_count(&set), 3);
	set.nrows = 3;
	assert_int_equal(ctr_check(&set), -1 - 3);
	static const struct ctr_row nohelp[] = {{"a", 0, 0, 0, ""}};
	struct ctr_set bad = {"t", nohelp, 1, NULL, 0, groups, 1};
	assert_int_equal(ctr_check(&bad), -1);
}

/* The Prometheus text of a small set over two sections, byte for byte:
 * HELP and TYPE once per metric, samples of both sections together, the
 * counters' "_total" (not doubled), the reasons as labels, escaped label
 * values. */
static void
test_prometheus_exact(void **state)
{
	struct st {
		uint64_t a, b_total, c[2];
	};
	struct ga {
		uint64_t g;
	};
	static const struct ctr_row rows[] = {
		{"g", offsetof(struct ga, g), CTR_GAUGE, 0, "a level"},
		{"a", offsetof(struct st, a), 0, 0, "an a\\b"},
		{"b_total", offsetof(struct st, b_total), 0, 0, "b"},
		{"closed_", offsetof(struct st, c), CTR_REASONS | CTR_NONZERO, 0,
		 "closed, by reason"},
	};
	static const struct ctr_reason reasons[] = {{"eof", "eof", "e"}, {"idle", "idle", "i"}};
	static const struct ctr_group groups[] = {{"g", 0}};
	const struct ctr_set set = {"server", rows, 4, reasons, 2, groups, 1};
	const struct st s1 = {1, 2, {3, 4}}, s2 = {5, 6, {7, 8}};
	const struct ga g1 = {9}, g2 = {10};
	const char *names[] = {"one", "t\"w\\o\n"};
	const void *st[] = {&s1, &s2}, *gs[] = {&g1, &g2};
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	(void)state;

	assert_non_null(fp);
	ctr_prometheus(&set, 2, names, st, gs, fp);
	assert_int_equal(fclose(fp), 0);
	assert_string_equal(
		buf,
		"# HELP iketcpd_server_g a level\n"
		"# TYPE iketcpd_server_g gauge\n"
		"iketcpd_server_g{section=\"one\",mode=\"server\"} 9\n"
		"iketcpd_server_g{section=\"t\\\"w\\\\o\\n\",mode=\"server\"} 10\n"
		"# HELP iketcpd_server_a_total an a\\\\b\n"
		"# TYPE iketcpd_server_a_total counter\n"
		"iketcpd_server_a_total{section=\"one\",mode=\"server\"} 1\n"
		"iketcpd_server_a_total{section=\"t\\\"w\\\\o\\n\",mode=\"server\"} 5\n"
		"# HELP iketcpd_server_b_total b\n"
		"# TYPE iketcpd_server_b_total counter\n"
		"iketcpd_server_b_total{section=\"one\",mode=\"server\"} 2\n"
		"iketcpd_server_b_total{section=\"t\\\"w\\\\o\\n\",mode=\"server\"} 6\n"
		"# HELP iketcpd_server_closed_total closed, by reason\n"
		"# TYPE iketcpd_server_closed_total counter\n"
		"iketcpd_server_closed_total{section=\"one\",mode=\"server\",reason=\"eof\"} 3\n"
		"iketcpd_server_closed_total{section=\"one\",mode=\"server\",reason=\"idle\"} 4\n"
		"iketcpd_server_closed_total{section=\"t\\\"w\\\\o\\n\",mode=\"server\","
		"reason=\"eof\"} 7\n"
		"iketcpd_server_closed_total{section=\"t\\\"w\\\\o\\n\",mode=\"server\","
		"reason=\"idle\"} 8\n");
	free(buf);
}

/* The real tables: every metric name is valid and unique (a key whose
 * "_total" form meets another key's would make two metrics one). */
static void
test_prometheus_names_unique(void **state)
{
	const struct ctr_set *sets[] = {&server_counters, &client_counters};
	(void)state;
	for (size_t k = 0; k < 2; k++) {
		static const uint64_t zero[256];
		const char *names[] = {"s"};
		const void *z[] = {zero};
		char *buf = NULL, *save = NULL;
		size_t len = 0, n = 0;
		char seen[128][96];
		FILE *fp = open_memstream(&buf, &len);
		assert_non_null(fp);
		ctr_prometheus(sets[k], 1, names, z, z, fp);
		assert_int_equal(fclose(fp), 0);
		for (char *ln = strtok_r(buf, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
			char name[96];
			if (sscanf(ln, "# TYPE %95s", name) != 1)
				continue;
			for (const char *c = name; *c; c++)
				assert_true((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
					    *c == '_');
			for (size_t i = 0; i < n; i++)
				assert_string_not_equal(seen[i], name);
			assert_true(n < 128);
			snprintf(seen[n++], sizeof(seen[0]), "%s", name);
		}
		assert_true(n > 10);
		free(buf);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_table_complete),
		cmocka_unit_test(test_client_table_complete),
		cmocka_unit_test(test_keys_kept),
		cmocka_unit_test(test_reason_keys),
		cmocka_unit_test(test_check_rejects),
		cmocka_unit_test(test_prometheus_exact),
		cmocka_unit_test(test_prometheus_names_unique),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
