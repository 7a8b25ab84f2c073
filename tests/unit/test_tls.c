/*
 * Unit tests for lib/tls.c with real OpenSSL over non-blocking socket
 * pairs, handshakes driven by polling on each side's `want` flags. The
 * certificates are made at test time (tlsutil.c): a test CA, a valid
 * server certificate, one for the wrong name, an expired one, one from an
 * untrusted CA, one for an IP address.
 *
 * Covered: TLS 1.3 and 1.2 handshakes and data both ways; verification
 * ok / wrong name / unknown CA / expired / system store, each with its
 * reason text; verification off; IP address names; SPKI pins (hex, base64,
 * mismatch, pin alone); resumption on the second connection (R75); the
 * NULL cipher only when both sides allow it (R72), and that it really is
 * plaintext on the wire; no CertificateRequest (R74); close_notify and a
 * bare FIN read as end of stream (A15); configuration errors; a context
 * dropped while connections use it (reload); pre-read bytes and peeking on
 * a port that serves both plain and TLS; a TLS client over a connect()
 * in progress; and the send queue flushed through TLS with tiny socket
 * buffers and a reader taking 1..7 bytes at a time, with IKE frames pushed
 * while OpenSSL holds a record to retry: every frame arrives whole, each
 * class in order.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, accept4 */
#endif
#include "testutil.h"
#include "tlsutil.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "iketcp/deframer.h"
#include "iketcp/frame.h"
#include "iketcp/sendq.h"
#include "iketcp/tls.h"

/* ---- fixtures ------------------------------------------------------------------ */

static int
group_setup(void **state)
{
	struct tu_pki *pki = tu_xmalloc(sizeof(*pki));
	tu_pki_make(pki);
	*state = pki;
	return 0;
}

static int
group_teardown(void **state)
{
	tu_pki_remove(*state);
	free(*state);
	return 0;
}

static struct iketcp_tls_ctx *
server_ctx_ex(const char *cert, const char *key, const struct iketcp_tls_common_cfg *tls)
{
	struct iketcp_tls_server_cfg cfg = {.cert_file = cert, .key_file = key};
	struct iketcp_tls_ctx *ctx = NULL;
	char err[256];

	if (tls)
		cfg.tls = *tls;
	int rc = iketcp_tls_server_ctx_new(&cfg, &ctx, err, sizeof(err));
	if (rc != IKETCP_OK)
		fail_msg("server ctx: %s: %s", iketcp_errname(rc), err);
	return ctx;
}

static struct iketcp_tls_ctx *
server_ctx(const struct tu_pki *pki)
{
	return server_ctx_ex(pki->srv_cert, pki->srv_key, NULL);
}

/* A client context trusting the test CA, for TU_SERVER_NAME unless cfg says otherwise. */
static struct iketcp_tls_ctx *
client_ctx_ex(const struct tu_pki *pki, struct iketcp_tls_client_cfg cfg)
{
	struct iketcp_tls_ctx *ctx = NULL;
	char err[256];

	if (!cfg.server_name)
		cfg.server_name = TU_SERVER_NAME;
	if (!cfg.ca_file && !cfg.no_verify)
		cfg.ca_file = pki->ca;
	int rc = iketcp_tls_client_ctx_new(&cfg, &ctx, err, sizeof(err));
	if (rc != IKETCP_OK)
		fail_msg("client ctx: %s: %s", iketcp_errname(rc), err);
	return ctx;
}

static struct iketcp_tls_ctx *
client_ctx(const struct tu_pki *pki)
{
	return client_ctx_ex(pki, (struct iketcp_tls_client_cfg){0});
}

struct pair {
	int sv[2]; /* [0] client, [1] server */
	struct iketcp_transport cli, srv;
	int rc_cli, rc_srv;
};

static void
pair_init(struct pair *p, struct iketcp_tls_ctx *sctx, struct iketcp_tls_ctx *cctx)
{
	memset(p, 0, sizeof(*p));
	tu_socketpair(p->sv);
	assert_int_equal(iketcp_tls_server_init(&p->srv, sctx, p->sv[1]), IKETCP_OK);
	assert_int_equal(iketcp_tls_client_init(&p->cli, cctx, p->sv[0], 0), IKETCP_OK);
	assert_string_equal(iketcp_transport_name(&p->cli), "tls");
}

static void
pair_connect(struct pair *p, struct iketcp_tls_ctx *sctx, struct iketcp_tls_ctx *cctx)
{
	pair_init(p, sctx, cctx);
	tu_handshake_pair(&p->cli, &p->srv, &p->rc_cli, &p->rc_srv);
}

static void
pair_close(struct pair *p)
{
	iketcp_transport_free(&p->cli);
	iketcp_transport_free(&p->srv);
	close(p->sv[0]);
	close(p->sv[1]);
}

static void
expect_ok(struct pair *p)
{
	if (p->rc_cli != IKETCP_OK || p->rc_srv != IKETCP_OK) {
		char a[256], b[256];
		iketcp_transport_last_error(&p->cli, a, sizeof(a));
		iketcp_transport_last_error(&p->srv, b, sizeof(b));
		fail_msg("handshake: client %s (%s), server %s (%s)", iketcp_errname(p->rc_cli), a,
			 iketcp_errname(p->rc_srv), b);
	}
}

/* IKETCP prefix and one IKE frame client -> server, one frame back. */
static void
exchange(struct pair *p)
{
	uint8_t buf[6 + 200];

	memcpy(buf, IKETCP_PREFIX, 6);
	tu_frame_ike(buf + 6, 194, 34, 0);
	tu_transfer(&p->cli, &p->srv, buf, sizeof(buf));
	tu_frame_ike(buf, 194, 34, 0);
	buf[6 + 19] |= 0x20; /* the response flag */
	tu_transfer(&p->srv, &p->cli, buf, 200);
}

/* ---- handshakes --------------------------------------------------------------------- */

