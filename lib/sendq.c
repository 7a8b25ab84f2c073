#include "iketcp/sendq.h"

#include <stdlib.h>
#include <string.h>

#include "iketcp/frame.h"

/* ---- byte ring --------------------------------------------------------- */

static int
ring_ensure(struct iketcp_ring *r, size_t cap)
{
	if (r->buf)
		return IKETCP_OK;
	r->buf = malloc(cap);
	if (!r->buf)
		return IKETCP_E_NOMEM;
	r->cap = cap;
	r->head = 0;
	r->len = 0;
	return IKETCP_OK;
}

static void
ring_put(struct iketcp_ring *r, const uint8_t *p, size_t n)
{
	size_t tail = (r->head + r->len) % r->cap;
	size_t first = r->cap - tail < n ? r->cap - tail : n;

	if (first)
		memcpy(r->buf + tail, p, first);
	if (n > first)
		memcpy(r->buf, p + first, n - first);
	r->len += n;
}

static uint8_t
ring_at(const struct iketcp_ring *r, size_t i)
{
	return r->buf[(r->head + i) % r->cap];
}

/* Length field of the frame starting i bytes after the head. */
static size_t
ring_frame_len(const struct iketcp_ring *r, size_t i)
{
	return (size_t)ring_at(r, i) << 8 | ring_at(r, i + 1);
}

static void
ring_consume(struct iketcp_ring *r, size_t n)
{
	r->head = (r->head + n) % r->cap;
	r->len -= n;
	if (r->len == 0)
		r->head = 0; /* keeps later pushes contiguous: fewer iovecs */
}

/* Adds the bytes [from, from+n) after the head as at most two iovecs. */
static int
ring_iov(const struct iketcp_ring *r, size_t from, size_t n, struct iovec *iov)
{
	if (n == 0)
		return 0;
	size_t start = (r->head + from) % r->cap;
	size_t first = r->cap - start < n ? r->cap - start : n;
	iov[0].iov_base = r->buf + start;
	iov[0].iov_len = first;
	if (first == n)
		return 1;
	iov[1].iov_base = r->buf;
	iov[1].iov_len = n - first;
	return 2;
}

/* ---- queue --------------------------------------------------------------- */

int
iketcp_sendq_init(struct iketcp_sendq *q, const struct iketcp_sendq_cfg *cfg)
{
	size_t budget = cfg && cfg->budget ? cfg->budget : IKETCP_SENDQ_DEFAULT_BUDGET;
	size_t reserve =
		cfg && cfg->ike_reserve ? cfg->ike_reserve : IKETCP_SENDQ_DEFAULT_IKE_RESERVE;

	if (budget < IKETCP_LEN_SIZE + 1 || budget > SIZE_MAX / 2 || reserve > SIZE_MAX / 2)
		return IKETCP_E_INVAL;
	memset(q, 0, sizeof(*q));
	q->budget = budget;
	q->hard_cap = budget + reserve;
	q->inprog = -1;
	return IKETCP_OK;
}

void
iketcp_sendq_free(struct iketcp_sendq *q)
{
	if (!q)
		return;
	for (int c = 0; c < IKETCP_NCLASS; c++) {
		free(q->ring[c].buf);
		q->ring[c] = (struct iketcp_ring){0};
	}
	q->inprog = -1;
	q->inprog_left = 0;
}

void
iketcp_sendq_trim(struct iketcp_sendq *q)
{
	for (int c = 0; c < IKETCP_NCLASS; c++) {
		if (q->ring[c].len == 0) {
			free(q->ring[c].buf);
			q->ring[c] = (struct iketcp_ring){0};
		}
	}
}

size_t
iketcp_sendq_bytes(const struct iketcp_sendq *q)
{
	return q->ring[IKETCP_CLASS_IKE].len + q->ring[IKETCP_CLASS_ESP].len;
}

size_t
iketcp_sendq_class_bytes(const struct iketcp_sendq *q, enum iketcp_class cls)
{
	return (unsigned)cls < IKETCP_NCLASS ? q->ring[cls].len : 0;
}

