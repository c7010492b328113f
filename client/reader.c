/* Reader groups, readers and checkpoints on top of the reader-group state
 * (client/rg_state.h) kept in a state synchronizer on the group's
 * `_RG<group>` segment. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/client_int.h"
#include "client/rg_state.h"
#include "client/synchronizer.h"
#include "client/watermark.h"
#include "common/clock.h"
#include "common/alloc.h"
#include "common/log.h"
#include "strata/readergroup.h"
#include "strata/segment.h"
#include "strata/v1/controller.pb-c.h"

/* Compact the state once this many bytes of records follow the last full
 * state. */
#define RG_COMPACT_BYTES (512u * 1024)
/* Poll interval while waiting for a checkpoint. */
#define RG_POLL_MS 20
/* A segment of a reader that had nothing is not asked again for this
 * long while its others have events: without it every event of a busy
 * segment cost a round trip to each idle one (1,000 events/s over 3
 * segments of which 1 had data). New data in a quiet segment waits at
 * most this long. */
#define READER_QUIET_MS 10
/* A reader asks the controller for new watermarks at most this often. */
#define WM_REFRESH_MS 200
/* Watermarks a reader keeps per stream (the controller keeps 1,024). */
#define WM_KEEP 1024
/* Defaults for 0 in the configuration (as the controller's). */
#define RG_DEFAULT_REFRESH_MS 3000
#define RG_DEFAULT_OUTSTANDING 3
/* Shortest automatic checkpoint interval. */
#define RG_MIN_AUTO_MS 100

/* ------------------------------------------ the log: a real segment -- */

struct seglog {
	struct strata_client *c;
	struct strata_rsegment *rs;
	char name[STRATA_NAME_MAX * 2 + 64];
	char group[STRATA_NAME_MAX * 2 + 2]; /* scope/group */
};

/* rc of an op on the state segment: STRATA_ENOENT means the group was
 * deleted under its readers; say that, not the internal segment name. */
static int sl_rc(const struct seglog *l, int rc, char *errmsg)
{
	if (rc == STRATA_ENOENT) {
		client_err(errmsg,
		           "reader group %s was deleted (its state went with "
		           "it); create it again and restart its readers",
		           l->group);
	}
	return rc;
}

static int sl_read(void *log, uint64_t from, rlog_record_fn cb, void *arg,
                   uint64_t *end, char *errmsg)
{
	struct seglog *l = log;
	uint64_t rev, start;
	int rc = strata_rsegment_revision(l->rs, &rev, &start, errmsg);
	if (rc != 0) {
		return sl_rc(l, rc, errmsg);
	}
	if (from < start) {
		*end = start;
		return STRATA_ETRUNCATED;
	}
	*end = from;
	if (from >= rev) {
		return 0;
	}
	struct strata_event_iter *it;
	rc = strata_event_iter_new(l->c, l->name, from, rev, 0, &it, errmsg);
	if (rc != 0) {
		return sl_rc(l, rc, errmsg);
	}
	for (;;) {
		struct strata_event ev;
		rc = strata_event_iter_next(it, 0, &ev, errmsg);
		if (rc != 0) {
			break;
		}
		if (ev.data != NULL) {
			rc = cb(arg, ev.data, ev.len, ev.offset,
			        ev.next_offset);
			if (rc != 0) {
				break;
			}
			*end = ev.next_offset;
		}
		if (ev.end || *end >= rev) {
			break;
		}
	}
	strata_event_iter_free(it);
	return sl_rc(l, rc, errmsg);
}

static int sl_append_cond(void *log, uint64_t expected, const void *data,
                          size_t len, uint64_t *new_rev, char *errmsg)
{
	struct seglog *l = log;
	return sl_rc(l,
	             strata_rsegment_append(l->rs, expected, data, len, new_rev,
	                                    errmsg),
	             errmsg);
}

static int sl_append(void *log, const void *data, size_t len, uint64_t *offset,
                     char *errmsg)
{
	struct seglog *l = log;
	return sl_rc(
	        l, strata_rsegment_append_any(l->rs, data, len, offset, errmsg),
	        errmsg);
}

static int sl_truncate(void *log, uint64_t rev, char *errmsg)
{
	struct seglog *l = log;
	return sl_rc(l, strata_rsegment_truncate(l->rs, rev, errmsg), errmsg);
}

static int sl_bounds(void *log, uint64_t *start, uint64_t *end, char *errmsg)
{
	struct seglog *l = log;
	return sl_rc(l, strata_rsegment_revision(l->rs, end, start, errmsg),
	             errmsg);
}

static const struct rlog_ops seglog_ops = {
        .read = sl_read,
        .append_cond = sl_append_cond,
        .append = sl_append,
        .truncate = sl_truncate,
        .bounds = sl_bounds,
};

/* The configuration of reader group scope/group as the controller keeps
 * it (*out: free with rpc_pb_free): 0, STRATA_ENOENT (errmsg says so), or
 * the query's error. */
static int ctl_group_config(struct strata_client *c, const char *scope,
                            const char *group,
                            Strata__V1__ReaderGroupConfig **out, char *errmsg)
{
	Strata__V1__GetReaderGroupRequest q =
	        STRATA__V1__GET_READER_GROUP_REQUEST__INIT;
	q.scope = (char *)scope;
	q.name = (char *)group;
	Strata__V1__ReaderGroupConfig *rep = NULL;
	int rc = client_ctl_query(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_GET_READER_GROUP, &q.base,
	        &strata__v1__reader_group_config__descriptor,
	        (ProtobufCMessage **)&rep, errmsg);
	if (rc != 0 && rep != NULL) {
		rpc_pb_free(&rep->base);
		rep = NULL;
	}
	if (rc == STRATA_ENOENT) {
		client_err(errmsg,
		           "reader group %s/%s does not exist; create it "
		           "first ('stratactl group create', "
		           "strata_reader_group_create) or check the name",
		           scope, group);
	}
	*out = rep;
	return rc;
}

/* Whether the controller knows reader group scope/group: 0 (yes),
 * STRATA_ENOENT (no, errmsg says so), or the query's error. */
static int ctl_group_exists(struct strata_client *c, const char *scope,
                            const char *group, char *errmsg)
{
	Strata__V1__ReaderGroupConfig *rep = NULL;
	int rc = ctl_group_config(c, scope, group, &rep, errmsg);
	if (rep != NULL) {
		rpc_pb_free(&rep->base);
	}
	return rc;
}

/*
 * The state segment of group: stream `_RG<group>`, its segment 0. The
 * controller creates it with the group; while that workflow runs (the
 * segment does not exist yet) and the group exists, retry until the
 * operation timeout.
 */
static int seglog_open(struct seglog *l, struct strata_client *c,
                       const char *scope, const char *group, char *errmsg)
{
	char stream[STRATA_NAME_MAX + 8];
	memset(l, 0, sizeof(*l));
	l->c = c;
	snprintf(l->group, sizeof(l->group), "%s/%s", scope, group);
	snprintf(stream, sizeof(stream), "_RG%s", group);
	strata_segment_name(l->name, sizeof(l->name), scope, stream, 0);
	uint64_t deadline =
	        clock_mono_ms() + (uint64_t)c->cfg.operation_timeout_ms;
	unsigned delay = 20;
	bool known = false;
	for (;;) {
		int rc = strata_rsegment_open(c, l->name, &l->rs, errmsg);
		if (rc != STRATA_ENOENT) {
			return rc;
		}
		if (!known) {
			/* Is it being created, or not there at all? */
			if ((rc = ctl_group_exists(c, scope, group, errmsg)) !=
			    0) {
				return rc;
			}
			known = true;
		}
		if (clock_mono_ms() + delay >= deadline) {
			client_err(errmsg,
			           "reader group %s/%s: its state segment %s "
			           "still does not exist after the operation "
			           "timeout; check the controller's workflows "
			           "and retry",
			           scope, group, l->name);
			return STRATA_ETIMEDOUT;
		}
		clock_sleep_ms(delay);
		if (delay < 500) {
			delay *= 2;
		}
	}
}

static void seglog_close(struct seglog *l)
{
	if (l->rs != NULL) {
		strata_rsegment_close(l->rs);
		l->rs = NULL;
	}
}

/* --------------------------------------------------------- the group -- */

struct strata_reader_group {
	struct strata_client *c;
	char scope[STRATA_NAME_MAX + 1];
	char group[STRATA_NAME_MAX + 1];
	struct seglog log;
	struct rg_state st;
	struct synchronizer sync;
	/* The group's retention was seen not to be AUTO_CHECKPOINT:
	 * completed checkpoints need no release (and no controller query).
	 * Only an update changes that, and it replaces every reader. */
	atomic_bool not_auto;
};

void strata_reader_group_config_default(struct strata_reader_group_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->group_refresh_ms = 3000;
	cfg->max_outstanding_checkpoints = 3;
}

/* Longest group name: `_RG<group>` must fit a stream name. */
#define RG_GROUP_NAME_MAX (STRATA_NAME_MAX - 3)

/* Validate scope and group names: 0 or STRATA_EBADNAME. */
static int check_group(const char *scope, const char *group, char *errmsg)
{
	int rc = client_check_name(scope, "scope", errmsg);
	if (rc == 0) {
		rc = client_check_name(group, "reader group", errmsg);
	}
	if (rc == 0 && strlen(group) > RG_GROUP_NAME_MAX) {
		client_err(errmsg,
		           "reader group name \"%.40s...\" is %zu characters; "
		           "the limit is %d (its state stream _RG<name> must "
		           "fit 255)",
		           group, strlen(group), RG_GROUP_NAME_MAX);
		rc = STRATA_EBADNAME;
	}
	if (rc == 0 && group[0] == '_') {
		client_err(errmsg,
		           "reader group name \"%.100s\" starts with '_', "
		           "which marks internal objects; pick another name",
		           group);
		rc = STRATA_EBADNAME;
	}
	return rc;
}

