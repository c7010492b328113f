/* Controller replicated state machine: pure, deterministic, network-free. */
#ifndef CONTROLLER_FSM_H
#define CONTROLLER_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/error.h"
#include "strata/v1/controller.pb-c.h"

/*
 * The FSM holds scopes, streams (config, state, epochs, sealed sizes,
 * truncation cut, transactions), reader groups, segment-store membership,
 * the container -> replica-set map and the running workflows. It is changed
 * only by cfsm_apply() of a ControllerCommand (one Raft entry); it never
 * reads a clock or a random number, so every replica that applies the same
 * commands holds byte-identical state (compare cfsm_snapshot() output).
 * A rejected command changes nothing. See docs/controller.md.
 *
 * Not thread-safe: one FSM is used by one thread (the Raft loop).
 */

/* Most segments one epoch may hold (create or scale beyond it: EINVAL). */
#define CFSM_MAX_SEGMENTS 4096
/* Most tags per stream, and bytes per tag. */
#define CFSM_MAX_TAGS 128
#define CFSM_MAX_TAG_LEN 256
/* Completed transactions are forgotten this long after completion. */
#define CFSM_TXN_KEEP_MS (3600u * 1000u)
/* Replicas per container when enough segment stores are alive. */
#define CFSM_REPLICAS 3
/* Most containers a cluster may be configured with. */
#define CFSM_MAX_CONTAINERS 65536

/* The state machine. Caller-owned; fields are private. */
struct cfsm {
	Strata__V1__ControllerState *st; /* the whole replicated state */
	/* Not replicated: the container count of the InitClusterCmd that
	 * set the cluster id when it differs from this replica's, else 0
	 * (cfsm_count_conflict). */
	uint32_t count_conflict;
};

/* Outcome of one cfsm_apply(). */
struct cfsm_result {
	int code;                         /* 0 or a STRATA_E* code */
	char message[STRATA_ERRMSG_SIZE]; /* what failed and the fix */
	uint64_t workflow_id;             /* workflow started, 0 if none */
	uint64_t txn_id;                  /* transaction created, 0 if none */
	size_t n_segment_ids;             /* segments created by the command */
	uint64_t segment_ids[CFSM_MAX_SEGMENTS]; /* ids, sorted by key range */
};

/* A side effect the leader must carry out (see cfsm_pending_actions). */
enum cfsm_action_kind {
	CFSM_ACTION_CREATE_SEGMENT = 1, /* create segment_id */
	CFSM_ACTION_SEAL_SEGMENT,       /* seal segment_id, report size */
	CFSM_ACTION_TRUNCATE_SEGMENT,   /* truncate segment_id at offset */
	CFSM_ACTION_DELETE_SEGMENT,     /* delete segment_id */
	CFSM_ACTION_CREATE_TXN_SEGMENT, /* create txn_id's shadow of it */
	CFSM_ACTION_COMMIT_TXN_SEGMENT, /* merge the shadow into segment_id */
	CFSM_ACTION_ABORT_TXN_SEGMENT,  /* delete the shadow of segment_id */
	CFSM_ACTION_ROLL_TXN_SEGMENT,   /* merge txn_id's shadow of source_id
	                                   into segment_id; with seal, then
	                                   seal it and report its size */
};

struct cfsm_action {
	enum cfsm_action_kind kind;
	const char *scope;    /* borrowed until the next apply/restore/close */
	const char *stream;   /* borrowed likewise */
	uint64_t segment_id;  /* the (parent) segment acted on */
	uint64_t source_id;   /* ROLL: the parent whose shadow merges in */
	bool seal;            /* ROLL: the copy's last merge: seal it after */
	uint32_t container;   /* container hosting segment_id */
	int64_t offset;       /* TRUNCATE: new head offset; else 0 */
	uint64_t txn_id;      /* txn actions: the transaction; else 0 */
	uint64_t workflow_id; /* workflow actions: the workflow; else 0 */
	int step; /* Strata__V1__WorkflowStep, or Strata__V1__TxnStep to report
	             in TxnStepDone once every action of the txn is done */
};

/* Initialise an empty FSM for a cluster of container_count containers
 * (1..CFSM_MAX_CONTAINERS, fixed for the cluster's life). STRATA_EINVAL
 * or STRATA_ENOMEM with errmsg (STRATA_ERRMSG_SIZE bytes) set. */
