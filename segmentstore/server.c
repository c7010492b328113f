/* Segment store RPC server: SS_* requests -> container requests -> replies.
 *
 * happy path: an RPC thread decodes the method's message (kept alive in a
 * struct ss_call, since the container request borrows its strings and
 * data), checks it, hashes the segment name to its container and submits
 * to the backend; the container's completion (loop or worker thread)
 * builds the reply message, answers the RPC call and frees the ss_call.
 *
 * failure modes: a body that does not parse or a field out of bounds is
 * answered at once (STRATA_EPROTO, EINVAL, EBADNAME, ETOOBIG) and the
 * connection carries on; a container this store does not host, or whose
 * replica here does not lead, is answered STRATA_EWRONGHOST with the
 * leading store's client URL as redirect (ENOTLEADER without one while no
 * leader is known). Completions may arrive after ss_server_stop (the rpc
 * layer then drops the reply): the server struct is reference counted so
 * it outlives them.
 */
#include "segmentstore/server.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/rpc.h"
#include "common/segname.h"
#include "strata/error.h"
#include "strata/v1/segmentstore.pb-c.h"

/* Largest READ answered at once; clients ask again for more. */
#define SS_MAX_READ_BYTES (8u * 1024 * 1024)
/* Default READ size when the request leaves max_bytes 0. */
#define SS_DEFAULT_READ_BYTES (1024u * 1024)
/* Longest long-poll a READ may ask for. */
#define SS_MAX_WAIT_MS 30000u
/* ReadReply.data's field number (proto/strata/v1/segmentstore.proto): the
 * data is written after the rest of the reply (rpc_reply_pb_tail). */
#define READ_REPLY_DATA 2u
/* Writer ids and attribute keys are UUIDs. */
#define SS_ID_BYTES 16
/* Ordering table: shards, buckets per shard, entries per shard, how long
 * an append waits for the block before it, how long an idle writer is
 * remembered, and the sweep period. */
#define ORDER_SHARDS 16
#define ORDER_BUCKETS 256
#define ORDER_MAX_PER_SHARD 8192
#define ORDER_HOLD_MS 100
#define ORDER_IDLE_MS 300000
#define ORDER_SWEEP_MS 10

struct ss_call;

/* Per-writer ordering (see "Ordering" below). */
struct order_entry {
	struct order_entry *next; /* bucket chain */
	char *segment;            /* owned copy */
	uint8_t writer[SS_ID_BYTES];
	int64_t expect;       /* next event number expected */
	uint64_t touched_ms;  /* last use, for expiry */
	struct ss_call *held; /* held appends, ascending first event */
};

struct order_shard {
	pthread_mutex_t mu;
	struct order_entry *buckets[ORDER_BUCKETS];
	size_t n; /* entries */
};

struct ss_server {
	struct rpc_server *rpc;    /* NULL once stopped */
	struct ss_backend backend; /* copied */
	uint64_t max_append_bytes; /* AppendRequest.data limit */
	atomic_int refs;           /* 1 (running) + calls in flight */
	atomic_bool stopped;       /* backend must no longer be called */
	struct order_shard order[ORDER_SHARDS]; /* per-writer ordering */
	pthread_t sweeper;                      /* releases held appends */
	bool sweeper_started;
	atomic_bool sweeper_stop;
	struct metrics_counter *m_reordered; /* appends held for order */
	/* metrics (NULL when no registry) */
	struct metrics_counter *m_requests;
	struct metrics_counter *m_errors;
	struct metrics_counter *m_bad;
	struct metrics_counter *m_redirects;
	struct metrics_counter *m_backpressure;
	struct metrics_counter *m_appends;
	struct metrics_counter *m_append_events;
	struct metrics_counter *m_append_bytes;
	struct metrics_counter *m_append_dups;
	struct metrics_counter *m_read_bytes;
	struct metrics_histogram *m_append_latency;
};

/* One request between decode and reply. */
struct ss_call {
	struct ss_server *s;          /* holds a reference */
	struct rpc_call *call;        /* answered exactly once */
	uint32_t method;              /* SS_METHOD_* */
	uint32_t container;           /* container of req.segment */
	ProtobufCMessage *msg;        /* decoded request; req borrows from it */
	struct container_request req; /* what the container does */
	uint64_t start_ns;            /* CLOCK_MONOTONIC at decode */
	struct ss_call *held_next;    /* APPEND held for order: next held */
	uint64_t held_until;          /* ... released then (ms) anyway */
	struct rpc_pb_arena arena;    /* msg's memory: space, then heap */
	_Alignas(max_align_t) uint8_t space[];
};

static void count(struct metrics_counter *c, uint64_t n)
{
	if (c != NULL) {
		metrics_counter_add(c, n);
	}
}

static void order_free(struct ss_server *s);

static void server_unref(struct ss_server *s)
{
	if (atomic_fetch_sub(&s->refs, 1) == 1) {
		order_free(s);
		strata_free(s);
	}
}

static const char *method_name(uint32_t method)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	        &strata__v1__segment_store_method__descriptor, (int)method);
	return v != NULL ? v->name : "SS_UNKNOWN";
}

