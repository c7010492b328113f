/* Unit tests for controller/txns.c: transaction states, leases, actions. */
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

static int setup(void **state)
{
	static struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 16, err), 0);
	assert_int_equal(h_create_scope(&f, "sc"), 0);
	assert_int_equal(h_create_stream(&f, "sc", "s", 2), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	cfsm_close(*state);
	return 0;
}

static int create(struct cfsm *f, uint64_t now, uint64_t lease)
{
	Strata__V1__CreateTxnRequest r = STRATA__V1__CREATE_TXN_REQUEST__INIT;
	Strata__V1__CreateTxnCmd c = STRATA__V1__CREATE_TXN_CMD__INIT;
	r.scope = "sc";
	r.stream = "s";
	r.lease_ms = lease;
	c.request = &r;
	c.now_ms = now;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case = STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_TXN;
	cmd.create_txn = &c;
	return h_apply(f, &cmd);
}

static int ping(struct cfsm *f, uint64_t id, uint64_t now, uint64_t lease)
{
	Strata__V1__PingTxnRequest r = STRATA__V1__PING_TXN_REQUEST__INIT;
	Strata__V1__PingTxnCmd c = STRATA__V1__PING_TXN_CMD__INIT;
	r.scope = "sc";
	r.stream = "s";
	r.txn_id = id;
	r.lease_ms = lease;
	c.request = &r;
	c.now_ms = now;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case = STRATA__V1__CONTROLLER_COMMAND__COMMAND_PING_TXN;
	cmd.ping_txn = &c;
	return h_apply(f, &cmd);
}

static int end(struct cfsm *f, uint64_t id, bool commit)
{
	Strata__V1__EndTxnRequest r = STRATA__V1__END_TXN_REQUEST__INIT;
	Strata__V1__EndTxnCmd c = STRATA__V1__END_TXN_CMD__INIT;
	r.scope = "sc";
	r.stream = "s";
	r.txn_id = id;
	r.commit = commit;
	c.request = &r;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case = STRATA__V1__CONTROLLER_COMMAND__COMMAND_END_TXN;
	cmd.end_txn = &c;
	return h_apply(f, &cmd);
}

static int step(struct cfsm *f, uint64_t id, int s, uint64_t now)
{
	Strata__V1__TxnStepDone d = STRATA__V1__TXN_STEP_DONE__INIT;
	d.scope = "sc";
	d.stream = "s";
	d.txn_id = id;
	d.step = s;
	d.now_ms = now;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_TXN_STEP_DONE;
	cmd.txn_step_done = &d;
	return h_apply(f, &cmd);
}

static size_t actions_of(struct cfsm *f, uint64_t txn, int kind)
{
	struct cfsm_action *a;
	size_t n, k = 0;
	assert_int_equal(cfsm_pending_actions(f, &a, &n), 0);
	for (size_t i = 0; i < n; i++) {
		k += a[i].txn_id == txn && (int)a[i].kind == kind;
	}
	strata_free(a);
	return k;
}

#define T_CREATED STRATA__V1__TXN_STEP__TXN_STEP_SEGMENTS_CREATED
#define T_COMMITTED STRATA__V1__TXN_STEP__TXN_STEP_COMMITTED
#define T_ABORTED STRATA__V1__TXN_STEP__TXN_STEP_ABORTED

