/* iketcp probe: checks whether a server answers IKE over TCP (RFC 9329). */
#ifndef IKETCP_TOOLS_PROBE_H
#define IKETCP_TOOLS_PROBE_H

/* Runs "iketcp probe ARGS..." (argv without "probe"); prints what happens.
 * Returns the exit status: 0 answered in RFC 9329, 1 not, 2 usage. */
int cmd_probe(int argc, char **argv);

#endif
