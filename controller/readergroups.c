/* Controller reader groups: configuration create/update/delete, queries,
 * and the lifecycle of each group's state stream `_RG<name>`.
 *
 * happy path: CreateReaderGroupCmd records the configuration and, in the
 * same entry, creates stream `_RG<name>` (fixed, one segment: id 0) with a
 * CREATE_STREAM workflow; DeleteReaderGroupCmd forgets the configuration
 * and starts a REMOVE_STREAM workflow (seal, then delete) on the stream.
 * failure modes: both are single entries, so they happen wholly or not at
 * all; the workflows resume on a new leader like any other. A delete while
 * the state stream is still being created is refused (EBUSY: retry).
 */
#include "controller/fsm_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/errmsg.h"

/* Defaults applied to unset (0) fields, as Pravega's ReaderGroupConfig. */
#define RG_DEFAULT_REFRESH_MS 3000
#define RG_DEFAULT_MAX_OUTSTANDING 3
/* Most streams one reader group may read. */
#define RG_MAX_STREAMS 1024
/* Prefix of a group's state stream, and the longest group name that
 * leaves the stream name within the 255-character limit. */
#define RG_STREAM_PREFIX "_RG"
#define RG_NAME_MAX (255 - 3)

/* Write the state stream name of group into buf (RG_NAME_MAX + 4 bytes;
 * the group name is known to fit). */
static void rg_stream_name(char *buf, const char *group)
{
	snprintf(buf, RG_NAME_MAX + 4, RG_STREAM_PREFIX "%s", group);
}

/* Validate a config (borrowed) for scope. */
static int rg_check(const Strata__V1__ControllerState *st, const char *scope,
                    const Strata__V1__ReaderGroupConfig *cfg, bool internal,
                    struct cfsm_result *res)
{
	int rc = names_check(cfg->name, "reader group", internal, res);
	if (rc != 0) {
		return rc;
	}
	if (strlen(cfg->name) > RG_NAME_MAX) {
		return fsm_fail(res, STRATA_EBADNAME,
		                "reader group name of %zu characters is too "
		                "long for its state stream " RG_STREAM_PREFIX
		                "<name>; use at most %d characters",
		                strlen(cfg->name), RG_NAME_MAX);
	}
	if (cfg->n_streams == 0 || cfg->n_streams > RG_MAX_STREAMS) {
		return fsm_fail(res, STRATA_EINVAL,
		                "reader group %s/%s reads %zu streams; give "
		                "1..%d streams",
		                scope, cfg->name, cfg->n_streams,
		                RG_MAX_STREAMS);
	}
	if (cfg->retention >
	    STRATA__V1__READER_GROUP_RETENTION__READER_GROUP_RETENTION_AUTO_CHECKPOINT) {
		return fsm_fail(res, STRATA_EINVAL,
		                "reader group %s/%s has unknown retention type "
		                "%d; use NONE, MANUAL or AUTO_CHECKPOINT",
		                scope, cfg->name, (int)cfg->retention);
	}
	for (size_t i = 0; i < cfg->n_streams; i++) {
		const Strata__V1__ReaderGroupStream *rs = cfg->streams[i];
		const char *sscope = rs->scope[0] != '\0' ? rs->scope : scope;
		Strata__V1__StreamRecord *s;
		rc = fsm_stream_get(st, sscope, rs->stream, &s, res);
		if (rc != 0) {
			return rc;
		}
		for (size_t j = 0; j < i; j++) {
			const Strata__V1__ReaderGroupStream *o =
			        cfg->streams[j];
			const char *oscope =
			        o->scope[0] != '\0' ? o->scope : scope;
			if (strcmp(oscope, sscope) == 0 &&
			    strcmp(o->stream, rs->stream) == 0) {
				return fsm_fail(
				        res, STRATA_EINVAL,
				        "reader group %s/%s lists stream "
				        "%s/%s twice; list it once",
				        scope, cfg->name, sscope, rs->stream);
			}
		}
		if (rs->start != NULL && rs->start->n_positions > 0 &&
		    (rc = fsm_check_cut(s, sscope, rs->start, res)) != 0) {
			return rc;
		}
		if (rs->end != NULL && rs->end->n_positions > 0 &&
		    (rc = fsm_check_cut(s, sscope, rs->end, res)) != 0) {
			return rc;
		}
		/* Also across epochs: an end in a predecessor of a start
		 * segment (the group would read the start's segments with
		 * no end at all). */
		uint64_t at = 0;
		if (rs->start != NULL && rs->start->n_positions > 0 &&
		    rs->end != NULL && rs->end->n_positions > 0 &&
		    fsm_cut_behind(s, rs->end, rs->start, &at)) {
			return fsm_fail(
			        res, STRATA_EINVAL,
			        "reader group %s/%s: the end cut of "
			        "%s/%s is before its start (at segment " SEG_FMT
			        "); give an end at or after "
			        "the start",
			        scope, cfg->name, sscope, rs->stream,
			        SEG_ARGS(at));
		}
	}
	return 0;
}

