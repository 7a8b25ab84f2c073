/*
 * Shared helpers for the cmocka unit tests: sample IKE messages, ESP
 * packets and frames built independently of libiketcp's encoders, hex
 * helpers, golden files from IKETCP_TESTDATA, and a small deterministic
 * PRNG so that every randomised test replays exactly from its seed.
 *
 * Include this instead of <cmocka.h>: it pulls in the headers cmocka needs
 * first.
 */
#ifndef IKETCP_TESTUTIL_H
#define IKETCP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#ifndef IKETCP_TESTDATA
#error "IKETCP_TESTDATA must name the tests/data directory"
#endif

#define TU_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Defaults of tu_ike_msg(): a first IKE_SA_INIT request as in the byte example of
 * docs/conformance.md. */
#define TU_SPI_I 0x0102030405060708ULL
#define TU_NP_SA 33 /* Security Association payload */
#define TU_IKE_V2 0x20

/* Header fields of a sample IKE message (RFC 7296 §3.1). */
struct tu_ike {
	uint64_t spi_i;
	uint64_t spi_r;
	uint8_t np;
	uint8_t version;
	uint8_t exchange;
	uint8_t flags;
	uint32_t msg_id;
	uint32_t length; /* header Length field; 0 means "the real length" */
};

/*
 * Writes a len-byte IKE message (no non-ESP marker) to out: the 28-byte
 * header from h, then payload bytes that depend on msg_id and position (so
 * that two sample messages with different IDs differ everywhere).
 * len must be >= 28.
 */
void tu_ike_msg_ex(uint8_t *out, size_t len, const struct tu_ike *h);

/* tu_ike_msg_ex() with SPIi TU_SPI_I, SPIr 0, NP SA, version 2.0, flags I. */
void tu_ike_msg(uint8_t *out, size_t len, uint8_t exchange, uint32_t msg_id);

/* Writes a len-byte ESP packet (len >= 8): SPI, sequence, then pattern bytes. */
void tu_esp_pkt(uint8_t *out, size_t len, uint32_t spi, uint32_t seq);

/* Writes 2-byte Length (body_len + 2) and body to out; returns the frame length. */
size_t tu_frame(uint8_t *out, const uint8_t *body, size_t body_len);

/* Whole IKE frame (Length, marker, tu_ike_msg()); returns ike_len + 6. */
size_t tu_frame_ike(uint8_t *out, size_t ike_len, uint8_t exchange, uint32_t msg_id);

/* Whole ESP frame (Length, tu_esp_pkt()); returns esp_len + 2. */
size_t tu_frame_esp(uint8_t *out, size_t esp_len, uint32_t spi, uint32_t seq);

/* Big-endian stores and loads, written here again so tests do not trust cursor.h. */
void tu_put16(uint8_t *p, uint16_t v);
void tu_put32(uint8_t *p, uint32_t v);
void tu_put64(uint8_t *p, uint64_t v);
uint16_t tu_get16(const uint8_t *p);
uint32_t tu_get32(const uint8_t *p);
uint64_t tu_get64(const uint8_t *p);

/*
 * Decodes hex text into out. Whitespace, ':' and '#' comments (to the end
 * of the line) are skipped. Returns the number of bytes, or -1 on an odd
 * number of digits, a stray character, or more than cap bytes.
 */
long tu_hex_decode(const char *hex, uint8_t *out, size_t cap);

/* tu_hex_decode() into a malloc'ed buffer; fails the test on bad input. */
uint8_t *tu_hex_alloc(const char *hex, size_t *len);

/*
 * Compares n bytes at p with hex text. On a mismatch prints both and the
 * first differing offset to stderr and returns 0; returns 1 when equal.
 */
int tu_hex_eq(const uint8_t *p, size_t n, const char *hex);
#define assert_hex_equal(p, n, hex) assert_true(tu_hex_eq((p), (n), (hex)))

/* Prints n bytes as hex to f, 32 per line, after a label. */
void tu_hex_dump(FILE *f, const char *label, const uint8_t *p, size_t n);

/*
 * Loads IKETCP_TESTDATA/name, a hex file in the tu_hex_decode() format,
 * into a malloc'ed buffer. If seg_end is not NULL, the end offset of each
 * non-empty line (one TCP segment per line in the capture files) is stored
 * there, at most max_seg of them, and their number in *nseg. Fails the test
 * when the file is missing or malformed.
 */
uint8_t *tu_load_hex(const char *name, size_t *len, size_t *seg_end, size_t max_seg, size_t *nseg);

/* splitmix64: small, fast, and the same sequence on every platform. */
struct tu_rng {
	uint64_t s;
};

void tu_rng_seed(struct tu_rng *r, uint64_t seed);
uint64_t tu_rng_next(struct tu_rng *r);
/* Returns a value in [0, n); n must be > 0. */
uint64_t tu_rng_below(struct tu_rng *r, uint64_t n);
/* Returns a value in [lo, hi]. */
uint64_t tu_rng_range(struct tu_rng *r, uint64_t lo, uint64_t hi);
void tu_rng_fill(struct tu_rng *r, uint8_t *p, size_t n);

/* malloc that fails the test instead of returning NULL. */
void *tu_xmalloc(size_t n);

#endif