/* Answer call with an error and a formatted message; counts it. */
__attribute__((format(printf, 4, 5))) static void
fail(struct ss_server *s, struct rpc_call *call, int code, const char *fmt, ...)
{
	char msg[STRATA_ERRMSG_SIZE];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	count(s->m_errors, 1);
	if (code == STRATA_EPROTO || code == STRATA_EINVAL ||
	    code == STRATA_EBADNAME || code == STRATA_ETOOBIG) {
		count(s->m_bad, 1);
	}
	if (code == STRATA_EAGAIN) {
		count(s->m_backpressure, 1);
	}
	rpc_reply(call, code, msg, NULL, 0);
}

/*
 * Answer "this store does not lead container": EWRONGHOST with the
 * leader's URL when known, else ENOTLEADER (an election is running or the
 * placement is unknown: retry, or ask the controller).
 */
static void redirect(struct ss_server *s, struct rpc_call *call,
                     uint32_t container, const char *segment)
{
	char url[RPC_MAX_URL_LEN];
	url[0] = '\0';
	if (!atomic_load(&s->stopped)) {
		s->backend.leader_url(s->backend.arg, container, url,
		                      sizeof(url));
	}
	count(s->m_redirects, 1);
	count(s->m_errors, 1);
	char msg[2 * STRATA_ERRMSG_SIZE];
	if (url[0] != '\0') {
		snprintf(msg, sizeof(msg),
		         "segment %.120s is in container %" PRIu32
		         ", led by the store at %s: retry there",
		         segment, container, url);
		rpc_reply_redirect(call, STRATA_EWRONGHOST, msg, url);
		return;
	}
	struct container_status st;
	char leader[RPC_MAX_URL_LEN];
	int rc = STRATA_ESHUTDOWN;
	if (!atomic_load(&s->stopped)) {
		rc = s->backend.status(s->backend.arg, container, &st, leader,
		                       sizeof(leader));
	}
	/* Still "not the leader" (a client asks the controller and finds
	 * the other replicas' new leader), with the cause. */
	if (rc == 0 && st.log_failed) {
		snprintf(msg, sizeof(msg),
		         "container %" PRIu32 "'s replica on this store "
		         "stopped: a write to its Raft log failed (see the "
		         "store's log); other replicas take over, else the "
		         "store restarts it once the disk is fixed",
		         container);
	} else if (rc == STRATA_EUNAVAIL && st.start_failed) {
		snprintf(msg, sizeof(msg),
		         "container %" PRIu32 "'s replica on this store did "
		         "not start: its Raft log or disk is damaged or "
		         "unreadable (the store's log says what to do); other "
		         "replicas take over, if it has any",
		         container);
	} else {
		snprintf(msg, sizeof(msg),
		         "segment %.120s is in container %" PRIu32
		         ", which has no known leader right now (election or "
		         "reassignment in progress); retry shortly or ask the "
		         "controller",
		         segment, container);
	}
	rpc_reply(call, STRATA_ENOTLEADER, msg, NULL, 0);
}

static void call_free(struct ss_call *c)
{
	rpc_pb_arena_free(c->msg, &c->arena);
	struct ss_server *s = c->s;
	strata_free(c);
	server_unref(s);
}

/* Message for a failed container request: the container's detail, else
 * the code's description, with the segment and a hint. */
static void error_message(const struct ss_call *c, int code,
                          const struct container_reply *r, char *msg,
                          size_t size)
{
	const char *hint = "";
	switch (code) {
	case STRATA_EAGAIN:
		hint = "; tier 2 is behind: retry later with back-off";
		break;
	case STRATA_ELEADERLOST:
		hint = "; the outcome is unknown: retry (appends are "
		       "deduplicated by writer id and event number)";
		break;
	case STRATA_ESHUTDOWN:
		hint = "; the store is stopping: retry on the new owner";
		break;
	default:
		break;
	}
	bool own = r != NULL && r->message != NULL && r->message[0];
	const char *detail = own ? r->message : strata_strerror(code);
	if (own && code == STRATA_EAGAIN) {
		hint = ""; /* the container says why and to retry */
	}
	snprintf(msg, size, "%s %.200s: %s%s", method_name(c->method),
	         c->req.segment != NULL ? c->req.segment : "", detail, hint);
}

static void fill_info(Strata__V1__SegmentInfoReply *info, const char *segment,
                      const struct container_reply *r)
{
	info->segment = (char *)segment;
	info->start_offset = r->start_offset;
	info->length = r->length;
	info->sealed = r->sealed;
	info->flushed_length = r->flushed_length;
	info->events = r->events;
}

static void on_done(void *arg, int code, const struct container_reply *r);

/* Submit c to its container; when refused, answer and free it. */
static void submit_now(struct ss_server *s, struct ss_call *c)
{
	int rc = atomic_load(&s->stopped)
	                 ? STRATA_ESHUTDOWN
	                 : s->backend.submit(s->backend.arg, c->container,
	                                     &c->req, on_done, c);
	if (rc == 0) {
		return; /* on_done answers */
	}
	if (rc == STRATA_EWRONGHOST) {
		redirect(s, c->call, c->container, c->req.segment);
	} else {
		char msg[STRATA_ERRMSG_SIZE];
		error_message(c, rc, NULL, msg, sizeof(msg));
		fail(s, c->call, rc, "%s", msg);
	}
	call_free(c);
}

