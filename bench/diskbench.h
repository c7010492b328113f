/* Raw-disk baseline: O_DIRECT + O_DSYNC sequential appends. */
#ifndef BENCH_DISKBENCH_H
#define BENCH_DISKBENCH_H

#include <stddef.h>
#include <stdint.h>

/* One block size's result. */
struct disk_result {
	size_t block;    /* bytes per write */
	int prealloc;    /* 1: file preallocated (fallocate), 0: append */
	uint64_t writes; /* writes done */
	double secs;     /* wall time */
	double mb_s;     /* MB/s (10^6 bytes) */
	double writes_s; /* synchronous writes per second */
	uint64_t p50_ns; /* per-write latency */
	uint64_t p99_ns; /* per-write latency */
};

/*
 * Measure sequential synchronous writes of `block` bytes into a new file in
 * dir (opened O_DIRECT|O_DSYNC, removed afterwards) for up to `secs`
 * seconds or max_bytes bytes, whichever comes first. prealloc = 1 first
 * fallocates max_bytes so writes do not grow the file (like a
 * preallocated log segment); 0 appends to a growing file. Returns 0, or
 * STRATA_ENOTSUP (the filesystem refuses O_DIRECT, e.g. tmpfs: errmsg
 * says so) or STRATA_EIO with errmsg naming the file.
 */
int disk_bench(const char *dir, size_t block, int prealloc, double secs,
               uint64_t max_bytes, struct disk_result *out, char *errmsg);

#endif /* BENCH_DISKBENCH_H */
