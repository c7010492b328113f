/* Unit tests for plugins/tier2/mem beyond the conformance suite. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/plugin.h"
#include "tests/lib/check.h"
#include "tests/lib/oom.h"

static char err[STRATA_ERRMSG_SIZE];
static uint64_t bytes_written;
static uint64_t bytes_read;

static void hook(const char *plugin, const char *name, uint64_t delta)
{
	if (strcmp(plugin, "mem") != 0) {
		return;
	}
	if (strcmp(name, "bytes_written") == 0) {
		bytes_written += delta;
	} else if (strcmp(name, "bytes_read") == 0) {
		bytes_read += delta;
	}
}

static struct tier2 *open_mem(const char *config)
{
	struct tier2 *t = NULL;
	int rc = tier2_load_open("mem", NULL, config, &t, err);
	if (rc != 0) {
		fail_msg("open mem: %s", err);
	}
	return t;
}

static uint64_t length_of(struct tier2 *t, const char *name)
{
	struct strata_tier2_chunk_info info;
	int rc = tier2_stat(t, name, &info, err);
	if (rc != 0) {
		fail_msg("stat %s: %s", name, err);
	}
	return info.length;
}

static void put(struct tier2 *t, const char *name, const char *data)
{
	assert_int_equal(tier2_create(t, name, err), 0);
	assert_int_equal(tier2_write(t, name, 0, data, strlen(data), err), 0);
}

static void expect(struct tier2 *t, const char *name, const char *data)
{
	char buf[64];
	size_t n = 0;
	assert_int_equal(tier2_read(t, name, 0, buf, sizeof(buf), &n, err), 0);
	assert_int_equal(n, strlen(data));
	assert_memory_equal(buf, data, n);
}

/* An unknown key is STRATA_ECONFIG naming it and the allowed keys. */
static void test_mem_open_unknown_key(void **state)
{
	(void)state;
	struct tier2 *t = NULL;
	int rc = tier2_load_open("mem", NULL, "max_bytes=1\nbogus = 1\n", &t,
	                         err);
	assert_int_equal(rc, STRATA_ECONFIG);
	assert_string_equal(err, "mem: config: unknown key 'bogus' "
	                         "(allowed: max_bytes)");
}

/* check gives open's verdicts. */
static void test_mem_check(void **state)
{
	(void)state;
	struct tier2_plugin *p = NULL;
	assert_int_equal(tier2_load("mem", NULL, &p, err), 0);
	assert_int_equal(tier2_check(p, "max_bytes=64m", err), 0);
	assert_int_equal(tier2_check(p, "max_bytes=1\nbogus = 1\n", err),
	                 STRATA_ECONFIG);
	assert_string_equal(err, "mem: config: unknown key 'bogus' "
	                         "(allowed: max_bytes)");
	tier2_unload(p);
}

/* A malformed max_bytes is STRATA_ECONFIG with an example. */
static void test_mem_open_bad_max_bytes(void **state)
{
	(void)state;
	struct tier2 *t = NULL;
	int rc = tier2_load_open("mem", NULL, "max_bytes=lots", &t, err);
	assert_int_equal(rc, STRATA_ECONFIG);
	assert_string_equal(err, "mem: config max_bytes=lots: max_bytes must "
	                         "be a byte count such as 1048576 or 64m");
}

/* max_bytes bounds the total; a refused write writes nothing; deletes and
 * truncates free space; concat moves bytes without counting them twice. */
static void test_mem_max_bytes_enospc(void **state)
{
	(void)state;
	struct tier2 *t = open_mem("max_bytes=10");
	put(t, "a", "12345678");
	assert_int_equal(tier2_create(t, "b", err), 0);
	assert_int_equal(tier2_write(t, "b", 0, "abc", 3, err), STRATA_ENOSPC);
	assert_string_equal(err, "mem: write chunk b: 3 more bytes exceed "
	                         "max_bytes=10 (8 in use; delete chunks or "
	                         "raise max_bytes)");
	assert_int_equal(length_of(t, "b"), 0);
	assert_int_equal(tier2_write(t, "b", 0, "ab", 2, err), 0);
	assert_int_equal(tier2_truncate(t, "a", 4, err), 0);
	assert_int_equal(tier2_write(t, "b", 2, "cdef", 4, err), 0);
	const char *src[] = {"b"};
	assert_int_equal(tier2_concat(t, "a", src, 1, err), 0);
	expect(t, "a", "1234abcdef");
	assert_int_equal(tier2_create(t, "c", err), 0);
	assert_int_equal(tier2_write(t, "c", 0, "x", 1, err), STRATA_ENOSPC);
	assert_int_equal(tier2_delete(t, "a", err), 0);
	assert_int_equal(tier2_write(t, "c", 0, "0123456789", 10, err), 0);
	tier2_close(t);
}

