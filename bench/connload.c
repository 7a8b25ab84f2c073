/*
 * Many-clients load generator for an iketcpd server (not a test).
 *
 * Opens N RFC 9329 connections to an iketcpd server, each one IKE session
 * with its own IKE SPIs and its own ESP SPI, and plays the server's backend
 * itself: a UDP socket in this process is the server's --backend. Threads:
 *
 *   clients (main thread): non-blocking connect()s from --sources distinct
 *     127.x.y.z source addresses (bound before connect), up to --inflight
 *     at once, driven by one epoll. A connection sends the IKETCP prefix
 *     and an IKE_SA_INIT request (zero non-ESP marker, 2-byte length); when
 *     the backend's IKE_SA_INIT response has come back over TCP it counts
 *     as established, and it sends an IKE_AUTH request (message ID 1), whose
 *     answer ends the session's half-open state in the server. With --tls
 *     every connection is TLS 1.3 (OpenSSL, no certificate check).
 *
 *   backend: recvmmsg on the backend socket; IKE requests are answered to
 *     their source (the session's socket in iketcpd) with a response of the
 *     same SPI and message ID; ESP is counted by run tag, with its one-way
 *     latency (send time in the datagram, same clock).
 *
 * Phases (--phases, in this order):
 *
 *   connect  open N connections as fast as the window allows; conn/s is
 *            established connections / (last answer - first connect),
 *            p50/p99 of connect() -> IKE_SA_INIT answer, failures.
 *   idle     VmRSS of --pid read before the first connection and again
 *            --idle-wait seconds after the last answer (the server trims
 *            every 5 s), with all N open and silent: the difference / N.
 *   flood    (plain only) for each K of --flood-k: K of the N connections (spread over
 *            them) send ESP frames of --size bytes, each with its own SPI,
 *            at an aggregate --rate frames/s and then flat out, for
 *            --duration seconds after a --warmup. The backend counts ESP
 *            delivered per second of the measured window and the loss after
 *            a drain; server CPU from /proc/PID/stat over the same window.
 *            The K=max / K=min ratio of each load is printed.
 *
 * Output: "RESULT key=value ..." lines on stdout, tables on stderr.
 *
 * usage: connload --server ADDR:PORT --backend ADDR:PORT --pid PID [-n N]
 *                 [--tls] [--phases "connect idle flood"] [...] (connload -h)
 */
#define _GNU_SOURCE /* recvmmsg, CPU affinity */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 9000
#define MIN_SIZE 32
#define RX_BATCH 64
/* The backend reads a datagram's first 512 bytes (MSG_TRUNC still gives its
 * length): ESP is counted from its header, and the copy of the rest would
 * only cost the core that also runs the senders. IKE here is < 512 bytes. */
#define RX_SLOT 512
#define RBUF 1024     /* a connection reads IKE answers only */
#define OBUF 65536    /* per active connection during a flood */
#define INIT_BODY 300 /* IKE_SA_INIT request: marker + header + payload */
#define AUTH_BODY 400
#define MAX_K 16

/* ESP body: SPI, ESP seq, run tag, magic, seq (u64), send time ns (u64) */
#define OFF_TAG 8
#define OFF_MAGIC 12
#define OFF_SEQ 16
#define OFF_TS 24
#define MAGIC 0x636c6421u

#define HSUB 64
#define HBUCKETS (HSUB * 60)

enum cstate { C_FREE, C_CONNECTING, C_HANDSHAKE, C_WAIT_INIT, C_WAIT_AUTH, C_OPEN, C_DEAD };

struct conn {
	int fd;
	uint8_t state;
	uint16_t rlen;
	uint32_t idx;
	uint64_t spi_i;
	uint64_t t0; /* connect() */
	SSL *ssl;
	uint8_t *rbuf;
	/* flood only */
	uint8_t *ob;
	uint32_t olen;
	uint32_t esp_seq;
	int dirty;
	uint64_t pushed; /* frames of this flood run */
	uint32_t deliv0; /* deliv_c[idx] when the run started */
};

struct opts {
	struct sockaddr_in server, backend;
	int n, sources, inflight, tls, pid, size, rate, cpu_main, cpu_backend, quiet;
	double idle_wait, duration, warmup, timeout;
	int k[MAX_K], nk;
	int ph_connect, ph_idle, ph_flood;
	int load_fixed, load_flat;
	int sndbuf;
	long flat_window;
	const char *label;
};

struct backend {
	int fd;
	atomic_int stop;
	atomic_uint tag;
	atomic_uint_fast64_t esp, esp_bytes, ike_req, ike_sent, foreign;
	atomic_int lat_on;
	uint64_t hist[HBUCKETS]; /* written by the backend thread while lat_on */
	uint64_t nlat;
	int cpu;
};

static struct opts O;
static struct backend B;
static struct conn *C;
static int EP;
static SSL_CTX *TLS_CTX;
static uint64_t *conn_lat; /* ns, per established connection */
/* ESP delivered to the backend per connection (SPI - ESP_SPI0), so that a
 * flat-out connection keeps a bounded amount in flight */
static _Atomic uint32_t *deliv_c;
#define ESP_SPI0 0x10000000u
static uint64_t nconn_lat;
static unsigned n_est, n_open, n_fail, n_closed, n_inflight, n_started;
static uint64_t t_first_connect, t_last_est;

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint32_t
get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static unsigned
hist_index(uint64_t v)
{
	if (v < 128)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - 6;
	unsigned i = shift * HSUB + (unsigned)(v >> shift);
	return i < HBUCKETS ? i : HBUCKETS - 1;
}

