/*
 * Unit tests for lib/deframer.c, the incremental RFC 9329 stream reader
 * (docs/conformance.md, "Receiver states"): prefix handling (R9, R16, R26), Length 0/1 (R7), the
 * maximum frame size, zero-copy, the assembly buffer, R23, and a golden
 * session captured between libreswan peers (tests/data/README.md).
 *
 * The central helper feeds a stream cut into pieces, each piece copied into
 * its own malloc'ed buffer of exactly its size (so that a read past a piece
 * is an ASan error and a frame pointer can only point into the piece that
 * holds it), and checks every frame against the expected list: same bytes,
 * same class, and zero-copy exactly when the frame lies wholly in one piece.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "iketcp/deframer.h"
#include "iketcp/frame.h"
#include "iketcp/mem.h"
#include "iketcp/ike.h"

#define MAX_FRAMES 16

struct exp_frame {
	size_t off; /* in the stream */
	size_t len;
	enum iketcp_frame_kind kind;
	enum iketcp_runt_reason runt;
};

struct stream {
	uint8_t *data;
	size_t len;
	size_t prefix_len; /* 6 when the stream starts with IKETCP, else 0 */
	size_t max_frame;  /* deframer config; 0 for the default */
	struct exp_frame fr[MAX_FRAMES];
	size_t n;
};

static void
stream_add(struct stream *s, const uint8_t *frame, size_t len, enum iketcp_frame_kind kind,
	   enum iketcp_runt_reason runt)
{
	assert_true(s->n < MAX_FRAMES);
	memcpy(s->data + s->len, frame, len);
	s->fr[s->n++] = (struct exp_frame){.off = s->len, .len = len, .kind = kind, .runt = runt};
	s->len += len;
}

/*
 * The recorded stream of the issue: prefix + IKE + ESP + empty + keepalive
 * + runt + IKE, as a TCP responder receives it.
 */
static void
recorded_stream(struct stream *s)
{
	static const uint8_t empty[] = {0x00, 0x02};
	static const uint8_t keepalive[] = {0x00, 0x03, 0xff};
	static const uint8_t runt[] = {0x00, 0x05, 0x01, 0x02, 0x03};
	uint8_t fr[400];
	size_t n;

	memset(s, 0, sizeof(*s));
	s->data = tu_xmalloc(1024);
	memcpy(s->data, IKETCP_PREFIX, IKETCP_PREFIX_LEN);
	s->len = s->prefix_len = IKETCP_PREFIX_LEN;
	n = tu_frame_ike(fr, 300, IKETCP_IKE_SA_INIT, 0);
	stream_add(s, fr, n, IKETCP_FRAME_IKE, IKETCP_RUNT_NONE);
	n = tu_frame_esp(fr, 120, 0x0000c001, 1);
	stream_add(s, fr, n, IKETCP_FRAME_ESP, IKETCP_RUNT_NONE);
	stream_add(s, empty, sizeof(empty), IKETCP_FRAME_EMPTY, IKETCP_RUNT_NONE);
	stream_add(s, keepalive, sizeof(keepalive), IKETCP_FRAME_KEEPALIVE, IKETCP_RUNT_NONE);
	stream_add(s, runt, sizeof(runt), IKETCP_FRAME_RUNT, IKETCP_RUNT_TINY);
	n = tu_frame_ike(fr, 80, IKETCP_IKE_INFORMATIONAL, 2);
	stream_add(s, fr, n, IKETCP_FRAME_IKE, IKETCP_RUNT_NONE);
}

/* Bytes held inside the deframer after `end` stream bytes: those after the
 * last prefix/frame boundary. */
static size_t
expected_pending(const struct stream *s, size_t end)
{
	size_t b = 0;

	if (s->prefix_len && end >= s->prefix_len)
		b = s->prefix_len;
	for (size_t i = 0; i < s->n; i++)
		if (s->fr[i].off + s->fr[i].len <= end)
			b = s->fr[i].off + s->fr[i].len;
	return end - b;
}

static void
deframer_start(struct iketcp_deframer *d, const struct stream *s)
{
	struct iketcp_deframer_cfg cfg = {
		.expect_prefix = s->prefix_len != 0,
		.max_frame = s->max_frame,
	};
	assert_int_equal(iketcp_deframer_init(d, &cfg), IKETCP_OK);
}

/*
 * Feeds s cut at cuts[0..ncut) (non-decreasing offsets; equal ones give
 * empty pieces) and checks frames, classes, zero-copy, pending() after
 * each piece and the final stats.
 */
static void
feed_and_check(const struct stream *s, const size_t *cuts, size_t ncut)
{
	struct iketcp_deframer d;
	size_t got = 0, start = 0, zero_copy = 0;

	deframer_start(&d, s);
	for (size_t i = 0; i <= ncut; i++) {
		size_t end = i < ncut ? cuts[i] : s->len;
		size_t n = end - start;
		uint8_t *piece = tu_xmalloc(n);
		struct iketcp_cur in;
		const uint8_t *fr;
		size_t flen;
		int rc;

		assert_true(end >= start && end <= s->len);
		memcpy(piece, s->data + start, n);
		iketcp_cur_init(&in, piece, n);
		while ((rc = iketcp_deframer_next(&d, &in, &fr, &flen)) == 1) {
			const struct exp_frame *e;
			struct iketcp_frame f;

			assert_true(got < s->n);
			e = &s->fr[got++];
			assert_int_equal(flen, e->len);
			assert_memory_equal(fr, s->data + e->off, e->len);
			assert_int_equal(iketcp_frame_classify(fr, flen, &f), IKETCP_OK);
			assert_int_equal(f.kind, e->kind);
			assert_int_equal(f.runt, e->runt);
			if (e->off >= start && e->off + e->len <= end) {
				assert_ptr_equal(fr, piece + (e->off - start));
				zero_copy++;
			} else {
				assert_ptr_equal(fr, d.asm_buf);
			}
		}
		assert_int_equal(rc, 0);
		assert_int_equal(iketcp_cur_left(&in), 0); /* 0 means all was consumed */
		assert_int_equal(iketcp_deframer_pending(&d), expected_pending(s, end));
		assert_int_equal(iketcp_deframer_prefix_done(&d), end >= s->prefix_len);
		free(piece);
		start = end;
	}
	assert_int_equal(got, s->n);
	assert_int_equal(d.state, IKETCP_DF_LEN);
	assert_int_equal(iketcp_deframer_pending(&d), 0);
	assert_int_equal(d.stats.frames, s->n);
	assert_int_equal(d.stats.bytes, s->len);
	assert_int_equal(d.stats.zero_copy, zero_copy);
	iketcp_deframer_free(&d);
}

/* Random non-decreasing cut positions; mixes tiny, medium and huge pieces. */
static size_t
random_cuts(struct tu_rng *rng, size_t len, size_t *cuts, size_t max)
{
	size_t n = 0, pos = 0;

	for (;;) {
		uint64_t step;
		switch (tu_rng_below(rng, 4)) {
		case 0:
			step = tu_rng_below(rng, 4); /* 0 gives an empty piece */
			break;
		case 1:
			step = tu_rng_range(rng, 1, 16);
			break;
		case 2:
			step = tu_rng_range(rng, 1, 128);
			break;
		default:
			step = tu_rng_range(rng, 1, len);
			break;
		}
		pos += (size_t)step;
		if (pos >= len || n == max)
			return n;
		cuts[n++] = pos;
	}
}

