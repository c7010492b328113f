/* Unit tests for common/errmsg.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/errmsg.h"
#include "strata/error.h"

/* The message is formatted printf-style into the buffer. */
static void test_errmsg_set_formats(void **state)
{
	(void)state;
	char err[STRATA_ERRMSG_SIZE];
	errmsg_set(err, "open segment %d: %s", 7, "gone");
	assert_string_equal(err, "open segment 7: gone");
}

/* A long message is cut to STRATA_ERRMSG_SIZE - 1 bytes plus the NUL. */
static void test_errmsg_set_truncates(void **state)
{
	(void)state;
	char long_text[2 * STRATA_ERRMSG_SIZE];
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	char err[STRATA_ERRMSG_SIZE + 8];
	memset(err, '#', sizeof(err));
	errmsg_set(err, "%s", long_text);
	assert_int_equal(strlen(err), STRATA_ERRMSG_SIZE - 1);
	assert_int_equal(err[STRATA_ERRMSG_SIZE], '#');
}

/* A NULL buffer is a no-op (callers that want no message). */
static void test_errmsg_set_null_buffer(void **state)
{
	(void)state;
	errmsg_set(NULL, "ignored %d", 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_errmsg_set_formats),
	        cmocka_unit_test(test_errmsg_set_truncates),
	        cmocka_unit_test(test_errmsg_set_null_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
