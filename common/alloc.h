/* Swappable allocator: every Strata allocation goes through it, so tests
 * can inject out-of-memory and plugins share the host's heap. */
#ifndef COMMON_ALLOC_H
#define COMMON_ALLOC_H

#include <stddef.h>

/* An allocator; all three functions must be set and thread-safe. */
struct strata_allocator {
	void *(*malloc)(size_t size);
	void *(*realloc)(void *ptr, size_t size);
	void (*free)(void *ptr);
};

/* Install a (copied) allocator for the whole process; NULL restores libc.
 * Call only while no other thread allocates (start of main, or in tests). */
void strata_alloc_set(const struct strata_allocator *a);

/* The allocator in use (never NULL). */
const struct strata_allocator *strata_alloc_get(void);

/* malloc/calloc/realloc/free through the installed allocator. Each returns
 * NULL on failure (calloc also on n*size overflow); size 0 returns a unique
 * pointer or NULL like libc. strata_free(NULL) is a no-op. */
void *strata_malloc(size_t size);
void *strata_calloc(size_t n, size_t size);
void *strata_realloc(void *ptr, size_t size);
void strata_free(void *ptr);

/* Copy of a NUL-terminated string / of at most n bytes of it, NUL added;
 * NULL on OOM. The caller frees with strata_free(). */
/* Give the C library's free memory back to the OS (glibc: malloc_trim;
 * elsewhere nothing). glibc keeps what a busy process freed (its mmap
 * threshold grows with large frees, and free space between live blocks
 * stays mapped), so a store that drained a large unflushed tail kept
 * hundreds of MB it no longer used. Walks the heap: call it after large
 * drops, not on a hot path. */
void strata_mem_release(void);

/* Bytes the C library holds free, not given back to the OS, and in use
 * (glibc: mallinfo2's fordblks and uordblks; elsewhere 0 and 0). Locks
 * each heap arena briefly. */
size_t strata_mem_free_held(size_t *in_use);

char *strata_strdup(const char *s);
char *strata_strndup(const char *s, size_t n);

#endif /* COMMON_ALLOC_H */
