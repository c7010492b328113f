/* Unit tests for the strata connector (plugins/connector/strata/): what
 * it checks before it talks to a cluster (its table, options, tokens).
 * Mirroring itself runs against two strata-standalone processes in
 * tests/integration/connect (scenario mirror). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "strata/connector.h"
#include "tests/lib/check.h"
#include "tests/lib/connector.h"

static const struct strata_connector_ops *ops;

static int load_plugin(void **state)
{
	(void)state;
	ops = test_connector_load("strata");
	return ops != NULL ? 0 : -1;
}

#define OK_CONFIG "controller=tcp://127.0.0.1:1\nstream=sc/st\n"

/* The table: a sink only, exactly once, two-phase (commit). */
static void test_strata_table(void **unused)
{
	(void)unused;
	test_connector_assert_table(ops, "strata", false, 0, true,
	                            STRATA_CONNECTOR_SINK_EXACTLY_ONCE, true);
}

static void test_strata_sink_options(void **unused)
{
	(void)unused;
	void *s = NULL;
	char err[STRATA_ERRMSG_SIZE] = "";
	static const char *const bad[] = {
	        "stream=sc/st\n",
	        "controller=tcp://127.0.0.1:1\n",
	        "controller=tcp://127.0.0.1:1\nstream=nostream\n",
	        "controller=tcp://127.0.0.1:1\nstream=/st\n",
	        OK_CONFIG "lease_ms=10\n",
	        OK_CONFIG "lease_ms=9000000\n",
	        OK_CONFIG "colour=red\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ops->sink_open(&test_connector_host, bad[i],
		                                NULL, &s, err),
		                 STRATA_ECONFIG);
	}
	assert_contains(err, "colour");
}

static void test_strata_sink_tokens(void **unused)
{
	(void)unused;
	void *s = NULL;
	char err[STRATA_ERRMSG_SIZE] = "";
	static const char *const bad[] = {"",      "txn=",    "txn=1,",
	                                  "txn=x", "txn=0",   "txns=1",
	                                  "none,", "txn=1,,2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ops->sink_open(&test_connector_host, OK_CONFIG,
		                                bad[i], &s, err),
		                 STRATA_EINVAL);
		assert_contains(err, "is not");
	}
	/* 33 ids: more than a sink ever has pending. */
	char many[512] = "txn=1";
	for (int i = 2; i <= 33; i++) {
		size_t l = strlen(many);
		snprintf(many + l, sizeof(many) - l, ",%d", i);
	}
	assert_int_equal(
	        ops->sink_open(&test_connector_host, OK_CONFIG, many, &s, err),
	        STRATA_EINVAL);
	/* "none" restores nothing: no call to the cluster, the open works
	 * (the client connects on demand). */
	assert_int_equal(ops->sink_open(&test_connector_host, OK_CONFIG, "none",
	                                &s, err),
	                 0);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->sink_prepare(s, tok, sizeof(tok), err), 0);
	assert_string_equal(tok, "none"); /* nothing written */
	assert_int_equal(ops->sink_commit(s, "none", err), 0);
	ops->sink_close(s);
	/* Several controller URLs, as everywhere else. */
	assert_int_equal(ops->sink_open(&test_connector_host,
	                                "controller=tcp://127.0.0.1:1,"
	                                "tcp://127.0.0.1:2\nstream=a/b\n",
	                                NULL, &s, err),
	                 0);
	ops->sink_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_strata_table),
	        cmocka_unit_test(test_strata_sink_options),
	        cmocka_unit_test(test_strata_sink_tokens),
	};
	return cmocka_run_group_tests(tests, load_plugin,
	                              test_connector_unload);
}
