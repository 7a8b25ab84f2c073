#include "iketcp/deframer.h"

#include <stdlib.h>
#include <string.h>

#include "iketcp/frame.h"
#include "mem_internal.h"

int
iketcp_deframer_init(struct iketcp_deframer *d, const struct iketcp_deframer_cfg *cfg)
{
	struct iketcp_deframer_cfg def = {0};

	if (!cfg)
		cfg = &def;
	size_t max = cfg->max_frame ? cfg->max_frame : IKETCP_FRAME_MAX;
	/* Length 3 is the smallest frame with content (the keepalive). */
	if (max < IKETCP_LEN_SIZE + 1 || max > IKETCP_FRAME_MAX)
		return IKETCP_E_INVAL;
	if (cfg->asm_buf && cfg->asm_cap < max)
		return IKETCP_E_INVAL;
	*d = (struct iketcp_deframer){
		.state = cfg->expect_prefix ? IKETCP_DF_PREFIX : IKETCP_DF_LEN,
		.max_frame = max,
		.asm_buf = cfg->asm_buf,
		.asm_cap = cfg->asm_buf ? cfg->asm_cap : 0,
	};
	return IKETCP_OK;
}

/* Frees an owned assembly buffer and gives its bytes back to the budget. */
static void
release_asm(struct iketcp_deframer *d)
{
	if (d->asm_owned) {
		free(d->asm_buf);
		iketcp__mem_give(d->asm_cap);
		d->asm_buf = NULL;
		d->asm_cap = 0;
		d->asm_owned = 0;
	}
}

/* A failed deframer never assembles again: its buffer goes at once. */
static int
fail(struct iketcp_deframer *d, int err)
{
	d->state = IKETCP_DF_FAILED;
	d->err = err;
	release_asm(d);
	return err;
}

/*
 * Makes sure the assembly buffer holds a frame of `need` bytes. An owned
 * buffer is sized to the frame (a power of two, at least
 * IKETCP_MEM_ASM_FLOOR, at most max_frame) and replaced only by a larger
 * frame, so frames of a steady size allocate nothing; nothing is in it
 * yet, so nothing is copied. Returns IKETCP_OK or IKETCP_E_NOMEM (malloc
 * failed or the memory budget refused; d is unchanged).
 */
static int
ensure_asm(struct iketcp_deframer *d, size_t need)
{
	if (d->asm_buf && d->asm_cap >= need)
		return IKETCP_OK; /* also every caller-supplied buffer */
	size_t cap = IKETCP_MEM_ASM_FLOOR;
	while (cap < need)
		cap *= 2;
	if (cap > d->max_frame)
		cap = d->max_frame;
	if (!iketcp__mem_take(cap, cap <= IKETCP_MEM_ASM_FLOOR)) {
		d->stats.mem_refused++;
		return IKETCP_E_NOMEM;
	}
	uint8_t *nb = malloc(cap);
	if (!nb) {
		iketcp__mem_give(cap);
		return IKETCP_E_NOMEM;
	}
	release_asm(d);
	d->asm_buf = nb;
	d->asm_cap = cap;
	d->asm_owned = 1;
	return IKETCP_OK;
}

/* Checks a Length value; returns IKETCP_OK or the fatal error. */
static int
check_len(const struct iketcp_deframer *d, uint16_t len)
{
	if (len < IKETCP_LEN_SIZE)
		return IKETCP_E_BADLEN; /* R7: Length 0 or 1 */
	if (len > d->max_frame)
		return IKETCP_E_TOOBIG;
	return IKETCP_OK;
}

/*
 * F4: the prefix sent again where a frame starts reads as Length 0x494B
 * ("IK") followed by "ETCP". Left alone it would be taken as an 18 KB
 * frame and swallow what follows; it is refused as soon as its six bytes
 * are there. A real frame of that Length starting with the bytes "ETCP"
 * (an ESP SPI of 0x45544350) is refused too: one SPI at one size.
 */
#define REPREFIX_LENGTH ((uint16_t)('I' << 8 | 'K'))

static int
is_reprefix(const uint8_t *six)
{
	return memcmp(six, IKETCP_PREFIX, IKETCP_PREFIX_LEN) == 0;
}

/* BODY state: copies what is available; returns 1 once the frame is whole. */
static int
fill_body(struct iketcp_deframer *d, struct iketcp_cur *in, const uint8_t **frame,
	  size_t *frame_len)
{
	size_t want = (size_t)d->need - d->have;
	size_t n = iketcp_cur_left(in) < want ? iketcp_cur_left(in) : want;
	size_t had = d->have;

	if (iketcp_cur_get_bytes(in, d->asm_buf + d->have, n) != IKETCP_OK)
		return IKETCP_E_SHORT; /* cannot happen: n <= left */
	d->have += n;
	d->stats.bytes += n;
	if (d->need == REPREFIX_LENGTH && had < IKETCP_PREFIX_LEN && d->have >= IKETCP_PREFIX_LEN &&
	    is_reprefix(d->asm_buf))
		return fail(d, IKETCP_E_REPREFIX);
	if (d->have < d->need)
		return 0;
	*frame = d->asm_buf;
	*frame_len = d->need;
	d->state = IKETCP_DF_LEN;
	d->len_got = 0;
	d->have = 0;
	d->stats.frames++;
	return 1;
}

