/* Raft groups: the one way Strata creates, configures, drives and closes a
 * canonical/raft group (loop thread, submit queue, byte budget, snapshots
 * by bytes, leadership callbacks, metrics). */
#ifndef RAFT_GROUP_H
#define RAFT_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Threading: a host owns one libuv loop running on its own thread, the
 * Raft port (raft/transport.h) and every group started on it. All libraft
 * calls run on that loop thread. The functions below marked "any thread"
 * are thread-safe; FSM hooks and apply callbacks run on the loop thread
 * and must not block (hand slow work to a worker).
 */

/* Roles, same values as libraft's RAFT_FOLLOWER... */
enum raft_group_role {
	RAFT_GROUP_UNAVAILABLE = 0,
	RAFT_GROUP_FOLLOWER = 1,
	RAFT_GROUP_CANDIDATE = 2,
	RAFT_GROUP_LEADER = 3,
};

/* Buckets of the loop-stall histogram: bucket 0 counts probe lateness
 * below 1 ms, bucket i (1..10) below 2^i ms, bucket 11 the rest. */
#define RAFT_STALL_BUCKETS 12

/* Loop-stall histogram: how late a periodic probe timer fired. */
struct raft_stall_hist {
	uint64_t count[RAFT_STALL_BUCKETS]; /* probes per bucket */
	uint64_t samples;                   /* probes in total */
	uint64_t max_us;                    /* worst lateness seen */
};

/* Host settings; zero fields take the defaults noted. */
struct raft_host_config {
	const char *bind_address; /* Raft port, "IPv4:port" (port 0: any) */
	bool tcp_nodelay_off;     /* keep Nagle on (bench comparison only) */
	unsigned stall_tick_ms;   /* stall probe and metrics period (10) */
};

struct raft_host;

/*
 * Bind the Raft port and start the loop thread. *out is owned by the
 * caller and freed by raft_host_free. Any thread but a host loop.
 * Errors: STRATA_EINVAL / STRATA_EIO (bad or busy address), STRATA_ENOMEM,
 * STRATA_EIO (thread); errmsg says which.
 */
int raft_host_new(const struct raft_host_config *cfg, struct raft_host **out,
                  char *errmsg);

/* Stop the loop thread and free the host. Every group must have been
 * stopped. Any thread but the host's loop; blocks until done. */
void raft_host_free(struct raft_host *h);

/* Port the host listens on. Any thread. */
uint16_t raft_host_port(const struct raft_host *h);

/* True when called on h's loop thread. */
bool raft_host_on_loop(const struct raft_host *h);

/* Copy the loop-stall histogram. Any thread. */
void raft_host_stalls(struct raft_host *h, struct raft_stall_hist *out);

/* Work to run on the loop thread; caller-allocated, borrowed until fn. */
struct raft_host_task {
	void *data;                              /* user data */
	void (*fn)(struct raft_host_task *task); /* runs on the loop */
	struct raft_host_task *next;             /* private */
};

/*
 * Queue task; task->fn(task) runs on the loop thread soon after, in
 * submission order, never from inside this call. Any thread.
 * Errors: STRATA_ESHUTDOWN when the host is stopping (fn never runs).
 */
int raft_host_submit(struct raft_host *h, struct raft_host_task *task);

/*
 * Run task->fn(task) on the loop thread once the callbacks of the current
 * loop iteration are done (libuv's check phase), in deferral order. Loop
 * thread only; task must not be queued already. Owners use it to answer
 * clients after libraft has returned from a write completion: libraft
 * fires every commit callback of a write before it starts the next write,
 * so replies sent from inside those callbacks (socket sends, wake-ups)
 * would delay the next fdatasync. A deferred task still queued when the
 * host stops runs then.
 */
void raft_host_defer(struct raft_host *h, struct raft_host_task *task);

/* Remove a task queued by raft_host_defer (fn will not run); no-op when
 * it is not queued. Loop thread only. */
void raft_host_defer_cancel(struct raft_host *h, struct raft_host_task *task);

/* One voter of a group's initial configuration. */
struct raft_group_peer {
	uint64_t id;         /* node id, > 0, unique in the group */
	const char *address; /* its host's Raft address, "IPv4:port" */
};