static int group_open(struct strata_client *c, const char *scope,
                      const char *group, struct strata_reader_group **out,
                      char *errmsg)
{
	int rc = check_group(scope, group, errmsg);
	if (rc == 0) {
		rc = client_check_blocking(c, "open reader group", errmsg);
	}
	if (rc != 0) {
		return rc;
	}
	struct strata_reader_group *rg = strata_calloc(1, sizeof(*rg));
	if (rg == NULL) {
		return STRATA_ENOMEM;
	}
	rg->c = c;
	snprintf(rg->scope, sizeof(rg->scope), "%s", scope);
	snprintf(rg->group, sizeof(rg->group), "%s", group);
	rg_state_init(&rg->st);
	rc = seglog_open(&rg->log, c, scope, group, errmsg);
	if (rc != 0) {
		strata_free(rg);
		return rc;
	}
	sync_init(&rg->sync, &seglog_ops, &rg->log, &rg_sync_ops, &rg->st);
	*out = rg;
	return 0;
}

void strata_reader_group_close(struct strata_reader_group *rg)
{
	if (rg == NULL) {
		return;
	}
	seglog_close(&rg->log);
	rg_state_close(&rg->st);
	strata_free(rg);
}

int strata_reader_group_open(struct strata_client *c, const char *scope,
                             const char *group,
                             struct strata_reader_group **out, char *errmsg)
{
	struct strata_reader_group *rg;
	int rc = group_open(c, scope, group, &rg, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = sync_fetch(&rg->sync, errmsg);
	if (rc == 0 && rg->st.n_streams == 0) {
		client_err(errmsg,
		           "reader group %s/%s has no state yet; create it "
		           "first ('stratactl group create', "
		           "strata_reader_group_create)",
		           scope, group);
		rc = STRATA_ENOENT;
	}
	if (rc != 0) {
		strata_reader_group_close(rg);
		return rc;
	}
	*out = rg;
	return 0;
}

/* Fill a ReaderGroupStream cut from a strata cut (pointers borrowed). */
static void pb_cut(Strata__V1__StreamCut *pc, Strata__V1__SegmentOffset *pp,
                   Strata__V1__SegmentOffset **ppp,
                   const struct strata_stream_cut *cut)
{
	for (size_t i = 0; i < cut->n; i++) {
		Strata__V1__SegmentOffset x = STRATA__V1__SEGMENT_OFFSET__INIT;
		x.segment_id = cut->positions[i].segment_id;
		x.offset = cut->positions[i].offset;
		pp[i] = x;
		ppp[i] = &pp[i];
	}
	pc->n_positions = cut->n;
	pc->positions = ppp;
}

/* Record the group's configuration in the controller: create (which
 * creates the `_RG<group>` stream and waits for its state segment) or
 * update (at generation). */
static int ctl_put_group(struct strata_client *c, const char *scope,
                         const char *group,
                         const struct strata_reader_group_config *cfg,
                         bool update, uint64_t generation, char *errmsg)
{
	size_t n = cfg->n_streams;
	int rc = STRATA_ENOMEM;
	Strata__V1__ReaderGroupStream *rs = strata_calloc(n, sizeof(*rs));
	Strata__V1__ReaderGroupStream **rsp = strata_calloc(n, sizeof(*rsp));
	Strata__V1__StreamCut *cuts = strata_calloc(2 * n, sizeof(*cuts));
	size_t npos = 0;
	for (size_t i = 0; i < n; i++) {
		npos += cfg->streams[i].start->n;
		npos += cfg->streams[i].end != NULL ? cfg->streams[i].end->n
		                                    : 0;
	}
	Strata__V1__SegmentOffset *pp = strata_calloc(npos + 1, sizeof(*pp));
	Strata__V1__SegmentOffset **ppp = strata_calloc(npos + 1, sizeof(*ppp));
	if (rs == NULL || rsp == NULL || cuts == NULL || pp == NULL ||
	    ppp == NULL) {
		goto out;
	}
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		const struct strata_reader_group_stream *s = &cfg->streams[i];
		Strata__V1__ReaderGroupStream x =
		        STRATA__V1__READER_GROUP_STREAM__INIT;
		Strata__V1__StreamCut ci = STRATA__V1__STREAM_CUT__INIT;
		cuts[2 * i] = ci;
		cuts[2 * i + 1] = ci;
		x.scope = (char *)s->start->scope;
		x.stream = (char *)s->start->stream;
		pb_cut(&cuts[2 * i], pp + used, ppp + used, s->start);
		used += s->start->n;
		x.start = &cuts[2 * i];
		if (s->end != NULL) {
			pb_cut(&cuts[2 * i + 1], pp + used, ppp + used, s->end);
			used += s->end->n;
			x.end = &cuts[2 * i + 1];
		}
		rs[i] = x;
		rsp[i] = &rs[i];
	}
	Strata__V1__ReaderGroupConfig pc =
	        STRATA__V1__READER_GROUP_CONFIG__INIT;
	pc.name = (char *)group;
	pc.streams = rsp;
	pc.n_streams = n;
	pc.group_refresh_ms = cfg->group_refresh_ms;
	pc.max_outstanding_checkpoints = cfg->max_outstanding_checkpoints;
	pc.retention = (Strata__V1__ReaderGroupRetention)cfg->retention;
	pc.checkpoint_interval_ms = cfg->checkpoint_interval_ms;
	pc.generation = generation;
	char what[2 * STRATA_NAME_MAX + 32];
	snprintf(what, sizeof(what), "%s reader group %s/%s",
	         update ? "update" : "create", scope, group);
	if (update) {
		Strata__V1__UpdateReaderGroupRequest q =
		        STRATA__V1__UPDATE_READER_GROUP_REQUEST__INIT;
		q.scope = (char *)scope;
		q.config = &pc;
		rc = client_ctl_mutate(
		        c,
		        STRATA__V1__CONTROLLER_METHOD__CTL_UPDATE_READER_GROUP,
		        &q.base, 0, what, errmsg);
	} else {
		Strata__V1__CreateReaderGroupRequest q =
		        STRATA__V1__CREATE_READER_GROUP_REQUEST__INIT;
		q.scope = (char *)scope;
		q.config = &pc;
		rc = client_ctl_mutate(
		        c,
		        STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_READER_GROUP,
		        &q.base, STRATA_EEXIST, what, errmsg);
	}
out:
	strata_free(rs);
	strata_free(rsp);
	strata_free(cuts);
	strata_free(pp);
	strata_free(ppp);
	return rc;
}

/* Add the segments of one configured stream to the initial state. */
static int init_stream(struct strata_client *c, struct rg_state *st,
                       const struct strata_reader_group_stream *s, char *errmsg)
{
	struct rg_pos *end = NULL;
	size_t n_end = s->end != NULL ? s->end->n : 0;
	struct strata_segment_list *l = NULL;
	uint32_t idx;
	int rc;
	if (n_end > 0) {
		/* End cut segments: their ranges come with the cut query. */
		rc = strata_stream_segments_at_cut(c, s->end, &l, errmsg);
		if (rc != 0) {
			return rc;
		}
		end = strata_calloc(l->n, sizeof(*end));
		if (end == NULL) {
			strata_segment_list_free(l);
			return STRATA_ENOMEM;
		}
		for (size_t i = 0; i < l->n; i++) {
			end[i] = (struct rg_pos){
			        0, l->segments[i].id,
			        (uint64_t)l->segments[i].offset,
			        l->segments[i].low, l->segments[i].high};
		}
		n_end = l->n;
		strata_segment_list_free(l);
		l = NULL;
	}
	rc = rg_state_add_stream(st, s->start->scope, s->start->stream, end,
	                         n_end, &idx);
	strata_free(end);
	if (rc != 0) {
		client_err(errmsg,
		           "reader group: too many streams or positions");
		return rc;
	}
	rc = strata_stream_segments_at_cut(c, s->start, &l, errmsg);
	if (rc != 0) {
		return rc;
	}
	for (size_t i = 0; rc == 0 && i < l->n; i++) {
		struct rg_pos p = {idx, l->segments[i].id,
		                   (uint64_t)l->segments[i].offset,
		                   l->segments[i].low, l->segments[i].high};
		rc = rg_state_add_segment(st, &p);
	}
	strata_segment_list_free(l);
	return rc;
}

struct gen_full_arg {
	struct rg_state *full;
	bool only_if_empty; /* creation: nothing may be there yet */
	int found;          /* set when the log already had a state */
	bool next_epoch;    /* a reset: full's epoch = the current one + 1,
	                       so that every reader of the state it replaces
	                       must join again */
};

static int gen_full(void *arg, const void *state, struct buf *out, char *errmsg)
{
	struct gen_full_arg *a = arg;
	const struct rg_state *cur = state;
	(void)errmsg;
	if (a->only_if_empty && cur->n_streams > 0) {
		a->found = 1;
		return 0;
	}
	if (a->next_epoch) {
		a->full->epoch = cur->epoch + 1;
	}
	return rg_state_encode(a->full, out);
}

