/* RPC over NNG req/rep with protobuf-c envelopes: the server and client
 * every Strata process uses (controller, segment store, client). */
#ifndef COMMON_RPC_H
#define COMMON_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/error.h"

#include <protobuf-c/protobuf-c.h>

/*
 * Wire format: every request is a strata.v1.RpcRequest {method, body} and
 * every reply a strata.v1.RpcReply {Status status, body}
 * (proto/strata/v1/rpc.proto); body is the method's own packed message.
 *
 * Method numbers are uint32 constants owned by each service, in blocks of
 * 100, defined in that service's header (append only, never reuse):
 *   0         invalid (an empty envelope decodes to 0: rejected)
 *   1-99      the RPC layer itself (RPC_METHOD_PING)
 *   100-199   controller, client-facing API
 *   200-299   segment store
 *   300-399   controller internal (segment store -> controller)
 *   400+      later services
 */
#define RPC_METHOD_PING 1u /* answered by the server itself, empty body */

/* Defaults for the options below. */
#define RPC_DEFAULT_CONTEXTS 16
#define RPC_DEFAULT_MAX_MSG_BYTES (16u * 1024 * 1024)
#define RPC_DEFAULT_DRAIN_MS 5000
#define RPC_DEFAULT_MAX_QUEUED_BYTES (64u * 1024 * 1024)
#define RPC_DEFAULT_MAX_CONNECTIONS 4096u
#define RPC_MAX_CONNECTIONS_LIMIT (1u << 20)
#define RPC_DEFAULT_TIMEOUT_MS 5000
#define RPC_DEFAULT_CONNECT_TIMEOUT_MS 1000
#define RPC_DEFAULT_RETRIES 3
#define RPC_DEFAULT_BACKOFF_BASE_MS 50
#define RPC_DEFAULT_BACKOFF_MAX_MS 2000
#define RPC_DEFAULT_MAX_REDIRECTS 3
#define RPC_MAX_ENDPOINTS 64 /* configured + learned from redirects */
#define RPC_MAX_URL_LEN 256  /* longest URL accepted (also redirects) */

/* The schema entry (struct config_key initializer, common/config.h) of the
 * connection bound every server binary declares: its value goes to
 * rpc_server_opts.max_connections, its name to max_connections_key. */
#define RPC_KEY_LIMITS_CONNECTIONS                                        \
	{                                                                 \
		.name = "limits.connections", .type = CONFIG_UINT,        \
		.def = "4096", .min = "1", .max = "1048576",              \
		.help = "Client connections open at once, per listener; " \
		        "further clients wait (or are turned away and "   \
		        "retry) until one closes."                        \
	}

/* ---------------------------------------------------------------- server */

struct rpc_server;
struct rpc_call; /* one request being served; see rpc_reply() */

struct rpc_server_opts {
	unsigned n_contexts;  /* requests served at once (1..1024) */
	size_t max_msg_bytes; /* larger requests are dropped by NNG */
	unsigned drain_ms;    /* rpc_server_stop waits this long for replies */
	const char *config_key; /* named in errors, e.g. "controller.listen";
	                           borrowed for the call, may be NULL */
	/* Serve a numeric tcp:// URL on Strata's own SP listener
	 * (common/rpc_sp.c) instead of an NNG socket: the wire is the same,
	 * a request costs one thread wake-up instead of about five, but
	 * every handler runs on its one I/O thread, so handlers must never
	 * wait (the segment store's only post to their container). */
	bool own_tcp;
	/* Own SP listener: a connection whose replies not yet written to
	 * its socket exceed this many bytes is not read (its requests wait
	 * in TCP) until they are down to half, so a client that sends but
	 * does not read cannot grow the server's memory without bound
	 * (64 KiB..4 GiB). */
	size_t max_queued_bytes;
	/* Connections open at once (1..2^20). The own SP listener stops
	 * accepting at the limit until one closes (further clients wait in
	 * the kernel's listen backlog); when accept runs out of file
	 * descriptors (or memory) it also pauses, for 100 ms at a time,
	 * instead of spinning on a socket that stays readable. An NNG
	 * socket closes a connection past the limit right after its
	 * handshake; the client redials with backoff. */
	unsigned max_connections;
	/* The setting named in those warnings, e.g. "limits.connections";
	 * borrowed for the call (copied), NULL = "max_connections". */
	const char *max_connections_key;
};

/* Fill opts with the defaults above (config_key NULL). */
void rpc_server_opts_default(struct rpc_server_opts *opts);

/*
 * Handles one request. Runs on an NNG thread; must not block for long (it
 * holds one of n_contexts) and must not call rpc_server_stop(). It answers
 * exactly once with rpc_reply*(), either before returning or later from
 * any thread. body is borrowed until that reply. Unknown methods should be
 * answered with rpc_reply_unknown_method().
 */
