/* Container snapshot: metadata + unflushed bytes in a compact, CRC'd,
 * deterministic binary form (layout: docs/segmentstore.md), and restore. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "segmentstore/container_fsm.h"
#include "common/crc32c.h"
#include "segmentstore/entry.h"

#define SNAP_MAGIC 0x31534353u /* bytes "SCS1" */
#define SNAP_VERSION 1
#define SNAP_HEADER_SIZE 20
#define S_BODY_LEN 8
#define S_CRC 16

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++) {
		v |= (uint64_t)p[i] << (8 * i);
	}
	return v;
}

static int cmp_attr(const void *a, const void *b)
{
	const struct attr_slot *x = a;
	const struct attr_slot *y = b;
	return memcmp(x->key, y->key, SEGMENT_UUID_SIZE);
}

static size_t segment_size(const struct segment *s)
{
	size_t n = 8 + 4 + strlen(s->name) + 8 + 8 + 1;
	n += 4 + s->n_attrs * (SEGMENT_UUID_SIZE + 8);
	n += 4;
	for (size_t i = 0; i < s->n_extents; i++) {
		const struct extent *e = &s->extents[i];
		n += 1 + 8;
		n += e->kind == EXTENT_MEM     ? (size_t)e->length
		     : e->kind == EXTENT_CHUNK ? 8 + 4 + strlen(e->chunk)
		                               : 0;
	}
	return n;
}

/* Write one segment; room is reserved, so appends cannot fail. */
static int segment_write(struct buf *b, const struct segment *s)
{
	struct attr_slot *attrs = NULL;
	if (s->n_attrs > 0) {
		attrs = strata_malloc(s->n_attrs * sizeof(*attrs));
		if (attrs == NULL) {
			return STRATA_ENOMEM;
		}
		size_t k = 0;
		for (size_t i = 0; i < s->cap_attrs; i++) {
			if (s->attrs[i].used) {
				attrs[k++] = s->attrs[i];
			}
		}
		qsort(attrs, k, sizeof(*attrs), cmp_attr);
	}
	int rc = 0;
	size_t name_len = strlen(s->name);
	rc |= buf_append_u64le(b, s->id);
	rc |= buf_append_u32le(b, (uint32_t)name_len);
	rc |= buf_append(b, s->name, name_len);
	rc |= buf_append_u64le(b, s->length);
	rc |= buf_append_u64le(b, s->start_offset);
	rc |= buf_append_u8(b, s->sealed ? 1 : 0);
	rc |= buf_append_u32le(b, (uint32_t)s->n_attrs);
	for (size_t i = 0; i < s->n_attrs; i++) {
		rc |= buf_append(b, attrs[i].key, SEGMENT_UUID_SIZE);
		rc |= buf_append_u64le(b, (uint64_t)attrs[i].value);
	}
	strata_free(attrs);
	rc |= buf_append_u32le(b, (uint32_t)s->n_extents);
	for (size_t i = 0; i < s->n_extents; i++) {
		const struct extent *e = &s->extents[i];
		rc |= buf_append_u8(b, e->kind);
		rc |= buf_append_u64le(b, e->length);
		if (e->kind == EXTENT_MEM) {
			rc |= buf_append(b, e->data, (size_t)e->length);
		} else if (e->kind == EXTENT_CHUNK) {
			size_t cl = strlen(e->chunk);
			rc |= buf_append_u64le(b, e->chunk_offset);
			rc |= buf_append_u32le(b, (uint32_t)cl);
			rc |= buf_append(b, e->chunk, cl);
		}
	}
	return rc == 0 ? 0 : STRATA_EINTERNAL;
}

