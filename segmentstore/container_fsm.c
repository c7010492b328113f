/* Segment container state machine: applying batch entries and queries.
 * Snapshot and restore live in container_snapshot.c. */
#include "segmentstore/container_fsm.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "segmentstore/entry.h"

void container_fsm_config_default(struct container_fsm_config *config)
{
	memset(config, 0, sizeof(*config));
	config->max_append_bytes = CONTAINER_DEFAULT_MAX_APPEND;
}

int container_fsm_init(struct container_fsm *f,
                       const struct container_fsm_config *config)
{
	memset(f, 0, sizeof(*f));
	if (config == NULL) {
		container_fsm_config_default(&f->config);
	} else {
		f->config = *config;
	}
	if (f->config.max_append_bytes == 0) {
		snprintf(f->errmsg, sizeof(f->errmsg),
		         "container config: max_append_bytes is 0; set a "
		         "positive limit (default %u)",
		         CONTAINER_DEFAULT_MAX_APPEND);
		return STRATA_EINVAL;
	}
	segment_table_init(&f->segments);
	f->next_id = 1;
	return 0;
}

void container_fsm_close(struct container_fsm *f)
{
	segment_table_close(&f->segments);
	for (size_t i = 0; i < f->n_garbage; i++) {
		strata_free(f->garbage[i]);
	}
	strata_free(f->garbage);
	f->garbage = NULL;
	f->n_garbage = 0;
	f->cap_garbage = 0;
	f->unflushed = 0;
}

/* ---- operations: each fills *res and changes nothing unless code 0 ---- */

static void op_create(struct container_fsm *f, const struct entry_op *op,
                      struct container_result *res)
{
	struct segment *s =
	        segment_table_find_name(&f->segments, op->name, op->name_len);
	if (s != NULL) {
		res->code = STRATA_EEXIST;
		res->segment = s->id;
		return;
	}
	if (segment_table_reserve(&f->segments) != 0) {
		res->code = STRATA_ENOMEM;
		return;
	}
	s = segment_new(f->next_id, op->name, op->name_len);
	if (s == NULL) {
		res->code = STRATA_ENOMEM;
		return;
	}
	segment_table_insert(&f->segments, s);
	f->next_id++;
	res->segment = s->id;
}

/*
 * Event-number rule for (writer, first, count), last = the writer's last
 * event number on this segment, -1 for a writer new to the segment (so its
 * first block must start at event 0): first == last+1 -> accept;
 * first+count-1 <= last -> duplicate; otherwise (gap or partial overlap)
 * -> STRATA_EBADEVENTNUM.
 *
 * A new writer must start at 0 because appends of one writer can reach the
 * leader out of order (several RPC contexts per connection, retries): if
 * any first number were accepted from an unknown writer, a later block
 * arriving first would be written and the earlier one then acknowledged as
 * a duplicate without ever being written.
 */
enum event_check { EVENT_ACCEPT, EVENT_DUPLICATE, EVENT_BAD };

static enum event_check event_check(int64_t last, int64_t first, uint32_t count)
{
	if (last == SEGMENT_ATTR_NONE) {
		return first == 0 ? EVENT_ACCEPT : EVENT_BAD;
	}
	if (last < INT64_MAX && first == last + 1) {
		return EVENT_ACCEPT;
	}
	/* first + count - 1 cannot overflow: the decoder checked it. */
	if (first + (int64_t)(count - 1) <= last) {
		return EVENT_DUPLICATE;
	}
	return EVENT_BAD;
}

static void op_append(struct container_fsm *f, const struct entry_op *op,
                      struct container_result *res)
{
	struct segment *s = segment_table_find_id(&f->segments, op->segment);
	if (s == NULL) {
		res->code = STRATA_ENOENT;
		return;
	}
	int64_t last = segment_attr_get(s, op->uuid);
	res->offset = s->length;
	res->value = last;
	switch (event_check(last, op->first_event, op->event_count)) {
	case EVENT_DUPLICATE:
		res->dedup = true;
		return;
	case EVENT_BAD:
		res->code = STRATA_EBADEVENTNUM;
		return;
	case EVENT_ACCEPT:
		break;
	}
	if (s->sealed) {
		res->code = STRATA_ESEALED;
		return;
	}
	if (op->data_len > f->config.max_append_bytes) {
		res->code = STRATA_ETOOBIG;
		return;
	}
	if (op->type == ENTRY_OP_COND_APPEND && op->offset != s->length) {
		res->code = STRATA_EBADOFFSET;
		return;
	}
	if ((last == SEGMENT_ATTR_NONE && segment_attr_reserve(s, 1) != 0) ||
	    segment_append(s, op->data, op->data_len) != 0) {
		res->code = STRATA_ENOMEM;
		return;
	}
	int64_t new_last = op->first_event + (int64_t)(op->event_count - 1);
	segment_attr_set(s, op->uuid, new_last);
	s->events += op->event_count;
	f->unflushed += op->data_len;
	res->value = new_last;
}

