/* Unit tests for Strata's patches to the vendored libraft
 * (third_party/raft/PATCHES.md): they must keep libraft's on-disk format
 * readable (#11 adds format 2 beside 1) and fix what they claim to fix. Built
 * only without STRATA_SYSTEM_RAFT. */
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "tests/lib/check.h"
#include "tests/unit/raft/libraft_faults.h"

/* libraft internals (src/byte.h, src/uv.h), declared here so the test does
 * not pull libraft's private headers into Strata's warning set. */
unsigned byteCrc32(const void *buf, size_t size, unsigned init);
int UvFsProbeCapabilities(const char *dir, size_t *direct, bool *async,
                          char *errmsg);
int UvFsMakeFile(const char *dir, const char *filename,
                 struct raft_buffer *bufs, unsigned n_bufs, char *errmsg);
int UvFsMakeOrOverwriteFile(const char *dir, const char *filename,
                            const struct raft_buffer *buf, char *errmsg);
struct uvSegmentBuffer {
	size_t block_size;
	struct {
		char *base;
		size_t len;
	} arena; /* uv_buf_t on Linux: base then len */
	size_t n;
};
void uvSegmentBufferInit(struct uvSegmentBuffer *b, size_t block_size);
void uvSegmentBufferClose(struct uvSegmentBuffer *b);
int uvSegmentBufferFormat(struct uvSegmentBuffer *b);
int uvSegmentBufferAppend(struct uvSegmentBuffer *b,
                          const struct raft_entry entries[],
                          unsigned n_entries);

int uvEncodeMessage(const struct raft_message *message, uv_buf_t **bufs,
                    unsigned *n_bufs);
int uvDecodeMessage(unsigned long type, const uv_buf_t *header,
                    struct raft_message *message, size_t *payload_len);

/* libraft 0.15's CRC, one bit at a time from the definition: MSB first,
 * polynomial 0x04c11db7, no reflection, no final xor. */
static unsigned crc_reference(const uint8_t *p, size_t n, unsigned crc)
{
	for (size_t i = 0; i < n; i++) {
		crc ^= (unsigned)p[i] << 24;
		for (int k = 0; k < 8; k++) {
			crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x04c11db7u
			                          : crc << 1;
		}
	}
	return crc;
}

/* Patch #2: the sliced CRC equals the original byte-wise one for every
 * length, alignment and seed, so old segments still verify. */
static void test_libraft_crc_unchanged(void **state)
{
	(void)state;
	uint8_t buf[600];
	fill_pseudo_random(buf, sizeof(buf), 0x9E3779B97F4A7C15u);
	assert_int_equal(byteCrc32(buf, 0, 0x1234u), 0x1234u);
	for (size_t off = 0; off < 9; off++) {
		for (size_t len = 0; len + off <= sizeof(buf); len += 7) {
			unsigned seed = (unsigned)(len * 2654435761u);
			assert_int_equal(byteCrc32(buf + off, len, seed),
			                 crc_reference(buf + off, len, seed));
		}
	}
	/* Chaining, as libraft does over a batch's entries. */
	unsigned c = byteCrc32(buf, 100, 0);
	c = byteCrc32(buf + 100, 500, c);
	assert_int_equal(c, crc_reference(buf, 600, 0));
}

/* Patch #9: the carry-less-multiply CRC (x86-64 with PCLMULQDQ; the
 * table elsewhere) equals the definition on long buffers too: every fold
 * path (4 lanes, single blocks, the head before a 16-byte multiple) at
 * odd alignments, seeds and chained calls. */
static void test_libraft_crc_long_buffers(void **state)
{
	(void)state;
	size_t size = 70000;
	uint8_t *buf = malloc(size + 16);
	assert_non_null(buf);
	fill_pseudo_random(buf, size + 16, 0xC2B2AE3D27D4EB4Fu);
	uint64_t r = 88172645463325252u;
	for (int i = 0; i < 200; i++) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		size_t off = (size_t)(r % 16);
		size_t len = i < 100 ? (size_t)(r >> 8) % 1200
		                     : (size_t)(r >> 8) % size;
		unsigned seed = (unsigned)(r >> 32);
		assert_int_equal(byteCrc32(buf + off, len, seed),
		                 crc_reference(buf + off, len, seed));
	}
	unsigned c = byteCrc32(buf, 12345, 7);
	c = byteCrc32(buf + 12345, size - 12345, c);
	assert_int_equal(c, crc_reference(buf, size, 7));
	free(buf);
}

/* Patch #1: appending P requests to one segment buffer reallocates it
 * O(log P) times, not P times (each reallocation zeroes and copies the
 * whole arena: P of them made a lagging follower's writes quadratic). */
