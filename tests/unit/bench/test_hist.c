/* Unit tests for bench/hist.c, the benchmarks' latency histogram. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "bench/hist.h"

/* An empty histogram reports 0 for every percentile and the mean. */
static void test_hist_percentile_empty(void **state)
{
	(void)state;
	struct hist h;
	hist_init(&h);
	assert_int_equal(h.count, 0);
	assert_int_equal(hist_percentile(&h, 50), 0);
	assert_int_equal(hist_percentile(&h, 99), 0);
	assert_true(hist_mean(&h) == 0);
}

/* Values below HIST_SUB are kept exactly. */
static void test_hist_percentile_small_values_exact(void **state)
{
	(void)state;
	struct hist h;
	hist_init(&h);
	for (uint64_t v = 1; v <= 10; v++)
		hist_record(&h, v);
	assert_int_equal(hist_percentile(&h, 50), 5);
	assert_int_equal(hist_percentile(&h, 100), 10);
	assert_int_equal(hist_percentile(&h, 0), 1);
	assert_true(hist_mean(&h) == 5.5);
}

/* Every value maps to a bucket whose range holds it, within 1/HIST_SUB. */
static void test_hist_bucket_of_bounds_value(void **state)
{
	(void)state;
	for (uint64_t v = 1; v < (UINT64_C(1) << 39); v = v * 3 + 1) {
		unsigned b = hist_bucket_of(v);
		assert_true(b < HIST_BUCKETS);
		uint64_t hi = hist_bucket_high(b);
		assert_true(hi >= v);
		assert_true((double)(hi - v) <= (double)v / HIST_SUB + 1);
		if (b > 0)
			assert_true(hist_bucket_high(b - 1) < v);
	}
}

/* Percentiles of 1..100000 ns land within the relative error. */
static void test_hist_percentile_uniform(void **state)
{
	(void)state;
	struct hist h;
	hist_init(&h);
	for (uint64_t v = 1; v <= 100000; v++)
		hist_record(&h, v);
	static const double ps[] = {50, 95, 99, 99.9};
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		double want = ps[i] * 1000;
		double got = (double)hist_percentile(&h, ps[i]);
		assert_true(got >= want);
		assert_true(got <= want * (1 + 1.0 / HIST_SUB) + 1);
	}
	assert_int_equal(hist_percentile(&h, 100), 100000);
	assert_int_equal(h.min, 1);
	assert_int_equal(h.max, 100000);
}

/* Merging two histograms equals recording everything in one. */
static void test_hist_merge_equals_single(void **state)
{
	(void)state;
	static struct hist a, b, all;
	hist_init(&a);
	hist_init(&b);
	hist_init(&all);
	for (uint64_t v = 1; v < 5000000; v += 997) {
		hist_record(v % 2 ? &a : &b, v);
		hist_record(&all, v);
	}
	hist_merge(&a, &b);
	assert_int_equal(a.count, all.count);
	assert_int_equal(a.min, all.min);
	assert_int_equal(a.max, all.max);
	assert_memory_equal(a.bucket, all.bucket, sizeof(a.bucket));
	assert_int_equal(hist_percentile(&a, 99), hist_percentile(&all, 99));
}

/* Huge values go to the last bucket and report as the recorded max. */
static void test_hist_record_huge_value(void **state)
{
	(void)state;
	struct hist h;
	hist_init(&h);
	hist_record(&h, UINT64_MAX / 2);
	assert_int_equal(hist_bucket_of(UINT64_MAX), HIST_BUCKETS - 1);
	assert_int_equal(hist_percentile(&h, 50), UINT64_MAX / 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hist_percentile_empty),
	        cmocka_unit_test(test_hist_percentile_small_values_exact),
	        cmocka_unit_test(test_hist_bucket_of_bounds_value),
	        cmocka_unit_test(test_hist_percentile_uniform),
	        cmocka_unit_test(test_hist_merge_equals_single),
	        cmocka_unit_test(test_hist_record_huge_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
