/* libFuzzer harness: the segment store's request path (segmentstore/
 * server.c) on untrusted bodies, end to end: a real ss_server on
 * 127.0.0.1 with a fake container backend, driven by a real rpc_client.
 *
 * An input is up to 8 requests, each [method u8][mode u8][len u16 LE]
 * [len body bytes] (the last takes whatever remains). method picks
 * 201 + method % 13 (212 = CONTAINER_STATUS, 213 = unknown); mode picks
 * what the fake backend does with a request the server accepted: refuse
 * it EWRONGHOST (with or without a leader URL) or another code, or
 * complete it later, with success (a SETUP_APPEND reply then arms the
 * server's per-writer ordering) or an error. Checks: the server never
 * crashes, hangs or hands the backend a request that breaks the checks it
 * promises (valid segment names, its container, APPEND/READ bounds); a
 * body that is not the method's protobuf is answered STRATA_EPROTO.
 * The server lives for the whole process, so the ordering table carries
 * over between inputs. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/rpc.h"
#include "common/segname.h"
#include "segmentstore/server.h"
#include "strata/error.h"
#include "strata/v1/segmentstore.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CONTAINERS 4u
#define MAX_APPEND 1024u
#define MAX_REQUESTS 8

/* A completion the completer thread delivers. */
struct job {
	struct job *next;
	container_done_fn done;
	void *arg;
	int code;
	int64_t last_event; /* SETUP_APPEND/APPEND reply */
	bool read_data;     /* READ: return some bytes */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct job *head;
static struct job **tail = &head;
static uint8_t cur_mode; /* mode of the request being sent */
static struct ss_server *srv;
static struct rpc_client *cli;

/* Completion codes the container may report (container.h). */
static const int done_codes[] = {
        STRATA_ENOTLEADER,   STRATA_EAGAIN,     STRATA_ETOOBIG,
        STRATA_ESEALED,      STRATA_ENOENT,     STRATA_EEXIST,
        STRATA_EBADEVENTNUM, STRATA_EBADOFFSET, STRATA_ETRUNCATED,
        STRATA_ECONFLICT,    STRATA_EPROTO,     STRATA_ELEADERLOST,
        STRATA_ESHUTDOWN,    STRATA_EIO,        STRATA_ENOMEM,
};
#define N_DONE_CODES (sizeof(done_codes) / sizeof(done_codes[0]))

static void *completer_main(void *unused)
{
	(void)unused;
	static const uint8_t bytes[64] = {4, 0, 0, 0, 'a', 'b', 'c', 'd'};
	for (;;) {
		pthread_mutex_lock(&mu);
		while (head == NULL) {
			pthread_cond_wait(&cv, &mu);
		}
		struct job *j = head;
		head = j->next;
		if (head == NULL) {
			tail = &head;
		}
		pthread_mutex_unlock(&mu);
		struct container_reply r;
		memset(&r, 0, sizeof(r));
		r.offset = 8;
		r.length = 64;
		r.start_offset = 0;
		r.flushed_length = 8;
		r.last_event_number = j->last_event;
		r.duplicate = j->last_event > 5;
		r.sealed = j->code == STRATA_ESEALED;
		r.at_tail = true;
		r.attr_present = true;
		r.attr_value = 42;
		r.data = j->read_data ? bytes : NULL;
		r.data_len = j->read_data ? sizeof(bytes) : 0;
		r.message =
		        j->code != 0 && (j->code & 1) ? "fake detail" : NULL;
		j->done(j->arg, j->code, &r);
		strata_free(j);
	}
	return NULL;
}

/* The invariants server.c promises for every request it submits. */
static void check_request(uint32_t container, const struct container_request *q)
{
	struct segname_parts parts;
	char err[STRATA_ERRMSG_SIZE];
	if (q->segment == NULL || segname_parse(q->segment, &parts, err) != 0 ||
	    container >= CONTAINERS ||
	    segname_container(q->segment, CONTAINERS) != container) {
		abort();
	}
	switch (q->op) {
	case CONTAINER_APPEND:
		if (q->event_count == 0 || q->len < 4 || q->len > MAX_APPEND ||
		    q->data == NULL || q->first_event_number < 0 ||
		    q->expected_offset < -1 ||
		    (uint64_t)q->first_event_number >
		            (uint64_t)INT64_MAX - (q->event_count - 1)) {
			abort();
		}
		break;
	case CONTAINER_READ:
		if (q->max_bytes == 0 || q->max_bytes > 8u * 1024 * 1024 ||
		    q->wait_ms > 30000) {
			abort();
		}
		break;
	case CONTAINER_MERGE:
		if (q->source == NULL ||
		    segname_parse(q->source, &parts, err) != 0 ||
		    segname_container(q->source, CONTAINERS) != container) {
			abort();
		}
		break;
	default:
		break;
	}
}

static int fake_submit(void *arg, uint32_t container,
                       const struct container_request *req,
                       container_done_fn done, void *done_arg)
{
	(void)arg;
	check_request(container, req);
	pthread_mutex_lock(&mu);
	uint8_t mode = cur_mode;
	pthread_mutex_unlock(&mu);
	switch (mode & 3) {
	case 0:
		return STRATA_EWRONGHOST;
	case 3:
		return (mode & 4) ? STRATA_ESHUTDOWN : STRATA_EAGAIN;
	default:
		break;
	}
	struct job *j = strata_calloc(1, sizeof(*j));
	if (j == NULL) {
		return STRATA_ENOMEM;
	}
	j->done = done;
	j->arg = done_arg;
	j->code = (mode & 3) == 1 ? 0 : done_codes[(mode >> 2) % N_DONE_CODES];
	j->last_event = (int64_t)(mode >> 4) - 1;
	j->read_data = (mode & 8) != 0;
	pthread_mutex_lock(&mu);
	*tail = j;
	tail = &j->next;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	return 0;
}

static void fake_leader_url(void *arg, uint32_t container, char *url,
                            size_t size)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	uint8_t mode = cur_mode;
	pthread_mutex_unlock(&mu);
	if (container >= CONTAINERS) {
		abort();
	}
	snprintf(url, size, "%s", (mode & 4) ? "" : "tcp://127.0.0.1:1");
}

