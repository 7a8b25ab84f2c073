/*
 * Unit tests for lib/ike.c: the read-only IKEv2 header view (RFC 7296
 * §3.1, RFC 7296 §3.1).
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "iketcp/ike.h"

/* The header of the byte example of docs/conformance.md: IKE_SA_INIT request, 296 octets. */
static const char hdr_example[] = "01 02 03 04 05 06 07 08  00 00 00 00 00 00 00 00"
				  "21 20 22 08 00 00 00 00 00 00 01 28";

/* The IKE_AUTH response header from tests/data/libreswan-r2i.hex. */
static const char hdr_libreswan_auth_r[] = "65 98 f2 a7 20 53 9f d5  d5 0a 57 02 c7 a9 f0 2b"
					   "2e 20 23 20 00 00 00 01 00 00 00 e1";

static struct iketcp_ike_hdr
parse_hex_ok(const char *hex)
{
	size_t len;
	uint8_t *msg = tu_hex_alloc(hex, &len);
	struct iketcp_ike_hdr h;

	memset(&h, 0xa5, sizeof(h));
	assert_int_equal(iketcp_ike_parse(msg, len, &h), IKETCP_OK);
	free(msg);
	return h;
}

static void
test_parse_example(void **state)
{
	(void)state;
	struct iketcp_ike_hdr h = parse_hex_ok(hdr_example);

	assert_true(h.spi_i == 0x0102030405060708ull);
	assert_true(h.spi_r == 0);
	assert_int_equal(h.next_payload, 33);
	assert_int_equal(h.version, 0x20);
	assert_int_equal(h.exchange, IKETCP_IKE_SA_INIT);
	assert_int_equal(h.flags, IKETCP_IKE_FLAG_INITIATOR);
	assert_int_equal(h.msg_id, 0);
	assert_int_equal(h.length, 296);
	assert_int_equal(iketcp_ike_major(&h), 2);
	assert_false(iketcp_ike_is_response(&h));
	assert_true(iketcp_ike_from_initiator(&h));
}

static void
test_parse_libreswan_auth_response(void **state)
{
	(void)state;
	struct iketcp_ike_hdr h = parse_hex_ok(hdr_libreswan_auth_r);

	assert_true(h.spi_i == 0x6598f2a720539fd5ull);
	assert_true(h.spi_r == 0xd50a5702c7a9f02bull);
	assert_int_equal(h.next_payload, 46); /* SK */
	assert_int_equal(h.exchange, IKETCP_IKE_AUTH);
	assert_int_equal(h.flags, IKETCP_IKE_FLAG_RESPONSE);
	assert_int_equal(h.msg_id, 1);
	assert_int_equal(h.length, 225);
	assert_true(iketcp_ike_is_response(&h));
	assert_false(iketcp_ike_from_initiator(&h));
}

static void
test_parse_big_endian_high_bits(void **state)
{
	(void)state;
	struct iketcp_ike_hdr h = parse_hex_ok("ff ee dd cc bb aa 99 88  87 76 65 54 43 32 21 10"
					       "fe f0 fd ff 80 00 00 01 ff ff ff fe");

	assert_true(h.spi_i == 0xffeeddccbbaa9988ull);
	assert_true(h.spi_r == 0x8776655443322110ull);
	assert_int_equal(h.next_payload, 0xfe);
	assert_int_equal(h.version, 0xf0);
	assert_int_equal(h.exchange, 0xfd);
	assert_int_equal(h.flags, 0xff);
	assert_int_equal(h.msg_id, 0x80000001u);
	assert_int_equal(h.length, 0xfffffffeu);
}

