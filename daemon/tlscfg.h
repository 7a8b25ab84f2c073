/*
 * TLS contexts of the gateway's sections, built from their configuration
 * (daemon/config.h) with libiketcp's tls.h. Shared by server.c, client.c
 * and main.c (iketcpd -n builds every context once, so a bad certificate
 * or cipher list is found before anything starts).
 */
#ifndef IKETCPD_TLSCFG_H
#define IKETCPD_TLSCFG_H

#include <stddef.h>

#include "iketcp/tls.h"

#include "config.h"

/*
 * Builds the server context of s (tls-cert, tls-key, tls-min-version, ...).
 * Returns it with one reference, or NULL with err set to a message that
 * names the key and file at fault ("tls-cert /etc/x.pem: no start line").
 */
struct iketcp_tls_ctx *tlscfg_server_ctx(const struct iketcpd_server_cfg *s, char *err,
					 size_t errlen);

/* Same for a client section with tls = yes (tls-server-name defaults to the peer host). */
struct iketcp_tls_ctx *tlscfg_client_ctx(const struct iketcpd_client_cfg *c, char *err,
					 size_t errlen);

#endif
