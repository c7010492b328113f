/* libstrata event writer: routing, batching, pipelined exactly-once
 * appends, resync after failures, and successors after scaling.
 *
 * Threads: strata_writer_write() admits an event under w->mu (window of
 * bytes and events) and queues it; everything else runs on the client's
 * I/O thread: routing, blocks, completions, callbacks.
 *
 * Per segment (struct segw), happy path: SETUP_APPEND (learn the last
 * event number of this writer id) -> ready -> blocks of framed events,
 * numbered consecutively, up to max_inflight_batches in flight -> each
 * AppendReply acknowledges every event up to its last_event_number.
 *
 * Failure modes:
 * - transient error on a block (no connection, timeout, wrong host, not
 *   leader, back-pressure, event number gap): not ready; once every block
 *   in flight has resolved, SETUP_APPEND again through the controller's
 *   endpoint (fail-over), acknowledge events up to the store's last event
 *   number, renumber the rest from there and resend them. The store's
 *   dedup rule makes this exactly-once. Past retry_timeout_ms (counted
 *   from the failing block's send) the events fail with the last error.
 * - a permanent error on a block (too big, malformed): its events and
 *   those queued after them fail; the others are resent after a resync.
 *   After either, the writer takes no more (w->broken): a later event of
 *   a failed one's key would leave a hole in the key's order.
 * - STRATA_ESEALED (or STRATA_ENOENT: sealed, then deleted by a
 *   truncation): the segment was sealed. Ask the controller for the
 *   current segments. Segments no longer current retire: they send
 *   nothing new, drain and resync, then move their remaining events to
 *   the new segments overlapping them ("dependents", created blocked by
 *   them) ahead of newer events there, so each key keeps its order. The
 *   segment still current while sealed means the stream is sealed (once
 *   the answer says the stream is sealed: until then it came from a
 *   replica behind the scale, and the writer asks again): its events
 *   fail with STRATA_ESEALED.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"
#include "client/codec.h"
#include "client/frame.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/segname.h"
#include "strata/v1/controller.pb-c.h"
#include "strata/v1/segmentstore.pb-c.h"
#include "strata/writer.h"

/* One event, framed, from write to resolution. */
struct wevent {
	struct wevent *next;
	uint64_t seq;  /* admission order (window, flush) */
	double pos;    /* routing position in [0,1) */
	int64_t num;   /* event number once in a block */
	int fail_code; /* permanent failure of its block */
	uint64_t t_ms; /* routed at (linger) */
	strata_write_cb cb;
	void *arg;
	size_t flen;    /* framed length */
	uint8_t data[]; /* header + payload */
};

struct segw;

/* One append in flight. */
struct wblock {
	struct creq rq; /* owner = the block */
	struct segw *sw;
	int64_t first;
	int64_t last;
	uint64_t sent_ms; /* the retry timeout counts from here */
};

struct segw {
	struct strata_writer *w;
	struct segw *next_all; /* w->all list */
	uint64_t id;
	double low;
	double high;
	char *name;
	char url[RPC_MAX_URL_LEN]; /* store answering SETUP_APPEND */
	bool ready;                /* event numbers valid; may send */
	uint64_t max_append;       /* store's limits.max_append (0: unknown) */
	bool msg_kept;       /* last_msg says why events failed for good: kept
	                        until the setup that resolves them */
	bool setup_inflight; /* op running */
	struct seg_op op;    /* SETUP_APPEND */
	bool sealed;         /* the store said so */
	bool retiring;       /* no longer a current segment */
	bool dead;           /* stream sealed: fail what comes here */
	bool finished;       /* retired and rerouted */
	bool prefetch;       /* set up even with nothing queued */
	uint64_t backoff_until; /* no resync before (monotonic ms) */
	unsigned blocked_by;    /* unfinished predecessors */
	struct segw **deps;     /* segments this one blocks, oldest first */
	size_t n_deps;
	int64_t next_num;      /* next event number to assign */
	uint64_t acked_len;    /* segment length after our last append */
	struct wevent *q_head; /* every unresolved event, in order */
	struct wevent *q_tail;
	struct wevent *unsent; /* first event not in a block */
	size_t unsent_bytes;
	unsigned inflight;   /* blocks in flight */
	uint64_t fail_since; /* first failure since the last success */
	unsigned fail_count;
	int last_code;
	char last_msg[STRATA_ERRMSG_SIZE];
	struct loop_timer timer; /* linger, or backoff before a resync */
};

struct strata_writer {
	struct strata_client *c;
	char scope[STRATA_NAME_MAX + 1];
	char stream[STRATA_NAME_MAX + 1];
	struct strata_writer_config cfg;
	uint8_t id[16];
	/* guarded by mu: */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* An event failed for good (STRATA_ETOOBIG, EPROTO, EINVAL): every
	 * later one fails too, as a key's order would have a hole. */
	atomic_int broken; /* read without mu on the fast paths */
	char broken_msg[STRATA_ERRMSG_SIZE];
	struct wevent *in_head; /* admitted, not yet routed */
	struct wevent *in_tail;
	uint64_t next_seq;
	uint64_t wm;   /* every seq below it is resolved */
	uint8_t *ring; /* resolved flags, max_inflight_events slots */
	size_t inflight_bytes;
	uint64_t force_seq; /* flush: no linger for seq below it */
	uint64_t fail_count;
	uint64_t fail_seen;
	int last_err;
	char last_msg[STRATA_ERRMSG_SIZE];
	bool closing;
	bool destroyed;  /* the I/O thread let go */
	uint64_t txn_id; /* a transaction's writer (client/txn.c), else 0 */
	bool noted;      /* noted time: close removes its mark (under mu) */
	const struct strata_codec_ops *codec; /* NULL: events go plain */
	int codec_level;                      /* its level */
	struct strata_writer_stats stats;
	/* I/O thread only: */
	struct loop_task pump_task;
	struct loop_task close_task;
	struct loop_task kick_task; /* sw_after on every segment */
	bool kick_pending;
	bool in_close_task;
	bool loop_closing;
	struct segw *all;
	struct segw **table; /* current segments, sorted by low */
	double *lows;
	size_t n_table;
	bool refresh_inflight;
	bool refresh_again;
	uint64_t refresh_fail_since;
	unsigned refresh_fails;
	struct creq refresh_rq;
	struct loop_timer refresh_timer;
	uint64_t rng;
};

void strata_writer_config_default(struct strata_writer_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_inflight_bytes = 32u * 1024 * 1024;
	cfg->max_inflight_events = 65536;
	cfg->linger_ms = 0;
	cfg->max_batch_bytes = 1024u * 1024;
	cfg->max_inflight_batches = 8;
	cfg->max_event_bytes = STRATA_DEFAULT_MAX_EVENT_BYTES;
	cfg->retry_timeout_ms = 120000;
	cfg->block_when_full = true;
}

void strata_writer_id(const struct strata_writer *w, uint8_t id[16])
{
	memcpy(id, w->id, 16);
}

void strata_writer_get_stats(struct strata_writer *w,
                             struct strata_writer_stats *out)
{
	pthread_mutex_lock(&w->mu);
	*out = w->stats;
	pthread_mutex_unlock(&w->mu);
}

static void stat_add(struct strata_writer *w, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&w->mu);
	*field += n;
	pthread_mutex_unlock(&w->mu);
}

/* ---------------------------------------------------------- resolution */

