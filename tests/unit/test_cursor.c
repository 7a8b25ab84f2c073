/*
 * Unit tests for include/iketcp/cursor.h: bounded read cursor and write
 * cursor. Every failing call must leave the cursor (and the output) exactly
 * as it was: reads check availability first, so a failed read leaves
 * nothing half-consumed for the next parser step to trip over.
 */
#include "testutil.h"

#include <string.h>

#include "iketcp/cursor.h"

static const uint8_t bytes16[16] = {0x81, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
				    0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x00};

/* Asserts that c still is (base, len, off). */
#define assert_cur(c, b, l, o)                                                                     \
	do {                                                                                       \
		assert_ptr_equal((c)->base, (b));                                                  \
		assert_int_equal((c)->len, (l));                                                   \
		assert_int_equal((c)->off, (o));                                                   \
	} while (0)

/* A cursor over bytes16 with `left` bytes left (off = 16 - left). */
static struct iketcp_cur
cur_left(size_t left)
{
	struct iketcp_cur c;
	iketcp_cur_init(&c, bytes16, sizeof(bytes16));
	c.off = sizeof(bytes16) - left;
	return c;
}

/* ---- init / left / ptr ---------------------------------------------------- */

static void
test_init(void **state)
{
	(void)state;
	struct iketcp_cur c;

	iketcp_cur_init(&c, bytes16, 5);
	assert_cur(&c, bytes16, 5, 0);
	assert_int_equal(iketcp_cur_left(&c), 5);
	assert_ptr_equal(iketcp_cur_ptr(&c), bytes16);
}

static void
test_init_null_is_empty(void **state)
{
	(void)state;
	struct iketcp_cur c;
	uint8_t b = 0x5a;

	iketcp_cur_init(&c, NULL, 7); /* NULL forces length 0 */
	assert_int_equal(c.len, 0);
	assert_int_equal(iketcp_cur_left(&c), 0);
	assert_int_equal(iketcp_cur_get_u8(&c, &b), IKETCP_E_SHORT);
	assert_int_equal(b, 0x5a);
	assert_int_equal(iketcp_cur_skip(&c, 0), IKETCP_OK);
}

/* ---- get_u8 ----------------------------------------------------------------- */

static void
test_get_u8(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(2);
	uint8_t v = 0;

	assert_int_equal(iketcp_cur_get_u8(&c, &v), IKETCP_OK);
	assert_int_equal(v, 0xff);
	assert_int_equal(iketcp_cur_get_u8(&c, &v), IKETCP_OK);
	assert_int_equal(v, 0x00);
	assert_cur(&c, bytes16, 16, 16);
}

static void
test_get_u8_short(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(0);
	uint8_t v = 0xa5;

	assert_int_equal(iketcp_cur_get_u8(&c, &v), IKETCP_E_SHORT);
	assert_int_equal(v, 0xa5);
	assert_cur(&c, bytes16, 16, 16);
}

/* ---- get_u16 ----------------------------------------------------------------- */

static void
test_get_u16_big_endian(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(16);
	uint16_t v = 0;

	assert_int_equal(iketcp_cur_get_u16(&c, &v), IKETCP_OK);
	assert_int_equal(v, 0x8102); /* high bit set: no sign extension */
	assert_int_equal(c.off, 2);
	c.off = 12;
	assert_int_equal(iketcp_cur_get_u16(&c, &v), IKETCP_OK);
	assert_int_equal(v, 0xfdfe);
	assert_int_equal(iketcp_cur_get_u16(&c, &v), IKETCP_OK);
	assert_int_equal(v, 0xff00);
	assert_cur(&c, bytes16, 16, 16);
}

static void
test_get_u16_short(void **state)
{
	(void)state;
	uint16_t v = 0x1234;

	for (size_t left = 0; left < 2; left++) {
		struct iketcp_cur c = cur_left(left);
		assert_int_equal(iketcp_cur_get_u16(&c, &v), IKETCP_E_SHORT);
		assert_int_equal(v, 0x1234);
		assert_cur(&c, bytes16, 16, 16 - left);
	}
}

