/* A reference-counted byte buffer: one allocation that several owners on
 * several threads keep alive, freed by the last release. A segment
 * container's tier-2 read is one: the read cache holds it and so does the
 * reply that sends it (common/rpc.c), written later by the RPC I/O thread,
 * so the bytes are neither copied into the reply nor freed under it. */
#ifndef COMMON_REFBUF_H
#define COMMON_REFBUF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct refbuf {
	atomic_uint refs; /* owners; the last refbuf_release frees */
	size_t size;      /* bytes at data */
	uint8_t data[];   /* not initialised by refbuf_new */
};

/* A buffer of size bytes (contents undefined: nothing is zeroed) with one
 * reference, from the strata allocator; NULL when out of memory. */
struct refbuf *refbuf_new(size_t size);

/* A new buffer holding a copy of data[0..size); NULL when out of memory. */
struct refbuf *refbuf_copy(const uint8_t *data, size_t size);

/* One more reference to rb (any thread); returns rb. */
struct refbuf *refbuf_hold(struct refbuf *rb);

/* Drop one reference (any thread); the last frees rb. NULL is a no-op. */
void refbuf_release(struct refbuf *rb);

#endif /* COMMON_REFBUF_H */
