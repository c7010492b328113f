/* Segment metadata, attributes, extents and the container's segment table. */
#include "segmentstore/segment.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "strata/error.h"

#define MEM_EXTENT_MIN 4096

struct segment *segment_new(uint64_t id, const char *name, size_t name_len)
{
	struct segment *s = strata_calloc(1, sizeof(*s));
	if (s == NULL) {
		return NULL;
	}
	s->name = strata_strndup(name, name_len);
	if (s->name == NULL) {
		strata_free(s);
		return NULL;
	}
	s->id = id;
	return s;
}

static void extent_release(struct extent *e)
{
	strata_free(e->data != NULL ? e->data - e->skip : NULL);
	strata_free(e->chunk);
	e->data = NULL;
	e->chunk = NULL;
}

void segment_free(struct segment *s)
{
	if (s == NULL) {
		return;
	}
	for (size_t i = 0; i < s->n_extents; i++) {
		extent_release(&s->extents[i]);
	}
	strata_free(s->extents);
	strata_free(s->attrs);
	strata_free(s->name);
	strata_free(s);
}

/* ---- attributes: linear probing, load factor <= 1/2 ---- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t uuid_hash(const uint8_t *key)
{
	uint64_t a, b;
	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	return mix64(a ^ mix64(b));
}

static size_t attr_probe(const struct segment *s, const uint8_t *key)
{
	size_t mask = s->cap_attrs - 1;
	size_t i = (size_t)uuid_hash(key) & mask;
	while (s->attrs[i].used &&
	       memcmp(s->attrs[i].key, key, SEGMENT_UUID_SIZE) != 0) {
		i = (i + 1) & mask;
	}
	return i;
}

int64_t segment_attr_get(const struct segment *s, const uint8_t *key)
{
	if (s->cap_attrs == 0) {
		return SEGMENT_ATTR_NONE;
	}
	size_t i = attr_probe(s, key);
	return s->attrs[i].used ? s->attrs[i].value : SEGMENT_ATTR_NONE;
}

int segment_attr_reserve(struct segment *s, size_t extra)
{
	size_t need = s->n_attrs + extra;
	if (need * 2 <= s->cap_attrs) {
		return 0;
	}
	size_t cap = s->cap_attrs == 0 ? 8 : s->cap_attrs;
	while (need * 2 > cap) {
		cap *= 2;
	}
	struct attr_slot *old = s->attrs;
	size_t old_cap = s->cap_attrs;
	struct attr_slot *slots = strata_calloc(cap, sizeof(*slots));
	if (slots == NULL) {
		return STRATA_ENOMEM;
	}
	s->attrs = slots;
	s->cap_attrs = cap;
	for (size_t i = 0; i < old_cap; i++) {
		if (old[i].used) {
			s->attrs[attr_probe(s, old[i].key)] = old[i];
		}
	}
	strata_free(old);
	return 0;
}

/* Remove slot i keeping every probe chain intact (backward shift). */
static void attr_remove_slot(struct segment *s, size_t i)
{
	size_t mask = s->cap_attrs - 1;
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!s->attrs[j].used) {
			break;
		}
		size_t k = (size_t)uuid_hash(s->attrs[j].key) & mask;
		/* Entry j may move to i unless its home k lies in (i, j]. */
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (!stays) {
			s->attrs[i] = s->attrs[j];
			i = j;
		}
	}
	memset(&s->attrs[i], 0, sizeof(s->attrs[i]));
	s->n_attrs--;
}

void segment_attr_set(struct segment *s, const uint8_t *key, int64_t value)
{
	if (value == SEGMENT_ATTR_NONE) {
		if (s->cap_attrs == 0) {
			return;
		}
		size_t i = attr_probe(s, key);
		if (s->attrs[i].used) {
			attr_remove_slot(s, i);
		}
		return;
	}
	assert(s->cap_attrs > 0);
	size_t i = attr_probe(s, key);
	if (!s->attrs[i].used) {
		assert((s->n_attrs + 1) * 2 <= s->cap_attrs);
		memcpy(s->attrs[i].key, key, SEGMENT_UUID_SIZE);
		s->attrs[i].used = true;
		s->n_attrs++;
	}
	s->attrs[i].value = value;
}

/* ---- extents ---- */

