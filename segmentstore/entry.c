/* Container log entry codec: builder and bounds-checked reader. */
#include "segmentstore/entry.h"

#include <string.h>

#include "common/crc32c.h"
#include "common/le.h"
#include "strata/error.h"

/* Header field offsets. */
#define H_MAGIC 0
#define H_VERSION 4
#define H_FLAGS 5
#define H_COUNT 8
#define H_BODY_LEN 12
#define H_CRC 16

void entry_builder_init(struct entry_builder *b, size_t max_bytes)
{
	buf_init(&b->buf, max_bytes);
	b->ops = 0;
}

void entry_builder_close(struct entry_builder *b)
{
	buf_close(&b->buf);
	b->ops = 0;
}

int entry_builder_reserve(struct entry_builder *b, size_t bytes)
{
	return bytes > b->buf.len ? buf_reserve(&b->buf, bytes - b->buf.len)
	                          : 0;
}

void entry_builder_reset(struct entry_builder *b)
{
	buf_reset(&b->buf);
	b->ops = 0;
}

uint32_t entry_builder_count(const struct entry_builder *b)
{
	return b->ops;
}

size_t entry_builder_size(const struct entry_builder *b)
{
	return b->buf.len == 0 ? ENTRY_HEADER_SIZE : b->buf.len;
}

static bool name_ok(const char *name, size_t len)
{
	return name != NULL && len >= 1 && len <= ENTRY_MAX_NAME &&
	       memchr(name, '\0', len) == NULL;
}

static bool events_ok(int64_t first, uint32_t count)
{
	return count >= 1 && first >= 0 &&
	       (uint64_t)first <= (uint64_t)INT64_MAX - (count - 1);
}

/* Reserve the header (first op) and n op bytes: after this the appends of
 * the op cannot fail. */
static int op_begin(struct entry_builder *b, size_t n)
{
	size_t hdr = b->buf.len == 0 ? ENTRY_HEADER_SIZE : 0;
	if (n > SIZE_MAX - hdr) {
		return STRATA_ETOOBIG;
	}
	int rc = buf_reserve(&b->buf, hdr + n);
	if (rc != 0) {
		return rc;
	}
	if (hdr > 0) {
		static const uint8_t zero[ENTRY_HEADER_SIZE];
		rc = buf_append(&b->buf, zero, sizeof(zero));
	}
	return rc;
}

/* Appends after op_begin; each returns 0 because room is reserved, and
 * the OR of their results is checked once. */
static int op_end(struct entry_builder *b, size_t start, int rc)
{
	if (rc != 0) {
		b->buf.len = start; /* defensive: cannot happen after reserve */
		return rc;
	}
	b->ops++;
	return 0;
}

int entry_builder_add_create(struct entry_builder *b, const char *name)
{
	size_t n = name != NULL ? strnlen(name, ENTRY_MAX_NAME + 1) : 0;
	if (!name_ok(name, n)) {
		return STRATA_EINVAL;
	}
	int rc = op_begin(b, 1 + 4 + n);
	if (rc != 0) {
		return rc;
	}
	size_t start = b->buf.len;
	rc |= buf_append_u8(&b->buf, ENTRY_OP_CREATE);
	rc |= buf_append_u32le(&b->buf, (uint32_t)n);
	rc |= buf_append(&b->buf, name, n);
	return op_end(b, start, rc);
}

static int add_append(struct entry_builder *b, uint8_t type, uint64_t segment,
                      const uint8_t *writer, int64_t first, uint32_t count,
                      uint64_t expected, const void *data, size_t len)
{
	if (writer == NULL || !events_ok(first, count) ||
	    (data == NULL && len > 0)) {
		return STRATA_EINVAL;
	}
	if (len > UINT32_MAX) {
		return STRATA_ETOOBIG;
	}
	size_t fixed = 1 + 8 + ENTRY_UUID_SIZE + 8 + 4 + 4;
	if (type == ENTRY_OP_COND_APPEND) {
		fixed += 8;
	}
	int rc = op_begin(b, fixed + len);
	if (rc != 0) {
		return rc;
	}
	size_t start = b->buf.len;
	rc |= buf_append_u8(&b->buf, type);
	rc |= buf_append_u64le(&b->buf, segment);
	rc |= buf_append(&b->buf, writer, ENTRY_UUID_SIZE);
	rc |= buf_append_u64le(&b->buf, (uint64_t)first);
	rc |= buf_append_u32le(&b->buf, count);
	if (type == ENTRY_OP_COND_APPEND) {
		rc |= buf_append_u64le(&b->buf, expected);
	}
	rc |= buf_append_u32le(&b->buf, (uint32_t)len);
	rc |= buf_append(&b->buf, data, len);
	return op_end(b, start, rc);
}

