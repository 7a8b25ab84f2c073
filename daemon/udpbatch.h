/*
 * UDP datagrams in batches, for both modes' UDP side: recvmmsg() slots on
 * the receive side; on the send side, datagrams collected while one TCP
 * read is parsed go out with one sendmmsg(), runs of equal size as UDP GSO
 * messages. A batch holds pointers, never copies: the bytes stay in the
 * read buffer they were parsed from until the batch is flushed.
 */
#ifndef IKETCPD_UDPBATCH_H
#define IKETCPD_UDPBATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "config.h"

/* Datagrams per sendmmsg() call, and per GSO message (the kernel's
 * UDP_MAX_SEGMENTS is 64 on older kernels), bytes per GSO message (an IP
 * datagram's limit), and the largest segment size grouped. */
#define UDPBATCH_MAX 64
#define UDPBATCH_GSO_SEGS_MAX 64
#define UDPBATCH_GSO_BYTES_MAX 65000
#define UDPBATCH_GSO_SEG_MAX 9000

/*
 * Sends the datagrams iov[0..n) (n <= UDPBATCH_MAX, one iovec each) on the
 * UDP socket fd, to dst or, when dst is NULL, to the connected peer. Runs of
 * equal-sized datagrams go as UDP GSO messages unless *gso_off; a kernel
 * that refuses GSO sets *gso_off and the rest goes one datagram each.
 * Returns how many datagrams the kernel accepted, in order; the others are
 * lost (full socket buffer, ICMP refused), as they would be on a UDP path.
 */
unsigned udp_send_batch(int fd, const struct iketcpd_addr *dst, struct iovec *iov, unsigned n,
			int *gso_off);

/*
 * Datagrams bound for one destination (a socket, and an address when the
 * socket is not connected). Adding one for another destination, or to a
 * full batch, flushes first. sent / dropped count what the kernel took and
 * refused.
 */
struct udpbatch {
	int fd;
	const struct iketcpd_addr *dst;
	int *gso_off;
	uint64_t *sent, *dropped;
	unsigned n;
	struct iovec iov[UDPBATCH_MAX];
};

void udpbatch_init(struct udpbatch *b, uint64_t *sent, uint64_t *dropped);
void udpbatch_add(struct udpbatch *b, int fd, const struct iketcpd_addr *dst, int *gso_off,
		  const uint8_t *p, size_t len);
void udpbatch_flush(struct udpbatch *b);
/* Flushes when datagrams for fd (and dst) are queued: a destination that
 * goes away, or a buffer the queued bytes point into, sends them first. */
void udpbatch_flush_for(struct udpbatch *b, int fd, const struct iketcpd_addr *dst);

/* recvmmsg() slots: UDPRECV_SLOTS datagrams of up to IKETCP_BODY_MAX bytes
 * (the largest a frame can carry) with their senders. */
#define UDPRECV_SLOTS 32

struct udprecv {
	struct mmsghdr msg[UDPRECV_SLOTS];
	struct iovec iov[UDPRECV_SLOTS];
	struct sockaddr_storage src[UDPRECV_SLOTS];
	uint8_t *buf;
};

/* Returns 0, or -1 when out of memory. */
int udprecv_init(struct udprecv *r);
void udprecv_free(struct udprecv *r);
/* Reads up to UDPRECV_SLOTS datagrams without blocking; with want_src the
 * senders too (a connected socket knows its one sender: the kernel need not
 * copy it per datagram). Returns how many (0 when there were none), or -1
 * with errno (the first read failed: an ICMP error queued on a connected
 * socket is reported here). */
int udprecv_read(struct udprecv *r, int fd, int want_src);

static inline const uint8_t *
udprecv_data(const struct udprecv *r, int i)
{
	return r->iov[i].iov_base;
}

static inline size_t
udprecv_len(const struct udprecv *r, int i)
{
	return r->msg[i].msg_len;
}

/* The sender of datagram i (after udprecv_read() with want_src). */
void udprecv_src(const struct udprecv *r, int i, struct iketcpd_addr *out);

#endif
