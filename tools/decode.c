/*
 * iketcp decode: lists the RFC 9329 frames of one stream direction given
 * as hex (plain, xxd), or of every TCP connection in a pcap file or a
 * tcpdump -X / -xx dump (capture.c finds the TCP segments and reassembles
 * each direction).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture.h"
#include "cli.h"
#include "iketcp/iketcp.h"

#define TEXT_MAX (16u << 20) /* bytes read from a file or stdin */
#define HEX_MAX (4u << 20)   /* bytes a hex dump may hold */

static void
ike_flags(uint8_t f, char out[4])
{
	size_t n = 0;
	if (f & IKETCP_IKE_FLAG_INITIATOR)
		out[n++] = 'I';
	if (f & IKETCP_IKE_FLAG_RESPONSE)
		out[n++] = 'R';
	if (f & 0x10) /* Version: the sender could speak a higher major version */
		out[n++] = 'V';
	if (!n)
		out[n++] = '-';
	out[n] = '\0';
}

void
cli_print_frame(unsigned idx, const uint8_t *frame, size_t len)
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
		if (iketcp_ike_parse(f.msg, f.msg_len, &h) == IKETCP_OK) {
			char fl[4];
			ike_flags(h.flags, fl);
			printf(" %s %s spi_i=%016llx spi_r=%016llx msgid=%u flags=%s ike_len=%u",
			       iketcp_ike_exchange_name(h.exchange),
			       iketcp_ike_is_response(&h) ? "response" : "request",
			       (unsigned long long)h.spi_i, (unsigned long long)h.spi_r, h.msg_id,
			       fl, h.length);
		}
		break;
	case IKETCP_FRAME_ESP: {
		struct iketcp_cur c;
		uint32_t spi, seq;
		iketcp_cur_init(&c, f.msg, f.msg_len);
		if (iketcp_cur_get_u32(&c, &spi) == IKETCP_OK &&
		    iketcp_cur_get_u32(&c, &seq) == IKETCP_OK)
			printf(" spi=0x%08x seq=%u esp_len=%zu", spi, seq, f.msg_len);
		break;
	}
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

