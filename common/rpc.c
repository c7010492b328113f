/* RPC over NNG req/rep with protobuf-c envelopes (see rpc.h).
 *
 * Server, per context (n_contexts of them, each one request at a time):
 * happy path: RECV -> decode -> handler -> rpc_reply() (any thread) ->
 * SEND -> RECV again once both the handler has returned and the send has
 * finished (whichever comes last re-arms the receive).
 * failure modes: malformed envelope -> EPROTO reply; stopping -> ESHUTDOWN
 * reply; reply cannot be built (OOM) -> no reply, context re-armed, client
 * times out; socket closed by stop -> callbacks see NNG_ECLOSED and stop.
 *
 * Client, per call (struct rpc_op, one aio driving it):
 * happy path: WAIT(0) -> connected? -> SEND on a fresh ctx -> RECV ->
 * decode -> callback.
 * failure modes: no connection within connect_timeout_ms, ESHUTDOWN reply
 * -> next endpoint after backoff (always safe: nothing executed); no
 * connection within RPC_FAILOVER_GRACE_MS while another endpoint has one
 * (every endpoint dials once a call waits) -> that one at once; timeout or
 * lost connection -> same, only for RPC_IDEMPOTENT calls; ENOTLEADER /
 * EWRONGHOST with a redirect -> that endpoint, no backoff, bounded hops;
 * client closing -> STRATA_ECLOSED.
 * Every step that starts an NNG operation checks cli->closing under cli->mtx
 * and starts the operation before unlocking, so close never misses one.
 */
#include "common/rpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "common/refbuf.h"
#include "common/rpc_int.h"
#include "common/sp.h"
#include "strata/error.h"
#include "strata/v1/rpc.pb-c.h"

/* ------------------------------------------------------------- helpers */

/* Copy untrusted text for logs and terminals: control bytes become '?'. */
static void copy_sanitized(char *dst, size_t size, const char *src)
{
	size_t i = 0;
	for (; src[i] != '\0' && i + 1 < size; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	dst[i] = '\0';
}

static int map_nng(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case NNG_ENOMEM:
		return STRATA_ENOMEM;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
	case NNG_ENOTSUP:
	case NNG_EBADTYPE:
		return STRATA_EINVAL;
	case NNG_EADDRINUSE:
		return STRATA_EBUSY;
	case NNG_ETIMEDOUT:
		return STRATA_ETIMEDOUT;
	case NNG_ECONNREFUSED:
		return STRATA_ECONNREFUSED;
	case NNG_ECLOSED:
	case NNG_ECANCELED:
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
	case NNG_ECONNABORTED:
		return STRATA_ECLOSED;
	case NNG_EMSGSIZE:
		return STRATA_ETOOBIG;
	case NNG_EPERM:
		return STRATA_EPERM;
	default:
		return STRATA_EIO;
	}
}

/* Monotonic absolute time ms from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static int cond_init_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t attr;
	if (pthread_condattr_init(&attr) != 0) {
		return STRATA_ENOMEM;
	}
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	int rv = pthread_cond_init(cv, &attr);
	pthread_condattr_destroy(&attr);
	return rv == 0 ? 0 : STRATA_ENOMEM;
}

/* ------------------------------------------- protobuf-c allocator glue */

struct pb_alloc_state {
	bool oom; /* an allocation failed: NULL from unpack means OOM */
};

static void *pb_alloc(void *data, size_t size)
{
	void *p = strata_malloc(size != 0 ? size : 1);
	if (p == NULL && data != NULL) {
		((struct pb_alloc_state *)data)->oom = true;
	}
	return p;
}

static void pb_free(void *data, void *p)
{
	(void)data;
	strata_free(p);
}

static ProtobufCAllocator pb_allocator = {
        .alloc = pb_alloc,
        .free = pb_free,
        .allocator_data = NULL,
};

static const uint8_t empty_bytes[1];

static ProtobufCMessage *pb_unpack(const ProtobufCMessageDescriptor *desc,
                                   const uint8_t *buf, size_t len, bool *oom)
{
	struct pb_alloc_state st = {.oom = false};
	ProtobufCAllocator a = {
	        .alloc = pb_alloc,
	        .free = pb_free,
	        .allocator_data = &st,
	};
	ProtobufCMessage *m = protobuf_c_message_unpack(
	        desc, &a, len, buf != NULL ? buf : empty_bytes);
	if (oom != NULL) {
		*oom = m == NULL && st.oom;
	}
	return m;
}

ProtobufCMessage *rpc_pb_unpack(const ProtobufCMessageDescriptor *desc,
                                const uint8_t *buf, size_t len)
{
	return pb_unpack(desc, buf, len, NULL);
}

void rpc_pb_free(ProtobufCMessage *m)
{
	if (m != NULL) {
		protobuf_c_message_free_unpacked(m, &pb_allocator);
	}
}

#define ARENA_ALIGN _Alignof(max_align_t)