static uint64_t
hist_value(unsigned idx)
{
	if (idx < 128)
		return idx;
	unsigned shift = idx / HSUB - 1;
	uint64_t m = idx - (uint64_t)shift * HSUB;
	return (m << shift) + ((uint64_t)1 << shift) / 2;
}

static uint64_t
hist_pct(const uint64_t *h, uint64_t n, double p)
{
	if (!n)
		return 0;
	uint64_t want = (uint64_t)(p * (double)n + 0.999999), c = 0;
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < HBUCKETS; i++) {
		c += h[i];
		if (c >= want)
			return hist_value(i);
	}
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void
pin_self(int cpu)
{
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		fprintf(stderr, "connload: cannot pin to CPU %d\n", cpu);
}

/* utime + stime in seconds of a process, -1 if gone. */
static double
proc_cpu_s(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	unsigned long long ut = 0, st = 0;
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double
self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* VmRSS of pid in KiB, -1 if unknown. */
static long
rss_kib(int pid)
{
	char path[64], line[256];
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (!strncmp(line, "VmRSS:", 6)) {
			v = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(fp);
	return v;
}

/* ---- the backend --------------------------------------------------------------- */

/* An IKE message: zero marker, then the 28-byte header. */
static void
fill_ike(uint8_t *p, size_t len, uint64_t spi_i, uint64_t spi_r, uint8_t exch, uint8_t flags,
	 uint32_t mid)
{
	memset(p, 0, 4);
	put64(p + 4, spi_i);
	put64(p + 12, spi_r);
	p[20] = 33;   /* next payload: SA */
	p[21] = 0x20; /* version 2.0 */
	p[22] = exch;
	p[23] = flags;
	put32(p + 24, mid);
	put32(p + 28, (uint32_t)(len - 4));
	memset(p + 32, 0x5a, len - 32);
}

static void
backend_ike(uint8_t *p, size_t len, const struct sockaddr_in *src)
{
	if (len < 32 || (p[23] & 0x20)) /* a response: not ours to answer */
		return;
	atomic_fetch_add_explicit(&B.ike_req, 1, memory_order_relaxed);
	uint8_t out[512];
	uint64_t spi_i = get64(p + 4);
	uint8_t exch = p[22];
	uint32_t mid = get32(p + 24);
	size_t olen = exch == 34 ? 260 : 200;
	fill_ike(out, olen, spi_i, spi_i ^ 0x5a5a5a5a00000001ull, exch, 0x20, mid);
	if (sendto(B.fd, out, olen, 0, (const struct sockaddr *)src, sizeof(*src)) == (ssize_t)olen)
		atomic_fetch_add_explicit(&B.ike_sent, 1, memory_order_relaxed);
}

static void *
backend_main(void *arg)
{
	(void)arg;
	pin_self(B.cpu);
	static uint8_t buf[RX_BATCH][RX_SLOT];
	struct mmsghdr mm[RX_BATCH];
	struct iovec iov[RX_BATCH];
	struct sockaddr_in src[RX_BATCH];
	while (!atomic_load(&B.stop)) {
		for (int i = 0; i < RX_BATCH; i++) {
			iov[i].iov_base = buf[i];
			iov[i].iov_len = RX_SLOT;
			memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_hdr.msg_name = &src[i];
			mm[i].msg_hdr.msg_namelen = sizeof(src[i]);
		}
		/* recvmmsg's own timeout is only looked at after a datagram:
		 * SO_RCVTIMEO wakes the thread to see stop */
		int n = recvmmsg(B.fd, mm, RX_BATCH, MSG_WAITFORONE | MSG_TRUNC, NULL);
		if (n <= 0)
			continue;
		uint64_t now = now_ns();
		unsigned tag = atomic_load_explicit(&B.tag, memory_order_relaxed);
		int lat = atomic_load_explicit(&B.lat_on, memory_order_relaxed);
		uint64_t esp = 0, bytes = 0, foreign = 0;
		for (int i = 0; i < n; i++) {
			uint8_t *p = buf[i];
			size_t len = mm[i].msg_len;
			if (len >= 4 && !get32(p)) {
				if (len <= RX_SLOT)
					backend_ike(p, len, &src[i]);
				continue;
			}
			if (len < MIN_SIZE || get32(p + OFF_MAGIC) != MAGIC ||
			    get32(p + OFF_TAG) != tag) {
				foreign++;
				continue;
			}
			esp++;
			bytes += len;
			uint32_t ci = get32(p) - ESP_SPI0;
			if (ci < (uint32_t)O.n)
				atomic_fetch_add_explicit(&deliv_c[ci], 1, memory_order_relaxed);
			if (lat) {
				uint64_t ts = get64(p + OFF_TS);
				B.hist[hist_index(now > ts ? now - ts : 0)]++;
				B.nlat++;
			}
		}
		atomic_fetch_add_explicit(&B.esp, esp, memory_order_relaxed);
		atomic_fetch_add_explicit(&B.esp_bytes, bytes, memory_order_relaxed);
		atomic_fetch_add_explicit(&B.foreign, foreign, memory_order_relaxed);
	}
	return NULL;
}

/* ---- clients ------------------------------------------------------------------- */

static void
conn_dead(struct conn *c, int failed)
{
	if (c->state == C_DEAD || c->state == C_FREE)
		return;
	if (c->state < C_WAIT_AUTH)
		n_inflight--;
	if (failed)
		n_fail++;
	else
		n_closed++;
	if (c->state == C_OPEN)
		n_open--;
	c->state = C_DEAD;
	epoll_ctl(EP, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->ssl)
		SSL_free(c->ssl);
	c->ssl = NULL;
	close(c->fd);
	c->fd = -1;
}

static void
set_events(struct conn *c, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.u32 = c->idx};
	epoll_ctl(EP, EPOLL_CTL_MOD, c->fd, &e);
}

/* Writes a whole small message; these go into an empty socket buffer, so
 * a short write is a failure rather than something to resume. */
static int
conn_send(struct conn *c, const uint8_t *p, size_t len)
{
	if (c->ssl) {
		int r = SSL_write(c->ssl, p, (int)len);
		return r == (int)len ? 0 : -1;
	}
	ssize_t r = send(c->fd, p, len, MSG_NOSIGNAL);
	return r == (ssize_t)len ? 0 : -1;
}

static int
send_ike(struct conn *c, int prefix, uint8_t exch, uint32_t mid, size_t body)
{
	uint8_t msg[6 + 2 + 512];
	size_t off = 0;
	if (prefix) {
		memcpy(msg, "IKETCP", 6);
		off = 6;
	}
	msg[off] = (uint8_t)((body + 2) >> 8);
	msg[off + 1] = (uint8_t)(body + 2);
	fill_ike(msg + off + 2, body, c->spi_i, 0, exch, 0x08, mid);
	if (mid)
		put64(msg + off + 2 + 12, c->spi_i ^ 0x5a5a5a5a00000001ull);
	return conn_send(c, msg, off + 2 + body);
}

static void
conn_established(struct conn *c)
{
	uint64_t now = now_ns();
	conn_lat[nconn_lat++] = now - c->t0;
	t_last_est = now;
	n_est++;
	n_inflight--;
	c->state = C_WAIT_AUTH;
	if (send_ike(c, 0, 35, 1, AUTH_BODY) < 0)
		conn_dead(c, 1);
}

/* One frame from the server: the answer the state waits for. */
static void
conn_frame(struct conn *c, const uint8_t *body, size_t len)
{
	if (len < 32 || get32(body) || !(body[23] & 0x20))
		return;
	if (c->state == C_WAIT_INIT && body[22] == 34)
		conn_established(c);
	else if (c->state == C_WAIT_AUTH && body[22] == 35) {
		c->state = C_OPEN;
		n_open++;
	}
}

static void
conn_read(struct conn *c)
{
	for (;;) {
		int r;
		if (c->ssl) {
			r = SSL_read(c->ssl, c->rbuf + c->rlen, RBUF - c->rlen);
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					return;
				conn_dead(c, c->state != C_OPEN);
				return;
			}
		} else {
			r = (int)recv(c->fd, c->rbuf + c->rlen, RBUF - c->rlen, 0);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (r <= 0) {
				conn_dead(c, c->state != C_OPEN);
				return;
			}
		}
		c->rlen = (uint16_t)(c->rlen + r);
		size_t off = 0;
		while (c->rlen - off >= 2) {
			size_t flen = (size_t)c->rbuf[off] << 8 | c->rbuf[off + 1];
			if (flen < 2 || flen > RBUF) {
				conn_dead(c, 1);
				return;
			}
			if (c->rlen - off < flen)
				break;
			conn_frame(c, c->rbuf + off + 2, flen - 2);
			if (c->state == C_DEAD)
				return;
			off += flen;
		}
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen = (uint16_t)(c->rlen - off);
	}
}

