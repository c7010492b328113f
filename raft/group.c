/* Raft hosts and groups (see group.h).
 *
 * Host, happy path: raft_host_new binds the Raft port and starts a thread
 * running the loop; tasks arrive through a mutex-protected FIFO and a
 * uv_async; a repeating timer measures loop stalls and refreshes metrics;
 * a uv_check handle notices role/term/leader changes after every loop
 * iteration. raft_host_free queues a stop task that closes every handle,
 * then joins the thread.
 *
 * Group, happy path: start (caller thread: validate, mkdir; loop thread:
 * transport, raft_uv_init, raft_init, bootstrap or RAFT_CANTBOOTSTRAP,
 * raft_start) -> applies (any thread: reserve budget, copy, queue; loop:
 * raft_apply; callback on commit releases the budget) -> stop (closing
 * flag and stop task queued under the host lock, so no task for g can
 * follow it; loop: raft_close, then raft_uv_close and transport release in
 * its callback; the caller frees g).
 *
 * Snapshots by bytes: libraft counts entries, so its threshold stays at
 * "never" until the applied bytes since the last snapshot reach
 * snapshot_bytes; then the threshold drops to 1 (libraft snapshots after
 * the current apply batch). The snapshot hook restores "never" and sets
 * the trailing entry count from trailing_bytes and the mean entry size,
 * raised on a leader for followers that still need older entries
 * (raft/retain.c, at most retain_bytes).
 *
 * Failure modes: start failures close what was opened and report why;
 * libraft apply errors map to STRATA_* codes; a barrier that fails leaves
 * the leader not ready (retried when it leads again).
 */
#include "raft/group.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/le.h"
#include "common/log.h"
#include "raft/marker.h"
#include "raft/metrics.h"
#include "raft/retain.h"
#include "raft/transport.h"
#include "strata/error.h"

#define COMP "raft"

/* What a replica with peers does about a log it cannot load. */
#define REJOIN_ADVICE                                                  \
	"If the group has other replicas, move the directory and its " \
	".marker away and start again: the replica rejoins empty and " \
	"catches up from them. "

/* libraft 0.15 stores entries correctly only when their length is a
 * multiple of 8 (a shorter one is written padded but check-summed and
 * re-read unpadded, so the segment reads back as corrupt and libraft's
 * auto-recovery drops it on restart). Every entry is therefore padded to a
 * multiple of 8 with 1..8 bytes whose last byte says how many. */
#define ENTRY_ALIGN 8

#define SNAP_MAGIC "STRSNAP1"
#define SNAP_HEADER 16 /* magic + u64 owner length */

struct raft_host {
	uv_loop_t loop;                /* the loop */
	uv_thread_t thread;            /* runs the loop */
	uv_async_t async;              /* wakes the loop for tasks */
	uv_timer_t tick;               /* stall probe + metrics */
	uv_check_t check;              /* role change detection */
	struct raft_mux *mux;          /* the Raft port */
	unsigned tick_ms;              /* tick period */
	uint64_t tick_expected_ns;     /* when the tick should fire */
	pthread_mutex_t lock;          /* guards the fields below */
	struct raft_host_task *head;   /* task FIFO */
	struct raft_host_task *tail;   /* its end */
	struct raft_host_task *dhead;  /* deferred to the check phase (loop) */
	struct raft_host_task *dtail;  /* its end (loop) */
	bool stopping;                 /* no more tasks accepted */
	struct raft_stall_hist stalls; /* loop-stall histogram */
	struct raft_group *groups;     /* started groups (loop only) */
	struct raft_host_task stop;    /* the stop task */
	_Atomic(struct metrics_histogram *) stall_metric; /* export or NULL */
};

/* Blocking handshake between a caller thread and the loop. */
struct waiter {
	pthread_mutex_t lock; /* guards done */
	pthread_cond_t cond;  /* signalled when done */
	bool done;            /* loop finished the work */
	int rv;               /* its result */
};

#define RAFT_MARKER_EVERY_MS 1000 /* marker rewrites, at most */

/* One apply in flight. */
struct apply_req {
	struct raft_host_task task; /* queue link (first: cast) */
	struct apply_req *held;     /* next in g->held_head (loop) */
	struct raft_apply req;      /* libraft request */
	struct raft_group *g;       /* group */
	struct raft_buffer buf;     /* raft_malloc'ed copy */
	size_t len;                 /* bytes reserved from the budget */
	raft_group_apply_cb cb;     /* owner callback */
	void *arg;                  /* its argument */
};

struct raft_group {
	struct raft_host *host;       /* borrowed */
	struct raft_group_config cfg; /* copy; peers/data_dir owned */
	struct raft_group_fsm owner;  /* owner hooks */
	char self_addr[RAFT_TRANSPORT_ADDR_MAX + 1]; /* this node's address */
	struct raft raft;                            /* libraft instance */
	struct raft_io io;                           /* libuv io */
	struct raft_uv_transport transport;          /* our transport */
	struct raft_fsm fsm; /* wrapper handed to libraft */
	bool started;        /* raft_start succeeded */
	bool closing;        /* under host lock: no new tasks */
	bool log_failed;     /* loop: left the group, its log failed */
	/* loop: libraft's message for the first failed log write, kept for
	 * the log line once the group leaves (later errors overwrite
	 * raft_errmsg first) */
	char log_errmsg[256];
	struct raft_group *next; /* host->groups */
	/* Loop-thread state. */
	int role;              /* last seen role */
	uint64_t term;         /* last seen term */
	uint64_t leader;       /* last seen leader */
	bool ready;            /* barrier committed this term */
	bool barrier_inflight; /* barrier request pending */
	bool barrier_again;    /* issue another at the next observe (loop) */
	uint64_t barrier_term; /* term the barrier was issued in */
	struct raft_barrier barrier; /* barrier request */
	uint64_t bytes_since_snap;   /* applied bytes since snapshot */
	uint64_t entries_since_snap; /* applied commands since snapshot */
	bool snap_armed;             /* threshold lowered */
	uint64_t snap_failed_ms;     /* last failed-snapshot warning, 0 none */
	uint64_t snap_failures;      /* failures in a row */
	uint64_t snap_start_ns;      /* snapshot hook entered */
	void *snap_owner_buf;        /* owner's buffer in flight */
	unsigned char snap_header[SNAP_HEADER]; /* header buffer */
	struct raft_buffer snap_bufs[2];        /* header + owner */
	struct raft_group_metrics mloop;        /* loop-side counters */
	char marker[4096 + 8];                  /* DIR.marker (raft/marker.h) */
	uint64_t marker_index;         /* loop: index it holds (0: none yet) */
	uint64_t marker_ms;            /* loop: when it was last looked at */
	uint64_t conf_index;           /* configuration_index last published */
	uint64_t conf_uncommitted;     /* its uncommitted index then */
	unsigned conf_n;               /* its member count then */
	struct raft_transfer transfer; /* the one transfer (outlives sends) */
	struct change_req *transfer_req; /* owner request behind it */
	struct apply_req *held_head;     /* applies held for a slow follower */
	struct apply_req *held_tail;
	uint64_t hold_since_ms; /* hold began or last progressed (0 = none) */
	uint64_t hold_match;    /* lowest follower match index then */
	bool hold_exempt; /* no progress for lag_hold_ms: not until it recovers
	                   */
	uint64_t sub_bytes,
	        sub_entries; /* applies proposed (mean entry size) */
	/* Cross-thread state. */
	atomic_uint_fast64_t inflight;     /* bytes reserved by applies */
	atomic_bool is_ready;              /* copy of ready */
	pthread_mutex_t mlock;             /* guards m */
	struct raft_group_metrics m;       /* published metrics */
	struct raft_group_member *members; /* published configuration */
	unsigned n_members;                /* its length */
	bool members_committed;            /* whether it committed */
	/* Start/stop plumbing. */
	struct raft_host_task ctl; /* start or stop task */
	struct waiter *w;          /* caller waiting on ctl */
	int start_rc;              /* start failed: the code to give */
	char *errmsg;              /* caller's buffer during start */
};

/* ---- small helpers --------------------------------------------------------
 */

/* snprintf into a message buffer; truncation is acceptable. */
static void msgf(char *buf, size_t n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void msgf(char *buf, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, n, fmt, ap);
	va_end(ap);
}

static void waiter_init(struct waiter *w)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->done = false;
	w->rv = 0;
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

static void waiter_done(struct waiter *w, int rv)
{
	pthread_mutex_lock(&w->lock);
	w->rv = rv;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static int map_raft_error(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case RAFT_NOTLEADER:
		return STRATA_ENOTLEADER;
	case RAFT_LEADERSHIPLOST:
		return STRATA_ELEADERLOST;
	case RAFT_SHUTDOWN:
	case RAFT_CANCELED:
		return STRATA_ESHUTDOWN;
	case RAFT_NOMEM:
		return STRATA_ENOMEM;
	case RAFT_TOOBIG:
		return STRATA_ETOOBIG;
	default:
		return STRATA_EIO;
	}
}

/* Stored length of an entry of len bytes: len + 1..8 padding bytes. */
static size_t entry_padded_len(size_t len)
{
	return (len + ENTRY_ALIGN) & ~(size_t)(ENTRY_ALIGN - 1);
}

static uint64_t now_ms(struct raft_group *g)
{
	return g->io.time(&g->io);
}

/* mkdir -p path. */
static int mkdir_p(const char *path, char *errmsg)
{
	char failed[PATH_MAX];
	int e = files_mkdir_p(path, failed, sizeof(failed));
	if (e == ENAMETOOLONG) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft data dir \"%s\": empty or too long", path);
		return STRATA_ECONFIG;
	}
	if (e == ENOTDIR && strcmp(failed, path) == 0) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft data dir \"%s\" exists but is not a directory",
		     path);
		return STRATA_EIO;
	}
	if (e != 0) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "create raft data dir \"%s\": %s; check permissions "
		     "and free space",
		     failed, strerror(e));
		return STRATA_EIO;
	}
	return 0;
}

/* ---- metrics ---------------------------------------------------------- */

