/*
 * iketcpd configuration parser: config files and command-line flags (see
 * config.h; the reference of every keyword is docs/iketcpd.conf.md).
 *
 * Shape:
 *
 *   - a push-fed parser: parser_begin() / parser_line() / parser_finish();
 *     iketcpd_config_parse_buf() only cuts the input into lines;
 *   - ONE keyword table (kwtab, config_keys.c) maps a word to the sections
 *     it is valid in and to its type or parse_<key>() handler. The file
 *     syntax (`key = value`) and the command line (`--key value`,
 *     `--key=value`) both go through dispatch(), so they accept exactly the
 *     same words and values;
 *   - numbers are read digit by digit through the bounded cursor, saturate
 *     instead of overflowing, and are range-checked against the table's
 *     limits, which iketcpd_config_check() applies again to the result;
 *   - the parser works on a private copy of the configuration and copies it
 *     back only when everything, including the cross-field checks, passed:
 *     a failed parse (a bad SIGHUP reload) leaves the caller's struct as it
 *     was.
 *
 * Every byte of a config file is read through struct iketcp_cur: lines are
 * cut with iketcp_cur_sub() and copied out with iketcp_cur_get_bytes()
 * into a bounded local buffer, after which they are checked for NUL and
 * control bytes. Values (file or argv) are NUL-terminated strings of at most
 * CFG_LINE_MAX bytes; numbers, ports and addresses are decoded from them
 * through a cursor again.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_int.h"
#include "iketcp/tls.h"

/* ---- the parser ------------------------------------------------------------------------ */

struct parser {
	struct iketcpd_cfg *cfg;        /* the private working copy */
	const char *src;                /* file name, or "command line" */
	unsigned line;                  /* current line; 0 on the command line */
	int args;                       /* 1: command line (keys are spelt --key) */
	unsigned sect;                  /* SECT_* of the current section */
	unsigned allowed;               /* SECT_* bits a key may have here */
	struct iketcpd_server_cfg *srv; /* current section, or NULL */
	struct iketcpd_client_cfg *cli;
	const struct kw *kw;   /* key being parsed */
	int first;             /* first time kw is seen in this section */
	int listen_own;        /* listen / listen-tcp replaced the default pair here */
	unsigned seen[KW_MAX]; /* line where each key was set in this section (1 on argv) */
	unsigned srv_line[IKETCPD_MAX_SERVERS]; /* header line of new sections, 0: unknown */
	unsigned cli_line[IKETCPD_MAX_CLIENTS];
	const char *base; /* directory that relative file names are in; NULL: kept relative */
	char *err;
	size_t errlen;
};

static int perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sets "SRC:LINE: message" (or "command line: message"). Returns -1. */
static int
perr(struct parser *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->args)
		cfg_seterr(p->err, p->errlen, "%s: %s", p->src, msg);
	else
		cfg_seterr(p->err, p->errlen, "%s:%u: %s", p->src, p->line, msg);
	return -1;
}

