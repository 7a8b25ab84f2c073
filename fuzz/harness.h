/*
 * Helpers shared by the libFuzzer harnesses in this folder (not a target:
 * CMake builds only fuzz_*.c).
 *
 * Every check aborts through CHECK(), never assert(): a release-style
 * -DNDEBUG build must not silently drop the oracle. The reference decoders
 * below are written from RFC 9329 §3 and the frame kinds of docs/conformance.md with plain byte
 * arithmetic, on purpose independent of lib/ and of the cursor helpers, so that the harnesses
 * compare two implementations rather than one with itself.
 *
 * Everything is static inline so that a harness that does not use a helper
 * does not trip -Wunused-function under -Werror.
 */
#ifndef IKETCP_FUZZ_HARNESS_H
#define IKETCP_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iketcp/iketcp.h"

/* The libFuzzer entry point; declared here for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static inline uint16_t
ref_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] * 256u + p[1]);
}

static inline uint32_t
ref_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t
ref_be64(const uint8_t *p)
{
	return ((uint64_t)ref_be32(p) << 32) | ref_be32(p + 4);
}

/* Every code a library function returns has a name and a text. */
static inline void
check_rc_names(int rc)
{
	const char *name = iketcp_errname(rc);
	const char *text = iketcp_strerror(rc);

	CHECK(name != NULL && text != NULL);
	CHECK(strncmp(name, "IKETCP_", 7) == 0);
	CHECK(strcmp(name, "IKETCP_E_UNKNOWN") != 0);
	CHECK(iketcp_err_category(rc) != IKETCP_CAT_UNKNOWN);
}

/*
 * Checks a successful iketcp_frame_classify() of fr[0..n) against the
 * reference classification of the frame kinds (docs/conformance.md, "Wire format reference"), field
 * by field.
 */
static inline void
check_classified(const uint8_t *fr, size_t n, const struct iketcp_frame *f)
{
	enum iketcp_frame_kind kind;
	enum iketcp_runt_reason runt = IKETCP_RUNT_NONE;
	const uint8_t *msg = NULL;
	size_t msg_len = 0;
	uint32_t spi = 0;

	CHECK(n >= 2);
	CHECK(f->length == ref_be16(fr));
	CHECK(strcmp(iketcp_frame_kind_name(f->kind), "invalid") != 0);
	CHECK(strcmp(iketcp_runt_name(f->runt), "invalid") != 0);
	CHECK((f->kind == IKETCP_FRAME_RUNT) == (f->runt != IKETCP_RUNT_NONE));

	if (f->length < 2) {
		/* R7: Length 0/1 is fatal; only the 2-byte field exists. */
		CHECK(n == 2);
		CHECK(f->kind == IKETCP_FRAME_FATAL);
		CHECK(f->body == NULL && f->body_len == 0);
		CHECK(f->msg == NULL && f->msg_len == 0 && f->spi == 0);
		return;
	}
	CHECK(f->length == n);
	CHECK(f->body == fr + 2 && f->body_len == n - 2);

	const uint8_t *b = fr + 2;
	size_t bl = n - 2;
	if (bl == 0) {
		kind = IKETCP_FRAME_EMPTY;
	} else if (bl == 1 && b[0] == 0xFF) {
		kind = IKETCP_FRAME_KEEPALIVE;
	} else if (bl < 4) {
		kind = IKETCP_FRAME_RUNT;
		runt = IKETCP_RUNT_TINY;
	} else if (ref_be32(b) == 0) {
		const uint8_t *ike = b + 4;
		size_t ike_len = bl - 4;
		kind = IKETCP_FRAME_RUNT;
		if (ike_len < 28) {
			runt = IKETCP_RUNT_IKE_SHORT;
		} else if (ref_be32(ike + 24) != ike_len) {
			runt = IKETCP_RUNT_IKE_LENGTH;
		} else { /* any major version: the backend answers (RFC 7296 2.5) */
			kind = IKETCP_FRAME_IKE;
			msg = ike;
			msg_len = ike_len;
		}
	} else if (bl < 8) {
		kind = IKETCP_FRAME_RUNT;
		runt = IKETCP_RUNT_ESP_SHORT;
	} else {
		kind = IKETCP_FRAME_ESP;
		spi = ref_be32(b);
		msg = b;
		msg_len = bl;
	}
	CHECK(f->kind == kind);
	CHECK(f->runt == runt);
	CHECK(f->msg == msg && f->msg_len == msg_len);
	CHECK(f->spi == spi);

	if (kind == IKETCP_FRAME_IKE) {
		struct iketcp_ike_hdr h;
		CHECK(iketcp_ike_parse(f->msg, f->msg_len, &h) == IKETCP_OK);
		CHECK(h.length == f->msg_len);
		CHECK(f->msg == f->body + 4);
	}
	if (kind == IKETCP_FRAME_ESP)
		CHECK(f->spi != 0 && f->body_len >= 8);
	if (kind == IKETCP_FRAME_KEEPALIVE)
		CHECK(f->body_len == 1 && f->body[0] == 0xFF && f->length == 3);
}

/* Classifies a whole frame that must classify, and checks it. */
static inline void
classify_and_check(const uint8_t *fr, size_t n, struct iketcp_frame *f)
{
	int rc = iketcp_frame_classify(fr, n, f);
	CHECK(rc == IKETCP_OK);
	check_classified(fr, n, f);
}

#endif
