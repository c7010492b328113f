/* Workflow driver (see driver.h): turns cfsm_pending_actions() into SS_*
 * calls on the segment stores and applies WorkflowStepDone / TxnStepDone.
 *
 * Happy path: on every FSM change (or every 200 ms) the thread, if this
 * replica is the ready leader, copies the pending actions under the FSM
 * lock, groups them by (workflow, step) or (transaction, step), calls the
 * segment store that leads each action's container (the last reported
 * leader, else the first replica; stores redirect with STRATA_EWRONGHOST
 * and common/rpc follows), and once every action of a group succeeded
 * proposes the step's completion (with the sealed sizes the stores
 * reported).
 *
 * Idempotence: every call may be repeated (after a retry, or by a new
 * leader resuming the same step): creates are sent with idempotent = true,
 * sealing a sealed segment reads its size, deleting a missing segment and
 * merging an already merged transaction succeed.
 *
 * Failure modes: a failed call leaves its group pending; the group is
 * retried after an exponential backoff (backoff_min_ms doubling up to
 * backoff_max_ms); losing leadership stops the work (the new leader
 * repeats the step); a completion rejected by the FSM is logged.
 */
#include "controller/driver.h"
#include "controller/autoscale.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/alloc.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/rpc.h"
#include "common/segname.h"
#include "strata/v1/segmentstore.pb-c.h"

#define COMP "controller.driver"
#define MAX_CLIENTS 64   /* cached segment-store connections */
#define MAX_BACKOFF 1024 /* groups with a retry delay remembered */
#define NAME_MAX_LEN (SEGNAME_MAX + 1) /* qualified names, NUL */

/* One pending action, copied out of the FSM. */
struct job {
	struct cfsm_action a; /* scope/stream point into own copies */
	char *scope;          /* owned */
	char *stream;         /* owned */
	char *url;            /* owned: store to call, NULL if none */
	bool done;            /* grouped already */
	uint64_t size;        /* SEAL: size reported */
};

/* A group's retry state. */
struct backoff {
	bool txn;          /* key: transaction (else workflow) */
	uint64_t id;       /* workflow or txn id */
	int step;          /* step */
	uint64_t next_ms;  /* do not retry before (monotonic) */
	unsigned delay_ms; /* current delay */
	bool seen;         /* still pending in this round */
};

struct client {
	char url[RPC_MAX_URL_LEN]; /* store URL */
	struct rpc_client *cli;    /* connection */
	uint64_t used;             /* round of last use */
	uint64_t down_until_ms;    /* unreachable: fail fast until then */
	unsigned down_delay_ms;    /* current fail-fast period */
};

struct driver {
	struct ctl_service *svc;            /* borrowed */
	unsigned timeout_ms;                /* per call */
	unsigned backoff_min_ms;            /* first delay */
	unsigned backoff_max_ms;            /* cap */
	pthread_t thread;                   /* the driver */
	atomic_bool stop;                   /* exit requested */
	struct client clients[MAX_CLIENTS]; /* connection cache */
	struct backoff backoffs[MAX_BACKOFF];
	size_t n_backoffs;
	unsigned retention_ms;               /* retention pass interval */
	uint64_t next_retention_ms;          /* next pass (monotonic) */
	unsigned watermark_ms;               /* watermark round interval */
	uint64_t next_watermark_ms;          /* next round (monotonic) */
	uint64_t writer_timeout_ms;          /* marks older than this go */
	unsigned scaling_ms;                 /* auto-scaling pass interval */
	uint64_t next_scaling_ms;            /* next pass (monotonic) */
	struct autoscale *scaler;            /* rate averages (leader only) */
	uint64_t round;                      /* rounds run */
	struct cfsm_result *res;             /* propose_sync target */
	struct metrics_counter *steps;       /* completions applied */
	struct metrics_counter *failures;    /* segment-store calls failed */
	struct metrics_counter *splits;      /* auto-scaling splits proposed */
	struct metrics_counter *merges;      /* auto-scaling merges proposed */
	struct metrics_counter *truncations; /* retention truncations */
	struct metrics_counter *calls;       /* segment-store calls made */
};

/* ------------------------------------------------------------ clients -- */

static struct client *client_find(struct driver *d, const char *url)
{
	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &d->clients[i];
		if (c->cli != NULL && strcmp(c->url, url) == 0) {
			return c;
		}
	}
	return NULL;
}

/* Transport errors: the store could not be reached (or did not answer). */
static bool unreachable(int rc)
{
	return rc == STRATA_EUNAVAIL || rc == STRATA_ETIMEDOUT ||
	       rc == STRATA_ECLOSED || rc == STRATA_ECONNREFUSED;
}

/* Remember whether url answered, so that one dead store does not cost
 * every action of a round a full timeout. */
static void client_outcome(struct driver *d, const char *url, int rc)
{
	struct client *c = client_find(d, url);
	if (c == NULL) {
		return;
	}
	if (!unreachable(rc)) {
		c->down_until_ms = 0;
		c->down_delay_ms = 0;
		return;
	}
	c->down_delay_ms = c->down_delay_ms == 0 ? d->backoff_min_ms
	                                         : c->down_delay_ms * 2;
	if (c->down_delay_ms > d->backoff_max_ms) {
		c->down_delay_ms = d->backoff_max_ms;
	}
	c->down_until_ms = clock_mono_ms() + c->down_delay_ms;
}

