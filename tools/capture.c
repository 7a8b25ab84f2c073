/* Captures for "iketcp decode" (capture.h): pcap, hex dumps, TCP streams. */
#include "capture.h"

#include <stdlib.h>
#include <string.h>

#include "iketcp/cursor.h"

/* ---- pcap ------------------------------------------------------------------- */

#define PCAP_MAGIC_US 0xa1b2c3d4u
#define PCAP_MAGIC_NS 0xa1b23c4du
#define PCAPNG_MAGIC 0x0a0d0d0au

static uint32_t
swap32(uint32_t v)
{
	return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

/* A u32 in the file's byte order. */
static int
get32(struct cap_pcap *p, uint32_t *v)
{
	if (iketcp_cur_get_u32(&p->c, v) != IKETCP_OK)
		return -1;
	if (p->swap)
		*v = swap32(*v);
	return 0;
}

int
cap_pcap_open(struct cap_pcap *p, const uint8_t *buf, size_t len, const char **why)
{
	uint32_t magic, ver, zone, sigfigs;

	memset(p, 0, sizeof(*p));
	iketcp_cur_init(&p->c, buf, len);
	if (iketcp_cur_get_u32(&p->c, &magic) != IKETCP_OK) {
		*why = "too short for a pcap file header";
		return -1;
	}
	if (magic == PCAPNG_MAGIC) {
		*why = "a pcapng file; convert it first: tshark -r IN -F pcap -w OUT.pcap";
		return -1;
	}
	if (magic == swap32(PCAP_MAGIC_US) || magic == swap32(PCAP_MAGIC_NS)) {
		p->swap = 1;
		magic = swap32(magic);
	}
	if (magic != PCAP_MAGIC_US && magic != PCAP_MAGIC_NS) {
		*why = "not a pcap file (wrong magic number)";
		return -1;
	}
	p->nsec = magic == PCAP_MAGIC_NS;
	if (get32(p, &ver) < 0 || get32(p, &zone) < 0 || get32(p, &sigfigs) < 0 ||
	    get32(p, &p->snaplen) < 0 || get32(p, &p->linktype) < 0) {
		*why = "pcap file header cut short";
		return -1;
	}
	/* The upper 16 bits carry FCS information, not the link type. */
	p->linktype &= 0xffffu;
	return 0;
}

int
cap_pcap_next(struct cap_pcap *p, struct cap_record *r, const char **why)
{
	uint32_t incl;

	if (iketcp_cur_left(&p->c) == 0)
		return 0;
	if (get32(p, &r->ts_sec) < 0 || get32(p, &r->ts_frac) < 0 || get32(p, &incl) < 0 ||
	    get32(p, &r->origlen) < 0) {
		*why = "record header cut short";
		return -1;
	}
	if (iketcp_cur_take(&p->c, incl, &r->data) != IKETCP_OK) {
		*why = "record cut short (the file ends inside a packet)";
		return -1;
	}
	r->caplen = incl;
	return 1;
}

/* ---- packets ------------------------------------------------------------------ */

#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86dd
#define ETH_VLAN 0x8100
#define ETH_QINQ 0x88a8

static int
tcp_of(struct iketcp_cur *c, struct cap_tcp *out, const char **why)
{
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t off, flags;

	if (iketcp_cur_get_u16(c, &sport) != IKETCP_OK || iketcp_cur_get_u16(c, &dport) ||
	    iketcp_cur_get_u32(c, &seq) || iketcp_cur_get_u32(c, &ack) ||
	    iketcp_cur_get_u8(c, &off) || iketcp_cur_get_u8(c, &flags)) {
		*why = "TCP header cut short";
		return -1;
	}
	size_t hl = (size_t)(off >> 4) * 4;
	/* 14 bytes of the header are read; the rest of it (and options) is skipped. */
	if (hl < 20 || iketcp_cur_skip(c, hl - 14) != IKETCP_OK) {
		*why = "bad TCP header length";
		return -1;
	}
	out->sport = sport;
	out->dport = dport;
	out->seq = seq;
	out->flags = flags;
	out->len = iketcp_cur_left(c);
	out->payload = iketcp_cur_ptr(c);
	return 1;
}

static int
ipv4_of(struct iketcp_cur *c, struct cap_tcp *out, const char **why)
{
	uint8_t vihl, tos, ttl, proto;
	uint16_t total, id, frag, sum;
	struct iketcp_cur ip = *c;

	if (iketcp_cur_get_u8(&ip, &vihl) || iketcp_cur_get_u8(&ip, &tos) ||
	    iketcp_cur_get_u16(&ip, &total) || iketcp_cur_get_u16(&ip, &id) ||
	    iketcp_cur_get_u16(&ip, &frag) || iketcp_cur_get_u8(&ip, &ttl) ||
	    iketcp_cur_get_u8(&ip, &proto) || iketcp_cur_get_u16(&ip, &sum) ||
	    iketcp_cur_get_bytes(&ip, out->src, 4) || iketcp_cur_get_bytes(&ip, out->dst, 4)) {
		*why = "IPv4 header cut short";
		return -1;
	}
	size_t hl = (size_t)(vihl & 15) * 4;
	if (vihl >> 4 != 4 || hl < 20 || total < hl) {
		*why = "bad IPv4 header";
		return -1;
	}
	if (total > iketcp_cur_left(c)) {
		*why = "IPv4 packet cut short (capture snap length?)";
		return -1;
	}
	if (proto != 6)
		return 0;
	if (frag & 0x3fff)
		return 0; /* a fragment: not reassembled */
	struct iketcp_cur pkt, tcp;
	/* Only the IP total length counts: Ethernet pads short frames. */
	if (iketcp_cur_sub(c, total, &pkt) != IKETCP_OK || iketcp_cur_skip(&pkt, hl) != IKETCP_OK)
		return -1;
	tcp = pkt;
	out->family = 4;
	memset(out->src + 4, 0, 12);
	memset(out->dst + 4, 0, 12);
	return tcp_of(&tcp, out, why);
}

static int
ipv6_of(struct iketcp_cur *c, struct cap_tcp *out, const char **why)
{
	uint32_t vtcfl;
	uint16_t plen;
	uint8_t next, hop;

	if (iketcp_cur_get_u32(c, &vtcfl) || iketcp_cur_get_u16(c, &plen) ||
	    iketcp_cur_get_u8(c, &next) || iketcp_cur_get_u8(c, &hop) ||
	    iketcp_cur_get_bytes(c, out->src, 16) || iketcp_cur_get_bytes(c, out->dst, 16)) {
		*why = "IPv6 header cut short";
		return -1;
	}
	if (vtcfl >> 28 != 6) {
		*why = "bad IPv6 header";
		return -1;
	}
	struct iketcp_cur pl;
	if (iketcp_cur_sub(c, plen, &pl) != IKETCP_OK) {
		*why = "IPv6 packet cut short (capture snap length?)";
		return -1;
	}
	/* Hop-by-hop, routing and destination options; a fragment header ends it. */
	for (int i = 0; i < 8 && (next == 0 || next == 43 || next == 60); i++) {
		uint8_t nh, el;
		if (iketcp_cur_get_u8(&pl, &nh) || iketcp_cur_get_u8(&pl, &el) ||
		    iketcp_cur_skip(&pl, (size_t)el * 8 + 6)) {
			*why = "IPv6 extension header cut short";
			return -1;
		}
		next = nh;
	}
	if (next != 6)
		return 0;
	out->family = 6;
	return tcp_of(&pl, out, why);
}

static int
ip_of(struct iketcp_cur *c, struct cap_tcp *out, const char **why)
{
	uint8_t v;
	struct iketcp_cur t = *c;
	if (iketcp_cur_get_u8(&t, &v) != IKETCP_OK) {
		*why = "empty packet";
		return -1;
	}
	if (v >> 4 == 4)
		return ipv4_of(c, out, why);
	if (v >> 4 == 6)
		return ipv6_of(c, out, why);
	return 0;
}

/* Dispatches on an Ethernet type; VLAN tags are skipped. */
static int
ethertype_of(struct iketcp_cur *c, uint16_t type, struct cap_tcp *out, const char **why)
{
	for (int i = 0; i < 2 && (type == ETH_VLAN || type == ETH_QINQ); i++) {
		if (iketcp_cur_skip(c, 2) || iketcp_cur_get_u16(c, &type)) {
			*why = "VLAN tag cut short";
			return -1;
		}
	}
	if (type == ETH_IPV4 || type == ETH_IPV6)
		return ip_of(c, out, why);
	return 0;
}

/* Is c a whole IPv4 or IPv6 packet on its own (no link header)? */
static int
looks_like_ip(const struct iketcp_cur *c)
{
	struct iketcp_cur t = *c;
	uint8_t v, x;
	uint16_t len;
	if (iketcp_cur_get_u8(&t, &v) || iketcp_cur_get_u8(&t, &x) || iketcp_cur_get_u16(&t, &len))
		return 0;
	if (v >> 4 == 4)
		return (v & 15) >= 5 && len >= (v & 15) * 4 && (size_t)len <= iketcp_cur_left(c);
	if (v >> 4 == 6)
		return (size_t)len + 40 <= iketcp_cur_left(c);
	return 0;
}

int
cap_packet_tcp(int linktype, const uint8_t *pkt, size_t len, struct cap_tcp *out, const char **why)
{
	struct iketcp_cur c;
	uint16_t type;

	memset(out, 0, sizeof(*out));
	*why = "";
	iketcp_cur_init(&c, pkt, len);
	if (linktype == CAP_LINK_GUESS) {
		struct iketcp_cur t = c;
		if (looks_like_ip(&c))
			return ip_of(&c, out, why);
		if (iketcp_cur_skip(&t, 12) == IKETCP_OK &&
		    iketcp_cur_get_u16(&t, &type) == IKETCP_OK &&
		    (type == ETH_IPV4 || type == ETH_IPV6 || type == ETH_VLAN))
			linktype = CAP_LINK_ETHERNET;
		else
			linktype = CAP_LINK_SLL;
	}
	switch (linktype) {
	case CAP_LINK_ETHERNET:
		if (iketcp_cur_skip(&c, 12) || iketcp_cur_get_u16(&c, &type)) {
			*why = "Ethernet header cut short";
			return -1;
		}
		return ethertype_of(&c, type, out, why);
	case CAP_LINK_SLL:
		if (iketcp_cur_skip(&c, 14) || iketcp_cur_get_u16(&c, &type)) {
			*why = "Linux cooked header cut short";
			return -1;
		}
		return ethertype_of(&c, type, out, why);
	case CAP_LINK_SLL2:
		if (iketcp_cur_get_u16(&c, &type) || iketcp_cur_skip(&c, 18)) {
			*why = "Linux cooked v2 header cut short";
			return -1;
		}
		return ethertype_of(&c, type, out, why);
	case CAP_LINK_NULL:
	case CAP_LINK_LOOP:
		/* The 4-byte family is in host order for NULL: the IP version decides. */
		if (iketcp_cur_skip(&c, 4)) {
			*why = "loopback header cut short";
			return -1;
		}
		return ip_of(&c, out, why);
	case CAP_LINK_RAW:
		return ip_of(&c, out, why);
	default:
		*why = "unsupported link type";
		return -1;
	}
}

/* ---- hex dumps ------------------------------------------------------------------ */

static int
hexval(uint8_t ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static int
is_blank(uint8_t ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

static int
put_byte(struct cap_hex *h, uint8_t b, size_t max)
{
	if (h->len >= max) {
		h->why = "too many bytes";
		return -1;
	}
	if (h->len == h->cap) {
		size_t nc = h->cap ? h->cap * 2 : 4096;
		uint8_t *nb = realloc(h->bytes, nc);
		if (!nb) {
			h->why = "out of memory";
			return -1;
		}
		h->bytes = nb;
		h->cap = nc;
	}
	h->bytes[h->len++] = b;
	return 0;
}

static int
end_packet(struct cap_hex *h)
{
	if (h->npkts && h->pkt_end[h->npkts - 1] == h->len)
		return 0;
	if (h->npkts == h->pkts_cap) {
		size_t nc = h->pkts_cap ? h->pkts_cap * 2 : 64;
		size_t *np = realloc(h->pkt_end, nc * sizeof(*np));
		if (!np) {
			h->why = "out of memory";
			return -1;
		}
		h->pkt_end = np;
		h->pkts_cap = nc;
	}
	h->pkt_end[h->npkts++] = h->len;
	return 0;
}

/*
 * Reads the offset token at the start of a line ("00000010:" or
 * "0x0010:", after blanks). Returns 1 with *off and *tcpdump set and the
 * cursor after the colon, 0 when the line has no offset (untouched cursor).
 */
static int
line_offset(struct iketcp_cur *line, uint64_t *off, int *tcpdump)
{
	struct iketcp_cur t = *line;
	uint8_t ch = 0;
	unsigned digits = 0;

	*off = 0;
	*tcpdump = 0;
	do {
		if (iketcp_cur_get_u8(&t, &ch) != IKETCP_OK)
			return 0;
	} while (is_blank(ch));
	if (ch == '0' && iketcp_cur_left(&t) && iketcp_cur_ptr(&t)[0] == 'x') {
		*tcpdump = 1;
		if (iketcp_cur_skip(&t, 1) || iketcp_cur_get_u8(&t, &ch))
			return 0;
	}
	for (;;) {
		int v = hexval(ch);
		if (v < 0 || ++digits > 16)
			break;
		*off = *off << 4 | (uint64_t)v;
		if (iketcp_cur_get_u8(&t, &ch) != IKETCP_OK)
			return 0;
	}
	if (ch != ':' || !digits || digits > 16)
		return 0;
	/* "12:34:56.789 IP ..." (a tcpdump time) is not an offset: a blank must follow. */
	if (iketcp_cur_left(&t) && !is_blank(iketcp_cur_ptr(&t)[0]))
		return 0;
	*line = t;
	return 1;
}

/*
 * The hex area after an offset: groups of hex digits separated by one
 * blank; two blanks (or the end) start the ASCII column, which is skipped.
 */
static int
line_hex(struct cap_hex *h, struct iketcp_cur *line, size_t max, size_t *got)
{
	uint8_t ch;
	*got = 0;
	while (iketcp_cur_left(line) && is_blank(iketcp_cur_ptr(line)[0]))
		if (iketcp_cur_skip(line, 1) != IKETCP_OK)
			return -1;
	while (iketcp_cur_left(line)) {
		int hi = -1;
		while (iketcp_cur_left(line) && hexval(iketcp_cur_ptr(line)[0]) >= 0) {
			if (iketcp_cur_get_u8(line, &ch) != IKETCP_OK)
				return -1;
			if (hi < 0) {
				hi = hexval(ch);
				continue;
			}
			if (put_byte(h, (uint8_t)(hi << 4 | hexval(ch)), max) < 0)
				return -1;
			(*got)++;
			hi = -1;
		}
		if (hi >= 0) {
			h->why = "odd number of hex digits in a group";
			return -1;
		}
		if (!iketcp_cur_left(line))
			break;
		if (iketcp_cur_get_u8(line, &ch) != IKETCP_OK || !is_blank(ch)) {
			h->why = "not a hex digit in the hex column";
			return -1;
		}
		if (!iketcp_cur_left(line) || hexval(iketcp_cur_ptr(line)[0]) < 0)
			break; /* two blanks: the ASCII column follows */
	}
	return 0;
}

/* Plain hex: every hex digit counts; blanks, newlines and colons separate. */
static int
parse_plain(struct cap_hex *h, struct iketcp_cur *c, size_t max)
{
	uint8_t ch;
	int hi = -1;
	size_t line = 1;
	while (iketcp_cur_get_u8(c, &ch) == IKETCP_OK) {
		int v = hexval(ch);
		if (v < 0) {
			if (ch == '\n')
				line++;
			if (is_blank(ch) || ch == '\n' || ch == ':')
				continue;
			h->err_line = line;
			h->why = "not a hex digit";
			return -1;
		}
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (put_byte(h, (uint8_t)(hi << 4 | v), max) < 0) {
			h->err_line = line;
			return -1;
		}
		hi = -1;
	}
	if (hi >= 0) {
		h->err_line = line;
		h->why = "odd number of hex digits";
		return -1;
	}
	return 0;
}

/* Splits the next line (without its newline) off c. */
static void
next_line(struct iketcp_cur *c, struct iketcp_cur *line)
{
	size_t left = iketcp_cur_left(c);
	const uint8_t *nl = left ? memchr(iketcp_cur_ptr(c), '\n', left) : NULL;
	size_t n = nl ? (size_t)(nl - iketcp_cur_ptr(c)) : left;
	if (iketcp_cur_sub(c, n, line) != IKETCP_OK)
		iketcp_cur_init(line, NULL, 0);
	if (nl && iketcp_cur_skip(c, 1) != IKETCP_OK)
		iketcp_cur_init(c, NULL, 0);
}

int
cap_hex_parse(struct cap_hex *h, const uint8_t *text, size_t len, size_t max_bytes)
{
	struct iketcp_cur c, line;
	uint64_t off;
	int td, any = 0, any_td = 0;

	memset(h, 0, sizeof(*h));
	iketcp_cur_init(&c, text, len);
	/* Offsets anywhere make it a dump with columns; else it is plain hex. */
	while (iketcp_cur_left(&c)) {
		next_line(&c, &line);
		if (line_offset(&line, &off, &td)) {
			if (any && td != any_td) {
				h->why = "mixed xxd and tcpdump offsets";
				return -1;
			}
			any = 1;
			any_td = td;
		}
	}
	iketcp_cur_init(&c, text, len);
	if (!any) {
		h->kind = CAP_HEX_PLAIN;
		return parse_plain(h, &c, max_bytes);
	}
	h->kind = any_td ? CAP_HEX_TCPDUMP : CAP_HEX_XXD;
	size_t pkt_start = 0, lineno = 0;
	while (iketcp_cur_left(&c)) {
		size_t got;
		lineno++;
		next_line(&c, &line);
		if (!line_offset(&line, &off, &td))
			continue; /* tcpdump's summary lines, blank lines */
		h->err_line = lineno;
		if (h->kind == CAP_HEX_TCPDUMP && off == 0) {
			if (h->len > pkt_start && end_packet(h) < 0)
				return -1;
			pkt_start = h->len;
		}
		if (off != h->len - pkt_start) {
			h->why = "offset does not follow the bytes before it (a line missing?)";
			return -1;
		}
		if (line_hex(h, &line, max_bytes, &got) < 0)
			return -1;
	}
	h->err_line = 0;
	if (h->kind == CAP_HEX_TCPDUMP && h->len > pkt_start && end_packet(h) < 0)
		return -1;
	return 0;
}

void
cap_hex_free(struct cap_hex *h)
{
	free(h->bytes);
	free(h->pkt_end);
	h->bytes = NULL;
	h->pkt_end = NULL;
}

/* ---- TCP streams ---------------------------------------------------------------- */

static int
same_end(const struct cap_dir *d, const uint8_t *addr, uint16_t port)
{
	return d->port == port && !memcmp(d->addr, addr, 16);
}

int
cap_flows_add(struct cap_flows *f, const struct cap_tcp *t, uint32_t pkt)
{
	struct cap_conn *cn = NULL;
	int dir = 0;

	for (size_t i = 0; i < f->n && !cn; i++) {
		struct cap_conn *x = &f->conns[i];
		if (x->family != t->family)
			continue;
		if (same_end(&x->d[0], t->src, t->sport) && same_end(&x->d[1], t->dst, t->dport))
			cn = x, dir = 0;
		else if (same_end(&x->d[1], t->src, t->sport) &&
			 same_end(&x->d[0], t->dst, t->dport))
			cn = x, dir = 1;
	}
	if (!cn) {
		if (f->n >= CAP_MAX_CONNS) {
			f->dropped++;
			return 0;
		}
		if (f->n == f->cap) {
			size_t nc = f->cap ? f->cap * 2 : 8;
			struct cap_conn *ncs = realloc(f->conns, nc * sizeof(*ncs));
			if (!ncs)
				return -1;
			f->conns = ncs;
			f->cap = nc;
		}
		cn = &f->conns[f->n++];
		memset(cn, 0, sizeof(*cn));
		cn->family = t->family;
		cn->first_pkt = pkt;
		memcpy(cn->d[0].addr, t->src, 16);
		cn->d[0].port = t->sport;
		memcpy(cn->d[1].addr, t->dst, 16);
		cn->d[1].port = t->dport;
	}
	struct cap_dir *d = &cn->d[dir];
	uint32_t seq = t->seq;
	if (t->flags & CAP_TCP_SYN) {
		seq++; /* data on a SYN (TCP Fast Open) starts after it */
		d->isn = seq;
		d->have_isn = 1;
		if (!(t->flags & CAP_TCP_ACK))
			d->syn = 1;
	}
	if (!t->len)
		return 0;
	if (f->segs >= CAP_MAX_SEGS || t->len > CAP_MAX_BYTES - f->bytes) {
		f->dropped++;
		return 0;
	}
	if (d->nsegs == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 16;
		struct cap_seg *ns = realloc(d->segs, nc * sizeof(*ns));
		if (!ns)
			return -1;
		d->segs = ns;
		d->cap = nc;
	}
	uint8_t *copy = malloc(t->len);
	if (!copy)
		return -1;
	memcpy(copy, t->payload, t->len);
	d->segs[d->nsegs++] =
		(struct cap_seg){.seq = seq, .pkt = pkt, .len = (uint32_t)t->len, .data = copy};
	f->segs++;
	f->bytes += t->len;
	return 0;
}

struct order {
	int64_t start;
	size_t idx;
};

static int
order_cmp(const void *a, const void *b)
{
	const struct order *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int
cap_stream_build(const struct cap_dir *d, struct cap_stream *s)
{
	memset(s, 0, sizeof(*s));
	if (!d->nsegs)
		return 0;
	uint32_t base = d->have_isn ? d->isn : d->segs[0].seq;
	if (!d->have_isn)
		for (size_t i = 1; i < d->nsegs; i++)
			if ((int32_t)(d->segs[i].seq - base) < 0)
				base = d->segs[i].seq;
	struct order *o = malloc(d->nsegs * sizeof(*o));
	size_t total = 0;
	if (!o)
		return -1;
	for (size_t i = 0; i < d->nsegs; i++) {
		o[i].start = (int32_t)(d->segs[i].seq - base);
		o[i].idx = i;
		total += d->segs[i].len;
	}
	qsort(o, d->nsegs, sizeof(*o), order_cmp);
	s->data = malloc(total ? total : 1);
	if (!s->data) {
		free(o);
		return -1;
	}
	int64_t next = 0;
	for (size_t k = 0; k < d->nsegs; k++) {
		const struct cap_seg *g = &d->segs[o[k].idx];
		int64_t st = o[k].start, en = st + g->len;
		if (en <= next) {
			s->dup += g->len;
			continue;
		}
		if (st > next) {
			s->gaps = (size_t)(st - next);
			s->gap_pkt = g->pkt;
			break;
		}
		size_t skip = (size_t)(next - st);
		s->dup += skip;
		memcpy(s->data + s->len, g->data + skip, g->len - skip);
		s->len += g->len - skip;
		next = en;
	}
	free(o);
	return 0;
}

void
cap_flows_free(struct cap_flows *f)
{
	for (size_t i = 0; i < f->n; i++)
		for (int k = 0; k < 2; k++) {
			for (size_t j = 0; j < f->conns[i].d[k].nsegs; j++)
				free(f->conns[i].d[k].segs[j].data);
			free(f->conns[i].d[k].segs);
		}
	free(f->conns);
	memset(f, 0, sizeof(*f));
}
