/* libstrata public API: the client, stream manager and stream cuts. */
#ifndef STRATA_CLIENT_H
#define STRATA_CLIENT_H

/*
 * Conventions of every libstrata call (docs/client.md):
 * - Functions return 0 or a positive STRATA_E* code (strata/error.h).
 * - Every call that can fail takes `char *errmsg`: NULL, or a buffer of
 *   STRATA_ERRMSG_SIZE bytes that receives a message saying what failed,
 *   with what input, and what to do. Thread-safe by construction.
 * - Strings and buffers passed in are copied unless said otherwise.
 *   Objects returned through `**out` are owned by the caller and released
 *   with the matching _free function.
 * - Every object is thread-safe unless said otherwise. Completion
 *   callbacks run in the client's I/O context: one at a time, in order, on
 *   the client's internal I/O thread or, when that thread is idle, on the
 *   library thread that received the reply. They must not block and must
 *   not call blocking libstrata functions (those fail with STRATA_EINVAL
 *   when called there).
 * - Configuration structs are filled by their _default() function first;
 *   new fields are only ever appended.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/error.h"
#include "strata/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest scope or stream name (bytes, NUL excluded). */
#define STRATA_NAME_MAX 255
/* Largest event payload the stores accept by default (limits.max_event). */
#define STRATA_DEFAULT_MAX_EVENT_BYTES (8u * 1024 * 1024)
/* The largest event readers assemble and decode (64 MiB): writers refuse
 * larger ones, compressed or not, which no reader could return. */
#define STRATA_MAX_EVENT_BYTES (64u * 1024 * 1024)

/* ---------------------------------------------------------------- client */

struct strata_client;

/* How to reach the cluster. */
struct strata_client_config {
	const char *const *controller_urls; /* "tcp://host:9090", borrowed */
	size_t n_controller_urls;           /* >= 1 */
	int request_timeout_ms;             /* one RPC attempt (default 5000) */
	int connect_timeout_ms;   /* wait for a connection (default 1000) */
	int retries;              /* extra RPC attempts (default 3) */
	int operation_timeout_ms; /* bound of one blocking call, retries and
	                             workflow waits included (default 60000) */
	int max_read_wait_ms;     /* longest long-poll of a read (10000) */
};

/* Fill cfg with the defaults above and no controller URL. */
STRATA_API void strata_client_config_default(struct strata_client_config *cfg);

/*
 * Create a client: one internal I/O thread plus connections made on
 * demand (no call is made here, so an unreachable controller shows up on
 * the first call as STRATA_EUNAVAIL). cfg and its URLs are copied.
 * Errors: STRATA_EINVAL (no URL, bad URL or value; errmsg names it),
 * STRATA_ENOMEM, STRATA_EIO.
 */
STRATA_API int strata_client_new(const struct strata_client_config *cfg,
                                 struct strata_client **out, char *errmsg);

/* Free the client. Close its writers and free its iterators first; async
 * calls still in flight complete with STRATA_ECLOSED before it returns.
 * Must not be called from a callback. NULL is a no-op. */
STRATA_API void strata_client_free(struct strata_client *c);

/* ------------------------------------------------------------ streams */

enum strata_scaling_type {
	STRATA_SCALING_FIXED = 0,         /* min_segments, never scales */
	STRATA_SCALING_BY_EVENT_RATE = 1, /* target = events/s per segment */
	STRATA_SCALING_BY_DATA_RATE = 2,  /* target = KiB/s per segment */
};

enum strata_retention_type {
	STRATA_RETENTION_NONE = 0,    /* keep everything */
	STRATA_RETENTION_BY_TIME = 1, /* min/max in milliseconds */
	STRATA_RETENTION_BY_SIZE = 2, /* min/max in bytes */
};

/* Stream configuration. */
struct strata_stream_config {
	enum strata_scaling_type scaling;
	uint32_t min_segments; /* >= 1 (fixed: the segment count) */
	uint32_t target_rate;  /* rate policies: per-segment target, >= 1 */
	uint32_t scale_factor; /* rate policies: max successors of a split */
	enum strata_retention_type retention;
	uint64_t retention_min;  /* keep at least this much */
	uint64_t retention_max;  /* keep at most this much; 0 = no bound */
	const char *const *tags; /* borrowed on input; owned by a
	                            strata_stream_info on output */
	size_t n_tags;
};

/* Fill cfg with: fixed scaling, 1 segment, no retention, no tags. */
STRATA_API void strata_stream_config_default(struct strata_stream_config *cfg);

