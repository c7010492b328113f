/* Unit tests for controller/api.c: the client API on in-process replicas
 * (writes, queries, validation, leadership rules, the RPC adapter). */
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
#include "raft/group.h"
#include "tests/lib/oom.h"
#include "tests/unit/controller/svc_fixture.h"

#define M(x) STRATA__V1__CONTROLLER_METHOD__CTL_##x

static uint64_t digest_of(struct ctl_api *api)
{
	Strata__V1__StateDigestRequest q =
	        STRATA__V1__STATE_DIGEST_REQUEST__INIT;
	struct fx_reply r;
	fx_call(api, M(GET_STATE_DIGEST), &q.base, &r);
	assert_int_equal(r.code, 0);
	Strata__V1__StateDigestReply *d =
	        fx_unpack(&r, &strata__v1__state_digest_reply__descriptor);
	uint64_t v = d->digest;
	rpc_pb_free(&d->base);
	fx_reply_free(&r);
	return v;
}

/* Scopes, streams, segments, workflows and reader groups through the API
 * of a single replica (no segment stores: workflows stay running). */
static void test_api_metadata_lifecycle(void **state)
{
	(void)state;
	struct fx f;
	struct fx_reply r;
	fx_init(&f, 1);
	fx_start(&f, 0);
	fx_wait_leader(&f, 5000);
	struct ctl_api *api = f.api[0];
	assert_int_equal(fx_create_scope(api, "sc"), 0);
	assert_int_equal(fx_create_scope(api, "sc"), STRATA_EEXIST);

	/* Create: the workflow waits for segment stores, so done=false. */
	Strata__V1__CreateStreamRequest cq =
	        STRATA__V1__CREATE_STREAM_REQUEST__INIT;
	Strata__V1__StreamConfig c = STRATA__V1__STREAM_CONFIG__INIT;
	Strata__V1__ScalingPolicy p = STRATA__V1__SCALING_POLICY__INIT;
	Strata__V1__FixedScaling fx = STRATA__V1__FIXED_SCALING__INIT;
	char *tags[] = {"blue"};
	fx.min_segments = 2;
	p.policy_case = STRATA__V1__SCALING_POLICY__POLICY_FIXED;
	p.fixed = &fx;
	c.scaling = &p;
	c.tags = tags;
	c.n_tags = 1;
	cq.scope = "sc";
	cq.stream = "st";
	cq.config = &c;
	fx_call(api, M(CREATE_STREAM), &cq.base, &r);
	assert_int_equal(r.code, 0);
	Strata__V1__ControllerReply *cr =
	        fx_unpack(&r, &strata__v1__controller_reply__descriptor);
	assert_int_equal(cr->code, 0);
	assert_true(cr->workflow_id > 0);
	assert_false(cr->done);
	assert_int_equal(cr->n_segment_ids, 2);
	uint64_t wf = cr->workflow_id;
	rpc_pb_free(&cr->base);
	fx_reply_free(&r);

	/* Queries. */
	Strata__V1__GetStreamRequest gq = STRATA__V1__GET_STREAM_REQUEST__INIT;
	gq.scope = "sc";
	gq.stream = "st";
	fx_call(api, M(GET_STREAM), &gq.base, &r);
	assert_int_equal(r.code, 0);
	Strata__V1__StreamInfo *si =
	        fx_unpack(&r, &strata__v1__stream_info__descriptor);
	assert_int_equal(si->state,
	                 STRATA__V1__STREAM_STATE__STREAM_STATE_CREATING);
	rpc_pb_free(&si->base);
	fx_reply_free(&r);

	Strata__V1__ListStreamsRequest lq =
	        STRATA__V1__LIST_STREAMS_REQUEST__INIT;
	lq.scope = "sc";
	lq.tag = "blue";
	fx_call(api, M(LIST_STREAMS), &lq.base, &r);
	Strata__V1__ListStreamsReply *ls =
	        fx_unpack(&r, &strata__v1__list_streams_reply__descriptor);
	assert_int_equal(ls->n_streams, 1);
	assert_string_equal(ls->streams[0], "st");
	rpc_pb_free(&ls->base);
	fx_reply_free(&r);
	lq.tag = "red";
	fx_call(api, M(LIST_STREAMS), &lq.base, &r);
	ls = fx_unpack(&r, &strata__v1__list_streams_reply__descriptor);
	assert_int_equal(ls->n_streams, 0);
	rpc_pb_free(&ls->base);
	fx_reply_free(&r);

	Strata__V1__ListScopesRequest sq =
	        STRATA__V1__LIST_SCOPES_REQUEST__INIT;
	fx_call(api, M(LIST_SCOPES), &sq.base, &r);
	Strata__V1__ListScopesReply *lsc =
	        fx_unpack(&r, &strata__v1__list_scopes_reply__descriptor);
	assert_int_equal(lsc->n_scopes, 1);
	rpc_pb_free(&lsc->base);
	fx_reply_free(&r);

	Strata__V1__GetSegmentsRequest segq =
	        STRATA__V1__GET_SEGMENTS_REQUEST__INIT;
	segq.scope = "sc";
	segq.stream = "st";
	fx_call(api, M(GET_CURRENT_SEGMENTS), &segq.base, &r);
	Strata__V1__SegmentsReply *sr =
	        fx_unpack(&r, &strata__v1__segments_reply__descriptor);
	assert_int_equal(sr->n_segments, 2);
	rpc_pb_free(&sr->base);
	fx_reply_free(&r);
	fx_call(api, M(GET_SEGMENTS_AT_CUT), &segq.base, &r);
	assert_int_equal(r.code, 0);
	fx_reply_free(&r);

	Strata__V1__GetSuccessorsRequest suq =
	        STRATA__V1__GET_SUCCESSORS_REQUEST__INIT;
	suq.scope = "sc";
	suq.stream = "st";
	suq.segment_id = 0;
	fx_call(api, M(GET_SUCCESSORS), &suq.base, &r);
	assert_int_equal(r.code, 0);
	fx_reply_free(&r);

	/* Endpoint: known segment, no store assigned yet. */
	Strata__V1__GetSegmentEndpointRequest eq =
	        STRATA__V1__GET_SEGMENT_ENDPOINT_REQUEST__INIT;
	eq.scope = "sc";
	eq.stream = "st";
	eq.segment_id = 1;
	fx_call(api, M(GET_SEGMENT_ENDPOINT), &eq.base, &r);
	assert_int_equal(r.code, 0);
	Strata__V1__SegmentEndpointReply *er =
	        fx_unpack(&r, &strata__v1__segment_endpoint_reply__descriptor);
	assert_string_equal(er->qualified_name, "sc/st/1.#epoch.0");
	assert_string_equal(er->client_url, "");
	assert_false(er->leader_known);
	assert_true(er->container < 4);
	rpc_pb_free(&er->base);
	fx_reply_free(&r);
	eq.segment_id = 99;
	fx_call(api, M(GET_SEGMENT_ENDPOINT), &eq.base, &r);
	assert_int_equal(r.code, STRATA_ENOENT);
	assert_non_null(strstr(r.msg, "99"));
	fx_reply_free(&r);

	/* Workflow status. */
	Strata__V1__GetWorkflowRequest wq =
	        STRATA__V1__GET_WORKFLOW_REQUEST__INIT;
	wq.workflow_id = wf;
	fx_call(api, M(GET_WORKFLOW), &wq.base, &r);
	Strata__V1__WorkflowStatus *ws =
	        fx_unpack(&r, &strata__v1__workflow_status__descriptor);
	assert_true(ws->running);
	assert_true(ws->issued);
	assert_non_null(ws->workflow);
	assert_string_equal(ws->workflow->stream, "st");
	rpc_pb_free(&ws->base);
	fx_reply_free(&r);
	wq.workflow_id = wf + 10;
	fx_call(api, M(GET_WORKFLOW), &wq.base, &r);
	ws = fx_unpack(&r, &strata__v1__workflow_status__descriptor);
	assert_false(ws->running);
	assert_false(ws->issued);
	rpc_pb_free(&ws->base);
	fx_reply_free(&r);

	/* A busy stream refuses another workflow. */
	Strata__V1__SealStreamRequest seal =
	        STRATA__V1__SEAL_STREAM_REQUEST__INIT;
	seal.scope = "sc";
	seal.stream = "st";
	fx_call(api, M(SEAL_STREAM), &seal.base, &r);
	assert_int_equal(r.code, STRATA_EBUSY);
	cr = fx_unpack(&r, &strata__v1__controller_reply__descriptor);
	assert_int_equal(cr->code, STRATA_EBUSY);
	assert_string_equal(cr->message, r.msg);
	rpc_pb_free(&cr->base);
	fx_reply_free(&r);

	/* Reader groups. */
	Strata__V1__CreateReaderGroupRequest rq =
	        STRATA__V1__CREATE_READER_GROUP_REQUEST__INIT;
	Strata__V1__ReaderGroupConfig rg =
	        STRATA__V1__READER_GROUP_CONFIG__INIT;
	Strata__V1__ReaderGroupStream rs =
	        STRATA__V1__READER_GROUP_STREAM__INIT;
	Strata__V1__ReaderGroupStream *rsp[] = {&rs};
	rs.scope = "sc";
	rs.stream = "st";
	rg.name = "rg1";
	rg.streams = rsp;
	rg.n_streams = 1;
	rq.scope = "sc";
	rq.config = &rg;
	fx_call(api, M(CREATE_READER_GROUP), &rq.base, &r);
	assert_int_equal(r.code, 0);
	/* Its state stream _RGrg1 (one segment, id 0) is being created. */
	cr = fx_unpack(&r, &strata__v1__controller_reply__descriptor);
	assert_true(cr->workflow_id > 0);
	assert_false(cr->done);
	assert_int_equal(cr->n_segment_ids, 1);
	assert_int_equal(cr->segment_ids[0], 0);
	rpc_pb_free(&cr->base);
	fx_reply_free(&r);
	gq.stream = "_RGrg1";
	fx_call(api, M(GET_STREAM), &gq.base, &r);
	assert_int_equal(r.code, 0);
	fx_reply_free(&r);
	Strata__V1__GetReaderGroupRequest grq =
	        STRATA__V1__GET_READER_GROUP_REQUEST__INIT;
	grq.scope = "sc";
	grq.name = "rg1";
	fx_call(api, M(GET_READER_GROUP), &grq.base, &r);
	Strata__V1__ReaderGroupConfig *got =
	        fx_unpack(&r, &strata__v1__reader_group_config__descriptor);
	assert_string_equal(got->name, "rg1");
	Strata__V1__UpdateReaderGroupRequest uq =
	        STRATA__V1__UPDATE_READER_GROUP_REQUEST__INIT;
	uq.scope = "sc";
	uq.config = got;
	got->checkpoint_interval_ms = 5000;
	struct fx_reply r2;
	fx_call(api, M(UPDATE_READER_GROUP), &uq.base, &r2);
	assert_int_equal(r2.code, 0);
	fx_reply_free(&r2);
	fx_call(api, M(UPDATE_READER_GROUP), &uq.base, &r2); /* stale */
	assert_int_equal(r2.code, STRATA_ECONFLICT);
	fx_reply_free(&r2);
	rpc_pb_free(&got->base);
	fx_reply_free(&r);
	Strata__V1__ListReaderGroupsRequest lrq =
	        STRATA__V1__LIST_READER_GROUPS_REQUEST__INIT;
	lrq.scope = "sc";
	fx_call(api, M(LIST_READER_GROUPS), &lrq.base, &r);
	Strata__V1__ListReaderGroupsReply *lrg = fx_unpack(
	        &r, &strata__v1__list_reader_groups_reply__descriptor);
	assert_int_equal(lrg->n_groups, 1);
	assert_int_equal(lrg->groups[0]->checkpoint_interval_ms, 5000);
	rpc_pb_free(&lrg->base);
	fx_reply_free(&r);
	Strata__V1__DeleteReaderGroupRequest drq =
	        STRATA__V1__DELETE_READER_GROUP_REQUEST__INIT;
	drq.scope = "sc";
	drq.name = "rg1";
	/* Not while its state stream is still being created. */
	fx_call(api, M(DELETE_READER_GROUP), &drq.base, &r);
	assert_int_equal(r.code, STRATA_EBUSY);
	assert_non_null(strstr(r.msg, "reader group sc/rg1"));
	fx_reply_free(&r);

	/* Unknown transaction. */
	Strata__V1__GetTxnRequest tq = STRATA__V1__GET_TXN_REQUEST__INIT;
	tq.scope = "sc";
	tq.stream = "st";
	tq.txn_id = 5;
	fx_call(api, M(GET_TXN), &tq.base, &r);
	assert_int_equal(r.code, STRATA_ENOENT);
	fx_reply_free(&r);
	fx_close(&f);
}

