/* Unit tests for segmentstore/container_fsm.c: applying container ops. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/log.h"
#include "tests/lib/oom.h"
#include "tests/unit/segmentstore/fsm_helpers.h"

static int setup(void **state)
{
	struct container_fsm *f = malloc(sizeof(*f));
	if (f == NULL || container_fsm_init(f, NULL) != 0) {
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	container_fsm_close(*state);
	free(*state);
	return 0;
}

/* Concatenated in-memory bytes of segment id, NUL-terminated (test data is
 * text); asserts the segment has no tier-2 extents. */
static char *seg_text(struct container_fsm *f, uint64_t id)
{
	const struct segment *s = container_fsm_segment(f, id);
	assert_non_null(s);
	char *out = calloc(1, (size_t)s->length + 1);
	for (size_t i = 0; i < s->n_extents; i++) {
		assert_int_equal(s->extents[i].kind, EXTENT_MEM);
		memcpy(out + s->extents[i].offset, s->extents[i].data,
		       (size_t)s->extents[i].length);
	}
	return out;
}

/* Creating assigns rising ids; a second create of a name is EEXIST. */
static void test_create_assigns_ids_and_rejects_duplicates(void **state)
{
	struct container_fsm *f = *state;
	struct container_result r = do_create(f, "sc/st/0.#epoch.0");
	assert_int_equal(r.code, 0);
	assert_int_equal(r.segment, 1);
	r = do_create(f, "sc/st/1.#epoch.0");
	assert_int_equal(r.code, 0);
	assert_int_equal(r.segment, 2);
	r = do_create(f, "sc/st/0.#epoch.0");
	assert_int_equal(r.code, STRATA_EEXIST);
	assert_int_equal(r.segment, 1);
	uint64_t id;
	assert_int_equal(container_fsm_lookup(f, "sc/st/1.#epoch.0", &id), 0);
	assert_int_equal(id, 2);
	assert_int_equal(container_fsm_lookup(f, "nope", &id), STRATA_ENOENT);
	struct container_segment_info info;
	assert_int_equal(container_fsm_segment_info(f, 1, &info), 0);
	assert_string_equal(info.name, "sc/st/0.#epoch.0");
	assert_int_equal(info.length, 0);
	assert_false(info.sealed);
	assert_int_equal(container_fsm_segment_info(f, 9, &info),
	                 STRATA_ENOENT);
}

/* The event-number rule: new writer, next, duplicate, gap, overlap. */
static void test_append_event_number_rule(void **state)
{
	struct container_fsm *f = *state;
	uint64_t s = do_create(f, "s").segment;
	/* Unknown writer: must start at event 0 (a later block that arrives
	 * first is a gap, not a new start). Nothing is written. */
	struct container_result r = do_append(f, s, 1, 10, 2, "ab");
	assert_int_equal(r.code, STRATA_EBADEVENTNUM);
	assert_int_equal(container_fsm_unflushed_bytes(f), 0);
	r = do_append(f, s, 1, 0, 11, "ab");
	assert_int_equal(r.code, 0);
	assert_false(r.dedup);
	assert_int_equal(r.offset, 0);
	assert_int_equal(r.value, 10);
	r = do_append(f, s, 1, 11, 1, "");
	assert_int_equal(r.code, 0);
	assert_int_equal(r.value, 11);
	/* first == last + 1: accepted at the next offset. */
	r = do_append(f, s, 1, 12, 3, "cde");
	assert_int_equal(r.code, 0);
	assert_int_equal(r.offset, 2);
	assert_int_equal(r.value, 14);
	/* Entirely at or below last: duplicate, acked, not written. */
	r = do_append(f, s, 1, 12, 3, "cde");
	assert_int_equal(r.code, 0);
	assert_true(r.dedup);
	assert_int_equal(r.offset, 5);
	assert_int_equal(r.value, 14);
	r = do_append(f, s, 1, 10, 1, "a");
	assert_int_equal(r.code, 0);
	assert_true(r.dedup);
	/* Gap. */
	r = do_append(f, s, 1, 16, 1, "x");
	assert_int_equal(r.code, STRATA_EBADEVENTNUM);
	assert_int_equal(r.value, 14);
	/* Partial overlap. */
	r = do_append(f, s, 1, 14, 2, "xy");
	assert_int_equal(r.code, STRATA_EBADEVENTNUM);
	char *t = seg_text(f, s);
	assert_string_equal(t, "abcde");
	free(t);
	int64_t v;
	assert_int_equal(container_fsm_get_attribute(f, s, uuid_n(1), &v), 0);
	assert_int_equal(v, 14);
	assert_int_equal(container_fsm_get_attribute(f, s, uuid_n(2), &v), 0);
	assert_true(v == CONTAINER_ATTR_NONE);
	assert_int_equal(container_fsm_unflushed_bytes(f), 5);
}

