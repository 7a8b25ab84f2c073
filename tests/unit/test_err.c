/*
 * Unit tests for lib/err.c: every code has a distinct symbolic name, a
 * non-empty text and the category its comment in err.h gives it; unknown
 * codes are reported as such.
 */
#include "testutil.h"

#include <limits.h>
#include <string.h>

#include "iketcp/err.h"

static const struct {
	int code;
	const char *name;
	enum iketcp_err_category cat;
} codes[] = {
	{IKETCP_OK, "IKETCP_OK", IKETCP_CAT_OK},
	{IKETCP_E_AGAIN, "IKETCP_E_AGAIN", IKETCP_CAT_AGAIN},
	{IKETCP_E_SHORT, "IKETCP_E_SHORT", IKETCP_CAT_AGAIN},
	{IKETCP_E_BADPREFIX, "IKETCP_E_BADPREFIX", IKETCP_CAT_PEER},
	{IKETCP_E_BADLEN, "IKETCP_E_BADLEN", IKETCP_CAT_PEER},
	{IKETCP_E_TOOBIG, "IKETCP_E_TOOBIG", IKETCP_CAT_PEER},
	{IKETCP_E_REPREFIX, "IKETCP_E_REPREFIX", IKETCP_CAT_PEER},
	{IKETCP_E_MSGSIZE, "IKETCP_E_MSGSIZE", IKETCP_CAT_REFUSED},
	{IKETCP_E_EMPTY, "IKETCP_E_EMPTY", IKETCP_CAT_REFUSED},
	{IKETCP_E_SPI0, "IKETCP_E_SPI0", IKETCP_CAT_REFUSED},
	{IKETCP_E_NOBUFS, "IKETCP_E_NOBUFS", IKETCP_CAT_REFUSED},
	{IKETCP_E_KEEPALIVE, "IKETCP_E_KEEPALIVE", IKETCP_CAT_REFUSED},
	{IKETCP_E_INVAL, "IKETCP_E_INVAL", IKETCP_CAT_USAGE},
	{IKETCP_E_STATE, "IKETCP_E_STATE", IKETCP_CAT_USAGE},
	{IKETCP_E_NOMEM, "IKETCP_E_NOMEM", IKETCP_CAT_USAGE},
	{IKETCP_E_IO, "IKETCP_E_IO", IKETCP_CAT_IO},
	{IKETCP_E_TLS, "IKETCP_E_TLS", IKETCP_CAT_PEER},
	{IKETCP_E_TLS_VERIFY, "IKETCP_E_TLS_VERIFY", IKETCP_CAT_PEER},
	{IKETCP_E_TLS_PIN, "IKETCP_E_TLS_PIN", IKETCP_CAT_PEER},
	{IKETCP_E_PROXY_STATUS, "IKETCP_E_PROXY_STATUS", IKETCP_CAT_PEER},
	{IKETCP_E_PROXY_SYNTAX, "IKETCP_E_PROXY_SYNTAX", IKETCP_CAT_PEER},
	{IKETCP_E_PROXY_TOOBIG, "IKETCP_E_PROXY_TOOBIG", IKETCP_CAT_PEER},
	{IKETCP_E_TLS_CONFIG, "IKETCP_E_TLS_CONFIG", IKETCP_CAT_USAGE},
	{IKETCP_E_PPHDR, "IKETCP_E_PPHDR", IKETCP_CAT_PEER},
};

static int
known(int code)
{
	for (size_t i = 0; i < TU_ARRAY_LEN(codes); i++)
		if (codes[i].code == code)
			return 1;
	return 0;
}

static void
test_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < TU_ARRAY_LEN(codes); i++)
		assert_string_equal(iketcp_errname(codes[i].code), codes[i].name);
}

static void
test_names_distinct(void **state)
{
	(void)state;
	for (size_t i = 0; i < TU_ARRAY_LEN(codes); i++)
		for (size_t j = i + 1; j < TU_ARRAY_LEN(codes); j++) {
			assert_int_not_equal(codes[i].code, codes[j].code);
			assert_string_not_equal(iketcp_errname(codes[i].code),
						iketcp_errname(codes[j].code));
		}
}

static void
test_texts(void **state)
{
	(void)state;
	for (size_t i = 0; i < TU_ARRAY_LEN(codes); i++) {
		const char *t = iketcp_strerror(codes[i].code);
		assert_non_null(t);
		assert_true(strlen(t) > 0);
		assert_string_not_equal(t, "unknown error");
		/* a text is not just the symbol again */
		assert_string_not_equal(t, codes[i].name);
		for (size_t j = i + 1; j < TU_ARRAY_LEN(codes); j++)
			assert_string_not_equal(t, iketcp_strerror(codes[j].code));
	}
	assert_string_equal(iketcp_strerror(IKETCP_OK), "success");
}

static void
test_categories(void **state)
{
	(void)state;
	for (size_t i = 0; i < TU_ARRAY_LEN(codes); i++)
		if (iketcp_err_category(codes[i].code) != codes[i].cat)
			fail_msg("%s: category %d, want %d", codes[i].name,
				 (int)iketcp_err_category(codes[i].code), (int)codes[i].cat);
}

/* Positive values are successes (e.g. "1 frame", a byte count). */
static void
test_positive_is_success(void **state)
{
	(void)state;
	static const int pos[] = {1, 6, 65535, INT_MAX};

	for (size_t i = 0; i < TU_ARRAY_LEN(pos); i++) {
		assert_string_equal(iketcp_errname(pos[i]), "IKETCP_OK");
		assert_string_equal(iketcp_strerror(pos[i]), "success");
		assert_int_equal(iketcp_err_category(pos[i]), IKETCP_CAT_OK);
	}
}

static void
test_unknown_codes(void **state)
{
	(void)state;
	static const int unk[] = {-3, -9, -14, -19, -25, -29, -33, -39, -41, -1000, INT_MIN};

	for (size_t i = 0; i < TU_ARRAY_LEN(unk); i++) {
		assert_string_equal(iketcp_errname(unk[i]), "IKETCP_E_UNKNOWN");
		assert_string_equal(iketcp_strerror(unk[i]), "unknown error");
		assert_int_equal(iketcp_err_category(unk[i]), IKETCP_CAT_UNKNOWN);
	}
}

/* A code added to err.c without a row in this test fails here. */
static void
test_table_complete(void **state)
{
	(void)state;
	for (int c = -200; c <= 0; c++) {
		int named = strcmp(iketcp_errname(c), "IKETCP_E_UNKNOWN") != 0;
		if (named != known(c))
			fail_msg("code %d (%s) and this test's table disagree", c,
				 iketcp_errname(c));
		if (!named)
			assert_int_equal(iketcp_err_category(c), IKETCP_CAT_UNKNOWN);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_names_distinct),
		cmocka_unit_test(test_texts),
		cmocka_unit_test(test_categories),
		cmocka_unit_test(test_positive_is_success),
		cmocka_unit_test(test_unknown_codes),
		cmocka_unit_test(test_table_complete),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