static void
conn_start_ike(struct conn *c)
{
	c->state = C_WAIT_INIT;
	set_events(c, EPOLLIN);
	if (send_ike(c, 1, 34, 0, INIT_BODY) < 0)
		conn_dead(c, 1);
}

static void
conn_handshake(struct conn *c)
{
	int r = SSL_connect(c->ssl);
	if (r == 1) {
		conn_start_ike(c);
		return;
	}
	int e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		set_events(c, EPOLLIN);
	else if (e == SSL_ERROR_WANT_WRITE)
		set_events(c, EPOLLOUT);
	else
		conn_dead(c, 1);
}

static void
conn_event(struct conn *c, uint32_t ev)
{
	switch (c->state) {
	case C_CONNECTING: {
		int err = 0;
		socklen_t el = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
			conn_dead(c, 1);
			return;
		}
		if (O.tls) {
			c->ssl = SSL_new(TLS_CTX);
			if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
				conn_dead(c, 1);
				return;
			}
			c->state = C_HANDSHAKE;
			conn_handshake(c);
		} else {
			conn_start_ike(c);
		}
		return;
	}
	case C_HANDSHAKE:
		conn_handshake(c);
		return;
	case C_WAIT_INIT:
	case C_WAIT_AUTH:
	case C_OPEN:
		if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))
			conn_read(c);
		return;
	default:
		return;
	}
}

/* Source address i: 127.1.0.1 upwards (127.1.0.0/16, then 127.2...). */
static uint32_t
source_addr(int i)
{
	return (127u << 24) + (1u << 16) + 1u + (uint32_t)i;
}

