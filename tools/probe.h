/* iketcp probe: checks whether a server answers IKE over TCP (RFC 9329). */
#ifndef IKETCP_TOOLS_PROBE_H
#define IKETCP_TOOLS_PROBE_H

#define PROBE_USAGE                                                                                \
	"probe [-t SECONDS] [--tls [--tls-ca-file FILE] [--tls-server-name NAME] [--insecure]]\n"  \
	"                    [--proxy http://HOST:PORT] HOST[:PORT]"

#define PROBE_HELP                                                                                 \
	"Connects to HOST:PORT (default port 4500, 443 with --tls; [v6addr]:port),\n"              \
	"writes the IKETCP prefix and a framed IKE_SA_INIT request, and waits for a\n"             \
	"framed IKE response with its SPI. Says what was reached: TCP, the proxy\n"                \
	"tunnel, TLS (version, cipher, certificate verification), the IKE answer.\n"               \
	"Options:\n"                                                                               \
	"  -t, --timeout SECONDS   the whole probe (default 5)\n"                                  \
	"  --tls                   RFC 9329 inside TLS (RFC 9329 Appendix A)\n"                    \
	"  --tls-ca-file FILE      trust anchors (PEM); default the system store\n"                \
	"  --tls-server-name NAME  SNI and the name checked in the certificate;\n"                 \
	"                          default HOST\n"                                                 \
	"  --insecure              do not verify the certificate (says so)\n"                      \
	"  --proxy http://HOST:PORT  reach the server through an HTTP CONNECT proxy\n"             \
	"Exit status: 0 an IKE response came back; 1 not (unreachable, refused by the\n"           \
	"proxy, TLS failed, closed, silent, not RFC 9329); 2 usage.\n"

/* Runs "iketcp probe ARGS..." (argv without "probe"); prints what happens.
 * Returns the exit status: 0 answered in RFC 9329, 1 not, 2 usage. */
int cmd_probe(int argc, char **argv);

#endif