/* 0 when cfg is a valid group configuration for group, else
 * STRATA_EINVAL with errmsg naming the field. */
static int check_config(const char *group,
                        const struct strata_reader_group_config *cfg,
                        char *errmsg)
{
	if (cfg == NULL || cfg->n_streams == 0 ||
	    cfg->n_streams > RG_MAX_STREAMS ||
	    cfg->max_outstanding_checkpoints > RG_MAX_CHECKPOINTS / 2) {
		client_err(errmsg,
		           "reader group %s: give 1..%d streams and at most "
		           "%d outstanding checkpoints",
		           group, RG_MAX_STREAMS, RG_MAX_CHECKPOINTS / 2);
		return STRATA_EINVAL;
	}
	if (cfg->checkpoint_interval_ms != 0 &&
	    cfg->checkpoint_interval_ms < RG_MIN_AUTO_MS) {
		client_err(errmsg,
		           "reader group %s: checkpoint_interval_ms %" PRIu32
		           " is below %d; give 0 (off) or at least %d",
		           group, cfg->checkpoint_interval_ms, RG_MIN_AUTO_MS,
		           RG_MIN_AUTO_MS);
		return STRATA_EINVAL;
	}
	if ((unsigned)cfg->retention >
	    (unsigned)STRATA_RG_RETENTION_AUTO_CHECKPOINT) {
		client_err(errmsg,
		           "reader group %s: retention %d is unknown; use "
		           "STRATA_RG_RETENTION_NONE, _MANUAL or "
		           "_AUTO_CHECKPOINT",
		           group, (int)cfg->retention);
		return STRATA_EINVAL;
	}
	for (size_t i = 0; i < cfg->n_streams; i++) {
		const struct strata_stream_cut *from = cfg->streams[i].start;
		const struct strata_stream_cut *to = cfg->streams[i].end;
		if (from == NULL) {
			client_err(errmsg,
			           "reader group %s: stream %zu has no start "
			           "cut (use an empty cut for the head)",
			           group, i);
			return STRATA_EINVAL;
		}
		/* An end before the start in a segment both name: nothing
		 * there could ever be read (the iterator refuses it). */
		for (size_t a = 0; to != NULL && a < from->n; a++) {
			for (size_t b = 0; b < to->n; b++) {
				const struct strata_segment_position *p =
				        &from->positions[a];
				const struct strata_segment_position *q =
				        &to->positions[b];
				if (p->segment_id == q->segment_id &&
				    q->offset < p->offset) {
					client_err(
					        errmsg,
					        "reader group %s: the end cut "
					        "of "
					        "%s/%s is before its start in "
					        "segment %" PRIu32 ".%" PRIu32
					        " (%" PRId64 " < %" PRId64 ")",
					        group, from->scope,
					        from->stream,
					        (uint32_t)p->segment_id,
					        (uint32_t)(p->segment_id >> 32),
					        q->offset, p->offset);
					return STRATA_EINVAL;
				}
			}
		}
	}
	return 0;
}

/* The state a group of configuration cfg starts from (*st initialised
 * here; close it also on error). */
static int build_state(struct strata_client *c,
                       const struct strata_reader_group_config *cfg,
                       struct rg_state *st, char *errmsg)
{
	rg_state_init(st);
	st->refresh_ms = cfg->group_refresh_ms > 0 ? cfg->group_refresh_ms
	                                           : RG_DEFAULT_REFRESH_MS;
	st->max_outstanding = cfg->max_outstanding_checkpoints > 0
	                              ? cfg->max_outstanding_checkpoints
	                              : RG_DEFAULT_OUTSTANDING;
	st->checkpoint_ms = cfg->checkpoint_interval_ms;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < cfg->n_streams; i++) {
		rc = init_stream(c, st, &cfg->streams[i], errmsg);
	}
	return rc;
}

/* Every start cut of cfg lies within its segments (a start past a
 * segment's end is waited for, or fails every read). */
static int starts_within(struct strata_client *c, const char *group,
                         const struct strata_reader_group_config *cfg,
                         char *errmsg)
{
	for (size_t i = 0; i < cfg->n_streams; i++) {
		char what[128];
		snprintf(what, sizeof(what), "reader group %.64s: start cut",
		         group);
		int rc = client_cut_within(c, cfg->streams[i].start, what,
		                           errmsg);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

int strata_reader_group_create(struct strata_client *c, const char *scope,
                               const char *group,
                               const struct strata_reader_group_config *cfg,
                               char *errmsg)
{
	int rc = check_group(scope, group, errmsg);
	if (rc == 0) {
		rc = check_config(group, cfg, errmsg);
	}
	if (rc == 0) {
		rc = client_check_blocking(c, "create reader group", errmsg);
	}
	if (rc == 0) {
		rc = starts_within(c, group, cfg, errmsg);
	}
	if (rc == 0) {
		rc = ctl_put_group(c, scope, group, cfg, false, 0, errmsg);
	}
	/* EEXIST: the controller knows the group. Its state is written
	 * below only if the log is still empty (a creator that died between
	 * the two steps); otherwise the group exists. */
	if (rc != 0 && rc != STRATA_EEXIST) {
		return rc;
	}
	struct rg_state init;
	rc = build_state(c, cfg, &init, errmsg);
	struct strata_reader_group *rg = NULL;
	if (rc == 0) {
		rc = group_open(c, scope, group, &rg, errmsg);
	}
	if (rc == 0) {
		struct gen_full_arg a = {&init, true, 0, false};
		rc = sync_update(&rg->sync, gen_full, &a, NULL, errmsg);
		if (rc == 0 && a.found) {
			client_err(errmsg,
			           "reader group %s/%s exists already; open it "
			           "or delete it first",
			           scope, group);
			rc = STRATA_EEXIST;
		}
	}
	strata_reader_group_close(rg);
	rg_state_close(&init);
	return rc;
}

int strata_reader_group_update(struct strata_reader_group *rg,
                               const struct strata_reader_group_config *cfg,
                               char *errmsg)
{
	int rc = check_config(rg->group, cfg, errmsg);
	if (rc == 0) {
		rc = client_check_blocking(rg->c, "update reader group",
		                           errmsg);
	}
	if (rc == 0) {
		rc = starts_within(rg->c, rg->group, cfg, errmsg);
	}
	Strata__V1__ReaderGroupConfig *g = NULL;
	if (rc == 0) {
		rc = ctl_group_config(rg->c, rg->scope, rg->group, &g, errmsg);
	}
	if (rc != 0) {
		return rc;
	}
	uint64_t generation = g->generation;
	rpc_pb_free(&g->base);
	/* The new state is built (segments at the start cuts) before the
	 * controller takes the configuration and written after it: a
	 * failure in between leaves the old state under the new
	 * configuration, which the next update (or a retry) replaces. */
	struct rg_state ns;
	rc = build_state(rg->c, cfg, &ns, errmsg);
	if (rc == 0) {
		rc = ctl_put_group(rg->c, rg->scope, rg->group, cfg, true,
		                   generation, errmsg);
	}
	if (rc == 0) {
		atomic_store(&rg->not_auto, false);
		struct gen_full_arg a = {&ns, false, 0, true};
		rc = sync_update(&rg->sync, gen_full, &a, NULL, errmsg);
	}
	if (rc == 0) {
		rc = sync_compact(&rg->sync, errmsg);
	}
	rg_state_close(&ns);
	return rc;
}

int strata_reader_group_delete(struct strata_client *c, const char *scope,
                               const char *group, char *errmsg)
{
	int rc = check_group(scope, group, errmsg);
	if (rc != 0) {
		return rc;
	}
	Strata__V1__DeleteReaderGroupRequest q =
	        STRATA__V1__DELETE_READER_GROUP_REQUEST__INIT;
	q.scope = (char *)scope;
	q.name = (char *)group;
	char what[2 * STRATA_NAME_MAX + 32];
	snprintf(what, sizeof(what), "delete reader group %s/%s", scope, group);
	/* EBUSY: the state stream is still being created (or busy with
	 * another workflow). */
	return client_ctl_mutate_busy(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_DELETE_READER_GROUP,
	        &q.base, STRATA_ENOENT, what, errmsg);
}

/* A checkpoint's positions as one stream cut per stream. */
static int make_checkpoint(const struct rg_state *st, const char *name,
                           const struct rg_pos *pos, size_t n,
                           struct strata_checkpoint **out)
{
	struct strata_checkpoint *cp = strata_calloc(1, sizeof(*cp));
	if (cp == NULL) {
		return STRATA_ENOMEM;
	}
	snprintf(cp->name, sizeof(cp->name), "%s", name);
	cp->cuts = strata_calloc(st->n_streams, sizeof(*cp->cuts));
	if (cp->cuts == NULL) {
		strata_free(cp);
		return STRATA_ENOMEM;
	}
	cp->n = st->n_streams;
	for (size_t s = 0; s < st->n_streams; s++) {
		struct strata_stream_cut *cut = &cp->cuts[s];
		snprintf(cut->scope, sizeof(cut->scope), "%s",
		         st->streams[s].scope);
		snprintf(cut->stream, sizeof(cut->stream), "%s",
		         st->streams[s].name);
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			k += pos[i].stream == s;
		}
		if (k == 0) {
			continue;
		}
		cut->positions = strata_calloc(k, sizeof(*cut->positions));
		if (cut->positions == NULL) {
			strata_checkpoint_free(cp);
			return STRATA_ENOMEM;
		}
		for (size_t i = 0; i < n; i++) {
			if (pos[i].stream == s) {
				cut->positions[cut->n].segment_id = pos[i].id;
				cut->positions[cut->n].offset =
				        (int64_t)pos[i].offset;
				cut->n++;
			}
		}
	}
	*out = cp;
	return 0;
}

void strata_checkpoint_free(struct strata_checkpoint *cp)
{
	if (cp == NULL) {
		return;
	}
	for (size_t i = 0; i < cp->n; i++) {
		strata_stream_cut_clear(&cp->cuts[i]);
	}
	strata_free(cp->cuts);
	strata_free(cp);
}

static void release_checkpoint(struct strata_reader_group *rg,
                               const struct rg_state *st, const char *name);

struct cp_arg {
	const char *name;
	int refused; /* STRATA_EEXIST / STRATA_EBUSY */
};

static int gen_cp_create(void *arg, const void *state, struct buf *out,
                         char *errmsg)
{
	struct cp_arg *a = arg;
	const struct rg_state *st = state;
	(void)errmsg;
	a->refused = 0;
	if (rg_state_checkpoint(st, a->name) != NULL) {
		a->refused = STRATA_EEXIST;
		return 0;
	}
	if (rg_state_pending_checkpoints(st) >= st->max_outstanding) {
		a->refused = STRATA_EBUSY;
		return 0;
	}
	return rg_rec_cp_create(out, a->name);
}

/* A reader or checkpoint name: 1..RG_MAX_NAME bytes, none a control
 * character (names are printed one per line by status tools and logs). */
static bool name_ok(const char *what, const char *name, char *errmsg)
{
	size_t n = name == NULL ? 0 : strlen(name);
	if (n == 0 || n > RG_MAX_NAME) {
		client_err(errmsg, "%s name must be 1..%d bytes", what,
		           RG_MAX_NAME);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch < 0x20 || ch == 0x7f) {
			client_err(errmsg,
			           "%s name has a control character (0x%02x) "
			           "at byte %zu; use printable characters",
			           what, ch, i);
			return false;
		}
	}
	return true;
}

