/* Segment container state machine: the deterministic, network-free core a
 * container's Raft group replicates. Applies batch entries (segmentstore/
 * entry.h) to segment metadata and the unflushed tail; snapshots and
 * restores them. Never reads clocks or random numbers. */
#ifndef SEGMENTSTORE_CONTAINER_FSM_H
#define SEGMENTSTORE_CONTAINER_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segmentstore/segment.h"
#include "strata/error.h"

/* Default largest payload of one APPEND operation. */
#define CONTAINER_DEFAULT_MAX_APPEND (8u * 1024 * 1024)
/* Attribute value meaning "absent" (same as SEGMENT_ATTR_NONE). */
#define CONTAINER_ATTR_NONE SEGMENT_ATTR_NONE

/* Settings that change what apply does: they MUST be identical on every
 * replica of a container (cluster-wide configuration). */
struct container_fsm_config {
	uint64_t max_append_bytes; /* larger APPEND data -> STRATA_ETOOBIG */
};

/* Outcome of one operation of an applied entry. */
struct container_result {
	int code;         /* 0 or the STRATA_E* code of this operation */
	bool dedup;       /* APPEND: duplicate, acknowledged, not written */
	uint64_t segment; /* segment the op addressed; CREATE: the new id */
	uint64_t offset;  /* APPEND: offset of the first byte written, or
	                   * the segment length (dedup, EBADOFFSET); SEAL,
	                   * DELETE: final length; TRUNCATE: start offset;
	                   * MERGE: target offset of the source's first byte;
	                   * FLUSH: flushed length; CHUNK_DELETED: garbage
	                   * chunks left */
	int64_t value;    /* APPEND: the writer's last event number after
	                   * the op (also on EBADEVENTNUM); ATTR_UPDATE: the
	                   * attribute's value after the op (the current one
	                   * on ECONFLICT) */
};

/* A container's replicated state. Caller-owned struct; use only the
 * functions below. Not thread-safe. */
struct container_fsm {
	struct container_fsm_config config; /* copied at init */
	struct segment_table segments;      /* live segments */
	uint64_t next_id;                   /* id of the next created segment */
	uint64_t unflushed;                 /* bytes in memory, all segments */
	char **garbage;   /* tier-2 chunks of deleted segments, oldest first */
	size_t n_garbage; /* names in garbage */
	size_t cap_garbage;              /* slots allocated in garbage */
	char errmsg[STRATA_ERRMSG_SIZE]; /* why the last call failed */
};

/* Fill config with defaults. */
void container_fsm_config_default(struct container_fsm_config *config);

/* Initialise an empty container; config is copied (NULL = defaults).
 * STRATA_EINVAL if max_append_bytes is 0. Allocates nothing. */
int container_fsm_init(struct container_fsm *f,
                       const struct container_fsm_config *config);

/* Free all state. The struct may be initialised again. */
void container_fsm_close(struct container_fsm *f);

/*
 * Apply one committed log entry (borrowed for the call). The entry is
 * validated completely first: if malformed, returns STRATA_EPROTO and
 * changes nothing. Then its operations are applied in order, each atomic:
 * results[i] gets operation i's outcome; a rejected operation changes
 * nothing, and the others still apply. results may be NULL (followers);
 * otherwise it must hold every operation, else STRATA_EINVAL and nothing
 * applied. Returns 0, or STRATA_ENOMEM after an operation ran out of
 * memory (that operation changed nothing, later ones were not applied):
 * this replica has then diverged and must stop and recover from a snapshot
 * and the log. f->errmsg says what failed.
 */
int container_fsm_apply(struct container_fsm *f, const uint8_t *entry,
                        size_t len, struct container_result *results,
                        size_t max);

/*
 * Serialise the whole state (metadata + unflushed bytes) into a new buffer
 * stored in *out (caller frees with strata_free) of *len bytes. The bytes
 * are a function of the logical state only. STRATA_ENOMEM.
 */
int container_fsm_snapshot(const struct container_fsm *f, uint8_t **out,
                           size_t *len);

/*
 * Replace the whole state with the snapshot at data (borrowed, len bytes).
 * Safe on any input: on STRATA_EPROTO (malformed, wrong CRC, inconsistent)
 * or STRATA_ENOMEM the state is unchanged. The config is not part of the
 * snapshot; f keeps its own.
 */
int container_fsm_restore(struct container_fsm *f, const uint8_t *data,
                          size_t len);

/* Public view of one segment; name borrowed until the next apply, restore
 * or close. */
struct container_segment_info {
	uint64_t id;             /* container-unique segment id */
	const char *name;        /* qualified name */
	uint64_t length;         /* bytes appended, incl. merged */
	uint64_t start_offset;   /* truncation point */
	uint64_t flushed_length; /* first byte not in tier 2 */
	uint64_t events;         /* events appended since loaded (a rate
	                            counter; restarts from 0) */
	uint64_t unflushed;      /* bytes held in memory */
	bool sealed;             /* no more appends */
	size_t attributes;       /* attributes set (writers included) */
	size_t extents;          /* data pieces (memory or chunk) */
};

/* Id of the live segment called name (borrowed) into *id. STRATA_ENOENT. */
int container_fsm_lookup(const struct container_fsm *f, const char *name,
                         uint64_t *id);

/* Describe segment id into *info. STRATA_ENOENT. */
int container_fsm_segment_info(const struct container_fsm *f, uint64_t id,
                               struct container_segment_info *info);

/* Value of attribute key (16 bytes, borrowed; a writer id gives its last
 * event number) into *value, CONTAINER_ATTR_NONE when absent. ENOENT if
 * the segment does not exist. */
int container_fsm_get_attribute(const struct container_fsm *f, uint64_t id,
                                const uint8_t *key, int64_t *value);

/* The segment with this id (borrowed until the next apply, restore or
 * close), or NULL: for the read index and storage writer, read-only. */
const struct segment *container_fsm_segment(const struct container_fsm *f,
                                            uint64_t id);

/* Bytes held in memory not yet in tier 2, over all segments: compare with
 * the back-pressure budget before proposing appends. */
uint64_t container_fsm_unflushed_bytes(const struct container_fsm *f);

/* Tier-2 chunks of deleted segments still to delete, oldest first: count,
 * and name i (borrowed until the next apply, restore or close). */
size_t container_fsm_garbage_count(const struct container_fsm *f);
const char *container_fsm_garbage(const struct container_fsm *f, size_t i);

#endif /* SEGMENTSTORE_CONTAINER_FSM_H */
