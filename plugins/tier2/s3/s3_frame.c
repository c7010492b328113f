/* Framed s3 objects: 64 KiB data blocks, each followed by its CRC32C
 * (common/crc32c.c, compiled into the plugin). */
#include "plugins/tier2/s3/s3_frame.h"

#include <string.h>

#include "common/crc32c.h"
#include "common/le.h"

#define STRIDE (S3_FRAME_BLOCK + S3_FRAME_CRC)

uint64_t s3_frame_size(uint64_t len)
{
	return len +
	       S3_FRAME_CRC * ((len + S3_FRAME_BLOCK - 1) / S3_FRAME_BLOCK);
}

bool s3_frame_len(uint64_t size, uint64_t *len)
{
	uint64_t rem = size % STRIDE;
	if (rem != 0 && rem <= S3_FRAME_CRC) {
		return false;
	}
	*len = size / STRIDE * S3_FRAME_BLOCK +
	       (rem != 0 ? rem - S3_FRAME_CRC : 0);
	return true;
}

void s3_frame_encode(void *dst, const void *src, size_t len)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	while (len > 0) {
		size_t n = len < S3_FRAME_BLOCK ? len : (size_t)S3_FRAME_BLOCK;
		memcpy(d, s, n);
		le32_put(d + n, crc32c_extend(0, s, n));
		d += n + S3_FRAME_CRC;
		s += n;
		len -= n;
	}
}

void s3_frame_span(uint64_t off, uint64_t n, uint64_t olen, uint64_t *boff,
                   uint64_t *foff, uint64_t *flen)
{
	uint64_t first = off / S3_FRAME_BLOCK;
	uint64_t last = (off + n - 1) / S3_FRAME_BLOCK; /* inclusive */
	uint64_t end = (last + 1) * S3_FRAME_BLOCK;
	if (end > olen) {
		end = olen;
	}
	*boff = first * S3_FRAME_BLOCK;
	*foff = first * STRIDE;
	*flen = s3_frame_size(end - *boff);
}

bool s3_frame_decode(const void *src, size_t flen, void *dst, size_t *bad)
{
	const uint8_t *s = src;
	uint8_t *d = dst;
	for (size_t k = 0; flen > 0; k++) {
		size_t n = flen < STRIDE ? flen : (size_t)STRIDE;
		if (n <= S3_FRAME_CRC) {
			*bad = k;
			return false;
		}
		n -= S3_FRAME_CRC;
		if (crc32c_extend(0, s, n) != le32_get(s + n)) {
			*bad = k;
			return false;
		}
		memmove(d, s, n);
		d += n;
		s += n + S3_FRAME_CRC;
		flen -= n + S3_FRAME_CRC;
	}
	return true;
}
