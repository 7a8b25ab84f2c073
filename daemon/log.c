#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

/*
 * Logging is process-wide by nature (one stderr, one syslog connection), so
 * this is the one module of iketcpd with file-scope state.
 */
static struct {
	int verbose;
	int use_syslog;
	struct {
		double tokens;
		double last;
		unsigned long suppressed;
	} bucket[LOGC_NCAT];
} L = {.verbose = 0};

/* Each limited category: a burst of 20 lines, then 5 per second; peer
 * debug lines (LOGC_DEBUG, only with -v) 2000, then 500 per second. */
#define LOG_BURST 20.0
#define LOG_RATE 5.0
#define LOG_DEBUG_BURST 2000.0
#define LOG_DEBUG_RATE 500.0

static double
mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
log_init(const char *ident, int verbose, int use_syslog)
{
	L.verbose = verbose;
	L.use_syslog = use_syslog;
	for (int i = 0; i < LOGC_NCAT; i++) {
		L.bucket[i].tokens = i == LOGC_DEBUG ? LOG_DEBUG_BURST : LOG_BURST;
		L.bucket[i].last = mono();
	}
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_set_verbose(int verbose)
{
	L.verbose = verbose;
}

int
log_enabled(enum log_level lvl)
{
	/* verbose 0 shows info; -v adds debug; below 0 (tests, fuzzing) only
	 * errors. */
	if (L.verbose < 0)
		return lvl == LOG_LVL_ERR;
	return (int)lvl <= LOG_LVL_INFO + (L.verbose > 0 ? 1 : 0);
}

static int
allow(enum log_cat cat, unsigned long *suppressed)
{
	*suppressed = 0;
	if (cat == LOGC_NONE || cat >= LOGC_NCAT)
		return 1;
	double t = mono();
	double burst = cat == LOGC_DEBUG ? LOG_DEBUG_BURST : LOG_BURST;
	L.bucket[cat].tokens +=
		(t - L.bucket[cat].last) * (cat == LOGC_DEBUG ? LOG_DEBUG_RATE : LOG_RATE);
	if (L.bucket[cat].tokens > burst)
		L.bucket[cat].tokens = burst;
	L.bucket[cat].last = t;
	if (L.bucket[cat].tokens < 1.0) {
		L.bucket[cat].suppressed++;
		return 0;
	}
	L.bucket[cat].tokens -= 1.0;
	*suppressed = L.bucket[cat].suppressed;
	L.bucket[cat].suppressed = 0;
	return 1;
}

void
log_msg(enum log_level lvl, enum log_cat cat, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char buf[1024];
	unsigned long suppressed;
	int saved = errno;
	va_list ap;

	if (!log_enabled(lvl) || !allow(cat, &suppressed)) {
		errno = saved;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (L.use_syslog) {
		if (suppressed)
			syslog(prio[lvl], "(%lu similar messages suppressed)", suppressed);
		syslog(prio[lvl], "%s", buf);
	} else {
		struct timespec ts;
		struct tm tm;
		char tbuf[32];
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(tbuf, sizeof(tbuf), "%H:%M:%S", &tm);
		if (suppressed)
			fprintf(stderr, "%s.%03ld iketcpd: (%lu similar messages suppressed)\n",
				tbuf, ts.tv_nsec / 1000000, suppressed);
		fprintf(stderr, "%s.%03ld iketcpd: %s: %s\n", tbuf, ts.tv_nsec / 1000000,
			names[lvl], buf);
	}
	errno = saved;
}