/* OPEN -> shadows created -> COMMITTING -> COMMITTED; replays no-op. */
static void test_txns_commit_path(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(create(f, 100, 5000), 0);
	uint64_t id = h_res.txn_id;
	assert_int_equal(actions_of(f, id, CFSM_ACTION_CREATE_TXN_SEGMENT), 2);
	assert_int_equal(end(f, id, true), STRATA_EBUSY); /* not ready */
	assert_int_equal(step(f, id, T_CREATED, 110), 0);
	assert_int_equal(actions_of(f, id, CFSM_ACTION_CREATE_TXN_SEGMENT), 0);
	assert_int_equal(ping(f, id, 200, 5000), 0);
	assert_true(cfsm_find_txn(f, "sc", "s", id)->lease_expiry_ms == 5200);
	assert_int_equal(end(f, id, true), 0);
	assert_int_equal(end(f, id, true), 0); /* retry */
	assert_int_equal(end(f, id, false), STRATA_ECONFLICT);
	assert_int_equal(ping(f, id, 300, 5000), STRATA_ECONFLICT);
	assert_int_equal(actions_of(f, id, CFSM_ACTION_COMMIT_TXN_SEGMENT), 2);
	assert_int_equal(step(f, id, T_COMMITTED, 400), 0);
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(step(f, id, T_COMMITTED, 401), 0);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	assert_int_equal(cfsm_find_txn(f, "sc", "s", id)->state,
	                 STRATA__V1__TXN_STATE__TXN_STATE_COMMITTED);
	/* Forgotten an hour after completion; replays still succeed. */
	assert_int_equal(h_tick(f, 400 + CFSM_TXN_KEEP_MS), 0);
	assert_null(cfsm_find_txn(f, "sc", "s", id));
	assert_int_equal(step(f, id, T_COMMITTED, 402), 0);
	assert_int_equal(step(f, id + 10, T_COMMITTED, 402), STRATA_ENOENT);
}

/* A lease that runs out aborts the txn; bad leases are refused. */
static void test_txns_lease_expiry_and_rejections(void **state)
{
	struct cfsm *f = *state;
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(create(f, 0, 0), STRATA_EINVAL);
	assert_int_equal(create(f, 0, 600001), STRATA_EINVAL);
	assert_int_equal(ping(f, 99, 0, 1000), STRATA_ENOENT);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	assert_int_equal(create(f, 1000, 1000), 0);
	uint64_t id = h_res.txn_id;
	assert_int_equal(h_tick(f, 1999), 0);
	assert_int_equal(cfsm_find_txn(f, "sc", "s", id)->state,
	                 STRATA__V1__TXN_STATE__TXN_STATE_OPEN);
	assert_int_equal(h_tick(f, 2000), 0);
	assert_int_equal(cfsm_find_txn(f, "sc", "s", id)->state,
	                 STRATA__V1__TXN_STATE__TXN_STATE_ABORTING);
	assert_int_equal(end(f, id, true), STRATA_ECONFLICT);
	assert_int_equal(actions_of(f, id, CFSM_ACTION_ABORT_TXN_SEGMENT), 2);
	assert_int_equal(step(f, id, T_COMMITTED, 2100), STRATA_EINVAL);
	assert_int_equal(step(f, id, T_ABORTED, 2100), 0);
	assert_int_equal(cfsm_find_txn(f, "sc", "s", id)->state,
	                 STRATA__V1__TXN_STATE__TXN_STATE_ABORTED);
}

/* A stream holds at most 10000 transactions: at the limit a new one
 * makes the one completed longest ago forgotten early (QA: finished ones
 * counted for their hour, so a stream beginning 3 a second was refused
 * transactions though none was open); only 10000 unfinished ones refuse
 * it, with STRATA_EBUSY as txn.h documents (not the retried EAGAIN). */
static void test_txns_limit_forgets_the_oldest_completed(void **state)
{
	struct cfsm *f = *state;
	uint64_t first = 0;
	for (int i = 0; i < 10000; i++) {
		assert_int_equal(create(f, 0, 600000), 0);
		first = first != 0 ? first : h_res.txn_id;
	}
	assert_int_equal(create(f, 0, 600000), STRATA_EBUSY);
	assert_non_null(strstr(h_res.message, "10000 unfinished transactions"));
	uint64_t a = first + 4, b = first + 2;
	assert_int_equal(end(f, a, false), 0);
	assert_int_equal(step(f, a, T_ABORTED, 500), 0);
	assert_int_equal(end(f, b, false), 0);
	assert_int_equal(step(f, b, T_ABORTED, 600), 0);
	assert_int_equal(create(f, 700, 600000), 0);
	assert_null(cfsm_find_txn(f, "sc", "s", a));
	assert_non_null(cfsm_find_txn(f, "sc", "s", b));
	assert_int_equal(create(f, 700, 600000), 0);
	assert_null(cfsm_find_txn(f, "sc", "s", b));
	assert_int_equal(create(f, 700, 600000), STRATA_EBUSY);
	assert_non_null(cfsm_find_txn(f, "sc", "s", first));
}

