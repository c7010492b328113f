/* libstrata: the client object, async requests on the I/O thread, blocking
 * calls, controller queries with retries, and segment operations that
 * find the store leading a segment.
 *
 * seg_op happy path: endpoint cached? -> call the store -> done; else ask
 * the controller (GetSegmentEndpoint) -> cache -> call the store.
 * failure modes: transient errors (no connection, timeout, lost
 * connection, wrong host, not leader, shutting down, back-pressure) ->
 * next URL of the replica set; all tried -> forget the endpoint, back off,
 * ask the controller again; past the deadline -> the last error. Client
 * closing -> STRATA_ECLOSED.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "client/client_int.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/segname.h"
#include "strata/v1/controller.pb-c.h"

void client_err(char *errmsg, const char *fmt, ...)
{
	if (errmsg == NULL) {
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

void client_random(void *buf, size_t n)
{
	uint8_t *p = buf;
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom(p + got, n - got, 0);
		if (r <= 0) {
			break;
		}
		got += (size_t)r;
	}
	if (got < n) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t x = (uint64_t)ts.tv_nsec ^
		             ((uint64_t)ts.tv_sec << 20) ^
		             (uint64_t)(uintptr_t)buf;
		for (size_t i = got; i < n; i++) {
			x = routing_fmix64(x + 0x9e3779b97f4a7c15ull);
			p[i] = (uint8_t)x;
		}
	}
}

void strata_client_config_default(struct strata_client_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->request_timeout_ms = 5000;
	cfg->connect_timeout_ms = 1000;
	cfg->retries = 3;
	cfg->operation_timeout_ms = 60000;
	cfg->max_read_wait_ms = 10000;
}

int client_check_blocking(struct strata_client *c, const char *what,
                          char *errmsg)
{
	if (loop_on_thread(c->loop)) {
		client_err(errmsg,
		           "%s called from a libstrata callback: blocking "
		           "calls would deadlock the I/O thread; call it from "
		           "another thread",
		           what);
		return STRATA_EINVAL;
	}
	return 0;
}

int client_check_stream(const char *scope, const char *stream, char *errmsg)
{
	int rc = client_check_name(scope, "scope", errmsg);
	return rc != 0 ? rc : client_check_name(stream, "stream", errmsg);
}

int client_check_user_stream(const char *stream, char *errmsg)
{
	if (stream != NULL && stream[0] == '_') {
		client_err(errmsg,
		           "stream \"%.64s\" is internal (names starting "
		           "with '_' hold Strata's own state, such as a reader "
		           "group's); writing to it would damage that state: "
		           "write to your own streams",
		           stream);
		return STRATA_EBADNAME;
	}
	return 0;
}

int client_check_name(const char *name, const char *what, char *errmsg)
{
	if (name == NULL || name[0] == '\0') {
		client_err(errmsg,
		           "%s name is empty; use 1-255 characters of "
		           "[A-Za-z0-9.-]",
		           what);
		return STRATA_EBADNAME;
	}
	size_t n = strlen(name);
	if (n > STRATA_NAME_MAX) {
		client_err(errmsg,
		           "%s name \"%.40s...\" is %zu bytes; the limit is %d",
		           what, name, n, STRATA_NAME_MAX);
		return STRATA_EBADNAME;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool ok = (ch >= 'a' && ch <= 'z') ||
		          (ch >= 'A' && ch <= 'Z') ||
		          (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
		          (ch == '_' && i == 0);
		if (!ok) {
			client_err(
			        errmsg,
			        "%s name \"%.100s\" has an invalid character "
			        "at %zu; use [A-Za-z0-9.-] (a leading _ marks "
			        "internal names)",
			        what, name, i);
			return STRATA_EBADNAME;
		}
	}
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		client_err(errmsg, "%s name \"%s\" is reserved", what, name);
		return STRATA_EBADNAME;
	}
	return 0;
}

/* ------------------------------------------------------------- client -- */

