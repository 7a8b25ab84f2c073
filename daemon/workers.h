/*
 * Workers (`workers = auto|N`, N > 1): one supervisor process and N worker
 * processes, forked after the configuration is read and the listeners are
 * bound.
 *
 * The supervisor binds every server listener N times with SO_REUSEPORT, in
 * worker order, attaches a classic BPF program to each group that picks
 * the socket by a hash of the client's source address (so that every
 * connection from one address, a TCP reconnect included, reaches the
 * worker that holds that address's IKE sessions), forks the workers and
 * keeps all the listeners open: a worker that dies leaves its socket in
 * the group, so no other address changes worker and the connections that
 * arrive meanwhile wait in its backlog for the restarted worker.
 *
 * A worker runs the single-process code for the server sections (and,
 * worker 0 only, the client sections) with its own event loop; it takes
 * its share of each listener through net_listen_hook. It talks to the
 * supervisor over a SOCK_SEQPACKET socketpair: "ready" once it runs, and
 * the answer to each stats request. When the supervisor goes away, the
 * worker stops.
 *
 * The supervisor keeps the signals (SIGHUP, SIGUSR1 forwarded, SIGTERM
 * stops every worker and waits for them), restarts a worker that died
 * (with a back-off), reports READY=1 once every worker is ready, and
 * serves the stats socket and metrics-listen by asking every worker and
 * merging the answers (statmerge.h).
 */
#ifndef IKETCPD_WORKERS_H
#define IKETCPD_WORKERS_H

#include <stdio.h>

#include "config.h"
#include "loop.h"
#include "statsock.h"

enum workers_role {
	WORKERS_SINGLE,     /* workers = 1: the one process of old */
	WORKERS_SUPERVISOR, /* no sections: signals, stats, restarts */
	WORKERS_WORKER,
};

/* A supervisor waits this long for the workers' stats answers. */
#define WORKERS_ANSWER_MS 1000
/* Restart back-off: first delay, and its bound (doubling while a worker
 * keeps dying within WORKERS_STABLE_MS of its start). */
#define WORKERS_BACKOFF_MIN_MS 100
#define WORKERS_BACKOFF_MAX_MS 10000
#define WORKERS_STABLE_MS 10000

enum workers_role workers_role(void);
/* This worker's index (0 in the other roles). */
unsigned workers_index(void);
/* Processes that cfg asks for: workers, or the online CPUs for auto. */
unsigned workers_wanted(const struct iketcpd_cfg *cfg);
/* Does this process run the server sections, the client sections? */
int workers_runs_servers(void);
int workers_runs_clients(void);
/* The max-memory share of this process (the workers split it). */
uint64_t workers_memory_share(uint64_t limit);

/* Called after a fork by workers.c, in the new worker, to run it: it
 * must not return. arg is what workers_start() was given. */
typedef void workers_child_fn(void *arg);

/*
 * With n > 1: binds the listeners of cfg (n each), detaches when daemonize,
 * and forks the workers. Returns the role of the process that returns
 * (WORKERS_SUPERVISOR, or WORKERS_WORKER in each child), or -1 with the
 * reason logged. child is used for later restarts only.
 */
int workers_start(const struct iketcpd_cfg *cfg, unsigned n, int daemonize, workers_child_fn *child,
		  void *arg);

/* Supervisor, once its loop runs: watch the workers. all_ready is called
 * once, when every worker has said it is ready. */
void workers_supervise(struct loop *l, void (*all_ready)(void *), void *arg);
/* SIGCHLD: reaps, logs, schedules restarts. */
void workers_reap(void);
/* Sends sig to every running worker. */
void workers_signal(int sig);
/* Shutdown: no restarts from now on; closes the supervisor's listeners,
 * sends SIGTERM. */
void workers_stop(void);
/* Workers started with (0 in the single process). */
unsigned workers_count(void);
/* Running workers. */
unsigned workers_alive(void);
/* 1 when a worker died before every worker was ready (the start failed). */
int workers_failed(void);
/* SIGHUP in the supervisor or a worker: the listeners that cfg no longer
 * names are closed (a removed address must stop taking connections). */
void workers_reload(const struct iketcpd_cfg *cfg);
/* The merged answer of every worker (and the supervisor's own counters). */
void workers_render(enum statsock_req req, FILE *fp);

/* Worker: answers the supervisor's requests from l with render(arg), and
 * stops (SIGTERM to itself) when the supervisor is gone. */
void workers_attach(struct loop *l, statsock_render_fn *render, void *arg);
/* Worker: tells the supervisor it runs. */
void workers_ready(void);

#endif
