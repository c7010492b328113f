/* Controller workflows: create/scale/seal/truncate/delete/remove stream as
 * durable, resumable, idempotent state machines recorded in the FSM.
 *
 * happy path: a command validates and records {id, kind, stream, step,
 * params} and locks the stream (stream->workflow_id); the leader reads
 * cfsm_pending_actions(), performs them on the segment stores, then applies
 * WorkflowStepDone{id, step}; the last step unlocks the stream and forgets
 * the workflow.
 * failure modes: a leader that dies leaves the record, so the next leader
 * performs the same step again (segment-store operations are idempotent);
 * a replayed WorkflowStepDone for a passed step or a finished workflow
 * (id < next_workflow_id) is a no-op returning success.
 */
#include "controller/fsm_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

/* ------------------------------------------------------------- helpers -- */

/* A new workflow record (not linked); NULL on OOM. */
static Strata__V1__Workflow *wf_new(const Strata__V1__ControllerState *st,
                                    int kind, const char *scope,
                                    const char *stream, int step,
                                    uint64_t now_ms)
{
	Strata__V1__Workflow *w = pb_new(&strata__v1__workflow__descriptor);
	if (w == NULL || pb_strdup(&w->scope, scope) != 0 ||
	    pb_strdup(&w->stream, stream) != 0) {
		pb_free(w);
		return NULL;
	}
	w->id = st->next_workflow_id;
	w->kind = kind;
	w->step = step;
	w->started_ms = now_ms;
	return w;
}

/* Link w (workflows array already reserved) and lock its stream. */
static void wf_link(Strata__V1__ControllerState *st, Strata__V1__Workflow *w,
                    Strata__V1__StreamRecord *s, struct cfsm_result *res)
{
	st->workflows[st->n_workflows++] = w;
	st->next_workflow_id++;
	s->workflow_id = w->id;
	res->workflow_id = w->id;
}

/* Forget a finished workflow and unlock its stream (s may be NULL). */
static void wf_finish(Strata__V1__ControllerState *st, Strata__V1__Workflow *w,
                      Strata__V1__StreamRecord *s)
{
	for (size_t i = 0; i < st->n_workflows; i++) {
		if (st->workflows[i] == w) {
			pb_remove_at((void **)st->workflows, &st->n_workflows,
			             i);
			break;
		}
	}
	if (s != NULL) {
		s->workflow_id = 0;
	}
	pb_free(w);
}

static int oom(struct cfsm_result *res, const char *what, const char *scope,
               const char *stream)
{
	return fsm_fail(res, STRATA_ENOMEM, "out of memory: %s %s/%s", what,
	                scope, stream);
}

/* A workflow must not start while another runs on the stream. */
static int check_idle(const Strata__V1__StreamRecord *s, const char *scope,
                      struct cfsm_result *res)
{
	if (s->workflow_id != 0) {
		return fsm_fail(res, STRATA_EBUSY,
		                "stream %s/%s is busy with workflow %" PRIu64
		                "; retry when it completes",
		                scope, s->name, s->workflow_id);
	}
	return 0;
}

static Strata__V1__Segment *seg_new(uint64_t id, double low, double high)
{
	Strata__V1__Segment *g = pb_new(&strata__v1__segment__descriptor);
	if (g != NULL) {
		g->id = id;
		g->low = low;
		g->high = high;
	}
	return g;
}

static int cmp_seg_low(const void *a, const void *b)
{
	const Strata__V1__Segment *x = *(Strata__V1__Segment *const *)a;
	const Strata__V1__Segment *y = *(Strata__V1__Segment *const *)b;
	return x->low < y->low ? -1 : x->low > y->low;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static bool ids_has(const uint64_t *ids, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++) {
		if (ids[i] == id) {
			return true;
		}
	}
	return false;
}

/* ------------------------------------------------------- create stream -- */

int workflows_create_stream(struct cfsm *f,
                            const Strata__V1__CreateStreamCmd *c,
                            struct cfsm_result *res)
{
	const Strata__V1__CreateStreamRequest *r = c->request;
	Strata__V1__ControllerState *st = f->st;
	Strata__V1__ScopeRecord *sc = fsm_scope(st, r->scope);
	if (sc == NULL) {
		return fsm_fail(
		        res, STRATA_ENOENT,
		        "scope \"%.64s\" does not exist; create it before "
		        "stream \"%.64s\"",
		        r->scope, r->stream);
	}
	int rc = names_check(r->stream, "stream", c->internal, res);
	if (rc != 0) {
		return rc;
	}
	bool found;
	size_t at = fsm_stream_index(sc, r->stream, &found);
	if (found) {
		return fsm_fail(
		        res, STRATA_EEXIST,
		        "stream %s/%s already exists; use it, or seal and "
		        "delete it first",
		        r->scope, r->stream);
	}
	rc = names_check_config(r->config, res);
	if (rc != 0) {
		return rc;
	}
	uint32_t n = names_min_segments(r->config->scaling);

	Strata__V1__Workflow *w = wf_new(st, WK_CREATE, r->scope, r->stream,
	                                 WS_CREATE, c->now_ms);
	Strata__V1__StreamRecord *s =
	        pb_new(&strata__v1__stream_record__descriptor);
	Strata__V1__Epoch *ep = pb_new(&strata__v1__epoch__descriptor);
	if (w == NULL || s == NULL || ep == NULL ||
	    pb_strdup(&s->name, r->stream) != 0 ||
	    (s->config = pb_clone(r->config)) == NULL ||
	    pb_reserve(&s->epochs, 0, 1, sizeof(*s->epochs)) != 0) {
		goto err_oom;
	}
	s->epochs[s->n_epochs++] = ep;
	ep->created_ms = c->now_ms;
	if (pb_reserve(&ep->segments, 0, n, sizeof(*ep->segments)) != 0) {
		goto err_oom;
	}
	for (uint32_t i = 0; i < n; i++) {
		double low = (double)i / n, high = (double)(i + 1) / n;
		Strata__V1__Segment *g = seg_new(SEG_ID(0, i), low, high);
		if (g == NULL) {
			goto err_oom;
		}
		ep->segments[ep->n_segments++] = g;
	}
	if (pb_reserve(&sc->streams, sc->n_streams, 1, sizeof(*sc->streams)) !=
	            0 ||
	    pb_reserve(&st->workflows, st->n_workflows, 1,
	               sizeof(*st->workflows)) != 0) {
		goto err_oom;
	}
	names_normalize_tags(s->config);
	s->state = SS_CREATING;
	s->next_segment_number = n;
	s->created_ms = c->now_ms;
	memmove(&sc->streams[at + 1], &sc->streams[at],
	        (sc->n_streams - at) * sizeof(*sc->streams));
	sc->streams[at] = s;
	sc->n_streams++;
	wf_link(st, w, s, res);
	for (uint32_t i = 0; i < n; i++) {
		res->segment_ids[res->n_segment_ids++] = SEG_ID(0, i);
	}
	return 0;

err_oom:
	if (s == NULL || s->n_epochs == 0) {
		pb_free(ep); /* not linked into s yet */
	}
	pb_free(w);
	pb_free(s);
	return oom(res, "creating stream", r->scope, r->stream);
}