/* ---- the recorded stream ------------------------------------------------------ */

static void
test_stream_whole(void **state)
{
	(void)state;
	struct stream s;

	recorded_stream(&s);
	assert_int_equal(s.n, 6);
	feed_and_check(&s, NULL, 0); /* every frame zero-copy */
	free(s.data);
}

static void
test_stream_every_two_way_split(void **state)
{
	(void)state;
	struct stream s;

	recorded_stream(&s);
	for (size_t k = 0; k <= s.len; k++)
		feed_and_check(&s, &k, 1);
	free(s.data);
}

static void
test_stream_byte_by_byte(void **state)
{
	(void)state;
	struct stream s;
	size_t *cuts;

	recorded_stream(&s);
	cuts = tu_xmalloc(s.len * sizeof(*cuts));
	for (size_t i = 0; i + 1 < s.len; i++)
		cuts[i] = i + 1;
	feed_and_check(&s, cuts, s.len - 1);
	free(cuts);
	free(s.data);
}

static void
test_stream_random_chunkings(void **state)
{
	(void)state;
	struct stream s;
	size_t cuts[1024];
	struct tu_rng rng;

	recorded_stream(&s);
	tu_rng_seed(&rng, 0x1e7c9);
	for (int run = 0; run < 2000; run++) {
		size_t n = random_cuts(&rng, s.len, cuts, TU_ARRAY_LEN(cuts));
		feed_and_check(&s, cuts, n);
	}
	free(s.data);
}

/* ---- prefix (R9, R16, R26) ------------------------------------------------------ */

/* The prefix in three pieces, cut at every pair of positions (R16). */
static void
test_prefix_every_split(void **state)
{
	(void)state;
	uint8_t data[IKETCP_PREFIX_LEN + 3] = {'I', 'K', 'E', 'T', 'C', 'P', 0x00, 0x03, 0xff};

	for (size_t i = 0; i <= IKETCP_PREFIX_LEN; i++) {
		for (size_t j = i; j <= IKETCP_PREFIX_LEN; j++) {
			struct iketcp_deframer_cfg cfg = {.expect_prefix = 1};
			struct iketcp_deframer d;
			struct iketcp_cur in;
			const uint8_t *fr = NULL;
			size_t flen = 0;

			assert_int_equal(iketcp_deframer_init(&d, &cfg), IKETCP_OK);
			assert_false(iketcp_deframer_prefix_done(&d));
			iketcp_cur_init(&in, data, i);
			assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
			assert_int_equal(iketcp_deframer_pending(&d),
					 i == IKETCP_PREFIX_LEN ? 0 : i);
			assert_int_equal(iketcp_deframer_prefix_done(&d), i == IKETCP_PREFIX_LEN);
			iketcp_cur_init(&in, data + i, j - i);
			assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
			assert_int_equal(iketcp_deframer_prefix_done(&d), j == IKETCP_PREFIX_LEN);
			assert_int_equal(iketcp_deframer_pending(&d),
					 j == IKETCP_PREFIX_LEN ? 0 : j);
			iketcp_cur_init(&in, data + j, sizeof(data) - j);
			assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 1);
			assert_ptr_equal(fr, data + IKETCP_PREFIX_LEN);
			assert_int_equal(flen, 3);
			assert_true(iketcp_deframer_prefix_done(&d));
			assert_int_equal(d.stats.bytes, sizeof(data));
			iketcp_deframer_free(&d);
		}
	}
}

/* Checks the sticky BADPREFIX state: later calls fail the same way and
 * consume nothing. */
static void
assert_sticky(struct iketcp_deframer *d, int err)
{
	static const uint8_t good[] = {0x00, 0x03, 0xff, 0x00, 0x02};
	struct iketcp_cur in;
	const uint8_t *fr = NULL;
	size_t flen = 12345;
	uint64_t bytes = d->stats.bytes, frames = d->stats.frames;

	for (int i = 0; i < 3; i++) {
		iketcp_cur_init(&in, good, sizeof(good));
		assert_int_equal(iketcp_deframer_next(d, &in, &fr, &flen), err);
		assert_int_equal(in.off, 0);
		iketcp_cur_init(&in, NULL, 0);
		assert_int_equal(iketcp_deframer_next(d, &in, &fr, &flen), err);
	}
	assert_null(fr);
	assert_int_equal(flen, 12345);
	assert_int_equal(d->state, IKETCP_DF_FAILED);
	assert_int_equal(d->err, err);
	assert_int_equal(d->stats.bytes, bytes);
	assert_int_equal(d->stats.frames, frames);
	assert_int_equal(iketcp_deframer_pending(d), 0);
}

/* A wrong byte at each of the 6 positions fails at that byte, in one input. */
static void
test_prefix_wrong_byte_each_position(void **state)
{
	(void)state;
	for (size_t pos = 0; pos < IKETCP_PREFIX_LEN; pos++) {
		for (int v = 0; v < 256; v++) {
			uint8_t data[IKETCP_PREFIX_LEN + 3] = {'I', 'K',  'E',  'T', 'C',
							       'P', 0x00, 0x03, 0xff};
			struct iketcp_deframer_cfg cfg = {.expect_prefix = 1};
			struct iketcp_deframer d;
			struct iketcp_cur in;
			const uint8_t *fr = NULL;
			size_t flen = 0;

			if (v == data[pos])
				continue;
			data[pos] = (uint8_t)v;
			assert_int_equal(iketcp_deframer_init(&d, &cfg), IKETCP_OK);
			iketcp_cur_init(&in, data, sizeof(data));
			assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen),
					 IKETCP_E_BADPREFIX);
			assert_int_equal(in.off, pos + 1); /* stopped at the wrong byte */
			assert_int_equal(d.stats.bytes, pos + 1);
			assert_false(iketcp_deframer_prefix_done(&d));
			assert_sticky(&d, IKETCP_E_BADPREFIX);
			iketcp_deframer_free(&d);
		}
	}
}

/* Byte by byte, the call that brings the wrong byte is the one that fails. */
static void
test_prefix_wrong_byte_immediate(void **state)
{
	(void)state;
	for (size_t pos = 0; pos < IKETCP_PREFIX_LEN; pos++) {
		uint8_t data[IKETCP_PREFIX_LEN] = {'I', 'K', 'E', 'T', 'C', 'P'};
		struct iketcp_deframer_cfg cfg = {.expect_prefix = 1};
		struct iketcp_deframer d;
		struct iketcp_cur in;
		const uint8_t *fr;
		size_t flen;

		data[pos] ^= 0x20; /* "iKETCP", "IkETCP", ... */
		assert_int_equal(iketcp_deframer_init(&d, &cfg), IKETCP_OK);
		for (size_t i = 0; i < pos; i++) {
			iketcp_cur_init(&in, data + i, 1);
			assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
			assert_int_equal(iketcp_deframer_pending(&d), i + 1);
		}
		iketcp_cur_init(&in, data + pos, 1);
		assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), IKETCP_E_BADPREFIX);
		assert_sticky(&d, IKETCP_E_BADPREFIX);
		iketcp_deframer_free(&d);
	}
}

