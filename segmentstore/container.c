/* Segment container runtime (see container.h): one replica = a Raft group
 * whose FSM is the container FSM, plus group commit, reads with long-poll,
 * back-pressure and the storage writer.
 *
 * Threads: every piece of state below marked "loop" lives on the Raft
 * host's loop thread. container_submit (any thread) queues a copy of the
 * request under `lock` and schedules one drain task. Tier-2 reads run on
 * a small reader pool, chunk writes on the storage writer's thread; both
 * post their results back to the loop as host tasks. A ticker thread posts
 * a tick task every TICK_MS (long-poll timeouts, flush ages, back-off).
 *
 * Request, happy path: submit -> drain (loop): not the ready leader ->
 * ENOTLEADER; writes are validated against the applied state (framing,
 * sizes, unknown or sealed segment, back-pressure) and added to the open
 * batch (one entry_builder) -> at the end of the drain, or when the batch
 * reaches batch_bytes, it is proposed with raft_group_apply (EAGAIN: held
 * and retried after the next completion) -> the entry commits and applies
 * on every replica -> on the leader the apply callback answers every
 * request of the batch from its FSM result. Acks leave only from there, so
 * a deposed owner never acknowledges a write. Read-only requests (READ,
 * INFO, GET_ATTR, SETUP_APPEND) wait for the batches submitted before them
 * and are answered from the applied state.
 *
 * Failure modes: a batch that raft refuses or loses fails its requests
 * with ENOTLEADER (never appended), ELEADERLOST (outcome unknown) or
 * ESHUTDOWN; losing leadership fails long-polls with ENOTLEADER; SEAL,
 * TRUNCATE and MERGE are committed before they wait for the flush, so they
 * are answered with success even when that wait is cut short (tier 2
 * failing, leadership lost, stop). An FSM that runs out of memory while
 * applying has diverged: the replica stops applying (the group stalls)
 * until the process restarts and replays snapshot + log.
 */
#include "segmentstore/container.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/alloc.h"
#include "common/le.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/plugin.h"
#include "common/refbuf.h"
#include "raft/metrics.h"
#include "segmentstore/container_fsm.h"
#include "segmentstore/entry.h"
#include "segmentstore/idmap.h"
#include "segmentstore/read_index.h"
#include "segmentstore/storage_writer.h"
#include "strata/codec.h"
#include "strata/error.h"

#define COMP "container"

#define TICK_MS 20              /* ticker period */
#define READERS 2               /* tier-2 reader threads */
#define MAX_READ_JOBS 256       /* queued tier-2 reads */
#define MAX_WAITERS 65536       /* parked long-polls + flushes */
#define MAX_REQUESTS 65536      /* requests inside the loop */
#define READ_DEFAULT (1u << 20) /* max_bytes 0 */
#define READ_MAX (16u << 20)    /* largest read answered */
#define OP_OVERHEAD 128         /* entry bytes besides data */

/* One request inside the container (copy of the caller's). */
struct creq {
	struct container_request r;   /* copy; pointers borrowed */
	container_done_fn done;       /* callback */
	void *arg;                    /* its argument */
	struct creq *next;            /* queue / batch after-list */
	uint64_t seg;                 /* resolved segment id */
	uint64_t deadline;            /* READ long-poll end (ms), 0 = unset */
	uint64_t upto;                /* flush wait: flushed length wanted */
	uint64_t t0_ns;               /* submitted (CLOCK_MONOTONIC) */
	struct creq *wprev, *wnext;   /* waiters of one segment */
	struct container_reply reply; /* flush wait: the answer to give */
	bool waiting;                 /* in a waiter list */
};

/* Waiters (long-polls, flush waits) of one segment. */
struct wait_list {
	struct creq *head; /* doubly linked via wprev/wnext */
};

/* One Raft entry being built, queued or in flight. */
struct batch {
	struct container *c;       /* owner */
	struct entry_builder b;    /* the ops (until proposed) */
	struct creq **reqs;        /* request of op i, NULL for system ops */
	uint32_t n, cap;           /* ops added / slots in reqs */
	struct creq *after;        /* read-only requests waiting for it */
	struct creq *after_tail;   /* end of that list */
	uint64_t pending;          /* admitted append bytes */
	bool system;               /* storage writer ops */
	bool owner;                /* the OWNER marker of a takeover */
	uint64_t term;             /* OWNER: term it was proposed in */
	bool proposed;             /* handed to raft */
	uint32_t crc;              /* proposed entry's CRC */
	size_t len;                /* proposed entry's length */
	struct batch *prev, *next; /* c->bhead list */
};

/* What the apply hook hands to the proposer's callback. */
struct apply_out {
	uint64_t gen;                           /* c->apply_gen at apply */
	uint64_t index;                         /* Raft log index */
	uint32_t crc;                           /* entry CRC */
	size_t len;                             /* entry length */
	uint32_t n;                             /* results */
	int code;                               /* container_fsm_apply */
	const struct container_result *results; /* c->results */
};

/* One tier-2 read. */
struct read_job {
	struct raft_host_task task;      /* back to the loop */
	struct container *c;             /* owner */
	struct creq *q;                  /* the READ */
	uint64_t seg;                    /* segment */
	uint64_t offset;                 /* segment offset */
	char *chunk;                     /* chunk name (owned) */
	uint64_t chunk_offset;           /* where in the chunk */
	uint64_t chunk_end;              /* bytes of it FLUSHes committed */
	size_t len;                      /* bytes wanted */
	struct refbuf *buf;              /* bytes read (one reference) */
	size_t nread;                    /* bytes in buf */
	int rv;                          /* tier-2 result */
	char errmsg[STRATA_ERRMSG_SIZE]; /* its message */
	struct read_job *next;           /* reader queue */
};

/* Blocking handshake with the loop. */
struct waiter {
	pthread_mutex_t lock; /* guards done */
	pthread_cond_t cond;  /* signalled when done */
	bool done;            /* task ran */
};

struct container {
	struct container_config cfg; /* copy; data_dir/peers not kept */
	struct raft_host *host;      /* borrowed */
	struct raft_group *g;        /* the replica */
	/* Cross-thread. */
	pthread_mutex_t lock;        /* guards the fields up to `stopping` */
	struct creq *qhead, *qtail;  /* submitted, not drained */
	bool drain_queued;           /* c->drain is in the host queue */
	bool tick_queued;            /* c->tick is in the host queue */
	atomic_bool stopping;        /* container_stop began */
	struct raft_host_task drain; /* drains the queue */
	struct raft_host_task tick;  /* periodic work */
	struct raft_host_task started_task; /* marks `started` */
	struct raft_host_task stop_task;    /* final cleanup on the loop */
	struct raft_host_task sw_task;      /* storage writer job done */
	struct sw_job *sw_job;              /* the job sw_task carries */
	pthread_mutex_t slock;              /* guards status */
	struct container_status status;     /* published */
	/* Reader pool. */
	pthread_t readers[READERS];     /* threads */
	unsigned n_readers;             /* started */
	pthread_mutex_t rlock;          /* guards the reader queue */
	pthread_cond_t rcond;           /* job queued or stop */
	struct read_job *rhead, *rtail; /* queued jobs */
	unsigned r_queued;              /* jobs queued or running */
	bool rstop;                     /* readers exit */
	/* Ticker. */
	pthread_t ticker;      /* thread */
	bool ticker_started;   /* created */
	pthread_mutex_t tlock; /* guards tstop */
	pthread_cond_t tcond;  /* stop signalled */
	bool tstop;            /* ticker exits */
	/* Loop. */
	bool started;              /* raft_group_start returned */
	bool closing;              /* stop task ran */
	bool ready;                /* ready leader */
	int role;                  /* enum raft_group_role */
	uint64_t term;             /* current term */
	uint64_t leader;           /* known leader */
	bool log_failed;           /* this replica's log write failed */
	bool broken;               /* FSM diverged (ENOMEM in apply) */
	struct container_fsm fsm;  /* replicated state */
	struct read_index ri;      /* tail + cache */
	struct storage_writer *sw; /* NULL without tier 2 */
	bool plan_now;             /* run the writer's plan soon */
	uint64_t owner_gen;       /* index of this owner's OWNER entry, 0 = none
	                           * yet (chunks are named after it) */
	bool owner_pending;       /* OWNER entry proposed, not completed */
	struct tier2_metrics t2m; /* tier-2 metric handles */
	struct metrics_counter *m_appends;      /* appends acknowledged */
	struct metrics_counter *m_append_bytes; /* their bytes (not dups) */
	struct metrics_histogram *m_append_s;   /* submit -> ack */
	struct batch *bhead, *btail;      /* batches not completed, in order */
	struct batch *open;               /* accepting ops (during a drain) */
	uint64_t pending;                 /* admitted append bytes in batches */
	uint64_t n_requests;              /* requests inside the loop */
	struct idmap waits;               /* segment id -> struct wait_list */
	uint64_t n_waiters;               /* parked requests */
	struct container_result *results; /* apply scratch */
	size_t results_cap;               /* its slots */
	uint64_t apply_gen;               /* applies so far */
	struct apply_out out;             /* last apply's outcome */
	uint64_t entry_max;               /* largest entry proposed */
	size_t entry_hint;                /* size of the last entry proposed */
	struct creq *ahead, *atail;       /* acks waiting for `answer` */
	struct raft_host_task answer;     /* sends them (deferred, loop) */
	bool answer_queued;               /* `answer` is deferred */
	struct raft_host_task plan;       /* maybe_plan after a completion */
	bool plan_queued;                 /* `plan` is deferred */
};

/* ---- helpers ---------------------------------------------------------- */

static void waiter_init(struct waiter *w)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->done = false;
}