int workflows_create_internal(struct cfsm *f, const char *scope,
                              const char *stream, uint64_t now_ms,
                              struct cfsm_result *res)
{
	Strata__V1__FixedScaling fixed = STRATA__V1__FIXED_SCALING__INIT;
	Strata__V1__ScalingPolicy pol = STRATA__V1__SCALING_POLICY__INIT;
	Strata__V1__StreamConfig cfg = STRATA__V1__STREAM_CONFIG__INIT;
	Strata__V1__CreateStreamRequest r =
	        STRATA__V1__CREATE_STREAM_REQUEST__INIT;
	Strata__V1__CreateStreamCmd c = STRATA__V1__CREATE_STREAM_CMD__INIT;
	fixed.min_segments = 1;
	pol.policy_case = STRATA__V1__SCALING_POLICY__POLICY_FIXED;
	pol.fixed = &fixed;
	cfg.scaling = &pol;
	r.scope = (char *)scope;
	r.stream = (char *)stream;
	r.config = &cfg;
	c.request = &r;
	c.now_ms = now_ms;
	c.internal = true;
	return workflows_create_stream(f, &c, res);
}

/* --------------------------------------------------------------- scale -- */

/* A key range as given in a scale request. */
struct range {
	double low, high;
};

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;
	return x->low < y->low ? -1 : x->low > y->low;
}

/* Check the sealed segments and new ranges of a scale; fills sealed[]
 * (sorted ids) and ranges[] (sorted). */
static int scale_check(const Strata__V1__StreamRecord *s, const char *scope,
                       const Strata__V1__ScaleStreamRequest *r,
                       uint64_t *sealed, struct range *ranges,
                       struct cfsm_result *res)
{
	const Strata__V1__Epoch *cur = fsm_current_epoch(s);
	const char *name = s->name;
	if (r->n_seal_segments == 0 || r->n_new_ranges == 0) {
		return fsm_fail(res, STRATA_EINVAL,
		                "scale of %s/%s needs at least one segment to "
		                "seal and one new key range",
		                scope, name);
	}
	struct range *old = (struct range *)ranges + r->n_new_ranges;
	for (size_t i = 0; i < r->n_seal_segments; i++) {
		uint64_t id = r->seal_segments[i];
		const Strata__V1__Segment *g = NULL;
		for (size_t j = 0; j < cur->n_segments; j++) {
			if (cur->segments[j]->id == id) {
				g = cur->segments[j];
			}
		}
		if (g == NULL) {
			return fsm_fail(res, STRATA_EINVAL,
			                "segment " SEG_FMT " is not in the "
			                "current epoch %u of %s/%s; scale only "
			                "current segments (list them first)",
			                SEG_ARGS(id), cur->epoch, scope, name);
		}
		if (ids_has(sealed, i, id)) {
			return fsm_fail(res, STRATA_EINVAL,
			                "segment " SEG_FMT
			                " is listed twice in "
			                "the scale of %s/%s; list each once",
			                SEG_ARGS(id), scope, name);
		}
		sealed[i] = id;
		old[i].low = g->low;
		old[i].high = g->high;
	}
	for (size_t i = 0; i < r->n_new_ranges; i++) {
		const Strata__V1__KeyRange *k = r->new_ranges[i];
		if (!(k->low >= 0.0 && k->low < k->high && k->high <= 1.0)) {
			return fsm_fail(
			        res, STRATA_EINVAL,
			        "new key range [%g, %g) of the scale of "
			        "%s/%s is invalid; use 0 <= low < high "
			        "<= 1",
			        k->low, k->high, scope, name);
		}
		ranges[i].low = k->low;
		ranges[i].high = k->high;
	}
	/* Each sealed id is current and unique, so this cannot wrap. */
	if (cur->n_segments - r->n_seal_segments + r->n_new_ranges >
	    CFSM_MAX_SEGMENTS) {
		return fsm_fail(res, STRATA_EINVAL,
		                "scale of %s/%s would leave more than %d "
		                "segments; create fewer new ranges",
		                scope, name, CFSM_MAX_SEGMENTS);
	}
	fsm_sort(sealed, r->n_seal_segments, sizeof(*sealed), cmp_u64);
	fsm_sort(old, r->n_seal_segments, sizeof(*old), cmp_range);
	fsm_sort(ranges, r->n_new_ranges, sizeof(*ranges), cmp_range);
	for (size_t i = 1; i < r->n_seal_segments; i++) {
		if (old[i].low != old[i - 1].high) {
			return fsm_fail(res, STRATA_EINVAL,
			                "segments sealed by the scale of %s/%s "
			                "are not adjacent (gap at %g); seal "
			                "neighbouring segments only",
			                scope, name, old[i - 1].high);
		}
	}
	double lo = old[0].low, hi = old[r->n_seal_segments - 1].high;
	double at = lo;
	for (size_t i = 0; i < r->n_new_ranges; i++) {
		if (ranges[i].low != at) {
			break;
		}
		at = ranges[i].high;
		if (i == r->n_new_ranges - 1 && at == hi) {
			return 0;
		}
	}
	return fsm_fail(res, STRATA_EINVAL,
	                "new key ranges of the scale of %s/%s do not exactly "
	                "cover [%g, %g), the range of the sealed segments "
	                "(gap, overlap or excess near %g); give contiguous "
	                "ranges covering it",
	                scope, name, lo, hi, at);
}

