/* Controller client API (methods 100-199) and the request plumbing shared
 * with the store-facing cluster API (cluster.c) and REST (rest.c). */
#ifndef CONTROLLER_API_H
#define CONTROLLER_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "controller/service.h"

struct metrics_registry;
struct rpc_call;

/*
 * Outcome of one request: code 0 or a STRATA_E* code, a message for
 * people ("" on success), redirect = the leader's client URL with
 * STRATA_ENOTLEADER ("" otherwise), and the packed reply body (may be
 * empty; mutating methods send a ControllerReply also on errors). All
 * borrowed for the call. Runs exactly once, on the dispatching thread
 * (before ctl_api_dispatch returns), on the Raft loop thread, or on the
 * thread that checked a truncation's cut against the stores.
 */
typedef void (*ctl_api_done_fn)(void *arg, int code, const char *msg,
                                const char *redirect, const uint8_t *body,
                                size_t len);

struct ctl_api_config {
	struct ctl_service *svc;          /* borrowed for the API's life */
	struct metrics_registry *metrics; /* request metrics; NULL = none */
	uint64_t store_lease_ms;          /* lease granted to stores */
	uint64_t read_staleness_ms; /* a follower serves reads only when it
	                               applied a leader tick this recent
	                               (default 5000); else it redirects */
};

struct ctl_api;

/* Create the API over a running service. *out is freed with
 * ctl_api_free. STRATA_ENOMEM, metric registration errors, or
 * STRATA_EINTERNAL when api.c's write table does not match the generated
 * protobuf code (errmsg). */
int ctl_api_new(const struct ctl_api_config *cfg, struct ctl_api **out,
                char *errmsg);

/* Wait until no truncation's cut is being checked against the stores
 * (each then proposes or answers), and refuse further checks. Call after
 * the RPC server stopped and before the service stops. */
void ctl_api_drain(struct ctl_api *a);

/* Free the API; no request may be in flight (stop the RPC and HTTP
 * servers, drain, and stop the service first). */
void ctl_api_free(struct ctl_api *a);

/* Serve one request: method (ControllerMethod or ClusterMethod) with its
 * packed request body (borrowed for the call); done(arg, ...) once. */
void ctl_api_dispatch(struct ctl_api *a, uint32_t method, const uint8_t *body,
                      size_t len, ctl_api_done_fn done, void *arg);

/* common/rpc handler (arg = the struct ctl_api): answers with
 * ctl_api_dispatch's outcome, following rpc_handler_fn's rules. */
void ctl_api_rpc_handler(void *arg, struct rpc_call *call, uint32_t method,
                         const uint8_t *body, size_t len);

/* Short name of a method ("create_stream"), NULL when unknown. */
const char *ctl_api_method_name(uint32_t method);

/* ---- internal: one request in flight (api.c, cluster.c) ---- */

/* What a write waits for after its command applied. */
enum ctl_wait_kind {
	CTL_WAIT_NONE = 0,
	CTL_WAIT_WORKFLOW,    /* workflow wait_id finished */
	CTL_WAIT_TXN_CREATED, /* txn wait_id has its shadow segments */
	CTL_WAIT_TXN_COMMITTED,
	CTL_WAIT_TXN_ABORTED,
};

struct write_def; /* api.c */

struct ctl_req {
	struct ctl_api *api;     /* owner */
	struct ctl_service *svc; /* api's service */
	uint32_t method;         /* method served */
	ctl_api_done_fn done;    /* outcome */
	void *arg;               /* its argument */
	uint64_t t0_ns;          /* start, for the latency histogram */
	ProtobufCMessage *msg;   /* decoded request, freed at finish */
	enum ctl_wait_kind wait; /* after a successful apply */
	uint64_t wait_id;        /* workflow or txn id */
	const char *wait_scope;  /* txn waits: borrowed from msg */
	const char *wait_stream; /* likewise */
	Strata__V1__ControllerReply reply; /* mutating replies */
	uint64_t *seg_ids;                 /* reply.segment_ids storage */
	/* Called after a successful apply when set (cluster.c): answers the
	 * request itself. */
	void (*after)(struct ctl_req *r, const struct cfsm_result *res);
	const struct write_def *write; /* api.c: a write waiting for a check */
};

/* Answer r with code/msg and the packed reply (NULL = empty body), then
 * free r. */
void ctl_req_finish(struct ctl_req *r, int code, const char *msg,
                    const ProtobufCMessage *reply);

/* Answer r with a packed body already built (borrowed), then free r. */
void ctl_req_finish_raw(struct ctl_req *r, int code, const char *msg,
                        const char *redirect, const uint8_t *body, size_t len);

/* Answer "not the leader": STRATA_ENOTLEADER with the leader's client URL
 * as redirect, or STRATA_EUNAVAIL when no leader is known. */
void ctl_req_not_leader(struct ctl_req *r);

/* Unless this replica is the leader, answer r as ctl_req_not_leader and
 * return false. */
bool ctl_req_need_leader(struct ctl_req *r);

/* Unless this replica may serve committed reads (a ready leader, or a
 * follower that knows a leader), answer r with STRATA_EUNAVAIL and return
 * false. */
bool ctl_req_need_read(struct ctl_req *r);

/* Decode r's body as desc into r->msg; on failure answer STRATA_EPROTO and
 * return false. */
bool ctl_req_decode(struct ctl_req *r, const ProtobufCMessageDescriptor *desc,
                    const uint8_t *body, size_t len);

/* Propose cmd (borrowed) for r; the outcome answers r (a ControllerReply,
 * or r->after when set). */
void ctl_req_propose(struct ctl_req *r,
                     const Strata__V1__ControllerCommand *cmd);

/* Store lease of the API (cluster.c). */
uint64_t ctl_api_store_lease_ms(const struct ctl_api *a);

/* Store-facing methods (cluster.c): serve r when method is a
 * ClusterMethod and return true; false otherwise. */
bool cluster_dispatch(struct ctl_req *r, const uint8_t *body, size_t len);

#endif /* CONTROLLER_API_H */
