/*
 * One RFC 9329 stream, as both modes relay it: the socket's watcher, its
 * transport (plain TCP or TLS), the deframer of what arrives and the send
 * queue of what leaves. Server connections (server.c) and client flows
 * (client.c) embed a struct relay and keep only their own rules around it:
 * sessions and the return path, flows, fallback and reconnects.
 *
 * Per-packet path, TCP to UDP: the watcher's event -> relay_read() -> one
 * read into the mode's read buffer -> the deframer hands whole frames ->
 * iketcp_dgram_classify() of each body -> the mode's frame callback -> udpbatch_add() ->
 * udpbatch_flush() once per read (sendmmsg, GSO). UDP to TCP: udprecv_read()
 * -> iketcp_dgram_classify() -> the mode's routing -> iketcp_sendq_push_dgram()
 * -> relay_flush() once per receive batch (one writev).
 */
#ifndef IKETCPD_RELAY_H
#define IKETCPD_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "iketcp/iketcp.h"
#include "loop.h"
#include "udpbatch.h"

/* One TCP read; frames that lie whole in it are not copied. */
#define RELAY_RBUF_SIZE 65536u
/* Shutdown: how long queued frames may take to be written. */
#define RELAY_DRAIN_MS 2000
/* TLS: records are gathered while there is room for a whole one, so
 * OpenSSL never keeps decrypted bytes that epoll cannot announce. */
#define RELAY_TLS_RECORD_MAX 16384
/* IKE under an ESP flood (docs/performance.md, issue #13): while the send
 * queue stands (iketcp_sendq_standing(): ESP queued for RELAY_STANDING_NS
 * without draining, or IKE left queued), TCP_NOTSENT_LOWAT keeps the
 * socket's unsent bytes near RELAY_LOWAT_TIGHT, so the backlog waits in
 * the send queue, where IKE overtakes it and ESP beyond the budget is
 * dropped, instead of in the kernel, where IKE would wait behind it. Off
 * again (the sysctl default, normally no limit) once the queue empties:
 * below overload the kernel's buffers absorb bursts without loss. */
#ifndef RELAY_LOWAT_TIGHT
#define RELAY_LOWAT_TIGHT (128 * 1024)
#endif
#ifndef RELAY_STANDING_NS
#define RELAY_STANDING_NS 2000000u
#endif
/* How long TCP_NOTSENT_LOWAT stays tight after the queue last stood: under
 * overload the queue still empties now and then. */
#ifndef RELAY_HOLD_NS
#define RELAY_HOLD_NS 200000000u
#endif

struct relay {
	struct watcher w; /* the TCP socket; w.data is the owner */
	struct iketcp_transport tr;
	int is_tls;
	struct iketcp_deframer df;
	struct iketcp_sendq q;
	size_t prefix_left; /* the originator's "IKETCP" still to write (R15) */
	int lowat_tight;    /* TCP_NOTSENT_LOWAT is RELAY_LOWAT_TIGHT (see there) */
};

/* Per-read state shared by a mode's connections: the read buffer and the
 * batch of datagrams parsed from it. */
struct relay_io {
	uint8_t rbuf[RELAY_RBUF_SIZE];
	struct udpbatch batch;
};

/*
 * The mode's rules, called by relay_read():
 * data: n bytes were read, before they are deframed; may be NULL.
 * frame: the body of one whole frame, classified once
 *   (iketcp_dgram_classify(): an empty body is a RUNT of reason EMPTY, R5).
 *   Returns 0 to read on, -1 when the relay must stop (its owner closed or
 *   replaced it).
 * chunk: after the nframes frames of one read, before the batch is
 *   flushed; may be NULL.
 */
struct relay_ops {
	void (*data)(struct relay *r, size_t n);
	int (*frame)(struct relay *r, const struct iketcp_dgram *d);
	void (*chunk)(struct relay *r, int nframes);
};

enum relay_end {
	RELAY_AGAIN,   /* read all there was: wait for the next event */
	RELAY_STOPPED, /* a callback returned -1 */
	RELAY_EOF,     /* the peer closed */
	RELAY_IOERR,   /* the transport failed: relay_error() says why */
	RELAY_STREAM,  /* the deframer refused the stream: *code is why */
};

/* Sets up the deframer and the send queue. Returns 0, or -1 (no memory). */
int relay_init(struct relay *r, const struct iketcp_deframer_cfg *dc,
	       const struct iketcp_sendq_cfg *qc);
/* Frees the transport, the deframer and the queue (not the socket). */
void relay_free(struct relay *r);

/*
 * Reads what the transport has (one recv for plain TCP, whole TLS records
 * gathered for TLS), deframes it in io->rbuf and hands each frame to
 * ops->frame; bytes handed back to the transport (a proxy's surplus) are
 * read on too, as epoll does not announce them. Datagrams batched by the
 * callbacks are flushed after each read, and at once after a frame that
 * the deframer assembled in its own buffer (valid only until the next).
 * *code: the deframer's error for RELAY_STREAM, else the last read result.
 */
enum relay_end relay_read(struct relay *r, struct relay_io *io, const struct relay_ops *ops,
			  int *code);

/* Writes any prefix still owed together with the queued frames (R15, R24:
 * one segment, one TLS record). Returns IKETCP_OK (all written; buffers
 * trimmed), IKETCP_E_AGAIN, or an error (relay_error() says why). */
int relay_flush(struct relay *r);

/* Sets the watcher's epoll interest from what the transport waits for
 * (OpenSSL's WANT_READ / WANT_WRITE included): reading when `reading`,
 * writing when `writing` or while output is queued. */
void relay_want(struct loop *l, struct relay *r, int reading, int writing);
/* The same from IKETCP_WANT_* flags. */
void relay_watch(struct loop *l, struct relay *r, unsigned want);

/* What an epoll event ev lets the transport do: *rd (read) and *wr
 * (flush). TLS may need the other direction's readiness (a read that waits
 * for EPOLLOUT, a write for EPOLLIN). */
void relay_ready(const struct relay *r, uint32_t ev, int *rd, int *wr);

/* Why the transport failed with rc: its own text (OpenSSL's), else
 * strerror(errno) for an I/O error, else rc's name. */
const char *relay_error(const struct relay *r, int rc, char *buf, size_t len);

/* Frees buffers unused since the last trim (memory: an idle connection
 * gets no more reads or flushes to trim them). Returns the TLS buffer
 * bytes freed, which the heap keeps until malloc_trim(). */
size_t relay_trim(struct relay *r);

#endif
