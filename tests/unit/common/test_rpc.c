/* Unit tests for common/rpc.c and common/rpc_sp.c: envelope codec, server
 * and client over tcp://127.0.0.1 and inproc://; every test runs twice,
 * with NNG's rep0 socket and with Strata's own SP listener serving tcp. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "common/alloc.h"
#include "common/refbuf.h"
#include "common/rpc.h"
#include "common/sp.h"
#include "strata/error.h"
#include "strata/v1/error.pb-c.h"
#include "strata/v1/rpc.pb-c.h"
#include "tests/lib/oom.h"

/* Methods of the test service. */
#define M_ECHO 100u     /* reply the body */
#define M_FAIL 101u     /* reply STRATA_ENOENT with a message */
#define M_HOLD 102u     /* never reply; the test answers later */
#define M_LATER 103u    /* echo from another thread after 20 ms */
#define M_REDIRECT 104u /* ENOTLEADER to svc->redirect, or echo */
#define M_PB 105u       /* rpc_reply_pb: RpcRequest{method: len, body} */
#define M_TAIL 106u     /* the same, body as rpc_reply_pb_tail's copied tail */
#define M_TAIL_REF 107u /* the same, body in a refbuf the reply holds */
#define M_BIG 108u      /* reply a body of RPC_DEFAULT_MAX_MSG_BYTES */

#define MAX_HELD 64

struct later {
	struct later *next;
	struct rpc_call *call;
	const uint8_t *body;
	size_t len;
	int64_t due_ms;
};

struct svc {
	atomic_int calls; /* requests that reached the handler */
	const char *redirect;
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	struct rpc_call *held[MAX_HELD];
	int n_held;
	struct later *head, *tail; /* M_LATER queue, FIFO = due order */
	bool quit;
	pthread_t worker;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Answers M_LATER calls 20 ms after they arrived, from its own thread. */
static void *worker_main(void *arg)
{
	struct svc *s = arg;
	pthread_mutex_lock(&s->mtx);
	for (;;) {
		while (s->head == NULL && !s->quit) {
			pthread_cond_wait(&s->cv, &s->mtx);
		}
		if (s->head == NULL) {
			break;
		}
		struct later *l = s->head;
		s->head = l->next;
		if (s->head == NULL) {
			s->tail = NULL;
		}
		pthread_mutex_unlock(&s->mtx);
		int64_t wait = l->due_ms - now_ms();
		if (wait > 0) {
			usleep((useconds_t)wait * 1000);
		}
		/* body stays valid until the reply: echo it straight back */
		rpc_reply(l->call, 0, NULL, l->body, l->len);
		free(l);
		pthread_mutex_lock(&s->mtx);
	}
	pthread_mutex_unlock(&s->mtx);
	return NULL;
}

static void handler(void *arg, struct rpc_call *call, uint32_t method,
                    const uint8_t *body, size_t len)
{
	struct svc *s = arg;
	atomic_fetch_add(&s->calls, 1);
	switch (method) {
	case M_ECHO:
		rpc_reply(call, 0, NULL, body, len);
		break;
	case M_FAIL:
		rpc_reply(call, STRATA_ENOENT, "stream 'x' not found", NULL, 0);
		break;
	case M_BIG: {
		uint8_t *big = calloc(1, RPC_DEFAULT_MAX_MSG_BYTES);
		if (big == NULL) {
			abort();
		}
		rpc_reply(call, 0, NULL, big, RPC_DEFAULT_MAX_MSG_BYTES);
		free(big);
		break;
	}
	case M_HOLD:
		pthread_mutex_lock(&s->mtx);
		if (s->n_held >= MAX_HELD) {
			abort(); /* test bug; cmocka asserts only in main */
		}
		s->held[s->n_held++] = call;
		pthread_mutex_unlock(&s->mtx);
		break;
	case M_LATER: {
		struct later *l = malloc(sizeof(*l));
		if (l == NULL) {
			abort();
		}
		*l = (struct later){NULL, call, body, len, now_ms() + 20};
		pthread_mutex_lock(&s->mtx);
		if (s->tail != NULL) {
			s->tail->next = l;
		} else {
			s->head = l;
		}
		s->tail = l;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mtx);
		break;
	}
	case M_REDIRECT:
		if (s->redirect != NULL) {
			rpc_reply_redirect(call, STRATA_ENOTLEADER,
			                   "not the leader", s->redirect);
		} else {
			rpc_reply(call, 0, NULL, body, len);
		}
		break;
	case M_PB: {
		/* Packed straight into the reply: the body's length prefix is
		 * written by hand, so sizes cross varint widths. */
		Strata__V1__RpcRequest m = STRATA__V1__RPC_REQUEST__INIT;
		m.method = (uint32_t)len;
		m.body.data = (uint8_t *)body;
		m.body.len = len;
		rpc_reply_pb(call, 0, NULL, &m.base);
		break;
	}
	case M_TAIL:
	case M_TAIL_REF: {
		/* RpcRequest.body (field 2) goes after the packed message.
		 * The request's body is freed once answered, and the handler
		 * drops its reference at once: the reply's copy, or its
		 * reference, must keep the bytes until they are written. */
		Strata__V1__RpcRequest m = STRATA__V1__RPC_REQUEST__INIT;
		m.method = (uint32_t)len;
		struct refbuf *ref = NULL;
		const uint8_t *data = body;
		if (method == M_TAIL_REF && len > 0) {
			ref = refbuf_copy(body, len);
			if (ref == NULL) { /* test_rpc_oom_sweep */
				rpc_reply(call, STRATA_ENOMEM, NULL, NULL, 0);
				break;
			}
			data = ref->data;
		}
		rpc_reply_pb_tail(call, 0, NULL, &m.base, 2, data, len, ref);
		refbuf_release(ref); /* ASan: a use after free if unheld */
		break;
	}
	default:
		rpc_reply_unknown_method(call, method);
	}
}

/* A service on the heap, freed by svc_join. Not on the test's stack: a
 * failing test leaves its server running (cmocka jumps out of it), and the
 * next test would reuse that stack under the server's threads and hang
 * instead of running (seen). */
static struct svc *svc_new(void)
{
	struct svc *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	atomic_init(&s->calls, 0);
	pthread_mutex_init(&s->mtx, NULL);
	pthread_cond_init(&s->cv, NULL);
	assert_int_equal(pthread_create(&s->worker, NULL, worker_main, s), 0);
	return s;
}

/* Stop the worker once its queue is empty and free s; call after the
 * servers stop. */
static void svc_join(struct svc *s)
{
	pthread_mutex_lock(&s->mtx);
	s->quit = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mtx);
	pthread_join(s->worker, NULL);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mtx);
	free(s);
}

/* Servers use Strata's own SP listener for tcp:// (the second run of the
 * group) instead of NNG's rep0 socket (the first). */
static bool own_tcp;

static struct rpc_server *start(struct svc *s, const char *url,
                                const struct rpc_server_opts *o)
{
	struct rpc_server *srv = NULL;
	char err[STRATA_ERRMSG_SIZE];
	struct rpc_server_opts so;
	if (o != NULL) {
		so = *o;
	} else {
		rpc_server_opts_default(&so);
	}
	so.own_tcp = own_tcp;
	int rc = rpc_server_start(&srv, url, &so, handler, s, err);
	if (rc != 0) {
		fail_msg("rpc_server_start %s: %s", url, err);
	}
	return srv;
}

static struct rpc_client *open1(const char *url, int timeout_ms, int retries)
{
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.timeout_ms = timeout_ms;
	o.retries = retries;
	o.connect_timeout_ms = 300;
	o.backoff_base_ms = 10;
	o.backoff_max_ms = 40;
	struct rpc_client *cli = NULL;
	char err[STRATA_ERRMSG_SIZE];
	const char *urls[] = {url};
	assert_int_equal(rpc_client_open(&cli, urls, 1, &o, err), 0);
	return cli;
}

static void dead_url(char *buf, size_t size)
{
	struct svc *s = svc_new();
	struct rpc_server *srv = start(s, "tcp://127.0.0.1:0", NULL);
	snprintf(buf, size, "%s", rpc_server_url(srv));
	rpc_server_stop(srv);
	svc_join(s);
}

static void echo_ok(struct rpc_client *cli, const char *text)
{
	uint8_t *rep;
	size_t n;
	char err[STRATA_ERRMSG_SIZE];
	int rc = rpc_call(cli, M_ECHO, RPC_IDEMPOTENT, (const uint8_t *)text,
	                  strlen(text), &rep, &n, err);
	if (rc != 0) {
		fail_msg("echo: %s", err);
	}
	assert_int_equal(n, strlen(text));
	assert_memory_equal(rep, text, n);
	strata_free(rep);
}

