/* Unit tests for common/buf.c: growable buffer and bounds-checked cursor. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "strata/error.h"
#include "tests/lib/oom.h"

/* A fresh buffer is empty and allocates nothing; close is idempotent. */
static void test_buf_init_empty(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	buf_close(&b);
	buf_close(&b);
	assert_null(b.data);
}

/* Appends grow the buffer, keep content and a trailing NUL. */
static void test_buf_append_grows(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(buf_append(&b, "abc", 3), 0);
	}
	assert_int_equal(b.len, 3000);
	assert_true(b.cap >= 3000);
	assert_int_equal(b.data[b.len], '\0');
	for (size_t i = 0; i < b.len; i += 3) {
		assert_memory_equal(b.data + i, "abc", 3);
	}
	assert_int_equal(buf_append(&b, NULL, 0), 0);
	assert_int_equal(b.len, 3000);
	buf_close(&b);
}

/* Integers are written little-endian, byte by byte. */
static void test_buf_append_ints_little_endian(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(buf_append_u8(&b, 0xab), 0);
	assert_int_equal(buf_append_u32le(&b, 0x01020304u), 0);
	assert_int_equal(buf_append_u64le(&b, 0x1122334455667788ull), 0);
	static const uint8_t want[] = {0xab, 0x04, 0x03, 0x02, 0x01, 0x88, 0x77,
	                               0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.data, want, sizeof(want));
	buf_close(&b);
}

/* printf appends formatted text, also when it needs to grow. */
static void test_buf_printf_appends_and_grows(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(buf_printf(&b, "x=%d ", 42), 0);
	assert_string_equal((char *)b.data, "x=42 ");
	char big[500];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(buf_printf(&b, "%s|%s", big, "end"), 0);
	assert_int_equal(b.len, 5 + 499 + 4);
	assert_memory_equal(b.data + 5, big, 499);
	assert_string_equal((char *)b.data + 5 + 499, "|end");
	assert_int_equal(buf_printf(&b, "%s", ""), 0);
	assert_int_equal(b.len, 5 + 499 + 4);
	buf_close(&b);
}

/* The max limit is enforced exactly; a failed append changes nothing. */
static void test_buf_max_too_big(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(buf_append_u8(&b, 'x'), STRATA_ETOOBIG);
	assert_int_equal(b.len, 10);
	assert_string_equal((char *)b.data, "0123456789");
	buf_reset(&b);
	assert_int_equal(buf_append(&b, "01234", 5), 0);
	assert_int_equal(buf_printf(&b, "%s", "abcdef"), STRATA_ETOOBIG);
	assert_int_equal(b.len, 5);
	assert_string_equal((char *)b.data, "01234");
	assert_int_equal(buf_printf(&b, "%s", "abcde"), 0);
	assert_string_equal((char *)b.data, "01234abcde");
	assert_int_equal(buf_reserve(&b, SIZE_MAX), STRATA_ETOOBIG);
	assert_int_equal(buf_append_u32le(&b, 1), STRATA_ETOOBIG);
	assert_int_equal(buf_append_u64le(&b, 1), STRATA_ETOOBIG);
	buf_close(&b);
}

/* An unlimited buffer rejects sizes that would overflow. */
static void test_buf_reserve_overflow(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(buf_append(&b, "ab", 2), 0);
	assert_int_equal(buf_reserve(&b, SIZE_MAX), STRATA_ETOOBIG);
	assert_int_equal(buf_reserve(&b, SIZE_MAX - 2), STRATA_ETOOBIG);
	assert_int_equal(b.len, 2);
	buf_close(&b);
}

/* reserve makes room so later appends do not reallocate. */
static void test_buf_reserve_then_append(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(buf_reserve(&b, 1000), 0);
	uint8_t *before = b.data;
	assert_true(b.cap >= 1000);
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(buf_append_u8(&b, (uint8_t)i), 0);
	}
	assert_ptr_equal(b.data, before);
	buf_close(&b);
}

