#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define MAX_EVENTS 256

struct loop {
	int epfd;
	int stop;
	uint64_t now;
	struct timer **heap;
	size_t nheap, capheap;
	struct deferred *deferred;
};

static uint64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct loop *
loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	l->now = mono_ms();
	return l;
}

static void
run_deferred(struct loop *l)
{
	while (l->deferred) {
		struct deferred *d = l->deferred;
		l->deferred = d->next;
		d->next = NULL;
		void (*fn)(void *) = d->fn;
		d->fn = NULL;
		fn(d->arg); /* may free d's owner */
	}
}

void
loop_free(struct loop *l)
{
	if (!l)
		return;
	run_deferred(l);
	close(l->epfd);
	free(l->heap);
	free(l);
}

uint64_t
loop_now(struct loop *l)
{
	return l->now;
}

int
watcher_start(struct loop *l, struct watcher *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};
	if (w->active)
		return watcher_set(l, w, events);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0)
		return -1;
	w->events = events;
	w->active = 1;
	return 0;
}

int
watcher_set(struct loop *l, struct watcher *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};
	if (!w->active)
		return watcher_start(l, w, events);
	if (w->events == events)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0)
		return -1;
	w->events = events;
	return 0;
}

void
watcher_stop(struct loop *l, struct watcher *w)
{
	if (!w->active)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->active = 0;
}

/* ---- timers: binary min-heap on when_ms ---- */

void
timer_init(struct timer *t, void (*cb)(struct timer *), void *data)
{
	t->when_ms = 0;
	t->heap_idx = SIZE_MAX;
	t->cb = cb;
	t->data = data;
}

static void
heap_swap(struct loop *l, size_t a, size_t b)
{
	struct timer *t = l->heap[a];
	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->heap_idx = a;
	l->heap[b]->heap_idx = b;
}

static void
heap_up(struct loop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (l->heap[p]->when_ms <= l->heap[i]->when_ms)
			break;
		heap_swap(l, p, i);
		i = p;
	}
}

static void
heap_down(struct loop *l, size_t i)
{
	for (;;) {
		size_t a = 2 * i + 1, b = a + 1, m = i;
		if (a < l->nheap && l->heap[a]->when_ms < l->heap[m]->when_ms)
			m = a;
		if (b < l->nheap && l->heap[b]->when_ms < l->heap[m]->when_ms)
			m = b;
		if (m == i)
			return;
		heap_swap(l, i, m);
		i = m;
	}
}

void
timer_stop(struct loop *l, struct timer *t)
{
	size_t i = t->heap_idx;
	if (i == SIZE_MAX)
		return;
	t->heap_idx = SIZE_MAX;
	l->nheap--;
	if (i == l->nheap)
		return;
	l->heap[i] = l->heap[l->nheap];
	l->heap[i]->heap_idx = i;
	heap_up(l, i);
	heap_down(l, l->heap[i]->heap_idx);
}

int
timer_start(struct loop *l, struct timer *t, uint64_t ms)
{
	timer_stop(l, t);
	if (l->nheap == l->capheap) {
		size_t cap = l->capheap ? l->capheap * 2 : 64;
		struct timer **h = realloc(l->heap, cap * sizeof(*h));
		if (!h)
			return -1;
		l->heap = h;
		l->capheap = cap;
	}
	t->when_ms = mono_ms() + ms;
	t->heap_idx = l->nheap;
	l->heap[l->nheap++] = t;
	heap_up(l, t->heap_idx);
	return 0;
}

void
loop_defer(struct loop *l, struct deferred *d, void (*fn)(void *), void *arg)
{
	if (d->fn)
		return; /* already scheduled */
	d->fn = fn;
	d->arg = arg;
	d->next = l->deferred;
	l->deferred = d;
}

void
loop_stop(struct loop *l)
{
	l->stop = 1;
}

static void
run_timers(struct loop *l)
{
	l->now = mono_ms();
	while (l->nheap && l->heap[0]->when_ms <= l->now) {
		struct timer *t = l->heap[0];
		timer_stop(l, t);
		t->cb(t);
	}
}

int
loop_once(struct loop *l, int max_wait_ms)
{
	struct epoll_event ev[MAX_EVENTS];
	int timeout = max_wait_ms;

	l->now = mono_ms();
	if (l->nheap) {
		uint64_t w = l->heap[0]->when_ms;
		int t = w <= l->now ? 0 : (int)(w - l->now > 60000 ? 60000 : w - l->now);
		if (timeout < 0 || t < timeout)
			timeout = t;
	}
	int n = epoll_wait(l->epfd, ev, MAX_EVENTS, timeout);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		log_err("epoll_wait: %s", strerror(errno));
		return -1;
	}
	l->now = mono_ms();
	for (int i = 0; i < n; i++) {
		struct watcher *w = ev[i].data.ptr;
		/* A watcher stopped earlier in this batch (its object is being
		 * destroyed) must not be called. Objects are only freed by
		 * run_deferred(), after the batch. */
		if (!w->active)
			continue;
		w->cb(w, ev[i].events);
	}
	run_deferred(l);
	run_timers(l);
	run_deferred(l);
	return 0;
}

int
loop_run(struct loop *l)
{
	l->stop = 0;
	while (!l->stop)
		if (loop_once(l, -1) < 0)
			return -1;
	return 0;
}
