/* Unit tests for segmentstore/entry.c: the container log entry codec. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "segmentstore/entry.h"
#include "strata/error.h"

static const uint8_t writer[ENTRY_UUID_SIZE] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                9, 10, 11, 12, 13, 14, 15, 16};

/* Every op type survives a build/read round trip with all its fields. */
static void test_entry_round_trip_all_types(void **state)
{
	(void)state;
	struct entry_builder b;
	entry_builder_init(&b, 0);
	assert_int_equal(entry_builder_add_create(&b, "s/t/0.#epoch.0"), 0);
	assert_int_equal(
	        entry_builder_add_append(&b, 7, writer, 10, 3, "abc", 3), 0);
	assert_int_equal(
	        entry_builder_add_cond_append(&b, 7, writer, 13, 1, 99, "d", 1),
	        0);
	assert_int_equal(entry_builder_add_seal(&b, 8), 0);
	assert_int_equal(entry_builder_add_truncate(&b, 9, 1234), 0);
	assert_int_equal(entry_builder_add_merge(&b, 10, 11), 0);
	assert_int_equal(entry_builder_add_attr_update(&b, 12, writer, true, -5,
	                                               INT64_MIN),
	                 0);
	assert_int_equal(entry_builder_add_delete(&b, 13), 0);
	assert_int_equal(entry_builder_add_flush(&b, 14, 100, 50, "chunk-a", 7),
	                 0);
	assert_int_equal(entry_builder_add_chunk_deleted(&b, "chunk-b"), 0);
	assert_int_equal(entry_builder_add_owner(&b, 3, 17), 0);
	assert_int_equal(entry_builder_count(&b), 11);
	const uint8_t *e;
	size_t len;
	assert_int_equal(entry_builder_finish(&b, &e, &len), 0);
	assert_int_equal(len, entry_builder_size(&b));

	struct entry_reader r;
	struct entry_op op;
	assert_int_equal(entry_reader_init(&r, e, len), 0);
	assert_int_equal(r.count, 11);
	assert_true(entry_reader_next(&r, &op));
	assert_int_equal(op.type, ENTRY_OP_CREATE);
	assert_int_equal(op.name_len, strlen("s/t/0.#epoch.0"));
	assert_memory_equal(op.name, "s/t/0.#epoch.0", op.name_len);
	assert_true(entry_reader_next(&r, &op));
	assert_int_equal(op.type, ENTRY_OP_APPEND);
	assert_int_equal(op.segment, 7);
	assert_memory_equal(op.uuid, writer, ENTRY_UUID_SIZE);
	assert_int_equal(op.first_event, 10);
	assert_int_equal(op.event_count, 3);
	assert_int_equal(op.data_len, 3);
	assert_memory_equal(op.data, "abc", 3);
	assert_true(entry_reader_next(&r, &op));
	assert_int_equal(op.type, ENTRY_OP_COND_APPEND);
	assert_int_equal(op.offset, 99);
	assert_int_equal(op.first_event, 13);
	assert_memory_equal(op.data, "d", 1);
	assert_true(entry_reader_next(&r, &op));
	assert_int_equal(op.type, ENTRY_OP_SEAL);
	assert_int_equal(op.segment, 8);
	assert_true(entry_reader_next(&r, &op));
	assert_int_equal(op.type, ENTRY_OP_TRUNCATE);
	assert_int_equal(op.segment, 9);
	assert_int_equal(op.offset, 1234);
	assert_true(entry_reader_next(&r, &op));
	assert_int_equal(op.type, ENTRY_OP_MERGE);
	assert_int_equal(op.segment, 10);
	assert_int_equal(op.source, 11);
	assert_true(entry_reader_next(&r, &op));
	assert_int_equal(op.type, ENTRY_OP_ATTR_UPDATE);
	assert_true(op.compare);
	assert_int_equal(op.expected, -5);
	assert_true(op.value == INT64_MIN);
	assert_true(entry_reader_next(&r, &op));
	assert_int_equal(op.type, ENTRY_OP_DELETE);
	assert_int_equal(op.segment, 13);
	assert_true(entry_reader_next(&r, &op));
	assert_int_equal(op.type, ENTRY_OP_FLUSH);
	assert_int_equal(op.offset, 100);
	assert_int_equal(op.length, 50);
	assert_int_equal(op.chunk_offset, 7);
	assert_memory_equal(op.name, "chunk-a", 7);
	assert_true(entry_reader_next(&r, &op));
	assert_int_equal(op.type, ENTRY_OP_CHUNK_DELETED);
	assert_int_equal(op.name_len, 7);
	assert_memory_equal(op.name, "chunk-b", 7);
	assert_true(entry_reader_next(&r, &op));
	assert_int_equal(op.type, ENTRY_OP_OWNER);
	assert_int_equal(op.node, 3);
	assert_int_equal(op.term, 17);
	assert_false(entry_reader_next(&r, &op));
	entry_builder_close(&b);
}