static struct rpc_client *client_get(struct driver *d, const char *url,
                                     char *errmsg)
{
	struct client *lru = &d->clients[0];
	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &d->clients[i];
		if (c->cli != NULL && strcmp(c->url, url) == 0) {
			c->used = d->round;
			return c->cli;
		}
		if (c->cli == NULL ||
		    (lru->cli != NULL && c->used < lru->used)) {
			lru = c;
		}
	}
	if (lru->cli != NULL) {
		rpc_client_close(lru->cli);
		lru->cli = NULL;
	}
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.timeout_ms = (int)d->timeout_ms;
	o.retries = 1;
	if (rpc_client_open(&lru->cli, &url, 1, &o, errmsg) != 0) {
		lru->cli = NULL;
		return NULL;
	}
	snprintf(lru->url, sizeof(lru->url), "%s", url);
	lru->used = d->round;
	return lru->cli;
}

/* ------------------------------------------------------------ actions -- */

/* Call method on the store at url with req; reply (may be NULL) unpacked
 * as desc. Returns the store's code or a transport error. */
static int store_call(struct driver *d, const char *url, uint32_t method,
                      const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *desc,
                      ProtobufCMessage **reply, char *errmsg)
{
	if (reply != NULL) {
		*reply = NULL;
	}
	struct client *known = client_find(d, url);
	if (known != NULL && clock_mono_ms() < known->down_until_ms) {
		errmsg_set(errmsg,
		           "segment store %.120s did not answer a moment ago; "
		           "not calling it again for %u ms",
		           url, known->down_delay_ms);
		return STRATA_EUNAVAIL;
	}
	struct rpc_client *cli = client_get(d, url, errmsg);
	if (cli == NULL) {
		return STRATA_EUNAVAIL;
	}
	if (d->calls != NULL) {
		metrics_counter_inc(d->calls);
	}
	if (desc == NULL) {
		uint8_t small[1024];
		size_t len = protobuf_c_message_get_packed_size(req);
		uint8_t *buf =
		        len <= sizeof(small) ? small : strata_malloc(len);
		uint8_t *rep = NULL;
		size_t rep_len = 0;
		if (buf == NULL) {
			return STRATA_ENOMEM;
		}
		protobuf_c_message_pack(req, buf);
		int rc = rpc_call(cli, method, RPC_IDEMPOTENT, buf, len, &rep,
		                  &rep_len, errmsg);
		strata_free(rep);
		if (buf != small) {
			strata_free(buf);
		}
		client_outcome(d, url, rc);
		return rc;
	}
	int rc = rpc_call_pb(cli, method, RPC_IDEMPOTENT, req, desc, reply,
	                     errmsg);
	client_outcome(d, url, rc);
	return rc;
}

static int do_create(struct driver *d, const char *url, const char *name,
                     char *errmsg)
{
	Strata__V1__CreateSegmentRequest q =
	        STRATA__V1__CREATE_SEGMENT_REQUEST__INIT;
	q.segment = (char *)name;
	q.idempotent = true;
	int rc = store_call(d, url,
	                    STRATA__V1__SEGMENT_STORE_METHOD__SS_CREATE_SEGMENT,
	                    &q.base, NULL, NULL, errmsg);
	return rc == STRATA_EEXIST ? 0 : rc;
}

/* Seal name and report its length in *size. */
static int do_seal(struct driver *d, const char *url, const char *name,
                   uint64_t *size, char *errmsg)
{
	Strata__V1__SegmentRequest q = STRATA__V1__SEGMENT_REQUEST__INIT;
	ProtobufCMessage *rep = NULL;
	q.segment = (char *)name;
	int rc = store_call(
	        d, url, STRATA__V1__SEGMENT_STORE_METHOD__SS_SEAL, &q.base,
	        &strata__v1__segment_info_reply__descriptor, &rep, errmsg);
	if (rc == STRATA_ESEALED) {
		rc = store_call(
		        d, url, STRATA__V1__SEGMENT_STORE_METHOD__SS_GET_INFO,
		        &q.base, &strata__v1__segment_info_reply__descriptor,
		        &rep, errmsg);
	}
	if (rc == 0) {
		*size = ((Strata__V1__SegmentInfoReply *)rep)->length;
	}
	rpc_pb_free(rep);
	return rc;
}

static int do_delete(struct driver *d, const char *url, const char *name,
                     char *errmsg)
{
	Strata__V1__SegmentRequest q = STRATA__V1__SEGMENT_REQUEST__INIT;
	q.segment = (char *)name;
	int rc = store_call(d, url, STRATA__V1__SEGMENT_STORE_METHOD__SS_DELETE,
	                    &q.base, NULL, NULL, errmsg);
	return rc == STRATA_ENOENT ? 0 : rc;
}

static int do_truncate(struct driver *d, const char *url, const char *name,
                       int64_t offset, char *errmsg)
{
	Strata__V1__TruncateRequest q = STRATA__V1__TRUNCATE_REQUEST__INIT;
	q.segment = (char *)name;
	q.offset = offset > 0 ? (uint64_t)offset : 0;
	return store_call(d, url, STRATA__V1__SEGMENT_STORE_METHOD__SS_TRUNCATE,
	                  &q.base, NULL, NULL, errmsg);
}

/* Seal the shadow (if it still exists) and merge it into its parent; a
 * shadow already gone was merged by an earlier attempt. */
static int do_commit(struct driver *d, const char *url, const char *parent,
                     const char *shadow, char *errmsg)
{
	uint64_t size = 0;
	int rc = do_seal(d, url, shadow, &size, errmsg);
	if (rc == STRATA_ENOENT) {
		return 0;
	}
	if (rc != 0) {
		return rc;
	}
	Strata__V1__MergeRequest q = STRATA__V1__MERGE_REQUEST__INIT;
	q.target = (char *)parent;
	q.source = (char *)shadow;
	rc = store_call(d, url, STRATA__V1__SEGMENT_STORE_METHOD__SS_MERGE,
	                &q.base, NULL, NULL, errmsg);
	return rc == STRATA_ENOENT ? 0 : rc;
}