/*
 * Ordering. NNG serves the requests of one connection on several
 * contexts at once, so two pipelined appends of one writer can reach the
 * container in the wrong order. Correctness does not depend on this table:
 * the container FSM accepts only the next event number (a writer new to a
 * segment must start at event 0), so a block that overtakes its
 * predecessor fails STRATA_EBADEVENTNUM and is never written. Efficiency
 * does: every such failure makes the writer drain and resynchronise. So
 * once a writer's SETUP_APPEND has answered here (last event number L),
 * its appends to that segment are submitted in event-number order: a
 * block starting above the expected number waits, at most ORDER_HOLD_MS,
 * for the blocks before it (then the container judges it); retries
 * (starting below) pass at once. Writers should SETUP_APPEND on a store
 * before pipelining appends to it (docs/segmentstore.md). The table is
 * bounded (ORDER_MAX_PER_SHARD per shard, idle entries expire); without
 * an entry appends pass unordered.
 */
static uint64_t order_hash(const char *segment, const uint8_t *writer)
{
	return segname_fnv1a(segment, strlen(segment)) ^
	       (segname_fnv1a(writer, SS_ID_BYTES) * 31u);
}

/* With the shard locked: the link pointing at the entry, or at NULL. */
static struct order_entry **order_find(struct order_shard *sh, uint64_t h,
                                       const char *segment,
                                       const uint8_t *writer)
{
	struct order_entry **pp =
	        &sh->buckets[(h / ORDER_SHARDS) % ORDER_BUCKETS];
	while (*pp != NULL &&
	       (memcmp((*pp)->writer, writer, SS_ID_BYTES) != 0 ||
	        strcmp((*pp)->segment, segment) != 0)) {
		pp = &(*pp)->next;
	}
	return pp;
}

/* With the shard locked: submit the held appends that are now in order. */
static void order_release(struct ss_server *s, struct order_entry *e)
{
	while (e->held != NULL &&
	       e->held->req.first_event_number <= e->expect) {
		struct ss_call *c = e->held;
		e->held = c->held_next;
		int64_t end = c->req.first_event_number + c->req.event_count;
		if (end > e->expect) {
			e->expect = end;
		}
		submit_now(s, c);
	}
}

/* A SETUP_APPEND answered last: appends of this writer are ordered from
 * last + 1 on. */
static void order_setup(struct ss_server *s, const char *segment,
                        const uint8_t *writer, int64_t last)
{
	if (atomic_load(&s->stopped)) {
		return;
	}
	uint64_t h = order_hash(segment, writer);
	struct order_shard *sh = &s->order[h % ORDER_SHARDS];
	pthread_mutex_lock(&sh->mu);
	struct order_entry **pp = order_find(sh, h, segment, writer);
	struct order_entry *e = *pp;
	if (e == NULL && sh->n < ORDER_MAX_PER_SHARD) {
		e = strata_calloc(1, sizeof(*e));
		char *name = e != NULL ? strata_strdup(segment) : NULL;
		if (name == NULL) {
			strata_free(e);
			e = NULL;
		} else {
			e->segment = name;
			memcpy(e->writer, writer, SS_ID_BYTES);
			*pp = e;
			sh->n++;
		}
	}
	if (e != NULL) {
		e->expect = last < 0 ? 0 : last + 1;
		e->touched_ms = clock_mono_ms();
		order_release(s, e);
	}
	pthread_mutex_unlock(&sh->mu);
}

/* Submit an APPEND in its writer's order (see above). */
static void order_append(struct ss_server *s, struct ss_call *c)
{
	const struct container_request *q = &c->req;
	uint64_t h = order_hash(q->segment, q->writer_id);
	struct order_shard *sh = &s->order[h % ORDER_SHARDS];
	pthread_mutex_lock(&sh->mu);
	struct order_entry *e = *order_find(sh, h, q->segment, q->writer_id);
	if (e == NULL || q->first_event_number <= e->expect ||
	    atomic_load(&s->stopped)) {
		if (e != NULL) {
			int64_t end = q->first_event_number + q->event_count;
			if (q->first_event_number == e->expect) {
				e->expect = end;
			}
			e->touched_ms = clock_mono_ms();
		}
		submit_now(s, c);
		if (e != NULL) {
			order_release(s, e);
		}
		pthread_mutex_unlock(&sh->mu);
		return;
	}
	/* Ahead of its turn: hold it, sorted by first event number. */
	c->held_until = clock_mono_ms() + ORDER_HOLD_MS;
	struct ss_call **pp = &e->held;
	while (*pp != NULL &&
	       (*pp)->req.first_event_number <= q->first_event_number) {
		pp = &(*pp)->held_next;
	}
	c->held_next = *pp;
	*pp = c;
	e->touched_ms = clock_mono_ms();
	count(s->m_reordered, 1);
	pthread_mutex_unlock(&sh->mu);
}