static void
conn_open(int i)
{
	struct conn *c = &C[i];
	c->idx = (uint32_t)i;
	c->spi_i = 0x1000000000000000ull + ((uint64_t)(i + 1) << 20) + (uint64_t)getpid();
	c->rbuf = malloc(RBUF);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!c->rbuf || c->fd < 0) {
		c->state = C_DEAD;
		n_fail++;
		return;
	}
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	struct sockaddr_in src = {.sin_family = AF_INET};
	src.sin_addr.s_addr = htonl(source_addr(i % O.sources));
	c->t0 = now_ns();
	if (!t_first_connect)
		t_first_connect = c->t0;
	n_inflight++;
	n_started++;
	c->state = C_CONNECTING;
	struct epoll_event e = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
	if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    epoll_ctl(EP, EPOLL_CTL_ADD, c->fd, &e) < 0) {
		conn_dead(c, 1);
		return;
	}
	if (connect(c->fd, (struct sockaddr *)&O.server, sizeof(O.server)) < 0 &&
	    errno != EINPROGRESS) {
		conn_dead(c, 1);
		return;
	}
}

static void
poll_conns(int timeout_ms)
{
	struct epoll_event ev[256];
	int n = epoll_wait(EP, ev, 256, timeout_ms);
	for (int i = 0; i < n; i++)
		conn_event(&C[ev[i].data.u32], ev[i].events);
}

static int
phase_connect(void)
{
	uint64_t deadline = now_ns() + (uint64_t)(O.timeout * 1e9);
	int next = 0;
	double c0 = O.pid ? proc_cpu_s(O.pid) : 0;
	while (now_ns() < deadline) {
		while (next < O.n && (int)n_inflight < O.inflight)
			conn_open(next++);
		/* done when every connection got its IKE_AUTH answer or failed */
		if (next == O.n && n_open + n_fail + n_closed >= (unsigned)O.n)
			break;
		poll_conns(10);
	}
	double c1 = O.pid ? proc_cpu_s(O.pid) : 0;
	uint64_t wall = t_last_est > t_first_connect ? t_last_est - t_first_connect : 1;
	/* both IKE exchanges of every connection, per established one */
	double srv_us = n_est ? (c1 - c0) * 1e6 / n_est : 0;
	double rate = (double)n_est / ((double)wall / 1e9);
	qsort(conn_lat, nconn_lat, sizeof(*conn_lat), cmp_u64);
	uint64_t p50 = nconn_lat ? conn_lat[nconn_lat / 2] : 0;
	uint64_t p99 = nconn_lat ? conn_lat[(nconn_lat * 99) / 100] : 0;
	uint64_t pmax = nconn_lat ? conn_lat[nconn_lat - 1] : 0;
	unsigned pending = (unsigned)O.n - n_open - n_fail - n_closed;
	printf("RESULT phase=connect label=%s tls=%d conns=%d sources=%d inflight=%d "
	       "established=%u open=%u failed=%u pending=%u wall_s=%.3f conn_per_s=%.0f "
	       "p50_us=%.0f p99_us=%.0f max_us=%.0f server_cpu_us_per_conn=%.1f\n",
	       O.label, O.tls, O.n, O.sources, O.inflight, n_est, n_open, n_fail + n_closed,
	       pending, (double)wall / 1e9, rate, (double)p50 / 1e3, (double)p99 / 1e3,
	       (double)pmax / 1e3, srv_us);
	fflush(stdout);
	if (!O.quiet) {
		fprintf(stderr,
			"\n%-8s %-5s %7s %7s %8s %9s %8s %9s %9s %9s %12s\n"
			"%-8s %-5s %7d %7d %8u %9u %8.2f %9.0f %9.0f %9.0f %12.1f\n",
			"phase", "tls", "conns", "sources", "estab", "failed", "wall s", "conn/s",
			"p50 us", "p99 us", "srv CPU us/c", "connect", O.tls ? "yes" : "no", O.n,
			O.sources, n_est, n_fail + n_closed, (double)wall / 1e9, rate,
			(double)p50 / 1e3, (double)p99 / 1e3, srv_us);
	}
	return n_open == (unsigned)O.n ? 0 : -1;
}

static void
phase_idle(long rss0)
{
	uint64_t until = now_ns() + (uint64_t)(O.idle_wait * 1e9);
	unsigned closed0 = n_closed + n_fail;
	double c0 = proc_cpu_s(O.pid);
	uint64_t t0 = now_ns();
	while (now_ns() < until)
		poll_conns(100);
	long rss1 = rss_kib(O.pid);
	/* an idle server with N connections should cost nothing: no per-
	 * connection timers or scans beyond the 5 s trim sweep */
	double idle_cpu = 100.0 * (proc_cpu_s(O.pid) - c0) / ((double)(now_ns() - t0) / 1e9);
	double per = n_open ? (double)(rss1 - rss0) / n_open : 0;
	printf("RESULT phase=idle label=%s tls=%d conns_open=%u rss_before_kib=%ld "
	       "rss_after_kib=%ld kib_per_conn=%.2f closed_while_idle=%u idle_wait_s=%.1f "
	       "server_cpu_pct=%.2f\n",
	       O.label, O.tls, n_open, rss0, rss1, per, n_closed + n_fail - closed0, O.idle_wait,
	       idle_cpu);
	fflush(stdout);
	if (!O.quiet)
		fprintf(stderr,
			"\n%-8s %-5s %9s %13s %12s %10s\n%-8s %-5s %9u %13ld %12ld %10.2f\n",
			"phase", "tls", "open", "RSS before KiB", "RSS after KiB", "KiB/conn",
			"idle", O.tls ? "yes" : "no", n_open, rss0, rss1, per);
}