/* ---- get_u32 ----------------------------------------------------------------- */

static void
test_get_u32_big_endian(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(16);
	uint32_t v = 0;

	assert_int_equal(iketcp_cur_get_u32(&c, &v), IKETCP_OK);
	assert_int_equal(v, 0x81020304u);
	assert_int_equal(iketcp_cur_get_u32(&c, &v), IKETCP_OK);
	assert_int_equal(v, 0x05060708u);
	assert_int_equal(iketcp_cur_get_u32(&c, &v), IKETCP_OK);
	assert_int_equal(v, 0xf9fafbfcu);
	assert_int_equal(iketcp_cur_get_u32(&c, &v), IKETCP_OK);
	assert_int_equal(v, 0xfdfeff00u);
	assert_cur(&c, bytes16, 16, 16);
}

static void
test_get_u32_short(void **state)
{
	(void)state;
	uint32_t v = 0xdeadbeef;

	for (size_t left = 0; left < 4; left++) {
		struct iketcp_cur c = cur_left(left);
		assert_int_equal(iketcp_cur_get_u32(&c, &v), IKETCP_E_SHORT);
		assert_int_equal(v, 0xdeadbeef);
		assert_cur(&c, bytes16, 16, 16 - left);
	}
}

/* ---- get_u64 ----------------------------------------------------------------- */

static void
test_get_u64_big_endian(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(16);
	uint64_t v = 0;

	assert_int_equal(iketcp_cur_get_u64(&c, &v), IKETCP_OK);
	assert_true(v == 0x8102030405060708ull);
	assert_int_equal(iketcp_cur_get_u64(&c, &v), IKETCP_OK);
	assert_true(v == 0xf9fafbfcfdfeff00ull);
	assert_cur(&c, bytes16, 16, 16);
}

static void
test_get_u64_short(void **state)
{
	(void)state;
	uint64_t v = 0x1122334455667788ull;

	/* 4..7 bytes left: the first half alone would fit; nothing may move. */
	for (size_t left = 0; left < 8; left++) {
		struct iketcp_cur c = cur_left(left);
		assert_int_equal(iketcp_cur_get_u64(&c, &v), IKETCP_E_SHORT);
		assert_true(v == 0x1122334455667788ull);
		assert_cur(&c, bytes16, 16, 16 - left);
	}
}

/* ---- get_bytes ------------------------------------------------------------- */

static void
test_get_bytes(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(16);
	uint8_t out[5];

	assert_int_equal(iketcp_cur_get_bytes(&c, out, 5), IKETCP_OK);
	assert_hex_equal(out, 5, "81 02 03 04 05");
	assert_int_equal(c.off, 5);
	assert_int_equal(iketcp_cur_get_bytes(&c, out, 0), IKETCP_OK);
	assert_int_equal(c.off, 5);
	c.off = 11;
	assert_int_equal(iketcp_cur_get_bytes(&c, out, 5), IKETCP_OK);
	assert_hex_equal(out, 5, "fc fd fe ff 00");
	assert_cur(&c, bytes16, 16, 16);
	/* zero bytes at the very end still succeed */
	assert_int_equal(iketcp_cur_get_bytes(&c, out, 0), IKETCP_OK);
}

static void
test_get_bytes_short(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(4);
	uint8_t out[8];

	memset(out, 0xee, sizeof(out));
	assert_int_equal(iketcp_cur_get_bytes(&c, out, 5), IKETCP_E_SHORT);
	assert_int_equal(iketcp_cur_get_bytes(&c, out, SIZE_MAX), IKETCP_E_SHORT);
	assert_hex_equal(out, 8, "ee ee ee ee ee ee ee ee");
	assert_cur(&c, bytes16, 16, 12);
}

/* ---- take -------------------------------------------------------------------- */

