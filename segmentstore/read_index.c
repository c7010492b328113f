/* Container read index: tail reads from the FSM, LRU cache of tier-2
 * blocks, chunk lookup, back-pressure on unflushed bytes. */
#include "segmentstore/read_index.h"

#include <string.h>

#include "common/alloc.h"
#include "common/refbuf.h"

/*
 * A tier-2 read taken whole (read_index_insert_owned): the blocks of its
 * slots point into it instead of holding copies. It counts in
 * cached_bytes with its full size while any block points into it (so a
 * buffer kept alive by one hot block is paid for in full), and the index
 * drops its reference when no block does and it is not the index's
 * pending buffer. Replies being sent may hold their own references (reads
 * answered from it): those bytes live on outside cache_bytes until sent.
 */
struct ri_buf {
	struct refbuf *ref; /* one reference, the index's */
	uint64_t size;      /* bytes at ref->data */
	unsigned blocks;    /* blocks pointing into ref->data */
};

/* A cached range [offset, offset + len) inside one READ_INDEX_BLOCK slot. */
struct ri_block {
	uint64_t segment;       /* segment id */
	uint64_t slot;          /* offset / READ_INDEX_BLOCK */
	uint64_t offset;        /* segment offset of data[0] */
	uint64_t len;           /* bytes at data */
	uint8_t *data;          /* owned, or inside buf */
	struct ri_buf *buf;     /* the shared buffer data lies in, or NULL */
	struct ri_block *hnext; /* hash chain */
	struct ri_block *prev;  /* LRU: towards head (more recent) */
	struct ri_block *next;  /* LRU: towards tail (older) */
};

void read_index_config_default(struct read_index_config *config)
{
	config->cache_bytes = READ_INDEX_DEFAULT_CACHE;
	config->unflushed_budget = READ_INDEX_DEFAULT_UNFLUSHED;
}

void read_index_init(struct read_index *ri, const struct container_fsm *fsm,
                     const struct read_index_config *config)
{
	memset(ri, 0, sizeof(*ri));
	if (config == NULL) {
		read_index_config_default(&ri->config);
	} else {
		ri->config = *config;
	}
	ri->fsm = fsm;
}

static void buf_maybe_free(struct ri_buf *rb)
{
	if (rb->blocks == 0) {
		refbuf_release(rb->ref);
		strata_free(rb);
	}
}

/* Release the last insert_owned buffer: from now on only its blocks keep
 * it. */
static void pending_drop(struct read_index *ri)
{
	refbuf_release(ri->pending_raw);
	ri->pending_raw = NULL;
	struct ri_buf *rb = ri->pending;
	ri->pending = NULL;
	if (rb != NULL) {
		buf_maybe_free(rb);
	}
}

/* Point b at [data, data + len) inside rb (counted in full at the first
 * block). */
static void block_share(struct read_index *ri, struct ri_block *b,
                        struct ri_buf *rb, uint8_t *data)
{
	if (rb->blocks++ == 0) {
		ri->cached_bytes += rb->size;
	}
	b->buf = rb;
	b->data = data;
}

/* Drop b's bytes from the accounting and free them (b->data dangles). */
static void block_release(struct read_index *ri, struct ri_block *b)
{
	struct ri_buf *rb = b->buf;
	if (rb == NULL) {
		ri->cached_bytes -= b->len;
		strata_free(b->data);
	} else {
		b->buf = NULL;
		if (--rb->blocks == 0) {
			ri->cached_bytes -= rb->size;
			if (rb != ri->pending) {
				buf_maybe_free(rb);
			}
		}
	}
	b->data = NULL;
}

void read_index_close(struct read_index *ri)
{
	struct ri_block *b = ri->lru_head;
	while (b != NULL) {
		struct ri_block *next = b->next;
		block_release(ri, b);
		strata_free(b);
		b = next;
	}
	pending_drop(ri);
	strata_free(ri->buckets);
	ri->buckets = NULL;
	ri->n_buckets = 0;
	ri->n_blocks = 0;
	ri->lru_head = ri->lru_tail = NULL;
	ri->cached_bytes = 0;
}

