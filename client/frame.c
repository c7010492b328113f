/* Event framing and the read reassembler (see frame.h). */
#include "client/frame.h"

#include <string.h>

#include "strata/error.h"

void frame_header(uint8_t hdr[4], uint32_t len)
{
	hdr[0] = (uint8_t)len;
	hdr[1] = (uint8_t)(len >> 8);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 24);
}

void frame_asm_init(struct frame_asm *fa, uint64_t offset, size_t max_event)
{
	buf_init(&fa->b, 0);
	fa->pos = 0;
	fa->base = offset;
	fa->max_event = max_event;
}

void frame_asm_close(struct frame_asm *fa)
{
	buf_close(&fa->b);
	fa->pos = 0;
}

void frame_asm_reset(struct frame_asm *fa, uint64_t offset)
{
	buf_reset(&fa->b);
	fa->pos = 0;
	fa->base = offset;
}

int frame_asm_feed(struct frame_asm *fa, const uint8_t *data, size_t len)
{
	if (fa->pos > 0) {
		size_t rest = fa->b.len - fa->pos;
		if (rest > 0) {
			memmove(fa->b.data, fa->b.data + fa->pos, rest);
		}
		fa->b.len = rest;
		fa->base += fa->pos;
		fa->pos = 0;
	}
	return buf_append(&fa->b, data, len);
}

int frame_asm_next(struct frame_asm *fa, const uint8_t **p, size_t *len,
                   uint64_t *off)
{
	size_t avail = fa->b.len - fa->pos;
	if (avail < 4) {
		return STRATA_EAGAIN;
	}
	const uint8_t *h = fa->b.data + fa->pos;
	uint32_t l = (uint32_t)h[0] | (uint32_t)h[1] << 8 |
	             (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
	if (l > fa->max_event) {
		return STRATA_ECORRUPT;
	}
	if (avail - 4 < l) {
		return STRATA_EAGAIN;
	}
	*p = h + 4;
	*len = l;
	*off = fa->base + fa->pos;
	fa->pos += 4 + (size_t)l;
	return 0;
}

uint64_t frame_asm_position(const struct frame_asm *fa)
{
	return fa->base + fa->pos;
}

uint64_t frame_asm_end(const struct frame_asm *fa)
{
	return fa->base + fa->b.len;
}

size_t frame_asm_pending(const struct frame_asm *fa)
{
	return fa->b.len - fa->pos;
}
