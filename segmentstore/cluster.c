/* Segment store membership: container replicas per the controller's
 * assignment (or all of them, standalone), routing, metrics, readiness.
 *
 * happy path (controller mode): a thread registers with the controllers
 * (retrying until one answers), then heartbeats every lease/3 with a
 * report per hosted replica; every reply carries the whole assignment.
 * For each container assigned here and not running, the replica starts:
 * at once when this store already has Raft state for it (a restart: the
 * persisted Raft configuration wins), or, for a group nobody leads yet,
 * once its replica set has been stable for settle_ms (so the replicas
 * bootstrap the same voter set). Replicas no longer assigned here stop
 * (their data stays on disk).
 *
 * A container assigned here whose group already runs elsewhere (the
 * assignment names a leader) starts as a joining replica (no bootstrap:
 * bootstrapping it would fork the group); the group's leader adds it.
 * Whenever this store leads a container whose voters differ from the
 * assigned replica set, it moves the group there with
 * raft_group_set_members (one change at a time per container).
 *
 * failure modes: controller unreachable: keep heartbeating with back-off;
 * replicas keep serving (Raft terms fence a deposed owner, not the
 * controller). A membership change that fails is retried at the next
 * heartbeat.
 *
 * Locking: `lock` (rwlock) guards the replica table and the assignment;
 * RPC threads, metric callbacks and readiness take it shared; only the
 * membership thread (or start/stop) changes it, exclusively and briefly:
 * container_start/stop run outside it.
 */
#include "segmentstore/cluster.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/alloc.h"
#include "common/files.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/rpc.h"
#include "raft/marker.h"
#include "strata/error.h"
#include "strata/v1/cluster.pb-c.h"

#define CL_MAX_REPLICAS 16 /* replicas per container we keep track of */
#define CL_URL_MAX RPC_MAX_URL_LEN
#define CL_ADDR_MAX 256 /* "host:port" (IPv4 literal or DNS name) */
#define CL_DEFAULT_LEASE_MS 3000
#define CL_RETRY_MIN_MS 200
#define CL_RETRY_MAX_MS 2000
#define CL_RECOVER_MS 30000        /* first restart of a failed replica */
#define CL_RECOVER_MAX_MS 600000   /* longest wait between restarts */
#define CL_RECOVER_RESET_MS 600000 /* up this long: next wait is the first */
#define CL_STANDALONE_TICK_MS 1000 /* standalone: how often to look */
#define CL_TRIM_BYTES (64u << 20)  /* free memory held worth a trim */
#define CL_TRIM_MS 10000           /* at most one trim this often */
/* A replica no longer assigned here but still a voter of its group runs
 * on until the leader has moved the voters (stopping it could leave the
 * group without a quorum); once it has known no leader this long (the
 * leader removed it and stopped talking to it) it stops. */
#define CL_ORPHAN_MS 30000

/* Method ids of proto/strata/v1/cluster.proto. */
#define CL_REGISTER STRATA__V1__CLUSTER_METHOD__CLUSTER_REGISTER_STORE
#define CL_HEARTBEAT STRATA__V1__CLUSTER_METHOD__CLUSTER_HEARTBEAT
#define CL_UNREGISTER STRATA__V1__CLUSTER_METHOD__CLUSTER_UNREGISTER_STORE

/* How to reach one store, learned from assignments. */
struct endpoint {
	uint64_t node_id;            /* > 0 */
	char client_url[CL_URL_MAX]; /* SS_* URL */
	char raft[CL_ADDR_MAX];      /* Raft address */
};

/* What the last assignment says about one container. */
struct slot {
	uint64_t replicas[CL_MAX_REPLICAS]; /* node ids, as sent */
	size_t n;                           /* entries in replicas */
	uint64_t leader;                    /* reported leader, 0 unknown */
	uint64_t since_ms;                  /* replica set unchanged since */
	bool here;                          /* this store is in replicas */
	atomic_bool changing;               /* set_members in flight */
	uint32_t id;                        /* container id */
	/* Recovery of a replica whose Raft log failed, or that has state on
	 * disk and did not start (membership thread): (re)start it at
	 * retry_ms (0: none planned), after waiting wait_ms. */
	uint64_t retry_ms;
	uint64_t wait_ms;
	uint64_t restarted_ms;    /* last restart */
	bool down;                /* stopped for a restart, not started again */
	atomic_bool start_failed; /* its last start here failed */
	/* Not assigned here but still a voter (membership thread): kept
	 * since kept_ms; leaderless since leaderless_ms (0: a leader). */
	uint64_t kept_ms;
	uint64_t leaderless_ms;
};

/* Metric callback argument: which container, which value. */
enum metric_kind {
	MK_ROLE,
	MK_TERM,
	MK_LEADER,
	MK_UNFLUSHED,
	MK_CACHE,
	MK_SEGMENTS,
	MK_DEGRADED,
	MK_LOG_FAILED,
	MK_COUNT,
};
struct metric_arg {
	struct ss_cluster *c;
	uint32_t container; /* UINT32_MAX: the store-wide total */
	enum metric_kind kind;
};

struct ss_cluster {
	uint64_t node_id;
	char *data_dir;
	char client_url[CL_URL_MAX];
	char raft_address[CL_ADDR_MAX];
	char http_url[CL_URL_MAX];
	uint32_t count;
	struct container_config tmpl;
	struct raft_host *host;
	unsigned rpc_timeout_ms;
	unsigned settle_ms;
	unsigned recover_ms;
	struct rpc_client *ctl; /* NULL: standalone */

	pthread_rwlock_t lock;
	struct container **rep; /* [count]; running replicas */
	struct slot *slots;     /* [count]; from the last assignment */
	struct endpoint *eps;   /* known stores */
	size_t n_eps, cap_eps;
	uint64_t assignment_version;
	uint64_t lease_ms;
	atomic_bool registered; /* the controller knows this store */
	/* The cluster this store's data belongs to (cluster mode): read
	 * from cluster_path at start, written when it first joins. Only
	 * the membership thread changes it after start. */
	char cluster_id[65];
	char *cluster_path; /* <data_dir>/cluster-id */
	void (*on_fatal)(void *arg, const char *message);
	void *fatal_arg;
	bool fatal_told; /* membership thread */

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cv;
	bool stopping; /* under stop_mu */

	struct metric_arg *margs; /* (count + 1) * MK_COUNT */
};

__attribute__((format(printf, 2, 3))) static void setmsg(char *errmsg,
                                                         const char *fmt, ...)
{
	if (errmsg == NULL) {
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

static void copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src != NULL ? src : "");
}

/* With lock held: endpoint of node, or NULL. */
static const struct endpoint *find_ep(const struct ss_cluster *c, uint64_t node)
{
	for (size_t i = 0; i < c->n_eps; i++) {
		if (c->eps[i].node_id == node) {
			return &c->eps[i];
		}
	}
	return NULL;
}

