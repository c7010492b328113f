/* Unit tests for controller/retention.c: recorded tail cuts, their sizes,
 * the truncation a retention policy allows, bounds and bad input. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "tests/unit/controller/cfsm_helpers.h"

#define E(epoch, n) (((uint64_t)(epoch) << 32) | (n))
#define BY_TIME STRATA__V1__RETENTION_POLICY__POLICY_BY_TIME
#define BY_SIZE STRATA__V1__RETENTION_POLICY__POLICY_BY_SIZE

/* Give sc/s (fixed 2) a retention policy: kind, min, max. */
static void set_policy(struct cfsm *f, int kind, uint64_t min, uint64_t max)
{
	Strata__V1__FixedScaling fx = STRATA__V1__FIXED_SCALING__INIT;
	Strata__V1__ScalingPolicy sp = STRATA__V1__SCALING_POLICY__INIT;
	Strata__V1__RetentionBound b = STRATA__V1__RETENTION_BOUND__INIT;
	Strata__V1__RetentionPolicy rp = STRATA__V1__RETENTION_POLICY__INIT;
	Strata__V1__StreamConfig cfg = STRATA__V1__STREAM_CONFIG__INIT;
	Strata__V1__UpdateStreamRequest r =
	        STRATA__V1__UPDATE_STREAM_REQUEST__INIT;
	Strata__V1__UpdateStreamCmd c = STRATA__V1__UPDATE_STREAM_CMD__INIT;
	fx.min_segments = 2;
	sp.policy_case = STRATA__V1__SCALING_POLICY__POLICY_FIXED;
	sp.fixed = &fx;
	b.min = min;
	b.max = max;
	rp.policy_case = kind;
	if (kind == BY_TIME) {
		rp.by_time = &b;
	} else {
		rp.by_size = &b;
	}
	cfg.scaling = &sp;
	cfg.retention = &rp;
	r.scope = "sc";
	r.stream = "s";
	r.config = &cfg;
	c.request = &r;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_UPDATE_STREAM;
	cmd.update_stream = &c;
	assert_int_equal(h_apply(f, &cmd), 0);
}

/* cut = ids/offsets[0..n) (n <= 8) in so/sp. */
static void fill_cut(Strata__V1__StreamCut *cut, Strata__V1__SegmentOffset *so,
                     Strata__V1__SegmentOffset **sp, const uint64_t *ids,
                     const int64_t *offsets, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		Strata__V1__SegmentOffset init =
		        STRATA__V1__SEGMENT_OFFSET__INIT;
		so[i] = init;
		so[i].segment_id = ids[i];
		so[i].offset = offsets[i];
		sp[i] = &so[i];
	}
	cut->positions = sp;
	cut->n_positions = n;
}

/* Record the cut ids/offsets[0..n) at now, read from the stream created
 * at created_ms (0: not checked). */
static int record_of(struct cfsm *f, uint64_t now, const uint64_t *ids,
                     const int64_t *offsets, size_t n, uint64_t created_ms)
{
	Strata__V1__SegmentOffset so[8], *sp[8];
	Strata__V1__StreamCut cut = STRATA__V1__STREAM_CUT__INIT;
	fill_cut(&cut, so, sp, ids, offsets, n);
	Strata__V1__RecordRetentionCutCmd c =
	        STRATA__V1__RECORD_RETENTION_CUT_CMD__INIT;
	c.scope = "sc";
	c.stream = "s";
	c.cut = &cut;
	c.now_ms = now;
	c.stream_created_ms = created_ms;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_RECORD_RETENTION_CUT;
	cmd.record_retention_cut = &c;
	return h_apply(f, &cmd);
}

static int record(struct cfsm *f, uint64_t now, const uint64_t *ids,
                  const int64_t *offsets, size_t n)
{
	return record_of(f, now, ids, offsets, n, 0);
}

/* Record both epoch-0 segments at offset off. */
static int record2(struct cfsm *f, uint64_t now, int64_t off)
{
	uint64_t ids[] = {E(0, 0), E(0, 1)};
	int64_t offs[] = {off, off};
	return record(f, now, ids, offs, 2);
}

static const Strata__V1__StreamRecord *stream(struct cfsm *f)
{
	return cfsm_find_stream(f, "sc", "s");
}

