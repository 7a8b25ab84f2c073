/*
 * Unit tests for lib/sendq.c, the per-connection send queue.
 *
 * A fake writer accepts 0..N bytes per call (deterministic PRNG) and
 * records everything written. After every writer call a checker verifies
 * that the wire so far is a run of whole frames, each one of the frames
 * pushed, each class in FIFO order, plus at most one started frame that is
 * a prefix of a pushed frame (a started frame is finished before any byte
 * of another). A reference model of the queue policy (rest of the started
 * frame, then IKE FIFO, then ESP FIFO; ESP limited by `budget`, IKE by
 * `budget + ike_reserve`) predicts the exact wire bytes and return codes.
 *
 * Every test frame carries its registry index (IKE: message ID, ESP:
 * sequence number), so the checker finds it without searching.
 */
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "iketcp/frame.h"
#include "iketcp/mem.h"
#include "iketcp/sendq.h"

#define MAXF 2048
#define TEST_ESP_SPI 0xe5e5e5e5u

/* ---- frame registry -------------------------------------------------------------- */

struct reg {
	uint8_t *data[MAXF];
	size_t len[MAXF];
	int cls[MAXF];
	size_t n;
};

/* Adds a frame of total length len (IKE >= 34, ESP >= 10); returns its index. */
static size_t
reg_add(struct reg *r, int cls, size_t len)
{
	size_t id = r->n;
	assert_true(id < MAXF);
	r->data[id] = tu_xmalloc(len);
	if (cls == IKETCP_CLASS_IKE) {
		assert_true(len >= 34);
		tu_frame_ike(r->data[id], len - 6, 37, (uint32_t)id);
	} else {
		assert_true(len >= 10);
		tu_frame_esp(r->data[id], len - 2, TEST_ESP_SPI, (uint32_t)id);
	}
	r->len[id] = len;
	r->cls[id] = cls;
	r->n++;
	return id;
}

static void
reg_free(struct reg *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->data[i]);
	free(r);
}

static struct reg *
reg_new(void)
{
	struct reg *r = tu_xmalloc(sizeof(*r));
	memset(r, 0, sizeof(*r));
	return r;
}

/* The registry index a frame carries, or -1 if not enough of it is there. */
static long
frame_id(const uint8_t *p, size_t avail)
{
	if (avail < 6)
		return -1;
	if (tu_get32(p + 2) == 0)
		return avail >= 30 ? (long)tu_get32(p + 26) : -1;
	return avail >= 10 ? (long)tu_get32(p + 6) : -1;
}

/* ---- invariant (a): no interleaving ------------------------------------------------ */

struct checker {
	const struct reg *reg;
	unsigned char used[MAXF];
	size_t pos;   /* wire offset of the first frame not yet complete */
	long last[2]; /* last complete frame per class: FIFO within a class */
};

static void
checker_init(struct checker *c, const struct reg *reg)
{
	memset(c, 0, sizeof(*c));
	c->reg = reg;
	c->last[0] = c->last[1] = -1;
}

/* Fails unless some pushed, unsent frame starts with p[0..n). */
static void
assert_prefix_of_unsent(const struct checker *c, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < c->reg->n; i++)
		if (!c->used[i] && c->reg->len[i] >= n && memcmp(c->reg->data[i], p, n) == 0)
			return;
	fail_msg("wire bytes at %zu start no pushed frame", c->pos);
}

/* Checks the bytes appended to the wire since the last call. */
static void
checker_run(struct checker *c, const uint8_t *wire, size_t len)
{
	while (c->pos < len) {
		const uint8_t *p = wire + c->pos;
		size_t avail = len - c->pos;
		long id = frame_id(p, avail);

		if (id < 0) {
			assert_prefix_of_unsent(c, p, avail);
			return;
		}
		if ((size_t)id >= c->reg->n || c->used[id])
			fail_msg("frame id %ld at wire offset %zu: unknown or sent twice", id,
				 c->pos);
		size_t flen = c->reg->len[id];
		assert_int_equal(tu_get16(p), flen);
		size_t have = avail < flen ? avail : flen;
		if (memcmp(p, c->reg->data[id], have) != 0)
			fail_msg("frame %ld garbled (interleaved?) at wire offset %zu", id, c->pos);
		if (avail < flen)
			return; /* started: the next bytes must continue this frame */
		int cls = c->reg->cls[id];
		if (id <= c->last[cls])
			fail_msg("frame %ld after %ld: class %d not FIFO", id, c->last[cls], cls);
		c->last[cls] = id;
		c->used[id] = 1;
		c->pos += flen;
	}
}

/* ---- fake writer -------------------------------------------------------------------- */

struct fake {
	uint8_t *wire;
	size_t len, cap;
	struct tu_rng rng;
	int random;   /* accept a random 0..max bytes per call */
	size_t max;   /* most bytes per call; 0: no limit */
	size_t allow; /* bytes left before returning E_AGAIN; SIZE_MAX: no limit */
	int forcing;  /* return `force`, write nothing */
	long force;
	int force_errno; /* errno to set with force */
	unsigned calls;  /* every call */
	unsigned wrote;  /* calls that wrote > 0 bytes */
	int iovcnt_max;
	struct checker *chk; /* run after every call, if set */
};

static void
fake_init(struct fake *f, uint64_t seed)
{
	memset(f, 0, sizeof(*f));
	f->cap = 1 << 16;
	f->wire = tu_xmalloc(f->cap);
	f->allow = SIZE_MAX;
	tu_rng_seed(&f->rng, seed);
}

static long
fake_writev(void *ctx, const struct iovec *iov, int iovcnt)
{
	struct fake *f = ctx;
	size_t total = 0, n;

	f->calls++;
	assert_true(iovcnt >= 1 && iovcnt <= IKETCP_SENDQ_IOV_MAX);
	if (iovcnt > f->iovcnt_max)
		f->iovcnt_max = iovcnt;
	for (int i = 0; i < iovcnt; i++) {
		assert_non_null(iov[i].iov_base);
		assert_true(iov[i].iov_len > 0); /* no empty iovecs */
		total += iov[i].iov_len;
	}
	if (f->forcing) {
		errno = f->force_errno;
		return f->force;
	}
	n = total;
	if (f->max && n > f->max)
		n = f->max;
	if (f->random)
		n = (size_t)tu_rng_below(&f->rng, n + 1);
	if (n > f->allow)
		n = f->allow;
	if (n == 0)
		return f->allow == 0 ? IKETCP_E_AGAIN : 0;
	if (f->allow != SIZE_MAX)
		f->allow -= n;
	while (f->len + n > f->cap) {
		f->cap *= 2;
		f->wire = realloc(f->wire, f->cap);
		assert_non_null(f->wire);
	}
	/* copy the first n bytes of the iovecs */
	size_t copied = 0;
	for (int i = 0; i < iovcnt && copied < n; i++) {
		size_t k = iov[i].iov_len < n - copied ? iov[i].iov_len : n - copied;
		memcpy(f->wire + f->len + copied, iov[i].iov_base, k);
		copied += k;
	}
	f->len += n;
	f->wrote++;
	if (f->chk)
		checker_run(f->chk, f->wire, f->len);
	return (long)n;
}

/* Flushes until the queue is empty; returns the number of flush calls. */
static unsigned
flush_all(struct iketcp_sendq *q, struct fake *f)
{
	unsigned rounds = 0;
	int rc;

	while ((rc = iketcp_sendq_flush(q, fake_writev, f)) != IKETCP_OK) {
		assert_int_equal(rc, IKETCP_E_AGAIN);
		assert_true(++rounds < 1000000);
	}
	assert_int_equal(iketcp_sendq_bytes(q), 0);
	return rounds + 1;
}

/* ---- reference model ------------------------------------------------------------------ */

struct model {
	const struct reg *reg;
	size_t fifo[2][MAXF];
	size_t h[2], t[2];
	long cur; /* frame partly written, or -1 */
	size_t cur_sent;
	size_t queued;
	size_t budget, hard_cap;
	uint64_t dropped[2], overtakes, frames_out[2];
	uint8_t *wire;
	size_t len, cap;
};

static void
model_init(struct model *m, const struct reg *reg, size_t budget, size_t hard_cap)
{
	memset(m, 0, sizeof(*m));
	m->reg = reg;
	m->cur = -1;
	m->budget = budget;
	m->hard_cap = hard_cap;
	m->cap = 1 << 16;
	m->wire = tu_xmalloc(m->cap);
}