static size_t bucket_of(const struct read_index *ri, uint64_t seg,
                        uint64_t slot)
{
	uint64_t x = seg * 0x9E3779B97F4A7C15ull ^ slot;
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	return (size_t)x & (ri->n_buckets - 1);
}

static struct ri_block **find_link(struct read_index *ri, uint64_t seg,
                                   uint64_t slot)
{
	if (ri->n_buckets == 0) {
		return NULL;
	}
	struct ri_block **l = &ri->buckets[bucket_of(ri, seg, slot)];
	while (*l != NULL && ((*l)->segment != seg || (*l)->slot != slot)) {
		l = &(*l)->hnext;
	}
	return l;
}

static void lru_unlink(struct read_index *ri, struct ri_block *b)
{
	if (b->prev != NULL) {
		b->prev->next = b->next;
	} else {
		ri->lru_head = b->next;
	}
	if (b->next != NULL) {
		b->next->prev = b->prev;
	} else {
		ri->lru_tail = b->prev;
	}
	b->prev = b->next = NULL;
}

static void lru_push_head(struct read_index *ri, struct ri_block *b)
{
	b->prev = NULL;
	b->next = ri->lru_head;
	if (ri->lru_head != NULL) {
		ri->lru_head->prev = b;
	}
	ri->lru_head = b;
	if (ri->lru_tail == NULL) {
		ri->lru_tail = b;
	}
}

/* Unlink b from hash and LRU and free it. */
static void block_drop(struct read_index *ri, struct ri_block *b)
{
	struct ri_block **l = find_link(ri, b->segment, b->slot);
	*l = b->hnext;
	lru_unlink(ri, b);
	ri->n_blocks--;
	block_release(ri, b);
	strata_free(b);
}

static int buckets_grow(struct read_index *ri)
{
	if (ri->n_blocks < ri->n_buckets) {
		return 0;
	}
	size_t n = ri->n_buckets == 0 ? 64 : ri->n_buckets * 2;
	struct ri_block **nb = strata_calloc(n, sizeof(*nb));
	if (nb == NULL) {
		return STRATA_ENOMEM;
	}
	struct ri_block **old = ri->buckets;
	size_t old_n = ri->n_buckets;
	ri->buckets = nb;
	ri->n_buckets = n;
	for (size_t i = 0; i < old_n; i++) {
		struct ri_block *b = old[i];
		while (b != NULL) {
			struct ri_block *next = b->hnext;
			size_t k = bucket_of(ri, b->segment, b->slot);
			b->hnext = nb[k];
			nb[k] = b;
			b = next;
		}
	}
	strata_free(old);
	return 0;
}

int read_index_read(struct read_index *ri, uint64_t segment, uint64_t offset,
                    size_t max, struct read_result *out)
{
	memset(out, 0, sizeof(*out));
	if (max == 0) {
		return STRATA_EINVAL;
	}
	const struct segment *s = container_fsm_segment(ri->fsm, segment);
	if (s == NULL) {
		return STRATA_ENOENT;
	}
	out->length = s->length;
	if (offset < s->start_offset) {
		return STRATA_ETRUNCATED;
	}
	if (offset > s->length) {
		return STRATA_ERANGE;
	}
	if (offset == s->length) {
		out->status = s->sealed ? READ_END : READ_WAIT;
		return 0;
	}
	const struct extent *e = &s->extents[segment_find_extent(s, offset)];
	uint64_t in_ext = e->offset + e->length - offset;
	uint64_t n = in_ext < max ? in_ext : max;
	if (e->kind == EXTENT_MEM) {
		out->status = READ_DATA;
		out->data = e->data + (offset - e->offset);
		out->len = (size_t)n;
		return 0;
	}
	struct ri_block **l = find_link(ri, segment, offset / READ_INDEX_BLOCK);
	struct ri_block *b = l != NULL ? *l : NULL;
	if (b != NULL && b->offset <= offset && offset < b->offset + b->len) {
		uint64_t avail = b->offset + b->len - offset;
		ri->hits++;
		lru_unlink(ri, b);
		lru_push_head(ri, b);
		out->status = READ_DATA;
		out->data = b->data + (offset - b->offset);
		out->len = (size_t)(avail < max ? avail : max);
		out->ref = b->buf != NULL ? b->buf->ref : NULL;
		return 0;
	}
	ri->misses++;
	out->status = READ_TIER2;
	out->chunk = e->chunk;
	out->chunk_offset = e->chunk_offset + (offset - e->offset);
	out->len = (size_t)n;
	return 0;
}

