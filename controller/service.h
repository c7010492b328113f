/* Controller service: the Raft group that replicates the controller FSM,
 * with locked FSM access, proposals, leadership status and waiters. */
#ifndef CONTROLLER_SERVICE_H
#define CONTROLLER_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/fsm.h"
#include "raft/group.h"

/*
 * Threading: the FSM is applied on the Raft loop thread; every other
 * thread (RPC handlers, HTTP handlers, the workflow driver, the ticker)
 * reads it between ctl_service_lock() and ctl_service_unlock(). Proposals
 * may be made from any thread; their callbacks run on the loop thread.
 */

#define CTL_MAX_MEMBERS 9   /* most controller replicas in one cluster */
#define CTL_URL_MAX 256     /* longest URL or address of a member */
#define CTL_RAFT_GROUP_ID 1 /* the controller's Raft group id */

/* One controller replica as configured in raft.members. */
struct ctl_member {
	uint64_t id;                    /* Raft node id, > 0 */
	char raft_address[CTL_URL_MAX]; /* "IPv4:port" */
	char client_url[CTL_URL_MAX];   /* NNG URL of its client API */
	char http_url[CTL_URL_MAX];     /* REST/metrics URL, "" if unknown */
};

/*
 * Parse a member list "ID=RAFT_ADDR,CLIENT_URL[,HTTP_URL];ID=..." (spaces
 * around items ignored) into out[0..*n) (at most CTL_MAX_MEMBERS). Errors:
 * STRATA_ECONFIG with errmsg (STRATA_ERRMSG_SIZE) naming the item and the
 * expected syntax: bad id, duplicate id, missing or too long field, a
 * RAFT_ADDR that is not IPv4:port, too many members.
 */
int ctl_members_parse(const char *spec, struct ctl_member *out, unsigned *n,
                      char *errmsg);

/* The member with id in members[0..n), or NULL. */
const struct ctl_member *ctl_member_find(const struct ctl_member *members,
                                         unsigned n, uint64_t id);

/* How to start the service; strings are copied. */
struct ctl_service_config {
	uint64_t node_id;                 /* this replica, must be a member */
	const char *data_dir;             /* Raft log and snapshots */
	const char *raft_listen;          /* bind address "IPv4:port" */
	const struct ctl_member *members; /* every replica (copied) */
	unsigned n_members;               /* 1..CTL_MAX_MEMBERS */
	uint32_t container_count;         /* fixed for the cluster's life */
	unsigned election_ms;             /* 0 = raft default */
	unsigned heartbeat_ms;            /* 0 = raft default */
	uint64_t snapshot_bytes;          /* 0 = raft default */
	unsigned wait_ms;                 /* longest ctl_service_wait */
	/* A replica whose Raft log failed (it left the group) is restarted
	 * in-process this long after, then at doubling intervals up to 10
	 * minutes while it keeps failing. 0 = 30 s. */
	unsigned recover_ms;
	bool join; /* new replica of a running cluster: never bootstrap;
	              the leader adds it (CTL_ADD_CONTROLLER) */
	/* Called once (from the Raft loop thread) when this replica finds
	 * it cannot go on: its containers.count differs from the cluster's
	 * (cfsm_count_conflict). message says what and the fix. The replica
	 * has stopped serving; the process should exit (NULL: it only stops
	 * serving). */
	void (*on_fatal)(void *arg, const char *message);
	void *fatal_arg;
};

struct ctl_service;

/*
 * Create the FSM, bind the Raft port and start (or bootstrap) the
 * replica. Blocks while the Raft log loads. *out is owned by the caller
 * until ctl_service_stop. Errors: STRATA_ECONFIG (node not a member, bad
 * count), STRATA_EIO (port, data dir), STRATA_ENOMEM; errmsg says which.
 */
int ctl_service_start(const struct ctl_service_config *cfg,
                      struct ctl_service **out, char *errmsg);

/* Stop the replica (pending proposals fail with STRATA_ESHUTDOWN, waiters
 * are told "not satisfied") and free s. Not from the loop thread. */
void ctl_service_stop(struct ctl_service *s);

/* Lock the FSM for reading and return it; borrowed pointers into it stay
 * valid until ctl_service_unlock(). Never from a proposal callback that
 * already holds it; never while calling back into the service. */
const struct cfsm *ctl_service_lock(struct ctl_service *s);
void ctl_service_unlock(struct ctl_service *s);

