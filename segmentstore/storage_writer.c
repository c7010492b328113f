/* Storage writer (see storage_writer.h).
 *
 * Happy path: an applied op touches a segment -> the writer notes when its
 * oldest unflushed byte appeared -> plan (loop thread) picks due segments,
 * copies one run of unflushed bytes per segment (at most job_bytes in all)
 * and a few garbage chunk names into a job -> the writer thread creates or
 * extends the chunks and deletes the garbage -> the job is posted back ->
 * complete (loop) turns what was written into FLUSH / CHUNK_DELETED ops ->
 * the owner commits them through Raft -> committed: idle again. One job at
 * a time, so the unflushed ranges never overlap between jobs.
 *
 * Chunk names carry the owner's generation (the log index of its OWNER
 * entry, unique per owner incarnation, see storage_writer.h): no two
 * owners ever write one chunk. After a takeover the first job also sweeps
 * the container's tier-2 prefix for orphans: chunks of older generations
 * that the FSM does not reference (their FLUSH never committed, and now
 * never will).
 *
 * Failure modes: a failed create abandons the chunk name (the next job
 * starts another). A failed write stats the chunk: when its length is
 * still the expected one the chunk is kept, otherwise abandoned (its bytes
 * are never referenced, so a torn tail is harmless). Either way the
 * segment's bytes stay in memory (Tier 1), the writer is degraded and
 * backs off (doubling from backoff_min_ms to backoff_max_ms); the first
 * job that fully succeeds clears it. A chunk that cannot be deleted
 * (no delete permission, an object lock) stays in the garbage list and
 * deletes back off on their own, so flushing goes on at full speed. A job
 * finishing after its owner
 * generation ended adds no ops (the chunks it wrote are orphans, deleted
 * by the next owner's sweep).
 */
#include "segmentstore/storage_writer.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/plugin.h"
#include "segmentstore/idmap.h"
#include "strata/error.h"

#define COMP "storage-writer"

enum { SW_IDLE, SW_WRITING, SW_COMMITTING };

/* What the writer knows about one segment (loop thread). */
struct seg_state {
	uint64_t dirty_since; /* when unflushed bytes appeared, 0 = clean */
	uint64_t want_upto;   /* flush requested up to here, 0 = none */
	char *chunk;          /* open chunk (owned) or NULL */
	uint64_t chunk_gen;   /* owner generation the chunk belongs to */
	uint64_t chunk_len;   /* bytes written to it */
	bool chunk_created;   /* exists in tier 2 */
};

/* One range of one segment to write. */
struct sw_item {
	uint64_t seg;          /* segment id */
	uint64_t offset;       /* segment offset of the first byte */
	uint64_t len;          /* bytes */
	char *chunk;           /* chunk name (owned) */
	uint64_t chunk_offset; /* where in the chunk */
	bool create;           /* create the chunk first */
	size_t buf_off;        /* bytes at job->buf + buf_off */
	int rv;                /* 0 or why it failed */
	bool abandon;          /* chunk unusable after the failure */
};

struct sw_job {
	uint64_t gen;          /* owner generation of the chunks */
	struct sw_item *items; /* ranges to write */
	size_t n_items;        /* entries in items */
	uint8_t *buf;          /* their bytes */
	char **garbage;        /* chunk names to delete (owned) */
	size_t n_garbage;      /* entries in garbage */
	size_t garbage_done;   /* deleted: garbage[0, garbage_done) */
	char **refs;           /* orphan sweep: referenced names (owned): */
	size_t n_refs;    /* [0, n_grefs) garbage, [n_grefs, n_refs) chunks */
	size_t n_grefs;   /* with data, each part sorted */
	bool sweep;       /* sweep the prefix for orphans older than gen */
	uint64_t orphans; /* orphan chunks the sweep deleted */
	int rv;           /* first failure, 0 if none */
	char errmsg[STRATA_ERRMSG_SIZE]; /* its message */
	int garbage_rv; /* a garbage delete failed (not a flush failure) */
	char garbage_msg[STRATA_ERRMSG_SIZE + 64]; /* its message */
	struct sw_job *next;                       /* writer queue */
};

