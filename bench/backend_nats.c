/* Benchmark backend for NATS JetStream (file storage) through libnats. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "bench/backend.h"
#include "common/alloc.h"
#include "common/log.h"
#include "strata/error.h"

/*
 * One NATS connection and JetStream context per writer. writer_send is
 * js_PublishAsync; the library delivers each PubAck on its own thread to
 * ack_handler, which reads the seq back from the message's first 8 bytes,
 * calls the harness callback (serialised per writer by w->cb_mu; it may
 * publish the next event: send_from_ack) and wakes writer_poll. The
 * library counts a message as pending until its ack handler returns, so
 * MaxPending is the window + 1: the publish from inside the handler must
 * not stall on the ack being handled. The stream uses file storage with one
 * replica; nats-server 2.9 acknowledges once the message is in the store's
 * write buffer, with no fsync per ack (it syncs every 2 minutes by default):
 * the report says so. Catch-up reads use an ordered push consumer
 * (flow-controlled, no acks).
 */

#define NATS_ADMIN_TIMEOUT_MS 10000

struct nats_state {
	natsConnection *nc; /* admin connection (create/delete, read) */
	jsCtx *js;          /* its JetStream context */
	char url[96];       /* nats://127.0.0.1:port */
	char name[64];      /* stream name */
	char subj[80];      /* "bench.<stream>" */
};

struct nats_writer {
	natsConnection *nc;    /* this writer's connection */
	jsCtx *js;             /* with the async-publish ack handler */
	const char *subj;      /* borrowed from the state */
	bench_ack_cb cb;       /* harness callback */
	void *arg;             /* its argument */
	pthread_mutex_t mu;    /* guards acks */
	pthread_cond_t cv;     /* signalled on every ack */
	uint64_t acks;         /* acks since the last poll */
	pthread_mutex_t cb_mu; /* serialises cb calls; guards the two below */
	int closed;            /* writer_close started: drop acks */
	int warned;            /* an error ack was logged already */
};

static int nats_err(char *errmsg, const char *what, const char *name,
                    natsStatus s)
{
	snprintf(errmsg, STRATA_ERRMSG_SIZE, "nats: %s %s: %s (%s)", what, name,
	         natsStatus_GetText(s), nats_GetLastError(NULL));
	return s == NATS_TIMEOUT ? STRATA_ETIMEDOUT : STRATA_EIO;
}

/* send_asap: write each publish from the calling thread instead of
 * leaving it to the library's flusher thread, which sleeps 1 ms to
 * coalesce writes: right for one event in flight, wrong for many. */
