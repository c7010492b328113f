/* Unit tests for controller/fsm.c: dispatch, snapshot/restore, bad input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "tests/lib/oom.h"
#include "tests/unit/controller/cfsm_helpers.h"

#define E(epoch, n) (((uint64_t)(epoch) << 32) | (n))

/* A state touching every part of the FSM, one workflow left running. */
static void build_rich(struct cfsm *f)
{
	assert_int_equal(h_create_scope(f, "a"), 0);
	assert_int_equal(h_create_scope(f, "b"), 0);
	const char *tags[] = {"t2", "t1", "t2", NULL};
	assert_int_equal(h_create_stream_only(f, "a", "tagged", 2, tags), 0);
	assert_int_equal(h_finish(f, h_res.workflow_id), 0);
	assert_int_equal(h_create_stream(f, "a", "s", 1), 0);
	uint64_t seal[] = {E(0, 0)};
	double lo[] = {0, 0.5}, hi[] = {0.5, 1};
	assert_int_equal(h_scale(f, "a", "s", seal, 1, lo, hi, 2), 0);
	assert_int_equal(h_create_stream(f, "b", "x", 3), 0);
	assert_int_equal(h_seal_only(f, "b", "x"), 0); /* left running */
	assert_int_equal(h_register(f, "n1", 0, 5000), 0);
	assert_int_equal(h_register(f, "n2", 0, 5000), 0);

	Strata__V1__CreateTxnRequest tr = STRATA__V1__CREATE_TXN_REQUEST__INIT;
	Strata__V1__CreateTxnCmd tc = STRATA__V1__CREATE_TXN_CMD__INIT;
	tr.scope = "a";
	tr.stream = "s";
	tr.lease_ms = 10000;
	tc.request = &tr;
	tc.now_ms = 50;
	Strata__V1__ControllerCommand c = STRATA__V1__CONTROLLER_COMMAND__INIT;
	c.command_case = STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_TXN;
	c.create_txn = &tc;
	assert_int_equal(h_apply(f, &c), 0);

	Strata__V1__ReaderGroupStream rs =
	        STRATA__V1__READER_GROUP_STREAM__INIT;
	Strata__V1__ReaderGroupStream *rsp = &rs;
	Strata__V1__ReaderGroupConfig rc =
	        STRATA__V1__READER_GROUP_CONFIG__INIT;
	Strata__V1__CreateReaderGroupRequest rr =
	        STRATA__V1__CREATE_READER_GROUP_REQUEST__INIT;
	Strata__V1__CreateReaderGroupCmd rcmd =
	        STRATA__V1__CREATE_READER_GROUP_CMD__INIT;
	rs.stream = "s";
	rc.name = "rg";
	rc.n_streams = 1;
	rc.streams = &rsp;
	rr.scope = "a";
	rr.config = &rc;
	rcmd.request = &rr;
	c.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_READER_GROUP;
	c.create_reader_group = &rcmd;
	assert_int_equal(h_apply(f, &c), 0);
}

/* init rejects 0 and too many containers with a message. */
static void test_cfsm_init_rejects_bad_container_count(void **state)
{
	(void)state;
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 0, err), STRATA_EINVAL);
	assert_non_null(strstr(err, "container count 0"));
	assert_int_equal(cfsm_init(&f, CFSM_MAX_CONTAINERS + 1, err),
	                 STRATA_EINVAL);
	assert_int_equal(cfsm_init(&f, 1, err), 0);
	cfsm_close(&f);
}

/* snapshot -> restore -> snapshot yields the same bytes and answers. */
static void test_cfsm_snapshot_restore_round_trip(void **state)
{
	(void)state;
	struct cfsm f, g;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 8, err), 0);
	assert_int_equal(cfsm_init(&g, 8, err), 0);
	build_rich(&f);
	size_t len;
	uint8_t *snap = h_snap(&f, &len);
	assert_int_equal(cfsm_restore(&g, snap, len, err), 0);
	assert_true(h_same(&g, snap, len));
	strata_free(snap);

	/* Both continue identically. */
	assert_int_equal(h_finish(&f, 5), 0);
	assert_int_equal(h_finish(&g, 5), 0);
	assert_int_equal(h_register(&f, "n3", 10, 5000), 0);
	assert_int_equal(h_register(&g, "n3", 10, 5000), 0);
	snap = h_snap(&f, &len);
	assert_true(h_same(&g, snap, len));
	strata_free(snap);
	Strata__V1__ListStreamsReply *ls;
	assert_int_equal(cfsm_list_streams(&g, "a", "t1", &ls, err), 0);
	assert_int_equal(ls->n_streams, 1);
	assert_string_equal(ls->streams[0], "tagged");
	cfsm_msg_free(ls);
	cfsm_close(&f);
	cfsm_close(&g);
}

