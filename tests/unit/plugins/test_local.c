/* Unit tests for plugins/tier2/local: durability, torn tails, corruption. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/plugin.h"
#include "plugins/tier2/local/local_format.h"
#include "tests/lib/oom.h"

#define HDR LOCAL_RECORD_HDR

/* ---- fault injection: this executable interposes a few libc calls the
 * plugin makes (exported and linked with -rdynamic, so the dlopen()ed
 * plugin binds to these definitions). Injection is off unless a test turns
 * it on. ---- */

#define INTERPOSE __attribute__((visibility("default")))

static size_t inj_pwritev_ok = SIZE_MAX; /* bytes allowed, then fail */
static int inj_pwritev_errno;            /* errno once the budget is spent */
static int inj_fdatasync_errno;          /* fail every fdatasync with it */
static int inj_openat_errno;             /* fail openat of matching paths */
static const char *inj_openat_match;     /* substring of the path */
static long n_fdatasync;                 /* calls seen */
static long n_fsync;                     /* calls seen */
static long n_dontneed;                  /* posix_fadvise DONTNEED seen */
static off_t dontneed_off, dontneed_len; /* the last one's range */
#define MAX_SFR 8
static int n_sfr;              /* sync_file_range calls recorded */
static off_t sfr_off[MAX_SFR]; /* their ranges, in call order */
static off_t sfr_len[MAX_SFR];
static unsigned sfr_flags[MAX_SFR];
static long sfr_fdatasyncs[MAX_SFR]; /* n_fdatasync at the call */

static void *next_sym(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (p == NULL) {
		fprintf(stderr, "dlsym(%s) failed\n", name);
		abort();
	}
	return p;
}

INTERPOSE ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt,
                          off_t off)
{
	static ssize_t (*real)(int, const struct iovec *, int, off_t);
	if (real == NULL) {
		real = (ssize_t(*)(int, const struct iovec *, int,
		                   off_t))next_sym("pwritev");
	}
	if (inj_pwritev_errno == 0) {
		return real(fd, iov, iovcnt, off);
	}
	if (inj_pwritev_ok == 0) {
		errno = inj_pwritev_errno;
		return -1;
	}
	/* Write a prefix within the budget (a short write), like a disk
	 * filling up in the middle of a request. */
	struct iovec cut[64];
	int n = 0;
	size_t left = inj_pwritev_ok;
	for (int i = 0; i < iovcnt && n < 64 && left > 0; i++) {
		cut[n] = iov[i];
		if (cut[n].iov_len > left) {
			cut[n].iov_len = left;
		}
		left -= cut[n].iov_len;
		n++;
	}
	ssize_t r = real(fd, cut, n, off);
	if (r > 0) {
		inj_pwritev_ok -= (size_t)r;
	}
	return r;
}

INTERPOSE int fdatasync(int fd)
{
	static int (*real)(int);
	if (real == NULL) {
		real = (int (*)(int))next_sym("fdatasync");
	}
	n_fdatasync++;
	if (inj_fdatasync_errno != 0) {
		errno = inj_fdatasync_errno;
		return -1;
	}
	return real(fd);
}

INTERPOSE int posix_fadvise(int fd, off_t off, off_t len, int advice)
{
	static int (*real)(int, off_t, off_t, int);
	if (real == NULL) {
		real = (int (*)(int, off_t, off_t, int))next_sym(
		        "posix_fadvise");
	}
	if (advice == POSIX_FADV_DONTNEED) {
		n_dontneed++;
		dontneed_off = off;
		dontneed_len = len;
	}
	return real(fd, off, len, advice);
}

INTERPOSE int sync_file_range(int fd, off_t off, off_t len, unsigned flags)
{
	static int (*real)(int, off_t, off_t, unsigned);
	if (real == NULL) {
		real = (int (*)(int, off_t, off_t, unsigned))next_sym(
		        "sync_file_range");
	}
	if (n_sfr < MAX_SFR) {
		sfr_off[n_sfr] = off;
		sfr_len[n_sfr] = len;
		sfr_flags[n_sfr] = flags;
		sfr_fdatasyncs[n_sfr] = n_fdatasync;
	}
	n_sfr++;
	return real(fd, off, len, flags);
}

INTERPOSE int fsync(int fd)
{
	static int (*real)(int);
	if (real == NULL) {
		real = (int (*)(int))next_sym("fsync");
	}
	n_fsync++;
	return real(fd);
}

INTERPOSE int openat(int dirfd, const char *path, int flags, ...)
{
	static int (*real)(int, const char *, int, ...);
	if (real == NULL) {
		real = (int (*)(int, const char *, int, ...))next_sym("openat");
	}
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (inj_openat_errno != 0 && inj_openat_match != NULL &&
	    strstr(path, inj_openat_match) != NULL) {
		errno = inj_openat_errno;
		return -1;
	}
	return real(dirfd, path, flags, mode);
}

static void inject_off(void)
{
	inj_pwritev_ok = SIZE_MAX;
	inj_pwritev_errno = 0;
	inj_fdatasync_errno = 0;
	inj_openat_errno = 0;
	inj_openat_match = NULL;
}

/* ---- fixture ---- */

struct fx {
	char dir[64];   /* mkdtemp directory, removed in teardown */
	char root[128]; /* dir/root: the plugin's root (created by open) */
	struct tier2 *t;
	char err[STRATA_ERRMSG_SIZE];
};

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	chmod(path, 0700);
	return remove(path);
}

static int fx_open(struct fx *f, const char *extra)
{
	char cfg[512];
	snprintf(cfg, sizeof(cfg), "root=%s\n%s", f->root,
	         extra != NULL ? extra : "");
	return tier2_load_open("local", NULL, cfg, &f->t, f->err);
}

