/*
 * TLS transport (RFC 9329 Appendix A and B) over OpenSSL 3.
 *
 * A context (struct iketcp_tls_ctx) holds the settings of one side: a
 * server context (certificate chain, key; no client certificate is ever
 * requested, R74) or a client context (server name for SNI and the
 * hostname check, trust anchors, optional public key pin, and the last
 * session for resumption, R75). Contexts are reference counted: every
 * connection holds a reference, so a configuration reload builds a new
 * context, swaps the caller's pointer and drops the old reference; the
 * existing connections keep theirs until they are freed.
 *
 * A connection is a struct iketcp_transport (transport.h) set up by
 * iketcp_tls_server_init() or iketcp_tls_client_init(); after that the
 * generic iketcp_transport_*() calls drive it. RFC 9329 runs inside: the
 * TCP originator writes "IKETCP" as the first bytes *inside* TLS (R15, A2).
 *
 * Defaults follow RFC 9325 (checklist R73): TLS 1.2 and 1.3 only, TLS 1.2
 * limited to ECDHE/DHE with AEAD ciphers, no renegotiation, no compression,
 * certificate verification on. The NULL cipher of R72 is behind
 * allow_null_cipher, off by default, because RFC 9325 forbids NULL ciphers
 * (docs/conformance.md, "Our own choices"): with it, TLS 1.2 may negotiate an integrity-only
 * suite (NULL encryption, HMAC) and OpenSSL's security level drops to 0,
 * which also admits short keys and SHA-1 signatures. IKE and ESP inside are
 * already encrypted and authenticated, so the TLS layer only has to get
 * through middleboxes. TLS 1.3 has no NULL suite in OpenSSL 3.0, so a
 * client that allows NULL offers TLS 1.2 at most; a server that allows it
 * still speaks TLS 1.3 to everyone else.
 *
 * Threads: a server context may be shared by threads (it is read-only and
 * its reference count is atomic). A client context keeps the last session;
 * use it from one thread at a time.
 */
#ifndef IKETCP_TLS_H
#define IKETCP_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "iketcp/err.h"
#include "iketcp/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Protocol versions (the TLS wire values). 0 means "the default". */
#define IKETCP_TLS_1_2 0x0303
#define IKETCP_TLS_1_3 0x0304

/*
 * TLS 1.2 cipher list used when `ciphers` is NULL: RFC 9325 §4.2 (ECDHE or
 * DHE key exchange, AES-GCM or ChaCha20-Poly1305).
 */
#define IKETCP_TLS_DEFAULT_CIPHERS                                                                 \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                               \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"

/* TLS 1.2 integrity-only suites added by allow_null_cipher (R72). */
#define IKETCP_TLS_NULL_CIPHERS "ECDHE-ECDSA-NULL-SHA:ECDHE-RSA-NULL-SHA:NULL-SHA256"

/* Settings shared by both sides. Every string may be NULL (the default). */
struct iketcp_tls_common_cfg {
	int min_version;          /* IKETCP_TLS_1_2 (default) or IKETCP_TLS_1_3 */
	int max_version;          /* 0: the highest OpenSSL knows */
	const char *ciphers;      /* TLS 1.2 list (OpenSSL syntax); default above */
	const char *ciphersuites; /* TLS 1.3 list; default OpenSSL's */
	const char *groups;       /* key exchange groups, e.g. "X25519:P-256" */
	int allow_null_cipher;    /* R72: off by default; see the header comment */
};

struct iketcp_tls_server_cfg {
	const char *cert_file; /* PEM: leaf certificate first, then intermediates */
	const char *key_file;  /* PEM private key of the leaf */
	struct iketcp_tls_common_cfg tls;
};

struct iketcp_tls_client_cfg {
	/*
	 * Name of the server: sent as SNI (unless it is an IP address) and
	 * checked against the certificate (DNS name or IP address).
	 * Required unless no_verify is set.
	 */
	const char *server_name;
	const char *ca_file; /* PEM trust anchors; NULL: the system default store */
	int no_verify;       /* 1: do not verify the chain or the name (explicit opt-out) */
	/*
	 * Optional pin: SHA-256 of the server's DER SubjectPublicKeyInfo, as
	 * 64 hex digits (colons allowed) or 44 characters of base64, optionally
	 * after "sha256//" (curl's syntax). Checked in addition to the chain,
	 * or alone when no_verify is set.
	 */
	const char *pin_sha256;
	int no_resume; /* 1: never offer the saved session (R75 is on by default) */
	struct iketcp_tls_common_cfg tls;
};

struct iketcp_tls_ctx;

/*
 * Builds a server context. Returns IKETCP_OK with *out holding one
 * reference, IKETCP_E_TLS_CONFIG (err, if not NULL, names the file or
 * setting and OpenSSL's reason), IKETCP_E_INVAL (cfg or files missing) or
 * IKETCP_E_NOMEM. The library prints nothing.
 */
