/* Unit tests for controller/nodes.c: membership and container assignment. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "tests/lib/check.h"
#include "tests/unit/controller/cfsm_helpers.h"

#define CONTAINERS 24

/* Replicas of every container as "c:a,b,c;" lines, for comparisons. */
static void dump(const struct cfsm *f, char *out, size_t size)
{
	size_t at = 0;
	out[0] = '\0';
	for (uint32_t c = 0; c < cfsm_container_count(f); c++) {
		const Strata__V1__ContainerAssignment *a =
		        cfsm_container_replicas(f, c);
		for (size_t i = 0; i < a->n_replicas; i++) {
			at += (size_t)snprintf(out + at, size - at, "%s%s",
			                       i ? "," : "", a->replicas[i]);
		}
		at += (size_t)snprintf(out + at, size - at, ";");
	}
}

/* Check R = min(3, live), distinct members, only live ones, and loads
 * within 1 of each other. */
static void check_balanced(const struct cfsm *f, const char **live,
                           size_t n_live)
{
	size_t R = n_live < 3 ? n_live : 3;
	size_t load[16] = {0};
	for (uint32_t c = 0; c < cfsm_container_count(f); c++) {
		const Strata__V1__ContainerAssignment *a =
		        cfsm_container_replicas(f, c);
		assert_int_equal(a->n_replicas, R);
		for (size_t i = 0; i < a->n_replicas; i++) {
			size_t k = n_live;
			for (size_t j = 0; j < n_live; j++) {
				if (strcmp(live[j], a->replicas[i]) == 0) {
					k = j;
				}
			}
			assert_true(k < n_live);
			load[k]++;
			if (i > 0) {
				assert_true(strcmp(a->replicas[i - 1],
				                   a->replicas[i]) < 0);
			}
		}
	}
	size_t lo = SIZE_MAX, hi = 0;
	for (size_t j = 0; j < n_live; j++) {
		lo = load[j] < lo ? load[j] : lo;
		hi = load[j] > hi ? load[j] : hi;
	}
	if (n_live > 0) {
		assert_true(hi - lo <= 1);
	}
}

/* Count replica slots that differ between two dumps' containers. */
static size_t moved(const struct cfsm *f, const char *before)
{
	char now[4096];
	dump(f, now, sizeof(now));
	size_t diff = 0;
	const char *a = before, *b = now;
	for (uint32_t c = 0; c < CONTAINERS; c++) {
		const char *ea = strchr(a, ';'), *eb = strchr(b, ';');
		char sa[64] = {0}, sb[64] = {0};
		memcpy(sa, a, (size_t)(ea - a));
		memcpy(sb, b, (size_t)(eb - b));
		/* members of sa missing from sb */
		for (char *tok = strtok(sa, ","); tok;
		     tok = strtok(NULL, ",")) {
			char pat[16];
			snprintf(pat, sizeof(pat), "%s", tok);
			if (strstr(sb, pat) == NULL) {
				diff++;
			}
		}
		a = ea + 1;
		b = eb + 1;
	}
	return diff;
}

/* 1, 2, 3 and 5 stores: every container gets min(3, N), balanced. */
static void test_nodes_assignment_1_2_3_5(void **state)
{
	(void)state;
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	const char *ids[] = {"ss1", "ss2", "ss3", "ss4", "ss5"};
	assert_int_equal(cfsm_init(&f, CONTAINERS, err), 0);
	check_balanced(&f, ids, 0);
	for (size_t n = 1; n <= 5; n++) {
		assert_int_equal(h_register(&f, ids[n - 1], 0, 10000), 0);
		check_balanced(&f, ids, n);
	}
	cfsm_close(&f);
}