enum strata_stream_state {
	STRATA_STREAM_UNKNOWN = 0,
	STRATA_STREAM_CREATING = 1,
	STRATA_STREAM_ACTIVE = 2,
	STRATA_STREAM_SCALING = 3,
	STRATA_STREAM_TRUNCATING = 4,
	STRATA_STREAM_SEALING = 5,
	STRATA_STREAM_SEALED = 6,
	STRATA_STREAM_DELETING = 7,
};

/* ---------------------------------------------------------- stream cuts */

/* One segment's position in a cut. */
struct strata_segment_position {
	uint64_t segment_id; /* epoch << 32 | number */
	int64_t offset;      /* byte offset in that segment, >= 0 */
};

/*
 * A stream cut: segment -> offset covering the key space [0,1) of one
 * stream. n == 0 means "unbounded" (the head as a start, the tail as an
 * end). positions is owned by the cut (strata_stream_cut_clear frees it);
 * initialise with STRATA_STREAM_CUT_INIT or memset 0.
 */
struct strata_stream_cut {
	char scope[STRATA_NAME_MAX + 1];           /* NUL-terminated */
	char stream[STRATA_NAME_MAX + 1];          /* NUL-terminated */
	size_t n;                                  /* positions */
	struct strata_segment_position *positions; /* sorted by segment id */
};

#define STRATA_STREAM_CUT_INIT  \
	{                       \
		"", "", 0, NULL \
	}

/* Most positions a cut may hold (the largest epoch). */
#define STRATA_CUT_MAX_POSITIONS 4096

/* Free cut->positions and reset it to empty (names kept). */
STRATA_API void strata_stream_cut_clear(struct strata_stream_cut *cut);

/* Deep copy src into *dst (dst's old positions are freed). Errors:
 * STRATA_ENOMEM. */
STRATA_API int strata_stream_cut_copy(struct strata_stream_cut *dst,
                                      const struct strata_stream_cut *src);

/*
 * Text form of a cut, stable forever:
 *     <scope>/<stream>:<number>.<epoch>=<offset>[,<number>.<epoch>=...]
 * e.g. "shop/orders:0.0=1024,3.1=0" (segment id = epoch << 32 | number);
 * "shop/orders:" is the unbounded cut. Positions are written sorted by
 * segment id. Writes into buf (size bytes, NUL-terminated when size > 0)
 * and returns the length it needs, like snprintf.
 */
STRATA_API size_t strata_stream_cut_format(const struct strata_stream_cut *cut,
                                           char *buf, size_t size);

/*
 * Parse text (as written by strata_stream_cut_format; spaces are not
 * allowed) into *out (its old positions are freed). Rejects, with
 * STRATA_EINVAL and a message naming the position and what is wrong: a
 * missing "scope/stream:" prefix, bad names, a segment that is not
 * NUMBER.EPOCH of decimal uint32 values, an offset that is not a decimal
 * int64 >= 0, a segment listed twice, more than STRATA_CUT_MAX_POSITIONS
 * positions, and trailing garbage. Whether the segments cover [0,1) is
 * checked by the controller when the cut is used. Errors also
 * STRATA_ENOMEM; on error *out is left empty.
 */
STRATA_API int strata_stream_cut_parse(const char *text,
                                       struct strata_stream_cut *out,
                                       char *errmsg);

/* -------------------------------------------------------- stream manager */

/*
 * Blocking management calls. Each returns once the controller has applied
 * the change and any workflow it started finished (streams created,
 * segments sealed...), or after operation_timeout_ms with
 * STRATA_ETIMEDOUT ("the change was accepted and goes on"). Common errors:
 * STRATA_EUNAVAIL (controller unreachable: errmsg names the URLs),
 * STRATA_EBADNAME, STRATA_ENOENT, STRATA_EEXIST, STRATA_EBUSY (another
 * workflow runs on the stream: retry), STRATA_EINVAL (bad config or cut).
 * Update, seal, delete, truncate and scale wait and retry while another
 * workflow (a scale, a retention truncation, the aborts a seal starts)
 * holds the stream, up to the operation timeout; STRATA_EBUSY after it.
 */
STRATA_API int strata_scope_create(struct strata_client *c, const char *scope,
                                   char *errmsg);
STRATA_API int strata_scope_delete(struct strata_client *c, const char *scope,
                                   char *errmsg);

/* A list of names; free with strata_names_free. */
struct strata_names {
	size_t n;
	char **names; /* n NUL-terminated strings */
};
STRATA_API void strata_names_free(struct strata_names *names);

/* Every scope, sorted. */
STRATA_API int strata_scope_list(struct strata_client *c,
                                 struct strata_names **out, char *errmsg);

