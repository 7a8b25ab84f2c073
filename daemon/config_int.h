/*
 * What the pieces of the configuration module share and nothing else
 * includes: the limits, the value decoders and formatters
 * (config_value.c), the host/port helpers behind the address API
 * (addr.c), and the keyword table (config_keys.c) that the parser
 * (config_parse.c), the checks (config_check.c) and the dump
 * (config_dump.c) all walk.
 */
#ifndef IKETCPD_CONFIG_INT_H
#define IKETCPD_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "iketcp/cursor.h"

/* ---- limits ------------------------------------------------------------------ */

#define CFG_FILE_MAX (1024 * 1024) /* iketcpd_config_parse_file() refuses bigger files */
#define CFG_LINE_MAX 1024          /* bytes per line (without '\n') and per value */
#define CFG_QUOTE_MAX 48           /* bytes of a rejected value quoted in a message */
#define CFG_KEY_MAX 32             /* longer words cannot be keywords */
#define CFG_DEFAULT_PORT 4500      /* IKE NAT-T port, also RFC 9329's usual TCP port */
#define CFG_STATS_PATH_MAX 108     /* sizeof(cfg->stats_path) == sizeof(sun_path) */

#define MS_PER_S 1000u
#define MS_PER_M (60u * MS_PER_S)
#define MS_PER_H (60u * MS_PER_M)
#define DUR_MIN 1u               /* 1ms */
#define DUR_MAX (24u * MS_PER_H) /* 24h = 86 400 000 ms: fits easily in uint32_t */
#define KIB 1024u
#define MIB (1024u * KIB)
#define FRAME_MIN 64u
#define FRAME_MAX 65535u /* the largest value of the 16-bit Length field */
#define BUDGET_MIN 4096u
#define BUDGET_MAX (64u * MIB)
#define RESERVE_MIN 65535u /* one frame of the largest size always fits */
#define RESERVE_MAX (64u * MIB)
#define COUNT_MIN 1u
#define COUNT_MAX 1000000u
#define VERBOSE_MAX 3
#define CFG_MAX_MEMORY_MIN ((uint64_t)MIB)
#define CFG_MAX_MEMORY_MAX (1024ull * 1024u * MIB)
#define PORT_MAX 65535u
#define CFG_METRICS_PORT 9575 /* metrics-listen without a port */

/*
 * Decimal digits saturate at DEC_SAT while they are read. DEC_SAT is above
 * every range, and small enough that multiplying by the largest unit (h:
 * 3 600 000, m for sizes: 1 048 576) cannot overflow uint64_t:
 * 1e12 * 3.6e6 = 3.6e18 < 1.8e19.
 */
#define DEC_SAT 1000000000000ull

/* ---- messages and value decoders (config_value.c) --------------------------- */

void cfg_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Worst case of cfg_quote(): 2 quotes + 4 bytes per input byte + "..." + NUL. */
#define QUOTE_BUF (2 + 4 * CFG_QUOTE_MAX + 3 + 1)
const char *cfg_quote(char *out, size_t outlen, const char *s, size_t n);

int cur_peek(const struct iketcp_cur *c);
size_t cur_get_dec(struct iketcp_cur *c, uint64_t *out);
size_t cur_span_to(const struct iketcp_cur *c, uint8_t ch);
size_t cur_count(const struct iketcp_cur *c, uint8_t ch);
int cur_over_str(struct iketcp_cur *c, const char *s, size_t max);
int cur_get_port(struct iketcp_cur *c, uint16_t *port);
int cur_get_suffix(struct iketcp_cur *c, char suf[3]);

/* Pure decoders: NUM_OK, or an error and nothing written. */
enum num_rc { NUM_OK = 0, NUM_SYNTAX = -1, NUM_RANGE = -2 };
enum num_rc dec_count(const char *s, uint64_t min, uint64_t max, uint64_t *out);
enum num_rc dec_duration(const char *s, uint32_t min, uint32_t max, uint32_t *ms);
enum num_rc dec_size(const char *s, uint32_t min, uint32_t max, uint32_t *out);
enum num_rc dec_mark(const char *s, uint32_t *value, uint32_t *mask);
int dec_bool(const char *s);
const char *fmt_duration(char *buf, size_t len, uint32_t ms);
const char *fmt_size(char *buf, size_t len, uint32_t v);

int valid_name(const char *s);
const char *account_problem(const char *s);

/* ---- host:port and address checks (addr.c) ---------------------------------- */

struct hostport {
	char host[IKETCPD_HOST_MAX];
	int v6; /* written as IPv6: in brackets, or bare with more than one ':' */
	uint16_t port;
};

int split_hostport(const char *s, uint16_t default_port, struct hostport *hp);
int valid_hostname(const char *h);
int valid_peer_host(const char *h, int v6);
int addr_valid(const struct iketcpd_addr *a);
int local_peer_valid(const struct iketcpd_addr *a);

/* ---- the keyword table (config_keys.c) -------------------------------------- */

