/*
 * Unit tests for lib/dgram.c: iketcp_dgram_classify() at every size and
 * kind boundary, its agreement with iketcp_frame_classify() for the same
 * bytes framed, iketcp_dgram_frame_kind(), and the send queue's
 * iketcp_sendq_push_dgram() against iketcp_sendq_push_datagram().
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "iketcp/dgram.h"
#include "iketcp/frame.h"
#include "iketcp/sendq.h"

/* Classifies a datagram that must classify (len <= IKETCP_BODY_MAX). */
static struct iketcp_dgram
classify_ok(const uint8_t *p, size_t len)
{
	struct iketcp_dgram d;
	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(iketcp_dgram_classify(p, len, &d), IKETCP_OK);
	assert_ptr_equal(d.p, p);
	assert_int_equal(d.len, len);
	return d;
}

/* Asserts a runt of the given reason and flags, with no message or SPI. */
static void
assert_runt(const uint8_t *p, size_t len, enum iketcp_runt_reason why, unsigned flags)
{
	struct iketcp_dgram d = classify_ok(p, len);
	assert_int_equal(d.kind, IKETCP_DGRAM_RUNT);
	assert_int_equal(d.runt, why);
	assert_int_equal(d.flags, flags);
	assert_null(d.msg);
	assert_int_equal(d.msg_len, 0);
	assert_int_equal(d.spi, 0);
}

/* marker + an IKE message of ike_len bytes whose header Length is hdr_len. */
static uint8_t *
marker_ike(size_t ike_len, uint32_t hdr_len)
{
	uint8_t *p = tu_xmalloc(IKETCP_MARKER_LEN + ike_len);
	struct tu_ike h = {.spi_i = TU_SPI_I,
			   .spi_r = 0x1112131415161718ULL,
			   .np = TU_NP_SA,
			   .version = TU_IKE_V2,
			   .exchange = 35,
			   .flags = 0x20,
			   .msg_id = 7,
			   .length = hdr_len};
	memset(p, 0, IKETCP_MARKER_LEN);
	tu_ike_msg_ex(p + IKETCP_MARKER_LEN, ike_len, &h);
	return p;
}

/* ---- kinds and boundaries -------------------------------------------------------- */

static void
test_keepalive(void **state)
{
	(void)state;
	static const uint8_t ff[8] = {0xff, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04};
	struct iketcp_dgram d = classify_ok(ff, 1);

	assert_int_equal(d.kind, IKETCP_DGRAM_KEEPALIVE);
	assert_int_equal(d.runt, IKETCP_RUNT_NONE);
	assert_int_equal(iketcp_dgram_frame_kind(&d), IKETCP_E_KEEPALIVE); /* R47 */
	/* 0xFF followed by anything is no keepalive (RFC 3948 2.3: one octet) */
	assert_runt(ff, 2, IKETCP_RUNT_TINY, 0);
	assert_runt(ff, 3, IKETCP_RUNT_TINY, 0);
	assert_runt(ff, 4, IKETCP_RUNT_ESP_SHORT, 0);
	d = classify_ok(ff, 8);
	assert_int_equal(d.kind, IKETCP_DGRAM_ESP);
	assert_int_equal(d.spi, 0xff000000u);
	/* another single octet is a runt */
	assert_runt(ff + 1, 1, IKETCP_RUNT_TINY, 0);
	assert_runt(ff + 4, 1, IKETCP_RUNT_TINY, 0);
}