/* The same commands give the same assignment (no hidden input). */
static void test_nodes_assignment_deterministic(void **state)
{
	(void)state;
	struct cfsm f, g;
	char err[STRATA_ERRMSG_SIZE], a[4096], b[4096];
	assert_int_equal(cfsm_init(&f, CONTAINERS, err), 0);
	assert_int_equal(cfsm_init(&g, CONTAINERS, err), 0);
	const char *ids[] = {"x", "b", "m", "a"};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(h_register(&f, ids[i], 0, 1000), 0);
		assert_int_equal(h_register(&g, ids[i], 0, 1000), 0);
	}
	dump(&f, a, sizeof(a));
	dump(&g, b, sizeof(b));
	assert_string_equal(a, b);
	cfsm_close(&f);
	cfsm_close(&g);
}

/* A store whose lease runs out is dropped and its replicas move to the
 * others; only those move. A joining store takes a fair share. */
static void test_nodes_death_and_join_move_little(void **state)
{
	(void)state;
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE], before[4096];
	const char *ids[] = {"ss1", "ss2", "ss3", "ss4"};
	assert_int_equal(cfsm_init(&f, CONTAINERS, err), 0);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(h_register(&f, ids[i], 0, 1000), 0);
	}
	check_balanced(&f, ids, 4);
	/* ss1..ss3 keep heartbeating; ss4 goes silent. */
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(h_heartbeat(&f, ids[i], 900, 1000), 0);
	}
	dump(&f, before, sizeof(before));
	assert_int_equal(h_tick(&f, 999), 0); /* nobody expired */
	assert_int_equal(moved(&f, before), 0);
	assert_int_equal(h_tick(&f, 1000), 0); /* ss4 expired */
	check_balanced(&f, ids, 3);
	/* ss4 held 24*3/4 = 18 replicas; exactly those moved. */
	assert_int_equal(moved(&f, before), 18);

	dump(&f, before, sizeof(before));
	assert_int_equal(h_register(&f, "ss5", 1000, 1000), 0);
	const char *ids5[] = {"ss1", "ss2", "ss3", "ss5"};
	check_balanced(&f, ids5, 4);
	assert_int_equal(moved(&f, before), 18); /* ss5's fair share */

	/* A dead store rejoining by heartbeat counts again. */
	dump(&f, before, sizeof(before));
	assert_int_equal(h_heartbeat(&f, "ss4", 1500, 1000), 0);
	check_balanced(&f, (const char *[]){"ss1", "ss2", "ss3", "ss4", "ss5"},
	               5);
	cfsm_close(&f);
}

/* Bad membership commands are refused and change nothing. */
static void test_nodes_rejections_change_nothing(void **state)
{
	(void)state;
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 4, err), 0);
	assert_int_equal(h_register(&f, "ss1", 0, 1000), 0);
	size_t len;
	uint8_t *snap = h_snap(&f, &len);
	assert_int_equal(h_heartbeat(&f, "nobody", 0, 1000), STRATA_ENOENT);
	assert_int_equal(h_register(&f, "bad id", 0, 1000), STRATA_EINVAL);
	assert_int_equal(h_register(&f, "", 0, 1000), STRATA_EINVAL);
	assert_int_equal(h_register(&f, "ss2", 0, 0), STRATA_EINVAL);
	assert_true(h_same(&f, snap, len));
	strata_free(snap);
	cfsm_close(&f);
}

/* Apply a heartbeat of node carrying one container role report. */
static int heartbeat_role(struct cfsm *f, const char *node, uint64_t now,
                          uint32_t container, int role, uint64_t term)
{
	Strata__V1__ContainerRole r = STRATA__V1__CONTAINER_ROLE__INIT;
	Strata__V1__ContainerRole *rs[1] = {&r};
	Strata__V1__HeartbeatCmd c = STRATA__V1__HEARTBEAT_CMD__INIT;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	r.container = container;
	r.role = role;
	r.term = term;
	c.node_id = (char *)node;
	c.now_ms = now;
	c.lease_ms = 1000;
	c.n_containers = 1;
	c.containers = rs;
	cmd.command_case = STRATA__V1__CONTROLLER_COMMAND__COMMAND_HEARTBEAT;
	cmd.heartbeat = &c;
	return h_apply(f, &cmd);
}

