/*
 * The checks of iketcpd's configuration: every typed key against its
 * table row's range, then the rules across keys (reconnect-min <=
 * reconnect-max, no listen address twice, TLS keys only with TLS, ...).
 * The parser runs them on its result; iketcpd_config_check() runs them on
 * any struct, so a configuration built in code is held to the same rules.
 */
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "config_int.h"

struct chk {
	const char *src;          /* NULL: plain messages (iketcpd_config_check()) */
	int args;                 /* src is the command line: no line numbers */
	const unsigned *srv_line; /* header line per server (0: unknown), or NULL */
	const unsigned *cli_line;
	char *err;
	size_t errlen;
};

static int cerr(const struct chk *c, const struct iketcpd_cfg *cfg, unsigned kind, int idx,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Sets "[SRC[:LINE]: ][server "NAME": ]message". kind 0: not about a section. */
static int
cerr(const struct chk *c, const struct iketcpd_cfg *cfg, unsigned kind, int idx, const char *fmt,
     ...)
{
	char msg[512], where[300] = "", sect[80] = "";
	unsigned line = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (kind == SECT_SERVER) {
		line = c->srv_line ? c->srv_line[idx] : 0;
		snprintf(sect, sizeof(sect), "server \"%.*s\": ", IKETCPD_NAME_MAX - 1,
			 cfg->servers[idx].name);
	} else if (kind == SECT_CLIENT) {
		line = c->cli_line ? c->cli_line[idx] : 0;
		snprintf(sect, sizeof(sect), "client \"%.*s\": ", IKETCPD_NAME_MAX - 1,
			 cfg->clients[idx].name);
	}
	if (c->src && line && !c->args)
		snprintf(where, sizeof(where), "%s:%u: ", c->src, line);
	else if (c->src)
		snprintf(where, sizeof(where), "%s: ", c->src);
	cfg_seterr(c->err, c->errlen, "%s%s%s", where, sect, msg);
	return -1;
}

/*
 * Every typed field of section idx (of kind) against its row: numbers in
 * range (0 passes where it means off or not set), yes/no 0 or 1.
 */
static int
chk_keys(const struct chk *c, const struct iketcpd_cfg *cfg, unsigned kind, int idx,
	 const void *sect)
{
	char a[24], b[24];

	for (size_t k = 0; k < kw_count; k++) {
		const struct kw *kw = &kwtab[k];
		size_t off = kw_off(kw, kind);
		const char *f = (const char *)sect + off;
		uint32_t v;
		int bv;

		if (off == 0)
			continue;
		switch (kw->kind) {
		case V_DURATION:
		case V_COUNT:
		case V_SIZE:
			memcpy(&v, f, sizeof(v));
			if (v == 0 && (kw->flags & (KW_OFF | KW_UNSET0)))
				break;
			if (v >= kw->min && v <= kw->max)
				break;
			if (kw->kind == V_DURATION)
				return cerr(c, cfg, kind, idx, "%s %ums is out of range (%s..%s)",
					    kw->name, v, fmt_duration(a, sizeof(a), kw->min),
					    fmt_duration(b, sizeof(b), kw->max));
			return cerr(c, cfg, kind, idx, "%s %u is out of range (%u..%u)", kw->name,
				    v, kw->min, kw->max);
		case V_BOOL:
			memcpy(&bv, f, sizeof(bv));
			if (bv != 0 && bv != 1)
				return cerr(c, cfg, kind, idx, "%s %d is not 0 or 1", kw->name, bv);
			break;
		case V_STR: /* terminated: checked with the keys they go with */
		case V_FN:
			break;
		}
	}
	return 0;
}

/* A string field is NUL-terminated inside its array. */
static int
str_ok(const char *s, size_t size)
{
	return strnlen(s, size) < size;
}

/* The TLS settings both kinds share. Returns 0 or -1. */
static int
chk_tls_opts(const struct chk *c, const struct iketcpd_cfg *cfg, unsigned kind, int idx,
	     const struct iketcpd_tls_opts *t)
{
	if (t->min_version != IKETCPD_TLS_V12 && t->min_version != IKETCPD_TLS_V13)
		return cerr(c, cfg, kind, idx, "tls-min-version 0x%04x is not 1.2 or 1.3",
			    (unsigned)t->min_version);
	if (!str_ok(t->ciphers, sizeof(t->ciphers)) ||
	    !str_ok(t->ciphersuites, sizeof(t->ciphersuites)) ||
	    !str_ok(t->groups, sizeof(t->groups)))
		return cerr(c, cfg, kind, idx, "a TLS list is not terminated");
	if (t->null_cipher && t->min_version == IKETCPD_TLS_V13)
		return cerr(c, cfg, kind, idx,
			    "tls-null-cipher needs tls-min-version 1.2 (TLS 1.3 has no NULL "
			    "cipher)");
	return 0;
}

/* Names a TLS key of t that differs from its default, or NULL. */
static const char *
tls_opts_set(const struct iketcpd_tls_opts *t)
{
	if (t->min_version != IKETCPD_TLS_V12)
		return "tls-min-version";
	if (t->ciphers[0])
		return "tls-ciphers";
	if (t->ciphersuites[0])
		return "tls-ciphersuites";
	if (t->groups[0])
		return "tls-groups";
	if (t->null_cipher)
		return "tls-null-cipher";
	return NULL;
}

/* The i-th of a server's listen + listen-tls addresses (k < nlisten + nlisten_tls). */
static const struct iketcpd_addr *
srv_addr(const struct iketcpd_server_cfg *s, int k, const char **key)
{
	if (k < s->nlisten) {
		*key = "listen";
		return &s->listen[k];
	}
	*key = "listen-tls";
	return &s->listen_tls[k - s->nlisten];
}

static int
chk_server_tls(const struct chk *c, const struct iketcpd_cfg *cfg, int i)
{
	const struct iketcpd_server_cfg *s = &cfg->servers[i];
	const unsigned K = SECT_SERVER;
	int cert, key;
	const char *k;

	if (!str_ok(s->tls_cert, sizeof(s->tls_cert)) || !str_ok(s->tls_key, sizeof(s->tls_key)))
		return cerr(c, cfg, K, i, "tls-cert or tls-key is not terminated");
	cert = s->tls_cert[0] != '\0';
	key = s->tls_key[0] != '\0';
	if (cert != key)
		return cerr(c, cfg, K, i, "%s is set without %s: they go together",
			    cert ? "tls-cert" : "tls-key", cert ? "tls-key" : "tls-cert");
	if (chk_tls_opts(c, cfg, K, i, &s->tls) < 0)
		return -1;
	if (s->sniff_tls != IKETCPD_SNIFF_AUTO && s->sniff_tls != 0 && s->sniff_tls != 1)
		return cerr(c, cfg, K, i, "sniff-tls %d is not yes, no or auto", s->sniff_tls);
	if (cert)
		return 0;
	/* Without a certificate nothing TLS can run: refuse settings that
	 * would be silently ignored. */
	if (s->nlisten_tls > 0)
		return cerr(c, cfg, K, i, "listen-tls needs tls-cert and tls-key");
	if (s->sniff_tls == 1)
		return cerr(c, cfg, K, i, "sniff-tls = yes needs tls-cert and tls-key");
	k = tls_opts_set(&s->tls);
	if (k == NULL && s->tls_handshake_timeout_ms != kw_default("tls-handshake-timeout"))
		k = "tls-handshake-timeout";
	if (k != NULL)
		return cerr(c, cfg, K, i,
			    "%s is set but TLS is off (it needs tls-cert and tls-key)", k);
	return 0;
}

static int
chk_server(const struct chk *c, const struct iketcpd_cfg *cfg, int i)
{
	const struct iketcpd_server_cfg *s = &cfg->servers[i];
	const unsigned K = SECT_SERVER;
	int j;

	if (!valid_name(s->name))
		return cerr(c, cfg, K, i, "bad section name");
	if (s->nlisten < 0 || s->nlisten > IKETCPD_MAX_LISTEN || s->nlisten_tls < 0 ||
	    s->nlisten_tls > IKETCPD_MAX_LISTEN || s->nlisten + s->nlisten_tls < 1)
		return cerr(c, cfg, K, i,
			    "%d listen addresses and %d listen-tls addresses (need at least one, "
			    "at most %d of each)",
			    s->nlisten, s->nlisten_tls, IKETCPD_MAX_LISTEN);
	for (j = 0; j < s->nlisten; j++)
		if (!addr_valid(&s->listen[j]))
			return cerr(c, cfg, K, i, "listen address %d is not set", j + 1);
	for (j = 0; j < s->nlisten_tls; j++)
		if (!addr_valid(&s->listen_tls[j]))
			return cerr(c, cfg, K, i, "listen-tls address %d is not set", j + 1);
	if (chk_keys(c, cfg, K, i, s) < 0 || chk_server_tls(c, cfg, i) < 0)
		return -1;
	if (!addr_valid(&s->backend))
		return cerr(c, cfg, K, i, "no backend address");
	if (s->backend_source_mode < IKETCPD_BSRC_AUTO ||
	    s->backend_source_mode > IKETCPD_BSRC_PREFIX ||
	    (s->backend_source_mode == IKETCPD_BSRC_PREFIX &&
	     s->backend_source.family != s->backend.ss.ss_family))
		return cerr(c, cfg, K, i,
			    "backend-source must be a prefix of the backend's address family");
	if (s->nproxy_from < 0 || s->nproxy_from > IKETCPD_MAX_PROXY_FROM)
		return cerr(c, cfg, K, i, "%d proxy-protocol-from entries (at most %d)",
			    s->nproxy_from, IKETCPD_MAX_PROXY_FROM);
	/* Anyone could claim any client address: only listed balancers may. */
	if (s->proxy_protocol && s->nproxy_from == 0)
		return cerr(c, cfg, K, i,
			    "proxy-protocol = yes needs proxy-protocol-from (the load balancers' "
			    "addresses)");
	if (!s->proxy_protocol && s->nproxy_from > 0)
		return cerr(c, cfg, K, i, "proxy-protocol-from is set but proxy-protocol = no");
	for (j = 0; j < s->nproxy_from; j++)
		if (s->proxy_from[j].family != AF_INET && s->proxy_from[j].family != AF_INET6)
			return cerr(c, cfg, K, i, "proxy-protocol-from %d is not set", j + 1);
	if (s->max_pending > s->max_conns)
		return cerr(c, cfg, K, i, "max-pending (%u) is larger than max-conns (%u)",
			    s->max_pending, s->max_conns);
	if (s->max_conns_per_source > s->max_conns)
		return cerr(c, cfg, K, i, "max-conns-per-source (%u) is larger than max-conns (%u)",
			    s->max_conns_per_source, s->max_conns);
	return 0;
}

static int
chk_client_tls(const struct chk *c, const struct iketcpd_cfg *cfg, int i)
{
	const struct iketcpd_client_cfg *cl = &cfg->clients[i];
	const unsigned K = SECT_CLIENT;
	const char *k = NULL;

	if (!str_ok(cl->tls_server_name, sizeof(cl->tls_server_name)) ||
	    !str_ok(cl->tls_ca_file, sizeof(cl->tls_ca_file)) ||
	    !str_ok(cl->tls_pin, sizeof(cl->tls_pin)) ||
	    !str_ok(cl->proxy_host, sizeof(cl->proxy_host)) ||
	    !str_ok(cl->proxy_auth, sizeof(cl->proxy_auth)))
		return cerr(c, cfg, K, i, "a TLS or proxy string is not terminated");
	if (chk_tls_opts(c, cfg, K, i, &cl->tls) < 0)
		return -1;
	if (cl->proxy_host[0] != '\0' && cl->proxy_port == 0)
		return cerr(c, cfg, K, i, "proxy port 0");
	if (cl->proxy_auth[0] != '\0' && cl->proxy_host[0] == '\0')
		return cerr(c, cfg, K, i, "proxy-auth is set without proxy");
	if (cl->use_tls)
		return 0;
	/* TLS settings of a section that does not use TLS would be ignored. */
	if (cl->tls_server_name[0])
		k = "tls-server-name";
	else if (cl->tls_ca_file[0])
		k = "tls-ca-file";
	else if (!cl->tls_verify)
		k = "tls-verify";
	else if (cl->tls_pin[0])
		k = "tls-pin-sha256";
	else
		k = tls_opts_set(&cl->tls);
	if (k != NULL)
		return cerr(c, cfg, K, i, "%s is set but tls = no (set tls = yes)", k);
	return 0;
}

static int
chk_client(const struct chk *c, const struct iketcpd_cfg *cfg, int i)
{
	const struct iketcpd_client_cfg *cl = &cfg->clients[i];
	const unsigned K = SECT_CLIENT;
	size_t hl = strnlen(cl->peer_host, IKETCPD_HOST_MAX);
	char a[24], b[24];

	if (!valid_name(cl->name))
		return cerr(c, cfg, K, i, "bad section name");
	if (!addr_valid(&cl->udp))
		return cerr(c, cfg, K, i, "no udp address (udp = ADDR:PORT)");
	if (!local_peer_valid(&cl->local_peer))
		return cerr(c, cfg, K, i, "local-peer is not auto or an address");
	if (hl == 0)
		return cerr(c, cfg, K, i, "no peer (peer = HOST[:PORT])");
	if (hl >= IKETCPD_HOST_MAX ||
	    !valid_peer_host(cl->peer_host, memchr(cl->peer_host, ':', hl) != NULL))
		return cerr(c, cfg, K, i, "bad peer host");
	if (cl->peer_port == 0)
		return cerr(c, cfg, K, i, "peer port 0");
	if (chk_keys(c, cfg, K, i, cl) < 0)
		return -1;
	if (cl->enable_tcp != IKETCPD_TCP_NO && cl->enable_tcp != IKETCPD_TCP_YES &&
	    cl->enable_tcp != IKETCPD_TCP_FALLBACK)
		return cerr(c, cfg, K, i, "bad enable-tcp value %d", (int)cl->enable_tcp);
	if (cl->bypass_policy != IKETCPD_BYPASS_AUTO && cl->bypass_policy != 0 &&
	    cl->bypass_policy != 1)
		return cerr(c, cfg, K, i, "bypass-policy %d is not yes, no or auto",
			    cl->bypass_policy);
	if (cl->mark_mask == 0 || (cl->mark & ~cl->mark_mask) != 0)
		return cerr(c, cfg, K, i, "mark 0x%x sets bits outside its mask 0x%x", cl->mark,
			    cl->mark_mask);
	if (cl->reconnect_min_ms > cl->reconnect_max_ms)
		return cerr(c, cfg, K, i, "reconnect-min (%s) is larger than reconnect-max (%s)",
			    fmt_duration(a, sizeof(a), cl->reconnect_min_ms),
			    fmt_duration(b, sizeof(b), cl->reconnect_max_ms));
	return chk_client_tls(c, cfg, i);
}

static int
check_cfg(const struct iketcpd_cfg *cfg, const struct chk *c)
{
	char a[64];
	int i, j, k, l;

	if (cfg->nservers < 0 || cfg->nservers > IKETCPD_MAX_SERVERS || cfg->nclients < 0 ||
	    cfg->nclients > IKETCPD_MAX_CLIENTS)
		return cerr(c, cfg, 0, 0, "bad number of sections (%d servers, %d clients)",
			    cfg->nservers, cfg->nclients);
	if (cfg->nservers + cfg->nclients == 0)
		return cerr(c, cfg, 0, 0, "no [server] or [client NAME] section: nothing to do");
	if (strnlen(cfg->stats_path, sizeof(cfg->stats_path)) >= sizeof(cfg->stats_path) ||
	    (cfg->stats_path[0] != '\0' && cfg->stats_path[0] != '/'))
		return cerr(c, cfg, 0, 0, "stats-socket is not an absolute path");
	if (cfg->stats_mode < -1 || cfg->stats_mode > 0777)
		return cerr(c, cfg, 0, 0, "stats-socket-mode is out of range (0..0777)");
	if (cfg->stats_group[0] && account_problem(cfg->stats_group))
		return cerr(c, cfg, 0, 0, "bad stats-socket-group");
	if (cfg->stats_off && cfg->stats_path[0])
		return cerr(c, cfg, 0, 0, "stats-socket is both none and a path");
	if (cfg->metrics_listen.len != 0 && !addr_valid(&cfg->metrics_listen))
		return cerr(c, cfg, 0, 0, "metrics-listen is not a valid address");
	if ((cfg->user[0] && account_problem(cfg->user)) ||
	    (cfg->group[0] && account_problem(cfg->group)))
		return cerr(c, cfg, 0, 0, "bad user or group");
	/* root's uid with another gid would keep every privilege: refuse */
	if (cfg->group[0] && !cfg->user[0])
		return cerr(c, cfg, 0, 0, "group %s without user: set user too", cfg->group);
	for (i = 0; i < cfg->nservers; i++)
		if (chk_server(c, cfg, i) < 0)
			return -1;
	for (i = 0; i < cfg->nclients; i++)
		if (chk_client(c, cfg, i) < 0)
			return -1;

	/* Names are unique over both kinds: they identify a section in logs. */
	for (i = 0; i < cfg->nservers; i++) {
		for (j = 0; j < i; j++)
			if (strcmp(cfg->servers[i].name, cfg->servers[j].name) == 0)
				return cerr(c, cfg, SECT_SERVER, i, "section name used twice");
	}
	for (i = 0; i < cfg->nclients; i++) {
		for (j = 0; j < i; j++)
			if (strcmp(cfg->clients[i].name, cfg->clients[j].name) == 0)
				return cerr(c, cfg, SECT_CLIENT, i, "section name used twice");
		for (j = 0; j < cfg->nservers; j++)
			if (strcmp(cfg->clients[i].name, cfg->servers[j].name) == 0)
				return cerr(c, cfg, SECT_CLIENT, i,
					    "section name already used by a server");
	}

	/* Each (server i, address k) against every earlier (server j, address l),
	 * over listen and listen-tls together: one port is one or the other. */
	for (i = 0; i < cfg->nservers; i++) {
		const struct iketcpd_server_cfg *s = &cfg->servers[i];
		for (k = 0; k < s->nlisten + s->nlisten_tls; k++) {
			const char *kk, *lk;
			const struct iketcpd_addr *ak = srv_addr(s, k, &kk);
			for (j = 0; j <= i; j++) {
				const struct iketcpd_server_cfg *t = &cfg->servers[j];
				int lmax = j == i ? k : t->nlisten + t->nlisten_tls;
				for (l = 0; l < lmax; l++) {
					if (!iketcpd_addr_equal(ak, srv_addr(t, l, &lk)))
						continue;
					iketcpd_addr_str(ak, a, sizeof(a));
					if (j == i && strcmp(kk, lk) == 0)
						return cerr(c, cfg, SECT_SERVER, i,
							    "%s %s given twice", kk, a);
					if (j == i)
						return cerr(c, cfg, SECT_SERVER, i,
							    "%s %s is also a %s address", kk, a,
							    lk);
					return cerr(c, cfg, SECT_SERVER, i,
						    "%s %s is also used by server \"%s\"", kk, a,
						    t->name);
				}
			}
		}
	}
	for (i = 0; i < cfg->nclients; i++) {
		for (j = 0; j < i; j++) {
			if (!iketcpd_addr_equal(&cfg->clients[i].udp, &cfg->clients[j].udp))
				continue;
			return cerr(c, cfg, SECT_CLIENT, i, "udp %s is also used by client \"%s\"",
				    iketcpd_addr_str(&cfg->clients[i].udp, a, sizeof(a)),
				    cfg->clients[j].name);
		}
	}
	return 0;
}

int
cfg_check(const struct iketcpd_cfg *cfg, const char *src, int args, const unsigned *srv_line,
	  const unsigned *cli_line, char *err, size_t errlen)
{
	struct chk c;

	memset(&c, 0, sizeof(c));
	c.src = src;
	c.args = args;
	c.srv_line = srv_line;
	c.cli_line = cli_line;
	c.err = err;
	c.errlen = errlen;
	return check_cfg(cfg, &c);
}

int
iketcpd_config_check(const struct iketcpd_cfg *cfg, char *err, size_t errlen)
{
	struct chk c;

	memset(&c, 0, sizeof(c));
	c.err = err;
	c.errlen = errlen;
	if (cfg == NULL) {
		cfg_seterr(err, errlen, "no configuration");
		return -1;
	}
	return check_cfg(cfg, &c);
}
