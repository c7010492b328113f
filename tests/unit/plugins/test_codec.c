/* Unit tests for the codec plugins (plugins/codec/): each codec-<name>.so
 * is dlopen()ed from the build tree and driven through its ops table. */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "strata/codec.h"
#include "tests/lib/check.h"

#define CANARY 0xa5
#define SLACK 16 /* canary bytes after every decode buffer */

struct codec {
	const char *name;
	uint32_t id;
	int level_min;
	int level_max;
	int level_default;
	int checksummed; /* success implies the original bytes */
	size_t magic;    /* leading bytes any change to which is caught */
	void *handle;
	const struct strata_codec_ops *ops;
};

static struct codec codecs[] = {
        /* zstd: frame magic; gzip: ID1 ID2 CM (FLG's FTEXT bit, MTIME, XFL
         * and OS are ignored by readers). */
        {"zstd", STRATA_CODEC_ID_ZSTD, 1, 19, 3, 1, 4, NULL, NULL},
        {"lz4", STRATA_CODEC_ID_LZ4, 0, 12, 0, 0, 0, NULL, NULL},
        {"gzip", STRATA_CODEC_ID_GZIP, 1, 9, 6, 1, 3, NULL, NULL},
};
#define N_CODECS (sizeof(codecs) / sizeof(codecs[0]))

static char err[STRATA_ERRMSG_SIZE];

static int load_codecs(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_CODECS; i++) {
		struct codec *c = &codecs[i];
		char path[4096];
		snprintf(path, sizeof(path), "%s/codec-%s.so", CODEC_PLUGIN_DIR,
		         c->name);
		c->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (c->handle == NULL) {
			fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
			return -1;
		}
		void *sym = dlsym(c->handle, STRATA_CODEC_ENTRY);
		if (sym == NULL) {
			fprintf(stderr, "%s: no %s\n", path,
			        STRATA_CODEC_ENTRY);
			return -1;
		}
		c->ops = ((strata_codec_entry_fn)sym)();
	}
	return 0;
}

static int unload_codecs(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_CODECS; i++) {
		if (codecs[i].handle != NULL) {
			dlclose(codecs[i].handle);
			codecs[i].handle = NULL;
		}
	}
	return 0;
}

/* Text that compresses well, n bytes. */
static void fill_text(uint8_t *p, size_t n)
{
	static const char words[] = "ts=1700000000 sensor=42 temp=21.5 "
	                            "unit=C status=ok\n";
	for (size_t i = 0; i < n; i++) {
		p[i] = (uint8_t)words[i % (sizeof(words) - 1)];
	}
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n > 0 ? n : 1);
	assert_non_null(p);
	return p;
}

/* An error's message names the codec and the operation. */
static void assert_err_prefix(const struct codec *c, const char *op)
{
	char want[64];
	snprintf(want, sizeof(want), "%s: %s: ", c->name, op);
	if (strncmp(err, want, strlen(want)) != 0) {
		fail_msg("%s: message '%s' does not start with '%s'", c->name,
		         err, want);
	}
}

/* Encode len bytes at level into an exactly bound()-sized buffer. */
static uint8_t *encode(const struct codec *c, int level, const uint8_t *in,
                       size_t len, size_t *enc_len)
{
	size_t cap = c->ops->bound(len);
	assert_true(cap >= len);
	uint8_t *out = xmalloc(cap);
	*enc_len = SIZE_MAX;
	int rc = c->ops->encode(level, in, len, out, cap, enc_len, err);
	if (rc != 0) {
		fail_msg("%s level %d: encode %zu bytes: %d (%s)", c->name,
		         level, len, rc, err);
	}
	assert_true(*enc_len <= cap);
	return out;
}

/* Decode len bytes (copied into an exactly sized buffer, so ASan sees any
 * overread) into out_len bytes followed by a canary that must survive.
 * Returns the code; *outp (if not NULL) gets the output. */
static int decode(const struct codec *c, const uint8_t *in, size_t len,
                  size_t out_len, uint8_t **outp)
{
	uint8_t *src = xmalloc(len);
	if (len > 0) {
		memcpy(src, in, len);
	}
	uint8_t *out = xmalloc(out_len + SLACK);
	memset(out, CANARY, out_len + SLACK);
	memset(err, 0xff, sizeof(err));
	int rc = c->ops->decode(src, len, out, out_len, err);
	for (size_t i = out_len; i < out_len + SLACK; i++) {
		if (out[i] != CANARY) {
			fail_msg("%s: decode of %zu bytes into %zu wrote past "
			         "the end",
			         c->name, len, out_len);
		}
	}
	if (rc != 0) {
		if (memchr(err, '\0', sizeof(err)) == NULL) {
			fail_msg("%s: decode error %d without a terminated "
			         "message",
			         c->name, rc);
		}
		assert_err_prefix(c, "decode");
	}
	free(src);
	if (outp != NULL) {
		*outp = out;
	} else {
		free(out);
	}
	return rc;
}

