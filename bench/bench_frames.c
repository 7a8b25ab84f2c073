/*
 * Micro-benchmark of libiketcp's per-frame path (not a test).
 *
 *   parse: frames deframed + classified per second when the stream arrives
 *          in 64 KiB reads, for 64-byte and 1400-byte frames; beside it, in
 *          the same run, a naive reader that copies every frame out of the
 *          read buffer (what a simple relay does), as a ratio.
 *   flush: frames pushed into the send queue and flushed through a writer
 *          that takes at most 64 KiB per call (a socket with that much room);
 *          frames per writev call; beside it one write call per frame.
 *   push:  UDP/4500 datagrams (1 in 16 IKE, the rest ESP) looked at and
 *          queued as iketcpd's UDP paths do, the queue emptied without a
 *          system call, so only the per-datagram work is timed: the old way
 *          (the daemon's inline marker/keepalive/SPI/header checks, then
 *          the previous push_datagram, which classified again) against one
 *          iketcp_dgram_classify() + iketcp_sendq_push_dgram(); runs of the
 *          two alternate, and the best of each is shown.
 *
 * Allocations are counted with the linker's --wrap (see CMakeLists.txt), so
 * "allocs/frame" is a measured number, not a claim.
 *
 * usage: bench_frames [seconds-per-case (default 2)] [parse|flush|push (default all)]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "iketcp/iketcp.h"

/* ---- allocation counter (linked with -Wl,--wrap=malloc etc.) -------------- */
static unsigned long long n_alloc;
void *__real_malloc(size_t);
void *__real_calloc(size_t, size_t);
void *__real_realloc(void *, size_t);
void *__wrap_malloc(size_t);
void *__wrap_calloc(size_t, size_t);
void *__wrap_realloc(void *, size_t);

void *
__wrap_malloc(size_t n)
{
	n_alloc++;
	return __real_malloc(n);
}

void *
__wrap_calloc(size_t a, size_t b)
{
	n_alloc++;
	return __real_calloc(a, b);
}

void *
__wrap_realloc(void *p, size_t n)
{
	n_alloc++;
	return __real_realloc(p, n);
}