int workflows_scale(struct cfsm *f, const Strata__V1__ScaleStreamCmd *c,
                    struct cfsm_result *res)
{
	const Strata__V1__ScaleStreamRequest *r = c->request;
	Strata__V1__ControllerState *st = f->st;
	Strata__V1__StreamRecord *s;
	int rc = fsm_stream_get(st, r->scope, r->stream, &s, res);
	if (rc != 0) {
		return rc;
	}
	if (s->state == SS_SEALED || s->state == SS_SEALING ||
	    s->state == SS_DELETING) {
		return fsm_fail(
		        res, STRATA_ESEALED,
		        "stream %s/%s is sealed; it can no longer scale",
		        r->scope, r->stream);
	}
	if ((rc = check_idle(s, r->scope, res)) != 0) {
		return rc;
	}
	if (txns_count(s, TS_COMMITTING) > 0) {
		return fsm_fail(
		        res, STRATA_EBUSY,
		        "stream %s/%s is committing transactions; retry "
		        "the scale when they complete",
		        r->scope, r->stream);
	}
	if (r->n_seal_segments > CFSM_MAX_SEGMENTS ||
	    r->n_new_ranges > CFSM_MAX_SEGMENTS) {
		return fsm_fail(res, STRATA_EINVAL,
		                "scale of %s/%s lists more than %d segments or "
		                "ranges; split it into smaller scales",
		                r->scope, r->stream, CFSM_MAX_SEGMENTS);
	}
	uint64_t *sealed = strata_calloc(r->n_seal_segments + 1, 8);
	struct range *ranges = strata_calloc(
	        r->n_new_ranges + r->n_seal_segments + 1, sizeof(*ranges));
	Strata__V1__Workflow *w = NULL;
	Strata__V1__ScaleParams *p = NULL;
	if (sealed == NULL || ranges == NULL) {
		rc = oom(res, "scaling", r->scope, r->stream);
		goto out;
	}
	rc = scale_check(s, r->scope, r, sealed, ranges, res);
	if (rc != 0) {
		goto out;
	}
	uint32_t epoch = fsm_current_epoch(s)->epoch + 1;
	w = wf_new(st, WK_SCALE, r->scope, r->stream, WS_CREATE, c->now_ms);
	p = pb_new(&strata__v1__scale_params__descriptor);
	if (w == NULL || p == NULL ||
	    pb_reserve(&p->seal, 0, r->n_seal_segments, sizeof(*p->seal)) !=
	            0 ||
	    pb_reserve(&p->successors, 0, r->n_new_ranges,
	               sizeof(*p->successors)) != 0 ||
	    pb_reserve(&st->workflows, st->n_workflows, 1,
	               sizeof(*st->workflows)) != 0) {
		goto err_oom;
	}
	memcpy(p->seal, sealed, r->n_seal_segments * sizeof(*sealed));
	p->n_seal = r->n_seal_segments;
	for (size_t i = 0; i < r->n_new_ranges; i++) {
		uint64_t id = SEG_ID(epoch, s->next_segment_number + i);
		Strata__V1__Segment *g =
		        seg_new(id, ranges[i].low, ranges[i].high);
		if (g == NULL) {
			goto err_oom;
		}
		p->successors[p->n_successors++] = g;
	}
	w->params_case = STRATA__V1__WORKFLOW__PARAMS_SCALE;
	w->scale = p;
	s->next_segment_number += (uint32_t)r->n_new_ranges;
	s->state = SS_SCALING;
	wf_link(st, w, s, res);
	for (size_t i = 0; i < p->n_successors; i++) {
		res->segment_ids[res->n_segment_ids++] = p->successors[i]->id;
	}
	rc = 0;
	goto out;

err_oom:
	pb_free(p); /* never linked into w on this path */
	pb_free(w);
	rc = oom(res, "scaling", r->scope, r->stream);
out:
	strata_free(sealed);
	strata_free(ranges);
	return rc;
}

/* ---------------------------------------------------------------- roll -- */

/* Most segment numbers tried for a copy that must land in one container:
 * each number hits it with probability 1/containers. */
#define ROLL_TRIES_PER_CONTAINER 64u

/* The first number n >= *next whose segment SEG_ID(epoch, n) lands in
 * container want; *next moves past it (the numbers passed over stay
 * unused). STRATA_ENOSPC when none is found. */
static int roll_number(const struct cfsm *f, const char *scope,
                       const char *stream, uint32_t epoch, uint32_t want,
                       uint32_t *next, uint32_t *out)
{
	uint64_t tries =
	        (uint64_t)f->st->container_count * ROLL_TRIES_PER_CONTAINER;
	for (uint64_t i = 0; i < tries; i++) {
		uint64_t n = (uint64_t)*next + i;
		if (n > UINT32_MAX) {
			break;
		}
		if (cfsm_segment_container(f, scope, stream,
		                           SEG_ID(epoch, n)) == want) {
			*out = (uint32_t)n;
			*next = (uint32_t)n + 1;
			return 0;
		}
	}
	return STRATA_ENOSPC;
}

/* Copies of ep's segments as new segments of epoch; with parents set,
 * each copy goes to its original's container (parents[i] = its id). */
static int roll_copies(const struct cfsm *f, const char *scope,
                       const char *stream, const Strata__V1__Epoch *ep,
                       uint32_t epoch, uint32_t *next,
                       Strata__V1__Segment ***out, size_t *n_out,
                       uint64_t **parents, size_t *n_parents)
{
	if (pb_reserve(out, 0, ep->n_segments, sizeof(**out)) != 0 ||
	    (parents != NULL &&
	     pb_reserve(parents, 0, ep->n_segments, sizeof(**parents)) != 0)) {
		return STRATA_ENOMEM;
	}
	for (size_t i = 0; i < ep->n_segments; i++) {
		const Strata__V1__Segment *g = ep->segments[i];
		uint32_t number = *next;
		if (parents != NULL) {
			uint32_t want =
			        cfsm_segment_container(f, scope, stream, g->id);
			int rc = roll_number(f, scope, stream, epoch, want,
			                     next, &number);
			if (rc != 0) {
				return rc;
			}
			(*parents)[(*n_parents)++] = g->id;
		} else if (*next == UINT32_MAX) {
			return STRATA_ENOSPC;
		} else {
			(*next)++;
		}
		Strata__V1__Segment *c =
		        seg_new(SEG_ID(epoch, number), g->low, g->high);
		if (c == NULL) {
			return STRATA_ENOMEM;
		}
		(*out)[(*n_out)++] = c;
	}
	return 0;
}

/* Join t to the roll running on s when it rolls the same epoch and is
 * still creating its copies (Pravega rolls every committing transaction
 * of an epoch at once): 0 when joined, STRATA_EAGAIN when not. */
