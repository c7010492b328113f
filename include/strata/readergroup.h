/* libstrata public API: reader groups, readers and checkpoints. */
#ifndef STRATA_READERGROUP_H
#define STRATA_READERGROUP_H

/*
 * A reader group is a set of readers that share the segments of one or
 * more streams: every event is read by exactly one reader of the group,
 * events of one routing key in order (a segment's successors are read only
 * after all its predecessors). The group's state (who owns which segment
 * at which offset, pending checkpoints) lives in the internal stream
 * `_RG<group>` of the scope and is changed by conditional appends
 * (docs/client.md, "Reader groups and checkpoints").
 */

#include "strata/client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One stream read by a group, from start to end (n == 0: the head / no
 * end). The cuts' scope/stream name the stream. */
struct strata_reader_group_stream {
	const struct strata_stream_cut *start; /* borrowed; never NULL */
	const struct strata_stream_cut *end;   /* borrowed; NULL = none */
};

/*
 * Whether the group holds back its streams' retention (Pravega's
 * consumption-based retention). A stream with a retention policy is then
 * truncated only up to where every such group released it, and at most
 * down to the policy's minimum; the policy's maximum (when set) still
 * applies to a group that lags. Until it releases anything, a group holds
 * its streams at its start cuts. docs/client.md, "Consumption-based
 * retention".
 */
enum strata_rg_retention {
	STRATA_RG_RETENTION_NONE = 0, /* the group holds nothing back */
	STRATA_RG_RETENTION_MANUAL =
	        1,                               /* released by
	                                            strata_reader_group_update_retention_cut */
	STRATA_RG_RETENTION_AUTO_CHECKPOINT = 2, /* released at each completed
	                                            checkpoint */
};

struct strata_reader_group_config {
	const struct strata_reader_group_stream *streams; /* borrowed */
	size_t n_streams;                                 /* 1..64 */
	uint32_t group_refresh_ms;            /* readers fetch the state this
	                                         often (default 3000) */
	uint32_t max_outstanding_checkpoints; /* default 3 */
	enum strata_rg_retention retention;   /* default NONE */
	uint32_t checkpoint_interval_ms;      /* automatic checkpoints this
	                                         often, 0 = off (default);
	                                         at least 100 */
};

/* Fill cfg with the defaults above and no stream. */
STRATA_API void
strata_reader_group_config_default(struct strata_reader_group_config *cfg);

/*
 * Create group in scope reading cfg's streams (copied): the controller
 * records it and creates its `_RG<group>` state stream (this call waits
 * for that), then the initial state (every segment of the start cuts
 * unassigned) is written. Group names: 1..252 characters of
 * [A-Za-z0-9.-] (STRATA_EBADNAME otherwise, before any call).
 * group_refresh_ms / max_outstanding_checkpoints 0 = the defaults.
 * Errors: STRATA_EEXIST, STRATA_ENOENT (no such scope or stream),
 * STRATA_EINVAL (bad config or cut), STRATA_ETRUNCATED (a start cut
 * naming a segment truncation deleted), STRATA_EBADNAME, and the
 * transport errors.
 */
STRATA_API int strata_reader_group_create(
        struct strata_client *c, const char *scope, const char *group,
        const struct strata_reader_group_config *cfg, char *errmsg);

/* Delete the group and its state stream (close its readers first).
 * Retries while the controller is still creating the state stream. */
STRATA_API int strata_reader_group_delete(struct strata_client *c,
                                          const char *scope, const char *group,
                                          char *errmsg);

/* A handle to manage a group: checkpoints, resets, offline readers. */
struct strata_reader_group;

STRATA_API int strata_reader_group_open(struct strata_client *c,
                                        const char *scope, const char *group,
                                        struct strata_reader_group **out,
                                        char *errmsg);
STRATA_API void strata_reader_group_close(struct strata_reader_group *rg);

/* A completed checkpoint: one stream cut per stream of the group. */
struct strata_checkpoint {
	char name[256];                 /* NUL-terminated */
	size_t n;                       /* cuts */
	struct strata_stream_cut *cuts; /* owned */
};
STRATA_API void strata_checkpoint_free(struct strata_checkpoint *cp);

