/* Unit tests for Strata's patches to the vendored libraft
 * (third_party/raft/PATCHES.md): they must keep libraft's on-disk format
 * and fix what they claim to fix. Built only without STRATA_SYSTEM_RAFT. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <raft.h>

#include "tests/lib/check.h"

/* libraft internals (src/byte.h, src/uv.h), declared here so the test does
 * not pull libraft's private headers into Strata's warning set. */
unsigned byteCrc32(const void *buf, size_t size, unsigned init);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_libraft_crc_unchanged),
	        cmocka_unit_test(test_libraft_crc_long_buffers),
	        cmocka_unit_test(
	                test_libraft_segment_buffer_grows_geometrically),
	};
	return cmocka_run_group_tests_name("libraft_patches", tests, NULL,
	                                   NULL);
}
