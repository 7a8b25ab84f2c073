/*
 * A test double for the system resolver, loaded with LD_PRELOAD into a real
 * iketcpd by tests/loopback/test_gateway.py. It makes name lookups as slow,
 * failing or changing as a test needs, without root, a DNS server or
 * /etc/hosts edits.
 *
 * Names ending in ".slowdns.test" are answered from the file $SLOWDNS_FILE,
 * read on every lookup, one "NAME DELAY_MS ADDRESS[,ADDRESS...]" line per
 * name, answered in that order (ADDRESS "FAIL" answers EAI_NONAME). Each such lookup appends "NAME
 * TID PID" to $SLOWDNS_LOG, so a test can tell which thread looked up. Every other name goes to the
 * real getaddrinfo().
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SUFFIX ".slowdns.test"

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static void
note(const char *name)
{
	const char *path = getenv("SLOWDNS_LOG");
	char line[512];
	if (!path)
		return;
	int n = snprintf(line, sizeof(line), "%s %ld %ld\n", name, (long)syscall(SYS_gettid),
			 (long)getpid());
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (n > 0 && write(fd, line, (size_t)n) < 0) {
		/* nothing to do: the test sees the line missing */
	}
	close(fd);
}

/* Finds name in $SLOWDNS_FILE. Returns 1 and fills delay and addr. */
static int
lookup_map(const char *name, long *delay_ms, char *addr, size_t cap)
{
	const char *path = getenv("SLOWDNS_FILE");
	char line[512], n[256], a[256];
	long d;
	int found = 0;
	FILE *f = path ? fopen(path, "r") : NULL;
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%255s %ld %255s", n, &d, a) == 3 && !strcmp(n, name)) {
			*delay_ms = d;
			snprintf(addr, cap, "%s", a);
			found = 1;
		}
	}
	fclose(f);
	return found;
}

int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
	    struct addrinfo **res)
{
	gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	size_t n = node ? strlen(node) : 0, k = strlen(SUFFIX);
	char addr[256];
	long delay = 0;

	if (!real)
		return EAI_SYSTEM;
	/* AI_NUMERICHOST never looks a name up: the real one says so */
	if (n <= k || strcmp(node + n - k, SUFFIX) != 0 ||
	    (hints && (hints->ai_flags & AI_NUMERICHOST)))
		return real(node, service, hints, res);
	note(node);
	if (!lookup_map(node, &delay, addr, sizeof(addr)))
		return EAI_NONAME;
	if (delay > 0) {
		struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0) {
		}
	}
	if (!strcmp(addr, "FAIL"))
		return EAI_NONAME;
	struct addrinfo h = hints ? *hints : (struct addrinfo){0};
	h.ai_flags |= AI_NUMERICHOST;
	h.ai_flags &= ~AI_ADDRCONFIG;
	/* each literal on its own, the lists chained in order (glibc's
	 * freeaddrinfo() frees node by node, so a chained list is fine) */
	struct addrinfo *head = NULL, **tail = &head;
	for (char *save = NULL, *a = strtok_r(addr, ",", &save); a;
	     a = strtok_r(NULL, ",", &save)) {
		struct addrinfo *one = NULL;
		int rc = real(a, service, &h, &one);
		if (rc != 0) {
			if (head)
				freeaddrinfo(head);
			return rc;
		}
		*tail = one;
		while (*tail)
			tail = &(*tail)->ai_next;
	}
	*res = head;
	return head ? 0 : EAI_NONAME;
}
