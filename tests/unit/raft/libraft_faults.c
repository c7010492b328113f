/* Fault injection into the vendored libraft's log writes (see the header). */
#include "tests/unit/raft/libraft_faults.h"
#include "tests/lib/fdpath.h"

#include <uv.h>

#include <errno.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

/* libraft's own wrapper of io_getevents(2) (src/uv_os.c), which every log
 * write's completion goes through; --wrap sends libraft's calls here. */
int __real_UvOsIoGetevents(aio_context_t ctx, long min_nr, long max_nr,
                           struct io_event *events, struct timespec *timeout);
int __wrap_UvOsIoGetevents(aio_context_t ctx, long min_nr, long max_nr,
                           struct io_event *events, struct timespec *timeout);

#define MAX_WRITES 4096 /* completions remembered after arming */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned fail_nth; /* 0: off */
static char fail_in[256]; /* path filter; "" for none */
static struct libraft_faults_record rec;
static int failed_fd;
static struct {
	int fd;
	uint64_t offset;
} done[MAX_WRITES];

void libraft_faults_fail_write(unsigned nth)
{
	libraft_faults_fail_write_in(NULL, nth);
}

void libraft_faults_fail_write_in(const char *in, unsigned nth)
{
	pthread_mutex_lock(&mu);
	snprintf(fail_in, sizeof(fail_in), "%s", in != NULL ? in : "");
	fail_nth = nth;
	memset(&rec, 0, sizeof(rec));
	failed_fd = -1;
	pthread_mutex_unlock(&mu);
}

void libraft_faults_get(struct libraft_faults_record *out)
{
	pthread_mutex_lock(&mu);
	*out = rec;
	pthread_mutex_unlock(&mu);
}

/* A write at fd/offset completed with res; returns the result to report. */
static long on_completion(int fd, uint64_t offset, long res)
{
	if (res == -EAGAIN) {
		return res; /* libraft retries it on its thread pool */
	}
	if (fail_nth == 0 && !rec.failed) {
		return res;
	}
	if (fail_in[0] != '\0' && !fd_path_contains(fd, fail_in)) {
		return res;
	}
	unsigned k = rec.completed++;
	bool ok = res >= 0;
	if (!rec.failed && rec.completed == fail_nth) {
		rec.failed = true;
		rec.failed_offset = offset;
		failed_fd = fd;
		fail_nth = 0;
		res = -EIO;
		ok = false;
	}
	if (k < MAX_WRITES) {
		done[k].fd = ok ? fd : -1;
		done[k].offset = offset;
	}
	if (rec.failed) {
		/* Count the successful writes past the failed one, whenever
		 * they completed (before it, or after). */
		unsigned n =
		        rec.completed < MAX_WRITES ? rec.completed : MAX_WRITES;
		rec.later_ok = 0;
		for (unsigned i = 0; i < n; i++) {
			if (done[i].fd == failed_fd &&
			    done[i].offset > rec.failed_offset) {
				rec.later_ok++;
			}
		}
	}
	return res;
}

int __wrap_UvOsIoGetevents(aio_context_t ctx, long min_nr, long max_nr,
                           struct io_event *events, struct timespec *timeout)
{
	int n = __real_UvOsIoGetevents(ctx, min_nr, max_nr, events, timeout);
	pthread_mutex_lock(&mu);
	for (int i = 0; i < n; i++) {
		const struct iocb *cb =
		        (const struct iocb *)(uintptr_t)events[i].obj;
		events[i].res = on_completion((int)cb->aio_fildes,
		                              (uint64_t)cb->aio_offset,
		                              (long)events[i].res);
	}
	pthread_mutex_unlock(&mu);
	return n;
}

/* libraft's wrapper of posix_fallocate (src/uv_os.c), through which every
 * new log segment gets its space (on libraft's thread pool). */
int __real_UvOsFallocate(int fd, off_t offset, off_t len);
int __wrap_UvOsFallocate(int fd, off_t offset, off_t len);

static bool full;
static char full_in[256];
static unsigned full_failed;

unsigned libraft_faults_disk_full_in(const char *in, bool on)
{
	pthread_mutex_lock(&mu);
	snprintf(full_in, sizeof(full_in), "%s", in != NULL ? in : "");
	full = on;
	unsigned n = full_failed;
	full_failed = 0;
	pthread_mutex_unlock(&mu);
	return n;
}

int __wrap_UvOsFallocate(int fd, off_t offset, off_t len)
{
	pthread_mutex_lock(&mu);
	bool fail =
	        full && (full_in[0] == '\0' || fd_path_contains(fd, full_in));
	if (fail) {
		full_failed++;
	}
	pthread_mutex_unlock(&mu);
	if (fail) {
		return -ENOSPC; /* libraft's convention: a negated errno */
	}
	return __real_UvOsFallocate(fd, offset, len);
}

/* libraft's wrapper of a synchronous file write (src/uv_os.c), through
 * which it writes each snapshot and its metadata file (on its thread
 * pool). */
int __real_UvOsWrite(uv_file fd, const uv_buf_t bufs[], unsigned int nbufs,
                     int64_t offset);
int __wrap_UvOsWrite(uv_file fd, const uv_buf_t bufs[], unsigned int nbufs,
                     int64_t offset);

static bool snap_full;
static char snap_full_in[256];
static unsigned snap_failed;

unsigned libraft_faults_snapshot_full_in(const char *in, bool on)
{
	pthread_mutex_lock(&mu);
	snprintf(snap_full_in, sizeof(snap_full_in), "%s",
	         in != NULL ? in : "");
	snap_full = on;
	unsigned n = snap_failed;
	snap_failed = 0;
	pthread_mutex_unlock(&mu);
	return n;
}

int __wrap_UvOsWrite(uv_file fd, const uv_buf_t bufs[], unsigned int nbufs,
                     int64_t offset)
{
	pthread_mutex_lock(&mu);
	bool fail =
	        snap_full && fd_path_contains(fd, "snapshot-") &&
	        (snap_full_in[0] == '\0' || fd_path_contains(fd, snap_full_in));
	if (fail) {
		snap_failed++;
	}
	pthread_mutex_unlock(&mu);
	if (fail) {
		return UV_ENOSPC; /* what uv_fs_write returns for ENOSPC */
	}
	return __real_UvOsWrite(fd, bufs, nbufs, offset);
}