/*
 * Automatic checkpoints (checkpoint_interval_ms > 0): at a refresh, a
 * reader that finds no checkpoint pending and the group's last automatic
 * one at least that old starts checkpoint `_auto-<wall-clock ms>`
 * (conditional append: one reader wins). Readers pass them like any
 * checkpoint but strata_reader_next does not return them; with retention
 * AUTO_CHECKPOINT their positions are released when they complete, so
 * retention follows the readers without the application checkpointing.
 * They count among the completed checkpoints the group keeps (8).
 */

/*
 * Start checkpoint name (1..255 bytes, unique in the group, not starting
 * with '_', which marks automatic checkpoints) and wait up to
 * timeout_ms until every online reader has passed it (each returns a
 * STRATA_READ_CHECKPOINT event from strata_reader_next and records its
 * positions). *out gets the checkpoint. Errors: STRATA_EEXIST (name
 * used), STRATA_EBUSY (max_outstanding_checkpoints pending),
 * STRATA_ETIMEDOUT (readers did not all pass in time: the checkpoint
 * stays pending and completes later), transport errors.
 */
STRATA_API int strata_reader_group_initiate_checkpoint(
        struct strata_reader_group *rg, const char *name, int timeout_ms,
        struct strata_checkpoint **out, char *errmsg);

/*
 * Checkpoint name of the group as it is now, without waiting: 0 and *out
 * once every reader passed it (what initiate_checkpoint returns), or
 * STRATA_EAGAIN while some have not (initiate it with timeout_ms 0, then
 * poll here: a coordinator that must stay responsive does that),
 * STRATA_ENOENT (unknown: never taken, or dropped after newer ones
 * completed), transport errors. *out is the caller's: free it with
 * strata_checkpoint_free. Fetches the group's state (one controller
 * round trip); callable from any thread but a libstrata callback, one
 * call per rg at a time, like initiate_checkpoint.
 */
STRATA_API int strata_reader_group_get_checkpoint(
        struct strata_reader_group *rg, const char *name,
        struct strata_checkpoint **out, char *errmsg);

/*
 * Rewrite the group's state so that reading resumes exactly at the
 * positions of checkpoint cp (a completed checkpoint of this group):
 * every reader is removed (running readers fail with STRATA_ENOENT and
 * must be recreated) and the segments are unassigned at those positions.
 */
STRATA_API int strata_reader_group_reset(struct strata_reader_group *rg,
                                         const struct strata_checkpoint *cp,
                                         char *errmsg);

/*
 * Release the group's streams up to cuts[0..n) (one per stream, each a
 * stream the group reads; others, and cuts without positions, keep their
 * last release): retention may truncate them up to there. For groups with
 * retention MANUAL (or AUTO_CHECKPOINT, to move ahead of the next
 * checkpoint); a checkpoint's cuts fit as they are. Two controller round
 * trips; it reads only rg's names, so it may run beside another call on
 * the same rg. Errors: STRATA_EINVAL (retention NONE, a stream the group
 * does not read, a cut that does not fit its stream or lies past a
 * segment's end, no positions at all), STRATA_ECONFLICT (the group's
 * configuration changed meanwhile: retry), STRATA_ENOENT, transport errors.
 */
STRATA_API int
strata_reader_group_update_retention_cut(struct strata_reader_group *rg,
                                         const struct strata_stream_cut *cuts,
                                         size_t n, char *errmsg);

/*
 * Replace the group's configuration (Pravega's resetReaderGroup(config)):
 * cfg's streams, start and end cuts, refresh, checkpoint and retention
 * settings. The controller bumps the group's generation and resets its
 * released cuts to the new start cuts; the group's state is rewritten as
 * at creation in a new epoch: every reader is removed (running readers
 * fail with STRATA_ENOENT and must be recreated), checkpoints are
 * dropped, and reading starts over at the new start cuts. Errors: as
 * strata_reader_group_create (STRATA_ENOENT for a stream that does not
 * exist), STRATA_ECONFLICT (another update won: call again). A failure
 * after the controller took the configuration leaves the old state under
 * it: call again. cfg is read during the call only. Blocking (several
 * controller and store round trips): not from a libstrata callback, one
 * call per rg at a time, like initiate_checkpoint.
 */
