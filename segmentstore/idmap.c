/* Open-addressing (linear probing, tombstones) map from uint64 ids to
 * pointers; see idmap.h. */
#include "segmentstore/idmap.h"

#include "common/alloc.h"
#include "strata/error.h"

#define DEAD UINT64_MAX

static size_t slot_of(uint64_t key, size_t cap)
{
	uint64_t h = key * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 17) & (cap - 1);
}

void idmap_init(struct idmap *m)
{
	m->keys = NULL;
	m->vals = NULL;
	m->cap = 0;
	m->count = 0;
	m->dead = 0;
}

void idmap_close(struct idmap *m)
{
	strata_free(m->keys);
	strata_free(m->vals);
	idmap_init(m);
}

void *idmap_get(const struct idmap *m, uint64_t key)
{
	if (m->cap == 0 || key == 0 || key == DEAD) {
		return NULL;
	}
	for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key) {
			return m->vals[i];
		}
		if (m->keys[i] == 0) {
			return NULL;
		}
	}
}

/* Rehash into cap slots (dropping tombstones). */
static int rehash(struct idmap *m, size_t cap)
{
	uint64_t *keys = strata_calloc(cap, sizeof(*keys));
	void **vals = strata_calloc(cap, sizeof(*vals));
	if (keys == NULL || vals == NULL) {
		strata_free(keys);
		strata_free(vals);
		return STRATA_ENOMEM;
	}
	for (size_t j = 0; j < m->cap; j++) {
		uint64_t k = m->keys[j];
		if (k == 0 || k == DEAD) {
			continue;
		}
		size_t i = slot_of(k, cap);
		while (keys[i] != 0) {
			i = (i + 1) & (cap - 1);
		}
		keys[i] = k;
		vals[i] = m->vals[j];
	}
	strata_free(m->keys);
	strata_free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->cap = cap;
	m->dead = 0;
	return 0;
}

int idmap_put(struct idmap *m, uint64_t key, void *val)
{
	if (key == 0 || key == DEAD || val == NULL) {
		return STRATA_EINVAL;
	}
	if (m->cap > 0) {
		size_t tomb = m->cap;
		for (size_t i = slot_of(key, m->cap);;
		     i = (i + 1) & (m->cap - 1)) {
			if (m->keys[i] == key) {
				m->vals[i] = val;
				return 0;
			}
			if (m->keys[i] == DEAD && tomb == m->cap) {
				tomb = i;
			}
			if (m->keys[i] == 0) {
				break;
			}
		}
		if (tomb != m->cap) {
			m->keys[tomb] = key;
			m->vals[tomb] = val;
			m->dead--;
			m->count++;
			return 0;
		}
	}
	if ((m->count + m->dead + 1) * 4 > m->cap * 3) {
		size_t cap = m->cap ? m->cap : 8;
		while ((m->count + 1) * 2 > cap) {
			cap *= 2;
		}
		int rv = rehash(m, cap);
		if (rv != 0) {
			return rv;
		}
	}
	size_t i = slot_of(key, m->cap);
	while (m->keys[i] != 0 && m->keys[i] != DEAD) {
		i = (i + 1) & (m->cap - 1);
	}
	if (m->keys[i] == DEAD) {
		m->dead--;
	}
	m->keys[i] = key;
	m->vals[i] = val;
	m->count++;
	return 0;
}

void *idmap_del(struct idmap *m, uint64_t key)
{
	if (m->cap == 0 || key == 0 || key == DEAD) {
		return NULL;
	}
	for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key) {
			void *v = m->vals[i];
			m->keys[i] = DEAD;
			m->vals[i] = NULL;
			m->count--;
			m->dead++;
			return v;
		}
		if (m->keys[i] == 0) {
			return NULL;
		}
	}
}

bool idmap_next(const struct idmap *m, size_t *pos, uint64_t *key, void **val)
{
	while (*pos < m->cap) {
		size_t i = (*pos)++;
		if (m->keys[i] != 0 && m->keys[i] != DEAD) {
			*key = m->keys[i];
			*val = m->vals[i];
			return true;
		}
	}
	return false;
}