static void
test_short_sizes(void **state)
{
	(void)state;
	static const uint8_t z[8] = {0};
	static const uint8_t e[8] = {0x00, 0x00, 0x00, 0x01, 0xaa, 0xbb, 0xcc, 0xdd};
	struct iketcp_dgram d;

	assert_runt(z, 0, IKETCP_RUNT_EMPTY, 0);
	assert_runt(NULL, 0, IKETCP_RUNT_EMPTY, 0);
	assert_runt(z, 1, IKETCP_RUNT_TINY, 0);
	assert_runt(e, 3, IKETCP_RUNT_TINY, 0);
	/* a bare marker, and a marker with too little for an IKE header */
	assert_runt(z, 4, IKETCP_RUNT_IKE_SHORT, IKETCP_DGRAM_F_MARKER);
	assert_runt(z, 7, IKETCP_RUNT_IKE_SHORT, IKETCP_DGRAM_F_MARKER);
	assert_runt(z, 8, IKETCP_RUNT_IKE_SHORT, IKETCP_DGRAM_F_MARKER);
	/* a non-zero SPI needs the sequence number too */
	assert_runt(e, 4, IKETCP_RUNT_ESP_SHORT, 0);
	assert_runt(e, 7, IKETCP_RUNT_ESP_SHORT, 0);
	d = classify_ok(e, 8);
	assert_int_equal(d.kind, IKETCP_DGRAM_ESP);
	assert_int_equal(d.spi, 1);
	assert_int_equal(d.flags, 0);
	assert_ptr_equal(d.msg, e);
	assert_int_equal(d.msg_len, 8);
	assert_int_equal(iketcp_dgram_frame_kind(&d), IKETCP_FRAME_ESP);
}

static void
test_spi0_vs_spi1(void **state)
{
	(void)state;
	uint8_t p[64];
	struct iketcp_dgram d;

	tu_esp_pkt(p, sizeof(p), 1, 9);
	d = classify_ok(p, sizeof(p));
	assert_int_equal(d.kind, IKETCP_DGRAM_ESP);
	assert_int_equal(d.spi, 1);
	tu_put32(p, 0); /* the same bytes with SPI 0 read as the non-ESP marker */
	assert_runt(p, sizeof(p), IKETCP_RUNT_IKE_LENGTH,
		    IKETCP_DGRAM_F_MARKER | IKETCP_DGRAM_F_HDR);
	tu_put32(p, 0xfffffffeu); /* host order, whatever the byte values */
	d = classify_ok(p, sizeof(p));
	assert_int_equal(d.spi, 0xfffffffeu);
	tu_put32(p, 0x00000100u);
	d = classify_ok(p, sizeof(p));
	assert_int_equal(d.spi, 0x100u);
}

static void
test_marker_27_28(void **state)
{
	(void)state;
	uint8_t *p = marker_ike(28, 0);
	struct iketcp_dgram d;

	/* one byte short of the header */
	assert_runt(p, IKETCP_MARKER_LEN + 27, IKETCP_RUNT_IKE_SHORT, IKETCP_DGRAM_F_MARKER);
	d = classify_ok(p, IKETCP_MARKER_LEN + 27);
	assert_int_equal(iketcp_dgram_frame_kind(&d), IKETCP_FRAME_IKE); /* framed as it is */
	/* a header-only message is IKE */
	d = classify_ok(p, IKETCP_MARKER_LEN + 28);
	assert_int_equal(d.kind, IKETCP_DGRAM_IKE);
	assert_int_equal(d.runt, IKETCP_RUNT_NONE);
	assert_int_equal(d.flags, IKETCP_DGRAM_F_MARKER | IKETCP_DGRAM_F_HDR);
	assert_ptr_equal(d.msg, p + 4);
	assert_int_equal(d.msg_len, 28);
	assert_int_equal(d.spi, 0);
	assert_int_equal(d.ike.length, 28);
	assert_int_equal(iketcp_dgram_frame_kind(&d), IKETCP_FRAME_IKE);
	free(p);
}

static void
test_ike_header_fields(void **state)
{
	(void)state;
	uint8_t *p = marker_ike(300, 0);
	struct iketcp_dgram d = classify_ok(p, 304);

	assert_int_equal(d.kind, IKETCP_DGRAM_IKE);
	assert_true(d.ike.spi_i == TU_SPI_I);
	assert_true(d.ike.spi_r == 0x1112131415161718ULL);
	assert_int_equal(d.ike.next_payload, TU_NP_SA);
	assert_int_equal(d.ike.version, TU_IKE_V2);
	assert_int_equal(d.ike.exchange, 35);
	assert_int_equal(d.ike.flags, 0x20);
	assert_int_equal(d.ike.msg_id, 7);
	assert_int_equal(d.ike.length, 300);
	free(p);
}