static int roll_join(struct cfsm *f, Strata__V1__StreamRecord *s,
                     const Strata__V1__Txn *t, struct cfsm_result *res)
{
	Strata__V1__Workflow *w = NULL;
	for (size_t i = 0; s->workflow_id != 0 && i < f->st->n_workflows; i++) {
		if (f->st->workflows[i]->id == s->workflow_id) {
			w = f->st->workflows[i];
		}
	}
	if (w == NULL || w->kind != WK_ROLL || w->step != WS_CREATE ||
	    w->roll->txn_epoch != t->epoch) {
		return STRATA_EAGAIN;
	}
	Strata__V1__RollParams *p = w->roll;
	if (pb_reserve(&p->joined, p->n_joined, 1, sizeof(*p->joined)) != 0) {
		return oom(res, "rolling a transaction of", w->scope,
		           w->stream);
	}
	p->joined[p->n_joined++] = t->id;
	res->workflow_id = w->id;
	return 0;
}

int workflows_roll(struct cfsm *f, Strata__V1__StreamRecord *s,
                   const char *scope, const Strata__V1__Txn *t, uint64_t now_ms,
                   struct cfsm_result *res)
{
	Strata__V1__ControllerState *st = f->st;
	int rc = roll_join(f, s, t, res);
	if (rc != STRATA_EAGAIN) {
		return rc;
	}
	rc = check_idle(s, scope, res);
	if (rc != 0) {
		return rc;
	}
	if (txns_count(s, TS_COMMITTING) > 0) {
		return fsm_fail(res, STRATA_EBUSY,
		                "stream %s/%s is committing other "
		                "transactions; retry the commit of %" PRIu64
		                " when they complete",
		                scope, s->name, t->id);
	}
	const Strata__V1__Epoch *cur = fsm_current_epoch(s);
	if (t->epoch >= cur->epoch || cur->epoch > UINT32_MAX - 2) {
		return fsm_fail(res, STRATA_EINTERNAL,
		                "transaction %" PRIu64 " of %s/%s: epoch %u "
		                "cannot roll into epoch %u",
		                t->id, scope, s->name, t->epoch, cur->epoch);
	}
	Strata__V1__Workflow *w =
	        wf_new(st, WK_ROLL, scope, s->name, WS_CREATE, now_ms);
	Strata__V1__RollParams *p =
	        pb_new(&strata__v1__roll_params__descriptor);
	if (w == NULL || p == NULL ||
	    pb_reserve(&st->workflows, st->n_workflows, 1,
	               sizeof(*st->workflows)) != 0 ||
	    pb_reserve(&p->seal, 0, cur->n_segments, sizeof(*p->seal)) != 0) {
		rc = STRATA_ENOMEM;
		goto err;
	}
	p->txn_id = t->id;
	p->txn_epoch = t->epoch;
	uint32_t next = s->next_segment_number;
	rc = roll_copies(f, scope, s->name, s->epochs[t->epoch], cur->epoch + 1,
	                 &next, &p->txn_copies, &p->n_txn_copies, &p->parents,
	                 &p->n_parents);
	if (rc == 0) {
		rc = roll_copies(f, scope, s->name, cur, cur->epoch + 2, &next,
		                 &p->successors, &p->n_successors, NULL, NULL);
	}
	if (rc != 0) {
		goto err;
	}
	for (size_t i = 0; i < cur->n_segments; i++) {
		p->seal[p->n_seal++] = cur->segments[i]->id;
	}
	fsm_sort(p->seal, p->n_seal, sizeof(*p->seal), cmp_u64);
	w->params_case = STRATA__V1__WORKFLOW__PARAMS_ROLL;
	w->roll = p;
	s->next_segment_number = next;
	s->state = SS_SCALING;
	wf_link(st, w, s, res);
	return 0;

err:
	pb_free(p); /* never linked into w on this path */
	pb_free(w);
	if (rc == STRATA_ENOSPC) {
		return fsm_fail(res, STRATA_ENOSPC,
		                "stream %s/%s has no segment number left for "
		                "rolling transaction %" PRIu64 "; abort it",
		                scope, s->name, t->id);
	}
	return oom(res, "rolling a transaction of", scope, s->name);
}

/* ---------------------------------------------------------------- seal -- */

int workflows_seal(struct cfsm *f, const Strata__V1__SealStreamCmd *c,
                   struct cfsm_result *res)
{
	const Strata__V1__SealStreamRequest *r = c->request;
	Strata__V1__ControllerState *st = f->st;
	Strata__V1__StreamRecord *s;
	int rc = fsm_stream_get(st, r->scope, r->stream, &s, res);
	if (rc != 0) {
		return rc;
	}
	if (s->state == SS_SEALED || s->state == SS_DELETING) {
		return 0; /* sealing is idempotent */
	}
	if (s->state == SS_SEALING) {
		res->workflow_id = s->workflow_id;
		return 0;
	}
	if ((rc = check_idle(s, r->scope, res)) != 0) {
		return rc;
	}
	if (txns_count(s, TS_COMMITTING) > 0) {
		return fsm_fail(
		        res, STRATA_EBUSY,
		        "stream %s/%s is committing transactions; retry "
		        "the seal when they complete",
		        r->scope, r->stream);
	}
	Strata__V1__Workflow *w =
	        wf_new(st, WK_SEAL, r->scope, r->stream, WS_SEAL, 0);
	if (w == NULL || pb_reserve(&st->workflows, st->n_workflows, 1,
	                            sizeof(*st->workflows)) != 0) {
		pb_free(w);
		return oom(res, "sealing", r->scope, r->stream);
	}
	txns_abort_open(s);
	s->state = SS_SEALING;
	wf_link(st, w, s, res);
	return 0;
}

/* ------------------------------------------------------------ truncate -- */

static const Strata__V1__Segment *cut_segment(const Strata__V1__StreamRecord *s,
                                              const Strata__V1__StreamCut *cut,
                                              size_t i)
{
	return fsm_find_segment(s, cut->positions[i]->segment_id);
}

static bool seg_overlap(const Strata__V1__Segment *a,
                        const Strata__V1__Segment *b)
{
	return a->low < b->high && b->low < a->high;
}

bool fsm_cut_behind(const Strata__V1__StreamRecord *s,
                    const Strata__V1__StreamCut *a,
                    const Strata__V1__StreamCut *b, uint64_t *seg)
{
	for (size_t i = 0; i < b->n_positions; i++) {
		const Strata__V1__Segment *y = cut_segment(s, b, i);
		for (size_t j = 0; y != NULL && j < a->n_positions; j++) {
			const Strata__V1__Segment *x = cut_segment(s, a, j);
			bool back = false;
			if (x == NULL) {
				continue;
			}
			if (x->id == y->id) {
				back = a->positions[j]->offset <
				       b->positions[i]->offset;
			} else if (seg_overlap(x, y)) {
				back = SEG_EPOCH(x->id) < SEG_EPOCH(y->id);
			}
			if (back) {
				if (seg != NULL) {
					*seg = x->id;
				}
				return true;
			}
		}
	}
	return false;
}

