/* Unit tests for raft/group.c: hosts with loop threads on 127.0.0.1,
 * groups of one or three replicas, budget, roles, snapshots by bytes,
 * catch-up of a restarted replica by snapshot install. */
#include <dirent.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include <uv.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/process.h"
#include "raft/group.h"
#include "strata/error.h"
#ifdef STRATA_LIBRAFT_FAULTS
#include "tests/unit/raft/libraft_faults.h"
#endif

/* ---- a checksumming FSM ----------------------------------------------------
 */

/* Entries of ID_LEN bytes carry an id (< IDS) in their first 4 bytes: the
 * FSM records which it applied (no other test uses that length). */
#define ID_LEN 777
#define IDS 1024

struct sum_fsm {
	_Atomic uint64_t count;  /* entries applied */
	_Atomic uint64_t hash;   /* chained FNV-1a over entry bytes */
	_Atomic uint64_t index;  /* last applied index */
	_Atomic int roles;       /* role_changed calls */
	_Atomic int ready;       /* last ready flag seen */
	_Atomic int log_failed;  /* last log_failed flag seen */
	_Atomic int restores;    /* restore calls */
	_Atomic int members;     /* members_changed calls */
	_Atomic unsigned voters; /* voters in the last configuration seen */
	_Atomic unsigned char
	        ids[IDS]; /* entries of ID_LEN bytes seen, by id */
};

static uint64_t fnv(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	for (size_t i = 0; i < len; i++) {
		h = (h ^ p[i]) * 1099511628211ull;
	}
	return h;
}

static int sf_apply(void *data, uint64_t index, const void *buf, size_t len,
                    void **result)
{
	struct sum_fsm *f = data;
	uint64_t h = atomic_load(&f->hash);
	atomic_store(&f->hash, fnv(h ? h : 1469598103934665603ull, buf, len));
	atomic_fetch_add(&f->count, 1);
	atomic_store(&f->index, index);
	uint32_t id;
	if (len == ID_LEN && (memcpy(&id, buf, 4), id < IDS)) {
		atomic_store(&f->ids[id], 1);
	}
	*result = (void *)(uintptr_t)index;
	return 0;
}

static int sf_snapshot(void *data, void **buf, size_t *len)
{
	struct sum_fsm *f = data;
	uint64_t *v = strata_malloc(2 * sizeof(uint64_t));
	if (v == NULL) {
		return STRATA_ENOMEM;
	}
	v[0] = atomic_load(&f->count);
	v[1] = atomic_load(&f->hash);
	*buf = v;
	*len = 2 * sizeof(uint64_t);
	return 0;
}

static int sf_restore(void *data, const void *buf, size_t len)
{
	struct sum_fsm *f = data;
	uint64_t v[2];
	if (len != sizeof(v)) {
		return STRATA_ECORRUPT;
	}
	memcpy(v, buf, sizeof(v));
	atomic_store(&f->count, v[0]);
	atomic_store(&f->hash, v[1]);
	atomic_fetch_add(&f->restores, 1);
	return 0;
}

static void sf_role(void *data, const struct raft_group_status *st)
{
	struct sum_fsm *f = data;
	atomic_fetch_add(&f->roles, 1);
	atomic_store(&f->ready, st->ready);
	atomic_store(&f->log_failed, st->log_failed);
}

static void sf_members(void *data, const struct raft_group_member *m,
                       unsigned n, bool committed)
{
	struct sum_fsm *f = data;
	unsigned voters = 0;
	(void)committed;
	for (unsigned i = 0; i < n; i++) {
		voters += m[i].role == RAFT_MEMBER_VOTER;
	}
	atomic_store(&f->voters, voters);
	atomic_fetch_add(&f->members, 1);
}

static struct raft_group_fsm sf_hooks(struct sum_fsm *f)
{
	struct raft_group_fsm h = {.data = f,
	                           .apply = sf_apply,
	                           .snapshot = sf_snapshot,
	                           .restore = sf_restore,
	                           .role_changed = sf_role,
	                           .members_changed = sf_members};
	return h;
}

/* ---- helpers ----------------------------------------------------------------
 */

#define MAXN 4

struct rig {
	char base[64];                      /* temp dir */
	int n;                              /* replicas */
	struct raft_host *host[MAXN];       /* one host per replica */
	struct raft_group *g[MAXN];         /* the group on each */
	struct sum_fsm fsm[MAXN];           /* their FSMs */
	char addr[MAXN][64];                /* host addresses */
	struct raft_group_peer peers[MAXN]; /* configuration */
	struct raft_group_config cfg;       /* template */
};

/* Host part of the peer addresses the rig hands to Raft. */
static const char *rig_peer_host = "127.0.0.1";

static void rig_host(struct rig *r, int i, uint16_t port)
{
	char bind[64], errmsg[STRATA_ERRMSG_SIZE];
	snprintf(bind, sizeof(bind), "127.0.0.1:%u", port);
	struct raft_host_config hc = {.bind_address = bind};
	assert_int_equal(raft_host_new(&hc, &r->host[i], errmsg), 0);
	snprintf(r->addr[i], sizeof(r->addr[i]), "%s:%u", rig_peer_host,
	         raft_host_port(r->host[i]));
}

static void rig_group(struct rig *r, int i)
{
	char dir[128], errmsg[STRATA_ERRMSG_SIZE];
	struct raft_group_config c = r->cfg;
	snprintf(dir, sizeof(dir), "%s/node%d/group1", r->base, i + 1);
	c.data_dir = dir;
	c.node_id = (uint64_t)(i + 1);
	c.peers = r->peers;
	c.n_peers = (unsigned)r->n;
	struct raft_group_fsm h = sf_hooks(&r->fsm[i]);
	int rv = raft_group_start(r->host[i], &c, &h, &r->g[i], errmsg);
	if (rv != 0) {
		fail_msg("start node %d: %s", i + 1, errmsg);
	}
}

static void rig_init(struct rig *r, int n, const struct raft_group_config *c)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->base, sizeof(r->base), "/tmp/strata-raft-gr-XXXXXX");
	assert_non_null(mkdtemp(r->base));
	r->n = n;
	r->cfg = *c;
	r->cfg.group_id = 1;
	if (r->cfg.election_ms == 0) {
		r->cfg.election_ms = 300;
		r->cfg.heartbeat_ms = 50;
	}
	if (r->cfg.segment_bytes == 0) {
		r->cfg.segment_bytes = 1u << 20;
	}
	for (int i = 0; i < n; i++) {
		rig_host(r, i, 0);
		r->peers[i].id = (uint64_t)(i + 1);
		r->peers[i].address = r->addr[i];
	}
	for (int i = 0; i < n; i++) {
		rig_group(r, i);
	}
}

static void rig_free(struct rig *r)
{
	for (int i = 0; i < MAXN; i++) {
		if (r->g[i] != NULL) {
			raft_group_stop(r->g[i]);
		}
	}
	for (int i = 0; i < MAXN; i++) {
		if (r->host[i] != NULL) {
			raft_host_free(r->host[i]);
		}
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->base);
	assert_int_equal(system(cmd), 0);
}

/* Start replica i (host i, node id i + 1) as a joiner: no bootstrap. */
static void rig_join(struct rig *r, int i)
{
	char dir[128], errmsg[STRATA_ERRMSG_SIZE];
	struct raft_group_config c = r->cfg;
	if (r->host[i] == NULL) {
		rig_host(r, i, 0);
	}
	snprintf(dir, sizeof(dir), "%s/node%d/group1", r->base, i + 1);
	c.data_dir = dir;
	c.node_id = (uint64_t)(i + 1);
	c.peers = NULL;
	c.n_peers = 0;
	c.join = true;
	c.self_address = r->addr[i];
	memset(&r->fsm[i], 0, sizeof(r->fsm[i]));
	struct raft_group_fsm h = sf_hooks(&r->fsm[i]);
	int rv = raft_group_start(r->host[i], &c, &h, &r->g[i], errmsg);
	if (rv != 0) {
		fail_msg("join node %d: %s", i + 1, errmsg);
	}
}

/* Index of the ready leader, waiting up to ms; -1 if none. */
static int wait_leader(struct rig *r, unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 5) {
		for (int i = 0; i < MAXN; i++) {
			if (r->g[i] != NULL && raft_group_is_ready(r->g[i])) {
				return i;
			}
		}
		usleep(5000);
	}
	return -1;
}

struct counts {
	_Atomic int ok;        /* status 0 */
	_Atomic int notleader; /* STRATA_ENOTLEADER */
	_Atomic int other;     /* anything else */
	_Atomic int done;      /* callbacks */
};

static void count_cb(void *arg, int status, void *result)
{
	struct counts *c = arg;
	(void)result;
	if (status == 0) {
		atomic_fetch_add(&c->ok, 1);
	} else if (status == STRATA_ENOTLEADER) {
		atomic_fetch_add(&c->notleader, 1);
	} else {
		atomic_fetch_add(&c->other, 1);
	}
	atomic_fetch_add(&c->done, 1);
}

/* Apply n entries of size len (content from seed) to g, waiting out
 * back-pressure; returns when all callbacks fired. */
