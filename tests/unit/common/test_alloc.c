/* Unit tests for common/alloc.c and the OOM helper. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
/* Resident set size of this process in bytes (/proc/self/statm). */
static size_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, rss = 0;
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%lu %lu", &size, &rss), 2);
	fclose(f);
	return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}
#endif

/* Memory freed between live blocks stays mapped (glibc does not shrink a
 * heap past a live block) until strata_mem_release gives it back. */
static void test_alloc_mem_release(void **state)
{
	(void)state;
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
	enum { N = 1024, BIG = 100 * 1024 };
	static void *big[N], *pin[N];
	for (size_t i = 0; i < N; i++) {
		big[i] = malloc(BIG); /* under the mmap threshold */
		assert_non_null(big[i]);
		memset(big[i], 1, BIG);
		pin[i] = malloc(16); /* keeps the heap from shrinking */
		assert_non_null(pin[i]);
	}
	for (size_t i = 0; i < N; i++) {
		free(big[i]);
	}
	size_t before = rss_bytes();
	size_t used = 0;
	assert_true(strata_mem_free_held(&used) >= (size_t)N * BIG / 2);
	assert_true(used > 0);
	strata_mem_release();
	size_t after = rss_bytes();
	print_message("RSS %zu -> %zu KiB\n", before >> 10, after >> 10);
	assert_true(after + (size_t)N * BIG / 2 < before);
	for (size_t i = 0; i < N; i++) {
		free(pin[i]);
	}
#else
	strata_mem_release(); /* nothing to measure: it must not fail */
	skip();
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_alloc_swap_and_restore),
	        cmocka_unit_test(test_alloc_calloc_zero_and_overflow),
	        cmocka_unit_test(test_alloc_strndup),
	        cmocka_unit_test(test_alloc_mem_release),
	};
	return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