/* Copy libraft's view and loop counters into the published metrics. */
static void publish(struct raft_group *g)
{
	struct raft_group_metrics *l = &g->mloop;
	struct raft *r = &g->raft;
	l->role = g->role;
	l->ready = g->ready;
	l->term = g->term;
	l->leader_id = g->leader;
	l->commit_index = r->commit_index;
	l->applied_index = raft_last_applied(r);
	l->last_index = raft_last_index(r);
	l->snapshot_index = r->log.snapshot.last_index;
	/* leader's snapshots not installed here (patch 16); the replica then
	 * leaves the group (patch 17), which observe() logs */
	l->installs_failed = r->snapshot_install_failures;
	l->last_contact_ms = 0;
	if (r->state == RAFT_FOLLOWER || r->state == RAFT_CANDIDATE) {
		uint64_t now = now_ms(g);
		l->last_contact_ms = now > r->election_timer_start
		                             ? now - r->election_timer_start
		                             : 0;
	}
	l->inflight_bytes = atomic_load(&g->inflight);
	pthread_mutex_lock(&g->mlock);
	uint64_t rejected = g->m.rejected_full; /* updated by callers */
	g->m = *l;
	g->m.rejected_full = rejected;
	pthread_mutex_unlock(&g->mlock);
}

void raft_group_metrics(struct raft_group *g, struct raft_group_metrics *out)
{
	pthread_mutex_lock(&g->mlock);
	*out = g->m;
	pthread_mutex_unlock(&g->mlock);
	out->inflight_bytes = atomic_load(&g->inflight);
}

bool raft_group_is_ready(struct raft_group *g)
{
	return atomic_load(&g->is_ready);
}

/* ---- role changes and the leader barrier -------------------------------- */

static void notify_role(struct raft_group *g)
{
	atomic_store(&g->is_ready, g->ready);
	publish(g);
	if (g->owner.role_changed != NULL) {
		struct raft_group_status st = {.role = g->role,
		                               .ready = g->ready,
		                               .term = g->term,
		                               .leader_id = g->leader,
		                               .log_failed = g->log_failed};
		g->owner.role_changed(g->owner.data, &st);
	}
}

static void issue_barrier(struct raft_group *g);

static void barrier_done(struct raft_barrier *req, int status)
{
	struct raft_group *g = req->data;
	g->barrier_inflight = false;
	if (!g->started || g->closing) {
		return;
	}
	/* Never a new barrier from inside this callback: libraft fails the
	 * barrier while it steps down (convertClearLeader), with its state
	 * still LEADER and its progress array already freed, and a
	 * raft_barrier then replicated with it (a store crashed so after two
	 * of three stores were killed and restarted). observe() issues it on
	 * the loop's next turn, if this node still leads then. */
	if (raft_state(&g->raft) != RAFT_LEADER ||
	    status == RAFT_LEADERSHIPLOST) {
		return;
	}
	if (g->raft.current_term != g->barrier_term) {
		g->barrier_again = true; /* leader again in a newer term */
		return;
	}
	if (status == RAFT_IOERR || status == RAFT_NOSPACE) {
		return; /* its log write failed: it leaves the group */
	}
	if (status != 0) {
		LOG_WARN(COMP,
		         "group %" PRIu64
		         ": leader barrier failed in term %" PRIu64
		         ": %s; not serving reads until it succeeds",
		         g->cfg.group_id, g->barrier_term,
		         raft_strerror(status));
		g->barrier_again = true;
		return;
	}
	g->ready = true;
	LOG_INFO(COMP,
	         "group %" PRIu64 ": node %" PRIu64
	         " is leader of term %" PRIu64 " and ready",
	         g->cfg.group_id, g->cfg.node_id, g->barrier_term);
	notify_role(g);
}

static void issue_barrier(struct raft_group *g)
{
	if (g->barrier_inflight) {
		return; /* barrier_done re-issues for the new term */
	}
	g->barrier.data = g;
	g->barrier_term = g->raft.current_term;
	int rv = raft_barrier(&g->raft, &g->barrier, barrier_done);
	if (rv != 0) {
		LOG_WARN(COMP,
		         "group %" PRIu64 ": cannot issue leader barrier: %s",
		         g->cfg.group_id, raft_strerror(rv));
		return;
	}
	g->barrier_inflight = true;
}

/* Publish the configuration when libraft's changed; tell the owner. */
static void observe_members(struct raft_group *g)
{
	struct raft *r = &g->raft;
	const struct raft_configuration *c = &r->configuration;
	if (r->configuration_index == g->conf_index &&
	    r->configuration_uncommitted_index == g->conf_uncommitted &&
	    c->n == g->conf_n) {
		return;
	}
	struct raft_group_member *m = NULL;
	if (c->n > 0) {
		m = strata_calloc(c->n, sizeof(*m));
		if (m == NULL) {
			return; /* retried at the next check */
		}
	}
	for (unsigned i = 0; i < c->n; i++) {
		m[i].id = c->servers[i].id;
		m[i].role = c->servers[i].role;
		snprintf(m[i].address, sizeof(m[i].address), "%s",
		         c->servers[i].address);
	}
	g->conf_index = r->configuration_index;
	g->conf_uncommitted = r->configuration_uncommitted_index;
	g->conf_n = c->n;
	bool committed = r->configuration_uncommitted_index == 0;
	pthread_mutex_lock(&g->mlock);
	struct raft_group_member *old = g->members;
	g->members = m;
	g->n_members = c->n;
	g->members_committed = committed;
	pthread_mutex_unlock(&g->mlock);
	strata_free(old);
	LOG_DEBUG(COMP,
	          "group %" PRIu64 ": node %" PRIu64 " follows a %s "
	          "configuration of %u servers (index %" PRIu64 ")",
	          g->cfg.group_id, g->cfg.node_id,
	          committed ? "committed" : "new", c->n,
	          (uint64_t)(committed ? r->configuration_index
	                               : r->configuration_uncommitted_index));
	if (g->owner.members_changed != NULL) {
		g->owner.members_changed(g->owner.data, m, c->n, committed);
	}
}

unsigned raft_group_members(struct raft_group *g, struct raft_group_member *out,
                            unsigned max, bool *committed)
{
	pthread_mutex_lock(&g->mlock);
	unsigned n = g->n_members;
	for (unsigned i = 0; i < n && i < max; i++) {
		out[i] = g->members[i];
	}
	if (committed != NULL) {
		*committed = g->members_committed;
	}
	pthread_mutex_unlock(&g->mlock);
	return n;
}

/* Compare libraft's state with the last seen one; react to changes. */
static void observe(struct raft_group *g)
{
	struct raft *r = &g->raft;
	observe_members(g);
	int role = raft_state(r);
	uint64_t term = r->current_term;
	raft_id leader_id = 0;
	const char *leader_addr = NULL;
	raft_leader(r, &leader_id, &leader_addr);
	if (g->barrier_again && !g->barrier_inflight) {
		g->barrier_again = false;
		if (role == RAFT_LEADER && g->started && !g->closing) {
			issue_barrier(g);
		}
	}
	if (role == g->role && term == g->term && leader_id == g->leader) {
		return;
	}
	if (role == RAFT_UNAVAILABLE && g->role != RAFT_UNAVAILABLE &&
	    g->started && !g->closing) {
		/* libraft leaves the group for good when a write to this
		 * server's log fails, or a snapshot from the leader could not
		 * be installed (third_party/raft/PATCHES.md #12, #17). */
		g->log_failed = true;
		LOG_ERROR(COMP,
		          "group %" PRIu64 ": node %" PRIu64
		          " left the group: a write to its Raft log or "
		          "snapshots in %s failed (%s); it stores nothing more "
		          "and the other "
		          "replicas carry on. Check the disk (dmesg, df); a "
		          "restart of the replica reloads the log from disk "
		          "(the process restarts it itself after "
		          "containers.recover_after in a segment store, "
		          "raft.recover_after in a controller)",
		          g->cfg.group_id, g->cfg.node_id, g->cfg.data_dir,
		          g->log_errmsg[0] != '\0' ? g->log_errmsg
		                                   : raft_errmsg(r));
	}
	bool new_leader = leader_id != 0 && leader_id != g->leader;
	if (new_leader) {
		g->mloop.leader_changes++;
	}
	if (role != RAFT_LEADER || term != g->term) {
		g->ready = false;
	}
	if (role == RAFT_LEADER &&
	    (g->role != RAFT_LEADER || term != g->term)) {
		issue_barrier(g);
	}
	if (new_leader) {
		LOG_INFO(COMP,
		         "group %" PRIu64 ": node %" PRIu64
		         " sees leader %" PRIu64 " in term %" PRIu64,
		         g->cfg.group_id, g->cfg.node_id, (uint64_t)leader_id,
		         term);
	}
	g->role = role;
	g->term = term;
	g->leader = leader_id;
	notify_role(g);
}

/* ---- FSM wrapper ----------------------------------------------------------
 */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
                     void **result)
{
	struct raft_group *g = fsm->data;
	uint64_t index = g->raft.last_applied + 1;
	*result = NULL;
	const unsigned char *p = buf->base;
	size_t pad = buf->len >= ENTRY_ALIGN ? p[buf->len - 1] : 0;
	if (buf->len % ENTRY_ALIGN != 0 || pad < 1 || pad > ENTRY_ALIGN) {
		LOG_ERROR(COMP,
		          "group %" PRIu64 ": entry %" PRIu64
		          " of %zu bytes has no valid padding trailer; the "
		          "log was not written by this version",
		          g->cfg.group_id, index, buf->len);
		return RAFT_MALFORMED;
	}
	size_t len = buf->len - pad;
	int rv = g->owner.apply(g->owner.data, index, buf->base, len, result);
	if (rv != 0) {
		LOG_ERROR(COMP,
		          "group %" PRIu64 ": FSM apply of entry %" PRIu64
		          " failed (%d); the group stalls until it succeeds",
		          g->cfg.group_id, index, rv);
		return RAFT_IOERR;
	}
	g->mloop.applied_entries++;
	g->mloop.applied_bytes += len;
	g->bytes_since_snap += buf->len;
	g->entries_since_snap++;
	if (!g->snap_armed && g->bytes_since_snap >= g->cfg.snapshot_bytes) {
		raft_set_snapshot_threshold(&g->raft, 1);
		g->snap_armed = true;
	}
	return 0;
}