/* Release held appends whose wait is over (all when force); forget idle
 * writers (when expire). */
static void order_sweep(struct ss_server *s, bool force, bool expire)
{
	uint64_t now = clock_mono_ms();
	for (int i = 0; i < ORDER_SHARDS; i++) {
		struct order_shard *sh = &s->order[i];
		pthread_mutex_lock(&sh->mu);
		for (int b = 0; b < ORDER_BUCKETS; b++) {
			struct order_entry **pp = &sh->buckets[b];
			while (*pp != NULL) {
				struct order_entry *e = *pp;
				while (e->held != NULL &&
				       (force || e->held->held_until <= now)) {
					/* Its predecessor never came: let
					 * the container judge it. */
					struct ss_call *c = e->held;
					e->held = c->held_next;
					e->expect = c->req.first_event_number +
					            c->req.event_count;
					submit_now(s, c);
					order_release(s, e);
				}
				if (expire && e->held == NULL &&
				    now - e->touched_ms > ORDER_IDLE_MS) {
					*pp = e->next;
					sh->n--;
					strata_free(e->segment);
					strata_free(e);
					continue;
				}
				pp = &e->next;
			}
		}
		pthread_mutex_unlock(&sh->mu);
	}
}

static void *sweeper_main(void *arg)
{
	struct ss_server *s = arg;
	unsigned n = 0;
	while (!atomic_load(&s->sweeper_stop)) {
		struct timespec ts = {.tv_sec = 0,
		                      .tv_nsec = ORDER_SWEEP_MS * 1000000L};
		nanosleep(&ts, NULL);
		order_sweep(s, false, ++n % 100 == 0);
	}
	return NULL;
}

static void order_init(struct ss_server *s)
{
	for (int i = 0; i < ORDER_SHARDS; i++) {
		pthread_mutex_init(&s->order[i].mu, NULL);
	}
}

/* Free the table (last reference; nothing is held any more). */
static void order_free(struct ss_server *s)
{
	for (int i = 0; i < ORDER_SHARDS; i++) {
		struct order_shard *sh = &s->order[i];
		for (int b = 0; b < ORDER_BUCKETS; b++) {
			struct order_entry *e = sh->buckets[b];
			while (e != NULL) {
				struct order_entry *nx = e->next;
				strata_free(e->segment);
				strata_free(e);
				e = nx;
			}
		}
		pthread_mutex_destroy(&sh->mu);
	}
}

/* Container completion: build the reply for c->method and answer. */
static void on_done(void *arg, int code, const struct container_reply *r)
{
	struct ss_call *c = arg;
	struct ss_server *s = c->s;
	char msg[STRATA_ERRMSG_SIZE];
	const char *text = NULL;
	if (code == STRATA_ENOTLEADER) {
		redirect(s, c->call, c->container, c->req.segment);
		call_free(c);
		return;
	}
	if (code != 0) {
		error_message(c, code, r, msg, sizeof(msg));
		text = msg;
		count(s->m_errors, 1);
		if (code == STRATA_EAGAIN) {
			count(s->m_backpressure, 1);
		}
	}
	Strata__V1__SegmentInfoReply info =
	        STRATA__V1__SEGMENT_INFO_REPLY__INIT;
	Strata__V1__SetupAppendReply setup =
	        STRATA__V1__SETUP_APPEND_REPLY__INIT;
	Strata__V1__AppendReply app = STRATA__V1__APPEND_REPLY__INIT;
	Strata__V1__ReadReply rd = STRATA__V1__READ_REPLY__INIT;
	Strata__V1__AttributeReply attr = STRATA__V1__ATTRIBUTE_REPLY__INIT;
	ProtobufCMessage *out = NULL;
	const uint8_t *data = NULL; /* READ: ReadReply.data, sent after out */
	size_t data_len = 0;
	struct refbuf *data_ref = NULL;
	switch (c->method) {
	case SS_METHOD_CREATE_SEGMENT:
	case SS_METHOD_GET_INFO:
	case SS_METHOD_SEAL:
	case SS_METHOD_TRUNCATE:
	case SS_METHOD_MERGE:
		if (code == 0) {
			fill_info(&info, c->req.segment, r);
			if (c->method == SS_METHOD_SEAL) {
				info.sealed = true;
			}
			out = &info.base;
		}
		break;
	case SS_METHOD_SETUP_APPEND:
		if (code == 0) {
			setup.last_event_number =
			        r->last_event_number < 0 ? -1
			                                 : r->last_event_number;
			setup.length = r->length;
			setup.max_append = s->max_append_bytes;
			out = &setup.base;
			order_setup(s, c->req.segment, c->req.writer_id,
			            setup.last_event_number);
		}
		break;
	case SS_METHOD_APPEND:
		/* Also with EBADEVENTNUM / EBADOFFSET: the client resyncs
		 * from last_event_number and length. */
		if (r != NULL) {
			app.offset = r->offset;
			app.last_event_number = r->last_event_number < 0
			                                ? -1
			                                : r->last_event_number;
			app.duplicate = r->duplicate;
			app.length = r->length;
			out = &app.base;
		}
		if (code == 0) {
			count(s->m_appends, 1);
			if (r != NULL && r->duplicate) {
				count(s->m_append_dups, 1);
			} else {
				count(s->m_append_events, c->req.event_count);
				count(s->m_append_bytes, c->req.len);
			}
			if (s->m_append_latency != NULL) {
				metrics_histogram_observe(
				        s->m_append_latency,
				        (double)(clock_mono_ns() -
				                 c->start_ns) /
				                1e9);
			}
		}
		break;
	case SS_METHOD_READ:
		if (code == 0 && r != NULL) {
			rd.offset = c->req.offset;
			data = r->data;
			data_len = r->data != NULL ? r->data_len : 0;
			data_ref = r->data_ref;
			rd.end_of_segment = r->end_of_segment;
			rd.at_tail = r->at_tail;
			rd.start_offset = r->start_offset;
			rd.length = r->length;
			count(s->m_read_bytes, data_len);
			out = &rd.base;
		} else if (code == STRATA_ETRUNCATED && r != NULL) {
			rd.offset = c->req.offset;
			rd.start_offset = r->start_offset;
			rd.length = r->length;
			out = &rd.base;
		}
		break;
	case SS_METHOD_GET_ATTRIBUTE:
	case SS_METHOD_UPDATE_ATTRIBUTE:
		if (r != NULL && (code == 0 || code == STRATA_ECONFLICT)) {
			attr.present = r->attr_present;
			attr.value = r->attr_value;
			out = &attr.base;
		}
		break;
	default: /* DELETE: empty body */
		break;
	}
	/* A read's data is written to the socket from where it lies (the
	 * read cache holds tier-2 reads by reference), not packed. */
	rpc_reply_pb_tail(c->call, code, text, out, READ_REPLY_DATA, data,
	                  data_len, data_ref);
	call_free(c);
}

