/* Unit tests for common/version.c: the --version answer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/version.h"

/* The release number is CMake's PROJECT_VERSION. */
static void test_version_is_project_version(void **state)
{
	(void)state;
	assert_string_equal(strata_version(), TEST_PROJECT_VERSION);
}

/* The commit is a describe string or "unknown", never empty. */
static void test_version_commit_is_set(void **state)
{
	(void)state;
	const char *c = strata_git_commit();
	assert_non_null(c);
	assert_true(strlen(c) > 0);
	assert_null(strchr(c, '\n'));
}

/* --version prints one line: program, version, commit. */
static void test_version_print_one_line(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	strata_print_version(f, "strata-x");
	fclose(f);
	char want[256];
	snprintf(want, sizeof(want), "strata-x %s (commit %s)\n",
	         TEST_PROJECT_VERSION, strata_git_commit());
	assert_string_equal(text, want);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_version_is_project_version),
	        cmocka_unit_test(test_version_commit_is_set),
	        cmocka_unit_test(test_version_print_one_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