/* concat is right wherever the target and sources sit in the table. */
static void test_mem_concat_any_position(void **state)
{
	(void)state;
	struct tier2 *t = open_mem(NULL);
	put(t, "s1", "b");
	put(t, "s2", "c");
	put(t, "x", "keep");
	put(t, "t", "a");
	const char *src[] = {"s1", "s2"};
	assert_int_equal(tier2_concat(t, "t", src, 2, err), 0);
	expect(t, "t", "abc");
	expect(t, "x", "keep");
	put(t, "s3", "e");
	put(t, "s4", "f");
	const char *src2[] = {"s4", "x", "s3"};
	assert_int_equal(tier2_concat(t, "t", src2, 3, err), 0);
	expect(t, "t", "abcfkeepe");
	struct strata_tier2_chunk_info info;
	assert_int_equal(tier2_stat(t, "x", &info, err), STRATA_ENOENT);
	assert_int_equal(tier2_stat(t, "s4", &info, err), STRATA_ENOENT);
	tier2_close(t);
}

/* Instances are independent stores. */
static void test_mem_instances_independent(void **state)
{
	(void)state;
	struct tier2 *a = open_mem(NULL);
	struct tier2 *b = open_mem(NULL);
	put(a, "same", "A");
	assert_int_equal(tier2_create(b, "same", err), 0);
	assert_int_equal(length_of(b, "same"), 0);
	expect(a, "same", "A");
	tier2_close(a);
	tier2_close(b);
}

/* Bytes written and read are reported through the host counter hook. */
static void test_mem_counters(void **state)
{
	(void)state;
	bytes_written = 0;
	bytes_read = 0;
	tier2_set_counter_hook(hook);
	struct tier2 *t = open_mem(NULL);
	put(t, "a", "hello");
	expect(t, "a", "hello");
	tier2_close(t);
	tier2_set_counter_hook(NULL);
	assert_int_equal(bytes_written, 5);
	assert_int_equal(bytes_read, 5);
}

/* Allocation failures are STRATA_ENOMEM and change nothing. */
static void test_mem_oom_changes_nothing(void **state)
{
	(void)state;
	struct tier2 *t = open_mem(NULL);
	put(t, "a", "x");

	oom_install(1);
	int rc = tier2_create(t, "b", err);
	oom_uninstall();
	assert_int_equal(rc, STRATA_ENOMEM);
	assert_string_equal(err, "mem: create chunk b: out of memory");
	struct strata_tier2_chunk_info info;
	assert_int_equal(tier2_stat(t, "b", &info, err), STRATA_ENOENT);

	char big[200];
	memset(big, 'y', sizeof(big));
	oom_install(1);
	rc = tier2_write(t, "a", 1, big, sizeof(big), err);
	oom_uninstall();
	assert_int_equal(rc, STRATA_ENOMEM);
	expect(t, "a", "x");

	static char src_data[3000];
	memset(src_data, 'z', sizeof(src_data));
	assert_int_equal(tier2_create(t, "s", err), 0);
	assert_int_equal(
	        tier2_write(t, "s", 0, src_data, sizeof(src_data), err), 0);
	const char *src[] = {"s"};
	oom_install(1);
	rc = tier2_concat(t, "a", src, 1, err);
	oom_uninstall();
	assert_int_equal(rc, STRATA_ENOMEM);
	assert_string_equal(err, "mem: concat into chunk a: out of memory");
	expect(t, "a", "x");
	assert_int_equal(length_of(t, "s"), sizeof(src_data));
	tier2_close(t);
}

/* list snapshots under memory pressure: ENOMEM at each allocation. */
static void test_mem_list_oom(void **state)
{
	(void)state;
	struct tier2 *t = open_mem(NULL);
	put(t, "a", "1");
	put(t, "b", "2");
	int rc = STRATA_ENOMEM;
	long n;
	for (n = 1; rc != 0; n++) {
		int seen = 0;
		oom_install(n);
		rc = tier2_list(t, "", count_list_cb, &seen, err);
		oom_uninstall();
		if (rc != 0) {
			assert_int_equal(rc, STRATA_ENOMEM);
			assert_int_equal(seen, 0);
			assert_string_equal(err, "mem: list prefix '': out of "
			                         "memory");
		} else {
			assert_int_equal(seen, 2);
		}
	}
	assert_int_equal(n, 5); /* array + 2 names fail, then success */
	tier2_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_mem_open_unknown_key),
	        cmocka_unit_test(test_mem_check),
	        cmocka_unit_test(test_mem_open_bad_max_bytes),
	        cmocka_unit_test(test_mem_max_bytes_enospc),
	        cmocka_unit_test(test_mem_concat_any_position),
	        cmocka_unit_test(test_mem_instances_independent),
	        cmocka_unit_test(test_mem_counters),
	        cmocka_unit_test(test_mem_oom_changes_nothing),
	        cmocka_unit_test(test_mem_list_oom),
	};
	return cmocka_run_group_tests_name("mem", tests, NULL, NULL);
}