/* The new cut must not be before the current truncation point. */
static int truncate_not_back(const Strata__V1__StreamRecord *s,
                             const char *scope,
                             const Strata__V1__StreamCut *cut,
                             struct cfsm_result *res)
{
	uint64_t at = 0;
	if (s->truncation != NULL &&
	    fsm_cut_behind(s, cut, s->truncation, &at)) {
		return fsm_fail(res, STRATA_ETRUNCATED,
		                "stream cut for %s/%s is before its "
		                "truncation point at segment " SEG_FMT
		                "; truncate only forward",
		                scope, s->name, SEG_ARGS(at));
	}
	return 0;
}

static int size_cmp(const void *a, const void *b)
{
	uint64_t x = (*(const Strata__V1__SegmentSize *const *)a)->segment_id;
	uint64_t y = (*(const Strata__V1__SegmentSize *const *)b)->segment_id;
	return x < y ? -1 : x > y;
}

/* No offset past the recorded size of a sealed segment: the store would
 * refuse it (STRATA_ERANGE) at every retry of the workflow, and the
 * stream would stay TRUNCATING. Open segments are checked against their
 * stores before the command is proposed (cutcheck.c). Sorted lookups:
 * a long-lived stream has many sealed sizes and cuts many positions. */
static int truncate_within_sealed(const Strata__V1__StreamRecord *s,
                                  const char *scope,
                                  const Strata__V1__StreamCut *cut,
                                  struct cfsm_result *res)
{
	size_t n = s->n_sealed_sizes;
	if (n == 0) {
		return 0;
	}
	const Strata__V1__SegmentSize **z = strata_malloc(n * sizeof(*z));
	if (z == NULL) {
		return fsm_fail(res, STRATA_ENOMEM,
		                "out of memory checking the cut of %s/%s",
		                scope, s->name);
	}
	memcpy(z, s->sealed_sizes, n * sizeof(*z));
	qsort(z, n, sizeof(*z), size_cmp);
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < cut->n_positions; i++) {
		const Strata__V1__SegmentOffset *p = cut->positions[i];
		Strata__V1__SegmentSize key = STRATA__V1__SEGMENT_SIZE__INIT;
		const Strata__V1__SegmentSize *kp = &key, **hit;
		key.segment_id = p->segment_id;
		hit = p->offset > 0 ? bsearch(&kp, z, n, sizeof(*z), size_cmp)
		                    : NULL;
		if (hit != NULL && (uint64_t)p->offset > (*hit)->size) {
			rc = fsm_fail(res, STRATA_EINVAL,
			              "stream cut for %s/%s: offset %" PRId64
			              " of segment %" PRIu32 ".%" PRIu32
			              " is past its end (sealed at %" PRIu64
			              " bytes); take a cut from 'stream "
			              "describe', a checkpoint or a read "
			              "position",
			              scope, s->name, p->offset,
			              SEG_NUMBER(p->segment_id),
			              SEG_EPOCH(p->segment_id), (*hit)->size);
		}
	}
	strata_free(z);
	return rc;
}

bool fsm_before_cut(const Strata__V1__StreamRecord *s,
                    const Strata__V1__StreamCut *cut,
                    const Strata__V1__Segment *g)
{
	for (size_t i = 0; i < cut->n_positions; i++) {
		const Strata__V1__Segment *c = cut_segment(s, cut, i);
		if (c->id == g->id) {
			return false;
		}
		if (seg_overlap(c, g) && SEG_EPOCH(g->id) >= SEG_EPOCH(c->id)) {
			return false;
		}
	}
	return true;
}

static int truncate_finish(Strata__V1__StreamRecord *s,
                           Strata__V1__Workflow *w);

/* Whether a truncation's workflow would have no action (the FSM's
 * workflow_actions): no segment to delete and every offset 0. */
static bool truncate_is_noop(const Strata__V1__TruncateParams *p)
{
	for (size_t i = 0; i < p->cut->n_positions; i++) {
		if (p->cut->positions[i]->offset > 0) {
			return false;
		}
	}
	return p->n_delete_segments == 0;
}

int workflows_truncate(struct cfsm *f, const Strata__V1__TruncateStreamCmd *c,
                       struct cfsm_result *res)
{
	const Strata__V1__TruncateStreamRequest *r = c->request;
	Strata__V1__ControllerState *st = f->st;
	Strata__V1__StreamRecord *s;
	int rc = fsm_stream_get(st, r->scope, r->stream, &s, res);
	if (rc != 0) {
		return rc;
	}
	if ((rc = check_idle(s, r->scope, res)) != 0) {
		return rc;
	}
	if ((rc = fsm_check_cut(s, r->scope, r->cut, res)) != 0 ||
	    (rc = truncate_not_back(s, r->scope, r->cut, res)) != 0 ||
	    (rc = truncate_within_sealed(s, r->scope, r->cut, res)) != 0) {
		return rc;
	}
	Strata__V1__Workflow *w =
	        wf_new(st, WK_TRUNCATE, r->scope, r->stream, WS_TRUNCATE, 0);
	Strata__V1__TruncateParams *p =
	        pb_new(&strata__v1__truncate_params__descriptor);
	if (w == NULL || p == NULL || (p->cut = pb_clone(r->cut)) == NULL ||
	    pb_reserve(&st->workflows, st->n_workflows, 1,
	               sizeof(*st->workflows)) != 0) {
		goto err_oom;
	}
	for (size_t e = 0; e < s->n_epochs; e++) {
		const Strata__V1__Epoch *ep = s->epochs[e];
		for (size_t i = 0; i < ep->n_segments; i++) {
			const Strata__V1__Segment *g = ep->segments[i];
			if (SEG_EPOCH(g->id) != ep->epoch ||
			    fsm_segment_deleted(s, g->id) ||
			    !fsm_before_cut(s, r->cut, g)) {
				continue;
			}
			if (pb_reserve(&p->delete_segments,
			               p->n_delete_segments, 1,
			               sizeof(*p->delete_segments)) != 0) {
				goto err_oom;
			}
			p->delete_segments[p->n_delete_segments++] = g->id;
		}
	}
	fsm_sort(p->delete_segments, p->n_delete_segments,
	         sizeof(*p->delete_segments), cmp_u64);
	w->params_case = STRATA__V1__WORKFLOW__PARAMS_TRUNCATE;
	w->truncate = p;
	if (truncate_is_noop(p)) {
		/* No store has anything to do (every offset 0, nothing
		 * before the cut): a workflow would have no action to
		 * complete it and hold the stream for ever. Done now. */
		if (truncate_finish(s, w) != 0) {
			pb_free(w);
			return oom(res, "truncating", r->scope, r->stream);
		}
		pb_free(w);
		res->workflow_id = 0;
		return 0;
	}
	if (s->state == SS_ACTIVE) {
		s->state = SS_TRUNCATING;
	}
	wf_link(st, w, s, res);
	return 0;

err_oom:
	pb_free(p);
	pb_free(w);
	return oom(res, "truncating", r->scope, r->stream);
}

