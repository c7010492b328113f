/* Unit tests for controller/cutcheck.c: a truncation's offsets checked
 * against fake in-process segment stores before the controller proposes
 * it; through the API (refused whole, nothing changed) and directly
 * (stores that fail, segments they do not know, no store, stopping). */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/rpc.h"
#include "controller/cutcheck.h"
#include "strata/error.h"
#include "tests/unit/controller/fake_store.h"
#include "tests/unit/controller/svc_fixture.h"

#define SEG0 "sc/st/0.#epoch.0"
#define SEG0_LEN (100 + sizeof(SEG0) - 1) /* fake_store's length */

/* Truncate sc/st (one segment, id 0) at offset through the API. */
static void truncate_at(struct ctl_api *api, int64_t offset, struct fx_reply *r)
{
	Strata__V1__SegmentOffset p = STRATA__V1__SEGMENT_OFFSET__INIT;
	Strata__V1__SegmentOffset *pp = &p;
	Strata__V1__StreamCut cut = STRATA__V1__STREAM_CUT__INIT;
	Strata__V1__TruncateStreamRequest q =
	        STRATA__V1__TRUNCATE_STREAM_REQUEST__INIT;
	p.offset = offset;
	cut.positions = &pp;
	cut.n_positions = 1;
	q.scope = "sc";
	q.stream = "st";
	q.cut = &cut;
	fx_call(api, STRATA__V1__CONTROLLER_METHOD__CTL_TRUNCATE_STREAM,
	        &q.base, r);
}

static int stream_state(struct ctl_service *svc)
{
	const struct cfsm *f = ctl_service_lock(svc);
	const Strata__V1__StreamRecord *s = cfsm_find_stream(f, "sc", "st");
	int st = s != NULL ? (int)s->state : -1;
	ctl_service_unlock(svc);
	return st;
}

static void test_cutcheck_api(void **state)
{
	(void)state;
	struct env e;
	env_start(&e, 1);
	struct ctl_api *api = e.f.api[0];
	struct ctl_service *svc = e.f.svc[0];
	assert_int_equal(fx_create_scope(api, "sc"), 0);
	assert_int_equal(fx_create_stream(api, "sc", "st", 1), 0);
	assert_true(fake_has(&e.s[0], SEG0));
	struct fx_reply r;

	/* One byte past the open segment's end: refused whole. */
	truncate_at(api, (int64_t)SEG0_LEN + 1, &r);
	assert_int_equal(r.code, STRATA_EINVAL);
	char want[128];
	snprintf(want, sizeof(want),
	         "offset %zu of segment 0.0 is past its "
	         "end (%zu bytes)",
	         SEG0_LEN + 1, SEG0_LEN);
	assert_non_null(strstr(r.msg, want));
	fx_reply_free(&r);
	assert_int_equal(stream_state(svc),
	                 STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE);
	assert_int_equal(e.s[0].truncates, 0);

	/* The store does not answer: refused, nothing changed. */
	pthread_mutex_lock(&e.s[0].lock);
	e.s[0].fail_next = 1000;
	pthread_mutex_unlock(&e.s[0].lock);
	truncate_at(api, 10, &r);
	assert_int_equal(r.code, STRATA_EUNAVAIL);
	assert_non_null(strstr(r.msg, "cannot check offset 10 of segment 0.0"));
	fx_reply_free(&r);
	pthread_mutex_lock(&e.s[0].lock);
	e.s[0].fail_next = 0;
	pthread_mutex_unlock(&e.s[0].lock);
	assert_int_equal(e.s[0].truncates, 0);

	/* At the end exactly: the truncation runs to its end. */
	truncate_at(api, (int64_t)SEG0_LEN, &r);
	assert_int_equal(r.code, 0);
	Strata__V1__ControllerReply *rep =
	        fx_unpack(&r, &strata__v1__controller_reply__descriptor);
	assert_true(rep->done);
	rpc_pb_free(&rep->base);
	fx_reply_free(&r);
	assert_int_equal(e.s[0].truncates, 1);
	assert_int_equal(stream_state(svc),
	                 STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE);

	/* Stopping: a check that must ask a store is refused. */
	ctl_api_drain(api);
	truncate_at(api, 10, &r);
	assert_int_equal(r.code, STRATA_ESHUTDOWN);
	fx_reply_free(&r);
	env_stop(&e, 1);
}

/* The outcome of cutcheck_run, waited for. */
struct outcome {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int code;
	char msg[STRATA_ERRMSG_SIZE];
};

