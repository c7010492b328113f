/* Tier-2 conformance suite: runs any tier-2 plugin through the ABI rules. */
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/plugin.h"

/*
 * usage: tier2_conformance <plugin name or path> [key=value ...]
 *    or: STRATA_CONFORMANCE_PLUGIN=<plugin>
 *        STRATA_CONFORMANCE_CONFIG='k=v;k=v' tier2_conformance
 * The key=value arguments become the plugin's config lines. "{tmpdir}" in
 * a value is replaced by a fresh directory under /tmp, removed at the end.
 * Plugin names are looked up in $STRATA_PLUGIN_DIR. Each test opens a new
 * instance and works under its own name prefix, deleting what it made.
 * STRATA_CONFORMANCE_BIG_MIB sets the size of the large round trip
 * (default 6).
 */

static const char *plugin;
static char *config;
static char tmpdir[64];
static unsigned test_seq;

struct fx {
	struct tier2 *t;
	char prefix[32]; /* "cN" for this test */
	char err[STRATA_ERRMSG_SIZE];
};

/* "<prefix>/<rel>" in a static rotating buffer. */
static const char *nm(const struct fx *f, const char *rel)
{
	static char bufs[8][256];
	static unsigned i;
	char *b = bufs[i++ % 8];
	snprintf(b, sizeof(bufs[0]), "%s/%s", f->prefix, rel);
	return b;
}

static void check(int rc, int want, const struct fx *f, const char *what)
{
	if (rc != want) {
		fail_msg("%s: got %s, want %s (errmsg: %s)", what,
		         strata_error_name(rc), strata_error_name(want),
		         rc != 0 ? f->err : "");
	}
}

#define OK(f, call) check((call), 0, (f), #call)
#define ERR(f, want, call) check((call), (want), (f), #call)

static int collect_cb(void *arg, const char *name,
                      const struct strata_tier2_chunk_info *info)
{
	(void)info;
	char ***names = arg;
	size_t n = 0;
	while ((*names)[n] != NULL) {
		n++;
	}
	char **grown = strata_realloc(*names, (n + 2) * sizeof(char *));
	if (grown == NULL) {
		return STRATA_ENOMEM;
	}
	grown[n] = strata_strdup(name);
	grown[n + 1] = NULL;
	*names = grown;
	return grown[n] == NULL ? STRATA_ENOMEM : 0;
}

/* Names under prefix, NULL-terminated; free with free_names(). */
static char **list_names(struct fx *f, const char *prefix)
{
	char **names = strata_calloc(1, sizeof(char *));
	assert_non_null(names);
	OK(f, tier2_list(f->t, prefix, collect_cb, &names, f->err));
	return names;
}

static size_t count_names(char **names)
{
	size_t n = 0;
	while (names[n] != NULL) {
		n++;
	}
	return n;
}

static bool has_name(char **names, const char *name)
{
	for (size_t i = 0; names[i] != NULL; i++) {
		if (strcmp(names[i], name) == 0) {
			return true;
		}
	}
	return false;
}

static void free_names(char **names)
{
	for (size_t i = 0; names[i] != NULL; i++) {
		strata_free(names[i]);
	}
	strata_free(names);
}

static int setup(void **state)
{
	struct fx *f = strata_calloc(1, sizeof(*f));
	if (f == NULL) {
		return -1;
	}
	snprintf(f->prefix, sizeof(f->prefix), "c%u", ++test_seq);
	if (tier2_load_open(plugin, NULL, config, &f->t, f->err) != 0) {
		fprintf(stderr, "open %s: %s\n", plugin, f->err);
		strata_free(f);
		return -1;
	}
	*state = f;
	return 0;
}

/* Deletes what the test left under its prefix, then closes. */
static int teardown(void **state)
{
	struct fx *f = *state;
	char pre[40];
	snprintf(pre, sizeof(pre), "%s/", f->prefix);
	char **names = strata_calloc(1, sizeof(char *));
	int rc = names == NULL
	                 ? STRATA_ENOMEM
	                 : tier2_list(f->t, pre, collect_cb, &names, f->err);
	for (size_t i = 0; rc == 0 && names[i] != NULL; i++) {
		rc = tier2_delete(f->t, names[i], f->err);
	}
	if (rc != 0) {
		fprintf(stderr, "cleanup of %s: %s\n", pre, f->err);
	}
	if (names != NULL) {
		free_names(names);
	}
	tier2_close(f->t);
	strata_free(f);
	return rc == 0 ? 0 : -1;
}

