/* Watermarks, the FSM's part: writers' time marks and the watermarks the
 * leader's periodic round derives from them (docs/controller.md,
 * "Watermarks"; Pravega's noteTime and PeriodicWatermarking).
 *
 * happy path: a writer notes time t with the segment offsets it had
 * written to (NoteTimeCmd): its mark is replaced. Every watermark.interval
 * the leader applies ComputeWatermarkCmd to each stream with marks: marks
 * silent for longer than the writer timeout go; from the others,
 * lower = min time, upper = max time, positions = per segment the highest
 * offset of the marks and of the previous watermark, without segments a
 * newer overlapping one replaced. It is recorded when lower moved forward
 * (or it is the first), so a reader's window never goes back.
 * failure modes: unknown stream or segment, a negative offset, no
 * positions, a bad writer id, a time below the writer's last: EINVAL (or
 * ENOENT) and nothing changes; a sealed or deleted stream: ESEALED; more
 * than WM_MAX_WRITERS writers: ENOSPC. Kept watermarks are bounded
 * (WM_MAX_KEPT, oldest dropped).
 */
#include "controller/fsm_int.h"

#include <inttypes.h>
#include <string.h>

#include "common/alloc.h"
#include "common/errmsg.h"

#define WM_MAX_WRITERS 1024   /* marks per stream */
#define WM_MAX_KEPT 1024      /* watermarks per stream */
#define WM_MAX_POSITIONS 4096 /* positions in one note */
#define WM_ID_LEN 16

