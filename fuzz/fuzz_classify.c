/*
 * Target Functions: iketcp_frame_classify, iketcp_frame_datagram_head,
 * iketcp_frame_encode_ike, iketcp_frame_encode_esp, iketcp_frame_ike_head,
 * iketcp_frame_kind_name, iketcp_runt_name, iketcp_ike_parse (through
 * classify), iketcp_errname / iketcp_strerror / iketcp_err_category.
 *
 * The input is used three ways:
 *   1. as a whole frame (Length field included): classify must return the
 *      code the contract gives for its size and Length, and on success
 *      agree field by field with the reference classifier in harness.h;
 *   2. as a UDP/4500 datagram (the gateway's path): datagram_head must
 *      return what the frame kinds (docs/conformance.md, "Wire format reference") says, and the
 * frame built from its head plus the datagram must classify consistently with that answer;
 *   3. as an IKE message and as an ESP packet to encode: the encoders must
 *      follow their error contracts (output untouched on every error) and
 *      the frames they build must classify back to the same bytes.
 * Every IKE or ESP frame met on the way is re-encoded from its message and
 * must come out byte for byte identical (round trip). The limits at 65529,
 * 65533 and 65535 bytes are reached on purpose: see padded().
 */
#include "harness.h"

/* An output buffer of exactly cap bytes, filled with a pattern. */
static uint8_t *
pattern_buf(size_t cap)
{
	uint8_t *p = malloc(cap ? cap : 1);
	CHECK(p != NULL);
	memset(p, 0xA5, cap);
	return p;
}

static int
untouched(const uint8_t *p, size_t cap)
{
	/* All bytes equal the first, which is the pattern. */
	return cap == 0 || (p[0] == 0xA5 && memcmp(p, p + 1, cap - 1) == 0);
}

/* Re-encodes a classified IKE or ESP frame and compares with the original. */
static void
round_trip(const uint8_t *fr, size_t n, const struct iketcp_frame *f)
{
	uint8_t *out, *small;
	int w, ws;

	if (f->kind != IKETCP_FRAME_IKE && f->kind != IKETCP_FRAME_ESP)
		return;
	out = pattern_buf(n);
	small = pattern_buf(n - 1);
	if (f->kind == IKETCP_FRAME_IKE) {
		uint8_t head[IKETCP_IKE_OVERHEAD];
		w = iketcp_frame_encode_ike(out, n, f->msg, f->msg_len);
		ws = iketcp_frame_encode_ike(small, n - 1, f->msg, f->msg_len);
		CHECK(iketcp_frame_ike_head(head, f->msg_len) == IKETCP_IKE_OVERHEAD);
		CHECK(memcmp(head, fr, sizeof(head)) == 0);
	} else {
		w = iketcp_frame_encode_esp(out, n, f->body, f->body_len);
		ws = iketcp_frame_encode_esp(small, n - 1, f->body, f->body_len);
	}
	CHECK(w > 0 && (size_t)w == n);
	CHECK(memcmp(out, fr, n) == 0);
	CHECK(ws == IKETCP_E_SHORT);
	CHECK(untouched(small, n - 1));
	free(out);
	free(small);
}

/* 1. The input as a whole frame. */
static void
as_frame(const uint8_t *data, size_t size)
{
	struct iketcp_frame f;
	int want, rc;

	if (size < 2)
		want = IKETCP_E_SHORT;
	else if (ref_be16(data) < 2)
		want = size == 2 ? IKETCP_OK : IKETCP_E_INVAL;
	else
		want = ref_be16(data) == size ? IKETCP_OK : IKETCP_E_INVAL;
	rc = iketcp_frame_classify(data, size, &f);
	check_rc_names(rc);
	CHECK(rc == want);
	if (rc != IKETCP_OK)
		return;
	check_classified(data, size, &f);
	round_trip(data, size, &f);
}

/* 2. The input as a UDP/4500 datagram to frame. */
static void
as_datagram(const uint8_t *dg, size_t len)
{
	uint8_t head[IKETCP_LEN_SIZE];
	struct iketcp_frame f;
	int want, rc;

	if (len == 1 && dg[0] == 0xFF)
		want = IKETCP_E_KEEPALIVE;
	else if (len > IKETCP_BODY_MAX)
		want = IKETCP_E_MSGSIZE;
	else if (len < 4)
		want = IKETCP_E_EMPTY;
	else if (ref_be32(dg) == 0)
		want = len == 4 ? IKETCP_E_EMPTY : IKETCP_FRAME_IKE;
	else
		want = len < 8 ? IKETCP_E_EMPTY : IKETCP_FRAME_ESP;
	rc = iketcp_frame_datagram_head(head, dg, len);
	if (rc < 0)
		check_rc_names(rc);
	CHECK(rc == want);
	if (len > IKETCP_BODY_MAX)
		return;

	/* The frame a gateway would send: 2-byte head + the datagram. */
	size_t n = len + IKETCP_LEN_SIZE;
	uint8_t *fr = malloc(n);
	CHECK(fr != NULL);
	fr[0] = (uint8_t)(n >> 8);
	fr[1] = (uint8_t)n;
	if (len)
		memcpy(fr + IKETCP_LEN_SIZE, dg, len);
	if (rc >= 0)
		CHECK(memcmp(head, fr, IKETCP_LEN_SIZE) == 0);
	classify_and_check(fr, n, &f);
	CHECK(f.body_len == len);

	int ike_runt = f.kind == IKETCP_FRAME_RUNT &&
		       (f.runt == IKETCP_RUNT_IKE_SHORT || f.runt == IKETCP_RUNT_IKE_LENGTH);
	switch (rc) {
	case IKETCP_FRAME_IKE:
		/* Framed as IKE: classify agrees, or finds a bad IKE header. */
		CHECK(f.kind == IKETCP_FRAME_IKE || ike_runt);
		break;
	case IKETCP_FRAME_ESP:
		CHECK(f.kind == IKETCP_FRAME_ESP && f.spi == ref_be32(dg));
		break;
	case IKETCP_E_KEEPALIVE:
		CHECK(f.kind == IKETCP_FRAME_KEEPALIVE);
		break;
	case IKETCP_E_EMPTY:
		CHECK(f.kind == IKETCP_FRAME_EMPTY ||
		      (f.kind == IKETCP_FRAME_RUNT &&
		       (f.runt == IKETCP_RUNT_TINY || f.runt == IKETCP_RUNT_ESP_SHORT ||
			(f.runt == IKETCP_RUNT_IKE_SHORT && len == 4))));
		break;
	default:
		CHECK(0);
	}
	/* Conversely, whatever classifies as IKE or ESP was framed as such. */
	if (f.kind == IKETCP_FRAME_IKE)
		CHECK(rc == IKETCP_FRAME_IKE);
	if (f.kind == IKETCP_FRAME_ESP)
		CHECK(rc == IKETCP_FRAME_ESP);
	round_trip(fr, n, &f);
	free(fr);
}

