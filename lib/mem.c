#include "mem_internal.h"

#include <stdatomic.h>

static atomic_size_t mem_limit;
static atomic_size_t mem_used;
static atomic_uint_least64_t mem_refused;

void
iketcp_mem_set_limit(size_t bytes)
{
	atomic_store_explicit(&mem_limit, bytes, memory_order_relaxed);
}

size_t
iketcp_mem_limit(void)
{
	return atomic_load_explicit(&mem_limit, memory_order_relaxed);
}

size_t
iketcp_mem_used(void)
{
	return atomic_load_explicit(&mem_used, memory_order_relaxed);
}

uint64_t
iketcp_mem_refused(void)
{
	return atomic_load_explicit(&mem_refused, memory_order_relaxed);
}

int
iketcp__mem_take(size_t n, int force)
{
	size_t limit = atomic_load_explicit(&mem_limit, memory_order_relaxed);

	if (force || limit == 0) {
		atomic_fetch_add_explicit(&mem_used, n, memory_order_relaxed);
		return 1;
	}
	/* Compare and swap, not add-then-check: two threads growing at once
	 * must not both pass a limit that only one of them fits under. */
	size_t cur = atomic_load_explicit(&mem_used, memory_order_relaxed);
	do {
		if (n > limit || cur > limit - n) {
			atomic_fetch_add_explicit(&mem_refused, 1, memory_order_relaxed);
			return 0;
		}
	} while (!atomic_compare_exchange_weak_explicit(
		&mem_used, &cur, cur + n, memory_order_relaxed, memory_order_relaxed));
	return 1;
}

void
iketcp__mem_give(size_t n)
{
	atomic_fetch_sub_explicit(&mem_used, n, memory_order_relaxed);
}