int strata_reader_group_initiate_checkpoint(struct strata_reader_group *rg,
                                            const char *name, int timeout_ms,
                                            struct strata_checkpoint **out,
                                            char *errmsg)
{
	if (!name_ok("checkpoint", name, errmsg)) {
		return STRATA_EINVAL;
	}
	if (name[0] == '_') {
		client_err(errmsg,
		           "checkpoint name \"%.100s\" starts with '_', which "
		           "marks automatic checkpoints; pick another name",
		           name);
		return STRATA_EINVAL;
	}
	struct cp_arg a = {name, 0};
	int rc = sync_update(&rg->sync, gen_cp_create, &a, NULL, errmsg);
	if (rc == 0 && a.refused != 0) {
		client_err(errmsg,
		           a.refused == STRATA_EEXIST
		                   ? "checkpoint %s of group %s exists; pick "
		                     "a new name"
		                   : "checkpoint %s of group %s: too many "
		                     "checkpoints pending; wait for them",
		           name, rg->group);
		return a.refused;
	}
	if (rc != 0) {
		return rc;
	}
	uint64_t deadline =
	        clock_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		const struct rg_checkpoint *cp =
		        rg_state_checkpoint(&rg->st, name);
		if (cp == NULL) {
			client_err(errmsg,
			           "checkpoint %s of group %s vanished (the "
			           "group was reset)",
			           name, rg->group);
			return STRATA_ENOENT;
		}
		if (cp->n_waiting == 0) {
			rc = make_checkpoint(&rg->st, name, cp->pos, cp->n_pos,
			                     out);
			if (rc == 0) {
				release_checkpoint(rg, &rg->st, name);
			}
			return rc;
		}
		if (clock_mono_ms() >= deadline) {
			client_err(
			        errmsg,
			        "checkpoint %s of group %s: %u reader(s) did "
			        "not pass it within %d ms; it completes when "
			        "they read on (or are declared offline)",
			        name, rg->group, cp->n_waiting, timeout_ms);
			return STRATA_ETIMEDOUT;
		}
		clock_sleep_ms(RG_POLL_MS);
		if ((rc = sync_fetch(&rg->sync, errmsg)) != 0) {
			return rc;
		}
	}
}

int strata_reader_group_get_checkpoint(struct strata_reader_group *rg,
                                       const char *name,
                                       struct strata_checkpoint **out,
                                       char *errmsg)
{
	int rc = sync_fetch(&rg->sync, errmsg);
	if (rc != 0) {
		return rc;
	}
	const struct rg_checkpoint *cp = rg_state_checkpoint(&rg->st, name);
	if (cp == NULL) {
		client_err(errmsg,
		           "checkpoint %.255s of group %s: none (never taken, "
		           "dropped after %d newer ones completed, or the "
		           "group was reset)",
		           name, rg->group, RG_KEEP_COMPLETED);
		return STRATA_ENOENT;
	}
	if (cp->n_waiting != 0) {
		client_err(errmsg,
		           "checkpoint %.255s of group %s: %u reader(s) have "
		           "not passed it yet",
		           name, rg->group, cp->n_waiting);
		return STRATA_EAGAIN;
	}
	rc = make_checkpoint(&rg->st, name, cp->pos, cp->n_pos, out);
	if (rc == 0) {
		release_checkpoint(rg, &rg->st, name);
	}
	return rc;
}

/* Release cuts[0..n) of rg's group to retention (cuts without positions
 * are left out). only_auto: only when the group's retention is
 * AUTO_CHECKPOINT (0 otherwise). */
static int release_cuts(struct strata_reader_group *rg,
                        const struct strata_stream_cut *cuts, size_t n,
                        bool only_auto, char *errmsg)
{
	if (only_auto && atomic_load(&rg->not_auto)) {
		return 0;
	}
	Strata__V1__ReaderGroupConfig *g = NULL;
	int rc = ctl_group_config(rg->c, rg->scope, rg->group, &g, errmsg);
	if (rc != 0) {
		return rc;
	}
	uint64_t generation = g->generation;
	bool is_auto =
	        g->retention ==
	        STRATA__V1__READER_GROUP_RETENTION__READER_GROUP_RETENTION_AUTO_CHECKPOINT;
	rpc_pb_free(&g->base);
	atomic_store(&rg->not_auto, !is_auto);
	if (only_auto && !is_auto) {
		return 0;
	}
	size_t npos = 0, used = 0, k = 0;
	for (size_t i = 0; i < n; i++) {
		npos += cuts[i].n;
	}
	Strata__V1__ReleasedCut *rc_ = strata_calloc(n + 1, sizeof(*rc_));
	Strata__V1__ReleasedCut **rcp = strata_calloc(n + 1, sizeof(*rcp));
	Strata__V1__StreamCut *pcs = strata_calloc(n + 1, sizeof(*pcs));
	Strata__V1__SegmentOffset *pp = strata_calloc(npos + 1, sizeof(*pp));
	Strata__V1__SegmentOffset **ppp = strata_calloc(npos + 1, sizeof(*ppp));
	rc = STRATA_ENOMEM;
	if (rc_ == NULL || rcp == NULL || pcs == NULL || pp == NULL ||
	    ppp == NULL) {
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (cuts[i].n == 0) {
			continue;
		}
		Strata__V1__ReleasedCut x = STRATA__V1__RELEASED_CUT__INIT;
		Strata__V1__StreamCut ci = STRATA__V1__STREAM_CUT__INIT;
		pcs[k] = ci;
		pb_cut(&pcs[k], pp + used, ppp + used, &cuts[i]);
		used += cuts[i].n;
		x.scope = (char *)cuts[i].scope;
		x.stream = (char *)cuts[i].stream;
		x.cut = &pcs[k];
		rc_[k] = x;
		rcp[k] = &rc_[k];
		k++;
	}
	rc = 0;
	if (k > 0) {
		Strata__V1__UpdateRetentionCutRequest q =
		        STRATA__V1__UPDATE_RETENTION_CUT_REQUEST__INIT;
		q.scope = rg->scope;
		q.group = rg->group;
		q.generation = generation;
		q.cuts = rcp;
		q.n_cuts = k;
		char what[2 * STRATA_NAME_MAX + 48];
		snprintf(what, sizeof(what), "release retention of group %s/%s",
		         rg->scope, rg->group);
		rc = client_ctl_mutate(
		        rg->c,
		        STRATA__V1__CONTROLLER_METHOD__CTL_UPDATE_RETENTION_CUT,
		        &q.base, 0, what, errmsg);
	}
out:
	strata_free(rc_);
	strata_free(rcp);
	strata_free(pcs);
	strata_free(pp);
	strata_free(ppp);
	return rc;
}

int strata_reader_group_update_retention_cut(
        struct strata_reader_group *rg, const struct strata_stream_cut *cuts,
        size_t n, char *errmsg)
{
	if (cuts == NULL || n == 0 || n > RG_MAX_STREAMS) {
		client_err(errmsg,
		           "reader group %s: give 1..%d cuts to release, one "
		           "per stream",
		           rg->group, RG_MAX_STREAMS);
		return STRATA_EINVAL;
	}
	size_t given = 0;
	for (size_t i = 0; i < n; i++) {
		given += cuts[i].n > 0;
	}
	if (given == 0) {
		client_err(errmsg,
		           "reader group %s: the cuts to release have no "
		           "positions; give one offset per segment",
		           rg->group);
		return STRATA_EINVAL;
	}
	int rc = client_check_blocking(rg->c, "release retention", errmsg);
	/* A cut past a segment's end would let retention truncate data
	 * written later, before anyone read it. */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (cuts[i].n > 0) {
			rc = client_cut_within(rg->c, &cuts[i], "release",
			                       errmsg);
		}
	}
	return rc != 0 ? rc : release_cuts(rg, cuts, n, false, errmsg);
}