/* ---- flood ----------------------------------------------------------------- */

struct flood {
	struct conn **act;
	int k;
	uint64_t seq, sent, skipped;
	uint32_t tag;
	struct conn **dirty;
	int ndirty;
};

static int
conn_push(struct flood *f, struct conn *c)
{
	uint32_t fl = (uint32_t)O.size + 2;
	if (c->olen + fl > OBUF) {
		f->skipped++;
		return -1;
	}
	uint8_t *p = c->ob + c->olen;
	p[0] = (uint8_t)(fl >> 8);
	p[1] = (uint8_t)fl;
	p += 2;
	put32(p, ESP_SPI0 + c->idx);
	put32(p + 4, ++c->esp_seq);
	put32(p + OFF_TAG, f->tag);
	put32(p + OFF_MAGIC, MAGIC);
	put64(p + OFF_SEQ, f->seq++);
	put64(p + OFF_TS, now_ns());
	c->olen += fl;
	c->pushed++;
	f->sent++;
	if (!c->dirty) {
		c->dirty = 1;
		f->dirty[f->ndirty++] = c;
	}
	return 0;
}

/* Writes what c holds; 1 when it is empty afterwards. */
static int
conn_flush(struct conn *c)
{
	if (!c->olen)
		return 1;
	ssize_t r;
	if (c->ssl) {
		r = SSL_write(c->ssl, c->ob, (int)c->olen);
		if (r <= 0)
			return 0;
	} else {
		r = send(c->fd, c->ob, c->olen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r <= 0)
			return 0;
	}
	memmove(c->ob, c->ob + r, c->olen - (size_t)r);
	c->olen -= (uint32_t)r;
	return c->olen == 0;
}

static void
flush_dirty(struct flood *f)
{
	int keep = 0;
	for (int i = 0; i < f->ndirty; i++) {
		struct conn *c = f->dirty[i];
		if (conn_flush(c))
			c->dirty = 0;
		else
			f->dirty[keep++] = c;
	}
	f->ndirty = keep;
}

/*
 * Flat out: every active connection is kept filled, but with at most
 * --flat-window / K bytes between pushed and delivered to the backend.
 * Without a bound, K connections fill K kernel send and receive buffers
 * (tcp_wmem, and tcp_rmem autotuned up to 32 MiB on the server side): at
 * K = 1000 that drove the kernel into TCP memory pressure (TCPRcvQDrop,
 * RcvPruned in /proc/net/netstat) and the flood stalled on retransmission
 * timeouts, which measures the kernel's limit, not the relay.
 */
static void
flat_step(struct flood *f)
{
	uint64_t wf = (uint64_t)O.flat_window / ((uint64_t)f->k * ((uint64_t)O.size + 2));
	if (wf < 8)
		wf = 8;
	int progress = 0;
	for (int i = 0; i < f->k; i++) {
		struct conn *c = f->act[i];
		uint64_t done =
			atomic_load_explicit(&deliv_c[c->idx], memory_order_relaxed) - c->deliv0;
		uint64_t inflight = c->pushed > done ? c->pushed - done : 0;
		while (inflight < wf && c->olen + (uint32_t)O.size + 2 <= OBUF) {
			conn_push(f, c);
			inflight++;
		}
		uint32_t before = c->olen;
		conn_flush(c);
		progress |= c->olen != before;
	}
	f->ndirty = 0; /* flat out tracks nothing: it goes over all of them */
	for (int i = 0; i < f->k; i++)
		f->act[i]->dirty = 0;
	if (!progress) {
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
	}
}

/* The frames due by now on the absolute schedule, round robin over the
 * active connections, each connection's share written with one send. */
