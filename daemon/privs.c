#include "privs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "metrics_http.h"

uint64_t
privs_nofile_need(const struct iketcpd_cfg *cfg)
{
	uint64_t n = PRIVS_NOFILE_BASE;

	for (int i = 0; i < cfg->nservers && i < IKETCPD_MAX_SERVERS; i++) {
		const struct iketcpd_server_cfg *s = &cfg->servers[i];
		n += (uint64_t)s->max_conns + s->max_sessions + (uint64_t)s->nlisten +
		     (uint64_t)s->nlisten_tls + 1;
	}
	for (int i = 0; i < cfg->nclients && i < IKETCPD_MAX_CLIENTS; i++)
		n += 2 * (uint64_t)cfg->clients[i].max_flows + PRIVS_NOFILE_CLIENT;
	if (cfg->metrics_listen.len) /* the listener, its scrapers, one refused */
		n += METRICS_HTTP_MAX + 2;
	return n;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
lim_str(char *buf, size_t len, rlim_t v)
{
	if (v == RLIM_INFINITY)
		snprintf(buf, len, "unlimited");
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

int
privs_nofile_raise(uint64_t need, uint64_t *raised, char *err, size_t errlen)
{
	struct rlimit cur, want;
	char soft[32], hard[32];

	*raised = 0;
	if (getrlimit(RLIMIT_NOFILE, &cur) < 0) {
		seterr(err, errlen, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return -1;
	}
	if (cur.rlim_cur == RLIM_INFINITY || cur.rlim_cur >= need)
		return 0;
	want.rlim_cur = (rlim_t)need;
	want.rlim_max =
		cur.rlim_max == RLIM_INFINITY || cur.rlim_max >= need ? cur.rlim_max : (rlim_t)need;
	/* Raising the hard limit needs CAP_SYS_RESOURCE and stops at
	 * fs.nr_open: either failure leaves the limits as they were. */
	if (setrlimit(RLIMIT_NOFILE, &want) < 0) {
		int e = errno;
		lim_str(soft, sizeof(soft), cur.rlim_cur);
		lim_str(hard, sizeof(hard), cur.rlim_max);
		seterr(err, errlen,
		       "the configuration needs %llu open files (max-conns + max-sessions of each "
		       "server, 2 x max-flows of each client, and %d more), but RLIMIT_NOFILE is "
		       "%s (hard limit %s) and cannot be raised to that: %s. Raise the limit "
		       "(LimitNOFILE=%llu in the systemd unit, ulimit -Hn %llu, or start iketcpd "
		       "as root with CAP_SYS_RESOURCE), or lower max-conns, max-sessions or "
		       "max-flows",
		       (unsigned long long)need, PRIVS_NOFILE_BASE, soft, hard, strerror(e),
		       (unsigned long long)need, (unsigned long long)need);
		return -1;
	}
	*raised = need;
	return 0;
}

static unsigned
port_of(const struct iketcpd_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return 0;
}

static void
lowest(unsigned *low, const struct iketcpd_addr *a, unsigned unpriv_start)
{
	unsigned p = port_of(a);

	if (p != 0 && p < unpriv_start && (*low == 0 || p < *low))
		*low = p;
}

unsigned
privs_low_port(const struct iketcpd_cfg *cfg, unsigned unpriv_start)
{
	unsigned low = 0;

	for (int i = 0; i < cfg->nservers && i < IKETCPD_MAX_SERVERS; i++) {
		const struct iketcpd_server_cfg *s = &cfg->servers[i];
		for (int k = 0; k < s->nlisten && k < IKETCPD_MAX_LISTEN; k++)
			lowest(&low, &s->listen[k], unpriv_start);
		for (int k = 0; k < s->nlisten_tls && k < IKETCPD_MAX_LISTEN; k++)
			lowest(&low, &s->listen_tls[k], unpriv_start);
	}
	for (int i = 0; i < cfg->nclients && i < IKETCPD_MAX_CLIENTS; i++)
		lowest(&low, &cfg->clients[i].udp, unpriv_start);
	if (cfg->metrics_listen.len)
		lowest(&low, &cfg->metrics_listen, unpriv_start);
	return low;
}

unsigned
privs_unpriv_port_start(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "re");
	unsigned v = 1024;

	if (f) {
		if (fscanf(f, "%u", &v) != 1 || v > 65536)
			v = 1024;
		fclose(f);
	}
	return v;
}

/* ---- the account -------------------------------------------------------------------- */

static int
numeric_id(const char *s, unsigned long *out)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return 0;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return *end == '\0' && errno == 0 && *out < 0xffffffffUL;
}

int
privs_lookup(const struct iketcpd_cfg *cfg, struct privs_account *acct, char *err, size_t errlen)
{
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	unsigned long id;
	size_t buflen = 1 << 16;
	char *buf;
	int rc = -1, e;

	memset(acct, 0, sizeof(*acct));
	if (!cfg->user[0])
		return 0;
	memcpy(acct->name, cfg->user, sizeof(acct->name));
	acct->name[sizeof(acct->name) - 1] = '\0';
	if (!(buf = malloc(buflen))) {
		seterr(err, errlen, "user %s: out of memory", acct->name);
		return -1;
	}
	if (numeric_id(cfg->user, &id)) {
		acct->uid = (uid_t)id;
		e = getpwuid_r(acct->uid, &pw, buf, buflen, &pwp);
	} else {
		e = getpwnam_r(cfg->user, &pw, buf, buflen, &pwp);
		if (!pwp) {
			seterr(err, errlen, "user %s: no such user%s%s", cfg->user, e ? ": " : "",
			       e ? strerror(e) : "");
			goto out;
		}
		acct->uid = pwp->pw_uid;
	}
	if (acct->uid == 0) {
		seterr(err, errlen,
		       "user %s is root: that drops nothing (leave user unset to run as root)",
		       cfg->user);
		goto out;
	}
	if (cfg->group[0]) {
		if (numeric_id(cfg->group, &id)) {
			acct->gid = (gid_t)id;
		} else {
			char *gbuf = malloc(buflen);
			e = gbuf ? getgrnam_r(cfg->group, &gr, gbuf, buflen, &grp) : ENOMEM;
			if (grp)
				acct->gid = grp->gr_gid;
			free(gbuf);
			if (!grp) {
				seterr(err, errlen, "group %s: no such group%s%s", cfg->group,
				       e ? ": " : "", e ? strerror(e) : "");
				goto out;
			}
		}
		/* an explicit group is the only one: no supplementary groups
		 * that the account may be in for other purposes */
		acct->groups[0] = acct->gid;
		acct->ngroups = 1;
	} else if (pwp) {
		acct->gid = pwp->pw_gid;
		int n = (int)(sizeof(acct->groups) / sizeof(acct->groups[0]));
		if (getgrouplist(pwp->pw_name, acct->gid, acct->groups, &n) < 0) {
			seterr(err, errlen, "user %s is in more than %zu groups: set group",
			       cfg->user, sizeof(acct->groups) / sizeof(acct->groups[0]));
			goto out;
		}
		acct->ngroups = n;
	} else {
		seterr(err, errlen, "user %s has no passwd entry: set group too", cfg->user);
		goto out;
	}
	if (acct->gid == 0) {
		seterr(err, errlen,
		       "user %s: group 0 (root) would keep root's files writable; "
		       "set group to another group",
		       cfg->user);
		goto out;
	}
	rc = 1;
out:
	free(buf);
	return rc;
}

/* ---- the drop ----------------------------------------------------------------------- */

/* in data[0]: capability numbers < 32 */
#define BIND_BIT (1u << CAP_NET_BIND_SERVICE)
#define ADMIN_BIT (1u << CAP_NET_ADMIN)

static uint32_t
keep_bits(unsigned keep)
{
	return ((keep & PRIVS_KEEP_BIND) ? BIND_BIT : 0) |
	       ((keep & PRIVS_KEEP_NET_ADMIN) ? ADMIN_BIT : 0);
}

int
privs_need_net_admin(const struct iketcpd_cfg *cfg)
{
	for (int i = 0; i < cfg->nclients && i < IKETCPD_MAX_CLIENTS; i++)
		if (cfg->clients[i].mark || cfg->clients[i].bypass_policy == 1)
			return 1;
	return 0;
}

int
privs_have_net_admin(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return 0;
	return (data[0].effective & ADMIN_BIT) != 0;
}

static int
caps_get(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};

	memset(data, 0, 2 * sizeof(data[0]));
	return (int)syscall(SYS_capget, &hdr, data);
}

