/*
 * Private helpers shared by the transports in lib/ (transport.c, tls.c).
 * Not installed.
 */
#ifndef IKETCP_TRANSPORT_INT_H
#define IKETCP_TRANSPORT_INT_H

#include "iketcp/transport.h"

/* Clears t and sets its ops, fd and flags. */
void iketcp__transport_reset(struct iketcp_transport *t, int fd, unsigned flags,
			     const struct iketcp_transport_ops *ops);

/* Formats the text of the last error into t->err. */
void iketcp__transport_seterr(struct iketcp_transport *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Copies up to len pre-read bytes into buf (t->pre must be set) and frees
 * them once all are taken. Returns the number of bytes copied (> 0). */
long iketcp__transport_take_pre(struct iketcp_transport *t, void *buf, size_t len);

#endif