static void
rate_step(struct flood *f, uint64_t start, uint64_t *rr, uint64_t *due_total)
{
	uint64_t now = now_ns();
	uint64_t want = (uint64_t)((double)(now - start) * (double)O.rate / 1e9);
	uint64_t cap = (uint64_t)O.rate / 100 + 1; /* catch up at most 10 ms */
	if (want > *due_total + cap) {
		f->skipped += want - *due_total - cap;
		*due_total = want - cap;
	}
	while (*due_total < want) {
		conn_push(f, f->act[*rr % (uint64_t)f->k]);
		(*rr)++;
		(*due_total)++;
	}
	flush_dirty(f);
	uint64_t next = start + (uint64_t)((double)(*due_total + 1) * 1e9 / O.rate);
	if (next < now + 50000)
		next = now + 50000;
	struct timespec ts = {(time_t)(next / 1000000000u), (long)(next % 1000000000u)};
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

struct flood_res {
	int k, rate;
	double sent_ps, deliv_ps, loss_pct, srv_cpu_pct, srv_ns, gen_cpu_pct, mbit, cap_ps;
	uint64_t sent, delivered, p50, p99;
};

static struct flood_res
flood_run(int k, int rate, uint32_t tag)
{
	struct flood f = {.k = k, .tag = tag};
	struct flood_res res = {.k = k, .rate = rate};
	int saved_rate = O.rate;
	O.rate = rate;
	f.act = calloc((size_t)k, sizeof(*f.act));
	f.dirty = calloc((size_t)k, sizeof(*f.dirty));
	int got = 0;
	for (int i = 0; i < k; i++) {
		/* spread over all open connections */
		int idx = (int)((int64_t)i * O.n / k);
		while (idx < O.n && C[idx].state != C_OPEN)
			idx++;
		if (idx >= O.n)
			break;
		struct conn *c = &C[idx];
		if (!c->ob && !(c->ob = malloc(OBUF)))
			break;
		c->olen = 0;
		c->dirty = 0;
		c->pushed = 0;
		c->deliv0 = atomic_load(&deliv_c[c->idx]);
		if (O.sndbuf)
			setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &O.sndbuf, sizeof(O.sndbuf));
		f.act[got] = c;
		got++;
	}
	f.k = got;
	res.k = got;
	atomic_store(&B.tag, tag);
	uint64_t start = now_ns(), rr = 0, due = 0;
	uint64_t t_meas = start + (uint64_t)(O.warmup * 1e9);
	uint64_t t_end = t_meas + (uint64_t)(O.duration * 1e9);
	int measuring = 0;
	uint64_t d0 = 0, s0 = 0;
	double c0 = 0, g0 = 0;
	for (;;) {
		uint64_t now = now_ns();
		if (!measuring && now >= t_meas) {
			measuring = 1;
			memset(B.hist, 0, sizeof(B.hist));
			B.nlat = 0;
			atomic_store(&B.lat_on, 1);
			d0 = atomic_load(&B.esp);
			s0 = f.sent;
			c0 = proc_cpu_s(O.pid);
			g0 = self_cpu_s();
		}
		if (now >= t_end)
			break;
		if (rate)
			rate_step(&f, start, &rr, &due);
		else
			flat_step(&f);
	}
	uint64_t d1 = atomic_load(&B.esp), s1 = f.sent;
	double c1 = proc_cpu_s(O.pid), g1 = self_cpu_s();
	atomic_store(&B.lat_on, 0);
	uint64_t t1 = now_ns();
	double win = (double)(t1 - t_meas) / 1e9;
	/* what is still queued in our buffers goes out; then the backend
	 * drains until it has been quiet for 300 ms (at most 5 s) */
	uint64_t dl = now_ns() + 5000000000ull;
	for (int i = 0; i < f.k; i++)
		while (f.act[i]->olen && now_ns() < dl)
			if (!conn_flush(f.act[i]))
				usleep(200);
	uint64_t last = atomic_load(&B.esp), quiet = now_ns();
	while (now_ns() < dl && now_ns() - quiet < 300000000ull) {
		usleep(20000);
		uint64_t v = atomic_load(&B.esp);
		if (v != last) {
			last = v;
			quiet = now_ns();
		}
	}
	uint64_t total = atomic_load(&B.esp);
	res.sent = f.sent;
	res.delivered = total;
	res.sent_ps = (double)(s1 - s0) / win;
	res.deliv_ps = (double)(d1 - d0) / win;
	res.mbit = res.deliv_ps * O.size * 8 / 1e6;
	res.loss_pct = f.sent ? 100.0 * (double)(f.sent - (total < f.sent ? total : f.sent)) /
					(double)f.sent
			      : 0;
	res.srv_cpu_pct = 100.0 * (c1 - c0) / win;
	res.srv_ns = (d1 - d0) ? (c1 - c0) * 1e9 / (double)(d1 - d0) : 0;
	res.gen_cpu_pct = 100.0 * (g1 - g0) / win;
	/* what one server core would relay at this cost per datagram */
	res.cap_ps = res.srv_ns > 0 ? 1e9 / res.srv_ns : 0;
	res.p50 = hist_pct(B.hist, B.nlat, 0.50);
	res.p99 = hist_pct(B.hist, B.nlat, 0.99);
	for (int i = 0; i < f.k; i++)
		f.act[i]->olen = 0;
	free(f.act);
	free(f.dirty);
	atomic_store(&B.esp, 0);
	O.rate = saved_rate;
	return res;
}

static void
flood_print(const struct flood_res *r)
{
	printf("RESULT phase=flood label=%s k=%d load=%s rate=%d size=%d sent_per_s=%.0f "
	       "delivered_per_s=%.0f mbit_s=%.1f loss_pct=%.3f p50_us=%.0f p99_us=%.0f "
	       "server_cpu_pct=%.1f server_ns_per_dgram=%.0f core_capacity_per_s=%.0f "
	       "gen_cpu_pct=%.1f sent=%" PRIu64 " delivered=%" PRIu64 "\n",
	       O.label, r->k, r->rate ? "fixed" : "flat", r->rate, O.size, r->sent_ps, r->deliv_ps,
	       r->mbit, r->loss_pct, (double)r->p50 / 1e3, (double)r->p99 / 1e3, r->srv_cpu_pct,
	       r->srv_ns, r->cap_ps, r->gen_cpu_pct, r->sent, r->delivered);
	fflush(stdout);
}

