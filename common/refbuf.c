/* Reference-counted byte buffers (see refbuf.h). */
#include "common/refbuf.h"

#include <stdint.h>
#include <string.h>

#include "common/alloc.h"

struct refbuf *refbuf_new(size_t size)
{
	if (size > SIZE_MAX - sizeof(struct refbuf)) {
		return NULL;
	}
	struct refbuf *rb = strata_malloc(sizeof(*rb) + size);
	if (rb == NULL) {
		return NULL;
	}
	atomic_init(&rb->refs, 1);
	rb->size = size;
	return rb;
}

struct refbuf *refbuf_copy(const uint8_t *data, size_t size)
{
	struct refbuf *rb = refbuf_new(size);
	if (rb != NULL && size > 0) {
		memcpy(rb->data, data, size);
	}
	return rb;
}

struct refbuf *refbuf_hold(struct refbuf *rb)
{
	atomic_fetch_add_explicit(&rb->refs, 1, memory_order_relaxed);
	return rb;
}

void refbuf_release(struct refbuf *rb)
{
	if (rb == NULL) {
		return;
	}
	/* acq_rel: the freeing thread sees every other owner's writes. */
	if (atomic_fetch_sub_explicit(&rb->refs, 1, memory_order_acq_rel) ==
	    1) {
		strata_free(rb);
	}
}
