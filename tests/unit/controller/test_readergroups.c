/* Unit tests for controller/readergroups.c: reader-group configurations
 * and the lifecycle of their _RG<name> state streams. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "tests/lib/oom.h"
#include "tests/unit/controller/cfsm_helpers.h"

#define WS(x) STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_##x
#define STATE(x) STRATA__V1__STREAM_STATE__STREAM_STATE_##x

static int setup(void **state)
{
	static struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 4, err), 0);
	assert_int_equal(h_create_scope(&f, "sc"), 0);
	assert_int_equal(h_create_stream(&f, "sc", "s", 2), 0);
	assert_int_equal(h_create_stream(&f, "sc", "t", 1), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	cfsm_close(*state);
	return 0;
}

/* Create (update when gen != UINT64_MAX) group name reading streams. */
static int rg(struct cfsm *f, const char *name, const char **streams, size_t n,
              uint64_t gen)
{
	Strata__V1__ReaderGroupStream rs[4], *rsp[4];
	for (size_t i = 0; i < n; i++) {
		Strata__V1__ReaderGroupStream x =
		        STRATA__V1__READER_GROUP_STREAM__INIT;
		x.stream = (char *)streams[i];
		rs[i] = x;
		rsp[i] = &rs[i];
	}
	Strata__V1__ReaderGroupConfig cfg =
	        STRATA__V1__READER_GROUP_CONFIG__INIT;
	cfg.name = (char *)name;
	cfg.streams = rsp;
	cfg.n_streams = n;
	cfg.checkpoint_interval_ms = 30000;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	Strata__V1__CreateReaderGroupRequest cr =
	        STRATA__V1__CREATE_READER_GROUP_REQUEST__INIT;
	Strata__V1__CreateReaderGroupCmd cc =
	        STRATA__V1__CREATE_READER_GROUP_CMD__INIT;
	Strata__V1__UpdateReaderGroupRequest ur =
	        STRATA__V1__UPDATE_READER_GROUP_REQUEST__INIT;
	Strata__V1__UpdateReaderGroupCmd uc =
	        STRATA__V1__UPDATE_READER_GROUP_CMD__INIT;
	if (gen == UINT64_MAX) {
		cr.scope = "sc";
		cr.config = &cfg;
		cc.request = &cr;
		cc.now_ms = 77;
		cmd.command_case =
		        STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_READER_GROUP;
		cmd.create_reader_group = &cc;
	} else {
		cfg.generation = gen;
		ur.scope = "sc";
		ur.config = &cfg;
		uc.request = &ur;
		cmd.command_case =
		        STRATA__V1__CONTROLLER_COMMAND__COMMAND_UPDATE_READER_GROUP;
		cmd.update_reader_group = &uc;
	}
	return h_apply(f, &cmd);
}

static int rg_del(struct cfsm *f, const char *name)
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

/* Create a group and finish its state stream's create workflow. */
static void rg_ready(struct cfsm *f, const char *name, const char **streams,
                     size_t n)
{
	assert_int_equal(rg(f, name, streams, n, UINT64_MAX), 0);
	assert_true(h_res.workflow_id > 0);
	assert_int_equal(h_finish(f, h_res.workflow_id), 0);
}

/* Delete a group and finish the removal of its state stream. */
static void rg_gone(struct cfsm *f, const char *name)
{
	assert_int_equal(rg_del(f, name), 0);
	assert_true(h_res.workflow_id > 0);
	assert_int_equal(h_finish(f, h_res.workflow_id), 0);
}

