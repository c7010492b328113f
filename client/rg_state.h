/* Reader-group state: the deterministic fold of the records in a group's
 * state synchronizer (segment assignment, successors, checkpoints), the
 * records' versioned binary codec, and the pure decisions readers make. */
#ifndef CLIENT_RG_STATE_H
#define CLIENT_RG_STATE_H

/*
 * The state lives in the group's `_RG<group>` segment as a sequence of
 * records (docs/client.md, "Reader groups and checkpoints"). Every client
 * folds the same records in the same order with rg_state_apply(), so every
 * copy of the state agrees. A record is:
 *
 *     u8 version (RG_REC_VERSION) | u8 type | fields
 *
 * integers little-endian, strings u32 length + bytes (no NUL), doubles as
 * their IEEE-754 bits in a u64. A FULL record replaces the whole state
 * (creation, compaction, reset); the others change it. Records that no
 * longer apply (a reader that is gone, a segment already taken) are
 * no-ops, so a record decided on an old state cannot corrupt a newer one;
 * readers write their decisions as conditional appends anyway.
 *
 * Segments are named by (stream index, segment id): the index into the
 * state's streams, fixed at creation.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/synchronizer.h"
#include "common/buf.h"

#define RG_REC_VERSION 1

/* Record types. */
enum rg_rec_type {
	RG_REC_FULL = 1,          /* the whole state */
	RG_REC_ADD_READER = 2,    /* a reader joins */
	RG_REC_REMOVE_READER = 3, /* a reader leaves (or is declared offline) */
	RG_REC_ACQUIRE = 4,       /* a reader takes unassigned segments */
	RG_REC_RELEASE = 5,       /* a reader gives a segment back */
	RG_REC_COMPLETE = 6,      /* a reader read a segment to its end */
	RG_REC_PROGRESS = 7,      /* a reader's positions and unread bytes */
	RG_REC_CP_CREATE = 8,     /* start a checkpoint */
	RG_REC_CP_READER = 9,     /* a reader passed a checkpoint */
};

/* Limits that keep the state (and a FULL record) bounded. */
#define RG_MAX_STREAMS 64
#define RG_MAX_SEGMENTS 8192 /* active + waiting segments */
#define RG_MAX_READERS 1024
#define RG_MAX_PREDS 4096     /* predecessors of one segment */
#define RG_MAX_CHECKPOINTS 64 /* pending + completed kept */
#define RG_KEEP_COMPLETED 8   /* completed checkpoints kept */
#define RG_MAX_NAME 255       /* reader and checkpoint names */
/* Offset meaning "no end": read a segment until it is sealed. */
#define RG_NO_END UINT64_MAX

/* A position in one segment, with its key range (kept so that a
 * checkpoint can be restored without asking the controller). */
struct rg_pos {
	uint32_t stream; /* index into rg_state.streams */
	uint64_t id;     /* segment id: epoch << 32 | number */
	uint64_t offset; /* next byte to read */
	double low;      /* key range [low, high) */
	double high;
};

/* One stream the group reads. */
struct rg_stream {
	char *scope;        /* owned */
	char *name;         /* owned */
	size_t n_end;       /* end cut positions (0 = unbounded) */
	struct rg_pos *end; /* owned; offset = where reading stops */
};

/* A segment that can be read now: unassigned or owned by a reader. */
struct rg_seg {
	struct rg_pos pos; /* offset: where its next owner starts (the last
	                      position recorded while it is owned) */
	uint64_t end;      /* stop here (end cut), or RG_NO_END */
	uint32_t owner;    /* reader rid, 0 = unassigned */
};

/* A predecessor of a waiting segment. */
struct rg_pred {
	uint64_t id;
	bool done;           /* completed */
	uint64_t end_offset; /* its final offset once done */
	double low, high;    /* its key range, once done */
};

/* A successor waiting until all its predecessors are completed. */
struct rg_future {
	struct rg_pos pos; /* offset 0 */
	uint64_t end;      /* as rg_seg.end */
	uint32_t n_preds;
	struct rg_pred *preds; /* owned */
};

/* An online reader. */
struct rg_reader {
	char *name;      /* owned */
	uint32_t rid;    /* unique within the state, never reused */
	uint64_t unread; /* unread bytes it last reported */
};