/* The expected result of pushing frame id. */
static int
model_push(struct model *m, size_t id)
{
	int cls = m->reg->cls[id];
	size_t flen = m->reg->len[id];
	size_t limit = cls == IKETCP_CLASS_ESP ? m->budget : m->hard_cap;

	if (m->queued + flen > limit) {
		m->dropped[cls]++;
		return IKETCP_E_NOBUFS;
	}
	/* an IKE frame overtakes ESP frames that are queued and not started */
	if (cls == IKETCP_CLASS_IKE && m->h[1] < m->t[1])
		m->overtakes++;
	m->fifo[cls][m->t[cls]++] = id;
	m->queued += flen;
	return IKETCP_OK;
}

/* Emits n bytes in wire order: started frame, IKE FIFO, ESP FIFO. */
static void
model_emit(struct model *m, size_t n)
{
	while (n > 0) {
		if (m->cur < 0) {
			int cls = m->h[0] < m->t[0] ? 0 : 1;
			assert_true(m->h[cls] < m->t[cls]);
			m->cur = (long)m->fifo[cls][m->h[cls]++];
			m->cur_sent = 0;
		}
		size_t left = m->reg->len[m->cur] - m->cur_sent;
		size_t k = n < left ? n : left;
		while (m->len + k > m->cap) {
			m->cap *= 2;
			m->wire = realloc(m->wire, m->cap);
			assert_non_null(m->wire);
		}
		memcpy(m->wire + m->len, m->reg->data[m->cur] + m->cur_sent, k);
		m->len += k;
		m->cur_sent += k;
		m->queued -= k;
		n -= k;
		if (m->cur_sent == m->reg->len[m->cur]) {
			m->frames_out[m->reg->cls[m->cur]]++;
			m->cur = -1;
		}
	}
}

static size_t
model_class_bytes(const struct model *m, int cls)
{
	size_t b = 0;
	for (size_t i = m->h[cls]; i < m->t[cls]; i++)
		b += m->reg->len[m->fifo[cls][i]];
	if (m->cur >= 0 && m->reg->cls[m->cur] == cls)
		b += m->reg->len[m->cur] - m->cur_sent;
	return b;
}

/* ---- helpers ----------------------------------------------------------------------------- */

static void
q_init(struct iketcp_sendq *q, size_t budget, size_t reserve)
{
	struct iketcp_sendq_cfg cfg = {.budget = budget, .ike_reserve = reserve};
	assert_int_equal(iketcp_sendq_init(q, &cfg), IKETCP_OK);
}

static void
push_ok(struct iketcp_sendq *q, const struct reg *r, size_t id)
{
	assert_int_equal(iketcp_sendq_push(q, (enum iketcp_class)r->cls[id], r->data[id], 2,
					   r->data[id] + 2, r->len[id] - 2),
			 IKETCP_OK);
}

/* Concatenates frames ids[0..n) of r: the expected wire. */
static uint8_t *
concat(const struct reg *r, const size_t *ids, size_t n, size_t *len)
{
	size_t total = 0, off = 0;
	for (size_t i = 0; i < n; i++)
		total += r->len[ids[i]];
	uint8_t *p = tu_xmalloc(total);
	for (size_t i = 0; i < n; i++) {
		memcpy(p + off, r->data[ids[i]], r->len[ids[i]]);
		off += r->len[ids[i]];
	}
	*len = total;
	return p;
}

static void
assert_wire(const struct fake *f, const struct reg *r, const size_t *ids, size_t n)
{
	size_t len;
	uint8_t *want = concat(r, ids, n, &len);
	assert_int_equal(f->len, len);
	assert_memory_equal(f->wire, want, len);
	free(want);
}

/* Snapshot of everything a failed call must leave alone. */
struct snap {
	size_t bytes, ike, esp;
	struct iketcp_sendq_stats stats;
	int inprog;
	size_t inprog_left;
	uint8_t pending[4096];
	size_t npending;
};

static void
snap_take(const struct iketcp_sendq *q, struct snap *s)
{
	struct iovec iov[IKETCP_SENDQ_IOV_MAX];
	int n = iketcp_sendq_iov(q, iov);

	memset(s, 0, sizeof(*s));
	s->bytes = iketcp_sendq_bytes(q);
	s->ike = iketcp_sendq_class_bytes(q, IKETCP_CLASS_IKE);
	s->esp = iketcp_sendq_class_bytes(q, IKETCP_CLASS_ESP);
	s->stats = q->stats;
	s->inprog = q->inprog;
	s->inprog_left = q->inprog_left;
	for (int i = 0; i < n; i++) {
		assert_true(s->npending + iov[i].iov_len <= sizeof(s->pending));
		memcpy(s->pending + s->npending, iov[i].iov_base, iov[i].iov_len);
		s->npending += iov[i].iov_len;
	}
	assert_int_equal(s->npending, s->bytes);
}

static void
assert_unchanged(const struct iketcp_sendq *q, const struct snap *before)
{
	struct snap now;
	snap_take(q, &now);
	assert_int_equal(now.bytes, before->bytes);
	assert_int_equal(now.ike, before->ike);
	assert_int_equal(now.esp, before->esp);
	assert_int_equal(now.inprog, before->inprog);
	assert_int_equal(now.inprog_left, before->inprog_left);
	assert_memory_equal(&now.stats, &before->stats, sizeof(now.stats));
	assert_memory_equal(now.pending, before->pending, now.npending);
}

/* ---- init ---------------------------------------------------------------------------------- */

static void
test_init_defaults(void **state)
{
	(void)state;
	struct iketcp_sendq q;
	struct iovec iov[IKETCP_SENDQ_IOV_MAX];
	struct fake f;

	assert_int_equal(iketcp_sendq_init(&q, NULL), IKETCP_OK);
	assert_int_equal(q.budget, IKETCP_SENDQ_DEFAULT_BUDGET);
	assert_int_equal(q.hard_cap,
			 IKETCP_SENDQ_DEFAULT_BUDGET + IKETCP_SENDQ_DEFAULT_IKE_RESERVE);
	assert_int_equal(q.inprog, -1);
	assert_null(q.ring[0].buf); /* allocates nothing */
	assert_null(q.ring[1].buf);
	assert_int_equal(iketcp_sendq_bytes(&q), 0);
	assert_int_equal(iketcp_sendq_iov(&q, iov), 0);
	fake_init(&f, 1);
	assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_OK);
	assert_int_equal(f.calls, 0); /* nothing to write: writer not called */
	assert_int_equal(iketcp_sendq_consume(&q, 0), IKETCP_OK);
	assert_int_equal(iketcp_sendq_consume(&q, 1), IKETCP_E_INVAL);
	free(f.wire);
	iketcp_sendq_free(&q);

	struct iketcp_sendq_cfg zero = {0}; /* zeros mean the defaults too */
	assert_int_equal(iketcp_sendq_init(&q, &zero), IKETCP_OK);
	assert_int_equal(q.hard_cap,
			 IKETCP_SENDQ_DEFAULT_BUDGET + IKETCP_SENDQ_DEFAULT_IKE_RESERVE);
	iketcp_sendq_free(&q);
}

static void
test_init_validation(void **state)
{
	(void)state;
	static const struct iketcp_sendq_cfg bad[] = {
		{.budget = 1},
		{.budget = 2},
		{.budget = SIZE_MAX},
		{.budget = 100, .ike_reserve = SIZE_MAX},
	};
	struct iketcp_sendq q, before;

	memset(&q, 0x5a, sizeof(q));
	before = q;
	for (size_t i = 0; i < TU_ARRAY_LEN(bad); i++) {
		assert_int_equal(iketcp_sendq_init(&q, &bad[i]), IKETCP_E_INVAL);
		assert_memory_equal(&q, &before, sizeof(q));
	}
	q_init(&q, 3, 1);
	assert_int_equal(q.budget, 3);
	assert_int_equal(q.hard_cap, 4);
	iketcp_sendq_free(&q);
}

/* ---- push ---------------------------------------------------------------------------------- */