/* reset keeps the allocation; detach hands it over and empties the buf. */
static void test_buf_reset_and_detach(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	size_t len = 99;
	assert_null(buf_detach(&b, &len));
	assert_int_equal(len, 0);
	assert_int_equal(buf_printf(&b, "hello"), 0);
	size_t cap = b.cap;
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap);
	assert_string_equal((char *)b.data, "");
	assert_int_equal(buf_printf(&b, "world"), 0);
	uint8_t *p = buf_detach(&b, &len);
	assert_non_null(p);
	assert_int_equal(len, 5);
	assert_string_equal((char *)p, "world");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	strata_free(p);
	assert_int_equal(buf_append(&b, "again", 5), 0);
	buf_close(&b);
}

/* Under OOM an append fails with ENOMEM and leaves the content intact. */
static void test_buf_append_oom(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	oom_install(1);
	assert_int_equal(buf_append(&b, "x", 1), STRATA_ENOMEM);
	assert_null(b.data);
	assert_int_equal(buf_printf(&b, "%d", 5), STRATA_ENOMEM);
	oom_uninstall();
	assert_int_equal(buf_append(&b, "abc", 3), 0);
	char big[200];
	memset(big, 'q', sizeof(big));
	oom_install(1);
	assert_int_equal(buf_append(&b, big, sizeof(big)), STRATA_ENOMEM);
	assert_int_equal(buf_printf(&b, "%.*s", 150, big), STRATA_ENOMEM);
	assert_int_equal(buf_reserve(&b, 100), STRATA_ENOMEM);
	oom_uninstall();
	assert_int_equal(b.len, 3);
	assert_string_equal((char *)b.data, "abc");
	buf_close(&b);
}

/* Every allocation of a growing sequence may fail; each failure is clean. */
static void test_buf_oom_every_step(void **state)
{
	(void)state;
	for (long n = 1; n < 20; n++) {
		struct buf b;
		buf_init(&b, 0);
		oom_install(n);
		int rv = 0;
		for (int i = 0; i < 100 && rv == 0; i++) {
			rv = buf_printf(&b, "line %d of a growing buffer\n", i);
		}
		oom_uninstall();
		assert_true(rv == 0 || rv == STRATA_ENOMEM);
		if (b.data != NULL) {
			assert_int_equal(b.data[b.len], '\0');
		}
		buf_close(&b);
	}
}

/* The cursor reads integers little-endian and bytes in place. */
static void test_cursor_reads_in_order(void **state)
{
	(void)state;
	static const uint8_t in[] = {0x7f, 0x04, 0x03, 0x02, 0x01, 0x88,
	                             0x77, 0x66, 0x55, 0x44, 0x33, 0x22,
	                             0x11, 'h',  'i',  'x',  'y'};
	struct cursor c;
	cursor_init(&c, in, sizeof(in));
	uint8_t u8;
	uint32_t u32;
	uint64_t u64;
	const uint8_t *p;
	assert_int_equal(cursor_u8(&c, &u8), 0);
	assert_int_equal(u8, 0x7f);
	assert_int_equal(cursor_u32le(&c, &u32), 0);
	assert_int_equal(u32, 0x01020304u);
	assert_int_equal(cursor_u64le(&c, &u64), 0);
	assert_true(u64 == 0x1122334455667788ull);
	assert_int_equal(cursor_bytes(&c, 2, &p), 0);
	assert_ptr_equal(p, in + 13);
	assert_memory_equal(p, "hi", 2);
	assert_int_equal(cursor_skip(&c, 1), 0);
	assert_int_equal(cursor_remaining(&c), 1);
	assert_int_equal(cursor_bytes(&c, 0, &p), 0);
	assert_int_equal(cursor_u8(&c, &u8), 0);
	assert_int_equal(u8, 'y');
	assert_int_equal(cursor_remaining(&c), 0);
}