static void apply_n(struct raft_group *g, int n, size_t len, unsigned seed,
                    struct counts *c)
{
	unsigned char *buf = malloc(len);
	assert_non_null(buf);
	int before = atomic_load(&c->done);
	for (int i = 0; i < n; i++) {
		memset(buf, (int)(seed + (unsigned)i), len);
		int rv;
		while ((rv = raft_group_apply(g, buf, len, count_cb, c)) ==
		       STRATA_EAGAIN) {
			usleep(200);
		}
		assert_int_equal(rv, 0);
	}
	for (int t = 0; t < 20000 && atomic_load(&c->done) - before < n; t++) {
		usleep(1000);
	}
	assert_int_equal(atomic_load(&c->done) - before, n);
	free(buf);
}

/* A one-replica rig (default config) that leads and has applied n entries
 * of len bytes (seed); their outcomes in *cnt. */
static void rig_one_applied(struct rig *r, int n, size_t len, unsigned seed,
                            struct counts *cnt)
{
	struct raft_group_config c = {0};
	rig_init(r, 1, &c);
	assert_int_equal(wait_leader(r, 10000), 0);
	apply_n(r->g[0], n, len, seed, cnt);
	assert_int_equal(atomic_load(&cnt->ok), n);
}

static bool wait_count(struct rig *r, uint64_t count, unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 5) {
		bool all = true;
		for (int i = 0; i < MAXN; i++) {
			if (r->g[i] != NULL &&
			    atomic_load(&r->fsm[i].count) != count) {
				all = false;
			}
		}
		if (all) {
			return true;
		}
		usleep(5000);
	}
	return false;
}

/* ---- tests ------------------------------------------------------------------
 */

/* Three replicas on three hosts elect a ready leader, replicate 200
 * entries, and end with identical FSM checksums; a follower refuses an
 * apply with STRATA_ENOTLEADER through the callback. */
static void test_raft_group_three_replicas_apply(void **state)
{
	(void)state;
	struct rig r;
	struct raft_group_config c = {0};
	rig_init(&r, 3, &c);
	int l = wait_leader(&r, 10000);
	assert_true(l >= 0);
	struct counts cnt = {0};
	apply_n(r.g[l], 200, 1000, 7, &cnt);
	assert_int_equal(atomic_load(&cnt.ok), 200);
	assert_true(wait_count(&r, 200, 10000));
	for (int i = 1; i < 3; i++) {
		assert_int_equal(atomic_load(&r.fsm[i].hash),
		                 atomic_load(&r.fsm[0].hash));
	}
	int f = (l + 1) % 3;
	struct counts fc = {0};
	assert_int_equal(raft_group_apply(r.g[f], "x", 1, count_cb, &fc), 0);
	for (int t = 0; t < 2000 && atomic_load(&fc.done) == 0; t++) {
		usleep(1000);
	}
	assert_int_equal(atomic_load(&fc.notleader), 1);

	struct raft_group_metrics m;
	raft_group_metrics(r.g[l], &m);
	assert_int_equal(m.role, RAFT_GROUP_LEADER);
	assert_true(m.ready);
	assert_true(m.commit_index >= 201);
	assert_int_equal(m.leader_id, (uint64_t)(l + 1));
	for (int t = 0; t < 200; t++) { /* published every tick */
		raft_group_metrics(r.g[f], &m);
		if (m.applied_entries == 200) {
			break;
		}
		usleep(5000);
	}
	assert_int_equal(m.role, RAFT_GROUP_FOLLOWER);
	assert_int_equal(m.applied_entries, 200);
	assert_int_equal(m.applied_bytes, 200 * 1000);
	assert_true(m.last_contact_ms < 1000);
	assert_true(atomic_load(&r.fsm[l].ready));
	assert_true(atomic_load(&r.fsm[f].roles) >= 1);
	rig_free(&r);
}

/* Peers named by host name (as Kubernetes pods are) are resolved by the
 * transport at every connect: a group addressed by "localhost:port"
 * elects a leader and replicates. */
static void test_raft_group_host_name_addresses(void **state)
{
	(void)state;
	struct rig r;
	struct raft_group_config c = {0};
	rig_peer_host = "localhost";
	rig_init(&r, 3, &c);
	rig_peer_host = "127.0.0.1";
	int l = wait_leader(&r, 10000);
	assert_true(l >= 0);
	struct counts cnt = {0};
	apply_n(r.g[l], 50, 100, 3, &cnt);
	assert_int_equal(atomic_load(&cnt.ok), 50);
	assert_true(wait_count(&r, 50, 10000));
	rig_free(&r);
}

/* The in-flight budget refuses entries above it (ETOOBIG) and reports
 * back-pressure (EAGAIN) when full, never queueing more than the budget. */
static void test_raft_group_budget_backpressure(void **state)
{
	(void)state;
	struct rig r;
	struct raft_group_config c = {.inflight_bytes = 64 * 1024};
	rig_init(&r, 1, &c);
	assert_int_equal(wait_leader(&r, 10000), 0);
	static unsigned char big[128 * 1024];
	struct counts cnt = {0};
	assert_int_equal(
	        raft_group_apply(r.g[0], big, sizeof(big), count_cb, &cnt),
	        STRATA_ETOOBIG);
	assert_int_equal(raft_group_apply(r.g[0], big, 0, count_cb, &cnt),
	                 STRATA_ETOOBIG);
	int queued = 0, eagain = 0;
	for (int i = 0; i < 100 && eagain == 0; i++) {
		int rv = raft_group_apply(r.g[0], big, 16 * 1024, count_cb,
		                          &cnt);
		if (rv == 0) {
			queued++;
		} else {
			assert_int_equal(rv, STRATA_EAGAIN);
			eagain++;
		}
		struct raft_group_metrics m;
		raft_group_metrics(r.g[0], &m);
		assert_true(m.inflight_bytes <= 64 * 1024);
	}
	assert_true(queued >= 4);
	assert_int_equal(eagain, 1);
	for (int t = 0; t < 5000 && atomic_load(&cnt.done) < queued; t++) {
		usleep(1000);
	}
	assert_int_equal(atomic_load(&cnt.ok), queued);
	struct raft_group_metrics m;
	raft_group_metrics(r.g[0], &m);
	assert_int_equal(m.inflight_bytes, 0);
	assert_true(m.rejected_full >= 1);
	rig_free(&r);
}

/* Wait (up to 2 s) until replica 1 has taken at least n snapshots. */
static void wait_snapshots(struct rig *r, uint64_t n)
{
	struct raft_group_metrics m;
	for (int t = 0; t < 400; t++) {
		raft_group_metrics(r->g[0], &m);
		if (m.snapshots_taken >= n) {
			return;
		}
		usleep(5000);
	}
}

/* Start stopped replica 1 again on its data: it restores its snapshot
 * once, leads, and re-applies up to `count` entries with checksum hash. */
static void restart_restores(struct rig *r, unsigned count, uint64_t hash)
{
	memset(&r->fsm[0], 0, sizeof(r->fsm[0]));
	rig_group(r, 0);
	assert_int_equal(atomic_load(&r->fsm[0].restores), 1);
	assert_int_equal(wait_leader(r, 10000), 0);
	assert_true(wait_count(r, count, 5000));
	assert_int_equal(atomic_load(&r->fsm[0].hash), hash);
}

/* One replica that snapshots every 256 KiB applied (32 KiB kept behind),
 * leading. */
static void rig_snapshots(struct rig *r)
{
	struct raft_group_config c = {.snapshot_bytes = 256 * 1024,
	                              .trailing_bytes = 32 * 1024};
	rig_init(r, 1, &c);
	assert_int_equal(wait_leader(r, 10000), 0);
}

/* Snapshots follow applied bytes; after a restart on the same data the
 * group starts (bootstrap says "already set up"), restores the snapshot,
 * re-applies the tail and reaches the same checksum. */
static void test_raft_group_snapshot_by_bytes_and_restart(void **state)
{
	(void)state;
	struct rig r;
	rig_snapshots(&r);
	struct counts cnt = {0};
	struct raft_group_metrics m;
	/* Rounds of 280 KiB: each crosses 256 KiB once (the remainder
	 * grows 24 KiB a round), so each takes exactly one snapshot. */
	for (int round = 1; round <= 4; round++) {
		apply_n(r.g[0], 70, 4096, (unsigned)round, &cnt);
		wait_snapshots(&r, (uint64_t)round);
		usleep(50000); /* no second snapshot may follow */
		raft_group_metrics(r.g[0], &m);
		assert_int_equal(m.snapshots_taken, round);
	}
	assert_int_equal(atomic_load(&cnt.ok), 280);
	assert_true(m.snapshot_index > 0);
	assert_true(m.snapshot_last_us > 0);
	uint64_t hash = atomic_load(&r.fsm[0].hash);
	raft_group_stop(r.g[0]);
	r.g[0] = NULL;
	restart_restores(&r, 280, hash);
	rig_free(&r);
}

/* The first bytes of replica 1's stored snapshot (there is one): *n of
 * them at buf. */