int cfsm_init(struct cfsm *fsm, uint32_t container_count, char *errmsg);

/* Free everything the FSM holds. */
void cfsm_close(struct cfsm *fsm);

/*
 * Apply one packed ControllerCommand (borrowed). Returns res->code: 0, or
 * an error with res->message naming the input and the fix; on any error the
 * state is unchanged. Malformed bytes: STRATA_EPROTO. res is overwritten.
 */
int cfsm_apply(struct cfsm *fsm, const uint8_t *cmd, size_t len,
               struct cfsm_result *res);

/* Same for an already decoded command (borrowed). */
int cfsm_apply_command(struct cfsm *fsm,
                       const Strata__V1__ControllerCommand *cmd,
                       struct cfsm_result *res);

/* Pack the whole state into *buf (allocated with strata_malloc, the caller
 * frees it with strata_free) of *len bytes. STRATA_ENOMEM. */
int cfsm_snapshot(const struct cfsm *fsm, uint8_t **buf, size_t *len);

/*
 * Replace the state with a snapshot (borrowed). STRATA_EPROTO when the bytes
 * do not decode, STRATA_ECORRUPT when they decode to an inconsistent state,
 * STRATA_ECONFIG when its container count differs from this FSM's; the state
 * is unchanged on error and errmsg says why.
 */
int cfsm_restore(struct cfsm *fsm, const uint8_t *buf, size_t len,
                 char *errmsg);

/*
 * Every side effect the leader must perform now, in a deterministic order:
 * the steps of running workflows and the transaction steps. *acts is
 * allocated (strata_free it; NULL when *n is 0). Once all actions of one
 * (workflow_id, step) succeeded, apply WorkflowStepDone; for a transaction
 * apply TxnStepDone{txn_id, step}. STRATA_ENOMEM.
 */
int cfsm_pending_actions(const struct cfsm *fsm, struct cfsm_action **acts,
                         size_t *n);

/* --- queries: read-only; replies are allocated, free with cfsm_msg_free --
 * Each returns 0, STRATA_ENOENT (unknown scope/stream/...), STRATA_EINVAL
 * or STRATA_ENOMEM, with errmsg set on error. */

/* Free a message returned by a query (NULL is a no-op). */
void cfsm_msg_free(void *msg);

/* All scopes, sorted. */
int cfsm_list_scopes(const struct cfsm *fsm, Strata__V1__ListScopesReply **out,
                     char *errmsg);

/* Streams of a scope, sorted; tag NULL or "" = all, else only tagged. */
int cfsm_list_streams(const struct cfsm *fsm, const char *scope,
                      const char *tag, Strata__V1__ListStreamsReply **out,
                      char *errmsg);

/* The same, one page: names after start_after (NULL or "" = from the
 * first), stopping once they take page_bytes (0 = no limit; at least one
 * name per page), with (*out)->more set when names follow. */
int cfsm_list_streams_page(const struct cfsm *fsm, const char *scope,
                           const char *tag, const char *start_after,
                           uint32_t page_bytes,
                           Strata__V1__ListStreamsReply **out, char *errmsg);

/* Configuration, state, current epoch and truncation cut of a stream. */
int cfsm_get_stream(const struct cfsm *fsm, const char *scope,
                    const char *stream, Strata__V1__StreamInfo **out,
                    char *errmsg);

/* The stream's record itself, borrowed until the next apply/restore/close;
 * NULL when unknown. */
const Strata__V1__StreamRecord *
cfsm_find_stream(const struct cfsm *fsm, const char *scope, const char *stream);

/* Whether segment id is one of the stream's, in any epoch it keeps. */
bool cfsm_has_segment(const struct cfsm *fsm, const char *scope,
                      const char *stream, uint64_t id);

/* Segments of the newest epoch, by key range, with their containers. */
int cfsm_current_segments(const struct cfsm *fsm, const char *scope,
                          const char *stream, Strata__V1__SegmentsReply **out,
                          char *errmsg);

/* Segments of a stream cut (borrowed) with offsets, after checking that it
 * names segments of the stream covering [0,1) once. An empty or NULL cut
 * means the head: the truncation cut, or epoch 0 at offset 0. */
int cfsm_segments_at_cut(const struct cfsm *fsm, const char *scope,
                         const char *stream, const Strata__V1__StreamCut *cut,
                         Strata__V1__SegmentsReply **out, char *errmsg);