static int bad_value(struct parser *p, const char *val, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Sets "LOC: KEY: "VALUE" REASON" for the key being parsed. Returns -1. */
static int
bad_value(struct parser *p, const char *val, const char *fmt, ...)
{
	char why[256], q[QUOTE_BUF];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	cfg_quote(q, sizeof(q), val, strnlen(val, CFG_LINE_MAX + 1));
	return perr(p, "%s%s: %s %s", p->args ? "--" : "", p->kw->name, q, why);
}

/* Number checks shared by the handlers; they report with bad_value(). */

static int
get_count(struct parser *p, const char *val, uint32_t min, uint32_t max, uint32_t *dst)
{
	uint64_t v;

	switch (dec_count(val, min, max, &v)) {
	case NUM_OK:
		*dst = (uint32_t)v;
		return 0;
	case NUM_RANGE:
		return bad_value(p, val, "is out of range (%u..%u)", min, max);
	case NUM_SYNTAX:
		break;
	}
	return bad_value(p, val, "is not a number (expected digits, %u..%u)", min, max);
}

static int
get_duration(struct parser *p, const char *val, uint32_t min, uint32_t max, uint32_t *dst)
{
	char a[24], b[24];

	switch (dec_duration(val, min, max, dst)) {
	case NUM_OK:
		return 0;
	case NUM_RANGE:
		return bad_value(p, val, "is out of range (%s..%s)",
				 fmt_duration(a, sizeof(a), min), fmt_duration(b, sizeof(b), max));
	case NUM_SYNTAX:
		break;
	}
	return bad_value(p, val,
			 "is not a duration (e.g. 500ms, 5s, 2m, 1h; a bare number is seconds)");
}

static int
get_size(struct parser *p, const char *val, uint32_t min, uint32_t max, uint32_t *dst)
{
	char a[24], b[24];

	switch (dec_size(val, min, max, dst)) {
	case NUM_OK:
		return 0;
	case NUM_RANGE:
		return bad_value(p, val, "is out of range (%s..%s)", fmt_size(a, sizeof(a), min),
				 fmt_size(b, sizeof(b), max));
	case NUM_SYNTAX:
		break;
	}
	return bad_value(p, val, "is not a size (bytes, or with a k or m suffix)");
}

static int
get_bool(struct parser *p, const char *val, int *dst)
{
	int v = dec_bool(val);

	if (v < 0)
		return bad_value(p, val, "is not yes/no (or true/false, on/off)");
	*dst = v;
	return 0;
}

static int
get_addr(struct parser *p, const char *val, struct iketcpd_addr *dst)
{
	if (iketcpd_parse_addr(val, CFG_DEFAULT_PORT, dst) < 0)
		return bad_value(p, val,
				 "is not an address (numeric IPV4[:PORT] or [IPV6][:PORT], "
				 "port 1..65535)");
	return 0;
}

/* The field of the key being parsed in the current section (the section
 * check before the call guarantees that it has one). */
static void *
key_field(struct parser *p)
{
	return p->srv ? (char *)p->srv + p->kw->srv_off : (char *)p->cli + p->kw->cli_off;
}

/* A field that both section kinds have, in the current section. */
#define SHARED(field) (p->srv ? &p->srv->field : &p->cli->field)

/* ---- one parse_<key>() per key ------------------------------------------------------------ */

int
parse_verbose(struct parser *p, const char *val)
{
	uint32_t v = 0; /* set on success only */

	if (get_count(p, val, 0, VERBOSE_MAX, &v) < 0)
		return -1;
	p->cfg->verbose = (int)v;
	return 0;
}

/* Bytes, or with a k, m or g suffix; 1m..1024g. */
int
parse_max_memory(struct parser *p, const char *val)
{
	struct iketcp_cur c;
	uint64_t v, unit = 1;
	char suf[3];

	if (cur_over_str(&c, val, CFG_LINE_MAX) < 0 || cur_get_dec(&c, &v) == 0 ||
	    cur_get_suffix(&c, suf) < 0)
		return bad_value(p, val, "is not a size (bytes, or with a k, m or g suffix)");
	if (strcmp(suf, "k") == 0 || strcmp(suf, "K") == 0)
		unit = KIB;
	else if (strcmp(suf, "m") == 0 || strcmp(suf, "M") == 0)
		unit = MIB;
	else if (strcmp(suf, "g") == 0 || strcmp(suf, "G") == 0)
		unit = 1024ull * MIB;
	else if (suf[0] != '\0')
		return bad_value(p, val, "is not a size (bytes, or with a k, m or g suffix)");
	if (v > CFG_MAX_MEMORY_MAX / unit || v * unit < CFG_MAX_MEMORY_MIN)
		return bad_value(p, val, "is out of range (1m..1024g)");
	p->cfg->max_memory = v * unit;
	return 0;
}

/* auto (0: one per online CPU, counted at start) or 1..IKETCPD_WORKERS_MAX. */
int
parse_workers(struct parser *p, const char *val)
{
	uint32_t v = 1;

	if (strcmp(val, "auto") == 0) {
		p->cfg->workers = 0;
		return 0;
	}
	if (get_count(p, val, 1, IKETCPD_WORKERS_MAX, &v) < 0)
		return -1;
	p->cfg->workers = v;
	return 0;
}

/* An absolute path that fits in sun_path with its NUL, or none. */
int
parse_stats_socket(struct parser *p, const char *val)
{
	size_t n = strnlen(val, CFG_STATS_PATH_MAX);

	if (strcmp(val, "none") == 0) {
		memset(p->cfg->stats_path, 0, sizeof(p->cfg->stats_path));
		p->cfg->stats_off = 1;
		return 0;
	}
	if (val[0] != '/')
		return bad_value(p, val, "is not an absolute path (or none)");
	p->cfg->stats_off = 0;
	if (n >= CFG_STATS_PATH_MAX)
		return bad_value(p, val, "is too long for a unix socket path (at most %d bytes)",
				 CFG_STATS_PATH_MAX - 1);
	memset(p->cfg->stats_path, 0, sizeof(p->cfg->stats_path));
	memcpy(p->cfg->stats_path, val, n);
	return 0;
}

/* Octal permission bits, 0..0777 (a leading 0 is optional, as for chmod). */
int
parse_stats_socket_mode(struct parser *p, const char *val)
{
	struct iketcp_cur c;
	unsigned v = 0;
	size_t n = 0;
	uint8_t d;

	if (cur_over_str(&c, val, CFG_LINE_MAX) < 0)
		return bad_value(p, val, "is not an octal mode");
	while (iketcp_cur_get_u8(&c, &d) == IKETCP_OK) {
		if (d < '0' || d > '7' || ++n > 4)
			return bad_value(p, val, "is not an octal mode (such as 0660)");
		v = v * 8 + (unsigned)(d - '0');
	}
	if (n == 0)
		return bad_value(p, val, "is not an octal mode (such as 0660)");
	if (v > 0777)
		return bad_value(p, val, "has bits beyond 0777 (no setuid, setgid or sticky)");
	p->cfg->stats_mode = (int)v;
	return 0;
}

static int parse_account(struct parser *p, const char *val, char dst[IKETCPD_USER_MAX]);

int
parse_stats_socket_group(struct parser *p, const char *val)
{
	return parse_account(p, val, p->cfg->stats_group);
}

/* ADDR[:PORT] (port 9575 when omitted), or none/off. */
int
parse_metrics_listen(struct parser *p, const char *val)
{
	if (strcmp(val, "none") == 0 || strcmp(val, "off") == 0) {
		memset(&p->cfg->metrics_listen, 0, sizeof(p->cfg->metrics_listen));
		return 0;
	}
	if (iketcpd_parse_addr(val, CFG_METRICS_PORT, &p->cfg->metrics_listen) < 0)
		return bad_value(p, val,
				 "is not an address (numeric IPV4[:PORT] or [IPV6][:PORT], "
				 "port 1..65535, or none)");
	return 0;
}

static int
parse_account(struct parser *p, const char *val, char dst[IKETCPD_USER_MAX])
{
	const char *why = account_problem(val);

	if (why)
		return bad_value(p, val, "%s", why);
	memset(dst, 0, IKETCPD_USER_MAX);
	memcpy(dst, val, strlen(val));
	return 0;
}

int
parse_user(struct parser *p, const char *val)
{
	return parse_account(p, val, p->cfg->user);
}

int
parse_allow_root(struct parser *p, const char *val)
{
	int v = dec_bool(val);

	if (v < 0)
		return bad_value(p, val, "is not yes or no");
	p->cfg->allow_root = v;
	return 0;
}

int
parse_group(struct parser *p, const char *val)
{
	return parse_account(p, val, p->cfg->group);
}

/* Why a is no new listen or listen-tls address of s, or NULL. */
static const char *
listen_taken(const struct iketcpd_server_cfg *s, const struct iketcpd_addr *a)
{
	for (int i = 0; i < s->nlisten; i++)
		if (iketcpd_addr_equal(&s->listen[i], a))
			return "is already a listen address of this server";
	for (int i = 0; i < s->nlisten_tls; i++)
		if (iketcpd_addr_equal(&s->listen_tls[i], a))
			return "is already a listen-tls address of this server";
	return NULL;
}

/* Repeatable: the first one replaces the default pair, later ones add. */
int
parse_listen(struct parser *p, const char *val)
{
	struct iketcpd_server_cfg *s = p->srv;
	struct iketcpd_addr a;
	const char *why;

	if (get_addr(p, val, &a) < 0)
		return -1;
	if (!p->listen_own) {
		memset(s->listen, 0, sizeof(s->listen));
		s->nlisten = 0;
		p->listen_own = 1;
	}
	if ((why = listen_taken(s, &a)) != NULL)
		return bad_value(p, val, "%s", why);
	if (s->nlisten >= IKETCPD_MAX_LISTEN)
		return bad_value(p, val, "is one listen address too many (at most %d)",
				 IKETCPD_MAX_LISTEN);
	s->listen[s->nlisten++] = a;
	return 0;
}

/*
 * libreswan's "listen-tcp" (config setup), for operators who know it: yes =
 * listen on TCP, which a server section always does (on its listen
 * addresses, by default port 4500 everywhere, as libreswan); an address =
 * one more listen address. "no" would mean a server that does not listen.
 */
int
parse_listen_tcp(struct parser *p, const char *val)
{
	switch (dec_bool(val)) {
	case 1:
		return 0;
	case 0:
		return bad_value(p, val,
				 "cannot be: a [server] section always listens on TCP (remove the "
				 "section instead)");
	default:
		return parse_listen(p, val);
	}
}

int
parse_backend(struct parser *p, const char *val)
{
	return get_addr(p, val, &p->srv->backend);
}

/* auto | none | PREFIX: where each session's socket to the backend binds. */
int
parse_backend_source(struct parser *p, const char *val)
{
	struct iketcpd_server_cfg *s = p->srv;

	memset(&s->backend_source, 0, sizeof(s->backend_source));
	if (strcmp(val, "auto") == 0) {
		s->backend_source_mode = IKETCPD_BSRC_AUTO;
		return 0;
	}
	if (strcmp(val, "none") == 0) {
		s->backend_source_mode = IKETCPD_BSRC_NONE;
		return 0;
	}
	if (iketcpd_parse_prefix(val, &s->backend_source) < 0 || s->backend_source.bits < 8 ||
	    s->backend_source.bits > (s->backend_source.family == AF_INET ? 30 : 126))
		return bad_value(p, val,
				 "is not auto, none or a prefix with room for clients (e.g. "
				 "127.0.0.0/8, fd00:1::/64; /8../30 or /8../126)");
	s->backend_source_mode = IKETCPD_BSRC_PREFIX;
	return 0;
}

int
parse_udp(struct parser *p, const char *val)
{
	return get_addr(p, val, &p->cli->udp);
}

/* HOST[:PORT]: kept as text for the daemon to resolve; only its syntax is checked. */
int
parse_peer(struct parser *p, const char *val)
{
	struct iketcpd_client_cfg *c = p->cli;
	struct hostport hp;

	if (split_hostport(val, CFG_DEFAULT_PORT, &hp) < 0 || !valid_peer_host(hp.host, hp.v6))
		return bad_value(p, val,
				 "is not a peer (HOST[:PORT], IPV4[:PORT] or [IPV6][:PORT], "
				 "port 1..65535)");
	memset(c->peer_host, 0, sizeof(c->peer_host));
	memcpy(c->peer_host, hp.host, strlen(hp.host));
	c->peer_port = hp.port;
	return 0;
}

int
parse_enable_tcp(struct parser *p, const char *val)
{
	int v = dec_bool(val);

	if (strcasecmp(val, "fallback") == 0)
		p->cli->enable_tcp = IKETCPD_TCP_FALLBACK;
	else if (v == 1)
		p->cli->enable_tcp = IKETCPD_TCP_YES;
	else if (v == 0)
		p->cli->enable_tcp = IKETCPD_TCP_NO;
	else
		return bad_value(p, val, "is not yes, no or fallback");
	return 0;
}
/* auto, or a numeric ADDR[:PORT]: without a port, any port of ADDR. */
int
parse_local_peer(struct parser *p, const char *val)
{
	struct iketcpd_addr a, b;

	if (strcasecmp(val, "auto") == 0) {
		memset(&p->cli->local_peer, 0, sizeof(p->cli->local_peer));
		return 0;
	}
	/* Two default ports: the results differ only when no port was written. */
	if (iketcpd_parse_addr(val, 1, &a) < 0 || iketcpd_parse_addr(val, 2, &b) < 0)
		return bad_value(p, val,
				 "is not auto or an address (numeric IPV4[:PORT] or "
				 "[IPV6][:PORT], port 1..65535; no port: any port)");
	if (!iketcpd_addr_equal(&a, &b))
		iketcpd_addr_set_port(&a, 0);
	memcpy(&p->cli->local_peer, &a, sizeof(a));
	return 0;
}

/* ---- TLS and proxy keys (issue #4) ---------------------------------------------------- */

#define TLS_DEFAULT_PORT 443 /* listen-tls without a port */
#define HTTP_DEFAULT_PORT 80 /* proxy http://HOST without a port */

/*
 * Repeatable, like listen. The first listen-tls of a section that has no
 * listen (yet) also drops the default plain pair: a server given only
 * listen-tls is TLS-only. A later listen starts its own list as usual.
 */
int
parse_listen_tls(struct parser *p, const char *val)
{
	struct iketcpd_server_cfg *s = p->srv;
	struct iketcpd_addr a;
	const char *why;

	if (iketcpd_parse_addr(val, TLS_DEFAULT_PORT, &a) < 0)
		return bad_value(p, val,
				 "is not an address (numeric IPV4[:PORT] or [IPV6][:PORT], "
				 "port 1..65535, default 443)");
	if (p->first) {
		memset(s->listen_tls, 0, sizeof(s->listen_tls));
		s->nlisten_tls = 0;
		if (!p->listen_own) {
			memset(s->listen, 0, sizeof(s->listen));
			s->nlisten = 0;
		}
	}
	if ((why = listen_taken(s, &a)) != NULL)
		return bad_value(p, val, "%s", why);
	if (s->nlisten_tls >= IKETCPD_MAX_LISTEN)
		return bad_value(p, val, "is one listen-tls address too many (at most %d)",
				 IKETCPD_MAX_LISTEN);
	s->listen_tls[s->nlisten_tls++] = a;
	return 0;
}

/* Copies a string value that must fit in dst (size bytes with the NUL). */
static int
get_string(struct parser *p, const char *val, char *dst, size_t size, const char *what)
{
	size_t n = strnlen(val, size);

	if (n >= size)
		return bad_value(p, val, "is too long for %s (at most %zu bytes)", what, size - 1);
	memset(dst, 0, size);
	memcpy(dst, val, n);
	return 0;
}

/* A file name, made absolute against p->base when relative. */
static int
get_path(struct parser *p, const char *val, char *dst, size_t size)
{
	size_t bl, vl;

	if (val[0] == '/' || p->base == NULL)
		return get_string(p, val, dst, size, "a file name");
	bl = strlen(p->base);
	vl = strnlen(val, size);
	if (bl + 1 + vl >= size)
		return bad_value(p, val, "is too long for a file name in %s (at most %zu bytes)",
				 p->base[0] ? p->base : "/", size - 1);
	memset(dst, 0, size);
	memcpy(dst, p->base, bl);
	dst[bl] = '/';
	memcpy(dst + bl + 1, val, vl);
	return 0;
}

int
parse_tls_min_version(struct parser *p, const char *val)
{
	int *dst = SHARED(tls.min_version);

	if (strcmp(val, "1.2") == 0)
		*dst = IKETCPD_TLS_V12;
	else if (strcmp(val, "1.3") == 0)
		*dst = IKETCPD_TLS_V13;
	else
		return bad_value(p, val, "is not a TLS version (1.2 or 1.3)");
	return 0;
}

/*
 * An OpenSSL list (ciphers, TLS 1.3 suites, groups): names of letters,
 * digits, '-', '_', '.', '+', '!', '@' and '=' separated by ':' or ','.
 * OpenSSL checks the names when the context is built (iketcpd -n does).
 */
static int
get_tls_list(struct parser *p, const char *val, char *dst, size_t size)
{
	for (const char *c = val; *c; c++) {
		char ch = *c;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr("-_.+!@=:,", ch) != NULL))
			return bad_value(p, val,
					 "is not an OpenSSL list (names separated by ':', no "
					 "blanks)");
	}
	return get_string(p, val, dst, size, "a TLS list");
}