int container_fsm_snapshot(const struct container_fsm *f, uint8_t **out,
                           size_t *len)
{
	struct segment **segs;
	size_t n;
	*out = NULL;
	*len = 0;
	int rc = segment_table_sorted(&f->segments, &segs, &n);
	if (rc != 0) {
		return rc;
	}
	size_t total = SNAP_HEADER_SIZE + 8 + 4 + 4;
	for (size_t i = 0; i < n; i++) {
		total += segment_size(segs[i]);
	}
	for (size_t i = 0; i < f->n_garbage; i++) {
		total += 4 + strlen(f->garbage[i]);
	}
	struct buf b;
	buf_init(&b, 0);
	rc = buf_reserve(&b, total);
	if (rc != 0) {
		goto err_free_segs;
	}
	static const uint8_t zero[SNAP_HEADER_SIZE];
	rc |= buf_append(&b, zero, sizeof(zero));
	rc |= buf_append_u64le(&b, f->next_id);
	rc |= buf_append_u32le(&b, (uint32_t)n);
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = segment_write(&b, segs[i]);
	}
	rc |= buf_append_u32le(&b, (uint32_t)f->n_garbage);
	for (size_t i = 0; i < f->n_garbage; i++) {
		size_t gl = strlen(f->garbage[i]);
		rc |= buf_append_u32le(&b, (uint32_t)gl);
		rc |= buf_append(&b, f->garbage[i], gl);
	}
	if (rc != 0) {
		rc = rc == STRATA_ENOMEM ? rc : STRATA_EINTERNAL;
		goto err_close_buf;
	}
	uint8_t *h = b.data;
	size_t body = b.len - SNAP_HEADER_SIZE;
	put_le(h, SNAP_MAGIC, 4);
	h[4] = SNAP_VERSION;
	put_le(h + S_BODY_LEN, body, 8);
	uint32_t crc = crc32c_extend(0, h, S_CRC);
	crc = crc32c_extend(crc, h + SNAP_HEADER_SIZE, body);
	put_le(h + S_CRC, crc, 4);
	strata_free(segs);
	*out = buf_detach(&b, len);
	return 0;

err_close_buf:
	buf_close(&b);
err_free_segs:
	strata_free(segs);
	return rc;
}

/* ---- restore ---- */

static int get_name(struct cursor *c, const uint8_t **p, uint32_t *n)
{
	if (cursor_u32le(c, n) != 0 || *n < 1 || *n > ENTRY_MAX_NAME ||
	    cursor_bytes(c, *n, p) != 0 || memchr(*p, '\0', *n) != NULL) {
		return STRATA_EPROTO;
	}
	return 0;
}

/* Read one segment into a new struct in *out; STRATA_EPROTO/ENOMEM. */
static int segment_read(struct cursor *c, struct segment **out)
{
	uint64_t id, length, start;
	uint32_t name_len, n_attrs, n_ext;
	uint8_t sealed;
	const uint8_t *name;
	*out = NULL;
	if (cursor_u64le(c, &id) != 0 || get_name(c, &name, &name_len) != 0 ||
	    cursor_u64le(c, &length) != 0 || cursor_u64le(c, &start) != 0 ||
	    cursor_u8(c, &sealed) != 0 || sealed > 1 || start > length ||
	    cursor_u32le(c, &n_attrs) != 0 ||
	    n_attrs > cursor_remaining(c) / (SEGMENT_UUID_SIZE + 8)) {
		return STRATA_EPROTO;
	}
	struct segment *s = segment_new(id, (const char *)name, name_len);
	if (s == NULL) {
		return STRATA_ENOMEM;
	}
	*out = s; /* the caller frees it on error */
	s->start_offset = start;
	s->sealed = sealed == 1;
	if (n_attrs > 0 && segment_attr_reserve(s, n_attrs) != 0) {
		return STRATA_ENOMEM;
	}
	const uint8_t *prev = NULL;
	for (uint32_t i = 0; i < n_attrs; i++) {
		const uint8_t *key;
		uint64_t v;
		if (cursor_bytes(c, SEGMENT_UUID_SIZE, &key) != 0 ||
		    cursor_u64le(c, &v) != 0 ||
		    (int64_t)v == SEGMENT_ATTR_NONE ||
		    (prev != NULL &&
		     memcmp(prev, key, SEGMENT_UUID_SIZE) >= 0)) {
			return STRATA_EPROTO;
		}
		segment_attr_set(s, key, (int64_t)v);
		prev = key;
	}
	if (cursor_u32le(c, &n_ext) != 0 || n_ext > cursor_remaining(c) / 9) {
		return STRATA_EPROTO;
	}
	if (n_ext > 0) {
		s->extents = strata_calloc(n_ext, sizeof(*s->extents));
		if (s->extents == NULL) {
			return STRATA_ENOMEM;
		}
		s->cap_extents = n_ext;
	}
	uint64_t off = 0;
	for (uint32_t i = 0; i < n_ext; i++) {
		struct extent *e = &s->extents[i];
		uint64_t elen;
		const uint8_t *p;
		uint32_t cl;
		if (cursor_u8(c, &e->kind) != 0 ||
		    cursor_u64le(c, &elen) != 0 || elen == 0 ||
		    elen > length - off) {
			return STRATA_EPROTO;
		}
		if (e->kind == EXTENT_MEM) {
			if (elen > cursor_remaining(c) ||
			    cursor_bytes(c, (size_t)elen, &p) != 0) {
				return STRATA_EPROTO;
			}
			e->data = strata_malloc((size_t)elen);
			if (e->data == NULL) {
				return STRATA_ENOMEM;
			}
			memcpy(e->data, p, (size_t)elen);
			e->cap = elen;
			s->unflushed += elen;
		} else if (e->kind == EXTENT_CHUNK) {
			if (cursor_u64le(c, &e->chunk_offset) != 0 ||
			    get_name(c, &p, &cl) != 0) {
				return STRATA_EPROTO;
			}
			e->chunk = strata_strndup((const char *)p, cl);
			if (e->chunk == NULL) {
				return STRATA_ENOMEM;
			}
		} else if (e->kind != EXTENT_GONE ||
		           off + elen > s->start_offset) {
			return STRATA_EPROTO; /* GONE only before the start */
		}
		e->offset = off;
		e->length = elen;
		off += elen;
		s->n_extents++;
	}
	if (off != length) {
		return STRATA_EPROTO;
	}
	s->length = length;
	return 0;
}