static void op_seal(struct container_fsm *f, const struct entry_op *op,
                    struct container_result *res)
{
	struct segment *s = segment_table_find_id(&f->segments, op->segment);
	if (s == NULL) {
		res->code = STRATA_ENOENT;
		return;
	}
	s->sealed = true; /* sealing twice is a success: idempotent */
	res->offset = s->length;
}

static int garbage_reserve(struct container_fsm *f, size_t extra);

/* Whether the chunk of extent i (wholly before the start offset, as are
 * extents [0, k)) may be deleted: no extent from k on uses it (after a
 * merge a chunk can continue past others), and it is not the segment's
 * last chunk, which the storage writer may still append to. */
static bool chunk_collectable(const struct segment *s, size_t i, size_t k,
                              const char *last)
{
	const char *name = s->extents[i].chunk;
	if (last != NULL && strcmp(name, last) == 0) {
		return false;
	}
	for (size_t j = k; j < s->n_extents; j++) {
		if (s->extents[j].kind == EXTENT_CHUNK &&
		    strcmp(s->extents[j].chunk, name) == 0) {
			return false;
		}
	}
	return true;
}

/* Chunk GC after a truncation: the chunks that hold only bytes before the
 * start offset go to the garbage list (the storage writer deletes them
 * and commits CHUNK_DELETED), and their extents become EXTENT_GONE, so
 * retention frees tier-2 space and not only the read head. Out of memory
 * keeps the chunks (deleted with the segment). */
static void collect_chunks(struct container_fsm *f, struct segment *s)
{
	size_t k = 0, n = 0;
	while (k < s->n_extents &&
	       s->extents[k].offset + s->extents[k].length <= s->start_offset) {
		k++;
	}
	const char *last = NULL;
	for (size_t i = s->n_extents; i-- > 0 && last == NULL;) {
		if (s->extents[i].kind == EXTENT_CHUNK) {
			last = s->extents[i].chunk;
		}
	}
	for (size_t i = 0; i < k; i++) {
		n += s->extents[i].kind == EXTENT_CHUNK;
	}
	if (n == 0 || garbage_reserve(f, n) != 0) {
		return;
	}
	/* Decide first: converting an extent frees nothing the checks of
	 * later ones need (they look at extents from k on and at last). */
	for (size_t i = 0; i < k; i++) {
		struct extent *e = &s->extents[i];
		if (e->kind == EXTENT_CHUNK &&
		    chunk_collectable(s, i, k, last)) {
			f->garbage[f->n_garbage++] = e->chunk;
			e->chunk = NULL;
			e->chunk_offset = 0;
			e->kind = EXTENT_GONE;
		}
	}
}

static void op_truncate(struct container_fsm *f, const struct entry_op *op,
                        struct container_result *res)
{
	struct segment *s = segment_table_find_id(&f->segments, op->segment);
	if (s == NULL) {
		res->code = STRATA_ENOENT;
		return;
	}
	if (op->offset > s->length) {
		res->code = STRATA_ERANGE;
	} else if (op->offset > s->start_offset) {
		s->start_offset = op->offset;
		collect_chunks(f, s);
	}
	/* Below the current start: a success that changes nothing. */
	res->offset = s->start_offset;
}

static void op_merge(struct container_fsm *f, const struct entry_op *op,
                     struct container_result *res)
{
	struct segment *t = segment_table_find_id(&f->segments, op->segment);
	struct segment *s = segment_table_find_id(&f->segments, op->source);
	if (op->segment == op->source) {
		res->code = STRATA_EINVAL;
	} else if (t == NULL || s == NULL) {
		res->code = STRATA_ENOENT;
	} else if (!s->sealed) {
		res->code = STRATA_ENOTSEALED;
	} else if (t->sealed) {
		res->code = STRATA_ESEALED;
	} else if (s->start_offset > 0) {
		res->code = STRATA_ETRUNCATED;
	}
	if (res->code != 0) {
		return;
	}
	res->offset = t->length;
	if (segment_merge_extents(t, s) != 0) {
		res->code = STRATA_ENOMEM;
		return;
	}
	segment_table_remove(&f->segments, s);
	segment_free(s);
}