static void test_libraft_segment_buffer_grows_geometrically(void **state)
{
	(void)state;
	struct uvSegmentBuffer b;
	uvSegmentBufferInit(&b, 4096);
	assert_int_equal(uvSegmentBufferFormat(&b), 0);
	static uint8_t payload[65536];
	memset(payload, 0xAB, sizeof(payload));
	struct raft_entry e = {.term = 1, .type = RAFT_COMMAND};
	e.buf.base = payload;
	e.buf.len = sizeof(payload);
	unsigned grows = 0;
	size_t last = b.arena.len;
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(uvSegmentBufferAppend(&b, &e, 1), 0);
		if (b.arena.len != last) {
			grows++;
			last = b.arena.len;
		}
	}
	assert_true(b.n > 1000u * sizeof(payload));
	assert_true(grows <= 16);
	/* The encoded data survived every move: the last entry's payload is
	 * intact at the end of the buffer. */
	assert_memory_equal(b.arena.base + b.n - sizeof(payload), payload,
	                    sizeof(payload));
	uvSegmentBufferClose(&b);
}

/* Patch #11: two log writes in flight per open segment, a write formed
 * while the log is busy padded to a whole block. The fixture drives
 * libraft's own raft_io (uv) on a real directory, no Raft core. */
struct io_fix {
	uv_loop_t loop;
	struct raft_uv_transport transport;
	struct raft_io io;
};

static void io_open(struct io_fix *f, const char *dir)
{
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(raft_uv_tcp_init(&f->transport, &f->loop), 0);
	assert_int_equal(raft_uv_init(&f->io, &f->loop, dir, &f->transport), 0);
	raft_uv_set_auto_recovery(&f->io, false);
	assert_int_equal(f->io.init(&f->io, 1, "127.0.0.1:9"), 0);
}

static void io_closed(struct raft_io *io)
{
	*(bool *)io->data = true;
}

static void io_close(struct io_fix *f)
{
	bool done = false;
	f->io.data = &done;
	f->io.close(&f->io, io_closed);
	while (!done)
		uv_run(&f->loop, UV_RUN_ONCE);
	raft_uv_close(&f->io);
	raft_uv_tcp_close(&f->transport);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
}

/* Load the log: its entries from index 1 (no snapshot is ever taken). */
static int io_load(struct io_fix *f, struct raft_entry **entries, size_t *n)
{
	raft_term term;
	raft_id vote;
	struct raft_snapshot *snap = NULL;
	raft_index start = 0;
	int rv = f->io.load(&f->io, &term, &vote, &snap, &start, entries, n);
	if (rv == 0) {
		assert_null(snap);
		assert_int_equal(start, 1);
	}
	return rv;
}

static void entries_free(struct raft_entry *e, size_t n)
{
	void *batch = NULL;
	for (size_t i = 0; i < n; i++) {
		if (e[i].batch != batch) {
			batch = e[i].batch;
			raft_free(batch);
		}
	}
	raft_free(e);
}

/* Entry k (index k + 1): a size from 8 bytes to ~3 blocks, bytes from k. */
#define APPENDS 300
static size_t entry_len(unsigned k)
{
	return 8 + (size_t)(k * 2654435761u % 12000u) / 8 * 8;
}

struct appender {
	struct raft_io_append req[APPENDS];
	struct raft_entry e[APPENDS];
	uint8_t *data[APPENDS];
	int status[APPENDS];
	unsigned submitted, fired;
	bool may_fail; /* a write is made to fail */
	struct raft_io
	        *io; /* when set: a failure must say "not enough space" */
	unsigned failed, no_reason; /* failed callbacks; those without it */
};

static void append_done(struct raft_io_append *req, int status)
{
	struct appender *a = req->data;
	if (!a->may_fail)
		assert_int_equal(status, 0);
	/* Callbacks in submission order, whichever write finished first;
	 * except after a failed segment creation with appends waiting and
	 * writes in flight (io set: upstream's path, docs/raft.md). */
	if (a->io == NULL)
		assert_ptr_equal(req, &a->req[a->fired]);
	a->status[req - a->req] = status;
	a->fired++;
	if (status != 0 && a->io != NULL) {
		a->failed++;
		a->no_reason +=
		        strstr(a->io->errmsg, "not enough space") == NULL;
	}
}

