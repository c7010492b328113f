/* The stored-index marker of a Raft replica (see marker.h).
 *
 * File format, one line: "strata-raft-marker 1 group=G node=N index=I
 * crc=C\n", C the CRC32C (hex) of everything before " crc=".
 */
#include "raft/marker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "strata/error.h"

#define COMP "raft"
#define MARKER_MAX 256

bool raft_marker_path(const char *dir, char *buf, size_t size)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/') {
		n--;
	}
	int w = snprintf(buf, size, "%.*s.marker", (int)n, dir);
	return w > 0 && (size_t)w < size;
}

int raft_marker_read(const char *path, struct raft_marker *m)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return errno == ENOENT ? STRATA_ENOENT : STRATA_ECORRUPT;
	}
	char buf[MARKER_MAX + 1];
	ssize_t n = read(fd, buf, MARKER_MAX);
	close(fd);
	if (n <= 0) {
		return STRATA_ECORRUPT;
	}
	buf[n] = '\0';
	char *crc_at = strstr(buf, " crc=");
	unsigned crc = 0;
	int used = 0;
	if (crc_at == NULL ||
	    sscanf(crc_at, " crc=%8x\n%n", &crc, &used) != 1 || used == 0 ||
	    crc_at[used] != '\0' ||
	    crc32c_extend(0, buf, (size_t)(crc_at - buf)) != crc) {
		return STRATA_ECORRUPT;
	}
	*crc_at = '\0';
	unsigned version = 0;
	used = 0;
	if (sscanf(buf,
	           "strata-raft-marker %u group=%" SCNu64 " node=%" SCNu64
	           " index=%" SCNu64 "%n",
	           &version, &m->group, &m->node, &m->index, &used) != 4 ||
	    version != 1 || buf[used] != '\0') {
		return STRATA_ECORRUPT;
	}
	return 0;
}

int raft_marker_write(const char *path, const struct raft_marker *m)
{
	char tmp[4096 + 8], line[MARKER_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		return ENAMETOOLONG;
	}
	int len = snprintf(line, sizeof(line),
	                   "strata-raft-marker 1 group=%" PRIu64
	                   " node=%" PRIu64 " index=%" PRIu64,
	                   m->group, m->node, m->index);
	len += snprintf(line + len, sizeof(line) - (size_t)len, " crc=%08x\n",
	                crc32c_extend(0, line, (size_t)len));
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		return errno;
	}
	ssize_t w = write(fd, line, (size_t)len);
	int e = w == len ? 0 : w < 0 ? errno : EIO;
	if (close(fd) != 0 && e == 0) {
		e = errno;
	}
	if (e == 0 && rename(tmp, path) != 0) {
		e = errno;
	}
	if (e != 0) {
		(void)unlink(tmp);
	}
	return e;
}

/* What dir holds: libraft's metadata files, and its log segments
 * ("FIRST-LAST", "open-N") or snapshots ("snapshot-..."). */
static void dir_state(const char *dir, bool *has_meta, bool *has_log)
{
	*has_meta = *has_log = false;
	DIR *d = opendir(dir);
	if (d == NULL) {
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		unsigned long long a, b;
		int used = 0;
		if (strcmp(n, "metadata1") == 0 ||
		    strcmp(n, "metadata2") == 0) {
			*has_meta = true;
		} else if (strncmp(n, "open-", 5) == 0 ||
		           strncmp(n, "snapshot-", 9) == 0 ||
		           (sscanf(n, "%llu-%llu%n", &a, &b, &used) == 2 &&
		            n[used] == '\0')) {
			*has_log = true;
		}
	}
	closedir(d);
}

int raft_marker_check(const char *dir, uint64_t group, uint64_t node,
                      uint64_t *marked, char *errmsg)
{
	*marked = 0;
	char path[4096];
	if (!raft_marker_path(dir, path, sizeof(path))) {
		return 0;
	}
	bool has_meta, has_log;
	dir_state(dir, &has_meta, &has_log);
	if (has_log && !has_meta) {
		errmsg_set(errmsg,
		           "raft group %" PRIu64 ": \"%.100s\" holds log files "
		           "but no metadata1/metadata2 (the replica's term and "
		           "vote): they were lost",
		           group, dir);
		return STRATA_ECORRUPT;
	}
	struct raft_marker m;
	int rc = raft_marker_read(path, &m);
	if (rc == STRATA_ECORRUPT) {
		LOG_WARN(COMP,
		         "group %" PRIu64 ": %s is unreadable; the check that "
		         "the Raft log is whole is skipped this time",
		         group, path);
		return 0;
	}
	if (rc != 0) {
		return 0; /* none: a new replica */
	}
	if ((m.group != group || m.node != node) && (has_meta || has_log)) {
		/* Starting another node's log would clone that voter (its
		 * term and vote), and the marker would be replaced with
		 * this node's lower index: refuse. */
		errmsg_set(errmsg,
		           "raft group %" PRIu64 ": \"%.100s\" holds the Raft "
		           "log of group %" PRIu64 " node %" PRIu64
		           " (its .marker), not of node %" PRIu64
		           ": start that node on it (check node.id), or give "
		           "this node another data directory",
		           group, dir, m.group, m.node, node);
		return STRATA_ECONFIG;
	}
	if (m.group != group || m.node != node) {
		LOG_WARN(COMP,
		         "group %" PRIu64 ": %s belongs to group %" PRIu64
		         " node %" PRIu64 ", not node %" PRIu64
		         "; ignored (it is replaced)",
		         group, path, m.group, m.node, node);
		return 0;
	}
	if (m.index > 0 && !has_meta && !has_log) {
		errmsg_set(
		        errmsg,
		        "raft group %" PRIu64 ": \"%.100s\" is empty, but "
		        "this replica had stored its log up to index %" PRIu64
		        " (its .marker): the log was lost",
		        group, dir, m.index);
		return STRATA_ECORRUPT;
	}
	*marked = m.index;
	return 0;
}