static void stored_snapshot(struct rig *r, unsigned char buf[64], size_t *n)
{
	char dir[128], path[512];
	snprintf(dir, sizeof(dir), "%s/node1/group1", r->base);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *de;
	int found = 0;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "snapshot-", 9) != 0 ||
		    strstr(de->d_name, ".meta") != NULL) {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		FILE *fp = fopen(path, "rb");
		assert_non_null(fp);
		*n = fread(buf, 1, 64, fp);
		fclose(fp);
		found++;
	}
	closedir(d);
	assert_int_equal(found, 1);
}

/* raw_snapshots stores the FSM's snapshot bytes as they are (libraft
 * otherwise LZ4-compresses them), and a restart restores from them. */
static void test_raft_group_raw_snapshots(void **state)
{
	(void)state;
	for (int raw_cfg = 0; raw_cfg <= 1; raw_cfg++) {
		struct rig r;
		struct raft_group_config c = {.snapshot_bytes = 64 * 1024,
		                              .trailing_bytes = 8 * 1024,
		                              .raw_snapshots = raw_cfg};
		rig_init(&r, 1, &c);
		assert_int_equal(wait_leader(&r, 10000), 0);
		struct counts cnt = {0};
		struct raft_group_metrics m;
		apply_n(r.g[0], 20, 4096, 1, &cnt);
		wait_snapshots(&r, 1);
		raft_group_metrics(r.g[0], &m);
		assert_int_equal(m.snapshots_taken, 1);
		raft_group_stop(r.g[0]);
		r.g[0] = NULL;
		uint64_t hash = atomic_load(&r.fsm[0].hash);
		unsigned char buf[64];
		size_t n;
		stored_snapshot(&r, buf, &n);
		static const unsigned char lz4_magic[4] = {0x04, 0x22, 0x4d,
		                                           0x18};
		if (raw_cfg) {
			/* The group's header (magic, length 16), then
			 * sf_snapshot's bytes: count (taken mid-way), hash. */
			uint64_t v[2];
			assert_int_equal(n, 16 + sizeof(v));
			assert_int_equal(buf[8], sizeof(v));
			memcpy(v, buf + 16, sizeof(v));
			assert_true(v[0] >= 1 && v[0] <= 20);
		} else {
			assert_true(n >= 4);
			assert_memory_equal(buf, lz4_magic, 4);
		}
		restart_restores(&r, 20, hash);
		rig_free(&r);
	}
}

/* A follower stopped while the others commit far more than the snapshot
 * size catches up by snapshot install plus the tail, the leader never
 * changes, and all checksums agree. The restarted follower crosses its own
 * snapshot threshold while replaying its log, and libraft drops an
 * InstallSnapshot that arrives meanwhile without a reply: this case stalled
 * until the leader resent it after libraft's 30 s, now snapshot_resend_ms. */
static void catch_up_by_snapshot(bool install_fails)
{
	struct rig r;
	struct raft_group_config c = {.snapshot_bytes = 512 * 1024,
	                              .trailing_bytes = 64 * 1024,
	                              .election_ms = 500,
	                              .heartbeat_ms = 50};
	rig_init(&r, 3, &c);
	int l = wait_leader(&r, 10000);
	assert_true(l >= 0);
	struct counts cnt = {0};
	apply_n(r.g[l], 50, 16384, 1, &cnt);
	int f = (l + 1) % 3;
	raft_group_stop(r.g[f]);
	r.g[f] = NULL;
	/* A follower heard from within the election timeout keeps its
	 * entries in the leader's log across snapshots (raft/retain.c): wait
	 * until the leader counts it as gone (up to 2 election timeouts). */
	usleep(1100 * 1000);
	struct raft_group_metrics before;
	raft_group_metrics(r.g[l], &before);
	apply_n(r.g[l], 400, 16384, 2, &cnt); /* 6.5 MB */
	/* The follower must find its next entry gone from the leader: wait
	 * for a stored snapshot past its index (at most 50 + 2 barrier/config
	 * entries) plus the trailing 3-4 entries. libraft snapshots only
	 * after an apply and never while one is being stored, so when the
	 * applies commit faster than snapshots are stored the last one can be
	 * behind: then apply one more entry. Metrics are published every
	 * tick. Then wait 2.5 s more: the leader's probes of the stopped
	 * follower built before the truncation (AppendEntries from index 53
	 * on, their entries still referenced) wait in libraft's send queue
	 * for the reconnect, and would catch the follower up without a
	 * snapshot; the queue keeps only the 3 newest messages after each
	 * failed connect (reconnect backoff <= 1 s), and probes built after
	 * the truncation are heartbeats. */
	int total = 450;
	struct raft_group_metrics lm;
	for (int t = 0; t < 500; t++) {
		raft_group_metrics(r.g[l], &lm);
		if (lm.snapshot_index > 64) {
			break;
		}
		if (t % 10 == 9) {
			apply_n(r.g[l], 1, 16384, 3, &cnt);
			total++;
		}
		usleep(10000);
	}
	assert_true(lm.snapshot_index > 64);
	assert_int_equal(atomic_load(&cnt.ok), total);
	usleep(2500 * 1000);
	memset(&r.fsm[f], 0, sizeof(r.fsm[f]));
#ifdef STRATA_LIBRAFT_FAULTS
	char in[32];
	snprintf(in, sizeof(in), "/node%d/", f + 1);
	libraft_faults_snapshot_full_in(in, install_fails);
#endif
	rig_group(&r, f);
	if (install_fails) {
		/* No space for the leader's snapshot: counted, and the
		 * follower leaves the group rather than take entries after
		 * the hole; restarted with space, it asks again. */
		for (int t = 0; t < 1000 && !atomic_load(&r.fsm[f].log_failed);
		     t++) {
			usleep(10000);
		}
		assert_true(atomic_load(&r.fsm[f].log_failed));
		struct raft_group_metrics fm = {0};
		for (int t = 0; t < 100 && fm.installs_failed == 0; t++) {
			usleep(10000); /* published every tick */
			raft_group_metrics(r.g[f], &fm);
		}
		assert_true(fm.installs_failed >= 1);
		assert_int_equal(fm.snapshots_installed, 0);
		assert_true(atomic_load(&r.fsm[f].count) < (uint64_t)total);
#ifdef STRATA_LIBRAFT_FAULTS
		assert_true(libraft_faults_snapshot_full_in(NULL, false) >= 1);
#endif
		raft_group_stop(r.g[f]);
		r.g[f] = NULL;
		memset(&r.fsm[f], 0, sizeof(r.fsm[f]));
		rig_group(&r, f); /* its log loads: no hole on disk */
	}
	assert_true(wait_count(&r, (uint64_t)total, 20000));
	struct raft_group_metrics m;
	for (int t = 0; t < 200; t++) { /* published every tick */
		raft_group_metrics(r.g[f], &m);
		if (m.snapshots_installed >= 1) {
			break;
		}
		usleep(5000);
	}
	assert_true(m.snapshots_installed >= 1);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(atomic_load(&r.fsm[i].hash),
		                 atomic_load(&r.fsm[l].hash));
	}
	struct raft_group_metrics after;
	raft_group_metrics(r.g[l], &after);
	assert_int_equal(after.term, before.term);
	assert_int_equal(after.role, RAFT_GROUP_LEADER);
	rig_free(&r);
}

static void test_raft_group_catch_up_by_snapshot(void **state)
{
	(void)state;
	catch_up_by_snapshot(false);
}

static void sleep_task(struct raft_host_task *t)
{
	(void)t;
	usleep(1500 * 1000);
}

/* A follower whose loop stalls (its disk or CPU too slow) falls more than
 * lag_bytes behind: the leader holds new applies for it (lag_holds), then
 * goes on without it; nothing is lost and all replicas end equal. */
static void test_raft_group_slow_follower_holds(void **state)
{
	(void)state;
	struct rig r;
	struct raft_group_config c = {
	        .election_ms = 500, .heartbeat_ms = 50, .lag_bytes = 64 * 1024};
	rig_init(&r, 3, &c);
	int l = wait_leader(&r, 10000);
	assert_true(l >= 0);
	struct counts cnt = {0};
	apply_n(r.g[l], 10, 4096, 1, &cnt);
	int f = (l + 1) % 3;
	static struct raft_host_task stall = {.fn = sleep_task};
	assert_int_equal(raft_host_submit(r.host[f], &stall), 0);
	usleep(20 * 1000);
	apply_n(r.g[l], 300, 4096, 2, &cnt); /* 64 entries may lag */
	assert_true(wait_count(&r, 310, 20000));
	struct raft_group_metrics m;
	for (int t = 0; t < 200; t++) { /* published every tick */
		raft_group_metrics(r.g[l], &m);
		if (m.lag_holds >= 1) {
			break;
		}
		usleep(5000);
	}
	assert_true(m.lag_holds >= 1);
	assert_int_equal(m.role, RAFT_GROUP_LEADER);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(atomic_load(&r.fsm[i].hash),
		                 atomic_load(&r.fsm[l].hash));
	}
	rig_free(&r);
}