static void
test_push_validation(void **state)
{
	(void)state;
	uint8_t fr[64];
	struct iketcp_sendq q;
	struct snap s;

	q_init(&q, 1000, 1000);
	snap_take(&q, &s);
	tu_frame_esp(fr, 20, 0x1234, 1); /* Length 22 */
	/* the Length field must equal head_len + body_len */
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_ESP, fr, 2, fr + 2, 19),
			 IKETCP_E_INVAL);
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_ESP, fr, 2, fr + 2, 21),
			 IKETCP_E_INVAL);
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_ESP, NULL, 0, fr, 23), IKETCP_E_INVAL);
	/* ... also when the field itself is split between head and body */
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_ESP, fr, 1, fr + 1, 20),
			 IKETCP_E_INVAL);
	/* frames < 3 bytes: Length 2 (empty) and shorter are never queued */
	assert_int_equal(
		iketcp_sendq_push(&q, IKETCP_CLASS_ESP, (const uint8_t *)"\x00\x02", 2, NULL, 0),
		IKETCP_E_INVAL);
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_IKE, fr, 1, NULL, 0), IKETCP_E_INVAL);
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_IKE, NULL, 0, NULL, 0), IKETCP_E_INVAL);
	/* bad classes */
	assert_int_equal(iketcp_sendq_push(&q, (enum iketcp_class)2, fr, 2, fr + 2, 20),
			 IKETCP_E_INVAL);
	assert_int_equal(iketcp_sendq_push(&q, (enum iketcp_class) - 1, fr, 2, fr + 2, 20),
			 IKETCP_E_INVAL);
	/* more than 65535 bytes cannot be one frame */
	uint8_t *huge = tu_xmalloc(70000);
	memset(huge, 0xff, 70000);
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_ESP, huge, 2, huge + 2, 65534),
			 IKETCP_E_INVAL);
	free(huge);
	assert_unchanged(&q, &s);
	assert_int_equal(q.stats.dropped[0] + q.stats.dropped[1], 0); /* not counted as drops */
	assert_null(q.ring[0].buf);
	assert_null(q.ring[1].buf);
	/* the smallest frame, 3 bytes, is fine */
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_ESP, (const uint8_t *)"\x00\x03\xff", 3,
					   NULL, 0),
			 IKETCP_OK);
	assert_int_equal(iketcp_sendq_class_bytes(&q, IKETCP_CLASS_ESP), 3);
	assert_int_equal(iketcp_sendq_class_bytes(&q, (enum iketcp_class)7), 0);
	iketcp_sendq_free(&q);
}

/* Head and body are one frame whichever way the caller splits it. */
static void
test_push_head_body_forms(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	size_t id = reg_add(r, IKETCP_CLASS_IKE, 60);
	const uint8_t *p = r->data[id];
	struct iketcp_sendq q;
	struct fake f;
	size_t ids[5] = {id, id, id, id, id};

	q_init(&q, 1000, 0);
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_IKE, p, 6, p + 6, 54), IKETCP_OK);
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_IKE, NULL, 0, p, 60), IKETCP_OK);
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_IKE, p, 60, NULL, 0), IKETCP_OK);
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_IKE, p, 1, p + 1, 59), IKETCP_OK);
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_IKE, p, 2, p + 2, 58), IKETCP_OK);
	assert_int_equal(iketcp_sendq_bytes(&q), 300);
	assert_int_equal(q.stats.frames_in[IKETCP_CLASS_IKE], 5);
	assert_int_equal(q.stats.bytes_in[IKETCP_CLASS_IKE], 300);
	fake_init(&f, 1);
	f.max = 7; /* 7 bytes per call: frame boundaries never line up */
	flush_all(&q, &f);
	assert_wire(&f, r, ids, 5);
	assert_int_equal(q.stats.frames_out[IKETCP_CLASS_IKE], 5);
	free(f.wire);
	iketcp_sendq_free(&q);
	reg_free(r);
}

static void
test_push_datagram(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	size_t esp = reg_add(r, IKETCP_CLASS_ESP, 122), ike = reg_add(r, IKETCP_CLASS_IKE, 302);
	static const uint8_t ka[] = {0xff}, marker[] = {0, 0, 0, 0};
	static const uint8_t short_esp[] = {0, 0, 1, 0, 0, 0, 0};
	struct iketcp_sendq q;
	struct snap s;
	struct fake f;
	size_t want[2] = {ike, esp};

	q_init(&q, 1000, 0);
	snap_take(&q, &s);
	assert_int_equal(iketcp_sendq_push_datagram(&q, ka, 1), IKETCP_E_KEEPALIVE); /* R47 */
	assert_int_equal(iketcp_sendq_push_datagram(&q, marker, 4), IKETCP_E_EMPTY);
	assert_int_equal(iketcp_sendq_push_datagram(&q, marker, 0), IKETCP_E_EMPTY);
	assert_int_equal(iketcp_sendq_push_datagram(&q, short_esp, 7), IKETCP_E_EMPTY);
	uint8_t *huge = tu_xmalloc(IKETCP_BODY_MAX + 1);
	tu_esp_pkt(huge, IKETCP_BODY_MAX + 1, 0x1000, 1);
	assert_int_equal(iketcp_sendq_push_datagram(&q, huge, IKETCP_BODY_MAX + 1),
			 IKETCP_E_MSGSIZE);
	/* fits the frame format but not this queue's budget: NOBUFS, counted */
	assert_int_equal(iketcp_sendq_push_datagram(&q, huge, 2000), IKETCP_E_NOBUFS);
	free(huge);
	assert_int_equal(q.stats.dropped[IKETCP_CLASS_ESP], 1);
	q.stats.dropped[IKETCP_CLASS_ESP] = 0;
	q.stats.dropped_bytes[IKETCP_CLASS_ESP] = 0;
	assert_unchanged(&q, &s);

	/* the datagram is the body; its class follows from the first word */
	assert_int_equal(iketcp_sendq_push_datagram(&q, r->data[esp] + 2, 120), IKETCP_OK);
	assert_int_equal(iketcp_sendq_class_bytes(&q, IKETCP_CLASS_ESP), 122);
	assert_int_equal(iketcp_sendq_push_datagram(&q, r->data[ike] + 2, 300), IKETCP_OK);
	assert_int_equal(iketcp_sendq_class_bytes(&q, IKETCP_CLASS_IKE), 302);
	fake_init(&f, 1);
	flush_all(&q, &f);
	assert_wire(&f, r, want, 2); /* IKE first: it overtook the queued ESP */
	free(f.wire);
	iketcp_sendq_free(&q);
	reg_free(r);
}

/* ---- flush and the writer ---------------------------------------------------------------- */

static void
test_flush_all_at_once(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	size_t e1 = reg_add(r, IKETCP_CLASS_ESP, 100), i1 = reg_add(r, IKETCP_CLASS_IKE, 200);
	size_t e2 = reg_add(r, IKETCP_CLASS_ESP, 50), i2 = reg_add(r, IKETCP_CLASS_IKE, 40);
	size_t e3 = reg_add(r, IKETCP_CLASS_ESP, 10);
	size_t want[] = {i1, i2, e1, e2, e3};
	struct iketcp_sendq q;
	struct fake f;

	q_init(&q, 0, 0);
	for (size_t id = 0; id < r->n; id++)
		push_ok(&q, r, id);
	assert_int_equal(iketcp_sendq_bytes(&q), 400);
	assert_int_equal(iketcp_sendq_class_bytes(&q, IKETCP_CLASS_IKE), 240);
	fake_init(&f, 1);
	assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_OK);
	assert_wire(&f, r, want, 5);
	assert_int_equal(f.calls, 1); /* all five frames in one writev */
	assert_int_equal(q.stats.writev_calls, 1);
	assert_int_equal(q.stats.partial_writes, 0);
	assert_int_equal(q.stats.frames_out[IKETCP_CLASS_IKE], 2);
	assert_int_equal(q.stats.frames_out[IKETCP_CLASS_ESP], 3);
	assert_int_equal(q.stats.bytes_out[IKETCP_CLASS_IKE], 240);
	assert_int_equal(q.stats.bytes_out[IKETCP_CLASS_ESP], 160);
	assert_int_equal(q.inprog, -1);
	free(f.wire);
	iketcp_sendq_free(&q);
	reg_free(r);
}

static void
test_many_frames_per_writev(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	size_t want[120], n = 0;
	struct iketcp_sendq q;
	struct fake f;

	for (int i = 0; i < 100; i++)
		reg_add(r, IKETCP_CLASS_ESP, 50);
	for (int i = 0; i < 20; i++)
		reg_add(r, IKETCP_CLASS_IKE, 100);
	for (size_t id = 100; id < 120; id++)
		want[n++] = id;
	for (size_t id = 0; id < 100; id++)
		want[n++] = id;

	q_init(&q, 0, 0);
	for (size_t id = 0; id < r->n; id++)
		push_ok(&q, r, id);
	fake_init(&f, 1);
	f.max = 1000; /* 7000 bytes: 7 calls, each spanning many frames */
	assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_OK);
	assert_wire(&f, r, want, 120);
	assert_int_equal(q.stats.writev_calls, 7);
	assert_int_equal(q.stats.partial_writes, 6);
	assert_int_equal(q.stats.frames_out[IKETCP_CLASS_ESP], 100);
	assert_int_equal(q.stats.frames_out[IKETCP_CLASS_IKE], 20);
	assert_true(q.stats.frames_out[0] + q.stats.frames_out[1] > 10 * q.stats.writev_calls);
	free(f.wire);
	iketcp_sendq_free(&q);
	reg_free(r);
}