int entry_builder_add_append(struct entry_builder *b, uint64_t segment,
                             const uint8_t *writer, int64_t first_event,
                             uint32_t event_count, const void *data, size_t len)
{
	return add_append(b, ENTRY_OP_APPEND, segment, writer, first_event,
	                  event_count, 0, data, len);
}

int entry_builder_add_cond_append(struct entry_builder *b, uint64_t segment,
                                  const uint8_t *writer, int64_t first_event,
                                  uint32_t event_count,
                                  uint64_t expected_offset, const void *data,
                                  size_t len)
{
	return add_append(b, ENTRY_OP_COND_APPEND, segment, writer, first_event,
	                  event_count, expected_offset, data, len);
}

/* An op made of a type byte and n u64 fields. */
static int add_u64s(struct entry_builder *b, uint8_t type, size_t n,
                    const uint64_t *v)
{
	int rc = op_begin(b, 1 + 8 * n);
	if (rc != 0) {
		return rc;
	}
	size_t start = b->buf.len;
	rc |= buf_append_u8(&b->buf, type);
	for (size_t i = 0; i < n; i++) {
		rc |= buf_append_u64le(&b->buf, v[i]);
	}
	return op_end(b, start, rc);
}

int entry_builder_add_seal(struct entry_builder *b, uint64_t segment)
{
	return add_u64s(b, ENTRY_OP_SEAL, 1, &segment);
}

int entry_builder_add_truncate(struct entry_builder *b, uint64_t segment,
                               uint64_t offset)
{
	uint64_t v[2] = {segment, offset};
	return add_u64s(b, ENTRY_OP_TRUNCATE, 2, v);
}

int entry_builder_add_merge(struct entry_builder *b, uint64_t target,
                            uint64_t source)
{
	uint64_t v[2] = {target, source};
	return add_u64s(b, ENTRY_OP_MERGE, 2, v);
}

int entry_builder_add_delete(struct entry_builder *b, uint64_t segment)
{
	return add_u64s(b, ENTRY_OP_DELETE, 1, &segment);
}

int entry_builder_add_attr_update(struct entry_builder *b, uint64_t segment,
                                  const uint8_t *key, bool compare,
                                  int64_t expected, int64_t value)
{
	if (key == NULL) {
		return STRATA_EINVAL;
	}
	int rc = op_begin(b, 1 + 8 + ENTRY_UUID_SIZE + 1 + 8 + 8);
	if (rc != 0) {
		return rc;
	}
	size_t start = b->buf.len;
	rc |= buf_append_u8(&b->buf, ENTRY_OP_ATTR_UPDATE);
	rc |= buf_append_u64le(&b->buf, segment);
	rc |= buf_append(&b->buf, key, ENTRY_UUID_SIZE);
	rc |= buf_append_u8(&b->buf, compare ? 1 : 0);
	rc |= buf_append_u64le(&b->buf, (uint64_t)expected);
	rc |= buf_append_u64le(&b->buf, (uint64_t)value);
	return op_end(b, start, rc);
}

int entry_builder_add_flush(struct entry_builder *b, uint64_t segment,
                            uint64_t offset, uint64_t length, const char *chunk,
                            uint64_t chunk_offset)
{
	size_t n = chunk != NULL ? strnlen(chunk, ENTRY_MAX_NAME + 1) : 0;
	if (!name_ok(chunk, n) || length == 0) {
		return STRATA_EINVAL;
	}
	int rc = op_begin(b, 1 + 8 * 4 + 4 + n);
	if (rc != 0) {
		return rc;
	}
	size_t start = b->buf.len;
	rc |= buf_append_u8(&b->buf, ENTRY_OP_FLUSH);
	rc |= buf_append_u64le(&b->buf, segment);
	rc |= buf_append_u64le(&b->buf, offset);
	rc |= buf_append_u64le(&b->buf, length);
	rc |= buf_append_u64le(&b->buf, chunk_offset);
	rc |= buf_append_u32le(&b->buf, (uint32_t)n);
	rc |= buf_append(&b->buf, chunk, n);
	return op_end(b, start, rc);
}

