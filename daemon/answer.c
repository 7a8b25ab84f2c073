/* Request/answer socket I/O (answer.h). */
#include "answer.h"

#include <errno.h>
#include <sys/socket.h>

ssize_t
answer_recv(int fd, void *buf, size_t cap, size_t *len)
{
	if (*len >= cap)
		return 0;
	for (;;) {
		ssize_t n = recv(fd, (char *)buf + *len, cap - *len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return ANSWER_AGAIN;
		if (n > 0)
			*len += (size_t)n;
		return n;
	}
}

int
answer_send(int fd, const char *out, size_t len, size_t *off)
{
	while (*off < len) {
		/* MSG_NOSIGNAL: a reader that went away is EPIPE, not SIGPIPE */
		ssize_t n = send(fd, out + *off, len - *off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		*off += (size_t)n;
	}
	return 1;
}
