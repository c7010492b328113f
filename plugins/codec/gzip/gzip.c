/* codec-gzip.so: one gzip member per event (RFC 1952, with its CRC-32 and
 * length trailer), so other tools can read a payload as a .gz file. Each
 * thread keeps its deflate and inflate streams and resets them per event
 * (deflateInit2 allocates and clears about 270 KiB). */
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "strata/codec.h"

#define GZIP_WBITS (15 + 16) /* 32 KiB window, gzip wrapper */

/* One thread's streams. */
struct tls {
	z_stream d;
	bool d_ready;
	int d_level;
	z_stream i;
	bool i_ready;
};

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void free_tls(void *p)
{
	struct tls *t = p;
	if (t->d_ready) {
		deflateEnd(&t->d);
	}
	if (t->i_ready) {
		inflateEnd(&t->i);
	}
	free(t);
}

static void make_key(void)
{
	(void)pthread_key_create(&key, free_tls);
}

static struct tls *tls(void)
{
	pthread_once(&once, make_key);
	struct tls *t = pthread_getspecific(key);
	if (t == NULL && (t = calloc(1, sizeof(*t))) != NULL &&
	    pthread_setspecific(key, t) != 0) {
		free(t);
		t = NULL;
	}
	return t;
}

/* This thread's deflate stream, reset, at level; NULL when out of
 * memory. */
static z_stream *deflater(int level)
{
	struct tls *t = tls();
	if (t == NULL) {
		return NULL;
	}
	if (t->d_ready &&
	    (deflateReset(&t->d) != Z_OK ||
	     (t->d_level != level &&
	      deflateParams(&t->d, level, Z_DEFAULT_STRATEGY) != Z_OK))) {
		deflateEnd(&t->d);
		t->d_ready = false;
	}
	if (!t->d_ready) {
		memset(&t->d, 0, sizeof(t->d));
		if (deflateInit2(&t->d, level, Z_DEFLATED, GZIP_WBITS, 8,
		                 Z_DEFAULT_STRATEGY) != Z_OK) {
			return NULL;
		}
		t->d_ready = true;
	}
	t->d_level = level;
	return &t->d;
}

static z_stream *inflater(void)
{
	struct tls *t = tls();
	if (t == NULL) {
		return NULL;
	}
	if (t->i_ready && inflateReset(&t->i) != Z_OK) {
		inflateEnd(&t->i);
		t->i_ready = false;
	}
	if (!t->i_ready) {
		memset(&t->i, 0, sizeof(t->i));
		if (inflateInit2(&t->i, GZIP_WBITS) != Z_OK) {
			return NULL;
		}
		t->i_ready = true;
	}
	return &t->i;
}

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
	z_stream *z = deflater(level);
	if (z == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "gzip: encode: out of memory");
		return STRATA_ENOMEM;
	}
	z->next_in = (Bytef *)(uintptr_t)in;
	z->avail_in = (uInt)len;
	z->next_out = out;
	z->avail_out = (uInt)cap;
	int rc = deflate(z, Z_FINISH);
	size_t n = z->total_out;
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
	z_stream *z = inflater();
	if (z == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "gzip: decode: out of memory");
		return STRATA_ENOMEM;
	}
	/* One spare output byte tells "longer than recorded" from "exact". */
	unsigned char spare;
	z->next_in = (Bytef *)(uintptr_t)in;
	z->avail_in = (uInt)len;
	z->next_out = out;
	z->avail_out = (uInt)out_len;
	int rc = inflate(z, Z_FINISH);
	if (rc != Z_STREAM_END && z->avail_out == 0 && rc != Z_DATA_ERROR &&
	    rc != Z_MEM_ERROR) {
		z->next_out = &spare;
		z->avail_out = 1;
		rc = inflate(z, Z_FINISH);
		if (z->avail_out == 0) {
			rc = Z_BUF_ERROR; /* produced more than recorded */
		}
	}
	size_t produced = z->total_out;
	size_t left = z->avail_in;
	char reason[128];
	snprintf(reason, sizeof(reason), "%s",
	         z->msg != NULL ? z->msg : "truncated or too long");
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
