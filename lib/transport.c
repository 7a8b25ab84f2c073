/*
 * Transport table: the generic wrappers, the plain TCP transport, and the
 * first-byte sniffing that lets one port serve plain RFC 9329 and TLS.
 * The TLS transport is in tls.c.
 */
#include "iketcp/transport.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iketcp/cursor.h"
#include "iketcp/frame.h"
#include "transport_int.h"

/* ---- shared helpers (transport_int.h) ------------------------------------- */

void
iketcp__transport_seterr(struct iketcp_transport *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
}

long
iketcp__transport_take_pre(struct iketcp_transport *t, void *buf, size_t len)
{
	size_t left = t->pre_len - t->pre_off;
	size_t n = left < len ? left : len;

	memcpy(buf, t->pre + t->pre_off, n);
	t->pre_off += n;
	if (t->pre_off == t->pre_len) {
		free(t->pre);
		t->pre = NULL;
		t->pre_len = t->pre_off = 0;
	}
	return (long)n;
}

void
iketcp__transport_reset(struct iketcp_transport *t, int fd, unsigned flags,
			const struct iketcp_transport_ops *ops)
{
	memset(t, 0, sizeof(*t));
	t->ops = ops;
	t->fd = fd;
	t->flags = flags;
}

/* ---- plain TCP -------------------------------------------------------------- */

static long
tcp_read(struct iketcp_transport *t, void *buf, size_t len)
{
	ssize_t r;

	if (t->pre)
		return iketcp__transport_take_pre(t, buf, len);
	do
		r = recv(t->fd, buf, len, 0);
	while (r < 0 && errno == EINTR);
	if (r >= 0)
		return (long)r;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		t->rd_want = IKETCP_WANT_READ;
		return IKETCP_E_AGAIN;
	}
	iketcp__transport_seterr(t, "recv: %s", strerror(errno));
	return IKETCP_E_IO;
}

static long
tcp_writev(struct iketcp_transport *t, const struct iovec *iov, int cnt)
{
	/* sendmsg rather than writev: MSG_NOSIGNAL, so a closed peer gives
	 * EPIPE instead of killing a process that forgot SIGPIPE. */
	struct msghdr mh = {.msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)cnt};
	ssize_t w;

	do
		w = sendmsg(t->fd, &mh, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w >= 0)
		return (long)w;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		t->wr_want = IKETCP_WANT_WRITE;
		return IKETCP_E_AGAIN;
	}
	iketcp__transport_seterr(t, "send: %s", strerror(errno));
	return IKETCP_E_IO;
}

static int
tcp_shutdown(struct iketcp_transport *t)
{
	if (shutdown(t->fd, SHUT_WR) == 0 || errno == ENOTCONN)
		return IKETCP_OK;
	iketcp__transport_seterr(t, "shutdown: %s", strerror(errno));
	return IKETCP_E_IO;
}

static void
tcp_free(struct iketcp_transport *t)
{
	(void)t;
}

static const struct iketcp_transport_ops tcp_ops = {
	.name = "tcp",
	.read = tcp_read,
	.writev = tcp_writev,
	.handshake = NULL,
	.shutdown = tcp_shutdown,
	.pending = NULL,
	.flush = NULL,
	.free = tcp_free,
};

int
iketcp_transport_tcp_init(struct iketcp_transport *t, int fd, unsigned flags)
{
	if (!t || fd < 0 || (flags & ~IKETCP_TRANSPORT_CONNECTING))
		return IKETCP_E_INVAL;
	iketcp__transport_reset(t, fd, flags, &tcp_ops);
	t->hs_done = !(flags & IKETCP_TRANSPORT_CONNECTING);
	return IKETCP_OK;
}

/* ---- generic wrappers ------------------------------------------------------- */

long
iketcp_transport_read(struct iketcp_transport *t, void *buf, size_t len)
{
	if (!t || !t->ops)
		return IKETCP_E_STATE;
	if (!buf || len == 0)
		return IKETCP_E_INVAL;
	if (!t->hs_done)
		return IKETCP_E_STATE;
	long r = t->ops->read(t, buf, len);
	if (r != IKETCP_E_AGAIN)
		t->rd_want = 0;
	return r;
}