/* Submit entry a->submitted: libraft's answer (0, or why it refused). */
static int append_try(struct io_fix *f, struct appender *a)
{
	unsigned k = a->submitted;
	a->data[k] = malloc(entry_len(k));
	assert_non_null(a->data[k]);
	fill_pseudo_random(a->data[k], entry_len(k), k + 1);
	a->e[k] = (struct raft_entry){.term = 1, .type = RAFT_COMMAND};
	a->e[k].buf.base = a->data[k];
	a->e[k].buf.len = entry_len(k);
	a->req[k].data = a;
	int rv = f->io.append(&f->io, &a->req[k], &a->e[k], 1, append_done);
	if (rv == 0)
		a->submitted++;
	else
		free(a->data[k]);
	return rv;
}

static void append_one(struct io_fix *f, struct appender *a)
{
	assert_int_equal(append_try(f, a), 0);
}

static void appender_free(struct appender *a)
{
	for (unsigned k = 0; k < a->submitted; k++)
		free(a->data[k]);
	free(a);
}

static void check_entries(struct raft_entry *e, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		uint8_t *want = malloc(entry_len((unsigned)k));
		assert_non_null(want);
		fill_pseudo_random(want, entry_len((unsigned)k), k + 1);
		assert_int_equal(e[k].buf.len, entry_len((unsigned)k));
		assert_memory_equal(e[k].buf.base, want, e[k].buf.len);
		free(want);
	}
}

/* Open the log in dir, load it, check every entry's bytes, close it:
 * the number of entries loaded. */
/* Load dir's log, check its entries, copy raft_uv_load_note to note
 * (size bytes) unless NULL; the number of entries. */
static size_t load_check_note(const char *dir, char *note, size_t size)
{
	struct io_fix f;
	struct raft_entry *e = NULL;
	size_t n = 0;
	io_open(&f, dir);
	assert_int_equal(io_load(&f, &e, &n), 0);
	check_entries(e, n);
	entries_free(e, n);
	if (note != NULL) {
		snprintf(note, size, "%s", raft_uv_load_note(&f.io));
	}
	io_close(&f);
	return n;
}

static size_t load_and_check(const char *dir)
{
	return load_check_note(dir, NULL, 0);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	*len = (size_t)ftell(fp);
	fseek(fp, 0, SEEK_SET);
	char *buf = malloc(*len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, *len, fp), *len);
	fclose(fp);
	return buf;
}

static void write_file(const char *path, const char *buf, size_t len)
{
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, len, fp), len);
	fclose(fp);
}

/* Offsets of the padding records in a segment (8-byte steps, as batches). */
static size_t find_padding(const char *buf, size_t len, size_t *offs,
                           size_t max)
{
	size_t n = 0;
	for (size_t off = 8; off + 16 <= len && n < max; off += 8) {
		uint32_t magic, plen;
		uint64_t zero;
		memcpy(&magic, buf + off, 4);
		memcpy(&plen, buf + off + 4, 4);
		memcpy(&zero, buf + off + 8, 8);
		if (magic == 0x50414444u && zero == 0 && plen >= 16 &&
		    plen % 8 == 0 && off + plen <= len)
			offs[n++] = off;
	}
	return n;
}

static void run(const char *cmd)
{
	assert_int_equal(system(cmd), 0);
}

/* Make dir (a mkdtemp template); skip the test, dir removed, where its file
 * system has no KAIO: libraft then keeps one write in flight, pads nothing
 * and does not collect completions through io_getevents. */
static void kaio_dir_or_skip(char *dir)
{
	assert_non_null(mkdtemp(dir));
	size_t direct = 0;
	bool async = false;
	char errmsg[256];
	assert_int_equal(UvFsProbeCapabilities(dir, &direct, &async, errmsg),
	                 0);
	if (!async) {
		print_message("no async I/O in %s: test not exercised\n", dir);
		snprintf(errmsg, sizeof(errmsg), "rm -rf '%s'", dir);
		run(errmsg);
		skip();
	}
}

/* Busy appends go out two writes at a time, padded; every callback fires
 * in order; the log reloads whole after a clean close (closed segment with
 * padding), and after a crash (open segment) with a write missing before a
 * later one that landed, up to the hole and no further; a damaged padding
 * record is refused. */