/* A registration stores the full endpoint; a re-registration replaces it. */
static void test_nodes_register_keeps_endpoint(void **state)
{
	(void)state;
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 4, err), 0);
	Strata__V1__RegisterStoreCmd c = STRATA__V1__REGISTER_STORE_CMD__INIT;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	c.node_id = "7";
	c.address = "tcp://10.0.0.7:12345";
	c.client_url = "tcp://10.0.0.7:12345";
	c.raft_address = "10.0.0.7:12445";
	c.http_url = "http://10.0.0.7:12346";
	c.now_ms = 10;
	c.lease_ms = 1000;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_REGISTER_STORE;
	cmd.register_store = &c;
	assert_int_equal(h_apply(&f, &cmd), 0);
	const Strata__V1__StoreNode *nd = cfsm_find_node(&f, "7");
	assert_non_null(nd);
	assert_string_equal(nd->client_url, "tcp://10.0.0.7:12345");
	assert_string_equal(nd->raft_address, "10.0.0.7:12445");
	assert_string_equal(nd->http_url, "http://10.0.0.7:12346");
	c.client_url = "tcp://10.0.0.8:12345";
	c.http_url = "";
	assert_int_equal(h_apply(&f, &cmd), 0);
	nd = cfsm_find_node(&f, "7");
	assert_string_equal(nd->client_url, "tcp://10.0.0.8:12345");
	assert_string_equal(nd->http_url, "");
	assert_null(cfsm_find_node(&f, "8"));
	/* The endpoint survives a snapshot round trip. */
	size_t len;
	uint8_t *snap = h_snap(&f, &len);
	struct cfsm g;
	assert_int_equal(cfsm_init(&g, 4, err), 0);
	assert_int_equal(cfsm_restore(&g, snap, len, err), 0);
	assert_string_equal(cfsm_find_node(&g, "7")->raft_address,
	                    "10.0.0.7:12445");
	strata_free(snap);
	cfsm_close(&g);
	cfsm_close(&f);
}

/* Register node at url (address and client_url) at now, lease 1000. */
static int register_at(struct cfsm *f, const char *node, const char *url,
                       uint64_t now)
{
	Strata__V1__RegisterStoreCmd c = STRATA__V1__REGISTER_STORE_CMD__INIT;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	c.node_id = (char *)node;
	c.address = (char *)url;
	c.client_url = (char *)url;
	c.now_ms = now;
	c.lease_ms = 1000;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_REGISTER_STORE;
	cmd.register_store = &c;
	return h_apply(f, &cmd);
}

/* A second store under a live store's id (QA: a compose service copied
 * without its STRATA_NODE_ID took over node 1, and the controller sent
 * node 1's work to it) is refused, naming both; the same store
 * re-registering is not, and one that moved is let in once the old
 * lease ends. */
static void test_nodes_register_refuses_a_second_store(void **state)
{
	(void)state;
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 4, err), 0);
	assert_int_equal(register_at(&f, "1", "tcp://store1:12345", 0), 0);
	size_t len;
	uint8_t *snap = h_snap(&f, &len);
	assert_int_equal(register_at(&f, "1", "tcp://dup:12345", 400),
	                 STRATA_EEXIST);
	assert_contains(h_res.message,
	                "held by a live store at tcp://store1:12345");
	assert_contains(h_res.message,
	                "a store at tcp://dup:12345 registers it");
	assert_contains(h_res.message, "own node.id");
	assert_contains(h_res.message, "in 600 ms");
	assert_true(h_same(&f, snap, len));
	strata_free(snap);
	assert_int_equal(register_at(&f, "1", "tcp://store1:12345", 500), 0);
	assert_int_equal(register_at(&f, "1", "tcp://dup:12345", 1499),
	                 STRATA_EEXIST);
	assert_int_equal(register_at(&f, "1", "tcp://dup:12345", 1500), 0);
	assert_string_equal(cfsm_find_node(&f, "1")->client_url,
	                    "tcp://dup:12345");
	cfsm_close(&f);
}