static int init_cluster(struct cfsm *f, const char *id, uint32_t count)
{
	Strata__V1__InitClusterCmd ic = STRATA__V1__INIT_CLUSTER_CMD__INIT;
	Strata__V1__ControllerCommand c = STRATA__V1__CONTROLLER_COMMAND__INIT;
	ic.cluster_id = (char *)id;
	ic.container_count = count;
	c.command_case = STRATA__V1__CONTROLLER_COMMAND__COMMAND_INIT_CLUSTER;
	c.init_cluster = &ic;
	return h_apply(f, &c);
}

/* The first InitClusterCmd names the cluster; later ones change nothing;
 * a replica with another container count learns that it is wrong, from
 * the entry that named the cluster only; the id survives a snapshot. */
static void test_cfsm_init_cluster(void **state)
{
	(void)state;
	struct cfsm f, g, h;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 4, err), 0);
	assert_string_equal(cfsm_cluster_id(&f), "");
	assert_int_equal(init_cluster(&f, "", 4), STRATA_EINVAL);
	assert_int_equal(init_cluster(&f, "ab12", 0), STRATA_EINVAL);
	assert_string_equal(cfsm_cluster_id(&f), "");
	assert_int_equal(init_cluster(&f, "ab12", 4), 0);
	assert_int_equal(init_cluster(&f, "cd34", 2), 0);
	assert_string_equal(cfsm_cluster_id(&f), "ab12");
	assert_int_equal(cfsm_count_conflict(&f), 0);

	/* Replayed by a replica configured with 2 containers. */
	assert_int_equal(cfsm_init(&g, 2, err), 0);
	assert_int_equal(init_cluster(&g, "ab12", 4), 0);
	assert_string_equal(cfsm_cluster_id(&g), "ab12");
	assert_int_equal(cfsm_count_conflict(&g), 4);
	cfsm_close(&g);

	size_t len;
	uint8_t *snap = h_snap(&f, &len);
	assert_int_equal(cfsm_init(&h, 4, err), 0);
	assert_int_equal(cfsm_restore(&h, snap, len, err), 0);
	assert_string_equal(cfsm_cluster_id(&h), "ab12");
	strata_free(snap);
	cfsm_close(&h);
	cfsm_close(&f);
}

/* Garbage, a wrong container count or an inconsistent state is refused
 * and the state stays. */
static void test_cfsm_restore_rejects_bad_snapshots(void **state)
{
	(void)state;
	struct cfsm f, g;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 8, err), 0);
	assert_int_equal(cfsm_init(&g, 4, err), 0);
	build_rich(&f);
	size_t len, glen;
	uint8_t *snap = h_snap(&f, &len);
	uint8_t *gsnap = h_snap(&g, &glen);
	assert_int_equal(cfsm_restore(&g, snap, len, err), STRATA_ECONFIG);
	assert_non_null(strstr(err, "8 containers"));
	uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	assert_int_equal(cfsm_restore(&g, junk, sizeof(junk), err),
	                 STRATA_EPROTO);
	/* Version 2 decodes but is refused. */
	Strata__V1__ControllerState st = STRATA__V1__CONTROLLER_STATE__INIT;
	st.version = 2;
	st.container_count = 4;
	uint8_t buf[64];
	size_t n = strata__v1__controller_state__pack(&st, buf);
	assert_int_equal(cfsm_restore(&g, buf, n, err), STRATA_ECORRUPT);
	assert_true(h_same(&g, gsnap, glen));
	strata_free(snap);
	strata_free(gsnap);
	cfsm_close(&f);
	cfsm_close(&g);
}

/* A command without its request is EPROTO, not a crash. */
static void test_cfsm_apply_missing_request_is_eproto(void **state)
{
	(void)state;
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 4, err), 0);
	Strata__V1__CreateStreamCmd cs = STRATA__V1__CREATE_STREAM_CMD__INIT;
	Strata__V1__ControllerCommand c = STRATA__V1__CONTROLLER_COMMAND__INIT;
	c.command_case = STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_STREAM;
	c.create_stream = &cs;
	assert_int_equal(h_apply(&f, &c), STRATA_EPROTO);
	c.command_case = STRATA__V1__CONTROLLER_COMMAND__COMMAND__NOT_SET;
	assert_int_equal(h_apply(&f, &c), STRATA_EPROTO);
	cfsm_close(&f);
}

/* Random and bit-flipped bytes never crash; a rejection changes nothing.
 * STRATA_TEST_SEED overrides the seed. */