static void
test_tls13_handshake(void **state)
{
	struct tu_pki *pki = *state;
	struct iketcp_tls_ctx *s = server_ctx(pki), *c = client_ctx(pki);
	struct pair p;
	uint8_t b;

	pair_connect(&p, s, c);
	expect_ok(&p);
	assert_string_equal(iketcp_tls_version(&p.cli), "TLSv1.3");
	assert_string_equal(iketcp_tls_version(&p.srv), "TLSv1.3");
	assert_true(strncmp(iketcp_tls_cipher(&p.cli), "TLS_", 4) == 0);
	assert_false(iketcp_tls_resumed(&p.cli));
	assert_int_equal(iketcp_transport_handshake(&p.cli), IKETCP_OK); /* again: still OK */
	exchange(&p);
	/* close_notify (A15): the peer reads end of stream, no error. */
	int rc;
	while ((rc = iketcp_transport_shutdown(&p.cli)) == IKETCP_E_AGAIN)
		tu_wait(p.sv[0], iketcp_transport_want(&p.cli), 1000);
	assert_int_equal(rc, IKETCP_OK);
	long r;
	while ((r = iketcp_transport_read(&p.srv, &b, 1)) == IKETCP_E_AGAIN)
		assert_true(tu_wait(p.sv[1], iketcp_transport_want(&p.srv), 2000) > 0);
	assert_int_equal(r, 0);
	pair_close(&p);
	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
}

static void
test_tls12_handshake(void **state)
{
	struct tu_pki *pki = *state;
	struct iketcp_tls_ctx *s = server_ctx(pki);
	struct iketcp_tls_ctx *c = client_ctx_ex(
		pki, (struct iketcp_tls_client_cfg){.tls.max_version = IKETCP_TLS_1_2});
	struct pair p;

	pair_connect(&p, s, c);
	expect_ok(&p);
	assert_string_equal(iketcp_tls_version(&p.cli), "TLSv1.2");
	/* RFC 9325 default list, server preference: ECDHE + AES-GCM. */
	assert_string_equal(iketcp_tls_cipher(&p.cli), "ECDHE-ECDSA-AES128-GCM-SHA256");
	exchange(&p);
	/* A FIN without close_notify also reads as end of stream. */
	shutdown(p.sv[1], SHUT_WR);
	uint8_t b;
	long r;
	while ((r = iketcp_transport_read(&p.cli, &b, 1)) == IKETCP_E_AGAIN)
		assert_true(tu_wait(p.sv[0], iketcp_transport_want(&p.cli), 2000) > 0);
	assert_int_equal(r, 0);
	pair_close(&p);
	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
}

static void
test_version_mismatch(void **state)
{
	struct tu_pki *pki = *state;
	struct iketcp_tls_common_cfg v13 = {.min_version = IKETCP_TLS_1_3};
	struct iketcp_tls_ctx *s = server_ctx_ex(pki->srv_cert, pki->srv_key, &v13);
	struct iketcp_tls_ctx *c = client_ctx_ex(
		pki, (struct iketcp_tls_client_cfg){.tls.max_version = IKETCP_TLS_1_2});
	struct pair p;

	pair_connect(&p, s, c);
	assert_int_equal(p.rc_srv, IKETCP_E_TLS);
	assert_int_equal(p.rc_cli, IKETCP_E_TLS);
	assert_true(tu_err_contains(&p.srv, "unsupported protocol"));
	assert_true(tu_err_contains(&p.cli, "protocol version"));
	/* A failed transport refuses further use. */
	uint8_t b;
	assert_int_equal(iketcp_transport_read(&p.cli, &b, 1), IKETCP_E_STATE);
	assert_int_equal(iketcp_transport_handshake(&p.cli), IKETCP_E_STATE);
	pair_close(&p);
	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
}

/* ---- verification ------------------------------------------------------------------- */

static void
expect_verify_failure(const struct tu_pki *pki, const char *cert, const char *key,
		      struct iketcp_tls_client_cfg ccfg, const char *reason)
{
	struct iketcp_tls_ctx *s = server_ctx_ex(cert, key, NULL);
	struct iketcp_tls_ctx *c = client_ctx_ex(pki, ccfg);
	struct pair p;

	pair_connect(&p, s, c);
	assert_int_equal(p.rc_cli, IKETCP_E_TLS_VERIFY);
	assert_true(tu_err_contains(&p.cli, "certificate verify failed: "));
	assert_true(tu_err_contains(&p.cli, reason));
	assert_int_not_equal(p.rc_srv, IKETCP_OK); /* the client's alert */
	assert_false(iketcp_tls_ctx_has_session(c));
	pair_close(&p);
	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
}

static void
test_verify_wrong_name(void **state)
{
	struct tu_pki *pki = *state;
	expect_verify_failure(pki, pki->wrong_cert, pki->wrong_key,
			      (struct iketcp_tls_client_cfg){0}, "hostname mismatch");
	expect_verify_failure(pki, pki->wrong_cert, pki->wrong_key,
			      (struct iketcp_tls_client_cfg){0}, "expected " TU_SERVER_NAME);
	/* The name is checked against the certificate, not just any name of the CA. */
	expect_verify_failure(pki, pki->srv_cert, pki->srv_key,
			      (struct iketcp_tls_client_cfg){.server_name = "x.server.test"},
			      "hostname mismatch");
}

static void
test_verify_unknown_ca(void **state)
{
	struct tu_pki *pki = *state;
	expect_verify_failure(pki, pki->unknown_cert, pki->unknown_key,
			      (struct iketcp_tls_client_cfg){0},
			      "unable to get local issuer certificate");
}

static void
test_verify_expired(void **state)
{
	struct tu_pki *pki = *state;
	expect_verify_failure(pki, pki->expired_cert, pki->expired_key,
			      (struct iketcp_tls_client_cfg){0}, "certificate has expired");
}