/* Merge the shadow of the copy's original (source_id) into the copy
 * (name); after the copy's last merge, seal it and read its size. Every
 * step may repeat (a shadow already merged is gone; a sealed copy reports
 * its size again). */
static int do_roll(struct driver *d, struct job *j, const char *name,
                   char *errmsg)
{
	char parent[NAME_MAX_LEN], shadow[NAME_MAX_LEN];
	cfsm_segment_name(parent, sizeof(parent), j->scope, j->stream,
	                  j->a.source_id);
	segname_format_txn(shadow, sizeof(shadow), parent, j->a.txn_id);
	int rc = do_commit(d, j->url, name, shadow, errmsg);
	if (rc == 0 && j->a.seal) {
		rc = do_seal(d, j->url, name, &j->size, errmsg);
	}
	return rc;
}

static int run_job(struct driver *d, struct job *j, char *errmsg)
{
	char name[NAME_MAX_LEN], shadow[NAME_MAX_LEN];
	const struct cfsm_action *a = &j->a;
	if (j->url == NULL) {
		errmsg_set(errmsg,
		           "no segment store is assigned to container %" PRIu32
		           "; start segment stores (they register with the "
		           "controller)",
		           a->container);
		return STRATA_EUNAVAIL;
	}
	cfsm_segment_name(name, sizeof(name), j->scope, j->stream,
	                  a->segment_id);
	segname_format_txn(shadow, sizeof(shadow), name, a->txn_id);
	switch (a->kind) {
	case CFSM_ACTION_CREATE_SEGMENT:
		return do_create(d, j->url, name, errmsg);
	case CFSM_ACTION_SEAL_SEGMENT:
		return do_seal(d, j->url, name, &j->size, errmsg);
	case CFSM_ACTION_TRUNCATE_SEGMENT:
		return do_truncate(d, j->url, name, a->offset, errmsg);
	case CFSM_ACTION_DELETE_SEGMENT:
		return do_delete(d, j->url, name, errmsg);
	case CFSM_ACTION_CREATE_TXN_SEGMENT:
		return do_create(d, j->url, shadow, errmsg);
	case CFSM_ACTION_COMMIT_TXN_SEGMENT:
		return do_commit(d, j->url, name, shadow, errmsg);
	case CFSM_ACTION_ABORT_TXN_SEGMENT:
		return do_delete(d, j->url, shadow, errmsg);
	case CFSM_ACTION_ROLL_TXN_SEGMENT:
		return do_roll(d, j, name, errmsg);
	}
	errmsg_set(errmsg, "unknown action kind %d", (int)a->kind);
	return STRATA_EINTERNAL;
}

/* -------------------------------------------------------------- rounds -- */

static void jobs_free(struct job *jobs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		strata_free(jobs[i].scope);
		strata_free(jobs[i].stream);
		strata_free(jobs[i].url);
	}
	strata_free(jobs);
}

/* Copy the pending actions; *jobs NULL when none. STRATA_ENOMEM. */
static int collect(struct driver *d, struct job **jobs, size_t *n)
{
	struct cfsm_action *acts = NULL;
	*jobs = NULL;
	*n = 0;
	const struct cfsm *f = ctl_service_lock(d->svc);
	int rc = cfsm_pending_actions(f, &acts, n);
	if (rc == 0 && *n > 0) {
		*jobs = strata_calloc(*n, sizeof(**jobs));
		rc = *jobs == NULL ? STRATA_ENOMEM : 0;
		for (size_t i = 0; rc == 0 && i < *n; i++) {
			struct job *j = &(*jobs)[i];
			const char *u =
			        cfsm_container_url(f, acts[i].container);
			j->a = acts[i];
			j->scope = strata_strdup(acts[i].scope);
			j->stream = strata_strdup(acts[i].stream);
			j->url = u != NULL ? strata_strdup(u) : NULL;
			if (j->scope == NULL || j->stream == NULL ||
			    (u != NULL && j->url == NULL)) {
				rc = STRATA_ENOMEM;
			}
			j->a.scope = j->scope;
			j->a.stream = j->stream;
		}
	}
	ctl_service_unlock(d->svc);
	strata_free(acts);
	if (rc != 0) {
		jobs_free(*jobs, *n);
		*jobs = NULL;
		*n = 0;
	}
	return rc;
}

static bool same_group(const struct cfsm_action *x, const struct cfsm_action *y)
{
	bool tx = x->workflow_id == 0, ty = y->workflow_id == 0;
	if (tx != ty || x->step != y->step) {
		return false;
	}
	if (tx) {
		return x->txn_id == y->txn_id &&
		       strcmp(x->scope, y->scope) == 0 &&
		       strcmp(x->stream, y->stream) == 0;
	}
	return x->workflow_id == y->workflow_id;
}

static struct backoff *backoff_find(struct driver *d,
                                    const struct cfsm_action *a, bool add)
{
	bool txn = a->workflow_id == 0;
	uint64_t id = txn ? a->txn_id : a->workflow_id;
	for (size_t i = 0; i < d->n_backoffs; i++) {
		struct backoff *b = &d->backoffs[i];
		if (b->txn == txn && b->id == id && b->step == a->step) {
			return b;
		}
	}
	if (!add || d->n_backoffs == MAX_BACKOFF) {
		return NULL;
	}
	struct backoff *b = &d->backoffs[d->n_backoffs++];
	memset(b, 0, sizeof(*b));
	b->txn = txn;
	b->id = id;
	b->step = a->step;
	return b;
}