/* Requests and replies survive the codec; empty bodies decode as NULL. */
static void test_rpc_envelope_roundtrip(void **state)
{
	(void)state;
	uint8_t *buf;
	size_t n;
	struct rpc_request req;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(
	        rpc_request_encode(7, (const uint8_t *)"abc", 3, &buf, &n), 0);
	assert_int_equal(rpc_request_decode(buf, n, &req, err), 0);
	assert_int_equal(req.method, 7);
	assert_int_equal(req.len, 3);
	assert_memory_equal(req.body, "abc", 3);
	rpc_request_release(&req);
	strata_free(buf);

	struct rpc_reply_info rep;
	assert_int_equal(rpc_reply_encode(STRATA_ENOTLEADER, "go there",
	                                  "tcp://h:1", NULL, 0, &buf, &n),
	                 0);
	assert_int_equal(rpc_reply_decode(buf, n, &rep, err), 0);
	assert_int_equal(rep.code, STRATA_ENOTLEADER);
	assert_string_equal(rep.message, "go there");
	assert_string_equal(rep.redirect, "tcp://h:1");
	assert_null(rep.body);
	assert_int_equal(rep.len, 0);
	rpc_reply_release(&rep);
	strata_free(buf);

	/* An empty reply is a success with no body (proto3 defaults). */
	assert_int_equal(rpc_reply_decode(NULL, 0, &rep, err), 0);
	assert_int_equal(rep.code, 0);
	assert_string_equal(rep.message, "");
	rpc_reply_release(&rep);
}

/* A plain reply's body is read in place (borrowed from the input, not
 * copied); anything else (a status sent twice) decodes as protobuf-c
 * decodes it. */
static void test_rpc_reply_decode_in_place(void **state)
{
	(void)state;
	char err[STRATA_ERRMSG_SIZE];
	uint8_t *buf;
	size_t n;
	assert_int_equal(rpc_reply_encode(STRATA_ETRUNCATED, "cut", NULL,
	                                  (const uint8_t *)"payload", 7, &buf,
	                                  &n),
	                 0);
	struct rpc_reply_info rep;
	assert_int_equal(rpc_reply_decode(buf, n, &rep, err), 0);
	assert_int_equal(rep.code, STRATA_ETRUNCATED);
	assert_string_equal(rep.message, "cut");
	assert_int_equal(rep.len, 7);
	assert_true(rep.body >= buf && rep.body + rep.len <= buf + n);
	assert_memory_equal(rep.body, "payload", 7);
	rpc_reply_release(&rep);
	strata_free(buf);

	/* status {code: 3} status {message: "m"} body "b" unknown 9 = 1 */
	const uint8_t twice[] = {0x0a, 0x02, 0x08, 0x03, 0x0a, 0x03, 0x12,
	                         0x01, 'm',  0x12, 0x01, 'b',  0x48, 0x01};
	assert_int_equal(rpc_reply_decode(twice, sizeof(twice), &rep, err), 0);
	Strata__V1__RpcReply *m = (Strata__V1__RpcReply *)rpc_pb_unpack(
	        &strata__v1__rpc_reply__descriptor, twice, sizeof(twice));
	assert_non_null(m);
	assert_int_equal(rep.code, (int)m->status->code);
	assert_string_equal(rep.message, m->status->message);
	rpc_pb_free(&m->base);
	assert_int_equal(rep.len, 1);
	assert_memory_equal(rep.body, "b", 1);
	rpc_reply_release(&rep);
}

/* A plain request's body is read in place too; a method sent twice (not
 * plain) decodes as protobuf-c decodes it (the last one wins). */
static void test_rpc_request_decode_in_place(void **state)
{
	(void)state;
	char err[STRATA_ERRMSG_SIZE];
	uint8_t *buf;
	size_t n;
	assert_int_equal(
	        rpc_request_encode(12, (const uint8_t *)"body", 4, &buf, &n),
	        0);
	struct rpc_request req;
	assert_int_equal(rpc_request_decode(buf, n, &req, err), 0);
	assert_int_equal(req.method, 12);
	assert_null(req.pb);
	assert_true(req.body >= buf && req.body + req.len <= buf + n);
	assert_memory_equal(req.body, "body", 4);
	rpc_request_release(&req);
	strata_free(buf);

	/* method 3, body "b", method 5, unknown field 9 = 1 */
	const uint8_t twice[] = {0x08, 0x03, 0x12, 0x01, 'b',
	                         0x08, 0x05, 0x48, 0x01};
	assert_int_equal(rpc_request_decode(twice, sizeof(twice), &req, err),
	                 0);
	assert_non_null(req.pb);
	assert_int_equal(req.method, 5);
	assert_int_equal(req.len, 1);
	assert_memory_equal(req.body, "b", 1);
	rpc_request_release(&req);
}

/* Unpacking into an arena: a flat message of rpc_pb_arena_size() fits
 * whole; a small arena spills to the heap, and rpc_pb_arena_free frees
 * exactly that (ASan's leak check); the messages are equal either way. */
static void test_rpc_pb_unpack_arena(void **state)
{
	(void)state;
	uint8_t body[1000];
	for (size_t i = 0; i < sizeof(body); i++) {
		body[i] = (uint8_t)(i * 13);
	}
	uint8_t *buf;
	size_t n;
	assert_int_equal(rpc_request_encode(4, body, sizeof(body), &buf, &n),
	                 0);
	const ProtobufCMessageDescriptor *d =
	        &strata__v1__rpc_request__descriptor;
	size_t cap = rpc_pb_arena_size(d, n);
	_Alignas(max_align_t) static uint8_t space[4096];
	assert_true(cap <= sizeof(space));
	size_t caps[] = {cap, 16, 0};
	for (size_t k = 0; k < 3; k++) {
		struct rpc_pb_arena a;
		rpc_pb_arena_init(&a, space, caps[k]);
		Strata__V1__RpcRequest *m =
		        (Strata__V1__RpcRequest *)rpc_pb_unpack_arena(d, buf, n,
		                                                      &a);
		assert_non_null(m);
		assert_false(a.oom);
		assert_int_equal(m->method, 4);
		assert_int_equal(m->body.len, sizeof(body));
		assert_memory_equal(m->body.data, body, sizeof(body));
		bool inside =
		        m->body.data >= space && m->body.data < space + caps[k];
		assert_true(inside == (k == 0));
		assert_true(a.used <= caps[k]);
		rpc_pb_arena_free(&m->base, &a);
	}
	/* What does not parse leaves nothing behind either. */
	struct rpc_pb_arena a;
	rpc_pb_arena_init(&a, space, 16);
	assert_null(rpc_pb_unpack_arena(d, buf, n - 1, &a));
	strata_free(buf);
}

/* Garbage, truncation, method 0 and negative codes are EPROTO, not
 * crashes; OOM while decoding is ENOMEM, not EPROTO. */