int entry_builder_add_chunk_deleted(struct entry_builder *b, const char *chunk)
{
	size_t n = chunk != NULL ? strnlen(chunk, ENTRY_MAX_NAME + 1) : 0;
	if (!name_ok(chunk, n)) {
		return STRATA_EINVAL;
	}
	int rc = op_begin(b, 1 + 4 + n);
	if (rc != 0) {
		return rc;
	}
	size_t start = b->buf.len;
	rc |= buf_append_u8(&b->buf, ENTRY_OP_CHUNK_DELETED);
	rc |= buf_append_u32le(&b->buf, (uint32_t)n);
	rc |= buf_append(&b->buf, chunk, n);
	return op_end(b, start, rc);
}

int entry_builder_add_owner(struct entry_builder *b, uint64_t node,
                            uint64_t term)
{
	int rc = op_begin(b, 1 + 8 + 8);
	if (rc != 0) {
		return rc;
	}
	size_t start = b->buf.len;
	rc |= buf_append_u8(&b->buf, ENTRY_OP_OWNER);
	rc |= buf_append_u64le(&b->buf, node);
	rc |= buf_append_u64le(&b->buf, term);
	return op_end(b, start, rc);
}

int entry_builder_finish(struct entry_builder *b, const uint8_t **entry,
                         size_t *len)
{
	if (b->buf.len == 0) {
		int rc = op_begin(b, 0);
		if (rc != 0) {
			return rc;
		}
	}
	uint8_t *h = b->buf.data;
	size_t body = b->buf.len - ENTRY_HEADER_SIZE;
	if (body > UINT32_MAX) {
		return STRATA_ETOOBIG;
	}
	le32_put(h + H_MAGIC, ENTRY_MAGIC);
	h[H_VERSION] = ENTRY_VERSION;
	h[H_FLAGS] = 0;
	h[6] = 0;
	h[7] = 0;
	le32_put(h + H_COUNT, b->ops);
	le32_put(h + H_BODY_LEN, (uint32_t)body);
	uint32_t crc = crc32c_extend(0, h, H_CRC);
	crc = crc32c_extend(crc, h + ENTRY_HEADER_SIZE, body);
	le32_put(h + H_CRC, crc);
	*entry = b->buf.data;
	*len = b->buf.len;
	return 0;
}

/* ---- reader ---- */

static int get_name(struct cursor *c, struct entry_op *op)
{
	uint32_t n;
	const uint8_t *p;
	if (cursor_u32le(c, &n) != 0 || n < 1 || n > ENTRY_MAX_NAME ||
	    cursor_bytes(c, n, &p) != 0 || memchr(p, '\0', n) != NULL) {
		return STRATA_EPROTO;
	}
	op->name = (const char *)p;
	op->name_len = n;
	return 0;
}

static int get_i64(struct cursor *c, int64_t *v)
{
	uint64_t u;
	int rc = cursor_u64le(c, &u);
	*v = (int64_t)u;
	return rc;
}

