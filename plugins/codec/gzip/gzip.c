/* codec-gzip.so: one gzip member per event (RFC 1952, with its CRC-32 and
 * length trailer), so other tools can read a payload as a .gz file. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>

#include "strata/codec.h"

#define GZIP_WBITS (15 + 16) /* 32 KiB window, gzip wrapper */

static size_t bound(size_t len)
{
	/* deflateBound's zlib-wrapper figure plus gzip's larger header
	 * and trailer (18 bytes instead of 6). */
	return (size_t)compressBound((uLong)len) + 18;
}

static int encode(int level, const void *in, size_t len, void *out, size_t cap,
                  size_t *out_len, char *errmsg)
{
	if (level < 1 || level > 9) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "gzip: level %d is outside 1..9", level);
		return STRATA_EINVAL;
	}
	if (len > UINT_MAX || cap > UINT_MAX) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "gzip: encode: %zu bytes exceed zlib's limit", len);
		return STRATA_ETOOBIG;
	}
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, level, Z_DEFLATED, GZIP_WBITS, 8,
	                 Z_DEFAULT_STRATEGY) != Z_OK) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "gzip: encode: out of memory");
		return STRATA_ENOMEM;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	size_t n = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "gzip: encode: output does not fit %zu bytes (zlib "
		         "%d)",
		         cap, rc);
		return STRATA_ETOOBIG;
	}
	*out_len = n;
	return 0;
}

static int decode(const void *in, size_t len, void *out, size_t out_len,
                  char *errmsg)
{
	if (len > UINT_MAX || out_len > UINT_MAX) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "gzip: decode: %zu bytes in or %zu out exceed zlib's "
		         "limit",
		         len, out_len);
		return STRATA_ECORRUPT;
	}
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, GZIP_WBITS) != Z_OK) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "gzip: decode: out of memory");
		return STRATA_ENOMEM;
	}
	/* One spare output byte tells "longer than recorded" from "exact". */
	unsigned char spare;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)out_len;
	int rc = inflate(&z, Z_FINISH);
	if (rc != Z_STREAM_END && z.avail_out == 0 && rc != Z_DATA_ERROR &&
	    rc != Z_MEM_ERROR) {
		z.next_out = &spare;
		z.avail_out = 1;
		rc = inflate(&z, Z_FINISH);
		if (z.avail_out == 0) {
			rc = Z_BUF_ERROR; /* produced more than recorded */
		}
	}
	size_t produced = z.total_out;
	size_t left = z.avail_in;
	const char *why = z.msg != NULL ? z.msg : "truncated or too long";
	char reason[128];
	snprintf(reason, sizeof(reason), "%s", why);
	inflateEnd(&z);
	if (rc == Z_MEM_ERROR) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "gzip: decode: out of memory");
		return STRATA_ENOMEM;
	}
	if (rc != Z_STREAM_END || produced != out_len || left != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "gzip: decode: corrupt input (%s)",
		         rc != Z_STREAM_END    ? reason
		         : produced != out_len ? "length differs from the "
		                                 "event's"
		                               : "bytes after the gzip member");
		return STRATA_ECORRUPT;
	}
	return 0;
}

static const struct strata_codec_ops ops = {
        .abi_version = STRATA_CODEC_ABI_VERSION,
        .name = "gzip",
        .encoding_id = STRATA_CODEC_ID_GZIP,
        .level_min = 1,
        .level_max = 9,
        .level_default = 6,
        .bound = bound,
        .encode = encode,
        .decode = decode,
};

STRATA_PLUGIN_EXPORT const struct strata_codec_ops *strata_codec_plugin(void)
{
	return &ops;
}
