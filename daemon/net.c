#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

/* close() that keeps the errno of the failure being reported. */
static int
close_fail(int fd)
{
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

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
		return close_fail(fd);
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
	/* A per-client source address (backend-source) may be one of a prefix
	 * routed to this host rather than configured on an interface. */
	if (bind_to)
		(void)setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &(int){1}, sizeof(int));
	if ((bind_to && bind(fd, (const struct sockaddr *)&bind_to->ss, bind_to->len) < 0) ||
	    (connect_to &&
	     connect(fd, (const struct sockaddr *)&connect_to->ss, connect_to->len) < 0)) {
		return close_fail(fd);
	}
	return fd;
}

/* linux/in6.h's flow label manager ABI; glibc's netinet/in.h lacks it and
 * the two headers cannot be included together. */
struct net_flowlabel_req {
	struct in6_addr dst;
	uint32_t label; /* network order */
	uint8_t action;
	uint8_t share;
	uint16_t flags;
	uint16_t expires;
	uint16_t linger;
	uint32_t pad;
};
#define NET_IPV6_FLOWLABEL_MGR 32
#define NET_IPV6_FLOWINFO_SEND 33
#define NET_FL_A_GET 0
#define NET_FL_F_CREATE 1
#define NET_FL_F_EXCL 2
#define NET_FL_S_PROCESS 2
#define NET_FL_LINGER_S 120 /* a reconnect within this keeps the label reserved */

/* R22: attaches a fixed flow label to an IPv6 socket before connect(). A
 * label of 0 is chosen at random from the stateful range (1..0x7FFFF,
 * net.ipv6.flowlabel_state_ranges) and reserved for this process. Returns
 * the label, or 0 when the kernel refuses (the connection then gets an
 * automatic label, as before). */
static uint32_t
flowlabel_attach(int fd, const struct sockaddr_in6 *dst, uint32_t label)
{
	int one = 1;
	for (int tries = 0; tries < 8; tries++) {
		uint32_t l = label;
		if (!l) {
			uint32_t r = 0;
			if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
				return 0;
			l = r % 0x7FFFFu + 1;
		}
		struct net_flowlabel_req fr = {.dst = dst->sin6_addr,
					       .label = htonl(l),
					       .action = NET_FL_A_GET,
					       .share = NET_FL_S_PROCESS,
					       .flags = NET_FL_F_CREATE |
							(label ? 0 : NET_FL_F_EXCL),
					       .linger = NET_FL_LINGER_S};
		if (setsockopt(fd, IPPROTO_IPV6, NET_IPV6_FLOWLABEL_MGR, &fr, sizeof(fr)) == 0) {
			if (setsockopt(fd, IPPROTO_IPV6, NET_IPV6_FLOWINFO_SEND, &one,
				       sizeof(one)) < 0)
				return 0;
			return l;
		}
		if (label || errno != EEXIST)
			return 0; /* our label was taken meanwhile, or no permission */
	}
	return 0;
}

int
net_tcp_connect(const struct iketcpd_addr *a, uint32_t *flowlabel)
{
	struct iketcpd_addr to = *a;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (flowlabel && a->ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&to.ss;
		uint32_t l = flowlabel_attach(fd, s6, *flowlabel);
		if (!l && *flowlabel)
			l = flowlabel_attach(fd, s6, 0); /* lost it: take a new one */
		*flowlabel = l;
		s6->sin6_flowinfo = htonl(l);
	}
	if (connect(fd, (const struct sockaddr *)&to.ss, to.len) < 0 && errno != EINPROGRESS) {
		return close_fail(fd);
	}
	return fd;
}

int
net_tcp_tune(int fd, int keepalive, uint32_t user_timeout_ms)
{
	int one = 1;
	/* A peer that vanished (no FIN, no RST: a NAT that forgot it, a
	 * laptop closed) is found within about a minute: 30 s idle, then 3
	 * probes 10 s apart. Linux's defaults (2 h + 9 x 75 s) would hold its
	 * descriptor and buffers for hours. */
	int idle = 30, intvl = 10, cnt = 3;
	unsigned ut = user_timeout_ms;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return -1;
	if (keepalive && (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) < 0 ||
			  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0 ||
			  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) < 0 ||
			  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0))
		return -1;
	/* Data the peer never acknowledges (it stopped reading, or is gone
	 * while we send) ends the connection after this long. */
	if (ut && setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut)) < 0)
		return -1;
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

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h; glibc's netinet/udp.h may lack it */
#endif

/* Fills m with the datagrams iov[0..cnt) as one message: a UDP GSO
 * message (the kernel cuts it every seg bytes) when cnt > 1. */