/* Entries of any length (not only multiples of 8, which is all libraft's
 * disk format handles) reach the FSM byte for byte and read back from the
 * log after a restart with the same checksum. */
static void test_raft_group_odd_sizes_survive_restart(void **state)
{
	(void)state;
	struct rig r;
	struct raft_group_config c = {0};
	rig_init(&r, 1, &c);
	assert_int_equal(wait_leader(&r, 10000), 0);
	struct counts cnt = {0};
	for (int len = 1; len <= 41; len++) {
		apply_n(r.g[0], 1, (size_t)len, (unsigned)len, &cnt);
	}
	assert_int_equal(atomic_load(&cnt.ok), 41);
	struct raft_group_metrics m;
	raft_group_metrics(r.g[0], &m);
	uint64_t hash = atomic_load(&r.fsm[0].hash);
	raft_group_stop(r.g[0]);
	r.g[0] = NULL;
	memset(&r.fsm[0], 0, sizeof(r.fsm[0]));
	rig_group(&r, 0);
	assert_int_equal(wait_leader(&r, 10000), 0);
	assert_true(wait_count(&r, 41, 5000));
	assert_int_equal(atomic_load(&r.fsm[0].hash), hash);
	for (int t = 0; t < 200; t++) { /* published every tick */
		raft_group_metrics(r.g[0], &m);
		if (m.applied_entries == 41) {
			break;
		}
		usleep(5000);
	}
	assert_int_equal(m.applied_bytes, 41 * 42 / 2);
	rig_free(&r);
}

/* The names in dir, sorted, joined by spaces, into out. */
static void dir_names(const char *dir, char *out, size_t size)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "ls -1 '%s' | sort | tr '\n' ' '", dir);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	assert_int_equal(pclose(p), 0);
}

/* A damaged closed log segment makes the replica refuse to start
 * (STRATA_ECORRUPT, naming the segment) and changes nothing on disk:
 * libraft's auto-recovery would have renamed it corrupt-* and started
 * without its entries, acknowledged ones included. Undamaged again, the
 * replica starts with every entry. */
static void test_raft_group_damaged_log_refuses_start(void **state)
{
	(void)state;
	struct rig r;
	struct counts cnt = {0};
	rig_one_applied(&r, 41, 100, 9, &cnt);
	uint64_t hash = atomic_load(&r.fsm[0].hash);
	raft_group_stop(r.g[0]); /* finalizes the open segment: closed */
	r.g[0] = NULL;

	char dir[128], seg[256] = "", path[512];
	snprintf(dir, sizeof(dir), "%s/node1/group1", r.base);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	unsigned long long a, b;
	while ((e = readdir(d)) != NULL) {
		if (sscanf(e->d_name, "%llu-%llu", &a, &b) == 2 && b >= 41) {
			snprintf(seg, sizeof(seg), "%s", e->d_name);
		}
	}
	closedir(d);
	assert_true(seg[0] != '\0');
	snprintf(path, sizeof(path), "%s/%s", dir, seg);
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long mid = ftell(f) / 2;
	assert_int_equal(fseek(f, mid, SEEK_SET), 0);
	int orig = fgetc(f);
	assert_int_equal(fseek(f, mid, SEEK_SET), 0);
	fputc(orig ^ 0x5a, f);
	assert_int_equal(fclose(f), 0);
	char before[1024], after[1024];
	dir_names(dir, before, sizeof(before));

	struct raft_group_config gc = r.cfg;
	gc.data_dir = dir;
	gc.node_id = 1;
	gc.peers = r.peers;
	gc.n_peers = 1;
	memset(&r.fsm[0], 0, sizeof(r.fsm[0]));
	struct raft_group_fsm h = sf_hooks(&r.fsm[0]);
	char errmsg[STRATA_ERRMSG_SIZE];
	struct raft_group *g = NULL;
	assert_int_equal(raft_group_start(r.host[0], &gc, &h, &g, errmsg),
	                 STRATA_ECORRUPT);
	assert_null(g);
	print_message("%s\n", errmsg);
	assert_non_null(strstr(errmsg, "damaged"));
	assert_non_null(strstr(errmsg, seg));
	dir_names(dir, after, sizeof(after));
	assert_string_equal(before, after); /* nothing renamed or removed */

	f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, mid, SEEK_SET), 0);
	fputc(orig, f);
	assert_int_equal(fclose(f), 0);
	rig_group(&r, 0);
	assert_int_equal(wait_leader(&r, 10000), 0);
	assert_true(wait_count(&r, 41, 5000));
	assert_int_equal(atomic_load(&r.fsm[0].hash), hash);
	rig_free(&r);
}

/* Start group 1 of node 1 again on r's data dir; the result. */
static int restart_one(struct rig *r, char *errmsg)
{
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/node1/group1", r->base);
	struct raft_group_config gc = r->cfg;
	gc.data_dir = dir;
	gc.node_id = 1;
	gc.peers = r->peers;
	gc.n_peers = 1;
	memset(&r->fsm[0], 0, sizeof(r->fsm[0]));
	struct raft_group_fsm h = sf_hooks(&r->fsm[0]);
	int rc = raft_group_start(r->host[0], &gc, &h, &r->g[0], errmsg);
	if (rc != 0) {
		r->g[0] = NULL;
	}
	return rc;
}

/* Move every file of dir whose name starts with prefix to dir/../away-*,
 * or back (back = true); how many. */
static int move_files(const char *dir, const char *prefix, bool back)
{
	char from[600], to[600];
	int n = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	if (back) {
		closedir(d);
		snprintf(from, sizeof(from), "%s/..", dir);
		d = opendir(from);
		assert_non_null(d);
	}
	while ((e = readdir(d)) != NULL) {
		if (!back && strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			snprintf(from, sizeof(from), "%s/%s", dir, e->d_name);
			snprintf(to, sizeof(to), "%s/../away-%s", dir,
			         e->d_name);
		} else if (back && strncmp(e->d_name, "away-", 5) == 0) {
			snprintf(from, sizeof(from), "%s/../%s", dir,
			         e->d_name);
			snprintf(to, sizeof(to), "%s/%s", dir, e->d_name + 5);
		} else {
			continue;
		}
		assert_int_equal(rename(from, to), 0);
		n++;
	}
	closedir(d);
	return n;
}

/* A deleted snapshot (a gap before the first segment) and unreadable
 * metadata each refuse the start with advice that fits: put the missing
 * file back (not 'move the segment away', which would leave nothing), and
 * what to do with metadata; put back, everything is there. */
static void test_raft_group_gap_and_metadata_advice(void **state)
{
	(void)state;
	struct rig r;
	struct raft_group_config c = {.snapshot_bytes = 64 * 1024,
	                              .trailing_bytes = 8 * 1024};
	rig_init(&r, 1, &c);
	assert_int_equal(wait_leader(&r, 10000), 0);
	struct counts cnt = {0};
	apply_n(r.g[0], 40, 4096, 1, &cnt);
	wait_snapshots(&r, 1);
	uint64_t hash = atomic_load(&r.fsm[0].hash);
	raft_group_stop(r.g[0]);
	r.g[0] = NULL;
	char dir[128], err[STRATA_ERRMSG_SIZE];
	snprintf(dir, sizeof(dir), "%s/node1/group1", r.base);

	assert_true(move_files(dir, "snapshot-", false) >= 2);
	int rc = restart_one(&r, err);
	print_message("%s\n", err);
	assert_int_equal(rc, STRATA_ECORRUPT);
	assert_non_null(strstr(err, "has a gap"));
	assert_true(move_files(dir, "", true) >= 2);

	char meta[200];
	snprintf(meta, sizeof(meta), "%s/metadata1", dir);
	size_t len;
	FILE *f = fopen(meta, "rb");
	assert_non_null(f);
	unsigned char orig[64], zero[64] = {0};
	len = fread(orig, 1, sizeof(orig), f);
	fclose(f);
	assert_true(len > 8);
	f = fopen(meta, "r+b");
	assert_non_null(f);
	assert_int_equal(fwrite(zero, 1, len, f), len);
	fclose(f);
	assert_true(restart_one(&r, err) != 0);
	print_message("%s\n", err);
	assert_non_null(strstr(err, "init:"));
	assert_non_null(strstr(err, "see the log for what to do"));
	f = fopen(meta, "r+b");
	assert_non_null(f);
	assert_int_equal(fwrite(orig, 1, len, f), len);
	fclose(f);
	restart_restores(&r, 40, hash);
	rig_free(&r);
}

/* Log files lost while the replica was down (an emptied directory, the
 * newest segment gone) make it refuse to start (raft/marker.h) instead of
 * bootstrapping or starting short; put back, it starts with everything. */