/* Writers are independent of each other and per segment. */
static void test_append_writers_and_segments_independent(void **state)
{
	struct container_fsm *f = *state;
	uint64_t a = do_create(f, "a").segment;
	uint64_t b = do_create(f, "b").segment;
	assert_int_equal(do_append(f, a, 1, 0, 1, "1").code, 0);
	assert_int_equal(do_append(f, a, 2, 0, 1, "2").code, 0);
	/* Writer 1 on segment b is a new writer there: event 0 again. */
	struct container_result r = do_append(f, b, 1, 0, 1, "3");
	assert_int_equal(r.code, 0);
	assert_false(r.dedup);
	assert_int_equal(do_append(f, a, 1, 1, 1, "4").code, 0);
	assert_true(do_append(f, a, 2, 0, 1, "2").dedup);
	char *t = seg_text(f, a);
	assert_string_equal(t, "124");
	free(t);
	t = seg_text(f, b);
	assert_string_equal(t, "3");
	free(t);
}

/* Appends to unknown, sealed segments and oversize appends fail. */
static void test_append_rejections(void **state)
{
	(void)state;
	struct container_fsm f;
	struct container_fsm_config c = {.max_append_bytes = 4};
	assert_int_equal(container_fsm_init(&f, &c), 0);
	uint64_t s = do_create(&f, "s").segment;
	assert_int_equal(do_append(&f, 77, 1, 0, 1, "a").code, STRATA_ENOENT);
	assert_int_equal(do_append(&f, s, 1, 0, 1, "abcde").code,
	                 STRATA_ETOOBIG);
	assert_int_equal(do_append(&f, s, 1, 0, 1, "abcd").code, 0);
	assert_int_equal(do_seal(&f, s).code, 0);
	assert_int_equal(do_append(&f, s, 1, 1, 1, "e").code, STRATA_ESEALED);
	/* A retry of an applied append on a sealed segment is still acked. */
	struct container_result r = do_append(&f, s, 1, 0, 1, "abcd");
	assert_int_equal(r.code, 0);
	assert_true(r.dedup);
	container_fsm_close(&f);
	c.max_append_bytes = 0;
	assert_int_equal(container_fsm_init(&f, &c), STRATA_EINVAL);
	container_fsm_close(&f);
}

/* Conditional append succeeds only at the current length. */
static void test_cond_append_expected_offset(void **state)
{
	struct container_fsm *f = *state;
	uint64_t s = do_create(f, "s").segment;
	assert_int_equal(do_cond_append(f, s, 1, 0, 0, "ab").code, 0);
	struct container_result r = do_cond_append(f, s, 1, 1, 1, "cd");
	assert_int_equal(r.code, STRATA_EBADOFFSET);
	assert_int_equal(r.offset, 2);
	r = do_cond_append(f, s, 1, 1, 2, "cd");
	assert_int_equal(r.code, 0);
	assert_int_equal(r.offset, 2);
	/* A duplicate is acked even though its expected offset is stale. */
	r = do_cond_append(f, s, 1, 1, 2, "cd");
	assert_int_equal(r.code, 0);
	assert_true(r.dedup);
	char *t = seg_text(f, s);
	assert_string_equal(t, "abcd");
	free(t);
	/* The rate counter counts the events written, not duplicates. */
	struct container_segment_info info;
	assert_int_equal(container_fsm_segment_info(f, s, &info), 0);
	assert_int_equal(info.events, 2);
}

