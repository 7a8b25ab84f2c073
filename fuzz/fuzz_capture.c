/*
 * Target Functions: cap_pcap_open, cap_pcap_next, cap_packet_tcp,
 * cap_hex_parse, cap_flows_add, cap_stream_build (tools/capture.c: what
 * "iketcp decode" runs on a pcap file or a hex dump).
 *
 * Input layout:
 *   byte 0      bit 0: the rest is a text dump (else a pcap file);
 *               bits 1-3: link type for packets of a text dump
 *               (0 guess, 1 Ethernet, 2 raw, 3 SLL, 4 SLL2, 5 NULL, 6 LOOP)
 *   the rest    the file
 *
 * Oracles:
 *   - a reference walk of the pcap records with plain index arithmetic
 *     (header 24 bytes, records 16 + incl_len in the file's byte order)
 *     predicts how many records there are and where each one's bytes lie;
 *   - every TCP payload lies inside its packet;
 *   - hex dumps: at most max bytes, packet ends increasing and inside;
 *   - a reassembled direction is never longer than its segments together,
 *     and its first segment in sequence order starts it.
 */
#include "harness.h"

#include "capture.h"

static uint32_t
ref_u32(const uint8_t *p, int le)
{
	return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			       (uint32_t)p[3] << 24
		  : ref_be32(p);
}

static void
check_flows(struct cap_flows *f)
{
	for (size_t i = 0; i < f->n; i++)
		for (int k = 0; k < 2; k++) {
			const struct cap_dir *d = &f->conns[i].d[k];
			size_t total = 0;
			for (size_t j = 0; j < d->nsegs; j++)
				total += d->segs[j].len;
			struct cap_stream s;
			CHECK(cap_stream_build(d, &s) == 0);
			CHECK(s.len <= total);
			CHECK(s.len + s.dup <= total);
			if (d->nsegs && !d->have_isn)
				CHECK(s.len > 0);
			free(s.data);
		}
	CHECK(f->n <= CAP_MAX_CONNS);
	CHECK(f->bytes <= CAP_MAX_BYTES);
}

static void
add(struct cap_flows *f, int lt, const uint8_t *p, size_t n, uint32_t no)
{
	struct cap_tcp t;
	const char *why = NULL;
	int rc = cap_packet_tcp(lt, p, n, &t, &why);
	CHECK(rc >= -1 && rc <= 1);
	if (rc < 0)
		CHECK(why && why[0]);
	if (rc != 1)
		return;
	CHECK(t.family == 4 || t.family == 6);
	CHECK(t.payload >= p && t.payload + t.len <= p + n);
	CHECK(cap_flows_add(f, &t, no) == 0);
}

static void
fuzz_pcap(const uint8_t *d, size_t n)
{
	struct cap_pcap p;
	struct cap_record r;
	struct cap_flows f = {0};
	const char *why;

	if (cap_pcap_open(&p, d, n, &why) < 0) {
		CHECK(why != NULL);
		return;
	}
	CHECK(n >= 24);
	int le = d[0] == 0xd4 || d[0] == 0x4d;
	CHECK(p.linktype == (ref_u32(d + 20, le) & 0xffff));
	size_t at = 24;
	uint32_t no = 0;
	int rc;
	while ((rc = cap_pcap_next(&p, &r, &why)) == 1) {
		CHECK(at + 16 <= n);
		uint32_t incl = ref_u32(d + at + 8, le);
		CHECK(r.caplen == incl && r.data == d + at + 16 && at + 16 + incl <= n);
		at += 16 + (size_t)incl;
		add(&f, (int)p.linktype, r.data, r.caplen, ++no);
	}
	if (rc == 0)
		CHECK(at == n);
	else
		CHECK(rc == -1 && (at + 16 > n || at + 16 + ref_u32(d + at + 8, le) > n));
	check_flows(&f);
	cap_flows_free(&f);
}

static void
fuzz_text(const uint8_t *d, size_t n, int lt)
{
	struct cap_hex h;
	const size_t max = 1 << 16;
	if (cap_hex_parse(&h, d, n, max) == 0) {
		CHECK(h.len <= max && h.len <= n / 2);
		struct cap_flows f = {0};
		for (size_t i = 0, start = 0; i < h.npkts; start = h.pkt_end[i++]) {
			CHECK(h.pkt_end[i] > start && h.pkt_end[i] <= h.len);
			add(&f, lt, h.bytes + start, h.pkt_end[i] - start, (uint32_t)i + 1);
		}
		check_flows(&f);
		cap_flows_free(&f);
	} else {
		CHECK(h.why != NULL);
	}
	cap_hex_free(&h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int links[] = {CAP_LINK_GUESS, CAP_LINK_ETHERNET, CAP_LINK_RAW,
				    CAP_LINK_SLL,   CAP_LINK_SLL2,     CAP_LINK_NULL,
				    CAP_LINK_LOOP,  CAP_LINK_GUESS};
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_text(data + 1, size - 1, links[(data[0] >> 1) & 7]);
	else
		fuzz_pcap(data + 1, size - 1);
	return 0;
}