static void test_raft_group_lost_log_refuses_start(void **state)
{
	(void)state;
	struct rig r;
	struct counts cnt = {0};
	rig_one_applied(&r, 41, 100, 9, &cnt);
	uint64_t hash = atomic_load(&r.fsm[0].hash);
	raft_group_stop(r.g[0]); /* writes the marker */
	r.g[0] = NULL;
	char dir[128], away[160], err[STRATA_ERRMSG_SIZE];
	snprintf(dir, sizeof(dir), "%s/node1/group1", r.base);
	snprintf(away, sizeof(away), "%s/away", r.base);

	/* The whole directory gone: refused, nothing bootstrapped. */
	assert_int_equal(rename(dir, away), 0);
	assert_int_equal(restart_one(&r, err), STRATA_ECORRUPT);
	print_message("%s\n", err);
	assert_non_null(strstr(err, "is empty"));
	struct stat st;
	assert_int_equal(stat(dir, &st), -1); /* not made again */
	assert_int_equal(rename(away, dir), 0);

	/* The segment holding the newest entries gone: refused. */
	char seg[256] = "", from[512], to[512];
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	unsigned long long a, b, top = 0;
	while ((e = readdir(d)) != NULL) {
		if (sscanf(e->d_name, "%llu-%llu", &a, &b) == 2 && b >= top) {
			top = b;
			snprintf(seg, sizeof(seg), "%s", e->d_name);
		}
	}
	closedir(d);
	assert_true(seg[0] != '\0');
	snprintf(from, sizeof(from), "%s/%s", dir, seg);
	snprintf(to, sizeof(to), "%s/%s", r.base, seg);
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(restart_one(&r, err), STRATA_ECORRUPT);
	print_message("%s\n", err);
	assert_non_null(strstr(err, "files lost"));
	assert_int_equal(rename(to, from), 0);

	assert_int_equal(restart_one(&r, err), 0);
	assert_int_equal(wait_leader(&r, 10000), 0);
	assert_true(wait_count(&r, 41, 5000));
	assert_int_equal(atomic_load(&r.fsm[0].hash), hash);
	rig_free(&r);
}

#ifdef STRATA_LIBRAFT_FAULTS
/* A write to the log fails (EIO injected into the completion of the third
 * log write after arming, third_party/raft/PATCHES.md #12): the entries of
 * that write and of every later one are not acknowledged, the replica
 * leaves the group (never leader again until restarted), and after a
 * restart on the same data the FSM holds exactly the acknowledged entries
 * and the group takes writes again. */
static void test_raft_group_log_write_failure(void **state)
{
	(void)state;
	struct rig r;
	struct counts cnt = {0};
	rig_one_applied(&r, 20, 100, 1, &cnt);

	libraft_faults_fail_write(3);
	apply_n(r.g[0], 300, 1000, 7, &cnt);
	struct libraft_faults_record rec;
	libraft_faults_get(&rec);
	libraft_faults_fail_write(0);
	if (rec.completed == 0) {
		/* No KAIO where rig_init put the data: nothing injected. */
		rig_free(&r);
		print_message("no async I/O under /tmp: test not exercised\n");
		skip();
	}
	assert_true(rec.failed);
	int ok = atomic_load(&cnt.ok);
	assert_true(ok >= 20 && ok < 320);
	assert_true(atomic_load(&cnt.other) > 0); /* the failed write */
	/* Later applies are refused: this replica is no leader any more. */
	struct counts later = {0};
	apply_n(r.g[0], 10, 100, 5, &later);
	assert_int_equal(atomic_load(&later.notleader), 10);
	/* Applied = acknowledged, and the replica stays out of the group. */
	assert_int_equal(atomic_load(&r.fsm[0].count), ok);
	uint64_t hash = atomic_load(&r.fsm[0].hash);
	assert_int_equal(wait_leader(&r, 1000), -1);
	assert_false(raft_group_is_ready(r.g[0]));
	assert_int_equal(atomic_load(&r.fsm[0].log_failed), 1);

	raft_group_stop(r.g[0]);
	r.g[0] = NULL;
	memset(&r.fsm[0], 0, sizeof(r.fsm[0]));
	rig_group(&r, 0);
	assert_int_equal(wait_leader(&r, 10000), 0);
	assert_true(wait_count(&r, (uint64_t)ok, 5000));
	assert_int_equal(atomic_load(&r.fsm[0].hash), hash);
	struct counts after = {0};
	apply_n(r.g[0], 10, 100, 3, &after);
	assert_int_equal(atomic_load(&after.ok), 10);
	rig_free(&r);
}

/* The first write of a new leader is its barrier, and it fails (a
 * restart on a disk that still fails): the replica leaves the group as
 * after any failed log write (PATCHES.md #12), where upstream libraft
 * looked the barrier up as a command and failed an assertion (#18); with
 * the disk back, the next restart has every acknowledged entry. */
static void test_raft_group_barrier_write_fails(void **state)
{
	(void)state;
	struct rig r;
	struct counts cnt = {0};
	rig_one_applied(&r, 20, 100, 1, &cnt);
	uint64_t hash = atomic_load(&r.fsm[0].hash);
	raft_group_stop(r.g[0]);
	r.g[0] = NULL;
	memset(&r.fsm[0], 0, sizeof(r.fsm[0]));

	/* Only segment writes: libraft's start probes async I/O with a
	 * write of its own (failing that one turns KAIO off). */
	libraft_faults_fail_write_in("/open-", 1);
	rig_group(&r, 0);
	for (int t = 0; t < 1000 && atomic_load(&r.fsm[0].log_failed) == 0;
	     t++) {
		usleep(5000);
	}
	struct libraft_faults_record rec;
	libraft_faults_get(&rec);
	libraft_faults_fail_write(0);
	if (rec.completed == 0) {
		rig_free(&r);
		print_message("no async I/O under /tmp: test not exercised\n");
		skip();
	}
	assert_true(rec.failed);
	assert_int_equal(atomic_load(&r.fsm[0].log_failed), 1);
	assert_false(raft_group_is_ready(r.g[0]));
	struct counts later = {0};
	apply_n(r.g[0], 5, 100, 5, &later);
	assert_int_equal(atomic_load(&later.ok), 0);

	raft_group_stop(r.g[0]);
	r.g[0] = NULL;
	memset(&r.fsm[0], 0, sizeof(r.fsm[0]));
	rig_group(&r, 0);
	assert_int_equal(wait_leader(&r, 10000), 0);
	assert_true(wait_count(&r, 20, 5000));
	assert_int_equal(atomic_load(&r.fsm[0].hash), hash);
	struct counts after = {0};
	apply_n(r.g[0], 10, 100, 3, &after);
	assert_int_equal(atomic_load(&after.ok), 10);
	rig_free(&r);
}

/* No space for a snapshot (ENOSPC injected into libraft's snapshot file
 * writes, third_party/raft/PATCHES.md #16): the failure is counted and
 * logged with its reason instead of counted as a snapshot taken, the log
 * goes on taking entries, and the next snapshot once there is space is
 * stored; a restart restores it and every entry. */
static void test_raft_group_snapshot_write_fails(void **state)
{
	(void)state;
	struct rig r;
	rig_snapshots(&r);
	char logpath[256], errmsg[STRATA_ERRMSG_SIZE];
	snprintf(logpath, sizeof(logpath), "%s/test.log", r.base);
	assert_int_equal(log_open(logpath, errmsg), 0);
	libraft_faults_snapshot_full_in(NULL, true);
	struct counts cnt = {0};
	struct raft_group_metrics m = {0};
	apply_n(r.g[0], 70, 4096, 1, &cnt); /* 280 KiB: one snapshot due */
	for (int t = 0; t < 400 && m.snapshots_failed == 0; t++) {
		usleep(5000);
		raft_group_metrics(r.g[0], &m);
	}
	unsigned failed_writes = libraft_faults_snapshot_full_in(NULL, false);
	assert_int_equal(log_open(NULL, errmsg), 0);
	assert_int_equal(m.snapshots_failed, 1);
	assert_int_equal(m.snapshots_taken, 0);
	assert_true(failed_writes >= 1);
	assert_int_equal(atomic_load(&cnt.ok), 70);
	char names[1024], dir[256];
	snprintf(dir, sizeof(dir), "%s/node1/group1", r.base);
	dir_names(dir, names, sizeof(names));
	assert_null(strstr(names, "snapshot-")); /* nothing half written */
	FILE *f = fopen(logpath, "r");
	assert_non_null(f);
	char line[1024];
	bool warned = false;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "could not store a snapshot") != NULL) {
			print_message("%s", line);
			warned =
			        strstr(line, "no space left on device") != NULL;
		}
	}
	fclose(f);
	assert_true(warned);

	/* Space again: the next snapshot is stored and trims the log. */
	apply_n(r.g[0], 70, 4096, 2, &cnt);
	wait_snapshots(&r, 1);
	raft_group_metrics(r.g[0], &m);
	assert_int_equal(m.snapshots_taken, 1);
	assert_int_equal(m.snapshots_failed, 1);
	assert_int_equal(atomic_load(&cnt.ok), 140);
	uint64_t hash = atomic_load(&r.fsm[0].hash);
	raft_group_stop(r.g[0]);
	r.g[0] = NULL;
	restart_restores(&r, 140, hash);
	rig_free(&r);
}

/* The follower that catches up by snapshot has no space for it at first
 * (ENOSPC injected into its snapshot file writes, PATCHES.md #16, #17):
 * the failed install is counted and the follower leaves the group instead
 * of taking the leader's next entries after a hole (upstream did, and
 * never applied again); restarted with space, it installs the snapshot
 * and ends equal. */
