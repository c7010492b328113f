/* Controller scopes and streams: lookups, scope commands, update, queries. */
#include "controller/fsm_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/errmsg.h"
#include "common/segname.h"

/* ------------------------------------------------------------- lookups -- */

/* Binary search over a name-sorted array of messages whose first field
 * after `base` is `char *name`: scopes, streams, reader groups. */
#define NAME_INDEX(arr, n, key, found)                                        \
	do {                                                                  \
		size_t lo_ = 0, hi_ = (n);                                    \
		while (lo_ < hi_) {                                           \
			size_t mid_ = lo_ + (hi_ - lo_) / 2;                  \
			if (strcmp((arr)[mid_]->name, (key)) < 0) {           \
				lo_ = mid_ + 1;                               \
			} else {                                              \
				hi_ = mid_;                                   \
			}                                                     \
		}                                                             \
		*(found) = lo_ < (n) && strcmp((arr)[lo_]->name, (key)) == 0; \
		return lo_;                                                   \
	} while (0)

size_t fsm_scope_index(const Strata__V1__ControllerState *st, const char *name,
                       bool *found)
{
	NAME_INDEX(st->scopes, st->n_scopes, name, found);
}

size_t fsm_stream_index(const Strata__V1__ScopeRecord *sc, const char *name,
                        bool *found)
{
	NAME_INDEX(sc->streams, sc->n_streams, name, found);
}

size_t fsm_rg_index(const Strata__V1__ScopeRecord *sc, const char *name,
                    bool *found)
{
	NAME_INDEX(sc->reader_groups, sc->n_reader_groups, name, found);
}

Strata__V1__ScopeRecord *fsm_scope(const Strata__V1__ControllerState *st,
                                   const char *name)
{
	bool found;
	size_t i = fsm_scope_index(st, name, &found);
	return found ? st->scopes[i] : NULL;
}

Strata__V1__StreamRecord *fsm_stream(const Strata__V1__ControllerState *st,
                                     const char *scope, const char *name)
{
	Strata__V1__ScopeRecord *sc = fsm_scope(st, scope);
	if (sc == NULL) {
		return NULL;
	}
	bool found;
	size_t i = fsm_stream_index(sc, name, &found);
	return found ? sc->streams[i] : NULL;
}

int fsm_stream_get(const Strata__V1__ControllerState *st, const char *scope,
                   const char *name, Strata__V1__StreamRecord **out,
                   struct cfsm_result *res)
{
	if (fsm_scope(st, scope) == NULL) {
		return fsm_fail(
		        res, STRATA_ENOENT,
		        "scope \"%.64s\" does not exist; create it first "
		        "or check the name",
		        scope);
	}
	*out = fsm_stream(st, scope, name);
	if (*out == NULL) {
		return fsm_fail(
		        res, STRATA_ENOENT,
		        "stream \"%.64s/%.64s\" does not exist; create it "
		        "first or check the name",
		        scope, name);
	}
	return 0;
}

const Strata__V1__StreamRecord *
cfsm_find_stream(const struct cfsm *fsm, const char *scope, const char *stream)
{
	return fsm_stream(fsm->st, scope, stream);
}

bool cfsm_has_segment(const struct cfsm *fsm, const char *scope,
                      const char *stream, uint64_t id)
{
	const Strata__V1__StreamRecord *s = fsm_stream(fsm->st, scope, stream);
	return s != NULL && fsm_find_segment(s, id) != NULL;
}

const Strata__V1__Epoch *fsm_current_epoch(const Strata__V1__StreamRecord *s)
{
	return s->epochs[s->n_epochs - 1];
}

const Strata__V1__Segment *fsm_find_segment(const Strata__V1__StreamRecord *s,
                                            uint64_t id)
{
	/* A segment is first listed in the epoch that created it, the epoch
	 * in its id; epochs are kept in order, so that one is found by its
	 * number (then the whole list, should they not be consecutive). */
	uint32_t want = SEGNAME_EPOCH(id);
	if (s->n_epochs > 0 && want >= s->epochs[0]->epoch &&
	    want - s->epochs[0]->epoch < s->n_epochs) {
		const Strata__V1__Epoch *ep =
		        s->epochs[want - s->epochs[0]->epoch];
		for (size_t i = 0; ep->epoch == want && i < ep->n_segments;
		     i++) {
			if (ep->segments[i]->id == id) {
				return ep->segments[i];
			}
		}
	}
	for (size_t e = 0; e < s->n_epochs; e++) {
		const Strata__V1__Epoch *ep = s->epochs[e];
		for (size_t i = 0; i < ep->n_segments; i++) {
			if (ep->segments[i]->id == id) {
				return ep->segments[i];
			}
		}
	}
	return NULL;
}

