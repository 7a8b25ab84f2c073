/*
 * Unit tests for lib/frame.c: the byte examples of docs/conformance.md, every
 * row of the Length table of §1.4, the encoders' refusals (R6, R8, §1.4
 * sender limits) and iketcp_frame_datagram_head() (R47).
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "iketcp/frame.h"

#define SENTINEL 0xa5

/* Asserts that n bytes at p all still hold SENTINEL. */
static void
assert_untouched(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != SENTINEL)
			fail_msg("byte %zu was written (0x%02x)", i, p[i]);
}

/* Classifies and checks the result is IKETCP_OK; returns the frame. */
static struct iketcp_frame
classify_ok(const uint8_t *frame, size_t len)
{
	struct iketcp_frame f;
	memset(&f, SENTINEL, sizeof(f));
	assert_int_equal(iketcp_frame_classify(frame, len, &f), IKETCP_OK);
	return f;
}

/* Asserts a RUNT frame of the given reason with nothing else filled in. */
static void
assert_runt(const uint8_t *frame, size_t len, enum iketcp_runt_reason why)
{
	struct iketcp_frame f = classify_ok(frame, len);
	assert_int_equal(f.kind, IKETCP_FRAME_RUNT);
	assert_int_equal(f.runt, why);
	assert_int_equal(f.length, len);
	assert_ptr_equal(f.body, frame + 2);
	assert_int_equal(f.body_len, len - 2);
	assert_null(f.msg);
	assert_int_equal(f.msg_len, 0);
	assert_int_equal(f.spi, 0);
}

/* §1.7: the 296-byte IKE_SA_INIT request of the example. */
static void
example_ike(uint8_t msg[296])
{
	tu_ike_msg(msg, 296, 34, 0);
}

/* ---- byte examples (docs/conformance.md) ----------------------------------------- */

static void
test_example_ike_sa_init_encode(void **state)
{
	(void)state;
	uint8_t msg[296], out[400];

	example_ike(msg);
	memset(out, SENTINEL, sizeof(out));
	assert_int_equal(iketcp_frame_encode_ike(out, sizeof(out), msg, sizeof(msg)), 302);
	/* Length 302 = 2 + 4 + 296, then the non-ESP marker (F1) */
	assert_hex_equal(out, 6, "01 2E 00 00 00 00");
	/* SPIi, SPIr = 0 */
	assert_hex_equal(out + 6, 16, "01 02 03 04 05 06 07 08  00 00 00 00 00 00 00 00");
	/* NP=SA(33) ver=0x20 ET=34 flags=I msgid=0 len=296 */
	assert_hex_equal(out + 22, 12, "21 20 22 08 00 00 00 00 00 00 01 28");
	assert_memory_equal(out + 6, msg, sizeof(msg));
	assert_untouched(out + 302, sizeof(out) - 302);
}

static void
test_example_ike_head(void **state)
{
	(void)state;
	uint8_t head[IKETCP_IKE_OVERHEAD];

	assert_int_equal(iketcp_frame_ike_head(head, 296), IKETCP_IKE_OVERHEAD);
	assert_hex_equal(head, sizeof(head), "01 2E 00 00 00 00");
}

static void
test_example_stream_start(void **state)
{
	(void)state;
	uint8_t msg[296], stream[IKETCP_PREFIX_LEN + 302];

	/* §1.7: "IKETCP" (TO only, once), then the frame (R9, R15) */
	example_ike(msg);
	memcpy(stream, IKETCP_PREFIX, IKETCP_PREFIX_LEN);
	assert_int_equal(iketcp_frame_encode_ike(stream + IKETCP_PREFIX_LEN, 302, msg, 296), 302);
	assert_hex_equal(stream, 12, "49 4B 45 54 43 50 01 2E 00 00 00 00");
	assert_int_equal(IKETCP_PREFIX_LEN, 6);
	assert_int_equal(IKETCP_IKE_MAX, 65529);
	assert_int_equal(IKETCP_BODY_MAX, 65533);
}