/* Check a qualified segment name; answers and returns non-zero if bad. */
static int check_segment(struct ss_server *s, struct rpc_call *call,
                         uint32_t method, const char *name)
{
	struct segname_parts parts;
	char err[STRATA_ERRMSG_SIZE];
	if (segname_parse(name, &parts, err) != 0) {
		fail(s, call, STRATA_EBADNAME, "%s: %s", method_name(method),
		     err);
		return STRATA_EBADNAME;
	}
	return 0;
}

/* Check a 16-byte id field; answers and returns non-zero if bad. */
static int check_id(struct ss_server *s, struct rpc_call *call, uint32_t method,
                    const ProtobufCBinaryData *id, const char *field,
                    uint8_t *out)
{
	if (id->len != SS_ID_BYTES) {
		fail(s, call, STRATA_EINVAL,
		     "%s: %s has %zu bytes; it must be a 16-byte UUID",
		     method_name(method), field, id->len);
		return STRATA_EINVAL;
	}
	memcpy(out, id->data, SS_ID_BYTES);
	return 0;
}

/* Fill c->req from c->msg; answers and returns non-zero when invalid. */
static int build_request(struct ss_server *s, struct ss_call *c)
{
	struct container_request *q = &c->req;
	struct rpc_call *call = c->call;
	uint32_t m = c->method;
	q->expected_offset = -1;
	switch (m) {
	case SS_METHOD_CREATE_SEGMENT: {
		Strata__V1__CreateSegmentRequest *r = (void *)c->msg;
		q->op = CONTAINER_CREATE;
		q->segment = r->segment;
		q->idempotent = r->idempotent;
		break;
	}
	case SS_METHOD_SETUP_APPEND: {
		Strata__V1__SetupAppendRequest *r = (void *)c->msg;
		q->op = CONTAINER_SETUP_APPEND;
		q->segment = r->segment;
		if (check_id(s, call, m, &r->writer_id, "writer_id",
		             q->writer_id) != 0) {
			return STRATA_EINVAL;
		}
		break;
	}
	case SS_METHOD_APPEND: {
		Strata__V1__AppendRequest *r = (void *)c->msg;
		q->op = CONTAINER_APPEND;
		q->segment = r->segment;
		if (check_id(s, call, m, &r->writer_id, "writer_id",
		             q->writer_id) != 0) {
			return STRATA_EINVAL;
		}
		if (r->first_event_number < 0 || r->event_count == 0 ||
		    r->data.len < 4 ||
		    /* first + count must fit: the ordering of a writer's
		     * blocks computes the next expected number from it. */
		    (uint64_t)r->first_event_number >
		            (uint64_t)INT64_MAX - r->event_count) {
			fail(s, call, STRATA_EINVAL,
			     "SS_APPEND %.200s: first_event_number %" PRId64
			     ", event_count %" PRIu32 ", %zu data bytes; "
			     "send >= 1 whole framed event numbered from 0 "
			     "up",
			     r->segment, r->first_event_number, r->event_count,
			     r->data.len);
			return STRATA_EINVAL;
		}
		if (r->data.len > s->max_append_bytes) {
			fail(s, call, STRATA_ETOOBIG,
			     "SS_APPEND %.200s: block of %zu bytes exceeds "
			     "the store's limit of %" PRIu64
			     " bytes (limits.max_append); send smaller blocks",
			     r->segment, r->data.len, s->max_append_bytes);
			return STRATA_ETOOBIG;
		}
		if (r->expected_offset < -1) {
			fail(s, call, STRATA_EINVAL,
			     "SS_APPEND %.200s: expected_offset %" PRId64
			     " is invalid; use -1 (none) or an offset",
			     r->segment, r->expected_offset);
			return STRATA_EINVAL;
		}
		q->first_event_number = r->first_event_number;
		q->event_count = r->event_count;
		q->data = r->data.data;
		q->len = r->data.len;
		q->expected_offset = r->expected_offset;
		break;
	}
	case SS_METHOD_READ: {
		Strata__V1__ReadRequest *r = (void *)c->msg;
		q->op = CONTAINER_READ;
		q->segment = r->segment;
		q->offset = r->offset;
		q->max_bytes = r->max_bytes == 0 ? SS_DEFAULT_READ_BYTES
		                                 : r->max_bytes;
		if (q->max_bytes > SS_MAX_READ_BYTES) {
			q->max_bytes = SS_MAX_READ_BYTES;
		}
		q->wait_ms = r->wait_ms > SS_MAX_WAIT_MS ? SS_MAX_WAIT_MS
		                                         : r->wait_ms;
		break;
	}
	case SS_METHOD_GET_INFO:
	case SS_METHOD_SEAL:
	case SS_METHOD_DELETE: {
		Strata__V1__SegmentRequest *r = (void *)c->msg;
		q->op = m == SS_METHOD_GET_INFO ? CONTAINER_INFO
		        : m == SS_METHOD_SEAL   ? CONTAINER_SEAL
		                                : CONTAINER_DELETE;
		q->segment = r->segment;
		break;
	}
	case SS_METHOD_TRUNCATE: {
		Strata__V1__TruncateRequest *r = (void *)c->msg;
		q->op = CONTAINER_TRUNCATE;
		q->segment = r->segment;
		q->offset = r->offset;
		break;
	}
	case SS_METHOD_MERGE: {
		Strata__V1__MergeRequest *r = (void *)c->msg;
		q->op = CONTAINER_MERGE;
		q->segment = r->target;
		q->source = r->source;
		if (check_segment(s, call, m, r->source) != 0) {
			return STRATA_EBADNAME;
		}
		break;
	}
	case SS_METHOD_GET_ATTRIBUTE: {
		Strata__V1__AttributeRequest *r = (void *)c->msg;
		q->op = CONTAINER_GET_ATTR;
		q->segment = r->segment;
		if (check_id(s, call, m, &r->key, "key", q->attr_key) != 0) {
			return STRATA_EINVAL;
		}
		break;
	}
	case SS_METHOD_UPDATE_ATTRIBUTE: {
		Strata__V1__UpdateAttributeRequest *r = (void *)c->msg;
		q->op = CONTAINER_UPDATE_ATTR;
		q->segment = r->segment;
		if (check_id(s, call, m, &r->key, "key", q->attr_key) != 0) {
			return STRATA_EINVAL;
		}
		q->attr_value = r->value;
		q->attr_compare = r->compare;
		q->attr_expected = r->expected;
		break;
	}
	default:
		return STRATA_EINVAL; /* not reached: checked by the caller */
	}
	if (check_segment(s, call, m, q->segment) != 0) {
		return STRATA_EBADNAME;
	}
	c->container =
	        segname_container(q->segment, s->backend.container_count);
	if (m == SS_METHOD_MERGE &&
	    segname_container(q->source, s->backend.container_count) !=
	            c->container) {
		fail(s, call, STRATA_EINVAL,
		     "SS_MERGE: source %.200s and target %.200s are in "
		     "different containers; a transaction segment merges "
		     "only into its parent or its parent's rolled copy",
		     q->source, q->segment);
		return STRATA_EINVAL;
	}
	return 0;
}