/* Group settings; zero fields take the defaults noted. */
struct raft_group_config {
	uint64_t group_id;    /* > 0, unique per host */
	uint64_t node_id;     /* this replica; must be in peers */
	const char *data_dir; /* created with parents if missing */
	const struct raft_group_peer *peers; /* initial voters (copied) */
	unsigned n_peers;                    /* 1.. entries in peers */
	unsigned election_ms;                /* election timeout (1000) */
	unsigned heartbeat_ms;               /* heartbeat (100) */
	bool pre_vote_off;                   /* pre-vote is on unless set */
	/* A leader that sent a snapshot and heard nothing back sends it again
	 * after this long (5000; at least election_ms). libraft's own
	 * default is 30 s, and a follower busy with its own snapshot drops an
	 * incoming one without a reply, which then stalled its catch-up for
	 * those 30 s. Resending early costs a transfer, never correctness. */
	unsigned snapshot_resend_ms;
	/* Slow-follower flow control (leader): new applies wait while a live
	 * follower is more than lag_bytes behind (16 MiB; at least 64
	 * entries) until it is within a quarter of that; a follower with no
	 * progress for lag_hold_ms (2 x election_ms) stops holding. Why:
	 * raft/group.c, should_hold. */
	uint64_t lag_bytes;
	unsigned lag_hold_ms;
	uint64_t snapshot_bytes; /* snapshot after this many applied (16 MiB) */
	uint64_t trailing_bytes; /* log kept behind a snapshot (4 MiB) */
	/* A leader's snapshot keeps more, up to this much (64 MiB; at least
	 * trailing_bytes), back to the oldest entry a live follower still
	 * needs, so a lagging or installing follower goes on from there.
	 * Why: raft/retain.c. */
	uint64_t retain_bytes;
	uint64_t segment_bytes; /* log segment size (64 MiB) */
	/* Store snapshots as they are, not LZ4-compressed (libraft's
	 * default): for state that is mostly incompressible data. */
	bool raw_snapshots;
	uint64_t
	        inflight_bytes; /* apply budget, queued + uncommitted (2 MiB) */
	bool join; /* new replica of a running group: no bootstrap, peers
	              optional; a leader adds it (raft_group_set_members) */
	const char *self_address; /* this node's Raft address when node_id is
	                             not in peers (join); copied */
};

/* What role_changed reports. */
struct raft_group_status {
	int role;           /* enum raft_group_role */
	bool ready;         /* leader whose barrier committed: may serve */
	uint64_t term;      /* current term */
	uint64_t leader_id; /* known leader, 0 if none */
	bool log_failed;    /* left the group: a write to its log failed */
};

/* Member roles, same values as libraft's RAFT_STANDBY/VOTER/SPARE. */
enum raft_group_member_role {
	RAFT_MEMBER_STANDBY = 0, /* replicates the log, does not vote */
	RAFT_MEMBER_VOTER = 1,   /* replicates and counts for the majority */
	RAFT_MEMBER_SPARE = 2,   /* configured only: no log, no vote */
};

/* Longest member address, without the NUL. */
#define RAFT_GROUP_ADDRESS_MAX 255

/* One server of a group's configuration (all fields owned). */
struct raft_group_member {
	uint64_t id;                              /* node id */
	int role;                                 /* raft_group_member_role */
	char address[RAFT_GROUP_ADDRESS_MAX + 1]; /* "IPv4:port" */
};

/*
 * The owner's state machine. Every hook runs on the loop thread.
 * - apply: a committed entry (index, bytes borrowed for the call); *result
 *   is handed to the proposer's apply callback on the leader (the owner
 *   frees it there; ignored on followers). Must be deterministic; a
 *   non-zero return stalls the group (the entry is retried).
 * - snapshot: serialize the whole state into *buf (allocated with
 *   strata_malloc, freed by the group once stored). Non-zero: skip.
 * - restore: replace the state with a snapshot (buf borrowed). Non-zero
 *   fails the install.
 * - role_changed (may be NULL): role, term, leader or readiness changed.
 * - members_changed (may be NULL): the configuration this replica follows
 *   changed (members borrowed for the call). committed false means it may
 *   still be rolled back. A replica that finds itself missing from a
 *   committed configuration was removed: its owner may stop it and delete
 *   its data.
 */
