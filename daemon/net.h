/* Socket helpers shared by the server and client modes. */
#ifndef IKETCPD_NET_H
#define IKETCPD_NET_H

#include "config.h"

/* A non-blocking, close-on-exec listening TCP socket (IPv6 sockets are
 * V6ONLY so that [::]:P and 0.0.0.0:P can both be listed). Returns fd or -1. */
int net_tcp_listen(const struct iketcpd_addr *a, int backlog);

/* A non-blocking UDP socket, bound to bind_to when not NULL and connected
 * to connect_to when not NULL. Returns fd or -1. */
int net_udp_socket(int family, const struct iketcpd_addr *bind_to,
		   const struct iketcpd_addr *connect_to);

/* Starts a non-blocking connect. Returns fd (connect may be in progress) or -1. */
int net_tcp_connect(const struct iketcpd_addr *a);

/* Sets TCP_NODELAY (frames are latency sensitive and already batched) and
 * optional SO_KEEPALIVE (R49). Returns 0 or -1. */
int net_tcp_tune(int fd, int keepalive);

/* Resolves "host" + port to the first usable address (blocking getaddrinfo,
 * used at start-up and on reconnect). Returns 0 or -1. */
int net_resolve(const char *host, uint16_t port, struct iketcpd_addr *out);

/* Compares the IP part of two addresses (not the port). Returns 1 if equal. */
int net_same_ip(const struct iketcpd_addr *a, const struct iketcpd_addr *b);

#endif
