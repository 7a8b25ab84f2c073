/*
 * Captures for "iketcp decode": the pcap file format, tcpdump -X / -xx and
 * xxd hex dumps, and TCP stream reassembly. Pure byte work (no printing,
 * no I/O) so that fuzz/fuzz_capture.c runs exactly what the CLI runs on
 * untrusted files. Every read of input goes through the bounded cursor.
 *
 * The pcap parser is ours rather than libpcap's: the format is a 24-byte
 * header and 16-byte record headers, and parsing it here keeps the CLI free
 * of a run-time dependency and lets the fuzzer reach every line of it.
 */
#ifndef IKETCP_TOOLS_CAPTURE_H
#define IKETCP_TOOLS_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include "iketcp/cursor.h"

/* Link types (the pcap LINKTYPE_ values) this file understands. */
#define CAP_LINK_NULL 0
#define CAP_LINK_ETHERNET 1
#define CAP_LINK_RAW 101
#define CAP_LINK_LOOP 108
#define CAP_LINK_SLL 113
#define CAP_LINK_SLL2 276
#define CAP_LINK_GUESS (-1) /* hex dumps: try raw IP, then Ethernet, then SLL */

/* Caps that keep a hostile file's cost bounded. */
#define CAP_MAX_CONNS 256
#define CAP_MAX_BYTES (64u << 20) /* TCP payload kept over all connections */
#define CAP_MAX_SEGS 200000

/* ---- pcap ------------------------------------------------------------------- */

struct cap_pcap {
	struct iketcp_cur c;
	int swap; /* file written little-endian (the usual case) */
	int nsec; /* nanosecond timestamps */
	uint32_t linktype;
	uint32_t snaplen;
};

struct cap_record {
	const uint8_t *data; /* caplen bytes inside the file */
	size_t caplen;
	uint32_t origlen;
	uint32_t ts_sec, ts_frac;
};

/*
 * Reads the file header of a pcap in buf[0..len). Returns 0, or -1 when it
 * is not a pcap file (pcapng included), with a reason in *why.
 */
int cap_pcap_open(struct cap_pcap *p, const uint8_t *buf, size_t len, const char **why);

/* Next record: 1 (r filled), 0 at the end, -1 truncated or bad record (*why). */
int cap_pcap_next(struct cap_pcap *p, struct cap_record *r, const char **why);

/* ---- packets ------------------------------------------------------------------ */

struct cap_tcp {
	int family; /* 4 or 6 */
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	uint32_t seq;
	uint8_t flags; /* TCP flags byte: FIN 1, SYN 2, RST 4, PSH 8, ACK 16 */
	const uint8_t *payload;
	size_t len;
};

#define CAP_TCP_FIN 0x01
#define CAP_TCP_SYN 0x02
#define CAP_TCP_ACK 0x10

/*
 * Finds the TCP segment in one captured packet of the given link type
 * (CAP_LINK_GUESS for hex dumps). Returns 1 (a TCP segment in *out), 0 (a
 * packet that is not TCP over IPv4/IPv6, e.g. ARP or ICMP, or an IP
 * fragment), -1 (malformed or cut short, *why says where).
 */
int cap_packet_tcp(int linktype, const uint8_t *pkt, size_t len, struct cap_tcp *out,
		   const char **why);

/* ---- hex dumps ------------------------------------------------------------------ */

enum cap_hex_kind {
	CAP_HEX_PLAIN,   /* bare hex digits (xxd -p, od -An -tx1, colon-separated) */
	CAP_HEX_XXD,     /* "00000000: 494b 4554 ...  IKETCP..": one byte stream */
	CAP_HEX_TCPDUMP, /* "\t0x0000:  4500 0054 ...": one packet per offset 0 */
};

struct cap_hex {
	enum cap_hex_kind kind;
	uint8_t *bytes; /* all bytes, packets back to back */
	size_t len, cap;
	size_t *pkt_end; /* CAP_HEX_TCPDUMP: end offset of each packet */
	size_t npkts, pkts_cap;
	size_t err_line; /* on error: 1-based line */
	const char *why;
};

/*
 * Parses a text dump (text[0..len)) into h: it recognises offsets and
 * strips them and xxd's or tcpdump's ASCII column, and ignores tcpdump's
 * summary lines. At most max_bytes bytes are kept. Returns 0, or -1 with
 * h->why and h->err_line set. Free with cap_hex_free() in both cases.
 */
int cap_hex_parse(struct cap_hex *h, const uint8_t *text, size_t len, size_t max_bytes);
void cap_hex_free(struct cap_hex *h);

/* ---- TCP streams ---------------------------------------------------------------- */

struct cap_seg {
	uint32_t seq;
	uint32_t pkt; /* 1-based packet number */
	uint32_t len;
	uint8_t *data;
};

struct cap_dir {
	uint8_t addr[16];
	uint16_t port;
	int syn; /* saw a SYN without ACK: this side opened the connection */
	int have_isn;
	uint32_t isn; /* sequence number of the first payload byte */
	struct cap_seg *segs;
	size_t nsegs, cap;
};

struct cap_conn {
	int family;
	uint32_t first_pkt;
	struct cap_dir d[2]; /* d[0]: the sender of the first packet seen */
};

struct cap_flows {
	struct cap_conn *conns;
	size_t n, cap;
	size_t bytes, segs;
	size_t dropped; /* segments refused by the caps above */
};

/* Adds one segment (packet number pkt). Returns 0, or -1 (out of memory). */
int cap_flows_add(struct cap_flows *f, const struct cap_tcp *t, uint32_t pkt);

struct cap_stream {
	uint8_t *data; /* the direction's bytes in sequence order (malloc'ed) */
	size_t len;
	size_t dup;       /* retransmitted bytes skipped */
	size_t gaps;      /* holes (bytes never captured) */
	uint32_t gap_pkt; /* packet after the first hole, 0 if none */
};

/*
 * Reassembles one direction: segments in sequence order relative to the
 * first byte (the SYN's sequence + 1, or the lowest sequence seen),
 * overlaps kept once, the stream cut at the first hole. Returns 0 or -1
 * (out of memory). Free s->data.
 */
int cap_stream_build(const struct cap_dir *d, struct cap_stream *s);

void cap_flows_free(struct cap_flows *f);

#endif