int client_new_with_transport(const struct strata_client_config *cfg,
                              const struct ct_ops *ops, void *tr,
                              struct strata_client **out, char *errmsg)
{
	struct strata_client *c = strata_calloc(1, sizeof(*c));
	if (c == NULL) {
		client_err(errmsg, "out of memory creating the client");
		return STRATA_ENOMEM;
	}
	c->cfg = *cfg;
	c->ctl_urls = strata_calloc(cfg->n_controller_urls, sizeof(char *));
	if (c->ctl_urls == NULL) {
		goto err_nomem;
	}
	for (size_t i = 0; i < cfg->n_controller_urls; i++) {
		c->ctl_urls[i] = strata_strdup(cfg->controller_urls[i]);
		if (c->ctl_urls[i] == NULL) {
			goto err_nomem;
		}
	}
	c->cfg.controller_urls = (const char *const *)c->ctl_urls;
	int rc = loop_new(&c->loop, "strata-io");
	if (rc != 0) {
		client_err(errmsg, "cannot start the client I/O thread: %s",
		           strata_strerror(rc));
		goto err_free;
	}
	if (ops->attach != NULL) {
		rc = ops->attach(tr, c->loop, errmsg);
		if (rc != 0) {
			loop_free(c->loop);
			goto err_free;
		}
	}
	pthread_mutex_init(&c->mu, NULL);
	atomic_init(&c->closing, false);
	c->ops = ops;
	c->tr = tr;
	*out = c;
	return 0;
err_nomem:
	rc = STRATA_ENOMEM;
	client_err(errmsg, "out of memory creating the client");
err_free:
	for (size_t i = 0; c->ctl_urls != NULL && i < cfg->n_controller_urls;
	     i++) {
		strata_free(c->ctl_urls[i]);
	}
	strata_free(c->ctl_urls);
	strata_free(c);
	return rc;
}

