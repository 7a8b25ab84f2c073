#include "iketcp/dgram.h"

#include "iketcp/cursor.h"

/*
 * The order of the tests is iketcp_frame_classify()'s for a frame body
 * (the frame kinds of docs/conformance.md), so the two cannot drift apart without
 * tests/unit/test_dgram.c and fuzz/fuzz_dgram.c noticing. ESP, the common
 * case at high packet rates, is decided after one 4-byte read and the
 * size checks; only a marker leads to the 28-byte IKE header.
 */
int
iketcp_dgram_classify(const uint8_t *p, size_t len, struct iketcp_dgram *out)
{
	struct iketcp_cur c;
	uint32_t first;

	out->runt = IKETCP_RUNT_NONE;
	out->flags = 0;
	out->spi = 0;
	out->p = p;
	out->len = len;
	out->msg = NULL;
	out->msg_len = 0;
	if (len > IKETCP_BODY_MAX) {
		out->kind = IKETCP_DGRAM_OVERSIZE;
		return IKETCP_E_MSGSIZE;
	}
	iketcp_cur_init(&c, p, len);
	out->kind = IKETCP_DGRAM_RUNT;
	if (iketcp_cur_get_u32(&c, &first) != IKETCP_OK) {
		uint8_t octet;
		if (len == 1 && iketcp_cur_get_u8(&c, &octet) == IKETCP_OK &&
		    octet == IKETCP_KEEPALIVE_OCTET) {
			out->kind = IKETCP_DGRAM_KEEPALIVE; /* R47 */
			return IKETCP_OK;
		}
		out->runt = len == 0 ? IKETCP_RUNT_EMPTY : IKETCP_RUNT_TINY;
		return IKETCP_OK;
	}
	if (first != 0) {
		if (len < IKETCP_ESP_MIN) {
			out->runt = IKETCP_RUNT_ESP_SHORT;
			return IKETCP_OK;
		}
		out->kind = IKETCP_DGRAM_ESP;
		out->spi = first;
		out->msg = p;
		out->msg_len = len;
		return IKETCP_OK;
	}
	/* F3: a zero first word is the non-ESP marker. */
	out->flags = IKETCP_DGRAM_F_MARKER;
	if (iketcp_ike_parse(iketcp_cur_ptr(&c), iketcp_cur_left(&c), &out->ike) != IKETCP_OK) {
		out->runt = IKETCP_RUNT_IKE_SHORT;
		return IKETCP_OK;
	}
	out->flags |= IKETCP_DGRAM_F_HDR;
	if (out->ike.length != iketcp_cur_left(&c)) { /* F1: header Length == len - 4 */
		out->runt = IKETCP_RUNT_IKE_LENGTH;
		return IKETCP_OK;
	}
	/* Any major version, as in iketcp_frame_classify(): only the IKE
	 * daemon can answer INVALID_MAJOR_VERSION (RFC 7296 2.5). */
	out->kind = IKETCP_DGRAM_IKE;
	out->msg = iketcp_cur_ptr(&c);
	out->msg_len = iketcp_cur_left(&c);
	return IKETCP_OK;
}

const char *
iketcp_dgram_kind_name(enum iketcp_dgram_kind kind)
{
	switch (kind) {
	case IKETCP_DGRAM_RUNT:
		return "runt";
	case IKETCP_DGRAM_KEEPALIVE:
		return "keepalive";
	case IKETCP_DGRAM_IKE:
		return "ike";
	case IKETCP_DGRAM_ESP:
		return "esp";
	case IKETCP_DGRAM_OVERSIZE:
		return "oversize";
	}
	return "invalid";
}