static int extents_reserve(struct segment *s, size_t extra)
{
	if (s->n_extents + extra <= s->cap_extents) {
		return 0;
	}
	size_t cap = s->cap_extents == 0 ? 4 : s->cap_extents;
	while (cap < s->n_extents + extra) {
		cap *= 2;
	}
	struct extent *e = strata_realloc(s->extents, cap * sizeof(*e));
	if (e == NULL) {
		return STRATA_ENOMEM;
	}
	s->extents = e;
	s->cap_extents = cap;
	return 0;
}

int segment_append(struct segment *s, const uint8_t *data, size_t n)
{
	if (n == 0) {
		return 0;
	}
	struct extent *last =
	        s->n_extents > 0 ? &s->extents[s->n_extents - 1] : NULL;
	if (last != NULL && last->kind == EXTENT_MEM &&
	    last->skip + last->length + n <= SEGMENT_MEM_EXTENT_MAX) {
		uint64_t used = last->skip + last->length;
		if (used + n > last->cap) {
			uint64_t cap = last->cap * 2;
			if (cap > SEGMENT_MEM_EXTENT_MAX) {
				cap = SEGMENT_MEM_EXTENT_MAX;
			}
			if (cap < used + n) {
				cap = used + n;
			}
			uint8_t *d = strata_realloc(last->data - last->skip,
			                            (size_t)cap);
			if (d == NULL) {
				return STRATA_ENOMEM;
			}
			last->data = d + last->skip;
			last->cap = cap;
		}
		memcpy(last->data + last->length, data, n);
		last->length += n;
	} else {
		/* A segment that filled an extent is likely to fill the next:
		 * start it at full size rather than copy it on every doubling
		 * (4 % of the container loop at 1 KB 8x32). */
		bool hot = s->hot || (last != NULL && last->kind == EXTENT_MEM);
		/* `last` may move here: not used below. */
		if (extents_reserve(s, 1) != 0) {
			return STRATA_ENOMEM;
		}
		size_t cap = hot ? SEGMENT_MEM_EXTENT_MAX : MEM_EXTENT_MIN;
		if (cap < n) {
			cap = n;
		}
		uint8_t *d = strata_malloc(cap);
		if (d == NULL) {
			return STRATA_ENOMEM;
		}
		memcpy(d, data, n);
		s->hot = hot;
		s->extents[s->n_extents++] = (struct extent){
		        .offset = s->length,
		        .length = n,
		        .kind = EXTENT_MEM,
		        .data = d,
		        .cap = cap,
		};
	}
	s->length += n;
	s->unflushed += n;
	return 0;
}

size_t segment_find_extent(const struct segment *s, uint64_t offset)
{
	if (offset >= s->length) {
		return s->n_extents;
	}
	size_t lo = 0;
	size_t hi = s->n_extents; /* answer in [lo, hi) */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->extents[mid].offset <= offset) {
			lo = mid;
		} else {
			hi = mid;
		}
	}
	return lo;
}

uint64_t segment_flushed_length(const struct segment *s)
{
	for (size_t i = 0; i < s->n_extents; i++) {
		if (s->extents[i].kind == EXTENT_MEM) {
			return s->extents[i].offset;
		}
	}
	return s->length;
}