/* tls-ciphers, tls-ciphersuites, tls-groups: into the key's field. */
int
parse_tls_list(struct parser *p, const char *val)
{
	return get_tls_list(p, val, key_field(p), p->kw->max);
}

/* yes | no | auto (auto: yes when tls-cert is set; what the dump writes by default). */
int
parse_sniff_tls(struct parser *p, const char *val)
{
	int v = dec_bool(val);

	if (strcasecmp(val, "auto") == 0)
		p->srv->sniff_tls = IKETCPD_SNIFF_AUTO;
	else if (v >= 0)
		p->srv->sniff_tls = v;
	else
		return bad_value(p, val, "is not yes, no or auto");
	return 0;
}

/* yes | no | auto (auto: try, without keeping CAP_NET_ADMIN for it). */
int
parse_bypass_policy(struct parser *p, const char *val)
{
	int v = dec_bool(val);

	if (strcasecmp(val, "auto") == 0)
		p->cli->bypass_policy = IKETCPD_BYPASS_AUTO;
	else if (v >= 0)
		p->cli->bypass_policy = v;
	else
		return bad_value(p, val, "is not yes, no or auto");
	return 0;
}

int
parse_mark(struct parser *p, const char *val)
{
	switch (dec_mark(val, &p->cli->mark, &p->cli->mark_mask)) {
	case NUM_OK:
		return 0;
	case NUM_RANGE:
		return bad_value(p, val,
				 "is out of range (VALUE and MASK are 1..0xffffffff, and VALUE "
				 "sets no bit outside MASK)");
	default:
		return bad_value(p, val, "is not a mark VALUE[/MASK] (e.g. 0x42 or 0x4200/0xff00)");
	}
}