static size_t arena_round(size_t n)
{
	return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

size_t rpc_pb_arena_size(const ProtobufCMessageDescriptor *desc, size_t len)
{
	/* The message, then its strings and bytes: together at most the
	 * len bytes of input, plus a NUL per string; a flat message has at
	 * most one such piece per field, and each piece is rounded up to
	 * ARENA_ALIGN. */
	return arena_round(desc->sizeof_message) + len +
	       (ARENA_ALIGN + 1) * (desc->n_fields + 1);
}

void rpc_pb_arena_init(struct rpc_pb_arena *a, void *base, size_t cap)
{
	a->base = base;
	a->cap = cap;
	a->used = 0;
	a->oom = false;
}

static bool in_arena(const struct rpc_pb_arena *a, const void *p)
{
	return a->base != NULL && (const uint8_t *)p >= a->base &&
	       (const uint8_t *)p < a->base + a->cap;
}

static void *arena_alloc(void *data, size_t size)
{
	struct rpc_pb_arena *a = data;
	size_t n = arena_round(size != 0 ? size : 1);
	if (a->cap - a->used >= n) {
		void *p = a->base + a->used;
		a->used += n;
		return p;
	}
	void *p = strata_malloc(size != 0 ? size : 1);
	if (p == NULL) {
		a->oom = true;
	}
	return p;
}

static void arena_free(void *data, void *p)
{
	if (!in_arena(data, p)) {
		strata_free(p);
	}
}

static ProtobufCAllocator arena_allocator(struct rpc_pb_arena *a)
{
	return (ProtobufCAllocator){
	        .alloc = arena_alloc,
	        .free = arena_free,
	        .allocator_data = a,
	};
}

ProtobufCMessage *rpc_pb_unpack_arena(const ProtobufCMessageDescriptor *desc,
                                      const uint8_t *buf, size_t len,
                                      struct rpc_pb_arena *a)
{
	ProtobufCAllocator al = arena_allocator(a);
	return protobuf_c_message_unpack(desc, &al, len,
	                                 buf != NULL ? buf : empty_bytes);
}

void rpc_pb_arena_free(ProtobufCMessage *m, struct rpc_pb_arena *a)
{
	if (m != NULL) {
		ProtobufCAllocator al = arena_allocator(a);
		protobuf_c_message_free_unpacked(m, &al);
	}
}

/* Pack m into *out (strata_malloc'd, caller frees; at least 1 byte) and
 * its length into *out_len. 0 or STRATA_ENOMEM. */
static int pb_pack(const ProtobufCMessage *m, uint8_t **out, size_t *out_len)
{
	size_t size = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = strata_malloc(size != 0 ? size : 1);
	if (buf == NULL) {
		return STRATA_ENOMEM;
	}
	*out_len = protobuf_c_message_pack(m, buf);
	*out = buf;
	return 0;
}

/* ------------------------------------------------------ envelope codec */

/* Unpack an envelope of type desc (what: "request" or "reply", sent by
 * peer: "client" or "server") into *out (free with rpc_pb_free). Errors
 * with errmsg: STRATA_ENOMEM, STRATA_EPROTO (not such an envelope). */
static int envelope_unpack(const ProtobufCMessageDescriptor *desc,
                           const char *what, const char *peer,
                           const uint8_t *buf, size_t len,
                           ProtobufCMessage **out, char *errmsg)
{
	bool oom;
	*out = pb_unpack(desc, buf, len, &oom);
	if (*out != NULL) {
		return 0;
	}
	if (oom) {
		errmsg_set(errmsg, "decode RPC %s of %zu bytes: out of memory",
		           what, len);
		return STRATA_ENOMEM;
	}
	errmsg_set(errmsg,
	           "malformed %s envelope: %zu bytes that are not a %s (%s "
	           "speaks another protocol?)",
	           what, len, desc->name, peer);
	return STRATA_EPROTO;
}

/*
 * The plain request envelope (rpc_request_encode's): method and body at
 * most once each, with their own wire types, the method within 32 bits,
 * unknown fields skippable. Then the body is borrowed from buf. false for
 * anything else: protobuf-c decides.
 */
static bool request_scan(const uint8_t *buf, size_t len, uint64_t *method,
                         const uint8_t **body, size_t *body_len)
{
	struct cursor cur;
	cursor_init(&cur, buf, len);
	bool seen_method = false, seen_body = false;
	*method = 0;
	*body = NULL;
	*body_len = 0;
	while (cursor_remaining(&cur) > 0) {
		struct pb_field f;
		if (cursor_pb_field(&cur, &f) != 0) {
			return false;
		}
		if (f.number == 1) {
			if (f.wire != PB_VARINT || seen_method ||
			    f.v > UINT32_MAX) {
				return false;
			}
			seen_method = true;
			*method = f.v;
		} else if (f.number == 2) {
			if (f.wire != PB_LEN || seen_body) {
				return false;
			}
			seen_body = true;
			*body = f.p;
			*body_len = f.len;
		}
	}
	return true;
}

int rpc_request_decode(const uint8_t *buf, size_t len, struct rpc_request *req,
                       char *errmsg)
{
	memset(req, 0, sizeof(*req));
	uint64_t method;
	const uint8_t *body;
	size_t body_len;
	if (request_scan(buf, len, &method, &body, &body_len)) {
		if (method == 0) {
			errmsg_set(errmsg,
			           "malformed request envelope: method 0 is "
			           "invalid (method numbers start at 1)");
			return STRATA_EPROTO;
		}
		req->method = (uint32_t)method;
		req->len = body_len;
		req->body = body_len != 0 ? body : NULL;
		return 0;
	}
	ProtobufCMessage *pm;
	int rc = envelope_unpack(&strata__v1__rpc_request__descriptor,
	                         "request", "client", buf, len, &pm, errmsg);
	if (rc != 0) {
		return rc;
	}
	Strata__V1__RpcRequest *m = (Strata__V1__RpcRequest *)pm;
	if (m->method == 0) {
		rpc_pb_free(pm);
		errmsg_set(errmsg, "malformed request envelope: method 0 is "
		                   "invalid (method numbers start at 1)");
		return STRATA_EPROTO;
	}
	req->method = m->method;
	req->len = m->body.len;
	req->body = m->body.len != 0 ? m->body.data : NULL;
	req->pb = m;
	return 0;
}

void rpc_request_release(struct rpc_request *req)
{
	if (req->pb != NULL) {
		rpc_pb_free(req->pb);
	}
	if (req->msg != NULL) {
		nng_msg_free(req->msg);
	}
	memset(req, 0, sizeof(*req));
}

/*
 * The plain reply envelope our servers send (rpc_reply_pb puts the body
 * last, after a small status): status and body at most once each, known
 * fields with their own wire types, unknown fields skippable. Then the
 * body is borrowed from buf (no copy of a large read) and only the status
 * is unpacked. false for anything else: protobuf-c decides (a repeated
 * status or body, a wrong wire type, what does not parse).
 */
static bool reply_scan(const uint8_t *buf, size_t len, const uint8_t **status,
                       size_t *status_len, const uint8_t **body,
                       size_t *body_len)
{
	struct cursor cur;
	cursor_init(&cur, buf, len);
	bool seen_status = false, seen_body = false;
	*status = NULL;
	*status_len = 0;
	*body = NULL;
	*body_len = 0;
	while (cursor_remaining(&cur) > 0) {
		struct pb_field f;
		if (cursor_pb_field(&cur, &f) != 0) {
			return false;
		}
		if (f.number == 1 || f.number == 2) {
			bool *seen = f.number == 1 ? &seen_status : &seen_body;
			if (f.wire != PB_LEN || *seen) {
				return false;
			}
			*seen = true;
			*(f.number == 1 ? status : body) = f.p;
			*(f.number == 1 ? status_len : body_len) = f.len;
		}
	}
	return true;
}

int rpc_reply_decode(const uint8_t *buf, size_t len, struct rpc_reply_info *rep,
                     char *errmsg)
{
	memset(rep, 0, sizeof(*rep));
	const uint8_t *sbuf, *body;
	size_t slen, blen;
	const Strata__V1__Status *st = NULL;
	ProtobufCMessage *pm;
	int rc;
	if (reply_scan(buf, len, &sbuf, &slen, &body, &blen)) {
		pm = NULL;
		if (sbuf != NULL) {
			rc = envelope_unpack(&strata__v1__status__descriptor,
			                     "reply status", "server", sbuf,
			                     slen, &pm, errmsg);
			if (rc != 0) {
				return rc;
			}
			st = (const Strata__V1__Status *)pm;
		}
	} else {
		rc = envelope_unpack(&strata__v1__rpc_reply__descriptor,
		                     "reply", "server", buf, len, &pm, errmsg);
		if (rc != 0) {
			return rc;
		}
		const Strata__V1__RpcReply *m = (Strata__V1__RpcReply *)pm;
		st = m->status;
		body = m->body.data;
		blen = m->body.len;
	}
	rep->code = 0;
	rep->message = "";
	rep->redirect = "";
	if (st != NULL) {
		if ((int)st->code < 0) {
			rpc_pb_free(pm);
			errmsg_set(errmsg, "malformed reply envelope: negative "
			                   "status code");
			return STRATA_EPROTO;
		}
		rep->code = (int)st->code;
		if (st->message != NULL) {
			rep->message = st->message;
		}
		if (st->redirect != NULL) {
			rep->redirect = st->redirect;
		}
	}
	rep->len = blen;
	rep->body = blen != 0 ? body : NULL;
	rep->pb = pm;
	return 0;
}

void rpc_reply_release(struct rpc_reply_info *rep)
{
	if (rep->pb != NULL) {
		rpc_pb_free(rep->pb);
	}
	memset(rep, 0, sizeof(*rep));
}

size_t rpc_request_size(uint32_t method, size_t len)
{
	Strata__V1__RpcRequest m = STRATA__V1__RPC_REQUEST__INIT;
	m.method = method;
	m.body.len = len;
	return protobuf_c_message_get_packed_size(&m.base);
}

size_t rpc_request_pack(uint32_t method, const uint8_t *body, size_t len,
                        uint8_t *out)
{
	Strata__V1__RpcRequest m = STRATA__V1__RPC_REQUEST__INIT;
	m.method = method;
	m.body.data = (uint8_t *)(len != 0 ? body : NULL);
	m.body.len = len;
	return protobuf_c_message_pack(&m.base, out);
}

int rpc_request_encode(uint32_t method, const uint8_t *body, size_t len,
                       uint8_t **out, size_t *out_len)
{
	size_t size = rpc_request_size(method, len);
	*out = strata_malloc(size != 0 ? size : 1);
	if (*out == NULL) {
		return STRATA_ENOMEM;
	}
	*out_len = rpc_request_pack(method, body, len, *out);
	return 0;
}

/* Fill m/st for a reply; strings are borrowed (never written by pack). */
static void reply_fill(Strata__V1__RpcReply *m, Strata__V1__Status *st,
                       int code, const char *msg, const char *redirect,
                       const uint8_t *body, size_t len)
{
	strata__v1__rpc_reply__init(m);
	strata__v1__status__init(st);
	st->code = (Strata__V1__ErrorCode)code;
	st->message = (char *)(msg != NULL ? msg : "");
	st->redirect = (char *)(redirect != NULL ? redirect : "");
	m->status = st;
	m->body.data = (uint8_t *)(len != 0 ? body : NULL);
	m->body.len = len;
}

int rpc_reply_encode(int code, const char *msg, const char *redirect,
                     const uint8_t *body, size_t len, uint8_t **out,
                     size_t *out_len)
{
	Strata__V1__RpcReply m;
	Strata__V1__Status st;
	reply_fill(&m, &st, code, msg, redirect, body, len);
	return pb_pack(&m.base, out, out_len);
}

/* --------------------------------------------------------------- server */

void rpc_server_opts_default(struct rpc_server_opts *opts)
{
	opts->n_contexts = RPC_DEFAULT_CONTEXTS;
	opts->max_msg_bytes = RPC_DEFAULT_MAX_MSG_BYTES;
	opts->drain_ms = RPC_DEFAULT_DRAIN_MS;
	opts->config_key = NULL;
	opts->own_tcp = false;
	opts->max_queued_bytes = RPC_DEFAULT_MAX_QUEUED_BYTES;
	opts->max_connections = RPC_DEFAULT_MAX_CONNECTIONS;
	opts->max_connections_key = NULL;
}

const char *rpc_server_url(const struct rpc_server *srv)
{
	return srv->url;
}

static void server_free(struct rpc_server *srv)
{
	rpc_sp_free(srv);
	pthread_cond_destroy(&srv->cv);
	pthread_mutex_destroy(&srv->mtx);
	strata_free(srv);
}

/* With srv->mtx held: finish call when handler and send are both done and
 * start receiving the next request. */
static void call_maybe_done(struct rpc_call *call)
{
	struct rpc_server *srv = call->srv;
	if (!call->busy || call->in_handler || !call->replied || !call->sent) {
		return;
	}
	call->busy = false;
	if (call->counted) {
		call->counted = false;
		srv->n_busy--;
		pthread_cond_broadcast(&srv->cv);
	}
	if (srv->closed) {
		return;
	}
	if (srv->sp != NULL) {
		rpc_sp_recycle_locked(call);
		return;
	}
	/* Safe under the lock: the socket is open (closed is set under it
	 * first) and completion is dispatched, never inline. */
	nng_ctx_recv(call->ctx, call->recv_aio);
}

static void server_send_cb(void *arg)
{
	struct rpc_call *call = arg;
	struct rpc_server *srv = call->srv;
	int rv = nng_aio_result(call->send_aio);
	if (rv != 0) {
		nng_msg *msg = nng_aio_get_msg(call->send_aio);
		nng_aio_set_msg(call->send_aio, NULL);
		nng_msg_free(msg);
		if (rv != NNG_ECLOSED) {
			LOG_DEBUG("rpc", "%s: reply not sent: %s", srv->url,
			          nng_strerror(rv));
		}
	}
	pthread_mutex_lock(&srv->mtx);
	call->sent = true;
	call_maybe_done(call);
	pthread_mutex_unlock(&srv->mtx);
}

static void server_recv_cb(void *arg)
{
	struct rpc_call *call = arg;
	struct rpc_server *srv = call->srv;
	int rv = nng_aio_result(call->recv_aio);
	if (rv != 0) {
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
			return; /* rpc_server_stop() */
		}
		LOG_WARN("rpc", "%s: receive failed: %s; still serving",
		         srv->url, nng_strerror(rv));
		pthread_mutex_lock(&srv->mtx);
		if (!srv->closed) {
			nng_ctx_recv(call->ctx, call->recv_aio);
		}
		pthread_mutex_unlock(&srv->mtx);
		return;
	}
	nng_msg *msg = nng_aio_get_msg(call->recv_aio);
	nng_aio_set_msg(call->recv_aio, NULL);
	rpc_server_dispatch(call, msg); /* takes msg */
}