static void fx_reopen(struct fx *f, const char *extra)
{
	tier2_close(f->t);
	f->t = NULL;
	assert_int_equal(fx_open(f, extra), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->dir, "/tmp/strata-test-local-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
	if (fx_open(f, "fsync=true") != 0) {
		fprintf(stderr, "open: %s\n", f->err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	inject_off();
	tier2_close(f->t);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void check(int rc, int want, const struct fx *f, const char *what)
{
	if (rc != want) {
		fail_msg("%s: got %s, want %s (errmsg: %s)", what,
		         strata_error_name(rc), strata_error_name(want),
		         rc != 0 ? f->err : "");
	}
}

/* The deterministic content byte at logical offset off of a stream. */
static uint8_t pat(uint64_t seed, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ull ^ seed;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	return (uint8_t)(x >> 56);
}

static void fill_pat(uint8_t *p, uint64_t seed, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		p[i] = pat(seed, off + i);
	}
}

/* Append n pattern bytes at off (the current length). */
static void put_pat(struct fx *f, const char *name, uint64_t seed, uint64_t off,
                    size_t n)
{
	uint8_t *b = malloc(n > 0 ? n : 1);
	assert_non_null(b);
	fill_pat(b, seed, off, n);
	check(tier2_write(f->t, name, off, b, n, f->err), 0, f, "write");
	free(b);
}

/* Read [off, off + n) and compare with the pattern. */
static void expect_pat(struct fx *f, const char *name, uint64_t seed,
                       uint64_t off, size_t n)
{
	uint8_t *b = malloc(n > 0 ? n : 1);
	size_t got = 0;
	assert_non_null(b);
	check(tier2_read(f->t, name, off, b, n, &got, f->err), 0, f, "read");
	assert_int_equal(got, n);
	for (size_t i = 0; i < n; i++) {
		if (b[i] != pat(seed, off + i)) {
			fail_msg("%s: byte %llu differs", name,
			         (unsigned long long)(off + i));
		}
	}
	free(b);
}

static uint64_t length_of(struct fx *f, const char *name)
{
	struct strata_tier2_chunk_info info;
	check(tier2_stat(f->t, name, &info, f->err), 0, f, "stat");
	return info.length;
}

static char *path_of(struct fx *f, const char *name)
{
	static char p[512];
	snprintf(p, sizeof(p), "%s/%s", f->root, name);
	return p;
}

static off_t file_size(struct fx *f, const char *name)
{
	struct stat st;
	assert_int_equal(stat(path_of(f, name), &st), 0);
	return st.st_size;
}

static void file_chop(struct fx *f, const char *name, off_t size)
{
	assert_int_equal(truncate(path_of(f, name), size), 0);
}

static void file_poke(struct fx *f, const char *name, off_t pos,
                      const void *bytes, size_t n)
{
	int fd = open(path_of(f, name), O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, n, pos), (ssize_t)n);
	close(fd);
}

static void file_xor(struct fx *f, const char *name, off_t pos, uint8_t mask)
{
	uint8_t b;
	int fd = open(path_of(f, name), O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, pos), 1);
	b ^= mask;
	assert_int_equal(pwrite(fd, &b, 1, pos), 1);
	close(fd);
}

/* "... last good length N ..." from an ETORN/ECORRUPT message. */
static uint64_t good_length(const char *msg)
{
	const char *p = strstr(msg, "last good length ");
	unsigned long long v;
	if (p != NULL && sscanf(p, "last good length %llu", &v) == 1) {
		return v;
	}
	fail_msg("no good length in: %s", msg);
	return 0;
}

/* ---- config and basics ---- */

/* Missing root, unknown keys and bad values fail with ECONFIG naming the
 * key and what is allowed. */
static void test_open_config_errors(void **state)
{
	struct fx *f = *state;
	struct tier2 *t = NULL;
	check(tier2_load_open("local", NULL, "fsync=true", &t, f->err),
	      STRATA_ECONFIG, f, "no root");
	assert_non_null(strstr(f->err, "root"));
	char cfg[256];
	snprintf(cfg, sizeof(cfg), "root=%s\ncolour=blue", f->root);
	check(tier2_load_open("local", NULL, cfg, &t, f->err), STRATA_ECONFIG,
	      f, "unknown key");
	assert_non_null(strstr(f->err, "colour"));
	assert_non_null(strstr(
	        f->err, "allowed: root, fsync, drop_cache, open_chunks"));
	snprintf(cfg, sizeof(cfg), "root=%s\nfsync=maybe", f->root);
	check(tier2_load_open("local", NULL, cfg, &t, f->err), STRATA_ECONFIG,
	      f, "bad fsync");
	assert_non_null(strstr(f->err, "fsync must be true or false"));
	snprintf(cfg, sizeof(cfg), "root=%s\ndrop_cache=yes", f->root);
	check(tier2_load_open("local", NULL, cfg, &t, f->err), STRATA_ECONFIG,
	      f, "bad drop_cache");
	assert_non_null(strstr(f->err, "drop_cache must be true or false"));
	snprintf(cfg, sizeof(cfg), "root=%s\nopen_chunks=0", f->root);
	check(tier2_load_open("local", NULL, cfg, &t, f->err), STRATA_ECONFIG,
	      f, "bad open_chunks");
	/* root is a regular file */
	snprintf(cfg, sizeof(cfg), "%s/file", f->dir);
	FILE *fp = fopen(cfg, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(cfg, sizeof(cfg), "root=%s/file", f->dir);
	int rc = tier2_load_open("local", NULL, cfg, &t, f->err);
	assert_true(rc == STRATA_ECONFIG || rc == STRATA_EIO);
	assert_non_null(strstr(f->err, "/file"));
}

/* check: the same verdicts as open, and nothing created. */
static void test_check_config(void **state)
{
	struct fx *f = *state;
	struct tier2_plugin *p = NULL;
	check(tier2_load("local", NULL, &p, f->err), 0, f, "load");
	char cfg[256];
	snprintf(cfg, sizeof(cfg), "root=%s/never/made\nfsync=false", f->dir);
	check(tier2_check(p, cfg, f->err), 0, f, "good config");
	struct stat st;
	snprintf(cfg, sizeof(cfg), "%s/never", f->dir);
	assert_int_equal(stat(cfg, &st), -1);
	snprintf(cfg, sizeof(cfg), "root=%s/never\nfsynk=true", f->dir);
	check(tier2_check(p, cfg, f->err), STRATA_ECONFIG, f, "typo");
	assert_non_null(strstr(f->err, "local: config: unknown key 'fsynk' "
	                               "(did you mean 'fsync'?)"));
	check(tier2_check(p, "fsync=true", f->err), STRATA_ECONFIG, f,
	      "no root");
	snprintf(cfg, sizeof(cfg), "%s/never", f->dir);
	assert_int_equal(stat(cfg, &st), -1);
	/* A root that is a file, or under one, as open would find. */
	snprintf(cfg, sizeof(cfg), "%s/file", f->dir);
	FILE *fp = fopen(cfg, "w");
	assert_non_null(fp);
	fclose(fp);
	snprintf(cfg, sizeof(cfg), "root=%s/file", f->dir);
	check(tier2_check(p, cfg, f->err), STRATA_ECONFIG, f, "root a file");
	assert_non_null(strstr(f->err, "/file is not a directory"));
	snprintf(cfg, sizeof(cfg), "root=%s/file/sub/dir", f->dir);
	check(tier2_check(p, cfg, f->err), STRATA_ECONFIG, f,
	      "root under a file");
	tier2_unload(p);
}

/* A missing root is created with its parents. */
static void test_open_creates_root(void **state)
{
	struct fx *f = *state;
	char cfg[256];
	struct tier2 *t = NULL;
	snprintf(cfg, sizeof(cfg), "root=%s/x/y/z\nfsync=false", f->dir);
	check(tier2_load_open("local", NULL, cfg, &t, f->err), 0, f, "open");
	check(tier2_create(t, "c", f->err), 0, f, "create");
	tier2_close(t);
	struct stat st;
	snprintf(cfg, sizeof(cfg), "%s/x/y/z/c", f->dir);
	assert_int_equal(stat(cfg, &st), 0);
}

/* Appends at the length, reads of any range, stat; a second create of
 * the same name is EEXIST. */
static void test_write_read_roundtrip(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "s/t/0", f->err), 0, f, "create");
	check(tier2_create(f->t, "s/t/0", f->err), STRATA_EEXIST, f,
	      "create again");
	assert_int_equal(length_of(f, "s/t/0"), 0);
	put_pat(f, "s/t/0", 1, 0, 100);
	put_pat(f, "s/t/0", 1, 100, 5000);
	put_pat(f, "s/t/0", 1, 5100, 1);
	assert_int_equal(length_of(f, "s/t/0"), 5101);
	expect_pat(f, "s/t/0", 1, 0, 5101);
	expect_pat(f, "s/t/0", 1, 99, 2);
	expect_pat(f, "s/t/0", 1, 5100, 1);
	expect_pat(f, "s/t/0", 1, 150, 4000);
	uint8_t b[64];
	size_t got = 7;
	check(tier2_read(f->t, "s/t/0", 5101, b, sizeof(b), &got, f->err), 0, f,
	      "read at end");
	assert_int_equal(got, 0);
	check(tier2_read(f->t, "s/t/0", 5090, b, sizeof(b), &got, f->err), 0, f,
	      "short read");
	assert_int_equal(got, 11);
	check(tier2_read(f->t, "s/t/0", 5102, b, sizeof(b), &got, f->err),
	      STRATA_ERANGE, f, "read past end");
	check(tier2_read(f->t, "nope", 0, b, sizeof(b), &got, f->err),
	      STRATA_ENOENT, f, "read missing");
	/* the file is records: 3 headers + payload */
	assert_int_equal(file_size(f, "s/t/0"), 5101 + 3 * HDR);
}