/* Verification is on by default: the system store does not know the test CA. */
static void
test_verify_system_store(void **state)
{
	struct tu_pki *pki = *state;
	struct iketcp_tls_client_cfg cfg = {.server_name = TU_SERVER_NAME};
	struct iketcp_tls_ctx *c = NULL;
	struct iketcp_tls_ctx *s = server_ctx(pki);
	struct pair p;
	char err[256];

	assert_int_equal(iketcp_tls_client_ctx_new(&cfg, &c, err, sizeof(err)), IKETCP_OK);
	pair_connect(&p, s, c);
	assert_int_equal(p.rc_cli, IKETCP_E_TLS_VERIFY);
	assert_true(tu_err_contains(&p.cli, "unable to get local issuer certificate"));
	pair_close(&p);
	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
}

/* The explicit off switch: a wrong name and an untrusted CA pass. */
static void
test_verify_off(void **state)
{
	struct tu_pki *pki = *state;
	const char *certs[][2] = {{pki->wrong_cert, pki->wrong_key},
				  {pki->unknown_cert, pki->unknown_key},
				  {pki->expired_cert, pki->expired_key}};

	for (size_t i = 0; i < TU_ARRAY_LEN(certs); i++) {
		struct iketcp_tls_ctx *s = server_ctx_ex(certs[i][0], certs[i][1], NULL);
		struct iketcp_tls_ctx *c =
			client_ctx_ex(pki, (struct iketcp_tls_client_cfg){.no_verify = 1});
		struct pair p;
		pair_connect(&p, s, c);
		expect_ok(&p);
		exchange(&p);
		pair_close(&p);
		iketcp_tls_ctx_unref(s);
		iketcp_tls_ctx_unref(c);
	}
}

static void
test_verify_ip_name(void **state)
{
	struct tu_pki *pki = *state;
	struct iketcp_tls_ctx *s = server_ctx_ex(pki->ip_cert, pki->ip_key, NULL);
	struct iketcp_tls_ctx *c =
		client_ctx_ex(pki, (struct iketcp_tls_client_cfg){.server_name = "127.0.0.1"});
	struct pair p;

	pair_connect(&p, s, c);
	expect_ok(&p);
	pair_close(&p);
	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
	expect_verify_failure(pki, pki->srv_cert, pki->srv_key,
			      (struct iketcp_tls_client_cfg){.server_name = "127.0.0.1"},
			      "IP address mismatch");
}

/* ---- pins ------------------------------------------------------------------------- */

static void
hex_to_b64(const char *hex, char out[45])
{
	uint8_t raw[32];
	assert_int_equal(tu_hex_decode(hex, raw, sizeof(raw)), 32);
	assert_int_equal(EVP_EncodeBlock((unsigned char *)out, raw, 32), 44);
}

static int
pinned_handshake(const struct tu_pki *pki, const char *cert, const char *key, const char *pin,
		 int no_verify, struct pair *p)
{
	struct iketcp_tls_ctx *s = server_ctx_ex(cert, key, NULL);
	struct iketcp_tls_ctx *c = client_ctx_ex(
		pki, (struct iketcp_tls_client_cfg){.pin_sha256 = pin, .no_verify = no_verify});
	pair_connect(p, s, c);
	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
	return p->rc_cli;
}

static void
test_pin(void **state)
{
	struct tu_pki *pki = *state;
	char hex[65], whex[65], b64[45], colons[100], curl[60];
	struct pair p;

	assert_int_equal(iketcp_tls_pin_of_cert_file(pki->srv_cert, hex), IKETCP_OK);
	assert_int_equal(iketcp_tls_pin_of_cert_file(pki->wrong_cert, whex), IKETCP_OK);
	assert_int_equal(strlen(hex), 64);
	assert_string_not_equal(hex, whex);
	hex_to_b64(hex, b64);
	snprintf(curl, sizeof(curl), "sha256//%s", b64);
	/* "AB:CD:..." as openssl x509 -fingerprint prints hashes. */
	size_t k = 0;
	for (int i = 0; i < 64; i += 2) {
		colons[k++] = (char)toupper((unsigned char)hex[i]);
		colons[k++] = (char)toupper((unsigned char)hex[i + 1]);
		if (i < 62)
			colons[k++] = ':';
	}
	colons[k] = '\0';

	const char *good[] = {hex, b64, curl, colons};
	for (size_t i = 0; i < TU_ARRAY_LEN(good); i++) {
		assert_int_equal(pinned_handshake(pki, pki->srv_cert, pki->srv_key, good[i], 0, &p),
				 IKETCP_OK);
		expect_ok(&p);
		pair_close(&p);
	}
	/* Mismatch, with a valid chain: refused, and the text has the real hash. */
	assert_int_equal(pinned_handshake(pki, pki->srv_cert, pki->srv_key, whex, 0, &p),
			 IKETCP_E_TLS_PIN);
	assert_true(tu_err_contains(&p.cli, "public key pin mismatch"));
	assert_true(tu_err_contains(&p.cli, hex));
	pair_close(&p);
	/* Pin alone (verification off) accepts a certificate the CA check refuses... */
	assert_int_equal(pinned_handshake(pki, pki->wrong_cert, pki->wrong_key, whex, 1, &p),
			 IKETCP_OK);
	pair_close(&p);
	/* ...and still refuses another key. */
	assert_int_equal(pinned_handshake(pki, pki->unknown_cert, pki->unknown_key, whex, 1, &p),
			 IKETCP_E_TLS_PIN);
	pair_close(&p);
}

