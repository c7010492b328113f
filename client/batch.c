/* libstrata batch client: segment ranges between two stream cuts, found
 * through the controller's successor graph, and a parallel reader. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "client/client_int.h"
#include "common/alloc.h"
#include "strata/batch.h"

void strata_segment_ranges_free(struct strata_segment_ranges *r)
{
	if (r == NULL) {
		return;
	}
	for (size_t i = 0; i < r->n; i++) {
		strata_free(r->ranges[i].segment);
	}
	strata_free(r->ranges);
	strata_free(r);
}

/* A segment waiting in the walk. */
struct walk_item {
	uint64_t id;
	double low;
	double high;
	uint64_t start;
};

struct walk {
	struct walk_item *items; /* queue; also the visited set */
	size_t n;
	size_t cap;
	size_t head;
};

static bool walk_seen(const struct walk *w, uint64_t id)
{
	for (size_t i = 0; i < w->n; i++) {
		if (w->items[i].id == id) {
			return true;
		}
	}
	return false;
}

static int walk_push(struct walk *w, uint64_t id, double low, double high,
                     uint64_t start)
{
	if (walk_seen(w, id)) {
		return 0;
	}
	if (w->n == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 16;
		struct walk_item *ni =
		        strata_realloc(w->items, ncap * sizeof(*ni));
		if (ni == NULL) {
			return STRATA_ENOMEM;
		}
		w->items = ni;
		w->cap = ncap;
	}
	w->items[w->n++] = (struct walk_item){id, low, high, start};
	return 0;
}

static int ranges_push(struct strata_segment_ranges *r, size_t *cap,
                       const struct walk_item *it, const char *scope,
                       const char *stream, uint64_t end)
{
	char name[600];
	if (r->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct strata_segment_range *nr =
		        strata_realloc(r->ranges, ncap * sizeof(*nr));
		if (nr == NULL) {
			return STRATA_ENOMEM;
		}
		r->ranges = nr;
		*cap = ncap;
	}
	strata_segment_name(name, sizeof(name), scope, stream, it->id);
	char *s = strata_strdup(name);
	if (s == NULL) {
		return STRATA_ENOMEM;
	}
	r->ranges[r->n++] = (struct strata_segment_range){
	        .segment_id = it->id,
	        .low = it->low,
	        .high = it->high,
	        .segment = s,
	        .start_offset = it->start,
	        .end_offset = end,
	};
	return 0;
}

static bool overlaps(double al, double ah, double bl, double bh)
{
	return al < bh && bl < ah;
}

static int check_cut_stream(const struct strata_stream_cut *cut,
                            const char *scope, const char *stream,
                            const char *which, char *errmsg)
{
	if (cut != NULL && cut->n > 0 &&
	    (strcmp(cut->scope, scope) != 0 ||
	     strcmp(cut->stream, stream) != 0)) {
		client_err(errmsg,
		           "batch %s/%s: the %s cut is of stream %s/%s; give a "
		           "cut of the same stream",
		           scope, stream, which, cut->scope, cut->stream);
		return STRATA_EINVAL;
	}
	return 0;
}

/*
 * Put r's ranges in an order that reads every segment after its
 * predecessors: by the epoch that created the segment, stably. The walk
 * visits a successor after its first predecessor, which for a merge of
 * segments from different epochs is before the other one (3.1 and 5.2
 * merged into 6.3 gave 3.1, 6.3, 5.2). Two segments whose key ranges
 * overlap never live in one epoch, so the one created in the earlier
 * epoch was sealed before the other began: epoch order keeps each
 * key's events in the order they were written.
 */
static void order_by_epoch(struct strata_segment_ranges *r)
{
	for (size_t i = 1; i < r->n; i++) {
		struct strata_segment_range x = r->ranges[i];
		size_t j = i;
		while (j > 0 && (r->ranges[j - 1].segment_id >> 32) >
		                        (x.segment_id >> 32)) {
			r->ranges[j] = r->ranges[j - 1];
			j--;
		}
		r->ranges[j] = x;
	}
}

