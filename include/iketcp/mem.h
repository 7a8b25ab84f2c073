/*
 * Process-wide memory budget for the buffers libiketcp grows on demand:
 * send-queue rings (sendq.h) and deframer assembly buffers (deframer.h).
 *
 * Each connection's queue is already bounded by its own budget; this
 * bounds their sum, so that many connections whose peers stop reading
 * cannot together take all memory. A growth that would take the bytes
 * in use above the limit is refused and counted (iketcp_mem_refused()):
 *
 *   - ESP frames are dropped (iketcp_sendq_push() returns IKETCP_E_NOBUFS,
 *     as when the per-connection budget is full);
 *   - IKE frames are dropped the same way, except that an IKE ring may
 *     always grow to IKETCP_MEM_IKE_FLOOR bytes: DPD, rekeying and
 *     deletes must still reach the peer when bulk traffic has used the
 *     budget up, or the SAs would die with the memory pressure;
 *   - a frame that spans reads is assembled in a buffer that may always
 *     grow to IKETCP_MEM_ASM_FLOOR bytes (every MTU-sized ESP packet and
 *     most IKE messages); a larger one that is refused makes
 *     iketcp_deframer_next() return IKETCP_E_NOMEM.
 *
 * Floors are counted in the bytes in use but never refused, so the limit
 * can be exceeded by at most (IKETCP_MEM_IKE_FLOOR + IKETCP_MEM_ASM_FLOOR)
 * per connection. Memory is accounted by buffer capacity, not by the
 * bytes queued in it. Thread-safe (atomics); the counters are global to
 * the process.
 */
#ifndef IKETCP_MEM_H
#define IKETCP_MEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IKETCP_MEM_IKE_FLOOR (8u * 1024u)
#define IKETCP_MEM_ASM_FLOOR (2u * 1024u)

/* Sets the limit in bytes; 0 (the default) means no limit. Lowering it
 * below the bytes in use frees nothing: later growths are refused until
 * buffers have been trimmed or freed. */
void iketcp_mem_set_limit(size_t bytes);

/* Returns the limit (0: none). */
size_t iketcp_mem_limit(void);

/* Returns the bytes of queue and assembly buffers allocated now. */
size_t iketcp_mem_used(void);

/* Returns how many growths the limit has refused since the process started. */
uint64_t iketcp_mem_refused(void);

#ifdef __cplusplus
}
#endif
#endif