/* Release positions pos[0..n) of st (checkpoint name's) to retention
 * when the group releases at checkpoints. A failure is logged, not
 * returned: the checkpoint (or reset) stands, and retention holds at the
 * previous release until the next one. */
static void release_positions(struct strata_reader_group *rg,
                              const struct rg_state *st, const char *name,
                              const struct rg_pos *pos, size_t n)
{
	struct strata_checkpoint *out = NULL;
	char err[STRATA_ERRMSG_SIZE] = "";
	int rc = make_checkpoint(st, name, pos, n, &out);
	if (rc == 0) {
		rc = release_cuts(rg, out->cuts, out->n, true, err);
	}
	strata_checkpoint_free(out);
	if (rc != 0) {
		LOG_WARN("client.readergroup",
		         "reader group %s/%s: the positions of checkpoint %s "
		         "could not be released to retention (%s: %s); "
		         "retention holds at the previous release until the "
		         "next checkpoint",
		         rg->scope, rg->group, name, strata_strerror(rc),
		         err[0] != '\0' ? err : "out of memory");
	}
}

/* Checkpoint name of st just completed: when it is the group's newest
 * completed one, release its positions (release_positions). */
static void release_checkpoint(struct strata_reader_group *rg,
                               const struct rg_state *st, const char *name)
{
	const struct rg_checkpoint *cp = NULL;
	for (size_t i = st->n_cps; i-- > 0 && cp == NULL;) {
		if (st->cps[i].n_waiting == 0) {
			cp = &st->cps[i];
		}
	}
	if (cp != NULL && strcmp(cp->name, name) == 0) {
		release_positions(rg, st, name, cp->pos, cp->n_pos);
	} /* else a newer one completed: it releases */
}

/* Positions of cp as rg positions: the state's copy when it still has the
 * checkpoint, else the cuts' segments as the controller lists them. */
static int cp_positions(struct strata_reader_group *rg,
                        const struct strata_checkpoint *cp, struct rg_pos **pos,
                        size_t *n, char *errmsg)
{
	const struct rg_checkpoint *k = rg_state_checkpoint(&rg->st, cp->name);
	if (k != NULL && k->n_waiting == 0) {
		*pos = strata_calloc(k->n_pos + 1, sizeof(**pos));
		if (*pos == NULL) {
			return STRATA_ENOMEM;
		}
		if (k->n_pos > 0) { /* a checkpoint at the end has none */
			memcpy(*pos, k->pos, k->n_pos * sizeof(**pos));
		}
		*n = k->n_pos;
		return 0;
	}
	size_t total = 0, used = 0;
	for (size_t i = 0; i < cp->n; i++) {
		total += cp->cuts[i].n;
	}
	*pos = strata_calloc(total + 1, sizeof(**pos));
	if (*pos == NULL) {
		return STRATA_ENOMEM;
	}
	for (size_t i = 0; i < cp->n; i++) {
		uint32_t s = rg_state_stream(&rg->st, cp->cuts[i].scope,
		                             cp->cuts[i].stream);
		struct strata_segment_list *l;
		int rc = s == UINT32_MAX
		                 ? STRATA_EINVAL
		                 : strata_stream_segments_at_cut(
		                           rg->c, &cp->cuts[i], &l, errmsg);
		if (rc != 0) {
			if (s == UINT32_MAX) {
				client_err(errmsg,
				           "checkpoint %s names stream %s/%s, "
				           "which group %s does not read",
				           cp->name, cp->cuts[i].scope,
				           cp->cuts[i].stream, rg->group);
			}
			strata_free(*pos);
			return rc;
		}
		for (size_t j = 0; j < l->n && used < total; j++) {
			(*pos)[used++] = (struct rg_pos){
			        s, l->segments[j].id,
			        (uint64_t)l->segments[j].offset,
			        l->segments[j].low, l->segments[j].high};
		}
		strata_segment_list_free(l);
	}
	if (used == 0) {
		client_err(errmsg,
		           "checkpoint %s: group %s no longer keeps it and it "
		           "has no positions; pass the checkpoint returned by "
		           "strata_reader_group_initiate_checkpoint",
		           cp->name, rg->group);
		strata_free(*pos);
		return STRATA_EINVAL;
	}
	*n = used;
	return 0;
}

/* Complete, in the new state, every position that is at the end of its
 * segment (sealed and fully read, or at its end cut). */
