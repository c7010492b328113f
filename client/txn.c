/* libstrata transactions (strata/txn.h): a controller record, a writer on
 * the transaction's shadow segments, and a commit that merges them.
 *
 * Happy path: CTL_CREATE_TXN (the controller records it OPEN on the
 * current epoch and creates one shadow per segment of that epoch) ->
 * CTL_GET_TXN until segments_created -> CTL_GET_CURRENT_SEGMENTS between
 * two CTL_GET_STREAM that both name the transaction's epoch (else the
 * stream scaled meanwhile: abort, and begin again, a few times) -> a
 * writer on the shadows
 * (client_writer_new_txn: the same exactly-once appends as any writer) ->
 * writes, while a timer on the client's I/O thread renews the lease
 * (CTL_PING_TXN) every third of it -> commit: flush, stop renewing,
 * CTL_COMMIT_TXN, CTL_GET_TXN until COMMITTED.
 *
 * Failure modes: an event that failed makes the commit abort instead; a
 * lease that ran out (the controller aborted it) shows as STRATA_ECONFLICT
 * on ping or commit; a commit whose outcome is unknown is repeated (the
 * controller takes a repeated end in the same direction as done). Not
 * thread-safe: one thread uses a handle at a time.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client/client_int.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "strata/txn.h"

#define TXN_BEGIN_TRIES 5 /* begins retried when the stream scaled */
#define TXN_POLL_MS 20    /* first CTL_GET_TXN poll interval, doubling */
#define TXN_POLL_MAX_MS 500

struct strata_txn {
	struct strata_client *c;
	char scope[STRATA_NAME_MAX + 1];
	char stream[STRATA_NAME_MAX + 1];
	uint64_t id;
	uint64_t lease_ms;
	struct strata_writer *w; /* NULL once ended */
	bool ended;              /* committed or aborted through it */
	/* Lease renewal on the client's I/O thread (renew_*), lease/3
	 * apart, from begin until commit, abort or free. */
	pthread_mutex_t mu;  /* guards the three flags below */
	pthread_cond_t cv;   /* signalled when they change */
	bool renew_stop;     /* no new renewal starts */
	bool renew_stopped;  /* the timer is disarmed for good */
	bool renew_inflight; /* a CTL_PING_TXN is out */
	struct loop_timer renew_timer;
	struct loop_task renew_start_task;
	struct loop_task renew_stop_task;
	struct creq renew_rq;
};

static void renew_start(struct strata_txn *t);

void strata_txn_config_default(struct strata_txn_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->lease_ms = 30000;
	strata_writer_config_default(&cfg->writer);
}

uint64_t strata_txn_id(const struct strata_txn *t)
{
	return t->id;
}

static Strata__V1__Txn *get_txn(struct strata_client *c, const char *scope,
                                const char *stream, uint64_t id, int *rc,
                                char *errmsg)
{
	Strata__V1__GetTxnRequest q = STRATA__V1__GET_TXN_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	q.txn_id = id;
	Strata__V1__Txn *t = NULL;
	*rc = client_ctl_query(c, STRATA__V1__CONTROLLER_METHOD__CTL_GET_TXN,
	                       &q.base, &strata__v1__txn__descriptor,
	                       (ProtobufCMessage **)&t, errmsg);
	return *rc == 0 ? t : NULL;
}

/* Poll transaction id until done(t) or the operation timeout, counted
 * from started (clock_mono_ms when the begin, commit or abort began: the
 * whole operation keeps within the timeout, not each step). */