/* Copy of cfg with defaults and explicit scopes; NULL on OOM. */
static Strata__V1__ReaderGroupConfig *
rg_copy(const char *scope, const Strata__V1__ReaderGroupConfig *cfg,
        uint64_t generation)
{
	Strata__V1__ReaderGroupConfig plain = *cfg;
	plain.n_released = 0; /* the controller's, never the caller's */
	plain.released = NULL;
	Strata__V1__ReaderGroupConfig *c = pb_clone(&plain);
	if (c == NULL) {
		return NULL;
	}
	for (size_t i = 0; i < c->n_streams; i++) {
		Strata__V1__ReaderGroupStream *rs = c->streams[i];
		if (rs->scope[0] == '\0') {
			char *copy = strata_strdup(scope);
			if (copy == NULL) {
				pb_free(c);
				return NULL;
			}
			if (rs->scope != protobuf_c_empty_string) {
				strata_free(rs->scope);
			}
			rs->scope = copy;
		}
	}
	if (c->group_refresh_ms == 0) {
		c->group_refresh_ms = RG_DEFAULT_REFRESH_MS;
	}
	if (c->max_outstanding_checkpoints == 0) {
		c->max_outstanding_checkpoints = RG_DEFAULT_MAX_OUTSTANDING;
	}
	c->generation = generation;
	if (c->retention !=
	    STRATA__V1__READER_GROUP_RETENTION__READER_GROUP_RETENTION_NONE) {
		/* Released up to the start (empty: the head) until the group
		 * says more. */
		c->released = strata_calloc(c->n_streams, sizeof(*c->released));
		if (c->released == NULL) {
			pb_free(c);
			return NULL;
		}
		for (size_t i = 0; i < c->n_streams; i++) {
			const Strata__V1__ReaderGroupStream *rs = c->streams[i];
			Strata__V1__ReleasedCut *r =
			        pb_new(&strata__v1__released_cut__descriptor);
			if (r == NULL) {
				pb_free(c);
				return NULL;
			}
			c->released[c->n_released++] = r;
			if (pb_strdup(&r->scope, rs->scope) != 0 ||
			    pb_strdup(&r->stream, rs->stream) != 0 ||
			    (rs->start != NULL && rs->start->n_positions > 0 &&
			     (r->cut = pb_clone(rs->start)) == NULL)) {
				pb_free(c);
				return NULL;
			}
		}
	}
	return c;
}

static int scope_get(const Strata__V1__ControllerState *st, const char *scope,
                     Strata__V1__ScopeRecord **sc, struct cfsm_result *res)
{
	*sc = fsm_scope(st, scope);
	if (*sc == NULL) {
		return fsm_fail(
		        res, STRATA_ENOENT,
		        "scope \"%.64s\" does not exist; create it first "
		        "or check the name",
		        scope);
	}
	return 0;
}

/* Reader group scope/name: its scope record and index, or ENOENT naming
 * it (res set). */
static int rg_find(const Strata__V1__ControllerState *st, const char *scope,
                   const char *name, Strata__V1__ScopeRecord **sc, size_t *at,
                   struct cfsm_result *res)
{
	int rc = scope_get(st, scope, sc, res);
	if (rc != 0) {
		return rc;
	}
	bool found;
	*at = fsm_rg_index(*sc, name, &found);
	if (!found) {
		return fsm_fail(
		        res, STRATA_ENOENT,
		        "reader group %.64s/%.64s does not exist; check "
		        "the name or create it first",
		        scope, name);
	}
	return 0;
}

/* A change of g based on generation gen: ECONFLICT unless current. */
static int rg_at_generation(const Strata__V1__ReaderGroupConfig *g,
                            const char *scope, uint64_t gen, const char *what,
                            struct cfsm_result *res)
{
	if (gen == g->generation) {
		return 0;
	}
	return fsm_fail(res, STRATA_ECONFLICT,
	                "reader group %s/%s is at generation %" PRIu64
	                ", the %s is based on %" PRIu64
	                "; read the group again and retry",
	                scope, g->name, g->generation, what, gen);
}