/* A write at the wrong offset is EBADOFFSET and writes nothing; a write
 * to a missing chunk is ENOENT. */
static void test_write_bad_offset(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "c", f->err), 0, f, "create");
	put_pat(f, "c", 2, 0, 10);
	check(tier2_write(f->t, "c", 5, "xx", 2, f->err), STRATA_EBADOFFSET, f,
	      "write behind");
	assert_non_null(strstr(f->err, "10 bytes long"));
	check(tier2_write(f->t, "c", 11, "xx", 2, f->err), STRATA_EBADOFFSET, f,
	      "write ahead");
	assert_int_equal(length_of(f, "c"), 10);
	assert_int_equal(file_size(f, "c"), 10 + HDR);
	check(tier2_write(f->t, "missing", 0, "xx", 2, f->err), STRATA_ENOENT,
	      f, "write missing");
	assert_non_null(strstr(f->err, "missing"));
}

/* Close and open again: the data, lengths and listing are the same. */
static void test_reopen_sees_same_data(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "a/b", f->err), 0, f, "create");
	put_pat(f, "a/b", 3, 0, 3000);
	put_pat(f, "a/b", 3, 3000, 70000);
	fx_reopen(f, NULL);
	assert_int_equal(length_of(f, "a/b"), 73000);
	expect_pat(f, "a/b", 3, 0, 73000);
	put_pat(f, "a/b", 3, 73000, 10);
	fx_reopen(f, "open_chunks=1");
	expect_pat(f, "a/b", 3, 72000, 1010);
}

/* A chunk of ~80 MiB in 16 KiB writes (enough records to thin the index)
 * plus multi-record writes reads back exactly, before and after a
 * reopen. */
static void test_large_chunk(void **state)
{
	struct fx *f = *state;
	fx_reopen(f, "fsync=false");
	check(tier2_create(f->t, "big", f->err), 0, f, "create");
	uint8_t *b = malloc(3u << 20);
	assert_non_null(b);
	uint64_t off = 0;
	for (int i = 0; i < 5000; i++) {
		fill_pat(b, 4, off, 16384);
		check(tier2_write(f->t, "big", off, b, 16384, f->err), 0, f,
		      "write");
		off += 16384;
	}
	size_t big = (5u << 19) + 7; /* 2.5 MiB + 7: three records */
	fill_pat(b, 4, off, big);
	check(tier2_write(f->t, "big", off, b, big, f->err), 0, f, "write");
	off += big;
	assert_int_equal(length_of(f, "big"), off);
	for (int pass = 0; pass < 2; pass++) {
		uint64_t probes[] = {0,
		                     16383,
		                     16384 * 777 + 5,
		                     40u << 20,
		                     70u << 20,
		                     off - big - 3,
		                     off - 10,
		                     off - big + (1u << 20)};
		for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]);
		     i++) {
			uint64_t o = probes[i];
			size_t n = off - o < 40000 ? (size_t)(off - o) : 40000;
			expect_pat(f, "big", 4, o, n);
		}
		expect_pat(f, "big", 4, off - big - 100, big + 100);
		fx_reopen(f, "fsync=false");
	}
	free(b);
}

/* ---- torn tails and corruption ---- */

/* A file chopped inside its last record (a crash mid-write) is ETORN for
 * stat, read and write, naming the chunk and the byte position; truncate
 * to the last good length repairs it and writes continue. */
static void test_torn_tail_chopped(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "s/torn", f->err), 0, f, "create");
	put_pat(f, "s/torn", 5, 0, 1000);
	put_pat(f, "s/torn", 5, 1000, 2000);
	put_pat(f, "s/torn", 5, 3000, 3000);
	off_t last = 1000 + 2000 + 2 * HDR;
	fx_reopen(f, NULL);
	file_chop(f, "s/torn", last + HDR + 1500);

	struct strata_tier2_chunk_info info;
	char pos[64];
	snprintf(pos, sizeof(pos), "byte position %lld", (long long)last);
	check(tier2_stat(f->t, "s/torn", &info, f->err), STRATA_ETORN, f,
	      "stat torn");
	assert_non_null(strstr(f->err, "s/torn"));
	assert_non_null(strstr(f->err, pos));
	assert_int_equal(good_length(f->err), 3000);
	assert_int_equal(info.length, 3000); /* last good length */
	uint8_t b[16];
	size_t got = 5;
	check(tier2_read(f->t, "s/torn", 0, b, sizeof(b), &got, f->err),
	      STRATA_ETORN, f, "read torn");
	assert_int_equal(got, 0);
	check(tier2_write(f->t, "s/torn", 3000, "x", 1, f->err), STRATA_ETORN,
	      f, "write torn");
	check(tier2_truncate(f->t, "s/torn", 3001, f->err), STRATA_ETORN, f,
	      "truncate past good");

	check(tier2_truncate(f->t, "s/torn", 3000, f->err), 0, f, "repair");
	assert_int_equal(file_size(f, "s/torn"), last);
	assert_int_equal(length_of(f, "s/torn"), 3000);
	put_pat(f, "s/torn", 5, 3000, 3000);
	fx_reopen(f, NULL);
	expect_pat(f, "s/torn", 5, 0, 6000);

	/* chopped inside a header this time, seen by the open instance */
	file_chop(f, "s/torn", file_size(f, "s/torn") - 3000 - HDR + 10);
	check(tier2_stat(f->t, "s/torn", &info, f->err), STRATA_ETORN, f,
	      "stat torn header");
	assert_non_null(strstr(f->err, "header cut short"));
	check(tier2_truncate(f->t, "s/torn", 1000, f->err), 0, f,
	      "repair below");
	expect_pat(f, "s/torn", 5, 0, 1000);
}

/* Garbage appended after the last record is a torn tail too. */
static void test_torn_tail_garbage(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "g", f->err), 0, f, "create");
	put_pat(f, "g", 6, 0, 500);
	put_pat(f, "g", 6, 500, 500);
	off_t end = file_size(f, "g");
	uint8_t junk[300];
	fill_pat(junk, 99, 0, sizeof(junk));
	file_poke(f, "g", end, junk, sizeof(junk));
	struct strata_tier2_chunk_info info;
	check(tier2_stat(f->t, "g", &info, f->err), STRATA_ETORN, f, "stat");
	assert_int_equal(good_length(f->err), 1000);
	check(tier2_truncate(f->t, "g", 1000, f->err), 0, f, "repair");
	assert_int_equal(file_size(f, "g"), end);
	put_pat(f, "g", 6, 1000, 10);
	expect_pat(f, "g", 6, 0, 1010);
}

/* A last record whose payload never reached the disk (zeros: the size
 * grew, the data did not) is a torn tail at that record. */
static void test_torn_tail_zero_payload(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "z", f->err), 0, f, "create");
	put_pat(f, "z", 7, 0, 100);
	put_pat(f, "z", 7, 100, 4096);
	uint8_t zeros[4096] = {0};
	file_poke(f, "z", 100 + 2 * HDR, zeros, sizeof(zeros));
	fx_reopen(f, NULL);
	struct strata_tier2_chunk_info info;
	check(tier2_stat(f->t, "z", &info, f->err), STRATA_ETORN, f, "stat");
	assert_non_null(strstr(f->err, "checksum"));
	assert_int_equal(good_length(f->err), 100);
	check(tier2_truncate(f->t, "z", 100, f->err), 0, f, "repair");
	expect_pat(f, "z", 7, 0, 100);
}

/* Damage inside the last write, even with intact records of the same
 * write after it, is torn (those records were never acknowledged); the
 * good length is where the damage starts. */
