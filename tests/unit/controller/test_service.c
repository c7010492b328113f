/* Unit tests for controller/service.c: member lists, the Raft-hosted FSM,
 * proposals, waiters, restart and snapshots, the restart of a replica
 * whose Raft log failed. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "raft/group.h"
#include "tests/unit/controller/svc_fixture.h"
#ifdef STRATA_LIBRAFT_FAULTS
#include "tests/unit/raft/libraft_faults.h"
#endif

/* A full member list parses, with and without HTTP URLs and spaces. */
static void test_ctl_members_parse_ok(void **state)
{
	(void)state;
	struct ctl_member m[CTL_MAX_MEMBERS];
	unsigned n;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(
	        ctl_members_parse("1=10.0.0.1:9190,tcp://10.0.0.1:9090,"
	                          "http://10.0.0.1:9091; 2 = 10.0.0.2:9190 , "
	                          "tcp://10.0.0.2:9090 ;3=10.0.0.3:9190,"
	                          "tcp://10.0.0.3:9090;",
	                          m, &n, err),
	        0);
	assert_int_equal(n, 3);
	assert_int_equal(m[0].id, 1);
	assert_string_equal(m[0].raft_address, "10.0.0.1:9190");
	assert_string_equal(m[0].client_url, "tcp://10.0.0.1:9090");
	assert_string_equal(m[0].http_url, "http://10.0.0.1:9091");
	assert_int_equal(m[1].id, 2);
	assert_string_equal(m[1].raft_address, "10.0.0.2:9190");
	assert_string_equal(m[1].client_url, "tcp://10.0.0.2:9090");
	assert_string_equal(m[1].http_url, "");
	assert_int_equal(m[2].id, 3);
	assert_non_null(ctl_member_find(m, n, 3));
	assert_null(ctl_member_find(m, n, 4));
	/* A DNS name is a Raft address too (resolved at every connect). */
	err[0] = '\0';
	assert_int_equal(ctl_members_parse("1=ctl-0.ctl.default.svc:9190,"
	                                   "tcp://ctl-0.ctl:9090",
	                                   m, &n, err),
	                 0);
	assert_string_equal(m[0].raft_address, "ctl-0.ctl.default.svc:9190");
}

/* Each kind of mistake is refused with a message naming it. */
static void test_ctl_members_parse_errors(void **state)
{
	(void)state;
	static const struct {
		const char *spec;
		const char *needle;
	} bad[] = {
	        {"", "empty"},
	        {"0=10.0.0.1:1,tcp://x:1", "node id > 0"},
	        {"x=10.0.0.1:1,tcp://x:1", "node id > 0"},
	        {"1=10.0.0.1:1", "client URL"},
	        {"1=10.0.0.1:1,tcp://a:1,http://a:2,extra", "client URL"},
	        {"1=bad_host:1,tcp://a:1", "host:port"},
	        {"1=a..b:1,tcp://a:1", "host:port"},
	        {"1=10.0.0.1:70000,tcp://a:1", "host:port"},
	        {"1=10.0.0.1:1,nourl", "NNG URL"},
	        {"1=10.0.0.1:1,tcp://a:1;1=10.0.0.2:1,tcp://b:1", "twice"},
	        {"1=1.1.1.1:1,t://a;2=1.1.1.1:2,t://a;3=1.1.1.1:3,t://a;"
	         "4=1.1.1.1:4,t://a;5=1.1.1.1:5,t://a;6=1.1.1.1:6,t://a;"
	         "7=1.1.1.1:7,t://a;8=1.1.1.1:8,t://a;9=1.1.1.1:9,t://a;"
	         "10=1.1.1.1:10,t://a",
	         "more than"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ctl_member m[CTL_MAX_MEMBERS];
		unsigned n;
		char err[STRATA_ERRMSG_SIZE] = "";
		assert_int_equal(ctl_members_parse(bad[i].spec, m, &n, err),
		                 STRATA_ECONFIG);
		if (strstr(err, bad[i].needle) == NULL) {
			fail_msg("spec \"%s\": message \"%s\" lacks \"%s\"",
			         bad[i].spec, err, bad[i].needle);
		}
	}
}

/* A node id that is not a member is refused before anything starts. */
static void test_ctl_service_start_not_member(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1);
	char err[STRATA_ERRMSG_SIZE] = "";
	struct ctl_service *s = NULL;
	struct ctl_service_config c = {.node_id = 7,
	                               .data_dir = f.dir,
	                               .raft_listen = f.members[0].raft_address,
	                               .members = f.members,
	                               .n_members = 1,
	                               .container_count = 4};
	assert_int_equal(ctl_service_start(&c, &s, err), STRATA_ECONFIG);
	assert_non_null(strstr(err, "node.id 7"));
	assert_null(s);
	fx_close(&f);
}

