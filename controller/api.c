/* Controller client API: decodes requests (methods 100-199), proposes
 * commands on the leader, answers queries from the committed state.
 *
 * Happy path (write): need_leader -> decode -> build the FSM command (the
 * leader stamps now_ms) -> propose -> apply callback on the loop thread ->
 * ControllerReply; when the command started a workflow or a transaction
 * step, the reply waits (ctl_service_wait, bounded by api.wait_timeout)
 * until the FSM shows it finished, and says so in reply.done.
 * Happy path (read): need_read -> decode -> cfsm query under the lock ->
 * packed reply.
 *
 * Failure modes: not the leader -> STRATA_ENOTLEADER + the leader's client
 * URL (STRATA_EUNAVAIL when none is known); leadership lost after the
 * append -> STRATA_ELEADERLOST (outcome unknown: the client checks); the
 * FSM rejects -> its code and message, nothing changed; malformed body ->
 * STRATA_EPROTO; budget full -> STRATA_EAGAIN.
 */
#include "controller/api.h"
#include "controller/cutcheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/rpc.h"
#include "raft/group.h"
#include "strata/v1/cluster.pb-c.h"

#define COMP "controller.api"

/* Methods this file serves, with their metrics. */
struct method_def {
	uint32_t id;      /* ControllerMethod / ClusterMethod */
	const char *name; /* metric label and logs */
};

static const struct method_def methods[] = {
        {STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_SCOPE, "create_scope"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_DELETE_SCOPE, "delete_scope"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_LIST_SCOPES, "list_scopes"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_STREAM, "create_stream"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_GET_STREAM, "get_stream"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_UPDATE_STREAM, "update_stream"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_LIST_STREAMS, "list_streams"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_SEAL_STREAM, "seal_stream"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_TRUNCATE_STREAM, "truncate_stream"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_DELETE_STREAM, "delete_stream"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_SCALE_STREAM, "scale_stream"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_GET_CURRENT_SEGMENTS,
         "get_current_segments"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_GET_SEGMENTS_AT_CUT,
         "get_segments_at_cut"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_GET_SUCCESSORS, "get_successors"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_GET_SEGMENT_ENDPOINT,
         "get_segment_endpoint"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_READER_GROUP,
         "create_reader_group"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_GET_READER_GROUP,
         "get_reader_group"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_UPDATE_READER_GROUP,
         "update_reader_group"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_DELETE_READER_GROUP,
         "delete_reader_group"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_LIST_READER_GROUPS,
         "list_reader_groups"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_UPDATE_RETENTION_CUT,
         "update_retention_cut"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_TXN, "create_txn"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_PING_TXN, "ping_txn"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_COMMIT_TXN, "commit_txn"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_ABORT_TXN, "abort_txn"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_GET_TXN, "get_txn"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_GET_WORKFLOW, "get_workflow"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_GET_STATE_DIGEST,
         "get_state_digest"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_ADD_CONTROLLER, "add_controller"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_REMOVE_CONTROLLER,
         "remove_controller"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_LIST_CONTROLLERS,
         "list_controllers"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_NOTE_TIME, "note_time"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_REMOVE_WRITER, "remove_writer"},
        {STRATA__V1__CONTROLLER_METHOD__CTL_GET_WATERMARKS, "get_watermarks"},
        {STRATA__V1__CLUSTER_METHOD__CLUSTER_REGISTER_STORE, "register_store"},
        {STRATA__V1__CLUSTER_METHOD__CLUSTER_HEARTBEAT, "store_heartbeat"},
        {STRATA__V1__CLUSTER_METHOD__CLUSTER_UNREGISTER_STORE,
         "unregister_store"},
        {STRATA__V1__CLUSTER_METHOD__CLUSTER_STATUS, "cluster_status"},
};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

