/* Supervisor and workers (workers.h). */
#include "workers.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "sdnotify.h"
#include "statmerge.h"

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

/* One message on the socketpair (SOCK_SEQPACKET keeps the boundaries, so
 * a late answer to an older request is recognised by its seq and
 * dropped whole). */
enum { MSG_READY = 'R', MSG_QUERY = 'Q', MSG_ANSWER = 'A' };
struct msg {
	uint8_t type;
	uint8_t req;  /* MSG_QUERY: enum statsock_req */
	uint8_t last; /* MSG_ANSWER: the answer's last chunk */
	uint8_t pad;
	uint32_t seq;
};
#define CHUNK (32 * 1024) /* well below the socketpair's send buffer */

struct worker {
	unsigned idx;
	pid_t pid; /* 0: not running */
	int ctl;   /* the supervisor's end; -1 */
	int ready;
	uint64_t started_ms;
	unsigned backoff_ms;
	struct watcher cw;
	struct timer restart;
};

/* A listener address and its socket for each worker (-1: closed). */
struct lst {
	struct iketcpd_addr addr;
	int *fd;
};

static struct {
	enum workers_role role;
	unsigned self, n;
	struct worker *w;
	struct lst *ls;
	size_t nls;
	struct loop *loop;
	int stopping, failed, all_reported;
	void (*all_ready)(void *);
	void *ready_arg;
	workers_child_fn *child;
	void *child_arg;
	uint32_t seq;
	/* worker side */
	int ctl;
	struct watcher ctlw;
	statsock_render_fn *render;
	void *render_arg;
	char *out;
	size_t out_len, out_off;
	uint32_t out_seq;
} W = {.ctl = -1};

enum workers_role
workers_role(void)
{
	return W.role;
}

unsigned
workers_index(void)
{
	return W.self;
}

unsigned
workers_wanted(const struct iketcpd_cfg *cfg)
{
	if (cfg->workers)
		return cfg->workers;
	long c = sysconf(_SC_NPROCESSORS_ONLN);
	return c < 1 ? 1 : c > IKETCPD_WORKERS_MAX ? IKETCPD_WORKERS_MAX : (unsigned)c;
}

int
workers_runs_servers(void)
{
	return W.role != WORKERS_SUPERVISOR;
}

int
workers_runs_clients(void)
{
	return W.role == WORKERS_SINGLE || (W.role == WORKERS_WORKER && W.self == 0);
}

uint64_t
workers_memory_share(uint64_t limit)
{
	if (W.role != WORKERS_WORKER)
		return limit;
	return limit / W.n ? limit / W.n : 1;
}

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The group's program: the socket index is a fold of the client's source
 * address modulo n. Classic BPF runs with the packet's data past the TCP
 * header; SKF_NET_OFF reaches back to the IP header, where the source
 * address is at 12 (IPv4) or 8..23 (IPv6). Folding (every byte reaches
 * the low bits) rather than the address's low bits alone keeps addresses
 * that differ in any byte apart; the kernel falls back to its own hash
 * when the index is beyond the group (while workers are still joining).
 */
static int
attach_cbpf(int fd, int family, unsigned n)
{
	struct sock_filter v4[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 8),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_filter v6[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 8),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 16),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 20),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 8),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog = family == AF_INET6
					 ? (struct sock_fprog){sizeof(v6) / sizeof(v6[0]), v6}
					 : (struct sock_fprog){sizeof(v4) / sizeof(v4[0]), v4};
	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog));
}

static int
shared_listener(const struct iketcpd_addr *a, int backlog)
{
	int fd = net_tcp_listen_shared(a, backlog);
	if (fd >= 0 && attach_cbpf(fd, a->ss.ss_family, W.n) < 0) {
		char as[64];
		log_warn("listen on %s: SO_ATTACH_REUSEPORT_CBPF: %s: connections are spread by "
			 "the kernel's hash, and a client's reconnect may reach another worker",
			 iketcpd_addr_str(a, as, sizeof(as)), strerror(errno));
	}
	return fd;
}

/* net_listen_hook in a worker: its share of a listener bound before the
 * fork (a duplicate: a reload may close it, the group keeps the socket),
 * or for an address added by a reload, a new member of its group. */
static int
worker_listen(const struct iketcpd_addr *a, int backlog)
{
	for (size_t i = 0; i < W.nls; i++)
		if (W.ls[i].fd[W.self] >= 0 && iketcpd_addr_equal(&W.ls[i].addr, a))
			return fcntl(W.ls[i].fd[W.self], F_DUPFD_CLOEXEC, 0);
	return shared_listener(a, backlog);
}