struct storage_writer {
	struct storage_writer_config cfg; /* copy */
	/* Loop-thread state. */
	struct idmap segs;      /* id -> struct seg_state */
	int state;              /* SW_IDLE... */
	uint64_t backoff_until; /* no job before this (ms) */
	uint64_t backoff_ms;    /* next delay */
	uint64_t garbage_until; /* no garbage deletes before this (ms) */
	uint64_t garbage_ms;    /* next delay of deletes, 0 = none yet */
	uint64_t seq;           /* chunk name counter */
	uint64_t sweep_gen;     /* orphan sweep wanted for this generation */
	char **sweep_refs;      /* its referenced names (owned), as refs */
	size_t n_sweep_refs;    /* entries in sweep_refs */
	size_t n_sweep_grefs;   /* of which garbage (the first) */
	atomic_bool degraded;   /* last job failed */
	_Atomic uint64_t job_since; /* ms (monotonic) the running job began,
	                               0 when none runs */
	/* Writer thread. */
	pthread_t thread;     /* runs writer_main */
	bool thread_started;  /* thread exists (not joined) */
	pthread_mutex_t lock; /* guards todo and stop */
	pthread_cond_t cond;  /* todo or stop changed */
	struct sw_job *todo;  /* at most one job */
	bool stop;            /* thread must exit */
	/* Chunk locks. */
	pthread_mutex_t clock; /* guards locked */
	pthread_cond_t ccond;  /* a chunk was released */
	char **locked;         /* names in use (borrowed from the holders) */
	size_t n_locked;       /* entries used */
	size_t cap_locked;     /* entries allocated */
};

/* ---- chunk locks ---------------------------------------------------- */

int storage_writer_lock_chunk(struct storage_writer *w, const char *name)
{
	pthread_mutex_lock(&w->clock);
	for (;;) {
		bool busy = false;
		for (size_t i = 0; i < w->n_locked; i++) {
			if (strcmp(w->locked[i], name) == 0) {
				busy = true;
				break;
			}
		}
		if (!busy) {
			break;
		}
		pthread_cond_wait(&w->ccond, &w->clock);
	}
	if (w->n_locked == w->cap_locked) {
		size_t cap = w->cap_locked ? 2 * w->cap_locked : 8;
		char **n = strata_realloc(w->locked, cap * sizeof(*n));
		if (n == NULL) {
			pthread_mutex_unlock(&w->clock);
			return STRATA_ENOMEM;
		}
		w->locked = n;
		w->cap_locked = cap;
	}
	w->locked[w->n_locked++] = (char *)name;
	pthread_mutex_unlock(&w->clock);
	return 0;
}

void storage_writer_unlock_chunk(struct storage_writer *w, const char *name)
{
	pthread_mutex_lock(&w->clock);
	for (size_t i = 0; i < w->n_locked; i++) {
		if (w->locked[i] == name || strcmp(w->locked[i], name) == 0) {
			w->locked[i] = w->locked[--w->n_locked];
			break;
		}
	}
	pthread_cond_broadcast(&w->ccond);
	pthread_mutex_unlock(&w->clock);
}

/* ---- the writer thread ------------------------------------------------ */

static void job_free(struct sw_job *j)
{
	if (j == NULL) {
		return;
	}
	for (size_t i = 0; i < j->n_items; i++) {
		strata_free(j->items[i].chunk);
	}
	for (size_t i = 0; i < j->n_garbage; i++) {
		strata_free(j->garbage[i]);
	}
	for (size_t i = 0; i < j->n_refs; i++) {
		strata_free(j->refs[i]);
	}
	strata_free(j->refs);
	strata_free(j->items);
	strata_free(j->garbage);
	strata_free(j->buf);
	strata_free(j);
}