static void test_raft_group_install_fails(void **state)
{
	(void)state;
	catch_up_by_snapshot(true);
}

/* Entries with ids applied through a group: each callback's status. */
struct id_apply {
	struct id_slot {
		struct id_apply *ia;
		uint32_t id;
	} slot[IDS];             /* callback arguments */
	_Atomic int status[IDS]; /* by id; -1 until its callback */
	_Atomic int done;        /* callbacks */
};

static void id_cb(void *arg, int status, void *result)
{
	struct id_slot *sl = arg;
	(void)result;
	atomic_store(&sl->ia->status[sl->id], status);
	atomic_fetch_add(&sl->ia->done, 1);
}

/* Apply the entries with ids [from, to) to g, waiting out back-pressure;
 * returns when every callback fired. */
static void apply_ids(struct raft_group *g, struct id_apply *ia, uint32_t from,
                      uint32_t to)
{
	unsigned char buf[ID_LEN];
	int before = atomic_load(&ia->done);
	for (uint32_t id = from; id < to; id++) {
		memset(buf, (int)id, sizeof(buf));
		memcpy(buf, &id, 4);
		ia->slot[id] = (struct id_slot){.ia = ia, .id = id};
		atomic_store(&ia->status[id], -1);
		int rv;
		while ((rv = raft_group_apply(g, buf, ID_LEN, id_cb,
		                              &ia->slot[id])) ==
		       STRATA_EAGAIN) {
			usleep(200);
		}
		assert_int_equal(rv, 0);
	}
	int n = (int)(to - from);
	for (int t = 0; t < 20000 && atomic_load(&ia->done) - before < n; t++) {
		usleep(1000);
	}
	assert_int_equal(atomic_load(&ia->done) - before, n);
}

/* Three replicas; the leader's log write fails (or its disk is full). The
 * leader leaves the group, the two others elect a leader among themselves
 * and take writes, every entry acknowledged before is in their FSMs, and
 * the failed replica restarted on its data rejoins and ends equal to
 * them. */
static void leader_log_fails(bool disk_full, bool one_by_one)
{
	struct rig r;
	/* 64 KiB segments: the 300 entries below need new ones. */
	struct raft_group_config c = {.segment_bytes = 64 * 1024};
	rig_init(&r, 3, &c);
	int l = wait_leader(&r, 10000);
	assert_true(l >= 0);
	char in[32];
	snprintf(in, sizeof(in), "/node%d/", l + 1);
	if (disk_full) {
		libraft_faults_disk_full_in(in, true);
	} else {
		libraft_faults_fail_write_in(in, 3);
	}
	struct id_apply *ia = calloc(1, sizeof(*ia));
	assert_non_null(ia);
	if (one_by_one) {
		for (uint32_t id = 0; id < 300; id++) {
			apply_ids(r.g[l], ia, id, id + 1);
		}
	} else {
		apply_ids(r.g[l], ia, 0, 300);
	}
	if (disk_full) {
		/* The space is back before the restart below. */
		assert_true(libraft_faults_disk_full_in(NULL, false) > 0);
	} else {
		struct libraft_faults_record rec;
		libraft_faults_get(&rec);
		libraft_faults_fail_write(0);
		if (rec.completed == 0) {
			free(ia);
			rig_free(&r);
			print_message("no async I/O under /tmp: test not "
			              "exercised\n");
			skip();
		}
		assert_true(rec.failed);
	}
	int acked = 0;
	for (int id = 0; id < 300; id++) {
		acked += atomic_load(&ia->status[id]) == 0;
	}
	assert_true(acked < 300);

	/* The failed replica stops serving (seen at its group's next tick),
	 * a new leader among the two others takes writes. */
	for (int t = 0; t < 1000 && raft_group_is_ready(r.g[l]); t++) {
		usleep(5000);
	}
	assert_false(raft_group_is_ready(r.g[l]));
	int m = wait_leader(&r, 10000);
	assert_true(m >= 0 && m != l);
	apply_ids(r.g[m], ia, 300, 320);
	for (int id = 300; id < 320; id++) {
		assert_int_equal(atomic_load(&ia->status[id]), 0);
	}
	int f = 3 - l - m; /* the third replica */
	for (int t = 0; t < 2000; t++) {
		if (atomic_load(&r.fsm[f].hash) == atomic_load(&r.fsm[m].hash))
			break;
		usleep(5000);
	}
	assert_int_equal(atomic_load(&r.fsm[f].hash),
	                 atomic_load(&r.fsm[m].hash));
	/* No acknowledged entry lost. */
	for (int id = 0; id < 320; id++) {
		if (atomic_load(&ia->status[id]) == 0) {
			assert_int_equal(atomic_load(&r.fsm[m].ids[id]), 1);
			assert_int_equal(atomic_load(&r.fsm[f].ids[id]), 1);
		}
	}
	assert_false(raft_group_is_ready(r.g[l]));

	/* The failed replica, restarted on its data, catches up. */
	raft_group_stop(r.g[l]);
	memset(&r.fsm[l], 0, sizeof(r.fsm[l]));
	rig_group(&r, l);
	for (int t = 0; t < 2000; t++) {
		if (atomic_load(&r.fsm[l].hash) == atomic_load(&r.fsm[m].hash))
			break;
		usleep(5000);
	}
	assert_int_equal(atomic_load(&r.fsm[l].hash),
	                 atomic_load(&r.fsm[m].hash));
	assert_int_equal(atomic_load(&r.fsm[l].count),
	                 atomic_load(&r.fsm[m].count));
	free(ia);
	rig_free(&r);
}

static void test_raft_group_leader_log_write_failure(void **state)
{
	(void)state;
	leader_log_fails(false, false);
}

/* The same when the leader's disk is full: no new log segment can get its
 * space (libraft patch #13). Under load an append waits for the segment
 * and fails with it; one entry at a time, the pool's refill fails first
 * with nothing waiting and libraft refuses the next append at once, and
 * the leader leaves at its next tick (before patch #13 it stayed leader
 * and refused every apply). In both cases the test then has its disk
 * space back for the restart. */
static void test_raft_group_leader_disk_full(void **state)
{
	(void)state;
	leader_log_fails(true, false);
	leader_log_fails(true, true);
}
#endif

/* Configuration mistakes are refused with a message naming the problem. */
static void test_raft_group_config_errors(void **state)
{
	(void)state;
	char errmsg[STRATA_ERRMSG_SIZE];
	struct raft_host *h = NULL;
	struct raft_host_config hc = {.bind_address = "127.0.0.1:0"};
	assert_int_equal(raft_host_new(&hc, &h, errmsg), 0);
	struct sum_fsm f;
	memset(&f, 0, sizeof(f));
	struct raft_group_fsm hooks = sf_hooks(&f);
	struct raft_group_peer peers[2] = {{1, "127.0.0.1:1"},
	                                   {1, "127.0.0.1:2"}};
	struct raft_group_config c = {.group_id = 1,
	                              .node_id = 3,
	                              .data_dir = "/tmp/strata-raft-unused",
	                              .peers = peers,
	                              .n_peers = 1};
	struct raft_group *g = NULL;
	assert_int_equal(raft_group_start(h, &c, &hooks, &g, errmsg),
	                 STRATA_ECONFIG);
	assert_non_null(strstr(errmsg, "not in its own peer list"));
	c.node_id = 1;
	c.n_peers = 2;
	assert_int_equal(raft_group_start(h, &c, &hooks, &g, errmsg),
	                 STRATA_ECONFIG);
	assert_non_null(strstr(errmsg, "listed twice"));
	c.n_peers = 1;
	c.election_ms = 100;
	c.heartbeat_ms = 100;
	assert_int_equal(raft_group_start(h, &c, &hooks, &g, errmsg),
	                 STRATA_ECONFIG);
	assert_non_null(strstr(errmsg, "heartbeat"));
	c.election_ms = 0;
	c.heartbeat_ms = 0;
	c.join = true;
	c.node_id = 5;
	assert_int_equal(raft_group_start(h, &c, &hooks, &g, errmsg),
	                 STRATA_ECONFIG);
	assert_non_null(strstr(errmsg, "self_address"));
	c.join = false;
	c.node_id = 1;
	c.data_dir = "/proc/strata-no";
	assert_int_equal(raft_group_start(h, &c, &hooks, &g, errmsg),
	                 STRATA_EIO);
	assert_non_null(strstr(errmsg, "/proc/strata-no"));
	raft_host_free(h);
}

static void on_loop_task(struct raft_host_task *t)
{
	struct raft_host *h = ((void **)t->data)[0];
	_Atomic int *ran = ((void **)t->data)[1];
	atomic_store(ran, raft_host_on_loop(h) ? 1 : 2);
}

/* A submitted task runs on the loop thread; the stall histogram counts
 * probes. */
