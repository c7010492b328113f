/* Reader-group state: fold, record codec and the readers' decisions. */
#include "client/rg_state.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "strata/error.h"

/* Unread-bytes imbalance below this never moves a segment. */
#define RG_BALANCE_SLACK (1024u * 1024u)

static void set_err(char *errmsg, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void set_err(char *errmsg, const char *fmt, ...)
{
	if (errmsg == NULL) {
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ basics -- */

void rg_state_init(struct rg_state *st)
{
	memset(st, 0, sizeof(*st));
	st->next_rid = 1;
	st->refresh_ms = 3000;
	st->max_outstanding = 3;
}

static void cp_free(struct rg_checkpoint *cp)
{
	strata_free(cp->name);
	strata_free(cp->waiting);
	strata_free(cp->pos);
	memset(cp, 0, sizeof(*cp));
}

void rg_state_close(struct rg_state *st)
{
	for (size_t i = 0; i < st->n_streams; i++) {
		strata_free(st->streams[i].scope);
		strata_free(st->streams[i].name);
		strata_free(st->streams[i].end);
	}
	strata_free(st->streams);
	strata_free(st->segs);
	for (size_t i = 0; i < st->n_futures; i++) {
		strata_free(st->futures[i].preds);
	}
	strata_free(st->futures);
	for (size_t i = 0; i < st->n_readers; i++) {
		strata_free(st->readers[i].name);
	}
	strata_free(st->readers);
	for (size_t i = 0; i < st->n_cps; i++) {
		cp_free(&st->cps[i]);
	}
	strata_free(st->cps);
	rg_state_init(st);
}

/* Grow *arr (of n items of size sz) by one slot; 0 or STRATA_ENOMEM. */
static int grow(void *arr, size_t n, size_t sz)
{
	void **p = arr;
	void *q = strata_realloc(*p, (n + 1) * sz);
	if (q == NULL) {
		return STRATA_ENOMEM;
	}
	*p = q;
	return 0;
}

static int key_cmp(uint32_t s1, uint64_t id1, uint32_t s2, uint64_t id2)
{
	if (s1 != s2) {
		return s1 < s2 ? -1 : 1;
	}
	if (id1 != id2) {
		return id1 < id2 ? -1 : 1;
	}
	return 0;
}

/* Index of (stream, id) in segs, or where it would go (*found false). */
static size_t seg_find(const struct rg_state *st, uint32_t stream, uint64_t id,
                       bool *found)
{
	size_t lo = 0, hi = st->n_segs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(st->segs[mid].pos.stream, st->segs[mid].pos.id,
		                stream, id);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	*found = false;
	return lo;
}

static size_t fut_find(const struct rg_state *st, uint32_t stream, uint64_t id,
                       bool *found)
{
	size_t lo = 0, hi = st->n_futures;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(st->futures[mid].pos.stream,
		                st->futures[mid].pos.id, stream, id);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	*found = false;
	return lo;
}

static size_t reader_find(const struct rg_state *st, const char *name,
                          bool *found)
{
	size_t lo = 0, hi = st->n_readers;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(st->readers[mid].name, name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	*found = false;
	return lo;
}

/* Index of (stream, id) in a sorted position array, or where it goes. */
static size_t pos_find(const struct rg_pos *pos, size_t n, uint32_t stream,
                       uint64_t id, bool *found)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = key_cmp(pos[mid].stream, pos[mid].id, stream, id);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	*found = false;
	return lo;
}

/* Insert or overwrite p in the sorted array *pos (n items). */
static int pos_put(struct rg_pos **pos, size_t *n, const struct rg_pos *p)
{
	bool found;
	size_t at = pos_find(*pos, *n, p->stream, p->id, &found);
	if (found) {
		(*pos)[at] = *p;
		return 0;
	}
	if (*n >= RG_MAX_SEGMENTS * 2) {
		return STRATA_ERANGE;
	}
	if (grow(pos, *n, sizeof(**pos)) != 0) {
		return STRATA_ENOMEM;
	}
	memmove(&(*pos)[at + 1], &(*pos)[at], (*n - at) * sizeof(**pos));
	(*pos)[at] = *p;
	(*n)++;
	return 0;
}

/* The end offset of (stream, id) from its stream's end cut. */
static uint64_t end_of(const struct rg_state *st, uint32_t stream, uint64_t id)
{
	if (stream >= st->n_streams) {
		return RG_NO_END;
	}
	const struct rg_stream *s = &st->streams[stream];
	for (size_t i = 0; i < s->n_end; i++) {
		if (s->end[i].id == id) {
			return s->end[i].offset;
		}
	}
	return RG_NO_END;
}

static bool in_end_cut(const struct rg_state *st, uint32_t stream, uint64_t id)
{
	return end_of(st, stream, id) != RG_NO_END;
}

int rg_state_add_stream(struct rg_state *st, const char *scope,
                        const char *name, const struct rg_pos *end,
                        size_t n_end, uint32_t *index)
{
	if (st->n_streams >= RG_MAX_STREAMS || n_end > RG_MAX_SEGMENTS) {
		return STRATA_ERANGE;
	}
	struct rg_stream s = {0};
	s.scope = strata_strdup(scope);
	s.name = strata_strdup(name);
	if (n_end > 0) {
		s.end = strata_calloc(n_end, sizeof(*s.end));
	}
	if (s.scope == NULL || s.name == NULL || (n_end > 0 && s.end == NULL) ||
	    grow(&st->streams, st->n_streams, sizeof(*st->streams)) != 0) {
		strata_free(s.scope);
		strata_free(s.name);
		strata_free(s.end);
		return STRATA_ENOMEM;
	}
	for (size_t i = 0; i < n_end; i++) {
		s.end[i] = end[i];
		s.end[i].stream = (uint32_t)st->n_streams;
	}
	s.n_end = n_end;
	*index = (uint32_t)st->n_streams;
	st->streams[st->n_streams++] = s;
	return 0;
}

/* Insert an active segment (not known yet) at pos. */
static int seg_insert(struct rg_state *st, const struct rg_pos *pos,
                      uint64_t end, uint32_t owner)
{
	bool found;
	size_t at = seg_find(st, pos->stream, pos->id, &found);
	if (found) {
		return STRATA_EEXIST;
	}
	if (st->n_segs + st->n_futures >= RG_MAX_SEGMENTS) {
		return STRATA_ERANGE;
	}
	if (grow(&st->segs, st->n_segs, sizeof(*st->segs)) != 0) {
		return STRATA_ENOMEM;
	}
	memmove(&st->segs[at + 1], &st->segs[at],
	        (st->n_segs - at) * sizeof(*st->segs));
	st->segs[at].pos = *pos;
	st->segs[at].end = end;
	st->segs[at].owner = owner;
	st->n_segs++;
	return 0;
}

int rg_state_add_segment(struct rg_state *st, const struct rg_pos *pos)
{
	if (pos->stream >= st->n_streams) {
		return STRATA_EINVAL;
	}
	return seg_insert(st, pos, end_of(st, pos->stream, pos->id), 0);
}

const struct rg_reader *rg_state_reader(const struct rg_state *st,
                                        const char *name)
{
	bool found;
	size_t at = reader_find(st, name, &found);
	return found ? &st->readers[at] : NULL;
}

uint32_t rg_state_stream(const struct rg_state *st, const char *scope,
                         const char *name)
{
	for (size_t i = 0; scope != NULL && name != NULL && i < st->n_streams;
	     i++) {
		if (strcmp(st->streams[i].scope, scope) == 0 &&
		    strcmp(st->streams[i].name, name) == 0) {
			return (uint32_t)i;
		}
	}
	return UINT32_MAX;
}

const struct rg_seg *rg_state_seg(const struct rg_state *st, uint32_t stream,
                                  uint64_t id)
{
	bool found;
	size_t at = seg_find(st, stream, id, &found);
	return found ? &st->segs[at] : NULL;
}

size_t rg_state_count_owned(const struct rg_state *st, uint32_t rid)
{
	size_t n = 0;
	for (size_t i = 0; i < st->n_segs; i++) {
		n += st->segs[i].owner == rid;
	}
	return n;
}

static bool cp_waits(const struct rg_checkpoint *cp, uint32_t rid)
{
	for (uint32_t i = 0; i < cp->n_waiting; i++) {
		if (cp->waiting[i] == rid) {
			return true;
		}
	}
	return false;
}

const struct rg_checkpoint *
rg_state_checkpoint_for_reader(const struct rg_state *st, const char *name)
{
	const struct rg_reader *r = rg_state_reader(st, name);
	if (r == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < st->n_cps; i++) {
		if (cp_waits(&st->cps[i], r->rid)) {
			return &st->cps[i];
		}
	}
	return NULL;
}

const struct rg_checkpoint *rg_state_checkpoint(const struct rg_state *st,
                                                const char *name)
{
	for (size_t i = 0; i < st->n_cps; i++) {
		if (strcmp(st->cps[i].name, name) == 0) {
			return &st->cps[i];
		}
	}
	return NULL;
}

size_t rg_state_pending_checkpoints(const struct rg_state *st)
{
	size_t n = 0;
	for (size_t i = 0; i < st->n_cps; i++) {
		n += st->cps[i].n_waiting > 0;
	}
	return n;
}

/* ------------------------------------------------------ state changes -- */

/* Record the positions of rid's segments in cp and stop waiting for rid. */
static int cp_pass(struct rg_state *st, struct rg_checkpoint *cp, uint32_t rid)
{
	for (size_t i = 0; i < st->n_segs; i++) {
		if (st->segs[i].owner == rid) {
			int rc =
			        pos_put(&cp->pos, &cp->n_pos, &st->segs[i].pos);
			if (rc != 0) {
				return rc;
			}
		}
	}
	for (uint32_t i = 0; i < cp->n_waiting; i++) {
		if (cp->waiting[i] == rid) {
			cp->waiting[i] = cp->waiting[--cp->n_waiting];
			break;
		}
	}
	return 0;
}

static void reader_remove_at(struct rg_state *st, size_t at)
{
	strata_free(st->readers[at].name);
	memmove(&st->readers[at], &st->readers[at + 1],
	        (st->n_readers - at - 1) * sizeof(*st->readers));
	st->n_readers--;
}

/* Move futures whose predecessors are all done to the active segments. */
static int futures_promote(struct rg_state *st)
{
	size_t i = 0;
	while (i < st->n_futures) {
		struct rg_future *f = &st->futures[i];
		bool ready = true;
		for (uint32_t k = 0; k < f->n_preds; k++) {
			ready = ready && f->preds[k].done;
		}
		if (!ready) {
			i++;
			continue;
		}
		struct rg_pos p = f->pos;
		uint64_t end = f->end;
		strata_free(f->preds);
		memmove(&st->futures[i], &st->futures[i + 1],
		        (st->n_futures - i - 1) * sizeof(*st->futures));
		st->n_futures--;
		int rc = seg_insert(st, &p, end, 0);
		if (rc != 0 && rc != STRATA_EEXIST) {
			return rc;
		}
	}
	return 0;
}

bool rg_state_complete(struct rg_state *st, uint32_t rid,
                       const struct rg_pos *at_end,
                       const struct rg_successor *succ, size_t n_succ, int *rc)
{
	*rc = 0;
	bool found;
	size_t at = seg_find(st, at_end->stream, at_end->id, &found);
	if (!found || (rid != 0 && st->segs[at].owner != rid)) {
		return false;
	}
	struct rg_seg done = st->segs[at];
	memmove(&st->segs[at], &st->segs[at + 1],
	        (st->n_segs - at - 1) * sizeof(*st->segs));
	st->n_segs--;
	uint32_t stream = done.pos.stream;
	/* A segment of the end cut ends the stream here: no successors. */
	if (in_end_cut(st, stream, done.pos.id)) {
		n_succ = 0;
	}
	for (size_t i = 0; i < n_succ; i++) {
		const struct rg_successor *s = &succ[i];
		bool after_end = false;
		for (uint32_t k = 0; k < s->n_preds; k++) {
			after_end = after_end ||
			            in_end_cut(st, stream, s->preds[k]);
		}
		if (after_end || s->n_preds > RG_MAX_PREDS ||
		    rg_state_seg(st, stream, s->id) != NULL) {
			continue;
		}
		bool ffound;
		size_t fat = fut_find(st, stream, s->id, &ffound);
		if (!ffound) {
			if (st->n_segs + st->n_futures >= RG_MAX_SEGMENTS) {
				*rc = STRATA_ERANGE;
				return true;
			}
			struct rg_future f = {0};
			f.pos.stream = stream;
			f.pos.id = s->id;
			f.pos.low = s->low;
			f.pos.high = s->high;
			f.end = end_of(st, stream, s->id);
			f.n_preds = s->n_preds;
			if (s->n_preds > 0) {
				f.preds = strata_calloc(s->n_preds,
				                        sizeof(*f.preds));
				if (f.preds == NULL) {
					*rc = STRATA_ENOMEM;
					return true;
				}
			}
			for (uint32_t k = 0; k < s->n_preds; k++) {
				f.preds[k].id = s->preds[k];
			}
			if (grow(&st->futures, st->n_futures,
			         sizeof(*st->futures)) != 0) {
				strata_free(f.preds);
				*rc = STRATA_ENOMEM;
				return true;
			}
			memmove(&st->futures[fat + 1], &st->futures[fat],
			        (st->n_futures - fat) * sizeof(*st->futures));
			st->futures[fat] = f;
			st->n_futures++;
		}
	}
	/* The completed segment is done for every future that waits on it. */
	for (size_t i = 0; i < st->n_futures; i++) {
		struct rg_future *f = &st->futures[i];
		if (f->pos.stream != stream) {
			continue;
		}
		for (uint32_t k = 0; k < f->n_preds; k++) {
			if (f->preds[k].id == done.pos.id) {
				f->preds[k].done = true;
				f->preds[k].end_offset = at_end->offset;
				f->preds[k].low = done.pos.low;
				f->preds[k].high = done.pos.high;
			}
		}
	}
	*rc = futures_promote(st);
	return true;
}

/* Add a checkpoint: every online reader must pass it; unassigned segments
 * and completed predecessors of waiting segments are recorded now. */
static int cp_create(struct rg_state *st, const char *name)
{
	if (rg_state_checkpoint(st, name) != NULL ||
	    rg_state_pending_checkpoints(st) >= st->max_outstanding) {
		return 0;
	}
	/* Forget the oldest completed checkpoints beyond what we keep. */
	size_t completed = st->n_cps - rg_state_pending_checkpoints(st);
	for (size_t i = 0;
	     i < st->n_cps && (completed >= RG_KEEP_COMPLETED ||
	                       st->n_cps >= RG_MAX_CHECKPOINTS);) {
		if (st->cps[i].n_waiting == 0) {
			cp_free(&st->cps[i]);
			memmove(&st->cps[i], &st->cps[i + 1],
			        (st->n_cps - i - 1) * sizeof(*st->cps));
			st->n_cps--;
			completed--;
		} else {
			i++;
		}
	}
	if (st->n_cps >= RG_MAX_CHECKPOINTS) {
		return 0;
	}
	struct rg_checkpoint cp = {0};
	int rc = STRATA_ENOMEM;
	cp.name = strata_strdup(name);
	if (cp.name == NULL) {
		goto err;
	}
	if (st->n_readers > 0) {
		cp.waiting = strata_calloc(st->n_readers, sizeof(*cp.waiting));
		if (cp.waiting == NULL) {
			goto err;
		}
	}
	for (size_t i = 0; i < st->n_readers; i++) {
		cp.waiting[cp.n_waiting++] = st->readers[i].rid;
	}
	for (size_t i = 0; i < st->n_segs; i++) {
		if (st->segs[i].owner == 0 &&
		    (rc = pos_put(&cp.pos, &cp.n_pos, &st->segs[i].pos)) != 0) {
			goto err;
		}
	}
	for (size_t i = 0; i < st->n_futures; i++) {
		const struct rg_future *f = &st->futures[i];
		for (uint32_t k = 0; k < f->n_preds; k++) {
			if (!f->preds[k].done) {
				continue;
			}
			struct rg_pos p = {f->pos.stream, f->preds[k].id,
			                   f->preds[k].end_offset,
			                   f->preds[k].low, f->preds[k].high};
			if ((rc = pos_put(&cp.pos, &cp.n_pos, &p)) != 0) {
				goto err;
			}
		}
	}
	if ((rc = grow(&st->cps, st->n_cps, sizeof(*st->cps))) != 0) {
		goto err;
	}
	st->cps[st->n_cps++] = cp;
	return 0;
err:
	cp_free(&cp);
	return rc;
}

/* ------------------------------------------------------------- codec -- */

static int put_str(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	int rc = buf_append_u32le(b, (uint32_t)n);
	return rc != 0 ? rc : buf_append(b, s, n);
}

static int put_f64(struct buf *b, double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	return buf_append_u64le(b, u);
}

static int put_pos(struct buf *b, const struct rg_pos *p)
{
	int rc = buf_append_u32le(b, p->stream);
	rc = rc != 0 ? rc : buf_append_u64le(b, p->id);
	rc = rc != 0 ? rc : buf_append_u64le(b, p->offset);
	rc = rc != 0 ? rc : put_f64(b, p->low);
	return rc != 0 ? rc : put_f64(b, p->high);
}

static int put_positions(struct buf *b, const struct rg_pos *p, size_t n)
{
	int rc = buf_append_u32le(b, (uint32_t)n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = put_pos(b, &p[i]);
	}
	return rc;
}

static bool name_ok(const char *s)
{
	size_t n = s == NULL ? 0 : strlen(s);
	return n > 0 && n <= RG_MAX_NAME;
}

/* Start a record of type t, rolled back on error by the callers through
 * the saved length. */
static int put_head(struct buf *b, enum rg_rec_type t)
{
	int rc = buf_append_u8(b, RG_REC_VERSION);
	return rc != 0 ? rc : buf_append_u8(b, (uint8_t)t);
}

/* Finish a record: on error drop what it appended. */
static int put_done(struct buf *b, size_t start, int rc)
{
	if (rc != 0) {
		b->len = start;
	}
	return rc;
}

int rg_rec_add_reader(struct buf *b, const char *reader)
{
	if (!name_ok(reader)) {
		return STRATA_EINVAL;
	}
	size_t start = b->len;
	int rc = put_head(b, RG_REC_ADD_READER);
	rc = rc != 0 ? rc : put_str(b, reader);
	return put_done(b, start, rc);
}

int rg_rec_remove_reader(struct buf *b, const char *reader, bool have_pos,
                         const struct rg_pos *pos, size_t n)
{
	if (!name_ok(reader) || n > RG_MAX_SEGMENTS) {
		return STRATA_EINVAL;
	}
	size_t start = b->len;
	int rc = put_head(b, RG_REC_REMOVE_READER);
	rc = rc != 0 ? rc : put_str(b, reader);
	rc = rc != 0 ? rc : buf_append_u8(b, have_pos ? 1 : 0);
	rc = rc != 0 ? rc : put_positions(b, pos, have_pos ? n : 0);
	return put_done(b, start, rc);
}

int rg_rec_acquire(struct buf *b, const char *reader, const struct rg_pos *segs,
                   size_t n)
{
	if (!name_ok(reader) || n > RG_MAX_SEGMENTS) {
		return STRATA_EINVAL;
	}
	size_t start = b->len;
	int rc = put_head(b, RG_REC_ACQUIRE);
	rc = rc != 0 ? rc : put_str(b, reader);
	rc = rc != 0 ? rc : put_positions(b, segs, n);
	return put_done(b, start, rc);
}

int rg_rec_release(struct buf *b, const char *reader, const struct rg_pos *pos)
{
	if (!name_ok(reader)) {
		return STRATA_EINVAL;
	}
	size_t start = b->len;
	int rc = put_head(b, RG_REC_RELEASE);
	rc = rc != 0 ? rc : put_str(b, reader);
	rc = rc != 0 ? rc : put_pos(b, pos);
	return put_done(b, start, rc);
}

int rg_rec_complete(struct buf *b, const char *reader,
                    const struct rg_pos *at_end,
                    const struct rg_successor *succ, size_t n_succ)
{
	if (!name_ok(reader) || n_succ > RG_MAX_PREDS) {
		return STRATA_EINVAL;
	}
	for (size_t i = 0; i < n_succ; i++) {
		if (succ[i].n_preds > RG_MAX_PREDS) {
			return STRATA_EINVAL;
		}
	}
	size_t start = b->len;
	int rc = put_head(b, RG_REC_COMPLETE);
	rc = rc != 0 ? rc : put_str(b, reader);
	rc = rc != 0 ? rc : put_pos(b, at_end);
	rc = rc != 0 ? rc : buf_append_u32le(b, (uint32_t)n_succ);
	for (size_t i = 0; rc == 0 && i < n_succ; i++) {
		rc = buf_append_u64le(b, succ[i].id);
		rc = rc != 0 ? rc : put_f64(b, succ[i].low);
		rc = rc != 0 ? rc : put_f64(b, succ[i].high);
		rc = rc != 0 ? rc : buf_append_u32le(b, succ[i].n_preds);
		for (uint32_t k = 0; rc == 0 && k < succ[i].n_preds; k++) {
			rc = buf_append_u64le(b, succ[i].preds[k]);
		}
	}
	return put_done(b, start, rc);
}

int rg_rec_progress(struct buf *b, const char *reader, uint64_t unread,
                    const struct rg_pos *pos, size_t n)
{
	if (!name_ok(reader) || n > RG_MAX_SEGMENTS) {
		return STRATA_EINVAL;
	}
	size_t start = b->len;
	int rc = put_head(b, RG_REC_PROGRESS);
	rc = rc != 0 ? rc : put_str(b, reader);
	rc = rc != 0 ? rc : buf_append_u64le(b, unread);
	rc = rc != 0 ? rc : put_positions(b, pos, n);
	return put_done(b, start, rc);
}

int rg_rec_cp_create(struct buf *b, const char *name)
{
	if (!name_ok(name)) {
		return STRATA_EINVAL;
	}
	size_t start = b->len;
	int rc = put_head(b, RG_REC_CP_CREATE);
	rc = rc != 0 ? rc : put_str(b, name);
	return put_done(b, start, rc);
}

int rg_rec_cp_reader(struct buf *b, const char *name, const char *reader,
                     const struct rg_pos *pos, size_t n)
{
	if (!name_ok(name) || !name_ok(reader) || n > RG_MAX_SEGMENTS) {
		return STRATA_EINVAL;
	}
	size_t start = b->len;
	int rc = put_head(b, RG_REC_CP_READER);
	rc = rc != 0 ? rc : put_str(b, name);
	rc = rc != 0 ? rc : put_str(b, reader);
	rc = rc != 0 ? rc : put_positions(b, pos, n);
	return put_done(b, start, rc);
}

int rg_state_encode(const struct rg_state *st, struct buf *b)
{
	size_t start = b->len;
	int rc = put_head(b, RG_REC_FULL);
	rc = rc != 0 ? rc : buf_append_u64le(b, st->epoch);
	rc = rc != 0 ? rc : buf_append_u32le(b, st->refresh_ms);
	rc = rc != 0 ? rc : buf_append_u32le(b, st->checkpoint_ms);
	rc = rc != 0 ? rc : buf_append_u32le(b, st->max_outstanding);
	rc = rc != 0 ? rc : buf_append_u32le(b, st->next_rid);
	rc = rc != 0 ? rc : buf_append_u32le(b, (uint32_t)st->n_streams);
	for (size_t i = 0; rc == 0 && i < st->n_streams; i++) {
		rc = put_str(b, st->streams[i].scope);
		rc = rc != 0 ? rc : put_str(b, st->streams[i].name);
		rc = rc != 0 ? rc
		             : put_positions(b, st->streams[i].end,
		                             st->streams[i].n_end);
	}
	rc = rc != 0 ? rc : buf_append_u32le(b, (uint32_t)st->n_segs);
	for (size_t i = 0; rc == 0 && i < st->n_segs; i++) {
		rc = put_pos(b, &st->segs[i].pos);
		rc = rc != 0 ? rc : buf_append_u64le(b, st->segs[i].end);
		rc = rc != 0 ? rc : buf_append_u32le(b, st->segs[i].owner);
	}
	rc = rc != 0 ? rc : buf_append_u32le(b, (uint32_t)st->n_futures);
	for (size_t i = 0; rc == 0 && i < st->n_futures; i++) {
		const struct rg_future *f = &st->futures[i];
		rc = put_pos(b, &f->pos);
		rc = rc != 0 ? rc : buf_append_u64le(b, f->end);
		rc = rc != 0 ? rc : buf_append_u32le(b, f->n_preds);
		for (uint32_t k = 0; rc == 0 && k < f->n_preds; k++) {
			rc = buf_append_u64le(b, f->preds[k].id);
			rc = rc != 0 ? rc
			             : buf_append_u8(b,
			                             f->preds[k].done ? 1 : 0);
			rc = rc != 0 ? rc
			             : buf_append_u64le(b,
			                                f->preds[k].end_offset);
			rc = rc != 0 ? rc : put_f64(b, f->preds[k].low);
			rc = rc != 0 ? rc : put_f64(b, f->preds[k].high);
		}
	}
	rc = rc != 0 ? rc : buf_append_u32le(b, (uint32_t)st->n_readers);
	for (size_t i = 0; rc == 0 && i < st->n_readers; i++) {
		rc = put_str(b, st->readers[i].name);
		rc = rc != 0 ? rc : buf_append_u32le(b, st->readers[i].rid);
		rc = rc != 0 ? rc : buf_append_u64le(b, st->readers[i].unread);
	}
	rc = rc != 0 ? rc : buf_append_u32le(b, (uint32_t)st->n_cps);
	for (size_t i = 0; rc == 0 && i < st->n_cps; i++) {
		const struct rg_checkpoint *cp = &st->cps[i];
		rc = put_str(b, cp->name);
		rc = rc != 0 ? rc : buf_append_u32le(b, cp->n_waiting);
		for (uint32_t k = 0; rc == 0 && k < cp->n_waiting; k++) {
			rc = buf_append_u32le(b, cp->waiting[k]);
		}
		rc = rc != 0 ? rc : put_positions(b, cp->pos, cp->n_pos);
	}
	return put_done(b, start, rc);
}

/* Decoding: every read goes through the cursor; errors are ECORRUPT. */
struct dec {
	struct cursor c;
	char *errmsg;
	const char *what; /* field being read */
};

static int bad(struct dec *d, const char *why)
{
	set_err(d->errmsg,
	        "reader-group state record: %s at byte %zu (%s); the group "
	        "state is damaged: reset the group or recreate it",
	        why, d->c.off, d->what);
	return STRATA_ECORRUPT;
}

static int get_u8(struct dec *d, uint8_t *v)
{
	return cursor_u8(&d->c, v) != 0 ? bad(d, "truncated") : 0;
}

static int get_u32(struct dec *d, uint32_t *v)
{
	return cursor_u32le(&d->c, v) != 0 ? bad(d, "truncated") : 0;
}

static int get_u64(struct dec *d, uint64_t *v)
{
	return cursor_u64le(&d->c, v) != 0 ? bad(d, "truncated") : 0;
}

static int get_f64(struct dec *d, double *v)
{
	uint64_t u;
	int rc = get_u64(d, &u);
	if (rc == 0) {
		memcpy(v, &u, sizeof(u));
	}
	return rc;
}

/* A count of items of at least min_size bytes each, at most max. */
static int get_count(struct dec *d, uint32_t max, size_t min_size, uint32_t *n)
{
	int rc = get_u32(d, n);
	if (rc != 0) {
		return rc;
	}
	if (*n > max || (size_t)*n * min_size > cursor_remaining(&d->c)) {
		return bad(d, "count out of range");
	}
	return 0;
}

/* A name into buf (RG_MAX_NAME + 1 bytes), NUL-terminated. */
static int get_name(struct dec *d, char *buf)
{
	uint32_t n;
	const uint8_t *p;
	int rc = get_u32(d, &n);
	if (rc != 0) {
		return rc;
	}
	if (n == 0 || n > RG_MAX_NAME) {
		return bad(d, "bad name length");
	}
	if (cursor_bytes(&d->c, n, &p) != 0) {
		return bad(d, "truncated");
	}
	if (memchr(p, '\0', n) != NULL) {
		return bad(d, "NUL inside a name");
	}
	memcpy(buf, p, n);
	buf[n] = '\0';
	return 0;
}

static int get_pos(struct dec *d, const struct rg_state *st, size_t n_streams,
                   struct rg_pos *p)
{
	(void)st;
	int rc = get_u32(d, &p->stream);
	rc = rc != 0 ? rc : get_u64(d, &p->id);
	rc = rc != 0 ? rc : get_u64(d, &p->offset);
	rc = rc != 0 ? rc : get_f64(d, &p->low);
	rc = rc != 0 ? rc : get_f64(d, &p->high);
	if (rc != 0) {
		return rc;
	}
	if (p->stream >= n_streams) {
		return bad(d, "stream index out of range");
	}
	if (!isfinite(p->low) || !isfinite(p->high) || p->low < 0.0 ||
	    p->high > 1.0 || p->low >= p->high) {
		return bad(d, "bad key range");
	}
	return 0;
}

#define POS_SIZE 36 /* encoded rg_pos */

/* A position list, allocated into *out (NULL when empty). */
static int get_positions(struct dec *d, size_t n_streams, struct rg_pos **out,
                         size_t *n)
{
	uint32_t cnt;
	*out = NULL;
	*n = 0;
	int rc = get_count(d, RG_MAX_SEGMENTS, POS_SIZE, &cnt);
	if (rc != 0 || cnt == 0) {
		return rc;
	}
	struct rg_pos *p = strata_calloc(cnt, sizeof(*p));
	if (p == NULL) {
		return STRATA_ENOMEM;
	}
	for (uint32_t i = 0; i < cnt; i++) {
		if ((rc = get_pos(d, NULL, n_streams, &p[i])) != 0) {
			strata_free(p);
			return rc;
		}
	}
	*out = p;
	*n = cnt;
	return 0;
}

/* Strictly sorted by (stream, id)? */
static bool pos_sorted(const struct rg_pos *p, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		if (key_cmp(p[i - 1].stream, p[i - 1].id, p[i].stream,
		            p[i].id) >= 0) {
			return false;
		}
	}
	return true;
}

static int decode_full(struct dec *d, struct rg_state *out)
{
	struct rg_state st;
	rg_state_init(&st);
	uint32_t n;
	char name[RG_MAX_NAME + 1];
	char name2[RG_MAX_NAME + 1];
	int rc;

	d->what = "header";
	if ((rc = get_u64(d, &st.epoch)) != 0 ||
	    (rc = get_u32(d, &st.refresh_ms)) != 0 ||
	    (rc = get_u32(d, &st.checkpoint_ms)) != 0 ||
	    (rc = get_u32(d, &st.max_outstanding)) != 0 ||
	    (rc = get_u32(d, &st.next_rid)) != 0) {
		goto err;
	}
	if (st.next_rid == 0 || st.max_outstanding > RG_MAX_CHECKPOINTS) {
		rc = bad(d, "bad settings");
		goto err;
	}
	d->what = "streams";
	if ((rc = get_count(d, RG_MAX_STREAMS, 12, &n)) != 0) {
		goto err;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct rg_pos *end;
		size_t n_end;
		uint32_t idx;
		if ((rc = get_name(d, name)) != 0 ||
		    (rc = get_name(d, name2)) != 0 ||
		    (rc = get_positions(d, i + 1, &end, &n_end)) != 0) {
			goto err;
		}
		for (size_t k = 0; k < n_end; k++) {
			if (end[k].stream != i) {
				strata_free(end);
				rc = bad(d, "end cut of another stream");
				goto err;
			}
		}
		rc = rg_state_add_stream(&st, name, name2, end, n_end, &idx);
		strata_free(end);
		if (rc != 0) {
			goto err;
		}
	}
	d->what = "segments";
	if ((rc = get_count(d, RG_MAX_SEGMENTS, POS_SIZE + 12, &n)) != 0) {
		goto err;
	}
	if (n > 0 && (st.segs = strata_calloc(n, sizeof(*st.segs))) == NULL) {
		rc = STRATA_ENOMEM;
		goto err;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct rg_seg *s = &st.segs[i];
		if ((rc = get_pos(d, NULL, st.n_streams, &s->pos)) != 0 ||
		    (rc = get_u64(d, &s->end)) != 0 ||
		    (rc = get_u32(d, &s->owner)) != 0) {
			goto err;
		}
		if (s->owner >= st.next_rid ||
		    (i > 0 &&
		     key_cmp(st.segs[i - 1].pos.stream, st.segs[i - 1].pos.id,
		             s->pos.stream, s->pos.id) >= 0)) {
			rc = bad(d, "segment unsorted or bad owner");
			goto err;
		}
		st.n_segs++;
	}
	d->what = "waiting segments";
	if ((rc = get_count(d, RG_MAX_SEGMENTS - st.n_segs, POS_SIZE + 12,
	                    &n)) != 0) {
		goto err;
	}
	if (n > 0 &&
	    (st.futures = strata_calloc(n, sizeof(*st.futures))) == NULL) {
		rc = STRATA_ENOMEM;
		goto err;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct rg_future *f = &st.futures[i];
		uint32_t np;
		if ((rc = get_pos(d, NULL, st.n_streams, &f->pos)) != 0 ||
		    (rc = get_u64(d, &f->end)) != 0 ||
		    (rc = get_count(d, RG_MAX_PREDS, 33, &np)) != 0) {
			goto err;
		}
		st.n_futures++;
		if (i > 0 && key_cmp(st.futures[i - 1].pos.stream,
		                     st.futures[i - 1].pos.id, f->pos.stream,
		                     f->pos.id) >= 0) {
			rc = bad(d, "waiting segments unsorted");
			goto err;
		}
		if (np > 0 &&
		    (f->preds = strata_calloc(np, sizeof(*f->preds))) == NULL) {
			rc = STRATA_ENOMEM;
			goto err;
		}
		f->n_preds = np;
		for (uint32_t k = 0; k < np; k++) {
			uint8_t done;
			if ((rc = get_u64(d, &f->preds[k].id)) != 0 ||
			    (rc = get_u8(d, &done)) != 0 ||
			    (rc = get_u64(d, &f->preds[k].end_offset)) != 0 ||
			    (rc = get_f64(d, &f->preds[k].low)) != 0 ||
			    (rc = get_f64(d, &f->preds[k].high)) != 0) {
				goto err;
			}
			if (done > 1) {
				rc = bad(d, "bad flag");
				goto err;
			}
			f->preds[k].done = done == 1;
		}
	}
	d->what = "readers";
	if ((rc = get_count(d, RG_MAX_READERS, 17, &n)) != 0) {
		goto err;
	}
	if (n > 0 &&
	    (st.readers = strata_calloc(n, sizeof(*st.readers))) == NULL) {
		rc = STRATA_ENOMEM;
		goto err;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct rg_reader *r = &st.readers[i];
		if ((rc = get_name(d, name)) != 0) {
			goto err;
		}
		if ((r->name = strata_strdup(name)) == NULL) {
			rc = STRATA_ENOMEM;
			goto err;
		}
		st.n_readers++;
		if ((rc = get_u32(d, &r->rid)) != 0 ||
		    (rc = get_u64(d, &r->unread)) != 0) {
			goto err;
		}
		if (r->rid == 0 || r->rid >= st.next_rid ||
		    (i > 0 && strcmp(st.readers[i - 1].name, r->name) >= 0)) {
			rc = bad(d, "readers unsorted or bad id");
			goto err;
		}
	}
	d->what = "checkpoints";
	if ((rc = get_count(d, RG_MAX_CHECKPOINTS, 12, &n)) != 0) {
		goto err;
	}
	if (n > 0 && (st.cps = strata_calloc(n, sizeof(*st.cps))) == NULL) {
		rc = STRATA_ENOMEM;
		goto err;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct rg_checkpoint *cp = &st.cps[i];
		uint32_t nw;
		if ((rc = get_name(d, name)) != 0) {
			goto err;
		}
		if ((cp->name = strata_strdup(name)) == NULL) {
			rc = STRATA_ENOMEM;
			goto err;
		}
		st.n_cps++;
		if ((rc = get_count(d, RG_MAX_READERS, 4, &nw)) != 0) {
			goto err;
		}
		if (nw > 0 && (cp->waiting = strata_calloc(
		                       nw, sizeof(*cp->waiting))) == NULL) {
			rc = STRATA_ENOMEM;
			goto err;
		}
		for (uint32_t k = 0; k < nw; k++) {
			if ((rc = get_u32(d, &cp->waiting[k])) != 0) {
				goto err;
			}
			cp->n_waiting++;
		}
		if ((rc = get_positions(d, st.n_streams, &cp->pos,
		                        &cp->n_pos)) != 0) {
			goto err;
		}
		if (!pos_sorted(cp->pos, cp->n_pos)) {
			rc = bad(d, "checkpoint positions unsorted");
			goto err;
		}
	}
	if (cursor_remaining(&d->c) != 0) {
		d->what = "end";
		rc = bad(d, "trailing bytes");
		goto err;
	}
	rg_state_close(out);
	*out = st;
	return 0;
err:
	rg_state_close(&st);
	return rc;
}

/* Reader index for a name read from a record; NULL when offline. */
static struct rg_reader *rec_reader(struct rg_state *st, const char *name)
{
	bool found;
	size_t at = reader_find(st, name, &found);
	return found ? &st->readers[at] : NULL;
}

static int apply_remove(struct rg_state *st, const char *name, bool have_pos,
                        const struct rg_pos *pos, size_t n)
{
	bool found;
	size_t at = reader_find(st, name, &found);
	if (!found) {
		return 0;
	}
	uint32_t rid = st->readers[at].rid;
	for (size_t i = 0; have_pos && i < n; i++) {
		bool f;
		size_t s = seg_find(st, pos[i].stream, pos[i].id, &f);
		if (f && st->segs[s].owner == rid) {
			st->segs[s].pos.offset = pos[i].offset;
		}
	}
	for (size_t i = 0; i < st->n_cps; i++) {
		if (cp_waits(&st->cps[i], rid)) {
			int rc = cp_pass(st, &st->cps[i], rid);
			if (rc != 0) {
				return rc;
			}
		}
	}
	for (size_t i = 0; i < st->n_segs; i++) {
		if (st->segs[i].owner == rid) {
			st->segs[i].owner = 0;
		}
	}
	reader_remove_at(st, at);
	return 0;
}

static int apply_complete(struct dec *d, struct rg_state *st, const char *name)
{
	struct rg_pos at_end;
	uint32_t n;
	int rc;
	struct rg_successor *succ = NULL;
	uint64_t *preds = NULL;
	size_t n_preds = 0;

	d->what = "completed segment";
	if ((rc = get_pos(d, st, st->n_streams, &at_end)) != 0 ||
	    (rc = get_count(d, RG_MAX_PREDS, 28, &n)) != 0) {
		return rc;
	}
	/* Two passes: validate and count, then fill. */
	size_t mark = d->c.off;
	d->what = "successors";
	for (uint32_t i = 0; i < n; i++) {
		uint64_t id;
		double lo, hi;
		uint32_t np;
		if ((rc = get_u64(d, &id)) != 0 ||
		    (rc = get_f64(d, &lo)) != 0 ||
		    (rc = get_f64(d, &hi)) != 0 ||
		    (rc = get_count(d, RG_MAX_PREDS, 8, &np)) != 0) {
			return rc;
		}
		if (!isfinite(lo) || !isfinite(hi) || lo < 0.0 || hi > 1.0 ||
		    lo >= hi) {
			return bad(d, "bad key range");
		}
		if (cursor_skip(&d->c, (size_t)np * 8) != 0) {
			return bad(d, "truncated");
		}
		n_preds += np;
	}
	if (cursor_remaining(&d->c) != 0) {
		return bad(d, "trailing bytes");
	}
	if ((n > 0 && (succ = strata_calloc(n, sizeof(*succ))) == NULL) ||
	    (n_preds > 0 &&
	     (preds = strata_calloc(n_preds, sizeof(*preds))) == NULL)) {
		strata_free(succ);
		return STRATA_ENOMEM;
	}
	d->c.off = mark;
	size_t used = 0;
	for (uint32_t i = 0; i < n; i++) {
		/* Validated above: these reads cannot fail. */
		(void)get_u64(d, &succ[i].id);
		(void)get_f64(d, &succ[i].low);
		(void)get_f64(d, &succ[i].high);
		(void)get_u32(d, &succ[i].n_preds);
		succ[i].preds = preds + used;
		for (uint32_t k = 0; k < succ[i].n_preds; k++) {
			(void)get_u64(d, &preds[used++]);
		}
	}
	struct rg_reader *r = rec_reader(st, name);
	if (r != NULL) {
		(void)rg_state_complete(st, r->rid, &at_end, succ, n, &rc);
	}
	strata_free(succ);
	strata_free(preds);
	return rc;
}

int rg_state_apply(struct rg_state *st, const uint8_t *rec, size_t len,
                   char *errmsg)
{
	struct dec d = {.errmsg = errmsg, .what = "header"};
	cursor_init(&d.c, rec, len);
	uint8_t ver, type;
	char name[RG_MAX_NAME + 1];
	char name2[RG_MAX_NAME + 1];
	struct rg_pos *pos = NULL;
	size_t n = 0;
	int rc;

	if ((rc = get_u8(&d, &ver)) != 0 || (rc = get_u8(&d, &type)) != 0) {
		return rc;
	}
	if (ver != RG_REC_VERSION) {
		set_err(errmsg,
		        "reader-group state record of version %u, this "
		        "library reads version %u: upgrade libstrata",
		        ver, RG_REC_VERSION);
		return STRATA_ECORRUPT;
	}
	if (type == RG_REC_FULL) {
		return decode_full(&d, st);
	}
	if (type == RG_REC_CP_CREATE) {
		d.what = "checkpoint name";
		if ((rc = get_name(&d, name)) != 0) {
			return rc;
		}
		if (cursor_remaining(&d.c) != 0) {
			return bad(&d, "trailing bytes");
		}
		return cp_create(st, name);
	}
	if (type < RG_REC_ADD_READER || type > RG_REC_CP_READER) {
		return bad(&d, "unknown record type");
	}
	d.what = type == RG_REC_CP_READER ? "checkpoint name" : "reader name";
	if ((rc = get_name(&d, name)) != 0) {
		return rc;
	}
	struct rg_reader *r;
	uint8_t have = 0;
	uint64_t unread = 0;
	struct rg_pos one;
	switch ((enum rg_rec_type)type) {
	case RG_REC_ADD_READER:
		break;
	case RG_REC_REMOVE_READER:
		d.what = "positions";
		if ((rc = get_u8(&d, &have)) != 0) {
			return rc;
		}
		if (have > 1) {
			return bad(&d, "bad flag");
		}
		rc = get_positions(&d, st->n_streams, &pos, &n);
		break;
	case RG_REC_ACQUIRE:
		d.what = "segments";
		rc = get_positions(&d, st->n_streams, &pos, &n);
		break;
	case RG_REC_RELEASE:
		d.what = "segment";
		rc = get_pos(&d, st, st->n_streams, &one);
		break;
	case RG_REC_COMPLETE:
		return apply_complete(&d, st, name);
	case RG_REC_PROGRESS:
		d.what = "progress";
		if ((rc = get_u64(&d, &unread)) != 0) {
			return rc;
		}
		rc = get_positions(&d, st->n_streams, &pos, &n);
		break;
	case RG_REC_CP_READER:
		d.what = "reader name";
		if ((rc = get_name(&d, name2)) != 0) {
			return rc;
		}
		d.what = "positions";
		rc = get_positions(&d, st->n_streams, &pos, &n);
		break;
	default:
		return bad(&d, "unknown record type");
	}
	if (rc != 0) {
		return rc;
	}
	if (cursor_remaining(&d.c) != 0) {
		strata_free(pos);
		return bad(&d, "trailing bytes");
	}
	switch ((enum rg_rec_type)type) {
	case RG_REC_ADD_READER: {
		bool found;
		size_t at = reader_find(st, name, &found);
		if (found || st->n_readers >= RG_MAX_READERS ||
		    st->next_rid == UINT32_MAX) {
			break;
		}
		char *dup = strata_strdup(name);
		if (dup == NULL ||
		    grow(&st->readers, st->n_readers, sizeof(*st->readers))) {
			strata_free(dup);
			rc = STRATA_ENOMEM;
			break;
		}
		memmove(&st->readers[at + 1], &st->readers[at],
		        (st->n_readers - at) * sizeof(*st->readers));
		st->readers[at].name = dup;
		st->readers[at].rid = st->next_rid++;
		st->readers[at].unread = 0;
		st->n_readers++;
		break;
	}
	case RG_REC_REMOVE_READER:
		rc = apply_remove(st, name, have == 1, pos, n);
		break;
	case RG_REC_ACQUIRE:
		r = rec_reader(st, name);
		for (size_t i = 0; r != NULL && i < n; i++) {
			bool f;
			size_t s = seg_find(st, pos[i].stream, pos[i].id, &f);
			if (f && st->segs[s].owner == 0) {
				st->segs[s].owner = r->rid;
			}
		}
		break;
	case RG_REC_RELEASE: {
		r = rec_reader(st, name);
		bool f;
		size_t s = seg_find(st, one.stream, one.id, &f);
		if (r != NULL && f && st->segs[s].owner == r->rid) {
			st->segs[s].owner = 0;
			st->segs[s].pos.offset = one.offset;
		}
		break;
	}
	case RG_REC_PROGRESS:
		r = rec_reader(st, name);
		if (r == NULL) {
			break;
		}
		r->unread = unread;
		for (size_t i = 0; i < n; i++) {
			bool f;
			size_t s = seg_find(st, pos[i].stream, pos[i].id, &f);
			if (f && st->segs[s].owner == r->rid) {
				st->segs[s].pos.offset = pos[i].offset;
			}
		}
		break;
	case RG_REC_CP_READER: {
		r = rec_reader(st, name2);
		struct rg_checkpoint *cp =
		        (struct rg_checkpoint *)rg_state_checkpoint(st, name);
		if (r == NULL || cp == NULL || !cp_waits(cp, r->rid)) {
			break;
		}
		/* The reader's positions become its segments' offsets. */
		for (size_t i = 0; i < n; i++) {
			bool f;
			size_t s = seg_find(st, pos[i].stream, pos[i].id, &f);
			if (f && st->segs[s].owner == r->rid) {
				st->segs[s].pos.offset = pos[i].offset;
			}
		}
		rc = cp_pass(st, cp, r->rid);
		break;
	}
	default:
		break;
	}
	strata_free(pos);
	return rc;
}

int rg_state_copy(struct rg_state *dst, const struct rg_state *src)
{
	struct buf b;
	buf_init(&b, 0);
	int rc = rg_state_encode(src, &b);
	if (rc == 0) {
		rc = rg_state_apply(dst, b.data, b.len, NULL);
	}
	buf_close(&b);
	if (rc != 0) {
		rg_state_close(dst);
		return STRATA_ENOMEM;
	}
	return 0;
}

/* ---------------------------------------------------------- decisions -- */

size_t rg_state_plan_acquire(const struct rg_state *st, const char *name,
                             struct rg_pos *out, size_t max)
{
	const struct rg_reader *r = rg_state_reader(st, name);
	if (r == NULL || rg_state_checkpoint_for_reader(st, name) != NULL ||
	    st->n_readers == 0) {
		return 0;
	}
	size_t fair = (st->n_segs + st->n_readers - 1) / st->n_readers;
	size_t owned = rg_state_count_owned(st, r->rid);
	size_t want = fair > owned ? fair - owned : 0;
	/* Readers that own fewer than us have the first pick. */
	size_t unassigned = rg_state_count_owned(st, 0);
	size_t reserved = 0;
	for (size_t i = 0; i < st->n_readers; i++) {
		size_t c = rg_state_count_owned(st, st->readers[i].rid);
		if (c < owned && c < fair) {
			reserved += fair - c;
		}
	}
	size_t left = unassigned > reserved ? unassigned - reserved : 0;
	want = want < left ? want : left;
	size_t n = 0;
	for (size_t i = 0; i < st->n_segs && n < want && n < max; i++) {
		if (st->segs[i].owner == 0) {
			out[n++] = st->segs[i].pos;
		}
	}
	return n;
}

bool rg_state_plan_release(const struct rg_state *st, const char *name,
                           const struct rg_pos *owned, const uint64_t *unread,
                           size_t n, struct rg_pos *out)
{
	const struct rg_reader *me = rg_state_reader(st, name);
	if (me == NULL || n < 2 || st->n_readers < 2 ||
	    rg_state_checkpoint_for_reader(st, name) != NULL) {
		return false;
	}
	size_t mine = rg_state_count_owned(st, me->rid);
	size_t fair = (st->n_segs + st->n_readers - 1) / st->n_readers;
	size_t min_owned = SIZE_MAX;
	uint64_t min_unread = UINT64_MAX;
	for (size_t i = 0; i < st->n_readers; i++) {
		const struct rg_reader *o = &st->readers[i];
		if (o->rid == me->rid) {
			continue;
		}
		size_t c = rg_state_count_owned(st, o->rid);
		min_owned = c < min_owned ? c : min_owned;
		min_unread = o->unread < min_unread ? o->unread : min_unread;
	}
	if (mine >= 2 && (mine >= min_owned + 2 || mine > fair)) {
		/* By count: give the one with the highest (stream, id), so the
		 * older segments stay where they are read. */
		size_t best = 0;
		for (size_t i = 1; i < n; i++) {
			if (key_cmp(owned[i].stream, owned[i].id,
			            owned[best].stream, owned[best].id) > 0) {
				best = i;
			}
		}
		*out = owned[best];
		return true;
	}
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		total += unread[i];
	}
	if (min_owned >= mine ||
	    total <= 2 * min_unread + (uint64_t)RG_BALANCE_SLACK) {
		return false;
	}
	uint64_t half = (total - min_unread) / 2;
	bool any = false;
	size_t best = 0;
	for (size_t i = 0; i < n; i++) {
		if (unread[i] > 0 && unread[i] <= half &&
		    (!any || unread[i] > unread[best])) {
			best = i;
			any = true;
		}
	}
	if (any) {
		*out = owned[best];
	}
	return any;
}

int rg_state_positions(const struct rg_state *st, struct rg_pos **out,
                       size_t *n)
{
	struct rg_pos *p = NULL;
	size_t cnt = 0;
	int rc = 0;
	*out = NULL;
	*n = 0;
	for (size_t i = 0; rc == 0 && i < st->n_segs; i++) {
		rc = pos_put(&p, &cnt, &st->segs[i].pos);
	}
	for (size_t i = 0; rc == 0 && i < st->n_futures; i++) {
		const struct rg_future *f = &st->futures[i];
		for (uint32_t k = 0; rc == 0 && k < f->n_preds; k++) {
			if (f->preds[k].done) {
				struct rg_pos q = {
				        f->pos.stream, f->preds[k].id,
				        f->preds[k].end_offset, f->preds[k].low,
				        f->preds[k].high};
				rc = pos_put(&p, &cnt, &q);
			}
		}
	}
	if (rc != 0) {
		strata_free(p);
		return STRATA_ENOMEM;
	}
	*out = p;
	*n = cnt;
	return 0;
}

int rg_state_reset(struct rg_state *dst, const struct rg_state *src,
                   const struct rg_pos *pos, size_t n, char *errmsg)
{
	struct rg_state st;
	rg_state_init(&st);
	int rc = 0;
	st.epoch = src->epoch + 1;
	st.refresh_ms = src->refresh_ms;
	st.checkpoint_ms = src->checkpoint_ms;
	st.max_outstanding = src->max_outstanding;
	st.next_rid = src->next_rid;
	for (size_t i = 0; rc == 0 && i < src->n_streams; i++) {
		uint32_t idx;
		rc = rg_state_add_stream(
		        &st, src->streams[i].scope, src->streams[i].name,
		        src->streams[i].end, src->streams[i].n_end, &idx);
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = rg_state_add_segment(&st, &pos[i]);
		if (rc == STRATA_EINVAL || rc == STRATA_EEXIST) {
			set_err(errmsg,
			        "reset to positions: segment %u.%u of stream "
			        "#%u is %s; pass the positions of a completed "
			        "checkpoint of this group",
			        (unsigned)(pos[i].id & 0xffffffffu),
			        (unsigned)(pos[i].id >> 32),
			        (unsigned)pos[i].stream,
			        rc == STRATA_EINVAL ? "of an unknown stream"
			                            : "listed twice");
			rc = STRATA_EINVAL;
		}
	}
	if (rc != 0) {
		rg_state_close(&st);
		return rc;
	}
	rg_state_close(dst);
	*dst = st;
	return 0;
}

/* ------------------------------------------------------ synchronizer -- */

static void sync_reset(void *state)
{
	rg_state_close(state);
}

static bool sync_is_full(const uint8_t *rec, size_t len)
{
	return len >= 2 && rec[0] == RG_REC_VERSION && rec[1] == RG_REC_FULL;
}

static int sync_apply(void *state, const uint8_t *rec, size_t len, char *errmsg)
{
	return rg_state_apply(state, rec, len, errmsg);
}

static int sync_encode(const void *state, struct buf *b)
{
	return rg_state_encode(state, b);
}

const struct sync_state_ops rg_sync_ops = {
        .reset = sync_reset,
        .is_full = sync_is_full,
        .apply = sync_apply,
        .encode = sync_encode,
};
