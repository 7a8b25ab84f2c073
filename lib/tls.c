/*
 * TLS transport over OpenSSL 3 (RFC 9329 Appendix A/B). See
 * include/iketcp/tls.h for the contract and include/iketcp/transport.h for
 * the table this fills.
 *
 * I/O goes through a small BIO of our own instead of BIO_s_socket, for two
 * reasons: it hands OpenSSL the bytes the caller already read off the
 * socket (iketcp_transport_preread(): a sniffed first byte, or tunnel bytes
 * behind an HTTP CONNECT answer) before reading the socket, and it sends
 * with MSG_NOSIGNAL. Its BIO_METHOD belongs to the context (no globals).
 *
 * OpenSSL's error queue is per thread; every SSL call is preceded by
 * ERR_clear_error() so that SSL_get_error() and the error text describe
 * this connection only.
 */
#include "iketcp/tls.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base64_internal.h"
#include "transport_int.h"

/* The largest TLS record plaintext (RFC 8446 §5.1): one SSL_write's worth. */
#define TLS_WBUF 16384
#define PIN_LEN IKETCP_TLS_PIN_LEN

enum ctx_side { SIDE_SERVER, SIDE_CLIENT };

struct iketcp_tls_ctx {
	int refs; /* atomic: contexts may be shared by threads */
	enum ctx_side side;
	SSL_CTX *ssl_ctx;
	BIO_METHOD *bio_meth; /* the fd BIO below; outlives every connection (refs) */
	/* client only */
	char *server_name;
	int name_is_ip;
	int no_verify;
	int no_resume;
	int has_pin;
	uint8_t pin[PIN_LEN];
	SSL_SESSION *session; /* last session from this context, offered next (R75) */
};

struct tls_conn {
	struct iketcp_tls_ctx *ctx; /* one reference */
	SSL *ssl;
	struct iketcp_transport *t; /* refreshed on every call: t may have moved */
	int sys_errno;              /* errno of the last failed recv/send in the BIO */
	int eof;                    /* the BIO read end of stream */
	int failed;                 /* a fatal error happened: no more SSL calls */
	int tls_error;              /* ... and it was a TLS protocol error (not I/O) */
	int saved_session;          /* this connection stored ctx->session */
	int pin_failed;             /* the server key did not match the pin */
	int shut_sent;              /* close_notify sent */
	/*
	 * The record being written. OpenSSL has no writev, so the caller's
	 * iovecs are gathered here (fixed size, allocated on the first write)
	 * for one SSL_write. `pend` bytes of it were given to an SSL_write that
	 * returned WANT_WRITE/WANT_READ and must be retried with exactly these
	 * bytes; see tls_writev().
	 */
	uint8_t *wbuf;
	size_t pend;
	int wrote; /* wbuf used since the last iketcp_tls_trim() */
};

static const struct iketcp_transport_ops tls_ops;

static struct tls_conn *
conn_of(const struct iketcp_transport *t)
{
	return t && t->ops == &tls_ops ? t->impl : NULL;
}

/* ---- error text ------------------------------------------------------------ */

/* "what: reason" from OpenSSL's queue (the last error is the most specific). */
static void
fmt_ssl_err(char *buf, size_t len, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;
	char tmp[160];

	if (!e)
		snprintf(buf, len, "%s", what);
	else if (reason)
		snprintf(buf, len, "%s: %s", what, reason);
	else {
		ERR_error_string_n(e, tmp, sizeof(tmp));
		snprintf(buf, len, "%s: %s", what, tmp);
	}
	ERR_clear_error();
}

