/* Unit tests for common/alloc.c and the OOM helper. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "tests/lib/oom.h"

/* Allocations go through the installed allocator; NULL restores libc. */
static void test_alloc_swap_and_restore(void **state)
{
	(void)state;
	oom_install(2);
	void *a = strata_malloc(8);
	assert_non_null(a);
	assert_null(strata_malloc(8));
	assert_null(strata_strdup("x"));
	assert_int_equal(oom_uninstall(), 3);
	strata_free(a);
	void *b = strata_malloc(8);
	assert_non_null(b);
	strata_free(b);
}

/* calloc zeroes and refuses n*size overflow. */
static void test_alloc_calloc_zero_and_overflow(void **state)
{
	(void)state;
	unsigned char *p = strata_calloc(16, 4);
	assert_non_null(p);
	for (int i = 0; i < 64; i++) {
		assert_int_equal(p[i], 0);
	}
	strata_free(p);
	assert_null(strata_calloc(SIZE_MAX / 2, 4));
}

/* strndup copies at most n bytes and terminates. */
static void test_alloc_strndup(void **state)
{
	(void)state;
	char *s = strata_strndup("abcdef", 3);
	assert_string_equal(s, "abc");
	strata_free(s);
	s = strata_strdup("xyz");
	assert_string_equal(s, "xyz");
	strata_free(s);
	strata_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_alloc_swap_and_restore),
	        cmocka_unit_test(test_alloc_calloc_zero_and_overflow),
	        cmocka_unit_test(test_alloc_strndup),
	};
	return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
