/*
 * Bounded cursors: the only way libiketcp reads untrusted bytes and writes
 * wire bytes.
 *
 * A read cursor is a view (pointer, length, offset) of caller-owned memory.
 * Every read checks that enough bytes are left *before* touching memory and
 * leaves the cursor untouched when it fails, so a caller can retry after
 * more input arrives or bail out with the cursor still describing the
 * unread rest. Integers are decoded big-endian byte by byte (no casts of
 * input pointers, no alignment assumptions).
 *
 * The functions are static inline because they sit on the per-frame path
 * (see bench/), and because keeping them here keeps all input pointer
 * arithmetic in this one header.
 */
#ifndef IKETCP_CURSOR_H
#define IKETCP_CURSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "iketcp/err.h"

#ifdef __cplusplus
extern "C" {
#endif

struct iketcp_cur {
	const uint8_t *base; /* caller-owned, never written */
	size_t len;          /* bytes readable from base */
	size_t off;          /* bytes consumed; invariant: off <= len */
};

/* Sets up c over [p, p+len). p may be NULL only when len is 0. */
static inline void
iketcp_cur_init(struct iketcp_cur *c, const void *p, size_t len)
{
	c->base = (const uint8_t *)p;
	c->len = p ? len : 0;
	c->off = 0;
}

/* Returns the number of unread bytes. */
static inline size_t
iketcp_cur_left(const struct iketcp_cur *c)
{
	return c->len - c->off;
}

/* Returns a pointer to the unread bytes (iketcp_cur_left() of them). */
static inline const uint8_t *
iketcp_cur_ptr(const struct iketcp_cur *c)
{
	return c->base + c->off;
}

/* Advances by n. Returns IKETCP_OK, or IKETCP_E_SHORT (cursor unchanged). */
static inline int IKETCP_WUR
iketcp_cur_skip(struct iketcp_cur *c, size_t n)
{
	if (n > iketcp_cur_left(c))
		return IKETCP_E_SHORT;
	c->off += n;
	return IKETCP_OK;
}

/*
 * Hands out a view of the next n bytes without copying and advances.
 * Returns IKETCP_OK with *out set, or IKETCP_E_SHORT (cursor and *out
 * unchanged). The view lives as long as the memory under the cursor.
 */
static inline int IKETCP_WUR
iketcp_cur_take(struct iketcp_cur *c, size_t n, const uint8_t **out)
{
	if (n > iketcp_cur_left(c))
		return IKETCP_E_SHORT;
	*out = c->base + c->off;
	c->off += n;
	return IKETCP_OK;
}

/* Copies the next n bytes into out and advances. Returns IKETCP_OK or
 * IKETCP_E_SHORT (cursor and out unchanged). */
static inline int IKETCP_WUR
iketcp_cur_get_bytes(struct iketcp_cur *c, void *out, size_t n)
{
	if (n > iketcp_cur_left(c))
		return IKETCP_E_SHORT;
	if (n)
		memcpy(out, c->base + c->off, n);
	c->off += n;
	return IKETCP_OK;
}

/* Reads one byte. Returns IKETCP_OK or IKETCP_E_SHORT (nothing changed). */
static inline int IKETCP_WUR
iketcp_cur_get_u8(struct iketcp_cur *c, uint8_t *out)
{
	if (iketcp_cur_left(c) < 1)
		return IKETCP_E_SHORT;
	*out = c->base[c->off++];
	return IKETCP_OK;
}

/* Reads a big-endian u16. Returns IKETCP_OK or IKETCP_E_SHORT. */
static inline int IKETCP_WUR
iketcp_cur_get_u16(struct iketcp_cur *c, uint16_t *out)
{
	if (iketcp_cur_left(c) < 2)
		return IKETCP_E_SHORT;
	const uint8_t *p = c->base + c->off;
	*out = (uint16_t)((uint16_t)p[0] << 8 | p[1]);
	c->off += 2;
	return IKETCP_OK;
}

/* Reads a big-endian u32. Returns IKETCP_OK or IKETCP_E_SHORT. */
static inline int IKETCP_WUR
iketcp_cur_get_u32(struct iketcp_cur *c, uint32_t *out)
{
	if (iketcp_cur_left(c) < 4)
		return IKETCP_E_SHORT;
	const uint8_t *p = c->base + c->off;
	*out = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	c->off += 4;
	return IKETCP_OK;
}

/* Reads a big-endian u64. Returns IKETCP_OK or IKETCP_E_SHORT. */
static inline int IKETCP_WUR
iketcp_cur_get_u64(struct iketcp_cur *c, uint64_t *out)
{
	uint32_t hi, lo;
	struct iketcp_cur tmp = *c;
	if (iketcp_cur_get_u32(&tmp, &hi) != IKETCP_OK ||
	    iketcp_cur_get_u32(&tmp, &lo) != IKETCP_OK)
		return IKETCP_E_SHORT;
	*c = tmp;
	*out = (uint64_t)hi << 32 | lo;
	return IKETCP_OK;
}

/* Peeks a big-endian u16 at offset at from the current position, without
 * moving. Returns IKETCP_OK or IKETCP_E_SHORT. */
static inline int IKETCP_WUR
iketcp_cur_peek_u16(const struct iketcp_cur *c, size_t at, uint16_t *out)
{
	struct iketcp_cur tmp = *c;
	if (iketcp_cur_skip(&tmp, at) != IKETCP_OK)
		return IKETCP_E_SHORT;
	return iketcp_cur_get_u16(&tmp, out);
}

/*
 * Splits off the next n bytes as their own cursor and advances past them.
 * Returns IKETCP_OK or IKETCP_E_SHORT (nothing changed).
 */
static inline int IKETCP_WUR
iketcp_cur_sub(struct iketcp_cur *c, size_t n, struct iketcp_cur *sub)
{
	const uint8_t *p;
	if (iketcp_cur_take(c, n, &p) != IKETCP_OK)
		return IKETCP_E_SHORT;
	iketcp_cur_init(sub, p, n);
	return IKETCP_OK;
}

/* ---- write cursor ---------------------------------------------------- */

struct iketcp_wcur {
	uint8_t *base; /* caller-owned output buffer */
	size_t cap;    /* its size */
	size_t off;    /* bytes written; invariant: off <= cap */
};

/* Sets up w over the writable buffer [p, p+cap). */
static inline void
iketcp_wcur_init(struct iketcp_wcur *w, void *p, size_t cap)
{
	w->base = (uint8_t *)p;
	w->cap = p ? cap : 0;
	w->off = 0;
}

/* Returns the free space left. */
static inline size_t
iketcp_wcur_room(const struct iketcp_wcur *w)
{
	return w->cap - w->off;
}

/* Appends n bytes. Returns IKETCP_OK or IKETCP_E_SHORT (nothing written). */
static inline int IKETCP_WUR
iketcp_wcur_put_bytes(struct iketcp_wcur *w, const void *p, size_t n)
{
	if (n > iketcp_wcur_room(w))
		return IKETCP_E_SHORT;
	if (n)
		memcpy(w->base + w->off, p, n);
	w->off += n;
	return IKETCP_OK;
}

/* Appends a big-endian u16. Returns IKETCP_OK or IKETCP_E_SHORT. */
static inline int IKETCP_WUR
iketcp_wcur_put_u16(struct iketcp_wcur *w, uint16_t v)
{
	if (iketcp_wcur_room(w) < 2)
		return IKETCP_E_SHORT;
	w->base[w->off] = (uint8_t)(v >> 8);
	w->base[w->off + 1] = (uint8_t)v;
	w->off += 2;
	return IKETCP_OK;
}

/* Appends a big-endian u32. Returns IKETCP_OK or IKETCP_E_SHORT. */
static inline int IKETCP_WUR
iketcp_wcur_put_u32(struct iketcp_wcur *w, uint32_t v)
{
	if (iketcp_wcur_room(w) < 4)
		return IKETCP_E_SHORT;
	for (int i = 0; i < 4; i++)
		w->base[w->off + (size_t)i] = (uint8_t)(v >> (24 - 8 * i));
	w->off += 4;
	return IKETCP_OK;
}

/*
 * Reserves a u16 at the current position, to be back-filled with
 * iketcp_wcur_fill_u16() once the size of what follows is known.
 * Returns the offset of the reserved field (>= 0) or IKETCP_E_SHORT.
 */
static inline long IKETCP_WUR
iketcp_wcur_reserve_u16(struct iketcp_wcur *w)
{
	size_t at = w->off;
	if (iketcp_wcur_put_u16(w, 0) != IKETCP_OK)
		return IKETCP_E_SHORT;
	return (long)at;
}

/* Writes v at a previously reserved offset. Returns IKETCP_OK or
 * IKETCP_E_INVAL if at is not inside the written part. */
static inline int IKETCP_WUR
iketcp_wcur_fill_u16(struct iketcp_wcur *w, long at, uint16_t v)
{
	if (at < 0 || (size_t)at + 2 > w->off)
		return IKETCP_E_INVAL;
	w->base[at] = (uint8_t)(v >> 8);
	w->base[at + 1] = (uint8_t)v;
	return IKETCP_OK;
}

#ifdef __cplusplus
}
#endif
#endif