typedef void (*rpc_handler_fn)(void *arg, struct rpc_call *call,
                               uint32_t method, const uint8_t *body,
                               size_t len);

/*
 * Listen on url ("tcp://host:port", port 0 picks a free one; "inproc://x")
 * with a rep0 socket and opts->n_contexts contexts (bounded concurrency and
 * memory); opts NULL = defaults. Requests with a malformed envelope are
 * answered STRATA_EPROTO and serving goes on; method RPC_METHOD_PING is
 * answered here; every other request goes to handler(arg, ...). url and
 * opts are copied. On success *srv is set and must be given to
 * rpc_server_stop(). Errors: STRATA_EINVAL (bad url/opts), STRATA_EBUSY
 * (address in use: errmsg names the url and config key), STRATA_ENOMEM,
 * STRATA_EIO; errmsg (STRATA_ERRMSG_SIZE) says what to do.
 */
int rpc_server_start(struct rpc_server **srv, const char *url,
                     const struct rpc_server_opts *opts, rpc_handler_fn handler,
                     void *arg, char *errmsg);

/* The URL actually listened on (the real port when 0 was asked). Valid
 * until rpc_server_stop(). */
const char *rpc_server_url(const struct rpc_server *srv);

/*
 * Stop serving and free srv. Guarantee: requests arriving after the call
 * starts are answered STRATA_ESHUTDOWN (clients fail over); it then waits
 * up to opts->drain_ms for every request already given to the handler to
 * be answered and its reply sent; then it closes the socket and waits until
 * no handler is running. When it returns the handler is never called
 * again. A call still unanswered after the drain stays valid: a late
 * rpc_reply() on it returns STRATA_ECLOSED and sends nothing (its client
 * times out). Must not be called from a handler.
 */
void rpc_server_stop(struct rpc_server *srv);

/*
 * Answer call with status code (0 or a STRATA_E* code), a message for
 * people (NULL = none; copied) and body (NULL/0 = empty; copied). Exactly
 * once per call, from any thread; call is invalid afterwards. Returns 0,
 * STRATA_EINVAL when call was already answered, STRATA_ECLOSED after the
 * server stopped, STRATA_ENOMEM when the reply could not be built (the
 * call is then finished without a reply: the client times out).
 */
int rpc_reply(struct rpc_call *call, int code, const char *msg,
              const uint8_t *body, size_t len);

/* rpc_reply() with the packed message m as body (m NULL = empty). */
int rpc_reply_pb(struct rpc_call *call, int code, const char *msg,
                 const ProtobufCMessage *m);

struct refbuf;

/*
 * rpc_reply_pb() where the bytes field number `field` of m (left empty in
 * m) holds data[0..len), sent after the packed rest (protobuf field order
 * is free). When data lies in ref, the reply holds a reference until it
 * is written and the bytes are never copied in user space: a read's data
 * goes from the read cache to the socket. ref NULL: data is copied before
 * this returns. On an NNG socket (inproc://, host names) data is copied
 * into the one message NNG sends. Returns as rpc_reply().
 */
int rpc_reply_pb_tail(struct rpc_call *call, int code, const char *msg,
                      const ProtobufCMessage *m, uint32_t field,
                      const uint8_t *data, size_t len, struct refbuf *ref);

/* rpc_reply() with Status.redirect = url (copied): for STRATA_ENOTLEADER /
 * STRATA_EWRONGHOST so the client retries there. */
int rpc_reply_redirect(struct rpc_call *call, int code, const char *msg,
                       const char *url);

/* Answer STRATA_ENOTSUP naming the method: for methods a handler does not
 * know (an older server than the client). */
int rpc_reply_unknown_method(struct rpc_call *call, uint32_t method);

/* ---------------------------------------------------------------- client */

struct rpc_client;

struct rpc_client_opts {
	int timeout_ms;         /* per attempt: send + wait for the reply */
	int connect_timeout_ms; /* per attempt: wait for a connection */
	int retries;            /* extra attempts after the first (>= 0) */
	int backoff_base_ms;    /* delay before retry n: base * 2^(n-1), */
	int backoff_max_ms;     /* capped, then jittered to [d/2, d] */
	int max_redirects;      /* ENOTLEADER/EWRONGHOST hops followed */
	size_t max_msg_bytes;   /* largest request sent / reply received */
};

/* Fill opts with the defaults above. */
void rpc_client_opts_default(struct rpc_client_opts *opts);

/* Per-call flags. */
#define RPC_IDEMPOTENT                                     \
	0x1u /* may be re-sent after it possibly reached a \
	        server (timeout, lost connection) */