static void waiter_signal(struct waiter *w)
{
	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static void waiter_wait(struct waiter *w)
{
	pthread_mutex_lock(&w->lock);
	while (!w->done) {
		pthread_cond_wait(&w->cond, &w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
}

/* Publish the status fields the loop owns. */
static void publish(struct container *c)
{
	pthread_mutex_lock(&c->slock);
	c->status.role = c->role;
	c->status.ready = c->ready;
	c->status.term = c->term;
	c->status.leader_id = c->leader;
	c->status.log_failed = c->log_failed;
	c->status.unflushed_bytes = container_fsm_unflushed_bytes(&c->fsm);
	c->status.segments = c->fsm.segments.count;
	c->status.cache_bytes = c->ri.cached_bytes;
	pthread_mutex_unlock(&c->slock);
}

struct raft_group *container_raft_group(struct container *c)
{
	return c->g;
}

void container_status(struct container *c, struct container_status *out)
{
	pthread_mutex_lock(&c->slock);
	*out = c->status;
	pthread_mutex_unlock(&c->slock);
	out->tier2_degraded = c->sw != NULL && storage_writer_degraded(c->sw);
}

/* True once container_stop began (loop code stops starting new work). */
static bool shutting(struct container *c)
{
	return c->closing || atomic_load(&c->stopping);
}

/* Answer q and free it. msg NULL = the code's generic text. */
static void finish(struct container *c, struct creq *q, int code,
                   struct container_reply *reply, const char *msg)
{
	struct container_reply empty;
	if (reply == NULL) {
		memset(&empty, 0, sizeof(empty));
		reply = &empty;
	}
	if (msg != NULL) {
		reply->message = msg;
	} else if (code != 0 && reply->message == NULL) {
		reply->message = strata_strerror(code);
	}
	c->n_requests--;
	q->done(q->arg, code, reply);
	strata_free(q);
}

static void finish_notleader(struct container *c, struct creq *q)
{
	char msg[STRATA_ERRMSG_SIZE];
	if (c->leader != 0 && c->leader != c->cfg.node_id) {
		snprintf(msg, sizeof(msg),
		         "container %" PRIu32 ": node %" PRIu64
		         " is not its leader; the leader is node %" PRIu64,
		         c->cfg.id, c->cfg.node_id, c->leader);
	} else {
		snprintf(msg, sizeof(msg),
		         "container %" PRIu32 ": node %" PRIu64
		         " is not its ready leader and no leader is known yet; "
		         "retry shortly",
		         c->cfg.id, c->cfg.node_id);
	}
	finish(c, q, STRATA_ENOTLEADER, NULL, msg);
}

/* Segment info of seg into reply (nothing when it does not exist). */
static void fill_info(struct container *c, uint64_t seg,
                      struct container_reply *reply)
{
	struct container_segment_info info;
	if (container_fsm_segment_info(&c->fsm, seg, &info) == 0) {
		reply->length = info.length;
		reply->start_offset = info.start_offset;
		reply->flushed_length = info.flushed_length;
		reply->events = info.events;
		reply->sealed = info.sealed;
	}
}

/* Resolve q's segment name into q->seg; answers ENOENT when missing. */
static bool resolve(struct container *c, struct creq *q, const char *name,
                    uint64_t *id)
{
	if (name != NULL && container_fsm_lookup(&c->fsm, name, id) == 0) {
		return true;
	}
	char msg[STRATA_ERRMSG_SIZE];
	snprintf(msg, sizeof(msg),
	         "segment \"%s\" does not exist in container %" PRIu32
	         "; create it first",
	         name != NULL ? name : "", c->cfg.id);
	finish(c, q, STRATA_ENOENT, NULL, msg);
	return false;
}

/* ---- waiters ---------------------------------------------------------- */

static int wait_add(struct container *c, struct creq *q)
{
	struct wait_list *l = idmap_get(&c->waits, q->seg);
	if (l == NULL) {
		l = strata_calloc(1, sizeof(*l));
		if (l == NULL || idmap_put(&c->waits, q->seg, l) != 0) {
			strata_free(l);
			return STRATA_ENOMEM;
		}
	}
	q->wprev = NULL;
	q->wnext = l->head;
	if (l->head != NULL) {
		l->head->wprev = q;
	}
	l->head = q;
	q->waiting = true;
	c->n_waiters++;
	return 0;
}

static void wait_remove(struct container *c, struct creq *q)
{
	struct wait_list *l = idmap_get(&c->waits, q->seg);
	if (q->wprev != NULL) {
		q->wprev->wnext = q->wnext;
	} else if (l != NULL) {
		l->head = q->wnext;
	}
	if (q->wnext != NULL) {
		q->wnext->wprev = q->wprev;
	}
	q->wprev = q->wnext = NULL;
	q->waiting = false;
	c->n_waiters--;
	if (l != NULL && l->head == NULL) {
		idmap_del(&c->waits, q->seg);
		strata_free(l);
	}
}

/* Detach every waiter of seg into a singly linked list (via next). */
static struct creq *wait_take(struct container *c, uint64_t seg)
{
	struct wait_list *l = idmap_get(&c->waits, seg);
	struct creq *out = NULL;
	if (l == NULL) {
		return NULL;
	}
	for (struct creq *q = l->head; q != NULL; q = q->wnext) {
		q->next = out;
		out = q;
		q->waiting = false;
		c->n_waiters--;
	}
	idmap_del(&c->waits, seg);
	strata_free(l);
	return out;
}

static void do_read(struct container *c, struct creq *q);

/* Finish a flush wait with its stored (successful) reply. */
static void flush_wait_done(struct container *c, struct creq *q)
{
	fill_info(c, q->seg, &q->reply);
	struct container_reply reply = q->reply;
	finish(c, q, 0, &reply, NULL);
}

/* Re-examine every waiter of seg after its segment changed. */
static void wake(struct container *c, uint64_t seg)
{
	if (c->n_waiters == 0 || idmap_get(&c->waits, seg) == NULL) {
		return;
	}
	struct creq *list = wait_take(c, seg);
	while (list != NULL) {
		struct creq *q = list;
		list = q->next;
		if (q->r.op == CONTAINER_READ) {
			do_read(c, q);
			continue;
		}
		const struct segment *s = container_fsm_segment(&c->fsm, seg);
		if (s == NULL || segment_flushed_length(s) >= q->upto ||
		    c->sw == NULL || !c->ready || c->closing) {
			flush_wait_done(c, q);
		} else if (wait_add(c, q) != 0) {
			flush_wait_done(c, q);
		}
	}
}

/* Answer every waiter: reads with code (0 = at tail, no data), flush
 * waits with their stored reply. */
static void wake_all(struct container *c, int code)
{
	struct creq *all = NULL;
	size_t pos = 0;
	uint64_t id;
	void *v;
	while (idmap_next(&c->waits, &pos, &id, &v)) {
		struct creq *list = wait_take(c, id);
		while (list != NULL) {
			struct creq *q = list;
			list = q->next;
			q->next = all;
			all = q;
		}
	}
	while (all != NULL) {
		struct creq *q = all;
		all = q->next;
		if (q->r.op != CONTAINER_READ) {
			flush_wait_done(c, q);
		} else if (code == STRATA_ENOTLEADER) {
			finish_notleader(c, q);
		} else if (code != 0) {
			finish(c, q, code, NULL, NULL);
		} else {
			do_read(c, q);
		}
	}
}

/* Long-polls past their deadline answer "at tail, no data". */
static void expire(struct container *c, uint64_t now)
{
	if (c->n_waiters == 0) {
		return;
	}
	struct creq *due = NULL;
	size_t pos = 0;
	uint64_t id;
	void *v;
	while (idmap_next(&c->waits, &pos, &id, &v)) {
		struct wait_list *l = v;
		struct creq *q = l->head;
		while (q != NULL) {
			struct creq *nx = q->wnext;
			if (q->r.op == CONTAINER_READ && q->deadline <= now) {
				wait_remove(c, q); /* may free l: last use */
				q->next = due;
				due = q;
			}
			q = nx;
		}
	}
	while (due != NULL) {
		struct creq *q = due;
		due = q->next;
		q->deadline = 1; /* expired: answer now */
		do_read(c, q);
	}
}

/* ---- reads ------------------------------------------------------------ */

static void read_reply(struct container *c, struct creq *q, uint64_t seg,
                       const uint8_t *data, size_t len, struct refbuf *ref)
{
	struct container_reply reply = {0};
	fill_info(c, seg, &reply);
	reply.offset = q->r.offset;
	reply.data = data;
	reply.data_len = len;
	reply.data_ref = ref;
	reply.at_tail = q->r.offset + len >= reply.length;
	reply.end_of_segment = reply.sealed && reply.at_tail;
	finish(c, q, 0, &reply, NULL);
}

static void reader_queue(struct container *c, struct read_job *j)
{
	pthread_mutex_lock(&c->rlock);
	j->next = NULL;
	if (c->rtail != NULL) {
		c->rtail->next = j;
	} else {
		c->rhead = j;
	}
	c->rtail = j;
	c->r_queued++;
	pthread_cond_signal(&c->rcond);
	pthread_mutex_unlock(&c->rlock);
}

static void read_job_free(struct read_job *j)
{
	strata_free(j->chunk);
	refbuf_release(j->buf);
	strata_free(j);
}

/* The end of what segment s's FLUSHes committed to chunk: the chunk
 * holds at least this much (the FLUSH committed after its write). */
static uint64_t chunk_end(const struct segment *s, const char *chunk)
{
	uint64_t end = 0;
	for (size_t i = 0; s != NULL && i < s->n_extents; i++) {
		const struct extent *e = &s->extents[i];
		if (e->kind == EXTENT_CHUNK && strcmp(e->chunk, chunk) == 0 &&
		    e->chunk_offset + e->length > end) {
			end = e->chunk_offset + e->length;
		}
	}
	return end;
}

/* A tier-2 read is back on the loop. */
static void read_done(struct raft_host_task *t)
{
	struct read_job *j = t->data;
	struct container *c = j->c;
	struct creq *q = j->q;
	pthread_mutex_lock(&c->rlock);
	if (c->r_queued > 0) {
		c->r_queued--;
	}
	pthread_mutex_unlock(&c->rlock);
	if (j->rv == 0 && j->nread > 0) {
		/* The cache and the reply share the buffer (no copy): the
		 * job's reference is the reply's until finish() returns. */
		struct refbuf *data = j->buf;
		(void)read_index_insert_owned(&c->ri, j->seg, j->offset,
		                              refbuf_hold(data), j->nread);
		publish(c);
		read_reply(c, q, j->seg, data->data, j->nread, data);
	} else if (container_fsm_segment(&c->fsm, j->seg) == NULL) {
		finish(c, q, STRATA_ENOENT, NULL,
		       "segment was deleted while being read");
	} else {
		char msg[2 * STRATA_ERRMSG_SIZE + 256];
		if (j->rv == 0) {
			/* Cut short behind Strata's back: as damaged. */
			snprintf(msg, sizeof(msg),
			         "tier-2 chunk %s of container %" PRIu32
			         " holds fewer bytes than were flushed to it "
			         "(none at %" PRIu64
			         "): restore the chunk from "
			         "a backup",
			         j->chunk, c->cfg.id, j->chunk_offset);
			LOG_ERROR(COMP, "%s", msg);
			j->rv = STRATA_ECORRUPT;
		} else if (chunk_end(container_fsm_segment(&c->fsm, j->seg),
		                     j->chunk) == 0) {
			/* Merged or truncated away meanwhile: read anew. */
			snprintf(msg, sizeof(msg),
			         "tier-2 chunk %s of container %" PRIu32
			         " changed while being read; retry",
			         j->chunk, c->cfg.id);
			j->rv = STRATA_EAGAIN;
		} else if (j->rv == STRATA_ECORRUPT || j->rv == STRATA_ETORN ||
		           j->rv == STRATA_ENOENT) {
			/* Flushed data tier 2 no longer holds whole: no retry
			 * brings it back. Not ENOENT: the segment exists. */
			snprintf(
			        msg, sizeof(msg),
			        "tier-2 chunk %s of container %" PRIu32
			        " is %s, so flushed bytes cannot be read: "
			        "restore the chunk from a backup%s (%s)",
			        j->chunk, c->cfg.id,
			        j->rv == STRATA_ENOENT ? "missing" : "damaged",
			        j->rv == STRATA_ENOENT
			                ? ", or point tier2.options back where "
			                  "it was written"
			                : "",
			        j->errmsg);
			LOG_ERROR(COMP, "%s", msg);
			j->rv = STRATA_ECORRUPT;
		} else {
			snprintf(msg, sizeof(msg),
			         "read tier-2 chunk %s of container %" PRIu32
			         ": %s; %s",
			         j->chunk, c->cfg.id, j->errmsg,
			         j->rv == STRATA_EPERM
			                 ? "give the store access to tier 2"
			                 : "retry later");
		}
		finish(c, q, j->rv, NULL, msg);
	}
	read_job_free(j);
}

/* Tier-2 read metrics (reader threads; the handles are lock-free). */
static void count_read(struct container *c, int rv, size_t n, uint64_t t0)
{
	const struct tier2_metrics *m = &c->t2m;
	if (m->reads == NULL) {
		return;
	}
	metrics_counter_inc(m->reads);
	if (rv != 0) {
		metrics_counter_inc(m->read_errors);
		return;
	}
	metrics_counter_add(m->read_bytes, n);
	metrics_histogram_observe(m->read_seconds,
	                          (double)(clock_mono_ns() - t0) / 1e9);
}

/*
 * Read j's range from tier 2 (reader thread, chunk lock held). A chunk
 * whose last write was cut by a crash reports STRATA_ETORN on every
 * access, even though its records up to the last good length are sound
 * and are all a FLUSH ever referenced (a FLUSH commits only after its
 * write returned). When the good length holds every byte the FLUSHes
 * committed to the chunk (j->chunk_end), cut the torn tail off (the
 * repair the plugin contract names: truncate to the last good length
 * drops no record) and read again. Damage below that is not a torn
 * write but data lost after it was acknowledged: never cut (that would
 * drop sound records after the damage too); read_done reports it.
 */
static int read_chunk(struct container *c, struct read_job *j)
{
	int rv = tier2_read(c->cfg.tier2, j->chunk, j->chunk_offset,
	                    j->buf->data, j->len, &j->nread, j->errmsg);
	if (rv != STRATA_ETORN) {
		return rv;
	}
	struct strata_tier2_chunk_info info = {0};
	char msg[STRATA_ERRMSG_SIZE];
	int srv = tier2_stat(c->cfg.tier2, j->chunk, &info, msg);
	if ((srv != 0 && srv != STRATA_ETORN) ||
	    info.length < j->chunk_offset + j->len) {
		return rv; /* the wanted bytes are not all intact */
	}
	if (info.length < j->chunk_end) {
		snprintf(j->errmsg, sizeof(j->errmsg),
		         "damaged at byte %" PRIu64 ", below the %" PRIu64
		         " bytes flushed to it",
		         info.length, j->chunk_end);
		return STRATA_ECORRUPT;
	}
	srv = tier2_truncate(c->cfg.tier2, j->chunk, info.length, msg);
	if (srv != 0) {
		LOG_WARN(COMP,
		         "container %" PRIu32 ": could not cut the torn tail "
		         "of tier-2 chunk %s at %" PRIu64 ": %s",
		         c->cfg.id, j->chunk, info.length, msg);
		return rv;
	}
	LOG_WARN(COMP,
	         "container %" PRIu32 ": tier-2 chunk %s had a torn tail "
	         "(a crash during its last write); cut at its last good "
	         "length %" PRIu64 ", which holds every flushed byte",
	         c->cfg.id, j->chunk, info.length);
	return tier2_read(c->cfg.tier2, j->chunk, j->chunk_offset, j->buf->data,
	                  j->len, &j->nread, j->errmsg);
}

static void *reader_main(void *arg)
{
	struct container *c = arg;
	pthread_mutex_lock(&c->rlock);
	for (;;) {
		while (c->rhead == NULL && !c->rstop) {
			pthread_cond_wait(&c->rcond, &c->rlock);
		}
		if (c->rstop) {
			break; /* queued jobs are answered by the stop task */
		}
		struct read_job *j = c->rhead;
		c->rhead = j->next;
		if (c->rhead == NULL) {
			c->rtail = NULL;
		}
		pthread_mutex_unlock(&c->rlock);
		j->rv = storage_writer_lock_chunk(c->sw, j->chunk);
		if (j->rv == 0) {
			uint64_t t0 = clock_mono_ns();
			j->rv = read_chunk(c, j);
			storage_writer_unlock_chunk(c->sw, j->chunk);
			count_read(c, j->rv, j->nread, t0);
		}
		j->task.data = j;
		j->task.fn = read_done;
		if (raft_host_submit(c->host, &j->task) != 0) {
			LOG_ERROR(COMP,
			          "container %" PRIu32
			          ": raft host stopped before the container; "
			          "a read is lost",
			          c->cfg.id);
		}
		pthread_mutex_lock(&c->rlock);
	}
	pthread_mutex_unlock(&c->rlock);
	return NULL;
}

/* Answer (or park) a READ from the applied state. */
static void do_read(struct container *c, struct creq *q)
{
	char msg[STRATA_ERRMSG_SIZE];
	uint64_t seg;
	if (shutting(c)) {
		finish(c, q, STRATA_ESHUTDOWN, NULL, NULL);
		return;
	}
	if (!c->ready) {
		finish_notleader(c, q);
		return;
	}
	if (!resolve(c, q, q->r.segment, &seg)) {
		return;
	}
	q->seg = seg;
	size_t max = q->r.max_bytes ? q->r.max_bytes : READ_DEFAULT;
	if (max > READ_MAX) {
		max = READ_MAX;
	}
	struct read_result rr;
	int rv = read_index_read(&c->ri, seg, q->r.offset, max, &rr);
	if (rv == STRATA_ETRUNCATED) {
		struct container_reply reply = {0};
		fill_info(c, seg, &reply);
		snprintf(msg, sizeof(msg),
		         "offset %" PRIu64 " of segment \"%s\" was truncated; "
		         "read from %" PRIu64,
		         q->r.offset, q->r.segment, reply.start_offset);
		finish(c, q, rv, &reply, msg);
		return;
	}
	if (rv != 0) {
		struct container_reply reply = {0};
		fill_info(c, seg, &reply);
		snprintf(msg, sizeof(msg),
		         "read segment \"%s\" at offset %" PRIu64
		         ": beyond its length %" PRIu64,
		         q->r.segment, q->r.offset, reply.length);
		finish(c, q, rv, &reply, rv == STRATA_ERANGE ? msg : NULL);
		return;
	}
	switch (rr.status) {
	case READ_DATA:
		read_reply(c, q, seg, rr.data, rr.len, rr.ref);
		return;
	case READ_END:
		read_reply(c, q, seg, NULL, 0, NULL);
		return;
	case READ_WAIT: {
		uint64_t now = clock_mono_ms();
		if (q->deadline == 0) {
			q->deadline = now + q->r.wait_ms;
		}
		if (q->r.wait_ms == 0 || q->deadline <= now ||
		    c->n_waiters >= MAX_WAITERS || wait_add(c, q) != 0) {
			read_reply(c, q, seg, NULL, 0, NULL);
		}
		return;
	}
	default:
		break;
	}
	/* READ_TIER2 */
	if (c->sw == NULL) {
		finish(c, q, STRATA_EIO, NULL,
		       "data is in tier 2 but this container has no tier 2");
		return;
	}
	pthread_mutex_lock(&c->rlock);
	unsigned queued = c->r_queued;
	pthread_mutex_unlock(&c->rlock);
	if (queued >= MAX_READ_JOBS) {
		finish(c, q, STRATA_EAGAIN, NULL,
		       "too many tier-2 reads in progress; retry later");
		return;
	}
	struct read_job *j = strata_calloc(1, sizeof(*j));
	if (j != NULL) {
		j->chunk = strata_strdup(rr.chunk);
		j->buf = refbuf_new(rr.len);
	}
	if (j == NULL || j->chunk == NULL || j->buf == NULL) {
		if (j != NULL) {
			read_job_free(j);
		}
		finish(c, q, STRATA_ENOMEM, NULL, NULL);
		return;
	}
	j->c = c;
	j->q = q;
	j->seg = seg;
	j->offset = q->r.offset;
	j->chunk_offset = rr.chunk_offset;
	j->chunk_end = chunk_end(container_fsm_segment(&c->fsm, seg), rr.chunk);
	j->len = rr.len;
	reader_queue(c, j);
}

/* ---- read-only requests ----------------------------------------------- */

static void exec_ro(struct container *c, struct creq *q)
{
	struct container_reply reply = {0};
	uint64_t seg;
	if (shutting(c)) {
		finish(c, q, STRATA_ESHUTDOWN, NULL, NULL);
		return;
	}
	if (!c->ready) {
		finish_notleader(c, q);
		return;
	}
	if (q->r.op == CONTAINER_READ) {
		do_read(c, q);
		return;
	}
	if (!resolve(c, q, q->r.segment, &seg)) {
		return;
	}
	fill_info(c, seg, &reply);
	int64_t v = CONTAINER_ATTR_NONE;
	switch (q->r.op) {
	case CONTAINER_SETUP_APPEND:
		container_fsm_get_attribute(&c->fsm, seg, q->r.writer_id, &v);
		reply.last_event_number = v == CONTAINER_ATTR_NONE ? -1 : v;
		break;
	case CONTAINER_GET_ATTR:
		container_fsm_get_attribute(&c->fsm, seg, q->r.attr_key, &v);
		reply.attr_present = v != CONTAINER_ATTR_NONE;
		reply.attr_value = v;
		break;
	default: /* INFO */
		break;
	}
	finish(c, q, 0, &reply, NULL);
}

/* ---- batches ---------------------------------------------------------- */

static void batch_free(struct batch *b)
{
	entry_builder_close(&b->b);
	strata_free(b->reqs);
	strata_free(b);
}

static struct batch *batch_new(struct container *c, bool system)
{
	struct batch *b = strata_calloc(1, sizeof(*b));
	if (b == NULL) {
		return NULL;
	}
	b->c = c;
	b->system = system;
	entry_builder_init(&b->b, 0);
	b->prev = c->btail;
	if (c->btail != NULL) {
		c->btail->next = b;
	} else {
		c->bhead = b;
	}
	c->btail = b;
	return b;
}

static void batch_unlink(struct container *c, struct batch *b)
{
	if (b->prev != NULL) {
		b->prev->next = b->next;
	} else {
		c->bhead = b->next;
	}
	if (b->next != NULL) {
		b->next->prev = b->prev;
	} else {
		c->btail = b->prev;
	}
	if (c->open == b) {
		c->open = NULL;
	}
}

/* Run the read-only requests that waited for b (b is unlinked). */
static void batch_after(struct container *c, struct batch *b)
{
	struct creq *q = b->after;
	b->after = b->after_tail = NULL;
	while (q != NULL) {
		struct creq *nx = q->next;
		exec_ro(c, q);
		q = nx;
	}
}

static void maybe_plan(struct container *c);

/* Fail every request of an unlinked batch that never committed. */
static void batch_fail(struct container *c, struct batch *b, int code)
{
	char msg[STRATA_ERRMSG_SIZE];
	c->pending -= b->pending;
	if (b->owner) {
		c->owner_pending = false; /* proposed again while ready */
	}
	switch (code) {
	case STRATA_ELEADERLOST:
		snprintf(msg, sizeof(msg),
		         "container %" PRIu32
		         ": leadership lost before the write committed; its "
		         "outcome is unknown: retry it (appends are "
		         "deduplicated)",
		         c->cfg.id);
		break;
	case STRATA_ETOOBIG:
		snprintf(msg, sizeof(msg),
		         "container %" PRIu32
		         ": batch of %zu bytes exceeds the Raft budget",
		         c->cfg.id, entry_builder_size(&b->b));
		break;
	default:
		snprintf(msg, sizeof(msg), "container %" PRIu32 ": %s",
		         c->cfg.id, strata_strerror(code));
		break;
	}
	for (uint32_t i = 0; i < b->n; i++) {
		struct creq *q = b->reqs[i];
		if (q == NULL) {
			continue;
		}
		if (code == STRATA_ENOTLEADER) {
			finish_notleader(c, q);
		} else {
			finish(c, q, code, NULL, msg);
		}
	}
	if (b->system && c->sw != NULL) {
		storage_writer_committed(c->sw, false);
		c->plan_now = true;
	}
	batch_after(c, b);
	batch_free(b);
}

/* Send the acks of committed appends (the host's check phase, after
 * libraft started its next write; see raft_host_defer). */
static void answer_task(struct raft_host_task *t)
{
	struct container *c = t->data;
	struct creq *q = c->ahead;
	c->ahead = c->atail = NULL;
	c->answer_queued = false;
	while (q != NULL) {
		struct creq *nx = q->next;
		finish(c, q, 0, &q->reply, NULL);
		q = nx;
	}
}

/* Ack q (a successful append, reply without pointers) once the current
 * write completion is over. */
static void answer_later(struct container *c, struct creq *q,
                         const struct container_reply *reply)
{
	q->reply = *reply;
	q->next = NULL;
	if (c->atail != NULL) {
		c->atail->next = q;
	} else {
		c->ahead = q;
	}
	c->atail = q;
	if (!c->answer_queued) {
		c->answer_queued = true;
		raft_host_defer(c->host, &c->answer);
	}
}

/* The writer's plan, deferred like answer_task: planning copies up to a
 * flush's worth of unflushed bytes (4 MiB), which inside a commit
 * callback would hold back libraft's next log write. */
static void plan_task(struct raft_host_task *t)
{
	struct container *c = t->data;
	c->plan_queued = false;
	maybe_plan(c);
}

static void plan_later(struct container *c)
{
	if (!c->plan_queued) {
		c->plan_queued = true;
		raft_host_defer(c->host, &c->plan);
	}
}

/* Answer one write of a committed batch from its FSM result. */
static void complete_write(struct container *c, struct creq *q,
                           const struct container_result *res)
{
	struct container_reply reply = {0};
	int code = res->code;
	uint64_t seg = res->segment;
	char msg[STRATA_ERRMSG_SIZE];
	const char *m = NULL;
	switch (q->r.op) {
	case CONTAINER_CREATE:
		if (code == STRATA_EEXIST && q->r.idempotent) {
			code = 0;
		} else if (code == STRATA_EEXIST) {
			snprintf(msg, sizeof(msg),
			         "segment \"%s\" already exists", q->r.segment);
			m = msg;
		}
		fill_info(c, seg, &reply);
		break;
	case CONTAINER_APPEND:
		fill_info(c, seg, &reply);
		reply.offset = res->offset;
		reply.last_event_number = res->value;
		reply.duplicate = res->dedup;
		if (code == 0 && c->m_appends != NULL) {
			metrics_counter_inc(c->m_appends);
			metrics_counter_add(c->m_append_bytes,
			                    res->dedup ? 0 : q->r.len);
			metrics_histogram_observe(
			        c->m_append_s,
			        (double)(clock_mono_ns() - q->t0_ns) / 1e9);
		}
		if (code == 0 && !res->dedup) {
			reply.length = res->offset + q->r.len;
		} else if (code == 0 || code == STRATA_EBADOFFSET) {
			reply.length = res->offset;
		}
		if (code == STRATA_EBADEVENTNUM) {
			snprintf(msg, sizeof(msg),
			         "events %" PRId64 "..%" PRId64
			         " do not follow the writer's last event "
			         "number %" PRId64 " on \"%s\"; set up the "
			         "append again",
			         q->r.first_event_number,
			         q->r.first_event_number +
			                 (int64_t)q->r.event_count - 1,
			         res->value, q->r.segment);
			m = msg;
		} else if (code == STRATA_EBADOFFSET) {
			snprintf(msg, sizeof(msg),
			         "conditional append to \"%s\" expected offset "
			         "%" PRId64 " but the length is %" PRIu64,
			         q->r.segment, q->r.expected_offset,
			         res->offset);
			m = msg;
		}
		break;
	case CONTAINER_SEAL:
	case CONTAINER_TRUNCATE:
	case CONTAINER_MERGE:
		fill_info(c, seg, &reply);
		if (q->r.op == CONTAINER_MERGE) {
			reply.offset = res->offset;
		}
		if (code == 0 && c->sw != NULL && c->ready && !c->closing) {
			/* Done once the bytes up to here are in tier 2. */
			uint64_t upto = q->r.op == CONTAINER_TRUNCATE
			                        ? res->offset
			                        : reply.length;
			if (reply.flushed_length < upto &&
			    c->n_waiters < MAX_WAITERS &&
			    storage_writer_request(c->sw, seg, upto) == 0) {
				q->seg = seg;
				q->upto = upto;
				q->reply = reply;
				if (wait_add(c, q) == 0) {
					c->plan_now = true;
					return;
				}
			}
		}
		break;
	case CONTAINER_UPDATE_ATTR:
		fill_info(c, seg, &reply);
		reply.attr_value = res->value;
		reply.attr_present = res->value != CONTAINER_ATTR_NONE;
		if (code == STRATA_ECONFLICT) {
			snprintf(
			        msg, sizeof(msg),
			        "attribute of \"%s\" changed: expected %" PRId64
			        ", found %" PRId64,
			        q->r.segment, q->r.attr_expected, res->value);
			m = msg;
		}
		break;
	default: /* DELETE */
		reply.length = res->offset;
		break;
	}
	if (code != 0 && m == NULL) {
		snprintf(msg, sizeof(msg), "%s on segment \"%s\": %s",
		         q->r.op == CONTAINER_MERGE ? "merge" : "operation",
		         q->r.segment, strata_strerror(code));
		m = msg;
	}
	if (code == 0 && q->r.op == CONTAINER_APPEND && !c->closing) {
		answer_later(c, q, &reply);
		return;
	}
	finish(c, q, code, &reply, m);
}

static void pump(struct container *c);

/* This owner's OWNER entry committed: its log index is the generation
 * its chunks are named after, and the orphan sweep can be planned. */
static void owner_done(struct container *c, const struct batch *b,
                       const struct apply_out *o)
{
	c->owner_pending = false;
	if (!c->ready || c->closing || b->term != c->term ||
	    o->results[0].code != 0) {
		return; /* proposed again (maybe_plan) while ready */
	}
	c->owner_gen = o->index;
	if (storage_writer_set_owner(c->sw, &c->fsm, c->owner_gen) != 0) {
		LOG_WARN(COMP,
		         "container %" PRIu32
		         ": out of memory listing referenced chunks; the "
		         "tier-2 orphan sweep is skipped until the next "
		         "takeover",
		         c->cfg.id);
	}
	LOG_INFO(COMP,
	         "container %" PRIu32 ": node %" PRIu64
	         " owns it in term %" PRIu64 ", chunk generation %" PRIu64,
	         c->cfg.id, c->cfg.node_id, c->term, c->owner_gen);
	c->plan_now = true;
}

/* Propose this owner's OWNER marker (once per takeover, again if it
 * failed while still leading); flushing waits for it. */
static void propose_owner(struct container *c)
{
	if (c->sw == NULL || !c->ready || c->owner_gen != 0 ||
	    c->owner_pending || shutting(c)) {
		return;
	}
	struct batch *b = batch_new(c, false);
	if (b == NULL) {
		return;
	}
	b->reqs = strata_calloc(1, sizeof(*b->reqs));
	if (b->reqs == NULL ||
	    entry_builder_add_owner(&b->b, c->cfg.node_id, c->term) != 0) {
		batch_unlink(c, b);
		batch_free(b);
		return;
	}
	b->cap = 1;
	b->n = 1;
	b->owner = true;
	b->term = c->term;
	c->owner_pending = true;
	pump(c);
}

/* Raft callback of a proposed batch (loop thread). */
static void batch_cb(void *arg, int status, void *result)
{
	struct batch *b = arg;
	struct container *c = b->c;
	batch_unlink(c, b);
	const struct apply_out *o = result;
	if (status == 0 &&
	    (o == NULL || o != &c->out || o->gen != c->apply_gen ||
	     o->crc != b->crc || o->len != b->len || o->n != b->n)) {
		LOG_ERROR(COMP,
		          "container %" PRIu32
		          ": committed batch has no matching apply result "
		          "(code %d); its requests get an unknown outcome",
		          c->cfg.id, o != NULL ? o->code : -1);
		status = STRATA_ELEADERLOST;
	}
	if (status != 0) {
		batch_fail(c, b, status);
		pump(c);
		maybe_plan(c);
		return;
	}
	if (b->owner) {
		owner_done(c, b, o);
		batch_after(c, b);
		batch_free(b);
		pump(c);
		maybe_plan(c);
		return;
	}
	c->pending -= b->pending;
	for (uint32_t i = 0; i < b->n; i++) {
		if (b->reqs[i] != NULL) {
			complete_write(c, b->reqs[i], &o->results[i]);
		}
	}
	if (b->system && c->sw != NULL) {
		storage_writer_committed(c->sw, true);
		c->plan_now = true;
	}
	batch_after(c, b);
	batch_free(b);
	pump(c);
	plan_later(c);
}

/* Propose queued batches in order until raft pushes back. */
static void pump(struct container *c)
{
	if (!c->started) {
		return;
	}
	struct batch *b = c->bhead;
	while (b != NULL) {
		struct batch *nx = b->next;
		if (b->proposed || b == c->open) {
			b = nx;
			continue;
		}
		if (b->n == 0) {
			struct batch *prev = b->prev;
			batch_unlink(c, b);
			if (prev != NULL && b->after != NULL) {
				/* Its readers follow the batch before. */
				if (prev->after_tail != NULL) {
					prev->after_tail->next = b->after;
				} else {
					prev->after = b->after;
				}
				prev->after_tail = b->after_tail;
				b->after = b->after_tail = NULL;
			}
			batch_after(c, b);
			batch_free(b);
			b = nx;
			continue;
		}
		const uint8_t *e;
		size_t len;
		int rv = entry_builder_finish(&b->b, &e, &len);
		if (rv == 0) {
			b->crc = le32_get(e + 16);
			b->len = len;
			rv = raft_group_apply(c->g, e, len, batch_cb, b);
		}
		if (rv == STRATA_EAGAIN) {
			return; /* retried after the next completion */
		}
		if (rv != 0) {
			batch_unlink(c, b);
			batch_fail(c, b, rv);
			b = nx;
			continue;
		}
		b->proposed = true;
		c->entry_hint = len;
		entry_builder_close(&b->b); /* raft has its own copy */
		entry_builder_init(&b->b, 0);
		b = nx;
	}
}

/* Close the open batch: it is proposed at the next pump. */
static void close_open(struct container *c)
{
	c->open = NULL;
}

/* The batch to add an op of about `bytes` to (a new one when the open one
 * would grow past batch_bytes). NULL on OOM. */
static struct batch *batch_for(struct container *c, uint64_t bytes)
{
	struct batch *b = c->open;
	if (b != NULL && b->n > 0 &&
	    entry_builder_size(&b->b) + bytes > c->cfg.batch_bytes) {
		close_open(c);
		pump(c);
		b = NULL;
	}
	if (b == NULL) {
		b = batch_new(c, false);
		c->open = b;
		/* Room for twice the last entry, so that a busy container's
		 * batches do not copy themselves on every doubling. A hint:
		 * an add that finds no memory fails on its own. */
		if (b != NULL) {
			size_t hint = 2 * c->entry_hint;
			(void)entry_builder_reserve(
			        &b->b, hint < c->entry_max
			                       ? hint
			                       : (size_t)c->entry_max);
		}
	}
	if (b != NULL && b->n == b->cap) {
		uint32_t cap = b->cap ? 2 * b->cap : 16;
		struct creq **n = strata_realloc(b->reqs, cap * sizeof(*n));
		if (n == NULL) {
			return NULL;
		}
		b->reqs = n;
		b->cap = cap;
	}
	return b;
}

/* ---- writes ----------------------------------------------------------- */

/* Check the framing of an append block; 0 or an error with msg set. */
static int check_events(struct container *c, const struct creq *q, char *msg,
                        size_t n)
{
	const struct container_request *r = &q->r;
	if (r->len > c->cfg.max_append_bytes) {
		snprintf(msg, n,
		         "append of %zu bytes to \"%s\" exceeds the limit of "
		         "%" PRIu64 " bytes per request; send smaller blocks",
		         r->len, r->segment, c->cfg.max_append_bytes);
		return STRATA_ETOOBIG;
	}
	if (r->first_event_number < 0 || r->event_count == 0 ||
	    r->first_event_number > INT64_MAX - (int64_t)(r->event_count - 1) ||
	    (r->data == NULL && r->len > 0)) {
		snprintf(msg, n,
		         "append to \"%s\": first event number %" PRId64
		         " and event count %" PRIu32
		         " must be >= 0 and >= 1 without overflow",
		         r->segment, r->first_event_number, r->event_count);
		return STRATA_EINVAL;
	}
	size_t off = 0;
	uint32_t events = 0;
	while (off < r->len) {
		if (r->len - off < 4) {
			snprintf(msg, n,
			         "append to \"%s\": event %" PRIu32
			         " header cut at byte %zu of %zu",
			         r->segment, events, off, r->len);
			return STRATA_EPROTO;
		}
		uint32_t w = le32_get(r->data + off);
		uint32_t l = w & ~STRATA_FRAME_ENCODED;
		off += 4;
		if (l > c->cfg.max_event_bytes) {
			snprintf(msg, n,
			         "append to \"%s\": event %" PRIu32
			         " of %" PRIu32
			         " bytes exceeds the event limit "
			         "of %" PRIu64 " bytes",
			         r->segment, events, l, c->cfg.max_event_bytes);
			return STRATA_ETOOBIG;
		}
		if (l > r->len - off) {
			snprintf(msg, n,
			         "append to \"%s\": event %" PRIu32
			         " says %" PRIu32 " bytes but only %zu follow",
			         r->segment, events, l, r->len - off);
			return STRATA_EPROTO;
		}
		if ((w & STRATA_FRAME_ENCODED) != 0 &&
		    (l < STRATA_CODEC_HEADER ||
		     r->data[off] != STRATA_CODEC_PROTOCOL)) {
			snprintf(msg, n,
			         "append to \"%s\": event %" PRIu32
			         " is marked encoded but has no codec header "
			         "of protocol %d (strata/codec.h)",
			         r->segment, events, STRATA_CODEC_PROTOCOL);
			return STRATA_EPROTO;
		}
		off += l;
		events++;
	}
	if (events != r->event_count) {
		snprintf(msg, n,
		         "append to \"%s\": data holds %" PRIu32
		         " framed events but event_count is %" PRIu32,
		         r->segment, events, r->event_count);
		return STRATA_EPROTO;
	}
	return 0;
}

static void handle_append(struct container *c, struct creq *q)
{
	char msg[STRATA_ERRMSG_SIZE];
	uint64_t seg;
	int rv = check_events(c, q, msg, sizeof(msg));
	if (rv != 0) {
		finish(c, q, rv, NULL, msg);
		return;
	}
	if (!resolve(c, q, q->r.segment, &seg)) {
		return;
	}
	const struct segment *s = container_fsm_segment(&c->fsm, seg);
	if (s->sealed) {
		/* A retry of events applied before the seal is still an
		 * acknowledged duplicate (the FSM's rule, decided here
		 * because a sealed segment never changes again). */
		int64_t last = segment_attr_get(s, q->r.writer_id);
		int64_t end =
		        q->r.first_event_number + (int64_t)q->r.event_count - 1;
		struct container_reply reply = {0};
		fill_info(c, seg, &reply);
		reply.offset = s->length;
		reply.last_event_number =
		        last == CONTAINER_ATTR_NONE ? -1 : last;
		if (last != CONTAINER_ATTR_NONE && end <= last) {
			reply.duplicate = true;
			finish(c, q, 0, &reply, NULL);
			return;
		}
		snprintf(msg, sizeof(msg),
		         "segment \"%s\" is sealed at length %" PRIu64
		         "; append to its successor",
		         q->r.segment, s->length);
		finish(c, q, STRATA_ESEALED, &reply, msg);
		return;
	}
	uint64_t used = container_fsm_unflushed_bytes(&c->fsm) + c->pending;
	if (used > 0 && used + q->r.len > c->cfg.unflushed_budget) {
		bool degraded = c->sw != NULL && storage_writer_degraded(c->sw);
		snprintf(msg, sizeof(msg),
		         "container %" PRIu32 " holds %" PRIu64
		         " bytes not yet in tier 2 (budget %" PRIu64 ")%s; "
		         "retry later",
		         c->cfg.id, used, c->cfg.unflushed_budget,
		         degraded ? " because tier 2 is failing" : "");
		c->plan_now = true;
		finish(c, q, STRATA_EAGAIN, NULL, msg);
		return;
	}
	struct batch *b = batch_for(c, q->r.len + OP_OVERHEAD);
	if (b == NULL) {
		finish(c, q, STRATA_ENOMEM, NULL, NULL);
		return;
	}
	if (q->r.expected_offset >= 0) {
		rv = entry_builder_add_cond_append(
		        &b->b, seg, q->r.writer_id, q->r.first_event_number,
		        q->r.event_count, (uint64_t)q->r.expected_offset,
		        q->r.data, q->r.len);
	} else {
		rv = entry_builder_add_append(
		        &b->b, seg, q->r.writer_id, q->r.first_event_number,
		        q->r.event_count, q->r.data, q->r.len);
	}
	if (rv != 0) {
		finish(c, q, rv, NULL, NULL);
		return;
	}
	b->reqs[b->n++] = q;
	b->pending += q->r.len;
	c->pending += q->r.len;
}

/* Every write but APPEND. */
static void handle_write(struct container *c, struct creq *q)
{
	char msg[STRATA_ERRMSG_SIZE];
	uint64_t seg = 0, src = 0;
	size_t name_len = q->r.segment != NULL ? strlen(q->r.segment) : 0;
	if (q->r.op == CONTAINER_CREATE) {
		if (name_len == 0 || name_len > ENTRY_MAX_NAME) {
			snprintf(msg, sizeof(msg),
			         "segment name of %zu bytes: it must have "
			         "1..%d bytes",
			         name_len, ENTRY_MAX_NAME);
			finish(c, q, STRATA_EBADNAME, NULL, msg);
			return;
		}
	} else if (!resolve(c, q, q->r.segment, &seg)) {
		return;
	}
	if (q->r.op == CONTAINER_MERGE && !resolve(c, q, q->r.source, &src)) {
		return;
	}
	struct batch *b = batch_for(c, OP_OVERHEAD + name_len);
	if (b == NULL) {
		finish(c, q, STRATA_ENOMEM, NULL, NULL);
		return;
	}
	int rv;
	switch (q->r.op) {
	case CONTAINER_CREATE:
		rv = entry_builder_add_create(&b->b, q->r.segment);
		break;
	case CONTAINER_SEAL:
		rv = entry_builder_add_seal(&b->b, seg);
		break;
	case CONTAINER_TRUNCATE:
		rv = entry_builder_add_truncate(&b->b, seg, q->r.offset);
		break;
	case CONTAINER_MERGE:
		rv = entry_builder_add_merge(&b->b, seg, src);
		break;
	case CONTAINER_UPDATE_ATTR:
		rv = entry_builder_add_attr_update(
		        &b->b, seg, q->r.attr_key, q->r.attr_compare,
		        q->r.attr_expected, q->r.attr_value);
		break;
	default: /* DELETE */
		rv = entry_builder_add_delete(&b->b, seg);
		break;
	}
	if (rv != 0) {
		snprintf(msg, sizeof(msg), "segment \"%s\": %s",
		         q->r.segment ? q->r.segment : "",
		         rv == STRATA_EINVAL ? "invalid name or argument"
		                             : strata_strerror(rv));
		finish(c, q, rv == STRATA_EINVAL ? STRATA_EBADNAME : rv, NULL,
		       msg);
		return;
	}
	b->reqs[b->n++] = q;
}

/* One drained request. */
static void handle(struct container *c, struct creq *q)
{
	if (shutting(c)) {
		finish(c, q, STRATA_ESHUTDOWN, NULL, NULL);
		return;
	}
	if (!c->ready) {
		finish_notleader(c, q);
		return;
	}
	if (c->n_requests > MAX_REQUESTS) {
		finish(c, q, STRATA_EAGAIN, NULL,
		       "too many requests in progress; retry later");
		return;
	}
	switch (q->r.op) {
	case CONTAINER_READ:
	case CONTAINER_INFO:
	case CONTAINER_GET_ATTR:
	case CONTAINER_SETUP_APPEND:
		if (c->btail != NULL) {
			/* After the writes submitted before it. */
			struct batch *b = c->btail;
			q->next = NULL;
			if (b->after_tail != NULL) {
				b->after_tail->next = q;
			} else {
				b->after = q;
			}
			b->after_tail = q;
		} else {
			exec_ro(c, q);
		}
		return;
	case CONTAINER_APPEND:
		handle_append(c, q);
		return;
	default:
		handle_write(c, q);
		return;
	}
}

static void drain_task(struct raft_host_task *t)
{
	struct container *c = t->data;
	pthread_mutex_lock(&c->lock);
	struct creq *q = c->qhead;
	c->qhead = c->qtail = NULL;
	c->drain_queued = false;
	pthread_mutex_unlock(&c->lock);
	while (q != NULL) {
		struct creq *nx = q->next;
		c->n_requests++;
		handle(c, q);
		q = nx;
	}
	close_open(c);
	pump(c);
	maybe_plan(c);
}

int container_submit(struct container *c, const struct container_request *req,
                     container_done_fn done, void *arg)
{
	if (c == NULL || req == NULL || done == NULL ||
	    (unsigned)req->op > (unsigned)CONTAINER_DELETE) {
		return STRATA_EINVAL;
	}
	struct creq *q = strata_calloc(1, sizeof(*q));
	if (q == NULL) {
		return STRATA_ENOMEM;
	}
	q->r = *req;
	q->done = done;
	q->arg = arg;
	q->t0_ns = clock_mono_ns();
	pthread_mutex_lock(&c->lock);
	if (atomic_load(&c->stopping)) {
		pthread_mutex_unlock(&c->lock);
		strata_free(q);
		return STRATA_ESHUTDOWN;
	}
	if (!c->drain_queued) {
		int rv = raft_host_submit(c->host, &c->drain);
		if (rv != 0) {
			pthread_mutex_unlock(&c->lock);
			strata_free(q);
			return rv;
		}
		c->drain_queued = true;
	}
	if (c->qtail != NULL) {
		c->qtail->next = q;
	} else {
		c->qhead = q;
	}
	c->qtail = q;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* ---- storage writer glue ---------------------------------------------- */

/* Writer thread: a job is done; carry it to the loop (one at a time). */
static void sw_post(void *arg, struct sw_job *job)
{
	struct container *c = arg;
	c->sw_job = job;
	if (raft_host_submit(c->host, &c->sw_task) != 0) {
		LOG_ERROR(COMP,
		          "container %" PRIu32
		          ": raft host stopped before the container",
		          c->cfg.id);
	}
}

/* A segment could not be flushed: its flush waits end now. */
static void sw_failed(void *arg, uint64_t seg)
{
	struct container *c = arg;
	struct wait_list *l = idmap_get(&c->waits, seg);
	if (l == NULL) {
		return;
	}
	struct creq *list = wait_take(c, seg);
	while (list != NULL) {
		struct creq *q = list;
		list = q->next;
		if (q->r.op != CONTAINER_READ) {
			flush_wait_done(c, q);
		} else if (wait_add(c, q) != 0) {
			read_reply(c, q, seg, NULL, 0, NULL);
		}
	}
}

static void sw_done(struct raft_host_task *t)
{
	struct container *c = t->data;
	struct sw_job *job = c->sw_job;
	c->sw_job = NULL;
	if (c->closing || atomic_load(&c->stopping)) {
		storage_writer_discard(c->sw, job);
		return;
	}
	struct batch *b = batch_new(c, true);
	if (b == NULL) {
		storage_writer_discard(c->sw, job);
		return;
	}
	unsigned ops =
	        storage_writer_complete(c->sw, job, c->ready ? c->owner_gen : 0,
	                                &b->b, clock_mono_ms(), sw_failed, c);
	if (ops > 0 && b->cap < ops) {
		b->reqs = strata_calloc(ops, sizeof(*b->reqs));
		b->cap = b->reqs != NULL ? ops : 0;
	}
	if (ops == 0 || b->reqs == NULL) {
		batch_unlink(c, b);
		batch_free(b);
		if (ops > 0) {
			storage_writer_committed(c->sw, false);
		}
		c->plan_now = true;
		maybe_plan(c);
		return;
	}
	b->n = ops;
	pump(c);
}

static void maybe_plan(struct container *c)
{
	if (c->sw == NULL || !c->started || !c->ready || c->closing ||
	    atomic_load(&c->stopping)) {
		return;
	}
	propose_owner(c);
	if (!c->plan_now || c->owner_gen == 0 || storage_writer_busy(c->sw)) {
		return;
	}
	uint64_t used = container_fsm_unflushed_bytes(&c->fsm) + c->pending;
	bool pressure = used >= c->cfg.unflushed_budget / 2;
	c->plan_now = false;
	(void)storage_writer_plan(c->sw, &c->fsm, c->term, c->owner_gen,
	                          clock_mono_ms(), pressure);
}

/* ---- Raft hooks (loop thread) ----------------------------------------- */

/* A segment changed or vanished in an applied op. */
static void touch(struct container *c, uint64_t seg, uint64_t now)
{
	if (c->sw != NULL) {
		(void)storage_writer_touch(c->sw, &c->fsm, seg, now);
		const struct segment *s = container_fsm_segment(&c->fsm, seg);
		if (s != NULL && s->unflushed >= c->cfg.flush_bytes) {
			c->plan_now = true;
		}
	}
	wake(c, seg);
}

/* Segments vanished (delete, merge, restore): forget them everywhere. */
static void sweep(struct container *c, uint64_t now)
{
	if (c->sw != NULL) {
		storage_writer_sweep(c->sw, &c->fsm, now);
	}
	size_t pos = 0;
	uint64_t id;
	void *v;
	while (idmap_next(&c->waits, &pos, &id, &v)) {
		if (container_fsm_segment(&c->fsm, id) == NULL) {
			wake(c, id);
		}
	}
}

static int hook_apply(void *data, uint64_t index, const void *buf, size_t len,
                      void **result)
{
	struct container *c = data;
	const uint8_t *e = buf;
	if (c->broken) {
		return STRATA_EINTERNAL;
	}
	uint32_t n = len >= ENTRY_HEADER_SIZE ? le32_get(e + 8) : 0;
	if (n > c->results_cap) {
		size_t cap = c->results_cap ? c->results_cap : 64;
		while (cap < n) {
			cap *= 2;
		}
		struct container_result *r =
		        strata_realloc(c->results, cap * sizeof(*r));
		if (r == NULL) {
			return STRATA_ENOMEM; /* nothing applied: retried */
		}
		c->results = r;
		c->results_cap = cap;
	}
	size_t before = c->fsm.segments.count;
	int rv = container_fsm_apply(&c->fsm, e, len, c->results,
	                             c->results_cap);
	if (rv == STRATA_ENOMEM) {
		c->broken = true;
		LOG_ERROR(COMP,
		          "container %" PRIu32 ": out of memory applying entry "
		          "%" PRIu64 " (%s); this replica stops applying: "
		          "restart the store to recover from its log",
		          c->cfg.id, index, c->fsm.errmsg);
		return rv;
	}
	if (rv != 0) {
		LOG_ERROR(COMP,
		          "container %" PRIu32 ": entry %" PRIu64
		          " rejected (%s): %s",
		          c->cfg.id, index, strata_strerror(rv), c->fsm.errmsg);
		n = 0;
	}
	c->apply_gen++;
	c->out = (struct apply_out){
	        .gen = c->apply_gen,
	        .index = index,
	        .crc = len >= ENTRY_HEADER_SIZE ? le32_get(e + 16) : 0,
	        .len = len,
	        .n = n,
	        .code = rv,
	        .results = c->results};
	*result = &c->out;
	publish(c); /* before any answer below */
	uint64_t now = clock_mono_ms();
	for (uint32_t i = 0; i < n; i++) {
		if (c->results[i].segment != 0) {
			touch(c, c->results[i].segment, now);
		}
	}
	if (c->fsm.segments.count < before) {
		sweep(c, now);
	}
	publish(c);
	return 0;
}

static int hook_snapshot(void *data, void **buf, size_t *len)
{
	struct container *c = data;
	uint8_t *out;
	int rv = container_fsm_snapshot(&c->fsm, &out, len);
	if (rv == 0) {
		*buf = out;
	}
	return rv;
}

static int hook_restore(void *data, const void *buf, size_t len)
{
	struct container *c = data;
	int rv = container_fsm_restore(&c->fsm, buf, len);
	if (rv != 0) {
		LOG_ERROR(COMP, "container %" PRIu32 ": restore failed: %s",
		          c->cfg.id, c->fsm.errmsg);
		return rv;
	}
	c->broken = false;
	sweep(c, clock_mono_ms());
	wake_all(c, 0);
	publish(c);
	return 0;
}

static void hook_role(void *data, const struct raft_group_status *st)
{
	struct container *c = data;
	bool was = c->ready;
	c->role = st->role;
	c->term = st->term;
	c->leader = st->leader_id;
	c->log_failed = st->log_failed;
	c->ready = st->ready && !c->closing;
	if (!c->ready) {
		c->owner_gen = 0; /* the next takeover gets a new one */
	}
	if (was && !c->ready) {
		LOG_INFO(COMP,
		         "container %" PRIu32 ": node %" PRIu64
		         " no longer leads (term %" PRIu64 ")",
		         c->cfg.id, c->cfg.node_id, c->term);
		/* Batches not yet handed to raft can never commit here. */
		struct batch *b = c->bhead;
		while (b != NULL) {
			struct batch *nx = b->next;
			if (!b->proposed && b != c->open) {
				batch_unlink(c, b);
				batch_fail(c, b, STRATA_ENOTLEADER);
			}
			b = nx;
		}
		wake_all(c, STRATA_ENOTLEADER);
	}
	if (!was && c->ready) {
		LOG_INFO(COMP,
		         "container %" PRIu32 ": node %" PRIu64
		         " owns it in term %" PRIu64,
		         c->cfg.id, c->cfg.node_id, c->term);
		if (c->sw != NULL) {
			storage_writer_sweep(c->sw, &c->fsm, clock_mono_ms());
		}
		c->plan_now = true;
		maybe_plan(c);
	}
	publish(c);
}

/* ---- ticker ------------------------------------------------------------ */

static void tick_task(struct raft_host_task *t)
{
	struct container *c = t->data;
	pthread_mutex_lock(&c->lock);
	c->tick_queued = false;
	pthread_mutex_unlock(&c->lock);
	if (c->closing) {
		return;
	}
	expire(c, clock_mono_ms());
	c->plan_now = true;
	maybe_plan(c);
	publish(c);
}

static void *ticker_main(void *arg)
{
	struct container *c = arg;
	pthread_mutex_lock(&c->tlock);
	while (!c->tstop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->tcond, &c->tlock, &ts);
		if (c->tstop) {
			break;
		}
		pthread_mutex_lock(&c->lock);
		if (!c->tick_queued && !atomic_load(&c->stopping) &&
		    raft_host_submit(c->host, &c->tick) == 0) {
			c->tick_queued = true;
		}
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&c->tlock);
	return NULL;
}

/* ---- start / stop ------------------------------------------------------ */

static void started_task(struct raft_host_task *t)
{
	struct container *c = t->data;
	c->started = true;
	pump(c);
	c->plan_now = true;
	maybe_plan(c);
	publish(c);
}

static void barrier_task(struct raft_host_task *t)
{
	waiter_signal(t->data);
}

/* Wait until every task queued for the loop so far has run. */
static void loop_barrier(struct container *c)
{
	struct waiter w;
	struct raft_host_task t = {.data = &w, .fn = barrier_task};
	waiter_init(&w);
	if (raft_host_submit(c->host, &t) != 0) {
		waiter_signal(&w);
	}
	waiter_wait(&w);
}

static void config_defaults(struct container_config *c)
{
	if (c->max_event_bytes == 0) {
		c->max_event_bytes = 8u << 20;
	}
	if (c->max_append_bytes == 0) {
		c->max_append_bytes = (16u << 20) - (64u << 10);
	}
	if (c->batch_bytes == 0) {
		c->batch_bytes = 256u << 10;
	}
	if (c->unflushed_budget == 0) {
		c->unflushed_budget = 256u << 20;
	}
	if (c->cache_budget == 0) {
		c->cache_budget = 256u << 20;
	}
	if (c->flush_bytes == 0) {
		c->flush_bytes = 4u << 20;
	}
	if (c->flush_age_ms == 0) {
		c->flush_age_ms = 5000;
	}
	if (c->chunk_bytes == 0) {
		c->chunk_bytes = 64u << 20;
	}
}

/* Register the container's own series (see container.h). */
static int register_metrics(struct container *c, struct metrics_registry *reg,
                            char *errmsg)
{
	char id[16];
	snprintf(id, sizeof(id), "%" PRIu32, c->cfg.id);
	struct metrics_label l = {.name = "container", .value = id};
	struct tier2_metrics *m = &c->t2m;
	static const char p[] = "strata_segmentstore_";
	const struct {
		const char *name;
		const char *help;
		struct metrics_counter **out;
	} counters[] = {
	        {"tier2_writes_total", "Tier-2 chunk writes attempted.",
	         &m->writes},
	        {"tier2_written_bytes_total", "Bytes written to tier 2.",
	         &m->write_bytes},
	        {"tier2_write_errors_total",
	         "Tier-2 chunk creates and writes that failed.",
	         &m->write_errors},
	        {"tier2_reads_total", "Tier-2 chunk reads attempted.",
	         &m->reads},
	        {"tier2_read_bytes_total", "Bytes read from tier 2.",
	         &m->read_bytes},
	        {"tier2_read_errors_total", "Tier-2 chunk reads that failed.",
	         &m->read_errors},
	        {"tier2_deletes_total", "Tier-2 chunk deletes attempted.",
	         &m->deletes},
	        {"tier2_delete_errors_total",
	         "Tier-2 chunk deletes that failed.", &m->delete_errors},
	        {"tier2_orphans_deleted_total",
	         "Orphan chunks of earlier owners deleted at takeover.",
	         &m->orphans},
	        {"container_appends_total",
	         "Append blocks acknowledged by this replica as leader.",
	         &c->m_appends},
	        {"container_appended_bytes_total",
	         "Bytes appended (duplicates excluded).", &c->m_append_bytes},
	};
	char name[96];
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", p, counters[i].name);
		int rv = metrics_counter_register(reg, name, counters[i].help,
		                                  &l, 1, counters[i].out,
		                                  errmsg);
		if (rv != 0) {
			return rv;
		}
	}
	const struct {
		const char *name;
		const char *help;
		struct metrics_histogram **out;
	} hists[] = {
	        {"tier2_write_seconds", "Successful tier-2 chunk write time.",
	         &m->write_seconds},
	        {"tier2_read_seconds", "Successful tier-2 chunk read time.",
	         &m->read_seconds},
	        {"container_append_seconds",
	         "Time from submit to acknowledgement of appends.",
	         &c->m_append_s},
	};
	for (size_t i = 0; i < sizeof(hists) / sizeof(hists[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", p, hists[i].name);
		int rv = metrics_histogram_register(reg, name, hists[i].help,
		                                    &l, 1, NULL, 0,
		                                    hists[i].out, errmsg);
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

static void free_container(struct container *c)
{
	storage_writer_free(c->sw);
	read_index_close(&c->ri);
	container_fsm_close(&c->fsm);
	size_t pos = 0;
	uint64_t id;
	void *v;
	while (idmap_next(&c->waits, &pos, &id, &v)) {
		strata_free(v);
	}
	idmap_close(&c->waits);
	strata_free(c->results);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->slock);
	pthread_mutex_destroy(&c->rlock);
	pthread_cond_destroy(&c->rcond);
	pthread_mutex_destroy(&c->tlock);
	pthread_cond_destroy(&c->tcond);
	strata_free(c);
}

/* Stop and join the helper threads (readers, ticker, writer). */
static void stop_threads(struct container *c)
{
	pthread_mutex_lock(&c->tlock);
	c->tstop = true;
	pthread_cond_signal(&c->tcond);
	pthread_mutex_unlock(&c->tlock);
	if (c->ticker_started) {
		pthread_join(c->ticker, NULL);
		c->ticker_started = false;
	}
	pthread_mutex_lock(&c->rlock);
	c->rstop = true;
	pthread_cond_broadcast(&c->rcond);
	pthread_mutex_unlock(&c->rlock);
	for (unsigned i = 0; i < c->n_readers; i++) {
		pthread_join(c->readers[i], NULL);
	}
	c->n_readers = 0;
	if (c->sw != NULL) {
		storage_writer_stop(c->sw);
	}
}

int container_start(struct raft_host *h, const struct container_config *cfg,
                    struct container **out, char *errmsg)
{
	if (h == NULL || cfg == NULL || out == NULL || cfg->data_dir == NULL ||
	    cfg->peers == NULL || cfg->n_peers == 0 || cfg->node_id == 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "container %" PRIu32
		         ": a data dir, a node id and at least one peer are "
		         "required",
		         cfg != NULL ? cfg->id : 0);
		return STRATA_ECONFIG;
	}
	struct container *c = strata_calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	c->cfg = *cfg;
	c->cfg.data_dir = NULL;
	c->cfg.peers = NULL;
	config_defaults(&c->cfg);
	c->host = h;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->slock, NULL);
	pthread_mutex_init(&c->rlock, NULL);
	pthread_cond_init(&c->rcond, NULL);
	pthread_mutex_init(&c->tlock, NULL);
	pthread_cond_init(&c->tcond, NULL);
	atomic_init(&c->stopping, false);
	idmap_init(&c->waits);
	c->drain.data = c;
	c->drain.fn = drain_task;
	c->answer.data = c;
	c->answer.fn = answer_task;
	c->plan.data = c;
	c->plan.fn = plan_task;
	c->tick.data = c;
	c->tick.fn = tick_task;
	c->sw_task.data = c;
	c->sw_task.fn = sw_done;
	struct container_fsm_config fc = {.max_append_bytes =
	                                          c->cfg.max_append_bytes};
	int rv = container_fsm_init(&c->fsm, &fc);
	if (rv != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "container %" PRIu32 ": bad max_append_bytes",
		         c->cfg.id);
		free_container(c);
		return STRATA_ECONFIG;
	}
	if (c->cfg.metrics != NULL) {
		rv = register_metrics(c, c->cfg.metrics, errmsg);
		if (rv != 0) {
			free_container(c);
			return rv;
		}
	}
	struct read_index_config rc = {.cache_bytes = c->cfg.cache_budget,
	                               .unflushed_budget =
	                                       c->cfg.unflushed_budget};
	read_index_init(&c->ri, &c->fsm, &rc);
	if (c->cfg.tier2 != NULL) {
		struct storage_writer_config wc = {
		        .container = c->cfg.id,
		        .tier2 = c->cfg.tier2,
		        .flush_bytes = c->cfg.flush_bytes,
		        .flush_age_ms = c->cfg.flush_age_ms,
		        .chunk_bytes = c->cfg.chunk_bytes,
		        .post = sw_post,
		        .post_arg = c,
		        .metrics = c->cfg.metrics != NULL ? &c->t2m : NULL,
		};
		rv = storage_writer_new(&wc, &c->sw, errmsg);
		if (rv != 0) {
			free_container(c);
			return rv;
		}
		for (unsigned i = 0; i < READERS; i++) {
			if (pthread_create(&c->readers[i], NULL, reader_main,
			                   c) != 0) {
				break;
			}
			c->n_readers++;
		}
	}
	if (pthread_create(&c->ticker, NULL, ticker_main, c) == 0) {
		c->ticker_started = true;
	}
	if ((c->cfg.tier2 != NULL && c->n_readers == 0) || !c->ticker_started) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "container %" PRIu32 ": cannot start its threads",
		         c->cfg.id);
		stop_threads(c);
		free_container(c);
		return STRATA_EIO;
	}
	/* Largest entry: a full batch or one maximal append. */
	uint64_t big = c->cfg.max_append_bytes > c->cfg.batch_bytes
	                       ? c->cfg.max_append_bytes
	                       : c->cfg.batch_bytes;
	c->entry_max = big + (64u << 10);
	struct raft_group_config gc = {
	        .group_id = (uint64_t)c->cfg.id + 1,
	        .node_id = cfg->node_id,
	        .data_dir = cfg->data_dir,
	        .peers = cfg->peers,
	        .n_peers = cfg->n_peers,
	        .election_ms = cfg->election_ms,
	        .heartbeat_ms = cfg->heartbeat_ms,
	        .snapshot_bytes = cfg->snapshot_bytes,
	        .segment_bytes = cfg->segment_bytes,
	        /* Snapshots carry the unflushed tail: event payloads, often
	         * compressed by the writer already. LZ4 over them was ~5 %
	         * of the store's CPU at 1 KB 8x32 for nothing. */
	        .raw_snapshots = true,
	        /* Log a leader's snapshot keeps for a follower still catching
	         * up (raft/retain.c). Half the Raft default: a store hosts 4
	         * containers, each with a quarter of the write load, and
	         * 4 x (16 MiB snapshot interval + 32 MiB) stays inside the
	         * 256 MiB a store budgets for Raft entries in memory
	         * (docs/benchmarks.md, RSS budget). */
	        .retain_bytes = 32u << 20,
	        .inflight_bytes = 2 * c->entry_max,
	        .join = cfg->join,
	        .self_address = cfg->self_address,
	};
	if (gc.inflight_bytes < (4u << 20)) {
		gc.inflight_bytes = 4u << 20;
	}
	if (gc.segment_bytes != 0 && gc.segment_bytes < 2 * c->entry_max) {
		gc.segment_bytes = 2 * c->entry_max;
	}
	struct raft_group_fsm hooks = {.data = c,
	                               .apply = hook_apply,
	                               .snapshot = hook_snapshot,
	                               .restore = hook_restore,
	                               .role_changed = hook_role};
	rv = raft_group_start(h, &gc, &hooks, &c->g, errmsg);
	if (rv != 0) {
		atomic_store(&c->stopping, true);
		stop_threads(c);
		loop_barrier(c); /* ticks and writer posts already queued */
		free_container(c);
		return rv;
	}
	if (c->cfg.metrics != NULL) {
		char id[16], merr[STRATA_ERRMSG_SIZE];
		snprintf(id, sizeof(id), "%" PRIu32, c->cfg.id);
		struct metrics_label l = {.name = "container", .value = id};
		if (raft_group_register_metrics(c->g, c->cfg.metrics, &l, 1,
		                                merr) != 0) {
			LOG_WARN(COMP,
			         "container %" PRIu32
			         ": Raft metrics not exported: %s",
			         c->cfg.id, merr);
		}
	}
	c->started_task.data = c;
	c->started_task.fn = started_task;
	(void)raft_host_submit(h, &c->started_task);
	*out = c;
	return 0;
}