struct raft_group_fsm {
	void *data; /* passed to every hook */
	int (*apply)(void *data, uint64_t index, const void *buf, size_t len,
	             void **result);
	int (*snapshot)(void *data, void **buf, size_t *len);
	int (*restore)(void *data, const void *buf, size_t len);
	void (*role_changed)(void *data, const struct raft_group_status *st);
	void (*members_changed)(void *data,
	                        const struct raft_group_member *members,
	                        unsigned n, bool committed);
};

/* Counters and gauges of a group (see raft_group_metrics). */
struct raft_group_metrics {
	int role;                     /* enum raft_group_role */
	bool ready;                   /* leader and barrier committed */
	uint64_t term;                /* current term */
	uint64_t leader_id;           /* known leader, 0 if none */
	uint64_t commit_index;        /* highest committed index */
	uint64_t applied_index;       /* highest applied index */
	uint64_t last_index;          /* last index in the log */
	uint64_t snapshot_index;      /* index of the last snapshot */
	uint64_t last_contact_ms;     /* follower: since leader contact */
	uint64_t leader_changes;      /* times a new leader was seen */
	uint64_t applied_entries;     /* commands applied here */
	uint64_t applied_bytes;       /* their bytes */
	uint64_t inflight_bytes;      /* apply budget in use */
	uint64_t rejected_full;       /* applies refused: budget full */
	uint64_t snapshots_taken;     /* snapshots stored */
	uint64_t snapshots_failed;    /* snapshots that could not be stored */
	uint64_t installs_failed;     /* leader's snapshots not installed */
	uint64_t snapshot_last_us;    /* duration of the last one */
	uint64_t snapshot_total_us;   /* sum of durations */
	uint64_t snapshots_installed; /* snapshots installed from a leader */
	uint64_t install_last_us;     /* restore duration of the last one */
	uint64_t lag_holds; /* times applies waited for a slow follower */
	/* snapshots that kept more than trailing_bytes of log behind them
	 * for a follower that still needed it */
	uint64_t snapshots_retained;
};

struct raft_group;

/*
 * Create data_dir, bootstrap the initial configuration (or find it already
 * set up) and start the replica on host h. fsm is copied; fsm->data is
 * borrowed until raft_group_stop returns. *out is owned by the caller.
 * Any thread but h's loop; blocks while libraft loads the log (bounded by
 * snapshot_bytes + retain_bytes). Errors: STRATA_ECONFIG (bad config),
 * STRATA_EIO (data dir, disk), STRATA_ECORRUPT (a damaged log segment:
 * nothing is changed on disk and the log line says how to recover),
 * STRATA_EEXIST (group id already on h), STRATA_ENOMEM, STRATA_ESHUTDOWN;
 * errmsg says which and what to do.
 */
int raft_group_start(struct raft_host *h, const struct raft_group_config *cfg,
                     const struct raft_group_fsm *fsm, struct raft_group **out,
                     char *errmsg);

/*
 * Close the replica and free g. Applies still queued fail with
 * STRATA_ESHUTDOWN, uncommitted ones with STRATA_ELEADERLOST, before this
 * returns. Any thread but h's loop; blocks until libraft closed.
 */
void raft_group_stop(struct raft_group *g);

/* Called once per apply, on the loop thread, never from inside
 * raft_group_apply. status: 0 (committed and applied, result from the FSM),
 * STRATA_ENOTLEADER (not appended: retry on the leader),
 * STRATA_ELEADERLOST (appended, outcome unknown), STRATA_ESHUTDOWN,
 * STRATA_ENOMEM or STRATA_EIO. */
typedef void (*raft_group_apply_cb)(void *arg, int status, void *result);

/*
 * Propose len bytes (copied) as one entry. Any thread. Returns 0 when
 * queued (cb fires later), else: STRATA_EAGAIN (in-flight budget full:
 * back-pressure, retry after an earlier callback), STRATA_ETOOBIG (len is 0
 * or above the whole budget), STRATA_ESHUTDOWN, STRATA_ENOMEM.
 */
