/*
 * The socket I/O of a request/answer connection, shared by the stats
 * socket (statsock.c) and metrics-listen (metrics_http.c): both read one
 * short request into a fixed buffer and write one answer from memory,
 * non-blocking, from the event loop.
 */
#ifndef IKETCPD_ANSWER_H
#define IKETCPD_ANSWER_H

#include <stddef.h>
#include <sys/types.h>

#define ANSWER_AGAIN (-2) /* answer_recv: nothing to read now */

/* Reads what the peer sent into buf[*len, cap) and adds it to *len.
 * Returns the bytes read (> 0), 0 at the peer's end of stream (or a full
 * buffer), ANSWER_AGAIN, or -1 on an error. */
ssize_t answer_recv(int fd, void *buf, size_t cap, size_t *len);
/* Sends out[*off, len) and advances *off. Returns 1 when all of it is
 * sent, 0 when the socket is full (wait for EPOLLOUT), -1 on an error. */
int answer_send(int fd, const char *out, size_t len, size_t *off);

#endif
