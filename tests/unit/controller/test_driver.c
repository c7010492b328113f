/* Unit tests for controller/driver.c: workflows and transaction steps
 * carried out on fake in-process segment stores (inproc:// RPC servers),
 * with failures, retries and WRONGHOST redirects. */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/rpc.h"
#include "controller/driver.h"
#include "strata/v1/cluster.pb-c.h"
#include "strata/v1/segmentstore.pb-c.h"
#include "tests/unit/controller/fake_store.h"
#include "tests/unit/controller/svc_fixture.h"

struct state_arg {
	struct ctl_service *svc;
	const char *scope;
	const char *stream;
	int state;
	uint32_t epochs;
};

static bool stream_in(void *arg)
{
	struct state_arg *a = arg;
	const struct cfsm *f = ctl_service_lock(a->svc);
	const Strata__V1__StreamRecord *s =
	        cfsm_find_stream(f, a->scope, a->stream);
	bool ok = s != NULL && (int)s->state == a->state &&
	          s->n_epochs == a->epochs && s->workflow_id == 0;
	ctl_service_unlock(a->svc);
	return ok;
}

static bool stream_gone(void *arg)
{
	struct state_arg *a = arg;
	const struct cfsm *f = ctl_service_lock(a->svc);
	bool gone = cfsm_find_stream(f, a->scope, a->stream) == NULL;
	ctl_service_unlock(a->svc);
	return gone;
}

static struct fx_reply call(struct ctl_api *api, uint32_t method,
                            const ProtobufCMessage *req)
{
	struct fx_reply r;
	fx_call(api, method, req, &r);
	return r;
}

#define M(x) STRATA__V1__CONTROLLER_METHOD__CTL_##x

/* Create, scale (sizes reported), truncate, seal and delete run to the
 * end on the store. */
static void test_driver_stream_workflows(void **state)
{
	(void)state;
	struct env e;
	env_start(&e, 1);
	struct ctl_api *api = e.f.api[0];
	struct state_arg sa = {e.f.svc[0], "sc", "st",
	                       STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE,
	                       1};
	assert_int_equal(fx_create_scope(api, "sc"), 0);
	assert_int_equal(fx_create_stream(api, "sc", "st", 2), 0);
	assert_true(fx_eventually(stream_in, &sa, 5000));
	assert_true(fake_has(&e.s[0], "sc/st/0.#epoch.0"));
	assert_true(fake_has(&e.s[0], "sc/st/1.#epoch.0"));

	/* Scale segment 0 into two. */
	Strata__V1__ScaleStreamRequest q =
	        STRATA__V1__SCALE_STREAM_REQUEST__INIT;
	Strata__V1__KeyRange r0 = STRATA__V1__KEY_RANGE__INIT;
	Strata__V1__KeyRange r1 = STRATA__V1__KEY_RANGE__INIT;
	Strata__V1__KeyRange *rs[] = {&r0, &r1};
	uint64_t seal[] = {0};
	r0.high = 0.25;
	r1.low = 0.25;
	r1.high = 0.5;
	q.scope = "sc";
	q.stream = "st";
	q.seal_segments = seal;
	q.n_seal_segments = 1;
	q.new_ranges = rs;
	q.n_new_ranges = 2;
	struct fx_reply r = call(api, M(SCALE_STREAM), &q.base);
	assert_int_equal(r.code, 0);
	Strata__V1__ControllerReply *cr =
	        fx_unpack(&r, &strata__v1__controller_reply__descriptor);
	assert_true(cr->done); /* the reply waited for the workflow */
	rpc_pb_free(&cr->base);
	fx_reply_free(&r);
	sa.epochs = 2;
	assert_true(fx_eventually(stream_in, &sa, 5000));
	assert_true(fake_has(&e.s[0], "sc/st/2.#epoch.1"));
	const struct cfsm *fsm = ctl_service_lock(e.f.svc[0]);
	const Strata__V1__StreamRecord *s = cfsm_find_stream(fsm, "sc", "st");
	assert_int_equal(s->n_sealed_sizes, 1);
	assert_int_equal(s->sealed_sizes[0]->segment_id, 0);
	assert_int_equal(s->sealed_sizes[0]->size,
	                 100 + strlen("sc/st/0.#epoch.0"));
	ctl_service_unlock(e.f.svc[0]);

	/* Truncate at {2:5, 3:0, 1:7}: segment 0 is wholly before. */
	Strata__V1__TruncateStreamRequest tq =
	        STRATA__V1__TRUNCATE_STREAM_REQUEST__INIT;
	Strata__V1__StreamCut cut = STRATA__V1__STREAM_CUT__INIT;
	Strata__V1__SegmentOffset o[3];
	Strata__V1__SegmentOffset *op[3];
	uint64_t ids[3] = {(1ull << 32) | 2, (1ull << 32) | 3, 1};
	int64_t offs[3] = {5, 0, 7};
	for (int i = 0; i < 3; i++) {
		Strata__V1__SegmentOffset init =
		        STRATA__V1__SEGMENT_OFFSET__INIT;
		o[i] = init;
		o[i].segment_id = ids[i];
		o[i].offset = offs[i];
		op[i] = &o[i];
	}
	cut.positions = op;
	cut.n_positions = 3;
	tq.scope = "sc";
	tq.stream = "st";
	tq.cut = &cut;
	r = call(api, M(TRUNCATE_STREAM), &tq.base);
	assert_int_equal(r.code, 0);
	fx_reply_free(&r);
	assert_true(fx_eventually(stream_in, &sa, 5000));
	assert_false(fake_has(&e.s[0], "sc/st/0.#epoch.0"));
	assert_true(e.s[0].truncates >= 2);

	/* Seal, then delete. */
	Strata__V1__SealStreamRequest sq =
	        STRATA__V1__SEAL_STREAM_REQUEST__INIT;
	sq.scope = "sc";
	sq.stream = "st";
	r = call(api, M(SEAL_STREAM), &sq.base);
	assert_int_equal(r.code, 0);
	fx_reply_free(&r);
	sa.state = STRATA__V1__STREAM_STATE__STREAM_STATE_SEALED;
	assert_true(fx_eventually(stream_in, &sa, 5000));
	Strata__V1__DeleteStreamRequest dq =
	        STRATA__V1__DELETE_STREAM_REQUEST__INIT;
	dq.scope = "sc";
	dq.stream = "st";
	r = call(api, M(DELETE_STREAM), &dq.base);
	assert_int_equal(r.code, 0);
	fx_reply_free(&r);
	assert_true(fx_eventually(stream_gone, &sa, 5000));
	pthread_mutex_lock(&e.s[0].lock);
	assert_int_equal(e.s[0].n, 0);
	pthread_mutex_unlock(&e.s[0].lock);
	env_stop(&e, 1);
}

