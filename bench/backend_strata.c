/* Benchmark backend for Strata through libstrata (writer, event iterator). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench/backend.h"
#include "common/alloc.h"
#include "common/log.h"
#include "strata/client.h"
#include "strata/error.h"
#include "strata/segment.h"
#include "strata/writer.h"

/*
 * Scope "bench", one stream per case with fixed(1) scaling: one segment,
 * so the catch-up read is one ordered sequence. Each writer has its OWN
 * client (its own I/O thread and connections) and one event writer whose
 * routing key is the writer's, so its events stay in order. The ack
 * callback runs on that client's I/O thread (one thread: never
 * concurrently for one writer) and wakes writer_poll through a condition
 * variable. writer_send keeps the burst (the events sent since the last
 * poll; their payloads copied, the harness reuses its buffer) and
 * writer_poll hands it to strata_writer_write_batch at once, as the Redis
 * backend pipelines a burst of XADDs in one socket write. The catch-up read is
 * an event iterator over the stream's segment(s) at the head, asking
 * STRATA_BENCH_READ_BYTES per read.
 *
 * Stream names: the harness uses [a-z0-9_]+; Strata names are
 * [A-Za-z0-9.-], so '_' becomes '-'.
 */

#define STRATA_BENCH_SCOPE "bench"
#define STRATA_BENCH_READ_BYTES (8u << 20)
#define STRATA_BENCH_READY_MS 60000 /* cluster still settling after start */
#define STRATA_BENCH_RETRY_MS 30000 /* writer: retry a failing segment */

struct strata_state {
	struct strata_client *c; /* admin + reader client */
	char url[64];            /* controller client URL */
	char stream[64];         /* stream name (harness names are short) */
};

/* One in-flight event: what the write callback needs. */
struct strata_slot {
	struct strata_bw *w; /* its writer */
	uint64_t seq;        /* harness sequence number */
};

struct strata_bw {
	struct strata_client *c;    /* this writer's own client */
	struct strata_writer *wr;   /* its event writer */
	bench_ack_cb cb;            /* harness ack callback */
	void *arg;                  /* its argument */
	struct strata_slot *ring;   /* slot per in-flight event */
	unsigned mask;              /* ring size - 1 (>= 4 x window) */
	struct strata_write *burst; /* events sent since the last poll */
	uint8_t *burst_data;        /* their payloads, burst_len each */
	size_t burst_len;           /* payload size burst_data is cut for */
	unsigned n_burst;           /* events in burst */
	unsigned window;            /* burst capacity */
	uint64_t n;                 /* events sent */
	char key[16];               /* routing key of this writer */
	size_t keylen;              /* its length */
	pthread_mutex_t mu;         /* guards acks, waiting */
	pthread_cond_t cv;          /* signalled on acks when waiting */
	uint64_t acks;              /* acks since the last poll */
	int waiting;                /* poll is waiting */
	int warned;                 /* a failed ack was logged */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
	                      .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Errors after which a management call is worth repeating while the
 * cluster settles (no leader yet, containers starting). */
static int transient(int rc)
{
	switch (rc) {
	case STRATA_EUNAVAIL:
	case STRATA_EAGAIN:
	case STRATA_EBUSY:
	case STRATA_ETIMEDOUT:
	case STRATA_ENOTLEADER:
	case STRATA_EWRONGHOST:
	case STRATA_ESHUTDOWN:
	case STRATA_ELEADERLOST:
	case STRATA_ECONNREFUSED:
	case STRATA_ECLOSED:
		return 1;
	}
	return 0;
}

static int new_client(const char *url, struct strata_client **out, char *errmsg)
{
	const char *urls[] = {url};
	struct strata_client_config cfg;
	strata_client_config_default(&cfg);
	cfg.controller_urls = urls;
	cfg.n_controller_urls = 1;
	char err[STRATA_ERRMSG_SIZE];
	int rc = strata_client_new(&cfg, out, err);
	if (rc != 0)
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "strata: client for %s: %.150s", url, err);
	return rc;
}

/* Seal and delete s->stream; ENOENT counts as done. */
static int drop_stream(struct strata_state *s, char *err)
{
	int rc = strata_stream_seal(s->c, STRATA_BENCH_SCOPE, s->stream, err);
	if (rc == 0)
		rc = strata_stream_delete(s->c, STRATA_BENCH_SCOPE, s->stream,
		                          err);
	return rc == STRATA_ENOENT ? 0 : rc;
}

