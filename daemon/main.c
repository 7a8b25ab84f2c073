/*
 * iketcpd: RFC 9329 gateway.
 *
 *   iketcpd [-f] [-v] [-n] -c FILE
 *   iketcpd [-f] [-v] [-n] server --listen ADDR:PORT ... --backend ADDR:PORT [--KEY VALUE ...]
 *   iketcpd [-f] [-v] [-n] client --udp ADDR:PORT --peer HOST:PORT [--KEY VALUE ...]
 *
 * Start-up order: parse and check the whole configuration, build the TLS
 * contexts once to check their files (-n stops here),
 * open every socket, then detach (unless -f) and run. Signals are read
 * through a signalfd in the loop: SIGTERM/SIGINT drain and exit 0, SIGHUP
 * re-reads the config file, SIGUSR1 logs the counters. The optional
 * stats-socket (a Unix stream socket) writes every counter, one
 * "server|client NAME KEY VALUE" line each, to whoever connects, then closes;
 * a client may ask for the status or Prometheus text instead (statsock.h).
 * Without stats-socket, a service manager's runtime directory
 * ($RUNTIME_DIRECTORY) holds it as stats.sock; stats-socket-group and
 * stats-socket-mode let a monitoring group read it. metrics-listen serves
 * the Prometheus text over HTTP (metrics_http.h).
 *
 * Before any socket is opened RLIMIT_NOFILE is raised to what the limits
 * of the configuration need (privs.h), or iketcpd refuses to start. With
 * `user` set, the process switches to that account after everything is
 * open and the signalfd exists, keeping only CAP_NET_BIND_SERVICE when a
 * configured port needs it.
 *
 * Under a service manager ($NOTIFY_SOCKET, sdnotify.h) iketcpd reports
 * READY=1 once all of that is done, RELOADING=1 and READY=1 around each
 * SIGHUP, STOPPING=1 at shutdown, and a STATUS= line (sections,
 * connections, the last refused reload); systemd/iketcpd.service runs it
 * with -f, so the process systemd started is the one that reports.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "iketcp/iketcp.h"
#include "client.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "metrics_http.h"
#include "net.h"
#include "privs.h"
#include "sdnotify.h"
#include "server.h"
#include "statsock.h"
#include "workers.h"

#define STOP_DEADLINE_MS 3000
/* How often STATUS= is refreshed for `systemctl status` (connection counts
 * change all the time; this is a glance, not a counter). */
#define STATUS_REFRESH_MS 10000

struct app {
	struct loop *loop;
	const char *config_path; /* absolute (realpath at start): daemon() does chdir("/") */
	int cmdline_verbose;     /* -v count: added to every reload's verbose too */
	struct iketcpd_cfg cfg;
	struct server *servers[IKETCPD_MAX_SERVERS];
	struct client *clients[IKETCPD_MAX_CLIENTS];
	struct watcher sig;
	struct watcher stats; /* stats-socket listener; fd -1 = none */
	char stats_open_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct statsock statsock; /* its connections */
	unsigned stats_mode;      /* what the open socket was given */
	char stats_group[IKETCPD_USER_MAX];
	struct metrics_http metrics; /* metrics-listen */
	struct timer stop_timer;
	uint64_t stop_started;
	int stopping;
	struct privs_account acct; /* from user/group; name "" = none */
	int dropped;               /* running as acct */
	int kept_bind;             /* ... with CAP_NET_BIND_SERVICE */
	int kept_admin;            /* ... with CAP_NET_ADMIN (mark, bypass-policy = yes) */
	int killed;                /* supervisor: SIGKILL sent to workers late to stop */
	unsigned unpriv_start;     /* net.ipv4.ip_unprivileged_port_start */
	struct timer status_timer; /* STATUS= refresh, only with $NOTIFY_SOCKET */
	char refused[512];         /* why the last reload was refused; "" = none since */
};

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: iketcpd [-f] [-v] [-n] -c FILE\n"
		    "       iketcpd [-f] [-v] [-n] server --listen ADDR:PORT [--listen ...] "
		    "[--listen-tls ADDR:PORT --tls-cert FILE --tls-key FILE] "
		    "--backend ADDR:PORT [--KEY VALUE ...]\n"
		    "       iketcpd [-f] [-v] [-n] client --udp ADDR:PORT --peer HOST:PORT "
		    "[--enable-tcp yes|fallback|no] [--tls yes] [--proxy http://HOST:PORT] "
		    "[--KEY VALUE ...]\n"
		    "  -c FILE  run what FILE describes (several server and client sections)\n"
		    "  -n       check the configuration and exit\n"
		    "  -f       stay in the foreground, log to stderr\n"
		    "  -v       more logging (debug)\n"
		    "  -V       print the version\n"
		    "Every --KEY is also a config keyword: 'iketcpd server --help' and "
		    "'iketcpd client --help' list each mode's keys with their defaults; "
		    "see iketcpd(8) and iketcpd.conf(5).\n");
}

/* The mode before argv[end] ("iketcpd [-f] server ... --help"), or NULL:
 * the first word that is neither a flag nor the value of -c. */