#define RG_AUTO \
	STRATA__V1__READER_GROUP_RETENTION__READER_GROUP_RETENTION_AUTO_CHECKPOINT
#define RG_NONE STRATA__V1__READER_GROUP_RETENTION__READER_GROUP_RETENTION_NONE
#define RG_MANUAL \
	STRATA__V1__READER_GROUP_RETENTION__READER_GROUP_RETENTION_MANUAL

/* Create reader group name in sc reading streams[0..n) (n <= 4) of sc
 * with retention kind. */
static int group_of(struct cfsm *f, const char *name, int kind,
                    const char **streams, size_t n)
{
	Strata__V1__ReaderGroupStream rs[4], *rsp[4];
	for (size_t i = 0; i < n; i++) {
		Strata__V1__ReaderGroupStream init =
		        STRATA__V1__READER_GROUP_STREAM__INIT;
		rs[i] = init;
		rs[i].stream = (char *)streams[i];
		rsp[i] = &rs[i];
	}
	Strata__V1__ReaderGroupConfig cfg =
	        STRATA__V1__READER_GROUP_CONFIG__INIT;
	cfg.name = (char *)name;
	cfg.streams = rsp;
	cfg.n_streams = n;
	cfg.retention = kind;
	Strata__V1__CreateReaderGroupRequest r =
	        STRATA__V1__CREATE_READER_GROUP_REQUEST__INIT;
	Strata__V1__CreateReaderGroupCmd c =
	        STRATA__V1__CREATE_READER_GROUP_CMD__INIT;
	r.scope = "sc";
	r.config = &cfg;
	c.request = &r;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_READER_GROUP;
	cmd.create_reader_group = &c;
	return h_apply(f, &cmd);
}

/* Create reader group name in sc reading sc/s with retention kind. */
static int group(struct cfsm *f, const char *name, int kind)
{
	const char *s[] = {"s"};
	return group_of(f, name, kind, s, 1);
}

static int group_delete(struct cfsm *f, const char *name)
{
	Strata__V1__DeleteReaderGroupRequest r =
	        STRATA__V1__DELETE_READER_GROUP_REQUEST__INIT;
	Strata__V1__DeleteReaderGroupCmd c =
	        STRATA__V1__DELETE_READER_GROUP_CMD__INIT;
	r.scope = "sc";
	r.name = (char *)name;
	c.request = &r;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_DELETE_READER_GROUP;
	cmd.delete_reader_group = &c;
	return h_apply(f, &cmd);
}

/* Group name (in sc) releases cuts[0..n), generation gen, at 4242 ms. */
static int release_cuts(struct cfsm *f, const char *name, uint64_t gen,
                        Strata__V1__ReleasedCut **cuts, size_t n)
{
	Strata__V1__UpdateRetentionCutRequest r =
	        STRATA__V1__UPDATE_RETENTION_CUT_REQUEST__INIT;
	Strata__V1__UpdateRetentionCutCmd c =
	        STRATA__V1__UPDATE_RETENTION_CUT_CMD__INIT;
	r.scope = "sc";
	r.group = (char *)name;
	r.generation = gen;
	r.cuts = cuts;
	r.n_cuts = n;
	c.request = &r;
	c.now_ms = 4242;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_UPDATE_RETENTION_CUT;
	cmd.update_retention_cut = &c;
	return h_apply(f, &cmd);
}

/* Group name releases stream (in sc) at ids/offsets[0..n), generation gen. */
static int release(struct cfsm *f, const char *name, const char *stream,
                   uint64_t gen, const uint64_t *ids, const int64_t *offsets,
                   size_t n)
{
	Strata__V1__SegmentOffset so[8], *sp[8];
	Strata__V1__StreamCut cut = STRATA__V1__STREAM_CUT__INIT;
	fill_cut(&cut, so, sp, ids, offsets, n);
	Strata__V1__ReleasedCut rc = STRATA__V1__RELEASED_CUT__INIT;
	Strata__V1__ReleasedCut *rcp = &rc;
	rc.stream = (char *)stream;
	rc.cut = &cut;
	return release_cuts(f, name, gen, &rcp, 1);
}