static void test_torn_inside_last_write(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "m", f->err), 0, f, "create");
	put_pat(f, "m", 8, 0, 10);
	put_pat(f, "m", 8, 10, (5u << 19)); /* 2.5 MiB: 3 records */
	off_t second = 10 + HDR + HDR + (1 << 20);
	file_xor(f, "m", second + HDR + 77, 0x40);
	fx_reopen(f, NULL);
	struct strata_tier2_chunk_info info;
	check(tier2_stat(f->t, "m", &info, f->err), STRATA_ETORN, f, "stat");
	assert_int_equal(good_length(f->err), 10 + (1u << 20));
	check(tier2_truncate(f->t, "m", 10, f->err), 0, f, "repair");
	expect_pat(f, "m", 8, 0, 10);
}

/* A damaged header followed by a later write's records is ECORRUPT for
 * stat and read; truncating below the damage is the only way back. */
static void test_corrupt_middle_header(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "c", f->err), 0, f, "create");
	put_pat(f, "c", 9, 0, 1000);
	put_pat(f, "c", 9, 1000, 1000);
	put_pat(f, "c", 9, 2000, 1000);
	off_t second = 1000 + HDR;
	file_xor(f, "c", second + 5, 0x01); /* its length field */
	fx_reopen(f, NULL);
	struct strata_tier2_chunk_info info;
	char pos[64];
	snprintf(pos, sizeof(pos), "byte position %lld", (long long)second);
	check(tier2_stat(f->t, "c", &info, f->err), STRATA_ECORRUPT, f, "stat");
	assert_non_null(strstr(f->err, pos));
	uint8_t b[10];
	size_t got;
	check(tier2_read(f->t, "c", 0, b, sizeof(b), &got, f->err),
	      STRATA_ECORRUPT, f, "read");
	check(tier2_write(f->t, "c", 3000, "x", 1, f->err), STRATA_ECORRUPT, f,
	      "write");
	check(tier2_truncate(f->t, "c", 2000, f->err), STRATA_ECORRUPT, f,
	      "truncate above damage");
	check(tier2_truncate(f->t, "c", 1000, f->err), 0, f, "cut");
	expect_pat(f, "c", 9, 0, 1000);
}

/* A flipped payload byte in an older write is found by the read that
 * covers it (ECORRUPT, no bytes); other ranges still read. */
static void test_corrupt_middle_payload(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "p", f->err), 0, f, "create");
	put_pat(f, "p", 10, 0, 1000);
	put_pat(f, "p", 10, 1000, 1000);
	put_pat(f, "p", 10, 2000, 1000);
	file_xor(f, "p", 1000 + 2 * HDR + 500, 0x80); /* offset 1500 */
	fx_reopen(f, NULL);
	assert_int_equal(length_of(f, "p"), 3000);
	uint8_t b[3000];
	size_t got = 1;
	memset(b, 0xee, sizeof(b));
	check(tier2_read(f->t, "p", 0, b, sizeof(b), &got, f->err),
	      STRATA_ECORRUPT, f, "read all");
	assert_int_equal(got, 0);
	assert_non_null(strstr(f->err, "checksum"));
	for (size_t i = 0; i < sizeof(b); i++) {
		assert_true(b[i] == 0 || b[i] == 0xee);
	}
	check(tier2_read(f->t, "p", 1499, b, 2, &got, f->err), STRATA_ECORRUPT,
	      f, "read inside");
	expect_pat(f, "p", 10, 0, 1000);
	expect_pat(f, "p", 10, 2000, 1000);
	/* the same flip seen by a live instance, without reopening */
	file_xor(f, "p", 1000 + 2 * HDR + 500, 0x80);
	expect_pat(f, "p", 10, 0, 3000);
	file_xor(f, "p", 1000 + 2 * HDR + 501, 0x80);
	check(tier2_read(f->t, "p", 1000, b, 1000, &got, f->err),
	      STRATA_ECORRUPT, f, "read live");
}

/* ---- truncate ---- */

/* Truncate at a record boundary and inside a record, beyond the length
 * (ERANGE) and to zero; writes continue after each. */
static void test_truncate(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "t", f->err), 0, f, "create");
	put_pat(f, "t", 11, 0, 100);
	put_pat(f, "t", 11, 100, 300);
	put_pat(f, "t", 11, 400, 600);
	check(tier2_truncate(f->t, "t", 1001, f->err), STRATA_ERANGE, f,
	      "past end");
	check(tier2_truncate(f->t, "t", 400, f->err), 0, f, "boundary");
	assert_int_equal(file_size(f, "t"), 400 + 2 * HDR);
	check(tier2_truncate(f->t, "t", 250, f->err), 0, f, "inside");
	assert_int_equal(file_size(f, "t"), 250 + 2 * HDR);
	assert_int_equal(length_of(f, "t"), 250);
	put_pat(f, "t", 11, 250, 50);
	fx_reopen(f, NULL);
	expect_pat(f, "t", 11, 0, 300);
	check(tier2_truncate(f->t, "t", 0, f->err), 0, f, "zero");
	assert_int_equal(file_size(f, "t"), 0);
	put_pat(f, "t", 12, 0, 5);
	expect_pat(f, "t", 12, 0, 5);
	check(tier2_truncate(f->t, "nope", 0, f->err), STRATA_ENOENT, f,
	      "missing");
}

/* ---- concat ---- */

/* Concat appends every source in order, deletes them (nothing left in
 * list, not even hidden files), and survives a reopen. */
static void test_concat(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "x/target", f->err), 0, f, "create");
	check(tier2_create(f->t, "x/s1", f->err), 0, f, "create");
	check(tier2_create(f->t, "y/z/s2", f->err), 0, f, "create");
	check(tier2_create(f->t, "x/empty", f->err), 0, f, "create");
	put_pat(f, "x/target", 13, 0, 1000);
	uint8_t *b = malloc(1u << 21);
	assert_non_null(b);
	/* the sources continue the pattern where the target ends */
	fill_pat(b, 13, 1000, 5000);
	for (int i = 0; i < 10; i++) {
		check(tier2_write(f->t, "x/s1", (uint64_t)i * 500, b + i * 500,
		                  500, f->err),
		      0, f, "write s1");
	}
	fill_pat(b, 13, 6000, (3u << 20) / 2);
	check(tier2_write(f->t, "y/z/s2", 0, b, (3u << 20) / 2, f->err), 0, f,
	      "write s2");
	free(b);
	const char *srcs[] = {"x/s1", "x/empty", "y/z/s2"};
	check(tier2_concat(f->t, "x/target", srcs, 3, f->err), 0, f, "concat");
	uint64_t len = 6000 + (3u << 20) / 2;
	assert_int_equal(length_of(f, "x/target"), len);
	expect_pat(f, "x/target", 13, 0, (size_t)len);
	struct strata_tier2_chunk_info info;
	for (int i = 0; i < 3; i++) {
		check(tier2_stat(f->t, srcs[i], &info, f->err), STRATA_ENOENT,
		      f, "source gone");
	}
	struct stat st;
	char p[512];
	snprintf(p, sizeof(p), "%s/y", f->root);
	assert_int_equal(stat(p, &st), -1); /* empty dirs removed */
	snprintf(p, sizeof(p), "%s/x", f->root);
	assert_int_equal(stat(p, &st), 0);
	fx_reopen(f, NULL);
	expect_pat(f, "x/target", 13, 0, (size_t)len);
	put_pat(f, "x/target", 13, len, 10);
}

/* A concat that fails (missing source; disk full halfway) leaves the
 * target at its old length and every source in place. */
