/* Accounting behind include/iketcp/mem.h, for lib/ only. */
#ifndef IKETCP_MEM_INTERNAL_H
#define IKETCP_MEM_INTERNAL_H

#include <stddef.h>

#include "iketcp/mem.h"

/*
 * Takes n bytes from the budget. Returns 1, or 0 when the limit refuses
 * them (counted). With force, never refuses (the floors of mem.h).
 */
int iketcp__mem_take(size_t n, int force);

/* Gives back n bytes taken with iketcp__mem_take(). */
void iketcp__mem_give(size_t n);

#endif
