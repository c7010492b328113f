/* Unit tests for controller/cluster.c: segment-store register, heartbeat,
 * unregister and status, container assignments, and the lease ticker. */
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
#include "controller/cluster.h"
#include "tests/unit/controller/svc_fixture.h"

#define C(x) STRATA__V1__CLUSTER_METHOD__CLUSTER_##x

/* Register store id at url with count containers; returns the code and
 * the assignment (NULL on error; rpc_pb_free it). */
static int reg(struct ctl_api *api, uint64_t id, const char *url,
               uint32_t count, Strata__V1__AssignmentReply **out)
{
	Strata__V1__StoreEndpoint ep = STRATA__V1__STORE_ENDPOINT__INIT;
	Strata__V1__RegisterStoreRequest q =
	        STRATA__V1__REGISTER_STORE_REQUEST__INIT;
	struct fx_reply r;
	char raft[32];
	snprintf(raft, sizeof(raft), "127.0.0.1:%u", (unsigned)(12000 + id));
	ep.node_id = id;
	ep.client_url = (char *)url;
	ep.raft_address = raft;
	ep.http_url = "http://127.0.0.1:1";
	q.store = &ep;
	q.container_count = count;
	fx_call(api, C(REGISTER_STORE), &q.base, &r);
	*out = NULL;
	if (r.code == 0) {
		*out = fx_unpack(&r, &strata__v1__assignment_reply__descriptor);
	}
	fx_reply_free(&r);
	return r.code;
}

static int heartbeat(struct ctl_api *api, uint64_t id, int leader_of,
                     uint64_t term, Strata__V1__AssignmentReply **out)
{
	Strata__V1__StoreHeartbeatRequest q =
	        STRATA__V1__STORE_HEARTBEAT_REQUEST__INIT;
	Strata__V1__ContainerReport cr = STRATA__V1__CONTAINER_REPORT__INIT;
	Strata__V1__ContainerReport *crs[] = {&cr};
	struct fx_reply r;
	q.node_id = id;
	if (leader_of >= 0) {
		cr.container = (uint32_t)leader_of;
		cr.role = 3;
		cr.term = term;
		q.containers = crs;
		q.n_containers = 1;
	}
	fx_call(api, C(HEARTBEAT), &q.base, &r);
	*out = NULL;
	if (r.code == 0) {
		*out = fx_unpack(&r, &strata__v1__assignment_reply__descriptor);
	}
	fx_reply_free(&r);
	return r.code;
}

static Strata__V1__ClusterStatusReply *status(struct ctl_api *api)
{
	Strata__V1__ClusterStatusRequest q =
	        STRATA__V1__CLUSTER_STATUS_REQUEST__INIT;
	struct fx_reply r;
	fx_call(api, C(STATUS), &q.base, &r);
	assert_int_equal(r.code, 0);
	Strata__V1__ClusterStatusReply *s =
	        fx_unpack(&r, &strata__v1__cluster_status_reply__descriptor);
	fx_reply_free(&r);
	return s;
}

/* Register, heartbeat with a leader report, a second store, status and
 * unregister; bad registrations are refused with the fix in the message. */
