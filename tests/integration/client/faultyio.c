/* faultyio.so: a test-only LD_PRELOAD library that makes the disk under a
 * path fail the way a dying disk does, for the Raft log of a real process.
 *
 * libraft collects the completions of its log writes (KAIO) with
 * io_getevents(2), which it calls through syscall(3); this library
 * interposes syscall and, once armed, turns the completion of every write
 * to a file whose path contains FAULTYIO_PATH into -EIO. It is armed when
 * the file FAULTYIO_ARM exists (the test creates it at the moment of its
 * choice) and stays armed: the disk does not come back; the first write
 * it fails creates FAULTYIO_ARM.failed. Nothing else is changed; without
 * both variables the library only forwards.
 *
 * With FAULTYIO_MODE=full the disk is full instead: while armed,
 * posix_fallocate(3) of a file under the path fails with ENOSPC (how
 * libraft gets the space of each new log segment; the segments it already
 * has keep taking writes, as on a real full disk), and writes complete.
 * A full disk gets space again: removing FAULTYIO_ARM disarms this mode.
 *
 * With FAULTYIO_MODE=flaky writes fail with EIO as in the default mode,
 * but only while FAULTYIO_ARM exists: a passing error (a path that fails
 * over, a controller reset), for tests of a replica that heals itself.
 *
 * Forwarding syscall(3) reads six arguments whatever the call passed: on
 * x86-64 and aarch64 the extra ones are whatever the registers hold, and
 * the kernel ignores them. Test use only. */
#include <dlfcn.h>
#include <errno.h>
#include <linux/aio_abi.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "tests/lib/fdpath.h"

typedef long (*syscall_fn)(long, ...);

static _Atomic int armed;

static bool disk_full(void);
static bool flaky(void);

static bool is_armed(void)
{
	if (atomic_load(&armed)) {
		return true;
	}
	const char *arm = getenv("FAULTYIO_ARM");
	if (arm == NULL || access(arm, F_OK) != 0) {
		return false;
	}
	if (!disk_full() && !flaky()) {
		atomic_store(&armed, 1); /* a failed disk stays failed */
	}
	return true;
}

/* The first failed write creates FAULTYIO_ARM.failed: the test tells a
 * disk that failed from one whose log writes never took this path (no
 * KAIO on its file system). */
static void note_failed(void)
{
	static _Atomic int noted;
	if (atomic_exchange(&noted, 1)) {
		return;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s.failed", getenv("FAULTYIO_ARM"));
	FILE *f = fopen(path, "w");
	if (f != NULL) {
		fclose(f);
	}
}

static bool mode_is(const char *want)
{
	const char *mode = getenv("FAULTYIO_MODE");
	return mode != NULL && strcmp(mode, want) == 0;
}

static bool disk_full(void)
{
	return mode_is("full");
}

static bool flaky(void)
{
	return mode_is("flaky");
}

static void fail_writes(struct io_event *ev, long n)
{
	const char *part = getenv("FAULTYIO_PATH");
	if (part == NULL || *part == '\0' || disk_full() || !is_armed()) {
		return;
	}
	for (long i = 0; i < n; i++) {
		const struct iocb *cb =
		        (const struct iocb *)(uintptr_t)ev[i].obj;
		bool write = cb->aio_lio_opcode == IOCB_CMD_PWRITE ||
		             cb->aio_lio_opcode == IOCB_CMD_PWRITEV;
		if (write && ev[i].res >= 0 &&
		    fd_path_contains((int)cb->aio_fildes, part)) {
			ev[i].res = -EIO;
			note_failed();
		}
	}
}

__attribute__((visibility("default"))) long syscall(long number, ...)
{
	static syscall_fn real;
	if (real == NULL) {
		real = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
	}
	va_list ap;
	va_start(ap, number);
	long a[6];
	for (int i = 0; i < 6; i++) {
		a[i] = va_arg(ap, long);
	}
	va_end(ap);
	long rv = real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (number == SYS_io_getevents && rv > 0) {
		int saved = errno;
		fail_writes((struct io_event *)(uintptr_t)a[3], rv);
		errno = saved;
	}
	return rv;
}

typedef int (*fallocate_fn)(int, off_t, off_t);
int posix_fallocate(int fd, off_t offset, off_t len);
int posix_fallocate64(int fd, off_t offset, off_t len);

/* Whether posix_fallocate of fd fails as on a full disk. */
static bool no_space(int fd)
{
	const char *part = getenv("FAULTYIO_PATH");
	if (part == NULL || *part == '\0' || !disk_full() || !is_armed() ||
	    !fd_path_contains(fd, part)) {
		return false;
	}
	note_failed();
	return true;
}

/* posix_fallocate under either of its names (with _FILE_OFFSET_BITS=64
 * glibc's header redirects callers to posix_fallocate64). */
static int fallocate_via(const char *name, fallocate_fn *real, int fd,
                         off_t offset, off_t len)
{
	if (*real == NULL) {
		*real = (fallocate_fn)dlsym(RTLD_NEXT, name);
	}
	return no_space(fd) ? ENOSPC : (*real)(fd, offset, len);
}

__attribute__((visibility("default"))) int posix_fallocate(int fd, off_t offset,
                                                           off_t len)
{
	static fallocate_fn real;
	return fallocate_via("posix_fallocate", &real, fd, offset, len);
}

__attribute__((visibility("default"))) int
posix_fallocate64(int fd, off_t offset, off_t len)
{
	static fallocate_fn real;
	return fallocate_via("posix_fallocate64", &real, fd, offset, len);
}
