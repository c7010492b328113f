/* Unit tests for controller/workflows.c: create/scale/seal/truncate/delete. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "tests/unit/controller/cfsm_helpers.h"

#define E(epoch, n) (((uint64_t)(epoch) << 32) | (n))

static int setup(void **state)
{
	static struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 16, err), 0);
	assert_int_equal(h_create_scope(&f, "sc"), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	cfsm_close(*state);
	return 0;
}

/* Count pending actions of a kind for one workflow. */
static size_t count_actions(struct cfsm *f, uint64_t wf, int kind)
{
	struct cfsm_action *a;
	size_t n, k = 0;
	assert_int_equal(cfsm_pending_actions(f, &a, &n), 0);
	for (size_t i = 0; i < n; i++) {
		k += a[i].workflow_id == wf && (int)a[i].kind == kind;
	}
	strata_free(a);
	return k;
}

/* Create records CREATING + epoch 0, lists create actions, then ACTIVE. */
static void test_workflows_create_stream_steps(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(h_create_stream_only(f, "sc", "s", 3, NULL), 0);
	uint64_t wf = h_res.workflow_id;
	assert_int_equal(h_res.n_segment_ids, 3);
	assert_true(h_res.segment_ids[2] == E(0, 2));
	const Strata__V1__StreamRecord *s = cfsm_find_stream(f, "sc", "s");
	assert_int_equal(s->state,
	                 STRATA__V1__STREAM_STATE__STREAM_STATE_CREATING);
	struct cfsm_action *a;
	size_t n;
	assert_int_equal(cfsm_pending_actions(f, &a, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(a[i].kind, CFSM_ACTION_CREATE_SEGMENT);
		assert_true(a[i].segment_id == E(0, i));
		assert_int_equal(a[i].container,
		                 cfsm_segment_container(f, "sc", "s", E(0, i)));
		assert_string_equal(a[i].scope, "sc");
	}
	strata_free(a);
	assert_int_equal(h_step(f, wf), 0);
	s = cfsm_find_stream(f, "sc", "s");
	assert_int_equal(s->state,
	                 STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE);
	assert_int_equal(s->workflow_id, 0);
	assert_int_equal(count_actions(f, wf, CFSM_ACTION_CREATE_SEGMENT), 0);
	assert_true(s->epochs[0]->segments[1]->low == 1.0 / 3);
	assert_true(s->epochs[0]->segments[2]->high == 1.0);
}

/* A step replayed (after a restart or a duplicate) is a no-op success. */
static void test_workflows_step_replayed_is_idempotent(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(h_create_stream_only(f, "sc", "s", 1, NULL), 0);
	uint64_t wf = h_res.workflow_id;
	Strata__V1__WorkflowStepDone d = STRATA__V1__WORKFLOW_STEP_DONE__INIT;
	d.workflow_id = wf;
	d.step = STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_CREATE_SEGMENTS;
	Strata__V1__ControllerCommand c = STRATA__V1__CONTROLLER_COMMAND__INIT;
	c.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_WORKFLOW_STEP_DONE;
	c.workflow_step_done = &d;
	assert_int_equal(h_apply(f, &c), 0);
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(h_apply(f, &c), 0);
	assert_true(h_same(f, snap, len));
	strata_free(snap);

	/* Scale: replay each of its two steps. */
	uint64_t seal[] = {E(0, 0)};
	double lo[] = {0, 0.5}, hi[] = {0.5, 1};
	assert_int_equal(h_scale_only(f, "sc", "s", seal, 1, lo, hi, 2), 0);
	wf = h_res.workflow_id;
	d.workflow_id = wf;
	assert_int_equal(h_apply(f, &c), 0); /* CREATE_SEGMENTS */
	snap = h_snap(f, &len);
	assert_int_equal(h_apply(f, &c), 0);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	assert_int_equal(h_step(f, wf), 0); /* SEAL_SEGMENTS */
	snap = h_snap(f, &len);
	d.step = STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_SEAL_SEGMENTS;
	assert_int_equal(h_apply(f, &c), 0);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
}

/* 1 -> 3 -> 2 segments: epochs, ids, ranges, successors, predecessors. */
static void test_workflows_scale_1_3_2(void **state)
{
	struct cfsm *f = *state;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(h_create_stream(f, "sc", "s", 1), 0);
	uint64_t seal1[] = {E(0, 0)};
	double lo1[] = {2.0 / 3, 0, 1.0 / 3}, hi1[] = {1, 1.0 / 3, 2.0 / 3};
	assert_int_equal(h_scale_only(f, "sc", "s", seal1, 1, lo1, hi1, 3), 0);
	assert_int_equal(h_res.n_segment_ids, 3);
	assert_true(h_res.segment_ids[0] == E(1, 1));
	assert_true(h_res.segment_ids[2] == E(1, 3));
	uint64_t wf = h_res.workflow_id;
	assert_int_equal(count_actions(f, wf, CFSM_ACTION_CREATE_SEGMENT), 3);
	assert_int_equal(h_step(f, wf), 0);
	assert_int_equal(count_actions(f, wf, CFSM_ACTION_SEAL_SEGMENT), 1);
	assert_int_equal(h_step(f, wf), 0);
	assert_null(cfsm_find_workflow(f, wf));

	uint64_t seal2[] = {E(1, 3), E(1, 2)};
	double lo2[] = {1.0 / 3}, hi2[] = {1};
	assert_int_equal(h_scale(f, "sc", "s", seal2, 2, lo2, hi2, 1), 0);

	const Strata__V1__StreamRecord *s = cfsm_find_stream(f, "sc", "s");
	assert_int_equal(s->n_epochs, 3);
	assert_int_equal(s->state,
	                 STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE);
	assert_int_equal(s->n_sealed_sizes, 3);
	/* Segments of every epoch kept are the stream's; others are not. */
	assert_true(cfsm_has_segment(f, "sc", "s", E(0, 0)));
	assert_true(cfsm_has_segment(f, "sc", "s", E(1, 3)));
	assert_true(cfsm_has_segment(f, "sc", "s", E(2, 4)));
	assert_false(cfsm_has_segment(f, "sc", "s", E(2, 5)));
	assert_false(cfsm_has_segment(f, "sc", "s", E(1, 4)));
	assert_false(cfsm_has_segment(f, "sc", "nope", E(0, 0)));
	Strata__V1__SegmentsReply *cur;
	assert_int_equal(cfsm_current_segments(f, "sc", "s", &cur, err), 0);
	assert_int_equal(cur->n_segments, 2);
	assert_true(cur->segments[0]->segment->id == E(1, 1));
	assert_true(cur->segments[0]->segment->high == 1.0 / 3);
	assert_true(cur->segments[1]->segment->id == E(2, 4));
	assert_true(cur->segments[1]->segment->low == 1.0 / 3);
	assert_true(cur->segments[1]->segment->high == 1.0);
	assert_string_equal(cur->segments[1]->qualified_name,
	                    "sc/s/4.#epoch.2");
	cfsm_msg_free(cur);

	Strata__V1__SuccessorsReply *sr;
	assert_int_equal(cfsm_successors(f, "sc", "s", E(0, 0), &sr, err), 0);
	assert_int_equal(sr->n_successors, 3);
	assert_false(sr->open);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(sr->successors[i]->n_predecessors, 1);
		assert_true(sr->successors[i]->predecessors[0] == E(0, 0));
	}
	cfsm_msg_free(sr);
	assert_int_equal(cfsm_successors(f, "sc", "s", E(1, 2), &sr, err), 0);
	assert_int_equal(sr->n_successors, 1);
	assert_true(sr->successors[0]->segment->id == E(2, 4));
	assert_int_equal(sr->successors[0]->n_predecessors, 2);
	assert_true(sr->successors[0]->predecessors[0] == E(1, 2));
	assert_true(sr->successors[0]->predecessors[1] == E(1, 3));
	cfsm_msg_free(sr);
	assert_int_equal(cfsm_successors(f, "sc", "s", E(1, 1), &sr, err), 0);
	assert_int_equal(sr->n_successors, 0); /* still current */
	assert_true(sr->open);
	cfsm_msg_free(sr);
	assert_int_equal(cfsm_successors(f, "sc", "s", E(5, 5), &sr, err),
	                 STRATA_ENOENT);
}