/* The block of slot at *l (from find_link), emptied for new content: a new
 * one linked into the hash, or the one there, out of the LRU with its
 * bytes released. NULL when memory ran out (nothing changed). */
static struct ri_block *slot_take(struct read_index *ri, struct ri_block **l,
                                  uint64_t seg, uint64_t slot)
{
	struct ri_block *b = *l;
	if (b == NULL) {
		b = strata_calloc(1, sizeof(*b));
		if (b == NULL) {
			return NULL;
		}
		b->segment = seg;
		b->slot = slot;
		*l = b;
		ri->n_blocks++;
	} else {
		lru_unlink(ri, b);
		block_release(ri, b);
	}
	return b;
}

/* Cache [off, off + len) of seg, all inside one slot. */
static int insert_piece(struct read_index *ri, uint64_t seg, uint64_t off,
                        const uint8_t *data, uint64_t len)
{
	uint64_t slot = off / READ_INDEX_BLOCK;
	if (buckets_grow(ri) != 0) {
		return STRATA_ENOMEM;
	}
	struct ri_block **l = find_link(ri, seg, slot);
	struct ri_block *b = *l;
	if (b != NULL && b->offset <= off && off + len <= b->offset + b->len) {
		lru_unlink(ri, b); /* already cached: just touch */
		lru_push_head(ri, b);
		return 0;
	}
	uint64_t lo = off;
	uint64_t hi = off + len;
	bool join = b != NULL && b->offset <= hi && off <= b->offset + b->len;
	if (join) {
		lo = b->offset < lo ? b->offset : lo;
		hi = b->offset + b->len > hi ? b->offset + b->len : hi;
	}
	uint8_t *d = strata_malloc((size_t)(hi - lo));
	if (d == NULL) {
		return STRATA_ENOMEM;
	}
	if (join) {
		memcpy(d + (b->offset - lo), b->data, (size_t)b->len);
	}
	memcpy(d + (off - lo), data, (size_t)len);
	b = slot_take(ri, l, seg, slot);
	if (b == NULL) {
		strata_free(d);
		return STRATA_ENOMEM;
	}
	b->offset = lo;
	b->len = hi - lo;
	b->data = d;
	ri->cached_bytes += b->len;
	lru_push_head(ri, b);
	while (ri->cached_bytes > ri->config.cache_bytes && ri->lru_tail != b) {
		ri->evictions++;
		block_drop(ri, ri->lru_tail);
	}
	return 0;
}

/* Whether [offset, offset + len) of segment may be cached: 0, ENOENT,
 * ERANGE, ETOOBIG. */
static int insert_check(const struct read_index *ri, uint64_t segment,
                        uint64_t offset, size_t len)
{
	const struct segment *s = container_fsm_segment(ri->fsm, segment);
	if (s == NULL) {
		return STRATA_ENOENT;
	}
	if (offset > s->length || len > s->length - offset) {
		return STRATA_ERANGE;
	}
	if (len > ri->config.cache_bytes) {
		return STRATA_ETOOBIG;
	}
	return 0;
}