/* Short input fails EPROTO, reads nothing and does not advance. */
static void test_cursor_short_input_eproto(void **state)
{
	(void)state;
	static const uint8_t in[] = {1, 2, 3};
	struct cursor c;
	cursor_init(&c, in, sizeof(in));
	uint32_t u32 = 0xdeadbeef;
	uint64_t u64 = 7;
	const uint8_t *p = NULL;
	assert_int_equal(cursor_u32le(&c, &u32), STRATA_EPROTO);
	assert_int_equal(u32, 0xdeadbeef);
	assert_int_equal(cursor_u64le(&c, &u64), STRATA_EPROTO);
	assert_int_equal(u64, 7);
	assert_int_equal(cursor_bytes(&c, 4, &p), STRATA_EPROTO);
	assert_null(p);
	assert_int_equal(cursor_skip(&c, 4), STRATA_EPROTO);
	assert_int_equal(cursor_remaining(&c), 3);
	assert_int_equal(cursor_skip(&c, 2), 0);
	assert_int_equal(cursor_bytes(&c, SIZE_MAX, &p), STRATA_EPROTO);
	assert_int_equal(cursor_skip(&c, SIZE_MAX), STRATA_EPROTO);
	uint8_t u8;
	assert_int_equal(cursor_u8(&c, &u8), 0);
	assert_int_equal(u8, 3);
	assert_int_equal(cursor_u8(&c, &u8), STRATA_EPROTO);
}

/* An empty or NULL input has nothing to read. */
static void test_cursor_empty_input(void **state)
{
	(void)state;
	struct cursor c;
	uint8_t u8;
	cursor_init(&c, NULL, 5);
	assert_int_equal(cursor_remaining(&c), 0);
	assert_int_equal(cursor_u8(&c, &u8), STRATA_EPROTO);
	cursor_init(&c, "", 0);
	assert_int_equal(cursor_u8(&c, &u8), STRATA_EPROTO);
}

/* Every truncation of a buf-encoded record fails cleanly at the cut. */
static void test_cursor_every_truncation(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(buf_append_u32le(&b, 5), 0);
	assert_int_equal(buf_append(&b, "hello", 5), 0);
	assert_int_equal(buf_append_u64le(&b, 99), 0);
	for (size_t cut = 0; cut <= b.len; cut++) {
		/* A heap copy of exactly cut bytes lets ASan catch overreads.
		 */
		uint8_t *copy = strata_malloc(cut > 0 ? cut : 1);
		assert_non_null(copy);
		memcpy(copy, b.data, cut);
		struct cursor c;
		cursor_init(&c, copy, cut);
		uint32_t n;
		const uint8_t *p;
		uint64_t v;
		int rv = cursor_u32le(&c, &n);
		if (rv == 0) {
			rv = cursor_bytes(&c, n, &p);
		}
		if (rv == 0) {
			rv = cursor_u64le(&c, &v);
		}
		assert_int_equal(rv, cut == b.len ? 0 : STRATA_EPROTO);
		if (rv == 0) {
			assert_int_equal(v, 99);
			assert_memory_equal(p, "hello", 5);
		}
		strata_free(copy);
	}
	buf_close(&b);
}

/* Varints: 1 to 10 bytes, the full 64-bit range, non-canonical zero. */
static void test_cursor_varint_values(void **state)
{
	(void)state;
	static const struct {
		uint8_t in[11];
		size_t n;
		uint64_t v;
	} ok[] = {
	        {{0x00}, 1, 0},
	        {{0x7f}, 1, 127},
	        {{0x80, 0x01}, 2, 128},
	        {{0xac, 0x02}, 2, 300},
	        {{0x80, 0x00}, 2, 0},
	        {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	         10,
	         UINT64_MAX},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct cursor c;
		uint8_t in[12];
		memcpy(in, ok[i].in, ok[i].n);
		in[ok[i].n] = 0x55; /* a following byte is not consumed */
		cursor_init(&c, in, ok[i].n + 1);
		uint64_t v = 1;
		assert_int_equal(cursor_varint(&c, &v), 0);
		assert_true(v == ok[i].v);
		assert_int_equal(c.off, ok[i].n);
	}
}