static void set_err(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
set_err(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!buf || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* ---- the fd BIO ------------------------------------------------------------ */

static int
bio_read(BIO *b, char *buf, int len)
{
	struct tls_conn *c = BIO_get_data(b);
	struct iketcp_transport *t = c->t;
	ssize_t r;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (t->pre)
		return (int)iketcp__transport_take_pre(t, buf, (size_t)len);
	do
		r = recv(t->fd, buf, (size_t)len, 0);
	while (r < 0 && errno == EINTR);
	if (r > 0)
		return (int)r;
	if (r == 0) {
		c->eof = 1;
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		BIO_set_retry_read(b);
		return -1;
	}
	c->sys_errno = errno;
	return -1;
}

static int
bio_write(BIO *b, const char *buf, int len)
{
	struct tls_conn *c = BIO_get_data(b);
	ssize_t w;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	do
		w = send(c->t->fd, buf, (size_t)len, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w >= 0)
		return (int)w;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		BIO_set_retry_write(b);
		return -1;
	}
	c->sys_errno = errno;
	return -1;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_conn *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* the socket has no user-space buffer */
	case BIO_CTRL_EOF:
		/* OpenSSL asks this after a read of 0 to tell a FIN from an error
		 * (SSL_OP_IGNORE_UNEXPECTED_EOF only applies when it says yes). */
		return c && c->eof;
	default:
		return 0;
	}
}

static BIO_METHOD *
bio_method_new(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "iketcp-fd");

	if (!m)
		return NULL;
	if (!BIO_meth_set_read(m, bio_read) || !BIO_meth_set_write(m, bio_write) ||
	    !BIO_meth_set_ctrl(m, bio_ctrl)) {
		BIO_meth_free(m);
		return NULL;
	}
	return m;
}

/* ---- contexts -------------------------------------------------------------- */

static int
version_ok(int v)
{
	return v == 0 || v == IKETCP_TLS_1_2 || v == IKETCP_TLS_1_3;
}