/* Seal is idempotent and reports the final length. */
static void test_seal_idempotent(void **state)
{
	struct container_fsm *f = *state;
	uint64_t s = do_create(f, "s").segment;
	assert_int_equal(do_append(f, s, 1, 0, 1, "abc").code, 0);
	struct container_result r = do_seal(f, s);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.offset, 3);
	assert_int_equal(do_seal(f, s).code, 0);
	assert_int_equal(do_seal(f, 99).code, STRATA_ENOENT);
	struct container_segment_info info;
	assert_int_equal(container_fsm_segment_info(f, s, &info), 0);
	assert_true(info.sealed);
}

/* Truncate moves the start up to at most the length; lower is a no-op. */
static void test_truncate_moves_start_offset(void **state)
{
	struct container_fsm *f = *state;
	uint64_t s = do_create(f, "s").segment;
	assert_int_equal(do_append(f, s, 1, 0, 1, "abcdef").code, 0);
	struct container_result r = do_truncate(f, s, 4);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.offset, 4);
	r = do_truncate(f, s, 2);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.offset, 4);
	assert_int_equal(do_truncate(f, s, 7).code, STRATA_ERANGE);
	assert_int_equal(do_truncate(f, s, 6).code, 0);
	assert_int_equal(do_seal(f, s).code, 0);
	assert_int_equal(do_truncate(f, s, 6).code, 0);
	assert_int_equal(do_truncate(f, 42, 0).code, STRATA_ENOENT);
}

/* Merge appends a sealed source to the target and deletes the source. */
static void test_merge_sealed_source(void **state)
{
	struct container_fsm *f = *state;
	uint64_t t = do_create(f, "t").segment;
	uint64_t x = do_create(f, "t#transaction.1").segment;
	assert_int_equal(do_append(f, t, 1, 0, 1, "head-").code, 0);
	assert_int_equal(do_append(f, x, 2, 0, 1, "txn").code, 0);
	assert_int_equal(do_merge(f, t, x).code, STRATA_ENOTSEALED);
	assert_int_equal(do_merge(f, t, t).code, STRATA_EINVAL);
	assert_int_equal(do_merge(f, t, 99).code, STRATA_ENOENT);
	assert_int_equal(do_seal(f, x).code, 0);
	struct container_result r = do_merge(f, t, x);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.offset, 5);
	char *s = seg_text(f, t);
	assert_string_equal(s, "head-txn");
	free(s);
	uint64_t id;
	assert_int_equal(container_fsm_lookup(f, "t#transaction.1", &id),
	                 STRATA_ENOENT);
	assert_int_equal(do_merge(f, t, x).code, STRATA_ENOENT);
	assert_int_equal(container_fsm_unflushed_bytes(f), 8);
	/* Appends continue after the merged bytes. */
	r = do_append(f, t, 1, 1, 1, "!");
	assert_int_equal(r.offset, 8);
	/* A sealed target and a truncated source are refused. */
	uint64_t y = do_create(f, "y").segment;
	assert_int_equal(do_append(f, y, 1, 0, 1, "yy").code, 0);
	assert_int_equal(do_truncate(f, y, 1).code, 0);
	assert_int_equal(do_seal(f, y).code, 0);
	assert_int_equal(do_merge(f, t, y).code, STRATA_ETRUNCATED);
	assert_int_equal(do_seal(f, t).code, 0);
	assert_int_equal(do_merge(f, t, y).code, STRATA_ESEALED);
}

/* Merging a partly flushed source keeps its chunks, shifted. */
static void test_merge_moves_chunks(void **state)
{
	struct container_fsm *f = *state;
	uint64_t t = do_create(f, "t").segment;
	uint64_t x = do_create(f, "x").segment;
	assert_int_equal(do_append(f, t, 1, 0, 1, "0123").code, 0);
	assert_int_equal(do_append(f, x, 1, 0, 1, "abcdef").code, 0);
	assert_int_equal(do_flush(f, x, 0, 4, "x.c0", 0).code, 0);
	assert_int_equal(do_seal(f, x).code, 0);
	assert_int_equal(do_merge(f, t, x).code, 0);
	const struct segment *s = container_fsm_segment(f, t);
	assert_int_equal(s->length, 10);
	assert_int_equal(s->n_extents, 3);
	assert_int_equal(s->extents[1].kind, EXTENT_CHUNK);
	assert_int_equal(s->extents[1].offset, 4);
	assert_string_equal(s->extents[1].chunk, "x.c0");
	assert_int_equal(s->extents[2].offset, 8);
	assert_memory_equal(s->extents[2].data, "ef", 2);
	assert_int_equal(container_fsm_unflushed_bytes(f), 6);
	struct container_segment_info info;
	assert_int_equal(container_fsm_segment_info(f, t, &info), 0);
	assert_int_equal(info.flushed_length, 0);
	assert_int_equal(info.unflushed, 6);
}