static void
test_example_ike_sa_init_decode(void **state)
{
	(void)state;
	uint8_t msg[296], frame[302];
	struct iketcp_frame f;

	example_ike(msg);
	assert_int_equal(tu_frame_ike(frame, 296, 34, 0), 302);
	f = classify_ok(frame, sizeof(frame));
	assert_int_equal(f.kind, IKETCP_FRAME_IKE);
	assert_int_equal(f.runt, IKETCP_RUNT_NONE);
	assert_int_equal(f.length, 302);
	assert_ptr_equal(f.body, frame + 2);
	assert_int_equal(f.body_len, 300);
	assert_ptr_equal(f.msg, frame + 6); /* marker stripped */
	assert_int_equal(f.msg_len, 296);
	assert_int_equal(f.spi, 0);
	assert_memory_equal(f.msg, msg, 296);
}

static void
test_example_esp_120(void **state)
{
	(void)state;
	uint8_t esp[120], out[122];
	struct iketcp_frame f;

	tu_esp_pkt(esp, sizeof(esp), 0xc0ffee01, 7);
	memset(out, SENTINEL, sizeof(out));
	assert_int_equal(iketcp_frame_encode_esp(out, sizeof(out), esp, sizeof(esp)), 122);
	assert_hex_equal(out, 10, "00 7A c0 ff ee 01 00 00 00 07"); /* 0x7A = 122 (F2) */
	assert_memory_equal(out + 2, esp, sizeof(esp));

	f = classify_ok(out, sizeof(out));
	assert_int_equal(f.kind, IKETCP_FRAME_ESP);
	assert_int_equal(f.runt, IKETCP_RUNT_NONE);
	assert_int_equal(f.length, 122);
	assert_int_equal(f.spi, 0xc0ffee01u);
	assert_ptr_equal(f.body, out + 2);
	assert_ptr_equal(f.msg, out + 2); /* ESP: msg == body */
	assert_int_equal(f.msg_len, 120);
	assert_int_equal(f.body_len, 120);
}

static void
test_example_keepalive(void **state)
{
	(void)state;
	static const uint8_t ka[] = {0x00, 0x03, 0xff}; /* F8 */
	struct iketcp_frame f = classify_ok(ka, sizeof(ka));

	assert_int_equal(f.kind, IKETCP_FRAME_KEEPALIVE); /* R48: not ESP, not a runt */
	assert_int_equal(f.runt, IKETCP_RUNT_NONE);
	assert_int_equal(f.length, 3);
	assert_ptr_equal(f.body, ka + 2);
	assert_int_equal(f.body_len, 1);
	assert_null(f.msg);
	assert_int_equal(f.msg_len, 0);
	assert_int_equal(f.spi, 0);
}

static void
test_example_empty(void **state)
{
	(void)state;
	static const uint8_t empty[] = {0x00, 0x02};
	struct iketcp_frame f = classify_ok(empty, sizeof(empty));

	assert_int_equal(f.kind, IKETCP_FRAME_EMPTY); /* R5 */
	assert_int_equal(f.runt, IKETCP_RUNT_NONE);
	assert_int_equal(f.length, 2);
	assert_int_equal(f.body_len, 0);
	assert_null(f.msg);
	assert_int_equal(f.spi, 0);
}

/* ---- frame kinds (docs/conformance.md), one test per row ---------------------- */

static void
test_row_len0_len1_fatal(void **state)
{
	(void)state;
	static const uint8_t l0[] = {0x00, 0x00}, l1[] = {0x00, 0x01};
	struct iketcp_frame f;

	f = classify_ok(l0, sizeof(l0)); /* R7 */
	assert_int_equal(f.kind, IKETCP_FRAME_FATAL);
	assert_int_equal(f.length, 0);
	assert_int_equal(f.body_len, 0);
	assert_null(f.body);
	assert_null(f.msg);
	f = classify_ok(l1, sizeof(l1));
	assert_int_equal(f.kind, IKETCP_FRAME_FATAL);
	assert_int_equal(f.length, 1);
}

static void
test_row_len3_non_ff_tiny(void **state)
{
	(void)state;
	uint8_t fr[3] = {0x00, 0x03, 0x00};

	for (int b = 0; b < 0xff; b++) { /* every octet but 0xFF */
		fr[2] = (uint8_t)b;
		assert_runt(fr, sizeof(fr), IKETCP_RUNT_TINY);
	}
}

