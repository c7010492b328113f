/* Unit tests for controller/names.c: names, configs, segment names, hash. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "controller/fsm_int.h"

static struct cfsm_result res;

/* Valid names pass; bad characters, lengths and reserved names fail. */
static void test_names_check_accepts_and_rejects(void **state)
{
	(void)state;
	char long_name[300];
	memset(long_name, 'a', sizeof(long_name));
	long_name[255] = '\0';
	assert_int_equal(names_check("my-stream.v1", "stream", false, &res), 0);
	assert_int_equal(names_check(long_name, "stream", false, &res), 0);
	long_name[255] = 'a';
	long_name[256] = '\0';
	assert_int_equal(names_check(long_name, "stream", false, &res),
	                 STRATA_EBADNAME);
	assert_int_equal(names_check("", "scope", false, &res),
	                 STRATA_EBADNAME);
	assert_int_equal(names_check("a/b", "scope", false, &res),
	                 STRATA_EBADNAME);
	assert_non_null(strstr(res.message, "0x2f"));
	assert_int_equal(names_check("a_b", "scope", true, &res),
	                 STRATA_EBADNAME);
	assert_int_equal(names_check("..", "scope", true, &res),
	                 STRATA_EBADNAME);
	assert_int_equal(names_check("_sys", "scope", false, &res),
	                 STRATA_EBADNAME);
	assert_non_null(strstr(res.message, "reserved for internal"));
	assert_int_equal(names_check("_sys", "scope", true, &res), 0);
}

/* Scaling and retention policies and tags are range-checked. */
static void test_names_check_config_ranges(void **state)
{
	(void)state;
	Strata__V1__FixedScaling fx = STRATA__V1__FIXED_SCALING__INIT;
	Strata__V1__RateScaling rt = STRATA__V1__RATE_SCALING__INIT;
	Strata__V1__ScalingPolicy sp = STRATA__V1__SCALING_POLICY__INIT;
	Strata__V1__RetentionBound rb = STRATA__V1__RETENTION_BOUND__INIT;
	Strata__V1__RetentionPolicy rp = STRATA__V1__RETENTION_POLICY__INIT;
	Strata__V1__StreamConfig cfg = STRATA__V1__STREAM_CONFIG__INIT;
	assert_int_equal(names_check_config(&cfg, &res), STRATA_EINVAL);
	cfg.scaling = &sp;
	assert_int_equal(names_check_config(&cfg, &res), STRATA_EINVAL);
	sp.policy_case = STRATA__V1__SCALING_POLICY__POLICY_FIXED;
	sp.fixed = &fx;
	assert_int_equal(names_check_config(&cfg, &res), STRATA_EINVAL);
	fx.min_segments = 2;
	assert_int_equal(names_check_config(&cfg, &res), 0);
	assert_int_equal(names_min_segments(&sp), 2);
	sp.policy_case = STRATA__V1__SCALING_POLICY__POLICY_BY_DATA_RATE;
	sp.by_data_rate = &rt;
	assert_int_equal(names_check_config(&cfg, &res), STRATA_EINVAL);
	rt.target = 100;
	rt.scale_factor = 2;
	rt.min_segments = 3;
	assert_int_equal(names_check_config(&cfg, &res), 0);
	cfg.retention = &rp;
	rp.policy_case = STRATA__V1__RETENTION_POLICY__POLICY_BY_SIZE;
	rp.by_size = &rb;
	rb.min = 10;
	rb.max = 5;
	assert_int_equal(names_check_config(&cfg, &res), STRATA_EINVAL);
	rb.max = 0;
	assert_int_equal(names_check_config(&cfg, &res), 0);
	char *tags[] = {"ok", ""};
	cfg.tags = tags;
	cfg.n_tags = 2;
	assert_int_equal(names_check_config(&cfg, &res), STRATA_EINVAL);
}

/* Qualified names follow Pravega's "<scope>/<stream>/<n>.#epoch.<e>". */
static void test_names_segment_name_format(void **state)
{
	(void)state;
	char buf[128];
	names_segment_name(buf, sizeof(buf), "sc", "st", SEG_ID(3, 7));
	assert_string_equal(buf, "sc/st/7.#epoch.3");
}

/* FNV-1a 64 matches the published test vectors; containers are stable
 * and in range. */
static void test_names_fnv1a_and_container(void **state)
{
	(void)state;
	assert_true(names_fnv1a("", 0) == 0xcbf29ce484222325ull);
	assert_true(names_fnv1a("a", 1) == 0xaf63dc4c8601ec8cull);
	assert_true(names_fnv1a("foobar", 6) == 0x85944171f73967e8ull);
	uint64_t h = names_fnv1a("sc/st/7.#epoch.3", 16);
	assert_int_equal(names_segment_container(13, "sc", "st", SEG_ID(3, 7)),
	                 (uint32_t)(h % 13));
	for (uint32_t i = 0; i < 100; i++) {
		assert_true(names_segment_container(7, "s", "t", i) < 7);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_names_check_accepts_and_rejects),
	        cmocka_unit_test(test_names_check_config_ranges),
	        cmocka_unit_test(test_names_segment_name_format),
	        cmocka_unit_test(test_names_fnv1a_and_container),
	};
	return cmocka_run_group_tests_name("controller_names", tests, NULL,
	                                   NULL);
}