static void
test_take(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(16);
	const uint8_t *p = NULL;

	assert_int_equal(iketcp_cur_take(&c, 3, &p), IKETCP_OK);
	assert_ptr_equal(p, bytes16); /* a view, not a copy */
	assert_int_equal(c.off, 3);
	assert_int_equal(iketcp_cur_take(&c, 13, &p), IKETCP_OK);
	assert_ptr_equal(p, bytes16 + 3);
	assert_cur(&c, bytes16, 16, 16);
	assert_int_equal(iketcp_cur_take(&c, 0, &p), IKETCP_OK);
	assert_ptr_equal(p, bytes16 + 16);
}

static void
test_take_short(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(3);
	const uint8_t sentinel = 0;
	const uint8_t *p = &sentinel;

	assert_int_equal(iketcp_cur_take(&c, 4, &p), IKETCP_E_SHORT);
	assert_int_equal(iketcp_cur_take(&c, SIZE_MAX, &p), IKETCP_E_SHORT);
	assert_ptr_equal(p, &sentinel);
	assert_cur(&c, bytes16, 16, 13);
}

/* ---- skip -------------------------------------------------------------------- */

static void
test_skip(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(16);
	uint8_t v;

	assert_int_equal(iketcp_cur_skip(&c, 0), IKETCP_OK);
	assert_int_equal(c.off, 0);
	assert_int_equal(iketcp_cur_skip(&c, 14), IKETCP_OK);
	assert_int_equal(iketcp_cur_left(&c), 2);
	assert_ptr_equal(iketcp_cur_ptr(&c), bytes16 + 14);
	assert_int_equal(iketcp_cur_get_u8(&c, &v), IKETCP_OK);
	assert_int_equal(v, 0xff);
	assert_int_equal(iketcp_cur_skip(&c, 1), IKETCP_OK);
	assert_cur(&c, bytes16, 16, 16);
}

static void
test_skip_short(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(5);

	assert_int_equal(iketcp_cur_skip(&c, 6), IKETCP_E_SHORT);
	assert_int_equal(iketcp_cur_skip(&c, SIZE_MAX), IKETCP_E_SHORT);
	assert_cur(&c, bytes16, 16, 11);
}

/* ---- peek_u16 ---------------------------------------------------------------- */

static void
test_peek_u16(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(16);
	uint16_t v = 0;

	assert_int_equal(iketcp_cur_peek_u16(&c, 0, &v), IKETCP_OK);
	assert_int_equal(v, 0x8102);
	assert_int_equal(iketcp_cur_peek_u16(&c, 3, &v), IKETCP_OK);
	assert_int_equal(v, 0x0405);
	assert_int_equal(iketcp_cur_peek_u16(&c, 14, &v), IKETCP_OK);
	assert_int_equal(v, 0xff00);
	assert_cur(&c, bytes16, 16, 0); /* peeking never moves */

	c.off = 8; /* `at` is relative to the current position */
	assert_int_equal(iketcp_cur_peek_u16(&c, 1, &v), IKETCP_OK);
	assert_int_equal(v, 0xfafb);
	assert_cur(&c, bytes16, 16, 8);
}

static void
test_peek_u16_short(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(4);
	uint16_t v = 0x7777;

	assert_int_equal(iketcp_cur_peek_u16(&c, 3, &v), IKETCP_E_SHORT); /* 1 byte there */
	assert_int_equal(iketcp_cur_peek_u16(&c, 4, &v), IKETCP_E_SHORT);
	assert_int_equal(iketcp_cur_peek_u16(&c, SIZE_MAX, &v), IKETCP_E_SHORT);
	assert_int_equal(iketcp_cur_peek_u16(&c, SIZE_MAX - 1, &v), IKETCP_E_SHORT);
	assert_int_equal(v, 0x7777);
	assert_cur(&c, bytes16, 16, 12);
}

/* ---- sub ----------------------------------------------------------------------- */