static void test_cluster_membership(void **state)
{
	(void)state;
	struct fx f;
	struct fx_reply r;
	fx_init(&f, 1);
	fx_start(&f, 0);
	fx_wait_leader(&f, 5000);
	struct ctl_api *api = f.api[0];
	Strata__V1__AssignmentReply *a;

	assert_int_equal(reg(api, 7, "tcp://127.0.0.1:7", 8, &a),
	                 STRATA_ECONFIG);
	assert_int_equal(reg(api, 0, "tcp://127.0.0.1:7", 4, &a),
	                 STRATA_EINVAL);
	assert_int_equal(reg(api, 7, "", 4, &a), STRATA_EINVAL);
	Strata__V1__RegisterStoreRequest empty =
	        STRATA__V1__REGISTER_STORE_REQUEST__INIT;
	fx_call(api, C(REGISTER_STORE), &empty.base, &r);
	assert_int_equal(r.code, STRATA_EINVAL);
	assert_non_null(strstr(r.msg, "node_id"));
	fx_reply_free(&r);

	assert_int_equal(reg(api, 7, "tcp://127.0.0.1:7", 4, &a), 0);
	assert_int_equal(a->container_count, 4);
	assert_int_equal(a->n_containers, 4);
	assert_int_equal(a->lease_ms, 10000);
	assert_true(a->assignment_version > 0);
	for (size_t c = 0; c < 4; c++) {
		assert_int_equal(a->containers[c]->container, c);
		assert_int_equal(a->containers[c]->n_replicas, 1);
		assert_int_equal(a->containers[c]->replicas[0]->node_id, 7);
		assert_string_equal(a->containers[c]->replicas[0]->client_url,
		                    "tcp://127.0.0.1:7");
		assert_string_equal(a->containers[c]->replicas[0]->raft_address,
		                    "127.0.0.1:12007");
		assert_int_equal(a->containers[c]->leader_node_id, 0);
	}
	rpc_pb_free(&a->base);

	/* The store reports it leads container 2. */
	assert_int_equal(heartbeat(api, 7, 2, 3, &a), 0);
	assert_int_equal(a->containers[2]->leader_node_id, 7);
	assert_int_equal(a->containers[1]->leader_node_id, 0);
	rpc_pb_free(&a->base);
	assert_int_equal(heartbeat(api, 9, -1, 0, &a), STRATA_ENOENT);

	/* Segment endpoint of a segment in container 2 names the leader. */
	assert_int_equal(fx_create_scope(api, "sc"), 0);
	assert_int_equal(fx_create_stream(api, "sc", "st", 8), 0);
	Strata__V1__GetSegmentEndpointRequest eq =
	        STRATA__V1__GET_SEGMENT_ENDPOINT_REQUEST__INIT;
	eq.scope = "sc";
	eq.stream = "st";
	bool seen_leader = false;
	for (uint64_t id = 0; id < 8; id++) {
		eq.segment_id = id;
		fx_call(api,
		        STRATA__V1__CONTROLLER_METHOD__CTL_GET_SEGMENT_ENDPOINT,
		        &eq.base, &r);
		assert_int_equal(r.code, 0);
		Strata__V1__SegmentEndpointReply *e = fx_unpack(
		        &r, &strata__v1__segment_endpoint_reply__descriptor);
		assert_string_equal(e->client_url, "tcp://127.0.0.1:7");
		assert_int_equal(e->n_replica_urls, 1);
		assert_int_equal(e->leader_known, e->container == 2);
		seen_leader |= e->leader_known;
		rpc_pb_free(&e->base);
		fx_reply_free(&r);
	}
	(void)seen_leader;

	/* A second store: R = 2. */
	assert_int_equal(reg(api, 8, "tcp://127.0.0.1:8", 4, &a), 0);
	for (size_t c = 0; c < 4; c++) {
		assert_int_equal(a->containers[c]->n_replicas, 2);
		assert_int_equal(a->containers[c]->replicas[0]->node_id, 7);
		assert_int_equal(a->containers[c]->replicas[1]->node_id, 8);
	}
	rpc_pb_free(&a->base);
	Strata__V1__ClusterStatusReply *s = status(api);
	assert_int_equal(s->n_controllers, 1);
	assert_int_equal(s->leader_id, 1);
	assert_int_equal(s->n_stores, 2);
	assert_int_equal(s->n_store_alive, 2);
	assert_true(s->store_alive[0] && s->store_alive[1]);
	assert_non_null(s->assignment);
	assert_int_equal(s->assignment->n_containers, 4);
	rpc_pb_free(&s->base);

	Strata__V1__UnregisterStoreRequest uq =
	        STRATA__V1__UNREGISTER_STORE_REQUEST__INIT;
	uq.node_id = 8;
	fx_call(api, C(UNREGISTER_STORE), &uq.base, &r);
	assert_int_equal(r.code, 0);
	fx_reply_free(&r);
	fx_call(api, C(UNREGISTER_STORE), &uq.base, &r);
	assert_int_equal(r.code, STRATA_ENOENT);
	fx_reply_free(&r);
	s = status(api);
	assert_int_equal(s->n_stores, 1);
	assert_int_equal(s->assignment->containers[0]->n_replicas, 1);
	rpc_pb_free(&s->base);
	fx_close(&f);
}