int segment_flush(struct segment *s, uint64_t offset, uint64_t length,
                  const char *chunk, size_t chunk_len, uint64_t chunk_offset)
{
	if (length == 0 || offset >= s->length || length > s->length - offset) {
		return STRATA_ERANGE;
	}
	uint64_t end = offset + length;
	size_t i = segment_find_extent(s, offset);
	size_t j = i;
	for (;;) {
		if (s->extents[j].kind != EXTENT_MEM) {
			return STRATA_ERANGE;
		}
		if (s->extents[j].offset + s->extents[j].length >= end) {
			break;
		}
		j++;
	}
	struct extent *ei = &s->extents[i];
	struct extent *ej = &s->extents[j];
	bool head = offset > ei->offset;
	bool tail = end < ej->offset + ej->length;
	/* Extend the previous extent instead of adding one? */
	struct extent *prev = i > 0 ? &s->extents[i - 1] : NULL;
	bool extend = !head && prev != NULL && prev->kind == EXTENT_CHUNK &&
	              strlen(prev->chunk) == chunk_len &&
	              memcmp(prev->chunk, chunk, chunk_len) == 0 &&
	              prev->chunk_offset + prev->length == chunk_offset;

	/* Allocate everything first so that failure changes nothing. */
	char *name = NULL;
	uint8_t *tail_data = NULL;
	uint64_t tail_len = tail ? ej->offset + ej->length - end : 0;
	size_t add = (head ? 1 : 0) + (extend ? 0 : 1) + (tail ? 1 : 0);
	size_t removed = j - i + 1;
	if (add > removed && extents_reserve(s, add - removed) != 0) {
		return STRATA_ENOMEM;
	}
	/* The array may have moved. */
	ei = &s->extents[i];
	ej = &s->extents[j];
	prev = i > 0 ? &s->extents[i - 1] : NULL;
	if (!extend) {
		name = strata_strndup(chunk, chunk_len);
		if (name == NULL) {
			return STRATA_ENOMEM;
		}
	}
	if (tail && head && i == j) {
		/* Head and tail both come from extent i: copy the tail. */
		tail_data = strata_malloc((size_t)tail_len);
		if (tail_data == NULL) {
			strata_free(name);
			return STRATA_ENOMEM;
		}
		memcpy(tail_data, ei->data + (end - ei->offset),
		       (size_t)tail_len);
	}

	/* Build the replacement for extents [i, j]. */
	struct extent repl[3];
	size_t nr = 0;
	if (head) {
		repl[nr] = *ei;
		repl[nr].length = offset - ei->offset;
		nr++;
	}
	if (!extend) {
		repl[nr++] = (struct extent){
		        .offset = offset,
		        .length = length,
		        .kind = EXTENT_CHUNK,
		        .chunk = name,
		        .chunk_offset = chunk_offset,
		};
	} else {
		prev->length += length;
	}
	if (tail) {
		if (tail_data != NULL) {
			repl[nr] = (struct extent){.kind = EXTENT_MEM,
			                           .data = tail_data,
			                           .cap = tail_len};
		} else {
			/* Keep the tail where it is (no copy on the loop): the
			 * flushed head stays allocated until the whole extent
			 * is flushed. */
			repl[nr] = *ej;
			repl[nr].skip += end - ej->offset;
			repl[nr].data += end - ej->offset;
		}
		repl[nr].offset = end;
		repl[nr].length = tail_len;
		nr++;
	}
	/* Free buffers of extents fully consumed. One flushed while far from
	 * full means the segment slowed down: back to small extents, so that
	 * many once-busy segments do not each hold 1 MiB for a few bytes. */
	for (size_t k = i; k <= j; k++) {
		bool kept = (k == i && head) || (k == j && tail && !tail_data);
		if (!kept) {
			if (s->extents[k].skip + s->extents[k].length <
			    SEGMENT_MEM_EXTENT_MAX / 4) {
				s->hot = false;
			}
			extent_release(&s->extents[k]);
		}
	}
	size_t after = s->n_extents - (j + 1);
	memmove(&s->extents[i + nr], &s->extents[j + 1],
	        after * sizeof(struct extent));
	memcpy(&s->extents[i], repl, nr * sizeof(struct extent));
	s->n_extents = s->n_extents - removed + nr;
	s->unflushed -= length;
	return 0;
}

int segment_merge_extents(struct segment *dst, struct segment *src)
{
	if (extents_reserve(dst, src->n_extents) != 0) {
		return STRATA_ENOMEM;
	}
	for (size_t k = 0; k < src->n_extents; k++) {
		struct extent e = src->extents[k];
		e.offset += dst->length;
		dst->extents[dst->n_extents++] = e;
	}
	dst->length += src->length;
	dst->unflushed += src->unflushed;
	src->n_extents = 0;
	src->length = 0;
	src->unflushed = 0;
	return 0;
}

/* ---- segment table: two linear-probing arrays, load factor <= 1/2 ---- */

static uint64_t name_hash(const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)name[i];
		h *= 0x100000001b3ull;
	}
	return mix64(h);
}

static bool name_is(const struct segment *s, const char *name, size_t len)
{
	return strncmp(s->name, name, len) == 0 && s->name[len] == '\0';
}

void segment_table_init(struct segment_table *t)
{
	memset(t, 0, sizeof(*t));
}

void segment_table_close(struct segment_table *t)
{
	for (size_t i = 0; i < t->cap; i++) {
		segment_free(t->by_id[i]);
	}
	strata_free(t->by_id);
	strata_free(t->by_name);
	memset(t, 0, sizeof(*t));
}