/* Group name releases sc/s and sc/t, both at (0, 0)/(0, 1) offset off. */
static int release_st(struct cfsm *f, const char *name, int64_t off)
{
	Strata__V1__SegmentOffset so[2][2], *sp[2][2];
	Strata__V1__StreamCut cut[2] = {STRATA__V1__STREAM_CUT__INIT,
	                                STRATA__V1__STREAM_CUT__INIT};
	Strata__V1__ReleasedCut rc[2] = {STRATA__V1__RELEASED_CUT__INIT,
	                                 STRATA__V1__RELEASED_CUT__INIT};
	Strata__V1__ReleasedCut *rcp[2] = {&rc[0], &rc[1]};
	uint64_t ids[] = {E(0, 0), E(0, 1)};
	int64_t offs[] = {off, off};
	for (int i = 0; i < 2; i++) {
		fill_cut(&cut[i], so[i], sp[i], ids, offs, 2);
		rc[i].stream = i == 0 ? "s" : "t";
		rc[i].cut = &cut[i];
	}
	return release_cuts(f, name, 0, rcp, 2);
}

static int release2(struct cfsm *f, const char *name, int64_t off)
{
	uint64_t ids[] = {E(0, 0), E(0, 1)};
	int64_t offs[] = {off, off};
	return release(f, name, "s", 0, ids, offs, 2);
}

/* by_size: the newest cut with at least min bytes after it (judged at
 * the newest record) is truncated at; the cuts up to it are dropped. */
static void test_retention_by_size(void **state)
{
	struct cfsm *f = *state;
	set_policy(f, BY_SIZE, 1000, 0);
	assert_int_equal(record2(f, 1000, 100), 0); /* size 200 */
	assert_int_equal(h_res.workflow_id, 0);
	assert_int_equal(record2(f, 2000, 500), 0); /* 1000: 800 after #1 */
	assert_int_equal(h_res.workflow_id, 0);
	assert_int_equal(stream(f)->retention_cuts[1]->size, 1000);
	assert_int_equal(record2(f, 3000, 1100), 0); /* 2200: 1200 after #2 */
	uint64_t wf = h_res.workflow_id;
	assert_true(wf != 0);
	assert_int_equal(stream(f)->n_retention_cuts, 1);
	assert_int_equal(stream(f)->state,
	                 STRATA__V1__STREAM_STATE__STREAM_STATE_TRUNCATING);
	/* Busy: the record is kept, no second truncation. */
	assert_int_equal(record2(f, 4000, 2200), 0);
	assert_int_equal(h_res.workflow_id, 0);
	assert_int_equal(stream(f)->n_retention_cuts, 2);
	assert_int_equal(h_finish(f, wf), 0);
	const Strata__V1__StreamCut *t = stream(f)->truncation;
	assert_non_null(t);
	assert_int_equal(t->n_positions, 2);
	assert_int_equal(t->positions[0]->offset, 500);
	/* Idle again: the next record truncates at the newest cut with
	 * 1000 bytes after it: size 2200 (tail 4400). */
	assert_int_equal(record2(f, 5000, 2200), 0);
	assert_true(h_res.workflow_id != 0);
	assert_int_equal(h_finish(f, h_res.workflow_id), 0);
	assert_int_equal(stream(f)->truncation->positions[0]->offset, 1100);
}

/* by_time: the newest cut at least min old; with min 0 the max counts;
 * clocks that go back are clamped. */
static void test_retention_by_time(void **state)
{
	struct cfsm *f = *state;
	set_policy(f, BY_TIME, 5000, 0);
	assert_int_equal(record2(f, 1000, 10), 0);
	assert_int_equal(record2(f, 3000, 20), 0);
	assert_int_equal(record2(f, 2000, 30), 0); /* behind: as 3000 */
	assert_int_equal(stream(f)->retention_cuts[2]->time_ms, 3000);
	assert_int_equal(h_res.workflow_id, 0);
	assert_int_equal(record2(f, 7000, 40), 0); /* 1000 is 6000 old */
	assert_true(h_res.workflow_id != 0);
	assert_int_equal(h_finish(f, h_res.workflow_id), 0);
	assert_int_equal(stream(f)->truncation->positions[0]->offset, 10);
	assert_int_equal(stream(f)->n_retention_cuts, 3);

	set_policy(f, BY_TIME, 0, 2000); /* keep about 2 s */
	assert_int_equal(record2(f, 8000, 50), 0);
	assert_true(h_res.workflow_id != 0); /* the newer cut of 3000 */
	assert_int_equal(h_finish(f, h_res.workflow_id), 0);
	assert_int_equal(stream(f)->truncation->positions[0]->offset, 30);
}