/* Index of writer id's mark, or where it goes; *found says which. */
static size_t mark_index(const Strata__V1__StreamRecord *s,
                         const ProtobufCBinaryData *id, bool *found)
{
	size_t lo = 0, hi = s->n_writer_marks;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(s->writer_marks[mid]->writer_id.data, id->data,
		               WM_ID_LEN);
		if (c < 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	*found = lo < s->n_writer_marks &&
	         memcmp(s->writer_marks[lo]->writer_id.data, id->data,
	                WM_ID_LEN) == 0;
	return lo;
}

static int cmp_position(const void *a, const void *b)
{
	const Strata__V1__SegmentOffset *x =
	        *(const Strata__V1__SegmentOffset *const *)a;
	const Strata__V1__SegmentOffset *y =
	        *(const Strata__V1__SegmentOffset *const *)b;
	return x->segment_id < y->segment_id   ? -1
	       : x->segment_id > y->segment_id ? 1
	                                       : 0;
}

/* Stream of a watermark command that accepts marks: ACTIVE, SCALING or
 * TRUNCATING. */
static int writable_stream(struct cfsm *f, const char *scope,
                           const char *stream, Strata__V1__StreamRecord **s,
                           struct cfsm_result *res)
{
	int rc = fsm_stream_get(f->st, scope, stream, s, res);
	if (rc != 0) {
		return rc;
	}
	int st = (*s)->state;
	if (st != SS_ACTIVE && st != SS_SCALING && st != SS_TRUNCATING) {
		return fsm_fail(res, STRATA_ESEALED,
		                "stream %s/%s is sealed or being removed; "
		                "time is noted only on open streams",
		                scope, stream);
	}
	return 0;
}

static int check_id(const ProtobufCBinaryData *id, const char *scope,
                    const char *stream, struct cfsm_result *res)
{
	if (id->len != WM_ID_LEN) {
		return fsm_fail(res, STRATA_EINVAL,
		                "writer id of %zu bytes for %s/%s; it is the "
		                "writer's 16-byte id",
		                id->len, scope, stream);
	}
	return 0;
}

int watermarks_note(struct cfsm *f, const Strata__V1__NoteTimeCmd *c,
                    struct cfsm_result *res)
{
	const Strata__V1__NoteTimeRequest *q = c->request;
	Strata__V1__StreamRecord *s;
	int rc = writable_stream(f, q->scope, q->stream, &s, res);
	if (rc != 0 ||
	    (rc = check_id(&q->writer_id, q->scope, q->stream, res)) != 0) {
		return rc;
	}
	if (q->n_positions == 0 || q->n_positions > WM_MAX_POSITIONS) {
		return fsm_fail(res, STRATA_EINVAL,
		                "%zu positions noted on %s/%s; send 1..%d (the "
		                "segments the writer wrote to)",
		                q->n_positions, q->scope, q->stream,
		                WM_MAX_POSITIONS);
	}
	for (size_t i = 0; i < q->n_positions; i++) {
		const Strata__V1__SegmentOffset *p = q->positions[i];
		if (p == NULL || fsm_find_segment(s, p->segment_id) == NULL) {
			return fsm_fail(
			        res, STRATA_EINVAL,
			        "noted position %zu names segment " SEG_FMT
			        ", not a segment of %s/%s",
			        i, SEG_ARGS(p != NULL ? p->segment_id : 0),
			        q->scope, q->stream);
		}
		if (p->offset < 0) {
			return fsm_fail(res, STRATA_EINVAL,
			                "noted offset %" PRId64 " of segment "
			                "%" PRIu64 " of %s/%s is negative",
			                p->offset, p->segment_id, q->scope,
			                q->stream);
		}
	}
	bool found;
	size_t at = mark_index(s, &q->writer_id, &found);
	if (found && q->time < s->writer_marks[at]->time) {
		return fsm_fail(res, STRATA_EINVAL,
		                "time %" PRId64 " is before this writer's last "
		                "note on %s/%s (%" PRId64 "); times must not "
		                "go back",
		                q->time, q->scope, q->stream,
		                s->writer_marks[at]->time);
	}
	if (!found && s->n_writer_marks >= WM_MAX_WRITERS) {
		return fsm_fail(res, STRATA_ENOSPC,
		                "%d writers already note time on %s/%s; close "
		                "writers (their marks go) or let idle ones "
		                "time out",
		                WM_MAX_WRITERS, q->scope, q->stream);
	}
	/* Build the new mark before touching the record. */
	Strata__V1__WriterMark *m =
	        pb_new(&strata__v1__writer_mark__descriptor);
	if (m == NULL ||
	    (m->writer_id.data = strata_malloc(WM_ID_LEN)) == NULL ||
	    pb_reserve(&m->positions, 0, q->n_positions,
	               sizeof(*m->positions)) != 0 ||
	    (!found && pb_reserve(&s->writer_marks, s->n_writer_marks, 1,
	                          sizeof(*s->writer_marks)) != 0)) {
		pb_free(m);
		return fsm_fail(res, STRATA_ENOMEM,
		                "out of memory noting time on %s/%s", q->scope,
		                q->stream);
	}
	memcpy(m->writer_id.data, q->writer_id.data, WM_ID_LEN);
	m->writer_id.len = WM_ID_LEN;
	m->time = q->time;
	m->noted_ms = c->now_ms;
	for (size_t i = 0; i < q->n_positions; i++) {
		Strata__V1__SegmentOffset *p =
		        pb_new(&strata__v1__segment_offset__descriptor);
		if (p == NULL) {
			pb_free(m);
			return fsm_fail(res, STRATA_ENOMEM,
			                "out of memory noting time on %s/%s",
			                q->scope, q->stream);
		}
		p->segment_id = q->positions[i]->segment_id;
		p->offset = q->positions[i]->offset;
		m->positions[m->n_positions++] = p;
	}
	fsm_sort(m->positions, m->n_positions, sizeof(*m->positions),
	         cmp_position);
	if (found) {
		pb_free(s->writer_marks[at]);
		s->writer_marks[at] = m;
	} else {
		memmove(s->writer_marks + at + 1, s->writer_marks + at,
		        (s->n_writer_marks - at) * sizeof(*s->writer_marks));
		s->writer_marks[at] = m;
		s->n_writer_marks++;
	}
	return 0;
}

int watermarks_remove_writer(struct cfsm *f,
                             const Strata__V1__RemoveWriterCmd *c,
                             struct cfsm_result *res)
{
	const Strata__V1__RemoveWriterRequest *q = c->request;
	Strata__V1__StreamRecord *s;
	int rc = fsm_stream_get(f->st, q->scope, q->stream, &s, res);
	if (rc != 0 ||
	    (rc = check_id(&q->writer_id, q->scope, q->stream, res)) != 0) {
		return rc;
	}
	bool found;
	size_t at = mark_index(s, &q->writer_id, &found);
	if (found) { /* an unknown writer is already gone */
		pb_free(s->writer_marks[at]);
		pb_remove_at((void **)s->writer_marks, &s->n_writer_marks, at);
	}
	return 0;
}

/* --- the round --- */

/* One candidate position while a watermark is built. */
struct cand {
	uint64_t id;
	int64_t offset;
	double low, high;
};

/* Add (id, offset) to the n candidates: the highest offset per segment. */
static void cand_add(const Strata__V1__StreamRecord *s, struct cand *cs,
                     size_t *n, uint64_t id, int64_t offset)
{
	for (size_t i = 0; i < *n; i++) {
		if (cs[i].id == id) {
			if (offset > cs[i].offset) {
				cs[i].offset = offset;
			}
			return;
		}
	}
	const Strata__V1__Segment *g = fsm_find_segment(s, id);
	if (g == NULL) {
		return; /* checked at the note; a snapshot from a bad peer */
	}
	cs[*n] = (struct cand){id, offset, g->low, g->high};
	(*n)++;
}

/* Is candidate i replaced by a newer candidate overlapping its range? */
static bool superseded(const struct cand *cs, size_t n, size_t i)
{
	for (size_t j = 0; j < n; j++) {
		if (SEG_EPOCH(cs[j].id) > SEG_EPOCH(cs[i].id) &&
		    cs[j].low < cs[i].high && cs[i].low < cs[j].high) {
			return true;
		}
	}
	return false;
}

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id ? 1 : 0;
}

