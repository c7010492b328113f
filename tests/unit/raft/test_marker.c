/* Unit tests for raft/marker.c: the marker file and the start check. */
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
#include <unistd.h>

#include <cmocka.h>

#include "raft/marker.h"
#include "strata/error.h"

static char base[] = "/tmp/strata-test-marker-XXXXXX";
static char dir[256], path[300];

static int setup(void **state)
{
	(void)state;
	if (mkdtemp(base) == NULL) {
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s/container-0", base);
	snprintf(path, sizeof(path), "%s.marker", dir);
	return mkdir(dir, 0755);
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	return system(cmd) == 0 ? 0 : -1;
}

static void touch(const char *name)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static void rm(const char *name)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(unlink(p), 0);
}

/* Written and read back; a damaged or foreign file is not believed. */
static void test_marker_file(void **state)
{
	(void)state;
	char p[300];
	assert_true(raft_marker_path("/x/container-1/", p, sizeof(p)));
	assert_string_equal(p, "/x/container-1.marker");
	assert_false(raft_marker_path("/x/container-1", p, 8));

	struct raft_marker m = {7, 3, 12345}, r;
	assert_int_equal(raft_marker_read(path, &r), STRATA_ENOENT);
	assert_int_equal(raft_marker_write(path, &m), 0);
	assert_int_equal(raft_marker_read(path, &r), 0);
	assert_true(r.group == 7 && r.node == 3 && r.index == 12345);
	m.index = 99999;
	assert_int_equal(raft_marker_write(path, &m), 0); /* replaced */
	assert_int_equal(raft_marker_read(path, &r), 0);
	assert_true(r.index == 99999);

	/* One digit changed: the checksum no longer matches. */
	FILE *f = fopen(path, "r+");
	assert_non_null(f);
	char line[256];
	assert_non_null(fgets(line, sizeof(line), f));
	char *at = strstr(line, "index=9");
	assert_non_null(at);
	at[6] = '8';
	rewind(f);
	fputs(line, f);
	fclose(f);
	assert_int_equal(raft_marker_read(path, &r), STRATA_ECORRUPT);
	f = fopen(path, "w");
	fputs("hello\n", f);
	fclose(f);
	assert_int_equal(raft_marker_read(path, &r), STRATA_ECORRUPT);
	unlink(path);
}

/* The start check: what is missing, and what is not a loss. */
static void test_marker_check(void **state)
{
	(void)state;
	char err[STRATA_ERRMSG_SIZE];
	uint64_t marked = 77;
	/* A new replica: empty, no marker. */
	assert_int_equal(raft_marker_check(dir, 1, 2, &marked, err), 0);
	assert_int_equal(marked, 0);

	/* A log without its metadata: term and vote lost. */
	touch("0000000000000001-0000000000000034");
	assert_int_equal(raft_marker_check(dir, 1, 2, &marked, err),
	                 STRATA_ECORRUPT);
	assert_non_null(strstr(err, "metadata1"));
	touch("metadata1");
	struct raft_marker m = {1, 2, 34};
	assert_int_equal(raft_marker_write(path, &m), 0);
	assert_int_equal(raft_marker_check(dir, 1, 2, &marked, err), 0);
	assert_int_equal(marked, 34); /* group.c compares the loaded log */

	/* Emptied while the marker says it had entries. */
	rm("0000000000000001-0000000000000034");
	rm("metadata1");
	assert_int_equal(raft_marker_check(dir, 1, 2, &marked, err),
	                 STRATA_ECORRUPT);
	assert_non_null(strstr(err, "index 34"));

	/* A marker of another group or node beside an empty directory is
	 * not this replica's: a new replica. */
	m.node = 9;
	assert_int_equal(raft_marker_write(path, &m), 0);
	assert_int_equal(raft_marker_check(dir, 1, 2, &marked, err), 0);
	assert_int_equal(marked, 0);
	/* Beside a log, it says the log is another node's (node.id
	 * mistyped): refused, naming both. */
	touch("metadata1");
	assert_int_equal(raft_marker_check(dir, 1, 2, &marked, err),
	                 STRATA_ECONFIG);
	assert_non_null(strstr(err, "node 9"));
	assert_non_null(strstr(err, "not of node 2"));
	m.node = 2;
	m.group = 5;
	assert_int_equal(raft_marker_write(path, &m), 0);
	assert_int_equal(raft_marker_check(dir, 1, 2, &marked, err),
	                 STRATA_ECONFIG);
	assert_non_null(strstr(err, "group 5"));
	rm("metadata1");
	/* An unreadable one only skips the check. */
	FILE *f = fopen(path, "w");
	fputs("garbage", f);
	fclose(f);
	assert_int_equal(raft_marker_check(dir, 1, 2, &marked, err), 0);
	assert_int_equal(marked, 0);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_marker_file),
	        cmocka_unit_test(test_marker_check),
	};
	return cmocka_run_group_tests_name("raft_marker", tests, setup,
	                                   teardown);
}
