/* Socket helpers shared by the server and client modes. */
#ifndef IKETCPD_NET_H
#define IKETCPD_NET_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "config.h"
#include "iketcp/transport.h"

/* A non-blocking, close-on-exec listening TCP socket (IPv6 sockets are
 * V6ONLY so that [::]:P and 0.0.0.0:P can both be listed). Returns fd or -1. */
int net_tcp_listen(const struct iketcpd_addr *a, int backlog);

/* A non-blocking UDP socket, bound to bind_to when not NULL and connected
 * to connect_to when not NULL. Returns fd or -1. */
int net_udp_socket(int family, const struct iketcpd_addr *bind_to,
		   const struct iketcpd_addr *connect_to);

/* Starts a non-blocking connect. Returns fd (connect may be in progress) or -1.
 * For IPv6 with flowlabel not NULL, the connection carries the flow label
 * *flowlabel (0: pick one and store it), so that every reconnect of a flow
 * hashes onto the same ECMP path (R22); *flowlabel is 0 after the kernel
 * refused a fixed label. */
int net_tcp_connect(const struct iketcpd_addr *a, uint32_t *flowlabel);

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

/*
 * Reads what a connection has into buf[0..cap) through its transport: one
 * read for plain TCP; for TLS, records are gathered while there is room for
 * a whole one (NET_TLS_RECORD_MAX), so OpenSSL never keeps decrypted bytes
 * that epoll cannot announce. *last is the result of the last read
 * (IKETCP_E_AGAIN also when the buffer filled). Returns the bytes read, 0 at
 * end of stream, or an error / IKETCP_E_AGAIN when nothing was read.
 */
#define NET_TLS_RECORD_MAX 16384

/* What an epoll event ev lets a connection's transport do: *rd (read) and
 * *wr (flush). TLS may need the other direction's readiness (a read that
 * waits for EPOLLOUT, a write for EPOLLIN: rd_want / wr_want); plain TCP
 * reads on EPOLLIN (and errors) and flushes on EPOLLOUT. */
void net_transport_ready(const struct iketcp_transport *t, uint32_t ev, int *rd, int *wr);
long net_transport_fill(struct iketcp_transport *t, int gather_tls, uint8_t *buf, size_t cap,
			long *last);

/* net_send_batch() limits: datagrams per call, and per GSO message (the
 * kernel's UDP_MAX_SEGMENTS is 64 on older kernels), bytes per GSO message
 * (an IP datagram's limit), and the largest segment size grouped. */
#define NET_BATCH_MAX 64
#define NET_GSO_SEGS_MAX 64
#define NET_GSO_BYTES_MAX 65000
#define NET_GSO_SEG_MAX 9000

union net_cmsg {
	char buf[CMSG_SPACE(sizeof(uint16_t))];
	struct cmsghdr align;
};

/*
 * Sends the datagrams iov[0..n) (n <= NET_BATCH_MAX, one iovec each) on the
 * UDP socket fd, to dst or, when dst is NULL, to the connected peer. Runs of
 * equal-sized datagrams go as UDP GSO messages unless *gso_off; a kernel
 * that refuses GSO sets *gso_off and the rest goes one datagram each.
 * Returns how many datagrams the kernel accepted, in order; the others are
 * lost (full socket buffer, ICMP refused), as they would be on a UDP path.
 */
unsigned net_send_batch(int fd, const struct iketcpd_addr *dst, struct iovec *iov, unsigned n,
			int *gso_off);

#endif