static void
test_sub(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(16), s;
	uint32_t v;
	uint16_t v16 = 0x4242;
	uint8_t b;

	assert_int_equal(iketcp_cur_skip(&c, 2), IKETCP_OK);
	assert_int_equal(iketcp_cur_sub(&c, 5, &s), IKETCP_OK);
	assert_cur(&c, bytes16, 16, 7); /* parent moved past the sub-range */
	assert_cur(&s, bytes16 + 2, 5, 0);
	assert_int_equal(iketcp_cur_get_u32(&s, &v), IKETCP_OK);
	assert_int_equal(v, 0x03040506u);
	/* The sub-cursor ends where it was cut, though memory continues. */
	assert_int_equal(iketcp_cur_get_u16(&s, &v16), IKETCP_E_SHORT);
	assert_int_equal(v16, 0x4242);
	assert_int_equal(iketcp_cur_get_u8(&s, &b), IKETCP_OK);
	assert_int_equal(b, 0x07);
	assert_int_equal(iketcp_cur_left(&s), 0);
	/* the parent reads on after the sub-range */
	assert_int_equal(iketcp_cur_get_u8(&c, &b), IKETCP_OK);
	assert_int_equal(b, 0x08);
}

static void
test_sub_zero(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(0), s;

	assert_int_equal(iketcp_cur_sub(&c, 0, &s), IKETCP_OK);
	assert_int_equal(iketcp_cur_left(&s), 0);
	assert_cur(&c, bytes16, 16, 16);
}

static void
test_sub_short(void **state)
{
	(void)state;
	struct iketcp_cur c = cur_left(6);
	struct iketcp_cur s = {.base = bytes16, .len = 99, .off = 42};

	assert_int_equal(iketcp_cur_sub(&c, 7, &s), IKETCP_E_SHORT);
	assert_int_equal(iketcp_cur_sub(&c, SIZE_MAX, &s), IKETCP_E_SHORT);
	assert_cur(&c, bytes16, 16, 10);
	assert_cur(&s, bytes16, 99, 42);
}

/* A mixed parse of a Length-prefixed record, as the frame code does it. */
static void
test_mixed_sequence(void **state)
{
	(void)state;
	static const uint8_t rec[] = {0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef};
	struct iketcp_cur c, body = {0};
	uint16_t len;
	uint32_t marker, tail;
	uint8_t b = 0x33;

	iketcp_cur_init(&c, rec, sizeof(rec));
	assert_int_equal(iketcp_cur_get_u16(&c, &len), IKETCP_OK);
	assert_int_equal(len, 10);
	assert_int_equal(iketcp_cur_sub(&c, len - 2u, &body), IKETCP_OK);
	assert_int_equal(iketcp_cur_left(&c), 0);
	assert_int_equal(iketcp_cur_get_u32(&body, &marker), IKETCP_OK);
	assert_int_equal(marker, 0);
	assert_int_equal(iketcp_cur_get_u32(&body, &tail), IKETCP_OK);
	assert_int_equal(tail, 0xdeadbeefu);
	assert_int_equal(iketcp_cur_get_u8(&body, &b), IKETCP_E_SHORT);
	assert_int_equal(b, 0x33);
}

/* ---- write cursor --------------------------------------------------------------- */

static void
test_wcur_init(void **state)
{
	(void)state;
	uint8_t buf[4];
	struct iketcp_wcur w;

	iketcp_wcur_init(&w, buf, sizeof(buf));
	assert_ptr_equal(w.base, buf);
	assert_int_equal(w.cap, 4);
	assert_int_equal(w.off, 0);
	assert_int_equal(iketcp_wcur_room(&w), 4);

	iketcp_wcur_init(&w, NULL, 10); /* NULL means no room at all */
	assert_int_equal(w.cap, 0);
	assert_int_equal(iketcp_wcur_room(&w), 0);
	assert_int_equal(iketcp_wcur_put_u16(&w, 1), IKETCP_E_SHORT);
	assert_int_equal(iketcp_wcur_put_bytes(&w, buf, 0), IKETCP_OK);
	assert_int_equal(w.off, 0);
}