static void test_rpc_envelope_decode_rejects_garbage(void **state)
{
	(void)state;
	struct rpc_request req;
	struct rpc_reply_info rep;
	char err[STRATA_ERRMSG_SIZE];
	const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	assert_int_equal(
	        rpc_request_decode(garbage, sizeof(garbage), &req, err),
	        STRATA_EPROTO);
	assert_non_null(strstr(err, "malformed request envelope"));
	assert_int_equal(rpc_request_decode(NULL, 0, &req, err), STRATA_EPROTO);
	assert_non_null(strstr(err, "method 0"));
	/* body claims 100 bytes, has 2 */
	const uint8_t trunc[] = {0x08, 0x05, 0x12, 0x64, 'a', 'b'};
	assert_int_equal(rpc_request_decode(trunc, sizeof(trunc), &req, err),
	                 STRATA_EPROTO);
	assert_int_equal(rpc_reply_decode(trunc, sizeof(trunc), &rep, err),
	                 STRATA_EPROTO);
	/* status { code: -1 } */
	const uint8_t neg[] = {0x0a, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff,
	                       0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	assert_int_equal(rpc_reply_decode(neg, sizeof(neg), &rep, err),
	                 STRATA_EPROTO);

	uint8_t *buf;
	size_t n;
	assert_int_equal(
	        rpc_request_encode(9, (const uint8_t *)"xyz", 3, &buf, &n), 0);
	int rc = STRATA_ENOMEM;
	for (long k = 1; rc == STRATA_ENOMEM; k++) {
		oom_install(k);
		rc = rpc_request_decode(buf, n, &req, err);
		oom_uninstall();
		assert_true(rc == 0 || rc == STRATA_ENOMEM);
	}
	rpc_request_release(&req);
	strata_free(buf);
}

static void roundtrip(const char *url)
{
	struct svc *s = svc_new();
	struct rpc_server *srv = start(s, url, NULL);
	struct rpc_client *cli = open1(rpc_server_url(srv), 2000, 1);
	char err[STRATA_ERRMSG_SIZE];
	uint8_t *rep;
	size_t n;

	echo_ok(cli, "hello strata");
	/* Empty request, empty reply. */
	assert_int_equal(rpc_call(cli, M_ECHO, 0, NULL, 0, &rep, &n, err), 0);
	assert_null(rep);
	assert_int_equal(n, 0);
	/* Ping is answered by the server without the handler. */
	assert_int_equal(
	        rpc_call(cli, RPC_METHOD_PING, 0, NULL, 0, &rep, &n, err), 0);
	/* A service error comes back with the server's message. */
	assert_int_equal(rpc_call(cli, M_FAIL, 0, NULL, 0, &rep, &n, err),
	                 STRATA_ENOENT);
	assert_string_equal(err, "stream 'x' not found");
	/* Unknown methods are ENOTSUP naming the method. */
	assert_int_equal(rpc_call(cli, 4242, 0, NULL, 0, &rep, &n, err),
	                 STRATA_ENOTSUP);
	assert_non_null(strstr(err, "4242"));
	/* protobuf convenience: Status echoed back and unpacked. */
	Strata__V1__Status st = STRATA__V1__STATUS__INIT;
	st.code = STRATA__V1__ERROR_CODE__ERROR_CODE_ESEALED;
	st.message = "sealed";
	ProtobufCMessage *out;
	assert_int_equal(rpc_call_pb(cli, M_ECHO, 0, &st.base,
	                             &strata__v1__status__descriptor, &out,
	                             err),
	                 0);
	Strata__V1__Status *got = (Strata__V1__Status *)out;
	assert_int_equal(got->code, STRATA__V1__ERROR_CODE__ERROR_CODE_ESEALED);
	assert_string_equal(got->message, "sealed");
	rpc_pb_free(out);
	/* Bytes are bytes: the echo does not care what they mean. */
	const uint8_t bad[] = {0xff, 0xff, 0xff};
	assert_int_equal(
	        rpc_call(cli, M_ECHO, 0, bad, sizeof(bad), &rep, &n, err), 0);
	assert_int_equal(n, sizeof(bad));
	strata_free(rep);
	assert_int_equal(s->calls, 6);

	rpc_client_close(cli);
	rpc_server_stop(srv);
	svc_join(s);
}

/* Echo, ping, service error, unknown method and pb calls over TCP. */
static void test_rpc_roundtrip_tcp(void **state)
{
	(void)state;
	roundtrip("tcp://127.0.0.1:0");
}

/* The same over inproc://. */
static void test_rpc_roundtrip_inproc(void **state)
{
	(void)state;
	roundtrip("inproc://strata-test-rpc");
}

/* Call method (M_PB, M_TAIL, M_TAIL_REF) with data[0..len): the reply is
 * RpcRequest{method: len, body: the same bytes}. */
static void expect_pb_echo(struct rpc_client *cli, uint32_t method,
                           const uint8_t *data, size_t len)
{
	char err[STRATA_ERRMSG_SIZE];
	uint8_t *rep = NULL;
	size_t n = 0;
	assert_int_equal(rpc_call(cli, method, 0, data, len, &rep, &n, err), 0);
	Strata__V1__RpcRequest *m = (Strata__V1__RpcRequest *)rpc_pb_unpack(
	        &strata__v1__rpc_request__descriptor,
	        rep != NULL ? rep : (const uint8_t *)"", n);
	assert_non_null(m);
	assert_int_equal(m->method, len);
	assert_int_equal(m->body.len, len);
	if (len > 0) {
		assert_memory_equal(m->body.data, data, len);
	}
	rpc_pb_free(&m->base);
	strata_free(rep);
}

/* rpc_reply_pb packs the message into the reply envelope itself: bodies
 * whose length prefix takes 1, 2 and 3 bytes, and an empty message, come
 * back whole. */
static void test_rpc_reply_pb_sizes(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server *srv = start(s, "tcp://127.0.0.1:0", NULL);
	struct rpc_client *cli = open1(rpc_server_url(srv), 2000, 0);
	static uint8_t data[70000];
	for (size_t i = 0; i < sizeof(data); i++) {
		data[i] = (uint8_t)(i * 31u + 7u);
	}
	const size_t sizes[] = {0, 1, 100, 200, 16000, 20000, 70000};
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		expect_pb_echo(cli, M_PB, data, sizes[k]);
	}
	rpc_client_close(cli);
	rpc_server_stop(srv);
	svc_join(s);
}

struct tail_pend {
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	int left;
	int bad;
	const uint8_t *data;
	size_t len;
};

static void tail_cb(void *arg, int code, const char *errmsg,
                    struct rpc_body *body)
{
	(void)errmsg;
	struct tail_pend *p = arg;
	Strata__V1__RpcRequest *m =
	        code != 0 ? NULL
	                  : (Strata__V1__RpcRequest *)rpc_pb_unpack(
	                            &strata__v1__rpc_request__descriptor,
	                            body->data, body->len);
	bool ok = m != NULL && m->method == p->len && m->body.len == p->len &&
	          memcmp(m->body.data, p->data, p->len) == 0;
	if (m != NULL) {
		rpc_pb_free(&m->base);
	}
	rpc_body_free(body);
	pthread_mutex_lock(&p->mtx);
	p->bad += !ok;
	p->left--;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mtx);
}

/* rpc_reply_pb_tail: the bytes field sent after the packed message,
 * copied or from a held refbuf, comes back whole at every length-prefix
 * width and beyond what one socket write takes (3 MiB); 16 such replies
 * in flight at once queue behind each other and are written in parts. */
static void test_rpc_reply_pb_tail(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server *srv = start(s, "tcp://127.0.0.1:0", NULL);
	struct rpc_client *cli = open1(rpc_server_url(srv), 10000, 0);
	char err[STRATA_ERRMSG_SIZE];
	size_t max = 3u << 20;
	uint8_t *data = malloc(max);
	assert_non_null(data);
	for (size_t i = 0; i < max; i++) {
		data[i] = (uint8_t)(i * 31u + 7u + i / 251u);
	}
	const size_t sizes[] = {0, 1, 100, 200, 16000, 20000, 70000, 3u << 20};
	for (uint32_t method = M_TAIL; method <= M_TAIL_REF; method++) {
		for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			expect_pb_echo(cli, method, data, sizes[k]);
		}
	}
	struct tail_pend p = {.left = 16, .data = data, .len = 1u << 20};
	pthread_mutex_init(&p.mtx, NULL);
	pthread_cond_init(&p.cv, NULL);
	for (int i = 0; i < 16; i++) {
		assert_int_equal(rpc_call_async(cli, M_TAIL_REF, 0, data, p.len,
		                                tail_cb, &p, err),
		                 0);
	}
	pthread_mutex_lock(&p.mtx);
	while (p.left > 0) {
		pthread_cond_wait(&p.cv, &p.mtx);
	}
	pthread_mutex_unlock(&p.mtx);
	assert_int_equal(p.bad, 0);
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mtx);
	free(data);
	rpc_client_close(cli);
	rpc_server_stop(srv);
	svc_join(s);
}

#define UNREAD_N 256              /* requests of the client that reads late */
#define UNREAD_BODY (256u * 1024) /* each echoed back */

/* Connect a raw SP req0 peer to url (tcp://127.0.0.1:PORT); its fd. */
static int raw_sp_connect(const char *url)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	assert_true(sp_url_addr(url, false, &sa, &salen));
	int fd = socket(sa.ss_family, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, salen), 0);
	const uint8_t hello[8] = {0, 'S', 'P', 0, 0, SP_PROTO_REQ0, 0, 0};
	assert_int_equal(send(fd, hello, sizeof(hello), 0), sizeof(hello));
	return fd;
}

/* One SP frame of an echo request of UNREAD_BODY bytes (its request id
 * at bytes 8..11, for the caller to set); *flen its length. Free it. */
static uint8_t *echo_frame(size_t *flen)
{
	uint8_t *body = malloc(UNREAD_BODY);
	assert_non_null(body);
	memset(body, 'u', UNREAD_BODY);
	Strata__V1__RpcRequest rq = STRATA__V1__RPC_REQUEST__INIT;
	rq.method = M_ECHO;
	rq.body.data = body;
	rq.body.len = UNREAD_BODY;
	size_t plen = strata__v1__rpc_request__get_packed_size(&rq);
	*flen = SP_HDR + plen;
	uint8_t *frame = malloc(*flen);
	assert_non_null(frame);
	sp_put_be64(frame, 4 + (uint64_t)plen);
	strata__v1__rpc_request__pack(&rq, frame + SP_HDR);
	free(body);
	return frame;
}

/*
 * A client that sends many requests and reads no reply: the server stops
 * reading it once its unwritten replies pass max_queued_bytes (1 MiB
 * here), so its memory stays bounded and the client's sends block in
 * TCP; when the client reads, every request is answered once. (On an
 * NNG socket the n_contexts bound does the same.)
 */