/* Entries to keep behind the snapshot libraft is taking: trailing_bytes'
 * worth, more for a follower that still needs them (raft/retain.c), at
 * most retain_bytes' worth. */
static unsigned snapshot_trailing(struct raft_group *g, uint64_t mean)
{
	uint64_t base = g->cfg.trailing_bytes / mean;
	if (base == 0) {
		base = 1; /* what libraft keeps at least */
	}
	uint64_t keep =
	        raft_retain_trailing(&g->raft, g->raft.io->time(g->raft.io),
	                             base, g->cfg.retain_bytes / mean);
	if (keep > base) {
		g->mloop.snapshots_retained++;
	}
	return (unsigned)keep;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                        unsigned *n_bufs)
{
	struct raft_group *g = fsm->data;
	void *buf = NULL;
	size_t len = 0;
	/* Mean entry size since the last snapshot, at least 1. */
	uint64_t mean = g->entries_since_snap > 0
	                        ? g->bytes_since_snap / g->entries_since_snap
	                        : 0;
	if (mean == 0) {
		mean = 1;
	}
	/* Whatever happens, snapshot again only after snapshot_bytes more. */
	raft_set_snapshot_threshold(&g->raft, UINT_MAX);
	g->snap_armed = false;
	g->bytes_since_snap = 0;
	g->entries_since_snap = 0;
	if (g->snap_owner_buf != NULL) {
		return RAFT_BUSY;
	}
	/* Read by libraft when it stores this snapshot and trims its log. */
	raft_set_snapshot_trailing(&g->raft, snapshot_trailing(g, mean));
	g->snap_start_ns = uv_hrtime();
	int rv = g->owner.snapshot(g->owner.data, &buf, &len);
	if (rv != 0) {
		LOG_WARN(COMP,
		         "group %" PRIu64
		         ": FSM snapshot failed (%d); retrying "
		         "after %" PRIu64 " more bytes",
		         g->cfg.group_id, rv, g->cfg.snapshot_bytes);
		return RAFT_BUSY;
	}
	memcpy(g->snap_header, SNAP_MAGIC, 8);
	le64_put(g->snap_header + 8, len);
	g->snap_owner_buf = buf;
	g->snap_bufs[0].base = g->snap_header;
	g->snap_bufs[0].len = SNAP_HEADER;
	g->snap_bufs[1].base = buf;
	g->snap_bufs[1].len = len;
	*bufs = g->snap_bufs;
	*n_bufs = len > 0 ? 2 : 1;
	return 0;
}

/* libraft could not store the snapshot just taken (patch 16): its log is
 * not trimmed, so the log's files and the entries libraft keeps in memory
 * grow until a later one is stored (the next after snapshot_bytes more).
 * Warn at the first failure and then at most once a minute. */
static void snapshot_failed(struct raft_group *g)
{
	g->mloop.snapshots_failed++;
	g->snap_failures++;
	if (!clock_due(&g->snap_failed_ms, now_ms(g), CLOCK_WARN_EVERY_MS)) {
		return;
	}
	LOG_WARN(COMP,
	         "group %" PRIu64
	         ": could not store a snapshot (%s: %s; %" PRIu64
	         " in a row); its log in %s is not trimmed, so it keeps "
	         "growing on disk and in memory until one is stored: free "
	         "space or fix that directory. Retrying after %" PRIu64
	         " more bytes of log",
	         g->cfg.group_id, raft_strerror(g->raft.snapshot_status),
	         g->raft.snapshot_errmsg[0] != '\0' ? g->raft.snapshot_errmsg
	                                            : "no detail",
	         g->snap_failures, g->cfg.data_dir, g->cfg.snapshot_bytes);
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm,
                                 struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct raft_group *g = fsm->data;
	uint64_t us = (uv_hrtime() - g->snap_start_ns) / 1000;
	strata_free(g->snap_owner_buf);
	g->snap_owner_buf = NULL;
	*bufs = NULL;
	*n_bufs = 0;
	if (g->raft.snapshot_status == RAFT_CANCELED) {
		LOG_DEBUG(COMP,
		          "group %" PRIu64 ": snapshot canceled (stopping)",
		          g->cfg.group_id);
		return 0;
	}
	if (g->raft.snapshot_status != 0) {
		snapshot_failed(g);
		return 0;
	}
	if (g->snap_failures > 0) {
		LOG_INFO(COMP,
		         "group %" PRIu64
		         ": snapshot stored again after %" PRIu64
		         " failed; the log is trimmed",
		         g->cfg.group_id, g->snap_failures);
		g->snap_failures = 0;
		g->snap_failed_ms = 0;
	}
	g->mloop.snapshots_taken++;
	g->mloop.snapshot_last_us = us;
	g->mloop.snapshot_total_us += us;
	LOG_DEBUG(COMP, "group %" PRIu64 ": snapshot stored in %" PRIu64 " us",
	          g->cfg.group_id, us);
	return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct raft_group *g = fsm->data;
	const unsigned char *p = buf->base;
	if (buf->len < SNAP_HEADER || memcmp(p, SNAP_MAGIC, 8) != 0 ||
	    le64_get(p + 8) != buf->len - SNAP_HEADER) {
		LOG_ERROR(COMP,
		          "group %" PRIu64
		          ": snapshot of %zu bytes has no valid "
		          "Strata header; refusing it",
		          g->cfg.group_id, buf->len);
		return RAFT_MALFORMED;
	}
	uint64_t t0 = uv_hrtime();
	int rv = g->owner.restore(g->owner.data, p + SNAP_HEADER,
	                          buf->len - SNAP_HEADER);
	if (rv != 0) {
		LOG_ERROR(COMP, "group %" PRIu64 ": FSM restore failed (%d)",
		          g->cfg.group_id, rv);
		return RAFT_IOERR;
	}
	raft_free(buf->base);
	g->bytes_since_snap = 0;
	g->entries_since_snap = 0;
	if (g->started) {
		g->mloop.snapshots_installed++;
		g->mloop.install_last_us = (uv_hrtime() - t0) / 1000;
		LOG_INFO(COMP,
		         "group %" PRIu64 ": installed a snapshot of %zu bytes "
		         "from the leader in %" PRIu64 " us",
		         g->cfg.group_id, buf->len, g->mloop.install_last_us);
	}
	return 0;
}

/* ---- host loop ------------------------------------------------------------
 */

/* Rewrite the marker (raft/marker.h) when the index committed and
 * stored here grew, at most once a second unless now. Loop thread. */
static void mark_stored(struct raft_group *g, bool now)
{
	struct raft *r = &g->raft;
	uint64_t ms = clock_mono_ms();
	if (g->marker[0] == '\0' || g->log_failed ||
	    (!now && ms < g->marker_ms + RAFT_MARKER_EVERY_MS)) {
		return;
	}
	g->marker_ms = ms;
	uint64_t idx = r->commit_index < r->last_stored ? r->commit_index
	                                                : r->last_stored;
	if (idx <= g->marker_index) {
		return;
	}
	struct raft_marker m = {g->cfg.group_id, g->cfg.node_id, idx};
	int e = raft_marker_write(g->marker, &m);
	if (e != 0) {
		/* Only the check at the next start is weaker: say so once
		 * a minute at most. */
		g->marker_ms = ms + 60000;
		LOG_WARN(COMP,
		         "group %" PRIu64 ": could not write %s: %s; the check "
		         "that its log is whole at the next start stays at "
		         "index %" PRIu64,
		         g->cfg.group_id, g->marker, strerror(e),
		         g->marker_index);
		return;
	}
	g->marker_index = idx;
}

/* Append t to the task list head/tail. */
static void task_append(struct raft_host_task **head,
                        struct raft_host_task **tail, struct raft_host_task *t)
{
	t->next = NULL;
	if (*tail != NULL) {
		(*tail)->next = t;
	} else {
		*head = t;
	}
	*tail = t;
}

static void on_async(uv_async_t *a)
{
	struct raft_host *h = a->data;
	pthread_mutex_lock(&h->lock);
	struct raft_host_task *t = h->head;
	h->head = h->tail = NULL;
	pthread_mutex_unlock(&h->lock);
	while (t != NULL) {
		struct raft_host_task *next = t->next;
		t->fn(t);
		t = next;
	}
}

static void release_held(struct raft_group *g);

static void on_tick(uv_timer_t *timer)
{
	struct raft_host *h = timer->data;
	uint64_t now = uv_hrtime();
	uint64_t late =
	        now > h->tick_expected_ns ? now - h->tick_expected_ns : 0;
	h->tick_expected_ns = now + (uint64_t)h->tick_ms * 1000000u;
	uint64_t ms = late / 1000000u;
	int b = 0;
	while (b < RAFT_STALL_BUCKETS - 1 && ms >= (1u << b)) {
		b++;
	}
	pthread_mutex_lock(&h->lock);
	h->stalls.count[b]++;
	h->stalls.samples++;
	if (late / 1000 > h->stalls.max_us) {
		h->stalls.max_us = late / 1000;
	}
	pthread_mutex_unlock(&h->lock);
	struct metrics_histogram *hist = atomic_load(&h->stall_metric);
	if (hist != NULL) {
		metrics_histogram_observe(hist, (double)late / 1e9);
	}
	for (struct raft_group *g = h->groups; g != NULL; g = g->next) {
		observe(g);
		release_held(g);
		publish(g);
		mark_stored(g, false);
	}
}

/* Run the deferred tasks, including any deferred while they run. */
static void run_deferred(struct raft_host *h)
{
	while (h->dhead != NULL) {
		struct raft_host_task *t = h->dhead;
		h->dhead = t->next;
		if (h->dhead == NULL) {
			h->dtail = NULL;
		}
		t->next = NULL;
		t->fn(t);
	}
}

void raft_host_defer(struct raft_host *h, struct raft_host_task *task)
{
	task_append(&h->dhead, &h->dtail, task);
}

