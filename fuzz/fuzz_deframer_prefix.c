/*
 * Target Functions: iketcp_deframer_init (expect_prefix = 1),
 * iketcp_deframer_next, iketcp_deframer_prefix_done, iketcp_deframer_trim,
 * iketcp_deframer_pending, iketcp_deframer_free, iketcp_frame_classify.
 *
 * The TCP responder's view: the stream must start with "IKETCP" (R16,
 * R26), split across reads in any way. Flag bit 7 of the input header
 * makes the harness supply a correct prefix, so mutations of the frames
 * are not wasted on a broken prefix; without it the fuzzer works on the
 * prefix bytes themselves. Input layout and checks: deframer_harness.h.
 */
#include "deframer_harness.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return df_fuzz_one(data, size, 1);
}
