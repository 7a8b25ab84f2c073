#include "iketcp/sendq.h"

#include <stdlib.h>
#include <string.h>

#include "iketcp/dgram.h"
#include "iketcp/frame.h"
#include "mem_internal.h"

/* ---- byte ring --------------------------------------------------------- */

/* Releases r's buffer and its share of the memory budget. */
static void
ring_release(struct iketcp_ring *r)
{
	if (r->buf) {
		free(r->buf);
		iketcp__mem_give(r->cap);
	}
	*r = (struct iketcp_ring){0};
}

/*
 * Makes room for `need` queued bytes in total, doubling from
 * IKETCP_SENDQ_RING_MIN up to maxcap (need <= maxcap). The new buffer is
 * allocated before the old one is freed, so both are charged meanwhile;
 * the queued bytes move to its start, unwrapped. force: growth up to that
 * size is never refused by the memory budget (the IKE floor).
 * Returns IKETCP_OK, IKETCP_E_NOBUFS (memory budget) or IKETCP_E_NOMEM.
 */
static int
ring_grow(struct iketcp_ring *r, size_t need, size_t maxcap, size_t floor)
{
	size_t cap = r->cap ? r->cap : IKETCP_SENDQ_RING_MIN;

	while (cap < need && cap <= maxcap / 2)
		cap *= 2;
	if (cap < need || cap > maxcap)
		cap = maxcap;
	if (!iketcp__mem_take(cap, cap <= floor))
		return IKETCP_E_NOBUFS;
	uint8_t *nb = malloc(cap);
	if (!nb) {
		iketcp__mem_give(cap);
		return IKETCP_E_NOMEM;
	}
	if (r->len) {
		size_t first = r->cap - r->head < r->len ? r->cap - r->head : r->len;
		memcpy(nb, r->buf + r->head, first);
		memcpy(nb + first, r->buf, r->len - first);
	}
	if (r->buf) {
		free(r->buf);
		iketcp__mem_give(r->cap);
	}
	r->buf = nb;
	r->cap = cap;
	r->head = 0;
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
	if (r->len > r->peak)
		r->peak = r->len;
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
	for (int c = 0; c < IKETCP_NCLASS; c++)
		ring_release(&q->ring[c]);
	q->inprog = -1;
	q->inprog_left = 0;
}

void
iketcp_sendq_trim(struct iketcp_sendq *q)
{
	for (int c = 0; c < IKETCP_NCLASS; c++) {
		struct iketcp_ring *r = &q->ring[c];
		/* An oversized ring is freed rather than shrunk in place: it is
		 * empty, so the next push starts small without copying. A ring
		 * at the minimum stays while used, so a slow steady flow does
		 * not allocate once per frame. */
		if (r->buf && r->len == 0 &&
		    (r->peak == 0 || (r->cap > IKETCP_SENDQ_RING_MIN && r->peak <= r->cap / 4))) {
			ring_release(r);
			q->stats.trims++;
		}
		r->peak = r->len;
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

/*
 * Queues head + body (flen bytes, a whole frame with its own Length) in
 * class cls; the caller has checked the frame. Budget, cap and memory
 * refusals are counted here.
 */
static int
push_frame(struct iketcp_sendq *q, enum iketcp_class cls, const uint8_t *head, size_t head_len,
	   const uint8_t *body, size_t body_len)
{
	size_t flen = head_len + body_len;
	size_t queued = iketcp_sendq_bytes(q);

	size_t limit = cls == IKETCP_CLASS_ESP ? q->budget : q->hard_cap;
	if (queued + flen > limit) {
		q->stats.dropped[cls]++;
		q->stats.dropped_bytes[cls] += flen;
		return IKETCP_E_NOBUFS;
	}
	/* ESP can only ever fill `budget`, IKE `hard_cap` (see the checks). */
	struct iketcp_ring *r = &q->ring[cls];
	if (r->len + flen > r->cap) {
		int rc = ring_grow(r, r->len + flen, limit,
				   cls == IKETCP_CLASS_IKE ? IKETCP_MEM_IKE_FLOOR : 0);
		if (rc == IKETCP_E_NOBUFS) {
			q->stats.dropped[cls]++;
			q->stats.dropped_bytes[cls] += flen;
			q->stats.mem_refused++;
		}
		if (rc != IKETCP_OK)
			return rc;
		q->stats.grows++;
	}
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
iketcp_sendq_push(struct iketcp_sendq *q, enum iketcp_class cls, const uint8_t *head,
		  size_t head_len, const uint8_t *body, size_t body_len)
{
	size_t flen = head_len + body_len;
	uint8_t lf[2];

	if ((unsigned)cls >= IKETCP_NCLASS || flen < IKETCP_LEN_SIZE + 1 || flen > IKETCP_FRAME_MAX)
		return IKETCP_E_INVAL;
	/* The ring relies on each frame's own Length to find boundaries. */
	for (size_t i = 0; i < 2; i++)
		lf[i] = i < head_len ? head[i] : body[i - head_len];
	if (((size_t)lf[0] << 8 | lf[1]) != flen)
		return IKETCP_E_INVAL;
	return push_frame(q, cls, head, head_len, body, body_len);
}

int
iketcp_sendq_push_dgram(struct iketcp_sendq *q, const struct iketcp_dgram *d)
{
	int kind = iketcp_dgram_frame_kind(d);
	uint8_t head[IKETCP_LEN_SIZE];

	if (kind < 0)
		return kind;
	/* A classified IKE or ESP datagram has 5 to IKETCP_BODY_MAX bytes; the
	 * check only guards the ring's framing against a hand-made *d. */
	if (d->len == 0 || d->len > IKETCP_BODY_MAX)
		return IKETCP_E_INVAL;
	head[0] = (uint8_t)((d->len + IKETCP_LEN_SIZE) >> 8);
	head[1] = (uint8_t)(d->len + IKETCP_LEN_SIZE);
	return push_frame(q, kind == IKETCP_FRAME_IKE ? IKETCP_CLASS_IKE : IKETCP_CLASS_ESP, head,
			  sizeof(head), d->p, d->len);
}

int
iketcp_sendq_push_datagram(struct iketcp_sendq *q, const uint8_t *dgram, size_t len)
{
	struct iketcp_dgram d;

	/* OVERSIZE comes back from push_dgram as IKETCP_E_MSGSIZE too. */
	if (iketcp_dgram_classify(dgram, len, &d) == IKETCP_E_MSGSIZE)
		return IKETCP_E_MSGSIZE;
	return iketcp_sendq_push_dgram(q, &d);
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

int
iketcp_sendq_standing(struct iketcp_sendq *q, uint64_t now, uint64_t target, uint64_t hold)
{
	if (q->ring[IKETCP_CLASS_ESP].len == 0)
		q->esp_since = 0;
	else if (q->esp_since == 0)
		q->esp_since = now;
	int stands = q->ring[IKETCP_CLASS_IKE].len > 0 ||
		     (q->esp_since != 0 && now - q->esp_since >= target);
	if (stands)
		q->stood_until = now + hold;
	return stands || now < q->stood_until;
}
