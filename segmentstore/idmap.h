/* Small open-addressing hash map from a non-zero uint64 id (segment id) to
 * a pointer, for the container runtime's per-segment state. */
#ifndef SEGMENTSTORE_IDMAP_H
#define SEGMENTSTORE_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The map. Caller-owned struct; values are borrowed pointers. Not
 * thread-safe. */
struct idmap {
	uint64_t *keys; /* 0 = free slot, UINT64_MAX = removed */
	void **vals;    /* value of each used slot */
	size_t cap;     /* slots (0 or a power of 2) */
	size_t count;   /* keys stored */
	size_t dead;    /* removed slots not yet reused */
};

/* Initialise an empty map. Allocates nothing. */
void idmap_init(struct idmap *m);

/* Free the map's arrays (not the values). */
void idmap_close(struct idmap *m);

/* Value stored for key, or NULL. */
void *idmap_get(const struct idmap *m, uint64_t key);

/* Store val (non-NULL) for key (> 0), replacing any value. STRATA_EINVAL
 * (key 0 or val NULL), STRATA_ENOMEM (map unchanged). */
int idmap_put(struct idmap *m, uint64_t key, void *val);

/* Remove key; returns its value or NULL when absent. */
void *idmap_del(struct idmap *m, uint64_t key);

/*
 * Iterate: start with *pos = 0; returns false when done, else stores the
 * next key and value. Removing entries (idmap_del) during an iteration is
 * allowed and every other entry is still returned exactly once; inserting
 * a new key during an iteration is not.
 */
bool idmap_next(const struct idmap *m, size_t *pos, uint64_t *key, void **val);

#endif /* SEGMENTSTORE_IDMAP_H */