static void
test_row_len4_len5_tiny(void **state)
{
	(void)state;
	/* 2-3 octets cannot hold a marker or an SPI, whatever they are */
	static const uint8_t l4z[] = {0x00, 0x04, 0x00, 0x00}, l4[] = {0x00, 0x04, 0xff, 0xff};
	static const uint8_t l5z[] = {0x00, 0x05, 0x00, 0x00, 0x00},
			     l5[] = {0x00, 0x05, 0x12, 0x34, 0x56};

	assert_runt(l4z, sizeof(l4z), IKETCP_RUNT_TINY);
	assert_runt(l4, sizeof(l4), IKETCP_RUNT_TINY);
	assert_runt(l5z, sizeof(l5z), IKETCP_RUNT_TINY);
	assert_runt(l5, sizeof(l5), IKETCP_RUNT_TINY);
}

static void
test_row_len6_bare_marker(void **state)
{
	(void)state;
	static const uint8_t fr[] = {0x00, 0x06, 0x00, 0x00, 0x00, 0x00};

	assert_runt(fr, sizeof(fr), IKETCP_RUNT_IKE_SHORT);
}

static void
test_row_len7_to_33_ike_short(void **state)
{
	(void)state;
	uint8_t fr[34], msg[28];

	/* marker + 1..27 octets of a real header: still shorter than 28 */
	tu_ike_msg(msg, sizeof(msg), 34, 0);
	for (size_t len = 7; len <= 33; len++) {
		tu_put16(fr, (uint16_t)len);
		memset(fr + 2, 0, 4);
		memcpy(fr + 6, msg, len - 6);
		assert_runt(fr, len, IKETCP_RUNT_IKE_SHORT);
	}
}

static void
test_row_len34_ike_header_only(void **state)
{
	(void)state;
	uint8_t fr[34];
	struct iketcp_frame f;

	assert_int_equal(tu_frame_ike(fr, 28, 37, 5), 34);
	f = classify_ok(fr, sizeof(fr));
	assert_int_equal(f.kind, IKETCP_FRAME_IKE);
	assert_ptr_equal(f.msg, fr + 6);
	assert_int_equal(f.msg_len, 28);
}

static void
test_row_ike_length_mismatch(void **state)
{
	(void)state;
	static const uint32_t bad[] = {0, 27, 28, 99, 101, 106, 0xffffffffu};
	uint8_t fr[106];

	/* F1: header Length must equal frame Length - 6 = 100 */
	for (size_t i = 0; i < TU_ARRAY_LEN(bad); i++) {
		assert_int_equal(tu_frame_ike(fr, 100, 34, 0), 106);
		tu_put32(fr + 6 + 24, bad[i]);
		assert_runt(fr, sizeof(fr), IKETCP_RUNT_IKE_LENGTH);
	}
	tu_put32(fr + 6 + 24, 100);
	assert_int_equal(classify_ok(fr, sizeof(fr)).kind, IKETCP_FRAME_IKE);
}

static void
test_row_ike_major_version(void **state)
{
	(void)state;
	/* Every major version is IKE to the framing: only the backend can
	 * answer INVALID_MAJOR_VERSION (RFC 7296 2.5), so it must get them. */
	static const uint8_t any[] = {0x00, 0x10, 0x1f, 0x20, 0x21, 0x2f, 0x30, 0xf0};
	uint8_t fr[40];

	for (size_t i = 0; i < TU_ARRAY_LEN(any); i++) {
		tu_frame_ike(fr, 34, 34, 0);
		fr[6 + 17] = any[i];
		struct iketcp_frame f = classify_ok(fr, sizeof(fr));
		assert_int_equal(f.kind, IKETCP_FRAME_IKE);
		assert_int_equal(f.runt, IKETCP_RUNT_NONE);
		assert_ptr_equal(f.msg, fr + 6);
		assert_int_equal(f.msg_len, 34);
	}
	/* the header Length still has to match, whatever the version */
	tu_frame_ike(fr, 34, 34, 0);
	fr[6 + 17] = 0x10;
	tu_put32(fr + 6 + 24, 33);
	assert_runt(fr, sizeof(fr), IKETCP_RUNT_IKE_LENGTH);
}

static void
test_row_ike_length_checked_before_version(void **state)
{
	(void)state;
	uint8_t fr[40];

	tu_frame_ike(fr, 34, 34, 0);
	fr[6 + 17] = 0x10;
	tu_put32(fr + 6 + 24, 35);
	assert_runt(fr, sizeof(fr), IKETCP_RUNT_IKE_LENGTH);
}