/* A checkpoint: pending while readers remain in waiting. */
struct rg_checkpoint {
	char *name;         /* owned */
	uint32_t n_waiting; /* readers (rids) that did not pass it yet */
	uint32_t *waiting;  /* owned */
	size_t n_pos;       /* recorded positions, sorted by (stream, id) */
	struct rg_pos *pos; /* owned */
};

/* The whole state. Zero it (or rg_state_init) before use. */
struct rg_state {
	uint64_t epoch;           /* bumped by every reset: readers that joined
	                             an older epoch must re-join */
	uint32_t refresh_ms;      /* how often readers fetch updates */
	uint32_t checkpoint_ms;   /* automatic checkpoints (0 = off) */
	uint32_t max_outstanding; /* pending checkpoints allowed */
	uint32_t next_rid;        /* next reader rid (starts at 1) */
	size_t n_streams;
	struct rg_stream *streams;
	size_t n_segs; /* sorted by (stream, id) */
	struct rg_seg *segs;
	size_t n_futures; /* sorted by (stream, id) */
	struct rg_future *futures;
	size_t n_readers; /* sorted by name */
	struct rg_reader *readers;
	size_t n_cps; /* oldest first */
	struct rg_checkpoint *cps;
};

/* A successor of a completed segment, as the controller lists it. */
struct rg_successor {
	uint64_t id;
	double low, high;
	uint32_t n_preds;
	const uint64_t *preds; /* borrowed: every predecessor of it */
};

/* Initialise an empty state (no streams, no readers). */
void rg_state_init(struct rg_state *st);

/* Free everything st holds and leave it empty (as rg_state_init). */
void rg_state_close(struct rg_state *st);

/* ---------------------------------------------------------- building -- */

/*
 * Append a stream (scope, name copied) with its end cut (end[0..n_end)
 * copied, stream fields ignored) and set *index to its index. For
 * building the initial state of a group. Errors: STRATA_ERANGE (too many
 * streams or positions), STRATA_ENOMEM.
 */
int rg_state_add_stream(struct rg_state *st, const char *scope,
                        const char *name, const struct rg_pos *end,
                        size_t n_end, uint32_t *index);

/*
 * Add an unassigned segment at pos (copied); its end comes from its
 * stream's end cut. Adding a known segment again is STRATA_EEXIST.
 * Errors also STRATA_EINVAL (no such stream), STRATA_ERANGE, STRATA_ENOMEM.
 */
int rg_state_add_segment(struct rg_state *st, const struct rg_pos *pos);

/* ------------------------------------------------------------ folding -- */

/*
 * Apply one record rec[0..len) (borrowed). A malformed record is
 * STRATA_ECORRUPT (errmsg says what and where); STRATA_ENOMEM. On an error
 * st may be partly changed: rebuild it from the log (rg_state_close, then
 * fold again). A record that no longer applies is a successful no-op.
 */
int rg_state_apply(struct rg_state *st, const uint8_t *rec, size_t len,
                   char *errmsg);

/* Append the FULL record of st to b. Errors: STRATA_ENOMEM, STRATA_ETOOBIG
 * (b's limit). */
int rg_state_encode(const struct rg_state *st, struct buf *b);

/* Deep copy src into dst (dst is closed first). Errors: STRATA_ENOMEM
 * (dst is left empty). */
int rg_state_copy(struct rg_state *dst, const struct rg_state *src);

/* ------------------------------------------------------------ records -- */

/* Each appends one record to b. Strings and arrays are copied. Errors:
 * STRATA_ENOMEM, STRATA_ETOOBIG, STRATA_EINVAL (a name longer than
 * RG_MAX_NAME or empty, or too many items). */
int rg_rec_add_reader(struct buf *b, const char *reader);
/* have_pos false: the reader's segments go back at the positions the state
 * last recorded for them. */
int rg_rec_remove_reader(struct buf *b, const char *reader, bool have_pos,
                         const struct rg_pos *pos, size_t n);
int rg_rec_acquire(struct buf *b, const char *reader, const struct rg_pos *segs,
                   size_t n);
int rg_rec_release(struct buf *b, const char *reader, const struct rg_pos *pos);
int rg_rec_complete(struct buf *b, const char *reader,
                    const struct rg_pos *at_end,
                    const struct rg_successor *succ, size_t n_succ);
int rg_rec_progress(struct buf *b, const char *reader, uint64_t unread,
                    const struct rg_pos *pos, size_t n);