/* Drop retry state of groups that are no longer pending. */
static void backoff_prune(struct driver *d)
{
	size_t out = 0;
	for (size_t i = 0; i < d->n_backoffs; i++) {
		if (d->backoffs[i].seen) {
			d->backoffs[i].seen = false;
			d->backoffs[out++] = d->backoffs[i];
		}
	}
	d->n_backoffs = out;
}

/* Propose the completion of the group whose members are g[0..n). */
static int report(struct driver *d, struct job **g, size_t n)
{
	const struct cfsm_action *a = &g[0]->a;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	Strata__V1__WorkflowStepDone w = STRATA__V1__WORKFLOW_STEP_DONE__INIT;
	Strata__V1__TxnStepDone t = STRATA__V1__TXN_STEP_DONE__INIT;
	Strata__V1__SegmentSize *sizes = NULL, **sp = NULL;
	if (a->workflow_id != 0) {
		w.workflow_id = a->workflow_id;
		w.step = (Strata__V1__WorkflowStep)a->step;
		w.now_ms = ctl_now_ms();
		if (a->kind == CFSM_ACTION_SEAL_SEGMENT ||
		    a->kind == CFSM_ACTION_ROLL_TXN_SEGMENT) {
			sizes = strata_calloc(n, sizeof(*sizes));
			sp = strata_calloc(n, sizeof(*sp));
			if (sizes == NULL || sp == NULL) {
				strata_free(sizes);
				strata_free(sp);
				return STRATA_ENOMEM;
			}
			size_t k = 0;
			for (size_t i = 0; i < n; i++) {
				if (a->kind == CFSM_ACTION_ROLL_TXN_SEGMENT &&
				    !g[i]->a.seal) {
					continue; /* not the copy's last merge
					           */
				}
				Strata__V1__SegmentSize init =
				        STRATA__V1__SEGMENT_SIZE__INIT;
				sizes[k] = init;
				sizes[k].segment_id = g[i]->a.segment_id;
				sizes[k].size = g[i]->size;
				sp[k] = &sizes[k];
				k++;
			}
			w.sealed_sizes = sp;
			w.n_sealed_sizes = k;
		}
		cmd.command_case =
		        STRATA__V1__CONTROLLER_COMMAND__COMMAND_WORKFLOW_STEP_DONE;
		cmd.workflow_step_done = &w;
	} else {
		t.scope = (char *)a->scope;
		t.stream = (char *)a->stream;
		t.txn_id = a->txn_id;
		t.step = (Strata__V1__TxnStep)a->step;
		t.now_ms = ctl_now_ms();
		cmd.command_case =
		        STRATA__V1__CONTROLLER_COMMAND__COMMAND_TXN_STEP_DONE;
		cmd.txn_step_done = &t;
	}
	int rc = ctl_service_propose_sync(d->svc, &cmd, d->res);
	strata_free(sizes);
	strata_free(sp);
	if (rc != 0) {
		LOG_WARN(COMP,
		         "%s %" PRIu64 " step %d on %s/%s: reporting it done "
		         "failed: %s",
		         a->workflow_id ? "workflow" : "transaction",
		         a->workflow_id ? a->workflow_id : a->txn_id, a->step,
		         a->scope, a->stream,
		         d->res->code == rc && d->res->message[0] != '\0'
		                 ? d->res->message
		                 : strata_strerror(rc));
		return rc;
	}
	if (d->steps != NULL) {
		metrics_counter_inc(d->steps);
	}
	LOG_INFO(COMP, "%s %" PRIu64 " on %s/%s: step %d done (%zu actions)",
	         a->workflow_id ? "workflow" : "transaction",
	         a->workflow_id ? a->workflow_id : a->txn_id, a->scope,
	         a->stream, a->step, n);
	return 0;
}

