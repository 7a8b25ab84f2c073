/*
 * A read-only view of the IKEv2 header (RFC 7296 §3.1), for routing frames
 * to IKE sessions, spotting retransmissions and writing logs. Routing never
 * looks past the 28-byte header; iketcp_ike_payloads() walks the clear
 * payload chain for tools (probe) and logs.
 */
#ifndef IKETCP_IKE_H
#define IKETCP_IKE_H

#include <stddef.h>
#include <stdint.h>

#include "iketcp/err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Exchange types (RFC 7296, RFC 5723). */
#define IKETCP_IKE_SA_INIT 34
#define IKETCP_IKE_AUTH 35
#define IKETCP_IKE_CREATE_CHILD_SA 36
#define IKETCP_IKE_INFORMATIONAL 37
#define IKETCP_IKE_SESSION_RESUME 38

/* Header flags. */
#define IKETCP_IKE_FLAG_INITIATOR 0x08
#define IKETCP_IKE_FLAG_VERSION 0x10
#define IKETCP_IKE_FLAG_RESPONSE 0x20

struct iketcp_ike_hdr {
	uint64_t spi_i;
	uint64_t spi_r;
	uint8_t next_payload;
	uint8_t version; /* major in the high nibble, minor in the low one */
	uint8_t exchange;
	uint8_t flags;
	uint32_t msg_id;
	uint32_t length; /* whole IKE message, header included */
};

/*
 * Decodes the header at the start of an IKE message (no non-ESP marker) of
 * len bytes. Only the 28 header bytes are read; nothing is validated beyond
 * their presence, so callers can log odd headers faithfully.
 * Returns IKETCP_OK or IKETCP_E_SHORT (len < 28, *out untouched).
 */
int IKETCP_WUR iketcp_ike_parse(const uint8_t *msg, size_t len, struct iketcp_ike_hdr *out);

/* Returns the major version (2 for IKEv2). */
static inline unsigned
iketcp_ike_major(const struct iketcp_ike_hdr *h)
{
	return h->version >> 4;
}

/* Returns non-zero when the Response flag is set. */
static inline int
iketcp_ike_is_response(const struct iketcp_ike_hdr *h)
{
	return (h->flags & IKETCP_IKE_FLAG_RESPONSE) != 0;
}

/* Returns non-zero when the Initiator flag is set (sender is the original initiator). */
static inline int
iketcp_ike_from_initiator(const struct iketcp_ike_hdr *h)
{
	return (h->flags & IKETCP_IKE_FLAG_INITIATOR) != 0;
}

/* Payload types (RFC 7296 §3.2) that tools name. */
#define IKETCP_IKE_PL_SA 33
#define IKETCP_IKE_PL_KE 34
#define IKETCP_IKE_PL_NONCE 40
#define IKETCP_IKE_PL_NOTIFY 41
#define IKETCP_IKE_PL_SK 46
#define IKETCP_IKE_PL_SKF 53 /* encrypted fragment (RFC 7383) */

/* Notify message types (RFC 7296 3.10.1) that the gateway acts on. */
#define IKETCP_IKE_N_INVALID_MAJOR_VERSION 5
#define IKETCP_IKE_N_COOKIE 16390

#define IKETCP_IKE_PAYLOADS_MAX 16

struct iketcp_ike_payloads {
	uint8_t types[IKETCP_IKE_PAYLOADS_MAX]; /* in message order */
	unsigned n;                             /* entries in types (walk stops at the max) */
	int has_notify;                         /* a Notify payload was seen */
	uint16_t notify_type;                   /* the first Notify's type */
};

/*
 * Walks the generic payload headers after the 28-byte header of an IKE
 * message of len bytes (no non-ESP marker), following Next Payload from the
 * header, up to IKETCP_IKE_PAYLOADS_MAX payloads, stopping after an SK or SKF
 * (encrypted, RFC 7383) payload since what follows is ciphertext. Only the bytes
 * within len and within each payload's Length are read.
 * Returns IKETCP_OK with *out filled; IKETCP_E_SHORT when the header or a
 * payload is truncated; IKETCP_E_INVAL when a payload Length is below 4 (or
 * a Notify below 8). *out holds what was found before an error.
 */
int IKETCP_WUR iketcp_ike_payloads(const uint8_t *msg, size_t len, struct iketcp_ike_payloads *out);

/*
 * Looks for a clear Notify payload of the given type in an IKE message of
 * len bytes (no non-ESP marker): walks every payload header after the
 * 28-byte header, reading only within len and each payload's Length, and
 * stops at SK or SKF (ciphertext follows). Used by the gateway to see a
 * responder's cookie request (N(COOKIE) in an IKE_SA_INIT response, R39).
 * Returns 1 (found), 0 (not in the clear part), IKETCP_E_SHORT (header or
 * a payload truncated before one was found) or IKETCP_E_INVAL (a payload
 * Length below 4, or a Notify too short for its type).
 */
int IKETCP_WUR iketcp_ike_has_notify(const uint8_t *msg, size_t len, uint16_t type);

/* Returns a static name for an exchange type ("IKE_SA_INIT", ...) or "UNKNOWN". */
const char *iketcp_ike_exchange_name(uint8_t exchange);

#ifdef __cplusplus
}
#endif
#endif
