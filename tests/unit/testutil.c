#include "testutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- big-endian helpers ------------------------------------------------ */

void
tu_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void
tu_put32(uint8_t *p, uint32_t v)
{
	tu_put16(p, (uint16_t)(v >> 16));
	tu_put16(p + 2, (uint16_t)v);
}

void
tu_put64(uint8_t *p, uint64_t v)
{
	tu_put32(p, (uint32_t)(v >> 32));
	tu_put32(p + 4, (uint32_t)v);
}

uint16_t
tu_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

uint32_t
tu_get32(const uint8_t *p)
{
	return (uint32_t)tu_get16(p) << 16 | tu_get16(p + 2);
}

uint64_t
tu_get64(const uint8_t *p)
{
	return (uint64_t)tu_get32(p) << 32 | tu_get32(p + 4);
}

/* ---- sample messages ----------------------------------------------------- */

void
tu_ike_msg_ex(uint8_t *out, size_t len, const struct tu_ike *h)
{
	assert_true(len >= 28);
	tu_put64(out, h->spi_i);
	tu_put64(out + 8, h->spi_r);
	out[16] = h->np;
	out[17] = h->version;
	out[18] = h->exchange;
	out[19] = h->flags;
	tu_put32(out + 20, h->msg_id);
	tu_put32(out + 24, h->length ? h->length : (uint32_t)len);
	for (size_t i = 28; i < len; i++)
		out[i] = (uint8_t)(i * 7 + h->msg_id * 13 + h->exchange);
}

void
tu_ike_msg(uint8_t *out, size_t len, uint8_t exchange, uint32_t msg_id)
{
	struct tu_ike h = {
		.spi_i = TU_SPI_I,
		.np = TU_NP_SA,
		.version = TU_IKE_V2,
		.exchange = exchange,
		.flags = 0x08,
		.msg_id = msg_id,
	};
	tu_ike_msg_ex(out, len, &h);
}

void
tu_esp_pkt(uint8_t *out, size_t len, uint32_t spi, uint32_t seq)
{
	assert_true(len >= 8);
	tu_put32(out, spi);
	tu_put32(out + 4, seq);
	for (size_t i = 8; i < len; i++)
		out[i] = (uint8_t)(i * 31 + seq * 5 + spi);
}

size_t
tu_frame(uint8_t *out, const uint8_t *body, size_t body_len)
{
	assert_true(body_len + 2 <= 65535);
	tu_put16(out, (uint16_t)(body_len + 2));
	if (body_len)
		memmove(out + 2, body, body_len);
	return body_len + 2;
}

size_t
tu_frame_ike(uint8_t *out, size_t ike_len, uint8_t exchange, uint32_t msg_id)
{
	assert_true(ike_len + 6 <= 65535);
	tu_put16(out, (uint16_t)(ike_len + 6));
	tu_put32(out + 2, 0);
	tu_ike_msg(out + 6, ike_len, exchange, msg_id);
	return ike_len + 6;
}

size_t
tu_frame_esp(uint8_t *out, size_t esp_len, uint32_t spi, uint32_t seq)
{
	assert_true(esp_len + 2 <= 65535);
	tu_put16(out, (uint16_t)(esp_len + 2));
	tu_esp_pkt(out + 2, esp_len, spi, seq);
	return esp_len + 2;
}

/* ---- hex ------------------------------------------------------------------ */

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The decoder behind tu_hex_decode() and tu_load_hex(); records line ends. */
static long
hex_decode_segs(const char *s, uint8_t *out, size_t cap, size_t *seg_end, size_t max_seg,
		size_t *nseg)
{
	size_t n = 0, segs = 0, line_start = 0;
	int hi = -1;

	for (;; s++) {
		int ch = (unsigned char)*s;
		if (ch == '#') {
			while (*s && *s != '\n')
				s++;
			ch = (unsigned char)*s;
		}
		if (ch == '\n' || ch == '\0') {
			if (hi >= 0)
				return -1; /* a line may not end inside a byte */
			if (n > line_start && seg_end) {
				if (segs >= max_seg)
					return -1;
				seg_end[segs] = n;
			}
			if (n > line_start)
				segs++;
			line_start = n;
			if (ch == '\0')
				break;
			continue;
		}
		if (isspace(ch) || ch == ':')
			continue;
		int v = hexval(ch);
		if (v < 0)
			return -1;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n >= cap)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	if (nseg)
		*nseg = segs;
	return (long)n;
}