static int reset_complete_done(struct strata_reader_group *rg,
                               struct rg_state *ns, const struct rg_pos *pos,
                               size_t n, char *errmsg)
{
	for (size_t i = 0; i < n; i++) {
		const struct rg_seg *s =
		        rg_state_seg(ns, pos[i].stream, pos[i].id);
		if (s == NULL) {
			continue;
		}
		const struct rg_stream *str = &ns->streams[pos[i].stream];
		bool at_end = s->end != RG_NO_END && pos[i].offset >= s->end;
		if (!at_end) {
			char name[STRATA_NAME_MAX * 2 + 64];
			struct strata_segment_stat stat;
			strata_segment_name(name, sizeof(name), str->scope,
			                    str->name, pos[i].id);
			int rc = strata_segment_get_stat(rg->c, name, &stat,
			                                 errmsg);
			if (rc != 0) {
				return rc;
			}
			at_end = stat.sealed && pos[i].offset >= stat.length;
		}
		if (!at_end) {
			continue;
		}
		struct strata_segment_list *l = NULL;
		int rc = s->end != RG_NO_END
		                 ? 0
		                 : strata_stream_successors_of_sealed(
		                           rg->c, str->scope, str->name,
		                           pos[i].id, &l, errmsg);
		if (rc != 0) {
			return rc;
		}
		size_t ns_n = l != NULL ? l->n : 0;
		struct rg_successor *succ =
		        strata_calloc(ns_n + 1, sizeof(*succ));
		if (succ == NULL) {
			strata_segment_list_free(l);
			return STRATA_ENOMEM;
		}
		for (size_t j = 0; j < ns_n; j++) {
			succ[j] = (struct rg_successor){
			        l->segments[j].id, l->segments[j].low,
			        l->segments[j].high,
			        (uint32_t)l->segments[j].n_predecessors,
			        l->segments[j].predecessors};
		}
		(void)rg_state_complete(ns, 0, &pos[i], succ, ns_n, &rc);
		strata_free(succ);
		if (l != NULL) {
			strata_segment_list_free(l);
		}
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

int strata_reader_group_reset(struct strata_reader_group *rg,
                              const struct strata_checkpoint *cp, char *errmsg)
{
	int rc = sync_fetch(&rg->sync, errmsg);
	struct rg_pos *pos = NULL;
	size_t n = 0;
	if (rc == 0) {
		rc = cp_positions(rg, cp, &pos, &n, errmsg);
	}
	if (rc != 0) {
		return rc;
	}
	struct rg_state ns;
	rg_state_init(&ns);
	rc = rg_state_reset(&ns, &rg->st, pos, n, errmsg);
	if (rc == 0) {
		rc = reset_complete_done(rg, &ns, pos, n, errmsg);
	}
	if (rc == 0) {
		/* The epoch must move on from the state we write over. */
		struct gen_full_arg a = {&ns, false, 0, true};
		rc = sync_update(&rg->sync, gen_full, &a, NULL, errmsg);
	}
	if (rc == 0) {
		rc = sync_compact(&rg->sync, errmsg);
	}
	if (rc == 0) {
		/* Reading resumes there: retention must keep it. */
		release_positions(rg, &rg->st, cp->name, pos, n);
	}
	strata_free(pos);
	rg_state_close(&ns);
	return rc;
}

struct name_arg {
	const char *reader;
	bool have_pos;
	const struct rg_pos *pos;
	size_t n;
	bool join; /* add (true) or remove (false) */
	int exists;
};

static int gen_reader(void *arg, const void *state, struct buf *out,
                      char *errmsg)
{
	struct name_arg *a = arg;
	const struct rg_state *st = state;
	(void)errmsg;
	bool online = rg_state_reader(st, a->reader) != NULL;
	if (a->join) {
		a->exists = online;
		return online ? 0 : rg_rec_add_reader(out, a->reader);
	}
	return online ? rg_rec_remove_reader(out, a->reader, a->have_pos,
	                                     a->pos, a->n)
	              : 0;
}

/* The checkpoint reader still owes (as far as st knows) into buf ("" =
 * none): leaving counts as passing it, which may complete it. */
static void owed_checkpoint(const struct rg_state *st, const char *reader,
                            char *buf, size_t size)
{
	const struct rg_checkpoint *cp =
	        rg_state_checkpoint_for_reader(st, reader);
	snprintf(buf, size, "%s", cp != NULL ? cp->name : "");
}

/* A reader left: if that completed checkpoint name, release it. */
static void release_if_completed(struct strata_reader_group *rg,
                                 const char *name)
{
	const struct rg_checkpoint *cp =
	        name[0] != '\0' ? rg_state_checkpoint(&rg->st, name) : NULL;
	if (cp != NULL && cp->n_waiting == 0) {
		release_checkpoint(rg, &rg->st, name);
	}
}

int strata_reader_group_reader_offline(struct strata_reader_group *rg,
                                       const char *reader, char *errmsg)
{
	char owed[RG_MAX_NAME + 1];
	owed_checkpoint(&rg->st, reader, owed, sizeof(owed));
	struct name_arg a = {reader, false, NULL, 0, false, 0};
	int rc = sync_update(&rg->sync, gen_reader, &a, NULL, errmsg);
	if (rc == 0) {
		release_if_completed(rg, owed);
	}
	return rc;
}

int strata_reader_group_online_readers(struct strata_reader_group *rg,
                                       struct strata_names **out, char *errmsg)
{
	int rc = sync_fetch(&rg->sync, errmsg);
	if (rc != 0) {
		return rc;
	}
	struct strata_names *nm = strata_calloc(1, sizeof(*nm));
	if (nm == NULL) {
		return STRATA_ENOMEM;
	}
	nm->names = strata_calloc(rg->st.n_readers + 1, sizeof(char *));
	if (nm->names == NULL) {
		strata_free(nm);
		return STRATA_ENOMEM;
	}
	for (size_t i = 0; i < rg->st.n_readers; i++) {
		nm->names[i] = strata_strdup(rg->st.readers[i].name);
		if (nm->names[i] == NULL) {
			strata_names_free(nm);
			return STRATA_ENOMEM;
		}
		nm->n++;
	}
	*out = nm;
	return 0;
}

/* -------------------------------------------------------- the reader -- */

/* One segment the reader owns. */
struct rseg {
	struct rg_pos pos; /* offset = next event to return */
	uint64_t end;      /* end cut offset or RG_NO_END */
	char name[STRATA_NAME_MAX * 2 + 64];
	struct strata_event_iter *it;
	bool done;            /* read to its end: to be completed */
	bool gone;            /* its stream was deleted: no successors */
	uint64_t unread;      /* bytes after pos at the last refresh */
	uint64_t quiet_until; /* had nothing at this time minus
	                         READER_QUIET_MS: not asked again
	                         before (but for the long-poll) */
};

struct strata_reader {
	struct strata_reader_group *rg;
	char name[RG_MAX_NAME + 1];
	uint64_t epoch; /* state epoch joined in */
	uint32_t rid;   /* id the group gave this reader when it joined */
	size_t n;       /* owned segments */
	struct rseg *segs;
	/* What sync_owned last matched segs with: it does nothing while
	 * the state and segs are unchanged (it runs before every event) */
	bool owned_valid;
	uint64_t owned_rev, owned_records;
	size_t owned_n;
	size_t rr; /* round-robin cursor */
	uint64_t next_refresh;
	bool acquire_now; /* acquire without waiting for a refresh: a
	                     segment completed (its successors may be
	                     readable), or the last acquire took a full
	                     batch (more may be free) */
	char cp_name[RG_MAX_NAME + 1]; /* last checkpoint returned */
	/* watermarks of one stream (strata_reader_time_window), oldest
	 * first; another stream's call starts over */
	uint32_t wm_stream; /* index into the group's streams */
	struct strata_watermark *wms;
	size_t n_wms;
	uint64_t wm_fetched; /* monotonic ms of the last fetch, 0 = never */
};

static void rseg_drop(struct strata_reader *r, size_t i)
{
	strata_event_iter_free(r->segs[i].it);
	memmove(&r->segs[i], &r->segs[i + 1],
	        (r->n - i - 1) * sizeof(*r->segs));
	r->n--;
	if (r->rr >= r->n) {
		r->rr = 0;
	}
}

static void positions_of(const struct strata_reader *r, struct rg_pos *out)
{
	for (size_t i = 0; i < r->n; i++) {
		out[i] = r->segs[i].pos;
	}
}

int strata_reader_new(struct strata_client *c, const char *scope,
                      const char *group, const char *reader,
                      struct strata_reader **out, char *errmsg)
{
	if (!name_ok("reader", reader, errmsg)) {
		return STRATA_EINVAL;
	}
	struct strata_reader *r = strata_calloc(1, sizeof(*r));
	if (r == NULL) {
		return STRATA_ENOMEM;
	}
	snprintf(r->name, sizeof(r->name), "%s", reader);
	int rc = strata_reader_group_open(c, scope, group, &r->rg, errmsg);
	if (rc != 0) {
		strata_free(r);
		return rc;
	}
	struct name_arg a = {reader, false, NULL, 0, true, 0};
	rc = sync_update(&r->rg->sync, gen_reader, &a, NULL, errmsg);
	if (rc == 0 && a.exists) {
		client_err(errmsg,
		           "reader %s is already online in group %s/%s; pick "
		           "another name or declare it offline",
		           reader, scope, group);
		rc = STRATA_EEXIST;
	}
	if (rc != 0) {
		strata_reader_group_close(r->rg);
		strata_free(r);
		return rc;
	}
	r->epoch = r->rg->st.epoch;
	const struct rg_reader *me = rg_state_reader(&r->rg->st, r->name);
	r->rid = me != NULL ? me->rid : 0;
	*out = r;
	return 0;
}

/* Errors when the state no longer lists us (offline, reset). */
static int check_online(struct strata_reader *r, char *errmsg)
{
	const struct rg_state *st = &r->rg->st;
	const struct rg_reader *me = rg_state_reader(st, r->name);
	/* By id, not name: declared offline while still running, and a new
	 * reader of the same name joined, both read the same segments. */
	if (st->epoch != r->epoch || me == NULL || me->rid != r->rid) {
		client_err(errmsg,
		           "reader %s is no longer in group %s/%s (declared "
		           "offline, or the group was reset or updated); "
		           "create the reader again to rejoin",
		           r->name, r->rg->scope, r->rg->group);
		return STRATA_ENOENT;
	}
	return 0;
}

/* Make the local segments match what the state says we own. */
static int sync_owned(struct strata_reader *r, char *errmsg)
{
	const struct rg_state *st = &r->rg->st;
	const struct synchronizer *sy = &r->rg->sync;
	if (r->owned_valid && r->owned_rev == sy->revision &&
	    r->owned_records == sy->records && r->owned_n == r->n) {
		return 0;
	}
	uint32_t rid = rg_state_reader(st, r->name)->rid;
	for (size_t i = 0; i < r->n;) {
		const struct rg_seg *s = rg_state_seg(st, r->segs[i].pos.stream,
		                                      r->segs[i].pos.id);
		if (s == NULL || s->owner != rid) {
			rseg_drop(r, i);
		} else {
			i++;
		}
	}
	/* Which of the group's segments we hold already: by index, so a
	 * reader of a 4096-segment group does not compare every pair. */
	bool *have = strata_calloc(st->n_segs + 1, sizeof(*have));
	if (have == NULL) {
		return STRATA_ENOMEM;
	}
	for (size_t k = 0; k < r->n; k++) {
		const struct rg_seg *s = rg_state_seg(st, r->segs[k].pos.stream,
		                                      r->segs[k].pos.id);
		if (s != NULL) {
			have[s - st->segs] = true;
		}
	}
	for (size_t i = 0; i < st->n_segs; i++) {
		const struct rg_seg *s = &st->segs[i];
		if (s->owner != rid || have[i]) {
			continue;
		}
		struct rseg *ns =
		        strata_realloc(r->segs, (r->n + 1) * sizeof(*r->segs));
		if (ns == NULL) {
			strata_free(have);
			return STRATA_ENOMEM;
		}
		r->segs = ns;
		struct rseg *g = &r->segs[r->n];
		memset(g, 0, sizeof(*g));
		g->pos = s->pos;
		g->end = s->end;
		const struct rg_stream *str = &st->streams[s->pos.stream];
		strata_segment_name(g->name, sizeof(g->name), str->scope,
		                    str->name, s->pos.id);
		g->done = s->end != RG_NO_END && s->pos.offset >= s->end;
		/* One read ahead per segment: a reader may own many. */
		int rc = event_iter_new(r->rg->c, g->name, s->pos.offset,
		                        s->end == RG_NO_END ? UINT64_MAX
		                                            : s->end,
		                        0, 1, &g->it, errmsg);
		if (rc != 0) {
			strata_free(have);
			return rc;
		}
		r->n++;
	}
	strata_free(have);
	r->owned_valid = true;
	r->owned_rev = sy->revision;
	r->owned_records = sy->records;
	r->owned_n = r->n;
	return 0;
}

/* Segments one ACQUIRE record takes at most (a reader with more to take
 * acquires again at its next pass, not a refresh later: a group of 20
 * segments used to leave 4 unread for every 'stratactl read --group',
 * which stops after 2 s idle). */
#define RD_ACQUIRE_MAX 16

struct rd_arg {
	struct strata_reader *r;
	enum rg_rec_type what;
	const struct rg_pos *pos; /* COMPLETE: the segment at its end */
	const struct rg_successor *succ;
	size_t n_succ;
	struct rg_pos *tmp; /* room for r->n positions */
	int blocked;        /* COMPLETE refused: checkpoint first */
	bool full;          /* ACQUIRE took RD_ACQUIRE_MAX: more may wait */
};

static int gen_reader_op(void *arg, const void *state, struct buf *out,
                         char *errmsg)
{
	struct rd_arg *a = arg;
	struct strata_reader *r = a->r;
	const struct rg_state *st = state;
	(void)errmsg;
	const struct rg_reader *me = rg_state_reader(st, r->name);
	if (st->epoch != r->epoch || me == NULL || me->rid != r->rid) {
		return 0; /* not us any more: check_online says so */
	}
	const struct rg_checkpoint *cp =
	        rg_state_checkpoint_for_reader(st, r->name);
	switch (a->what) {
	case RG_REC_CP_READER:
		if (cp == NULL) {
			return 0;
		}
		snprintf(r->cp_name, sizeof(r->cp_name), "%s", cp->name);
		positions_of(r, a->tmp);
		return rg_rec_cp_reader(out, cp->name, r->name, a->tmp, r->n);
	case RG_REC_COMPLETE:
		a->blocked = cp != NULL;
		return cp != NULL ? 0
		                  : rg_rec_complete(out, r->name, a->pos,
		                                    a->succ, a->n_succ);
	case RG_REC_ACQUIRE: {
		size_t n = rg_state_plan_acquire(st, r->name, a->tmp,
		                                 RD_ACQUIRE_MAX);
		a->full = n == RD_ACQUIRE_MAX;
		if (n > 0) {
			return rg_rec_acquire(out, r->name, a->tmp, n);
		}
		uint64_t *unread = strata_calloc(r->n + 1, sizeof(*unread));
		struct rg_pos give;
		if (unread == NULL) {
			return STRATA_ENOMEM;
		}
		for (size_t i = 0; i < r->n; i++) {
			unread[i] = r->segs[i].unread;
		}
		positions_of(r, a->tmp);
		bool rel = rg_state_plan_release(st, r->name, a->tmp, unread,
		                                 r->n, &give);
		strata_free(unread);
		return rel ? rg_rec_release(out, r->name, &give) : 0;
	}
	case RG_REC_PROGRESS: {
		uint64_t total = 0;
		for (size_t i = 0; i < r->n; i++) {
			total += r->segs[i].unread;
		}
		positions_of(r, a->tmp);
		return rg_rec_progress(out, r->name, total, a->tmp, r->n);
	}
	default:
		return 0;
	}
}

static int reader_op(struct strata_reader *r, struct rd_arg *a, char *errmsg)
{
	a->r = r;
	a->tmp = strata_calloc(r->n + RD_ACQUIRE_MAX, sizeof(*a->tmp));
	if (a->tmp == NULL) {
		return STRATA_ENOMEM;
	}
	int rc = sync_update(&r->rg->sync, gen_reader_op, a, NULL, errmsg);
	strata_free(a->tmp);
	a->tmp = NULL;
	return rc;
}

/* Complete local segment i (read to its end). */
static int complete_seg(struct strata_reader *r, size_t i, char *errmsg)
{
	struct rseg *g = &r->segs[i];
	const struct rg_stream *str = &r->rg->st.streams[g->pos.stream];
	struct strata_segment_list *l = NULL;
	int rc = 0;
	if (g->end == RG_NO_END && !g->gone) {
		rc = strata_stream_successors_of_sealed(
		        r->rg->c, str->scope, str->name, g->pos.id, &l, errmsg);
		if (rc != 0) {
			return rc;
		}
	}
	size_t n = l != NULL ? l->n : 0;
	struct rg_successor *succ = strata_calloc(n + 1, sizeof(*succ));
	if (succ == NULL) {
		strata_segment_list_free(l);
		return STRATA_ENOMEM;
	}
	for (size_t j = 0; j < n; j++) {
		succ[j] = (struct rg_successor){
		        l->segments[j].id, l->segments[j].low,
		        l->segments[j].high,
		        (uint32_t)l->segments[j].n_predecessors,
		        l->segments[j].predecessors};
	}
	struct rd_arg a = {0};
	a.what = RG_REC_COMPLETE;
	a.pos = &g->pos;
	a.succ = succ;
	a.n_succ = n;
	rc = reader_op(r, &a, errmsg);
	strata_free(succ);
	if (l != NULL) {
		strata_segment_list_free(l);
	}
	return rc;
}

/* Whether g's stream no longer exists (deleted while the group reads
 * it): its segments end where the reader is, with nothing after them,
 * and the group reads on in its other streams. */
static bool stream_deleted(struct strata_reader *r, const struct rseg *g)
{
	const struct rg_stream *str = &r->rg->st.streams[g->pos.stream];
	struct strata_stream_info *info = NULL;
	char ignored[STRATA_ERRMSG_SIZE];
	int rc = strata_stream_get_info(r->rg->c, str->scope, str->name, &info,
	                                ignored);
	if (rc == 0) {
		strata_stream_info_free(info);
	}
	return rc == STRATA_ENOENT;
}

/* Unread bytes of each owned segment: its length (capped at its end
 * cut) minus our position, asked from its store. */
static int measure_unread(struct strata_reader *r, char *errmsg)
{
	for (size_t i = 0; i < r->n; i++) {
		struct rseg *g = &r->segs[i];
		struct strata_segment_stat st;
		int rc =
		        strata_segment_get_stat(r->rg->c, g->name, &st, errmsg);
		if (rc == STRATA_ENOENT &&
		    (client_truncated_away(r->rg->c, g->name) ||
		     stream_deleted(r, g))) {
			g->unread = 0; /* the next read finds out */
			continue;
		}
		if (rc != 0) {
			return rc;
		}
		uint64_t end = st.length;
		if (g->end != RG_NO_END && g->end < end) {
			end = g->end;
		}
		g->unread = end > g->pos.offset ? end - g->pos.offset : 0;
	}
	return 0;
}

/* Periodic work: fetch, compact now and then, record progress. */
/* Automatic checkpoints (checkpoint_interval_ms) are named
 * _auto-<wall-clock ms>; readers pass them without returning them. */
#define RG_AUTO_PREFIX "_auto-"

static bool auto_checkpoint_name(const char *name)
{
	return strncmp(name, RG_AUTO_PREFIX, sizeof(RG_AUTO_PREFIX) - 1) == 0;
}

/* Whether an automatic checkpoint is due in st at wall time now: they
 * are on, none is pending, and the group's newest automatic one is at
 * least checkpoint_ms old. */
static bool auto_checkpoint_due(const struct rg_state *st, uint64_t now)
{
	if (st->checkpoint_ms == 0 || rg_state_pending_checkpoints(st) > 0) {
		return false;
	}
	for (size_t i = st->n_cps; i-- > 0;) {
		if (auto_checkpoint_name(st->cps[i].name)) {
			uint64_t last = strtoull(
			        st->cps[i].name + sizeof(RG_AUTO_PREFIX) - 1,
			        NULL, 10);
			return now >= last + st->checkpoint_ms;
		}
	}
	return true;
}

/* Start an automatic checkpoint if one is (still) due. */
static int gen_auto_cp(void *arg, const void *state, struct buf *out,
                       char *errmsg)
{
	const struct rg_state *st = state;
	(void)arg;
	(void)errmsg;
	uint64_t now = clock_wall_ms();
	char name[64];
	snprintf(name, sizeof(name), RG_AUTO_PREFIX "%" PRIu64, now);
	if (!auto_checkpoint_due(st, now) ||
	    rg_state_checkpoint(st, name) != NULL) {
		return 0;
	}
	return rg_rec_cp_create(out, name);
}

static int refresh(struct strata_reader *r, char *errmsg)
{
	struct synchronizer *s = &r->rg->sync;
	int rc = measure_unread(r, errmsg);
	if (rc == 0) {
		rc = sync_fetch(s, errmsg);
	}
	if (rc == 0 && sync_bytes_since_compaction(s) > RG_COMPACT_BYTES) {
		rc = sync_compact(s, errmsg);
	}
	if (rc == 0) {
		rc = check_online(r, errmsg);
	}
	if (rc == 0 && r->n > 0) {
		struct rd_arg a = {0};
		a.what = RG_REC_PROGRESS;
		rc = reader_op(r, &a, errmsg);
	}
	/* Judged on the state just fetched: the conditional append (its
	 * own fetch) only when one is due. */
	if (rc == 0 && auto_checkpoint_due(&r->rg->st, clock_wall_ms())) {
		rc = sync_update(s, gen_auto_cp, NULL, NULL, errmsg);
	}
	r->next_refresh =
	        clock_mono_ms() +
	        (r->rg->st.refresh_ms > 0 ? r->rg->st.refresh_ms : 1000);
	return rc;
}

int strata_reader_next(struct strata_reader *r, int wait_ms,
                       struct strata_read *out, char *errmsg)
{
	memset(out, 0, sizeof(*out));
	uint64_t deadline =
	        clock_mono_ms() + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
	int rc;
	for (;;) {
		bool fresh = false;
		if (clock_mono_ms() >= r->next_refresh) {
			if ((rc = refresh(r, errmsg)) != 0) {
				return rc;
			}
			fresh = true;
		}
		if ((rc = check_online(r, errmsg)) != 0) {
			return rc;
		}
		/* 1. A checkpoint waiting for us comes before anything. */
		if (rg_state_checkpoint_for_reader(&r->rg->st, r->name) !=
		    NULL) {
			struct rd_arg a = {0};
			a.what = RG_REC_CP_READER;
			r->cp_name[0] = '\0';
			if ((rc = reader_op(r, &a, errmsg)) != 0) {
				return rc;
			}
			if (r->cp_name[0] == '\0') {
				continue; /* it went away meanwhile */
			}
			const struct rg_checkpoint *done =
			        rg_state_checkpoint(&r->rg->st, r->cp_name);
			if (done != NULL && done->n_waiting == 0) {
				/* This reader was the last to pass it. */
				release_checkpoint(r->rg, &r->rg->st,
				                   r->cp_name);
			}
			if (auto_checkpoint_name(r->cp_name)) {
				continue; /* automatic: passed silently */
			}
			out->kind = STRATA_READ_CHECKPOINT;
			out->checkpoint = r->cp_name;
			return 0;
		}
		/* 2. Segments read to their end. */
		for (size_t i = 0; i < r->n; i++) {
			if (r->segs[i].done) {
				if ((rc = complete_seg(r, i, errmsg)) != 0) {
					return rc;
				}
				r->acquire_now = true;
				break;
			}
		}
		if ((rc = check_online(r, errmsg)) != 0 ||
		    (rc = sync_owned(r, errmsg)) != 0) {
			return rc;
		}
		if (rg_state_checkpoint_for_reader(&r->rg->st, r->name) !=
		    NULL) {
			continue;
		}
		bool any_done = false;
		for (size_t i = 0; i < r->n; i++) {
			any_done = any_done || r->segs[i].done;
		}
		if (any_done) {
			continue;
		}
		/* 3. Balance: acquire or release (after each refresh, when
		 * idle, or when a completed segment may have made its
		 * successors readable: a reader still holding other segments
		 * would otherwise leave them for up to a refresh). */
		if (fresh || r->n == 0 || r->acquire_now) {
			r->acquire_now = false;
			struct rd_arg a = {0};
			a.what = RG_REC_ACQUIRE;
			if ((rc = reader_op(r, &a, errmsg)) != 0 ||
			    (rc = sync_owned(r, errmsg)) != 0) {
				return rc;
			}
			r->acquire_now = a.full;
		}
		const struct rg_state *st = &r->rg->st;
		if (r->n == 0 && st->n_segs == 0 && st->n_futures == 0) {
			out->kind = STRATA_READ_END;
			return 0;
		}
		/* 4. Read: one pass over our segments without waiting, then
		 * a short long-poll on one of them. */
		for (size_t k = 0; k < r->n; k++) {
			size_t i = (r->rr + k) % r->n;
			struct rseg *g = &r->segs[i];
			struct strata_event ev;
			uint64_t left = deadline > clock_mono_ms()
			                        ? deadline - clock_mono_ms()
			                        : 0;
			uint32_t w =
			        k + 1 == r->n
			                ? (uint32_t)(left < 100 ? left : 100)
			                : 0;
			uint64_t now = clock_mono_ms();
			if (w == 0 && now < g->quiet_until) {
				continue;
			}
			rc = strata_event_iter_next(g->it, w, &ev, errmsg);
			if (rc == STRATA_ETRUNCATED) {
				/* Said once; the iterator is at the new start
				 * and so is the position a checkpoint keeps. */
				g->pos.offset = ev.next_offset;
				return rc;
			}
			if (rc == STRATA_ENOENT &&
			    client_truncated_away(r->rg->c, g->name)) {
				/* All of it went: on to its successors. */
				client_err(
				        errmsg,
				        "segment %.200s was deleted by a "
				        "truncation of its stream while this "
				        "reader was at %" PRIu64
				        " (what followed there, if anything, "
				        "was not read); reading goes on with "
				        "its successors",
				        g->name, g->pos.offset);
				g->done = true;
				return STRATA_ETRUNCATED;
			}
			if (rc == STRATA_ENOENT && stream_deleted(r, g)) {
				const struct rg_stream *ds =
				        &st->streams[g->pos.stream];
				client_err(errmsg,
				           "stream %.100s/%.100s was deleted "
				           "while this reader was at %" PRIu64
				           " of segment %.200s; the group "
				           "reads on in its other streams "
				           "(update it without the stream)",
				           ds->scope, ds->name, g->pos.offset,
				           g->name);
				g->done = true;
				g->gone = true;
				return STRATA_ETRUNCATED;
			}
			if (rc != 0) {
				return rc;
			}
			if (ev.data == NULL && !ev.end) {
				g->quiet_until = now + READER_QUIET_MS;
			}
			if (ev.data != NULL) {
				r->rr = (i + 1) % r->n;
				g->pos.offset = ev.next_offset;
				const struct rg_stream *str =
				        &st->streams[g->pos.stream];
				out->kind = STRATA_READ_EVENT;
				out->data = ev.data;
				out->len = ev.len;
				out->scope = str->scope;
				out->stream = str->name;
				out->segment_id = g->pos.id;
				out->offset = ev.offset;
				return 0;
			}
			if (ev.end) {
				g->done = true;
				break;
			}
		}
		bool done_now = false;
		for (size_t i = 0; i < r->n; i++) {
			done_now = done_now || r->segs[i].done;
		}
		if (!done_now && clock_mono_ms() >= deadline) {
			out->kind = STRATA_READ_NONE;
			return 0;
		}
		if (r->n == 0) {
			/* Nothing assigned: wait for a segment to free up
			 * (seen at the next refresh, or in a state fetched
			 * by a conflict). */
			uint64_t left = deadline > clock_mono_ms()
			                        ? deadline - clock_mono_ms()
			                        : 0;
			clock_sleep_ms((unsigned)(left < 50 ? left : 50));
		}
	}
}

int strata_reader_close(struct strata_reader *r, char *errmsg)
{
	if (r == NULL) {
		return 0;
	}
	struct rg_pos *pos = strata_calloc(r->n + 1, sizeof(*pos));
	int rc = STRATA_ENOMEM;
	if (pos != NULL) {
		char owed[RG_MAX_NAME + 1];
		owed_checkpoint(&r->rg->st, r->name, owed, sizeof(owed));
		positions_of(r, pos);
		struct name_arg a = {r->name, true, pos, r->n, false, 0};
		rc = sync_update(&r->rg->sync, gen_reader, &a, NULL, errmsg);
		strata_free(pos);
		if (rc == 0) {
			release_if_completed(r->rg, owed);
		}
	}
	while (r->n > 0) {
		rseg_drop(r, r->n - 1);
	}
	strata_free(r->segs);
	strata_watermarks_free(r->wms, r->n_wms);
	strata_reader_group_close(r->rg);
	strata_free(r);
	return rc;
}

/* Fetch the watermarks of stream si newer than the ones kept. */
static int wm_refresh(struct strata_reader *r, uint32_t si, char *errmsg)
{
	const struct rg_stream *st = &r->rg->st.streams[si];
	if (si != r->wm_stream) {
		strata_watermarks_free(r->wms, r->n_wms);
		r->wms = NULL;
		r->n_wms = 0;
		r->wm_stream = si;
	}
	uint64_t after = r->n_wms > 0 ? r->wms[r->n_wms - 1].index : 0;
	struct strata_watermark *fresh;
	size_t n;
	int rc = strata_stream_watermarks(r->rg->c, st->scope, st->name, after,
	                                  &fresh, &n, errmsg);
	if (rc != 0) {
		return rc;
	}
	size_t keep = r->n_wms + n > WM_KEEP ? WM_KEEP : r->n_wms + n;
	struct strata_watermark *all = strata_calloc(keep + 1, sizeof(*all));
	if (all == NULL) {
		strata_watermarks_free(fresh, n);
		client_err(errmsg, "time window: out of memory");
		return STRATA_ENOMEM;
	}
	/* Oldest go first when more than WM_KEEP. */
	size_t drop = r->n_wms + n - keep, k = 0;
	for (size_t i = 0; i < r->n_wms + n; i++) {
		struct strata_watermark *w =
		        i < r->n_wms ? &r->wms[i] : &fresh[i - r->n_wms];
		if (i < drop) {
			strata_free(w->positions);
		} else {
			all[k++] = *w;
		}
	}
	strata_free(r->wms);
	strata_free(fresh);
	r->wms = all;
	r->n_wms = keep;
	r->wm_fetched = clock_mono_ms();
	return 0;
}

int strata_reader_time_window(struct strata_reader *r, const char *scope,
                              const char *stream,
                              struct strata_time_window *out, char *errmsg)
{
	memset(out, 0, sizeof(*out));
	const struct rg_state *st = &r->rg->st;
	uint32_t si = rg_state_stream(st, scope, stream);
	if (si == UINT32_MAX) {
		client_err(errmsg,
		           "time window: reader group %s/%s does not read "
		           "stream %s/%s; ask for one of its streams",
		           r->rg->scope, r->rg->group,
		           scope != NULL ? scope : "(null)",
		           stream != NULL ? stream : "(null)");
		return STRATA_EINVAL;
	}
	if (si != r->wm_stream || r->wm_fetched == 0 ||
	    clock_mono_ms() >= r->wm_fetched + WM_REFRESH_MS) {
		int rc = wm_refresh(r, si, errmsg);
		if (rc != 0) {
			return rc;
		}
	}
	/* The group's positions (rg_state_positions: where the group last
	 * recorded each segment, never ahead of its reader; completed
	 * predecessors of waiting successors at their ends), this reader's
	 * own segments where it is. A segment another reader holds may
	 * come to this one at its recorded position. */
	struct rg_pos *pos;
	size_t n_all, n = 0;
	if (rg_state_positions(st, &pos, &n_all) != 0) {
		client_err(errmsg, "time window: out of memory");
		return STRATA_ENOMEM;
	}
	for (size_t i = 0; i < n_all; i++) {
		if (pos[i].stream != si) {
			continue;
		}
		pos[n] = pos[i];
		for (size_t k = 0; k < r->n; k++) {
			if (r->segs[k].pos.stream == si &&
			    r->segs[k].pos.id == pos[n].id) {
				pos[n].offset = r->segs[k].pos.offset;
			}
		}
		n++;
	}
	wm_window(pos, n, r->wms, r->n_wms, out);
	strata_free(pos);
	return 0;
}