/* Sizes count sealed segments wholly before the cut; many records are
 * thinned to a bound, keeping the oldest and newest. */
static void test_retention_sizes_and_bound(void **state)
{
	struct cfsm *f = *state;
	set_policy(f, BY_TIME, 1000000, 0);
	uint64_t seal[] = {E(0, 0)};
	double lo[] = {0, 0.25}, hi[] = {0.25, 0.5};
	assert_int_equal(h_scale(f, "sc", "s", seal, 1, lo, hi, 2), 0);
	/* h_step sealed segment 0 at 1000 + its number = 1000 bytes. */
	uint64_t ids[] = {E(1, 2), E(1, 3), E(0, 1)};
	int64_t offs[] = {5, 6, 7};
	assert_int_equal(record(f, 100, ids, offs, 3), 0);
	assert_int_equal(stream(f)->retention_cuts[0]->size, 1000 + 18);
	for (uint64_t t = 200; t < 200 + 300 * 10; t += 10) {
		assert_int_equal(record(f, t, ids, offs, 3), 0);
	}
	const Strata__V1__StreamRecord *s = stream(f);
	assert_true(s->n_retention_cuts <= 128);
	assert_int_equal(s->retention_cuts[0]->time_ms, 100);
	assert_int_equal(s->retention_cuts[s->n_retention_cuts - 1]->time_ms,
	                 200 + 299 * 10);
	for (size_t i = 1; i < s->n_retention_cuts; i++) {
		assert_true(s->retention_cuts[i - 1]->time_ms <
		            s->retention_cuts[i]->time_ms);
	}
	/* A snapshot with the cuts restores equal. */
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	struct cfsm g;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&g, 4, err), 0);
	assert_int_equal(cfsm_restore(&g, snap, len, err), 0);
	assert_true(h_same(&g, snap, len));
	cfsm_close(&g);
	strata_free(snap);
}

/* Bad input changes nothing: no policy, a cut that does not cover the
 * key space or names an unknown segment, an unknown stream. */
static void test_retention_bad_input(void **state)
{
	struct cfsm *f = *state;
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(record2(f, 1000, 10), STRATA_EINVAL);
	assert_non_null(strstr(h_res.message, "no retention policy"));
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	set_policy(f, BY_SIZE, 10, 0);
	snap = h_snap(f, &len);
	uint64_t one[] = {E(0, 0)};
	int64_t off[] = {5, 5};
	assert_int_equal(record(f, 1000, one, off, 1), STRATA_EINVAL);
	uint64_t unknown[] = {E(0, 0), E(0, 9)};
	assert_int_equal(record(f, 1000, unknown, off, 2), STRATA_EINVAL);
	/* A tail read before the stream was deleted and created again
	 * has the same segment ids but not the same stream. */
	uint64_t both[] = {E(0, 0), E(0, 1)};
	uint64_t created = stream(f)->created_ms;
	assert_int_equal(record_of(f, 1000, both, off, 2, created + 1),
	                 STRATA_EINVAL);
	assert_non_null(strstr(h_res.message, "created again"));
	assert_true(h_same(f, snap, len));
	assert_int_equal(record_of(f, 1000, both, off, 2, created), 0);
	strata_free(snap);
	assert_int_equal(h_seal(f, "sc", "s"), 0);
	assert_int_equal(record2(f, 2000, 10), STRATA_ESEALED);
}

/* A group with consumption-based retention holds truncation at the cut
 * it released (nothing before it releases anything), within min; once
 * it is deleted, the policy alone decides again. */
