/*
 * UDP load generator + sink for relay benchmarks (not a test).
 *
 * One process, two threads:
 *
 *   generator (main thread): sends one IKE_SA_INIT-shaped datagram (non-ESP
 *     marker + IKEv2 header, exchange 34, flags 0x08, responder SPI 0) every
 *     50 ms until the sink's echo of it comes back (the path is up), then
 *     ESP-shaped datagrams (SPI, sequence number, payload) of --size bytes
 *     for --duration seconds, flat out (--rate 0, batches of 64 per
 *     sendmmsg) or paced at --rate datagrams/s in small sendmmsg batches
 *     released on an absolute schedule (clock_nanosleep TIMER_ABSTIME).
 *     Every datagram carries a sequence number and its send time
 *     (CLOCK_MONOTONIC ns); every datagram goes out from the same socket,
 *     so a relay that keys flows on the source address sees one flow.
 *
 *   IKE probe stream (--ike-rate N, optional): a third thread sends
 *     IKE-shaped datagrams of --ike-size bytes at N/s from the generator's
 *     socket (so a relay sees them in the same flow as the ESP load) while
 *     the measured load runs: non-ESP marker, an IKEv2 header (the path-up
 *     initiator SPI, a responder SPI, INFORMATIONAL request, Message ID =
 *     sequence number, Length = message length), then run tag, probe magic,
 *     sequence number and send time. The sink counts them apart from ESP
 *     (own loss bitmap and latency histogram) and does not echo them: what
 *     an IKE message waits behind an ESP flood.
 *
 *   sink: receives with recvmmsg; counts delivered datagrams, loss (by
 *     sequence number, duplicates are not counted twice), reordering (a
 *     datagram whose sequence number is below the highest seen so far) and
 *     one-way latency (receive time - send time; same host, same clock) in a
 *     log-linear histogram (< 0.8 % bucket error). IKE requests are echoed
 *     as responses (to the source, or to --reply-to).
 *
 * After the measured load the generator keeps sending the same load as an
 * uncounted tail (--tail-ms), until every counted datagram has arrived: a
 * relay that releases datagrams only as more traffic comes in is measured
 * in steady state rather than charged with its backlog as loss. Then the
 * sink keeps receiving until it has been quiet for --drain-ms (at most
 * --drain-max-ms). Relay CPU: utime + stime of the
 * --pids processes from /proc/PID/stat, read just before the first ESP
 * datagram and after the drain, divided by the datagrams delivered
 * (counted and tail).
 *
 * Output: one "RESULT key=value ..." line on stdout per run, and a human
 * table on stderr (unless -q).
 *
 * usage: udpload --to ADDR:PORT --listen ADDR:PORT [--size N] [--rate PPS]
 *                [--duration S] [--pids PID,PID] [--label TEXT] [...]
 *        (udpload -h lists every option)
 */
#define _GNU_SOURCE /* recvmmsg, sendmmsg, CPU affinity */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <linux/filter.h>

#define MAX_SIZE 9000
#define MIN_SIZE 32 /* SPI, ESP seq, run tag, magic, seq, timestamp */
#define BATCH 64
#define MAX_PIDS 8
#define PROBE_GAP_MS 50

/* ESP-shaped datagram:
 *   0  SPI (non-zero)         4  ESP sequence number (low 32 bits of seq)
 *   8  run tag               12  magic
 *  16  seq (u64, host order) 24  send time ns (u64, host order)
 *  32  filler up to --size
 */
#define OFF_TAG 8
#define OFF_MAGIC 12
#define OFF_SEQ 16
#define OFF_TS 24
#define MAGIC 0x756c6421u      /* counted */
#define MAGIC_TAIL 0x756c6454u /* tail filler: not counted */

#define IKE_LEN 68 /* marker + 28-byte header + 36 bytes of payload */

/* IKE probe (--ike-rate): marker, IKEv2 header, then at IKE_OFF_TAG the run
 * tag, probe magic, sequence number and send time; filler up to
 * --ike-size. The magic is what tells the sink not to echo it. */
#define IKE_OFF_TAG 32
#define IKE_OFF_MAGIC 36
#define IKE_OFF_SEQ 40
#define IKE_OFF_TS 48
#define IKE_PROBE_MIN 56
#define IKE_PROBE_MAGIC 0x696b6550u
#define IKE_INFORMATIONAL 37

/* log-linear histogram: values < 128 exact, then 64 sub-buckets per power of two */
#define HSUB 64
#define HBUCKETS (58 * HSUB + 128)

struct opts {
	struct sockaddr_storage to, listen, bind, reply_to;
	socklen_t to_len, listen_len, bind_len, reply_to_len;
	size_t size;
	double rate, duration;
	int pids[MAX_PIDS], npids;
	const char *label;
	unsigned wait_ms, drain_ms, drain_max_ms, tail_ms;
	int echo_optional, quiet, sink_cpu, gen_cpu;
	int gso; /* generator sends each batch as one UDP GSO message */
	uint32_t spi;
	double ike_rate; /* IKE probes/s during the measured load; 0 = none */
	size_t ike_size;
	int sink_ike_lane; /* with ike_rate: the sink reads IKE from its own socket */
};

/* Sequence-number bookkeeping of one counted stream. */
struct seen {
	uint8_t *bits; /* bitmap by sequence number */
	size_t bytes;
	uint64_t delivered, dups;
};