static void
test_row_len6_to_9_esp_short(void **state)
{
	(void)state;
	static const uint32_t spis[] = {1, 0x100, 0x01000000u, 0xffffffffu};
	uint8_t fr[9];

	for (size_t i = 0; i < TU_ARRAY_LEN(spis); i++) {
		for (size_t len = 6; len <= 9; len++) {
			memset(fr, 0x77, sizeof(fr));
			tu_put16(fr, (uint16_t)len);
			tu_put32(fr + 2, spis[i]);
			assert_runt(fr, len, IKETCP_RUNT_ESP_SHORT);
		}
	}
}

static void
test_row_len10_esp(void **state)
{
	(void)state;
	static const uint8_t fr[] = {0x00, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x09};
	struct iketcp_frame f = classify_ok(fr, sizeof(fr));

	/* F3: first word non-zero (here 1) means ESP and the word is the SPI */
	assert_int_equal(f.kind, IKETCP_FRAME_ESP);
	assert_int_equal(f.spi, 1);
	assert_ptr_equal(f.msg, fr + 2);
	assert_int_equal(f.msg_len, 8);
}

static void
test_row_len65535_max(void **state)
{
	(void)state;
	uint8_t *fr = tu_xmalloc(IKETCP_FRAME_MAX);
	struct iketcp_frame f;

	assert_int_equal(tu_frame_esp(fr, IKETCP_BODY_MAX, 0xfffffffeu, 1), 65535);
	assert_hex_equal(fr, 2, "ff ff");
	f = classify_ok(fr, IKETCP_FRAME_MAX);
	assert_int_equal(f.kind, IKETCP_FRAME_ESP);
	assert_int_equal(f.length, 65535);
	assert_int_equal(f.msg_len, 65533);

	assert_int_equal(tu_frame_ike(fr, IKETCP_IKE_MAX, 36, 9), 65535);
	f = classify_ok(fr, IKETCP_FRAME_MAX);
	assert_int_equal(f.kind, IKETCP_FRAME_IKE);
	assert_int_equal(f.msg_len, 65529);
	free(fr);
}

/* F3: for bodies >= 34 octets the kind depends only on the first 4 octets. */
static void
test_classification_depends_on_first_word(void **state)
{
	(void)state;
	struct tu_rng rng;
	uint8_t fr[200];

	tu_rng_seed(&rng, 3);
	for (int i = 0; i < 2000; i++) {
		size_t len = (size_t)tu_rng_range(&rng, 10, sizeof(fr));
		tu_rng_fill(&rng, fr, len);
		tu_put16(fr, (uint16_t)len);
		if (tu_rng_below(&rng, 4) == 0)
			memset(fr + 2, 0, 4);
		uint32_t first = tu_get32(fr + 2);
		struct iketcp_frame f = classify_ok(fr, len);
		if (first != 0) {
			assert_int_equal(f.kind, IKETCP_FRAME_ESP);
			assert_int_equal(f.spi, first);
		} else {
			/* random bytes after the marker: never ESP, never a crash */
			assert_true(f.kind == IKETCP_FRAME_RUNT || f.kind == IKETCP_FRAME_IKE);
			assert_int_equal(f.spi, 0);
		}
	}
}

/* ---- bad call arguments ----------------------------------------------------------- */

static void
test_classify_too_short(void **state)
{
	(void)state;
	static const uint8_t fr[] = {0x00, 0x02};
	struct iketcp_frame f, before;

	memset(&f, SENTINEL, sizeof(f));
	before = f;
	assert_int_equal(iketcp_frame_classify(fr, 0, &f), IKETCP_E_SHORT);
	assert_int_equal(iketcp_frame_classify(fr, 1, &f), IKETCP_E_SHORT);
	assert_int_equal(iketcp_frame_classify(NULL, 0, &f), IKETCP_E_SHORT);
	assert_int_equal(iketcp_frame_classify(NULL, 5, &f), IKETCP_E_SHORT);
	assert_memory_equal(&f, &before, sizeof(f));
}

