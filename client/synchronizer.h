/* State synchronizer: a state folded from the records of a revisioned log
 * (one segment), with optimistic conditional updates and compaction. */
#ifndef CLIENT_SYNCHRONIZER_H
#define CLIENT_SYNCHRONIZER_H

/*
 * A revisioned log is an append-only sequence of records whose revision is
 * a byte offset (for a segment: its length). Every copy of the state is
 * the fold of the records from the log's start; the first record after a
 * compaction is a full state (the log is truncated just before it).
 *
 * Updates are optimistic: the caller's generator looks at the current
 * state and writes a record (or decides that nothing is needed); the
 * record is appended only if the log is still at the revision the state
 * was folded to, else the synchronizer fetches what changed and asks the
 * generator again. Not thread-safe: one thread at a time per synchronizer.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Called for each record read: rec[0..len) borrowed for the call; offset
 * is where the record starts, next where the following one starts.
 * Returns 0 to go on, or an error code that stops the read. */
typedef int (*rlog_record_fn)(void *arg, const uint8_t *rec, size_t len,
                              uint64_t offset, uint64_t next);

/*
 * The revisioned log interface (a struct of function pointers so that the
 * real segment and an in-memory fake can back it). Every function returns
 * 0 or a STRATA_E* code with errmsg (NULL or STRATA_ERRMSG_SIZE bytes).
 */
struct rlog_ops {
	/* Call cb for every record from revision from (a record boundary)
	 * to the current end, and set *end to the revision after the last
	 * one. STRATA_ETRUNCATED (with *end = the log's start) when from is
	 * below the start. */
	int (*read)(void *log, uint64_t from, rlog_record_fn cb, void *arg,
	            uint64_t *end, char *errmsg);
	/* Append data[0..len) as one record if the log's revision is still
	 * expected: *new_rev = the revision after it. STRATA_ECONFLICT when
	 * the log moved on (nothing written). */
	int (*append_cond)(void *log, uint64_t expected, const void *data,
	                   size_t len, uint64_t *new_rev, char *errmsg);
	/* Append data[0..len) as one record whatever the revision; *offset
	 * = where it starts. */
	int (*append)(void *log, const void *data, size_t len, uint64_t *offset,
	              char *errmsg);
	/* Drop every record before revision rev (a record boundary). */
	int (*truncate)(void *log, uint64_t rev, char *errmsg);
	/* The log's start (first readable revision) and end revision. */
	int (*bounds)(void *log, uint64_t *start, uint64_t *end, char *errmsg);
};

/*
 * What the synchronizer does with the state (kept opaque):
 * reset() empties it; apply() folds one record (0, or an error that the
 * synchronizer reports after resetting the state); encode() appends the
 * full state as one record (for compaction); is_full() (may be NULL)
 * tells whether a record is a full state, so that the synchronizer knows
 * how many bytes were written since the last one.
 */
struct sync_state_ops {
	void (*reset)(void *state);
	bool (*is_full)(const uint8_t *rec, size_t len);
	int (*apply)(void *state, const uint8_t *rec, size_t len, char *errmsg);
	int (*encode)(const void *state, struct buf *b);
};

/*
 * A generator: look at state and append the record to write to out, or
 * leave out empty when no update is needed. Returns 0, or an error code
 * that ends the update with that code (errmsg for the caller).
 */
typedef int (*sync_gen_fn)(void *arg, const void *state, struct buf *out,
                           char *errmsg);

struct synchronizer {
	const struct rlog_ops *ops;        /* borrowed */
	void *log;                         /* borrowed */
	const struct sync_state_ops *sops; /* borrowed */
	void *state;                       /* borrowed: the folded state */
	uint64_t revision;                 /* state = fold up to here */
	uint64_t full_revision; /* where the last full record began */
	uint64_t last_write_at; /* where our last record began */
	bool loaded;            /* state reflects the log */
	unsigned max_attempts;  /* conditional attempts per update */
	uint64_t conflicts;     /* statistics: lost races */
	uint64_t records;       /* statistics: records applied */
};

/* Initialise s over log (ops, log, state ops and state are borrowed and
 * must outlive s). Nothing is read yet. */
void sync_init(struct synchronizer *s, const struct rlog_ops *ops, void *log,
               const struct sync_state_ops *sops, void *state);

/*
 * Fold every record written since the last fetch into the state. After a
 * truncation past our revision (someone compacted) the state is rebuilt
 * from the log's start. Errors: the log's, and the state's apply errors
 * (the state is then reset and the next fetch starts over).
 */
int sync_fetch(struct synchronizer *s, char *errmsg);

/*
 * Optimistic update: fetch, run gen on the state; if it wrote a record,
 * append it conditionally at the state's revision and fold it. On a
 * conflict fetch and run gen again, up to max_attempts times (then
 * STRATA_EBUSY). Returns 0 also when gen decided on no record;
 * *written (may be NULL) says whether one was written.
 */
int sync_update(struct synchronizer *s, sync_gen_fn gen, void *arg,
                bool *written, char *errmsg);

/* Append rec[0..len) unconditionally, then fetch (so that the state
 * includes it and everything before it). */
int sync_update_any(struct synchronizer *s, const void *rec, size_t len,
                    char *errmsg);

/*
 * Write the full state as one record at the current revision and drop
 * everything before it. A conflict (someone wrote meanwhile) is retried
 * like sync_update. After it the log starts with the full state.
 */
int sync_compact(struct synchronizer *s, char *errmsg);

/* Bytes of records written since the last full state. */
uint64_t sync_bytes_since_compaction(const struct synchronizer *s);

#endif /* CLIENT_SYNCHRONIZER_H */