struct sink {
	int fd;
	int ike_fd; /* the IKE lane, or -1 */
	const struct opts *o;
	uint32_t tag;
	atomic_int stop;
	atomic_uint_fast64_t last_rx_ns; /* last ESP datagram of this run */
	atomic_uint_fast64_t delivered_live;
	/* written by the sink thread only; read after join */
	uint64_t reordered, foreign, ike_rx, echoes, tail_rx;
	uint64_t max_seq_seen, first_rx_ns, lat_max, lat_sum;
	int any;
	struct seen esp;
	uint64_t hist[HBUCKETS];
	/* IKE probes, counted apart */
	struct seen ike;
	uint64_t ike_hist[HBUCKETS], ike_lat_max;
	double cpu_s;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double
thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static unsigned
hist_index(uint64_t v)
{
	if (v < 128)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - 6;
	return shift * HSUB + (unsigned)(v >> shift);
}

static uint64_t
hist_value(unsigned idx)
{
	if (idx < 128)
		return idx;
	unsigned shift = idx / HSUB - 1;
	uint64_t m = idx - (uint64_t)shift * HSUB;
	return (m << shift) + ((uint64_t)1 << shift) / 2; /* middle of the bucket */
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
parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return -1;
	memset(ss, 0, sizeof(*ss));
	size_t hl = strlen(host);
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		host[hl - 1] = 0;
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			return -1;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return 0;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
		return -1;
	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	*len = sizeof(*a4);
	return 0;
}

/* utime + stime in seconds of a process (all its threads), -1 if gone. */
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
	/* field 2 (comm) may hold spaces: fields counted after the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	unsigned long long ut = 0, st = 0;
	/* after ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double
pids_cpu_s(const struct opts *o)
{
	double t = 0;
	for (int i = 0; i < o->npids; i++) {
		double c = proc_cpu_s(o->pids[i]);
		if (c < 0)
			return -1;
		t += c;
	}
	return t;
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
		fprintf(stderr, "udpload: cannot pin to CPU %d\n", cpu);
}

static int
is_ike(const uint8_t *p, size_t len)
{
	return len >= 32 && !p[0] && !p[1] && !p[2] && !p[3];
}

/* Returns 1 when seq is new, 0 for a duplicate. */
static int
mark_seen(struct seen *s, uint64_t seq)
{
	size_t byte = (size_t)(seq >> 3);
	if (byte >= s->bytes) {
		size_t nb = s->bytes ? s->bytes : 1 << 20;
		while (nb <= byte)
			nb *= 2;
		uint8_t *n = realloc(s->bits, nb);
		if (!n) {
			fprintf(stderr, "udpload: out of memory\n");
			exit(1);
		}
		memset(n + s->bytes, 0, nb - s->bytes);
		s->bits = n;
		s->bytes = nb;
	}
	uint8_t bit = (uint8_t)(1u << (seq & 7));
	if (s->bits[byte] & bit) {
		s->dups++;
		return 0;
	}
	s->bits[byte] |= bit;
	s->delivered++;
	return 1;
}

/* A probe of this run: counted, never echoed. Returns 1 if it was one. */
static int
sink_probe(struct sink *s, const uint8_t *p, size_t len, uint64_t now)
{
	uint32_t tag, magic;
	uint64_t seq, ts;

	if (len < IKE_PROBE_MIN)
		return 0;
	memcpy(&tag, p + IKE_OFF_TAG, 4);
	memcpy(&magic, p + IKE_OFF_MAGIC, 4);
	if (tag != s->tag || magic != IKE_PROBE_MAGIC)
		return 0;
	memcpy(&seq, p + IKE_OFF_SEQ, 8);
	memcpy(&ts, p + IKE_OFF_TS, 8);
	uint64_t lat = now > ts ? now - ts : 0;
	s->ike_hist[hist_index(lat)]++;
	if (lat > s->ike_lat_max)
		s->ike_lat_max = lat;
	mark_seen(&s->ike, seq);
	return 1;
}

static void
sink_datagram(struct sink *s, uint8_t *p, size_t len, const struct sockaddr_storage *src,
	      socklen_t srclen, uint64_t now)
{
	if (is_ike(p, len)) {
		if (sink_probe(s, p, len, now))
			return;
		s->ike_rx++;
		if (p[4 + 19] & 0x20)
			return; /* a response: not ours to answer */
		/* answer as the responder: response flag, responder SPI set */
		p[4 + 19] = 0x20;
		memcpy(p + 4 + 8, "respSPI!", 8);
		const struct sockaddr_storage *to = src;
		socklen_t tolen = srclen;
		if (s->o->reply_to_len) {
			to = &s->o->reply_to;
			tolen = s->o->reply_to_len;
		}
		if (sendto(s->fd, p, len, 0, (const struct sockaddr *)to, tolen) == (ssize_t)len)
			s->echoes++;
		return;
	}
	uint32_t tag, magic;
	uint64_t seq, ts;
	if (len < MIN_SIZE) {
		s->foreign++;
		return;
	}
	memcpy(&tag, p + OFF_TAG, 4);
	memcpy(&magic, p + OFF_MAGIC, 4);
	if (tag == s->tag && magic == MAGIC_TAIL) {
		s->tail_rx++;
		return;
	}
	if (tag != s->tag || magic != MAGIC) {
		s->foreign++;
		return;
	}
	memcpy(&seq, p + OFF_SEQ, 8);
	memcpy(&ts, p + OFF_TS, 8);
	if (!s->any) {
		s->any = 1;
		s->first_rx_ns = now;
	} else if (seq < s->max_seq_seen) {
		s->reordered++;
	}
	if (seq > s->max_seq_seen)
		s->max_seq_seen = seq;
	uint64_t lat = now > ts ? now - ts : 0;
	s->hist[hist_index(lat)]++;
	s->lat_sum += lat;
	if (lat > s->lat_max)
		s->lat_max = lat;
	if (mark_seen(&s->esp, seq))
		atomic_store_explicit(&s->delivered_live, s->esp.delivered, memory_order_relaxed);
	atomic_store_explicit(&s->last_rx_ns, now, memory_order_relaxed);
}

struct sink_thread {
	struct sink *s;
	int fd;
	pthread_t th;
};

static void *
sink_main(void *arg)
{
	struct sink_thread *st = arg;
	struct sink *s = st->s;
	uint8_t(*bufs)[MAX_SIZE + 64] = malloc(sizeof(*bufs) * BATCH);
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage src[BATCH];
	double c0 = thread_cpu_s();

	if (!bufs) {
		fprintf(stderr, "udpload: out of memory\n");
		exit(1);
	}
	pin_self(s->o->sink_cpu);
	while (!atomic_load(&s->stop)) {
		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = sizeof(bufs[i]);
			msgs[i].msg_hdr = (struct msghdr){.msg_name = &src[i],
							  .msg_namelen = sizeof(src[i]),
							  .msg_iov = &iov[i],
							  .msg_iovlen = 1};
		}
		int n = recvmmsg(st->fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue; /* SO_RCVTIMEO: look at the stop flag */
		uint64_t now = now_ns();
		for (int i = 0; i < n; i++)
			sink_datagram(s, bufs[i], msgs[i].msg_len, &src[i],
				      msgs[i].msg_hdr.msg_namelen, now);
	}
	if (st->fd == s->fd)
		s->cpu_s = thread_cpu_s() - c0;
	free(bufs);
	return NULL;
}

static void
fill_ike(uint8_t *p, uint64_t spi_i)
{
	memset(p, 0, IKE_LEN);
	/* p[0..3]: non-ESP marker */
	memcpy(p + 4, &spi_i, 8); /* any non-zero bytes */
	/* responder SPI 0, next payload 0 (none) */
	p[4 + 17] = 0x20; /* version 2.0 */
	p[4 + 18] = 34;   /* IKE_SA_INIT */
	p[4 + 19] = 0x08; /* initiator, request */
	put32(p + 4 + 20, 0);
	put32(p + 4 + 24, IKE_LEN - 4); /* IKE message length */
}

/* Sends the IKE_SA_INIT probe every PROBE_GAP_MS until its echo arrives.
 * Returns the number of probes sent, negated if no echo came. */
static int
path_up(int fd, const struct opts *o)
{
	uint8_t ike[IKE_LEN], in[2048];
	uint64_t spi_i = ((uint64_t)o->spi << 32) | 0x1b2b3b4bu;
	uint64_t deadline = now_ns() + (uint64_t)o->wait_ms * 1000000u;
	int probes = 0;

	fill_ike(ike, spi_i);
	while (now_ns() < deadline) {
		if (sendto(fd, ike, sizeof(ike), 0, (const struct sockaddr *)&o->to, o->to_len) < 0)
			perror("udpload: sendto (IKE)");
		probes++;
		uint64_t until = now_ns() + PROBE_GAP_MS * 1000000u;
		for (;;) {
			uint64_t t = now_ns();
			if (t >= until)
				break;
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			if (poll(&pfd, 1, (int)((until - t) / 1000000u) + 1) <= 0)
				continue;
			ssize_t n = recv(fd, in, sizeof(in), MSG_DONTWAIT);
			if (n >= IKE_LEN && is_ike(in, (size_t)n) && !memcmp(in + 4, &spi_i, 8) &&
			    (in[4 + 19] & 0x20))
				return probes;
		}
	}
	return -probes;
}

/* The IKE probe thread (--ike-rate): paced on an absolute schedule from
 * the generator's socket until stop is set. */
struct ike_gen {
	int fd;
	const struct opts *o;
	uint32_t tag;
	uint64_t spi_i;
	atomic_int stop;
	uint64_t sent, send_errors;
};

static void *
ike_main(void *arg)
{
	struct ike_gen *ig = arg;
	const struct opts *o = ig->o;
	uint8_t p[MAX_SIZE];
	size_t n = o->ike_size;

	pin_self(o->gen_cpu);
	memset(p, 0x5a, n);
	memset(p, 0, 4); /* non-ESP marker */
	memcpy(p + 4, &ig->spi_i, 8);
	memcpy(p + 4 + 8, "respSPI!", 8);
	p[4 + 16] = 0;    /* next payload: none */
	p[4 + 17] = 0x20; /* version 2.0 */
	p[4 + 18] = IKE_INFORMATIONAL;
	p[4 + 19] = 0x08; /* initiator, request */
	put32(p + 4 + 24, (uint32_t)(n - 4));
	uint32_t magic = IKE_PROBE_MAGIC;
	memcpy(p + IKE_OFF_TAG, &ig->tag, 4);
	memcpy(p + IKE_OFF_MAGIC, &magic, 4);
	uint64_t t0 = now_ns();
	for (uint64_t k = 0; !atomic_load_explicit(&ig->stop, memory_order_relaxed); k++) {
		uint64_t due = t0 + (uint64_t)((double)k * 1e9 / o->ike_rate);
		struct timespec ts = {.tv_sec = (time_t)(due / 1000000000u),
				      .tv_nsec = (long)(due % 1000000000u)};
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		if (atomic_load_explicit(&ig->stop, memory_order_relaxed))
			break;
		uint64_t t = now_ns();
		put32(p + 4 + 20, (uint32_t)k); /* Message ID */
		memcpy(p + IKE_OFF_SEQ, &k, 8);
		memcpy(p + IKE_OFF_TS, &t, 8);
		if (sendto(ig->fd, p, n, 0, (const struct sockaddr *)&o->to, o->to_len) !=
		    (ssize_t)n)
			ig->send_errors++; /* lost, as on a real path */
		ig->sent++;
	}
	return NULL;
}

struct gen_result {
	uint64_t sent, send_errors, skipped;
	uint64_t t_start, t_end;
	double cpu_s;
};

/* One phase of sending: the measured load (MAGIC, sequence numbers from
 * 0) or the tail (MAGIC_TAIL, not counted), which ends early once *done
 * reaches done_at. */
struct gen_phase {
	uint32_t magic;
	double seconds;
	uint64_t seq0;
	const atomic_uint_fast64_t *done;
	uint64_t done_at;
};

static void
gen_run(int fd, const struct opts *o, uint32_t tag, const struct gen_phase *ph,
	struct gen_result *r)
{
	static uint8_t bufs[BATCH][MAX_SIZE];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	double c0 = thread_cpu_s();
	unsigned batch = BATCH;
	int gso = o->gso;
	unsigned gso_max = (unsigned)(65000 / o->size); /* datagrams per GSO message */