static Strata__V1__ControllerCommand *scope_cmd(const char *name)
{
	static Strata__V1__CreateScopeRequest q =
	        STRATA__V1__CREATE_SCOPE_REQUEST__INIT;
	static Strata__V1__CreateScopeCmd c =
	        STRATA__V1__CREATE_SCOPE_CMD__INIT;
	static Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	q.scope = (char *)name;
	c.request = &q;
	cmd.command_case = STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_SCOPE;
	cmd.create_scope = &c;
	return &cmd;
}

static size_t scope_count(struct ctl_service *s)
{
	const struct cfsm *f = ctl_service_lock(s);
	size_t n = cfsm_state(f)->n_scopes;
	ctl_service_unlock(s);
	return n;
}

/* A proposal is applied and answers with the FSM's result; a rejected
 * one answers its error and changes nothing. */
static void test_ctl_service_propose_applies(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1);
	fx_start(&f, 0);
	fx_wait_leader(&f, 5000);
	struct cfsm_result *res = strata_calloc(1, sizeof(*res));
	assert_int_equal(
	        ctl_service_propose_sync(f.svc[0], scope_cmd("sc1"), res), 0);
	assert_int_equal(res->code, 0);
	assert_int_equal(
	        ctl_service_propose_sync(f.svc[0], scope_cmd("sc1"), res),
	        STRATA_EEXIST);
	assert_non_null(strstr(res->message, "sc1"));
	assert_int_equal(
	        ctl_service_propose_sync(f.svc[0], scope_cmd("bad name"), res),
	        STRATA_EBADNAME);
	assert_int_equal(scope_count(f.svc[0]), 1);
	struct ctl_status st;
	ctl_service_status(f.svc[0], &st);
	assert_int_equal(st.role, RAFT_GROUP_LEADER);
	assert_true(st.ready);
	assert_int_equal(st.leader_id, 1);
	assert_true(st.applied_index >= 3);
	strata_free(res);
	fx_close(&f);
}

static bool always(const struct cfsm *fsm, void *arg)
{
	(void)fsm;
	(void)arg;
	return true;
}

static bool never(const struct cfsm *fsm, void *arg)
{
	(void)fsm;
	(void)arg;
	return false;
}

static bool has_scope_x(const struct cfsm *fsm, void *arg)
{
	(void)arg;
	return cfsm_state(fsm)->n_scopes > 0;
}

static void wait_done(void *arg, bool satisfied)
{
	int *out = arg;
	*out = satisfied ? 1 : 0;
}

static bool set(void *arg)
{
	return *(volatile int *)arg >= 0;
}

/* Waiters: satisfied at once, satisfied by a later apply, or told "not
 * satisfied" after the bound. */