/* Only the header is read; payloads after it and the Length value are not checked. */
static void
test_parse_ignores_rest(void **state)
{
	(void)state;
	uint8_t msg[64];
	struct iketcp_ike_hdr h;

	tu_ike_msg(msg, sizeof(msg), IKETCP_IKE_INFORMATIONAL, 7);
	tu_put32(msg + 24, 1000); /* lies about its length: still parsed faithfully */
	assert_int_equal(iketcp_ike_parse(msg, 28, &h), IKETCP_OK);
	assert_int_equal(h.length, 1000);
	assert_int_equal(h.msg_id, 7);
	assert_int_equal(h.exchange, IKETCP_IKE_INFORMATIONAL);
	assert_int_equal(iketcp_ike_parse(msg, sizeof(msg), &h), IKETCP_OK);
	assert_int_equal(h.length, 1000);
}

static void
test_parse_no_validation(void **state)
{
	(void)state;
	uint8_t msg[28] = {0}; /* all zero: SPIs 0, version 0, exchange 0 */
	struct iketcp_ike_hdr h;

	assert_int_equal(iketcp_ike_parse(msg, sizeof(msg), &h), IKETCP_OK);
	assert_true(h.spi_i == 0);
	assert_int_equal(h.version, 0);
	assert_int_equal(iketcp_ike_major(&h), 0);
	assert_int_equal(h.length, 0);
}

static void
test_parse_short(void **state)
{
	(void)state;
	uint8_t msg[28];
	struct iketcp_ike_hdr h, before;

	tu_ike_msg(msg, sizeof(msg), IKETCP_IKE_SA_INIT, 0);
	memset(&h, 0x5a, sizeof(h));
	before = h;
	for (size_t len = 0; len < 28; len++)
		assert_int_equal(iketcp_ike_parse(msg, len, &h), IKETCP_E_SHORT);
	assert_int_equal(iketcp_ike_parse(NULL, 0, &h), IKETCP_E_SHORT);
	assert_int_equal(iketcp_ike_parse(NULL, 28, &h), IKETCP_E_SHORT);
	assert_memory_equal(&h, &before, sizeof(h));
}

static void
test_exchange_names(void **state)
{
	(void)state;
	assert_string_equal(iketcp_ike_exchange_name(34), "IKE_SA_INIT");
	assert_string_equal(iketcp_ike_exchange_name(35), "IKE_AUTH");
	assert_string_equal(iketcp_ike_exchange_name(36), "CREATE_CHILD_SA");
	assert_string_equal(iketcp_ike_exchange_name(37), "INFORMATIONAL");
	assert_string_equal(iketcp_ike_exchange_name(38), "IKE_SESSION_RESUME");
	assert_int_equal(IKETCP_IKE_SA_INIT, 34);
	assert_int_equal(IKETCP_IKE_SESSION_RESUME, 38);
}

static void
test_exchange_names_unknown(void **state)
{
	(void)state;
	static const uint8_t unknown[] = {0, 1, 4, 5, 33, 39, 43, 240, 255};

	for (size_t i = 0; i < TU_ARRAY_LEN(unknown); i++)
		assert_string_equal(iketcp_ike_exchange_name(unknown[i]), "UNKNOWN");
}

static void
test_major_version(void **state)
{
	(void)state;
	struct iketcp_ike_hdr h = {0};

	h.version = 0x20;
	assert_int_equal(iketcp_ike_major(&h), 2);
	h.version = 0x2f; /* minor version does not matter */
	assert_int_equal(iketcp_ike_major(&h), 2);
	h.version = 0x10; /* IKEv1 */
	assert_int_equal(iketcp_ike_major(&h), 1);
	h.version = 0xf0;
	assert_int_equal(iketcp_ike_major(&h), 15);
}

static void
test_flag_helpers(void **state)
{
	(void)state;
	static const struct {
		uint8_t flags;
		int response, initiator;
	} rows[] = {
		{0x00, 0, 0}, {0x08, 0, 1}, {0x20, 1, 0},
		{0x28, 1, 1}, {0x10, 0, 0}, /* the Version flag alone */
		{0xd7, 0, 0},               /* every other bit set */
		{0xff, 1, 1},
	};
	struct iketcp_ike_hdr h = {0};

	assert_int_equal(IKETCP_IKE_FLAG_INITIATOR, 0x08);
	assert_int_equal(IKETCP_IKE_FLAG_VERSION, 0x10);
	assert_int_equal(IKETCP_IKE_FLAG_RESPONSE, 0x20);
	for (size_t i = 0; i < TU_ARRAY_LEN(rows); i++) {
		h.flags = rows[i].flags;
		assert_int_equal(iketcp_ike_is_response(&h), rows[i].response);
		assert_int_equal(iketcp_ike_from_initiator(&h), rows[i].initiator);
	}
}

