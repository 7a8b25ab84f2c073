#include "relay.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int
relay_init(struct relay *r, const struct iketcp_deframer_cfg *dc, const struct iketcp_sendq_cfg *qc)
{
	if (iketcp_deframer_init(&r->df, dc) != IKETCP_OK)
		return -1;
	if (iketcp_sendq_init(&r->q, qc) != IKETCP_OK) {
		iketcp_deframer_free(&r->df);
		return -1;
	}
	return 0;
}

void
relay_free(struct relay *r)
{
	iketcp_transport_free(&r->tr);
	iketcp_deframer_free(&r->df);
	iketcp_sendq_free(&r->q);
}

/* One read for plain TCP; for TLS, records while a whole one fits. *last
 * is the last read's result (IKETCP_E_AGAIN also when the buffer filled).
 * Returns the bytes read, 0 at end of stream, or an error / IKETCP_E_AGAIN
 * when nothing was read. */
static long
fill(struct relay *r, uint8_t *buf, size_t cap, long *last)
{
	size_t got = 0;
	long n = IKETCP_E_AGAIN;

	if (!r->is_tls) {
		n = iketcp_transport_read(&r->tr, buf, cap);
		*last = n > 0 ? IKETCP_E_AGAIN : n;
		return n;
	}
	while (cap - got >= RELAY_TLS_RECORD_MAX) {
		n = iketcp_transport_read(&r->tr, buf + got, cap - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	*last = n > 0 ? IKETCP_E_AGAIN : n;
	return got ? (long)got : n;
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + 1;
}

static enum relay_end
read_end(long n, int *code)
{
	*code = (int)n;
	return n == 0 ? RELAY_EOF : n == IKETCP_E_AGAIN ? RELAY_AGAIN : RELAY_IOERR;
}

enum relay_end
relay_read(struct relay *r, struct relay_io *io, const struct relay_ops *ops, int *code)
{
	do {
		long last;
		long n = fill(r, io->rbuf, sizeof(io->rbuf), &last);
		if (n <= 0)
			return read_end(n, code);
		if (ops->data)
			ops->data(r, (size_t)n);
		struct iketcp_cur in;
		iketcp_cur_init(&in, io->rbuf, (size_t)n);
		const uint8_t *fr;
		size_t flen;
		int rc, frames = 0;
		while ((rc = iketcp_deframer_next(&r->df, &in, &fr, &flen)) == 1) {
			struct iketcp_dgram d;
			frames++;
			/* the deframer hands out whole frames of Length 2 to 65535:
			 * a body of at most IKETCP_BODY_MAX, never refused here */
			if (iketcp_dgram_classify(fr + IKETCP_LEN_SIZE, flen - IKETCP_LEN_SIZE,
						  &d) != IKETCP_OK)
				continue;
			if (ops->frame(r, &d) < 0) {
				udpbatch_flush(&io->batch);
				*code = IKETCP_OK;
				return RELAY_STOPPED;
			}
			/* A frame assembled in the deframer's buffer is only valid
			 * until the next call: send it now. Frames in rbuf wait. */
			if (fr < io->rbuf || fr >= io->rbuf + sizeof(io->rbuf))
				udpbatch_flush(&io->batch);
		}
		if (ops->chunk)
			ops->chunk(r, frames);
		udpbatch_flush(&io->batch);
		if (rc < 0) {
			*code = rc;
			return RELAY_STREAM;
		}
		if (last != IKETCP_E_AGAIN)
			return read_end(last, code);
	} while (r->tr.pre != NULL);
	iketcp_deframer_trim(&r->df); /* memory: keeps a partial frame's buffer */
	*code = IKETCP_E_AGAIN;
	return RELAY_AGAIN;
}

/* Tightens or releases TCP_NOTSENT_LOWAT after a flush (RELAY_LOWAT_TIGHT). */
static void
relay_pace(struct relay *r)
{
	if (RELAY_LOWAT_TIGHT <= 0)
		return;
	int tight = iketcp_sendq_standing(&r->q, mono_ns(), RELAY_STANDING_NS, RELAY_HOLD_NS);
	if (tight == r->lowat_tight)
		return;
	/* 0 restores net.ipv4.tcp_notsent_lowat (by default no limit) */
	int v = tight ? RELAY_LOWAT_TIGHT : 0;
	if (setsockopt(r->w.fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, sizeof(v)) == 0)
		r->lowat_tight = tight;
}

int
relay_flush(struct relay *r)
{
	while (r->prefix_left) {
		/* R15/R24/A2: the prefix leads, in the same write as the first
		 * frames: one segment with them over TCP, one record with them
		 * (the first application data) over TLS. */
		struct iovec iov[1 + IKETCP_SENDQ_IOV_MAX];
		iov[0].iov_base =
			(void *)(uintptr_t)&IKETCP_PREFIX[IKETCP_PREFIX_LEN - r->prefix_left];
		iov[0].iov_len = r->prefix_left;
		int n = iketcp_sendq_iov(&r->q, iov + 1);
		long w = iketcp_transport_writev(&r->tr, iov, 1 + n);
		if (w == IKETCP_E_AGAIN || w == 0)
			return IKETCP_E_AGAIN;
		if (w < 0)
			return (int)w;
		size_t k = (size_t)w < r->prefix_left ? (size_t)w : r->prefix_left;
		r->prefix_left -= k;
		if ((size_t)w > k && iketcp_sendq_consume(&r->q, (size_t)w - k) != IKETCP_OK)
			return IKETCP_E_STATE; /* the transport took more than offered */
	}
	int rc = iketcp_transport_send(&r->tr, &r->q);
	if (rc == IKETCP_OK || rc == IKETCP_E_AGAIN)
		relay_pace(r);
	if (rc == IKETCP_OK) {
		/* memory: the queue is empty; frees what was unused since the
		 * last trim, so a busy connection does not allocate per frame */
		iketcp_sendq_trim(&r->q);
		iketcp_tls_trim(&r->tr);
	}
	return rc;
}

void
relay_watch(struct loop *l, struct relay *r, unsigned want)
{
	watcher_set(l, &r->w,
		    (want & IKETCP_WANT_READ ? EPOLLIN : 0) |
			    (want & IKETCP_WANT_WRITE ? EPOLLOUT : 0));
}

void
relay_want(struct loop *l, struct relay *r, int reading, int writing)
{
	relay_watch(l, r,
		    iketcp_transport_interest(&r->tr, reading,
					      writing || r->prefix_left ||
						      iketcp_sendq_bytes(&r->q) > 0));
}

void
relay_ready(const struct relay *r, uint32_t ev, int *rd, int *wr)
{
	*rd = (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) ||
	      ((ev & EPOLLOUT) && (r->tr.rd_want & IKETCP_WANT_WRITE));
	*wr = (ev & EPOLLOUT) || ((ev & EPOLLIN) && (r->tr.wr_want & IKETCP_WANT_READ));
}

const char *
relay_error(const struct relay *r, int rc, char *buf, size_t len)
{
	if (iketcp_transport_last_error(&r->tr, buf, len) == 0)
		snprintf(buf, len, "%s", rc == IKETCP_E_IO ? strerror(errno) : iketcp_strerror(rc));
	return buf;
}

size_t
relay_trim(struct relay *r)
{
	iketcp_sendq_trim(&r->q);
	iketcp_deframer_trim(&r->df);
	if (!r->is_tls)
		return 0;
	size_t had = iketcp_tls_buffered(&r->tr);
	iketcp_tls_trim(&r->tr);
	return had - iketcp_tls_buffered(&r->tr);
}