/* Bad requests answer a clear error and leave the state unchanged. */
static void test_api_rejections_change_nothing(void **state)
{
	(void)state;
	struct fx f;
	struct fx_reply r;
	fx_init(&f, 1);
	f.no_ticker = true; /* ticks would change the digest */
	fx_start(&f, 0);
	fx_wait_leader(&f, 5000);
	struct ctl_api *api = f.api[0];
	assert_int_equal(fx_create_scope(api, "sc"), 0);
	assert_int_equal(fx_create_stream(api, "sc", "st", 2), 0);
	uint64_t before = digest_of(api);

	assert_int_equal(fx_create_scope(api, "bad name"), STRATA_EBADNAME);
	assert_int_equal(fx_create_scope(api, "_internal"), STRATA_EBADNAME);
	assert_int_equal(fx_create_stream(api, "nope", "st", 1), STRATA_ENOENT);
	assert_int_equal(fx_create_stream(api, "sc", "st", 2), STRATA_EEXIST);
	assert_int_equal(fx_create_stream(api, "sc", "st2", 5000),
	                 STRATA_EINVAL);

	/* Unknown method. */
	fx_call(api, 9999, NULL, &r);
	assert_int_equal(r.code, STRATA_ENOTSUP);
	assert_non_null(strstr(r.msg, "9999"));
	fx_reply_free(&r);

	/* A scale with a range outside [0,1). */
	Strata__V1__ScaleStreamRequest bad_scale =
	        STRATA__V1__SCALE_STREAM_REQUEST__INIT;
	Strata__V1__KeyRange kr = STRATA__V1__KEY_RANGE__INIT;
	Strata__V1__KeyRange *krs[] = {&kr};
	uint64_t seal[] = {0};
	kr.low = 0.5;
	kr.high = 2.0;
	bad_scale.scope = "sc";
	bad_scale.stream = "st";
	bad_scale.seal_segments = seal;
	bad_scale.n_seal_segments = 1;
	bad_scale.new_ranges = krs;
	bad_scale.n_new_ranges = 1;
	fx_call(api, M(SCALE_STREAM), &bad_scale.base, &r);
	assert_true(r.code == STRATA_EINVAL || r.code == STRATA_EBUSY);
	assert_true(strlen(r.msg) > 0);
	fx_reply_free(&r);

	/* A reader group's state stream (_RG<name>) changes only with its
	 * group: the stream API refuses it, naming the stream. */
	Strata__V1__SealStreamRequest seal_rg =
	        STRATA__V1__SEAL_STREAM_REQUEST__INIT;
	seal_rg.scope = "sc";
	seal_rg.stream = "_RGreaders";
	fx_call(api, M(SEAL_STREAM), &seal_rg.base, &r);
	assert_int_equal(r.code, STRATA_EPERM);
	assert_non_null(strstr(r.msg, "sc/_RGreaders"));
	fx_reply_free(&r);
	Strata__V1__DeleteStreamRequest del_rg =
	        STRATA__V1__DELETE_STREAM_REQUEST__INIT;
	del_rg.scope = "sc";
	del_rg.stream = "_RGreaders";
	fx_call(api, M(DELETE_STREAM), &del_rg.base, &r);
	assert_int_equal(r.code, STRATA_EPERM);
	fx_reply_free(&r);
	bad_scale.stream = "_RGreaders";
	fx_call(api, M(SCALE_STREAM), &bad_scale.base, &r);
	assert_int_equal(r.code, STRATA_EPERM);
	fx_reply_free(&r);
	assert_int_equal(digest_of(api), before);
	fx_close(&f);
}