int IKETCP_WUR iketcp_tls_server_ctx_new(const struct iketcp_tls_server_cfg *cfg,
					 struct iketcp_tls_ctx **out, char *err, size_t err_len);

/* Builds a client context. Returns as iketcp_tls_server_ctx_new(). */
int IKETCP_WUR iketcp_tls_client_ctx_new(const struct iketcp_tls_client_cfg *cfg,
					 struct iketcp_tls_ctx **out, char *err, size_t err_len);

/* Takes another reference. Returns ctx. */
struct iketcp_tls_ctx *iketcp_tls_ctx_ref(struct iketcp_tls_ctx *ctx);

/* Drops a reference; the last one frees the context. ctx may be NULL. */
void iketcp_tls_ctx_unref(struct iketcp_tls_ctx *ctx);

/*
 * Returns non-zero if a client context holds a session to offer on the
 * next connection (R75). TLS 1.3 sessions arrive after the handshake, with
 * the first records the client reads.
 */
int iketcp_tls_ctx_has_session(const struct iketcp_tls_ctx *ctx);

/* Forgets the saved session of a client context (e.g. the server changed). */
void iketcp_tls_ctx_forget_session(struct iketcp_tls_ctx *ctx);

/*
 * Sets t up as the TLS server side of the non-blocking socket fd, holding a
 * reference to ctx (a server context). Bytes the caller already read (the
 * first byte it sniffed) go in with iketcp_transport_preread() before the
 * first handshake step. Returns IKETCP_OK, IKETCP_E_INVAL (fd < 0, not a
 * server context) or IKETCP_E_NOMEM.
 */
int IKETCP_WUR iketcp_tls_server_init(struct iketcp_transport *t, struct iketcp_tls_ctx *ctx,
				      int fd);

/*
 * Sets t up as the TLS client side of fd, holding a reference to ctx (a
 * client context), and offers the context's saved session unless no_resume.
 * flags: IKETCP_TRANSPORT_CONNECTING if connect() is still in progress.
 * Returns IKETCP_OK, IKETCP_E_INVAL or IKETCP_E_NOMEM.
 */
int IKETCP_WUR iketcp_tls_client_init(struct iketcp_transport *t, struct iketcp_tls_ctx *ctx,
				      int fd, unsigned flags);

/*
 * Memory: frees the 16 KiB record buffer of an idle TLS transport, with the
 * rule of iketcp_sendq_trim(): only if nothing was written since the last
 * call and OpenSSL holds no bytes of it, so a busy connection (trimmed on
 * every drained queue) never reallocates it and an idle one loses it at
 * the second call. No-op for plain TCP.
 */
void iketcp_tls_trim(struct iketcp_transport *t);

/* Bytes of record buffer t holds (0 or 16 KiB; 0 for plain TCP). */
size_t iketcp_tls_buffered(const struct iketcp_transport *t);

/* Returns 1 if t is a TLS transport whose handshake resumed a session, else 0. */
int iketcp_tls_resumed(const struct iketcp_transport *t);

/* Returns the negotiated version name ("TLSv1.3"), or "" if none / not TLS. */
const char *iketcp_tls_version(const struct iketcp_transport *t);

/* Returns the negotiated cipher name ("TLS_AES_128_GCM_SHA256"), or "". */
const char *iketcp_tls_cipher(const struct iketcp_transport *t);

/*
 * Returns the OpenSSL SSL object of a TLS transport (as void *, to keep
 * OpenSSL headers out of this one) for diagnostics such as message or
 * key-log callbacks, or NULL if t is not TLS. Do not free it.
 */
void *iketcp_tls_ssl(const struct iketcp_transport *t);

/*
 * Computes the pin of a PEM certificate file (SHA-256 of its
 * SubjectPublicKeyInfo) as 64 lowercase hex digits into hex[65].
 * Returns IKETCP_OK, IKETCP_E_TLS_CONFIG (unreadable) or IKETCP_E_INVAL.
 */
int IKETCP_WUR iketcp_tls_pin_of_cert_file(const char *path, char hex[65]);

#define IKETCP_TLS_PIN_LEN 32 /* SHA-256 */

/*
 * Decodes a pin in the pin_sha256 syntax (64 hex digits, colons allowed,
 * or the 44-character base64 of RFC 4648 §4, optionally after "sha256//")
 * into pin: what iketcp_tls_client_ctx_new() accepts, for checking a
 * configuration early. Base64 must be canonical (no blanks, zero padding
 * bits). Returns IKETCP_OK or IKETCP_E_INVAL (pin unchanged or partly
 * written).
 */
int IKETCP_WUR iketcp_tls_pin_parse(const char *s, uint8_t pin[IKETCP_TLS_PIN_LEN]);

#ifdef __cplusplus
}
#endif
#endif