static void
batch_msg(struct mmsghdr *m, union net_cmsg *cb, const struct iketcpd_addr *dst, struct iovec *iov,
	  unsigned cnt)
{
	m->msg_hdr = (struct msghdr){.msg_iov = iov, .msg_iovlen = cnt};
	m->msg_len = 0;
	if (dst) {
		m->msg_hdr.msg_name = (void *)(uintptr_t)&dst->ss;
		m->msg_hdr.msg_namelen = dst->len;
	}
	if (cnt > 1) {
		memset(cb, 0, sizeof(*cb));
		m->msg_hdr.msg_control = cb->buf;
		m->msg_hdr.msg_controllen = sizeof(cb->buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m->msg_hdr);
		c->cmsg_level = IPPROTO_UDP;
		c->cmsg_type = UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
		uint16_t seg = (uint16_t)iov[0].iov_len;
		memcpy(CMSG_DATA(c), &seg, sizeof(seg));
	}
}

unsigned
net_send_batch(int fd, const struct iketcpd_addr *dst, struct iovec *iov, unsigned n, int *gso_off)
{
	struct mmsghdr m[NET_BATCH_MAX];
	union net_cmsg cb[NET_BATCH_MAX];
	unsigned cnt[NET_BATCH_MAX];
	unsigned nm = 0, sent = 0, i = 0;
	int retried = 0;

	if (n > NET_BATCH_MAX)
		n = NET_BATCH_MAX;
	/* Runs of equal-sized datagrams (the last may be shorter) become one
	 * GSO message: one trip through the IP stack instead of one per
	 * datagram. A tunnel's bulk traffic is full-sized ESP, so runs are the
	 * common case; the receiver still gets separate datagrams. */
	while (i < n) {
		size_t seg = iov[i].iov_len, total = seg;
		unsigned k = 1;
		if (!*gso_off && seg > 0 && seg <= NET_GSO_SEG_MAX) {
			while (i + k < n && k < NET_GSO_SEGS_MAX &&
			       total + iov[i + k].iov_len <= NET_GSO_BYTES_MAX &&
			       iov[i + k].iov_len <= seg && iov[i + k].iov_len > 0) {
				total += iov[i + k].iov_len;
				k++;
				if (iov[i + k - 1].iov_len < seg)
					break; /* a shorter one ends the run */
			}
		}
		batch_msg(&m[nm], &cb[nm], dst, &iov[i], k);
		cnt[nm++] = k;
		i += k;
	}
	unsigned done = 0;
	while (done < nm) {
		int r = sendmmsg(fd, m + done, nm - done, 0);
		if (r < 0 && errno == ECONNREFUSED && !retried) {
			/* An ICMP error caused by an earlier datagram is reported
			 * (and cleared) by this call: it says nothing about this
			 * batch, so try once more. */
			retried = 1;
			continue;
		}
		if (r < 0 && cnt[done] > 1 && !*gso_off &&
		    (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP ||
		     errno == ENOPROTOOPT)) {
			/* The kernel or the route refuses UDP GSO (old kernel,
			 * segment above the path MTU): stop using it on this
			 * socket and send the rest one datagram each. */
			*gso_off = 1;
			unsigned first = 0;
			for (unsigned j = 0; j < done; j++)
				first += cnt[j];
			return sent + net_send_batch(fd, dst, iov + first, n - first, gso_off);
		}
		if (r <= 0)
			break; /* full buffer or refused: the rest is lost, as on a UDP path */
		for (int j = 0; j < r; j++)
			sent += cnt[done + (unsigned)j];
		done += (unsigned)r;
	}
	return sent;
}

void
net_transport_ready(const struct iketcp_transport *t, uint32_t ev, int *rd, int *wr)
{
	*rd = (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) ||
	      ((ev & EPOLLOUT) && (t->rd_want & IKETCP_WANT_WRITE));
	*wr = (ev & EPOLLOUT) || ((ev & EPOLLIN) && (t->wr_want & IKETCP_WANT_READ));
}

long
net_transport_fill(struct iketcp_transport *t, int gather_tls, uint8_t *buf, size_t cap, long *last)
{
	size_t got = 0;
	long r = IKETCP_E_AGAIN;

	if (!gather_tls) {
		r = iketcp_transport_read(t, buf, cap);
		*last = r > 0 ? IKETCP_E_AGAIN : r;
		return r;
	}
	while (cap - got >= NET_TLS_RECORD_MAX) {
		r = iketcp_transport_read(t, buf + got, cap - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	*last = r > 0 ? IKETCP_E_AGAIN : r;
	return got ? (long)got : r;
}

int
net_tcp_ecn_sysctl(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_ecn", "re");
	int v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}
