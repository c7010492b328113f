/* Unit tests for segmentstore/read_index.c: reads, cache, back-pressure. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/refbuf.h"
#include "segmentstore/read_index.h"
#include "tests/lib/oom.h"
#include "tests/unit/segmentstore/fsm_helpers.h"

struct fixture {
	struct container_fsm f;
	struct read_index ri;
};

static int setup(void **state)
{
	struct fixture *x = malloc(sizeof(*x));
	if (x == NULL || container_fsm_init(&x->f, NULL) != 0) {
		return -1;
	}
	struct read_index_config c = {.cache_bytes = 3 * READ_INDEX_BLOCK,
	                              .unflushed_budget = 100};
	read_index_init(&x->ri, &x->f, &c);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *x = *state;
	read_index_close(&x->ri);
	container_fsm_close(&x->f);
	free(x);
	return 0;
}

/* Append data[0, n) to segment s and flush all of it to chunk "c". */
static void append_flushed(struct container_fsm *f, uint64_t s,
                           const uint8_t *data, size_t n)
{
	struct entry_builder b;
	entry_builder_init(&b, 0);
	assert_int_equal(
	        entry_builder_add_append(&b, s, uuid_n(1), 0, 1, data, n), 0);
	assert_int_equal(entry_builder_add_flush(&b, s, 0, n, "c", 0), 0);
	assert_int_equal(apply_builder(f, &b, NULL, 0), 0);
	entry_builder_close(&b);
}

/* Tail reads come from memory; the tail waits; a sealed end ends. */
static void test_read_tail_wait_and_end(void **state)
{
	struct fixture *x = *state;
	uint64_t s = do_create(&x->f, "s").segment;
	struct read_result r;
	assert_int_equal(read_index_read(&x->ri, s, 0, 10, &r), 0);
	assert_int_equal(r.status, READ_WAIT);
	assert_int_equal(do_append(&x->f, s, 1, 0, 1, "hello").code, 0);
	assert_int_equal(do_append(&x->f, s, 1, 1, 1, " world").code, 0);
	assert_int_equal(read_index_read(&x->ri, s, 0, 100, &r), 0);
	assert_int_equal(r.status, READ_DATA);
	assert_int_equal(r.len, 11);
	assert_memory_equal(r.data, "hello world", 11);
	assert_int_equal(r.length, 11);
	assert_int_equal(read_index_read(&x->ri, s, 6, 3, &r), 0);
	assert_int_equal(r.len, 3);
	assert_memory_equal(r.data, "wor", 3);
	assert_int_equal(read_index_read(&x->ri, s, 11, 3, &r), 0);
	assert_int_equal(r.status, READ_WAIT);
	assert_int_equal(read_index_read(&x->ri, s, 12, 3, &r), STRATA_ERANGE);
	assert_int_equal(read_index_read(&x->ri, s, 0, 0, &r), STRATA_EINVAL);
	assert_int_equal(read_index_read(&x->ri, 99, 0, 1, &r), STRATA_ENOENT);
	assert_int_equal(do_seal(&x->f, s).code, 0);
	assert_int_equal(read_index_read(&x->ri, s, 11, 3, &r), 0);
	assert_int_equal(r.status, READ_END);
	assert_int_equal(read_index_read(&x->ri, s, 10, 3, &r), 0);
	assert_int_equal(r.status, READ_DATA);
	assert_int_equal(r.len, 1);
}

/* Reads below the start offset fail after truncation and deletion. */
static void test_read_truncated_and_deleted(void **state)
{
	struct fixture *x = *state;
	uint64_t s = do_create(&x->f, "s").segment;
	assert_int_equal(do_append(&x->f, s, 1, 0, 1, "abcdef").code, 0);
	assert_int_equal(do_truncate(&x->f, s, 4).code, 0);
	struct read_result r;
	assert_int_equal(read_index_read(&x->ri, s, 3, 10, &r),
	                 STRATA_ETRUNCATED);
	assert_int_equal(read_index_read(&x->ri, s, 4, 10, &r), 0);
	assert_memory_equal(r.data, "ef", 2);
	assert_int_equal(do_delete(&x->f, s).code, 0);
	assert_int_equal(read_index_read(&x->ri, s, 4, 10, &r), STRATA_ENOENT);
}

