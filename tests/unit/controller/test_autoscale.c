/* Unit tests for controller/autoscale.c: rate averages from counter
 * samples, splits of hot segments, merges of cold neighbours, the
 * cooldown, restarted counters and the minimum segment count. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <setjmp.h>

#include <cmocka.h>

#include "controller/autoscale.h"

static const struct autoscale_config cfg = {.unit_ms = 1000,
                                            .cooldown_ms = 5000};

/* Passes every 100 ms from t0 to t1 (exclusive) with a counter growing
 * by rate/s from *count; returns true and *out on the first decision. */
static bool run(struct autoscale *a, struct autoscale_segment *segs, size_t n,
                double rate, uint64_t *t, uint64_t until, uint32_t factor,
                uint32_t min, struct autoscale_scale *out)
{
	double carry[8] = {0};
	for (; *t < until; *t += 100) {
		for (size_t i = 0; i < n && i < 8; i++) {
			carry[i] += rate / 10;
			segs[i].count += (uint64_t)carry[i];
			carry[i] -= (double)(uint64_t)carry[i];
		}
		if (autoscale_pass(a, "sc", "s", segs, n, 10.0, factor, min, *t,
		                   out)) {
			autoscale_scaled(a, "sc", "s", *t);
			return true;
		}
	}
	return false;
}

/* 1000 events/s against a target of 10: split once the segment has been
 * seen for 2 units, into the factor's 4 ranges; then nothing for the
 * cooldown. */
static void test_autoscale_split(void **state)
{
	(void)state;
	struct autoscale *a = autoscale_new(&cfg);
	assert_non_null(a);
	struct autoscale_segment seg = {.id = 7, .low = 0.5, .high = 1.0};
	struct autoscale_scale sc;
	uint64_t t = 1000;
	assert_true(run(a, &seg, 1, 1000, &t, 5000, 4, 1, &sc));
	assert_int_equal(t, 3000); /* warm: seen since 1000 */
	assert_int_equal(sc.n_seal, 1);
	assert_int_equal(sc.seal[0], 7);
	assert_int_equal(sc.n_bounds, 5);
	assert_true(sc.bounds[0] == 0.5 && sc.bounds[4] == 1.0);
	assert_true(sc.bounds[2] == 0.75);
	assert_true(sc.rate > 900 && sc.rate < 1100);
	/* The successors, just as hot: not before the cooldown. */
	struct autoscale_segment next[4];
	for (int i = 0; i < 4; i++) {
		next[i] = (struct autoscale_segment){.id = 100 + (uint64_t)i,
		                                     .low = sc.bounds[i],
		                                     .high = sc.bounds[i + 1]};
	}
	t += 100;
	assert_false(run(a, next, 4, 1000, &t, 3000 + 5000, 4, 1, &sc));
	assert_true(run(a, next, 4, 1000, &t, 3000 + 6000, 4, 1, &sc));
	assert_int_equal(t, 3000 + 5000); /* the cooldown's end */
	autoscale_free(a);

	/* A scale that could not be made (not reported with
	 * autoscale_scaled) is asked for again at the next pass. */
	a = autoscale_new(&cfg);
	struct autoscale_segment hot = {.id = 9, .low = 0, .high = 1};
	for (t = 0; t <= 2000; t += 100) {
		hot.count += 100;
		bool want = autoscale_pass(a, "sc", "s", &hot, 1, 10.0, 2, 1, t,
		                           &sc);
		assert_true(want == (t >= 2000));
	}
	hot.count += 100;
	assert_true(autoscale_pass(a, "sc", "s", &hot, 1, 10.0, 2, 1, t, &sc));
	autoscale_free(a);
}

/* A mild excess splits only once the longer averages pass 2x / 1x the
 * target: 15/s (1.5x) needs the 10-unit average over 10, which a fresh
 * segment starts at; factor 1 still splits in two. */
static void test_autoscale_thresholds(void **state)
{
	(void)state;
	struct autoscale *a = autoscale_new(&cfg);
	struct autoscale_segment seg = {.id = 1, .low = 0, .high = 1};
	struct autoscale_scale sc;
	uint64_t t = 0;
	assert_true(run(a, &seg, 1, 15, &t, 5000, 1, 1, &sc));
	assert_int_equal(t, 2000);
	assert_int_equal(sc.n_bounds, 3);
	autoscale_free(a);
	/* 8/s (under the target): never. */
	a = autoscale_new(&cfg);
	t = 0;
	assert_false(run(a, &seg, 1, 8, &t, 60000, 4, 1, &sc));
	autoscale_free(a);
}

/* Idle neighbours merge (the coolest pair); never below the minimum;
 * a segment that still carries a recent burst does not count as cold
 * until its 20-unit average fell under half the target. */
