#include "tlscfg.h"

#include <stdio.h>
#include <string.h>

/* NULL for an unset ("") string setting. */
static const char *
opt(const char *s)
{
	return s[0] ? s : NULL;
}

static void
common(struct iketcp_tls_common_cfg *t, const struct iketcpd_tls_opts *o)
{
	memset(t, 0, sizeof(*t));
	t->min_version = o->min_version == IKETCPD_TLS_V13 ? IKETCP_TLS_1_3 : IKETCP_TLS_1_2;
	t->ciphers = opt(o->ciphers);
	t->ciphersuites = opt(o->ciphersuites);
	t->groups = opt(o->groups);
	t->allow_null_cipher = o->null_cipher;
}

/*
 * libiketcp names the setting in its own words ("cert_file: no start line",
 * "cert_file /x: No such file or directory", "cipher list: ..."). Rewrites
 * the leading word as the iketcpd key and its value, so that the message
 * says which line of the configuration to look at.
 */
struct xlat {
	const char *lib; /* leading word(s) of the library's message */
	const char *key; /* iketcpd key */
	const char *val; /* its value (a file name), or NULL */
};

static void
translate(char *err, size_t errlen, const char *lib_msg, const struct xlat *tab, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(tab[i].lib);
		if (!tab[i].val || !tab[i].val[0] || strncmp(lib_msg, tab[i].lib, l) != 0)
			continue;
		const char *rest = lib_msg + l;
		size_t vl = strlen(tab[i].val);
		/* "cert_file PATH: reason": the path is said once, by us */
		if (rest[0] == ' ' && strncmp(rest + 1, tab[i].val, vl) == 0)
			rest += 1 + vl;
		if (rest[0] == ':' && rest[1] == ' ')
			rest += 2;
		else if (rest[0] == ' ')
			rest += 1;
		snprintf(err, errlen, "%s %s: %s", tab[i].key, tab[i].val, rest);
		return;
	}
	snprintf(err, errlen, "%s", lib_msg);
}

struct iketcp_tls_ctx *
tlscfg_server_ctx(const struct iketcpd_server_cfg *s, char *err, size_t errlen)
{
	struct iketcp_tls_server_cfg tc;
	struct iketcp_tls_ctx *ctx = NULL;
	char e[512];

	memset(&tc, 0, sizeof(tc));
	tc.cert_file = s->tls_cert;
	tc.key_file = s->tls_key;
	common(&tc.tls, &s->tls);
	if (iketcp_tls_server_ctx_new(&tc, &ctx, e, sizeof(e)) == IKETCP_OK)
		return ctx;
	const struct xlat tab[] = {
		{"key_file does not match cert_file", "tls-key", s->tls_key},
		{"cert_file", "tls-cert", s->tls_cert},
		{"key_file", "tls-key", s->tls_key},
		{"cipher list", "tls-ciphers", s->tls.ciphers},
		{"TLS 1.3 ciphersuites", "tls-ciphersuites", s->tls.ciphersuites},
		{"groups", "tls-groups", s->tls.groups},
	};
	translate(err, errlen, e[0] ? e : "cannot build the TLS context", tab,
		  sizeof(tab) / sizeof(tab[0]));
	return NULL;
}

struct iketcp_tls_ctx *
tlscfg_client_ctx(const struct iketcpd_client_cfg *c, char *err, size_t errlen)
{
	struct iketcp_tls_client_cfg tc;
	struct iketcp_tls_ctx *ctx = NULL;
	char e[512];

	memset(&tc, 0, sizeof(tc));
	tc.server_name = c->tls_server_name[0] ? c->tls_server_name : c->peer_host;
	tc.ca_file = opt(c->tls_ca_file);
	tc.no_verify = !c->tls_verify;
	tc.pin_sha256 = opt(c->tls_pin);
	tc.no_resume = 0; /* R75 */
	common(&tc.tls, &c->tls);
	if (iketcp_tls_client_ctx_new(&tc, &ctx, e, sizeof(e)) == IKETCP_OK)
		return ctx;
	const struct xlat tab[] = {
		{"ca_file", "tls-ca-file", c->tls_ca_file},
		{"pin_sha256", "tls-pin-sha256", c->tls_pin},
		{"cipher list", "tls-ciphers", c->tls.ciphers},
		{"TLS 1.3 ciphersuites", "tls-ciphersuites", c->tls.ciphersuites},
		{"groups", "tls-groups", c->tls.groups},
	};
	translate(err, errlen, e[0] ? e : "cannot build the TLS context", tab,
		  sizeof(tab) / sizeof(tab[0]));
	return NULL;
}