/* Attribute update with and without compare-and-set; removal. */
static void test_attr_update_compare_and_set(void **state)
{
	struct container_fsm *f = *state;
	uint64_t s = do_create(f, "s").segment;
	/* Expect absent, set 5. */
	struct container_result r =
	        do_attr(f, s, 9, true, CONTAINER_ATTR_NONE, 5);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.value, 5);
	r = do_attr(f, s, 9, true, 4, 6);
	assert_int_equal(r.code, STRATA_ECONFLICT);
	assert_int_equal(r.value, 5);
	assert_int_equal(do_attr(f, s, 9, true, 5, 6).code, 0);
	assert_int_equal(do_attr(f, s, 9, false, 0, 7).code, 0);
	int64_t v;
	assert_int_equal(container_fsm_get_attribute(f, s, uuid_n(9), &v), 0);
	assert_int_equal(v, 7);
	/* Remove. */
	assert_int_equal(do_attr(f, s, 9, false, 0, CONTAINER_ATTR_NONE).code,
	                 0);
	assert_int_equal(container_fsm_get_attribute(f, s, uuid_n(9), &v), 0);
	assert_true(v == CONTAINER_ATTR_NONE);
	/* A writer's event number is an attribute too. */
	assert_int_equal(do_attr(f, s, 1, false, 0, 41).code, 0);
	assert_int_equal(do_append(f, s, 1, 42, 1, "z").code, 0);
	assert_int_equal(do_attr(f, 99, 1, false, 0, 1).code, STRATA_ENOENT);
	assert_int_equal(do_seal(f, s).code, 0);
	assert_int_equal(do_attr(f, s, 9, false, 0, 1).code, STRATA_ESEALED);
}

/* Many attributes survive table growth and removals. */
static void test_attr_many_keys(void **state)
{
	struct container_fsm *f = *state;
	uint64_t s = do_create(f, "s").segment;
	for (int k = 0; k < 200; k++) {
		assert_int_equal(do_attr(f, s, (uint8_t)k, false, 0, k).code,
		                 0);
	}
	for (int k = 0; k < 200; k += 2) {
		assert_int_equal(
		        do_attr(f, s, (uint8_t)k, false, 0, CONTAINER_ATTR_NONE)
		                .code,
		        0);
	}
	for (int k = 0; k < 200; k++) {
		int64_t v;
		assert_int_equal(container_fsm_get_attribute(
		                         f, s, uuid_n((uint8_t)k), &v),
		                 0);
		if (k % 2 == 0) {
			assert_true(v == CONTAINER_ATTR_NONE);
		} else {
			assert_int_equal(v, k);
		}
	}
}

/* Delete frees the tail and queues the segment's chunks as garbage. */
static void test_delete_and_chunk_garbage(void **state)
{
	struct container_fsm *f = *state;
	uint64_t s = do_create(f, "s").segment;
	assert_int_equal(do_append(f, s, 1, 0, 1, "abcdef").code, 0);
	assert_int_equal(do_flush(f, s, 0, 2, "c1", 0).code, 0);
	assert_int_equal(do_flush(f, s, 2, 2, "c2", 0).code, 0);
	struct container_result r = do_delete(f, s);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.offset, 6);
	assert_int_equal(container_fsm_unflushed_bytes(f), 0);
	assert_int_equal(container_fsm_garbage_count(f), 2);
	assert_string_equal(container_fsm_garbage(f, 0), "c1");
	assert_string_equal(container_fsm_garbage(f, 1), "c2");
	assert_null(container_fsm_garbage(f, 2));
	assert_int_equal(do_delete(f, s).code, STRATA_ENOENT);
	assert_int_equal(do_append(f, s, 1, 1, 1, "x").code, STRATA_ENOENT);
	/* The name can be created again, with a new id. */
	r = do_create(f, "s");
	assert_int_equal(r.code, 0);
	assert_true(r.segment != s);
	/* CHUNK_DELETED names the chunk: an unknown name (e.g. a late
	 * commit of an older owner) changes nothing. */
	assert_int_equal(do_chunk_deleted(f, "c9").code, STRATA_ENOENT);
	assert_int_equal(container_fsm_garbage_count(f), 2);
	r = do_chunk_deleted(f, "c2");
	assert_int_equal(r.code, 0);
	assert_int_equal(r.offset, 1);
	assert_string_equal(container_fsm_garbage(f, 0), "c1");
	assert_int_equal(do_chunk_deleted(f, "c2").code, STRATA_ENOENT);
	r = do_chunk_deleted(f, "c1");
	assert_int_equal(r.code, 0);
	assert_int_equal(r.offset, 0);
}

