/* Benchmark backend for Redis Streams (XADD / XRANGE) through hiredis. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "bench/backend.h"
#include "common/alloc.h"
#include "common/log.h"
#include "strata/error.h"

/*
 * One blocking hiredis context per writer, used as a pipeline: writer_send
 * appends an XADD to the output buffer and remembers its seq in a FIFO
 * (Redis answers in order); writer_poll writes the buffer out, waits for
 * the socket with poll(2) and hands every complete reply to the callback.
 * The in-flight window is thus the pipelining depth. Catch-up reads page
 * through the stream with XRANGE (exclusive start) in batches.
 */

#define REDIS_READ_BATCH 4096

struct redis_state {
	redisContext *admin; /* DEL, XRANGE */
	char host[64];       /* server address */
	int port;            /* server port */
	char key[80];        /* stream key "bench:<stream>" */
};

struct redis_writer {
	redisContext *c; /* this writer's connection */
	bench_ack_cb cb; /* ack callback */
	void *arg;       /* its argument */
	uint64_t *fifo;  /* seqs in flight, in send order */
	unsigned cap;    /* fifo capacity (= window) */
	unsigned head;   /* index of the oldest in-flight seq */
	unsigned count;  /* in-flight events */
	const char *key; /* borrowed from the state */
	int warned;      /* an error reply was logged already */
};

static redisContext *connect_ctx(const char *host, int port, char *errmsg)
{
	struct timeval tv = {.tv_sec = 5};
	redisContext *c = redisConnectWithTimeout(host, port, tv);
	if (c == NULL || c->err) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "redis: connect to %s:%d: %s; is redis-server "
		         "running there?",
		         host, port, c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	struct timeval rw = {.tv_sec = 60};
	redisSetTimeout(c, rw);
	return c;
}

/* Run one command on the admin context; 0 if the reply is not an error. */
static int admin_cmd(struct redis_state *s, char *errmsg, const char *what,
                     int argc, const char **argv, const size_t *lens)
{
	redisReply *r = redisCommandArgv(s->admin, argc, argv, lens);
	if (r == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "redis: %s %s: %s", what,
		         s->key, s->admin->errstr);
		return STRATA_EIO;
	}
	int rc = 0;
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "redis: %s %s: %s", what,
		         s->key, r->str);
		rc = STRATA_EIO;
	}
	freeReplyObject(r);
	return rc;
}

