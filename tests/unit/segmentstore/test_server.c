/* Unit tests for segmentstore/server.c: decoding, checks, routing,
 * redirects and replies, against a fake container backend over TCP on
 * 127.0.0.1. */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/metrics.h"
#include "common/rpc.h"
#include "common/segname.h"
#include "segmentstore/server.h"
#include "strata/error.h"
#include "strata/v1/segmentstore.pb-c.h"

#define SEG "sc/st/0.#epoch.0"
#define MAX_THREADS 64

/* A fake backend: records the last request, completes from a thread. */
struct fake {
	pthread_mutex_t mu;
	int submit_rc;                /* non-zero: submit fails with it */
	int code;                     /* completion code */
	struct container_reply reply; /* completion reply */
	char leader[RPC_MAX_URL_LEN]; /* leader_url answer */
	bool hosted;                  /* status() finds the container */
	bool log_failed;              /* status(): its Raft log failed */
	bool start_failed;            /* status(): its replica did not start */
	bool hold;                    /* keep requests pending */
	int submits;                  /* submit calls that returned 0 */
	uint32_t last_container;
	enum container_op last_op;
	char last_segment[SEGNAME_MAX + 1];
	char last_source[SEGNAME_MAX + 1];
	uint8_t last_writer[16];
	int64_t last_first;
	uint32_t last_count;
	size_t last_len;
	uint32_t last_max_bytes;
	uint32_t last_wait_ms;
	pthread_t threads[MAX_THREADS];
	int n_threads;
	container_done_fn held_done; /* hold: the pending request */
	void *held_arg;
};

struct job {
	struct fake *f;
	container_done_fn done;
	void *arg;
};

static void *complete_main(void *p)
{
	struct job *j = p;
	struct timespec ts = {0, 1000000};
	nanosleep(&ts, NULL);
	j->done(j->arg, j->f->code, &j->f->reply);
	strata_free(j);
	return NULL;
}

