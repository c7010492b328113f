/* One segment's replicated metadata and data layout inside a container:
 * length, start offset, seal flag, attributes (incl. writers' last event
 * numbers), and extents (unflushed bytes in memory or tier-2 chunks); plus
 * the container's table of segments by id and by name. */
#ifndef SEGMENTSTORE_SEGMENT_H
#define SEGMENTSTORE_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Attribute value meaning "absent"; setting it removes the attribute. */
#define SEGMENT_ATTR_NONE INT64_MIN
/* Bytes in an attribute key / writer id (a UUID). */
#define SEGMENT_UUID_SIZE 16
/* An in-memory extent grows up to this size before a new one starts (one
 * append larger than this gets an extent of its own). */
#define SEGMENT_MEM_EXTENT_MAX (1024 * 1024)

enum extent_kind {
	EXTENT_MEM = 1,   /* unflushed bytes held in memory */
	EXTENT_CHUNK = 2, /* bytes stored in a tier-2 chunk */
	EXTENT_GONE = 3,  /* before the start offset, its chunk deleted (the
	                     truncation's chunk GC): never read */
};

/* A contiguous piece of a segment; a segment's extents cover [0, length)
 * in order without gaps. */
struct extent {
	uint64_t offset;       /* segment offset of the first byte */
	uint64_t length;       /* bytes in this extent, > 0 */
	uint8_t kind;          /* enum extent_kind */
	uint8_t *data;         /* MEM: the first byte (data - skip: owned) */
	uint64_t skip;         /* MEM: flushed bytes before data, still held */
	uint64_t cap;          /* MEM: bytes allocated at data - skip */
	char *chunk;           /* CHUNK: tier-2 chunk name (owned) */
	uint64_t chunk_offset; /* CHUNK: chunk offset of the first byte */
};

/* One slot of a segment's attribute hash table. */
struct attr_slot {
	uint8_t key[SEGMENT_UUID_SIZE]; /* attribute id or writer id */
	int64_t value;                  /* never SEGMENT_ATTR_NONE when used */
	bool used;                      /* slot holds an attribute */
};

/* A live segment. Owned by the container's segment table. */
struct segment {
	uint64_t id;            /* container-unique, never reused */
	char *name;             /* qualified name, NUL-terminated (owned) */
	uint64_t length;        /* bytes ever appended (incl. merged) */
	uint64_t events;        /* events appended since this replica loaded
	                           the segment: a counter for rates, not
	                           replicated state (restarts from 0) */
	uint64_t start_offset;  /* reads below fail: truncation point */
	bool sealed;            /* no more appends */
	struct extent *extents; /* n_extents used of cap_extents */
	size_t n_extents;       /* extents in use */
	size_t cap_extents;     /* extents allocated */
	uint64_t unflushed;     /* bytes in MEM extents */
	bool hot; /* filled a MEM extent: new ones start full size until
	             one is flushed at under a quarter full (an allocation
	             hint, not replicated state) */
	struct attr_slot *attrs; /* open addressing, cap_attrs a power of 2 */
	size_t n_attrs;          /* attributes set */
	size_t cap_attrs;        /* slots allocated (0 or a power of 2) */
};

/* Allocate an empty open segment with a copy of name (name_len bytes, no
 * NUL inside). NULL on OOM. Free with segment_free(). */
struct segment *segment_new(uint64_t id, const char *name, size_t name_len);

/* Free a segment, its bytes, chunk names and attributes. NULL is a no-op. */
void segment_free(struct segment *s);

/* Value of attribute key (SEGMENT_UUID_SIZE bytes, borrowed), or
 * SEGMENT_ATTR_NONE when absent. */
int64_t segment_attr_get(const struct segment *s, const uint8_t *key);

/* Make room for extra new attributes so that the next segment_attr_set
 * calls cannot fail. STRATA_ENOMEM (nothing changed). */
int segment_attr_reserve(struct segment *s, size_t extra);

/* Set key (copied) to value; SEGMENT_ATTR_NONE removes it. Adding a new key
 * needs room reserved by segment_attr_reserve (asserted). Never fails. */
void segment_attr_set(struct segment *s, const uint8_t *key, int64_t value);

/* Append n bytes copied from data at the end of the segment (in memory,
 * unflushed). All-or-nothing: STRATA_ENOMEM leaves the segment unchanged.
 * Does not check sealed; the caller does. */
int segment_append(struct segment *s, const uint8_t *data, size_t n);

/* Index of the extent holding offset, or n_extents if offset >= length. */
size_t segment_find_extent(const struct segment *s, uint64_t offset);

/*
 * Record that tier-2 chunk `chunk` (copied, chunk_len bytes) holds segment
 * bytes [offset, offset + length) starting at chunk_offset: those bytes
 * stop being held in memory. The range must be non-empty and entirely
 * unflushed (in MEM extents), else STRATA_ERANGE. A flush continuing the
 * previous extent's chunk contiguously extends that extent. All-or-nothing:
 * STRATA_ENOMEM leaves the segment unchanged.
 */
int segment_flush(struct segment *s, uint64_t offset, uint64_t length,
                  const char *chunk, size_t chunk_len, uint64_t chunk_offset);

/* Offset of the first unflushed byte: length when everything is flushed. */
uint64_t segment_flushed_length(const struct segment *s);

/*
 * Move every extent of src to the end of dst (offsets shifted by dst's
 * length), growing dst's length; src is left with no extents and length 0
 * (the caller frees it). STRATA_ENOMEM leaves both unchanged.
 */
int segment_merge_extents(struct segment *dst, struct segment *src);

/* The container's segments, findable by id and by name. */
struct segment_table {
	struct segment **by_id;   /* open addressing on id */
	struct segment **by_name; /* open addressing on name */
	size_t cap;               /* slots in each array (0 or power of 2) */
	size_t count;             /* segments held */
};

/* Initialise an empty table. Allocates nothing. */
void segment_table_init(struct segment_table *t);

/* Free every segment in the table and the table's arrays. */
void segment_table_close(struct segment_table *t);

/* Segment with this id / name (borrowed), or NULL. */
struct segment *segment_table_find_id(const struct segment_table *t,
                                      uint64_t id);
struct segment *segment_table_find_name(const struct segment_table *t,
                                        const char *name, size_t name_len);

/* Make room for one more segment so segment_table_insert cannot fail.
 * STRATA_ENOMEM (table unchanged). */
int segment_table_reserve(struct segment_table *t);

/* Insert s (ownership transferred); its id and name must be new and room
 * reserved (asserted). Never fails. */
void segment_table_insert(struct segment_table *t, struct segment *s);

/* Remove s from the table without freeing it (ownership back to caller). */
void segment_table_remove(struct segment_table *t, struct segment *s);

/* Store in *out an array of the table's segments (borrowed) sorted by id,
 * and their count in *n; the caller frees the array (not the segments) with
 * strata_free. *out is NULL when the table is empty. STRATA_ENOMEM. */
int segment_table_sorted(const struct segment_table *t, struct segment ***out,
                         size_t *n);

#endif /* SEGMENTSTORE_SEGMENT_H */