void rpc_server_dispatch(struct rpc_call *call, nng_msg *msg)
{
	struct rpc_server *srv = call->srv;
	char errmsg[STRATA_ERRMSG_SIZE];
	int rc = rpc_request_decode(nng_msg_body(msg), nng_msg_len(msg),
	                            &call->req, errmsg);
	if (rc == 0) {
		call->req.msg = msg; /* freed when the request is released */
	} else {
		nng_msg_free(msg);
	}

	pthread_mutex_lock(&srv->mtx);
	bool stopping = srv->stopping;
	call->busy = true;
	call->in_handler = true;
	call->replied = false;
	call->sent = false;
	call->counted = rc == 0 && !stopping;
	if (call->counted) {
		srv->n_busy++;
	}
	pthread_mutex_unlock(&srv->mtx);

	if (rc != 0) {
		LOG_DEBUG("rpc", "%s: %s", srv->url, errmsg);
		rpc_reply(call, rc, errmsg, NULL, 0);
	} else if (stopping) {
		errmsg_set(
		        errmsg,
		        "server %s is shutting down: retry on another replica",
		        srv->url);
		rpc_reply(call, STRATA_ESHUTDOWN, errmsg, NULL, 0);
	} else if (call->req.method == RPC_METHOD_PING) {
		rpc_reply(call, 0, NULL, NULL, 0);
	} else {
		srv->handler(srv->arg, call, call->req.method, call->req.body,
		             call->req.len);
	}

	pthread_mutex_lock(&srv->mtx);
	call->in_handler = false;
	call_maybe_done(call);
	pthread_mutex_unlock(&srv->mtx);
}

/* A bytes field sent after the packed message instead of inside it
 * (rpc_reply_pb_tail). */
struct reply_tail {
	uint32_t field;      /* the field of pb it fills */
	const uint8_t *data; /* len bytes, inside ref when ref != NULL */
	size_t len;
	struct refbuf *ref; /* borrowed; NULL: data is copied */
};

/*
 * A reply envelope in a new NNG message: body[0..len) as its body, or the
 * packed pb. pb is packed straight into the message after the rest of the
 * envelope (field order is free in protobuf), so a large body (a read's
 * data) is copied once, instead of packed, copied and packed again. With
 * a tail, the message ends with the tail field's tag and length, then
 * its bytes when tail_inline (an NNG socket sends one message), else the
 * sender writes them after the message. STRATA_ENOMEM; STRATA_ETOOBIG,
 * nothing built, when it would be over max bytes; *size is the size on
 * the wire (tail bytes included).
 */
static int reply_msg(nng_msg **out, size_t *size, int code, const char *msg,
                     const char *redirect, const uint8_t *body, size_t len,
                     const ProtobufCMessage *pb, const struct reply_tail *tail,
                     bool tail_inline, size_t max)
{
	Strata__V1__RpcReply m;
	Strata__V1__Status st;
	reply_fill(&m, &st, code, msg, redirect, body, len);
	size_t packed = pb != NULL ? protobuf_c_message_get_packed_size(pb) : 0;
	size_t tail_head =
	        tail != NULL ? pb_put_len_head(NULL, tail->field, tail->len)
	                     : 0;
	size_t inner = packed + tail_head + (tail != NULL ? tail->len : 0);
	size_t head = strata__v1__rpc_reply__get_packed_size(&m);
	*size = head;
	if (inner > 0) {
		*size += pb_put_len_head(NULL, 2, inner) + inner;
	}
	if (*size > max) {
		*out = NULL;
		return STRATA_ETOOBIG;
	}
	size_t tail_len = tail != NULL && !tail_inline ? tail->len : 0;
	int rc = map_nng(nng_msg_alloc(out, *size - tail_len));
	if (rc != 0) {
		*out = NULL;
		return rc;
	}
	uint8_t *p = nng_msg_body(*out);
	p += strata__v1__rpc_reply__pack(&m, p);
	if (inner > 0) {
		p += pb_put_len_head(p, 2, inner); /* RpcReply.body */
		if (pb != NULL) {
			p += protobuf_c_message_pack(pb, p);
		}
		if (tail != NULL) {
			p += pb_put_len_head(p, tail->field, tail->len);
			if (tail_inline) {
				memcpy(p, tail->data, tail->len);
			}
		}
	}
	return 0;
}

/*
 * The tail's bytes for the SP sender (*out), without a copy when they lie
 * in a reference-counted buffer (out gets a reference), else copied once
 * into a new one (no zeroing, unlike an NNG message). STRATA_ENOMEM.
 */
static int tail_take(const struct reply_tail *tail, struct sp_tail *out)
{
	*out = (struct sp_tail){0};
	if (tail == NULL || tail->len == 0) {
		return 0;
	}
	if (tail->ref != NULL) {
		*out = (struct sp_tail){refbuf_hold(tail->ref), tail->data,
		                        tail->len};
		return 0;
	}
	struct refbuf *copy = refbuf_copy(tail->data, tail->len);
	if (copy == NULL) {
		return STRATA_ENOMEM;
	}
	*out = (struct sp_tail){copy, copy->data, copy->size};
	return 0;
}

static int reply_common(struct rpc_call *call, int code, const char *msg,
                        const char *redirect, const uint8_t *body, size_t len,
                        const ProtobufCMessage *pb,
                        const struct reply_tail *tail)
{
	struct rpc_server *srv = call->srv;
	/* Build first: body may point into the request we free below. */
	nng_msg *nmsg = NULL;
	size_t size;
	bool own = srv->sp != NULL; /* else NNG: the tail inside nmsg */
	/* A client drops a larger reply with the connection and tries
	 * again, for ever and each time the server builds it anew: what
	 * clients take by default, or the server's own limit if higher. */
	size_t cap = srv->opts.max_msg_bytes > RPC_DEFAULT_MAX_MSG_BYTES
	                     ? srv->opts.max_msg_bytes
	                     : RPC_DEFAULT_MAX_MSG_BYTES;
	int rc = reply_msg(&nmsg, &size, code, msg, redirect, body, len, pb,
	                   tail, !own, cap);
	struct sp_tail tref = {0};
	if (rc == 0 && own) {
		rc = tail_take(tail, &tref);
		if (rc != 0) {
			nng_msg_free(nmsg);
			nmsg = NULL;
		}
	}
	if (rc == STRATA_ETOOBIG) {
		char why[STRATA_ERRMSG_SIZE];
		snprintf(why, sizeof(why),
		         "the reply would be %zu bytes, over the %zu-byte "
		         "message limit, and was not sent: ask for less at a "
		         "time (a list: the REST API has no such limit)",
		         size, cap);
		LOG_WARN("rpc", "%s: %s", srv->url, why);
		size_t small;
		rc = reply_msg(&nmsg, &small, STRATA_ETOOBIG, why, NULL, NULL,
		               0, NULL, NULL, false, cap);
	} else if (rc != 0 && (len > 0 || pb != NULL || tail != NULL)) {
		/* Still answer, so the client is not left waiting. */
		size_t small;
		(void)reply_msg(&nmsg, &small, STRATA_ENOMEM,
		                "server out of memory building the reply", NULL,
		                NULL, 0, NULL, NULL, false, cap);
	}

	pthread_mutex_lock(&srv->mtx);
	if (!call->busy || call->replied) {
		pthread_mutex_unlock(&srv->mtx);
		nng_msg_free(nmsg);
		refbuf_release(tref.ref);
		LOG_ERROR("rpc",
		          "%s: rpc_reply on a call already answered "
		          "(bug in the service's handler)",
		          srv->url);
		return STRATA_EINVAL;
	}
	call->replied = true;
	rpc_request_release(&call->req);
	if (srv->closed) {
		bool free_srv = false;
		if (srv->stop_done) {
			free_srv = --srv->late == 0;
		}
		pthread_mutex_unlock(&srv->mtx);
		nng_msg_free(nmsg);
		refbuf_release(tref.ref);
		if (free_srv) {
			server_free(srv);
		}
		return STRATA_ECLOSED;
	}
	if (nmsg == NULL) {
		call->sent = true;
		call_maybe_done(call);
		pthread_mutex_unlock(&srv->mtx);
		LOG_ERROR("rpc",
		          "%s: reply of %zu bytes not sent: out of "
		          "memory",
		          srv->url, size);
		return rc;
	}
	if (srv->sp != NULL) {
		/* Written outside the server's lock (the I/O thread takes it
		 * for every request), on a reference to the connection. */
		struct sp_conn *conn = rpc_sp_hold_locked(call);
		uint32_t id = call->id;
		call->sent = true;
		call_maybe_done(call);
		pthread_mutex_unlock(&srv->mtx);
		/* takes nmsg, tref and the connection's reference */
		rpc_sp_send(srv, conn, id, nmsg, &tref);
	} else {
		nng_aio_set_msg(call->send_aio, nmsg);
		nng_ctx_send(call->ctx, call->send_aio);
		pthread_mutex_unlock(&srv->mtx);
	}
	if (rc != 0) {
		LOG_ERROR("rpc",
		          "%s: reply of %zu bytes replaced by an out-of-memory "
		          "error",
		          srv->url, size);
	}
	return rc;
}

int rpc_reply(struct rpc_call *call, int code, const char *msg,
              const uint8_t *body, size_t len)
{
	return reply_common(call, code, msg, NULL, body, len, NULL, NULL);
}

int rpc_reply_redirect(struct rpc_call *call, int code, const char *msg,
                       const char *url)
{
	return reply_common(call, code, msg, url, NULL, 0, NULL, NULL);
}

int rpc_reply_pb(struct rpc_call *call, int code, const char *msg,
                 const ProtobufCMessage *m)
{
	return reply_common(call, code, msg, NULL, NULL, 0, m, NULL);
}