static void
test_ike_length_mismatch(void **state)
{
	(void)state;
	static const uint32_t lens[] = {0x7fffffffu, 0, 27, 28, 99, 101, 0xffffffffu};

	for (size_t i = 0; i < TU_ARRAY_LEN(lens); i++) {
		/* tu_ike_msg_ex() reads length 0 as "the real one": use 1 */
		uint32_t hl = lens[i] ? lens[i] : 1;
		uint8_t *p = marker_ike(100, hl);
		struct iketcp_dgram d;

		assert_runt(p, 104, IKETCP_RUNT_IKE_LENGTH,
			    IKETCP_DGRAM_F_MARKER | IKETCP_DGRAM_F_HDR);
		d = classify_ok(p, 104);
		/* the header is still there, for logs and counters */
		assert_int_equal(d.ike.length, hl);
		assert_true(d.ike.spi_i == TU_SPI_I);
		assert_int_equal(iketcp_dgram_frame_kind(&d), IKETCP_FRAME_IKE);
		free(p);
	}
}

static void
test_body_max(void **state)
{
	(void)state;
	uint8_t *p = tu_xmalloc(IKETCP_BODY_MAX + 1);
	struct iketcp_dgram d;

	tu_esp_pkt(p, IKETCP_BODY_MAX + 1, 0x300, 1);
	d = classify_ok(p, IKETCP_BODY_MAX);
	assert_int_equal(d.kind, IKETCP_DGRAM_ESP);
	assert_int_equal(d.msg_len, IKETCP_BODY_MAX);
	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(iketcp_dgram_classify(p, IKETCP_BODY_MAX + 1, &d), IKETCP_E_MSGSIZE);
	assert_int_equal(d.kind, IKETCP_DGRAM_OVERSIZE);
	assert_int_equal(d.len, IKETCP_BODY_MAX + 1);
	assert_ptr_equal(d.p, p);
	assert_null(d.msg);
	assert_int_equal(d.spi, 0);
	assert_int_equal(iketcp_dgram_frame_kind(&d), IKETCP_E_MSGSIZE);
	/* also a marker: the size wins before anything is read */
	memset(p, 0, 4);
	assert_int_equal(iketcp_dgram_classify(p, IKETCP_BODY_MAX + 1, &d), IKETCP_E_MSGSIZE);
	assert_int_equal(d.kind, IKETCP_DGRAM_OVERSIZE);
	assert_int_equal(d.flags, 0);
	free(p);

	/* the largest IKE message: marker + 65529 bytes */
	p = marker_ike(IKETCP_IKE_MAX, 0);
	d = classify_ok(p, IKETCP_BODY_MAX);
	assert_int_equal(d.kind, IKETCP_DGRAM_IKE);
	assert_int_equal(d.msg_len, IKETCP_IKE_MAX);
	free(p);
}

static void
test_kind_names(void **state)
{
	(void)state;
	static const char *const names[] = {"runt", "keepalive", "ike", "esp", "oversize"};

	for (int k = IKETCP_DGRAM_RUNT; k <= IKETCP_DGRAM_OVERSIZE; k++)
		assert_string_equal(iketcp_dgram_kind_name((enum iketcp_dgram_kind)k), names[k]);
	assert_string_equal(iketcp_dgram_kind_name((enum iketcp_dgram_kind) - 1), "invalid");
	assert_string_equal(iketcp_runt_name(IKETCP_RUNT_EMPTY), "empty");
}

/* ---- agreement with iketcp_frame_classify() ---------------------------------------- */

