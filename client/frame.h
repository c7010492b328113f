/* Event framing: a 4-byte little-endian length before each payload (its
 * high bit marks an encoded event, strata/codec.h); the assembler turns
 * reads that may end inside an event back into events. */
#ifndef CLIENT_FRAME_H
#define CLIENT_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/rpc.h"

/* Write the frame header of a len-byte payload into hdr[0..4). */
void frame_header(uint8_t hdr[4], uint32_t len);

/*
 * An AppendRequest (proto/strata/v1/segmentstore.proto) written in place,
 * so a block's framed events are copied once, straight into the request,
 * instead of into a block and again by protobuf-c. The encoding is
 * protobuf-c's, byte for byte (test_frame checks it): fields in number
 * order, zero scalars and empty strings/bytes left out. The request is
 * head, then the data_len bytes of framed events, then tail.
 * append_request_head writes fields 1-4 and field 5's tag and length;
 * append_request_tail writes field 6. Each returns its size and writes to
 * out unless out is NULL.
 */
size_t append_request_head(uint8_t *out, const char *segment,
                           const uint8_t *writer_id, size_t writer_id_len,
                           int64_t first_event_number, uint32_t event_count,
                           size_t data_len);
size_t append_request_tail(uint8_t *out, int64_t expected_offset);

/*
 * Reassembles events from consecutive chunks of a segment without copying
 * them: an event that lies inside one chunk is returned as a pointer into
 * that chunk; only bytes left over when the next chunk is fed (normally
 * the start of one event split across chunks) are copied, to `carry`.
 * Not thread-safe. Event pointers returned by frame_asm_next are valid
 * until the next frame_asm_next, frame_asm_feed* or frame_asm_close.
 */
struct frame_asm {
	uint8_t *cur;      /* the chunk being served (owned), or NULL */
	size_t cur_len;    /* its bytes */
	void *cur_msg;     /* the message cur lies in (rpc_body), or NULL */
	size_t pos;        /* first unconsumed byte of cur */
	struct buf carry;  /* bytes left over from earlier chunks */
	size_t cpos;       /* first unconsumed byte of carry */
	uint64_t off;      /* segment offset of the next event */
	size_t last;       /* frame bytes of the last event returned */
	bool last_carry;   /* ... and whether it came from carry */
	bool last_encoded; /* ... and whether its frame is marked encoded */
	size_t max_event;  /* larger frame lengths are corrupt */
};

/* Start at segment offset (an event boundary). */
void frame_asm_init(struct frame_asm *fa, uint64_t offset, size_t max_event);
void frame_asm_close(struct frame_asm *fa);

/* Add the next chunk, taking b (freed by the assembler, also on error;
 * b is left empty). Unconsumed bytes of the previous chunk move to carry
 * (normally less than one event). STRATA_ENOMEM. */
int frame_asm_feed_body(struct frame_asm *fa, struct rpc_body *b);

/* Add the next len bytes, taking data (strata_malloc'd; freed by the
 * assembler, also on error). Unconsumed bytes of the previous chunk move
 * to carry (normally less than one event). STRATA_ENOMEM. */
int frame_asm_feed_owned(struct frame_asm *fa, uint8_t *data, size_t len);

/* Add the next len bytes (copied). STRATA_ENOMEM. */
int frame_asm_feed(struct frame_asm *fa, const uint8_t *data, size_t len);

/*
 * Take the next whole event: 0 with *p, *len (payload) and *off (offset of
 * its header), and fa->last_encoded telling whether the payload is an
 * encoded event (codec header first, strata/codec.h); STRATA_EAGAIN when more
 * bytes are needed; STRATA_ECORRUPT when the frame length exceeds max_event
 * (nothing consumed); STRATA_ENOMEM when assembling a split event fails
 * (nothing consumed).
 */
int frame_asm_next(struct frame_asm *fa, const uint8_t **p, size_t *len,
                   uint64_t *off);

/* Give back the event the last frame_asm_next returned (once). */
void frame_asm_unget(struct frame_asm *fa);

/* Segment offset of the next event not yet returned. */
uint64_t frame_asm_position(const struct frame_asm *fa);

/* Segment offset just past the last byte fed (where to read next). */
uint64_t frame_asm_end(const struct frame_asm *fa);

/* Bytes fed but not yet returned as events. */
size_t frame_asm_pending(const struct frame_asm *fa);

/* Drop everything and restart at offset. */
void frame_asm_reset(struct frame_asm *fa, uint64_t offset);

#endif /* CLIENT_FRAME_H */