static void test_ctl_service_wait(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1);
	f.wait_ms = 200;
	fx_start(&f, 0);
	fx_wait_leader(&f, 5000);
	int a = -1, b = -1, c = -1;
	assert_int_equal(ctl_service_wait(f.svc[0], always, wait_done, &a), 0);
	assert_int_equal(a, 1);
	assert_int_equal(ctl_service_wait(f.svc[0], has_scope_x, wait_done, &b),
	                 0);
	assert_int_equal(ctl_service_wait(f.svc[0], never, wait_done, &c), 0);
	assert_int_equal(b, -1);
	assert_int_equal(
	        ctl_service_propose_sync(f.svc[0], scope_cmd("x"), NULL), 0);
	assert_true(fx_eventually(set, &b, 2000));
	assert_int_equal(b, 1);
	assert_true(fx_eventually(set, &c, 2000));
	assert_int_equal(c, 0);
	/* A waiter pending at stop is told "not satisfied". */
	int d = -1;
	f.wait_ms = 60000;
	assert_int_equal(ctl_service_wait(f.svc[0], never, wait_done, &d), 0);
	fx_stop(&f, 0);
	assert_int_equal(d, 0);
	fx_close(&f);
}

/* Everything survives a restart, and a small snapshot threshold takes
 * snapshots (the log stays bounded) without losing state. */
static void test_ctl_service_restart_and_snapshots(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1);
	f.snapshot_bytes = 64 * 1024;
	f.no_ticker = true; /* compare states byte for byte */
	fx_start(&f, 0);
	fx_wait_leader(&f, 5000);
	char name[64];
	for (int i = 0; i < 1500; i++) {
		snprintf(name, sizeof(name), "scope-with-a-long-name-%05d", i);
		assert_int_equal(ctl_service_propose_sync(
		                         f.svc[0], scope_cmd(name), NULL),
		                 0);
	}
	struct ctl_status st;
	ctl_service_status(f.svc[0], &st);
	assert_true(st.snapshot_index > 0);
	uint8_t *before;
	size_t before_len;
	const struct cfsm *fsm = ctl_service_lock(f.svc[0]);
	assert_int_equal(cfsm_snapshot(fsm, &before, &before_len), 0);
	ctl_service_unlock(f.svc[0]);
	fx_stop(&f, 0);
	fx_start(&f, 0);
	fx_wait_leader(&f, 5000);
	/* Once the leader's barrier committed, the log is applied. */
	uint8_t *after;
	size_t after_len;
	fsm = ctl_service_lock(f.svc[0]);
	assert_int_equal(cfsm_snapshot(fsm, &after, &after_len), 0);
	ctl_service_unlock(f.svc[0]);
	assert_int_equal(before_len, after_len);
	assert_memory_equal(before, after, before_len);
	strata_free(before);
	strata_free(after);
	fx_close(&f);
}

struct change_arg {
	struct ctl_service *svc;
	uint64_t seen;
};

/* wait_change returns after an apply and times out otherwise. */
static void test_ctl_service_wait_change(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1);
	fx_start(&f, 0);
	fx_wait_leader(&f, 5000);
	uint64_t seen = 0;
	ctl_service_wait_change(f.svc[0], &seen, 10); /* catch up */
	uint64_t first = seen;
	ctl_service_wait_change(f.svc[0], &seen, 50);
	assert_int_equal(seen, first); /* nothing happened */
	assert_int_equal(
	        ctl_service_propose_sync(f.svc[0], scope_cmd("y"), NULL), 0);
	ctl_service_wait_change(f.svc[0], &seen, 1000);
	assert_true(seen > first);
	fx_close(&f);
}

#ifdef STRATA_LIBRAFT_FAULTS
struct failed_arg {
	struct ctl_service *svc;
	bool want; /* log_failed wanted */
};

static bool log_failed_is(void *arg)
{
	struct failed_arg *a = arg;
	struct ctl_status st;
	ctl_service_status(a->svc, &st);
	return st.log_failed == a->want &&
	       (a->want || st.role == RAFT_GROUP_FOLLOWER);
}

struct caught_arg {
	struct ctl_service *svc;
	size_t scopes;
};

