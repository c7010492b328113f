/* Event framing and the read reassembler (see frame.h). */
#include "client/frame.h"

#include <string.h>

#include "common/alloc.h"
#include "strata/codec.h"
#include "strata/error.h"

void frame_header(uint8_t hdr[4], uint32_t len)
{
	hdr[0] = (uint8_t)len;
	hdr[1] = (uint8_t)(len >> 8);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 24);
}

/* A varint field unless v is 0 (proto3 leaves zero scalars out). */
static size_t put_varint_field(uint8_t *out, unsigned field, uint64_t v)
{
	if (v == 0) {
		return 0;
	}
	size_t n = pb_put_varint(out, (uint64_t)field << 3 | PB_VARINT);
	return n + pb_put_varint(out != NULL ? out + n : NULL, v);
}

/* A length-delimited field with its bytes, unless empty. */
static size_t put_bytes_field(uint8_t *out, unsigned field, const void *p,
                              size_t len)
{
	if (len == 0) {
		return 0;
	}
	size_t n = pb_put_len_head(out, field, len);
	if (out != NULL) {
		memcpy(out + n, p, len);
	}
	return n + len;
}

size_t append_request_head(uint8_t *out, const char *segment,
                           const uint8_t *writer_id, size_t writer_id_len,
                           int64_t first_event_number, uint32_t event_count,
                           size_t data_len)
{
	size_t n = put_bytes_field(out, 1, segment,
	                           segment != NULL ? strlen(segment) : 0);
	n += put_bytes_field(out != NULL ? out + n : NULL, 2, writer_id,
	                     writer_id_len);
	n += put_varint_field(out != NULL ? out + n : NULL, 3,
	                      (uint64_t)first_event_number);
	n += put_varint_field(out != NULL ? out + n : NULL, 4, event_count);
	if (data_len > 0) {
		n += pb_put_len_head(out != NULL ? out + n : NULL, 5, data_len);
	}
	return n;
}

size_t append_request_tail(uint8_t *out, int64_t expected_offset)
{
	return put_varint_field(out, 6, (uint64_t)expected_offset);
}