static void test_libraft_two_writes_in_flight(void **state)
{
	(void)state;
	/* In the working directory: a disk, not tmpfs (ctest: the build). */
	char dir[] = "libraft-two-writes-XXXXXX";
	kaio_dir_or_skip(dir);
	char crash[sizeof(dir) + 8], cmd[256], path[256];
	snprintf(crash, sizeof(crash), "%s.crash", dir);

	struct io_fix f;
	struct appender *a = calloc(1, sizeof(*a));
	assert_non_null(a);
	struct raft_entry *e = NULL;
	size_t n = 0;
	io_open(&f, dir);
	assert_int_equal(io_load(&f, &e, &n), 0);
	assert_int_equal(n, 0);
	/* Two appends, then one turn of the loop: the second waits for the
	 * first write, later ones find it busy (padded, two in flight). */
	while (a->submitted < APPENDS) {
		append_one(&f, a);
		if (a->submitted < APPENDS)
			append_one(&f, a);
		uv_run(&f.loop, UV_RUN_ONCE);
	}
	while (a->fired < APPENDS)
		uv_run(&f.loop, UV_RUN_ONCE);

	/* A crash now: the open segment as it is on disk. */
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s'", dir, crash);
	run(cmd);
	io_close(&f);

	/* Clean close: one closed segment, format 2, with padding. */
	snprintf(path, sizeof(path), "%s/0000000000000001-%016u", dir, APPENDS);
	size_t len;
	char *buf = read_file(path, &len);
	uint64_t format;
	memcpy(&format, buf, 8);
	assert_int_equal(format, 2);
	size_t pads[64];
	size_t n_pads = find_padding(buf, len, pads, 64);
	assert_true(n_pads >= 4);
	assert_int_equal(load_and_check(dir), APPENDS);

	/* A damaged padding record is refused: non-zero filler, a length
	 * past the end of the file, a length that is not whole words. */
	size_t pad = SIZE_MAX, damaged = 0;
	for (size_t i = 0; i < n_pads && pad == SIZE_MAX; i++) {
		uint32_t plen;
		memcpy(&plen, buf + pads[i] + 4, 4);
		if (plen > 16) {
			pad = pads[i];
			damaged = pads[i] + plen - 1;
		}
	}
	assert_true(pad != SIZE_MAX);
	uint32_t good_len, bad_len[] = {(uint32_t)len, 20};
	memcpy(&good_len, buf + pad + 4, 4);
	for (int k = 0; k < 3; k++) {
		if (k == 0) {
			buf[damaged] = 1;
		} else {
			buf[damaged] = 0;
			memcpy(buf + pad + 4, &bad_len[k - 1], 4);
		}
		write_file(path, buf, len);
		io_open(&f, dir);
		assert_int_equal(io_load(&f, &e, &n), RAFT_CORRUPT);
		io_close(&f);
	}
	memcpy(buf + pad + 4, &good_len, 4);
	write_file(path, buf, len);
	assert_int_equal(load_and_check(dir), APPENDS);
	free(buf);

	/* Crash copy: the open segment loads whole. Then the same with the
	 * first block after a padding record (the start of a write) zeroed,
	 * as if that write never reached the disk while the next one did:
	 * the log ends before it, with no entry shifted. */
	snprintf(path, sizeof(path), "%s/open-1", crash);
	buf = read_file(path, &len);
	n_pads = find_padding(buf, len, pads, 64);
	assert_true(n_pads >= 4);
	size_t hole = n_pads / 2;
	uint32_t plen;
	memcpy(&plen, buf + pads[hole] + 4, 4);
	size_t at = pads[hole] + plen;
	assert_int_equal(at % 4096, 0);
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s.2'", crash, crash);
	run(cmd);
	char note[512];
	assert_int_equal(load_check_note(crash, note, sizeof(note)), APPENDS);
	assert_string_equal(note, ""); /* whole: nothing to say */

	snprintf(path, sizeof(path), "%s.2/open-1", crash);
	memset(buf + at, 0, 4096);
	write_file(path, buf, len);
	free(buf);
	snprintf(path, sizeof(path), "%s.2", crash);
	n = load_check_note(path, note, sizeof(note));
	assert_true(n > 0 && n < APPENDS);
	/* Cut short with a later write on disk: said (patch 15). */
	print_message("%s\n", note);
	assert_non_null(strstr(note, "open segment open-1: entries end at"));
	assert_non_null(strstr(note, "not zero"));

	appender_free(a);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%s.2'", dir, crash,
	         crash);
	run(cmd);
}

/* Three appends to a new log in dir, one batch each, and a copy of it
 * taken while it is open (crash, as after a kill -9), then closed. */
static void three_batches_and_crash_copy(const char *dir, const char *crash,
                                         struct appender *a)
{
	struct io_fix f;
	struct raft_entry *e = NULL;
	size_t n = 0;
	char cmd[256];
	io_open(&f, dir);
	assert_int_equal(io_load(&f, &e, &n), 0);
	for (unsigned k = 0; k < 3; k++) {
		append_one(&f, a);
		while (a->fired < a->submitted)
			uv_run(&f.loop, UV_RUN_ONCE);
	}
	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s'", dir, crash);
	run(cmd);
	io_close(&f);
}