/*
 * Client for n equivalent endpoints urls[0..n) (e.g. 3 controller
 * replicas); each gets its own req0 socket, dialed on its first call and
 * then kept connected in the background (a server that starts later is
 * found). urls and opts (NULL = defaults) are copied. Errors: STRATA_EINVAL (n
 * == 0, bad url or opts), STRATA_ENOMEM, STRATA_EIO; errmsg says which.
 */
int rpc_client_open(struct rpc_client **cli, const char *const *urls, size_t n,
                    const struct rpc_client_opts *opts, char *errmsg);

/*
 * Close cli: calls in flight end with STRATA_ECLOSED (async callbacks run);
 * waits until every callback has returned, then frees cli. Must not be
 * called from an rpc_call_async() callback.
 */
void rpc_client_close(struct rpc_client *cli);

/*
 * A reply body, owned: data[0..len) lies inside the received message
 * (msg, no copy was made) or, when msg is NULL, is strata_malloc'd (NULL
 * when len is 0). Whoever holds it frees it with rpc_body_free(); a
 * zeroed rpc_body is empty.
 */
struct rpc_body {
	uint8_t *data;
	size_t len;
	void *msg; /* the NNG message holding data, or NULL */
};

/* Free b's bytes and zero it; NULL or empty ok. */
void rpc_body_free(struct rpc_body *b);

/* What a reply to a call says, for its caller. */
struct rpc_result {
	int code; /* STRATA_*: the server's, or the decode error */
	/* Why, when code != 0: the server's message (control bytes
	 * replaced), or one naming method and URL; may be "" for
	 * STRATA_ESHUTDOWN. */
	char errmsg[STRATA_ERRMSG_SIZE];
	/* Where to go instead (STRATA_ENOTLEADER / STRATA_EWRONGHOST with
	 * a redirect of at most RPC_MAX_URL_LEN bytes), else "". */
	char redirect[RPC_MAX_URL_LEN + 1];
	struct rpc_body body; /* owned by the caller */
};

/* Decode a received reply (msg: an nng_msg *, transferred: freed, or
 * handed on inside res->body) to the call of method sent to url. */
void rpc_reply_take(void *msg, uint32_t method, const char *url,
                    struct rpc_result *res);

/*
 * Callback of rpc_call_async(): called exactly once, on an NNG thread,
 * never from inside rpc_call_async(). code and errmsg as for rpc_call();
 * errmsg is borrowed for the call. *body (empty when there is none) is
 * transferred to the callback: it copies the struct and frees it with
 * rpc_body_free() when done.
 */
typedef void (*rpc_done_fn)(void *arg, int code, const char *errmsg,
                            struct rpc_body *body);

/*
 * Start a call of method with body req[0..len) (copied). Endpoint choice:
 * the one that last answered (or a redirect named), then the next in
 * turn. An attempt fails over to the next endpoint with backoff, up to
 * opts.retries times, when no connection came within connect_timeout_ms
 * or the server answered STRATA_ESHUTDOWN (the request was surely not
 * executed) and, for RPC_IDEMPOTENT calls only, on a timeout or a lost
 * connection. Replies STRATA_ENOTLEADER / STRATA_EWRONGHOST with a
 * redirect are followed (max_redirects hops; new URLs are dialed on
 * demand). Returns 0 (cb will be called) or STRATA_EINVAL / STRATA_ETOOBIG
 * / STRATA_ENOMEM / STRATA_ECLOSED without calling cb (errmsg, may be
 * NULL, says why).
 */
int rpc_call_async(struct rpc_client *cli, uint32_t method, unsigned flags,
                   const uint8_t *req, size_t len, rpc_done_fn cb, void *arg,
                   char *errmsg);

/*
 * Blocking, thread-safe call (one NNG context per call in flight). Returns
 * the server's status code (0 = success; errmsg = the server's message
 * otherwise) or a transport error: STRATA_ETIMEDOUT (no reply within
 * timeout_ms), STRATA_EUNAVAIL (no connection), STRATA_ECLOSED (connection
 * lost, or cli closed), STRATA_EPROTO (reply does not parse),
 * STRATA_ETOOBIG, STRATA_ENOMEM; errmsg names the method and URL. The
 * reply body, if any, is returned in *reply (strata_malloc'd, caller frees;
 * NULL when *reply_len is 0), also with a non-zero server status.
 */
int rpc_call(struct rpc_client *cli, uint32_t method, unsigned flags,
             const uint8_t *req, size_t len, uint8_t **reply, size_t *reply_len,
             char *errmsg);

/*
 * rpc_call() with protobuf messages: req (NULL = empty) is packed; on
 * success the reply body is unpacked as reply_desc into *reply (free with
 * rpc_pb_free()). A body that does not parse gives STRATA_EPROTO naming
 * the message type. On any error *reply is NULL.
 */