static int
apply_common(SSL_CTX *sc, const struct iketcp_tls_common_cfg *cfg, enum ctx_side side, char *err,
	     size_t err_len)
{
	int min = cfg->min_version ? cfg->min_version : IKETCP_TLS_1_2;
	int max = cfg->max_version;
	char list[1024];

	if (!version_ok(min) || !version_ok(max) || (max && max < min)) {
		set_err(err, err_len, "bad TLS version range");
		return IKETCP_E_TLS_CONFIG;
	}
	if (cfg->allow_null_cipher && side == SIDE_CLIENT) {
		/* TLS 1.3 has no NULL suite: a client that wants one offers 1.2. */
		if (min > IKETCP_TLS_1_2) {
			set_err(err, err_len, "allow_null_cipher needs TLS 1.2");
			return IKETCP_E_TLS_CONFIG;
		}
		max = IKETCP_TLS_1_2;
	}
	if (!SSL_CTX_set_min_proto_version(sc, min) || !SSL_CTX_set_max_proto_version(sc, max)) {
		fmt_ssl_err(err, err_len, "TLS version range");
		return IKETCP_E_TLS_CONFIG;
	}
	uint64_t opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
	/*
	 * A FIN without close_notify reads as end of stream, not as an error:
	 * a truncation attack cannot hurt IKE and ESP, which authenticate
	 * every message themselves.
	 */
	opts |= SSL_OP_IGNORE_UNEXPECTED_EOF;
	/*
	 * The server picks by its own preference (RFC 9325 practice), except
	 * when it allows NULL: then the client's order decides, so a client
	 * that asks for NULL first gets it (R72) and every other client gets
	 * what it prefers among the AEAD suites.
	 */
	if (side == SIDE_SERVER && !cfg->allow_null_cipher)
		opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
	SSL_CTX_set_options(sc, opts);

	const char *base = cfg->ciphers ? cfg->ciphers : IKETCP_TLS_DEFAULT_CIPHERS;
	if (!cfg->allow_null_cipher)
		snprintf(list, sizeof(list), "%s", base);
	else if (side == SIDE_CLIENT)
		snprintf(list, sizeof(list), "%s:%s", IKETCP_TLS_NULL_CIPHERS, base);
	else
		snprintf(list, sizeof(list), "%s:%s", base, IKETCP_TLS_NULL_CIPHERS);
	if (cfg->allow_null_cipher) {
		/*
		 * XXX RFC 9325 conflict (checklist R72 vs R73, §6 item 6): NULL
		 * suites have no confidentiality and need security level 0,
		 * which also admits weak keys and signatures.
		 */
		SSL_CTX_set_security_level(sc, 0);
	}
	if (!SSL_CTX_set_cipher_list(sc, list)) {
		fmt_ssl_err(err, err_len, "cipher list");
		return IKETCP_E_TLS_CONFIG;
	}
	if (cfg->ciphersuites && !SSL_CTX_set_ciphersuites(sc, cfg->ciphersuites)) {
		fmt_ssl_err(err, err_len, "TLS 1.3 ciphersuites");
		return IKETCP_E_TLS_CONFIG;
	}
	/* SSL_CTX_set1_groups_list() without its const-dropping cast (-Wcast-qual). */
	if (cfg->groups &&
	    !SSL_CTX_ctrl(sc, SSL_CTRL_SET_GROUPS_LIST, 0, (void *)(uintptr_t)cfg->groups)) {
		fmt_ssl_err(err, err_len, "groups");
		return IKETCP_E_TLS_CONFIG;
	}
	/*
	 * Writes: SSL_MODE_ENABLE_PARTIAL_WRITE lets SSL_write return after
	 * one record when the peer negotiated smaller records than our 16 KiB
	 * buffer, so we never wait for more than one record. We do *not* set
	 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: a retry always passes the same
	 * connection-owned buffer, and without the flag OpenSSL checks that
	 * ("bad write retry"), which turns a bug here into a clean error.
	 * SSL_MODE_RELEASE_BUFFERS: OpenSSL frees a connection's read and
	 * write record buffers (about 34 KiB) whenever they are empty, so an
	 * idle connection does not hold them; a busy one reallocates them from
	 * malloc's free lists, which costs little next to the record crypto.
	 */
	SSL_CTX_set_mode(sc, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
	return IKETCP_OK;
}

static struct iketcp_tls_ctx *
ctx_alloc(enum ctx_side side)
{
	struct iketcp_tls_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return NULL;
	ctx->refs = 1;
	ctx->side = side;
	ctx->ssl_ctx = SSL_CTX_new(side == SIDE_SERVER ? TLS_server_method() : TLS_client_method());
	ctx->bio_meth = bio_method_new();
	if (!ctx->ssl_ctx || !ctx->bio_meth) {
		SSL_CTX_free(ctx->ssl_ctx);
		BIO_meth_free(ctx->bio_meth);
		free(ctx);
		return NULL;
	}
	SSL_CTX_set_app_data(ctx->ssl_ctx, ctx);
	return ctx;
}

static void
ctx_destroy(struct iketcp_tls_ctx *ctx)
{
	SSL_SESSION_free(ctx->session);
	SSL_CTX_free(ctx->ssl_ctx);
	BIO_meth_free(ctx->bio_meth);
	free(ctx->server_name);
	free(ctx);
}

/* Checks that a file can be opened, for a clearer message than OpenSSL's. */
static int
file_ok(const char *what, const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");

	if (f) {
		fclose(f);
		return 1;
	}
	if (err && err_len)
		snprintf(err, err_len, "%s %s: %s", what, path, strerror(errno));
	return 0;
}

int
iketcp_tls_server_ctx_new(const struct iketcp_tls_server_cfg *cfg, struct iketcp_tls_ctx **out,
			  char *err, size_t err_len)
{
	struct iketcp_tls_ctx *ctx;
	int rc = IKETCP_E_TLS_CONFIG;

	if (err && err_len)
		err[0] = '\0';
	if (!cfg || !out || !cfg->cert_file || !cfg->key_file) {
		set_err(err, err_len, "cert_file and key_file are required");
		return IKETCP_E_INVAL;
	}
	if (!file_ok("cert_file", cfg->cert_file, err, err_len) ||
	    !file_ok("key_file", cfg->key_file, err, err_len))
		return IKETCP_E_TLS_CONFIG;
	ERR_clear_error();
	ctx = ctx_alloc(SIDE_SERVER);
	if (!ctx)
		return IKETCP_E_NOMEM;
	rc = apply_common(ctx->ssl_ctx, &cfg->tls, SIDE_SERVER, err, err_len);
	if (rc != IKETCP_OK)
		goto fail;
	rc = IKETCP_E_TLS_CONFIG;
	if (SSL_CTX_use_certificate_chain_file(ctx->ssl_ctx, cfg->cert_file) != 1) {
		fmt_ssl_err(err, err_len, "cert_file");
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx->ssl_ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1) {
		fmt_ssl_err(err, err_len, "key_file");
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx->ssl_ctx) != 1) {
		fmt_ssl_err(err, err_len, "key_file does not match cert_file");
		goto fail;
	}
	/* R74: IKE authenticates the peers; never send a CertificateRequest. */
	SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_NONE, NULL);
	/* Session IDs and tickets (R75, the server's half); DHE parameters. */
	SSL_CTX_set_session_id_context(ctx->ssl_ctx, (const unsigned char *)"iketcp", 6);
	SSL_CTX_set_dh_auto(ctx->ssl_ctx, 1);
	*out = ctx;
	return IKETCP_OK;
