/* Whether an open file descriptor's path contains a string, from
 * /proc/self/fd: the fault injectors (tests/unit/raft/libraft_faults.c,
 * tests/integration/client/faultyio.c) pick the writes of one replica's
 * data directory by it. Header-only: faultyio.so links nothing of ours. */
#ifndef STRATA_TESTS_FDPATH_H
#define STRATA_TESTS_FDPATH_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static inline bool fd_path_contains(int fd, const char *part)
{
	char link[64], path[4096];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0) {
		return false;
	}
	path[n] = '\0';
	return strstr(path, part) != NULL;
}

#endif