static bool store_dead(void *arg)
{
	Strata__V1__ClusterStatusReply *s = status(arg);
	bool dead = s->n_store_alive == 1 && !s->store_alive[0] &&
	            s->assignment->containers[0]->n_replicas == 0;
	rpc_pb_free(&s->base);
	return dead;
}

/* The leader's ticker expires a store whose lease ended; its replicas
 * are dropped; a heartbeat revives it. */
static void test_cluster_ticker_expires_leases(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1);
	f.lease_ms = 300;
	fx_start(&f, 0);
	fx_wait_leader(&f, 5000);
	struct cluster_ticker *t;
	assert_int_equal(cluster_ticker_start(f.svc[0], 100, &t), 0);
	Strata__V1__AssignmentReply *a;
	assert_int_equal(reg(f.api[0], 3, "tcp://127.0.0.1:3", 4, &a), 0);
	rpc_pb_free(&a->base);
	assert_true(fx_eventually(store_dead, f.api[0], 5000));
	assert_int_equal(heartbeat(f.api[0], 3, -1, 0, &a), 0);
	assert_int_equal(a->containers[0]->n_replicas, 1);
	rpc_pb_free(&a->base);
	cluster_ticker_stop(t);
	fx_stop(&f, 0);
	cluster_ticker_free(t);
	fx_close(&f);
}

static Strata__V1__ListControllersReply *controllers(struct ctl_api *api)
{
	Strata__V1__ListControllersRequest q =
	        STRATA__V1__LIST_CONTROLLERS_REQUEST__INIT;
	struct fx_reply r;
	fx_call(api, STRATA__V1__CONTROLLER_METHOD__CTL_LIST_CONTROLLERS,
	        &q.base, &r);
	assert_int_equal(r.code, 0);
	Strata__V1__ListControllersReply *l =
	        fx_unpack(&r, &strata__v1__list_controllers_reply__descriptor);
	fx_reply_free(&r);
	return l;
}

static int voters(struct ctl_api *api)
{
	Strata__V1__ListControllersReply *l = controllers(api);
	int n = 0;
	for (size_t i = 0; i < l->n_controllers; i++) {
		n += l->controllers[i]->role == 1;
	}
	rpc_pb_free(&l->base);
	return n;
}

struct has_scope {
	struct ctl_service *svc;
	const char *scope;
};

static bool replica_has_scope(void *arg)
{
	struct has_scope *h = arg;
	const struct cfsm *f = ctl_service_lock(h->svc);
	const Strata__V1__ControllerState *st = cfsm_state(f);
	bool found = false;
	for (size_t i = 0; i < st->n_scopes; i++) {
		found |= strcmp(st->scopes[i]->name, h->scope) == 0;
	}
	ctl_service_unlock(h->svc);
	return found;
}

/* A replica started with join is added as a voter, catches up and
 * follows; it can be removed again; bad requests are refused. */