static int
bind_all(const struct iketcpd_cfg *cfg)
{
	size_t max = 0;
	for (int s = 0; s < cfg->nservers; s++)
		max += (size_t)cfg->servers[s].nlisten + (size_t)cfg->servers[s].nlisten_tls;
	W.ls = calloc(max ? max : 1, sizeof(*W.ls));
	if (!W.ls)
		return -1;
	for (int s = 0; s < cfg->nservers; s++) {
		const struct iketcpd_server_cfg *sc = &cfg->servers[s];
		int nl = sc->nlisten + (sc->tls_cert[0] ? sc->nlisten_tls : 0);
		for (int k = 0; k < nl; k++) {
			const struct iketcpd_addr *a =
				k < sc->nlisten ? &sc->listen[k] : &sc->listen_tls[k - sc->nlisten];
			struct lst *l = &W.ls[W.nls];
			char as[64];
			l->addr = *a;
			l->fd = malloc(W.n * sizeof(int));
			if (!l->fd)
				return -1;
			W.nls++;
			for (unsigned w = 0; w < W.n; w++)
				l->fd[w] = -1;
			/* in worker order: a socket's index in the group is its
			 * place in the order of listen() */
			for (unsigned w = 0; w < W.n; w++) {
				l->fd[w] = w == 0 ? shared_listener(a, 1024)
						  : net_tcp_listen_shared(a, 1024);
				if (l->fd[w] < 0) {
					log_err("%s: listen on %s: %s", sc->name,
						iketcpd_addr_str(a, as, sizeof(as)),
						strerror(errno));
					return -1;
				}
			}
		}
	}
	return 0;
}

static void sup_ctl_cb(struct watcher *w, uint32_t ev);

/* In a new worker: what it must not hold, and its own settings. */
static void
child_setup(unsigned k, int ctl)
{
	W.role = WORKERS_WORKER;
	W.self = k;
	W.ctl = ctl;
	/* the siblings are the supervisor's to signal, never a worker's (a
	 * pid copied here may be reused by the time it would be used) */
	for (unsigned i = 0; i < W.n; i++) {
		W.w[i].pid = 0;
		if (W.w[i].ctl >= 0) {
			close(W.w[i].ctl);
			W.w[i].ctl = -1;
		}
	}
	for (size_t i = 0; i < W.nls; i++)
		for (unsigned j = 0; j < W.n; j++)
			if (j != k && W.ls[i].fd[j] >= 0) {
				close(W.ls[i].fd[j]);
				W.ls[i].fd[j] = -1;
			}
	sdnotify_close(); /* the supervisor speaks for all */
	/* the supervisor's death also ends it (besides the socketpair's end) */
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM, 0L, 0L, 0L);
	net_listen_hook = worker_listen;
	log_info("worker %u (pid %d) starting", k, (int)getpid());
}

/* Forks worker k. Returns 0 in the supervisor, 1 in the child, -1. */
static int
spawn(unsigned k)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_err("worker %u: socketpair: %s", k, strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_err("worker %u: fork: %s", k, strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		child_setup(k, sv[1]);
		return 1;
	}
	close(sv[1]);
	struct worker *w = &W.w[k];
	w->pid = pid;
	w->ctl = sv[0];
	w->ready = 0;
	w->started_ms = now_ms();
	if (W.loop) {
		w->cw = (struct watcher){.fd = w->ctl, .cb = sup_ctl_cb, .data = w};
		(void)watcher_start(W.loop, &w->cw, EPOLLIN);
	}
	return 0;
}

int
workers_start(const struct iketcpd_cfg *cfg, unsigned n, int daemonize, workers_child_fn *child,
	      void *arg)
{
	W.n = n;
	W.child = child;
	W.child_arg = arg;
	W.w = calloc(n, sizeof(*W.w));
	if (!W.w)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		W.w[i].idx = i;
		W.w[i].ctl = -1;
	}
	if (bind_all(cfg) < 0)
		return -1;
	log_info("%u workers: listeners bound %u times each (SO_REUSEPORT, by source address)", n,
		 n);
	if (daemonize && daemon(0, 0) < 0) {
		log_err("daemon: %s", strerror(errno));
		return -1;
	}
	/* SIGCHLD is read from the supervisor's signalfd */
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGCHLD);
	sigprocmask(SIG_BLOCK, &m, NULL);
	W.role = WORKERS_SUPERVISOR;
	for (unsigned k = 0; k < n; k++) {
		int r = spawn(k);
		if (r != 0)
			return r < 0 ? -1 : WORKERS_WORKER;
	}
	return WORKERS_SUPERVISOR;
}

