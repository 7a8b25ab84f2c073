#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/*
 * Logging is process-wide by nature (one stderr, one syslog connection), so
 * this is the one module of iketcpd with file-scope state.
 */
static struct {
	int verbose;
	int use_syslog;
	int journal; /* stderr is journald's stream: "<N>" prefixes, its timestamps */
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

/* systemd sets JOURNAL_STREAM=DEV:INODE for a service whose stderr goes to
 * the journal. Inherited by anything started from that service, so it only
 * counts when stderr is still that very stream (systemd.exec(5)). */
static int
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat sb;
	char tail;

	if (!js || sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &sb) < 0)
		return 0;
	return (unsigned long long)sb.st_dev == dev && (unsigned long long)sb.st_ino == ino;
}

void
log_init(const char *ident, int verbose, int use_syslog)
{
	L.verbose = verbose;
	L.use_syslog = use_syslog;
	L.journal = !use_syslog && stderr_is_journal();
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
log_journal(void)
{
	return L.journal;
}

int
log_enabled(enum log_level lvl)
{
	/* verbose 0 shows info; 1 and more add debug lines (which ones: see
	 * debug_enabled()); below 0 (tests, fuzzing) only errors. */
	if (L.verbose < 0)
		return lvl == LOG_LVL_ERR;
	return (int)lvl <= LOG_LVL_INFO + (L.verbose > 0 ? 1 : 0);
}

/* The verbose levels (docs/iketcpd.conf.md): 1 = debug lines about
 * connections, flows and sessions (accepted, TLS and PROXY details, which
 * session a connection joins, where an SPI is routed); 2 = also per-frame
 * protocol detail (runt frames, health-check closes), which a busy or
 * attacked gateway produces in bulk; 3 = as 2 with the rate limit on debug
 * lines lifted, to trace one problem on a test bed. Warnings and info lines
 * stay limited at every level. */
static int
debug_enabled(enum log_cat cat)
{
	if (cat == LOGC_NONE || cat == LOGC_DEBUG)
		return L.verbose >= 1;
	return L.verbose >= 2;
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

	if (!log_enabled(lvl) || (lvl == LOG_LVL_DEBUG && !debug_enabled(cat))) {
		errno = saved;
		return;
	}
	if (lvl == LOG_LVL_DEBUG && L.verbose >= 3)
		suppressed = 0;
	else if (!allow(cat, &suppressed)) {
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
	} else if (L.journal) {
		/* journald reads the "<N>" prefix as the priority (sd-daemon(3))
		 * and stamps each line itself: no timestamp, no name of ours. */
		if (suppressed)
			fprintf(stderr, "<%d>(%lu similar messages suppressed)\n", prio[lvl],
				suppressed);
		fprintf(stderr, "<%d>%s\n", prio[lvl], buf);
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
