/*
 * Per-connection send queue of whole RFC 9329 frames.
 *
 * Guarantees:
 *  - Frames are never interleaved on the wire: once the first byte of a
 *    frame has been written, that frame is finished before any byte of
 *    another, whatever partial writes the socket does.
 *  - Two classes. IKE frames go out before ESP frames that are queued but
 *    not yet started, so control traffic is not stuck behind a bulk
 *    backlog. Within a class the order is FIFO.
 *  - Many frames per writev: each class is a byte ring that holds frames
 *    back to back, so one writev covers at most 6 iovecs and any number
 *    of frames.
 *  - Bounded: ESP frames are dropped (and counted) once the queued bytes
 *    would exceed `budget`; IKE frames are still accepted up to the hard
 *    cap `budget + ike_reserve`, then dropped and counted too.
 *  - Memory follows use: a ring starts at IKETCP_SENDQ_RING_MIN bytes on
 *    its first push and doubles when a frame does not fit, up to what its
 *    class may hold (ESP `budget`, IKE `budget + ike_reserve`). Growths
 *    are charged to the process-wide budget of mem.h, which may refuse
 *    them (the frame is then dropped and counted like a full budget).
 *    iketcp_sendq_trim() gives memory back; see there for when.
 *  - No allocation per frame in steady state: a ring only grows when the
 *    backlog reaches a size it has not held since the last trim.
 *
 * Frames are stored self-describing (their own Length field), so the queue
 * needs no per-frame metadata.
 */
#ifndef IKETCP_SENDQ_H
#define IKETCP_SENDQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "iketcp/dgram.h"
#include "iketcp/err.h"
#include "iketcp/mem.h"