static int wait_txn(struct strata_client *c, const char *scope,
                    const char *stream, uint64_t id,
                    bool (*done)(const Strata__V1__Txn *t), uint64_t started,
                    int *state, char *errmsg)
{
	uint64_t deadline = started + (uint64_t)c->cfg.operation_timeout_ms;
	unsigned d = TXN_POLL_MS;
	for (;;) {
		int rc;
		Strata__V1__Txn *t = get_txn(c, scope, stream, id, &rc, errmsg);
		if (t == NULL) {
			return rc;
		}
		bool ok = done(t);
		*state = (int)t->state;
		rpc_pb_free(&t->base);
		if (ok) {
			return 0;
		}
		if (clock_mono_ms() + d >= deadline) {
			if (*state != STRATA_TXN_COMMITTING &&
			    *state != STRATA_TXN_ABORTING) {
				/* A begin: it aborts what it began. */
				client_err(
				        errmsg,
				        "transaction %" PRIu64 " of %s/%s: "
				        "its segments were not ready after "
				        "%d ms (are the segment stores up?); "
				        "it is aborted",
				        id, scope, stream,
				        c->cfg.operation_timeout_ms);
				return STRATA_ETIMEDOUT;
			}
			client_err(errmsg,
			           "transaction %" PRIu64 " of %s/%s: still %s "
			           "after %d ms; the controller completes it "
			           "in the background: check its state later "
			           "(stratactl txn status, strata_txn_status)",
			           id, scope, stream,
			           *state == STRATA_TXN_COMMITTING
			                   ? "committing"
			                   : "aborting",
			           c->cfg.operation_timeout_ms);
			return STRATA_ETIMEDOUT;
		}
		clock_sleep_ms(d);
		d = d * 2 > TXN_POLL_MAX_MS ? TXN_POLL_MAX_MS : d * 2;
	}
}

static bool segments_ready(const Strata__V1__Txn *t)
{
	return t->segments_created || (int)t->state != STRATA_TXN_OPEN;
}

static bool ended(const Strata__V1__Txn *t)
{
	return (int)t->state == STRATA_TXN_COMMITTED ||
	       (int)t->state == STRATA_TXN_ABORTED;
}

/* Commit or abort id on the controller and wait until it completed. */
static int end_txn(struct strata_client *c, const char *scope,
                   const char *stream, uint64_t id, bool commit, char *errmsg)
{
	char what[600];
	snprintf(what, sizeof(what), "%s transaction %" PRIu64 " of %s/%s",
	         commit ? "commit" : "abort", id, scope, stream);
	Strata__V1__EndTxnRequest q = STRATA__V1__END_TXN_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	q.txn_id = id;
	q.commit = commit;
	uint32_t method = commit ? STRATA__V1__CONTROLLER_METHOD__CTL_COMMIT_TXN
	                         : STRATA__V1__CONTROLLER_METHOD__CTL_ABORT_TXN;
	uint64_t started = clock_mono_ms();
	/* EBUSY: shadows not created yet, or a scale runs. */
	int rc = client_ctl_mutate_busy(c, method, &q.base, 0, what, errmsg);
	if (rc != 0) {
		return rc;
	}
	int state = 0;
	rc = wait_txn(c, scope, stream, id, ended, started, &state, errmsg);
	if (rc == 0 &&
	    state != (commit ? STRATA_TXN_COMMITTED : STRATA_TXN_ABORTED)) {
		client_err(errmsg, "%s: it was %s instead", what,
		           commit ? "aborted" : "committed");
		return STRATA_ECONFLICT;
	}
	return rc;
}

/* The stream's current epoch. */
static int stream_epoch(struct strata_client *c, const char *scope,
                        const char *stream, uint32_t *epoch, char *errmsg)
{
	Strata__V1__GetStreamRequest q = STRATA__V1__GET_STREAM_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	Strata__V1__StreamInfo *si = NULL;
	int rc = client_ctl_query(c,
	                          STRATA__V1__CONTROLLER_METHOD__CTL_GET_STREAM,
	                          &q.base, &strata__v1__stream_info__descriptor,
	                          (ProtobufCMessage **)&si, errmsg);
	if (rc == 0) {
		*epoch = si->current_epoch;
		rpc_pb_free(&si->base);
	}
	return rc;
}

/* The current segments, if they are those of epoch (the stream's epoch
 * before and after reading them; a segment's id names the epoch that
 * created it, not every epoch it belongs to); else *rc = 0 and NULL (the
 * stream scaled). */
static Strata__V1__SegmentsReply *
epoch_segments(struct strata_client *c, const char *scope, const char *stream,
               uint32_t epoch, int *rc, char *errmsg)
{
	uint32_t before = 0, after = 0;
	*rc = stream_epoch(c, scope, stream, &before, errmsg);
	if (*rc != 0 || before != epoch) {
		return NULL;
	}
	Strata__V1__GetSegmentsRequest q =
	        STRATA__V1__GET_SEGMENTS_REQUEST__INIT;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	Strata__V1__SegmentsReply *segs = NULL;
	*rc = client_ctl_query(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_GET_CURRENT_SEGMENTS,
	        &q.base, &strata__v1__segments_reply__descriptor,
	        (ProtobufCMessage **)&segs, errmsg);
	if (*rc != 0) {
		return NULL;
	}
	*rc = stream_epoch(c, scope, stream, &after, errmsg);
	if (*rc != 0 || after != epoch || segs->n_segments == 0) {
		rpc_pb_free(&segs->base);
		return NULL;
	}
	return segs;
}