/* Every rejected scale leaves the state byte-identical. */
static void test_workflows_scale_rejections_change_nothing(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(h_create_stream(f, "sc", "s", 3), 0);
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	const double third = 1.0 / 3, two = 2.0 / 3;
	struct {
		uint64_t ids[3];
		size_t n_ids;
		double lo[3], hi[3];
		size_t n_r;
		int code;
	} cases[] = {
	        {{E(0, 0)}, 1, {0, 0.1}, {0.1, 0.2}, 2, STRATA_EINVAL}, /* gap
	                                                                 */
	        {{E(0, 0)}, 1, {0, 0.1}, {0.2, third}, 2, STRATA_EINVAL},
	        {{E(0, 0)}, 1, {0, 0.1}, {0.15, third}, 2, STRATA_EINVAL},
	        {{E(0, 0)}, 1, {0}, {0.5}, 1, STRATA_EINVAL}, /* excess */
	        {{E(0, 0), E(0, 2)}, 2, {0}, {1}, 1, STRATA_EINVAL},
	        {{E(0, 0), E(0, 0)}, 2, {0}, {third}, 1, STRATA_EINVAL},
	        {{E(0, 7)}, 1, {0}, {third}, 1, STRATA_EINVAL},
	        {{E(0, 1)}, 1, {third}, {third}, 1, STRATA_EINVAL},
	        {{E(0, 1)}, 1, {two}, {third}, 1, STRATA_EINVAL},
	        {{0}, 0, {0}, {1}, 1, STRATA_EINVAL},
	        {{E(0, 1)}, 1, {0}, {0}, 0, STRATA_EINVAL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc =
		        h_scale_only(f, "sc", "s", cases[i].ids, cases[i].n_ids,
		                     cases[i].lo, cases[i].hi, cases[i].n_r);
		assert_int_equal(rc, cases[i].code);
		assert_true(strlen(h_res.message) > 10);
		assert_true(h_same(f, snap, len));
	}
	uint64_t one[] = {E(0, 0)};
	double lo[] = {0}, hi[] = {third};
	assert_int_equal(h_scale_only(f, "sc", "nope", one, 1, lo, hi, 1),
	                 STRATA_ENOENT);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	/* Busy while another scale runs; sealed after a seal. */
	assert_int_equal(h_scale_only(f, "sc", "s", one, 1, lo, hi, 1), 0);
	snap = h_snap(f, &len);
	assert_int_equal(h_scale_only(f, "sc", "s", one, 1, lo, hi, 1),
	                 STRATA_EBUSY);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	assert_int_equal(h_finish(f, 2), 0); /* the running scale */
	assert_int_equal(h_seal(f, "sc", "s"), 0);
	/* Sealed with the stream: no successors, and final. */
	Strata__V1__SuccessorsReply *sr;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_successors(f, "sc", "s", E(1, 3), &sr, err), 0);
	assert_int_equal(sr->n_successors, 0);
	assert_false(sr->open);
	cfsm_msg_free(sr);
	snap = h_snap(f, &len);
	uint64_t cur[] = {E(1, 3)};
	assert_int_equal(h_scale_only(f, "sc", "s", cur, 1, lo, hi, 1),
	                 STRATA_ESEALED);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
}