bool fsm_segment_deleted(const Strata__V1__StreamRecord *s, uint64_t id)
{
	/* deleted_segments is sorted (controller.proto). */
	size_t lo = 0, hi = s->n_deleted_segments;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->deleted_segments[mid] < id) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo < s->n_deleted_segments && s->deleted_segments[lo] == id;
}

static int cmp_low(const void *a, const void *b)
{
	const Strata__V1__Segment *x = *(const Strata__V1__Segment *const *)a;
	const Strata__V1__Segment *y = *(const Strata__V1__Segment *const *)b;
	return x->low < y->low ? -1 : x->low > y->low ? 1 : 0;
}

/* Each position of cut names a segment the stream has (into segs[i]),
 * not deleted, at an offset >= 0. */
static int check_cut_positions(const Strata__V1__StreamRecord *s,
                               const char *scope,
                               const Strata__V1__StreamCut *cut,
                               const Strata__V1__Segment **segs,
                               struct cfsm_result *res)
{
	for (size_t i = 0; i < cut->n_positions; i++) {
		const Strata__V1__SegmentOffset *p = cut->positions[i];
		if ((segs[i] = fsm_find_segment(s, p->segment_id)) == NULL) {
			return fsm_fail(res, STRATA_EINVAL,
			                "stream cut names segment " SEG_FMT
			                " which %.64s/%.64s never had; use "
			                "segments from its epochs",
			                SEG_ARGS(p->segment_id), scope,
			                s->name);
		}
		if (fsm_segment_deleted(s, p->segment_id)) {
			/* Not malformed: its data is gone (a reader
			 * restoring an old checkpoint), as for an offset
			 * below a live segment's start. */
			return fsm_fail(
			        res, STRATA_ETRUNCATED,
			        "stream cut names segment " SEG_FMT
			        " of %.64s/%.64s which truncation deleted; "
			        "use a cut at or after the head",
			        SEG_ARGS(p->segment_id), scope, s->name);
		}
		if (p->offset < 0) {
			return fsm_fail(res, STRATA_EINVAL,
			                "stream cut offset %" PRId64
			                " of segment " SEG_FMT
			                " is negative; use an offset >= 0",
			                p->offset, SEG_ARGS(p->segment_id));
		}
	}
	return 0;
}

/* The segments segs[0..n) partition [0,1): sorted by low, each starts
 * where the one before ends (sorts segs). */
static int check_cut_covers(const Strata__V1__StreamRecord *s,
                            const char *scope, const Strata__V1__Segment **segs,
                            size_t n, struct cfsm_result *res)
{
	qsort(segs, n, sizeof(*segs), cmp_low);
	double at = 0.0;
	size_t i = 0;
	while (i < n && segs[i]->low == at) {
		at = segs[i]->high;
		i++;
	}
	if (at != 1.0 || i != n) {
		return fsm_fail(res, STRATA_EINVAL,
		                "stream cut for %.64s/%.64s does not cover the "
		                "key space [0,1) exactly once (gap or overlap "
		                "near %g); give one segment per key range",
		                scope, s->name, at);
	}
	return 0;
}

int fsm_check_cut(const Strata__V1__StreamRecord *s, const char *scope,
                  const Strata__V1__StreamCut *cut, struct cfsm_result *res)
{
	size_t n = cut != NULL ? cut->n_positions : 0;
	if (n == 0) {
		return fsm_fail(res, STRATA_EINVAL,
		                "stream cut for %.64s/%.64s is empty; give one "
		                "offset per segment covering the key space",
		                scope, s->name);
	}
	if (n > CFSM_MAX_SEGMENTS) {
		return fsm_fail(res, STRATA_EINVAL,
		                "stream cut for %.64s/%.64s has %zu positions, "
		                "more than a stream's %d segments",
		                scope, s->name, n, CFSM_MAX_SEGMENTS);
	}
	const Strata__V1__Segment **segs = strata_malloc(n * sizeof(*segs));
	if (segs == NULL) {
		return fsm_fail(res, STRATA_ENOMEM,
		                "checking a stream cut: out of memory");
	}
	int rc = check_cut_positions(s, scope, cut, segs, res);
	if (rc == 0) {
		rc = check_cut_covers(s, scope, segs, n, res);
	}
	strata_free(segs);
	return rc;
}