static void
test_writer_again_and_zero(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	size_t want[] = {reg_add(r, IKETCP_CLASS_ESP, 80), reg_add(r, IKETCP_CLASS_ESP, 90)};
	static const long results[] = {IKETCP_E_AGAIN, 0};
	struct iketcp_sendq q;
	struct snap s;
	struct fake f;

	q_init(&q, 0, 0);
	push_ok(&q, r, want[0]);
	push_ok(&q, r, want[1]);
	fake_init(&f, 1);
	for (size_t i = 0; i < TU_ARRAY_LEN(results); i++) {
		snap_take(&q, &s);
		f.forcing = 1;
		f.force = results[i];
		assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_E_AGAIN);
		assert_unchanged(&q, &s);
		assert_int_equal(q.stats.writev_calls, 0);
		assert_int_equal(f.len, 0);
	}
	/* a partial write, then the socket is full again */
	f.forcing = 0;
	f.allow = 85;
	assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_E_AGAIN);
	assert_int_equal(iketcp_sendq_bytes(&q), 85);
	assert_int_equal(q.stats.writev_calls, 1);
	assert_int_equal(q.stats.partial_writes, 1);
	assert_int_equal(q.stats.frames_out[IKETCP_CLASS_ESP], 1);
	f.allow = SIZE_MAX;
	assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_OK);
	assert_wire(&f, r, want, 2);
	free(f.wire);
	iketcp_sendq_free(&q);
	reg_free(r);
}

static void
test_writer_error(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	size_t want[] = {reg_add(r, IKETCP_CLASS_IKE, 80), reg_add(r, IKETCP_CLASS_ESP, 90)};
	struct iketcp_sendq q;
	struct snap s;
	struct fake f;

	q_init(&q, 0, 0);
	push_ok(&q, r, want[0]);
	push_ok(&q, r, want[1]);
	fake_init(&f, 1);
	f.allow = 30; /* part of the IKE frame goes out first */
	assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_E_AGAIN);
	snap_take(&q, &s);
	f.forcing = 1;
	f.force = IKETCP_E_IO;
	f.force_errno = EPIPE;
	errno = 0;
	assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_E_IO);
	assert_int_equal(errno, EPIPE); /* the writer's errno reaches the caller */
	assert_unchanged(&q, &s);
	/* any other negative value is an I/O error too */
	f.force = -77;
	assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_E_IO);
	assert_unchanged(&q, &s);
	/* a writer that claims more than it was given is broken: E_IO, nothing consumed */
	f.force = 171;
	assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_E_IO);
	assert_unchanged(&q, &s);
	f.forcing = 0;
	f.allow = SIZE_MAX;
	assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_OK);
	assert_wire(&f, r, want, 2);
	free(f.wire);
	iketcp_sendq_free(&q);
	reg_free(r);
}

/* ---- ordering: IKE overtakes queued ESP, never a started frame ---------------------------- */

static void
test_ike_overtakes_esp(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	size_t e1 = reg_add(r, IKETCP_CLASS_ESP, 122), e2 = reg_add(r, IKETCP_CLASS_ESP, 60);
	size_t e3 = reg_add(r, IKETCP_CLASS_ESP, 70), i1 = reg_add(r, IKETCP_CLASS_IKE, 100);

	/* k bytes of ESP1 are on the wire when the IKE frame is pushed */
	for (size_t k = 0; k <= r->len[e1]; k++) {
		struct iketcp_sendq q;
		struct fake f;
		struct checker chk;

		q_init(&q, 0, 0);
		push_ok(&q, r, e1);
		push_ok(&q, r, e2);
		push_ok(&q, r, e3);
		fake_init(&f, k);
		checker_init(&chk, r);
		f.chk = &chk;
		f.allow = k;
		assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_E_AGAIN);
		assert_int_equal(q.inprog, k > 0 && k < r->len[e1] ? IKETCP_CLASS_ESP : -1);
		push_ok(&q, r, i1);
		f.allow = SIZE_MAX;
		f.random = 1; /* and the rest in random pieces */
		f.max = 40;
		flush_all(&q, &f);
		if (k == 0) {
			size_t want[] = {i1, e1, e2, e3};
			assert_wire(&f, r, want, 4);
		} else {
			size_t want[] = {e1, i1, e2, e3}; /* rest of ESP1, IKE, ESP2.. */
			assert_wire(&f, r, want, 4);
		}
		assert_int_equal(q.stats.overtakes, 1);
		free(f.wire);
		iketcp_sendq_free(&q);
	}
	reg_free(r);
}

/* An IKE frame queued behind nothing (or only behind IKE) overtakes nothing. */
static void
test_overtakes_counts_only_real_overtakes(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	size_t i1 = reg_add(r, IKETCP_CLASS_IKE, 40), e1 = reg_add(r, IKETCP_CLASS_ESP, 40);
	size_t i2 = reg_add(r, IKETCP_CLASS_IKE, 40);
	size_t want[] = {i1, i2, e1};
	struct iketcp_sendq q;
	struct fake f;

	q_init(&q, 0, 0);
	push_ok(&q, r, i1); /* queued before the ESP frame: not an overtake */
	push_ok(&q, r, e1);
	push_ok(&q, r, i2); /* queued after it and sent before it: one */
	fake_init(&f, 1);
	flush_all(&q, &f);
	assert_wire(&f, r, want, 3);
	assert_int_equal(q.stats.overtakes, 1);
	free(f.wire);
	iketcp_sendq_free(&q);
	reg_free(r);
}

static void
test_ike_fifo(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	size_t i1 = reg_add(r, IKETCP_CLASS_IKE, 50), e1 = reg_add(r, IKETCP_CLASS_ESP, 33);
	size_t i2 = reg_add(r, IKETCP_CLASS_IKE, 300), e2 = reg_add(r, IKETCP_CLASS_ESP, 44);
	size_t i3 = reg_add(r, IKETCP_CLASS_IKE, 34);
	size_t want[] = {i1, i2, i3, e1, e2};

	for (uint64_t seed = 0; seed < 200; seed++) {
		struct iketcp_sendq q;
		struct fake f;
		struct checker chk;

		q_init(&q, 0, 0);
		for (size_t id = 0; id < r->n; id++)
			push_ok(&q, r, id);
		fake_init(&f, seed);
		checker_init(&chk, r);
		f.chk = &chk;
		f.random = 1;
		f.max = 1 + seed % 64;
		flush_all(&q, &f);
		assert_wire(&f, r, want, 5);
		free(f.wire);
		iketcp_sendq_free(&q);
	}
	reg_free(r);
}

/* A started IKE frame is finished before a later IKE or ESP frame. */
static void
test_started_ike_finishes_first(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	size_t i1 = reg_add(r, IKETCP_CLASS_IKE, 200), i2 = reg_add(r, IKETCP_CLASS_IKE, 60);
	size_t e1 = reg_add(r, IKETCP_CLASS_ESP, 70), i3 = reg_add(r, IKETCP_CLASS_IKE, 80);
	size_t want[] = {i1, i2, i3, e1};
	struct iketcp_sendq q;
	struct fake f;

	q_init(&q, 0, 0);
	push_ok(&q, r, i1);
	fake_init(&f, 1);
	f.allow = 150;
	assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_E_AGAIN);
	assert_int_equal(q.inprog, IKETCP_CLASS_IKE);
	assert_int_equal(q.inprog_left, 50);
	push_ok(&q, r, i2);
	push_ok(&q, r, e1);
	push_ok(&q, r, i3);
	f.allow = SIZE_MAX;
	flush_all(&q, &f);
	assert_wire(&f, r, want, 4);
	free(f.wire);
	iketcp_sendq_free(&q);
	reg_free(r);
}

/* ---- randomised: many writers, many operation sequences -------------------------------------- */

