/* Fault injection into the vendored libraft's log writes, for tests linked
 * with -Wl,--wrap=UvOsIoGetevents (tests/unit/raft/CMakeLists.txt): every
 * completion of a KAIO log write, on the loop or on libraft's thread pool,
 * passes through the wrapper, which can turn one into an I/O error as a
 * failing disk would. Off until armed. Thread-safe. */
#ifndef STRATA_TESTS_LIBRAFT_FAULTS_H
#define STRATA_TESTS_LIBRAFT_FAULTS_H

#include <stdbool.h>
#include <stdint.h>

/* Fail the nth log write completed from now on (1 = the next), with EIO;
 * 0 disarms. Resets the record below. */
void libraft_faults_fail_write(unsigned nth);

/* The same, counting only writes to files whose path contains `in` (one
 * replica's data directory when several share the process); NULL: all. */
void libraft_faults_fail_write_in(const char *in, unsigned nth);

/* What happened since the last arm: whether a write was failed, its file
 * offset, and whether a write further into the same file completed
 * successfully (one in flight beside the failed one, or finished first). */
struct libraft_faults_record {
	unsigned completed;     /* log writes completed */
	bool failed;            /* the armed failure happened */
	uint64_t failed_offset; /* its offset in the segment file */
	unsigned later_ok;      /* later writes of that file that succeeded */
};
void libraft_faults_get(struct libraft_faults_record *out);

/* A full disk, for tests also linked with -Wl,--wrap=UvOsFallocate: while
 * on, every log segment libraft creates in a directory whose path contains
 * `in` (NULL: any) fails to get its space (ENOSPC from posix_fallocate).
 * Returns how many creations it failed since the last call. */
unsigned libraft_faults_disk_full_in(const char *in, bool full);

/* No space for snapshots, for tests also linked with -Wl,--wrap=UvOsWrite:
 * while on, libraft's writes of snapshot files (and of their metadata) in
 * a directory whose path contains `in` (NULL: any) fail with ENOSPC,
 * snapshots it takes and snapshots sent by a leader alike; the log's own
 * writes go on. Returns how many writes it failed since the last call. */
unsigned libraft_faults_snapshot_full_in(const char *in, bool on);

#endif
