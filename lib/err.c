#include "iketcp/err.h"

#include <stddef.h>

struct err_row {
	int code;
	const char *name;
	const char *text;
	enum iketcp_err_category cat;
};

/* clang-format would turn this one-line initialiser into a block. */
/* clang-format off */
#define ROW(c, t, k) {c, #c, t, k}
/* clang-format on */
static const struct err_row err_rows[] = {
	ROW(IKETCP_OK, "success", IKETCP_CAT_OK),
	ROW(IKETCP_E_AGAIN, "operation would block", IKETCP_CAT_AGAIN),
	ROW(IKETCP_E_SHORT, "not enough bytes in input", IKETCP_CAT_AGAIN),
	ROW(IKETCP_E_BADPREFIX, "stream does not start with IKETCP", IKETCP_CAT_PEER),
	ROW(IKETCP_E_BADLEN, "frame length 0 or 1 is fatal", IKETCP_CAT_PEER),
	ROW(IKETCP_E_TOOBIG, "frame longer than the configured maximum", IKETCP_CAT_PEER),
	ROW(IKETCP_E_REPREFIX, "IKETCP prefix repeated inside the stream", IKETCP_CAT_PEER),
	ROW(IKETCP_E_MSGSIZE, "message too large to frame", IKETCP_CAT_REFUSED),
	ROW(IKETCP_E_EMPTY, "empty message cannot be framed", IKETCP_CAT_REFUSED),
	ROW(IKETCP_E_SPI0, "ESP packet with SPI 0", IKETCP_CAT_REFUSED),
	ROW(IKETCP_E_NOBUFS, "send queue full", IKETCP_CAT_REFUSED),
	ROW(IKETCP_E_KEEPALIVE, "NAT keepalive is not framed over TCP", IKETCP_CAT_REFUSED),
	ROW(IKETCP_E_INVAL, "invalid argument", IKETCP_CAT_USAGE),
	ROW(IKETCP_E_STATE, "object is in a failed state", IKETCP_CAT_USAGE),
	ROW(IKETCP_E_NOMEM, "out of memory", IKETCP_CAT_USAGE),
	ROW(IKETCP_E_IO, "I/O error (see errno)", IKETCP_CAT_IO),
	ROW(IKETCP_E_TLS, "TLS protocol error", IKETCP_CAT_PEER),
	ROW(IKETCP_E_TLS_VERIFY, "TLS peer certificate verification failed", IKETCP_CAT_PEER),
	ROW(IKETCP_E_TLS_PIN, "TLS peer public key does not match the pin", IKETCP_CAT_PEER),
	ROW(IKETCP_E_PROXY_STATUS, "HTTP proxy refused CONNECT", IKETCP_CAT_PEER),
	ROW(IKETCP_E_PROXY_SYNTAX, "HTTP proxy response is malformed", IKETCP_CAT_PEER),
	ROW(IKETCP_E_PROXY_TOOBIG, "HTTP proxy response headers too large", IKETCP_CAT_PEER),
	ROW(IKETCP_E_TLS_CONFIG, "TLS configuration rejected", IKETCP_CAT_USAGE),
	ROW(IKETCP_E_PPHDR, "not a valid PROXY protocol header", IKETCP_CAT_PEER),
};
#undef ROW

static const struct err_row *
find(int code)
{
	for (size_t i = 0; i < sizeof(err_rows) / sizeof(err_rows[0]); i++)
		if (err_rows[i].code == code)
			return &err_rows[i];
	return NULL;
}

const char *
iketcp_strerror(int code)
{
	if (code > 0)
		return "success";
	const struct err_row *r = find(code);
	return r ? r->text : "unknown error";
}

const char *
iketcp_errname(int code)
{
	if (code > 0)
		return "IKETCP_OK";
	const struct err_row *r = find(code);
	return r ? r->name : "IKETCP_E_UNKNOWN";
}

enum iketcp_err_category
iketcp_err_category(int code)
{
	if (code >= 0)
		return IKETCP_CAT_OK;
	const struct err_row *r = find(code);
	return r ? r->cat : IKETCP_CAT_UNKNOWN;
}
