/* File-system helpers (see files.h). */
#include "common/files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errmsg.h"
#include "strata/error.h"

static int made(const char *dir, char *failed, size_t size)
{
	if (mkdir(dir, 0755) == 0 || errno == EEXIST) {
		return 0;
	}
	int e = errno;
	if (failed != NULL && size > 0) {
		snprintf(failed, size, "%s", dir);
	}
	return e;
}

int files_mkdir_p(const char *path, char *failed, size_t size)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	if (failed != NULL && size > 0) {
		snprintf(failed, size, "%s", path);
	}
	if (n == 0 || n >= sizeof(buf)) {
		return ENAMETOOLONG;
	}
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/') {
			continue;
		}
		*p = '\0';
		int e = made(buf, failed, size);
		if (e != 0) {
			return e;
		}
		*p = '/';
	}
	int e = made(buf, failed, size);
	if (e != 0) {
		return e;
	}
	struct stat st;
	if (stat(path, &st) != 0) {
		return errno;
	}
	return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

int files_lock(const char *path, int *fd, char *holder, size_t size)
{
	if (holder != NULL && size > 0) {
		holder[0] = '\0';
	}
	int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (f < 0) {
		return errno;
	}
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		int e = errno == EINTR ? EWOULDBLOCK : errno;
		if (e == EWOULDBLOCK && holder != NULL && size > 1) {
			ssize_t r = pread(f, holder, size - 1, 0);
			holder[r > 0 ? r : 0] = '\0';
			holder[strcspn(holder, "\n")] = '\0';
		}
		close(f);
		return e;
	}
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	/* The pid is for the message of a second process only: a failure
	 * to write it leaves the lock held all the same. */
	if (ftruncate(f, 0) == 0) {
		(void)!pwrite(f, pid, (size_t)len, 0);
	}
	*fd = f;
	return 0;
}

int files_lock_data_dir(const char *dir, int *fd, char *errmsg)
{
	char path[PATH_MAX], holder[32];
	int e = files_mkdir_p(dir, path, sizeof(path));
	if (e != 0) {
		errmsg_set(errmsg,
		           "data_dir: cannot create '%.120s': %s; choose a "
		           "writable directory with --data-dir",
		           path, strerror(e));
		return STRATA_EIO;
	}
	if (strlen(dir) + sizeof("/LOCK") > sizeof(path)) {
		errmsg_set(errmsg, "data_dir '%.120s...' is too long", dir);
		return STRATA_EIO;
	}
	snprintf(path, sizeof(path), "%s/LOCK", dir);
	e = files_lock(path, fd, holder, sizeof(holder));
	if (e == EWOULDBLOCK) {
		errmsg_set(errmsg,
		           "data_dir '%.120s' is in use by another process "
		           "(pid %s); stop it or choose another --data-dir",
		           dir, holder[0] != '\0' ? holder : "unknown");
		return STRATA_EBUSY;
	}
	if (e != 0) {
		errmsg_set(errmsg, "data_dir: cannot open '%.120s': %s; %s",
		           path, strerror(e),
		           e == EACCES || e == EPERM
		                   ? "make the directory and everything in it "
		                     "the service user's (chown -R), or choose "
		                     "another --data-dir"
		                   : "choose a writable directory with "
		                     "--data-dir");
		return STRATA_EIO;
	}
	return 0;
}
