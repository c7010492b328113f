/* Test helpers for the segment container: one-op entries and state
 * fingerprints (snapshot bytes). */
#ifndef TESTS_UNIT_SEGMENTSTORE_FSM_HELPERS_H
#define TESTS_UNIT_SEGMENTSTORE_FSM_HELPERS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "segmentstore/container_fsm.h"
#include "segmentstore/entry.h"

/* Writer ids / attribute keys: byte 0 = n, rest fixed. */
static inline const uint8_t *uuid_n(uint8_t n)
{
	static uint8_t ids[256][ENTRY_UUID_SIZE];
	memset(ids[n], 0xA5, ENTRY_UUID_SIZE);
	ids[n][0] = n;
	return ids[n];
}

/* Finish b, apply it to f (results into res, room max), reset b. Aborts
 * the test on a builder failure. */
static inline int apply_builder(struct container_fsm *f,
                                struct entry_builder *b,
                                struct container_result *res, size_t max)
{
	const uint8_t *e;
	size_t len;
	if (entry_builder_finish(b, &e, &len) != 0) {
		abort();
	}
	int rc = container_fsm_apply(f, e, len, res, max);
	entry_builder_reset(b);
	return rc;
}

/* Apply the single op just added to b (add must have returned 0). */
static inline struct container_result one(struct container_fsm *f,
                                          struct entry_builder *b, int add)
{
	struct container_result r;
	memset(&r, 0, sizeof(r));
	if (add != 0 || apply_builder(f, b, &r, 1) != 0) {
		r.code = -1;
	}
	return r;
}

static inline struct container_result do_create(struct container_fsm *f,
                                                const char *name)
{
	struct entry_builder b;
	entry_builder_init(&b, 0);
	struct container_result r =
	        one(f, &b, entry_builder_add_create(&b, name));
	entry_builder_close(&b);
	return r;
}

static inline struct container_result do_append(struct container_fsm *f,
                                                uint64_t seg, uint8_t writer,
                                                int64_t first, uint32_t count,
                                                const char *data)
{
	struct entry_builder b;
	entry_builder_init(&b, 0);
	struct container_result r =
	        one(f, &b,
	            entry_builder_add_append(&b, seg, uuid_n(writer), first,
	                                     count, data, strlen(data)));
	entry_builder_close(&b);
	return r;
}

static inline struct container_result
do_cond_append(struct container_fsm *f, uint64_t seg, uint8_t writer,
               int64_t first, uint64_t expected, const char *data)
{
	struct entry_builder b;
	entry_builder_init(&b, 0);
	struct container_result r = one(
	        f, &b,
	        entry_builder_add_cond_append(&b, seg, uuid_n(writer), first, 1,
	                                      expected, data, strlen(data)));
	entry_builder_close(&b);
	return r;
}

static inline struct container_result do_seal(struct container_fsm *f,
                                              uint64_t seg)
{
	struct entry_builder b;
	entry_builder_init(&b, 0);
	struct container_result r = one(f, &b, entry_builder_add_seal(&b, seg));
	entry_builder_close(&b);
	return r;
}

static inline struct container_result do_truncate(struct container_fsm *f,
                                                  uint64_t seg, uint64_t offset)
{
	struct entry_builder b;
	entry_builder_init(&b, 0);
	struct container_result r =
	        one(f, &b, entry_builder_add_truncate(&b, seg, offset));
	entry_builder_close(&b);
	return r;
}

static inline struct container_result do_merge(struct container_fsm *f,
                                               uint64_t target, uint64_t source)
{
	struct entry_builder b;
	entry_builder_init(&b, 0);
	struct container_result r =
	        one(f, &b, entry_builder_add_merge(&b, target, source));
	entry_builder_close(&b);
	return r;
}

static inline struct container_result do_delete(struct container_fsm *f,
                                                uint64_t seg)
{
	struct entry_builder b;
	entry_builder_init(&b, 0);
	struct container_result r =
	        one(f, &b, entry_builder_add_delete(&b, seg));
	entry_builder_close(&b);
	return r;
}

static inline struct container_result do_attr(struct container_fsm *f,
                                              uint64_t seg, uint8_t key,
                                              bool compare, int64_t expected,
                                              int64_t value)
{
	struct entry_builder b;
	entry_builder_init(&b, 0);
	struct container_result r =
	        one(f, &b,
	            entry_builder_add_attr_update(&b, seg, uuid_n(key), compare,
	                                          expected, value));
	entry_builder_close(&b);
	return r;
}

static inline struct container_result
do_flush(struct container_fsm *f, uint64_t seg, uint64_t offset,
         uint64_t length, const char *chunk, uint64_t chunk_offset)
{
	struct entry_builder b;
	entry_builder_init(&b, 0);
	struct container_result r =
	        one(f, &b,
	            entry_builder_add_flush(&b, seg, offset, length, chunk,
	                                    chunk_offset));
	entry_builder_close(&b);
	return r;
}

static inline struct container_result do_chunk_deleted(struct container_fsm *f,
                                                       const char *chunk)
{
	struct entry_builder b;
	entry_builder_init(&b, 0);
	struct container_result r =
	        one(f, &b, entry_builder_add_chunk_deleted(&b, chunk));
	entry_builder_close(&b);
	return r;
}

/* Snapshot bytes of f (caller frees with strata_free); NULL on failure. */
static inline uint8_t *fingerprint(const struct container_fsm *f, size_t *len)
{
	uint8_t *p = NULL;
	if (container_fsm_snapshot(f, &p, len) != 0) {
		return NULL;
	}
	return p;
}

/* True if f's state equals the fingerprint (p, len); frees nothing. */
static inline bool same_state(const struct container_fsm *f, const uint8_t *p,
                              size_t len)
{
	size_t n;
	uint8_t *q = fingerprint(f, &n);
	bool same = q != NULL && n == len && memcmp(p, q, n) == 0;
	strata_free(q);
	return same;
}

#endif /* TESTS_UNIT_SEGMENTSTORE_FSM_HELPERS_H */