static void test_autoscale_merge(void **state)
{
	(void)state;
	struct autoscale *a = autoscale_new(&cfg);
	struct autoscale_segment segs[3] = {{.id = 1, .low = 0, .high = 0.25},
	                                    {.id = 2, .low = 0.25, .high = 0.5},
	                                    {.id = 3, .low = 0.5, .high = 1}};
	struct autoscale_scale sc;
	uint64_t t = 0;
	assert_true(run(a, segs, 3, 0, &t, 5000, 2, 1, &sc));
	assert_int_equal(sc.n_seal, 2);
	assert_int_equal(sc.seal[0], 1);
	assert_int_equal(sc.seal[1], 2);
	assert_true(sc.bounds[0] == 0 && sc.bounds[1] == 0.5);
	autoscale_free(a);

	a = autoscale_new(&cfg);
	t = 0;
	assert_false(run(a, segs, 2, 0, &t, 20000, 2, 2, &sc)); /* minimum */
	autoscale_free(a);

	/* 9/s for a while (under the target, over half of it), then
	 * nothing: the merge waits for the 20-unit average. */
	a = autoscale_new(&cfg);
	t = 0;
	assert_false(run(a, segs, 2, 9, &t, 30000, 2, 1, &sc));
	uint64_t quiet = t;
	assert_true(run(a, segs, 2, 0, &t, quiet + 60000, 2, 1, &sc));
	assert_true(t - quiet > 2000); /* 20 units x ln(9/5) ~ 11.8 s */
	assert_true(t - quiet < 20000);
	autoscale_free(a);
}

/* A counter that goes down (the store restarted) starts over instead of
 * making a huge or negative rate; forgotten streams start over too. */
static void test_autoscale_counter_reset_and_prune(void **state)
{
	(void)state;
	struct autoscale *a = autoscale_new(&cfg);
	struct autoscale_segment seg = {
	        .id = 1, .low = 0, .high = 1, .count = 1000000};
	struct autoscale_scale sc;
	assert_false(autoscale_pass(a, "sc", "s", &seg, 1, 10, 2, 1, 0, &sc));
	seg.count = 5; /* restarted */
	assert_false(autoscale_pass(a, "sc", "s", &seg, 1, 10, 2, 1, 100, &sc));
	seg.count = 6;
	assert_false(autoscale_pass(a, "sc", "s", &seg, 1, 10, 2, 1, 200, &sc));
	autoscale_prune(a, 100000, 1000);
	seg.count = 1000000; /* a new baseline, no rate from the gap */
	assert_false(
	        autoscale_pass(a, "sc", "s", &seg, 1, 10, 2, 1, 100100, &sc));
	autoscale_free(a);
}

/* The driver reads its clock, runs the passes (a little later), then
 * prunes with that clock: a stream just passed must keep its history, or
 * no segment ever warms up and nothing is decided. */
static void test_autoscale_prune_after_a_later_pass(void **state)
{
	(void)state;
	struct autoscale *a = autoscale_new(&cfg);
	struct autoscale_segment seg = {.id = 1, .low = 0, .high = 1};
	struct autoscale_scale sc;
	bool split = false;
	for (uint64_t now = 0; now < 5000 && !split; now += 100) {
		seg.count += 100; /* 1,000 events/s against a target of 10 */
		split = autoscale_pass(a, "sc", "s", &seg, 1, 10, 2, 1, now + 7,
		                       &sc);
		autoscale_prune(a, now, 1000);
	}
	assert_true(split);
	assert_int_equal(sc.n_seal, 1);
	autoscale_free(a);
}

/* A new leader learns of its predecessor's scale from the replicated
 * state (autoscale_scaled_at_least): its hot segment waits for the end
 * of that cooldown, not only for its own warm-up; an older time never
 * moves the last scale back. */
static void test_autoscale_cooldown_from_state(void **state)
{
	(void)state;
	struct autoscale *a = autoscale_new(&cfg);
	assert_non_null(a);
	struct autoscale_segment seg = {.id = 7, .low = 0, .high = 1};
	struct autoscale_scale sc;
	uint64_t t = 1000;
	autoscale_scaled_at_least(a, "sc", "s", 900); /* scaled at 900 */
	autoscale_scaled_at_least(a, "sc", "s", 100); /* older: ignored */
	assert_true(run(a, &seg, 1, 1000, &t, 9000, 4, 1, &sc));
	assert_int_equal(t, 900 + 5000); /* not 3000, the warm-up's end */
	autoscale_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_autoscale_split),
	        cmocka_unit_test(test_autoscale_cooldown_from_state),
	        cmocka_unit_test(test_autoscale_thresholds),
	        cmocka_unit_test(test_autoscale_merge),
	        cmocka_unit_test(test_autoscale_counter_reset_and_prune),
	        cmocka_unit_test(test_autoscale_prune_after_a_later_pass),
	};
	return cmocka_run_group_tests_name("controller_autoscale", tests, NULL,
	                                   NULL);
}