/* Decode one operation at c; STRATA_EPROTO on anything malformed. */
static int decode_op(struct cursor *c, struct entry_op *op)
{
	memset(op, 0, sizeof(*op));
	uint32_t len;
	uint8_t flag;
	if (cursor_u8(c, &op->type) != 0) {
		return STRATA_EPROTO;
	}
	switch (op->type) {
	case ENTRY_OP_CREATE:
		return get_name(c, op);
	case ENTRY_OP_APPEND:
	case ENTRY_OP_COND_APPEND:
		if (cursor_u64le(c, &op->segment) != 0 ||
		    cursor_bytes(c, ENTRY_UUID_SIZE, &op->uuid) != 0 ||
		    get_i64(c, &op->first_event) != 0 ||
		    cursor_u32le(c, &op->event_count) != 0 ||
		    !events_ok(op->first_event, op->event_count)) {
			return STRATA_EPROTO;
		}
		if (op->type == ENTRY_OP_COND_APPEND &&
		    cursor_u64le(c, &op->offset) != 0) {
			return STRATA_EPROTO;
		}
		if (cursor_u32le(c, &len) != 0 ||
		    cursor_bytes(c, len, &op->data) != 0) {
			return STRATA_EPROTO;
		}
		op->data_len = len;
		return 0;
	case ENTRY_OP_SEAL:
	case ENTRY_OP_DELETE:
		return cursor_u64le(c, &op->segment);
	case ENTRY_OP_TRUNCATE:
		if (cursor_u64le(c, &op->segment) != 0) {
			return STRATA_EPROTO;
		}
		return cursor_u64le(c, &op->offset);
	case ENTRY_OP_MERGE:
		if (cursor_u64le(c, &op->segment) != 0) {
			return STRATA_EPROTO;
		}
		return cursor_u64le(c, &op->source);
	case ENTRY_OP_ATTR_UPDATE:
		if (cursor_u64le(c, &op->segment) != 0 ||
		    cursor_bytes(c, ENTRY_UUID_SIZE, &op->uuid) != 0 ||
		    cursor_u8(c, &flag) != 0 || flag > 1 ||
		    get_i64(c, &op->expected) != 0 ||
		    get_i64(c, &op->value) != 0) {
			return STRATA_EPROTO;
		}
		op->compare = flag == 1;
		return 0;
	case ENTRY_OP_FLUSH:
		if (cursor_u64le(c, &op->segment) != 0 ||
		    cursor_u64le(c, &op->offset) != 0 ||
		    cursor_u64le(c, &op->length) != 0 || op->length == 0 ||
		    cursor_u64le(c, &op->chunk_offset) != 0) {
			return STRATA_EPROTO;
		}
		return get_name(c, op);
	case ENTRY_OP_CHUNK_DELETED:
		return get_name(c, op);
	case ENTRY_OP_OWNER:
		if (cursor_u64le(c, &op->node) != 0) {
			return STRATA_EPROTO;
		}
		return cursor_u64le(c, &op->term);
	default:
		return STRATA_EPROTO;
	}
}

int entry_reader_init(struct entry_reader *r, const uint8_t *entry, size_t len)
{
	memset(r, 0, sizeof(*r));
	if (entry == NULL || len < ENTRY_HEADER_SIZE) {
		return STRATA_EPROTO;
	}
	uint32_t count = le32_get(entry + H_COUNT);
	uint32_t body = le32_get(entry + H_BODY_LEN);
	if (le32_get(entry + H_MAGIC) != ENTRY_MAGIC ||
	    entry[H_VERSION] != ENTRY_VERSION || entry[H_FLAGS] != 0 ||
	    entry[6] != 0 || entry[7] != 0 || body != len - ENTRY_HEADER_SIZE) {
		return STRATA_EPROTO;
	}
	uint32_t crc = crc32c_extend(0, entry, H_CRC);
	crc = crc32c_extend(crc, entry + ENTRY_HEADER_SIZE, body);
	if (crc != le32_get(entry + H_CRC)) {
		return STRATA_EPROTO;
	}
	/* Every op takes at least 5 bytes: a cheap bound before walking. */
	if (count > body / 5) {
		return STRATA_EPROTO;
	}
	struct cursor c;
	struct entry_op op;
	cursor_init(&c, entry + ENTRY_HEADER_SIZE, body);
	for (uint32_t i = 0; i < count; i++) {
		if (decode_op(&c, &op) != 0) {
			return STRATA_EPROTO;
		}
	}
	if (cursor_remaining(&c) != 0) {
		return STRATA_EPROTO;
	}
	r->entry = entry;
	r->len = len;
	r->off = ENTRY_HEADER_SIZE;
	r->count = count;
	return 0;
}

bool entry_reader_next(struct entry_reader *r, struct entry_op *op)
{
	if (r->next >= r->count) {
		return false;
	}
	struct cursor c;
	cursor_init(&c, r->entry + r->off, r->len - r->off);
	if (decode_op(&c, op) != 0) {
		r->next = r->count; /* cannot happen after init */
		return false;
	}
	r->off += c.off;
	r->next++;
	return true;
}