static void
test_random_writer_many_seeds(void **state)
{
	(void)state;
	static const size_t maxes[] = {1, 2, 7, 100, 1500, 0};

	for (uint64_t seed = 0; seed < 300; seed++) {
		struct tu_rng rng;
		struct reg *r = reg_new();
		struct iketcp_sendq q;
		struct fake f;
		struct checker chk;
		struct model m;
		size_t nframes;

		tu_rng_seed(&rng, seed);
		nframes = (size_t)tu_rng_range(&rng, 1, 40);
		for (size_t i = 0; i < nframes; i++) {
			int cls = (int)tu_rng_below(&rng, 2);
			reg_add(r, cls, (size_t)tu_rng_range(&rng, cls ? 10 : 34, 1500));
		}
		q_init(&q, 0, 0);
		model_init(&m, r, q.budget, q.hard_cap);
		for (size_t id = 0; id < r->n; id++) {
			assert_int_equal(model_push(&m, id), IKETCP_OK);
			push_ok(&q, r, id);
		}
		fake_init(&f, seed);
		checker_init(&chk, r);
		f.chk = &chk;
		f.random = 1;
		f.max = maxes[seed % TU_ARRAY_LEN(maxes)];
		flush_all(&q, &f);
		model_emit(&m, m.queued);
		/* (b): exactly the expected frames in the expected order */
		assert_int_equal(f.len, m.len);
		assert_memory_equal(f.wire, m.wire, m.len);
		assert_int_equal(chk.pos, f.len); /* the wire ends on a frame boundary */
		assert_int_equal(q.stats.frames_out[0], m.frames_out[0]);
		assert_int_equal(q.stats.frames_out[1], m.frames_out[1]);
		assert_int_equal(q.stats.writev_calls, f.wrote);
		assert_int_equal(q.stats.overtakes, m.overtakes);
		free(f.wire);
		free(m.wire);
		iketcp_sendq_free(&q);
		reg_free(r);
	}
}

/* Writes n bytes via iov()/consume() as an event loop without flush() would. */
static void
manual_write(struct iketcp_sendq *q, struct fake *f, size_t n)
{
	struct iovec iov[IKETCP_SENDQ_IOV_MAX];
	int cnt = iketcp_sendq_iov(q, iov);
	size_t copied = 0;

	assert_true(cnt >= 0 && cnt <= IKETCP_SENDQ_IOV_MAX);
	assert_true(n <= iketcp_sendq_bytes(q));
	while (f->len + n > f->cap) {
		f->cap *= 2;
		f->wire = realloc(f->wire, f->cap);
		assert_non_null(f->wire);
	}
	for (int i = 0; i < cnt && copied < n; i++) {
		size_t k = iov[i].iov_len < n - copied ? iov[i].iov_len : n - copied;
		memcpy(f->wire + f->len + copied, iov[i].iov_base, k);
		copied += k;
	}
	assert_int_equal(copied, n);
	assert_int_equal(iketcp_sendq_consume(q, n), IKETCP_OK);
	f->len += n;
	if (f->chk)
		checker_run(f->chk, f->wire, f->len);
}

static void
test_random_operations_vs_model(void **state)
{
	(void)state;
	int iovcnt_max = 0;

	for (uint64_t seed = 0; seed < 150; seed++) {
		struct tu_rng rng;
		struct reg *r = reg_new();
		struct iketcp_sendq q;
		struct fake f;
		struct checker chk;
		struct model m;
		size_t budget, reserve;

		tu_rng_seed(&rng, 0x5e4d0000 + seed);
		/* small budgets: rings wrap and drops happen */
		budget = (size_t)tu_rng_range(&rng, 40, 6000);
		reserve = (size_t)tu_rng_range(&rng, 1, 3000);
		q_init(&q, budget, reserve);
		model_init(&m, r, budget, budget + reserve);
		fake_init(&f, seed);
		checker_init(&chk, r);
		f.chk = &chk;
		f.random = 1;
		for (int op = 0; op < 400 && r->n < MAXF; op++) {
			uint64_t what = tu_rng_below(&rng, 10);
			if (what < 5) { /* push IKE or ESP, by frame or datagram */
				int cls = what < 2 ? IKETCP_CLASS_IKE : IKETCP_CLASS_ESP;
				size_t hi = tu_rng_below(&rng, 8) ? 300 : 2500;
				size_t id = reg_add(r, cls,
						    (size_t)tu_rng_range(&rng, cls ? 10 : 34, hi));
				int want = model_push(&m, id), rc;
				if (what == 4)
					rc = iketcp_sendq_push_datagram(&q, r->data[id] + 2,
									r->len[id] - 2);
				else
					rc = iketcp_sendq_push(&q, (enum iketcp_class)cls,
							       r->data[id], r->len[id], NULL, 0);
				assert_int_equal(rc, want);
			} else if (what < 8) { /* flush through a random writer */
				size_t before = f.len;
				f.max = (size_t)tu_rng_range(&rng, 1, 600);
				f.allow = (size_t)tu_rng_below(&rng, 2000);
				int rc = iketcp_sendq_flush(&q, fake_writev, &f);
				assert_true(rc == IKETCP_OK || rc == IKETCP_E_AGAIN);
				model_emit(&m, f.len - before);
				assert_int_equal(rc == IKETCP_OK, m.queued == 0);
			} else { /* iov + consume by hand */
				size_t n = (size_t)tu_rng_below(&rng, iketcp_sendq_bytes(&q) + 1);
				manual_write(&q, &f, n);
				model_emit(&m, n);
			}
			/* invariants after every step */
			assert_int_equal(iketcp_sendq_bytes(&q), m.queued);
			assert_int_equal(iketcp_sendq_class_bytes(&q, IKETCP_CLASS_IKE),
					 model_class_bytes(&m, IKETCP_CLASS_IKE));
			assert_int_equal(iketcp_sendq_class_bytes(&q, IKETCP_CLASS_ESP),
					 model_class_bytes(&m, IKETCP_CLASS_ESP));
			assert_true(iketcp_sendq_bytes(&q) <= budget + reserve);
			assert_int_equal(f.len, m.len);
			assert_memory_equal(f.wire, m.wire, m.len);
			assert_int_equal(q.inprog, m.cur < 0 ? -1 : r->cls[m.cur]);
			assert_int_equal(q.stats.dropped[0], m.dropped[0]);
			assert_int_equal(q.stats.dropped[1], m.dropped[1]);
			assert_int_equal(q.stats.overtakes, m.overtakes);
		}
		if (f.iovcnt_max > iovcnt_max)
			iovcnt_max = f.iovcnt_max;
		f.max = 0;
		f.allow = SIZE_MAX;
		flush_all(&q, &f);
		model_emit(&m, m.queued);
		assert_int_equal(f.len, m.len);
		assert_memory_equal(f.wire, m.wire, m.len);
		assert_int_equal(chk.pos, f.len);
		assert_int_equal(q.stats.frames_out[0], m.frames_out[0]);
		assert_int_equal(q.stats.frames_out[1], m.frames_out[1]);
		free(f.wire);
		free(m.wire);
		iketcp_sendq_free(&q);
		reg_free(r);
	}
	/* coverage guard: a started frame plus both rings wrapped was seen */
	assert_true(iovcnt_max >= 5);
}

/* ---- budget ------------------------------------------------------------------------------------
 */

