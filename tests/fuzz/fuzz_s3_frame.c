/* libFuzzer harness: the s3 tier-2 plugin's framed objects (an object's
 * bytes come from the store: untrusted). The input is an object; its first
 * bytes also pick a range. A size s3_frame_len refuses must not decode; a
 * range that decodes must be exactly what encoding its data gives back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/tier2/s3/s3_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t len = 0;
	if (!s3_frame_len(size, &len) || len == 0) {
		return 0;
	}
	if (s3_frame_size(len) != size) {
		abort();
	}
	uint64_t off = size > 1 ? (data[0] | (uint64_t)data[1] << 8) % len : 0;
	uint64_t n = size > 3 ? (data[2] | (uint64_t)data[3] << 8) : 1;
	if (n == 0 || n > len - off) {
		n = len - off;
	}
	uint64_t boff, foff, flen;
	s3_frame_span(off, n, len, &boff, &foff, &flen);
	if (boff > off || foff + flen > size || boff % S3_FRAME_BLOCK != 0) {
		abort();
	}
	uint8_t *buf = malloc(flen);
	uint8_t *again = malloc(flen);
	if (buf == NULL || again == NULL) {
		abort();
	}
	memcpy(buf, data + foff, flen);
	size_t bad = 0;
	if (s3_frame_decode(buf, flen, buf, &bad)) {
		uint64_t dlen =
		        flen - S3_FRAME_CRC * ((flen + S3_FRAME_BLOCK +
		                                S3_FRAME_CRC - 1) /
		                               (S3_FRAME_BLOCK + S3_FRAME_CRC));
		if (s3_frame_size(dlen) != flen || off + n > boff + dlen) {
			abort();
		}
		s3_frame_encode(again, buf, dlen);
		if (memcmp(again, data + foff, flen) != 0) {
			abort();
		}
	} else if ((uint64_t)bad * (S3_FRAME_BLOCK + S3_FRAME_CRC) >= flen) {
		abort();
	}
	free(again);
	free(buf);
	return 0;
}
