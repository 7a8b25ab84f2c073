/*
 * One classification per UDP/4500 datagram.
 *
 * A gateway looks at each datagram it relays to decide where it goes
 * (keepalive, IKE session, ESP SA) and then frames it. Both decisions come
 * from iketcp_dgram_classify(), so that the bytes are read once and the
 * send queue (iketcp_sendq_push_dgram()) takes the result as it is.
 *
 * A datagram is the body of an RFC 9329 frame, and the classifier follows
 * iketcp_frame_classify()'s rules for that body exactly: a datagram is
 * IKE, ESP, keepalive or a runt (with the same runt reason) precisely when
 * the frame made of a Length field and the datagram is. The one body with
 * no frame counterpart here is the empty one: a frame says EMPTY (R5), the
 * datagram is a runt with reason IKETCP_RUNT_EMPTY.
 */
#ifndef IKETCP_DGRAM_H
#define IKETCP_DGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "iketcp/err.h"
#include "iketcp/frame.h"
#include "iketcp/ike.h"

#ifdef __cplusplus
extern "C" {
#endif

enum iketcp_dgram_kind {
	IKETCP_DGRAM_RUNT,      /* cannot be used: see runt (R27) */
	IKETCP_DGRAM_KEEPALIVE, /* exactly one 0xFF octet (RFC 3948): never framed (R47) */
	IKETCP_DGRAM_IKE,       /* marker + IKE header whose Length is the rest */
	IKETCP_DGRAM_ESP,       /* non-zero SPI, at least IKETCP_ESP_MIN bytes */
	IKETCP_DGRAM_OVERSIZE,  /* more than IKETCP_BODY_MAX bytes: no frame can hold it */
};

/* The first four bytes are the non-ESP marker (set for IKE and for IKE runts). */
#define IKETCP_DGRAM_F_MARKER 0x1u
/*
 * ike holds the decoded IKE header: set for IKE, and also for the runt
 * IKETCP_RUNT_IKE_LENGTH, whose header is whole but does not agree with
 * the datagram's size. Such a header still names an IKE SA (the SPIs), so
 * a gateway may use it to pick a session for its logs or counters; it
 * must not treat the message as IKE.
 */
#define IKETCP_DGRAM_F_HDR 0x2u

/*
 * A classified datagram. Pointers point into the classified memory; only
 * the fields named for a kind are meaningful (the rest are zero, except
 * ike, which is written only when IKETCP_DGRAM_F_HDR is set, so that ESP
 * pays nothing for it).
 */
struct iketcp_dgram {
	enum iketcp_dgram_kind kind;
	enum iketcp_runt_reason runt; /* RUNT: why; IKETCP_RUNT_NONE otherwise */
	unsigned flags;               /* IKETCP_DGRAM_F_* */
	uint32_t spi;                 /* ESP: the SPI, host order; 0 otherwise */
	const uint8_t *p;             /* the datagram */
	size_t len;                   /* its size (also for OVERSIZE) */
	const uint8_t *msg;           /* IKE: the IKE message (after the marker); ESP: == p */
	size_t msg_len;
	struct iketcp_ike_hdr ike; /* valid only with IKETCP_DGRAM_F_HDR */
};

/*
 * Classifies the UDP/4500 datagram p[0..len). Reads nothing beyond the
 * first 32 bytes and copies nothing. p may be NULL when len is 0.
 * Returns IKETCP_OK with *out filled, or IKETCP_E_MSGSIZE with *out
 * filled as kind IKETCP_DGRAM_OVERSIZE (len > IKETCP_BODY_MAX; nothing
 * else read).
 *
 * Marker + bytes that are not an IKE message (fewer than 28 bytes after
 * the marker, or a header Length other than len - 4) are a RUNT with
 * reason IKETCP_RUNT_IKE_SHORT or IKETCP_RUNT_IKE_LENGTH and flag
 * IKETCP_DGRAM_F_MARKER, as iketcp_frame_classify() calls the same body
 * on the TCP side: the peer would drop it there (R27), so it is not IKE
 * here either. See iketcp_dgram_frame_kind() for what the send path does
 * with them.
 */
int IKETCP_WUR iketcp_dgram_classify(const uint8_t *p, size_t len, struct iketcp_dgram *out);

/* Returns the static name of a kind ("ike", "esp", ...); never NULL. */
const char *iketcp_dgram_kind_name(enum iketcp_dgram_kind kind);

/*
 * Whether and how the gateway frames a classified datagram; the rule of
 * iketcp_frame_datagram_head() and iketcp_sendq_push_dgram().
 * Returns IKETCP_FRAME_IKE (queue as IKE), IKETCP_FRAME_ESP, or
 * IKETCP_E_KEEPALIVE (R47), IKETCP_E_MSGSIZE (OVERSIZE), IKETCP_E_EMPTY
 * (any other runt).
 *
 * A runt that carries the marker and at least one byte after it is framed
 * as IKE as it is: the relay does not judge the IKE daemon's messages,
 * the receiver drops them as runts and counts them (R27), and it is what
 * iketcp_frame_datagram_head() has always done. A gateway that wants to
 * drop them itself checks d->kind before pushing.
 */
static inline int
iketcp_dgram_frame_kind(const struct iketcp_dgram *d)
{
	switch (d->kind) {
	case IKETCP_DGRAM_IKE:
		return IKETCP_FRAME_IKE;
	case IKETCP_DGRAM_ESP:
		return IKETCP_FRAME_ESP;
	case IKETCP_DGRAM_KEEPALIVE:
		return IKETCP_E_KEEPALIVE;
	case IKETCP_DGRAM_OVERSIZE:
		return IKETCP_E_MSGSIZE;
	case IKETCP_DGRAM_RUNT:
		break;
	}
	if ((d->flags & IKETCP_DGRAM_F_MARKER) && d->len > IKETCP_MARKER_LEN)
		return IKETCP_FRAME_IKE;
	return IKETCP_E_EMPTY;
}

#ifdef __cplusplus
}
#endif
#endif