static void job_fail(struct sw_job *j, int rv, const char *msg)
{
	if (j->rv == 0) {
		size_t n = strlen(msg);
		if (n >= sizeof(j->errmsg)) {
			n = sizeof(j->errmsg) - 1; /* truncated */
		}
		j->rv = rv;
		memcpy(j->errmsg, msg, n);
		j->errmsg[n] = '\0';
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void m_add(struct metrics_counter *c, uint64_t n)
{
	if (c != NULL) {
		metrics_counter_add(c, n);
	}
}

static void m_observe(struct metrics_histogram *h, uint64_t since_ns)
{
	if (h != NULL) {
		metrics_histogram_observe(h,
		                          (double)(mono_ns() - since_ns) / 1e9);
	}
}

/* The one format of chunk names (see storage_writer.h). */
static void chunk_name(char *out, size_t size, uint32_t container, uint64_t seg,
                       uint64_t term, uint64_t gen, uint64_t offset, uint64_t n)
{
	snprintf(out, size,
	         "c%" PRIu32 "/s%" PRIu64 "/t%" PRIu64 "-g%" PRIu64 "-o%" PRIu64
	         "-%" PRIu64,
	         container, seg, term, gen, offset, n);
}

bool storage_writer_chunk_gen(uint32_t container, const char *name,
                              uint64_t *gen)
{
	uint32_t ct;
	uint64_t seg, term, g, off, n;
	int end = -1;
	if (sscanf(name,
	           "c%" SCNu32 "/s%" SCNu64 "/t%" SCNu64 "-g%" SCNu64
	           "-o%" SCNu64 "-%" SCNu64 "%n",
	           &ct, &seg, &term, &g, &off, &n, &end) != 6 ||
	    end < 0 || name[end] != '\0' || ct != container) {
		return false;
	}
	/* Only names this writer makes (no signs, spaces, leading zeros). */
	char again[STRATA_TIER2_NAME_MAX + 1];
	chunk_name(again, sizeof(again), ct, seg, term, g, off, n);
	if (strcmp(again, name) != 0) {
		return false;
	}
	*gen = g;
	return true;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Write one item; on failure decide whether its chunk is still usable. */
static void write_item(struct storage_writer *w, struct sw_job *j,
                       struct sw_item *it)
{
	char errmsg[STRATA_ERRMSG_SIZE] = "";
	int rv = storage_writer_lock_chunk(w, it->chunk);
	if (rv != 0) {
		it->rv = rv;
		job_fail(j, rv, "out of memory locking a chunk");
		return;
	}
	const struct tier2_metrics *m = w->cfg.metrics;
	uint64_t t0 = mono_ns();
	if (it->create) {
		rv = tier2_create(w->cfg.tier2, it->chunk, errmsg);
		if (rv != 0) {
			it->rv = rv;
			it->abandon = true;
			m_add(m != NULL ? m->write_errors : NULL, 1);
			goto out;
		}
	}
	rv = tier2_write(w->cfg.tier2, it->chunk, it->chunk_offset,
	                 j->buf + it->buf_off, (size_t)it->len, errmsg);
	if (m != NULL) {
		m_add(m->writes, 1);
		if (rv == 0) {
			m_add(m->write_bytes, it->len);
			m_observe(m->write_seconds, t0);
		} else {
			m_add(m->write_errors, 1);
		}
	}
	if (rv != 0) {
		it->rv = rv;
		struct strata_tier2_chunk_info info;
		char serr[STRATA_ERRMSG_SIZE];
		int srv = tier2_stat(w->cfg.tier2, it->chunk, &info, serr);
		it->abandon = srv != 0 || info.length != it->chunk_offset;
		if (srv == STRATA_ENOENT && it->chunk_offset > 0) {
			/* Flushed bytes removed behind Strata's back: the
			 * next flush starts a new chunk; reads of this one
			 * fail until it is restored. */
			LOG_ERROR(COMP,
			          "tier-2 chunk %s, which holds %" PRIu64
			          " flushed bytes, was removed from tier 2 "
			          "behind Strata's back: restore it from a "
			          "backup",
			          it->chunk, it->chunk_offset);
		}
	}
out:
	storage_writer_unlock_chunk(w, it->chunk);
	if (it->rv != 0) {
		char msg[STRATA_ERRMSG_SIZE + 64];
		snprintf(msg, sizeof(msg), "%s chunk %s: %s",
		         it->create ? "create/write" : "write", it->chunk,
		         errmsg);
		job_fail(j, it->rv, msg);
	}
}

/* Delete one chunk under its lock; ENOENT counts as deleted. */
static int delete_chunk(struct storage_writer *w, const char *name,
                        char *errmsg)
{
	int rv = storage_writer_lock_chunk(w, name);
	if (rv == 0) {
		rv = tier2_delete(w->cfg.tier2, name, errmsg);
		storage_writer_unlock_chunk(w, name);
	}
	const struct tier2_metrics *m = w->cfg.metrics;
	if (m != NULL) {
		m_add(m->deletes, 1);
		if (rv != 0 && rv != STRATA_ENOENT) {
			m_add(m->delete_errors, 1);
		}
	}
	return rv == STRATA_ENOENT ? 0 : rv;
}

/* Orphan sweep: the listing's candidates (deleted after the listing, as
 * list callbacks must not change chunks). */
struct sweep_ctx {
	struct storage_writer *w;
	struct sw_job *j;
	char **names; /* owned copies */
	size_t n, cap;
	bool *seen; /* per chunk with data (refs[n_grefs..]): listed */
	bool oom;
};

static int sweep_cb(void *arg, const char *name,
                    const struct strata_tier2_chunk_info *info)
{
	struct sweep_ctx *x = arg;
	const struct sw_job *j = x->j;
	uint64_t gen;
	(void)info;
	if (!storage_writer_chunk_gen(x->w->cfg.container, name, &gen)) {
		return 0; /* not ours */
	}
	char **live = j->refs + j->n_grefs;
	char **hit = bsearch(&name, live, j->n_refs - j->n_grefs,
	                     sizeof(char *), cmp_name);
	if (hit != NULL && x->seen != NULL) {
		x->seen[hit - live] = true;
	}
	if (hit != NULL || gen >= j->gen ||
	    bsearch(&name, j->refs, j->n_grefs, sizeof(char *), cmp_name) !=
	            NULL) {
		return 0; /* referenced, or not older */
	}
	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 16;
		char **n = strata_realloc(x->names, cap * sizeof(*n));
		if (n == NULL) {
			x->oom = true;
			return 0;
		}
		x->names = n;
		x->cap = cap;
	}
	char *copy = strata_strdup(name);
	if (copy == NULL) {
		x->oom = true;
		return 0;
	}
	x->names[x->n++] = copy;
	return 0;
}

/*
 * After a full listing: chunks holding flushed data that tier 2 does not
 * list. Either they were removed behind Strata's back, or tier2.options
 * now point elsewhere than where they were written (a changed root,
 * bucket, prefix or base_path): new chunks go to the new place, and the
 * old data does not read until the options are pointed back. Said once
 * per takeover, loudly, before more is written there.
 */
static void report_missing(const struct storage_writer *w,
                           const struct sw_job *j, const bool *seen)
{
	char **live = j->refs + j->n_grefs;
	size_t n = j->n_refs - j->n_grefs, missing = 0, distinct = 0;
	const char *first = NULL;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(live[i], live[i - 1]) == 0) {
			continue; /* one chunk, several extents */
		}
		bool found = false;
		for (size_t k = i; k < n && strcmp(live[k], live[i]) == 0;
		     k++) {
			found |= seen[k];
		}
		distinct++;
		if (!found) {
			missing++;
			first = first != NULL ? first : live[i];
		}
	}
	if (missing > 0) {
		LOG_ERROR(COMP,
		          "container %" PRIu32 ": %zu of the %zu tier-2 chunks "
		          "holding its flushed data are not in tier 2 (e.g. "
		          "%s): if tier2.options (root, bucket, prefix, "
		          "base_path) changed since they were written, point "
		          "them back; else restore them from a backup",
		          w->cfg.container, missing, distinct, first);
	}
}