/* R26: a TCP responder refuses a stream that starts directly with a frame. */
static void
test_prefix_missing(void **state)
{
	(void)state;
	uint8_t fr[106];
	struct iketcp_deframer_cfg cfg = {.expect_prefix = 1};
	struct iketcp_deframer d;
	struct iketcp_cur in;
	const uint8_t *p;
	size_t flen;

	tu_frame_ike(fr, 100, IKETCP_IKE_SA_INIT, 0);
	assert_int_equal(iketcp_deframer_init(&d, &cfg), IKETCP_OK);
	iketcp_cur_init(&in, fr, sizeof(fr));
	assert_int_equal(iketcp_deframer_next(&d, &in, &p, &flen), IKETCP_E_BADPREFIX);
	assert_int_equal(in.off, 1);
	assert_sticky(&d, IKETCP_E_BADPREFIX);
	iketcp_deframer_free(&d);
}

/* The TO side (and cfg NULL) expects no prefix: the stream starts with a frame. */
static void
test_no_prefix_mode(void **state)
{
	(void)state;
	struct stream s;
	struct iketcp_deframer d;
	struct iketcp_cur in;
	const uint8_t *fr;
	size_t flen;

	recorded_stream(&s);
	memmove(s.data, s.data + s.prefix_len, s.len - s.prefix_len);
	s.len -= s.prefix_len;
	for (size_t i = 0; i < s.n; i++)
		s.fr[i].off -= s.prefix_len;
	s.prefix_len = 0;
	feed_and_check(&s, NULL, 0);
	for (size_t k = 0; k <= s.len; k++)
		feed_and_check(&s, &k, 1);
	free(s.data);

	/* With no prefix expected, "IKETCP" is not taken for a Length (0x494B)
	 * and 18 KB of body: the TR never sends it (F4). */
	assert_int_equal(iketcp_deframer_init(&d, NULL), IKETCP_OK);
	assert_true(iketcp_deframer_prefix_done(&d));
	assert_int_equal(d.state, IKETCP_DF_LEN);
	iketcp_cur_init(&in, IKETCP_PREFIX, IKETCP_PREFIX_LEN);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), IKETCP_E_REPREFIX);
	assert_int_equal(d.state, IKETCP_DF_FAILED);
	assert_int_equal(iketcp_deframer_pending(&d), 0);
	iketcp_deframer_free(&d);
}

/* ---- Length 0 and 1 (R7) -------------------------------------------------------- */

/* Feeds data in two pieces cut at `cut` and expects frames_before frames,
 * then a sticky IKETCP_E_BADLEN. split_before: an earlier frame was split,
 * so the assembly buffer exists for a good reason. */
static void
check_badlen(const uint8_t *data, size_t len, size_t cut, size_t frames_before, int split_before)
{
	struct iketcp_deframer d;
	struct iketcp_cur in;
	const uint8_t *fr;
	size_t flen, got = 0;
	int rc;

	assert_int_equal(iketcp_deframer_init(&d, NULL), IKETCP_OK);
	iketcp_cur_init(&in, data, cut);
	while ((rc = iketcp_deframer_next(&d, &in, &fr, &flen)) == 1)
		got++;
	if (rc == 0) {
		iketcp_cur_init(&in, data + cut, len - cut);
		while ((rc = iketcp_deframer_next(&d, &in, &fr, &flen)) == 1)
			got++;
	}
	assert_int_equal(rc, IKETCP_E_BADLEN);
	assert_int_equal(got, frames_before);
	assert_sticky(&d, IKETCP_E_BADLEN);
	/* a Length that kills the connection must cost no assembly buffer */
	if (!split_before)
		assert_null(d.asm_buf);
	iketcp_deframer_free(&d);
}

static void
test_badlen_0_and_1(void **state)
{
	(void)state;
	static const uint8_t l0[] = {0x00, 0x00, 0x00, 0x03, 0xff};
	static const uint8_t l1[] = {0x00, 0x01, 0x00, 0x03, 0xff};

	check_badlen(l0, sizeof(l0), sizeof(l0), 0, 0);
	check_badlen(l1, sizeof(l1), sizeof(l1), 0, 0);
	check_badlen(l0, 2, 2, 0, 0); /* nothing after the Length */
	check_badlen(l1, 2, 2, 0, 0);
}

static void
test_badlen_split_between_reads(void **state)
{
	(void)state;
	static const uint8_t l0[] = {0x00, 0x00}, l1[] = {0x00, 0x01};

	check_badlen(l0, sizeof(l0), 1, 0, 0);
	check_badlen(l1, sizeof(l1), 1, 0, 0);
}

static void
test_badlen_after_frames(void **state)
{
	(void)state;
	/* keepalive, empty, then Length 1: two frames come out, then the error */
	static const uint8_t data[] = {0x00, 0x03, 0xff, 0x00, 0x02, 0x00, 0x01, 0x00, 0x02};

	/* cuts 1, 2 split the keepalive, cut 4 the empty frame */
	for (size_t cut = 0; cut <= sizeof(data); cut++)
		check_badlen(data, sizeof(data), cut, 2, cut == 1 || cut == 2 || cut == 4);
}

/* F4: "IKETCP" where a frame should start is refused at its sixth byte
 * however it is split, instead of being read as an 18 KB frame. */
static void
test_reprefix_refused(void **state)
{
	(void)state;
	static const uint8_t data[] = {'I', 'K', 'E', 'T', 'C', 'P', 0x00, 0x03, 0xff,
				       'I', 'K', 'E', 'T', 'C', 'P', 0x00, 0x03, 0xff};

	for (int pfx = 0; pfx < 2; pfx++) {
		/* with a prefix expected (TR) the second one is at 9, else at 0 */
		const uint8_t *in0 = pfx ? data : data + 6;
		size_t n = pfx ? sizeof(data) : sizeof(data) - 6;
		size_t at = pfx ? 9 : 3;
		for (size_t cut = 0; cut <= n; cut++) {
			struct iketcp_deframer d;
			struct iketcp_deframer_cfg cfg = {.expect_prefix = pfx};
			assert_int_equal(iketcp_deframer_init(&d, &cfg), IKETCP_OK);
			const uint8_t *fr;
			size_t fl;
			int frames = 0, rc = 0, err_part = -1;
			const size_t parts[2][2] = {{0, cut}, {cut, n}};
			for (int p = 0; p < 2 && rc >= 0; p++) {
				struct iketcp_cur c;
				iketcp_cur_init(&c, in0 + parts[p][0], parts[p][1] - parts[p][0]);
				while ((rc = iketcp_deframer_next(&d, &c, &fr, &fl)) == 1)
					frames++;
				if (rc < 0)
					err_part = p;
			}
			/* the keepalive before it comes out; the error as soon as the
			 * six bytes are in, not 18 KB later */
			assert_int_equal(frames, 1);
			assert_int_equal(rc, IKETCP_E_REPREFIX);
			assert_int_equal(err_part, cut >= at + 6 ? 0 : 1);
			assert_int_equal(d.state, IKETCP_DF_FAILED);
			assert_true(iketcp_deframer_prefix_done(&d));
			iketcp_deframer_free(&d);
		}
	}
}

