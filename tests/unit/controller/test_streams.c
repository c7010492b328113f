/* Unit tests for controller/streams.c: scopes, stream update and queries. */
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
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	cfsm_close(*state);
	return 0;
}

static int update(struct cfsm *f, const char *stream, uint32_t n)
{
	Strata__V1__FixedScaling fx = STRATA__V1__FIXED_SCALING__INIT;
	Strata__V1__ScalingPolicy sp = STRATA__V1__SCALING_POLICY__INIT;
	Strata__V1__StreamConfig cfg = STRATA__V1__STREAM_CONFIG__INIT;
	Strata__V1__UpdateStreamRequest r =
	        STRATA__V1__UPDATE_STREAM_REQUEST__INIT;
	Strata__V1__UpdateStreamCmd c = STRATA__V1__UPDATE_STREAM_CMD__INIT;
	char *tags[] = {"new"};
	fx.min_segments = n;
	sp.policy_case = STRATA__V1__SCALING_POLICY__POLICY_FIXED;
	sp.fixed = &fx;
	cfg.scaling = &sp;
	cfg.tags = tags;
	cfg.n_tags = 1;
	r.scope = "sc";
	r.stream = (char *)stream;
	r.config = &cfg;
	c.request = &r;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_UPDATE_STREAM;
	cmd.update_stream = &c;
	return h_apply(f, &cmd);
}

/* Scopes: create, duplicate, bad name, list sorted, delete rules. */
static void test_streams_scope_lifecycle(void **state)
{
	struct cfsm *f = *state;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(h_create_scope(f, "zeta"), 0);
	assert_int_equal(h_create_scope(f, "alpha"), 0);
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(h_create_scope(f, "alpha"), STRATA_EEXIST);
	assert_non_null(strstr(h_res.message, "alpha"));
	assert_int_equal(h_create_scope(f, "bad name"), STRATA_EBADNAME);
	assert_int_equal(h_create_scope(f, "_internal"), STRATA_EBADNAME);
	assert_int_equal(h_delete_scope(f, "missing"), STRATA_ENOENT);
	assert_int_equal(h_create_stream(f, "zeta", "s", 1), 0);
	strata_free(snap);
	snap = h_snap(f, &len);
	assert_int_equal(h_delete_scope(f, "zeta"), STRATA_ENOTEMPTY);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	Strata__V1__ListScopesReply *ls;
	assert_int_equal(cfsm_list_scopes(f, &ls, err), 0);
	assert_int_equal(ls->n_scopes, 2);
	assert_string_equal(ls->scopes[0], "alpha");
	assert_string_equal(ls->scopes[1], "zeta");
	cfsm_msg_free(ls);
	assert_int_equal(h_delete_scope(f, "alpha"), 0);
}

/* Streams: duplicates, unknown scope, listing (by tag), get. */
static void test_streams_create_list_get(void **state)
{
	struct cfsm *f = *state;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(h_create_scope(f, "sc"), 0);
	const char *tags[] = {"blue", NULL};
	assert_int_equal(h_create_stream_only(f, "sc", "b", 2, tags), 0);
	assert_int_equal(h_finish(f, h_res.workflow_id), 0);
	assert_int_equal(h_create_stream(f, "sc", "a", 1), 0);
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(h_create_stream_only(f, "sc", "a", 1, NULL),
	                 STRATA_EEXIST);
	assert_int_equal(h_create_stream_only(f, "nope", "a", 1, NULL),
	                 STRATA_ENOENT);
	assert_int_equal(h_create_stream_only(f, "sc", "c", 0, NULL),
	                 STRATA_EINVAL);
	assert_int_equal(h_create_stream_only(f, "sc", "c", 5000, NULL),
	                 STRATA_EINVAL);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	Strata__V1__ListStreamsReply *ls;
	assert_int_equal(cfsm_list_streams(f, "sc", NULL, &ls, err), 0);
	assert_int_equal(ls->n_streams, 2);
	assert_string_equal(ls->streams[0], "a");
	cfsm_msg_free(ls);
	assert_int_equal(cfsm_list_streams(f, "sc", "blue", &ls, err), 0);
	assert_int_equal(ls->n_streams, 1);
	assert_string_equal(ls->streams[0], "b");
	cfsm_msg_free(ls);
	assert_int_equal(cfsm_list_streams(f, "x", NULL, &ls, err),
	                 STRATA_ENOENT);
	/* Paged: at least one name a page, then as many as fit. */
	assert_int_equal(cfsm_list_streams_page(f, "sc", NULL, "", 1, &ls, err),
	                 0);
	assert_int_equal(ls->n_streams, 1);
	assert_string_equal(ls->streams[0], "a");
	assert_true(ls->more);
	cfsm_msg_free(ls);
	assert_int_equal(
	        cfsm_list_streams_page(f, "sc", NULL, "a", 1, &ls, err), 0);
	assert_int_equal(ls->n_streams, 1);
	assert_string_equal(ls->streams[0], "b");
	assert_false(ls->more);
	cfsm_msg_free(ls);
	assert_int_equal(/* after a name that is not there */
	                 cfsm_list_streams_page(f, "sc", NULL, "aa", 100, &ls,
	                                        err),
	                 0);
	assert_int_equal(ls->n_streams, 1);
	assert_string_equal(ls->streams[0], "b");
	cfsm_msg_free(ls);
	assert_int_equal(cfsm_list_streams_page(f, "sc", NULL, "", 8, &ls, err),
	                 0);
	assert_int_equal(ls->n_streams, 2); /* 4 bytes each */
	assert_false(ls->more);
	cfsm_msg_free(ls);
	Strata__V1__StreamInfo *si;
	assert_int_equal(cfsm_get_stream(f, "sc", "b", &si, err), 0);
	assert_int_equal(si->state,
	                 STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE);
	assert_int_equal(si->config->scaling->fixed->min_segments, 2);
	cfsm_msg_free(si);
	assert_int_equal(cfsm_get_stream(f, "sc", "zz", &si, err),
	                 STRATA_ENOENT);
	assert_non_null(strstr(err, "sc/zz"));
}