/* After a flush the bytes come from tier 2: the read names the chunk;
 * once inserted they are served from the cache. */
static void test_read_flushed_points_to_chunk_then_cache(void **state)
{
	struct fixture *x = *state;
	uint64_t s = do_create(&x->f, "s").segment;
	assert_int_equal(do_append(&x->f, s, 1, 0, 1, "0123456789").code, 0);
	assert_int_equal(do_flush(&x->f, s, 0, 4, "c0", 0).code, 0);
	assert_int_equal(do_flush(&x->f, s, 4, 4, "c1", 100).code, 0);
	struct read_result r;
	assert_int_equal(read_index_read(&x->ri, s, 5, 100, &r), 0);
	assert_int_equal(r.status, READ_TIER2);
	assert_string_equal(r.chunk, "c1");
	assert_int_equal(r.chunk_offset, 101);
	assert_int_equal(r.len, 3);
	assert_int_equal(read_index_read(&x->ri, s, 1, 2, &r), 0);
	assert_int_equal(r.status, READ_TIER2);
	assert_string_equal(r.chunk, "c0");
	assert_int_equal(r.chunk_offset, 1);
	assert_int_equal(r.len, 2);
	/* The unflushed rest is still in memory. */
	assert_int_equal(read_index_read(&x->ri, s, 8, 100, &r), 0);
	assert_int_equal(r.status, READ_DATA);
	assert_memory_equal(r.data, "89", 2);
	/* Cache what tier 2 returned. */
	assert_int_equal(
	        read_index_insert(&x->ri, s, 4, (const uint8_t *)"4567", 4), 0);
	assert_int_equal(read_index_read(&x->ri, s, 5, 100, &r), 0);
	assert_int_equal(r.status, READ_DATA);
	assert_int_equal(r.len, 3);
	assert_memory_equal(r.data, "567", 3);
	assert_int_equal(x->ri.hits, 1);
	assert_int_equal(x->ri.misses, 2);
	/* Adjacent inserts join into one block. */
	assert_int_equal(
	        read_index_insert(&x->ri, s, 0, (const uint8_t *)"0123", 4), 0);
	assert_int_equal(read_index_read(&x->ri, s, 2, 100, &r), 0);
	assert_int_equal(r.status, READ_DATA);
	assert_int_equal(r.len, 6);
	assert_memory_equal(r.data, "234567", 6);
	assert_int_equal(x->ri.n_blocks, 1);
	assert_int_equal(x->ri.cached_bytes, 8);
	/* Out of range inserts. */
	assert_int_equal(
	        read_index_insert(&x->ri, s, 8, (const uint8_t *)"89x", 3),
	        STRATA_ERANGE);
	assert_int_equal(
	        read_index_insert(&x->ri, 77, 0, (const uint8_t *)"a", 1),
	        STRATA_ENOENT);
	read_index_forget(&x->ri, s);
	assert_int_equal(x->ri.cached_bytes, 0);
	assert_int_equal(read_index_read(&x->ri, s, 5, 100, &r), 0);
	assert_int_equal(r.status, READ_TIER2);
}

/* A merged source's chunk is read at the target's shifted offset. */
static void test_read_after_merge(void **state)
{
	struct fixture *x = *state;
	uint64_t t = do_create(&x->f, "t").segment;
	uint64_t src = do_create(&x->f, "t#transaction.1").segment;
	assert_int_equal(do_append(&x->f, t, 1, 0, 1, "AAAA").code, 0);
	assert_int_equal(do_append(&x->f, src, 2, 0, 1, "bbbbcc").code, 0);
	assert_int_equal(do_flush(&x->f, src, 0, 4, "src.c", 0).code, 0);
	assert_int_equal(do_seal(&x->f, src).code, 0);
	assert_int_equal(do_merge(&x->f, t, src).code, 0);
	struct read_result r;
	assert_int_equal(read_index_read(&x->ri, t, 0, 100, &r), 0);
	assert_memory_equal(r.data, "AAAA", 4);
	assert_int_equal(r.len, 4);
	assert_int_equal(read_index_read(&x->ri, t, 6, 100, &r), 0);
	assert_int_equal(r.status, READ_TIER2);
	assert_string_equal(r.chunk, "src.c");
	assert_int_equal(r.chunk_offset, 2);
	assert_int_equal(r.len, 2);
	assert_int_equal(read_index_read(&x->ri, t, 8, 100, &r), 0);
	assert_memory_equal(r.data, "cc", 2);
	assert_int_equal(read_index_read(&x->ri, src, 0, 1, &r), STRATA_ENOENT);
}