int raft_group_apply(struct raft_group *g, const void *buf, size_t len,
                     raft_group_apply_cb cb, void *arg);

/* Copy the current metrics (refreshed every stall tick and on role
 * changes). Any thread. */
void raft_group_metrics(struct raft_group *g, struct raft_group_metrics *out);

/* True when this replica is the leader and its barrier committed, i.e. it
 * may serve reads. Any thread. */
bool raft_group_is_ready(struct raft_group *g);

/*
 * Membership changes. Each one runs on the leader's loop (any thread may
 * call), changes one server per committed configuration entry, and calls
 * cb(arg, status) exactly once on the loop thread, never from inside the
 * call. The call itself returns 0 (queued), STRATA_EINVAL (bad argument),
 * STRATA_ENOMEM or STRATA_ESHUTDOWN; then cb does not fire. cb statuses:
 * 0 (the new configuration committed), STRATA_ENOTLEADER (not the leader:
 * retry there), STRATA_EBUSY (another change or a transfer is in progress:
 * retry after it), STRATA_EEXIST (id or address already a member),
 * STRATA_ENOENT (no such member), STRATA_EINVAL (role already held, or
 * not allowed), STRATA_ETIMEDOUT (a promoted node did not catch up: it
 * stays as it was), STRATA_ELEADERLOST (leadership lost before the commit:
 * outcome unknown, read raft_group_members on the new leader),
 * STRATA_ESHUTDOWN, STRATA_ENOMEM, STRATA_EIO.
 */
typedef void (*raft_group_change_cb)(void *arg, int status);

/* Add node_id at address (copied) as a spare. The node must run the group
 * started with cfg.join (never bootstrapped). */
int raft_group_add(struct raft_group *g, uint64_t node_id, const char *address,
                   raft_group_change_cb cb, void *arg);

/* Give node_id a new role (enum raft_group_member_role). Promotion to
 * voter first replicates the log to it in catch-up rounds and appends the
 * change only once it is close (libraft: 10 rounds, 5 s without progress
 * fails with STRATA_ETIMEDOUT). */
int raft_group_assign(struct raft_group *g, uint64_t node_id, int role,
                      raft_group_change_cb cb, void *arg);

/* Remove node_id. Removing the leader itself is allowed: it steps down once
 * the change commits and the others elect a leader after an election
 * timeout (transfer leadership first to avoid that gap). */
int raft_group_remove(struct raft_group *g, uint64_t node_id,
                      raft_group_change_cb cb, void *arg);

/* Hand leadership to voter node_id (0: the most up-to-date voter), e.g.
 * before a graceful shutdown. cb status: 0 when this replica saw node_id
 * become leader, STRATA_ETIMEDOUT when that did not happen within an
 * election timeout, STRATA_ENOENT (no other voter), STRATA_EINVAL (node_id
 * not a voter or self), STRATA_ENOTLEADER, STRATA_EBUSY. */
int raft_group_transfer(struct raft_group *g, uint64_t node_id,
                        raft_group_change_cb cb, void *arg);

/*
 * Change the voter set to exactly voters[0..n) (copied), one safe step at
 * a time: add each new node as a spare, promote it (after catch-up),
 * remove each old node, the leader itself last. Idempotent: it works from
 * the current configuration, so after an error (e.g. STRATA_ENOTLEADER or
 * STRATA_ELEADERLOST) call it again on the current leader. A node already
 * present under another address fails STRATA_EINVAL (remove it first).
 * cb statuses as above; 0 when the configuration equals voters.
 */
int raft_group_set_members(struct raft_group *g,
                           const struct raft_group_peer *voters, unsigned n,
                           raft_group_change_cb cb, void *arg);

/* Copy up to max members of the configuration this replica follows (the
 * latest, possibly uncommitted) into out; return how many there are.
 * *committed (may be NULL) tells whether that configuration committed.
 * Any thread. */
unsigned raft_group_members(struct raft_group *g, struct raft_group_member *out,
                            unsigned max, bool *committed);

/* Fill defaults into the zero fields of cfg. */
void raft_group_config_defaults(struct raft_group_config *cfg);

#endif /* RAFT_GROUP_H */