/* Drop marks noted before cutoff (cannot fail). */
static void expire_marks(Strata__V1__StreamRecord *s, uint64_t cutoff)
{
	size_t k = 0;
	for (size_t i = 0; i < s->n_writer_marks; i++) {
		if (s->writer_marks[i]->noted_ms < cutoff) {
			pb_free(s->writer_marks[i]);
		} else {
			s->writer_marks[k++] = s->writer_marks[i];
		}
	}
	s->n_writer_marks = k;
}

/* What a round at cutoff (marks noted before it go) would do to s: the
 * bounds of the marks that count, whether to record a watermark, whether
 * a mark expires, and how many positions the candidates may hold. */
struct round {
	bool record;
	bool expire;
	int64_t lower, upper;
	size_t cap;
};

static struct round round_of(const Strata__V1__StreamRecord *s, uint64_t cutoff)
{
	const Strata__V1__Watermark *prev =
	        s->n_watermarks > 0 ? s->watermarks[s->n_watermarks - 1] : NULL;
	struct round r = {.cap = prev != NULL ? prev->n_positions : 0};
	bool any = false;
	for (size_t i = 0; i < s->n_writer_marks; i++) {
		const Strata__V1__WriterMark *m = s->writer_marks[i];
		if (m->noted_ms < cutoff) {
			r.expire = true;
			continue;
		}
		r.cap += m->n_positions;
		r.lower = !any || m->time < r.lower ? m->time : r.lower;
		r.upper = !any || m->time > r.upper ? m->time : r.upper;
		any = true;
	}
	r.record = any && (prev == NULL || r.lower > prev->lower_time);
	return r;
}

static uint64_t cutoff_of(uint64_t now_ms, uint64_t timeout_ms)
{
	return now_ms > timeout_ms ? now_ms - timeout_ms : 0;
}

