/* Unit tests for common/files.c: mkdir -p and the process lock file. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/files.h"

static char base[] = "/tmp/strata-test-files-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(base) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_files_mkdir_p(void **state)
{
	(void)state;
	char path[256], failed[256];
	snprintf(path, sizeof(path), "%s/a/b/c", base);
	assert_int_equal(files_mkdir_p(path, failed, sizeof(failed)), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(files_mkdir_p(path, NULL, 0), 0); /* exists: fine */

	/* A file in the way: ENOTDIR naming where. */
	char file[256];
	snprintf(file, sizeof(file), "%s/f", base);
	int fd = open(file, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(files_mkdir_p(file, failed, sizeof(failed)), ENOTDIR);
	snprintf(path, sizeof(path), "%s/f/x", base);
	assert_int_equal(files_mkdir_p(path, failed, sizeof(failed)), ENOTDIR);
	assert_string_equal(failed, path);
	assert_int_equal(files_mkdir_p("", failed, sizeof(failed)),
	                 ENAMETOOLONG);
}

static void test_files_lock(void **state)
{
	(void)state;
	char path[256], holder[32];
	snprintf(path, sizeof(path), "%s/LOCK", base);
	int fd = -1, fd2 = -1;
	assert_int_equal(files_lock(path, &fd, holder, sizeof(holder)), 0);
	assert_true(fd >= 0);

	/* A second open file (as a second process would) is refused and
	 * told the holder's pid. */
	assert_int_equal(files_lock(path, &fd2, holder, sizeof(holder)),
	                 EWOULDBLOCK);
	assert_int_equal(fd2, -1);
	assert_int_equal(atol(holder), (long)getpid());

	/* A child process too; after the holder closes, the child gets it. */
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		int f = -1;
		char h[32];
		_exit(files_lock(path, &f, h, sizeof(h)) == EWOULDBLOCK ? 0
		                                                        : 1);
	}
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fd);
	assert_int_equal(files_lock(path, &fd2, holder, sizeof(holder)), 0);
	close(fd2);

	/* A path that cannot be opened: its errno. */
	snprintf(path, sizeof(path), "%s/no/such/LOCK", base);
	assert_int_equal(files_lock(path, &fd, holder, sizeof(holder)), ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_files_mkdir_p),
	        cmocka_unit_test(test_files_lock),
	};
	return cmocka_run_group_tests_name("files", tests, setup, teardown);
}