int rpc_call_pb(struct rpc_client *cli, uint32_t method, unsigned flags,
                const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_desc,
                ProtobufCMessage **reply, char *errmsg);

/* Free a message returned by rpc_call_pb() or rpc_pb_unpack(); NULL ok. */
void rpc_pb_free(ProtobufCMessage *m);

/* Unpack buf[0..len) as desc through the strata allocator; NULL when it
 * does not parse or memory ran out. Free with rpc_pb_free(). */
ProtobufCMessage *rpc_pb_unpack(const ProtobufCMessageDescriptor *desc,
                                const uint8_t *buf, size_t len);

/*
 * Unpacking into memory the caller already has: protobuf-c's allocations
 * for the message are carved from [base, base + cap) and only go to the
 * heap when it is full. One allocation (say, the request's own state with
 * the arena behind it) then holds the whole decoded message instead of one
 * per field. rpc_pb_arena_size(desc, len) is enough for a flat message of
 * len bytes (no sub-messages, repeated or unknown fields); what does not
 * fit goes to the heap. base must be aligned for max_align_t.
 */
struct rpc_pb_arena {
	uint8_t *base;
	size_t cap;
	size_t used;
	bool oom; /* a heap fallback failed */
};
size_t rpc_pb_arena_size(const ProtobufCMessageDescriptor *desc, size_t len);
void rpc_pb_arena_init(struct rpc_pb_arena *a, void *base, size_t cap);

/* rpc_pb_unpack into a; free with rpc_pb_arena_free (frees only what went
 * to the heap). */
ProtobufCMessage *rpc_pb_unpack_arena(const ProtobufCMessageDescriptor *desc,
                                      const uint8_t *buf, size_t len,
                                      struct rpc_pb_arena *a);
void rpc_pb_arena_free(ProtobufCMessage *m, struct rpc_pb_arena *a);

/* ---------------------------------------- envelope codec (socket-free) */

/* A decoded request envelope. */
struct rpc_request {
	uint32_t method;     /* never 0 after a successful decode */
	const uint8_t *body; /* into the decoded bytes or pb; NULL when len
	                        is 0 */
	size_t len;
	void *pb;  /* owned decoded message, or NULL (body borrowed) */
	void *msg; /* owned receive buffer (nng_msg *) body may point into,
	              or NULL; the server's dispatch sets it */
};

/*
 * Decode a request envelope from untrusted bytes buf[0..len). Safe on any
 * input. Returns 0, STRATA_EPROTO (does not parse, or method 0; errmsg
 * says why) or STRATA_ENOMEM. A plain envelope (what rpc_request_encode
 * writes: method and body at most once each, unknown fields skippable) is
 * read in place, its body borrowed from buf; anything else goes through
 * protobuf-c, with the same outcome. So body is valid while buf is and
 * until rpc_request_release(); on error there is nothing to release.
 */
int rpc_request_decode(const uint8_t *buf, size_t len, struct rpc_request *req,
                       char *errmsg);
void rpc_request_release(struct rpc_request *req);

/* A decoded reply envelope; strings point into pb, body into pb or into
 * the decoded bytes (valid while both are). */
struct rpc_reply_info {
	int code;             /* STRATA_* (unknown positive codes kept) */
	const char *message;  /* "" when none */
	const char *redirect; /* "" when none */
	const uint8_t *body;  /* NULL when len is 0 */
	size_t len;
	void *pb; /* owned decoded message; rpc_reply_release() frees */
};

/* Decode a reply envelope from untrusted bytes; as rpc_request_decode()
 * (a negative status code is STRATA_EPROTO). */
int rpc_reply_decode(const uint8_t *buf, size_t len, struct rpc_reply_info *rep,
                     char *errmsg);
void rpc_reply_release(struct rpc_reply_info *rep);

/* The packed size of a request envelope for method with a body of len
 * bytes, and the packing itself into out[0..size) (returns the size). */
size_t rpc_request_size(uint32_t method, size_t len);
size_t rpc_request_pack(uint32_t method, const uint8_t *body, size_t len,
                        uint8_t *out);

/* Pack an envelope into a new strata_malloc'd buffer *out (caller frees).
 * Returns 0 or STRATA_ENOMEM. Used by the server/client and by tests. */
int rpc_request_encode(uint32_t method, const uint8_t *body, size_t len,
                       uint8_t **out, size_t *out_len);
int rpc_reply_encode(int code, const char *msg, const char *redirect,
                     const uint8_t *body, size_t len, uint8_t **out,
                     size_t *out_len);

#endif /* COMMON_RPC_H */
