/* Test helpers for the controller FSM (see cfsm_helpers.h). */
#include "tests/unit/controller/cfsm_helpers.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

struct cfsm_result h_res;

int h_apply(struct cfsm *f, const Strata__V1__ControllerCommand *cmd)
{
	size_t n = strata__v1__controller_command__get_packed_size(cmd);
	uint8_t *buf = malloc(n + 1);
	if (buf == NULL) {
		abort();
	}
	size_t len = strata__v1__controller_command__pack(cmd, buf);
	int rc = cfsm_apply(f, buf, len, &h_res);
	free(buf);
	return rc;
}

#define CMD(field, CASE, value)                                             \
	Strata__V1__ControllerCommand cmd_ =                                \
	        STRATA__V1__CONTROLLER_COMMAND__INIT;                       \
	cmd_.command_case = STRATA__V1__CONTROLLER_COMMAND__COMMAND_##CASE; \
	cmd_.field = (value)

int h_create_scope(struct cfsm *f, const char *scope)
{
	Strata__V1__CreateScopeRequest r =
	        STRATA__V1__CREATE_SCOPE_REQUEST__INIT;
	Strata__V1__CreateScopeCmd c = STRATA__V1__CREATE_SCOPE_CMD__INIT;
	r.scope = (char *)scope;
	c.request = &r;
	CMD(create_scope, CREATE_SCOPE, &c);
	return h_apply(f, &cmd_);
}

int h_delete_scope(struct cfsm *f, const char *scope)
{
	Strata__V1__DeleteScopeRequest r =
	        STRATA__V1__DELETE_SCOPE_REQUEST__INIT;
	Strata__V1__DeleteScopeCmd c = STRATA__V1__DELETE_SCOPE_CMD__INIT;
	r.scope = (char *)scope;
	c.request = &r;
	CMD(delete_scope, DELETE_SCOPE, &c);
	return h_apply(f, &cmd_);
}

int h_create_stream_only(struct cfsm *f, const char *scope, const char *stream,
                         uint32_t n, const char **tags)
{
	Strata__V1__FixedScaling fx = STRATA__V1__FIXED_SCALING__INIT;
	Strata__V1__ScalingPolicy sp = STRATA__V1__SCALING_POLICY__INIT;
	Strata__V1__StreamConfig cfg = STRATA__V1__STREAM_CONFIG__INIT;
	Strata__V1__CreateStreamRequest r =
	        STRATA__V1__CREATE_STREAM_REQUEST__INIT;
	Strata__V1__CreateStreamCmd c = STRATA__V1__CREATE_STREAM_CMD__INIT;
	fx.min_segments = n;
	sp.policy_case = STRATA__V1__SCALING_POLICY__POLICY_FIXED;
	sp.fixed = &fx;
	cfg.scaling = &sp;
	size_t nt = 0;
	while (tags != NULL && tags[nt] != NULL) {
		nt++;
	}
	cfg.n_tags = nt;
	cfg.tags = (char **)tags;
	r.scope = (char *)scope;
	r.stream = (char *)stream;
	r.config = &cfg;
	c.request = &r;
	c.now_ms = 1000;
	CMD(create_stream, CREATE_STREAM, &c);
	return h_apply(f, &cmd_);
}

int h_create_stream(struct cfsm *f, const char *scope, const char *stream,
                    uint32_t n)
{
	int rc = h_create_stream_only(f, scope, stream, n, NULL);
	return rc != 0 ? rc : h_finish(f, h_res.workflow_id);
}

