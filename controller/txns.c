/* Controller transactions: create, ping, commit/abort, lease expiry.
 *
 * happy path: CreateTxn records an OPEN txn on the current epoch; the leader
 * creates its shadow segments and applies TxnStepDone(SEGMENTS_CREATED);
 * pings renew the lease; EndTxn(commit) moves it to COMMITTING, the leader
 * merges each shadow into its parent and applies TxnStepDone(COMMITTED).
 * A commit after the stream scaled starts a ROLL workflow instead
 * (workflows.c), which merges the shadows into copies of their parents in
 * a new epoch and marks the txn COMMITTED when it finishes.
 * failure modes: a lease that runs out (TickCmd with the leader's time) or
 * EndTxn(abort) moves it to ABORTING, the leader deletes the shadows and
 * applies TxnStepDone(ABORTED); a new leader resumes from the state. Every
 * step replayed is a no-op. Completed txns are forgotten CFSM_TXN_KEEP_MS
 * after completion, or sooner when a stream holds TXN_MAX_PER_STREAM.
 */
#include "controller/fsm_int.h"

#include <inttypes.h>
#include <string.h>

#include "common/alloc.h"

/* Longest lease a transaction may ask for (Pravega's default maximum). */
#define TXN_MAX_LEASE_MS 600000u
/* Most transactions one stream may hold, unfinished or remembered: at
 * the limit a new one makes the oldest completed one forgotten early;
 * only 10000 unfinished ones refuse it. */
#define TXN_MAX_PER_STREAM 10000u

/* Forget s's transaction completed longest ago (a stream that begins
 * more than TXN_MAX_PER_STREAM an hour forgets before the hour is up);
 * false when every one is unfinished. Deterministic: replicas agree. */
static bool forget_oldest_done(Strata__V1__StreamRecord *s)
{
	size_t at = s->n_txns;
	for (size_t k = 0; k < s->n_txns; k++) {
		const Strata__V1__Txn *t = s->txns[k];
		if ((t->state == TS_COMMITTED || t->state == TS_ABORTED) &&
		    (at == s->n_txns ||
		     t->completed_ms < s->txns[at]->completed_ms)) {
			at = k;
		}
	}
	if (at == s->n_txns) {
		return false;
	}
	Strata__V1__Txn *t = s->txns[at];
	pb_remove_at((void **)s->txns, &s->n_txns, at);
	pb_free(t);
	return true;
}

static const char *state_name(int state)
{
	switch (state) {
	case TS_OPEN:
		return "OPEN";
	case TS_COMMITTING:
		return "COMMITTING";
	case TS_COMMITTED:
		return "COMMITTED";
	case TS_ABORTING:
		return "ABORTING";
	case TS_ABORTED:
		return "ABORTED";
	default:
		return "UNKNOWN";
	}
}

size_t txns_count(const Strata__V1__StreamRecord *s, int state)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n_txns; i++) {
		n += state == 0 || (int)s->txns[i]->state == state;
	}
	return n;
}

void txns_abort_open(Strata__V1__StreamRecord *s)
{
	for (size_t i = 0; i < s->n_txns; i++) {
		if (s->txns[i]->state == TS_OPEN) {
			s->txns[i]->state = TS_ABORTING;
		}
	}
}

static int check_lease(uint64_t lease_ms, struct cfsm_result *res)
{
	if (lease_ms == 0 || lease_ms > TXN_MAX_LEASE_MS) {
		return fsm_fail(res, STRATA_EINVAL,
		                "transaction lease of %" PRIu64 " ms is out of "
		                "range; use 1..%u ms",
		                lease_ms, TXN_MAX_LEASE_MS);
	}
	return 0;
}

/* Find a txn of scope/stream or fail with ENOENT. */
static int txn_get(const struct cfsm *f, const char *scope, const char *stream,
                   uint64_t id, Strata__V1__StreamRecord **s,
                   Strata__V1__Txn **t, struct cfsm_result *res)
{
	int rc = fsm_stream_get(f->st, scope, stream, s, res);
	if (rc != 0) {
		return rc;
	}
	for (size_t i = 0; i < (*s)->n_txns; i++) {
		if ((*s)->txns[i]->id == id) {
			*t = (*s)->txns[i];
			return 0;
		}
	}
	return fsm_fail(res, STRATA_ENOENT,
	                "transaction %" PRIu64 " of %s/%s is unknown (never "
	                "created, or completed long ago); check the id",
	                id, scope, stream);
}

const Strata__V1__Txn *cfsm_find_txn(const struct cfsm *fsm, const char *scope,
                                     const char *stream, uint64_t txn_id)
{
	struct cfsm_result r;
	Strata__V1__StreamRecord *s;
	Strata__V1__Txn *t = NULL;
	if (txn_get(fsm, scope, stream, txn_id, &s, &t, &r) != 0) {
		return NULL;
	}
	return t;
}

