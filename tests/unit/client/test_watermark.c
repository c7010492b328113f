/* Unit tests for client/watermark.c: whether a reader has passed a
 * watermark, and its time window among a stream's watermarks. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <setjmp.h>

#include <cmocka.h>

#include "client/watermark.h"

#define E(epoch, n) (((uint64_t)(epoch) << 32) | (n))

/* Two segments [0,.5) and [.5,1) of epoch 0; after a scale of the first,
 * E(1,2) [0,.25) and E(1,3) [.25,.5). */
static struct strata_watermark_position p1[] = {
        {E(0, 0), 100, 0.0, 0.5},
        {E(0, 1), 200, 0.5, 1.0},
};
static struct strata_watermark_position p2[] = {
        {E(0, 0), 300, 0.0, 0.5},
        {E(0, 1), 400, 0.5, 1.0},
};
static struct strata_watermark_position p3[] = {
        {E(0, 1), 500, 0.5, 1.0},
        {E(1, 2), 10, 0.0, 0.25},
        {E(1, 3), 20, 0.25, 0.5},
};
static struct strata_watermark ws[] = {
        {1, 1000, 1100, 0, 2, p1},
        {2, 2000, 2100, 0, 2, p2},
        {3, 3000, 3100, 0, 3, p3},
};

static void test_passed(void **state)
{
	(void)state;
	struct rg_pos both[] = {{0, E(0, 0), 100, 0.0, 0.5},
	                        {0, E(0, 1), 199, 0.5, 1.0}};
	assert_false(wm_passed(both, 2, &ws[0])); /* one segment short */
	both[1].offset = 200;
	assert_true(wm_passed(both, 2, &ws[0]));
	assert_false(wm_passed(both, 2, &ws[1]));
	assert_false(wm_passed(both, 0, &ws[0])); /* owns nothing */
	/* A reader of the left half only: the right half does not count. */
	struct rg_pos left[] = {{0, E(0, 0), 300, 0.0, 0.5}};
	assert_true(wm_passed(left, 1, &ws[1]));
	/* Still in the sealed predecessor: not past the successors. */
	assert_false(wm_passed(left, 1, &ws[2]));
	/* In a successor: past the predecessor's positions, judged on its
	 * own. */
	struct rg_pos succ[] = {{0, E(1, 2), 10, 0.0, 0.25}};
	assert_true(wm_passed(succ, 1, &ws[1]));
	assert_true(wm_passed(succ, 1, &ws[2]));
	succ[0].offset = 9;
	assert_false(wm_passed(succ, 1, &ws[2]));
}

static void test_window(void **state)
{
	(void)state;
	struct strata_time_window w;
	struct rg_pos r[] = {{0, E(0, 0), 0, 0.0, 0.5},
	                     {0, E(0, 1), 0, 0.5, 1.0}};
	wm_window(r, 2, ws, 3, &w);
	assert_false(w.has_lower);
	assert_true(w.has_upper);
	assert_int_equal(w.upper, 1100);
	r[0].offset = 150;
	r[1].offset = 250;
	wm_window(r, 2, ws, 3, &w);
	assert_true(w.has_lower && w.has_upper);
	assert_int_equal(w.lower, 1000);
	assert_int_equal(w.upper, 2100);
	/* Past the newest: no upper bound yet. */
	struct rg_pos late[] = {{0, E(0, 1), 600, 0.5, 1.0},
	                        {0, E(1, 2), 50, 0.0, 0.25},
	                        {0, E(1, 3), 50, 0.25, 0.5}};
	wm_window(late, 3, ws, 3, &w);
	assert_true(w.has_lower);
	assert_int_equal(w.lower, 3000);
	assert_false(w.has_upper);
	/* No watermarks, or nothing to read: nothing known. */
	wm_window(late, 3, ws, 0, &w);
	assert_false(w.has_lower || w.has_upper);
	wm_window(late, 0, ws, 3, &w);
	assert_false(w.has_lower || w.has_upper);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_passed),
	        cmocka_unit_test(test_window),
	};
	return cmocka_run_group_tests_name("client_watermark", tests, NULL,
	                                   NULL);
}