void raft_host_defer_cancel(struct raft_host *h, struct raft_host_task *task)
{
	struct raft_host_task *prev = NULL;
	for (struct raft_host_task *t = h->dhead; t != NULL; t = t->next) {
		if (t == task) {
			if (prev != NULL) {
				prev->next = t->next;
			} else {
				h->dhead = t->next;
			}
			if (h->dtail == t) {
				h->dtail = prev;
			}
			t->next = NULL;
			return;
		}
		prev = t;
	}
}

static void on_check(uv_check_t *c)
{
	struct raft_host *h = c->data;
	run_deferred(h);
	for (struct raft_group *g = h->groups; g != NULL; g = g->next) {
		observe(g);
		release_held(g);
	}
}

static void loop_main(void *arg)
{
	struct raft_host *h = arg;
	uv_run(&h->loop, UV_RUN_DEFAULT);
}

static void host_stop_task(struct raft_host_task *t)
{
	struct raft_host *h = t->data;
	run_deferred(h);
	uv_close((uv_handle_t *)&h->async, NULL);
	uv_close((uv_handle_t *)&h->tick, NULL);
	uv_close((uv_handle_t *)&h->check, NULL);
	raft_mux_close(h->mux, NULL, NULL);
	h->mux = NULL;
}

int raft_host_new(const struct raft_host_config *cfg, struct raft_host **out,
                  char *errmsg)
{
	struct raft_host *h = strata_calloc(1, sizeof(*h));
	int rv;
	if (h == NULL) {
		msgf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	h->tick_ms = cfg->stall_tick_ms ? cfg->stall_tick_ms : 10;
	atomic_init(&h->stall_metric, NULL);
	rv = uv_loop_init(&h->loop);
	if (rv != 0) {
		msgf(errmsg, STRATA_ERRMSG_SIZE, "uv_loop_init: %s",
		     uv_strerror(rv));
		strata_free(h);
		return STRATA_EIO;
	}
	struct raft_mux_config mc = {.bind_address = cfg->bind_address,
	                             .tcp_nodelay_off = cfg->tcp_nodelay_off};
	rv = raft_mux_new(&h->loop, &mc, &h->mux, errmsg);
	if (rv != 0) {
		uv_run(&h->loop, UV_RUN_DEFAULT);
		uv_loop_close(&h->loop);
		strata_free(h);
		return rv;
	}
	pthread_mutex_init(&h->lock, NULL);
	uv_async_init(&h->loop, &h->async, on_async);
	h->async.data = h;
	uv_timer_init(&h->loop, &h->tick);
	h->tick.data = h;
	h->tick_expected_ns = uv_hrtime() + (uint64_t)h->tick_ms * 1000000u;
	uv_timer_start(&h->tick, on_tick, h->tick_ms, h->tick_ms);
	uv_check_init(&h->loop, &h->check);
	h->check.data = h;
	uv_check_start(&h->check, on_check);
	rv = uv_thread_create(&h->thread, loop_main, h);
	if (rv != 0) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "start the raft loop thread: %s", uv_strerror(rv));
		host_stop_task(&(struct raft_host_task){.data = h});
		uv_run(&h->loop, UV_RUN_DEFAULT);
		uv_loop_close(&h->loop);
		pthread_mutex_destroy(&h->lock);
		strata_free(h);
		return STRATA_EIO;
	}
	LOG_INFO(COMP, "raft port %u open (TCP_NODELAY %s)",
	         raft_mux_port(h->mux), cfg->tcp_nodelay_off ? "off" : "on");
	*out = h;
	return 0;
}

uint16_t raft_host_port(const struct raft_host *h)
{
	return h->mux != NULL ? raft_mux_port(h->mux) : 0;
}

bool raft_host_on_loop(const struct raft_host *h)
{
	uv_thread_t self = uv_thread_self();
	return uv_thread_equal(&self, &h->thread) != 0;
}

void raft_host_stalls(struct raft_host *h, struct raft_stall_hist *out)
{
	pthread_mutex_lock(&h->lock);
	*out = h->stalls;
	pthread_mutex_unlock(&h->lock);
}

int raft_host_register_metrics(struct raft_host *h,
                               struct metrics_registry *reg,
                               const struct metrics_label *labels,
                               size_t nlabels, char *errmsg)
{
	/* The probe's own buckets: 1 ms doubling to 1.024 s, then +Inf. */
	double bounds[RAFT_STALL_BUCKETS - 1];
	struct metrics_histogram *hist = NULL;
	if (reg != NULL) {
		for (int i = 0; i < RAFT_STALL_BUCKETS - 1; i++) {
			bounds[i] = (double)(1u << i) / 1e3;
		}
		int rv = metrics_histogram_register(
		        reg, "strata_raft_loop_stall_seconds",
		        "How late the Raft loop's periodic probe timer fired "
		        "(loop stalls)",
		        labels, nlabels, bounds, RAFT_STALL_BUCKETS - 1, &hist,
		        errmsg);
		if (rv != 0) {
			return rv;
		}
	}
	atomic_store(&h->stall_metric, hist);
	return 0;
}

/* Queue t; with g, refuse when g is closing (checked under the lock, so
 * nothing for g can follow its stop task). */
static int submit(struct raft_host *h, struct raft_group *g,
                  struct raft_host_task *t)
{
	pthread_mutex_lock(&h->lock);
	if (h->stopping || (g != NULL && g->closing)) {
		pthread_mutex_unlock(&h->lock);
		return STRATA_ESHUTDOWN;
	}
	task_append(&h->head, &h->tail, t);
	pthread_mutex_unlock(&h->lock);
	uv_async_send(&h->async);
	return 0;
}

int raft_host_submit(struct raft_host *h, struct raft_host_task *task)
{
	return submit(h, NULL, task);
}

void raft_host_free(struct raft_host *h)
{
	if (h == NULL) {
		return;
	}
	if (h->groups != NULL) {
		LOG_ERROR(COMP,
		          "raft host freed while group %" PRIu64
		          " runs: stop every group first",
		          h->groups->cfg.group_id);
	}
	h->stop.data = h;
	h->stop.fn = host_stop_task;
	pthread_mutex_lock(&h->lock);
	task_append(&h->head, &h->tail, &h->stop);
	h->stopping = true;
	pthread_mutex_unlock(&h->lock);
	uv_async_send(&h->async);
	uv_thread_join(&h->thread);
	int rv = uv_loop_close(&h->loop);
	if (rv != 0) {
		LOG_ERROR(COMP, "raft loop still has handles at close: %s",
		          uv_strerror(rv));
	}
	pthread_mutex_destroy(&h->lock);
	strata_free(h);
}

/* ---- group start/stop -------------------------------------------------- */

void raft_group_config_defaults(struct raft_group_config *c)
{
	if (c->election_ms == 0) {
		c->election_ms = 1000;
	}
	if (c->heartbeat_ms == 0) {
		c->heartbeat_ms = 100;
	}
	if (c->snapshot_resend_ms == 0) {
		c->snapshot_resend_ms = 5000;
	}
	if (c->snapshot_resend_ms < c->election_ms) {
		c->snapshot_resend_ms = c->election_ms;
	}
	if (c->lag_bytes == 0) {
		c->lag_bytes = 16u << 20;
	}
	if (c->lag_hold_ms == 0) {
		c->lag_hold_ms = 2 * c->election_ms;
	}
	if (c->snapshot_bytes == 0) {
		c->snapshot_bytes = 16u << 20;
	}
	if (c->trailing_bytes == 0) {
		c->trailing_bytes = 4u << 20;
	}
	if (c->retain_bytes == 0) {
		c->retain_bytes = 64u << 20;
	}
	if (c->retain_bytes < c->trailing_bytes) {
		c->retain_bytes = c->trailing_bytes;
	}
	if (c->segment_bytes == 0) {
		c->segment_bytes = 64u << 20;
	}
	if (c->inflight_bytes == 0) {
		c->inflight_bytes = 2u << 20;
	}
}

static int check_config(const struct raft_group_config *c, char *errmsg)
{
	if (c->group_id == 0 || c->node_id == 0) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64 " node %" PRIu64
		     ": group and node ids must be > 0",
		     c->group_id, c->node_id);
		return STRATA_ECONFIG;
	}
	if (c->data_dir == NULL ||
	    (!c->join && (c->peers == NULL || c->n_peers == 0))) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64
		     ": data_dir and at least one peer are required",
		     c->group_id);
		return STRATA_ECONFIG;
	}
	if (c->n_peers > 0 && c->peers == NULL) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64 ": n_peers %u but no peers",
		     c->group_id, c->n_peers);
		return STRATA_ECONFIG;
	}
	if (c->self_address != NULL &&
	    (strlen(c->self_address) == 0 ||
	     strlen(c->self_address) > RAFT_TRANSPORT_ADDR_MAX)) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64
		     ": self_address must be 1..%d characters",
		     c->group_id, RAFT_TRANSPORT_ADDR_MAX);
		return STRATA_ECONFIG;
	}
	bool self = false;
	for (unsigned i = 0; i < c->n_peers; i++) {
		const struct raft_group_peer *p = &c->peers[i];
		if (p->id == 0 || p->address == NULL ||
		    strlen(p->address) == 0 ||
		    strlen(p->address) > RAFT_TRANSPORT_ADDR_MAX) {
			msgf(errmsg, STRATA_ERRMSG_SIZE,
			     "raft group %" PRIu64
			     ": peer %u needs an id > 0 and an address",
			     c->group_id, i);
			return STRATA_ECONFIG;
		}
		for (unsigned j = 0; j < i; j++) {
			if (c->peers[j].id == p->id) {
				msgf(errmsg, STRATA_ERRMSG_SIZE,
				     "raft group %" PRIu64 ": node id %" PRIu64
				     " is listed twice",
				     c->group_id, p->id);
				return STRATA_ECONFIG;
			}
		}
		self |= p->id == c->node_id;
	}
	if (!self && !c->join) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64 ": node %" PRIu64
		     " is not in its own peer list; add it (or set join "
		     "for a replica a leader adds later)",
		     c->group_id, c->node_id);
		return STRATA_ECONFIG;
	}
	if (!self && c->self_address == NULL) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64 ": node %" PRIu64
		     " joins without being in peers: set self_address to "
		     "its Raft address",
		     c->group_id, c->node_id);
		return STRATA_ECONFIG;
	}
	if (c->heartbeat_ms >= c->election_ms) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64 ": heartbeat %u ms must be below "
		     "the election timeout %u ms",
		     c->group_id, c->heartbeat_ms, c->election_ms);
		return STRATA_ECONFIG;
	}
	if (c->segment_bytes < (1u << 16) || c->segment_bytes > (1ull << 32)) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64 ": segment size %" PRIu64
		     " outside 64 KiB..4 GiB",
		     c->group_id, c->segment_bytes);
		return STRATA_ECONFIG;
	}
	return 0;
}

