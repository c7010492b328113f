/* Test helpers shared by cmocka tests: substring checks, list counting. */
#include "tests/lib/check.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

void assert_contains(const char *s, const char *part)
{
	if (strstr(s, part) == NULL) {
		fail_msg("'%s' does not contain '%s'", s, part);
	}
}

int count_list_cb(void *arg, const char *name,
                  const struct strata_tier2_chunk_info *info)
{
	(void)name;
	(void)info;
	(*(int *)arg)++;
	return 0;
}

void fill_pseudo_random(uint8_t *buf, size_t n, uint64_t seed)
{
	uint64_t x = seed;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
}