/* Seal records sizes; delete needs sealed, removes every segment. */
static void test_workflows_seal_then_delete(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(h_create_stream(f, "sc", "s", 2), 0);
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(h_delete_only(f, "sc", "s"), STRATA_ENOTSEALED);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	/* The current segments say whether the stream is sealed (a writer
	 * told "sealed" by a store tells a lagging answer from it). */
	char err[STRATA_ERRMSG_SIZE];
	Strata__V1__SegmentsReply *cur;
	assert_int_equal(cfsm_current_segments(f, "sc", "s", &cur, err), 0);
	assert_false(cur->stream_sealed);
	cfsm_msg_free(cur);
	assert_int_equal(h_seal_only(f, "sc", "s"), 0);
	uint64_t wf = h_res.workflow_id;
	assert_int_equal(count_actions(f, wf, CFSM_ACTION_SEAL_SEGMENT), 2);
	assert_int_equal(cfsm_current_segments(f, "sc", "s", &cur, err), 0);
	assert_true(cur->stream_sealed); /* SEALING */
	cfsm_msg_free(cur);
	assert_int_equal(h_finish(f, wf), 0);
	const Strata__V1__StreamRecord *s = cfsm_find_stream(f, "sc", "s");
	assert_int_equal(s->state,
	                 STRATA__V1__STREAM_STATE__STREAM_STATE_SEALED);
	assert_int_equal(s->n_sealed_sizes, 2);
	snap = h_snap(f, &len);
	assert_int_equal(h_seal_only(f, "sc", "s"), 0); /* idempotent */
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	assert_int_equal(h_delete_scope(f, "sc"), STRATA_ENOTEMPTY);
	assert_int_equal(h_delete_only(f, "sc", "s"), 0);
	wf = h_res.workflow_id;
	assert_int_equal(count_actions(f, wf, CFSM_ACTION_DELETE_SEGMENT), 2);
	assert_int_equal(h_finish(f, wf), 0);
	assert_null(cfsm_find_stream(f, "sc", "s"));
	assert_int_equal(h_delete_scope(f, "sc"), 0);
}

