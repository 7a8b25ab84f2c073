/*
 * iketcp: operator's tool for RFC 9329 streams. The commands and their
 * help texts are in the table at the end (man/iketcp.1 and README.md
 * describe the same surface); decode lives in decode.c, probe in probe.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "iketcp/iketcp.h"
#include "cli.h"
#include "nearest.h"
#include "probe.h"

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
cmd_demo(int argc, char **argv)
{
	(void)argv;
	if (argc) {
		fprintf(stderr, "usage: iketcp demo\n");
		return 2;
	}
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
	if (cli_parse_stream(stream, off, 1, chunks, sizeof(chunks) / sizeof(chunks[0]), 1) < 0)
		return 1;

	fflush(stdout);
	printf("\n3. A wrong prefix is refused at the first wrong byte:\n");
	fflush(stdout);
	(void)cli_parse_stream((const uint8_t *)"IKEUDP\x00\x02", 8, 1, NULL, 0, 1);
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

#define STATS_SOCKET_DEFAULT "/run/iketcpd/stats.sock"

/* Asks iketcpd's stats-socket for req ("stats", "status", "prometheus"),
 * copies the answer to stdout. The request line goes out right after the
 * connect, well within the daemon's wait for it; the write side is shut
 * down after it, so the daemon answers at once. An iketcpd from before
 * requests writes its counters and closes at once: the send may then fail
 * (EPIPE) and the read end in a reset, after the counters. */
static int
stats_request(const char *cmd, const char *req, const char *path)
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

static int
cmd_stats(int argc, char **argv)
{
	int prom = argc > 0 && !strcmp(argv[0], "--prometheus");
	if (prom) {
		argc--;
		argv++;
	}
	if (argc > 1 || (argc == 1 && argv[0][0] == '-')) {
		fprintf(stderr, "usage: iketcp stats [--prometheus] [SOCKET]\n");
		return 2;
	}
	return stats_request("stats", prom ? "prometheus" : "stats",
			     argc ? argv[0] : STATS_SOCKET_DEFAULT);
}

static int
cmd_status(int argc, char **argv)
{
	if (argc > 1 || (argc == 1 && argv[0][0] == '-')) {
		fprintf(stderr, "usage: iketcp status [SOCKET]\n");
		return 2;
	}
	return stats_request("status", "status", argc ? argv[0] : STATS_SOCKET_DEFAULT);
}

static int
cmd_version(int argc, char **argv)
{
	(void)argv;
	if (argc) {
		fprintf(stderr, "usage: iketcp version\n");
		return 2;
	}
	printf("iketcp %s\n", IKETCP_VERSION_STRING);
	return 0;
}

static int cmd_help(int argc, char **argv);

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;   /* after "iketcp " */
	const char *summary; /* one line for the list */
	const char *help;    /* the rest of "iketcp CMD --help" */
};