/* List the container's prefix; delete chunks of older generations that
 * the FSM did not reference when this generation began. */
static void sweep_orphans(struct storage_writer *w, struct sw_job *j)
{
	char prefix[32], errmsg[STRATA_ERRMSG_SIZE] = "";
	snprintf(prefix, sizeof(prefix), "c%" PRIu32 "/", w->cfg.container);
	struct sweep_ctx x = {.w = w, .j = j};
	size_t n_live = j->n_refs - j->n_grefs;
	x.seen = n_live > 0 ? strata_calloc(n_live, sizeof(*x.seen)) : NULL;
	int rv = tier2_list(w->cfg.tier2, prefix, sweep_cb, &x, errmsg);
	if (rv == 0 && !x.oom && x.seen != NULL) {
		report_missing(w, j, x.seen);
	}
	strata_free(x.seen);
	if (rv != 0) {
		char msg[STRATA_ERRMSG_SIZE + 64];
		snprintf(msg, sizeof(msg), "list tier-2 prefix %s: %s", prefix,
		         errmsg);
		job_fail(j, rv, msg);
	} else if (x.oom) {
		job_fail(j, STRATA_ENOMEM, "out of memory sweeping orphans");
	}
	for (size_t i = 0; i < x.n; i++) {
		if (rv == 0 && delete_chunk(w, x.names[i], errmsg) == 0) {
			j->orphans++;
		} else if (rv == 0) {
			char msg[STRATA_ERRMSG_SIZE + 64];
			snprintf(msg, sizeof(msg), "delete orphan chunk %s: %s",
			         x.names[i], errmsg);
			job_fail(j, STRATA_EIO, msg);
			rv = STRATA_EIO;
		}
		strata_free(x.names[i]);
	}
	strata_free(x.names);
	if (rv == 0 && !x.oom) {
		j->sweep = false; /* done */
	}
	if (w->cfg.metrics != NULL) {
		m_add(w->cfg.metrics->orphans, j->orphans);
	}
}

static void run_job(struct storage_writer *w, struct sw_job *j)
{
	for (size_t i = 0; i < j->n_items; i++) {
		write_item(w, j, &j->items[i]);
	}
	/* Each chunk on its own: one that cannot be deleted does not hold
	 * up the others. The deleted ones move to the front. */
	for (size_t i = 0; i < j->n_garbage; i++) {
		char errmsg[STRATA_ERRMSG_SIZE] = "";
		int rv = delete_chunk(w, j->garbage[i], errmsg);
		if (rv != 0) {
			/* Not the flush's failure: it backs off alone. */
			if (j->garbage_rv == 0) {
				j->garbage_rv = rv;
				snprintf(j->garbage_msg, sizeof(j->garbage_msg),
				         "delete chunk %s: %s", j->garbage[i],
				         errmsg);
			}
			continue;
		}
		char *done = j->garbage[i];
		j->garbage[i] = j->garbage[j->garbage_done];
		j->garbage[j->garbage_done++] = done;
	}
	if (j->sweep) {
		sweep_orphans(w, j);
	}
}

