/*
 * Target Functions: iketcp_ike_parse, iketcp_ike_exchange_name,
 * iketcp_ike_major, iketcp_ike_is_response, iketcp_ike_from_initiator,
 * iketcp_ike_payloads (the payload chain walk, on a tight copy so ASan
 * sees any read past the end);
 * iketcp_frame_encode_ike + iketcp_frame_classify for the cross-check.
 *
 * The input is an IKE message without the non-ESP marker. Below 28 bytes
 * the parser must fail with IKETCP_E_SHORT and leave *out untouched; from
 * 28 bytes on every field must equal a plain big-endian decode of RFC 7296
 * §3.1 offsets. The same bytes, framed, must then classify as IKE exactly
 * when the header's Length and major version say so.
 */
#include "harness.h"

static void
check_exchange_name(uint8_t exchange)
{
	static const char *const names[] = {"IKE_SA_INIT", "IKE_AUTH", "CREATE_CHILD_SA",
					    "INFORMATIONAL", "IKE_SESSION_RESUME"};
	const char *name = iketcp_ike_exchange_name(exchange);

	CHECK(name != NULL);
	if (exchange >= IKETCP_IKE_SA_INIT && exchange <= IKETCP_IKE_SESSION_RESUME)
		CHECK(strcmp(name, names[exchange - IKETCP_IKE_SA_INIT]) == 0);
	else
		CHECK(strcmp(name, "UNKNOWN") == 0);
}

/* The framed message must classify as the header says. */
static void
check_framed(const uint8_t *msg, size_t len, const struct iketcp_ike_hdr *h)
{
	struct iketcp_frame f;
	size_t n = len + IKETCP_IKE_OVERHEAD;

	if (len > IKETCP_IKE_MAX)
		return;
	uint8_t *fr = malloc(n);
	CHECK(fr != NULL);
	CHECK(iketcp_frame_encode_ike(fr, n, msg, len) == (int)n);
	classify_and_check(fr, n, &f);
	if (h->length != len)
		CHECK(f.kind == IKETCP_FRAME_RUNT && f.runt == IKETCP_RUNT_IKE_LENGTH);
	else
		CHECK(f.kind == IKETCP_FRAME_IKE && f.msg_len == len &&
		      memcmp(f.msg, msg, len) == 0);
	free(fr);
}

static void
check_payloads(const uint8_t *data, size_t size)
{
	struct iketcp_ike_payloads pl;
	uint8_t *tight = malloc(size ? size : 1);
	CHECK(tight != NULL);
	if (size)
		memcpy(tight, data, size);
	int rc = iketcp_ike_payloads(tight, size, &pl);
	CHECK(rc == IKETCP_OK || rc == IKETCP_E_SHORT || rc == IKETCP_E_INVAL);
	CHECK(pl.n <= IKETCP_IKE_PAYLOADS_MAX);
	if (size < IKETCP_IKE_HDR_LEN)
		CHECK(rc == IKETCP_E_SHORT && pl.n == 0);
	/* each payload takes at least its 4-byte header */
	if (size >= IKETCP_IKE_HDR_LEN)
		CHECK(pl.n * 4 <= size - IKETCP_IKE_HDR_LEN);
	if (rc == IKETCP_OK && size >= IKETCP_IKE_HDR_LEN && data[16] == 0)
		CHECK(pl.n == 0);
	/* The cookie finder reads the same chain: a first Notify of that type
	 * that the payload walk saw is found too. */
	int hn = iketcp_ike_has_notify(tight, size, IKETCP_IKE_N_COOKIE);
	CHECK(hn == 0 || hn == 1 || hn == IKETCP_E_SHORT || hn == IKETCP_E_INVAL);
	if (size < IKETCP_IKE_HDR_LEN)
		CHECK(hn == IKETCP_E_SHORT);
	if (pl.has_notify && pl.notify_type == IKETCP_IKE_N_COOKIE)
		CHECK(hn == 1);
	/* both walks end at the first SK or SKF payload: it is the last one seen */
	for (unsigned i = 0; i + 1 < pl.n; i++)
		CHECK(pl.types[i] != IKETCP_IKE_PL_SK && pl.types[i] != IKETCP_IKE_PL_SKF);
	if (pl.has_notify) {
		int seen = 0;
		for (unsigned i = 0; i < pl.n; i++)
			seen |= pl.types[i] == IKETCP_IKE_PL_NOTIFY;
		CHECK(seen);
	}
	free(tight);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iketcp_ike_hdr h, sentinel;
	int rc;

	check_payloads(data, size);
	memset(&sentinel, 0xA5, sizeof(sentinel));
	h = sentinel;
	rc = iketcp_ike_parse(data, size, &h);
	check_rc_names(rc);
	if (size < IKETCP_IKE_HDR_LEN) {
		CHECK(rc == IKETCP_E_SHORT);
		CHECK(memcmp(&h, &sentinel, sizeof(h)) == 0);
		if (size > 18)
			check_exchange_name(data[18]);
		return 0;
	}
	CHECK(rc == IKETCP_OK);
	CHECK(h.spi_i == ref_be64(data));
	CHECK(h.spi_r == ref_be64(data + 8));
	CHECK(h.next_payload == data[16]);
	CHECK(h.version == data[17]);
	CHECK(h.exchange == data[18]);
	CHECK(h.flags == data[19]);
	CHECK(h.msg_id == ref_be32(data + 20));
	CHECK(h.length == ref_be32(data + 24));
	CHECK(iketcp_ike_major(&h) == (unsigned)(data[17] >> 4));
	CHECK(iketcp_ike_is_response(&h) == ((data[19] & 0x20) != 0));
	CHECK(iketcp_ike_from_initiator(&h) == ((data[19] & 0x08) != 0));
	check_exchange_name(h.exchange);

	/* Only the 28 header bytes are read: a tight copy parses the same. */
	uint8_t *copy = malloc(IKETCP_IKE_HDR_LEN);
	struct iketcp_ike_hdr h2;
	CHECK(copy != NULL);
	memcpy(copy, data, IKETCP_IKE_HDR_LEN);
	CHECK(iketcp_ike_parse(copy, IKETCP_IKE_HDR_LEN, &h2) == IKETCP_OK);
	CHECK(h2.spi_i == h.spi_i && h2.spi_r == h.spi_r && h2.next_payload == h.next_payload &&
	      h2.version == h.version && h2.exchange == h.exchange && h2.flags == h.flags &&
	      h2.msg_id == h.msg_id && h2.length == h.length);
	free(copy);

	check_framed(data, size, &h);
	return 0;
}