/* Streams of scope (tag NULL or "" = all; else only those with the tag),
 * sorted. Asked for in pages of a few MiB of names, so any number of
 * streams can be listed. */
STRATA_API int strata_stream_list(struct strata_client *c, const char *scope,
                                  const char *tag, struct strata_names **out,
                                  char *errmsg);

/* Create a stream; cfg NULL = strata_stream_config_default. */
STRATA_API int strata_stream_create(struct strata_client *c, const char *scope,
                                    const char *stream,
                                    const struct strata_stream_config *cfg,
                                    char *errmsg);

/* Replace the configuration of a stream (scaling, retention, tags). */
STRATA_API int strata_stream_update(struct strata_client *c, const char *scope,
                                    const char *stream,
                                    const struct strata_stream_config *cfg,
                                    char *errmsg);

/* Seal every segment: writes fail with STRATA_ESEALED afterwards. Sealing
 * a sealed stream succeeds. */
STRATA_API int strata_stream_seal(struct strata_client *c, const char *scope,
                                  const char *stream, char *errmsg);

/* Delete a sealed stream (STRATA_ENOTSEALED otherwise). */
STRATA_API int strata_stream_delete(struct strata_client *c, const char *scope,
                                    const char *stream, char *errmsg);

/* Drop everything before cut (cut->scope/stream must name the stream).
 * A malformed cut is STRATA_EINVAL; one that moves back (behind the
 * head, or naming a segment truncation deleted) STRATA_ETRUNCATED. */
STRATA_API int strata_stream_truncate(struct strata_client *c,
                                      const struct strata_stream_cut *cut,
                                      char *errmsg);

/* Manual scale: seal the adjacent segments seal_ids[0..n_seal) of the
 * current epoch and replace them by the ranges [bounds[i], bounds[i+1])
 * for i < n_bounds - 1, which must cover exactly their union. While
 * another workflow or a transaction commit runs on the stream the call
 * waits and retries (up to the operation timeout, then STRATA_EBUSY);
 * segments no longer current by then are STRATA_EINVAL. */
STRATA_API int strata_stream_scale(struct strata_client *c, const char *scope,
                                   const char *stream, const uint64_t *seal_ids,
                                   size_t n_seal, const double *bounds,
                                   size_t n_bounds, char *errmsg);

/* What strata_stream_get_info returns; free with strata_stream_info_free.
 */
struct strata_stream_info {
	char scope[STRATA_NAME_MAX + 1];
	char stream[STRATA_NAME_MAX + 1];
	enum strata_stream_state state;
	struct strata_stream_config config; /* tags owned by the info */
	uint32_t current_epoch;
	struct strata_stream_cut head; /* first readable position (the
	                                  truncation point, or epoch 0 at 0) */
	struct strata_stream_cut tail; /* current segments at their lengths
	                                  when asked; empty while the
	                                  stream is DELETING; at 0 while
	                                  CREATING (no store is asked) */
};

/* Configuration, state, head and tail cuts of a stream (asks the
 * controller, then each current segment's store for its length). */
STRATA_API int strata_stream_get_info(struct strata_client *c,
                                      const char *scope, const char *stream,
                                      struct strata_stream_info **out,
                                      char *errmsg);
STRATA_API void strata_stream_info_free(struct strata_stream_info *info);

/* ----------------------------------------------------------- watermarks */

/* A watermark's position in one segment, with the segment's key range. */
struct strata_watermark_position {
	uint64_t segment_id;
	int64_t offset;
	double low, high;
};

/* A watermark the controller computed from the writers' notes
 * (strata_writer_note_time; docs/client.md, "Watermarks"): events after
 * the positions were written after every counted writer noted a time >=
 * lower_time; those before them, before notes <= upper_time. */
struct strata_watermark {
	uint64_t index; /* 1, 2, ... per stream */
	int64_t lower_time;
	int64_t upper_time;
	uint64_t created_ms; /* controller time, ms since the epoch */
	size_t n_positions;
	struct strata_watermark_position *positions;
};

/* The kept watermarks of scope/stream with index > after_index, oldest
 * first (the controller keeps the last 1,024 per stream). *out (n of
 * them, each owning its positions) belongs to the caller: free it with
 * strata_watermarks_free (NULL is fine). Blocks on the controller: not
 * from a callback (STRATA_EINVAL). */
STRATA_API int strata_stream_watermarks(struct strata_client *c,
                                        const char *scope, const char *stream,
                                        uint64_t after_index,
                                        struct strata_watermark **out,
                                        size_t *n, char *errmsg);
