/* Storage writer: the container owner's flusher. Decides on the loop thread
 * which unflushed bytes go to tier 2, writes chunks on its own thread, and
 * turns the written ranges into FLUSH / CHUNK_DELETED ops for Raft. */
#ifndef SEGMENTSTORE_STORAGE_WRITER_H
#define SEGMENTSTORE_STORAGE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segmentstore/container_fsm.h"
#include "segmentstore/entry.h"

struct tier2;
struct storage_writer;
struct sw_job; /* one batch of tier-2 work, opaque */
struct metrics_counter;
struct metrics_histogram;

/* Tier-2 metric handles (common/metrics.h) of one container; any may be
 * NULL. The writer counts writes, deletes and orphans; the container's
 * readers count reads. */
struct tier2_metrics {
	struct metrics_counter *writes;          /* chunk writes attempted */
	struct metrics_counter *write_bytes;     /* bytes written */
	struct metrics_counter *write_errors;    /* failed creates/writes */
	struct metrics_histogram *write_seconds; /* successful write time */
	struct metrics_counter *reads;           /* chunk reads attempted */
	struct metrics_counter *read_bytes;      /* bytes read */
	struct metrics_counter *read_errors;     /* failed reads */
	struct metrics_histogram *read_seconds;  /* successful read time */
	struct metrics_counter *deletes;         /* chunk deletes attempted */
	struct metrics_counter *delete_errors;   /* failed deletes */
	struct metrics_counter *orphans;         /* orphan chunks deleted */
};

/* Called on the writer thread when a job is done: hand job to the loop
 * thread, which must call storage_writer_complete (or _discard) on it. */
typedef void (*storage_writer_post_fn)(void *arg, struct sw_job *job);

/* Settings; zero fields take the defaults noted. */
struct storage_writer_config {
	uint32_t container;      /* container id, first part of chunk names */
	struct tier2 *tier2;     /* borrowed until storage_writer_free */
	uint64_t flush_bytes;    /* flush a segment at this many (4 MiB) */
	uint64_t flush_age_ms;   /* ... or when this old (5000) */
	uint64_t chunk_bytes;    /* new chunk at this size (64 MiB) */
	uint64_t job_bytes;      /* bytes copied into one job (16 MiB) */
	unsigned backoff_min_ms; /* first retry delay after a failure (100) */
	unsigned backoff_max_ms; /* longest retry delay (5000) */
	unsigned max_garbage;    /* chunk deletions per job (64) */
	unsigned stuck_ms;       /* a job running this long (a hung tier 2)
	                            reports degraded (30000) */
	storage_writer_post_fn post;         /* required */
	void *post_arg;                      /* its argument */
	const struct tier2_metrics *metrics; /* borrowed until free; NULL */
};

/*
 * Create the writer and start its thread. cfg is copied. Any thread.
 * Errors: STRATA_EINVAL (no tier2 or post), STRATA_ENOMEM, STRATA_EIO
 * (thread); errmsg says which.
 */
int storage_writer_new(const struct storage_writer_config *cfg,
                       struct storage_writer **out, char *errmsg);

/* Stop the thread: a job being written finishes and is posted first.
 * Blocks. Call before storage_writer_free; any thread but the loop. */
void storage_writer_stop(struct storage_writer *w);

/* Free the writer (stopped first if not yet). A job posted but never
 * completed must have been discarded. NULL is a no-op. */
void storage_writer_free(struct storage_writer *w);

/* ---- loop thread only (not thread-safe) ---- */

/* Note that segment seg was changed by an applied op (or vanished): keeps
 * the age of its oldest unflushed byte. now_ms: a monotonic clock.
 * STRATA_ENOMEM (then the age is only learnt at the next sweep). */
int storage_writer_touch(struct storage_writer *w,
                         const struct container_fsm *f, uint64_t seg,
                         uint64_t now_ms);

/* Forget segments that no longer exist and find every segment holding
 * unflushed bytes (after a restore, a delete or a merge). */