fail:
	ctx_destroy(ctx);
	return rc;
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* [sha256//] then 64 hex digits (':' allowed) or 44 base64 characters. */
int
iketcp_tls_pin_parse(const char *s, uint8_t pin[IKETCP_TLS_PIN_LEN])
{
	size_t n;

	if (!s || !pin)
		return IKETCP_E_INVAL;
	if (strncmp(s, "sha256//", 8) == 0)
		s += 8;
	n = strlen(s);
	if (n == IKETCP_B64_LEN(PIN_LEN)) {
		uint8_t tmp[IKETCP_B64_LEN(PIN_LEN) / 4 * 3];
		if (iketcp__b64_decode(tmp, sizeof(tmp), s, n) != PIN_LEN)
			return IKETCP_E_INVAL;
		memcpy(pin, tmp, PIN_LEN);
		return IKETCP_OK;
	}
	size_t got = 0;
	int hi = -1;
	for (; *s; s++) {
		if (*s == ':')
			continue;
		int v = hexval((unsigned char)*s);
		if (v < 0 || got == PIN_LEN)
			return IKETCP_E_INVAL;
		if (hi < 0) {
			hi = v;
			continue;
		}
		pin[got++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	return got == PIN_LEN && hi < 0 ? IKETCP_OK : IKETCP_E_INVAL;
}

static int
is_ip_literal(const char *s)
{
	ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s);

	if (!ip)
		return 0;
	ASN1_OCTET_STRING_free(ip);
	return 1;
}

/* TLS 1.2: at the end of the handshake; TLS 1.3: with each ticket, after it. */
static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct iketcp_tls_ctx *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	struct tls_conn *c = SSL_get_app_data(ssl);

	if (!ctx || !c || ctx->no_resume || c->failed || !SSL_SESSION_is_resumable(sess))
		return 0;
	if (!ctx->no_verify && SSL_get_verify_result(ssl) != X509_V_OK)
		return 0;
	SSL_SESSION_free(ctx->session);
	ctx->session = sess; /* returning 1 keeps OpenSSL's reference for us */
	c->saved_session = 1;
	return 1;
}

int
iketcp_tls_client_ctx_new(const struct iketcp_tls_client_cfg *cfg, struct iketcp_tls_ctx **out,
			  char *err, size_t err_len)
{
	struct iketcp_tls_ctx *ctx;
	int rc;

	if (err && err_len)
		err[0] = '\0';
	if (!cfg || !out) {
		set_err(err, err_len, "no configuration");
		return IKETCP_E_INVAL;
	}
	if (!cfg->no_verify && (!cfg->server_name || !cfg->server_name[0])) {
		set_err(err, err_len, "server_name is required unless no_verify is set");
		return IKETCP_E_INVAL;
	}
	if (cfg->ca_file && !file_ok("ca_file", cfg->ca_file, err, err_len))
		return IKETCP_E_TLS_CONFIG;
	ERR_clear_error();
	ctx = ctx_alloc(SIDE_CLIENT);
	if (!ctx)
		return IKETCP_E_NOMEM;
	rc = apply_common(ctx->ssl_ctx, &cfg->tls, SIDE_CLIENT, err, err_len);
	if (rc != IKETCP_OK)
		goto fail;
	rc = IKETCP_E_TLS_CONFIG;
	if (cfg->pin_sha256) {
		if (iketcp_tls_pin_parse(cfg->pin_sha256, ctx->pin) != IKETCP_OK) {
			set_err(err, err_len,
				"pin_sha256 %s: not 64 hex digits or 44 base64 characters",
				cfg->pin_sha256);
			goto fail;
		}
		ctx->has_pin = 1;
	}
	if (cfg->server_name && cfg->server_name[0]) {
		ctx->server_name = strdup(cfg->server_name);
		if (!ctx->server_name) {
			rc = IKETCP_E_NOMEM;
			goto fail;
		}
		ctx->name_is_ip = is_ip_literal(cfg->server_name);
	}
	ctx->no_verify = cfg->no_verify;
	ctx->no_resume = cfg->no_resume;
	if (!cfg->no_verify) {
		SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER, NULL);
		int ok = cfg->ca_file
				 ? SSL_CTX_load_verify_locations(ctx->ssl_ctx, cfg->ca_file, NULL)
				 : SSL_CTX_set_default_verify_paths(ctx->ssl_ctx);
		if (ok != 1) {
			fmt_ssl_err(err, err_len, cfg->ca_file ? "ca_file" : "system CA store");
			goto fail;
		}
	}
	/* R75: keep the last session ourselves; OpenSSL's client cache is off. */
	SSL_CTX_set_session_cache_mode(ctx->ssl_ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx->ssl_ctx, new_session_cb);
	*out = ctx;
	return IKETCP_OK;
fail:
	ctx_destroy(ctx);
	return rc;
}