int strata_client_new(const struct strata_client_config *cfg,
                      struct strata_client **out, char *errmsg)
{
	if (cfg == NULL || out == NULL) {
		client_err(errmsg,
		           "strata_client_new: cfg and out are required");
		return STRATA_EINVAL;
	}
	if (cfg->n_controller_urls == 0 || cfg->controller_urls == NULL) {
		client_err(errmsg,
		           "no controller URL configured; set "
		           "controller_urls (e.g. tcp://127.0.0.1:9090)");
		return STRATA_EINVAL;
	}
	for (size_t i = 0; i < cfg->n_controller_urls; i++) {
		const char *u = cfg->controller_urls[i];
		if (u == NULL || strncmp(u, "tcp://", 6) != 0 ||
		    strlen(u) >= RPC_MAX_URL_LEN) {
			client_err(errmsg,
			           "controller URL %zu \"%.100s\" is invalid; "
			           "use tcp://host:port",
			           i, u != NULL ? u : "(null)");
			return STRATA_EINVAL;
		}
	}
	if (cfg->request_timeout_ms <= 0 || cfg->connect_timeout_ms <= 0 ||
	    cfg->retries < 0 || cfg->operation_timeout_ms <= 0 ||
	    cfg->max_read_wait_ms < 0) {
		client_err(errmsg,
		           "client config: timeouts must be > 0 and retries "
		           ">= 0 (request %d, connect %d, retries %d, "
		           "operation %d, read wait %d ms)",
		           cfg->request_timeout_ms, cfg->connect_timeout_ms,
		           cfg->retries, cfg->operation_timeout_ms,
		           cfg->max_read_wait_ms);
		return STRATA_EINVAL;
	}
	void *tr = NULL;
	int rc = transport_new(cfg, &tr, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = client_new_with_transport(cfg, &transport_rpc_ops, tr, out,
	                               errmsg);
	if (rc != 0) {
		transport_rpc_ops.free(tr);
	}
	return rc;
}

void strata_client_free(struct strata_client *c)
{
	if (c == NULL) {
		return;
	}
	atomic_store(&c->closing, true);
	/* Calls in flight end with ECLOSED; their completions are posted
	 * to the loop, which runs them (and every timer) before exiting. */
	c->ops->close(c->tr);
	loop_free(c->loop);
	c->ops->free(c->tr);
	for (size_t i = 0; i < CT_EP_SLOTS; i++) {
		strata_free(c->ep[i].name);
	}
	for (size_t i = 0; i < c->cfg.n_controller_urls; i++) {
		strata_free(c->ctl_urls[i]);
	}
	strata_free(c->ctl_urls);
	pthread_mutex_destroy(&c->mu);
	strata_free(c);
}

/* ------------------------------------------------------ async requests -- */

static void creq_run(void *arg)
{
	struct creq *r = arg;
	r->done(r);
}

static void creq_cb(void *arg, int code, const char *errmsg,
                    struct rpc_body *body)
{
	struct creq *r = arg;
	r->code = code;
	client_err(r->errmsg, "%s", errmsg != NULL ? errmsg : "");
	r->reply = *body;
	/* On this NNG thread when the I/O thread is idle: one wake-up less
	 * per reply (the writer's ack, a read's data). */
	loop_run_or_post(r->c->loop, &r->task);
}

/* Pack m (NULL = empty) into a new buffer; NULL on OOM. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	*len = m != NULL ? protobuf_c_message_get_packed_size(m) : 0;
	uint8_t *buf = strata_malloc(*len > 0 ? *len : 1);
	if (buf != NULL && m != NULL) {
		protobuf_c_message_pack(m, buf);
	}
	return buf;
}

int creq_start_bytes(struct strata_client *c, struct creq *r, const char *url,
                     uint32_t method, unsigned flags, const uint8_t *req,
                     size_t len, void (*done)(struct creq *r), void *owner,
                     char *errmsg)
{
	loop_task_init(&r->task, creq_run, r);
	r->c = c;
	r->done = done;
	r->owner = owner;
	r->code = 0;
	r->errmsg[0] = '\0';
	memset(&r->reply, 0, sizeof(r->reply));
	return c->ops->call(c->tr, url, method, flags, req, len, creq_cb, r,
	                    errmsg);
}

int creq_start(struct strata_client *c, struct creq *r, const char *url,
               uint32_t method, unsigned flags, const ProtobufCMessage *req,
               void (*done)(struct creq *r), void *owner, char *errmsg)
{
	size_t len;
	uint8_t *buf = pack(req, &len);
	if (buf == NULL) {
		client_err(errmsg, "out of memory packing a request");
		return STRATA_ENOMEM;
	}
	int rc = creq_start_bytes(c, r, url, method, flags, buf, len, done,
	                          owner, errmsg);
	strata_free(buf);
	return rc;
}

void creq_reset(struct creq *r)
{
	rpc_body_free(&r->reply);
}

/* A blocking call waiting on the caller's thread. */
struct sync_call {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int code;
	char errmsg[STRATA_ERRMSG_SIZE];
	struct rpc_body reply;
};

static void sync_cb(void *arg, int code, const char *errmsg,
                    struct rpc_body *body)
{
	struct sync_call *s = arg;
	pthread_mutex_lock(&s->mu);
	s->code = code;
	client_err(s->errmsg, "%s", errmsg != NULL ? errmsg : "");
	s->reply = *body;
	s->done = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

int client_call(struct strata_client *c, const char *url, uint32_t method,
                unsigned flags, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_desc,
                ProtobufCMessage **reply, char *errmsg)
{
	if (reply != NULL) {
		*reply = NULL;
	}
	size_t len;
	uint8_t *buf = pack(req, &len);
	if (buf == NULL) {
		client_err(errmsg, "out of memory packing a request");
		return STRATA_ENOMEM;
	}
	struct sync_call s = {.done = false};
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	int rc = c->ops->call(c->tr, url, method, flags, buf, len, sync_cb, &s,
	                      errmsg);
	strata_free(buf);
	if (rc == 0) {
		pthread_mutex_lock(&s.mu);
		while (!s.done) {
			pthread_cond_wait(&s.cv, &s.mu);
		}
		pthread_mutex_unlock(&s.mu);
		rc = s.code;
		if (rc != 0) {
			client_err(errmsg, "%s", s.errmsg);
		} else if (reply_desc != NULL && reply != NULL) {
			*reply = rpc_pb_unpack(reply_desc, s.reply.data,
			                       s.reply.len);
			if (*reply == NULL) {
				rc = STRATA_EPROTO;
				client_err(errmsg,
				           "reply to method %" PRIu32
				           " does not parse as %s",
				           method, reply_desc->name);
			}
		}
		rpc_body_free(&s.reply);
	}
	pthread_cond_destroy(&s.cv);
	pthread_mutex_destroy(&s.mu);
	return rc;
}

/* How every answer of a controller replica that cannot serve starts
 * (controller/api.c), as opposed to a controller that cannot be reached. */
#define CTL_ANSWER_PREFIX "controller node "

/* Transient for a controller query: no answer, no leader, busy. */
static bool ctl_transient(int rc)
{
	return rc == STRATA_EUNAVAIL || rc == STRATA_ETIMEDOUT ||
	       rc == STRATA_ECLOSED || rc == STRATA_ENOTLEADER ||
	       rc == STRATA_ESHUTDOWN || rc == STRATA_EAGAIN ||
	       rc == STRATA_ELEADERLOST;
}

/* Backoff before retry n (1-based): 50 ms doubling, capped at 1 s,
 * jittered to [d/2, d]. */
static unsigned backoff_ms(unsigned n)
{
	unsigned d = 50;
	for (unsigned i = 1; i < n && d < 1000; i++) {
		d *= 2;
	}
	if (d > 1000) {
		d = 1000;
	}
	uint32_t r;
	client_random(&r, sizeof(r));
	return d / 2 + r % (d / 2 + 1);
}

/* Describe the controller URLs for messages. */
static void ctl_urls_text(const struct strata_client *c, char *buf, size_t size)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < c->cfg.n_controller_urls && off < size; i++) {
		int n = snprintf(buf + off, size - off, "%s%s", i ? "," : "",
		                 c->ctl_urls[i]);
		if (n < 0) {
			break;
		}
		off += (size_t)n;
	}
}