static void
test_budget_drops_esp_keeps_ike(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	struct iketcp_sendq q;
	struct snap s;
	struct fake f;
	size_t e[5], i[4];

	for (int k = 0; k < 4; k++)
		e[k] = reg_add(r, IKETCP_CLASS_ESP, 300);
	e[4] = reg_add(r, IKETCP_CLASS_ESP, 100);
	i[0] = reg_add(r, IKETCP_CLASS_IKE, 300);
	i[1] = reg_add(r, IKETCP_CLASS_IKE, 200);
	i[2] = reg_add(r, IKETCP_CLASS_IKE, 34);
	i[3] = reg_add(r, IKETCP_CLASS_IKE, 100);

	q_init(&q, 1000, 500); /* ESP up to 1000 queued bytes, IKE up to 1500 */
	push_ok(&q, r, e[0]);
	push_ok(&q, r, e[1]);
	push_ok(&q, r, e[2]);
	snap_take(&q, &s);
	/* 900 + 300 > 1000: dropped, counted, queue unchanged */
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_ESP, r->data[e[3]], 300, NULL, 0),
			 IKETCP_E_NOBUFS);
	assert_int_equal(q.stats.dropped[IKETCP_CLASS_ESP], 1);
	assert_int_equal(q.stats.dropped_bytes[IKETCP_CLASS_ESP], 300);
	s.stats.dropped[IKETCP_CLASS_ESP] = 1;
	s.stats.dropped_bytes[IKETCP_CLASS_ESP] = 300;
	assert_unchanged(&q, &s);
	push_ok(&q, r, e[4]); /* exactly 1000: still accepted */
	assert_int_equal(iketcp_sendq_bytes(&q), 1000);
	/* IKE goes past the budget, up to budget + ike_reserve */
	push_ok(&q, r, i[0]);
	push_ok(&q, r, i[1]);
	assert_int_equal(iketcp_sendq_bytes(&q), 1500);
	snap_take(&q, &s);
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_IKE, r->data[i[2]], 34, NULL, 0),
			 IKETCP_E_NOBUFS);
	assert_int_equal(q.stats.dropped[IKETCP_CLASS_IKE], 1);
	assert_int_equal(q.stats.dropped_bytes[IKETCP_CLASS_IKE], 34);
	assert_int_equal(q.stats.dropped[IKETCP_CLASS_ESP], 1);
	assert_int_equal(iketcp_sendq_bytes(&q), 1500);
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_ESP, r->data[e[3]], 300, NULL, 0),
			 IKETCP_E_NOBUFS);
	assert_int_equal(q.stats.dropped[IKETCP_CLASS_ESP], 2);
	/* draining 600 bytes (both IKE frames, then 100 bytes of e0) makes room */
	fake_init(&f, 1);
	f.allow = 600;
	assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_E_AGAIN);
	assert_int_equal(iketcp_sendq_bytes(&q), 900);
	assert_int_equal(iketcp_sendq_class_bytes(&q, IKETCP_CLASS_IKE), 0);
	assert_int_equal(q.inprog, IKETCP_CLASS_ESP);
	push_ok(&q, r, i[3]); /* 1000 <= 1500 */
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_ESP, r->data[e[3]], 300, NULL, 0),
			 IKETCP_E_NOBUFS); /* 1000 + 300 > 1000 */
	assert_int_equal(q.stats.dropped[IKETCP_CLASS_ESP], 3);
	assert_int_equal(q.stats.dropped_bytes[IKETCP_CLASS_ESP], 900);
	f.allow = SIZE_MAX;
	flush_all(&q, &f);
	/* the started e0 is finished before i3; dropped frames never appear */
	size_t want[] = {i[0], i[1], e[0], i[3], e[1], e[2], e[4]};
	assert_wire(&f, r, want, 7);
	assert_int_equal(q.stats.frames_out[IKETCP_CLASS_ESP], 4);
	assert_int_equal(q.stats.frames_out[IKETCP_CLASS_IKE], 3);
	free(f.wire);
	iketcp_sendq_free(&q);
	reg_free(r);
}

/* ---- consume, iov, trim, free
 * -------------------------------------------------------------------- */

static void
test_consume_too_many(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	size_t a = reg_add(r, IKETCP_CLASS_ESP, 30), b = reg_add(r, IKETCP_CLASS_IKE, 40);
	struct iketcp_sendq q;
	struct snap s;

	q_init(&q, 0, 0);
	push_ok(&q, r, a);
	push_ok(&q, r, b);
	snap_take(&q, &s);
	assert_int_equal(iketcp_sendq_consume(&q, 71), IKETCP_E_INVAL);
	assert_int_equal(iketcp_sendq_consume(&q, SIZE_MAX), IKETCP_E_INVAL);
	assert_unchanged(&q, &s);
	assert_int_equal(iketcp_sendq_consume(&q, 0), IKETCP_OK);
	assert_unchanged(&q, &s);
	assert_int_equal(iketcp_sendq_consume(&q, 45), IKETCP_OK); /* IKE + 5 of ESP */
	assert_int_equal(q.inprog, IKETCP_CLASS_ESP);
	assert_int_equal(q.inprog_left, 25);
	snap_take(&q, &s);
	assert_int_equal(iketcp_sendq_consume(&q, 26), IKETCP_E_INVAL);
	assert_unchanged(&q, &s);
	assert_int_equal(iketcp_sendq_consume(&q, 25), IKETCP_OK);
	assert_int_equal(iketcp_sendq_bytes(&q), 0);
	assert_int_equal(q.inprog, -1);
	assert_int_equal(iketcp_sendq_consume(&q, 1), IKETCP_E_INVAL);
	iketcp_sendq_free(&q);
	reg_free(r);
}

/* A ring that wraps around is handed out as two iovecs, in order. */
static void
test_iov_ring_wrap(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	size_t e[4];
	struct iketcp_sendq q;
	struct iovec iov[IKETCP_SENDQ_IOV_MAX];
	struct fake f;

	for (int k = 0; k < 4; k++)
		e[k] = reg_add(r, IKETCP_CLASS_ESP, 30);
	q_init(&q, 100, 1); /* the ESP ring holds 100 bytes */
	push_ok(&q, r, e[0]);
	push_ok(&q, r, e[1]);
	push_ok(&q, r, e[2]);
	fake_init(&f, 1);
	manual_write(&q, &f, 70); /* e0, e1 and 10 bytes of e2: head at 70 */
	push_ok(&q, r, e[3]);     /* occupies 90..100 and 0..20 */
	assert_int_equal(iketcp_sendq_iov(&q, iov), 3);
	/* rest of e2, then e3 in two pieces */
	assert_int_equal(iov[0].iov_len, 20);
	assert_int_equal(iov[1].iov_len, 10);
	assert_int_equal(iov[2].iov_len, 20);
	assert_ptr_equal(iov[2].iov_base, q.ring[IKETCP_CLASS_ESP].buf);
	f.max = 0;
	flush_all(&q, &f);
	assert_wire(&f, r, e, 4);
	free(f.wire);
	iketcp_sendq_free(&q);
	reg_free(r);
}

/* A drained ring starts over at its beginning, so the next frames need one
 * iovec instead of two (sendq.c: ring_consume()). */
static void
test_iov_contiguous_after_drain(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	size_t e[4];
	struct iketcp_sendq q;
	struct iovec iov[IKETCP_SENDQ_IOV_MAX];
	struct fake f;

	for (int k = 0; k < 4; k++)
		e[k] = reg_add(r, IKETCP_CLASS_ESP, 40);
	q_init(&q, 100, 1);
	push_ok(&q, r, e[0]);
	push_ok(&q, r, e[1]);
	fake_init(&f, 1);
	manual_write(&q, &f, 80); /* empty again, after 80 bytes of ring */
	push_ok(&q, r, e[2]);     /* would wrap at 100 without the reset */
	push_ok(&q, r, e[3]);
	assert_int_equal(iketcp_sendq_iov(&q, iov), 1);
	assert_ptr_equal(iov[0].iov_base, q.ring[IKETCP_CLASS_ESP].buf);
	assert_int_equal(iov[0].iov_len, 80);
	flush_all(&q, &f);
	assert_wire(&f, r, e, 4);
	free(f.wire);
	iketcp_sendq_free(&q);
	reg_free(r);
}

static void
test_trim(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	size_t i1 = reg_add(r, IKETCP_CLASS_IKE, 50), e1 = reg_add(r, IKETCP_CLASS_ESP, 60);
	size_t want[] = {i1, e1, i1, e1};
	struct iketcp_sendq q;
	struct fake f;

	q_init(&q, 0, 0);
	iketcp_sendq_trim(&q); /* nothing allocated: no-op */
	push_ok(&q, r, i1);
	push_ok(&q, r, e1);
	assert_non_null(q.ring[IKETCP_CLASS_IKE].buf);
	assert_non_null(q.ring[IKETCP_CLASS_ESP].buf);
	fake_init(&f, 1);
	f.allow = 70; /* the IKE frame and 20 bytes of the ESP frame */
	assert_int_equal(iketcp_sendq_flush(&q, fake_writev, &f), IKETCP_E_AGAIN);
	iketcp_sendq_trim(&q);
	/* empty, but used since the last trim: kept, so that a connection
	 * that trims whenever its queue empties does not allocate per frame */
	assert_non_null(q.ring[IKETCP_CLASS_IKE].buf);
	assert_non_null(q.ring[IKETCP_CLASS_ESP].buf); /* holds 40 bytes: kept */
	assert_int_equal(iketcp_sendq_class_bytes(&q, IKETCP_CLASS_ESP), 40);
	iketcp_sendq_trim(&q);
	assert_null(q.ring[IKETCP_CLASS_IKE].buf); /* idle for a whole period: released */
	assert_non_null(q.ring[IKETCP_CLASS_ESP].buf);
	assert_int_equal(q.stats.trims, 1);
	f.allow = SIZE_MAX;
	flush_all(&q, &f);
	iketcp_sendq_trim(&q); /* held bytes at the last trim: used, kept once more */
	assert_non_null(q.ring[IKETCP_CLASS_ESP].buf);
	iketcp_sendq_trim(&q);
	assert_null(q.ring[IKETCP_CLASS_IKE].buf);
	assert_null(q.ring[IKETCP_CLASS_ESP].buf);
	assert_int_equal(q.stats.trims, 2);
	/* still usable: rings come back on the next push */
	push_ok(&q, r, i1);
	push_ok(&q, r, e1);
	flush_all(&q, &f);
	assert_wire(&f, r, want, 4);
	free(f.wire);
	iketcp_sendq_free(&q);
	reg_free(r);
}

