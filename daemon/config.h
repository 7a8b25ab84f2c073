/*
 * iketcpd configuration: one structure filled either from a config file
 * (`key = value` lines in [server NAME] / [client NAME] sections) or from
 * command-line flags. Flags and keywords are the same words (`--backend X`
 * on the command line is `backend = X` in a file) and go through the same
 * keyword table, so they cannot drift apart.
 *
 * Every parse error names where it happened ("FILE:LINE" or "command line")
 * and quotes the bad value.
 */
#ifndef IKETCPD_CONFIG_H
#define IKETCPD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define IKETCPD_MAX_SERVERS 8
#define IKETCPD_MAX_CLIENTS 64
/* "workers": processes at most (a host with more CPUs runs this many) */
#define IKETCPD_WORKERS_MAX 256
#define IKETCPD_MAX_LISTEN 8
#define IKETCPD_MAX_PROXY_FROM 16 /* proxy-protocol-from entries per server */
#define IKETCPD_NAME_MAX 32
#define IKETCPD_HOST_MAX 256
#define IKETCPD_PATH_MAX 256     /* tls-cert, tls-key, tls-ca-file (with the NUL) */
#define IKETCPD_TLS_LIST_MAX 512 /* tls-ciphers, tls-ciphersuites, tls-groups */
#define IKETCPD_PIN_MAX 128      /* tls-pin-sha256 as written */
#define IKETCPD_AUTH_MAX 256     /* proxy-auth USER:PASS */
#define IKETCPD_USER_MAX 33      /* user, group: a name or number of at most 32 bytes */

/* tls-min-version values: the TLS wire versions (same as IKETCP_TLS_1_x). */
#define IKETCPD_TLS_V12 0x0303
#define IKETCPD_TLS_V13 0x0304

/* backend-source modes */
#define IKETCPD_BSRC_AUTO 0
#define IKETCPD_BSRC_NONE 1
#define IKETCPD_BSRC_PREFIX 2

/* sniff-tls: auto means yes when tls-cert is set. */
#define IKETCPD_SNIFF_AUTO (-1)

/* bypass-policy: auto tries without asking for the privilege it needs. */
#define IKETCPD_BYPASS_AUTO (-1)

struct iketcpd_addr {
	struct sockaddr_storage ss; /* AF_INET or AF_INET6, port in network order */
	socklen_t len;
};

/* An address prefix, "192.0.2.0/24" or "2001:db8::/32" (a bare address is
 * a /32 or /128). */
struct iketcpd_prefix {
	int family; /* AF_INET or AF_INET6; 0 = unset */
	uint8_t addr[16];
	uint8_t bits;
};

enum iketcpd_enable_tcp {
	IKETCPD_TCP_NO,       /* plain UDP relay */
	IKETCPD_TCP_YES,      /* TCP only */
	IKETCPD_TCP_FALLBACK, /* UDP first, TCP when the peer stays silent */
};

/* TLS settings both section kinds have (RFC 9329 Appendix A). "" = default. */
struct iketcpd_tls_opts {
	int min_version; /* "tls-min-version": IKETCPD_TLS_V12 (default) or V13 */
	char ciphers[IKETCPD_TLS_LIST_MAX];      /* "tls-ciphers": TLS 1.2 list (OpenSSL syntax) */
	char ciphersuites[IKETCPD_TLS_LIST_MAX]; /* "tls-ciphersuites": TLS 1.3 list */
	char groups[IKETCPD_TLS_LIST_MAX];       /* "tls-groups": key exchange groups */
	int null_cipher;                         /* "tls-null-cipher" (R72); default no */
};

