/*
 * iketcpd server --help / client --help: every key of that mode and the
 * global keys, from the keyword table (config_keys.c), with the default a
 * section really gets (written by the dump) and one line of description.
 * The full reference is iketcpd.conf(5) / docs/iketcpd.conf.md.
 */
#include <stdio.h>
#include <string.h>

#include "config_int.h"

/*
 * One line per key; def replaces the dump's text where the default is not
 * a value the key could be set to (computed, or taken from another key).
 * A key missing here is listed without a description, and the unit test
 * that walks kwtab fails.
 */
static const struct kw_doc {
	const char *name, *def, *text;
} kw_docs[] = {
	{"verbose", NULL, "log level 0..3 (each -v adds one)"},
	{"stats-socket", NULL, "unix socket (absolute path) that serves counters and status"},
	{"user", NULL, "account to switch to once the sockets are open"},
	{"allow-root", NULL, "yes: run as root without user (else refused)"},
	{"stats-socket-group", NULL, "group that may read the stats socket (mode 0660 then)"},
	{"stats-socket-mode", NULL, "the stats socket's mode, octal (0600; 0660 with a group)"},
	{"metrics-listen", NULL, "address:port of the Prometheus /metrics HTTP endpoint"},
	{"group", "the user's groups", "the only group for user"},
	{"max-memory", "1/4 of RAM", "bound of all send queues and frame buffers (k, m, g)"},
	{"workers", "1", "processes serving the server sections: N or auto (one per CPU)"},
	{"listen", NULL, "TCP address to accept RFC 9329 on (repeatable)"},
	{"listen-tcp", "-", "libreswan's keyword: yes, or one more listen address"},
	{"backend", NULL, "UDP address of the local IKE daemon"},
	{"prefix-timeout", NULL, "time a connection has to send the IKETCP prefix"},
	{"max-conns", NULL, "open TCP connections, all sources together"},
	{"max-conns-per-source", NULL, "open connections from one source"},
	{"max-pending", NULL, "connections still waiting for their prefix (oldest evicted)"},
	{"udp", "required", "UDP address to listen on for the local IKE daemon"},
	{"peer", "required", "remote RFC 9329 responder, HOST[:PORT] (port 4500)"},
	{"enable-tcp", NULL, "yes (TCP only), no (UDP only) or fallback (UDP first)"},
	{"tcp-remoteport", "the peer port", "the peer's TCP port (UDP stays on the peer port)"},
	{"fallback-wait", NULL, "unanswered UDP time before a flow switches to TCP"},
	{"fallback-retry", NULL, "how long a peer address stays on TCP after UDP failed"},
	{"mark", NULL, "SO_MARK on the outer sockets (full-tunnel hosts), VALUE[/MASK]"},
	{"bypass-policy", NULL, "per-socket IPsec policy bypass: yes, no or auto"},
	{"max-bad-frames", NULL, "runt frames in a row that close a connection"},
	{"session-timeout", NULL, "how long a session waits for its client to reconnect"},
	{"replaced-idle-timeout", NULL, "idle time after which a replaced connection closes"},
	{"max-sessions", NULL, "IKE sessions (backend UDP sockets) at a time"},
	{"connect-timeout", NULL, "time to connect to the peer (TCP, proxy, TLS)"},
	{"reconnect-min", NULL, "first delay before reconnecting (doubles)"},
	{"reconnect-max", NULL, "largest delay between reconnection attempts"},
	{"resolve-interval", NULL, "least time between lookups of a peer or proxy name"},
	{"flow-timeout", NULL, "an IKE SA flow without traffic for this long is forgotten"},
	{"max-flows", NULL, "IKE SA flows (TCP connections) at a time"},
	{"local-peer", NULL, "who may send to udp: auto, ADDR or ADDR:PORT"},
	{"send-budget", NULL, "bytes queued towards one connection before ESP is dropped"},
	{"ike-reserve", NULL, "extra queue bytes kept for IKE"},
	{"max-frame", NULL, "largest frame accepted from a connection"},
	{"tcp-keepalive", NULL, "TCP keepalives on connections"},
	{"tcp-user-timeout", NULL, "TCP_USER_TIMEOUT: unacknowledged data ends a connection"},
	{"source-prefix4", NULL, "bits of an IPv4 address that make one source"},
	{"source-prefix6", NULL, "bits of an IPv6 address that make one source"},
	{"max-pending-per-source", NULL, "pending connections from one source"},
	{"max-sessions-per-source", NULL, "IKE sessions created by one source"},
	{"max-half-open", NULL, "sessions without an answer past IKE_SA_INIT"},
	{"max-half-open-per-source", NULL, "half-open sessions of one source"},
	{"half-open-timeout", NULL, "a half-open session is removed after this long"},
	{"frame-timeout", NULL, "time a started frame has to arrive whole"},
	{"idle-timeout", NULL, "close a connection silent for this long (off: never)"},
	{"backend-source", NULL, "source addresses towards the backend: auto, none or a prefix"},
	{"listen-tls", NULL, "TCP address that accepts only TLS (repeatable, port 443)"},
	{"tls-cert", NULL, "PEM certificate chain, leaf first"},
	{"tls-key", NULL, "PEM private key of tls-cert"},
	{"tls", NULL, "RFC 9329 inside TLS to the peer"},
	{"tls-server-name", "the peer host", "name sent as SNI and checked in the certificate"},
	{"tls-ca-file", "the system store", "PEM trust anchors for the peer's certificate"},
	{"tls-verify", NULL, "check the peer's certificate chain and name"},
	{"tls-pin-sha256", NULL, "SHA-256 pin of the peer's public key (hex or base64)"},
	{"tls-min-version", NULL, "lowest TLS version: 1.2 or 1.3"},
	{"tls-ciphers", "RFC 9325 set", "TLS 1.2 cipher suites (OpenSSL list)"},
	{"tls-ciphersuites", "OpenSSL's", "TLS 1.3 cipher suites (OpenSSL list)"},
	{"tls-groups", "OpenSSL's", "key exchange groups (OpenSSL list)"},
	{"tls-null-cipher", NULL, "allow TLS 1.2 NULL-encryption suites"},
	{"tls-handshake-timeout", NULL, "time a TLS connection has to finish its handshake"},
	{"sniff-tls", NULL, "plain listen ports also take TLS: yes, no or auto"},
	{"proxy-protocol", NULL, "connections start with a PROXY v1/v2 header"},
	{"proxy-protocol-from", NULL, "balancers allowed to send PROXY headers (repeatable)"},
	{"proxy", NULL, "HTTP proxy to CONNECT through: http://HOST[:PORT]"},
	{"proxy-auth", NULL, "USER:PASS for the proxy (Basic authentication)"},
};