/* Update replaces the config; busy, sealed and invalid are refused. */
static void test_streams_update_rules(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(h_create_scope(f, "sc"), 0);
	assert_int_equal(h_create_stream_only(f, "sc", "s", 1, NULL), 0);
	uint64_t wf = h_res.workflow_id;
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(update(f, "s", 2), STRATA_EBUSY);
	assert_int_equal(update(f, "missing", 2), STRATA_ENOENT);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	assert_int_equal(h_finish(f, wf), 0);
	snap = h_snap(f, &len);
	assert_int_equal(update(f, "s", 0), STRATA_EINVAL);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	assert_int_equal(update(f, "s", 4), 0);
	const Strata__V1__StreamRecord *s = cfsm_find_stream(f, "sc", "s");
	assert_int_equal(s->config->scaling->fixed->min_segments, 4);
	assert_string_equal(s->config->tags[0], "new");
	assert_int_equal(h_seal(f, "sc", "s"), 0);
	assert_int_equal(update(f, "s", 2), STRATA_ESEALED);
}

/* Current segments carry containers and names; cuts are validated. */
static void test_streams_segment_queries(void **state)
{
	struct cfsm *f = *state;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(h_create_scope(f, "sc"), 0);
	assert_int_equal(h_create_stream(f, "sc", "s", 4), 0);
	Strata__V1__SegmentsReply *r;
	assert_int_equal(cfsm_current_segments(f, "sc", "s", &r, err), 0);
	assert_int_equal(r->n_segments, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(r->segments[i]->container,
		                 cfsm_segment_container(f, "sc", "s", E(0, i)));
		assert_true(r->segments[i]->container < 16);
	}
	assert_string_equal(r->segments[3]->qualified_name, "sc/s/3.#epoch.0");
	cfsm_msg_free(r);
	/* Head of a never-truncated stream: epoch 0 at offset 0. */
	assert_int_equal(cfsm_segments_at_cut(f, "sc", "s", NULL, &r, err), 0);
	assert_int_equal(r->n_segments, 4);
	cfsm_msg_free(r);
	Strata__V1__SegmentOffset o[2] = {STRATA__V1__SEGMENT_OFFSET__INIT,
	                                  STRATA__V1__SEGMENT_OFFSET__INIT};
	Strata__V1__SegmentOffset *op[2] = {&o[0], &o[1]};
	Strata__V1__StreamCut cut = STRATA__V1__STREAM_CUT__INIT;
	cut.positions = op;
	cut.n_positions = 2;
	o[0].segment_id = E(0, 0);
	o[1].segment_id = E(0, 1);
	assert_int_equal(cfsm_segments_at_cut(f, "sc", "s", &cut, &r, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "does not cover"));
	assert_int_equal(cfsm_container_replicas(f, 16) == NULL, 1);
	assert_non_null(cfsm_container_replicas(f, 15));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_streams_scope_lifecycle,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_streams_create_list_get,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_streams_update_rules,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_streams_segment_queries,
	                                        setup, teardown),
	};
	return cmocka_run_group_tests_name("controller_streams", tests, NULL,
	                                   NULL);
}