/* With lock held exclusively: remember or update an endpoint. */
static int put_ep(struct ss_cluster *c, const Strata__V1__StoreEndpoint *e)
{
	if (e == NULL || e->node_id == 0) {
		return 0;
	}
	struct endpoint *ep = (struct endpoint *)find_ep(c, e->node_id);
	if (ep == NULL) {
		if (c->n_eps == c->cap_eps) {
			size_t cap = c->cap_eps != 0 ? 2 * c->cap_eps : 8;
			struct endpoint *n =
			        strata_realloc(c->eps, cap * sizeof(*n));
			if (n == NULL) {
				return STRATA_ENOMEM;
			}
			c->eps = n;
			c->cap_eps = cap;
		}
		ep = &c->eps[c->n_eps++];
		ep->node_id = e->node_id;
	}
	copy_str(ep->client_url, sizeof(ep->client_url), e->client_url);
	copy_str(ep->raft, sizeof(ep->raft), e->raft_address);
	return 0;
}

/* With lock held: client URL of node into url, "" if unknown or self. */
static void node_url(const struct ss_cluster *c, uint64_t node, char *url,
                     size_t size)
{
	url[0] = '\0';
	if (node == 0 || node == c->node_id) {
		return;
	}
	const struct endpoint *ep = find_ep(c, node);
	if (ep != NULL) {
		copy_str(url, size, ep->client_url);
	}
}

/* With lock held: best URL for container: its leader, else (not hosted
 * here) the reported leader or another replica. */
static void leader_url_locked(const struct ss_cluster *c, uint32_t id,
                              char *url, size_t size)
{
	url[0] = '\0';
	if (id >= c->count) {
		return;
	}
	if (c->rep[id] != NULL) {
		struct container_status st;
		container_status(c->rep[id], &st);
		node_url(c, st.leader_id, url, size);
		return;
	}
	const struct slot *s = &c->slots[id];
	node_url(c, s->leader, url, size);
	for (size_t i = 0; url[0] == '\0' && i < s->n; i++) {
		node_url(c, s->replicas[i], url, size);
	}
}

/* ------------------------------------------------------------ backend -- */

static int be_submit(void *arg, uint32_t id,
                     const struct container_request *req,
                     container_done_fn done, void *done_arg)
{
	struct ss_cluster *c = arg;
	int rc = STRATA_EWRONGHOST;
	pthread_rwlock_rdlock(&c->lock);
	if (id < c->count && c->rep[id] != NULL) {
		rc = container_submit(c->rep[id], req, done, done_arg);
	}
	pthread_rwlock_unlock(&c->lock);
	return rc;
}

static void be_leader_url(void *arg, uint32_t id, char *url, size_t size)
{
	struct ss_cluster *c = arg;
	pthread_rwlock_rdlock(&c->lock);
	leader_url_locked(c, id, url, size);
	pthread_rwlock_unlock(&c->lock);
}

static int be_status(void *arg, uint32_t id, struct container_status *out,
                     char *leader, size_t size)
{
	struct ss_cluster *c = arg;
	int rc = STRATA_ENOENT;
	pthread_rwlock_rdlock(&c->lock);
	if (id < c->count && c->rep[id] != NULL) {
		container_status(c->rep[id], out);
		leader_url_locked(c, id, leader, size);
		if (out->leader_id == c->node_id) {
			copy_str(leader, size, c->client_url);
		}
		rc = 0;
	} else if (id < c->count && atomic_load(&c->slots[id].start_failed)) {
		memset(out, 0, sizeof(*out));
		out->start_failed = true;
		rc = STRATA_EUNAVAIL;
	}
	pthread_rwlock_unlock(&c->lock);
	return rc;
}

void ss_cluster_backend(struct ss_cluster *c, struct ss_backend *out)
{
	memset(out, 0, sizeof(*out));
	out->arg = c;
	out->container_count = c->count;
	out->submit = be_submit;
	out->leader_url = be_leader_url;
	out->status = be_status;
}

/* ----------------------------------------------------------- replicas -- */

static void replica_dir(const struct ss_cluster *c, uint32_t id, char *buf,
                        size_t size)
{
	snprintf(buf, size, "%s/container-%" PRIu32, c->data_dir, id);
}

/* True when this store already holds state for container id. */
static bool has_state(const struct ss_cluster *c, uint32_t id)
{
	char dir[4096];
	replica_dir(c, id, dir, sizeof(dir));
	DIR *d = opendir(dir);
	if (d == NULL) {
		return false;
	}
	bool any = false;
	struct dirent *e;
	while (!any && (e = readdir(d)) != NULL) {
		any = strcmp(e->d_name, ".") != 0 &&
		      strcmp(e->d_name, "..") != 0;
	}
	closedir(d);
	return any;
}

/* A replica ran here: its directory holds state, or its marker says it
 * had (raft/marker.h; a directory that lost its files refuses to start,
 * and is then retried like any replica with state, at growing
 * intervals). */
static bool had_replica(const struct ss_cluster *c, uint32_t id)
{
	char dir[4096], marker[4096 + 8];
	replica_dir(c, id, dir, sizeof(dir));
	if (has_state(c, id)) {
		return true;
	}
	return raft_marker_path(dir, marker, sizeof(marker)) &&
	       access(marker, F_OK) == 0;
}

/* Start the replica of container id with the given voters; on success it
 * is published in the table. Runs without the lock. */
static int start_replica(struct ss_cluster *c, uint32_t id,
                         const struct raft_group_peer *peers, unsigned n,
                         bool join, char *errmsg)
{
	char dir[4096];
	replica_dir(c, id, dir, sizeof(dir));
	struct container_config cfg = c->tmpl;
	cfg.id = id;
	cfg.node_id = c->node_id;
	cfg.data_dir = dir;
	cfg.peers = peers;
	cfg.n_peers = n;
	cfg.join = join;
	cfg.self_address = c->raft_address;
	struct container *rep = NULL;
	int rc = container_start(c->host, &cfg, &rep, errmsg);
	atomic_store(&c->slots[id].start_failed, rc != 0);
	if (rc != 0) {
		return rc;
	}
	pthread_rwlock_wrlock(&c->lock);
	c->rep[id] = rep;
	pthread_rwlock_unlock(&c->lock);
	LOG_INFO("segmentstore",
	         "container %" PRIu32 ": replica %s with %u peer%s (data %s)",
	         id, join ? "joining a running group" : "started", n,
	         n == 1 ? "" : "s", dir);
	return 0;
}