/* The cache stays within its byte budget, evicting least recently used
 * blocks; a range straddling blocks is split at block boundaries. */
static void test_read_cache_budget_and_lru(void **state)
{
	struct fixture *x = *state;
	uint64_t s = do_create(&x->f, "s").segment;
	size_t n = 5 * READ_INDEX_BLOCK;
	uint8_t *data = malloc(n);
	for (size_t i = 0; i < n; i++) {
		data[i] = (uint8_t)(i / 7);
	}
	append_flushed(&x->f, s, data, n);
	/* A range over two blocks. */
	size_t half = READ_INDEX_BLOCK / 2;
	assert_int_equal(read_index_insert(&x->ri, s, half, data + half,
	                                   READ_INDEX_BLOCK),
	                 0);
	assert_int_equal(x->ri.n_blocks, 2);
	struct read_result r;
	assert_int_equal(read_index_read(&x->ri, s, half, n, &r), 0);
	assert_int_equal(r.status, READ_DATA);
	assert_int_equal(r.len, half); /* up to the block end */
	assert_memory_equal(r.data, data + half, half);
	read_index_forget(&x->ri, s);
	/* Fill blocks 0, 1, 2 (the budget), touch 0, add 3: 1 goes. */
	for (size_t k = 0; k < 3; k++) {
		assert_int_equal(read_index_insert(&x->ri, s,
		                                   k * READ_INDEX_BLOCK,
		                                   data + k * READ_INDEX_BLOCK,
		                                   READ_INDEX_BLOCK),
		                 0);
	}
	assert_int_equal(x->ri.cached_bytes, 3 * READ_INDEX_BLOCK);
	assert_int_equal(read_index_read(&x->ri, s, 10, 1, &r), 0);
	assert_int_equal(r.status, READ_DATA);
	assert_int_equal(read_index_insert(&x->ri, s, 3 * READ_INDEX_BLOCK,
	                                   data + 3 * READ_INDEX_BLOCK,
	                                   READ_INDEX_BLOCK),
	                 0);
	assert_int_equal(x->ri.cached_bytes, 3 * READ_INDEX_BLOCK);
	assert_int_equal(x->ri.evictions, 1);
	assert_int_equal(read_index_read(&x->ri, s, READ_INDEX_BLOCK, 1, &r),
	                 0);
	assert_int_equal(r.status, READ_TIER2);
	assert_int_equal(read_index_read(&x->ri, s, 0, 1, &r), 0);
	assert_int_equal(r.status, READ_DATA);
	assert_int_equal(
	        read_index_read(&x->ri, s, 2 * READ_INDEX_BLOCK + 5, 1, &r), 0);
	assert_int_equal(r.status, READ_DATA);
	assert_int_equal(r.data[0], data[2 * READ_INDEX_BLOCK + 5]);
	/* Larger than the whole cache. */
	assert_int_equal(
	        read_index_insert(&x->ri, s, 0, data, 4 * READ_INDEX_BLOCK),
	        STRATA_ETOOBIG);
	free(data);
}

/* A copy of data[off, off + n) as the index's own (strata_malloc'd). */
static struct refbuf *owned_copy(const uint8_t *data, size_t off, size_t n)
{
	struct refbuf *p = refbuf_copy(data + off, n);
	assert_non_null(p);
	return p;
}

/* A tier-2 read taken whole: blocks point into it, it counts in full
 * while any block does, merges with a neighbour by copy, and is freed when
 * its last block is evicted; on error it stays readable until the next
 * insert. (ASan checks the frees.) */