static void test_retention_subscriber_holds(void **state)
{
	struct cfsm *f = *state;
	set_policy(f, BY_SIZE, 1000, 0);
	assert_int_equal(group(f, "g", RG_AUTO), 0);
	assert_int_equal(group(f, "plain", RG_NONE), 0); /* not counted */
	assert_int_equal(record2(f, 1000, 100), 0);      /* size 200 */
	assert_int_equal(record2(f, 2000, 500), 0);      /* 1000 */
	assert_int_equal(record2(f, 3000, 1100), 0);     /* 2200 */
	assert_int_equal(record2(f, 4000, 2200), 0);     /* 4400 */
	assert_int_equal(h_res.workflow_id, 0);          /* held at the head */
	assert_int_equal(stream(f)->n_retention_cuts, 4);

	/* Released at 600: the newest kept cut at or before it is 500. */
	assert_int_equal(release2(f, "g", 600), 0);
	Strata__V1__ReaderGroupConfig *g = NULL;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_get_reader_group(f, "sc", "g", &g, err), 0);
	assert_int_equal(g->n_released, 1);
	assert_string_equal(g->released[0]->stream, "s");
	assert_int_equal(g->released[0]->updated_ms, 4242);
	assert_int_equal(g->released[0]->cut->positions[0]->offset, 600);
	cfsm_msg_free(g);
	assert_int_equal(record2(f, 5000, 2300), 0);
	uint64_t wf = h_res.workflow_id;
	assert_true(wf != 0);
	assert_int_equal(h_finish(f, wf), 0);
	assert_int_equal(stream(f)->truncation->positions[0]->offset, 500);

	/* Released at the tail: min still keeps 1000 bytes. */
	assert_int_equal(release2(f, "g", 2300), 0);
	assert_int_equal(record2(f, 6000, 2400), 0); /* size 4800 */
	wf = h_res.workflow_id;
	assert_true(wf != 0);
	assert_int_equal(h_finish(f, wf), 0);
	assert_int_equal(stream(f)->truncation->positions[0]->offset, 1100);

	/* A second group that released nothing holds it again. */
	assert_int_equal(group(f, "h", RG_AUTO), 0);
	uint64_t created = h_res.workflow_id; /* its state stream */
	assert_int_equal(record2(f, 7000, 4000), 0);
	assert_int_equal(h_res.workflow_id, 0);
	assert_int_equal(h_finish(f, created), 0);
	assert_int_equal(group_delete(f, "h"), 0);
	assert_int_equal(record2(f, 8000, 4100), 0);
	assert_true(h_res.workflow_id != 0); /* g released up to 2300 */
	assert_int_equal(h_finish(f, h_res.workflow_id), 0);
	assert_int_equal(stream(f)->truncation->positions[0]->offset, 2300);

	/* A snapshot with released cuts restores equal. */
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	struct cfsm c2;
	assert_int_equal(cfsm_init(&c2, 4, err), 0);
	assert_int_equal(cfsm_restore(&c2, snap, len, err), 0);
	assert_true(h_same(&c2, snap, len));
	cfsm_close(&c2);
	strata_free(snap);
}

/* max bounds what a group that never releases holds back. */
static void test_retention_subscriber_max(void **state)
{
	struct cfsm *f = *state;
	set_policy(f, BY_SIZE, 0, 3000);
	assert_int_equal(group(f, "g", RG_AUTO), 0);
	assert_int_equal(record2(f, 1000, 100), 0);  /* 200 */
	assert_int_equal(record2(f, 2000, 1000), 0); /* 2000 */
	assert_int_equal(h_res.workflow_id, 0);
	assert_int_equal(record2(f, 3000, 2000), 0); /* 4000: 3800 after #1 */
	assert_true(h_res.workflow_id != 0);
	assert_int_equal(h_finish(f, h_res.workflow_id), 0);
	assert_int_equal(stream(f)->truncation->positions[0]->offset, 100);
	/* min 0 and everything released: up to the newest cut. */
	assert_int_equal(release2(f, "g", 2500), 0);
	assert_int_equal(record2(f, 4000, 2500), 0);
	assert_true(h_res.workflow_id != 0);
	assert_int_equal(h_finish(f, h_res.workflow_id), 0);
	assert_int_equal(stream(f)->truncation->positions[0]->offset, 2500);
}

/* A deleted stream leaves its subscribers: one created again under the
 * same name is not held back by the old groups. */
