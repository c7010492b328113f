/* Unit tests for common/crc32c.c. */
#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/crc32c.h"
#include "tests/lib/check.h"

/* The standard check value and RFC 3720 test vectors. */
static void test_crc32c_extend_known_vectors(void **state)
{
	(void)state;
	assert_int_equal(crc32c_extend(0, "123456789", 9), 0xE3069283u);
	uint8_t zeros[32] = {0};
	assert_int_equal(crc32c_extend(0, zeros, 32), 0x8A9136AAu);
	uint8_t ones[32];
	memset(ones, 0xFF, sizeof(ones));
	assert_int_equal(crc32c_extend(0, ones, 32), 0x62A8AB43u);
	assert_int_equal(crc32c_extend(0, NULL, 0), 0);
}

/* Chaining over pieces equals one pass over the whole. */
static void test_crc32c_extend_chains(void **state)
{
	(void)state;
	uint8_t buf[1000];
	for (size_t i = 0; i < sizeof(buf); i++) {
		buf[i] = (uint8_t)(i * 7 + 3);
	}
	uint32_t whole = crc32c_extend(0, buf, sizeof(buf));
	for (size_t cut = 0; cut <= sizeof(buf); cut += 37) {
		uint32_t c = crc32c_extend(0, buf, cut);
		c = crc32c_extend(c, buf + cut, sizeof(buf) - cut);
		assert_int_equal(c, whole);
	}
}

/* The hardware path (when the CPU has one) and the portable one agree on
 * every length and alignment, and on the vectors above. */
static void test_crc32c_paths_agree(void **state)
{
	(void)state;
	uint8_t buf[4096 + 16];
	fill_pseudo_random(buf, sizeof(buf), 0x9E3779B97F4A7C15u);
	assert_int_equal(crc32c_extend_portable(0, "123456789", 9),
	                 0xE3069283u);
	for (size_t off = 0; off < 16; off++) {
		for (size_t len = 0; len <= 300; len++) {
			assert_int_equal(
			        crc32c_extend(7, buf + off, len),
			        crc32c_extend_portable(7, buf + off, len));
		}
		assert_int_equal(crc32c_extend(0, buf + off, 4096),
		                 crc32c_extend_portable(0, buf + off, 4096));
	}
}

/* Long buffers, where the hardware path runs three lanes and joins them:
 * every lane size boundary, random lengths up to 100 KB, random
 * alignments and seeds, and chained calls, against the portable path. */
static void test_crc32c_paths_agree_long(void **state)
{
	(void)state;
	enum { MAX = 100 * 1024 };
	static uint8_t buf[MAX + 64];
	fill_pseudo_random(buf, sizeof(buf), 0x243F6A8885A308D3u);
	static const size_t edges[] = {767,   768,   769,   775,   776,
	                               1535,  1536,  1537,  24575, 24576,
	                               24577, 24583, 49152, 49919, 49920};
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		for (size_t off = 0; off < 9; off++) {
			assert_int_equal(
			        crc32c_extend(0, buf + off, edges[i]),
			        crc32c_extend_portable(0, buf + off, edges[i]));
		}
	}
	uint64_t r = 0x9E3779B97F4A7C15u;
	for (int k = 0; k < 200; k++) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		size_t len = (size_t)(r % MAX);
		size_t off = (size_t)(r >> 40) % 64;
		uint32_t seed = (uint32_t)(r >> 20);
		assert_int_equal(crc32c_extend(seed, buf + off, len),
		                 crc32c_extend_portable(seed, buf + off, len));
		size_t cut = len == 0 ? 0 : (size_t)(r >> 33) % len;
		uint32_t c = crc32c_extend(seed, buf + off, cut);
		c = crc32c_extend(c, buf + off + cut, len - cut);
		assert_int_equal(c,
		                 crc32c_extend_portable(seed, buf + off, len));
	}
}

/* On an x86-64 CPU with SSE4.2 the hardware path is the one in use (it was
 * once compiled out by mistake and nothing noticed). */
static void test_crc32c_uses_hw_when_cpu_has_it(void **state)
{
	(void)state;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2")) {
		assert_string_equal(crc32c_impl(), "sse4.2");
		return;
	}
#endif
	assert_string_equal(crc32c_impl(), "portable");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_crc32c_extend_known_vectors),
	        cmocka_unit_test(test_crc32c_extend_chains),
	        cmocka_unit_test(test_crc32c_paths_agree),
	        cmocka_unit_test(test_crc32c_paths_agree_long),
	        cmocka_unit_test(test_crc32c_uses_hw_when_cpu_has_it),
	};
	return cmocka_run_group_tests_name("crc32c", tests, NULL, NULL);
}
