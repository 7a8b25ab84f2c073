/*
 * iketcp: operator's tool for RFC 9329 streams.
 *
 *   iketcp demo            encode a sample stream, parse it back in random
 *                          chunks, and show the send queue's ordering
 *   iketcp decode [FILE]   decode a hex dump of one stream direction
 *                          (stdin by default); whitespace is ignored and a
 *                          leading IKETCP prefix is recognised
 *   iketcp probe [-t S] HOST[:PORT]
 *                          does the server answer IKE over TCP? (probe.c)
 *   iketcp stats [--prometheus] [SOCKET]
 *                          print iketcpd's counters from its stats-socket
 *                          (plain lines, or the Prometheus text format)
 *   iketcp status [SOCKET] print iketcpd's sessions, connections and flows
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "iketcp/iketcp.h"
#include "probe.h"

static void
print_frame(unsigned idx, const uint8_t *frame, size_t len)
{
	struct iketcp_frame f;
	struct iketcp_ike_hdr h;

	if (iketcp_frame_classify(frame, len, &f) != IKETCP_OK) {
		printf("  #%u  unclassifiable frame of %zu bytes\n", idx, len);
		return;
	}
	printf("  #%u  len=%-5u %-9s", idx, f.length, iketcp_frame_kind_name(f.kind));
	switch (f.kind) {
	case IKETCP_FRAME_IKE:
		if (iketcp_ike_parse(f.msg, f.msg_len, &h) == IKETCP_OK)
			printf(" %s %s spi_i=%016llx spi_r=%016llx msgid=%u ike_len=%u",
			       iketcp_ike_exchange_name(h.exchange),
			       iketcp_ike_is_response(&h) ? "response" : "request",
			       (unsigned long long)h.spi_i, (unsigned long long)h.spi_r, h.msg_id,
			       h.length);
		break;
	case IKETCP_FRAME_ESP:
		printf(" spi=0x%08x esp_len=%zu", f.spi, f.msg_len);
		break;
	case IKETCP_FRAME_RUNT:
		printf(" (%s, dropped and counted)", iketcp_runt_name(f.runt));
		break;
	case IKETCP_FRAME_EMPTY:
		printf(" (ignored)");
		break;
	case IKETCP_FRAME_KEEPALIVE:
		printf(" (NAT keepalive, dropped)");
		break;
	case IKETCP_FRAME_FATAL:
		printf(" (fatal)");
		break;
	}
	printf("\n");
}

/* Parses stream[0..len) fed in the given chunk sizes; returns frames seen or <0. */
static int
parse_stream(const uint8_t *stream, size_t len, int expect_prefix, const size_t *chunks,
	     size_t nchunks, int verbose)
{
	struct iketcp_deframer d;
	struct iketcp_deframer_cfg cfg = {.expect_prefix = expect_prefix};
	unsigned n = 0;
	size_t off = 0;
	int rc = iketcp_deframer_init(&d, &cfg);

	if (rc != IKETCP_OK)
		return rc;
	for (size_t i = 0; off < len; i++) {
		size_t step = nchunks ? chunks[i % nchunks] : len;
		if (step > len - off)
			step = len - off;
		struct iketcp_cur in;
		iketcp_cur_init(&in, stream + off, step);
		off += step;
		const uint8_t *fr;
		size_t flen;
		while ((rc = iketcp_deframer_next(&d, &in, &fr, &flen)) == 1) {
			if (verbose)
				print_frame(n, fr, flen);
			n++;
		}
		if (rc < 0) {
			fprintf(stderr, "iketcp: stream error at byte %llu: %s\n",
				(unsigned long long)d.stats.bytes, iketcp_strerror(rc));
			iketcp_deframer_free(&d);
			return rc;
		}
	}
	if (iketcp_deframer_pending(&d))
		printf("  (%zu bytes of an unfinished %s left over: discarded, R23)\n",
		       iketcp_deframer_pending(&d), iketcp_deframer_state_name(d.state));
	iketcp_deframer_free(&d);
	return (int)n;
}

static size_t
append(uint8_t *buf, size_t off, size_t cap, const void *p, size_t n)
{
	if (off + n > cap) {
		fprintf(stderr, "iketcp: demo buffer too small\n");
		exit(1);
	}
	memcpy(buf + off, p, n);
	return off + n;
}

static size_t
sample_ike(uint8_t *msg, size_t len, uint8_t exchange, uint32_t msg_id)
{
	static const uint8_t hdr[] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0,    0,
				      0,    0,    0,    0,    0,    0,    0x21, 0x20, 0x22, 0x08};
	memset(msg, 0xAB, len);
	memcpy(msg, hdr, sizeof(hdr));
	msg[18] = exchange;
	for (int i = 0; i < 4; i++) {
		msg[20 + i] = (uint8_t)(msg_id >> (24 - 8 * i));
		msg[24 + i] = (uint8_t)(len >> (24 - 8 * i));
	}
	return len;
}

