/* Unit tests for segmentstore/segment.c: extents, attributes, table. */
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
#include "segmentstore/segment.h"
#include "strata/error.h"
#include "tests/lib/oom.h"

/* Check extents cover [0, length) in order and MEM bytes match ref. */
static void check_layout(const struct segment *s, const uint8_t *ref)
{
	uint64_t off = 0;
	uint64_t mem = 0;
	for (size_t i = 0; i < s->n_extents; i++) {
		const struct extent *e = &s->extents[i];
		assert_int_equal(e->offset, off);
		assert_true(e->length > 0);
		if (e->kind == EXTENT_MEM) {
			assert_memory_equal(e->data, ref + off, e->length);
			mem += e->length;
		}
		off += e->length;
	}
	assert_int_equal(off, s->length);
	assert_int_equal(mem, s->unflushed);
}

/* n reference bytes, byte i = i * mul + add (free() it). */
static uint8_t *pattern(size_t n, unsigned mul, unsigned add)
{
	uint8_t *p = malloc(n);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		p[i] = (uint8_t)(i * mul + add);
	}
	return p;
}

/* Appends fill extents up to SEGMENT_MEM_EXTENT_MAX, then start new ones;
 * find_extent locates every offset. */
static void test_segment_append_and_find(void **state)
{
	(void)state;
	struct segment *s = segment_new(1, "seg", 3);
	size_t total = 3 * SEGMENT_MEM_EXTENT_MAX + 12345;
	uint8_t *ref = pattern(total, 31, 1);
	size_t off = 0;
	while (off < total) {
		size_t n = 1000 + off % 5000;
		n = n > total - off ? total - off : n;
		assert_int_equal(segment_append(s, ref + off, n), 0);
		off += n;
	}
	assert_int_equal(s->length, total);
	assert_true(s->n_extents >= 4);
	check_layout(s, ref);
	for (size_t probe = 0; probe < total; probe += 4099) {
		size_t i = segment_find_extent(s, probe);
		assert_true(s->extents[i].offset <= probe);
		assert_true(probe <
		            s->extents[i].offset + s->extents[i].length);
	}
	assert_int_equal(segment_find_extent(s, total), s->n_extents);
	assert_int_equal(segment_flushed_length(s), 0);
	assert_int_equal(segment_append(s, NULL, 0), 0);
	free(ref);
	segment_free(s);
}

/* A cold segment's first extent starts small; once one extent filled up,
 * the segment's next extents are allocated at full size (no regrowth),
 * also after its full extents were flushed; an extent flushed at under a
 * quarter full makes it cold again. */
static void test_segment_hot_extents_start_full(void **state)
{
	(void)state;
	struct segment *s = segment_new(1, "seg", 3);
	uint8_t ev[1000];
	memset(ev, 'e', sizeof(ev));
	assert_int_equal(segment_append(s, ev, sizeof(ev)), 0);
	assert_false(s->hot);
	assert_true(s->extents[0].cap < SEGMENT_MEM_EXTENT_MAX);
	while (s->n_extents < 2) {
		assert_int_equal(segment_append(s, ev, sizeof(ev)), 0);
	}
	assert_true(s->hot);
	assert_int_equal(s->extents[1].cap, SEGMENT_MEM_EXTENT_MAX);
	assert_int_equal(s->extents[1].length, sizeof(ev));
	/* More extents than the array's first allocation holds (it moves). */
	while (s->n_extents < 9) {
		assert_int_equal(segment_append(s, ev, sizeof(ev)), 0);
	}
	for (size_t i = 1; i < s->n_extents; i++) {
		assert_int_equal(s->extents[i].cap, SEGMENT_MEM_EXTENT_MAX);
	}
	/* Flushing the full extents keeps it hot. */
	uint64_t full = s->extents[8].offset;
	assert_int_equal(segment_flush(s, 0, full, "c", 1, 0), 0);
	assert_true(s->hot);
	while (s->extents[s->n_extents - 1].offset == full) {
		assert_int_equal(segment_append(s, ev, sizeof(ev)), 0);
	}
	assert_int_equal(s->extents[s->n_extents - 1].cap,
	                 SEGMENT_MEM_EXTENT_MAX);
	/* Flushing an extent that held only a few events cools it. */
	uint64_t flushed = segment_flushed_length(s);
	assert_int_equal(
	        segment_flush(s, flushed, s->length - flushed, "c", 1, flushed),
	        0);
	assert_false(s->hot);
	assert_int_equal(segment_append(s, ev, 10), 0);
	assert_int_equal(s->extents[s->n_extents - 1].kind, EXTENT_MEM);
	assert_true(s->extents[s->n_extents - 1].cap < SEGMENT_MEM_EXTENT_MAX);
	segment_free(s);

	/* The first overflow of a cold segment whose extent array is full
	 * (three chunks and one extent in memory): the array moves. */
	s = segment_new(2, "seg", 3);
	const char *chunks[] = {"c1", "c2", "c3"};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(segment_append(s, ev, 10), 0);
		assert_int_equal(
		        segment_flush(s, s->length - 10, 10, chunks[i], 2, 0),
		        0);
	}
	assert_int_equal(segment_append(s, ev, sizeof(ev)), 0);
	assert_int_equal(s->n_extents, 4);
	assert_false(s->hot);
	while (s->n_extents < 5) {
		assert_int_equal(segment_append(s, ev, sizeof(ev)), 0);
	}
	assert_true(s->hot);
	assert_int_equal(s->extents[4].cap, SEGMENT_MEM_EXTENT_MAX);
	segment_free(s);
}