/* -------------------------------------------------------------- delete -- */

int workflows_delete(struct cfsm *f, const Strata__V1__DeleteStreamCmd *c,
                     struct cfsm_result *res)
{
	const Strata__V1__DeleteStreamRequest *r = c->request;
	Strata__V1__ControllerState *st = f->st;
	Strata__V1__StreamRecord *s;
	int rc = fsm_stream_get(st, r->scope, r->stream, &s, res);
	if (rc != 0) {
		return rc;
	}
	if (s->state == SS_DELETING) {
		res->workflow_id = s->workflow_id;
		return 0;
	}
	if (s->state != SS_SEALED) {
		return fsm_fail(res, STRATA_ENOTSEALED,
		                "stream %s/%s is not sealed; seal it before "
		                "deleting it",
		                r->scope, r->stream);
	}
	if ((rc = check_idle(s, r->scope, res)) != 0) {
		return rc;
	}
	size_t live = txns_count(s, TS_OPEN) + txns_count(s, TS_COMMITTING) +
	              txns_count(s, TS_ABORTING);
	if (live > 0) {
		return fsm_fail(res, STRATA_EBUSY,
		                "stream %s/%s still has %zu transactions "
		                "completing; retry the delete when they finish",
		                r->scope, r->stream, live);
	}
	Strata__V1__Workflow *w =
	        wf_new(st, WK_DELETE, r->scope, r->stream, WS_DELETE, 0);
	if (w == NULL || pb_reserve(&st->workflows, st->n_workflows, 1,
	                            sizeof(*st->workflows)) != 0) {
		pb_free(w);
		return oom(res, "deleting", r->scope, r->stream);
	}
	s->state = SS_DELETING;
	wf_link(st, w, s, res);
	return 0;
}

/* -------------------------------------------------------------- remove -- */

int workflows_remove(struct cfsm *f, const char *scope, const char *stream,
                     struct cfsm_result *res)
{
	Strata__V1__ControllerState *st = f->st;
	Strata__V1__StreamRecord *s;
	int rc = fsm_stream_get(st, scope, stream, &s, res);
	if (rc != 0) {
		return rc;
	}
	if (s->state == SS_DELETING) {
		res->workflow_id = s->workflow_id;
		return 0;
	}
	if ((rc = check_idle(s, scope, res)) != 0) {
		return rc;
	}
	size_t live = txns_count(s, TS_OPEN) + txns_count(s, TS_COMMITTING) +
	              txns_count(s, TS_ABORTING);
	if (live > 0) {
		return fsm_fail(res, STRATA_EBUSY,
		                "stream %s/%s still has %zu transactions; "
		                "retry when they finish",
		                scope, stream, live);
	}
	bool sealed = s->state == SS_SEALED;
	Strata__V1__Workflow *w = wf_new(st, WK_REMOVE, scope, stream,
	                                 sealed ? WS_DELETE : WS_SEAL, 0);
	if (w == NULL || pb_reserve(&st->workflows, st->n_workflows, 1,
	                            sizeof(*st->workflows)) != 0) {
		pb_free(w);
		return oom(res, "removing", scope, stream);
	}
	s->state = sealed ? SS_DELETING : SS_SEALING;
	wf_link(st, w, s, res);
	return 0;
}

/* ----------------------------------------------------------- step done -- */

/* Position of step in its kind's sequence; -1 when not part of it. */
static int step_index(int kind, int step)
{
	switch (kind) {
	case WK_CREATE:
		return step == WS_CREATE ? 0 : -1;
	case WK_SCALE:
		return step == WS_CREATE ? 0 : step == WS_SEAL ? 1 : -1;
	case WK_SEAL:
		return step == WS_SEAL ? 0 : -1;
	case WK_TRUNCATE:
		return step == WS_TRUNCATE ? 0 : -1;
	case WK_DELETE:
		return step == WS_DELETE ? 0 : -1;
	case WK_REMOVE:
		return step == WS_SEAL ? 0 : step == WS_DELETE ? 1 : -1;
	case WK_ROLL:
		return step == WS_CREATE  ? 0
		       : step == WS_MERGE ? 1
		       : step == WS_SEAL  ? 2
		                          : -1;
	default:
		return -1;
	}
}

/* Check sizes name exactly the segments ids[0..n). */
static int check_sizes(const Strata__V1__WorkflowStepDone *c,
                       const uint64_t *ids, size_t n, struct cfsm_result *res)
{
	if (c->n_sealed_sizes != n) {
		return fsm_fail(
		        res, STRATA_EINVAL,
		        "workflow %" PRIu64 " seals %zu segments but "
		        "the step reports %zu sizes; report one size per "
		        "sealed segment",
		        c->workflow_id, n, c->n_sealed_sizes);
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t id = c->sealed_sizes[i]->segment_id;
		bool dup = false;
		for (size_t j = 0; j < i; j++) {
			dup |= c->sealed_sizes[j]->segment_id == id;
		}
		if (dup || !ids_has(ids, n, id)) {
			return fsm_fail(res, STRATA_EINVAL,
			                "workflow %" PRIu64
			                " reports a size for "
			                "segment " SEG_FMT " which it does not "
			                "seal (or twice); report each sealed "
			                "segment once",
			                c->workflow_id, SEG_ARGS(id));
		}
	}
	return 0;
}

/* Append reported sizes to the stream (array reserved by the caller). */
static void add_sizes(Strata__V1__StreamRecord *s,
                      const Strata__V1__WorkflowStepDone *c,
                      Strata__V1__SegmentSize **fresh)
{
	for (size_t i = 0; i < c->n_sealed_sizes; i++) {
		fresh[i]->segment_id = c->sealed_sizes[i]->segment_id;
		fresh[i]->size = c->sealed_sizes[i]->size;
		s->sealed_sizes[s->n_sealed_sizes++] = fresh[i];
	}
}