/*
 * Classifies p as a datagram and, framed, as a frame, and asserts that the
 * two agree; also that iketcp_frame_datagram_head() is
 * iketcp_dgram_frame_kind() with the right Length.
 */
static void
check_agree(const uint8_t *p, size_t len, uint8_t *frame)
{
	struct iketcp_dgram d;
	struct iketcp_frame f;
	uint8_t head[2];
	int fk;

	memset(&d, 0xa5, sizeof(d));
	assert_int_equal(iketcp_dgram_classify(p, len, &d), IKETCP_OK);
	assert_int_equal(tu_frame(frame, p, len), len + 2);
	assert_int_equal(iketcp_frame_classify(frame, len + 2, &f), IKETCP_OK);
	switch (f.kind) {
	case IKETCP_FRAME_EMPTY:
		assert_int_equal(d.kind, IKETCP_DGRAM_RUNT);
		assert_int_equal(d.runt, IKETCP_RUNT_EMPTY);
		break;
	case IKETCP_FRAME_KEEPALIVE:
		assert_int_equal(d.kind, IKETCP_DGRAM_KEEPALIVE);
		break;
	case IKETCP_FRAME_IKE:
		assert_int_equal(d.kind, IKETCP_DGRAM_IKE);
		assert_int_equal(d.msg - d.p, f.msg - f.body);
		assert_int_equal(d.msg_len, f.msg_len);
		assert_true(d.flags & IKETCP_DGRAM_F_HDR);
		break;
	case IKETCP_FRAME_ESP:
		assert_int_equal(d.kind, IKETCP_DGRAM_ESP);
		assert_ptr_equal(d.msg, p);
		assert_int_equal(d.msg_len, f.msg_len);
		break;
	case IKETCP_FRAME_RUNT:
		assert_int_equal(d.kind, IKETCP_DGRAM_RUNT);
		assert_int_equal(d.runt, f.runt);
		assert_null(d.msg);
		break;
	default:
		fail_msg("frame kind %d for a %zu-byte body", f.kind, len);
	}
	assert_int_equal(d.spi, f.spi);
	assert_int_equal(!!(d.flags & IKETCP_DGRAM_F_MARKER), len >= 4 && tu_get32(p) == 0);

	fk = iketcp_dgram_frame_kind(&d);
	memset(head, 0xa5, sizeof(head));
	assert_int_equal(iketcp_frame_datagram_head(head, p, len), fk);
	if (fk >= 0)
		assert_memory_equal(head, frame, 2);
}

static void
test_agrees_with_frame_classify(void **state)
{
	(void)state;
	struct tu_rng rng;
	uint8_t *p = tu_xmalloc(IKETCP_BODY_MAX);
	uint8_t *frame = tu_xmalloc(IKETCP_FRAME_MAX);
	static const size_t edges[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 32, 33, 100, 1400};
	unsigned seen[5] = {0}, runts[6] = {0};

	/* every edge size, all zero, all 0xFF, and with SPI 1 */
	for (size_t i = 0; i < TU_ARRAY_LEN(edges); i++) {
		size_t len = edges[i];
		memset(p, 0, len);
		check_agree(p, len, frame);
		memset(p, 0xff, len);
		check_agree(p, len, frame);
		if (len >= 4) {
			tu_put32(p, 1);
			check_agree(p, len, frame);
		}
		if (len >= 32) { /* marker + IKE header with the right Length */
			tu_put32(p, 0);
			tu_ike_msg(p + 4, len - 4, 37, (uint32_t)i);
			check_agree(p, len, frame);
		}
	}
	check_agree(p, IKETCP_BODY_MAX, frame);

	tu_rng_seed(&rng, 4500);
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)(i % 50 == 0 ? tu_rng_below(&rng, IKETCP_BODY_MAX + 1)
						  : tu_rng_below(&rng, 80));
		struct iketcp_dgram d;

		tu_rng_fill(&rng, p, len);
		switch (tu_rng_below(&rng, 4)) {
		case 0: /* marker + header with the right Length */
			if (len >= 4)
				memset(p, 0, 4);
			if (len >= 32)
				tu_put32(p + 4 + 24, (uint32_t)(len - 4));
			break;
		case 1: /* marker + random */
			if (len >= 4)
				memset(p, 0, 4);
			break;
		case 2:
			if (len == 1)
				p[0] = 0xff;
			break;
		default:
			break;
		}
		check_agree(p, len, frame);
		assert_int_equal(iketcp_dgram_classify(p, len, &d), IKETCP_OK);
		seen[d.kind]++;
		runts[d.runt]++;
	}
	/* the random inputs reached every kind and every reason */
	assert_true(seen[IKETCP_DGRAM_RUNT] && seen[IKETCP_DGRAM_KEEPALIVE] &&
		    seen[IKETCP_DGRAM_IKE] && seen[IKETCP_DGRAM_ESP]);
	for (int r = IKETCP_RUNT_TINY; r <= IKETCP_RUNT_EMPTY; r++)
		assert_true(runts[r] > 0);
	free(p);
	free(frame);
}