STRATA_API int
strata_reader_group_update(struct strata_reader_group *rg,
                           const struct strata_reader_group_config *cfg,
                           char *errmsg);

/*
 * Declare reader offline (its process died): its segments go back to the
 * group at the positions it last recorded (its last checkpoint or
 * progress report: events after them are read again by another reader).
 * Unknown readers succeed.
 */
STRATA_API int
strata_reader_group_reader_offline(struct strata_reader_group *rg,
                                   const char *reader, char *errmsg);

/* Names of the online readers. */
STRATA_API int
strata_reader_group_online_readers(struct strata_reader_group *rg,
                                   struct strata_names **out, char *errmsg);

/* ---------------------------------------------------------------- reader */

struct strata_reader;

/* Join group as reader (name unique in the group, 1..255 bytes).
 * STRATA_EEXIST when a reader of that name is online. */
STRATA_API int strata_reader_new(struct strata_client *c, const char *scope,
                                 const char *group, const char *reader,
                                 struct strata_reader **out, char *errmsg);

enum strata_read_kind {
	STRATA_READ_NONE = 0,       /* nothing within wait_ms */
	STRATA_READ_EVENT = 1,      /* an event */
	STRATA_READ_CHECKPOINT = 2, /* checkpoint `checkpoint` passed */
	STRATA_READ_END = 3,        /* the group has nothing left to read
	                               (end cuts reached / streams sealed) */
};

/* What strata_reader_next returns; pointers valid until the next call. */
struct strata_read {
	enum strata_read_kind kind;
	const uint8_t *data; /* EVENT: payload */
	size_t len;
	const char *scope; /* EVENT: its stream */
	const char *stream;
	uint64_t segment_id; /* EVENT: where it was */
	uint64_t offset;
	const char *checkpoint; /* CHECKPOINT: its name */
};

/*
 * Next event, checkpoint marker or nothing within wait_ms. Not
 * thread-safe (one thread per reader). Errors: STRATA_ENOENT (the reader
 * was declared offline or the group reset: create it again), STRATA_ECORRUPT,
 * and the transport errors. STRATA_ETRUNCATED says that part of a segment
 * was truncated (retention, strata_stream_truncate) before this reader
 * read it (errmsg names the segment and bytes); the reader has moved to
 * the new start, so the next call goes on from there.
 */
STRATA_API int strata_reader_next(struct strata_reader *r, int wait_ms,
                                  struct strata_read *out, char *errmsg);

/* Where a reader stands in a stream's time (docs/client.md, "Watermarks"),
 * judged on the group's positions: this reader's segments where it is,
 * the group's other segments where the group last recorded them (a
 * segment another reader holds may come to this one), finished
 * predecessors of waiting successors at their ends. has_lower: every
 * event this reader returns from now on was written after each counted
 * writer of the stream noted a time of at least lower (Flink's
 * watermark). has_upper: the events before the next watermark's
 * positions were written before notes of at most upper. */
struct strata_time_window {
	bool has_lower;
	int64_t lower;
	bool has_upper;
	int64_t upper;
};

/* The reader's time window in scope/stream (one the group reads), from
 * the watermarks the controller keeps (fetched at most every 200 ms).
 * Neither bound when the stream's writers note no time or the group has
 * no segment of the stream left to read. *out is the caller's; names are
 * read during the call only. Same thread rules as strata_reader_next.
 * Errors: STRATA_EINVAL (a stream the group does not read), the
 * controller's. */
STRATA_API int strata_reader_time_window(struct strata_reader *r,
                                         const char *scope, const char *stream,
                                         struct strata_time_window *out,
                                         char *errmsg);

/* Leave the group, handing its segments back at the current positions,
 * and free the reader (freed also on error). */
STRATA_API int strata_reader_close(struct strata_reader *r, char *errmsg);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_READERGROUP_H */