static void container_status_call(struct ss_server *s, struct rpc_call *call,
                                  const uint8_t *body, size_t len)
{
	Strata__V1__ContainerStatusRequest *r = (void *)rpc_pb_unpack(
	        &strata__v1__container_status_request__descriptor, body, len);
	if (r == NULL) {
		fail(s, call, STRATA_EPROTO,
		     "SS_CONTAINER_STATUS: body is not a valid "
		     "ContainerStatusRequest (%zu bytes); check the client "
		     "version",
		     len);
		return;
	}
	uint32_t id = r->container;
	rpc_pb_free(&r->base);
	if (id >= s->backend.container_count) {
		fail(s, call, STRATA_EINVAL,
		     "SS_CONTAINER_STATUS: container %" PRIu32
		     " does not exist; this cluster has containers 0..%" PRIu32,
		     id, s->backend.container_count - 1);
		return;
	}
	struct container_status st;
	char url[RPC_MAX_URL_LEN];
	url[0] = '\0';
	memset(&st, 0, sizeof(st));
	int rc = s->backend.status(s->backend.arg, id, &st, url, sizeof(url));
	Strata__V1__ContainerStatusReply rep =
	        STRATA__V1__CONTAINER_STATUS_REPLY__INIT;
	rep.container = id;
	if (rc == 0) {
		rep.role = st.role;
		rep.term = st.term;
		rep.unflushed_bytes = st.unflushed_bytes;
		rep.segments = st.segments;
	} else {
		/* Not hosted here: role 0, and where it is, if known. */
		s->backend.leader_url(s->backend.arg, id, url, sizeof(url));
	}
	rep.leader_url = url;
	rpc_reply_pb(call, 0, NULL, &rep.base);
}