static const char *
help_mode(int argc, char **argv, int end)
{
	for (int i = 1; i < end && i < argc; i++) {
		if (!strcmp(argv[i], "-c")) {
			i++;
			continue;
		}
		if (argv[i][0] != '-')
			return argv[i];
	}
	return NULL;
}

static unsigned
open_conns(const struct app *a)
{
	unsigned n = 0;
	for (int i = 0; i < a->cfg.nservers; i++)
		if (a->servers[i])
			n += server_conns(a->servers[i]);
	for (int i = 0; i < a->cfg.nclients; i++)
		if (a->clients[i])
			n += client_conns(a->clients[i]);
	return n;
}

/* max-memory (a quarter of the physical memory when not set): bounds the
 * send-queue and assembly buffers of all sections together. */
static void
apply_max_memory(const struct iketcpd_cfg *cfg)
{
	uint64_t lim = cfg->max_memory;
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);

	if (lim == 0)
		lim = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz / 4 : 1ull << 30;
	if (lim > SIZE_MAX)
		lim = SIZE_MAX;
	if (workers_role() == WORKERS_SUPERVISOR)
		return; /* it holds no buffers; the workers share the limit */
	lim = workers_memory_share(lim);
	iketcp_mem_set_limit((size_t)lim);
	log_info("max-memory %llu MiB%s%s", (unsigned long long)(lim >> 20),
		 cfg->max_memory ? "" : " (a quarter of the physical memory)",
		 workers_role() == WORKERS_WORKER ? ", this worker's share" : "");
}

static void
log_stats(const struct app *a)
{
	log_info("global: mem_used %zu, mem_limit %zu, mem_refused %llu", iketcp_mem_used(),
		 iketcp_mem_limit(), (unsigned long long)iketcp_mem_refused());
	for (int i = 0; i < a->cfg.nservers; i++)
		if (a->servers[i])
			server_log_stats(a->servers[i]);
	for (int i = 0; i < a->cfg.nclients; i++)
		if (a->clients[i])
			client_log_stats(a->clients[i]);
}

static void
stats_render(void *arg, enum statsock_req req, FILE *fp)
{
	struct app *a = arg;
	if (workers_role() == WORKERS_SUPERVISOR) {
		workers_render(req, fp);
		return;
	}
	statsock_render(req, a->servers, a->cfg.nservers, a->clients, a->cfg.nclients, fp);
}

static void
stats_close(struct app *a)
{
	if (a->stats.fd < 0)
		return;
	statsock_close_all(&a->statsock);
	watcher_stop(a->loop, &a->stats);
	close(a->stats.fd);
	a->stats.fd = -1;
	if (unlink(a->stats_open_path) < 0 && errno != ENOENT)
		log_warn("stats-socket %s: cannot remove it as user %s: %s", a->stats_open_path,
			 a->dropped ? a->acct.name : "(as started)", strerror(errno));
	a->stats_open_path[0] = '\0';
}

/* The stats socket's path for cfg: stats-socket, or else stats.sock in the
 * service manager's runtime directory (the first one when it names
 * several), or "" for none. */
static const char *
stats_path_of(const struct iketcpd_cfg *cfg, char *buf, size_t len)
{
	const char *rd = getenv("RUNTIME_DIRECTORY");

	if (cfg->stats_off)
		return "";
	if (cfg->stats_path[0])
		return cfg->stats_path;
	if (!rd || rd[0] != '/')
		return "";
	size_t n = strcspn(rd, ":");
	if (snprintf(buf, len, "%.*s/stats.sock", (int)n, rd) >= (int)len) {
		log_warn("RUNTIME_DIRECTORY %.*s: too long for a unix socket path; set "
			 "stats-socket",
			 (int)n, rd);
		return "";
	}
	return buf;
}

/* Gives the socket at path cfg's group and mode. Returns 0, or -1 with the
 * reason logged (the socket is left 0600 then: a mode meant for a group must
 * not reach whatever group the file has instead). */
static int
stats_perms(struct app *a, const char *path, const struct iketcpd_cfg *cfg)
{
	unsigned mode = iketcpd_stats_mode(cfg);
	const char *grp = cfg->stats_group;

	if (grp[0]) {
		struct group *gr = getgrnam(grp);
		char *end;
		unsigned long num = strtoul(grp, &end, 10);
		gid_t gid;

		if (gr)
			gid = gr->gr_gid;
		else if (isdigit((unsigned char)grp[0]) && *end == '\0' && num < (gid_t)-1)
			gid = (gid_t)num;
		else {
			log_err("stats-socket-group %s: no such group", grp);
			(void)chmod(path, 0600);
			return -1;
		}
		struct stat sb;
		/* The socket already has the group when it is the account's own
		 * (systemd's Group=): then no chown, which the unit's seccomp
		 * filter may forbid. */
		if (stat(path, &sb) == 0 && sb.st_gid == gid)
			;
		else if (chown(path, (uid_t)-1, gid) < 0) {
			int e = errno;
			if (e == EPERM)
				log_err("stats-socket-group %s: iketcpd runs as uid %u, is not "
					"root and not a member of group %s (gid %u), so it cannot "
					"give %s to that group: add the account to the group "
					"(systemd: SupplementaryGroups=%s) or start iketcpd as "
					"root",
					grp, (unsigned)geteuid(), grp, (unsigned)gid, path, grp);
			else
				log_err("stats-socket-group %s: chown %s: %s", grp, path,
					strerror(e));
			(void)chmod(path, 0600);
			return -1;
		}
	}
	if (chmod(path, mode) < 0) {
		log_err("stats-socket-mode %04o: chmod %s: %s", mode, path, strerror(errno));
		return -1;
	}
	a->stats_mode = mode;
	memcpy(a->stats_group, grp, sizeof(a->stats_group));
	return 0;
}

