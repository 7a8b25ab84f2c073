/*
 * Target Functions: iketcp_dgram_classify, iketcp_dgram_frame_kind,
 * iketcp_dgram_kind_name, iketcp_frame_datagram_head, iketcp_sendq_push_dgram,
 * iketcp_sendq_push_datagram, iketcp_sendq_iov / iketcp_sendq_consume (to
 * read the queue back), and iketcp_frame_classify as the oracle's partner.
 *
 * The input is used two ways:
 *   1. as one UDP/4500 datagram: the classification must agree with
 *      iketcp_frame_classify() of the same bytes framed (which harness.h
 *      checks against its own reference), field by field, the IKE header
 *      must equal a manual decode, iketcp_frame_datagram_head() must give
 *      iketcp_dgram_frame_kind()'s answer and head, and a queue fed with
 *      iketcp_sendq_push_dgram() must write exactly Length + datagram;
 *   2. as a list of datagrams (1-byte size, then that many bytes, up to 32
 *      of them): pushed through push_dgram into one queue and through
 *      push_datagram into another, both read back in chunks whose sizes
 *      come from the sizes' top bits (0: all at once, else 37 to 555); both must write the same
 * bytes: the queued IKE frames in order, then the ESP frames in order, each with its own correct
 * Length. Sizes up to 65550 bytes come from small inputs as in fuzz_classify.c: an input of at most
 * 64 bytes whose last byte is 0xB0-0xBF is zero-padded to BE16(bytes -3..-2) + (last & 15) bytes
 * and checked again as one datagram.
 */
#include "harness.h"

/* A queue large enough for any single frame and for the list of way 2. */
#define QBUDGET (4u * IKETCP_FRAME_MAX)

/* Reads everything queued in q, chunk bytes at a time (0: all at once). */
static size_t
drain(struct iketcp_sendq *q, uint8_t *out, size_t cap, size_t chunk)
{
	struct iovec iov[IKETCP_SENDQ_IOV_MAX];
	size_t n = 0;

	while (iketcp_sendq_bytes(q) > 0) {
		int cnt = iketcp_sendq_iov(q, iov);
		size_t want = chunk ? chunk : SIZE_MAX, got = 0;
		CHECK(cnt > 0 && cnt <= IKETCP_SENDQ_IOV_MAX);
		for (int i = 0; i < cnt && got < want; i++) {
			size_t k = iov[i].iov_len < want - got ? iov[i].iov_len : want - got;
			CHECK(n + k <= cap);
			memcpy(out + n, iov[i].iov_base, k);
			n += k;
			got += k;
		}
		CHECK(iketcp_sendq_consume(q, got) == IKETCP_OK);
	}
	return n;
}

/* What iketcp_dgram_frame_kind() must say, from the bytes alone. */
static int
ref_frame_kind(const uint8_t *p, size_t len)
{
	if (len > IKETCP_BODY_MAX)
		return IKETCP_E_MSGSIZE;
	if (len == 1 && p[0] == 0xFF)
		return IKETCP_E_KEEPALIVE;
	if (len < 4)
		return IKETCP_E_EMPTY;
	if (ref_be32(p) == 0)
		return len == 4 ? IKETCP_E_EMPTY : IKETCP_FRAME_IKE;
	return len < 8 ? IKETCP_E_EMPTY : IKETCP_FRAME_ESP;
}