/* An entry with no operations is valid; reset empties a builder. */
static void test_entry_empty_and_reset(void **state)
{
	(void)state;
	struct entry_builder b;
	entry_builder_init(&b, 0);
	const uint8_t *e;
	size_t len;
	assert_int_equal(entry_builder_finish(&b, &e, &len), 0);
	assert_int_equal(len, ENTRY_HEADER_SIZE);
	struct entry_reader r;
	struct entry_op op;
	assert_int_equal(entry_reader_init(&r, e, len), 0);
	assert_false(entry_reader_next(&r, &op));
	assert_int_equal(entry_builder_add_seal(&b, 1), 0);
	entry_builder_reset(&b);
	assert_int_equal(entry_builder_count(&b), 0);
	assert_int_equal(entry_builder_finish(&b, &e, &len), 0);
	assert_int_equal(len, ENTRY_HEADER_SIZE);
	entry_builder_close(&b);
}

/* The builder rejects what the reader would reject. */
static void test_entry_builder_rejects_invalid_args(void **state)
{
	(void)state;
	struct entry_builder b;
	entry_builder_init(&b, 0);
	char longname[ENTRY_MAX_NAME + 2];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(entry_builder_add_create(&b, ""), STRATA_EINVAL);
	assert_int_equal(entry_builder_add_create(&b, NULL), STRATA_EINVAL);
	assert_int_equal(entry_builder_add_create(&b, longname), STRATA_EINVAL);
	assert_int_equal(entry_builder_add_append(&b, 1, writer, 0, 0, "a", 1),
	                 STRATA_EINVAL);
	assert_int_equal(entry_builder_add_append(&b, 1, writer, -1, 1, "a", 1),
	                 STRATA_EINVAL);
	assert_int_equal(
	        entry_builder_add_append(&b, 1, writer, INT64_MAX, 2, "a", 1),
	        STRATA_EINVAL);
	assert_int_equal(entry_builder_add_append(&b, 1, NULL, 0, 1, "a", 1),
	                 STRATA_EINVAL);
	assert_int_equal(entry_builder_add_flush(&b, 1, 0, 0, "c", 0),
	                 STRATA_EINVAL);
	assert_int_equal(entry_builder_count(&b), 0);
	/* The last event number may be exactly INT64_MAX. */
	assert_int_equal(
	        entry_builder_add_append(&b, 1, writer, INT64_MAX, 1, "a", 1),
	        0);
	entry_builder_close(&b);
}

/* b finishes into an entry the reader accepts with `ops` operations. */
static void finish_reads_ops(struct entry_builder *b, uint32_t ops)
{
	const uint8_t *e;
	size_t len;
	assert_int_equal(entry_builder_finish(b, &e, &len), 0);
	struct entry_reader r;
	assert_int_equal(entry_reader_init(&r, e, len), 0);
	assert_int_equal(r.count, ops);
}