/* Repeatable: the load balancers allowed to send PROXY headers. */
int
parse_proxy_protocol_from(struct parser *p, const char *val)
{
	struct iketcpd_server_cfg *s = p->srv;
	struct iketcpd_prefix x;

	if (iketcpd_parse_prefix(val, &x) < 0)
		return bad_value(p, val,
				 "is not an address or prefix (e.g. 192.0.2.10, 10.0.0.0/8, "
				 "2001:db8::/32; no bits set after the prefix length)");
	if (p->first)
		s->nproxy_from = 0;
	if (s->nproxy_from >= IKETCPD_MAX_PROXY_FROM)
		return bad_value(p, val, "is one proxy-protocol-from too many (at most %d)",
				 IKETCPD_MAX_PROXY_FROM);
	s->proxy_from[s->nproxy_from++] = x;
	return 0;
}

/* A DNS name or an IP literal (IPv6 without brackets), as checked in the certificate. */
int
parse_tls_server_name(struct parser *p, const char *val)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (!valid_hostname(val) && inet_pton(AF_INET, val, &a4) != 1 &&
	    inet_pton(AF_INET6, val, &a6) != 1)
		return bad_value(p, val,
				 "is not a server name (a DNS name, or an IPv4 or IPv6 address "
				 "without brackets)");
	return get_string(p, val, p->cli->tls_server_name, sizeof(p->cli->tls_server_name),
			  "a server name");
}