static void
test_config_errors(void **state)
{
	struct tu_pki *pki = *state;
	struct iketcp_tls_ctx *ctx = NULL;
	char err[256];

	struct iketcp_tls_server_cfg s = {.cert_file = "/nonexistent/cert.pem",
					  .key_file = pki->srv_key};
	assert_int_equal(iketcp_tls_server_ctx_new(&s, &ctx, err, sizeof(err)),
			 IKETCP_E_TLS_CONFIG);
	assert_non_null(strstr(err, "/nonexistent/cert.pem"));
	assert_non_null(strstr(err, "No such file"));
	s = (struct iketcp_tls_server_cfg){.cert_file = pki->srv_cert, .key_file = pki->wrong_key};
	assert_int_equal(iketcp_tls_server_ctx_new(&s, &ctx, err, sizeof(err)),
			 IKETCP_E_TLS_CONFIG);
	assert_non_null(strstr(err, "key_file"));
	assert_non_null(strstr(err, "mismatch"));
	s = (struct iketcp_tls_server_cfg){.cert_file = pki->srv_key, .key_file = pki->srv_key};
	assert_int_equal(iketcp_tls_server_ctx_new(&s, &ctx, err, sizeof(err)),
			 IKETCP_E_TLS_CONFIG);
	assert_non_null(strstr(err, "cert_file"));
	s = (struct iketcp_tls_server_cfg){.cert_file = pki->srv_cert,
					   .key_file = pki->srv_key,
					   .tls.ciphers = "NO-SUCH-CIPHER"};
	assert_int_equal(iketcp_tls_server_ctx_new(&s, &ctx, err, sizeof(err)),
			 IKETCP_E_TLS_CONFIG);
	assert_non_null(strstr(err, "cipher list"));
	s.tls = (struct iketcp_tls_common_cfg){.groups = "no-such-group"};
	assert_int_equal(iketcp_tls_server_ctx_new(&s, &ctx, err, sizeof(err)),
			 IKETCP_E_TLS_CONFIG);
	assert_non_null(strstr(err, "groups"));
	s.tls = (struct iketcp_tls_common_cfg){.min_version = 0x0301};
	assert_int_equal(iketcp_tls_server_ctx_new(&s, &ctx, err, sizeof(err)),
			 IKETCP_E_TLS_CONFIG);
	s.tls = (struct iketcp_tls_common_cfg){.min_version = IKETCP_TLS_1_3,
					       .max_version = IKETCP_TLS_1_2};
	assert_int_equal(iketcp_tls_server_ctx_new(&s, &ctx, err, sizeof(err)),
			 IKETCP_E_TLS_CONFIG);
	s = (struct iketcp_tls_server_cfg){0};
	assert_int_equal(iketcp_tls_server_ctx_new(&s, &ctx, err, sizeof(err)), IKETCP_E_INVAL);

	struct iketcp_tls_client_cfg c = {0};
	assert_int_equal(iketcp_tls_client_ctx_new(&c, &ctx, err, sizeof(err)), IKETCP_E_INVAL);
	assert_non_null(strstr(err, "server_name"));
	const char *bad_pins[] = {
		"abc",
		"zz",
		"sha256//",
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddee",
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00",
		"!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=",
	};
	for (size_t i = 0; i < TU_ARRAY_LEN(bad_pins); i++) {
		c = (struct iketcp_tls_client_cfg){.server_name = "x", .pin_sha256 = bad_pins[i]};
		assert_int_equal(iketcp_tls_client_ctx_new(&c, &ctx, err, sizeof(err)),
				 IKETCP_E_TLS_CONFIG);
		assert_non_null(strstr(err, "pin_sha256"));
	}
	c = (struct iketcp_tls_client_cfg){.server_name = "x", .ca_file = "/nonexistent/ca"};
	assert_int_equal(iketcp_tls_client_ctx_new(&c, &ctx, err, sizeof(err)),
			 IKETCP_E_TLS_CONFIG);
	assert_non_null(strstr(err, "/nonexistent/ca"));
	c = (struct iketcp_tls_client_cfg){
		.server_name = "x", .tls = {.allow_null_cipher = 1, .min_version = IKETCP_TLS_1_3}};
	assert_int_equal(iketcp_tls_client_ctx_new(&c, &ctx, err, sizeof(err)),
			 IKETCP_E_TLS_CONFIG);
	assert_non_null(strstr(err, "TLS 1.2"));
	assert_null(ctx);
	assert_int_equal(iketcp_tls_pin_of_cert_file("/nonexistent", err), IKETCP_E_TLS_CONFIG);

	/* A context of the wrong side is refused by init. */
	struct iketcp_transport t;
	struct iketcp_tls_ctx *cc = client_ctx(pki), *sc = server_ctx(pki);
	assert_int_equal(iketcp_tls_server_init(&t, cc, 0), IKETCP_E_INVAL);
	assert_int_equal(iketcp_tls_client_init(&t, sc, 0, 0), IKETCP_E_INVAL);
	assert_int_equal(iketcp_tls_client_init(&t, cc, -1, 0), IKETCP_E_INVAL);
	iketcp_tls_ctx_unref(cc);
	iketcp_tls_ctx_unref(sc);
	iketcp_tls_ctx_unref(NULL);
}

/* ---- resumption (R75) ------------------------------------------------------------------ */

static void
run_resumption(const struct tu_pki *pki, int max_version, int pinned)
{
	char hex[65];
	struct iketcp_tls_ctx *s = server_ctx(pki);
	assert_int_equal(iketcp_tls_pin_of_cert_file(pki->srv_cert, hex), IKETCP_OK);
	struct iketcp_tls_ctx *c = client_ctx_ex(
		pki, (struct iketcp_tls_client_cfg){.tls.max_version = max_version,
						    .pin_sha256 = pinned ? hex : NULL});
	struct pair p;

	assert_false(iketcp_tls_ctx_has_session(c));
	pair_connect(&p, s, c);
	expect_ok(&p);
	assert_false(iketcp_tls_resumed(&p.cli));
	exchange(&p); /* TLS 1.3 tickets are read with the first server data */
	assert_true(iketcp_tls_ctx_has_session(c));
	pair_close(&p);

	pair_connect(&p, s, c);
	expect_ok(&p);
	assert_true(iketcp_tls_resumed(&p.cli));
	assert_true(iketcp_tls_resumed(&p.srv));
	exchange(&p);
	pair_close(&p);

	/* Forgotten: a full handshake again. */
	iketcp_tls_ctx_forget_session(c);
	assert_false(iketcp_tls_ctx_has_session(c));
	pair_connect(&p, s, c);
	expect_ok(&p);
	assert_false(iketcp_tls_resumed(&p.cli));
	pair_close(&p);
	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
}