/* ---- payload chain (iketcp_ike_payloads) ---------------------------------- */

/* Builds header + payloads: each entry is (type, body length); body bytes
 * are 0x5a except a Notify, whose body starts 00 00 then the type 0x4004. */
static size_t
build_chain(uint8_t *out, const uint8_t *types, const uint16_t *blen, unsigned n)
{
	size_t off = 28;
	memset(out, 0, 28);
	out[16] = n ? types[0] : 0;
	out[17] = 0x20;
	out[18] = IKETCP_IKE_SA_INIT;
	for (unsigned i = 0; i < n; i++) {
		uint16_t plen = (uint16_t)(4 + blen[i]);
		out[off] = i + 1 < n ? types[i + 1] : 0;
		out[off + 1] = 0;
		out[off + 2] = (uint8_t)(plen >> 8);
		out[off + 3] = (uint8_t)plen;
		memset(out + off + 4, 0x5a, blen[i]);
		if (types[i] == IKETCP_IKE_PL_NOTIFY && blen[i] >= 4) {
			out[off + 4] = 0;
			out[off + 5] = 0;
			out[off + 6] = 0x40;
			out[off + 7] = 0x04;
		}
		off += plen;
	}
	out[24] = (uint8_t)(off >> 24);
	out[25] = (uint8_t)(off >> 16);
	out[26] = (uint8_t)(off >> 8);
	out[27] = (uint8_t)off;
	return off;
}

static void
test_payloads_chain(void **state)
{
	(void)state;
	uint8_t m[512];
	const uint8_t t[] = {IKETCP_IKE_PL_SA, IKETCP_IKE_PL_KE, IKETCP_IKE_PL_NONCE,
			     IKETCP_IKE_PL_NOTIFY, IKETCP_IKE_PL_NOTIFY};
	const uint16_t b[] = {40, 36, 32, 24, 4};
	size_t len = build_chain(m, t, b, 5);
	struct iketcp_ike_payloads pl;

	assert_int_equal(iketcp_ike_payloads(m, len, &pl), IKETCP_OK);
	assert_int_equal(pl.n, 5);
	assert_memory_equal(pl.types, t, 5);
	assert_true(pl.has_notify);
	assert_int_equal(pl.notify_type, 0x4004); /* NAT_DETECTION_SOURCE_IP */

	/* no payloads at all */
	len = build_chain(m, t, b, 0);
	assert_int_equal(iketcp_ike_payloads(m, len, &pl), IKETCP_OK);
	assert_int_equal(pl.n, 0);
	assert_false(pl.has_notify);
}

static void
test_payloads_truncated_and_bad(void **state)
{
	(void)state;
	uint8_t m[512];
	const uint8_t t[] = {IKETCP_IKE_PL_SA, IKETCP_IKE_PL_NONCE};
	const uint16_t b[] = {40, 32};
	size_t len = build_chain(m, t, b, 2);
	struct iketcp_ike_payloads pl;

	/* every cut short of the end fails, and never reads past the cut */
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *tight = malloc(cut ? cut : 1);
		assert_non_null(tight);
		memcpy(tight, m, cut);
		assert_int_equal(iketcp_ike_payloads(tight, cut, &pl), IKETCP_E_SHORT);
		free(tight);
	}
	/* a payload Length below its own header */
	m[28 + 3] = 3;
	m[28 + 2] = 0;
	assert_int_equal(iketcp_ike_payloads(m, len, &pl), IKETCP_E_INVAL);
	/* a Notify too short for its type field */
	const uint8_t tn[] = {IKETCP_IKE_PL_NOTIFY};
	const uint16_t bn[] = {2};
	len = build_chain(m, tn, bn, 1);
	assert_int_equal(iketcp_ike_payloads(m, len, &pl), IKETCP_E_INVAL);
}