int h_scale_only(struct cfsm *f, const char *scope, const char *stream,
                 const uint64_t *ids, size_t n_ids, const double *lows,
                 const double *highs, size_t n_r)
{
	Strata__V1__KeyRange kr[64], *krp[64];
	Strata__V1__ScaleStreamRequest r =
	        STRATA__V1__SCALE_STREAM_REQUEST__INIT;
	Strata__V1__ScaleStreamCmd c = STRATA__V1__SCALE_STREAM_CMD__INIT;
	for (size_t i = 0; i < n_r && i < 64; i++) {
		Strata__V1__KeyRange k = STRATA__V1__KEY_RANGE__INIT;
		k.low = lows[i];
		k.high = highs[i];
		kr[i] = k;
		krp[i] = &kr[i];
	}
	r.scope = (char *)scope;
	r.stream = (char *)stream;
	r.n_seal_segments = n_ids;
	r.seal_segments = (uint64_t *)ids;
	r.n_new_ranges = n_r;
	r.new_ranges = krp;
	c.request = &r;
	c.now_ms = 2000;
	CMD(scale_stream, SCALE_STREAM, &c);
	return h_apply(f, &cmd_);
}

int h_scale(struct cfsm *f, const char *scope, const char *stream,
            const uint64_t *ids, size_t n_ids, const double *lows,
            const double *highs, size_t n_r)
{
	int rc = h_scale_only(f, scope, stream, ids, n_ids, lows, highs, n_r);
	return rc != 0 ? rc : h_finish(f, h_res.workflow_id);
}

int h_seal_only(struct cfsm *f, const char *scope, const char *stream)
{
	Strata__V1__SealStreamRequest r = STRATA__V1__SEAL_STREAM_REQUEST__INIT;
	Strata__V1__SealStreamCmd c = STRATA__V1__SEAL_STREAM_CMD__INIT;
	r.scope = (char *)scope;
	r.stream = (char *)stream;
	c.request = &r;
	CMD(seal_stream, SEAL_STREAM, &c);
	return h_apply(f, &cmd_);
}

int h_seal(struct cfsm *f, const char *scope, const char *stream)
{
	int rc = h_seal_only(f, scope, stream);
	return rc != 0 ? rc : h_finish(f, h_res.workflow_id);
}

int h_delete_only(struct cfsm *f, const char *scope, const char *stream)
{
	Strata__V1__DeleteStreamRequest r =
	        STRATA__V1__DELETE_STREAM_REQUEST__INIT;
	Strata__V1__DeleteStreamCmd c = STRATA__V1__DELETE_STREAM_CMD__INIT;
	r.scope = (char *)scope;
	r.stream = (char *)stream;
	c.request = &r;
	CMD(delete_stream, DELETE_STREAM, &c);
	return h_apply(f, &cmd_);
}

int h_delete(struct cfsm *f, const char *scope, const char *stream)
{
	int rc = h_delete_only(f, scope, stream);
	return rc != 0 ? rc : h_finish(f, h_res.workflow_id);
}

int h_truncate_only(struct cfsm *f, const char *scope, const char *stream,
                    const uint64_t *ids, const int64_t *offsets, size_t n)
{
	Strata__V1__SegmentOffset so[64], *sop[64];
	Strata__V1__StreamCut cut = STRATA__V1__STREAM_CUT__INIT;
	Strata__V1__TruncateStreamRequest r =
	        STRATA__V1__TRUNCATE_STREAM_REQUEST__INIT;
	Strata__V1__TruncateStreamCmd c = STRATA__V1__TRUNCATE_STREAM_CMD__INIT;
	for (size_t i = 0; i < n && i < 64; i++) {
		Strata__V1__SegmentOffset o = STRATA__V1__SEGMENT_OFFSET__INIT;
		o.segment_id = ids[i];
		o.offset = offsets[i];
		so[i] = o;
		sop[i] = &so[i];
	}
	cut.n_positions = n;
	cut.positions = sop;
	r.scope = (char *)scope;
	r.stream = (char *)stream;
	r.cut = &cut;
	c.request = &r;
	CMD(truncate_stream, TRUNCATE_STREAM, &c);
	return h_apply(f, &cmd_);
}