int txns_create(struct cfsm *f, const Strata__V1__CreateTxnCmd *c,
                struct cfsm_result *res)
{
	const Strata__V1__CreateTxnRequest *r = c->request;
	Strata__V1__ControllerState *st = f->st;
	Strata__V1__StreamRecord *s;
	int rc = fsm_stream_get(st, r->scope, r->stream, &s, res);
	if (rc != 0) {
		return rc;
	}
	if (s->state == SS_SEALED || s->state == SS_SEALING ||
	    s->state == SS_DELETING) {
		return fsm_fail(res, STRATA_ESEALED,
		                "stream %s/%s is sealed; it accepts no new "
		                "transactions",
		                r->scope, r->stream);
	}
	if (s->state != SS_ACTIVE && s->state != SS_TRUNCATING) {
		return fsm_fail(
		        res, STRATA_EBUSY,
		        "stream %s/%s is being created or scaled; retry "
		        "the transaction shortly",
		        r->scope, r->stream);
	}
	if ((rc = check_lease(r->lease_ms, res)) != 0) {
		return rc;
	}
	if (s->n_txns >= TXN_MAX_PER_STREAM && !forget_oldest_done(s)) {
		return fsm_fail(res, STRATA_EBUSY,
		                "stream %s/%s already has %zu unfinished "
		                "transactions; commit or abort some (or let "
		                "their leases run out) and retry",
		                r->scope, r->stream, s->n_txns);
	}
	Strata__V1__Txn *t = pb_new(&strata__v1__txn__descriptor);
	if (t == NULL ||
	    pb_reserve(&s->txns, s->n_txns, 1, sizeof(*s->txns)) != 0) {
		pb_free(t);
		return fsm_fail(res, STRATA_ENOMEM,
		                "out of memory creating a transaction on %s/%s",
		                r->scope, r->stream);
	}
	t->id = st->next_txn_id++;
	t->state = TS_OPEN;
	t->epoch = fsm_current_epoch(s)->epoch;
	t->lease_ms = r->lease_ms;
	t->lease_expiry_ms = c->now_ms + r->lease_ms;
	s->txns[s->n_txns++] = t;
	res->txn_id = t->id;
	return 0;
}

int txns_ping(struct cfsm *f, const Strata__V1__PingTxnCmd *c,
              struct cfsm_result *res)
{
	const Strata__V1__PingTxnRequest *r = c->request;
	Strata__V1__StreamRecord *s;
	Strata__V1__Txn *t = NULL;
	int rc = txn_get(f, r->scope, r->stream, r->txn_id, &s, &t, res);
	if (rc == 0) {
		rc = check_lease(r->lease_ms, res);
	}
	if (rc != 0) {
		return rc;
	}
	if (t->state != TS_OPEN) {
		return fsm_fail(res, STRATA_ECONFLICT,
		                "transaction %" PRIu64 " of %s/%s is %s; only "
		                "open transactions take pings",
		                t->id, r->scope, r->stream,
		                state_name(t->state));
	}
	t->lease_ms = r->lease_ms;
	t->lease_expiry_ms = c->now_ms + r->lease_ms;
	res->txn_id = t->id;
	return 0;
}

int txns_end(struct cfsm *f, const Strata__V1__EndTxnCmd *c,
             struct cfsm_result *res)
{
	const Strata__V1__EndTxnRequest *r = c->request;
	Strata__V1__StreamRecord *s;
	Strata__V1__Txn *t = NULL;
	int rc = txn_get(f, r->scope, r->stream, r->txn_id, &s, &t, res);
	if (rc != 0) {
		return rc;
	}
	res->txn_id = t->id;
	int going = r->commit ? TS_COMMITTING : TS_ABORTING;
	int gone = r->commit ? TS_COMMITTED : TS_ABORTED;
	if ((int)t->state == going || (int)t->state == gone) {
		return 0; /* a retry */
	}
	if (t->state != TS_OPEN) {
		return fsm_fail(
		        res, STRATA_ECONFLICT,
		        "transaction %" PRIu64 " of %s/%s is %s; it can "
		        "no longer be %s",
		        t->id, r->scope, r->stream, state_name(t->state),
		        r->commit ? "committed" : "aborted");
	}
	if (r->commit) {
		bool stale = t->epoch != fsm_current_epoch(s)->epoch;
		if (!t->segments_created ||
		    (!stale && s->state == SS_SCALING)) {
			return fsm_fail(res, STRATA_EBUSY,
			                "transaction %" PRIu64 " of %s/%s is "
			                "not ready to commit (segments being "
			                "created or stream scaling); retry",
			                t->id, r->scope, r->stream);
		}
		if (stale) {
			/* The stream scaled since the begin: roll the
			 * transaction into new epochs (a workflow, which
			 * is busy while another one runs, unless it is a
			 * roll of the same epoch that t can join). */
			rc = workflows_roll(f, s, r->scope, t, c->now_ms, res);
			if (rc != 0) {
				return rc;
			}
			res->txn_id = t->id;
		}
	}
	t->state = going;
	return 0;
}