/* Truncation deletes wholly covered segments and never goes back. */
static void test_workflows_truncate(void **state)
{
	struct cfsm *f = *state;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(h_create_stream(f, "sc", "s", 2), 0);
	uint64_t seal[] = {E(0, 0)};
	double lo[] = {0, 0.25}, hi[] = {0.25, 0.5};
	assert_int_equal(h_scale(f, "sc", "s", seal, 1, lo, hi, 2), 0);

	uint64_t ids[] = {E(1, 2), E(1, 3), E(0, 1)};
	int64_t offs[] = {10, 0, 5};
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	uint64_t bad_ids[] = {E(1, 2), E(0, 1)}; /* gap [0.25,0.5) */
	assert_int_equal(h_truncate_only(f, "sc", "s", bad_ids, offs, 2),
	                 STRATA_EINVAL);
	int64_t neg[] = {-1, 0, 0};
	assert_int_equal(h_truncate_only(f, "sc", "s", ids, neg, 3),
	                 STRATA_EINVAL);
	assert_true(h_same(f, snap, len));
	strata_free(snap);

	assert_int_equal(h_truncate_only(f, "sc", "s", ids, offs, 3), 0);
	uint64_t wf = h_res.workflow_id;
	assert_int_equal(count_actions(f, wf, CFSM_ACTION_TRUNCATE_SEGMENT), 2);
	assert_int_equal(count_actions(f, wf, CFSM_ACTION_DELETE_SEGMENT), 1);
	/* Successors say which segment truncation deletes, while it runs
	 * (the store may already have deleted it) and after. */
	Strata__V1__SuccessorsReply *sr;
	for (int done = 0; done < 2; done++) {
		assert_int_equal(
		        cfsm_successors(f, "sc", "s", E(0, 0), &sr, err), 0);
		assert_true(sr->deleted);
		cfsm_msg_free(sr);
		assert_int_equal(
		        cfsm_successors(f, "sc", "s", E(0, 1), &sr, err), 0);
		assert_false(sr->deleted);
		cfsm_msg_free(sr);
		if (done == 0) {
			assert_int_equal(h_finish(f, wf), 0);
		}
	}
	const Strata__V1__StreamRecord *s = cfsm_find_stream(f, "sc", "s");
	assert_int_equal(s->n_deleted_segments, 1);
	assert_true(s->deleted_segments[0] == E(0, 0));
	assert_int_equal(s->truncation->n_positions, 3);

	/* The head is now the truncation cut. */
	Strata__V1__SegmentsReply *h;
	assert_int_equal(cfsm_segments_at_cut(f, "sc", "s", NULL, &h, err), 0);
	assert_int_equal(h->n_segments, 3);
	assert_int_equal(h->segments[0]->offset, 10);
	cfsm_msg_free(h);

	snap = h_snap(f, &len);
	int64_t back[] = {9, 0, 5};
	/* Behind the head: the data is gone (not a malformed cut). */
	assert_int_equal(h_truncate_only(f, "sc", "s", ids, back, 3),
	                 STRATA_ETRUNCATED);
	uint64_t old[] = {E(0, 0), E(0, 1)};
	int64_t zero[] = {0, 0};
	assert_int_equal(h_truncate_only(f, "sc", "s", old, zero, 2),
	                 STRATA_ETRUNCATED);
	/* Segments named as users write them (NUMBER.EPOCH), not by id. */
	assert_non_null(strstr(h_res.message, "names segment 0.0 of sc/s "
	                                      "which truncation deleted"));
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	/* A reader restoring a cut of a deleted segment is told the same. */
	Strata__V1__StreamCut cut = STRATA__V1__STREAM_CUT__INIT;
	Strata__V1__SegmentOffset p0 = STRATA__V1__SEGMENT_OFFSET__INIT;
	Strata__V1__SegmentOffset p1 = STRATA__V1__SEGMENT_OFFSET__INIT;
	Strata__V1__SegmentOffset *ps[] = {&p0, &p1};
	p0.segment_id = E(0, 0);
	p1.segment_id = E(0, 1);
	cut.n_positions = 2;
	cut.positions = ps;
	assert_int_equal(cfsm_segments_at_cut(f, "sc", "s", &cut, &h, err),
	                 STRATA_ETRUNCATED);
	assert_non_null(strstr(err, "truncation deleted"));
}