int
parse_tls_pin_sha256(struct parser *p, const char *val)
{
	uint8_t pin[IKETCP_TLS_PIN_LEN];

	/* libiketcp's own parser: the daemon accepts what the context will */
	if (iketcp_tls_pin_parse(val, pin) != IKETCP_OK)
		return bad_value(p, val,
				 "is not a SHA-256 public key pin (64 hex digits, or 44 "
				 "characters of base64, optionally after sha256//)");
	return get_string(p, val, p->cli->tls_pin, sizeof(p->cli->tls_pin), "a pin");
}

/* http://HOST[:PORT][/]: the web proxy to send CONNECT to (port 80 by default). */
int
parse_proxy(struct parser *p, const char *val)
{
	struct iketcpd_client_cfg *c = p->cli;
	char rest[IKETCPD_HOST_MAX + 16];
	struct hostport hp;
	size_t n;

	if (strncasecmp(val, "https://", 8) == 0)
		return bad_value(p, val,
				 "is not supported: only http:// proxies (TLS to the peer runs "
				 "inside the tunnel: tls = yes)");
	if (strncasecmp(val, "http://", 7) != 0)
		return bad_value(p, val, "is not a proxy URL (http://HOST:PORT)");
	n = strnlen(val + 7, sizeof(rest));
	if (n >= sizeof(rest))
		return bad_value(p, val, "is too long for a proxy URL");
	memcpy(rest, val + 7, n);
	rest[n] = '\0';
	if (n > 0 && rest[n - 1] == '/')
		rest[--n] = '\0';
	if (memchr(rest, '@', n) != NULL)
		return bad_value(p, val,
				 "has credentials in the URL: give them with proxy-auth "
				 "USER:PASS");
	if (n == 0 || split_hostport(rest, HTTP_DEFAULT_PORT, &hp) < 0 ||
	    !valid_peer_host(hp.host, hp.v6))
		return bad_value(p, val,
				 "is not a proxy URL (http://HOST:PORT, HOST a name, IPV4 or "
				 "[IPV6], port 1..65535)");
	memset(c->proxy_host, 0, sizeof(c->proxy_host));
	memcpy(c->proxy_host, hp.host, strlen(hp.host));
	c->proxy_port = hp.port;
	return 0;
}

/* USER:PASS for Basic authentication (RFC 7617): the user has no ':'. */
int
parse_proxy_auth(struct parser *p, const char *val)
{
	const char *colon = strchr(val, ':');
	size_t n = strnlen(val, sizeof(p->cli->proxy_auth));

	/* The value is a secret: messages do not quote it. */
	if (colon == NULL || colon == val)
		return perr(p,
			    "%sproxy-auth: the value (not shown) is not USER:PASS (a user name, "
			    "':', a password)",
			    p->args ? "--" : "");
	if (n >= sizeof(p->cli->proxy_auth))
		return perr(p,
			    "%sproxy-auth: the value (not shown) is too long (at most %zu bytes)",
			    p->args ? "--" : "", sizeof(p->cli->proxy_auth) - 1);
	memset(p->cli->proxy_auth, 0, sizeof(p->cli->proxy_auth));
	memcpy(p->cli->proxy_auth, val, n);
	return 0;
}

/* ---- dispatch: shared by the file and the command line ------------------------------ */

static int
is_space(int ch)
{
	return ch == ' ' || ch == '\t';
}

/*
 * What a value may be, so that the file and the command line accept the
 * same set and a dump always parses back: not empty, at most CFG_LINE_MAX
 * bytes, no control bytes other than tab, no leading or trailing blank, and
 * no '#' at the start or after a blank (the file syntax reads those as a
 * comment).
 */
static const char *
value_problem(const char *val)
{
	size_t n = strnlen(val, CFG_LINE_MAX + 1), i;

	if (n == 0)
		return "is empty";
	if (n > CFG_LINE_MAX)
		return "is too long";
	if (is_space(val[0]) || is_space(val[n - 1]))
		return "starts or ends with a blank";
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)val[i];
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return "contains a control character";
		if (ch == '#' && (i == 0 || is_space(val[i - 1])))
			return "contains a comment mark (# at the start or after a blank)";
	}
	return NULL;
}

/* Where a key belongs, for messages. */
static const char *
sect_label(unsigned sections, int args)
{
	if (sections & SECT_GLOBAL)
		return args ? "a global option" : "a global key";
	if ((sections & SECT_SERVER) && (sections & SECT_CLIENT))
		return args ? "a server and client option" : "a [server] and [client] key";
	if (sections & SECT_SERVER)
		return args ? "a server option" : "a [server] key";
	return args ? "a client option" : "a [client NAME] key";
}

/* A key's value into the current section: through its parse function, or
 * by its table row. */
static int
parse_value(struct parser *p, const struct kw *kw, const char *val)
{
	void *f;

	if (kw->parse != NULL)
		return kw->parse(p, val);
	f = key_field(p);
	switch (kw->kind) {
	case V_DURATION:
		if ((kw->flags & KW_OFF) && (strcmp(val, "0") == 0 || strcmp(val, "off") == 0)) {
			memset(f, 0, sizeof(uint32_t));
			return 0;
		}
		return get_duration(p, val, kw->min, kw->max, f);
	case V_COUNT:
		return get_count(p, val, kw->min, kw->max, f);
	case V_SIZE:
		return get_size(p, val, kw->min, kw->max, f);
	case V_BOOL:
		return get_bool(p, val, f);
	case V_STR:
		return get_path(p, val, f, kw->max);
	case V_FN:
		break;
	}
	return -1;
}

