/*
 * Shared body of fuzz_deframer.c (no prefix) and fuzz_deframer_prefix.c
 * (TCP responder side, "IKETCP" expected).
 *
 * Input layout (missing header bytes make the input uninteresting):
 *
 *   byte 0     flags
 *                bits 0-1  max_frame: 0 -> cfg 0 (means 65535),
 *                          1 -> 3 + v % 256, 2 -> 3 + v % 65533,
 *                          3 -> 65535 given explicitly
 *                bit 2     caller-supplied assembly buffer of exactly
 *                          max_frame bytes (chunked run only)
 *                bits 3-4  trim: 0 never, 1 after every chunk,
 *                          2 after odd chunks, 3 before every chunk
 *                bit 5     feed an empty input after every chunk
 *                bit 6     after the stream, free the deframer and check
 *                          that it then refuses use
 *                bit 7     prefix target only: the harness puts a correct
 *                          "IKETCP" in front of the stream
 *   bytes 1-2  v, big-endian (see max_frame)
 *   byte 3     low 4 bits: K - 1, the number of chunk-size bytes
 *   K bytes    chunk sizes, used in turn: s < 0x80 gives s bytes (0 is an
 *              empty input), else (s & 0x7f) * 256 + 1 bytes
 *   the rest   the stream
 *
 * Each input runs three ways:
 *   1. a reference model (a dozen lines of byte arithmetic, docs/conformance.md, "Receiver states")
 *      computes the frames, the final error and the pending bytes;
 *   2. the deframer, fed in the chunks above, each chunk in its own exact
 *      heap allocation so that ASan sees any read past a socket read;
 *   3. the deframer, fed the whole stream at once.
 * Every frame handed out is checked (Length field, bounds, bytes equal to
 * the stream at the expected offset, classification), and after every
 * chunk the pending count, prefix state and stats must match what the
 * bytes fed so far imply. Runs 2 and 3 must then agree with each other and
 * with the model on the frame sequence and the final error.
 */
#ifndef IKETCP_FUZZ_DEFRAMER_HARNESS_H
#define IKETCP_FUZZ_DEFRAMER_HARNESS_H

#include "harness.h"

struct df_params {
	int expect_prefix;
	size_t cfg_max;   /* what goes into cfg.max_frame */
	size_t max_frame; /* the effective maximum */
	int caller_asm;
	int trim;
	int empty_between;
	int free_after;
	const uint8_t *sizes;
	size_t nsizes;
	int sizes_all_zero;
};

struct df_result {
	size_t *off; /* stream offset of each frame handed out */
	size_t *len;
	size_t nframes;
	int err; /* 0 or the sticky error */
	size_t pending;
};

/* The reference: what the deframer must produce from s[0..n). */
static inline void
df_model(const struct df_params *p, const uint8_t *s, size_t n, struct df_result *m)
{
	size_t o = 0;

	m->nframes = 0;
	m->err = 0;
	m->pending = 0;
	if (p->expect_prefix) {
		for (o = 0; o < IKETCP_PREFIX_LEN; o++) {
			if (o == n) {
				m->pending = o;
				return;
			}
			if (s[o] != (uint8_t)IKETCP_PREFIX[o]) {
				m->err = IKETCP_E_BADPREFIX;
				return;
			}
		}
	}
	while (n - o >= 2) {
		size_t l = ref_be16(s + o);
		if (l < 2) {
			m->err = IKETCP_E_BADLEN;
			return;
		}
		if (l > p->max_frame) {
			m->err = IKETCP_E_TOOBIG;
			return;
		}
		/* F4: the prefix again where a frame starts, once its six
		 * bytes are in */
		if (n - o >= IKETCP_PREFIX_LEN &&
		    !memcmp(s + o, IKETCP_PREFIX, IKETCP_PREFIX_LEN)) {
			m->err = IKETCP_E_REPREFIX;
			return;
		}
		if (n - o < l)
			break;
		m->off[m->nframes] = o;
		m->len[m->nframes] = l;
		m->nframes++;
		o += l;
	}
	m->pending = n - o;
}