static void test_read_cache_owned_insert(void **state)
{
	struct fixture *x = *state;
	uint64_t s = do_create(&x->f, "s").segment;
	const size_t B = READ_INDEX_BLOCK, half = B / 2, n = 5 * B;
	uint8_t *data = malloc(n);
	for (size_t i = 0; i < n; i++) {
		data[i] = (uint8_t)(i / 5);
	}
	append_flushed(&x->f, s, data, n);

	/* [half, half + 2B): three slots, no copy. */
	struct refbuf *one = owned_copy(data, half, 2 * B);
	assert_int_equal(read_index_insert_owned(&x->ri, s, half, one, 2 * B),
	                 0);
	assert_int_equal(x->ri.n_blocks, 3);
	assert_int_equal(x->ri.cached_bytes, 2 * B);
	struct read_result r;
	assert_int_equal(read_index_read(&x->ri, s, half, n, &r), 0);
	assert_int_equal(r.status, READ_DATA);
	assert_ptr_equal(r.data, one->data);
	assert_ptr_equal(r.ref, one); /* a reply may hold it */
	assert_int_equal(r.len, half);
	assert_int_equal(read_index_read(&x->ri, s, B + 5, n, &r), 0);
	assert_ptr_equal(r.data, one->data + (B + 5 - half));
	assert_int_equal(r.len, B - 5);
	/* A reply being sent holds the buffer past the blocks' eviction. */
	struct refbuf *held = refbuf_hold(r.ref);
	const uint8_t *held_data = r.data;

	/* [0, half) joins slot 0's block: copied into a block of its own. */
	assert_int_equal(read_index_insert(&x->ri, s, 0, data, half), 0);
	assert_int_equal(x->ri.cached_bytes, 3 * B);
	assert_int_equal(read_index_read(&x->ri, s, 0, n, &r), 0);
	assert_int_equal(r.len, B);
	assert_memory_equal(r.data, data, B);
	assert_null(r.ref); /* a copied block: no buffer to hold */

	/* Two more slots: over budget, slots 1 and 2 go, and with them the
	 * whole first buffer. */
	struct refbuf *two = owned_copy(data, 3 * B, 2 * B);
	assert_int_equal(read_index_insert_owned(&x->ri, s, 3 * B, two, 2 * B),
	                 0);
	assert_int_equal(x->ri.evictions, 2);
	assert_int_equal(x->ri.cached_bytes, 3 * B);
	assert_int_equal(read_index_read(&x->ri, s, B, 1, &r), 0);
	assert_int_equal(r.status, READ_TIER2);
	assert_int_equal(read_index_read(&x->ri, s, 0, 1, &r), 0);
	assert_int_equal(r.status, READ_DATA);
	assert_int_equal(read_index_read(&x->ri, s, 4 * B + 3, 1, &r), 0);
	assert_ptr_equal(r.data, two->data + B + 3);
	/* The evicted first buffer is still there for its holder (ASan). */
	assert_memory_equal(held_data, data + B + 5, B - 5);
	refbuf_release(held);

	/* Refused: still readable until the next insert, then freed. */
	struct refbuf *big = owned_copy(data, 0, 4 * B);
	assert_int_equal(read_index_insert_owned(&x->ri, s, 0, big, 4 * B),
	                 STRATA_ETOOBIG);
	assert_memory_equal(big->data, data, 4 * B);
	struct refbuf *lost = owned_copy(data, 0, 8);
	assert_int_equal(read_index_insert_owned(&x->ri, 99, 0, lost, 8),
	                 STRATA_ENOENT);
	assert_memory_equal(lost->data, data, 8);
	assert_int_equal(x->ri.cached_bytes, 3 * B);
	read_index_forget(&x->ri, s);
	assert_int_equal(x->ri.cached_bytes, 0);
	assert_int_equal(x->ri.n_blocks, 0);
	free(data);
}

/* Out of memory at every allocation of an owned insert: the data stays
 * readable until the next insert, the cache stays consistent, and nothing
 * leaks (ASan). */