STRATA_API void strata_watermarks_free(struct strata_watermark *ws, size_t n);

/*
 * Note time `time` for a producer that is not an event writer: writer_id
 * (16 bytes the caller keeps stable, e.g. derived from a job and subtask)
 * at the stream's tail now (its current segments at their lengths). For
 * a transactional sink: commit the transaction, then note the time its
 * events were up to (Pravega's commit(timestamp)); for an idle source: keep
 * noting the clock. Events this producer adds later lie after that tail.
 * Same rules as strata_writer_note_time (time never goes back; the mark
 * times out after watermark.writer_timeout). writer_id is read during
 * the call only. Blocks on the controller and the stores: not from a
 * callback (STRATA_EINVAL). Errors: STRATA_EINVAL,
 * STRATA_ENOENT, STRATA_ESEALED, the controller's and the stores'.
 */
STRATA_API int strata_stream_note_time(struct strata_client *c,
                                       const char *scope, const char *stream,
                                       const uint8_t writer_id[16],
                                       int64_t time, char *errmsg);

/* Forget writer_id's time mark on scope/stream (a producer that is done):
 * it no longer holds watermarks back. An unknown id is not an error.
 * writer_id is read during the call only; not from a callback. */
STRATA_API int strata_stream_remove_time_mark(struct strata_client *c,
                                              const char *scope,
                                              const char *stream,
                                              const uint8_t writer_id[16],
                                              char *errmsg);

/* ------------------------------------------------------------- segments */

/* One segment of a stream, as the controller describes it. */
struct strata_segment_desc {
	uint64_t id; /* epoch << 32 | number */
	double low;  /* key range [low, high) */
	double high;
	int64_t offset;     /* position in a cut query; 0 otherwise */
	uint32_t container; /* hosting segment container */
	char *name;         /* qualified name "scope/stream/<n>.#epoch.<e>" */
	size_t n_predecessors;  /* successor queries: every predecessor */
	uint64_t *predecessors; /* owned by the list */
};

/* A list of segments; free with strata_segment_list_free. */
struct strata_segment_list {
	size_t n;
	struct strata_segment_desc *segments; /* sorted by low */
};
STRATA_API void strata_segment_list_free(struct strata_segment_list *l);

/* The current (newest epoch's) segments of a stream. */
STRATA_API int strata_stream_current_segments(struct strata_client *c,
                                              const char *scope,
                                              const char *stream,
                                              struct strata_segment_list **out,
                                              char *errmsg);

/* The segments of cut with their offsets (cut->n == 0: the head). The
 * controller checks that the cut names segments of the stream covering
 * [0,1) once: STRATA_EINVAL otherwise; STRATA_ETRUNCATED when it names a
 * segment truncation deleted (an old checkpoint's cut: read from the
 * head). */
STRATA_API int
strata_stream_segments_at_cut(struct strata_client *c,
                              const struct strata_stream_cut *cut,
                              struct strata_segment_list **out, char *errmsg);

/* Segments that replaced segment_id when a scale sealed it, each with all
 * its predecessors; an empty list when it was not replaced (open, or
 * sealed with the stream). */
STRATA_API int strata_stream_successors(struct strata_client *c,
                                        const char *scope, const char *stream,
                                        uint64_t segment_id,
                                        struct strata_segment_list **out,
                                        char *errmsg);

/* The same for a segment the caller knows is sealed (it read to its end,
 * or the store said so): a controller replica that answers reads may not
 * have applied the scale yet and see the segment still open; this asks
 * again (within the operation timeout) until the answer knows it is
 * sealed, so an empty list means the stream ended there. Readers of
 * successors use this one. STRATA_ETIMEDOUT when no answer does. */
STRATA_API int strata_stream_successors_of_sealed(
        struct strata_client *c, const char *scope, const char *stream,
        uint64_t segment_id, struct strata_segment_list **out, char *errmsg);

/* Write the qualified name of segment id of scope/stream into buf (size
 * bytes, NUL-terminated when size > 0); returns the length it needs. */
STRATA_API size_t strata_segment_name(char *buf, size_t size, const char *scope,
                                      const char *stream, uint64_t id);

/* --------------------------------------------------------- routing keys */

/*
 * Where a routing key falls in [0,1): h = fmix64(FNV-1a-64(key)) (FNV-1a
 * offset basis 0xcbf29ce484222325, prime 0x100000001b3; fmix64 is
 * MurmurHash3's finaliser), position = (h >> 11) * 2^-53. Stable forever:
 * the segment whose [low, high) contains it receives the key's events.
 */
STRATA_API double strata_routing_key_position(const void *key, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_CLIENT_H */