static inline size_t
df_chunk_size(const struct df_params *p, size_t i, size_t whole)
{
	if (p->sizes_all_zero)
		return whole; /* no progress otherwise */
	uint8_t s = p->sizes[i % p->nsizes];
	return s < 0x80 ? s : ((size_t)(s & 0x7f) << 8) + 1;
}

/* Progress of one run, checked after every call. */
struct df_run {
	struct iketcp_deframer d;
	const uint8_t *s; /* the whole stream, to compare frames against */
	size_t fed;       /* stream bytes given to the deframer so far */
	size_t next_off;  /* where the next frame must start */
	struct df_result *r;
};

/* The state implied by the bytes fed so far, when no error happened. */
static inline void
df_check_progress(const struct df_params *p, const struct df_run *run)
{
	const struct iketcp_deframer *d = &run->d;
	int in_prefix = p->expect_prefix && run->fed < IKETCP_PREFIX_LEN;

	CHECK(d->state != IKETCP_DF_FAILED);
	CHECK(iketcp_deframer_prefix_done(d) == !in_prefix);
	CHECK(iketcp_deframer_pending(d) == (in_prefix ? run->fed : run->fed - run->next_off));
	/* An unfinished frame is always shorter than the largest allowed. */
	CHECK(in_prefix ? iketcp_deframer_pending(d) < IKETCP_PREFIX_LEN
			: iketcp_deframer_pending(d) < p->max_frame);
	CHECK(d->stats.bytes == run->fed);
	CHECK(d->stats.frames == run->r->nframes);
	CHECK(d->stats.zero_copy <= d->stats.frames);
	CHECK(strcmp(iketcp_deframer_state_name(d->state), "invalid") != 0);
}

/* Feeds one input (copied into its own exact allocation) until the
 * deframer wants more or fails. Returns 0 or the error. */
static inline int
df_feed(const struct df_params *p, struct df_run *run, const uint8_t *chunk, size_t n)
{
	uint8_t *copy = NULL;
	struct iketcp_cur in;
	int rc;

	if (n) {
		copy = malloc(n);
		CHECK(copy != NULL);
		memcpy(copy, chunk, n);
	}
	iketcp_cur_init(&in, copy, n);
	for (;;) {
		const uint8_t *fr = NULL;
		size_t fl = 0, before = in.off;
		struct iketcp_frame f;

		rc = iketcp_deframer_next(&run->d, &in, &fr, &fl);
		CHECK(in.off <= in.len && in.off >= before);
		if (rc == 1) {
			/* A frame: Length field, bounds, bytes, class. */
			CHECK(in.off > before);
			CHECK(fr != NULL && fl >= 2 && fl <= p->max_frame);
			CHECK(fl == ref_be16(fr));
			CHECK(run->next_off + fl <= run->fed + in.off);
			CHECK(memcmp(fr, run->s + run->next_off, fl) == 0);
			classify_and_check(fr, fl, &f);
			CHECK(f.kind != IKETCP_FRAME_FATAL);
			CHECK((f.kind == IKETCP_FRAME_EMPTY) == (fl == 2));
			run->r->off[run->r->nframes] = run->next_off;
			run->r->len[run->r->nframes] = fl;
			run->r->nframes++;
			run->next_off += fl;
			continue;
		}
		if (rc == 0) {
			CHECK(iketcp_cur_left(&in) == 0);
			run->fed += n;
			break;
		}
		check_rc_names(rc);
		CHECK(rc == IKETCP_E_BADPREFIX || rc == IKETCP_E_BADLEN || rc == IKETCP_E_TOOBIG ||
		      rc == IKETCP_E_REPREFIX);
		CHECK(run->d.state == IKETCP_DF_FAILED && run->d.err == rc);
		CHECK(iketcp_deframer_pending(&run->d) == 0);
		CHECK(iketcp_deframer_prefix_done(&run->d) == (rc != IKETCP_E_BADPREFIX));
		/* Sticky, and touches no input. */
		size_t at = in.off;
		CHECK(iketcp_deframer_next(&run->d, &in, &fr, &fl) == rc);
		CHECK(in.off == at);
		run->fed += in.off;
		break;
	}
	free(copy);
	if (rc == 0)
		df_check_progress(p, run);
	return rc;
}