static int redis_open(const struct bench_endpoint *ep, const char *stream,
                      int mode, void **state, char *errmsg)
{
	struct redis_state *s = strata_calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "redis: out of memory");
		return STRATA_ENOMEM;
	}
	snprintf(s->host, sizeof(s->host), "%s", ep->host);
	s->port = ep->port;
	snprintf(s->key, sizeof(s->key), "bench:%s", stream);
	s->admin = connect_ctx(s->host, s->port, errmsg);
	if (s->admin == NULL) {
		strata_free(s);
		return STRATA_ECONNREFUSED;
	}
	const char *argv[] = {"DEL", s->key};
	size_t lens[] = {3, strlen(s->key)};
	int rc = 0;
	if (mode == BENCH_OPEN_CREATE)
		rc = admin_cmd(s, errmsg, "DEL", 2, argv, lens);
	if (rc != 0) {
		redisFree(s->admin);
		strata_free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static void redis_close(void *state, int drop)
{
	struct redis_state *s = state;
	char errmsg[STRATA_ERRMSG_SIZE];
	const char *argv[] = {"DEL", s->key};
	size_t lens[] = {3, strlen(s->key)};
	if (drop && admin_cmd(s, errmsg, "DEL", 2, argv, lens) != 0)
		LOG_WARN("bench.redis", "%s", errmsg);
	redisFree(s->admin);
	strata_free(s);
}

static int redis_writer_open(void *state, unsigned window, bench_ack_cb cb,
                             void *arg, void **writer, char *errmsg)
{
	struct redis_state *s = state;
	struct redis_writer *w = strata_calloc(1, sizeof(*w));
	if (w == NULL || window == 0)
		goto err_nomem;
	w->fifo = strata_calloc(window, sizeof(*w->fifo));
	if (w->fifo == NULL)
		goto err_nomem;
	w->cap = window;
	w->cb = cb;
	w->arg = arg;
	w->key = s->key;
	w->c = connect_ctx(s->host, s->port, errmsg);
	if (w->c == NULL) {
		strata_free(w->fifo);
		strata_free(w);
		return STRATA_ECONNREFUSED;
	}
	*writer = w;
	return 0;
err_nomem:
	if (w)
		strata_free(w->fifo);
	strata_free(w);
	snprintf(errmsg, STRATA_ERRMSG_SIZE,
	         "redis: writer with window %u: out of memory", window);
	return STRATA_ENOMEM;
}

static int redis_writer_send(void *writer, uint64_t seq, const void *payload,
                             size_t len)
{
	struct redis_writer *w = writer;
	if (w->count >= w->cap)
		return STRATA_EAGAIN;
	const char *argv[] = {"XADD", w->key, "*", "d", payload};
	size_t lens[] = {4, strlen(w->key), 1, 1, len};
	if (redisAppendCommandArgv(w->c, 5, argv, lens) != REDIS_OK)
		return STRATA_ENOMEM;
	w->fifo[(w->head + w->count) % w->cap] = seq;
	w->count++;
	return 0;
}

/* Hand every complete reply in the reader buffer to the callback. */
static int drain_replies(struct redis_writer *w, unsigned *got)
{
	for (;;) {
		void *reply = NULL;
		if (redisGetReplyFromReader(w->c, &reply) != REDIS_OK)
			return STRATA_EPROTO;
		if (reply == NULL)
			return 0;
		redisReply *r = reply;
		int status = 0;
		if (r->type == REDIS_REPLY_ERROR) {
			status = STRATA_EIO;
			if (!w->warned) {
				LOG_WARN("bench.redis", "XADD %s: %s", w->key,
				         r->str);
				w->warned = 1;
			}
		}
		freeReplyObject(r);
		if (w->count == 0)
			return STRATA_EPROTO; /* reply without a request */
		uint64_t seq = w->fifo[w->head];
		w->head = (w->head + 1) % w->cap;
		w->count--;
		(*got)++;
		w->cb(w->arg, seq, status);
	}
}

static int redis_writer_poll(void *writer, int timeout_ms)
{
	struct redis_writer *w = writer;
	int done = 0;
	while (!done) {
		if (redisBufferWrite(w->c, &done) != REDIS_OK)
			return STRATA_EIO;
	}
	if (w->count == 0)
		return 0;
	unsigned got = 0;
	int rc = drain_replies(w, &got);
	if (rc != 0 || got > 0)
		return rc;
	struct pollfd pfd = {.fd = w->c->fd, .events = POLLIN};
	int n = poll(&pfd, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : STRATA_EIO;
	if (n == 0)
		return 0;
	if (redisBufferRead(w->c) != REDIS_OK)
		return STRATA_EIO;
	return drain_replies(w, &got);
}

static void redis_writer_close(void *writer)
{
	struct redis_writer *w = writer;
	redisFree(w->c);
	strata_free(w->fifo);
	strata_free(w);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int redis_read_all(void *state, uint64_t expect, int timeout_ms,
                          bench_read_cb cb, void *arg, char *errmsg)
{
	struct redis_state *s = state;
	char start[64] = "-";
	char count[16];
	uint64_t n = 0;
	int64_t deadline = now_ms() + timeout_ms;
	snprintf(count, sizeof(count), "%d", REDIS_READ_BATCH);
	while (n < expect) {
		if (now_ms() > deadline) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "redis: XRANGE %s: read %" PRIu64
			         " of %" PRIu64 " events in %d ms",
			         s->key, n, expect, timeout_ms);
			return STRATA_ETIMEDOUT;
		}
		const char *argv[] = {"XRANGE", s->key,  start,
		                      "+",      "COUNT", count};
		size_t lens[6];
		for (int i = 0; i < 6; i++)
			lens[i] = strlen(argv[i]);
		redisReply *r = redisCommandArgv(s->admin, 6, argv, lens);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "redis: XRANGE %.60s from %.40s: %.100s",
			         s->key, start,
			         r == NULL ? s->admin->errstr
			         : r->type == REDIS_REPLY_ERROR
			                 ? r->str
			                 : "unexpected reply type");
			if (r)
				freeReplyObject(r);
			return STRATA_EIO;
		}
		if (r->elements == 0) {
			freeReplyObject(r);
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "redis: XRANGE %s: stream ends after %" PRIu64
			         " of %" PRIu64 " events",
			         s->key, n, expect);
			return STRATA_ERANGE;
		}
		int stop = 0;
		for (size_t i = 0; i < r->elements && n < expect; i++) {
			redisReply *e = r->element[i];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
			    e->element[1]->type != REDIS_REPLY_ARRAY ||
			    e->element[1]->elements != 2) {
				freeReplyObject(r);
				snprintf(errmsg, STRATA_ERRMSG_SIZE,
				         "redis: XRANGE %s: malformed entry",
				         s->key);
				return STRATA_EPROTO;
			}
			redisReply *v = e->element[1]->element[1];
			n++;
			stop = cb(arg, v->str, v->len);
			if (stop)
				break;
			if (i + 1 == r->elements)
				snprintf(start, sizeof(start), "(%s",
				         e->element[0]->str);
		}
		freeReplyObject(r);
		if (stop)
			return stop;
	}
	return 0;
}

const struct bench_backend_ops bench_backend_redis = {
        .name = "redis",
        .open = redis_open,
        .writer_open = redis_writer_open,
        .writer_send = redis_writer_send,
        .writer_poll = redis_writer_poll,
        .writer_close = redis_writer_close,
        .read_all = redis_read_all,
        .close = redis_close,
        .cleanup = NULL,
};