/* Allocate n SegmentSize records and room for them in s; ENOMEM. */
static int alloc_sizes(Strata__V1__StreamRecord *s, size_t n,
                       Strata__V1__SegmentSize ***fresh)
{
	*fresh = strata_calloc(n + 1, sizeof(**fresh));
	if (*fresh == NULL || pb_reserve(&s->sealed_sizes, s->n_sealed_sizes, n,
	                                 sizeof(*s->sealed_sizes)) != 0) {
		return STRATA_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		(*fresh)[i] = pb_new(&strata__v1__segment_size__descriptor);
		if ((*fresh)[i] == NULL) {
			return STRATA_ENOMEM;
		}
	}
	return 0;
}

static void free_sizes(Strata__V1__SegmentSize **fresh, size_t n, bool used)
{
	for (size_t i = 0; fresh != NULL && !used && i < n; i++) {
		pb_free(fresh[i]);
	}
	strata_free(fresh);
}

/* SCALE / CREATE_SEGMENTS done: publish the new epoch. */
static int scale_publish(Strata__V1__StreamRecord *s,
                         const Strata__V1__Workflow *w)
{
	const Strata__V1__ScaleParams *p = w->scale;
	const Strata__V1__Epoch *cur = fsm_current_epoch(s);
	size_t n = cur->n_segments - p->n_seal + p->n_successors;
	Strata__V1__Epoch *ep = pb_new(&strata__v1__epoch__descriptor);
	if (ep == NULL ||
	    pb_reserve(&ep->segments, 0, n, sizeof(*ep->segments)) != 0 ||
	    pb_reserve(&s->epochs, s->n_epochs, 1, sizeof(*s->epochs)) != 0) {
		goto err_oom;
	}
	for (size_t i = 0; i < cur->n_segments; i++) {
		const Strata__V1__Segment *g = cur->segments[i];
		if (ids_has(p->seal, p->n_seal, g->id)) {
			continue;
		}
		if ((ep->segments[ep->n_segments] = pb_clone(g)) == NULL) {
			goto err_oom;
		}
		ep->n_segments++;
	}
	for (size_t i = 0; i < p->n_successors; i++) {
		if ((ep->segments[ep->n_segments] =
		             pb_clone(p->successors[i])) == NULL) {
			goto err_oom;
		}
		ep->n_segments++;
	}
	fsm_sort(ep->segments, ep->n_segments, sizeof(*ep->segments),
	         cmp_seg_low);
	ep->epoch = cur->epoch + 1;
	ep->created_ms = w->started_ms;
	s->epochs[s->n_epochs++] = ep;
	return 0;

err_oom:
	pb_free(ep);
	return STRATA_ENOMEM;
}

/* TRUNCATE done: record the cut and the deleted segments. */
static int truncate_finish(Strata__V1__StreamRecord *s, Strata__V1__Workflow *w)
{
	Strata__V1__TruncateParams *p = w->truncate;
	if (pb_reserve(&s->deleted_segments, s->n_deleted_segments,
	               p->n_delete_segments,
	               sizeof(*s->deleted_segments)) != 0) {
		return STRATA_ENOMEM;
	}
	/* A cut inside the open segments deletes none: both arrays may then
	 * be NULL, which memcpy must not be given even for 0 bytes. */
	if (p->n_delete_segments > 0) {
		memcpy(&s->deleted_segments[s->n_deleted_segments],
		       p->delete_segments,
		       p->n_delete_segments * sizeof(*p->delete_segments));
	}
	s->n_deleted_segments += p->n_delete_segments;
	fsm_sort(s->deleted_segments, s->n_deleted_segments,
	         sizeof(*s->deleted_segments), cmp_u64);
	pb_free(s->truncation);
	s->truncation = p->cut; /* moved */
	p->cut = NULL;
	if (s->state == SS_TRUNCATING) {
		s->state = SS_ACTIVE;
	}
	return 0;
}

/* DELETE done: drop the stream from its scope. */
static void delete_finish(Strata__V1__ControllerState *st,
                          const Strata__V1__Workflow *w)
{
	Strata__V1__ScopeRecord *sc = fsm_scope(st, w->scope);
	bool found;
	size_t at = fsm_stream_index(sc, w->stream, &found);
	Strata__V1__StreamRecord *s = sc->streams[at];
	pb_remove_at((void **)sc->streams, &sc->n_streams, at);
	pb_free(s);
	rg_forget_stream(st, w->scope, w->stream);
}

/* Check that c reports one size per segment of ids[0..n) and record the
 * sizes in s; on error s is unchanged. */
static int record_sizes(Strata__V1__StreamRecord *s,
                        const Strata__V1__Workflow *w,
                        const Strata__V1__WorkflowStepDone *c,
                        const uint64_t *ids, size_t n, struct cfsm_result *res)
{
	Strata__V1__SegmentSize **fresh = NULL;
	int rc = check_sizes(c, ids, n, res);
	if (rc == 0 && alloc_sizes(s, n, &fresh) != 0) {
		rc = oom(res, "sealing", w->scope, w->stream);
	}
	if (rc == 0) {
		add_sizes(s, c, fresh);
	}
	free_sizes(fresh, n, rc == 0);
	return rc;
}

/* ROLL's last step done: its transactions are committed. */
static void roll_commit(Strata__V1__StreamRecord *s,
                        const Strata__V1__Workflow *w, uint64_t now_ms)
{
	for (size_t i = 0; i < s->n_txns; i++) {
		Strata__V1__Txn *t = s->txns[i];
		bool rolled = t->id == w->roll->txn_id;
		for (size_t k = 0; k < w->roll->n_joined; k++) {
			rolled |= t->id == w->roll->joined[k];
		}
		if (rolled && t->state == TS_COMMITTING) {
			t->state = TS_COMMITTED;
			t->completed_ms = now_ms != 0 ? now_ms : w->started_ms;
		}
	}
}