long
iketcp_transport_writev(struct iketcp_transport *t, const struct iovec *iov, int cnt)
{
	if (!t || !t->ops || !t->hs_done)
		return IKETCP_E_STATE;
	if (cnt < 0 || (cnt > 0 && !iov))
		return IKETCP_E_INVAL;
	if (cnt == 0 && iketcp_transport_pending(t) == 0)
		return 0;
	long w = t->ops->writev(t, iov, cnt);
	if (w != IKETCP_E_AGAIN && iketcp_transport_pending(t) == 0)
		t->wr_want = 0;
	return w;
}

long
iketcp_transport_writer(void *ctx, const struct iovec *iov, int cnt)
{
	return iketcp_transport_writev(ctx, iov, cnt);
}

/* Non-blocking connect: done when the socket has a peer; SO_ERROR tells failures. */
static int
connect_step(struct iketcp_transport *t)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int soerr = 0;
	socklen_t el = sizeof(soerr);

	if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &el) != 0) {
		iketcp__transport_seterr(t, "getsockopt(SO_ERROR): %s", strerror(errno));
		return IKETCP_E_IO;
	}
	if (soerr != 0) {
		errno = soerr;
		iketcp__transport_seterr(t, "connect: %s", strerror(soerr));
		return IKETCP_E_IO;
	}
	if (getpeername(t->fd, (struct sockaddr *)&ss, &sl) != 0) {
		if (errno == ENOTCONN) {
			t->hs_want = IKETCP_WANT_WRITE;
			return IKETCP_E_AGAIN;
		}
		iketcp__transport_seterr(t, "getpeername: %s", strerror(errno));
		return IKETCP_E_IO;
	}
	t->flags &= ~IKETCP_TRANSPORT_CONNECTING;
	return IKETCP_OK;
}

int
iketcp_transport_handshake(struct iketcp_transport *t)
{
	int rc;

	if (!t || !t->ops)
		return IKETCP_E_STATE;
	if (t->hs_done)
		return IKETCP_OK;
	if (t->flags & IKETCP_TRANSPORT_CONNECTING) {
		rc = connect_step(t);
		if (rc != IKETCP_OK)
			return rc;
	}
	rc = t->ops->handshake ? t->ops->handshake(t) : IKETCP_OK;
	if (rc == IKETCP_OK) {
		t->hs_done = 1;
		t->hs_want = 0;
	}
	return rc;
}

int
iketcp_transport_handshake_done(const struct iketcp_transport *t)
{
	return t && t->ops && t->hs_done;
}

int
iketcp_transport_shutdown(struct iketcp_transport *t)
{
	if (!t || !t->ops)
		return IKETCP_E_STATE;
	int rc = t->ops->shutdown(t);
	if (rc != IKETCP_E_AGAIN)
		t->wr_want = 0;
	return rc;
}

size_t
iketcp_transport_pending(const struct iketcp_transport *t)
{
	if (!t || !t->ops || !t->ops->pending)
		return 0;
	return t->ops->pending(t);
}

int
iketcp_transport_flush(struct iketcp_transport *t)
{
	if (!t || !t->ops)
		return IKETCP_E_STATE;
	if (!t->ops->flush || iketcp_transport_pending(t) == 0)
		return IKETCP_OK;
	int rc = t->ops->flush(t);
	if (rc != IKETCP_E_AGAIN)
		t->wr_want = 0;
	return rc;
}

int
iketcp_transport_send(struct iketcp_transport *t, struct iketcp_sendq *q)
{
	if (!t || !t->ops || !t->hs_done)
		return IKETCP_E_STATE;
	/*
	 * iketcp_sendq_flush() folds every writer error into IKETCP_E_IO, so
	 * the writer's own code is kept here to tell TLS errors apart.
	 */
	struct iovec iov[IKETCP_SENDQ_IOV_MAX];
	for (;;) {
		int cnt = iketcp_sendq_iov(q, iov);
		if (cnt == 0)
			break;
		long w = iketcp_transport_writev(t, iov, cnt);
		if (w == IKETCP_E_AGAIN || w == 0)
			return IKETCP_E_AGAIN;
		if (w < 0)
			return (int)w;
		if (iketcp_sendq_consume(q, (size_t)w) != IKETCP_OK)
			return IKETCP_E_IO;
		q->stats.writev_calls++;
		if (iketcp_sendq_bytes(q) > 0)
			q->stats.partial_writes++;
	}
	return iketcp_transport_flush(t);
}