static void on_done(void *arg, int code, const char *msg)
{
	struct outcome *o = arg;
	pthread_mutex_lock(&o->lock);
	o->done = true;
	o->code = code;
	snprintf(o->msg, sizeof(o->msg), "%s", msg);
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
}

/* Run a check of sc/st at the given offsets of segments 0..n-1. */
static int check(struct cutcheck *cc, struct ctl_service *svc,
                 const int64_t *offsets, size_t n, char *msg)
{
	Strata__V1__SegmentOffset p[4], *pp[4];
	Strata__V1__StreamCut cut = STRATA__V1__STREAM_CUT__INIT;
	for (size_t i = 0; i < n; i++) {
		strata__v1__segment_offset__init(&p[i]);
		p[i].segment_id = i;
		p[i].offset = offsets[i];
		pp[i] = &p[i];
	}
	cut.positions = pp;
	cut.n_positions = n;
	struct outcome o = {.done = false};
	pthread_mutex_init(&o.lock, NULL);
	pthread_cond_init(&o.cond, NULL);
	cutcheck_run(cc, svc, "truncate_stream", "sc", "st", &cut, on_done, &o);
	pthread_mutex_lock(&o.lock);
	while (!o.done) {
		pthread_cond_wait(&o.cond, &o.lock);
	}
	pthread_mutex_unlock(&o.lock);
	pthread_cond_destroy(&o.cond);
	pthread_mutex_destroy(&o.lock);
	snprintf(msg, STRATA_ERRMSG_SIZE, "%s", o.msg);
	return o.code;
}

static void test_cutcheck_direct(void **state)
{
	(void)state;
	struct env e;
	char msg[STRATA_ERRMSG_SIZE];
	env_start(&e, 1);
	struct ctl_service *svc = e.f.svc[0];
	assert_int_equal(fx_create_scope(e.f.api[0], "sc"), 0);
	assert_int_equal(fx_create_stream(e.f.api[0], "sc", "st", 2), 0);
	struct cutcheck *cc;
	assert_int_equal(cutcheck_new(&cc), 0);

	/* Nothing to ask: offsets 0, an unknown stream's cut. */
	int64_t zero[2] = {0, 0};
	assert_int_equal(check(cc, svc, zero, 2, msg), 0);
	/* Within, and past the end of the second segment. */
	int64_t ok[2] = {5, 100};
	assert_int_equal(check(cc, svc, ok, 2, msg), 0);
	int64_t bad[2] = {5, 1000000};
	assert_int_equal(check(cc, svc, bad, 2, msg), STRATA_EINVAL);
	assert_non_null(strstr(msg, "truncate_stream: offset 1000000 of "
	                            "segment 1.0 is past its end"));
	/* A segment the store no longer has is left to the FSM. */
	pthread_mutex_lock(&e.s[0].lock);
	e.s[0].n = 0;
	pthread_mutex_unlock(&e.s[0].lock);
	assert_int_equal(check(cc, svc, bad, 2, msg), 0);
	/* A segment the stream does not have is left to the FSM too. */
	int64_t three[3] = {1, 1, 1};
	assert_int_equal(check(cc, svc, three, 3, msg), 0);

	/* Stopping: checks that must ask are refused at once. */
	cutcheck_drain(cc);
	assert_int_equal(check(cc, svc, ok, 2, msg), STRATA_ESHUTDOWN);
	assert_non_null(strstr(msg, "stopping"));
	assert_int_equal(check(cc, svc, zero, 2, msg), 0);
	cutcheck_free(cc);
	env_stop(&e, 1);
}

static void test_cutcheck_no_store(void **state)
{
	(void)state;
	struct env e;
	char msg[STRATA_ERRMSG_SIZE];
	env_start(&e, 0);
	assert_int_equal(fx_create_scope(e.f.api[0], "sc"), 0);
	assert_int_equal(fx_create_stream(e.f.api[0], "sc", "st", 1), 0);
	struct cutcheck *cc;
	assert_int_equal(cutcheck_new(&cc), 0);
	int64_t one[1] = {1};
	assert_int_equal(check(cc, e.f.svc[0], one, 1, msg), STRATA_EUNAVAIL);
	assert_non_null(strstr(msg, "no segment store serves container"));
	cutcheck_free(cc);
	env_stop(&e, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cutcheck_api),
	        cmocka_unit_test(test_cutcheck_direct),
	        cmocka_unit_test(test_cutcheck_no_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