/* Write a whole buffer to a new chunk. */
static void put(struct fx *f, const char *name, const void *data, size_t len)
{
	OK(f, tier2_create(f->t, name, f->err));
	OK(f, tier2_write(f->t, name, 0, data, len, f->err));
}

/* Assert the chunk holds exactly data. */
static void expect_content(struct fx *f, const char *name, const void *data,
                           size_t len)
{
	struct strata_tier2_chunk_info info;
	OK(f, tier2_stat(f->t, name, &info, f->err));
	assert_int_equal(info.length, len);
	char *buf = strata_malloc(len + 16);
	assert_non_null(buf);
	size_t n = 0;
	OK(f, tier2_read(f->t, name, 0, buf, len + 16, &n, f->err));
	assert_int_equal(n, len);
	assert_memory_equal(buf, data, len);
	strata_free(buf);
}

/* create makes an empty chunk; a second create is STRATA_EEXIST. */
static void test_create_new_then_exists(void **state)
{
	struct fx *f = *state;
	struct strata_tier2_chunk_info info = {99, 0};
	OK(f, tier2_create(f->t, nm(f, "a"), f->err));
	OK(f, tier2_stat(f->t, nm(f, "a"), &info, f->err));
	assert_int_equal(info.length, 0);
	ERR(f, STRATA_EEXIST, tier2_create(f->t, nm(f, "a"), f->err));
	assert_non_null(strstr(f->err, tier2_name(f->t)));
	OK(f, tier2_create(f->t, nm(f, "deep/er/b"), f->err));
	expect_content(f, nm(f, "deep/er/b"), "", 0);
}

/* Appends at the current length accumulate in order. */
static void test_write_appends(void **state)
{
	struct fx *f = *state;
	const char *n = nm(f, "w");
	OK(f, tier2_create(f->t, n, f->err));
	OK(f, tier2_write(f->t, n, 0, "hello", 5, f->err));
	OK(f, tier2_write(f->t, n, 5, " world", 6, f->err));
	OK(f, tier2_write(f->t, n, 11, "!", 1, f->err));
	expect_content(f, n, "hello world!", 12);
}

/* A write not at the end is STRATA_EBADOFFSET and writes nothing; a write
 * to a missing chunk is STRATA_ENOENT and creates nothing. */
static void test_write_wrong_offset_writes_nothing(void **state)
{
	struct fx *f = *state;
	const char *n = nm(f, "w");
	put(f, n, "abcde", 5);
	ERR(f, STRATA_EBADOFFSET, tier2_write(f->t, n, 3, "XY", 2, f->err));
	ERR(f, STRATA_EBADOFFSET, tier2_write(f->t, n, 0, "XY", 2, f->err));
	ERR(f, STRATA_EBADOFFSET, tier2_write(f->t, n, 6, "XY", 2, f->err));
	expect_content(f, n, "abcde", 5);
	ERR(f, STRATA_ENOENT,
	    tier2_write(f->t, nm(f, "missing"), 0, "x", 1, f->err));
	struct strata_tier2_chunk_info info;
	ERR(f, STRATA_ENOENT,
	    tier2_stat(f->t, nm(f, "missing"), &info, f->err));
}

/* Zero-length writes succeed at the end and change nothing. */
static void test_write_zero_length(void **state)
{
	struct fx *f = *state;
	const char *n = nm(f, "z");
	OK(f, tier2_create(f->t, n, f->err));
	OK(f, tier2_write(f->t, n, 0, "", 0, f->err));
	expect_content(f, n, "", 0);
	OK(f, tier2_write(f->t, n, 0, "ab", 2, f->err));
	OK(f, tier2_write(f->t, n, 2, "", 0, f->err));
	ERR(f, STRATA_EBADOFFSET, tier2_write(f->t, n, 1, "", 0, f->err));
	expect_content(f, n, "ab", 2);
}

