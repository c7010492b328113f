/* libstrata segment primitives: metadata, reads (blocking and async), the
 * event iterator, revisioned segments and attributes. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"
#include "client/codec.h"
#include "client/frame.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/rpc.h"
#include "strata/segment.h"
#include "strata/v1/segmentstore.pb-c.h"

/* Frames longer than this are corruption (the stores' limits.max_event
 * cannot exceed it). */
#define ITER_MAX_EVENT STRATA_MAX_EVENT_BYTES
#define ITER_READ_BYTES (1024u * 1024)

static int stat_from(const Strata__V1__SegmentInfoReply *r,
                     struct strata_segment_stat *out)
{
	out->start_offset = r->start_offset;
	out->length = r->length;
	out->sealed = r->sealed;
	out->flushed_length = r->flushed_length;
	return 0;
}

int strata_segment_get_stat(struct strata_client *c, const char *segment,
                            struct strata_segment_stat *out, char *errmsg)
{
	Strata__V1__SegmentRequest q = STRATA__V1__SEGMENT_REQUEST__INIT;
	q.segment = (char *)segment;
	Strata__V1__SegmentInfoReply *r = NULL;
	int rc = client_seg_call(c, segment, CT_SS_GET_INFO, &q.base,
	                         &strata__v1__segment_info_reply__descriptor,
	                         (ProtobufCMessage **)&r, false, errmsg);
	if (rc == 0) {
		stat_from(r, out);
		rpc_pb_free(&r->base);
	}
	return rc;
}

int strata_segment_create(struct strata_client *c, const char *segment,
                          bool idempotent, char *errmsg)
{
	Strata__V1__CreateSegmentRequest q =
	        STRATA__V1__CREATE_SEGMENT_REQUEST__INIT;
	q.segment = (char *)segment;
	q.idempotent = idempotent;
	return client_seg_call(c, segment, CT_SS_CREATE_SEGMENT, &q.base, NULL,
	                       NULL, false, errmsg);
}

int strata_segment_seal(struct strata_client *c, const char *segment,
                        uint64_t *length, char *errmsg)
{
	Strata__V1__SegmentRequest q = STRATA__V1__SEGMENT_REQUEST__INIT;
	q.segment = (char *)segment;
	Strata__V1__SegmentInfoReply *r = NULL;
	int rc = client_seg_call(c, segment, CT_SS_SEAL, &q.base,
	                         &strata__v1__segment_info_reply__descriptor,
	                         (ProtobufCMessage **)&r, false, errmsg);
	if (rc == 0) {
		if (length != NULL) {
			*length = r->length;
		}
		rpc_pb_free(&r->base);
	}
	return rc;
}

int strata_segment_truncate(struct strata_client *c, const char *segment,
                            uint64_t offset, char *errmsg)
{
	Strata__V1__TruncateRequest q = STRATA__V1__TRUNCATE_REQUEST__INIT;
	q.segment = (char *)segment;
	q.offset = offset;
	return client_seg_call(c, segment, CT_SS_TRUNCATE, &q.base, NULL, NULL,
	                       false, errmsg);
}

/* ---------------------------------------------------------------- reads */

void strata_read_result_release(struct strata_read_result *r)
{
	if (r == NULL) {
		return;
	}
	struct rpc_body b = {.data = r->data, .len = r->len, .msg = r->priv};
	rpc_body_free(&b);
	r->data = NULL;
	r->len = 0;
	r->priv = NULL;
}

/*
 * The plain ReadReply a store sends: each field at most once with its own
 * wire type (unknown fields skipped). Fills out, data pointing into buf.
 * false for anything else: protobuf-c decides.
 */
