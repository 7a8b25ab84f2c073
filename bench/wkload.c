/*
 * wkload: the client side and the backend of a server-alone benchmark of
 * iketcpd's workers (bench/workers-bench.sh runs it; docs/performance.md,
 * "Workers (issue #13)"). Not a test.
 *
 *   wkload stream  --server PORT --backend PORT --sources A,B,.. --conns N
 *                  --size S --seconds D
 *       N connections from each source address (127.0.0.x), each one IKE
 *       session (IKE_SA_INIT with its own SPI) that then sends ESP frames
 *       of S bytes as fast as TCP takes them; the backend sink counts the
 *       datagrams that arrive within the D seconds after a 1 s warm-up.
 *   wkload connect --server PORT --backend PORT --sources A,B,.. --threads T
 *                  --seconds D
 *       T threads open connections round-robin over the sources, each
 *       sends the prefix and an IKE_SA_INIT with a new SPI and closes; the
 *       sink counts the IKE_SA_INITs the server relayed.
 *
 * --pids P,Q,..: the iketcpd processes whose CPU time (utime + stime from
 * /proc/PID/task/stat of each, children included by listing them) is read
 * at the start and end of the measured window.
 *
 * Prints one line: "mode=... delivered=N rate=N/s server_cpu_s=X
 * ns_per_item=Y gen_cpu_s=Z".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXSRC 16
#define MAXCONN 256
#define MAXPID 64

static int server_port, backend_port, nconns = 1, nthreads = 2, size = 1400, seconds = 3;
static struct in_addr srcs[MAXSRC];
static int nsrc;
static atomic_int stop;
static atomic_ullong sink_count, measuring_count;
static atomic_int measuring;
static int pids[MAXPID], npids, reply_ike;

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of pid and its children (workers: they are listed too). */
static double
cpu_of(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	unsigned long long ut = 0, st = 0;
	/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double
server_cpu(void)
{
	double s = 0;
	for (int i = 0; i < npids; i++)
		s += cpu_of(pids[i]);
	return s;
}

static size_t
ike_init(uint8_t *p, uint64_t spi)
{
	/* non-ESP marker, IKE header (IKE_SA_INIT, initiator), 40 bytes body */
	memset(p, 0, 4);
	uint8_t *h = p + 4;
	for (int i = 0; i < 8; i++)
		h[i] = (uint8_t)(spi >> (56 - 8 * i));
	memset(h + 8, 0, 8);
	h[16] = 33;
	h[17] = 0x20;
	h[18] = 34;
	h[19] = 0x08;
	memset(h + 20, 0, 4);
	uint32_t len = 28 + 40;
	h[24] = (uint8_t)(len >> 24);
	h[25] = (uint8_t)(len >> 16);
	h[26] = (uint8_t)(len >> 8);
	h[27] = (uint8_t)len;
	memset(h + 28, 'x', 40);
	return 4 + len;
}

static size_t
frame(uint8_t *out, const uint8_t *body, size_t n)
{
	out[0] = (uint8_t)((n + 2) >> 8);
	out[1] = (uint8_t)(n + 2);
	memcpy(out + 2, body, n);
	return n + 2;
}

static int
connect_from(struct in_addr src)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	if (fd < 0)
		return -1;
	struct sockaddr_in b = {.sin_family = AF_INET, .sin_addr = src};
	struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons((uint16_t)server_port)};
	d.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* the port at connect(): loopback's tcp_tw_reuse may take a TIME_WAIT one */
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&b, sizeof(b)) < 0 ||
	    connect(fd, (struct sockaddr *)&d, sizeof(d)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *
sink(void *arg)
{
	int fd = *(int *)arg;
	static uint8_t bufs[64][2048];
	struct mmsghdr m[64];
	struct iovec iov[64];
	static struct sockaddr_in from[64];
	for (int i = 0; i < 64; i++) {
		iov[i] = (struct iovec){bufs[i], sizeof(bufs[i])};
		m[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
	}
	while (!atomic_load(&stop)) {
		for (int i = 0; i < 64; i++) {
			m[i].msg_hdr.msg_name = &from[i];
			m[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		int n = recvmmsg(fd, m, 64, 0, NULL);
		if (n <= 0)
			continue;
		/* stream: answer each IKE_SA_INIT so that its session is
		 * established (a half-open one would be closed) */
		for (int i = 0; reply_ike && i < n; i++) {
			uint8_t *d = bufs[i];
			if (m[i].msg_len >= 4 + 28 && !memcmp(d, "\0\0\0\0", 4) &&
			    d[4 + 18] == 34 && (d[4 + 19] & 0x08)) {
				d[4 + 19] = 0x20;
				d[4 + 15] = 1; /* a responder SPI */
				sendto(fd, d, m[i].msg_len, 0, (struct sockaddr *)&from[i],
				       sizeof(from[i]));
				/* and an IKE_AUTH response (message ID 1): the
				 * session is no longer half-open */
				d[4 + 18] = 35;
				d[4 + 23] = 1;
				sendto(fd, d, m[i].msg_len, 0, (struct sockaddr *)&from[i],
				       sizeof(from[i]));
			}
		}
		atomic_fetch_add(&sink_count, (unsigned long long)n);
		if (atomic_load(&measuring))
			atomic_fetch_add(&measuring_count, (unsigned long long)n);
	}
	return NULL;
}

struct conn_arg {
	int idx;
};

static void *
streamer(void *arg)
{
	struct conn_arg *ca = arg;
	int fd = connect_from(srcs[ca->idx % nsrc]);
	if (fd < 0) {
		perror("connect");
		return NULL;
	}
	uint8_t init[128], buf[65536 + 2048];
	size_t n = 0;
	memcpy(buf, "IKETCP", 6);
	n = 6 + frame(buf + 6, init, ike_init(init, 0x1000000ull + (uint64_t)ca->idx));
	if (send(fd, buf, n, 0) < 0)
		return NULL;
	/* a write of whole frames: ESP with this connection's SPI */
	uint8_t esp[2048];
	memset(esp, 'e', sizeof(esp));
	uint32_t spi = 0x100 + (uint32_t)ca->idx;
	esp[0] = (uint8_t)(spi >> 24);
	esp[1] = (uint8_t)(spi >> 16);
	esp[2] = (uint8_t)(spi >> 8);
	esp[3] = (uint8_t)spi;
	n = 0;
	while (n + (size_t)size + 2 <= 65536)
		n += frame(buf + n, esp, (size_t)size);
	while (!atomic_load(&stop)) {
		if (send(fd, buf, n, MSG_NOSIGNAL) < 0 && errno != EINTR)
			break;
	}
	close(fd);
	return NULL;
}

static atomic_ullong next_spi = 0x2000000ull;
static atomic_ullong opened;

static void *
connector(void *arg)
{
	int t = *(int *)arg, k = t;
	uint8_t init[128], buf[256];
	while (!atomic_load(&stop)) {
		int fd = connect_from(srcs[k++ % nsrc]);
		if (fd < 0)
			continue;
		memcpy(buf, "IKETCP", 6);
		size_t n = 6 + frame(buf + 6, init, ike_init(init, atomic_fetch_add(&next_spi, 1)));
		(void)send(fd, buf, n, MSG_NOSIGNAL);
		close(fd);
		atomic_fetch_add(&opened, 1);
	}
	return NULL;
}

static void
parse_list(char *s, int is_pid)
{
	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
		if (is_pid && npids < MAXPID)
			pids[npids++] = atoi(tok);
		else if (!is_pid && nsrc < MAXSRC && inet_pton(AF_INET, tok, &srcs[nsrc]) == 1)
			nsrc++;
	}
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: wkload stream|connect --server PORT --backend PORT "
				"--sources A,B --pids P,Q [--conns N] [--threads T] [--size S] "
				"[--seconds D]\n");
		return 2;
	}
	const char *mode = argv[1];
	for (int i = 2; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--server"))
			server_port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--backend"))
			backend_port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--sources"))
			parse_list(argv[i + 1], 0);
		else if (!strcmp(argv[i], "--pids"))
			parse_list(argv[i + 1], 1);
		else if (!strcmp(argv[i], "--conns"))
			nconns = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--threads"))
			nthreads = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--size"))
			size = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = atoi(argv[i + 1]);
	}
	if (!nsrc || !server_port || !backend_port || size < 8 || size > 2000)
		return 2;
	int be = socket(AF_INET, SOCK_DGRAM, 0), rcv = 8 << 20;
	setsockopt(be, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv));
	struct timeval tv = {0, 200000};
	setsockopt(be, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in ba = {.sin_family = AF_INET, .sin_port = htons((uint16_t)backend_port)};
	ba.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(be, (struct sockaddr *)&ba, sizeof(ba)) < 0) {
		perror("bind backend");
		return 1;
	}
	pthread_t st, th[MAXCONN];
	int nth = 0, targ[MAXCONN];
	struct conn_arg ca[MAXCONN];
	int stream = !strcmp(mode, "stream");
	reply_ike = stream;
	pthread_create(&st, NULL, sink, &be);
	if (stream) {
		for (int i = 0; i < nconns * nsrc && nth < MAXCONN; i++, nth++) {
			ca[nth].idx = i;
			pthread_create(&th[nth], NULL, streamer, &ca[nth]);
		}
	} else {
		for (int i = 0; i < nthreads && nth < MAXCONN; i++, nth++) {
			targ[nth] = i;
			pthread_create(&th[nth], NULL, connector, &targ[nth]);
		}
	}
	sleep(1); /* warm-up: sessions made, queues full */
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	double c0 = server_cpu(), t0 = now_s();
	unsigned long long o0 = atomic_load(&opened);
	atomic_store(&measuring, 1);
	sleep((unsigned)seconds);
	atomic_store(&measuring, 0);
	double c1 = server_cpu(), t1 = now_s();
	unsigned long long o1 = atomic_load(&opened);
	getrusage(RUSAGE_SELF, &r1);
	atomic_store(&stop, 1);
	unsigned long long got = atomic_load(&measuring_count);
	double dt = t1 - t0;
	double gen = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) +
		     (double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
		     (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e6 +
		     (double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
	printf("mode=%s delivered=%llu rate=%.0f/s opened=%llu server_cpu_s=%.2f "
	       "server_cores=%.2f ns_per_item=%.0f gen_cpu_s=%.2f\n",
	       mode, got, (double)got / dt, o1 - o0, c1 - c0, (c1 - c0) / dt,
	       got ? (c1 - c0) * 1e9 / (double)got : 0.0, gen);
	fflush(stdout);
	/* the streamers may block in send(): do not wait for them */
	_exit(0);
}