const char *
kw_help_text(const char *name)
{
	for (size_t i = 0; i < sizeof(kw_docs) / sizeof(kw_docs[0]); i++)
		if (strcmp(kw_docs[i].name, name) == 0)
			return kw_docs[i].text;
	return NULL;
}

static const char *
kw_help_def(const char *name)
{
	for (size_t i = 0; i < sizeof(kw_docs) / sizeof(kw_docs[0]); i++)
		if (strcmp(kw_docs[i].name, name) == 0)
			return kw_docs[i].def;
	return NULL;
}

/* The keys of kind (a section kind or SECT_GLOBAL) with their defaults in sect. */
static void
help_keys(FILE *fp, unsigned kind, const void *sect)
{
	char def[CFG_LINE_MAX];

	for (size_t i = 0; i < kw_count; i++) {
		const struct kw *kw = &kwtab[i];
		const char *d = kw_help_def(kw->name), *text = kw_help_text(kw->name);

		if ((kw->sections & kind) == 0)
			continue;
		if (d == NULL)
			d = kw_default_text(kw, kind, sect, def, sizeof(def)) > 0 ? def : "none";
		fprintf(fp, "  --%-25s %-24s %s\n", kw->name, d, text ? text : "");
	}
}

int
iketcpd_config_help(FILE *fp, const char *mode)
{
	static struct iketcpd_cfg cfg; /* large: not on the stack */
	static struct iketcpd_server_cfg srv;
	static struct iketcpd_client_cfg cli;
	unsigned kind;

	if (mode != NULL && strcmp(mode, "server") == 0)
		kind = SECT_SERVER;
	else if (mode != NULL && strcmp(mode, "client") == 0)
		kind = SECT_CLIENT;
	else
		return -1;
	iketcpd_config_init(&cfg);
	iketcpd_server_defaults(&srv, "server");
	iketcpd_client_defaults(&cli, "client");
	fprintf(fp,
		"usage: iketcpd [-f] [-v] [-n] %s [--KEY VALUE | --KEY=VALUE ...]\n"
		"Every --KEY VALUE is the line \"KEY = VALUE\" of a [%s] section in a file; "
		"see iketcpd.conf(5).\n\n"
		"%-29s %-24s %s\n",
		mode, kind == SECT_SERVER ? "server" : "client NAME",
		kind == SECT_SERVER ? "server keys:" : "client keys:", "default", "meaning");
	help_keys(fp, kind, kind == SECT_SERVER ? (const void *)&srv : (const void *)&cli);
	fprintf(fp, "\nglobal keys (in a file: before the first section):\n");
	help_keys(fp, SECT_GLOBAL, &cfg);
	return 0;
}