static void test_cfsm_apply_random_bytes_change_nothing(void **state)
{
	(void)state;
	const char *env = getenv("STRATA_TEST_SEED");
	unsigned seed = env != NULL ? (unsigned)strtoul(env, NULL, 10) : 12345;
	printf("seed %u (set STRATA_TEST_SEED to replay)\n", seed);
	srand(seed);
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 8, err), 0);
	build_rich(&f);

	/* Valid commands to mutate. */
	uint8_t valid[4][256];
	size_t vlen[4];
	Strata__V1__SealStreamRequest sr =
	        STRATA__V1__SEAL_STREAM_REQUEST__INIT;
	Strata__V1__SealStreamCmd sc = STRATA__V1__SEAL_STREAM_CMD__INIT;
	sr.scope = "a";
	sr.stream = "s";
	sc.request = &sr;
	Strata__V1__ControllerCommand c = STRATA__V1__CONTROLLER_COMMAND__INIT;
	c.command_case = STRATA__V1__CONTROLLER_COMMAND__COMMAND_SEAL_STREAM;
	c.seal_stream = &sc;
	vlen[0] = strata__v1__controller_command__pack(&c, valid[0]);
	Strata__V1__WorkflowStepDone d = STRATA__V1__WORKFLOW_STEP_DONE__INIT;
	d.workflow_id = 5;
	d.step = STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_SEAL_SEGMENTS;
	c.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_WORKFLOW_STEP_DONE;
	c.workflow_step_done = &d;
	vlen[1] = strata__v1__controller_command__pack(&c, valid[1]);
	Strata__V1__TickCmd t = STRATA__V1__TICK_CMD__INIT;
	t.now_ms = 1;
	c.command_case = STRATA__V1__CONTROLLER_COMMAND__COMMAND_TICK;
	c.tick = &t;
	vlen[2] = strata__v1__controller_command__pack(&c, valid[2]);
	memcpy(valid[3], valid[0], vlen[0]);
	vlen[3] = vlen[0];

	size_t len;
	uint8_t *snap = h_snap(&f, &len);
	uint8_t buf[256];
	int rejected = 0;
	for (int i = 0; i < 4000; i++) {
		size_t n;
		if (i % 2 == 0) {
			n = (size_t)rand() % sizeof(buf);
			for (size_t k = 0; k < n; k++) {
				buf[k] = (uint8_t)rand();
			}
		} else {
			int v = rand() % 4;
			n = vlen[v];
			memcpy(buf, valid[v], n);
			for (int flips = 1 + rand() % 3; flips > 0; flips--) {
				buf[(size_t)rand() % n] ^=
				        (uint8_t)(1u << (rand() % 8));
			}
		}
		int rc = cfsm_apply(&f, buf, n, &h_res);
		if (rc != 0) {
			rejected++;
			assert_true(h_res.message[0] != '\0');
			assert_true(h_same(&f, snap, len));
		} else {
			strata_free(snap);
			snap = h_snap(&f, &len);
		}
	}
	assert_true(rejected > 1000);
	strata_free(snap);
	cfsm_close(&f);
}

/* Out of memory at any allocation of a command leaves the state as it
 * was; the same command then succeeds. */
static void test_cfsm_apply_oom_changes_nothing(void **state)
{
	(void)state;
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 8, err), 0);
	build_rich(&f);
	assert_int_equal(h_register(&f, "n0", 0, 5000), 0);
	for (int which = 0; which < 5; which++) {
		for (long n = 1;; n++) {
			size_t len;
			uint8_t *snap = h_snap(&f, &len);
			oom_install(n);
			int rc;
			uint64_t seal[] = {E(1, 1)};
			double lo[] = {0, 0.25}, hi[] = {0.25, 0.5};
			switch (which) {
			case 0:
				rc = h_create_stream_only(&f, "b", "new", 5,
				                          NULL);
				break;
			case 1:
				rc = h_scale_only(&f, "a", "s", seal, 1, lo, hi,
				                  2);
				break;
			case 2:
				rc = h_step(&f, 7);
				break;
			case 3:
				rc = h_register(&f, "n9", 0, 5000);
				break;
			default:
				rc = h_tick(&f, 6000);
				break;
			}
			oom_uninstall();
			if (rc == 0) {
				strata_free(snap);
				break;
			}
			/* Never EPROTO: a replica that rejected a command
			 * others applied would diverge. */
			assert_int_equal(rc, STRATA_ENOMEM);
			assert_true(h_same(&f, snap, len));
			strata_free(snap);
			assert_true(n < 1000);
		}
	}
	cfsm_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cfsm_init_rejects_bad_container_count),
	        cmocka_unit_test(test_cfsm_snapshot_restore_round_trip),
	        cmocka_unit_test(test_cfsm_init_cluster),
	        cmocka_unit_test(test_cfsm_restore_rejects_bad_snapshots),
	        cmocka_unit_test(test_cfsm_apply_missing_request_is_eproto),
	        cmocka_unit_test(test_cfsm_apply_random_bytes_change_nothing),
	        cmocka_unit_test(test_cfsm_apply_oom_changes_nothing),
	};
	return cmocka_run_group_tests_name("controller_fsm", tests, NULL, NULL);
}
