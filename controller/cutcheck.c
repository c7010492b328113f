/* A truncation's cut checked against the segment stores before it is
 * proposed (see cutcheck.h).
 *
 * Why: a store refuses to truncate a segment past its end (STRATA_ERANGE)
 * and the workflow driver retries a refused step; a TRUNCATE workflow with
 * such an offset left its stream TRUNCATING (scale, seal and further
 * truncations refused) until writers reached the offset, which for a wild
 * offset is never. The FSM refuses offsets past a sealed segment's
 * recorded size (workflows.c); only the store knows how long an open
 * segment is. The C client checks the same before it asks; this is the
 * check for every other client. Lengths only grow, so a cut that passes
 * here passes at the store.
 *
 * Happy path: under the FSM lock, list the positions with a positive
 * offset in a segment of the stream whose size the FSM does not know,
 * with the client URL of the store leading its container; when there are
 * any, a thread asks each store for the segment's length (SS_GET_INFO) and
 * calls done. A segment the store does not know (deleted or merged
 * meanwhile) is left to the FSM, as everything else about the cut is.
 */
#include "controller/cutcheck.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/errmsg.h"
#include "common/rpc.h"
#include "common/segname.h"
#include "controller/fsm.h"
#include "strata/error.h"
#include "strata/v1/segmentstore.pb-c.h"

#define CALL_TIMEOUT_MS 5000

struct cutcheck {
	pthread_mutex_t lock;
	pthread_cond_t idle; /* running dropped to 0 */
	unsigned running;    /* threads not yet returned */
	bool stopping;       /* refuse new checks */
};

/* One position to ask a store about. */
struct item {
	char name[SEGNAME_MAX + 1]; /* qualified segment name */
	char *url;                  /* owned: store leading its container */
	uint64_t segment_id;
	int64_t offset;
};

struct job {
	struct cutcheck *cc;
	char what[64]; /* method name, for messages */
	struct item *items;
	size_t n;
	cutcheck_done_fn done;
	void *arg;
};

int cutcheck_new(struct cutcheck **out)
{
	struct cutcheck *cc = strata_calloc(1, sizeof(*cc));
	if (cc == NULL) {
		return STRATA_ENOMEM;
	}
	pthread_mutex_init(&cc->lock, NULL);
	pthread_cond_init(&cc->idle, NULL);
	*out = cc;
	return 0;
}

void cutcheck_drain(struct cutcheck *cc)
{
	if (cc == NULL) {
		return;
	}
	pthread_mutex_lock(&cc->lock);
	cc->stopping = true;
	while (cc->running > 0) {
		pthread_cond_wait(&cc->idle, &cc->lock);
	}
	pthread_mutex_unlock(&cc->lock);
}

void cutcheck_free(struct cutcheck *cc)
{
	if (cc == NULL) {
		return;
	}
	cutcheck_drain(cc);
	pthread_cond_destroy(&cc->idle);
	pthread_mutex_destroy(&cc->lock);
	strata_free(cc);
}

static void job_free(struct job *j)
{
	for (size_t i = 0; j != NULL && i < j->n; i++) {
		strata_free(j->items[i].url);
	}
	if (j != NULL) {
		strata_free(j->items);
		strata_free(j);
	}
}

/* Size of segment id when the FSM recorded it (sealed). */
static bool known_size(const Strata__V1__StreamRecord *s, uint64_t id)
{
	for (size_t i = 0; i < s->n_sealed_sizes; i++) {
		if (s->sealed_sizes[i]->segment_id == id) {
			return true;
		}
	}
	return false;
}

/* Under the FSM lock: the positions to ask about into j. 0, or a code
 * with msg set. */
static int collect(const struct cfsm *f, const char *scope, const char *stream,
                   const Strata__V1__StreamCut *cut, struct job *j, char *msg)
{
	const Strata__V1__StreamRecord *s = cfsm_find_stream(f, scope, stream);
	if (s == NULL || cut == NULL || cut->n_positions == 0) {
		return 0; /* the FSM names what is wrong */
	}
	j->items = strata_calloc(cut->n_positions, sizeof(*j->items));
	if (j->items == NULL) {
		errmsg_set(msg, "%s: out of memory; retry", j->what);
		return STRATA_ENOMEM;
	}
	for (size_t i = 0; i < cut->n_positions; i++) {
		const Strata__V1__SegmentOffset *p = cut->positions[i];
		if (p == NULL || p->offset <= 0 ||
		    known_size(s, p->segment_id) ||
		    !cfsm_has_segment(f, scope, stream, p->segment_id)) {
			continue;
		}
		uint32_t c =
		        cfsm_segment_container(f, scope, stream, p->segment_id);
		const char *u = cfsm_container_url(f, c);
		if (u == NULL) {
			errmsg_set(msg,
			           "%s: cannot check the cut of %s/%s: no "
			           "segment store serves container %" PRIu32
			           "; start segment stores and retry",
			           j->what, scope, stream, c);
			return STRATA_EUNAVAIL;
		}
		struct item *it = &j->items[j->n];
		cfsm_segment_name(it->name, sizeof(it->name), scope, stream,
		                  p->segment_id);
		it->segment_id = p->segment_id;
		it->offset = p->offset;
		it->url = strata_strdup(u);
		if (it->url == NULL) {
			errmsg_set(msg, "%s: out of memory; retry", j->what);
			return STRATA_ENOMEM;
		}
		j->n++;
	}
	return 0;
}

