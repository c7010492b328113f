/* Controller FSM internals shared by the controller sources only. */
#ifndef CONTROLLER_FSM_INT_H
#define CONTROLLER_FSM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "controller/fsm.h"

/* qsort that accepts an empty array: protoc-c leaves an empty repeated
 * field as (NULL, 0), and qsort(NULL, 0, ...) is undefined behaviour. */
static inline void fsm_sort(void *base, size_t n, size_t size,
                            int (*cmp)(const void *, const void *))
{
	if (n > 1) {
		qsort(base, n, size, cmp);
	}
}

/* Short aliases of the protoc-c enum values. */
#define SS_CREATING STRATA__V1__STREAM_STATE__STREAM_STATE_CREATING
#define SS_ACTIVE STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE
#define SS_SCALING STRATA__V1__STREAM_STATE__STREAM_STATE_SCALING
#define SS_TRUNCATING STRATA__V1__STREAM_STATE__STREAM_STATE_TRUNCATING
#define SS_SEALING STRATA__V1__STREAM_STATE__STREAM_STATE_SEALING
#define SS_SEALED STRATA__V1__STREAM_STATE__STREAM_STATE_SEALED
#define SS_DELETING STRATA__V1__STREAM_STATE__STREAM_STATE_DELETING

#define WK_CREATE STRATA__V1__WORKFLOW_KIND__WORKFLOW_KIND_CREATE_STREAM
#define WK_SCALE STRATA__V1__WORKFLOW_KIND__WORKFLOW_KIND_SCALE
#define WK_SEAL STRATA__V1__WORKFLOW_KIND__WORKFLOW_KIND_SEAL
#define WK_TRUNCATE STRATA__V1__WORKFLOW_KIND__WORKFLOW_KIND_TRUNCATE
#define WK_DELETE STRATA__V1__WORKFLOW_KIND__WORKFLOW_KIND_DELETE
#define WK_REMOVE STRATA__V1__WORKFLOW_KIND__WORKFLOW_KIND_REMOVE_STREAM
#define WK_ROLL STRATA__V1__WORKFLOW_KIND__WORKFLOW_KIND_ROLL_TXN

#define WS_DONE STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_DONE
#define WS_CREATE STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_CREATE_SEGMENTS
#define WS_SEAL STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_SEAL_SEGMENTS
#define WS_TRUNCATE STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_TRUNCATE_SEGMENTS
#define WS_DELETE STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_DELETE_SEGMENTS
#define WS_MERGE STRATA__V1__WORKFLOW_STEP__WORKFLOW_STEP_MERGE_TXN

#define TS_OPEN STRATA__V1__TXN_STATE__TXN_STATE_OPEN
#define TS_COMMITTING STRATA__V1__TXN_STATE__TXN_STATE_COMMITTING
#define TS_COMMITTED STRATA__V1__TXN_STATE__TXN_STATE_COMMITTED
#define TS_ABORTING STRATA__V1__TXN_STATE__TXN_STATE_ABORTING
#define TS_ABORTED STRATA__V1__TXN_STATE__TXN_STATE_ABORTED

#define TXS_CREATED STRATA__V1__TXN_STEP__TXN_STEP_SEGMENTS_CREATED
#define TXS_COMMITTED STRATA__V1__TXN_STEP__TXN_STEP_COMMITTED
#define TXS_ABORTED STRATA__V1__TXN_STEP__TXN_STEP_ABORTED

/* Segment id parts. */
#define SEG_EPOCH(id) ((uint32_t)((id) >> 32))
#define SEG_NUMBER(id) ((uint32_t)((id)&0xffffffffu))
/* A segment id in messages as users write it: NUMBER.EPOCH. */
#define SEG_FMT "%" PRIu32 ".%" PRIu32
#define SEG_ARGS(id) SEG_NUMBER(id), SEG_EPOCH(id)
#define SEG_ID(epoch, number) (((uint64_t)(epoch) << 32) | (uint64_t)(number))