unsigned
iketcp_transport_want(const struct iketcp_transport *t)
{
	if (!t || !t->ops)
		return 0;
	return t->rd_want | t->wr_want | t->hs_want;
}

unsigned
iketcp_transport_interest(const struct iketcp_transport *t, int reading, int writing)
{
	unsigned ev = 0;

	if (!t || !t->ops)
		return 0;
	if (!t->hs_done)
		return t->hs_want ? t->hs_want : IKETCP_WANT_READ | IKETCP_WANT_WRITE;
	if (reading)
		ev |= t->rd_want ? t->rd_want : IKETCP_WANT_READ;
	if (writing || iketcp_transport_pending(t) > 0)
		ev |= t->wr_want ? t->wr_want : IKETCP_WANT_WRITE;
	return ev;
}

int
iketcp_transport_preread(struct iketcp_transport *t, const void *p, size_t n)
{
	if (!t || !t->ops)
		return IKETCP_E_STATE;
	if (!p || n == 0)
		return IKETCP_E_INVAL;
	if (t->pre)
		return IKETCP_E_STATE;
	t->pre = malloc(n);
	if (!t->pre)
		return IKETCP_E_NOMEM;
	memcpy(t->pre, p, n);
	t->pre_len = n;
	t->pre_off = 0;
	return IKETCP_OK;
}

size_t
iketcp_transport_last_error(const struct iketcp_transport *t, char *buf, size_t len)
{
	const char *e = t ? t->err : "";
	size_t n = strlen(e);

	if (buf && len > 0) {
		size_t k = n < len - 1 ? n : len - 1;
		memcpy(buf, e, k);
		buf[k] = '\0';
	}
	return n;
}

const char *
iketcp_transport_name(const struct iketcp_transport *t)
{
	return t && t->ops && t->ops->name ? t->ops->name : "none";
}

void
iketcp_transport_free(struct iketcp_transport *t)
{
	if (!t || !t->ops)
		return;
	t->ops->free(t);
	free(t->pre);
	t->pre = NULL;
	t->pre_len = t->pre_off = 0;
	t->impl = NULL;
	t->ops = NULL;
}

/* ---- sniffing ------------------------------------------------------------------ */

/* TLS record content type of a handshake record (RFC 8446 §5.1). */
#define TLS_CONTENT_HANDSHAKE 0x16

int
iketcp_stream_sniff(const void *p, size_t n)
{
	struct iketcp_cur c;
	uint8_t b;

	iketcp_cur_init(&c, p, n);
	if (iketcp_cur_get_u8(&c, &b) != IKETCP_OK)
		return IKETCP_E_AGAIN;
	if (b == TLS_CONTENT_HANDSHAKE)
		return IKETCP_STREAM_TLS;
	if (b == (uint8_t)IKETCP_PREFIX[0])
		return IKETCP_STREAM_RFC9329;
	return IKETCP_STREAM_OTHER;
}

int
iketcp_stream_peek(int fd)
{
	uint8_t b;
	ssize_t r;

	do
		r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return IKETCP_STREAM_EOF;
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? IKETCP_E_AGAIN : IKETCP_E_IO;
	return iketcp_stream_sniff(&b, 1);
}

const char *
iketcp_stream_kind_name(int kind)
{
	switch (kind) {
	case IKETCP_STREAM_EOF:
		return "eof";
	case IKETCP_STREAM_TLS:
		return "tls";
	case IKETCP_STREAM_RFC9329:
		return "rfc9329";
	case IKETCP_STREAM_OTHER:
		return "other";
	default:
		return "unknown";
	}
}