/* Heartbeat role reports record a container's leader: only from a
 * replica, never with an older term; a non-leader report from the leader
 * and the leader's death clear it. */
static void test_nodes_heartbeat_records_leader(void **state)
{
	(void)state;
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 4, err), 0);
	for (int i = 1; i <= 4; i++) {
		char id[8];
		snprintf(id, sizeof(id), "ss%d", i);
		assert_int_equal(h_register(&f, id, 0, 1000), 0);
	}
	const Strata__V1__ContainerAssignment *a =
	        cfsm_container_replicas(&f, 0);
	assert_int_equal(a->n_replicas, 3);
	char member[8], other[8] = "";
	snprintf(member, sizeof(member), "%s", a->replicas[0]);
	for (int i = 1; i <= 4; i++) {
		char id[8];
		snprintf(id, sizeof(id), "ss%d", i);
		bool in = false;
		for (size_t k = 0; k < a->n_replicas; k++) {
			in |= strcmp(a->replicas[k], id) == 0;
		}
		if (!in) {
			snprintf(other, sizeof(other), "%s", id);
		}
	}
	assert_string_not_equal(other, "");
	/* Not a replica: ignored. */
	assert_int_equal(heartbeat_role(&f, other, 10, 0, 3, 5), 0);
	assert_string_equal(cfsm_container_replicas(&f, 0)->leader, "");
	/* A replica leading term 5. */
	assert_int_equal(heartbeat_role(&f, member, 10, 0, 3, 5), 0);
	a = cfsm_container_replicas(&f, 0);
	assert_string_equal(a->leader, member);
	assert_int_equal(a->leader_term, 5);
	/* Out of range container: ignored, no error. */
	assert_int_equal(heartbeat_role(&f, member, 10, 99, 3, 5), 0);
	/* An older term from another replica does not take over. */
	const char *second = a->replicas[1];
	char sec[8];
	snprintf(sec, sizeof(sec), "%s", second);
	assert_int_equal(heartbeat_role(&f, sec, 10, 0, 3, 4), 0);
	assert_string_equal(cfsm_container_replicas(&f, 0)->leader, member);
	/* A newer term does. */
	assert_int_equal(heartbeat_role(&f, sec, 10, 0, 3, 6), 0);
	assert_string_equal(cfsm_container_replicas(&f, 0)->leader, sec);
	/* The leader reports follower: cleared, term kept. */
	assert_int_equal(heartbeat_role(&f, sec, 10, 0, 1, 6), 0);
	a = cfsm_container_replicas(&f, 0);
	assert_string_equal(a->leader, "");
	assert_int_equal(a->leader_term, 6);
	/* Leader again, then its lease expires: the rebalance drops it. */
	assert_int_equal(heartbeat_role(&f, sec, 10, 0, 3, 7), 0);
	for (int i = 1; i <= 4; i++) {
		char id[8];
		snprintf(id, sizeof(id), "ss%d", i);
		if (strcmp(id, sec) != 0) {
			assert_int_equal(h_heartbeat(&f, id, 500, 1000), 0);
		}
	}
	assert_int_equal(h_tick(&f, 1010), 0);
	a = cfsm_container_replicas(&f, 0);
	assert_string_equal(a->leader, "");
	for (size_t k = 0; k < a->n_replicas; k++) {
		assert_string_not_equal(a->replicas[k], sec);
	}
	cfsm_close(&f);
}

static int set_ctl(struct cfsm *f, uint64_t id, const char *raft,
                   const char *url, bool remove)
{
	Strata__V1__ControllerEndpoint ep =
	        STRATA__V1__CONTROLLER_ENDPOINT__INIT;
	Strata__V1__SetControllerEndpointCmd c =
	        STRATA__V1__SET_CONTROLLER_ENDPOINT_CMD__INIT;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	ep.id = id;
	ep.raft_address = (char *)raft;
	ep.client_url = (char *)url;
	c.endpoint = &ep;
	c.remove = remove;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_SET_CONTROLLER;
	cmd.set_controller = &c;
	return h_apply(f, &cmd);
}