struct iketcpd_server_cfg {
	char name[IKETCPD_NAME_MAX];
	struct iketcpd_addr
		listen[IKETCPD_MAX_LISTEN]; /* "listen"; default [::]:4500 + 0.0.0.0:4500 */
	int nlisten;
	struct iketcpd_addr backend;   /* "backend"; default 127.0.0.1:4500 */
	uint32_t prefix_timeout_ms;    /* "prefix-timeout"; default 5000 */
	uint32_t max_conns;            /* "max-conns"; default 4096 */
	uint32_t max_conns_per_source; /* "max-conns-per-source"; default 64 */
	uint32_t max_pending;          /* "max-pending" (waiting for the prefix); default 256 */
	uint32_t max_bad_frames;       /* "max-bad-frames" in a row before close (R27); default 8 */
	uint32_t session_timeout_ms;   /* "session-timeout" without a connection; default 600000 */
	/* "replaced-idle-timeout": a connection whose session's return path
	 * moved to a newer one is closed after this long without a frame from
	 * it (R34); default 60000 */
	uint32_t replaced_idle_ms;
	uint32_t max_sessions; /* "max-sessions"; default 8192 */
	uint32_t send_budget;  /* "send-budget" bytes per connection; default 262144 */
	uint32_t ike_reserve;  /* "ike-reserve" bytes above the budget for IKE; default 131072 */
	uint32_t max_frame;    /* "max-frame"; default 65535 */
	int tcp_keepalive;     /* "tcp-keepalive" yes|no; default yes (R49) */
	uint32_t tcp_user_timeout_ms; /* "tcp-user-timeout": unacknowledged data; default 60000 */
	/* Budgets against unauthenticated peers (docs/architecture.md, "Trust
	 * model"). A source is the client's address masked to source-prefix4
	 * or source-prefix6 bits. */
	uint32_t source_prefix4;           /* "source-prefix4"; default 32 */
	uint32_t source_prefix6;           /* "source-prefix6"; default 64 */
	uint32_t max_pending_per_source;   /* "max-pending-per-source"; default 16 */
	uint32_t max_sessions_per_source;  /* "max-sessions-per-source"; default 64 */
	uint32_t max_half_open;            /* "max-half-open"; default 1024 */
	uint32_t max_half_open_per_source; /* "max-half-open-per-source"; default 16 */
	uint32_t half_open_timeout_ms;     /* "half-open-timeout"; default 30000 */
	uint32_t frame_timeout_ms;         /* "frame-timeout": a begun frame; default 10000 */
	uint32_t idle_timeout_ms;          /* "idle-timeout": 0 = off (default) */
	/* "backend-source": the per-client source addresses of the sockets to
	 * the backend: auto (127.0.0.0/8 for an IPv4 loopback backend, else
	 * none), none, or a prefix routed to this host. */
	int backend_source_mode; /* IKETCPD_BSRC_* */
	struct iketcpd_prefix backend_source;
	/* TLS (issue #4) */
	struct iketcpd_addr listen_tls[IKETCPD_MAX_LISTEN]; /* "listen-tls": TLS-only; none */
	int nlisten_tls;
	char tls_cert[IKETCPD_PATH_MAX]; /* "tls-cert": PEM chain, leaf first */
	char tls_key[IKETCPD_PATH_MAX];  /* "tls-key": PEM private key */
	struct iketcpd_tls_opts tls;
	uint32_t tls_handshake_timeout_ms; /* "tls-handshake-timeout"; default 5000 */
	int sniff_tls; /* "sniff-tls" yes|no|auto: TLS on plain listen ports; default auto */
	/* Behind a load balancer: every connection starts with a PROXY
	 * protocol header (v1 or v2) naming the client, and is accepted only
	 * from these sources. */
	int proxy_protocol; /* "proxy-protocol" yes|no; default no */
	struct iketcpd_prefix proxy_from[IKETCPD_MAX_PROXY_FROM]; /* "proxy-protocol-from" */
	int nproxy_from;
};