int rg_create(struct cfsm *f, const Strata__V1__CreateReaderGroupCmd *c,
              struct cfsm_result *res)
{
	const Strata__V1__CreateReaderGroupRequest *r = c->request;
	Strata__V1__ScopeRecord *sc;
	int rc = scope_get(f->st, r->scope, &sc, res);
	if (rc == 0) {
		rc = rg_check(f->st, r->scope, r->config, c->internal, res);
	}
	if (rc != 0) {
		return rc;
	}
	bool found;
	size_t at = fsm_rg_index(sc, r->config->name, &found);
	if (found) {
		return fsm_fail(
		        res, STRATA_EEXIST,
		        "reader group %s/%s already exists; update it or "
		        "choose another name",
		        r->scope, r->config->name);
	}
	char stream[RG_NAME_MAX + 4];
	rg_stream_name(stream, r->config->name);
	const Strata__V1__StreamRecord *s = fsm_stream(f->st, r->scope, stream);
	if (s != NULL && s->state != SS_ACTIVE && s->state != SS_CREATING) {
		return fsm_fail(res, STRATA_EBUSY,
		                "the state stream %s/%s of an earlier reader "
		                "group %s is still being removed; retry the "
		                "create when it is gone",
		                r->scope, stream, r->config->name);
	}
	Strata__V1__ReaderGroupConfig *cfg = rg_copy(r->scope, r->config, 0);
	if (cfg == NULL || pb_reserve(&sc->reader_groups, sc->n_reader_groups,
	                              1, sizeof(*sc->reader_groups)) != 0) {
		pb_free(cfg);
		return fsm_fail(res, STRATA_ENOMEM,
		                "out of memory creating reader group %s/%s",
		                r->scope, r->config->name);
	}
	if (s == NULL) {
		rc = workflows_create_internal(f, r->scope, stream, c->now_ms,
		                               res);
		if (rc != 0) {
			pb_free(cfg);
			return rc;
		}
	} else if (s->state == SS_CREATING) {
		/* Adopt a state stream still being created: wait for it. */
		res->workflow_id = s->workflow_id;
	}
	memmove(&sc->reader_groups[at + 1], &sc->reader_groups[at],
	        (sc->n_reader_groups - at) * sizeof(*sc->reader_groups));
	sc->reader_groups[at] = cfg;
	sc->n_reader_groups++;
	return 0;
}

int rg_update(struct cfsm *f, const Strata__V1__UpdateReaderGroupCmd *c,
              struct cfsm_result *res)
{
	const Strata__V1__UpdateReaderGroupRequest *r = c->request;
	Strata__V1__ScopeRecord *sc;
	size_t at;
	int rc = rg_find(f->st, r->scope, r->config->name, &sc, &at, res);
	if (rc != 0) {
		return rc;
	}
	Strata__V1__ReaderGroupConfig *old = sc->reader_groups[at];
	rc = rg_at_generation(old, r->scope, r->config->generation, "update",
	                      res);
	if (rc != 0) {
		return rc;
	}
	rc = rg_check(f->st, r->scope, r->config, true, res);
	if (rc != 0) {
		return rc;
	}
	Strata__V1__ReaderGroupConfig *cfg =
	        rg_copy(r->scope, r->config, old->generation + 1);
	if (cfg == NULL) {
		return fsm_fail(res, STRATA_ENOMEM,
		                "out of memory updating reader group %s/%s",
		                r->scope, old->name);
	}
	sc->reader_groups[at] = cfg;
	pb_free(old);
	return 0;
}

int rg_delete(struct cfsm *f, const Strata__V1__DeleteReaderGroupCmd *c,
              struct cfsm_result *res)
{
	const Strata__V1__DeleteReaderGroupRequest *r = c->request;
	Strata__V1__ScopeRecord *sc;
	size_t at;
	int rc = rg_find(f->st, r->scope, r->name, &sc, &at, res);
	if (rc != 0) {
		return rc;
	}
	char stream[RG_NAME_MAX + 4];
	Strata__V1__ReaderGroupConfig *old = sc->reader_groups[at];
	if (strlen(old->name) <= RG_NAME_MAX) {
		rg_stream_name(stream, old->name);
		if (fsm_stream(f->st, r->scope, stream) != NULL &&
		    (rc = workflows_remove(f, r->scope, stream, res)) != 0) {
			char why[STRATA_ERRMSG_SIZE];
			snprintf(why, sizeof(why), "%s", res->message);
			return fsm_fail(res, rc,
			                "reader group %s/%s cannot be deleted "
			                "yet: %.180s",
			                r->scope, old->name, why);
		}
	}
	pb_remove_at((void **)sc->reader_groups, &sc->n_reader_groups, at);
	pb_free(old);
	return 0;
}