/* Run one group (members g[0..n)); true when its step was reported. */
static bool run_group(struct driver *d, struct job **g, size_t n)
{
	char errmsg[STRATA_ERRMSG_SIZE];
	struct backoff *b = backoff_find(d, &g[0]->a, false);
	uint64_t now = clock_mono_ms();
	if (b != NULL) {
		b->seen = true;
		if (now < b->next_ms) {
			return false;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (atomic_load(&d->stop) || !ctl_service_is_ready(d->svc)) {
			return false;
		}
		errmsg[0] = '\0';
		int rc = run_job(d, g[i], errmsg);
		if (rc == 0) {
			continue;
		}
		if (d->failures != NULL) {
			metrics_counter_inc(d->failures);
		}
		b = b != NULL ? b : backoff_find(d, &g[0]->a, true);
		if (b != NULL) {
			b->seen = true;
			b->delay_ms = b->delay_ms == 0 ? d->backoff_min_ms
			                               : b->delay_ms * 2;
			if (b->delay_ms > d->backoff_max_ms) {
				b->delay_ms = d->backoff_max_ms;
			}
			b->next_ms = clock_mono_ms() + b->delay_ms;
		}
		LOG_WARN(COMP,
		         "%s %" PRIu64 " step %d: action %d on segment %" PRIu64
		         " of %s/%s (container %" PRIu32
		         ") failed: %s (%s); retrying in %u ms",
		         g[i]->a.workflow_id ? "workflow" : "transaction",
		         g[i]->a.workflow_id ? g[i]->a.workflow_id
		                             : g[i]->a.txn_id,
		         g[i]->a.step, (int)g[i]->a.kind, g[i]->a.segment_id,
		         g[i]->scope, g[i]->stream, g[i]->a.container,
		         strata_error_name(rc), errmsg,
		         b != NULL ? b->delay_ms : d->backoff_max_ms);
		return false;
	}
	return report(d, g, n) == 0;
}

static void run_round(struct driver *d)
{
	struct job *jobs;
	size_t n;
	d->round++;
	if (collect(d, &jobs, &n) != 0) {
		LOG_WARN(COMP, "out of memory listing pending actions; "
		               "retrying");
		return;
	}
	struct job **g = n > 0 ? strata_calloc(n, sizeof(*g)) : NULL;
	for (size_t i = 0; g != NULL && i < n; i++) {
		if (jobs[i].done) {
			continue;
		}
		size_t k = 0;
		for (size_t j = i; j < n; j++) {
			if (!jobs[j].done &&
			    same_group(&jobs[i].a, &jobs[j].a)) {
				jobs[j].done = true;
				g[k++] = &jobs[j];
			}
		}
		if (atomic_load(&d->stop) || !ctl_service_is_ready(d->svc)) {
			break;
		}
		run_group(d, g, k);
	}
	strata_free(g);
	jobs_free(jobs, n);
	backoff_prune(d);
}

/* ------------------------------------------- stream jobs (retention,
 * auto-scaling, watermarks) -- */

/* A stream whose current segments a pass reads. */
struct rstream {
	char *scope, *stream;         /* owned */
	size_t n;                     /* current segments */
	uint64_t *ids;                /* owned, n */
	double *lows, *highs;         /* owned, n: key ranges */
	char **urls;                  /* owned, n; NULL entries: no store */
	Strata__V1__RateScaling rate; /* the rate policy, copied (by value:
	                                 the array of these is realloc'ed) */
	bool by_data;                 /* rate policy counts bytes */
	uint64_t created_ms;          /* the stream's, to tell it from one
	                                 created again under its name */
	uint64_t scaled_ms; /* the current epoch's creation (leader wall
	                       time), 0 for epoch 0: the last scale */
};

static void rstreams_free(struct rstream *r, size_t n)
{
	for (size_t i = 0; r != NULL && i < n; i++) {
		for (size_t k = 0; r[i].urls != NULL && k < r[i].n; k++) {
			strata_free(r[i].urls[k]);
		}
		strata_free(r[i].urls);
		strata_free(r[i].ids);
		strata_free(r[i].lows);
		strata_free(r[i].highs);
		strata_free(r[i].scope);
		strata_free(r[i].stream);
	}
	strata_free(r);
}

static bool is_active(const Strata__V1__StreamRecord *s)
{
	return s->state == STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE ||
	       s->state == STRATA__V1__STREAM_STATE__STREAM_STATE_TRUNCATING;
}

static bool has_retention(const struct driver *d,
                          const Strata__V1__StreamRecord *s)
{
	(void)d;
	const Strata__V1__RetentionPolicy *p =
	        s->config != NULL ? s->config->retention : NULL;
	return is_active(s) && p != NULL &&
	       p->policy_case != STRATA__V1__RETENTION_POLICY__POLICY__NOT_SET;
}

/* The stream's rate policy when it has one and is ACTIVE; else NULL. */
static const Strata__V1__RateScaling *
rate_policy(const Strata__V1__StreamRecord *s, bool *by_data)
{
	const Strata__V1__ScalingPolicy *p =
	        s->config != NULL ? s->config->scaling : NULL;
	if (p == NULL ||
	    s->state != STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE) {
		return NULL;
	}
	*by_data = p->policy_case ==
	           STRATA__V1__SCALING_POLICY__POLICY_BY_DATA_RATE;
	return p->policy_case ==
	                       STRATA__V1__SCALING_POLICY__POLICY_BY_EVENT_RATE
	               ? p->by_event_rate
	       : *by_data ? p->by_data_rate
	                  : NULL;
}

/* Copy the current segments of every stream `want` selects. */
static int tails_collect(struct driver *d,
                         bool (*want)(const struct driver *,
                                      const Strata__V1__StreamRecord *),
                         struct rstream **out, size_t *n_out)
{
	const struct cfsm *f = ctl_service_lock(d->svc);
	const Strata__V1__ControllerState *st = cfsm_state(f);
	struct rstream *r = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < st->n_scopes; i++) {
		const Strata__V1__ScopeRecord *sc = st->scopes[i];
		for (size_t j = 0; rc == 0 && j < sc->n_streams; j++) {
			const Strata__V1__StreamRecord *s = sc->streams[j];
			if (!want(d, s) || s->n_epochs == 0) {
				continue;
			}
			const Strata__V1__Epoch *ep =
			        s->epochs[s->n_epochs - 1];
			if (n == cap) {
				size_t nc = cap == 0 ? 8 : cap * 2;
				struct rstream *g =
				        strata_realloc(r, nc * sizeof(*r));
				if (g == NULL) {
					rc = STRATA_ENOMEM;
					break;
				}
				r = g;
				cap = nc;
			}
			struct rstream *x = &r[n++];
			memset(x, 0, sizeof(*x));
			const Strata__V1__RateScaling *rp =
			        rate_policy(s, &x->by_data);
			if (rp != NULL) {
				x->rate = *rp;
			}
			x->scope = strata_strdup(sc->name);
			x->stream = strata_strdup(s->name);
			x->created_ms = s->created_ms;
			x->scaled_ms = ep->epoch > 0 ? ep->created_ms : 0;
			x->n = ep->n_segments;
			x->ids = strata_calloc(x->n + 1, sizeof(*x->ids));
			x->lows = strata_calloc(x->n + 1, sizeof(*x->lows));
			x->highs = strata_calloc(x->n + 1, sizeof(*x->highs));
			x->urls = strata_calloc(x->n + 1, sizeof(*x->urls));
			if (x->scope == NULL || x->stream == NULL ||
			    x->ids == NULL || x->lows == NULL ||
			    x->highs == NULL || x->urls == NULL) {
				rc = STRATA_ENOMEM;
				break;
			}
			for (size_t k = 0; k < x->n; k++) {
				x->ids[k] = ep->segments[k]->id;
				x->lows[k] = ep->segments[k]->low;
				x->highs[k] = ep->segments[k]->high;
				const char *u = cfsm_container_url(
				        f, cfsm_segment_container(f, sc->name,
				                                  s->name,
				                                  x->ids[k]));
				x->urls[k] =
				        u != NULL ? strata_strdup(u) : NULL;
			}
		}
	}
	ctl_service_unlock(d->svc);
	if (rc != 0) {
		rstreams_free(r, n);
		return rc;
	}
	*out = r;
	*n_out = n;
	return 0;
}