void storage_writer_sweep(struct storage_writer *w,
                          const struct container_fsm *f, uint64_t now_ms);

/* Ask for seg to be flushed up to offset upto soon, whatever its size and
 * age. STRATA_ENOMEM. */
int storage_writer_request(struct storage_writer *w, uint64_t seg,
                           uint64_t upto);

/*
 * A new owner generation begins: gen is the Raft log index of the
 * committed OWNER entry of this owner incarnation (unique: no two
 * committed entries share an index, and an older owner's FLUSH can no
 * longer commit once it is applied). Records the chunk names the FSM
 * references now (extents and garbage) so that the next job also sweeps
 * the container's tier-2 prefix and deletes chunks of generations below
 * gen that are not among them (orphans: written, FLUSH never committed).
 * Call after the OWNER entry applied. STRATA_ENOMEM (no sweep then).
 */
int storage_writer_set_owner(struct storage_writer *w,
                             const struct container_fsm *f, uint64_t gen);

/*
 * If idle, not backing off, gen != 0 and something is due (size, age, a
 * request, pressure: flush whatever is unflushed, or the orphan sweep),
 * copy the bytes to flush and start writing them to chunks of owner
 * generation gen (term: the owner's Raft term, for people) on the writer
 * thread. Returns true when a job started. Chunk names are
 * "c<container>/s<segment id>/t<term>-g<gen>-o<segment offset>-<n>" (n
 * counts chunks started by this writer): no two owners ever write the
 * same chunk, even when a restarted single-replica group keeps its term.
 */
bool storage_writer_plan(struct storage_writer *w,
                         const struct container_fsm *f, uint64_t term,
                         uint64_t gen, uint64_t now_ms, bool pressure);

/* The owner generation in chunk name (borrowed) of this container into
 * *gen; false when name is not a chunk name this writer makes. */
bool storage_writer_chunk_gen(uint32_t container, const char *name,
                              uint64_t *gen);

/* Reports a segment whose flush failed (loop thread, from _complete). */
typedef void (*storage_writer_failed_fn)(void *arg, uint64_t seg);

/*
 * A posted job is back on the loop. Records what was written, and when
 * the job's generation equals gen, adds to b one FLUSH op per range
 * written and one CHUNK_DELETED op (naming it) per garbage chunk deleted;
 * returns how many ops were added
 * (0: nothing to commit; the writer is idle again). With ops added the
 * writer stays busy until storage_writer_committed. Calls failed(arg,
 * seg) for each segment that could not be flushed (then backs off and is
 * degraded until a job succeeds). Frees job. STRATA_ENOMEM from the
 * builder is reported as 0 ops added (the bytes are written again later).
 */
unsigned storage_writer_complete(struct storage_writer *w, struct sw_job *job,
                                 uint64_t gen, struct entry_builder *b,
                                 uint64_t now_ms,
                                 storage_writer_failed_fn failed, void *arg);

/* The ops from storage_writer_complete were applied (ok) or not. */
void storage_writer_committed(struct storage_writer *w, bool ok);

/* Drop a posted job without committing it (shutdown). */
void storage_writer_discard(struct storage_writer *w, struct sw_job *job);

/* True while tier 2 fails (since the last failed job, until one
 * succeeds), or while a job has run stuck_ms or more (a hung tier 2).
 * Any thread. */
bool storage_writer_degraded(struct storage_writer *w);

/* True when a job is being written or committed. */
bool storage_writer_busy(const struct storage_writer *w);

/* ---- any thread: tier-2 chunk access discipline ---- */

/* Take / release exclusive use of chunk name (borrowed): the host never
 * runs two ops on one chunk at once, so readers and the writer take this
 * around every tier-2 op. Blocks while another thread holds it.
 * STRATA_ENOMEM from lock. */
int storage_writer_lock_chunk(struct storage_writer *w, const char *name);
void storage_writer_unlock_chunk(struct storage_writer *w, const char *name);

#endif /* SEGMENTSTORE_STORAGE_WRITER_H */
