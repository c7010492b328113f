/* codec-zstd.so: Zstandard, one frame per event (with its content size,
 * checked against the length the event records). */
#include <stdio.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "strata/codec.h"

static size_t bound(size_t len)
{
	return ZSTD_compressBound(len);
}

static int encode(int level, const void *in, size_t len, void *out, size_t cap,
                  size_t *out_len, char *errmsg)
{
	if (level < 1 || level > 19) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "zstd: level %d is outside 1..19", level);
		return STRATA_EINVAL;
	}
	size_t n = ZSTD_compress(out, cap, in, len, level);
	if (ZSTD_isError(n)) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "zstd: encode: %s",
		         ZSTD_getErrorName(n));
		return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation
		               ? STRATA_ENOMEM
		               : STRATA_ETOOBIG;
	}
	*out_len = n;
	return 0;
}

static int decode(const void *in, size_t len, void *out, size_t out_len,
                  char *errmsg)
{
	unsigned long long size = ZSTD_getFrameContentSize(in, len);
	if (size != out_len) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "zstd: decode: corrupt input (%s)",
		         size == ZSTD_CONTENTSIZE_ERROR ? "not a zstd frame"
		         : size == ZSTD_CONTENTSIZE_UNKNOWN
		                 ? "no content size"
		                 : "content size differs from the event's");
		return STRATA_ECORRUPT;
	}
	if (ZSTD_findFrameCompressedSize(in, len) != len) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "zstd: decode: corrupt input (not exactly one "
		         "frame)");
		return STRATA_ECORRUPT;
	}
	size_t n = ZSTD_decompress(out, out_len, in, len);
	if (ZSTD_isError(n)) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "zstd: decode: corrupt input (%s)",
		         ZSTD_getErrorName(n));
		return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation
		               ? STRATA_ENOMEM
		               : STRATA_ECORRUPT;
	}
	if (n != out_len) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "zstd: decode: corrupt input (%zu bytes, expected "
		         "%zu)",
		         n, out_len);
		return STRATA_ECORRUPT;
	}
	return 0;
}

static const struct strata_codec_ops ops = {
        .abi_version = STRATA_CODEC_ABI_VERSION,
        .name = "zstd",
        .encoding_id = STRATA_CODEC_ID_ZSTD,
        .level_min = 1,
        .level_max = 19,
        .level_default = 3,
        .bound = bound,
        .encode = encode,
        .decode = decode,
};

STRATA_PLUGIN_EXPORT const struct strata_codec_ops *strata_codec_plugin(void)
{
	return &ops;
}
