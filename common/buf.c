/* Growable byte buffer and bounds-checked cursor (see buf.h). */
#include "common/buf.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "strata/error.h"

#define BUF_MIN_CAP 64
/* "No limit" still leaves room for the NUL byte without overflow. */
#define BUF_NO_LIMIT (SIZE_MAX - 1)

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = (max == 0 || max > BUF_NO_LIMIT) ? BUF_NO_LIMIT : max;
}

void buf_close(struct buf *b)
{
	strata_free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

int buf_reserve(struct buf *b, size_t n)
{
	if (n > b->max - b->len) {
		return STRATA_ETOOBIG;
	}
	size_t need = b->len + n;
	if (b->data != NULL && need <= b->cap) {
		return 0;
	}
	/* Double from BUF_MIN_CAP, clamped to max (need <= max here). */
	size_t cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (cap < need) {
		cap = cap > b->max / 2 ? b->max : cap * 2;
	}
	if (cap > b->max) {
		cap = b->max;
	}
	uint8_t *p = strata_realloc(b->data, cap + 1);
	if (p == NULL) {
		return STRATA_ENOMEM;
	}
	if (b->data == NULL) {
		p[0] = '\0';
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	int rv = buf_reserve(b, n);
	if (rv != 0) {
		return rv;
	}
	if (n > 0) {
		memcpy(b->data + b->len, p, n);
	}
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append_u8(struct buf *b, uint8_t v)
{
	return buf_append(b, &v, 1);
}

int buf_append_u32le(struct buf *b, uint32_t v)
{
	uint8_t le[4];
	for (int i = 0; i < 4; i++) {
		le[i] = (uint8_t)(v >> (8 * i));
	}
	return buf_append(b, le, sizeof(le));
}

int buf_append_u64le(struct buf *b, uint64_t v)
{
	uint8_t le[8];
	for (int i = 0; i < 8; i++) {
		le[i] = (uint8_t)(v >> (8 * i));
	}
	return buf_append(b, le, sizeof(le));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	size_t room = b->data != NULL ? b->cap - b->len + 1 : 0;
	int n = vsnprintf(room > 0 ? (char *)b->data + b->len : NULL, room, fmt,
	                  ap2);
	va_end(ap2);
	if (n < 0) {
		if (b->data != NULL) {
			b->data[b->len] = '\0';
		}
		return STRATA_EINVAL;
	}
	if ((size_t)n < room) {
		b->len += (size_t)n;
		return 0;
	}
	/* Did not fit: restore the terminator, grow, format again. */
	if (b->data != NULL) {
		b->data[b->len] = '\0';
	}
	int rv = buf_reserve(b, (size_t)n);
	if (rv != 0) {
		return rv;
	}
	va_copy(ap2, ap);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rv = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rv;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL) {
		b->data[0] = '\0';
	}
}

uint8_t *buf_detach(struct buf *b, size_t *len)
{
	uint8_t *p = b->data;
	if (len != NULL) {
		*len = p != NULL ? b->len : 0;
	}
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

void cursor_init(struct cursor *c, const void *data, size_t len)
{
	c->data = data;
	c->len = data != NULL ? len : 0;
	c->off = 0;
}

size_t cursor_remaining(const struct cursor *c)
{
	return c->len - c->off;
}

int cursor_bytes(struct cursor *c, size_t n, const uint8_t **p)
{
	if (n > c->len - c->off) {
		return STRATA_EPROTO;
	}
	*p = c->data + c->off;
	c->off += n;
	return 0;
}

int cursor_skip(struct cursor *c, size_t n)
{
	const uint8_t *p;
	return cursor_bytes(c, n, &p);
}

int cursor_u8(struct cursor *c, uint8_t *v)
{
	const uint8_t *p;
	int rv = cursor_bytes(c, 1, &p);
	if (rv != 0) {
		return rv;
	}
	*v = p[0];
	return 0;
}

int cursor_u32le(struct cursor *c, uint32_t *v)
{
	const uint8_t *p;
	int rv = cursor_bytes(c, 4, &p);
	if (rv != 0) {
		return rv;
	}
	uint32_t x = 0;
	for (int i = 3; i >= 0; i--) {
		x = (x << 8) | p[i];
	}
	*v = x;
	return 0;
}

int cursor_u64le(struct cursor *c, uint64_t *v)
{
	const uint8_t *p;
	int rv = cursor_bytes(c, 8, &p);
	if (rv != 0) {
		return rv;
	}
	uint64_t x = 0;
	for (int i = 7; i >= 0; i--) {
		x = (x << 8) | p[i];
	}
	*v = x;
	return 0;
}

int cursor_varint(struct cursor *c, uint64_t *v)
{
	uint64_t x = 0;
	for (size_t i = 0; i < 10; i++) {
		if (c->off + i >= c->len) {
			return STRATA_EPROTO;
		}
		uint8_t b = c->data[c->off + i];
		if (i == 9 && b > 1) {
			return STRATA_EPROTO; /* more than 64 bits */
		}
		x |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			c->off += i + 1;
			*v = x;
			return 0;
		}
	}
	return STRATA_EPROTO;
}

size_t pb_put_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	for (; v >= 0x80; v >>= 7, n++) {
		if (out != NULL) {
			out[n] = (uint8_t)(v | 0x80);
		}
	}
	if (out != NULL) {
		out[n] = (uint8_t)v;
	}
	return n + 1;
}

size_t pb_put_len_head(uint8_t *out, uint32_t field, size_t len)
{
	size_t n = pb_put_varint(out, (uint64_t)field << 3 | PB_LEN);
	return n + pb_put_varint(out != NULL ? out + n : NULL, len);
}

int cursor_pb_field(struct cursor *c, struct pb_field *f)
{
	size_t start = c->off;
	uint64_t tag;
	if (cursor_varint(c, &tag) != 0) {
		return STRATA_EPROTO;
	}
	uint64_t number = tag >> 3;
	unsigned wire = (unsigned)(tag & 7);
	int rv = 0;
	if (c->off - start > 5 || number == 0 || number > (1u << 29) - 1) {
		rv = STRATA_EPROTO;
		goto out;
	}
	f->number = (uint32_t)number;
	f->wire = (enum pb_wire)wire;
	f->v = 0;
	f->p = NULL;
	f->len = 0;
	switch (wire) {
	case PB_VARINT:
		rv = cursor_varint(c, &f->v);
		break;
	case PB_I64:
		rv = cursor_u64le(c, &f->v);
		break;
	case PB_I32: {
		uint32_t v32 = 0;
		rv = cursor_u32le(c, &v32);
		f->v = v32;
		break;
	}
	case PB_LEN: {
		uint64_t n;
		rv = cursor_varint(c, &n);
		if (rv == 0 && n > cursor_remaining(c)) {
			rv = STRATA_EPROTO;
		}
		if (rv == 0) {
			f->len = (size_t)n;
			rv = cursor_bytes(c, f->len, &f->p);
		}
		break;
	}
	default:
		rv = STRATA_EPROTO;
	}
out:
	if (rv != 0) {
		c->off = start;
	}
	return rv;
}