/* A new leader restored from a snapshot mid-workflow resumes it. */
static void test_workflows_new_leader_resumes(void **state)
{
	struct cfsm *f = *state;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(h_create_stream(f, "sc", "s", 1), 0);
	uint64_t seal[] = {E(0, 0)};
	double lo[] = {0, 0.5}, hi[] = {0.5, 1};
	assert_int_equal(h_scale_only(f, "sc", "s", seal, 1, lo, hi, 2), 0);
	uint64_t wf = h_res.workflow_id;
	assert_int_equal(h_step(f, wf), 0); /* successors created */
	size_t len;
	uint8_t *snap = h_snap(f, &len);

	struct cfsm g;
	assert_int_equal(cfsm_init(&g, 16, err), 0);
	assert_int_equal(cfsm_restore(&g, snap, len, err), 0);
	struct cfsm_action *a1, *a2;
	size_t n1, n2;
	assert_int_equal(cfsm_pending_actions(f, &a1, &n1), 0);
	assert_int_equal(cfsm_pending_actions(&g, &a2, &n2), 0);
	assert_int_equal(n1, n2);
	assert_int_equal(n1, 1);
	assert_int_equal(a2[0].kind, CFSM_ACTION_SEAL_SEGMENT);
	assert_true(a2[0].segment_id == a1[0].segment_id);
	strata_free(a1);
	strata_free(a2);
	assert_int_equal(h_finish(&g, wf), 0);
	assert_int_equal(h_finish(f, wf), 0);
	strata_free(snap);
	snap = h_snap(f, &len);
	assert_true(h_same(&g, snap, len));
	strata_free(snap);
	cfsm_close(&g);
}

/* Steps out of order or of unknown workflows are refused, unchanged. */
static void test_workflows_bad_steps_rejected(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(h_create_stream_only(f, "sc", "s", 2, NULL), 0);
	uint64_t wf = h_res.workflow_id;
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	Strata__V1__WorkflowStepDone d = STRATA__V1__WORKFLOW_STEP_DONE__INIT;
	Strata__V1__ControllerCommand c = STRATA__V1__CONTROLLER_COMMAND__INIT;
	c.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_WORKFLOW_STEP_DONE;
	c.workflow_step_done = &d;
	d.workflow_id = wf;
	d.step = STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_SEAL_SEGMENTS;
	assert_int_equal(h_apply(f, &c), STRATA_EINVAL);
	d.workflow_id = wf + 100;
	assert_int_equal(h_apply(f, &c), STRATA_ENOENT);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	assert_int_equal(h_finish(f, wf), 0);
	assert_int_equal(h_seal_only(f, "sc", "s"), 0);
	wf = h_res.workflow_id;
	snap = h_snap(f, &len);
	d.workflow_id = wf;
	d.n_sealed_sizes = 0; /* sizes missing */
	assert_int_equal(h_apply(f, &c), STRATA_EINVAL);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
}

/* A cut inside the open segments deletes no segment (the case that
 * handed memcpy a NULL source, aborting the controller under UBSan). */
static void test_workflows_truncate_deletes_none(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(h_create_stream(f, "sc", "s", 2), 0);
	uint64_t ids[] = {E(0, 0), E(0, 1)};
	int64_t offs[] = {40, 7};
	assert_int_equal(h_truncate_only(f, "sc", "s", ids, offs, 2), 0);
	uint64_t wf = h_res.workflow_id;
	assert_int_equal(count_actions(f, wf, CFSM_ACTION_DELETE_SEGMENT), 0);
	assert_int_equal(count_actions(f, wf, CFSM_ACTION_TRUNCATE_SEGMENT), 2);
	assert_int_equal(h_finish(f, wf), 0);
	const Strata__V1__StreamRecord *s = cfsm_find_stream(f, "sc", "s");
	assert_int_equal(s->n_deleted_segments, 0);
	assert_int_equal(s->truncation->n_positions, 2);
}