static int fake_status(void *arg, uint32_t container,
                       struct container_status *out, char *leader, size_t size)
{
	(void)arg;
	if (container >= CONTAINERS) {
		abort();
	}
	if (container & 1) {
		return STRATA_ENOENT;
	}
	memset(out, 0, sizeof(*out));
	out->role = 3;
	out->term = 7;
	snprintf(leader, size, "%s", "tcp://127.0.0.1:1");
	return 0;
}

/* Start the server, client and completer once per process. */
static void start(void)
{
	struct ss_server_config cfg;
	char err[STRATA_ERRMSG_SIZE];
	memset(&cfg, 0, sizeof(cfg));
	cfg.listen = "tcp://127.0.0.1:0";
	cfg.config_key = "listen";
	cfg.n_contexts = 4;
	cfg.max_msg_bytes = 1024 * 1024;
	cfg.max_append_bytes = MAX_APPEND;
	cfg.drain_ms = 100;
	cfg.backend.container_count = CONTAINERS;
	cfg.backend.submit = fake_submit;
	cfg.backend.leader_url = fake_leader_url;
	cfg.backend.status = fake_status;
	pthread_t t;
	if (ss_server_start(&cfg, &srv, err) != 0 ||
	    pthread_create(&t, NULL, completer_main, NULL) != 0) {
		abort();
	}
	pthread_detach(t);
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.timeout_ms = 10000;
	o.retries = 0;
	o.max_redirects = 0;
	const char *url = ss_server_url(srv);
	if (rpc_client_open(&cli, &url, 1, &o, err) != 0) {
		abort();
	}
}

static void one(uint32_t method, uint8_t mode, const uint8_t *body, size_t len)
{
	pthread_mutex_lock(&mu);
	cur_mode = mode;
	pthread_mutex_unlock(&mu);
	uint8_t *rep = NULL;
	size_t rep_len = 0;
	char err[STRATA_ERRMSG_SIZE];
	int rc = rpc_call(cli, method, 0, body, len, &rep, &rep_len, err);
	strata_free(rep);
	if (rc == STRATA_ETIMEDOUT || rc == STRATA_ECLOSED ||
	    rc == STRATA_EUNAVAIL) {
		abort(); /* the server hung or died */
	}
	const ProtobufCMessageDescriptor *d = ss_request_descriptor(method);
	if (d == NULL) {
		if (rc != STRATA_ENOTSUP) {
			abort();
		}
		return;
	}
	ProtobufCMessage *m = rpc_pb_unpack(d, body, len);
	if (m == NULL && rc != STRATA_EPROTO) {
		abort(); /* an unparsable body was not answered EPROTO */
	}
	rpc_pb_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, start);
	for (int i = 0; i < MAX_REQUESTS && size >= 2; i++) {
		uint32_t method = SS_METHOD_CREATE_SEGMENT + data[0] % 13u;
		uint8_t mode = data[1];
		size_t len = size - 2;
		const uint8_t *body = data + 2;
		if (size >= 4) {
			size_t want = (size_t)data[2] | (size_t)data[3] << 8;
			if (want <= size - 4) {
				len = want;
				body = data + 4;
			}
		}
		/* rpc_call copies the body: hand it an exact-size copy so
		 * ASan sees any overread on our side too. */
		uint8_t *copy = strata_malloc(len == 0 ? 1 : len);
		if (copy == NULL) {
			return 0;
		}
		memcpy(copy, body, len);
		one(method, mode, copy, len);
		strata_free(copy);
		size -= (size_t)(body - data) + len;
		data = body + len;
	}
	return 0;
}
