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
 *
 * Allocations are counted with the linker's --wrap (see CMakeLists.txt), so
 * "allocs/frame" is a measured number, not a claim.
 *
 * usage: bench_frames [seconds-per-case (default 2)]
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

int
main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	static const size_t sizes[] = {64, 1400};

	if (secs <= 0)
		secs = 2.0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("bench_frames: libiketcp %s, %.1f s per case, reads of %u bytes\n\n",
	       IKETCP_VERSION_STRING, secs, READ_SIZE);
	printf("%-34s %6s %14s %10s %12s %12s\n", "case", "frame", "frames/s", "ns/frame",
	       "allocs/frame", "note");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
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
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
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
	return 0;
}