static int strata_open(const struct bench_endpoint *ep, const char *stream,
                       int mode, void **state, char *errmsg)
{
	struct strata_state *s = strata_calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "strata: out of memory");
		return STRATA_ENOMEM;
	}
	snprintf(s->url, sizeof(s->url), "tcp://%s:%d", ep->host, ep->port);
	snprintf(s->stream, sizeof(s->stream), "%s", stream);
	for (char *p = s->stream; *p; p++)
		if (*p == '_')
			*p = '-';
	int rc = new_client(s->url, &s->c, errmsg);
	if (rc != 0) {
		strata_free(s);
		return rc;
	}
	/* The cluster may still be settling right after a (re)start. */
	char err[STRATA_ERRMSG_SIZE] = "";
	const char *what = "";
	int64_t deadline = now_ms() + STRATA_BENCH_READY_MS;
	for (;;) {
		what = "create scope " STRATA_BENCH_SCOPE;
		rc = strata_scope_create(s->c, STRATA_BENCH_SCOPE, err);
		if (rc == STRATA_EEXIST)
			rc = 0;
		if (rc == 0 && mode == BENCH_OPEN_CREATE) {
			what = "delete leftover stream";
			rc = drop_stream(s, err);
		}
		if (rc == 0 && mode == BENCH_OPEN_CREATE) {
			what = "create stream";
			struct strata_stream_config cfg;
			strata_stream_config_default(&cfg);
			cfg.scaling = STRATA_SCALING_FIXED;
			cfg.min_segments = 1;
			rc = strata_stream_create(s->c, STRATA_BENCH_SCOPE,
			                          s->stream, &cfg, err);
		} else if (rc == 0) {
			what = "find stream";
			struct strata_stream_info *info = NULL;
			rc = strata_stream_get_info(s->c, STRATA_BENCH_SCOPE,
			                            s->stream, &info, err);
			strata_stream_info_free(info);
		}
		if (rc == 0 || !transient(rc) || now_ms() > deadline)
			break;
		sleep_ms(200);
	}
	if (rc != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "strata: %s %s/%s at %s: %.80s", what,
		         STRATA_BENCH_SCOPE, s->stream, s->url, err);
		strata_client_free(s->c);
		strata_free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static void strata_close(void *state, int drop)
{
	struct strata_state *s = state;
	char err[STRATA_ERRMSG_SIZE];
	if (drop) {
		int rc = drop_stream(s, err);
		if (rc != 0)
			LOG_WARN("bench.strata", "delete stream %s/%s: %s",
			         STRATA_BENCH_SCOPE, s->stream, err);
		/* Other cases' streams may still be in the scope. */
		rc = strata_scope_delete(s->c, STRATA_BENCH_SCOPE, err);
		if (rc != 0 && rc != STRATA_ENOTEMPTY && rc != STRATA_ENOENT)
			LOG_WARN("bench.strata", "delete scope %s: %s",
			         STRATA_BENCH_SCOPE, err);
	}
	strata_client_free(s->c);
	strata_free(s);
}

/* Set while the harness's ack callback runs on a client's I/O thread:
 * a send from there writes at once (send_from_ack). */
static _Thread_local struct strata_bw *in_ack;