struct iketcp_tls_ctx *
iketcp_tls_ctx_ref(struct iketcp_tls_ctx *ctx)
{
	if (ctx)
		__atomic_add_fetch(&ctx->refs, 1, __ATOMIC_RELAXED);
	return ctx;
}

void
iketcp_tls_ctx_unref(struct iketcp_tls_ctx *ctx)
{
	if (ctx && __atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) == 0)
		ctx_destroy(ctx);
}

int
iketcp_tls_ctx_has_session(const struct iketcp_tls_ctx *ctx)
{
	return ctx && ctx->session != NULL;
}

void
iketcp_tls_ctx_forget_session(struct iketcp_tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_SESSION_free(ctx->session);
	ctx->session = NULL;
}

/* ---- connections ------------------------------------------------------------- */

static int
conn_new(struct iketcp_transport *t, struct iketcp_tls_ctx *ctx, int fd, unsigned flags)
{
	struct tls_conn *c = calloc(1, sizeof(*c));
	BIO *bio = NULL;

	if (!c)
		return IKETCP_E_NOMEM;
	ERR_clear_error();
	c->ssl = SSL_new(ctx->ssl_ctx);
	bio = c->ssl ? BIO_new(ctx->bio_meth) : NULL;
	if (!bio) {
		SSL_free(c->ssl);
		free(c);
		ERR_clear_error();
		return IKETCP_E_NOMEM;
	}
	BIO_set_data(bio, c);
	BIO_set_init(bio, 1);
	SSL_set_bio(c->ssl, bio, bio); /* the SSL owns the BIO now */
	SSL_set_app_data(c->ssl, c);
	c->ctx = iketcp_tls_ctx_ref(ctx);
	iketcp__transport_reset(t, fd, flags, &tls_ops);
	t->impl = c;
	c->t = t;
	return IKETCP_OK;
}

int
iketcp_tls_server_init(struct iketcp_transport *t, struct iketcp_tls_ctx *ctx, int fd)
{
	if (!t || !ctx || ctx->side != SIDE_SERVER || fd < 0)
		return IKETCP_E_INVAL;
	int rc = conn_new(t, ctx, fd, 0);
	if (rc != IKETCP_OK)
		return rc;
	SSL_set_accept_state(conn_of(t)->ssl);
	return IKETCP_OK;
}

int
iketcp_tls_client_init(struct iketcp_transport *t, struct iketcp_tls_ctx *ctx, int fd,
		       unsigned flags)
{
	if (!t || !ctx || ctx->side != SIDE_CLIENT || fd < 0 ||
	    (flags & ~IKETCP_TRANSPORT_CONNECTING))
		return IKETCP_E_INVAL;
	int rc = conn_new(t, ctx, fd, flags);
	if (rc != IKETCP_OK)
		return rc;
	struct tls_conn *c = conn_of(t);
	int ok = 1;
	if (ctx->server_name && !ctx->name_is_ip)
		ok &= SSL_set_tlsext_host_name(c->ssl, ctx->server_name) == 1;
	if (ctx->server_name && !ctx->no_verify) {
		SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (ctx->name_is_ip)
			ok &= X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
							    ctx->server_name) == 1;
		else
			ok &= SSL_set1_host(c->ssl, ctx->server_name) == 1;
	}
	if (ok && ctx->session && !ctx->no_resume)
		ok &= SSL_set_session(c->ssl, ctx->session) == 1;
	if (!ok) {
		ERR_clear_error();
		iketcp_transport_free(t);
		return IKETCP_E_NOMEM;
	}
	SSL_set_connect_state(c->ssl);
	return IKETCP_OK;
}