/* ---- supervisor ------------------------------------------------------------ */

static void
ctl_close(struct worker *w)
{
	if (w->ctl < 0)
		return;
	if (W.loop)
		watcher_stop(W.loop, &w->cw);
	close(w->ctl);
	w->ctl = -1;
}

static void
check_all_ready(void)
{
	if (W.all_reported)
		return;
	for (unsigned i = 0; i < W.n; i++)
		if (!W.w[i].ready)
			return;
	W.all_reported = 1;
	log_info("all %u workers ready", W.n);
	if (W.all_ready)
		W.all_ready(W.ready_arg);
}

/* One message from w: returns the message's length (answers are handled
 * by the caller through buf), 0 at the end, -1 when nothing is there. */
static ssize_t
ctl_recv(struct worker *w, char *buf, size_t cap)
{
	ssize_t r = recv(w->ctl, buf, cap, MSG_DONTWAIT);
	if (r < 0)
		return (errno == EAGAIN || errno == EINTR) ? -1 : 0;
	if (r >= (ssize_t)sizeof(struct msg) && buf[0] == MSG_READY) {
		w->ready = 1;
		check_all_ready();
	}
	return r;
}

static void
sup_ctl_cb(struct watcher *cw, uint32_t ev)
{
	struct worker *w = cw->data;
	char buf[sizeof(struct msg) + CHUNK];
	(void)ev;
	for (;;) {
		ssize_t r = ctl_recv(w, buf, sizeof(buf));
		if (r < 0)
			return;
		if (r == 0) {
			ctl_close(w); /* it is gone: SIGCHLD tells the rest */
			return;
		}
		/* an answer outside workers_render(): late, dropped */
	}
}

static void
restart_cb(struct timer *t)
{
	struct worker *w = t->data;
	if (W.stopping || w->pid)
		return;
	log_info("worker %u: restarting", w->idx);
	int r = spawn(w->idx);
	if (r > 0)
		W.child(W.child_arg); /* does not return */
	if (r < 0)
		timer_start(W.loop, &w->restart, w->backoff_ms);
}

void
workers_supervise(struct loop *l, void (*all_ready)(void *), void *arg)
{
	W.loop = l;
	W.all_ready = all_ready;
	W.ready_arg = arg;
	for (unsigned i = 0; i < W.n; i++) {
		struct worker *w = &W.w[i];
		timer_init(&w->restart, restart_cb, w);
		if (w->ctl >= 0) {
			w->cw = (struct watcher){.fd = w->ctl, .cb = sup_ctl_cb, .data = w};
			(void)watcher_start(l, &w->cw, EPOLLIN);
		}
	}
}

void
workers_reap(void)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		struct worker *w = NULL;
		for (unsigned i = 0; i < W.n && !w; i++)
			if (W.w[i].pid == pid)
				w = &W.w[i];
		if (!w)
			continue;
		w->pid = 0;
		w->ready = 0;
		ctl_close(w);
		char how[64];
		if (WIFSIGNALED(st))
			snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(st));
		else
			snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(st));
		if (W.stopping) {
			log_info("worker %u (pid %d) %s", w->idx, (int)pid, how);
			continue;
		}
		if (!W.all_reported) {
			log_err("worker %u (pid %d) %s before it was ready: stopping", w->idx,
				(int)pid, how);
			W.failed = 1;
			kill(getpid(), SIGTERM);
			continue;
		}
		uint64_t lived = now_ms() - w->started_ms;
		if (!w->backoff_ms || lived >= WORKERS_STABLE_MS)
			w->backoff_ms = WORKERS_BACKOFF_MIN_MS;
		else if (w->backoff_ms < WORKERS_BACKOFF_MAX_MS)
			w->backoff_ms = w->backoff_ms * 2 > WORKERS_BACKOFF_MAX_MS
						? WORKERS_BACKOFF_MAX_MS
						: w->backoff_ms * 2;
		log_err("worker %u (pid %d) %s after %llu ms: restarting it in %u ms (its "
			"connections are lost; the other workers' are not)",
			w->idx, (int)pid, how, (unsigned long long)lived, w->backoff_ms);
		timer_start(W.loop, &w->restart, w->backoff_ms);
	}
}

void
workers_signal(int sig)
{
	if (W.role != WORKERS_SUPERVISOR)
		return;
	for (unsigned i = 0; i < W.n; i++)
		if (W.w[i].pid > 0)
			kill(W.w[i].pid, sig);
}