static void op_attr_update(struct container_fsm *f, const struct entry_op *op,
                           struct container_result *res)
{
	struct segment *s = segment_table_find_id(&f->segments, op->segment);
	if (s == NULL) {
		res->code = STRATA_ENOENT;
		return;
	}
	int64_t cur = segment_attr_get(s, op->uuid);
	res->value = cur;
	if (s->sealed) {
		res->code = STRATA_ESEALED;
		return;
	}
	if (op->compare && cur != op->expected) {
		res->code = STRATA_ECONFLICT;
		return;
	}
	if (cur == SEGMENT_ATTR_NONE && op->value != SEGMENT_ATTR_NONE &&
	    segment_attr_reserve(s, 1) != 0) {
		res->code = STRATA_ENOMEM;
		return;
	}
	segment_attr_set(s, op->uuid, op->value);
	res->value = op->value;
}

static int garbage_reserve(struct container_fsm *f, size_t extra)
{
	if (f->n_garbage + extra <= f->cap_garbage) {
		return 0;
	}
	size_t cap = f->cap_garbage == 0 ? 16 : f->cap_garbage;
	while (cap < f->n_garbage + extra) {
		cap *= 2;
	}
	char **g = strata_realloc(f->garbage, cap * sizeof(*g));
	if (g == NULL) {
		return STRATA_ENOMEM;
	}
	f->garbage = g;
	f->cap_garbage = cap;
	return 0;
}

static void op_delete(struct container_fsm *f, const struct entry_op *op,
                      struct container_result *res)
{
	struct segment *s = segment_table_find_id(&f->segments, op->segment);
	if (s == NULL) {
		res->code = STRATA_ENOENT;
		return;
	}
	size_t chunks = 0;
	for (size_t i = 0; i < s->n_extents; i++) {
		chunks += s->extents[i].kind == EXTENT_CHUNK;
	}
	if (garbage_reserve(f, chunks) != 0) {
		res->code = STRATA_ENOMEM;
		return;
	}
	for (size_t i = 0; i < s->n_extents; i++) {
		if (s->extents[i].kind == EXTENT_CHUNK) {
			f->garbage[f->n_garbage++] = s->extents[i].chunk;
			s->extents[i].chunk = NULL;
		}
	}
	res->offset = s->length;
	f->unflushed -= s->unflushed;
	segment_table_remove(&f->segments, s);
	segment_free(s);
}

static void op_flush(struct container_fsm *f, const struct entry_op *op,
                     struct container_result *res)
{
	struct segment *s = segment_table_find_id(&f->segments, op->segment);
	if (s == NULL) {
		res->code = STRATA_ENOENT;
		return;
	}
	res->code = segment_flush(s, op->offset, op->length, op->name,
	                          op->name_len, op->chunk_offset);
	if (res->code == 0) {
		f->unflushed -= op->length;
		if (op->offset < s->start_offset) {
			collect_chunks(f, s); /* flushed after its truncation */
		}
	}
	res->offset = segment_flushed_length(s);
}

/* A garbage chunk is gone: drop every copy of its name (order kept). A
 * name not in the list (removed by an earlier CHUNK_DELETED, e.g. of an
 * older owner committing late) changes nothing: STRATA_ENOENT. */
static void op_chunk_deleted(struct container_fsm *f, const struct entry_op *op,
                             struct container_result *res)
{
	size_t kept = 0;
	for (size_t i = 0; i < f->n_garbage; i++) {
		char *g = f->garbage[i];
		if (strlen(g) == op->name_len &&
		    memcmp(g, op->name, op->name_len) == 0) {
			strata_free(g);
			continue;
		}
		f->garbage[kept++] = g;
	}
	if (kept == f->n_garbage) {
		res->code = STRATA_ENOENT;
	}
	f->n_garbage = kept;
	res->offset = f->n_garbage;
}