/* Patch #21: an open segment cut short inside a batch (a file truncated
 * by hand, a copy cut off) is refused; the batches loaded before it were
 * freed twice (the segment's buffer by uvSegmentLoadOpen, then again
 * through their entries by uvSegmentLoadAll): a crash, or a corrupt heap.
 * ASan checks the free. */
static void test_libraft_open_segment_cut_short(void **state)
{
	(void)state;
	char dir[] = "libraft-cut-short-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char crash[sizeof(dir) + 8], cmd[256], path[256];
	snprintf(crash, sizeof(crash), "%s.crash", dir);
	struct io_fix f;
	struct appender *a = calloc(1, sizeof(*a));
	assert_non_null(a);
	struct raft_entry *e = NULL;
	size_t n = 0;
	three_batches_and_crash_copy(dir, crash, a);
	assert_int_equal(load_and_check(dir), 3);

	/* Cut the copy's open segment inside the last batch's data. */
	snprintf(path, sizeof(path), "%s/open-1", crash);
	size_t len;
	char *buf = read_file(path, &len);
	while (len > 0 && buf[len - 1] == 0)
		len--;
	assert_true(len > 16);
	free(buf);
	assert_int_equal(truncate(path, (off_t)(len - 8)), 0);
	io_open(&f, crash);
	assert_int_equal(io_load(&f, &e, &n), RAFT_IOERR);
	print_message("%s\n", f.io.errmsg);
	assert_non_null(strstr(f.io.errmsg, "short read"));
	io_close(&f);

	appender_free(a);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, crash);
	run(cmd);
}

/* Patch #23: the entries loaded from an open segment (a crash copy: the
 * file is as long as a whole preallocated segment) live in a buffer of
 * their size, not in one as long as the file (QA: 64 MiB per container
 * resident after a kill -9, for a few KB of entries). */
static void test_libraft_open_segment_keeps_only_its_entries(void **state)
{
	(void)state;
	char dir[] = "libraft-open-fit-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char crash[sizeof(dir) + 8], cmd[256], path[256];
	snprintf(crash, sizeof(crash), "%s.crash", dir);
	struct io_fix f;
	struct appender *a = calloc(1, sizeof(*a));
	assert_non_null(a);
	struct raft_entry *e = NULL;
	size_t n = 0;
	three_batches_and_crash_copy(dir, crash, a);
	snprintf(path, sizeof(path), "%s/open-1", crash);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size >= 1024 * 1024);

	io_open(&f, crash);
	assert_int_equal(io_load(&f, &e, &n), 0);
	assert_int_equal(n, 3);
	check_entries(e, n);
	for (size_t i = 0; i < n; i++) {
		assert_ptr_equal(e[i].batch, e[0].batch);
	}
	print_message("open segment of %lld bytes: entries in %zu\n",
	              (long long)st.st_size, malloc_usable_size(e[0].batch));
	assert_true(malloc_usable_size(e[0].batch) < 64 * 1024);
	entries_free(e, n);
	io_close(&f);
	assert_int_equal(load_and_check(crash), 3); /* closed, reloads */

	appender_free(a);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, crash);
	run(cmd);
}

/* One run of the failure test: appends two per loop turn, the nth log write
 * made to fail. Returns the record of the injected failure. */
static void failed_write_run(const char *dir, unsigned nth,
                             struct libraft_faults_record *rec)
{
	struct io_fix f;
	struct appender *a = calloc(1, sizeof(*a));
	assert_non_null(a);
	a->may_fail = true;
	struct raft_entry *e = NULL;
	size_t n = 0;
	io_open(&f, dir);
	assert_int_equal(io_load(&f, &e, &n), 0);
	assert_int_equal(n, 0);
	libraft_faults_fail_write(nth);
	int refused = 0;
	while (a->submitted < APPENDS && refused == 0) {
		for (int i = 0; i < 2 && refused == 0; i++)
			refused = append_try(&f, a);
		/* (Not waiting when nothing is in flight: all may have
		 * failed at once.) */
		uv_run(&f.loop,
		       a->fired < a->submitted ? UV_RUN_ONCE : UV_RUN_NOWAIT);
	}
	while (a->fired < a->submitted)
		uv_run(&f.loop, UV_RUN_ONCE);
	libraft_faults_get(rec);
	libraft_faults_fail_write(0);
	assert_true(rec->failed);

