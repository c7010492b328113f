/* libstrata stream manager: scopes and streams through the controller's
 * client API (proto/strata/v1/controller.proto, methods 100-199).
 *
 * Mutations: propose -> ControllerReply; when its workflow still runs
 * (done false), poll CTL_GET_WORKFLOW until it finished or the operation
 * timeout. Transient failures where the request surely did not run (no
 * connection, no leader, back-pressure) are retried with backoff; after
 * an unknown outcome (timeout, lost connection, leadership lost) the
 * request is repeated too, and the "already done" answer of that repeat
 * (EEXIST for a create, ENOENT for a delete) counts as success.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client/client_int.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/segname.h"
#include "strata/segment.h"
#include "strata/v1/controller.pb-c.h"
#include "strata/v1/segmentstore.pb-c.h"

void strata_stream_config_default(struct strata_stream_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->scaling = STRATA_SCALING_FIXED;
	cfg->min_segments = 1;
	cfg->target_rate = 0;
	cfg->scale_factor = 0;
	cfg->retention = STRATA_RETENTION_NONE;
}

void strata_names_free(struct strata_names *names)
{
	if (names == NULL) {
		return;
	}
	for (size_t i = 0; i < names->n; i++) {
		strata_free(names->names[i]);
	}
	strata_free(names->names);
	strata_free(names);
}

/* snprintf for the operation names of messages (never fails). */
static void what_fmt(char *buf, size_t size, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void what_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

static bool not_executed(int rc)
{
	return rc == STRATA_EUNAVAIL || rc == STRATA_ENOTLEADER ||
	       rc == STRATA_ESHUTDOWN || rc == STRATA_EAGAIN;
}

static bool unknown_outcome(int rc)
{
	return rc == STRATA_ETIMEDOUT || rc == STRATA_ECLOSED ||
	       rc == STRATA_ELEADERLOST;
}

/* Wait until workflow id finished; 0, STRATA_ETIMEDOUT or an error. */
static int wait_workflow(struct strata_client *c, uint64_t id,
                         uint64_t deadline, const char *what, char *errmsg)
{
	Strata__V1__GetWorkflowRequest q =
	        STRATA__V1__GET_WORKFLOW_REQUEST__INIT;
	q.workflow_id = id;
	unsigned delay = 20;
	for (;;) {
		Strata__V1__WorkflowStatus *st = NULL;
		char msg[STRATA_ERRMSG_SIZE];
		int rc = client_call(
		        c, NULL,
		        STRATA__V1__CONTROLLER_METHOD__CTL_GET_WORKFLOW,
		        RPC_IDEMPOTENT, &q.base,
		        &strata__v1__workflow_status__descriptor,
		        (ProtobufCMessage **)&st, msg);
		if (rc == 0) {
			bool running = st->running;
			rpc_pb_free(&st->base);
			if (!running) {
				return 0;
			}
		} else if (!not_executed(rc) && !unknown_outcome(rc)) {
			client_err(errmsg,
			           "%s: waiting for workflow %" PRIu64 ": %s",
			           what, id, msg);
			return rc;
		}
		if (loop_now_ms() + delay >= deadline ||
		    atomic_load(&c->closing)) {
			client_err(errmsg,
			           "%s: accepted, but workflow %" PRIu64
			           " is still running after the operation "
			           "timeout; it goes on, check again later",
			           what, id);
			return STRATA_ETIMEDOUT;
		}
		clock_sleep_ms(delay);
		if (delay < 500) {
			delay *= 2;
		}
	}
}

/* One mutating call (see the file comment and client_int.h). */
int client_ctl_mutate(struct strata_client *c, uint32_t method,
                      const ProtobufCMessage *req, int already_done,
                      const char *what, char *errmsg)
{
	return client_ctl_mutate_reply(c, method, req, already_done, what, NULL,
	                               errmsg);
}

int client_ctl_mutate_reply(struct strata_client *c, uint32_t method,
                            const ProtobufCMessage *req, int already_done,
                            const char *what, Strata__V1__ControllerReply **out,
                            char *errmsg)
{
	if (out != NULL) {
		*out = NULL;
	}
	int rc = client_check_blocking(c, what, errmsg);
	if (rc != 0) {
		return rc;
	}
	uint64_t deadline =
	        loop_now_ms() + (uint64_t)c->cfg.operation_timeout_ms;
	bool unknown = false;
	char msg[STRATA_ERRMSG_SIZE];
	Strata__V1__ControllerReply *rep = NULL;
	for (unsigned n = 1;; n++) {
		rc = client_call(c, NULL, method, 0, req,
		                 &strata__v1__controller_reply__descriptor,
		                 (ProtobufCMessage **)&rep, msg);
		if (rc == 0 || atomic_load(&c->closing)) {
			break;
		}
		if (unknown && already_done != 0 && rc == already_done) {
			rc = 0;
			break;
		}
		if (!not_executed(rc) && !unknown_outcome(rc)) {
			break;
		}
		unknown |= unknown_outcome(rc);
		unsigned d = 50u << (n < 5 ? n : 5);
		if (loop_now_ms() + d >= deadline) {
			break;
		}
		clock_sleep_ms(d);
	}
	if (rc != 0) {
		if (rc == STRATA_EUNAVAIL || rc == STRATA_ETIMEDOUT) {
			client_err(errmsg,
			           "%s: controller unreachable or without a "
			           "leader (%s): %.120s; check the controller "
			           "URLs and that strata-controller runs",
			           what, c->ctl_urls[0], msg);
		} else {
			client_err(errmsg, "%s: %s", what, msg);
		}
		return rc;
	}
	if (rep == NULL) {
		return 0; /* "already done" after an unknown outcome */
	}
	uint64_t wf = rep->workflow_id;
	bool done = rep->done;
	if (out != NULL) {
		*out = rep;
	} else {
		rpc_pb_free(&rep->base);
	}
	if (wf != 0 && !done) {
		return wait_workflow(c, wf, deadline, what, errmsg);
	}
	return 0;
}

int client_ctl_mutate_reply_busy(struct strata_client *c, uint32_t method,
                                 const ProtobufCMessage *req, int already_done,
                                 const char *what,
                                 Strata__V1__ControllerReply **out,
                                 char *errmsg)
{
	uint64_t deadline =
	        clock_mono_ms() + (uint64_t)c->cfg.operation_timeout_ms;
	unsigned delay = 50;
	for (;;) {
		int rc = client_ctl_mutate_reply(c, method, req, already_done,
		                                 what, out, errmsg);
		if (rc != STRATA_EBUSY || clock_mono_ms() + delay >= deadline) {
			return rc;
		}
		clock_sleep_ms(delay);
		if (delay < 1000) {
			delay *= 2;
		}
	}
}

int client_ctl_mutate_busy(struct strata_client *c, uint32_t method,
                           const ProtobufCMessage *req, int already_done,
                           const char *what, char *errmsg)
{
	return client_ctl_mutate_reply_busy(c, method, req, already_done, what,
	                                    NULL, errmsg);
}

int strata_scope_create(struct strata_client *c, const char *scope,
                        char *errmsg)
{
	char what[300];
	int rc = client_check_name(scope, "scope", errmsg);
	if (rc != 0) {
		return rc;
	}
	what_fmt(what, sizeof(what), "create scope %s", scope);
	Strata__V1__CreateScopeRequest q =
	        STRATA__V1__CREATE_SCOPE_REQUEST__INIT;
	q.scope = (char *)scope;
	return client_ctl_mutate(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_SCOPE, &q.base,
	        STRATA_EEXIST, what, errmsg);
}

int strata_scope_delete(struct strata_client *c, const char *scope,
                        char *errmsg)
{
	char what[300];
	int rc = client_check_name(scope, "scope", errmsg);
	if (rc != 0) {
		return rc;
	}
	what_fmt(what, sizeof(what), "delete scope %s", scope);
	Strata__V1__DeleteScopeRequest q =
	        STRATA__V1__DELETE_SCOPE_REQUEST__INIT;
	q.scope = (char *)scope;
	return client_ctl_mutate(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_DELETE_SCOPE, &q.base,
	        STRATA_ENOENT, what, errmsg);
}

/* Append copies of src[0..n) to l; on ENOMEM l keeps what it had. */
static int names_append(struct strata_names *l, char **src, size_t n,
                        char *errmsg)
{
	char **grown =
	        n == 0 ? l->names
	               : strata_realloc(l->names, (l->n + n) * sizeof(char *));
	if (n > 0 && grown == NULL) {
		client_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	l->names = grown;
	for (size_t i = 0; i < n; i++) {
		l->names[l->n] = strata_strdup(src[i]);
		if (l->names[l->n] == NULL) {
			client_err(errmsg, "out of memory");
			return STRATA_ENOMEM;
		}
		l->n++;
	}
	return 0;
}

static int names_from(char **src, size_t n, struct strata_names **out,
                      char *errmsg)
{
	struct strata_names *l = strata_calloc(1, sizeof(*l));
	if (l == NULL) {
		client_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	int rc = names_append(l, src, n, errmsg);
	if (rc != 0) {
		strata_names_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

/* Names a page of stream names may take: a quarter of the RPC limit. */
#define LIST_PAGE_BYTES (RPC_DEFAULT_MAX_MSG_BYTES / 4)

int strata_scope_list(struct strata_client *c, struct strata_names **out,
                      char *errmsg)
{
	int rc = client_check_blocking(c, "strata_scope_list", errmsg);
	if (rc != 0) {
		return rc;
	}
	Strata__V1__ListScopesRequest q = STRATA__V1__LIST_SCOPES_REQUEST__INIT;
	Strata__V1__ListScopesReply *rep = NULL;
	rc = client_ctl_query(c, STRATA__V1__CONTROLLER_METHOD__CTL_LIST_SCOPES,
	                      &q.base,
	                      &strata__v1__list_scopes_reply__descriptor,
	                      (ProtobufCMessage **)&rep, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = names_from(rep->scopes, rep->n_scopes, out, errmsg);
	rpc_pb_free(&rep->base);
	return rc;
}

int strata_stream_list(struct strata_client *c, const char *scope,
                       const char *tag, struct strata_names **out, char *errmsg)
{
	int rc = client_check_name(scope, "scope", errmsg);
	if (rc != 0 || (rc = client_check_blocking(c, "strata_stream_list",
	                                           errmsg)) != 0) {
		return rc;
	}
	struct strata_names *l = NULL;
	if ((rc = names_from(NULL, 0, &l, errmsg)) != 0) {
		return rc;
	}
	/* Page by page, each after the last name of the one before (a
	 * scope's names in one reply can exceed an RPC message). A server
	 * that does not page answers everything at once, without more. */
	char after[STRATA_NAME_MAX + 1] = "";
	Strata__V1__ListStreamsRequest q =
	        STRATA__V1__LIST_STREAMS_REQUEST__INIT;
	q.scope = (char *)scope;
	q.tag = (char *)(tag != NULL ? tag : "");
	q.start_after = after;
	q.page_bytes = LIST_PAGE_BYTES;
	for (bool more = true; more && rc == 0;) {
		Strata__V1__ListStreamsReply *rep = NULL;
		rc = client_ctl_query(
		        c, STRATA__V1__CONTROLLER_METHOD__CTL_LIST_STREAMS,
		        &q.base, &strata__v1__list_streams_reply__descriptor,
		        (ProtobufCMessage **)&rep, errmsg);
		if (rc != 0) {
			break;
		}
		rc = names_append(l, rep->streams, rep->n_streams, errmsg);
		more = rep->more && rep->n_streams > 0;
		const char *last = more ? rep->streams[rep->n_streams - 1] : "";
		if (rc == 0 && more &&
		    (strlen(last) > STRATA_NAME_MAX ||
		     strcmp(last, after) <= 0)) {
			/* Pages must move forward, or this would not end. */
			client_err(errmsg,
			           "list streams of %s: the controller's page "
			           "did not move past \"%.64s\"; the reply is "
			           "malformed",
			           scope, after);
			rc = STRATA_EPROTO;
		}
		if (rc == 0 && more) {
			snprintf(after, sizeof(after), "%s", last);
		}
		rpc_pb_free(&rep->base);
	}
	if (rc != 0) {
		strata_names_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

/* Protobuf form of a config; the pieces live in *pb (stack of caller). */
struct pb_config {
	Strata__V1__StreamConfig cfg;
	Strata__V1__ScalingPolicy scaling;
	Strata__V1__FixedScaling fixed;
	Strata__V1__RateScaling rate;
	Strata__V1__RetentionPolicy retention;
	Strata__V1__RetentionBound bound;
};

static int config_to_pb(const struct strata_stream_config *in,
                        struct pb_config *pb, char *errmsg)
{
	struct strata_stream_config def;
	if (in == NULL) {
		strata_stream_config_default(&def);
		in = &def;
	}
	strata__v1__stream_config__init(&pb->cfg);
	strata__v1__scaling_policy__init(&pb->scaling);
	strata__v1__fixed_scaling__init(&pb->fixed);
	strata__v1__rate_scaling__init(&pb->rate);
	strata__v1__retention_policy__init(&pb->retention);
	strata__v1__retention_bound__init(&pb->bound);
	switch (in->scaling) {
	case STRATA_SCALING_FIXED:
		pb->fixed.min_segments = in->min_segments;
		pb->scaling.policy_case =
		        STRATA__V1__SCALING_POLICY__POLICY_FIXED;
		pb->scaling.fixed = &pb->fixed;
		break;
	case STRATA_SCALING_BY_EVENT_RATE:
	case STRATA_SCALING_BY_DATA_RATE:
		pb->rate.target = in->target_rate;
		pb->rate.scale_factor = in->scale_factor;
		pb->rate.min_segments = in->min_segments;
		if (in->scaling == STRATA_SCALING_BY_EVENT_RATE) {
			pb->scaling.policy_case =
			        STRATA__V1__SCALING_POLICY__POLICY_BY_EVENT_RATE;
			pb->scaling.by_event_rate = &pb->rate;
		} else {
			pb->scaling.policy_case =
			        STRATA__V1__SCALING_POLICY__POLICY_BY_DATA_RATE;
			pb->scaling.by_data_rate = &pb->rate;
		}
		break;
	default:
		client_err(errmsg, "stream config: unknown scaling type %d",
		           (int)in->scaling);
		return STRATA_EINVAL;
	}
	pb->cfg.scaling = &pb->scaling;
	pb->bound.min = in->retention_min;
	pb->bound.max = in->retention_max;
	switch (in->retention) {
	case STRATA_RETENTION_NONE:
		break;
	case STRATA_RETENTION_BY_TIME:
		pb->retention.policy_case =
		        STRATA__V1__RETENTION_POLICY__POLICY_BY_TIME;
		pb->retention.by_time = &pb->bound;
		pb->cfg.retention = &pb->retention;
		break;
	case STRATA_RETENTION_BY_SIZE:
		pb->retention.policy_case =
		        STRATA__V1__RETENTION_POLICY__POLICY_BY_SIZE;
		pb->retention.by_size = &pb->bound;
		pb->cfg.retention = &pb->retention;
		break;
	default:
		client_err(errmsg, "stream config: unknown retention type %d",
		           (int)in->retention);
		return STRATA_EINVAL;
	}
	pb->cfg.n_tags = in->n_tags;
	pb->cfg.tags = (char **)in->tags;
	return 0;
}

/* The controller's record of scope/stream (*out: free with
 * rpc_pb_free). */
static int stream_query(struct strata_client *c, const char *scope,
                        const char *stream, Strata__V1__StreamInfo **out,
                        char *errmsg)
{
	Strata__V1__GetStreamRequest q = STRATA__V1__GET_STREAM_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	*out = NULL;
	return client_ctl_query(c,
	                        STRATA__V1__CONTROLLER_METHOD__CTL_GET_STREAM,
	                        &q.base, &strata__v1__stream_info__descriptor,
	                        (ProtobufCMessage **)out, errmsg);
}

int strata_stream_create(struct strata_client *c, const char *scope,
                         const char *stream,
                         const struct strata_stream_config *cfg, char *errmsg)
{
	char what[600];
	struct pb_config pb;
	int rc = client_check_stream(scope, stream, errmsg);
	if (rc != 0 || (rc = config_to_pb(cfg, &pb, errmsg)) != 0) {
		return rc;
	}
	what_fmt(what, sizeof(what), "create stream %s/%s", scope, stream);
	Strata__V1__CreateStreamRequest q =
	        STRATA__V1__CREATE_STREAM_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	q.config = &pb.cfg;
	rc = client_ctl_mutate(c,
	                       STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_STREAM,
	                       &q.base, STRATA_EEXIST, what, errmsg);
	if (rc != 0) {
		return rc;
	}
	/* After an unknown outcome the repeat's EEXIST does not say the
	 * segments exist yet: wait until the stream left CREATING. */
	uint64_t deadline =
	        loop_now_ms() + (uint64_t)c->cfg.operation_timeout_ms;
	unsigned delay = 20;
	for (;;) {
		Strata__V1__StreamInfo *si = NULL;
		rc = stream_query(c, scope, stream, &si, errmsg);
		if (rc != 0) {
			return rc;
		}
		bool creating = si->state ==
		                STRATA__V1__STREAM_STATE__STREAM_STATE_CREATING;
		rpc_pb_free(&si->base);
		if (!creating) {
			return 0;
		}
		if (loop_now_ms() + delay >= deadline) {
			client_err(
			        errmsg,
			        "%s: accepted, but its segments are still "
			        "being "
			        "created after the operation timeout; it goes "
			        "on, check again later",
			        what);
			return STRATA_ETIMEDOUT;
		}
		clock_sleep_ms(delay);
		if (delay < 500) {
			delay *= 2;
		}
	}
}

int strata_stream_update(struct strata_client *c, const char *scope,
                         const char *stream,
                         const struct strata_stream_config *cfg, char *errmsg)
{
	char what[600];
	struct pb_config pb;
	int rc = client_check_stream(scope, stream, errmsg);
	if (rc != 0 || (rc = config_to_pb(cfg, &pb, errmsg)) != 0) {
		return rc;
	}
	what_fmt(what, sizeof(what), "update stream %s/%s", scope, stream);
	Strata__V1__UpdateStreamRequest q =
	        STRATA__V1__UPDATE_STREAM_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	q.config = &pb.cfg;
	return client_ctl_mutate_busy(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_UPDATE_STREAM, &q.base, 0,
	        what, errmsg);
}

int strata_stream_seal(struct strata_client *c, const char *scope,
                       const char *stream, char *errmsg)
{
	char what[600];
	int rc = client_check_stream(scope, stream, errmsg);
	if (rc != 0) {
		return rc;
	}
	what_fmt(what, sizeof(what), "seal stream %s/%s", scope, stream);
	Strata__V1__SealStreamRequest q = STRATA__V1__SEAL_STREAM_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	return client_ctl_mutate_busy(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_SEAL_STREAM, &q.base, 0,
	        what, errmsg);
}

int strata_stream_delete(struct strata_client *c, const char *scope,
                         const char *stream, char *errmsg)
{
	char what[600];
	int rc = client_check_stream(scope, stream, errmsg);
	if (rc != 0) {
		return rc;
	}
	what_fmt(what, sizeof(what), "delete stream %s/%s", scope, stream);
	Strata__V1__DeleteStreamRequest q =
	        STRATA__V1__DELETE_STREAM_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	return client_ctl_mutate_busy(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_DELETE_STREAM, &q.base,
	        STRATA_ENOENT, what, errmsg);
}

/* Protobuf view of a cut; frees nothing of the caller's. */
struct pb_cut {
	Strata__V1__StreamCut cut;
	Strata__V1__SegmentOffset *items;
	Strata__V1__SegmentOffset **ptrs;
};

static int cut_to_pb(const struct strata_stream_cut *in, struct pb_cut *pb)
{
	strata__v1__stream_cut__init(&pb->cut);
	pb->items = NULL;
	pb->ptrs = NULL;
	if (in == NULL || in->n == 0) {
		return 0;
	}
	pb->items = strata_calloc(in->n, sizeof(*pb->items));
	pb->ptrs = strata_calloc(in->n, sizeof(*pb->ptrs));
	if (pb->items == NULL || pb->ptrs == NULL) {
		strata_free(pb->items);
		strata_free(pb->ptrs);
		return STRATA_ENOMEM;
	}
	for (size_t i = 0; i < in->n; i++) {
		strata__v1__segment_offset__init(&pb->items[i]);
		pb->items[i].segment_id = in->positions[i].segment_id;
		pb->items[i].offset = in->positions[i].offset;
		pb->ptrs[i] = &pb->items[i];
	}
	pb->cut.n_positions = in->n;
	pb->cut.positions = pb->ptrs;
	return 0;
}

static void cut_pb_free(struct pb_cut *pb)
{
	strata_free(pb->items);
	strata_free(pb->ptrs);
}

int client_cut_within(struct strata_client *c,
                      const struct strata_stream_cut *cut, const char *what,
                      char *errmsg)
{
	for (size_t i = 0; i < cut->n; i++) {
		const struct strata_segment_position *p = &cut->positions[i];
		if (p->offset <= 0) {
			continue;
		}
		char name[600];
		struct strata_segment_stat st;
		strata_segment_name(name, sizeof(name), cut->scope, cut->stream,
		                    p->segment_id);
		int rc = strata_segment_get_stat(c, name, &st, errmsg);
		if (rc == STRATA_ENOENT) {
			continue; /* gone: the controller judges the cut */
		}
		if (rc != 0) {
			return rc;
		}
		if ((uint64_t)p->offset > st.length) {
			client_err(
			        errmsg,
			        "%s: offset %" PRId64 " of segment %" PRIu32
			        ".%" PRIu32 " is past its end (%" PRIu64
			        " bytes); take a cut from 'stream describe', "
			        "a checkpoint or a read position",
			        what, p->offset, (uint32_t)p->segment_id,
			        (uint32_t)(p->segment_id >> 32), st.length);
			return STRATA_EINVAL;
		}
	}
	return 0;
}

int strata_stream_truncate(struct strata_client *c,
                           const struct strata_stream_cut *cut, char *errmsg)
{
	char what[600];
	if (cut == NULL) {
		client_err(errmsg, "truncate: the stream cut is NULL");
		return STRATA_EINVAL;
	}
	int rc = client_check_stream(cut->scope, cut->stream, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (cut->n == 0) {
		client_err(errmsg,
		           "truncate stream %s/%s: the cut is empty; give a "
		           "position for every segment covering [0,1)",
		           cut->scope, cut->stream);
		return STRATA_EINVAL;
	}
	what_fmt(what, sizeof(what), "truncate stream %s/%s", cut->scope,
	         cut->stream);
	/* A position past a segment's end would be waited for by the
	 * store for ever (the workflow retries): refuse it here. */
	if ((rc = client_check_blocking(c, "strata_stream_truncate", errmsg)) !=
	            0 ||
	    (rc = client_cut_within(c, cut, what, errmsg)) != 0) {
		return rc;
	}
	struct pb_cut pc;
	if (cut_to_pb(cut, &pc) != 0) {
		client_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	Strata__V1__TruncateStreamRequest q =
	        STRATA__V1__TRUNCATE_STREAM_REQUEST__INIT;
	q.scope = (char *)cut->scope;
	q.stream = (char *)cut->stream;
	q.cut = &pc.cut;
	rc = client_ctl_mutate_busy(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_TRUNCATE_STREAM, &q.base,
	        0, what, errmsg);
	cut_pb_free(&pc);
	return rc;
}

int strata_stream_scale(struct strata_client *c, const char *scope,
                        const char *stream, const uint64_t *seal_ids,
                        size_t n_seal, const double *bounds, size_t n_bounds,
                        char *errmsg)
{
	char what[600];
	int rc = client_check_stream(scope, stream, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (n_seal == 0 || n_bounds < 2 || seal_ids == NULL || bounds == NULL) {
		client_err(errmsg,
		           "scale stream %s/%s: give at least one segment to "
		           "seal and at least two range bounds",
		           scope, stream);
		return STRATA_EINVAL;
	}
	size_t nr = n_bounds - 1;
	Strata__V1__KeyRange *ranges = strata_calloc(nr, sizeof(*ranges));
	Strata__V1__KeyRange **ptrs = strata_calloc(nr, sizeof(*ptrs));
	if (ranges == NULL || ptrs == NULL) {
		strata_free(ranges);
		strata_free(ptrs);
		client_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	for (size_t i = 0; i < nr; i++) {
		strata__v1__key_range__init(&ranges[i]);
		ranges[i].low = bounds[i];
		ranges[i].high = bounds[i + 1];
		ptrs[i] = &ranges[i];
	}
	what_fmt(what, sizeof(what), "scale stream %s/%s", scope, stream);
	Strata__V1__ScaleStreamRequest q =
	        STRATA__V1__SCALE_STREAM_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	q.n_seal_segments = n_seal;
	q.seal_segments = (uint64_t *)seal_ids;
	q.n_new_ranges = nr;
	q.new_ranges = ptrs;
	/* EBUSY: a workflow (scale, truncation, rolling commit) or a
	 * commit runs on the stream; nothing changed, so retry. */
	rc = client_ctl_mutate_busy(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_SCALE_STREAM, &q.base, 0,
	        what, errmsg);
	strata_free(ranges);
	strata_free(ptrs);
	return rc;
}

/* ------------------------------------------------------------ segments -- */

void strata_segment_list_free(struct strata_segment_list *l)
{
	if (l == NULL) {
		return;
	}
	for (size_t i = 0; i < l->n; i++) {
		strata_free(l->segments[i].name);
		strata_free(l->segments[i].predecessors);
	}
	strata_free(l->segments);
	strata_free(l);
}

static struct strata_segment_list *list_new(size_t n)
{
	struct strata_segment_list *l = strata_calloc(1, sizeof(*l));
	if (l == NULL) {
		return NULL;
	}
	if (n > 0) {
		l->segments = strata_calloc(n, sizeof(*l->segments));
		if (l->segments == NULL) {
			strata_free(l);
			return NULL;
		}
	}
	return l;
}

static int list_from_segments(const Strata__V1__SegmentsReply *rep,
                              const char *scope, const char *stream,
                              struct strata_segment_list **out, char *errmsg)
{
	struct strata_segment_list *l = list_new(rep->n_segments);
	if (l == NULL) {
		goto nomem;
	}
	for (size_t i = 0; i < rep->n_segments; i++) {
		const Strata__V1__SegmentInfo *si = rep->segments[i];
		struct strata_segment_desc *d = &l->segments[i];
		l->n++;
		if (si->segment != NULL) {
			d->id = si->segment->id;
			d->low = si->segment->low;
			d->high = si->segment->high;
		}
		d->offset = si->offset;
		d->container = si->container;
		if (si->qualified_name != NULL &&
		    si->qualified_name[0] != '\0') {
			d->name = strata_strdup(si->qualified_name);
		} else {
			char buf[600];
			strata_segment_name(buf, sizeof(buf), scope, stream,
			                    d->id);
			d->name = strata_strdup(buf);
		}
		if (d->name == NULL) {
			goto nomem;
		}
	}
	*out = l;
	return 0;
nomem:
	strata_segment_list_free(l);
	client_err(errmsg, "out of memory");
	return STRATA_ENOMEM;
}

int strata_stream_current_segments(struct strata_client *c, const char *scope,
                                   const char *stream,
                                   struct strata_segment_list **out,
                                   char *errmsg)
{
	int rc = client_check_stream(scope, stream, errmsg);
	if (rc != 0 ||
	    (rc = client_check_blocking(c, "strata_stream_current_segments",
	                                errmsg)) != 0) {
		return rc;
	}
	Strata__V1__GetSegmentsRequest q =
	        STRATA__V1__GET_SEGMENTS_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	Strata__V1__SegmentsReply *rep = NULL;
	rc = client_ctl_query(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_GET_CURRENT_SEGMENTS,
	        &q.base, &strata__v1__segments_reply__descriptor,
	        (ProtobufCMessage **)&rep, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = list_from_segments(rep, scope, stream, out, errmsg);
	rpc_pb_free(&rep->base);
	return rc;
}

int strata_stream_segments_at_cut(struct strata_client *c,
                                  const struct strata_stream_cut *cut,
                                  struct strata_segment_list **out,
                                  char *errmsg)
{
	if (cut == NULL) {
		client_err(errmsg, "segments at cut: the cut is NULL");
		return STRATA_EINVAL;
	}
	int rc = client_check_stream(cut->scope, cut->stream, errmsg);
	if (rc != 0 ||
	    (rc = client_check_blocking(c, "strata_stream_segments_at_cut",
	                                errmsg)) != 0) {
		return rc;
	}
	struct pb_cut pc;
	if (cut_to_pb(cut, &pc) != 0) {
		client_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	Strata__V1__GetSegmentsRequest q =
	        STRATA__V1__GET_SEGMENTS_REQUEST__INIT;
	q.scope = (char *)cut->scope;
	q.stream = (char *)cut->stream;
	q.cut = &pc.cut;
	Strata__V1__SegmentsReply *rep = NULL;
	rc = client_ctl_query(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_GET_SEGMENTS_AT_CUT,
	        &q.base, &strata__v1__segments_reply__descriptor,
	        (ProtobufCMessage **)&rep, errmsg);
	cut_pb_free(&pc);
	if (rc != 0) {
		return rc;
	}
	rc = list_from_segments(rep, cut->scope, cut->stream, out, errmsg);
	rpc_pb_free(&rep->base);
	return rc;
}

/* One successor query; *open: the answering replica sees segment_id
 * current in an unsealed stream (SuccessorsReply.open); *deleted (may be
 * NULL): truncation deleted it or is deleting it. */
static int successors_query(struct strata_client *c, const char *scope,
                            const char *stream, uint64_t segment_id, bool *open,
                            bool *deleted, struct strata_segment_list **out,
                            char *errmsg)
{
	int rc;
	Strata__V1__GetSuccessorsRequest q =
	        STRATA__V1__GET_SUCCESSORS_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	q.segment_id = segment_id;
	Strata__V1__SuccessorsReply *rep = NULL;
	rc = client_ctl_query(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_GET_SUCCESSORS, &q.base,
	        &strata__v1__successors_reply__descriptor,
	        (ProtobufCMessage **)&rep, errmsg);
	if (rc != 0) {
		return rc;
	}
	*open = rep->open;
	if (deleted != NULL) {
		*deleted = rep->deleted;
	}
	struct strata_segment_list *l = list_new(rep->n_successors);
	if (l == NULL) {
		goto nomem;
	}
	for (size_t i = 0; i < rep->n_successors; i++) {
		const Strata__V1__Successor *s = rep->successors[i];
		struct strata_segment_desc *d = &l->segments[i];
		char buf[600];
		l->n++;
		if (s->segment != NULL) {
			d->id = s->segment->id;
			d->low = s->segment->low;
			d->high = s->segment->high;
		}
		strata_segment_name(buf, sizeof(buf), scope, stream, d->id);
		d->name = strata_strdup(buf);
		if (d->name == NULL) {
			goto nomem;
		}
		if (s->n_predecessors > 0) {
			d->predecessors = strata_calloc(s->n_predecessors,
			                                sizeof(uint64_t));
			if (d->predecessors == NULL) {
				goto nomem;
			}
			memcpy(d->predecessors, s->predecessors,
			       s->n_predecessors * sizeof(uint64_t));
			d->n_predecessors = s->n_predecessors;
		}
	}
	rpc_pb_free(&rep->base);
	*out = l;
	return 0;
nomem:
	rpc_pb_free(&rep->base);
	strata_segment_list_free(l);
	client_err(errmsg, "out of memory");
	return STRATA_ENOMEM;
}

int strata_stream_successors(struct strata_client *c, const char *scope,
                             const char *stream, uint64_t segment_id,
                             struct strata_segment_list **out, char *errmsg)
{
	bool open;
	int rc = client_check_stream(scope, stream, errmsg);
	if (rc != 0 || (rc = client_check_blocking(
	                        c, "strata_stream_successors", errmsg)) != 0) {
		return rc;
	}
	return successors_query(c, scope, stream, segment_id, &open, NULL, out,
	                        errmsg);
}

int strata_stream_successors_of_sealed(struct strata_client *c,
                                       const char *scope, const char *stream,
                                       uint64_t segment_id,
                                       struct strata_segment_list **out,
                                       char *errmsg)
{
	int rc = client_check_stream(scope, stream, errmsg);
	if (rc != 0 ||
	    (rc = client_check_blocking(c, "strata_stream_successors_of_sealed",
	                                errmsg)) != 0) {
		return rc;
	}
	/* A follower may answer from a state that has not applied the
	 * scale (or the seal) the store already carried out: ask again
	 * until the answer knows the segment is sealed. */
	uint64_t deadline =
	        loop_now_ms() + (uint64_t)c->cfg.operation_timeout_ms;
	unsigned delay = 10;
	for (;;) {
		bool open = false;
		rc = successors_query(c, scope, stream, segment_id, &open, NULL,
		                      out, errmsg);
		if (rc != 0 || !open) {
			return rc;
		}
		strata_segment_list_free(*out);
		*out = NULL;
		if (loop_now_ms() + delay >= deadline) {
			client_err(errmsg,
			           "segment %" PRIu32 ".%" PRIu32
			           " of %s/%s is sealed, but the controller "
			           "still shows it open after the operation "
			           "timeout (a replica far behind its "
			           "leader?); retry",
			           (uint32_t)segment_id,
			           (uint32_t)(segment_id >> 32), scope, stream);
			return STRATA_ETIMEDOUT;
		}
		clock_sleep_ms(delay);
		if (delay < 500) {
			delay *= 2;
		}
	}
}

/* ---------------------------------------------------------- stream info */

void strata_stream_info_free(struct strata_stream_info *info)
{
	if (info == NULL) {
		return;
	}
	for (size_t i = 0; i < info->config.n_tags; i++) {
		strata_free((char *)info->config.tags[i]);
	}
	strata_free((void *)info->config.tags);
	strata_stream_cut_clear(&info->head);
	strata_stream_cut_clear(&info->tail);
	strata_free(info);
}

static int config_from_pb(const Strata__V1__StreamConfig *pb,
                          struct strata_stream_config *out)
{
	strata_stream_config_default(out);
	out->min_segments = 0;
	if (pb == NULL) {
		return 0;
	}
	if (pb->scaling != NULL) {
		const Strata__V1__ScalingPolicy *s = pb->scaling;
		if (s->policy_case ==
		            STRATA__V1__SCALING_POLICY__POLICY_FIXED &&
		    s->fixed != NULL) {
			out->min_segments = s->fixed->min_segments;
		} else {
			const Strata__V1__RateScaling *r =
			        s->policy_case ==
			                        STRATA__V1__SCALING_POLICY__POLICY_BY_EVENT_RATE
			                ? s->by_event_rate
			                : s->by_data_rate;
			out->scaling =
			        s->policy_case ==
			                        STRATA__V1__SCALING_POLICY__POLICY_BY_EVENT_RATE
			                ? STRATA_SCALING_BY_EVENT_RATE
			                : STRATA_SCALING_BY_DATA_RATE;
			if (r != NULL) {
				out->target_rate = r->target;
				out->scale_factor = r->scale_factor;
				out->min_segments = r->min_segments;
			}
		}
	}
	if (pb->retention != NULL) {
		const Strata__V1__RetentionPolicy *r = pb->retention;
		const Strata__V1__RetentionBound *b = NULL;
		if (r->policy_case ==
		    STRATA__V1__RETENTION_POLICY__POLICY_BY_TIME) {
			out->retention = STRATA_RETENTION_BY_TIME;
			b = r->by_time;
		} else if (r->policy_case ==
		           STRATA__V1__RETENTION_POLICY__POLICY_BY_SIZE) {
			out->retention = STRATA_RETENTION_BY_SIZE;
			b = r->by_size;
		}
		if (b != NULL) {
			out->retention_min = b->min;
			out->retention_max = b->max;
		}
	}
	if (pb->n_tags > 0) {
		char **tags = strata_calloc(pb->n_tags, sizeof(char *));
		if (tags == NULL) {
			return STRATA_ENOMEM;
		}
		out->tags = (const char *const *)tags;
		for (size_t i = 0; i < pb->n_tags; i++) {
			tags[i] = strata_strdup(pb->tags[i]);
			if (tags[i] == NULL) {
				return STRATA_ENOMEM;
			}
			out->n_tags++;
		}
	}
	return 0;
}

static int cut_from_list(const struct strata_segment_list *l,
                         struct strata_stream_cut *cut)
{
	if (l->n == 0) {
		return 0;
	}
	cut->positions = strata_calloc(l->n, sizeof(*cut->positions));
	if (cut->positions == NULL) {
		return STRATA_ENOMEM;
	}
	for (size_t i = 0; i < l->n; i++) {
		cut->positions[i].segment_id = l->segments[i].id;
		cut->positions[i].offset = l->segments[i].offset;
	}
	cut->n = l->n;
	return 0;
}

int strata_stream_get_info(struct strata_client *c, const char *scope,
                           const char *stream, struct strata_stream_info **out,
                           char *errmsg)
{
	int rc = client_check_stream(scope, stream, errmsg);
	if (rc != 0 || (rc = client_check_blocking(c, "strata_stream_get_info",
	                                           errmsg)) != 0) {
		return rc;
	}
	Strata__V1__StreamInfo *si = NULL;
	rc = stream_query(c, scope, stream, &si, errmsg);
	if (rc != 0) {
		return rc;
	}
	struct strata_stream_info *info = strata_calloc(1, sizeof(*info));
	struct strata_segment_list *head = NULL;
	struct strata_segment_list *tail = NULL;
	if (info == NULL) {
		rpc_pb_free(&si->base);
		client_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	snprintf(info->scope, sizeof(info->scope), "%s", scope);
	snprintf(info->stream, sizeof(info->stream), "%s", stream);
	info->state = (enum strata_stream_state)si->state;
	info->current_epoch = si->current_epoch;
	rc = config_from_pb(si->config, &info->config);
	rpc_pb_free(&si->base);
	if (rc != 0) {
		client_err(errmsg, "out of memory");
		goto err;
	}
	memcpy(info->head.scope, info->scope, sizeof(info->scope));
	memcpy(info->head.stream, info->stream, sizeof(info->stream));
	memcpy(info->tail.scope, info->scope, sizeof(info->scope));
	memcpy(info->tail.stream, info->stream, sizeof(info->stream));
	rc = strata_stream_segments_at_cut(c, &info->head, &head, errmsg);
	if (rc != 0) {
		goto err;
	}
	rc = strata_stream_current_segments(c, scope, stream, &tail, errmsg);
	if (rc != 0) {
		goto err;
	}
	/* Being deleted, its segments are going: no lengths, no tail.
	 * Being created, its segments may not exist yet (stores away):
	 * nothing was written, the tail is the head. */
	bool deleting = info->state == STRATA_STREAM_DELETING;
	bool creating = info->state == STRATA_STREAM_CREATING;
	for (size_t i = 0; i < tail->n && !deleting && !creating; i++) {
		struct strata_segment_stat st;
		rc = strata_segment_get_stat(c, tail->segments[i].name, &st,
		                             errmsg);
		if (rc == STRATA_ENOENT) {
			/* Its delete may have started since we asked (if
			 * the stream is gone, that answer is the error). */
			Strata__V1__StreamInfo *now = NULL;
			char why[STRATA_ERRMSG_SIZE];
			int qrc = stream_query(c, scope, stream, &now, why);
			deleting = qrc == 0 &&
			           now->state == (Strata__V1__StreamState)
			                                 STRATA_STREAM_DELETING;
			rpc_pb_free(now != NULL ? &now->base : NULL);
			if (deleting) {
				info->state = STRATA_STREAM_DELETING;
				rc = 0;
				break;
			}
			if (qrc != 0) {
				rc = qrc;
				client_err(errmsg, "%s", why);
			}
		}
		if (rc != 0) {
			goto err;
		}
		tail->segments[i].offset = (int64_t)st.length;
	}
	if (cut_from_list(head, &info->head) != 0 ||
	    (!deleting && cut_from_list(tail, &info->tail) != 0)) {
		rc = STRATA_ENOMEM;
		client_err(errmsg, "out of memory");
		goto err;
	}
	strata_segment_list_free(head);
	strata_segment_list_free(tail);
	*out = info;
	return 0;
err:
	strata_segment_list_free(head);
	strata_segment_list_free(tail);
	strata_stream_info_free(info);
	return rc;
}

/* A store deletes a segment of a truncation before the controller
 * records the truncation done, and a follower answering reads may lag:
 * until the answer says so, ask again for this long. */
#define TRUNCATED_AWAY_WAIT_MS 2000

bool client_truncated_away(struct strata_client *c, const char *segment)
{
	struct segname_parts p;
	if (segname_parse(segment, &p, NULL) != 0 || p.is_txn) {
		return false;
	}
	uint64_t deadline = loop_now_ms() + TRUNCATED_AWAY_WAIT_MS;
	for (;;) {
		char ignored[STRATA_ERRMSG_SIZE];
		struct strata_segment_list *l = NULL;
		bool open = false, deleted = false;
		int rc = successors_query(c, p.scope, p.stream, p.segment_id,
		                          &open, &deleted, &l, ignored);
		strata_segment_list_free(l);
		if (rc != 0 || deleted || loop_now_ms() >= deadline) {
			return rc == 0 && deleted;
		}
		clock_sleep_ms(100);
	}
}