/* ------------------------------------------------------- scope commands -- */

int streams_create_scope(struct cfsm *f, const Strata__V1__CreateScopeCmd *c,
                         struct cfsm_result *res)
{
	const char *name = c->request->scope;
	Strata__V1__ControllerState *st = f->st;
	int rc = names_check(name, "scope", c->internal, res);
	if (rc != 0) {
		return rc;
	}
	bool found;
	size_t at = fsm_scope_index(st, name, &found);
	if (found) {
		return fsm_fail(res, STRATA_EEXIST,
		                "scope \"%s\" already exists; use it or choose "
		                "another name",
		                name);
	}
	Strata__V1__ScopeRecord *sc =
	        pb_new(&strata__v1__scope_record__descriptor);
	if (sc == NULL || pb_strdup(&sc->name, name) != 0 ||
	    pb_reserve(&st->scopes, st->n_scopes, 1, sizeof(*st->scopes)) !=
	            0) {
		pb_free(sc);
		return fsm_fail(res, STRATA_ENOMEM,
		                "out of memory creating scope \"%s\"", name);
	}
	memmove(&st->scopes[at + 1], &st->scopes[at],
	        (st->n_scopes - at) * sizeof(*st->scopes));
	st->scopes[at] = sc;
	st->n_scopes++;
	return 0;
}

int streams_delete_scope(struct cfsm *f, const Strata__V1__DeleteScopeCmd *c,
                         struct cfsm_result *res)
{
	const char *name = c->request->scope;
	Strata__V1__ControllerState *st = f->st;
	bool found;
	size_t at = fsm_scope_index(st, name, &found);
	if (!found) {
		return fsm_fail(
		        res, STRATA_ENOENT,
		        "scope \"%.64s\" does not exist; check the name", name);
	}
	Strata__V1__ScopeRecord *sc = st->scopes[at];
	if (sc->n_streams > 0 || sc->n_reader_groups > 0) {
		/* Name what is left: user streams (internal ones go with
		 * their reader group), then groups. */
		size_t users = 0;
		const char *first = NULL;
		for (size_t i = 0; i < sc->n_streams; i++) {
			if (sc->streams[i]->name[0] != '_') {
				first = first != NULL ? first
				                      : sc->streams[i]->name;
				users++;
			}
		}
		const char *group = sc->n_reader_groups > 0
		                            ? sc->reader_groups[0]->name
		                            : NULL;
		return fsm_fail(
		        res, STRATA_ENOTEMPTY,
		        "scope \"%s\" still holds %zu stream%s%s%.64s%s and "
		        "%zu reader group%s%s%.64s%s; seal and delete the "
		        "streams and delete the reader groups first",
		        name, users, users == 1 ? "" : "s",
		        first != NULL ? " (" : "", first != NULL ? first : "",
		        first != NULL ? (users > 1 ? ", ...)" : ")") : "",
		        sc->n_reader_groups,
		        sc->n_reader_groups == 1 ? "" : "s",
		        group != NULL ? " (" : "", group != NULL ? group : "",
		        group != NULL
		                ? (sc->n_reader_groups > 1 ? ", ...)" : ")")
		                : "");
	}
	pb_remove_at((void **)st->scopes, &st->n_scopes, at);
	pb_free(sc);
	return 0;
}

int streams_update(struct cfsm *f, const Strata__V1__UpdateStreamCmd *c,
                   struct cfsm_result *res)
{
	const Strata__V1__UpdateStreamRequest *r = c->request;
	Strata__V1__StreamRecord *s;
	int rc = fsm_stream_get(f->st, r->scope, r->stream, &s, res);
	if (rc != 0) {
		return rc;
	}
	if (s->state == SS_SEALED || s->state == SS_SEALING ||
	    s->state == SS_DELETING) {
		return fsm_fail(res, STRATA_ESEALED,
		                "stream %s/%s is sealed; its configuration can "
		                "no longer change",
		                r->scope, r->stream);
	}
	if (s->workflow_id != 0) {
		return fsm_fail(res, STRATA_EBUSY,
		                "stream %s/%s is busy with workflow %" PRIu64
		                "; retry when it completes",
		                r->scope, r->stream, s->workflow_id);
	}
	rc = names_check_config(r->config, res);
	if (rc != 0) {
		return rc;
	}
	Strata__V1__StreamConfig *cfg = pb_clone(r->config);
	if (cfg == NULL) {
		return fsm_fail(res, STRATA_ENOMEM,
		                "out of memory updating stream %s/%s", r->scope,
		                r->stream);
	}
	names_normalize_tags(cfg);
	pb_free(s->config);
	s->config = cfg;
	return 0;
}

