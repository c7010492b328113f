/* Raw-disk baseline: O_DIRECT + O_DSYNC sequential appends. */
#include "bench/diskbench.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/hist.h"
#include "common/alloc.h"
#include "strata/error.h"

#define DISK_ALIGN 4096

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int disk_bench(const char *dir, size_t block, int prealloc, double secs,
               uint64_t max_bytes, struct disk_result *out, char *errmsg)
{
	memset(out, 0, sizeof(*out));
	out->block = block;
	out->prealloc = prealloc;
	if (block == 0 || block % DISK_ALIGN != 0 || max_bytes < block) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "disk bench: block %zu must be a multiple of %d and "
		         "at most the size limit",
		         block, DISK_ALIGN);
		return STRATA_EINVAL;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/diskbench-XXXXXX", dir);
	int fd = mkstemp(path);
	if (fd < 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "disk bench: create a file in %.150s: %s", dir,
		         strerror(errno));
		return STRATA_EIO;
	}
	close(fd);
	int rc = 0;
	void *buf = NULL;
	fd = open(path, O_WRONLY | O_DIRECT | O_DSYNC);
	if (fd < 0) {
		int e = errno;
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "disk bench: open %.100s with O_DIRECT|O_DSYNC: %s%s",
		         path, strerror(e),
		         e == EINVAL ? " (this filesystem has no O_DIRECT, "
		                       "e.g. tmpfs: use --data-dir on a disk)"
		                     : "");
		rc = e == EINVAL ? STRATA_ENOTSUP : STRATA_EIO;
		goto out_unlink;
	}
	if (prealloc && posix_fallocate(fd, 0, (off_t)max_bytes) != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "disk bench: preallocate %llu bytes in %.150s failed",
		         (unsigned long long)max_bytes, path);
		rc = STRATA_EIO;
		goto out_close;
	}
	if (prealloc)
		fdatasync(fd); /* the allocation itself is not measured */
	if (posix_memalign(&buf, DISK_ALIGN, block) != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "disk bench: out of memory");
		rc = STRATA_ENOMEM;
		goto out_close;
	}
	/* incompressible content */
	uint64_t x = UINT64_C(0x853c49e6748fea9b);
	for (size_t i = 0; i + 8 <= block; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy((char *)buf + i, &x, 8);
	}
	struct hist *h = strata_malloc(sizeof(*h));
	if (h == NULL) {
		rc = STRATA_ENOMEM;
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "disk bench: out of memory");
		goto out_free;
	}
	hist_init(h);
	uint64_t start = now_ns();
	uint64_t end = start + (uint64_t)(secs * 1e9);
	uint64_t off = 0;
	while (off + block <= max_bytes) {
		uint64_t t = now_ns();
		if (t >= end)
			break;
		ssize_t n = pwrite(fd, buf, block, (off_t)off);
		if (n != (ssize_t)block) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "disk bench: write %zu bytes at %llu in "
			         "%.150s: %s",
			         block, (unsigned long long)off, path,
			         n < 0 ? strerror(errno) : "short write");
			rc = STRATA_EIO;
			break;
		}
		hist_record(h, now_ns() - t);
		off += block;
		out->writes++;
	}
	out->secs = (double)(now_ns() - start) / 1e9;
	if (out->secs > 0) {
		out->mb_s = (double)off / 1e6 / out->secs;
		out->writes_s = (double)out->writes / out->secs;
	}
	out->p50_ns = hist_percentile(h, 50);
	out->p99_ns = hist_percentile(h, 99);
	strata_free(h);
out_free:
	free(buf); /* posix_memalign: libc heap */
out_close:
	close(fd);
out_unlink:
	unlink(path);
	return rc;
}