/* Length 0x494B followed by anything but "ETCP" is an ordinary frame. */
static void
test_length_494b_is_a_frame(void **state)
{
	(void)state;
	size_t len = 0x494B;
	uint8_t *buf = tu_xmalloc(len);
	assert_int_equal(tu_frame_esp(buf, len - 2, 0x45544351, 1), (int)len);
	assert_int_equal(buf[0], 'I');
	assert_int_equal(buf[1], 'K');
	for (size_t cut = 0; cut < 8; cut++) {
		struct iketcp_deframer d;
		assert_int_equal(iketcp_deframer_init(&d, NULL), IKETCP_OK);
		struct iketcp_cur c;
		const uint8_t *fr;
		size_t fl;
		iketcp_cur_init(&c, buf, cut);
		int rc = iketcp_deframer_next(&d, &c, &fr, &fl);
		if (cut >= 2)
			assert_int_equal(rc, 0);
		iketcp_cur_init(&c, buf + cut, len - cut);
		assert_int_equal(iketcp_deframer_next(&d, &c, &fr, &fl), 1);
		assert_int_equal(fl, len);
		iketcp_deframer_free(&d);
	}
	free(buf);
}

/* ---- maximum frame size ------------------------------------------------------------ */

/* A stream of one ESP frame of exactly len bytes, with max_frame max. */
static void
one_frame_stream(struct stream *s, size_t len, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->data = tu_xmalloc(len);
	s->max_frame = max;
	s->fr[0] = (struct exp_frame){.off = 0, .len = len, .kind = IKETCP_FRAME_ESP};
	s->n = 1;
	s->len = tu_frame_esp(s->data, len - 2, 0x4000, 1);
}

static void
test_max_frame_exact_accepted(void **state)
{
	(void)state;
	struct stream s;

	one_frame_stream(&s, 100, 100);
	for (size_t k = 0; k <= s.len; k++)
		feed_and_check(&s, &k, 1);
	free(s.data);
}

static void
test_max_frame_default_65535(void **state)
{
	(void)state;
	struct stream s;
	static const size_t cuts[] = {0, 1, 2, 3, 4096, 65534, 65535};

	one_frame_stream(&s, IKETCP_FRAME_MAX, 0);
	for (size_t i = 0; i < TU_ARRAY_LEN(cuts); i++)
		feed_and_check(&s, &cuts[i], 1);
	free(s.data);
}

static void
check_toobig(size_t max, const uint8_t *data, size_t len, size_t cut)
{
	struct iketcp_deframer_cfg cfg = {.max_frame = max};
	struct iketcp_deframer d;
	struct iketcp_cur in;
	const uint8_t *fr;
	size_t flen;
	int rc;

	assert_int_equal(iketcp_deframer_init(&d, &cfg), IKETCP_OK);
	iketcp_cur_init(&in, data, cut);
	rc = iketcp_deframer_next(&d, &in, &fr, &flen);
	if (rc == 0) {
		assert_true(cut < 2); /* the Length is known after two bytes */
		iketcp_cur_init(&in, data + cut, len - cut);
		rc = iketcp_deframer_next(&d, &in, &fr, &flen);
	}
	assert_int_equal(rc, IKETCP_E_TOOBIG);
	assert_int_equal(d.stats.frames, 0);
	assert_sticky(&d, IKETCP_E_TOOBIG);
	assert_null(d.asm_buf); /* refused before any allocation */
	iketcp_deframer_free(&d);
}

static void
test_max_frame_plus_one_toobig(void **state)
{
	(void)state;
	uint8_t fr[101];

	tu_frame_esp(fr, 99, 0x4000, 1); /* Length 101 */
	for (size_t cut = 0; cut <= sizeof(fr); cut++)
		check_toobig(100, fr, sizeof(fr), cut);
	check_toobig(100, fr, 2, 2); /* the Length alone is enough to refuse */
	check_toobig(100, fr, 2, 1); /* ... also when it is split */
}

static void
test_max_frame_3(void **state)
{
	(void)state;
	static const uint8_t ka[] = {0x00, 0x03, 0xff}, four[] = {0x00, 0x04, 0x00, 0x00};
	struct iketcp_deframer_cfg cfg = {.max_frame = 3};
	struct iketcp_deframer d;
	struct iketcp_cur in;
	const uint8_t *fr;
	size_t flen;

	assert_int_equal(iketcp_deframer_init(&d, &cfg), IKETCP_OK);
	iketcp_cur_init(&in, ka, sizeof(ka));
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 1);
	assert_int_equal(flen, 3);
	iketcp_deframer_free(&d);
	check_toobig(3, four, sizeof(four), 4);
	check_toobig(3, four, sizeof(four), 1);
	check_toobig(IKETCP_FRAME_MAX - 1, (const uint8_t *)"\xff\xff", 2, 1);
}

/* ---- zero copy and the assembly buffer ---------------------------------------------- */

static void
test_zero_copy_pointer_equality(void **state)
{
	(void)state;
	uint8_t in_buf[300];
	size_t a, b, c;
	struct iketcp_deframer d;
	struct iketcp_cur in;
	const uint8_t *fr;
	size_t flen;

	a = tu_frame_esp(in_buf, 50, 0x1111, 1);
	b = tu_frame_ike(in_buf + a, 60, IKETCP_IKE_INFORMATIONAL, 4);
	c = tu_frame_esp(in_buf + a + b, 70, 0x2222, 2);
	assert_int_equal(iketcp_deframer_init(&d, NULL), IKETCP_OK);
	/* the last frame is cut short: only the first two are whole */
	iketcp_cur_init(&in, in_buf, a + b + 10);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 1);
	assert_ptr_equal(fr, in_buf);
	assert_int_equal(flen, a);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 1);
	assert_ptr_equal(fr, in_buf + a);
	assert_int_equal(flen, b);
	assert_int_equal(d.stats.zero_copy, 2);
	assert_null(d.asm_buf); /* nothing allocated while frames were whole */
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
	assert_non_null(d.asm_buf); /* allocated on the first split frame */
	assert_int_equal(iketcp_deframer_pending(&d), 10);
	iketcp_cur_init(&in, in_buf + a + b + 10, c - 10);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 1);
	assert_ptr_equal(fr, d.asm_buf); /* assembled: a copy */
	assert_int_equal(flen, c);
	assert_memory_equal(fr, in_buf + a + b, c);
	assert_int_equal(d.stats.frames, 3);
	assert_int_equal(d.stats.zero_copy, 2);
	assert_int_equal(d.stats.bytes, a + b + c);
	iketcp_deframer_free(&d);
}

static void
test_caller_asm_buffer(void **state)
{
	(void)state;
	uint8_t asmb[256], data[200];
	size_t len = tu_frame_ike(data, 194, IKETCP_IKE_AUTH, 1);
	struct iketcp_deframer_cfg cfg = {
		.max_frame = 200, .asm_buf = asmb, .asm_cap = sizeof(asmb)};
	struct iketcp_deframer d;
	struct iketcp_cur in;
	const uint8_t *fr;
	size_t flen;

	assert_int_equal(iketcp_deframer_init(&d, &cfg), IKETCP_OK);
	assert_ptr_equal(d.asm_buf, asmb);
	for (size_t cut = 1; cut < len; cut++) {
		iketcp_cur_init(&in, data, cut);
		assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
		iketcp_cur_init(&in, data + cut, len - cut);
		assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 1);
		assert_ptr_equal(fr, asmb);
		assert_int_equal(flen, len);
		assert_memory_equal(asmb, data, len);
		/* the caller's buffer is used, nothing was malloc'ed */
		assert_ptr_equal(d.asm_buf, asmb);
		assert_false(d.asm_owned);
	}
	assert_int_equal(d.stats.zero_copy, 0);
	iketcp_deframer_trim(&d); /* not ours: kept */
	assert_ptr_equal(d.asm_buf, asmb);
	iketcp_deframer_free(&d); /* must not free() a stack buffer (ASan) */
	assert_null(d.asm_buf);
}