/* A full builder refuses an op with ETOOBIG and keeps what it has. */
static void test_entry_builder_limit_is_all_or_nothing(void **state)
{
	(void)state;
	struct entry_builder b;
	entry_builder_init(&b, 100);
	uint8_t data[40] = {0};
	assert_int_equal(
	        entry_builder_add_append(&b, 1, writer, 0, 1, data, 30), 0);
	size_t size = entry_builder_size(&b);
	assert_int_equal(
	        entry_builder_add_append(&b, 1, writer, 1, 1, data, 40),
	        STRATA_ETOOBIG);
	assert_int_equal(entry_builder_size(&b), size);
	assert_int_equal(entry_builder_count(&b), 1);
	finish_reads_ops(&b, 1);
	entry_builder_close(&b);
}

/* A reserved builder fills its room without moving; reserving over the
 * limit or below the current size changes nothing. */
static void test_entry_builder_reserve(void **state)
{
	(void)state;
	struct entry_builder b;
	entry_builder_init(&b, 4096);
	size_t empty = entry_builder_size(&b);
	assert_int_equal(entry_builder_reserve(&b, 8192), STRATA_ETOOBIG);
	assert_int_equal(entry_builder_size(&b), empty);
	assert_null(b.buf.data);
	assert_int_equal(entry_builder_reserve(&b, 2048), 0);
	const uint8_t *at = b.buf.data;
	assert_non_null(at);
	uint8_t data[100] = {0};
	for (int i = 0; i < 12; i++) {
		assert_int_equal(entry_builder_add_append(&b, 1, writer, i, 1,
		                                          data, sizeof(data)),
		                 0);
	}
	assert_true(entry_builder_size(&b) <= 2048);
	assert_ptr_equal(b.buf.data, at);
	assert_int_equal(entry_builder_reserve(&b, 10), 0);
	assert_int_equal(entry_builder_count(&b), 12);
	finish_reads_ops(&b, 12);
	entry_builder_close(&b);
}

static uint8_t *sample(size_t *len)
{
	struct entry_builder b;
	entry_builder_init(&b, 0);
	assert_int_equal(entry_builder_add_create(&b, "a/b/1"), 0);
	assert_int_equal(
	        entry_builder_add_append(&b, 1, writer, 0, 2, "hello", 5), 0);
	assert_int_equal(entry_builder_add_flush(&b, 1, 0, 5, "ch", 0), 0);
	const uint8_t *e;
	assert_int_equal(entry_builder_finish(&b, &e, len), 0);
	uint8_t *copy = malloc(*len);
	memcpy(copy, e, *len);
	entry_builder_close(&b);
	return copy;
}

/* Any flipped bit, truncation or extension is rejected with EPROTO. */
static void test_entry_reader_rejects_every_corruption(void **state)
{
	(void)state;
	size_t len;
	uint8_t *e = sample(&len);
	struct entry_reader r;
	assert_int_equal(entry_reader_init(&r, e, len), 0);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			e[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(entry_reader_init(&r, e, len),
			                 STRATA_EPROTO);
			e[i] ^= (uint8_t)(1u << bit);
		}
	}
	for (size_t l = 0; l < len; l++) {
		assert_int_equal(entry_reader_init(&r, e, l), STRATA_EPROTO);
	}
	uint8_t *longer = calloc(1, len + 1);
	memcpy(longer, e, len);
	assert_int_equal(entry_reader_init(&r, longer, len + 1), STRATA_EPROTO);
	assert_int_equal(entry_reader_init(&r, NULL, 0), STRATA_EPROTO);
	free(longer);
	free(e);
}

