/*
 * Target Functions: iketcp_deframer_init, iketcp_deframer_next,
 * iketcp_deframer_trim, iketcp_deframer_pending, iketcp_deframer_free,
 * iketcp_frame_classify (on every frame handed out).
 *
 * The TCP originator's view (and both directions of the responder after
 * the prefix): no stream prefix. Input layout and checks: deframer_harness.h.
 */
#include "deframer_harness.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return df_fuzz_one(data, size, 0);
}
