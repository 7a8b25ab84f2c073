/* Socket helpers shared by the server and client modes. */
#ifndef IKETCPD_NET_H
#define IKETCPD_NET_H

#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

/* A non-blocking, close-on-exec listening TCP socket (IPv6 sockets are
 * V6ONLY so that [::]:P and 0.0.0.0:P can both be listed). Returns fd or -1. */
int net_tcp_listen(const struct iketcpd_addr *a, int backlog);
/* The same with SO_REUSEPORT: one of a group of listeners on a, one per
 * worker (workers.h). */
int net_tcp_listen_shared(const struct iketcpd_addr *a, int backlog);
/* Set (by workers.c in a worker): net_tcp_listen() asks it instead, so
 * that a worker takes its share of a listener bound before the fork. */
extern int (*net_listen_hook)(const struct iketcpd_addr *a, int backlog);

/* A non-blocking UDP socket, bound to bind_to when not NULL and connected
 * to connect_to when not NULL. Returns fd or -1. */
int net_udp_socket(int family, const struct iketcpd_addr *bind_to,
		   const struct iketcpd_addr *connect_to);

/*
 * Two non-blocking UDP sockets bound to the same address (SO_REUSEPORT)
 * with a reuseport BPF program that steers every datagram starting with
 * the 4-byte non-ESP marker (IKE, RFC 3948) to the second one, *ike_fd.
 * Under an ESP flood the kernel's receive queue of the first socket
 * stands full and drops at its tail; IKE then neither waits behind it nor
 * is dropped with it. Returns the first (ESP) socket, or -1. When the
 * kernel refuses the steering, *ike_fd is -1 and the ESP socket gets
 * everything, as net_udp_socket() would; *err is then the errno why.
 */
int net_udp_ike_lane(const struct iketcpd_addr *bind_to, int *ike_fd, int *err);

/*
 * What keeps a client's outer socket (to the peer or proxy) out of this
 * host's own tunnels when their policies or routes cover the peer (a full
 * tunnel, remote_ts = 0.0.0.0/0): SO_MARK, for a routing rule or firewall
 * that exempts marked packets (kernel-libipsec, nftables setups), and a
 * per-socket IPsec bypass policy (kernel XFRM). Both need CAP_NET_ADMIN.
 */
struct net_outer {
	uint32_t mark;  /* SO_MARK; 0 = none */
	int bypass;     /* try IP_XFRM_POLICY / IPV6_XFRM_POLICY "allow" both ways */
	int mark_err;   /* out: errno of SO_MARK, 0 = set or not asked for */
	int bypass_err; /* out: errno of the bypass policy, 0 = set or not asked for */
};

/* Applies o to fd (of family). A mark that cannot be set fails (-1,
 * errno and o->mark_err set): a connection that should have been exempted
 * would loop into the tunnel. A bypass policy that cannot be set does not
 * (o->bypass_err says why): it is best effort. */
int net_outer_apply(int fd, int family, struct net_outer *o);

/* A non-blocking UDP socket connected to connect_to, with o applied
 * before the connect. Returns fd or -1 (o->mark_err set when the mark failed). */
int net_udp_connect_outer(const struct iketcpd_addr *connect_to, struct net_outer *o);

/* Starts a non-blocking connect. Returns fd (connect may be in progress) or -1.
 * For IPv6 with flowlabel not NULL, the connection carries the flow label
 * *flowlabel (0: pick one and store it), so that every reconnect of a flow
 * hashes onto the same ECMP path (R22); *flowlabel is 0 after the kernel
 * refused a fixed label. o (NULL: none) is applied before the connect, as
 * net_outer_apply() does. */
int net_tcp_connect(const struct iketcpd_addr *a, uint32_t *flowlabel, struct net_outer *o);

/* Sets TCP_NODELAY (frames are latency sensitive and already batched),
 * optional SO_KEEPALIVE (R49) with short probe times, and TCP_USER_TIMEOUT
 * (0: the kernel's default). Returns 0 or -1. */
int net_tcp_tune(int fd, int keepalive, uint32_t user_timeout_ms);

/* net.ipv4.tcp_ecn of this network namespace (it governs IPv6 too), or -1
 * when unreadable. Linux has no per-socket switch for ECN: this sysctl (and a
 * route's "features ecn") decide whether a connection negotiates it (R67). */
int net_tcp_ecn_sysctl(void);

/* Compares the IP part of two addresses (not the port). Returns 1 if equal. */
int net_same_ip(const struct iketcpd_addr *a, const struct iketcpd_addr *b);

#endif