/* ---- init, pending, trim, free -------------------------------------------------------- */

static void
test_init_validation(void **state)
{
	(void)state;
	static const size_t bad_max[] = {1, 2, IKETCP_FRAME_MAX + 1, SIZE_MAX};
	uint8_t asmb[100];
	struct iketcp_deframer d, before;

	memset(&d, 0x5a, sizeof(d));
	before = d;
	for (size_t i = 0; i < TU_ARRAY_LEN(bad_max); i++) {
		struct iketcp_deframer_cfg cfg = {.max_frame = bad_max[i]};
		assert_int_equal(iketcp_deframer_init(&d, &cfg), IKETCP_E_INVAL);
		assert_memory_equal(&d, &before, sizeof(d));
	}
	/* a supplied buffer smaller than max_frame */
	struct iketcp_deframer_cfg small = {.max_frame = 101, .asm_buf = asmb, .asm_cap = 100};
	assert_int_equal(iketcp_deframer_init(&d, &small), IKETCP_E_INVAL);
	struct iketcp_deframer_cfg dflt = {.asm_buf = asmb, .asm_cap = 100}; /* max 65535 */
	assert_int_equal(iketcp_deframer_init(&d, &dflt), IKETCP_E_INVAL);
	assert_memory_equal(&d, &before, sizeof(d));

	struct iketcp_deframer_cfg three = {.max_frame = 3};
	assert_int_equal(iketcp_deframer_init(&d, &three), IKETCP_OK);
	assert_int_equal(d.max_frame, 3);
	struct iketcp_deframer_cfg fits = {.max_frame = 100, .asm_buf = asmb, .asm_cap = 100};
	assert_int_equal(iketcp_deframer_init(&d, &fits), IKETCP_OK);
	assert_int_equal(iketcp_deframer_init(&d, NULL), IKETCP_OK);
	assert_int_equal(d.max_frame, IKETCP_FRAME_MAX);
	assert_int_equal(d.state, IKETCP_DF_LEN);
	assert_null(d.asm_buf); /* init allocates nothing */
	assert_int_equal(d.stats.frames, 0);
	struct iketcp_deframer_cfg tr = {.expect_prefix = 1};
	assert_int_equal(iketcp_deframer_init(&d, &tr), IKETCP_OK);
	assert_int_equal(d.state, IKETCP_DF_PREFIX);
	assert_int_equal(d.max_frame, IKETCP_FRAME_MAX);
}

static void
test_pending(void **state)
{
	(void)state;
	uint8_t data[6 + 50];
	struct iketcp_deframer_cfg cfg = {.expect_prefix = 1};
	struct iketcp_deframer d;
	struct iketcp_cur in;
	const uint8_t *fr;
	size_t flen;

	memcpy(data, IKETCP_PREFIX, 6);
	tu_frame_esp(data + 6, 48, 0x5555, 1);
	assert_int_equal(iketcp_deframer_init(&d, &cfg), IKETCP_OK);
	assert_int_equal(iketcp_deframer_pending(&d), 0);
	iketcp_cur_init(&in, data, 3); /* half the prefix */
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
	assert_int_equal(iketcp_deframer_pending(&d), 3);
	iketcp_cur_init(&in, data + 3, 4); /* rest of the prefix + 1 Length byte */
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
	assert_int_equal(iketcp_deframer_pending(&d), 1);
	assert_int_equal(d.state, IKETCP_DF_LEN);
	iketcp_cur_init(&in, data + 7, 20); /* 2nd Length byte + 19 of the body */
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
	assert_int_equal(iketcp_deframer_pending(&d), 21); /* Length field included */
	assert_int_equal(d.state, IKETCP_DF_BODY);
	iketcp_cur_init(&in, data + 27, sizeof(data) - 27);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 1);
	assert_int_equal(iketcp_deframer_pending(&d), 0);
	assert_memory_equal(fr, data + 6, 50);
	iketcp_deframer_free(&d);
}

static void
test_trim(void **state)
{
	(void)state;
	uint8_t data[40];
	size_t len = tu_frame_esp(data, 38, 0x6666, 1);
	struct iketcp_deframer d;
	struct iketcp_cur in;
	const uint8_t *fr;
	size_t flen;
	uint8_t *held;

	assert_int_equal(iketcp_deframer_init(&d, NULL), IKETCP_OK);
	iketcp_deframer_trim(&d); /* nothing to release */
	assert_null(d.asm_buf);

	/* mid-frame: the buffer holds 10 bytes and must stay */
	iketcp_cur_init(&in, data, 10);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
	assert_non_null(d.asm_buf);
	assert_true(d.asm_owned);
	held = d.asm_buf;
	iketcp_deframer_trim(&d);
	assert_ptr_equal(d.asm_buf, held);
	assert_int_equal(iketcp_deframer_pending(&d), 10);
	iketcp_cur_init(&in, data + 10, len - 10);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 1);
	assert_memory_equal(fr, data, len);
	assert_ptr_equal(d.asm_buf, held); /* kept until trimmed */

	/* one Length byte is kept outside the buffer: trimming is allowed,
	 * but the buffer was used since the last trim: kept */
	iketcp_cur_init(&in, data, 1);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
	iketcp_deframer_trim(&d);
	assert_ptr_equal(d.asm_buf, held);
	iketcp_deframer_trim(&d); /* a whole period without assembling: released */
	assert_null(d.asm_buf);
	assert_false(d.asm_owned);
	assert_int_equal(iketcp_deframer_pending(&d), 1);
	iketcp_cur_init(&in, data + 1, len - 1);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 1);
	assert_int_equal(flen, len);
	assert_memory_equal(fr, data, len);

	/* idle: released by the second trim */
	assert_non_null(d.asm_buf);
	iketcp_deframer_trim(&d);
	assert_non_null(d.asm_buf);
	iketcp_deframer_trim(&d);
	assert_null(d.asm_buf);
	assert_int_equal(d.asm_cap, 0);
	iketcp_deframer_free(&d);
}

/* Feeds frame f (len bytes) split after `cut` bytes; it must come out whole. */
static void
feed_split(struct iketcp_deframer *d, const uint8_t *f, size_t len, size_t cut)
{
	struct iketcp_cur in;
	const uint8_t *fr;
	size_t flen;

	iketcp_cur_init(&in, f, cut);
	assert_int_equal(iketcp_deframer_next(d, &in, &fr, &flen), 0);
	iketcp_cur_init(&in, f + cut, len - cut);
	assert_int_equal(iketcp_deframer_next(d, &in, &fr, &flen), 1);
	assert_int_equal(flen, len);
	assert_memory_equal(fr, f, len);
}

/* The assembly buffer is sized to the frame that needs it, not to
 * max_frame; it is replaced only by a larger frame, and a quarter-used
 * one goes at the next trim. The memory budget sees every byte. */