static void test_rpc_unread_replies_bounded(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server_opts o;
	rpc_server_opts_default(&o);
	o.max_queued_bytes = 1u << 20;
	struct rpc_server *srv = start(s, "tcp://127.0.0.1:0", &o);
	int fd = raw_sp_connect(rpc_server_url(srv));
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK),
	                 0);
	size_t flen;
	uint8_t *frame = echo_frame(&flen);

	/* Send what the sockets take, until all is sent or nothing more
	 * went for half a second: without the bound the server reads on and
	 * everything goes. */
	int sent = 0;
	size_t off = 0; /* bytes of frame `sent` already written */
	for (int idle = 0; sent < UNREAD_N && idle < 10; idle++) {
		int before = sent;
		while (sent < UNREAD_N) {
			sp_put_be32(frame + 8, 0x80000000u | (uint32_t)sent);
			ssize_t w =
			        send(fd, frame + off, flen - off, MSG_NOSIGNAL);
			if (w < 0) {
				assert_true(errno == EAGAIN ||
				            errno == EWOULDBLOCK);
				break;
			}
			off += (size_t)w;
			if (off == flen) {
				off = 0;
				sent++;
			}
		}
		if (sent != before) {
			idle = 0;
		}
		usleep(50 * 1000);
	}
	int calls = atomic_load(&s->calls);
	print_message("client held back after %d of %d requests; %d served\n",
	              sent, UNREAD_N, calls);
	assert_true(sent < UNREAD_N); /* the client was held back */
	assert_true(calls < UNREAD_N);

	/* Now read: every request is answered, once. */
	bool seen[UNREAD_N] = {false};
	struct sp_rx rx;
	sp_rx_init(&rx, UNREAD_BODY + 4096, SP_PROTO_REP0);
	int got = 0;
	uint8_t buf[65536];
	int64_t end = now_ms() + 20000;
	while (got < UNREAD_N && now_ms() < end) {
		struct pollfd pfd = {.fd = fd,
		                     .events = POLLIN |
		                               (sent < UNREAD_N ? POLLOUT : 0)};
		poll(&pfd, 1, 100);
		if ((pfd.revents & POLLOUT) != 0 && sent < UNREAD_N) {
			sp_put_be32(frame + 8, 0x80000000u | (uint32_t)sent);
			ssize_t w =
			        send(fd, frame + off, flen - off, MSG_NOSIGNAL);
			if (w > 0) {
				off += (size_t)w;
				if (off == flen) {
					off = 0;
					sent++;
				}
			}
		}
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		for (ssize_t at = 0; n > 0 && at < n;) {
			char why[STRATA_ERRMSG_SIZE];
			uint32_t id;
			void *msg;
			ssize_t k = sp_rx_feed(&rx, buf + at, (size_t)(n - at),
			                       &id, &msg, why);
			if (k < 0) {
				fail_msg("reply stream: %s", why);
			}
			at += k;
			if (msg != NULL) {
				/* NNG's contexts may answer out of order */
				assert_true(id < UNREAD_N && !seen[id]);
				seen[id] = true;
				assert_true(nng_msg_len(msg) > UNREAD_BODY);
				nng_msg_free(msg);
				got++;
			}
		}
	}
	assert_int_equal(got, UNREAD_N);
	assert_int_equal(atomic_load(&s->calls), UNREAD_N);
	sp_rx_reset(&rx);
	close(fd);
	free(frame);
	rpc_server_stop(srv);
	svc_join(s);
}

/* Whether the server greeted fd (its 8-byte SP rep0 header) within
 * timeout_ms: it does as soon as it accepts the connection. */
static bool raw_greeted(int fd, int timeout_ms)
{
	static const uint8_t want[8] = {0, 'S', 'P', 0, 0, SP_PROTO_REP0, 0, 0};
	uint8_t got[8];
	size_t have = 0;
	int64_t end = now_ms() + timeout_ms;
	while (have < sizeof(got)) {
		int64_t left = end - now_ms();
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			return false;
		}
		ssize_t n = recv(fd, got + have, sizeof(got) - have, 0);
		if (n <= 0) {
			return false;
		}
		have += (size_t)n;
	}
	assert_memory_equal(got, want, sizeof(want));
	return true;
}

/* Send one echo request of a greeted raw peer and read its reply. */
static void raw_echo(int fd, uint32_t id)
{
	uint8_t body[16];
	memset(body, 'e', sizeof(body));
	Strata__V1__RpcRequest rq = STRATA__V1__RPC_REQUEST__INIT;
	rq.method = M_ECHO;
	rq.body.data = body;
	rq.body.len = sizeof(body);
	size_t plen = strata__v1__rpc_request__get_packed_size(&rq);
	uint8_t frame[SP_HDR + 64];
	assert_true(plen <= 64);
	sp_put_be64(frame, 4 + (uint64_t)plen);
	sp_put_be32(frame + 8, 0x80000000u | id);
	strata__v1__rpc_request__pack(&rq, frame + SP_HDR);
	assert_int_equal(send(fd, frame, SP_HDR + plen, MSG_NOSIGNAL),
	                 (ssize_t)(SP_HDR + plen));
	struct sp_rx rx;
	sp_rx_init(&rx, 4096, SP_PROTO_REP0);
	void *msg = NULL;
	uint32_t got_id = 0;
	/* raw_greeted read the server's header: give it to the parser. */
	static const uint8_t rep0[8] = {0, 'S', 'P', 0, 0, SP_PROTO_REP0, 0, 0};
	char why0[STRATA_ERRMSG_SIZE];
	assert_int_equal(
	        sp_rx_feed(&rx, rep0, sizeof(rep0), &got_id, &msg, why0),
	        (ssize_t)sizeof(rep0));
	int64_t end = now_ms() + 5000;
	while (msg == NULL && now_ms() < end) {
		uint8_t buf[256];
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		poll(&pfd, 1, 100);
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		for (ssize_t at = 0; n > 0 && at < n && msg == NULL;) {
			char why[STRATA_ERRMSG_SIZE];
			ssize_t k = sp_rx_feed(&rx, buf + at, (size_t)(n - at),
			                       &got_id, &msg, why);
			if (k < 0) {
				fail_msg("reply stream: %s", why);
			}
			at += k;
		}
	}
	assert_non_null(msg);
	assert_int_equal(got_id, id);
	nng_msg_free(msg);
	sp_rx_reset(&rx);
}

/* Whether the server closes raw peer fd within timeout_ms (whatever it
 * sent before, its greeting say, is read and dropped). */
static bool raw_closed(int fd, int timeout_ms)
{
	uint8_t buf[256];
	int64_t end = now_ms() + timeout_ms;
	for (;;) {
		int64_t left = end - now_ms();
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0) {
			return false;
		}
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			return true;
		}
	}
}

/* A raw peer that the server greets and keeps (retried for up to 5 s). */
static int raw_served(const char *url)
{
	int64_t end = now_ms() + 5000;
	for (;;) {
		int fd = raw_sp_connect(url);
		if (raw_greeted(fd, 1000) && !raw_closed(fd, 200)) {
			return fd;
		}
		close(fd);
		assert_true(now_ms() < end);
		usleep(50 * 1000);
	}
}

/*
 * At max_connections a further client is held off until one closes: the
 * own SP listener leaves it in the listen backlog; an NNG socket closes
 * it right after the handshake (its clients redial), and those it turned
 * away hold no place. Either way the accepted ones are served meanwhile
 * and the new one is served once one of them closes.
 */
static void test_rpc_max_connections(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server_opts o;
	rpc_server_opts_default(&o);
	o.max_connections = 2;
	struct rpc_server *srv = start(s, "tcp://127.0.0.1:0", &o);
	const char *url = rpc_server_url(srv);
	int a = raw_sp_connect(url);
	int b = raw_sp_connect(url);
	assert_true(raw_greeted(a, 5000));
	assert_true(raw_greeted(b, 5000));
	/* Served, so both are counted (an NNG server greets before it
	 * counts a connection, at the end of the handshake). */
	raw_echo(a, 10);
	raw_echo(b, 11);
	int c = raw_sp_connect(url); /* connects: the backlog takes it */
	if (own_tcp) {
		assert_false(raw_greeted(c, 300));
	} else {
		for (int i = 0; i < 5; i++) {
			assert_true(raw_closed(c, 5000));
			close(c);
			c = raw_sp_connect(url);
		}
		assert_true(raw_closed(c, 5000));
		close(c);
		/* An RPC client turned away says why it got no answer. */
		struct rpc_client *cli = open1(url, 300, 0);
		char err[STRATA_ERRMSG_SIZE] = "";
		uint8_t *rep = NULL;
		size_t n = 0;
		int rc = rpc_call(cli, M_ECHO, RPC_IDEMPOTENT, NULL, 0, &rep,
		                  &n, err);
		/* No connection (EUNAVAIL) or one lost at once (ECLOSED). */
		assert_true(rc == STRATA_EUNAVAIL || rc == STRATA_ECLOSED);
		if (strstr(err, "right after accepting it") == NULL) {
			fail_msg("turned away without saying why: %s", err);
		}
		/* Served once a place frees; closed connected (NNG 1.5.2
		 * leaks a socket closed mid-handshake). */
		close(a);
		a = -1;
		for (int i = 0; i < 100 && rc != 0; i++) {
			usleep(i == 0 ? 0 : 50000);
			rc = rpc_call(cli, M_ECHO, RPC_IDEMPOTENT, NULL, 0,
			              &rep, &n, err);
		}
		assert_int_equal(rc, 0);
		strata_free(rep);
		rpc_client_close(cli);
	}
	raw_echo(b, 1); /* the two accepted ones are served meanwhile */
	if (a >= 0) {
		close(a);
	}
	if (own_tcp) {
		assert_true(raw_greeted(c, 5000));
	} else {
		c = raw_served(url);
	}
	raw_echo(c, 2);
	close(b);
	close(c);
	rpc_server_stop(srv);
	svc_join(s);
}

/* The highest descriptor number open in this process. */
static int highest_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int self = dirfd(d), top = -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] != '.' && fd != self && fd > top) {
			top = fd;
		}
	}
	closedir(d);
	return top;
}

static double process_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define FILL_MAX 4096 /* descriptors taken to exhaust the table */