/* Sealed-size step of SCALE, SEAL, REMOVE or ROLL. */
static int seal_done(Strata__V1__ControllerState *st,
                     Strata__V1__StreamRecord *s, Strata__V1__Workflow *w,
                     const Strata__V1__WorkflowStepDone *c,
                     struct cfsm_result *res)
{
	const Strata__V1__Epoch *cur = fsm_current_epoch(s);
	size_t n = w->kind == WK_SCALE  ? w->scale->n_seal
	           : w->kind == WK_ROLL ? w->roll->n_seal
	                                : cur->n_segments;
	uint64_t *ids = strata_calloc(n + 1, sizeof(*ids));
	if (ids == NULL) {
		return oom(res, "sealing", w->scope, w->stream);
	}
	for (size_t i = 0; i < n; i++) {
		ids[i] = w->kind == WK_SCALE  ? w->scale->seal[i]
		         : w->kind == WK_ROLL ? w->roll->seal[i]
		                              : cur->segments[i]->id;
	}
	int rc = record_sizes(s, w, c, ids, n, res);
	strata_free(ids);
	if (rc != 0) {
		return rc;
	}
	if (w->kind == WK_REMOVE) {
		s->state = SS_DELETING; /* sealed; now delete */
		w->step = WS_DELETE;
		return 0;
	}
	if (w->kind == WK_ROLL) {
		roll_commit(s, w, c->now_ms);
	}
	s->state = w->kind == WK_SEAL ? SS_SEALED : SS_ACTIVE;
	wf_finish(st, w, s);
	return 0;
}

/* A new epoch number holding copies of segs[0..n) (sorted by low);
 * NULL on OOM. */
static Strata__V1__Epoch *epoch_of(Strata__V1__Segment *const *segs, size_t n,
                                   uint32_t number, uint64_t created_ms)
{
	Strata__V1__Epoch *ep = pb_new(&strata__v1__epoch__descriptor);
	if (ep == NULL ||
	    pb_reserve(&ep->segments, 0, n, sizeof(*ep->segments)) != 0) {
		pb_free(ep);
		return NULL;
	}
	ep->epoch = number;
	ep->created_ms = created_ms;
	for (size_t i = 0; i < n; i++) {
		if ((ep->segments[ep->n_segments] = pb_clone(segs[i])) ==
		    NULL) {
			pb_free(ep);
			return NULL;
		}
		ep->n_segments++;
	}
	return ep;
}

/* ROLL's MERGE_TXN done: record the copies' sizes and publish both
 * epochs (E+1: the transaction's sealed copies; E+2: the new current
 * segments). Writers move to E+2 once E is sealed (the next step);
 * readers pass through E+1 on the way. */
static int roll_merged(Strata__V1__StreamRecord *s, Strata__V1__Workflow *w,
                       const Strata__V1__WorkflowStepDone *c,
                       struct cfsm_result *res)
{
	const Strata__V1__RollParams *p = w->roll;
	uint32_t e = fsm_current_epoch(s)->epoch;
	Strata__V1__Epoch *copies =
	        epoch_of(p->txn_copies, p->n_txn_copies, e + 1, w->started_ms);
	Strata__V1__Epoch *next =
	        epoch_of(p->successors, p->n_successors, e + 2, w->started_ms);
	uint64_t *ids = strata_calloc(p->n_txn_copies + 1, sizeof(*ids));
	int rc = 0;
	if (copies == NULL || next == NULL || ids == NULL ||
	    pb_reserve(&s->epochs, s->n_epochs, 2, sizeof(*s->epochs)) != 0) {
		rc = oom(res, "rolling a transaction of", w->scope, w->stream);
		goto out;
	}
	for (size_t i = 0; i < p->n_txn_copies; i++) {
		ids[i] = p->txn_copies[i]->id;
	}
	rc = record_sizes(s, w, c, ids, p->n_txn_copies, res);
	if (rc == 0) {
		s->epochs[s->n_epochs++] = copies;
		s->epochs[s->n_epochs++] = next;
		copies = next = NULL;
		w->step = WS_SEAL;
	}
out:
	pb_free(copies);
	pb_free(next);
	strata_free(ids);
	return rc;
}

int workflows_step_done(struct cfsm *f, const Strata__V1__WorkflowStepDone *c,
                        struct cfsm_result *res)
{
	Strata__V1__ControllerState *st = f->st;
	Strata__V1__Workflow *w = NULL;
	for (size_t i = 0; i < st->n_workflows; i++) {
		if (st->workflows[i]->id == c->workflow_id) {
			w = st->workflows[i];
		}
	}
	if (w == NULL) {
		if (c->workflow_id != 0 &&
		    c->workflow_id < st->next_workflow_id) {
			return 0; /* finished already: a replay */
		}
		return fsm_fail(res, STRATA_ENOENT,
		                "workflow %" PRIu64
		                " was never started; report "
		                "steps only of workflows from pending actions",
		                c->workflow_id);
	}
	int have = step_index(w->kind, w->step);
	int done = step_index(w->kind, c->step);
	if (done < 0 || done > have) {
		return fsm_fail(res, STRATA_EINVAL,
		                "workflow %" PRIu64
		                " is at step %d; step %d is "
		                "not its next step; report the pending step",
		                w->id, (int)w->step, (int)c->step);
	}
	if (done < have) {
		return 0; /* a replay of a passed step */
	}
	Strata__V1__StreamRecord *s = fsm_stream(st, w->scope, w->stream);
	if (s == NULL) {
		return fsm_fail(res, STRATA_EINTERNAL,
		                "workflow %" PRIu64
		                " names missing stream %s/%s",
		                w->id, w->scope, w->stream);
	}
	res->workflow_id = w->id;
	switch (w->kind) {
	case WK_CREATE:
		s->state = SS_ACTIVE;
		wf_finish(st, w, s);
		return 0;
	case WK_SCALE:
		if (w->step == WS_CREATE) {
			if (scale_publish(s, w) != 0) {
				return oom(res, "scaling", w->scope, w->stream);
			}
			w->step = WS_SEAL;
			return 0;
		}
		return seal_done(st, s, w, c, res);
	case WK_SEAL:
		return seal_done(st, s, w, c, res);
	case WK_TRUNCATE:
		if (truncate_finish(s, w) != 0) {
			return oom(res, "truncating", w->scope, w->stream);
		}
		wf_finish(st, w, s);
		return 0;
	case WK_DELETE:
		delete_finish(st, w);
		wf_finish(st, w, NULL);
		return 0;
	case WK_REMOVE:
		if (w->step == WS_SEAL) {
			return seal_done(st, s, w, c, res);
		}
		delete_finish(st, w);
		wf_finish(st, w, NULL);
		return 0;
	case WK_ROLL:
		if (w->step == WS_CREATE) {
			w->step = WS_MERGE;
			return 0;
		}
		if (w->step == WS_MERGE) {
			return roll_merged(s, w, c, res);
		}
		return seal_done(st, s, w, c, res);
	default:
		return fsm_fail(res, STRATA_EINTERNAL,
		                "workflow %" PRIu64 " has unknown kind %d",
		                w->id, (int)w->kind);
	}
}