/* Chunk GC: a truncation queues the chunks holding only bytes before the
 * new start as garbage and marks their extents GONE; a chunk that holds
 * later bytes too, and the segment's last chunk (the writer may append to
 * it), stay; they go at a later truncation or flush. A snapshot keeps the
 * GONE extents. */
static void test_truncate_collects_chunks(void **state)
{
	struct container_fsm *f = *state;
	uint64_t s = do_create(f, "s").segment;
	assert_int_equal(do_append(f, s, 1, 0, 1, "abcdefghij").code, 0);
	assert_int_equal(do_flush(f, s, 0, 3, "c1", 0).code, 0);
	assert_int_equal(do_flush(f, s, 3, 3, "c2", 0).code, 0);
	assert_int_equal(do_flush(f, s, 6, 2, "c3", 0).code, 0);
	assert_int_equal(do_truncate(f, s, 5).code, 0); /* c2 holds 5 */
	assert_int_equal(container_fsm_garbage_count(f), 1);
	assert_string_equal(container_fsm_garbage(f, 0), "c1");
	const struct segment *seg = container_fsm_segment(f, s);
	assert_int_equal(seg->extents[0].kind, EXTENT_GONE);
	assert_null(seg->extents[0].chunk);
	assert_int_equal(do_truncate(f, s, 8).code, 0); /* c3: the last */
	assert_int_equal(container_fsm_garbage_count(f), 2);
	assert_string_equal(container_fsm_garbage(f, 1), "c2");
	/* The snapshot round trip keeps GONE extents; reads before the
	 * start stay refused. */
	size_t len;
	uint8_t *snap = fingerprint(f, &len);
	assert_non_null(snap);
	struct container_fsm g;
	assert_int_equal(container_fsm_init(&g, NULL), 0);
	assert_int_equal(container_fsm_restore(&g, snap, len), 0);
	assert_true(same_state(&g, snap, len));
	container_fsm_close(&g);
	strata_free(snap);
	/* A later chunk: c3 is no longer the last, so it goes, at the
	 * flush that follows the truncation. */
	assert_int_equal(do_flush(f, s, 8, 2, "c4", 0).code, 0);
	assert_int_equal(container_fsm_garbage_count(f), 2);
	assert_int_equal(do_truncate(f, s, 10).code, 0);
	assert_int_equal(container_fsm_garbage_count(f), 3);
	assert_string_equal(container_fsm_garbage(f, 2), "c3");
	/* Deleting the segment queues only the chunks still referenced. */
	assert_int_equal(do_delete(f, s).code, 0);
	assert_int_equal(container_fsm_garbage_count(f), 4);
	assert_string_equal(container_fsm_garbage(f, 3), "c4");

	/* After a merge a chunk continues past the source's chunk: the
	 * source's chunk goes, the continued one stays. */
	uint64_t t = do_create(f, "t").segment;
	uint64_t src = do_create(f, "src").segment;
	assert_int_equal(do_append(f, t, 1, 0, 1, "aa").code, 0);
	assert_int_equal(do_flush(f, t, 0, 2, "A", 0).code, 0);
	assert_int_equal(do_append(f, src, 2, 0, 1, "bb").code, 0);
	assert_int_equal(do_flush(f, src, 0, 2, "B", 0).code, 0);
	assert_int_equal(do_seal(f, src).code, 0);
	assert_int_equal(do_merge(f, t, src).code, 0);
	assert_int_equal(do_append(f, t, 1, 1, 1, "cc").code, 0);
	assert_int_equal(do_flush(f, t, 4, 2, "A", 2).code, 0);
	assert_int_equal(do_truncate(f, t, 4).code, 0);
	assert_int_equal(container_fsm_garbage_count(f), 5);
	assert_string_equal(container_fsm_garbage(f, 4), "B");
}