static void
test_classify_length_mismatch(void **state)
{
	(void)state;
	uint8_t fr[130];
	struct iketcp_frame f, before;

	tu_frame_esp(fr, 120, 0x1234, 1); /* Length 122 */
	memset(&f, SENTINEL, sizeof(f));
	before = f;
	assert_int_equal(iketcp_frame_classify(fr, 121, &f), IKETCP_E_INVAL);
	assert_int_equal(iketcp_frame_classify(fr, 123, &f), IKETCP_E_INVAL);
	assert_int_equal(iketcp_frame_classify(fr, 2, &f), IKETCP_E_INVAL);
	/* Length 0/1 is only accepted as a 2-byte frame */
	tu_put16(fr, 0);
	assert_int_equal(iketcp_frame_classify(fr, 3, &f), IKETCP_E_INVAL);
	tu_put16(fr, 1);
	assert_int_equal(iketcp_frame_classify(fr, 130, &f), IKETCP_E_INVAL);
	assert_memory_equal(&f, &before, sizeof(f));
}

static void
test_kind_and_runt_names(void **state)
{
	(void)state;
	static const char *const kinds[] = {"fatal", "empty", "keepalive", "ike", "esp", "runt"};
	static const char *const runts[] = {"none", "tiny", "ike-short", "ike-length-mismatch",
					    "esp-short"};

	for (int k = IKETCP_FRAME_FATAL; k <= IKETCP_FRAME_RUNT; k++)
		assert_string_equal(iketcp_frame_kind_name((enum iketcp_frame_kind)k), kinds[k]);
	for (int r = IKETCP_RUNT_NONE; r <= IKETCP_RUNT_ESP_SHORT; r++)
		assert_string_equal(iketcp_runt_name((enum iketcp_runt_reason)r), runts[r]);
	assert_string_equal(iketcp_frame_kind_name((enum iketcp_frame_kind)99), "invalid");
	assert_string_equal(iketcp_runt_name((enum iketcp_runt_reason) - 1), "invalid");
}

/* ---- encoder refusals (R6, R8, §1.4 sender limits) --------------------------------- */

static void
test_encode_ike_empty(void **state)
{
	(void)state;
	uint8_t msg[1] = {0}, out[16];

	memset(out, SENTINEL, sizeof(out));
	assert_int_equal(iketcp_frame_encode_ike(out, sizeof(out), msg, 0), IKETCP_E_EMPTY);
	assert_untouched(out, sizeof(out));
}

static void
test_encode_ike_max(void **state)
{
	(void)state;
	uint8_t *msg = tu_xmalloc(IKETCP_IKE_MAX + 1);
	uint8_t *out = tu_xmalloc(IKETCP_FRAME_MAX + 16);

	tu_ike_msg(msg, IKETCP_IKE_MAX + 1, 34, 0);
	memset(out, SENTINEL, IKETCP_FRAME_MAX + 16);
	/* 65530 octets of IKE would need Length 65536 */
	assert_int_equal(
		iketcp_frame_encode_ike(out, IKETCP_FRAME_MAX + 16, msg, IKETCP_IKE_MAX + 1),
		IKETCP_E_MSGSIZE);
	assert_untouched(out, IKETCP_FRAME_MAX + 16);
	/* 65529 is the largest (§1.4): Length 65535 */
	assert_int_equal(iketcp_frame_encode_ike(out, IKETCP_FRAME_MAX + 16, msg, IKETCP_IKE_MAX),
			 65535);
	assert_hex_equal(out, 6, "ff ff 00 00 00 00");
	assert_memory_equal(out + 6, msg, IKETCP_IKE_MAX);
	assert_untouched(out + 65535, 16);
	free(msg);
	free(out);
}

static void
test_encode_ike_out_too_small(void **state)
{
	(void)state;
	uint8_t msg[40], out[46];

	tu_ike_msg(msg, sizeof(msg), 37, 3);
	memset(out, SENTINEL, sizeof(out));
	for (size_t cap = 0; cap < 46; cap++) {
		assert_int_equal(iketcp_frame_encode_ike(out, cap, msg, sizeof(msg)),
				 IKETCP_E_SHORT);
		assert_untouched(out, sizeof(out));
	}
	assert_int_equal(iketcp_frame_encode_ike(out, 46, msg, sizeof(msg)), 46);
	assert_hex_equal(out, 6, "00 2e 00 00 00 00");
}