/* The released cut of group g for scope/stream; NULL when g does not
 * read it. */
static Strata__V1__ReleasedCut *
rg_released(const Strata__V1__ReaderGroupConfig *g, const char *scope,
            const char *stream)
{
	for (size_t i = 0; i < g->n_released; i++) {
		Strata__V1__ReleasedCut *r = g->released[i];
		if (strcmp(r->scope, scope) == 0 &&
		    strcmp(r->stream, stream) == 0) {
			return r;
		}
	}
	return NULL;
}

/* Whether g's configuration names scope/stream. */
static bool rg_reads(const Strata__V1__ReaderGroupConfig *g, const char *scope,
                     const char *stream)
{
	for (size_t i = 0; i < g->n_streams; i++) {
		const Strata__V1__ReaderGroupStream *rs = g->streams[i];
		if (strcmp(rs->scope, scope) == 0 &&
		    strcmp(rs->stream, stream) == 0) {
			return true;
		}
	}
	return false;
}

void rg_forget_stream(Strata__V1__ControllerState *st, const char *scope,
                      const char *stream)
{
	for (size_t i = 0; i < st->n_scopes; i++) {
		Strata__V1__ScopeRecord *sc = st->scopes[i];
		for (size_t j = 0; j < sc->n_reader_groups; j++) {
			Strata__V1__ReaderGroupConfig *g = sc->reader_groups[j];
			for (size_t k = g->n_released; k-- > 0;) {
				Strata__V1__ReleasedCut *r = g->released[k];
				if (strcmp(r->scope, scope) == 0 &&
				    strcmp(r->stream, stream) == 0) {
					pb_remove_at((void **)g->released,
					             &g->n_released, k);
					pb_free(r);
				}
			}
		}
	}
}