int h_step(struct cfsm *f, uint64_t id)
{
	const Strata__V1__Workflow *w = cfsm_find_workflow(f, id);
	if (w == NULL) {
		return -1;
	}
	Strata__V1__WorkflowStepDone d = STRATA__V1__WORKFLOW_STEP_DONE__INIT;
	Strata__V1__SegmentSize sz[256], *szp[256];
	d.workflow_id = id;
	d.step = w->step;
	if (w->step == STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_SEAL_SEGMENTS ||
	    w->step == STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_MERGE_TXN) {
		struct cfsm_action *acts;
		size_t n;
		if (cfsm_pending_actions(f, &acts, &n) != 0) {
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			bool sealed =
			        acts[i].kind == CFSM_ACTION_SEAL_SEGMENT ||
			        (acts[i].kind == CFSM_ACTION_ROLL_TXN_SEGMENT &&
			         acts[i].seal);
			if (acts[i].workflow_id != id || !sealed ||
			    d.n_sealed_sizes >= 256) {
				continue;
			}
			Strata__V1__SegmentSize s =
			        STRATA__V1__SEGMENT_SIZE__INIT;
			s.segment_id = acts[i].segment_id;
			s.size = 1000 + (acts[i].segment_id & 0xffffffffu);
			sz[d.n_sealed_sizes] = s;
			szp[d.n_sealed_sizes] = &sz[d.n_sealed_sizes];
			d.n_sealed_sizes++;
		}
		strata_free(acts);
	}
	d.sealed_sizes = szp;
	CMD(workflow_step_done, WORKFLOW_STEP_DONE, &d);
	return h_apply(f, &cmd_);
}

int h_finish(struct cfsm *f, uint64_t id)
{
	for (int i = 0; i < 8 && cfsm_find_workflow(f, id) != NULL; i++) {
		int rc = h_step(f, id);
		if (rc != 0) {
			return rc;
		}
	}
	return cfsm_find_workflow(f, id) == NULL ? 0 : -1;
}

int h_register(struct cfsm *f, const char *node, uint64_t now_ms,
               uint64_t lease_ms)
{
	Strata__V1__RegisterStoreCmd c = STRATA__V1__REGISTER_STORE_CMD__INIT;
	c.node_id = (char *)node;
	c.address = "127.0.0.1:12345";
	c.now_ms = now_ms;
	c.lease_ms = lease_ms;
	CMD(register_store, REGISTER_STORE, &c);
	return h_apply(f, &cmd_);
}

int h_heartbeat(struct cfsm *f, const char *node, uint64_t now_ms,
                uint64_t lease_ms)
{
	Strata__V1__HeartbeatCmd c = STRATA__V1__HEARTBEAT_CMD__INIT;
	c.node_id = (char *)node;
	c.now_ms = now_ms;
	c.lease_ms = lease_ms;
	CMD(heartbeat, HEARTBEAT, &c);
	return h_apply(f, &cmd_);
}

int h_tick(struct cfsm *f, uint64_t now_ms)
{
	Strata__V1__TickCmd c = STRATA__V1__TICK_CMD__INIT;
	c.now_ms = now_ms;
	CMD(tick, TICK, &c);
	return h_apply(f, &cmd_);
}

uint8_t *h_snap(const struct cfsm *f, size_t *len)
{
	uint8_t *buf;
	if (cfsm_snapshot(f, &buf, len) != 0) {
		abort();
	}
	return buf;
}

int h_same(const struct cfsm *f, const uint8_t *buf, size_t len)
{
	size_t n;
	uint8_t *now = h_snap(f, &n);
	int same = n == len && memcmp(now, buf, n) == 0;
	strata_free(now);
	return same;
}

int h_setup_sc_s(void **state)
{
	static struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	if (cfsm_init(&f, 4, err) != 0) {
		return -1;
	}
	if (h_create_scope(&f, "sc") != 0 ||
	    h_create_stream(&f, "sc", "s", 2) != 0) {
		cfsm_close(&f);
		return -1;
	}
	*state = &f;
	return 0;
}

int h_teardown(void **state)
{
	cfsm_close(*state);
	return 0;
}