static void test_read_cache_owned_insert_oom(void **state)
{
	struct fixture *x = *state;
	uint64_t s = do_create(&x->f, "s").segment;
	const size_t B = READ_INDEX_BLOCK, n = 3 * B;
	uint8_t *data = malloc(n);
	for (size_t i = 0; i < n; i++) {
		data[i] = (uint8_t)(i * 7);
	}
	append_flushed(&x->f, s, data, n);
	/* An older block to merge with and to evict. */
	assert_int_equal(read_index_insert(&x->ri, s, 0, data, 100), 0);
	int rc = STRATA_ENOMEM;
	for (long k = 1; rc == STRATA_ENOMEM && k < 100; k++) {
		struct refbuf *own = owned_copy(data, 50, n - 50);
		oom_install(k);
		rc = read_index_insert_owned(&x->ri, s, 50, own, n - 50);
		oom_uninstall();
		assert_true(rc == 0 || rc == STRATA_ENOMEM);
		assert_memory_equal(own->data, data + 50, n - 50);
		assert_true(x->ri.cached_bytes <= x->ri.config.cache_bytes);
		for (uint64_t off = 0; off < n; off += B / 2) {
			struct read_result r;
			assert_int_equal(read_index_read(&x->ri, s, off, n, &r),
			                 0);
			if (r.status == READ_DATA) {
				assert_memory_equal(r.data, data + off, r.len);
			} else {
				assert_int_equal(r.status, READ_TIER2);
			}
		}
	}
	assert_int_equal(rc, 0);
	free(data);
}

/* Many segments and blocks: the hash grows and everything is found. */
static void test_read_cache_many_blocks(void **state)
{
	(void)state;
	struct container_fsm f;
	assert_int_equal(container_fsm_init(&f, NULL), 0);
	struct read_index ri;
	read_index_init(&ri, &f, NULL);
	uint8_t chunk[256];
	memset(chunk, 'q', sizeof(chunk));
	char name[16];
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		uint64_t s = do_create(&f, name).segment;
		struct entry_builder b;
		entry_builder_init(&b, 0);
		for (int k = 0; k < 20; k++) {
			assert_int_equal(
			        entry_builder_add_append(&b, s, uuid_n(1), k, 1,
			                                 chunk, sizeof(chunk)),
			        0);
		}
		assert_int_equal(apply_builder(&f, &b, NULL, 0), 0);
		entry_builder_close(&b);
	}
	/* Insert one small piece per (segment, 16 pieces). */
	for (uint64_t s = 1; s <= 20; s++) {
		for (uint64_t k = 0; k < 16; k++) {
			assert_int_equal(
			        read_index_insert(&ri, s, k * 256, chunk, 8),
			        0);
		}
	}
	assert_int_equal(ri.n_blocks, 20);
	read_index_close(&ri);
	container_fsm_close(&f);
}

/* Back-pressure: appends are refused once unflushed bytes would pass the
 * budget, and admitted again after a flush. */
static void test_read_admit_back_pressure(void **state)
{
	struct fixture *x = *state;
	uint64_t s = do_create(&x->f, "s").segment;
	/* Nothing unflushed: even an oversize append is admitted. */
	assert_int_equal(read_index_admit(&x->ri, 1000), 0);
	char data[81];
	memset(data, 'x', 80);
	data[80] = '\0';
	assert_int_equal(do_append(&x->f, s, 1, 0, 1, data).code, 0);
	assert_int_equal(read_index_admit(&x->ri, 20), 0);
	assert_int_equal(read_index_admit(&x->ri, 21), STRATA_EAGAIN);
	assert_int_equal(read_index_admit(&x->ri, UINT64_MAX), STRATA_EAGAIN);
	assert_int_equal(do_flush(&x->f, s, 0, 60, "c", 0).code, 0);
	assert_int_equal(read_index_admit(&x->ri, 21), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_read_tail_wait_and_end),
	        T(test_read_truncated_and_deleted),
	        T(test_read_flushed_points_to_chunk_then_cache),
	        T(test_read_after_merge),
	        T(test_read_cache_budget_and_lru),
	        T(test_read_cache_owned_insert),
	        T(test_read_cache_owned_insert_oom),
	        cmocka_unit_test(test_read_cache_many_blocks),
	        T(test_read_admit_back_pressure),
	};
#undef T
	return cmocka_run_group_tests_name("read_index", tests, NULL, NULL);
}
