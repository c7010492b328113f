/* Unit tests for common/process.c. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/process.h"
#include "strata/error.h"

/* After init, writing to a pipe whose reader is gone fails with EPIPE
 * instead of killing the process. */
static void test_strata_process_init_ignores_sigpipe(void **state)
{
	(void)state;
	char errmsg[STRATA_ERRMSG_SIZE];
	assert_int_equal(strata_process_init(errmsg), 0);
	struct sigaction sa;
	assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
	assert_true(sa.sa_handler == SIG_IGN);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	close(fds[0]);
	errno = 0;
	assert_int_equal(write(fds[1], "x", 1), -1);
	assert_int_equal(errno, EPIPE);
	close(fds[1]);
}

/* Calling init twice is harmless. */
static void test_strata_process_init_idempotent(void **state)
{
	(void)state;
	assert_int_equal(strata_process_init(NULL), 0);
	assert_int_equal(strata_process_init(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_strata_process_init_ignores_sigpipe),
	        cmocka_unit_test(test_strata_process_init_idempotent),
	};
	return cmocka_run_group_tests_name("process", tests, NULL, NULL);
}
