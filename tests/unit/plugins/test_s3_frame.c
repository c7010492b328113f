/* Unit tests for the s3 plugin's framed objects (s3_frame.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "plugins/tier2/s3/s3_frame.h"
#include "tests/lib/check.h"

#define B S3_FRAME_BLOCK

/* n bytes of test data (tests/lib: the same on every run); free() it. */
static unsigned char *pattern(size_t n)
{
	unsigned char *p = malloc(n > 0 ? n : 1);
	assert_non_null(p);
	fill_pseudo_random(p, n, 2463534242u);
	return p;
}

/* Sizes and lengths map one to one; a last block of 1..4 bytes (no data
 * beside its CRC) is no framed size. */
static void test_s3_frame_size_and_len(void **state)
{
	(void)state;
	const uint64_t lens[] = {
	        0, 1, 2, B - 1, B, B + 1, 2 * B, 3 * B + 7, (uint64_t)5 << 30};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint64_t len = 99;
		uint64_t size = s3_frame_size(lens[i]);
		assert_int_equal(size, lens[i] + 4 * ((lens[i] + B - 1) / B));
		assert_true(s3_frame_len(size, &len));
		assert_int_equal(len, lens[i]);
	}
	uint64_t len;
	for (uint64_t r = 1; r <= 4; r++) {
		assert_false(s3_frame_len(r, &len));
		assert_false(s3_frame_len(B + 4 + r, &len));
	}
	assert_true(s3_frame_len(5, &len));
	assert_int_equal(len, 1);
}

/* A span covers the whole blocks holding the range, the last one cut at
 * the object's end. */
static void test_s3_frame_span(void **state)
{
	(void)state;
	uint64_t boff, foff, flen;
	s3_frame_span(0, 1, 10, &boff, &foff, &flen);
	assert_int_equal(boff, 0);
	assert_int_equal(foff, 0);
	assert_int_equal(flen, 14);
	s3_frame_span(B - 1, 2, 3 * B, &boff, &foff, &flen);
	assert_int_equal(boff, 0);
	assert_int_equal(foff, 0);
	assert_int_equal(flen, 2 * (B + 4));
	s3_frame_span(2 * B + 5, 10, 2 * B + 100, &boff, &foff, &flen);
	assert_int_equal(boff, 2 * B);
	assert_int_equal(foff, 2 * (B + 4));
	assert_int_equal(flen, 104);
}

/* Encode then decode any range gives the bytes back, in place too. */
static void test_s3_frame_round_trip(void **state)
{
	(void)state;
	size_t len = 3 * B + 1234;
	unsigned char *data = pattern(len);
	size_t size = (size_t)s3_frame_size(len);
	unsigned char *obj = malloc(size);
	assert_non_null(obj);
	s3_frame_encode(obj, data, len);
	const uint64_t ranges[][2] = {
	        {0, len}, {0, 1}, {B - 3, 6}, {3 * B, 1234}, {len - 1, 1}};
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		uint64_t boff, foff, flen;
		s3_frame_span(ranges[i][0], ranges[i][1], len, &boff, &foff,
		              &flen);
		unsigned char *buf = malloc(flen);
		assert_non_null(buf);
		memcpy(buf, obj + foff, flen);
		size_t bad = 99;
		assert_true(s3_frame_decode(buf, flen, buf, &bad));
		assert_memory_equal(buf + (ranges[i][0] - boff),
		                    data + ranges[i][0], ranges[i][1]);
		free(buf);
	}
	free(obj);
	free(data);
}

/* Any changed byte, of data or of a CRC, fails its block (and only it);
 * so does a block cut short or zeroed. */
static void test_s3_frame_detects_damage(void **state)
{
	(void)state;
	size_t len = 2 * B + 10;
	unsigned char *data = pattern(len);
	size_t size = (size_t)s3_frame_size(len);
	unsigned char *obj = malloc(size);
	unsigned char *out = malloc(size);
	assert_non_null(obj);
	assert_non_null(out);
	const size_t at[] = {0, B - 1, B, B + 3, B + 4, 2 * B + 7, size - 1};
	const size_t block[] = {0, 0, 0, 0, 1, 1, 2};
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		s3_frame_encode(obj, data, len);
		obj[at[i]] ^= 0x10;
		size_t bad = 99;
		assert_false(s3_frame_decode(obj, size, out, &bad));
		assert_int_equal(bad, block[i]);
	}
	s3_frame_encode(obj, data, len);
	size_t bad = 99;
	assert_false(s3_frame_decode(obj, size - 1, out, &bad));
	assert_int_equal(bad, 2);
	assert_false(s3_frame_decode(obj, 2 * (B + 4) + 3, out, &bad));
	assert_int_equal(bad, 2);
	memset(obj + B + 4, 0, B + 4);
	assert_false(s3_frame_decode(obj, size, out, &bad));
	assert_int_equal(bad, 1);
	free(out);
	free(obj);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_s3_frame_size_and_len),
	        cmocka_unit_test(test_s3_frame_span),
	        cmocka_unit_test(test_s3_frame_round_trip),
	        cmocka_unit_test(test_s3_frame_detects_damage),
	};
	return cmocka_run_group_tests_name("s3_frame", tests, NULL, NULL);
}