static void round_trip(const struct codec *c, int level, const uint8_t *in,
                       size_t len, size_t *enc_len)
{
	uint8_t *enc = encode(c, level, in, len, enc_len);
	uint8_t *out = NULL;
	int rc = decode(c, enc, *enc_len, len, &out);
	if (rc != 0) {
		fail_msg("%s level %d: decode %zu bytes: %d (%s)", c->name,
		         level, len, rc, err);
	}
	if (len > 0 && memcmp(out, in, len) != 0) {
		fail_msg("%s level %d: %zu bytes differ after a round trip",
		         c->name, level, len);
	}
	free(out);
	free(enc);
}

/* The table: ABI, name, id, levels, ops; only the entry is exported. */
static void test_table(void **state)
{
	const struct codec *c = *state;
	const struct strata_codec_ops *o = c->ops;
	assert_non_null(o);
	assert_int_equal(o->abi_version, STRATA_CODEC_ABI_VERSION);
	assert_int_equal(o->reserved, 0);
	assert_string_equal(o->name, c->name);
	assert_int_equal(o->encoding_id, c->id);
	assert_int_equal(o->level_min, c->level_min);
	assert_int_equal(o->level_max, c->level_max);
	assert_int_equal(o->level_default, c->level_default);
	assert_non_null(o->bound);
	assert_non_null(o->encode);
	assert_non_null(o->decode);
	assert_true(o->bound(0) > 0);
	assert_true(o->bound(1 << 20) >= 1 << 20);
	/* The same table on every call. */
	strata_codec_entry_fn entry =
	        (strata_codec_entry_fn)dlsym(c->handle, STRATA_CODEC_ENTRY);
	assert_ptr_equal(entry(), o);
	/* Hidden visibility: the ops themselves are not symbols. */
	assert_null(dlsym(c->handle, "encode"));
	assert_null(dlsym(c->handle, "decode"));
	assert_null(dlsym(c->handle, "bound"));
}

/* Every kind of input survives a round trip at min, default and max
 * level; repetitive text shrinks. */
static void test_round_trip(void **state)
{
	const struct codec *c = *state;
	const size_t big = 1 << 20, text = 64 << 10;
	uint8_t *rnd = xmalloc(big);
	fill_pseudo_random(rnd, big, 0x5eed);
	uint8_t *txt = xmalloc(text);
	fill_text(txt, text);
	const int levels[] = {c->level_min, c->level_default, c->level_max};
	for (size_t l = 0; l < 3; l++) {
		int level = levels[l];
		size_t n;
		round_trip(c, level, rnd, 0, &n);
		round_trip(c, level, rnd, 1, &n);
		round_trip(c, level, (const uint8_t *)"\0", 1, &n);
		round_trip(c, level, rnd, 100, &n);
		round_trip(c, level, txt, text, &n);
		if (n >= text / 10) {
			fail_msg("%s level %d: 64 KiB of text encode to %zu "
			         "bytes",
			         c->name, level, n);
		}
		round_trip(c, level, rnd, big, &n);
		assert_true(n <= c->ops->bound(big));
	}
	free(txt);
	free(rnd);
}

/* A level outside the range is STRATA_EINVAL naming the level. */
static void test_bad_level(void **state)
{
	const struct codec *c = *state;
	const int bad[] = {c->level_min - 1, c->level_max + 1, 100, -7,
	                   INT_MIN,          INT_MAX};
	uint8_t in[64];
	fill_text(in, sizeof(in));
	size_t cap = c->ops->bound(sizeof(in));
	uint8_t *out = xmalloc(cap);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = 12345;
		memset(err, 0, sizeof(err));
		assert_int_equal(c->ops->encode(bad[i], in, sizeof(in), out,
		                                cap, &n, err),
		                 STRATA_EINVAL);
		char want[STRATA_ERRMSG_SIZE];
		snprintf(want, sizeof(want), "%s: level %d is outside %d..%d",
		         c->name, bad[i], c->level_min, c->level_max);
		assert_string_equal(err, want);
		assert_int_equal(n, 12345);
	}
	free(out);
}

/* Every proper prefix of an encoding is STRATA_ECORRUPT, as are empty
 * input and a byte after a complete encoding. */