/* Unpublish and stop the replica of container id (no-op if none). */
static void stop_replica(struct ss_cluster *c, uint32_t id)
{
	pthread_rwlock_wrlock(&c->lock);
	struct container *rep = c->rep[id];
	c->rep[id] = NULL;
	pthread_rwlock_unlock(&c->lock);
	if (rep != NULL) {
		container_stop(rep);
		LOG_INFO("segmentstore",
		         "container %" PRIu32 ": replica stopped", id);
	}
}

static void stop_all(struct ss_cluster *c)
{
	for (uint32_t id = 0; id < c->count; id++) {
		stop_replica(c, id);
	}
}

static int start_standalone(struct ss_cluster *c, char *errmsg)
{
	struct raft_group_peer self = {.id = c->node_id,
	                               .address = c->raft_address};
	for (uint32_t id = 0; id < c->count; id++) {
		char why[STRATA_ERRMSG_SIZE];
		int rc = start_replica(c, id, &self, 1, false, why);
		if (rc != 0) {
			setmsg(errmsg, "start container %" PRIu32 ": %s", id,
			       why);
			stop_all(c);
			return rc;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ recovery */

static bool nap(struct ss_cluster *c, uint64_t ms);

/* Restart, after a wait, the replicas whose Raft log failed: the restart
 * reloads the log up to its last good write (nothing acknowledged is
 * lost), so a disk that has space again, or a passing error, recovers
 * without restarting the process. A replica that fails again, or does not
 * start, waits twice as long next time, up to CL_RECOVER_MAX_MS.
 * Standalone: started again here; with controllers, reconcile() starts it
 * (its state is on disk) and leaves it alone while a retry is planned.
 * Membership thread. */
static void heal(struct ss_cluster *c, bool standalone)
{
	uint64_t now = clock_mono_ms();
	for (uint32_t id = 0; id < c->count; id++) {
		struct slot *s = &c->slots[id];
		bool running = false;
		bool failed = false;
		pthread_rwlock_rdlock(&c->lock);
		bool assigned = standalone || s->here;
		if (c->rep[id] != NULL) {
			struct container_status st;
			container_status(c->rep[id], &st);
			running = true;
			failed = st.log_failed;
		}
		pthread_rwlock_unlock(&c->lock);
		if (!assigned) {
			s->down = false;
			s->retry_ms = 0;
			continue;
		}
		if (s->down && running) {
			s->down = false; /* started again */
		}
		if (!failed && !s->down) {
			if (s->wait_ms != 0 &&
			    now - s->restarted_ms >= CL_RECOVER_RESET_MS) {
				s->wait_ms = 0; /* recovered for good */
			}
			continue;
		}
		if (s->retry_ms == 0) {
			s->wait_ms = s->wait_ms == 0 ? c->recover_ms
			             : 2 * s->wait_ms > CL_RECOVER_MAX_MS
			                     ? CL_RECOVER_MAX_MS
			                     : 2 * s->wait_ms;
			s->retry_ms = now + s->wait_ms;
			if (failed) {
				LOG_WARN(
				        "segmentstore",
				        "container %" PRIu32
				        ": its replica left the group because "
				        "its Raft log failed; restarting it in "
				        "%" PRIu64
				        " s (it reloads its log from disk; "
				        "nothing acknowledged is lost)",
				        id, s->wait_ms / 1000);
			} else {
				LOG_WARN(
				        "segmentstore",
				        "container %" PRIu32
				        ": its replica did not start (the "
				        "error above); trying again in %" PRIu64
				        " s",
				        id, s->wait_ms / 1000);
			}
			continue;
		}
		if (now < s->retry_ms) {
			continue;
		}
		s->retry_ms = 0;
		s->restarted_ms = now;
		LOG_INFO("segmentstore", "container %" PRIu32 ": %s", id,
		         failed ? "restarting its replica after a Raft log "
		                  "failure"
		                : "starting its replica again");
		stop_replica(c, id);
		s->down = true;
		if (standalone) {
			struct raft_group_peer self = {
			        .id = c->node_id, .address = c->raft_address};
			char why[STRATA_ERRMSG_SIZE];
			int rc = start_replica(c, id, &self, 1, false, why);
			if (rc != 0) {
				LOG_ERROR("segmentstore",
				          "container %" PRIu32
				          ": replica did not start again: %s",
				          id, why);
			}
		}
	}
}

/* Give freed memory back to the OS once the C library holds at least
 * CL_TRIM_BYTES of it free and more free than in use (a drained tail, an
 * emptied cache, a replayed log; not the churn of steady load, where a
 * trim would only make the next allocations fault their pages in
 * again), at most every CL_TRIM_MS. glibc keeps what a busy process
 * freed: a QA run saw a store keep 477 MB with nothing unflushed or
 * cached after a tier-2 outage; measured here: 240 MB written and
 * flushed, RSS 225 MB -> 120 MB. Process-wide, as the heap is (tests run
 * several stores in one process). */
static void trim_memory(void)
{
	static _Atomic uint64_t last_ms;
	uint64_t now = clock_mono_ms();
	if (now - atomic_load(&last_ms) < CL_TRIM_MS) {
		return;
	}
	size_t used = 0;
	size_t held = strata_mem_free_held(&used);
	if (held >= CL_TRIM_BYTES && held > used) {
		strata_mem_release();
		atomic_store(&last_ms, now);
	}
}

static void *standalone_main(void *arg)
{
	struct ss_cluster *c = arg;
	for (;;) {
		if (nap(c, CL_STANDALONE_TICK_MS)) {
			break;
		}
		heal(c, true);
		trim_memory();
	}
	return NULL;
}

/* ------------------------------------------------------------ controller */

/* Record a reply's assignment (lock held exclusively). */
static int record_assignment(struct ss_cluster *c,
                             const Strata__V1__AssignmentReply *a)
{
	uint64_t now = clock_mono_ms();
	if (a->lease_ms != 0) {
		c->lease_ms = a->lease_ms;
	}
	bool changed = a->assignment_version != c->assignment_version;
	c->assignment_version = a->assignment_version;
	for (size_t i = 0; i < a->n_containers; i++) {
		const Strata__V1__ContainerReplicas *cr = a->containers[i];
		if (cr == NULL || cr->container >= c->count) {
			continue;
		}
		struct slot *s = &c->slots[cr->container];
		uint64_t ids[CL_MAX_REPLICAS];
		size_t n = 0;
		bool here = false;
		for (size_t j = 0; j < cr->n_replicas; j++) {
			const Strata__V1__StoreEndpoint *e = cr->replicas[j];
			if (e == NULL || e->node_id == 0) {
				continue;
			}
			if (put_ep(c, e) != 0) {
				return STRATA_ENOMEM;
			}
			if (n < CL_MAX_REPLICAS) {
				ids[n++] = e->node_id;
			}
			here = here || e->node_id == c->node_id;
		}
		bool same = n == s->n &&
		            memcmp(ids, s->replicas, n * sizeof(*ids)) == 0;
		if (!same) {
			memcpy(s->replicas, ids, n * sizeof(*ids));
			s->n = n;
			s->since_ms = now;
			if (c->rep[cr->container] != NULL && here) {
				LOG_INFO("segmentstore",
				         "container %" PRIu32
				         ": replica set changed to %zu "
				         "stores; its leader moves the Raft "
				         "voters there",
				         cr->container, n);
			}
		}
		s->leader = cr->leader_node_id;
		s->here = here;
	}
	if (changed) {
		LOG_INFO("segmentstore",
		         "assignment version %" PRIu64 " received (%zu "
		         "containers, lease %" PRIu64 " ms)",
		         a->assignment_version, a->n_containers, c->lease_ms);
	}
	return 0;
}

/* Whether a replica no longer assigned here may stop now: it is not a
 * voter of its group as it sees it, or it has known no leader for
 * CL_ORPHAN_MS. Called with c->lock held; membership thread. */
static bool may_stop_unassigned(struct ss_cluster *c, struct slot *s,
                                struct container *rep, uint64_t now)
{
	struct container_status st;
	container_status(rep, &st);
	struct raft_group_member m[CL_MAX_REPLICAS];
	struct raft_group *g = container_raft_group(rep);
	unsigned k =
	        g != NULL ? raft_group_members(g, m, CL_MAX_REPLICAS, NULL) : 0;
	bool voter = false;
	for (unsigned i = 0; i < k && i < CL_MAX_REPLICAS; i++) {
		voter = voter || (m[i].id == c->node_id &&
		                  m[i].role == RAFT_MEMBER_VOTER);
	}
	if (st.leader_id != 0) {
		s->leaderless_ms = 0;
	} else if (s->leaderless_ms == 0) {
		s->leaderless_ms = now;
	}
	bool orphan =
	        s->leaderless_ms != 0 && now - s->leaderless_ms >= CL_ORPHAN_MS;
	if (voter && !orphan && s->kept_ms == 0) {
		s->kept_ms = now;
		LOG_INFO(
		        "segmentstore",
		        "container %" PRIu32 " is no longer assigned to this "
		        "store, but its replica here is still a voter: it runs "
		        "until the leader has moved the voters",
		        s->id);
	}
	return !voter || orphan;
}

/* Start and stop replicas to match the recorded assignment. Membership
 * thread only (the only writer of rep[]). */
static void reconcile(struct ss_cluster *c)
{
	uint64_t now = clock_mono_ms();
	for (uint32_t id = 0; id < c->count; id++) {
		struct raft_group_peer peers[CL_MAX_REPLICAS];
		char addrs[CL_MAX_REPLICAS][CL_ADDR_MAX];
		unsigned n = 0;
		bool start = false;
		bool join = false;
		bool stop = false;
		pthread_rwlock_wrlock(&c->lock);
		struct slot *s = &c->slots[id];
		bool running = c->rep[id] != NULL;
		/* A replica heal() restarts later is not started now. */
		bool waiting = s->down && s->retry_ms != 0;
		bool state = false;
		if (s->here && !running && !waiting) {
			state = had_replica(c, id);
			if (state) {
				start = true;
			} else if (s->leader != 0 && s->leader != c->node_id) {
				start = true;
				join = true;
			} else if (now - s->since_ms >= c->settle_ms) {
				start = true;
			}
			for (size_t i = 0; start && i < s->n; i++) {
				const struct endpoint *ep =
				        find_ep(c, s->replicas[i]);
				if (ep == NULL || ep->raft[0] == '\0' ||
				    (join && ep->node_id == c->node_id)) {
					continue;
				}
				copy_str(addrs[n], CL_ADDR_MAX, ep->raft);
				peers[n].id = ep->node_id;
				peers[n].address = addrs[n];
				n++;
			}
		} else if (!s->here && running) {
			stop = may_stop_unassigned(c, s, c->rep[id], now);
		}
		if (s->here || !running) {
			s->kept_ms = 0;
			s->leaderless_ms = 0;
		}
		pthread_rwlock_unlock(&c->lock);
		if (start) {
			char why[STRATA_ERRMSG_SIZE];
			int rc = start_replica(c, id, peers, n, join, why);
			if (rc != 0) {
				/* A replica with state on disk that does not
				 * start (a damaged log, a failing disk) is
				 * retried by heal() at growing intervals; a new
				 * one at the next heartbeat. */
				LOG_ERROR("segmentstore",
				          "container %" PRIu32
				          ": replica did not start: %s; "
				          "retrying %s",
				          id, why,
				          state ? "after a wait"
				                : "at the next heartbeat");
				s->down = state;
			}
		}
		if (stop) {
			LOG_INFO("segmentstore",
			         "container %" PRIu32
			         " is no longer assigned to this store",
			         id);
			stop_replica(c, id);
		}
	}
}

static void members_done(void *arg, int status)
{
	struct slot *s = arg;
	if (status == 0) {
		LOG_INFO("segmentstore",
		         "container %" PRIu32
		         ": Raft voters now match the assignment",
		         s->id);
	} else {
		LOG_WARN("segmentstore",
		         "container %" PRIu32
		         ": changing the Raft voters failed: %s; retrying at "
		         "the next heartbeat",
		         s->id, strata_error_name(status));
	}
	atomic_store(&s->changing, false);
}

/* Where this store leads a container, move its voters to the assigned
 * replica set. Membership thread only. */
static void sync_members(struct ss_cluster *c)
{
	for (uint32_t id = 0; id < c->count; id++) {
		struct raft_group_peer voters[CL_MAX_REPLICAS];
		char addrs[CL_MAX_REPLICAS][CL_ADDR_MAX];
		unsigned n = 0;
		bool differ = false;
		struct raft_group *g = NULL;
		struct slot *s = &c->slots[id];
		pthread_rwlock_rdlock(&c->lock);
		struct container *rep = c->rep[id];
		if (rep != NULL && s->here && s->n > 0 &&
		    !atomic_load(&s->changing)) {
			struct container_status st;
			container_status(rep, &st);
			if (st.role == RAFT_GROUP_LEADER && st.ready) {
				g = container_raft_group(rep);
			}
		}
		for (size_t i = 0; g != NULL && i < s->n; i++) {
			const struct endpoint *ep = find_ep(c, s->replicas[i]);
			if (ep == NULL || ep->raft[0] == '\0') {
				g = NULL; /* an address is not known yet */
				break;
			}
			copy_str(addrs[n], CL_ADDR_MAX, ep->raft);
			voters[n].id = ep->node_id;
			voters[n].address = addrs[n];
			n++;
		}
		if (g != NULL) {
			struct raft_group_member m[CL_MAX_REPLICAS];
			unsigned k =
			        raft_group_members(g, m, CL_MAX_REPLICAS, NULL);
			unsigned nv = 0;
			for (unsigned i = 0; i < k && i < CL_MAX_REPLICAS;
			     i++) {
				bool want = false;
				for (unsigned j = 0; j < n; j++) {
					want = want || voters[j].id == m[i].id;
				}
				nv += m[i].role == RAFT_MEMBER_VOTER;
				differ = differ || !want ||
				         m[i].role != RAFT_MEMBER_VOTER;
			}
			differ = differ || nv != n || k > CL_MAX_REPLICAS;
		}
		if (g != NULL && differ) {
			atomic_store(&s->changing, true);
			LOG_INFO("segmentstore",
			         "container %" PRIu32
			         ": moving the Raft voters to the %u assigned "
			         "stores",
			         id, n);
			if (raft_group_set_members(g, voters, n, members_done,
			                           s) != 0) {
				atomic_store(&s->changing, false);
			}
		}
		pthread_rwlock_unlock(&c->lock);
	}
}

static void fill_endpoint(const struct ss_cluster *c,
                          Strata__V1__StoreEndpoint *e)
{
	e->node_id = c->node_id;
	e->client_url = (char *)c->client_url;
	e->raft_address = (char *)c->raft_address;
	e->http_url = (char *)c->http_url;
}

/* Read <data_dir>/cluster-id into c->cluster_id ("" when there is none:
 * a new store, or one from before cluster ids). STRATA_ECORRUPT when it
 * does not hold an id. */
static int load_cluster_id(struct ss_cluster *c, char *errmsg)
{
	c->cluster_id[0] = '\0';
	FILE *f = fopen(c->cluster_path, "r");
	if (f == NULL) {
		if (errno == ENOENT) {
			return 0;
		}
		setmsg(errmsg, "read %s: %s", c->cluster_path, strerror(errno));
		return STRATA_EIO;
	}
	char line[128] = "";
	bool got = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	size_t n = got ? strcspn(line, "\r\n") : 0;
	line[n] = '\0';
	bool ok = n > 0 && n < sizeof(c->cluster_id);
	for (size_t i = 0; ok && i < n; i++) {
		ok = isxdigit((unsigned char)line[i]) != 0;
	}
	if (!ok) {
		setmsg(errmsg,
		       "%s does not hold a cluster id (hex digits on one "
		       "line): restore it, or delete it to join whatever "
		       "cluster the controller is",
		       c->cluster_path);
		return STRATA_ECORRUPT;
	}
	memcpy(c->cluster_id, line, n + 1);
	return 0;
}

/* Write id to <data_dir>/cluster-id (temporary file, fsync, rename). */
static int save_cluster_id(struct ss_cluster *c, const char *id, char *errmsg)
{
	char tmp[4200];
	char failed[200];
	int me = files_mkdir_p(c->data_dir, failed, sizeof(failed));
	if (me != 0) {
		setmsg(errmsg, "create %s: %s", failed, strerror(me));
		return STRATA_EIO;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", c->cluster_path);
	FILE *f = fopen(tmp, "w");
	bool ok = f != NULL && fprintf(f, "%s\n", id) > 0 && fflush(f) == 0 &&
	          fsync(fileno(f)) == 0;
	int e = errno;
	if (f != NULL && fclose(f) != 0 && ok) {
		ok = false;
		e = errno;
	}
	if (ok && rename(tmp, c->cluster_path) != 0) {
		ok = false;
		e = errno;
	}
	if (!ok) {
		unlink(tmp);
		setmsg(errmsg, "write %s: %s", c->cluster_path, strerror(e));
		return STRATA_EIO;
	}
	return 0;
}

/* The controller's cluster id against this store's: adopt it when the
 * store has none yet, refuse another one (STRATA_ECONFIG). */
static int check_cluster_id(struct ss_cluster *c, const char *theirs,
                            char *errmsg)
{
	if (theirs == NULL || theirs[0] == '\0') {
		if (c->cluster_id[0] == '\0') {
			return 0; /* neither has one yet */
		}
		setmsg(errmsg, "the controller has no cluster id yet (it is "
		               "starting); waiting for it");
		return STRATA_EUNAVAIL;
	}
	if (c->cluster_id[0] == '\0') {
		if (strlen(theirs) >= sizeof(c->cluster_id)) {
			setmsg(errmsg, "the controller's cluster id is longer "
			               "than 64 characters");
			return STRATA_EPROTO;
		}
		int rc = save_cluster_id(c, theirs, errmsg);
		if (rc == 0) {
			snprintf(c->cluster_id, sizeof(c->cluster_id), "%s",
			         theirs);
			LOG_INFO("segmentstore",
			         "joined cluster %s (recorded in %s)", theirs,
			         c->cluster_path);
		}
		return rc;
	}
	if (strcmp(c->cluster_id, theirs) != 0) {
		setmsg(errmsg,
		       "this store's data is of cluster %.32s, the controller "
		       "is %.32s: restore the controller's data directory if "
		       "it was emptied or not mounted, point the store at its "
		       "cluster, or give it an empty data directory",
		       c->cluster_id, theirs);
		return STRATA_ECONFIG;
	}
	return 0;
}

/* One register or heartbeat round trip; 0 and the assignment recorded. */
static int exchange(struct ss_cluster *c, bool reg, char *errmsg)
{
	Strata__V1__StoreEndpoint ep = STRATA__V1__STORE_ENDPOINT__INIT;
	Strata__V1__RegisterStoreRequest rr =
	        STRATA__V1__REGISTER_STORE_REQUEST__INIT;
	Strata__V1__StoreHeartbeatRequest hb =
	        STRATA__V1__STORE_HEARTBEAT_REQUEST__INIT;
	Strata__V1__ContainerReport *reports = NULL;
	Strata__V1__ContainerReport **rptrs = NULL;
	const ProtobufCMessage *req;
	uint32_t method;
	if (reg) {
		fill_endpoint(c, &ep);
		rr.store = &ep;
		rr.container_count = c->count;
		rr.cluster_id = c->cluster_id;
		req = &rr.base;
		method = CL_REGISTER;
	} else {
		reports = strata_calloc(c->count, sizeof(*reports));
		rptrs = strata_calloc(c->count, sizeof(*rptrs));
		if (reports == NULL || rptrs == NULL) {
			strata_free(reports);
			strata_free(rptrs);
			setmsg(errmsg, "heartbeat: out of memory");
			return STRATA_ENOMEM;
		}
		hb.node_id = c->node_id;
		pthread_rwlock_rdlock(&c->lock);
		for (uint32_t id = 0; id < c->count; id++) {
			if (c->rep[id] == NULL && !c->slots[id].here) {
				continue;
			}
			Strata__V1__ContainerReport *r =
			        &reports[hb.n_containers];
			strata__v1__container_report__init(r);
			r->container = id;
			/* Assigned here but not running (it did not start,
			 * or waits to): role 0, so that a leadership the
			 * controller recorded before a crash is cleared. */
			if (c->rep[id] != NULL) {
				struct container_status st;
				container_status(c->rep[id], &st);
				r->role = st.role;
				r->term = st.term;
				r->unflushed_bytes = st.unflushed_bytes;
			}
			rptrs[hb.n_containers++] = r;
		}
		pthread_rwlock_unlock(&c->lock);
		hb.containers = rptrs;
		req = &hb.base;
		method = CL_HEARTBEAT;
	}
	ProtobufCMessage *rep = NULL;
	int rc = rpc_call_pb(c->ctl, method, RPC_IDEMPOTENT, req,
	                     &strata__v1__assignment_reply__descriptor, &rep,
	                     errmsg);
	strata_free(reports);
	strata_free(rptrs);
	if (rc != 0) {
		return rc;
	}
	const Strata__V1__AssignmentReply *a = (const void *)rep;
	if (a->container_count != 0 && a->container_count != c->count) {
		setmsg(errmsg,
		       "the controller's cluster has %" PRIu32
		       " containers but this store is configured with %" PRIu32
		       "; set containers.count to %" PRIu32,
		       a->container_count, c->count, a->container_count);
		rpc_pb_free(rep);
		return STRATA_ECONFIG;
	}
	rc = check_cluster_id(c, a->cluster_id, errmsg);
	if (rc != 0) {
		rpc_pb_free(rep);
		return rc;
	}
	pthread_rwlock_wrlock(&c->lock);
	rc = record_assignment(c, a);
	pthread_rwlock_unlock(&c->lock);
	rpc_pb_free(rep);
	if (rc != 0) {
		setmsg(errmsg, "recording the assignment: out of memory");
	}
	return rc;
}

/* Sleep up to ms unless stopping; true when stopping. */
static bool nap(struct ss_cluster *c, uint64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->stop_mu);
	while (!c->stopping) {
		if (pthread_cond_timedwait(&c->stop_cv, &c->stop_mu, &ts) ==
		    ETIMEDOUT) {
			break;
		}
	}
	bool stopping = c->stopping;
	pthread_mutex_unlock(&c->stop_mu);
	return stopping;
}

static void *membership_main(void *arg)
{
	struct ss_cluster *c = arg;
	uint64_t backoff = CL_RETRY_MIN_MS;
	int last_rc = 0;
	for (;;) {
		char why[STRATA_ERRMSG_SIZE];
		why[0] = '\0';
		bool reg = !atomic_load(&c->registered);
		int rc = exchange(c, reg, why);
		if (rc == 0) {
			if (reg || last_rc != 0) {
				LOG_INFO("segmentstore",
				         "%s with the controller as node "
				         "%" PRIu64 " (%s)",
				         reg ? "registered" : "heartbeat ok",
				         c->node_id, c->client_url);
			}
			atomic_store(&c->registered, true);
			backoff = CL_RETRY_MIN_MS;
			heal(c, false);
			reconcile(c);
			sync_members(c);
			trim_memory();
		} else if (rc == STRATA_ECONFIG) {
			/* Wrong count or another cluster: retrying cannot
			 * help, the operator must act. */
			if (!c->fatal_told) {
				c->fatal_told = true;
				LOG_ERROR("segmentstore",
				          "cannot join the cluster: %s", why);
				if (c->on_fatal != NULL) {
					c->on_fatal(c->fatal_arg, why);
				}
			}
			atomic_store(&c->registered, false);
		} else {
			if (rc != last_rc) {
				LOG_WARN("segmentstore",
				         "%s with the controller "
				         "failed: %s (%s); retrying",
				         reg ? "registration" : "heartbeat",
				         strata_error_name(rc), why);
			}
			/* A controller that does not know us any more (lease
			 * expired, state lost): register again. */
			if (!reg && rc != STRATA_ETIMEDOUT &&
			    rc != STRATA_EUNAVAIL && rc != STRATA_ECLOSED &&
			    rc != STRATA_ESHUTDOWN) {
				atomic_store(&c->registered, false);
			}
		}
		last_rc = rc;
		uint64_t wait;
		if (rc == 0) {
			pthread_rwlock_rdlock(&c->lock);
			uint64_t lease = c->lease_ms;
			pthread_rwlock_unlock(&c->lock);
			wait = lease / 3 != 0 ? lease / 3 : 1;
			/* Come back soon while a group waits to settle. */
			if (wait > c->settle_ms / 2 + 1) {
				bool pending = false;
				pthread_rwlock_rdlock(&c->lock);
				for (uint32_t id = 0; id < c->count; id++) {
					pending =
					        pending || (c->slots[id].here &&
					                    c->rep[id] == NULL);
				}
				pthread_rwlock_unlock(&c->lock);
				if (pending) {
					wait = c->settle_ms / 2 + 1;
				}
			}
		} else {
			wait = backoff;
			backoff = backoff * 2 > CL_RETRY_MAX_MS
			                  ? CL_RETRY_MAX_MS
			                  : backoff * 2;
		}
		if (nap(c, wait)) {
			break;
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ metrics -- */

static int metric_value(void *arg, double *value)
{
	const struct metric_arg *m = arg;
	struct ss_cluster *c = m->c;
	int rc = 1;
	double total = 0;
	pthread_rwlock_rdlock(&c->lock);
	for (uint32_t id = 0; id < c->count; id++) {
		if (m->container != UINT32_MAX && m->container != id) {
			continue;
		}
		if (c->rep[id] == NULL) {
			continue;
		}
		struct container_status st;
		container_status(c->rep[id], &st);
		double v = 0;
		switch (m->kind) {
		case MK_ROLE:
			v = st.role;
			break;
		case MK_TERM:
			v = (double)st.term;
			break;
		case MK_LEADER:
			v = st.role == RAFT_GROUP_LEADER && st.ready ? 1 : 0;
			break;
		case MK_UNFLUSHED:
			v = (double)st.unflushed_bytes;
			break;
		case MK_CACHE:
			v = (double)st.cache_bytes;
			break;
		case MK_SEGMENTS:
			v = (double)st.segments;
			break;
		case MK_DEGRADED:
			v = st.tier2_degraded ? 1 : 0;
			break;
		case MK_LOG_FAILED:
			v = st.log_failed ? 1 : 0;
			break;
		default:
			break;
		}
		total += v;
		rc = 0;
	}
	pthread_rwlock_unlock(&c->lock);
	if (m->container == UINT32_MAX) {
		rc = 0; /* totals always render (0 when nothing hosted) */
	}
	*value = total;
	return rc;
}

static int register_metrics(struct ss_cluster *c, struct metrics_registry *reg,
                            char *errmsg)
{
	static const struct {
		const char *name;
		const char *help;
		const char *total_name; /* NULL: no store-wide series */
		const char *total_help;
	} defs[MK_COUNT] = {
	        [MK_ROLE] = {"strata_segmentstore_container_raft_role",
	                     "Raft role of this store's replica (1 "
	                     "follower, 2 candidate, 3 leader).",
	                     NULL, NULL},
	        [MK_TERM] = {"strata_segmentstore_container_raft_term",
	                     "Raft term of this store's replica.", NULL, NULL},
	        [MK_LEADER] = {"strata_segmentstore_container_leader",
	                       "1 when this store's replica is the ready "
	                       "leader.",
	                       "strata_segmentstore_containers_led",
	                       "Containers this store leads."},
	        [MK_UNFLUSHED] = {"strata_segmentstore_container_unflushed_"
	                          "bytes",
	                          "Tier-1 bytes not yet flushed to tier 2.",
	                          "strata_segmentstore_unflushed_bytes",
	                          "Tier-1 bytes not yet in tier 2, all "
	                          "containers."},
	        [MK_CACHE] = {"strata_segmentstore_container_cache_bytes",
	                      "Read cache in use.",
	                      "strata_segmentstore_cache_bytes",
	                      "Read cache in use, all containers."},
	        [MK_SEGMENTS] = {"strata_segmentstore_container_segments",
	                         "Live segments.", NULL, NULL},
	        [MK_DEGRADED] = {"strata_segmentstore_container_tier2_"
	                         "degraded",
	                         "1 while tier-2 writes are failing and "
	                         "flushes retry.",
	                         "strata_segmentstore_tier2_degraded_"
	                         "containers",
	                         "Containers whose tier-2 writes are "
	                         "failing."},
	        [MK_LOG_FAILED] = {"strata_segmentstore_container_log_failed",
	                           "1 once a write to this replica's Raft "
	                           "log failed: it left its group until the "
	                           "store restarts.",
	                           "strata_segmentstore_log_failed_containers",
	                           "Containers whose replica here left its "
	                           "group after a Raft log write failed."},
	};
	for (uint32_t id = 0; id <= c->count; id++) {
		bool total = id == c->count;
		char label[16];
		snprintf(label, sizeof(label), "%" PRIu32, id);
		struct metrics_label l = {.name = "container", .value = label};
		for (int k = 0; k < MK_COUNT; k++) {
			struct metric_arg *m = &c->margs[id * MK_COUNT + k];
			m->c = c;
			m->container = total ? UINT32_MAX : id;
			m->kind = (enum metric_kind)k;
			const char *name =
			        total ? defs[k].total_name : defs[k].name;
			if (name == NULL) {
				continue;
			}
			int rc = metrics_callback_register(
			        reg, METRICS_GAUGE, name,
			        total ? defs[k].total_help : defs[k].help,
			        total ? NULL : &l, total ? 0 : 1, metric_value,
			        m, errmsg);
			if (rc != 0) {
				return rc;
			}
		}
	}
	return 0;
}

/* ---------------------------------------------------------- lifecycle -- */

int ss_cluster_start(const struct ss_cluster_config *cfg,
                     struct ss_cluster **out, char *errmsg)
{
	if (cfg == NULL || out == NULL || cfg->node_id == 0 ||
	    cfg->data_dir == NULL || cfg->container_count == 0 ||
	    cfg->host == NULL || cfg->raft_address == NULL ||
	    cfg->client_url == NULL) {
		setmsg(errmsg, "segment store membership: node id, data "
		               "directory, container count, Raft host and "
		               "addresses are required");
		return STRATA_EINVAL;
	}
	int rc = STRATA_ENOMEM;
	struct ss_cluster *c = strata_calloc(1, sizeof(*c));
	if (c == NULL) {
		goto err_oom;
	}
	c->node_id = cfg->node_id;
	c->count = cfg->container_count;
	c->tmpl = cfg->tmpl;
	c->tmpl.metrics = cfg->metrics; /* per-container series */
	c->host = cfg->host;
	c->rpc_timeout_ms =
	        cfg->rpc_timeout_ms != 0 ? cfg->rpc_timeout_ms : 2000;
	c->settle_ms = cfg->settle_ms != 0 ? cfg->settle_ms : 3000;
	c->recover_ms = cfg->recover_ms != 0 ? cfg->recover_ms : CL_RECOVER_MS;
	c->lease_ms = CL_DEFAULT_LEASE_MS;
	copy_str(c->client_url, sizeof(c->client_url), cfg->client_url);
	copy_str(c->raft_address, sizeof(c->raft_address), cfg->raft_address);
	copy_str(c->http_url, sizeof(c->http_url), cfg->http_url);
	c->data_dir = strata_strdup(cfg->data_dir);
	c->rep = strata_calloc(c->count, sizeof(*c->rep));
	c->slots = strata_calloc(c->count, sizeof(*c->slots));
	c->margs = strata_calloc((size_t)(c->count + 1) * MK_COUNT,
	                         sizeof(*c->margs));
	if (c->data_dir == NULL || c->rep == NULL || c->slots == NULL ||
	    c->margs == NULL) {
		goto err_free;
	}
	for (uint32_t id = 0; id < c->count; id++) {
		c->slots[id].id = id;
		atomic_init(&c->slots[id].changing, false);
	}
	pthread_rwlock_init(&c->lock, NULL);
	pthread_mutex_init(&c->stop_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&c->stop_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (cfg->metrics != NULL) {
		rc = register_metrics(c, cfg->metrics, errmsg);
		if (rc != 0) {
			goto err_sync;
		}
	}
	bool standalone =
	        cfg->controllers == NULL || cfg->controllers[0] == '\0';
	if (standalone) {
		rc = start_standalone(c, errmsg);
		if (rc != 0) {
			goto err_sync;
		}
		if (pthread_create(&c->thread, NULL, standalone_main, c) != 0) {
			stop_all(c);
			setmsg(errmsg, "segment store: cannot start a thread");
			rc = STRATA_EIO;
			goto err_sync;
		}
		c->thread_started = true;
		LOG_INFO("segmentstore",
		         "standalone: hosting all %" PRIu32
		         " containers as single-replica groups",
		         c->count);
		*out = c;
		return 0;
	}
	c->on_fatal = cfg->on_fatal;
	c->fatal_arg = cfg->fatal_arg;
	size_t pl = strlen(c->data_dir) + sizeof("/cluster-id");
	c->cluster_path = strata_malloc(pl);
	if (c->cluster_path == NULL) {
		rc = STRATA_ENOMEM;
		goto err_sync;
	}
	snprintf(c->cluster_path, pl, "%s/cluster-id", c->data_dir);
	rc = load_cluster_id(c, errmsg);
	if (rc != 0) {
		goto err_sync;
	}
	/* Split the comma-separated controller list. */
	char *list = strata_strdup(cfg->controllers);
	const char *urls[RPC_MAX_ENDPOINTS];
	size_t n = 0;
	if (list == NULL) {
		rc = STRATA_ENOMEM;
		goto err_sync;
	}
	for (char *save = NULL, *tok = strtok_r(list, ", ", &save);
	     tok != NULL && n < RPC_MAX_ENDPOINTS;
	     tok = strtok_r(NULL, ", ", &save)) {
		urls[n++] = tok;
	}
	if (n == 0) {
		strata_free(list);
		setmsg(errmsg,
		       "controller: no URL in \"%s\"; give a "
		       "comma-separated list of controller client URLs "
		       "or leave it empty for standalone mode",
		       cfg->controllers);
		rc = STRATA_ECONFIG;
		goto err_sync;
	}
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.timeout_ms = (int)c->rpc_timeout_ms;
	o.retries = 1;
	char why[STRATA_ERRMSG_SIZE];
	rc = rpc_client_open(&c->ctl, urls, n, &o, why);
	strata_free(list);
	if (rc != 0) {
		setmsg(errmsg, "controller: %s", why);
		goto err_sync;
	}
	if (pthread_create(&c->thread, NULL, membership_main, c) != 0) {
		setmsg(errmsg, "segment store membership: cannot start a "
		               "thread");
		rc = STRATA_EIO;
		goto err_client;
	}
	c->thread_started = true;
	LOG_INFO("segmentstore",
	         "cluster mode: node %" PRIu64 " registering with %zu "
	         "controller(s) at %s",
	         c->node_id, n, cfg->controllers);
	*out = c;
	return 0;

err_client:
	rpc_client_close(c->ctl);
err_sync:
	pthread_cond_destroy(&c->stop_cv);
	pthread_mutex_destroy(&c->stop_mu);
	pthread_rwlock_destroy(&c->lock);
err_free:
	strata_free(c->margs);
	strata_free(c->slots);
	strata_free(c->rep);
	strata_free(c->cluster_path);
	strata_free(c->data_dir);
	strata_free(c);
	if (rc == STRATA_ENOMEM) {
		goto err_oom;
	}
	return rc;
err_oom:
	setmsg(errmsg, "segment store membership: out of memory");
	return STRATA_ENOMEM;
}

void ss_cluster_stop(struct ss_cluster *c)
{
	if (c == NULL) {
		return;
	}
	if (c->thread_started) {
		pthread_mutex_lock(&c->stop_mu);
		c->stopping = true;
		pthread_cond_broadcast(&c->stop_cv);
		pthread_mutex_unlock(&c->stop_mu);
		pthread_join(c->thread, NULL);
	}
	if (c->ctl != NULL) {
		if (atomic_load(&c->registered)) {
			Strata__V1__UnregisterStoreRequest u =
			        STRATA__V1__UNREGISTER_STORE_REQUEST__INIT;
			u.node_id = c->node_id;
			char why[STRATA_ERRMSG_SIZE];
			uint8_t buf[32];
			size_t len = strata__v1__unregister_store_request__pack(
			        &u, buf);
			uint8_t *rep = NULL;
			size_t rep_len = 0;
			int rc = rpc_call(c->ctl, CL_UNREGISTER, 0, buf, len,
			                  &rep, &rep_len, why);
			strata_free(rep);
			if (rc != 0) {
				LOG_WARN("segmentstore",
				         "unregister from the controller: %s "
				         "(its lease will expire instead)",
				         why);
			}
		}
		rpc_client_close(c->ctl);
	}
	stop_all(c);
	pthread_cond_destroy(&c->stop_cv);
	pthread_mutex_destroy(&c->stop_mu);
	pthread_rwlock_destroy(&c->lock);
	strata_free(c->eps);
	strata_free(c->margs);
	strata_free(c->slots);
	strata_free(c->rep);
	strata_free(c->cluster_path);
	strata_free(c->data_dir);
	strata_free(c);
}

/* ---------------------------------------------------------- readiness -- */

enum http_readiness ss_cluster_ready(void *arg, struct buf *detail)
{
	struct ss_cluster *c = arg;
	unsigned hosted = 0, led = 0, leaderless = 0, degraded = 0;
	unsigned log_failed = 0, down = 0;
	pthread_rwlock_rdlock(&c->lock);
	for (uint32_t id = 0; id < c->count; id++) {
		if (c->rep[id] == NULL) {
			/* Assigned here, with state, and not running: its
			 * replica did not start (a damaged or lost log). */
			down += c->slots[id].here && c->slots[id].down;
			continue;
		}
		struct container_status st;
		container_status(c->rep[id], &st);
		hosted++;
		led += st.role == RAFT_GROUP_LEADER && st.ready;
		leaderless += st.leader_id == 0;
		degraded += st.tier2_degraded;
		log_failed += st.log_failed;
	}
	bool registered = c->ctl == NULL || atomic_load(&c->registered);
	pthread_rwlock_unlock(&c->lock);
	char text[256];
	snprintf(text, sizeof(text),
	         "{\"node\":%" PRIu64 ",\"containers\":%u,\"led\":%u,"
	         "\"without_leader\":%u,\"tier2_degraded\":%u,"
	         "\"log_failed\":%u,\"down\":%u,\"registered\":%s}",
	         c->node_id, hosted, led, leaderless, degraded, log_failed,
	         down, registered ? "true" : "false");
	if (detail != NULL) {
		(void)buf_append(detail, text, strlen(text));
	}
	if (!registered || hosted == 0 || leaderless != 0) {
		return HTTP_NOT_READY;
	}
	/* A replica whose log failed: the others lead that container, this
	 * store still serves the rest (and without them, no leader above). */
	return degraded != 0 || log_failed != 0 || down != 0 ? HTTP_DEGRADED
	                                                     : HTTP_READY;
}

bool ss_cluster_wait_leaders(struct ss_cluster *c, unsigned timeout_ms)
{
	uint64_t deadline = clock_mono_ms() + timeout_ms;
	for (;;) {
		bool all = true;
		pthread_rwlock_rdlock(&c->lock);
		for (uint32_t id = 0; id < c->count; id++) {
			if (c->rep[id] == NULL) {
				continue;
			}
			struct container_status st;
			container_status(c->rep[id], &st);
			all = all && st.leader_id != 0 &&
			      (st.leader_id != c->node_id || st.ready);
		}
		pthread_rwlock_unlock(&c->lock);
		if (all) {
			return true;
		}
		if (clock_mono_ms() >= deadline) {
			return false;
		}
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
}