static void *writer_main(void *arg)
{
	struct storage_writer *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->todo == NULL && !w->stop) {
			pthread_cond_wait(&w->cond, &w->lock);
		}
		struct sw_job *j = w->todo;
		w->todo = NULL;
		if (j == NULL) {
			break; /* stop, nothing left */
		}
		pthread_mutex_unlock(&w->lock);
		atomic_store(&w->job_since, mono_ns() / 1000000 + 1);
		run_job(w, j);
		atomic_store(&w->job_since, 0);
		w->cfg.post(w->cfg.post_arg, j);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* ---- lifecycle -------------------------------------------------------- */

int storage_writer_new(const struct storage_writer_config *cfg,
                       struct storage_writer **out, char *errmsg)
{
	if (cfg->tier2 == NULL || cfg->post == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "storage writer of container %" PRIu32
		         ": a tier 2 and a post callback are required",
		         cfg->container);
		return STRATA_EINVAL;
	}
	struct storage_writer *w = strata_calloc(1, sizeof(*w));
	if (w == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	w->cfg = *cfg;
	struct storage_writer_config *c = &w->cfg;
	if (c->flush_bytes == 0) {
		c->flush_bytes = 4u << 20;
	}
	if (c->flush_age_ms == 0) {
		c->flush_age_ms = 5000;
	}
	if (c->chunk_bytes == 0) {
		c->chunk_bytes = 64u << 20;
	}
	if (c->job_bytes == 0) {
		c->job_bytes = 16u << 20;
	}
	if (c->backoff_min_ms == 0) {
		c->backoff_min_ms = 100;
	}
	if (c->backoff_max_ms < c->backoff_min_ms) {
		c->backoff_max_ms =
		        c->backoff_min_ms > 5000 ? c->backoff_min_ms : 5000;
	}
	if (c->max_garbage == 0) {
		c->max_garbage = 64;
	}
	if (c->stuck_ms == 0) {
		c->stuck_ms = 30000;
	}
	idmap_init(&w->segs);
	w->backoff_ms = c->backoff_min_ms;
	atomic_init(&w->degraded, false);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	pthread_mutex_init(&w->clock, NULL);
	pthread_cond_init(&w->ccond, NULL);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "storage writer of container %" PRIu32
		         ": cannot start its thread",
		         c->container);
		storage_writer_free(w);
		return STRATA_EIO;
	}
	w->thread_started = true;
	*out = w;
	return 0;
}

void storage_writer_stop(struct storage_writer *w)
{
	if (!w->thread_started) {
		return;
	}
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	w->thread_started = false;
}

static void state_free(struct seg_state *st)
{
	strata_free(st->chunk);
	strata_free(st);
}

static void refs_free(char **refs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		strata_free(refs[i]);
	}
	strata_free(refs);
}

void storage_writer_free(struct storage_writer *w)
{
	if (w == NULL) {
		return;
	}
	storage_writer_stop(w);
	job_free(w->todo);
	size_t pos = 0;
	uint64_t id;
	void *v;
	while (idmap_next(&w->segs, &pos, &id, &v)) {
		state_free(v);
	}
	idmap_close(&w->segs);
	refs_free(w->sweep_refs, w->n_sweep_refs);
	strata_free(w->locked);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->clock);
	pthread_cond_destroy(&w->ccond);
	strata_free(w);
}

/* ---- loop side -------------------------------------------------------- */

bool storage_writer_degraded(struct storage_writer *w)
{
	/* A request that hangs (a server that accepts and never answers)
	 * fails only after the plugin's timeouts, minutes for hdfs: it is
	 * degraded from stuck_ms on, not from then. */
	uint64_t since = atomic_load(&w->job_since);
	return atomic_load(&w->degraded) ||
	       (since != 0 &&
	        mono_ns() / 1000000 + 1 >= since + w->cfg.stuck_ms);
}

bool storage_writer_busy(const struct storage_writer *w)
{
	return w->state != SW_IDLE;
}

static struct seg_state *state_get(struct storage_writer *w, uint64_t seg)
{
	struct seg_state *st = idmap_get(&w->segs, seg);
	if (st != NULL) {
		return st;
	}
	st = strata_calloc(1, sizeof(*st));
	if (st == NULL) {
		return NULL;
	}
	if (idmap_put(&w->segs, seg, st) != 0) {
		strata_free(st);
		return NULL;
	}
	return st;
}

