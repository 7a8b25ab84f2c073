/* Option parsing and "did you mean" for the iketcp commands. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#define WORD_MAX 64

static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[WORD_MAX + 1];

	if (la > WORD_MAX || lb > WORD_MAX)
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
cli_nearest(const char *word, const char *const *cands, size_t n)
{
	size_t wl = strlen(word), best_d = (size_t)-1;
	int best = -1, prefix = -1, nprefix = 0;

	for (size_t k = 0; k < n; k++) {
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

int
cli_getopt(const char *cmd, const struct cli_opt *opts, size_t nopts, int argc, char **argv, int *i,
	   const char **val)
{
	const char *arg = argv[*i];
	char name[WORD_MAX + 1];
	const char *eq;

	*val = NULL;
	if (arg[0] != '-' || !arg[1])
		return CLI_POSITIONAL;
	eq = !strncmp(arg, "--", 2) ? strchr(arg, '=') : NULL;
	size_t nl = eq ? (size_t)(eq - arg) : strlen(arg);
	if (nl > WORD_MAX)
		nl = WORD_MAX;
	memcpy(name, arg, nl);
	name[nl] = '\0';
	for (size_t k = 0; k < nopts; k++) {
		if (strcmp(name, opts[k].name) && !(opts[k].alias && !strcmp(name, opts[k].alias)))
			continue;
		if (!opts[k].has_arg) {
			if (eq) {
				fprintf(stderr, "iketcp %s: option %s takes no value\n", cmd,
					opts[k].name);
				return CLI_ERROR;
			}
			return (int)k;
		}
		if (eq) {
			*val = eq + 1;
		} else if (*i + 1 < argc) {
			*val = argv[++*i];
		} else {
			fprintf(stderr, "iketcp %s: option %s needs a value\n", cmd, name);
			return CLI_ERROR;
		}
		return (int)k;
	}
	const char *names[32];
	size_t n = 0;
	for (size_t k = 0; k < nopts && n < 32; k++)
		names[n++] = opts[k].name;
	int near = cli_nearest(name, names, n);
	if (near >= 0)
		fprintf(stderr, "iketcp %s: unknown option '%s' (did you mean %s?)\n", cmd, name,
			names[near]);
	else
		fprintf(stderr, "iketcp %s: unknown option '%s'\n", cmd, name);
	fprintf(stderr, "run 'iketcp %s --help' for its options\n", cmd);
	return CLI_ERROR;
}