struct ctl_api {
	struct ctl_service *svc;                      /* borrowed */
	uint64_t store_lease_ms;                      /* for cluster.c */
	uint64_t read_staleness_ms;                   /* follower reads */
	struct metrics_histogram *latency[N_METHODS]; /* per method */
	struct metrics_counter *errors[N_METHODS];    /* per method */
	struct cutcheck *cuts; /* truncations' cuts being checked */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int method_index(uint32_t id)
{
	for (size_t i = 0; i < N_METHODS; i++) {
		if (methods[i].id == id) {
			return (int)i;
		}
	}
	return -1;
}

const char *ctl_api_method_name(uint32_t method)
{
	int i = method_index(method);
	return i < 0 ? NULL : methods[i].name;
}

static int write_defs_check(char *errmsg);

int ctl_api_new(const struct ctl_api_config *cfg, struct ctl_api **out,
                char *errmsg)
{
	int rc = write_defs_check(errmsg);
	if (rc != 0) {
		return rc;
	}
	struct ctl_api *a = strata_calloc(1, sizeof(*a));
	if (a == NULL) {
		errmsg_set(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	a->svc = cfg->svc;
	if (cutcheck_new(&a->cuts) != 0) {
		strata_free(a);
		errmsg_set(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	a->store_lease_ms = cfg->store_lease_ms ? cfg->store_lease_ms : 10000;
	a->read_staleness_ms =
	        cfg->read_staleness_ms ? cfg->read_staleness_ms : 5000;
	for (size_t i = 0; cfg->metrics != NULL && i < N_METHODS; i++) {
		struct metrics_label l = {.name = "method",
		                          .value = methods[i].name};
		rc = metrics_histogram_register(
		        cfg->metrics, "strata_controller_request_seconds",
		        "Controller API request latency, by method.", &l, 1,
		        NULL, 0, &a->latency[i], errmsg);
		if (rc == 0) {
			rc = metrics_counter_register(
			        cfg->metrics,
			        "strata_controller_request_errors_total",
			        "Controller API requests answered with an "
			        "error, by method.",
			        &l, 1, &a->errors[i], errmsg);
		}
		if (rc != 0) {
			ctl_api_free(a);
			return rc;
		}
	}
	*out = a;
	return 0;
}

void ctl_api_drain(struct ctl_api *a)
{
	if (a != NULL) {
		cutcheck_drain(a->cuts);
	}
}

void ctl_api_free(struct ctl_api *a)
{
	if (a != NULL) {
		cutcheck_free(a->cuts);
	}
	strata_free(a);
}

uint64_t ctl_api_store_lease_ms(const struct ctl_api *a)
{
	return a->store_lease_ms;
}

/* ----------------------------------------------------------- requests -- */

void ctl_req_finish_raw(struct ctl_req *r, int code, const char *msg,
                        const char *redirect, const uint8_t *body, size_t len)
{
	int i = method_index(r->method);
	if (i >= 0 && r->api->latency[i] != NULL) {
		metrics_histogram_observe(r->api->latency[i],
		                          (double)(mono_ns() - r->t0_ns) / 1e9);
		if (code != 0) {
			metrics_counter_inc(r->api->errors[i]);
		}
	}
	r->done(r->arg, code, msg != NULL ? msg : "",
	        redirect != NULL ? redirect : "", body, len);
	rpc_pb_free(r->msg);
	strata_free(r->seg_ids);
	strata_free(r);
}

void ctl_req_finish(struct ctl_req *r, int code, const char *msg,
                    const ProtobufCMessage *reply)
{
	uint8_t small[512];
	uint8_t *buf = small;
	size_t len = 0;
	if (reply != NULL) {
		len = protobuf_c_message_get_packed_size(reply);
		if (len > sizeof(small)) {
			buf = strata_malloc(len);
			if (buf == NULL) {
				ctl_req_finish_raw(r, STRATA_ENOMEM,
				                   "out of memory packing the "
				                   "reply; retry",
				                   NULL, NULL, 0);
				return;
			}
		}
		protobuf_c_message_pack(reply, buf);
	}
	ctl_req_finish_raw(r, code, msg, NULL, len ? buf : NULL, len);
	if (buf != small) {
		strata_free(buf);
	}
}

/* A replica out of its group because its Raft log failed: say so, and
 * when it comes back (controller/service.c, heal). Like every answer of
 * a replica that cannot serve, it starts "controller node N" (the client
 * tells such answers from a controller it cannot reach by that). */
static void failed_msg(const struct ctl_status *st, char *msg)
{
	if (st->restarting) {
		errmsg_set(msg,
		           "controller node %" PRIu64
		           " is restarting its Raft replica after a failed "
		           "write to its log in %.120s; retry in a moment",
		           st->node_id, st->data_dir);
		return;
	}
	errmsg_set(
	        msg,
	        "controller node %" PRIu64
	        " is out of its Raft group: a write to its log in %.120s "
	        "failed (check the disk); it restarts its replica in %" PRIu64
	        " s",
	        st->node_id, st->data_dir, (st->restart_in_ms + 999) / 1000);
}

void ctl_req_not_leader(struct ctl_req *r)
{
	struct ctl_status st;
	char msg[STRATA_ERRMSG_SIZE];
	char url[CTL_URL_MAX];
	ctl_service_status(r->svc, &st);
	bool known =
	        st.leader_id != 0 && st.leader_id != st.node_id &&
	        ctl_service_member_url(r->svc, st.leader_id, url, sizeof(url));
	if (!known && st.log_failed) {
		failed_msg(&st, msg);
		ctl_req_finish_raw(r, STRATA_EUNAVAIL, msg, NULL, NULL, 0);
		return;
	}
	if (!known) {
		snprintf(msg, sizeof(msg),
		         "controller node %" PRIu64
		         " is not the leader and no leader is elected yet "
		         "(term %" PRIu64 "); retry in a moment",
		         st.node_id, st.term);
		ctl_req_finish_raw(r, STRATA_EUNAVAIL, msg, NULL, NULL, 0);
		return;
	}
	snprintf(msg, sizeof(msg),
	         "controller node %" PRIu64 " is not the leader; the leader "
	         "is node %" PRIu64 " at %.120s",
	         st.node_id, st.leader_id, url);
	ctl_req_finish_raw(r, STRATA_ENOTLEADER, msg, url, NULL, 0);
}

bool ctl_req_need_leader(struct ctl_req *r)
{
	struct ctl_status st;
	ctl_service_status(r->svc, &st);
	if (st.role == RAFT_GROUP_LEADER) {
		return true;
	}
	ctl_req_not_leader(r);
	return false;
}

bool ctl_req_need_read(struct ctl_req *r)
{
	struct ctl_status st;
	char msg[STRATA_ERRMSG_SIZE];
	ctl_service_status(r->svc, &st);
	if (st.role == RAFT_GROUP_LEADER && st.ready) {
		return true;
	}
	if (st.role == RAFT_GROUP_FOLLOWER && st.leader_id != 0) {
		/* Bounded staleness: the leader ticks every tick.interval; a
		 * follower that has not applied a recent tick (it restarted
		 * and is catching up, or lost contact) sends the reader to
		 * the leader instead of answering from old state. */
		const struct cfsm *f = ctl_service_lock(r->svc);
		uint64_t tick = cfsm_state(f)->last_tick_ms;
		ctl_service_unlock(r->svc);
		uint64_t now = ctl_now_ms();
		if (tick + r->api->read_staleness_ms >= now) {
			return true;
		}
		ctl_req_not_leader(r);
		return false;
	}
	if (st.log_failed) {
		failed_msg(&st, msg);
		ctl_req_finish_raw(r, STRATA_EUNAVAIL, msg, NULL, NULL, 0);
		return false;
	}
	if (st.role == RAFT_GROUP_LEADER) {
		snprintf(msg, sizeof(msg),
		         "controller node %" PRIu64 " cannot serve reads yet "
		         "(just elected, term %" PRIu64 ", its log not yet "
		         "confirmed): retry in a moment",
		         st.node_id, st.term);
	} else {
		/* An election that does not end: no majority is up. */
		snprintf(msg, sizeof(msg),
		         "controller node %" PRIu64 " knows no leader (%s, "
		         "term %" PRIu64 "): an election is under way; if "
		         "this lasts, fewer than a majority of the "
		         "controllers are up: check their processes",
		         st.node_id,
		         st.role == RAFT_GROUP_CANDIDATE ? "candidate"
		                                         : "follower",
		         st.term);
	}
	ctl_req_finish_raw(r, STRATA_EUNAVAIL, msg, NULL, NULL, 0);
	return false;
}

/* Allocator for request bodies that records an allocation failure
 * (data = a bool), so OOM is not reported as a malformed body. Messages
 * it builds are freed with rpc_pb_free (both use the strata allocator). */
static void *decode_alloc(void *data, size_t size)
{
	void *p = strata_malloc(size);
	if (p == NULL) {
		*(bool *)data = true;
	}
	return p;
}

static void decode_free(void *data, void *p)
{
	(void)data;
	strata_free(p);
}

/* Streams named "_..." are the controller's own (a reader group's state
 * stream _RG<group>): clients read them, but only the controller's reader
 * group workflows change them. True when r was refused (and finished). */
static bool refuse_internal_stream(struct ctl_req *r, const char *scope,
                                   const char *stream)
{
	if (stream == NULL || stream[0] != '_') {
		return false;
	}
	char msg[512]; /* the reply carries it; the rest is cut */
	snprintf(msg, sizeof(msg),
	         "%.48s: stream %.64s/%.64s is internal (the state of a reader "
	         "group); it changes only with its reader group: update, "
	         "reset or delete the group instead",
	         ctl_api_method_name(r->method), scope != NULL ? scope : "",
	         stream);
	ctl_req_finish_raw(r, STRATA_EPERM, msg, NULL, NULL, 0);
	return true;
}

bool ctl_req_decode(struct ctl_req *r, const ProtobufCMessageDescriptor *desc,
                    const uint8_t *body, size_t len)
{
	static const uint8_t empty[1];
	bool oom = false;
	ProtobufCAllocator a = {
	        .alloc = decode_alloc,
	        .free = decode_free,
	        .allocator_data = &oom,
	};
	r->msg = protobuf_c_message_unpack(desc, &a, len,
	                                   body != NULL ? body : empty);
	if (r->msg != NULL) {
		return true;
	}
	char msg[STRATA_ERRMSG_SIZE];
	if (oom) {
		snprintf(msg, sizeof(msg),
		         "%s: out of memory decoding the %zu-byte %s; retry",
		         ctl_api_method_name(r->method), len, desc->name);
		ctl_req_finish_raw(r, STRATA_ENOMEM, msg, NULL, NULL, 0);
		return false;
	}
	snprintf(msg, sizeof(msg),
	         "%s: the %zu-byte body is not a %s; check the client's "
	         "protocol version",
	         ctl_api_method_name(r->method), len, desc->name);
	ctl_req_finish_raw(r, STRATA_EPROTO, msg, NULL, NULL, 0);
	return false;
}

/* Answer a write with r->reply (code and message repeated in it). */
static void finish_write(struct ctl_req *r, int code, const char *msg)
{
	r->reply.code = (Strata__V1__ErrorCode)code;
	r->reply.message = (char *)(msg != NULL ? msg : "");
	ctl_req_finish(r, code, msg, &r->reply.base);
}

static bool wait_pred(const struct cfsm *fsm, void *arg)
{
	struct ctl_req *r = arg;
	if (r->wait == CTL_WAIT_WORKFLOW) {
		return cfsm_find_workflow(fsm, r->wait_id) == NULL;
	}
	const Strata__V1__Txn *t =
	        cfsm_find_txn(fsm, r->wait_scope, r->wait_stream, r->wait_id);
	if (t == NULL) {
		return true; /* forgotten: long finished */
	}
	switch (r->wait) {
	case CTL_WAIT_TXN_CREATED:
		return t->segments_created ||
		       t->state != STRATA__V1__TXN_STATE__TXN_STATE_OPEN;
	case CTL_WAIT_TXN_COMMITTED:
		return t->state == STRATA__V1__TXN_STATE__TXN_STATE_COMMITTED ||
		       t->state == STRATA__V1__TXN_STATE__TXN_STATE_ABORTED;
	case CTL_WAIT_TXN_ABORTED:
		return t->state == STRATA__V1__TXN_STATE__TXN_STATE_ABORTED ||
		       t->state == STRATA__V1__TXN_STATE__TXN_STATE_COMMITTED;
	default:
		return true;
	}
}

static void wait_done(void *arg, bool satisfied)
{
	struct ctl_req *r = arg;
	r->reply.done = satisfied;
	finish_write(r, 0, "");
}

static void proposed(void *arg, int status, const struct cfsm_result *res)
{
	struct ctl_req *r = arg;
	char msg[STRATA_ERRMSG_SIZE];
	if (status == STRATA_ENOTLEADER) {
		ctl_req_not_leader(r);
		return;
	}
	if (status == STRATA_EIO) {
		/* This replica's log write failed (it leaves its group); the
		 * entry may still commit through the other replicas. */
		struct ctl_status st;
		ctl_service_status(r->svc, &st);
		errmsg_set(msg,
		           "%s: controller node %" PRIu64
		           " could not write to its Raft log in %.100s (check "
		           "the disk); the change may or may not have been "
		           "made: read it back before retrying",
		           ctl_api_method_name(r->method), st.node_id,
		           st.data_dir);
		finish_write(r, status, msg);
		return;
	}
	if (status != 0) {
		snprintf(msg, sizeof(msg), "%s: %s%s",
		         ctl_api_method_name(r->method),
		         strata_strerror(status),
		         status == STRATA_ELEADERLOST
		                 ? "; the change may or may not have been "
		                   "made: read it back before retrying"
		                 : "; retry");
		finish_write(r, status, msg);
		return;
	}
	if (res->code != 0) {
		finish_write(r, res->code, res->message);
		return;
	}
	if (r->after != NULL) {
		r->after(r, res);
		return;
	}
	r->reply.workflow_id = res->workflow_id;
	r->reply.txn_id = res->txn_id;
	if (res->n_segment_ids > 0) {
		r->seg_ids =
		        strata_calloc(res->n_segment_ids, sizeof(uint64_t));
		if (r->seg_ids != NULL) {
			memcpy(r->seg_ids, res->segment_ids,
			       res->n_segment_ids * sizeof(uint64_t));
			r->reply.segment_ids = r->seg_ids;
			r->reply.n_segment_ids = res->n_segment_ids;
		}
	}
	if (r->wait == CTL_WAIT_WORKFLOW && res->workflow_id == 0) {
		r->wait = CTL_WAIT_NONE; /* e.g. sealing a sealed stream */
	}
	if (r->wait == CTL_WAIT_TXN_CREATED) {
		r->wait_id = res->txn_id;
	} else if (r->wait == CTL_WAIT_WORKFLOW) {
		r->wait_id = res->workflow_id;
	}
	if (r->wait == CTL_WAIT_NONE) {
		r->reply.done = true;
		finish_write(r, 0, "");
		return;
	}
	if (ctl_service_wait(r->svc, wait_pred, wait_done, r) != 0) {
		r->reply.done = false;
		finish_write(r, 0, "");
	}
}

void ctl_req_propose(struct ctl_req *r,
                     const Strata__V1__ControllerCommand *cmd)
{
	char msg[STRATA_ERRMSG_SIZE];
	int rc = ctl_service_propose(r->svc, cmd, proposed, r);
	if (rc == 0) {
		return;
	}
	snprintf(msg, sizeof(msg), "%s: %s; %s", ctl_api_method_name(r->method),
	         strata_strerror(rc),
	         rc == STRATA_EAGAIN ? "the controller is busy, retry shortly"
	         : rc == STRATA_ETOOBIG ? "the request is too large; split it"
	                                : "retry");
	finish_write(r, rc, msg);
}

/* ------------------------------------------------------------- writes -- */

#define CMD_INIT(cmd) \
	Strata__V1__ControllerCommand cmd = STRATA__V1__CONTROLLER_COMMAND__INIT

/* What a plain write does besides wrapping its request (write_def.flags). */
enum {
	W_NOW_MS = 1u << 0,          /* stamp the command's now_ms */
	W_REFUSE_INTERNAL = 1u << 1, /* refuse the request's "_..." stream */
	W_CHECK_CUT = 1u << 2,       /* a TruncateStreamRequest: its offsets are
	                                checked against the stores first */
};

/* A plain write: decode the request, wrap it in its FSM command (its
 * field request), propose. Writes that do more are cases of serve_write.
 * ctl_api_new checks every row against the generated descriptors. */
struct write_def {
	uint32_t method;                           /* ControllerMethod */
	const ProtobufCMessageDescriptor *request; /* the body */
	const ProtobufCMessageDescriptor *cmd;     /* wraps the request */
	Strata__V1__ControllerCommand__CommandCase command; /* cmd's case */
	unsigned flags;                                     /* W_* */
	enum ctl_wait_kind wait; /* the reply waits for, after the apply */
};

/* Row of method CTL_<M>: request <m>_request, command <m>_cmd, case
 * ControllerCommand.<m>. */
#define WRITE(M, m, flags_, wait_)                                      \
	{                                                               \
		.method = STRATA__V1__CONTROLLER_METHOD__CTL_##M,       \
		.request = &strata__v1__##m##_request__descriptor,      \
		.cmd = &strata__v1__##m##_cmd__descriptor,              \
		.command = STRATA__V1__CONTROLLER_COMMAND__COMMAND_##M, \
		.flags = (flags_), .wait = (wait_),                     \
	}

static const struct write_def write_defs[] = {
        WRITE(CREATE_SCOPE, create_scope, 0, CTL_WAIT_NONE),
        WRITE(DELETE_SCOPE, delete_scope, 0, CTL_WAIT_NONE),
        WRITE(CREATE_STREAM, create_stream, W_NOW_MS, CTL_WAIT_WORKFLOW),
        WRITE(UPDATE_STREAM, update_stream, W_REFUSE_INTERNAL, CTL_WAIT_NONE),
        WRITE(SEAL_STREAM, seal_stream, W_REFUSE_INTERNAL, CTL_WAIT_WORKFLOW),
        WRITE(TRUNCATE_STREAM, truncate_stream, W_REFUSE_INTERNAL | W_CHECK_CUT,
              CTL_WAIT_WORKFLOW),
        WRITE(DELETE_STREAM, delete_stream, W_REFUSE_INTERNAL,
              CTL_WAIT_WORKFLOW),
        WRITE(SCALE_STREAM, scale_stream, W_REFUSE_INTERNAL | W_NOW_MS,
              CTL_WAIT_WORKFLOW),
        /* the group's state stream _RG<name> comes and goes by workflow */
        WRITE(CREATE_READER_GROUP, create_reader_group, W_NOW_MS,
              CTL_WAIT_WORKFLOW),
        WRITE(UPDATE_READER_GROUP, update_reader_group, 0, CTL_WAIT_NONE),
        WRITE(DELETE_READER_GROUP, delete_reader_group, 0, CTL_WAIT_WORKFLOW),
        WRITE(UPDATE_RETENTION_CUT, update_retention_cut, W_NOW_MS,
              CTL_WAIT_NONE),
        WRITE(PING_TXN, ping_txn, W_NOW_MS, CTL_WAIT_NONE),
        WRITE(NOTE_TIME, note_time, W_REFUSE_INTERNAL | W_NOW_MS,
              CTL_WAIT_NONE),
        WRITE(REMOVE_WRITER, remove_writer, W_REFUSE_INTERNAL, CTL_WAIT_NONE),
};
#define N_WRITES (sizeof(write_defs) / sizeof(write_defs[0]))

/* Storage for the command of any write_defs row. */
union write_cmd {
	ProtobufCMessage base;
	Strata__V1__CreateScopeCmd create_scope;
	Strata__V1__DeleteScopeCmd delete_scope;
	Strata__V1__CreateStreamCmd create_stream;
	Strata__V1__UpdateStreamCmd update_stream;
	Strata__V1__SealStreamCmd seal_stream;
	Strata__V1__TruncateStreamCmd truncate_stream;
	Strata__V1__DeleteStreamCmd delete_stream;
	Strata__V1__ScaleStreamCmd scale_stream;
	Strata__V1__CreateReaderGroupCmd create_reader_group;
	Strata__V1__UpdateReaderGroupCmd update_reader_group;
	Strata__V1__DeleteReaderGroupCmd delete_reader_group;
	Strata__V1__UpdateRetentionCutCmd update_retention_cut;
	Strata__V1__PingTxnCmd ping_txn;
	Strata__V1__NoteTimeCmd note_time;
	Strata__V1__RemoveWriterCmd remove_writer;
};

/* Singular (proto3, no presence flag) field name of desc when it has
 * this type; NULL otherwise. */
static const ProtobufCFieldDescriptor *
plain_field(const ProtobufCMessageDescriptor *desc, const char *name,
            ProtobufCType type)
{
	const ProtobufCFieldDescriptor *f =
	        protobuf_c_message_descriptor_get_field_by_name(desc, name);
	if (f == NULL || f->type != type || f->label != PROTOBUF_C_LABEL_NONE) {
		return NULL;
	}
	return f;
}

/* Address of field name in m; write_defs_check made sure it exists. */
static void *field_at(ProtobufCMessage *m, const char *name)
{
	const ProtobufCFieldDescriptor *f =
	        protobuf_c_message_descriptor_get_field_by_name(m->descriptor,
	                                                        name);
	return (char *)m + f->offset;
}

/* What is wrong with w (serve_plain_write would mis-set the command),
 * NULL when nothing. */
static const char *write_def_fault(const struct write_def *w)
{
	const ProtobufCFieldDescriptor *f;
	if (method_index(w->method) < 0) {
		return "the method is not in methods[]";
	}
	if (w->cmd->sizeof_message > sizeof(union write_cmd)) {
		return "the command is not in union write_cmd";
	}
	f = plain_field(w->cmd, "request", PROTOBUF_C_TYPE_MESSAGE);
	if (f == NULL || f->descriptor != w->request) {
		return "the command has no field request of the request's type";
	}
	if ((w->flags & W_NOW_MS) &&
	    plain_field(w->cmd, "now_ms", PROTOBUF_C_TYPE_UINT64) == NULL) {
		return "W_NOW_MS but the command has no uint64 now_ms";
	}
	if ((w->flags & W_REFUSE_INTERNAL) &&
	    (plain_field(w->request, "scope", PROTOBUF_C_TYPE_STRING) == NULL ||
	     plain_field(w->request, "stream", PROTOBUF_C_TYPE_STRING) ==
	             NULL)) {
		return "W_REFUSE_INTERNAL but the request has no string scope "
		       "and stream";
	}
	f = protobuf_c_message_descriptor_get_field(
	        &strata__v1__controller_command__descriptor, w->command);
	if (f == NULL || f->descriptor != w->cmd ||
	    !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
	    f->quantifier_offset !=
	            offsetof(Strata__V1__ControllerCommand, command_case)) {
		return "the ControllerCommand case does not hold the command";
	}
	return NULL;
}

/* STRATA_EINTERNAL (errmsg) when a write_defs row does not match the
 * generated messages: a build error, so fail at start, not per request. */
static int write_defs_check(char *errmsg)
{
	for (size_t i = 0; i < N_WRITES; i++) {
		const char *fault = write_def_fault(&write_defs[i]);
		if (fault != NULL) {
			errmsg_set(errmsg,
			           "controller API: write_defs[%zu] (method "
			           "%" PRIu32 "): %s; fix the table in "
			           "controller/api.c",
			           i, write_defs[i].method, fault);
			return STRATA_EINTERNAL;
		}
	}
	return 0;
}

static void propose_plain(struct ctl_req *r, const struct write_def *w,
                          uint64_t now);

/* cutcheck_done_fn of a W_CHECK_CUT write: propose it, or refuse it. */
static void cut_checked(void *arg, int code, const char *msg)
{
	struct ctl_req *r = arg;
	if (code != 0) {
		finish_write(r, code, msg);
		return;
	}
	propose_plain(r, r->write, ctl_now_ms());
}

/* Serve a write of write_defs: decode, optional internal-stream check,
 * wrap the request (owned by r) in its command, propose. */
static void serve_plain_write(struct ctl_req *r, const struct write_def *w,
                              const uint8_t *body, size_t len, uint64_t now)
{
	if (!ctl_req_decode(r, w->request, body, len)) {
		return;
	}
	if ((w->flags & W_REFUSE_INTERNAL) &&
	    refuse_internal_stream(r, *(char **)field_at(r->msg, "scope"),
	                           *(char **)field_at(r->msg, "stream"))) {
		return;
	}
	if (w->flags & W_CHECK_CUT) {
		const Strata__V1__TruncateStreamRequest *q = (void *)r->msg;
		r->write = w;
		cutcheck_run(r->api->cuts, r->svc,
		             ctl_api_method_name(r->method), q->scope,
		             q->stream, q->cut, cut_checked, r);
		return;
	}
	propose_plain(r, w, now);
}

/* Wrap the decoded request of w (owned by r) in its command, propose. */
static void propose_plain(struct ctl_req *r, const struct write_def *w,
                          uint64_t now)
{
	CMD_INIT(cmd);
	union write_cmd c;
	protobuf_c_message_init(w->cmd, &c);
	*(ProtobufCMessage **)field_at(&c.base, "request") = r->msg;
	if (w->flags & W_NOW_MS) {
		*(uint64_t *)field_at(&c.base, "now_ms") = now;
	}
	const ProtobufCFieldDescriptor *f =
	        protobuf_c_message_descriptor_get_field(
	                &strata__v1__controller_command__descriptor,
	                w->command);
	cmd.command_case = w->command;
	*(ProtobufCMessage **)((char *)&cmd + f->offset) = &c.base;
	r->wait = w->wait;
	ctl_req_propose(r, &cmd);
}

/* Build and propose the FSM command of a mutating client request. */
static void serve_write(struct ctl_req *r, const uint8_t *body, size_t len)
{
	CMD_INIT(cmd);
	uint64_t now = ctl_now_ms();
	for (size_t i = 0; i < N_WRITES; i++) {
		if (write_defs[i].method == r->method) {
			serve_plain_write(r, &write_defs[i], body, len, now);
			return;
		}
	}
	switch (r->method) {
	case STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_TXN: {
		Strata__V1__CreateTxnCmd c = STRATA__V1__CREATE_TXN_CMD__INIT;
		if (!ctl_req_decode(r,
		                    &strata__v1__create_txn_request__descriptor,
		                    body, len)) {
			return;
		}
		c.request = (Strata__V1__CreateTxnRequest *)r->msg;
		c.now_ms = now;
		cmd.command_case =
		        STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_TXN;
		cmd.create_txn = &c;
		r->wait = CTL_WAIT_TXN_CREATED;
		r->wait_scope = c.request->scope;
		r->wait_stream = c.request->stream;
		ctl_req_propose(r, &cmd);
		return;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_COMMIT_TXN:
	case STRATA__V1__CONTROLLER_METHOD__CTL_ABORT_TXN: {
		Strata__V1__EndTxnCmd c = STRATA__V1__END_TXN_CMD__INIT;
		if (!ctl_req_decode(r, &strata__v1__end_txn_request__descriptor,
		                    body, len)) {
			return;
		}
		c.request = (Strata__V1__EndTxnRequest *)r->msg;
		c.request->commit =
		        r->method ==
		        STRATA__V1__CONTROLLER_METHOD__CTL_COMMIT_TXN;
		c.now_ms = now;
		cmd.command_case =
		        STRATA__V1__CONTROLLER_COMMAND__COMMAND_END_TXN;
		cmd.end_txn = &c;
		r->wait = c.request->commit ? CTL_WAIT_TXN_COMMITTED
		                            : CTL_WAIT_TXN_ABORTED;
		r->wait_id = c.request->txn_id;
		r->wait_scope = c.request->scope;
		r->wait_stream = c.request->stream;
		ctl_req_propose(r, &cmd);
		return;
	}
	default:
		ctl_req_finish_raw(r, STRATA_EINTERNAL, "unrouted write", NULL,
		                   NULL, 0);
		return;
	}
}

/* -------------------------------------------------------------- reads -- */

/* Finish r with a query's outcome: the allocated reply (freed here) or
 * the error and its message. */
static void finish_query(struct ctl_req *r, int rc, void *reply,
                         const char *errmsg)
{
	if (rc != 0) {
		ctl_req_finish(r, rc, errmsg, NULL);
	} else {
		ctl_req_finish(r, 0, NULL, reply);
	}
	cfsm_msg_free(reply);
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static void serve_digest(struct ctl_req *r)
{
	Strata__V1__StateDigestRequest *q = (void *)r->msg;
	Strata__V1__StateDigestReply rep = STRATA__V1__STATE_DIGEST_REPLY__INIT;
	struct ctl_status st;
	uint8_t *buf = NULL;
	size_t len = 0;
	ctl_service_status(r->svc, &st);
	const struct cfsm *f = ctl_service_lock(r->svc);
	int rc = cfsm_snapshot(f, &buf, &len);
	rep.applied_index = ctl_service_applied_locked(r->svc);
	ctl_service_unlock(r->svc);
	if (rc != 0) {
		ctl_req_finish(r, rc, "out of memory packing the state", NULL);
		return;
	}
	rep.digest = fnv1a(buf, len);
	rep.node_id = st.node_id;
	rep.term = st.term;
	rep.leader_id = st.leader_id;
	if (q->include_state) {
		rep.state.data = buf;
		rep.state.len = len;
	}
	ctl_req_finish(r, 0, NULL, &rep.base);
	strata_free(buf);
}

static void serve_workflow(struct ctl_req *r)
{
	Strata__V1__GetWorkflowRequest *q = (void *)r->msg;
	Strata__V1__WorkflowStatus rep = STRATA__V1__WORKFLOW_STATUS__INIT;
	const struct cfsm *f = ctl_service_lock(r->svc);
	const Strata__V1__Workflow *w = cfsm_find_workflow(f, q->workflow_id);
	rep.workflow_id = q->workflow_id;
	rep.running = w != NULL;
	rep.issued = q->workflow_id > 0 &&
	             q->workflow_id < cfsm_state(f)->next_workflow_id;
	rep.workflow = (Strata__V1__Workflow *)w;
	size_t len = protobuf_c_message_get_packed_size(&rep.base);
	uint8_t *buf = strata_malloc(len > 0 ? len : 1);
	if (buf != NULL) {
		protobuf_c_message_pack(&rep.base, buf);
	}
	ctl_service_unlock(r->svc);
	if (buf == NULL) {
		ctl_req_finish(r, STRATA_ENOMEM, "out of memory", NULL);
		return;
	}
	ctl_req_finish_raw(r, 0, NULL, NULL, buf, len);
	strata_free(buf);
}

static void serve_txn(struct ctl_req *r)
{
	Strata__V1__GetTxnRequest *q = (void *)r->msg;
	char msg[STRATA_ERRMSG_SIZE];
	const struct cfsm *f = ctl_service_lock(r->svc);
	const Strata__V1__Txn *t =
	        cfsm_find_txn(f, q->scope, q->stream, q->txn_id);
	uint8_t *buf = NULL;
	size_t len = 0;
	if (t != NULL) {
		len = protobuf_c_message_get_packed_size(&t->base);
		buf = strata_malloc(len > 0 ? len : 1);
		if (buf != NULL) {
			protobuf_c_message_pack(&t->base, buf);
		}
	}
	ctl_service_unlock(r->svc);
	if (t == NULL) {
		snprintf(msg, sizeof(msg),
		         "no transaction %" PRIu64 " on stream %.60s/%.60s "
		         "(unknown, or completed over an hour ago)",
		         q->txn_id, q->scope, q->stream);
		ctl_req_finish(r, STRATA_ENOENT, msg, NULL);
		return;
	}
	if (buf == NULL) {
		ctl_req_finish(r, STRATA_ENOMEM, "out of memory", NULL);
		return;
	}
	ctl_req_finish_raw(r, 0, NULL, NULL, buf, len);
	strata_free(buf);
}

/* Client URL of store node id (decimal string) in f, or NULL. */
static const char *node_url(const struct cfsm *f, const char *id)
{
	const Strata__V1__StoreNode *nd = cfsm_find_node(f, id);
	if (nd == NULL) {
		return NULL;
	}
	return nd->client_url[0] != '\0' ? nd->client_url : nd->address;
}

static void serve_endpoint(struct ctl_req *r)
{
	Strata__V1__GetSegmentEndpointRequest *q = (void *)r->msg;
	Strata__V1__SegmentEndpointReply rep =
	        STRATA__V1__SEGMENT_ENDPOINT_REPLY__INIT;
	char msg[STRATA_ERRMSG_SIZE];
	char name[600];
	const char *urls[CFSM_REPLICAS];
	const struct cfsm *f = ctl_service_lock(r->svc);
	if (!cfsm_has_segment(f, q->scope, q->stream, q->segment_id)) {
		ctl_service_unlock(r->svc);
		snprintf(msg, sizeof(msg),
		         "stream %.100s/%.100s has no segment %" PRIu32
		         ".%" PRIu32 "; list its segments first",
		         q->scope, q->stream, (uint32_t)q->segment_id,
		         (uint32_t)(q->segment_id >> 32));
		ctl_req_finish(r, STRATA_ENOENT, msg, NULL);
		return;
	}
	cfsm_segment_name(name, sizeof(name), q->scope, q->stream,
	                  q->segment_id);
	rep.qualified_name = name;
	rep.container =
	        cfsm_segment_container(f, q->scope, q->stream, q->segment_id);
	const Strata__V1__ContainerAssignment *a =
	        cfsm_container_replicas(f, rep.container);
	for (size_t i = 0; a != NULL && i < a->n_replicas &&
	                   rep.n_replica_urls < CFSM_REPLICAS;
	     i++) {
		const char *u = node_url(f, a->replicas[i]);
		if (u != NULL) {
			urls[rep.n_replica_urls++] = u;
		}
	}
	rep.replica_urls = (char **)urls;
	const char *lu = a != NULL && a->leader[0] != '\0'
	                         ? node_url(f, a->leader)
	                         : NULL;
	rep.leader_known = lu != NULL;
	rep.client_url = (char *)(lu != NULL               ? lu
	                          : rep.n_replica_urls > 0 ? urls[0]
	                                                   : "");
	size_t len = protobuf_c_message_get_packed_size(&rep.base);
	uint8_t *buf = strata_malloc(len > 0 ? len : 1);
	if (buf != NULL) {
		protobuf_c_message_pack(&rep.base, buf);
	}
	ctl_service_unlock(r->svc);
	if (buf == NULL) {
		ctl_req_finish(r, STRATA_ENOMEM, "out of memory", NULL);
		return;
	}
	ctl_req_finish_raw(r, 0, NULL, NULL, buf, len);
	strata_free(buf);
}

/* Serve a query method; false when method is not a query. */
static bool serve_read(struct ctl_req *r, const uint8_t *body, size_t len)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	void *out = NULL;
	int rc;
	const ProtobufCMessageDescriptor *d;
	switch (r->method) {
	case STRATA__V1__CONTROLLER_METHOD__CTL_LIST_SCOPES:
		d = &strata__v1__list_scopes_request__descriptor;
		break;
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_STREAM:
		d = &strata__v1__get_stream_request__descriptor;
		break;
	case STRATA__V1__CONTROLLER_METHOD__CTL_LIST_STREAMS:
		d = &strata__v1__list_streams_request__descriptor;
		break;
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_CURRENT_SEGMENTS:
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_SEGMENTS_AT_CUT:
		d = &strata__v1__get_segments_request__descriptor;
		break;
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_SUCCESSORS:
		d = &strata__v1__get_successors_request__descriptor;
		break;
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_SEGMENT_ENDPOINT:
		d = &strata__v1__get_segment_endpoint_request__descriptor;
		break;
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_READER_GROUP:
		d = &strata__v1__get_reader_group_request__descriptor;
		break;
	case STRATA__V1__CONTROLLER_METHOD__CTL_LIST_READER_GROUPS:
		d = &strata__v1__list_reader_groups_request__descriptor;
		break;
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_TXN:
		d = &strata__v1__get_txn_request__descriptor;
		break;
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_WORKFLOW:
		d = &strata__v1__get_workflow_request__descriptor;
		break;
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_STATE_DIGEST:
		d = &strata__v1__state_digest_request__descriptor;
		break;
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_WATERMARKS:
		d = &strata__v1__get_watermarks_request__descriptor;
		break;
	default:
		return false;
	}
	/* The digest is a per-replica diagnostic: served in any role. */
	if (r->method != STRATA__V1__CONTROLLER_METHOD__CTL_GET_STATE_DIGEST &&
	    !ctl_req_need_read(r)) {
		return true;
	}
	if (!ctl_req_decode(r, d, body, len)) {
		return true;
	}
	switch (r->method) {
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_STATE_DIGEST:
		serve_digest(r);
		return true;
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_WORKFLOW:
		serve_workflow(r);
		return true;
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_TXN:
		serve_txn(r);
		return true;
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_SEGMENT_ENDPOINT:
		serve_endpoint(r);
		return true;
	default:
		break;
	}
	const struct cfsm *f = ctl_service_lock(r->svc);
	switch (r->method) {
	case STRATA__V1__CONTROLLER_METHOD__CTL_LIST_SCOPES:
		rc = cfsm_list_scopes(f, (Strata__V1__ListScopesReply **)&out,
		                      err);
		break;
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_STREAM: {
		Strata__V1__GetStreamRequest *q = (void *)r->msg;
		rc = cfsm_get_stream(f, q->scope, q->stream,
		                     (Strata__V1__StreamInfo **)&out, err);
		break;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_LIST_STREAMS: {
		Strata__V1__ListStreamsRequest *q = (void *)r->msg;
		rc = cfsm_list_streams_page(
		        f, q->scope, q->tag, q->start_after, q->page_bytes,
		        (Strata__V1__ListStreamsReply **)&out, err);
		break;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_CURRENT_SEGMENTS: {
		Strata__V1__GetSegmentsRequest *q = (void *)r->msg;
		rc = cfsm_current_segments(f, q->scope, q->stream,
		                           (Strata__V1__SegmentsReply **)&out,
		                           err);
		break;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_SEGMENTS_AT_CUT: {
		Strata__V1__GetSegmentsRequest *q = (void *)r->msg;
		rc = cfsm_segments_at_cut(f, q->scope, q->stream, q->cut,
		                          (Strata__V1__SegmentsReply **)&out,
		                          err);
		break;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_SUCCESSORS: {
		Strata__V1__GetSuccessorsRequest *q = (void *)r->msg;
		rc = cfsm_successors(f, q->scope, q->stream, q->segment_id,
		                     (Strata__V1__SuccessorsReply **)&out, err);
		break;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_READER_GROUP: {
		Strata__V1__GetReaderGroupRequest *q = (void *)r->msg;
		rc = cfsm_get_reader_group(
		        f, q->scope, q->name,
		        (Strata__V1__ReaderGroupConfig **)&out, err);
		break;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_LIST_READER_GROUPS: {
		Strata__V1__ListReaderGroupsRequest *q = (void *)r->msg;
		rc = cfsm_list_reader_groups(
		        f, q->scope, (Strata__V1__ListReaderGroupsReply **)&out,
		        err);
		break;
	}
	case STRATA__V1__CONTROLLER_METHOD__CTL_GET_WATERMARKS: {
		Strata__V1__GetWatermarksRequest *q = (void *)r->msg;
		rc = cfsm_watermarks(f, q->scope, q->stream, q->after_index,
		                     (Strata__V1__WatermarksReply **)&out, err);
		break;
	}
	default:
		rc = STRATA_EINTERNAL;
		snprintf(err, sizeof(err), "unrouted query");
		break;
	}
	ctl_service_unlock(r->svc);
	finish_query(r, rc, out, err);
	return true;
}

/* ----------------------------------------------------------- dispatch -- */

void ctl_api_dispatch(struct ctl_api *a, uint32_t method, const uint8_t *body,
                      size_t len, ctl_api_done_fn done, void *arg)
{
	struct ctl_req *r = strata_calloc(1, sizeof(*r));
	if (r == NULL) {
		done(arg, STRATA_ENOMEM, "controller out of memory; retry", "",
		     NULL, 0);
		return;
	}
	r->api = a;
	r->svc = a->svc;
	r->method = method;
	r->done = done;
	r->arg = arg;
	r->t0_ns = mono_ns();
	Strata__V1__ControllerReply init = STRATA__V1__CONTROLLER_REPLY__INIT;
	r->reply = init;
	if (serve_read(r, body, len) || cluster_dispatch(r, body, len)) {
		return;
	}
	if (method_index(method) < 0) {
		char msg[STRATA_ERRMSG_SIZE];
		snprintf(msg, sizeof(msg),
		         "the controller does not know method %" PRIu32
		         "; upgrade the controller or use a matching client",
		         method);
		ctl_req_finish_raw(r, STRATA_ENOTSUP, msg, NULL, NULL, 0);
		return;
	}
	if (!ctl_req_need_leader(r)) {
		return;
	}
	serve_write(r, body, len);
}

static void rpc_done(void *arg, int code, const char *msg, const char *redirect,
                     const uint8_t *body, size_t len)
{
	struct rpc_call *call = arg;
	if (redirect[0] != '\0') {
		rpc_reply_redirect(call, code, msg, redirect);
	} else {
		rpc_reply(call, code, msg[0] != '\0' ? msg : NULL, body, len);
	}
}

void ctl_api_rpc_handler(void *arg, struct rpc_call *call, uint32_t method,
                         const uint8_t *body, size_t len)
{
	ctl_api_dispatch(arg, method, body, len, rpc_done, call);
}
