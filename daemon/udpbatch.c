#include "udpbatch.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "iketcp/frame.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h; glibc's netinet/udp.h may lack it */
#endif

union udp_cmsg {
	char buf[CMSG_SPACE(sizeof(uint16_t))];
	struct cmsghdr align;
};

/* Fills m with the datagrams iov[0..cnt) as one message: a UDP GSO
 * message (the kernel cuts it every seg bytes) when cnt > 1. */
static void
batch_msg(struct mmsghdr *m, union udp_cmsg *cb, const struct iketcpd_addr *dst, struct iovec *iov,
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
udp_send_batch(int fd, const struct iketcpd_addr *dst, struct iovec *iov, unsigned n, int *gso_off)
{
	struct mmsghdr m[UDPBATCH_MAX];
	union udp_cmsg cb[UDPBATCH_MAX];
	unsigned cnt[UDPBATCH_MAX];
	unsigned nm = 0, sent = 0, i = 0;
	int retried = 0;

	if (n > UDPBATCH_MAX)
		n = UDPBATCH_MAX;
	/* Runs of equal-sized datagrams (the last may be shorter) become one
	 * GSO message: one trip through the IP stack instead of one per
	 * datagram. A tunnel's bulk traffic is full-sized ESP, so runs are the
	 * common case; the receiver still gets separate datagrams. */
	while (i < n) {
		size_t seg = iov[i].iov_len, total = seg;
		unsigned k = 1;
		if (!*gso_off && seg > 0 && seg <= UDPBATCH_GSO_SEG_MAX) {
			while (i + k < n && k < UDPBATCH_GSO_SEGS_MAX &&
			       total + iov[i + k].iov_len <= UDPBATCH_GSO_BYTES_MAX &&
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
			return sent + udp_send_batch(fd, dst, iov + first, n - first, gso_off);
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
udpbatch_init(struct udpbatch *b, uint64_t *sent, uint64_t *dropped)
{
	memset(b, 0, sizeof(*b));
	b->fd = -1;
	b->sent = sent;
	b->dropped = dropped;
}

void
udpbatch_flush(struct udpbatch *b)
{
	if (!b->n)
		return;
	unsigned sent = udp_send_batch(b->fd, b->dst, b->iov, b->n, b->gso_off);
	*b->sent += sent;
	*b->dropped += b->n - sent;
	b->n = 0;
}

void
udpbatch_add(struct udpbatch *b, int fd, const struct iketcpd_addr *dst, int *gso_off,
	     const uint8_t *p, size_t len)
{
	if (b->n && (b->fd != fd || b->dst != dst || b->n == UDPBATCH_MAX))
		udpbatch_flush(b);
	b->fd = fd;
	b->dst = dst;
	b->gso_off = gso_off;
	b->iov[b->n].iov_base = (void *)(uintptr_t)p;
	b->iov[b->n].iov_len = len;
	b->n++;
}

void
udpbatch_flush_for(struct udpbatch *b, int fd, const struct iketcpd_addr *dst)
{
	if (b->n && b->fd == fd && b->dst == dst)
		udpbatch_flush(b);
}

int
udprecv_init(struct udprecv *r)
{
	memset(r, 0, sizeof(*r));
	r->buf = malloc((size_t)UDPRECV_SLOTS * IKETCP_BODY_MAX);
	return r->buf ? 0 : -1;
}

void
udprecv_free(struct udprecv *r)
{
	free(r->buf);
	r->buf = NULL;
}

int
udprecv_read(struct udprecv *r, int fd, int want_src)
{
	for (unsigned i = 0; i < UDPRECV_SLOTS; i++) {
		r->iov[i].iov_base = r->buf + (size_t)i * IKETCP_BODY_MAX;
		r->iov[i].iov_len = IKETCP_BODY_MAX;
		r->msg[i].msg_hdr = (struct msghdr){.msg_name = want_src ? &r->src[i] : NULL,
						    .msg_namelen = want_src ? sizeof(r->src[i]) : 0,
						    .msg_iov = &r->iov[i],
						    .msg_iovlen = 1};
	}
	int n = recvmmsg(fd, r->msg, UDPRECV_SLOTS, MSG_DONTWAIT, NULL);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	return n;
}

void
udprecv_src(const struct udprecv *r, int i, struct iketcpd_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->len = r->msg[i].msg_hdr.msg_namelen;
	if (out->len > sizeof(out->ss))
		out->len = sizeof(out->ss);
	memcpy(&out->ss, &r->src[i], out->len);
}