/* The pending actions of workflow id: count, and the kind of each. */
static size_t actions_of(struct cfsm *f, uint64_t id,
                         enum cfsm_action_kind *kinds, uint64_t *segs,
                         const char **streams)
{
	struct cfsm_action *acts;
	size_t n, k = 0;
	assert_int_equal(cfsm_pending_actions(f, &acts, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (acts[i].workflow_id != id) {
			continue;
		}
		assert_true(k < 4);
		assert_string_equal(acts[i].scope, "sc");
		kinds[k] = acts[i].kind;
		segs[k] = acts[i].segment_id;
		streams[k] = acts[i].stream; /* valid until the next apply */
		k++;
	}
	strata_free(acts);
	return k;
}

/* Create fills defaults; get/list return copies; update bumps the
 * generation; delete removes it and frees the scope. */
static void test_readergroups_lifecycle(void **state)
{
	struct cfsm *f = *state;
	char err[STRATA_ERRMSG_SIZE];
	const char *both[] = {"s", "t"};
	rg_ready(f, "g2", both, 2);
	rg_ready(f, "g1", both, 1);
	Strata__V1__ReaderGroupConfig *c;
	assert_int_equal(cfsm_get_reader_group(f, "sc", "g2", &c, err), 0);
	assert_int_equal(c->n_streams, 2);
	assert_string_equal(c->streams[0]->scope, "sc");
	assert_int_equal(c->group_refresh_ms, 3000);
	assert_int_equal(c->max_outstanding_checkpoints, 3);
	assert_int_equal(c->generation, 0);
	cfsm_msg_free(c);
	Strata__V1__ListReaderGroupsReply *l;
	assert_int_equal(cfsm_list_reader_groups(f, "sc", &l, err), 0);
	assert_int_equal(l->n_groups, 2);
	assert_string_equal(l->groups[0]->name, "g1");
	cfsm_msg_free(l);
	assert_int_equal(rg(f, "g1", both, 2, 0), 0);
	assert_int_equal(cfsm_get_reader_group(f, "sc", "g1", &c, err), 0);
	assert_int_equal(c->generation, 1);
	assert_int_equal(c->n_streams, 2);
	cfsm_msg_free(c);
	rg_gone(f, "g1");
	rg_gone(f, "g2");
	assert_int_equal(cfsm_get_reader_group(f, "sc", "g1", &c, err),
	                 STRATA_ENOENT);
	assert_null(cfsm_find_stream(f, "sc", "_RGg1"));
	assert_null(cfsm_find_stream(f, "sc", "_RGg2"));
}

/* Creating a group creates its state stream _RG<name> (fixed, one
 * segment whose id is 0) in one workflow; deleting it seals and then
 * deletes that stream, after which the scope can go. */
static void test_readergroups_state_stream_created_and_removed(void **state)
{
	struct cfsm *f = *state;
	const char *one[] = {"s"};
	enum cfsm_action_kind k[4];
	uint64_t seg[4];
	const char *st[4];
	assert_int_equal(rg(f, "g", one, 1, UINT64_MAX), 0);
	uint64_t wf = h_res.workflow_id;
	assert_true(wf > 0);
	assert_int_equal(h_res.n_segment_ids, 1);
	assert_int_equal(h_res.segment_ids[0], 0);
	const Strata__V1__StreamRecord *s = cfsm_find_stream(f, "sc", "_RGg");
	assert_non_null(s);
	assert_int_equal(s->state, STATE(CREATING));
	assert_int_equal(s->workflow_id, wf);
	assert_int_equal(s->created_ms, 77);
	assert_int_equal(s->n_epochs, 1);
	assert_int_equal(s->epochs[0]->n_segments, 1);
	assert_int_equal(s->epochs[0]->segments[0]->id, 0);
	assert_int_equal(s->config->scaling->policy_case,
	                 STRATA__V1__SCALING_POLICY__POLICY_FIXED);
	assert_int_equal(s->config->scaling->fixed->min_segments, 1);
	assert_int_equal(actions_of(f, wf, k, seg, st), 1);
	assert_int_equal(k[0], CFSM_ACTION_CREATE_SEGMENT);
	assert_int_equal(seg[0], 0);
	assert_string_equal(st[0], "_RGg");
	assert_int_equal(h_finish(f, wf), 0);
	s = cfsm_find_stream(f, "sc", "_RGg");
	assert_int_equal(s->state, STATE(ACTIVE));

	assert_int_equal(rg_del(f, "g"), 0);
	wf = h_res.workflow_id;
	const Strata__V1__Workflow *w = cfsm_find_workflow(f, wf);
	assert_non_null(w);
	assert_int_equal(
	        w->kind,
	        STRATA__V1__WORKFLOW_KIND__WORKFLOW_KIND_REMOVE_STREAM);
	assert_int_equal(w->step, WS(SEAL_SEGMENTS));
	assert_int_equal(cfsm_find_stream(f, "sc", "_RGg")->state,
	                 STATE(SEALING));
	assert_int_equal(actions_of(f, wf, k, seg, st), 1);
	assert_int_equal(k[0], CFSM_ACTION_SEAL_SEGMENT);
	assert_int_equal(h_step(f, wf), 0);
	s = cfsm_find_stream(f, "sc", "_RGg");
	assert_int_equal(s->state, STATE(DELETING));
	assert_int_equal(s->n_sealed_sizes, 1);
	assert_int_equal(actions_of(f, wf, k, seg, st), 1);
	assert_int_equal(k[0], CFSM_ACTION_DELETE_SEGMENT);
	assert_int_equal(seg[0], 0);
	assert_int_equal(h_step(f, wf), 0);
	assert_null(cfsm_find_stream(f, "sc", "_RGg"));
	assert_null(cfsm_find_workflow(f, wf));

	/* The name is free again, and the scope empties. */
	rg_ready(f, "g", one, 1);
	rg_gone(f, "g");
	assert_int_equal(h_seal(f, "sc", "s"), 0);
	assert_int_equal(h_delete(f, "sc", "s"), 0);
	assert_int_equal(h_seal(f, "sc", "t"), 0);
	assert_int_equal(h_delete(f, "sc", "t"), 0);
	assert_int_equal(h_delete_scope(f, "sc"), 0);
}

/* Step reports replayed after the steps passed, or after the workflows
 * finished, succeed and change nothing. */
static void test_readergroups_replayed_steps_change_nothing(void **state)
{
	struct cfsm *f = *state;
	const char *one[] = {"s"};
	size_t len;
	assert_int_equal(rg(f, "g", one, 1, UINT64_MAX), 0);
	uint64_t create = h_res.workflow_id;
	Strata__V1__WorkflowStepDone d = STRATA__V1__WORKFLOW_STEP_DONE__INIT;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_WORKFLOW_STEP_DONE;
	cmd.workflow_step_done = &d;
	d.workflow_id = create;
	d.step = WS(CREATE_SEGMENTS);
	assert_int_equal(h_apply(f, &cmd), 0);
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(h_apply(f, &cmd), 0); /* create replayed */
	assert_true(h_same(f, snap, len));
	strata_free(snap);

	assert_int_equal(rg_del(f, "g"), 0);
	uint64_t rm = h_res.workflow_id;
	assert_int_equal(h_step(f, rm), 0); /* sealed */
	snap = h_snap(f, &len);
	d.workflow_id = rm;
	d.step = WS(SEAL_SEGMENTS);
	assert_int_equal(h_apply(f, &cmd), 0); /* seal replayed */
	d.workflow_id = create;
	d.step = WS(CREATE_SEGMENTS);
	assert_int_equal(h_apply(f, &cmd), 0);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	d.workflow_id = rm;
	d.step = WS(DELETE_SEGMENTS);
	assert_int_equal(h_apply(f, &cmd), 0);
	assert_null(cfsm_find_stream(f, "sc", "_RGg"));
	snap = h_snap(f, &len);
	assert_int_equal(h_apply(f, &cmd), 0); /* delete replayed */
	d.step = WS(SEAL_SEGMENTS);
	assert_int_equal(h_apply(f, &cmd), 0);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
}

/* A delete while the state stream is still being created, a create while
 * an earlier group's state stream is being removed, a name too long for
 * its state stream and a wrong step are refused and change nothing. */
static void test_readergroups_state_stream_rejections(void **state)
{
	struct cfsm *f = *state;
	const char *one[] = {"s"};
	char longname[254];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(rg(f, "g", one, 1, UINT64_MAX), 0);
	uint64_t create = h_res.workflow_id;
	rg_ready(f, "h", one, 1);
	assert_int_equal(rg_del(f, "h"), 0);
	uint64_t rm = h_res.workflow_id;
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(rg_del(f, "g"), STRATA_EBUSY);
	assert_non_null(strstr(h_res.message, "reader group sc/g"));
	assert_non_null(strstr(h_res.message, "retry"));
	assert_int_equal(rg(f, "h", one, 1, UINT64_MAX), STRATA_EBUSY);
	assert_non_null(strstr(h_res.message, "_RGh"));
	assert_int_equal(rg(f, longname, one, 1, UINT64_MAX), STRATA_EBADNAME);
	assert_non_null(strstr(h_res.message, "at most 252"));
	Strata__V1__WorkflowStepDone d = STRATA__V1__WORKFLOW_STEP_DONE__INIT;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_WORKFLOW_STEP_DONE;
	cmd.workflow_step_done = &d;
	d.workflow_id = rm;
	d.step = WS(DELETE_SEGMENTS); /* ahead of SEAL_SEGMENTS */
	assert_int_equal(h_apply(f, &cmd), STRATA_EINVAL);
	d.step = WS(SEAL_SEGMENTS); /* without the sealed size */
	assert_int_equal(h_apply(f, &cmd), STRATA_EINVAL);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	/* Once both finish, both work. */
	assert_int_equal(h_finish(f, create), 0);
	assert_int_equal(h_finish(f, rm), 0);
	rg_gone(f, "g");
	rg_ready(f, "h", one, 1);
	longname[252] = '\0';
	rg_ready(f, longname, one, 1);
}

/* A state stream that exists already is adopted (waiting for its running
 * create), and a sealed one is deleted without sealing again. */
static void test_readergroups_existing_state_stream(void **state)
{
	struct cfsm *f = *state;
	const char *one[] = {"s"};
	enum cfsm_action_kind k[4];
	uint64_t seg[4];
	const char *st[4];
	Strata__V1__FixedScaling fx = STRATA__V1__FIXED_SCALING__INIT;
	Strata__V1__ScalingPolicy p = STRATA__V1__SCALING_POLICY__INIT;
	Strata__V1__StreamConfig c = STRATA__V1__STREAM_CONFIG__INIT;
	Strata__V1__CreateStreamRequest r =
	        STRATA__V1__CREATE_STREAM_REQUEST__INIT;
	Strata__V1__CreateStreamCmd cc = STRATA__V1__CREATE_STREAM_CMD__INIT;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	fx.min_segments = 1;
	p.policy_case = STRATA__V1__SCALING_POLICY__POLICY_FIXED;
	p.fixed = &fx;
	c.scaling = &p;
	r.scope = "sc";
	r.stream = "_RGg";
	r.config = &c;
	cc.request = &r;
	cc.internal = true;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_STREAM;
	cmd.create_stream = &cc;
	assert_int_equal(h_apply(f, &cmd), 0);
	uint64_t wf = h_res.workflow_id;
	assert_int_equal(rg(f, "g", one, 1, UINT64_MAX), 0);
	assert_int_equal(h_res.workflow_id, wf);
	assert_int_equal(h_finish(f, wf), 0);
	assert_int_equal(h_seal(f, "sc", "_RGg"), 0);
	assert_int_equal(rg_del(f, "g"), 0);
	wf = h_res.workflow_id;
	assert_int_equal(cfsm_find_workflow(f, wf)->step, WS(DELETE_SEGMENTS));
	assert_int_equal(actions_of(f, wf, k, seg, st), 1);
	assert_int_equal(k[0], CFSM_ACTION_DELETE_SEGMENT);
	assert_int_equal(h_finish(f, wf), 0);
	assert_null(cfsm_find_stream(f, "sc", "_RGg"));
}

/* Out of memory at any allocation of a reader-group create or delete
 * leaves the state as it was; the same command then succeeds. */
static void test_readergroups_oom_changes_nothing(void **state)
{
	struct cfsm *f = *state;
	const char *one[] = {"s"};
	for (int which = 0; which < 2; which++) {
		for (long n = 1;; n++) {
			size_t len;
			uint8_t *snap = h_snap(f, &len);
			oom_install(n);
			int rc = which == 0 ? rg(f, "g", one, 1, UINT64_MAX)
			                    : rg_del(f, "g");
			oom_uninstall();
			if (rc == 0) {
				strata_free(snap);
				break;
			}
			assert_int_equal(rc, STRATA_ENOMEM);
			assert_true(h_same(f, snap, len));
			strata_free(snap);
			assert_true(n < 1000);
		}
		assert_int_equal(h_finish(f, h_res.workflow_id), 0);
	}
	assert_null(cfsm_find_stream(f, "sc", "_RGg"));
}

/* Duplicates, unknown streams, stale generations and bad names are
 * refused and leave the state byte-identical. */
static void test_readergroups_rejections_change_nothing(void **state)
{
	struct cfsm *f = *state;
	const char *one[] = {"s"}, *dup[] = {"s", "s"}, *bad[] = {"nope"};
	rg_ready(f, "g", one, 1);
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(rg(f, "g", one, 1, UINT64_MAX), STRATA_EEXIST);
	assert_int_equal(rg(f, "h", bad, 1, UINT64_MAX), STRATA_ENOENT);
	assert_int_equal(rg(f, "h", dup, 2, UINT64_MAX), STRATA_EINVAL);
	assert_int_equal(rg(f, "h", one, 0, UINT64_MAX), STRATA_EINVAL);
	assert_int_equal(rg(f, "h h", one, 1, UINT64_MAX), STRATA_EBADNAME);
	assert_int_equal(rg(f, "g", one, 1, 5), STRATA_ECONFLICT);
	assert_int_equal(rg(f, "x", one, 1, 0), STRATA_ENOENT);
	assert_int_equal(rg_del(f, "x"), STRATA_ENOENT);
	assert_int_equal(h_delete_scope(f, "sc"), STRATA_ENOTEMPTY);
	/* What is left is named; the group's state stream is not counted. */
	assert_non_null(strstr(h_res.message, "2 streams (s, ...)"));
	assert_non_null(strstr(h_res.message, "1 reader group (g)"));
	assert_true(h_same(f, snap, len));
	strata_free(snap);
}

/* A cut of stream sc/s at ids[i] = offs[i]. */
struct cut_buf {
	Strata__V1__SegmentOffset p[4], *pp[4];
	Strata__V1__StreamCut cut;
};

static Strata__V1__StreamCut *cut_of(struct cut_buf *b, const uint64_t *ids,
                                     const int64_t *offs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		strata__v1__segment_offset__init(&b->p[i]);
		b->p[i].segment_id = ids[i];
		b->p[i].offset = offs[i];
		b->pp[i] = &b->p[i];
	}
	strata__v1__stream_cut__init(&b->cut);
	b->cut.positions = b->pp;
	b->cut.n_positions = n;
	return &b->cut;
}