static void
test_payloads_stop_at_sk_and_max(void **state)
{
	(void)state;
	uint8_t m[1024];
	const uint8_t t[] = {IKETCP_IKE_PL_SK};
	const uint16_t b[] = {64};
	size_t len = build_chain(m, t, b, 1);
	struct iketcp_ike_payloads pl;

	/* the ciphertext's first byte would be read as a next payload: it is not */
	m[28] = IKETCP_IKE_PL_SA;
	assert_int_equal(iketcp_ike_payloads(m, len, &pl), IKETCP_OK);
	assert_int_equal(pl.n, 1);
	assert_int_equal(pl.types[0], IKETCP_IKE_PL_SK);

	uint8_t many[20];
	uint16_t mb[20];
	for (int i = 0; i < 20; i++) {
		many[i] = IKETCP_IKE_PL_NONCE;
		mb[i] = 4;
	}
	len = build_chain(m, many, mb, 20);
	assert_int_equal(iketcp_ike_payloads(m, len, &pl), IKETCP_OK);
	assert_int_equal(pl.n, IKETCP_IKE_PAYLOADS_MAX);
}

/* Sets the type of the notify payload at offset off of a built chain. */
static void
set_notify_type(uint8_t *m, size_t off, uint16_t type)
{
	m[off + 6] = (uint8_t)(type >> 8);
	m[off + 7] = (uint8_t)type;
}

/* R39: the gateway finds N(COOKIE) in a responder's IKE_SA_INIT answer,
 * wherever it is among the clear payloads, and only there. */
static void
test_has_notify_cookie(void **state)
{
	(void)state;
	uint8_t m[512];
	struct iketcp_ike_payloads pl;

	/* the cookie request: N(COOKIE) alone */
	const uint8_t t1[] = {IKETCP_IKE_PL_NOTIFY};
	const uint16_t b1[] = {4 + 32};
	size_t len = build_chain(m, t1, b1, 1);
	set_notify_type(m, 28, IKETCP_IKE_N_COOKIE);
	assert_int_equal(iketcp_ike_has_notify(m, len, IKETCP_IKE_N_COOKIE), 1);
	assert_int_equal(iketcp_ike_has_notify(m, len, IKETCP_IKE_N_INVALID_MAJOR_VERSION), 0);
	/* the cookie as the last of several notifies (a puzzle, RFC 8019), past
	 * the first one iketcp_ike_payloads() reports */
	const uint8_t t2[] = {IKETCP_IKE_PL_NOTIFY, IKETCP_IKE_PL_NONCE, IKETCP_IKE_PL_NOTIFY};
	const uint16_t b2[] = {4, 16, 4 + 8};
	len = build_chain(m, t2, b2, 3);
	set_notify_type(m, 28 + 8 + 20, IKETCP_IKE_N_COOKIE);
	assert_int_equal(iketcp_ike_payloads(m, len, &pl), IKETCP_OK);
	assert_int_equal(pl.notify_type, 0x4004);
	assert_int_equal(iketcp_ike_has_notify(m, len, IKETCP_IKE_N_COOKIE), 1);
	/* truncated before the cookie: not found, and said so */
	assert_int_equal(iketcp_ike_has_notify(m, len - 1, IKETCP_IKE_N_COOKIE), IKETCP_E_SHORT);
	assert_int_equal(iketcp_ike_has_notify(m, 27, IKETCP_IKE_N_COOKIE), IKETCP_E_SHORT);
	/* no payloads at all */
	len = build_chain(m, t1, b1, 0);
	assert_int_equal(iketcp_ike_has_notify(m, len, IKETCP_IKE_N_COOKIE), 0);
	/* a notify too short for its type, and a payload Length below 4 */
	const uint16_t b3[] = {2};
	len = build_chain(m, t1, b3, 1);
	assert_int_equal(iketcp_ike_has_notify(m, len, IKETCP_IKE_N_COOKIE), IKETCP_E_INVAL);
	len = build_chain(m, t1, b1, 1);
	m[28 + 2] = 0;
	m[28 + 3] = 3;
	assert_int_equal(iketcp_ike_has_notify(m, len, IKETCP_IKE_N_COOKIE), IKETCP_E_INVAL);
}