struct iketcpd_client_cfg {
	char name[IKETCPD_NAME_MAX];
	struct iketcpd_addr udp; /* "udp": where the local IKE daemon sends */
	/* "peer" HOST:PORT (port default 4500). PORT is the peer's UDP (IKE
	 * NAT-T) port, and its TCP port too unless tcp-remoteport says other. */
	char peer_host[IKETCPD_HOST_MAX];
	uint16_t peer_port;
	uint32_t tcp_remoteport; /* "tcp-remoteport": TCP port; 0 (default) = peer_port */
	enum iketcpd_enable_tcp enable_tcp; /* "enable-tcp"; default fallback */
	uint32_t fallback_wait_ms;          /* "fallback-wait"; default 2000 */
	/* "fallback-retry"; default 600000: after UDP to a peer address went
	 * unanswered, new flows to it use TCP at once for this long */
	uint32_t fallback_retry_ms;
	uint32_t max_bad_frames;     /* "max-bad-frames" in a row before close (R27); default 8 */
	uint32_t connect_timeout_ms; /* "connect-timeout"; default 5000 */
	uint32_t reconnect_min_ms;   /* "reconnect-min"; default 100 */
	uint32_t reconnect_max_ms;   /* "reconnect-max"; default 5000 */
	/* "resolve-interval"; default 30000: a peer or proxy name that resolved
	 * is looked up again after a failed or lost connection, at most this
	 * often (DNS-based failover, dynamic addresses) */
	uint32_t resolve_interval_ms;
	uint32_t flow_timeout_ms; /* "flow-timeout": idle IKE SA flows expire; default 600000 */
	uint32_t max_flows;       /* "max-flows"; default 256 */
	/* "local-peer": who may send to udp. len 0 = auto (default): the sender
	 * of the first IKE_SA_INIT is pinned. Else that address; port 0 = any
	 * port of it. */
	struct iketcpd_addr local_peer;
	uint32_t send_budget; /* as for the server */
	uint32_t ike_reserve;
	uint32_t max_frame;
	int tcp_keepalive;
	uint32_t tcp_user_timeout_ms;
	/* TLS and proxy (issue #4) */
	int use_tls;                            /* "tls" yes|no; default no */
	char tls_server_name[IKETCPD_HOST_MAX]; /* "tls-server-name"; "" = the peer host */
	char tls_ca_file[IKETCPD_PATH_MAX];     /* "tls-ca-file"; "" = the system store */
	int tls_verify;                         /* "tls-verify"; default yes */
	char tls_pin[IKETCPD_PIN_MAX];          /* "tls-pin-sha256"; "" = none */
	struct iketcpd_tls_opts tls;            /* tls-min-version, tls-ciphers, ... */
	char proxy_host[IKETCPD_HOST_MAX];      /* "proxy" http://HOST:PORT; "" = none */
	uint16_t proxy_port;
	char proxy_auth[IKETCPD_AUTH_MAX]; /* "proxy-auth" USER:PASS; "" = none */
	/* Full-tunnel hosts: the outer sockets (TCP to the peer or proxy, UDP
	 * to the peer) must stay out of this host's own IPsec policies and
	 * routes, or the tunnel would carry itself. Both need CAP_NET_ADMIN. */
	int bypass_policy;  /* "bypass-policy" yes|no|auto: IP(V6)_XFRM_POLICY; default auto */
	uint32_t mark;      /* "mark" VALUE[/MASK]: SO_MARK; 0 = none (default) */
	uint32_t mark_mask; /* the /MASK as written (for the dump); 0xffffffff without */
};

/* Returns 1 if sniff-tls is in effect for server s (yes, or auto with tls-cert). */
int iketcpd_server_sniff_tls(const struct iketcpd_server_cfg *s);

struct iketcpd_cfg {
	struct iketcpd_server_cfg servers[IKETCPD_MAX_SERVERS];
	int nservers;
	struct iketcpd_client_cfg clients[IKETCPD_MAX_CLIENTS];
	int nclients;
	/* global settings, in the file before any section or as flags */
	int verbose;          /* "verbose" 0..3; -v adds one */
	int foreground;       /* -f */
	char stats_path[108]; /* "stats-socket": unix socket path for counters; "" = not set */
	/* "stats-socket = none": no socket, not even the default that main()
	 * derives from $RUNTIME_DIRECTORY when stats-socket is not set */
	int stats_off;
	/* "stats-socket-mode": permission bits of the socket; -1 = not set
	 * (0660 with stats-socket-group, else 0600) */
	int stats_mode;
	char stats_group[IKETCPD_USER_MAX]; /* "stats-socket-group"; "" = not set */
	int allow_root;                     /* "allow-root": stay root without user */
	/* "metrics-listen": HTTP listener for GET /metrics; len 0 = off */
	struct iketcpd_addr metrics_listen;
	/* "user", "group": the account iketcpd runs as once its sockets are
	 * open (name or number); "" = stay as started. group needs user. */
	char user[IKETCPD_USER_MAX];
	char group[IKETCPD_USER_MAX];
	/* "max-memory": bytes of send-queue and assembly buffers of all
	 * sections together (iketcp_mem_set_limit()); 0 = not set, main()
	 * uses a quarter of the physical memory */
	uint64_t max_memory;
	/* "workers": processes that serve the server sections (SO_REUSEPORT);
	 * 1 = the single process of old, 0 = auto (one per online CPU).
	 * Read at start only. */
	unsigned workers;
};