static void
test_resumption_tls13(void **state)
{
	run_resumption(*state, 0, 0);
	run_resumption(*state, 0, 1);
}

static void
test_resumption_tls12(void **state)
{
	run_resumption(*state, IKETCP_TLS_1_2, 0);
	run_resumption(*state, IKETCP_TLS_1_2, 1);
}

static void
test_resumption_off(void **state)
{
	struct tu_pki *pki = *state;
	struct iketcp_tls_ctx *s = server_ctx(pki);
	struct iketcp_tls_ctx *c =
		client_ctx_ex(pki, (struct iketcp_tls_client_cfg){.no_resume = 1});
	struct pair p;

	for (int i = 0; i < 2; i++) {
		pair_connect(&p, s, c);
		expect_ok(&p);
		exchange(&p);
		assert_false(iketcp_tls_resumed(&p.cli));
		assert_false(iketcp_tls_ctx_has_session(c));
		pair_close(&p);
	}
	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
}

/* A session from a pin-refused connection is never offered again. */
static void
test_resumption_not_after_pin_failure(void **state)
{
	struct tu_pki *pki = *state;
	char whex[65];
	struct iketcp_tls_ctx *s = server_ctx(pki);
	assert_int_equal(iketcp_tls_pin_of_cert_file(pki->wrong_cert, whex), IKETCP_OK);
	struct iketcp_tls_ctx *c =
		client_ctx_ex(pki, (struct iketcp_tls_client_cfg){.tls.max_version = IKETCP_TLS_1_2,
								  .pin_sha256 = whex});
	struct pair p;

	pair_connect(&p, s, c);
	assert_int_equal(p.rc_cli, IKETCP_E_TLS_PIN);
	assert_false(iketcp_tls_ctx_has_session(c));
	pair_close(&p);
	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
}

/* ---- NULL cipher (R72) -------------------------------------------------------------------- */

static void
null_case(const struct tu_pki *pki, int cli_null, int srv_null, const char *version,
	  int expect_null)
{
	struct iketcp_tls_common_cfg st = {.allow_null_cipher = srv_null};
	struct iketcp_tls_ctx *s = server_ctx_ex(pki->srv_cert, pki->srv_key, &st);
	struct iketcp_tls_ctx *c = client_ctx_ex(
		pki, (struct iketcp_tls_client_cfg){.tls.allow_null_cipher = cli_null});
	struct pair p;
	static const char marker[] = "IKETCP-plaintext-marker";

	pair_connect(&p, s, c);
	expect_ok(&p);
	assert_string_equal(iketcp_tls_version(&p.cli), version);
	const char *cipher = iketcp_tls_cipher(&p.cli);
	if ((strstr(cipher, "NULL") != NULL) != expect_null)
		fail_msg("client %d server %d: cipher %s", cli_null, srv_null, cipher);
	/* Read the raw record off the server's socket: plaintext only with NULL. */
	struct iovec iov = {(void *)(uintptr_t)marker, sizeof(marker) - 1};
	long w;
	while ((w = iketcp_transport_writev(&p.cli, &iov, 1)) == IKETCP_E_AGAIN)
		tu_wait(p.sv[0], iketcp_transport_want(&p.cli), 1000);
	assert_int_equal(w, (long)sizeof(marker) - 1);
	uint8_t raw[512];
	ssize_t n = 0;
	while (n < (ssize_t)sizeof(marker)) {
		assert_true(tu_wait(p.sv[1], IKETCP_WANT_READ, 2000) > 0);
		ssize_t r = recv(p.sv[1], raw + n, sizeof(raw) - (size_t)n, 0);
		assert_true(r > 0);
		n += r;
	}
	int seen = memmem(raw, (size_t)n, marker, sizeof(marker) - 1) != NULL;
	assert_int_equal(seen, expect_null);
	pair_close(&p);
	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
}

static void
test_null_cipher(void **state)
{
	struct tu_pki *pki = *state;
	null_case(pki, 1, 1, "TLSv1.2", 1);
	null_case(pki, 1, 0, "TLSv1.2", 0); /* the server does not allow it */
	null_case(pki, 0, 1, "TLSv1.3", 0); /* the client does not ask for it */
	null_case(pki, 0, 0, "TLSv1.3", 0);
}

/* ---- R74: no CertificateRequest ----------------------------------------------------------- */

struct msg_seen {
	int cert_request;
	int certificate;
};

static void
msg_cb(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl, void *arg)
{
	struct msg_seen *m = arg;
	(void)version;
	(void)ssl;
	if (write_p || content_type != SSL3_RT_HANDSHAKE || len < 1)
		return;
	uint8_t type = ((const uint8_t *)buf)[0];
	if (type == SSL3_MT_CERTIFICATE_REQUEST)
		m->cert_request++;
	if (type == SSL3_MT_CERTIFICATE)
		m->certificate++;
}