/* 1. The input as one datagram. */
static void
one(const uint8_t *p, size_t len)
{
	struct iketcp_dgram d;
	struct iketcp_sendq q;
	struct iketcp_sendq_cfg cfg = {.budget = QBUDGET};
	int rc = iketcp_dgram_classify(p, len, &d);
	int fk = iketcp_dgram_frame_kind(&d);
	uint8_t head[2] = {0xA5, 0xA5};

	CHECK(strcmp(iketcp_dgram_kind_name(d.kind), "invalid") != 0);
	CHECK(d.p == p && d.len == len);
	CHECK(fk == ref_frame_kind(p, len));
	CHECK(iketcp_frame_datagram_head(head, p, len) == fk);
	CHECK(iketcp_sendq_init(&q, &cfg) == IKETCP_OK);
	if (len > IKETCP_BODY_MAX) {
		CHECK(rc == IKETCP_E_MSGSIZE && d.kind == IKETCP_DGRAM_OVERSIZE);
		CHECK(d.flags == 0 && d.msg == NULL && d.spi == 0);
		CHECK(iketcp_sendq_push_dgram(&q, &d) == IKETCP_E_MSGSIZE);
		CHECK(iketcp_sendq_push_datagram(&q, p, len) == IKETCP_E_MSGSIZE);
		CHECK(iketcp_sendq_bytes(&q) == 0);
		iketcp_sendq_free(&q);
		return;
	}
	CHECK(rc == IKETCP_OK);
	CHECK((d.kind == IKETCP_DGRAM_RUNT) == (d.runt != IKETCP_RUNT_NONE));

	/* The same bytes as a frame; classify_and_check() holds it to the
	 * reference of harness.h. */
	size_t n = len + IKETCP_LEN_SIZE;
	uint8_t *fr = malloc(n);
	struct iketcp_frame f;
	CHECK(fr != NULL);
	fr[0] = (uint8_t)(n >> 8);
	fr[1] = (uint8_t)n;
	if (len)
		memcpy(fr + IKETCP_LEN_SIZE, p, len);
	classify_and_check(fr, n, &f);
	switch (f.kind) {
	case IKETCP_FRAME_EMPTY:
		CHECK(d.kind == IKETCP_DGRAM_RUNT && d.runt == IKETCP_RUNT_EMPTY);
		break;
	case IKETCP_FRAME_KEEPALIVE:
		CHECK(d.kind == IKETCP_DGRAM_KEEPALIVE);
		break;
	case IKETCP_FRAME_IKE:
		CHECK(d.kind == IKETCP_DGRAM_IKE);
		CHECK(d.msg == p + 4 && d.msg_len == f.msg_len);
		break;
	case IKETCP_FRAME_ESP:
		CHECK(d.kind == IKETCP_DGRAM_ESP);
		CHECK(d.msg == p && d.msg_len == len);
		break;
	case IKETCP_FRAME_RUNT:
		CHECK(d.kind == IKETCP_DGRAM_RUNT && d.runt == f.runt);
		CHECK(d.msg == NULL && d.msg_len == 0);
		break;
	default:
		CHECK(0);
	}
	CHECK(d.spi == f.spi);
	if (fk >= 0)
		CHECK(memcmp(head, fr, 2) == 0);

	/* Flags, and the header against a manual decode. */
	int marker = len >= 4 && ref_be32(p) == 0;
	int hdr = marker && len >= 32;
	CHECK(!!(d.flags & IKETCP_DGRAM_F_MARKER) == marker);
	CHECK(!!(d.flags & IKETCP_DGRAM_F_HDR) == hdr);
	CHECK((d.flags & ~(IKETCP_DGRAM_F_MARKER | IKETCP_DGRAM_F_HDR)) == 0);
	if (hdr) {
		const uint8_t *h = p + 4;
		CHECK(d.ike.spi_i == ref_be64(h) && d.ike.spi_r == ref_be64(h + 8));
		CHECK(d.ike.next_payload == h[16] && d.ike.version == h[17]);
		CHECK(d.ike.exchange == h[18] && d.ike.flags == h[19]);
		CHECK(d.ike.msg_id == ref_be32(h + 20) && d.ike.length == ref_be32(h + 24));
		CHECK((d.kind == IKETCP_DGRAM_IKE) == (d.ike.length == len - 4));
	}

	/* The queue writes Length + the datagram, nothing else. */
	int pr = iketcp_sendq_push_dgram(&q, &d);
	CHECK(pr == (fk < 0 ? fk : IKETCP_OK));
	if (pr == IKETCP_OK) {
		uint8_t *out = malloc(n);
		CHECK(out != NULL);
		enum iketcp_class cls =
			fk == IKETCP_FRAME_IKE ? IKETCP_CLASS_IKE : IKETCP_CLASS_ESP;
		CHECK(iketcp_sendq_class_bytes(&q, cls) == n);
		CHECK(drain(&q, out, n, (len % 7) * 61) == n);
		CHECK(memcmp(out, fr, n) == 0);
		free(out);
	}
	CHECK(iketcp_sendq_bytes(&q) == 0);
	iketcp_sendq_free(&q);
	free(fr);
}

