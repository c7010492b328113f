/* libstrata internals shared by the client/ sources: the client object,
 * the transport seam (real NNG RPC, or a fake in unit tests), async
 * requests completed on the I/O thread, and segment operations that find
 * their segment store. */
#ifndef CLIENT_CLIENT_INT_H
#define CLIENT_CLIENT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "client/loop.h"
#include "common/rpc.h"
#include "strata/client.h"
#include "strata/v1/controller.pb-c.h"
#include "strata/segment.h"

/* Segment store method ids (proto/strata/v1/segmentstore.proto). */
#define CT_SS_CREATE_SEGMENT 201u
#define CT_SS_SETUP_APPEND 202u
#define CT_SS_APPEND 203u
#define CT_SS_READ 204u
#define CT_SS_GET_INFO 205u
#define CT_SS_SEAL 206u
#define CT_SS_TRUNCATE 207u
#define CT_SS_GET_ATTRIBUTE 209u
#define CT_SS_UPDATE_ATTRIBUTE 210u

/* Transport call flag: a long-polling read (longer timeout). */
#define CT_LONGPOLL 0x100u

/*
 * The transport seam. call() sends method with req[0..len) (copied) to the
 * controller (url NULL) or to the segment store at url, with
 * common/rpc's semantics (flags RPC_IDEMPOTENT, CT_LONGPOLL): it returns 0
 * and later calls cb exactly once from another thread, or returns an
 * error without calling cb. close() ends calls in flight with
 * STRATA_ECLOSED (their callbacks return before it does); later calls
 * return STRATA_ECLOSED. free() releases it after close(). attach() (may
 * be NULL) hands it the client's I/O loop before the first call: 0, or an
 * error (errmsg) that fails the client's creation.
 */
struct ct_ops {
	int (*attach)(void *tr, struct loop *l, char *errmsg);
	int (*call)(void *tr, const char *url, uint32_t method, unsigned flags,
	            const uint8_t *req, size_t len, rpc_done_fn cb, void *arg,
	            char *errmsg);
	void (*close)(void *tr);
	void (*free)(void *tr);
};

/* The real transport (transport.c): client/wire for the segment stores
 * at numeric tcp:// URLs, common/rpc for the controller and the rest. */
int transport_new(const struct strata_client_config *cfg, void **out,
                  char *errmsg);
extern const struct ct_ops transport_rpc_ops;

/* Endpoint cache: qualified segment name -> store URLs (leader first). */
#define CT_EP_SLOTS 256
#define CT_EP_URLS 4
struct ct_endpoint {
	char *name; /* NULL = empty slot */
	size_t n;
	char urls[CT_EP_URLS][RPC_MAX_URL_LEN];
};

struct strata_client {
	struct strata_client_config cfg; /* copied; urls below */
	char **ctl_urls;
	struct loop *loop;        /* the I/O thread */
	const struct ct_ops *ops; /* transport */
	void *tr;
	atomic_bool closing; /* strata_client_free started */
	pthread_mutex_t mu;  /* guards ep */
	struct ct_endpoint ep[CT_EP_SLOTS];
};

/*
 * Create a client over transport (ops, tr; tr transferred if this returns
 * 0). For unit tests with a fake transport; strata_client_new uses the
 * real one.
 */
int client_new_with_transport(const struct strata_client_config *cfg,
                              const struct ct_ops *ops, void *tr,
                              struct strata_client **out, char *errmsg);