/* Seal aborts open txns; a sealed stream takes no new txns. */
static void test_txns_seal_and_scale_interplay(void **state)
{
	struct cfsm *f = *state;
	uint64_t seal[] = {E(0, 0)};
	double lo[] = {0, 0.25}, hi[] = {0.25, 0.5};
	assert_int_equal(h_scale(f, "sc", "s", seal, 1, lo, hi, 2), 0);
	assert_int_equal(create(f, 0, 10000), 0);
	uint64_t fresh = h_res.txn_id;
	assert_int_equal(actions_of(f, fresh, CFSM_ACTION_CREATE_TXN_SEGMENT),
	                 3);
	assert_int_equal(h_seal_only(f, "sc", "s"), 0);
	assert_int_equal(cfsm_find_txn(f, "sc", "s", fresh)->state,
	                 STRATA__V1__TXN_STATE__TXN_STATE_ABORTING);
	assert_int_equal(create(f, 0, 10000), STRATA_ESEALED);
}

/* The pending actions of workflow wf of one kind, copied into out. */
static size_t wf_actions(struct cfsm *f, uint64_t wf, int kind,
                         struct cfsm_action *out, size_t max)
{
	struct cfsm_action *a;
	size_t n, k = 0;
	assert_int_equal(cfsm_pending_actions(f, &a, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (a[i].workflow_id == wf && (int)a[i].kind == kind &&
		    k < max) {
			out[k++] = a[i];
		}
	}
	strata_free(a);
	return k;
}

static uint32_t container_of(struct cfsm *f, uint64_t id)
{
	return cfsm_segment_container(f, "sc", "s", id);
}

/* A commit after a scale rolls the transaction: copies of its epoch's
 * segments in the same containers take the shadows and are sealed (epoch
 * 2), copies of the current epoch follow (epoch 3), the old current
 * segments are sealed, and the txn is COMMITTED. Snapshots taken half-way
 * restore; replays are no-ops. */
static void test_txns_rolling_commit(void **state)
{
	struct cfsm *f = *state;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(create(f, 0, 10000), 0);
	uint64_t old = h_res.txn_id;
	assert_int_equal(step(f, old, T_CREATED, 1), 0);
	uint64_t seal[] = {E(0, 0)};
	double lo[] = {0, 0.25}, hi[] = {0.25, 0.5};
	assert_int_equal(h_scale(f, "sc", "s", seal, 1, lo, hi, 2), 0);

	/* A txn of the current epoch committing holds the roll off. */
	assert_int_equal(create(f, 0, 10000), 0);
	uint64_t cur = h_res.txn_id;
	assert_int_equal(step(f, cur, T_CREATED, 1), 0);
	assert_int_equal(end(f, cur, true), 0);
	assert_int_equal(end(f, old, true), STRATA_EBUSY);
	assert_int_equal(cfsm_find_txn(f, "sc", "s", old)->state,
	                 STRATA__V1__TXN_STATE__TXN_STATE_OPEN);
	assert_int_equal(step(f, cur, T_COMMITTED, 2), 0);

	/* Epoch 1 = {0.#1 [0.5,1) from epoch 0, 2 [0,.25), 3 [.25,.5)}. */
	assert_int_equal(end(f, old, true), 0);
	uint64_t wf = h_res.workflow_id;
	assert_true(wf != 0);
	assert_int_equal(end(f, old, true), 0); /* retry */
	const Strata__V1__StreamRecord *s = cfsm_find_stream(f, "sc", "s");
	assert_int_equal(s->state,
	                 STRATA__V1__STREAM_STATE__STREAM_STATE_SCALING);
	assert_int_equal(cfsm_find_txn(f, "sc", "s", old)->state,
	                 STRATA__V1__TXN_STATE__TXN_STATE_COMMITTING);
	assert_int_equal(actions_of(f, old, CFSM_ACTION_COMMIT_TXN_SEGMENT), 0);
	assert_int_equal(create(f, 0, 10000), STRATA_EBUSY);

	struct cfsm_action a[8];
	assert_int_equal(wf_actions(f, wf, CFSM_ACTION_CREATE_SEGMENT, a, 8),
	                 5);
	const Strata__V1__Workflow *w = cfsm_find_workflow(f, wf);
	const Strata__V1__RollParams *p = w->roll;
	assert_int_equal(p->txn_id, old);
	assert_int_equal(p->n_txn_copies, 2);
	assert_int_equal(p->n_successors, 3);
	for (size_t i = 0; i < p->n_txn_copies; i++) {
		assert_int_equal(p->txn_copies[i]->id >> 32, 2);
		assert_int_equal(p->parents[i], E(0, i));
		assert_int_equal(container_of(f, p->txn_copies[i]->id),
		                 container_of(f, p->parents[i]));
		assert_true(p->txn_copies[i]->low == 0.5 * (double)i);
	}
	for (size_t i = 0; i < p->n_successors; i++) {
		assert_int_equal(p->successors[i]->id >> 32, 3);
	}
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	struct cfsm g;
	assert_int_equal(cfsm_init(&g, 16, err), 0);
	assert_int_equal(cfsm_restore(&g, snap, len, err), 0);
	assert_true(h_same(&g, snap, len));
	cfsm_close(&g);
	strata_free(snap);

	assert_int_equal(h_step(f, wf), 0); /* segments created */
	assert_int_equal(wf_actions(f, wf, CFSM_ACTION_ROLL_TXN_SEGMENT, a, 8),
	                 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(a[i].txn_id, old);
		assert_int_equal(a[i].source_id, E(0, i));
		assert_int_equal(a[i].container, container_of(f, E(0, i)));
	}
	/* Sizes must name exactly the copies. */
	Strata__V1__WorkflowStepDone d = STRATA__V1__WORKFLOW_STEP_DONE__INIT;
	d.workflow_id = wf;
	d.step = STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_MERGE_TXN;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_WORKFLOW_STEP_DONE;
	cmd.workflow_step_done = &d;
	snap = h_snap(f, &len);
	assert_int_equal(h_apply(f, &cmd), STRATA_EINVAL);
	assert_true(h_same(f, snap, len));
	strata_free(snap);

	assert_int_equal(h_step(f, wf), 0); /* merged: epochs 2 and 3 */
	s = cfsm_find_stream(f, "sc", "s");
	assert_int_equal(s->n_epochs, 4);
	assert_int_equal(s->epochs[3]->n_segments, 3);
	Strata__V1__SuccessorsReply *sr = NULL;
	assert_int_equal(cfsm_successors(f, "sc", "s", E(1, 2), &sr, err), 0);
	assert_int_equal(sr->n_successors, 1);
	assert_int_equal(sr->successors[0]->segment->id, p->txn_copies[0]->id);
	cfsm_msg_free(sr);
	assert_int_equal(
	        cfsm_successors(f, "sc", "s", p->txn_copies[1]->id, &sr, err),
	        0);
	assert_int_equal(sr->n_successors, 1);
	assert_true(sr->successors[0]->segment->low == 0.5);
	assert_int_equal(sr->successors[0]->segment->id >> 32, 3);
	cfsm_msg_free(sr);
	assert_int_equal(wf_actions(f, wf, CFSM_ACTION_SEAL_SEGMENT, a, 8), 3);

	assert_int_equal(h_step(f, wf), 0); /* epoch 1 sealed */
	assert_null(cfsm_find_workflow(f, wf));
	s = cfsm_find_stream(f, "sc", "s");
	assert_int_equal(s->state,
	                 STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE);
	assert_int_equal(cfsm_find_txn(f, "sc", "s", old)->state,
	                 STRATA__V1__TXN_STATE__TXN_STATE_COMMITTED);
	assert_int_equal(end(f, old, true), 0); /* a retry */
	snap = h_snap(f, &len);
	d.step = STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_SEAL_SEGMENTS;
	assert_int_equal(h_apply(f, &cmd), 0); /* replay */
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	assert_int_equal(create(f, 0, 10000), 0); /* on epoch 3 */
	assert_int_equal(cfsm_find_txn(f, "sc", "s", h_res.txn_id)->epoch, 3);
}

/* Commits of transactions of the same epoch that arrive while a roll
 * creates its copies join it: one pair of epochs for all, each copy takes
 * every shadow and is sealed after the last; all end COMMITTED. A commit
 * of another epoch, or one after the copies exist, waits (EBUSY). */
static void test_txns_rolls_join(void **state)
{
	struct cfsm *f = *state;
	uint64_t id[3];
	for (int i = 0; i < 3; i++) {
		assert_int_equal(create(f, 0, 10000), 0);
		id[i] = h_res.txn_id;
		assert_int_equal(step(f, id[i], T_CREATED, 1), 0);
	}
	uint64_t seal[] = {E(0, 0)};
	double lo[] = {0, 0.25}, hi[] = {0.25, 0.5};
	assert_int_equal(h_scale(f, "sc", "s", seal, 1, lo, hi, 2), 0);
	assert_int_equal(create(f, 0, 10000), 0); /* on epoch 1 */
	uint64_t other = h_res.txn_id;
	assert_int_equal(step(f, other, T_CREATED, 1), 0);

	assert_int_equal(end(f, id[0], true), 0);
	uint64_t wf = h_res.workflow_id;
	assert_int_equal(end(f, id[1], true), 0);
	assert_int_equal(h_res.workflow_id, wf);
	assert_int_equal(end(f, other, true), STRATA_EBUSY); /* epoch 1 */
	assert_int_equal(h_step(f, wf), 0); /* copies created */
	assert_int_equal(end(f, id[2], true), STRATA_EBUSY); /* too late */

	struct cfsm_action a[8];
	assert_int_equal(wf_actions(f, wf, CFSM_ACTION_ROLL_TXN_SEGMENT, a, 8),
	                 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(a[i].txn_id, id[i % 2]);
		assert_int_equal(a[i].source_id, E(0, i / 2));
		assert_true(a[i].seal == (i % 2 == 1));
	}
	assert_int_equal(h_finish(f, wf), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(cfsm_find_txn(f, "sc", "s", id[i])->state,
		                 STRATA__V1__TXN_STATE__TXN_STATE_COMMITTED);
	}
	assert_int_equal(cfsm_find_stream(f, "sc", "s")->n_epochs, 4);
	/* The third rolls on its own now (epochs 4 and 5). */
	assert_int_equal(end(f, id[2], true), 0);
	assert_true(h_res.workflow_id > wf);
	assert_int_equal(h_finish(f, h_res.workflow_id), 0);
	assert_int_equal(cfsm_find_txn(f, "sc", "s", id[2])->state,
	                 STRATA__V1__TXN_STATE__TXN_STATE_COMMITTED);
	assert_int_equal(cfsm_find_stream(f, "sc", "s")->n_epochs, 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_txns_commit_path, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_txns_lease_expiry_and_rejections, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_txns_limit_forgets_the_oldest_completed, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_txns_seal_and_scale_interplay, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_txns_rolling_commit, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_txns_rolls_join, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests_name("controller_txns", tests, NULL,
	                                   NULL);
}