/*
 * Turns a failed SSL call into a return code: IKETCP_E_AGAIN with *want
 * set, or a fatal error with its text in t->err (the connection is then
 * marked failed: OpenSSL forbids further calls, close_notify included).
 */
static int
ssl_result(struct iketcp_transport *t, struct tls_conn *c, int r, const char *what, unsigned *want)
{
	int e = SSL_get_error(c->ssl, r);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		*want = IKETCP_WANT_READ;
		return IKETCP_E_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		*want = IKETCP_WANT_WRITE;
		return IKETCP_E_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0; /* close_notify, or a FIN (SSL_OP_IGNORE_UNEXPECTED_EOF) */
	case SSL_ERROR_SYSCALL:
		if (c->sys_errno) {
			c->failed = 1;
			iketcp__transport_seterr(t, "%s: %s", what, strerror(c->sys_errno));
			ERR_clear_error();
			errno = c->sys_errno;
			return IKETCP_E_IO;
		}
		break;
	default:
		break;
	}
	c->failed = 1;
	c->tls_error = 1;
	if (c->eof && !ERR_peek_last_error())
		iketcp__transport_seterr(t, "%s: connection closed by peer", what);
	else
		fmt_ssl_err(t->err, sizeof(t->err), what);
	return IKETCP_E_TLS;
}

/* Client side, after the handshake: R-style key pinning on the SPKI. */
static int
check_pin(struct iketcp_transport *t, struct tls_conn *c)
{
	X509 *cert = SSL_get0_peer_certificate(c->ssl);
	unsigned char *der = NULL;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int len;

	if (!cert) {
		iketcp__transport_seterr(t, "public key pin: server sent no certificate");
		return IKETCP_E_TLS_PIN;
	}
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (len <= 0 || !EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen != PIN_LEN) {
		OPENSSL_free(der);
		ERR_clear_error();
		iketcp__transport_seterr(t, "public key pin: cannot hash the server key");
		return IKETCP_E_TLS_PIN;
	}
	OPENSSL_free(der);
	if (CRYPTO_memcmp(md, c->ctx->pin, PIN_LEN) != 0) {
		char hex[2 * PIN_LEN + 1];
		for (int i = 0; i < PIN_LEN; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		iketcp__transport_seterr(t, "public key pin mismatch: server key sha256 %s", hex);
		return IKETCP_E_TLS_PIN;
	}
	return IKETCP_OK;
}

static int
tls_handshake(struct iketcp_transport *t)
{
	struct tls_conn *c = t->impl;
	int r;

	c->t = t;
	c->sys_errno = 0;
	if (c->failed)
		return IKETCP_E_STATE;
	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		if (c->ctx->side == SIDE_CLIENT && c->ctx->has_pin) {
			int rc = check_pin(t, c);
			if (rc != IKETCP_OK) {
				c->failed = 1;
				c->pin_failed = 1;
				if (c->saved_session)
					iketcp_tls_ctx_forget_session(c->ctx);
				return rc;
			}
		}
		return IKETCP_OK;
	}
	long vr = SSL_get_verify_result(c->ssl);
	int rc = ssl_result(t, c, r, "TLS handshake", &t->hs_want);
	if (rc == IKETCP_E_AGAIN)
		return rc;
	if (rc == 0) {
		/* close_notify in the middle of the handshake */
		c->failed = 1;
		iketcp__transport_seterr(t, "TLS handshake: connection closed by peer");
		return IKETCP_E_TLS;
	}
	if (c->ctx->side == SIDE_CLIENT && !c->ctx->no_verify && vr != X509_V_OK) {
		if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
			iketcp__transport_seterr(t, "certificate verify failed: %s (expected %s)",
						 X509_verify_cert_error_string(vr),
						 c->ctx->server_name);
		else
			iketcp__transport_seterr(t, "certificate verify failed: %s",
						 X509_verify_cert_error_string(vr));
		return IKETCP_E_TLS_VERIFY;
	}
	return rc;
}

