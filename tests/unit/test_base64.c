/*
 * Unit tests for lib/base64.c (over OpenSSL's EVP_EncodeBlock and
 * EVP_DecodeBlock): the RFC 4648 §10 test vectors both ways, and the
 * strictness that EVP_DecodeBlock alone lacks (blanks, misplaced '=',
 * non-zero padding bits); and iketcp_tls_pin_parse(), which the TLS
 * client context and iketcpd's tls-pin-sha256 key both use.
 */
#include "testutil.h"

#include <string.h>

#include "base64_internal.h"
#include "iketcp/tls.h"

static const struct {
	const char *raw, *enc;
} rfc4648[] = {
	{"", ""},
	{"f", "Zg=="},
	{"fo", "Zm8="},
	{"foo", "Zm9v"},
	{"foob", "Zm9vYg=="},
	{"fooba", "Zm9vYmE="},
	{"foobar", "Zm9vYmFy"},
};

static void
test_rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < TU_ARRAY_LEN(rfc4648); i++) {
		const char *raw = rfc4648[i].raw, *enc = rfc4648[i].enc;
		char out[16];
		uint8_t dec[16];

		assert_int_equal(IKETCP_B64_LEN(strlen(raw)), strlen(enc));
		assert_int_equal(iketcp__b64_encode(out, (const uint8_t *)raw, strlen(raw)),
				 strlen(enc));
		assert_string_equal(out, enc);
		assert_int_equal(iketcp__b64_decode(dec, sizeof(dec), enc, strlen(enc)),
				 (long)strlen(raw));
		assert_memory_equal(dec, raw, strlen(raw));
	}
}

static void
test_decode_strict(void **state)
{
	static const char *const bad[] = {
		"Zg=",      /* not a multiple of 4 */
		"Zg",       /* unpadded */
		" Zm9v",    /* EVP_DecodeBlock skips leading blanks */
		"Zm9v ",    /* ... and trailing ones */
		"Zm9v\n",   /* ... and a line break */
		"Zm 9",     /* a blank inside */
		"Zh==",     /* padding bits set ("f" is Zg==) */
		"Zm9=",     /* padding bits set ("fo" is Zm8=) */
		"Zm=v",     /* '=' inside */
		"Zg==Zg==", /* '=' before the end */
		"====",     /* only padding */
		"A===",     /* three '=' */
		"Zm9-",     /* base64url alphabet */
		"Zm9_",
	};
	uint8_t dec[16];

	(void)state;
	for (size_t i = 0; i < TU_ARRAY_LEN(bad); i++)
		assert_int_equal(iketcp__b64_decode(dec, sizeof(dec), bad[i], strlen(bad[i])), -1);
	/* out must hold 3 bytes per 4 characters, padding included */
	assert_int_equal(iketcp__b64_decode(dec, 5, "Zm9vYg==", 8), -1);
	assert_int_equal(iketcp__b64_decode(dec, 6, "Zm9vYg==", 8), 4);
}

/* The 32 bytes 00 01 .. 1f, in the forms a pin may take. */
#define PIN_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define PIN_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static void
test_pin_parse(void **state)
{
	static const char *const good[] = {
		PIN_HEX,
		PIN_B64,
		("sha256//" PIN_B64),
		"00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:18:19:1A:"
		"1B:"
		"1C:1D:1E:1F",
	};
	static const char *const bad[] = {
		"",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",   /* 43: no padding */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=",  /* padding bits set */
		" AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", /* blank */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh==",  /* 31 bytes, 44 chars */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=AAAA",
		("sha256//" PIN_HEX "00"),                      /* 33 bytes */
		("0" PIN_HEX),                                  /* odd number of digits */
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-_", /* base64url */
	};
	uint8_t pin[IKETCP_TLS_PIN_LEN], want[IKETCP_TLS_PIN_LEN];

	(void)state;
	for (int i = 0; i < IKETCP_TLS_PIN_LEN; i++)
		want[i] = (uint8_t)i;
	for (size_t i = 0; i < TU_ARRAY_LEN(good); i++) {
		memset(pin, 0xee, sizeof(pin));
		assert_int_equal(iketcp_tls_pin_parse(good[i], pin), IKETCP_OK);
		assert_memory_equal(pin, want, sizeof(want));
	}
	for (size_t i = 0; i < TU_ARRAY_LEN(bad); i++)
		assert_int_equal(iketcp_tls_pin_parse(bad[i], pin), IKETCP_E_INVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_decode_strict),
		cmocka_unit_test(test_pin_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