/* ---- send queue ------------------------------------------------------------------- */

/* Takes everything queued in q, in wire order, into out; returns its size. */
static size_t
drain(struct iketcp_sendq *q, uint8_t *out, size_t cap)
{
	struct iovec iov[IKETCP_SENDQ_IOV_MAX];
	size_t n = 0;
	int cnt = iketcp_sendq_iov(q, iov);

	for (int i = 0; i < cnt; i++) {
		assert_true(n + iov[i].iov_len <= cap);
		memcpy(out + n, iov[i].iov_base, iov[i].iov_len);
		n += iov[i].iov_len;
	}
	assert_int_equal(iketcp_sendq_consume(q, n), IKETCP_OK);
	assert_int_equal(iketcp_sendq_bytes(q), 0);
	return n;
}

static void
test_push_dgram_ike_first(void **state)
{
	(void)state;
	struct iketcp_sendq q;
	uint8_t esp[100], out[512];
	uint8_t *ike = marker_ike(60, 0);
	struct iketcp_dgram d;

	assert_int_equal(iketcp_sendq_init(&q, NULL), IKETCP_OK);
	tu_esp_pkt(esp, sizeof(esp), 0x1234, 1);
	d = classify_ok(esp, sizeof(esp));
	assert_int_equal(iketcp_sendq_push_dgram(&q, &d), IKETCP_OK);
	d = classify_ok(ike, 64);
	assert_int_equal(iketcp_sendq_push_dgram(&q, &d), IKETCP_OK);
	assert_int_equal(q.stats.overtakes, 1);
	assert_int_equal(iketcp_sendq_class_bytes(&q, IKETCP_CLASS_IKE), 66);
	assert_int_equal(iketcp_sendq_class_bytes(&q, IKETCP_CLASS_ESP), 102);

	/* the IKE frame went ahead of the ESP frame queued before it */
	assert_int_equal(drain(&q, out, sizeof(out)), 66 + 102);
	assert_hex_equal(out, 2, "00 42");
	assert_memory_equal(out + 2, ike, 64);
	assert_hex_equal(out + 66, 2, "00 66");
	assert_memory_equal(out + 68, esp, sizeof(esp));
	iketcp_sendq_free(&q);
	free(ike);
}