/* Leaves exactly the kept capabilities (or nothing) in this thread's
 * effective and permitted sets, and nothing inheritable. */
static int
caps_set(unsigned keep)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = keep_bits(keep);
	return (int)syscall(SYS_capset, &hdr, data);
}

int
privs_drop(const struct privs_account *acct, unsigned keep, char *err, size_t errlen)
{
	uid_t ru = 0, eu = 0, su = 0;
	gid_t rg = 0, eg = 0, sg = 0;
	struct __user_cap_data_struct data[2];

	/* glibc applies setgroups, setresgid and setresuid to every thread
	 * (resolver threads may be running). PR_SET_KEEPCAPS and capset are
	 * per thread: they matter only for this one, whose credentials new
	 * threads inherit; other threads lose every capability with root. */
	if (setgroups((size_t)acct->ngroups, acct->groups) < 0) {
		seterr(err, errlen,
		       "user %s: setgroups: %s (iketcpd must be started as root to "
		       "switch users)",
		       acct->name, strerror(errno));
		return -1;
	}
	if (setresgid(acct->gid, acct->gid, acct->gid) < 0) {
		seterr(err, errlen, "user %s: setresgid(%u): %s", acct->name, (unsigned)acct->gid,
		       strerror(errno));
		return -1;
	}
	if (keep && prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) < 0) {
		seterr(err, errlen, "user %s: PR_SET_KEEPCAPS: %s", acct->name, strerror(errno));
		return -1;
	}
	if (setresuid(acct->uid, acct->uid, acct->uid) < 0) {
		seterr(err, errlen, "user %s: setresuid(%u): %s", acct->name, (unsigned)acct->uid,
		       strerror(errno));
		return -1;
	}
	if (caps_set(keep) < 0) {
		seterr(err, errlen, "user %s: capset: %s", acct->name, strerror(errno));
		return -1;
	}
	if (keep)
		(void)prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L);
	/* ambient capabilities (kernel 4.3+) would survive an exec */
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0L, 0L, 0L);

	/* Trust nothing above: check what the kernel says now. */
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || ru != acct->uid ||
	    eu != acct->uid || su != acct->uid || rg != acct->gid || eg != acct->gid ||
	    sg != acct->gid) {
		seterr(err, errlen,
		       "user %s: the switch did not happen (uids %u/%u/%u, gids %u/%u/%u)",
		       acct->name, (unsigned)ru, (unsigned)eu, (unsigned)su, (unsigned)rg,
		       (unsigned)eg, (unsigned)sg);
		return -1;
	}
	uint32_t want = keep_bits(keep);
	if (caps_get(data) < 0 || data[0].effective != want || data[0].permitted != want ||
	    data[0].inheritable != 0 || data[1].effective || data[1].permitted ||
	    data[1].inheritable) {
		seterr(err, errlen,
		       "user %s: capabilities left after the switch: effective %08x%08x "
		       "permitted %08x%08x",
		       acct->name, data[1].effective, data[0].effective, data[1].permitted,
		       data[0].permitted);
		return -1;
	}
	gid_t now[128];
	int n = getgroups((int)(sizeof(now) / sizeof(now[0])), now), bad = n < 0;
	for (int i = 0; i < n; i++)
		bad |= now[i] == 0;
	if (bad) {
		seterr(err, errlen, "user %s: group 0 left among the supplementary groups",
		       acct->name);
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 || setegid(0) == 0) {
		seterr(err, errlen, "user %s: root could be regained after the switch", acct->name);
		return -1;
	}
	return 0;
}