int
cli_parse_stream(const uint8_t *stream, size_t len, int expect_prefix, const size_t *chunks,
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
				cli_print_frame(n, fr, flen);
			n++;
		}
		if (rc < 0) {
			fflush(stdout);
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

/* "49 4b 45 55 44 50 ("IKEUDP")": the first bytes, for a prefix warning. */
static void
warn_prefix(const uint8_t *p, size_t len)
{
	size_t n = len < IKETCP_PREFIX_LEN ? len : IKETCP_PREFIX_LEN;
	fflush(stdout);
	fprintf(stderr, "iketcp: warning: stream does not start with IKETCP:");
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %02x", p[i]);
	fprintf(stderr, " (\"");
	for (size_t i = 0; i < n; i++)
		fputc(p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.', stderr);
	fprintf(stderr, "\")\n");
}

/* Bytes of the prefix the stream starts with (0..6). */
static size_t
prefix_match(const uint8_t *p, size_t len)
{
	size_t k = 0;
	while (k < len && k < IKETCP_PREFIX_LEN && p[k] == (uint8_t)IKETCP_PREFIX[k])
		k++;
	return k;
}

enum prefix_mode { PREFIX_AUTO, PREFIX_YES, PREFIX_NO };

/* One direction given as bytes. Returns the exit status. */
static int
decode_bytes(const uint8_t *bin, size_t blen, enum prefix_mode mode)
{
	size_t m = prefix_match(bin, blen);
	int whole = m == IKETCP_PREFIX_LEN;
	int expect = mode == PREFIX_YES || (mode == PREFIX_AUTO && (whole || m >= 2));

	printf("%zu bytes%s\n", blen, whole ? ", starting with the IKETCP prefix" : "");
	if (expect && !whole) {
		warn_prefix(bin, blen);
		if (blen >= IKETCP_PREFIX_LEN || m < blen)
			return 1;
	}
	return cli_parse_stream(bin, blen, expect, NULL, 0, 1) < 0 ? 1 : 0;
}

static void
endpoint(char *out, size_t cap, int family, const uint8_t *addr, uint16_t port)
{
	char a[INET6_ADDRSTRLEN] = "?";
	inet_ntop(family == 6 ? AF_INET6 : AF_INET, addr, a, sizeof(a));
	snprintf(out, cap, family == 6 ? "[%s]:%u" : "%s:%u", a, port);
}

/* One direction of a TCP connection. Returns 1 on a stream error. */
static int
decode_dir(const struct cap_conn *cn, int k, int originator)
{
	const struct cap_dir *d = &cn->d[k], *o = &cn->d[!k];
	char from[64], to[64];
	struct cap_stream s;
	int bad = 0;

	endpoint(from, sizeof(from), cn->family, d->addr, d->port);
	endpoint(to, sizeof(to), cn->family, o->addr, o->port);
	if (cap_stream_build(d, &s) < 0) {
		fprintf(stderr, "iketcp decode: out of memory\n");
		return 1;
	}
	size_t m = prefix_match(s.data, s.len);
	printf(" %s -> %s: %zu bytes in %zu segments%s\n", from, to, s.len, d->nsegs,
	       m == IKETCP_PREFIX_LEN ? ", starting with the IKETCP prefix" : "");
	if (s.dup)
		printf("  (%zu retransmitted bytes skipped)\n", s.dup);
	if (s.len && s.data[0] == 0x16) {
		printf("  TLS records (RFC 9329 inside TLS, encrypted): not decoded\n");
	} else if (s.len && originator && m != IKETCP_PREFIX_LEN) {
		warn_prefix(s.data, s.len);
		printf("  (not decoded: a responder closes a stream without the prefix)\n");
		bad = 1;
	} else if (s.len) {
		fflush(stdout);
		bad = cli_parse_stream(s.data, s.len, m == IKETCP_PREFIX_LEN, NULL, 0, 1) < 0;
	}
	if (s.gaps)
		printf("  (a hole of %zu bytes before packet %u: the rest of this direction is "
		       "not decoded)\n",
		       s.gaps, s.gap_pkt);
	free(s.data);
	return bad;
}

static int
server_port(uint16_t p)
{
	return p == 4500 || p == 443;
}

static int
decode_flows(struct cap_flows *f)
{
	int bad = 0;
	for (size_t i = 0; i < f->n; i++) {
		const struct cap_conn *cn = &f->conns[i];
		/* The side that sent the SYN, else the one talking to a server port. */
		int syn = cn->d[0].syn != cn->d[1].syn, orig = 0;
		if (syn)
			orig = cn->d[1].syn;
		else if (server_port(cn->d[0].port) && !server_port(cn->d[1].port))
			orig = 1;
		char a[64], b[64];
		endpoint(a, sizeof(a), cn->family, cn->d[orig].addr, cn->d[orig].port);
		endpoint(b, sizeof(b), cn->family, cn->d[!orig].addr, cn->d[!orig].port);
		printf("connection %zu: %s -> %s (%s, first packet %u)\n", i + 1, a, b,
		       syn ? "SYN seen" : "no SYN seen: originator guessed from the ports",
		       cn->first_pkt);
		bad |= decode_dir(cn, orig, 1);
		bad |= decode_dir(cn, !orig, 0);
	}
	if (f->dropped)
		printf("(%zu segments not kept: over the limits of %u connections, %u MiB)\n",
		       f->dropped, CAP_MAX_CONNS, CAP_MAX_BYTES >> 20);
	return bad;
}

static const char *
link_name(int lt)
{
	switch (lt) {
	case CAP_LINK_NULL:
	case CAP_LINK_LOOP:
		return "loopback";
	case CAP_LINK_ETHERNET:
		return "Ethernet";
	case CAP_LINK_RAW:
		return "raw IP";
	case CAP_LINK_SLL:
		return "Linux cooked";
	case CAP_LINK_SLL2:
		return "Linux cooked v2";
	default:
		return "unsupported";
	}
}

/* Adds one packet's TCP segment; counts the others. */
static int
add_packet(struct cap_flows *f, int lt, const uint8_t *p, size_t n, uint32_t no, unsigned *other)
{
	struct cap_tcp t;
	const char *why;
	int rc = cap_packet_tcp(lt, p, n, &t, &why);
	if (rc < 0)
		printf("packet %u: %s (skipped)\n", no, why);
	if (rc <= 0) {
		(*other)++;
		return 0;
	}
	if (cap_flows_add(f, &t, no) < 0) {
		fprintf(stderr, "iketcp decode: out of memory\n");
		return -1;
	}
	return 0;
}

static int
decode_pcap(const uint8_t *buf, size_t len, const char *name)
{
	struct cap_pcap p;
	struct cap_record r;
	struct cap_flows f = {0};
	const char *why;
	unsigned npk = 0, other = 0;
	int rc;

	if (cap_pcap_open(&p, buf, len, &why) < 0) {
		fprintf(stderr, "iketcp decode: %s: %s\n", name, why);
		return 1;
	}
	while ((rc = cap_pcap_next(&p, &r, &why)) == 1) {
		if (add_packet(&f, (int)p.linktype, r.data, r.caplen, ++npk, &other) < 0) {
			cap_flows_free(&f);
			return 1;
		}
	}
	if (rc < 0)
		printf("%s: after packet %u: %s\n", name, npk, why);
	printf("pcap: %u packets (link type %u, %s), %u not TCP, %zu TCP connections\n", npk,
	       p.linktype, link_name((int)p.linktype), other, f.n);
	int bad = decode_flows(&f) || rc < 0;
	cap_flows_free(&f);
	return bad;
}

static int
decode_text(const uint8_t *text, size_t len, enum prefix_mode mode)
{
	struct cap_hex h;
	int bad;

	if (cap_hex_parse(&h, text, len, HEX_MAX) < 0) {
		if (h.err_line)
			fprintf(stderr, "iketcp decode: line %zu: %s\n", h.err_line, h.why);
		else
			fprintf(stderr, "iketcp decode: %s\n", h.why);
		cap_hex_free(&h);
		return 1;
	}
	if (h.kind != CAP_HEX_TCPDUMP) {
		bad = decode_bytes(h.bytes, h.len, mode);
		cap_hex_free(&h);
		return bad;
	}
	struct cap_flows f = {0};
	unsigned other = 0;
	bad = 0;
	for (size_t i = 0, start = 0; i < h.npkts && !bad; start = h.pkt_end[i++])
		bad = add_packet(&f, CAP_LINK_GUESS, h.bytes + start, h.pkt_end[i] - start,
				 (uint32_t)i + 1, &other) < 0;
	if (!bad) {
		printf("tcpdump dump: %zu packets, %u not TCP, %zu TCP connections\n", h.npkts,
		       other, f.n);
		bad = decode_flows(&f);
	}
	cap_flows_free(&f);
	cap_hex_free(&h);
	return bad;
}

static int
is_pcap(const uint8_t *p, size_t n)
{
	static const uint8_t m[][4] = {{0xa1, 0xb2, 0xc3, 0xd4},
				       {0xd4, 0xc3, 0xb2, 0xa1},
				       {0xa1, 0xb2, 0x3c, 0x4d},
				       {0x4d, 0x3c, 0xb2, 0xa1},
				       {0x0a, 0x0d, 0x0d, 0x0a}};
	for (size_t i = 0; n >= 4 && i < sizeof(m) / sizeof(m[0]); i++)
		if (!memcmp(p, m[i], 4))
			return 1;
	return 0;
}

static const struct cli_opt decode_opts[] = {
	{"--read", "-r", 1},
	{"--originator", NULL, 0},
	{"--responder", NULL, 0},
	{"--help", "-h", 0},
};

int
cmd_decode(int argc, char **argv)
{
	const char *path = NULL, *pcap = NULL, *val;
	enum prefix_mode mode = PREFIX_AUTO;

	for (int i = 0; i < argc; i++) {
		int o = cli_getopt("decode", decode_opts,
				   sizeof(decode_opts) / sizeof(decode_opts[0]), argc, argv, &i,
				   &val);
		if (o == CLI_ERROR)
			return 2;
		if (o == 0)
			pcap = val;
		else if (o == 1)
			mode = PREFIX_YES;
		else if (o == 2)
			mode = PREFIX_NO;
		else if (o == CLI_POSITIONAL && !path && !pcap)
			path = argv[i];
		else {
			fprintf(stderr, "usage: iketcp decode [--originator|--responder] [FILE]\n"
					"       iketcp decode -r FILE.pcap\n");
			return 2;
		}
	}
	if (pcap && path) {
		fprintf(stderr, "iketcp decode: -r FILE and a dump FILE together\n");
		return 2;
	}
	const char *name = pcap ? pcap : path;
	FILE *fp = name && strcmp(name, "-") ? fopen(name, "rb") : stdin;
	if (!fp) {
		fprintf(stderr, "iketcp decode: %s: %s\n", name, strerror(errno));
		return 1;
	}
	uint8_t *buf = malloc(TEXT_MAX);
	if (!buf) {
		fprintf(stderr, "iketcp decode: out of memory\n");
		return 1;
	}
	size_t len = fread(buf, 1, TEXT_MAX, fp);
	int big = len == TEXT_MAX && fgetc(fp) != EOF;
	if (fp != stdin)
		fclose(fp);
	int rc;
	if (big) {
		fprintf(stderr, "iketcp decode: %s: larger than %u MiB\n", name ? name : "stdin",
			TEXT_MAX >> 20);
		rc = 1;
	} else if (pcap || is_pcap(buf, len)) {
		rc = decode_pcap(buf, len, name ? name : "stdin");
	} else {
		rc = decode_text(buf, len, mode);
	}
	free(buf);
	return rc;
}
