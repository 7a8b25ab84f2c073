/*
 * Test helpers for the transport and TLS tests: a throwaway PKI made at
 * test time with the OpenSSL C API (no private key is ever committed),
 * non-blocking socket pairs, and a poll() loop that drives two transports'
 * handshakes by their `want` flags.
 *
 * Include after testutil.h.
 */
#ifndef IKETCP_TLSUTIL_H
#define IKETCP_TLSUTIL_H

#include <stddef.h>

#include "iketcp/transport.h"

#define TU_PATH_MAX 512
#define TU_SERVER_NAME "server.test"

/*
 * Files in a fresh temporary directory (removed by tu_pki_remove()).
 * Every leaf is an EC P-256 key with a certificate for TU_SERVER_NAME
 * unless said otherwise.
 */
struct tu_pki {
	char dir[TU_PATH_MAX];
	char ca[TU_PATH_MAX];       /* the trusted test CA (certificate) */
	char srv_cert[TU_PATH_MAX]; /* valid, signed by ca */
	char srv_key[TU_PATH_MAX];
	char wrong_cert[TU_PATH_MAX]; /* valid, signed by ca, but for other.test */
	char wrong_key[TU_PATH_MAX];
	char expired_cert[TU_PATH_MAX]; /* signed by ca, expired yesterday */
	char expired_key[TU_PATH_MAX];
	char unknown_cert[TU_PATH_MAX]; /* valid, signed by a CA nobody trusts */
	char unknown_key[TU_PATH_MAX];
	char ip_cert[TU_PATH_MAX]; /* valid, signed by ca, for IP 127.0.0.1 only */
	char ip_key[TU_PATH_MAX];
};

/* Makes the PKI; fails the test on any error. */
void tu_pki_make(struct tu_pki *p);

/* Deletes the files and the directory. */
void tu_pki_remove(struct tu_pki *p);

/* A connected AF_UNIX stream pair, both ends non-blocking and close-on-exec. */
void tu_socketpair(int sv[2]);

/* A connected loopback TCP pair (127.0.0.1), both non-blocking. */
void tu_tcp_pair(int sv[2]);

/* Sets SO_SNDBUF and SO_RCVBUF of fd (the kernel may round them up). */
void tu_small_buffers(int fd, int bytes);

/*
 * Polls fd for the IKETCP_WANT_* events in want (0: nothing) with a
 * timeout in milliseconds; returns the poll() result (0 on timeout).
 */
int tu_wait(int fd, unsigned want, int timeout_ms);

/*
 * Runs the handshakes of a and b (either may already be done) until both
 * have finished or one has failed, waiting with poll() on what each one
 * wants. Stores their final codes in *rca and *rcb (IKETCP_E_AGAIN only
 * if the other side failed first and this one was still waiting). Fails
 * the test if nothing moves for 5 seconds.
 */
void tu_handshake_pair(struct iketcp_transport *a, struct iketcp_transport *b, int *rca, int *rcb);

/*
 * Writes all n bytes through t and reads exactly n bytes from r, driving
 * both by their want flags (both handshakes must be done). Fails the test
 * on an error or a 5 second stall.
 */
void tu_transfer(struct iketcp_transport *t, struct iketcp_transport *r, const void *p, size_t n);

/* Returns 1 if the text of t's last error contains needle, else prints it and returns 0. */
int tu_err_contains(const struct iketcp_transport *t, const char *needle);

#endif