static long
demo_writer(void *ctx, const struct iovec *iov, int cnt)
{
	size_t *budget = ctx, done = 0;
	for (int i = 0; i < cnt && done < *budget; i++) {
		size_t n = iov[i].iov_len < *budget - done ? iov[i].iov_len : *budget - done;
		done += n;
	}
	*budget -= done; /* a socket buffer that fills up */
	return (long)done;
}

static int
cmd_demo(void)
{
	uint8_t stream[4096], ike[296], esp[120], fr[512];
	size_t off = 0;
	int n;

	printf("1. Encoding a TCP originator's stream (RFC 9329 §4, §3):\n");
	off = append(stream, off, sizeof(stream), IKETCP_PREFIX, IKETCP_PREFIX_LEN);
	sample_ike(ike, sizeof(ike), IKETCP_IKE_SA_INIT, 0);
	n = iketcp_frame_encode_ike(fr, sizeof(fr), ike, sizeof(ike));
	printf("   IKE_SA_INIT of 296 bytes -> frame of %d bytes, head %02x %02x %02x %02x "
	       "%02x %02x\n",
	       n, fr[0], fr[1], fr[2], fr[3], fr[4], fr[5]);
	off = append(stream, off, sizeof(stream), fr, (size_t)n);
	memset(esp, 0x5A, sizeof(esp));
	memcpy(esp, "\xc0\x01\xd0\x0d\x00\x00\x00\x01", 8);
	n = iketcp_frame_encode_esp(fr, sizeof(fr), esp, sizeof(esp));
	printf("   ESP packet of 120 bytes -> frame of %d bytes, head %02x %02x\n", n, fr[0],
	       fr[1]);
	off = append(stream, off, sizeof(stream), fr, (size_t)n);
	off = append(stream, off, sizeof(stream), "\x00\x02", 2);             /* empty */
	off = append(stream, off, sizeof(stream), "\x00\x03\xff", 3);         /* keepalive */
	off = append(stream, off, sizeof(stream), "\x00\x05\x01\x02\x03", 5); /* runt */
	sample_ike(ike, 80, IKETCP_IKE_INFORMATIONAL, 2);
	n = iketcp_frame_encode_ike(fr, sizeof(fr), ike, 80);
	off = append(stream, off, sizeof(stream), fr, (size_t)n);
	printf("   stream: %zu bytes = prefix + IKE + ESP + empty + keepalive + runt + IKE\n\n",
	       off);

	static const size_t chunks[] = {1, 5, 2, 77, 3, 300, 1, 64};
	printf("2. Parsing it back as the TCP responder, fed in chunks of 1,5,2,77,3,300,1,64 "
	       "bytes:\n");
	if (parse_stream(stream, off, 1, chunks, sizeof(chunks) / sizeof(chunks[0]), 1) < 0)
		return 1;

	fflush(stdout);
	printf("\n3. A wrong prefix is refused at the first wrong byte:\n");
	fflush(stdout);
	(void)parse_stream((const uint8_t *)"IKEUDP\x00\x02", 8, 1, NULL, 0, 1);
	fflush(stderr);

	printf("\n4. Send queue: 3 ESP frames queued, then 1 IKE frame; the socket takes "
	       "50 bytes per write:\n");
	struct iketcp_sendq q;
	if (iketcp_sendq_init(&q, NULL) != IKETCP_OK)
		return 1;
	uint8_t dg[124] = {0};
	memcpy(dg, esp, sizeof(esp));
	for (int i = 0; i < 3; i++)
		if (iketcp_sendq_push_datagram(&q, dg, sizeof(esp)) != IKETCP_OK)
			return 1;
	size_t budget = 50;
	if (iketcp_sendq_flush(&q, demo_writer, &budget) != IKETCP_E_AGAIN) /* 50 bytes */
		return 1;
	uint8_t ikedg[4 + 80] = {0};
	memcpy(ikedg + 4, ike, 80);
	if (iketcp_sendq_push_datagram(&q, ikedg, sizeof(ikedg)) != IKETCP_OK)
		return 1;
	struct iovec iov[IKETCP_SENDQ_IOV_MAX];
	int cnt = iketcp_sendq_iov(&q, iov);
	printf("   after 50 bytes of ESP frame 1 went out, the next writev has %d iovecs:\n", cnt);
	for (int i = 0; i < cnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		printf("     iov[%d] %4zu bytes starting %02x %02x\n", i, iov[i].iov_len, p[0],
		       p[1]);
	}
	printf("   = rest of ESP frame 1 (72 bytes), then the IKE frame (%zu bytes), then ESP "
	       "frames 2 and 3\n",
	       sizeof(ikedg) + IKETCP_LEN_SIZE);
	iketcp_sendq_free(&q);
	return 0;
}