static void
test_ike_head_refusals(void **state)
{
	(void)state;
	uint8_t head[IKETCP_IKE_OVERHEAD];

	memset(head, SENTINEL, sizeof(head));
	assert_int_equal(iketcp_frame_ike_head(head, 0), IKETCP_E_EMPTY);
	assert_int_equal(iketcp_frame_ike_head(head, IKETCP_IKE_MAX + 1), IKETCP_E_MSGSIZE);
	assert_int_equal(iketcp_frame_ike_head(head, SIZE_MAX), IKETCP_E_MSGSIZE);
	assert_untouched(head, sizeof(head));
	assert_int_equal(iketcp_frame_ike_head(head, IKETCP_IKE_MAX), 6);
	assert_hex_equal(head, 6, "ff ff 00 00 00 00");
	assert_int_equal(iketcp_frame_ike_head(head, 1), 6);
	assert_hex_equal(head, 6, "00 07 00 00 00 00"); /* R6: never Length 0/1 */
}

static void
test_encode_esp_spi0(void **state)
{
	(void)state;
	uint8_t esp[20], out[32];

	tu_esp_pkt(esp, sizeof(esp), 0, 1); /* R8: SPI 0 would read as the marker */
	memset(out, SENTINEL, sizeof(out));
	assert_int_equal(iketcp_frame_encode_esp(out, sizeof(out), esp, sizeof(esp)),
			 IKETCP_E_SPI0);
	assert_untouched(out, sizeof(out));
}

static void
test_encode_esp_too_short(void **state)
{
	(void)state;
	uint8_t esp[8], out[32];

	tu_esp_pkt(esp, sizeof(esp), 0x200, 1);
	memset(out, SENTINEL, sizeof(out));
	for (size_t len = 0; len < IKETCP_ESP_MIN; len++)
		assert_int_equal(iketcp_frame_encode_esp(out, sizeof(out), esp, len),
				 IKETCP_E_EMPTY);
	assert_untouched(out, sizeof(out));
	assert_int_equal(iketcp_frame_encode_esp(out, sizeof(out), esp, 8), 10);
	assert_hex_equal(out, 10, "00 0a 00 00 02 00 00 00 00 01");
}

static void
test_encode_esp_max(void **state)
{
	(void)state;
	uint8_t *esp = tu_xmalloc(IKETCP_BODY_MAX + 1);
	uint8_t *out = tu_xmalloc(IKETCP_FRAME_MAX + 16);

	tu_esp_pkt(esp, IKETCP_BODY_MAX + 1, 0x01020304, 1);
	memset(out, SENTINEL, IKETCP_FRAME_MAX + 16);
	assert_int_equal(
		iketcp_frame_encode_esp(out, IKETCP_FRAME_MAX + 16, esp, IKETCP_BODY_MAX + 1),
		IKETCP_E_MSGSIZE);
	assert_untouched(out, IKETCP_FRAME_MAX + 16);
	assert_int_equal(iketcp_frame_encode_esp(out, IKETCP_FRAME_MAX + 16, esp, IKETCP_BODY_MAX),
			 65535);
	assert_hex_equal(out, 6, "ff ff 01 02 03 04");
	assert_memory_equal(out + 2, esp, IKETCP_BODY_MAX);
	assert_untouched(out + 65535, 16);
	free(esp);
	free(out);
}

static void
test_encode_esp_out_too_small(void **state)
{
	(void)state;
	uint8_t esp[30], out[32];

	tu_esp_pkt(esp, sizeof(esp), 0xabcdef01, 2);
	memset(out, SENTINEL, sizeof(out));
	for (size_t cap = 0; cap < 32; cap++) {
		assert_int_equal(iketcp_frame_encode_esp(out, cap, esp, sizeof(esp)),
				 IKETCP_E_SHORT);
		assert_untouched(out, sizeof(out));
	}
	assert_int_equal(iketcp_frame_encode_esp(out, 32, esp, sizeof(esp)), 32);
	assert_hex_equal(out, 6, "00 20 ab cd ef 01");
}

/* ---- iketcp_frame_datagram_head ---------------------------------------------------- */

static void
test_dgram_keepalive_refused(void **state)
{
	(void)state;
	static const uint8_t ka[] = {0xff};
	uint8_t head[2] = {SENTINEL, SENTINEL};

	assert_int_equal(iketcp_frame_datagram_head(head, ka, 1), IKETCP_E_KEEPALIVE); /* R47 */
	assert_untouched(head, 2);
}