static void test_truncated(void **state)
{
	const struct codec *c = *state;
	uint8_t in[300];
	fill_text(in, 240);
	fill_pseudo_random(in + 240, 60, 7);
	const int levels[] = {c->level_min, c->level_default, c->level_max};
	for (size_t l = 0; l < 3; l++) {
		size_t n;
		uint8_t *enc = encode(c, levels[l], in, sizeof(in), &n);
		for (size_t k = 0; k < n; k++) {
			int rc = decode(c, enc, k, sizeof(in), NULL);
			if (rc != STRATA_ECORRUPT) {
				fail_msg("%s level %d: %zu of %zu bytes: %d",
				         c->name, levels[l], k, n, rc);
			}
		}
		assert_int_equal(decode(c, enc, n, sizeof(in), NULL), 0);
		/* Trailing bytes after the encoding. */
		uint8_t *more = xmalloc(n + 8);
		memcpy(more, enc, n);
		memset(more + n, 0, 8);
		assert_int_equal(decode(c, more, n + 1, sizeof(in), NULL),
		                 STRATA_ECORRUPT);
		memcpy(more + n, enc, n < 8 ? n : 8);
		assert_int_equal(decode(c, more, n + 8, sizeof(in), NULL),
		                 STRATA_ECORRUPT);
		free(more);
		free(enc);
	}
	/* Nothing at all is never an encoding, of any length. */
	assert_int_equal(decode(c, in, 0, 0, NULL), STRATA_ECORRUPT);
	assert_int_equal(decode(c, in, 0, 10, NULL), STRATA_ECORRUPT);
}

/* Flipped bits anywhere: an error or a success of exactly out_len bytes
 * (checked by the canary), never a crash. Gzip's CRC-32 and length
 * trailer and zstd's frame checksum (the plugin turns it on) mean a
 * success there is the original data, and damage to the magic or the
 * trailer is always caught; lz4 (no checksum in the block format)
 * promises only the length. */
static void test_flipped(void **state)
{
	const struct codec *c = *state;
	uint8_t in[2000];
	fill_text(in, 1500);
	fill_pseudo_random(in + 1500, 500, 11);
	size_t n;
	uint8_t *enc = encode(c, c->level_default, in, sizeof(in), &n);
	uint8_t *bad = xmalloc(n);
	const uint8_t masks[] = {0x01, 0x10, 0x80, 0xff};
	size_t caught = 0, tried = 0;
	for (size_t i = 0; i < n; i++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			memcpy(bad, enc, n);
			bad[i] ^= masks[m];
			uint8_t *out = NULL;
			int rc = decode(c, bad, n, sizeof(in), &out);
			tried++;
			if (rc == STRATA_ECORRUPT) {
				caught++;
			} else if (rc != 0) {
				fail_msg("%s: byte %zu ^ 0x%02x: %d (%s)",
				         c->name, i, masks[m], rc, err);
			} else if (c->checksummed &&
			           memcmp(out, in, sizeof(in)) != 0) {
				fail_msg("%s: byte %zu ^ 0x%02x decodes to "
				         "other data",
				         c->name, i, masks[m]);
			}
			/* Magic numbers and (gzip) the CRC/length trailer. */
			int must =
			        i < c->magic || (c->checksummed && i >= n - 8);
			if (must && rc == 0) {
				fail_msg("%s: byte %zu ^ 0x%02x not detected",
				         c->name, i, masks[m]);
			}
			free(out);
		}
	}
	print_message("%s: %zu of %zu single-byte corruptions detected\n",
	              c->name, caught, tried);
	free(bad);
	free(enc);
}

/* A recorded length one off from the real one is STRATA_ECORRUPT. */
static void test_wrong_out_len(void **state)
{
	const struct codec *c = *state;
	const size_t text = 64 << 10;
	uint8_t *in = xmalloc(text);
	fill_text(in, text);
	fill_pseudo_random(in + 1000, 100, 3);
	const size_t lens[] = {0, 1, 100, 1000, text};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = lens[i];
		size_t n;
		uint8_t *enc = encode(c, c->level_default, in, len, &n);
		assert_int_equal(decode(c, enc, n, len, NULL), 0);
		if (len > 0) {
			assert_int_equal(decode(c, enc, n, len - 1, NULL),
			                 STRATA_ECORRUPT);
			assert_int_equal(decode(c, enc, n, 0, NULL),
			                 STRATA_ECORRUPT);
		}
		assert_int_equal(decode(c, enc, n, len + 1, NULL),
		                 STRATA_ECORRUPT);
		assert_int_equal(decode(c, enc, n, len * 2 + 100, NULL),
		                 STRATA_ECORRUPT);
		free(enc);
	}
	free(in);
}

/* Random bytes (and random bytes after a valid start) decode to an error
 * or to exactly out_len bytes, without crashing. */
