/* Option parsing and "did you mean" for the iketcp commands. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "nearest.h"

#define WORD_MAX NEAREST_WORD_MAX

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
	int near = nearest_word(name, names, n);
	if (near >= 0)
		fprintf(stderr, "iketcp %s: unknown option '%s' (did you mean %s?)\n", cmd, name,
			names[near]);
	else
		fprintf(stderr, "iketcp %s: unknown option '%s'\n", cmd, name);
	fprintf(stderr, "run 'iketcp %s --help' for its options\n", cmd);
	return CLI_ERROR;
}