static void state_drop(struct storage_writer *w, uint64_t seg)
{
	struct seg_state *st = idmap_del(&w->segs, seg);
	if (st != NULL) {
		state_free(st);
	}
}

int storage_writer_touch(struct storage_writer *w,
                         const struct container_fsm *f, uint64_t seg,
                         uint64_t now_ms)
{
	const struct segment *s = container_fsm_segment(f, seg);
	if (s == NULL) {
		state_drop(w, seg);
		return 0;
	}
	struct seg_state *st;
	if (s->unflushed > 0) {
		st = state_get(w, seg);
		if (st == NULL) {
			return STRATA_ENOMEM;
		}
		if (st->dirty_since == 0) {
			st->dirty_since = now_ms ? now_ms : 1;
		}
		return 0;
	}
	st = idmap_get(&w->segs, seg);
	if (st != NULL) {
		st->dirty_since = 0;
		st->want_upto = 0;
		if (st->chunk == NULL) {
			state_drop(w, seg);
		}
	}
	return 0;
}

void storage_writer_sweep(struct storage_writer *w,
                          const struct container_fsm *f, uint64_t now_ms)
{
	size_t pos = 0;
	uint64_t id;
	void *v;
	while (idmap_next(&w->segs, &pos, &id, &v)) {
		if (container_fsm_segment(f, id) == NULL) {
			state_drop(w, id);
		}
	}
	const struct segment_table *t = &f->segments;
	for (size_t i = 0; i < t->cap; i++) {
		const struct segment *s = t->by_id[i];
		if (s != NULL && s->unflushed > 0) {
			(void)storage_writer_touch(w, f, s->id, now_ms);
		}
	}
}

int storage_writer_request(struct storage_writer *w, uint64_t seg,
                           uint64_t upto)
{
	struct seg_state *st = state_get(w, seg);
	if (st == NULL) {
		return STRATA_ENOMEM;
	}
	if (upto > st->want_upto) {
		st->want_upto = upto;
	}
	return 0;
}

/* Bytes of s from offset `from` (inside a MEM run) copied to dst. */
static void copy_range(const struct segment *s, uint64_t from, uint64_t len,
                       uint8_t *dst)
{
	size_t i = segment_find_extent(s, from);
	while (len > 0) {
		const struct extent *e = &s->extents[i];
		uint64_t skip = from - e->offset;
		uint64_t n = e->length - skip;
		if (n > len) {
			n = len;
		}
		memcpy(dst, e->data + skip, (size_t)n);
		dst += n;
		from += n;
		len -= n;
		i++;
	}
}

/* Length of the run of MEM extents starting at offset from. */
static uint64_t mem_run(const struct segment *s, uint64_t from)
{
	uint64_t n = 0;
	for (size_t i = segment_find_extent(s, from);
	     i < s->n_extents && s->extents[i].kind == EXTENT_MEM; i++) {
		n = s->extents[i].offset + s->extents[i].length - from;
	}
	return n;
}

/* Fill it for seg from its state st, limited to max bytes. */
static int plan_item(struct storage_writer *w, uint64_t seg,
                     struct seg_state *st, const struct segment *s,
                     uint64_t term, uint64_t gen, uint64_t max,
                     struct sw_item *it)
{
	uint64_t from = segment_flushed_length(s);
	uint64_t len = mem_run(s, from);
	if (len == 0) {
		return STRATA_ENOENT;
	}
	bool fresh = st->chunk == NULL || st->chunk_gen != gen ||
	             st->chunk_len >= w->cfg.chunk_bytes;
	uint64_t room =
	        fresh ? w->cfg.chunk_bytes : w->cfg.chunk_bytes - st->chunk_len;
	if (len > room) {
		len = room;
	}
	if (len > max) {
		len = max;
	}
	if (fresh) {
		char name[STRATA_TIER2_NAME_MAX + 1];
		chunk_name(name, sizeof(name), w->cfg.container, seg, term, gen,
		           from, ++w->seq);
		char *copy = strata_strdup(name);
		if (copy == NULL) {
			return STRATA_ENOMEM;
		}
		strata_free(st->chunk);
		st->chunk = copy;
		st->chunk_gen = gen;
		st->chunk_len = 0;
		st->chunk_created = false;
	}
	it->chunk = strata_strdup(st->chunk);
	if (it->chunk == NULL) {
		return STRATA_ENOMEM;
	}
	it->seg = seg;
	it->offset = from;
	it->len = len;
	it->chunk_offset = st->chunk_len;
	it->create = !st->chunk_created;
	return 0;
}

