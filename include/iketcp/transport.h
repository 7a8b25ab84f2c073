/*
 * Transport table: one interface for the byte stream under RFC 9329 frames,
 * so that relay code is the same for plain TCP and for TLS (RFC 9329
 * Appendix A).
 *
 * A transport is caller-owned storage (embed it in the connection) filled
 * by an init function: iketcp_transport_tcp_init() here, or
 * iketcp_tls_server_init() / iketcp_tls_client_init() in tls.h. Each init
 * sets an ops table; the iketcp_transport_*() wrappers below dispatch
 * through it and keep the event interest (`want`) up to date. A caller may
 * supply its own ops table (a test double, a future transport) as long as
 * it follows the same return conventions.
 *
 * Nothing here blocks. An operation that cannot progress returns
 * IKETCP_E_AGAIN and records which socket readiness it needs next. That is
 * not always the obvious one: a TLS read may need the socket to be
 * writable (a TLS 1.3 KeyUpdate answer) and a TLS write may need it to be
 * readable (a TLS 1.2 renegotiation, refused here, or a handshake still
 * running). So the event loop asks iketcp_transport_interest() which
 * events to wait for instead of guessing from what it wants to do.
 *
 *   struct iketcp_transport t;
 *   iketcp_transport_tcp_init(&t, fd, IKETCP_TRANSPORT_CONNECTING);
 *   ... on any event:
 *   if (!iketcp_transport_handshake_done(&t)) {
 *           rc = iketcp_transport_handshake(&t);   // OK, AGAIN or error
 *   } else {
 *           while ((n = iketcp_transport_read(&t, buf, sizeof(buf))) > 0) ...;
 *           rc = iketcp_transport_send(&t, &sendq); // OK, AGAIN or error
 *   }
 *   epoll_mod(fd, iketcp_transport_interest(&t, want_input, rc == IKETCP_E_AGAIN));
 *
 * The file descriptor is borrowed: the transport never closes it.
 */
#ifndef IKETCP_TRANSPORT_H
#define IKETCP_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "iketcp/err.h"
#include "iketcp/sendq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Readiness a transport waits for; map to EPOLLIN / EPOLLOUT. */
#define IKETCP_WANT_READ 1u
#define IKETCP_WANT_WRITE 2u

/* Flags of iketcp_transport_tcp_init(). */
#define IKETCP_TRANSPORT_CONNECTING 1u /* non-blocking connect() in progress */

/* Room for the text of the last error (iketcp_transport_last_error()). */
#define IKETCP_TRANSPORT_ERR_MAX 256

struct iketcp_transport;

/*
 * Operations of one kind of transport. Return conventions (the wrappers
 * below document them for callers):
 *   read      bytes read (> 0), 0 at end of stream, IKETCP_E_AGAIN, or an error
 *   writev    bytes taken (>= 0), IKETCP_E_AGAIN, or an error; same as
 *             iketcp_writev_fn in sendq.h
 *   handshake IKETCP_OK when done, IKETCP_E_AGAIN, or an error
 *   shutdown  IKETCP_OK when the close is under way, IKETCP_E_AGAIN, or an error
 *   pending   bytes taken by writev but not yet handed to the kernel
 *   flush     IKETCP_OK when pending() is 0, IKETCP_E_AGAIN, or an error
 *   free      releases what the init function allocated
 * On IKETCP_E_AGAIN an operation sets the matching want field of the
 * transport (rd_want for read, wr_want for writev/flush/shutdown, hs_want
 * for handshake) to IKETCP_WANT_READ and/or IKETCP_WANT_WRITE.
 * handshake, pending and flush may be NULL (nothing to do).
 */
struct iketcp_transport_ops {
	const char *name; /* "tcp", "tls" */
	long (*read)(struct iketcp_transport *t, void *buf, size_t len);
	long (*writev)(struct iketcp_transport *t, const struct iovec *iov, int cnt);
	int (*handshake)(struct iketcp_transport *t);
	int (*shutdown)(struct iketcp_transport *t);
	size_t (*pending)(const struct iketcp_transport *t);
	int (*flush)(struct iketcp_transport *t);
	void (*free)(struct iketcp_transport *t);
};

