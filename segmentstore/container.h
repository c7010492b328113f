/* segmentstore/container.h: one replica of a segment container (Raft group
 * + container FSM + group commit + reads + storage writer to tier 2). */
#ifndef SEGMENTSTORE_CONTAINER_H
#define SEGMENTSTORE_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/group.h"

struct tier2;
struct container;
struct metrics_registry;

/* Replica settings; zero fields take the defaults noted. */
struct container_config {
	uint32_t id;          /* container id; Raft group id = id + 1 */
	uint64_t node_id;     /* this store's node id (Raft node id) */
	const char *data_dir; /* this container's directory (created) */
	const struct raft_group_peer *peers; /* replica set (copied) */
	unsigned n_peers;                    /* entries in peers */
	/* raft tuning (0 = raft/group.h defaults) */
	unsigned election_ms, heartbeat_ms;
	uint64_t snapshot_bytes, segment_bytes;
	uint64_t max_event_bytes;  /* largest event payload (8 MiB) */
	uint64_t max_append_bytes; /* per request (16 MiB - 64 KiB); must be
	                            * the same on every replica */
	uint64_t batch_bytes;      /* group-commit entry target (256 KiB) */
	uint64_t unflushed_budget; /* back-pressure above this (256 MiB) */
	uint64_t cache_budget;     /* read cache (256 MiB) */
	struct tier2 *tier2;       /* borrowed; NULL = no tier 2 (tests) */
	uint64_t flush_bytes;  /* flush a segment at this many unflushed bytes
	                        * (4 MiB) */
	uint64_t flush_age_ms; /* ... or when its oldest unflushed byte is
	                        * this old (5000) */
	uint64_t chunk_bytes;  /* roll to a new chunk at this size (64 MiB) */
	bool join;             /* new replica of a running group: no
	                        * bootstrap (raft_group_config.join) */
	const char *self_address; /* this node's Raft address when it is not
	                           * in peers (join); copied */
	struct metrics_registry *metrics; /* borrowed until container_stop;
	                                   * NULL = no metrics. Series are
	                                   * labelled container="<id>" */
};

/* What a request asks for. */
enum container_op {
	CONTAINER_CREATE,
	CONTAINER_SETUP_APPEND,
	CONTAINER_APPEND,
	CONTAINER_READ,
	CONTAINER_INFO,
	CONTAINER_SEAL,
	CONTAINER_TRUNCATE,
	CONTAINER_MERGE,
	CONTAINER_GET_ATTR,
	CONTAINER_UPDATE_ATTR,
	CONTAINER_DELETE,
};

/* One request; everything it points to is borrowed until the callback. */
struct container_request {
	enum container_op op;
	const char *segment;   /* qualified name */
	const char *source;    /* MERGE: source segment (merged into segment) */
	uint8_t writer_id[16]; /* APPEND/SETUP_APPEND */
	int64_t first_event_number; /* APPEND: number of the first event */
	uint32_t event_count;       /* APPEND: events in data */
	const uint8_t *data;        /* APPEND: framed events (4-byte LE length
	                             * + payload, repeated) */
	size_t len;                 /* APPEND: bytes in data */
	int64_t expected_offset;    /* APPEND: -1 = unconditional */
	uint64_t offset;            /* READ/TRUNCATE */
	uint32_t max_bytes;         /* READ: at most this many bytes */
	uint32_t wait_ms;           /* READ: long-poll at the tail */
	bool idempotent;            /* CREATE: existing segment is success */
	uint8_t attr_key[16];       /* GET_ATTR/UPDATE_ATTR */
	int64_t attr_value;         /* UPDATE_ATTR: new value */
	int64_t attr_expected;      /* UPDATE_ATTR: compare value */
	bool attr_compare;          /* UPDATE_ATTR: compare-and-set */
};

/* The outcome; valid only during the callback. */
struct refbuf;

