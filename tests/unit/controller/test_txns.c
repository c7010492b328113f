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

/* Seal aborts open txns; commit after a scale is refused (rolling txns
 * are not supported) and a sealed stream takes no new txns. */
static void test_txns_seal_and_scale_interplay(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(create(f, 0, 10000), 0);
	uint64_t old = h_res.txn_id;
	assert_int_equal(step(f, old, T_CREATED, 1), 0);
	uint64_t seal[] = {E(0, 0)};
	double lo[] = {0, 0.25}, hi[] = {0.25, 0.5};
	assert_int_equal(h_scale(f, "sc", "s", seal, 1, lo, hi, 2), 0);
	assert_int_equal(end(f, old, true), STRATA_ENOTSUP);
	assert_non_null(strstr(h_res.message, "rolling"));
	assert_int_equal(create(f, 0, 10000), 0);
	uint64_t fresh = h_res.txn_id;
	assert_int_equal(actions_of(f, fresh, CFSM_ACTION_CREATE_TXN_SEGMENT),
	                 3);
	assert_int_equal(h_seal_only(f, "sc", "s"), 0);
	assert_int_equal(cfsm_find_txn(f, "sc", "s", fresh)->state,
	                 STRATA__V1__TXN_STATE__TXN_STATE_ABORTING);
	assert_int_equal(create(f, 0, 10000), STRATA_ESEALED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_txns_commit_path, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_txns_lease_expiry_and_rejections, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_txns_seal_and_scale_interplay, setup, teardown),
	};
	return cmocka_run_group_tests_name("controller_txns", tests, NULL,
	                                   NULL);
}