static int
dispatch(struct parser *p, const char *key, const char *val)
{
	const struct kw *kw = kw_find(key);
	char q[QUOTE_BUF];
	const char *why;
	size_t idx;

	if (p->args) {
		char opt[CFG_QUOTE_MAX + 8];
		snprintf(opt, sizeof(opt), "--%s", key);
		cfg_quote(q, sizeof(q), opt, strnlen(opt, sizeof(opt)));
	} else {
		cfg_quote(q, sizeof(q), key, strnlen(key, CFG_LINE_MAX + 1));
	}
	if (kw == NULL) {
		const struct kw *near = kw_nearest(key, p->allowed);
		if (near)
			return perr(p, "unknown %s %s (did you mean \"%s%s\"?)",
				    p->args ? "option" : "key", q, p->args ? "--" : "", near->name);
		return perr(p, "unknown %s %s", p->args ? "option" : "key", q);
	}
	p->kw = kw;
	if ((kw->sections & p->allowed) == 0) {
		if (p->args)
			return perr(p, "--%s is %s, not valid in %s mode", kw->name,
				    sect_label(kw->sections, 1),
				    p->sect == SECT_SERVER ? "server" : "client");
		if (kw->sections & SECT_GLOBAL)
			return perr(p, "%s is a global key: put it before the first section", q);
		if (p->sect == SECT_GLOBAL)
			return perr(p, "%s outside a section: it is %s", q,
				    sect_label(kw->sections, 0));
		return perr(p, "%s is %s, not valid in [%s %s]", q, sect_label(kw->sections, 0),
			    p->sect == SECT_SERVER ? "server" : "client",
			    p->srv ? p->srv->name : p->cli->name);
	}
	idx = (size_t)(kw - kwtab);
	if (p->seen[idx] && !kw->multi) {
		if (p->args)
			return bad_value(p, val, "given twice");
		return bad_value(p, val, "duplicates the value set on line %u", p->seen[idx]);
	}
	if ((why = value_problem(val)) != NULL)
		return bad_value(p, val, "%s", why);
	p->first = p->seen[idx] == 0;
	if (parse_value(p, kw, val) < 0)
		return -1;
	p->seen[idx] = p->args ? 1 : p->line;
	return 0;
}

/* ---- sections -------------------------------------------------------------------------- */

static int
name_taken(const struct iketcpd_cfg *cfg, const char *name)
{
	int i;

	for (i = 0; i < cfg->nservers; i++)
		if (strncmp(cfg->servers[i].name, name, IKETCPD_NAME_MAX) == 0)
			return 1;
	for (i = 0; i < cfg->nclients; i++)
		if (strncmp(cfg->clients[i].name, name, IKETCPD_NAME_MAX) == 0)
			return 1;
	return 0;
}

/*
 * Opens a new section of kind SECT_SERVER or SECT_CLIENT. name may be NULL
 * (a server in a file, any command-line section): then the default name is
 * "server" or "client" for the first one, "server2", "server3"... after.
 * what is the text quoted in messages (the header line, or the mode).
 */
static int
new_section(struct parser *p, unsigned kind, const char *name, const char *what)
{
	struct iketcpd_cfg *cfg = p->cfg;
	const char *label = kind == SECT_SERVER ? "server" : "client";
	int n = kind == SECT_SERVER ? cfg->nservers : cfg->nclients;
	int max = kind == SECT_SERVER ? IKETCPD_MAX_SERVERS : IKETCPD_MAX_CLIENTS;
	char q[QUOTE_BUF], defname[IKETCPD_NAME_MAX];

	cfg_quote(q, sizeof(q), what, strnlen(what, CFG_LINE_MAX + 1));
	if (n < 0 || n >= max)
		return perr(p, "too many %s sections (at most %d): %s", label, max, q);
	if (name == NULL) {
		if (n == 0)
			snprintf(defname, sizeof(defname), "%s", label);
		else
			snprintf(defname, sizeof(defname), "%s%d", label, n + 1);
		name = defname;
	}
	if (!valid_name(name))
		return perr(p, "bad section name in %s (1..%d letters, digits, '.', '_' or '-')", q,
			    IKETCPD_NAME_MAX - 1);
	if (name_taken(cfg, name))
		return perr(p, "section name already used: %s", q);

	memset(p->seen, 0, sizeof(p->seen));
	p->listen_own = 0;
	p->sect = kind;
	p->allowed = p->args ? (kind | SECT_GLOBAL) : kind;
	if (kind == SECT_SERVER) {
		p->cli = NULL;
		p->srv = &cfg->servers[n];
		iketcpd_server_defaults(p->srv, name);
		p->srv_line[n] = p->line;
		cfg->nservers++;
	} else {
		p->srv = NULL;
		p->cli = &cfg->clients[n];
		iketcpd_client_defaults(p->cli, name);
		p->cli_line[n] = p->line;
		cfg->nclients++;
	}
	return 0;
}

/* Trims blanks at both ends of s[*b..*e) (indices into a local buffer). */
static void
trim(const char *s, size_t *b, size_t *e)
{
	while (*b < *e && is_space(s[*b]))
		(*b)++;
	while (*e > *b && is_space(s[*e - 1]))
		(*e)--;
}