int txns_step_done(struct cfsm *f, const Strata__V1__TxnStepDone *c,
                   struct cfsm_result *res)
{
	Strata__V1__StreamRecord *s = NULL;
	Strata__V1__Txn *t = NULL;
	int rc = txn_get(f, c->scope, c->stream, c->txn_id, &s, &t, res);
	if (rc == STRATA_ENOENT && c->txn_id != 0 &&
	    c->txn_id < f->st->next_txn_id) {
		/* Issued once, now forgotten (or its stream deleted, which
		 * needs every txn completed): a replay. */
		res->code = 0;
		res->message[0] = '\0';
		return 0;
	}
	if (rc != 0) {
		return rc;
	}
	res->txn_id = t->id;
	switch (c->step) {
	case TXS_CREATED:
		if (t->state == TS_OPEN) {
			t->segments_created = true;
		}
		return 0; /* later states imply it */
	case TXS_COMMITTED:
		if (t->state == TS_COMMITTED) {
			return 0;
		}
		if (t->state == TS_COMMITTING) {
			t->state = TS_COMMITTED;
			t->completed_ms = c->now_ms;
			return 0;
		}
		break;
	case TXS_ABORTED:
		if (t->state == TS_ABORTED) {
			return 0;
		}
		if (t->state == TS_ABORTING) {
			t->state = TS_ABORTED;
			t->completed_ms = c->now_ms;
			return 0;
		}
		break;
	default:
		break;
	}
	return fsm_fail(res, STRATA_EINVAL,
	                "transaction %" PRIu64 " of %s/%s is %s; step %d does "
	                "not apply; report the pending step",
	                t->id, c->scope, c->stream, state_name(t->state),
	                (int)c->step);
}

int txns_tick(struct cfsm *f, uint64_t now_ms, struct cfsm_result *res)
{
	(void)res;
	Strata__V1__ControllerState *st = f->st;
	for (size_t i = 0; i < st->n_scopes; i++) {
		Strata__V1__ScopeRecord *sc = st->scopes[i];
		for (size_t j = 0; j < sc->n_streams; j++) {
			Strata__V1__StreamRecord *s = sc->streams[j];
			for (size_t k = 0; k < s->n_txns;) {
				Strata__V1__Txn *t = s->txns[k];
				bool done = t->state == TS_COMMITTED ||
				            t->state == TS_ABORTED;
				if (t->state == TS_OPEN &&
				    t->lease_expiry_ms <= now_ms) {
					t->state = TS_ABORTING;
				}
				if (done &&
				    t->completed_ms + CFSM_TXN_KEEP_MS <=
				            now_ms) {
					pb_remove_at((void **)s->txns,
					             &s->n_txns, k);
					pb_free(t);
					continue;
				}
				k++;
			}
		}
	}
	return 0;
}

int txns_actions(const struct cfsm *f, struct cfsm_action **acts, size_t *n,
                 size_t *cap)
{
	const Strata__V1__ControllerState *st = f->st;
	for (size_t i = 0; i < st->n_scopes; i++) {
		const Strata__V1__ScopeRecord *sc = st->scopes[i];
		for (size_t j = 0; j < sc->n_streams; j++) {
			const Strata__V1__StreamRecord *s = sc->streams[j];
			for (size_t k = 0; k < s->n_txns; k++) {
				const Strata__V1__Txn *t = s->txns[k];
				struct cfsm_action a = {
				        .scope = sc->name,
				        .stream = s->name,
				        .txn_id = t->id,
				};
				if (t->state == TS_OPEN &&
				    !t->segments_created) {
					a.kind = CFSM_ACTION_CREATE_TXN_SEGMENT;
					a.step = TXS_CREATED;
				} else if (t->state == TS_COMMITTING &&
				           t->epoch == fsm_current_epoch(s)
				                               ->epoch) {
					/* (a COMMITTING txn of an older epoch
					 * is rolled by its ROLL workflow) */
					a.kind = CFSM_ACTION_COMMIT_TXN_SEGMENT;
					a.step = TXS_COMMITTED;
				} else if (t->state == TS_ABORTING) {
					a.kind = CFSM_ACTION_ABORT_TXN_SEGMENT;
					a.step = TXS_ABORTED;
				} else {
					continue;
				}
				if (t->epoch >= s->n_epochs) {
					continue;
				}
				const Strata__V1__Epoch *ep =
				        s->epochs[t->epoch];
				for (size_t x = 0; x < ep->n_segments; x++) {
					a.segment_id = ep->segments[x]->id;
					a.container = cfsm_segment_container(
					        f, sc->name, s->name,
					        a.segment_id);
					int rc = fsm_push_action(acts, n, cap,
					                         &a);
					if (rc != 0) {
						return rc;
					}
				}
			}
		}
	}
	return 0;
}