int
iketcp_sendq_push(struct iketcp_sendq *q, enum iketcp_class cls, const uint8_t *head,
		  size_t head_len, const uint8_t *body, size_t body_len)
{
	size_t flen = head_len + body_len;
	size_t queued = iketcp_sendq_bytes(q);
	uint8_t lf[2];

	if ((unsigned)cls >= IKETCP_NCLASS || flen < IKETCP_LEN_SIZE + 1 || flen > IKETCP_FRAME_MAX)
		return IKETCP_E_INVAL;
	/* The ring relies on each frame's own Length to find boundaries. */
	for (size_t i = 0; i < 2; i++)
		lf[i] = i < head_len ? head[i] : body[i - head_len];
	if (((size_t)lf[0] << 8 | lf[1]) != flen)
		return IKETCP_E_INVAL;

	size_t limit = cls == IKETCP_CLASS_ESP ? q->budget : q->hard_cap;
	if (queued + flen > limit) {
		q->stats.dropped[cls]++;
		q->stats.dropped_bytes[cls] += flen;
		return IKETCP_E_NOBUFS;
	}
	/* ESP can only ever fill `budget`, IKE `hard_cap` (see the checks). */
	int rc = ring_ensure(&q->ring[cls], limit);
	if (rc != IKETCP_OK)
		return rc;
	/*
	 * IKE is sent before every ESP frame that has not started, so an IKE
	 * frame overtakes exactly when such ESP frames are queued now. It is
	 * counted here: at send time the ring no longer tells which ESP
	 * frames were queued before it.
	 */
	if (cls == IKETCP_CLASS_IKE &&
	    q->ring[IKETCP_CLASS_ESP].len > (q->inprog == IKETCP_CLASS_ESP ? q->inprog_left : 0))
		q->stats.overtakes++;
	ring_put(&q->ring[cls], head, head_len);
	ring_put(&q->ring[cls], body, body_len);
	q->stats.frames_in[cls]++;
	q->stats.bytes_in[cls] += flen;
	return IKETCP_OK;
}

int
iketcp_sendq_push_datagram(struct iketcp_sendq *q, const uint8_t *dgram, size_t len)
{
	uint8_t head[IKETCP_LEN_SIZE];
	int kind = iketcp_frame_datagram_head(head, dgram, len);

	if (kind < 0)
		return kind;
	return iketcp_sendq_push(q, kind == IKETCP_FRAME_IKE ? IKETCP_CLASS_IKE : IKETCP_CLASS_ESP,
				 head, sizeof(head), dgram, len);
}

/*
 * Wire order: the rest of the frame already started (whatever its class),
 * then every queued IKE frame, then every queued ESP frame. A frame that
 * has started is always at the head of its ring, so skipping its remaining
 * bytes in part B/C is enough to never send a byte of it twice.
 */
int
iketcp_sendq_iov(const struct iketcp_sendq *q, struct iovec iov[IKETCP_SENDQ_IOV_MAX])
{
	int n = 0;

	if (q->inprog >= 0)
		n += ring_iov(&q->ring[q->inprog], 0, q->inprog_left, iov + n);
	for (int c = 0; c < IKETCP_NCLASS; c++) {
		const struct iketcp_ring *r = &q->ring[c];
		size_t skip = q->inprog == c ? q->inprog_left : 0;
		n += ring_iov(r, skip, r->len - skip, iov + n);
	}
	return n;
}

/* Consumes up to *n bytes of whole or partial frames of class c. */
static void
consume_class(struct iketcp_sendq *q, int c, size_t *n)
{
	struct iketcp_ring *r = &q->ring[c];

	while (*n > 0 && r->len > 0) {
		size_t flen = ring_frame_len(r, 0);
		if (*n >= flen) {
			ring_consume(r, flen);
			q->stats.frames_out[c]++;
			q->stats.bytes_out[c] += flen;
			*n -= flen;
		} else {
			ring_consume(r, *n);
			q->stats.bytes_out[c] += *n;
			q->inprog = c;
			q->inprog_left = flen - *n;
			*n = 0;
		}
	}
}

int
iketcp_sendq_consume(struct iketcp_sendq *q, size_t n)
{
	if (n > iketcp_sendq_bytes(q))
		return IKETCP_E_INVAL;
	if (q->inprog >= 0) {
		int c = q->inprog;
		size_t k = n < q->inprog_left ? n : q->inprog_left;
		ring_consume(&q->ring[c], k);
		q->stats.bytes_out[c] += k;
		q->inprog_left -= k;
		n -= k;
		if (q->inprog_left > 0)
			return IKETCP_OK; /* n was used up inside the started frame */
		q->stats.frames_out[c]++;
		q->inprog = -1;
	}
	consume_class(q, IKETCP_CLASS_IKE, &n);
	consume_class(q, IKETCP_CLASS_ESP, &n);
	return IKETCP_OK;
}

int
iketcp_sendq_flush(struct iketcp_sendq *q, iketcp_writev_fn fn, void *ctx)
{
	struct iovec iov[IKETCP_SENDQ_IOV_MAX];

	for (;;) {
		int cnt = iketcp_sendq_iov(q, iov);
		if (cnt == 0)
			return IKETCP_OK;
		long w = fn(ctx, iov, cnt);
		if (w == IKETCP_E_AGAIN || w == 0)
			return IKETCP_E_AGAIN;
		if (w < 0)
			return IKETCP_E_IO;
		if (iketcp_sendq_consume(q, (size_t)w) != IKETCP_OK)
			return IKETCP_E_IO; /* writer claimed more than it was given */
		q->stats.writev_calls++;
		if (iketcp_sendq_bytes(q) > 0)
			q->stats.partial_writes++;
	}
}