static inline void
df_trim(struct df_run *run)
{
	struct iketcp_deframer *d = &run->d;
	uint8_t *buf = d->asm_buf;
	int owned = d->asm_owned;
	size_t pending = iketcp_deframer_pending(d);
	/* the trim rule (deframer.h): an owned buffer outside a frame body
	 * goes when unused since the last trim, or when four times larger
	 * than anything it held since (and above the floor) */
	int goes = owned && d->state != IKETCP_DF_BODY &&
		   (d->asm_peak == 0 ||
		    (d->asm_cap > IKETCP_MEM_ASM_FLOOR && d->asm_peak <= d->asm_cap / 4));

	iketcp_deframer_trim(d);
	if (goes)
		CHECK(d->asm_buf == NULL && d->asm_cap == 0 && !d->asm_owned);
	else
		CHECK(d->asm_buf == buf);
	CHECK(iketcp_deframer_pending(d) == pending); /* trim never loses bytes */
}

static inline void
df_run_stream(const struct df_params *p, const uint8_t *s, size_t n, int chunked,
	      struct df_result *r)
{
	struct iketcp_deframer_cfg cfg = {.expect_prefix = p->expect_prefix,
					  .max_frame = p->cfg_max};
	struct df_run run = {.s = s, .r = r};
	uint8_t *asm_buf = NULL;
	size_t i = 0;
	int rc = 0;

	r->nframes = 0;
	if (chunked && p->caller_asm) {
		asm_buf = malloc(p->max_frame);
		CHECK(asm_buf != NULL);
		cfg.asm_buf = asm_buf;
		cfg.asm_cap = p->max_frame - 1;
		CHECK(iketcp_deframer_init(&run.d, &cfg) == IKETCP_E_INVAL); /* too small */
		cfg.asm_cap = p->max_frame;
	}
	CHECK(iketcp_deframer_init(&run.d, &cfg) == IKETCP_OK);
	CHECK(run.d.state == (p->expect_prefix ? IKETCP_DF_PREFIX : IKETCP_DF_LEN));
	CHECK(run.d.max_frame == p->max_frame);
	run.next_off = p->expect_prefix ? IKETCP_PREFIX_LEN : 0;
	df_check_progress(p, &run);

	/* An empty read before anything arrived. */
	if (chunked && p->empty_between)
		rc = df_feed(p, &run, NULL, 0);
	while (rc == 0 && run.fed < n) {
		size_t want = chunked ? df_chunk_size(p, i, n) : n;
		if (want > n - run.fed)
			want = n - run.fed;
		if (chunked && p->trim == 3)
			df_trim(&run);
		rc = df_feed(p, &run, s + run.fed, want);
		if (rc == 0 && chunked && (p->trim == 1 || (p->trim == 2 && (i & 1))))
			df_trim(&run);
		if (rc == 0 && chunked && p->empty_between)
			rc = df_feed(p, &run, NULL, 0);
		i++;
	}
	r->err = rc;
	r->pending = iketcp_deframer_pending(&run.d);
	if (rc == 0) {
		CHECK(run.fed == n);
		/* Everything fed is in a frame handed out or pending. */
		CHECK(run.d.stats.bytes == n);
	}
	if (!chunked) {
		/* One input: every frame lies whole in it, none is copied. */
		CHECK(run.d.stats.zero_copy == run.d.stats.frames);
	}
	if (p->free_after) {
		const uint8_t *fr;
		size_t fl;
		struct iketcp_cur in;
		iketcp_deframer_free(&run.d);
		iketcp_cur_init(&in, s, n);
		CHECK(iketcp_deframer_next(&run.d, &in, &fr, &fl) == IKETCP_E_STATE);
		CHECK(in.off == 0);
	}
	iketcp_deframer_free(&run.d);
	iketcp_deframer_free(&run.d); /* idempotent */
	iketcp_deframer_free(NULL);
	free(asm_buf);
}

