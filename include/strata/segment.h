/* libstrata public API: raw segment reads, the event iterator, and
 * revisioned segments (conditional appends) for state synchronizers. */
#ifndef STRATA_SEGMENT_H
#define STRATA_SEGMENT_H

#include "strata/client.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Segments are named by their qualified name (strata_segment_name,
 * strata_segment_desc.name). Calls find the store leading the segment's
 * container through the controller, follow redirects, fail over and retry
 * transient errors until operation_timeout_ms.
 *
 * Event framing inside a segment: a 4-byte little-endian payload length,
 * then the payload. A read may end inside an event; the iterator below
 * reassembles.
 */

/* Size of the frame header before each event. */
#define STRATA_FRAME_HEADER 4

/* Metadata of one segment. */
struct strata_segment_stat {
	uint64_t start_offset; /* first readable byte (after truncation) */
	uint64_t length;       /* end offset: bytes appended so far */
	bool sealed;
	uint64_t flushed_length; /* bytes already in tier 2 */
};

STRATA_API int strata_segment_get_stat(struct strata_client *c,
                                       const char *segment,
                                       struct strata_segment_stat *out,
                                       char *errmsg);

/* Create a segment of an existing stream (idempotent: an existing one
 * succeeds when idempotent is true, else STRATA_EEXIST). Meant for tools
 * and tests; streams' segments are created by the controller. */
STRATA_API int strata_segment_create(struct strata_client *c,
                                     const char *segment, bool idempotent,
                                     char *errmsg);

/* Seal a segment (sealing again succeeds); *length (may be NULL) gets
 * its final length. */
STRATA_API int strata_segment_seal(struct strata_client *c, const char *segment,
                                   uint64_t *length, char *errmsg);

/* Truncate a segment's head at offset (<= length, else STRATA_ERANGE). */
STRATA_API int strata_segment_truncate(struct strata_client *c,
                                       const char *segment, uint64_t offset,
                                       char *errmsg);

/* --------------------------------------------------------------- reads */

/* One read's outcome. data is owned by the result: release it with
 * strata_read_result_release. */
struct strata_read_result {
	uint64_t offset;       /* = the requested offset */
	uint8_t *data;         /* NULL when len is 0 */
	size_t len;            /* may end inside an event */
	bool end_of_segment;   /* sealed, and offset + len == its length */
	bool at_tail;          /* no more data right now */
	uint64_t start_offset; /* with STRATA_ETRUNCATED: first readable */
	uint64_t length;       /* the segment's length when the store answered
	                          (0: not reported); length - offset - len is
	                          how far the read is behind the tail */
	void *priv;            /* the library's: the buffer data lies in */
};

STRATA_API void strata_read_result_release(struct strata_read_result *r);

/*
 * Read up to max_bytes from offset. At the tail of an open segment the
 * store waits up to wait_ms (capped at max_read_wait_ms) for data before
 * answering with none. Errors: STRATA_ETRUNCATED (offset below the start:
 * out->start_offset says where it is), STRATA_ERANGE (beyond the end),
 * STRATA_ENOENT, STRATA_EUNAVAIL, STRATA_ETIMEDOUT.
 */
STRATA_API int strata_segment_read(struct strata_client *c, const char *segment,
                                   uint64_t offset, uint32_t max_bytes,
                                   uint32_t wait_ms,
                                   struct strata_read_result *out,
                                   char *errmsg);

/* Completion of strata_segment_read_async: result is owned by the callee
 * (release it with strata_read_result_release), valid also on error for
 * start_offset. Runs in the client's I/O context (see strata/client.h);
 * must not block. */
typedef void (*strata_read_cb)(void *arg, int code, const char *errmsg,
                               struct strata_read_result *result);

/* Start a read; cb runs exactly once, never from inside this call,
 * unless this returns an error (STRATA_EINVAL, STRATA_ENOMEM,
 * STRATA_ECLOSED). */
STRATA_API int strata_segment_read_async(struct strata_client *c,
                                         const char *segment, uint64_t offset,
                                         uint32_t max_bytes, uint32_t wait_ms,
                                         strata_read_cb cb, void *arg,
                                         char *errmsg);

/* ------------------------------------------------------- event iterator */

/*
 * Reads the events of one segment from a start offset (which must be an
 * event boundary) up to an end offset (UINT64_MAX = until the end of a
 * sealed segment, or for ever on an open one). Not thread-safe: one
 * thread at a time.
 */
struct strata_event_iter;