static const struct command commands[] = {
	{"demo", cmd_demo, "demo", "encode a sample stream and parse it back",
	 "Encodes a sample originator stream (prefix, IKE, ESP, empty frame, keepalive,\n"
	 "runt, IKE), parses it back fed in odd-sized chunks, shows a wrong prefix\n"
	 "refused and the send queue letting IKE overtake queued ESP.\n"},
	{"decode", cmd_decode,
	 "decode [--originator|--responder] [FILE]\n       iketcp decode -r FILE.pcap",
	 "list the RFC 9329 frames of a hex dump or a pcap file",
	 "Input (FILE, or standard input without it or with -):\n"
	 "  plain hex        xxd -p, od -An -tx1, colon-separated bytes: one direction\n"
	 "  xxd              offsets and the ASCII column are stripped: one direction\n"
	 "  tcpdump -X, -xx  whole packets: TCP connections are followed as in a pcap\n"
	 "  pcap             -r FILE, or any FILE that starts with a pcap magic number;\n"
	 "                   link types Ethernet, raw IP, Linux cooked (v1, v2), loopback\n"
	 "Each TCP connection is shown per direction, originator first, reassembled in\n"
	 "sequence order; each frame on one line: IKE exchange, request/response, SPIs,\n"
	 "message ID and flags; ESP SPI and sequence number; empty, keepalive, runt.\n"
	 "Options:\n"
	 "  -r, --read FILE  read FILE as a pcap file (not pcapng)\n"
	 "  --originator     the dump is the originator's direction: expect the prefix\n"
	 "  --responder      the dump is the responder's direction: no prefix\n"
	 "Without either, a dump starting with IKETCP (or with 2+ bytes of it) is read\n"
	 "as the originator's. A stream that does not start with IKETCP where it must\n"
	 "is reported (\"stream does not start with IKETCP: ...\"), exit status 1.\n"},
	{"probe", cmd_probe, PROBE_USAGE,
	 "does a server answer IKE over TCP (or TLS, or via a proxy)?", PROBE_HELP},
	{"stats", cmd_stats, "stats [--prometheus] [SOCKET]",
	 "print iketcpd's counters from its stats-socket",
	 "Asks iketcpd's stats-socket (default " STATS_SOCKET_DEFAULT ") for its counters:\n"
	 "one \"server|client NAME KEY VALUE\" line each, or with --prometheus the\n"
	 "Prometheus text format (HELP/TYPE, _total counters, section and mode labels).\n"},
	{"status", cmd_status, "status [SOCKET]", "print iketcpd's sessions, connections and flows",
	 "Asks iketcpd's stats-socket (default " STATS_SOCKET_DEFAULT ") for one line per\n"
	 "server session (client address, the address the backend sees, IKE SPIs, age,\n"
	 "counters), per connection and per client flow.\n"},
	{"version", cmd_version, "version", "print the version (also --version, -V)", ""},
	{"help", cmd_help, "help [COMMAND]", "this list, or the help of one command", ""},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: iketcp COMMAND [ARGS]   (iketcp COMMAND --help for its options)\n"
		    "       iketcp --version | -V\n"
		    "       iketcp --help | -h\n"
		    "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(fp, "  %-8s %s\n", commands[i].name, commands[i].summary);
}

static void
command_help(const struct command *c)
{
	printf("usage: iketcp %s\n%s: %s\n%s", c->usage, c->name, c->summary, c->help);
}

static const struct command *
find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	return NULL;
}

static void
unknown_command(const char *name)
{
	const char *names[NCOMMANDS];
	for (size_t i = 0; i < NCOMMANDS; i++)
		names[i] = commands[i].name;
	int near = nearest_word(name, names, NCOMMANDS);
	if (near >= 0)
		fprintf(stderr, "iketcp: unknown command '%s' (did you mean '%s'?)\n", name,
			names[near]);
	else
		fprintf(stderr, "iketcp: unknown command '%s'\n", name);
	fprintf(stderr, "commands:");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(stderr, " %s", names[i]);
	fprintf(stderr, "\n");
}

static int
cmd_help(int argc, char **argv)
{
	if (!argc) {
		usage(stdout);
		return 0;
	}
	const struct command *c = find_command(argv[0]);
	if (argc > 1 || !c) {
		if (!c)
			unknown_command(argv[0]);
		return 2;
	}
	command_help(c);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[1];
	if (!strcmp(name, "-h") || !strcmp(name, "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(name, "-V") || !strcmp(name, "--version"))
		return cmd_version(0, NULL);
	const struct command *c = find_command(name);
	if (!c) {
		if (name[0] == '-') {
			static const char *const opts[] = {"--help", "--version"};
			int near = nearest_word(name, opts, 2);
			fprintf(stderr, "iketcp: unknown option '%s'%s%s%s\n", name,
				near >= 0 ? " (did you mean " : "", near >= 0 ? opts[near] : "",
				near >= 0 ? "?)" : "");
			usage(stderr);
			return 2;
		}
		unknown_command(name);
		return 2;
	}
	/* "iketcp CMD --help" anywhere before a "--" */
	for (int i = 2; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			command_help(c);
			return 0;
		}
	return c->run(argc - 2, argv + 2);
}
