#include "iketcp/frame.h"

#include "iketcp/cursor.h"
#include "iketcp/dgram.h"
#include "iketcp/ike.h"

/*
 * Classification follows the frame kinds of docs/conformance.md row by row. The Length framing
 * already says where the next frame starts, so a frame we cannot use is
 * only dropped and counted (a RUNT), never a reason to lose sync; only
 * Length 0/1 is fatal, because the RFC says so (R7).
 */
int
iketcp_frame_classify(const uint8_t *frame, size_t frame_len, struct iketcp_frame *out)
{
	struct iketcp_cur c;
	struct iketcp_frame f = {0};
	uint16_t length;

	iketcp_cur_init(&c, frame, frame_len);
	if (iketcp_cur_get_u16(&c, &length) != IKETCP_OK)
		return IKETCP_E_SHORT;
	f.length = length;
	if (length < IKETCP_LEN_SIZE) {
		if (frame_len != IKETCP_LEN_SIZE)
			return IKETCP_E_INVAL;
		f.kind = IKETCP_FRAME_FATAL;
		*out = f;
		return IKETCP_OK;
	}
	if (length != frame_len)
		return IKETCP_E_INVAL;

	f.body_len = iketcp_cur_left(&c);
	f.body = iketcp_cur_ptr(&c);

	uint32_t first;
	if (f.body_len == 0) {
		f.kind = IKETCP_FRAME_EMPTY; /* R5 */
	} else if (f.body_len == 1 && f.body[0] == IKETCP_KEEPALIVE_OCTET) {
		f.kind = IKETCP_FRAME_KEEPALIVE; /* R48, F8 */
	} else if (iketcp_cur_get_u32(&c, &first) != IKETCP_OK) {
		f.kind = IKETCP_FRAME_RUNT; /* 1-3 bytes: no room for marker or SPI */
		f.runt = IKETCP_RUNT_TINY;
	} else if (first == 0) {
		/* F3: a zero first word is the non-ESP marker, so this is IKE. */
		struct iketcp_ike_hdr h;
		f.msg = iketcp_cur_ptr(&c);
		f.msg_len = iketcp_cur_left(&c);
		f.kind = IKETCP_FRAME_RUNT;
		if (iketcp_ike_parse(f.msg, f.msg_len, &h) != IKETCP_OK)
			f.runt = IKETCP_RUNT_IKE_SHORT;
		else if (h.length != f.msg_len) /* header Length == frame Length - 6 (F1) */
			f.runt = IKETCP_RUNT_IKE_LENGTH;
		else
			/* Any major version: the header layout is shared, and only
			 * the backend can answer INVALID_MAJOR_VERSION (RFC 7296
			 * 2.5), so a relay must pass it on, not drop it. */
			f.kind = IKETCP_FRAME_IKE;
		if (f.kind == IKETCP_FRAME_RUNT) {
			f.msg = NULL;
			f.msg_len = 0;
		}
	} else if (f.body_len < IKETCP_ESP_MIN) {
		f.kind = IKETCP_FRAME_RUNT;
		f.runt = IKETCP_RUNT_ESP_SHORT;
	} else {
		f.kind = IKETCP_FRAME_ESP;
		f.spi = first;
		f.msg = f.body;
		f.msg_len = f.body_len;
	}
	*out = f;
	return IKETCP_OK;
}

const char *
iketcp_frame_kind_name(enum iketcp_frame_kind kind)
{
	switch (kind) {
	case IKETCP_FRAME_FATAL:
		return "fatal";
	case IKETCP_FRAME_EMPTY:
		return "empty";
	case IKETCP_FRAME_KEEPALIVE:
		return "keepalive";
	case IKETCP_FRAME_IKE:
		return "ike";
	case IKETCP_FRAME_ESP:
		return "esp";
	case IKETCP_FRAME_RUNT:
		return "runt";
	}
	return "invalid";
}

const char *
iketcp_runt_name(enum iketcp_runt_reason reason)
{
	switch (reason) {
	case IKETCP_RUNT_NONE:
		return "none";
	case IKETCP_RUNT_TINY:
		return "tiny";
	case IKETCP_RUNT_IKE_SHORT:
		return "ike-short";
	case IKETCP_RUNT_IKE_LENGTH:
		return "ike-length-mismatch";
	case IKETCP_RUNT_ESP_SHORT:
		return "esp-short";
	case IKETCP_RUNT_EMPTY:
		return "empty";
	}
	return "invalid";
}

