/* Container read index: answers reads by (segment, offset) from the
 * unflushed tail held by the container FSM, from a bounded LRU cache of
 * tier-2 data, or by pointing at the tier-2 chunk to read. Also the
 * back-pressure check on unflushed bytes. Network-free; not thread-safe. */
#ifndef SEGMENTSTORE_READ_INDEX_H
#define SEGMENTSTORE_READ_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "segmentstore/container_fsm.h"

/* Cache blocks never straddle a multiple of this segment offset. */
#define READ_INDEX_BLOCK (64 * 1024)
#define READ_INDEX_DEFAULT_CACHE (256ull * 1024 * 1024)
#define READ_INDEX_DEFAULT_UNFLUSHED (512ull * 1024 * 1024)

/* Limits; copied at init. */
struct read_index_config {
	uint64_t cache_bytes;      /* cached tier-2 bytes, evicted LRU */
	uint64_t unflushed_budget; /* unflushed bytes before back-pressure */
};

/* What a read found. */
enum read_status {
	READ_DATA = 0,  /* len bytes at data */
	READ_TIER2 = 1, /* not in memory: read chunk at chunk_offset */
	READ_WAIT = 2,  /* at the tail of an open segment: wait for data */
	READ_END = 3,   /* at the end of a sealed segment */
};

/* Outcome of read_index_read. */
struct read_result {
	int status;            /* enum read_status */
	const uint8_t *data;   /* READ_DATA: borrowed until the next apply,
	                        * restore, or read_index insert/forget/close */
	size_t len;            /* READ_DATA: bytes at data; READ_TIER2: bytes
	                        * of the segment in that chunk from there,
	                        * <= max */
	struct refbuf *ref;    /* READ_DATA: the reference-counted buffer data
	                        * lies in (a cached tier-2 read), or NULL;
	                        * holding it keeps data past the borrow */
	const char *chunk;     /* READ_TIER2: chunk name (borrowed as data) */
	uint64_t chunk_offset; /* READ_TIER2: offset inside the chunk */
	uint64_t length;       /* segment length at the time of the read */
};

struct ri_block;
struct ri_buf;
struct refbuf;

/* The read index of one container. Caller-owned struct. */
struct read_index {
	struct read_index_config config;  /* copied at init */
	const struct container_fsm *fsm;  /* borrowed; outlives the index */
	struct ri_block **buckets;        /* hash on (segment, block) */
	size_t n_buckets;                 /* 0 or a power of 2 */
	size_t n_blocks;                  /* blocks cached */
	struct ri_block *lru_head;        /* most recently used */
	struct ri_block *lru_tail;        /* next to evict */
	struct ri_buf *pending;           /* last insert_owned's buffer, */
	struct refbuf *pending_raw;       /* or its data if that was ENOMEM */
	uint64_t cached_bytes;            /* bytes in blocks */
	uint64_t hits, misses, evictions; /* counters for metrics */
};

/* Fill config with defaults. */
void read_index_config_default(struct read_index_config *config);

/* Initialise an empty index over fsm (borrowed; must outlive the index).
 * config is copied; NULL = defaults. Allocates nothing. */
void read_index_init(struct read_index *ri, const struct container_fsm *fsm,
                     const struct read_index_config *config);

/* Free every cached block. */
void read_index_close(struct read_index *ri);

/*
 * Read up to max (>= 1) bytes of segment at offset into *out: the bytes
 * themselves (unflushed tail or cached), or where in tier 2 they are, or
 * READ_WAIT at the tail of an open segment, or READ_END at the end of a
 * sealed one. Errors: STRATA_EINVAL (max 0), STRATA_ENOENT (no such
 * segment), STRATA_ETRUNCATED (offset below the start offset),
 * STRATA_ERANGE (offset beyond the segment's length).
 */
int read_index_read(struct read_index *ri, uint64_t segment, uint64_t offset,
                    size_t max, struct read_result *out);

/*
 * Cache len bytes of segment at offset, copied from data (typically just
 * fetched from tier 2, or just flushed), evicting least recently used
 * blocks to stay within cache_bytes. Errors: STRATA_ENOENT (no segment),
 * STRATA_ERANGE (range beyond the segment's length), STRATA_ETOOBIG (len
 * larger than the whole cache), STRATA_ENOMEM (some blocks may be cached:
 * the cache stays consistent).
 */
int read_index_insert(struct read_index *ri, uint64_t segment, uint64_t offset,
                      const uint8_t *data, size_t len);

/*
 * read_index_insert of the first len bytes of ref (len <= ref->size)
 * taking the caller's reference instead of copying them: the cached blocks
 * point into it (a tier-2 read is cached without a copy), and reads answered
 * from them name it (read_result.ref). The reference is transferred, also
 * on error; without one of its own the caller may read the bytes until
 * the next insert, forget or close of the index. Errors as
 * read_index_insert.
 */
int read_index_insert_owned(struct read_index *ri, uint64_t segment,
                            uint64_t offset, struct refbuf *ref, size_t len);

/* Drop every cached block of segment (deleted or merged away). */
void read_index_forget(struct read_index *ri, uint64_t segment);

/*
 * Back-pressure check before proposing appends of `bytes`: 0 when the
 * container's unflushed bytes plus bytes fit unflushed_budget, else
 * STRATA_EAGAIN (tell the client to retry later). A single append larger
 * than the whole budget is admitted when nothing is unflushed.
 */
int read_index_admit(const struct read_index *ri, uint64_t bytes);

#endif /* SEGMENTSTORE_READ_INDEX_H */
