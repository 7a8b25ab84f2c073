#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

int
net_tcp_listen(const struct iketcpd_addr *a, int backlog)
{
	int one = 1;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (a->ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int
net_udp_socket(int family, const struct iketcpd_addr *bind_to,
	       const struct iketcpd_addr *connect_to)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int buf = 4 << 20;
	if (fd < 0)
		return -1;
	/* Bursts of ESP from a TCP read go out with sendmmsg; a larger buffer
	 * turns short bursts into queueing instead of drops. Best effort. */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if ((bind_to && bind(fd, (const struct sockaddr *)&bind_to->ss, bind_to->len) < 0) ||
	    (connect_to &&
	     connect(fd, (const struct sockaddr *)&connect_to->ss, connect_to->len) < 0)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int
net_tcp_connect(const struct iketcpd_addr *a)
{
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int
net_tcp_tune(int fd, int keepalive)
{
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return -1;
	if (keepalive && setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0)
		return -1;
	return 0;
}

int
net_resolve(const char *host, uint16_t port, struct iketcpd_addr *out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
	struct addrinfo *res = NULL;
	char h[IKETCPD_HOST_MAX];
	size_t n = strlen(host);

	/* accept "[v6]" as written in HOST:PORT */
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(h)) {
		memcpy(h, host + 1, n - 2);
		h[n - 2] = 0;
	} else {
		if (n >= sizeof(h))
			return -1;
		memcpy(h, host, n + 1);
	}
	if (getaddrinfo(h, NULL, &hints, &res) != 0 || !res)
		return -1;
	memset(out, 0, sizeof(*out));
	memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
	out->len = res->ai_addrlen;
	if (out->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&out->ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&out->ss)->sin6_port = htons(port);
	freeaddrinfo(res);
	return 0;
}

int
net_same_ip(const struct iketcpd_addr *a, const struct iketcpd_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return 0;
	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)&b->ss)->sin_addr.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr,
		       &((const struct sockaddr_in6 *)&b->ss)->sin6_addr, 16);
}
