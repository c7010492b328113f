/* Stream retention, the FSM's part: tail cuts the leader records, and the
 * truncation they allow.
 *
 * happy path: every retention interval the leader reads the tail of each
 * stream with a retention policy (current segments at their lengths) and
 * applies RecordRetentionCutCmd; the cut is kept with its time and the
 * bytes before it; the newest kept cut that leaves the policy's amount
 * (time or bytes) after it becomes a TRUNCATE workflow, and kept cuts up
 * to it are dropped. Reader groups with consumption-based retention
 * (subscribers, readergroups.c) hold the truncation at the cuts they
 * released, down to the policy's max.
 * failure modes: a cut that does not match the stream (unknown or deleted
 * segments, not covering [0,1)), or read from a stream of the same name
 * that was deleted since (created_ms differs), is EINVAL and changes
 * nothing; a stream
 * busy with a workflow keeps the cut and truncates at a later record;
 * clocks of a new leader that run behind are clamped to the last record.
 * The kept cuts are bounded (RETENTION_MAX_CUTS): when full, the one whose
 * neighbours are closest in time goes, so old history thins out evenly.
 */
#include "controller/fsm_int.h"

#include <inttypes.h>
#include <string.h>

#define RETENTION_MAX_CUTS 128

/* Length of segment id when sealed; 0 when unknown. */
static uint64_t sealed_size(const Strata__V1__StreamRecord *s, uint64_t id)
{
	for (size_t i = 0; i < s->n_sealed_sizes; i++) {
		if (s->sealed_sizes[i]->segment_id == id) {
			return s->sealed_sizes[i]->size;
		}
	}
	return 0;
}

/* Bytes of the stream before cut: every segment wholly before it (at its
 * sealed length) plus the cut's offsets. */
static uint64_t size_before(const Strata__V1__StreamRecord *s,
                            const Strata__V1__StreamCut *cut)
{
	uint64_t n = 0;
	for (size_t e = 0; e < s->n_epochs; e++) {
		const Strata__V1__Epoch *ep = s->epochs[e];
		for (size_t i = 0; i < ep->n_segments; i++) {
			const Strata__V1__Segment *g = ep->segments[i];
			if (SEG_EPOCH(g->id) == ep->epoch &&
			    fsm_before_cut(s, cut, g)) {
				n += sealed_size(s, g->id);
			}
		}
	}
	for (size_t i = 0; i < cut->n_positions; i++) {
		int64_t off = cut->positions[i]->offset;
		n += off > 0 ? (uint64_t)off : 0;
	}
	return n;
}

/* The amount the policy keeps: min, or max when min is 0; 0 = none. */
static uint64_t keep_limit(const Strata__V1__RetentionBound *b)
{
	return b == NULL ? 0 : b->min != 0 ? b->min : b->max;
}

/* The reader groups with consumption-based retention that read scope/s
 * (subscribers): how many, and in *all (when cut is given) whether every
 * one of them released the stream at least up to cut. A group that has
 * released nothing yet holds the stream at its head. */
static size_t subscribers(const Strata__V1__ControllerState *st,
                          const char *scope, const Strata__V1__StreamRecord *s,
                          const Strata__V1__StreamCut *cut, bool *all)
{
	size_t n = 0;
	for (size_t i = 0; i < st->n_scopes; i++) {
		const Strata__V1__ScopeRecord *sc = st->scopes[i];
		for (size_t j = 0; j < sc->n_reader_groups; j++) {
			const Strata__V1__ReaderGroupConfig *g =
			        sc->reader_groups[j];
			for (size_t k = 0; k < g->n_released; k++) {
				const Strata__V1__ReleasedCut *r =
				        g->released[k];
				if (strcmp(r->scope, scope) != 0 ||
				    strcmp(r->stream, s->name) != 0) {
					continue;
				}
				n++;
				if (cut != NULL &&
				    (r->cut == NULL ||
				     r->cut->n_positions == 0 ||
				     fsm_cut_behind(s, r->cut, cut, NULL))) {
					*all = false;
				}
			}
		}
	}
	return n;
}

/* Index of the newest kept cut retention may truncate at, judged at
 * cuts[newest]; -1 when none. Without subscribers: the newest cut that
 * leaves the policy's amount after it. With them (Pravega's
 * consumption-based retention): the newest cut every subscriber has
 * released that still leaves min after it, or, when that is older, the
 * newest cut that leaves max (max > 0): max bounds what a slow group
 * holds back. */
static long truncation_point(const Strata__V1__ControllerState *st,
                             const char *scope,
                             const Strata__V1__StreamRecord *s, uint64_t now)
{
	const Strata__V1__RetentionPolicy *p = s->config->retention;
	bool by_time =
	        p->policy_case == STRATA__V1__RETENTION_POLICY__POLICY_BY_TIME;
	const Strata__V1__RetentionBound *b = by_time ? p->by_time : p->by_size;
	if (b == NULL || s->n_retention_cuts == 0) {
		return -1;
	}
	uint64_t tail = s->retention_cuts[s->n_retention_cuts - 1]->size;
	bool subs = subscribers(st, scope, s, NULL, NULL) > 0;
	uint64_t limit = subs ? b->min : keep_limit(b);
	if (!subs && limit == 0) {
		return -1;
	}
	long sub = -1, cap = -1;
	for (size_t i = s->n_retention_cuts; i-- > 0;) {
		const Strata__V1__RetentionCut *c = s->retention_cuts[i];
		uint64_t kept = by_time ? now - c->time_ms : tail - c->size;
		if (!subs) {
			if (kept >= limit) {
				return (long)i;
			}
			continue;
		}
		if (cap < 0 && b->max != 0 && kept >= b->max) {
			cap = (long)i;
		}
		bool all = true;
		if (sub < 0 && kept >= limit) {
			(void)subscribers(st, scope, s, c->cut, &all);
			if (all) {
				sub = (long)i;
			}
		}
		if (sub >= 0 && (cap >= 0 || b->max == 0)) {
			break;
		}
	}
	return sub > cap ? sub : cap;
}