long
tu_hex_decode(const char *hex, uint8_t *out, size_t cap)
{
	return hex_decode_segs(hex, out, cap, NULL, 0, NULL);
}

uint8_t *
tu_hex_alloc(const char *hex, size_t *len)
{
	size_t cap = strlen(hex) / 2 + 1;
	uint8_t *p = tu_xmalloc(cap);
	long n = tu_hex_decode(hex, p, cap);
	if (n < 0) {
		free(p);
		fail_msg("bad hex text: %s", hex);
		return NULL;
	}
	*len = (size_t)n;
	return p;
}

void
tu_hex_dump(FILE *f, const char *label, const uint8_t *p, size_t n)
{
	fprintf(f, "%s (%zu bytes):", label, n);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%02x", i % 32 ? " " : "\n  ", p[i]);
	fputc('\n', f);
}

int
tu_hex_eq(const uint8_t *p, size_t n, const char *hex)
{
	size_t want_len;
	uint8_t *want = tu_hex_alloc(hex, &want_len);
	int eq = want_len == n && memcmp(p, want, n) == 0;

	if (!eq) {
		size_t i = 0;
		while (i < n && i < want_len && p[i] == want[i])
			i++;
		fprintf(stderr, "byte mismatch at offset %zu\n", i);
		tu_hex_dump(stderr, "expected", want, want_len);
		tu_hex_dump(stderr, "actual", p, n);
	}
	free(want);
	return eq;
}

uint8_t *
tu_load_hex(const char *name, size_t *len, size_t *seg_end, size_t max_seg, size_t *nseg)
{
	char path[1024];
	FILE *f;
	char *text;
	long size = -1;

	snprintf(path, sizeof(path), "%s/%s", IKETCP_TESTDATA, name);
	f = fopen(path, "r");
	if (!f) {
		fail_msg("cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0)
		size = ftell(f);
	if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
		fclose(f);
		fail_msg("cannot size %s", path);
		return NULL;
	}
	text = tu_xmalloc((size_t)size + 1);
	if (fread(text, 1, (size_t)size, f) != (size_t)size) {
		fclose(f);
		free(text);
		fail_msg("short read on %s", path);
		return NULL;
	}
	fclose(f);
	text[size] = '\0';

	size_t cap = (size_t)size / 2 + 1;
	uint8_t *data = tu_xmalloc(cap);
	long n = hex_decode_segs(text, data, cap, seg_end, max_seg, nseg);
	free(text);
	if (n <= 0) {
		free(data);
		fail_msg("%s is not a hex file (or has too many lines)", path);
		return NULL;
	}
	*len = (size_t)n;
	return data;
}

/* ---- PRNG ------------------------------------------------------------------ */

void
tu_rng_seed(struct tu_rng *r, uint64_t seed)
{
	r->s = seed;
}

uint64_t
tu_rng_next(struct tu_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t
tu_rng_below(struct tu_rng *r, uint64_t n)
{
	assert_true(n > 0);
	return tu_rng_next(r) % n; /* the bias is irrelevant for tests */
}

uint64_t
tu_rng_range(struct tu_rng *r, uint64_t lo, uint64_t hi)
{
	assert_true(lo <= hi);
	return lo + tu_rng_below(r, hi - lo + 1);
}

void
tu_rng_fill(struct tu_rng *r, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)tu_rng_next(r);
}

void *
tu_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		fail_msg("out of memory (%zu bytes)", n);
	return p;
}