int storage_writer_set_owner(struct storage_writer *w,
                             const struct container_fsm *f, uint64_t gen)
{
	size_t n = f->n_garbage, cap = n;
	const struct segment_table *t = &f->segments;
	for (size_t i = 0; i < t->cap; i++) {
		const struct segment *s = t->by_id[i];
		for (size_t k = 0; s != NULL && k < s->n_extents; k++) {
			cap += s->extents[k].kind == EXTENT_CHUNK;
		}
	}
	char **refs = strata_calloc(cap ? cap : 1, sizeof(*refs));
	if (refs == NULL) {
		return STRATA_ENOMEM;
	}
	n = 0;
	for (size_t i = 0; i < f->n_garbage; i++) {
		if ((refs[n] = strata_strdup(f->garbage[i])) == NULL) {
			goto oom;
		}
		n++;
	}
	for (size_t i = 0; i < t->cap; i++) {
		const struct segment *s = t->by_id[i];
		for (size_t k = 0; s != NULL && k < s->n_extents; k++) {
			if (s->extents[k].kind != EXTENT_CHUNK) {
				continue;
			}
			if ((refs[n] = strata_strdup(s->extents[k].chunk)) ==
			    NULL) {
				goto oom;
			}
			n++;
		}
	}
	size_t ng = f->n_garbage;
	qsort(refs, ng, sizeof(*refs), cmp_name);
	qsort(refs + ng, n - ng, sizeof(*refs), cmp_name);
	refs_free(w->sweep_refs, w->n_sweep_refs);
	w->sweep_refs = refs;
	w->n_sweep_refs = n;
	w->n_sweep_grefs = ng;
	w->sweep_gen = gen;
	return 0;
oom:
	refs_free(refs, n);
	return STRATA_ENOMEM;
}

bool storage_writer_plan(struct storage_writer *w,
                         const struct container_fsm *f, uint64_t term,
                         uint64_t gen, uint64_t now_ms, bool pressure)
{
	if (w->state != SW_IDLE || now_ms < w->backoff_until || gen == 0) {
		return false;
	}
	struct sw_job *j = strata_calloc(1, sizeof(*j));
	if (j == NULL) {
		return false;
	}
	j->gen = gen;
	size_t cap = 0;
	uint64_t total = 0;
	size_t pos = 0;
	uint64_t id;
	void *v;
	while (total < w->cfg.job_bytes &&
	       idmap_next(&w->segs, &pos, &id, &v)) {
		struct seg_state *st = v;
		const struct segment *s = container_fsm_segment(f, id);
		if (s == NULL || s->unflushed == 0) {
			continue;
		}
		uint64_t flushed = segment_flushed_length(s);
		bool due = pressure || st->want_upto > flushed ||
		           s->unflushed >= w->cfg.flush_bytes ||
		           (st->dirty_since != 0 &&
		            now_ms - st->dirty_since >= w->cfg.flush_age_ms);
		if (!due) {
			continue;
		}
		if (j->n_items == cap) {
			size_t ncap = cap ? 2 * cap : 8;
			struct sw_item *n =
			        strata_realloc(j->items, ncap * sizeof(*n));
			if (n == NULL) {
				break;
			}
			j->items = n;
			cap = ncap;
		}
		struct sw_item *it = &j->items[j->n_items];
		memset(it, 0, sizeof(*it));
		if (plan_item(w, id, st, s, term, gen, w->cfg.job_bytes - total,
		              it) != 0) {
			strata_free(it->chunk);
			continue;
		}
		it->buf_off = (size_t)total;
		total += it->len;
		j->n_items++;
	}
	if (total > 0) {
		j->buf = strata_malloc((size_t)total);
		if (j->buf == NULL) {
			job_free(j);
			return false;
		}
		for (size_t i = 0; i < j->n_items; i++) {
			struct sw_item *it = &j->items[i];
			copy_range(container_fsm_segment(f, it->seg),
			           it->offset, it->len, j->buf + it->buf_off);
		}
	}
	size_t ng =
	        now_ms >= w->garbage_until ? container_fsm_garbage_count(f) : 0;
	if (ng > w->cfg.max_garbage) {
		ng = w->cfg.max_garbage;
	}
	if (ng > 0) {
		j->garbage = strata_calloc(ng, sizeof(*j->garbage));
		for (size_t i = 0; j->garbage != NULL && i < ng; i++) {
			j->garbage[i] =
			        strata_strdup(container_fsm_garbage(f, i));
			if (j->garbage[i] == NULL) {
				break;
			}
			j->n_garbage = i + 1;
		}
	}
	if (w->sweep_gen == gen) {
		/* The takeover's orphan sweep rides on this job. */
		j->sweep = true;
		j->refs = w->sweep_refs;
		j->n_refs = w->n_sweep_refs;
		j->n_grefs = w->n_sweep_grefs;
		w->sweep_refs = NULL;
		w->n_sweep_refs = 0;
		w->sweep_gen = 0;
	}
	if (j->n_items == 0 && j->n_garbage == 0 && !j->sweep) {
		job_free(j);
		return false;
	}
	w->state = SW_WRITING;
	pthread_mutex_lock(&w->lock);
	w->todo = j;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return true;
}