/* -------------------------------------------------------------- queries -- */

/* errmsg from a failed lookup. */
static int query_stream(const struct cfsm *fsm, const char *scope,
                        const char *stream, Strata__V1__StreamRecord **s,
                        char *errmsg)
{
	struct cfsm_result r = {0};
	int rc = fsm_stream_get(fsm->st, scope, stream, s, &r);
	if (rc != 0) {
		errmsg_set(errmsg, "%s", r.message);
	}
	return rc;
}

static int query_oom(char *errmsg, const char *what)
{
	errmsg_set(errmsg, "out of memory building %s", what);
	return STRATA_ENOMEM;
}

int cfsm_list_scopes(const struct cfsm *fsm, Strata__V1__ListScopesReply **out,
                     char *errmsg)
{
	const Strata__V1__ControllerState *st = fsm->st;
	Strata__V1__ListScopesReply *r =
	        pb_new(&strata__v1__list_scopes_reply__descriptor);
	if (r == NULL ||
	    pb_reserve(&r->scopes, 0, st->n_scopes, sizeof(*r->scopes)) != 0) {
		goto err_oom;
	}
	for (size_t i = 0; i < st->n_scopes; i++) {
		if (pb_strdup(&r->scopes[i], st->scopes[i]->name) != 0) {
			goto err_oom;
		}
		r->n_scopes++;
	}
	*out = r;
	return 0;

err_oom:
	pb_free(r);
	return query_oom(errmsg, "the scope list");
}

static bool has_tag(const Strata__V1__StreamRecord *s, const char *tag)
{
	for (size_t i = 0; i < s->config->n_tags; i++) {
		if (strcmp(s->config->tags[i], tag) == 0) {
			return true;
		}
	}
	return false;
}

int cfsm_list_streams(const struct cfsm *fsm, const char *scope,
                      const char *tag, Strata__V1__ListStreamsReply **out,
                      char *errmsg)
{
	return cfsm_list_streams_page(fsm, scope, tag, NULL, 0, out, errmsg);
}

int cfsm_list_streams_page(const struct cfsm *fsm, const char *scope,
                           const char *tag, const char *start_after,
                           uint32_t page_bytes,
                           Strata__V1__ListStreamsReply **out, char *errmsg)
{
	const Strata__V1__ScopeRecord *sc = fsm_scope(fsm->st, scope);
	if (sc == NULL) {
		errmsg_set(errmsg,
		           "scope \"%.64s\" does not exist; check the name",
		           scope);
		return STRATA_ENOENT;
	}
	Strata__V1__ListStreamsReply *r =
	        pb_new(&strata__v1__list_streams_reply__descriptor);
	if (r == NULL || pb_reserve(&r->streams, 0, sc->n_streams,
	                            sizeof(*r->streams)) != 0) {
		goto err_oom;
	}
	size_t from = 0;
	if (start_after != NULL && start_after[0] != '\0') {
		bool found;
		from = fsm_stream_index(sc, start_after, &found);
		from += found;
	}
	size_t bytes = 0;
	for (size_t i = from; i < sc->n_streams; i++) {
		const Strata__V1__StreamRecord *s = sc->streams[i];
		if (tag != NULL && tag[0] != '\0' && !has_tag(s, tag)) {
			continue;
		}
		size_t len = strlen(s->name) + 3; /* tag, length, name */
		if (page_bytes > 0 && r->n_streams > 0 &&
		    bytes + len > page_bytes) {
			r->more = true;
			break;
		}
		if (pb_strdup(&r->streams[r->n_streams], s->name) != 0) {
			goto err_oom;
		}
		bytes += len;
		r->n_streams++;
	}
	*out = r;
	return 0;

err_oom:
	pb_free(r);
	return query_oom(errmsg, "the stream list");
}