struct raw_out {
	int code;
	bool done;
	char msg[STRATA_ERRMSG_SIZE];
};

static void raw_done(void *arg, int code, const char *msg, const char *redirect,
                     const uint8_t *body, size_t len)
{
	(void)redirect;
	(void)body;
	(void)len;
	struct raw_out *o = arg;
	o->code = code;
	o->done = true;
	snprintf(o->msg, sizeof(o->msg), "%s", msg);
}

/* A body that does not parse is STRATA_EPROTO. */
static void test_api_malformed_body(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1);
	fx_start(&f, 0);
	fx_wait_leader(&f, 5000);
	uint8_t junk[] = {0x0a, 0x7f, 0x01}; /* string field longer than body */
	struct raw_out o = {0};
	ctl_api_dispatch(f.api[0], M(CREATE_SCOPE), junk, sizeof(junk),
	                 raw_done, &o);
	assert_true(o.done);
	assert_int_equal(o.code, STRATA_EPROTO);
	o.done = false;
	ctl_api_dispatch(f.api[0], M(GET_STREAM), junk, sizeof(junk), raw_done,
	                 &o);
	assert_true(o.done);
	assert_int_equal(o.code, STRATA_EPROTO);
	fx_close(&f);
}

/* Each write answers a body that does not parse with its method and
 * request type, and each stream write refuses a reader group's state
 * stream, with the exact messages clients see. */