/* Read every current segment's info of x into infos[0..x->n) (freed by
 * the caller with rpc_pb_free). 0, or the first error (errmsg set). */
static int tails_read(struct driver *d, const struct rstream *x,
                      Strata__V1__SegmentInfoReply **infos, char *errmsg)
{
	char name[NAME_MAX_LEN];
	for (size_t k = 0; k < x->n; k++) {
		if (x->urls[k] == NULL) {
			errmsg_set(errmsg, "no segment store hosts it");
			return STRATA_EUNAVAIL;
		}
		cfsm_segment_name(name, sizeof(name), x->scope, x->stream,
		                  x->ids[k]);
		Strata__V1__SegmentRequest q =
		        STRATA__V1__SEGMENT_REQUEST__INIT;
		q.segment = name;
		int rc = store_call(
		        d, x->urls[k],
		        STRATA__V1__SEGMENT_STORE_METHOD__SS_GET_INFO, &q.base,
		        &strata__v1__segment_info_reply__descriptor,
		        (ProtobufCMessage **)&infos[k], errmsg);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

static void infos_free(Strata__V1__SegmentInfoReply **infos, size_t n)
{
	for (size_t k = 0; infos != NULL && k < n; k++) {
		rpc_pb_free(infos[k] != NULL ? &infos[k]->base : NULL);
	}
	strata_free(infos);
}

/* Propose cmd; its error message (or the code's name) into errmsg. */
static int propose(struct driver *d, Strata__V1__ControllerCommand *cmd,
                   char *errmsg)
{
	int rc = ctl_service_propose_sync(d->svc, cmd, d->res);
	if (rc != 0) {
		errmsg_set(errmsg, "%s",
		           d->res->message[0] != '\0' ? d->res->message
		                                      : strata_strerror(rc));
	}
	return rc;
}

/* Read one stream's tail and record it (the FSM may truncate). */
static void retention_stream(struct driver *d, const struct rstream *x)
{
	char errmsg[STRATA_ERRMSG_SIZE] = "";
	Strata__V1__SegmentInfoReply **infos =
	        strata_calloc(x->n + 1, sizeof(*infos));
	Strata__V1__SegmentOffset *pos = strata_calloc(x->n + 1, sizeof(*pos));
	Strata__V1__SegmentOffset **pp = strata_calloc(x->n + 1, sizeof(*pp));
	int rc = infos == NULL || pos == NULL || pp == NULL ? STRATA_ENOMEM : 0;
	if (rc == 0) {
		rc = tails_read(d, x, infos, errmsg);
	}
	if (rc == 0) {
		for (size_t k = 0; k < x->n; k++) {
			Strata__V1__SegmentOffset init =
			        STRATA__V1__SEGMENT_OFFSET__INIT;
			pos[k] = init;
			pos[k].segment_id = x->ids[k];
			pos[k].offset = (int64_t)infos[k]->length;
			pp[k] = &pos[k];
		}
		Strata__V1__StreamCut cut = STRATA__V1__STREAM_CUT__INIT;
		Strata__V1__RecordRetentionCutCmd r =
		        STRATA__V1__RECORD_RETENTION_CUT_CMD__INIT;
		Strata__V1__ControllerCommand cmd =
		        STRATA__V1__CONTROLLER_COMMAND__INIT;
		cut.positions = pp;
		cut.n_positions = x->n;
		r.scope = x->scope;
		r.stream = x->stream;
		r.cut = &cut;
		r.now_ms = ctl_now_ms();
		r.stream_created_ms = x->created_ms;
		cmd.command_case =
		        STRATA__V1__CONTROLLER_COMMAND__COMMAND_RECORD_RETENTION_CUT;
		cmd.record_retention_cut = &r;
		rc = propose(d, &cmd, errmsg);
		if (rc == 0 && d->res->workflow_id != 0) {
			if (d->truncations != NULL) {
				metrics_counter_inc(d->truncations);
			}
			LOG_INFO(
			        COMP,
			        "retention: truncating %s/%s (workflow %" PRIu64
			        ")",
			        x->scope, x->stream, d->res->workflow_id);
		}
	}
	if (rc != 0) {
		/* The stream scaled or was sealed meanwhile, or a store is
		 * away: the next pass records it. */
		LOG_DEBUG(COMP, "retention: %s/%s not recorded this time: %s",
		          x->scope, x->stream, errmsg);
	}
	infos_free(infos, x->n);
	strata_free(pos);
	strata_free(pp);
}

/* Sample one rate-scaled stream and propose the scale its policy asks. */
static void autoscale_stream(struct driver *d, const struct rstream *x)
{
	char errmsg[STRATA_ERRMSG_SIZE] = "";
	Strata__V1__SegmentInfoReply **infos =
	        strata_calloc(x->n + 1, sizeof(*infos));
	struct autoscale_segment *segs = strata_calloc(x->n + 1, sizeof(*segs));
	int rc = infos == NULL || segs == NULL ? STRATA_ENOMEM : 0;
	if (rc == 0) {
		rc = tails_read(d, x, infos, errmsg);
	}
	struct autoscale_scale sc;
	bool scale = false;
	if (rc == 0) {
		for (size_t k = 0; k < x->n; k++) {
			segs[k].id = x->ids[k];
			segs[k].low = x->lows[k];
			segs[k].high = x->highs[k];
			segs[k].count = x->by_data ? infos[k]->length
			                           : infos[k]->events;
		}
		double target =
		        (double)x->rate.target * (x->by_data ? 1024.0 : 1.0);
		/* The last scale is in the replicated state: a new leader
		 * keeps the cooldown of one its predecessor made. */
		uint64_t wall = ctl_now_ms(), mono = clock_mono_ms();
		if (x->scaled_ms != 0 && x->scaled_ms <= wall &&
		    wall - x->scaled_ms < mono) {
			autoscale_scaled_at_least(d->scaler, x->scope,
			                          x->stream,
			                          mono - (wall - x->scaled_ms));
		}
		scale = autoscale_pass(d->scaler, x->scope, x->stream, segs,
		                       x->n, target, x->rate.scale_factor,
		                       x->rate.min_segments, mono, &sc);
	}
	if (scale) {
		Strata__V1__KeyRange kr[64], *krp[64];
		size_t nr = sc.n_bounds - 1;
		for (size_t i = 0; i < nr; i++) {
			Strata__V1__KeyRange init = STRATA__V1__KEY_RANGE__INIT;
			kr[i] = init;
			kr[i].low = sc.bounds[i];
			kr[i].high = sc.bounds[i + 1];
			krp[i] = &kr[i];
		}
		Strata__V1__ScaleStreamRequest q =
		        STRATA__V1__SCALE_STREAM_REQUEST__INIT;
		Strata__V1__ScaleStreamCmd c =
		        STRATA__V1__SCALE_STREAM_CMD__INIT;
		Strata__V1__ControllerCommand cmd =
		        STRATA__V1__CONTROLLER_COMMAND__INIT;
		q.scope = x->scope;
		q.stream = x->stream;
		q.seal_segments = sc.seal;
		q.n_seal_segments = sc.n_seal;
		q.new_ranges = krp;
		q.n_new_ranges = nr;
		c.request = &q;
		c.now_ms = ctl_now_ms();
		cmd.command_case =
		        STRATA__V1__CONTROLLER_COMMAND__COMMAND_SCALE_STREAM;
		cmd.scale_stream = &c;
		rc = propose(d, &cmd, errmsg);
		if (rc == 0) {
			autoscale_scaled(d->scaler, x->scope, x->stream,
			                 clock_mono_ms());
			struct metrics_counter *m =
			        sc.n_seal == 1 ? d->splits : d->merges;
			if (m != NULL) {
				metrics_counter_inc(m);
			}
			LOG_INFO(COMP,
			         "auto-scaling: %s %s/%s (%s %.1f/s against a "
			         "target of %u%s per segment; workflow %" PRIu64
			         ")",
			         sc.n_seal == 1 ? "splitting a segment of"
			                        : "merging two segments of",
			         x->scope, x->stream,
			         x->by_data ? "bytes" : "events", sc.rate,
			         x->rate.target, x->by_data ? " KiB/s" : "/s",
			         d->res->workflow_id);
		}
	}
	if (rc != 0) {
		/* Busy with another workflow, a store away: next pass. */
		LOG_DEBUG(COMP, "auto-scaling: %s/%s skipped this time: %s",
		          x->scope, x->stream, errmsg);
	}
	infos_free(infos, x->n);
	strata_free(segs);
}

static bool wants_scaling(const struct driver *d,
                          const Strata__V1__StreamRecord *s)
{
	(void)d;
	bool by_data;
	return rate_policy(s, &by_data) != NULL;
}

/* Run fn on every stream `want` selects. */
static void tails_round(struct driver *d,
                        bool (*want)(const struct driver *,
                                     const Strata__V1__StreamRecord *),
                        void (*fn)(struct driver *, const struct rstream *),
                        const char *what)
{
	struct rstream *r = NULL;
	size_t n = 0;
	if (tails_collect(d, want, &r, &n) != 0) {
		LOG_WARN(COMP,
		         "%s: out of memory listing streams; retrying at "
		         "the next pass",
		         what);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (atomic_load(&d->stop) || !ctl_service_is_ready(d->svc)) {
			break;
		}
		fn(d, &r[i]);
	}
	rstreams_free(r, n);
}

/* Streams where a watermark round changes something (a lower bound to
 * record, a mark past the writer timeout): idle ones cost no entry. */
static bool watermark_due(const struct driver *d,
                          const Strata__V1__StreamRecord *s)
{
	return cfsm_watermark_due(s, ctl_now_ms(), d->writer_timeout_ms);
}

/* One stream's watermark round (the FSM drops stale marks and records a
 * watermark when the lower bound moved). */
static void watermark_stream(struct driver *d, const struct rstream *x)
{
	char errmsg[STRATA_ERRMSG_SIZE] = "";
	Strata__V1__ComputeWatermarkCmd c =
	        STRATA__V1__COMPUTE_WATERMARK_CMD__INIT;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	c.scope = x->scope;
	c.stream = x->stream;
	c.now_ms = ctl_now_ms();
	c.writer_timeout_ms = d->writer_timeout_ms;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_COMPUTE_WATERMARK;
	cmd.compute_watermark = &c;
	if (propose(d, &cmd, errmsg) != 0) {
		LOG_DEBUG(COMP, "watermarks: %s/%s skipped this time: %s",
		          x->scope, x->stream, errmsg);
	}
}

static void *driver_main(void *arg)
{
	struct driver *d = arg;
	uint64_t seen = 0;
	while (!atomic_load(&d->stop)) {
		ctl_service_wait_change(d->svc, &seen, 200);
		if (atomic_load(&d->stop)) {
			break;
		}
		if (ctl_service_is_ready(d->svc)) {
			run_round(d);
			uint64_t now = clock_mono_ms();
			if (now >= d->next_retention_ms) {
				d->next_retention_ms = now + d->retention_ms;
				tails_round(d, has_retention, retention_stream,
				            "retention");
			}
			if (now >= d->next_scaling_ms) {
				d->next_scaling_ms = now + d->scaling_ms;
				tails_round(d, wants_scaling, autoscale_stream,
				            "auto-scaling");
				autoscale_prune(d->scaler, now,
				                10 * (uint64_t)d->scaling_ms);
			}
			if (now >= d->next_watermark_ms) {
				d->next_watermark_ms = now + d->watermark_ms;
				tails_round(d, watermark_due, watermark_stream,
				            "watermarks");
			}
		}
	}
	return NULL;
}

int driver_start(const struct driver_config *cfg, struct driver **out,
                 char *errmsg)
{
	struct driver *d = strata_calloc(1, sizeof(*d));
	int rc = STRATA_ENOMEM;
	if (d == NULL || (d->res = strata_calloc(1, sizeof(*d->res))) == NULL) {
		errmsg_set(errmsg, "out of memory");
		goto err;
	}
	d->svc = cfg->svc;
	d->timeout_ms = cfg->rpc_timeout_ms ? cfg->rpc_timeout_ms : 5000;
	d->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : 100;
	d->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 5000;
	d->retention_ms = cfg->retention_ms ? cfg->retention_ms : 60000;
	d->scaling_ms = cfg->scaling_ms ? cfg->scaling_ms : 10000;
	d->next_scaling_ms = clock_mono_ms() + d->scaling_ms;
	struct autoscale_config ac = {.unit_ms = cfg->scaling_unit_ms,
	                              .cooldown_ms = cfg->scaling_cooldown_ms};
	if ((d->scaler = autoscale_new(&ac)) == NULL) {
		errmsg_set(errmsg, "out of memory");
		goto err;
	}
	/* The first pass one interval after the start, then one per
	 * interval while this replica is the ready leader. */
	d->next_retention_ms = clock_mono_ms() + d->retention_ms;
	d->watermark_ms = cfg->watermark_ms ? cfg->watermark_ms : 10000;
	d->writer_timeout_ms =
	        cfg->writer_timeout_ms ? cfg->writer_timeout_ms : 60000;
	d->next_watermark_ms = clock_mono_ms() + d->watermark_ms;
	if (d->backoff_max_ms < d->backoff_min_ms) {
		d->backoff_max_ms = d->backoff_min_ms;
	}
	atomic_init(&d->stop, false);
	const struct {
		struct metrics_counter **c;
		const char *name, *help;
	} counters[] = {
	        {&d->steps, "strata_controller_workflow_steps_total",
	         "Workflow and transaction steps the driver completed."},
	        {&d->calls, "strata_controller_store_calls_total",
	         "Segment-store calls made by the workflow driver."},
	        {&d->failures, "strata_controller_store_call_failures_total",
	         "Segment-store calls of the workflow driver that failed "
	         "(retried with backoff)."},
	        {&d->splits, "strata_controller_autoscale_splits_total",
	         "Segment splits the auto-scaler proposed (leader)."},
	        {&d->merges, "strata_controller_autoscale_merges_total",
	         "Segment merges the auto-scaler proposed (leader)."},
	        {&d->truncations,
	         "strata_controller_retention_truncations_total",
	         "Truncations a retention policy started (leader)."},
	};
	if (cfg->metrics != NULL) {
		rc = 0;
		for (size_t i = 0;
		     rc == 0 && i < sizeof(counters) / sizeof(counters[0]);
		     i++) {
			rc = metrics_counter_register(cfg->metrics,
			                              counters[i].name,
			                              counters[i].help, NULL, 0,
			                              counters[i].c, errmsg);
		}
		if (rc != 0) {
			goto err;
		}
	}
	if (pthread_create(&d->thread, NULL, driver_main, d) != 0) {
		errmsg_set(errmsg, "start the workflow driver thread failed");
		rc = STRATA_EIO;
		goto err;
	}
	*out = d;
	return 0;
err:
	if (d != NULL) {
		strata_free(d->res);
		autoscale_free(d->scaler);
	}
	strata_free(d);
	return rc;
}

void driver_stop(struct driver *d)
{
	if (d == NULL) {
		return;
	}
	atomic_store(&d->stop, true);
	pthread_join(d->thread, NULL);
	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		if (d->clients[i].cli != NULL) {
			rpc_client_close(d->clients[i].cli);
		}
	}
	strata_free(d->res);
	autoscale_free(d->scaler);
	strata_free(d);
}