/* Drop cuts[0..n) (moved out by the caller or freed here). */
static void drop_oldest(Strata__V1__StreamRecord *s, size_t n, bool free_them)
{
	for (size_t i = 0; free_them && i < n; i++) {
		pb_free(s->retention_cuts[i]);
	}
	memmove(s->retention_cuts, s->retention_cuts + n,
	        (s->n_retention_cuts - n) * sizeof(*s->retention_cuts));
	s->n_retention_cuts -= n;
}

/* Full: drop the inner cut whose neighbours are closest in time. */
static void thin(Strata__V1__StreamRecord *s)
{
	size_t best = 1;
	uint64_t gap = UINT64_MAX;
	for (size_t i = 1; i + 1 < s->n_retention_cuts; i++) {
		uint64_t g = s->retention_cuts[i + 1]->time_ms -
		             s->retention_cuts[i - 1]->time_ms;
		if (g < gap) {
			gap = g;
			best = i;
		}
	}
	pb_free(s->retention_cuts[best]);
	pb_remove_at((void **)s->retention_cuts, &s->n_retention_cuts, best);
}

int retention_record(struct cfsm *f, const Strata__V1__RecordRetentionCutCmd *c,
                     struct cfsm_result *res)
{
	Strata__V1__StreamRecord *s;
	int rc = fsm_stream_get(f->st, c->scope, c->stream, &s, res);
	if (rc != 0) {
		return rc;
	}
	const Strata__V1__RetentionPolicy *p = s->config->retention;
	if (p == NULL ||
	    p->policy_case == STRATA__V1__RETENTION_POLICY__POLICY__NOT_SET) {
		return fsm_fail(res, STRATA_EINVAL,
		                "stream %s/%s has no retention policy; record "
		                "retention cuts only for streams with one",
		                c->scope, c->stream);
	}
	if (s->state != SS_ACTIVE && s->state != SS_TRUNCATING &&
	    s->state != SS_SCALING) {
		return fsm_fail(res, STRATA_ESEALED,
		                "stream %s/%s is not active; retention "
		                "applies to active streams",
		                c->scope, c->stream);
	}
	if (c->stream_created_ms != 0 &&
	    c->stream_created_ms != s->created_ms) {
		return fsm_fail(res, STRATA_EINVAL,
		                "stream %s/%s was deleted and created again "
		                "since this tail was read; the next pass "
		                "records the new one",
		                c->scope, c->stream);
	}
	if ((rc = fsm_check_cut(s, c->scope, c->cut, res)) != 0) {
		return rc;
	}
	uint64_t now = c->now_ms;
	if (s->n_retention_cuts > 0 &&
	    now < s->retention_cuts[s->n_retention_cuts - 1]->time_ms) {
		now = s->retention_cuts[s->n_retention_cuts - 1]->time_ms;
	}
	/* Everything that can fail first: the state stays as it was. */
	Strata__V1__RetentionCut *rec =
	        pb_new(&strata__v1__retention_cut__descriptor);
	if (rec == NULL || (rec->cut = pb_clone(c->cut)) == NULL ||
	    pb_reserve(&s->retention_cuts, s->n_retention_cuts, 1,
	               sizeof(*s->retention_cuts)) != 0) {
		pb_free(rec);
		return fsm_fail(res, STRATA_ENOMEM,
		                "out of memory recording a retention cut of "
		                "%s/%s",
		                c->scope, c->stream);
	}
	rec->time_ms = now;
	rec->size = size_before(s, rec->cut);
	s->retention_cuts[s->n_retention_cuts++] = rec;

	long at = s->workflow_id == 0
	                  ? truncation_point(f->st, c->scope, s, now)
	                  : -1;
	if (at >= 0) {
		Strata__V1__TruncateStreamRequest q =
		        STRATA__V1__TRUNCATE_STREAM_REQUEST__INIT;
		Strata__V1__TruncateStreamCmd t =
		        STRATA__V1__TRUNCATE_STREAM_CMD__INIT;
		q.scope = c->scope;
		q.stream = c->stream;
		q.cut = s->retention_cuts[at]->cut;
		t.request = &q;
		struct cfsm_result tr = {0};
		if (workflows_truncate(f, &t, &tr) == 0) {
			res->workflow_id = tr.workflow_id;
			drop_oldest(s, (size_t)at + 1, true);
		} else if (tr.code == STRATA_EINVAL) {
			/* Behind the truncation point already (a manual
			 * truncation went further): these cuts are spent. */
			drop_oldest(s, (size_t)at + 1, true);
		}
	}
	if (s->n_retention_cuts > RETENTION_MAX_CUTS) {
		thin(s);
	}
	return 0;
}