	for (int i = 0; i < BATCH; i++) {
		memset(bufs[i], 0xa5, o->size);
		put32(bufs[i], o->spi);
		uint32_t magic = ph->magic;
		memcpy(bufs[i] + OFF_TAG, &tag, 4);
		memcpy(bufs[i] + OFF_MAGIC, &magic, 4);
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = o->size;
		msgs[i].msg_hdr = (struct msghdr){.msg_name = (void *)(uintptr_t)&o->to,
						  .msg_namelen = o->to_len,
						  .msg_iov = &iov[i],
						  .msg_iovlen = 1};
	}
	/* Paced: datagram k is due at t0 + k / rate. The thread sleeps until
	 * `batch` datagrams are due (one sendmmsg every >= 50 us: 20k pps ->
	 * 1 per 50 us, 100k pps -> 5), then sends all that are due. After being
	 * descheduled it catches up, but never by more than 10 ms worth of
	 * datagrams (the rest are skipped and show as a lower sent rate). */
	double per_ns = o->rate / 1e9;
	uint64_t cap = (uint64_t)(o->rate / 100);
	if (o->rate > 0) {
		batch = (unsigned)(o->rate / 20000.0);
		if (batch < 1)
			batch = 1;
		if (batch > 32)
			batch = 32;
	}
	if (cap < BATCH)
		cap = BATCH;
	uint64_t seq = 0, skipped = 0;
	uint64_t t0 = now_ns();
	uint64_t end = t0 + (uint64_t)(ph->seconds * 1e9);
	r->t_start = t0;
	for (;;) {
		uint64_t t = now_ns();
		if (t >= end)
			break;
		if (ph->done && atomic_load_explicit(ph->done, memory_order_relaxed) >= ph->done_at)
			break;
		unsigned n = batch;
		if (o->rate > 0) {
			uint64_t idx = seq + skipped;
			uint64_t due_n = (uint64_t)((double)(t - t0) * per_ns) + 1;
			if (due_n <= idx) {
				uint64_t when = t0 + (uint64_t)((double)(idx + batch - 1) / per_ns);
				if (when > end)
					when = end;
				struct timespec ts = {.tv_sec = (time_t)(when / 1000000000u),
						      .tv_nsec = (long)(when % 1000000000u)};
				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
				continue;
			}
			uint64_t backlog = due_n - idx;
			if (backlog > cap) {
				skipped += backlog - cap;
				backlog = cap;
			}
			n = backlog < BATCH ? (unsigned)backlog : BATCH;
		}
		for (unsigned i = 0; i < n; i++) {
			uint64_t s = ph->seq0 + seq + i;
			uint32_t esp_seq = (uint32_t)(s + 1);
			put32(bufs[i] + 4, esp_seq);
			memcpy(bufs[i] + OFF_SEQ, &s, 8);
			memcpy(bufs[i] + OFF_TS, &t, 8);
		}
		unsigned done = 0;
		while (gso && gso_max > 1 && n - done > 1) {
			unsigned m = n - done < gso_max ? n - done : gso_max;
			/* One message, cut into n datagrams of o->size by the
			 * kernel: the relay still receives n separate datagrams,
			 * but the generator's IP-stack cost is paid once, so one
			 * core can offer more than the relays can carry. */
			union {
				char buf[CMSG_SPACE(sizeof(uint16_t))];
				struct cmsghdr align;
			} cb;
			memset(&cb, 0, sizeof(cb));
			struct msghdr mh = {.msg_name = (void *)(uintptr_t)&o->to,
					    .msg_namelen = o->to_len,
					    .msg_iov = iov + done,
					    .msg_iovlen = m,
					    .msg_control = cb.buf,
					    .msg_controllen = sizeof(cb.buf)};
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = IPPROTO_UDP;
			c->cmsg_type = 103; /* UDP_SEGMENT */
			c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			uint16_t seg = (uint16_t)o->size;
			memcpy(CMSG_DATA(c), &seg, sizeof(seg));
			if (sendmsg(fd, &mh, 0) >= 0) {
				done += m;
			} else if (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP) {
				fprintf(stderr,
					"udpload: UDP GSO refused (%s); sending one by one\n",
					strerror(errno));
				gso = 0;
			} else {
				r->send_errors += m; /* lost, as on a real path */
				done += m;
			}
		}
		while (done < n) {
			int k = sendmmsg(fd, msgs + done, n - done, 0);
			if (k <= 0) {
				/* ECONNREFUSED after an ICMP error, ENOBUFS: the
				 * datagram is gone, as on a real path */
				r->send_errors++;
				done++;
				continue;
			}
			done += (unsigned)k;
		}
		seq += n;
	}
	r->t_end = now_ns();
	r->sent = seq;
	r->skipped = skipped;
	r->cpu_s = thread_cpu_s() - c0;
}

static void
usage(FILE *fp)
{
	fprintf(fp,
		"usage: udpload --to ADDR:PORT --listen ADDR:PORT [options]\n"
		"  --to ADDR:PORT       where the generator sends (relay input or the sink)\n"
		"  --listen ADDR:PORT   where the sink receives (bound with SO_REUSEADDR)\n"
		"  --bind ADDR:PORT     generator source address (SO_REUSEADDR; default any)\n"
		"  --reply-to ADDR:PORT sink sends IKE echoes there instead of to the source\n"
		"  --size N             datagram size in bytes, %d..%d (default 1400)\n"
		"  --rate PPS           datagrams/s; 0 = flat out (default 0)\n"
		"  --duration S         seconds of ESP load (default 5)\n"
		"  --pids P[,P...]      relay processes: CPU from /proc/P/stat\n"
		"  --label TEXT         path name in the output (default direct)\n"
		"  --wait-ms MS         path-up: IKE probe every %d ms for at most MS (default "
		"5000)\n"
		"  --echo-optional      start the load even if no IKE echo came back\n"
		"  --tail-ms MS         then keep sending the same load, not counted, until every\n"
		"                       counted datagram arrived, for at most MS (default 1000)\n"
		"  --drain-ms MS        after sending, stop once the sink was quiet MS (default "
		"300)\n"
		"  --drain-max-ms MS    ... but wait at most MS after the last send (default "
		"3000)\n"
		"  --gen-cpu N, --sink-cpu N  pin the threads (default: not pinned)\n"
		"  --gso 0|1            generator sends each batch as one UDP GSO message\n"
		"                       (the receiver still gets separate datagrams; default 0)\n"
		"  --spi X              ESP SPI (default 0x51c0ffee)\n"
		"  --ike-rate N         also send N IKE probes/s (INFORMATIONAL requests with a\n"
		"                       probe magic, not echoed) from the same socket during the\n"
		"                       measured load; counted apart (ike_* fields; default 0)\n"
		"  --ike-size N         IKE probe size in bytes, %d..%d (default 100)\n"
		"  --sink-ike-lane 0|1  with --ike-rate: the sink receives IKE on a socket of\n"
		"                       its own (reuseport BPF on the non-ESP marker), so IKE\n"
		"                       does not wait behind ESP in the sink's queue (default 1)\n"
		"  -q                   no human table on stderr\n",
		MIN_SIZE, MAX_SIZE, PROBE_GAP_MS, IKE_PROBE_MIN, MAX_SIZE);
}

static int
parse_pids(struct opts *o, const char *s)
{
	char *end;
	while (*s) {
		long v = strtol(s, &end, 10);
		if (end == s || v <= 0 || o->npids >= MAX_PIDS)
			return -1;
		o->pids[o->npids++] = (int)v;
		s = end;
		if (*s == ',')
			s++;
		else if (*s)
			return -1;
	}
	return 0;
}

static int
parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){.size = 1400,
			   .duration = 5,
			   .label = "direct",
			   .wait_ms = 5000,
			   .drain_ms = 300,
			   .drain_max_ms = 3000,
			   .tail_ms = 1000,
			   .sink_cpu = -1,
			   .gen_cpu = -1,
			   .spi = 0x51c0ffee,
			   .ike_size = 100,
			   .sink_ike_lane = 1};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "-q")) {
			o->quiet = 1;
			continue;
		} else if (!strcmp(a, "--echo-optional")) {
			o->echo_optional = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "udpload: %s needs a value\n", a);
			return -1;
		}
		i++;
		if (!strcmp(a, "--to"))
			bad = parse_addr(v, &o->to, &o->to_len);
		else if (!strcmp(a, "--listen"))
			bad = parse_addr(v, &o->listen, &o->listen_len);
		else if (!strcmp(a, "--bind"))
			bad = parse_addr(v, &o->bind, &o->bind_len);
		else if (!strcmp(a, "--reply-to"))
			bad = parse_addr(v, &o->reply_to, &o->reply_to_len);
		else if (!strcmp(a, "--size"))
			o->size = strtoul(v, NULL, 10);
		else if (!strcmp(a, "--rate"))
			o->rate = strtod(v, NULL);
		else if (!strcmp(a, "--duration"))
			o->duration = strtod(v, NULL);
		else if (!strcmp(a, "--pids"))
			bad = parse_pids(o, v);
		else if (!strcmp(a, "--gso"))
			o->gso = (int)strtol(v, NULL, 10);
		else if (!strcmp(a, "--label"))
			o->label = v;
		else if (!strcmp(a, "--wait-ms"))
			o->wait_ms = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--drain-ms"))
			o->drain_ms = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--tail-ms"))
			o->tail_ms = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--drain-max-ms"))
			o->drain_max_ms = (unsigned)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--gen-cpu"))
			o->gen_cpu = atoi(v);
		else if (!strcmp(a, "--sink-cpu"))
			o->sink_cpu = atoi(v);
		else if (!strcmp(a, "--ike-rate"))
			o->ike_rate = strtod(v, NULL);
		else if (!strcmp(a, "--sink-ike-lane"))
			o->sink_ike_lane = atoi(v);
		else if (!strcmp(a, "--ike-size"))
			o->ike_size = strtoul(v, NULL, 10);
		else if (!strcmp(a, "--spi"))
			o->spi = (uint32_t)strtoul(v, NULL, 0);
		else {
			fprintf(stderr, "udpload: unknown option %s\n", a);
			return -1;
		}
		if (bad) {
			fprintf(stderr, "udpload: bad value for %s: %s\n", a, v);
			return -1;
		}
	}
	if (!o->to_len || !o->listen_len) {
		fprintf(stderr, "udpload: --to and --listen are required\n");
		return -1;
	}
	if (o->ike_rate < 0 || o->ike_size < IKE_PROBE_MIN || o->ike_size > MAX_SIZE) {
		fprintf(stderr, "udpload: --ike-rate >= 0, --ike-size %d..%d\n", IKE_PROBE_MIN,
			MAX_SIZE);
		return -1;
	}
	if (o->size < MIN_SIZE || o->size > MAX_SIZE || o->duration <= 0 || o->rate < 0 ||
	    o->spi == 0) {
		fprintf(stderr, "udpload: size %d..%d, duration > 0, rate >= 0, spi != 0\n",
			MIN_SIZE, MAX_SIZE);
		return -1;
	}
	return 0;
}

