/*
 * Unit tests for daemon/privs.c: the descriptors a configuration needs,
 * raising RLIMIT_NOFILE, the low-port rule and the account lookup. (The
 * switch itself cannot be undone inside a test process: the loopback tests
 * check it on real iketcpd processes.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "config.h"
#include "privs.h"

#define assert_contains(hay, needle)                                                               \
	do {                                                                                       \
		const char *h_ = (hay), *n_ = (needle);                                            \
		if (strstr(h_, n_) == NULL) {                                                      \
			print_error("\"%s\" does not contain \"%s\"\n", h_, n_);                   \
			fail();                                                                    \
		}                                                                                  \
	} while (0)

static struct iketcpd_cfg *
cfg_parse(const char *text)
{
	struct iketcpd_cfg *cfg = malloc(sizeof(*cfg));
	char err[512] = "";

	assert_non_null(cfg);
	iketcpd_config_init(cfg);
	if (iketcpd_config_parse_buf(cfg, "t.conf", text, strlen(text), err, sizeof(err)) != 0) {
		print_error("%s\n", err);
		fail();
	}
	return cfg;
}

/* Each limit adds what its sockets take, and nothing else does. */
static void
test_nofile_need(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = cfg_parse("[server]\n");
	/* the defaults: max-conns + max-sessions + two listeners + 1 */
	uint64_t one = privs_nofile_need(cfg);
	assert_int_equal(one, PRIVS_NOFILE_BASE + 4096 + 8192 + 2 + 1);
	free(cfg);

	cfg = cfg_parse("[server]\nlisten = 127.0.0.1:1\nlisten-tls = 127.0.0.1:2\n"
			"tls-cert = /c\ntls-key = /k\nmax-conns = 100\nmax-pending = 10\n"
			"max-conns-per-source = 10\nmax-sessions = 50\n"
			"[client a]\nudp = 127.0.0.1:3\npeer = gw.example\nmax-flows = 7\n"
			"[client b]\nudp = 127.0.0.1:4\npeer = gw.example\n");
	assert_int_equal(privs_nofile_need(cfg), PRIVS_NOFILE_BASE + (100 + 50 + 2 + 1) +
							 (2 * 7 + PRIVS_NOFILE_CLIENT) +
							 (2 * 256 + PRIVS_NOFILE_CLIENT));
	free(cfg);

	/* the largest counts do not overflow */
	cfg = cfg_parse("[server]\n");
	cfg->nservers = IKETCPD_MAX_SERVERS;
	for (int i = 0; i < IKETCPD_MAX_SERVERS; i++) {
		cfg->servers[i] = cfg->servers[0];
		cfg->servers[i].max_conns = UINT32_MAX;
		cfg->servers[i].max_sessions = UINT32_MAX;
	}
	assert_true(privs_nofile_need(cfg) > (uint64_t)UINT32_MAX * 2 * IKETCPD_MAX_SERVERS);
	free(cfg);
}

/* The soft limit is raised up to the hard one without privileges; past
 * fs.nr_open nobody can, and the refusal says what to do. */
static void
test_nofile_raise(void **state)
{
	(void)state;
	struct rlimit saved, r;
	uint64_t raised = 1;
	char err[1024] = "";

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
	if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 200) {
		skip();
		return;
	}
	r = saved;
	r.rlim_cur = 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &r), 0);

	assert_int_equal(privs_nofile_raise(50, &raised, err, sizeof(err)), 0);
	assert_int_equal(raised, 0); /* enough already: untouched */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &r), 0);
	assert_int_equal(r.rlim_cur, 64);

	assert_int_equal(privs_nofile_raise(200, &raised, err, sizeof(err)), 0);
	assert_int_equal(raised, 200);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &r), 0);
	assert_int_equal(r.rlim_cur, 200);
	assert_true(r.rlim_max == saved.rlim_max); /* never lowered */

	/* more than the kernel's fs.nr_open ceiling (at most 2^30ish) */
	uint64_t huge = (uint64_t)1 << 40;
	assert_int_equal(privs_nofile_raise(huge, &raised, err, sizeof(err)), -1);
	assert_int_equal(raised, 0);
	assert_contains(err, "needs 1099511627776 open files");
	assert_contains(err, "RLIMIT_NOFILE is 200");
	assert_contains(err, "max-conns, max-sessions or max-flows");
	assert_contains(err, "LimitNOFILE=1099511627776");
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &r), 0);
	assert_int_equal(r.rlim_cur, 200); /* a failure changes nothing */

	assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

static void
test_low_port(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg = cfg_parse("[server]\nlisten = 127.0.0.1:4500\n"
					    "[client c]\nudp = 127.0.0.1:4501\npeer = gw:443\n");
	/* the peer's port is connected to, not bound */
	assert_int_equal(privs_low_port(cfg, 1024), 0);
	free(cfg);

	cfg = cfg_parse("[server]\nlisten = 127.0.0.1:4500\nlisten-tls = [::1]:443\n"
			"tls-cert = /c\ntls-key = /k\n");
	assert_int_equal(privs_low_port(cfg, 1024), 443);
	/* with ip_unprivileged_port_start lowered, 443 needs nothing */
	assert_int_equal(privs_low_port(cfg, 443), 0);
	assert_int_equal(privs_low_port(cfg, 444), 443);
	free(cfg);

	cfg = cfg_parse("[server]\nlisten = 127.0.0.1:1000\nlisten = 127.0.0.1:999\n"
			"[client c]\nudp = 127.0.0.1:500\npeer = gw\n");
	assert_int_equal(privs_low_port(cfg, 1024), 500);
	free(cfg);

	unsigned start = privs_unpriv_port_start();
	assert_true(start <= 65536);
}