static void
test_asm_sized_to_frame(void **state)
{
	(void)state;
	static uint8_t big[20000], small[1400];
	size_t lb = tu_frame_esp(big, sizeof(big) - 2, 0x7777, 1);
	size_t ls = tu_frame_esp(small, sizeof(small) - 2, 0x7777, 2);
	size_t used0 = iketcp_mem_used();
	struct iketcp_deframer d;

	assert_int_equal(iketcp_deframer_init(&d, NULL), IKETCP_OK);
	feed_split(&d, small, ls, 700);
	assert_int_equal(d.asm_cap, IKETCP_MEM_ASM_FLOOR); /* not 65535 */
	assert_int_equal(iketcp_mem_used() - used0, IKETCP_MEM_ASM_FLOOR);
	uint8_t *held = d.asm_buf;
	for (size_t cut = 1; cut < ls; cut += 97) {
		feed_split(&d, small, ls, cut);
		iketcp_deframer_trim(&d); /* used every period: kept, no new malloc */
		assert_ptr_equal(d.asm_buf, held);
	}
	feed_split(&d, big, lb, 5000);
	assert_int_equal(d.asm_cap, 32768);
	assert_int_equal(iketcp_mem_used() - used0, 32768);
	feed_split(&d, small, ls, 3); /* fits the large buffer */
	assert_int_equal(d.asm_cap, 32768);
	iketcp_deframer_trim(&d); /* the large frame came in this period: kept */
	assert_int_equal(d.asm_cap, 32768);
	feed_split(&d, small, ls, 3);
	iketcp_deframer_trim(&d); /* 1400 <= 32768 / 4: released */
	assert_null(d.asm_buf);
	assert_int_equal(iketcp_mem_used(), used0);
	feed_split(&d, small, ls, 3);
	assert_int_equal(d.asm_cap, IKETCP_MEM_ASM_FLOOR);
	iketcp_deframer_free(&d);
	assert_int_equal(iketcp_mem_used(), used0);
}

/* Under the memory budget: a large frame that spans reads is refused with
 * IKETCP_E_NOMEM and nothing consumed (it can be retried); a frame up to
 * IKETCP_MEM_ASM_FLOOR is always assembled. */
static void
test_asm_mem_limit(void **state)
{
	(void)state;
	static uint8_t big[5000], small[1400];
	size_t lb = tu_frame_esp(big, sizeof(big) - 2, 0x7777, 1);
	size_t ls = tu_frame_esp(small, sizeof(small) - 2, 0x7777, 2);
	size_t used0 = iketcp_mem_used();
	uint64_t ref0 = iketcp_mem_refused();
	struct iketcp_deframer d;
	struct iketcp_cur in;
	const uint8_t *fr;
	size_t flen;

	iketcp_mem_set_limit(used0 + 1); /* nothing fits */
	assert_int_equal(iketcp_deframer_init(&d, NULL), IKETCP_OK);
	feed_split(&d, small, ls, 100); /* the floor: never refused */
	assert_int_equal(d.stats.mem_refused, 0);
	iketcp_cur_init(&in, big, 1000);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), IKETCP_E_NOMEM);
	assert_int_equal(iketcp_cur_left(&in), 1000); /* nothing consumed */
	assert_int_equal(d.stats.mem_refused, 1);
	assert_int_equal(iketcp_mem_refused(), ref0 + 1);
	assert_int_equal(d.asm_cap, IKETCP_MEM_ASM_FLOOR); /* the old buffer is kept */
	/* the split Length path refuses the same way */
	iketcp_cur_init(&in, big, 1);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
	iketcp_cur_init(&in, big + 1, 999);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), IKETCP_E_NOMEM);
	assert_int_equal(iketcp_cur_left(&in), 999);
	assert_int_equal(iketcp_mem_refused(), ref0 + 2);
	iketcp_mem_set_limit(0);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
	iketcp_cur_init(&in, big + 1000, lb - 1000);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 1);
	assert_int_equal(flen, lb);
	assert_memory_equal(fr, big, lb);
	iketcp_deframer_free(&d);
	assert_int_equal(iketcp_mem_used(), used0);
}

static void
test_free_and_reuse(void **state)
{
	(void)state;
	uint8_t data[40];
	struct iketcp_deframer d;
	struct iketcp_cur in;
	const uint8_t *fr;
	size_t flen;

	iketcp_deframer_free(NULL);
	tu_frame_esp(data, 38, 0x7777, 1);
	assert_int_equal(iketcp_deframer_init(&d, NULL), IKETCP_OK);
	iketcp_cur_init(&in, data, 20);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
	iketcp_deframer_free(&d); /* ASan: the owned buffer is released */
	assert_null(d.asm_buf);
	assert_int_equal(iketcp_deframer_pending(&d), 0);
	/* a freed deframer refuses use until it is initialised again */
	iketcp_cur_init(&in, data + 20, 20);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), IKETCP_E_STATE);
	assert_int_equal(in.off, 0);
	iketcp_deframer_free(&d); /* twice is harmless */
}

/* R23: a partial frame dies with its connection; the new connection (a new
 * deframer) parses only what it receives, starting with the prefix (R24). */
static void
test_r23_partial_frame_discarded(void **state)
{
	(void)state;
	uint8_t old_fr[206], new_data[6 + 106];
	struct iketcp_deframer_cfg cfg = {.expect_prefix = 1};
	struct iketcp_deframer d;
	struct iketcp_cur in;
	const uint8_t *fr;
	size_t flen;

	/* connection 1: prefix, then Length + half a body; then it breaks */
	tu_frame_ike(old_fr, 200, IKETCP_IKE_INFORMATIONAL, 9);
	assert_int_equal(iketcp_deframer_init(&d, &cfg), IKETCP_OK);
	iketcp_cur_init(&in, IKETCP_PREFIX, IKETCP_PREFIX_LEN);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
	iketcp_cur_init(&in, old_fr, 103);
	assert_int_equal(iketcp_deframer_next(&d, &in, &fr, &flen), 0);
	assert_int_equal(iketcp_deframer_pending(&d), 103);
	iketcp_deframer_free(&d);

	/* connection 2: prefix + one full frame; nothing of connection 1 */
	memcpy(new_data, IKETCP_PREFIX, 6);
	tu_frame_ike(new_data + 6, 100, IKETCP_IKE_INFORMATIONAL, 10);
	assert_int_equal(iketcp_deframer_init(&d, &cfg), IKETCP_OK);
	for (size_t cut = 0; cut <= 10; cut++) {
		size_t got = 0;
		assert_int_equal(iketcp_deframer_init(&d, &cfg), IKETCP_OK);
		iketcp_cur_init(&in, new_data, cut);
		while (iketcp_deframer_next(&d, &in, &fr, &flen) == 1)
			got++;
		iketcp_cur_init(&in, new_data + cut, sizeof(new_data) - cut);
		while (iketcp_deframer_next(&d, &in, &fr, &flen) == 1) {
			assert_int_equal(flen, 106);
			assert_memory_equal(fr, new_data + 6, 106);
			got++;
		}
		assert_int_equal(got, 1);
		assert_int_equal(iketcp_deframer_pending(&d), 0);
		iketcp_deframer_free(&d);
	}
}

static void
test_state_names(void **state)
{
	(void)state;
	assert_string_equal(iketcp_deframer_state_name(IKETCP_DF_PREFIX), "prefix");
	assert_string_equal(iketcp_deframer_state_name(IKETCP_DF_LEN), "length");
	assert_string_equal(iketcp_deframer_state_name(IKETCP_DF_BODY), "body");
	assert_string_equal(iketcp_deframer_state_name(IKETCP_DF_FAILED), "failed");
	assert_string_equal(iketcp_deframer_state_name((enum iketcp_deframer_state)42), "invalid");
}

/* ---- golden capture: libreswan <-> libreswan over espintcp ------------------------------ */