int rpc_reply_pb_tail(struct rpc_call *call, int code, const char *msg,
                      const ProtobufCMessage *m, uint32_t field,
                      const uint8_t *data, size_t len, struct refbuf *ref)
{
	if (len == 0) {
		return reply_common(call, code, msg, NULL, NULL, 0, m, NULL);
	}
	struct reply_tail tail = {field, data, len, ref};
	return reply_common(call, code, msg, NULL, NULL, 0, m, &tail);
}

int rpc_reply_unknown_method(struct rpc_call *call, uint32_t method)
{
	char msg[STRATA_ERRMSG_SIZE];
	errmsg_set(msg,
	           "unknown RPC method %u on %s: the client is newer than the "
	           "server; upgrade the server",
	           method, call->srv->url);
	return reply_common(call, STRATA_ENOTSUP, msg, NULL, NULL, 0, NULL,
	                    NULL);
}

static int server_opts_check(const struct rpc_server_opts *o, char *errmsg)
{
	if (o->n_contexts < 1 || o->n_contexts > 1024) {
		errmsg_set(errmsg,
		           "rpc server: n_contexts %u out of range 1..1024",
		           o->n_contexts);
		return STRATA_EINVAL;
	}
	if (o->max_msg_bytes < 64 || o->max_msg_bytes > (1u << 30)) {
		errmsg_set(
		        errmsg,
		        "rpc server: max_msg_bytes %zu out of range 64..1 GiB",
		        o->max_msg_bytes);
		return STRATA_EINVAL;
	}
	if (o->max_queued_bytes < 65536 ||
	    o->max_queued_bytes > ((size_t)4 << 30)) {
		errmsg_set(errmsg,
		           "rpc server: max_queued_bytes %zu out of range "
		           "64 KiB..4 GiB",
		           o->max_queued_bytes);
		return STRATA_EINVAL;
	}
	if (o->max_connections < 1 ||
	    o->max_connections > RPC_MAX_CONNECTIONS_LIMIT) {
		errmsg_set(errmsg,
		           "rpc server: max_connections %u out of range "
		           "1..%u",
		           o->max_connections, RPC_MAX_CONNECTIONS_LIMIT);
		return STRATA_EINVAL;
	}
	return 0;
}

/*
 * NNG transport: bound the connections open at once. NNG has no such
 * option, so a connection past the limit is closed as soon as its SP
 * handshake is done (ADD_PRE: the socket never uses it); its client
 * redials with backoff (libstrata: 50 ms doubling to 1 s) and is served
 * once another closes. Every pipe that saw ADD_PRE also sees REM_POST
 * (NNG's pipe.c), rejected ones included, so one counter balances.
 */
static void server_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct rpc_server *srv = arg;
	bool reject = false, warn = false;
	unsigned n;
	pthread_mutex_lock(&srv->mtx);
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		n = ++srv->n_pipes;
		if (n > srv->opts.max_connections) {
			reject = true;
			warn = clock_due(&srv->pipes_warned_ms, clock_mono_ms(),
			                 CLOCK_WARN_EVERY_MS);
		}
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		srv->n_pipes--;
	}
	pthread_mutex_unlock(&srv->mtx);
	if (reject) {
		nng_pipe_close(p);
	}
	if (warn) {
		LOG_WARN("rpc",
		         "%s: %u connections open, the most this server "
		         "accepts (%s); new clients are turned away and retry "
		         "until one closes. Raise the limit if that many "
		         "clients are expected",
		         srv->url, srv->opts.max_connections, srv->limit_key);
	}
}

/* Replace the port of a tcp URL by the one actually bound. */
static void server_bound_url(struct rpc_server *srv, nng_listener l,
                             const char *url)
{
	snprintf(srv->url, sizeof(srv->url), "%s", url);
	int port = 0;
	const char *colon = strrchr(url, ':');
	if (strncmp(url, "tcp", 3) != 0 || colon == NULL ||
	    nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) != 0) {
		return;
	}
	snprintf(srv->url, sizeof(srv->url), "%.*s:%d", (int)(colon - url), url,
	         port);
}

void rpc_listen_errmsg(char *errmsg, const char *url, const char *key, int code,
                       const char *why)
{
	if (code == STRATA_EBUSY) {
		errmsg_set(errmsg,
		           "listen on %s: address already in use: another "
		           "process (or server) listens there; stop it or set "
		           "%s to a free address",
		           url, key);
	} else if (code == STRATA_EINVAL) {
		errmsg_set(errmsg,
		           "listen on '%s': invalid address (%s); set %s to "
		           "tcp://HOST:PORT",
		           url, why, key);
	} else {
		errmsg_set(errmsg, "listen on %s: %s (check %s)", url, why,
		           key);
	}
}

int rpc_server_start(struct rpc_server **out, const char *url,
                     const struct rpc_server_opts *opts, rpc_handler_fn handler,
                     void *arg, char *errmsg)
{
	struct rpc_server_opts o;
	if (opts != NULL) {
		o = *opts;
	} else {
		rpc_server_opts_default(&o);
	}
	const char *key =
	        o.config_key != NULL ? o.config_key : "the listen address";
	o.config_key = NULL; /* borrowed: not kept */
	if (url == NULL || handler == NULL) {
		errmsg_set(errmsg, "rpc server: url and handler are required");
		return STRATA_EINVAL;
	}
	if (strlen(url) > RPC_MAX_URL_LEN) {
		errmsg_set(errmsg, "rpc server: URL longer than %d bytes (%s)",
		           RPC_MAX_URL_LEN, key);
		return STRATA_EINVAL;
	}
	int rc = server_opts_check(&o, errmsg);
	if (rc != 0) {
		return rc;
	}
	struct rpc_server *srv = strata_calloc(
	        1, sizeof(*srv) + o.n_contexts * sizeof(struct rpc_call));
	if (srv == NULL) {
		errmsg_set(errmsg, "rpc server %s: out of memory", url);
		return STRATA_ENOMEM;
	}
	srv->handler = handler;
	srv->arg = arg;
	srv->opts = o;
	srv->n_calls = o.n_contexts;
	snprintf(srv->url, sizeof(srv->url), "%s", url);
	pthread_mutex_init(&srv->mtx, NULL);
	rc = cond_init_monotonic(&srv->cv);
	if (rc != 0) {
		pthread_mutex_destroy(&srv->mtx);
		strata_free(srv);
		errmsg_set(errmsg, "rpc server %s: out of memory", url);
		return rc;
	}

	for (unsigned i = 0; i < srv->n_calls; i++) {
		srv->calls[i].srv = srv;
	}
	snprintf(srv->limit_key, sizeof(srv->limit_key), "%s",
	         o.max_connections_key != NULL ? o.max_connections_key
	                                       : "max_connections");
	srv->opts.max_connections_key = NULL; /* borrowed: copied above */
	struct sockaddr_storage sa;
	socklen_t salen;
	if (o.own_tcp && sp_url_addr(url, true, &sa, &salen)) {
		rc = rpc_sp_start(srv, url, key, errmsg);
		if (rc != 0) {
			goto err_free;
		}
		goto started;
	}
	int rv = nng_rep0_open(&srv->sock);
	if (rv != 0) {
		rc = map_nng(rv);
		errmsg_set(errmsg, "rpc server %s: open socket: %s", url,
		           nng_strerror(rv));
		goto err_free;
	}
	rv = nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ, o.max_msg_bytes);
	for (unsigned i = 0; rv == 0 && i < srv->n_calls; i++) {
		struct rpc_call *call = &srv->calls[i];
		rv = nng_ctx_open(&call->ctx, srv->sock);
		if (rv == 0) {
			rv = nng_aio_alloc(&call->recv_aio, server_recv_cb,
			                   call);
		}
		if (rv == 0) {
			rv = nng_aio_alloc(&call->send_aio, server_send_cb,
			                   call);
		}
	}
	if (rv != 0) {
		rc = map_nng(rv);
		errmsg_set(errmsg, "rpc server %s: set up %u contexts: %s", url,
		           srv->n_calls, nng_strerror(rv));
		goto err_close;
	}
	rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_ADD_PRE, server_pipe_cb,
	                     srv);
	if (rv == 0) {
		rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_REM_POST,
		                     server_pipe_cb, srv);
	}
	if (rv != 0) {
		rc = map_nng(rv);
		errmsg_set(errmsg, "rpc server %s: pipe notifications: %s", url,
		           nng_strerror(rv));
		goto err_close;
	}
	nng_listener l;
	rv = nng_listen(srv->sock, url, &l, 0);
	if (rv != 0) {
		rc = map_nng(rv);
		rpc_listen_errmsg(errmsg, url, key,
		                  rv == NNG_EADDRINUSE ? STRATA_EBUSY : rc,
		                  nng_strerror(rv));
		goto err_close;
	}
	server_bound_url(srv, l, url);
	pthread_mutex_lock(&srv->mtx);
	for (unsigned i = 0; i < srv->n_calls; i++) {
		nng_ctx_recv(srv->calls[i].ctx, srv->calls[i].recv_aio);
	}
	pthread_mutex_unlock(&srv->mtx);
started:
	LOG_INFO("rpc", "listening on %s (%u contexts, max message %zu bytes)",
	         srv->url, srv->n_calls, o.max_msg_bytes);
	*out = srv;
	return 0;

err_close:
	nng_close(srv->sock);
	for (unsigned i = 0; i < srv->n_calls; i++) {
		if (srv->calls[i].recv_aio != NULL) {
			nng_aio_free(srv->calls[i].recv_aio);
		}
		if (srv->calls[i].send_aio != NULL) {
			nng_aio_free(srv->calls[i].send_aio);
		}
	}
err_free:
	server_free(srv);
	return rc;
}

