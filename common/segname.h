/* Qualified segment names ("scope/stream/<n>.#epoch.<e>[#transaction.<id>]"):
 * format, parse, and the stable name -> container hash the controller and
 * the segment stores share. */
#ifndef COMMON_SEGNAME_H
#define COMMON_SEGNAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest scope or stream name (bytes). */
#define SEGNAME_PART_MAX 255
/* Longest qualified segment name accepted anywhere (bytes, NUL excluded). */
#define SEGNAME_MAX 1024
/* Separator between a parent segment name and a transaction id. */
#define SEGNAME_TXN_SEP "#transaction."

/* Segment id = epoch << 32 | number. */
#define SEGNAME_EPOCH(id) ((uint32_t)((id) >> 32))
#define SEGNAME_NUMBER(id) ((uint32_t)((id)&0xffffffffu))
#define SEGNAME_ID(epoch, number) \
	(((uint64_t)(epoch) << 32) | (uint64_t)(number))

/* A parsed qualified name. */
struct segname_parts {
	char scope[SEGNAME_PART_MAX + 1];  /* NUL-terminated */
	char stream[SEGNAME_PART_MAX + 1]; /* NUL-terminated */
	uint64_t segment_id;               /* epoch << 32 | number */
	bool is_txn;                       /* a transaction segment */
	uint64_t txn_id;                   /* is_txn: the transaction id */
};

/* FNV-1a 64 of data[0..n). */
uint64_t segname_fnv1a(const void *data, size_t n);

/* Write "scope/stream/<number>.#epoch.<epoch>" into buf of size bytes
 * (truncated, NUL-terminated when size > 0); returns the length it needs,
 * like snprintf. */
int segname_format(char *buf, size_t size, const char *scope,
                   const char *stream, uint64_t segment_id);

/* Write "<parent>#transaction.<txn_id>" into buf; as segname_format(). */
int segname_format_txn(char *buf, size_t size, const char *parent,
                       uint64_t txn_id);

/*
 * Parse name (borrowed) into *out. Scope and stream are 1..255 characters
 * of [A-Za-z0-9.-] (a leading '_' marks an internal object), neither "."
 * nor ".."; number and epoch are decimal uint32 without leading zeros; a
 * transaction suffix carries a decimal uint64. Returns 0 or
 * STRATA_EBADNAME; errmsg (STRATA_ERRMSG_SIZE bytes, may be NULL) then
 * says what is wrong with which part.
 */
int segname_parse(const char *name, struct segname_parts *out, char *errmsg);

/* Bytes of name that name its parent segment: the part before
 * SEGNAME_TXN_SEP, or the whole name. */
size_t segname_parent_len(const char *name);

/*
 * Container of the segment called name (borrowed) in a cluster of
 * container_count containers: FNV-1a 64 of the parent segment's name
 * modulo the count, so a transaction segment lives in its parent's
 * container (merges stay inside one container). Pure and stable forever:
 * changing it moves data. 0 when container_count is 0.
 */
uint32_t segname_container(const char *name, uint32_t container_count);

/* segname_container() of the name segname_format() gives. */
uint32_t segname_container_of(uint32_t container_count, const char *scope,
                              const char *stream, uint64_t segment_id);

#endif /* COMMON_SEGNAME_H */