	/* Acknowledged: a prefix; from the failed write on, every append
	 * failed, and once the failure was known libraft took no more. */
	unsigned ok = 0;
	while (ok < a->fired && a->status[ok] == 0)
		ok++;
	assert_true(ok < a->fired);
	for (unsigned k = ok; k < a->fired; k++)
		assert_int_equal(a->status[k], RAFT_IOERR);
	assert_int_equal(refused, RAFT_IOERR);
	io_close(&f);

	/* The log reloads with exactly the acknowledged entries: none of the
	 * failed write's, none of a later write's that did reach the disk. */
	assert_int_equal(load_and_check(dir), ok);
	/* And takes appends again after the restart. */
	io_open(&f, dir);
	assert_int_equal(io_load(&f, &e, &n), 0);
	assert_int_equal(n, ok);
	entries_free(e, n);
	for (unsigned k = ok; k < a->submitted; k++)
		free(a->data[k]);
	a->submitted = a->fired = ok;
	a->may_fail = false;
	append_one(&f, a);
	while (a->fired < a->submitted)
		uv_run(&f.loop, UV_RUN_ONCE);
	io_close(&f);
	assert_int_equal(load_and_check(dir), ok + 1);
	appender_free(a);
}

/* Patch #12, and #11's failure path: a log write fails (EIO injected into
 * its completion, as a failing disk reports it). Its appends and those of
 * every write after it fail, including a later write that completed
 * without error (it sits past the failed one); libraft refuses appends
 * from then on (upstream rolled its next index back and wrote later
 * entries under the indexes of failed ones); after a restart the log
 * holds exactly the acknowledged entries and takes appends again. The
 * failure is put on successive writes until some run has a later write
 * in flight beside the failed one. */
static void test_libraft_failed_write_stops_log(void **state)
{
	(void)state;
	char dir[] = "libraft-failed-write-XXXXXX";
	kaio_dir_or_skip(dir);
	char cmd[256];
	unsigned runs = 0, overlapped = 0;
	for (unsigned nth = 1; nth <= 40 && overlapped < 3; nth++) {
		struct libraft_faults_record rec;
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir '%s'", dir,
		         dir);
		run(cmd);
		failed_write_run(dir, nth, &rec);
		runs++;
		overlapped += rec.later_ok > 0;
	}
	print_message("%u runs, %u with a later write in flight\n", runs,
	              overlapped);
	assert_true(overlapped > 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	run(cmd);
}

/* Patch #13: a full disk. Log segments are allocated ahead (the one being
 * written and a pool of two), so a disk that fills up shows first as a
 * failed refill of the pool. */

/* Run the loop until every submitted append has called back. */
static void drain(struct io_fix *f, struct appender *a)
{
	while (a->fired < a->submitted)
		uv_run(&f->loop, UV_RUN_ONCE);
}

