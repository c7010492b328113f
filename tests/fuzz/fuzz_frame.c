/* libFuzzer harness: the client's event framing reassembler (client/
 * frame.c) on arbitrary segment bytes (a length word's high bit marks an
 * encoded event and is reported, not counted). Byte 0 picks the largest event
 * length accepted, byte 1 how the rest is cut into reads; the events
 * returned must be exactly the frames of the byte stream, in order, at
 * their offsets, whatever the read boundaries. Some reads are fed before
 * the previous one is drained, and some events are given back (unget)
 * and must come out again. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/frame.h"
#include "strata/codec.h"
#include "strata/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE 1000u /* segment offset of the first byte */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* A frame's payload length: the length word without the encoded flag. */
static uint32_t flen(const uint8_t *p)
{
	return le32(p) & ~STRATA_FRAME_ENCODED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2) {
		return 0;
	}
	size_t max_event = data[0] == 255 ? SIZE_MAX : (size_t)data[0] * 17;
	uint32_t rng = data[1] * 2654435761u + 1;
	size_t max_read = (size_t)(data[1] % 64) + 1;
	const uint8_t *s = data + 2;
	size_t n = size - 2;

	struct frame_asm fa;
	frame_asm_init(&fa, BASE, max_event);
	size_t fed = 0;
	size_t next = 0; /* stream index of the next expected frame */
	bool corrupt = false;
	while (!corrupt) {
		const uint8_t *p;
		size_t len;
		uint64_t off;
		int rc = frame_asm_next(&fa, &p, &len, &off);
		if (rc == 0) {
			/* The frame at next, whole, within what was fed. */
			if (off != BASE + next || next + 4 > fed ||
			    flen(s + next) != len || len > max_event ||
			    fa.last_encoded != ((le32(s + next) &
			                         STRATA_FRAME_ENCODED) != 0) ||
			    next + 4 + len > fed ||
			    memcmp(p, s + next + 4, len) != 0) {
				abort();
			}
			rng = rng * 1103515245u + 12345u;
			if ((rng >> 16) % 5 == 0) {
				frame_asm_unget(&fa);
				if (frame_asm_position(&fa) != BASE + next) {
					abort();
				}
				continue; /* the same event comes next */
			}
			next += 4 + len;
			if (frame_asm_position(&fa) != BASE + next) {
				abort();
			}
			if ((rng >> 16) % 7 == 1 && fed < n) {
				/* Feed before draining: leftovers carry. */
				size_t chunk =
				        (size_t)(rng >> 20) % max_read + 1;
				if (chunk > n - fed) {
					chunk = n - fed;
				}
				if (frame_asm_feed(&fa, s + fed, chunk) != 0) {
					break; /* out of memory */
				}
				fed += chunk;
			}
		} else if (rc == STRATA_EAGAIN) {
			/* Really incomplete. */
			if (next + 4 <= fed && flen(s + next) <= max_event &&
			    next + 4 + flen(s + next) <= fed) {
				abort();
			}
			if (fed == n) {
				break;
			}
			rng = rng * 1103515245u + 12345u;
			size_t chunk = (size_t)(rng >> 16) % max_read + 1;
			if (chunk > n - fed) {
				chunk = n - fed;
			}
			if (frame_asm_feed(&fa, s + fed, chunk) != 0) {
				break; /* out of memory */
			}
			fed += chunk;
		} else if (rc == STRATA_ECORRUPT) {
			if (next + 4 > fed || flen(s + next) <= max_event ||
			    frame_asm_position(&fa) != BASE + next) {
				abort();
			}
			corrupt = true;
		} else {
			abort();
		}
		if (frame_asm_end(&fa) != BASE + fed ||
		    frame_asm_pending(&fa) != fed - next) {
			abort();
		}
	}
	frame_asm_reset(&fa, 7);
	if (frame_asm_position(&fa) != 7 || frame_asm_pending(&fa) != 0) {
		abort();
	}
	frame_asm_close(&fa);
	return 0;
}