/* Open descriptors of this process (below FILL_MAX) into is_open. */
static void open_fds(bool *is_open)
{
	memset(is_open, 0, FILL_MAX * sizeof(*is_open));
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int self = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] != '.' && fd != self && fd >= 0 &&
		    fd < FILL_MAX) {
			is_open[fd] = true;
		}
	}
	closedir(d);
}

/* Wait (at most 3 s) until the open descriptors stay the same for
 * 300 ms: the earlier tests' NNG sockets are closed by NNG's reaper
 * thread some time after those tests end. */
static void wait_fds_settled(void)
{
	static bool a[FILL_MAX], b[FILL_MAX];
	open_fds(a);
	for (int same = 0, i = 0; same < 3 && i < 30; i++) {
		usleep(100 * 1000);
		open_fds(b);
		same = memcmp(a, b, sizeof(a)) == 0 ? same + 1 : 0;
		memcpy(a, b, sizeof(a));
	}
}

/* One attempt of the test below; false when another thread closed one
 * of the descriptors open before the fill (the slot it freed let the
 * listener accept: the premise broke, not the listener). */
static bool accept_out_of_fds_once(void)
{
	struct svc *s = svc_new();
	struct rpc_server *srv = start(s, "tcp://127.0.0.1:0", NULL);
	const char *url = rpc_server_url(srv);
	struct rlimit old;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	wait_fds_settled();
	static bool before[FILL_MAX], after[FILL_MAX];
	open_fds(before);
	/* Take every free number up to the highest in use, then allow one
	 * more descriptor: the client's socket. */
	int top = highest_fd();
	static int fill[FILL_MAX];
	int n_fill = 0;
	for (;;) {
		int d = open("/dev/null", O_RDONLY | O_CLOEXEC);
		assert_true(d >= 0);
		if (d > top) {
			close(d);
			break;
		}
		assert_true(n_fill < FILL_MAX);
		fill[n_fill++] = d;
	}
	struct rlimit lim = old;
	lim.rlim_cur = (rlim_t)top + 2;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	struct sockaddr_storage sa;
	socklen_t salen;
	assert_true(sp_url_addr(url, false, &sa, &salen));
	int c = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(c, top + 1);
	assert_int_equal(connect(c, (struct sockaddr *)&sa, salen), 0);
	const uint8_t hello[8] = {0, 'S', 'P', 0, 0, SP_PROTO_REQ0, 0, 0};
	assert_int_equal(send(c, hello, sizeof(hello), 0), sizeof(hello));

	/* The server cannot accept it now; it must not spin trying. */
	double cpu0 = process_cpu_s();
	bool greeted = raw_greeted(c, 1000);
	double cpu = process_cpu_s() - cpu0;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	open_fds(after); /* (it needs a descriptor itself) */
	bool freed = false;
	for (int fd = 0; fd <= top && fd < FILL_MAX; fd++) {
		freed |= before[fd] && !after[fd];
	}
	for (int i = 0; i < n_fill; i++) {
		close(fill[i]);
	}
	print_message("out of descriptors for 1 s: %.3f s of CPU%s\n", cpu,
	              freed ? " (another thread freed a descriptor)" : "");
	if (greeted && freed) {
		close(c);
		rpc_server_stop(srv);
		svc_join(s);
		return false;
	}
	assert_false(greeted);
	assert_true(cpu < 0.25); /* spinning takes most of the second */

	/* Descriptors free again: accepted and served. */
	assert_true(raw_greeted(c, 5000));
	raw_echo(c, 7);
	close(c);
	rpc_server_stop(srv);
	svc_join(s);
	return true;
}

/*
 * When accept finds no free file descriptor, the listener stays readable:
 * the server must neither spin on it (a core burnt and a log line per
 * try) nor give up. It pauses accepting, and the waiting client is served
 * once descriptors are free again.
 */
static void test_rpc_accept_out_of_fds(void **state)
{
	(void)state;
	int tries = 0;
	while (!accept_out_of_fds_once()) {
		assert_true(++tries < 3);
	}
}

/* max_connections is checked like the other options. */
static void test_rpc_max_connections_range(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server *srv = NULL;
	char err[STRATA_ERRMSG_SIZE];
	struct rpc_server_opts so;
	rpc_server_opts_default(&so);
	assert_int_equal(so.max_connections, RPC_DEFAULT_MAX_CONNECTIONS);
	so.own_tcp = true;
	so.max_connections = 0;
	assert_int_equal(rpc_server_start(&srv, "tcp://127.0.0.1:0", &so,
	                                  handler, s, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "max_connections 0 out of range"));
	so.max_connections = RPC_MAX_CONNECTIONS_LIMIT + 1;
	assert_int_equal(rpc_server_start(&srv, "tcp://127.0.0.1:0", &so,
	                                  handler, s, err),
	                 STRATA_EINVAL);
	assert_null(srv);
	svc_join(s);
}

/* A reply body that is not the expected message gives EPROTO naming the
 * type; an empty body is a default message. */
static void test_rpc_call_pb_unparsable_reply(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server *srv = start(s, "inproc://strata-test-pb", NULL);
	struct rpc_client *cli = open1(rpc_server_url(srv), 2000, 0);
	char err[STRATA_ERRMSG_SIZE];
	/* An RpcReply echoed back and read as a Status: field 1 is a
	 * message there but a varint in Status, so it does not parse. */
	Strata__V1__Status st = STRATA__V1__STATUS__INIT;
	st.message = "m";
	Strata__V1__RpcReply wrong = STRATA__V1__RPC_REPLY__INIT;
	wrong.status = &st;
	ProtobufCMessage *out = NULL;
	assert_int_equal(rpc_call_pb(cli, M_ECHO, 0, &wrong.base,
	                             &strata__v1__status__descriptor, &out,
	                             err),
	                 STRATA_EPROTO);
	assert_null(out);
	assert_non_null(strstr(err, "strata.v1.Status"));
	assert_int_equal(rpc_call_pb(cli, M_ECHO, 0, NULL,
	                             &strata__v1__status__descriptor, &out,
	                             err),
	                 0);
	assert_int_equal(((Strata__V1__Status *)out)->code, 0);
	rpc_pb_free(out);
	rpc_client_close(cli);
	rpc_server_stop(srv);
	svc_join(s);
}

struct conc {
	struct rpc_client *cli;
	int id;
	atomic_int *errors;
};

struct pend {
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	int left;
	int bad;
	char expect[8][32];
};

static void conc_cb(void *arg, int code, const char *errmsg,
                    struct rpc_body *body)
{
	const uint8_t *reply = body->data;
	size_t len = body->len;
	(void)errmsg;
	struct pend *p = *(struct pend **)arg;
	pthread_mutex_lock(&p->mtx);
	bool found = false;
	if (code == 0) {
		for (int i = 0; i < 8; i++) {
			if (len == strlen(p->expect[i]) &&
			    memcmp(reply, p->expect[i], len) == 0) {
				found = true;
			}
		}
	}
	if (!found) {
		p->bad++;
	}
	p->left--;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mtx);
	rpc_body_free(body);
}

static void *conc_main(void *arg)
{
	struct conc *c = arg;
	struct pend p;
	struct pend *pp = &p;
	pthread_mutex_init(&p.mtx, NULL);
	pthread_cond_init(&p.cv, NULL);
	for (int round = 0; round < 10; round++) {
		p.left = 8;
		p.bad = 0;
		for (int i = 0; i < 8; i++) {
			snprintf(p.expect[i], sizeof(p.expect[i]),
			         "t%d-r%d-c%d", c->id, round, i);
		}
		for (int i = 0; i < 8; i++) {
			int rc = rpc_call_async(
			        c->cli, i % 2 ? M_LATER : M_ECHO,
			        RPC_IDEMPOTENT, (const uint8_t *)p.expect[i],
			        strlen(p.expect[i]), conc_cb, &pp, NULL);
			if (rc != 0) {
				atomic_fetch_add(c->errors, 1);
				pthread_mutex_lock(&p.mtx);
				p.left--;
				pthread_mutex_unlock(&p.mtx);
			}
		}
		pthread_mutex_lock(&p.mtx);
		while (p.left > 0) {
			pthread_cond_wait(&p.cv, &p.mtx);
		}
		pthread_mutex_unlock(&p.mtx);
		atomic_fetch_add(c->errors, p.bad);
		/* and one blocking call per round */
		uint8_t *rep;
		size_t n;
		char err[STRATA_ERRMSG_SIZE];
		if (rpc_call(c->cli, M_ECHO, 0, (const uint8_t *)"x", 1, &rep,
		             &n, err) != 0 ||
		    n != 1) {
			atomic_fetch_add(c->errors, 1);
		}
		strata_free(rep);
	}
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mtx);
	return NULL;
}

/* 8 threads x 8 async calls in flight (64 at once, half answered later
 * from other threads) plus blocking calls: every reply matches its
 * request. */
