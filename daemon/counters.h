/*
 * Counter tables: each counter of a mode (server, client) is named once, in
 * one row: its stats-socket key, where it lives, one line of help, and the
 * log line it belongs to. The stats socket ("KIND NAME KEY VALUE" lines, in
 * table order) and the SIGUSR1 log lines are both written from the table,
 * so a new counter cannot be printed in one and forgotten in the other.
 *
 * Close reasons are a second table (one row per reason: key, log text,
 * help), counted in an array of the stats struct indexed by the mode's
 * enum; a CTR_REASONS row in the counter table stands for all of them
 * ("closed_" + each key) at its place.
 */
#ifndef IKETCPD_COUNTERS_H
#define IKETCPD_COUNTERS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum ctr_flags {
	/* a level (open connections now), not a running total; it lives in
	 * the gauge struct the caller fills, not in the stats struct */
	CTR_GAUGE = 1 << 0,
	/* left out of the log line while 0 */
	CTR_NONZERO = 1 << 1,
	/* expands to one uint64_t per close reason at off, keyed key + reason */
	CTR_REASONS = 1 << 2,
};

struct ctr_row {
	const char *key;  /* stats-socket key (or, with CTR_REASONS, its prefix) */
	size_t off;       /* offsetof a uint64_t in the stats or gauge struct */
	unsigned flags;   /* enum ctr_flags */
	unsigned group;   /* index into the set's groups: its log line */
	const char *help; /* one line, e.g. for a Prometheus HELP line */
};

struct ctr_reason {
	const char *key;  /* after "closed_" on the stats socket */
	const char *text; /* for the log line that reports the close */
	const char *help;
};

struct ctr_group {
	const char *title;
	/* logged only when one of its values is not 0, or the caller asks
	 * for it (show mask of ctr_log) */
	int quiet;
};

struct ctr_set {
	const char *kind; /* "server", "client": the first word of each line */
	const struct ctr_row *rows;
	size_t nrows;
	const struct ctr_reason *reasons;
	size_t nreasons;
	const struct ctr_group *groups;
	size_t ngroups;
};

/* Number of stats-socket lines the set writes (reasons expanded). */
size_t ctr_count(const struct ctr_set *set);

/* Key (into key, which is returned) and value of line i, 0 <= i < ctr_count. */
const char *ctr_key(const struct ctr_set *set, size_t i, char *key, size_t keylen);
uint64_t ctr_value(const struct ctr_set *set, size_t i, const void *stats, const void *gauges);

/* Writes "KIND NAME KEY VALUE" lines in table order. */
void ctr_print(const struct ctr_set *set, const char *name, const void *stats, const void *gauges,
	       FILE *fp);

/*
 * Prometheus text exposition (format 0.0.4) of the set over n sections
 * (names[i], stats[i], gauges[i]): per metric "# HELP" and "# TYPE" once,
 * then one sample per section labelled section="NAME",mode="KIND". Names
 * are "iketcpd_KIND_KEY", counters with "_total" at the end; a CTR_REASONS
 * row is one metric "iketcpd_KIND_closed_total" with a reason label.
 */
void ctr_prometheus(const struct ctr_set *set, size_t n, const char *const *names,
		    const void *const *stats, const void *const *gauges, FILE *fp);

/* Writes s as a Prometheus label value (quotes not included): backslash,
 * double quote and newline escaped. */
void ctr_prom_label(const char *s, FILE *fp);

/* Logs one line per group, "NAME: TITLE: key value, key value, ..."
 * (split when long); show: bit g set = log quiet group g even when 0. */
void ctr_log(const struct ctr_set *set, const char *name, const void *stats, const void *gauges,
	     unsigned show);

/* 0 when every key (reasons expanded) is unique and non-empty, every row's
 * group exists and every reason has a key and a text; else -1 - the index
 * of the first bad line. For tests. */
int ctr_check(const struct ctr_set *set);

#endif
