/* Small file-system helpers the processes share: creating a directory
 * path and holding a process's exclusive lock file. */
#ifndef COMMON_FILES_H
#define COMMON_FILES_H

#include <stddef.h>

/*
 * mkdir -p path (mode 0755; existing directories are fine). 0, or the
 * errno of the first component that could not be made, with that
 * component copied into failed[0..size) (may be NULL). ENAMETOOLONG for
 * an empty or over-long path; ENOTDIR when path exists and is not a
 * directory.
 */
int files_mkdir_p(const char *path, char *failed, size_t size);

/*
 * Take an exclusive lock on the file path (created 0644 if missing) for
 * as long as *fd stays open, and write this process's pid into it, so
 * that a second process given the same directory or file stops instead
 * of writing beside the first (flock: released by the kernel when the
 * holder dies, even by SIGKILL). 0 with *fd set; EWOULDBLOCK when
 * another open file holds it, with that holder's pid copied into
 * holder[0..size) ("" when it wrote none); another errno when path
 * cannot be opened. The caller says what the lock guards.
 */
int files_lock(const char *path, int *fd, char *holder, size_t size);

/*
 * A process's data directory (the data_dir key, --data-dir): create it
 * and hold an exclusive lock on dir/LOCK for the process's life (*fd),
 * so that two servers never write one directory. 0, or STRATA_EBUSY
 * (another process holds it: errmsg names its pid) / STRATA_EIO, with
 * errmsg (STRATA_ERRMSG_SIZE bytes) naming the directory and the fix.
 */
int files_lock_data_dir(const char *dir, int *fd, char *errmsg);

#endif /* COMMON_FILES_H */