unsigned storage_writer_complete(struct storage_writer *w, struct sw_job *j,
                                 uint64_t gen, struct entry_builder *b,
                                 uint64_t now_ms,
                                 storage_writer_failed_fn failed, void *arg)
{
	unsigned ops = 0;
	bool current = j->gen == gen;
	for (size_t i = 0; i < j->n_items; i++) {
		struct sw_item *it = &j->items[i];
		struct seg_state *st = idmap_get(&w->segs, it->seg);
		bool same = st != NULL && st->chunk != NULL &&
		            strcmp(st->chunk, it->chunk) == 0;
		if (it->rv != 0) {
			if (same && it->abandon) {
				strata_free(st->chunk);
				st->chunk = NULL;
			}
			if (failed != NULL) {
				failed(arg, it->seg);
			}
			continue;
		}
		if (same) {
			st->chunk_created = true;
			st->chunk_len = it->chunk_offset + it->len;
		}
		if (current &&
		    entry_builder_add_flush(b, it->seg, it->offset, it->len,
		                            it->chunk, it->chunk_offset) == 0) {
			ops++;
		}
	}
	for (size_t i = 0; current && i < j->garbage_done; i++) {
		if (entry_builder_add_chunk_deleted(b, j->garbage[i]) == 0) {
			ops++;
		}
	}
	if (j->orphans > 0) {
		LOG_INFO(COMP,
		         "container %" PRIu32 ": deleted %" PRIu64
		         " orphan chunks of earlier owners from tier 2",
		         w->cfg.container, j->orphans);
	}
	if (j->sweep && current && w->sweep_gen == 0) {
		/* The sweep failed: retry it with the next job. */
		w->sweep_gen = j->gen;
		w->sweep_refs = j->refs;
		w->n_sweep_refs = j->n_refs;
		w->n_sweep_grefs = j->n_grefs;
		j->refs = NULL;
		j->n_refs = 0;
	}
	if (j->garbage_rv != 0) {
		w->garbage_ms = w->garbage_ms == 0 ? w->cfg.backoff_min_ms
		                                   : 2 * w->garbage_ms;
		if (w->garbage_ms > w->cfg.backoff_max_ms) {
			w->garbage_ms = w->cfg.backoff_max_ms;
		}
		w->garbage_until = now_ms + w->garbage_ms;
		LOG_WARN(COMP,
		         "container %" PRIu32 ": %s (%s); the chunk stays in "
		         "the garbage list and deleting is retried in %" PRIu64
		         " ms; flushing goes on",
		         w->cfg.container, j->garbage_msg,
		         strata_strerror(j->garbage_rv), w->garbage_ms);
	} else if (j->n_garbage > 0) {
		w->garbage_ms = 0;
		w->garbage_until = 0;
	}
	if (j->rv != 0) {
		bool was = atomic_exchange(&w->degraded, true);
		w->backoff_until = now_ms + w->backoff_ms;
		LOG_WARN(COMP,
		         "container %" PRIu32 ": tier 2 failed (%s): %s; "
		         "data stays in Tier 1, retrying in %" PRIu64 " ms%s",
		         w->cfg.container, strata_strerror(j->rv), j->errmsg,
		         w->backoff_ms, was ? "" : "; check the tier-2 store");
		w->backoff_ms *= 2;
		if (w->backoff_ms > w->cfg.backoff_max_ms) {
			w->backoff_ms = w->cfg.backoff_max_ms;
		}
	} else {
		if (atomic_exchange(&w->degraded, false)) {
			LOG_INFO(COMP,
			         "container %" PRIu32
			         ": tier 2 works again; flushing resumed",
			         w->cfg.container);
		}
		w->backoff_ms = w->cfg.backoff_min_ms;
		w->backoff_until = 0;
	}
	job_free(j);
	w->state = ops > 0 ? SW_COMMITTING : SW_IDLE;
	return ops;
}

void storage_writer_committed(struct storage_writer *w, bool ok)
{
	(void)ok;
	w->state = SW_IDLE;
}

void storage_writer_discard(struct storage_writer *w, struct sw_job *j)
{
	job_free(j);
	w->state = SW_IDLE;
}