/* Set errmsg (may be NULL) printf-style. */
void client_err(char *errmsg, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* STRATA_EINVAL with a message when called on the I/O thread (blocking
 * calls would deadlock there); 0 otherwise. */
int client_check_blocking(struct strata_client *c, const char *what,
                          char *errmsg);

/* STRATA_EBADNAME naming stream when it is internal ('_' prefix): the
 * writers refuse those (a reader group's state stream, written to, is
 * destroyed). */
int client_check_user_stream(const char *stream, char *errmsg);

/* Validate a scope or stream name ("what" names it in the message):
 * 0 or STRATA_EBADNAME. */
int client_check_name(const char *name, const char *what, char *errmsg);

/* Both names of scope/stream: 0 or STRATA_EBADNAME. */
int client_check_stream(const char *scope, const char *stream, char *errmsg);

/* ---------------------------------------------------- async requests -- */

/* One call whose completion runs on the I/O thread. */
struct creq {
	struct loop_task task;
	struct strata_client *c;
	void (*done)(struct creq *r); /* on the I/O thread */
	void *owner;
	int code;                        /* result */
	char errmsg[STRATA_ERRMSG_SIZE]; /* result message */
	char redirect[RPC_MAX_URL_LEN];  /* unused by rpc (followed) */
	struct rpc_body reply;           /* owned by the creq after done */
};

/* Pack req (NULL = empty) and call; done(r) runs on the I/O thread unless
 * this returns an error. r->reply must be freed by done (creq_reset). */
int creq_start(struct strata_client *c, struct creq *r, const char *url,
               uint32_t method, unsigned flags, const ProtobufCMessage *req,
               void (*done)(struct creq *r), void *owner, char *errmsg);

/* The same with the request already encoded: req[0..len), borrowed for
 * the call. */
int creq_start_bytes(struct strata_client *c, struct creq *r, const char *url,
                     uint32_t method, unsigned flags, const uint8_t *req,
                     size_t len, void (*done)(struct creq *r), void *owner,
                     char *errmsg);

/* Free r's reply buffer. */
void creq_reset(struct creq *r);

/*
 * Blocking call of the controller (url NULL) or a store: returns the
 * status; with a reply_desc the body is unpacked into *reply (free with
 * rpc_pb_free; NULL on error). Retries nothing itself.
 */
int client_call(struct strata_client *c, const char *url, uint32_t method,
                unsigned flags, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_desc,
                ProtobufCMessage **reply, char *errmsg);

/*
 * Blocking controller query with retries of transient errors until the
 * operation timeout; errmsg says "controller unreachable" with the URLs
 * when no replica answered.
 */
int client_ctl_query(struct strata_client *c, uint32_t method,
                     const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *reply_desc,
                     ProtobufCMessage **reply, char *errmsg);

/* STRATA_EINVAL (errmsg starting with what) when a position of cut lies
 * past its segment's end (asked from the stores; a segment that is gone
 * is left to the controller), 0 otherwise; the transport errors. */
int client_cut_within(struct strata_client *c,
                      const struct strata_stream_cut *cut, const char *what,
                      char *errmsg);

/* Whether segment (a qualified name), which its store says it does not
 * have, was deleted by a truncation of its stream (the controller's
 * SuccessorsReply.deleted, asked again for up to 2 s while it says not:
 * the store deletes before the controller records; false when that
 * cannot be told). */
bool client_truncated_away(struct strata_client *c, const char *segment);

/*
 * Blocking controller mutation (req borrowed): retries failures where the
 * request surely did not run; after an unknown outcome repeats it and
 * counts already_done (e.g. STRATA_EEXIST for a create, 0 = none) as
 * success; when the reply's workflow still runs (done false) polls
 * CTL_GET_WORKFLOW until it finished or the operation timeout
 * (STRATA_ETIMEDOUT). what names the operation in errmsg.
 */
int client_ctl_mutate(struct strata_client *c, uint32_t method,
                      const ProtobufCMessage *req, int already_done,
                      const char *what, char *errmsg);

/* The same, also handing over the controller's reply (*out, may stay
 * NULL after an "already done"; free with rpc_pb_free). */
int client_ctl_mutate_reply(struct strata_client *c, uint32_t method,
                            const ProtobufCMessage *req, int already_done,
                            const char *what, Strata__V1__ControllerReply **out,
                            char *errmsg);

/* client_ctl_mutate, repeated while the controller answers
 * STRATA_EBUSY (it changed nothing: a workflow or a step it waits for is
 * still running), 50 ms doubling to 1 s, until the operation timeout. */
int client_ctl_mutate_busy(struct strata_client *c, uint32_t method,
                           const ProtobufCMessage *req, int already_done,
                           const char *what, char *errmsg);
/* client_ctl_mutate_reply, repeated likewise. */
int client_ctl_mutate_reply_busy(struct strata_client *c, uint32_t method,
                                 const ProtobufCMessage *req, int already_done,
                                 const char *what,
                                 Strata__V1__ControllerReply **out,
                                 char *errmsg);

struct strata_writer;
struct strata_writer_config;

/* 0 when cfg is a valid writer config (sizes, codec name and level; the
 * codec plugin is loaded), else STRATA_EINVAL (or the plugin's load
 * error) with errmsg naming the field. */
int client_writer_check_config(const struct strata_writer_config *cfg,
                               char *errmsg);

/* A writer on transaction txn_id's shadows of the segments in segs
 * (borrowed): as strata_writer_new, without asking the controller, and
 * without moving to successors (a sealed shadow fails its events). */
int client_writer_new_txn(struct strata_client *c, const char *scope,
                          const char *stream,
                          const struct strata_writer_config *cfg,
                          uint64_t txn_id,
                          const Strata__V1__SegmentsReply *segs,
                          struct strata_writer **out, char *errmsg);

/* 0 when no event of w ever failed and w takes events, else the first
 * lasting failure's code (the writer is broken) or the last failed
 * event's, with errmsg: even when strata_writer_flush reported it
 * already. A transaction's commit checks it (all or nothing). */
int client_writer_failed(struct strata_writer *w, char *errmsg);

/* --------------------------------------------------- segment operations */

struct seg_op;
typedef void (*seg_op_done_fn)(struct seg_op *op, int code, const char *errmsg);

/*
 * One request to the store leading a segment: asks the controller for the
 * endpoint (cached), tries the leader then the other replicas, follows
 * redirects, and retries transient errors with backoff until deadline.
 * Caller-allocated; completion runs on the I/O thread.
 */
struct seg_op {
	struct strata_client *c;
	char *name; /* qualified name (owned) */
	char scope[STRATA_NAME_MAX + 1];
	char stream[STRATA_NAME_MAX + 1];
	uint64_t segment_id;
	uint32_t method;
	unsigned flags;
	uint8_t *req; /* packed request (owned) */
	size_t req_len;
	uint64_t deadline_ms; /* monotonic */
	size_t n_urls;
	size_t url_idx;
	char urls[CT_EP_URLS][RPC_MAX_URL_LEN];
	unsigned backoffs; /* consecutive backoffs */
	int last_code;
	char last_msg[STRATA_ERRMSG_SIZE];
	struct creq rq;
	struct loop_timer timer;
	seg_op_done_fn done;
	void *arg;
	bool cancelled; /* seg_op_cancel: finish ECLOSED */
	/* results, valid in done(): */
	struct rpc_body reply;     /* body (owned by the op until reset) */
	char url[RPC_MAX_URL_LEN]; /* the store that answered */
};

/*
 * Start op for segment name: method with req (packed now). deadline_ms 0
 * = now + operation timeout. Returns 0 (done runs later on the I/O
 * thread) or STRATA_EBADNAME / STRATA_ENOMEM / STRATA_ECLOSED.
 */
int seg_op_start(struct strata_client *c, struct seg_op *op, const char *name,
                 uint32_t method, const ProtobufCMessage *req,
                 uint64_t deadline_ms, unsigned flags, seg_op_done_fn done,
                 void *arg, char *errmsg);

/* On the I/O thread: make a running op finish soon with STRATA_ECLOSED
 * (at once when it waits for a retry, else when its call returns). */
void seg_op_cancel(struct seg_op *op);

/* Free what the op holds (name, request, reply); it may be reused. */
void seg_op_reset(struct seg_op *op);

/* Forget the cached endpoint of name (after a store stopped answering). */
void client_ep_forget(struct strata_client *c, const char *name);

/*
 * Blocking segment call: seg_op_start + wait. On success with reply_desc
 * the body is unpacked into *reply (rpc_pb_free). On error *reply is NULL,
 * except that a body sent with the error is still unpacked when
 * keep_error_body is true.
 */
int client_seg_call(struct strata_client *c, const char *name, uint32_t method,
                    const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *reply_desc,
                    ProtobufCMessage **reply, bool keep_error_body,
                    char *errmsg);

/* client_seg_call returning the reply's body as received (also with an
 * error; *body empty when none): rpc_body_free it. */
int client_seg_call_body(struct strata_client *c, const char *name,
                         uint32_t method, const ProtobufCMessage *req,
                         struct rpc_body *body, char *errmsg);

/*
 * Decode a ReadReply body into *out for a read at offset, taking body:
 * out->data points into it (no copy; strata_read_result_release frees
 * it). body is freed also on error: STRATA_EPROTO (does not parse),
 * STRATA_ENOMEM. out is filled (empty) either way.
 */
int read_reply_take(struct rpc_body *body, uint64_t offset,
                    struct strata_read_result *out);

/*
 * strata_event_iter_new with the read-ahead depth chosen: up to depth
 * reads (1..4) run ahead of the caller, so the iterator holds up to
 * depth + 1 reads of data. The public call uses 4 (catch-up speed); a
 * reader group, with an iterator per assigned segment, uses 1.
 */
struct strata_event_iter;
int event_iter_new(struct strata_client *c, const char *segment,
                   uint64_t start_offset, uint64_t end_offset,
                   uint32_t read_bytes, unsigned depth,
                   struct strata_event_iter **out, char *errmsg);

/* Random bytes (getrandom, else a time-seeded fallback). */
void client_random(void *buf, size_t n);

/* --------------------------------------------------------- routing ---- */

/* MurmurHash3 fmix64. */
uint64_t routing_fmix64(uint64_t h);

/* Index of the range containing pos in lows[0..n) (sorted ascending,
 * lows[0] == 0): the last i with lows[i] <= pos. */
size_t routing_find(const double *lows, size_t n, double pos);

#endif /* CLIENT_CLIENT_INT_H */