static void
test_dgram_too_short(void **state)
{
	(void)state;
	static const uint8_t d[8] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	static const uint8_t e[8] = {0xff, 0xfe, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05};
	uint8_t head[2] = {SENTINEL, SENTINEL};

	assert_int_equal(iketcp_frame_datagram_head(head, d, 0), IKETCP_E_EMPTY);
	assert_int_equal(iketcp_frame_datagram_head(head, e + 1, 1), IKETCP_E_EMPTY); /* 0xFE */
	assert_int_equal(iketcp_frame_datagram_head(head, e, 2), IKETCP_E_EMPTY);     /* FF FE */
	assert_int_equal(iketcp_frame_datagram_head(head, e, 3), IKETCP_E_EMPTY);
	/* a bare non-ESP marker carries no IKE message */
	assert_int_equal(iketcp_frame_datagram_head(head, d, 4), IKETCP_E_EMPTY);
	/* a non-zero SPI needs a sequence number too */
	for (size_t len = 4; len < IKETCP_ESP_MIN; len++)
		assert_int_equal(iketcp_frame_datagram_head(head, e, len), IKETCP_E_EMPTY);
	assert_untouched(head, 2);
}

static void
test_dgram_ike(void **state)
{
	(void)state;
	uint8_t dg[4 + 296], head[2];

	memset(dg, 0, 4);
	example_ike(dg + 4);
	assert_int_equal(iketcp_frame_datagram_head(head, dg, sizeof(dg)), IKETCP_FRAME_IKE);
	assert_hex_equal(head, 2, "01 2e");
}

static void
test_dgram_esp(void **state)
{
	(void)state;
	uint8_t dg[120], head[2];

	tu_esp_pkt(dg, sizeof(dg), 0x100, 1);
	assert_int_equal(iketcp_frame_datagram_head(head, dg, sizeof(dg)), IKETCP_FRAME_ESP);
	assert_hex_equal(head, 2, "00 7a");
	assert_int_equal(iketcp_frame_datagram_head(head, dg, 8), IKETCP_FRAME_ESP);
	assert_hex_equal(head, 2, "00 0a");
}

static void
test_dgram_oversize(void **state)
{
	(void)state;
	uint8_t *dg = tu_xmalloc(IKETCP_BODY_MAX + 1);
	uint8_t head[2] = {SENTINEL, SENTINEL};

	tu_esp_pkt(dg, IKETCP_BODY_MAX + 1, 0x300, 1);
	assert_int_equal(iketcp_frame_datagram_head(head, dg, IKETCP_BODY_MAX + 1),
			 IKETCP_E_MSGSIZE);
	assert_untouched(head, 2);
	assert_int_equal(iketcp_frame_datagram_head(head, dg, IKETCP_BODY_MAX), IKETCP_FRAME_ESP);
	assert_hex_equal(head, 2, "ff ff");
	free(dg);
}

/* ---- round trips ------------------------------------------------------------------- */

static void
test_round_trip_random(void **state)
{
	(void)state;
	struct tu_rng rng;
	uint8_t *msg = tu_xmalloc(IKETCP_FRAME_MAX);
	uint8_t *out = tu_xmalloc(IKETCP_FRAME_MAX);
	uint8_t head[IKETCP_IKE_OVERHEAD];

	tu_rng_seed(&rng, 9329);
	for (int i = 0; i < 500; i++) {
		/* lengths biased to the small end and to the maximum */
		size_t max = i % 10 == 0 ? IKETCP_IKE_MAX : 2000;
		size_t len = (size_t)tu_rng_range(&rng, 28, max);
		struct iketcp_frame f;
		int rc;

		tu_ike_msg(msg, len, (uint8_t)tu_rng_range(&rng, 34, 37), (uint32_t)i);
		rc = iketcp_frame_encode_ike(out, IKETCP_FRAME_MAX, msg, len);
		assert_int_equal(rc, len + 6);
		assert_int_equal(tu_get16(out), len + 6);
		assert_int_equal(iketcp_frame_ike_head(head, len), 6);
		assert_memory_equal(head, out, 6);
		f = classify_ok(out, (size_t)rc);
		assert_int_equal(f.kind, IKETCP_FRAME_IKE);
		assert_int_equal(f.msg_len, len);
		assert_memory_equal(f.msg, msg, len);

		len = (size_t)tu_rng_range(&rng, 8, i % 10 == 0 ? IKETCP_BODY_MAX : 2000);
		uint32_t spi = (uint32_t)tu_rng_range(&rng, 1, 0xffffffffu);
		tu_esp_pkt(msg, len, spi, (uint32_t)i);
		rc = iketcp_frame_encode_esp(out, IKETCP_FRAME_MAX, msg, len);
		assert_int_equal(rc, len + 2);
		f = classify_ok(out, (size_t)rc);
		assert_int_equal(f.kind, IKETCP_FRAME_ESP);
		assert_int_equal(f.spi, spi);
		assert_int_equal(f.msg_len, len);
		assert_memory_equal(f.msg, msg, len);
		/* the gateway path gives the same 2-byte head for the same body */
		assert_int_equal(iketcp_frame_datagram_head(head, f.body, f.body_len),
				 IKETCP_FRAME_ESP);
		assert_memory_equal(head, out, 2);
	}
	free(msg);
	free(out);
}