/* Fills cfg with an empty configuration (no sections, defaults for globals). */
void iketcpd_config_init(struct iketcpd_cfg *cfg);

/* The mode the stats socket gets: stats-socket-mode, or its default. */
unsigned iketcpd_stats_mode(const struct iketcpd_cfg *cfg);

/* Fills a section with its defaults (name copied, truncated to fit). */
void iketcpd_server_defaults(struct iketcpd_server_cfg *s, const char *name);
void iketcpd_client_defaults(struct iketcpd_client_cfg *c, const char *name);

/*
 * Parses a whole config file held in memory (src names it in messages).
 * Returns 0, or -1 with a message "SRC:LINE: ..." in err (errlen bytes).
 * Sections are appended to cfg; cross-field checks run at the end
 * (iketcpd_config_check()).
 */
int iketcpd_config_parse_buf(struct iketcpd_cfg *cfg, const char *src, const char *buf, size_t len,
			     char *err, size_t errlen);

/* Reads and parses a file. Returns 0 or -1 with err set (also for I/O errors).
 * A relative file name in it (tls-cert, tls-key, tls-ca-file) is made
 * absolute against the file's directory, so that it means the same after
 * daemon() moved to "/" and on every SIGHUP (iketcpd_config_parse_buf()
 * has no directory and keeps it as written). */
int iketcpd_config_parse_file(struct iketcpd_cfg *cfg, const char *path, char *err, size_t errlen);

/*
 * Parses command-line mode arguments after the mode word:
 *   server --listen A:P [--listen ...] --backend A:P [--KEY VALUE ...]
 *   client --udp A:P --peer H:P [--enable-tcp yes|fallback|no] [--KEY VALUE ...]
 * mode is "server" or "client"; argv holds what follows it. Appends one
 * section. Returns 0 or -1 with err set ("command line: ..."). A relative
 * file name is made absolute against the current directory.
 */
int iketcpd_config_parse_args(struct iketcpd_cfg *cfg, const char *mode, int argc, char **argv,
			      char *err, size_t errlen);

/* Cross-field checks (at least one section; no duplicate listen or udp
 * addresses; reconnect-min <= reconnect-max; ...). Returns 0 or -1. */
int iketcpd_config_check(const struct iketcpd_cfg *cfg, char *err, size_t errlen);

/*
 * Parses "ADDR:PORT", "[V6ADDR]:PORT", or "ADDR" (then default_port) into
 * a numeric address (no DNS). Returns 0 or -1.
 */
int iketcpd_parse_addr(const char *s, uint16_t default_port, struct iketcpd_addr *out);

/* Parses "ADDR" or "ADDR/BITS" (numeric; no bits set after the prefix).
 * Returns 0, or -1 when s is not a prefix. */
int iketcpd_parse_prefix(const char *s, struct iketcpd_prefix *out);
/* Writes "ADDR/BITS" to buf; returns buf. */
const char *iketcpd_prefix_str(const struct iketcpd_prefix *p, char *buf, size_t len);
/* Returns 1 if a's IP lies in prefix p, else 0. */
int iketcpd_prefix_match(const struct iketcpd_prefix *p, const struct iketcpd_addr *a);

/* Same family, address and port (flow label and scope are ignored). */
int iketcpd_addr_equal(const struct iketcpd_addr *x, const struct iketcpd_addr *y);

/* Sets the port of an AF_INET or AF_INET6 address (host order in). */
void iketcpd_addr_set_port(struct iketcpd_addr *a, uint16_t port);

/* Formats an address as "1.2.3.4:5" or "[::1]:5" into buf. Returns buf. */
const char *iketcpd_addr_str(const struct iketcpd_addr *a, char *buf, size_t len);

/* Writes the effective configuration in file syntax (for `iketcpd -n -v`). */
void iketcpd_config_dump(const struct iketcpd_cfg *cfg, int fd);

/* Writes the keys of mode ("server" or "client") and the global keys, with
 * their defaults and a line about each (iketcpd MODE --help). Returns 0,
 * or -1 for another mode. */
int iketcpd_config_help(FILE *fp, const char *mode);

#endif