int cfsm_get_stream(const struct cfsm *fsm, const char *scope,
                    const char *stream, Strata__V1__StreamInfo **out,
                    char *errmsg)
{
	Strata__V1__StreamRecord *s;
	int rc = query_stream(fsm, scope, stream, &s, errmsg);
	if (rc != 0) {
		return rc;
	}
	Strata__V1__StreamInfo *r =
	        pb_new(&strata__v1__stream_info__descriptor);
	if (r == NULL || pb_strdup(&r->scope, scope) != 0 ||
	    pb_strdup(&r->stream, stream) != 0) {
		goto err_oom;
	}
	r->state = s->state;
	r->current_epoch = fsm_current_epoch(s)->epoch;
	r->config = pb_clone(s->config);
	if (r->config == NULL) {
		goto err_oom;
	}
	if (s->truncation != NULL) {
		r->truncation = pb_clone(s->truncation);
		if (r->truncation == NULL) {
			goto err_oom;
		}
	}
	*out = r;
	return 0;

err_oom:
	pb_free(r);
	return query_oom(errmsg, "the stream info");
}

/* Append one SegmentInfo to a reply whose array has room. */
static int add_info(const struct cfsm *fsm, Strata__V1__SegmentsReply *r,
                    const char *scope, const char *stream,
                    const Strata__V1__Segment *seg, int64_t offset)
{
	char name[600];
	Strata__V1__SegmentInfo *si =
	        pb_new(&strata__v1__segment_info__descriptor);
	if (si == NULL) {
		return STRATA_ENOMEM;
	}
	r->segments[r->n_segments++] = si;
	si->segment = pb_clone(seg);
	names_segment_name(name, sizeof(name), scope, stream, seg->id);
	if (si->segment == NULL || pb_strdup(&si->qualified_name, name) != 0) {
		return STRATA_ENOMEM;
	}
	si->offset = offset;
	si->container = cfsm_segment_container(fsm, scope, stream, seg->id);
	return 0;
}

int cfsm_current_segments(const struct cfsm *fsm, const char *scope,
                          const char *stream, Strata__V1__SegmentsReply **out,
                          char *errmsg)
{
	Strata__V1__StreamRecord *s;
	int rc = query_stream(fsm, scope, stream, &s, errmsg);
	if (rc != 0) {
		return rc;
	}
	const Strata__V1__Epoch *ep = fsm_current_epoch(s);
	Strata__V1__SegmentsReply *r =
	        pb_new(&strata__v1__segments_reply__descriptor);
	if (r == NULL || pb_reserve(&r->segments, 0, ep->n_segments,
	                            sizeof(*r->segments)) != 0) {
		goto err_oom;
	}
	for (size_t i = 0; i < ep->n_segments; i++) {
		if (add_info(fsm, r, scope, stream, ep->segments[i], 0) != 0) {
			goto err_oom;
		}
	}
	r->stream_sealed = s->state == SS_SEALING || s->state == SS_SEALED ||
	                   s->state == SS_DELETING;
	*out = r;
	return 0;

err_oom:
	pb_free(r);
	return query_oom(errmsg, "the segment list");
}

