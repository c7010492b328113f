/* Unit tests for common/log.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/log.h"

static char path[] = "/tmp/strata-test-log-XXXXXX";

static int setup(void **state)
{
	(void)state;
	int fd = mkstemp(path);
	if (fd < 0) {
		return -1;
	}
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_close();
	log_set_level(STRATA_LOG_INFO);
	unlink(path);
	return 0;
}

static size_t read_all(char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

/* A line carries timestamp, level, component and message, one per call. */
static void test_log_write_line_format(void **state)
{
	(void)state;
	char err[256];
	assert_int_equal(log_open(path, err), 0);
	LOG_INFO("tier2.local", "chunk %s written (%d bytes)", "a/0", 42);
	log_close();
	char buf[1024];
	read_all(buf, sizeof(buf));
	assert_non_null(strstr(buf, "Z INFO  [tier2.local] chunk a/0 written "
	                            "(42 bytes)\n"));
	assert_int_equal(buf[4], '-');
	assert_int_equal(buf[10], 'T');
}

/* Messages below the level are dropped. */
static void test_log_level_filters(void **state)
{
	(void)state;
	char err[256];
	assert_int_equal(log_open(path, err), 0);
	log_set_level(STRATA_LOG_WARN);
	LOG_INFO("x", "hidden");
	LOG_DEBUG("x", "hidden");
	LOG_WARN("x", "shown");
	log_close();
	char buf[1024];
	read_all(buf, sizeof(buf));
	assert_null(strstr(buf, "hidden"));
	assert_non_null(strstr(buf, "WARN  [x] shown"));
}

/* Level names parse case-insensitively; junk is EINVAL. */
static void test_log_level_parse(void **state)
{
	(void)state;
	int l = -1;
	assert_int_equal(log_level_parse("DEBUG", &l), 0);
	assert_int_equal(l, STRATA_LOG_DEBUG);
	assert_int_equal(log_level_parse("error", &l), 0);
	assert_int_equal(l, STRATA_LOG_ERROR);
	assert_int_equal(log_level_parse("loud", &l), STRATA_EINVAL);
	assert_string_equal(log_level_name(99), "?");
}

/* log_levels lists, in level order, exactly what log_level_parse takes. */
static void test_log_levels_match_parse(void **state)
{
	(void)state;
	int n = 0;
	for (; log_levels[n] != NULL; n++) {
		int l = -1;
		assert_int_equal(log_level_parse(log_levels[n], &l), 0);
		assert_int_equal(l, n);
	}
	assert_int_equal(n, STRATA_LOG_ERROR + 1);
	assert_string_equal(log_levels[STRATA_LOG_INFO], "info");
}

/* An unwritable path fails with a message naming it; stderr stays. */
static void test_log_open_bad_path(void **state)
{
	(void)state;
	char err[256] = "";
	assert_int_equal(log_open("/nonexistent-dir/x.log", err), STRATA_EIO);
	assert_non_null(strstr(err, "/nonexistent-dir/x.log"));
}

/* An over-long message is cut but still ends in a newline. */
static void test_log_long_line_truncated(void **state)
{
	(void)state;
	char err[256];
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(log_open(path, err), 0);
	char *big = malloc(10000);
	memset(big, 'a', 9999);
	big[9999] = '\0';
	LOG_ERROR("x", "%s", big);
	free(big);
	log_close();
	char buf[8192];
	size_t n = read_all(buf, sizeof(buf));
	assert_true(n <= 4096);
	assert_int_equal(buf[n - 1], '\n');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_log_write_line_format),
	        cmocka_unit_test(test_log_level_filters),
	        cmocka_unit_test(test_log_level_parse),
	        cmocka_unit_test(test_log_levels_match_parse),
	        cmocka_unit_test(test_log_open_bad_path),
	        cmocka_unit_test(test_log_long_line_truncated),
	};
	return cmocka_run_group_tests_name("log", tests, setup, teardown);
}