static void test_rpc_concurrent_calls(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server *srv = start(s, "tcp://127.0.0.1:0", NULL);
	struct rpc_client *cli = open1(rpc_server_url(srv), 5000, 0);
	atomic_int errors;
	atomic_init(&errors, 0);
	pthread_t th[8];
	struct conc c[8];
	for (int i = 0; i < 8; i++) {
		c[i] = (struct conc){cli, i, &errors};
		assert_int_equal(pthread_create(&th[i], NULL, conc_main, &c[i]),
		                 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
	}
	assert_int_equal(atomic_load(&errors), 0);
	assert_int_equal(atomic_load(&s->calls), 8 * 10 * 9);
	rpc_client_close(cli);
	rpc_server_stop(srv);
	svc_join(s);
}

/* The handler returns without replying; another thread replies 20 ms
 * later with the request body, which is still valid. */
static void test_rpc_reply_later_from_thread(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server *srv = start(s, "inproc://strata-test-later", NULL);
	struct rpc_client *cli = open1(rpc_server_url(srv), 2000, 0);
	uint8_t *rep;
	size_t n;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(rpc_call(cli, M_LATER, 0, (const uint8_t *)"later", 5,
	                          &rep, &n, err),
	                 0);
	assert_int_equal(n, 5);
	assert_memory_equal(rep, "later", 5);
	strata_free(rep);
	rpc_client_close(cli);
	rpc_server_stop(srv);
	svc_join(s);
}

/* A handler that never replies: a non-idempotent call times out once
 * (not re-sent); an idempotent one is tried 1 + retries times. After stop
 * the held calls are late: rpc_reply says ECLOSED and frees the server. */
static void test_rpc_timeout_when_no_reply(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server_opts so;
	rpc_server_opts_default(&so);
	so.drain_ms = 50;
	struct rpc_server *srv = start(s, "tcp://127.0.0.1:0", &so);
	struct rpc_client *cli = open1(rpc_server_url(srv), 150, 2);
	uint8_t *rep;
	size_t n;
	char err[STRATA_ERRMSG_SIZE];
	int64_t t0 = now_ms();
	assert_int_equal(rpc_call(cli, M_HOLD, 0, NULL, 0, &rep, &n, err),
	                 STRATA_ETIMEDOUT);
	int64_t dt = now_ms() - t0;
	assert_true(dt >= 140 && dt < 1500);
	assert_non_null(strstr(err, rpc_server_url(srv)));
	assert_non_null(strstr(err, "no reply within 150 ms"));
	assert_int_equal(atomic_load(&s->calls), 1);

	assert_int_equal(
	        rpc_call(cli, M_HOLD, RPC_IDEMPOTENT, NULL, 0, &rep, &n, err),
	        STRATA_ETIMEDOUT);
	assert_int_equal(atomic_load(&s->calls), 4);
	rpc_client_close(cli);

	rpc_server_stop(srv); /* 4 calls held: late after 50 ms drain */
	pthread_mutex_lock(&s->mtx);
	for (int i = 0; i < s->n_held; i++) {
		assert_int_equal(rpc_reply(s->held[i], 0, NULL, NULL, 0),
		                 STRATA_ECLOSED);
	}
	pthread_mutex_unlock(&s->mtx);
	svc_join(s);
}

/* No server at all: the call fails with EUNAVAIL naming the URL after its
 * retries, in bounded time. */
static void test_rpc_no_server_fails_bounded(void **state)
{
	(void)state;
	char url[128];
	dead_url(url, sizeof(url));
	struct rpc_client *cli = open1(url, 1000, 2);
	uint8_t *rep;
	size_t n;
	char err[STRATA_ERRMSG_SIZE];
	int64_t t0 = now_ms();
	assert_int_equal(rpc_call(cli, M_ECHO, 0, NULL, 0, &rep, &n, err),
	                 STRATA_EUNAVAIL);
	int64_t dt = now_ms() - t0;
	/* one 300 ms connect wait; later attempts see it down at once */
	assert_true(dt < 1500);
	assert_non_null(strstr(err, url));
	/* Known down: the next call fails fast. */
	t0 = now_ms();
	assert_int_equal(rpc_call(cli, M_ECHO, 0, NULL, 0, &rep, &n, err),
	                 STRATA_EUNAVAIL);
	assert_true(now_ms() - t0 < 500);
	rpc_client_close(cli);
}

/* A client of {a dead URL, a server of s} with opts o; *srv the server. */
static struct rpc_client *dead_then_live(struct svc *s, struct rpc_server **srv,
                                         const struct rpc_client_opts *o)
{
	char dead[128];
	dead_url(dead, sizeof(dead));
	*srv = start(s, "tcp://127.0.0.1:0", NULL);
	const char *urls[] = {dead, rpc_server_url(*srv)};
	struct rpc_client *cli;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(rpc_client_open(&cli, urls, 2, o, err), 0);
	return cli;
}

/* With the first URL dead, calls (even non-idempotent: nothing was sent)
 * go to the second, and later calls go there directly. */
static void test_rpc_failover_second_url(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server *srv;
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.connect_timeout_ms = 200;
	o.backoff_base_ms = 5;
	struct rpc_client *cli = dead_then_live(s, &srv, &o);
	char err[STRATA_ERRMSG_SIZE];
	uint8_t *rep;
	size_t n;
	assert_int_equal(rpc_call(cli, M_ECHO, 0, (const uint8_t *)"a", 1, &rep,
	                          &n, err),
	                 0);
	strata_free(rep);
	int64_t t0 = now_ms();
	echo_ok(cli, "second");
	assert_true(now_ms() - t0 < 100);
	assert_int_equal(atomic_load(&s->calls), 2);
	rpc_client_close(cli);
	rpc_server_stop(srv);
	svc_join(s);
}

/* With the first URL dead and a long connect timeout, the first call
 * goes to the second once it is connected, after a short grace, not
 * after the connect timeout (every new stratactl process pays it). */
static void test_rpc_dead_first_url_costs_a_grace(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server *srv;
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.connect_timeout_ms = 10000;
	struct rpc_client *cli = dead_then_live(s, &srv, &o);
	int64_t t0 = now_ms();
	echo_ok(cli, "first");
	assert_true(now_ms() - t0 < 5000); /* a grace of 250 ms */
	t0 = now_ms();
	echo_ok(cli, "second"); /* straight to the one that answered */
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(atomic_load(&s->calls), 2);
	rpc_client_close(cli);
	rpc_server_stop(srv);
	svc_join(s);
}

/* Server A answers ENOTLEADER with a redirect to B (unknown to the
 * client): the call lands on B, and the next call goes to B directly.
 * Redirect loops stop after max_redirects. */
static void test_rpc_redirect_followed(void **state)
{
	(void)state;
	struct svc *a = svc_new();
	struct svc *b = svc_new();
	struct rpc_server *sa = start(a, "tcp://127.0.0.1:0", NULL);
	struct rpc_server *sb = start(b, "tcp://127.0.0.1:0", NULL);
	a->redirect = rpc_server_url(sb);
	struct rpc_client *cli = open1(rpc_server_url(sa), 2000, 0);
	uint8_t *rep;
	size_t n;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(rpc_call(cli, M_REDIRECT, 0, (const uint8_t *)"r", 1,
	                          &rep, &n, err),
	                 0);
	assert_int_equal(n, 1);
	strata_free(rep);
	assert_int_equal(atomic_load(&a->calls), 1);
	assert_int_equal(atomic_load(&b->calls), 1);
	assert_int_equal(rpc_call(cli, M_REDIRECT, 0, NULL, 0, &rep, &n, err),
	                 0);
	assert_int_equal(atomic_load(&a->calls), 1);
	assert_int_equal(atomic_load(&b->calls), 2);

	/* A -> B -> A -> ...: bounded, ends with ENOTLEADER. */
	b->redirect = rpc_server_url(sa);
	assert_int_equal(rpc_call(cli, M_REDIRECT, 0, NULL, 0, &rep, &n, err),
	                 STRATA_ENOTLEADER);
	assert_int_equal(atomic_load(&a->calls) + atomic_load(&b->calls),
	                 3 + 1 + RPC_DEFAULT_MAX_REDIRECTS);
	/* A redirect to itself is returned as is. */
	b->redirect = rpc_server_url(sb);
	assert_int_equal(rpc_call(cli, M_REDIRECT, 0, NULL, 0, &rep, &n, err),
	                 STRATA_ENOTLEADER);
	assert_string_equal(err, "not the leader");
	rpc_client_close(cli);
	rpc_server_stop(sa);
	rpc_server_stop(sb);
	svc_join(a);
	svc_join(b);
}

/* A replica that knows no leader (ENOTLEADER without a redirect: a
 * candidate, or one just removed from its group) did not carry the call
 * out: the client asks its next URL (even for a change) and does not
 * keep preferring it. A QA run's clients listing such a controller first
 * failed although the others had a leader. */
static void test_rpc_leaderless_replica_passed_over(void **state)
{
	(void)state;
	struct svc *a = svc_new();
	struct svc *b = svc_new();
	struct rpc_server *sa = start(a, "tcp://127.0.0.1:0", NULL);
	struct rpc_server *sb = start(b, "tcp://127.0.0.1:0", NULL);
	a->redirect = ""; /* ENOTLEADER, no leader to name */
	const char *urls[] = {rpc_server_url(sa), rpc_server_url(sb)};
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.backoff_base_ms = 5;
	o.retries = 2;
	struct rpc_client *cli;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(rpc_client_open(&cli, urls, 2, &o, err), 0);
	uint8_t *rep;
	size_t n;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rpc_call(cli, M_REDIRECT, 0,
		                          (const uint8_t *)"w", 1, &rep, &n,
		                          err),
		                 0);
		strata_free(rep);
	}
	assert_int_equal(atomic_load(&a->calls), 1);
	assert_int_equal(atomic_load(&b->calls), 3);
	rpc_client_close(cli);
	rpc_server_stop(sa);
	rpc_server_stop(sb);
	svc_join(a);
	svc_join(b);
}

