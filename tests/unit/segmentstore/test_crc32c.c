/* Unit tests for segmentstore/crc32c.c. */
#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "segmentstore/crc32c.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_crc32c_extend_known_vectors),
	        cmocka_unit_test(test_crc32c_extend_chains),
	};
	return cmocka_run_group_tests_name("crc32c", tests, NULL, NULL);
}
