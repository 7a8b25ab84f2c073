/* Pieces shared by the iketcp commands (tools/). */
#ifndef IKETCP_TOOLS_CLI_H
#define IKETCP_TOOLS_CLI_H

#include <stddef.h>
#include <stdint.h>

/* One option of a command: "--name" (alias e.g. "-t"), with or without a value. */
struct cli_opt {
	const char *name;
	const char *alias;
	int has_arg;
};

#define CLI_POSITIONAL (-1)
#define CLI_ERROR (-2)

/*
 * Reads argv[*i] (and its value): returns the index of the option in opts
 * (*val set when it takes one; "--name=value" works too), CLI_POSITIONAL
 * for an argument that is not an option, or CLI_ERROR after printing why
 * ("unknown option", with the nearest known one) on stderr. Advances *i
 * past a separate value.
 */
int cli_getopt(const char *cmd, const struct cli_opt *opts, size_t nopts, int argc, char **argv,
	       int *i, const char **val);

/* Prints one classified frame as "  #IDX  len=... kind ..." (decode, demo). */
void cli_print_frame(unsigned idx, const uint8_t *frame, size_t len);

/*
 * Parses stream[0..len), fed in the given chunk sizes (nchunks 0: all at
 * once), printing every frame when verbose. Returns the number of frames,
 * or < 0 after printing a stream error on stderr.
 */
int cli_parse_stream(const uint8_t *stream, size_t len, int expect_prefix, const size_t *chunks,
		     size_t nchunks, int verbose);

/* iketcp decode ARGS (argv without "decode"). Exit status. */
int cmd_decode(int argc, char **argv);

#endif