/* Opens the stats socket of cfg, if any. A stale socket file (left by a
 * crash) is replaced; any other kind of file at that path is an error, not
 * removed. */
static int
stats_open(struct app *a)
{
	char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *path = stats_path_of(&a->cfg, buf, sizeof(buf));
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat sb;

	if (!path[0])
		return 0;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("stats-socket %s: path too long", path);
		return -1;
	}
	if (lstat(path, &sb) == 0 && !S_ISSOCK(sb.st_mode)) {
		log_err("stats-socket %s: exists and is not a socket", path);
		return -1;
	}
	/* Bound under a temporary name and renamed into place once group and
	 * mode are right: a reader that finds the path never meets the 0600 of
	 * birth (a monitoring group member would be refused for a moment). */
	char tmp[sizeof(sun.sun_path)];
	const char *bind_path = path;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new", path) < sizeof(tmp)) {
		bind_path = tmp;
		if (lstat(tmp, &sb) == 0 && S_ISSOCK(sb.st_mode))
			unlink(tmp); /* left by a crash between bind and rename */
	} else
		unlink(path);
	memcpy(sun.sun_path, bind_path, strlen(bind_path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* counters reveal peers' traffic volumes: born owner-only whatever the
	 * umask, then widened to the configured mode */
	mode_t old_umask = umask(0177);
	int bound = fd >= 0 && bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	int e = errno;
	umask(old_umask);
	errno = e;
	if (!bound || listen(fd, 16) < 0) {
		log_err("stats-socket %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (stats_perms(a, bind_path, &a->cfg) < 0) {
		close(fd);
		unlink(bind_path);
		return -1;
	}
	if (bind_path != path && rename(bind_path, path) < 0) {
		log_err("stats-socket %s: rename from %s: %s", path, bind_path, strerror(errno));
		close(fd);
		unlink(bind_path);
		return -1;
	}
	statsock_init(&a->statsock, a->loop, &a->stats, stats_render, a);
	a->stats = (struct watcher){.fd = fd, .cb = statsock_listen_cb, .data = &a->statsock};
	if (watcher_start(a->loop, &a->stats, EPOLLIN) < 0) {
		close(fd);
		a->stats.fd = -1;
		unlink(path);
		return -1;
	}
	memcpy(a->stats_open_path, path, strlen(path) + 1);
	log_info("stats-socket %s (mode %04o%s%s)", path, a->stats_mode,
		 a->stats_group[0] ? ", group " : "", a->stats_group);
	return 0;
}

/* SIGHUP: another path reopens the socket; another mode or group is
 * applied to the open one. */
static void
stats_reload(struct app *a)
{
	char buf[sizeof(a->stats_open_path)];
	const char *path = stats_path_of(&a->cfg, buf, sizeof(buf));

	if (strcmp(a->stats_open_path, path) != 0) {
		stats_close(a);
		(void)stats_open(a);
		return;
	}
	if (a->stats.fd >= 0 && (a->stats_mode != iketcpd_stats_mode(&a->cfg) ||
				 strcmp(a->stats_group, a->cfg.stats_group) != 0)) {
		if (stats_perms(a, path, &a->cfg) == 0)
			log_info("stats-socket %s: now mode %04o%s%s", path, a->stats_mode,
				 a->stats_group[0] ? ", group " : "", a->stats_group);
	}
}

/* metrics-listen at start, or on SIGHUP when it changed or did not open. */
static int
metrics_apply(struct app *a)
{
	char buf[64];
	const struct iketcpd_addr *want = &a->cfg.metrics_listen;

	if (metrics_http_is_open(&a->metrics)) {
		if (want->len && iketcpd_addr_equal(&a->metrics.addr, want))
			return 0;
		metrics_http_close(&a->metrics);
		log_info("metrics-listen %s: closed",
			 iketcpd_addr_str(&a->metrics.addr, buf, sizeof(buf)));
	}
	if (!want->len)
		return 0;
	iketcpd_addr_str(want, buf, sizeof(buf));
	if (metrics_http_open(&a->metrics, a->loop, want, stats_render, a) < 0) {
		log_err("metrics-listen %s: %s", buf, strerror(errno));
		return -1;
	}
	log_info("metrics-listen %s: serving GET /metrics", buf);
	return 0;
}

/* One STATUS= line for `systemctl status`. */
static void
notify_status(const struct app *a)
{
	if (!sdnotify_enabled())
		return;
	char conns[48];
	if (workers_role() == WORKERS_SUPERVISOR)
		snprintf(conns, sizeof(conns), "%u of %u workers running", workers_alive(),
			 workers_count());
	else
		snprintf(conns, sizeof(conns), "%u connections", open_conns(a));
	sdnotify_send("STATUS=%d server, %d client sections, %s%s%s%s", a->cfg.nservers,
		      a->cfg.nclients, conns, a->stopping ? ", stopping" : "",
		      a->refused[0] ? "; last reload refused: " : "", a->refused);
}

static void
status_timer_cb(struct timer *t)
{
	struct app *a = t->data;
	notify_status(a);
	timer_start(a->loop, &a->status_timer, STATUS_REFRESH_MS);
}

static void
stop_timer_cb(struct timer *t)
{
	struct app *a = t->data;
	uint64_t took = loop_now(a->loop) - a->stop_started;
	if (workers_role() == WORKERS_SUPERVISOR) {
		/* the workers drain for STOP_DEADLINE_MS; one that does not
		 * end soon after is killed, and every one is waited for */
		if (workers_alive() == 0) {
			loop_stop(a->loop);
			return;
		}
		if (took >= STOP_DEADLINE_MS + 2000 && !a->killed) {
			log_warn("%u workers still running: SIGKILL", workers_alive());
			workers_signal(SIGKILL);
			a->killed = 1;
		}
		timer_start(a->loop, &a->stop_timer, 50);
		return;
	}
	if (open_conns(a) == 0 || took >= STOP_DEADLINE_MS) {
		loop_stop(a->loop);
		return;
	}
	timer_start(a->loop, &a->stop_timer, 50);
}

static void
begin_stop(struct app *a)
{
	if (a->stopping)
		return;
	a->stopping = 1;
	a->stop_started = loop_now(a->loop);
	sdnotify_send("STOPPING=1");
	notify_status(a);
	log_info("shutting down: no new connections, flushing queued frames");
	if (workers_role() == WORKERS_SUPERVISOR)
		workers_stop();
	for (int i = 0; i < a->cfg.nservers; i++)
		if (a->servers[i])
			server_shutdown(a->servers[i]);
	for (int i = 0; i < a->cfg.nclients; i++)
		if (a->clients[i])
			client_shutdown(a->clients[i]);
	timer_start(a->loop, &a->stop_timer, 0);
}

/* After the switch to user, files that a reload reads must be readable by
 * that user; say so now, naming the file, rather than after the next
 * SIGHUP as an OpenSSL error. */
static void
check_readable(const struct app *a, const struct iketcpd_cfg *cfg, const char *when)
{
	const char *what[IKETCPD_MAX_SERVERS * 2 + IKETCPD_MAX_CLIENTS + 1];
	const char *path[IKETCPD_MAX_SERVERS * 2 + IKETCPD_MAX_CLIENTS + 1];
	int n = 0;

	if (!a->dropped)
		return;
	if (a->config_path) {
		what[n] = "config file";
		path[n++] = a->config_path;
	}
	for (int i = 0; i < cfg->nservers; i++) {
		if (cfg->servers[i].tls_cert[0]) {
			what[n] = "tls-cert";
			path[n++] = cfg->servers[i].tls_cert;
		}
		if (cfg->servers[i].tls_key[0]) {
			what[n] = "tls-key";
			path[n++] = cfg->servers[i].tls_key;
		}
	}
	for (int i = 0; i < cfg->nclients; i++)
		if (cfg->clients[i].use_tls && cfg->clients[i].tls_ca_file[0]) {
			what[n] = "tls-ca-file";
			path[n++] = cfg->clients[i].tls_ca_file;
		}
	for (int i = 0; i < n; i++)
		if (access(path[i], R_OK) < 0)
			log_err("%s: %s %s is not readable by user %s (uid %u): %s; files read "
				"on a reload must be readable by the user iketcpd runs as",
				when, what[i], path[i], a->acct.name, (unsigned)a->acct.uid,
				strerror(errno));
}

/* The nofile limit for cfg: raised if needed, or the error is logged (and
 * also written to stderr when to_stderr: a daemon's start-up failure must be
 * seen by whoever started it, not only in syslog). */
static int
nofile_for(const struct iketcpd_cfg *cfg, const char *when, int to_stderr)
{
	char err[768];
	uint64_t raised;

	if (privs_nofile_raise(privs_nofile_need(cfg), &raised, err, sizeof(err)) < 0) {
		log_err("%s: %s", when, err);
		if (to_stderr)
			fprintf(stderr, "iketcpd: %s: %s\n", when, err);
		return -1;
	}
	if (raised)
		log_info("RLIMIT_NOFILE raised to %llu for the configured limits",
			 (unsigned long long)raised);
	return 0;
}

/* mark and bypass-policy = yes are set at each connection, long after the
 * start: a missing CAP_NET_ADMIN is said now, not at the first connect. */
static void
net_admin_check(const struct iketcpd_cfg *cfg, const char *when)
{
	if (privs_need_net_admin(cfg) && !privs_have_net_admin())
		log_warn("%s: mark or bypass-policy = yes is set, but iketcpd lacks CAP_NET_ADMIN: "
			 "connections with a mark will fail, bypass policies will be missing "
			 "(under systemd add AmbientCapabilities=CAP_NET_ADMIN and "
			 "CapabilityBoundingSet=CAP_NET_ADMIN, see iketcpd(8))",
			 when);
}

/* IKETCPD_ALLOW_ROOT=1 (yes, true): allow-root for scripts and test
 * harnesses that start many daemons as root. */
static int
allow_root_env(void)
{
	const char *v = getenv("IKETCPD_ALLOW_ROOT");

	return v && (!strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "true"));
}

/* With user set: the switch, once everything that needs root is done, and
 * warnings about what will fail as the user. Without: a hint when root. */
static int
drop_privileges(struct app *a)
{
	char err[512];

	if (a->dropped)
		return 0; /* a restarted worker: the supervisor's credentials */
	if (!a->acct.name[0]) {
		if (geteuid() == 0)
			log_info("running as root: set user = NAME (an account of its own) to give "
				 "up root once the sockets are open; see iketcpd(8)");
		return 0;
	}
	unsigned low = privs_low_port(&a->cfg, a->unpriv_start);
	/* the socket root made becomes the account's, so that a reload can
	 * still change its mode or group */
	if (a->stats_open_path[0] && lchown(a->stats_open_path, a->acct.uid, (gid_t)-1) < 0)
		log_warn("stats-socket %s: cannot give it to user %s: %s", a->stats_open_path,
			 a->acct.name, strerror(errno));
	int admin = privs_need_net_admin(&a->cfg);
	unsigned keep = (low ? PRIVS_KEEP_BIND : 0) | (admin ? PRIVS_KEEP_NET_ADMIN : 0);
	if (privs_drop(&a->acct, keep, err, sizeof(err)) < 0) {
		log_err("cannot drop privileges, stopping: %s", err);
		return -1;
	}
	a->dropped = 1;
	a->kept_bind = low != 0;
	a->kept_admin = admin;
	char why[160] = "";
	if (low)
		snprintf(why, sizeof(why), "CAP_NET_BIND_SERVICE (port %u is below %u)", low,
			 a->unpriv_start);
	if (admin)
		snprintf(why + strlen(why), sizeof(why) - strlen(why),
			 "%sCAP_NET_ADMIN (mark or bypass-policy = yes)", low ? " and " : "");
	if (keep)
		log_info("running as user %s (uid %u, gid %u), keeping only %s", a->acct.name,
			 (unsigned)a->acct.uid, (unsigned)a->acct.gid, why);
	else
		log_info("running as user %s (uid %u, gid %u), no capabilities", a->acct.name,
			 (unsigned)a->acct.uid, (unsigned)a->acct.gid);
	check_readable(a, &a->cfg, "after the switch");
	if (a->stats_open_path[0]) {
		char dir[sizeof(a->stats_open_path)];
		memcpy(dir, a->stats_open_path, sizeof(dir));
		char *slash = strrchr(dir, '/');
		if (slash)
			slash[slash == dir ? 1 : 0] = '\0';
		if (access(dir, W_OK | X_OK) < 0)
			log_warn(
				"stats-socket %s: its directory is not writable by user %s, so the "
				"socket stays behind at exit (and is replaced at the next start)",
				a->stats_open_path, a->acct.name);
	}
	return 0;
}

/* SIGHUP: re-read the file; sections are matched by name. Established
 * connections of kept sections survive; removed sections are closed. */
static void
reload_config(struct app *a)
{
	char err[512];
	struct iketcpd_cfg *n;

	if (!a->config_path) {
		log_warn("SIGHUP ignored: not started with -c FILE");
		snprintf(a->refused, sizeof(a->refused), "not started with -c FILE");
		return;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return;
	iketcpd_config_init(n);
	if (iketcpd_config_parse_file(n, a->config_path, err, sizeof(err)) < 0 ||
	    iketcpd_config_check(n, err, sizeof(err)) < 0) {
		log_err("reload refused, keeping the running configuration: %s", err);
		snprintf(a->refused, sizeof(a->refused), "%s", err);
		free(n);
		return;
	}
	if (nofile_for(n, "reload refused, keeping the running configuration", 0) < 0) {
		snprintf(a->refused, sizeof(a->refused), "RLIMIT_NOFILE too low (see the log)");
		free(n);
		return;
	}
	/* What the command line added stays: -v is the operator's choice for
	 * this run, not the file's (the file may not even say verbose). */
	n->verbose += a->cmdline_verbose;
	n->foreground = a->cfg.foreground;
	a->refused[0] = '\0';
	if (strcmp(n->user, a->cfg.user) || strcmp(n->group, a->cfg.group))
		log_warn("reload: user and group take effect at the next start only");
	unsigned low = privs_low_port(n, a->unpriv_start);
	if (a->dropped && !a->kept_bind && low)
		log_err("reload: port %u is below %u, and iketcpd kept no CAP_NET_BIND_SERVICE "
			"when it switched to user %s (no such port was configured at start): "
			"restart iketcpd to listen there",
			low, a->unpriv_start, a->acct.name);
	if (a->dropped && !a->kept_admin && privs_need_net_admin(n))
		log_err("reload: mark or bypass-policy = yes needs CAP_NET_ADMIN, and iketcpd kept "
			"none when it switched to user %s (neither was configured at start): "
			"restart iketcpd for them to work",
			a->acct.name);
	else
		net_admin_check(n, "reload");
	check_readable(a, n, "reload");
	struct server *ns[IKETCPD_MAX_SERVERS] = {0};
	struct client *nc[IKETCPD_MAX_CLIENTS] = {0};
	for (int i = 0; i < n->nservers; i++) {
		for (int k = 0; k < a->cfg.nservers; k++) {
			if (a->servers[k] && !strcmp(a->cfg.servers[k].name, n->servers[i].name)) {
				ns[i] = a->servers[k];
				a->servers[k] = NULL;
				server_reload(ns[i], &n->servers[i]);
			}
		}
		if (!ns[i] && workers_runs_servers())
			ns[i] = server_new(a->loop, &n->servers[i]);
	}
	for (int i = 0; i < n->nclients; i++) {
		for (int k = 0; k < a->cfg.nclients; k++) {
			if (a->clients[k] && !strcmp(a->cfg.clients[k].name, n->clients[i].name) &&
			    client_reload(a->clients[k], &n->clients[i]) == 0) {
				nc[i] = a->clients[k];
				a->clients[k] = NULL;
			}
		}
		if (!nc[i] && workers_runs_clients()) {
			/* a section whose udp address changed must release it first */
			for (int k = 0; k < a->cfg.nclients; k++) {
				if (a->clients[k] &&
				    !strcmp(a->cfg.clients[k].name, n->clients[i].name)) {
					client_free(a->clients[k]);
					a->clients[k] = NULL;
				}
			}
			nc[i] = client_new(a->loop, &n->clients[i]);
		}
	}
	for (int k = 0; k < a->cfg.nservers; k++)
		if (a->servers[k]) {
			log_info("%s: removed from the configuration", server_name(a->servers[k]));
			server_free(a->servers[k]);
		}
	for (int k = 0; k < a->cfg.nclients; k++)
		if (a->clients[k]) {
			log_info("%s: removed from the configuration", client_name(a->clients[k]));
			client_free(a->clients[k]);
		}
	a->cfg = *n;
	apply_max_memory(&a->cfg);
	memcpy(a->servers, ns, sizeof(ns));
	memcpy(a->clients, nc, sizeof(nc));
	log_set_verbose(a->cfg.verbose);
	free(n);
	workers_reload(&a->cfg);
	if (workers_role() == WORKERS_WORKER)
		return;
	stats_reload(a);
	(void)metrics_apply(a);
}

/* The manager learns that a reload runs (RELOADING=1, with the clock
 * reading systemd 253+ wants to tell this reload from an older one) and
 * that it is over (READY=1), whether the new file was taken or refused:
 * refused, the old configuration keeps running, which is still ready. */
static void
reload(struct app *a)
{
	sdnotify_send("RELOADING=1\nMONOTONIC_USEC=%llu",
		      (unsigned long long)sdnotify_monotonic_usec());
	reload_config(a);
	sdnotify_send("READY=1");
	notify_status(a);
}

static void
signal_cb(struct watcher *w, uint32_t ev)
{
	struct app *a = w->data;
	struct signalfd_siginfo si;
	(void)ev;
	while (read(w->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			begin_stop(a);
			break;
		case SIGHUP:
			workers_signal(SIGHUP);
			reload(a);
			break;
		case SIGUSR1:
			workers_signal(SIGUSR1);
			log_stats(a);
			break;
		case SIGCHLD:
			workers_reap();
			break;
		default:
			break;
		}
	}
}

/* R67: RFC 9329 wants the outer packets Not-ECT, and only the host (or
 * network namespace) can refuse ECN on Linux, so say when it would not. */
static void
report_tcp_ecn(const struct iketcpd_cfg *cfg)
{
	int ecn = net_tcp_ecn_sysctl();

	if (cfg->nservers && ecn > 0)
		log_info("net.ipv4.tcp_ecn = %d: TCP clients that ask for ECN get it, so their "
			 "outer "
			 "packets are ECN-capable (RFC 9329 9.5 asks for Not-ECT); set "
			 "net.ipv4.tcp_ecn = 0 where the server runs",
			 ecn);
	if (cfg->nclients && (ecn == 1 || ecn == 3 || ecn == 4))
		log_info("net.ipv4.tcp_ecn = %d: connections to the server ask for ECN (RFC 9329 "
			 "9.5 "
			 "asks for Not-ECT); set net.ipv4.tcp_ecn = 0 or 2 where the client runs",
			 ecn);
}

/* Supervisor: READY=1 once every worker runs. */
static void
all_workers_ready(void *arg)
{
	struct app *a = arg;
	if (sdnotify_enabled()) {
		sdnotify_send("READY=1");
		notify_status(a);
		timer_start(a->loop, &a->status_timer, STATUS_REFRESH_MS);
	}
}

/* The process's life once the configuration is read: in the single
 * process and in each worker the sections, in the supervisor the stats
 * socket and the workers (workers.h). */
static int
run(struct app *a)
{
	enum workers_role role = workers_role();
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	if (role == WORKERS_SUPERVISOR)
		sigaddset(&mask, SIGCHLD);
	a->loop = loop_new();
	if (!a->loop) {
		log_err("event loop: %s", strerror(errno));
		return 1;
	}
	apply_max_memory(&a->cfg);
	int failed = 0;
	for (int i = 0; i < a->cfg.nservers && !failed && workers_runs_servers(); i++)
		failed = !(a->servers[i] = server_new(a->loop, &a->cfg.servers[i]));
	for (int i = 0; i < a->cfg.nclients && !failed && workers_runs_clients(); i++)
		failed = !(a->clients[i] = client_new(a->loop, &a->cfg.clients[i]));
	if (role != WORKERS_WORKER) {
		if (!failed && stats_open(a) < 0)
			failed = 1;
		if (!failed && metrics_apply(a) < 0)
			failed = 1;
	}
	timer_init(&a->stop_timer, stop_timer_cb, a);
	timer_init(&a->status_timer, status_timer_cb, a);
	/* with workers, the supervisor detached before the fork */
	if (!failed && role == WORKERS_SINGLE && !a->cfg.foreground && daemon(0, 0) < 0) {
		log_err("daemon: %s", strerror(errno));
		failed = 1;
	}
	/* The signalfd is made after daemon(): epoll readiness of a signalfd
	 * follows the process that created it, so one inherited across the
	 * fork would never wake the loop for the child's signals. */
	a->sig.fd = -1;
	if (!failed) {
		a->sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
		a->sig.cb = signal_cb;
		a->sig.data = a;
		if (a->sig.fd < 0 || watcher_start(a->loop, &a->sig, EPOLLIN) < 0) {
			log_err("signalfd: %s", strerror(errno));
			failed = 1;
		}
	}
	if (!failed && role == WORKERS_WORKER)
		workers_attach(a->loop, stats_render, a);
	if (!failed && drop_privileges(a) < 0)
		failed = 1;
	int rc = failed ? 1 : 0;
	if (!failed) {
		if (role == WORKERS_WORKER)
			log_info("worker %u running (%d server, %d client sections)",
				 workers_index(), a->cfg.nservers,
				 workers_runs_clients() ? a->cfg.nclients : 0);
		else
			log_info("iketcpd %s running (%d server, %d client sections)",
				 IKETCP_VERSION_STRING, a->cfg.nservers, a->cfg.nclients);
		if (role != WORKERS_WORKER) {
			report_tcp_ecn(&a->cfg);
			net_admin_check(&a->cfg, "start");
		}
		if (role == WORKERS_WORKER)
			workers_ready();
		else if (role == WORKERS_SUPERVISOR)
			workers_supervise(a->loop, all_workers_ready, a);
		else
			all_workers_ready(a);
		if (loop_run(a->loop) < 0)
			rc = 1;
		if (!a->stopping)
			sdnotify_send("STOPPING=1");
		if (role != WORKERS_SUPERVISOR)
			log_stats(a);
		if (role == WORKERS_SUPERVISOR && workers_failed())
			rc = 1;
		log_info(role == WORKERS_WORKER ? "worker stopped" : "stopped");
	}
	for (int i = 0; i < a->cfg.nservers; i++)
		server_free(a->servers[i]);
	for (int i = 0; i < a->cfg.nclients; i++)
		client_free(a->clients[i]);
	stats_close(a);
	metrics_http_close(&a->metrics);
	if (a->sig.fd >= 0) {
		watcher_stop(a->loop, &a->sig);
		close(a->sig.fd);
	}
	loop_free(a->loop);
	sdnotify_close();
	return rc;
}

/* A worker forked by the supervisor from its loop (a restart): what it
 * holds of the supervisor's is closed, not torn down (unlinking the stats
 * socket, say, is the supervisor's), then it runs as a worker. */
static void
worker_restarted(void *arg)
{
	struct app *a = arg;
	loop_free(a->loop); /* closes the epoll fd; the supervisor's stays */
	a->loop = NULL;
	if (a->sig.fd >= 0)
		close(a->sig.fd);
	if (a->stats.fd >= 0)
		close(a->stats.fd);
	for (int i = 0; i < STATSOCK_MAX; i++)
		if (a->statsock.c[i].w.fd >= 0 && a->statsock.loop)
			close(a->statsock.c[i].w.fd);
	if (a->metrics.listener.fd >= 0)
		close(a->metrics.listener.fd);
	for (int i = 0; i < METRICS_HTTP_MAX; i++)
		if (a->metrics.c[i].w.fd >= 0 && a->metrics.loop)
			close(a->metrics.c[i].w.fd);
	memset(&a->statsock, 0, sizeof(a->statsock));
	memset(&a->metrics, 0, sizeof(a->metrics));
	metrics_http_reset_stats();
	/* watchers registered with the supervisor's loop: not with this one */
	a->stats = (struct watcher){.fd = -1};
	a->sig = (struct watcher){.fd = -1};
	a->stats_open_path[0] = '\0';
	a->metrics.listener.fd = -1;
	a->stopping = 0;
	exit(run(a));
}

int
main(int argc, char **argv)
{
	static struct app a; /* large (config arrays): not on the stack */
	char err[512];
	int check_only = 0, foreground = 0, verbose = 0, opt;

	iketcpd_config_init(&a.cfg);
	a.stats.fd = -1;
	a.metrics.listener.fd = -1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			const char *mode = help_mode(argc, argv, i);
			if (!mode || iketcpd_config_help(stdout, mode) < 0)
				usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--version")) {
			printf("iketcpd %s\n", IKETCP_VERSION_STRING);
			return 0;
		}
	}
	while ((opt = getopt(argc, argv, "+c:fnvVh")) != -1) {
		switch (opt) {
		case 'c':
			a.config_path = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'n':
			check_only = 1;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("iketcpd %s\n", IKETCP_VERSION_STRING);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (a.config_path) {
		if (optind < argc) {
			fprintf(stderr, "iketcpd: -c FILE and a mode on the command line exclude "
					"each other\n");
			return 2;
		}
		/* SIGHUP must read the same file after daemon() has moved to "/". */
		static char abs_path[PATH_MAX];
		if (!realpath(a.config_path, abs_path)) {
			fprintf(stderr, "iketcpd: %s: %s\n", a.config_path, strerror(errno));
			return 1;
		}
		a.config_path = abs_path;
		if (iketcpd_config_parse_file(&a.cfg, a.config_path, err, sizeof(err)) < 0) {
			fprintf(stderr, "iketcpd: %s\n", err);
			return 1;
		}
	} else if (optind < argc) {
		const char *mode = argv[optind];
		if (strcmp(mode, "server") && strcmp(mode, "client")) {
			fprintf(stderr, "iketcpd: unknown mode '%s' (server or client)\n", mode);
			usage(stderr);
			return 2;
		}
		/* global flags may also follow the mode: -f -v */
		int rest = 0;
		char **args = calloc((size_t)argc, sizeof(*args));
		if (!args)
			return 1;
		for (int i = optind + 1; i < argc; i++) {
			if (!strcmp(argv[i], "-f"))
				foreground = 1;
			else if (!strcmp(argv[i], "-v"))
				verbose++;
			else if (!strcmp(argv[i], "-n"))
				check_only = 1;
			else
				args[rest++] = argv[i];
		}
		int rc = iketcpd_config_parse_args(&a.cfg, mode, rest, args, err, sizeof(err));
		free(args);
		if (rc < 0) {
			fprintf(stderr, "iketcpd: %s\n", err);
			return 1;
		}
	} else {
		usage(stderr);
		return 2;
	}
	if (iketcpd_config_check(&a.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "iketcpd: %s\n", err);
		return 1;
	}
	if (privs_lookup(&a.cfg, &a.acct, err, sizeof(err)) < 0) {
		fprintf(stderr, "iketcpd: %s\n", err);
		return 1;
	}
	a.cmdline_verbose = verbose;
	a.cfg.verbose += verbose;
	a.cfg.foreground |= foreground;
	if (check_only) {
		/* What the parser cannot see: certificate, key and CA files,
		 * OpenSSL cipher and group names. */
		for (int i = 0; i < a.cfg.nservers; i++)
			if (server_check(&a.cfg.servers[i], err, sizeof(err)) < 0) {
				fprintf(stderr, "iketcpd: %s\n", err);
				return 1;
			}
		for (int i = 0; i < a.cfg.nclients; i++)
			if (client_check(&a.cfg.clients[i], err, sizeof(err)) < 0) {
				fprintf(stderr, "iketcpd: %s\n", err);
				return 1;
			}
		if (a.cfg.verbose)
			iketcpd_config_dump(&a.cfg, STDOUT_FILENO);
		printf("configuration OK: %d server and %d client sections\n", a.cfg.nservers,
		       a.cfg.nclients);
		return 0;
	}

	log_init("iketcpd", a.cfg.verbose, !a.cfg.foreground);
	/* Now, as started: after the switch to user the socket may be out of
	 * reach (it is 0666 under systemd, but nothing promises that). */
	err[0] = '\0';
	if (sdnotify_init(err, sizeof(err)) == 0 && err[0])
		log_warn("%s", err);
	else if (sdnotify_enabled() && !a.cfg.foreground)
		log_warn("NOTIFY_SOCKET is set but -f is not: the detached child is not the "
			 "process the service manager started, which may refuse its "
			 "notifications; run iketcpd -f under a service manager");
	/* Root that never gives itself up is the whole host to whoever finds a
	 * bug in a parser of untrusted bytes: only when asked for. */
	if (geteuid() == 0 && !a.cfg.user[0] && !a.cfg.allow_root && !allow_root_env()) {
		log_err("refusing to run as root without user: set user = NAME (an account of "
			"its own; iketcpd switches to it once its sockets are open), or "
			"allow-root = yes (or IKETCPD_ALLOW_ROOT=1) to stay root; see iketcpd(8)");
		return 1;
	}
	/* Before any socket: running out later shows up only under load. */
	if (nofile_for(&a.cfg, "cannot start", !a.cfg.foreground) < 0)
		return 1;
	a.unpriv_start = privs_unpriv_port_start();
	signal(SIGPIPE, SIG_IGN); /* a peer that resets while we write: EPIPE, not death */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
		log_err("sigprocmask: %s", strerror(errno));
		return 1;
	}
	unsigned nworkers = workers_wanted(&a.cfg);
	if (nworkers > 1 &&
	    workers_start(&a.cfg, nworkers, !a.cfg.foreground, worker_restarted, &a) < 0)
		return 1;
	return run(&a);
}