int container_fsm_apply(struct container_fsm *f, const uint8_t *entry,
                        size_t len, struct container_result *results,
                        size_t max)
{
	struct entry_reader r;
	if (entry_reader_init(&r, entry, len) != 0) {
		snprintf(f->errmsg, sizeof(f->errmsg),
		         "apply container entry of %zu bytes: malformed (bad "
		         "header, CRC or operation); nothing applied",
		         len);
		return STRATA_EPROTO;
	}
	if (results != NULL && max < r.count) {
		snprintf(f->errmsg, sizeof(f->errmsg),
		         "apply container entry: %u operations but room for "
		         "%zu results; pass a larger results array",
		         r.count, max);
		return STRATA_EINVAL;
	}
	struct entry_op op;
	struct container_result scratch;
	for (size_t i = 0; entry_reader_next(&r, &op); i++) {
		struct container_result *res =
		        results != NULL ? &results[i] : &scratch;
		memset(res, 0, sizeof(*res));
		res->segment = op.segment;
		switch (op.type) {
		case ENTRY_OP_CREATE:
			op_create(f, &op, res);
			break;
		case ENTRY_OP_APPEND:
		case ENTRY_OP_COND_APPEND:
			op_append(f, &op, res);
			break;
		case ENTRY_OP_SEAL:
			op_seal(f, &op, res);
			break;
		case ENTRY_OP_TRUNCATE:
			op_truncate(f, &op, res);
			break;
		case ENTRY_OP_MERGE:
			op_merge(f, &op, res);
			break;
		case ENTRY_OP_ATTR_UPDATE:
			op_attr_update(f, &op, res);
			break;
		case ENTRY_OP_DELETE:
			op_delete(f, &op, res);
			break;
		case ENTRY_OP_FLUSH:
			op_flush(f, &op, res);
			break;
		case ENTRY_OP_CHUNK_DELETED:
			op_chunk_deleted(f, &op, res);
			break;
		case ENTRY_OP_OWNER:
			/* A marker for the runtime (its log index names the
			 * owner's chunks); no state. */
			break;
		default: /* the reader rejects unknown types */
			res->code = STRATA_EINTERNAL;
			break;
		}
		if (res->code == STRATA_ENOMEM) {
			snprintf(f->errmsg, sizeof(f->errmsg),
			         "apply container entry: out of memory at "
			         "operation %zu of %u (type %u); this replica "
			         "must stop and recover",
			         i, r.count, op.type);
			LOG_ERROR("container", "%s", f->errmsg);
			return STRATA_ENOMEM;
		}
	}
	return 0;
}

/* ---- queries ---- */

int container_fsm_lookup(const struct container_fsm *f, const char *name,
                         uint64_t *id)
{
	const struct segment *s =
	        segment_table_find_name(&f->segments, name, strlen(name));
	if (s == NULL) {
		return STRATA_ENOENT;
	}
	*id = s->id;
	return 0;
}

int container_fsm_segment_info(const struct container_fsm *f, uint64_t id,
                               struct container_segment_info *info)
{
	const struct segment *s = segment_table_find_id(&f->segments, id);
	if (s == NULL) {
		return STRATA_ENOENT;
	}
	*info = (struct container_segment_info){
	        .id = s->id,
	        .name = s->name,
	        .length = s->length,
	        .start_offset = s->start_offset,
	        .flushed_length = segment_flushed_length(s),
	        .events = s->events,
	        .unflushed = s->unflushed,
	        .sealed = s->sealed,
	        .attributes = s->n_attrs,
	        .extents = s->n_extents,
	};
	return 0;
}

int container_fsm_get_attribute(const struct container_fsm *f, uint64_t id,
                                const uint8_t *key, int64_t *value)
{
	const struct segment *s = segment_table_find_id(&f->segments, id);
	if (s == NULL) {
		return STRATA_ENOENT;
	}
	*value = segment_attr_get(s, key);
	return 0;
}

const struct segment *container_fsm_segment(const struct container_fsm *f,
                                            uint64_t id)
{
	return segment_table_find_id(&f->segments, id);
}

uint64_t container_fsm_unflushed_bytes(const struct container_fsm *f)
{
	return f->unflushed;
}

size_t container_fsm_garbage_count(const struct container_fsm *f)
{
	return f->n_garbage;
}

const char *container_fsm_garbage(const struct container_fsm *f, size_t i)
{
	return i < f->n_garbage ? f->garbage[i] : NULL;
}
