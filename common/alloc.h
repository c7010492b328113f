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
char *strata_strdup(const char *s);
char *strata_strndup(const char *s, size_t n);

#endif /* COMMON_ALLOC_H */