static bool caught_up(void *arg)
{
	struct caught_arg *a = arg;
	return scope_count(a->svc) == a->scopes;
}

/* A follower whose Raft log write fails leaves the group (libraft patch
 * 12); the others go on. It answers reads with why it cannot and when it
 * comes back, restarts itself recover_ms later without a process
 * restart, reloads its log and catches up with what it missed. */
static void test_ctl_service_heals_failed_log(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 3);
	f.recover_ms = 500;
	for (unsigned i = 0; i < 3; i++) {
		fx_start(&f, i);
	}
	unsigned l = fx_wait_leader(&f, 10000);
	unsigned v = (l + 1) % 3; /* the follower whose disk fails */
	char in[32];
	snprintf(in, sizeof(in), "/n%u/", v + 1);
	assert_int_equal(
	        ctl_service_propose_sync(f.svc[l], scope_cmd("before"), NULL),
	        0);
	libraft_faults_fail_write_in(in, 1);
	char name[32];
	size_t scopes = 1;
	struct libraft_faults_record rec = {0};
	for (int i = 0; i < 200 && !rec.failed; i++) {
		snprintf(name, sizeof(name), "during-%d", i);
		assert_int_equal(ctl_service_propose_sync(
		                         f.svc[l], scope_cmd(name), NULL),
		                 0); /* the other two are a majority */
		scopes++;
		libraft_faults_get(&rec);
	}
	libraft_faults_fail_write(0);
	if (rec.completed == 0) {
		fx_close(&f);
		print_message("no async I/O under /tmp: test not exercised\n");
		skip();
	}
	assert_true(rec.failed);
	struct failed_arg fa = {.svc = f.svc[v], .want = true};
	assert_true(fx_eventually(log_failed_is, &fa, 5000));

	/* Out of the group: reads say why, and when it comes back. */
	struct ctl_status st;
	ctl_service_status(f.svc[v], &st);
	assert_true(st.log_failed);
	Strata__V1__ListScopesRequest sq =
	        STRATA__V1__LIST_SCOPES_REQUEST__INIT;
	struct fx_reply r;
	fx_call(f.api[v], STRATA__V1__CONTROLLER_METHOD__CTL_LIST_SCOPES,
	        &sq.base, &r);
	assert_int_equal(r.code, STRATA_EUNAVAIL);
	if (strstr(r.msg, "is out of its Raft group") == NULL &&
	    strstr(r.msg, "is restarting its Raft replica") == NULL) {
		fail_msg("unexpected message: %s", r.msg);
	}
	assert_non_null(strstr(r.msg, f.dir));
	fx_reply_free(&r);

	/* The others take writes meanwhile. */
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "meanwhile-%d", i);
		assert_int_equal(ctl_service_propose_sync(
		                         f.svc[l], scope_cmd(name), NULL),
		                 0);
		scopes++;
	}
	/* Restarted in-process: back in the group with every scope. */
	fa.want = false;
	assert_true(fx_eventually(log_failed_is, &fa, 10000));
	struct caught_arg ca = {.svc = f.svc[v], .scopes = scopes};
	assert_true(fx_eventually(caught_up, &ca, 10000));
	assert_int_equal(scope_count(f.svc[l]), scopes);
	fx_close(&f);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ctl_members_parse_ok),
	        cmocka_unit_test(test_ctl_members_parse_errors),
	        cmocka_unit_test(test_ctl_service_start_not_member),
	        cmocka_unit_test(test_ctl_service_propose_applies),
	        cmocka_unit_test(test_ctl_service_wait),
	        cmocka_unit_test(test_ctl_service_restart_and_snapshots),
	        cmocka_unit_test(test_ctl_service_wait_change),
#ifdef STRATA_LIBRAFT_FAULTS
	        cmocka_unit_test(test_ctl_service_heals_failed_log),
#endif
	};
	return cmocka_run_group_tests_name("controller_service", tests, NULL,
	                                   NULL);
}