/* Flush converts unflushed bytes to chunk extents, coalescing. */
static void test_flush_bookkeeping(void **state)
{
	struct container_fsm *f = *state;
	uint64_t s = do_create(f, "s").segment;
	assert_int_equal(do_append(f, s, 1, 0, 1, "abcdefgh").code, 0);
	struct container_result r = do_flush(f, s, 0, 3, "c", 0);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.offset, 3);
	r = do_flush(f, s, 3, 2, "c", 3);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.offset, 5);
	const struct segment *seg = container_fsm_segment(f, s);
	assert_int_equal(seg->n_extents, 2);
	assert_int_equal(seg->extents[0].length, 5);
	assert_memory_equal(seg->extents[1].data, "fgh", 3);
	assert_int_equal(container_fsm_unflushed_bytes(f), 3);
	/* Already flushed, beyond the end, unknown segment. */
	assert_int_equal(do_flush(f, s, 4, 2, "d", 0).code, STRATA_ERANGE);
	assert_int_equal(do_flush(f, s, 6, 3, "d", 0).code, STRATA_ERANGE);
	assert_int_equal(do_flush(f, 99, 0, 1, "d", 0).code, STRATA_ENOENT);
	assert_int_equal(do_flush(f, s, 5, 3, "d", 0).code, 0);
	assert_int_equal(container_fsm_unflushed_bytes(f), 0);
	struct container_segment_info info;
	assert_int_equal(container_fsm_segment_info(f, s, &info), 0);
	assert_int_equal(info.flushed_length, 8);
}

/* One entry carries many ops; each gets its own result, in order. */
static void test_apply_batch_results_per_op(void **state)
{
	struct container_fsm *f = *state;
	struct entry_builder b;
	entry_builder_init(&b, 0);
	assert_int_equal(entry_builder_add_create(&b, "s"), 0);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(entry_builder_add_append(&b, 1, uuid_n(1), i,
		                                          1, "0123456789", 10),
		                 0);
	}
	assert_int_equal(
	        entry_builder_add_append(&b, 1, uuid_n(1), 50, 1, "dup", 3), 0);
	assert_int_equal(
	        entry_builder_add_append(&b, 2, uuid_n(1), 0, 1, "none", 4), 0);
	struct container_result res[103];
	assert_int_equal(apply_builder(f, &b, res, 102), STRATA_EINVAL);
	assert_int_equal(container_fsm_lookup(f, "s", &(uint64_t){0}),
	                 STRATA_ENOENT);
	assert_int_equal(entry_builder_add_create(&b, "s"), 0);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(entry_builder_add_append(&b, 1, uuid_n(1), i,
		                                          1, "0123456789", 10),
		                 0);
	}
	assert_int_equal(
	        entry_builder_add_append(&b, 1, uuid_n(1), 50, 1, "dup", 3), 0);
	assert_int_equal(
	        entry_builder_add_append(&b, 2, uuid_n(1), 0, 1, "none", 4), 0);
	assert_int_equal(apply_builder(f, &b, res, 103), 0);
	assert_int_equal(res[0].code, 0);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(res[1 + i].code, 0);
		assert_int_equal(res[1 + i].offset, 10 * i);
	}
	assert_true(res[101].dedup);
	assert_int_equal(res[102].code, STRATA_ENOENT);
	/* Room for exactly the ops applies; NULL results too. */
	assert_int_equal(entry_builder_add_seal(&b, 1), 0);
	assert_int_equal(apply_builder(f, &b, NULL, 0), 0);
	struct container_segment_info info;
	assert_int_equal(container_fsm_segment_info(f, 1, &info), 0);
	assert_int_equal(info.length, 1000);
	assert_true(info.sealed);
	entry_builder_close(&b);
}