void rpc_server_stop(struct rpc_server *srv)
{
	pthread_mutex_lock(&srv->mtx);
	srv->stopping = true;
	struct timespec dl = deadline_in(srv->opts.drain_ms);
	while (srv->n_busy > 0) {
		if (pthread_cond_timedwait(&srv->cv, &srv->mtx, &dl) ==
		    ETIMEDOUT) {
			break;
		}
	}
	unsigned unanswered = srv->n_busy;
	srv->closed = true;
	pthread_mutex_unlock(&srv->mtx);
	if (unanswered > 0) {
		LOG_WARN("rpc",
		         "%s: stopping with %u request(s) still unanswered "
		         "after %u ms; their clients will time out",
		         srv->url, unanswered, srv->opts.drain_ms);
	}

	if (srv->sp != NULL) {
		rpc_sp_close(srv);
	} else {
		nng_close(srv->sock); /* aborts receives and pending sends */
		for (unsigned i = 0; i < srv->n_calls; i++) {
			/* Waits for a running callback, and so for its handler.
			 */
			nng_aio_stop(srv->calls[i].recv_aio);
			nng_aio_stop(srv->calls[i].send_aio);
		}
		for (unsigned i = 0; i < srv->n_calls; i++) {
			nng_aio_free(srv->calls[i].recv_aio);
			nng_aio_free(srv->calls[i].send_aio);
		}
	}

	pthread_mutex_lock(&srv->mtx);
	for (unsigned i = 0; i < srv->n_calls; i++) {
		if (srv->calls[i].busy && !srv->calls[i].replied) {
			srv->late++;
		}
	}
	srv->stop_done = true;
	bool free_now = srv->late == 0;
	pthread_mutex_unlock(&srv->mtx);
	LOG_INFO("rpc", "stopped listening on %s", srv->url);
	if (free_now) {
		server_free(srv);
	}
}

/* --------------------------------------------------------------- client */

struct rpc_endpoint {
	char url[RPC_MAX_URL_LEN + 1];
	nng_socket sock;
	nng_dialer dialer;
	bool started;      /* dialer started (under cli->mtx) */
	atomic_int npipes; /* connections up (pipe notifications) */
	atomic_bool down;  /* a connect wait expired; cleared on connect */
	/* Connections the server closed right after the handshake (within
	 * RPC_CLOSED_AT_ONCE_MS), as one at its connection limit does
	 * (server_pipe_cb): the "no connection" message says so. */
	_Atomic uint64_t added_ms;  /* last pipe up (monotonic) */
	atomic_uint closed_at_once; /* since the last lasting connection */
};

#define RPC_CLOSED_AT_ONCE_MS 100
/* An endpoint not connected this long while another is: use the other
 * (connections on 127.0.0.1 or a LAN take well under this). */
#define RPC_FAILOVER_GRACE_MS 250

enum op_state {
	OP_WAIT, /* start, connection wait or backoff: a sleep */
	OP_SEND,
	OP_RECV,
};

struct rpc_op {
	struct rpc_client *cli;
	struct rpc_op *prev, *next; /* cli->ops */
	nng_aio *aio;               /* send/receive on ctx */
	nng_aio *timer; /* sleeps only: NNG 1.5.2 reports a later timeout
	                   as success on an aio that slept before */
	nng_ctx ctx;
	bool ctx_open;
	enum op_state state;
	size_t ep; /* index into cli->eps */
	uint32_t method;
	unsigned flags;
	uint8_t *env; /* packed request envelope */
	size_t env_len;
	int attempt;   /* retries used */
	int redirects; /* redirects followed */
	bool waiting;  /* wait_start is set */
	nng_time wait_start;
	nng_duration wait_step;
	nng_time send_time;
	uint64_t rng;
	rpc_done_fn cb;
	void *arg;
	char errmsg[STRATA_ERRMSG_SIZE];
};

struct rpc_client {
	pthread_mutex_t mtx;
	pthread_cond_t cv; /* n_ops reached 0 */
	struct rpc_client_opts opts;
	struct rpc_endpoint *eps[RPC_MAX_ENDPOINTS];
	size_t n_eps;
	size_t preferred; /* endpoint that answered last */
	struct rpc_op *ops;
	size_t n_ops;
	bool closing;
	uint64_t seed;
};

void rpc_client_opts_default(struct rpc_client_opts *opts)
{
	opts->timeout_ms = RPC_DEFAULT_TIMEOUT_MS;
	opts->connect_timeout_ms = RPC_DEFAULT_CONNECT_TIMEOUT_MS;
	opts->retries = RPC_DEFAULT_RETRIES;
	opts->backoff_base_ms = RPC_DEFAULT_BACKOFF_BASE_MS;
	opts->backoff_max_ms = RPC_DEFAULT_BACKOFF_MAX_MS;
	opts->max_redirects = RPC_DEFAULT_MAX_REDIRECTS;
	opts->max_msg_bytes = RPC_DEFAULT_MAX_MSG_BYTES;
}

static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	struct rpc_endpoint *ep = arg;
	if (ev == NNG_PIPE_EV_ADD_POST) {
		atomic_store(&ep->added_ms, clock_mono_ms());
		atomic_fetch_add(&ep->npipes, 1);
		atomic_store(&ep->down, false);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		atomic_fetch_sub(&ep->npipes, 1);
		if (clock_mono_ms() - atomic_load(&ep->added_ms) <
		    RPC_CLOSED_AT_ONCE_MS) {
			atomic_fetch_add(&ep->closed_at_once, 1);
		} else {
			atomic_store(&ep->closed_at_once, 0);
		}
	}
}

static void endpoint_close(struct rpc_endpoint *ep)
{
	nng_close(ep->sock);
	strata_free(ep);
}

/* Open a req0 socket for url with a dialer, not started: the first call
 * starts it (background dialing, reconnects by itself). Dialing lazily
 * also avoids an NNG 1.5.2 leak when a socket is closed mid-handshake. */
static int endpoint_open(const struct rpc_client_opts *o, const char *url,
                         struct rpc_endpoint **out, char *errmsg)
{
	if (strlen(url) > RPC_MAX_URL_LEN) {
		errmsg_set(errmsg, "RPC URL longer than %d bytes: %.64s...",
		           RPC_MAX_URL_LEN, url);
		return STRATA_EINVAL;
	}
	struct rpc_endpoint *ep = strata_calloc(1, sizeof(*ep));
	if (ep == NULL) {
		errmsg_set(errmsg, "rpc client %s: out of memory", url);
		return STRATA_ENOMEM;
	}
	snprintf(ep->url, sizeof(ep->url), "%s", url);
	atomic_init(&ep->npipes, 0);
	atomic_init(&ep->added_ms, 0);
	atomic_init(&ep->closed_at_once, 0);
	atomic_init(&ep->down, false);
	int rv = nng_req0_open(&ep->sock);
	if (rv != 0) {
		errmsg_set(errmsg, "rpc client %s: open socket: %s", url,
		           nng_strerror(rv));
		strata_free(ep);
		return map_nng(rv);
	}
	/* Our own retries decide what is re-sent; NNG must not resend. */
	rv = nng_socket_set_ms(ep->sock, NNG_OPT_REQ_RESENDTIME,
	                       NNG_DURATION_INFINITE);
	if (rv == 0) {
		rv = nng_socket_set_size(ep->sock, NNG_OPT_RECVMAXSZ,
		                         o->max_msg_bytes);
	}
	if (rv == 0) {
		rv = nng_socket_set_ms(ep->sock, NNG_OPT_RECONNMINT, 50);
	}
	if (rv == 0) {
		rv = nng_socket_set_ms(ep->sock, NNG_OPT_RECONNMAXT, 1000);
	}
	if (rv == 0) {
		rv = nng_pipe_notify(ep->sock, NNG_PIPE_EV_ADD_POST, pipe_cb,
		                     ep);
	}
	if (rv == 0) {
		rv = nng_pipe_notify(ep->sock, NNG_PIPE_EV_REM_POST, pipe_cb,
		                     ep);
	}
	if (rv != 0) {
		errmsg_set(errmsg, "rpc client %s: set socket options: %s", url,
		           nng_strerror(rv));
		endpoint_close(ep);
		return map_nng(rv);
	}
	rv = nng_dialer_create(&ep->dialer, ep->sock, url);
	if (rv != 0) {
		int rc = map_nng(rv);
		if (rc == STRATA_EINVAL) {
			errmsg_set(errmsg,
			           "invalid RPC URL '%s' (%s): expected "
			           "tcp://HOST:PORT or inproc://NAME",
			           url, nng_strerror(rv));
		} else {
			errmsg_set(errmsg, "rpc client: dial %s: %s", url,
			           nng_strerror(rv));
		}
		endpoint_close(ep);
		return rc;
	}
	*out = ep;
	return 0;
}

static int client_opts_check(const struct rpc_client_opts *o, char *errmsg)
{
	if (o->timeout_ms < 1 || o->connect_timeout_ms < 0 || o->retries < 0 ||
	    o->retries > 100 || o->backoff_base_ms < 0 ||
	    o->backoff_max_ms < o->backoff_base_ms || o->max_redirects < 0 ||
	    o->max_msg_bytes < 64 || o->max_msg_bytes > (1u << 30)) {
		errmsg_set(errmsg,
		           "rpc client options out of range: timeout_ms >= 1, "
		           "connect_timeout_ms >= 0, retries 0..100, "
		           "0 <= backoff_base_ms <= backoff_max_ms, "
		           "max_redirects >= 0, max_msg_bytes 64..1 GiB");
		return STRATA_EINVAL;
	}
	return 0;
}

