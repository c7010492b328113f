/* libstrata public API: transactions (events visible all at once, or
 * never), for exactly-once pipelines. */
#ifndef STRATA_TXN_H
#define STRATA_TXN_H

#include "strata/client.h"
#include "strata/writer.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A transaction on one stream: its events go to shadow segments (one per
 * segment of the stream's current epoch) that no reader sees; a commit
 * merges every shadow into its segment at once, an abort deletes them.
 * An event keeps its routing key's segment and, per key, its order.
 * docs/client.md, "Transactions". Like Pravega's transactional writer,
 * with one difference: no rolling transactions (a commit after the
 * stream scaled fails, STRATA_ENOTSUP: it is aborted; write it again in a
 * new transaction). The lease is renewed by the client's I/O thread
 * every third of it, from begin until commit, abort or free, so an idle
 * transaction stays open while its process lives, and a process that
 * dies leaves it to expire, unless another process commits or aborts it
 * by id first (strata_txn_commit_id: two-phase commit recovery).
 */
struct strata_txn;

struct strata_txn_config {
	/* The controller aborts the transaction when its lease was not
	 * renewed for this long (default 30000; 1..600000). Renewed in the
	 * background every third of it (and by strata_txn_ping). */
	uint64_t lease_ms;
	struct strata_writer_config writer; /* the events' writer */
};

/* Fill cfg with the defaults. */
STRATA_API void strata_txn_config_default(struct strata_txn_config *cfg);

/*
 * Open a transaction on scope/stream (cfg NULL = defaults): the
 * controller records it and creates its shadow segments; returns once
 * they exist. *out is the caller's until strata_txn_free (also after a
 * commit or an abort). A handle is used by one thread at a time; every
 * call blocks, so none is made from a libstrata callback (the client's
 * I/O thread: STRATA_EINVAL). errmsg: STRATA_ERRMSG_SIZE bytes, filled on
 * an error. Errors: STRATA_ENOENT (no such stream), STRATA_ESEALED
 * (stream sealed), STRATA_EBUSY (too many open transactions, or the
 * stream kept scaling for the whole operation timeout: a begin while a
 * scale or a rolling commit runs waits and retries),
 * STRATA_EUNAVAIL, STRATA_ETIMEDOUT, STRATA_EINVAL, STRATA_ENOMEM.
 */
STRATA_API int strata_txn_begin(struct strata_client *c, const char *scope,
                                const char *stream,
                                const struct strata_txn_config *cfg,
                                struct strata_txn **out, char *errmsg);

/* Its id (unique in the cluster). */
STRATA_API uint64_t strata_txn_id(const struct strata_txn *t);

/*
 * Queue one event (copied) in the transaction, as strata_writer_write
 * (key NULL/0 = none). Errors of the event itself are reported by
 * strata_txn_flush and strata_txn_commit. STRATA_EINVAL once the
 * transaction was committed or aborted through this handle.
 */
STRATA_API int strata_txn_write(struct strata_txn *t, const void *key,
                                size_t keylen, const void *data, size_t len,
                                char *errmsg);

/* Wait until every event written so far is durable in the shadows; 0 or
 * the error of the last event that failed. */
STRATA_API int strata_txn_flush(struct strata_txn *t, char *errmsg);

/* Renew the lease now (the background renewal does it anyway).
 * STRATA_ECONFLICT: it is no longer open (the lease ran out: aborted). */
STRATA_API int strata_txn_ping(struct strata_txn *t, char *errmsg);

/*
 * Flush, then commit: returns 0 once every event is in the stream
 * (readers see them all from then on). When an event failed, or was
 * refused because an earlier one had, aborts instead and returns its
 * error, even when strata_txn_write or strata_txn_flush reported it. Errors:
 * STRATA_ECONFLICT (already aborted, e.g. its lease ran out; or, when an event
 * failed, already committed by another client through strata_txn_commit_id with
 * only part of the events: errmsg says which), STRATA_ENOTSUP (the stream
 * scaled since the transaction began: aborted; write it again in a new one),
 * STRATA_ETIMEDOUT (the commit is recorded and will complete: check with
 * strata_txn_status), STRATA_EUNAVAIL.
 */
STRATA_API int strata_txn_commit(struct strata_txn *t, char *errmsg);

/* Abort: none of its events will ever be read. Returns once the
 * controller recorded it (the shadows are deleted in the background).
 * STRATA_ECONFLICT: it was already committed. */
STRATA_API int strata_txn_abort(struct strata_txn *t, char *errmsg);

/*
 * Flush, then hand the transaction over to whoever commits or aborts it
 * by id (strata_txn_commit_id / _abort_id): the events are durable in
 * the shadows, the lease is no longer renewed, and strata_txn_free will
 * not abort it. For a two-phase-commit participant that records the id
 * and leaves the decision to its coordinator (strata-connect's strata
 * sink); the commit must come within the lease. Only strata_txn_free is
 * valid on the handle afterwards. When an event failed the transaction
 * is aborted and its error returned.
 */
STRATA_API int strata_txn_release(struct strata_txn *t, char *errmsg);

/*
 * Commit, or abort, transaction txn_id of scope/stream by its id, from
 * any process and without a handle: what a pipeline restoring from a
 * checkpoint does with the transaction it flushed (pre-committed) and
 * recorded in that checkpoint but had not committed when it stopped
 * (docs/client.md, "Two-phase commit"). Idempotent: 0 when it already is
 * in that state; a commit waits until the events are in the stream. The
 * transaction holds what was flushed before the process stopped. Its
 * lease is not renewed after the process that began it stops, so choose
 * a lease longer than a restore takes. Errors: STRATA_ENOENT (no such
 * transaction: never begun, or forgotten an hour after it completed),
 * STRATA_ECONFLICT (commit: it was aborted, e.g. its lease ran out;
 * abort: it was committed), STRATA_ENOTSUP (commit: the stream scaled
 * since it began; it is aborted), STRATA_ETIMEDOUT (recorded, completes
 * in the background), STRATA_EUNAVAIL, STRATA_EBADNAME (a bad scope or
 * stream name), STRATA_EINVAL (called from a callback).
 */
STRATA_API int strata_txn_commit_id(struct strata_client *c, const char *scope,
                                    const char *stream, uint64_t txn_id,
                                    char *errmsg);
STRATA_API int strata_txn_abort_id(struct strata_client *c, const char *scope,
                                   const char *stream, uint64_t txn_id,
                                   char *errmsg);

/* States of a transaction (strata_txn_status). */
enum strata_txn_state {
	STRATA_TXN_UNKNOWN = 0, /* forgotten (completed long ago) or none */
	STRATA_TXN_OPEN = 1,
	STRATA_TXN_COMMITTING = 2,
	STRATA_TXN_COMMITTED = 3,
	STRATA_TXN_ABORTING = 4,
	STRATA_TXN_ABORTED = 5,
};

/* The state of transaction txn_id of scope/stream (any handle, any
 * process: a pipeline that restarts checks what became of one). */
STRATA_API int strata_txn_status(struct strata_client *c, const char *scope,
                                 const char *stream, uint64_t txn_id,
                                 enum strata_txn_state *state, char *errmsg);

/* Free the handle. A transaction neither committed nor aborted through
 * it is aborted first (best effort; else its lease runs out). */
STRATA_API void strata_txn_free(struct strata_txn *t);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_TXN_H */