/* Ciphertext after SK or SKF is never read as payloads. */
static void
test_has_notify_stops_at_sk_and_skf(void **state)
{
	(void)state;
	uint8_t m[256];
	const uint8_t sk[] = {IKETCP_IKE_PL_SK}, skf[] = {IKETCP_IKE_PL_SKF};
	const uint16_t b[] = {64};

	for (int i = 0; i < 2; i++) {
		size_t len = build_chain(m, i ? skf : sk, b, 1);
		/* ciphertext that would read as N(COOKIE) if walked */
		m[28] = IKETCP_IKE_PL_NOTIFY;
		m[32] = IKETCP_IKE_PL_NOTIFY;
		m[33] = 0;
		m[34] = 0;
		m[35] = 12;
		m[36] = 0;
		m[37] = 0;
		m[38] = 0x40;
		m[39] = 0x06;
		assert_int_equal(iketcp_ike_has_notify(m, len, IKETCP_IKE_N_COOKIE), 0);
		/* the same bytes as a clear chain are found: the check above bites */
		m[16] = IKETCP_IKE_PL_NONCE;
		m[28] = IKETCP_IKE_PL_NOTIFY;
		m[30] = 0;
		m[31] = 4;
		assert_int_equal(iketcp_ike_has_notify(m, len, IKETCP_IKE_N_COOKIE), 1);
	}
}

/* The IKE_SA_INIT request in the libreswan capture: SA KE Ni and notifies. */
static void
test_payloads_libreswan_sa_init(void **state)
{
	(void)state;
	size_t len;
	uint8_t *s = tu_load_hex("libreswan-i2r.hex", &len, NULL, 0, NULL);
	struct iketcp_ike_payloads pl;

	/* "IKETCP", Length, non-ESP marker, then the message */
	assert_true(len > 12 + 28);
	size_t flen = (size_t)s[6] << 8 | s[7];
	const uint8_t *msg = s + 12;
	size_t mlen = flen - 6;
	struct iketcp_ike_hdr h;
	assert_int_equal(iketcp_ike_parse(msg, mlen, &h), IKETCP_OK);
	assert_int_equal(h.exchange, IKETCP_IKE_SA_INIT);
	assert_int_equal(iketcp_ike_payloads(msg, mlen, &pl), IKETCP_OK);
	assert_true(pl.n >= 3);
	assert_int_equal(pl.types[0], IKETCP_IKE_PL_SA);
	assert_int_equal(pl.types[1], IKETCP_IKE_PL_KE);
	assert_int_equal(pl.types[2], IKETCP_IKE_PL_NONCE);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_example),
		cmocka_unit_test(test_parse_libreswan_auth_response),
		cmocka_unit_test(test_parse_big_endian_high_bits),
		cmocka_unit_test(test_parse_ignores_rest),
		cmocka_unit_test(test_parse_no_validation),
		cmocka_unit_test(test_parse_short),
		cmocka_unit_test(test_exchange_names),
		cmocka_unit_test(test_exchange_names_unknown),
		cmocka_unit_test(test_major_version),
		cmocka_unit_test(test_flag_helpers),
		cmocka_unit_test(test_payloads_chain),
		cmocka_unit_test(test_payloads_truncated_and_bad),
		cmocka_unit_test(test_payloads_stop_at_sk_and_max),
		cmocka_unit_test(test_payloads_libreswan_sa_init),
		cmocka_unit_test(test_has_notify_cookie),
		cmocka_unit_test(test_has_notify_stops_at_sk_and_skf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