static void test_concat_failure_keeps_target(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "t", f->err), 0, f, "create");
	check(tier2_create(f->t, "s1", f->err), 0, f, "create");
	check(tier2_create(f->t, "s2", f->err), 0, f, "create");
	put_pat(f, "t", 14, 0, 100);
	put_pat(f, "s1", 15, 0, 3000);
	put_pat(f, "s2", 16, 0, 3000);
	const char *missing[] = {"s1", "nope"};
	check(tier2_concat(f->t, "t", missing, 2, f->err), STRATA_ENOENT, f,
	      "missing source");
	const char *twice[] = {"s1", "s1"};
	check(tier2_concat(f->t, "t", twice, 2, f->err), STRATA_EINVAL, f,
	      "source twice");
	const char *srcs[] = {"s1", "s2"};
	inj_pwritev_errno = ENOSPC;
	inj_pwritev_ok = 3000 + HDR + 1000; /* s1, then part of s2 */
	check(tier2_concat(f->t, "t", srcs, 2, f->err), STRATA_ENOSPC, f,
	      "disk full");
	inject_off();
	assert_int_equal(length_of(f, "t"), 100);
	assert_int_equal(file_size(f, "t"), 100 + HDR);
	expect_pat(f, "s1", 15, 0, 3000);
	expect_pat(f, "s2", 16, 0, 3000);
	fx_reopen(f, NULL);
	assert_int_equal(length_of(f, "t"), 100);
	check(tier2_concat(f->t, "t", srcs, 2, f->err), 0, f, "concat");
	assert_int_equal(length_of(f, "t"), 6100);
}

/* ---- list and delete ---- */

struct listed {
	int n;
	char names[16][64];
	uint64_t lengths[16];
	int stop_after; /* 0 = never */
};

static int list_cb(void *arg, const char *name,
                   const struct strata_tier2_chunk_info *info)
{
	struct listed *l = arg;
	if (l->n < 16) {
		snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
		l->lengths[l->n] = info->length;
	}
	l->n++;
	return l->stop_after != 0 && l->n >= l->stop_after ? 42 : 0;
}

static bool listed_has(const struct listed *l, const char *name,
                       uint64_t length)
{
	for (int i = 0; i < l->n && i < 16; i++) {
		if (strcmp(l->names[i], name) == 0) {
			return l->lengths[i] == length;
		}
	}
	return false;
}

/* list walks the tree by prefix (whole or partial components), reports
 * lengths, skips internal hidden files, and stops when the callback
 * says so. */
static void test_list(void **state)
{
	struct fx *f = *state;
	const char *names[] = {"a", "s/t/0", "s/t/1", "s/u/0", "sx"};
	for (int i = 0; i < 5; i++) {
		check(tier2_create(f->t, names[i], f->err), 0, f, "create");
		put_pat(f, names[i], 17, 0, (size_t)(i + 1) * 10);
	}
	char p[512];
	snprintf(p, sizeof(p), "%s/s/t/.strata-d.9", f->root);
	FILE *fp = fopen(p, "w");
	assert_non_null(fp);
	fclose(fp);
	struct listed l = {0};
	check(tier2_list(f->t, "", list_cb, &l, f->err), 0, f, "list all");
	assert_int_equal(l.n, 5);
	assert_true(listed_has(&l, "s/t/1", 30));
	assert_true(listed_has(&l, "sx", 50));
	memset(&l, 0, sizeof(l));
	check(tier2_list(f->t, "s/", list_cb, &l, f->err), 0, f, "list s/");
	assert_int_equal(l.n, 3);
	memset(&l, 0, sizeof(l));
	check(tier2_list(f->t, "s", list_cb, &l, f->err), 0, f, "list s");
	assert_int_equal(l.n, 4);
	memset(&l, 0, sizeof(l));
	check(tier2_list(f->t, "s/t/", list_cb, &l, f->err), 0, f, "list s/t");
	assert_int_equal(l.n, 2);
	assert_true(listed_has(&l, "s/t/0", 20));
	memset(&l, 0, sizeof(l));
	check(tier2_list(f->t, "s/t/1", list_cb, &l, f->err), 0, f, "one");
	assert_int_equal(l.n, 1);
	memset(&l, 0, sizeof(l));
	check(tier2_list(f->t, "q", list_cb, &l, f->err), 0, f, "none");
	assert_int_equal(l.n, 0);
	memset(&l, 0, sizeof(l));
	l.stop_after = 2;
	assert_int_equal(tier2_list(f->t, "", list_cb, &l, f->err), 42);
	assert_int_equal(l.n, 2);
}

/* delete removes the file and its emptied directories; a second delete
 * and a delete of a missing chunk are ENOENT. */
static void test_delete(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "d/e/f", f->err), 0, f, "create");
	check(tier2_create(f->t, "d/g", f->err), 0, f, "create");
	put_pat(f, "d/e/f", 18, 0, 10);
	check(tier2_delete(f->t, "d/e/f", f->err), 0, f, "delete");
	check(tier2_delete(f->t, "d/e/f", f->err), STRATA_ENOENT, f, "again");
	struct strata_tier2_chunk_info info;
	check(tier2_stat(f->t, "d/e/f", &info, f->err), STRATA_ENOENT, f,
	      "stat");
	struct stat st;
	char p[512];
	snprintf(p, sizeof(p), "%s/d/e", f->root);
	assert_int_equal(stat(p, &st), -1);
	snprintf(p, sizeof(p), "%s/d", f->root);
	assert_int_equal(stat(p, &st), 0); /* d/g is still there */
	check(tier2_create(f->t, "d/e/f", f->err), 0, f, "create again");
	assert_int_equal(length_of(f, "d/e/f"), 0);
	assert_int_equal(stat(f->root, &st), 0);
}

/* ---- names, permissions, errno mapping ---- */

static void host_log(const struct strata_host *host, int level, const char *fmt,
                     ...)
{
	(void)host;
	(void)level;
	(void)fmt;
}

/* Called directly (bypassing the host's own checks), the plugin still
 * rejects names that would escape its root or hit its hidden files. */
static void test_names_cannot_escape_root(void **state)
{
	struct fx *f = *state;
	struct tier2_plugin *p;
	check(tier2_load("local", NULL, &p, f->err), 0, f, "load");
	const struct strata_tier2_ops *ops = tier2_plugin_ops(p);
	struct strata_host host = {
	        .abi_version = STRATA_TIER2_ABI_VERSION,
	        .log = host_log,
	        .malloc = malloc,
	        .realloc = realloc,
	        .free = free,
	};
	char cfg[256];
	snprintf(cfg, sizeof(cfg), "root=%s", f->root);
	void *st;
	check(ops->open(&host, cfg, &st, f->err), 0, f, "open");
	const char *bad[] = {"../x",  "/tmp/x", "a/../../x",   "..",
	                     "a//b",  "./a",    "a/",          "",
	                     "a/./b", "a b",    ".strata-d.x", "q/.strata-y"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct strata_tier2_chunk_info info;
		size_t got;
		uint8_t b[4];
		const char *srcs[] = {bad[i]};
		f->err[0] = '\0';
		check(ops->create(st, bad[i], f->err), STRATA_EBADNAME, f,
		      bad[i]);
		assert_true(f->err[0] != '\0');
		check(ops->write(st, bad[i], 0, "x", 1, f->err),
		      STRATA_EBADNAME, f, bad[i]);
		check(ops->read(st, bad[i], 0, b, 4, &got, f->err),
		      STRATA_EBADNAME, f, bad[i]);
		check(ops->stat(st, bad[i], &info, f->err), STRATA_EBADNAME, f,
		      bad[i]);
		check(ops->truncate(st, bad[i], 0, f->err), STRATA_EBADNAME, f,
		      bad[i]);
		check(ops->remove(st, bad[i], f->err), STRATA_EBADNAME, f,
		      bad[i]);
		check(ops->concat(st, "ok", srcs, 1, f->err), STRATA_EBADNAME,
		      f, bad[i]);
	}
	struct stat sb;
	char path[256];
	snprintf(path, sizeof(path), "%s/x", f->dir);
	assert_int_equal(stat(path, &sb), -1);
	ops->close(st);
	tier2_unload(p);
}

