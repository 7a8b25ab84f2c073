/* A program built against the installed libiketcp-dev (pkg-config and
 * find_package(iketcp)), run by tests/package/check-installed.sh: it frames an
 * IKE message, reads it back one byte at a time and checks what comes out. */
#include <iketcp/iketcp.h>
#include <stdio.h>
#include <string.h>

int
main(void)
{
	uint8_t ike[28] = {0};
	uint8_t wire[64];
	ike[17] = 0x20; /* IKEv2 */
	ike[18] = 34;   /* IKE_SA_INIT */
	ike[27] = sizeof(ike);
	int n = iketcp_frame_encode_ike(wire, sizeof(wire), ike, sizeof(ike));
	if (n <= 0) {
		fprintf(stderr, "encode: %s\n", iketcp_strerror(n));
		return 1;
	}
	struct iketcp_deframer d;
	struct iketcp_deframer_cfg cfg = {0};
	if (iketcp_deframer_init(&d, &cfg) != IKETCP_OK)
		return 1;
	int frames = 0;
	for (int i = 0; i < n; i++) {
		struct iketcp_cur in;
		const uint8_t *fr;
		size_t flen;
		iketcp_cur_init(&in, wire + i, 1);
		int rc;
		while ((rc = iketcp_deframer_next(&d, &in, &fr, &flen)) == 1) {
			struct iketcp_frame f;
			if (iketcp_frame_classify(fr, flen, &f) != IKETCP_OK ||
			    f.kind != IKETCP_FRAME_IKE || f.body_len != sizeof(ike) + 4 ||
			    memcmp(f.msg, ike, sizeof(ike)) != 0) {
				fprintf(stderr, "frame %d: not the IKE message sent\n", frames);
				return 1;
			}
			frames++;
		}
		if (rc < 0) {
			fprintf(stderr, "deframer: %s\n", iketcp_strerror(rc));
			return 1;
		}
	}
	iketcp_deframer_free(&d);
	if (frames != 1) {
		fprintf(stderr, "%d frames instead of 1\n", frames);
		return 1;
	}
	printf("libiketcp %s: %d-byte IKE frame encoded and parsed back\n", IKETCP_VERSION_STRING,
	       n);
	return 0;
}