static inline void
df_compare(const struct df_result *a, const struct df_result *b)
{
	CHECK(a->err == b->err);
	CHECK(a->pending == b->pending);
	CHECK(a->nframes == b->nframes);
	for (size_t i = 0; i < a->nframes; i++)
		CHECK(a->off[i] == b->off[i] && a->len[i] == b->len[i]);
}

static inline void
df_alloc_result(struct df_result *r, size_t n)
{
	size_t cap = n / 2 + 1; /* every frame has at least 2 bytes */
	r->off = malloc(cap * sizeof(*r->off));
	r->len = malloc(cap * sizeof(*r->len));
	CHECK(r->off != NULL && r->len != NULL);
}

static inline void
df_free_result(struct df_result *r)
{
	free(r->off);
	free(r->len);
}

static inline int
df_fuzz_one(const uint8_t *data, size_t size, int expect_prefix)
{
	struct df_params p = {.expect_prefix = expect_prefix};
	struct df_result model, chunked, whole;
	uint8_t *synth = NULL;

	if (size < 4)
		return 0;
	uint8_t flags = data[0];
	size_t v = ref_be16(data + 1);
	p.nsizes = (size_t)(data[3] & 0x0f) + 1;
	if (size < 4 + p.nsizes)
		return 0;
	p.sizes = data + 4;
	p.sizes_all_zero = 1;
	for (size_t i = 0; i < p.nsizes; i++)
		if (p.sizes[i])
			p.sizes_all_zero = 0;
	switch (flags & 3) {
	case 0:
		p.cfg_max = 0;
		p.max_frame = IKETCP_FRAME_MAX;
		break;
	case 1:
		p.cfg_max = p.max_frame = 3 + v % 256;
		break;
	case 2:
		p.cfg_max = p.max_frame = 3 + v % (IKETCP_FRAME_MAX - 2);
		break;
	default:
		p.cfg_max = p.max_frame = IKETCP_FRAME_MAX;
		break;
	}
	p.caller_asm = (flags >> 2) & 1;
	p.trim = (flags >> 3) & 3;
	p.empty_between = (flags >> 5) & 1;
	p.free_after = (flags >> 6) & 1;

	const uint8_t *s = data + 4 + p.nsizes;
	size_t n = size - 4 - p.nsizes;
	if (expect_prefix && (flags & 0x80)) {
		synth = malloc(n + IKETCP_PREFIX_LEN);
		CHECK(synth != NULL);
		memcpy(synth, IKETCP_PREFIX, IKETCP_PREFIX_LEN);
		if (n)
			memcpy(synth + IKETCP_PREFIX_LEN, s, n);
		s = synth;
		n += IKETCP_PREFIX_LEN;
	}

	/* init refuses maxima outside [3, 65535]. */
	struct iketcp_deframer_cfg bad = {.max_frame = v % 8};
	struct iketcp_deframer tmp;
	CHECK((iketcp_deframer_init(&tmp, &bad) == IKETCP_OK) ==
	      (bad.max_frame == 0 || bad.max_frame >= 3));
	bad.max_frame = IKETCP_FRAME_MAX + 1 + v;
	CHECK(iketcp_deframer_init(&tmp, &bad) == IKETCP_E_INVAL);

	df_alloc_result(&model, n);
	df_alloc_result(&chunked, n);
	df_alloc_result(&whole, n);
	df_model(&p, s, n, &model);
	df_run_stream(&p, s, n, 1, &chunked);
	df_run_stream(&p, s, n, 0, &whole);
	df_compare(&chunked, &whole); /* the differential check */
	df_compare(&chunked, &model);
	df_free_result(&model);
	df_free_result(&chunked);
	df_free_result(&whole);
	free(synth);
	return 0;
}

#endif