/* An end cut before the start across epochs (the end in a predecessor
 * of a start segment) is refused, as it is within one segment. */
static void test_readergroups_end_before_start(void **state)
{
	struct cfsm *f = *state;
	uint64_t seal[] = {0}; /* 0.0 [0, 0.5) -> 2.1, 3.1 */
	double lo[] = {0, 0.25}, hi[] = {0.25, 0.5};
	assert_int_equal(h_scale(f, "sc", "s", seal, 1, lo, hi, 2), 0);
	const uint64_t e1 = 1ull << 32;
	uint64_t sid[] = {1, e1 | 2, e1 | 3}, eid[] = {0, 1};
	int64_t soff[] = {50, 5, 5}, eoff[] = {10, 90};
	struct cut_buf sb, eb;
	Strata__V1__ReaderGroupStream rs =
	        STRATA__V1__READER_GROUP_STREAM__INIT;
	Strata__V1__ReaderGroupStream *rsp[] = {&rs};
	rs.stream = "s";
	rs.start = cut_of(&sb, sid, soff, 3);
	rs.end = cut_of(&eb, eid, eoff, 2);
	Strata__V1__ReaderGroupConfig cfg =
	        STRATA__V1__READER_GROUP_CONFIG__INIT;
	cfg.name = "g";
	cfg.streams = rsp;
	cfg.n_streams = 1;
	Strata__V1__CreateReaderGroupRequest cr =
	        STRATA__V1__CREATE_READER_GROUP_REQUEST__INIT;
	Strata__V1__CreateReaderGroupCmd cc =
	        STRATA__V1__CREATE_READER_GROUP_CMD__INIT;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cr.scope = "sc";
	cr.config = &cfg;
	cc.request = &cr;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_READER_GROUP;
	cmd.create_reader_group = &cc;
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(h_apply(f, &cmd), STRATA_EINVAL);
	assert_non_null(strstr(h_res.message, "the end cut of sc/s is "
	                                      "before its start (at segment "
	                                      "0.0)"));
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	/* An end after the start in the successors is fine. */
	uint64_t eid2[] = {1, e1 | 2, e1 | 3};
	int64_t eoff2[] = {90, 7, 6};
	rs.end = cut_of(&eb, eid2, eoff2, 3);
	assert_int_equal(h_apply(f, &cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_readergroups_lifecycle,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_readergroups_rejections_change_nothing, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_readergroups_end_before_start, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_readergroups_state_stream_created_and_removed,
	                setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_readergroups_replayed_steps_change_nothing, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_readergroups_state_stream_rejections, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_readergroups_existing_state_stream, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_readergroups_oom_changes_nothing, setup, teardown),
	};
	return cmocka_run_group_tests_name("controller_readergroups", tests,
	                                   NULL, NULL);
}