static void group_free(struct raft_group *g)
{
	if (g->cfg.peers != NULL) {
		for (unsigned i = 0; i < g->cfg.n_peers; i++) {
			strata_free((char *)g->cfg.peers[i].address);
		}
		strata_free((struct raft_group_peer *)g->cfg.peers);
	}
	strata_free((char *)g->cfg.data_dir);
	strata_free((char *)g->cfg.self_address);
	strata_free(g->members);
	pthread_mutex_destroy(&g->mlock);
	strata_free(g);
}

static void start_failed_closed(struct raft *r)
{
	struct raft_group *g = r->data;
	raft_uv_close(&g->io);
	raft_transport_close(&g->transport);
	waiter_done(g->w, g->start_rc != 0 ? g->start_rc : STRATA_EIO);
}

static void start_task(struct raft_host_task *t)
{
	struct raft_group *g = t->data;
	struct raft_host *h = g->host;
	char *errmsg = g->errmsg;
	int rv;
	for (struct raft_group *o = h->groups; o != NULL; o = o->next) {
		if (o->cfg.group_id == g->cfg.group_id) {
			msgf(errmsg, STRATA_ERRMSG_SIZE,
			     "raft group %" PRIu64 " already runs on this host",
			     g->cfg.group_id);
			waiter_done(g->w, STRATA_EEXIST);
			return;
		}
	}
	/* libraft checks the directory's mode bits only, then fails on a
	 * probe file with no path named ("create I/O capabilities probe
	 * file: open: permission denied") when another user owns it. */
	if (access(g->cfg.data_dir, W_OK | X_OK) != 0 && errno == EACCES) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64 ": directory \"%s\" is not "
		     "writable by this process (uid %u): make it and its "
		     "files the service user's (chown -R) or fix their "
		     "permissions",
		     g->cfg.group_id, g->cfg.data_dir, (unsigned)getuid());
		waiter_done(g->w, STRATA_EIO);
		return;
	}
	rv = raft_transport_init(&g->transport, h->mux, g->cfg.group_id);
	if (rv != 0) {
		msgf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		waiter_done(g->w, STRATA_ENOMEM);
		return;
	}
	rv = raft_uv_init(&g->io, &h->loop, g->cfg.data_dir, &g->transport);
	if (rv != 0) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64 ": open data dir \"%s\": %s",
		     g->cfg.group_id, g->cfg.data_dir, raft_strerror(rv));
		raft_transport_close(&g->transport);
		waiter_done(g->w, STRATA_EIO);
		return;
	}
	raft_uv_set_segment_size(&g->io, (size_t)g->cfg.segment_bytes);
	raft_uv_set_connect_retry_delay(&g->io, 50);
	/* A damaged log segment makes the replica refuse to start, naming
	 * the file. libraft's default auto-recovery renamed it corrupt-* and
	 * started without its entries, acknowledged ones included. What a
	 * crash leaves (a torn or missing last write) is not damage: the
	 * loader stops before it and that is not an error. */
	raft_uv_set_auto_recovery(&g->io, false);
	if (g->cfg.raw_snapshots) {
		raft_uv_set_snapshot_compression(&g->io, false);
	}
	g->fsm.version = 2;
	g->fsm.data = g;
	g->fsm.apply = fsm_apply;
	g->fsm.snapshot = fsm_snapshot;
	g->fsm.restore = fsm_restore;
	g->fsm.snapshot_finalize = fsm_snapshot_finalize;
	rv = raft_init(&g->raft, &g->io, &g->fsm, g->cfg.node_id, g->self_addr);
	if (rv != 0) {
		/* Mostly metadata1/metadata2 (term and vote) unreadable. */
		LOG_ERROR(COMP,
		          "group %" PRIu64 ": the Raft metadata in %s could "
		          "not be read (%s); nothing was changed and this "
		          "replica does not start. Check the disk "
		          "(dmesg). " REJOIN_ADVICE
		          "A single replica: restore the directory from a "
		          "backup, or "
		          "move the damaged metadata file away when the other "
		          "one is intact (it holds the term and vote of the "
		          "write before; safe only without other replicas)",
		          g->cfg.group_id, g->cfg.data_dir,
		          raft_errmsg(&g->raft));
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64 ": init: %s; see the log for what "
		     "to do",
		     g->cfg.group_id, raft_errmsg(&g->raft));
		raft_uv_close(&g->io);
		raft_transport_close(&g->transport);
		waiter_done(g->w, STRATA_EIO);
		return;
	}
	g->raft.data = g;
	raft_set_election_timeout(&g->raft, g->cfg.election_ms);
	raft_set_heartbeat_timeout(&g->raft, g->cfg.heartbeat_ms);
	raft_set_pre_vote(&g->raft, !g->cfg.pre_vote_off);
	raft_set_install_snapshot_timeout(&g->raft, g->cfg.snapshot_resend_ms);
	raft_set_snapshot_threshold(&g->raft, UINT_MAX);
	raft_set_snapshot_trailing(&g->raft, 1024);

	struct raft_configuration conf;
	raft_configuration_init(&conf);
	for (unsigned i = 0; i < g->cfg.n_peers && rv == 0; i++) {
		rv = raft_configuration_add(&conf, g->cfg.peers[i].id,
		                            g->cfg.peers[i].address,
		                            RAFT_VOTER);
	}
	if (rv == 0 && g->cfg.join) {
		LOG_INFO(COMP,
		         "group %" PRIu64 ": node %" PRIu64
		         " starts without bootstrapping; waiting for a leader "
		         "to add it",
		         g->cfg.group_id, g->cfg.node_id);
	} else if (rv == 0) {
		rv = raft_bootstrap(&g->raft, &conf);
		if (rv == RAFT_CANTBOOTSTRAP) {
			rv = 0; /* already set up: just start */
		} else if (rv == 0) {
			LOG_INFO(COMP,
			         "group %" PRIu64
			         ": bootstrapped %u voters in %s",
			         g->cfg.group_id, g->cfg.n_peers,
			         g->cfg.data_dir);
		}
	}
	raft_configuration_close(&conf);
	if (rv == 0) {
		rv = raft_start(&g->raft);
	}
	if (rv == RAFT_CORRUPT &&
	    strstr(raft_errmsg(&g->raft), "first index should have been") !=
	            NULL) {
		/* The files hold a gap: what covered the entries before the
		 * named segment (a snapshot, a segment) is gone. Moving the
		 * segment away, the advice below, would leave nothing. */
		LOG_ERROR(COMP,
		          "group %" PRIu64 ": the Raft log in %s has a gap "
		          "(%s): the snapshot or segment file that held the "
		          "entries before it is missing (a snapshot-* and its "
		          ".meta deleted?). Nothing was changed and this "
		          "replica does not start. " REJOIN_ADVICE
		          "A single replica: put the missing file back "
		          "(restore the directory from a backup)",
		          g->cfg.group_id, g->cfg.data_dir,
		          raft_errmsg(&g->raft));
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64 ": log in \"%s\" has a gap (a "
		     "snapshot or segment file is missing): %s",
		     g->cfg.group_id, g->cfg.data_dir, raft_errmsg(&g->raft));
		g->start_rc = STRATA_ECORRUPT;
		raft_close(&g->raft, start_failed_closed);
		return;
	}
	if (rv == RAFT_CORRUPT) {
		LOG_ERROR(COMP,
		          "group %" PRIu64 ": the Raft log in %s is damaged "
		          "(%s); nothing was changed and this replica does "
		          "not start. " REJOIN_ADVICE
		          "If it is the only replica, restore the directory "
		          "from a "
		          "backup, or move the named segment file and the "
		          "later ones out of it, and delete its .marker, to "
		          "start with the entries before them (the others are "
		          "lost)",
		          g->cfg.group_id, g->cfg.data_dir,
		          raft_errmsg(&g->raft));
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64 ": log in \"%s\" damaged: %s",
		     g->cfg.group_id, g->cfg.data_dir, raft_errmsg(&g->raft));
		g->start_rc = STRATA_ECORRUPT;
		raft_close(&g->raft, start_failed_closed);
		return;
	}
	if (rv != 0) {
		/* A file cut short, a damaged batch header or snapshot reads
		 * as an I/O or decoding error, not as RAFT_CORRUPT: say what
		 * it may be and what to do, as for a checksum error. */
		LOG_ERROR(COMP,
		          "group %" PRIu64 ": the Raft log or a snapshot in %s "
		          "could not be loaded (%s: %s). Nothing was changed "
		          "and this replica does not start. Check the disk "
		          "(dmesg); if a file there is damaged or cut short "
		          "(a segment, or the newest snapshot-* and its "
		          ".meta): " REJOIN_ADVICE
		          "A single replica: restore the directory from a "
		          "backup. Only if the damaged file is the newest "
		          "snapshot-* and the segments still hold the entries "
		          "after the snapshot before it, moving the newest one "
		          "and its .meta away starts from that one (else the "
		          "replica refuses to start with a gap)",
		          g->cfg.group_id, g->cfg.data_dir, raft_strerror(rv),
		          raft_errmsg(&g->raft));
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64 ": start in \"%s\": %s (%s); "
		     "see the log for what to do",
		     g->cfg.group_id, g->cfg.data_dir, raft_strerror(rv),
		     raft_errmsg(&g->raft));
		raft_close(&g->raft, start_failed_closed);
		return;
	}
	const char *note = raft_uv_load_note(&g->io);
	if (note[0] != '\0') {
		/* Expected after a crash with two log writes in flight; if it
		 * was not a crash, the segment is damaged there. Said before
		 * the marker check, whose "files lost" it explains. */
		LOG_WARN(
		        COMP,
		        "group %" PRIu64
		        ": %s (after a crash: a log write that "
		        "landed past one that did not, never acknowledged; "
		        "without a crash: damage, and the entries after it are "
		        "lost on this replica)",
		        g->cfg.group_id, note);
	}
	raft_index last = raft_last_index(&g->raft);
	if (g->marker_index > last) {
		LOG_ERROR(COMP,
		          "group %" PRIu64 ": the Raft log in %s ends at index "
		          "%" PRIu64 ", but this replica had committed and "
		          "stored index %" PRIu64 " (%s): log files were lost. "
		          "Nothing was changed and this replica does not "
		          "start. " REJOIN_ADVICE
		          "A single replica: restore the directory from a "
		          "backup; "
		          "deleting the marker starts it without the lost "
		          "entries",
		          g->cfg.group_id, g->cfg.data_dir, (uint64_t)last,
		          g->marker_index, g->marker);
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64 ": log in \"%s\" ends at %" PRIu64
		     ", below the %" PRIu64 " it had stored (%s): files lost",
		     g->cfg.group_id, g->cfg.data_dir, (uint64_t)last,
		     g->marker_index, g->marker);
		g->start_rc = STRATA_ECORRUPT;
		raft_close(&g->raft, start_failed_closed);
		return;
	}
	g->started = true;
	g->role = -1; /* force the first observe */
	g->next = h->groups;
	h->groups = g;
	observe(g);
	waiter_done(g->w, 0);
}