static void on_write(void *arg, int code, const char *errmsg)
{
	struct strata_slot *slot = arg;
	struct strata_bw *w = slot->w;
	if (code != 0 && !w->warned) {
		LOG_WARN("bench.strata", "write failed: %s", errmsg);
		w->warned = 1;
	}
	in_ack = w;
	w->cb(w->arg, slot->seq, code);
	in_ack = NULL;
	pthread_mutex_lock(&w->mu);
	w->acks++;
	if (w->waiting)
		pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static int strata_writer_open(void *state, unsigned window, bench_ack_cb cb,
                              void *arg, void **writer, char *errmsg)
{
	static _Atomic unsigned next_id;
	struct strata_state *s = state;
	struct strata_bw *w = strata_calloc(1, sizeof(*w));
	if (w == NULL)
		goto err_nomem;
	unsigned ring = 1;
	while (ring < 4 * window)
		ring <<= 1;
	w->ring = strata_calloc(ring, sizeof(*w->ring));
	if (w->ring == NULL)
		goto err_nomem;
	w->mask = ring - 1;
	w->window = window;
	w->burst = strata_calloc(window, sizeof(*w->burst));
	if (w->burst == NULL)
		goto err_nomem;
	w->cb = cb;
	w->arg = arg;
	w->keylen = (size_t)snprintf(w->key, sizeof(w->key), "w%u",
	                             next_id++ % 100000);
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	int rc = new_client(s->url, &w->c, errmsg);
	if (rc != 0)
		goto err_sync;
	/* The harness keeps at most `window` events in flight; the writer's
	 * own window is larger so that it never blocks a send while an ack
	 * callback is still returning. */
	struct strata_writer_config cfg;
	strata_writer_config_default(&cfg);
	cfg.max_inflight_events = 2 * window + 16;
	if (cfg.max_inflight_bytes < ((size_t)64 << 20))
		cfg.max_inflight_bytes = (size_t)64 << 20;
	cfg.retry_timeout_ms = STRATA_BENCH_RETRY_MS;
	char err[STRATA_ERRMSG_SIZE];
	rc = strata_writer_new(w->c, STRATA_BENCH_SCOPE, s->stream, &cfg,
	                       &w->wr, err);
	if (rc != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "strata: writer for %s/%s at %s: %.80s",
		         STRATA_BENCH_SCOPE, s->stream, s->url, err);
		goto err_client;
	}
	*writer = w;
	return 0;
err_client:
	strata_client_free(w->c);
err_sync:
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	strata_free(w->burst);
	strata_free(w->ring);
	strata_free(w);
	return rc;
err_nomem:
	if (w != NULL) {
		strata_free(w->burst);
		strata_free(w->ring);
	}
	strata_free(w);
	snprintf(errmsg, STRATA_ERRMSG_SIZE, "strata: out of memory");
	return STRATA_ENOMEM;
}

/* Hand the burst to the writer in one call. */
static int burst_flush(struct strata_bw *w)
{
	if (w->n_burst == 0)
		return 0;
	char err[STRATA_ERRMSG_SIZE];
	size_t queued = 0;
	int rc = strata_writer_write_batch(w->wr, w->burst, w->n_burst, &queued,
	                                   err);
	w->n += queued;
	w->n_burst = 0;
	if (rc != 0)
		LOG_WARN("bench.strata", "write: %s", err);
	return rc;
}

static int strata_writer_send(void *writer, uint64_t seq, const void *payload,
                              size_t len)
{
	struct strata_bw *w = writer;
	if (in_ack == w) {
		/* From the ack callback: one write, on the I/O thread, where
		 * the pump that runs after the reply's callbacks sends every
		 * event they wrote in one append. Never blocks there (the
		 * writer's window is larger than the harness's). A burst the
		 * writer's thread has not handed over yet goes first, to keep
		 * the order (the harness hands it over before it lets acks
		 * send, so this is a safeguard). */
		int rc = burst_flush(w);
		if (rc != 0)
			return rc;
		struct strata_slot *slot = &w->ring[w->n & w->mask];
		slot->w = w;
		slot->seq = seq;
		char err[STRATA_ERRMSG_SIZE];
		rc = strata_writer_write(w->wr, w->key, w->keylen, payload, len,
		                         on_write, slot, err);
		if (rc != 0) {
			LOG_WARN("bench.strata", "write: %s", err);
			return rc;
		}
		w->n++;
		return 0;
	}
	/* Full (the harness keeps to the window, so not in practice), or
	 * burst_data is cut for another payload size: hand over first. */
	if (w->n_burst == w->window || len != w->burst_len) {
		int rc = burst_flush(w);
		if (rc != 0)
			return rc;
	}
	if (len != w->burst_len) {
		uint8_t *d = strata_realloc(
		        w->burst_data, (size_t)w->window * (len ? len : 1));
		if (d == NULL)
			return STRATA_ENOMEM;
		w->burst_data = d;
		w->burst_len = len;
	}
	struct strata_slot *slot = &w->ring[(w->n + w->n_burst) & w->mask];
	slot->w = w;
	slot->seq = seq;
	uint8_t *data = w->burst_data + (size_t)w->n_burst * len;
	memcpy(data, payload, len);
	w->burst[w->n_burst++] = (struct strata_write){.key = w->key,
	                                               .keylen = w->keylen,
	                                               .data = data,
	                                               .len = len,
	                                               .cb = on_write,
	                                               .arg = slot};
	return 0;
}

static int strata_writer_poll(void *writer, int timeout_ms)
{
	struct strata_bw *w = writer;
	int rc = burst_flush(w);
	if (rc != 0)
		return rc;
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	w->waiting = 1;
	while (w->acks == 0) {
		if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0)
			break;
	}
	w->waiting = 0;
	w->acks = 0;
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static void strata_writer_close_op(void *writer)
{
	struct strata_bw *w = writer;
	char err[STRATA_ERRMSG_SIZE];
	(void)burst_flush(w);
	/* Flushes: every callback has returned when it does. */
	if (strata_writer_close(w->wr, err) != 0)
		LOG_WARN("bench.strata", "close writer: %s", err);
	strata_client_free(w->c);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	strata_free(w->burst_data);
	strata_free(w->burst);
	strata_free(w->ring);
	strata_free(w);
}