/* Rings start at IKETCP_SENDQ_RING_MIN and double only when a frame does
 * not fit; the memory budget's counter follows the capacity. */
static void
test_ring_grows_on_demand(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	struct iketcp_sendq q;
	struct fake f;
	size_t ids[300], n = 0, used0 = iketcp_mem_used();

	q_init(&q, 0, 0);                          /* budget 256 KiB */
	assert_null(q.ring[IKETCP_CLASS_ESP].buf); /* init allocates nothing */
	assert_int_equal(iketcp_mem_used(), used0);
	ids[n] = reg_add(r, IKETCP_CLASS_ESP, 1000);
	push_ok(&q, r, ids[n++]);
	assert_int_equal(q.ring[IKETCP_CLASS_ESP].cap, IKETCP_SENDQ_RING_MIN);
	assert_int_equal(iketcp_mem_used() - used0, IKETCP_SENDQ_RING_MIN);
	ids[n] = reg_add(r, IKETCP_CLASS_ESP, 1000);
	push_ok(&q, r, ids[n++]); /* 2000 bytes: still fits */
	assert_int_equal(q.ring[IKETCP_CLASS_ESP].cap, IKETCP_SENDQ_RING_MIN);
	assert_int_equal(q.stats.grows, 1);
	ids[n] = reg_add(r, IKETCP_CLASS_ESP, 1000);
	push_ok(&q, r, ids[n++]);
	assert_int_equal(q.ring[IKETCP_CLASS_ESP].cap, 2 * IKETCP_SENDQ_RING_MIN);
	assert_int_equal(iketcp_mem_used() - used0, 2 * IKETCP_SENDQ_RING_MIN);
	assert_int_equal(q.stats.grows, 2);
	/* fill to the budget: doubling, never beyond it */
	while (iketcp_sendq_bytes(&q) + 1000 <= IKETCP_SENDQ_DEFAULT_BUDGET) {
		ids[n] = reg_add(r, IKETCP_CLASS_ESP, 1000);
		push_ok(&q, r, ids[n++]);
		assert_true(q.ring[IKETCP_CLASS_ESP].cap >= iketcp_sendq_bytes(&q));
		assert_true(q.ring[IKETCP_CLASS_ESP].cap <= IKETCP_SENDQ_DEFAULT_BUDGET);
	}
	assert_int_equal(q.ring[IKETCP_CLASS_ESP].cap, IKETCP_SENDQ_DEFAULT_BUDGET);
	assert_int_equal(q.stats.grows, 8);        /* 2, 4, ... 128 KiB, then 256 KiB */
	assert_null(q.ring[IKETCP_CLASS_IKE].buf); /* the other class costs nothing */
	fake_init(&f, 7);
	flush_all(&q, &f);
	assert_wire(&f, r, ids, n);
	free(f.wire);
	iketcp_sendq_free(&q);
	assert_int_equal(iketcp_mem_used(), used0);
	reg_free(r);
}

/* Growing a wrapped ring moves its bytes in queue order, and a frame that
 * was partly written stays the one that is finished first. */
static void
test_grow_keeps_order_when_wrapped(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	struct iketcp_sendq q;
	struct fake f;
	size_t ids[8], n = 0;

	q_init(&q, 0, 0);
	fake_init(&f, 3);
	for (int i = 0; i < 3; i++) {
		ids[n] = reg_add(r, IKETCP_CLASS_ESP, 600);
		push_ok(&q, r, ids[n++]);
	}
	manual_write(&q, &f, 1000);   /* frame 0 done, frame 1 started, head at 1000 */
	for (int i = 0; i < 2; i++) { /* 1800 + 1200 bytes: wraps in 2048 */
		ids[n] = reg_add(r, IKETCP_CLASS_ESP, 600);
		push_ok(&q, r, ids[n++]);
	}
	assert_int_equal(q.ring[IKETCP_CLASS_ESP].cap, IKETCP_SENDQ_RING_MIN);
	struct iovec iov[IKETCP_SENDQ_IOV_MAX];
	assert_true(iketcp_sendq_iov(&q, iov) >= 2); /* really wrapped */
	ids[n] = reg_add(r, IKETCP_CLASS_ESP, 600);  /* 2400 bytes: grows */
	push_ok(&q, r, ids[n++]);
	assert_int_equal(q.ring[IKETCP_CLASS_ESP].cap, 2 * IKETCP_SENDQ_RING_MIN);
	assert_int_equal(q.ring[IKETCP_CLASS_ESP].head, 0);
	assert_int_equal(q.inprog, IKETCP_CLASS_ESP);
	ids[n] = reg_add(r, IKETCP_CLASS_IKE, 100); /* must not cut into frame 1 */
	push_ok(&q, r, ids[n++]);
	flush_all(&q, &f);
	size_t want[] = {ids[0], ids[1], ids[6], ids[2], ids[3], ids[4], ids[5]};
	assert_wire(&f, r, want, 7);
	free(f.wire);
	iketcp_sendq_free(&q);
	reg_free(r);
}

/* After a burst the ring is kept while bursts of that size go on, and is
 * released once a whole trim period saw less than a quarter of it. */
static void
test_trim_shrinks_after_burst(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	struct iketcp_sendq q;
	struct fake f;
	size_t big[40], small = reg_add(r, IKETCP_CLASS_ESP, 1000);
	size_t used0 = iketcp_mem_used();

	for (size_t i = 0; i < 40; i++)
		big[i] = reg_add(r, IKETCP_CLASS_ESP, 1000);
	q_init(&q, 0, 0);
	fake_init(&f, 5);
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < 40; i++)
			push_ok(&q, r, big[i]);
		flush_all(&q, &f);
		iketcp_sendq_trim(&q);
		assert_int_equal(q.ring[IKETCP_CLASS_ESP].cap, 64 * 1024);
	}
	assert_int_equal(q.stats.grows, 6); /* once, in the first round */
	push_ok(&q, r, small);
	flush_all(&q, &f);
	iketcp_sendq_trim(&q); /* peak 1000 <= 64 KiB / 4 */
	assert_null(q.ring[IKETCP_CLASS_ESP].buf);
	assert_int_equal(iketcp_mem_used(), used0);
	push_ok(&q, r, small);
	assert_int_equal(q.ring[IKETCP_CLASS_ESP].cap, IKETCP_SENDQ_RING_MIN);
	flush_all(&q, &f);
	iketcp_sendq_trim(&q); /* at the minimum and used: kept */
	assert_int_equal(q.ring[IKETCP_CLASS_ESP].cap, IKETCP_SENDQ_RING_MIN);
	free(f.wire);
	iketcp_sendq_free(&q);
	reg_free(r);
}

/* The process memory budget: ESP growth is refused and counted like a full
 * queue; IKE may still grow to IKETCP_MEM_IKE_FLOOR, not beyond. */