void
workers_stop(void)
{
	W.stopping = 1;
	for (unsigned i = 0; i < W.n; i++)
		if (W.loop)
			timer_stop(W.loop, &W.w[i].restart);
	/* no new connections queue for workers that are draining */
	for (size_t i = 0; i < W.nls; i++)
		for (unsigned j = 0; j < W.n; j++)
			if (W.ls[i].fd[j] >= 0) {
				close(W.ls[i].fd[j]);
				W.ls[i].fd[j] = -1;
			}
	workers_signal(SIGTERM);
}

unsigned
workers_count(void)
{
	return W.n;
}

unsigned
workers_alive(void)
{
	unsigned k = 0;
	for (unsigned i = 0; i < W.n; i++)
		k += W.w[i].pid > 0;
	return k;
}

int
workers_failed(void)
{
	return W.failed;
}

static int
cfg_listens(const struct iketcpd_cfg *cfg, const struct iketcpd_addr *a)
{
	for (int s = 0; s < cfg->nservers; s++) {
		const struct iketcpd_server_cfg *sc = &cfg->servers[s];
		for (int k = 0; k < sc->nlisten; k++)
			if (iketcpd_addr_equal(&sc->listen[k], a))
				return 1;
		for (int k = 0; sc->tls_cert[0] && k < sc->nlisten_tls; k++)
			if (iketcpd_addr_equal(&sc->listen_tls[k], a))
				return 1;
	}
	return 0;
}

void
workers_reload(const struct iketcpd_cfg *cfg)
{
	if (W.role == WORKERS_SINGLE)
		return;
	if (workers_wanted(cfg) != W.n && W.role == WORKERS_SUPERVISOR)
		log_warn("reload: workers = %u takes effect at the next start only (running %u)",
			 workers_wanted(cfg), W.n);
	for (size_t i = 0; i < W.nls; i++) {
		if (cfg_listens(cfg, &W.ls[i].addr))
			continue;
		for (unsigned j = 0; j < W.n; j++)
			if (W.ls[i].fd[j] >= 0) {
				close(W.ls[i].fd[j]);
				W.ls[i].fd[j] = -1;
			}
	}
}

/* The supervisor's part: a blocking gather with a deadline. It carries
 * no traffic, so waiting here delays only other stats readers. */