static void test_api_write_refusal_messages(void **state)
{
	(void)state;
	static const struct {
		uint32_t method;
		const char *request;    /* full name of the request message */
		bool refuses_rg_stream; /* the stream _RG<group> is refused */
	} w[] = {
	        {M(CREATE_SCOPE), "strata.v1.CreateScopeRequest", false},
	        {M(DELETE_SCOPE), "strata.v1.DeleteScopeRequest", false},
	        {M(CREATE_STREAM), "strata.v1.CreateStreamRequest", false},
	        {M(UPDATE_STREAM), "strata.v1.UpdateStreamRequest", true},
	        {M(SEAL_STREAM), "strata.v1.SealStreamRequest", true},
	        {M(TRUNCATE_STREAM), "strata.v1.TruncateStreamRequest", true},
	        {M(DELETE_STREAM), "strata.v1.DeleteStreamRequest", true},
	        {M(SCALE_STREAM), "strata.v1.ScaleStreamRequest", true},
	        {M(CREATE_READER_GROUP), "strata.v1.CreateReaderGroupRequest",
	         false},
	        {M(UPDATE_READER_GROUP), "strata.v1.UpdateReaderGroupRequest",
	         false},
	        {M(DELETE_READER_GROUP), "strata.v1.DeleteReaderGroupRequest",
	         false},
	        {M(UPDATE_RETENTION_CUT), "strata.v1.UpdateRetentionCutRequest",
	         false},
	        {M(CREATE_TXN), "strata.v1.CreateTxnRequest", false},
	        {M(PING_TXN), "strata.v1.PingTxnRequest", false},
	        {M(COMMIT_TXN), "strata.v1.EndTxnRequest", false},
	        {M(ABORT_TXN), "strata.v1.EndTxnRequest", false},
	};
	struct fx f;
	fx_init(&f, 1);
	f.no_ticker = true; /* ticks would change the digest */
	fx_start(&f, 0);
	fx_wait_leader(&f, 5000);
	struct ctl_api *api = f.api[0];
	uint64_t before = digest_of(api);
	uint8_t junk[] = {0x0a, 0x7f, 0x01}; /* string field longer than body */
	/* Every stream request has scope = 1, stream = 2: one body fits all. */
	Strata__V1__SealStreamRequest rg =
	        STRATA__V1__SEAL_STREAM_REQUEST__INIT;
	rg.scope = "sc";
	rg.stream = "_RGg";
	char want[STRATA_ERRMSG_SIZE];
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		const char *name = ctl_api_method_name(w[i].method);
		struct raw_out o = {0};
		ctl_api_dispatch(api, w[i].method, junk, sizeof(junk), raw_done,
		                 &o);
		assert_true(o.done);
		assert_int_equal(o.code, STRATA_EPROTO);
		snprintf(want, sizeof(want),
		         "%s: the 3-byte body is not a %s; check the client's "
		         "protocol version",
		         name, w[i].request);
		assert_string_equal(o.msg, want);
		if (!w[i].refuses_rg_stream) {
			continue;
		}
		struct fx_reply r;
		fx_call(api, w[i].method, &rg.base, &r);
		assert_int_equal(r.code, STRATA_EPERM);
		snprintf(
		        want, sizeof(want),
		        "%s: stream sc/_RGg is internal (the state of a reader "
		        "group); it changes only with its reader group: "
		        "update, reset or delete the group instead",
		        name);
		assert_string_equal(r.msg, want);
		fx_reply_free(&r);
	}
	assert_int_equal(digest_of(api), before);
	fx_close(&f);
}