static size_t id_probe(struct segment **slots, size_t cap, uint64_t id)
{
	size_t i = (size_t)mix64(id) & (cap - 1);
	while (slots[i] != NULL && slots[i]->id != id) {
		i = (i + 1) & (cap - 1);
	}
	return i;
}

static size_t name_probe(struct segment **slots, size_t cap, const char *name,
                         size_t len)
{
	size_t i = (size_t)name_hash(name, len) & (cap - 1);
	while (slots[i] != NULL && !name_is(slots[i], name, len)) {
		i = (i + 1) & (cap - 1);
	}
	return i;
}

struct segment *segment_table_find_id(const struct segment_table *t,
                                      uint64_t id)
{
	if (t->cap == 0) {
		return NULL;
	}
	return t->by_id[id_probe(t->by_id, t->cap, id)];
}

struct segment *segment_table_find_name(const struct segment_table *t,
                                        const char *name, size_t name_len)
{
	if (t->cap == 0) {
		return NULL;
	}
	return t->by_name[name_probe(t->by_name, t->cap, name, name_len)];
}

int segment_table_reserve(struct segment_table *t)
{
	if ((t->count + 1) * 2 <= t->cap) {
		return 0;
	}
	size_t cap = t->cap == 0 ? 16 : t->cap * 2;
	struct segment **ids = strata_calloc(cap, sizeof(*ids));
	struct segment **names = strata_calloc(cap, sizeof(*names));
	if (ids == NULL || names == NULL) {
		strata_free(ids);
		strata_free(names);
		return STRATA_ENOMEM;
	}
	for (size_t i = 0; i < t->cap; i++) {
		struct segment *s = t->by_id[i];
		if (s != NULL) {
			ids[id_probe(ids, cap, s->id)] = s;
			names[name_probe(names, cap, s->name,
			                 strlen(s->name))] = s;
		}
	}
	strata_free(t->by_id);
	strata_free(t->by_name);
	t->by_id = ids;
	t->by_name = names;
	t->cap = cap;
	return 0;
}

void segment_table_insert(struct segment_table *t, struct segment *s)
{
	assert((t->count + 1) * 2 <= t->cap);
	size_t i = id_probe(t->by_id, t->cap, s->id);
	size_t j = name_probe(t->by_name, t->cap, s->name, strlen(s->name));
	assert(t->by_id[i] == NULL && t->by_name[j] == NULL);
	t->by_id[i] = s;
	t->by_name[j] = s;
	t->count++;
}

/* Backward-shift removal of slot i; home() recomputes an entry's home. */
static void slot_remove(struct segment **slots, size_t cap, size_t i,
                        bool by_name)
{
	size_t mask = cap - 1;
	size_t j = i;
	for (;;) {
		j = (j + 1) & mask;
		struct segment *s = slots[j];
		if (s == NULL) {
			break;
		}
		size_t k = by_name ? (size_t)name_hash(s->name, strlen(s->name))
		                   : (size_t)mix64(s->id);
		k &= mask;
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (!stays) {
			slots[i] = s;
			i = j;
		}
	}
	slots[i] = NULL;
}

void segment_table_remove(struct segment_table *t, struct segment *s)
{
	size_t i = id_probe(t->by_id, t->cap, s->id);
	size_t j = name_probe(t->by_name, t->cap, s->name, strlen(s->name));
	assert(t->by_id[i] == s && t->by_name[j] == s);
	slot_remove(t->by_id, t->cap, i, false);
	slot_remove(t->by_name, t->cap, j, true);
	t->count--;
}

static int cmp_id(const void *a, const void *b)
{
	const struct segment *x = *(struct segment *const *)a;
	const struct segment *y = *(struct segment *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

int segment_table_sorted(const struct segment_table *t, struct segment ***out,
                         size_t *n)
{
	*out = NULL;
	*n = 0;
	if (t->count == 0) {
		return 0;
	}
	struct segment **arr = strata_malloc(t->count * sizeof(*arr));
	if (arr == NULL) {
		return STRATA_ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < t->cap; i++) {
		if (t->by_id[i] != NULL) {
			arr[k++] = t->by_id[i];
		}
	}
	qsort(arr, k, sizeof(*arr), cmp_id);
	*out = arr;
	*n = k;
	return 0;
}
