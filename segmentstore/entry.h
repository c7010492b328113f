/* Container log entry codec: one Raft entry = a versioned, CRC'd batch of
 * container operations (group commit). Builder for the leader, bounds-
 * checked zero-copy reader for every replica. Layout: docs/segmentstore.md. */
#ifndef SEGMENTSTORE_ENTRY_H
#define SEGMENTSTORE_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define ENTRY_MAGIC 0x31454353u /* bytes "SCE1" */
#define ENTRY_VERSION 1
#define ENTRY_HEADER_SIZE 20
/* Longest segment or chunk name carried in an entry, in bytes. */
#define ENTRY_MAX_NAME 1024
/* Bytes in a writer id or attribute id. */
#define ENTRY_UUID_SIZE 16

/* Operation types; numbers are stored in the log: append only. */
enum entry_op_type {
	ENTRY_OP_CREATE = 1,         /* create a segment by name */
	ENTRY_OP_APPEND = 2,         /* idempotent append */
	ENTRY_OP_COND_APPEND = 3,    /* append at an expected offset */
	ENTRY_OP_SEAL = 4,           /* seal a segment */
	ENTRY_OP_TRUNCATE = 5,       /* move the start offset up */
	ENTRY_OP_MERGE = 6,          /* append a sealed source, delete it */
	ENTRY_OP_ATTR_UPDATE = 7,    /* set/remove an attribute, maybe CAS */
	ENTRY_OP_DELETE = 8,         /* delete a segment */
	ENTRY_OP_FLUSH = 9,          /* storage writer: bytes now in a chunk */
	ENTRY_OP_CHUNK_DELETED = 10, /* storage writer: a garbage chunk gone */
	ENTRY_OP_OWNER = 11          /* a new owner took the container */
};

/* One decoded operation; pointers borrow the entry's bytes. Fields not
 * used by a type are zero. */
struct entry_op {
	uint8_t type;          /* enum entry_op_type */
	uint64_t segment;      /* segment id (merge: the target) */
	uint64_t source;       /* MERGE: source segment id */
	const uint8_t *uuid;   /* APPEND: writer id; ATTR_UPDATE: key */
	int64_t first_event;   /* APPEND: first event number, >= 0 */
	uint32_t event_count;  /* APPEND: events in data, >= 1 */
	uint64_t offset;       /* COND_APPEND: expected; TRUNCATE: new
	                        * start; FLUSH: segment offset */
	uint64_t length;       /* FLUSH: bytes, >= 1 */
	uint64_t chunk_offset; /* FLUSH: chunk offset of the first byte */
	const uint8_t *data;   /* APPEND: event bytes */
	size_t data_len;       /* APPEND: bytes at data */
	const char *name;      /* CREATE: segment; FLUSH, CHUNK_DELETED:
	                        * chunk (no NUL!) */
	size_t name_len;       /* bytes at name, 1..ENTRY_MAX_NAME */
	bool compare;          /* ATTR_UPDATE: check expected first */
	int64_t expected;      /* ATTR_UPDATE: required current value */
	int64_t value;         /* ATTR_UPDATE: new value (NONE removes) */
	uint64_t node;         /* OWNER: node id of the new owner */
	uint64_t term;         /* OWNER: its Raft term */
};

/* Builds one entry. The caller owns the struct. Not thread-safe. */
struct entry_builder {
	struct buf buf; /* header + ops */
	uint32_t ops;   /* operations added */
};

/* Start an empty entry of at most max_bytes (header included; 0 = no
 * limit). Allocates nothing. */
void entry_builder_init(struct entry_builder *b, size_t max_bytes);

/* Free the builder's memory. */
void entry_builder_close(struct entry_builder *b);

/* Make room for an entry of `bytes` in all (header included) so that
 * adds up to that size do not reallocate. A hint: STRATA_ENOMEM or
 * STRATA_ETOOBIG (over max_bytes) change nothing. */
int entry_builder_reserve(struct entry_builder *b, size_t bytes);

/* Drop every operation, keeping the allocation. */
void entry_builder_reset(struct entry_builder *b);

/* Operations added so far / bytes the entry would take now. */
uint32_t entry_builder_count(const struct entry_builder *b);
size_t entry_builder_size(const struct entry_builder *b);

/*
 * Add one operation. Every add is all-or-nothing. Byte arguments are
 * copied. Errors: STRATA_EINVAL for arguments the reader would reject
 * (empty or over-long name or name containing NUL, event_count 0,
 * first_event < 0 or first_event + event_count - 1 overflowing, FLUSH
 * length 0), STRATA_ETOOBIG when the entry would exceed max_bytes (finish
 * this entry and start another) or data exceeds 4 GiB - 1, STRATA_ENOMEM.
 */
int entry_builder_add_create(struct entry_builder *b, const char *name);
int entry_builder_add_append(struct entry_builder *b, uint64_t segment,
                             const uint8_t *writer, int64_t first_event,
                             uint32_t event_count, const void *data,
                             size_t len);
int entry_builder_add_cond_append(struct entry_builder *b, uint64_t segment,
                                  const uint8_t *writer, int64_t first_event,
                                  uint32_t event_count,
                                  uint64_t expected_offset, const void *data,
                                  size_t len);
int entry_builder_add_seal(struct entry_builder *b, uint64_t segment);
int entry_builder_add_truncate(struct entry_builder *b, uint64_t segment,
                               uint64_t offset);
int entry_builder_add_merge(struct entry_builder *b, uint64_t target,
                            uint64_t source);
int entry_builder_add_attr_update(struct entry_builder *b, uint64_t segment,
                                  const uint8_t *key, bool compare,
                                  int64_t expected, int64_t value);
int entry_builder_add_delete(struct entry_builder *b, uint64_t segment);
int entry_builder_add_flush(struct entry_builder *b, uint64_t segment,
                            uint64_t offset, uint64_t length, const char *chunk,
                            uint64_t chunk_offset);
/* CHUNK_DELETED: garbage chunk `chunk` (copied) is gone from tier 2. */
int entry_builder_add_chunk_deleted(struct entry_builder *b, const char *chunk);
/* OWNER: node became the container's owner in term (a marker whose log
 * index names the owner's chunks; changes no state). */
int entry_builder_add_owner(struct entry_builder *b, uint64_t node,
                            uint64_t term);

/*
 * Write the header (op count, body length, CRC32C) and point *entry at the
 * finished bytes, *len at their size: borrowed until the next add, reset or
 * close. An entry with no operations is valid. STRATA_ENOMEM (only when
 * nothing was ever added).
 */
int entry_builder_finish(struct entry_builder *b, const uint8_t **entry,
                         size_t *len);

/* Iterates over the operations of an entry validated by entry_reader_init. */
struct entry_reader {
	const uint8_t *entry; /* borrowed */
	size_t len;           /* bytes at entry */
	size_t off;           /* next operation */
	uint32_t count;       /* operations in the entry */
	uint32_t next;        /* operations returned so far */
};

/*
 * Check an entry completely: header (magic, version, zero flags), length,
 * CRC32C, and every operation (known type, in bounds, field rules above),
 * with no trailing bytes. entry is borrowed and must outlive the reader.
 * Safe on any input. STRATA_EPROTO when anything is wrong.
 */
int entry_reader_init(struct entry_reader *r, const uint8_t *entry, size_t len);

/* Decode the next operation into *op (pointers borrow the entry); false
 * when all were returned. Never fails after entry_reader_init. */
bool entry_reader_next(struct entry_reader *r, struct entry_op *op);

#endif /* SEGMENTSTORE_ENTRY_H */