int rpc_client_open(struct rpc_client **out, const char *const *urls, size_t n,
                    const struct rpc_client_opts *opts, char *errmsg)
{
	struct rpc_client_opts o;
	if (opts != NULL) {
		o = *opts;
	} else {
		rpc_client_opts_default(&o);
	}
	if (urls == NULL || n == 0 || n > RPC_MAX_ENDPOINTS) {
		errmsg_set(errmsg,
		           "rpc client: need 1..%d endpoint URLs, got %zu",
		           RPC_MAX_ENDPOINTS, n);
		return STRATA_EINVAL;
	}
	int rc = client_opts_check(&o, errmsg);
	if (rc != 0) {
		return rc;
	}
	struct rpc_client *cli = strata_calloc(1, sizeof(*cli));
	if (cli == NULL) {
		errmsg_set(errmsg, "rpc client: out of memory");
		return STRATA_ENOMEM;
	}
	cli->opts = o;
	cli->seed = ((uint64_t)nng_random() << 32) | nng_random() | 1;
	pthread_mutex_init(&cli->mtx, NULL);
	rc = cond_init_monotonic(&cli->cv);
	if (rc != 0) {
		errmsg_set(errmsg, "rpc client: out of memory");
		goto err_mutex;
	}
	for (size_t i = 0; i < n; i++) {
		if (urls[i] == NULL) {
			errmsg_set(errmsg, "rpc client: URL %zu is NULL", i);
			rc = STRATA_EINVAL;
			goto err_eps;
		}
		rc = endpoint_open(&o, urls[i], &cli->eps[i], errmsg);
		if (rc != 0) {
			goto err_eps;
		}
		cli->n_eps++;
	}
	*out = cli;
	return 0;

err_eps:
	for (size_t i = 0; i < cli->n_eps; i++) {
		endpoint_close(cli->eps[i]);
	}
	pthread_cond_destroy(&cli->cv);
err_mutex:
	pthread_mutex_destroy(&cli->mtx);
	strata_free(cli);
	return rc;
}

void rpc_client_close(struct rpc_client *cli)
{
	pthread_mutex_lock(&cli->mtx);
	cli->closing = true;
	for (struct rpc_op *op = cli->ops; op != NULL; op = op->next) {
		nng_aio_cancel(op->aio);
		nng_aio_cancel(op->timer);
	}
	size_t n_eps = cli->n_eps;
	pthread_mutex_unlock(&cli->mtx);
	for (size_t i = 0; i < n_eps; i++) {
		nng_close(cli->eps[i]->sock); /* aborts calls on contexts */
	}
	pthread_mutex_lock(&cli->mtx);
	while (cli->n_ops > 0) {
		pthread_cond_wait(&cli->cv, &cli->mtx);
	}
	pthread_mutex_unlock(&cli->mtx);
	for (size_t i = 0; i < n_eps; i++) {
		strata_free(cli->eps[i]);
	}
	pthread_cond_destroy(&cli->cv);
	pthread_mutex_destroy(&cli->mtx);
	strata_free(cli);
}

static uint64_t op_rand(struct rpc_op *op)
{
	uint64_t x = op->rng; /* xorshift64 */
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	op->rng = x;
	return x;
}

/* Delay before retry number op->attempt (1-based), jittered. */
static nng_duration op_backoff(struct rpc_op *op)
{
	const struct rpc_client_opts *o = &op->cli->opts;
	int64_t d = o->backoff_base_ms;
	for (int i = 1; i < op->attempt && d < o->backoff_max_ms; i++) {
		d *= 2;
	}
	if (d > o->backoff_max_ms) {
		d = o->backoff_max_ms;
	}
	if (d <= 1) {
		return (nng_duration)d;
	}
	int64_t half = d / 2;
	return (nng_duration)(half + (int64_t)(op_rand(op) %
	                                       (uint64_t)(d - half + 1)));
}

static void op_ctx_close(struct rpc_op *op)
{
	if (op->ctx_open) {
		nng_ctx_close(op->ctx);
		op->ctx_open = false;
	}
}

void rpc_body_free(struct rpc_body *b)
{
	if (b == NULL) {
		return;
	}
	if (b->msg != NULL) {
		nng_msg_free(b->msg);
	} else {
		strata_free(b->data);
	}
	memset(b, 0, sizeof(*b));
}

/* Deliver the result and free op. body (NULL = none) is transferred to the
 * callback. */
static void op_finish(struct rpc_op *op, int code, struct rpc_body *body)
{
	struct rpc_client *cli = op->cli;
	op_ctx_close(op);
	if (code == 0) {
		op->errmsg[0] = '\0';
	}
	struct rpc_body none = {0};
	op->cb(op->arg, code, op->errmsg, body != NULL ? body : &none);
	pthread_mutex_lock(&cli->mtx);
	if (op->prev != NULL) {
		op->prev->next = op->next;
	} else {
		cli->ops = op->next;
	}
	if (op->next != NULL) {
		op->next->prev = op->prev;
	}
	/* Free before n_ops drops: once rpc_client_close() returns, no
	 * thread of ours touches the allocator. We run in a callback of one
	 * of the aios: reap frees them later, without callbacks. */
	strata_free(op->env);
	nng_aio_reap(op->aio);
	nng_aio_reap(op->timer);
	strata_free(op);
	if (--cli->n_ops == 0) {
		pthread_cond_broadcast(&cli->cv);
	}
	pthread_mutex_unlock(&cli->mtx);
}

static void op_finish_closed(struct rpc_op *op)
{
	errmsg_set(op->errmsg, "RPC method %u: client closed", op->method);
	op_finish(op, STRATA_ECLOSED, NULL);
}

static const char *op_url(struct rpc_op *op)
{
	/* eps[] entries never move or go away while ops exist. */
	return op->cli->eps[op->ep]->url;
}

/* An attempt failed with code (errmsg set). sent: the request may have
 * reached the server. Retries on the next endpoint when allowed. */
/* Whether op's connection was lost within RPC_CLOSED_AT_ONCE_MS of
 * coming up: as a server at its connection limit closes it. */
static bool closed_at_once(struct rpc_op *op)
{
	pthread_mutex_lock(&op->cli->mtx);
	struct rpc_endpoint *ep = op->cli->eps[op->ep];
	uint64_t added = atomic_load(&ep->added_ms);
	pthread_mutex_unlock(&op->cli->mtx);
	return added != 0 && clock_mono_ms() - added < RPC_CLOSED_AT_ONCE_MS;
}

static void op_failed(struct rpc_op *op, int code, bool sent)
{
	struct rpc_client *cli = op->cli;
	pthread_mutex_lock(&cli->mtx);
	if (cli->closing) {
		pthread_mutex_unlock(&cli->mtx);
		op_finish_closed(op);
		return;
	}
	bool retry = op->attempt < cli->opts.retries &&
	             (!sent || (op->flags & RPC_IDEMPOTENT) != 0);
	if (!retry) {
		pthread_mutex_unlock(&cli->mtx);
		op_finish(op, code, NULL);
		return;
	}
	LOG_DEBUG("rpc", "retrying: %s", op->errmsg);
	op->attempt++;
	op->ep = (op->ep + 1) % cli->n_eps;
	op->waiting = false;
	op->state = OP_WAIT;
	nng_sleep_aio(op_backoff(op), op->timer);
	pthread_mutex_unlock(&cli->mtx);
}

/* A message for op's request. Its own function (never inlined) because
 * tests/lsan.supp names it: NNG 1.5.2 can drop a reference to a request
 * message when a connection dies (see there). */
__attribute__((noinline)) static int op_request_msg(struct rpc_op *op,
                                                    nng_msg **msg)
{
	return nng_msg_alloc(msg, op->env_len);
}

/* Open a context on ep and send op's request on it (cli->mtx held).
 * 0, or the NNG error with nothing started (the context closed again). */
static int op_send(struct rpc_op *op, struct rpc_endpoint *ep)
{
	struct rpc_client *cli = op->cli;
	nng_msg *msg = NULL;
	int rv = nng_ctx_open(&op->ctx, ep->sock);
	if (rv != 0) {
		return rv;
	}
	op->ctx_open = true;
	rv = op_request_msg(op, &msg);
	if (rv != 0) {
		op_ctx_close(op);
		return rv;
	}
	memcpy(nng_msg_body(msg), op->env, op->env_len);
	op->state = OP_SEND;
	op->send_time = nng_clock();
	nng_aio_set_msg(op->aio, msg);
	/* Sending completes once the request is on a connection; if none
	 * comes within the connect timeout, nothing was sent. */
	nng_duration send_to = cli->opts.timeout_ms;
	if (cli->opts.connect_timeout_ms > 0 &&
	    cli->opts.connect_timeout_ms < send_to) {
		send_to = cli->opts.connect_timeout_ms;
	}
	nng_aio_set_timeout(op->aio, send_to);
	nng_ctx_send(op->ctx, op->aio);
	return 0;
}

/* Start the dialers of cli's endpoints other than skip that are not
 * started yet (cli->mtx held); a failure leaves one for its own call. */
static void start_other_dialers(struct rpc_client *cli, size_t skip)
{
	for (size_t i = 0; i < cli->n_eps; i++) {
		struct rpc_endpoint *e = cli->eps[i];
		if (i != skip && !e->started &&
		    nng_dialer_start(e->dialer, NNG_FLAG_NONBLOCK) == 0) {
			e->started = true;
		}
	}
}

/* An endpoint other than skip with a connection up, or -1. */
static int connected_other(const struct rpc_client *cli, size_t skip)
{
	for (size_t i = 0; i < cli->n_eps; i++) {
		if (i != skip && atomic_load(&cli->eps[i]->npipes) > 0) {
			return (int)i;
		}
	}
	return -1;
}