/* CAP_NET_ADMIN is kept after the switch only for what asks for it: a mark,
 * or bypass-policy = yes; auto (the default) and servers do not. */
static void
test_need_net_admin(void **state)
{
	(void)state;
	struct iketcpd_cfg *cfg =
		cfg_parse("[server]\n[client c]\nudp = 127.0.0.1:4501\npeer = gw\n");
	assert_false(privs_need_net_admin(cfg));
	free(cfg);
	cfg = cfg_parse("[client c]\nudp = 127.0.0.1:4501\npeer = gw\nbypass-policy = no\n");
	assert_false(privs_need_net_admin(cfg));
	free(cfg);
	cfg = cfg_parse("[client c]\nudp = 127.0.0.1:4501\npeer = gw\n"
			"[client d]\nudp = 127.0.0.1:4502\npeer = gw\nbypass-policy = yes\n");
	assert_true(privs_need_net_admin(cfg));
	free(cfg);
	cfg = cfg_parse("[client c]\nudp = 127.0.0.1:4501\npeer = gw\nmark = 0x42\n"
			"bypass-policy = no\n");
	assert_true(privs_need_net_admin(cfg));
	free(cfg);
	/* whatever the answer, asking must not fail */
	int have = privs_have_net_admin();
	assert_true(have == 0 || have == 1);
}

static void
test_lookup(void **state)
{
	(void)state;
	struct privs_account acct;
	struct iketcpd_cfg *cfg = cfg_parse("[server]\n");
	char err[512] = "";

	/* no user: nothing to do */
	assert_int_equal(privs_lookup(cfg, &acct, err, sizeof(err)), 0);
	free(cfg);

	struct passwd *pw = getpwnam("nobody");
	if (pw) {
		uid_t uid = pw->pw_uid;
		gid_t gid = pw->pw_gid;
		cfg = cfg_parse("user = nobody\n[server]\n");
		assert_int_equal(privs_lookup(cfg, &acct, err, sizeof(err)), 1);
		assert_int_equal(acct.uid, uid);
		assert_int_equal(acct.gid, gid);
		assert_string_equal(acct.name, "nobody");
		assert_true(acct.ngroups >= 1);
		free(cfg);

		/* an explicit group is the only group */
		cfg = cfg_parse("user = nobody\ngroup = 4321\n[server]\n");
		assert_int_equal(privs_lookup(cfg, &acct, err, sizeof(err)), 1);
		assert_int_equal(acct.uid, uid);
		assert_int_equal(acct.gid, 4321);
		assert_int_equal(acct.ngroups, 1);
		assert_int_equal(acct.groups[0], 4321);
		free(cfg);
	}

	cfg = cfg_parse("user = no-such-user-here\n[server]\n");
	assert_int_equal(privs_lookup(cfg, &acct, err, sizeof(err)), -1);
	assert_contains(err, "user no-such-user-here: no such user");
	free(cfg);

	cfg = cfg_parse("user = nobody\ngroup = no-such-group-here\n[server]\n");
	assert_int_equal(privs_lookup(cfg, &acct, err, sizeof(err)), -1);
	assert_contains(err, "group no-such-group-here: no such group");
	free(cfg);

	cfg = cfg_parse("user = root\n[server]\n");
	assert_int_equal(privs_lookup(cfg, &acct, err, sizeof(err)), -1);
	assert_contains(err, "is root");
	free(cfg);

	cfg = cfg_parse("user = 0\ngroup = 5\n[server]\n");
	assert_int_equal(privs_lookup(cfg, &acct, err, sizeof(err)), -1);
	assert_contains(err, "is root");
	free(cfg);

	/* a number without a passwd entry runs with the given group only */
	if (getpwuid(3999999) == NULL) {
		cfg = cfg_parse("user = 3999999\n[server]\n");
		assert_int_equal(privs_lookup(cfg, &acct, err, sizeof(err)), -1);
		assert_contains(err, "no passwd entry: set group too");
		free(cfg);
		cfg = cfg_parse("user = 3999999\ngroup = 3999998\n[server]\n");
		assert_int_equal(privs_lookup(cfg, &acct, err, sizeof(err)), 1);
		assert_int_equal(acct.uid, 3999999);
		assert_int_equal(acct.gid, 3999998);
		free(cfg);
	}

	cfg = cfg_parse("user = 3999999\ngroup = 0\n[server]\n");
	assert_int_equal(privs_lookup(cfg, &acct, err, sizeof(err)), -1);
	assert_contains(err, "group 0");
	free(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nofile_need), cmocka_unit_test(test_nofile_raise),
		cmocka_unit_test(test_low_port),    cmocka_unit_test(test_need_net_admin),
		cmocka_unit_test(test_lookup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