enum sect {
	SECT_GLOBAL = 1, /* before the first section, or any flag */
	SECT_SERVER = 2,
	SECT_CLIENT = 4,
};

/*
 * Most keys hold one typed value in the section they are in. For those the
 * table gives the type, the field's offset in a server and/or a client
 * section (0: not valid there; offset 0 is the name, never a value), the
 * default, and the range, and the parser, iketcpd_*_defaults(), the checks
 * and the dump handle them from the row alone. Keys with their own syntax
 * have type V_FN and name their parse and dump functions; a typed row may
 * still name its own parse function when the value needs more checks than
 * the type (tls-ciphers, tls-pin-sha256, ...).
 */
enum vkind {
	V_FN,       /* all by the named functions */
	V_DURATION, /* uint32_t milliseconds, DUR_MIN..DUR_MAX */
	V_COUNT,    /* uint32_t, min..max */
	V_SIZE,     /* uint32_t bytes, min..max, k/m suffixes */
	V_BOOL,     /* int 0 or 1 */
	V_STR,      /* char[max]; "" = not set */
};

/* 0 is "off": not range-checked, and written "off" in the dump
 * (idle-timeout: the parser also takes "0" and "off"). */
#define KW_OFF 1u
/* 0 is "not set": not range-checked, and not in the dump (tcp-remoteport). */
#define KW_UNSET0 2u

struct parser;
struct out;
struct kw;
typedef int kw_parse_fn(struct parser *p, const char *val);
/* sect is the struct iketcpd_cfg for a global key, else the section. */
typedef void kw_dump_fn(struct out *o, const struct kw *kw, unsigned kind, const void *sect);

struct kw {
	const char *name;
	unsigned sections; /* enum sect bits where the key is valid */
	int multi;         /* may be repeated in one section */
	enum vkind kind;
	size_t srv_off, cli_off; /* the field in iketcpd_server_cfg / _client_cfg */
	uint32_t def;            /* the default of a typed key */
	uint32_t min, max;       /* V_COUNT, V_SIZE; V_STR: max is the field's size */
	unsigned flags;          /* KW_* */
	kw_parse_fn *parse;      /* NULL: by the type */
	kw_dump_fn *dump;        /* NULL: by the type (V_FN: not written) */
};

/* In dump order (the parser looks keys up by name). */
extern const struct kw kwtab[];
extern const size_t kw_count;
#define KW_MAX 80 /* bound of kw_count, for the parser's per-key arrays */

const struct kw *kw_find(const char *name);
/* The key nearest to a mistyped name (one valid in sections first), or NULL. */
const struct kw *kw_nearest(const char *name, unsigned sections);
/* The offset of kw's field in a section of kind (SECT_SERVER/CLIENT), 0: none. */
size_t kw_off(const struct kw *kw, unsigned kind);
/* The default of a typed key, by name (for rules that compare against it). */
uint32_t kw_default(const char *name);

/* The value(s) kw has in sect as the dump writes them ("A, B" for a
 * repeated key) into buf; returns the length, 0: the dump writes nothing. */
size_t kw_default_text(const struct kw *kw, unsigned kind, const void *sect, char *buf, size_t len);
/* The one-line description of a key for --help (config_help.c), or NULL. */
const char *kw_help_text(const char *name);

/* The checks of iketcpd_config_check() with the parser's locations: src
 * (NULL: none), args (the command line: no line numbers), and the header
 * line of each section (NULL: unknown). Returns 0 or -1 with err set. */
int cfg_check(const struct iketcpd_cfg *cfg, const char *src, int args, const unsigned *srv_line,
	      const unsigned *cli_line, char *err, size_t errlen);

/* Handlers named in the table. */
kw_parse_fn parse_backend, parse_backend_source, parse_enable_tcp, parse_group, parse_listen,
	parse_listen_tcp, parse_listen_tls, parse_local_peer, parse_max_memory, parse_peer,
	parse_proxy, parse_proxy_auth, parse_proxy_protocol_from, parse_sniff_tls,
	parse_stats_socket, parse_stats_socket_group, parse_stats_socket_mode, parse_metrics_listen,
	parse_tls_list, parse_tls_min_version, parse_tls_pin_sha256, parse_tls_server_name,
	parse_udp, parse_user, parse_verbose;
kw_dump_fn dump_backend, dump_backend_source, dump_enable_tcp, dump_group, dump_listen,
	dump_listen_tls, dump_local_peer, dump_max_memory, dump_peer, dump_proxy,
	dump_proxy_protocol_from, dump_sniff_tls, dump_stats_socket, dump_stats_socket_group,
	dump_stats_socket_mode, dump_metrics_listen, dump_tls_min_version, dump_udp, dump_user,
	dump_verbose;
/* full-tunnel clients */
kw_parse_fn parse_allow_root;
kw_dump_fn dump_allow_root;
kw_parse_fn parse_workers;
kw_dump_fn dump_workers;
kw_parse_fn parse_bypass_policy, parse_mark;
kw_dump_fn dump_bypass_policy, dump_mark;

#endif
