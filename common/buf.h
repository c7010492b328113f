/* Growable byte buffer for building output, and a bounds-checked cursor
 * for reading untrusted bytes. */
#ifndef COMMON_BUF_H
#define COMMON_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A growable byte buffer. The caller owns the struct; the buffer owns data.
 * Whenever data != NULL, data[len] is '\0' (one byte past the content,
 * not counted in len or max), so a text buffer is also a C string.
 * Every append is all-or-nothing: on error len and the content are
 * unchanged. Not thread-safe.
 */
struct buf {
	uint8_t *data; /* content; NULL until the first allocation */
	size_t len;    /* bytes of content */
	size_t cap;    /* bytes allocated for content (NUL byte excluded) */
	size_t max;    /* content limit; appends beyond it fail ETOOBIG */
};

/* Initialise an empty buffer that may hold at most max bytes of content;
 * max 0 means no limit. Allocates nothing; never fails. */
void buf_init(struct buf *b, size_t max);

/* Free the content and leave the buffer empty (as after buf_init with the
 * same max). Safe on an empty or already closed buffer. */
void buf_close(struct buf *b);

/* Make room for n more bytes of content without further allocation.
 * Errors: STRATA_ETOOBIG if len + n exceeds max (or overflows),
 * STRATA_ENOMEM. */
int buf_reserve(struct buf *b, size_t n);

/* Append n bytes copied from p (p may be NULL when n is 0). Errors as
 * buf_reserve. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Append one byte / a little-endian u32 / a little-endian u64. Errors as
 * buf_reserve. */
int buf_append_u8(struct buf *b, uint8_t v);
int buf_append_u32le(struct buf *b, uint32_t v);
int buf_append_u64le(struct buf *b, uint64_t v);

/* Append printf-formatted text (no NUL counted in len). Errors as
 * buf_reserve, plus STRATA_EINVAL for a format the C library rejects. */
int buf_printf(struct buf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

/* Drop the content (len = 0) but keep the allocation for reuse. */
void buf_reset(struct buf *b);

/*
 * Take the content: returns data (NUL-terminated as above; the caller frees
 * it with strata_free) and stores len in *len if len is not NULL. The
 * buffer is left empty and may be reused. Returns NULL (and *len = 0) when
 * nothing was ever allocated.
 */
uint8_t *buf_detach(struct buf *b, size_t *len);

/*
 * A read cursor over borrowed bytes (they must outlive it). Every read
 * checks the remaining length first: on short input it returns
 * STRATA_EPROTO, reads nothing and does not advance. It never reads out of
 * bounds, so decoders of untrusted bytes use it for every field.
 */
struct cursor {
	const uint8_t *data; /* the input, borrowed */
	size_t len;          /* bytes of input */
	size_t off;          /* bytes consumed so far, <= len */
};

/* Start reading len bytes at data (borrowed; may be NULL if len is 0). */
void cursor_init(struct cursor *c, const void *data, size_t len);

/* Bytes not yet consumed. */
size_t cursor_remaining(const struct cursor *c);

/* Read one byte / a little-endian u32 / u64 into *v. STRATA_EPROTO if
 * fewer bytes remain. */
int cursor_u8(struct cursor *c, uint8_t *v);
int cursor_u32le(struct cursor *c, uint32_t *v);
int cursor_u64le(struct cursor *c, uint64_t *v);

/* Consume n bytes and point *p at them (borrowed from the input, valid as
 * long as the input is). STRATA_EPROTO if fewer than n bytes remain. */
int cursor_bytes(struct cursor *c, size_t n, const uint8_t **p);

/* Consume n bytes without looking at them. STRATA_EPROTO if fewer than n
 * bytes remain. */
int cursor_skip(struct cursor *c, size_t n);

/*
 * Protobuf wire format, for the few hot decoders that must not copy (a
 * read reply's data stays in the received message). Strict: anything that
 * is not the plain encoding gives STRATA_EPROTO and consumes nothing, so a
 * caller can hand such input to protobuf-c, which decides.
 */

/* A base-128 varint of at most 10 bytes whose value fits 64 bits. */
int cursor_varint(struct cursor *c, uint64_t *v);

/* Write v as a (canonical) varint at out, unless out is NULL; return its
 * size, 1..10 bytes. For encoders that build a message in place. */
size_t pb_put_varint(uint8_t *out, uint64_t v);

/* Protobuf wire types. */
enum pb_wire {
	PB_VARINT = 0,
	PB_I64 = 1,
	PB_LEN = 2,
	PB_I32 = 5,
};

/* One field: number, wire type, and its value (v for PB_VARINT, and the
 * little-endian value for PB_I64 / PB_I32; p, len for PB_LEN, borrowed
 * from the input). */
struct pb_field {
	uint32_t number; /* 1 .. 2^29 - 1 */
	enum pb_wire wire;
	uint64_t v;
	const uint8_t *p;
	size_t len;
};

/* Write the tag of length-delimited field `field` and the varint len (not
 * the bytes that follow) at out, unless out is NULL; return their size. */
size_t pb_put_len_head(uint8_t *out, uint32_t field, size_t len);

/* Read the next field. STRATA_EPROTO (nothing consumed) on short input,
 * field number 0 or beyond 2^29 - 1, a tag longer than 5 bytes, or wire
 * type 3, 4, 6 or 7 (groups and reserved). */
int cursor_pb_field(struct cursor *c, struct pb_field *f);

#endif /* COMMON_BUF_H */