static int raw_exchange(nng_socket s, const void *buf, size_t len,
                        struct rpc_reply_info *rep)
{
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(nng_send(s, (void *)buf, len, 0), 0);
	void *in;
	size_t in_len;
	assert_int_equal(nng_recv(s, &in, &in_len, NNG_FLAG_ALLOC), 0);
	int rc = rpc_reply_decode(in, in_len, rep, err);
	nng_free(in, in_len);
	return rc;
}

/* Raw garbage and an empty message are answered EPROTO; the server keeps
 * serving. */
static void test_rpc_malformed_envelope(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server *srv = start(s, "tcp://127.0.0.1:0", NULL);
	nng_socket raw;
	assert_int_equal(nng_req0_open(&raw), 0);
	nng_socket_set_ms(raw, NNG_OPT_RECVTIMEO, 2000);
	assert_int_equal(nng_dial(raw, rpc_server_url(srv), NULL, 0), 0);
	struct rpc_reply_info rep;
	const uint8_t garbage[] = {0xde, 0xad, 0xbe, 0xef, 0xff, 0xff};
	assert_int_equal(raw_exchange(raw, garbage, sizeof(garbage), &rep), 0);
	assert_int_equal(rep.code, STRATA_EPROTO);
	assert_non_null(strstr(rep.message, "malformed request envelope"));
	rpc_reply_release(&rep);
	assert_int_equal(raw_exchange(raw, "", 0, &rep), 0);
	assert_int_equal(rep.code, STRATA_EPROTO);
	rpc_reply_release(&rep);
	nng_close(raw);
	assert_int_equal(atomic_load(&s->calls), 0);

	struct rpc_client *cli = open1(rpc_server_url(srv), 2000, 0);
	echo_ok(cli, "still serving");
	rpc_client_close(cli);
	rpc_server_stop(srv);
	svc_join(s);
}

/* A request over the server's limit is dropped by NNG (the connection is
 * closed): the client gets ECLOSED or ETIMEDOUT, and the server keeps
 * serving. Over the client's own limit: ETOOBIG before sending. */
static void test_rpc_oversize_request(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server_opts so;
	rpc_server_opts_default(&so);
	so.max_msg_bytes = 1024;
	struct rpc_server *srv = start(s, "tcp://127.0.0.1:0", &so);
	struct rpc_client *cli = open1(rpc_server_url(srv), 300, 0);
	static uint8_t big[4096];
	uint8_t *rep;
	size_t n;
	char err[STRATA_ERRMSG_SIZE];
	int64_t t0 = now_ms();
	int rc = rpc_call(cli, M_ECHO, 0, big, sizeof(big), &rep, &n, err);
	assert_true(rc == STRATA_ECLOSED || rc == STRATA_ETIMEDOUT);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(atomic_load(&s->calls), 0);
	echo_ok(cli, "small still works");
	rpc_client_close(cli);

	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.max_msg_bytes = 1024;
	const char *urls[] = {rpc_server_url(srv)};
	assert_int_equal(rpc_client_open(&cli, urls, 1, &o, err), 0);
	assert_int_equal(
	        rpc_call(cli, M_ECHO, 0, big, sizeof(big), &rep, &n, err),
	        STRATA_ETOOBIG);
	assert_non_null(strstr(err, "exceeds the limit of 1024"));
	rpc_client_close(cli);
	rpc_server_stop(srv);
	svc_join(s);
}

/* A reply over the message limit (QA: a list of 66000 long stream names,
 * 17 MB) is replaced by STRATA_ETOOBIG saying so, at once. Clients
 * dropped it with the connection and asked again until their timeout,
 * and the server built it anew each time. */
static void test_rpc_oversize_reply(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	for (int sp = 0; sp < 2; sp++) {
		struct rpc_server_opts so;
		rpc_server_opts_default(&so);
		so.own_tcp = sp == 1;
		struct rpc_server *srv = start(s, "tcp://127.0.0.1:0", &so);
		struct rpc_client *cli = open1(rpc_server_url(srv), 5000, 0);
		uint8_t *rep = NULL;
		size_t n;
		char err[STRATA_ERRMSG_SIZE];
		int64_t t0 = now_ms();
		assert_int_equal(
		        rpc_call(cli, M_BIG, 0, NULL, 0, &rep, &n, err),
		        STRATA_ETOOBIG);
		assert_true(now_ms() - t0 < 3000);
		assert_non_null(strstr(err, "over the 16777216-byte message "
		                            "limit, and was not sent"));
		assert_int_equal(atomic_load(&s->calls), 1 + 2 * sp);
		echo_ok(cli, "the connection still works");
		rpc_client_close(cli);
		rpc_server_stop(srv);
	}
	svc_join(s);
}

struct stop_cb_state {
	pthread_mutex_t mtx;
	pthread_cond_t cv;
	int done;
	int ok;
};

static void stop_cb(void *arg, int code, const char *errmsg,
                    struct rpc_body *body)
{
	(void)errmsg;
	struct stop_cb_state *st = arg;
	rpc_body_free(body);
	pthread_mutex_lock(&st->mtx);
	st->done++;
	if (code == 0) {
		st->ok++;
	}
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mtx);
}

/* Stop with 8 calls in the handler: stop waits for their (later) replies,
 * which all reach the clients; afterwards calls fail fast. */
static void test_rpc_stop_with_calls_in_flight(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server *srv = start(s, "tcp://127.0.0.1:0", NULL);
	char url[128];
	snprintf(url, sizeof(url), "%s", rpc_server_url(srv));
	struct rpc_client *cli = open1(url, 2000, 0);
	struct stop_cb_state st = {.done = 0, .ok = 0};
	pthread_mutex_init(&st.mtx, NULL);
	pthread_cond_init(&st.cv, NULL);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(rpc_call_async(cli, M_LATER, 0,
		                                (const uint8_t *)"z", 1,
		                                stop_cb, &st, NULL),
		                 0);
	}
	while (atomic_load(&s->calls) < 8) {
		usleep(1000);
	}
	rpc_server_stop(srv);
	pthread_mutex_lock(&st.mtx);
	while (st.done < 8) {
		pthread_cond_wait(&st.cv, &st.mtx);
	}
	assert_int_equal(st.ok, 8);
	pthread_mutex_unlock(&st.mtx);

	/* Let the client see its connection close first: a request queued
	 * while NNG 1.5.2 closes the pipe leaks in req0 (tests/lsan.supp,
	 * which this test runs without); seen 1 in ~40 runs under load. */
	usleep(100 * 1000);
	uint8_t *rep;
	size_t n;
	char err[STRATA_ERRMSG_SIZE];
	int rc = rpc_call(cli, M_ECHO, 0, NULL, 0, &rep, &n, err);
	assert_true(rc == STRATA_EUNAVAIL || rc == STRATA_ECLOSED);
	rpc_client_close(cli);
	pthread_cond_destroy(&st.cv);
	pthread_mutex_destroy(&st.mtx);
	svc_join(s);
}

/* Closing the client ends a call in flight with ECLOSED, once. */
static void test_rpc_client_close_aborts_calls(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server_opts so;
	rpc_server_opts_default(&so);
	so.drain_ms = 10;
	struct rpc_server *srv = start(s, "inproc://strata-test-close", &so);
	struct rpc_client *cli = open1(rpc_server_url(srv), 5000, 0);
	struct stop_cb_state st = {.done = 0, .ok = 0};
	pthread_mutex_init(&st.mtx, NULL);
	pthread_cond_init(&st.cv, NULL);
	assert_int_equal(
	        rpc_call_async(cli, M_HOLD, 0, NULL, 0, stop_cb, &st, NULL), 0);
	while (atomic_load(&s->calls) < 1) {
		usleep(1000);
	}
	int64_t t0 = now_ms();
	rpc_client_close(cli);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(st.done, 1);
	assert_int_equal(st.ok, 0);
	rpc_server_stop(srv);
	assert_int_equal(rpc_reply(s->held[0], 0, NULL, NULL, 0),
	                 STRATA_ECLOSED);
	pthread_cond_destroy(&st.cv);
	pthread_mutex_destroy(&st.mtx);
	svc_join(s);
}

/* A second server on the same address: EBUSY naming URL and config key. */
static void test_rpc_server_address_in_use(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server *srv = start(s, "tcp://127.0.0.1:0", NULL);
	struct rpc_server_opts so;
	rpc_server_opts_default(&so);
	so.config_key = "controller.listen";
	struct rpc_server *srv2 = NULL;
	char err[STRATA_ERRMSG_SIZE];
	so.own_tcp = own_tcp;
	assert_int_equal(rpc_server_start(&srv2, rpc_server_url(srv), &so,
	                                  handler, s, err),
	                 STRATA_EBUSY);
	assert_non_null(strstr(err, rpc_server_url(srv)));
	assert_non_null(strstr(err, "controller.listen"));
	assert_int_equal(
	        rpc_server_start(&srv2, "bogus://x", &so, handler, s, err),
	        STRATA_EINVAL);
	assert_non_null(strstr(err, "bogus://x"));
	so.max_queued_bytes = 1000; /* below 64 KiB */
	assert_int_equal(rpc_server_start(&srv2, "tcp://127.0.0.1:0", &so,
	                                  handler, s, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "max_queued_bytes 1000 out of range"));
	rpc_server_stop(srv);
	svc_join(s);
}