static bool follower_knows_leader(void *arg)
{
	struct ctl_service *s = arg;
	struct ctl_status st;
	ctl_service_status(s, &st);
	return st.leader_id != 0;
}

/* A follower redirects writes to the leader's client URL and serves
 * reads once it applied a recent leader tick; with no leader, both are
 * STRATA_EUNAVAIL; RPC clients follow the redirect. */
static void test_api_follower_redirects(void **state)
{
	(void)state;
	struct fx f;
	struct fx_reply r;
	char err[STRATA_ERRMSG_SIZE];
	fx_init(&f, 2);
	f.read_staleness_ms = 500;
	/* Only one of two: no majority, no leader. */
	fx_start(&f, 0);
	fx_sleep(500);
	assert_int_equal(fx_create_scope(f.api[0], "sc"), STRATA_EUNAVAIL);
	Strata__V1__ListScopesRequest lq =
	        STRATA__V1__LIST_SCOPES_REQUEST__INIT;
	fx_call(f.api[0], M(LIST_SCOPES), &lq.base, &r);
	assert_int_equal(r.code, STRATA_EUNAVAIL);
	assert_non_null(strstr(r.msg, "fewer than a majority"));
	fx_reply_free(&r);
	digest_of(f.api[0]); /* served in any role */

	fx_start(&f, 1);
	unsigned leader = fx_wait_leader(&f, 10000);
	unsigned follower = 1 - leader;
	assert_true(
	        fx_eventually(follower_knows_leader, f.svc[follower], 5000));
	Strata__V1__CreateScopeRequest cq =
	        STRATA__V1__CREATE_SCOPE_REQUEST__INIT;
	cq.scope = "sc";
	fx_call(f.api[follower], M(CREATE_SCOPE), &cq.base, &r);
	assert_int_equal(r.code, STRATA_ENOTLEADER);
	assert_string_equal(r.redirect, f.members[leader].client_url);
	fx_reply_free(&r);
	/* A follower serves reads once it applied a recent leader tick;
	 * before that it sends readers to the leader. */
	int code = -1;
	for (int i = 0; i < 100 && code != 0; i++) {
		fx_call(f.api[follower], M(LIST_SCOPES), &lq.base, &r);
		code = r.code;
		if (code == STRATA_ENOTLEADER) {
			assert_string_equal(r.redirect,
			                    f.members[leader].client_url);
		}
		fx_reply_free(&r);
		if (code != 0) {
			fx_sleep(30);
		}
	}
	assert_int_equal(code, 0);
	/* Without leader ticks the follower's state ages: it redirects. */
	cluster_ticker_stop(f.ticker[leader]);
	fx_sleep(800);
	fx_call(f.api[follower], M(LIST_SCOPES), &lq.base, &r);
	assert_int_equal(r.code, STRATA_ENOTLEADER);
	assert_string_equal(r.redirect, f.members[leader].client_url);
	fx_reply_free(&r);
	fx_call(f.api[leader], M(LIST_SCOPES), &lq.base, &r);
	assert_int_equal(r.code, 0);
	fx_reply_free(&r);

	/* Over RPC: a client that only knows the follower is redirected. */
	struct rpc_server *srv[2];
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(
		        rpc_server_start(&srv[i], f.members[i].client_url, NULL,
		                         ctl_api_rpc_handler, f.api[i], err),
		        0);
	}
	struct rpc_client *cli;
	const char *url = f.members[follower].client_url;
	assert_int_equal(rpc_client_open(&cli, &url, 1, NULL, err), 0);
	ProtobufCMessage *rep = NULL;
	assert_int_equal(rpc_call_pb(cli, M(CREATE_SCOPE), 0, &cq.base,
	                             &strata__v1__controller_reply__descriptor,
	                             &rep, err),
	                 0);
	rpc_pb_free(rep);
	assert_int_equal(rpc_call_pb(cli, M(CREATE_SCOPE), 0, &cq.base,
	                             &strata__v1__controller_reply__descriptor,
	                             &rep, err),
	                 STRATA_EEXIST);
	assert_non_null(strstr(err, "sc"));
	rpc_pb_free(rep);
	rpc_client_close(cli);
	for (unsigned i = 0; i < 2; i++) {
		rpc_server_stop(srv[i]);
	}
	fx_close(&f);
}

