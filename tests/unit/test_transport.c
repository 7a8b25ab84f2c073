/*
 * Unit tests for lib/transport.c: the generic wrappers and the plain TCP
 * transport over real non-blocking sockets (AF_UNIX pairs and loopback
 * TCP), first-byte sniffing and peeking, pre-read bytes, the non-blocking
 * connect handshake, and a send queue flushed through the transport into a
 * deframer on the other side with small socket buffers.
 */
#include "testutil.h"
#include "tlsutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iketcp/deframer.h"
#include "iketcp/frame.h"
#include "iketcp/sendq.h"
#include "iketcp/transport.h"

static void
test_tcp_read_write(void **state)
{
	int sv[2];
	struct iketcp_transport a, b;
	uint8_t buf[64];

	(void)state;
	tu_socketpair(sv);
	assert_int_equal(iketcp_transport_tcp_init(&a, sv[0], 0), IKETCP_OK);
	assert_int_equal(iketcp_transport_tcp_init(&b, sv[1], 0), IKETCP_OK);
	assert_string_equal(iketcp_transport_name(&a), "tcp");
	assert_true(iketcp_transport_handshake_done(&a));
	assert_int_equal(iketcp_transport_handshake(&a), IKETCP_OK);

	/* Nothing to read: AGAIN and the read wants readability. */
	assert_int_equal(iketcp_transport_read(&b, buf, sizeof(buf)), IKETCP_E_AGAIN);
	assert_int_equal(iketcp_transport_want(&b), IKETCP_WANT_READ);
	assert_int_equal(iketcp_transport_interest(&b, 1, 0), IKETCP_WANT_READ);

	struct iovec iov[3] = {{"IKE", 3}, {"TCP", 3}, {"\x00\x02", 2}};
	assert_int_equal(iketcp_transport_writev(&a, iov, 3), 8);
	assert_int_equal(iketcp_transport_pending(&a), 0);
	assert_int_equal(iketcp_transport_flush(&a), IKETCP_OK);
	assert_int_equal(iketcp_transport_read(&b, buf, sizeof(buf)), 8);
	assert_memory_equal(buf, "IKETCP\x00\x02", 8);
	assert_int_equal(iketcp_transport_want(&b), 0);

	/* Shutdown sends a FIN: the peer reads end of stream. */
	assert_int_equal(iketcp_transport_shutdown(&a), IKETCP_OK);
	assert_int_equal(iketcp_transport_read(&b, buf, sizeof(buf)), 0);

	/* Bad arguments. */
	assert_int_equal(iketcp_transport_read(&b, buf, 0), IKETCP_E_INVAL);
	assert_int_equal(iketcp_transport_writev(&a, NULL, 1), IKETCP_E_INVAL);
	assert_int_equal(iketcp_transport_writev(&a, iov, 0), 0);
	assert_int_equal(iketcp_transport_tcp_init(&a, -1, 0), IKETCP_E_INVAL);
	assert_int_equal(iketcp_transport_tcp_init(&a, sv[0], 0x80), IKETCP_E_INVAL);

	iketcp_transport_free(&a);
	iketcp_transport_free(&b);
	close(sv[0]);
	close(sv[1]);
}

/* After free every call refuses with STATE; free twice is harmless. */
static void
test_free_state(void **state)
{
	int sv[2];
	struct iketcp_transport t;
	uint8_t buf[4];
	struct iovec iov = {buf, 4};

	(void)state;
	tu_socketpair(sv);
	assert_int_equal(iketcp_transport_tcp_init(&t, sv[0], 0), IKETCP_OK);
	iketcp_transport_free(&t);
	iketcp_transport_free(&t);
	iketcp_transport_free(NULL);
	assert_int_equal(iketcp_transport_read(&t, buf, 4), IKETCP_E_STATE);
	assert_int_equal(iketcp_transport_writev(&t, &iov, 1), IKETCP_E_STATE);
	assert_int_equal(iketcp_transport_handshake(&t), IKETCP_E_STATE);
	assert_int_equal(iketcp_transport_shutdown(&t), IKETCP_E_STATE);
	assert_int_equal(iketcp_transport_flush(&t), IKETCP_E_STATE);
	assert_int_equal(iketcp_transport_preread(&t, buf, 1), IKETCP_E_STATE);
	assert_int_equal(iketcp_transport_want(&t), 0);
	assert_int_equal(iketcp_transport_interest(&t, 1, 1), 0);
	assert_false(iketcp_transport_handshake_done(&t));
	assert_string_equal(iketcp_transport_name(&t), "none");
	close(sv[0]);
	close(sv[1]);
}

