/*
 * Merging the stats answers of several workers into one (workers.h).
 *
 * stats ("KIND NAME KEY VALUE" lines) and prometheus ("NAME{LABELS} VALUE"
 * samples under "# HELP" / "# TYPE" lines): the values of lines with the
 * same key (all but the value) are summed, counters and gauges alike (open
 * connections of two workers are the host's open connections); a line
 * whose value is not a decimal number, and a comment, is kept once; the
 * order is that of first appearance, and for prometheus the samples of
 * one metric stay together under its HELP and TYPE lines.
 * iketcpd_build_info is kept once, not summed.
 *
 * status: the first answer's heading line, then every answer's rows in
 * the order given (session and connection ids are per worker).
 *
 * The answers come from this host's own worker processes, not from peers;
 * the parser is still bounded by the lengths given and never reads past
 * them.
 */
#ifndef IKETCPD_STATMERGE_H
#define IKETCPD_STATMERGE_H

#include <stddef.h>
#include <stdio.h>

#include "statsock.h"

/* Writes the merge of n answers to req (in[i], len[i] bytes) to fp.
 * Returns 0, or -1 when out of memory (nothing useful written). */
int statmerge(enum statsock_req req, const char *const *in, const size_t *len, size_t n, FILE *fp);

#endif