/* Run ev's callback, release its window share, free it. */
static void ev_resolve(struct strata_writer *w, struct wevent *ev, int code,
                       const char *msg)
{
	if (ev->cb != NULL) {
		ev->cb(ev->arg, code, code != 0 ? msg : "");
	}
	size_t cap = w->cfg.max_inflight_events;
	pthread_mutex_lock(&w->mu);
	w->inflight_bytes -= ev->flen;
	w->ring[ev->seq % cap] = 1;
	while (w->wm < w->next_seq && w->ring[w->wm % cap] != 0) {
		w->ring[w->wm % cap] = 0;
		w->wm++;
	}
	if (code == 0) {
		w->stats.events_acked++;
	} else {
		w->stats.events_failed++;
		w->fail_count++;
		w->last_err = code;
		client_err(w->last_msg, "%s", msg);
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	strata_free(ev);
}

/* Resolve (ok) every sent event of sw numbered <= last. */
static void sw_ack_upto(struct segw *sw, int64_t last)
{
	while (sw->q_head != NULL && sw->q_head != sw->unsent &&
	       sw->q_head->num <= last) {
		struct wevent *ev = sw->q_head;
		sw->q_head = ev->next;
		if (sw->q_head == NULL) {
			sw->q_tail = NULL;
		}
		ev_resolve(sw->w, ev, 0, "");
	}
}

/* Fail every queued event of sw with code (the queue is then empty). */
static void sw_fail_all(struct segw *sw, int code, const char *msg)
{
	struct wevent *ev = sw->q_head;
	sw->q_head = sw->q_tail = sw->unsent = NULL;
	sw->unsent_bytes = 0;
	while (ev != NULL) {
		struct wevent *next = ev->next;
		ev_resolve(sw->w, ev, code, msg);
		ev = next;
	}
}

/* Make every queued event unsent again (after a resync). */
static void sw_unsend_all(struct segw *sw)
{
	sw->unsent = sw->q_head;
	sw->unsent_bytes = 0;
	for (struct wevent *ev = sw->q_head; ev != NULL; ev = ev->next) {
		sw->unsent_bytes += ev->flen;
	}
}

/* Append ev at the end of sw's queue, unsent. */
static void sw_enqueue(struct segw *sw, struct wevent *ev)
{
	ev->next = NULL;
	if (sw->q_tail != NULL) {
		sw->q_tail->next = ev;
	} else {
		sw->q_head = ev;
	}
	sw->q_tail = ev;
	if (sw->unsent == NULL) {
		sw->unsent = ev;
	}
	sw->unsent_bytes += ev->flen;
}

/* ------------------------------------------------------------ segments */

static void sw_pump(struct segw *sw);
static void sw_after(struct segw *sw);
static void writer_refresh(struct strata_writer *w);
static void writer_maybe_destroy(struct strata_writer *w);

static void sw_timer(void *arg)
{
	struct segw *sw = arg;
	sw_after(sw);
}

static struct segw *sw_new(struct strata_writer *w, uint64_t id, double low,
                           double high)
{
	char name[600];
	struct segw *sw = strata_calloc(1, sizeof(*sw));
	if (sw == NULL) {
		return NULL;
	}
	strata_segment_name(name, sizeof(name), w->scope, w->stream, id);
	if (w->txn_id != 0) {
		/* The transaction's shadow of that segment. */
		char parent[sizeof(name)];
		memcpy(parent, name, sizeof(parent));
		segname_format_txn(name, sizeof(name), parent, w->txn_id);
	}
	sw->name = strata_strdup(name);
	if (sw->name == NULL) {
		strata_free(sw);
		return NULL;
	}
	sw->w = w;
	sw->id = id;
	sw->low = low;
	sw->high = high;
	loop_timer_init(&sw->timer, sw_timer, sw);
	sw->next_all = w->all;
	w->all = sw;
	return sw;
}

static void sw_free(struct segw *sw)
{
	struct strata_writer *w = sw->w;
	for (struct segw **pp = &w->all; *pp != NULL; pp = &(*pp)->next_all) {
		if (*pp == sw) {
			*pp = sw->next_all;
			break;
		}
	}
	loop_timer_cancel(w->c->loop, &sw->timer);
	strata_free(sw->deps);
	strata_free(sw->name);
	strata_free(sw);
}

static void writer_break(struct strata_writer *w, int code, const char *msg);

static void sw_note_failure(struct segw *sw, int code, const char *msg)
{
	uint64_t now = loop_now_ms();
	if (sw->fail_since == 0) {
		sw->fail_since = now;
	}
	/* Blocks sent behind a refused one fail their event numbers: that
	 * follows from the failure already noted (back-pressure, a store
	 * away), whose code and reason are the ones to report. */
	bool follows = code == STRATA_EBADEVENTNUM && sw->fail_count > 0;
	sw->fail_count++;
	if (sw->fail_count > 1) {
		unsigned n = sw->fail_count - 2;
		sw->backoff_until = now + (50u << (n < 4 ? n : 4));
	}
	if (follows) {
		return;
	}
	sw->last_code = code;
	if (!sw->msg_kept) {
		client_err(sw->last_msg, "%s", msg);
	}
}

/* sw's setup is given up: fail its events, and unless the client is
 * closing, break the writer (a later event of their keys would be
 * written after a hole). */
static void sw_give_up(struct segw *sw, int code, const char *msg)
{
	struct strata_writer *w = sw->w;
	bool closing = w->loop_closing || atomic_load(&w->c->closing);
	if (code != STRATA_ECLOSED || !closing) {
		LOG_WARN("client", "%s", msg);
		writer_break(w, code, msg);
	}
	sw_fail_all(sw, code, msg);
}

static void sw_setup_done(struct seg_op *op, int code, const char *errmsg)
{
	struct segw *sw = op->arg;
	struct strata_writer *w = sw->w;
	sw->setup_inflight = false;
	if (code == 0) {
		Strata__V1__SetupAppendReply *r =
		        (Strata__V1__SetupAppendReply *)rpc_pb_unpack(
		                &strata__v1__setup_append_reply__descriptor,
		                op->reply.data, op->reply.len);
		if (r == NULL) {
			code = STRATA_EPROTO;
			errmsg = "SETUP_APPEND reply does not parse";
		} else {
			int64_t last = r->last_event_number;
			sw->max_append = r->max_append;
			rpc_pb_free(&r->base);
			snprintf(sw->url, sizeof(sw->url), "%s", op->url);
			sw_ack_upto(sw, last);
			/* Events of blocks that failed for good, and every
			 * event queued after them (fail_from). */
			struct wevent **pp = &sw->q_head;
			struct wevent *prev = NULL;
			while (*pp != NULL) {
				struct wevent *ev = *pp;
				if (ev->fail_code != 0) {
					*pp = ev->next;
					if (sw->q_tail == ev) {
						sw->q_tail = prev;
					}
					ev_resolve(w, ev, ev->fail_code,
					           sw->last_msg);
					continue;
				}
				prev = ev;
				pp = &ev->next;
			}
			sw->msg_kept = false;
			sw->next_num = last + 1;
			sw_unsend_all(sw);
			sw->ready = true;
			seg_op_reset(op);
			sw_after(sw);
			writer_maybe_destroy(w);
			return;
		}
	}
	if (code == STRATA_ENOENT && w->txn_id == 0) {
		seg_op_reset(op);
		if (sw->retiring) {
			/* Truncation deleted it after its seal: nothing of
			 * it can be read, so what it did not acknowledge
			 * moves to the successors like unsent events. */
			sw_unsend_all(sw);
			sw->ready = true;
		} else if (!sw->sealed) {
			/* Find out from the controller where its keys go
			 * now (a refresh shows it retired). */
			sw->sealed = true;
			writer_refresh(w);
		} else {
			sw_note_failure(sw, code, errmsg);
		}
		sw_after(sw);
		writer_maybe_destroy(w);
		return;
	}
	char msg[STRATA_ERRMSG_SIZE];
	if (code == STRATA_ENOENT && w->txn_id != 0) {
		/* Its shadow is deleted when it ends (or its stream is). */
		client_err(msg,
		           "transaction %" PRIu64 " of %s/%s is no longer "
		           "open (committed, aborted, or its stream deleted): "
		           "segment %.200s takes no more events",
		           w->txn_id, w->scope, w->stream, sw->name);
	} else {
		client_err(msg, "writer %s/%s: %s", w->scope, w->stream,
		           errmsg);
	}
	seg_op_reset(op);
	/* Given up (deadline, missing segment, closing): fail what waits. */
	sw_give_up(sw, code, msg);
	sw->fail_since = 0;
	sw->fail_count = 0;
	sw_after(sw);
	writer_maybe_destroy(w);
}

static void sw_start_setup(struct segw *sw)
{
	struct strata_writer *w = sw->w;
	char msg[STRATA_ERRMSG_SIZE];
	Strata__V1__SetupAppendRequest q =
	        STRATA__V1__SETUP_APPEND_REQUEST__INIT;
	q.segment = sw->name;
	q.writer_id.data = w->id;
	q.writer_id.len = sizeof(w->id);
	uint64_t start = sw->fail_since != 0 ? sw->fail_since : loop_now_ms();
	uint64_t deadline = start + (uint64_t)w->cfg.retry_timeout_ms;
	sw->setup_inflight = true;
	sw->prefetch = false;
	if (sw->fail_count > 0) {
		stat_add(w, &w->stats.resyncs, 1);
	}
	int rc = seg_op_start(w->c, &sw->op, sw->name, CT_SS_SETUP_APPEND,
	                      &q.base, deadline, 0, sw_setup_done, sw, msg);
	if (rc != 0) {
		/* Given up before asking: out of memory, or the client is
		 * closing (seg_op_start's only failures for our names) */
		sw->setup_inflight = false;
		char full[STRATA_ERRMSG_SIZE];
		client_err(full, "writer %s/%s: %s", w->scope, w->stream, msg);
		sw_give_up(sw, rc, full);
	}
}

/* Whether sw can take a new block now. */
static bool sw_can_send(const struct segw *sw)
{
	return sw->ready && !sw->sealed && !sw->retiring && !sw->dead &&
	       sw->blocked_by == 0 && !sw->w->loop_closing;
}

static void sw_block_done(struct creq *r);

/* Mark ev and every event queued after it on its segment failed for good:
 * the next setup resolves them (never sent again). An event that can
 * never be written fails the ones behind it too, as their keys' order
 * would have a hole, and the writer takes no more (w->broken: events
 * routed later fail at once, strata_writer_write returns the error). */
static void fail_from(struct strata_writer *w, struct wevent *ev, int code,
                      const char *msg)
{
	for (; ev != NULL; ev = ev->next) {
		ev->fail_code = code;
	}
	writer_break(w, code, msg);
}

/* The writer takes no more events (strata_writer_write returns code):
 * some failed, and a later event of their key would leave a hole. */
static void writer_break(struct strata_writer *w, int code, const char *msg)
{
	pthread_mutex_lock(&w->mu);
	if (atomic_load(&w->broken) == 0) {
		/* Named once, and short enough that the hint survives the
		 * cut at STRATA_ERRMSG_SIZE. */
		bool named = strncmp(msg, "writer ", 7) == 0;
		client_err(w->broken_msg,
		           "%s%s%s%s%s%.150s; the writer takes no more "
		           "events (a key's order would have a hole): "
		           "create a new one",
		           named ? "" : "writer ", named ? "" : w->scope,
		           named ? "" : "/", named ? "" : w->stream,
		           named ? "" : ": ", msg);
		atomic_store(&w->broken, code);
	}
	pthread_mutex_unlock(&w->mu);
}

/* Send one block from sw->unsent. */
static void sw_send_block(struct segw *sw)
{
	struct strata_writer *w = sw->w;
	size_t max = w->cfg.max_batch_bytes;
	if (sw->max_append != 0 && sw->unsent->flen > sw->max_append) {
		/* The store cannot take it: fail it now (the request would
		 * be dropped, and retried until the retry timeout). */
		client_err(sw->last_msg,
		           "writer %s/%s: event of %zu bytes framed is over "
		           "the segment store's limits.max_append (%" PRIu64
		           "); split it or raise that limit",
		           w->scope, w->stream, sw->unsent->flen,
		           sw->max_append);
		fail_from(w, sw->unsent, STRATA_ETOOBIG, sw->last_msg);
		sw->msg_kept = true;
		/* A setup resolves them (sw_after, from the timer). */
		sw->ready = false;
		loop_timer_arm(w->c->loop, &sw->timer, 1);
		return;
	}
	size_t bytes = 0;
	uint32_t count = 0;
	for (struct wevent *ev = sw->unsent; ev != NULL; ev = ev->next) {
		if (count > 0 && bytes + ev->flen > max) {
			break;
		}
		bytes += ev->flen;
		count++;
	}
	/* The AppendRequest in place: the events are copied once, straight
	 * into it (client/frame.h). */
	int64_t first = sw->next_num;
	size_t head = append_request_head(NULL, sw->name, w->id, sizeof(w->id),
	                                  first, count, bytes);
	size_t len = head + bytes + append_request_tail(NULL, -1);
	struct wblock *b = strata_calloc(1, sizeof(*b));
	uint8_t *req = strata_malloc(len);
	char msg[STRATA_ERRMSG_SIZE];
	if (b == NULL || req == NULL) {
		strata_free(b);
		strata_free(req);
		/* Try again later. */
		sw_note_failure(sw, STRATA_ENOMEM, "out of memory");
		loop_timer_arm(w->c->loop, &sw->timer, 100);
		return;
	}
	b->sw = sw;
	b->sent_ms = loop_now_ms();
	b->first = first;
	append_request_head(req, sw->name, w->id, sizeof(w->id), first, count,
	                    bytes);
	size_t off = head;
	struct wevent *ev = sw->unsent;
	for (uint32_t i = 0; i < count; i++, ev = ev->next) {
		ev->num = sw->next_num++;
		memcpy(req + off, ev->data, ev->flen);
		off += ev->flen;
	}
	append_request_tail(req + off, -1);
	b->last = sw->next_num - 1;
	sw->unsent = ev;
	sw->unsent_bytes -= bytes;
	sw->inflight++;
	int rc = creq_start_bytes(w->c, &b->rq, sw->url, CT_SS_APPEND,
	                          RPC_IDEMPOTENT, req, len, sw_block_done, b,
	                          msg);
	strata_free(req);
	stat_add(w, &w->stats.blocks_sent, 1);
	if (rc != 0) {
		/* As if it failed in flight: resync before anything else. */
		sw->inflight--;
		strata_free(b);
		sw->ready = false;
		sw_note_failure(sw, rc, msg);
	}
}

static void sw_pump(struct segw *sw)
{
	struct strata_writer *w = sw->w;
	if (!sw_can_send(sw)) {
		return;
	}
	pthread_mutex_lock(&w->mu);
	uint64_t force = w->force_seq;
	pthread_mutex_unlock(&w->mu);
	uint64_t now = loop_now_ms();
	while (sw->unsent != NULL && sw->ready &&
	       sw->inflight < w->cfg.max_inflight_batches) {
		if (w->cfg.linger_ms > 0 &&
		    sw->unsent_bytes < w->cfg.max_batch_bytes &&
		    sw->unsent->seq >= force &&
		    now < sw->unsent->t_ms + w->cfg.linger_ms) {
			loop_timer_arm(w->c->loop, &sw->timer,
			               sw->unsent->t_ms + w->cfg.linger_ms -
			                       now);
			return;
		}
		sw_send_block(sw);
	}
}

/* Move the remaining events of a drained, retired sw to its dependents,
 * ahead of their own events; then unblock them. */
static void sw_reroute(struct segw *sw)
{
	struct strata_writer *w = sw->w;
	struct wevent *ev = sw->q_head;
	sw->q_head = sw->q_tail = sw->unsent = NULL;
	sw->unsent_bytes = 0;
	/* Per dependent: the moved events, in order, to prepend. */
	struct wevent *heads[64];
	struct wevent *tails[64];
	size_t nd = sw->n_deps < 64 ? sw->n_deps : 64;
	uint64_t moved = 0;
	memset(heads, 0, sizeof(heads));
	memset(tails, 0, sizeof(tails));
	while (ev != NULL) {
		struct wevent *next = ev->next;
		ev->next = NULL;
		size_t d = nd;
		for (size_t i = 0; i < nd; i++) {
			if (ev->pos >= sw->deps[i]->low &&
			    ev->pos < sw->deps[i]->high) {
				d = i;
				break;
			}
		}
		if (d == nd) {
			char msg[STRATA_ERRMSG_SIZE];
			client_err(
			        msg,
			        "writer %s/%s: segment %.200s was sealed and "
			        "no successor covers key position %.6f",
			        w->scope, w->stream, sw->name, ev->pos);
			ev_resolve(w, ev, STRATA_ESEALED, msg);
		} else {
			if (tails[d] != NULL) {
				tails[d]->next = ev;
			} else {
				heads[d] = ev;
			}
			tails[d] = ev;
			moved++;
		}
		ev = next;
	}
	for (size_t i = 0; i < nd; i++) {
		struct segw *d = sw->deps[i];
		if (heads[i] != NULL) {
			/* d is blocked by sw: it has sent nothing yet. */
			tails[i]->next = d->q_head;
			if (d->q_tail == NULL) {
				d->q_tail = tails[i];
			}
			d->q_head = heads[i];
			sw_unsend_all(d);
		}
	}
	if (moved > 0) {
		stat_add(w, &w->stats.reroutes, moved);
	}
	sw->finished = true;
	for (size_t i = 0; i < sw->n_deps; i++) {
		if (sw->deps[i]->blocked_by > 0) {
			sw->deps[i]->blocked_by--;
		}
	}
	sw_free(sw);
	/* The dependents move on from a fresh task (no recursion while
	 * callers walk the segment list). */
	if (!w->kick_pending) {
		w->kick_pending = true;
		loop_post(w->c->loop, &w->kick_task);
	}
}

static void writer_kick_task(void *arg)
{
	struct strata_writer *w = arg;
	w->kick_pending = false;
	for (struct segw *sw = w->all; sw != NULL;) {
		struct segw *nx = sw->next_all;
		sw_after(sw);
		sw = nx;
	}
	writer_maybe_destroy(w);
}

/* Decide what sw does next after any change. */
static void sw_after(struct segw *sw)
{
	struct strata_writer *w = sw->w;
	if (sw->finished) {
		return;
	}
	if (w->loop_closing && sw->inflight == 0 && !sw->setup_inflight) {
		return; /* closing: nothing new starts */
	}
	if (!sw->ready) {
		if (sw->inflight > 0 || sw->setup_inflight) {
			return; /* resync once every block resolved */
		}
		if (sw->q_head == NULL && !sw->prefetch) {
			if (!sw->retiring && !sw->dead) {
				return; /* set up when events come */
			}
			sw->ready = true; /* nothing to resync for */
		} else {
			uint64_t now = loop_now_ms();
			if (sw->fail_since != 0 &&
			    now - sw->fail_since >
			            (uint64_t)w->cfg.retry_timeout_ms) {
				char msg[STRATA_ERRMSG_SIZE];
				/* The reason names the segment already: the
				 * message must keep room for its hint. */
				client_err(
				        msg,
				        "writer %s/%s: kept failing for %d ms: "
				        "%s",
				        w->scope, w->stream,
				        w->cfg.retry_timeout_ms, sw->last_msg);
				/* Broken first: a flush woken by the failed
				 * events must not see a writer still taking
				 * events (a later one of their keys would leave
				 * a hole). */
				writer_break(w, sw->last_code, msg);
				sw_fail_all(sw, sw->last_code, msg);
				sw->fail_since = 0;
				sw->fail_count = 0;
				sw->backoff_until = 0;
				if (!sw->retiring && !sw->dead) {
					return;
				}
				sw->ready = true;
			} else if (now < sw->backoff_until) {
				if (!sw->timer.armed) {
					loop_timer_arm(w->c->loop, &sw->timer,
					               sw->backoff_until - now);
				}
				return;
			} else {
				sw_start_setup(sw);
				return;
			}
		}
	}
	/* Dead only while it is current: once an answer shows its
	 * successors it retires like any sealed segment, else they, created
	 * blocked by it, would wait for it for ever. */
	if (sw->dead && !sw->retiring && sw->inflight == 0) {
		char msg[STRATA_ERRMSG_SIZE];
		if (w->txn_id != 0) {
			client_err(
			        msg,
			        "transaction %" PRIu64
			        " of %s/%s is no longer open (committing, "
			        "committed, aborted, or its stream deleted): "
			        "segment %.200s takes no more events",
			        w->txn_id, w->scope, w->stream, sw->name);
		} else {
			client_err(msg,
			           "stream %s/%s is sealed: segment %.200s "
			           "takes no more events",
			           w->scope, w->stream, sw->name);
		}
		sw_fail_all(sw, STRATA_ESEALED, msg);
		return;
	}
	if (sw->retiring) {
		if (sw->inflight == 0 && sw->blocked_by == 0) {
			sw_reroute(sw); /* frees sw */
		}
		return;
	}
	sw_pump(sw);
}

static void sw_block_done(struct creq *r)
{
	struct wblock *b = r->owner;
	struct segw *sw = b->sw;
	struct strata_writer *w = sw->w;
	sw->inflight--;
	int code = r->code;
	if (code == 0) {
		Strata__V1__AppendReply *rep =
		        (Strata__V1__AppendReply *)rpc_pb_unpack(
		                &strata__v1__append_reply__descriptor,
		                r->reply.data, r->reply.len);
		if (rep == NULL) {
			code = STRATA_EPROTO;
			client_err(r->errmsg, "append reply does not parse");
		} else {
			if (rep->duplicate) {
				stat_add(w, &w->stats.duplicates, 1);
			}
			int64_t last = rep->last_event_number;
			if (rep->length > sw->acked_len) {
				sw->acked_len = rep->length;
			}
			rpc_pb_free(&rep->base);
			/* The store applies a writer's numbers in order:
			 * everything up to last is in. */
			sw_ack_upto(sw, last > b->last ? last : b->last);
			sw->fail_since = 0;
			sw->fail_count = 0;
		}
	}
	if (code != 0) {
		char msg[STRATA_ERRMSG_SIZE];
		if (strstr(r->errmsg, sw->name) != NULL) {
			client_err(msg, "%s", r->errmsg); /* named already */
		} else {
			client_err(msg, "segment %.200s: %s", sw->name,
			           r->errmsg);
		}
		sw->ready = false;
		if ((code == STRATA_ESEALED || code == STRATA_ENOENT) &&
		    w->txn_id != 0) {
			/* A shadow is sealed when its transaction commits
			 * or aborts, and deleted once merged or aborted: no
			 * successors to move to. */
			sw->sealed = true;
			sw->dead = true;
			sw->fail_since = 0;
		} else if (code == STRATA_ESEALED ||
		           (code == STRATA_ENOENT && w->txn_id == 0)) {
			/* No such segment: sealed by a scale and deleted by
			 * a truncation since (a writer idle meanwhile). */
			sw->sealed = true;
			sw->fail_since = 0;
			writer_refresh(w);
		} else if (code == STRATA_ETOOBIG || code == STRATA_EPROTO ||
		           code == STRATA_EINVAL) {
			/* These events can never be written, and the ones
			 * after them must not be (a key's order). */
			struct wevent *ev = sw->q_head;
			bool earlier = false; /* an earlier failure's message */
			while (ev != NULL && ev != sw->unsent &&
			       ev->num < b->first) {
				earlier = earlier || ev->fail_code != 0;
				ev = ev->next;
			}
			earlier = earlier || (ev != NULL && ev->fail_code != 0);
			fail_from(w, ev, code, msg);
			if (!earlier) {
				client_err(sw->last_msg, "%s", msg);
				sw->msg_kept = true;
			}
		} else {
			/* Failing since it was sent, not since the store's
			 * silence ran out: retry_timeout_ms bounds the whole
			 * wait (a stopped store used to add a request
			 * timeout to it). */
			if (sw->fail_since == 0 ||
			    b->sent_ms < sw->fail_since) {
				sw->fail_since = b->sent_ms;
			}
			sw_note_failure(sw, code, msg);
		}
	}
	creq_reset(r);
	strata_free(b);
	sw_after(sw);
	writer_maybe_destroy(w);
}

/* --------------------------------------------------------- the table -- */

static bool overlaps(double al, double ah, double bl, double bh)
{
	return al < bh && bl < ah;
}

static struct segw *find_in_table(struct strata_writer *w, uint64_t id)
{
	for (size_t i = 0; i < w->n_table; i++) {
		if (w->table[i]->id == id) {
			return w->table[i];
		}
	}
	return NULL;
}

/*
 * Install segs (sorted by low) as the current table: known segments stay,
 * the others retire; new ones are created blocked by every unfinished
 * retiring segment they overlap. Returns 0 or STRATA_ENOMEM (table
 * unchanged).
 */
static int writer_install(struct strata_writer *w,
                          const Strata__V1__SegmentsReply *segs, bool *same_set)
{
	size_t n = segs->n_segments;
	struct segw **table = strata_calloc(n > 0 ? n : 1, sizeof(*table));
	double *lows = strata_calloc(n > 0 ? n : 1, sizeof(*lows));
	struct segw **created = strata_calloc(n > 0 ? n : 1, sizeof(*created));
	size_t n_created = 0;
	if (table == NULL || lows == NULL || created == NULL) {
		goto nomem;
	}
	*same_set = n == w->n_table;
	for (size_t i = 0; i < n; i++) {
		const Strata__V1__Segment *s = segs->segments[i]->segment;
		uint64_t id = s != NULL ? s->id : 0;
		struct segw *sw = find_in_table(w, id);
		if (sw == NULL) {
			*same_set = false;
			sw = sw_new(w, id, s != NULL ? s->low : 0,
			            s != NULL ? s->high : 1);
			if (sw == NULL) {
				goto nomem;
			}
			sw->prefetch = true;
			created[n_created++] = sw;
		}
		table[i] = sw;
		lows[i] = sw->low;
	}
	if (n > 0) {
		lows[0] = 0; /* the table covers [0,1) */
	}
	/* Old segments not current any more retire. */
	for (size_t i = 0; i < w->n_table; i++) {
		struct segw *sw = w->table[i];
		bool kept = false;
		for (size_t j = 0; j < n && !kept; j++) {
			kept = table[j] == sw;
		}
		if (!kept) {
			sw->retiring = true;
		}
	}
	/* Blocking edges: predecessor -> new segment. */
	for (size_t k = 0; k < n_created; k++) {
		struct segw *d = created[k];
		for (struct segw *p = w->all; p != NULL; p = p->next_all) {
			if (p == d || !p->retiring || p->finished ||
			    !overlaps(p->low, p->high, d->low, d->high)) {
				continue;
			}
			struct segw **nd = strata_realloc(
			        p->deps, (p->n_deps + 1) * sizeof(*nd));
			if (nd == NULL) {
				goto nomem_late;
			}
			p->deps = nd;
			p->deps[p->n_deps++] = d;
			d->blocked_by++;
		}
	}
	strata_free(w->table);
	strata_free(w->lows);
	w->table = table;
	w->lows = lows;
	w->n_table = n;
	for (size_t k = 0; k < n_created; k++) {
		sw_after(created[k]); /* starts their SETUP_APPEND */
	}
	strata_free(created);
	return 0;
nomem_late:
	/* Out of memory half-way: keep going with what was linked (the
	 * unlinked edge only loses ordering for that pair). */
	LOG_ERROR("client", "writer %s/%s: out of memory linking successors",
	          w->scope, w->stream);
	strata_free(w->table);
	strata_free(w->lows);
	w->table = table;
	w->lows = lows;
	w->n_table = n;
	for (size_t k = 0; k < n_created; k++) {
		sw_after(created[k]);
	}
	strata_free(created);
	return 0;
nomem:
	for (size_t k = 0; k < n_created; k++) {
		sw_free(created[k]);
	}
	strata_free(table);
	strata_free(lows);
	strata_free(created);
	return STRATA_ENOMEM;
}

static void writer_refresh_timer(void *arg)
{
	struct strata_writer *w = arg;
	writer_refresh(w);
}

static void writer_refresh_done(struct creq *r)
{
	struct strata_writer *w = r->owner;
	w->refresh_inflight = false;
	Strata__V1__SegmentsReply *rep = NULL;
	int code = r->code;
	char msg[STRATA_ERRMSG_SIZE];
	client_err(msg, "%s", r->errmsg);
	if (code == 0) {
		rep = (Strata__V1__SegmentsReply *)rpc_pb_unpack(
		        &strata__v1__segments_reply__descriptor, r->reply.data,
		        r->reply.len);
		if (rep == NULL) {
			code = STRATA_EPROTO;
			client_err(msg,
			           "current segments reply does not parse");
		}
	}
	creq_reset(r);
	bool same = false;
	bool stream_sealed = false;
	if (code == 0) {
		stream_sealed = rep->stream_sealed;
		code = writer_install(w, rep, &same);
		if (code != 0) {
			client_err(msg, "out of memory");
		}
		rpc_pb_free(&rep->base);
	}
	/* Scaling publishes successors before sealing, so a sealed segment
	 * still current means the stream is sealed, once the answer says
	 * so too; until then it came from a replica that has not applied
	 * the scale yet (a follower serving reads): ask again. */
	bool lagging = false;
	for (struct segw *sw = w->all; code == 0 && sw != NULL;
	     sw = sw->next_all) {
		lagging = lagging || (sw->sealed && !sw->retiring &&
		                      !sw->dead && !stream_sealed);
	}
	(void)same;
	if (code == 0 && lagging) {
		code = STRATA_EAGAIN;
		client_err(msg,
		           "a segment the store sealed is still current in "
		           "the controller's answer, and the stream is not "
		           "sealed there");
	}
	if (code == 0) {
		w->refresh_fail_since = 0;
		w->refresh_fails = 0;
		for (struct segw *sw = w->all; sw != NULL; sw = sw->next_all) {
			if (sw->sealed && !sw->retiring) {
				sw->dead = true;
			}
		}
	} else if (!w->loop_closing) {
		uint64_t now = loop_now_ms();
		if (w->refresh_fail_since == 0) {
			w->refresh_fail_since = now;
		}
		bool give_up = code == STRATA_ENOENT ||
		               now - w->refresh_fail_since >
		                       (uint64_t)w->cfg.retry_timeout_ms;
		if (give_up) {
			LOG_WARN("client",
			         "writer %s/%s: cannot learn the successors of "
			         "sealed segments: %s",
			         w->scope, w->stream, msg);
			for (struct segw *sw = w->all; sw != NULL;
			     sw = sw->next_all) {
				if (sw->sealed) {
					sw->dead = true;
				}
			}
			w->refresh_fail_since = 0;
		} else {
			unsigned d = 50u
			             << (w->refresh_fails < 5 ? w->refresh_fails
			                                      : 5);
			w->refresh_fails++;
			loop_timer_arm(w->c->loop, &w->refresh_timer, d);
		}
	}
	/* Every segment may move on now (retire, reroute, fail, send). */
	struct segw *sw = w->all;
	while (sw != NULL) {
		struct segw *next = sw->next_all;
		sw_after(sw);
		sw = next;
	}
	if (w->refresh_again && !w->refresh_timer.armed) {
		w->refresh_again = false;
		writer_refresh(w);
	}
	writer_maybe_destroy(w);
}

static void writer_refresh(struct strata_writer *w)
{
	if (w->refresh_inflight || w->loop_closing) {
		w->refresh_again = !w->loop_closing;
		return;
	}
	char msg[STRATA_ERRMSG_SIZE];
	Strata__V1__GetSegmentsRequest q =
	        STRATA__V1__GET_SEGMENTS_REQUEST__INIT;
	q.scope = w->scope;
	q.stream = w->stream;
	w->refresh_inflight = true;
	int rc = creq_start(
	        w->c, &w->refresh_rq, NULL,
	        STRATA__V1__CONTROLLER_METHOD__CTL_GET_CURRENT_SEGMENTS,
	        RPC_IDEMPOTENT, &q.base, writer_refresh_done, w, msg);
	if (rc != 0) {
		w->refresh_inflight = false;
		if (!w->loop_closing && rc != STRATA_ECLOSED) {
			loop_timer_arm(w->c->loop, &w->refresh_timer, 200);
		}
	}
}

/* ----------------------------------------------------------- routing -- */

static double next_random(struct strata_writer *w)
{
	w->rng = routing_fmix64(w->rng + 0x9e3779b97f4a7c15ull);
	return (double)(w->rng >> 11) * 0x1.0p-53;
}

/* Route the events admitted since the last run (I/O thread). */
static void writer_pump_task(void *arg)
{
	struct strata_writer *w = arg;
	pthread_mutex_lock(&w->mu);
	struct wevent *ev = w->in_head;
	w->in_head = w->in_tail = NULL;
	pthread_mutex_unlock(&w->mu);
	uint64_t now = loop_now_ms();
	while (ev != NULL) {
		struct wevent *next = ev->next;
		if (ev->pos < 0) {
			ev->pos = next_random(w);
		}
		ev->t_ms = now;
		int broken = atomic_load(&w->broken);
		if (broken != 0) {
			char bmsg[STRATA_ERRMSG_SIZE];
			pthread_mutex_lock(&w->mu);
			memcpy(bmsg, w->broken_msg, sizeof(bmsg));
			pthread_mutex_unlock(&w->mu);
			ev_resolve(w, ev, broken, bmsg);
		} else if (w->n_table == 0) {
			char msg[STRATA_ERRMSG_SIZE];
			client_err(msg, "stream %s/%s has no open segment",
			           w->scope, w->stream);
			ev_resolve(w, ev, STRATA_ESEALED, msg);
		} else {
			size_t i = routing_find(w->lows, w->n_table, ev->pos);
			sw_enqueue(w->table[i], ev);
		}
		ev = next;
	}
	for (struct segw *sw = w->all; sw != NULL;) {
		struct segw *nx = sw->next_all;
		sw_after(sw);
		sw = nx;
	}
}

/* ------------------------------------------------------------- public -- */

static int check_config(const struct strata_writer_config *cfg, char *errmsg)
{
	if (cfg->max_inflight_bytes == 0 || cfg->max_inflight_events == 0 ||
	    cfg->max_batch_bytes == 0 || cfg->max_inflight_batches == 0 ||
	    cfg->max_event_bytes == 0 || cfg->retry_timeout_ms <= 0) {
		client_err(errmsg, "writer config: max_inflight_bytes, "
		                   "max_inflight_events, max_batch_bytes, "
		                   "max_inflight_batches, max_event_bytes and "
		                   "retry_timeout_ms must all be > 0");
		return STRATA_EINVAL;
	}
	if (cfg->max_event_bytes > STRATA_MAX_EVENT_BYTES ||
	    cfg->max_inflight_events > (1u << 24)) {
		client_err(errmsg,
		           "writer config: max_event_bytes must be at most "
		           "64 MiB (what readers assemble and decode) and "
		           "max_inflight_events <= 16777216");
		return STRATA_EINVAL;
	}
	return 0;
}

/* The writer's codec, or NULL for none; 0 or the lookup/level error
 * (errmsg names the codec and the fix). */
static int writer_codec(const struct strata_writer_config *cfg,
                        const struct strata_codec_ops **ops, int *level,
                        char *errmsg)
{
	*ops = NULL;
	*level = 0;
	if (cfg->codec == NULL || cfg->codec[0] == '\0') {
		return 0;
	}
	char why[STRATA_ERRMSG_SIZE];
	int rc = codec_by_name(cfg->codec, ops, why);
	if (rc == 0) {
		rc = codec_level(*ops, cfg->codec_level, level, why);
	}
	if (rc != 0) {
		*ops = NULL;
		client_err(errmsg, "writer config: %s", why);
		return rc == STRATA_ENOENT ? STRATA_EINVAL : rc;
	}
	return 0;
}

/* A writer for scope/stream on the segments in segs (borrowed); txn_id
 * non-zero: on that transaction's shadows of them. */
static int writer_create(struct strata_client *c, const char *scope,
                         const char *stream,
                         const struct strata_writer_config *cfg,
                         uint64_t txn_id, const Strata__V1__SegmentsReply *segs,
                         struct strata_writer **out, char *errmsg)
{
	struct strata_writer *w = strata_calloc(1, sizeof(*w));
	if (w == NULL ||
	    (w->ring = strata_calloc(cfg->max_inflight_events, 1)) == NULL) {
		strata_free(w);
		client_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	w->c = c;
	snprintf(w->scope, sizeof(w->scope), "%s", scope);
	snprintf(w->stream, sizeof(w->stream), "%s", stream);
	w->cfg = *cfg;
	w->cfg.codec = NULL; /* borrowed: resolved into w->codec */
	int rc = writer_codec(cfg, &w->codec, &w->codec_level, errmsg);
	if (rc != 0) {
		strata_free(w->ring);
		strata_free(w);
		return rc;
	}
	w->txn_id = txn_id;
	client_random(w->id, sizeof(w->id));
	client_random(&w->rng, sizeof(w->rng));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	loop_task_init(&w->pump_task, writer_pump_task, w);
	loop_task_init(&w->kick_task, writer_kick_task, w);
	loop_timer_init(&w->refresh_timer, writer_refresh_timer, w);
	w->force_seq = 0;
	/* Install the table on the I/O thread's terms: nothing runs there
	 * for this writer yet, so doing it here is race-free; setups start
	 * through the loop (seg_op_start posts). */
	bool same;
	rc = writer_install(w, segs, &same);
	if (rc != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		strata_free(w->ring);
		strata_free(w);
		client_err(errmsg, "out of memory");
		return rc;
	}
	*out = w;
	return 0;
}

static int writer_check_args(struct strata_client *c, const char *scope,
                             const char *stream,
                             const struct strata_writer_config *cfg,
                             const char *fn, char *errmsg)
{
	int rc = client_check_name(scope, "scope", errmsg);
	if (rc != 0 ||
	    (rc = client_check_name(stream, "stream", errmsg)) != 0 ||
	    (rc = client_check_user_stream(stream, errmsg)) != 0 ||
	    (rc = client_writer_check_config(cfg, errmsg)) != 0 ||
	    (rc = client_check_blocking(c, fn, errmsg)) != 0) {
		return rc;
	}
	return 0;
}

int client_writer_check_config(const struct strata_writer_config *cfg,
                               char *errmsg)
{
	int rc = check_config(cfg, errmsg);
	if (rc != 0) {
		return rc;
	}
	const struct strata_codec_ops *ops;
	int level;
	return writer_codec(cfg, &ops, &level, errmsg);
}

int strata_writer_new(struct strata_client *c, const char *scope,
                      const char *stream,
                      const struct strata_writer_config *cfg,
                      struct strata_writer **out, char *errmsg)
{
	struct strata_writer_config def;
	if (cfg == NULL) {
		strata_writer_config_default(&def);
		cfg = &def;
	}
	int rc = writer_check_args(c, scope, stream, cfg, "strata_writer_new",
	                           errmsg);
	if (rc != 0) {
		return rc;
	}
	Strata__V1__GetSegmentsRequest q =
	        STRATA__V1__GET_SEGMENTS_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	Strata__V1__SegmentsReply *segs = NULL;
	char msg[STRATA_ERRMSG_SIZE];
	rc = client_ctl_query(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_GET_CURRENT_SEGMENTS,
	        &q.base, &strata__v1__segments_reply__descriptor,
	        (ProtobufCMessage **)&segs, msg);
	if (rc != 0) {
		client_err(errmsg, "writer for %s/%s: %s", scope, stream, msg);
		return rc;
	}
	rc = writer_create(c, scope, stream, cfg, 0, segs, out, errmsg);
	rpc_pb_free(&segs->base);
	return rc;
}

int client_writer_new_txn(struct strata_client *c, const char *scope,
                          const char *stream,
                          const struct strata_writer_config *cfg,
                          uint64_t txn_id,
                          const Strata__V1__SegmentsReply *segs,
                          struct strata_writer **out, char *errmsg)
{
	struct strata_writer_config def;
	if (cfg == NULL) {
		strata_writer_config_default(&def);
		cfg = &def;
	}
	int rc = writer_check_args(c, scope, stream, cfg, "strata_txn_begin",
	                           errmsg);
	if (rc != 0) {
		return rc;
	}
	return writer_create(c, scope, stream, cfg, txn_id, segs, out, errmsg);
}

/* Queue one event. hand_over: post the pump when the queue was empty (a
 * single write); else the caller posts it after its last event, and a
 * wait for room posts it first (the events held would never be sent). */
static int writer_enqueue(struct strata_writer *w, const void *key,
                          size_t keylen, const void *data, size_t len,
                          strata_write_cb cb, void *arg, bool hand_over,
                          char *errmsg)
{
	if (len > w->cfg.max_event_bytes) {
		client_err(errmsg,
		           "writer %s/%s: event of %zu bytes exceeds "
		           "max_event_bytes (%zu); split it or raise the limit "
		           "(the stores' limits.max_event too)",
		           w->scope, w->stream, len, w->cfg.max_event_bytes);
		return STRATA_ETOOBIG;
	}
	int broken = atomic_load(&w->broken);
	if (broken != 0) {
		pthread_mutex_lock(&w->mu);
		client_err(errmsg, "%s", w->broken_msg);
		pthread_mutex_unlock(&w->mu);
		return broken;
	}
	if (len > 0 && data == NULL) {
		client_err(errmsg, "writer %s/%s: data is NULL", w->scope,
		           w->stream);
		return STRATA_EINVAL;
	}
	size_t fcap =
	        w->codec != NULL ? codec_frame_bound(w->codec, len) : len + 4;
	struct wevent *ev = strata_malloc(sizeof(*ev) + fcap);
	if (ev == NULL) {
		client_err(errmsg,
		           "out of memory queueing an event of %zu "
		           "bytes",
		           len);
		return STRATA_ENOMEM;
	}
	memset(ev, 0, sizeof(*ev));
	if (w->codec != NULL) {
		/* Encoded on the caller's thread, off the I/O thread. */
		char why[STRATA_ERRMSG_SIZE];
		int rc = codec_frame_encode(w->codec, w->codec_level, data, len,
		                            ev->data, &ev->flen, why);
		if (rc != 0) {
			strata_free(ev);
			client_err(errmsg, "writer %s/%s: codec %s: %s",
			           w->scope, w->stream, w->codec->name, why);
			return rc;
		}
		if (ev->flen + 64 < fcap) { /* give back what it saved */
			struct wevent *small =
			        strata_realloc(ev, sizeof(*ev) + ev->flen);
			ev = small != NULL ? small : ev;
		}
	} else {
		ev->flen = len + 4;
		frame_header(ev->data, (uint32_t)len);
		if (len > 0) {
			memcpy(ev->data + 4, data, len);
		}
	}
	ev->pos = key != NULL && keylen > 0
	                  ? strata_routing_key_position(key, keylen)
	                  : -1.0;
	ev->cb = cb;
	ev->arg = arg;
	bool on_loop = loop_on_thread(w->c->loop);
	size_t cap = w->cfg.max_inflight_events;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		if (w->closing) {
			pthread_mutex_unlock(&w->mu);
			strata_free(ev);
			client_err(errmsg, "writer %s/%s is closing", w->scope,
			           w->stream);
			return STRATA_ECLOSED;
		}
		bool bytes_full = w->inflight_bytes > 0 &&
		                  w->inflight_bytes + ev->flen >
		                          w->cfg.max_inflight_bytes;
		bool events_full = w->next_seq - w->wm >= cap;
		if (!bytes_full && !events_full) {
			break;
		}
		if (!w->cfg.block_when_full || on_loop) {
			pthread_mutex_unlock(&w->mu);
			strata_free(ev);
			client_err(errmsg,
			           "writer %s/%s: the in-flight window is full "
			           "(%zu bytes, %" PRIu64 " events); retry "
			           "after some completions",
			           w->scope, w->stream, w->inflight_bytes,
			           w->next_seq - w->wm);
			return STRATA_EAGAIN;
		}
		if (!hand_over && w->in_head != NULL) {
			loop_post(w->c->loop, &w->pump_task);
		}
		pthread_cond_wait(&w->cv, &w->mu);
	}
	ev->seq = w->next_seq++;
	w->inflight_bytes += ev->flen;
	w->stats.events_written++;
	w->stats.payload_bytes += len;
	w->stats.stored_bytes += ev->flen;
	bool was_empty = w->in_head == NULL;
	if (w->in_tail != NULL) {
		w->in_tail->next = ev;
	} else {
		w->in_head = ev;
	}
	w->in_tail = ev;
	if (was_empty && hand_over) {
		loop_post(w->c->loop, &w->pump_task);
	}
	pthread_mutex_unlock(&w->mu);
	return 0;
}

int strata_writer_write(struct strata_writer *w, const void *key, size_t keylen,
                        const void *data, size_t len, strata_write_cb cb,
                        void *arg, char *errmsg)
{
	return writer_enqueue(w, key, keylen, data, len, cb, arg, true, errmsg);
}

int strata_writer_write_batch(struct strata_writer *w,
                              const struct strata_write *evs, size_t n,
                              size_t *queued, char *errmsg)
{
	size_t i = 0;
	int rc = 0;
	if (n > 0 && evs == NULL) {
		client_err(errmsg, "writer %s/%s: evs is NULL", w->scope,
		           w->stream);
		rc = STRATA_EINVAL;
	}
	while (rc == 0 && i < n) {
		const struct strata_write *e = &evs[i];
		rc = writer_enqueue(w, e->key, e->keylen, e->data, e->len,
		                    e->cb, e->arg, false, errmsg);
		i += rc == 0;
	}
	if (i > 0) {
		loop_post(w->c->loop, &w->pump_task);
	}
	if (queued != NULL) {
		*queued = i;
	}
	return rc;
}

/* Completion of a synchronous write. */
struct sync_write {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int code;
	char msg[STRATA_ERRMSG_SIZE];
};

static void sync_write_cb(void *arg, int code, const char *errmsg)
{
	struct sync_write *s = arg;
	pthread_mutex_lock(&s->mu);
	s->code = code;
	client_err(s->msg, "%s", errmsg);
	s->done = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

int strata_writer_write_sync(struct strata_writer *w, const void *key,
                             size_t keylen, const void *data, size_t len,
                             char *errmsg)
{
	int rc =
	        client_check_blocking(w->c, "strata_writer_write_sync", errmsg);
	if (rc != 0) {
		return rc;
	}
	struct sync_write s = {.done = false};
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	rc = strata_writer_write(w, key, keylen, data, len, sync_write_cb, &s,
	                         errmsg);
	if (rc == 0) {
		/* Nothing lingers for a synchronous write. */
		pthread_mutex_lock(&w->mu);
		if (w->force_seq < w->next_seq) {
			w->force_seq = w->next_seq;
		}
		pthread_mutex_unlock(&w->mu);
		loop_post(w->c->loop, &w->pump_task);
		pthread_mutex_lock(&s.mu);
		while (!s.done) {
			pthread_cond_wait(&s.cv, &s.mu);
		}
		pthread_mutex_unlock(&s.mu);
		rc = s.code;
		if (rc != 0) {
			client_err(errmsg, "%s", s.msg);
		}
	}
	pthread_cond_destroy(&s.cv);
	pthread_mutex_destroy(&s.mu);
	return rc;
}

int strata_writer_flush(struct strata_writer *w, char *errmsg)
{
	int rc = client_check_blocking(w->c, "strata_writer_flush", errmsg);
	if (rc != 0) {
		return rc;
	}
	pthread_mutex_lock(&w->mu);
	uint64_t target = w->next_seq;
	if (w->force_seq < target) {
		w->force_seq = target;
	}
	pthread_mutex_unlock(&w->mu);
	loop_post(w->c->loop, &w->pump_task);
	pthread_mutex_lock(&w->mu);
	while (w->wm < target) {
		pthread_cond_wait(&w->cv, &w->mu);
	}
	if (w->fail_count != w->fail_seen) {
		w->fail_seen = w->fail_count;
		rc = w->last_err;
		client_err(errmsg, "%s", w->last_msg);
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* ------------------------------------------------------------ time -- */

/* Where a writer has written to, gathered on the I/O thread. */
struct positions {
	struct strata_writer *w;
	struct loop_task task;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	size_t n;
	Strata__V1__SegmentOffset *pos; /* n of them, or NULL (out of memory) */
};

static void positions_task(void *arg)
{
	struct positions *p = arg;
	size_t cap = 0;
	for (struct segw *sw = p->w->all; sw != NULL; sw = sw->next_all) {
		cap += sw->acked_len > 0;
	}
	p->pos = strata_calloc(cap + 1, sizeof(*p->pos));
	for (struct segw *sw = p->w->all; p->pos != NULL && sw != NULL;
	     sw = sw->next_all) {
		if (sw->acked_len > 0) {
			Strata__V1__SegmentOffset init =
			        STRATA__V1__SEGMENT_OFFSET__INIT;
			p->pos[p->n] = init;
			p->pos[p->n].segment_id = sw->id;
			p->pos[p->n].offset = (int64_t)sw->acked_len;
			p->n++;
		}
	}
	pthread_mutex_lock(&p->mu);
	p->done = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

int strata_writer_note_time(struct strata_writer *w, int64_t time, char *errmsg)
{
	if (w->txn_id != 0) {
		client_err(errmsg,
		           "note time: a transaction's writer does not note "
		           "time; note it with the stream's event writer");
		return STRATA_EINVAL;
	}
	/* Everything written before the note is acknowledged first, so the
	 * positions cover it. */
	int rc = strata_writer_flush(w, errmsg);
	if (rc != 0) {
		return rc;
	}
	struct positions p = {.w = w};
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	loop_task_init(&p.task, positions_task, &p);
	loop_post(w->c->loop, &p.task);
	pthread_mutex_lock(&p.mu);
	while (!p.done) {
		pthread_cond_wait(&p.cv, &p.mu);
	}
	pthread_mutex_unlock(&p.mu);
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mu);
	if (p.pos == NULL) {
		client_err(errmsg, "note time on %s/%s: out of memory",
		           w->scope, w->stream);
		return STRATA_ENOMEM;
	}
	if (p.n == 0) {
		strata_free(p.pos);
		client_err(errmsg,
		           "note time on %s/%s: this writer has no "
		           "acknowledged event yet; note time after writing",
		           w->scope, w->stream);
		return STRATA_EINVAL;
	}
	Strata__V1__SegmentOffset **pp = strata_calloc(p.n, sizeof(*pp));
	if (pp == NULL) {
		strata_free(p.pos);
		client_err(errmsg, "note time on %s/%s: out of memory",
		           w->scope, w->stream);
		return STRATA_ENOMEM;
	}
	for (size_t i = 0; i < p.n; i++) {
		pp[i] = &p.pos[i];
	}
	Strata__V1__NoteTimeRequest q = STRATA__V1__NOTE_TIME_REQUEST__INIT;
	q.scope = w->scope;
	q.stream = w->stream;
	q.writer_id.data = w->id;
	q.writer_id.len = sizeof(w->id);
	q.time = time;
	q.positions = pp;
	q.n_positions = p.n;
	char what[STRATA_NAME_MAX * 2 + 32];
	snprintf(what, sizeof(what), "note time on %s/%s", w->scope, w->stream);
	rc = client_ctl_mutate(w->c,
	                       STRATA__V1__CONTROLLER_METHOD__CTL_NOTE_TIME,
	                       &q.base, 0, what, errmsg);
	strata_free(pp);
	strata_free(p.pos);
	if (rc == 0) {
		pthread_mutex_lock(&w->mu);
		w->noted = true;
		pthread_mutex_unlock(&w->mu);
	}
	return rc;
}

/* Close: this writer's mark no longer holds watermarks back. Best
 * effort: a mark left behind times out (watermark.writer_timeout). */
static void writer_remove_mark(struct strata_writer *w)
{
	char msg[STRATA_ERRMSG_SIZE];
	if (strata_stream_remove_time_mark(w->c, w->scope, w->stream, w->id,
	                                   msg) != 0) {
		LOG_WARN("client.writer",
		         "%s; its time mark stays until it times out", msg);
	}
}

/* Count of things in flight on the I/O thread for w. */
static bool writer_busy(const struct strata_writer *w)
{
	if (w->refresh_inflight || w->kick_pending || w->in_close_task) {
		return true;
	}
	for (const struct segw *sw = w->all; sw != NULL; sw = sw->next_all) {
		if (sw->inflight > 0 || sw->setup_inflight) {
			return true;
		}
	}
	return false;
}

/* On the I/O thread, once closing: when nothing is in flight, let the
 * closing thread free w. */
static void writer_maybe_destroy(struct strata_writer *w)
{
	if (!w->loop_closing || writer_busy(w)) {
		return;
	}
	loop_timer_cancel(w->c->loop, &w->refresh_timer);
	for (struct segw *sw = w->all; sw != NULL; sw = sw->next_all) {
		loop_timer_cancel(w->c->loop, &sw->timer);
	}
	pthread_mutex_lock(&w->mu);
	w->destroyed = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void writer_close_task(void *arg)
{
	struct strata_writer *w = arg;
	w->loop_closing = true;
	w->in_close_task = true; /* no destroy while walking the list */
	for (struct segw *sw = w->all; sw != NULL; sw = sw->next_all) {
		loop_timer_cancel(w->c->loop, &sw->timer);
		if (sw->setup_inflight) {
			seg_op_cancel(&sw->op);
		}
	}
	loop_timer_cancel(w->c->loop, &w->refresh_timer);
	w->in_close_task = false;
	writer_maybe_destroy(w);
}

int client_writer_failed(struct strata_writer *w, char *errmsg)
{
	int rc = 0;
	pthread_mutex_lock(&w->mu);
	int broken = atomic_load(&w->broken);
	if (broken != 0) {
		rc = broken;
		client_err(errmsg, "%s", w->broken_msg);
	} else if (w->fail_count > 0) {
		rc = w->last_err;
		client_err(errmsg, "%s", w->last_msg);
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int strata_writer_close(struct strata_writer *w, char *errmsg)
{
	if (w == NULL) {
		return 0;
	}
	int rc = client_check_blocking(w->c, "strata_writer_close", errmsg);
	if (rc != 0) {
		return rc;
	}
	/* No new writes (blocked writers leave too), then drain. */
	pthread_mutex_lock(&w->mu);
	w->closing = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	rc = strata_writer_flush(w, errmsg);
	pthread_mutex_lock(&w->mu);
	bool noted = w->noted;
	pthread_mutex_unlock(&w->mu);
	if (noted) {
		writer_remove_mark(w);
	}
	/* Stop the I/O side and wait until nothing of w is in flight. */
	loop_task_init(&w->close_task, writer_close_task, w);
	loop_post(w->c->loop, &w->close_task);
	pthread_mutex_lock(&w->mu);
	while (!w->destroyed) {
		pthread_cond_wait(&w->cv, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	/* The flush resolved every event: queues are empty. */
	while (w->all != NULL) {
		struct segw *sw = w->all;
		w->all = sw->next_all;
		while (sw->q_head != NULL) {
			struct wevent *ev = sw->q_head;
			sw->q_head = ev->next;
			strata_free(ev);
		}
		strata_free(sw->deps);
		strata_free(sw->name);
		strata_free(sw);
	}
	strata_free(w->table);
	strata_free(w->lows);
	strata_free(w->ring);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	strata_free(w);
	return rc;
}
