/* Unit tests for client/streamcut.c: the stream cut text form. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "strata/client.h"
#include "tests/lib/oom.h"

/* Format then parse gives the same cut, positions sorted by id. */
static void test_stream_cut_format_roundtrip(void **state)
{
	(void)state;
	struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
	struct strata_segment_position pos[2] = {
	        {(1ull << 32) | 3, 0},
	        {0, 1024},
	};
	char buf[128];
	char err[STRATA_ERRMSG_SIZE];
	strcpy(cut.scope, "shop");
	strcpy(cut.stream, "orders");
	cut.n = 2;
	cut.positions = pos;
	size_t n = strata_stream_cut_format(&cut, buf, sizeof(buf));
	assert_string_equal(buf, "shop/orders:0.0=1024,3.1=0");
	assert_int_equal(n, strlen(buf));
	struct strata_stream_cut back = STRATA_STREAM_CUT_INIT;
	assert_int_equal(strata_stream_cut_parse(buf, &back, err), 0);
	assert_string_equal(back.scope, "shop");
	assert_string_equal(back.stream, "orders");
	assert_int_equal(back.n, 2);
	assert_int_equal(back.positions[0].segment_id, 0);
	assert_int_equal(back.positions[0].offset, 1024);
	assert_int_equal(back.positions[1].segment_id, (1ull << 32) | 3);
	struct strata_stream_cut copy = STRATA_STREAM_CUT_INIT;
	assert_int_equal(strata_stream_cut_copy(&copy, &back), 0);
	assert_int_equal(copy.n, 2);
	strata_stream_cut_clear(&back);
	strata_stream_cut_clear(&copy);
	assert_int_equal(back.n, 0);
}

/* A short buffer is truncated and NUL-terminated; the full length is
 * returned; the empty cut has only the prefix. */
static void test_stream_cut_format_truncates(void **state)
{
	(void)state;
	struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
	struct strata_segment_position pos[1] = {{5, 77}};
	char buf[8];
	strcpy(cut.scope, "a");
	strcpy(cut.stream, "b");
	assert_int_equal(strata_stream_cut_format(&cut, buf, sizeof(buf)), 4);
	assert_string_equal(buf, "a/b:");
	cut.n = 1;
	cut.positions = pos;
	assert_int_equal(strata_stream_cut_format(&cut, buf, sizeof(buf)), 10);
	assert_string_equal(buf, "a/b:5.0");
}

/* The empty cut parses to n == 0. */
static void test_stream_cut_parse_empty(void **state)
{
	(void)state;
	struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(strata_stream_cut_parse("s/t:", &cut, err), 0);
	assert_int_equal(cut.n, 0);
	assert_string_equal(cut.stream, "t");
}

/* Malformed text is rejected with EINVAL and a message naming the
 * problem. */
static void test_stream_cut_parse_rejects_malformed(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		const char *needle;
	} bad[] = {
	        {"", "prefix"},
	        {"orders", "prefix"},
	        {"s:0.0=1", "prefix"},
	        {"/t:0.0=1", "1-255"},
	        {"s/t:0.0", "'='"},
	        {"s/t:0=1", "'.'"},
	        {"s/t:x.0=1", "segment number"},
	        {"s/t:0.0=-1", "offset"},
	        {"s/t:0.0=1,", "segment number"},
	        {"s/t:0.0=1,0.0=2", "twice"},
	        {"s/t:0.0=1 ", "unexpected"},
	        {"s/t:01.0=1", "segment number"},
	        {"s/t:4294967296.0=1", "segment number"},
	        {"s/t:0.0=9223372036854775808", "offset"},
	        {"s/t:0.0=1;1.0=2", "unexpected"},
	        {"s?/t:0.0=1", "invalid character"},
	};
	char err[STRATA_ERRMSG_SIZE];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
		err[0] = '\0';
		int rc = strata_stream_cut_parse(bad[i].text, &cut, err);
		if (rc != STRATA_EINVAL || strstr(err, bad[i].needle) == NULL) {
			fail_msg("\"%s\": rc %d, message \"%s\"", bad[i].text,
			         rc, err);
		}
		assert_int_equal(cut.n, 0);
		assert_null(cut.positions);
	}
	struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
	assert_int_equal(strata_stream_cut_parse(NULL, &cut, err),
	                 STRATA_EINVAL);
}

/* Out of memory at every allocation: ENOMEM, nothing leaked, the cut
 * left empty; then success. */
static void test_stream_cut_parse_oom(void **state)
{
	(void)state;
	char err[STRATA_ERRMSG_SIZE];
	char text[512] = "s/t:";
	for (int i = 0; i < 20; i++) {
		char one[32];
		snprintf(one, sizeof(one), "%s%d.0=%d", i ? "," : "", i, i);
		strcat(text, one);
	}
	for (long n = 1;; n++) {
		struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
		oom_install(n);
		int rc = strata_stream_cut_parse(text, &cut, err);
		oom_uninstall();
		if (rc == 0) {
			assert_int_equal(cut.n, 20);
			strata_stream_cut_clear(&cut);
			break;
		}
		assert_int_equal(rc, STRATA_ENOMEM);
		assert_null(cut.positions);
		assert_true(n < 100);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stream_cut_format_roundtrip),
	        cmocka_unit_test(test_stream_cut_format_truncates),
	        cmocka_unit_test(test_stream_cut_parse_empty),
	        cmocka_unit_test(test_stream_cut_parse_rejects_malformed),
	        cmocka_unit_test(test_stream_cut_parse_oom),
	};
	return cmocka_run_group_tests_name("streamcut", tests, NULL, NULL);
}
