/* Unit tests for plugins/tier2/faulty, and through it the host's error
 * paths for every op. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/plugin.h"
#include "tests/lib/check.h"
#include "tests/lib/oom.h"

static char err[STRATA_ERRMSG_SIZE];

static struct tier2 *open_faulty(const char *config)
{
	struct tier2 *t = NULL;
	int rc = tier2_load_open("faulty", NULL, config, &t, err);
	if (rc != 0) {
		fail_msg("open faulty (%s): %s", config, err);
	}
	return t;
}

static int open_rc(const char *config)
{
	struct tier2 *t = NULL;
	int rc = tier2_load_open("faulty", NULL, config, &t, err);
	tier2_close(t);
	return rc;
}

/* parent is required. */
static void test_faulty_open_requires_parent(void **state)
{
	(void)state;
	assert_int_equal(open_rc("fail_nth=1"), STRATA_ECONFIG);
	assert_string_equal(err, "faulty: config: parent is required (the "
	                         "plugin to wrap, e.g. parent=mem)");
}

/* Bad values and unknown keys are STRATA_ECONFIG naming the line. */
static void test_faulty_open_bad_config(void **state)
{
	(void)state;
	static const char *const bad[] = {
	        "parent=mem\nfail_op=rename",
	        "parent=mem\nfail_nth=-1",
	        "parent=mem\nfail_nth=x",
	        "parent=mem\nfail_count=-2",
	        "parent=mem\nfail_code=EOK",
	        "parent=mem\nfail_code=OK",
	        "parent=mem\nfail_when=now",
	        "parent=mem\ndelay_ms=-5",
	        "parent=mem\nfail_file=",
	        "parent=mem\nparent.=1",
	        "parent=",
	        "parent=mem\njunk",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (open_rc(bad[i]) != STRATA_ECONFIG) {
			fail_msg("accepted: %s", bad[i]);
		}
		const char *line = strrchr(bad[i], '\n');
		line = line != NULL ? line + 1 : bad[i];
		assert_contains(err, line);
	}
	assert_int_equal(open_rc("parent=mem\nfail_nth=1\nretries=3"),
	                 STRATA_ECONFIG);
	assert_contains(err, "unknown key 'retries' (allowed: parent, ");
}

/* A parent that cannot be loaded fails open with the loader's message. */
static void test_faulty_open_parent_missing(void **state)
{
	(void)state;
	assert_int_equal(open_rc("parent=nosuch"), STRATA_EPLUGIN);
	assert_contains(err, "faulty: load tier-2 plugin ");
	assert_contains(err, "tier2-nosuch.so: ");
	assert_int_equal(open_rc("parent=/nonexistent/p.so"), STRATA_EPLUGIN);
	assert_contains(err, "/nonexistent/p.so");
}

/* parent.<key> lines reach the parent, whose errors come back prefixed by
 * both plugin names. */
static void test_faulty_parent_config_forwarded(void **state)
{
	(void)state;
	assert_int_equal(open_rc("parent=mem\nparent.bogus=1"), STRATA_ECONFIG);
	assert_string_equal(err, "faulty: mem: config: unknown key "
	                         "'bogus' (allowed: max_bytes)");
	struct tier2 *t = open_faulty("parent_plugin = mem\n"
	                              "parent.max_bytes = 4");
	assert_int_equal(tier2_create(t, "a", err), 0);
	assert_int_equal(tier2_write(t, "a", 0, "12345", 5, err),
	                 STRATA_ENOSPC);
	assert_contains(err, "faulty: mem: write chunk a: 5 more bytes exceed "
	                     "max_bytes=4");
	tier2_close(t);
}

enum op { CREATE, WRITE, READ, STAT, LIST, TRUNCATE, CONCAT, DELETE, NOPS };
static const char *const op_names[NOPS] = {
        "create", "write",    "read",   "stat",
        "list",   "truncate", "concat", "delete",
};

/* Run call number i of op (each call can succeed on its own); setup calls
 * use other ops, which fail_op=<op> does not count. */