/* A directory the process cannot write: create is EPERM with the path.
 * Root ignores mode bits, so the test skips itself when it runs as root
 * (test_errno_mapping covers the mapping then). */
static void test_permission_denied(void **state)
{
	struct fx *f = *state;
	char p[512];
	snprintf(p, sizeof(p), "%s/ro", f->root);
	assert_int_equal(mkdir(p, 0500), 0);
	snprintf(p, sizeof(p), "%s/ro/probe", f->root);
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	if (fd >= 0) {
		close(fd);
		unlink(p);
		fprintf(stderr, "skipped: chmod 0500 does not stop this user "
		                "(root); see test_errno_mapping\n");
		skip();
	}
	check(tier2_create(f->t, "ro/c", f->err), STRATA_EPERM, f, "create");
	assert_non_null(strstr(f->err, "ro/c"));
	assert_non_null(strstr(f->err, "EACCES"));
}

/* EACCES/EPERM -> EPERM, ENOSPC -> ENOSPC, ENOENT -> ENOENT, anything
 * else -> EIO, each message naming the path and the errno. */
static void test_errno_mapping(void **state)
{
	struct fx *f = *state;
	const struct {
		int e;
		int code;
		const char *name;
	} cases[] = {
	        {EACCES, STRATA_EPERM, "EACCES"},
	        {EPERM, STRATA_EPERM, "EPERM"},
	        {ENOSPC, STRATA_ENOSPC, "ENOSPC"},
	        {ENOENT, STRATA_ENOENT, "ENOENT"},
	        {EIO, STRATA_EIO, "EIO"},
	        {EMFILE, STRATA_EIO, "EMFILE"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[32];
		snprintf(name, sizeof(name), "deny%zu", i);
		inj_openat_errno = cases[i].e;
		inj_openat_match = "deny";
		check(tier2_create(f->t, name, f->err), cases[i].code, f,
		      cases[i].name);
		inject_off();
		assert_non_null(strstr(f->err, f->root));
		assert_non_null(strstr(f->err, name));
		assert_non_null(strstr(f->err, cases[i].name));
	}
}

/* Disk full in the middle of a write: ENOSPC naming the path, nothing of
 * it readable or left in the file, and the same write succeeds later. A
 * failed fdatasync is EIO and also leaves the old length. */
static void test_enospc_write_rolls_back(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "full", f->err), 0, f, "create");
	put_pat(f, "full", 19, 0, 1000);
	uint8_t *b = malloc(3u << 20);
	assert_non_null(b);
	fill_pat(b, 19, 1000, 3u << 20);
	inj_pwritev_errno = ENOSPC;
	inj_pwritev_ok = (1u << 20) + 2 * HDR + 100; /* 1+ record lands */
	check(tier2_write(f->t, "full", 1000, b, 3u << 20, f->err),
	      STRATA_ENOSPC, f, "write");
	inject_off();
	assert_non_null(strstr(f->err, "ENOSPC"));
	assert_non_null(strstr(f->err, path_of(f, "full")));
	assert_int_equal(length_of(f, "full"), 1000);
	assert_int_equal(file_size(f, "full"), 1000 + HDR);
	fx_reopen(f, NULL);
	assert_int_equal(length_of(f, "full"), 1000);

	inj_fdatasync_errno = EIO;
	check(tier2_write(f->t, "full", 1000, b, 5000, f->err), STRATA_EIO, f,
	      "fdatasync");
	inject_off();
	assert_int_equal(length_of(f, "full"), 1000);
	assert_int_equal(file_size(f, "full"), 1000 + HDR);

	check(tier2_write(f->t, "full", 1000, b, 3u << 20, f->err), 0, f,
	      "retry");
	fx_reopen(f, NULL);
	expect_pat(f, "full", 19, 0, 1000 + (3u << 20));
	free(b);
}

/* fsync=true syncs every write (and create syncs file and directory);
 * fsync=false never syncs; both keep the data. */
static void test_fsync_on_off(void **state)
{
	struct fx *f = *state;
	long d0 = n_fdatasync;
	long s0 = n_fsync;
	check(tier2_create(f->t, "n/on", f->err), 0, f, "create");
	assert_true(n_fsync - s0 >= 3); /* file, its dir, the new dir's */
	for (int i = 0; i < 3; i++) {
		put_pat(f, "n/on", 20, (uint64_t)i * 10, 10);
	}
	assert_int_equal(n_fdatasync - d0, 3);
	fx_reopen(f, "fsync=false");
	d0 = n_fdatasync;
	s0 = n_fsync;
	check(tier2_create(f->t, "n/off", f->err), 0, f, "create");
	for (int i = 0; i < 3; i++) {
		put_pat(f, "n/off", 20, (uint64_t)i * 10, 10);
	}
	check(tier2_truncate(f->t, "n/off", 15, f->err), 0, f, "truncate");
	check(tier2_delete(f->t, "n/on", f->err), 0, f, "delete");
	assert_int_equal(n_fdatasync - d0, 0);
	assert_int_equal(n_fsync - s0, 0);
	fx_reopen(f, "fsync=false");
	expect_pat(f, "n/off", 20, 0, 15);
}

/* A synced write longer than 1 MiB starts the writeback of each piece
 * of records (at most 1 MiB of payload) before it copies the next, with
 * sync_file_range(WRITE), and the fdatasync comes after the last piece;
 * not for the last piece (the fdatasync follows at once), not for a
 * short write, not with fsync=false. The data reads back. */
static void test_writeback_in_pieces(void **state)
{
	struct fx *f = *state;
	check(tier2_create(f->t, "w", f->err), 0, f, "create");
	n_sfr = 0;
	put_pat(f, "w", 40, 0, 100);
	assert_int_equal(n_sfr, 0);
	/* 2.5 MiB: records of 1 MiB, 1 MiB and 0.5 MiB, one piece each */
	size_t big = (5u << 20) / 2;
	long d0 = n_fdatasync;
	put_pat(f, "w", 40, 100, big);
	assert_int_equal(n_fdatasync - d0, 1);
	assert_int_equal(n_sfr, 2);
	off_t at = HDR + 100;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sfr_off[i], at);
		assert_int_equal(sfr_len[i], HDR + (1u << 20));
		assert_int_equal(sfr_flags[i], SYNC_FILE_RANGE_WRITE);
		assert_int_equal(sfr_fdatasyncs[i], d0); /* before the sync */
		at += HDR + (1u << 20);
	}
	expect_pat(f, "w", 40, 0, 100 + big);

	fx_reopen(f, "fsync=false");
	n_sfr = 0;
	put_pat(f, "w", 40, 100 + big, big);
	assert_int_equal(n_sfr, 0);
	expect_pat(f, "w", 40, 0, 100 + 2 * big);
}

/* drop_cache (default true): after each synced write the plugin drops
 * exactly the file range it appended from the page cache; not with
 * drop_cache=false, and not with fsync=false (dirty pages would only be
 * queued for writeback). The data reads back either way. */
static void test_drop_cache(void **state)
{
	struct fx *f = *state;
	long n0 = n_dontneed;
	check(tier2_create(f->t, "d", f->err), 0, f, "create");
	put_pat(f, "d", 30, 0, 100);
	assert_int_equal(n_dontneed - n0, 1);
	assert_int_equal(dontneed_off, 0);
	assert_int_equal(dontneed_len, HDR + 100);
	/* 2.5 MiB: three records in one write, one range */
	size_t big = (5u << 20) / 2;
	put_pat(f, "d", 30, 100, big);
	assert_int_equal(n_dontneed - n0, 2);
	assert_int_equal(dontneed_off, HDR + 100);
	assert_int_equal(dontneed_len, 3 * HDR + big);
	expect_pat(f, "d", 30, 0, 100 + big);

	fx_reopen(f, "drop_cache=false");
	n0 = n_dontneed;
	put_pat(f, "d", 30, 100 + big, 10);
	fx_reopen(f, "fsync=false");
	put_pat(f, "d", 30, 110 + big, 10);
	assert_int_equal(n_dontneed - n0, 0);
	expect_pat(f, "d", 30, 0, 120 + big);
}