static void
test_wcur_put_big_endian(void **state)
{
	(void)state;
	uint8_t buf[12];
	struct iketcp_wcur w;

	memset(buf, 0xaa, sizeof(buf));
	iketcp_wcur_init(&w, buf, sizeof(buf));
	assert_int_equal(iketcp_wcur_put_u16(&w, 0x8102), IKETCP_OK);
	assert_int_equal(iketcp_wcur_put_u32(&w, 0xf9fafbfcu), IKETCP_OK);
	assert_int_equal(iketcp_wcur_put_bytes(&w, "\x01\x02\x03", 3), IKETCP_OK);
	assert_int_equal(iketcp_wcur_put_bytes(&w, NULL, 0), IKETCP_OK);
	assert_int_equal(w.off, 9);
	assert_int_equal(iketcp_wcur_room(&w), 3);
	assert_hex_equal(buf, sizeof(buf), "81 02 f9 fa fb fc 01 02 03 aa aa aa");
}

static void
test_wcur_put_fill_exactly(void **state)
{
	(void)state;
	uint8_t buf[6];
	struct iketcp_wcur w;

	iketcp_wcur_init(&w, buf, sizeof(buf));
	assert_int_equal(iketcp_wcur_put_u32(&w, 0x00000001u), IKETCP_OK);
	assert_int_equal(iketcp_wcur_put_u16(&w, 0xffff), IKETCP_OK);
	assert_int_equal(iketcp_wcur_room(&w), 0);
	assert_hex_equal(buf, 6, "00 00 00 01 ff ff");
}

static void
test_wcur_put_short(void **state)
{
	(void)state;
	uint8_t buf[8];
	struct iketcp_wcur w;

	memset(buf, 0xaa, sizeof(buf));
	iketcp_wcur_init(&w, buf, 5); /* 3 bytes of room after the u16 */
	assert_int_equal(iketcp_wcur_put_u16(&w, 0x0102), IKETCP_OK);
	/* u32 needs 4: nothing, not even a partial value, may be written */
	assert_int_equal(iketcp_wcur_put_u32(&w, 0x11223344u), IKETCP_E_SHORT);
	assert_int_equal(iketcp_wcur_put_bytes(&w, "wxyz", 4), IKETCP_E_SHORT);
	assert_int_equal(w.off, 2);
	assert_int_equal(iketcp_wcur_put_bytes(&w, "xyz", 3), IKETCP_OK);
	assert_int_equal(iketcp_wcur_put_u16(&w, 0x0304), IKETCP_E_SHORT);
	assert_int_equal(iketcp_wcur_put_bytes(&w, "q", 1), IKETCP_E_SHORT);
	assert_int_equal(w.off, 5);
	assert_hex_equal(buf, sizeof(buf), "01 02 78 79 7a aa aa aa");
}

static void
test_wcur_reserve_fill(void **state)
{
	(void)state;
	uint8_t buf[10];
	struct iketcp_wcur w;
	long at0, at1;

	memset(buf, 0xaa, sizeof(buf));
	iketcp_wcur_init(&w, buf, sizeof(buf));
	at0 = iketcp_wcur_reserve_u16(&w);
	assert_int_equal(at0, 0);
	assert_int_equal(iketcp_wcur_put_bytes(&w, "abc", 3), IKETCP_OK);
	at1 = iketcp_wcur_reserve_u16(&w);
	assert_int_equal(at1, 5);
	assert_int_equal(iketcp_wcur_put_u16(&w, 0xbeef), IKETCP_OK);
	/* the reserved fields read as zero until filled */
	assert_hex_equal(buf, sizeof(buf), "00 00 61 62 63 00 00 be ef aa");
	assert_int_equal(iketcp_wcur_fill_u16(&w, at1, (uint16_t)(w.off - (size_t)at1)), IKETCP_OK);
	assert_int_equal(iketcp_wcur_fill_u16(&w, at0, (uint16_t)w.off), IKETCP_OK);
	assert_int_equal(w.off, 9); /* filling does not move the cursor */
	assert_hex_equal(buf, sizeof(buf), "00 09 61 62 63 00 04 be ef aa");
	/* the very last written pair is fillable */
	assert_int_equal(iketcp_wcur_fill_u16(&w, 7, 0x8001), IKETCP_OK);
	assert_hex_equal(buf, sizeof(buf), "00 09 61 62 63 00 04 80 01 aa");
}