int strata_batch_list_ranges(struct strata_client *c, const char *scope,
                             const char *stream,
                             const struct strata_stream_cut *from,
                             const struct strata_stream_cut *to,
                             struct strata_segment_ranges **out, char *errmsg)
{
	int rc = client_check_name(scope, "scope", errmsg);
	if (rc != 0 ||
	    (rc = client_check_name(stream, "stream", errmsg)) != 0 ||
	    (rc = check_cut_stream(from, scope, stream, "start", errmsg)) !=
	            0 ||
	    (rc = check_cut_stream(to, scope, stream, "end", errmsg)) != 0) {
		return rc;
	}
	struct strata_stream_cut head = STRATA_STREAM_CUT_INIT;
	snprintf(head.scope, sizeof(head.scope), "%s", scope);
	snprintf(head.stream, sizeof(head.stream), "%s", stream);
	struct strata_segment_list *fl = NULL;
	struct strata_segment_list *tl = NULL;
	struct strata_segment_ranges *res = NULL;
	struct walk w = {0};
	size_t cap = 0;
	rc = strata_stream_segments_at_cut(
	        c, from != NULL && from->n > 0 ? from : &head, &fl, errmsg);
	if (rc != 0) {
		goto out;
	}
	if (to != NULL && to->n > 0) {
		/* Past a segment's end, reading would wait for data that
		 * may never come. */
		rc = client_cut_within(c, to, "end cut", errmsg);
		if (rc == 0) {
			rc = strata_stream_segments_at_cut(c, to, &tl, errmsg);
		}
	} else {
		rc = strata_stream_current_segments(c, scope, stream, &tl,
		                                    errmsg);
		for (size_t i = 0; rc == 0 && tl != NULL && i < tl->n; i++) {
			struct strata_segment_stat st;
			rc = strata_segment_get_stat(c, tl->segments[i].name,
			                             &st, errmsg);
			if (rc == 0) {
				tl->segments[i].offset = (int64_t)st.length;
			}
		}
	}
	if (rc != 0) {
		goto out;
	}
	res = strata_calloc(1, sizeof(*res));
	if (res == NULL) {
		goto nomem;
	}
	for (size_t i = 0; i < fl->n; i++) {
		const struct strata_segment_desc *d = &fl->segments[i];
		if (walk_push(&w, d->id, d->low, d->high,
		              (uint64_t)d->offset) != 0) {
			goto nomem;
		}
	}
	while (w.head < w.n) {
		struct walk_item it = w.items[w.head++];
		const struct strata_segment_desc *in_to = NULL;
		bool beyond = false;
		for (size_t i = 0; i < tl->n; i++) {
			const struct strata_segment_desc *e = &tl->segments[i];
			if (e->id == it.id) {
				in_to = e;
				break;
			}
			if (overlaps(it.low, it.high, e->low, e->high) &&
			    (e->id >> 32) < (it.id >> 32)) {
				beyond = true;
			}
		}
		bool from_seg = w.head <= fl->n;
		if (in_to != NULL) {
			uint64_t end = (uint64_t)in_to->offset;
			if (end < it.start) {
				rc = STRATA_EINVAL;
				client_err(errmsg,
				           "batch %s/%s: the end cut is before "
				           "the start cut in segment %" PRIu32
				           ".%" PRIu32 " (%" PRIu64
				           " < %" PRIu64 ")",
				           scope, stream, (uint32_t)it.id,
				           (uint32_t)(it.id >> 32), end,
				           it.start);
				goto out;
			}
			if (end > it.start && ranges_push(res, &cap, &it, scope,
			                                  stream, end) != 0) {
				goto nomem;
			}
			continue;
		}
		if (beyond) {
			if (from_seg) {
				rc = STRATA_EINVAL;
				client_err(errmsg,
				           "batch %s/%s: the end cut is before "
				           "the start cut (segment %" PRIu32
				           ".%" PRIu32
				           " of the start lies after "
				           "it)",
				           scope, stream, (uint32_t)it.id,
				           (uint32_t)(it.id >> 32));
				goto out;
			}
			continue;
		}
		/* Wholly before the end cut: read it to its end. */
		char name[600];
		struct strata_segment_stat st;
		strata_segment_name(name, sizeof(name), scope, stream, it.id);
		rc = strata_segment_get_stat(c, name, &st, errmsg);
		if (rc == STRATA_ENOENT && client_truncated_away(c, name)) {
			/* Truncated away since the start cut was read: none
			 * of it is left; its successors may be. */
			st.length = 0;
			rc = 0;
		}
		if (rc != 0) {
			goto out;
		}
		if (st.length > it.start &&
		    ranges_push(res, &cap, &it, scope, stream, st.length) !=
		            0) {
			goto nomem;
		}
		struct strata_segment_list *succ = NULL;
		rc = strata_stream_successors_of_sealed(c, scope, stream, it.id,
		                                        &succ, errmsg);
		if (rc != 0) {
			goto out;
		}
		for (size_t i = 0; i < succ->n; i++) {
			const struct strata_segment_desc *d =
			        &succ->segments[i];
			if (walk_push(&w, d->id, d->low, d->high, 0) != 0) {
				strata_segment_list_free(succ);
				goto nomem;
			}
		}
		strata_segment_list_free(succ);
	}
	order_by_epoch(res);
	*out = res;
	res = NULL;
	rc = 0;
	goto out;
nomem:
	rc = STRATA_ENOMEM;
	client_err(errmsg, "out of memory");
out:
	strata_free(w.items);
	strata_segment_list_free(fl);
	strata_segment_list_free(tl);
	strata_segment_ranges_free(res);
	return rc;
}