static uint32_t frame_len(const uint8_t h[4])
{
	return (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
	       (uint32_t)h[3] << 24;
}

void frame_asm_init(struct frame_asm *fa, uint64_t offset, size_t max_event)
{
	memset(fa, 0, sizeof(*fa));
	buf_init(&fa->carry, 0);
	fa->off = offset;
	fa->max_event = max_event;
}

/* Free the chunk being served. */
static void cur_free(struct frame_asm *fa)
{
	struct rpc_body b = {
	        .data = fa->cur, .len = fa->cur_len, .msg = fa->cur_msg};
	rpc_body_free(&b);
	fa->cur = NULL;
	fa->cur_msg = NULL;
	fa->cur_len = fa->pos = 0;
}

void frame_asm_close(struct frame_asm *fa)
{
	cur_free(fa);
	buf_close(&fa->carry);
	fa->cpos = 0;
	fa->last = 0;
}

void frame_asm_reset(struct frame_asm *fa, uint64_t offset)
{
	cur_free(fa);
	buf_reset(&fa->carry);
	fa->cpos = 0;
	fa->last = 0;
	fa->off = offset;
}

/* The last event's pointer is no longer needed: empty carry when all of
 * it was returned. */
static void drop_returned(struct frame_asm *fa)
{
	if (fa->cpos > 0 && fa->cpos == fa->carry.len) {
		buf_reset(&fa->carry);
		fa->cpos = 0;
	}
	fa->last = 0;
}

int frame_asm_feed_body(struct frame_asm *fa, struct rpc_body *b)
{
	drop_returned(fa);
	if (fa->pos < fa->cur_len && buf_append(&fa->carry, fa->cur + fa->pos,
	                                        fa->cur_len - fa->pos) != 0) {
		rpc_body_free(b);
		return STRATA_ENOMEM;
	}
	cur_free(fa);
	fa->cur = b->data;
	fa->cur_len = b->data != NULL ? b->len : 0;
	fa->cur_msg = b->msg;
	memset(b, 0, sizeof(*b));
	return 0;
}

int frame_asm_feed_owned(struct frame_asm *fa, uint8_t *data, size_t len)
{
	struct rpc_body b = {.data = data, .len = len, .msg = NULL};
	return frame_asm_feed_body(fa, &b);
}

int frame_asm_feed(struct frame_asm *fa, const uint8_t *data, size_t len)
{
	uint8_t *copy = strata_malloc(len > 0 ? len : 1);
	if (copy == NULL) {
		return STRATA_ENOMEM;
	}
	if (len > 0) {
		memcpy(copy, data, len);
	}
	return frame_asm_feed_owned(fa, copy, len);
}

/* Move up to n bytes from cur to carry; false on ENOMEM. */
static bool carry_take(struct frame_asm *fa, size_t n)
{
	size_t avail = fa->cur_len - fa->pos;
	if (n > avail) {
		n = avail;
	}
	if (n > 0 && buf_append(&fa->carry, fa->cur + fa->pos, n) != 0) {
		return false;
	}
	fa->pos += n;
	return true;
}

/* The next event starts in carry: complete it from cur, or EAGAIN. */
static int next_from_carry(struct frame_asm *fa, const uint8_t **p, size_t *len,
                           uint64_t *off)
{
	struct buf *c = &fa->carry;
	size_t have = c->len - fa->cpos;
	if (have < 4 && !carry_take(fa, 4 - have)) {
		return STRATA_ENOMEM;
	}
	have = c->len - fa->cpos;
	if (have < 4) {
		return STRATA_EAGAIN;
	}
	uint32_t w = frame_len(c->data + fa->cpos);
	uint32_t l = w & ~STRATA_FRAME_ENCODED;
	if (l > fa->max_event) {
		return STRATA_ECORRUPT;
	}
	size_t frame = 4 + (size_t)l;
	if (have < frame && !carry_take(fa, frame - have)) {
		return STRATA_ENOMEM;
	}
	if (c->len - fa->cpos < frame) {
		return STRATA_EAGAIN;
	}
	*p = c->data + fa->cpos + 4;
	*len = l;
	*off = fa->off;
	fa->cpos += frame;
	fa->off += frame;
	fa->last = frame;
	fa->last_carry = true;
	fa->last_encoded = (w & STRATA_FRAME_ENCODED) != 0;
	return 0;
}

int frame_asm_next(struct frame_asm *fa, const uint8_t **p, size_t *len,
                   uint64_t *off)
{
	drop_returned(fa);
	if (fa->cpos < fa->carry.len) {
		return next_from_carry(fa, p, len, off);
	}
	size_t avail = fa->cur_len - fa->pos;
	if (avail < 4) {
		return STRATA_EAGAIN;
	}
	const uint8_t *h = fa->cur + fa->pos;
	uint32_t w = frame_len(h);
	uint32_t l = w & ~STRATA_FRAME_ENCODED;
	if (l > fa->max_event) {
		return STRATA_ECORRUPT;
	}
	if (avail - 4 < l) {
		return STRATA_EAGAIN;
	}
	*p = h + 4;
	*len = l;
	*off = fa->off;
	fa->pos += 4 + (size_t)l;
	fa->off += 4 + (size_t)l;
	fa->last = 4 + (size_t)l;
	fa->last_carry = false;
	fa->last_encoded = (w & STRATA_FRAME_ENCODED) != 0;
	return 0;
}

void frame_asm_unget(struct frame_asm *fa)
{
	if (fa->last == 0) {
		return;
	}
	fa->off -= fa->last;
	if (fa->last_carry) {
		fa->cpos -= fa->last;
	} else {
		fa->pos -= fa->last;
	}
	fa->last = 0;
}

uint64_t frame_asm_position(const struct frame_asm *fa)
{
	return fa->off;
}

size_t frame_asm_pending(const struct frame_asm *fa)
{
	return (fa->carry.len - fa->cpos) + (fa->cur_len - fa->pos);
}

uint64_t frame_asm_end(const struct frame_asm *fa)
{
	return fa->off + frame_asm_pending(fa);
}
