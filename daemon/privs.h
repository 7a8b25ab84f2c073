/*
 * What iketcpd needs from the system, and giving up the rest.
 *
 * Descriptors: every connection, IKE session and client flow holds one or
 * two sockets, so the configured limits decide how many descriptors the
 * process may need at once. The default RLIMIT_NOFILE soft limit (1024) is
 * far below what the defaults need (a server alone: 4096 connections + 8192
 * sessions); running into it shows up as accept() and socket() failing with
 * EMFILE under load, long after start-up. iketcpd therefore raises the
 * limit at start-up (and on a reload that needs more), or refuses to start.
 *
 * Privileges: root is needed only to bind ports below
 * net.ipv4.ip_unprivileged_port_start and to raise the hard RLIMIT_NOFILE.
 * With `user` set, iketcpd switches to that account once every socket is
 * open, keeping CAP_NET_BIND_SERVICE only when a configured port needs it
 * (so that a reload can bind another low port), CAP_NET_ADMIN only when a
 * client section sets mark or bypass-policy = yes (its outer sockets are
 * made later, at each connection), and nothing otherwise.
 */
#ifndef IKETCPD_PRIVS_H
#define IKETCPD_PRIVS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

/* Descriptors outside the sections: stdio, epoll, signalfd, syslog, the
 * stats socket and one reader, OpenSSL reading certificate files and
 * /dev/urandom on a reload, with room to spare. */
#define PRIVS_NOFILE_BASE 64
/* Per client section beyond its flows: the udp socket, and two name
 * lookups in flight (peer, proxy), each a socketpair plus what
 * getaddrinfo() opens (resolv.conf, hosts, a DNS socket). */
#define PRIVS_NOFILE_CLIENT 16

/*
 * The descriptors cfg may hold open at once: per server max-conns +
 * max-sessions + its listeners + 1 (a connection accepted only to be
 * refused), per client 2 x max-flows (a flow's TCP connection and, with
 * enable-tcp fallback or no, its UDP socket) + PRIVS_NOFILE_CLIENT, plus
 * PRIVS_NOFILE_BASE.
 */
uint64_t privs_nofile_need(const struct iketcpd_cfg *cfg);

/*
 * Makes RLIMIT_NOFILE at least need: the soft limit is raised (up to the
 * hard one), and the hard limit too when the process may (CAP_SYS_RESOURCE,
 * i.e. root before the drop). Never lowers anything. Returns 0, with *raised
 * set to the new soft limit or 0 when nothing changed; or -1 with err set to
 * the whole explanation (the number needed, the limits, the two ways out).
 */
int privs_nofile_raise(uint64_t need, uint64_t *raised, char *err, size_t errlen);

/* The lowest listen, listen-tls, client udp or metrics-listen port of cfg that is below
 * unpriv_start (see privs_unpriv_port_start()), or 0 when there is none. */
unsigned privs_low_port(const struct iketcpd_cfg *cfg, unsigned unpriv_start);

/* net.ipv4.ip_unprivileged_port_start of this network namespace (it also
 * applies to IPv6); 1024 when it cannot be read (kernels before 4.11). */
unsigned privs_unpriv_port_start(void);

/* The account of cfg's user and group, looked up before the drop (and
 * before daemon(): the lookup may need files a chroot would hide). */
struct privs_account {
	char name[IKETCPD_USER_MAX]; /* as configured */
	uid_t uid;
	gid_t gid;
	gid_t groups[64]; /* supplementary groups to set */
	int ngroups;
};

/* Looks up cfg->user and cfg->group. Returns 1 with *acct filled, 0 when
 * user is unset, or -1 with err set (unknown name, uid 0). */
int privs_lookup(const struct iketcpd_cfg *cfg, struct privs_account *acct, char *err,
		 size_t errlen);

/* What privs_drop() keeps (bits of its keep argument). */
#define PRIVS_KEEP_BIND 1u      /* CAP_NET_BIND_SERVICE */
#define PRIVS_KEEP_NET_ADMIN 2u /* CAP_NET_ADMIN: SO_MARK, IP_XFRM_POLICY */

/* 1 when a client section of cfg sets mark, or bypass-policy = yes: both
 * need CAP_NET_ADMIN at every connection (auto does not ask for it). */
int privs_need_net_admin(const struct iketcpd_cfg *cfg);

/* 1 when this thread has CAP_NET_ADMIN in its effective set. */
int privs_have_net_admin(void);

/*
 * Switches every thread to acct's uid, gid and groups for good, keeping
 * the capabilities named by keep (PRIVS_KEEP_*; effective and permitted,
 * nothing else) and no other; then checks the result
 * (all three uids and gids, the capability sets, and that uid 0 and gid 0
 * cannot be had back). Returns 0, or -1 with err set: the caller must not
 * go on then, as it may still be root.
 */
int privs_drop(const struct privs_account *acct, unsigned keep, char *err, size_t errlen);

#endif
