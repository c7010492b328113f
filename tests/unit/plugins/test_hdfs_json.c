/* Unit tests for the hdfs plugin's JSON reader (plugins/tier2/hdfs). */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "plugins/tier2/hdfs/hdfs_json.h"
#include "strata/error.h"
#include "tests/lib/oom.h"

static const struct hdfs_json_alloc alloc = {strata_malloc, strata_free};
static char err[STRATA_ERRMSG_SIZE];

static struct hdfs_json *parse_ok(const char *text)
{
	struct hdfs_json *v = NULL;
	int rc = hdfs_json_parse(text, strlen(text), &alloc, &v, err);
	if (rc != 0) {
		fail_msg("parse %s: %s", text, err);
	}
	return v;
}

static int parse_rc(const char *text)
{
	struct hdfs_json *v = NULL;
	int rc = hdfs_json_parse(text, strlen(text), &alloc, &v, err);
	hdfs_json_free(v, &alloc);
	return rc;
}

/* The spec's FileStatus example parses into the fields the plugin reads. */
static void test_hdfs_json_parse_file_status(void **state)
{
	(void)state;
	struct hdfs_json *v = parse_ok(
	        "{\"FileStatus\":{\"accessTime\":0,\"blockSize\":0,"
	        "\"group\":\"supergroup\",\"length\":9007199254740993,"
	        "\"modificationTime\":1320173277227,\"owner\":\"webuser\","
	        "\"pathSuffix\":\"\",\"permission\":\"777\",\"replication\":0,"
	        "\"snapshotEnabled\":true,\"type\":\"DIRECTORY\","
	        "\"ratio\":-1.5e3,\"acl\":null,\"list\":[1,[2,{}],\"x\"]}}");
	const struct hdfs_json *fs = hdfs_json_get(v, "FileStatus");
	int64_t n = 0;
	assert_true(hdfs_json_int(hdfs_json_get(fs, "length"), &n));
	assert_int_equal(n, 9007199254740993LL);
	assert_true(hdfs_json_int(hdfs_json_get(fs, "modificationTime"), &n));
	assert_int_equal(n, 1320173277227LL);
	assert_string_equal(hdfs_json_str(hdfs_json_get(fs, "type")),
	                    "DIRECTORY");
	assert_true(hdfs_json_get(fs, "snapshotEnabled")->boolean);
	assert_false(hdfs_json_int(hdfs_json_get(fs, "ratio"), &n));
	assert_int_equal(hdfs_json_get(fs, "acl")->type, HDFS_JSON_NULL);
	assert_null(hdfs_json_get(fs, "missing"));
	assert_null(hdfs_json_str(hdfs_json_get(fs, "length")));
	hdfs_json_free(v, &alloc);
}

/* String escapes decode to UTF-8, surrogate pairs included. */
static void test_hdfs_json_parse_string_escapes(void **state)
{
	(void)state;
	struct hdfs_json *v = parse_ok(
	        "{\"m\":\"a\\\"b\\\\c\\/d\\n\\u00e9\\u20ac\\ud83d\\ude00\"}");
	assert_string_equal(hdfs_json_str(hdfs_json_get(v, "m")),
	                    "a\"b\\c/d\n\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	hdfs_json_free(v, &alloc);
}

/* Malformed, truncated, trailing and too deep input is STRATA_EPROTO. */
static void test_hdfs_json_parse_rejects_malformed(void **state)
{
	(void)state;
	const char *bad[] = {
	        "",      "{",           "{\"a\"}",     "{\"a\":1,}", "[1 2]",
	        "\"abc", "\"\\x\"",     "\"\\ud800\"", "\"\\u00\"",  "01",
	        "1.",    "-",           "tru",         "{} x",       "\"a\nb\"",
	        "{1:2}", "\"\\u0000\"", "[1,]",        "nul",        "\"\\",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_rc(bad[i]) != STRATA_EPROTO) {
			fail_msg("accepted '%s'", bad[i]);
		}
	}
	assert_non_null(strstr(err, "malformed JSON at byte"));
	char deep[200];
	memset(deep, '[', 40);
	memset(deep + 40, ']', 40);
	deep[80] = '\0';
	assert_int_equal(parse_rc(deep), STRATA_EPROTO);
	assert_non_null(strstr(err, "nested deeper than 32"));
	deep[HDFS_JSON_MAX_DEPTH + 1] = '\0';
	memset(deep, '[', HDFS_JSON_MAX_DEPTH + 1);
	memset(deep + HDFS_JSON_MAX_DEPTH + 1, ']', HDFS_JSON_MAX_DEPTH + 1);
	deep[2 * HDFS_JSON_MAX_DEPTH + 2] = '\0';
	assert_int_equal(parse_rc(deep), 0);
	/* Not NUL-terminated: only len bytes are read. */
	struct hdfs_json *v = NULL;
	assert_int_equal(
	        hdfs_json_parse("{\"a\":12}garbage", 8, &alloc, &v, err), 0);
	int64_t n = 0;
	assert_true(hdfs_json_int(hdfs_json_get(v, "a"), &n));
	assert_int_equal(n, 12);
	hdfs_json_free(v, &alloc);
}

/* Integers beyond int64 are numbers but not integers. */
static void test_hdfs_json_parse_int_limits(void **state)
{
	(void)state;
	struct hdfs_json *v = parse_ok("[9223372036854775807,"
	                               "-9223372036854775808,"
	                               "9223372036854775808,"
	                               "99999999999999999999999]");
	int64_t n = 0;
	const struct hdfs_json *e = v->child;
	assert_true(hdfs_json_int(e, &n));
	assert_int_equal(n, INT64_MAX);
	assert_true(hdfs_json_int(e->next, &n));
	assert_int_equal(n, INT64_MIN);
	assert_false(hdfs_json_int(e->next->next, &n));
	assert_false(hdfs_json_int(e->next->next->next, &n));
	hdfs_json_free(v, &alloc);
}

/* Out of memory at any allocation is STRATA_ENOMEM without leaks. */
static void test_hdfs_json_parse_oom(void **state)
{
	(void)state;
	const char *text = "{\"RemoteException\":{\"exception\":"
	                   "\"FileNotFoundException\",\"message\":\"x\","
	                   "\"list\":[1,2,{\"k\":\"v\"}]}}";
	int rc = -1;
	long n;
	for (n = 1; rc != 0; n++) {
		struct hdfs_json *v = NULL;
		oom_install(n);
		rc = hdfs_json_parse(text, strlen(text), &alloc, &v, err);
		oom_uninstall();
		if (rc != 0) {
			assert_int_equal(rc, STRATA_ENOMEM);
			assert_null(v);
		}
		hdfs_json_free(v, &alloc);
	}
	assert_true(n > 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hdfs_json_parse_file_status),
	        cmocka_unit_test(test_hdfs_json_parse_string_escapes),
	        cmocka_unit_test(test_hdfs_json_parse_rejects_malformed),
	        cmocka_unit_test(test_hdfs_json_parse_int_limits),
	        cmocka_unit_test(test_hdfs_json_parse_oom),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