int rg_release(struct cfsm *f, const Strata__V1__UpdateRetentionCutCmd *c,
               struct cfsm_result *res)
{
	const Strata__V1__UpdateRetentionCutRequest *r = c->request;
	Strata__V1__ScopeRecord *sc;
	size_t at;
	int rc = rg_find(f->st, r->scope, r->group, &sc, &at, res);
	if (rc != 0) {
		return rc;
	}
	Strata__V1__ReaderGroupConfig *g = sc->reader_groups[at];
	if (g->retention ==
	    STRATA__V1__READER_GROUP_RETENTION__READER_GROUP_RETENTION_NONE) {
		return fsm_fail(
		        res, STRATA_EINVAL,
		        "reader group %s/%s has retention NONE, so it "
		        "holds back no stream; update it to MANUAL or "
		        "AUTO_CHECKPOINT retention (stratactl group update "
		        "--retention manual|auto-checkpoint) to release cuts",
		        r->scope, g->name);
	}
	if ((rc = rg_at_generation(g, r->scope, r->generation, "release",
	                           res)) != 0) {
		return rc;
	}
	if (r->n_cuts == 0 || r->n_cuts > g->n_streams) {
		return fsm_fail(res, STRATA_EINVAL,
		                "release of reader group %s/%s gives %zu cuts; "
		                "give 1..%zu, one per stream it reads",
		                r->scope, g->name, r->n_cuts, g->n_streams);
	}
	/* Check every cut, then copy them, then swap: all or nothing. */
	size_t n_gone = 0; /* cuts of streams deleted since */
	Strata__V1__StreamCut **copies =
	        strata_calloc(r->n_cuts, sizeof(*copies));
	if (copies == NULL) {
		goto err_oom;
	}
	for (size_t i = 0; i < r->n_cuts; i++) {
		const Strata__V1__ReleasedCut *x = r->cuts[i];
		const char *scope = x->scope[0] != '\0' ? x->scope : r->scope;
		Strata__V1__StreamRecord *s;
		bool gone = rg_released(g, scope, x->stream) == NULL;
		if (gone && !rg_reads(g, scope, x->stream)) {
			rc = fsm_fail(res, STRATA_EINVAL,
			              "reader group %s/%s does not read stream "
			              "%.64s/%.64s; release only its streams",
			              r->scope, g->name, scope, x->stream);
			goto out;
		}
		for (size_t j = 0; j < i; j++) {
			const Strata__V1__ReleasedCut *y = r->cuts[j];
			const char *ys =
			        y->scope[0] != '\0' ? y->scope : r->scope;
			if (strcmp(ys, scope) == 0 &&
			    strcmp(y->stream, x->stream) == 0) {
				rc = fsm_fail(res, STRATA_EINVAL,
				              "release of reader group %s/%s "
				              "names stream %s/%s twice; give "
				              "one cut per stream",
				              r->scope, g->name, scope,
				              x->stream);
				goto out;
			}
		}
		if (gone) {
			/* Deleted since the group was set up: it holds
			 * nothing there to release (rg_forget_stream). */
			if (++n_gone == r->n_cuts) {
				rc = fsm_fail(
				        res, STRATA_ENOENT,
				        "stream %.64s/%.64s was deleted after "
				        "reader group %s/%s was set up, so the "
				        "group holds it back no more; update "
				        "the group to read the stream again",
				        scope, x->stream, r->scope, g->name);
				goto out;
			}
			continue;
		}
		if ((rc = fsm_stream_get(f->st, scope, x->stream, &s, res)) !=
		            0 ||
		    (rc = fsm_check_cut(s, scope, x->cut, res)) != 0) {
			goto out;
		}
		if ((copies[i] = pb_clone(x->cut)) == NULL) {
			goto err_oom;
		}
	}
	for (size_t i = 0; i < r->n_cuts; i++) {
		const Strata__V1__ReleasedCut *x = r->cuts[i];
		Strata__V1__ReleasedCut *held = rg_released(
		        g, x->scope[0] != '\0' ? x->scope : r->scope,
		        x->stream);
		if (held == NULL) {
			continue; /* deleted: skipped above */
		}
		pb_free(held->cut);
		held->cut = copies[i];
		held->updated_ms = c->now_ms;
		copies[i] = NULL;
	}
	rc = 0;
out:
	for (size_t i = 0; copies != NULL && i < r->n_cuts; i++) {
		pb_free(copies[i]);
	}
	strata_free(copies);
	return rc;

err_oom:
	rc = fsm_fail(res, STRATA_ENOMEM,
	              "out of memory releasing cuts of reader group %s/%s",
	              r->scope, g->name);
	goto out;
}

int cfsm_get_reader_group(const struct cfsm *fsm, const char *scope,
                          const char *name, Strata__V1__ReaderGroupConfig **out,
                          char *errmsg)
{
	const Strata__V1__ScopeRecord *sc = fsm_scope(fsm->st, scope);
	bool found = false;
	size_t at = sc != NULL ? fsm_rg_index(sc, name, &found) : 0;
	if (!found) {
		errmsg_set(errmsg,
		           "reader group %.64s/%.64s does not exist; check the "
		           "names",
		           scope, name);
		return STRATA_ENOENT;
	}
	*out = pb_clone(sc->reader_groups[at]);
	if (*out == NULL) {
		errmsg_set(errmsg, "out of memory copying reader group %s/%s",
		           scope, name);
		return STRATA_ENOMEM;
	}
	return 0;
}

int cfsm_list_reader_groups(const struct cfsm *fsm, const char *scope,
                            Strata__V1__ListReaderGroupsReply **out,
                            char *errmsg)
{
	const Strata__V1__ScopeRecord *sc = fsm_scope(fsm->st, scope);
	if (sc == NULL) {
		errmsg_set(errmsg,
		           "scope \"%.64s\" does not exist; check the name",
		           scope);
		return STRATA_ENOENT;
	}
	Strata__V1__ListReaderGroupsReply *r =
	        pb_new(&strata__v1__list_reader_groups_reply__descriptor);
	if (r == NULL || pb_reserve(&r->groups, 0, sc->n_reader_groups,
	                            sizeof(*r->groups)) != 0) {
		goto err_oom;
	}
	for (size_t i = 0; i < sc->n_reader_groups; i++) {
		r->groups[i] = pb_clone(sc->reader_groups[i]);
		if (r->groups[i] == NULL) {
			goto err_oom;
		}
		r->n_groups++;
	}
	*out = r;
	return 0;

err_oom:
	pb_free(r);
	errmsg_set(errmsg, "out of memory listing reader groups of %s", scope);
	return STRATA_ENOMEM;
}
