/*
 * iketcpd logging: levels, stderr in the foreground, syslog otherwise, and a
 * per-category rate limit for anything a peer can trigger (a flood of bad
 * connections must not become a flood of log lines).
 */
#ifndef IKETCPD_LOG_H
#define IKETCPD_LOG_H

#include <stdint.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Peer-triggerable categories, each limited to a burst then a rate. */
enum log_cat {
	LOGC_NONE,    /* not limited: our own events */
	LOGC_ACCEPT,  /* connection refused by limits */
	LOGC_PROTO,   /* protocol errors by peers */
	LOGC_SESSION, /* session events */
	LOGC_DEBUG,   /* debug lines a peer causes: a larger bucket */
	LOGC_NCAT,
};

/* verbose: 0 = info and above, 1 = debug lines about connections, flows and
 * sessions, 2 = also per-frame protocol detail, 3 = debug lines not rate
 * limited; below 0 only errors. use_syslog: log to syslog instead of stderr.
 * On stderr, when JOURNAL_STREAM names stderr (a systemd service's stream
 * to journald), lines carry a "<N>" syslog priority and no timestamp. */
void log_init(const char *ident, int verbose, int use_syslog);
void log_set_verbose(int verbose);
/* 1 when stderr goes to journald (see log_init). */
int log_journal(void);
int log_enabled(enum log_level lvl);

void log_msg(enum log_level lvl, enum log_cat cat, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(...) log_msg(LOG_LVL_ERR, LOGC_NONE, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, LOGC_NONE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, LOGC_NONE, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_enabled(LOG_LVL_DEBUG))                                                    \
			log_msg(LOG_LVL_DEBUG, LOGC_NONE, __VA_ARGS__);                            \
	} while (0)
/* Debug lines that a peer's traffic causes (one per connection or session
 * event): limited too, so that -v cannot be turned into a disk flood. */
#define log_peer_debug(...) log_peer(LOG_LVL_DEBUG, LOGC_DEBUG, __VA_ARGS__)
/* Rate-limited variants for peer-triggered events. */
#define log_peer(lvl, cat, ...)                                                                    \
	do {                                                                                       \
		if (log_enabled(lvl))                                                              \
			log_msg(lvl, cat, __VA_ARGS__);                                            \
	} while (0)

#endif
