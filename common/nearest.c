#include "nearest.h"

#include <string.h>

/* Levenshtein distance, one row; (size_t)-1 when a word is too long. */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[NEAREST_WORD_MAX + 1];

	if (la > NEAREST_WORD_MAX || lb > NEAREST_WORD_MAX)
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

int
nearest_word(const char *word, const char *const *cands, size_t n)
{
	size_t wl = strlen(word), best_d = (size_t)-1;
	int best = -1, prefix = -1, nprefix = 0;

	for (size_t k = 0; k < n; k++) {
		if (!cands[k])
			continue;
		if (wl >= 3 && !strncmp(cands[k], word, wl)) {
			prefix = (int)k;
			nprefix++;
		}
		size_t d = edit_distance(word, cands[k]);
		if (d < best_d) {
			best_d = d;
			best = (int)k;
		}
	}
	if (nprefix == 1)
		return prefix;
	/* A third of the word may be wrong, and at least two characters. */
	if (best >= 0 && (best_d <= 2 || best_d * 3 <= wl))
		return best;
	return -1;
}