int
iketcp_frame_ike_head(uint8_t head[IKETCP_IKE_OVERHEAD], size_t ike_len)
{
	struct iketcp_wcur w;

	if (ike_len == 0)
		return IKETCP_E_EMPTY;
	if (ike_len > IKETCP_IKE_MAX)
		return IKETCP_E_MSGSIZE;
	iketcp_wcur_init(&w, head, IKETCP_IKE_OVERHEAD);
	/* Length counts itself and the marker (F1): ike_len + 6 <= 65535. */
	if (iketcp_wcur_put_u16(&w, (uint16_t)(ike_len + IKETCP_IKE_OVERHEAD)) != IKETCP_OK ||
	    iketcp_wcur_put_u32(&w, 0) != IKETCP_OK)
		return IKETCP_E_SHORT; /* cannot happen: head has 6 bytes */
	return IKETCP_IKE_OVERHEAD;
}

int
iketcp_frame_encode_ike(uint8_t *out, size_t out_cap, const uint8_t *ike, size_t ike_len)
{
	struct iketcp_wcur w;
	long at;

	if (ike_len == 0)
		return IKETCP_E_EMPTY;
	if (ike_len > IKETCP_IKE_MAX)
		return IKETCP_E_MSGSIZE;
	if (out_cap < ike_len + IKETCP_IKE_OVERHEAD)
		return IKETCP_E_SHORT;
	/* Reserve the Length, write the body, back-fill: the size comes from
	 * what was written, not from a separate computation. */
	iketcp_wcur_init(&w, out, out_cap);
	at = iketcp_wcur_reserve_u16(&w);
	if (at < 0 || iketcp_wcur_put_u32(&w, 0) != IKETCP_OK ||
	    iketcp_wcur_put_bytes(&w, ike, ike_len) != IKETCP_OK ||
	    iketcp_wcur_fill_u16(&w, at, (uint16_t)w.off) != IKETCP_OK)
		return IKETCP_E_SHORT;
	return (int)w.off;
}

int
iketcp_frame_encode_esp(uint8_t *out, size_t out_cap, const uint8_t *esp, size_t esp_len)
{
	struct iketcp_cur c;
	struct iketcp_wcur w;
	uint32_t spi;
	long at;

	iketcp_cur_init(&c, esp, esp_len);
	if (iketcp_cur_get_u32(&c, &spi) != IKETCP_OK || esp_len < IKETCP_ESP_MIN)
		return IKETCP_E_EMPTY;
	if (spi == 0)
		return IKETCP_E_SPI0; /* R8: would read as the non-ESP marker */
	if (esp_len > IKETCP_BODY_MAX)
		return IKETCP_E_MSGSIZE;
	if (out_cap < esp_len + IKETCP_LEN_SIZE)
		return IKETCP_E_SHORT;
	iketcp_wcur_init(&w, out, out_cap);
	at = iketcp_wcur_reserve_u16(&w);
	if (at < 0 || iketcp_wcur_put_bytes(&w, esp, esp_len) != IKETCP_OK ||
	    iketcp_wcur_fill_u16(&w, at, (uint16_t)w.off) != IKETCP_OK)
		return IKETCP_E_SHORT;
	return (int)w.off;
}

int
iketcp_frame_datagram_head(uint8_t head[IKETCP_LEN_SIZE], const uint8_t *dgram, size_t len)
{
	struct iketcp_dgram d;
	struct iketcp_wcur w;
	int kind;

	if (iketcp_dgram_classify(dgram, len, &d) == IKETCP_E_MSGSIZE)
		return IKETCP_E_MSGSIZE;
	kind = iketcp_dgram_frame_kind(&d);
	if (kind < 0)
		return kind;
	iketcp_wcur_init(&w, head, IKETCP_LEN_SIZE);
	if (iketcp_wcur_put_u16(&w, (uint16_t)(len + IKETCP_LEN_SIZE)) != IKETCP_OK)
		return IKETCP_E_SHORT;
	return kind;
}