/* Every rejected op leaves the state byte-for-byte identical. */
static void test_rejected_ops_leave_state_identical(void **state)
{
	struct container_fsm *f = *state;
	uint64_t s = do_create(f, "s").segment;
	uint64_t o = do_create(f, "open").segment;
	assert_int_equal(do_append(f, s, 1, 0, 6, "abcdef").code, 0);
	assert_int_equal(do_flush(f, s, 0, 2, "c", 0).code, 0);
	assert_int_equal(do_attr(f, s, 7, false, 0, 3).code, 0);
	assert_int_equal(do_seal(f, s).code, 0);
	size_t len;
	uint8_t *before = fingerprint(f, &len);
	assert_non_null(before);
	struct container_result r[] = {
	        do_create(f, "s"),
	        do_append(f, s, 1, 7, 1, "gap"),
	        do_append(f, s, 1, 6, 1, "sealed"),
	        do_append(f, s, 1, 5, 1, "dup"),
	        do_append(f, 99, 1, 0, 1, "none"),
	        do_cond_append(f, o, 1, 0, 3, "bad offset"),
	        do_truncate(f, s, 7),
	        do_merge(f, s, o),
	        do_merge(f, o, o),
	        do_attr(f, s, 7, true, 2, 4),
	        do_attr(f, o, 7, true, 2, 4),
	        do_flush(f, s, 0, 1, "d", 0),
	        do_flush(f, s, 5, 2, "d", 0),
	        do_chunk_deleted(f, "no-such-chunk"),
	        do_delete(f, 1234),
	};
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		assert_true(r[i].code > 0 || r[i].dedup);
	}
	assert_true(same_state(f, before, len));
	/* A malformed entry changes nothing either. */
	uint8_t junk[64];
	memset(junk, 0x5A, sizeof(junk));
	assert_int_equal(container_fsm_apply(f, junk, sizeof(junk), NULL, 0),
	                 STRATA_EPROTO);
	assert_true(same_state(f, before, len));
	strata_free(before);
}

/* Mutated valid entries: rejected ones change nothing, none crash. */
static void test_apply_mutated_entries(void **state)
{
	struct container_fsm *f = *state;
	unsigned seed = 4242;
	const char *env = getenv("STRATA_SEED");
	if (env != NULL) {
		seed = (unsigned)strtoul(env, NULL, 10);
	}
	printf("test_apply_mutated_entries: seed %u\n", seed);
	srand(seed);
	struct entry_builder b;
	entry_builder_init(&b, 0);
	assert_int_equal(entry_builder_add_create(&b, "m"), 0);
	assert_int_equal(
	        entry_builder_add_append(&b, 1, uuid_n(1), 0, 1, "abcdef", 6),
	        0);
	assert_int_equal(entry_builder_add_flush(&b, 1, 0, 3, "c", 0), 0);
	assert_int_equal(entry_builder_add_attr_update(&b, 1, uuid_n(2), true,
	                                               CONTAINER_ATTR_NONE, 1),
	                 0);
	const uint8_t *e;
	size_t len;
	assert_int_equal(entry_builder_finish(&b, &e, &len), 0);
	uint8_t *copy = malloc(len);
	struct container_result res[8];
	for (int iter = 0; iter < 5000; iter++) {
		memcpy(copy, e, len);
		copy[(size_t)rand() % len] ^= (uint8_t)(1 + rand() % 255);
		size_t n = rand() % 4 == 0 ? (size_t)rand() % len : len;
		size_t fl;
		uint8_t *before = fingerprint(f, &fl);
		assert_non_null(before);
		assert_int_equal(container_fsm_apply(f, copy, n, res, 8),
		                 STRATA_EPROTO);
		assert_true(same_state(f, before, fl));
		strata_free(before);
	}
	free(copy);
	entry_builder_close(&b);
}

