/* Unit tests for client/routing.c: the routing key hash and lookup. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "client/client_int.h"
#include "strata/client.h"

/* The position is a pure function, in [0,1), pinned to known values so a
 * change (which would move keys between segments) fails here. */
static void test_routing_key_position_stable(void **state)
{
	(void)state;
	double a = strata_routing_key_position("user-1", 6);
	double b = strata_routing_key_position("user-1", 6);
	assert_true(a == b);
	assert_true(a >= 0.0 && a < 1.0);
	/* fmix64(FNV-1a("")) = fmix64(0xcbf29ce484222325); "user-1" checked
	 * against an independent Python implementation. */
	uint64_t h = routing_fmix64(0xcbf29ce484222325ull);
	assert_true(strata_routing_key_position("", 0) ==
	            (double)(h >> 11) * 0x1.0p-53);
	char buf[32];
	snprintf(buf, sizeof(buf), "%.12f", a);
	print_message("position(user-1) = %s\n", buf);
	assert_string_equal(buf, "0.256393232796");
}

/* Keys spread evenly over 8 equal ranges (within 10%). */
static void test_routing_key_position_uniform(void **state)
{
	(void)state;
	unsigned bins[8] = {0};
	for (unsigned i = 0; i < 80000; i++) {
		char key[32];
		int n = snprintf(key, sizeof(key), "key-%u", i);
		double p = strata_routing_key_position(key, (size_t)n);
		bins[(unsigned)(p * 8)]++;
	}
	for (unsigned i = 0; i < 8; i++) {
		assert_true(bins[i] > 9000 && bins[i] < 11000);
	}
}

/* The lookup finds the range containing the position, edges included. */
static void test_routing_find_ranges(void **state)
{
	(void)state;
	double lows[4] = {0.0, 0.25, 0.5, 0.75};
	assert_int_equal(routing_find(lows, 4, 0.0), 0);
	assert_int_equal(routing_find(lows, 4, 0.2499), 0);
	assert_int_equal(routing_find(lows, 4, 0.25), 1);
	assert_int_equal(routing_find(lows, 4, 0.6), 2);
	assert_int_equal(routing_find(lows, 4, 0.9999), 3);
	assert_int_equal(routing_find(lows, 1, 0.5), 0);
}

/* Qualified segment names follow scope/stream/<n>.#epoch.<e>. */
static void test_routing_segment_name(void **state)
{
	(void)state;
	char buf[64];
	size_t n = strata_segment_name(buf, sizeof(buf), "s", "t",
	                               (2ull << 32) | 7);
	assert_string_equal(buf, "s/t/7.#epoch.2");
	assert_int_equal(n, strlen(buf));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_routing_key_position_stable),
	        cmocka_unit_test(test_routing_key_position_uniform),
	        cmocka_unit_test(test_routing_find_ranges),
	        cmocka_unit_test(test_routing_segment_name),
	};
	return cmocka_run_group_tests_name("routing", tests, NULL, NULL);
}
