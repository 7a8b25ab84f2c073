/*
 * Unit tests for daemon/statmerge.c: the supervisor's merge of the
 * workers' stats, status and prometheus answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statmerge.h"

static char *
merge(enum statsock_req req, const char *const *in, size_t n)
{
	size_t len[8];
	char *out = NULL;
	size_t olen = 0;
	FILE *fp = open_memstream(&out, &olen);

	assert_non_null(fp);
	for (size_t i = 0; i < n; i++)
		len[i] = strlen(in[i]);
	assert_int_equal(statmerge(req, in, len, n, fp), 0);
	fclose(fp);
	return out;
}

/* Same keys summed in the first answer's order; a key only one answer
 * has is kept at its first place; a line without a number kept once. */
static void
test_stats_summed(void **state)
{
	(void)state;
	const char *in[] = {
		"iketcpd 1.0\nglobal iketcpd mem_used 0\nglobal iketcpd mem_limit 0\n",
		"iketcpd 1.0\nglobal iketcpd mem_used 10\nglobal iketcpd mem_limit 100\n"
		"server gw connections 3\nserver gw accepted 18446744073709551615\n",
		"iketcpd 1.0\nglobal iketcpd mem_used 5\nglobal iketcpd mem_limit 100\n"
		"server gw connections 4\nserver gw accepted 2\nclient c flows 1",
	};
	char *out = merge(STATSOCK_STATS, in, 3);
	assert_string_equal(out, "iketcpd 1.0\nglobal iketcpd mem_used 15\n"
				 "global iketcpd mem_limit 200\nserver gw connections 7\n"
				 "server gw accepted 18446744073709551615\nclient c flows 1\n");
	free(out);
}

/* A metric's samples stay under its HELP and TYPE lines even when a later
 * answer brings a sample the first did not have; build_info once. */
static void
test_prometheus_grouped(void **state)
{
	(void)state;
	const char *in[] = {
		"# HELP iketcpd_build_info v\n# TYPE iketcpd_build_info gauge\n"
		"iketcpd_build_info{version=\"1\"} 1\n",
		"# HELP iketcpd_build_info v\n# TYPE iketcpd_build_info gauge\n"
		"iketcpd_build_info{version=\"1\"} 1\n"
		"# HELP iketcpd_server_sessions s\n# TYPE iketcpd_server_sessions gauge\n"
		"iketcpd_server_sessions{section=\"a\",mode=\"server\"} 1\n"
		"# HELP iketcpd_x_total x\n# TYPE iketcpd_x_total counter\niketcpd_x_total 2\n",
		"# HELP iketcpd_build_info v\n# TYPE iketcpd_build_info gauge\n"
		"iketcpd_build_info{version=\"1\"} 1\n"
		"# HELP iketcpd_server_sessions s\n# TYPE iketcpd_server_sessions gauge\n"
		"iketcpd_server_sessions{section=\"a\",mode=\"server\"} 2\n"
		"iketcpd_server_sessions{section=\"b\",mode=\"server\"} 5\n"
		"# HELP iketcpd_x_total x\n# TYPE iketcpd_x_total counter\niketcpd_x_total 3\n",
	};
	char *out = merge(STATSOCK_PROMETHEUS, in, 3);
	assert_string_equal(
		out, "# HELP iketcpd_build_info v\n# TYPE iketcpd_build_info gauge\n"
		     "iketcpd_build_info{version=\"1\"} 1\n"
		     "# HELP iketcpd_server_sessions s\n# TYPE iketcpd_server_sessions gauge\n"
		     "iketcpd_server_sessions{section=\"a\",mode=\"server\"} 3\n"
		     "iketcpd_server_sessions{section=\"b\",mode=\"server\"} 5\n"
		     "# HELP iketcpd_x_total x\n# TYPE iketcpd_x_total counter\n"
		     "iketcpd_x_total 5\n");
	free(out);
}

/* status: the heading once, then every answer's rows. */
static void
test_status_concatenated(void **state)
{
	(void)state;
	const char *in[] = {
		"iketcpd 1.0 status\n",
		"iketcpd 1.0 status\nserver gw session 1 client=a\n",
		"iketcpd 1.0 status\nserver gw session 1 client=b\nserver gw conn 2",
	};
	char *out = merge(STATSOCK_STATUS, in, 3);
	assert_string_equal(out, "iketcpd 1.0 status\nserver gw session 1 client=a\n"
				 "server gw session 1 client=b\nserver gw conn 2\n");
	free(out);
}

/* Nothing, empty lines, lines of one word, and a value too large to be a
 * number: kept as text, once. */
static void
test_odd_lines(void **state)
{
	(void)state;
	const char *in[] = {"", "\n\nword\nk 123456789012345678901\n",
			    "word\nk 123456789012345678901\n"};
	char *out = merge(STATSOCK_STATS, in, 3);
	assert_string_equal(out, "word\nk 123456789012345678901\n");
	free(out);
	out = merge(STATSOCK_STATS, in, 0);
	assert_string_equal(out, "");
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_summed),
		cmocka_unit_test(test_prometheus_grouped),
		cmocka_unit_test(test_status_concatenated),
		cmocka_unit_test(test_odd_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