/* The stop task's state. */
struct stop_ctx {
	struct waiter w;     /* the caller blocks on it */
	struct container *c; /* the container */
};

static void final_task(struct raft_host_task *t)
{
	struct stop_ctx *s = t->data;
	struct container *c = s->c;
	c->closing = true;
	c->ready = false;
	/* Acks deferred to this iteration's check phase go now: the
	 * container is freed before that phase may run again. */
	if (c->answer_queued) {
		raft_host_defer_cancel(c->host, &c->answer);
		answer_task(&c->answer);
	}
	if (c->plan_queued) { /* closing: maybe_plan would do nothing */
		raft_host_defer_cancel(c->host, &c->plan);
		c->plan_queued = false;
	}
	/* Requests still queued. */
	pthread_mutex_lock(&c->lock);
	struct creq *q = c->qhead;
	c->qhead = c->qtail = NULL;
	pthread_mutex_unlock(&c->lock);
	while (q != NULL) {
		struct creq *nx = q->next;
		c->n_requests++;
		finish(c, q, STRATA_ESHUTDOWN, NULL, NULL);
		q = nx;
	}
	/* Tier-2 reads that never ran (the readers are joined). */
	pthread_mutex_lock(&c->rlock);
	struct read_job *left = c->rhead;
	c->rhead = c->rtail = NULL;
	c->r_queued = 0;
	pthread_mutex_unlock(&c->rlock);
	while (left != NULL) {
		struct read_job *j = left;
		left = j->next;
		finish(c, j->q, STRATA_ESHUTDOWN, NULL, NULL);
		read_job_free(j);
	}
	/* Batches raft never saw. */
	struct batch *b = c->bhead;
	while (b != NULL) {
		struct batch *nx = b->next;
		if (!b->proposed) {
			batch_unlink(c, b);
			batch_fail(c, b, STRATA_ESHUTDOWN);
		}
		b = nx;
	}
	wake_all(c, STRATA_ESHUTDOWN);
	publish(c);
	waiter_signal(&s->w);
}

void container_stop(struct container *c)
{
	if (c == NULL) {
		return;
	}
	pthread_mutex_lock(&c->lock);
	atomic_store(&c->stopping, true);
	pthread_mutex_unlock(&c->lock);
	stop_threads(c);
	struct stop_ctx s = {.c = c};
	waiter_init(&s.w);
	c->stop_task.data = &s;
	c->stop_task.fn = final_task;
	if (raft_host_submit(c->host, &c->stop_task) != 0) {
		LOG_ERROR(COMP,
		          "container %" PRIu32
		          ": raft host stopped before container_stop; "
		          "stop containers first",
		          c->cfg.id);
		waiter_signal(&s.w);
	}
	waiter_wait(&s.w);
	/* Proposed batches complete (ELEADERLOST / ESHUTDOWN or committed)
	 * while the group closes. */
	raft_group_stop(c->g);
	if (c->bhead != NULL) {
		LOG_ERROR(COMP,
		          "container %" PRIu32
		          ": batches left after the group stopped",
		          c->cfg.id);
	}
	free_container(c);
}