static void test_garbage(void **state)
{
	const struct codec *c = *state;
	uint8_t junk[512];
	uint8_t in[200];
	fill_text(in, sizeof(in));
	size_t n;
	uint8_t *enc = encode(c, c->level_default, in, sizeof(in), &n);
	for (uint64_t seed = 1; seed <= 300; seed++) {
		size_t len = (size_t)(seed * 7919 % sizeof(junk));
		fill_pseudo_random(junk, sizeof(junk), seed);
		int rc = decode(c, junk, len, (size_t)seed % 300, NULL);
		assert_true(rc == 0 || rc == STRATA_ECORRUPT);
		/* A valid header, then junk. */
		size_t keep = (size_t)seed % (n + 1);
		memcpy(junk, enc, keep);
		rc = decode(c, junk, len > keep ? len : keep, sizeof(in), NULL);
		assert_true(rc == 0 || rc == STRATA_ECORRUPT);
	}
	free(enc);
}

/* Sizes the library cannot take are refused before any byte is read. */
static void test_too_big(void **state)
{
	const struct codec *c = *state;
	if (strcmp(c->name, "zstd") == 0) {
		skip(); /* zstd takes size_t sizes */
	}
	uint8_t in[16] = {0};
	uint8_t out[64];
	size_t huge = strcmp(c->name, "lz4") == 0 ? (size_t)INT_MAX + 1
	                                          : (size_t)UINT32_MAX + 1;
	size_t n = 0;
	assert_int_equal(c->ops->encode(c->level_default, in, huge, out,
	                                sizeof(out), &n, err),
	                 STRATA_ETOOBIG);
	assert_err_prefix(c, "encode");
	assert_int_equal(c->ops->decode(in, huge, out, sizeof(out), err),
	                 STRATA_ECORRUPT);
	assert_int_equal(c->ops->decode(in, sizeof(in), out, huge, err),
	                 STRATA_ECORRUPT);
}

struct worker {
	const struct codec *c;
	unsigned seed;
	int failures;
};

/* Round trips of assorted sizes at assorted levels, with corrupt decodes
 * in between, on one thread (its own errmsg: err is shared). */
static void *work(void *arg)
{
	struct worker *w = arg;
	const struct strata_codec_ops *o = w->c->ops;
	char msg[STRATA_ERRMSG_SIZE];
	enum { MAX = 20000 };
	uint8_t *in = malloc(MAX), *out = malloc(MAX + 1);
	uint8_t *enc = malloc(o->bound(MAX));
	if (in == NULL || out == NULL || enc == NULL) {
		w->failures++;
		goto done;
	}
	fill_text(in, MAX);
	fill_pseudo_random(in + MAX / 2, MAX / 4, w->seed);
	unsigned r = w->seed;
	for (int i = 0; i < 300; i++) {
		r = r * 1103515245u + 12345u;
		size_t len = (size_t)(r >> 8) % MAX + 1;
		int span = o->level_max - o->level_min + 1;
		int level = o->level_min + (int)((r >> 4) % (unsigned)span);
		size_t n = 0;
		if (o->encode(level, in, len, enc, o->bound(len), &n, msg) !=
		            0 ||
		    o->decode(enc, n, out, len, msg) != 0 ||
		    memcmp(out, in, len) != 0) {
			w->failures++;
		}
		if (o->decode(enc, n - 1, out, len, msg) != STRATA_ECORRUPT ||
		    o->decode(enc, n, out, len + 1, msg) != STRATA_ECORRUPT) {
			w->failures++;
		}
	}
done:
	free(enc);
	free(out);
	free(in);
	return NULL;
}

/* Ops are stateless and thread-safe: threads encoding and decoding at
 * once, at different levels, each get their own results. */
static void test_threads(void **state)
{
	const struct codec *c = *state;
	enum { N = 4 };
	pthread_t th[N];
	struct worker w[N];
	for (int i = 0; i < N; i++) {
		w[i] = (struct worker){c, (unsigned)i * 7919u + 1, 0};
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
	}
	for (int i = 0; i < N; i++) {
		if (w[i].failures != 0) {
			fail_msg("%s: thread %d: %d failures", c->name, i,
			         w[i].failures);
		}
	}
}

/* One cmocka test per codec and check, named "<codec> <check>". */
#define CODEC_TEST(i, name, fn)                          \
	{                                                \
		name " " #fn, fn, NULL, NULL, &codecs[i] \
	}
#define CODEC_TESTS(i, name)                                                   \
	CODEC_TEST(i, name, test_table), CODEC_TEST(i, name, test_round_trip), \
	        CODEC_TEST(i, name, test_bad_level),                           \
	        CODEC_TEST(i, name, test_truncated),                           \
	        CODEC_TEST(i, name, test_flipped),                             \
	        CODEC_TEST(i, name, test_wrong_out_len),                       \
	        CODEC_TEST(i, name, test_garbage),                             \
	        CODEC_TEST(i, name, test_too_big),                             \
	        CODEC_TEST(i, name, test_threads)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        CODEC_TESTS(0, "zstd"),
	        CODEC_TESTS(1, "lz4"),
	        CODEC_TESTS(2, "gzip"),
	};
	return cmocka_run_group_tests_name("codec", tests, load_codecs,
	                                   unload_codecs);
}