static bool read_reply_scan(const uint8_t *buf, size_t len,
                            struct strata_read_result *out)
{
	struct cursor cur;
	cursor_init(&cur, buf, len);
	unsigned seen = 0;
	while (cursor_remaining(&cur) > 0) {
		struct pb_field f;
		if (cursor_pb_field(&cur, &f) != 0) {
			return false;
		}
		if (f.number > 6) {
			continue;
		}
		unsigned bit = 1u << f.number;
		enum pb_wire want = f.number == 2 ? PB_LEN : PB_VARINT;
		if ((seen & bit) != 0 || f.wire != want) {
			return false;
		}
		seen |= bit;
		switch (f.number) {
		case 2:
			out->data = (uint8_t *)f.p;
			out->len = f.len;
			break;
		case 3:
			out->end_of_segment = f.v != 0;
			break;
		case 4:
			out->at_tail = f.v != 0;
			break;
		case 5:
			out->start_offset = f.v;
			break;
		case 6:
			out->length = f.v;
			break;
		default: /* 1: offset, the request's (kept from the request) */
			break;
		}
	}
	return true;
}

int read_reply_take(struct rpc_body *body, uint64_t offset,
                    struct strata_read_result *out)
{
	memset(out, 0, sizeof(*out));
	out->offset = offset;
	if (body->msg != NULL && read_reply_scan(body->data, body->len, out)) {
		if (out->len == 0) {
			out->data = NULL;
			rpc_body_free(body);
		} else {
			out->priv = body->msg; /* data points into it */
			memset(body, 0, sizeof(*body));
		}
		return 0;
	}
	/* Not plain, or a heap body (data inside it could not be freed on
	 * its own): protobuf-c unpacks, and its data is taken. */
	Strata__V1__ReadReply *r = (Strata__V1__ReadReply *)rpc_pb_unpack(
	        &strata__v1__read_reply__descriptor, body->data, body->len);
	rpc_body_free(body);
	memset(out, 0, sizeof(*out));
	out->offset = offset;
	if (r == NULL) {
		return STRATA_EPROTO;
	}
	out->end_of_segment = r->end_of_segment;
	out->at_tail = r->at_tail;
	out->start_offset = r->start_offset;
	out->length = r->length;
	if (r->data.len > 0) {
		/* Take the unpacked bytes (strata_malloc'd by rpc_pb_unpack's
		 * allocator): no copy; free_unpacked skips a NULL field. */
		out->data = r->data.data;
		out->len = r->data.len;
		r->data.data = NULL;
		r->data.len = 0;
	}
	rpc_pb_free(&r->base);
	return 0;
}

static uint32_t clamp_wait(struct strata_client *c, uint32_t wait_ms)
{
	uint32_t max = (uint32_t)c->cfg.max_read_wait_ms;
	return wait_ms > max ? max : wait_ms;
}

int strata_segment_read(struct strata_client *c, const char *segment,
                        uint64_t offset, uint32_t max_bytes, uint32_t wait_ms,
                        struct strata_read_result *out, char *errmsg)
{
	Strata__V1__ReadRequest q = STRATA__V1__READ_REQUEST__INIT;
	q.segment = (char *)segment;
	q.offset = offset;
	q.max_bytes = max_bytes;
	q.wait_ms = clamp_wait(c, wait_ms);
	struct rpc_body body;
	int rc = client_seg_call_body(c, segment, CT_SS_READ, &q.base, &body,
	                              errmsg);
	if (rc != 0 && body.len == 0) {
		memset(out, 0, sizeof(*out));
		out->offset = offset;
		rpc_body_free(&body);
		return rc;
	}
	int drc = read_reply_take(&body, offset, out);
	if (drc != 0 && rc == 0) {
		rc = drc;
		client_err(errmsg, "segment %.200s: read reply does not parse",
		           segment);
	}
	return rc;
}

/* One async read. */
struct read_async {
	struct seg_op op;
	uint64_t offset;
	strata_read_cb cb;
	void *arg;
};