static long
tls_read(struct iketcp_transport *t, void *buf, size_t len)
{
	struct tls_conn *c = t->impl;

	c->t = t;
	c->sys_errno = 0;
	if (c->failed)
		return IKETCP_E_STATE;
	ERR_clear_error();
	int r = SSL_read(c->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (r > 0)
		return r;
	return ssl_result(t, c, r, "TLS read", &t->rd_want);
}

/* Retries SSL_write with the pending bytes until none are left. */
static int
push_pending(struct iketcp_transport *t, struct tls_conn *c)
{
	while (c->pend > 0) {
		ERR_clear_error();
		int w = SSL_write(c->ssl, c->wbuf, (int)c->pend);
		if (w <= 0) {
			int rc = ssl_result(t, c, w, "TLS write", &t->wr_want);
			return rc == 0 ? IKETCP_E_TLS : rc;
		}
		/* With partial writes a retry may complete only the first record;
		 * the rest is a fresh write of the remaining bytes. */
		c->pend -= (size_t)w;
		if (c->pend)
			memmove(c->wbuf, c->wbuf + w, c->pend);
	}
	return IKETCP_OK;
}

/*
 * OpenSSL has no writev: gather up to one record (16 KiB) of the iovecs
 * into the connection's buffer and SSL_write it.
 *
 * When SSL_write returns WANT_WRITE (or WANT_READ), OpenSSL has already
 * built and encrypted the record and may have put part of it on the wire;
 * it must be called again with the same bytes. Those bytes are therefore
 * committed, and we report them to the caller as taken: they stay in
 * wbuf (`pend`) and every later call first retries them from there, never
 * from the caller's iovecs. Reporting them only after the retry succeeded
 * would be wrong with the send queue: until bytes are reported, the queue
 * regards their frames as not started and lets a newer IKE frame overtake
 * them, so the next iovecs would no longer begin with the bytes OpenSSL
 * holds, and the counts would apply to the wrong frames. Committed-at-once
 * keeps the queue's view equal to the wire: a frame cut at the end of wbuf
 * is "started" for the queue and finished before anything else, so frames
 * never interleave. iketcp_transport_pending() counts what is kept;
 * iketcp_transport_flush()/_send() push it.
 */
static long
tls_writev(struct iketcp_transport *t, const struct iovec *iov, int cnt)
{
	struct tls_conn *c = t->impl;
	size_t n = 0;

	c->t = t;
	c->sys_errno = 0;
	if (c->failed)
		return IKETCP_E_STATE;
	if (c->pend > 0) {
		int rc = push_pending(t, c);
		if (rc != IKETCP_OK)
			return rc;
	}
	if (!c->wbuf) {
		c->wbuf = malloc(TLS_WBUF);
		if (!c->wbuf)
			return IKETCP_E_NOMEM;
	}
	c->wrote = 1;
	for (int i = 0; i < cnt && n < TLS_WBUF; i++) {
		size_t k = iov[i].iov_len < TLS_WBUF - n ? iov[i].iov_len : TLS_WBUF - n;
		if (k)
			memcpy(c->wbuf + n, iov[i].iov_base, k);
		n += k;
	}
	if (n == 0)
		return 0;
	ERR_clear_error();
	int w = SSL_write(c->ssl, c->wbuf, (int)n);
	if (w > 0)
		return w; /* bytes past w were not taken: they are still the caller's */
	int rc = ssl_result(t, c, w, "TLS write", &t->wr_want);
	if (rc != IKETCP_E_AGAIN)
		return rc == 0 ? IKETCP_E_TLS : rc;
	c->pend = n;
	return (long)n;
}

static size_t
tls_pending(const struct iketcp_transport *t)
{
	const struct tls_conn *c = t->impl;
	return c->pend;
}

static int
tls_flush(struct iketcp_transport *t)
{
	struct tls_conn *c = t->impl;

	c->t = t;
	c->sys_errno = 0;
	if (c->failed)
		return IKETCP_E_STATE;
	return push_pending(t, c);
}

static int
tls_shutdown(struct iketcp_transport *t)
{
	struct tls_conn *c = t->impl;

	c->t = t;
	c->sys_errno = 0;
	if (!c->failed && t->hs_done && !c->shut_sent) {
		int rc = push_pending(t, c);
		if (rc != IKETCP_OK)
			return rc;
		ERR_clear_error();
		int r = SSL_shutdown(c->ssl); /* 0: close_notify sent, the peer's not yet read */
		if (r < 0) {
			rc = ssl_result(t, c, r, "TLS shutdown", &t->wr_want);
			if (rc == IKETCP_E_AGAIN)
				return rc;
		}
		c->shut_sent = 1;
	}
	if (shutdown(t->fd, SHUT_WR) != 0 && errno != ENOTCONN) {
		iketcp__transport_seterr(t, "shutdown: %s", strerror(errno));
		return IKETCP_E_IO;
	}
	return IKETCP_OK;
}

static void
tls_free(struct iketcp_transport *t)
{
	struct tls_conn *c = t->impl;

	if (!c)
		return;
	/*
	 * SSL_free() of a connection that sent no close_notify marks its
	 * session "bad" (not resumable). RFC 9329 B.3 wants exactly that
	 * session after a broken connection (R75: an RST, a timeout, a NAT
	 * that forgot us), so only a TLS protocol error or a refused
	 * handshake (pin included) may spoil it.
	 */
	if (t->hs_done && !c->tls_error && !c->pin_failed)
		SSL_set_shutdown(c->ssl, SSL_get_shutdown(c->ssl) | SSL_SENT_SHUTDOWN);
	SSL_free(c->ssl);
	ERR_clear_error();
	iketcp_tls_ctx_unref(c->ctx);
	free(c->wbuf);
	free(c);
	t->impl = NULL;
}

static const struct iketcp_transport_ops tls_ops = {
	.name = "tls",
	.read = tls_read,
	.writev = tls_writev,
	.handshake = tls_handshake,
	.shutdown = tls_shutdown,
	.pending = tls_pending,
	.flush = tls_flush,
	.free = tls_free,
};

/* ---- queries ------------------------------------------------------------------ */

void
iketcp_tls_trim(struct iketcp_transport *t)
{
	struct tls_conn *c = conn_of(t);
	if (!c)
		return;
	/* bytes OpenSSL holds (pend) must stay where they are for the retry */
	if (c->wbuf && !c->pend && !c->wrote) {
		free(c->wbuf);
		c->wbuf = NULL;
	}
	c->wrote = 0;
}

size_t
iketcp_tls_buffered(const struct iketcp_transport *t)
{
	const struct tls_conn *c = conn_of(t);
	return c && c->wbuf ? TLS_WBUF : 0;
}

int
iketcp_tls_resumed(const struct iketcp_transport *t)
{
	struct tls_conn *c = conn_of(t);
	return c && t->hs_done && SSL_session_reused(c->ssl) ? 1 : 0;
}

const char *
iketcp_tls_version(const struct iketcp_transport *t)
{
	struct tls_conn *c = conn_of(t);
	return c && t->hs_done ? SSL_get_version(c->ssl) : "";
}

const char *
iketcp_tls_cipher(const struct iketcp_transport *t)
{
	struct tls_conn *c = conn_of(t);
	const char *n = c && t->hs_done ? SSL_get_cipher_name(c->ssl) : NULL;
	return n ? n : "";
}

void *
iketcp_tls_ssl(const struct iketcp_transport *t)
{
	struct tls_conn *c = conn_of(t);
	return c ? c->ssl : NULL;
}

int
iketcp_tls_pin_of_cert_file(const char *path, char hex[65])
{
	BIO *b;
	X509 *cert;
	unsigned char *der = NULL;
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int len, rc = IKETCP_E_TLS_CONFIG;

	if (!path || !hex)
		return IKETCP_E_INVAL;
	b = BIO_new_file(path, "r");
	cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	if (cert) {
		len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
		if (len > 0 && EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) &&
		    mdlen == PIN_LEN) {
			for (int i = 0; i < PIN_LEN; i++)
				snprintf(hex + 2 * i, 3, "%02x", md[i]);
			rc = IKETCP_OK;
		}
	}
	OPENSSL_free(der);
	X509_free(cert);
	BIO_free(b);
	ERR_clear_error();
	return rc;
}