/* Status of this replica (any thread). */
struct ctl_status {
	int role;                 /* enum raft_group_role */
	bool ready;               /* leader whose barrier committed */
	uint64_t node_id;         /* this replica */
	uint64_t term;            /* current term */
	uint64_t leader_id;       /* known leader, 0 if none */
	uint64_t applied_index;   /* last entry applied to the FSM */
	uint64_t commit_index;    /* highest committed index */
	uint64_t last_index;      /* last index in the log */
	uint64_t snapshot_index;  /* index of the last snapshot */
	uint64_t applied_entries; /* entries applied since start */
	bool log_failed;          /* out of the group: its log failed */
	bool restarting;          /* the replica is being started again */
	uint64_t restart_in_ms;   /* planned restart, 0 = none planned */
	const char *data_dir;     /* its Raft log (the service's life) */
};
void ctl_service_status(struct ctl_service *s, struct ctl_status *out);

/* True when this replica leads and may serve (barrier committed). */
bool ctl_service_is_ready(struct ctl_service *s);

/* The configured member with this id (borrowed for the service's life),
 * NULL if none. */
const struct ctl_member *ctl_service_member(const struct ctl_service *s,
                                            uint64_t id);

/* Every configured member; *n receives the count. Borrowed likewise. */
const struct ctl_member *ctl_service_members(const struct ctl_service *s,
                                             unsigned *n);

/* Client URL of controller id into buf (size bytes): the endpoint
 * recorded in the FSM (members added at run time), else the configured
 * one. False when neither knows id. Not under the FSM lock. */
bool ctl_service_member_url(struct ctl_service *s, uint64_t id, char *buf,
                            size_t size);

/* True when addr is "a.b.c.d:port" with a port in 1..65535. */
bool ctl_raft_address_ok(const char *addr);

/* The Raft configuration this replica follows (see raft_group_members). */
unsigned ctl_service_raft_members(struct ctl_service *s,
                                  struct raft_group_member *out, unsigned max,
                                  bool *committed);

/* Make voters[0..n) the exact voter set, one safe step at a time (see
 * raft_group_set_members: cb fires once on the loop thread unless this
 * returns non-zero). Leader only. */
int ctl_service_set_voters(struct ctl_service *s,
                           const struct raft_group_peer *voters, unsigned n,
                           raft_group_change_cb cb, void *arg);

/* Index of the last applied entry read under the FSM lock (consistent
 * with the state seen between lock and unlock). */
uint64_t ctl_service_applied_locked(const struct ctl_service *s);

/*
 * Outcome of a proposal, on the loop thread. status: 0 (applied; res
 * holds the FSM's answer, borrowed for the call), STRATA_ENOTLEADER (not
 * appended), STRATA_ELEADERLOST (outcome unknown), STRATA_ESHUTDOWN,
 * STRATA_ENOMEM, STRATA_EIO; res is NULL then.
 */
typedef void (*ctl_propose_cb)(void *arg, int status,
                               const struct cfsm_result *res);

/* Pack cmd (borrowed) and propose it as one Raft entry; cb fires exactly
 * once later unless this returns non-zero: STRATA_EAGAIN (in-flight budget
 * full), STRATA_ETOOBIG, STRATA_ESHUTDOWN, STRATA_ENOMEM. Any thread. */
int ctl_service_propose(struct ctl_service *s,
                        const Strata__V1__ControllerCommand *cmd,
                        ctl_propose_cb cb, void *arg);

/* Propose and wait for the outcome (not from the loop thread). Returns the
 * proposal status, else res->code; res (may be NULL) receives the FSM's
 * answer (caller-owned, large: allocate it). */
int ctl_service_propose_sync(struct ctl_service *s,
                             const Strata__V1__ControllerCommand *cmd,
                             struct cfsm_result *res);

/* Called under the FSM lock after every applied entry: true = satisfied. */
typedef bool (*ctl_wait_pred)(const struct cfsm *fsm, void *arg);
/* Called once without the lock: satisfied, or false when the deadline
 * passed or the service stopped. Any thread (loop or timer). */
typedef void (*ctl_wait_done)(void *arg, bool satisfied);

/*
 * Call done(arg, true) once pred(fsm, arg) holds (checked now and after
 * every applied entry), or done(arg, false) after wait_ms (the configured
 * bound) or at stop. done may run before this returns (pred already
 * true). Returns 0 or STRATA_ENOMEM / STRATA_ESHUTDOWN (done not called).
 */
int ctl_service_wait(struct ctl_service *s, ctl_wait_pred pred,
                     ctl_wait_done done, void *arg);

/* Block until an entry is applied, a snapshot installed or the role
 * changes after the change count *seen (updated), or timeout_ms passes.
 * For the leader-side workers. */
void ctl_service_wait_change(struct ctl_service *s, uint64_t *seen,
                             unsigned timeout_ms);

/* Wall-clock milliseconds since the epoch (what the leader stamps). */
uint64_t ctl_now_ms(void);

#endif /* CONTROLLER_SERVICE_H */