struct iketcp_transport {
	const struct iketcp_transport_ops *ops; /* NULL after free */
	int fd;                                 /* borrowed, never closed here */
	unsigned flags;                         /* IKETCP_TRANSPORT_* */
	int hs_done;                            /* handshake finished */
	unsigned rd_want;                       /* need of the last read that returned AGAIN */
	unsigned wr_want;                       /* same for writev / flush / shutdown */
	unsigned hs_want;                       /* same for handshake */
	/* Bytes already read off fd by the caller (iketcp_transport_preread()),
	 * handed out before anything new is read from fd. Owned copy. */
	uint8_t *pre;
	size_t pre_len;
	size_t pre_off;
	void *impl;                         /* transport state (TLS: the connection) */
	char err[IKETCP_TRANSPORT_ERR_MAX]; /* text of the last error, "" if none */
};

/*
 * Sets t up as plain TCP over the non-blocking socket fd. With
 * IKETCP_TRANSPORT_CONNECTING the handshake waits for a non-blocking
 * connect() to finish (socket writable, SO_ERROR checked); otherwise the
 * handshake is already done. Allocates nothing.
 * Returns IKETCP_OK or IKETCP_E_INVAL (fd < 0, unknown flag).
 */
int IKETCP_WUR iketcp_transport_tcp_init(struct iketcp_transport *t, int fd, unsigned flags);

/*
 * Reads up to len bytes into buf: first the bytes given to
 * iketcp_transport_preread(), then from the transport.
 * Returns the number of bytes (> 0); 0 at end of stream (TCP FIN, or TLS
 * close_notify or FIN); IKETCP_E_AGAIN (see rd_want); IKETCP_E_STATE
 * (handshake not done, t freed, or an earlier fatal TLS error);
 * IKETCP_E_INVAL (len 0); IKETCP_E_IO (errno set); IKETCP_E_TLS (text in
 * iketcp_transport_last_error()).
 */
long IKETCP_WUR iketcp_transport_read(struct iketcp_transport *t, void *buf, size_t len);

/*
 * Writes a prefix of the iovecs. Returns the number of bytes the transport
 * took (>= 0), IKETCP_E_AGAIN (nothing taken, see wr_want), IKETCP_E_STATE,
 * IKETCP_E_IO (errno set) or IKETCP_E_TLS.
 *
 * "Took" means the bytes are committed in order: they reach the socket
 * before any byte of a later call, even when the transport had to keep
 * some of them (TLS: a record OpenSSL must retry). Such kept bytes are
 * counted by iketcp_transport_pending() and pushed by
 * iketcp_transport_flush() or the next writev; iketcp_transport_send()
 * does both for a send queue.
 */
long IKETCP_WUR iketcp_transport_writev(struct iketcp_transport *t, const struct iovec *iov,
					int cnt);

/* iketcp_transport_writev() as an iketcp_writev_fn: ctx is the transport. */
long IKETCP_WUR iketcp_transport_writer(void *ctx, const struct iovec *iov, int cnt);

/*
 * Advances the handshake: the non-blocking connect (IKETCP_TRANSPORT_CONNECTING),
 * then the TLS handshake. Returns IKETCP_OK once done (also on later calls);
 * IKETCP_E_AGAIN (see hs_want); IKETCP_E_IO (errno set, e.g. ECONNREFUSED);
 * IKETCP_E_TLS, IKETCP_E_TLS_VERIFY or IKETCP_E_TLS_PIN (reason in
 * iketcp_transport_last_error()); IKETCP_E_STATE (t freed).
 */
int IKETCP_WUR iketcp_transport_handshake(struct iketcp_transport *t);

/* Returns non-zero once the handshake has completed. */
int iketcp_transport_handshake_done(const struct iketcp_transport *t);

/*
 * Starts an orderly close of the sending side: TLS close_notify (checklist
 * A15), then a TCP FIN (shutdown(SHUT_WR)). The receiving side stays open
 * until the caller closes fd. Returns IKETCP_OK (both sent), IKETCP_E_AGAIN
 * (call again when wr_want is met), IKETCP_E_IO or IKETCP_E_TLS; the
 * caller may close fd on any error.
 */
int IKETCP_WUR iketcp_transport_shutdown(struct iketcp_transport *t);

/* Returns the bytes taken by writev that are not yet handed to the kernel. */
size_t iketcp_transport_pending(const struct iketcp_transport *t);

/*
 * Pushes the bytes counted by iketcp_transport_pending(). Returns IKETCP_OK
 * (none left), IKETCP_E_AGAIN (see wr_want), IKETCP_E_IO or IKETCP_E_TLS.
 */
