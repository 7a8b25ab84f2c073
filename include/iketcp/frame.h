/*
 * RFC 9329 frames: constants, classification and encoding.
 *
 * A frame is a 2-byte big-endian Length that counts itself, followed by
 * Length-2 bytes of message (RFC 9329 §3, F1, F2). The message is exactly
 * what a UDP/4500 datagram carries (RFC 3948): four zero bytes (the non-ESP
 * marker) and an IKE message, or an ESP packet starting with a non-zero SPI.
 * libiketcp calls the message the frame *body*; a "datagram" below means a
 * UDP/4500 payload, which is the same bytes.
 */
#ifndef IKETCP_FRAME_H
#define IKETCP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "iketcp/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Stream prefix, sent once by the TCP originator (§1.2, R9). No NUL. */
#define IKETCP_PREFIX "IKETCP"
#define IKETCP_PREFIX_LEN 6
/* The Length field. */
#define IKETCP_LEN_SIZE 2
/* Non-ESP marker in front of IKE messages (§3.1). */
#define IKETCP_MARKER_LEN 4
/* Largest Length value: the field is 16 bits. */
#define IKETCP_FRAME_MAX 65535
/* Largest body: 65535 - 2 for the Length field itself (§3). */
#define IKETCP_BODY_MAX (IKETCP_FRAME_MAX - IKETCP_LEN_SIZE)
/* Largest IKE message: the marker also counts (65535 - 2 - 4 = 65529). */
#define IKETCP_IKE_MAX (IKETCP_BODY_MAX - IKETCP_MARKER_LEN)
/* IKEv2 header (RFC 7296 §3.1). */
#define IKETCP_IKE_HDR_LEN 28
/* ESP needs at least SPI + sequence number (RFC 4303). */
#define IKETCP_ESP_MIN 8
/* Bytes in front of an IKE message in a frame: Length + marker. */
#define IKETCP_IKE_OVERHEAD (IKETCP_LEN_SIZE + IKETCP_MARKER_LEN)
/* NAT keepalive body octet (RFC 3948 §2.3, §6.6). */
#define IKETCP_KEEPALIVE_OCTET 0xFF

/* What a frame is: the frame kinds of docs/conformance.md. */
enum iketcp_frame_kind {
	IKETCP_FRAME_FATAL,     /* Length 0 or 1: close the connection (R7) */
	IKETCP_FRAME_EMPTY,     /* Length 2: ignore silently (R5) */
	IKETCP_FRAME_KEEPALIVE, /* 00 03 FF: drop silently (R48) */
	IKETCP_FRAME_IKE,       /* marker + IKE header (any major version) whose Length fits */
	IKETCP_FRAME_ESP,       /* SPI != 0, at least 8 bytes */
	IKETCP_FRAME_RUNT,      /* anything else: discard and count (R27) */
};

/* Why a frame is a runt (IKETCP_RUNT_NONE for every other kind). */
enum iketcp_runt_reason {
	IKETCP_RUNT_NONE,
	IKETCP_RUNT_TINY,       /* 1-3 body bytes, not a keepalive: cannot classify */
	IKETCP_RUNT_IKE_SHORT,  /* marker but fewer than 28 bytes of IKE header */
	IKETCP_RUNT_IKE_LENGTH, /* IKE header Length != frame Length - 6 */
	IKETCP_RUNT_ESP_SHORT,  /* non-zero SPI but fewer than 8 bytes */
	IKETCP_RUNT_EMPTY,      /* 0 bytes: only iketcp_dgram_classify() (a frame is EMPTY) */
};

/* A classified frame. All pointers point into the classified memory. */
struct iketcp_frame {
	enum iketcp_frame_kind kind;
	enum iketcp_runt_reason runt;
	uint16_t length;     /* the Length field */
	const uint8_t *body; /* Length-2 bytes after the field: the UDP/4500 datagram */
	size_t body_len;
	const uint8_t *msg; /* IKE: the IKE message (after the marker); ESP: == body */
	size_t msg_len;
	uint32_t spi; /* ESP: the SPI; 0 otherwise */
};

/*
 * Classifies one whole frame (Length field included) of frame_len bytes.
 * Returns IKETCP_OK with *out filled, IKETCP_E_SHORT if frame_len < 2, or
 * IKETCP_E_INVAL if the Length field (when >= 2) does not equal frame_len.
 * A Length of 0 or 1 gives kind IKETCP_FRAME_FATAL (frame_len must be 2).
 */
int IKETCP_WUR iketcp_frame_classify(const uint8_t *frame, size_t frame_len,
				     struct iketcp_frame *out);

/* Returns the static name of a kind ("ike", "esp", ...); never NULL. */
const char *iketcp_frame_kind_name(enum iketcp_frame_kind kind);

/* Returns the static name of a runt reason; never NULL. */
const char *iketcp_runt_name(enum iketcp_runt_reason reason);

/*
 * Writes the 6-byte frame head (Length + marker) for an IKE message of
 * ike_len bytes, so that a caller can send head + message with one writev
 * and no copy. Returns IKETCP_IKE_OVERHEAD, IKETCP_E_EMPTY (ike_len 0) or
 * IKETCP_E_MSGSIZE (ike_len > IKETCP_IKE_MAX).
 */
int IKETCP_WUR iketcp_frame_ike_head(uint8_t head[IKETCP_IKE_OVERHEAD], size_t ike_len);

/*
 * Encodes an IKE message (without marker) as a whole frame into out.
 * Returns the frame length (> 0), IKETCP_E_EMPTY, IKETCP_E_MSGSIZE, or
 * IKETCP_E_SHORT if out_cap is too small (out untouched on every error).
 */
int IKETCP_WUR iketcp_frame_encode_ike(uint8_t *out, size_t out_cap, const uint8_t *ike,
				       size_t ike_len);

/*
 * Encodes an ESP packet (starting with its SPI) as a whole frame into out.
 * Returns the frame length (> 0), IKETCP_E_SPI0 (first 4 bytes zero),
 * IKETCP_E_EMPTY (fewer than IKETCP_ESP_MIN bytes), IKETCP_E_MSGSIZE, or
 * IKETCP_E_SHORT (out too small). out is untouched on every error.
 */
int IKETCP_WUR iketcp_frame_encode_esp(uint8_t *out, size_t out_cap, const uint8_t *esp,
				       size_t esp_len);

/*
 * Checks a UDP/4500 datagram (marker + IKE, or ESP) before it is framed
 * and tells which it is: iketcp_dgram_classify() + iketcp_dgram_frame_kind()
 * (dgram.h), so a marker followed by bytes that are no IKE message is
 * framed as IKE too. This is the gateway's path: the body of the frame
 * is the datagram unchanged, so the caller needs only the 2-byte head.
 * Returns IKETCP_FRAME_IKE or IKETCP_FRAME_ESP (>= 0) with head filled, or
 * IKETCP_E_KEEPALIVE (the 1-byte 0xFF NAT keepalive: never framed, R47),
 * IKETCP_E_EMPTY (0 bytes, a bare marker, or too short for ESP),
 * IKETCP_E_MSGSIZE (over IKETCP_BODY_MAX).
 */
int IKETCP_WUR iketcp_frame_datagram_head(uint8_t head[IKETCP_LEN_SIZE], const uint8_t *dgram,
					  size_t len);

#ifdef __cplusplus
}
#endif
#endif
