/*
 * The service manager's readiness protocol (sd_notify(3)), spoken directly:
 * one AF_UNIX datagram of "KEY=VALUE\n" lines to the socket named by
 * $NOTIFY_SOCKET. No libsystemd, so iketcpd builds and runs the same with
 * and without systemd; without $NOTIFY_SOCKET every call does nothing.
 */
#ifndef IKETCPD_SDNOTIFY_H
#define IKETCPD_SDNOTIFY_H

#include <stddef.h>
#include <stdint.h>

/* Reads $NOTIFY_SOCKET and opens the socket to it. Call once at start,
 * before detaching and before the switch to another user (the socket file
 * may only be writable as started). 1 = a manager listens, 0 = none (or an
 * unusable address, then err says why), -1 = socket() failed (err). */
int sdnotify_init(char *err, size_t errlen);

/* Whether sdnotify_init found a manager. */
int sdnotify_enabled(void);

/* Sends one message: printf-style, lines separated by '\n'. Failures are
 * ignored by callers: a manager that went away must not stop the gateway.
 * Returns 0 when sent or disabled, -1 on a send error. */
int sdnotify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* CLOCK_MONOTONIC in microseconds, for RELOADING=1's MONOTONIC_USEC. */
uint64_t sdnotify_monotonic_usec(void);

/* The socket, closed (tests; and at exit). */
void sdnotify_close(void);

#endif