/* Set res->code and res->message (printf format); returns code. */
int fsm_fail(struct cfsm_result *res, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* --- protobuf trees allocated through common/alloc.h (fsm.c) --- */

/* The allocator every FSM-owned message tree uses. */
extern ProtobufCAllocator fsm_pb_allocator;

/* Free a message tree built with fsm_pb_allocator (NULL is a no-op). */
void pb_free(void *msg);

/* Deep copy of msg (borrowed) through pack/unpack; NULL on OOM. */
void *pb_clone(const void *msg);

/* Grow *arr (an array of elem_size elements holding n) to hold n + extra
 * without changing n: later appends of up to extra cannot fail. */
int pb_reserve(void *arr, size_t n, size_t extra, size_t elem_size);

/* Copy of s; STRATA_ENOMEM. */
int pb_strdup(char **dst, const char *s);

/* New zero-initialised message of the given descriptor; NULL on OOM. */
void *pb_new(const ProtobufCMessageDescriptor *d);

/* Remove element i of a pointer array holding *n elements (not freed). */
void pb_remove_at(void **arr, size_t *n, size_t i);

/* --- lookups (streams.c) --- */

/* Index of the first element >= name in a name-sorted array of scopes,
 * streams or reader groups; *found says whether it is equal. */
size_t fsm_scope_index(const Strata__V1__ControllerState *st, const char *name,
                       bool *found);
size_t fsm_stream_index(const Strata__V1__ScopeRecord *sc, const char *name,
                        bool *found);
size_t fsm_rg_index(const Strata__V1__ScopeRecord *sc, const char *name,
                    bool *found);

Strata__V1__ScopeRecord *fsm_scope(const Strata__V1__ControllerState *st,
                                   const char *name);
Strata__V1__StreamRecord *fsm_stream(const Strata__V1__ControllerState *st,
                                     const char *scope, const char *name);

/* Look up scope/stream or fail with ENOENT naming it. */
int fsm_stream_get(const Strata__V1__ControllerState *st, const char *scope,
                   const char *name, Strata__V1__StreamRecord **out,
                   struct cfsm_result *res);

/* Newest epoch of a stream (never NULL in a consistent state). */
const Strata__V1__Epoch *fsm_current_epoch(const Strata__V1__StreamRecord *s);

/* Segment record of a stream by id, from any epoch; NULL if unknown. */
const Strata__V1__Segment *fsm_find_segment(const Strata__V1__StreamRecord *s,
                                            uint64_t id);

/* Is the segment deleted by truncation? */
bool fsm_segment_deleted(const Strata__V1__StreamRecord *s, uint64_t id);

/* Check a stream cut against a stream: known segments, offsets >= 0,
 * ranges covering [0,1) exactly once. STRATA_EINVAL with res set, or
 * STRATA_ETRUNCATED for a segment truncation deleted. */
int fsm_check_cut(const Strata__V1__StreamRecord *s, const char *scope,
                  const Strata__V1__StreamCut *cut, struct cfsm_result *res);

/* Is segment g wholly before the cut (older than every overlapping cut
 * segment)? The cut must have passed fsm_check_cut. */
bool fsm_before_cut(const Strata__V1__StreamRecord *s,
                    const Strata__V1__StreamCut *cut,
                    const Strata__V1__Segment *g);

/* Is cut a before cut b at some key (a segment both name at a lower
 * offset in a, or an overlapping segment of an older epoch)? *seg (may be
 * NULL) gets a's segment there. Both must have passed fsm_check_cut. */
bool fsm_cut_behind(const Strata__V1__StreamRecord *s,
                    const Strata__V1__StreamCut *a,
                    const Strata__V1__StreamCut *b, uint64_t *seg);

/* --- names.c --- */

/* Validate a scope, stream or reader-group name; what = "scope" etc.
 * internal allows a leading '_'. STRATA_EBADNAME with res set. */
int names_check(const char *name, const char *what, bool internal,
                struct cfsm_result *res);

/* Validate a stream configuration (borrowed). STRATA_EINVAL with res. */
int names_check_config(const Strata__V1__StreamConfig *cfg,
                       struct cfsm_result *res);

/* Sort and deduplicate a configuration's tags in place. */
void names_normalize_tags(Strata__V1__StreamConfig *cfg);

/* Minimum segment count of a policy (>= 1). */
uint32_t names_min_segments(const Strata__V1__ScalingPolicy *p);

/* Write "scope/stream/<number>.#epoch.<epoch>" into buf of size bytes;
 * returns the length it needs (like snprintf). */
int names_segment_name(char *buf, size_t size, const char *scope,
                       const char *stream, uint64_t segment_id);

/* FNV-1a 64 of n bytes. */
uint64_t names_fnv1a(const void *data, size_t n);

/* Container of a segment given the container count. */
uint32_t names_segment_container(uint32_t container_count, const char *scope,
                                 const char *stream, uint64_t segment_id);

/* --- command handlers: return 0 or an error with res set; nothing
 * changes on error --- */
int streams_create_scope(struct cfsm *f, const Strata__V1__CreateScopeCmd *c,
                         struct cfsm_result *res);
int streams_delete_scope(struct cfsm *f, const Strata__V1__DeleteScopeCmd *c,
                         struct cfsm_result *res);
int streams_update(struct cfsm *f, const Strata__V1__UpdateStreamCmd *c,
                   struct cfsm_result *res);

int workflows_create_stream(struct cfsm *f,
                            const Strata__V1__CreateStreamCmd *c,
                            struct cfsm_result *res);
int workflows_scale(struct cfsm *f, const Strata__V1__ScaleStreamCmd *c,
                    struct cfsm_result *res);
int workflows_seal(struct cfsm *f, const Strata__V1__SealStreamCmd *c,
                   struct cfsm_result *res);
int workflows_truncate(struct cfsm *f, const Strata__V1__TruncateStreamCmd *c,
                       struct cfsm_result *res);
int workflows_delete(struct cfsm *f, const Strata__V1__DeleteStreamCmd *c,
                     struct cfsm_result *res);
int workflows_step_done(struct cfsm *f, const Strata__V1__WorkflowStepDone *c,
                        struct cfsm_result *res);
/* Create the controller-owned stream scope/stream (name may start with
 * '_'; fixed, one segment) with its CREATE_STREAM workflow (borrowed
 * strings). Same errors as a create-stream command; nothing changes on
 * error. */
int workflows_create_internal(struct cfsm *f, const char *scope,
                              const char *stream, uint64_t now_ms,
                              struct cfsm_result *res);
/* Start the REMOVE_STREAM workflow (seal, then delete) of scope/stream,
 * an existing stream. EBUSY while another workflow or a transaction runs
 * on it; a stream already being removed or deleted succeeds with its
 * workflow id. Nothing changes on error. */
int workflows_remove(struct cfsm *f, const char *scope, const char *stream,
                     struct cfsm_result *res);

/* Start the rolling commit of t (OPEN, of an epoch before the current
 * one): ROLL workflow, stream SCALING; or join the roll of t's epoch that
 * is still creating its copies. The caller moves t to COMMITTING.
 * STRATA_EBUSY while another workflow or commit runs on the stream. */
int workflows_roll(struct cfsm *f, Strata__V1__StreamRecord *s,
                   const char *scope, const Strata__V1__Txn *t, uint64_t now_ms,
                   struct cfsm_result *res);

/* --- retention.c --- */
int retention_record(struct cfsm *f, const Strata__V1__RecordRetentionCutCmd *c,
                     struct cfsm_result *res);

/* --- watermarks.c --- */
int watermarks_note(struct cfsm *f, const Strata__V1__NoteTimeCmd *c,
                    struct cfsm_result *res);
int watermarks_remove_writer(struct cfsm *f,
                             const Strata__V1__RemoveWriterCmd *c,
                             struct cfsm_result *res);
int watermarks_compute(struct cfsm *f, const Strata__V1__ComputeWatermarkCmd *c,
                       struct cfsm_result *res);

int txns_create(struct cfsm *f, const Strata__V1__CreateTxnCmd *c,
                struct cfsm_result *res);
int txns_ping(struct cfsm *f, const Strata__V1__PingTxnCmd *c,
              struct cfsm_result *res);
int txns_end(struct cfsm *f, const Strata__V1__EndTxnCmd *c,
             struct cfsm_result *res);
int txns_step_done(struct cfsm *f, const Strata__V1__TxnStepDone *c,
                   struct cfsm_result *res);
/* Abort expired OPEN txns and forget old completed ones. */
int txns_tick(struct cfsm *f, uint64_t now_ms, struct cfsm_result *res);
int txns_actions(const struct cfsm *f, struct cfsm_action **acts, size_t *n,
                 size_t *cap);
/* Count a stream's txns in state (any state when state == 0). */
size_t txns_count(const Strata__V1__StreamRecord *s, int state);
/* Move every OPEN txn of a stream to ABORTING (cannot fail). */
void txns_abort_open(Strata__V1__StreamRecord *s);

int rg_create(struct cfsm *f, const Strata__V1__CreateReaderGroupCmd *c,
              struct cfsm_result *res);
int rg_update(struct cfsm *f, const Strata__V1__UpdateReaderGroupCmd *c,
              struct cfsm_result *res);
int rg_delete(struct cfsm *f, const Strata__V1__DeleteReaderGroupCmd *c,
              struct cfsm_result *res);
/* A group's consumption-based retention: where it released its streams. */
int rg_release(struct cfsm *f, const Strata__V1__UpdateRetentionCutCmd *c,
               struct cfsm_result *res);
/* A deleted stream: no group holds scope/stream back any more (a stream
 * created again under its name starts with no subscribers, as in
 * Pravega, where the subscriber list is the stream's). */
void rg_forget_stream(Strata__V1__ControllerState *st, const char *scope,
                      const char *stream);

int nodes_register(struct cfsm *f, const Strata__V1__RegisterStoreCmd *c,
                   struct cfsm_result *res);
int nodes_heartbeat(struct cfsm *f, const Strata__V1__HeartbeatCmd *c,
                    struct cfsm_result *res);
int nodes_unregister(struct cfsm *f, const Strata__V1__UnregisterStoreCmd *c,
                     struct cfsm_result *res);
int nodes_tick(struct cfsm *f, uint64_t now_ms, struct cfsm_result *res);
/* Record or forget a controller replica's endpoint (sorted by id). */
int nodes_set_controller(struct cfsm *f,
                         const Strata__V1__SetControllerEndpointCmd *c,
                         struct cfsm_result *res);
/* Recompute replica sets; STRATA_ENOMEM leaves them unchanged. */
int nodes_rebalance(Strata__V1__ControllerState *st);

/* Append one action to a growable array. STRATA_ENOMEM. */
int fsm_push_action(struct cfsm_action **acts, size_t *n, size_t *cap,
                    const struct cfsm_action *a);

#endif /* CONTROLLER_FSM_INT_H */