/* A full socket: writev returns AGAIN and wants writability; reads drain it. */
static void
test_tcp_would_block(void **state)
{
	int sv[2];
	struct iketcp_transport a, b;
	static uint8_t big[1 << 16];
	uint8_t sink[1 << 16];
	size_t sent = 0, rcvd = 0;

	(void)state;
	tu_socketpair(sv);
	tu_small_buffers(sv[0], 4096);
	tu_small_buffers(sv[1], 4096);
	assert_int_equal(iketcp_transport_tcp_init(&a, sv[0], 0), IKETCP_OK);
	assert_int_equal(iketcp_transport_tcp_init(&b, sv[1], 0), IKETCP_OK);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	for (;;) {
		struct iovec iov = {big + sent, sizeof(big) - sent};
		long w = iketcp_transport_writev(&a, &iov, 1);
		if (w == IKETCP_E_AGAIN)
			break;
		assert_true(w > 0);
		sent += (size_t)w;
	}
	assert_true(sent < sizeof(big));
	assert_int_equal(iketcp_transport_want(&a), IKETCP_WANT_WRITE);
	assert_int_equal(iketcp_transport_interest(&a, 0, 1), IKETCP_WANT_WRITE);
	assert_int_equal(iketcp_transport_interest(&a, 1, 1), IKETCP_WANT_READ | IKETCP_WANT_WRITE);
	while (rcvd < sent) {
		long r = iketcp_transport_read(&b, sink + rcvd, sizeof(sink) - rcvd);
		assert_true(r > 0);
		rcvd += (size_t)r;
	}
	assert_memory_equal(sink, big, sent);
	/* Writable again: the next write goes through and clears the want. */
	struct iovec iov = {big + sent, 1};
	assert_int_equal(iketcp_transport_writev(&a, &iov, 1), 1);
	assert_int_equal(iketcp_transport_want(&a), 0);
	iketcp_transport_free(&a);
	iketcp_transport_free(&b);
	close(sv[0]);
	close(sv[1]);
}

/* A peer that is gone: EPIPE as IKETCP_E_IO with a text, and no SIGPIPE. */
static void
test_tcp_epipe(void **state)
{
	int sv[2];
	struct iketcp_transport a;
	struct iovec iov = {"x", 1};

	(void)state;
	tu_socketpair(sv);
	close(sv[1]);
	assert_int_equal(iketcp_transport_tcp_init(&a, sv[0], 0), IKETCP_OK);
	assert_int_equal(iketcp_transport_writev(&a, &iov, 1), IKETCP_E_IO);
	assert_int_equal(errno, EPIPE);
	assert_true(tu_err_contains(&a, "send: "));
	char small[6];
	assert_true(iketcp_transport_last_error(&a, small, sizeof(small)) > 5);
	assert_int_equal(strlen(small), 5);
	iketcp_transport_free(&a);
	close(sv[0]);
}

static void
test_sniff(void **state)
{
	(void)state;
	assert_int_equal(iketcp_stream_sniff("", 0), IKETCP_E_AGAIN);
	assert_int_equal(iketcp_stream_sniff(NULL, 0), IKETCP_E_AGAIN);
	assert_int_equal(iketcp_stream_sniff("\x16\x03\x01", 3), IKETCP_STREAM_TLS);
	assert_int_equal(iketcp_stream_sniff("IKETCP", 6), IKETCP_STREAM_RFC9329);
	assert_int_equal(iketcp_stream_sniff("I", 1), IKETCP_STREAM_RFC9329);
	assert_int_equal(iketcp_stream_sniff("GET /", 5), IKETCP_STREAM_OTHER);
	assert_int_equal(iketcp_stream_sniff("\x00\x00", 2), IKETCP_STREAM_OTHER);
	assert_int_equal(iketcp_stream_sniff("i", 1), IKETCP_STREAM_OTHER);
	assert_string_equal(iketcp_stream_kind_name(IKETCP_STREAM_TLS), "tls");
	assert_string_equal(iketcp_stream_kind_name(IKETCP_STREAM_RFC9329), "rfc9329");
	assert_string_equal(iketcp_stream_kind_name(IKETCP_STREAM_OTHER), "other");
	assert_string_equal(iketcp_stream_kind_name(IKETCP_STREAM_EOF), "eof");
	assert_string_equal(iketcp_stream_kind_name(42), "unknown");
}

