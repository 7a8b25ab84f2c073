#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Process-wide like the log: there is one service manager per process. */
static struct {
	int fd;
	struct sockaddr_un sun;
	socklen_t len;
} N = {.fd = -1};

static void
seterr(char *err, size_t errlen, const char *msg, const char *path)
{
	if (err && errlen)
		snprintf(err, errlen, "NOTIFY_SOCKET=%s: %s", path, msg);
}

int
sdnotify_init(char *err, size_t errlen)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t n;

	sdnotify_close();
	if (!path || !path[0])
		return 0;
	n = strlen(path);
	/* A file system path or, with '@', a name in the abstract namespace
	 * (a leading NUL, not terminated: the length says where it ends).
	 * Anything else (vsock:, relative paths) is not ours to guess at. */
	if (path[0] != '/' && path[0] != '@') {
		seterr(err, errlen, "not an absolute path or @name, not notifying", path);
		return 0;
	}
	if (n >= sizeof(N.sun.sun_path) || n < 2) {
		seterr(err, errlen, "bad length, not notifying", path);
		return 0;
	}
	memset(&N.sun, 0, sizeof(N.sun));
	N.sun.sun_family = AF_UNIX;
	memcpy(N.sun.sun_path, path, n);
	if (path[0] == '@') {
		N.sun.sun_path[0] = '\0';
		N.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		N.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	N.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (N.fd < 0) {
		seterr(err, errlen, strerror(errno), path);
		return -1;
	}
	return 1;
}

int
sdnotify_enabled(void)
{
	return N.fd >= 0;
}

int
sdnotify_send(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n, saved = errno;

	if (N.fd < 0)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1; /* a STATUS cut short beats none */
	/* Blocking only in theory: the manager's receive queue is large and
	 * drained at once; MSG_NOSIGNAL because a vanished peer is no reason
	 * to die. */
	ssize_t r = sendto(N.fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT,
			   (const struct sockaddr *)&N.sun, N.len);
	errno = saved;
	return r == (ssize_t)n ? 0 : -1;
}

uint64_t
sdnotify_monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void
sdnotify_close(void)
{
	if (N.fd >= 0)
		close(N.fd);
	N.fd = -1;
}