static void
test_no_certificate_request(void **state)
{
	struct tu_pki *pki = *state;
	int versions[] = {0, IKETCP_TLS_1_2};

	for (size_t i = 0; i < TU_ARRAY_LEN(versions); i++) {
		struct iketcp_tls_ctx *s = server_ctx(pki);
		struct iketcp_tls_ctx *c = client_ctx_ex(
			pki, (struct iketcp_tls_client_cfg){.tls.max_version = versions[i]});
		struct pair p;
		struct msg_seen m = {0};
		pair_init(&p, s, c);
		SSL *ssl = iketcp_tls_ssl(&p.cli);
		assert_non_null(ssl);
		SSL_set_msg_callback(ssl, msg_cb);
		SSL_set_msg_callback_arg(ssl, &m);
		tu_handshake_pair(&p.cli, &p.srv, &p.rc_cli, &p.rc_srv);
		expect_ok(&p);
		assert_int_equal(m.certificate, 1); /* the callback does see the handshake */
		assert_int_equal(m.cert_request, 0);
		pair_close(&p);
		iketcp_tls_ctx_unref(s);
		iketcp_tls_ctx_unref(c);
	}
}

/* ---- contexts, ports, sockets --------------------------------------------------------------- */

/* Reload: the old context is dropped while a connection uses it. */
static void
test_ctx_swap_keeps_connections(void **state)
{
	struct tu_pki *pki = *state;
	struct iketcp_tls_ctx *active = server_ctx(pki);
	struct iketcp_tls_ctx *c = client_ctx(pki);
	struct pair old, fresh;

	pair_connect(&old, active, c);
	expect_ok(&old);
	/* "SIGHUP": build the new one, swap, drop ours of the old. */
	struct iketcp_tls_ctx *next = server_ctx(pki);
	struct iketcp_tls_ctx *prev = active;
	active = next;
	iketcp_tls_ctx_unref(prev);
	exchange(&old); /* the old connection still works on the old context */
	pair_connect(&fresh, active, c);
	expect_ok(&fresh);
	exchange(&fresh);
	pair_close(&old); /* frees the old context (ASan checks) */
	exchange(&fresh);
	pair_close(&fresh);
	assert_ptr_equal(iketcp_tls_ctx_ref(active), active);
	iketcp_tls_ctx_unref(active);
	iketcp_tls_ctx_unref(active);
	iketcp_tls_ctx_unref(c);
}

/*
 * One port for both: the server reads the first byte itself, sees 0x16,
 * and hands that byte to the TLS transport. Plain RFC 9329 on the same
 * listener is told apart by its 'I'.
 */
static void
test_sniff_then_tls(void **state)
{
	struct tu_pki *pki = *state;
	struct iketcp_tls_ctx *s = server_ctx(pki), *c = client_ctx(pki);
	struct pair p;
	uint8_t first;
	int rc;

	memset(&p, 0, sizeof(p));
	tu_socketpair(p.sv);
	assert_int_equal(iketcp_tls_client_init(&p.cli, c, p.sv[0], 0), IKETCP_OK);
	assert_int_equal(iketcp_transport_handshake(&p.cli), IKETCP_E_AGAIN); /* ClientHello */
	assert_int_equal(iketcp_transport_want(&p.cli), IKETCP_WANT_READ);
	assert_int_equal(iketcp_transport_interest(&p.cli, 1, 1), IKETCP_WANT_READ);
	assert_int_equal(iketcp_stream_peek(p.sv[1]), IKETCP_STREAM_TLS);
	assert_int_equal(recv(p.sv[1], &first, 1, 0), 1);
	assert_int_equal(iketcp_stream_sniff(&first, 1), IKETCP_STREAM_TLS);
	assert_int_equal(iketcp_tls_server_init(&p.srv, s, p.sv[1]), IKETCP_OK);
	assert_int_equal(iketcp_transport_preread(&p.srv, &first, 1), IKETCP_OK);
	tu_handshake_pair(&p.cli, &p.srv, &p.rc_cli, &p.rc_srv);
	expect_ok(&p);
	exchange(&p);
	pair_close(&p);

	/* Plain RFC 9329 bytes to a TLS server: a clean TLS error, with a reason. */
	memset(&p, 0, sizeof(p));
	tu_socketpair(p.sv);
	assert_int_equal(send(p.sv[0], "IKETCP\x00\x03\xff", 9, 0), 9);
	assert_int_equal(iketcp_stream_peek(p.sv[1]), IKETCP_STREAM_RFC9329);
	assert_int_equal(iketcp_tls_server_init(&p.srv, s, p.sv[1]), IKETCP_OK);
	while ((rc = iketcp_transport_handshake(&p.srv)) == IKETCP_E_AGAIN)
		assert_true(tu_wait(p.sv[1], iketcp_transport_want(&p.srv), 2000) > 0);
	assert_int_equal(rc, IKETCP_E_TLS);
	assert_true(iketcp_transport_last_error(&p.srv, NULL, 0) > 0);
	assert_true(tu_err_contains(&p.srv, "TLS handshake: "));
	iketcp_transport_free(&p.srv);
	close(p.sv[0]);
	close(p.sv[1]);

	/* The client goes away mid-handshake. */
	memset(&p, 0, sizeof(p));
	tu_socketpair(p.sv);
	assert_int_equal(iketcp_tls_client_init(&p.cli, c, p.sv[0], 0), IKETCP_OK);
	assert_int_equal(iketcp_transport_handshake(&p.cli), IKETCP_E_AGAIN);
	iketcp_transport_free(&p.cli);
	close(p.sv[0]);
	assert_int_equal(iketcp_tls_server_init(&p.srv, s, p.sv[1]), IKETCP_OK);
	while ((rc = iketcp_transport_handshake(&p.srv)) == IKETCP_E_AGAIN)
		assert_true(tu_wait(p.sv[1], iketcp_transport_want(&p.srv), 2000) > 0);
	assert_true(rc == IKETCP_E_TLS || rc == IKETCP_E_IO);
	assert_true(iketcp_transport_last_error(&p.srv, NULL, 0) > 0);
	iketcp_transport_free(&p.srv);
	close(p.sv[1]);

	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
}