void
workers_render(enum statsock_req req, FILE *fp)
{
	char *ans[IKETCPD_WORKERS_MAX + 1] = {0};
	size_t len[IKETCPD_WORKERS_MAX + 1] = {0};
	FILE *mf[IKETCPD_WORKERS_MAX + 1] = {0};
	int pending[IKETCPD_WORKERS_MAX] = {0}, done[IKETCPD_WORKERS_MAX] = {0};
	unsigned asked = 0, answered = 0;
	uint32_t seq = ++W.seq;
	static char buf[sizeof(struct msg) + CHUNK];

	mf[0] = open_memstream(&ans[0], &len[0]);
	if (!mf[0])
		return;
	statsock_render(req, NULL, 0, NULL, 0, mf[0]);
	for (unsigned i = 0; i < W.n; i++) {
		struct worker *w = &W.w[i];
		struct msg q = {.type = MSG_QUERY, .req = (uint8_t)req, .seq = seq};
		if (w->pid <= 0 || w->ctl < 0 || !w->ready)
			continue;
		if (send(w->ctl, &q, sizeof(q), MSG_DONTWAIT | MSG_NOSIGNAL) != sizeof(q))
			continue;
		mf[i + 1] = open_memstream(&ans[i + 1], &len[i + 1]);
		if (!mf[i + 1])
			continue;
		pending[i] = 1;
		asked++;
	}
	uint64_t deadline = now_ms() + WORKERS_ANSWER_MS;
	while (answered < asked) {
		struct pollfd pf[IKETCPD_WORKERS_MAX];
		unsigned idx[IKETCPD_WORKERS_MAX], np = 0;
		for (unsigned i = 0; i < W.n; i++)
			if (pending[i]) {
				pf[np] = (struct pollfd){.fd = W.w[i].ctl, .events = POLLIN};
				idx[np++] = i;
			}
		uint64_t now = now_ms();
		if (np == 0 || now >= deadline)
			break;
		int r = poll(pf, np, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (unsigned p = 0; p < np; p++) {
			if (!pf[p].revents)
				continue;
			struct worker *w = &W.w[idx[p]];
			for (;;) {
				ssize_t n = ctl_recv(w, buf, sizeof(buf));
				if (n < 0)
					break;
				if (n == 0) {
					pending[idx[p]] = 0;
					asked--;
					break;
				}
				struct msg m;
				if ((size_t)n < sizeof(m))
					continue;
				memcpy(&m, buf, sizeof(m));
				if (m.type != MSG_ANSWER || m.seq != seq)
					continue;
				fwrite(buf + sizeof(m), 1, (size_t)n - sizeof(m), mf[idx[p] + 1]);
				if (m.last) {
					pending[idx[p]] = 0;
					done[idx[p]] = 1;
					answered++;
					break;
				}
			}
		}
	}
	const char *in[IKETCPD_WORKERS_MAX + 1];
	size_t inlen[IKETCPD_WORKERS_MAX + 1], nin = 0;
	for (unsigned i = 0; i <= W.n; i++) {
		if (mf[i])
			fclose(mf[i]);
		if (ans[i] && (i == 0 || done[i - 1])) {
			in[nin] = ans[i];
			inlen[nin++] = len[i];
		}
	}
	if (statmerge(req, in, inlen, nin, fp) < 0)
		fprintf(fp, "error: out of memory\n");
	if (req == STATSOCK_STATS) {
		fprintf(fp, "global iketcpd workers %u\n", W.n);
		fprintf(fp, "global iketcpd workers_answered %u\n", answered);
	} else if (req == STATSOCK_PROMETHEUS) {
		fprintf(fp,
			"# HELP iketcpd_workers worker processes configured\n"
			"# TYPE iketcpd_workers gauge\n"
			"iketcpd_workers %u\n"
			"# HELP iketcpd_workers_answered workers whose counters are in this "
			"answer\n"
			"# TYPE iketcpd_workers_answered gauge\n"
			"iketcpd_workers_answered %u\n",
			W.n, answered);
	} else if (answered < W.n) {
		fprintf(fp, "workers %u of %u answered\n", answered, W.n);
	}
	for (unsigned i = 0; i <= W.n; i++)
		free(ans[i]);
}

/* ---- worker ---------------------------------------------------------------- */

static void
worker_flush(void)
{
	char hdr[sizeof(struct msg)];
	while (W.out) {
		size_t left = W.out_len - W.out_off, n = left > CHUNK ? CHUNK : left;
		struct msg m = {.type = MSG_ANSWER, .last = n == left, .seq = W.out_seq};
		memcpy(hdr, &m, sizeof(m));
		struct iovec iov[2] = {{hdr, sizeof(hdr)}, {W.out + W.out_off, n}};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
		ssize_t r = sendmsg(W.ctl, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			(void)watcher_set(W.loop, &W.ctlw, EPOLLIN | EPOLLOUT);
			return;
		}
		if (r < 0 || m.last) {
			free(W.out);
			W.out = NULL;
			break;
		}
		W.out_off += n;
	}
	(void)watcher_set(W.loop, &W.ctlw, EPOLLIN);
}

static void
worker_ctl_cb(struct watcher *cw, uint32_t ev)
{
	(void)cw;
	if (ev & EPOLLOUT)
		worker_flush();
	for (;;) {
		struct msg m;
		ssize_t r = recv(W.ctl, &m, sizeof(m), MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			/* the supervisor is gone: stop as on SIGTERM */
			log_warn("worker %u: the supervisor is gone, stopping", W.self);
			watcher_stop(W.loop, &W.ctlw);
			kill(getpid(), SIGTERM);
			return;
		}
		if (r != sizeof(m) || m.type != MSG_QUERY || m.req > STATSOCK_PROMETHEUS)
			continue;
		free(W.out); /* an older answer not sent yet: the asker gave up */
		W.out = NULL;
		W.out_len = W.out_off = 0;
		FILE *fp = open_memstream(&W.out, &W.out_len);
		if (!fp)
			continue;
		W.render(W.render_arg, (enum statsock_req)m.req, fp);
		if (fclose(fp) != 0) {
			free(W.out);
			W.out = NULL;
			continue;
		}
		W.out_seq = m.seq;
		worker_flush();
	}
}

void
workers_attach(struct loop *l, statsock_render_fn *render, void *arg)
{
	W.loop = l;
	W.render = render;
	W.render_arg = arg;
	W.ctlw = (struct watcher){.fd = W.ctl, .cb = worker_ctl_cb, .data = NULL};
	if (watcher_start(l, &W.ctlw, EPOLLIN) < 0)
		log_err("worker %u: cannot watch the supervisor's socket: %s", W.self,
			strerror(errno));
}

void
workers_ready(void)
{
	struct msg m = {.type = MSG_READY};
	if (send(W.ctl, &m, sizeof(m), MSG_NOSIGNAL) != sizeof(m))
		log_err("worker %u: cannot tell the supervisor it is ready: %s", W.self,
			strerror(errno));
	log_info("worker %u (pid %d) ready", W.self, (int)getpid());
}
