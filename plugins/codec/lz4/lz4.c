/* codec-lz4.so: LZ4 block format (level 0 fast, 1..12 high compression);
 * the event records the decoded length the block must produce. */
#include <limits.h>
#include <stdio.h>

#include <lz4.h>
#include <lz4hc.h>

#include "strata/codec.h"

static size_t bound(size_t len)
{
	return len <= LZ4_MAX_INPUT_SIZE ? (size_t)LZ4_compressBound((int)len)
	                                 : len;
}

static int encode(int level, const void *in, size_t len, void *out, size_t cap,
                  size_t *out_len, char *errmsg)
{
	if (level < 0 || level > 12) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "lz4: level %d is outside 0..12", level);
		return STRATA_EINVAL;
	}
	if (len > LZ4_MAX_INPUT_SIZE || cap > INT_MAX) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "lz4: encode: %zu bytes exceed LZ4's %d-byte limit",
		         len, LZ4_MAX_INPUT_SIZE);
		return STRATA_ETOOBIG;
	}
	int n = level == 0
	                ? LZ4_compress_default(in, out, (int)len, (int)cap)
	                : LZ4_compress_HC(in, out, (int)len, (int)cap, level);
	if (n <= 0 && len > 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "lz4: encode: output does not fit %zu bytes", cap);
		return STRATA_ETOOBIG;
	}
	*out_len = (size_t)n;
	return 0;
}

static int decode(const void *in, size_t len, void *out, size_t out_len,
                  char *errmsg)
{
	if (len > INT_MAX || out_len > INT_MAX) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "lz4: decode: %zu bytes in or %zu out exceed LZ4's "
		         "limit",
		         len, out_len);
		return STRATA_ECORRUPT;
	}
	int n = LZ4_decompress_safe(in, out, (int)len, (int)out_len);
	if (n < 0 || (size_t)n != out_len) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "lz4: decode: corrupt input (%s)",
		         n < 0 ? "malformed block"
		               : "fewer bytes than the event records");
		return STRATA_ECORRUPT;
	}
	return 0;
}

static const struct strata_codec_ops ops = {
        .abi_version = STRATA_CODEC_ABI_VERSION,
        .name = "lz4",
        .encoding_id = STRATA_CODEC_ID_LZ4,
        .level_min = 0,
        .level_max = 12,
        .level_default = 0,
        .bound = bound,
        .encode = encode,
        .decode = decode,
};

STRATA_PLUGIN_EXPORT const struct strata_codec_ops *strata_codec_plugin(void)
{
	return &ops;
}
