/* Merging workers' stats answers (statmerge.h). */
#include "statmerge.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ent {
	const char *key; /* the line without its value, or the whole line */
	size_t klen;
	unsigned long long sum;
	int summed; /* printed as key, space, sum */
	size_t fam; /* prometheus: the metric's first appearance; else order */
	int sample; /* prometheus: 1 for a sample (after HELP/TYPE) */
	size_t order;
};

struct map {
	size_t *slot; /* index + 1 into the entries (or families), 0 = free */
	size_t cap;   /* a power of two */
};

static uint64_t
hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
	return h;
}

/* The slot of key in m: its entry's index + 1, or a free slot (0). */
static size_t *
map_find(struct map *m, const char *key, size_t klen, int kind, const char *const *keys,
	 const size_t *klens, const int *kinds)
{
	size_t i = (size_t)(hash(key, klen) + (uint64_t)kind) & (m->cap - 1);
	for (;;) {
		size_t *s = &m->slot[i];
		if (*s == 0 || (klens[*s - 1] == klen && kinds[*s - 1] == kind &&
				!memcmp(keys[*s - 1], key, klen)))
			return s;
		i = (i + 1) & (m->cap - 1);
	}
}

static int
all_digits(const char *p, size_t n, unsigned long long *v)
{
	unsigned long long x = 0;
	if (n == 0 || n > 20)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		unsigned d = (unsigned)(p[i] - '0');
		if (x > (ULLONG_MAX - d) / 10)
			return 0;
		x = x * 10 + d;
	}
	*v = x;
	return 1;
}

/* The metric name a prometheus line belongs to. */
static void
family_of(const char *p, size_t n, const char **name, size_t *nlen)
{
	size_t i = 0;
	if (n && p[0] == '#') {
		/* "# HELP name ..." / "# TYPE name ...": the third word */
		for (int w = 0; w < 2; w++) {
			while (i < n && p[i] != ' ')
				i++;
			while (i < n && p[i] == ' ')
				i++;
		}
	}
	size_t s = i;
	while (i < n && p[i] != ' ' && p[i] != '{')
		i++;
	*name = p + s;
	*nlen = i - s;
}

static int
cmp_ent(const void *a, const void *b)
{
	const struct ent *x = *(const struct ent *const *)a, *y = *(const struct ent *const *)b;
	if (x->fam != y->fam)
		return x->fam < y->fam ? -1 : 1;
	if (x->sample != y->sample)
		return x->sample < y->sample ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static size_t
count_lines(const char *const *in, const size_t *len, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < len[i]; j++)
			k += in[i][j] == '\n';
	return k + n; /* a last line without its newline */
}

static int
merge_status(const char *const *in, const size_t *len, size_t n, FILE *fp)
{
	for (size_t i = 0; i < n; i++) {
		const char *p = in[i];
		size_t l = len[i];
		if (i > 0) {
			/* the heading line once */
			const char *nl = memchr(p, '\n', l);
			size_t skip = nl ? (size_t)(nl - p) + 1 : l;
			p += skip;
			l -= skip;
		}
		if (l)
			fwrite(p, 1, l, fp);
		if (l && p[l - 1] != '\n')
			fputc('\n', fp);
	}
	return 0;
}

int
statmerge(enum statsock_req req, const char *const *in, const size_t *len, size_t n, FILE *fp)
{
	if (req == STATSOCK_STATUS)
		return merge_status(in, len, n, fp);

	int prom = req == STATSOCK_PROMETHEUS;
	size_t max = count_lines(in, len, n) + 1, cap = 16, ne = 0, nf = 0;
	while (cap < 2 * max)
		cap <<= 1;
	struct ent *e = calloc(max, sizeof(*e));
	struct ent **sorted = calloc(max, sizeof(*sorted));
	const char **keys = calloc(max, sizeof(*keys)), **fkeys = calloc(max, sizeof(*fkeys));
	size_t *klens = calloc(max, sizeof(*klens)), *fklens = calloc(max, sizeof(*fklens));
	/* "k 5" (a number) and "k 5x" (text, key "k 5x") never share an entry */
	int *kinds = calloc(max, sizeof(*kinds)), *fkinds = calloc(max, sizeof(*fkinds));
	struct map m = {calloc(cap, sizeof(size_t)), cap}, fm = {calloc(cap, sizeof(size_t)), cap};
	int rc = -1;

	if (!e || !sorted || !keys || !fkeys || !klens || !fklens || !kinds || !fkinds || !m.slot ||
	    !fm.slot)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const char *p = in[i], *end = in[i] + len[i];
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
			const char *line = p;
			p += l + (nl != NULL);
			if (l == 0)
				continue;
			const char *sp = NULL;
			for (size_t j = l; j-- > 0;)
				if (line[j] == ' ') {
					sp = line + j;
					break;
				}
			unsigned long long v = 0;
			int sum = line[0] != '#' && sp &&
				  all_digits(sp + 1, (size_t)(line + l - sp - 1), &v);
			const char *fname = NULL;
			size_t fnlen = 0;
			if (prom) {
				family_of(line, l, &fname, &fnlen);
				if (fnlen == 18 && !memcmp(fname, "iketcpd_build_info", 18))
					sum = 0; /* one build: not N of them */
			}
			size_t klen = sum ? (size_t)(sp - line) : l;
			size_t *s = map_find(&m, line, klen, sum, keys, klens, kinds);
			if (*s) {
				struct ent *x = &e[*s - 1];
				if (x->summed)
					x->sum = x->sum > ULLONG_MAX - v ? ULLONG_MAX : x->sum + v;
				continue;
			}
			struct ent *x = &e[ne];
			*x = (struct ent){.key = line,
					  .klen = klen,
					  .sum = v,
					  .summed = sum,
					  .fam = ne,
					  .order = ne};
			keys[ne] = line;
			klens[ne] = klen;
			kinds[ne] = sum;
			*s = ++ne;
			if (prom) {
				size_t *f = map_find(&fm, fname, fnlen, 0, fkeys, fklens, fkinds);
				if (!*f) {
					fkeys[nf] = fname;
					fklens[nf] = fnlen;
					*f = ++nf;
				}
				x->fam = *f - 1;
				x->sample = line[0] != '#';
			}
		}
	}
	for (size_t i = 0; i < ne; i++)
		sorted[i] = &e[i];
	if (prom)
		qsort(sorted, ne, sizeof(*sorted), cmp_ent);
	for (size_t i = 0; i < ne; i++) {
		const struct ent *x = sorted[i];
		fwrite(x->key, 1, x->klen, fp);
		if (x->summed)
			fprintf(fp, " %llu\n", x->sum);
		else
			fputc('\n', fp);
	}
	rc = 0;
out:
	free(e);
	free(sorted);
	free(keys);
	free(fkeys);
	free(klens);
	free(fklens);
	free(kinds);
	free(fkinds);
	free(m.slot);
	free(fm.slot);
	return rc;
}