/* A TLS client over a loopback TCP connect() still in progress. */
static void
test_tls_over_connecting_tcp(void **state)
{
	struct tu_pki *pki = *state;
	struct iketcp_tls_ctx *s = server_ctx(pki), *c = client_ctx(pki);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	struct pair p;
	int l = socket(AF_INET, SOCK_STREAM, 0);

	memset(&p, 0, sizeof(p));
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
	p.sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int rc = connect(p.sv[0], (struct sockaddr *)&a, sizeof(a));
	assert_true(rc == 0 || errno == EINPROGRESS);
	assert_int_equal(iketcp_tls_client_init(&p.cli, c, p.sv[0], IKETCP_TRANSPORT_CONNECTING),
			 IKETCP_OK);
	p.sv[1] = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	assert_true(p.sv[1] >= 0);
	close(l);
	assert_int_equal(iketcp_tls_server_init(&p.srv, s, p.sv[1]), IKETCP_OK);
	tu_handshake_pair(&p.cli, &p.srv, &p.rc_cli, &p.rc_srv);
	expect_ok(&p);
	exchange(&p);
	pair_close(&p);
	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
}

static void
test_queries_on_plain(void **state)
{
	struct iketcp_transport t;

	(void)state;
	assert_int_equal(iketcp_transport_tcp_init(&t, 0, 0), IKETCP_OK);
	assert_false(iketcp_tls_resumed(&t));
	assert_string_equal(iketcp_tls_version(&t), "");
	assert_string_equal(iketcp_tls_cipher(&t), "");
	assert_null(iketcp_tls_ssl(&t));
	assert_false(iketcp_tls_resumed(NULL));
	assert_false(iketcp_tls_ctx_has_session(NULL));
	iketcp_tls_ctx_forget_session(NULL);
	iketcp_transport_free(&t);
}

/* Memory: the record buffer of an idle connection goes at the second trim,
 * a busy one keeps it, and what a trim leaves still works. */
static void
test_trim_record_buffer(void **state)
{
	struct tu_pki *pki = *state;
	struct iketcp_tls_ctx *s = server_ctx(pki), *c = client_ctx(pki);
	struct pair p;

	pair_connect(&p, s, c);
	expect_ok(&p);
	assert_int_equal(iketcp_tls_buffered(&p.cli), 0); /* nothing written yet */
	exchange(&p);
	assert_int_equal(iketcp_tls_buffered(&p.cli), 16384);
	iketcp_tls_trim(&p.cli); /* written since the last trim: kept */
	assert_int_equal(iketcp_tls_buffered(&p.cli), 16384);
	iketcp_tls_trim(&p.cli); /* idle since: freed */
	assert_int_equal(iketcp_tls_buffered(&p.cli), 0);
	exchange(&p); /* and allocated again when needed */
	assert_int_equal(iketcp_tls_buffered(&p.cli), 16384);
	iketcp_tls_trim(&p.srv);
	iketcp_tls_trim(&p.srv);
	assert_int_equal(iketcp_tls_buffered(&p.srv), 0);
	exchange(&p);
	/* plain TCP: nothing to trim */
	struct iketcp_transport t;
	assert_int_equal(iketcp_transport_tcp_init(&t, 0, 0), IKETCP_OK);
	iketcp_tls_trim(&t);
	assert_int_equal(iketcp_tls_buffered(&t), 0);
	iketcp_transport_free(&t);
	pair_close(&p);
	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
}

/* ---- the send queue through TLS ------------------------------------------------------------ */

struct rx {
	struct iketcp_deframer d;
	uint32_t got[IKETCP_NCLASS];
};

static void
rx_bytes(struct rx *x, const uint8_t *in, size_t n, uint8_t *scratch)
{
	struct iketcp_cur c;
	const uint8_t *fr;
	size_t flen;
	int rc;

	iketcp_cur_init(&c, in, n);
	while ((rc = iketcp_deframer_next(&x->d, &c, &fr, &flen)) == 1) {
		struct iketcp_frame f;
		assert_int_equal(iketcp_frame_classify(fr, flen, &f), IKETCP_OK);
		if (f.kind == IKETCP_FRAME_IKE) {
			assert_int_equal(tu_get32(fr + 26), x->got[IKETCP_CLASS_IKE]);
			tu_frame_ike(scratch, flen - 6, 37, x->got[IKETCP_CLASS_IKE]++);
		} else {
			assert_int_equal(f.kind, IKETCP_FRAME_ESP);
			assert_int_equal(tu_get32(fr + 6), x->got[IKETCP_CLASS_ESP]);
			tu_frame_esp(scratch, flen - 2, 0x2000, x->got[IKETCP_CLASS_ESP]++);
		}
		assert_memory_equal(fr, scratch, flen);
	}
	assert_int_equal(rc, 0);
}

static size_t
frame_size(struct tu_rng *rng)
{
	switch (tu_rng_below(rng, 3)) {
	case 0:
		return (size_t)tu_rng_range(rng, 40, 200);
	case 1:
		return (size_t)tu_rng_range(rng, 1000, 6000);
	default:
		return (size_t)tu_rng_range(rng, 15000, 40000); /* spans TLS records */
	}
}