int cfsm_segments_at_cut(const struct cfsm *fsm, const char *scope,
                         const char *stream, const Strata__V1__StreamCut *cut,
                         Strata__V1__SegmentsReply **out, char *errmsg)
{
	Strata__V1__StreamRecord *s;
	int rc = query_stream(fsm, scope, stream, &s, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (cut == NULL || cut->n_positions == 0) {
		cut = s->truncation;
	}
	const Strata__V1__Epoch *head = s->epochs[0];
	bool have_cut = cut != NULL && cut->n_positions > 0;
	size_t n = have_cut ? cut->n_positions : head->n_segments;
	if (have_cut) {
		struct cfsm_result r = {0};
		rc = fsm_check_cut(s, scope, cut, &r);
		if (rc != 0) {
			errmsg_set(errmsg, "%s", r.message);
			return rc;
		}
	}
	Strata__V1__SegmentsReply *rep =
	        pb_new(&strata__v1__segments_reply__descriptor);
	if (rep == NULL ||
	    pb_reserve(&rep->segments, 0, n, sizeof(*rep->segments)) != 0) {
		goto err_oom;
	}
	for (size_t i = 0; i < n; i++) {
		const Strata__V1__Segment *seg;
		int64_t off = 0;
		if (have_cut) {
			seg = fsm_find_segment(s,
			                       cut->positions[i]->segment_id);
			off = cut->positions[i]->offset;
		} else {
			seg = head->segments[i];
		}
		if (add_info(fsm, rep, scope, stream, seg, off) != 0) {
			goto err_oom;
		}
	}
	*out = rep;
	return 0;

err_oom:
	pb_free(rep);
	return query_oom(errmsg, "the segment list");
}

static bool overlaps(const Strata__V1__Segment *a, const Strata__V1__Segment *b)
{
	return a->low < b->high && b->low < a->high;
}

static bool epoch_has(const Strata__V1__Epoch *ep, uint64_t id)
{
	for (size_t i = 0; i < ep->n_segments; i++) {
		if (ep->segments[i]->id == id) {
			return true;
		}
	}
	return false;
}

/* Whether the truncation running on s deletes segment id. */
static bool truncation_deletes(const struct cfsm *fsm,
                               const Strata__V1__StreamRecord *s, uint64_t id)
{
	const Strata__V1__Workflow *w =
	        s->workflow_id != 0 ? cfsm_find_workflow(fsm, s->workflow_id)
	                            : NULL;
	if (w == NULL ||
	    w->params_case != STRATA__V1__WORKFLOW__PARAMS_TRUNCATE) {
		return false;
	}
	for (size_t i = 0; i < w->truncate->n_delete_segments; i++) {
		if (w->truncate->delete_segments[i] == id) {
			return true;
		}
	}
	return false;
}

int cfsm_successors(const struct cfsm *fsm, const char *scope,
                    const char *stream, uint64_t segment_id,
                    Strata__V1__SuccessorsReply **out, char *errmsg)
{
	Strata__V1__StreamRecord *s;
	int rc = query_stream(fsm, scope, stream, &s, errmsg);
	if (rc != 0) {
		return rc;
	}
	const Strata__V1__Segment *seg = fsm_find_segment(s, segment_id);
	if (seg == NULL) {
		errmsg_set(errmsg,
		           "stream %.64s/%.64s has no segment " SEG_FMT
		           "; check the id",
		           scope, stream, SEG_ARGS(segment_id));
		return STRATA_ENOENT;
	}
	/* last: the newest epoch still holding the segment. */
	size_t last = 0;
	for (size_t e = 0; e < s->n_epochs; e++) {
		if (epoch_has(s->epochs[e], segment_id)) {
			last = e;
		}
	}
	Strata__V1__SuccessorsReply *r =
	        pb_new(&strata__v1__successors_reply__descriptor);
	if (r == NULL) {
		goto err_oom;
	}
	if (last + 1 < s->n_epochs) {
		const Strata__V1__Epoch *old = s->epochs[last];
		const Strata__V1__Epoch *next = s->epochs[last + 1];
		if (pb_reserve(&r->successors, 0, next->n_segments,
		               sizeof(*r->successors)) != 0) {
			goto err_oom;
		}
		for (size_t i = 0; i < next->n_segments; i++) {
			const Strata__V1__Segment *succ = next->segments[i];
			if (!overlaps(succ, seg) || epoch_has(old, succ->id)) {
				continue;
			}
			Strata__V1__Successor *x =
			        pb_new(&strata__v1__successor__descriptor);
			if (x == NULL) {
				goto err_oom;
			}
			r->successors[r->n_successors++] = x;
			x->segment = pb_clone(succ);
			if (x->segment == NULL ||
			    pb_reserve(&x->predecessors, 0, old->n_segments,
			               sizeof(*x->predecessors)) != 0) {
				goto err_oom;
			}
			for (size_t j = 0; j < old->n_segments; j++) {
				const Strata__V1__Segment *p = old->segments[j];
				if (overlaps(p, succ) &&
				    !epoch_has(next, p->id)) {
					x->predecessors[x->n_predecessors++] =
					        p->id;
				}
			}
		}
	}
	r->open = last + 1 == s->n_epochs && s->state != SS_SEALED;
	r->deleted = fsm_segment_deleted(s, segment_id) ||
	             truncation_deletes(fsm, s, segment_id);
	*out = r;
	return 0;

err_oom:
	pb_free(r);
	return query_oom(errmsg, "the successor list");
}