/* "[server]", "[server NAME]" or "[client NAME]"; s is the trimmed line. */
static int
parse_header(struct parser *p, const char *s, size_t n)
{
	char q[QUOTE_BUF], name[IKETCPD_NAME_MAX];
	size_t kb = 1, ke, nb, ne = n - 1;
	unsigned kind;

	cfg_quote(q, sizeof(q), s, n);
	if (n < 2 || s[n - 1] != ']')
		return perr(p,
			    "bad section header %s (expected [server], [server NAME] or "
			    "[client NAME])",
			    q);
	trim(s, &kb, &ne);
	for (ke = kb; ke < ne && !is_space(s[ke]); ke++)
		;
	nb = ke;
	trim(s, &nb, &ne);
	if (ke - kb == 6 && memcmp(s + kb, "server", 6) == 0)
		kind = SECT_SERVER;
	else if (ke - kb == 6 && memcmp(s + kb, "client", 6) == 0)
		kind = SECT_CLIENT;
	else
		return perr(p,
			    "unknown section %s (expected [server], [server NAME] or "
			    "[client NAME])",
			    q);
	if (nb == ne && kind == SECT_CLIENT)
		return perr(p, "a client section needs a name: %s", q);
	if (nb == ne)
		return new_section(p, kind, NULL, s);
	if (ne - nb >= sizeof(name))
		return perr(p, "section name too long in %s (at most %d bytes)", q,
			    IKETCPD_NAME_MAX - 1);
	memcpy(name, s + nb, ne - nb);
	name[ne - nb] = '\0';
	return new_section(p, kind, name, s);
}

static void
parser_begin(struct parser *p, struct iketcpd_cfg *work, const char *src, int args, char *err,
	     size_t errlen)
{
	memset(p, 0, sizeof(*p));
	p->cfg = work;
	p->src = src;
	p->args = args;
	p->sect = SECT_GLOBAL;
	p->allowed = SECT_GLOBAL;
	p->err = err;
	p->errlen = errlen;
}

/* Handles one line (without its '\n') held under lc. */
static int
parser_line(struct parser *p, struct iketcp_cur *lc)
{
	char line[CFG_LINE_MAX + 2], q[QUOTE_BUF]; /* + '\r' of a CRLF + NUL */
	size_t n = iketcp_cur_left(lc), i, b, e, eq;

	p->line++;
	if (n > CFG_LINE_MAX + 1) {
		/* too long even for a CRLF line: copy just what the message quotes
		 * (one byte more than cfg_quote() shows, so that it adds "...") */
		if (iketcp_cur_get_bytes(lc, line, CFG_QUOTE_MAX + 1) != IKETCP_OK)
			return perr(p, "internal error reading the line");
		return perr(p, "line longer than %d bytes: %s", CFG_LINE_MAX,
			    cfg_quote(q, sizeof(q), line, CFG_QUOTE_MAX + 1));
	}
	if (iketcp_cur_get_bytes(lc, line, n) != IKETCP_OK)
		return perr(p, "internal error reading the line");
	if (n > 0 && line[n - 1] == '\r') /* CRLF: the '\r' does not count */
		n--;
	if (n > CFG_LINE_MAX)
		return perr(p, "line longer than %d bytes: %s", CFG_LINE_MAX,
			    cfg_quote(q, sizeof(q), line, CFG_QUOTE_MAX + 1));
	line[n] = '\0';
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)line[i];
		if (ch == 0)
			return perr(p, "NUL byte in line: %s", cfg_quote(q, sizeof(q), line, n));
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return perr(p, "control character 0x%02x in line: %s", ch,
				    cfg_quote(q, sizeof(q), line, n));
	}

	/* A '#' at the start or after a blank starts a comment. */
	for (e = 0; e < n; e++)
		if (line[e] == '#' && (e == 0 || is_space(line[e - 1])))
			break;
	b = 0;
	trim(line, &b, &e);
	if (b == e)
		return 0;
	line[e] = '\0';
	if (line[b] == '[')
		return parse_header(p, line + b, e - b);

	for (eq = b; eq < e && line[eq] != '='; eq++)
		;
	if (eq == e)
		return perr(p, "expected \"key = value\": %s",
			    cfg_quote(q, sizeof(q), line + b, e - b));
	{
		size_t kb = b, ke = eq, vb = eq + 1, ve = e;
		trim(line, &kb, &ke);
		trim(line, &vb, &ve);
		if (kb == ke)
			return perr(p, "missing key before '=': %s",
				    cfg_quote(q, sizeof(q), line + b, e - b));
		line[ke] = '\0';
		line[ve] = '\0';
		return dispatch(p, line + kb, line + vb);
	}
}

/* Runs the checks with the parser's locations in messages. */
static int
parser_finish(struct parser *p)
{
	return cfg_check(p->cfg, p->src, p->args, p->srv_line, p->cli_line, p->err, p->errlen);
}

/* ---- entry points -------------------------------------------------------------------------- */

static int
parse_buf_in(struct iketcpd_cfg *cfg, const char *src, const char *base, const char *buf,
	     size_t len, char *err, size_t errlen)
{
	struct iketcpd_cfg *work;
	struct iketcp_cur in, lc;
	struct parser p;
	int rc = -1;

	if (src == NULL)
		src = "(config)";
	if (cfg == NULL || (buf == NULL && len > 0)) {
		cfg_seterr(err, errlen, "%s: bad arguments", src);
		return -1;
	}
	if ((work = malloc(sizeof(*work))) == NULL) {
		cfg_seterr(err, errlen, "%s: out of memory", src);
		return -1;
	}
	*work = *cfg;
	parser_begin(&p, work, src, 0, err, errlen);
	p.base = base;
	iketcp_cur_init(&in, buf, len);
	while (iketcp_cur_left(&in) > 0) {
		size_t n = cur_span_to(&in, '\n');
		int nl = n < iketcp_cur_left(&in);

		if (iketcp_cur_sub(&in, n, &lc) != IKETCP_OK)
			goto out;
		if (nl && iketcp_cur_skip(&in, 1) != IKETCP_OK)
			goto out;
		if (parser_line(&p, &lc) < 0)
			goto out;
	}
	if (parser_finish(&p) < 0)
		goto out;
	*cfg = *work;
	rc = 0;
out:
	free(work);
	return rc;
}