/* Ask the store of one item; 0 when within (or unknown to the store). */
static int check_item(const struct job *j, const struct item *it, char *msg)
{
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.timeout_ms = CALL_TIMEOUT_MS;
	o.connect_timeout_ms = CALL_TIMEOUT_MS;
	o.retries = 1;
	struct rpc_client *cli = NULL;
	const char *urls[1] = {it->url};
	char err[STRATA_ERRMSG_SIZE] = "";
	int rc = rpc_client_open(&cli, urls, 1, &o, err);
	Strata__V1__SegmentInfoReply *r = NULL;
	if (rc == 0) {
		Strata__V1__SegmentRequest q =
		        STRATA__V1__SEGMENT_REQUEST__INIT;
		q.segment = (char *)it->name;
		rc = rpc_call_pb(cli,
		                 STRATA__V1__SEGMENT_STORE_METHOD__SS_GET_INFO,
		                 RPC_IDEMPOTENT, &q.base,
		                 &strata__v1__segment_info_reply__descriptor,
		                 (ProtobufCMessage **)&r, err);
		rpc_client_close(cli);
	}
	if (rc == STRATA_ENOENT) {
		return 0; /* gone meanwhile: the FSM judges the cut */
	}
	if (rc != 0) {
		errmsg_set(msg,
		           "%s: cannot check offset %" PRId64
		           " of segment %" PRIu32 ".%" PRIu32
		           " against its length: %s; retry",
		           j->what, it->offset, (uint32_t)it->segment_id,
		           (uint32_t)(it->segment_id >> 32), err);
		return rc == STRATA_ENOMEM ? rc : STRATA_EUNAVAIL;
	}
	uint64_t length = r->length;
	rpc_pb_free(&r->base);
	if ((uint64_t)it->offset > length) {
		errmsg_set(msg,
		           "%s: offset %" PRId64 " of segment %" PRIu32
		           ".%" PRIu32 " is past its end (%" PRIu64
		           " bytes); take a cut from 'stream describe', a "
		           "checkpoint or a read position",
		           j->what, it->offset, (uint32_t)it->segment_id,
		           (uint32_t)(it->segment_id >> 32), length);
		return STRATA_EINVAL;
	}
	return 0;
}

static void *run(void *arg)
{
	struct job *j = arg;
	struct cutcheck *cc = j->cc;
	char msg[STRATA_ERRMSG_SIZE] = "";
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < j->n; i++) {
		pthread_mutex_lock(&cc->lock);
		bool stopping = cc->stopping;
		pthread_mutex_unlock(&cc->lock);
		if (stopping) {
			errmsg_set(msg,
			           "%s: the controller is stopping; retry "
			           "with another replica",
			           j->what);
			rc = STRATA_ESHUTDOWN;
			break;
		}
		rc = check_item(j, &j->items[i], msg);
	}
	j->done(j->arg, rc, rc == 0 ? "" : msg);
	job_free(j);
	pthread_mutex_lock(&cc->lock);
	if (--cc->running == 0) {
		pthread_cond_broadcast(&cc->idle);
	}
	pthread_mutex_unlock(&cc->lock);
	return NULL;
}

void cutcheck_run(struct cutcheck *cc, struct ctl_service *svc,
                  const char *what, const char *scope, const char *stream,
                  const Strata__V1__StreamCut *cut, cutcheck_done_fn done,
                  void *arg)
{
	char msg[STRATA_ERRMSG_SIZE] = "";
	struct job *j = strata_calloc(1, sizeof(*j));
	if (j == NULL) {
		done(arg, STRATA_ENOMEM, "out of memory checking a cut; retry");
		return;
	}
	snprintf(j->what, sizeof(j->what), "%s", what);
	j->cc = cc;
	j->done = done;
	j->arg = arg;
	const struct cfsm *f = ctl_service_lock(svc);
	int rc = collect(f, scope, stream, cut, j, msg);
	ctl_service_unlock(svc);
	if (rc != 0 || j->n == 0) {
		job_free(j);
		done(arg, rc, rc == 0 ? "" : msg);
		return;
	}
	pthread_mutex_lock(&cc->lock);
	bool stopping = cc->stopping;
	if (!stopping) {
		cc->running++;
	}
	pthread_mutex_unlock(&cc->lock);
	pthread_t t;
	pthread_attr_t at;
	rc = STRATA_ESHUTDOWN;
	if (!stopping && pthread_attr_init(&at) == 0) {
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		rc = pthread_create(&t, &at, run, j) == 0 ? 0 : STRATA_EAGAIN;
		pthread_attr_destroy(&at);
	} else if (!stopping) {
		rc = STRATA_EAGAIN;
	}
	if (rc == 0) {
		return;
	}
	job_free(j);
	if (!stopping) {
		pthread_mutex_lock(&cc->lock);
		if (--cc->running == 0) {
			pthread_cond_broadcast(&cc->idle);
		}
		pthread_mutex_unlock(&cc->lock);
	}
	errmsg_set(msg, "%s: %s", what,
	           rc == STRATA_ESHUTDOWN
	                   ? "the controller is stopping; retry with another "
	                     "replica"
	                   : "no thread to check the cut; retry shortly");
	done(arg, rc, msg);
}