/* Flushing the head of an extent keeps its tail in place (no copy): the
 * extent's data moves past the flushed bytes, appends fill the rest of
 * its allocation and then start a new extent; the allocation is freed
 * once the tail is flushed too (ASan checks the free), and a hot segment
 * stays hot when its extent was used in full over two flushes. */
static void test_segment_flush_head_keeps_tail_in_place(void **state)
{
	(void)state;
	struct segment *s = segment_new(1, "seg", 3);
	size_t total = 2 * SEGMENT_MEM_EXTENT_MAX + 4096;
	uint8_t *ref = pattern(total, 7, 3);
	size_t off = 0;
	while (s->n_extents < 2) { /* hot: the second extent is full size */
		assert_int_equal(segment_append(s, ref + off, 1000), 0);
		off += 1000;
	}
	assert_true(s->hot);
	struct extent *e = &s->extents[1];
	uint64_t start = e->offset;
	const uint8_t *before = e->data;
	/* Flush everything up to 600 bytes into the second extent. */
	assert_int_equal(segment_flush(s, 0, start + 600, "c", 1, 0), 0);
	assert_int_equal(s->n_extents, 2);
	e = &s->extents[1];
	assert_int_equal(e->kind, EXTENT_MEM);
	assert_int_equal(e->skip, 600);
	assert_ptr_equal(e->data, before + 600);
	assert_int_equal(e->offset, start + 600);
	check_layout(s, ref);
	/* Appends fill the allocation up to its end, then a new extent. */
	while (s->n_extents < 3) {
		assert_int_equal(segment_append(s, ref + off, 1000), 0);
		off += 1000;
	}
	e = &s->extents[1];
	assert_true(e->skip + e->length <= SEGMENT_MEM_EXTENT_MAX);
	assert_true(e->skip + e->length + 1000 > SEGMENT_MEM_EXTENT_MAX);
	assert_int_equal(s->extents[2].cap, SEGMENT_MEM_EXTENT_MAX);
	check_layout(s, ref);
	/* Flush the rest of the second extent: freed, still hot. */
	uint64_t end1 = e->offset + e->length;
	assert_int_equal(segment_flush(s, start + 600, end1 - start - 600, "c",
	                               1, start + 600),
	                 0);
	assert_true(s->hot);
	check_layout(s, ref);
	assert_int_equal(s->unflushed, s->length - end1);
	/* A head flush of a cold segment's small extent that grows after. */
	struct segment *c = segment_new(2, "cold", 4);
	assert_int_equal(segment_append(c, ref, 100), 0);
	assert_int_equal(segment_flush(c, 0, 60, "c", 1, 0), 0);
	assert_int_equal(c->extents[1].skip, 60);
	assert_int_equal(segment_append(c, ref + 100, 3000), 0);
	assert_int_equal(c->extents[1].skip, 60);
	assert_true(c->extents[1].cap >= 3100);
	check_layout(c, ref);
	segment_free(c);
	free(ref);
	segment_free(s);
}

