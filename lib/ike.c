#include "iketcp/ike.h"

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