static void
phase_flood(void)
{
	struct flood_res res[MAX_K][2];
	uint32_t tag = 1;
	for (int i = 0; i < O.nk; i++) {
		memset(res[i], 0, sizeof(res[i]));
		if (O.load_fixed) {
			res[i][0] = flood_run(O.k[i], O.rate, tag++);
			flood_print(&res[i][0]);
		}
		if (O.load_flat) {
			res[i][1] = flood_run(O.k[i], 0, tag++);
			flood_print(&res[i][1]);
		}
	}
	if (O.quiet)
		return;
	fprintf(stderr, "\n%-6s %-10s %10s %12s %8s %8s %8s %9s %10s %8s\n", "K", "load", "sent/s",
		"delivered/s", "Mbit/s", "loss %", "p50 us", "p99 us", "srv ns/dg", "srv CPU%");
	for (int i = 0; i < O.nk; i++)
		for (int j = 0; j < 2; j++) {
			const struct flood_res *r = &res[i][j];
			if (!(j ? O.load_flat : O.load_fixed))
				continue;
			char load[32];
			if (r->rate)
				snprintf(load, sizeof(load), "%d/s", r->rate);
			else
				snprintf(load, sizeof(load), "flat out");
			fprintf(stderr,
				"%-6d %-10s %10.0f %12.0f %8.1f %8.3f %8.0f %9.0f %10.0f %8.1f\n",
				r->k, load, r->sent_ps, r->deliv_ps, r->mbit, r->loss_pct,
				(double)r->p50 / 1e3, (double)r->p99 / 1e3, r->srv_ns,
				r->srv_cpu_pct);
		}
	if (O.nk >= 2) {
		const struct flood_res *a = res[0], *b = res[O.nk - 1];
		for (int j = 0; j < 2; j++) {
			if (!(j ? O.load_flat : O.load_fixed))
				continue;
			double ratio = a[j].deliv_ps > 0 ? b[j].deliv_ps / a[j].deliv_ps : 0;
			printf("RESULT phase=flood-ratio label=%s load=%s k_from=%d k_to=%d "
			       "delivered_ratio=%.3f ns_ratio=%.3f capacity_ratio=%.3f\n",
			       O.label, j ? "flat" : "fixed", a[j].k, b[j].k, ratio,
			       a[j].srv_ns > 0 ? b[j].srv_ns / a[j].srv_ns : 0,
			       a[j].cap_ps > 0 ? b[j].cap_ps / a[j].cap_ps : 0);
			fprintf(stderr,
				"ratio delivered/s K=%d / K=%d, %s: %.3f (server ns/dgram %.0f / "
				"%.0f)\n",
				b[j].k, a[j].k, j ? "flat out" : "fixed rate", ratio, b[j].srv_ns,
				a[j].srv_ns);
		}
	}
}

/* ---- options, main ------------------------------------------------------------ */

static void
usage(FILE *fp)
{
	fprintf(fp,
		"usage: connload --server ADDR:PORT --backend ADDR:PORT --pid PID [options]\n"
		"  -n, --conns N         connections (10000)\n"
		"  --sources S           distinct source addresses 127.1.0.1.. (default N: one "
		"per\n"
		"                        connection)\n"
		"  --inflight M          connections between connect() and IKE_SA_INIT answer "
		"(1000)\n"
		"  --tls                 TLS 1.3 to a --listen-tls address\n"
		"  --phases LIST         of connect idle flood (\"connect idle flood\")\n"
		"  --idle-wait S         seconds between the last answer and the RSS reading (7)\n"
		"  --flood-k LIST        active connections per flood run (\"1 1000\")\n"
		"  --rate PPS            aggregate fixed rate of the flood (50000); flat out "
		"follows\n"
		"  --loads LIST          of fixed flat (\"fixed flat\")\n"
		"  --size B              ESP datagram bytes (1400)\n"
		"  --flat-window BYTES   flat out: at most this much pushed and not yet at the\n"
		"                        backend, shared by the K connections (64 MiB)\n"
		"  -d, --duration S      measured seconds per flood run (3)\n"
		"  --warmup S            unmeasured seconds before (0.5)\n"
		"  --timeout S           give up connecting after (60)\n"
		"  --cpu C, --backend-cpu C   pin the client / backend thread\n"
		"  --label TEXT          in the RESULT lines\n"
		"  -q                    RESULT lines only\n");
}

static int
parse_in(const char *s, struct sockaddr_in *a)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static int
parse_args(int argc, char **argv)
{
	O.n = 10000;
	O.inflight = 1000;
	O.idle_wait = 7;
	O.rate = 50000;
	O.size = 1400;
	O.duration = 3;
	O.warmup = 0.5;
	O.timeout = 60;
	O.cpu_main = O.cpu_backend = -1;
	O.k[0] = 1;
	O.k[1] = 1000;
	O.nk = 2;
	O.ph_connect = O.ph_idle = O.ph_flood = 1;
	O.load_fixed = O.load_flat = 1;
	O.flat_window = 64L << 20;
	O.label = "-";
	int have_srv = 0, have_be = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && (i++, 1))
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (ARG("--server")) {
			if (parse_in(v, &O.server) < 0)
				return -1;
			have_srv = 1;
		} else if (ARG("--backend")) {
			if (parse_in(v, &O.backend) < 0)
				return -1;
			have_be = 1;
		} else if (ARG("--pid"))
			O.pid = atoi(v);
		else if (ARG("-n") || ARG("--conns"))
			O.n = atoi(v);
		else if (ARG("--sources"))
			O.sources = atoi(v);
		else if (ARG("--inflight"))
			O.inflight = atoi(v);
		else if (!strcmp(a, "--tls"))
			O.tls = 1;
		else if (ARG("--phases")) {
			O.ph_connect = !!strstr(v, "connect");
			O.ph_idle = !!strstr(v, "idle");
			O.ph_flood = !!strstr(v, "flood");
		} else if (ARG("--loads")) {
			O.load_fixed = !!strstr(v, "fixed");
			O.load_flat = !!strstr(v, "flat");
		} else if (ARG("--idle-wait"))
			O.idle_wait = atof(v);
		else if (ARG("--flood-k")) {
			O.nk = 0;
			char *dup = strdup(v), *save = NULL;
			for (char *t = strtok_r(dup, " ,", &save); t && O.nk < MAX_K;
			     t = strtok_r(NULL, " ,", &save))
				O.k[O.nk++] = atoi(t);
			free(dup);
		} else if (ARG("--rate"))
			O.rate = atoi(v);
		else if (ARG("--sndbuf"))
			O.sndbuf = atoi(v);
		else if (ARG("--flat-window"))
			O.flat_window = atol(v);
		else if (ARG("--size"))
			O.size = atoi(v);
		else if (ARG("-d") || ARG("--duration"))
			O.duration = atof(v);
		else if (ARG("--warmup"))
			O.warmup = atof(v);
		else if (ARG("--timeout"))
			O.timeout = atof(v);
		else if (ARG("--cpu"))
			O.cpu_main = atoi(v);
		else if (ARG("--backend-cpu"))
			O.cpu_backend = atoi(v);
		else if (ARG("--label"))
			O.label = v;
		else if (!strcmp(a, "-q"))
			O.quiet = 1;
		else {
			fprintf(stderr, "connload: bad option %s\n", a);
			return -1;
		}