int raft_group_start(struct raft_host *h, const struct raft_group_config *cfg,
                     const struct raft_group_fsm *fsm, struct raft_group **out,
                     char *errmsg)
{
	struct raft_group_config c = *cfg;
	int rv;
	raft_group_config_defaults(&c);
	rv = check_config(&c, errmsg);
	if (rv != 0) {
		return rv;
	}
	if (fsm == NULL || fsm->apply == NULL || fsm->snapshot == NULL ||
	    fsm->restore == NULL) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft group %" PRIu64
		     ": the FSM needs apply, snapshot and restore",
		     c.group_id);
		return STRATA_ECONFIG;
	}
	if (raft_host_on_loop(h)) {
		msgf(errmsg, STRATA_ERRMSG_SIZE,
		     "raft_group_start blocks: call it off the loop thread");
		return STRATA_EINVAL;
	}
	/* Before mkdir_p: a directory that is gone stays gone. */
	uint64_t marked = 0;
	rv = raft_marker_check(c.data_dir, c.group_id, c.node_id, &marked,
	                       errmsg);
	if (rv == STRATA_ECONFIG) {
		LOG_ERROR(COMP, "%s. Nothing was changed", errmsg);
		return rv;
	}
	if (rv != 0) {
		LOG_ERROR(COMP,
		          "%s. Nothing was changed and this replica does not "
		          "start. With other replicas (a cluster), move the "
		          "directory and %s.marker away and start again: the "
		          "replica rejoins empty and catches up from them. A "
		          "single replica's entries are in that directory "
		          "only: restore it from a backup; deleting the marker "
		          "starts it without them",
		          errmsg, c.data_dir);
		return rv;
	}
	rv = mkdir_p(c.data_dir, errmsg);
	if (rv != 0) {
		return rv;
	}
	struct raft_group *g = strata_calloc(1, sizeof(*g));
	if (g == NULL) {
		msgf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	g->marker_index = marked;
	if (!raft_marker_path(c.data_dir, g->marker, sizeof(g->marker))) {
		g->marker[0] = '\0';
	}
	pthread_mutex_init(&g->mlock, NULL);
	g->host = h;
	g->owner = *fsm;
	g->cfg = c;
	g->cfg.peers = NULL;
	g->cfg.data_dir = strata_strdup(c.data_dir);
	g->cfg.self_address = NULL;
	struct raft_group_peer *peers =
	        strata_calloc(c.n_peers ? c.n_peers : 1, sizeof(*peers));
	g->cfg.peers = peers;
	bool oom = g->cfg.data_dir == NULL || peers == NULL;
	if (!oom && c.self_address != NULL) {
		g->cfg.self_address = strata_strdup(c.self_address);
		oom = g->cfg.self_address == NULL;
		if (!oom) {
			snprintf(g->self_addr, sizeof(g->self_addr), "%s",
			         c.self_address);
		}
	}
	for (unsigned i = 0; !oom && i < c.n_peers; i++) {
		peers[i].id = c.peers[i].id;
		peers[i].address = strata_strdup(c.peers[i].address);
		oom = peers[i].address == NULL;
		if (c.peers[i].id == c.node_id && c.self_address == NULL) {
			snprintf(g->self_addr, sizeof(g->self_addr), "%s",
			         c.peers[i].address);
		}
	}
	if (oom) {
		group_free(g);
		msgf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	atomic_init(&g->inflight, 0);
	atomic_init(&g->is_ready, false);
	struct waiter w;
	waiter_init(&w);
	g->w = &w;
	g->errmsg = errmsg;
	g->ctl.data = g;
	g->ctl.fn = start_task;
	rv = submit(h, NULL, &g->ctl);
	if (rv != 0) {
		msgf(errmsg, STRATA_ERRMSG_SIZE, "raft host is stopping");
		waiter_done(&w, rv);
	}
	waiter_wait(&w);
	g->w = NULL;
	g->errmsg = NULL;
	if (w.rv != 0) {
		group_free(g);
		return w.rv;
	}
	LOG_INFO(COMP,
	         "group %" PRIu64 ": node %" PRIu64
	         " started (election %u ms, heartbeat %u ms, pre-vote %s, "
	         "snapshot every %" PRIu64 " B, segments %" PRIu64
	         " B, in-flight %" PRIu64 " B)",
	         g->cfg.group_id, g->cfg.node_id, g->cfg.election_ms,
	         g->cfg.heartbeat_ms, g->cfg.pre_vote_off ? "off" : "on",
	         g->cfg.snapshot_bytes, g->cfg.segment_bytes,
	         g->cfg.inflight_bytes);
	*out = g;
	return 0;
}

static void stop_closed(struct raft *r)
{
	struct raft_group *g = r->data;
	raft_uv_close(&g->io);
	raft_transport_close(&g->transport);
	waiter_done(g->w, 0);
}

static void stop_task(struct raft_host_task *t)
{
	struct raft_group *g = t->data;
	struct raft_host *h = g->host;
	for (struct raft_group **pp = &h->groups; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	}
	if (g->started) {
		mark_stored(g, true);
	}
	g->started = false;
	release_held(g); /* not started: each fails with ESHUTDOWN */
	raft_close(&g->raft, stop_closed);
}

void raft_group_stop(struct raft_group *g)
{
	struct raft_host *h = g->host;
	if (raft_host_on_loop(h)) {
		LOG_ERROR(COMP,
		          "raft_group_stop called on the loop thread for group "
		          "%" PRIu64 "; it must run off the loop",
		          g->cfg.group_id);
		return;
	}
	struct waiter w;
	waiter_init(&w);
	g->w = &w;
	g->ctl.data = g;
	g->ctl.fn = stop_task;
	pthread_mutex_lock(&h->lock);
	g->closing = true;
	task_append(&h->head, &h->tail, &g->ctl);
	pthread_mutex_unlock(&h->lock);
	uv_async_send(&h->async);
	waiter_wait(&w);
	raft_metrics_group_stopped(g);
	LOG_INFO(COMP, "group %" PRIu64 ": node %" PRIu64 " stopped",
	         g->cfg.group_id, g->cfg.node_id);
	group_free(g);
}

/* ---- applies --------------------------------------------------------------
 */

static void apply_finish(struct apply_req *a, int status, void *result)
{
	struct raft_group *g = a->g;
	atomic_fetch_sub(&g->inflight, a->len);
	raft_group_apply_cb cb = a->cb;
	void *arg = a->arg;
	strata_free(a);
	cb(arg, status, result);
}

/* Keep libraft's message of a failed log write (see log_errmsg): an
 * I/O error whose message libraft took from its raft_io ("io: ..."). */
static void note_log_error(struct raft_group *g, int rv)
{
	if ((rv == RAFT_IOERR || rv == RAFT_NOSPACE) &&
	    g->log_errmsg[0] == '\0' &&
	    strncmp(raft_errmsg(&g->raft), "io:", 3) == 0) {
		snprintf(g->log_errmsg, sizeof(g->log_errmsg), "%s",
		         raft_errmsg(&g->raft));
	}
}

static void apply_done(struct raft_apply *req, int status, void *result)
{
	struct apply_req *a = req->data;
	note_log_error(a->g, status);
	apply_finish(a, map_raft_error(status), result);
}

static void apply_now(struct apply_req *a)
{
	struct raft_group *g = a->g;
	if (!g->started) {
		raft_free(a->buf.base);
		apply_finish(a, STRATA_ESHUTDOWN, NULL);
		return;
	}
	g->sub_bytes += a->len;
	g->sub_entries++;
	a->req.data = a;
	int rv = raft_apply(&g->raft, &a->req, &a->buf, 1, apply_done);
	if (rv != 0) {
		note_log_error(g, rv);
		raft_free(a->buf.base); /* not transferred on error */
		apply_finish(a, map_raft_error(rv), NULL);
	}
}

/*
 * Slow-follower flow control (leader, loop thread). libraft 0.15 streams
 * every new entry to every follower in pipeline mode, unbounded; a
 * follower slower than the commit rate (the other follower makes the
 * quorum) queues ever more appends, and libraft's follower grows its write
 * buffer by the exact size of each queued append, copying the old one: the
 * queue's cost is quadratic and the follower never catches up
 * (docs/raft.md, "Slow follower"). So while a live follower (pipeline
 * mode, heard from within the election timeout) is more than lag_bytes
 * behind the leader's last entry, new applies wait here, in order, and
 * count against the in-flight budget as before, so owners see
 * back-pressure (details at should_hold). Dead followers, and followers
 * being sent a snapshot or probed, never hold it.
 */
/* Of the live followers in pipeline mode, the largest lag behind the
 * leader's last entry (entries) and the lowest match index; 0 lag when
 * there is none or this is not a leader. Sets *max_lag to the bound. */
static uint64_t follower_lag(struct raft_group *g, uint64_t *max_lag,
                             uint64_t *min_match)
{
	struct raft *r = &g->raft;
	uint64_t mean = g->sub_entries > 0 ? g->sub_bytes / g->sub_entries : 1;
	*max_lag = g->cfg.lag_bytes / (mean > 0 ? mean : 1);
	if (*max_lag < 64) {
		*max_lag = 64;
	}
	*min_match = UINT64_MAX;
	if (r->state != RAFT_LEADER || r->leader_state.progress == NULL ||
	    g->cfg.lag_bytes == 0) {
		return 0;
	}
	raft_index last = raft_last_index(r);
	uint64_t worst = 0;
	for (unsigned i = 0; i < r->configuration.n; i++) {
		const struct raft_server *s = &r->configuration.servers[i];
		const struct raft_progress *p = &r->leader_state.progress[i];
		if (s->id == r->id || s->role != RAFT_VOTER ||
		    p->state != RAFT_PROGRESS_PIPELINE || !p->recent_recv) {
			continue;
		}
		uint64_t lag =
		        last > p->match_index ? last - p->match_index : 0;
		if (lag > worst) {
			worst = lag;
		}
		if (p->match_index < *min_match) {
			*min_match = p->match_index;
		}
	}
	return worst;
}

/* Hold while the worst live follower is more than max_lag entries behind,
 * and once holding, until it is within a quarter of that (so a follower
 * slower than the leader really catches up instead of hovering at the
 * bound). Give up on a follower only when it makes no progress at all for
 * lag_hold_ms (hung disk or loop): then writes go on without it until it
 * is back within the bound. */
static bool should_hold(struct raft_group *g)
{
	uint64_t max_lag, min_match;
	uint64_t lag = follower_lag(g, &max_lag, &min_match);
	bool holding = g->hold_since_ms != 0 && !g->hold_exempt;
	if (lag <= (holding ? max_lag / 4 : max_lag)) {
		if (g->hold_exempt && lag <= max_lag) {
			LOG_INFO(COMP,
			         "group %" PRIu64 ": the slow follower is "
			         "back within %" PRIu64 " bytes",
			         g->cfg.group_id, g->cfg.lag_bytes);
			g->hold_exempt = false;
		}
		if (!g->hold_exempt) {
			g->hold_since_ms = 0;
		}
		return false;
	}
	if (g->hold_exempt) {
		return false;
	}
	uint64_t now = uv_now(&g->host->loop);
	if (g->hold_since_ms == 0) {
		g->hold_since_ms = now;
		g->hold_match = min_match;
		g->mloop.lag_holds++;
	} else if (min_match > g->hold_match) {
		g->hold_match = min_match; /* progress: keep waiting */
		g->hold_since_ms = now;
	} else if (now - g->hold_since_ms > g->cfg.lag_hold_ms) {
		LOG_WARN(COMP,
		         "group %" PRIu64 ": a follower more than %" PRIu64
		         " bytes behind made no progress for %u ms; writes go "
		         "on without waiting for it (check its disk and CPU)",
		         g->cfg.group_id, g->cfg.lag_bytes, g->cfg.lag_hold_ms);
		g->hold_exempt = true;
		return false;
	}
	return true;
}

/* Propose held applies, in order, once nothing holds them (also when the
 * group is no longer leader: libraft then refuses them). */
static void release_held(struct raft_group *g)
{
	while (g->held_head != NULL && (!g->started || !should_hold(g))) {
		struct apply_req *a = g->held_head;
		g->held_head = a->held;
		if (g->held_head == NULL) {
			g->held_tail = NULL;
		}
		apply_now(a);
	}
}

static void apply_task(struct raft_host_task *t)
{
	struct apply_req *a = (struct apply_req *)t;
	struct raft_group *g = a->g;
	if (g->started && (g->held_head != NULL || should_hold(g))) {
		a->held = NULL;
		if (g->held_tail != NULL) {
			g->held_tail->held = a;
		} else {
			g->held_head = a;
		}
		g->held_tail = a;
		return;
	}
	apply_now(a);
}

int raft_group_apply(struct raft_group *g, const void *buf, size_t len,
                     raft_group_apply_cb cb, void *arg)
{
	uint64_t budget = g->cfg.inflight_bytes;
	if (len == 0 || len > budget) {
		return STRATA_ETOOBIG;
	}
	uint64_t cur = atomic_load(&g->inflight);
	do {
		if (cur + len > budget) {
			pthread_mutex_lock(&g->mlock);
			g->m.rejected_full++;
			pthread_mutex_unlock(&g->mlock);
			return STRATA_EAGAIN;
		}
	} while (!atomic_compare_exchange_weak(&g->inflight, &cur, cur + len));
	struct apply_req *a = strata_calloc(1, sizeof(*a));
	size_t padded = entry_padded_len(len);
	unsigned char *copy = raft_malloc(padded);
	if (a == NULL || copy == NULL) {
		strata_free(a);
		raft_free(copy);
		atomic_fetch_sub(&g->inflight, len);
		return STRATA_ENOMEM;
	}
	memcpy(copy, buf, len);
	memset(copy + len, 0, padded - len);
	copy[padded - 1] = (unsigned char)(padded - len);
	a->g = g;
	a->buf.base = copy;
	a->buf.len = padded;
	a->len = len;
	a->cb = cb;
	a->arg = arg;
	a->task.data = a;
	a->task.fn = apply_task;
	int rv = submit(g->host, g, &a->task);
	if (rv != 0) {
		raft_free(copy);
		strata_free(a);
		atomic_fetch_sub(&g->inflight, len);
		return rv;
	}
	return 0;
}

/* ---- membership changes ----------------------------------------------------
 *
 * Happy path: the caller's thread copies the request and queues it; on the
 * loop the leader calls raft_add/assign/remove/transfer, libraft calls back
 * once the change committed (or the transfer finished), and the owner's
 * callback fires. set_members repeats "diff the configuration, start one
 * step" from every step's callback until nothing is left to do.
 * Failure modes: refused at once by libraft (mapped to a status, callback
 * fires from the task); leadership lost while pending (libraft fails the
 * change with LEADERSHIPLOST, also on close); promotion without catch-up
 * (NOCONNECTION -> STRATA_ETIMEDOUT).
 */

enum change_op {
	CHANGE_ADD,
	CHANGE_ASSIGN,
	CHANGE_REMOVE,
	CHANGE_TRANSFER,
	CHANGE_SET,
};

/* One membership request; freed right before its callback. */
struct change_req {
	struct raft_host_task task;  /* queue link (first: cast) */
	struct raft_group *g;        /* group */
	enum change_op op;           /* what to do */
	uint64_t id;                 /* node (add/assign/remove/transfer) */
	int role;                    /* assign */
	char *address;               /* add (owned) */
	struct raft_group_peer *set; /* set_members target (owned) */
	unsigned n_set;              /* its length */
	bool removing_self;          /* set_members: last step started */
	struct raft_change change;   /* libraft request */
	raft_group_change_cb cb;     /* owner callback */
	void *arg;                   /* its argument */
};

static int map_change_error(int rv)
{
	switch (rv) {
	case RAFT_CANTCHANGE:
		return STRATA_EBUSY;
	case RAFT_DUPLICATEID:
	case RAFT_DUPLICATEADDRESS:
		return STRATA_EEXIST;
	case RAFT_NOTFOUND:
	case RAFT_BADID:
		return STRATA_ENOENT;
	case RAFT_BADROLE:
		return STRATA_EINVAL;
	case RAFT_NOCONNECTION:
		return STRATA_ETIMEDOUT;
	default:
		return map_raft_error(rv);
	}
}

static void change_finish(struct change_req *c, int status)
{
	raft_group_change_cb cb = c->cb;
	void *arg = c->arg;
	struct raft_group *g = c->g;
	if (status != 0) {
		LOG_INFO(COMP,
		         "group %" PRIu64 ": membership change (op %d, node "
		         "%" PRIu64 ") ended: %s",
		         g->cfg.group_id, (int)c->op, c->id,
		         strata_strerror(status));
	}
	strata_free(c->address);
	if (c->set != NULL) {
		for (unsigned i = 0; i < c->n_set; i++) {
			strata_free((char *)c->set[i].address);
		}
		strata_free(c->set);
	}
	strata_free(c);
	cb(arg, status);
}

/* Leader-side checks shared by every change; 0 or a status. */
static int change_precheck(struct raft_group *g)
{
	if (!g->started) {
		return STRATA_ESHUTDOWN;
	}
	if (raft_state(&g->raft) != RAFT_LEADER) {
		return STRATA_ENOTLEADER;
	}
	if (g->raft.transfer != NULL) {
		return STRATA_EBUSY;
	}
	return 0;
}

static void set_step(struct change_req *c);

static void change_done(struct raft_change *req, int status)
{
	struct change_req *c = req->data;
	if (c->op == CHANGE_SET && status == 0 && !c->removing_self) {
		set_step(c);
		return;
	}
	change_finish(c, map_change_error(status));
}

/* libraft leaves leader_state.change pointing at a request whose
 * raft_assign failed late; never let it keep ours. */
static void change_forget(struct raft_group *g, struct change_req *c)
{
	if (g->raft.state == RAFT_LEADER &&
	    g->raft.leader_state.change == &c->change) {
		g->raft.leader_state.change = NULL;
	}
}

/* Start one libraft change for c (op/id/role/address); 0 or a status. */
static int change_start(struct change_req *c, enum change_op op, uint64_t id,
                        int role, const char *address)
{
	struct raft_group *g = c->g;
	int rv = change_precheck(g);
	if (rv != 0) {
		return rv;
	}
	c->change.data = c;
	switch (op) {
	case CHANGE_ADD:
		LOG_INFO(COMP,
		         "group %" PRIu64 ": adding node %" PRIu64
		         " at %s as spare",
		         g->cfg.group_id, id, address);
		rv = raft_add(&g->raft, &c->change, id, address, change_done);
		break;
	case CHANGE_ASSIGN:
		LOG_INFO(COMP,
		         "group %" PRIu64 ": assigning node %" PRIu64
		         " role %d",
		         g->cfg.group_id, id, role);
		rv = raft_assign(&g->raft, &c->change, id, role, change_done);
		break;
	default:
		LOG_INFO(COMP, "group %" PRIu64 ": removing node %" PRIu64,
		         g->cfg.group_id, id);
		rv = raft_remove(&g->raft, &c->change, id, change_done);
		break;
	}
	if (rv != 0) {
		change_forget(g, c);
		return map_change_error(rv);
	}
	return 0;
}

static const struct raft_group_peer *set_find(const struct change_req *c,
                                              uint64_t id)
{
	for (unsigned i = 0; i < c->n_set; i++) {
		if (c->set[i].id == id) {
			return &c->set[i];
		}
	}
	return NULL;
}

/* set_members: start the next step, or finish when none is left. */
static void set_step(struct change_req *c)
{
	struct raft_group *g = c->g;
	int rv = change_precheck(g);
	if (rv != 0) {
		change_finish(c, rv);
		return;
	}
	const struct raft_configuration *conf = &g->raft.configuration;
	const struct raft_server *srv;
	/* 1. Every target present (as a spare at first), same address. */
	for (unsigned i = 0; i < c->n_set; i++) {
		srv = NULL;
		for (unsigned j = 0; j < conf->n; j++) {
			if (conf->servers[j].id == c->set[i].id) {
				srv = &conf->servers[j];
			}
		}
		if (srv != NULL && strcmp(srv->address, c->set[i].address)) {
			LOG_WARN(COMP,
			         "group %" PRIu64 ": node %" PRIu64
			         " is a member at %s, not %s; remove it first",
			         g->cfg.group_id, c->set[i].id, srv->address,
			         c->set[i].address);
			change_finish(c, STRATA_EINVAL);
			return;
		}
		if (srv == NULL) {
			c->id = c->set[i].id;
			rv = change_start(c, CHANGE_ADD, c->set[i].id, 0,
			                  c->set[i].address);
			goto started;
		}
	}
	/* 2. Every target a voter (libraft catches it up first). */
	for (unsigned j = 0; j < conf->n; j++) {
		srv = &conf->servers[j];
		if (set_find(c, srv->id) != NULL && srv->role != RAFT_VOTER) {
			c->id = srv->id;
			rv = change_start(c, CHANGE_ASSIGN, srv->id, RAFT_VOTER,
			                  NULL);
			goto started;
		}
	}
	/* 3. Every other member removed, this leader last. */
	for (unsigned j = 0; j < conf->n; j++) {
		srv = &conf->servers[j];
		if (set_find(c, srv->id) == NULL && srv->id != g->cfg.node_id) {
			c->id = srv->id;
			rv = change_start(c, CHANGE_REMOVE, srv->id, 0, NULL);
			goto started;
		}
	}
	if (set_find(c, g->cfg.node_id) == NULL) {
		/* Done once it commits: this replica then steps down. */
		c->removing_self = true;
		c->id = g->cfg.node_id;
		rv = change_start(c, CHANGE_REMOVE, g->cfg.node_id, 0, NULL);
		goto started;
	}
	change_finish(c, 0);
	return;
started:
	if (rv != 0) {
		change_finish(c, rv);
	}
}

static void transfer_done(struct raft_transfer *t)
{
	struct raft_group *g = t->data;
	struct change_req *c = g->transfer_req;
	g->transfer_req = NULL;
	if (c == NULL) {
		return;
	}
	/* Step down in our own state (ready, role) before the caller hears
	 * the transfer succeeded: raft_group_is_ready() on this node must
	 * not still say yes once the new leader has taken over. */
	observe(g);
	raft_id leader = 0;
	const char *addr = NULL;
	raft_leader(&g->raft, &leader, &addr);
	int status = STRATA_ETIMEDOUT;
	if (g->raft.state == RAFT_UNAVAILABLE || !g->started) {
		status = STRATA_ESHUTDOWN;
	} else if (leader != 0 && leader == t->id) {
		status = 0;
	}
	c->id = t->id;
	change_finish(c, status);
}

/* Why raft_transfer refused id: not a member, or self / not a voter. */
static int transfer_badid(struct raft_group *g, uint64_t id)
{
	const struct raft_configuration *conf = &g->raft.configuration;
	for (unsigned j = 0; j < conf->n; j++) {
		if (conf->servers[j].id == id) {
			return STRATA_EINVAL;
		}
	}
	return STRATA_ENOENT;
}

static void change_task(struct raft_host_task *t)
{
	struct change_req *c = (struct change_req *)t;
	struct raft_group *g = c->g;
	int rv;
	switch (c->op) {
	case CHANGE_SET:
		set_step(c);
		return;
	case CHANGE_TRANSFER:
		rv = change_precheck(g);
		if (rv != 0) {
			break;
		}
		/* Reusing the one embedded request is safe: libraft is done
		 * with it (r->transfer is NULL) and a TimeoutNow send still in
		 * flight only reads its cb field, which stays valid memory. */
		memset(&g->transfer, 0, sizeof(g->transfer));
		g->transfer.data = g;
		g->transfer_req = c;
		rv = raft_transfer(&g->raft, &g->transfer, c->id,
		                   transfer_done);
		if (rv != 0) {
			g->transfer_req = NULL;
			rv = rv == RAFT_BADID ? transfer_badid(g, c->id)
			                      : map_change_error(rv);
			break;
		}
		LOG_INFO(COMP,
		         "group %" PRIu64 ": transferring leadership to node "
		         "%" PRIu64,
		         g->cfg.group_id, (uint64_t)g->transfer.id);
		return;
	default:
		rv = change_start(c, c->op, c->id, c->role, c->address);
		if (rv == 0) {
			return;
		}
		break;
	}
	change_finish(c, rv);
}

/* Allocate a request for op; NULL when out of memory. */
static struct change_req *change_new(struct raft_group *g, enum change_op op,
                                     uint64_t id, raft_group_change_cb cb,
                                     void *arg)
{
	struct change_req *c = strata_calloc(1, sizeof(*c));
	if (c == NULL) {
		return NULL;
	}
	c->g = g;
	c->op = op;
	c->id = id;
	c->cb = cb;
	c->arg = arg;
	c->task.data = c;
	c->task.fn = change_task;
	return c;
}

/* Queue c; on refusal free it (cb never fires) and return why. */
static int change_submit(struct change_req *c)
{
	int rv = submit(c->g->host, c->g, &c->task);
	if (rv != 0) {
		strata_free(c->address);
		if (c->set != NULL) {
			for (unsigned i = 0; i < c->n_set; i++) {
				strata_free((char *)c->set[i].address);
			}
			strata_free(c->set);
		}
		strata_free(c);
	}
	return rv;
}

static bool address_ok(const char *address)
{
	return address != NULL && address[0] != '\0' &&
	       strlen(address) <= RAFT_TRANSPORT_ADDR_MAX;
}

int raft_group_add(struct raft_group *g, uint64_t node_id, const char *address,
                   raft_group_change_cb cb, void *arg)
{
	if (node_id == 0 || !address_ok(address) || cb == NULL) {
		return STRATA_EINVAL;
	}
	struct change_req *c = change_new(g, CHANGE_ADD, node_id, cb, arg);
	if (c == NULL) {
		return STRATA_ENOMEM;
	}
	c->address = strata_strdup(address);
	if (c->address == NULL) {
		strata_free(c);
		return STRATA_ENOMEM;
	}
	return change_submit(c);
}

int raft_group_assign(struct raft_group *g, uint64_t node_id, int role,
                      raft_group_change_cb cb, void *arg)
{
	if (node_id == 0 || cb == NULL ||
	    (role != RAFT_MEMBER_STANDBY && role != RAFT_MEMBER_VOTER &&
	     role != RAFT_MEMBER_SPARE)) {
		return STRATA_EINVAL;
	}
	struct change_req *c = change_new(g, CHANGE_ASSIGN, node_id, cb, arg);
	if (c == NULL) {
		return STRATA_ENOMEM;
	}
	c->role = role;
	return change_submit(c);
}

int raft_group_remove(struct raft_group *g, uint64_t node_id,
                      raft_group_change_cb cb, void *arg)
{
	if (node_id == 0 || cb == NULL) {
		return STRATA_EINVAL;
	}
	struct change_req *c = change_new(g, CHANGE_REMOVE, node_id, cb, arg);
	if (c == NULL) {
		return STRATA_ENOMEM;
	}
	return change_submit(c);
}

int raft_group_transfer(struct raft_group *g, uint64_t node_id,
                        raft_group_change_cb cb, void *arg)
{
	if (cb == NULL) {
		return STRATA_EINVAL;
	}
	struct change_req *c = change_new(g, CHANGE_TRANSFER, node_id, cb, arg);
	if (c == NULL) {
		return STRATA_ENOMEM;
	}
	return change_submit(c);
}

int raft_group_set_members(struct raft_group *g,
                           const struct raft_group_peer *voters, unsigned n,
                           raft_group_change_cb cb, void *arg)
{
	if (voters == NULL || n == 0 || cb == NULL) {
		return STRATA_EINVAL;
	}
	for (unsigned i = 0; i < n; i++) {
		if (voters[i].id == 0 || !address_ok(voters[i].address)) {
			return STRATA_EINVAL;
		}
		for (unsigned j = 0; j < i; j++) {
			if (voters[j].id == voters[i].id ||
			    strcmp(voters[j].address, voters[i].address) == 0) {
				return STRATA_EINVAL;
			}
		}
	}
	struct change_req *c = change_new(g, CHANGE_SET, 0, cb, arg);
	if (c == NULL) {
		return STRATA_ENOMEM;
	}
	c->set = strata_calloc(n, sizeof(*c->set));
	bool oom = c->set == NULL;
	for (unsigned i = 0; !oom && i < n; i++) {
		c->n_set = i + 1;
		c->set[i].id = voters[i].id;
		c->set[i].address = strata_strdup(voters[i].address);
		oom = c->set[i].address == NULL;
	}
	if (oom) {
		for (unsigned i = 0; c->set != NULL && i < c->n_set; i++) {
			strata_free((char *)c->set[i].address);
		}
		strata_free(c->set);
		strata_free(c);
		return STRATA_ENOMEM;
	}
	return change_submit(c);
}