/* A correctly CRC'd entry whose op fields are invalid is still rejected. */
static void test_entry_reader_checks_fields_under_valid_crc(void **state)
{
	(void)state;
	struct entry_builder b;
	entry_builder_init(&b, 0);
	assert_int_equal(entry_builder_add_append(&b, 1, writer, 5, 1, "x", 1),
	                 0);
	/* Patch event_count (after type, segment, writer, first) to 0. */
	size_t at = ENTRY_HEADER_SIZE + 1 + 8 + ENTRY_UUID_SIZE + 8;
	memset(b.buf.data + at, 0, 4);
	const uint8_t *e;
	size_t len;
	assert_int_equal(entry_builder_finish(&b, &e, &len), 0);
	struct entry_reader r;
	assert_int_equal(entry_reader_init(&r, e, len), STRATA_EPROTO);
	/* An unknown op type. */
	entry_builder_reset(&b);
	assert_int_equal(entry_builder_add_seal(&b, 1), 0);
	b.buf.data[ENTRY_HEADER_SIZE] = 200;
	assert_int_equal(entry_builder_finish(&b, &e, &len), 0);
	assert_int_equal(entry_reader_init(&r, e, len), STRATA_EPROTO);
	/* A name with a NUL byte inside. */
	entry_builder_reset(&b);
	assert_int_equal(entry_builder_add_create(&b, "abc"), 0);
	b.buf.data[ENTRY_HEADER_SIZE + 1 + 4 + 1] = '\0';
	assert_int_equal(entry_builder_finish(&b, &e, &len), 0);
	assert_int_equal(entry_reader_init(&r, e, len), STRATA_EPROTO);
	/* An op count larger than the ops present. */
	entry_builder_reset(&b);
	assert_int_equal(entry_builder_add_seal(&b, 1), 0);
	b.ops = 2;
	assert_int_equal(entry_builder_finish(&b, &e, &len), 0);
	assert_int_equal(entry_reader_init(&r, e, len), STRATA_EPROTO);
	entry_builder_close(&b);
}

/* Seeded random and mutated inputs never crash the reader (ASan checks
 * every access); accepted inputs decode fully. Seed: STRATA_SEED. */
static void test_entry_reader_random_inputs(void **state)
{
	(void)state;
	unsigned seed = 12345;
	const char *env = getenv("STRATA_SEED");
	if (env != NULL) {
		seed = (unsigned)strtoul(env, NULL, 10);
	}
	printf("test_entry_reader_random_inputs: seed %u\n", seed);
	srand(seed);
	size_t len;
	uint8_t *base = sample(&len);
	uint8_t buf[256];
	struct entry_reader r;
	struct entry_op op;
	for (int iter = 0; iter < 20000; iter++) {
		size_t n;
		if (iter % 2 == 0) {
			n = (size_t)rand() % sizeof(buf);
			for (size_t i = 0; i < n; i++) {
				buf[i] = (uint8_t)rand();
			}
		} else {
			n = len;
			memcpy(buf, base, len);
			int flips = 1 + rand() % 4;
			for (int k = 0; k < flips; k++) {
				buf[(size_t)rand() % len] = (uint8_t)rand();
			}
			n = (size_t)rand() % 3 == 0 ? (size_t)rand() % len : n;
		}
		/* Exact-size heap copy so ASan catches any over-read. */
		uint8_t *copy = malloc(n == 0 ? 1 : n);
		memcpy(copy, buf, n);
		if (entry_reader_init(&r, copy, n) == 0) {
			uint32_t seen = 0;
			while (entry_reader_next(&r, &op)) {
				seen++;
			}
			assert_int_equal(seen, r.count);
		}
		free(copy);
	}
	free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_entry_round_trip_all_types),
	        cmocka_unit_test(test_entry_empty_and_reset),
	        cmocka_unit_test(test_entry_builder_rejects_invalid_args),
	        cmocka_unit_test(test_entry_builder_reserve),
	        cmocka_unit_test(test_entry_builder_limit_is_all_or_nothing),
	        cmocka_unit_test(test_entry_reader_rejects_every_corruption),
	        cmocka_unit_test(
	                test_entry_reader_checks_fields_under_valid_crc),
	        cmocka_unit_test(test_entry_reader_random_inputs),
	};
	return cmocka_run_group_tests_name("entry", tests, NULL, NULL);
}