/*
 * What tests/data/libreswan-espintcp-session.pcap holds, frame by frame
 * (checked by hand against tshark's dissection, see tests/data/README.md).
 */
#define LS_SPI_I 0x6598f2a720539fd5ull
#define LS_SPI_R 0xd50a5702c7a9f02bull
#define LS_ESP_SPI_I2R 0xd55e1affu /* the responder's inbound SA */
#define LS_ESP_SPI_R2I 0xd70f1ce5u /* the initiator's inbound SA */

struct golden {
	size_t len;
	enum iketcp_frame_kind kind;
	/* IKE */
	uint8_t exchange, flags, np;
	uint32_t msg_id;
	uint64_t spi_r;
	/* ESP */
	uint32_t spi, seq;
};

static const struct golden ls_i2r[] = {
	{834, IKETCP_FRAME_IKE, IKETCP_IKE_SA_INIT, 0x08, 33, 0, 0, 0, 0},
	{391, IKETCP_FRAME_IKE, IKETCP_IKE_AUTH, 0x08, 46, 1, LS_SPI_R, 0, 0},
	{122, IKETCP_FRAME_ESP, 0, 0, 0, 0, 0, LS_ESP_SPI_I2R, 1},
	{122, IKETCP_FRAME_ESP, 0, 0, 0, 0, 0, LS_ESP_SPI_I2R, 2},
	{122, IKETCP_FRAME_ESP, 0, 0, 0, 0, 0, LS_ESP_SPI_I2R, 3},
};

static const struct golden ls_r2i[] = {
	{446, IKETCP_FRAME_IKE, IKETCP_IKE_SA_INIT, 0x20, 33, 0, LS_SPI_R, 0, 0},
	{231, IKETCP_FRAME_IKE, IKETCP_IKE_AUTH, 0x20, 46, 1, LS_SPI_R, 0, 0},
	{122, IKETCP_FRAME_ESP, 0, 0, 0, 0, 0, LS_ESP_SPI_R2I, 1},
	{122, IKETCP_FRAME_ESP, 0, 0, 0, 0, 0, LS_ESP_SPI_R2I, 2},
	{122, IKETCP_FRAME_ESP, 0, 0, 0, 0, 0, LS_ESP_SPI_R2I, 3},
};

#define LS_MAX_SEG 16

struct capture {
	struct stream s;
	size_t seg_end[LS_MAX_SEG];
	size_t nseg;
};

/* Loads a direction and builds the expected frame list from the golden table. */
static void
load_capture(struct capture *c, const char *name, int prefix, const struct golden *g, size_t n)
{
	size_t off;

	memset(c, 0, sizeof(*c));
	c->s.data = tu_load_hex(name, &c->s.len, c->seg_end, LS_MAX_SEG, &c->nseg);
	c->s.prefix_len = prefix ? IKETCP_PREFIX_LEN : 0;
	off = c->s.prefix_len;
	for (size_t i = 0; i < n; i++) {
		c->s.fr[i] = (struct exp_frame){.off = off, .len = g[i].len, .kind = g[i].kind};
		off += g[i].len;
	}
	c->s.n = n;
	assert_int_equal(off, c->s.len); /* nothing else in the stream */
}

/* What check_capture_frames() read from a direction. */
struct parsed {
	struct iketcp_ike_hdr ike[MAX_FRAMES];
	size_t nike;
	uint32_t esp_spi[MAX_FRAMES], esp_seq[MAX_FRAMES];
	size_t nesp;
};

/* Deframes a whole direction and checks each frame against the golden table. */
static void
check_capture_frames(const struct capture *c, const struct golden *g, size_t n, struct parsed *p)
{
	struct iketcp_deframer d;
	struct iketcp_cur in;
	const uint8_t *fr;
	size_t flen, i = 0;
	int rc;

	memset(p, 0, sizeof(*p));
	deframer_start(&d, &c->s);
	iketcp_cur_init(&in, c->s.data, c->s.len);
	while ((rc = iketcp_deframer_next(&d, &in, &fr, &flen)) == 1) {
		struct iketcp_frame f;
		struct iketcp_ike_hdr h;

		assert_true(i < n);
		assert_int_equal(flen, g[i].len);
		assert_int_equal(iketcp_frame_classify(fr, flen, &f), IKETCP_OK);
		assert_int_equal(f.kind, g[i].kind);
		if (f.kind == IKETCP_FRAME_IKE) {
			assert_int_equal(iketcp_ike_parse(f.msg, f.msg_len, &h), IKETCP_OK);
			assert_true(h.spi_i == LS_SPI_I);
			assert_true(h.spi_r == g[i].spi_r);
			assert_int_equal(h.version, 0x20);
			assert_int_equal(h.exchange, g[i].exchange);
			assert_int_equal(h.flags, g[i].flags);
			assert_int_equal(h.next_payload, g[i].np);
			assert_int_equal(h.msg_id, g[i].msg_id);
			assert_int_equal(h.length, flen - 6); /* F1 */
			p->ike[p->nike++] = h;
		} else {
			assert_int_equal(f.spi, g[i].spi);
			assert_int_equal(tu_get32(f.msg + 4), g[i].seq);
			assert_int_equal(f.msg_len, 120);
			p->esp_spi[p->nesp] = f.spi;
			p->esp_seq[p->nesp++] = tu_get32(f.msg + 4);
		}
		i++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(i, n);
	assert_int_equal(d.stats.zero_copy, n);
	iketcp_deframer_free(&d);
}

static void
test_capture_i2r_frames(void **state)
{
	(void)state;
	struct capture c;
	struct parsed p;

	load_capture(&c, "libreswan-i2r.hex", 1, ls_i2r, TU_ARRAY_LEN(ls_i2r));
	/* R9/R15: the TO's stream starts with the prefix, in its own segment */
	assert_hex_equal(c.s.data, 6, "49 4B 45 54 43 50");
	assert_int_equal(c.seg_end[0], 6);
	check_capture_frames(&c, ls_i2r, TU_ARRAY_LEN(ls_i2r), &p);
	assert_int_equal(p.nike, 2);
	assert_int_equal(p.nesp, 3);
	free(c.s.data);
}

static void
test_capture_r2i_frames(void **state)
{
	(void)state;
	struct capture c;
	struct parsed p;

	load_capture(&c, "libreswan-r2i.hex", 0, ls_r2i, TU_ARRAY_LEN(ls_r2i));
	/* F4: the TR never sends a prefix; its first octets are a Length */
	assert_hex_equal(c.s.data, 6, "01 be 00 00 00 00");
	check_capture_frames(&c, ls_r2i, TU_ARRAY_LEN(ls_r2i), &p);
	assert_int_equal(p.nike, 2);
	assert_int_equal(p.nesp, 3);
	free(c.s.data);
}

/* The parsed headers of both directions tell one consistent story. */
static void
test_capture_spis_consistent(void **state)
{
	(void)state;
	struct capture c;
	struct parsed i2r, r2i;

	load_capture(&c, "libreswan-i2r.hex", 1, ls_i2r, TU_ARRAY_LEN(ls_i2r));
	check_capture_frames(&c, ls_i2r, TU_ARRAY_LEN(ls_i2r), &i2r);
	free(c.s.data);
	load_capture(&c, "libreswan-r2i.hex", 0, ls_r2i, TU_ARRAY_LEN(ls_r2i));
	check_capture_frames(&c, ls_r2i, TU_ARRAY_LEN(ls_r2i), &r2i);
	free(c.s.data);

	/* one IKE SA: SPIi everywhere; SPIr is 0 only in the first request (§1.5) */
	uint64_t spi_r = r2i.ike[0].spi_r;
	assert_true(spi_r != 0);
	assert_true(i2r.ike[0].spi_r == 0);
	assert_true(i2r.ike[1].spi_r == spi_r && r2i.ike[1].spi_r == spi_r);
	for (size_t i = 0; i < 2; i++) {
		assert_true(i2r.ike[i].spi_i == r2i.ike[0].spi_i && r2i.ike[i].spi_i != 0);
		/* the TO sends requests as original initiator; the TR answers them */
		assert_true(iketcp_ike_from_initiator(&i2r.ike[i]));
		assert_false(iketcp_ike_is_response(&i2r.ike[i]));
		assert_false(iketcp_ike_from_initiator(&r2i.ike[i]));
		assert_true(iketcp_ike_is_response(&r2i.ike[i]));
		assert_int_equal(i2r.ike[i].exchange, r2i.ike[i].exchange);
		assert_int_equal(i2r.ike[i].msg_id, r2i.ike[i].msg_id);
		assert_int_equal(i2r.ike[i].msg_id, i);
	}
	assert_string_equal(iketcp_ike_exchange_name(i2r.ike[0].exchange), "IKE_SA_INIT");
	assert_string_equal(iketcp_ike_exchange_name(i2r.ike[1].exchange), "IKE_AUTH");
	/* one ESP SPI per direction, non-zero and outside 1-255 (R8), seq 1, 2, 3 */
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(i2r.esp_spi[i], i2r.esp_spi[0]);
		assert_int_equal(r2i.esp_spi[i], r2i.esp_spi[0]);
		assert_int_equal(i2r.esp_seq[i], i + 1);
		assert_int_equal(r2i.esp_seq[i], i + 1);
	}
	assert_int_not_equal(i2r.esp_spi[0], r2i.esp_spi[0]);
	assert_true(i2r.esp_spi[0] >= 256 && r2i.esp_spi[0] >= 256);
}