#ifdef __cplusplus
extern "C" {
#endif

enum iketcp_class {
	IKETCP_CLASS_IKE = 0,
	IKETCP_CLASS_ESP = 1,
};
#define IKETCP_NCLASS 2

/* The most iovecs iketcp_sendq_iov() ever fills: 2 ring pieces x 3 parts. */
#define IKETCP_SENDQ_IOV_MAX 6

#define IKETCP_SENDQ_DEFAULT_BUDGET (256u * 1024u)
#define IKETCP_SENDQ_DEFAULT_IKE_RESERVE (128u * 1024u)
/* First size of a ring: one MTU-sized ESP frame fits. */
#define IKETCP_SENDQ_RING_MIN 2048u

struct iketcp_sendq_cfg {
	size_t budget;      /* 0 means IKETCP_SENDQ_DEFAULT_BUDGET */
	size_t ike_reserve; /* 0 means IKETCP_SENDQ_DEFAULT_IKE_RESERVE */
};

struct iketcp_sendq_stats {
	uint64_t frames_in[IKETCP_NCLASS]; /* accepted */
	uint64_t bytes_in[IKETCP_NCLASS];
	uint64_t frames_out[IKETCP_NCLASS]; /* completely written */
	uint64_t bytes_out[IKETCP_NCLASS];
	uint64_t dropped[IKETCP_NCLASS]; /* refused by budget or cap */
	uint64_t dropped_bytes[IKETCP_NCLASS];
	uint64_t writev_calls;   /* calls to the writer that wrote > 0 bytes */
	uint64_t partial_writes; /* of which left queued bytes behind */
	uint64_t overtakes;      /* IKE frames sent before an earlier-queued ESP frame */
	uint64_t mem_refused;    /* of dropped: refused by the process memory budget (mem.h) */
	uint64_t grows;          /* ring allocations and growths */
	uint64_t trims;          /* rings released by iketcp_sendq_trim() */
};

struct iketcp_ring {
	uint8_t *buf;
	size_t cap;
	size_t head; /* index of the first queued byte */
	size_t len;  /* queued bytes */
	size_t peak; /* most bytes queued since the last trim */
};

struct iketcp_sendq {
	struct iketcp_ring ring[IKETCP_NCLASS];
	uint64_t esp_since;   /* iketcp_sendq_standing(): ESP queued since then, 0 = not */
	uint64_t stood_until; /* ... and it answers 1 until then */
	size_t budget;
	size_t hard_cap;
	int inprog;         /* class of the frame partly on the wire, or -1 */
	size_t inprog_left; /* its bytes not yet written (at its ring's head) */
	struct iketcp_sendq_stats stats;
};

/*
 * Writer callback: write the iovecs (a prefix of them is fine) and return
 * the number of bytes written (>= 0), IKETCP_E_AGAIN when nothing can be
 * written now, or IKETCP_E_IO with errno set.
 */
typedef long (*iketcp_writev_fn)(void *ctx, const struct iovec *iov, int iovcnt);

/* Initialises q. cfg may be NULL. Allocates nothing.
 * Returns IKETCP_OK or IKETCP_E_INVAL (budget < 3). */
int IKETCP_WUR iketcp_sendq_init(struct iketcp_sendq *q, const struct iketcp_sendq_cfg *cfg);

/* Releases everything. q may be NULL. */
void iketcp_sendq_free(struct iketcp_sendq *q);

/*
 * Gives back the memory of empty rings that were not needed since the
 * previous call: a ring is released when nothing was queued in it since
 * then, or when it was grown larger than IKETCP_SENDQ_RING_MIN and never
 * filled beyond a quarter of its size since then (it is regrown on
 * demand). Other rings are kept, so calling this every time the queue
 * empties (and from time to time on idle connections) costs no
 * allocation on a busy connection and frees an idle one's rings by the
 * second call.
 */
void iketcp_sendq_trim(struct iketcp_sendq *q);

/*
 * Queues one whole frame given as head + body (either part may be empty),
 * copying it into the ring of class cls. The first two bytes of head+body
 * must be a Length field equal to head_len + body_len, and at least 3.
 * Returns IKETCP_OK, IKETCP_E_NOBUFS (refused by budget, hard cap or the
 * process memory budget of mem.h;
 * counted in stats.dropped), IKETCP_E_INVAL (not a whole frame, bad class)
 * or IKETCP_E_NOMEM. The queue is unchanged on every error.
 */
int IKETCP_WUR iketcp_sendq_push(struct iketcp_sendq *q, enum iketcp_class cls, const uint8_t *head,
				 size_t head_len, const uint8_t *body, size_t body_len);

/*
 * Frames a datagram classified by iketcp_dgram_classify() (dgram.h) and
 * queues it in the class iketcp_dgram_frame_kind() gives (IKE ahead of
 * ESP not yet started), without looking at its bytes again: the 2-byte
 * Length is written from d->len and the datagram d->p is copied once, into
 * the ring. d->p must still hold the classified bytes.
 * Returns IKETCP_OK, any error of iketcp_dgram_frame_kind()
 * (IKETCP_E_KEEPALIVE: 0xFF NAT keepalives are never framed, R47;
 * IKETCP_E_EMPTY: a runt; IKETCP_E_MSGSIZE), IKETCP_E_INVAL (d->len
 * 0 or above IKETCP_BODY_MAX with an IKE or ESP kind: not from the
 * classifier), or any error of iketcp_sendq_push().
 */
int IKETCP_WUR iketcp_sendq_push_dgram(struct iketcp_sendq *q, const struct iketcp_dgram *d);

/*
 * Frames a UDP/4500 datagram and queues it in the class it belongs to:
 * iketcp_dgram_classify() + iketcp_sendq_push_dgram().
 * Returns IKETCP_OK, any error of iketcp_frame_datagram_head() (for
 * example IKETCP_E_KEEPALIVE: 0xFF NAT keepalives are never framed, R47),
 * or any error of iketcp_sendq_push().
 */
int IKETCP_WUR iketcp_sendq_push_datagram(struct iketcp_sendq *q, const uint8_t *dgram, size_t len);

/* Fills iov (room for IKETCP_SENDQ_IOV_MAX) with the bytes to write next,
 * in wire order. Returns the number of iovecs (0 when empty). */
int iketcp_sendq_iov(const struct iketcp_sendq *q, struct iovec iov[IKETCP_SENDQ_IOV_MAX]);

/* Marks n bytes from the front of the last iketcp_sendq_iov() as written.
 * Returns IKETCP_OK or IKETCP_E_INVAL (n larger than what is queued). */
int IKETCP_WUR iketcp_sendq_consume(struct iketcp_sendq *q, size_t n);

/*
 * Writes queued frames through fn until the queue is empty or fn stops.
 * Returns IKETCP_OK (queue empty), IKETCP_E_AGAIN (bytes remain: wait for
 * writability; also when fn wrote 0 bytes) or IKETCP_E_IO (errno from fn).
 */
int IKETCP_WUR iketcp_sendq_flush(struct iketcp_sendq *q, iketcp_writev_fn fn, void *ctx);

/*
 * Whether the queue is standing, for a caller that keeps the kernel's
 * buffers short only while there is a backlog worth overtaking
 * (TCP_NOTSENT_LOWAT, daemon/relay.c). Called after each flush with the
 * time now (any monotonic unit, e.g. ns; never 0). The queue stands when
 * IKE is still queued (the socket took less than the IKE frames: the
 * kernel's send buffer is full in front of them) or when ESP has stayed
 * queued without the queue emptying for at least `target`. Returns 1
 * while it stands and for `hold` after it last stood: under overload a
 * queue empties now and then (a socket that takes a whole batch), and
 * without the hold each such moment would let the kernel's buffers fill
 * again. The first call that finds no ESP queued ends a standing period.
 */
int iketcp_sendq_standing(struct iketcp_sendq *q, uint64_t now, uint64_t target, uint64_t hold);

/* Returns the bytes queued in both classes. */
size_t iketcp_sendq_bytes(const struct iketcp_sendq *q);

/* Returns the bytes queued in one class. */
size_t iketcp_sendq_class_bytes(const struct iketcp_sendq *q, enum iketcp_class cls);

#ifdef __cplusplus
}
#endif
#endif