int client_ctl_query(struct strata_client *c, uint32_t method,
                     const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *reply_desc,
                     ProtobufCMessage **reply, char *errmsg)
{
	uint64_t deadline =
	        loop_now_ms() + (uint64_t)c->cfg.operation_timeout_ms;
	char msg[STRATA_ERRMSG_SIZE];
	int rc;
	for (unsigned n = 1;; n++) {
		rc = client_call(c, NULL, method, RPC_IDEMPOTENT, req,
		                 reply_desc, reply, msg);
		if (rc == 0 || !ctl_transient(rc) || atomic_load(&c->closing)) {
			break;
		}
		unsigned d = backoff_ms(n);
		if (loop_now_ms() + d >= deadline) {
			break;
		}
		clock_sleep_ms(d);
	}
	if (rc == STRATA_EUNAVAIL &&
	    strncmp(msg, CTL_ANSWER_PREFIX, strlen(CTL_ANSWER_PREFIX)) == 0) {
		/* A controller answered that it cannot serve (no leader, its
		 * log failed): its own words say why, not the URL hint. */
		client_err(errmsg, "%s", msg);
	} else if (strstr(msg, "right after accepting it") != NULL) {
		/* Reached, but turned away (common/rpc.c). */
		char urls[160];
		ctl_urls_text(c, urls, sizeof(urls));
		client_err(errmsg,
		           "controller unreachable (%s): it closed the "
		           "connection right after accepting it: at its "
		           "connection limit (limits.connections) until others "
		           "close? see its log",
		           urls);
	} else if (rc == STRATA_EUNAVAIL || rc == STRATA_ETIMEDOUT) {
		char urls[160];
		ctl_urls_text(c, urls, sizeof(urls));
		client_err(errmsg,
		           "controller unreachable (%s): %.120s; check the "
		           "controller URLs and that strata-controller runs",
		           urls, msg);
	} else if (rc != 0) {
		client_err(errmsg, "%s", msg);
	}
	return rc;
}

