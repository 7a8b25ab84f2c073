/*
 * Target Function: statmerge (daemon/statmerge.c), the supervisor's merge
 * of its workers' stats answers. Its input is written by iketcpd's own
 * workers, not by peers, but it is a parser all the same.
 *
 * Input layout:
 *   byte 0      the request: 0 stats, 1 status, 2 prometheus (mod 3)
 *   the rest    up to 4 answers, separated by 0xFF bytes; each is copied
 *               to a heap buffer of its exact length (ASan sees a read past)
 *
 * Oracles:
 *   - stats and prometheus: the merge is idempotent (merging its own
 *     output alone gives it back: keys are unique, the order is kept) and
 *     has no more lines than its inputs together;
 *   - status: the output is the inputs less every heading line but the
 *     first, so it is never longer than their sum plus a newline each.
 */
#include "harness.h"

#include "statmerge.h"

#define MAXIN 4

static char *
run(enum statsock_req req, const char *const *in, const size_t *len, size_t n, size_t *olen)
{
	char *out = NULL;
	FILE *fp = open_memstream(&out, olen);
	CHECK(fp);
	CHECK(statmerge(req, in, len, n, fp) == 0);
	CHECK(fclose(fp) == 0);
	return out;
}

static size_t
lines(const char *p, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += p[i] == '\n';
	return k;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in[MAXIN];
	size_t len[MAXIN], n = 0, total = 0, nlines = 0;

	if (size < 1)
		return 0;
	enum statsock_req req = (enum statsock_req)(data[0] % 3);
	const uint8_t *p = data + 1, *end = data + size;
	while (n < MAXIN) {
		const uint8_t *sep = memchr(p, 0xFF, (size_t)(end - p));
		size_t l = sep && n + 1 < MAXIN ? (size_t)(sep - p) : (size_t)(end - p);
		in[n] = malloc(l ? l : 1);
		CHECK(in[n]);
		memcpy(in[n], p, l);
		len[n] = l;
		total += l;
		nlines += lines(in[n], l) + 1;
		n++;
		p += l;
		if (p >= end)
			break;
		p++; /* the separator */
	}
	size_t olen = 0;
	char *out = run(req, (const char *const *)in, len, n, &olen);
	if (req == STATSOCK_STATUS) {
		CHECK(olen <= total + n);
	} else {
		CHECK(lines(out, olen) <= nlines);
		const char *again_in[1] = {out};
		size_t again_len[1] = {olen}, olen2 = 0;
		char *again = run(req, again_in, again_len, 1, &olen2);
		CHECK(olen2 == olen && !memcmp(again, out, olen));
		free(again);
	}
	free(out);
	for (size_t i = 0; i < n; i++)
		free(in[i]);
	return 0;
}