/* MSG_PEEK leaves the byte in the socket for the next reader. */
static void
test_peek(void **state)
{
	int sv[2];
	uint8_t buf[8];

	(void)state;
	tu_tcp_pair(sv);
	assert_int_equal(iketcp_stream_peek(sv[1]), IKETCP_E_AGAIN);
	assert_int_equal(send(sv[0], "\x16\x03\x01", 3, 0), 3);
	assert_true(tu_wait(sv[1], IKETCP_WANT_READ, 2000) > 0);
	assert_int_equal(iketcp_stream_peek(sv[1]), IKETCP_STREAM_TLS);
	assert_int_equal(iketcp_stream_peek(sv[1]), IKETCP_STREAM_TLS);
	assert_int_equal(recv(sv[1], buf, sizeof(buf), 0), 3);
	assert_memory_equal(buf, "\x16\x03\x01", 3);
	assert_int_equal(send(sv[0], "IK", 2, 0), 2);
	assert_true(tu_wait(sv[1], IKETCP_WANT_READ, 2000) > 0);
	assert_int_equal(iketcp_stream_peek(sv[1]), IKETCP_STREAM_RFC9329);
	assert_int_equal(recv(sv[1], buf, sizeof(buf), 0), 2);
	shutdown(sv[0], SHUT_WR);
	assert_true(tu_wait(sv[1], IKETCP_WANT_READ, 2000) > 0);
	assert_int_equal(iketcp_stream_peek(sv[1]), IKETCP_STREAM_EOF);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(iketcp_stream_peek(-1), IKETCP_E_IO);
}