/* ----------------------------------------------------- endpoint cache -- */

static size_t ep_slot(const char *name)
{
	return (size_t)(segname_fnv1a(name, strlen(name)) % CT_EP_SLOTS);
}

static bool ep_lookup(struct strata_client *c, struct seg_op *op)
{
	bool found = false;
	pthread_mutex_lock(&c->mu);
	struct ct_endpoint *e = &c->ep[ep_slot(op->name)];
	if (e->name != NULL && strcmp(e->name, op->name) == 0 && e->n > 0) {
		op->n_urls = e->n;
		memcpy(op->urls, e->urls, sizeof(op->urls));
		found = true;
	}
	pthread_mutex_unlock(&c->mu);
	return found;
}

static void ep_store(struct strata_client *c, const struct seg_op *op)
{
	char *copy = strata_strdup(op->name);
	if (copy == NULL) {
		return; /* a cache: losing an entry is harmless */
	}
	pthread_mutex_lock(&c->mu);
	struct ct_endpoint *e = &c->ep[ep_slot(op->name)];
	strata_free(e->name);
	e->name = copy;
	e->n = op->n_urls;
	memcpy(e->urls, op->urls, sizeof(e->urls));
	pthread_mutex_unlock(&c->mu);
}

void client_ep_forget(struct strata_client *c, const char *name)
{
	pthread_mutex_lock(&c->mu);
	struct ct_endpoint *e = &c->ep[ep_slot(name)];
	if (e->name != NULL && strcmp(e->name, name) == 0) {
		strata_free(e->name);
		e->name = NULL;
		e->n = 0;
	}
	pthread_mutex_unlock(&c->mu);
}

/* ----------------------------------------------------------- seg_op ---- */

static void seg_op_ask_controller(struct seg_op *op);
static void seg_op_call_store(struct seg_op *op);

static void seg_op_finish(struct seg_op *op, int code, const char *msg)
{
	op->done(op, code, msg);
}

/* Transient for a segment-store call (all our calls are safe to repeat:
 * appends carry writer ids and event numbers). */
static bool seg_transient(int rc)
{
	return rc == STRATA_EUNAVAIL || rc == STRATA_ETIMEDOUT ||
	       rc == STRATA_ECLOSED || rc == STRATA_EWRONGHOST ||
	       rc == STRATA_ENOTLEADER || rc == STRATA_ESHUTDOWN ||
	       rc == STRATA_EAGAIN || rc == STRATA_EBUSY ||
	       rc == STRATA_ELEADERLOST;
}

/* Retry after a transient error: past the deadline, finish with it. */
static void seg_op_retry(struct seg_op *op, bool backoff)
{
	if (atomic_load(&op->c->closing) || op->cancelled) {
		seg_op_finish(op, STRATA_ECLOSED, "the client is closing");
		return;
	}
	unsigned d = backoff ? backoff_ms(++op->backoffs) : 0;
	if (loop_now_ms() + d >= op->deadline_ms) {
		char msg[STRATA_ERRMSG_SIZE];
		/* The verdict before the cause: a long cause is cut at
		 * STRATA_ERRMSG_SIZE, from its end. */
		client_err(msg,
		           "segment %.200s: gave up retrying after the "
		           "timeout: %.200s",
		           op->name, op->last_msg);
		seg_op_finish(op, op->last_code, msg);
		return;
	}
	loop_timer_arm(op->c->loop, &op->timer, d);
}