/* Controller endpoints are kept sorted by id, replaced in place, removed
 * idempotently; bad ones change nothing; they survive a snapshot. */
static void test_nodes_controller_endpoints(void **state)
{
	(void)state;
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 4, err), 0);
	assert_int_equal(set_ctl(&f, 3, "10.0.0.3:1", "tcp://c:3", false), 0);
	assert_int_equal(set_ctl(&f, 1, "10.0.0.1:1", "tcp://a:1", false), 0);
	assert_int_equal(set_ctl(&f, 2, "10.0.0.2:1", "tcp://b:1", false), 0);
	assert_int_equal(set_ctl(&f, 2, "10.0.0.2:1", "tcp://b:2", false), 0);
	const Strata__V1__ControllerState *st = cfsm_state(&f);
	assert_int_equal(st->n_controllers, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(st->controllers[i]->id, i + 1);
	}
	assert_string_equal(cfsm_find_controller(&f, 2)->client_url,
	                    "tcp://b:2");
	size_t len;
	uint8_t *snap = h_snap(&f, &len);
	assert_int_equal(set_ctl(&f, 0, "10.0.0.9:1", "tcp://z:1", false),
	                 STRATA_EINVAL);
	assert_int_equal(set_ctl(&f, 4, "", "tcp://z:1", false), STRATA_EINVAL);
	assert_int_equal(set_ctl(&f, 4, "10.0.0.9:1", "", false),
	                 STRATA_EINVAL);
	assert_true(h_same(&f, snap, len));
	struct cfsm g;
	assert_int_equal(cfsm_init(&g, 4, err), 0);
	assert_int_equal(cfsm_restore(&g, snap, len, err), 0);
	assert_string_equal(cfsm_find_controller(&g, 3)->raft_address,
	                    "10.0.0.3:1");
	cfsm_close(&g);
	strata_free(snap);
	assert_int_equal(set_ctl(&f, 2, "", "", true), 0);
	assert_int_equal(set_ctl(&f, 2, "", "", true), 0);
	assert_null(cfsm_find_controller(&f, 2));
	assert_int_equal(cfsm_state(&f)->n_controllers, 2);
	cfsm_close(&f);
}

/* A tick records the leader's clock; an older tick does not move it
 * back. */
static void test_nodes_tick_records_leader_clock(void **state)
{
	(void)state;
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 4, err), 0);
	assert_int_equal(cfsm_state(&f)->last_tick_ms, 0);
	assert_int_equal(h_tick(&f, 5000), 0);
	assert_int_equal(cfsm_state(&f)->last_tick_ms, 5000);
	assert_int_equal(h_tick(&f, 4000), 0);
	assert_int_equal(cfsm_state(&f)->last_tick_ms, 5000);
	assert_int_equal(h_tick(&f, 6000), 0);
	assert_int_equal(cfsm_state(&f)->last_tick_ms, 6000);
	cfsm_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_nodes_assignment_1_2_3_5),
	        cmocka_unit_test(test_nodes_assignment_deterministic),
	        cmocka_unit_test(test_nodes_death_and_join_move_little),
	        cmocka_unit_test(test_nodes_rejections_change_nothing),
	        cmocka_unit_test(test_nodes_register_keeps_endpoint),
	        cmocka_unit_test(test_nodes_register_refuses_a_second_store),
	        cmocka_unit_test(test_nodes_heartbeat_records_leader),
	        cmocka_unit_test(test_nodes_controller_endpoints),
	        cmocka_unit_test(test_nodes_tick_records_leader_clock),
	};
	return cmocka_run_group_tests_name("controller_nodes", tests, NULL,
	                                   NULL);
}