static int run_op(struct tier2 *t, enum op op, int i)
{
	char name[32];
	char src[32];
	char buf[8];
	size_t n;
	struct strata_tier2_chunk_info info;
	int seen = 0;
	snprintf(name, sizeof(name), "c%d", i);
	switch (op) {
	case CREATE:
		return tier2_create(t, name, err);
	case WRITE:
		assert_int_equal(tier2_stat(t, "w", &info, err), 0);
		return tier2_write(t, "w", info.length, "ab", 2, err);
	case READ:
		return tier2_read(t, "w", 0, buf, sizeof(buf), &n, err);
	case STAT:
		return tier2_stat(t, "w", &info, err);
	case LIST:
		return tier2_list(t, "", count_list_cb, &seen, err);
	case TRUNCATE:
		return tier2_truncate(t, "w", 0, err);
	case CONCAT: {
		snprintf(src, sizeof(src), "s%d", i);
		assert_int_equal(tier2_create(t, src, err), 0);
		const char *srcs[] = {src};
		return tier2_concat(t, "w", srcs, 1, err);
	}
	case DELETE:
		assert_int_equal(tier2_create(t, name, err), 0);
		return tier2_delete(t, name, err);
	default:
		return STRATA_EINVAL;
	}
}

/* For every op, the Nth call fails with fail_code and the host's wrapper
 * returns it with a prefixed message; the calls around it succeed. */
static void test_faulty_fail_nth_every_op(void **state)
{
	(void)state;
	for (int op = 0; op < NOPS; op++) {
		char cfg[128];
		snprintf(cfg, sizeof(cfg),
		         "parent=mem\nfail_op=%s\nfail_nth=2\n"
		         "fail_code=ETIMEDOUT",
		         op_names[op]);
		struct tier2 *t = open_faulty(cfg);
		if (op != CREATE) {
			assert_int_equal(tier2_create(t, "w", err), 0);
		}
		assert_int_equal(run_op(t, (enum op)op, 1), 0);
		int rc = run_op(t, (enum op)op, 2);
		if (rc != STRATA_ETIMEDOUT) {
			fail_msg("%s: call 2 returned %s: %s", op_names[op],
			         strata_error_name(rc), err);
		}
		char want[128];
		snprintf(want, sizeof(want), "faulty: %s chunk ", op_names[op]);
		assert_contains(err, want);
		snprintf(want, sizeof(want),
		         ": injected STRATA_ETIMEDOUT on call 2 (fail_op=%s "
		         "fail_nth=2 fail_count=1)",
		         op_names[op]);
		assert_contains(err, want);
		assert_int_equal(run_op(t, (enum op)op, 3), 0);
		tier2_close(t);
	}
}

/* A fault before the op means the parent never saw it. */
static void test_faulty_fail_before_changes_nothing(void **state)
{
	(void)state;
	struct tier2 *t = open_faulty("parent=mem\nfail_op=create\nfail_nth=1");
	struct strata_tier2_chunk_info info;
	assert_int_equal(tier2_create(t, "a", err), STRATA_EIO);
	assert_int_equal(tier2_stat(t, "a", &info, err), STRATA_ENOENT);
	assert_int_equal(tier2_create(t, "a", err), 0);
	tier2_close(t);
}

/* fail_when=after runs the parent op and then reports the fault. */
static void test_faulty_fail_after_applies_op(void **state)
{
	(void)state;
	struct tier2 *t = open_faulty("parent=mem\nfail_op=write\nfail_nth=1\n"
	                              "fail_when=after\nfail_code=ECLOSED");
	struct strata_tier2_chunk_info info;
	assert_int_equal(tier2_create(t, "a", err), 0);
	assert_int_equal(tier2_write(t, "a", 0, "hello", 5, err),
	                 STRATA_ECLOSED);
	assert_int_equal(tier2_stat(t, "a", &info, err), 0);
	assert_int_equal(info.length, 5);
	/* A parent error is kept (and still counts as a call). */
	assert_int_equal(tier2_write(t, "a", 0, "x", 1, err),
	                 STRATA_EBADOFFSET);
	assert_contains(err, "faulty: mem: write chunk a at offset 0");
	tier2_close(t);
}