/* ---- a real crash ---- */

/*
 * A child process appends 4 MiB writes with fsync on and reports each
 * acknowledged length through a pipe; it is killed with SIGKILL at a
 * random moment (inside a pwritev, which Linux may leave half done, or an
 * fdatasync). The chunk is then sound or torn,
 * never corrupt; its last good length covers every acknowledged byte;
 * truncating to the acknowledged length (what the host's recovery does)
 * gives exactly the acknowledged data, and writing continues.
 */
static void test_kill9_mid_write(void **state)
{
	struct fx *f = *state;
	uint64_t seed = (uint64_t)time(NULL);
	fprintf(stderr, "kill9 seed %llu\n", (unsigned long long)seed);
	for (int round = 0; round < 3; round++) {
		char name[32];
		snprintf(name, sizeof(name), "k/%d", round);
		check(tier2_create(f->t, name, f->err), 0, f, "create");
		int fds[2];
		assert_int_equal(pipe(fds), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			struct tier2 *t;
			char err[STRATA_ERRMSG_SIZE];
			char cfg[256];
			snprintf(cfg, sizeof(cfg), "root=%s", f->root);
			if (tier2_load_open("local", NULL, cfg, &t, err) != 0) {
				_exit(2);
			}
			size_t n = 4u << 20;
			uint8_t *b = malloc(n);
			/* the same block again and again: the child spends
			 * its time in pwritev and fdatasync */
			fill_pat(b, 30 + (uint64_t)round, 0, n);
			for (uint64_t off = 0;; off += n) {
				if (tier2_write(t, name, off, b, n, err) != 0) {
					_exit(3);
				}
				uint64_t acked = off + n;
				if (write(fds[1], &acked, sizeof(acked)) !=
				    sizeof(acked)) {
					_exit(4);
				}
			}
		}
		close(fds[1]);
		struct timespec ts = {
		        0, (long)(50 + (seed + (uint64_t)round * 37) % 250) *
		                   1000000L};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		uint64_t acked = 0;
		uint64_t v;
		while (read(fds[0], &v, sizeof(v)) == sizeof(v)) {
			acked = v;
		}
		close(fds[0]);
		fx_reopen(f, NULL);
		struct strata_tier2_chunk_info info;
		int rc = tier2_stat(f->t, name, &info, f->err);
		if (rc == STRATA_ETORN) {
			assert_true(good_length(f->err) >= acked);
		} else {
			check(rc, 0, f, "stat after kill");
		}
		assert_true(info.length >= acked);
		check(tier2_truncate(f->t, name, acked, f->err), 0, f,
		      "recover");
		assert_int_equal(length_of(f, name), acked);
		fprintf(stderr, "kill9 round %d: %s, %llu bytes acked\n", round,
		        rc == 0 ? "sound" : "torn", (unsigned long long)acked);
		if (acked > 0) {
			/* the last 1000 acknowledged bytes end a block */
			uint8_t b[1000];
			size_t got;
			check(tier2_read(f->t, name, acked - 1000, b, 1000,
			                 &got, f->err),
			      0, f, "read acked");
			assert_int_equal(got, 1000);
			for (size_t i = 0; i < got; i++) {
				assert_int_equal(b[i],
				                 pat(30 + (uint64_t)round,
				                     (4u << 20) - 1000 + i));
			}
		}
		check(tier2_write(f->t, name, acked, "more", 4, f->err), 0, f,
		      "write after recovery");
	}
}

/* ---- bounded cache, threads, OOM ---- */

struct worker {
	struct tier2 *t;
	int id;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char err[STRATA_ERRMSG_SIZE];
	char names[3][32];
	uint64_t lens[3] = {0, 0, 0};
	uint8_t buf[700];
	for (int k = 0; k < 3; k++) {
		snprintf(names[k], sizeof(names[k]), "w%d/c%d", w->id, k);
		if (tier2_create(w->t, names[k], err) != 0) {
			w->failures++;
		}
	}
	for (int i = 0; i < 150; i++) {
		int k = i % 3;
		size_t n = (size_t)(i * 37 % 600) + 1;
		uint64_t seed = 100 + (uint64_t)w->id * 3 + (uint64_t)k;
		fill_pat(buf, seed, lens[k], n);
		if (tier2_write(w->t, names[k], lens[k], buf, n, err) != 0) {
			w->failures++;
			continue;
		}
		lens[k] += n;
		uint64_t off = lens[k] > 600 ? lens[k] - 600 : 0;
		size_t got;
		if (tier2_read(w->t, names[k], off, buf, sizeof(buf), &got,
		               err) != 0 ||
		    got != lens[k] - off) {
			w->failures++;
			continue;
		}
		for (size_t j = 0; j < got; j++) {
			if (buf[j] != pat(seed, off + j)) {
				w->failures++;
				break;
			}
		}
	}
	return NULL;
}

/* Four threads on their own chunks with a 2-entry cache: eviction under
 * concurrency never mixes up chunks. */
static void test_threads_small_cache(void **state)
{
	struct fx *f = *state;
	fx_reopen(f, "fsync=false\nopen_chunks=2");
	pthread_t th[4];
	struct worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.t = f->t, .id = i};
		assert_int_equal(
		        pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
}

/* Every allocation failing in turn: each op fails cleanly with ENOMEM
 * (ASan checks for leaks) or succeeds. */
static void test_oom(void **state)
{
	struct fx *f = *state;
	char cfg[256];
	snprintf(cfg, sizeof(cfg), "root=%s\nfsync=false", f->root);
	uint8_t data[3000];
	fill_pat(data, 21, 0, sizeof(data));
	for (long n = 1; n < 500; n++) {
		struct tier2 *t = NULL;
		char name[32];
		char src[32];
		char err[STRATA_ERRMSG_SIZE];
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "o%ld/", n);
		snprintf(name, sizeof(name), "o%ld/c", n);
		snprintf(src, sizeof(src), "o%ld/s", n);
		oom_install(n);
		int rc = tier2_load_open("local", NULL, cfg, &t, err);
		int step = 0;
		if (rc == 0) {
			size_t got;
			uint8_t b[100];
			struct strata_tier2_chunk_info info;
			struct listed l = {0};
			const char *srcs[] = {src};
			rc = tier2_create(t, name, err);
			step += rc == 0;
			rc = rc != 0 ? rc : tier2_create(t, src, err);
			step += rc == 0;
			rc = rc != 0 ? rc
			             : tier2_write(t, name, 0, data, 3000, err);
			step += rc == 0;
			rc = rc != 0 ? rc
			             : tier2_write(t, src, 0, data, 10, err);
			step += rc == 0;
			rc = rc != 0 ? rc
			             : tier2_read(t, name, 5, b, 100, &got,
			                          err);
			step += rc == 0;
			rc = rc != 0 ? rc : tier2_stat(t, name, &info, err);
			step += rc == 0;
			rc = rc != 0 ? rc
			             : tier2_list(t, prefix, list_cb, &l, err);
			step += rc == 0;
			rc = rc != 0 ? rc : tier2_concat(t, name, srcs, 1, err);
			step += rc == 0;
			rc = rc != 0 ? rc : tier2_truncate(t, name, 1500, err);
			step += rc == 0;
			tier2_close(t);
		}
		long calls = oom_uninstall();
		if (rc != 0 && rc != STRATA_ENOMEM) {
			fail_msg("allocation %ld failing: step %d got %s (%s)",
			         n, step, strata_error_name(rc), err);
		}
		if (rc == 0 && calls < n) {
			return; /* every allocation has been failed once */
		}
	}
	fail_msg("the op sequence never completed");
}