/* 3a. The input as an IKE message to encode. */
static void
as_ike_message(const uint8_t *msg, size_t len)
{
	uint8_t head[IKETCP_IKE_OVERHEAD];
	struct iketcp_frame f;
	size_t n = len + IKETCP_IKE_OVERHEAD;
	int want, rc;

	if (len == 0)
		want = IKETCP_E_EMPTY;
	else if (len > IKETCP_IKE_MAX)
		want = IKETCP_E_MSGSIZE;
	else
		want = (int)n;

	CHECK(iketcp_frame_ike_head(head, len) == (want > 0 ? IKETCP_IKE_OVERHEAD : want));

	uint8_t *out = pattern_buf(n);
	uint8_t *small = pattern_buf(n - 1);
	rc = iketcp_frame_encode_ike(small, n - 1, msg, len);
	CHECK(rc == (want > 0 ? IKETCP_E_SHORT : want));
	CHECK(untouched(small, n - 1));
	rc = iketcp_frame_encode_ike(out, n, msg, len);
	CHECK(rc == want);
	if (rc < 0) {
		check_rc_names(rc);
		CHECK(untouched(out, n));
	} else {
		CHECK(memcmp(out, head, sizeof(head)) == 0);
		classify_and_check(out, n, &f);
		CHECK(f.kind == IKETCP_FRAME_IKE ||
		      (f.kind == IKETCP_FRAME_RUNT && f.runt != IKETCP_RUNT_TINY &&
		       f.runt != IKETCP_RUNT_ESP_SHORT));
		CHECK(ref_be32(f.body) == 0);
		CHECK(memcmp(f.body + IKETCP_MARKER_LEN, msg, len) == 0);
		if (f.kind == IKETCP_FRAME_IKE)
			CHECK(f.msg_len == len);
	}
	free(out);
	free(small);
}

/* 3b. The input as an ESP packet to encode. */
static void
as_esp_packet(const uint8_t *esp, size_t len)
{
	struct iketcp_frame f;
	size_t n = len + IKETCP_LEN_SIZE;
	int want, rc;

	if (len < IKETCP_ESP_MIN)
		want = IKETCP_E_EMPTY;
	else if (ref_be32(esp) == 0)
		want = IKETCP_E_SPI0;
	else if (len > IKETCP_BODY_MAX)
		want = IKETCP_E_MSGSIZE;
	else
		want = (int)n;

	uint8_t *out = pattern_buf(n);
	uint8_t *small = pattern_buf(n - 1);
	rc = iketcp_frame_encode_esp(small, n - 1, esp, len);
	CHECK(rc == (want > 0 ? IKETCP_E_SHORT : want));
	CHECK(untouched(small, n - 1));
	rc = iketcp_frame_encode_esp(out, n, esp, len);
	CHECK(rc == want);
	if (rc < 0) {
		check_rc_names(rc);
		CHECK(untouched(out, n));
	} else {
		classify_and_check(out, n, &f);
		CHECK(f.kind == IKETCP_FRAME_ESP);
		CHECK(f.spi == ref_be32(esp) && f.spi != 0);
		CHECK(f.msg_len == len && memcmp(f.msg, esp, len) == 0);
	}
	free(out);
	free(small);
}

static void
all_ways(const uint8_t *data, size_t size)
{
	as_frame(data, size);
	as_datagram(data, size);
	as_ike_message(data, size);
	as_esp_packet(data, size);
}

/*
 * Sizes: random inputs stay small (max_len in fuzz_classify.options keeps
 * the fuzzer fast), and would almost never be exactly 65529 (largest IKE
 * message), 65533 (largest body) or 65535 bytes anyway. So an input of at
 * most 64 bytes whose last byte is 0xB0-0xBF asks to be zero-padded to
 * N = BE16(second and third bytes from the end) + (last & 15) bytes, with
 * its other bytes in front, and run through every check again; when N is a
 * valid Length the first two bytes are set to it for the frame path.
 * N ranges over 0..65550, so every size limit is one small input away.
 */
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
	all_ways(buf, n);
	if (n >= 2 && n <= IKETCP_FRAME_MAX) {
		buf[0] = (uint8_t)(n >> 8);
		buf[1] = (uint8_t)n;
		as_frame(buf, n);
	}
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	all_ways(data, size);
	padded(data, size);
	return 0;
}