/* Start an attempt on op->ep: wait for a connection, then send. */
static void op_attempt(struct rpc_op *op)
{
	struct rpc_client *cli = op->cli;
	pthread_mutex_lock(&cli->mtx);
	if (cli->closing) {
		pthread_mutex_unlock(&cli->mtx);
		op_finish_closed(op);
		return;
	}
	struct rpc_endpoint *ep = cli->eps[op->ep];
	if (!ep->started) {
		int rv = nng_dialer_start(ep->dialer, NNG_FLAG_NONBLOCK);
		if (rv != 0) {
			pthread_mutex_unlock(&cli->mtx);
			errmsg_set(op->errmsg, "RPC method %u: dial %s: %s",
			           op->method, ep->url, nng_strerror(rv));
			op_failed(op, STRATA_EUNAVAIL, false);
			return;
		}
		ep->started = true;
	}
	if (atomic_load(&ep->npipes) <= 0) {
		nng_time now = nng_clock();
		if (!op->waiting) {
			op->waiting = true;
			op->wait_start = now;
			op->wait_step = 1;
			/* The others dial too, so a dead first URL costs a
			 * short grace, not the connect timeout. */
			start_other_dialers(cli, op->ep);
		}
		nng_duration waited = (nng_duration)(now - op->wait_start);
		int alt = waited >= RPC_FAILOVER_GRACE_MS
		                  ? connected_other(cli, op->ep)
		                  : -1;
		if (alt >= 0) {
			LOG_DEBUG("rpc",
			          "RPC method %u: no connection to %s after "
			          "%d ms; %s is connected: trying it",
			          op->method, ep->url, (int)waited,
			          cli->eps[alt]->url);
			op->ep = (size_t)alt;
			op->waiting = false;
			op->state = OP_WAIT;
			nng_sleep_aio(0, op->timer);
			pthread_mutex_unlock(&cli->mtx);
			return;
		}
		if (atomic_load(&ep->down) ||
		    waited >= cli->opts.connect_timeout_ms) {
			atomic_store(&ep->down, true);
			pthread_mutex_unlock(&cli->mtx);
			unsigned closed = atomic_load(&ep->closed_at_once);
			if (closed > 0) {
				errmsg_set(op->errmsg,
				           "RPC method %u: no connection to %s "
				           "within %d ms: the server closed "
				           "each of %u connections right after "
				           "accepting it (at its connection "
				           "limit? see its log)",
				           op->method, ep->url,
				           cli->opts.connect_timeout_ms,
				           closed);
			} else {
				errmsg_set(
				        op->errmsg,
				        "RPC method %u: no connection to %s "
				        "within %d ms: is the server running "
				        "and reachable there?",
				        op->method, ep->url,
				        cli->opts.connect_timeout_ms);
			}
			op_failed(op, STRATA_EUNAVAIL, false);
			return;
		}
		nng_duration step = op->wait_step;
		if (step > cli->opts.connect_timeout_ms - waited) {
			step = cli->opts.connect_timeout_ms - waited;
		}
		if (op->wait_step < 32) {
			op->wait_step *= 2;
		}
		op->state = OP_WAIT;
		nng_sleep_aio(step, op->timer);
		pthread_mutex_unlock(&cli->mtx);
		return;
	}
	op->waiting = false;
	int rv = op_send(op, ep);
	pthread_mutex_unlock(&cli->mtx);
	if (rv != 0) {
		errmsg_set(op->errmsg, "RPC method %u to %s: %s", op->method,
		           ep->url, nng_strerror(rv));
		op_failed(op, map_nng(rv), false);
	}
}

/* Index of the endpoint for url, dialing it if new; -1 (errmsg set) when
 * it cannot be used. */
static long client_endpoint_for(struct rpc_client *cli, const char *url,
                                char *errmsg)
{
	pthread_mutex_lock(&cli->mtx);
	for (size_t i = 0; i < cli->n_eps; i++) {
		if (strcmp(cli->eps[i]->url, url) == 0) {
			pthread_mutex_unlock(&cli->mtx);
			return (long)i;
		}
	}
	bool full = cli->n_eps >= RPC_MAX_ENDPOINTS;
	pthread_mutex_unlock(&cli->mtx);
	if (full) {
		errmsg_set(errmsg,
		           "too many RPC endpoints (%d) to follow a "
		           "redirect",
		           RPC_MAX_ENDPOINTS);
		return -1;
	}
	struct rpc_endpoint *ep;
	if (endpoint_open(&cli->opts, url, &ep, errmsg) != 0) {
		return -1;
	}
	long idx = -1;
	pthread_mutex_lock(&cli->mtx);
	for (size_t i = 0; i < cli->n_eps; i++) {
		if (strcmp(cli->eps[i]->url, url) == 0) {
			idx = (long)i; /* another call added it meanwhile */
		}
	}
	if (idx < 0 && !cli->closing && cli->n_eps < RPC_MAX_ENDPOINTS) {
		idx = (long)cli->n_eps;
		cli->eps[cli->n_eps++] = ep;
		ep = NULL;
	}
	pthread_mutex_unlock(&cli->mtx);
	if (ep != NULL) {
		endpoint_close(ep);
	}
	if (idx < 0) {
		errmsg_set(errmsg, "cannot follow redirect to %s", url);
	}
	return idx;
}

void rpc_reply_take(void *msg, uint32_t method, const char *url,
                    struct rpc_result *res)
{
	nng_msg *m = msg;
	memset(res, 0, sizeof(*res));
	struct rpc_reply_info r;
	char why[STRATA_ERRMSG_SIZE];
	int rc = rpc_reply_decode(nng_msg_body(m), nng_msg_len(m), &r, why);
	if (rc != 0) {
		errmsg_set(res->errmsg, "RPC method %u to %s: %s", method, url,
		           why);
		nng_msg_free(m);
		res->code = rc;
		return;
	}
	res->code = r.code;
	char smsg[STRATA_ERRMSG_SIZE];
	copy_sanitized(smsg, sizeof(smsg), r.message);
	if (r.code != 0 && smsg[0] != '\0') {
		errmsg_set(res->errmsg, "%s", smsg);
	} else if (r.code != 0 && r.code != STRATA_ESHUTDOWN) {
		errmsg_set(res->errmsg, "RPC method %u to %s: %s", method, url,
		           strata_strerror(r.code));
	}
	if ((r.code == STRATA_ENOTLEADER || r.code == STRATA_EWRONGHOST) &&
	    strlen(r.redirect) <= RPC_MAX_URL_LEN) {
		copy_sanitized(res->redirect, sizeof(res->redirect),
		               r.redirect);
	}
	/* Hand the body on where it lies: in msg (the plain envelope, no
	 * copy of a large reply), else in the unpacked envelope (taken from
	 * it: strata_malloc'd by pb_alloc). */
	const uint8_t *start = nng_msg_body(m);
	if (r.len == 0) {
		nng_msg_free(m);
	} else if (r.body >= start && r.body < start + nng_msg_len(m)) {
		res->body.data = (uint8_t *)r.body;
		res->body.len = r.len;
		res->body.msg = m;
	} else {
		Strata__V1__RpcReply *pb = r.pb;
		res->body.data = pb->body.data;
		res->body.len = pb->body.len;
		pb->body.data = NULL;
		pb->body.len = 0;
		nng_msg_free(m);
	}
	rpc_reply_release(&r);
}

/* A reply arrived; msg is transferred (freed or handed on with the
 * body). */
static void op_reply(struct rpc_op *op, nng_msg *msg)
{
	struct rpc_client *cli = op->cli;
	struct rpc_result res;
	rpc_reply_take(msg, op->method, op_url(op), &res);
	errmsg_set(op->errmsg, "%s", res.errmsg);
	if (res.code == STRATA_ESHUTDOWN) {
		rpc_body_free(&res.body);
		op_failed(op, STRATA_ESHUTDOWN, false);
		return;
	}
	if (res.redirect[0] != '\0' &&
	    op->redirects < cli->opts.max_redirects) {
		char why[STRATA_ERRMSG_SIZE];
		long idx = client_endpoint_for(cli, res.redirect, why);
		if (idx >= 0 && (size_t)idx != op->ep) {
			LOG_DEBUG("rpc", "method %u: %s redirects to %s",
			          op->method, op_url(op), res.redirect);
			rpc_body_free(&res.body);
			op->redirects++;
			op->ep = (size_t)idx;
			op->waiting = false;
			pthread_mutex_lock(&cli->mtx);
			cli->preferred = (size_t)idx;
			pthread_mutex_unlock(&cli->mtx);
			op_attempt(op);
			return;
		}
	}
	if ((res.code == STRATA_ENOTLEADER || res.code == STRATA_EUNAVAIL) &&
	    cli->n_eps > 1) {
		/* A replica that knows no leader (a candidate, one just
		 * removed from its group, one cut off) did not carry the
		 * request out: ask the next URL, and do not prefer this one
		 * (clients listing it first were stuck on it). */
		rpc_body_free(&res.body);
		op_failed(op, res.code, false);
		return;
	}
	pthread_mutex_lock(&cli->mtx);
	cli->preferred = op->ep;
	pthread_mutex_unlock(&cli->mtx);
	op_finish(op, res.code, &res.body);
}

static void op_timer_cb(void *arg)
{
	struct rpc_op *op = arg;
	if (nng_aio_result(op->timer) != 0) {
		op_finish_closed(op); /* only close cancels a sleep */
		return;
	}
	op_attempt(op);
}

