#include "iketcp/ike.h"

#include <string.h>

#include "iketcp/cursor.h"

int
iketcp_ike_parse(const uint8_t *msg, size_t len, struct iketcp_ike_hdr *out)
{
	struct iketcp_cur c;
	struct iketcp_ike_hdr h;

	iketcp_cur_init(&c, msg, len);
	if (iketcp_cur_left(&c) < 28)
		return IKETCP_E_SHORT;
	/* Cannot fail after the check above; each read is still bounded. */
	if (iketcp_cur_get_u64(&c, &h.spi_i) != IKETCP_OK ||
	    iketcp_cur_get_u64(&c, &h.spi_r) != IKETCP_OK ||
	    iketcp_cur_get_u8(&c, &h.next_payload) != IKETCP_OK ||
	    iketcp_cur_get_u8(&c, &h.version) != IKETCP_OK ||
	    iketcp_cur_get_u8(&c, &h.exchange) != IKETCP_OK ||
	    iketcp_cur_get_u8(&c, &h.flags) != IKETCP_OK ||
	    iketcp_cur_get_u32(&c, &h.msg_id) != IKETCP_OK ||
	    iketcp_cur_get_u32(&c, &h.length) != IKETCP_OK)
		return IKETCP_E_SHORT;
	*out = h;
	return IKETCP_OK;
}

const char *
iketcp_ike_exchange_name(uint8_t exchange)
{
	switch (exchange) {
	case IKETCP_IKE_SA_INIT:
		return "IKE_SA_INIT";
	case IKETCP_IKE_AUTH:
		return "IKE_AUTH";
	case IKETCP_IKE_CREATE_CHILD_SA:
		return "CREATE_CHILD_SA";
	case IKETCP_IKE_INFORMATIONAL:
		return "INFORMATIONAL";
	case IKETCP_IKE_SESSION_RESUME:
		return "IKE_SESSION_RESUME";
	default:
		return "UNKNOWN";
	}
}

/* The payload chain (RFC 7296 3.2): the first type sits in the header's
 * Next Payload field, each generic payload header names the next one. */
static int
chain_start(struct iketcp_cur *c, const uint8_t *msg, size_t len, uint8_t *next)
{
	iketcp_cur_init(c, msg, len);
	if (iketcp_cur_skip(c, 16) != IKETCP_OK || iketcp_cur_get_u8(c, next) != IKETCP_OK ||
	    iketcp_cur_skip(c, 11) != IKETCP_OK)
		return IKETCP_E_SHORT;
	return IKETCP_OK;
}

/* One payload: its generic header (the next type into *next) and its body.
 * Each payload consumes at least its 4-byte header, so a walk ends within
 * len / 4 steps. */
static int
chain_step(struct iketcp_cur *c, uint8_t *next, struct iketcp_cur *body)
{
	uint8_t flags;
	uint16_t plen;

	if (iketcp_cur_get_u8(c, next) != IKETCP_OK || iketcp_cur_get_u8(c, &flags) != IKETCP_OK ||
	    iketcp_cur_get_u16(c, &plen) != IKETCP_OK)
		return IKETCP_E_SHORT;
	if (plen < 4)
		return IKETCP_E_INVAL;
	if (iketcp_cur_sub(c, (size_t)plen - 4, body) != IKETCP_OK)
		return IKETCP_E_SHORT;
	return IKETCP_OK;
}

/* Protocol ID, SPI Size, Notify Message Type (RFC 7296 3.10). */
static int
notify_type(struct iketcp_cur *body, uint16_t *nt)
{
	if (iketcp_cur_skip(body, 2) != IKETCP_OK || iketcp_cur_get_u16(body, nt) != IKETCP_OK)
		return IKETCP_E_INVAL;
	return IKETCP_OK;
}

/* What follows an SK or SKF payload's header is ciphertext. */
static int
encrypted(uint8_t type)
{
	return type == IKETCP_IKE_PL_SK || type == IKETCP_IKE_PL_SKF;
}

int
iketcp_ike_payloads(const uint8_t *msg, size_t len, struct iketcp_ike_payloads *out)
{
	struct iketcp_cur c, body;
	uint8_t next;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = chain_start(&c, msg, len, &next)) != IKETCP_OK)
		return rc;
	while (next != 0 && out->n < IKETCP_IKE_PAYLOADS_MAX) {
		uint8_t type = next;
		uint16_t nt;
		if ((rc = chain_step(&c, &next, &body)) != IKETCP_OK)
			return rc;
		out->types[out->n++] = type;
		if (type == IKETCP_IKE_PL_NOTIFY && !out->has_notify) {
			if (notify_type(&body, &nt) != IKETCP_OK)
				return IKETCP_E_INVAL;
			out->has_notify = 1;
			out->notify_type = nt;
		}
		if (encrypted(type))
			break;
	}
	return IKETCP_OK;
}

int
iketcp_ike_has_notify(const uint8_t *msg, size_t len, uint16_t type)
{
	struct iketcp_cur c, body;
	uint8_t next;
	int rc;

	if ((rc = chain_start(&c, msg, len, &next)) != IKETCP_OK)
		return rc;
	while (next != 0 && !encrypted(next)) {
		uint8_t pt = next;
		uint16_t nt;
		if ((rc = chain_step(&c, &next, &body)) != IKETCP_OK)
			return rc;
		if (pt == IKETCP_IKE_PL_NOTIFY) {
			if (notify_type(&body, &nt) != IKETCP_OK)
				return IKETCP_E_INVAL;
			if (nt == type)
				return 1;
		}
	}
	return 0;
}