static void test_raft_host_submit_runs_on_loop(void **state)
{
	(void)state;
	char errmsg[STRATA_ERRMSG_SIZE];
	struct raft_host *h = NULL;
	struct raft_host_config hc = {.bind_address = "127.0.0.1:0",
	                              .stall_tick_ms = 5};
	assert_int_equal(raft_host_new(&hc, &h, errmsg), 0);
	assert_false(raft_host_on_loop(h));
	_Atomic int ran = 0;
	void *args[2] = {h, &ran};
	struct raft_host_task t = {.data = args, .fn = on_loop_task};
	assert_int_equal(raft_host_submit(h, &t), 0);
	for (int i = 0; i < 2000 && atomic_load(&ran) == 0; i++) {
		usleep(1000);
	}
	assert_int_equal(atomic_load(&ran), 1);
	usleep(100000);
	struct raft_stall_hist sh;
	raft_host_stalls(h, &sh);
	assert_true(sh.samples >= 5);
	uint64_t sum = 0;
	for (int i = 0; i < RAFT_STALL_BUCKETS; i++) {
		sum += sh.count[i];
	}
	assert_int_equal(sum, sh.samples);
	raft_host_free(h);
}

/* Deferral test state: what ran, in order. */
struct defer_state {
	struct raft_host *h;
	struct raft_host_task a, b, c; /* deferred by the submitted task */
	char order[8];                 /* names of the tasks that ran */
	_Atomic int n;                 /* their count; -1 = finished */
};

static void defer_note(struct raft_host_task *t)
{
	struct defer_state *s = t->data;
	int n = atomic_load(&s->n);
	s->order[n] = t == &s->a ? 'a' : t == &s->b ? 'b' : 'c';
	atomic_store(&s->n, n + 1);
}

/* Defers a, b, c, cancels b, then records 's': s must run before a and c
 * (they wait for the check phase), and b never. */
static void defer_submitted(struct raft_host_task *t)
{
	struct defer_state *s = t->data;
	raft_host_defer(s->h, &s->a);
	raft_host_defer(s->h, &s->b);
	raft_host_defer(s->h, &s->c);
	raft_host_defer_cancel(s->h, &s->b);
	raft_host_defer_cancel(s->h, &s->b); /* not queued: no-op */
	s->order[atomic_load(&s->n)] = 's';
	atomic_fetch_add(&s->n, 1);
}

/* raft_host_defer runs tasks after the current callbacks, in order;
 * a cancelled task never runs. */
static void test_raft_host_defer_runs_after_callbacks(void **state)
{
	(void)state;
	char errmsg[STRATA_ERRMSG_SIZE];
	struct raft_host *h = NULL;
	struct raft_host_config hc = {.bind_address = "127.0.0.1:0"};
	assert_int_equal(raft_host_new(&hc, &h, errmsg), 0);
	struct defer_state s = {.h = h};
	s.a = (struct raft_host_task){.data = &s, .fn = defer_note};
	s.b = s.a;
	s.c = s.a;
	struct raft_host_task t = {.data = &s, .fn = defer_submitted};
	assert_int_equal(raft_host_submit(h, &t), 0);
	for (int i = 0; i < 2000 && atomic_load(&s.n) < 3; i++) {
		usleep(1000);
	}
	usleep(20000); /* b would have run by now */
	assert_int_equal(atomic_load(&s.n), 3);
	assert_memory_equal(s.order, "sac", 3);
	raft_host_free(h);
}

/* ---- membership ------------------------------------------------------------
 */

struct change_wait {
	_Atomic int done;   /* callbacks seen */
	_Atomic int status; /* last status */
};

static void change_cb(void *arg, int status)
{
	struct change_wait *w = arg;
	atomic_store(&w->status, status);
	atomic_fetch_add(&w->done, 1);
}

/* Wait for one callback (up to ms) and return its status; fails the test
 * if none came. */
static int change_wait(struct change_wait *w, unsigned ms)
{
	for (unsigned t = 0; t < ms && atomic_load(&w->done) == 0; t += 5) {
		usleep(5000);
	}
	assert_int_equal(atomic_load(&w->done), 1);
	int st = atomic_load(&w->status);
	atomic_store(&w->done, 0);
	return st;
}

/* Wait until replica i follows a committed configuration of n voters
 * whose ids are ids[0..n). */
static bool wait_voters(struct rig *r, int i, const uint64_t *ids, unsigned n,
                        unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 5) {
		struct raft_group_member m[MAXN + 1];
		bool committed = false;
		unsigned got =
		        raft_group_members(r->g[i], m, MAXN + 1, &committed);
		bool ok = committed && got == n;
		for (unsigned k = 0; ok && k < n; k++) {
			bool found = false;
			for (unsigned j = 0; j < got && j <= MAXN; j++) {
				found |= m[j].id == ids[k] &&
				         m[j].role == RAFT_MEMBER_VOTER;
			}
			ok = found;
		}
		if (ok) {
			return true;
		}
		usleep(5000);
	}
	return false;
}

/* A one-replica group grows to three: two joiners start without
 * bootstrapping, set_members adds and promotes them, every replica then
 * follows the committed three-voter configuration, replays the history,
 * and the group keeps committing with one joiner stopped. */
static void test_raft_group_grow_one_to_three(void **state)
{
	(void)state;
	struct rig r;
	struct raft_group_config c = {0};
	rig_init(&r, 1, &c);
	assert_int_equal(wait_leader(&r, 10000), 0);
	struct counts cnt = {0};
	apply_n(r.g[0], 50, 2000, 3, &cnt);
	rig_join(&r, 1);
	rig_join(&r, 2);
	struct raft_group_member one;
	assert_int_equal(raft_group_members(r.g[1], &one, 1, NULL), 0);
	struct raft_group_peer want[3] = {
	        {1, r.addr[0]}, {2, r.addr[1]}, {3, r.addr[2]}};
	struct change_wait w = {0};
	assert_int_equal(raft_group_set_members(r.g[0], want, 3, change_cb, &w),
	                 0);
	assert_int_equal(change_wait(&w, 30000), 0);
	uint64_t ids[3] = {1, 2, 3};
	for (int i = 0; i < 3; i++) {
		assert_true(wait_voters(&r, i, ids, 3, 10000));
	}
	assert_true(atomic_load(&r.fsm[1].members) >= 1);
	assert_int_equal(atomic_load(&r.fsm[2].voters), 3);
	/* Idempotent: nothing left to do. */
	assert_int_equal(raft_group_set_members(r.g[0], want, 3, change_cb, &w),
	                 0);
	assert_int_equal(change_wait(&w, 10000), 0);
	apply_n(r.g[0], 50, 2000, 4, &cnt);
	assert_int_equal(atomic_load(&cnt.ok), 100);
	assert_true(wait_count(&r, 100, 10000));
	for (int i = 1; i < 3; i++) {
		assert_int_equal(atomic_load(&r.fsm[i].hash),
		                 atomic_load(&r.fsm[0].hash));
	}
	raft_group_stop(r.g[2]); /* 2 of 3 still a majority */
	r.g[2] = NULL;
	apply_n(r.g[0], 20, 2000, 5, &cnt);
	assert_int_equal(atomic_load(&cnt.ok), 120);
	rig_free(&r);
}

/* Replacing a member (1,2,3 -> 1,2,4 or the like, never removing the
 * leader) moves the group to the new voter set; the new member has the
 * whole history and the removed one, left running, does not disturb the
 * leader. */
static void test_raft_group_replace_member(void **state)
{
	(void)state;
	struct rig r;
	struct raft_group_config c = {0};
	rig_init(&r, 3, &c);
	int l = wait_leader(&r, 10000);
	assert_true(l >= 0);
	struct counts cnt = {0};
	apply_n(r.g[l], 60, 3000, 6, &cnt);
	int gone = (l + 1) % 3;
	int keep = (l + 2) % 3;
	rig_join(&r, 3);
	struct raft_group_peer want[3] = {{(uint64_t)l + 1, r.addr[l]},
	                                  {(uint64_t)keep + 1, r.addr[keep]},
	                                  {4, r.addr[3]}};
	struct change_wait w = {0};
	assert_int_equal(raft_group_set_members(r.g[l], want, 3, change_cb, &w),
	                 0);
	assert_int_equal(change_wait(&w, 30000), 0);
	uint64_t ids[3] = {want[0].id, want[1].id, 4};
	assert_true(wait_voters(&r, l, ids, 3, 10000));
	assert_true(wait_voters(&r, 3, ids, 3, 10000));
	/* The leader stops replicating to the removed replica as soon as it
	 * appends the change, so that replica never learns it was removed: its
	 * owner must hear it from whoever changed the set. Left running, it
	 * campaigns in vain (pre-vote) and must not disturb the leader. */
	struct raft_group_metrics before, after;
	raft_group_metrics(r.g[l], &before);
	apply_n(r.g[l], 20, 3000, 7, &cnt);
	usleep(1500 * 1000); /* > 2 election timeouts of 300 ms */
	raft_group_metrics(r.g[l], &after);
	assert_int_equal(after.term, before.term);
	assert_int_equal(after.role, RAFT_GROUP_LEADER);
	raft_group_stop(r.g[gone]);
	r.g[gone] = NULL;
	apply_n(r.g[l], 20, 3000, 8, &cnt);
	assert_int_equal(atomic_load(&cnt.ok), 100);
	assert_true(wait_count(&r, 100, 10000));
	assert_int_equal(atomic_load(&r.fsm[3].hash),
	                 atomic_load(&r.fsm[l].hash));
	rig_free(&r);
}