static int fake_submit(void *arg, uint32_t container,
                       const struct container_request *req,
                       container_done_fn done, void *done_arg)
{
	struct fake *f = arg;
	pthread_mutex_lock(&f->mu);
	if (f->submit_rc != 0) {
		pthread_mutex_unlock(&f->mu);
		return f->submit_rc;
	}
	f->submits++;
	f->last_container = container;
	f->last_op = req->op;
	snprintf(f->last_segment, sizeof(f->last_segment), "%s", req->segment);
	snprintf(f->last_source, sizeof(f->last_source), "%s",
	         req->source != NULL ? req->source : "");
	memcpy(f->last_writer, req->writer_id, 16);
	f->last_first = req->first_event_number;
	f->last_count = req->event_count;
	f->last_len = req->len;
	f->last_max_bytes = req->max_bytes;
	f->last_wait_ms = req->wait_ms;
	if (f->hold) {
		f->held_done = done;
		f->held_arg = done_arg;
		pthread_mutex_unlock(&f->mu);
		return 0;
	}
	struct job *j = strata_malloc(sizeof(*j));
	assert_non_null(j);
	j->f = f;
	j->done = done;
	j->arg = done_arg;
	assert_true(f->n_threads < MAX_THREADS);
	assert_int_equal(pthread_create(&f->threads[f->n_threads++], NULL,
	                                complete_main, j),
	                 0);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

static void fake_leader_url(void *arg, uint32_t container, char *url,
                            size_t size)
{
	struct fake *f = arg;
	(void)container;
	pthread_mutex_lock(&f->mu);
	snprintf(url, size, "%s", f->leader);
	pthread_mutex_unlock(&f->mu);
}

static int fake_status(void *arg, uint32_t container,
                       struct container_status *out, char *leader, size_t size)
{
	struct fake *f = arg;
	if (f->start_failed) {
		memset(out, 0, sizeof(*out));
		out->start_failed = true;
		return STRATA_EUNAVAIL;
	}
	if (!f->hosted) {
		return STRATA_ENOENT;
	}
	memset(out, 0, sizeof(*out));
	out->role = 3;
	out->term = 7;
	out->unflushed_bytes = 100 + container;
	out->segments = 2;
	out->log_failed = f->log_failed;
	snprintf(leader, size, "%s", "tcp://127.0.0.1:1");
	return 0;
}

struct env {
	struct fake f;
	struct metrics_registry *reg;
	struct ss_server *srv;
	struct rpc_client *cli;
};

static struct ss_server *
start_server(struct fake *f, struct metrics_registry *reg, uint32_t count)
{
	struct ss_server_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.listen = "tcp://127.0.0.1:0";
	cfg.config_key = "listen";
	cfg.n_contexts = 8;
	cfg.max_msg_bytes = 2u * 1024 * 1024;
	cfg.max_append_bytes = 64 * 1024;
	cfg.drain_ms = 200;
	cfg.backend.arg = f;
	cfg.backend.container_count = count;
	cfg.backend.submit = fake_submit;
	cfg.backend.leader_url = fake_leader_url;
	cfg.backend.status = fake_status;
	cfg.metrics = reg;
	struct ss_server *srv = NULL;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(ss_server_start(&cfg, &srv, err), 0);
	return srv;
}

static struct rpc_client *open_client(const char *url, int redirects)
{
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.timeout_ms = 3000;
	o.retries = 0;
	o.max_redirects = redirects;
	struct rpc_client *cli = NULL;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(rpc_client_open(&cli, &url, 1, &o, err), 0);
	return cli;
}

static int setup(void **state)
{
	struct env *e = strata_calloc(1, sizeof(*e));
	assert_non_null(e);
	pthread_mutex_init(&e->f.mu, NULL);
	assert_int_equal(metrics_registry_new(&e->reg), 0);
	e->srv = start_server(&e->f, e->reg, 4);
	e->cli = open_client(ss_server_url(e->srv), 0);
	*state = e;
	return 0;
}

static void join_all(struct fake *f)
{
	for (int i = 0; i < f->n_threads; i++) {
		pthread_join(f->threads[i], NULL);
	}
	f->n_threads = 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	rpc_client_close(e->cli);
	ss_server_stop(e->srv);
	join_all(&e->f);
	metrics_registry_free(e->reg);
	pthread_mutex_destroy(&e->f.mu);
	strata_free(e);
	return 0;
}

/* Call method with request m; unpack a reply of desc (may be NULL). */
static int call(struct rpc_client *cli, uint32_t method,
                const ProtobufCMessage *m,
                const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out,
                char *err)
{
	if (desc == NULL) {
		uint8_t buf[4096];
		size_t len = m != NULL ? protobuf_c_message_pack(m, buf) : 0;
		uint8_t *rep = NULL;
		size_t rep_len = 0;
		int rc =
		        rpc_call(cli, method, 0, buf, len, &rep, &rep_len, err);
		strata_free(rep);
		return rc;
	}
	return rpc_call_pb(cli, method, 0, m, desc, out, err);
}

static uint8_t writer[16] = {1, 2,  3,  4,  5,  6,  7,  8,
                             9, 10, 11, 12, 13, 14, 15, 16};

/* A valid append reaches the container with every field and the reply
 * carries its outcome; counters move. */
static void test_ss_server_append_roundtrip(void **state)
{
	struct env *e = *state;
	e->f.reply.offset = 40;
	e->f.reply.length = 48;
	e->f.reply.last_event_number = 11;
	uint8_t data[8] = {4, 0, 0, 0, 'a', 'b', 'c', 'd'};
	Strata__V1__AppendRequest r = STRATA__V1__APPEND_REQUEST__INIT;
	r.segment = SEG;
	r.writer_id.data = writer;
	r.writer_id.len = 16;
	r.first_event_number = 11;
	r.event_count = 1;
	r.data.data = data;
	r.data.len = sizeof(data);
	r.expected_offset = -1;
	ProtobufCMessage *out = NULL;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(call(e->cli, SS_METHOD_APPEND, &r.base,
	                      &strata__v1__append_reply__descriptor, &out, err),
	                 0);
	Strata__V1__AppendReply *a = (void *)out;
	assert_int_equal(a->offset, 40);
	assert_int_equal(a->length, 48);
	assert_int_equal(a->last_event_number, 11);
	assert_false(a->duplicate);
	rpc_pb_free(out);
	assert_int_equal(e->f.last_op, CONTAINER_APPEND);
	assert_string_equal(e->f.last_segment, SEG);
	assert_memory_equal(e->f.last_writer, writer, 16);
	assert_int_equal(e->f.last_first, 11);
	assert_int_equal(e->f.last_count, 1);
	assert_int_equal(e->f.last_len, 8);
	assert_int_equal(e->f.last_container, segname_container(SEG, 4));
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(metrics_render(e->reg, &b), 0);
	assert_int_equal(buf_append_u8(&b, 0), 0);
	assert_non_null(strstr((char *)b.data,
	                       "strata_segmentstore_appended_events_total 1"));
	assert_non_null(strstr((char *)b.data,
	                       "strata_segmentstore_appended_bytes_total 8"));
	assert_non_null(
	        strstr((char *)b.data,
	               "strata_segmentstore_append_latency_seconds_count 1"));
	buf_close(&b);
}

/* A body that does not parse is STRATA_EPROTO naming the message; the same
 * connection then serves a valid request. */
static void test_ss_server_malformed_body_connection_survives(void **state)
{
	struct env *e = *state;
	uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
	uint8_t *rep = NULL;
	size_t len = 0;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(rpc_call(e->cli, SS_METHOD_APPEND, 0, junk,
	                          sizeof(junk), &rep, &len, err),
	                 STRATA_EPROTO);
	strata_free(rep);
	assert_non_null(strstr(err, "AppendRequest"));
	Strata__V1__SegmentRequest r = STRATA__V1__SEGMENT_REQUEST__INIT;
	r.segment = SEG;
	ProtobufCMessage *out = NULL;
	e->f.reply.length = 5;
	assert_int_equal(call(e->cli, SS_METHOD_GET_INFO, &r.base,
	                      &strata__v1__segment_info_reply__descriptor, &out,
	                      err),
	                 0);
	assert_int_equal(((Strata__V1__SegmentInfoReply *)out)->length, 5);
	assert_string_equal(((Strata__V1__SegmentInfoReply *)out)->segment,
	                    SEG);
	rpc_pb_free(out);
}

/* Bad names, ids, event ranges and oversize blocks are refused before
 * the container sees them, each with a message saying what to fix. */
static void test_ss_server_rejects_bad_fields(void **state)
{
	struct env *e = *state;
	char err[STRATA_ERRMSG_SIZE];
	uint8_t data[8] = {4, 0, 0, 0, 'a', 'b', 'c', 'd'};
	Strata__V1__AppendRequest r = STRATA__V1__APPEND_REQUEST__INIT;
	r.segment = "no-slashes";
	r.writer_id.data = writer;
	r.writer_id.len = 16;
	r.event_count = 1;
	r.data.data = data;
	r.data.len = sizeof(data);
	r.expected_offset = -1;
	assert_int_equal(
	        call(e->cli, SS_METHOD_APPEND, &r.base, NULL, NULL, err),
	        STRATA_EBADNAME);
	assert_non_null(strstr(err, "no-slashes"));
	r.segment = SEG;
	r.writer_id.len = 3;
	assert_int_equal(
	        call(e->cli, SS_METHOD_APPEND, &r.base, NULL, NULL, err),
	        STRATA_EINVAL);
	assert_non_null(strstr(err, "16-byte"));
	r.writer_id.len = 16;
	r.event_count = 0;
	assert_int_equal(
	        call(e->cli, SS_METHOD_APPEND, &r.base, NULL, NULL, err),
	        STRATA_EINVAL);
	r.event_count = 1;
	r.first_event_number = -5;
	assert_int_equal(
	        call(e->cli, SS_METHOD_APPEND, &r.base, NULL, NULL, err),
	        STRATA_EINVAL);
	r.first_event_number = 0;
	static uint8_t big[64 * 1024 + 1];
	r.data.data = big;
	r.data.len = sizeof(big);
	uint8_t *packed = strata_malloc(sizeof(big) + 256);
	assert_non_null(packed);
	size_t len = protobuf_c_message_pack(&r.base, packed);
	uint8_t *rep = NULL;
	size_t rep_len = 0;
	assert_int_equal(rpc_call(e->cli, SS_METHOD_APPEND, 0, packed, len,
	                          &rep, &rep_len, err),
	                 STRATA_ETOOBIG);
	strata_free(rep);
	strata_free(packed);
	assert_non_null(strstr(err, "limits.max_append"));
	Strata__V1__AttributeRequest ar = STRATA__V1__ATTRIBUTE_REQUEST__INIT;
	ar.segment = SEG;
	assert_int_equal(call(e->cli, SS_METHOD_GET_ATTRIBUTE, &ar.base, NULL,
	                      NULL, err),
	                 STRATA_EINVAL);
	assert_int_equal(e->f.submits, 0);
}

/* Unknown methods are ENOTSUP; out-of-range containers EINVAL. */
static void test_ss_server_unknown_method_and_container(void **state)
{
	struct env *e = *state;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(call(e->cli, 299, NULL, NULL, NULL, err),
	                 STRATA_ENOTSUP);
	Strata__V1__ContainerStatusRequest r =
	        STRATA__V1__CONTAINER_STATUS_REQUEST__INIT;
	r.container = 4;
	assert_int_equal(call(e->cli, SS_METHOD_CONTAINER_STATUS, &r.base, NULL,
	                      NULL, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "0..3"));
}

/* Container status reports the local replica, or where it lives. */
static void test_ss_server_container_status(void **state)
{
	struct env *e = *state;
	char err[STRATA_ERRMSG_SIZE];
	Strata__V1__ContainerStatusRequest r =
	        STRATA__V1__CONTAINER_STATUS_REQUEST__INIT;
	r.container = 2;
	e->f.hosted = true;
	ProtobufCMessage *out = NULL;
	assert_int_equal(call(e->cli, SS_METHOD_CONTAINER_STATUS, &r.base,
	                      &strata__v1__container_status_reply__descriptor,
	                      &out, err),
	                 0);
	Strata__V1__ContainerStatusReply *s = (void *)out;
	assert_int_equal(s->container, 2);
	assert_int_equal(s->role, 3);
	assert_int_equal(s->term, 7);
	assert_int_equal(s->unflushed_bytes, 102);
	assert_string_equal(s->leader_url, "tcp://127.0.0.1:1");
	rpc_pb_free(out);
	e->f.hosted = false;
	snprintf(e->f.leader, sizeof(e->f.leader), "tcp://127.0.0.1:2");
	assert_int_equal(call(e->cli, SS_METHOD_CONTAINER_STATUS, &r.base,
	                      &strata__v1__container_status_reply__descriptor,
	                      &out, err),
	                 0);
	s = (void *)out;
	assert_int_equal(s->role, 0);
	assert_string_equal(s->leader_url, "tcp://127.0.0.1:2");
	rpc_pb_free(out);
}

/* A container not hosted here, or not led here, is answered EWRONGHOST
 * with the leader's URL, which the client follows to the right store;
 * with no leader known the answer is ENOTLEADER without a redirect, and
 * says so when the replica here stopped on a failed log write. */
static void test_ss_server_redirects_to_leader(void **state)
{
	struct env *e = *state;
	struct fake g;
	memset(&g, 0, sizeof(g));
	pthread_mutex_init(&g.mu, NULL);
	g.reply.length = 77;
	struct ss_server *other = start_server(&g, NULL, 4);
	snprintf(e->f.leader, sizeof(e->f.leader), "%s", ss_server_url(other));
	char err[STRATA_ERRMSG_SIZE];
	Strata__V1__SegmentRequest r = STRATA__V1__SEGMENT_REQUEST__INIT;
	r.segment = SEG;
	/* Not hosted here: the submit itself says so. */
	e->f.submit_rc = STRATA_EWRONGHOST;
	assert_int_equal(
	        call(e->cli, SS_METHOD_GET_INFO, &r.base, NULL, NULL, err),
	        STRATA_EWRONGHOST);
	assert_non_null(strstr(err, ss_server_url(other)));
	struct rpc_client *follow = open_client(ss_server_url(e->srv), 2);
	ProtobufCMessage *out = NULL;
	assert_int_equal(call(follow, SS_METHOD_GET_INFO, &r.base,
	                      &strata__v1__segment_info_reply__descriptor, &out,
	                      err),
	                 0);
	assert_int_equal(((Strata__V1__SegmentInfoReply *)out)->length, 77);
	rpc_pb_free(out);
	rpc_client_close(follow);
	/* Hosted, but the replica here is a follower. */
	e->f.submit_rc = 0;
	e->f.code = STRATA_ENOTLEADER;
	assert_int_equal(
	        call(e->cli, SS_METHOD_GET_INFO, &r.base, NULL, NULL, err),
	        STRATA_EWRONGHOST);
	/* No leader known. */
	e->f.leader[0] = '\0';
	assert_int_equal(
	        call(e->cli, SS_METHOD_GET_INFO, &r.base, NULL, NULL, err),
	        STRATA_ENOTLEADER);
	assert_non_null(strstr(err, "no known leader"));
	/* No leader known because the replica here left its group when its
	 * log failed: still ENOTLEADER (the others may take over), with the
	 * cause and the fix. */
	e->f.hosted = true;
	e->f.log_failed = true;
	assert_int_equal(
	        call(e->cli, SS_METHOD_GET_INFO, &r.base, NULL, NULL, err),
	        STRATA_ENOTLEADER);
	assert_non_null(strstr(err, "a write to its Raft log failed"));
	assert_non_null(
	        strstr(err, "the store restarts it once the disk is fixed"));
	e->f.hosted = false;
	e->f.log_failed = false;
	/* Its replica here did not start (a damaged log): not an election
	 * in progress, the cause. */
	e->f.start_failed = true;
	assert_int_equal(
	        call(e->cli, SS_METHOD_GET_INFO, &r.base, NULL, NULL, err),
	        STRATA_ENOTLEADER);
	assert_non_null(strstr(err, "did not start"));
	assert_null(strstr(err, "election"));
	e->f.start_failed = false;
	ss_server_stop(other);
	join_all(&g);
	pthread_mutex_destroy(&g.mu);
}

/* Container errors come back with their code and the append outcome
 * (last event number) so a writer can resynchronise. */
static void test_ss_server_error_keeps_append_outcome(void **state)
{
	struct env *e = *state;
	e->f.code = STRATA_EBADEVENTNUM;
	e->f.reply.last_event_number = 41;
	e->f.reply.length = 900;
	e->f.reply.message = "event 50 does not follow 41";
	uint8_t data[4] = {0, 0, 0, 0};
	Strata__V1__AppendRequest r = STRATA__V1__APPEND_REQUEST__INIT;
	r.segment = SEG;
	r.writer_id.data = writer;
	r.writer_id.len = 16;
	r.first_event_number = 50;
	r.event_count = 1;
	r.data.data = data;
	r.data.len = sizeof(data);
	r.expected_offset = -1;
	uint8_t buf[256];
	size_t len = protobuf_c_message_pack(&r.base, buf);
	uint8_t *rep = NULL;
	size_t rep_len = 0;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(rpc_call(e->cli, SS_METHOD_APPEND, 0, buf, len, &rep,
	                          &rep_len, err),
	                 STRATA_EBADEVENTNUM);
	assert_non_null(strstr(err, "does not follow 41"));
	Strata__V1__AppendReply *a = (void *)rpc_pb_unpack(
	        &strata__v1__append_reply__descriptor, rep, rep_len);
	assert_non_null(a);
	assert_int_equal(a->last_event_number, 41);
	assert_int_equal(a->length, 900);
	rpc_pb_free(&a->base);
	strata_free(rep);
	/* Back-pressure says to retry later. */
	e->f.code = STRATA_EAGAIN;
	e->f.reply.message = NULL;
	assert_int_equal(rpc_call(e->cli, SS_METHOD_APPEND, 0, buf, len, &rep,
	                          &rep_len, err),
	                 STRATA_EAGAIN);
	strata_free(rep);
	assert_non_null(strstr(err, "retry later"));
}

/* Reads pass offset, size (capped) and wait through; a truncated read
 * reports the first readable offset. */
static void test_ss_server_read_and_truncated(void **state)
{
	struct env *e = *state;
	static const uint8_t bytes[5] = {1, 2, 3, 4, 5};
	e->f.reply.data = bytes;
	e->f.reply.data_len = sizeof(bytes);
	e->f.reply.at_tail = true;
	Strata__V1__ReadRequest r = STRATA__V1__READ_REQUEST__INIT;
	r.segment = SEG;
	r.offset = 10;
	r.max_bytes = 0xffffffffu;
	r.wait_ms = 999999;
	ProtobufCMessage *out = NULL;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(call(e->cli, SS_METHOD_READ, &r.base,
	                      &strata__v1__read_reply__descriptor, &out, err),
	                 0);
	Strata__V1__ReadReply *rr = (void *)out;
	assert_int_equal(rr->offset, 10);
	assert_int_equal(rr->data.len, 5);
	assert_memory_equal(rr->data.data, bytes, 5);
	assert_true(rr->at_tail);
	rpc_pb_free(out);
	assert_int_equal(e->f.last_max_bytes, 8u * 1024 * 1024);
	assert_int_equal(e->f.last_wait_ms, 30000);
	e->f.code = STRATA_ETRUNCATED;
	e->f.reply.start_offset = 64;
	uint8_t buf[256];
	size_t len = protobuf_c_message_pack(&r.base, buf);
	uint8_t *rep = NULL;
	size_t rep_len = 0;
	assert_int_equal(rpc_call(e->cli, SS_METHOD_READ, 0, buf, len, &rep,
	                          &rep_len, err),
	                 STRATA_ETRUNCATED);
	rr = (void *)rpc_pb_unpack(&strata__v1__read_reply__descriptor, rep,
	                           rep_len);
	assert_non_null(rr);
	assert_int_equal(rr->start_offset, 64);
	rpc_pb_free(&rr->base);
	strata_free(rep);
}

/* Merges only within one container; a transaction segment merges into
 * its parent's container. */
static void test_ss_server_merge_same_container_only(void **state)
{
	struct env *e = *state;
	char err[STRATA_ERRMSG_SIZE];
	Strata__V1__MergeRequest m = STRATA__V1__MERGE_REQUEST__INIT;
	m.target = SEG;
	m.source = SEG "#transaction.5";
	assert_int_equal(
	        call(e->cli, SS_METHOD_MERGE, &m.base, NULL, NULL, err), 0);
	assert_int_equal(e->f.last_op, CONTAINER_MERGE);
	assert_string_equal(e->f.last_source, SEG "#transaction.5");
	/* Find a name in another container. */
	char other[64];
	for (int i = 1;; i++) {
		snprintf(other, sizeof(other), "sc/st/%d.#epoch.0", i);
		if (segname_container(other, 4) != segname_container(SEG, 4)) {
			break;
		}
	}
	m.source = other;
	assert_int_equal(
	        call(e->cli, SS_METHOD_MERGE, &m.base, NULL, NULL, err),
	        STRATA_EINVAL);
	assert_non_null(strstr(err, "different containers"));
}

/* Stopping the server with a request still in a container is safe: the
 * late completion finds the server alive (reference) and is dropped. */
static void test_ss_server_stop_with_pending_request(void **state)
{
	(void)state;
	struct fake f;
	memset(&f, 0, sizeof(f));
	pthread_mutex_init(&f.mu, NULL);
	f.hold = true;
	struct ss_server *srv = start_server(&f, NULL, 2);
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.timeout_ms = 300;
	o.retries = 0;
	const char *url = ss_server_url(srv);
	struct rpc_client *cli = NULL;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(rpc_client_open(&cli, &url, 1, &o, err), 0);
	Strata__V1__SegmentRequest r = STRATA__V1__SEGMENT_REQUEST__INIT;
	r.segment = SEG;
	assert_int_equal(call(cli, SS_METHOD_SEAL, &r.base, NULL, NULL, err),
	                 STRATA_ETIMEDOUT);
	assert_non_null(f.held_done);
	ss_server_stop(srv);
	f.held_done(f.held_arg, STRATA_ESHUTDOWN, NULL);
	rpc_client_close(cli);
	pthread_mutex_destroy(&f.mu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_ss_server_append_roundtrip,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_ss_server_malformed_body_connection_survives,
	                setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_ss_server_rejects_bad_fields, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_ss_server_unknown_method_and_container, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_ss_server_container_status,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_ss_server_redirects_to_leader, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_ss_server_error_keeps_append_outcome, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_ss_server_read_and_truncated, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_ss_server_merge_same_container_only, setup,
	                teardown),
	        cmocka_unit_test(test_ss_server_stop_with_pending_request),
	};
	return cmocka_run_group_tests_name("ss_server", tests, NULL, NULL);
}