int
iketcp_deframer_next(struct iketcp_deframer *d, struct iketcp_cur *in, const uint8_t **frame,
		     size_t *frame_len)
{
	uint8_t b;
	uint16_t len;
	int rc;

	switch (d->state) {
	case IKETCP_DF_FAILED:
		return d->err;
	case IKETCP_DF_PREFIX:
		/* R16: match byte by byte so any split works; fail at the first
		 * wrong byte rather than waiting for all six. */
		while (d->prefix_got < IKETCP_PREFIX_LEN) {
			if (iketcp_cur_get_u8(in, &b) != IKETCP_OK)
				return 0;
			d->stats.bytes++;
			if (b != (uint8_t)IKETCP_PREFIX[d->prefix_got])
				return fail(d, IKETCP_E_BADPREFIX);
			d->prefix_got++;
		}
		d->state = IKETCP_DF_LEN;
		/* fall through */
	case IKETCP_DF_LEN:
		if (d->len_got == 0) {
			if (iketcp_cur_peek_u16(in, 0, &len) != IKETCP_OK) {
				/* 0 or 1 byte left: keep the high byte. */
				if (iketcp_cur_get_u8(in, &d->len_hi) != IKETCP_OK)
					return 0;
				d->stats.bytes++;
				d->len_got = 1;
				return 0;
			}
			if ((rc = check_len(d, len)) != IKETCP_OK)
				return fail(d, rc);
			if (len == REPREFIX_LENGTH && iketcp_cur_left(in) >= IKETCP_PREFIX_LEN &&
			    is_reprefix(iketcp_cur_ptr(in))) {
				d->stats.bytes += IKETCP_PREFIX_LEN;
				return fail(d, IKETCP_E_REPREFIX);
			}
			/* Fast path: the whole frame is in the input; no copy. */
			if (iketcp_cur_take(in, len, frame) == IKETCP_OK) {
				*frame_len = len;
				d->stats.bytes += len;
				d->stats.frames++;
				d->stats.zero_copy++;
				return 1;
			}
			if ((rc = ensure_asm(d, len)) != IKETCP_OK)
				return rc; /* nothing consumed: retry later */
			if (len > d->asm_peak)
				d->asm_peak = len;
			d->need = len;
			d->have = 0;
			d->state = IKETCP_DF_BODY;
			return fill_body(d, in, frame, frame_len);
		}
		/* The high byte came in an earlier input. Check the Length
		 * before allocating (a fatal one must cost no memory), and
		 * consume the low byte only once the buffer exists (NOMEM
		 * loses nothing). */
		struct iketcp_cur peek = *in;
		if (iketcp_cur_get_u8(&peek, &b) != IKETCP_OK)
			return 0;
		len = (uint16_t)((uint16_t)d->len_hi << 8 | b);
		if ((rc = check_len(d, len)) != IKETCP_OK) {
			*in = peek;
			d->stats.bytes++;
			return fail(d, rc);
		}
		if ((rc = ensure_asm(d, len)) != IKETCP_OK)
			return rc;
		if (len > d->asm_peak)
			d->asm_peak = len;
		*in = peek;
		d->stats.bytes++;
		d->asm_buf[0] = d->len_hi;
		d->asm_buf[1] = b;
		d->need = len;
		d->have = IKETCP_LEN_SIZE;
		d->state = IKETCP_DF_BODY;
		return fill_body(d, in, frame, frame_len);
	case IKETCP_DF_BODY:
		return fill_body(d, in, frame, frame_len);
	}
	return fail(d, IKETCP_E_STATE);
}

int
iketcp_deframer_prefix_done(const struct iketcp_deframer *d)
{
	return d->state != IKETCP_DF_PREFIX &&
	       !(d->state == IKETCP_DF_FAILED && d->err == IKETCP_E_BADPREFIX);
}

size_t
iketcp_deframer_pending(const struct iketcp_deframer *d)
{
	switch (d->state) {
	case IKETCP_DF_PREFIX:
		return d->prefix_got;
	case IKETCP_DF_LEN:
		return d->len_got;
	case IKETCP_DF_BODY:
		return d->have;
	case IKETCP_DF_FAILED:
		return 0;
	}
	return 0;
}

void
iketcp_deframer_trim(struct iketcp_deframer *d)
{
	if (!d->asm_owned || d->state == IKETCP_DF_BODY)
		return;
	/* Same rule as iketcp_sendq_trim(): unused since the last call, or
	 * sized for a frame four times larger than any since then. */
	if (d->asm_peak == 0 ||
	    (d->asm_cap > IKETCP_MEM_ASM_FLOOR && d->asm_peak <= d->asm_cap / 4))
		release_asm(d);
	d->asm_peak = 0;
}

void
iketcp_deframer_free(struct iketcp_deframer *d)
{
	if (!d)
		return;
	release_asm(d);
	d->asm_buf = NULL;
	d->asm_cap = 0;
	d->state = IKETCP_DF_FAILED;
	d->err = IKETCP_E_STATE;
}

const char *
iketcp_deframer_state_name(enum iketcp_deframer_state s)
{
	switch (s) {
	case IKETCP_DF_PREFIX:
		return "prefix";
	case IKETCP_DF_LEN:
		return "length";
	case IKETCP_DF_BODY:
		return "body";
	case IKETCP_DF_FAILED:
		return "failed";
	}
	return "invalid";
}