/* A truncation no store has work for (at the head of a new stream, or at
 * the start of segments whose predecessors are gone) is done at once: as
 * a workflow it had no action to complete it, so it held the stream in
 * TRUNCATING for ever (retention recorded a cut of an empty stream). */
static void test_workflows_truncate_noop_done_at_once(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(h_create_stream(f, "sc", "s", 2), 0);
	uint64_t ids[] = {E(0, 0), E(0, 1)};
	int64_t zero[] = {0, 0};
	assert_int_equal(h_truncate_only(f, "sc", "s", ids, zero, 2), 0);
	assert_int_equal(h_res.workflow_id, 0);
	const Strata__V1__StreamRecord *s = cfsm_find_stream(f, "sc", "s");
	assert_int_equal(s->state,
	                 STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE);
	assert_int_equal(s->workflow_id, 0);
	assert_int_equal(s->truncation->n_positions, 2);
	/* Scaled, the old segments truncated away, then a cut at the
	 * start of the successors: nothing to do either. */
	uint64_t seal[] = {E(0, 0)};
	double lo[] = {0, 0.25}, hi[] = {0.25, 0.5};
	assert_int_equal(h_scale(f, "sc", "s", seal, 1, lo, hi, 2), 0);
	uint64_t ids1[] = {E(1, 2), E(1, 3), E(0, 1)};
	int64_t offs[] = {0, 0, 0};
	assert_int_equal(h_truncate_only(f, "sc", "s", ids1, offs, 3), 0);
	uint64_t wf = h_res.workflow_id;
	assert_true(wf != 0); /* E(0, 0) is deleted */
	assert_int_equal(h_finish(f, wf), 0);
	assert_int_equal(h_truncate_only(f, "sc", "s", ids1, offs, 3), 0);
	assert_int_equal(h_res.workflow_id, 0);
	s = cfsm_find_stream(f, "sc", "s");
	assert_int_equal(s->state,
	                 STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE);
	assert_int_equal(s->n_deleted_segments, 1);
}

/* An offset past a sealed segment's recorded size is refused, whole: the
 * store would refuse the truncation at every retry (STRATA_ERANGE) and
 * hold the stream in TRUNCATING for ever. */
static void test_workflows_truncate_past_sealed_end(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(h_create_stream(f, "sc", "s", 2), 0);
	uint64_t seal[] = {E(0, 0)};
	double lo[] = {0, 0.25}, hi[] = {0.25, 0.5};
	assert_int_equal(h_scale(f, "sc", "s", seal, 1, lo, hi, 2), 0);
	uint64_t ids[] = {E(0, 0), E(0, 1)};
	int64_t past[] = {1001, 0}; /* h_step sealed E(0, 0) at 1000 */
	assert_int_equal(h_truncate_only(f, "sc", "s", ids, past, 2),
	                 STRATA_EINVAL);
	assert_non_null(strstr(h_res.message,
	                       "offset 1001 of segment 0.0 is past its "
	                       "end (sealed at 1000 bytes)"));
	const Strata__V1__StreamRecord *s = cfsm_find_stream(f, "sc", "s");
	assert_int_equal(s->state,
	                 STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE);
	assert_int_equal(s->workflow_id, 0);
	assert_null(s->truncation);
	int64_t end[] = {1000, 0};
	assert_int_equal(h_truncate_only(f, "sc", "s", ids, end, 2), 0);
	assert_int_equal(h_finish(f, h_res.workflow_id), 0);
	s = cfsm_find_stream(f, "sc", "s");
	assert_int_equal(s->truncation->positions[0]->offset, 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                test_workflows_create_stream_steps, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_workflows_step_replayed_is_idempotent, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_workflows_scale_1_3_2,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_workflows_scale_rejections_change_nothing, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_workflows_seal_then_delete,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_workflows_truncate, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_workflows_truncate_deletes_none, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_workflows_truncate_past_sealed_end, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_workflows_truncate_noop_done_at_once, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_workflows_new_leader_resumes, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_workflows_bad_steps_rejected, setup, teardown),
	};
	return cmocka_run_group_tests_name("controller_workflows", tests, NULL,
	                                   NULL);
}