static int restore_body(struct container_fsm *t, struct cursor *c)
{
	uint32_t n, ng;
	if (cursor_u64le(c, &t->next_id) != 0 || t->next_id == 0 ||
	    cursor_u32le(c, &n) != 0) {
		return STRATA_EPROTO;
	}
	uint64_t prev_id = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct segment *s;
		int rc = segment_read(c, &s);
		if (rc == 0 && (s->id <= prev_id || s->id >= t->next_id ||
		                segment_table_find_name(&t->segments, s->name,
		                                        strlen(s->name)))) {
			rc = STRATA_EPROTO;
		}
		if (rc == 0) {
			rc = segment_table_reserve(&t->segments);
		}
		if (rc != 0) {
			segment_free(s);
			return rc;
		}
		segment_table_insert(&t->segments, s);
		t->unflushed += s->unflushed;
		prev_id = s->id;
	}
	if (cursor_u32le(c, &ng) != 0 || ng > cursor_remaining(c) / 5) {
		return STRATA_EPROTO;
	}
	if (ng > 0) {
		t->garbage = strata_malloc(ng * sizeof(*t->garbage));
		if (t->garbage == NULL) {
			return STRATA_ENOMEM;
		}
		t->cap_garbage = ng;
	}
	for (uint32_t i = 0; i < ng; i++) {
		const uint8_t *p;
		uint32_t gl;
		if (get_name(c, &p, &gl) != 0) {
			return STRATA_EPROTO;
		}
		t->garbage[i] = strata_strndup((const char *)p, gl);
		if (t->garbage[i] == NULL) {
			return STRATA_ENOMEM;
		}
		t->n_garbage++;
	}
	return cursor_remaining(c) == 0 ? 0 : STRATA_EPROTO;
}

int container_fsm_restore(struct container_fsm *f, const uint8_t *data,
                          size_t len)
{
	if (data == NULL || len < SNAP_HEADER_SIZE ||
	    get_le(data, 4) != SNAP_MAGIC || data[4] != SNAP_VERSION ||
	    data[5] != 0 || data[6] != 0 || data[7] != 0 ||
	    get_le(data + S_BODY_LEN, 8) != len - SNAP_HEADER_SIZE ||
	    get_le(data + S_CRC + 0, 4) !=
	            crc32c_extend(crc32c_extend(0, data, S_CRC),
	                          data + SNAP_HEADER_SIZE,
	                          len - SNAP_HEADER_SIZE)) {
		snprintf(f->errmsg, sizeof(f->errmsg),
		         "restore container snapshot of %zu bytes: bad header "
		         "or CRC; state unchanged, fetch the snapshot again",
		         len);
		return STRATA_EPROTO;
	}
	struct container_fsm t;
	int rc = container_fsm_init(&t, &f->config);
	if (rc != 0) {
		return rc;
	}
	struct cursor c;
	cursor_init(&c, data + SNAP_HEADER_SIZE, len - SNAP_HEADER_SIZE);
	rc = restore_body(&t, &c);
	if (rc != 0) {
		container_fsm_close(&t);
		snprintf(f->errmsg, sizeof(f->errmsg),
		         "restore container snapshot of %zu bytes: %s at byte "
		         "%zu; state unchanged",
		         len,
		         rc == STRATA_EPROTO ? "inconsistent content"
		                             : "out of memory",
		         SNAP_HEADER_SIZE + c.off);
		return rc;
	}
	container_fsm_close(f);
	*f = t;
	return 0;
}