/* Out of memory at any allocation inside an op leaves the state intact. */
static void test_apply_oom_changes_nothing(void **state)
{
	(void)state;
	bool succeeded = false;
	int level = log_get_level();
	log_set_level(STRATA_LOG_ERROR + 1); /* the ENOMEM lines are expected */
	for (long n = 1; n < 100 && !succeeded; n++) {
		struct container_fsm f;
		assert_int_equal(container_fsm_init(&f, NULL), 0);
		uint64_t s = do_create(&f, "s").segment;
		uint64_t x = do_create(&f, "x").segment;
		assert_int_equal(do_append(&f, x, 1, 0, 1, "xx").code, 0);
		assert_int_equal(do_flush(&f, x, 0, 1, "xc", 0).code, 0);
		assert_int_equal(do_seal(&f, x).code, 0);
		struct entry_builder b;
		entry_builder_init(&b, 0);
		assert_int_equal(entry_builder_add_create(&b, "new"), 0);
		assert_int_equal(entry_builder_add_append(&b, s, uuid_n(1), 0,
		                                          1, "abcd", 4),
		                 0);
		assert_int_equal(entry_builder_add_attr_update(&b, s, uuid_n(3),
		                                               false, 0, 9),
		                 0);
		assert_int_equal(entry_builder_add_flush(&b, s, 1, 2, "sc", 0),
		                 0);
		assert_int_equal(entry_builder_add_merge(&b, s, x), 0);
		assert_int_equal(entry_builder_add_delete(&b, s), 0);
		const uint8_t *e;
		size_t len;
		assert_int_equal(entry_builder_finish(&b, &e, &len), 0);
		struct container_result res[6];
		oom_install(n);
		int rc = container_fsm_apply(&f, e, len, res, 6);
		oom_uninstall();
		if (rc == 0) {
			succeeded = true;
			container_fsm_close(&f);
			entry_builder_close(&b);
			continue;
		}
		assert_int_equal(rc, STRATA_ENOMEM);
		/* Replay the applied prefix on a fresh container: same state.
		 * The failed op changed nothing. */
		size_t done = 0;
		while (res[done].code != STRATA_ENOMEM) {
			done++;
		}
		struct container_fsm g;
		assert_int_equal(container_fsm_init(&g, NULL), 0);
		assert_int_equal(do_create(&g, "s").segment, s);
		assert_int_equal(do_create(&g, "x").segment, x);
		assert_int_equal(do_append(&g, x, 1, 0, 1, "xx").code, 0);
		assert_int_equal(do_flush(&g, x, 0, 1, "xc", 0).code, 0);
		assert_int_equal(do_seal(&g, x).code, 0);
		struct entry_reader r;
		struct entry_op op;
		assert_int_equal(entry_reader_init(&r, e, len), 0);
		struct entry_builder p;
		entry_builder_init(&p, 0);
		for (size_t i = 0; i < done && entry_reader_next(&r, &op);
		     i++) {
			switch (op.type) {
			case ENTRY_OP_CREATE:
				entry_builder_add_create(&p, "new");
				break;
			case ENTRY_OP_APPEND:
				entry_builder_add_append(&p, s, uuid_n(1), 0, 1,
				                         "abcd", 4);
				break;
			case ENTRY_OP_ATTR_UPDATE:
				entry_builder_add_attr_update(&p, s, uuid_n(3),
				                              false, 0, 9);
				break;
			case ENTRY_OP_FLUSH:
				entry_builder_add_flush(&p, s, 1, 2, "sc", 0);
				break;
			case ENTRY_OP_MERGE:
				entry_builder_add_merge(&p, s, x);
				break;
			default:
				fail();
			}
		}
		assert_int_equal(apply_builder(&g, &p, NULL, 0), 0);
		size_t gl;
		uint8_t *gs = fingerprint(&g, &gl);
		assert_non_null(gs);
		assert_true(same_state(&f, gs, gl));
		strata_free(gs);
		entry_builder_close(&p);
		container_fsm_close(&g);
		container_fsm_close(&f);
		entry_builder_close(&b);
	}
	log_set_level(level);
	assert_true(succeeded);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_create_assigns_ids_and_rejects_duplicates),
	        T(test_append_event_number_rule),
	        T(test_append_writers_and_segments_independent),
	        cmocka_unit_test(test_append_rejections),
	        T(test_cond_append_expected_offset),
	        T(test_seal_idempotent),
	        T(test_truncate_moves_start_offset),
	        T(test_merge_sealed_source),
	        T(test_merge_moves_chunks),
	        T(test_attr_update_compare_and_set),
	        T(test_attr_many_keys),
	        T(test_delete_and_chunk_garbage),
	        T(test_truncate_collects_chunks),
	        T(test_flush_bookkeeping),
	        T(test_apply_batch_results_per_op),
	        T(test_rejected_ops_leave_state_identical),
	        T(test_apply_mutated_entries),
	        cmocka_unit_test(test_apply_oom_changes_nothing),
	};
#undef T
	return cmocka_run_group_tests_name("container_fsm", tests, NULL, NULL);
}