static void
test_round_trip_datagram_ike(void **state)
{
	(void)state;
	uint8_t dg[4 + 100], out[200], head[2];
	struct iketcp_frame f;

	memset(dg, 0, 4);
	tu_ike_msg(dg + 4, 100, 35, 1);
	assert_int_equal(iketcp_frame_datagram_head(head, dg, sizeof(dg)), IKETCP_FRAME_IKE);
	memcpy(out, head, 2);
	memcpy(out + 2, dg, sizeof(dg));
	f = classify_ok(out, 2 + sizeof(dg));
	assert_int_equal(f.kind, IKETCP_FRAME_IKE);
	assert_memory_equal(f.body, dg, sizeof(dg));
	assert_ptr_equal(f.msg, out + 6);
	/* and the IKE encoder yields the very same bytes */
	uint8_t enc[200];
	assert_int_equal(iketcp_frame_encode_ike(enc, sizeof(enc), dg + 4, 100), 106);
	assert_memory_equal(enc, out, 106);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_ike_sa_init_encode),
		cmocka_unit_test(test_example_ike_head),
		cmocka_unit_test(test_example_stream_start),
		cmocka_unit_test(test_example_ike_sa_init_decode),
		cmocka_unit_test(test_example_esp_120),
		cmocka_unit_test(test_example_keepalive),
		cmocka_unit_test(test_example_empty),
		cmocka_unit_test(test_row_len0_len1_fatal),
		cmocka_unit_test(test_row_len3_non_ff_tiny),
		cmocka_unit_test(test_row_len4_len5_tiny),
		cmocka_unit_test(test_row_len6_bare_marker),
		cmocka_unit_test(test_row_len7_to_33_ike_short),
		cmocka_unit_test(test_row_len34_ike_header_only),
		cmocka_unit_test(test_row_ike_length_mismatch),
		cmocka_unit_test(test_row_ike_major_version),
		cmocka_unit_test(test_row_ike_length_checked_before_version),
		cmocka_unit_test(test_row_len6_to_9_esp_short),
		cmocka_unit_test(test_row_len10_esp),
		cmocka_unit_test(test_row_len65535_max),
		cmocka_unit_test(test_classification_depends_on_first_word),
		cmocka_unit_test(test_classify_too_short),
		cmocka_unit_test(test_classify_length_mismatch),
		cmocka_unit_test(test_kind_and_runt_names),
		cmocka_unit_test(test_encode_ike_empty),
		cmocka_unit_test(test_encode_ike_max),
		cmocka_unit_test(test_encode_ike_out_too_small),
		cmocka_unit_test(test_ike_head_refusals),
		cmocka_unit_test(test_encode_esp_spi0),
		cmocka_unit_test(test_encode_esp_too_short),
		cmocka_unit_test(test_encode_esp_max),
		cmocka_unit_test(test_encode_esp_out_too_small),
		cmocka_unit_test(test_dgram_keepalive_refused),
		cmocka_unit_test(test_dgram_too_short),
		cmocka_unit_test(test_dgram_ike),
		cmocka_unit_test(test_dgram_esp),
		cmocka_unit_test(test_dgram_oversize),
		cmocka_unit_test(test_round_trip_random),
		cmocka_unit_test(test_round_trip_datagram_ike),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