const ProtobufCMessageDescriptor *ss_request_descriptor(uint32_t method)
{
	switch (method) {
	case SS_METHOD_CREATE_SEGMENT:
		return &strata__v1__create_segment_request__descriptor;
	case SS_METHOD_SETUP_APPEND:
		return &strata__v1__setup_append_request__descriptor;
	case SS_METHOD_APPEND:
		return &strata__v1__append_request__descriptor;
	case SS_METHOD_READ:
		return &strata__v1__read_request__descriptor;
	case SS_METHOD_GET_INFO:
	case SS_METHOD_SEAL:
	case SS_METHOD_DELETE:
		return &strata__v1__segment_request__descriptor;
	case SS_METHOD_TRUNCATE:
		return &strata__v1__truncate_request__descriptor;
	case SS_METHOD_MERGE:
		return &strata__v1__merge_request__descriptor;
	case SS_METHOD_GET_ATTRIBUTE:
		return &strata__v1__attribute_request__descriptor;
	case SS_METHOD_UPDATE_ATTRIBUTE:
		return &strata__v1__update_attribute_request__descriptor;
	case SS_METHOD_CONTAINER_STATUS:
		return &strata__v1__container_status_request__descriptor;
	default:
		return NULL;
	}
}

static void handle(void *arg, struct rpc_call *call, uint32_t method,
                   const uint8_t *body, size_t len)
{
	struct ss_server *s = arg;
	count(s->m_requests, 1);
	if (method == SS_METHOD_CONTAINER_STATUS) {
		container_status_call(s, call, body, len);
		return;
	}
	const ProtobufCMessageDescriptor *desc = ss_request_descriptor(method);
	if (desc == NULL) {
		count(s->m_errors, 1);
		count(s->m_bad, 1);
		rpc_reply_unknown_method(call, method);
		return;
	}
	/* One allocation for the call and its decoded request. */
	size_t space = rpc_pb_arena_size(desc, len);
	struct ss_call *c = strata_malloc(sizeof(*c) + space);
	if (c == NULL) {
		fail(s, call, STRATA_ENOMEM,
		     "%s: segment store out of memory; retry later",
		     method_name(method));
		return;
	}
	memset(c, 0, sizeof(*c));
	rpc_pb_arena_init(&c->arena, c->space, space);
	c->s = s;
	c->call = call;
	c->method = method;
	c->start_ns = clock_mono_ns();
	atomic_fetch_add(&s->refs, 1);
	c->msg = rpc_pb_unpack_arena(desc, body, len, &c->arena);
	if (c->msg == NULL && c->arena.oom) {
		fail(s, call, STRATA_ENOMEM,
		     "%s: segment store out of memory decoding %zu bytes; "
		     "retry later",
		     method_name(method), len);
		call_free(c);
		return;
	}
	if (c->msg == NULL) {
		fail(s, call, STRATA_EPROTO,
		     "%s: body of %zu bytes is not a valid %s; check the "
		     "client version",
		     method_name(method), len, desc->short_name);
		call_free(c);
		return;
	}
	if (build_request(s, c) != 0) {
		call_free(c); /* already answered */
		return;
	}
	if (method == SS_METHOD_APPEND) {
		order_append(s, c);
	} else {
		submit_now(s, c);
	}
}

/* Register one counter; on failure leave *out NULL and return the code. */
static int reg_counter(struct metrics_registry *reg, const char *name,
                       const char *help, struct metrics_counter **out,
                       char *errmsg)
{
	return metrics_counter_register(reg, name, help, NULL, 0, out, errmsg);
}