/* fail_count=M fails M calls from the Nth; -1 fails all from the Nth. */
static void test_faulty_fail_count(void **state)
{
	(void)state;
	struct strata_tier2_chunk_info info;
	struct tier2 *t = open_faulty("parent=mem\nfail_op=stat\nfail_nth=2\n"
	                              "fail_count=2");
	assert_int_equal(tier2_create(t, "a", err), 0);
	int want[] = {0, STRATA_EIO, STRATA_EIO, 0, 0};
	for (int i = 0; i < 5; i++) {
		assert_int_equal(tier2_stat(t, "a", &info, err), want[i]);
	}
	tier2_close(t);
	t = open_faulty("parent=mem\nfail_op=stat\nfail_nth=3\nfail_count=-1");
	assert_int_equal(tier2_create(t, "a", err), 0);
	for (int i = 1; i <= 20; i++) {
		assert_int_equal(tier2_stat(t, "a", &info, err),
		                 i >= 3 ? STRATA_EIO : 0);
	}
	tier2_close(t);
	t = open_faulty("parent=mem\nfail_op=stat\nfail_nth=0\nfail_count=-1");
	assert_int_equal(tier2_create(t, "a", err), 0);
	assert_int_equal(tier2_stat(t, "a", &info, err), 0);
	tier2_close(t);
}

/* fail_op=any (the default) counts calls of every op together. */
static void test_faulty_fail_op_any(void **state)
{
	(void)state;
	struct tier2 *t = open_faulty("parent=mem\nfail_nth=3\n"
	                              "fail_code=STRATA_ENOSPC");
	struct strata_tier2_chunk_info info;
	assert_int_equal(tier2_create(t, "a", err), 0);
	assert_int_equal(tier2_stat(t, "a", &info, err), 0);
	assert_int_equal(tier2_write(t, "a", 0, "x", 1, err), STRATA_ENOSPC);
	assert_contains(err, "write chunk a: injected STRATA_ENOSPC on call 3 "
	                     "(fail_op=any");
	assert_int_equal(tier2_write(t, "a", 0, "x", 1, err), 0);
	tier2_close(t);
}

/* While fail_file exists every op fails; removing it heals the tier. */
static void test_faulty_fail_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/strata-faulty-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char flag[64];
	char cfg[160];
	snprintf(flag, sizeof(flag), "%s/down", dir);
	snprintf(cfg, sizeof(cfg),
	         "parent=mem\nfail_file=%s\nfail_code=EUNAVAIL", flag);
	struct tier2 *t = open_faulty(cfg);
	struct strata_tier2_chunk_info info;
	assert_int_equal(tier2_create(t, "a", err), 0);
	FILE *fp = fopen(flag, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(tier2_stat(t, "a", &info, err), STRATA_EUNAVAIL);
	assert_contains(err, "fail_file");
	assert_contains(err, flag);
	assert_int_equal(tier2_write(t, "a", 0, "x", 1, err), STRATA_EUNAVAIL);
	assert_int_equal(tier2_delete(t, "a", err), STRATA_EUNAVAIL);
	assert_int_equal(unlink(flag), 0);
	assert_int_equal(tier2_write(t, "a", 0, "x", 1, err), 0);
	assert_int_equal(tier2_stat(t, "a", &info, err), 0);
	assert_int_equal(info.length, 1);
	tier2_close(t);
	assert_int_equal(rmdir(dir), 0);
}