/* Reads of ranges, short reads at the end, offset == length reads 0 bytes,
 * offset > length is STRATA_ERANGE, a missing chunk STRATA_ENOENT. */
static void test_read_ranges(void **state)
{
	struct fx *f = *state;
	const char *n = nm(f, "r");
	unsigned char data[100];
	unsigned char buf[64];
	size_t got = 0;
	for (int i = 0; i < 100; i++) {
		data[i] = (unsigned char)(i * 7 + 1);
	}
	put(f, n, data, sizeof(data));
	OK(f, tier2_read(f->t, n, 10, buf, 20, &got, f->err));
	assert_int_equal(got, 20);
	assert_memory_equal(buf, data + 10, 20);
	OK(f, tier2_read(f->t, n, 90, buf, 64, &got, f->err));
	assert_int_equal(got, 10);
	assert_memory_equal(buf, data + 90, 10);
	OK(f, tier2_read(f->t, n, 99, buf, 1, &got, f->err));
	assert_int_equal(got, 1);
	assert_int_equal(buf[0], data[99]);
	got = 7;
	OK(f, tier2_read(f->t, n, 100, buf, 64, &got, f->err));
	assert_int_equal(got, 0);
	OK(f, tier2_read(f->t, n, 5, buf, 0, &got, f->err));
	assert_int_equal(got, 0);
	ERR(f, STRATA_ERANGE, tier2_read(f->t, n, 101, buf, 64, &got, f->err));
	ERR(f, STRATA_ERANGE,
	    tier2_read(f->t, n, UINT64_MAX, buf, 64, &got, f->err));
	ERR(f, STRATA_ENOENT,
	    tier2_read(f->t, nm(f, "nope"), 0, buf, 64, &got, f->err));
}

/* stat reports length and a plausible mtime; a missing chunk is
 * STRATA_ENOENT. */
static void test_stat_length_and_missing(void **state)
{
	struct fx *f = *state;
	const char *n = nm(f, "s");
	struct strata_tier2_chunk_info info;
	put(f, n, "0123456789", 10);
	OK(f, tier2_stat(f->t, n, &info, f->err));
	assert_int_equal(info.length, 10);
	if (info.mtime_ns != 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		int64_t day = 86400LL * 1000000000;
		assert_true(info.mtime_ns > now - day);
		assert_true(info.mtime_ns < now + day);
	}
	ERR(f, STRATA_ENOENT, tier2_stat(f->t, nm(f, "none"), &info, f->err));
	assert_non_null(strstr(f->err, "none"));
}

static int stop_after_two(void *arg, const char *name,
                          const struct strata_tier2_chunk_info *info)
{
	(void)name;
	(void)info;
	int *n = arg;
	return ++*n == 2 ? 42 : 0;
}

struct stat_in_cb {
	struct fx *f;
	int seen;
	int bad;
};

static int stat_cb(void *arg, const char *name,
                   const struct strata_tier2_chunk_info *info)
{
	struct stat_in_cb *s = arg;
	struct strata_tier2_chunk_info again;
	char err[STRATA_ERRMSG_SIZE];
	s->seen++;
	if (tier2_stat(s->f->t, name, &again, err) != 0 ||
	    again.length != info->length) {
		s->bad++;
	}
	return 0;
}

/* list finds chunks by prefix (a directory or part of a name), nested at
 * any depth, with their lengths; a non-zero callback result stops it. */
