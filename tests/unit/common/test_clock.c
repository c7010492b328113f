/* Unit tests for common/clock.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/clock.h"

/* Never goes back; the milliseconds are the nanoseconds divided. */
static void test_clock_monotonic_and_consistent(void **state)
{
	(void)state;
	uint64_t prev = clock_mono_ns();
	for (int i = 0; i < 1000; i++) {
		uint64_t now = clock_mono_ns();
		assert_true(now >= prev);
		prev = now;
	}
	uint64_t ns0 = clock_mono_ns();
	uint64_t ms = clock_mono_ms();
	uint64_t ns1 = clock_mono_ns();
	assert_true(ms >= ns0 / 1000000u && ms <= ns1 / 1000000u);
}

/* A 20 ms sleep reads as at least 20 ms. */
static void test_clock_counts_a_sleep(void **state)
{
	(void)state;
	uint64_t t0 = clock_mono_ms();
	struct timespec d = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
	nanosleep(&d, NULL);
	assert_true(clock_mono_ms() - t0 >= 20);
}

/* clock_due lets the first call through, then one per period. */
static void test_clock_due_rate_limits(void **state)
{
	(void)state;
	uint64_t last = 0;
	assert_true(clock_due(&last, 5000, 1000));
	assert_int_equal(last, 5000);
	assert_false(clock_due(&last, 5999, 1000));
	assert_int_equal(last, 5000);
	assert_true(clock_due(&last, 6000, 1000));
	assert_false(clock_due(&last, 6500, 1000));
	assert_true(clock_due(&last, 100000, 1000));
	assert_int_equal(last, 100000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_clock_monotonic_and_consistent),
	        cmocka_unit_test(test_clock_counts_a_sleep),
	        cmocka_unit_test(test_clock_due_rate_limits),
	};
	return cmocka_run_group_tests_name("clock", tests, NULL, NULL);
}