/* ---- fuzz-ish ---- */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Random chunks, random damage (flipped bytes, zeroed ranges, chops,
 * garbage), then random reads through a fresh or the live instance: a
 * read returns the written bytes or an error, never other bytes. When
 * stat reports damage, truncating to the reported good length gives a
 * chunk whose reads again return written bytes or errors. Seed: random,
 * printed; STRATA_SEED=<n> replays one.
 */
static void test_fuzz_corruption_never_returns_bad_bytes(void **state)
{
	struct fx *f = *state;
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
	const char *env = getenv("STRATA_SEED");
	if (env != NULL && *env != '\0') {
		seed = strtoull(env, NULL, 0);
	}
	if (seed == 0) {
		seed = 1;
	}
	fprintf(stderr, "fuzz seed %llu (replay: STRATA_SEED=%llu)\n",
	        (unsigned long long)seed, (unsigned long long)seed);
	uint64_t s = seed;
	fx_reopen(f, "fsync=false");
	size_t cap = 4u << 20;
	uint8_t *b = malloc(cap);
	assert_non_null(b);
	int outcome[4] = {0, 0, 0, 0}; /* ok, torn, corrupt, reads failed */
	for (int it = 0; it < 60; it++) {
		char name[32];
		snprintf(name, sizeof(name), "f/%d", it);
		uint64_t ps = rnd(&s);
		check(tier2_create(f->t, name, f->err), 0, f, "create");
		uint64_t len = 0;
		int writes = 1 + (int)(rnd(&s) % 8);
		for (int w = 0; w < writes; w++) {
			size_t n = 1 + (size_t)(rnd(&s) % 20000);
			if (rnd(&s) % 10 == 0) {
				n = 1 + (size_t)(rnd(&s) % (5u << 19));
			}
			put_pat(f, name, ps, len, n);
			len += n;
		}
		off_t size = file_size(f, name);
		int damage = 1 + (int)(rnd(&s) % 4);
		for (int d = 0; d < damage; d++) {
			off_t at = (off_t)(rnd(&s) % (uint64_t)size);
			switch (rnd(&s) % 5) {
			case 0:
			case 1:
				file_xor(f, name, at,
				         (uint8_t)(1 + rnd(&s) % 255));
				break;
			case 2: {
				uint8_t z[512] = {0};
				size_t n = 1 + (size_t)(rnd(&s) % sizeof(z));
				if (at + (off_t)n > size) {
					n = (size_t)(size - at);
				}
				file_poke(f, name, at, z, n);
				break;
			}
			case 3:
				file_chop(f, name, at);
				size = at;
				break;
			default: {
				uint8_t g[64];
				for (size_t i = 0; i < sizeof(g); i++) {
					g[i] = (uint8_t)rnd(&s);
				}
				file_poke(f, name, size, g, sizeof(g));
				size += (off_t)sizeof(g);
				break;
			}
			}
			if (size == 0) {
				break;
			}
		}
		if (rnd(&s) % 2 == 0) {
			fx_reopen(f, "fsync=false");
		}
		struct strata_tier2_chunk_info info;
		int rc = tier2_stat(f->t, name, &info, f->err);
		uint64_t limit = len;
		if (rc == 0) {
			assert_true(info.length <= len);
			limit = info.length;
			outcome[0]++;
		} else if (rc == STRATA_ETORN || rc == STRATA_ECORRUPT) {
			outcome[rc == STRATA_ETORN ? 1 : 2]++;
			uint64_t g = good_length(f->err);
			assert_true(g <= len);
			assert_int_equal(info.length, g);
			check(tier2_truncate(f->t, name, g, f->err), 0, f,
			      "repair");
			limit = g;
			assert_int_equal(length_of(f, name), g);
		} else {
			fail_msg("seed %llu it %d: stat gave %s (%s)",
			         (unsigned long long)seed, it,
			         strata_error_name(rc), f->err);
		}
		for (int r = 0; r < 12; r++) {
			uint64_t off = limit > 0 ? rnd(&s) % (limit + 1) : 0;
			size_t n = 1 + (size_t)(rnd(&s) % (3u << 19));
			size_t got = 0;
			rc = tier2_read(f->t, name, off, b, n, &got, f->err);
			if (rc != 0) {
				assert_true(rc == STRATA_ECORRUPT);
				assert_int_equal(got, 0);
				outcome[3]++;
				continue;
			}
			assert_int_equal(got,
			                 n < limit - off ? n : limit - off);
			for (size_t i = 0; i < got; i++) {
				if (b[i] != pat(ps, off + i)) {
					fail_msg("seed %llu it %d: byte %llu "
					         "of %s is wrong",
					         (unsigned long long)seed, it,
					         (unsigned long long)(off + i),
					         name);
				}
			}
		}
	}
	fprintf(stderr,
	        "fuzz: %d sound, %d torn, %d corrupt chunks; %d reads "
	        "refused\n",
	        outcome[0], outcome[1], outcome[2], outcome[3]);
	free(b);
}

/* A record header round-trips; a damaged one is rejected; CRC32C matches
 * the standard check value. */
static void test_record_format(void **state)
{
	(void)state;
	assert_int_equal(local_crc32c(0, "123456789", 9), 0xe3069283u);
	uint32_t c = local_crc32c(0, "1234", 4);
	assert_int_equal(local_crc32c(c, "56789", 5), 0xe3069283u);
	struct local_record r = {.length = 77,
	                         .offset = 1ull << 40,
	                         .write_start = 5,
	                         .payload_crc = 0xdeadbeef};
	struct local_record d;
	uint8_t h[HDR];
	local_record_encode(&r, h);
	assert_true(local_record_decode(h, &d));
	assert_int_equal(d.length, 77);
	assert_int_equal(d.offset, 1ull << 40);
	assert_int_equal(d.write_start, 5);
	assert_int_equal(d.payload_crc, 0xdeadbeef);
	for (unsigned i = 0; i < HDR; i++) {
		h[i] ^= 0x10;
		assert_false(local_record_decode(h, &d));
		h[i] ^= 0x10;
	}
	r.length = LOCAL_RECORD_MAX + 1;
	local_record_encode(&r, h);
	assert_false(local_record_decode(h, &d));
}

int main(void)
{
	log_set_level(STRATA_LOG_ERROR);
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	        cmocka_unit_test(test_record_format),
	        T(test_open_config_errors),
	        T(test_check_config),
	        T(test_open_creates_root),
	        T(test_write_read_roundtrip),
	        T(test_write_bad_offset),
	        T(test_reopen_sees_same_data),
	        T(test_large_chunk),
	        T(test_torn_tail_chopped),
	        T(test_torn_tail_garbage),
	        T(test_torn_tail_zero_payload),
	        T(test_torn_inside_last_write),
	        T(test_corrupt_middle_header),
	        T(test_corrupt_middle_payload),
	        T(test_truncate),
	        T(test_concat),
	        T(test_concat_failure_keeps_target),
	        T(test_list),
	        T(test_delete),
	        T(test_names_cannot_escape_root),
	        T(test_permission_denied),
	        T(test_errno_mapping),
	        T(test_enospc_write_rolls_back),
	        T(test_fsync_on_off),
	        T(test_writeback_in_pieces),
	        T(test_drop_cache),
	        T(test_kill9_mid_write),
	        T(test_threads_small_cache),
	        T(test_oom),
	        T(test_fuzz_corruption_never_returns_bad_bytes),
#undef T
	};
	return cmocka_run_group_tests_name("local", tests, NULL, NULL);
}