static void test_list_prefix_and_nested(void **state)
{
	struct fx *f = *state;
	put(f, nm(f, "p/a"), "1", 1);
	put(f, nm(f, "p/b/c"), "22", 2);
	put(f, nm(f, "p/b/d/e"), "333", 3);
	put(f, nm(f, "p/bx"), "4444", 4);
	put(f, nm(f, "q"), "", 0);
	char pre[64];

	snprintf(pre, sizeof(pre), "%s/p/", f->prefix);
	char **names = list_names(f, pre);
	assert_int_equal(count_names(names), 4);
	assert_true(has_name(names, nm(f, "p/a")));
	assert_true(has_name(names, nm(f, "p/b/c")));
	assert_true(has_name(names, nm(f, "p/b/d/e")));
	assert_true(has_name(names, nm(f, "p/bx")));
	free_names(names);

	snprintf(pre, sizeof(pre), "%s/p/b", f->prefix);
	names = list_names(f, pre);
	assert_int_equal(count_names(names), 3);
	assert_false(has_name(names, nm(f, "p/a")));
	free_names(names);

	snprintf(pre, sizeof(pre), "%s/p/b/", f->prefix);
	names = list_names(f, pre);
	assert_int_equal(count_names(names), 2);
	assert_false(has_name(names, nm(f, "p/bx")));
	free_names(names);

	snprintf(pre, sizeof(pre), "%s/", f->prefix);
	names = list_names(f, pre);
	assert_int_equal(count_names(names), 5);
	free_names(names);

	names = list_names(f, "");
	assert_true(count_names(names) >= 5);
	assert_true(has_name(names, nm(f, "q")));
	free_names(names);

	snprintf(pre, sizeof(pre), "%s/zz", f->prefix);
	names = list_names(f, pre);
	assert_int_equal(count_names(names), 0);
	free_names(names);

	snprintf(pre, sizeof(pre), "%s/", f->prefix);
	int seen = 0;
	assert_int_equal(tier2_list(f->t, pre, stop_after_two, &seen, f->err),
	                 42);
	assert_int_equal(seen, 2);

	struct stat_in_cb s = {f, 0, 0};
	OK(f, tier2_list(f->t, pre, stat_cb, &s, f->err));
	assert_int_equal(s.seen, 5);
	assert_int_equal(s.bad, 0);
}

/* truncate cuts to a shorter length and appends continue from there;
 * longer than the chunk is STRATA_ERANGE; a missing chunk STRATA_ENOENT. */
static void test_truncate_and_past_end(void **state)
{
	struct fx *f = *state;
	const char *n = nm(f, "t");
	put(f, n, "abcdefghij", 10);
	OK(f, tier2_truncate(f->t, n, 10, f->err));
	expect_content(f, n, "abcdefghij", 10);
	OK(f, tier2_truncate(f->t, n, 4, f->err));
	expect_content(f, n, "abcd", 4);
	ERR(f, STRATA_EBADOFFSET, tier2_write(f->t, n, 10, "x", 1, f->err));
	OK(f, tier2_write(f->t, n, 4, "XY", 2, f->err));
	expect_content(f, n, "abcdXY", 6);
	ERR(f, STRATA_ERANGE, tier2_truncate(f->t, n, 7, f->err));
	expect_content(f, n, "abcdXY", 6);
	OK(f, tier2_truncate(f->t, n, 0, f->err));
	expect_content(f, n, "", 0);
	ERR(f, STRATA_ENOENT, tier2_truncate(f->t, nm(f, "no"), 0, f->err));
}

/* concat appends the sources in order and deletes them, or is
 * STRATA_ENOTSUP and changes nothing. A missing source changes nothing. */
static void test_concat_or_enotsup(void **state)
{
	struct fx *f = *state;
	const char *tgt = nm(f, "t");
	const char *s1 = nm(f, "s/1");
	const char *s2 = nm(f, "s/2");
	const char *s3 = nm(f, "s/3");
	const char *missing = nm(f, "s/none");
	struct strata_tier2_chunk_info info;
	put(f, tgt, "abc", 3);
	put(f, s1, "def", 3);
	put(f, s2, "", 0);
	put(f, s3, "ghij", 4);

	const char *bad[] = {s1, missing};
	int rc = tier2_concat(f->t, tgt, bad, 2, f->err);
	if (!tier2_supports_concat(f->t)) {
		check(rc, STRATA_ENOTSUP, f, "concat without support");
		const char *srcs[] = {s1, s2, s3};
		ERR(f, STRATA_ENOTSUP,
		    tier2_concat(f->t, tgt, srcs, 3, f->err));
		expect_content(f, tgt, "abc", 3);
		expect_content(f, s1, "def", 3);
		print_message("concat not supported by %s: checked "
		              "STRATA_ENOTSUP only\n",
		              tier2_name(f->t));
		return;
	}
	check(rc, STRATA_ENOENT, f, "concat with a missing source");
	expect_content(f, tgt, "abc", 3);
	expect_content(f, s1, "def", 3);

	const char *srcs[] = {s1, s2, s3};
	OK(f, tier2_concat(f->t, tgt, srcs, 3, f->err));
	expect_content(f, tgt, "abcdefghij", 10);
	ERR(f, STRATA_ENOENT, tier2_stat(f->t, s1, &info, f->err));
	ERR(f, STRATA_ENOENT, tier2_stat(f->t, s2, &info, f->err));
	ERR(f, STRATA_ENOENT, tier2_stat(f->t, s3, &info, f->err));
	OK(f, tier2_write(f->t, tgt, 10, "k", 1, f->err));
	expect_content(f, tgt, "abcdefghijk", 11);

	const char *one[] = {tgt};
	ERR(f, STRATA_ENOENT, tier2_concat(f->t, nm(f, "x"), one, 1, f->err));
	expect_content(f, tgt, "abcdefghijk", 11);
}