int
iketcpd_config_parse_buf(struct iketcpd_cfg *cfg, const char *src, const char *buf, size_t len,
			 char *err, size_t errlen)
{
	return parse_buf_in(cfg, src, NULL, buf, len, err, errlen);
}

/* The absolute directory of path into dir (PATH_MAX bytes), or -1. */
static int
dir_of(const char *path, char *dir)
{
	char tmp[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash == path ? 1 : slash ? (size_t)(slash - path) : 0;

	if (n >= sizeof(tmp))
		return -1;
	if (slash)
		memcpy(tmp, path, n);
	else
		tmp[n++] = '.';
	tmp[n] = '\0';
	return realpath(tmp, dir) ? 0 : -1;
}

int
iketcpd_config_parse_file(struct iketcpd_cfg *cfg, const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	size_t len = 0, cap = 0;
	char *buf = NULL, *nbuf;
	struct stat st;
	int fd, rc = -1;
	ssize_t r;

	if (path == NULL) {
		cfg_seterr(err, errlen, "no configuration file");
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		cfg_seterr(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		cfg_seterr(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (S_ISREG(st.st_mode) && st.st_size > CFG_FILE_MAX) {
		cfg_seterr(err, errlen, "%s: file too large (%lld bytes, at most %d)", path,
			   (long long)st.st_size, CFG_FILE_MAX);
		goto out;
	}
	/* Read to EOF whatever fstat said (pipes, files that grow), one byte
	 * past the limit at most to notice a file that is too large. */
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? 2 * cap : 16384;
			if (ncap > (size_t)CFG_FILE_MAX + 1)
				ncap = (size_t)CFG_FILE_MAX + 1;
			if (ncap == cap) {
				cfg_seterr(err, errlen, "%s: file too large (more than %d bytes)",
					   path, CFG_FILE_MAX);
				goto out;
			}
			if ((nbuf = realloc(buf, ncap)) == NULL) {
				cfg_seterr(err, errlen, "%s: out of memory", path);
				goto out;
			}
			buf = nbuf;
			cap = ncap;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cfg_seterr(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > CFG_FILE_MAX) {
		cfg_seterr(err, errlen, "%s: file too large (more than %d bytes)", path,
			   CFG_FILE_MAX);
		goto out;
	}
	if (dir_of(path, dir) < 0) {
		cfg_seterr(err, errlen, "%s: its directory: %s", path, strerror(errno));
		goto out;
	}
	/* "/" + "/" + name would be "//name": the root is "" */
	rc = parse_buf_in(cfg, path, strcmp(dir, "/") ? dir : "", buf, len, err, errlen);
out:
	free(buf);
	close(fd);
	return rc;
}

int
iketcpd_config_parse_args(struct iketcpd_cfg *cfg, const char *mode, int argc, char **argv,
			  char *err, size_t errlen)
{
	struct iketcpd_cfg *work;
	char key[CFG_KEY_MAX + 1], q[QUOTE_BUF];
	struct parser p;
	unsigned kind;
	int i, rc = -1;

	if (cfg == NULL || argc < 0 || (argc > 0 && argv == NULL)) {
		cfg_seterr(err, errlen, "command line: bad arguments");
		return -1;
	}
	if (mode != NULL && strcmp(mode, "server") == 0) {
		kind = SECT_SERVER;
	} else if (mode != NULL && strcmp(mode, "client") == 0) {
		kind = SECT_CLIENT;
	} else {
		cfg_seterr(
			err, errlen, "command line: unknown mode %s (expected server or client)",
			cfg_quote(q, sizeof(q), mode ? mode : "", mode ? strnlen(mode, 4096) : 0));
		return -1;
	}
	if ((work = malloc(sizeof(*work))) == NULL) {
		cfg_seterr(err, errlen, "command line: out of memory");
		return -1;
	}
	*work = *cfg;
	parser_begin(&p, work, "command line", 1, err, errlen);
	char cwd[PATH_MAX];
	p.base = getcwd(cwd, sizeof(cwd)); /* NULL (cwd gone): names stay relative */
	if (p.base && strcmp(p.base, "/") == 0)
		p.base = "";
	if (new_section(&p, kind, NULL, mode) < 0)
		goto out;
	for (i = 0; i < argc; i++) {
		const char *arg = argv[i], *val, *eq;
		size_t kl;

		if (arg == NULL)
			break;
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			perr(&p, "unexpected argument %s (expected --KEY VALUE or --KEY=VALUE)",
			     cfg_quote(q, sizeof(q), arg, strnlen(arg, CFG_LINE_MAX + 1)));
			goto out;
		}
		arg += 2;
		eq = strchr(arg, '=');
		kl = eq ? (size_t)(eq - arg) : strlen(arg);
		if (kl > CFG_KEY_MAX) {
			perr(&p, "unknown option %s",
			     cfg_quote(q, sizeof(q), argv[i], strnlen(argv[i], CFG_LINE_MAX + 1)));
			goto out;
		}
		memcpy(key, arg, kl);
		key[kl] = '\0';
		if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc && argv[i + 1] != NULL) {
			val = argv[++i];
		} else {
			perr(&p, "%s needs a value",
			     cfg_quote(q, sizeof(q), argv[i], strnlen(argv[i], CFG_LINE_MAX + 1)));
			goto out;
		}
		if (dispatch(&p, key, val) < 0)
			goto out;
	}
	if (parser_finish(&p) < 0)
		goto out;
	*cfg = *work;
	rc = 0;
out:
	free(work);
	return rc;
}