/* The first few runs of lost sequence numbers: where the loss happened. */
static void
print_lost(const struct sink *s, uint64_t sent)
{
	int shown = 0;
	uint64_t runs = 0;
	for (uint64_t q = 0; q < sent;) {
		size_t byte = (size_t)(q >> 3);
		if (byte < s->esp.bytes && (s->esp.bits[byte] & (1u << (q & 7)))) {
			q++;
			continue;
		}
		uint64_t a = q;
		while (q < sent && !((size_t)(q >> 3) < s->esp.bytes &&
				     (s->esp.bits[q >> 3] & (1u << (q & 7)))))
			q++;
		runs++;
		if (shown < 6) {
			fprintf(stderr, "%s%" PRIu64 "-%" PRIu64,
				shown ? ", " : "  lost seq ranges: ", a, q - 1);
			shown++;
		}
	}
	if (shown)
		fprintf(stderr, "%s (%" PRIu64 " runs, of %" PRIu64 " sent)\n",
			runs > (uint64_t)shown ? ", ..." : "", runs, sent);
}

static int
udp_socket(const struct sockaddr_storage *bind_to, socklen_t bind_len, int family, int reuseport)
{
	int one = 1, buf = 4 << 20;
	int fd = socket(bind_len ? bind_to->ss_family : family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	/* root may exceed net.core.[rw]mem_max: the load side should not be
	 * the bottleneck; fall back to the clamped request */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	if (bind_len && bind(fd, (const struct sockaddr *)bind_to, bind_len) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	static struct sink s;
	struct opts o;
	struct gen_result g = {0};

	if (parse_args(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	uint32_t tag = (uint32_t)now_ns() ^ ((uint32_t)getpid() << 16);
	s.o = &o;
	s.tag = tag;
	int lane = o.ike_rate > 0 && o.sink_ike_lane;
	s.fd = udp_socket(&o.listen, o.listen_len, AF_INET, lane);
	if (s.fd < 0) {
		perror("udpload: sink socket");
		return 1;
	}
	s.ike_fd = -1;
	if (lane) {
		/* The sink's IKE lane: the same steering as iketcpd's client
		 * (non-ESP marker -> second socket of the reuseport group), so
		 * the IKE figures are the path's, not the wait behind ESP in
		 * the sink's own receive queue (a backend with kernel ESP never
		 * queues ESP in the IKE daemon's socket either). */
		static const struct sock_filter prog[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, 1),
			BPF_STMT(BPF_RET | BPF_K, 0),
		};
		struct sock_fprog fp = {.len = 4, .filter = (struct sock_filter *)(uintptr_t)prog};
		s.ike_fd = udp_socket(&o.listen, o.listen_len, AF_INET, 1);
		if (s.ike_fd < 0 ||
		    setsockopt(s.fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fp, sizeof(fp)) < 0) {
			perror("udpload: sink IKE lane");
			return 1;
		}
	}
	struct timeval tv = {.tv_sec = 0, .tv_usec = 20000};
	(void)setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (s.ike_fd >= 0)
		(void)setsockopt(s.ike_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int gfd = udp_socket(&o.bind, o.bind_len, o.to.ss_family, 0);
	if (gfd < 0) {
		perror("udpload: generator socket");
		return 1;
	}
	static struct sink_thread sth[2];
	int nsth = s.ike_fd >= 0 ? 2 : 1;
	sth[0] = (struct sink_thread){.s = &s, .fd = s.fd};
	sth[1] = (struct sink_thread){.s = &s, .fd = s.ike_fd};
	for (int i = 0; i < nsth; i++)
		if (pthread_create(&sth[i].th, NULL, sink_main, &sth[i]) != 0) {
			fprintf(stderr, "udpload: cannot start the sink thread\n");
			return 1;
		}
	pin_self(o.gen_cpu);

	uint64_t tp = now_ns();
	int probes = path_up(gfd, &o);
	double path_ms = (double)(now_ns() - tp) / 1e6;
	if (probes < 0 && !o.echo_optional) {
		fprintf(stderr,
			"udpload: %s: no IKE echo after %d probes in %u ms: the path is not up\n",
			o.label, -probes, o.wait_ms);
		printf("RESULT label=%s size=%zu rate=%.0f error=path-not-up probes=%d\n", o.label,
		       o.size, o.rate, -probes);
		atomic_store(&s.stop, 1);
		for (int i = 0; i < nsth; i++)
			pthread_join(sth[i].th, NULL);
		return 3;
	}
	if (probes < 0)
		fprintf(stderr, "udpload: %s: no IKE echo after %d probes; starting anyway\n",
			o.label, -probes);

	double cpu0 = pids_cpu_s(&o);
	uint64_t t_cpu0 = now_ns();
	struct gen_phase load = {.magic = MAGIC, .seconds = o.duration};
	static struct ike_gen ig;
	pthread_t ith;
	int ike_on = 0;
	if (o.ike_rate > 0) {
		ig = (struct ike_gen){.fd = gfd,
				      .o = &o,
				      .tag = tag,
				      .spi_i = ((uint64_t)o.spi << 32) | 0x1b2b3b4bu};
		ike_on = pthread_create(&ith, NULL, ike_main, &ig) == 0;
		if (!ike_on)
			fprintf(stderr, "udpload: cannot start the IKE probe thread\n");
	}
	gen_run(gfd, &o, tag, &load, &g);
	if (ike_on) {
		atomic_store(&ig.stop, 1);
		pthread_join(ith, NULL);
	}
	/* tail: the same load, not counted, until every counted datagram
	 * arrived or tail_ms passed. A relay that holds datagrams until more
	 * traffic pushes them out (udptunnel does) is measured in steady state
	 * instead of losing its backlog at the end of the run. */
	struct gen_result gt = {0};
	if (o.tail_ms) {
		struct gen_phase tail = {.magic = MAGIC_TAIL,
					 .seconds = o.tail_ms / 1e3,
					 .seq0 = g.sent,
					 .done = &s.delivered_live,
					 .done_at = g.sent};
		gen_run(gfd, &o, tag, &tail, &gt);
	}
	/* drain: until the sink has been quiet for drain_ms */
	for (;;) {
		uint64_t t = now_ns();
		uint64_t last = atomic_load_explicit(&s.last_rx_ns, memory_order_relaxed);
		uint64_t sent_end = gt.t_end ? gt.t_end : g.t_end;
		if (last < sent_end)
			last = sent_end;
		if (t - last >= (uint64_t)o.drain_ms * 1000000u ||
		    t - sent_end >= (uint64_t)o.drain_max_ms * 1000000u)
			break;
		if (atomic_load_explicit(&s.delivered_live, memory_order_relaxed) >= g.sent &&
		    t - last >= 20000000u)
			break; /* everything arrived */
		usleep(10000);
	}
	double cpu1 = pids_cpu_s(&o);
	uint64_t t_cpu1 = now_ns();
	atomic_store(&s.stop, 1);
	for (int i = 0; i < nsth; i++)
		pthread_join(sth[i].th, NULL);
	close(gfd);
	close(s.fd);
	if (s.ike_fd >= 0)
		close(s.ike_fd);

	/* ---- report ---------------------------------------------------------- */
	double dur = (double)(g.t_end - g.t_start) / 1e9;
	/* CPU shares are over the window the relay CPU was measured in (load,
	 * tail and drain) */
	double cpu_window = (double)(t_cpu1 - t_cpu0) / 1e9;
	double sent_pps = (double)g.sent / dur;
	/* delivered over the window from the first to the last counted
	 * arrival (at least the sending window): a path that keeps up delivers
	 * at the sending rate, shifted by its latency; one that falls behind
	 * and buffers (deep socket buffers, no loss) shows its real rate and
	 * is not credited with the generator's */
	uint64_t last_rx = atomic_load(&s.last_rx_ns);
	double rx_window =
		s.any && last_rx > s.first_rx_ns ? (double)(last_rx - s.first_rx_ns) / 1e9 : 0;
	if (rx_window < dur)
		rx_window = dur;
	double dps = (double)s.esp.delivered / rx_window;
	double mbps = dps * (double)o.size * 8 / 1e6;
	uint64_t lost = g.sent > s.esp.delivered ? g.sent - s.esp.delivered : 0;
	double loss = g.sent ? 100.0 * (double)lost / (double)g.sent : 0;
	double p50 = (double)hist_pct(s.hist, s.esp.delivered + s.esp.dups, 0.50) / 1e3;
	double p99 = (double)hist_pct(s.hist, s.esp.delivered + s.esp.dups, 0.99) / 1e3;
	double pmax = (double)s.lat_max / 1e3;
	uint64_t ike_n = s.ike.delivered + s.ike.dups;
	double ike_p50 = (double)hist_pct(s.ike_hist, ike_n, 0.50) / 1e3;
	double ike_p99 = (double)hist_pct(s.ike_hist, ike_n, 0.99) / 1e3;
	uint64_t ike_lost = ig.sent > s.ike.delivered ? ig.sent - s.ike.delivered : 0;
	double ike_loss = ig.sent ? 100.0 * (double)ike_lost / (double)ig.sent : 0;
	double relay_cpu = o.npids && cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
	/* the relay also carried the tail: CPU per datagram over both */
	uint64_t carried = s.esp.delivered + s.tail_rx;
	double relay_ns = relay_cpu >= 0 && carried ? relay_cpu * 1e9 / (double)carried : -1;
	double relay_pct = relay_cpu >= 0 ? 100.0 * relay_cpu / cpu_window : -1;

	printf("RESULT label=%s size=%zu rate=%.0f duration=%.3f sent=%" PRIu64
	       " sent_pps=%.0f delivered=%" PRIu64
	       " rx_window=%.3f dps=%.0f mbps=%.1f loss_pct=%.3f lost=%" PRIu64
	       " reordered=%" PRIu64 " dups=%" PRIu64 " p50_us=%.1f p99_us=%.1f max_us=%.1f"
	       " relay_cpu_s=%.2f relay_ns_per_dgram=%.0f relay_cpu_pct=%.1f gen_cpu_pct=%.1f"
	       " sink_cpu_pct=%.1f send_errors=%" PRIu64 " skipped=%" PRIu64
	       " probes=%d path_up_ms=%.0f"
	       " ike_rx=%" PRIu64 " foreign=%" PRIu64 " tail_sent=%" PRIu64 " tail_rx=%" PRIu64
	       " tail_ms=%.0f",
	       o.label, o.size, o.rate, dur, g.sent, sent_pps, s.esp.delivered, rx_window, dps,
	       mbps, loss, lost, s.reordered, s.esp.dups, p50, p99, pmax, relay_cpu, relay_ns,
	       relay_pct, 100.0 * g.cpu_s / dur, 100.0 * s.cpu_s / cpu_window, g.send_errors,
	       g.skipped, probes < 0 ? -probes : probes, path_ms, s.ike_rx, s.foreign, gt.sent,
	       s.tail_rx, gt.t_end ? (double)(gt.t_end - gt.t_start) / 1e6 : 0.0);
	if (o.ike_rate > 0)
		printf(" ike_rate=%.0f ike_size=%zu ike_sent=%" PRIu64 " ike_delivered=%" PRIu64
		       " ike_loss_pct=%.3f ike_p50_us=%.1f ike_p99_us=%.1f ike_max_us=%.1f"
		       " sink_ike_lane=%d",
		       o.ike_rate, o.ike_size, ig.sent, s.ike.delivered, ike_loss, ike_p50, ike_p99,
		       (double)s.ike_lat_max / 1e3, s.ike_fd >= 0);
	printf("\n");
	fflush(stdout);
	if (!o.quiet) {
		fprintf(stderr,
			"\n%s, %zu-byte datagrams, %s for %.2f s\n"
			"  %-22s %14" PRIu64 "   (%.0f/s)\n"
			"  %-22s %14" PRIu64 "   (%.0f/s, %.1f Mbit/s of datagram bytes)\n"
			"  %-22s %14" PRIu64 "   (%.3f %%)\n"
			"  %-22s %14" PRIu64 "\n"
			"  %-22s %14.1f / %.1f / %.1f\n",
			o.label, o.size, o.rate > 0 ? "paced" : "flat out", dur, "sent", g.sent,
			sent_pps, "delivered", s.esp.delivered, dps, mbps, "lost", lost, loss,
			"reordered", s.reordered, "latency p50/p99/max us", p50, p99, pmax);
		if (relay_cpu >= 0)
			fprintf(stderr, "  %-22s %14.0f   (%.2f CPU s, %.0f %% of a core)\n",
				"relay CPU ns/datagram", relay_ns, relay_cpu, relay_pct);
		if (o.ike_rate > 0)
			fprintf(stderr,
				"  %-22s %14" PRIu64 " of %" PRIu64 " (%.3f %% lost)\n"
				"  %-22s %14.1f / %.1f / %.1f\n",
				"IKE probes delivered", s.ike.delivered, ig.sent, ike_loss,
				"IKE p50/p99/max us", ike_p50, ike_p99,
				(double)s.ike_lat_max / 1e3);
		print_lost(&s, g.sent);
	}
	free(s.esp.bits);
	free(s.ike.bits);
	return 0;
}