/* delete removes a chunk (which can then be created again); deleting a
 * missing chunk is STRATA_ENOENT. */
static void test_delete_and_missing(void **state)
{
	struct fx *f = *state;
	const char *n = nm(f, "d/x");
	struct strata_tier2_chunk_info info;
	char buf[4];
	size_t got;
	put(f, n, "data", 4);
	OK(f, tier2_delete(f->t, n, f->err));
	ERR(f, STRATA_ENOENT, tier2_stat(f->t, n, &info, f->err));
	ERR(f, STRATA_ENOENT, tier2_read(f->t, n, 0, buf, 4, &got, f->err));
	ERR(f, STRATA_ENOENT, tier2_delete(f->t, n, f->err));
	char pre[40];
	snprintf(pre, sizeof(pre), "%s/", f->prefix);
	char **names = list_names(f, pre);
	assert_int_equal(count_names(names), 0);
	free_names(names);
	OK(f, tier2_create(f->t, n, f->err));
	expect_content(f, n, "", 0);
}

/* Invalid names never reach the plugin and create nothing. */
static void test_invalid_names_rejected(void **state)
{
	struct fx *f = *state;
	char bad[8][64];
	snprintf(bad[0], 64, "/%s/abs", f->prefix);
	snprintf(bad[1], 64, "%s/../x", f->prefix);
	snprintf(bad[2], 64, "%s//x", f->prefix);
	snprintf(bad[3], 64, "%s/x/", f->prefix);
	snprintf(bad[4], 64, "%s/a b", f->prefix);
	snprintf(bad[5], 64, "%s/./x", f->prefix);
	snprintf(bad[6], 64, "%s/x#1", f->prefix);
	snprintf(bad[7], 64, "%s", "");
	struct strata_tier2_chunk_info info;
	size_t got;
	char buf[4];
	for (int i = 0; i < 8; i++) {
		ERR(f, STRATA_EBADNAME, tier2_create(f->t, bad[i], f->err));
		ERR(f, STRATA_EBADNAME,
		    tier2_write(f->t, bad[i], 0, "x", 1, f->err));
		ERR(f, STRATA_EBADNAME,
		    tier2_read(f->t, bad[i], 0, buf, 4, &got, f->err));
		ERR(f, STRATA_EBADNAME,
		    tier2_stat(f->t, bad[i], &info, f->err));
		ERR(f, STRATA_EBADNAME,
		    tier2_truncate(f->t, bad[i], 0, f->err));
		ERR(f, STRATA_EBADNAME, tier2_delete(f->t, bad[i], f->err));
	}
	char longname[STRATA_TIER2_NAME_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ERR(f, STRATA_EBADNAME, tier2_create(f->t, longname, f->err));
	char pre[40];
	snprintf(pre, sizeof(pre), "%s/", f->prefix);
	char **names = list_names(f, pre);
	assert_int_equal(count_names(names), 0);
	free_names(names);
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h = (h ^ p[i]) * 1099511628211ULL;
	}
	return h;
}