/* set_members without the leader removes it last: the change commits
 * (status 0), the old leader steps down, the two others elect a new
 * leader that commits, and neither lists the old one. */
static void test_raft_group_remove_leader(void **state)
{
	(void)state;
	struct rig r;
	struct raft_group_config c = {0};
	rig_init(&r, 3, &c);
	int l = wait_leader(&r, 10000);
	assert_true(l >= 0);
	struct counts cnt = {0};
	apply_n(r.g[l], 20, 1000, 8, &cnt);
	struct change_wait w = {0};
	struct raft_group_peer rest[2];
	for (int i = 0, k = 0; i < 3; i++) {
		if (i != l) {
			rest[k].id = (uint64_t)i + 1;
			rest[k++].address = r.addr[i];
		}
	}
	assert_int_equal(raft_group_set_members(r.g[l], rest, 2, change_cb, &w),
	                 0);
	assert_int_equal(change_wait(&w, 10000), 0);
	struct raft_group *old = r.g[l];
	r.g[l] = NULL; /* keep it running, but out of wait_leader */
	int nl = wait_leader(&r, 15000);
	assert_true(nl >= 0 && nl != l);
	uint64_t ids[2];
	int k = 0;
	for (int i = 0; i < 3; i++) {
		if (i != l) {
			ids[k++] = (uint64_t)i + 1;
		}
	}
	assert_true(wait_voters(&r, nl, ids, 2, 10000));
	apply_n(r.g[nl], 20, 1000, 9, &cnt);
	assert_int_equal(atomic_load(&cnt.ok), 40);
	struct raft_group_metrics m;
	raft_group_metrics(old, &m);
	assert_int_not_equal(m.role, RAFT_GROUP_LEADER);
	raft_group_stop(old);
	rig_free(&r);
}

/* Adding a node nobody listens on keeps the majority: commits go on while
 * it is a spare, its promotion fails with STRATA_ETIMEDOUT (it stays a
 * spare) and the group still commits; removing it works. */
static void test_raft_group_add_unreachable(void **state)
{
	(void)state;
	struct rig r;
	struct raft_group_config c = {0};
	rig_init(&r, 3, &c);
	int l = wait_leader(&r, 10000);
	assert_true(l >= 0);
	struct counts cnt = {0};
	struct change_wait w = {0};
	/* A port that was free a moment ago: nothing accepts there. */
	rig_host(&r, 3, 0);
	char dead[64];
	snprintf(dead, sizeof(dead), "%s", r.addr[3]);
	raft_host_free(r.host[3]);
	r.host[3] = NULL;
	assert_int_equal(raft_group_add(r.g[l], 9, dead, change_cb, &w), 0);
	assert_int_equal(change_wait(&w, 10000), 0);
	apply_n(r.g[l], 20, 1000, 10, &cnt);
	assert_int_equal(atomic_load(&cnt.ok), 20);
	assert_int_equal(
	        raft_group_assign(r.g[l], 9, RAFT_MEMBER_VOTER, change_cb, &w),
	        0);
	apply_n(r.g[l], 20, 1000, 11, &cnt); /* during the catch-up rounds */
	assert_int_equal(atomic_load(&cnt.ok), 40);
	assert_int_equal(change_wait(&w, 20000), STRATA_ETIMEDOUT);
	struct raft_group_member m[MAXN + 1];
	unsigned n = raft_group_members(r.g[l], m, MAXN + 1, NULL);
	assert_int_equal(n, 4);
	for (unsigned j = 0; j < n; j++) {
		if (m[j].id == 9) {
			assert_int_equal(m[j].role, RAFT_MEMBER_SPARE);
			assert_string_equal(m[j].address, dead);
		}
	}
	apply_n(r.g[l], 20, 1000, 12, &cnt);
	assert_int_equal(atomic_load(&cnt.ok), 60);
	assert_int_equal(raft_group_remove(r.g[l], 9, change_cb, &w), 0);
	assert_int_equal(change_wait(&w, 10000), 0);
	uint64_t ids[3] = {1, 2, 3};
	assert_true(wait_voters(&r, l, ids, 3, 10000));
	rig_free(&r);
}

/* Leadership transfer hands the group to the named voter; wrong targets
 * and callers are refused with a status naming why; membership errors
 * map to STRATA codes. */
static void test_raft_group_transfer_and_errors(void **state)
{
	(void)state;
	struct rig r;
	struct raft_group_config c = {0};
	rig_init(&r, 3, &c);
	int l = wait_leader(&r, 10000);
	assert_true(l >= 0);
	int f = (l + 1) % 3;
	struct change_wait w = {0};
	assert_int_equal(raft_group_transfer(r.g[f], 0, change_cb, &w), 0);
	assert_int_equal(change_wait(&w, 5000), STRATA_ENOTLEADER);
	assert_int_equal(raft_group_transfer(r.g[l], 42, change_cb, &w), 0);
	assert_int_equal(change_wait(&w, 5000), STRATA_ENOENT);
	assert_int_equal(
	        raft_group_transfer(r.g[l], (uint64_t)l + 1, change_cb, &w), 0);
	assert_int_equal(change_wait(&w, 5000), STRATA_EINVAL);
	assert_int_equal(raft_group_add(r.g[l], (uint64_t)f + 1, "127.0.0.1:1",
	                                change_cb, &w),
	                 0);
	assert_int_equal(change_wait(&w, 5000), STRATA_EEXIST);
	assert_int_equal(raft_group_assign(r.g[l], (uint64_t)f + 1,
	                                   RAFT_MEMBER_VOTER, change_cb, &w),
	                 0);
	assert_int_equal(change_wait(&w, 5000), STRATA_EINVAL);
	assert_int_equal(raft_group_remove(r.g[l], 42, change_cb, &w), 0);
	assert_int_equal(change_wait(&w, 5000), STRATA_ENOENT);
	assert_int_equal(raft_group_add(r.g[l], 0, "x", change_cb, &w),
	                 STRATA_EINVAL);
	assert_int_equal(raft_group_assign(r.g[l], 1, 7, change_cb, &w),
	                 STRATA_EINVAL);
	struct raft_group_peer dup[2] = {{1, "127.0.0.1:1"},
	                                 {1, "127.0.0.1:2"}};
	assert_int_equal(raft_group_set_members(r.g[l], dup, 2, change_cb, &w),
	                 STRATA_EINVAL);

	assert_int_equal(
	        raft_group_transfer(r.g[l], (uint64_t)f + 1, change_cb, &w), 0);
	assert_int_equal(change_wait(&w, 10000), 0);
	assert_int_equal(wait_leader(&r, 10000), f);
	struct counts cnt = {0};
	apply_n(r.g[f], 10, 1000, 13, &cnt);
	assert_int_equal(atomic_load(&cnt.ok), 10);
	rig_free(&r);
}

int main(void)
{
	assert_int_equal(strata_process_init(NULL), 0);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_raft_host_submit_runs_on_loop),
	        cmocka_unit_test(test_raft_host_defer_runs_after_callbacks),
	        cmocka_unit_test(test_raft_group_config_errors),
	        cmocka_unit_test(test_raft_group_lost_log_refuses_start),
	        cmocka_unit_test(test_raft_group_gap_and_metadata_advice),
	        cmocka_unit_test(test_raft_group_three_replicas_apply),
	        cmocka_unit_test(test_raft_group_host_name_addresses),
	        cmocka_unit_test(test_raft_group_budget_backpressure),
	        cmocka_unit_test(test_raft_group_snapshot_by_bytes_and_restart),
	        cmocka_unit_test(test_raft_group_raw_snapshots),
	        cmocka_unit_test(test_raft_group_catch_up_by_snapshot),
	        cmocka_unit_test(test_raft_group_slow_follower_holds),
	        cmocka_unit_test(test_raft_group_odd_sizes_survive_restart),
	        cmocka_unit_test(test_raft_group_damaged_log_refuses_start),
#ifdef STRATA_LIBRAFT_FAULTS
	        cmocka_unit_test(test_raft_group_log_write_failure),
	        cmocka_unit_test(test_raft_group_barrier_write_fails),
	        cmocka_unit_test(test_raft_group_leader_log_write_failure),
	        cmocka_unit_test(test_raft_group_leader_disk_full),
	        cmocka_unit_test(test_raft_group_snapshot_write_fails),
	        cmocka_unit_test(test_raft_group_install_fails),
#endif
	        cmocka_unit_test(test_raft_group_grow_one_to_three),
	        cmocka_unit_test(test_raft_group_replace_member),
	        cmocka_unit_test(test_raft_group_remove_leader),
	        cmocka_unit_test(test_raft_group_add_unreachable),
	        cmocka_unit_test(test_raft_group_transfer_and_errors),
	};
	return cmocka_run_group_tests_name("raft_group", tests, NULL, NULL);
}