/* One try of begin: *scaled when the stream scaled meanwhile (the
 * transaction was aborted: try again). */
static int begin_once(struct strata_txn *t, const struct strata_txn_config *cfg,
                      bool *scaled, char *errmsg)
{
	struct strata_client *c = t->c;
	*scaled = false;
	char what[600];
	snprintf(what, sizeof(what), "begin a transaction on %s/%s", t->scope,
	         t->stream);
	Strata__V1__CreateTxnRequest q = STRATA__V1__CREATE_TXN_REQUEST__INIT;
	q.scope = t->scope;
	q.stream = t->stream;
	q.lease_ms = cfg->lease_ms;
	Strata__V1__ControllerReply *rep = NULL;
	uint64_t started = clock_mono_ms();
	/* EBUSY: the stream is scaling (or a commit rolls a transaction):
	 * nothing was recorded, so wait and retry. */
	int rc = client_ctl_mutate_reply_busy(
	        c, STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_TXN, &q.base, 0,
	        what, &rep, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (rep == NULL || rep->txn_id == 0) {
		if (rep != NULL) {
			rpc_pb_free(&rep->base);
		}
		client_err(errmsg, "%s: the controller named no transaction",
		           what);
		return STRATA_EPROTO;
	}
	t->id = rep->txn_id;
	rpc_pb_free(&rep->base);
	int state = 0;
	rc = wait_txn(c, t->scope, t->stream, t->id, segments_ready, started,
	              &state, errmsg);
	if (rc == 0 && state != STRATA_TXN_OPEN) {
		client_err(errmsg,
		           "%s: transaction %" PRIu64 " ended before its "
		           "segments were ready (the stream was sealed?)",
		           what, t->id);
		rc = STRATA_ECONFLICT;
	}
	Strata__V1__Txn *rec = NULL;
	if (rc == 0) {
		rec = get_txn(c, t->scope, t->stream, t->id, &rc, errmsg);
	}
	Strata__V1__SegmentsReply *segs = NULL;
	if (rec != NULL) {
		segs = epoch_segments(c, t->scope, t->stream, rec->epoch, &rc,
		                      errmsg);
		rpc_pb_free(&rec->base);
		if (rc == 0 && segs == NULL) {
			*scaled = true;
		}
	}
	if (segs != NULL) {
		rc = client_writer_new_txn(c, t->scope, t->stream, &cfg->writer,
		                           t->id, segs, &t->w, errmsg);
		rpc_pb_free(&segs->base);
	}
	if (rc != 0 || *scaled) {
		char ignored[STRATA_ERRMSG_SIZE];
		end_txn(c, t->scope, t->stream, t->id, false, ignored);
	}
	return rc;
}

int strata_txn_begin(struct strata_client *c, const char *scope,
                     const char *stream, const struct strata_txn_config *cfg,
                     struct strata_txn **out, char *errmsg)
{
	struct strata_txn_config def;
	if (cfg == NULL) {
		strata_txn_config_default(&def);
		cfg = &def;
	}
	int rc = client_check_name(scope, "scope", errmsg);
	if (rc != 0 ||
	    (rc = client_check_name(stream, "stream", errmsg)) != 0 ||
	    (rc = client_check_user_stream(stream, errmsg)) != 0 ||
	    (rc = client_check_blocking(c, "strata_txn_begin", errmsg)) != 0) {
		return rc;
	}
	if (cfg->lease_ms == 0 || cfg->lease_ms > 600000) {
		client_err(errmsg,
		           "transaction lease_ms %" PRIu64
		           " is out of range: use 1..600000 (default 30000)",
		           cfg->lease_ms);
		return STRATA_EINVAL;
	}
	/* Before the controller records anything: a bad writer config
	 * would otherwise fail only once the shadows exist. */
	if ((rc = client_writer_check_config(&cfg->writer, errmsg)) != 0) {
		return rc;
	}
	struct strata_txn *t = strata_calloc(1, sizeof(*t));
	if (t == NULL) {
		client_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	t->c = c;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	snprintf(t->scope, sizeof(t->scope), "%s", scope);
	snprintf(t->stream, sizeof(t->stream), "%s", stream);
	t->lease_ms = cfg->lease_ms;
	bool scaled = false;
	for (int i = 0; i < TXN_BEGIN_TRIES; i++) {
		rc = begin_once(t, cfg, &scaled, errmsg);
		if (rc != 0 || !scaled) {
			break;
		}
	}
	if (rc == 0 && scaled) {
		client_err(errmsg,
		           "begin a transaction on %s/%s: the stream kept "
		           "scaling (%d tries); retry later",
		           scope, stream, TXN_BEGIN_TRIES);
		rc = STRATA_EBUSY;
	}
	if (rc != 0) {
		pthread_cond_destroy(&t->cv);
		pthread_mutex_destroy(&t->mu);
		strata_free(t);
		return rc;
	}
	renew_start(t);
	*out = t;
	return 0;
}

static void renew_fill(struct strata_txn *t, Strata__V1__PingTxnRequest *q)
{
	Strata__V1__PingTxnRequest init = STRATA__V1__PING_TXN_REQUEST__INIT;
	*q = init;
	q->scope = t->scope;
	q->stream = t->stream;
	q->txn_id = t->id;
	q->lease_ms = t->lease_ms;
}

static int ping(struct strata_txn *t, char *errmsg)
{
	char what[600];
	snprintf(what, sizeof(what),
	         "renew the lease of transaction %" PRIu64 " of %s/%s", t->id,
	         t->scope, t->stream);
	Strata__V1__PingTxnRequest q;
	renew_fill(t, &q);
	return client_ctl_mutate(t->c,
	                         STRATA__V1__CONTROLLER_METHOD__CTL_PING_TXN,
	                         &q.base, 0, what, errmsg);
}

/* ---------------------------------------- lease renewal (I/O thread) -- */

#define RENEW_RETRY_MS 1000 /* after a failed renewal */

static void renew_done(struct creq *r)
{
	struct strata_txn *t = r->owner;
	int code = r->code;
	creq_reset(r);
	pthread_mutex_lock(&t->mu);
	t->renew_inflight = false;
	/* Not open any more (ended elsewhere, or its lease ran out): the
	 * commit says so; nothing to renew. */
	bool over = code == STRATA_ECONFLICT || code == STRATA_ENOENT;
	if (!t->renew_stop && !over) {
		loop_timer_arm(t->c->loop, &t->renew_timer,
		               code == 0 ? t->lease_ms / 3 : RENEW_RETRY_MS);
	}
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

static void renew_timer_fn(void *arg)
{
	struct strata_txn *t = arg;
	pthread_mutex_lock(&t->mu);
	if (t->renew_stop || t->renew_inflight) {
		pthread_mutex_unlock(&t->mu);
		return;
	}
	t->renew_inflight = true;
	pthread_mutex_unlock(&t->mu);
	Strata__V1__PingTxnRequest q;
	renew_fill(t, &q);
	char msg[STRATA_ERRMSG_SIZE];
	int rc = creq_start(t->c, &t->renew_rq, NULL,
	                    STRATA__V1__CONTROLLER_METHOD__CTL_PING_TXN,
	                    RPC_IDEMPOTENT, &q.base, renew_done, t, msg);
	if (rc != 0) {
		pthread_mutex_lock(&t->mu);
		t->renew_inflight = false;
		if (!t->renew_stop) {
			loop_timer_arm(t->c->loop, &t->renew_timer,
			               RENEW_RETRY_MS);
		}
		pthread_cond_broadcast(&t->cv);
		pthread_mutex_unlock(&t->mu);
	}
}

static void renew_start_fn(void *arg)
{
	struct strata_txn *t = arg;
	loop_timer_arm(t->c->loop, &t->renew_timer, t->lease_ms / 3);
}

static void renew_stop_fn(void *arg)
{
	struct strata_txn *t = arg;
	loop_timer_cancel(t->c->loop, &t->renew_timer);
	pthread_mutex_lock(&t->mu);
	t->renew_stopped = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

/* Start renewing the lease (once begin succeeded). */
static void renew_start(struct strata_txn *t)
{
	loop_task_init(&t->renew_start_task, renew_start_fn, t);
	loop_task_init(&t->renew_stop_task, renew_stop_fn, t);
	loop_timer_init(&t->renew_timer, renew_timer_fn, t);
	loop_post(t->c->loop, &t->renew_start_task);
}

/* Stop renewing and wait until nothing of it is pending (then t may be
 * freed). Not on the I/O thread; idempotent. */
static void renew_stop(struct strata_txn *t)
{
	pthread_mutex_lock(&t->mu);
	bool first = !t->renew_stop;
	t->renew_stop = true;
	pthread_mutex_unlock(&t->mu);
	if (first) {
		loop_post(t->c->loop, &t->renew_stop_task);
	}
	pthread_mutex_lock(&t->mu);
	while (!t->renew_stopped || t->renew_inflight) {
		pthread_cond_wait(&t->cv, &t->mu);
	}
	pthread_mutex_unlock(&t->mu);
}

static int check_open(const struct strata_txn *t, const char *fn, char *errmsg)
{
	if (t->ended) {
		client_err(errmsg,
		           "%s: transaction %" PRIu64 " of %s/%s was already "
		           "committed or aborted through this handle",
		           fn, t->id, t->scope, t->stream);
		return STRATA_EINVAL;
	}
	return 0;
}

int strata_txn_write(struct strata_txn *t, const void *key, size_t keylen,
                     const void *data, size_t len, char *errmsg)
{
	int rc = check_open(t, "strata_txn_write", errmsg);
	if (rc == 0) {
		rc = strata_writer_write(t->w, key, keylen, data, len, NULL,
		                         NULL, errmsg);
	}
	return rc;
}

int strata_txn_flush(struct strata_txn *t, char *errmsg)
{
	int rc = check_open(t, "strata_txn_flush", errmsg);
	if (rc == 0) {
		rc = strata_writer_flush(t->w, errmsg);
	}
	return rc;
}

int strata_txn_ping(struct strata_txn *t, char *errmsg)
{
	int rc = check_open(t, "strata_txn_ping", errmsg);
	return rc != 0 ? rc : ping(t, errmsg);
}

/* Close the writer (every event resolved); 0 only when no event of the
 * transaction ever failed or was refused, even one an earlier
 * strata_txn_write or strata_txn_flush already reported. */
static int close_writer(struct strata_txn *t, char *errmsg)
{
	int rc = strata_writer_flush(t->w, errmsg);
	if (rc == 0) {
		rc = client_writer_failed(t->w, errmsg);
	}
	char ignored[STRATA_ERRMSG_SIZE];
	int crc = strata_writer_close(t->w, rc == 0 ? errmsg : ignored);
	if (rc == 0) {
		rc = crc;
	}
	renew_stop(t); /* the flush is over: commit or abort next */
	t->w = NULL;
	t->ended = true;
	return rc;
}

/* Commit id. A commit the controller refuses for good is aborted
 * (errmsg says so): the stream scaled since the begin and the controller
 * cannot roll it (ENOSPC: the stream ran out of segment numbers; ENOTSUP:
 * a controller older than rolling transactions). */
static int commit_or_abort(struct strata_client *c, const char *scope,
                           const char *stream, uint64_t id, char *errmsg)
{
	int rc = end_txn(c, scope, stream, id, true, errmsg);
	if (rc == STRATA_ENOTSUP || rc == STRATA_ENOSPC) {
		char ignored[STRATA_ERRMSG_SIZE];
		int arc = end_txn(c, scope, stream, id, false, ignored);
		size_t n = strlen(errmsg);
		snprintf(errmsg + n, STRATA_ERRMSG_SIZE - n, " (%s)",
		         arc == 0 ? "it is aborted"
		                  : "aborting it failed: its lease ends it");
	}
	return rc;
}

/* Arguments of the by-id calls; 0 or STRATA_EINVAL. */
static int check_id_args(struct strata_client *c, const char *scope,
                         const char *stream, const char *fn, char *errmsg)
{
	int rc = client_check_name(scope, "scope", errmsg);
	if (rc == 0) {
		rc = client_check_name(stream, "stream", errmsg);
	}
	if (rc == 0) {
		rc = client_check_blocking(c, fn, errmsg);
	}
	return rc;
}

int strata_txn_commit(struct strata_txn *t, char *errmsg)
{
	int rc = check_open(t, "strata_txn_commit", errmsg);
	if (rc != 0) {
		return rc;
	}
	char werr[STRATA_ERRMSG_SIZE];
	rc = close_writer(t, werr);
	if (rc != 0) {
		/* An event is not in its shadow: all or nothing. */
		char aerr[STRATA_ERRMSG_SIZE];
		int arc =
		        end_txn(t->c, t->scope, t->stream, t->id, false, aerr);
		if (arc == STRATA_ECONFLICT) {
			/* Someone committed it by id meanwhile, with only
			 * the events its shadows had then. */
			client_err(errmsg,
			           "transaction %" PRIu64 " of %s/%s was "
			           "committed by another client before all of "
			           "its events were written: some are not in "
			           "the stream (%s)",
			           t->id, t->scope, t->stream, werr);
			return STRATA_ECONFLICT;
		}
		client_err(errmsg,
		           "commit transaction %" PRIu64 " of %s/%s: an event "
		           "could not be written, so it %s: %s",
		           t->id, t->scope, t->stream,
		           arc == 0
		                   ? "was aborted"
		                   : "is being aborted (or its lease runs out)",
		           werr);
		return rc;
	}
	return commit_or_abort(t->c, t->scope, t->stream, t->id, errmsg);
}

int strata_txn_release(struct strata_txn *t, char *errmsg)
{
	int rc = check_open(t, "strata_txn_release", errmsg);
	if (rc != 0) {
		return rc;
	}
	char werr[STRATA_ERRMSG_SIZE];
	rc = close_writer(t, werr); /* flushed, lease no longer renewed */
	if (rc != 0) {
		char ignored[STRATA_ERRMSG_SIZE];
		end_txn(t->c, t->scope, t->stream, t->id, false, ignored);
		client_err(errmsg,
		           "release transaction %" PRIu64 " of %s/%s: an event "
		           "could not be written, so it was aborted: %s",
		           t->id, t->scope, t->stream, werr);
	}
	return rc;
}

int strata_txn_commit_id(struct strata_client *c, const char *scope,
                         const char *stream, uint64_t txn_id, char *errmsg)
{
	int rc =
	        check_id_args(c, scope, stream, "strata_txn_commit_id", errmsg);
	return rc != 0 ? rc : commit_or_abort(c, scope, stream, txn_id, errmsg);
}

int strata_txn_abort_id(struct strata_client *c, const char *scope,
                        const char *stream, uint64_t txn_id, char *errmsg)
{
	int rc = check_id_args(c, scope, stream, "strata_txn_abort_id", errmsg);
	return rc != 0 ? rc : end_txn(c, scope, stream, txn_id, false, errmsg);
}

int strata_txn_abort(struct strata_txn *t, char *errmsg)
{
	int rc = check_open(t, "strata_txn_abort", errmsg);
	if (rc != 0) {
		return rc;
	}
	char ignored[STRATA_ERRMSG_SIZE];
	close_writer(t, ignored); /* its events' outcome no longer matters */
	return end_txn(t->c, t->scope, t->stream, t->id, false, errmsg);
}

int strata_txn_status(struct strata_client *c, const char *scope,
                      const char *stream, uint64_t txn_id,
                      enum strata_txn_state *state, char *errmsg)
{
	int rc = check_id_args(c, scope, stream, "strata_txn_status", errmsg);
	if (rc != 0) {
		return rc;
	}
	char msg[STRATA_ERRMSG_SIZE];
	Strata__V1__Txn *t = get_txn(c, scope, stream, txn_id, &rc, msg);
	if (t == NULL) {
		if (rc == STRATA_ENOENT) {
			*state = STRATA_TXN_UNKNOWN;
			return 0;
		}
		client_err(errmsg, "transaction %" PRIu64 " of %s/%s: %s",
		           txn_id, scope, stream, msg);
		return rc;
	}
	*state = (enum strata_txn_state)t->state;
	rpc_pb_free(&t->base);
	return 0;
}

void strata_txn_free(struct strata_txn *t)
{
	if (t == NULL) {
		return;
	}
	if (!t->ended) {
		char ignored[STRATA_ERRMSG_SIZE];
		strata_txn_abort(t, ignored);
	}
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	strata_free(t);
}