static void read_async_done(struct seg_op *op, int code, const char *errmsg)
{
	struct read_async *ra = op->arg;
	struct strata_read_result res;
	char msg[STRATA_ERRMSG_SIZE];
	client_err(msg, "%s", errmsg);
	memset(&res, 0, sizeof(res));
	res.offset = ra->offset;
	if (op->reply.len > 0 || code == 0) {
		int drc = read_reply_take(&op->reply, ra->offset, &res);
		if (drc != 0 && code == 0) {
			code = drc;
			client_err(msg,
			           "segment %.200s: read reply "
			           "does not parse",
			           op->name);
		}
	}
	seg_op_reset(op);
	ra->cb(ra->arg, code, msg, &res);
	strata_free(ra);
}

int strata_segment_read_async(struct strata_client *c, const char *segment,
                              uint64_t offset, uint32_t max_bytes,
                              uint32_t wait_ms, strata_read_cb cb, void *arg,
                              char *errmsg)
{
	if (cb == NULL) {
		client_err(errmsg, "strata_segment_read_async: cb is required");
		return STRATA_EINVAL;
	}
	struct read_async *ra = strata_calloc(1, sizeof(*ra));
	if (ra == NULL) {
		client_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	ra->offset = offset;
	ra->cb = cb;
	ra->arg = arg;
	Strata__V1__ReadRequest q = STRATA__V1__READ_REQUEST__INIT;
	q.segment = (char *)segment;
	q.offset = offset;
	q.max_bytes = max_bytes;
	q.wait_ms = clamp_wait(c, wait_ms);
	int rc = seg_op_start(c, &ra->op, segment, CT_SS_READ, &q.base, 0,
	                      CT_LONGPOLL, read_async_done, ra, errmsg);
	if (rc != 0) {
		strata_free(ra);
	}
	return rc;
}

/* ------------------------------------------------------- event iterator */

/*
 * Read-ahead: once a read has returned data and the range goes on, the
 * iterator keeps up to `depth` reads (ITER_AHEAD for strata_event_iter_new,
 * 1 for reader groups, see event_iter_new) (no long-poll wait) going at
 * consecutive offsets of read_bytes each, while its caller works through
 * the events it has. One 8 MiB read is a round trip of several stages
 * (tier-2 read, reply, transfer, unpack); several in flight keep every
 * stage busy. A read is started after one still in flight (assumed
 * full) or after a full one; never after an error, a short read, the
 * end, or past the segment length the store last reported (so a reader
 * near the tail asks for no offset beyond it). A refill takes the oldest result
 * when it is for the offset wanted and carries data. When the oldest starts
 * further on (the read before it came back short), the refill reads just the
 * gap itself. Anything else drops what is held and reads as before. Memory:
 * depth + 1 reads' worth.
 */
#define ITER_AHEAD 4

struct iter_ahead;

struct ahead_slot {
	struct iter_ahead *a;
	bool ready;   /* the callback ran: code and r are set */
	uint64_t at;  /* offset read */
	uint32_t max; /* bytes asked */
	int code;
	struct strata_read_result r;
};

struct iter_ahead {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct strata_client *c; /* for reads started by the callback */
	const char *name;        /* the iterator's segment */
	uint64_t end;            /* the iterator's end offset */
	uint32_t read_bytes;     /* per read */
	bool stop;               /* start no read (draining, freeing) */
	unsigned depth;          /* reads held or in flight, <= ITER_AHEAD */
	uint64_t known_len;      /* largest segment length a read reported */
	size_t head;             /* ring of slots in offset order: */
	size_t n;                /* s[head], ... n of them */
	struct ahead_slot s[ITER_AHEAD];
};

struct strata_event_iter {
	struct strata_client *c;
	char *name;
	uint64_t end;        /* end offset (UINT64_MAX = none) */
	uint32_t read_bytes; /* per read */
	struct frame_asm fa;
	bool eos;       /* the store said end of segment at frame_asm_end */
	struct buf dec; /* the last encoded event, decoded */
	struct iter_ahead ahead;
};

static struct ahead_slot *slot_at(struct iter_ahead *a, size_t k)
{
	return &a->s[(a->head + k) % ITER_AHEAD];
}

/* Runs on the client's I/O thread. */
static void ahead_done(void *arg, int code, const char *errmsg,
                       struct strata_read_result *result);

/* Start reads until `depth` are held or in flight (a->mu held; it is
 * released while starting each). from: where to read when none is. */
static void ahead_fill(struct iter_ahead *a, bool have_from, uint64_t from)
{
	while (!a->stop && a->n < a->depth) {
		uint64_t at = from;
		if (a->n > 0) {
			const struct ahead_slot *last = slot_at(a, a->n - 1);
			if (last->ready &&
			    (last->code != 0 || last->r.len < last->max ||
			     last->r.end_of_segment || last->r.at_tail)) {
				return;
			}
			at = last->at + last->max;
		} else if (!have_from) {
			return;
		}
		/* Never past the end, nor past the data the store last
		 * reported (0: not reported): no read of a store that can
		 * only answer "beyond its length". */
		if (at >= a->end || (a->known_len != 0 && at >= a->known_len)) {
			return;
		}
		uint64_t want = a->end - at;
		struct ahead_slot *sl = slot_at(a, a->n++);
		memset(sl, 0, sizeof(*sl));
		sl->a = a;
		sl->at = at;
		sl->max = want < a->read_bytes ? (uint32_t)want : a->read_bytes;
		pthread_mutex_unlock(&a->mu);
		char ignored[STRATA_ERRMSG_SIZE];
		int rc = strata_segment_read_async(a->c, a->name, at, sl->max,
		                                   0, ahead_done, sl, ignored);
		pthread_mutex_lock(&a->mu);
		if (rc != 0) {
			/* The callback never runs after an error. */
			sl->code = rc;
			sl->ready = true;
			pthread_cond_broadcast(&a->cv);
			return;
		}
	}
}

static void ahead_done(void *arg, int code, const char *errmsg,
                       struct strata_read_result *result)
{
	(void)errmsg;
	struct ahead_slot *sl = arg;
	struct iter_ahead *a = sl->a;
	pthread_mutex_lock(&a->mu);
	sl->code = code;
	sl->r = *result;
	sl->ready = true;
	if (result->length > a->known_len) {
		a->known_len = result->length;
	}
	pthread_cond_broadcast(&a->cv);
	ahead_fill(a, false, 0);
	pthread_mutex_unlock(&a->mu);
}

/* Keep reading ahead when the range goes on: after the newest read, or at
 * the refill point when none is held. Failing to start only means no
 * read-ahead. */
static void ahead_start(struct strata_event_iter *it)
{
	struct iter_ahead *a = &it->ahead;
	pthread_mutex_lock(&a->mu);
	ahead_fill(a, !it->eos, frame_asm_end(&it->fa));
	pthread_mutex_unlock(&a->mu);
}

/* Drop every held result once none is in flight (a->mu held). */
static void ahead_drain(struct iter_ahead *a)
{
	bool stop = a->stop;
	a->stop = true;
	for (;;) {
		bool inflight = false;
		for (size_t k = 0; k < a->n; k++) {
			inflight = inflight || !slot_at(a, k)->ready;
		}
		if (!inflight) {
			break;
		}
		pthread_cond_wait(&a->cv, &a->mu);
	}
	for (size_t k = 0; k < a->n; k++) {
		strata_read_result_release(&slot_at(a, k)->r);
	}
	a->n = 0;
	a->head = 0;
	a->stop = stop;
}

/* The read-ahead result for offset at, when it has data: moved to *out
 * (true), waiting for it if it is in flight. When the oldest result
 * starts after at, it is kept and *gap_end is set to its offset (the
 * refill reads [at, *gap_end) itself). Otherwise everything held is
 * dropped. */
static bool ahead_take(struct strata_event_iter *it, uint64_t at,
                       struct strata_read_result *out, uint64_t *gap_end)
{
	struct iter_ahead *a = &it->ahead;
	bool ok = false;
	*gap_end = UINT64_MAX;
	pthread_mutex_lock(&a->mu);
	while (a->n > 0 && !slot_at(a, 0)->ready) {
		pthread_cond_wait(&a->cv, &a->mu);
	}
	struct ahead_slot *h = a->n > 0 ? slot_at(a, 0) : NULL;
	if (h != NULL && h->at == at && h->code == 0 &&
	    (h->r.len > 0 || h->r.end_of_segment)) {
		*out = h->r;
		a->head = (a->head + 1) % ITER_AHEAD;
		a->n--;
		ok = true;
	} else if (h != NULL && h->at > at) {
		*gap_end = h->at;
	} else if (h != NULL) {
		ahead_drain(a);
	}
	pthread_mutex_unlock(&a->mu);
	return ok;
}

int event_iter_new(struct strata_client *c, const char *segment,
                   uint64_t start_offset, uint64_t end_offset,
                   uint32_t read_bytes, unsigned depth,
                   struct strata_event_iter **out, char *errmsg)
{
	if (segment == NULL || end_offset < start_offset) {
		client_err(errmsg,
		           "event iterator: a segment is required and the end "
		           "offset (%" PRIu64 ") must not be below the start "
		           "(%" PRIu64 ")",
		           end_offset, start_offset);
		return STRATA_EINVAL;
	}
	struct strata_event_iter *it = strata_calloc(1, sizeof(*it));
	if (it == NULL || (it->name = strata_strdup(segment)) == NULL) {
		strata_free(it);
		client_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	it->c = c;
	it->end = end_offset;
	it->read_bytes = read_bytes != 0 ? read_bytes : ITER_READ_BYTES;
	frame_asm_init(&it->fa, start_offset, ITER_MAX_EVENT);
	buf_init(&it->dec, 0);
	pthread_mutex_init(&it->ahead.mu, NULL);
	pthread_cond_init(&it->ahead.cv, NULL);
	it->ahead.c = c;
	it->ahead.name = it->name;
	it->ahead.end = end_offset;
	it->ahead.read_bytes = it->read_bytes;
	it->ahead.depth = depth < 1            ? 1
	                  : depth > ITER_AHEAD ? ITER_AHEAD
	                                       : depth;
	*out = it;
	return 0;
}

int strata_event_iter_new(struct strata_client *c, const char *segment,
                          uint64_t start_offset, uint64_t end_offset,
                          uint32_t read_bytes, struct strata_event_iter **out,
                          char *errmsg)
{
	return event_iter_new(c, segment, start_offset, end_offset, read_bytes,
	                      ITER_AHEAD, out, errmsg);
}

void strata_event_iter_free(struct strata_event_iter *it)
{
	if (it == NULL) {
		return;
	}
	pthread_mutex_lock(&it->ahead.mu);
	it->ahead.stop = true;
	ahead_drain(&it->ahead); /* waits for the reads in flight */
	pthread_mutex_unlock(&it->ahead.mu);
	pthread_cond_destroy(&it->ahead.cv);
	pthread_mutex_destroy(&it->ahead.mu);
	frame_asm_close(&it->fa);
	buf_close(&it->dec);
	strata_free(it->name);
	strata_free(it);
}

uint64_t strata_event_iter_position(const struct strata_event_iter *it)
{
	return frame_asm_position(&it->fa);
}

int strata_event_iter_next(struct strata_event_iter *it, uint32_t wait_ms,
                           struct strata_event *ev, char *errmsg)
{
	memset(ev, 0, sizeof(*ev));
	uint64_t deadline = loop_now_ms() + wait_ms;
	bool at_tail = false; /* the last read found no more data */
	for (;;) {
		uint64_t pos = frame_asm_position(&it->fa);
		if (pos >= it->end) {
			ev->end = true;
			ev->offset = ev->next_offset = pos;
			return 0;
		}
		const uint8_t *p;
		size_t len;
		uint64_t off;
		int rc = frame_asm_next(&it->fa, &p, &len, &off);
		if (rc == 0) {
			if (off + 4 + len > it->end) {
				client_err(
				        errmsg,
				        "segment %.200s: the event at %" PRIu64
				        " runs past the end offset %" PRIu64
				        "; the range does not end at an event",
				        it->name, off, it->end);
				frame_asm_unget(&it->fa);
				return STRATA_ECORRUPT;
			}
			if (it->fa.last_encoded) {
				char why[STRATA_ERRMSG_SIZE];
				rc = codec_event_decode(p, len, ITER_MAX_EVENT,
				                        &it->dec, why);
				if (rc != 0) {
					client_err(errmsg,
					           "segment %.200s: event at "
					           "%" PRIu64 ": %s",
					           it->name, off, why);
					frame_asm_unget(&it->fa);
					return rc;
				}
				ev->data = it->dec.data;
				ev->len = it->dec.len;
			} else {
				ev->data = p;
				ev->len = len;
			}
			ev->offset = off;
			ev->next_offset = off + 4 + len;
			return 0;
		}
		if (rc == STRATA_ENOMEM) {
			client_err(errmsg, "out of memory");
			return rc;
		}
		if (rc == STRATA_ECORRUPT) {
			client_err(
			        errmsg,
			        "segment %.200s: the frame at %" PRIu64
			        " claims more than %u bytes; the data is not "
			        "framed events or the offset is not an event "
			        "boundary",
			        it->name, pos, ITER_MAX_EVENT);
			return rc;
		}
		uint64_t at = frame_asm_end(&it->fa);
		if (it->eos || at >= it->end) {
			if (frame_asm_pending(&it->fa) > 0) {
				client_err(
				        errmsg,
				        "segment %.200s ends inside the event "
				        "at %" PRIu64,
				        it->name, pos);
				return STRATA_ECORRUPT;
			}
			ev->end = true;
			ev->offset = ev->next_offset = pos;
			return 0;
		}
		uint64_t now = loop_now_ms();
		if (at_tail && now >= deadline) {
			ev->offset = ev->next_offset = pos;
			return 0; /* nothing new in time */
		}
		uint32_t wait = now < deadline ? (uint32_t)(deadline - now) : 0;
		uint64_t want = it->end - at;
		uint32_t max =
		        want < it->read_bytes ? (uint32_t)want : it->read_bytes;
		struct strata_read_result r;
		uint64_t gap_end;
		if (ahead_take(it, at, &r, &gap_end)) {
			rc = 0;
		} else {
			if (gap_end - at < max) {
				max = (uint32_t)(gap_end - at);
			}
			rc = strata_segment_read(it->c, it->name, at, max, wait,
			                         &r, errmsg);
		}
		at_tail = r.at_tail || r.len == 0;
		pthread_mutex_lock(&it->ahead.mu);
		if (r.length > it->ahead.known_len) {
			it->ahead.known_len = r.length;
		}
		pthread_mutex_unlock(&it->ahead.mu);
		if (rc == STRATA_ETRUNCATED && r.start_offset > pos) {
			/* The head moved past us: go on from the new start
			 * at the next call, and say what was lost now. */
			uint64_t start = r.start_offset;
			uint64_t lost = start < it->end ? start : it->end;
			strata_read_result_release(&r);
			frame_asm_reset(&it->fa, start);
			client_err(errmsg,
			           "segment %.200s: bytes %" PRIu64 "..%" PRIu64
			           " were truncated before they were read; "
			           "reading goes on from %" PRIu64,
			           it->name, pos, lost, lost);
			ev->offset = pos;
			ev->next_offset = lost; /* only ours: up to the end */
			return rc;
		}
		if (rc != 0) {
			strata_read_result_release(&r);
			return rc;
		}
		if (r.len > 0) {
			/* The assembler takes the buffer: no copy. */
			struct rpc_body b = {
			        .data = r.data, .len = r.len, .msg = r.priv};
			r.data = NULL;
			r.len = 0;
			r.priv = NULL;
			if (frame_asm_feed_body(&it->fa, &b) != 0) {
				client_err(errmsg, "out of memory");
				return STRATA_ENOMEM;
			}
		}
		if (r.end_of_segment) {
			it->eos = true;
		}
		strata_read_result_release(&r);
		if (!at_tail) {
			ahead_start(it);
		}
	}
}

/* --------------------------------------------------- revisioned segment */

struct strata_rsegment {
	struct strata_client *c;
	char *name;
	uint8_t writer[16];
	int64_t next_num;
	bool need_setup;
};

static int rs_setup(struct strata_rsegment *rs, char *errmsg)
{
	Strata__V1__SetupAppendRequest q =
	        STRATA__V1__SETUP_APPEND_REQUEST__INIT;
	q.segment = rs->name;
	q.writer_id.data = rs->writer;
	q.writer_id.len = sizeof(rs->writer);
	Strata__V1__SetupAppendReply *r = NULL;
	int rc = client_seg_call(rs->c, rs->name, CT_SS_SETUP_APPEND, &q.base,
	                         &strata__v1__setup_append_reply__descriptor,
	                         (ProtobufCMessage **)&r, false, errmsg);
	if (rc == 0) {
		rs->next_num = r->last_event_number + 1;
		rs->need_setup = false;
		rpc_pb_free(&r->base);
	}
	return rc;
}

int strata_rsegment_open(struct strata_client *c, const char *segment,
                         struct strata_rsegment **out, char *errmsg)
{
	struct strata_rsegment *rs = strata_calloc(1, sizeof(*rs));
	if (rs == NULL || (rs->name = strata_strdup(segment)) == NULL) {
		strata_free(rs);
		client_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	rs->c = c;
	client_random(rs->writer, sizeof(rs->writer));
	int rc = rs_setup(rs, errmsg);
	if (rc != 0) {
		strata_rsegment_close(rs);
		return rc;
	}
	*out = rs;
	return 0;
}

void strata_rsegment_close(struct strata_rsegment *rs)
{
	if (rs == NULL) {
		return;
	}
	strata_free(rs->name);
	strata_free(rs);
}

const char *strata_rsegment_name(const struct strata_rsegment *rs)
{
	return rs->name;
}

/* One exactly-once append of one event; expected -1 = unconditional. */
static int rs_append(struct strata_rsegment *rs, int64_t expected,
                     const void *data, size_t len, uint64_t *offset,
                     uint64_t *length, char *errmsg)
{
	if (len > UINT32_MAX - 4) {
		client_err(errmsg,
		           "segment %.200s: event of %zu bytes is too "
		           "large",
		           rs->name, len);
		return STRATA_ETOOBIG;
	}
	uint8_t *frame = strata_malloc(len + 4);
	if (frame == NULL) {
		client_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	frame_header(frame, (uint32_t)len);
	if (len > 0) {
		memcpy(frame + 4, data, len);
	}
	int rc = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (rs->need_setup && (rc = rs_setup(rs, errmsg)) != 0) {
			break;
		}
		Strata__V1__AppendRequest q = STRATA__V1__APPEND_REQUEST__INIT;
		q.segment = rs->name;
		q.writer_id.data = rs->writer;
		q.writer_id.len = sizeof(rs->writer);
		q.first_event_number = rs->next_num;
		q.event_count = 1;
		q.data.data = frame;
		q.data.len = len + 4;
		q.expected_offset = expected;
		Strata__V1__AppendReply *r = NULL;
		rc = client_seg_call(rs->c, rs->name, CT_SS_APPEND, &q.base,
		                     &strata__v1__append_reply__descriptor,
		                     (ProtobufCMessage **)&r, true, errmsg);
		if (rc == 0) {
			rs->next_num++;
			if (offset != NULL) {
				*offset = r->offset;
			}
			if (length != NULL) {
				*length = r->length;
			}
		} else if (rc == STRATA_EBADOFFSET) {
			if (length != NULL && r != NULL) {
				*length = r->offset;
			}
			rc = STRATA_ECONFLICT;
			client_err(errmsg,
			           "segment %.200s changed: revision %" PRId64
			           " is no longer current; read the updates "
			           "and retry",
			           rs->name, expected);
		} else if (rc == STRATA_EBADEVENTNUM) {
			rs->need_setup = true;
			if (r != NULL) {
				rpc_pb_free(&r->base);
			}
			continue; /* resync the event number once */
		} else if (rc != STRATA_ESEALED && rc != STRATA_ETOOBIG &&
		           rc != STRATA_ENOENT) {
			/* Outcome unknown: learn the event number again. */
			rs->need_setup = true;
		}
		if (r != NULL) {
			rpc_pb_free(&r->base);
		}
		break;
	}
	strata_free(frame);
	return rc;
}

int strata_rsegment_append(struct strata_rsegment *rs,
                           uint64_t expected_revision, const void *data,
                           size_t len, uint64_t *new_revision, char *errmsg)
{
	if (expected_revision > INT64_MAX) {
		client_err(errmsg, "revision %" PRIu64 " is out of range",
		           expected_revision);
		return STRATA_EINVAL;
	}
	return rs_append(rs, (int64_t)expected_revision, data, len, NULL,
	                 new_revision, errmsg);
}

int strata_rsegment_append_any(struct strata_rsegment *rs, const void *data,
                               size_t len, uint64_t *offset, char *errmsg)
{
	return rs_append(rs, -1, data, len, offset, NULL, errmsg);
}

int strata_rsegment_revision(struct strata_rsegment *rs, uint64_t *revision,
                             uint64_t *start, char *errmsg)
{
	struct strata_segment_stat st;
	int rc = strata_segment_get_stat(rs->c, rs->name, &st, errmsg);
	if (rc == 0) {
		if (revision != NULL) {
			*revision = st.length;
		}
		if (start != NULL) {
			*start = st.start_offset;
		}
	}
	return rc;
}

int strata_rsegment_truncate(struct strata_rsegment *rs, uint64_t offset,
                             char *errmsg)
{
	return strata_segment_truncate(rs->c, rs->name, offset, errmsg);
}

/* ----------------------------------------------------------- attributes */

int strata_segment_attribute_get(struct strata_client *c, const char *segment,
                                 const uint8_t key[16], bool *present,
                                 int64_t *value, char *errmsg)
{
	Strata__V1__AttributeRequest q = STRATA__V1__ATTRIBUTE_REQUEST__INIT;
	q.segment = (char *)segment;
	q.key.data = (uint8_t *)key;
	q.key.len = 16;
	Strata__V1__AttributeReply *r = NULL;
	int rc = client_seg_call(c, segment, CT_SS_GET_ATTRIBUTE, &q.base,
	                         &strata__v1__attribute_reply__descriptor,
	                         (ProtobufCMessage **)&r, false, errmsg);
	if (rc == 0) {
		*present = r->present;
		*value = r->value;
		rpc_pb_free(&r->base);
	}
	return rc;
}

int strata_segment_attribute_update(struct strata_client *c,
                                    const char *segment, const uint8_t key[16],
                                    int64_t value, bool compare,
                                    int64_t expected, char *errmsg)
{
	Strata__V1__UpdateAttributeRequest q =
	        STRATA__V1__UPDATE_ATTRIBUTE_REQUEST__INIT;
	q.segment = (char *)segment;
	q.key.data = (uint8_t *)key;
	q.key.len = 16;
	q.value = value;
	q.compare = compare;
	q.expected = expected;
	return client_seg_call(c, segment, CT_SS_UPDATE_ATTRIBUTE, &q.base,
	                       NULL, NULL, false, errmsg);
}