static void
test_push_dgram_refusals(void **state)
{
	(void)state;
	struct iketcp_sendq q;
	static const uint8_t ka[1] = {0xff};
	static const uint8_t z[8] = {0};
	uint8_t *big = tu_xmalloc(IKETCP_BODY_MAX + 1);
	struct iketcp_dgram d;

	assert_int_equal(iketcp_sendq_init(&q, NULL), IKETCP_OK);
	d = classify_ok(ka, 1);
	assert_int_equal(iketcp_sendq_push_dgram(&q, &d), IKETCP_E_KEEPALIVE);
	d = classify_ok(z, 0);
	assert_int_equal(iketcp_sendq_push_dgram(&q, &d), IKETCP_E_EMPTY);
	d = classify_ok(z, 4);
	assert_int_equal(iketcp_sendq_push_dgram(&q, &d), IKETCP_E_EMPTY);
	d = classify_ok(z + 1, 7); /* 00 00 00 00 | 00 00 00: marker + 3 bytes */
	assert_int_equal(d.runt, IKETCP_RUNT_IKE_SHORT);
	tu_esp_pkt(big, IKETCP_BODY_MAX + 1, 5, 5);
	assert_int_equal(iketcp_dgram_classify(big, IKETCP_BODY_MAX + 1, &d), IKETCP_E_MSGSIZE);
	assert_int_equal(iketcp_sendq_push_dgram(&q, &d), IKETCP_E_MSGSIZE);
	assert_int_equal(iketcp_sendq_bytes(&q), 0);
	assert_int_equal(q.stats.frames_in[0] + q.stats.frames_in[1], 0);
	/* the largest one fits in a queue that has room for it */
	iketcp_sendq_free(&q);
	struct iketcp_sendq_cfg cfg = {.budget = 2 * IKETCP_FRAME_MAX};
	assert_int_equal(iketcp_sendq_init(&q, &cfg), IKETCP_OK);
	d = classify_ok(big, IKETCP_BODY_MAX);
	assert_int_equal(iketcp_sendq_push_dgram(&q, &d), IKETCP_OK);
	assert_int_equal(iketcp_sendq_class_bytes(&q, IKETCP_CLASS_ESP), IKETCP_FRAME_MAX);
	iketcp_sendq_free(&q);
	free(big);
}

/* push_datagram() and classify + push_dgram() queue the same bytes. */
static void
test_push_dgram_equals_push_datagram(void **state)
{
	(void)state;
	struct tu_rng rng;
	struct iketcp_sendq a, b;
	uint8_t p[200], outa[8192], outb[8192];

	tu_rng_seed(&rng, 3948);
	assert_int_equal(iketcp_sendq_init(&a, NULL), IKETCP_OK);
	assert_int_equal(iketcp_sendq_init(&b, NULL), IKETCP_OK);
	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < 20; i++) {
			size_t len = (size_t)tu_rng_below(&rng, sizeof(p) + 1);
			struct iketcp_dgram d;
			int ra, rb;

			tu_rng_fill(&rng, p, len);
			if (len >= 4 && tu_rng_below(&rng, 2))
				memset(p, 0, 4);
			if (len >= 32 && tu_rng_below(&rng, 2))
				tu_put32(p + 28, (uint32_t)(len - 4));
			ra = iketcp_sendq_push_datagram(&a, p, len);
			assert_int_equal(iketcp_dgram_classify(p, len, &d), IKETCP_OK);
			rb = iketcp_sendq_push_dgram(&b, &d);
			assert_int_equal(ra, rb);
		}
		size_t na = drain(&a, outa, sizeof(outa));
		assert_int_equal(drain(&b, outb, sizeof(outb)), na);
		assert_memory_equal(outa, outb, na);
	}
	assert_true(a.stats.frames_in[IKETCP_CLASS_IKE] > 0 &&
		    a.stats.frames_in[IKETCP_CLASS_ESP] > 0);
	iketcp_sendq_free(&a);
	iketcp_sendq_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_short_sizes),
		cmocka_unit_test(test_spi0_vs_spi1),
		cmocka_unit_test(test_marker_27_28),
		cmocka_unit_test(test_ike_header_fields),
		cmocka_unit_test(test_ike_length_mismatch),
		cmocka_unit_test(test_body_max),
		cmocka_unit_test(test_kind_names),
		cmocka_unit_test(test_agrees_with_frame_classify),
		cmocka_unit_test(test_push_dgram_ike_first),
		cmocka_unit_test(test_push_dgram_refusals),
		cmocka_unit_test(test_push_dgram_equals_push_datagram),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