/* pb_put_varint writes what cursor_varint reads back, in the fewest
 * bytes, and sizes it the same without writing. */
static void test_pb_put_varint_round_trip(void **state)
{
	(void)state;
	static const struct {
		uint64_t v;
		size_t n;
	} cases[] = {{0, 1},          {1, 1},          {127, 1},
	             {128, 2},        {300, 2},        {16383, 2},
	             {16384, 3},      {UINT32_MAX, 5}, {1ull << 63, 10},
	             {UINT64_MAX, 10}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t out[10];
		assert_int_equal(pb_put_varint(NULL, cases[i].v), cases[i].n);
		assert_int_equal(pb_put_varint(out, cases[i].v), cases[i].n);
		struct cursor c;
		cursor_init(&c, out, cases[i].n);
		uint64_t v = 0;
		assert_int_equal(cursor_varint(&c, &v), 0);
		assert_true(v == cases[i].v);
		assert_int_equal(c.off, cases[i].n);
	}
}

/* pb_put_len_head writes a head cursor_pb_field reads back as field, PB_LEN
 * and len (the bytes follow it), and sizes it the same without writing. */
static void test_pb_put_len_head_round_trip(void **state)
{
	(void)state;
	static const struct {
		uint32_t field;
		size_t len;
	} cases[] = {{1, 0}, {2, 5}, {15, 127}, {16, 128}, {2047, 70000}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		static uint8_t out[16 + 70000];
		size_t n = pb_put_len_head(NULL, cases[i].field, cases[i].len);
		assert_int_equal(
		        pb_put_len_head(out, cases[i].field, cases[i].len), n);
		struct cursor c;
		cursor_init(&c, out, n + cases[i].len);
		struct pb_field f;
		assert_int_equal(cursor_pb_field(&c, &f), 0);
		assert_int_equal(f.number, cases[i].field);
		assert_int_equal(f.wire, PB_LEN);
		assert_int_equal(f.len, cases[i].len);
		assert_ptr_equal(f.p, out + n);
	}
}

/* Too long, beyond 64 bits, or cut short: EPROTO and nothing consumed. */
static void test_cursor_varint_rejects(void **state)
{
	(void)state;
	static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
	                                 0x80, 0x80, 0x80, 0x80, 0x00};
	static const uint8_t wide[] = {0xff, 0xff, 0xff, 0xff, 0xff,
	                               0xff, 0xff, 0xff, 0xff, 0x02};
	static const uint8_t cut[] = {0x80, 0x80};
	const struct {
		const uint8_t *p;
		size_t n;
	} bad[] = {{eleven, sizeof(eleven)},
	           {wide, sizeof(wide)},
	           {cut, sizeof(cut)},
	           {cut, 0}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cursor c;
		cursor_init(&c, bad[i].p, bad[i].n);
		uint64_t v = 7;
		assert_int_equal(cursor_varint(&c, &v), STRATA_EPROTO);
		assert_int_equal(c.off, 0);
		assert_true(v == 7);
	}
}