/* Deterministic filler: xorshift bytes from a seed. */
static void fill(unsigned char *p, size_t n, uint64_t *seed)
{
	uint64_t x = *seed;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
	*seed = x;
}

/* A multi-MiB chunk written in uneven pieces reads back identically. */
static void test_big_chunk_roundtrip_checksum(void **state)
{
	struct fx *f = *state;
	const char *n = nm(f, "big");
	const char *env = getenv("STRATA_CONFORMANCE_BIG_MIB");
	size_t total = (size_t)(env != NULL ? atoi(env) : 6) << 20;
	size_t piece = (1u << 20) + 7;
	unsigned char *buf = strata_malloc(piece);
	assert_non_null(buf);
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	uint64_t sum_w = 1469598103934665603ULL;
	OK(f, tier2_create(f->t, n, f->err));
	for (size_t off = 0; off < total;) {
		size_t len = total - off < piece ? total - off : piece;
		fill(buf, len, &seed);
		sum_w = fnv1a(sum_w, buf, len);
		OK(f, tier2_write(f->t, n, off, buf, len, f->err));
		off += len;
	}
	struct strata_tier2_chunk_info info;
	OK(f, tier2_stat(f->t, n, &info, f->err));
	assert_int_equal(info.length, total);
	uint64_t sum_r = 1469598103934665603ULL;
	size_t rpiece = (256u << 10) + 3;
	size_t off = 0;
	for (;;) {
		size_t got = 0;
		OK(f, tier2_read(f->t, n, off, buf, rpiece, &got, f->err));
		if (got == 0) {
			break;
		}
		sum_r = fnv1a(sum_r, buf, got);
		off += got;
	}
	assert_int_equal(off, total);
	assert_int_equal(sum_r, sum_w);
	strata_free(buf);
}

struct worker {
	struct fx *f;
	int id;
	char failure[STRATA_ERRMSG_SIZE + 128]; /* first failure, "" = ok */
};

#define WORKER_CHUNKS 6
#define WORKER_WRITES 40

static void worker_fail(struct worker *w, const char *what, int rc,
                        const char *err)
{
	if (w->failure[0] == '\0') {
		snprintf(w->failure, sizeof(w->failure),
		         "thread %d: %s: %s: %s", w->id, what,
		         strata_error_name(rc), err);
	}
}

/* One thread's workload on its own chunks: create, append, verify,
 * truncate, delete. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct tier2 *t = w->f->t;
	char err[STRATA_ERRMSG_SIZE];
	char name[WORKER_CHUNKS][64];
	unsigned char buf[4096];
	unsigned char back[4096];
	uint64_t seed = 0x1234567ULL + (uint64_t)w->id;
	uint64_t len[WORKER_CHUNKS] = {0};
	int rc;
	for (int c = 0; c < WORKER_CHUNKS; c++) {
		snprintf(name[c], 64, "%s/th%d/c%d", w->f->prefix, w->id, c);
		if ((rc = tier2_create(t, name[c], err)) != 0) {
			worker_fail(w, "create", rc, err);
			return NULL;
		}
	}
	for (int i = 0; i < WORKER_WRITES; i++) {
		for (int c = 0; c < WORKER_CHUNKS; c++) {
			size_t n = 1 + (size_t)((i * 131 + c * 17) % 4096);
			fill(buf, n, &seed);
			rc = tier2_write(t, name[c], len[c], buf, n, err);
			if (rc != 0) {
				worker_fail(w, "write", rc, err);
				return NULL;
			}
			size_t got = 0;
			rc = tier2_read(t, name[c], len[c], back, n, &got, err);
			if (rc != 0 || got != n || memcmp(buf, back, n) != 0) {
				worker_fail(w, "read back", rc, err);
				return NULL;
			}
			len[c] += n;
		}
	}
	for (int c = 0; c < WORKER_CHUNKS; c++) {
		struct strata_tier2_chunk_info info;
		rc = tier2_stat(t, name[c], &info, err);
		if (rc != 0 || info.length != len[c]) {
			worker_fail(w, "stat", rc, err);
			return NULL;
		}
		rc = c % 2 == 0 ? tier2_truncate(t, name[c], len[c] / 2, err)
		                : tier2_delete(t, name[c], err);
		if (rc != 0) {
			worker_fail(w, "truncate/delete", rc, err);
			return NULL;
		}
	}
	return NULL;
}

/* Four threads working on different chunks at once do not disturb each
 * other. */