static void seg_op_timer(void *arg)
{
	struct seg_op *op = arg;
	if (op->n_urls == 0 || op->url_idx >= op->n_urls) {
		seg_op_ask_controller(op);
	} else {
		seg_op_call_store(op);
	}
}

void seg_op_cancel(struct seg_op *op)
{
	op->cancelled = true;
	if (loop_timer_cancel(op->c->loop, &op->timer)) {
		seg_op_finish(op, STRATA_ECLOSED, "cancelled");
	}
}

static void seg_op_store_done(struct creq *r)
{
	struct seg_op *op = r->owner;
	int rc = r->code;
	if (op->cancelled && rc != 0) {
		creq_reset(r);
		seg_op_finish(op, STRATA_ECLOSED, "cancelled");
		return;
	}
	if (rc == 0 || !seg_transient(rc) ||
	    (rc == STRATA_ECLOSED && atomic_load(&op->c->closing))) {
		op->reply = r->reply;
		memset(&r->reply, 0, sizeof(r->reply));
		snprintf(op->url, sizeof(op->url), "%s", op->urls[op->url_idx]);
		if (rc == 0) {
			op->backoffs = 0;
			seg_op_finish(op, 0, "");
		} else {
			char msg[STRATA_ERRMSG_SIZE];
			client_err(msg, "%s", r->errmsg);
			seg_op_finish(op, rc, msg);
		}
		return;
	}
	creq_reset(r);
	op->last_code = rc;
	client_err(op->last_msg, "%s", r->errmsg);
	op->url_idx++;
	if (op->url_idx >= op->n_urls) {
		client_ep_forget(op->c, op->name);
		op->n_urls = 0;
		seg_op_retry(op, true);
		return;
	}
	/* Another replica at once; back-pressure still waits. */
	seg_op_retry(op, rc == STRATA_EAGAIN || rc == STRATA_EBUSY);
}

static void seg_op_call_store(struct seg_op *op)
{
	char msg[STRATA_ERRMSG_SIZE];
	size_t len = op->req_len;
	loop_task_init(&op->rq.task, creq_run, &op->rq);
	op->rq.c = op->c;
	op->rq.done = seg_op_store_done;
	op->rq.owner = op;
	memset(&op->rq.reply, 0, sizeof(op->rq.reply));
	int rc = op->c->ops->call(op->c->tr, op->urls[op->url_idx], op->method,
	                          op->flags | RPC_IDEMPOTENT, op->req, len,
	                          creq_cb, &op->rq, msg);
	if (rc != 0) {
		op->last_code = rc;
		client_err(op->last_msg, "%s", msg);
		if (rc == STRATA_ECLOSED || rc == STRATA_ENOMEM ||
		    rc == STRATA_ETOOBIG || rc == STRATA_EINVAL) {
			seg_op_finish(op, rc, msg);
			return;
		}
		op->url_idx++;
		seg_op_retry(op, true);
	}
}

static void seg_op_add_url(struct seg_op *op, const char *u)
{
	if (u == NULL || u[0] == '\0' || strlen(u) >= RPC_MAX_URL_LEN ||
	    op->n_urls >= CT_EP_URLS) {
		return;
	}
	for (size_t i = 0; i < op->n_urls; i++) {
		if (strcmp(op->urls[i], u) == 0) {
			return;
		}
	}
	snprintf(op->urls[op->n_urls++], RPC_MAX_URL_LEN, "%s", u);
}