/* Outcome of a query dispatched under OOM injection (libc memory only). */
struct oom_reply {
	bool done;
	int code;
	char msg[STRATA_ERRMSG_SIZE];
	size_t len;
};

static void oom_done(void *arg, int code, const char *msg, const char *redirect,
                     const uint8_t *body, size_t len)
{
	struct oom_reply *o = arg;
	(void)redirect;
	(void)body;
	o->done = true;
	o->code = code;
	snprintf(o->msg, sizeof(o->msg), "%s", msg != NULL ? msg : "");
	o->len = len;
}

/* Out of memory at any allocation of a query's dispatch (decode, FSM
 * query, reply packing) answers STRATA_ENOMEM with a message, on the
 * dispatching thread, and leaks nothing; with memory it succeeds. */
static void test_api_dispatch_queries_oom(void **state)
{
	(void)state;
	struct fx f;
	fx_init(&f, 1);
	f.no_ticker = true; /* nothing else allocates meanwhile */
	fx_start(&f, 0);
	fx_wait_leader(&f, 5000);
	struct ctl_api *api = f.api[0];
	assert_int_equal(fx_create_scope(api, "sc"), 0);
	assert_int_equal(fx_create_stream(api, "sc", "st", 3), 0);
	Strata__V1__ReaderGroupStream rs =
	        STRATA__V1__READER_GROUP_STREAM__INIT;
	Strata__V1__ReaderGroupStream *rsp[] = {&rs};
	Strata__V1__ReaderGroupConfig rg =
	        STRATA__V1__READER_GROUP_CONFIG__INIT;
	Strata__V1__CreateReaderGroupRequest rq =
	        STRATA__V1__CREATE_READER_GROUP_REQUEST__INIT;
	rs.stream = "st";
	rg.name = "g";
	rg.streams = rsp;
	rg.n_streams = 1;
	rq.scope = "sc";
	rq.config = &rg;
	struct fx_reply r;
	fx_call(api, M(CREATE_READER_GROUP), &rq.base, &r);
	assert_int_equal(r.code, 0);
	fx_reply_free(&r);

	Strata__V1__GetStreamRequest gq = STRATA__V1__GET_STREAM_REQUEST__INIT;
	Strata__V1__GetSegmentsRequest sq =
	        STRATA__V1__GET_SEGMENTS_REQUEST__INIT;
	Strata__V1__ListReaderGroupsRequest lq =
	        STRATA__V1__LIST_READER_GROUPS_REQUEST__INIT;
	Strata__V1__GetSegmentEndpointRequest eq =
	        STRATA__V1__GET_SEGMENT_ENDPOINT_REQUEST__INIT;
	Strata__V1__StateDigestRequest dq =
	        STRATA__V1__STATE_DIGEST_REQUEST__INIT;
	gq.scope = sq.scope = lq.scope = eq.scope = "sc";
	gq.stream = sq.stream = eq.stream = "st";
	eq.segment_id = 2;
	dq.include_state = true;
	const struct {
		uint32_t method;
		const ProtobufCMessage *req;
	} qs[] = {
	        {M(GET_STREAM), &gq.base},
	        {M(GET_CURRENT_SEGMENTS), &sq.base},
	        {M(LIST_READER_GROUPS), &lq.base},
	        {M(GET_SEGMENT_ENDPOINT), &eq.base},
	        {M(GET_STATE_DIGEST), &dq.base},
	};
	for (size_t q = 0; q < sizeof(qs) / sizeof(qs[0]); q++) {
		size_t len = protobuf_c_message_get_packed_size(qs[q].req);
		uint8_t buf[256];
		assert_true(len <= sizeof(buf));
		protobuf_c_message_pack(qs[q].req, buf);
		long k;
		for (k = 1; k < 200; k++) {
			struct oom_reply o = {0};
			oom_install(k);
			ctl_api_dispatch(api, qs[q].method, buf, len, oom_done,
			                 &o);
			long attempts = oom_uninstall();
			assert_true(o.done); /* answered before returning */
			if (o.code == 0) {
				assert_true(o.len > 0);
				assert_true(attempts < k);
				break;
			}
			assert_int_equal(o.code, STRATA_ENOMEM);
			assert_true(o.msg[0] != '\0');
		}
		assert_true(k > 1 && k < 200); /* some points, and it ended */
	}
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_api_dispatch_queries_oom),
	        cmocka_unit_test(test_api_metadata_lifecycle),
	        cmocka_unit_test(test_api_rejections_change_nothing),
	        cmocka_unit_test(test_api_malformed_body),
	        cmocka_unit_test(test_api_write_refusal_messages),
	        cmocka_unit_test(test_api_follower_redirects),
	};
	return cmocka_run_group_tests_name("controller_api", tests, NULL, NULL);
}