/* Flush of a middle range splits an extent into head, chunk, tail; flush
 * across extents; contiguous flushes into one chunk coalesce. */
static void test_segment_flush_splits_and_coalesces(void **state)
{
	(void)state;
	struct segment *s = segment_new(1, "seg", 3);
	const uint8_t *ref = (const uint8_t *)"0123456789abcdefghij";
	assert_int_equal(segment_append(s, ref, 10), 0);
	assert_int_equal(segment_flush(s, 3, 4, "m", 1, 0), 0);
	assert_int_equal(s->n_extents, 3);
	check_layout(s, ref);
	assert_int_equal(segment_flushed_length(s), 0);
	assert_int_equal(segment_flush(s, 0, 3, "h", 1, 0), 0);
	assert_int_equal(segment_flushed_length(s), 7);
	/* Overlapping a flushed range. */
	assert_int_equal(segment_flush(s, 6, 2, "x", 1, 0), STRATA_ERANGE);
	assert_int_equal(segment_flush(s, 9, 2, "x", 1, 0), STRATA_ERANGE);
	assert_int_equal(segment_flush(s, 10, 1, "x", 1, 0), STRATA_ERANGE);
	assert_int_equal(segment_flush(s, 7, 0, "x", 1, 0), STRATA_ERANGE);
	/* A new extent after a chunk, then a flush spanning two extents. */
	struct segment *big = segment_new(2, "big", 3);
	uint8_t *data = malloc(SEGMENT_MEM_EXTENT_MAX + 10);
	memset(data, 'z', SEGMENT_MEM_EXTENT_MAX + 10);
	assert_int_equal(segment_append(big, data, SEGMENT_MEM_EXTENT_MAX - 5),
	                 0);
	assert_int_equal(segment_append(big, data, 15), 0);
	assert_int_equal(big->n_extents, 2);
	assert_int_equal(
	        segment_flush(big, 2, SEGMENT_MEM_EXTENT_MAX, "c", 1, 0), 0);
	check_layout(big, data);
	assert_int_equal(big->n_extents, 3);
	assert_int_equal(big->unflushed, 10);
	/* Contiguous flush into the same chunk extends the extent. */
	assert_int_equal(segment_flush(big, SEGMENT_MEM_EXTENT_MAX + 2, 3, "c",
	                               1, SEGMENT_MEM_EXTENT_MAX),
	                 0);
	assert_int_equal(big->n_extents, 3);
	assert_int_equal(big->extents[1].length, SEGMENT_MEM_EXTENT_MAX + 3);
	/* Same chunk, not contiguous in the chunk: a new extent. */
	assert_int_equal(
	        segment_flush(big, SEGMENT_MEM_EXTENT_MAX + 5, 1, "c", 1, 0),
	        0);
	assert_int_equal(big->n_extents, 4);
	check_layout(big, data);
	free(data);
	segment_free(big);
	segment_free(s);
}

/* Out of memory in flush and append leaves the segment unchanged. */
static void test_segment_oom_atomic(void **state)
{
	(void)state;
	const uint8_t *ref = (const uint8_t *)"0123456789";
	for (long n = 1; n < 10; n++) {
		struct segment *s = segment_new(1, "seg", 3);
		assert_int_equal(segment_append(s, ref, 10), 0);
		oom_install(n);
		int rc = segment_flush(s, 3, 4, "chunk", 5, 0);
		oom_uninstall();
		if (rc != 0) {
			assert_int_equal(rc, STRATA_ENOMEM);
			assert_int_equal(s->n_extents, 1);
			assert_int_equal(s->unflushed, 10);
		}
		check_layout(s, ref);
		segment_free(s);
	}
	struct segment *s = segment_new(1, "seg", 3);
	oom_install(1);
	assert_int_equal(segment_append(s, ref, 10), STRATA_ENOMEM);
	oom_uninstall();
	assert_int_equal(s->length, 0);
	assert_int_equal(s->n_extents, 0);
	segment_free(s);
}