/* 2. The input as a list of datagrams through two queues. */
static void
list(const uint8_t *data, size_t size)
{
	struct iketcp_sendq qa, qb;
	struct iketcp_sendq_cfg cfg = {.budget = QBUDGET};
	/* Expected output: IKE frames, then ESP frames, each in push order. */
	size_t cap = 32 * (255 + 2);
	uint8_t *ike = malloc(cap), *esp = malloc(cap), *oa = malloc(cap), *ob = malloc(cap);
	size_t ni = 0, ne = 0, off = 0, chunk = 0;

	CHECK(ike && esp && oa && ob);
	CHECK(iketcp_sendq_init(&qa, &cfg) == IKETCP_OK);
	CHECK(iketcp_sendq_init(&qb, &cfg) == IKETCP_OK);
	for (int k = 0; k < 32 && off < size; k++) {
		size_t len = data[off++];
		if (len > size - off)
			len = size - off;
		const uint8_t *p = data + off;
		struct iketcp_dgram d;
		off += len;
		chunk = chunk * 3 + (len >> 5);

		int fk = ref_frame_kind(p, len);
		CHECK(iketcp_dgram_classify(p, len, &d) == IKETCP_OK);
		int ra = iketcp_sendq_push_dgram(&qa, &d);
		int rb = iketcp_sendq_push_datagram(&qb, p, len);
		CHECK(ra == rb && ra == (fk < 0 ? fk : IKETCP_OK));
		if (ra != IKETCP_OK)
			continue;
		uint8_t *dst = fk == IKETCP_FRAME_IKE ? ike + ni : esp + ne;
		dst[0] = (uint8_t)((len + 2) >> 8);
		dst[1] = (uint8_t)(len + 2);
		memcpy(dst + 2, p, len);
		if (fk == IKETCP_FRAME_IKE)
			ni += len + 2;
		else
			ne += len + 2;
	}
	CHECK(iketcp_sendq_class_bytes(&qa, IKETCP_CLASS_IKE) == ni);
	CHECK(iketcp_sendq_class_bytes(&qa, IKETCP_CLASS_ESP) == ne);
	size_t na = drain(&qa, oa, cap, (chunk % 16) * 37);
	size_t nb = drain(&qb, ob, cap, 0);
	CHECK(na == ni + ne && nb == na);
	CHECK(memcmp(oa, ike, ni) == 0 && memcmp(oa + ni, esp, ne) == 0);
	CHECK(memcmp(oa, ob, na) == 0);
	/* Every frame on the wire carries its own Length. */
	for (size_t at = 0; at < na;) {
		size_t fl = ref_be16(oa + at);
		CHECK(fl >= 3 && at + fl <= na);
		at += fl;
	}
	iketcp_sendq_free(&qa);
	iketcp_sendq_free(&qb);
	free(ike);
	free(esp);
	free(oa);
	free(ob);
}

static void
padded(const uint8_t *data, size_t size)
{
	if (size < 3 || size > 64 || (data[size - 1] & 0xF0) != 0xB0)
		return;
	size_t n = (size_t)ref_be16(data + size - 3) + (data[size - 1] & 0x0F);
	size_t keep = size - 3 < n ? size - 3 : n;
	uint8_t *buf = calloc(1, n ? n : 1);
	CHECK(buf != NULL);
	if (keep)
		memcpy(buf, data, keep);
	one(buf, n);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size);
	list(data, size);
	padded(data, size);
	return 0;
}