int read_index_insert(struct read_index *ri, uint64_t segment, uint64_t offset,
                      const uint8_t *data, size_t len)
{
	int rc = insert_check(ri, segment, offset, len);
	if (rc != 0) {
		return rc;
	}
	pending_drop(ri);
	uint64_t end = offset + len;
	while (offset < end) {
		uint64_t slot_end = (offset / READ_INDEX_BLOCK + 1) *
		                    (uint64_t)READ_INDEX_BLOCK;
		uint64_t n = (slot_end < end ? slot_end : end) - offset;
		rc = insert_piece(ri, segment, offset, data, n);
		if (rc != 0) {
			return rc;
		}
		offset += n;
		data += n;
	}
	return 0;
}

/* Cache the piece [off, off + len) of one slot, pointing into rb. A slot
 * already holding an adjacent or overlapping range is merged by copy. */
static int share_piece(struct read_index *ri, uint64_t seg, uint64_t off,
                       uint8_t *data, uint64_t len, struct ri_buf *rb)
{
	uint64_t slot = off / READ_INDEX_BLOCK;
	if (buckets_grow(ri) != 0) {
		return STRATA_ENOMEM;
	}
	struct ri_block **l = find_link(ri, seg, slot);
	struct ri_block *b = *l;
	if (b != NULL && b->offset <= off + len && off <= b->offset + b->len) {
		return insert_piece(ri, seg, off, data, len);
	}
	b = slot_take(ri, l, seg, slot);
	if (b == NULL) {
		return STRATA_ENOMEM;
	}
	b->offset = off;
	b->len = len;
	block_share(ri, b, rb, data);
	lru_push_head(ri, b);
	return 0;
}

int read_index_insert_owned(struct read_index *ri, uint64_t segment,
                            uint64_t offset, struct refbuf *ref, size_t len)
{
	pending_drop(ri);
	struct ri_buf *rb = strata_calloc(1, sizeof(*rb));
	if (rb == NULL) {
		ri->pending_raw = ref; /* readable until the next insert */
		return STRATA_ENOMEM;
	}
	uint8_t *data = ref->data;
	rb->ref = ref;
	rb->size = len;
	ri->pending = rb;
	int rc = insert_check(ri, segment, offset, len);
	if (rc != 0) {
		return rc;
	}
	uint64_t end = offset + len;
	uint8_t *p = data;
	while (offset < end) {
		uint64_t slot_end = (offset / READ_INDEX_BLOCK + 1) *
		                    (uint64_t)READ_INDEX_BLOCK;
		uint64_t n = (slot_end < end ? slot_end : end) - offset;
		rc = share_piece(ri, segment, offset, p, n, rb);
		if (rc != 0) {
			break;
		}
		offset += n;
		p += n;
	}
	/* Evict older blocks; never this buffer's own (they are the most
	 * recent, and it fits: len <= cache_bytes). */
	while (ri->cached_bytes > ri->config.cache_bytes &&
	       ri->lru_tail != NULL && ri->lru_tail->buf != rb) {
		ri->evictions++;
		block_drop(ri, ri->lru_tail);
	}
	return rc;
}

void read_index_forget(struct read_index *ri, uint64_t segment)
{
	pending_drop(ri);
	struct ri_block *b = ri->lru_head;
	while (b != NULL) {
		struct ri_block *next = b->next;
		if (b->segment == segment) {
			block_drop(ri, b);
		}
		b = next;
	}
}

int read_index_admit(const struct read_index *ri, uint64_t bytes)
{
	uint64_t u = container_fsm_unflushed_bytes(ri->fsm);
	if (u == 0) {
		return 0;
	}
	if (bytes > ri->config.unflushed_budget ||
	    u > ri->config.unflushed_budget - bytes) {
		return STRATA_EAGAIN;
	}
	return 0;
}