static void
test_mem_limit_refuses_growth(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	struct iketcp_sendq q, q2, q3;
	struct fake f;
	size_t esp1 = reg_add(r, IKETCP_CLASS_ESP, 1500), esp2 = reg_add(r, IKETCP_CLASS_ESP, 1500);
	size_t ike[8];
	size_t used0 = iketcp_mem_used();
	uint64_t ref0 = iketcp_mem_refused();

	for (size_t i = 0; i < 8; i++)
		ike[i] = reg_add(r, IKETCP_CLASS_IKE, 1500);
	q_init(&q, 0, 0);
	q_init(&q2, 0, 0);
	q_init(&q3, 0, 0);
	size_t limit = used0 + 5 * IKETCP_SENDQ_RING_MIN / 2; /* 5 KiB */
	iketcp_mem_set_limit(limit);
	assert_int_equal(iketcp_mem_limit(), limit);
	push_ok(&q, r, esp1); /* 2 KiB */
	/* growing to 4 KiB takes 4 more while the 2 are held: 6 > 5 */
	assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_ESP, r->data[esp2], 2,
					   r->data[esp2] + 2, r->len[esp2] - 2),
			 IKETCP_E_NOBUFS);
	assert_int_equal(q.stats.dropped[IKETCP_CLASS_ESP], 1);
	assert_int_equal(q.stats.dropped_bytes[IKETCP_CLASS_ESP], 1500);
	assert_int_equal(q.stats.mem_refused, 1);
	assert_int_equal(iketcp_mem_refused(), ref0 + 1);
	assert_int_equal(iketcp_sendq_bytes(&q), 1500); /* unchanged */
	assert_int_equal(q.ring[IKETCP_CLASS_ESP].cap, IKETCP_SENDQ_RING_MIN);
	/* another connection's first ESP ring still fits (2 + 2 <= 6 KiB) */
	push_ok(&q2, r, esp1);
	assert_int_equal(iketcp_mem_used() - used0, 2 * IKETCP_SENDQ_RING_MIN);
	/* IKE up to the floor is never refused, though 4 + 8 KiB > 6 KiB */
	size_t k = 0;
	while ((k + 1) * 1500 <= IKETCP_MEM_IKE_FLOOR)
		push_ok(&q2, r, ike[k++]);
	assert_int_equal(q2.ring[IKETCP_CLASS_IKE].cap, IKETCP_MEM_IKE_FLOOR);
	assert_true(iketcp_mem_used() > iketcp_mem_limit());
	assert_int_equal(iketcp_mem_refused(), ref0 + 1);
	/* beyond the floor IKE is refused too */
	assert_int_equal(iketcp_sendq_push(&q2, IKETCP_CLASS_IKE, r->data[ike[k]], 2,
					   r->data[ike[k]] + 2, r->len[ike[k]] - 2),
			 IKETCP_E_NOBUFS);
	assert_int_equal(q2.stats.dropped[IKETCP_CLASS_IKE], 1);
	assert_int_equal(iketcp_mem_refused(), ref0 + 2);
	/* memory given back makes room again */
	assert_int_equal(iketcp_sendq_push(&q3, IKETCP_CLASS_ESP, r->data[esp2], 2,
					   r->data[esp2] + 2, r->len[esp2] - 2),
			 IKETCP_E_NOBUFS);
	iketcp_sendq_free(&q2);
	push_ok(&q3, r, esp2);
	iketcp_sendq_free(&q3);
	iketcp_mem_set_limit(0);
	push_ok(&q, r, esp2);
	fake_init(&f, 9);
	flush_all(&q, &f);
	size_t want[] = {esp1, esp2};
	assert_wire(&f, r, want, 2);
	free(f.wire);
	iketcp_sendq_free(&q);
	assert_int_equal(iketcp_mem_used(), used0);
	reg_free(r);
}

static void
test_free_releases(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	struct iketcp_sendq q;

	iketcp_sendq_free(NULL);
	q_init(&q, 0, 0);
	push_ok(&q, r, reg_add(r, IKETCP_CLASS_IKE, 40));
	push_ok(&q, r, reg_add(r, IKETCP_CLASS_ESP, 40));
	assert_int_equal(iketcp_sendq_consume(&q, 10), IKETCP_OK);
	iketcp_sendq_free(&q); /* ASan/LSan: both rings released */
	assert_null(q.ring[0].buf);
	assert_null(q.ring[1].buf);
	assert_int_equal(q.inprog, -1);
	assert_int_equal(iketcp_sendq_bytes(&q), 0);
	iketcp_sendq_free(&q); /* twice is harmless */
	reg_free(r);
}

/*
 * iketcp_sendq_standing(): the clock is the caller's, so every case is a
 * sequence of calls at chosen instants, nothing timed.
 */
static void
test_standing(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	struct iketcp_sendq q;
	size_t e0 = reg_add(r, IKETCP_CLASS_ESP, 300);
	size_t e1 = reg_add(r, IKETCP_CLASS_ESP, 300);
	size_t i0 = reg_add(r, IKETCP_CLASS_IKE, 100);

	q_init(&q, 4096, 1024);
	assert_int_equal(iketcp_sendq_standing(&q, 100, 10, 0), 0); /* empty */
	push_ok(&q, r, e0);
	/* ESP queued since 100: standing once it stayed target = 10 */
	assert_int_equal(iketcp_sendq_standing(&q, 100, 10, 0), 0);
	assert_int_equal(iketcp_sendq_standing(&q, 109, 10, 0), 0);
	assert_int_equal(iketcp_sendq_standing(&q, 110, 10, 0), 1);
	/* partly written but never empty: the same standing period */
	push_ok(&q, r, e1);
	assert_int_equal(iketcp_sendq_consume(&q, 300), IKETCP_OK);
	assert_int_equal(iketcp_sendq_standing(&q, 111, 10, 0), 1);
	/* emptied: the period ends, the next one counts from its own start */
	assert_int_equal(iketcp_sendq_consume(&q, 300), IKETCP_OK);
	assert_int_equal(iketcp_sendq_standing(&q, 112, 10, 0), 0);
	push_ok(&q, r, e0);
	assert_int_equal(iketcp_sendq_standing(&q, 115, 10, 0), 0);
	assert_int_equal(iketcp_sendq_standing(&q, 124, 10, 0), 0);
	assert_int_equal(iketcp_sendq_standing(&q, 125, 10, 0), 1);
	assert_int_equal(iketcp_sendq_consume(&q, 300), IKETCP_OK);
	/* IKE left queued after a flush: standing at once, whatever ESP does */
	push_ok(&q, r, i0);
	assert_int_equal(iketcp_sendq_standing(&q, 200, 1000, 0), 1);
	assert_int_equal(iketcp_sendq_consume(&q, 100), IKETCP_OK);
	assert_int_equal(iketcp_sendq_standing(&q, 201, 1000, 0), 0);
	iketcp_sendq_free(&q);
	reg_free(r);
}

/* The hold: an empty moment inside an overload does not end it; a hold
 * without standing again does. */
static void
test_standing_hold(void **state)
{
	(void)state;
	struct reg *r = reg_new();
	struct iketcp_sendq q;
	size_t e0 = reg_add(r, IKETCP_CLASS_ESP, 300);

	q_init(&q, 4096, 1024);
	push_ok(&q, r, e0);
	assert_int_equal(iketcp_sendq_standing(&q, 1000, 10, 50), 0);
	assert_int_equal(iketcp_sendq_standing(&q, 1010, 10, 50), 1); /* stood: held to 1060 */
	assert_int_equal(iketcp_sendq_consume(&q, 300), IKETCP_OK);
	assert_int_equal(iketcp_sendq_standing(&q, 1011, 10, 50), 1); /* empty, still held */
	/* a short backlog (below target) does not extend the hold */
	push_ok(&q, r, e0);
	assert_int_equal(iketcp_sendq_standing(&q, 1040, 10, 50), 1);
	assert_int_equal(iketcp_sendq_standing(&q, 1049, 10, 50), 1);
	/* standing again at 1050 (queued since 1040): held to 1100 */
	assert_int_equal(iketcp_sendq_standing(&q, 1050, 10, 50), 1);
	assert_int_equal(iketcp_sendq_consume(&q, 300), IKETCP_OK);
	assert_int_equal(iketcp_sendq_standing(&q, 1099, 10, 50), 1);
	assert_int_equal(iketcp_sendq_standing(&q, 1100, 10, 50), 0); /* released */
	iketcp_sendq_free(&q);
	reg_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_defaults),
		cmocka_unit_test(test_init_validation),
		cmocka_unit_test(test_push_validation),
		cmocka_unit_test(test_push_head_body_forms),
		cmocka_unit_test(test_push_datagram),
		cmocka_unit_test(test_flush_all_at_once),
		cmocka_unit_test(test_many_frames_per_writev),
		cmocka_unit_test(test_writer_again_and_zero),
		cmocka_unit_test(test_writer_error),
		cmocka_unit_test(test_ike_overtakes_esp),
		cmocka_unit_test(test_overtakes_counts_only_real_overtakes),
		cmocka_unit_test(test_ike_fifo),
		cmocka_unit_test(test_started_ike_finishes_first),
		cmocka_unit_test(test_random_writer_many_seeds),
		cmocka_unit_test(test_random_operations_vs_model),
		cmocka_unit_test(test_budget_drops_esp_keeps_ike),
		cmocka_unit_test(test_consume_too_many),
		cmocka_unit_test(test_iov_ring_wrap),
		cmocka_unit_test(test_iov_contiguous_after_drain),
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_ring_grows_on_demand),
		cmocka_unit_test(test_grow_keeps_order_when_wrapped),
		cmocka_unit_test(test_trim_shrinks_after_burst),
		cmocka_unit_test(test_mem_limit_refuses_growth),
		cmocka_unit_test(test_free_releases),
		cmocka_unit_test(test_standing),
		cmocka_unit_test(test_standing_hold),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