/* Send a reader-group write and return its reply's done flag. */
static bool rg_call(struct ctl_api *api, uint32_t method,
                    const ProtobufCMessage *req)
{
	struct fx_reply r = call(api, method, req);
	assert_int_equal(r.code, 0);
	Strata__V1__ControllerReply *cr =
	        fx_unpack(&r, &strata__v1__controller_reply__descriptor);
	bool done = cr->done;
	assert_true(cr->workflow_id > 0);
	rpc_pb_free(&cr->base);
	fx_reply_free(&r);
	return done;
}

/* Creating a reader group creates its state segment _RG<name>/0 on the
 * store before the reply; deleting it seals and deletes that segment and
 * stream before the reply. */
static void test_driver_reader_group_state_stream(void **state)
{
	(void)state;
	struct env e;
	env_start(&e, 1);
	struct ctl_api *api = e.f.api[0];
	struct state_arg sa = {e.f.svc[0], "sc", "_RGg",
	                       STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE,
	                       1};
	assert_int_equal(fx_create_scope(api, "sc"), 0);
	assert_int_equal(fx_create_stream(api, "sc", "st", 1), 0);
	Strata__V1__ReaderGroupStream rs =
	        STRATA__V1__READER_GROUP_STREAM__INIT;
	Strata__V1__ReaderGroupStream *rsp[] = {&rs};
	Strata__V1__ReaderGroupConfig cfg =
	        STRATA__V1__READER_GROUP_CONFIG__INIT;
	Strata__V1__CreateReaderGroupRequest cq =
	        STRATA__V1__CREATE_READER_GROUP_REQUEST__INIT;
	rs.stream = "st";
	cfg.name = "g";
	cfg.streams = rsp;
	cfg.n_streams = 1;
	cq.scope = "sc";
	cq.config = &cfg;
	assert_true(rg_call(api, M(CREATE_READER_GROUP), &cq.base));
	assert_true(stream_in(&sa));
	assert_true(fake_has(&e.s[0], "sc/_RGg/0.#epoch.0"));

	Strata__V1__DeleteReaderGroupRequest dq =
	        STRATA__V1__DELETE_READER_GROUP_REQUEST__INIT;
	dq.scope = "sc";
	dq.name = "g";
	assert_true(rg_call(api, M(DELETE_READER_GROUP), &dq.base));
	assert_true(stream_gone(&sa));
	assert_false(fake_has(&e.s[0], "sc/_RGg/0.#epoch.0"));
	assert_true(e.s[0].deletes >= 1);
	env_stop(&e, 1);
}

static uint64_t create_txn(struct ctl_api *api, bool *done)
{
	Strata__V1__CreateTxnRequest q = STRATA__V1__CREATE_TXN_REQUEST__INIT;
	q.scope = "sc";
	q.stream = "st";
	q.lease_ms = 60000;
	struct fx_reply r = call(api, M(CREATE_TXN), &q.base);
	assert_int_equal(r.code, 0);
	Strata__V1__ControllerReply *cr =
	        fx_unpack(&r, &strata__v1__controller_reply__descriptor);
	uint64_t id = cr->txn_id;
	*done = cr->done;
	rpc_pb_free(&cr->base);
	fx_reply_free(&r);
	return id;
}

/* A transaction's shadow segment is created before the reply, merged on
 * commit and deleted on abort. */