int watermarks_compute(struct cfsm *f, const Strata__V1__ComputeWatermarkCmd *c,
                       struct cfsm_result *res)
{
	Strata__V1__StreamRecord *s;
	int rc = fsm_stream_get(f->st, c->scope, c->stream, &s, res);
	if (rc != 0) {
		return rc;
	}
	if (c->writer_timeout_ms == 0) {
		return fsm_fail(res, STRATA_EINVAL,
		                "compute watermark of %s/%s: writer timeout 0; "
		                "the leader sends watermark.writer_timeout",
		                c->scope, c->stream);
	}
	uint64_t cutoff = cutoff_of(c->now_ms, c->writer_timeout_ms);
	const Strata__V1__Watermark *prev =
	        s->n_watermarks > 0 ? s->watermarks[s->n_watermarks - 1] : NULL;
	struct round r = round_of(s, cutoff);
	if (!r.record) {
		expire_marks(s, cutoff);
		return 0;
	}
	/* Everything that can fail first. */
	struct cand *cs = strata_calloc(r.cap + 1, sizeof(*cs));
	Strata__V1__Watermark *w = pb_new(&strata__v1__watermark__descriptor);
	if (cs == NULL || w == NULL ||
	    pb_reserve(&s->watermarks, s->n_watermarks, 1,
	               sizeof(*s->watermarks)) != 0) {
		goto oom;
	}
	size_t n = 0;
	for (size_t i = 0; prev != NULL && i < prev->n_positions; i++) {
		cand_add(s, cs, &n, prev->positions[i]->segment_id,
		         prev->positions[i]->offset);
	}
	for (size_t i = 0; i < s->n_writer_marks; i++) {
		const Strata__V1__WriterMark *m = s->writer_marks[i];
		for (size_t k = 0; m->noted_ms >= cutoff && k < m->n_positions;
		     k++) {
			cand_add(s, cs, &n, m->positions[k]->segment_id,
			         m->positions[k]->offset);
		}
	}
	fsm_sort(cs, n, sizeof(*cs), cmp_cand);
	if (pb_reserve(&w->positions, 0, n, sizeof(*w->positions)) != 0) {
		goto oom;
	}
	for (size_t i = 0; i < n; i++) {
		if (superseded(cs, n, i)) {
			continue;
		}
		Strata__V1__WatermarkPosition *p =
		        pb_new(&strata__v1__watermark_position__descriptor);
		if (p == NULL) {
			goto oom;
		}
		p->segment_id = cs[i].id;
		p->offset = cs[i].offset;
		p->low = cs[i].low;
		p->high = cs[i].high;
		w->positions[w->n_positions++] = p;
	}
	strata_free(cs);
	w->lower_time = r.lower;
	w->upper_time = r.upper;
	w->created_ms = c->now_ms;
	w->index = ++s->next_watermark_index;
	if (s->n_watermarks >= WM_MAX_KEPT) {
		pb_free(s->watermarks[0]);
		pb_remove_at((void **)s->watermarks, &s->n_watermarks, 0);
	}
	s->watermarks[s->n_watermarks++] = w;
	expire_marks(s, cutoff);
	return 0;
oom:
	strata_free(cs);
	pb_free(w);
	return fsm_fail(res, STRATA_ENOMEM,
	                "out of memory computing the watermark of %s/%s",
	                c->scope, c->stream);
}

int cfsm_watermarks(const struct cfsm *fsm, const char *scope,
                    const char *stream, uint64_t after_index,
                    Strata__V1__WatermarksReply **out, char *errmsg)
{
	struct cfsm_result r = {0};
	Strata__V1__StreamRecord *s;
	int rc = fsm_stream_get(fsm->st, scope, stream, &s, &r);
	if (rc != 0) {
		errmsg_set(errmsg, "%s", r.message);
		return rc;
	}
	size_t from = 0;
	while (from < s->n_watermarks &&
	       s->watermarks[from]->index <= after_index) {
		from++;
	}
	Strata__V1__WatermarksReply *rep =
	        pb_new(&strata__v1__watermarks_reply__descriptor);
	if (rep == NULL ||
	    pb_reserve(&rep->watermarks, 0, s->n_watermarks - from,
	               sizeof(*rep->watermarks)) != 0) {
		goto oom;
	}
	for (size_t i = from; i < s->n_watermarks; i++) {
		Strata__V1__Watermark *w = pb_clone(s->watermarks[i]);
		if (w == NULL) {
			goto oom;
		}
		rep->watermarks[rep->n_watermarks++] = w;
	}
	*out = rep;
	return 0;
oom:
	pb_free(rep);
	errmsg_set(errmsg, "out of memory building the watermarks of %s/%s",
	           scope, stream);
	return STRATA_ENOMEM;
}

bool cfsm_watermark_due(const Strata__V1__StreamRecord *s, uint64_t now_ms,
                        uint64_t writer_timeout_ms)
{
	if (s->n_writer_marks == 0) {
		return false;
	}
	struct round r = round_of(s, cutoff_of(now_ms, writer_timeout_ms));
	return r.record || r.expire;
}