static void op_io_cb(void *arg)
{
	struct rpc_op *op = arg;
	int rv = nng_aio_result(op->aio);
	nng_msg *msg;
	switch (op->state) {
	case OP_WAIT:
		return; /* not reached: sleeps use op->timer */
	case OP_SEND:
		if (rv != 0) {
			msg = nng_aio_get_msg(op->aio);
			nng_aio_set_msg(op->aio, NULL);
			nng_msg_free(msg);
			op_ctx_close(op);
			if (rv == NNG_ETIMEDOUT) {
				errmsg_set(
				        op->errmsg,
				        "RPC method %u: connection to %s lost, "
				        "request not sent: is the server "
				        "running?",
				        op->method, op_url(op));
				op_failed(op, STRATA_EUNAVAIL, false);
				return;
			}
			errmsg_set(op->errmsg, "RPC method %u: send to %s: %s",
			           op->method, op_url(op), nng_strerror(rv));
			op_failed(op, map_nng(rv), false);
			return;
		}
		pthread_mutex_lock(&op->cli->mtx);
		if (op->cli->closing) {
			pthread_mutex_unlock(&op->cli->mtx);
			op_finish_closed(op);
			return;
		}
		nng_duration left = op->cli->opts.timeout_ms -
		                    (nng_duration)(nng_clock() - op->send_time);
		op->state = OP_RECV;
		nng_aio_set_timeout(op->aio, left > 0 ? left : 1);
		nng_ctx_recv(op->ctx, op->aio);
		pthread_mutex_unlock(&op->cli->mtx);
		return;
	case OP_RECV:
		op_ctx_close(op);
		if (rv == NNG_ETIMEDOUT) {
			errmsg_set(op->errmsg,
			           "RPC method %u to %s: no reply within %d ms "
			           "(the request may have been executed; raise "
			           "the "
			           "rpc timeout if the server is just slow)",
			           op->method, op_url(op),
			           op->cli->opts.timeout_ms);
			op_failed(op, STRATA_ETIMEDOUT, true);
			return;
		}
		if (rv != 0) {
			errmsg_set(
			        op->errmsg,
			        "RPC method %u to %s: connection lost before "
			        "the "
			        "reply (%s); the request may have been "
			        "executed%s",
			        op->method, op_url(op), nng_strerror(rv),
			        closed_at_once(op)
			                ? "; the server closed it right after "
			                  "accepting it (stopping, or at its "
			                  "connection limit? see its log)"
			                : "");
			op_failed(op, map_nng(rv), true);
			return;
		}
		msg = nng_aio_get_msg(op->aio);
		nng_aio_set_msg(op->aio, NULL);
		if (msg == NULL) { /* defensive: never expected */
			errmsg_set(op->errmsg, "RPC method %u to %s: no reply",
			           op->method, op_url(op));
			op_failed(op, STRATA_ETIMEDOUT, true);
			return;
		}
		op_reply(op, msg); /* takes msg */
		return;
	}
}

/* The first attempt of a new op, inline, when its endpoint is already
 * connected (cli->mtx held, not closing). True when the request is on its
 * way; false, with nothing started, when it must take the slow path
 * (op_attempt on an NNG thread: not yet dialed or connected, or an
 * error that op_attempt reports and retries). */
static bool op_send_now(struct rpc_op *op)
{
	struct rpc_client *cli = op->cli;
	struct rpc_endpoint *ep = cli->eps[op->ep];
	return ep->started && atomic_load(&ep->npipes) > 0 &&
	       op_send(op, ep) == 0;
}

int rpc_call_async(struct rpc_client *cli, uint32_t method, unsigned flags,
                   const uint8_t *req, size_t len, rpc_done_fn cb, void *arg,
                   char *errmsg)
{
	if (cb == NULL || method == 0 || (req == NULL && len != 0)) {
		errmsg_set(errmsg,
		           "RPC call: method must be non-zero, callback "
		           "set, and req non-NULL when len > 0");
		return STRATA_EINVAL;
	}
	struct rpc_op *op = strata_calloc(1, sizeof(*op));
	if (op == NULL) {
		errmsg_set(errmsg, "RPC method %u: out of memory", method);
		return STRATA_ENOMEM;
	}
	int rc = rpc_request_encode(method, req, len, &op->env, &op->env_len);
	if (rc != 0) {
		errmsg_set(errmsg,
		           "RPC method %u: out of memory for a request "
		           "of %zu bytes",
		           method, len);
		goto err_op;
	}
	if (op->env_len > cli->opts.max_msg_bytes) {
		errmsg_set(
		        errmsg,
		        "RPC method %u: request of %zu bytes exceeds the limit "
		        "of %zu bytes (max_msg_bytes): split it",
		        method, op->env_len, cli->opts.max_msg_bytes);
		rc = STRATA_ETOOBIG;
		goto err_env;
	}
	int rv = nng_aio_alloc(&op->aio, op_io_cb, op);
	if (rv == 0) {
		rv = nng_aio_alloc(&op->timer, op_timer_cb, op);
	}
	if (rv != 0) {
		errmsg_set(errmsg, "RPC method %u: %s", method,
		           nng_strerror(rv));
		rc = map_nng(rv);
		goto err_aio;
	}
	op->cli = cli;
	op->method = method;
	op->flags = flags;
	op->cb = cb;
	op->arg = arg;
	op->state = OP_WAIT;
	pthread_mutex_lock(&cli->mtx);
	if (cli->closing) {
		pthread_mutex_unlock(&cli->mtx);
		errmsg_set(errmsg, "RPC method %u: client closed", method);
		rc = STRATA_ECLOSED;
		goto err_aio;
	}
	cli->seed ^= cli->seed << 13;
	cli->seed ^= cli->seed >> 7;
	cli->seed ^= cli->seed << 17;
	op->rng = cli->seed | 1;
	op->ep = cli->preferred;
	op->next = cli->ops;
	if (cli->ops != NULL) {
		cli->ops->prev = op;
	}
	cli->ops = op;
	cli->n_ops++;
	/* Send right here when the endpoint is connected; otherwise (and
	 * on any error) run the first step on an NNG thread, so cb never
	 * runs in here. Never nng_sleep_aio(0) on the fast path: NNG 1.5.2
	 * counts time in whole milliseconds and fires a sleep only once the
	 * clock has passed it, so a zero sleep waits for the next tick (up to
	 * 1 ms, 0.8 ms of a 1.0 ms append) while its expire thread spins. */
	if (!op_send_now(op)) {
		nng_sleep_aio(0, op->timer);
	}
	pthread_mutex_unlock(&cli->mtx);
	return 0;

err_aio:
	if (op->timer != NULL) {
		nng_aio_free(op->timer);
	}
	if (op->aio != NULL) {
		nng_aio_free(op->aio);
	}
err_env:
	strata_free(op->env);
err_op:
	strata_free(op);
	return rc;
}

struct sync_wait {
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	bool done;
	int code;
	struct rpc_body body;
	char errmsg[STRATA_ERRMSG_SIZE];
};

static void sync_cb(void *arg, int code, const char *errmsg,
                    struct rpc_body *body)
{
	struct sync_wait *w = arg;
	pthread_mutex_lock(&w->mtx);
	w->code = code;
	w->body = *body;
	snprintf(w->errmsg, sizeof(w->errmsg), "%s", errmsg);
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mtx); /* w may be gone right after this */
}

/* rpc_call_async(), waiting; *body is the reply's (rpc_body_free). */
static int call_wait(struct rpc_client *cli, uint32_t method, unsigned flags,
                     const uint8_t *req, size_t len, struct rpc_body *body,
                     char *errmsg)
{
	struct sync_wait w = {.done = false};
	memset(body, 0, sizeof(*body));
	pthread_mutex_init(&w.mtx, NULL);
	pthread_cond_init(&w.cv, NULL);
	int rc = rpc_call_async(cli, method, flags, req, len, sync_cb, &w,
	                        errmsg);
	if (rc == 0) {
		pthread_mutex_lock(&w.mtx);
		while (!w.done) {
			pthread_cond_wait(&w.cv, &w.mtx);
		}
		pthread_mutex_unlock(&w.mtx);
		rc = w.code;
		*body = w.body;
		if (rc != 0) {
			errmsg_set(errmsg, "%s", w.errmsg);
		}
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mtx);
	return rc;
}

int rpc_call(struct rpc_client *cli, uint32_t method, unsigned flags,
             const uint8_t *req, size_t len, uint8_t **reply, size_t *reply_len,
             char *errmsg)
{
	struct rpc_body b;
	int rc = call_wait(cli, method, flags, req, len, &b, errmsg);
	*reply = NULL;
	*reply_len = 0;
	if (b.len == 0) {
		rpc_body_free(&b);
		return rc;
	}
	if (b.msg == NULL) {
		*reply = b.data;
	} else {
		/* Blocking calls are the control plane: small replies. */
		*reply = strata_malloc(b.len);
		if (*reply == NULL) {
			rpc_body_free(&b);
			errmsg_set(errmsg,
			           "RPC method %u: out of memory for a reply "
			           "of %zu bytes",
			           method, b.len);
			return STRATA_ENOMEM;
		}
		memcpy(*reply, b.data, b.len);
		nng_msg_free(b.msg);
	}
	*reply_len = b.len;
	return rc;
}

int rpc_call_pb(struct rpc_client *cli, uint32_t method, unsigned flags,
                const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_desc,
                ProtobufCMessage **reply, char *errmsg)
{
	*reply = NULL;
	uint8_t *buf = NULL;
	size_t n = 0;
	if (req != NULL && pb_pack(req, &buf, &n) != 0) {
		errmsg_set(errmsg, "RPC method %u: out of memory packing %s",
		           method, req->descriptor->name);
		return STRATA_ENOMEM;
	}
	struct rpc_body rep;
	int rc = call_wait(cli, method, flags, buf, n, &rep, errmsg);
	strata_free(buf);
	if (rc != 0) {
		rpc_body_free(&rep);
		return rc;
	}
	bool oom;
	size_t rep_len = rep.len;
	ProtobufCMessage *m = pb_unpack(reply_desc, rep.data, rep_len, &oom);
	rpc_body_free(&rep);
	if (m == NULL) {
		if (oom) {
			errmsg_set(
			        errmsg,
			        "RPC method %u: out of memory unpacking a %s "
			        "of "
			        "%zu bytes",
			        method, reply_desc->name, rep_len);
			return STRATA_ENOMEM;
		}
		errmsg_set(
		        errmsg,
		        "RPC method %u: reply of %zu bytes does not parse as "
		        "%s (client and server versions disagree?)",
		        method, rep_len, reply_desc->name);
		return STRATA_EPROTO;
	}
	*reply = m;
	return 0;
}
