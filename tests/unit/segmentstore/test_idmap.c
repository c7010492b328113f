/* Unit tests for segmentstore/idmap.c: put/get/del, growth, removal while
 * iterating, tombstone reuse, OOM. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "segmentstore/idmap.h"
#include "strata/error.h"
#include "tests/lib/oom.h"

static void *val(uint64_t k)
{
	return (void *)(uintptr_t)(k * 2 + 1);
}

/* Values put are found, replaced and removed; absent keys give NULL. */
static void test_idmap_put_get_del(void **state)
{
	(void)state;
	struct idmap m;
	idmap_init(&m);
	assert_null(idmap_get(&m, 5));
	assert_null(idmap_del(&m, 5));
	for (uint64_t k = 1; k <= 1000; k++) {
		assert_int_equal(idmap_put(&m, k, val(k)), 0);
	}
	assert_int_equal(m.count, 1000);
	for (uint64_t k = 1; k <= 1000; k++) {
		assert_ptr_equal(idmap_get(&m, k), val(k));
	}
	assert_null(idmap_get(&m, 1001));
	assert_int_equal(idmap_put(&m, 7, val(8)), 0);
	assert_ptr_equal(idmap_get(&m, 7), val(8));
	assert_int_equal(m.count, 1000);
	for (uint64_t k = 1; k <= 1000; k += 2) {
		assert_non_null(idmap_del(&m, k));
	}
	assert_int_equal(m.count, 500);
	for (uint64_t k = 1; k <= 1000; k++) {
		if (k % 2) {
			assert_null(idmap_get(&m, k));
		} else {
			assert_non_null(idmap_get(&m, k));
		}
	}
	idmap_close(&m);
}

/* Key 0, the tombstone key and NULL values are refused. */
static void test_idmap_put_rejects_bad_args(void **state)
{
	(void)state;
	struct idmap m;
	idmap_init(&m);
	assert_int_equal(idmap_put(&m, 0, val(1)), STRATA_EINVAL);
	assert_int_equal(idmap_put(&m, UINT64_MAX, val(1)), STRATA_EINVAL);
	assert_int_equal(idmap_put(&m, 1, NULL), STRATA_EINVAL);
	assert_int_equal(m.count, 0);
	idmap_close(&m);
}

/* Removing entries while iterating still visits every other entry once. */
static void test_idmap_next_with_removal(void **state)
{
	(void)state;
	struct idmap m;
	idmap_init(&m);
	for (uint64_t k = 1; k <= 300; k++) {
		assert_int_equal(idmap_put(&m, k, val(k)), 0);
	}
	int seen[301] = {0};
	size_t pos = 0;
	uint64_t k;
	void *v;
	while (idmap_next(&m, &pos, &k, &v)) {
		assert_ptr_equal(v, val(k));
		seen[k]++;
		if (k % 3 == 0) {
			idmap_del(&m, k);
		}
	}
	for (int i = 1; i <= 300; i++) {
		assert_int_equal(seen[i], 1);
	}
	assert_int_equal(m.count, 200);
	idmap_close(&m);
}

/* Churn (put/del cycles) reuses tombstones without growing forever. */
static void test_idmap_churn_bounded(void **state)
{
	(void)state;
	struct idmap m;
	idmap_init(&m);
	for (uint64_t k = 1; k <= 100000; k++) {
		assert_int_equal(idmap_put(&m, k, val(k)), 0);
		if (k > 10) {
			assert_non_null(idmap_del(&m, k - 10));
		}
	}
	assert_int_equal(m.count, 10);
	assert_true(m.cap <= 64);
	idmap_close(&m);
}

/* Out of memory while growing leaves the map unchanged. */
static void test_idmap_put_oom(void **state)
{
	(void)state;
	struct idmap m;
	idmap_init(&m);
	for (uint64_t k = 1; k <= 6; k++) {
		assert_int_equal(idmap_put(&m, k, val(k)), 0);
	}
	oom_install(1);
	int rv = idmap_put(&m, 7, val(7));
	oom_uninstall();
	assert_int_equal(rv, STRATA_ENOMEM);
	assert_int_equal(m.count, 6);
	assert_null(idmap_get(&m, 7));
	assert_ptr_equal(idmap_get(&m, 6), val(6));
	idmap_close(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_idmap_put_get_del),
	        cmocka_unit_test(test_idmap_put_rejects_bad_args),
	        cmocka_unit_test(test_idmap_next_with_removal),
	        cmocka_unit_test(test_idmap_churn_bounded),
	        cmocka_unit_test(test_idmap_put_oom),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