/* Bad client arguments are refused with a message. */
static void test_rpc_client_open_rejects_bad_input(void **state)
{
	(void)state;
	struct rpc_client *cli;
	char err[STRATA_ERRMSG_SIZE];
	const char *bad[] = {"nonsense"};
	assert_int_equal(rpc_client_open(&cli, bad, 1, NULL, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "nonsense"));
	assert_int_equal(rpc_client_open(&cli, bad, 0, NULL, err),
	                 STRATA_EINVAL);
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.retries = -1;
	const char *good[] = {"inproc://x"};
	assert_int_equal(rpc_client_open(&cli, good, 1, &o, err),
	                 STRATA_EINVAL);
}

/* Out of memory at every allocation of client open + one call: each step
 * fails cleanly with ENOMEM (or succeeds), never leaks or crashes. */
static void test_rpc_oom_sweep(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server *srv = start(s, "inproc://strata-test-oom", NULL);
	const char *urls[] = {rpc_server_url(srv)};
	char err[STRATA_ERRMSG_SIZE];
	long k;
	for (k = 1; k < 200; k++) {
		struct rpc_client *cli = NULL;
		int rc2 = -1;
		oom_install(k);
		int rc = rpc_client_open(&cli, urls, 1, NULL, err);
		if (rc == 0) {
			uint8_t *rep = NULL;
			size_t n;
			rc2 = rpc_call(cli, M_ECHO, 0, (const uint8_t *)"oom",
			               3, &rep, &n, err);
			strata_free(rep);
			rep = NULL;
			/* a reply with a tail, copied or held */
			for (uint32_t m = M_TAIL; rc2 == 0 && m <= M_TAIL_REF;
			     m++) {
				rc2 = rpc_call(cli, m, 0,
				               (const uint8_t *)"oom", 3, &rep,
				               &n, err);
				strata_free(rep);
				rep = NULL;
			}
		}
		if (cli != NULL) {
			rpc_client_close(cli); /* then no thread allocates */
		}
		long attempts = oom_uninstall();
		assert_true(rc == 0 || rc == STRATA_ENOMEM);
		assert_true(rc2 == -1 || rc2 == 0 || rc2 == STRATA_ENOMEM);
		if (rc == 0 && rc2 == 0 && attempts < k) {
			break; /* a run with no failure: every point covered */
		}
	}
	assert_true(k > 4 && k < 200); /* several points, and it ended */
	rpc_server_stop(srv);
	svc_join(s);
}

struct bp_done {
	atomic_int n;
	atomic_int code;
};

static void bp_cb(void *arg, int code, const char *errmsg,
                  struct rpc_body *body)
{
	(void)errmsg;
	struct bp_done *d = arg;
	rpc_body_free(body);
	atomic_store(&d->code, code);
	atomic_fetch_add(&d->n, 1);
}

/* n_contexts bounds the requests in handlers: with both slots held, a
 * third request waits (it is not answered, not refused) and is served
 * once one held call is answered. */
static void test_rpc_backpressure(void **state)
{
	(void)state;
	struct svc *s = svc_new();
	struct rpc_server_opts so;
	rpc_server_opts_default(&so);
	so.n_contexts = 2;
	so.drain_ms = 50;
	struct rpc_server *srv = start(s, "tcp://127.0.0.1:0", &so);
	struct rpc_client *cli = open1(rpc_server_url(srv), 5000, 0);
	struct bp_done held = {0}, echo = {0};
	for (int i = 0; i < 2; i++) {
		assert_int_equal(rpc_call_async(cli, M_HOLD, 0, NULL, 0, bp_cb,
		                                &held, NULL),
		                 0);
	}
	for (int i = 0; i < 400 && atomic_load(&s->calls) < 2; i++) {
		usleep(5000);
	}
	assert_int_equal(atomic_load(&s->calls), 2);
	assert_int_equal(rpc_call_async(cli, M_ECHO, 0, (const uint8_t *)"x", 1,
	                                bp_cb, &echo, NULL),
	                 0);
	usleep(200000);
	assert_int_equal(atomic_load(&echo.n), 0); /* waits for a slot */
	assert_int_equal(atomic_load(&s->calls), 2);
	pthread_mutex_lock(&s->mtx);
	struct rpc_call *first = s->held[0];
	s->held[0] = s->held[--s->n_held];
	pthread_mutex_unlock(&s->mtx);
	assert_int_equal(rpc_reply(first, 0, NULL, NULL, 0), 0);
	for (int i = 0; i < 400 && atomic_load(&echo.n) < 1; i++) {
		usleep(5000);
	}
	assert_int_equal(atomic_load(&echo.n), 1);
	assert_int_equal(atomic_load(&echo.code), 0);
	pthread_mutex_lock(&s->mtx);
	struct rpc_call *second = s->held[--s->n_held];
	pthread_mutex_unlock(&s->mtx);
	assert_int_equal(rpc_reply(second, 0, NULL, NULL, 0), 0);
	for (int i = 0; i < 400 && atomic_load(&held.n) < 2; i++) {
		usleep(5000);
	}
	assert_int_equal(atomic_load(&held.n), 2);
	rpc_client_close(cli);
	rpc_server_stop(srv);
	svc_join(s);
}

int main(void)
{
	/* ctest runs this file twice (tests/unit/common/CMakeLists.txt):
	 * TEST_RPC_PART=churn runs the tests in which server connections die
	 * or are turned away while requests are queued, where NNG 1.5.2 can
	 * leak a request message (tests/lsan.supp), under make test's
	 * suppression; the rest run without it, so that a leak of our own
	 * request messages fails them. */
	const char *part = getenv("TEST_RPC_PART");
	bool churn = part != NULL && strcmp(part, "churn") == 0;
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rpc_envelope_roundtrip),
	        cmocka_unit_test(test_rpc_reply_decode_in_place),
	        cmocka_unit_test(test_rpc_request_decode_in_place),
	        cmocka_unit_test(test_rpc_pb_unpack_arena),
	        cmocka_unit_test(test_rpc_envelope_decode_rejects_garbage),
	        cmocka_unit_test(test_rpc_roundtrip_tcp),
	        cmocka_unit_test(test_rpc_roundtrip_inproc),
	        cmocka_unit_test(test_rpc_call_pb_unparsable_reply),
	        cmocka_unit_test(test_rpc_reply_pb_sizes),
	        cmocka_unit_test(test_rpc_reply_pb_tail),
	        cmocka_unit_test(test_rpc_unread_replies_bounded),
	        cmocka_unit_test(test_rpc_concurrent_calls),
	        cmocka_unit_test(test_rpc_reply_later_from_thread),
	        cmocka_unit_test(test_rpc_timeout_when_no_reply),
	        cmocka_unit_test(test_rpc_no_server_fails_bounded),
	        cmocka_unit_test(test_rpc_redirect_followed),
	        cmocka_unit_test(test_rpc_leaderless_replica_passed_over),
	        cmocka_unit_test(test_rpc_malformed_envelope),
	        cmocka_unit_test(test_rpc_oversize_request),
	        cmocka_unit_test(test_rpc_oversize_reply),
	        cmocka_unit_test(test_rpc_client_close_aborts_calls),
	        cmocka_unit_test(test_rpc_server_address_in_use),
	        cmocka_unit_test(test_rpc_client_open_rejects_bad_input),
	        cmocka_unit_test(test_rpc_oom_sweep),
	        cmocka_unit_test(test_rpc_backpressure),
	};
	const struct CMUnitTest churn_tests[] = {
	        cmocka_unit_test(test_rpc_failover_second_url),
	        cmocka_unit_test(test_rpc_dead_first_url_costs_a_grace),
	        cmocka_unit_test(test_rpc_stop_with_calls_in_flight),
	        cmocka_unit_test(test_rpc_max_connections),
	};
	const struct CMUnitTest *run = churn ? churn_tests : tests;
	size_t n = churn ? sizeof(churn_tests) / sizeof(churn_tests[0])
	                 : sizeof(tests) / sizeof(tests[0]);
	int rc = _cmocka_run_group_tests("rpc, NNG server", run, n, NULL, NULL);
	own_tcp = true;
	rc |= _cmocka_run_group_tests("rpc, own SP server", run, n, NULL, NULL);
	/* What only Strata's own SP listener does. */
	const struct CMUnitTest sp_tests[] = {
	        cmocka_unit_test(test_rpc_accept_out_of_fds),
	        cmocka_unit_test(test_rpc_max_connections_range),
	};
	if (!churn) {
		rc |= cmocka_run_group_tests_name("rpc, own SP listener only",
		                                  sp_tests, NULL, NULL);
	}
	/* NNG frees closed sockets' pipes and dialers on a reaper thread;
	 * wait for it so the leak checker sees only our leaks. */
	nng_fini();
	return rc;
}
