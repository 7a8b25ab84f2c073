#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
/* after netinet/in.h: its libc-compat guards keep linux/in6.h from
 * redefining what glibc already has */
#include <linux/filter.h>
#include <linux/xfrm.h>
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

int (*net_listen_hook)(const struct iketcpd_addr *a, int backlog);

static int
tcp_listen(const struct iketcpd_addr *a, int backlog, int reuseport)
{
	int one = 1;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    (a->ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 || listen(fd, backlog) < 0) {
		return close_fail(fd);
	}
	return fd;
}

int
net_tcp_listen(const struct iketcpd_addr *a, int backlog)
{
	if (net_listen_hook)
		return net_listen_hook(a, backlog);
	return tcp_listen(a, backlog, 0);
}

int
net_tcp_listen_shared(const struct iketcpd_addr *a, int backlog)
{
	return tcp_listen(a, backlog, 1);
}

/* A per-socket policy overrides the host's IPsec policies (SPD) for this
 * socket alone, in both directions: "allow" means no transform, so
 * neither the packets it sends nor those it receives are taken into (or
 * expected out of) a tunnel. Needs CAP_NET_ADMIN. Returns 0 or an errno. */
static int
xfrm_bypass(int fd, int family)
{
	struct xfrm_userpolicy_info pol;
	int level = family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
	int opt = family == AF_INET6 ? IPV6_XFRM_POLICY : IP_XFRM_POLICY;
	static const uint8_t dirs[] = {XFRM_POLICY_OUT, XFRM_POLICY_IN};

	if (family != AF_INET && family != AF_INET6)
		return EAFNOSUPPORT;
	for (size_t i = 0; i < sizeof(dirs); i++) {
		memset(&pol, 0, sizeof(pol));
		pol.action = XFRM_POLICY_ALLOW;
		pol.sel.family = (uint16_t)family;
		pol.dir = dirs[i];
		if (setsockopt(fd, level, opt, &pol, sizeof(pol)) < 0)
			return errno;
	}
	return 0;
}

int
net_outer_apply(int fd, int family, struct net_outer *o)
{
	o->bypass_err = 0;
	o->mark_err = 0;
	/* Before connect(): the route, and with it the source address, is
	 * chosen there, and must be the one the marked packets take. */
	if (o->mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &o->mark, sizeof(o->mark)) < 0) {
		o->mark_err = errno;
		return -1;
	}
	if (o->bypass)
		o->bypass_err = xfrm_bypass(fd, family);
	return 0;
}

static int
udp_socket(int family, const struct iketcpd_addr *bind_to, const struct iketcpd_addr *connect_to,
	   struct net_outer *o)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int buf = 4 << 20;
	if (fd < 0)
		return -1;
	if (o && net_outer_apply(fd, family, o) < 0)
		return close_fail(fd);
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

int
net_udp_socket(int family, const struct iketcpd_addr *bind_to,
	       const struct iketcpd_addr *connect_to)
{
	return udp_socket(family, bind_to, connect_to, NULL);
}

/* Returns the socket index in the reuseport group: 1 (the IKE socket) when
 * the UDP payload starts with four zero bytes, else 0. A payload shorter
 * than 4 bytes aborts the load, which returns 0. The kernel runs it with
 * the UDP header pulled, so offset 0 is the payload. */
static const struct sock_filter ike_lane_prog[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, 1),
	BPF_STMT(BPF_RET | BPF_K, 0),
};

static int
reuse_udp(int family, const struct iketcpd_addr *bind_to)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int buf = 4 << 20;
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &(int){1}, sizeof(int)) < 0 ||
	    bind(fd, (const struct sockaddr *)&bind_to->ss, bind_to->len) < 0)
		return close_fail(fd);
	return fd;
}

int
net_udp_ike_lane(const struct iketcpd_addr *bind_to, int *ike_fd, int *err)
{
	int family = bind_to->ss.ss_family;
	struct iketcpd_addr bound = {.len = sizeof(bound.ss)};
	struct sock_fprog prog = {.len = sizeof(ike_lane_prog) / sizeof(ike_lane_prog[0]),
				  .filter = (struct sock_filter *)(uintptr_t)ike_lane_prog};

	*ike_fd = -1;
	*err = 0;
	int fd = reuse_udp(family, bind_to);
	if (fd < 0) {
		*err = errno;
		return net_udp_socket(family, bind_to, NULL);
	}
	/* port 0: the second socket joins the port the first one got */
	if (getsockname(fd, (struct sockaddr *)&bound.ss, &bound.len) < 0 ||
	    (*ike_fd = reuse_udp(family, &bound)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0) {
		*err = errno;
		if (*ike_fd >= 0)
			close(*ike_fd);
		*ike_fd = -1;
		close(fd);
		return net_udp_socket(family, bind_to, NULL);
	}
	return fd;
}

int
net_udp_connect_outer(const struct iketcpd_addr *connect_to, struct net_outer *o)
{
	return udp_socket(connect_to->ss.ss_family, NULL, connect_to, o);
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
net_tcp_connect(const struct iketcpd_addr *a, uint32_t *flowlabel, struct net_outer *o)
{
	struct iketcpd_addr to = *a;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (o && net_outer_apply(fd, a->ss.ss_family, o) < 0)
		return close_fail(fd);
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