/* Let libraft's thread pool finish creating segments for about ms. */
static void settle(struct io_fix *f, unsigned ms)
{
	for (unsigned i = 0; i < ms; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
}

/* A log in a new directory of the working one (a disk, not tmpfs), with
 * 64 KiB segments (about 10 entries each), one entry written and the pool
 * of prepared segments full; then its disk is full. The appender. */
static struct appender *disk_full_open(struct io_fix *f, char *dir)
{
	struct appender *a = calloc(1, sizeof(*a));
	assert_non_null(a);
	assert_non_null(mkdtemp(dir));
	struct raft_entry *e = NULL;
	size_t n = 0;
	io_open(f, dir);
	raft_uv_set_segment_size(&f->io, 64 * 1024);
	assert_int_equal(io_load(f, &e, &n), 0);
	assert_int_equal(n, 0);
	append_one(f, a);
	drain(f, a);
	settle(f, 200);
	libraft_faults_disk_full_in(dir, true);
	return a;
}

/* The fault was hit; close the log, check that it reloads with exactly
 * the acknowledged entries when every callback succeeded (reload), and
 * remove it. */
static void disk_full_close(struct io_fix *f, char *dir, struct appender *a,
                            bool reload)
{
	assert_true(libraft_faults_disk_full_in(dir, false) > 0);
	io_close(f);
	if (reload)
		assert_int_equal(load_and_check(dir), a->fired);
	appender_free(a);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	run(cmd);
}

/* The disk fills up: the pool's refill fails with no request waiting,
 * and libraft refuses every append from then on (the server then leaves
 * its group, see appendLeader), saying why. Upstream said "an earlier
 * write to the log failed" of a disk that was full. Every append
 * acknowledged before reloads. */
static void test_libraft_disk_full_refuses_appends(void **state)
{
	(void)state;
	char dir[] = "libraft-disk-full-XXXXXX";
	struct io_fix f;
	struct appender *a = disk_full_open(&f, dir);
	int refused = 0;
	while (refused == 0 && a->submitted < APPENDS) {
		refused = append_try(&f, a); /* callbacks assert success */
		drain(&f, a);
		settle(&f, 5);
	}
	assert_int_equal(refused, RAFT_IOERR);
	print_message("%u appends acknowledged; then: %s\n", a->fired,
	              f.io.errmsg);
	assert_non_null(strstr(f.io.errmsg, "create segment open-"));
	assert_non_null(strstr(f.io.errmsg, "not enough space"));
	disk_full_close(&f, dir, a, true);
}

/* The disk fills up while appends wait for the next segment: they fail,
 * and each callback finds the reason in io->errmsg. (A store once logged
 * "io: " with nothing after it in client_diskfull; that run's order of
 * events is not reproduced here, so this guards the property only. The
 * callbacks may come before those of earlier writes still in flight:
 * left as upstream does it, see docs/raft.md, item 9.) */
static void test_libraft_disk_full_waiting_appends(void **state)
{
	(void)state;
	char dir[] = "libraft-disk-full-XXXXXX";
	struct io_fix f;
	struct appender *a = disk_full_open(&f, dir);
	a->may_fail = true;
	a->io = &f.io;
	/* A burst, without running the loop: more than the open segment and
	 * the pool of two hold, so later ones wait for a refill. */
	while (a->submitted < APPENDS && append_try(&f, a) == 0) {
	}
	drain(&f, a);
	print_message("%u appends, %u failed in their callback, %u of "
	              "those without the reason\n",
	              a->submitted, a->failed, a->no_reason);
	assert_true(a->failed > 0);
	assert_int_equal(a->no_reason, 0);
	disk_full_close(&f, dir, a, false);
}

/* Encode m, decode its header again: the code and the payload length. */
static int decode_encoded(const struct raft_message *m,
                          struct raft_message *out, size_t *payload)
{
	uv_buf_t *bufs = NULL;
	unsigned n = 0;
	assert_int_equal(uvEncodeMessage(m, &bufs, &n), 0);
	uv_buf_t h = {.base = bufs[0].base + 16, .len = bufs[0].len - 16};
	memset(out, 0, sizeof(*out));
	int rv = uvDecodeMessage(m->type, &h, out, payload);
	raft_free(bufs[0].base);
	raft_free(bufs);
	return rv;
}

/* PATCHES.md #20: every message libraft sends decodes again (the length
 * checks accept them), and headers cut short, a bad entry type (which
 * crashed the receiver), an entry count past the header, an odd entry
 * length or a damaged configuration are refused without reading out of
 * bounds (ASan), as are thousands of random headers of every type. */
static void test_libraft_decode_checks_lengths(void **state)
{
	(void)state;
	struct raft_message m, d;
	size_t payload = 0;
	uint8_t data[24] = {0};
	struct raft_entry e[2] = {
	        {.term = 3, .type = RAFT_COMMAND, .buf = {data, 8}},
	        {.term = 3, .type = RAFT_COMMAND, .buf = {data, 16}},
	};
	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_APPEND_ENTRIES;
	m.append_entries.term = 3;
	m.append_entries.entries = e;
	m.append_entries.n_entries = 2;
	assert_int_equal(decode_encoded(&m, &d, &payload), 0);
	assert_int_equal(d.append_entries.n_entries, 2);
	assert_int_equal(payload, 24);
	raft_free(d.append_entries.entries);

	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_INSTALL_SNAPSHOT;
	m.install_snapshot.term = 2;
	raft_configuration_init(&m.install_snapshot.conf);
	assert_int_equal(raft_configuration_add(&m.install_snapshot.conf, 1,
	                                        "127.0.0.1:1", RAFT_VOTER),
	                 0);
	assert_int_equal(raft_configuration_add(&m.install_snapshot.conf, 2,
	                                        "127.0.0.1:2", RAFT_VOTER),
	                 0);
	m.install_snapshot.data.len = 40;
	assert_int_equal(decode_encoded(&m, &d, &payload), 0);
	assert_int_equal(d.install_snapshot.conf.n, 2);
	assert_int_equal(payload, 40);
	raft_configuration_close(&d.install_snapshot.conf);
	raft_configuration_close(&m.install_snapshot.conf);

	static const unsigned short small[] = {
	        RAFT_IO_REQUEST_VOTE, RAFT_IO_REQUEST_VOTE_RESULT,
	        RAFT_IO_APPEND_ENTRIES_RESULT, RAFT_IO_TIMEOUT_NOW};
	for (size_t k = 0; k < sizeof(small) / sizeof(*small); k++) {
		memset(&m, 0, sizeof(m));
		m.type = small[k];
		assert_int_equal(decode_encoded(&m, &d, &payload), 0);
	}

	/* AppendEntries claiming one entry of type 99: 72 bytes. */
	uint8_t h[64] = {0};
	h[32] = 1;  /* one entry */
	h[48] = 99; /* its type */
	uv_buf_t hb = {.base = (char *)h, .len = 56};
	memset(&d, 0, sizeof(d));
	assert_int_equal(
	        uvDecodeMessage(RAFT_IO_APPEND_ENTRIES, &hb, &d, &payload),
	        RAFT_MALFORMED);
	assert_int_equal(d.append_entries.n_entries, 0);
	h[48] = RAFT_COMMAND;
	h[40] = 0xff; /* one entry, but a count of 255 in a 56-byte header */
	h[32] = 0xff;
	assert_int_equal(
	        uvDecodeMessage(RAFT_IO_APPEND_ENTRIES, &hb, &d, &payload),
	        RAFT_MALFORMED);
	h[32] = 1;
	h[52] = 7; /* an entry of 7 bytes */
	assert_int_equal(
	        uvDecodeMessage(RAFT_IO_APPEND_ENTRIES, &hb, &d, &payload),
	        RAFT_MALFORMED);
	for (size_t len = 1; len < 48; len++) {
		uv_buf_t cut = {.base = (char *)h, .len = len};
		for (unsigned t = 1; t <= 6; t++) {
			memset(&d, 0, sizeof(d));
			int rv = uvDecodeMessage(t, &cut, &d, &payload);
			if (rv == 0 && t == RAFT_IO_APPEND_ENTRIES) {
				raft_free(d.append_entries.entries);
			}
		}
	}

	/* Random headers of every type, in exactly sized heap buffers so
	 * that ASan sees any read past them. */
	srand(20261129);
	for (int round = 0; round < 20000; round++) {
		size_t len = 1 + (size_t)(rand() % 120);
		uint8_t *b = malloc(len);
		assert_non_null(b);
		for (size_t i = 0; i < len; i++) {
			b[i] = (uint8_t)(rand() % 4 == 0 ? rand() : rand() % 3);
		}
		uv_buf_t rb = {.base = (char *)b, .len = len};
		unsigned t = 1 + (unsigned)(rand() % 7);
		memset(&d, 0, sizeof(d));
		int rv = uvDecodeMessage(t, &rb, &d, &payload);
		if (rv == 0 && t == RAFT_IO_APPEND_ENTRIES) {
			raft_free(d.append_entries.entries);
		}
		if (rv == 0 && t == RAFT_IO_INSTALL_SNAPSHOT) {
			raft_configuration_close(&d.install_snapshot.conf);
		}
		free(b);
	}
}

/* PATCHES.md #22: a file that cannot be made reports why, not the
 * clean-up's failure after it, nor nothing. */
static void test_libraft_file_errors_name_the_cause(void **state)
{
	(void)state;
	char errmsg[RAFT_ERRMSG_BUF_SIZE];
	char data[8] = "snapshot";
	struct raft_buffer buf = {data, sizeof(data)};
	const char *dir = "/nonexistent-strata-test-dir";
	errmsg[0] = '\0';
	assert_int_not_equal(UvFsMakeFile(dir, "f", &buf, 1, errmsg), 0);
	assert_contains(errmsg, "open");
	assert_null(strstr(errmsg, "unlink"));
	errmsg[0] = '\0';
	assert_int_not_equal(UvFsMakeOrOverwriteFile(dir, "m", &buf, errmsg),
	                     0);
	assert_contains(errmsg, "open");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_libraft_crc_unchanged),
	        cmocka_unit_test(test_libraft_crc_long_buffers),
	        cmocka_unit_test(
	                test_libraft_segment_buffer_grows_geometrically),
	        cmocka_unit_test(test_libraft_two_writes_in_flight),
	        cmocka_unit_test(test_libraft_open_segment_cut_short),
	        cmocka_unit_test(
	                test_libraft_open_segment_keeps_only_its_entries),
	        cmocka_unit_test(test_libraft_failed_write_stops_log),
	        cmocka_unit_test(test_libraft_disk_full_refuses_appends),
	        cmocka_unit_test(test_libraft_disk_full_waiting_appends),
	        cmocka_unit_test(test_libraft_decode_checks_lengths),
	        cmocka_unit_test(test_libraft_file_errors_name_the_cause),
	};
	return cmocka_run_group_tests_name("libraft_patches", tests, NULL,
	                                   NULL);
}
