/* Unit tests for connect/connector.c: loading connector plugins (the real
 * file and stdio plugins from $STRATA_PLUGIN_DIR, broken ones built
 * beside this test). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "connect/connector.h"
#include "strata/error.h"

/* The ABI's layout (x86-64 / LP64): appending moves nothing here. */
#define AT(f, off)                                                        \
	_Static_assert(offsetof(struct strata_connector_ops, f) == (off), \
	               "connector ABI moved " #f)
AT(abi_version, 0);
AT(reserved, 4);
AT(name, 8);
AT(source_flags, 16);
AT(source_open, 24);
AT(source_poll, 32);
AT(source_position, 40);
AT(source_close, 48);
AT(sink_flags, 56);
AT(sink_open, 64);
AT(sink_write, 72);
AT(sink_prepare, 80);
AT(sink_commit, 88);
AT(sink_close, 96);
AT(check, 104); /* ABI 2 */
#undef AT
_Static_assert(sizeof(struct strata_connector_ops) == 112,
               "connector ABI 2 size");
_Static_assert(offsetof(struct strata_connector_record, data) == 16 &&
                       sizeof(struct strata_connector_record) == 32,
               "connector record layout");

static void test_connector_load_file(void **unused)
{
	(void)unused;
	struct connector *c = NULL;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(connector_load("file", NULL, &c, err), 0);
	assert_string_equal(c->ops.name, "file");
	assert_non_null(c->ops.source_open);
	assert_non_null(c->ops.sink_prepare);
	assert_non_null(c->ops.check); /* ABI 2 */
	assert_true(c->ops.source_flags & STRATA_CONNECTOR_SOURCE_REPLAYABLE);
	assert_true(c->ops.sink_flags & STRATA_CONNECTOR_SINK_EXACTLY_ONCE);
	assert_ptr_equal(c->host.host_data, c);
	assert_non_null(strstr(c->path, "connector-file.so"));
	connector_unload(c);
}

static void test_connector_load_stdio(void **unused)
{
	(void)unused;
	struct connector *c = NULL;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(connector_load("stdio", NULL, &c, err), 0);
	assert_false(c->ops.source_flags & STRATA_CONNECTOR_SOURCE_REPLAYABLE);
	assert_false(c->ops.sink_flags & STRATA_CONNECTOR_SINK_EXACTLY_ONCE);
	connector_unload(c);
}

static void test_connector_load_bad_name(void **unused)
{
	(void)unused;
	struct connector *c = NULL;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(connector_load("Fi le", NULL, &c, err),
	                 STRATA_EBADNAME);
	assert_non_null(strstr(err, "Fi le"));
	assert_int_equal(connector_load("", NULL, &c, err), STRATA_EBADNAME);
	assert_null(c);
}

static void test_connector_load_missing(void **unused)
{
	(void)unused;
	struct connector *c = NULL;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(connector_load("nosuch", NULL, &c, err),
	                 STRATA_EPLUGIN);
	assert_non_null(strstr(err, "connector-nosuch.so"));
	assert_non_null(strstr(err, "STRATA_PLUGIN_DIR"));
	assert_null(c);
}

/* A shared object that is not a connector (a codec plugin). */
static void test_connector_load_not_a_connector(void **unused)
{
	(void)unused;
	char path[4096];
	snprintf(path, sizeof(path), "%s/codec-zstd.so",
	         getenv("STRATA_PLUGIN_DIR"));
	struct connector *c = NULL;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(connector_load(path, NULL, &c, err), STRATA_EPLUGIN);
	assert_non_null(strstr(err, "not a Strata connector plugin"));
}

static void test_connector_load_bad_abi(void **unused)
{
	(void)unused;
	struct connector *c = NULL;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(connector_load("badabi", BAD_PLUGIN_DIR, &c, err),
	                 STRATA_EABI);
	assert_non_null(strstr(err, "rebuild"));
}

static void test_connector_load_incomplete_sink(void **unused)
{
	(void)unused;
	struct connector *c = NULL;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(connector_load("halfsink", BAD_PLUGIN_DIR, &c, err),
	                 STRATA_EPLUGIN);
	assert_non_null(strstr(err, "prepare"));
}

/* A plugin built for ABI 1 loads; fields after its table (check) read
 * as NULL whatever its memory holds there. */
static void test_connector_load_abi1(void **unused)
{
	(void)unused;
	struct connector *c = NULL;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(connector_load("v1", BAD_PLUGIN_DIR, &c, err), 0);
	assert_non_null(c->ops.sink_prepare);
	assert_null(c->ops.check);
	connector_unload(c);
}

static void test_connector_fail_prefixes(void **unused)
{
	(void)unused;
	struct connector *c = NULL;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(connector_load("file", NULL, &c, err), 0);
	assert_int_equal(connector_fail(c, "open sink", STRATA_EIO,
	                                "open /x: denied", err),
	                 STRATA_EIO);
	assert_string_equal(err, "open sink file: open /x: denied");
	connector_fail(c, "read source", STRATA_EIO, "", err);
	assert_string_equal(err, "read source file: input/output error");
	connector_unload(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_connector_load_file),
	        cmocka_unit_test(test_connector_load_stdio),
	        cmocka_unit_test(test_connector_load_bad_name),
	        cmocka_unit_test(test_connector_load_missing),
	        cmocka_unit_test(test_connector_load_not_a_connector),
	        cmocka_unit_test(test_connector_load_bad_abi),
	        cmocka_unit_test(test_connector_load_incomplete_sink),
	        cmocka_unit_test(test_connector_load_abi1),
	        cmocka_unit_test(test_connector_fail_prefixes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