struct container_reply {
	uint64_t offset;       /* APPEND: offset of the first byte written (or
	                        * the length on dedup/EBADOFFSET); READ: offset
	                        * of data; MERGE: target offset of the source */
	uint64_t length;       /* segment length (INFO, SEAL, APPEND: after) */
	uint64_t start_offset; /* INFO/TRUNCATE */
	uint64_t flushed_length;   /* INFO */
	uint64_t events;           /* INFO: appended since loaded */
	int64_t last_event_number; /* APPEND/SETUP_APPEND: writer's last */
	bool duplicate;            /* APPEND: already appended, not written */
	bool sealed;               /* INFO/READ */
	bool end_of_segment;       /* READ: sealed and offset == length */
	bool at_tail;              /* READ: data ends at the current length */
	bool attr_present;         /* GET_ATTR/UPDATE_ATTR */
	int64_t attr_value;        /* GET_ATTR/UPDATE_ATTR (current on
	                            * ECONFLICT) */
	const uint8_t *data;       /* READ: borrowed for the completion */
	size_t data_len;           /* READ */
	struct refbuf *data_ref;   /* READ: the reference-counted buffer data
	                            * lies in, or NULL; hold it to keep data
	                            * after the completion returns */
	const char *message;       /* error detail for people, or NULL */
};

/*
 * Completion: called exactly once per accepted request, never from inside
 * container_submit, on the container's loop thread or a worker thread.
 * code is 0 or STRATA_E*: ENOTLEADER when this replica is not the ready
 * leader (reply->message names the leader id if known), EAGAIN
 * (back-pressure: retry later), ETOOBIG, ESEALED, ENOENT, EEXIST,
 * EBADEVENTNUM, EBADOFFSET, ETRUNCATED, ECONFLICT, EPROTO (bad framing),
 * ELEADERLOST (outcome unknown), ESHUTDOWN, EIO, ENOMEM.
 */
typedef void (*container_done_fn)(void *arg, int code,
                                  const struct container_reply *reply);

/*
 * Start one replica on host h: creates data_dir, starts Raft group
 * cfg->id + 1 with the container FSM. cfg is copied (tier2 and metrics
 * stay borrowed until container_stop). *out is freed by container_stop.
 * With cfg->metrics it registers (or takes over, after a restart in the
 * same process) the series strata_segmentstore_tier2_* (writes, written
 * bytes, write errors, write latency, reads, read bytes, read errors, read
 * latency, deletes, delete errors, orphans deleted),
 * strata_segmentstore_container_{appends,appended_bytes}_total and
 * strata_segmentstore_container_append_seconds (submit to acknowledgement
 * of appends), and the group's strata_raft_* series (raft/metrics.h).
 * Any thread but h's loop. Errors: STRATA_ECONFIG, STRATA_EIO,
 * STRATA_EEXIST, STRATA_ENOMEM, STRATA_ESHUTDOWN; errmsg
 * (STRATA_ERRMSG_SIZE) says what failed and what to do.
 */
int container_start(struct raft_host *h, const struct container_config *cfg,
                    struct container **out, char *errmsg);

/* Stop and free c: pending requests (and long-polls) complete with
 * STRATA_ESHUTDOWN (or ELEADERLOST if proposed, not yet committed) before
 * this returns. Any thread but the host's loop; blocks. */
void container_stop(struct container *c);

/*
 * Queue req; done(arg, ...) fires later exactly once. Any thread but a
 * callback of done may also call it. Returns 0 (accepted), or
 * STRATA_EINVAL (NULL argument, bad op) / STRATA_ESHUTDOWN without
 * calling done.
 */
int container_submit(struct container *c, const struct container_request *req,
                     container_done_fn done, void *arg);

/* The replica's Raft group, for membership changes and metrics
 * (raft_group_set_members, raft_group_transfer, raft_group_metrics);
 * valid until container_stop. Any thread. */
struct raft_group *container_raft_group(struct container *c);

/* A snapshot of a replica's state. */
struct container_status {
	int role;                 /* enum raft_group_role */
	bool ready;               /* leader whose barrier committed */
	uint64_t term;            /* current Raft term */
	uint64_t leader_id;       /* known leader, 0 if none */
	uint64_t unflushed_bytes; /* Tier-1 bytes not yet in tier 2 */
	uint64_t segments;        /* live segments */
	uint64_t cache_bytes;     /* read cache in use */
	bool tier2_degraded;      /* tier 2 failing: flushes retrying */
	bool log_failed;   /* this replica left its group: a log write failed */
	bool start_failed; /* (backend status only) the replica here did not
	                      start: a damaged log, a failing disk */
};

/* Fill *out. Any thread. */
void container_status(struct container *c, struct container_status *out);

#endif /* SEGMENTSTORE_CONTAINER_H */