static natsStatus connect_url(const char *url, bool send_asap,
                              natsConnection **nc)
{
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetURL(o, url);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, 5000);
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(o, false);
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(o, send_asap);
	if (s == NATS_OK)
		s = natsConnection_Connect(nc, o);
	natsOptions_Destroy(o);
	return s;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int nats_open(const struct bench_endpoint *ep, const char *stream,
                     int mode, void **state, char *errmsg)
{
	struct nats_state *s = strata_calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "nats: out of memory");
		return STRATA_ENOMEM;
	}
	snprintf(s->url, sizeof(s->url), "nats://%s:%d", ep->host, ep->port);
	snprintf(s->name, sizeof(s->name), "%s", stream);
	snprintf(s->subj, sizeof(s->subj), "bench.%s", stream);
	natsStatus st = connect_url(s->url, false, &s->nc);
	if (st != NATS_OK) {
		int rc = nats_err(errmsg, "connect", s->url, st);
		strata_free(s);
		return rc == STRATA_EIO ? STRATA_ECONNREFUSED : rc;
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = NATS_ADMIN_TIMEOUT_MS;
	st = natsConnection_JetStream(&s->js, s->nc, &jo);
	if (st != NATS_OK) {
		nats_err(errmsg, "JetStream context", s->url, st);
		goto err_conn;
	}
	/* Fresh stream; JetStream may need a moment after the server
	 * starts, so the create is retried for a few seconds. */
	jsErrCode jerr = 0;
	if (mode == BENCH_OPEN_CREATE)
		js_DeleteStream(s->js, s->name, NULL, &jerr);
	const char *subjects[] = {s->subj};
	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	cfg.Name = s->name;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Replicas = 1;
	int64_t deadline = now_ms() + NATS_ADMIN_TIMEOUT_MS;
	for (;;) {
		jsStreamInfo *si = NULL;
		if (mode == BENCH_OPEN_CREATE)
			st = js_AddStream(&si, s->js, &cfg, NULL, &jerr);
		else
			st = js_GetStreamInfo(&si, s->js, s->name, NULL, &jerr);
		if (st == NATS_OK) {
			jsStreamInfo_Destroy(si);
			break;
		}
		if (now_ms() > deadline) {
			nats_err(errmsg, "create JetStream stream", s->name,
			         st);
			goto err_js;
		}
		struct timespec ts = {.tv_nsec = 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	*state = s;
	return 0;
err_js:
	jsCtx_Destroy(s->js);
err_conn:
	natsConnection_Destroy(s->nc);
	strata_free(s);
	return STRATA_EIO;
}

static void nats_close(void *state, int drop)
{
	struct nats_state *s = state;
	jsErrCode jerr = 0;
	natsStatus st =
	        drop ? js_DeleteStream(s->js, s->name, NULL, &jerr) : NATS_OK;
	if (st != NATS_OK)
		LOG_WARN("bench.nats", "delete stream %s: %s", s->name,
		         natsStatus_GetText(st));
	jsCtx_Destroy(s->js);
	natsConnection_Destroy(s->nc);
	strata_free(s);
}

static void ack_handler(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
                        void *closure)
{
	(void)js;
	struct nats_writer *w = closure;
	uint64_t seq = 0;
	const unsigned char *d = (const unsigned char *)natsMsg_GetData(msg);
	if (d != NULL && natsMsg_GetDataLength(msg) >= 8) {
		for (int i = 7; i >= 0; i--)
			seq = (seq << 8) | d[i];
	}
	int status = (pa != NULL && pae == NULL) ? 0 : STRATA_EIO;
	pthread_mutex_lock(&w->cb_mu);
	if (status != 0 && !w->warned) {
		LOG_WARN("bench.nats", "publish to %s: %s", w->subj,
		         pae ? pae->ErrText : "no ack");
		w->warned = 1;
	}
	if (!w->closed) {
		/* Not under w->mu: the callback may send the next event, and
		 * a writer thread handing over its window holds the harness's
		 * send lock while it polls (w->mu). */
		w->cb(w->arg, seq, status);
		pthread_mutex_lock(&w->mu);
		w->acks++;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
	pthread_mutex_unlock(&w->cb_mu);
	natsMsg_Destroy(msg);
}

static int nats_writer_open(void *state, unsigned window, bench_ack_cb cb,
                            void *arg, void **writer, char *errmsg)
{
	struct nats_state *s = state;
	struct nats_writer *w = strata_calloc(1, sizeof(*w));
	if (w == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "nats: out of memory");
		return STRATA_ENOMEM;
	}
	w->subj = s->subj;
	w->cb = cb;
	w->arg = arg;
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->cb_mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	natsStatus st = connect_url(s->url, window == 1, &w->nc);
	if (st != NATS_OK) {
		nats_err(errmsg, "connect", s->url, st);
		goto err_free;
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = window + 1;
	jo.PublishAsync.AckHandler = ack_handler;
	jo.PublishAsync.AckHandlerClosure = w;
	st = natsConnection_JetStream(&w->js, w->nc, &jo);
	if (st != NATS_OK) {
		nats_err(errmsg, "JetStream context", s->url, st);
		goto err_conn;
	}
	*writer = w;
	return 0;
err_conn:
	natsConnection_Destroy(w->nc);
err_free:
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	pthread_mutex_destroy(&w->cb_mu);
	strata_free(w);
	return STRATA_ECONNREFUSED;
}

static int nats_writer_send(void *writer, uint64_t seq, const void *payload,
                            size_t len)
{
	(void)seq;
	struct nats_writer *w = writer;
	natsStatus st =
	        js_PublishAsync(w->js, w->subj, payload, (int)len, NULL);
	return st == NATS_OK ? 0 : STRATA_EIO;
}

static int nats_writer_poll(void *writer, int timeout_ms)
{
	struct nats_writer *w = writer;
	if (natsConnection_Status(w->nc) != NATS_CONN_STATUS_CONNECTED)
		return STRATA_ECLOSED;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (w->acks == 0) {
		if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
			break;
	}
	w->acks = 0;
	pthread_mutex_unlock(&w->mu);
	return 0;
}

static void nats_writer_close(void *writer)
{
	struct nats_writer *w = writer;
	pthread_mutex_lock(&w->cb_mu);
	w->closed = 1;
	pthread_mutex_unlock(&w->cb_mu);
	natsConnection_Close(w->nc);
	jsCtx_Destroy(w->js);
	natsConnection_Destroy(w->nc);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	pthread_mutex_destroy(&w->cb_mu);
	strata_free(w);
}

static int nats_read_all(void *state, uint64_t expect, int timeout_ms,
                         bench_read_cb cb, void *arg, char *errmsg)
{
	struct nats_state *s = state;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Ordered = true;
	so.Stream = s->name;
	natsSubscription *sub = NULL;
	jsErrCode jerr = 0;
	natsStatus st =
	        js_SubscribeSync(&sub, s->js, s->subj, NULL, &so, &jerr);
	if (st != NATS_OK)
		return nats_err(errmsg, "ordered consumer on", s->subj, st);
	/* Bounded client-side queue; flow control keeps the server in it. */
	natsSubscription_SetPendingLimits(sub, 1 << 20, 512 << 20);
	int64_t deadline = now_ms() + timeout_ms;
	uint64_t n = 0;
	int rc = 0;
	while (n < expect) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "nats: read %s: %" PRIu64 " of %" PRIu64
			         " events in %d ms",
			         s->subj, n, expect, timeout_ms);
			rc = STRATA_ETIMEDOUT;
			break;
		}
		natsMsg *m = NULL;
		st = natsSubscription_NextMsg(&m, sub, left);
		if (st == NATS_TIMEOUT)
			continue;
		if (st != NATS_OK) {
			rc = nats_err(errmsg, "read", s->subj, st);
			break;
		}
		n++;
		rc = cb(arg, natsMsg_GetData(m),
		        (size_t)natsMsg_GetDataLength(m));
		natsMsg_Destroy(m);
		if (rc != 0)
			break;
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	return rc;
}

/* Stop the library's threads so the process exits clean. */
static void nats_cleanup(void)
{
	nats_CloseAndWait(5000);
}

const struct bench_backend_ops bench_backend_nats = {
        .name = "nats",
        .send_from_ack = 1,
        .open = nats_open,
        .writer_open = nats_writer_open,
        .writer_send = nats_writer_send,
        .writer_poll = nats_writer_poll,
        .writer_close = nats_writer_close,
        .read_all = nats_read_all,
        .close = nats_close,
        .cleanup = nats_cleanup,
};