/* One event returned by strata_event_iter_next. */
struct strata_event {
	const uint8_t *data; /* payload, valid until the next call; NULL when
	                        no event was returned */
	size_t len;
	uint64_t offset;      /* of its frame header in the segment */
	uint64_t next_offset; /* after it: where to resume from */
	bool end;             /* no event will ever come: end of a sealed
	                         segment, or end_offset reached */
};

/* Open an iterator (segment copied). read_bytes: bytes asked per read (0
 * = 1 MiB); larger events are assembled across reads. While the range
 * goes on and reads come back full, up to 4 reads run ahead of the
 * caller, so an iterator holds at most 5 x read_bytes of data. */
STRATA_API int strata_event_iter_new(struct strata_client *c,
                                     const char *segment, uint64_t start_offset,
                                     uint64_t end_offset, uint32_t read_bytes,
                                     struct strata_event_iter **out,
                                     char *errmsg);

/*
 * Next event. Returns 0 with ev->data set (an event), with ev->end set (no
 * more ever), or with neither (nothing new within wait_ms at the tail).
 * Errors: those of strata_segment_read, and STRATA_ECORRUPT when the bytes
 * do not frame (a frame longer than max_event_bytes, or a segment that
 * ends inside an event); the iterator stays at the failing position.
 * STRATA_ETRUNCATED is the exception: the segment's head was truncated
 * past the iterator, whose bytes [ev->offset, ev->next_offset) are gone
 * (up to its end offset at most); the iterator has moved to the new start
 * (an event boundary for stream segments), so the next call goes on from
 * there (or says end).
 */
STRATA_API int strata_event_iter_next(struct strata_event_iter *it,
                                      uint32_t wait_ms, struct strata_event *ev,
                                      char *errmsg);

/* Offset of the next event the iterator would return. */
STRATA_API uint64_t
strata_event_iter_position(const struct strata_event_iter *it);

STRATA_API void strata_event_iter_free(struct strata_event_iter *it);

/* ---------------------------------------------------- revisioned segment */

/*
 * A revisioned segment: the building block of state synchronizers. Its
 * revision is the segment length; an update is one event appended only if
 * the segment still has the revision the caller last saw, exactly once
 * (the handle has its own writer id, and a retry after a timeout is
 * recognised by the store). Updates from one handle are serialised by the
 * caller (one thread at a time per handle).
 */
struct strata_rsegment;

/* Open segment (copied); it must exist (create it with its stream). */
STRATA_API int strata_rsegment_open(struct strata_client *c,
                                    const char *segment,
                                    struct strata_rsegment **out, char *errmsg);

/*
 * Append data[0..len) as one event if the segment's length is still
 * expected_revision. On success *new_revision (may be NULL) is the length
 * after it. STRATA_ECONFLICT when the segment has moved on (nothing
 * written; *new_revision = the current length when known, read and retry),
 * STRATA_ESEALED, STRATA_ETOOBIG, and the transport errors.
 */
STRATA_API int strata_rsegment_append(struct strata_rsegment *rs,
                                      uint64_t expected_revision,
                                      const void *data, size_t len,
                                      uint64_t *new_revision, char *errmsg);

/* Append without a condition (still exactly once); *offset (may be NULL)
 * = where the event's frame starts. */
STRATA_API int strata_rsegment_append_any(struct strata_rsegment *rs,
                                          const void *data, size_t len,
                                          uint64_t *offset, char *errmsg);

/* The segment's current revision (length) and start (truncation point). */
STRATA_API int strata_rsegment_revision(struct strata_rsegment *rs,
                                        uint64_t *revision, uint64_t *start,
                                        char *errmsg);

/* Drop everything before offset (an event boundary the caller knows, e.g.
 * a compacted state's revision). */
STRATA_API int strata_rsegment_truncate(struct strata_rsegment *rs,
                                        uint64_t offset, char *errmsg);

/* Name of the segment (borrowed from rs). */
STRATA_API const char *strata_rsegment_name(const struct strata_rsegment *rs);

STRATA_API void strata_rsegment_close(struct strata_rsegment *rs);

/* ------------------------------------------------------------ attributes */

/* Segment attributes: 16-byte keys, int64 values (writer ids use them).
 * *present false when the key is unset. */
STRATA_API int strata_segment_attribute_get(struct strata_client *c,
                                            const char *segment,
                                            const uint8_t key[16],
                                            bool *present, int64_t *value,
                                            char *errmsg);

/* Set key to value; with compare, only if it is expected now (absent
 * compares as INT64_MIN), else STRATA_ECONFLICT. */
STRATA_API int strata_segment_attribute_update(struct strata_client *c,
                                               const char *segment,
                                               const uint8_t key[16],
                                               int64_t value, bool compare,
                                               int64_t expected, char *errmsg);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_SEGMENT_H */