static void
test_wcur_reserve_short(void **state)
{
	(void)state;
	uint8_t buf[3] = {0xaa, 0xaa, 0xaa};
	struct iketcp_wcur w;

	iketcp_wcur_init(&w, buf, sizeof(buf));
	assert_int_equal(iketcp_wcur_put_bytes(&w, "z", 1), IKETCP_OK);
	assert_int_equal(iketcp_wcur_reserve_u16(&w), 1);
	assert_int_equal(iketcp_wcur_reserve_u16(&w), IKETCP_E_SHORT);
	assert_int_equal(w.off, 3);

	iketcp_wcur_init(&w, buf, 1);
	assert_int_equal(iketcp_wcur_reserve_u16(&w), IKETCP_E_SHORT);
	assert_int_equal(w.off, 0);
	assert_hex_equal(buf, 3, "7a 00 00");
}

static void
test_wcur_fill_bad_offset(void **state)
{
	(void)state;
	uint8_t buf[8];
	struct iketcp_wcur w;

	memset(buf, 0xaa, sizeof(buf));
	iketcp_wcur_init(&w, buf, sizeof(buf));
	assert_int_equal(iketcp_wcur_put_bytes(&w, "\x01\x02\x03", 3), IKETCP_OK);
	assert_int_equal(iketcp_wcur_fill_u16(&w, -1, 0xffff), IKETCP_E_INVAL);
	assert_int_equal(iketcp_wcur_fill_u16(&w, IKETCP_E_SHORT, 0xffff), IKETCP_E_INVAL);
	/* at + 2 must be inside the written part: 2 would touch byte 3 */
	assert_int_equal(iketcp_wcur_fill_u16(&w, 2, 0xffff), IKETCP_E_INVAL);
	assert_int_equal(iketcp_wcur_fill_u16(&w, 3, 0xffff), IKETCP_E_INVAL);
	assert_int_equal(iketcp_wcur_fill_u16(&w, 7, 0xffff), IKETCP_E_INVAL);
	assert_int_equal(iketcp_wcur_fill_u16(&w, 100000, 0xffff), IKETCP_E_INVAL);
	assert_int_equal(w.off, 3);
	assert_hex_equal(buf, sizeof(buf), "01 02 03 aa aa aa aa aa");
	assert_int_equal(iketcp_wcur_fill_u16(&w, 1, 0xffff), IKETCP_OK);
	assert_hex_equal(buf, sizeof(buf), "01 ff ff aa aa aa aa aa");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_init_null_is_empty),
		cmocka_unit_test(test_get_u8),
		cmocka_unit_test(test_get_u8_short),
		cmocka_unit_test(test_get_u16_big_endian),
		cmocka_unit_test(test_get_u16_short),
		cmocka_unit_test(test_get_u32_big_endian),
		cmocka_unit_test(test_get_u32_short),
		cmocka_unit_test(test_get_u64_big_endian),
		cmocka_unit_test(test_get_u64_short),
		cmocka_unit_test(test_get_bytes),
		cmocka_unit_test(test_get_bytes_short),
		cmocka_unit_test(test_take),
		cmocka_unit_test(test_take_short),
		cmocka_unit_test(test_skip),
		cmocka_unit_test(test_skip_short),
		cmocka_unit_test(test_peek_u16),
		cmocka_unit_test(test_peek_u16_short),
		cmocka_unit_test(test_sub),
		cmocka_unit_test(test_sub_zero),
		cmocka_unit_test(test_sub_short),
		cmocka_unit_test(test_mixed_sequence),
		cmocka_unit_test(test_wcur_init),
		cmocka_unit_test(test_wcur_put_big_endian),
		cmocka_unit_test(test_wcur_put_fill_exactly),
		cmocka_unit_test(test_wcur_put_short),
		cmocka_unit_test(test_wcur_reserve_fill),
		cmocka_unit_test(test_wcur_reserve_short),
		cmocka_unit_test(test_wcur_fill_bad_offset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