/* Merge moves extents with shifted offsets and empties the source. */
static void test_segment_merge_extents(void **state)
{
	(void)state;
	struct segment *a = segment_new(1, "a", 1);
	struct segment *b = segment_new(2, "b", 1);
	assert_int_equal(segment_append(a, (const uint8_t *)"abc", 3), 0);
	assert_int_equal(segment_append(b, (const uint8_t *)"defg", 4), 0);
	assert_int_equal(segment_flush(b, 0, 1, "b0", 2, 0), 0);
	assert_int_equal(segment_merge_extents(a, b), 0);
	assert_int_equal(a->length, 7);
	assert_int_equal(a->unflushed, 6);
	assert_int_equal(b->length, 0);
	assert_int_equal(b->n_extents, 0);
	check_layout(a, (const uint8_t *)"abcdefg");
	assert_int_equal(a->extents[1].kind, EXTENT_CHUNK);
	assert_int_equal(a->extents[1].offset, 3);
	segment_free(a);
	segment_free(b);
}

/* Attributes: set, overwrite, remove with probe chains kept intact. */
static void test_segment_attributes(void **state)
{
	(void)state;
	struct segment *s = segment_new(1, "a", 1);
	uint8_t key[SEGMENT_UUID_SIZE] = {0};
	assert_true(segment_attr_get(s, key) == SEGMENT_ATTR_NONE);
	segment_attr_set(s, key, SEGMENT_ATTR_NONE); /* no-op when empty */
	for (int i = 0; i < 1000; i++) {
		memcpy(key, &i, sizeof(i));
		assert_int_equal(segment_attr_reserve(s, 1), 0);
		segment_attr_set(s, key, i * 3);
	}
	assert_int_equal(s->n_attrs, 1000);
	for (int i = 0; i < 1000; i += 3) {
		memcpy(key, &i, sizeof(i));
		segment_attr_set(s, key, SEGMENT_ATTR_NONE);
	}
	for (int i = 0; i < 1000; i++) {
		memcpy(key, &i, sizeof(i));
		int64_t v = segment_attr_get(s, key);
		if (i % 3 == 0) {
			assert_true(v == SEGMENT_ATTR_NONE);
		} else {
			assert_int_equal(v, i * 3);
		}
	}
	segment_free(s);
}

/* The table finds segments by id and name through growth and removal. */
static void test_segment_table_many(void **state)
{
	(void)state;
	struct segment_table t;
	segment_table_init(&t);
	char name[32];
	for (uint64_t id = 1; id <= 500; id++) {
		snprintf(name, sizeof(name), "scope/stream/%llu",
		         (unsigned long long)id);
		assert_int_equal(segment_table_reserve(&t), 0);
		segment_table_insert(&t,
		                     segment_new(id * 7, name, strlen(name)));
	}
	for (uint64_t id = 1; id <= 500; id += 2) {
		struct segment *s = segment_table_find_id(&t, id * 7);
		assert_non_null(s);
		segment_table_remove(&t, s);
		segment_free(s);
	}
	assert_int_equal(t.count, 250);
	for (uint64_t id = 1; id <= 500; id++) {
		snprintf(name, sizeof(name), "scope/stream/%llu",
		         (unsigned long long)id);
		struct segment *s =
		        segment_table_find_name(&t, name, strlen(name));
		if (id % 2 == 1) {
			assert_null(s);
			assert_null(segment_table_find_id(&t, id * 7));
		} else {
			assert_non_null(s);
			assert_int_equal(s->id, id * 7);
			assert_ptr_equal(segment_table_find_id(&t, id * 7), s);
		}
	}
	struct segment **arr;
	size_t n;
	assert_int_equal(segment_table_sorted(&t, &arr, &n), 0);
	assert_int_equal(n, 250);
	for (size_t i = 1; i < n; i++) {
		assert_true(arr[i - 1]->id < arr[i]->id);
	}
	strata_free(arr);
	/* A name prefix is not a match. */
	assert_null(segment_table_find_name(&t, "scope/stream/1", 13));
	segment_table_close(&t);
	assert_null(segment_table_find_id(&t, 14));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_segment_append_and_find),
	        cmocka_unit_test(test_segment_hot_extents_start_full),
	        cmocka_unit_test(test_segment_flush_head_keeps_tail_in_place),
	        cmocka_unit_test(test_segment_flush_splits_and_coalesces),
	        cmocka_unit_test(test_segment_oom_atomic),
	        cmocka_unit_test(test_segment_merge_extents),
	        cmocka_unit_test(test_segment_attributes),
	        cmocka_unit_test(test_segment_table_many),
	};
	return cmocka_run_group_tests_name("segment", tests, NULL, NULL);
}
