/* libstrata public API: the batch client (segment ranges between two
 * stream cuts, read in parallel). */
#ifndef STRATA_BATCH_H
#define STRATA_BATCH_H

#include "strata/segment.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The part of one segment between two cuts. */
struct strata_segment_range {
	uint64_t segment_id; /* epoch << 32 | number */
	double low;          /* key range [low, high) */
	double high;
	char *segment;         /* qualified name, owned by the list */
	uint64_t start_offset; /* first byte (an event boundary) */
	uint64_t end_offset;   /* end (exclusive; an event boundary) */
};

/* A list of ranges; free with strata_segment_ranges_free. */
struct strata_segment_ranges {
	size_t n;
	struct strata_segment_range *ranges; /* by the epoch that created
	                                        each segment: every segment
	                                        after all its predecessors */
};
STRATA_API void strata_segment_ranges_free(struct strata_segment_ranges *r);

/*
 * Every segment range of scope/stream between from (NULL or empty = the
 * head) and to (NULL or empty = the tail now: the current segments at
 * their present lengths): the segments of from, then their successors
 * found through the controller, each up to the position in to, or its
 * whole length when it lies before to. Ranges from one segment are never
 * split; empty ranges are left out, and so are segments a truncation
 * deleted while they were listed. Errors: STRATA_EINVAL (a cut of
 * another stream, a malformed cut, to before from, or to past a
 * segment's end), STRATA_ENOENT, and the transport errors.
 */
STRATA_API int strata_batch_list_ranges(struct strata_client *c,
                                        const char *scope, const char *stream,
                                        const struct strata_stream_cut *from,
                                        const struct strata_stream_cut *to,
                                        struct strata_segment_ranges **out,
                                        char *errmsg);

/* Open an event iterator over one range (strata_event_iter_next returns
 * end once its end offset is reached). */
STRATA_API int strata_batch_range_iter(struct strata_client *c,
                                       const struct strata_segment_range *r,
                                       struct strata_event_iter **out,
                                       char *errmsg);

/*
 * Called for each event of a range: on one of the reading threads, the
 * events of a range in order, ranges concurrently. Returns 0 to go on,
 * anything else to stop the whole read (that value is returned).
 */
typedef int (*strata_batch_event_cb)(void *arg,
                                     const struct strata_segment_range *range,
                                     const uint8_t *data, size_t len,
                                     uint64_t offset);

/*
 * Read every range with `parallelism` threads (0 = min(ranges, 4)); each
 * thread takes the next unread range. Returns 0 when all were read, the
 * callback's stop value, or the first read error (errmsg names the
 * segment and offset). Blocking; not from a callback.
 */
STRATA_API int strata_batch_read(struct strata_client *c,
                                 const struct strata_segment_ranges *ranges,
                                 unsigned parallelism, strata_batch_event_cb cb,
                                 void *arg, char *errmsg);

/*
 * Called when the head of a range's segment was truncated (retention,
 * strata_stream_truncate) before the read got there: bytes [from, to) of
 * range->segment are gone. Return 0 to go on from `to`, anything else to
 * stop the whole read (that value is returned). Same threads as the
 * event callback.
 */
typedef int (*strata_batch_truncated_cb)(
        void *arg, const struct strata_segment_range *range, uint64_t from,
        uint64_t to);

struct strata_batch_read_opts {
	unsigned parallelism; /* as for strata_batch_read */
	/* NULL: a truncated range fails the read with STRATA_ETRUNCATED
	 * (what strata_batch_read does) */
	strata_batch_truncated_cb on_truncated;
};

/* strata_batch_read with options (o is required). */
STRATA_API int
strata_batch_read_with(struct strata_client *c,
                       const struct strata_segment_ranges *ranges,
                       const struct strata_batch_read_opts *o,
                       strata_batch_event_cb cb, void *arg, char *errmsg);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_BATCH_H */