int IKETCP_WUR iketcp_transport_flush(struct iketcp_transport *t);

/*
 * Flushes send queue q through t, then the transport's own pending bytes.
 * This is the call a relay makes on writability. Returns IKETCP_OK (q empty
 * and nothing pending), IKETCP_E_AGAIN (wait for
 * iketcp_transport_interest(t, ..., 1)), or the transport's error
 * (IKETCP_E_IO with errno, IKETCP_E_TLS, IKETCP_E_STATE).
 */
int IKETCP_WUR iketcp_transport_send(struct iketcp_transport *t, struct iketcp_sendq *q);

/*
 * Returns the readiness events of the operations that last returned
 * IKETCP_E_AGAIN (a union of IKETCP_WANT_*), 0 if none is waiting.
 */
unsigned iketcp_transport_want(const struct iketcp_transport *t);

/*
 * Returns the events to wait for, given whether the caller wants input
 * (reading) and has output waiting (writing: a send queue or pending
 * transport bytes). During the handshake it is what the handshake needs.
 * Otherwise reading adds what the last blocked read needs (READ by
 * default), writing adds what the last blocked write needs (WRITE by
 * default), and pending transport bytes always add the write need.
 */
unsigned iketcp_transport_interest(const struct iketcp_transport *t, int reading, int writing);

/*
 * Gives the transport n bytes that the caller already read off fd (for
 * example while sniffing the first byte, or the tunnel bytes that followed
 * an HTTP CONNECT response). They are read again, first, by
 * iketcp_transport_read() or by the TLS handshake. Call before the first
 * read or handshake step. Returns IKETCP_OK, IKETCP_E_STATE (earlier bytes
 * not yet read again, or t freed), IKETCP_E_INVAL (p NULL or n 0) or
 * IKETCP_E_NOMEM.
 */
int IKETCP_WUR iketcp_transport_preread(struct iketcp_transport *t, const void *p, size_t n);

/*
 * Copies the text of the last error into buf (always NUL-terminated when
 * len > 0): for TLS the OpenSSL reason, or for a refused certificate
 * X509_verify_cert_error_string() ("hostname mismatch", "certificate has
 * expired", "unable to get local issuer certificate"); for I/O errors
 * strerror(). Returns the length of the full text (as snprintf), 0 when
 * there was no error.
 */
size_t iketcp_transport_last_error(const struct iketcp_transport *t, char *buf, size_t len);

/* Returns the ops name ("tcp", "tls"), or "none" after free. */
const char *iketcp_transport_name(const struct iketcp_transport *t);

/*
 * Releases what the init function allocated (not fd). t may be NULL; a
 * second free is harmless, and every other call on a freed transport
 * returns IKETCP_E_STATE.
 */
void iketcp_transport_free(struct iketcp_transport *t);

/* ---- telling a stream apart on one port ------------------------------- */

enum iketcp_stream_kind {
	IKETCP_STREAM_EOF = 0,     /* peek only: the peer closed before sending */
	IKETCP_STREAM_TLS = 1,     /* 0x16: a TLS handshake record (ClientHello) */
	IKETCP_STREAM_RFC9329 = 2, /* 'I': plain RFC 9329, the prefix "IKETCP" follows */
	IKETCP_STREAM_OTHER = 3,   /* anything else: close (or try the legacy mode) */
};

/*
 * Classifies a stream by its first byte, given the bytes the caller has
 * already read. Only the first byte decides: the deframer checks the rest
 * of the prefix (R26) and OpenSSL the rest of the ClientHello.
 * Returns an iketcp_stream_kind other than EOF, or IKETCP_E_AGAIN when n is 0.
 */
int IKETCP_WUR iketcp_stream_sniff(const void *p, size_t n);

/*
 * Classifies the stream on socket fd by peeking (recv(MSG_PEEK)) at its
 * first byte, which stays in the socket for whoever reads next.
 * Returns IKETCP_STREAM_EOF (0) if the peer closed without sending, another
 * iketcp_stream_kind, IKETCP_E_AGAIN (nothing yet: wait for EPOLLIN), or
 * IKETCP_E_IO (errno set).
 */
int IKETCP_WUR iketcp_stream_peek(int fd);

/* Returns the static name of a stream kind, for logs. */
const char *iketcp_stream_kind_name(int kind);

#ifdef __cplusplus
}
#endif
#endif