#undef ARG
	}
	if (!have_srv || !have_be || O.n < 1 || O.inflight < 1 || O.size < MIN_SIZE ||
	    O.size > MAX_SIZE || O.rate < 1 || O.nk < 1)
		return -1;
	if (O.sources < 1 || O.sources > O.n)
		O.sources = O.n;
	if (O.sources > (1 << 22))
		O.sources = 1 << 22;
	for (int i = 0; i < O.nk; i++)
		if (O.k[i] < 1 || O.k[i] > O.n)
			return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	if (parse_args(argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	/* one descriptor per connection and a few; root may raise the hard limit */
	struct rlimit rl;
	rlim_t need = (rlim_t)O.n + 64;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < need) {
		struct rlimit want = {need, rl.rlim_max > need ? rl.rlim_max : need};
		if (setrlimit(RLIMIT_NOFILE, &want) < 0) {
			fprintf(stderr, "connload: RLIMIT_NOFILE %llu < %llu needed: %s\n",
				(unsigned long long)rl.rlim_max, (unsigned long long)need,
				strerror(errno));
			return 1;
		}
	}
	if (O.tls) {
		TLS_CTX = SSL_CTX_new(TLS_client_method());
		if (!TLS_CTX)
			return 1;
		SSL_CTX_set_min_proto_version(TLS_CTX, TLS1_3_VERSION);
		SSL_CTX_set_verify(TLS_CTX, SSL_VERIFY_NONE, NULL);
		/* a flood write may be taken in part, and is resumed from a
		 * buffer that moved (memmove in conn_flush) */
		SSL_CTX_set_mode(TLS_CTX, SSL_MODE_ENABLE_PARTIAL_WRITE |
						  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	}
	B.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	/* the receive thread shares a core with the senders: room for tens of
	 * ms of flat-out ESP while it waits for its turn */
	int rcv = 32 << 20;
	if (B.fd < 0 ||
	    (setsockopt(B.fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0 &&
	     setsockopt(B.fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)) < 0) ||
	    bind(B.fd, (struct sockaddr *)&O.backend, sizeof(O.backend)) < 0) {
		perror("connload: backend socket");
		return 1;
	}
	struct timeval rto = {0, 100000};
	setsockopt(B.fd, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof(rto));
	B.cpu = O.cpu_backend;
	deliv_c = calloc((size_t)O.n, sizeof(*deliv_c));
	if (!deliv_c)
		return 1;
	pthread_t bt;
	if (pthread_create(&bt, NULL, backend_main, NULL) != 0)
		return 1;
	pin_self(O.cpu_main);
	C = calloc((size_t)O.n, sizeof(*C));
	conn_lat = calloc((size_t)O.n, sizeof(*conn_lat));
	EP = epoll_create1(EPOLL_CLOEXEC);
	if (!C || !conn_lat || EP < 0)
		return 1;
	for (int i = 0; i < O.n; i++)
		C[i].fd = -1;
	long rss0 = O.pid ? rss_kib(O.pid) : -1;
	int rc = 0;
	if (O.ph_connect && phase_connect() < 0)
		rc = 1;
	if (O.ph_idle && O.pid)
		phase_idle(rss0);
	/* the flood's writes assume a plain socket: a TLS record cut short
	 * must be retried with the same bytes, which the buffers here do not
	 * keep across runs */
	if (O.ph_flood && n_open && O.tls)
		fprintf(stderr, "connload: no flood over TLS (plain connections only)\n");
	else if (O.ph_flood && n_open)
		phase_flood();
	poll_conns(0);
	printf("RESULT phase=end label=%s open=%u closed=%u failed=%u backend_ike_req=%" PRIu64
	       " backend_foreign=%" PRIu64 "\n",
	       O.label, n_open, n_closed, n_fail, (uint64_t)atomic_load(&B.ike_req),
	       (uint64_t)atomic_load(&B.foreign));
	atomic_store(&B.stop, 1);
	pthread_join(bt, NULL);
	return rc;
}
