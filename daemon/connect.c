#include "connect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "config.h"

struct http_connect *
http_connect_new(const char *host, uint16_t port, const char *auth, char *err, size_t errlen)
{
	char a[IKETCPD_AUTH_MAX], *user = NULL, *pass = NULL;
	struct http_connect *hc = calloc(1, sizeof(*hc));

	if (!hc || iketcp_proxy_parser_init(&hc->parser, 0) != IKETCP_OK) {
		free(hc);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (auth[0]) {
		snprintf(a, sizeof(a), "%s", auth);
		char *colon = strchr(a, ':');
		if (colon) {
			*colon = '\0';
			user = a;
			pass = colon + 1;
		}
	}
	long n = iketcp_proxy_request(hc->req, sizeof(hc->req), host, port, user, pass);
	explicit_bzero(a, sizeof(a)); /* the password */
	if (n < 0) {
		free(hc);
		snprintf(err, errlen, "cannot build the CONNECT request");
		return NULL;
	}
	hc->len = (size_t)n;
	return hc;
}

unsigned
http_connect_interest(const struct http_connect *hc, const struct iketcp_transport *tr)
{
	return iketcp_transport_interest(tr, hc->off == hc->len, hc->off < hc->len);
}

enum http_connect_result
http_connect_step(struct http_connect *hc, struct iketcp_transport *tr, uint8_t *buf, size_t cap,
		  const uint8_t **rest, size_t *nrest, int *rc, char *err, size_t errlen)
{
	while (hc->off < hc->len) {
		struct iovec iov = {.iov_base = hc->req + hc->off, .iov_len = hc->len - hc->off};
		long w = iketcp_transport_writev(tr, &iov, 1);
		if (w == IKETCP_E_AGAIN || w == 0)
			return HC_AGAIN;
		if (w < 0) {
			*rc = (int)w;
			return HC_IOERR;
		}
		hc->off += (size_t)w;
	}
	for (;;) {
		long n = iketcp_transport_read(tr, buf, cap);
		if (n == IKETCP_E_AGAIN)
			return HC_AGAIN;
		if (n == 0) {
			snprintf(err, errlen, "closed the connection before answering CONNECT");
			return HC_REFUSED;
		}
		if (n < 0) {
			*rc = (int)n;
			return HC_IOERR;
		}
		struct iketcp_cur in;
		iketcp_cur_init(&in, buf, (size_t)n);
		int r = iketcp_proxy_parse(&hc->parser, &in);
		if (r == 0)
			continue;
		if (r == 1) {
			*rest = iketcp_cur_ptr(&in);
			*nrest = iketcp_cur_left(&in);
			return HC_DONE;
		}
		if (r == IKETCP_E_PROXY_STATUS)
			snprintf(err, errlen, "refused CONNECT: %d %s", hc->parser.status,
				 hc->parser.reason);
		else
			snprintf(err, errlen, "bad answer to CONNECT: %s", iketcp_strerror(r));
		return HC_REFUSED;
	}
}