/* Every wire type read back, in order. */
static void test_cursor_pb_fields(void **state)
{
	(void)state;
	static const uint8_t in[] = {
	        0x08, 0x96, 0x01,                            /* 1: varint 150 */
	        0x12, 0x03, 'a',  'b',  'c',                 /* 2: "abc" */
	        0x19, 1,    2,    3,    4,    5,    6, 7, 8, /* 3: fixed64 */
	        0x25, 9,    0,    0,    0,                   /* 4: fixed32 9 */
	        0xfa, 0xff, 0xff, 0xff, 0x0f, 0x00,          /* 2^29-1: "" */
	};
	struct cursor c;
	cursor_init(&c, in, sizeof(in));
	struct pb_field f;
	assert_int_equal(cursor_pb_field(&c, &f), 0);
	assert_int_equal(f.number, 1);
	assert_int_equal(f.wire, PB_VARINT);
	assert_true(f.v == 150);
	assert_int_equal(cursor_pb_field(&c, &f), 0);
	assert_int_equal(f.number, 2);
	assert_int_equal(f.wire, PB_LEN);
	assert_int_equal(f.len, 3);
	assert_memory_equal(f.p, "abc", 3);
	assert_int_equal(cursor_pb_field(&c, &f), 0);
	assert_int_equal(f.wire, PB_I64);
	assert_true(f.v == 0x0807060504030201ull);
	assert_int_equal(cursor_pb_field(&c, &f), 0);
	assert_int_equal(f.number, 4);
	assert_int_equal(f.wire, PB_I32);
	assert_true(f.v == 9);
	assert_int_equal(cursor_pb_field(&c, &f), 0);
	assert_int_equal(f.number, (1u << 29) - 1);
	assert_int_equal(f.len, 0);
	assert_int_equal(cursor_remaining(&c), 0);
}

/* Field 0, groups, reserved wire types, a 6-byte tag, a length beyond
 * the input, a cut value: EPROTO and nothing consumed. */
static void test_cursor_pb_field_rejects(void **state)
{
	(void)state;
	static const uint8_t f0[] = {0x00, 0x01};
	static const uint8_t group[] = {0x0b};
	static const uint8_t wt6[] = {0x0e, 0x00};
	static const uint8_t wt7[] = {0x0f, 0x00};
	static const uint8_t tag6[] = {0x88, 0x80, 0x80, 0x80,
	                               0x80, 0x00, 0x00};
	static const uint8_t big[] = {0x80, 0x80, 0x80, 0x80, 0x10, 0x00};
	static const uint8_t len[] = {0x12, 0x05, 'a', 'b'};
	static const uint8_t i64[] = {0x09, 1, 2, 3};
	static const uint8_t vcut[] = {0x08, 0x80};
	const struct {
		const uint8_t *p;
		size_t n;
	} bad[] = {{f0, sizeof(f0)},     {group, sizeof(group)},
	           {wt6, sizeof(wt6)},   {wt7, sizeof(wt7)},
	           {tag6, sizeof(tag6)}, {big, sizeof(big)},
	           {len, sizeof(len)},   {i64, sizeof(i64)},
	           {vcut, sizeof(vcut)}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cursor c;
		cursor_init(&c, bad[i].p, bad[i].n);
		struct pb_field f;
		assert_int_equal(cursor_pb_field(&c, &f), STRATA_EPROTO);
		assert_int_equal(c.off, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_buf_init_empty),
	        cmocka_unit_test(test_buf_append_grows),
	        cmocka_unit_test(test_buf_append_ints_little_endian),
	        cmocka_unit_test(test_buf_printf_appends_and_grows),
	        cmocka_unit_test(test_buf_max_too_big),
	        cmocka_unit_test(test_buf_reserve_overflow),
	        cmocka_unit_test(test_buf_reserve_then_append),
	        cmocka_unit_test(test_buf_reset_and_detach),
	        cmocka_unit_test(test_buf_append_oom),
	        cmocka_unit_test(test_buf_oom_every_step),
	        cmocka_unit_test(test_cursor_reads_in_order),
	        cmocka_unit_test(test_cursor_short_input_eproto),
	        cmocka_unit_test(test_cursor_empty_input),
	        cmocka_unit_test(test_cursor_every_truncation),
	        cmocka_unit_test(test_cursor_varint_values),
	        cmocka_unit_test(test_pb_put_varint_round_trip),
	        cmocka_unit_test(test_pb_put_len_head_round_trip),
	        cmocka_unit_test(test_cursor_varint_rejects),
	        cmocka_unit_test(test_cursor_pb_fields),
	        cmocka_unit_test(test_cursor_pb_field_rejects),
	};
	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