static void seg_op_ep_done(struct creq *r)
{
	struct seg_op *op = r->owner;
	int rc = r->code;
	if (op->cancelled) {
		creq_reset(r);
		seg_op_finish(op, STRATA_ECLOSED, "cancelled");
		return;
	}
	if (rc != 0) {
		op->last_code = rc;
		if (ctl_transient(rc) && !atomic_load(&op->c->closing)) {
			char urls[160];
			ctl_urls_text(op->c, urls, sizeof(urls));
			client_err(op->last_msg,
			           "controller unreachable (%s): %.100s", urls,
			           r->errmsg);
			creq_reset(r);
			seg_op_retry(op, true);
			return;
		}
		char msg[STRATA_ERRMSG_SIZE];
		client_err(msg, "segment %.200s: %.200s", op->name, r->errmsg);
		creq_reset(r);
		seg_op_finish(op, rc, msg);
		return;
	}
	Strata__V1__SegmentEndpointReply *ep =
	        (Strata__V1__SegmentEndpointReply *)rpc_pb_unpack(
	                &strata__v1__segment_endpoint_reply__descriptor,
	                r->reply.data, r->reply.len);
	creq_reset(r);
	if (ep == NULL) {
		seg_op_finish(
		        op, STRATA_EPROTO,
		        "the controller's segment endpoint reply does not "
		        "parse");
		return;
	}
	op->n_urls = 0;
	op->url_idx = 0;
	seg_op_add_url(op, ep->client_url);
	for (size_t i = 0; i < ep->n_replica_urls; i++) {
		seg_op_add_url(op, ep->replica_urls[i]);
	}
	uint32_t container = ep->container;
	rpc_pb_free(&ep->base);
	if (op->n_urls == 0) {
		op->last_code = STRATA_EUNAVAIL;
		client_err(op->last_msg,
		           "no segment store hosts container %" PRIu32
		           " yet; start segment stores or wait for them to "
		           "register",
		           container);
		seg_op_retry(op, true);
		return;
	}
	ep_store(op->c, op);
	seg_op_call_store(op);
}

static void seg_op_ask_controller(struct seg_op *op)
{
	Strata__V1__GetSegmentEndpointRequest q =
	        STRATA__V1__GET_SEGMENT_ENDPOINT_REQUEST__INIT;
	char msg[STRATA_ERRMSG_SIZE];
	q.scope = op->scope;
	q.stream = op->stream;
	q.segment_id = op->segment_id;
	op->n_urls = 0;
	op->url_idx = 0;
	int rc = creq_start(
	        op->c, &op->rq, NULL,
	        STRATA__V1__CONTROLLER_METHOD__CTL_GET_SEGMENT_ENDPOINT,
	        RPC_IDEMPOTENT, &q.base, seg_op_ep_done, op, msg);
	if (rc != 0) {
		op->last_code = rc;
		client_err(op->last_msg, "%s", msg);
		if (rc == STRATA_ECLOSED || rc == STRATA_ENOMEM) {
			seg_op_finish(op, rc, msg);
			return;
		}
		seg_op_retry(op, true);
	}
}

static void seg_op_start_task(void *arg)
{
	struct seg_op *op = arg;
	/* From now on the timer drives retries. */
	loop_timer_init(&op->timer, seg_op_timer, op);
	if (ep_lookup(op->c, op)) {
		op->url_idx = 0;
		seg_op_call_store(op);
	} else {
		seg_op_ask_controller(op);
	}
}