static void test_retention_subscriber_stream_recreated(void **state)
{
	struct cfsm *f = *state;
	set_policy(f, BY_SIZE, 1000, 0);
	assert_int_equal(h_create_stream(f, "sc", "t", 2), 0);
	const char *st[] = {"s", "t"};
	assert_int_equal(group(f, "g", RG_AUTO), 0);
	assert_int_equal(group_of(f, "two", RG_MANUAL, st, 2), 0);
	assert_int_equal(record2(f, 1000, 100), 0);
	assert_int_equal(record2(f, 2000, 1100), 0);
	assert_int_equal(h_res.workflow_id, 0); /* held */
	assert_int_equal(h_seal(f, "sc", "s"), 0);
	assert_int_equal(h_delete(f, "sc", "s"), 0);
	Strata__V1__ReaderGroupConfig *g = NULL;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_get_reader_group(f, "sc", "g", &g, err), 0);
	assert_int_equal(g->n_streams, 1); /* the configuration stays */
	assert_int_equal(g->n_released, 0);
	cfsm_msg_free(g);

	/* Releasing only deleted streams is refused and changes nothing;
	 * a release that also names a live stream moves that one on. */
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(release2(f, "g", 100), STRATA_ENOENT);
	assert_non_null(strstr(h_res.message, "was deleted"));
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	assert_int_equal(release_st(f, "two", 7), 0);
	assert_int_equal(cfsm_get_reader_group(f, "sc", "two", &g, err), 0);
	assert_int_equal(g->n_released, 1);
	assert_string_equal(g->released[0]->stream, "t");
	assert_int_equal(g->released[0]->cut->positions[0]->offset, 7);
	cfsm_msg_free(g);

	/* s created again: the plain policy, no group holds it. */
	assert_int_equal(h_create_stream(f, "sc", "s", 2), 0);
	set_policy(f, BY_SIZE, 1000, 0);
	assert_int_equal(record2(f, 3000, 100), 0);  /* size 200 */
	assert_int_equal(record2(f, 4000, 1100), 0); /* 2200 */
	assert_true(h_res.workflow_id != 0);
	assert_int_equal(h_finish(f, h_res.workflow_id), 0);
	assert_int_equal(stream(f)->truncation->positions[0]->offset, 100);
}

/* A release that is wrong changes nothing and names the problem. */
static void test_retention_release_bad_input(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(h_create_stream(f, "sc", "t", 1), 0);
	assert_int_equal(group(f, "g", RG_AUTO), 0);
	assert_int_equal(group(f, "plain", RG_NONE), 0);
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(release2(f, "nope", 5), STRATA_ENOENT);
	assert_int_equal(release2(f, "plain", 5), STRATA_EINVAL);
	assert_non_null(strstr(h_res.message, "retention NONE"));
	uint64_t ids[] = {E(0, 0), E(0, 1)};
	int64_t offs[] = {5, 5};
	assert_int_equal(release(f, "g", "s", 3, ids, offs, 2),
	                 STRATA_ECONFLICT);
	assert_non_null(strstr(h_res.message, "generation"));
	uint64_t t0[] = {E(0, 0)};
	assert_int_equal(release(f, "g", "t", 0, t0, offs, 1), STRATA_EINVAL);
	assert_non_null(strstr(h_res.message, "does not read"));
	assert_int_equal(release(f, "g", "s", 0, ids, offs, 1), STRATA_EINVAL);
	int64_t neg[] = {5, -1};
	assert_int_equal(release(f, "g", "s", 0, ids, neg, 2), STRATA_EINVAL);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_retention_by_size,
	                                        h_setup_sc_s, h_teardown),
	        cmocka_unit_test_setup_teardown(test_retention_by_time,
	                                        h_setup_sc_s, h_teardown),
	        cmocka_unit_test_setup_teardown(test_retention_sizes_and_bound,
	                                        h_setup_sc_s, h_teardown),
	        cmocka_unit_test_setup_teardown(test_retention_bad_input,
	                                        h_setup_sc_s, h_teardown),
	        cmocka_unit_test_setup_teardown(test_retention_subscriber_holds,
	                                        h_setup_sc_s, h_teardown),
	        cmocka_unit_test_setup_teardown(test_retention_subscriber_max,
	                                        h_setup_sc_s, h_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_retention_release_bad_input, h_setup_sc_s,
	                h_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_retention_subscriber_stream_recreated,
	                h_setup_sc_s, h_teardown),
	};
	return cmocka_run_group_tests_name("controller_retention", tests, NULL,
	                                   NULL);
}