int strata_batch_range_iter(struct strata_client *c,
                            const struct strata_segment_range *r,
                            struct strata_event_iter **out, char *errmsg)
{
	return strata_event_iter_new(c, r->segment, r->start_offset,
	                             r->end_offset, 0, out, errmsg);
}

/* Shared state of strata_batch_read. */
struct batch_read {
	struct strata_client *c;
	const struct strata_segment_ranges *ranges;
	strata_batch_event_cb cb;
	strata_batch_truncated_cb on_truncated;
	void *arg;
	atomic_size_t next; /* next range to take */
	atomic_bool stop;
	pthread_mutex_t mu; /* guards rc, msg */
	int rc;
	char msg[STRATA_ERRMSG_SIZE];
};

static void batch_fail(struct batch_read *b, int rc, const char *msg)
{
	pthread_mutex_lock(&b->mu);
	if (b->rc == 0) {
		b->rc = rc;
		client_err(b->msg, "%s", msg);
	}
	pthread_mutex_unlock(&b->mu);
	atomic_store(&b->stop, true);
}

static void batch_one(struct batch_read *b,
                      const struct strata_segment_range *r)
{
	struct strata_event_iter *it = NULL;
	char msg[STRATA_ERRMSG_SIZE];
	int rc = strata_batch_range_iter(b->c, r, &it, msg);
	if (rc != 0) {
		batch_fail(b, rc, msg);
		return;
	}
	uint64_t deadline =
	        loop_now_ms() + (uint64_t)b->c->cfg.operation_timeout_ms;
	while (!atomic_load(&b->stop)) {
		struct strata_event ev;
		rc = strata_event_iter_next(it, 1000, &ev, msg);
		if (rc == STRATA_ENOENT &&
		    client_truncated_away(b->c, r->segment)) {
			/* The whole rest of the range went. */
			rc = STRATA_ETRUNCATED;
			ev.offset = strata_event_iter_position(it);
			ev.next_offset = r->end_offset;
		}
		if (rc == STRATA_ETRUNCATED && b->on_truncated == NULL) {
			/* Not going on: say where the data starts now. */
			client_err(
			        msg,
			        "segment %.200s: bytes %" PRIu64 "..%" PRIu64
			        " were truncated before they were read; read "
			        "from the head, or from a cut at or after "
			        "offset %" PRIu64 " there",
			        r->segment, ev.offset, ev.next_offset,
			        ev.next_offset);
		}
		if (rc == STRATA_ETRUNCATED && b->on_truncated != NULL) {
			if (ev.next_offset > r->end_offset) {
				ev.next_offset = r->end_offset; /* ours only */
			}
			if (ev.offset >= ev.next_offset) {
				break; /* all of it was read */
			}
			int stop = b->on_truncated(b->arg, r, ev.offset,
			                           ev.next_offset);
			if (stop == 0 && ev.next_offset >= r->end_offset) {
				break; /* nothing of the range is left */
			}
			if (stop == 0) {
				continue; /* the iterator is at the new start */
			}
			client_err(msg,
			           "the truncation callback stopped the read "
			           "(%d)",
			           stop);
			batch_fail(b, stop, msg);
			break;
		}
		if (rc != 0) {
			batch_fail(b, rc, msg);
			break;
		}
		if (ev.end) {
			break;
		}
		if (ev.data == NULL) {
			if (loop_now_ms() > deadline) {
				client_err(msg,
				           "segment %.200s: no data at %" PRIu64
				           " below the range end %" PRIu64,
				           r->segment, ev.next_offset,
				           r->end_offset);
				batch_fail(b, STRATA_ETIMEDOUT, msg);
				break;
			}
			continue;
		}
		int stop = b->cb(b->arg, r, ev.data, ev.len, ev.offset);
		if (stop != 0) {
			client_err(msg,
			           "the batch callback stopped the read (%d)",
			           stop);
			batch_fail(b, stop, msg);
			break;
		}
	}
	strata_event_iter_free(it);
}