int seg_op_start(struct strata_client *c, struct seg_op *op, const char *name,
                 uint32_t method, const ProtobufCMessage *req,
                 uint64_t deadline_ms, unsigned flags, seg_op_done_fn done,
                 void *arg, char *errmsg)
{
	struct segname_parts parts;
	char msg[STRATA_ERRMSG_SIZE];
	memset(op, 0, sizeof(*op));
	if (segname_parse(name, &parts, msg) != 0) {
		client_err(errmsg, "segment name \"%.200s\": %s", name, msg);
		return STRATA_EBADNAME;
	}
	if (atomic_load(&c->closing)) {
		client_err(errmsg, "the client is closing");
		return STRATA_ECLOSED;
	}
	op->c = c;
	op->name = strata_strdup(name);
	op->req = pack(req, &op->req_len);
	if (op->name == NULL || op->req == NULL) {
		strata_free(op->name);
		strata_free(op->req);
		op->name = NULL;
		op->req = NULL;
		client_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	snprintf(op->scope, sizeof(op->scope), "%s", parts.scope);
	snprintf(op->stream, sizeof(op->stream), "%s", parts.stream);
	op->segment_id = parts.segment_id;
	op->method = method;
	op->flags = flags;
	op->deadline_ms =
	        deadline_ms != 0
	                ? deadline_ms
	                : loop_now_ms() + (uint64_t)c->cfg.operation_timeout_ms;
	op->done = done;
	op->arg = arg;
	op->last_code = STRATA_ETIMEDOUT;
	client_err(op->last_msg, "no attempt finished");
	/* Start on the I/O thread: the op's steps all run there. */
	loop_timer_init(&op->timer, seg_op_start_task, op);
	loop_timer_arm(c->loop, &op->timer, 0);
	return 0;
}

void seg_op_reset(struct seg_op *op)
{
	strata_free(op->name);
	strata_free(op->req);
	rpc_body_free(&op->reply);
	op->name = NULL;
	op->req = NULL;
}

/* A blocking segment call. */
struct seg_sync {
	struct seg_op op;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int code;
	char msg[STRATA_ERRMSG_SIZE];
};

static void seg_sync_done(struct seg_op *op, int code, const char *errmsg)
{
	struct seg_sync *s = op->arg;
	pthread_mutex_lock(&s->mu);
	s->code = code;
	client_err(s->msg, "%s", errmsg);
	s->done = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

int client_seg_call_body(struct strata_client *c, const char *name,
                         uint32_t method, const ProtobufCMessage *req,
                         struct rpc_body *body, char *errmsg)
{
	memset(body, 0, sizeof(*body));
	int rc = client_check_blocking(c, "a segment call", errmsg);
	if (rc != 0) {
		return rc;
	}
	struct seg_sync *s = strata_calloc(1, sizeof(*s));
	if (s == NULL) {
		client_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	unsigned flags = method == CT_SS_READ ? CT_LONGPOLL : 0;
	rc = seg_op_start(c, &s->op, name, method, req, 0, flags, seg_sync_done,
	                  s, errmsg);
	if (rc == 0) {
		pthread_mutex_lock(&s->mu);
		while (!s->done) {
			pthread_cond_wait(&s->cv, &s->mu);
		}
		pthread_mutex_unlock(&s->mu);
		rc = s->code;
		if (rc != 0) {
			client_err(errmsg, "%s", s->msg);
		}
		*body = s->op.reply;
		memset(&s->op.reply, 0, sizeof(s->op.reply));
		seg_op_reset(&s->op);
	}
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	strata_free(s);
	return rc;
}

int client_seg_call(struct strata_client *c, const char *name, uint32_t method,
                    const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *reply_desc,
                    ProtobufCMessage **reply, bool keep_error_body,
                    char *errmsg)
{
	if (reply != NULL) {
		*reply = NULL;
	}
	struct rpc_body body;
	int rc = client_seg_call_body(c, name, method, req, &body, errmsg);
	if (reply_desc != NULL && reply != NULL &&
	    (rc == 0 || keep_error_body) && body.len > 0) {
		*reply = rpc_pb_unpack(reply_desc, body.data, body.len);
		if (*reply == NULL && rc == 0) {
			rc = STRATA_EPROTO;
			client_err(errmsg,
			           "segment %.200s: reply does not parse as %s",
			           name, reply_desc->name);
		}
	} else if (reply_desc != NULL && reply != NULL && rc == 0) {
		/* An empty body is a message with every field unset. */
		*reply = rpc_pb_unpack(reply_desc, (const uint8_t *)"", 0);
		if (*reply == NULL) {
			rc = STRATA_ENOMEM;
			client_err(errmsg, "out of memory");
		}
	}
	rpc_body_free(&body);
	return rc;
}