static int register_metrics(struct ss_server *s, struct metrics_registry *reg,
                            char *errmsg)
{
	int rc = reg_counter(reg, "strata_segmentstore_requests_total",
	                     "Segment store RPC requests received.",
	                     &s->m_requests, errmsg);
	if (rc == 0) {
		rc = reg_counter(reg,
		                 "strata_segmentstore_request_errors_total",
		                 "Requests answered with an error.",
		                 &s->m_errors, errmsg);
	}
	if (rc == 0) {
		rc = reg_counter(reg, "strata_segmentstore_bad_requests_total",
		                 "Malformed or invalid requests rejected.",
		                 &s->m_bad, errmsg);
	}
	if (rc == 0) {
		rc = reg_counter(reg, "strata_segmentstore_redirects_total",
		                 "Requests for containers led elsewhere.",
		                 &s->m_redirects, errmsg);
	}
	if (rc == 0) {
		rc = reg_counter(reg, "strata_segmentstore_backpressure_total",
		                 "Requests refused with EAGAIN (unflushed "
		                 "budget full).",
		                 &s->m_backpressure, errmsg);
	}
	if (rc == 0) {
		rc = reg_counter(reg, "strata_segmentstore_appends_total",
		                 "Append blocks acknowledged.", &s->m_appends,
		                 errmsg);
	}
	if (rc == 0) {
		rc = reg_counter(reg,
		                 "strata_segmentstore_appended_events_total",
		                 "Events appended (duplicates excluded).",
		                 &s->m_append_events, errmsg);
	}
	if (rc == 0) {
		rc = reg_counter(reg,
		                 "strata_segmentstore_appended_bytes_total",
		                 "Bytes appended (duplicates excluded).",
		                 &s->m_append_bytes, errmsg);
	}
	if (rc == 0) {
		rc = reg_counter(reg,
		                 "strata_segmentstore_duplicate_appends_total",
		                 "Append blocks acknowledged as duplicates.",
		                 &s->m_append_dups, errmsg);
	}
	if (rc == 0) {
		rc = reg_counter(reg, "strata_segmentstore_read_bytes_total",
		                 "Bytes returned by reads.", &s->m_read_bytes,
		                 errmsg);
	}
	if (rc == 0) {
		rc = reg_counter(reg,
		                 "strata_segmentstore_reordered_appends_total",
		                 "Appends that arrived ahead of an earlier "
		                 "block of their writer and waited for it.",
		                 &s->m_reordered, errmsg);
	}
	if (rc == 0) {
		rc = metrics_histogram_register(
		        reg, "strata_segmentstore_append_latency_seconds",
		        "Append latency from request decode to acknowledgement "
		        "(Raft commit included).",
		        NULL, 0, NULL, 0, &s->m_append_latency, errmsg);
	}
	return rc;
}

int ss_server_start(const struct ss_server_config *cfg, struct ss_server **out,
                    char *errmsg)
{
	if (cfg == NULL || cfg->listen == NULL || out == NULL ||
	    cfg->backend.submit == NULL || cfg->backend.leader_url == NULL ||
	    cfg->backend.status == NULL || cfg->backend.container_count == 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "segment store server: incomplete configuration "
		         "(listen URL, backend and container count are "
		         "required)");
		return STRATA_EINVAL;
	}
	struct ss_server *s = strata_calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "segment store server: out of memory");
		return STRATA_ENOMEM;
	}
	s->backend = cfg->backend;
	s->max_append_bytes = cfg->max_append_bytes != 0
	                              ? cfg->max_append_bytes
	                              : (16u * 1024 * 1024 - 64 * 1024);
	atomic_init(&s->refs, 1);
	atomic_init(&s->stopped, false);
	atomic_init(&s->sweeper_stop, false);
	order_init(s);
	int rc = 0;
	if (cfg->metrics != NULL) {
		rc = register_metrics(s, cfg->metrics, errmsg);
		if (rc != 0) {
			goto err_free;
		}
	}
	struct rpc_server_opts o;
	rpc_server_opts_default(&o);
	if (cfg->n_contexts != 0) {
		o.n_contexts = cfg->n_contexts;
	}
	if (cfg->max_msg_bytes != 0) {
		o.max_msg_bytes = cfg->max_msg_bytes;
	}
	if (cfg->drain_ms != 0) {
		o.drain_ms = cfg->drain_ms;
	}
	if (cfg->max_connections != 0) {
		o.max_connections = cfg->max_connections;
	}
	o.max_connections_key = "limits.connections";
	o.config_key = cfg->config_key;
	/* Our handlers only decode and post to a container (never wait):
	 * serve on the SP listener, one wake-up per request. */
	o.own_tcp = true;
	if (pthread_create(&s->sweeper, NULL, sweeper_main, s) != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "segment store server: cannot start a thread");
		rc = STRATA_EIO;
		goto err_free;
	}
	s->sweeper_started = true;
	rc = rpc_server_start(&s->rpc, cfg->listen, &o, handle, s, errmsg);
	if (rc != 0) {
		goto err_sweeper;
	}
	LOG_INFO("segmentstore", "serving segment store requests on %s",
	         rpc_server_url(s->rpc));
	*out = s;
	return 0;

err_sweeper:
	atomic_store(&s->sweeper_stop, true);
	pthread_join(s->sweeper, NULL);
err_free:
	order_free(s);
	strata_free(s);
	return rc;
}

const char *ss_server_url(const struct ss_server *s)
{
	return rpc_server_url(s->rpc);
}

void ss_server_stop(struct ss_server *s)
{
	if (s == NULL) {
		return;
	}
	/* Held appends are released by the sweeper while the RPC layer
	 * drains; what is left after it is answered STRATA_ESHUTDOWN. */
	rpc_server_stop(s->rpc);
	s->rpc = NULL;
	atomic_store(&s->stopped, true);
	atomic_store(&s->sweeper_stop, true);
	pthread_join(s->sweeper, NULL);
	order_sweep(s, true, false);
	server_unref(s);
}