static void
test_capture_every_two_way_split(void **state)
{
	(void)state;
	struct capture c;

	load_capture(&c, "libreswan-i2r.hex", 1, ls_i2r, TU_ARRAY_LEN(ls_i2r));
	for (size_t k = 0; k <= c.s.len; k++)
		feed_and_check(&c.s, &k, 1);
	free(c.s.data);
	load_capture(&c, "libreswan-r2i.hex", 0, ls_r2i, TU_ARRAY_LEN(ls_r2i));
	for (size_t k = 0; k <= c.s.len; k++)
		feed_and_check(&c.s, &k, 1);
	free(c.s.data);
}

static void
test_capture_tcp_segments_and_random(void **state)
{
	(void)state;
	struct capture c;
	struct tu_rng rng;
	size_t cuts[2048];

	tu_rng_seed(&rng, 4500);
	load_capture(&c, "libreswan-i2r.hex", 1, ls_i2r, TU_ARRAY_LEN(ls_i2r));
	assert_int_equal(c.nseg, 6); /* prefix, 2 IKE, 3 ESP: one per segment */
	feed_and_check(&c.s, c.seg_end, c.nseg - 1);
	for (int run = 0; run < 300; run++)
		feed_and_check(&c.s, cuts, random_cuts(&rng, c.s.len, cuts, TU_ARRAY_LEN(cuts)));
	free(c.s.data);

	load_capture(&c, "libreswan-r2i.hex", 0, ls_r2i, TU_ARRAY_LEN(ls_r2i));
	assert_int_equal(c.nseg, 5);
	feed_and_check(&c.s, c.seg_end, c.nseg - 1);
	for (int run = 0; run < 300; run++)
		feed_and_check(&c.s, cuts, random_cuts(&rng, c.s.len, cuts, TU_ARRAY_LEN(cuts)));
	free(c.s.data);
}

/* Re-encoding each message with our encoders gives libreswan's bytes. */
static void
check_reencode(const struct capture *c)
{
	uint8_t out[IKETCP_FRAME_MAX];

	for (size_t i = 0; i < c->s.n; i++) {
		const uint8_t *fr = c->s.data + c->s.fr[i].off;
		size_t len = c->s.fr[i].len;
		struct iketcp_frame f;
		uint8_t head[2];
		int rc;

		assert_int_equal(iketcp_frame_classify(fr, len, &f), IKETCP_OK);
		memset(out, 0, len);
		if (f.kind == IKETCP_FRAME_IKE)
			rc = iketcp_frame_encode_ike(out, sizeof(out), f.msg, f.msg_len);
		else
			rc = iketcp_frame_encode_esp(out, sizeof(out), f.msg, f.msg_len);
		assert_int_equal(rc, len);
		assert_memory_equal(out, fr, len);
		/* the gateway path (UDP/4500 datagram -> frame) agrees */
		assert_int_equal(iketcp_frame_datagram_head(head, f.body, f.body_len),
				 f.kind == IKETCP_FRAME_IKE ? IKETCP_FRAME_IKE : IKETCP_FRAME_ESP);
		assert_memory_equal(head, fr, 2);
	}
}

static void
test_capture_reencode(void **state)
{
	(void)state;
	struct capture c;

	load_capture(&c, "libreswan-i2r.hex", 1, ls_i2r, TU_ARRAY_LEN(ls_i2r));
	check_reencode(&c);
	free(c.s.data);
	load_capture(&c, "libreswan-r2i.hex", 0, ls_r2i, TU_ARRAY_LEN(ls_r2i));
	check_reencode(&c);
	free(c.s.data);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_whole),
		cmocka_unit_test(test_stream_every_two_way_split),
		cmocka_unit_test(test_stream_byte_by_byte),
		cmocka_unit_test(test_stream_random_chunkings),
		cmocka_unit_test(test_prefix_every_split),
		cmocka_unit_test(test_prefix_wrong_byte_each_position),
		cmocka_unit_test(test_prefix_wrong_byte_immediate),
		cmocka_unit_test(test_prefix_missing),
		cmocka_unit_test(test_no_prefix_mode),
		cmocka_unit_test(test_badlen_0_and_1),
		cmocka_unit_test(test_badlen_split_between_reads),
		cmocka_unit_test(test_badlen_after_frames),
		cmocka_unit_test(test_reprefix_refused),
		cmocka_unit_test(test_length_494b_is_a_frame),
		cmocka_unit_test(test_max_frame_exact_accepted),
		cmocka_unit_test(test_max_frame_default_65535),
		cmocka_unit_test(test_max_frame_plus_one_toobig),
		cmocka_unit_test(test_max_frame_3),
		cmocka_unit_test(test_zero_copy_pointer_equality),
		cmocka_unit_test(test_caller_asm_buffer),
		cmocka_unit_test(test_init_validation),
		cmocka_unit_test(test_pending),
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_asm_sized_to_frame),
		cmocka_unit_test(test_asm_mem_limit),
		cmocka_unit_test(test_free_and_reuse),
		cmocka_unit_test(test_r23_partial_frame_discarded),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_capture_i2r_frames),
		cmocka_unit_test(test_capture_r2i_frames),
		cmocka_unit_test(test_capture_spis_consistent),
		cmocka_unit_test(test_capture_every_two_way_split),
		cmocka_unit_test(test_capture_tcp_segments_and_random),
		cmocka_unit_test(test_capture_reencode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
