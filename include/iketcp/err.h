/*
 * iketcp error convention.
 *
 * Every fallible libiketcp function returns an int: 0 (IKETCP_OK) or a
 * positive value on success (the function's comment says what the positive
 * value means), or one of the negative codes below. Codes are grouped in
 * categories so that a caller can tell "wait for more I/O" from "the peer
 * sent something bad" from "the caller made a mistake" without listing every
 * code; see iketcp_err_category().
 */
#ifndef IKETCP_ERR_H
#define IKETCP_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define IKETCP_WUR __attribute__((warn_unused_result))
#else
#define IKETCP_WUR
#endif

enum iketcp_err {
	IKETCP_OK = 0,
	/* would block: try again when more input arrives / the socket drains */
	IKETCP_E_AGAIN = -1,
	/* cursor: fewer bytes left than the read asked for (nothing consumed) */
	IKETCP_E_SHORT = -2,
	/* peer protocol errors: the connection must be closed */
	IKETCP_E_BADPREFIX = -10, /* first 6 bytes are not "IKETCP" (R26, §6 gap 2) */
	IKETCP_E_BADLEN = -11,    /* frame Length 0 or 1 (R7) */
	IKETCP_E_TOOBIG = -12,    /* frame Length above the configured maximum */
	IKETCP_E_REPREFIX = -13,  /* "IKETCP" again where a frame should start (F4) */
	/* local refusals: the input is fine but cannot be taken now or ever */
	IKETCP_E_MSGSIZE = -20,   /* message cannot be framed (over 65533 bytes, R4) */
	IKETCP_E_EMPTY = -21,     /* empty IKE message, or 0-byte datagram */
	IKETCP_E_SPI0 = -22,      /* ESP packet with SPI 0 (R8) */
	IKETCP_E_NOBUFS = -23,    /* send queue budget / hard cap reached */
	IKETCP_E_KEEPALIVE = -24, /* a NAT keepalive: never framed (R47) */
	/* caller errors */
	IKETCP_E_INVAL = -30, /* bad argument */
	IKETCP_E_STATE = -31, /* object is in a failed state; see its last error */
	IKETCP_E_NOMEM = -32, /* allocation failed */
	/* I/O: errno holds the system error */
	IKETCP_E_IO = -40,
	/* TLS and HTTP proxy (transport.h, tls.h, proxy.h): close the connection;
	 * iketcp_transport_last_error() has the details of the TLS ones */
	IKETCP_E_TLS = -50,          /* TLS protocol error or alert */
	IKETCP_E_TLS_VERIFY = -51,   /* peer certificate refused (expired, unknown CA, name) */
	IKETCP_E_TLS_PIN = -52,      /* peer public key does not match the configured pin */
	IKETCP_E_PROXY_STATUS = -53, /* proxy answered CONNECT with a non-2xx status */
	IKETCP_E_PROXY_SYNTAX = -54, /* proxy response is not HTTP/1.x */
	IKETCP_E_PROXY_TOOBIG = -55, /* proxy response head above the size limit */
	/* TLS configuration refused (bad file, key, cipher string, pin): a usage error */
	IKETCP_E_TLS_CONFIG = -56,
	/* PROXY protocol header from a load balancer (proxyproto.h): close the connection */
	IKETCP_E_PPHDR = -57, /* not a valid PROXY protocol header */
};

enum iketcp_err_category {
	IKETCP_CAT_OK,      /* not an error */
	IKETCP_CAT_AGAIN,   /* would block */
	IKETCP_CAT_PEER,    /* the peer misbehaved: close the connection */
	IKETCP_CAT_REFUSED, /* local refusal of one item; the object stays usable */
	IKETCP_CAT_USAGE,   /* caller bug or resource exhaustion */
	IKETCP_CAT_IO,      /* system call failed, see errno */
	IKETCP_CAT_UNKNOWN, /* not an iketcp code */
};

/* Returns a static, human readable description of code; never NULL. */
const char *iketcp_strerror(int code);

/* Returns the static symbolic name of code ("IKETCP_E_BADLEN"); never NULL. */
const char *iketcp_errname(int code);

/* Returns the category of code. Positive values count as IKETCP_CAT_OK. */
enum iketcp_err_category iketcp_err_category(int code);

#ifdef __cplusplus
}
#endif
#endif