static void test_driver_transactions(void **state)
{
	(void)state;
	struct env e;
	env_start(&e, 1);
	struct ctl_api *api = e.f.api[0];
	struct state_arg sa = {e.f.svc[0], "sc", "st",
	                       STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE,
	                       1};
	assert_int_equal(fx_create_scope(api, "sc"), 0);
	assert_int_equal(fx_create_stream(api, "sc", "st", 1), 0);
	assert_true(fx_eventually(stream_in, &sa, 5000));

	bool done = false;
	uint64_t t1 = create_txn(api, &done);
	assert_true(t1 > 0);
	assert_true(done);
	char shadow[128];
	snprintf(shadow, sizeof(shadow), "sc/st/0.#epoch.0#transaction.%llu",
	         (unsigned long long)t1);
	assert_true(fake_has(&e.s[0], shadow));

	Strata__V1__EndTxnRequest q = STRATA__V1__END_TXN_REQUEST__INIT;
	q.scope = "sc";
	q.stream = "st";
	q.txn_id = t1;
	struct fx_reply r = call(api, M(COMMIT_TXN), &q.base);
	assert_int_equal(r.code, 0);
	Strata__V1__ControllerReply *cr =
	        fx_unpack(&r, &strata__v1__controller_reply__descriptor);
	assert_true(cr->done);
	rpc_pb_free(&cr->base);
	fx_reply_free(&r);
	assert_false(fake_has(&e.s[0], shadow));
	assert_int_equal(e.s[0].merges, 1);
	Strata__V1__GetTxnRequest gq = STRATA__V1__GET_TXN_REQUEST__INIT;
	gq.scope = "sc";
	gq.stream = "st";
	gq.txn_id = t1;
	r = call(api, M(GET_TXN), &gq.base);
	assert_int_equal(r.code, 0);
	Strata__V1__Txn *t = fx_unpack(&r, &strata__v1__txn__descriptor);
	assert_int_equal(t->state, STRATA__V1__TXN_STATE__TXN_STATE_COMMITTED);
	rpc_pb_free(&t->base);
	fx_reply_free(&r);

	uint64_t t2 = create_txn(api, &done);
	snprintf(shadow, sizeof(shadow), "sc/st/0.#epoch.0#transaction.%llu",
	         (unsigned long long)t2);
	assert_true(fake_has(&e.s[0], shadow));
	Strata__V1__PingTxnRequest pq = STRATA__V1__PING_TXN_REQUEST__INIT;
	pq.scope = "sc";
	pq.stream = "st";
	pq.txn_id = t2;
	pq.lease_ms = 60000;
	r = call(api, M(PING_TXN), &pq.base);
	assert_int_equal(r.code, 0);
	fx_reply_free(&r);
	q.txn_id = t2;
	r = call(api, M(ABORT_TXN), &q.base);
	assert_int_equal(r.code, 0);
	fx_reply_free(&r);
	assert_false(fake_has(&e.s[0], shadow));
	assert_int_equal(e.s[0].merges, 1);
	/* Committing an aborted transaction is a conflict. */
	r = call(api, M(COMMIT_TXN), &q.base);
	assert_int_equal(r.code, STRATA_ECONFLICT);
	fx_reply_free(&r);
	env_stop(&e, 1);
}

/* Calls are redirected by a store that does not lead and retried after
 * failures until the workflow completes. */
static void test_driver_retries_and_redirects(void **state)
{
	(void)state;
	struct env e;
	fake_start(&e.s[1], 11);
	e.s[1].fail_next = 3;
	env_start(&e, 0);
	fake_start(&e.s[0], 10);
	e.s[0].redirect = e.s[1].url;
	/* Store 1 (the first replica, which the driver calls) redirects to
	 * store 2, which fails three times before succeeding. */
	register_store(e.f.api[0], 1, e.s[0].url);
	register_store(e.f.api[0], 2, e.s[1].url);
	struct ctl_api *api = e.f.api[0];
	struct state_arg sa = {e.f.svc[0], "sc", "st",
	                       STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE,
	                       1};
	assert_int_equal(fx_create_scope(api, "sc"), 0);
	assert_int_equal(fx_create_stream(api, "sc", "st", 3), 0);
	assert_true(fx_eventually(stream_in, &sa, 10000));
	for (int i = 0; i < 3; i++) {
		char name[64];
		snprintf(name, sizeof(name), "sc/st/%d.#epoch.0", i);
		assert_true(fake_has(&e.s[1], name));
	}
	assert_int_equal(e.s[0].n, 0);
	assert_true(e.s[0].redirects >= 1); /* the client then sticks to B */
	assert_int_equal(e.s[1].failures, 3);
	env_stop(&e, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_driver_stream_workflows),
	        cmocka_unit_test(test_driver_transactions),
	        cmocka_unit_test(test_driver_reader_group_state_stream),
	        cmocka_unit_test(test_driver_retries_and_redirects),
	};
	return cmocka_run_group_tests_name("controller_driver", tests, NULL,
	                                   NULL);
}