static void test_concurrent_chunks_four_threads(void **state)
{
	struct fx *f = *state;
	struct worker w[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].f = f;
		w[i].id = i;
		assert_int_equal(
		        pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
	}
	for (int i = 0; i < 4; i++) {
		if (w[i].failure[0] != '\0') {
			fail_msg("%s", w[i].failure);
		}
	}
	char pre[40];
	snprintf(pre, sizeof(pre), "%s/", f->prefix);
	char **names = list_names(f, pre);
	assert_int_equal(count_names(names), 4 * WORKER_CHUNKS / 2);
	free_names(names);
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* config from args or $STRATA_CONFORMANCE_CONFIG, {tmpdir} substituted. */
static int build_config(int argc, char **argv)
{
	size_t cap = 1;
	const char *env = getenv("STRATA_CONFORMANCE_CONFIG");
	for (int i = 2; i < argc; i++) {
		cap += strlen(argv[i]) + 1;
	}
	if (env != NULL) {
		cap += strlen(env) + 1;
	}
	char *raw = strata_calloc(1, cap);
	if (raw == NULL) {
		return -1;
	}
	for (int i = 2; i < argc; i++) {
		strcat(raw, argv[i]);
		strcat(raw, "\n");
	}
	if (argc <= 2 && env != NULL) {
		strcat(raw, env);
		for (char *p = raw; *p != '\0'; p++) {
			if (*p == ';') {
				*p = '\n';
			}
		}
	}
	const char *tag = "{tmpdir}";
	size_t hits = 0;
	for (const char *p = strstr(raw, tag); p; p = strstr(p + 1, tag)) {
		hits++;
	}
	if (hits > 0) {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/strata-t2conf-XXXXXX");
		if (mkdtemp(tmpdir) == NULL) {
			perror("mkdtemp");
			strata_free(raw);
			return -1;
		}
	}
	config = strata_calloc(1, strlen(raw) + hits * strlen(tmpdir) + 1);
	if (config == NULL) {
		strata_free(raw);
		return -1;
	}
	char *o = config;
	for (const char *p = raw; *p != '\0';) {
		if (strncmp(p, tag, strlen(tag)) == 0) {
			o += sprintf(o, "%s", tmpdir);
			p += strlen(tag);
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	strata_free(raw);
	return 0;
}

int main(int argc, char **argv)
{
	plugin = argc > 1 ? argv[1] : getenv("STRATA_CONFORMANCE_PLUGIN");
	if (plugin == NULL || strcmp(plugin, "-h") == 0 ||
	    strcmp(plugin, "--help") == 0) {
		fprintf(stderr,
		        "usage: %s <tier-2 plugin name or path> [key=value "
		        "...]\n(or set STRATA_CONFORMANCE_PLUGIN and "
		        "STRATA_CONFORMANCE_CONFIG='k=v;k=v'); {tmpdir} in a "
		        "value "
		        "becomes a fresh temporary directory\n",
		        argv[0]);
		return 2;
	}
	if (build_config(argc, argv) != 0) {
		return 2;
	}
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_create_new_then_exists),
	        T(test_write_appends),
	        T(test_write_wrong_offset_writes_nothing),
	        T(test_write_zero_length),
	        T(test_read_ranges),
	        T(test_stat_length_and_missing),
	        T(test_list_prefix_and_nested),
	        T(test_truncate_and_past_end),
	        T(test_concat_or_enotsup),
	        T(test_delete_and_missing),
	        T(test_invalid_names_rejected),
	        T(test_big_chunk_roundtrip_checksum),
	        T(test_concurrent_chunks_four_threads),
	};
#undef T
	char group[128];
	snprintf(group, sizeof(group), "tier2_conformance(%s)", plugin);
	int failed = cmocka_run_group_tests_name(group, tests, NULL, NULL);
	if (tmpdir[0] != '\0') {
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	strata_free(config);
	return failed;
}