static double
now(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define READ_SIZE 65536u
#define STREAM_SIZE (32u << 20) /* 32 MiB of frames, reread in a loop */

static uint8_t *
make_stream(size_t frame_len, size_t *len_out, size_t *frames_out)
{
	uint8_t *s = malloc(STREAM_SIZE);
	size_t off = IKETCP_PREFIX_LEN, n = 0;
	uint8_t esp[IKETCP_FRAME_MAX];

	memset(esp, 0x5A, sizeof(esp));
	/* The responder's view: the prefix first, which also shifts frames so
	 * that some straddle the 64 KiB reads and take the assembly path. */
	memcpy(s, IKETCP_PREFIX, IKETCP_PREFIX_LEN);
	while (off + frame_len <= STREAM_SIZE) {
		uint32_t seq = (uint32_t)n + 1;
		memcpy(esp, "\xc0\x01\xd0\x0d", 4);
		for (int i = 0; i < 4; i++)
			esp[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
		int w = iketcp_frame_encode_esp(s + off, STREAM_SIZE - off, esp,
						frame_len - IKETCP_LEN_SIZE);
		if (w < 0) {
			fprintf(stderr, "encode: %s\n", iketcp_strerror(w));
			exit(1);
		}
		off += (size_t)w;
		n++;
	}
	*len_out = off;
	*frames_out = n;
	return s;
}

struct result {
	double frames_per_s;
	double cpu_ns_per_frame;
	double allocs_per_frame;
	double extra; /* case specific */
};

/* libiketcp: deframe + classify, zero-copy where the frame is whole. */
static struct result
run_parse(const uint8_t *s, size_t len, double secs)
{
	struct iketcp_deframer d = {0};
	unsigned long long frames = 0, zc = 0, sum = 0, a0;
	double t0, c0, t;

	struct iketcp_deframer_cfg cfg = {.expect_prefix = 1};
	a0 = n_alloc;
	t0 = now(CLOCK_MONOTONIC);
	c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	do {
		/* one connection per pass over the stream (prefix included) */
		iketcp_deframer_free(&d);
		if (iketcp_deframer_init(&d, &cfg) != IKETCP_OK)
			exit(1);
		for (size_t off = 0; off < len; off += READ_SIZE) {
			struct iketcp_cur in;
			const uint8_t *fr;
			size_t flen;
			int rc;
			iketcp_cur_init(&in, s + off,
					len - off < READ_SIZE ? len - off : READ_SIZE);
			while ((rc = iketcp_deframer_next(&d, &in, &fr, &flen)) == 1) {
				struct iketcp_frame f;
				if (iketcp_frame_classify(fr, flen, &f) != IKETCP_OK)
					exit(1);
				sum += f.spi + f.kind;
				frames++;
			}
			if (rc < 0)
				exit(1);
			iketcp_deframer_trim(&d); /* as iketcpd does after each read */
		}
		zc += d.stats.zero_copy;
		t = now(CLOCK_MONOTONIC) - t0;
	} while (t < secs);
	double cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	struct result r = {
		.frames_per_s = (double)frames / t,
		.cpu_ns_per_frame = cpu * 1e9 / (double)frames,
		.allocs_per_frame = (double)(n_alloc - a0) / (double)frames,
		.extra = (double)zc / (double)frames,
	};
	if (sum == 42)
		printf(" ");
	iketcp_deframer_free(&d);
	return r;
}

/* Baseline: a straightforward reader that copies each frame into its own
 * buffer before looking at it (the shape of a simple UDP-over-TCP relay). */
static struct result
run_parse_naive(const uint8_t *s, size_t len, double secs)
{
	static uint8_t pend[READ_SIZE + IKETCP_FRAME_MAX], out[IKETCP_FRAME_MAX];
	unsigned long long frames = 0, sum = 0;
	double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID), t;

	do {
		size_t have = 0;
		for (size_t off = IKETCP_PREFIX_LEN; off < len; off += READ_SIZE) {
			size_t n = len - off < READ_SIZE ? len - off : READ_SIZE;
			memcpy(pend + have, s + off, n); /* "recv" into the pending buffer */
			have += n;
			size_t p = 0;
			while (have - p >= 2) {
				size_t fl = (size_t)pend[p] << 8 | pend[p + 1];
				if (fl < 2 || have - p < fl)
					break;
				memcpy(out, pend + p, fl);
				struct iketcp_frame f;
				if (iketcp_frame_classify(out, fl, &f) != IKETCP_OK)
					exit(1);
				sum += f.spi + f.kind;
				p += fl;
				frames++;
			}
			memmove(pend, pend + p, have - p);
			have -= p;
		}
		t = now(CLOCK_MONOTONIC) - t0;
	} while (t < secs);
	double cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	if (sum == 42)
		printf(" ");
	return (struct result){.frames_per_s = (double)frames / t,
			       .cpu_ns_per_frame = cpu * 1e9 / (double)frames};
}

struct sink {
	int fd;      /* /dev/null: a real writev system call, without a peer */
	size_t room; /* bytes the "socket" takes per call */
	unsigned long long bytes, calls;
};

static long
sink_writev(void *ctx, const struct iovec *iov, int cnt)
{
	struct sink *k = ctx;
	struct iovec v[IKETCP_SENDQ_IOV_MAX];
	size_t done = 0;
	int n = 0;
	for (int i = 0; i < cnt && done < k->room; i++, n++) {
		v[i] = iov[i];
		if (v[i].iov_len > k->room - done)
			v[i].iov_len = k->room - done;
		done += v[i].iov_len;
	}
	ssize_t w = writev(k->fd, v, n);
	if (w < 0)
		return IKETCP_E_IO;
	k->bytes += (size_t)w;
	k->calls++;
	return (long)w;
}

/* Push ESP datagrams until the budget refuses one, then flush; repeat. */
static struct result
run_flush(size_t frame_len, double secs, int per_frame_write)
{
	struct iketcp_sendq q;
	struct iketcp_sendq_cfg cfg = {.budget = 256 * 1024};
	struct sink k = {.fd = open("/dev/null", O_WRONLY), .room = READ_SIZE};
	uint8_t dg[IKETCP_FRAME_MAX];
	unsigned long long frames = 0, a0;
	double t0, c0, t;

	memset(dg, 0x5A, sizeof(dg));
	memcpy(dg, "\xc0\x01\xd0\x0d", 4);
	if (iketcp_sendq_init(&q, &cfg) != IKETCP_OK)
		exit(1);
	/* warm-up: the rings are allocated once per connection, not per frame */
	if (iketcp_sendq_push_datagram(&q, dg, frame_len - 2) != IKETCP_OK ||
	    iketcp_sendq_flush(&q, sink_writev, &k) != IKETCP_OK)
		exit(1);
	a0 = n_alloc;
	k.calls = 0;
	t0 = now(CLOCK_MONOTONIC);
	c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	do {
		for (int round = 0; round < 64; round++) {
			/* as many frames as the budget takes, in both modes */
			size_t burst = cfg.budget / frame_len;
			for (size_t j = 0; j < burst; j++) {
				if (iketcp_sendq_push_datagram(&q, dg, frame_len - 2) != IKETCP_OK)
					exit(1);
				frames++;
				if (per_frame_write) {
					if (iketcp_sendq_flush(&q, sink_writev, &k) != IKETCP_OK)
						exit(1);
					iketcp_sendq_trim(&q);
				}
			}
			int rc;
			while ((rc = iketcp_sendq_flush(&q, sink_writev, &k)) == IKETCP_E_AGAIN)
				;
			if (rc != IKETCP_OK)
				exit(1);
			/* as iketcpd does when a queue empties (per-frame mode already
			 * did: a second trim with no push between is an idle period) */
			if (!per_frame_write)
				iketcp_sendq_trim(&q);
		}
		t = now(CLOCK_MONOTONIC) - t0;
	} while (t < secs);
	double cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	struct result r = {
		.frames_per_s = (double)frames / t,
		.cpu_ns_per_frame = cpu * 1e9 / (double)frames,
		.allocs_per_frame = (double)(n_alloc - a0) / (double)frames,
		.extra = (double)frames / (double)k.calls,
	};
	iketcp_sendq_free(&q);
	close(k.fd);
	return r;
}

/* ---- push: classify once vs twice -------------------------------------------- */

#define PUSH_MIX 16 /* one IKE datagram in PUSH_MIX */

/* iketcp_frame_datagram_head() as it was before iketcp_dgram_classify(), so
 * that the old path can still be timed in the same binary. noinline: it was
 * a library function, called from another one (no LTO in this build). */
__attribute__((noinline)) static int
old_datagram_head(uint8_t head[IKETCP_LEN_SIZE], const uint8_t *dgram, size_t len)
{
	struct iketcp_cur c;
	uint32_t first;
	int kind;

	iketcp_cur_init(&c, dgram, len);
	if (len == 1 && dgram[0] == IKETCP_KEEPALIVE_OCTET)
		return IKETCP_E_KEEPALIVE;
	if (len > IKETCP_BODY_MAX)
		return IKETCP_E_MSGSIZE;
	if (iketcp_cur_get_u32(&c, &first) != IKETCP_OK)
		return IKETCP_E_EMPTY;
	if (first == 0) {
		if (len == IKETCP_MARKER_LEN)
			return IKETCP_E_EMPTY;
		kind = IKETCP_FRAME_IKE;
	} else {
		if (len < IKETCP_ESP_MIN)
			return IKETCP_E_EMPTY;
		kind = IKETCP_FRAME_ESP;
	}
	head[0] = (uint8_t)((len + IKETCP_LEN_SIZE) >> 8);
	head[1] = (uint8_t)(len + IKETCP_LEN_SIZE);
	return kind;
}

/* The previous iketcp_sendq_push_datagram(). */
__attribute__((noinline)) static int
old_push_datagram(struct iketcp_sendq *q, const uint8_t *p, size_t len)
{
	uint8_t head[IKETCP_LEN_SIZE];
	int kind = old_datagram_head(head, p, len);

	if (kind < 0)
		return kind;
	return iketcp_sendq_push(q, kind == IKETCP_FRAME_IKE ? IKETCP_CLASS_IKE : IKETCP_CLASS_ESP,
				 head, sizeof(head), p, len);
}

/* The daemon's UDP receive path today (server.c, client.c), then the old
 * push_datagram(). *sum stands for what the caller does with the result. */
static int
push_old(struct iketcp_sendq *q, const uint8_t *p, size_t len, unsigned long long *sum)
{
	struct iketcp_ike_hdr h;
	int is_ike = len > IKETCP_MARKER_LEN && !p[0] && !p[1] && !p[2] && !p[3];

	if (len == 1 && p[0] == IKETCP_KEEPALIVE_OCTET)
		return IKETCP_E_KEEPALIVE;
	if (is_ike && iketcp_ike_parse(p + 4, len - 4, &h) == IKETCP_OK)
		*sum += h.msg_id;
	else if (!is_ike && len >= IKETCP_ESP_MIN)
		*sum += (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return old_push_datagram(q, p, len);
}

static int
push_new(struct iketcp_sendq *q, const uint8_t *p, size_t len, unsigned long long *sum)
{
	struct iketcp_dgram d;

	if (iketcp_dgram_classify(p, len, &d) != IKETCP_OK)
		return IKETCP_E_MSGSIZE;
	if (d.kind == IKETCP_DGRAM_ESP)
		*sum += d.spi;
	else if (d.flags & IKETCP_DGRAM_F_HDR)
		*sum += d.ike.msg_id;
	return iketcp_sendq_push_dgram(q, &d);
}

typedef int (*push_fn)(struct iketcp_sendq *, const uint8_t *, size_t, unsigned long long *);

/* CPU ns per datagram of fn over a PUSH_MIX-datagram pattern of esp_len ESP
 * datagrams and 300-byte IKE ones, for secs seconds. */
static double
run_push(push_fn fn, size_t esp_len, double secs)
{
	struct iketcp_sendq q;
	struct iketcp_sendq_cfg cfg = {.budget = 256 * 1024};
	static uint8_t dg[PUSH_MIX][2048];
	size_t len[PUSH_MIX];
	unsigned long long n = 0, sum = 0;
	double t0, c0;

	for (int i = 0; i < PUSH_MIX; i++) {
		memset(dg[i], 0x5A, sizeof(dg[i]));
		if (i == PUSH_MIX / 2) { /* marker + a 300-byte IKE message */
			len[i] = 304;
			memset(dg[i], 0, 4);
			dg[i][4 + 17] = 0x20;
			dg[i][4 + 18] = IKETCP_IKE_INFORMATIONAL;
			dg[i][4 + 26] = 300 >> 8;
			dg[i][4 + 27] = 300 & 0xff;
		} else {
			len[i] = esp_len;
			memcpy(dg[i], "\xc0\x01\xd0\x0d", 4);
			dg[i][7] = (uint8_t)i;
		}
	}
	if (iketcp_sendq_init(&q, &cfg) != IKETCP_OK)
		exit(1);
	size_t burst = cfg.budget / (esp_len + 2) / 2;
	t0 = now(CLOCK_MONOTONIC);
	c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	do {
		for (int round = 0; round < 256; round++) {
			for (size_t j = 0; j < burst; j++, n++) {
				unsigned k = (unsigned)(n % PUSH_MIX);
				if (fn(&q, dg[k], len[k], &sum) != IKETCP_OK)
					exit(1);
			}
			if (iketcp_sendq_consume(&q, iketcp_sendq_bytes(&q)) != IKETCP_OK)
				exit(1);
		}
	} while (now(CLOCK_MONOTONIC) - t0 < secs);
	double cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	if (sum == 42)
		printf(" ");
	iketcp_sendq_free(&q);
	return cpu * 1e9 / (double)n;
}

static void
bench_push(double secs)
{
	static const size_t sizes[] = {64, 1400};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		double best_old = 1e18, best_new = 1e18;
		/* alternate, so that a noisy neighbour hits both alike */
		for (int rep = 0; rep < 5; rep++) {
			double o = run_push(push_old, sizes[i], secs / 5);
			double w = run_push(push_new, sizes[i], secs / 5);
			best_old = o < best_old ? o : best_old;
			best_new = w < best_new ? w : best_new;
		}
		printf("%-34s %6zu %14s %10.1f\n", "push: inline checks+push_datagram", sizes[i],
		       "", best_old);
		printf("%-34s %6zu %14s %10.1f\n", "push: dgram_classify+push_dgram", sizes[i], "",
		       best_new);
		printf("%-34s %6zu %13.2fx\n", "  ratio new / old (ns)", sizes[i],
		       best_new / best_old);
	}
}

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	const char *only = argc > 2 ? argv[2] : "";
	static const size_t sizes[] = {64, 1400};

	if (secs <= 0)
		secs = 2.0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("bench_frames: libiketcp %s, %.1f s per case, reads of %u bytes\n\n",
	       IKETCP_VERSION_STRING, secs, READ_SIZE);
	printf("%-34s %6s %14s %10s %12s %12s\n", "case", "frame", "frames/s", "ns/frame",
	       "allocs/frame", "note");
	for (size_t i = 0;
	     i < sizeof(sizes) / sizeof(sizes[0]) && (!*only || !strcmp(only, "parse")); i++) {
		size_t len, nfr;
		uint8_t *s = make_stream(sizes[i], &len, &nfr);
		struct result a = run_parse(s, len, secs);
		struct result b = run_parse_naive(s, len, secs);
		printf("%-34s %6zu %14.0f %10.1f %12.6f %9.1f%% zc\n", "parse: deframer+classify",
		       sizes[i], a.frames_per_s, a.cpu_ns_per_frame, a.allocs_per_frame,
		       a.extra * 100);
		printf("%-34s %6zu %14.0f %10.1f %12s %12s\n", "parse: naive copy-out (baseline)",
		       sizes[i], b.frames_per_s, b.cpu_ns_per_frame, "-", "");
		printf("%-34s %6zu %13.2fx\n", "  ratio iketcp / naive", sizes[i],
		       a.frames_per_s / b.frames_per_s);
		free(s);
	}
	printf("\n");
	for (size_t i = 0;
	     i < sizeof(sizes) / sizeof(sizes[0]) && (!*only || !strcmp(only, "flush")); i++) {
		struct result a = run_flush(sizes[i], secs, 0);
		struct result b = run_flush(sizes[i], secs, 1);
		printf("%-34s %6zu %14.0f %10.1f %12.6f %7.1f f/wv\n",
		       "flush: sendq batched writev", sizes[i], a.frames_per_s, a.cpu_ns_per_frame,
		       a.allocs_per_frame, a.extra);
		printf("%-34s %6zu %14.0f %10.1f %12.6f %7.1f f/wv\n", "flush: one write per frame",
		       sizes[i], b.frames_per_s, b.cpu_ns_per_frame, b.allocs_per_frame, b.extra);
		printf("%-34s %6zu %13.2fx\n", "  ratio batched / per-frame", sizes[i],
		       a.frames_per_s / b.frames_per_s);
	}
	if (!*only || !strcmp(only, "push")) {
		printf("\n");
		bench_push(secs);
	}
	return 0;
}