/* Segments that replaced segment_id when it was sealed by a scale, each
 * with all its predecessors; empty when segment_id is not sealed by a
 * scale. STRATA_ENOENT when the stream has no such segment. */
int cfsm_successors(const struct cfsm *fsm, const char *scope,
                    const char *stream, uint64_t segment_id,
                    Strata__V1__SuccessorsReply **out, char *errmsg);

/* The kept watermarks of a stream with index > after_index, oldest first
 * (controller/watermarks.c). */
int cfsm_watermarks(const struct cfsm *fsm, const char *scope,
                    const char *stream, uint64_t after_index,
                    Strata__V1__WatermarksReply **out, char *errmsg);

/* Would a watermark round at now_ms change s (a watermark to record, a
 * mark older than writer_timeout_ms to drop)? False for streams whose
 * writers noted nothing new, so an idle cluster writes no Raft entries
 * for watermarks (controller/watermarks.c). */
bool cfsm_watermark_due(const Strata__V1__StreamRecord *s, uint64_t now_ms,
                        uint64_t writer_timeout_ms);

/* Container hosting a segment: FNV-1a 64 of the qualified name modulo the
 * container count. Pure; also valid for unknown segments. */
uint32_t cfsm_segment_container(const struct cfsm *fsm, const char *scope,
                                const char *stream, uint64_t segment_id);

/* Replica set (node ids, sorted) of a container, borrowed until the next
 * apply/restore/close; NULL when container is out of range. */
const Strata__V1__ContainerAssignment *
cfsm_container_replicas(const struct cfsm *fsm, uint32_t container);

/* A segment store's record by id (borrowed until the next apply/restore/
 * close); NULL when unknown. */
const Strata__V1__StoreNode *cfsm_find_node(const struct cfsm *fsm,
                                            const char *id);

/* Client URL of the store to call for container: its last reported
 * leader, else its first replica (stores redirect with STRATA_EWRONGHOST);
 * borrowed like cfsm_find_node. NULL when no store is known. */
const char *cfsm_container_url(const struct cfsm *fsm, uint32_t container);

/* A controller replica's recorded endpoint (borrowed likewise); NULL when
 * none is recorded. */
const Strata__V1__ControllerEndpoint *
cfsm_find_controller(const struct cfsm *fsm, uint64_t id);

/* The whole state, read-only, borrowed likewise (for reports such as the
 * cluster status; never modify it). */
const Strata__V1__ControllerState *cfsm_state(const struct cfsm *fsm);

/* Write the qualified name "scope/stream/<number>.#epoch.<epoch>" of a
 * segment into buf (size bytes); returns the length it needs, like
 * snprintf. */
int cfsm_segment_name(char *buf, size_t size, const char *scope,
                      const char *stream, uint64_t segment_id);

/* Number of containers of the cluster. */
uint32_t cfsm_container_count(const struct cfsm *fsm);

/* The cluster's id (InitClusterCmd), "" until one is applied. */
const char *cfsm_cluster_id(const struct cfsm *fsm);

/* The cluster's container count when this replica was configured with
 * another (learnt from the InitClusterCmd that set the id, from the log
 * or new), else 0. A replica that sees one must stop serving: its
 * containers.count is wrong and its container mapping with it. */
uint32_t cfsm_count_conflict(const struct cfsm *fsm);

/* A copy of one reader group's configuration. */
int cfsm_get_reader_group(const struct cfsm *fsm, const char *scope,
                          const char *name, Strata__V1__ReaderGroupConfig **out,
                          char *errmsg);

/* Copies of all reader groups of a scope, sorted by name. */
int cfsm_list_reader_groups(const struct cfsm *fsm, const char *scope,
                            Strata__V1__ListReaderGroupsReply **out,
                            char *errmsg);

/* A transaction, borrowed until the next apply/restore/close; NULL when
 * unknown (or completed long enough ago to be forgotten). */
const Strata__V1__Txn *cfsm_find_txn(const struct cfsm *fsm, const char *scope,
                                     const char *stream, uint64_t txn_id);

/* A running workflow, borrowed likewise; NULL when none has that id. */
const Strata__V1__Workflow *cfsm_find_workflow(const struct cfsm *fsm,
                                               uint64_t id);

#endif /* CONTROLLER_FSM_H */