/* delay_ms adds latency to each op. */
static void test_faulty_delay_ms(void **state)
{
	(void)state;
	struct tier2 *t = open_faulty("parent=mem\ndelay_ms=30");
	struct timespec a;
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(tier2_create(t, "a", err), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	long ms = (b.tv_sec - a.tv_sec) * 1000 +
	          (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(ms >= 29);
	tier2_close(t);
}

static uint64_t injected;

static void hook(const char *plugin, const char *name, uint64_t delta)
{
	if (strcmp(plugin, "faulty") == 0 &&
	    strcmp(name, "faults_injected") == 0) {
		injected += delta;
	}
}

/* Each injected fault is counted through the host's counter hook. */
static void test_faulty_counts_faults(void **state)
{
	(void)state;
	injected = 0;
	tier2_set_counter_hook(hook);
	struct tier2 *t = open_faulty("parent=mem\nfail_nth=1\nfail_count=2");
	assert_int_equal(tier2_create(t, "a", err), STRATA_EIO);
	assert_int_equal(tier2_create(t, "a", err), STRATA_EIO);
	assert_int_equal(tier2_create(t, "a", err), 0);
	tier2_close(t);
	tier2_set_counter_hook(NULL);
	assert_int_equal(injected, 2);
}

/* faulty supports concat when its parent does. */
static void test_faulty_concat_passthrough(void **state)
{
	(void)state;
	struct tier2 *t = open_faulty("parent=mem");
	assert_true(tier2_supports_concat(t));
	assert_int_equal(tier2_create(t, "t", err), 0);
	assert_int_equal(tier2_create(t, "s", err), 0);
	assert_int_equal(tier2_write(t, "s", 0, "abc", 3, err), 0);
	const char *srcs[] = {"s"};
	assert_int_equal(tier2_concat(t, "t", srcs, 1, err), 0);
	struct strata_tier2_chunk_info info;
	assert_int_equal(tier2_stat(t, "t", &info, err), 0);
	assert_int_equal(info.length, 3);
	tier2_close(t);
}

/* Over a parent without concat (the loader tests' tp plugin), concat is
 * STRATA_ENOTSUP, and a parent's bad result travels up through both host
 * wrappers with both names. */
static void test_faulty_parent_without_concat(void **state)
{
	(void)state;
	char cfg[512];
	snprintf(cfg, sizeof(cfg), "parent=%s/tier2-tp.so", TP_PLUGIN_DIR);
	struct tier2 *t = open_faulty(cfg);
	const char *srcs[] = {"b"};
	assert_int_equal(tier2_concat(t, "a", srcs, 1, err), STRATA_ENOTSUP);
	assert_string_equal(err, "faulty: concat into chunk a: the parent "
	                         "plugin does not support concat");
	assert_int_equal(tier2_create(t, "neg", err), STRATA_EINTERNAL);
	assert_string_equal(err, "faulty: tp: create neg: invalid error code "
	                         "-1 (a plugin bug: report it to its author)");
	assert_int_equal(tier2_create(t, "ok", err), 0);
	tier2_close(t);
}

/* Every allocation failure while opening faulty (and its parent) is
 * STRATA_ENOMEM and leaks nothing. */
static void test_faulty_open_oom(void **state)
{
	(void)state;
	int rc = STRATA_ENOMEM;
	struct tier2 *t = NULL;
	long n;
	for (n = 1; rc != 0 && n < 200; n++) {
		oom_install(n);
		rc = tier2_load_open("faulty", NULL,
		                     "parent=mem\nfail_file=/nonexistent/x", &t,
		                     err);
		oom_uninstall();
		if (rc != 0) {
			assert_int_equal(rc, STRATA_ENOMEM);
		}
	}
	assert_int_equal(rc, 0);
	assert_true(n > 5);
	tier2_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_faulty_open_requires_parent),
	        cmocka_unit_test(test_faulty_open_bad_config),
	        cmocka_unit_test(test_faulty_open_parent_missing),
	        cmocka_unit_test(test_faulty_parent_config_forwarded),
	        cmocka_unit_test(test_faulty_fail_nth_every_op),
	        cmocka_unit_test(test_faulty_fail_before_changes_nothing),
	        cmocka_unit_test(test_faulty_fail_after_applies_op),
	        cmocka_unit_test(test_faulty_fail_count),
	        cmocka_unit_test(test_faulty_fail_op_any),
	        cmocka_unit_test(test_faulty_fail_file),
	        cmocka_unit_test(test_faulty_delay_ms),
	        cmocka_unit_test(test_faulty_counts_faults),
	        cmocka_unit_test(test_faulty_concat_passthrough),
	        cmocka_unit_test(test_faulty_parent_without_concat),
	        cmocka_unit_test(test_faulty_open_oom),
	};
	return cmocka_run_group_tests_name("faulty", tests, NULL, NULL);
}
