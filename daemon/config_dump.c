/*
 * The dump of iketcpd's configuration (iketcpd -n -v): the effective value
 * of every key, in file syntax, in keyword table order, so that the output
 * parses back to the same configuration.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_int.h"

struct out {
	int fd;
	int failed;
	size_t n;
	char buf[4096];
};

static void
out_flush(struct out *o)
{
	size_t off = 0;
	ssize_t w;

	while (!o->failed && off < o->n) {
		w = write(o->fd, o->buf + off, o->n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			o->failed = 1; /* dump is best effort: nothing to report to */
			break;
		}
		off += (size_t)w;
	}
	o->n = 0;
}

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out_printf(struct out *o, const char *fmt, ...)
{
	char line[CFG_LINE_MAX + 64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	if (o->n + (size_t)n > sizeof(o->buf))
		out_flush(o);
	memcpy(o->buf + o->n, line, (size_t)n);
	o->n += (size_t)n;
}

static void
out_addr(struct out *o, const char *key, const struct iketcpd_addr *a)
{
	char buf[64];

	if (addr_valid(a))
		out_printf(o, "%s = %s\n", key, iketcpd_addr_str(a, buf, sizeof(buf)));
}

static void
out_dur(struct out *o, const char *key, uint32_t ms)
{
	char buf[24];

	out_printf(o, "%s = %s\n", key, fmt_duration(buf, sizeof(buf), ms));
}

static void
out_size(struct out *o, const char *key, uint32_t v)
{
	char buf[24];

	out_printf(o, "%s = %s\n", key, fmt_size(buf, sizeof(buf), v));
}

/* A string setting, only when set. */
static void
out_str(struct out *o, const char *key, const char *v, size_t size)
{
	size_t n = strnlen(v, size - 1);

	if (n > 0)
		out_printf(o, "%s = %.*s\n", key, (int)n, v);
}

/* "auto", or the address without ":0" when any port goes. */
void
dump_local_peer(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	const struct iketcpd_addr *a = &((const struct iketcpd_client_cfg *)sect)->local_peer;
	char buf[64];
	size_t n;

	(void)kw;
	(void)kind;
	if (!local_peer_valid(a))
		return;
	if (a->len == 0) {
		out_printf(o, "local-peer = auto\n");
		return;
	}
	iketcpd_addr_str(a, buf, sizeof(buf));
	n = strlen(buf);
	if (n > 2 && strcmp(buf + n - 2, ":0") == 0)
		buf[n - 2] = '\0';
	out_printf(o, "local-peer = %s\n", buf);
}

#define SRV(sect) ((const struct iketcpd_server_cfg *)(sect))
#define CLI(sect) ((const struct iketcpd_client_cfg *)(sect))
#define CFG(sect) ((const struct iketcpd_cfg *)(sect))

/* main() adds -v to verbose after the check: write the level in effect,
 * 0..VERBOSE_MAX, so that a dump always parses back. */
void
dump_verbose(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	int v = CFG(sect)->verbose;

	(void)kw;
	(void)kind;
	out_printf(o, "verbose = %d\n", v < 0 ? 0 : (v > VERBOSE_MAX ? VERBOSE_MAX : v));
}

void
dump_stats_socket(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	const struct iketcpd_cfg *cfg = CFG(sect);

	(void)kw;
	(void)kind;
	if (cfg->stats_off)
		out_printf(o, "stats-socket = none\n");
	else if (cfg->stats_path[0] != '\0')
		out_printf(o, "stats-socket = %.*s\n", (int)sizeof(cfg->stats_path) - 1,
			   cfg->stats_path);
}

/* Written only when set: the default depends on stats-socket-group. */
void
dump_stats_socket_mode(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	int m = CFG(sect)->stats_mode;

	(void)kind;
	if (m >= 0 && m <= 0777)
		out_printf(o, "%s = %04o\n", kw->name, (unsigned)m);
}

void
dump_stats_socket_group(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	(void)kind;
	out_str(o, kw->name, CFG(sect)->stats_group, IKETCPD_USER_MAX);
}

void
dump_metrics_listen(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	(void)kind;
	if (CFG(sect)->metrics_listen.len != 0)
		out_addr(o, kw->name, &CFG(sect)->metrics_listen);
}

void
dump_user(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	(void)kind;
	out_str(o, kw->name, CFG(sect)->user, IKETCPD_USER_MAX);
}

void
dump_allow_root(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	(void)kind;
	out_printf(o, "%s = %s\n", kw->name, CFG(sect)->allow_root ? "yes" : "no");
}

void
dump_workers(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	unsigned w = CFG(sect)->workers;

	(void)kind;
	if (w == 0)
		out_printf(o, "%s = auto\n", kw->name);
	else
		out_printf(o, "%s = %u\n", kw->name, w);
}

void
dump_group(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	(void)kind;
	out_str(o, kw->name, CFG(sect)->group, IKETCPD_USER_MAX);
}

/* In the largest unit that divides it: digits saturate at 10^12. */
void
dump_max_memory(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	uint64_t m = CFG(sect)->max_memory, d;
	const char *u;

	(void)kw;
	(void)kind;
	if (m == 0)
		return;
	u = m % (1024ull * MIB) == 0 ? "g" : m % MIB == 0 ? "m" : "";
	d = u[0] == 'g' ? 1024ull * MIB : u[0] == 'm' ? MIB : 1;
	out_printf(o, "max-memory = %llu%s\n", (unsigned long long)(m / d), u);
}

static void
out_addrs(struct out *o, const char *key, const struct iketcpd_addr *a, int n)
{
	for (int j = 0; j < n && j < IKETCPD_MAX_LISTEN; j++)
		out_addr(o, key, &a[j]);
}

void
dump_listen(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	(void)kind;
	out_addrs(o, kw->name, SRV(sect)->listen, SRV(sect)->nlisten);
}

void
dump_listen_tls(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	(void)kind;
	out_addrs(o, kw->name, SRV(sect)->listen_tls, SRV(sect)->nlisten_tls);
}

void
dump_backend(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	(void)kind;
	out_addr(o, kw->name, &SRV(sect)->backend);
}

void
dump_backend_source(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	const struct iketcpd_server_cfg *s = SRV(sect);
	char pb[INET6_ADDRSTRLEN + 8];

	(void)kw;
	(void)kind;
	if (s->backend_source_mode == IKETCPD_BSRC_PREFIX)
		out_printf(o, "backend-source = %s\n",
			   iketcpd_prefix_str(&s->backend_source, pb, sizeof(pb)));
	else
		out_printf(o, "backend-source = %s\n",
			   s->backend_source_mode == IKETCPD_BSRC_NONE ? "none" : "auto");
}

void
dump_sniff_tls(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	int v = SRV(sect)->sniff_tls;

	(void)kw;
	(void)kind;
	out_printf(o, "sniff-tls = %s\n", v == IKETCPD_SNIFF_AUTO ? "auto" : v ? "yes" : "no");
}

void
dump_bypass_policy(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	int v = CLI(sect)->bypass_policy;

	(void)kw;
	(void)kind;
	out_printf(o, "bypass-policy = %s\n", v == IKETCPD_BYPASS_AUTO ? "auto" : v ? "yes" : "no");
}

void
dump_mark(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	const struct iketcpd_client_cfg *c = CLI(sect);

	(void)kw;
	(void)kind;
	if (!c->mark)
		return;
	if (c->mark_mask == 0xffffffffu)
		out_printf(o, "mark = 0x%x\n", c->mark);
	else
		out_printf(o, "mark = 0x%x/0x%x\n", c->mark, c->mark_mask);
}

void
dump_proxy_protocol_from(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	const struct iketcpd_server_cfg *s = SRV(sect);
	char pb[INET6_ADDRSTRLEN + 8];

	(void)kw;
	(void)kind;
	for (int j = 0; j < s->nproxy_from && j < IKETCPD_MAX_PROXY_FROM; j++)
		out_printf(o, "proxy-protocol-from = %s\n",
			   iketcpd_prefix_str(&s->proxy_from[j], pb, sizeof(pb)));
}

void
dump_udp(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	(void)kind;
	out_addr(o, kw->name, &CLI(sect)->udp);
}

/* HOST:PORT, an IPv6 host in brackets; prefix is "" or "http://". */
static void
out_hostport(struct out *o, const char *key, const char *prefix, const char *host, uint16_t port)
{
	size_t hl = strnlen(host, IKETCPD_HOST_MAX - 1);

	if (hl > 0 && memchr(host, ':', hl) != NULL)
		out_printf(o, "%s = %s[%.*s]:%u\n", key, prefix, (int)hl, host, port);
	else if (hl > 0)
		out_printf(o, "%s = %s%.*s:%u\n", key, prefix, (int)hl, host, port);
}

void
dump_peer(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	(void)kind;
	out_hostport(o, kw->name, "", CLI(sect)->peer_host, CLI(sect)->peer_port);
}

void
dump_proxy(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	(void)kind;
	out_hostport(o, kw->name, "http://", CLI(sect)->proxy_host, CLI(sect)->proxy_port);
}

void
dump_enable_tcp(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	static const char *const tcp_mode[] = {"no", "yes", "fallback"};
	enum iketcpd_enable_tcp m = CLI(sect)->enable_tcp;

	(void)kw;
	(void)kind;
	if ((unsigned)m <= IKETCPD_TCP_FALLBACK)
		out_printf(o, "enable-tcp = %s\n", tcp_mode[m]);
}

void
dump_tls_min_version(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	const struct iketcpd_tls_opts *t = kind == SECT_SERVER ? &SRV(sect)->tls : &CLI(sect)->tls;

	(void)kw;
	out_printf(o, "tls-min-version = %s\n", t->min_version == IKETCPD_TLS_V13 ? "1.3" : "1.2");
}

/* Writes the lines of one key of a section of kind (or the globals). */
static void
out_key(struct out *o, const struct kw *kw, unsigned kind, const void *sect)
{
	const char *f = (const char *)sect + kw_off(kw, kind);
	uint32_t v;
	int b;

	if (kw->dump != NULL) {
		kw->dump(o, kw, kind, sect);
		return;
	}
	switch (kw->kind) {
	case V_DURATION:
		memcpy(&v, f, sizeof(v));
		if (v == 0 && (kw->flags & KW_OFF))
			out_printf(o, "%s = off\n", kw->name);
		else
			out_dur(o, kw->name, v);
		break;
	case V_COUNT:
		memcpy(&v, f, sizeof(v));
		if (v != 0 || !(kw->flags & KW_UNSET0))
			out_printf(o, "%s = %u\n", kw->name, v);
		break;
	case V_SIZE:
		memcpy(&v, f, sizeof(v));
		out_size(o, kw->name, v);
		break;
	case V_BOOL:
		memcpy(&b, f, sizeof(b));
		out_printf(o, "%s = %s\n", kw->name, b ? "yes" : "no");
		break;
	case V_STR:
		out_str(o, kw->name, f, kw->max);
		break;
	case V_FN: /* no dump function: written as another key */
		break;
	}
}

/* Writes every key of a section of kind (or the globals), in table order. */
static void
out_keys(struct out *o, unsigned kind, const void *sect)
{
	for (size_t i = 0; i < kw_count; i++)
		if (kwtab[i].sections & kind)
			out_key(o, &kwtab[i], kind, sect);
}

size_t
kw_default_text(const struct kw *kw, unsigned kind, const void *sect, char *buf, size_t len)
{
	struct out o; /* 4 KiB: one key's lines fit, so nothing is flushed to fd -1 */
	size_t n = 0, pre = strlen(kw->name) + 3; /* "KEY = " */

	o.fd = -1;
	o.failed = 0;
	o.n = 0;
	out_key(&o, kw, kind, sect);
	if (len == 0)
		return 0;
	/* "KEY = A\nKEY = B\n" -> "A, B" */
	for (size_t i = 0; i + pre < o.n;) {
		char *nl = memchr(o.buf + i, '\n', o.n - i);
		size_t end = nl ? (size_t)(nl - o.buf) : o.n, m = end - i - pre;
		if (n && n + 2 < len) {
			memcpy(buf + n, ", ", 2);
			n += 2;
		}
		if (m > len - 1 - n)
			m = len - 1 - n;
		memcpy(buf + n, o.buf + i + pre, m);
		n += m;
		i = end + 1;
	}
	buf[n] = '\0';
	return n;
}

void
iketcpd_config_dump(const struct iketcpd_cfg *cfg, int fd)
{
	struct out *o;
	int i;

	if (cfg == NULL || (o = malloc(sizeof(*o))) == NULL)
		return;
	o->fd = fd;
	o->failed = 0;
	o->n = 0;
	out_printf(o, "# iketcpd effective configuration\n");
	out_keys(o, SECT_GLOBAL, cfg);
	for (i = 0; i < cfg->nservers && i < IKETCPD_MAX_SERVERS; i++) {
		out_printf(o, "\n[server %.*s]\n", IKETCPD_NAME_MAX - 1, cfg->servers[i].name);
		out_keys(o, SECT_SERVER, &cfg->servers[i]);
	}
	for (i = 0; i < cfg->nclients && i < IKETCPD_MAX_CLIENTS; i++) {
		out_printf(o, "\n[client %.*s]\n", IKETCPD_NAME_MAX - 1, cfg->clients[i].name);
		out_keys(o, SECT_CLIENT, &cfg->clients[i]);
	}
	out_flush(o);
	free(o);
}
