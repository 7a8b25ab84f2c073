/*
 * A small epoll event loop: fd watchers, one-shot timers in a binary heap,
 * and deferred destruction.
 *
 * Rule: an object is never freed inside its own callback (a callback that
 * closes its connection would otherwise return into freed memory).
 * Code that closes an object calls loop_defer() with its destructor; the
 * loop runs deferred destructors after the whole batch of epoll events has
 * been dispatched, and a watcher that was stopped is never called again
 * (its events later in the same batch are skipped).
 */
#ifndef IKETCPD_LOOP_H
#define IKETCPD_LOOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;

struct watcher {
	int fd;
	uint32_t events; /* EPOLLIN / EPOLLOUT interest */
	int active;      /* registered with epoll */
	void (*cb)(struct watcher *w, uint32_t revents);
	void *data;
};

struct timer {
	uint64_t when_ms;
	size_t heap_idx; /* SIZE_MAX when not armed */
	void (*cb)(struct timer *t);
	void *data;
};

struct deferred {
	void (*fn)(void *arg);
	void *arg;
	struct deferred *next;
};

/* Creates a loop. Returns NULL with errno set. */
struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Milliseconds on CLOCK_MONOTONIC, cached per loop iteration. */
uint64_t loop_now(struct loop *l);

/* Starts watching w->fd for events; returns 0 or -1 (errno). */
int watcher_start(struct loop *l, struct watcher *w, uint32_t events);
/* Changes the interest set (no system call when unchanged); returns 0 or -1. */
int watcher_set(struct loop *l, struct watcher *w, uint32_t events);
/* Stops watching; safe to call twice and from callbacks. */
void watcher_stop(struct loop *l, struct watcher *w);

void timer_init(struct timer *t, void (*cb)(struct timer *), void *data);
/* Arms (or re-arms) t to fire after ms milliseconds. Returns 0 or -1 (ENOMEM). */
int timer_start(struct loop *l, struct timer *t, uint64_t ms);
void timer_stop(struct loop *l, struct timer *t);
static inline int
timer_armed(const struct timer *t)
{
	return t->heap_idx != SIZE_MAX;
}

/* Runs fn(arg) after the current event batch. d is caller-owned storage
 * (embed it in the object); deferring the same d twice is ignored. */
void loop_defer(struct loop *l, struct deferred *d, void (*fn)(void *), void *arg);

/* One turn: waits up to max_wait_ms (-1: until the next timer or event)
 * for events, dispatches them, then due timers and deferred destructors.
 * Returns 0, or -1 if epoll_wait fails. */
int loop_once(struct loop *l, int max_wait_ms);

/* Runs until loop_stop(). Returns 0, or -1 if epoll_wait fails. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