static int
hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
cmd_decode(const char *path)
{
	FILE *fp = path ? fopen(path, "r") : stdin;
	static uint8_t text[1 << 20], bin[1 << 19];
	size_t tlen, blen = 0;
	int hi = -1;

	if (!fp) {
		fprintf(stderr, "iketcp: %s: %s\n", path, strerror(errno));
		return 1;
	}
	tlen = fread(text, 1, sizeof(text), fp);
	if (path)
		fclose(fp);
	struct iketcp_cur c;
	iketcp_cur_init(&c, text, tlen);
	uint8_t ch;
	while (iketcp_cur_get_u8(&c, &ch) == IKETCP_OK) {
		int v = hexval(ch);
		if (v < 0) {
			if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r' || ch == ':')
				continue;
			fprintf(stderr, "iketcp: not a hex digit at offset %zu\n", c.off - 1);
			return 1;
		}
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (blen == sizeof(bin)) {
			fprintf(stderr, "iketcp: input too long\n");
			return 1;
		}
		bin[blen++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	if (hi >= 0) {
		fprintf(stderr, "iketcp: odd number of hex digits\n");
		return 1;
	}
	int with_prefix =
		blen >= IKETCP_PREFIX_LEN && !memcmp(bin, IKETCP_PREFIX, IKETCP_PREFIX_LEN);
	printf("%zu bytes%s\n", blen, with_prefix ? ", starting with the IKETCP prefix" : "");
	return parse_stream(bin, blen, with_prefix, NULL, 0, 1) < 0 ? 1 : 0;
}

#define STATS_SOCKET_DEFAULT "/run/iketcpd/stats.sock"

/* Asks iketcpd's stats-socket for req ("stats", "status", "prometheus"),
 * copies the answer to stdout. The request line goes out right after the
 * connect, well within the daemon's wait for it; the write side is shut
 * down after it, so the daemon answers at once. An iketcpd from before
 * requests writes its counters and closes at once: the send may then fail
 * (EPIPE) and the read end in a reset, after the counters. */
static int
cmd_stats(const char *cmd, const char *req, const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "iketcp %s: path too long\n", cmd);
		return 2;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 5};
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "iketcp %s: %s: %s\n", cmd, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	char line[32];
	int ll = snprintf(line, sizeof(line), "%s\n", req);
	(void)send(fd, line, (size_t)ll, MSG_NOSIGNAL);
	(void)shutdown(fd, SHUT_WR);

	/* the whole answer first: an error or an old daemon's counters are
	 * reported, not printed as if they were what was asked for */
	char *ans = NULL;
	size_t total = 0;
	ssize_t n;
	char buf[65536];
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		char *p = realloc(ans, total + (size_t)n + 1);
		if (!p) {
			free(ans);
			close(fd);
			fprintf(stderr, "iketcp %s: out of memory\n", cmd);
			return 1;
		}
		ans = p;
		memcpy(ans + total, buf, (size_t)n);
		total += (size_t)n;
		ans[total] = '\0';
	}
	int err = n < 0 && !(errno == ECONNRESET && total) ? errno : 0;
	close(fd);
	int rc = 0;
	if (err || !total) {
		fprintf(stderr, "iketcp %s: %s: %s\n", cmd, path, err ? strerror(err) : "no data");
		rc = 1;
	} else if (!strncmp(ans, "error:", 6)) {
		fprintf(stderr, "iketcp %s: %s: %s", cmd, path, ans);
		rc = 1;
	} else if (strcmp(req, "stats") && !strncmp(ans, "iketcpd ", 8) &&
		   !strncmp(strchr(ans, '\n') ? strchr(ans, '\n') + 1 : "", "global ", 7)) {
		fprintf(stderr,
			"iketcp %s: %s: this iketcpd answers with its counters only (a version "
			"from before the %s request)\n",
			cmd, path, req);
		rc = 1;
	} else {
		fwrite(ans, 1, total, stdout);
	}
	free(ans);
	return rc;
}

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: iketcp demo\n"
		    "       iketcp decode [FILE]   (hex dump of one direction; default stdin)\n"
		    "       iketcp probe [-t SECONDS] HOST[:PORT]   (does it answer IKE over TCP? "
		    "port 4500 by default)\n"
		    "       iketcp stats [--prometheus] [SOCKET]   (iketcpd's counters from its "
		    "stats-socket; default " STATS_SOCKET_DEFAULT ")\n"
		    "       iketcp status [SOCKET] (iketcpd's sessions, connections and flows)\n"
		    "       iketcp version\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "demo"))
		return cmd_demo();
	if (!strcmp(argv[1], "decode"))
		return cmd_decode(argc > 2 ? argv[2] : NULL);
	if (!strcmp(argv[1], "probe"))
		return cmd_probe(argc - 2, argv + 2);
	if (!strcmp(argv[1], "stats")) {
		int prom = argc > 2 && !strcmp(argv[2], "--prometheus");
		if (argc > 3 + prom || (argc == 3 + prom && argv[2 + prom][0] == '-')) {
			usage(stderr);
			return 2;
		}
		return cmd_stats("stats", prom ? "prometheus" : "stats",
				 argc == 3 + prom ? argv[2 + prom] : STATS_SOCKET_DEFAULT);
	}
	if (!strcmp(argv[1], "status")) {
		if (argc > 3 || (argc == 3 && argv[2][0] == '-')) {
			usage(stderr);
			return 2;
		}
		return cmd_stats("status", "status", argc == 3 ? argv[2] : STATS_SOCKET_DEFAULT);
	}
	if (!strcmp(argv[1], "version")) {
		printf("iketcp %s\n", IKETCP_VERSION_STRING);
		return 0;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