/* The stream's segments at its head (one with fixed(1) scaling). */
static int head_segments(struct strata_state *s, struct strata_segment_list **l,
                         char *err)
{
	struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
	snprintf(cut.scope, sizeof(cut.scope), "%s", STRATA_BENCH_SCOPE);
	snprintf(cut.stream, sizeof(cut.stream), "%s", s->stream);
	return strata_stream_segments_at_cut(s->c, &cut, l, err);
}

static int strata_read_all(void *state, uint64_t expect, int timeout_ms,
                           bench_read_cb cb, void *arg, char *errmsg)
{
	struct strata_state *s = state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_segment_list *l = NULL;
	int rc = head_segments(s, &l, err);
	if (rc != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "strata: segments of %s/%s at the head: %.150s",
		         STRATA_BENCH_SCOPE, s->stream, err);
		return rc;
	}
	int64_t deadline = now_ms() + timeout_ms;
	uint64_t got = 0;
	for (size_t i = 0; i < l->n && got < expect && rc == 0; i++) {
		struct strata_event_iter *it = NULL;
		const char *seg = l->segments[i].name;
		rc = strata_event_iter_new(
		        s->c, seg, (uint64_t)l->segments[i].offset, UINT64_MAX,
		        STRATA_BENCH_READ_BYTES, &it, err);
		while (rc == 0 && got < expect) {
			struct strata_event ev;
			rc = strata_event_iter_next(it, 1000, &ev, err);
			if (rc != 0 || ev.end)
				break;
			if (ev.data == NULL) {
				if (now_ms() > deadline) {
					rc = STRATA_ETIMEDOUT;
					snprintf(err, sizeof(err),
					         "only %" PRIu64 " of %" PRIu64
					         " events after %d ms",
					         got, expect, timeout_ms);
				}
				continue;
			}
			got++;
			int stop = cb(arg, ev.data, ev.len);
			if (stop != 0) {
				rc = stop;
				snprintf(err, sizeof(err), "stopped by caller");
			}
		}
		strata_event_iter_free(it);
		if (rc != 0)
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "strata: read %.80s at event %" PRIu64
			         ": %.120s",
			         seg, got, err);
	}
	strata_segment_list_free(l);
	if (rc == 0 && got < expect) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "strata: %s/%s ended after %" PRIu64 " of %" PRIu64
		         " events",
		         STRATA_BENCH_SCOPE, s->stream, got, expect);
		rc = STRATA_ERANGE;
	}
	return rc;
}

/* Wait until every segment at the head is entirely in tier 2 (flushed
 * length = length), so that a read after a restart comes from there. */
static int strata_settle(void *state, int timeout_ms, char *errmsg)
{
	struct strata_state *s = state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_segment_list *l = NULL;
	int rc = head_segments(s, &l, err);
	int64_t deadline = now_ms() + timeout_ms;
	for (size_t i = 0; rc == 0 && i < l->n; i++) {
		struct strata_segment_stat st;
		for (;;) {
			rc = strata_segment_get_stat(s->c, l->segments[i].name,
			                             &st, err);
			if (rc != 0 || st.flushed_length >= st.length)
				break;
			if (now_ms() > deadline) {
				rc = STRATA_ETIMEDOUT;
				snprintf(err, sizeof(err),
				         "%" PRIu64 " of %" PRIu64
				         " bytes in tier 2 after %d ms",
				         st.flushed_length, st.length,
				         timeout_ms);
				break;
			}
			sleep_ms(100);
		}
	}
	if (rc != 0)
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "strata: wait for %s/%s in tier 2: %.150s",
		         STRATA_BENCH_SCOPE, s->stream, err);
	strata_segment_list_free(l);
	return rc;
}

const struct bench_backend_ops bench_backend_strata = {
        .name = "strata",
        .open = strata_open,
        .writer_open = strata_writer_open,
        .writer_send = strata_writer_send,
        .writer_poll = strata_writer_poll,
        .writer_close = strata_writer_close_op,
        .read_all = strata_read_all,
        .close = strata_close,
        .cleanup = NULL,
        .settle = strata_settle,
        .send_from_ack = 1,
};