static void test_cluster_add_remove_controller(void **state)
{
	(void)state;
	struct fx f;
	struct fx_reply r;
	fx_init(&f, 3);
	f.join_from = 2;
	fx_start(&f, 0);
	fx_start(&f, 1);
	unsigned l = fx_wait_leader(&f, 10000);
	assert_int_equal(fx_create_scope(f.api[l], "before"), 0);
	assert_int_equal(voters(f.api[l]), 2);
	fx_start(&f, 2);

	Strata__V1__ControllerEndpoint ep =
	        STRATA__V1__CONTROLLER_ENDPOINT__INIT;
	Strata__V1__AddControllerRequest aq =
	        STRATA__V1__ADD_CONTROLLER_REQUEST__INIT;
	aq.endpoint = &ep;
	ep.id = 3;
	ep.raft_address = "not-an-address";
	ep.client_url = f.members[2].client_url;
	fx_call(f.api[l], STRATA__V1__CONTROLLER_METHOD__CTL_ADD_CONTROLLER,
	        &aq.base, &r);
	assert_int_equal(r.code, STRATA_EINVAL);
	fx_reply_free(&r);
	ep.raft_address = f.members[2].raft_address;
	/* A slow catch-up times out (STRATA_ETIMEDOUT): callers retry. */
	for (int i = 0; i < 5; i++) {
		fx_call(f.api[l],
		        STRATA__V1__CONTROLLER_METHOD__CTL_ADD_CONTROLLER,
		        &aq.base, &r);
		if (r.code != STRATA_ETIMEDOUT && r.code != STRATA_EBUSY) {
			break;
		}
		fx_reply_free(&r);
	}
	if (r.code != 0) {
		fail_msg("add controller: %s", r.msg);
	}
	fx_reply_free(&r);
	assert_int_equal(voters(f.api[l]), 3);
	/* The same again is a retry: done. Other addresses for a voter are
	 * refused (they replaced the ones every replica redirects to). */
	fx_call(f.api[l], STRATA__V1__CONTROLLER_METHOD__CTL_ADD_CONTROLLER,
	        &aq.base, &r);
	assert_int_equal(r.code, 0);
	fx_reply_free(&r);
	ep.client_url = "tcp://127.0.0.1:1";
	fx_call(f.api[l], STRATA__V1__CONTROLLER_METHOD__CTL_ADD_CONTROLLER,
	        &aq.base, &r);
	assert_int_equal(r.code, STRATA_EEXIST);
	assert_non_null(strstr(r.msg, "already a voter"));
	fx_reply_free(&r);
	ep.client_url = f.members[2].client_url;
	struct has_scope h = {f.svc[2], "before"};
	assert_true(fx_eventually(replica_has_scope, &h, 5000));
	assert_int_equal(fx_create_scope(f.api[l], "after"), 0);
	h.scope = "after";
	assert_true(fx_eventually(replica_has_scope, &h, 5000));
	/* The endpoint is recorded on every replica. */
	Strata__V1__ListControllersReply *lc = controllers(f.api[2]);
	assert_int_equal(lc->n_controllers, 3);
	assert_string_equal(lc->controllers[2]->endpoint->client_url,
	                    f.members[2].client_url);
	rpc_pb_free(&lc->base);

	Strata__V1__RemoveControllerRequest rq =
	        STRATA__V1__REMOVE_CONTROLLER_REQUEST__INIT;
	rq.id = 9;
	fx_call(f.api[l], STRATA__V1__CONTROLLER_METHOD__CTL_REMOVE_CONTROLLER,
	        &rq.base, &r);
	assert_int_equal(r.code, STRATA_ENOENT);
	fx_reply_free(&r);
	rq.id = 3;
	fx_call(f.api[l], STRATA__V1__CONTROLLER_METHOD__CTL_REMOVE_CONTROLLER,
	        &rq.base, &r);
	if (r.code != 0) {
		fail_msg("remove controller: %s", r.msg);
	}
	fx_reply_free(&r);
	assert_int_equal(voters(f.api[l]), 2);
	/* A follower redirects membership changes to the leader. */
	unsigned fo = 1 - l;
	fx_call(f.api[fo], STRATA__V1__CONTROLLER_METHOD__CTL_REMOVE_CONTROLLER,
	        &rq.base, &r);
	assert_true(r.code == STRATA_ENOTLEADER || r.code == STRATA_EUNAVAIL);
	fx_reply_free(&r);
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cluster_membership),
	        cmocka_unit_test(test_cluster_ticker_expires_leases),
	        cmocka_unit_test(test_cluster_add_remove_controller),
	};
	return cmocka_run_group_tests_name("controller_cluster", tests, NULL,
	                                   NULL);
}