static void *batch_thread(void *arg)
{
	struct batch_read *b = arg;
	while (!atomic_load(&b->stop)) {
		size_t i = atomic_fetch_add(&b->next, 1);
		if (i >= b->ranges->n) {
			break;
		}
		batch_one(b, &b->ranges->ranges[i]);
	}
	return NULL;
}

int strata_batch_read(struct strata_client *c,
                      const struct strata_segment_ranges *ranges,
                      unsigned parallelism, strata_batch_event_cb cb, void *arg,
                      char *errmsg)
{
	struct strata_batch_read_opts o = {.parallelism = parallelism};
	return strata_batch_read_with(c, ranges, &o, cb, arg, errmsg);
}

int strata_batch_read_with(struct strata_client *c,
                           const struct strata_segment_ranges *ranges,
                           const struct strata_batch_read_opts *o,
                           strata_batch_event_cb cb, void *arg, char *errmsg)
{
	int rc = client_check_blocking(c, "strata_batch_read", errmsg);
	if (rc != 0) {
		return rc;
	}
	if (ranges == NULL || cb == NULL || o == NULL) {
		client_err(errmsg, "strata_batch_read: ranges, options and cb "
		                   "are required");
		return STRATA_EINVAL;
	}
	unsigned parallelism = o->parallelism;
	if (ranges->n == 0) {
		return 0;
	}
	if (parallelism == 0) {
		parallelism = ranges->n < 4 ? (unsigned)ranges->n : 4;
	}
	if (parallelism > 64) {
		parallelism = 64;
	}
	struct batch_read b = {.c = c,
	                       .ranges = ranges,
	                       .cb = cb,
	                       .on_truncated = o->on_truncated,
	                       .arg = arg};
	atomic_init(&b.next, 0);
	atomic_init(&b.stop, false);
	pthread_mutex_init(&b.mu, NULL);
	pthread_t th[64];
	unsigned started = 0;
	for (unsigned i = 0; i < parallelism; i++) {
		if (pthread_create(&th[i], NULL, batch_thread, &b) != 0) {
			break;
		}
		started++;
	}
	if (started == 0) {
		batch_thread(&b); /* no thread: read here */
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
	}
	pthread_mutex_destroy(&b.mu);
	if (b.rc != 0) {
		client_err(errmsg, "%s", b.msg);
	}
	return b.rc;
}