int rg_rec_cp_create(struct buf *b, const char *name);
int rg_rec_cp_reader(struct buf *b, const char *name, const char *reader,
                     const struct rg_pos *pos, size_t n);

/* ------------------------------------------------------------ queries -- */

/* The reader named name, or NULL when it is not online. */
const struct rg_reader *rg_state_reader(const struct rg_state *st,
                                        const char *name);

/* Index of stream scope/name among st->streams, or UINT32_MAX when the
 * group does not read it (NULL names match nothing). */
uint32_t rg_state_stream(const struct rg_state *st, const char *scope,
                         const char *name);

/* The active segment (stream, id), or NULL. */
const struct rg_seg *rg_state_seg(const struct rg_state *st, uint32_t stream,
                                  uint64_t id);

/* Segments owned by rid / unassigned (rid 0). */
size_t rg_state_count_owned(const struct rg_state *st, uint32_t rid);

/* The oldest pending checkpoint that still waits for reader name, or
 * NULL. */
const struct rg_checkpoint *
rg_state_checkpoint_for_reader(const struct rg_state *st, const char *name);

/* The checkpoint named name, or NULL. */
const struct rg_checkpoint *rg_state_checkpoint(const struct rg_state *st,
                                                const char *name);

/* Pending checkpoints (waiting for at least one reader). */
size_t rg_state_pending_checkpoints(const struct rg_state *st);

/* ---------------------------------------------------------- decisions -- */

/*
 * Which unassigned segments reader name should take now: up to its fair
 * share ceil(segments / readers) minus what it owns, leaving first pick
 * to the readers that own fewer, oldest (lowest stream, id) first, none
 * while a checkpoint waits for it. Writes at most
 * max positions into out and returns how many.
 */
size_t rg_state_plan_acquire(const struct rg_state *st, const char *name,
                             struct rg_pos *out, size_t max);

/*
 * Whether reader name should release one of its segments to balance the
 * group, and which: never while a checkpoint waits for it or when it owns
 * fewer than 2. By count: when it owns 2 or more than the least loaded
 * reader, or more than the fair share. By unread bytes: when its unread
 * bytes exceed twice those of the reader with the fewest plus 1 MiB, it
 * gives away the segment with the most unread bytes that is at most half
 * the difference (so the two never swap roles). unread[i] is the unread
 * bytes of owned[i] (its segments as the reader sees them, n of them).
 * Returns true and sets *out (owned[i]) when one should go.
 */
bool rg_state_plan_release(const struct rg_state *st, const char *name,
                           const struct rg_pos *owned, const uint64_t *unread,
                           size_t n, struct rg_pos *out);

/*
 * Positions of the whole group now, for stream cuts: every active segment
 * at its recorded offset plus every completed predecessor of a waiting
 * segment at its end. *out is allocated (strata_free); sorted by (stream,
 * id). Errors: STRATA_ENOMEM.
 */
int rg_state_positions(const struct rg_state *st, struct rg_pos **out,
                       size_t *n);

/*
 * Complete segment at_end (stream, id; offset = its final offset) on
 * behalf of reader rid (0: whoever owns it, or nobody), as a COMPLETE
 * record does: it leaves the active segments; each successor (preds
 * borrowed) that is new becomes active once all its predecessors are
 * completed, and waits until then; successors already known and those
 * after the stream's end cut are skipped. Returns true when the segment
 * was active (owned by rid unless rid is 0), false (nothing changed)
 * otherwise. *rc gets STRATA_ENOMEM or STRATA_ERANGE on failure (st may
 * then be partly changed).
 */
bool rg_state_complete(struct rg_state *st, uint32_t rid,
                       const struct rg_pos *at_end,
                       const struct rg_successor *succ, size_t n_succ, int *rc);

/*
 * Build in *dst the state of a reset of src to positions pos[0..n) (a
 * completed checkpoint): same streams and settings, epoch + 1, no readers,
 * no checkpoints, every position an unassigned segment. Errors:
 * STRATA_EINVAL (a position of an unknown stream, or a segment twice),
 * STRATA_ENOMEM.
 */
int rg_state_reset(struct rg_state *dst, const struct rg_state *src,
                   const struct rg_pos *pos, size_t n, char *errmsg);

/* How a synchronizer folds an rg_state (state = struct rg_state *). */
extern const struct sync_state_ops rg_sync_ops;

#endif /* CLIENT_RG_STATE_H */