/* Bytes read while sniffing come back first, then the socket's. */
static void
test_preread(void **state)
{
	int sv[2];
	struct iketcp_transport t;
	uint8_t buf[16];

	(void)state;
	tu_socketpair(sv);
	assert_int_equal(send(sv[0], "IKETCP\x00\x03\xff", 9, 0), 9);
	assert_int_equal(recv(sv[1], buf, 2, 0), 2); /* the caller sniffed "IK" */
	assert_int_equal(iketcp_stream_sniff(buf, 2), IKETCP_STREAM_RFC9329);
	assert_int_equal(iketcp_transport_tcp_init(&t, sv[1], 0), IKETCP_OK);
	assert_int_equal(iketcp_transport_preread(&t, buf, 2), IKETCP_OK);
	assert_int_equal(iketcp_transport_preread(&t, buf, 2), IKETCP_E_STATE);
	assert_int_equal(iketcp_transport_preread(&t, buf, 0), IKETCP_E_INVAL);
	assert_int_equal(iketcp_transport_read(&t, buf, 1), 1);
	assert_int_equal(buf[0], 'I');
	assert_int_equal(iketcp_transport_read(&t, buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'K');
	assert_int_equal(iketcp_transport_read(&t, buf, sizeof(buf)), 7);
	assert_memory_equal(buf, "ETCP\x00\x03\xff", 7);
	/* Pre-read bytes not yet taken are freed with the transport (ASan). */
	assert_int_equal(iketcp_transport_preread(&t, "abc", 3), IKETCP_OK);
	iketcp_transport_free(&t);
	close(sv[0]);
	close(sv[1]);
}

/* Non-blocking connect: the handshake waits for writability, then succeeds. */
static void
test_connect_handshake(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	struct iketcp_transport t;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	int fd, rc;

	(void)state;
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	assert_true(rc == 0 || errno == EINPROGRESS);
	assert_int_equal(iketcp_transport_tcp_init(&t, fd, IKETCP_TRANSPORT_CONNECTING), IKETCP_OK);
	assert_false(iketcp_transport_handshake_done(&t));
	uint8_t b;
	assert_int_equal(iketcp_transport_read(&t, &b, 1), IKETCP_E_STATE);
	for (int i = 0; i < 100; i++) {
		rc = iketcp_transport_handshake(&t);
		if (rc != IKETCP_E_AGAIN)
			break;
		assert_int_equal(iketcp_transport_interest(&t, 1, 1), IKETCP_WANT_WRITE);
		tu_wait(fd, iketcp_transport_want(&t), 1000);
	}
	assert_int_equal(rc, IKETCP_OK);
	assert_true(iketcp_transport_handshake_done(&t));
	iketcp_transport_free(&t);
	close(fd);

	/* Refused: the listener is gone. */
	close(l);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	assert_true(rc == 0 || errno == EINPROGRESS || errno == ECONNREFUSED);
	if (rc != 0 && errno == ECONNREFUSED) {
		close(fd);
		return; /* refused synchronously: nothing for the transport to see */
	}
	assert_int_equal(iketcp_transport_tcp_init(&t, fd, IKETCP_TRANSPORT_CONNECTING), IKETCP_OK);
	for (int i = 0; i < 100; i++) {
		rc = iketcp_transport_handshake(&t);
		if (rc != IKETCP_E_AGAIN)
			break;
		tu_wait(fd, iketcp_transport_want(&t), 1000);
	}
	assert_int_equal(rc, IKETCP_E_IO);
	assert_int_equal(errno, ECONNREFUSED);
	assert_true(tu_err_contains(&t, "connect: "));
	iketcp_transport_free(&t);
	close(fd);
}

/*
 * The send queue through the plain transport with 4 KiB socket buffers and
 * a reader that takes 1..13 bytes at a time: the deframer on the other side
 * sees every frame whole, each class in order.
 */
static void
test_sendq_over_tcp(void **state)
{
	int sv[2];
	struct iketcp_transport a, b;
	struct iketcp_sendq q;
	struct iketcp_deframer d;
	struct tu_rng rng;
	uint8_t frame[9000];
	uint32_t next_ike = 0, next_esp = 0, got_ike = 0, got_esp = 0;
	const uint32_t total = 300;

	(void)state;
	tu_rng_seed(&rng, 42);
	tu_socketpair(sv);
	tu_small_buffers(sv[0], 4096);
	tu_small_buffers(sv[1], 4096);
	assert_int_equal(iketcp_transport_tcp_init(&a, sv[0], 0), IKETCP_OK);
	assert_int_equal(iketcp_transport_tcp_init(&b, sv[1], 0), IKETCP_OK);
	assert_int_equal(iketcp_sendq_init(&q, &(struct iketcp_sendq_cfg){.budget = 1 << 20}),
			 IKETCP_OK);
	assert_int_equal(iketcp_deframer_init(&d, NULL), IKETCP_OK);

	while (got_ike + got_esp < total) {
		/* Push a few frames of random class and size. */
		for (int k = (int)tu_rng_below(&rng, 4);
		     k > 0 && next_ike + next_esp < total && iketcp_sendq_bytes(&q) < 65536; k--) {
			size_t len = (size_t)tu_rng_range(&rng, 40, sizeof(frame) - 8);
			if (tu_rng_below(&rng, 3) == 0) {
				tu_frame_ike(frame, len, 37, next_ike++);
				assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_IKE, frame,
								   len + 6, NULL, 0),
						 IKETCP_OK);
			} else {
				tu_frame_esp(frame, len, 0x1000, next_esp++);
				assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_ESP, frame,
								   len + 2, NULL, 0),
						 IKETCP_OK);
			}
		}
		int rc = iketcp_transport_send(&a, &q);
		assert_true(rc == IKETCP_OK || rc == IKETCP_E_AGAIN);
		/* Read a little. */
		uint8_t in[13];
		long r = iketcp_transport_read(&b, in, (size_t)tu_rng_range(&rng, 1, sizeof(in)));
		if (r == IKETCP_E_AGAIN)
			continue;
		assert_true(r > 0);
		struct iketcp_cur c;
		const uint8_t *fr;
		size_t flen;
		iketcp_cur_init(&c, in, (size_t)r);
		while ((rc = iketcp_deframer_next(&d, &c, &fr, &flen)) == 1) {
			struct iketcp_frame f;
			assert_int_equal(iketcp_frame_classify(fr, flen, &f), IKETCP_OK);
			if (f.kind == IKETCP_FRAME_IKE) {
				assert_int_equal(tu_get32(fr + 26), got_ike); /* message ID */
				tu_frame_ike(frame, flen - 6, 37, got_ike++);
			} else {
				assert_int_equal(f.kind, IKETCP_FRAME_ESP);
				assert_int_equal(tu_get32(fr + 6), got_esp); /* sequence */
				tu_frame_esp(frame, flen - 2, 0x1000, got_esp++);
			}
			assert_memory_equal(fr, frame, flen);
		}
		assert_int_equal(rc, 0);
	}
	assert_int_equal(got_ike, next_ike);
	assert_int_equal(got_esp, next_esp);
	assert_true(q.stats.partial_writes > 0);
	iketcp_deframer_free(&d);
	iketcp_sendq_free(&q);
	iketcp_transport_free(&a);
	iketcp_transport_free(&b);
	close(sv[0]);
	close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_read_write),  cmocka_unit_test(test_free_state),
		cmocka_unit_test(test_tcp_would_block), cmocka_unit_test(test_tcp_epipe),
		cmocka_unit_test(test_sniff),           cmocka_unit_test(test_peek),
		cmocka_unit_test(test_preread),         cmocka_unit_test(test_connect_handshake),
		cmocka_unit_test(test_sendq_over_tcp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