static void
run_sendq_tls(const struct tu_pki *pki, int max_version, uint64_t seed)
{
	struct iketcp_tls_ctx *s = server_ctx(pki);
	struct iketcp_tls_ctx *c =
		client_ctx_ex(pki, (struct iketcp_tls_client_cfg){.tls.max_version = max_version});
	struct pair p;
	struct iketcp_sendq q;
	struct rx x;
	struct tu_rng rng;
	uint8_t *frame = tu_xmalloc(IKETCP_FRAME_MAX), *scratch = tu_xmalloc(IKETCP_FRAME_MAX);
	uint32_t sent[IKETCP_NCLASS] = {0, 0};
	const uint32_t total = 400;
	unsigned long pending_seen = 0, overtakes_while_pending = 0, again = 0;

	memset(&p, 0, sizeof(p));
	tu_socketpair(p.sv);
	tu_small_buffers(p.sv[0], 4096);
	tu_small_buffers(p.sv[1], 4096);
	assert_int_equal(iketcp_tls_server_init(&p.srv, s, p.sv[1]), IKETCP_OK);
	assert_int_equal(iketcp_tls_client_init(&p.cli, c, p.sv[0], 0), IKETCP_OK);
	tu_handshake_pair(&p.cli, &p.srv, &p.rc_cli, &p.rc_srv);
	expect_ok(&p);
	tu_rng_seed(&rng, seed);
	assert_int_equal(iketcp_sendq_init(&q, &(struct iketcp_sendq_cfg){.budget = 1 << 20}),
			 IKETCP_OK);
	assert_int_equal(iketcp_deframer_init(&x.d, NULL), IKETCP_OK);
	x.got[0] = x.got[1] = 0;

	while (x.got[0] + x.got[1] < total) {
		int progressed = 0;
		/* Producer: a few frames while the queue is short. */
		for (int k = (int)tu_rng_below(&rng, 3);
		     k > 0 && sent[0] + sent[1] < total && iketcp_sendq_bytes(&q) < 200000; k--) {
			size_t len = frame_size(&rng);
			int cls = tu_rng_below(&rng, 4) == 0 ? IKETCP_CLASS_IKE : IKETCP_CLASS_ESP;
			size_t flen = cls == IKETCP_CLASS_IKE
					      ? tu_frame_ike(frame, len, 37, sent[cls])
					      : tu_frame_esp(frame, len, 0x2000, sent[cls]);
			assert_int_equal(iketcp_sendq_push(&q, cls, frame, flen, NULL, 0),
					 IKETCP_OK);
			sent[cls]++;
		}
		/*
		 * While OpenSSL holds a record to retry, push an IKE frame: the
		 * queue lets it overtake every ESP frame not yet started, and
		 * the bytes in the record must not be mistaken for it.
		 */
		if (iketcp_transport_pending(&p.srv) > 0) {
			pending_seen++;
			if (sent[0] + sent[1] < total) {
				uint64_t ov = q.stats.overtakes;
				size_t flen = tu_frame_ike(frame, 100, 37, sent[IKETCP_CLASS_IKE]);
				assert_int_equal(iketcp_sendq_push(&q, IKETCP_CLASS_IKE, frame,
								   flen, NULL, 0),
						 IKETCP_OK);
				sent[IKETCP_CLASS_IKE]++;
				overtakes_while_pending += q.stats.overtakes - ov;
			}
		}
		int rc = iketcp_transport_send(&p.srv, &q);
		if (rc == IKETCP_E_AGAIN)
			again++;
		else
			assert_int_equal(rc, IKETCP_OK);
		/* Consumer: tiny reads. */
		for (int k = 0; k < 64; k++) {
			uint8_t in[7];
			long r = iketcp_transport_read(&p.cli, in,
						       (size_t)tu_rng_range(&rng, 1, sizeof(in)));
			if (r == IKETCP_E_AGAIN)
				break;
			assert_true(r > 0);
			progressed = 1;
			rx_bytes(&x, in, (size_t)r, scratch);
		}
		if (!progressed && rc == IKETCP_E_AGAIN) {
			/* Wait for either side: the reader's input or the writer's room. */
			if (tu_wait(p.sv[0], iketcp_transport_interest(&p.cli, 1, 0), 0) <= 0)
				assert_true(tu_wait(p.sv[1],
						    iketcp_transport_interest(&p.srv, 0, 1),
						    5000) > 0);
		}
	}
	assert_int_equal(x.got[IKETCP_CLASS_IKE], sent[IKETCP_CLASS_IKE]);
	assert_int_equal(x.got[IKETCP_CLASS_ESP], sent[IKETCP_CLASS_ESP]);
	assert_int_equal(iketcp_sendq_bytes(&q), 0);
	assert_int_equal(iketcp_transport_pending(&p.srv), 0);
	assert_int_equal(iketcp_deframer_pending(&x.d), 0);
	/* The paths this test is about were taken. */
	assert_true(pending_seen > 0);
	assert_true(overtakes_while_pending > 0);
	assert_true(again > 0);
	assert_true(q.stats.partial_writes > 0);
	iketcp_deframer_free(&x.d);
	iketcp_sendq_free(&q);
	pair_close(&p);
	iketcp_tls_ctx_unref(s);
	iketcp_tls_ctx_unref(c);
	free(frame);
	free(scratch);
}

static void
test_sendq_through_tls13(void **state)
{
	run_sendq_tls(*state, 0, 1);
	run_sendq_tls(*state, 0, 2);
}

static void
test_sendq_through_tls12(void **state)
{
	run_sendq_tls(*state, IKETCP_TLS_1_2, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls13_handshake),
		cmocka_unit_test(test_tls12_handshake),
		cmocka_unit_test(test_version_mismatch),
		cmocka_unit_test(test_verify_wrong_name),
		cmocka_unit_test(test_verify_unknown_ca),
		cmocka_unit_test(test_verify_expired),
		cmocka_unit_test(test_verify_system_store),
		cmocka_unit_test(test_verify_off),
		cmocka_unit_test(test_verify_ip_name),
		cmocka_unit_test(test_pin),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_resumption_tls13),
		cmocka_unit_test(test_resumption_tls12),
		cmocka_unit_test(test_resumption_off),
		cmocka_unit_test(test_resumption_not_after_pin_failure),
		cmocka_unit_test(test_null_cipher),
		cmocka_unit_test(test_trim_record_buffer),
		cmocka_unit_test(test_no_certificate_request),
		cmocka_unit_test(test_ctx_swap_keeps_connections),
		cmocka_unit_test(test_sniff_then_tls),
		cmocka_unit_test(test_tls_over_connecting_tcp),
		cmocka_unit_test(test_queries_on_plain),
		cmocka_unit_test(test_sendq_through_tls13),
		cmocka_unit_test(test_sendq_through_tls12),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
