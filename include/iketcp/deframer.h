/*
 * Incremental RFC 9329 stream reader.
 *
 * Feed it the bytes of one direction of one connection in whatever pieces
 * the socket delivered; it hands out whole frames (Length field included),
 * one per call. States (docs/conformance.md, "Receiver states"):
 *
 *   PREFIX  (TCP responder only) 6 bytes "IKETCP", possibly split over any
 *           number of reads (R16); the first wrong byte fails at once.
 *   LEN     2 bytes of Length; 0 or 1 fails (R7); above max_frame fails;
 *           "IKETCP" again (Length 0x494B, then "ETCP") fails as soon as
 *           its six bytes are in (F4: the prefix is sent once).
 *   BODY    Length-2 bytes.
 *   FAILED  sticky: every later call returns the same error.
 *
 * A frame that lies whole in the caller's input is handed out as a pointer
 * into that input (no copy). A frame split across inputs is assembled in
 * one buffer that the deframer owns (allocated when a frame first spans
 * inputs, sized to that frame: a power of two from IKETCP_MEM_ASM_FLOOR to
 * max_frame, replaced only by a larger frame, charged to the memory
 * budget of mem.h) or that the caller supplies; frames of a steady size
 * allocate nothing. A
 * partial frame simply dies with the deframer when its connection breaks
 * (R23): nothing ever joins bytes of two connections.
 *
 * Classification (IKE / ESP / keepalive / runt) is a separate step:
 * iketcp_frame_classify(), so that a bad frame is dropped and counted
 * without desynchronising the stream.
 */
#ifndef IKETCP_DEFRAMER_H
#define IKETCP_DEFRAMER_H

#include <stddef.h>
#include <stdint.h>

#include "iketcp/cursor.h"
#include "iketcp/err.h"
#include "iketcp/mem.h"

#ifdef __cplusplus
extern "C" {
#endif

enum iketcp_deframer_state {
	IKETCP_DF_PREFIX,
	IKETCP_DF_LEN,
	IKETCP_DF_BODY,
	IKETCP_DF_FAILED,
};

struct iketcp_deframer_cfg {
	int expect_prefix; /* non-zero on the TCP responder side */
	size_t max_frame;  /* largest Length accepted; 0 means IKETCP_FRAME_MAX */
	/*
	 * Optional caller-owned assembly buffer of at least max_frame bytes.
	 * NULL: the deframer mallocs one when a frame is split across
	 * inputs, sized to that frame, and keeps it until
	 * iketcp_deframer_trim()/_free() release it.
	 */
	uint8_t *asm_buf;
	size_t asm_cap;
};

struct iketcp_deframer_stats {
	uint64_t frames;      /* frames handed out */
	uint64_t zero_copy;   /* of which pointed into the caller's input */
	uint64_t bytes;       /* input bytes consumed, prefix included */
	uint64_t mem_refused; /* assembly buffers the memory budget refused (mem.h) */
};

struct iketcp_deframer {
	enum iketcp_deframer_state state;
	int err; /* the sticky error in state FAILED */
	size_t max_frame;
	uint8_t prefix_got; /* bytes of the prefix matched so far */
	uint8_t len_got;    /* bytes of the Length field seen (0 or 1 in LEN) */
	uint8_t len_hi;     /* first Length byte when len_got == 1 */
	uint16_t need;      /* BODY: Length of the frame being assembled */
	size_t have;        /* BODY: bytes of it in asm (field included) */
	uint8_t *asm_buf;
	size_t asm_cap;
	int asm_owned;   /* asm_buf was malloc'ed by us and is freed by us */
	size_t asm_peak; /* largest frame assembled since the last trim */
	struct iketcp_deframer_stats stats;
};

/*
 * Initialises d. cfg may be NULL (no prefix, maximum frame 65535).
 * Returns IKETCP_OK, or IKETCP_E_INVAL if max_frame is outside
 * [3, IKETCP_FRAME_MAX] or a supplied asm_buf is smaller than max_frame.
 * Allocates nothing.
 */
int IKETCP_WUR iketcp_deframer_init(struct iketcp_deframer *d,
				    const struct iketcp_deframer_cfg *cfg);

/*
 * Returns the next whole frame. Reads from in and advances it past what
 * was consumed. On 1, *frame and *frame_len describe one frame (Length
 * field included; *frame_len == Length >= 2); the pointer is valid until
 * the next call on d or until the input memory changes.
 * Returns 1 (a frame), 0 (in is empty: all of it was consumed, feed more),
 * IKETCP_E_BADPREFIX, IKETCP_E_BADLEN, IKETCP_E_TOOBIG, IKETCP_E_REPREFIX (fatal and sticky:
 * close the connection), or IKETCP_E_NOMEM (the assembly buffer could not
 * be allocated or the memory budget of mem.h refused it; nothing of the
 * frame was lost, d stays usable and in is not advanced past the
 * unassembled bytes).
 */
int IKETCP_WUR iketcp_deframer_next(struct iketcp_deframer *d, struct iketcp_cur *in,
				    const uint8_t **frame, size_t *frame_len);

/* Returns non-zero once the prefix has been received (always when none is expected). */
int iketcp_deframer_prefix_done(const struct iketcp_deframer *d);

/* Returns the number of bytes of an unfinished prefix or frame held inside d. */
size_t iketcp_deframer_pending(const struct iketcp_deframer *d);

/*
 * Releases an owned assembly buffer when no partial frame is in it and it
 * was not needed since the previous call (or was sized for a frame four
 * times larger than any since then). Call it after each read: a stream
 * whose frames keep spanning reads keeps its buffer, an idle one loses it
 * by the second call.
 */
void iketcp_deframer_trim(struct iketcp_deframer *d);

/* Releases everything d owns. d may be NULL. d must be re-initialised before reuse. */
void iketcp_deframer_free(struct iketcp_deframer *d);

/* Returns the static name of a state, for logs. */
const char *iketcp_deframer_state_name(enum iketcp_deframer_state s);

#ifdef __cplusplus
}
#endif
#endif
