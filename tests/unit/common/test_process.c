/* Unit tests for common/process.c. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
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

/* Init raises the soft open-file limit to the hard one (to 2^20 when
 * the hard one is unlimited), and never lowers it. */
static void test_strata_process_init_raises_open_file_limit(void **state)
{
	(void)state;
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rlim_t want =
	        rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
	if (want > 256) {
		struct rlimit low = rl;
		low.rlim_cur = 256;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	}
	assert_int_equal(strata_process_init(NULL), 0);
	struct rlimit now;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &now), 0);
	/* Raising a soft limit up to the hard one is always allowed. */
	assert_true(now.rlim_cur == (want > 256 ? want : rl.rlim_cur));
	assert_true(now.rlim_max == rl.rlim_max);
}

/* A fatal error keeps its first message and signals the process, whose
 * main thread waits for SIGTERM with it blocked. */
static void test_strata_process_fatal_signals_once(void **state)
{
	(void)state;
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
	assert_null(strata_process_fatal_message());
	strata_process_fatal(NULL, "containers.count is 2, not 4");
	strata_process_fatal(NULL, "a later one");
	int sig = 0;
	struct timespec t = {5, 0};
	sig = sigtimedwait(&set, NULL, &t);
	assert_int_equal(sig, SIGTERM);
	assert_string_equal(strata_process_fatal_message(),
	                    "containers.count is 2, not 4");
	/* The second signal may be merged with the first; drain it. */
	struct timespec z = {0, 0};
	(void)sigtimedwait(&set, NULL, &z);
	assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_strata_process_init_ignores_sigpipe),
	        cmocka_unit_test(test_strata_process_init_idempotent),
	        cmocka_unit_test(test_strata_process_fatal_signals_once),
	        cmocka_unit_test(
	                test_strata_process_init_raises_open_file_limit),
	};
	return cmocka_run_group_tests_name("process", tests, NULL, NULL);
}
