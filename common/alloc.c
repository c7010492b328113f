/* Swappable allocator (see alloc.h). */
#include "common/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

static const struct strata_allocator libc_allocator = {
        .malloc = malloc,
        .realloc = realloc,
        .free = free,
};

static struct strata_allocator current = {
        .malloc = malloc,
        .realloc = realloc,
        .free = free,
};

void strata_alloc_set(const struct strata_allocator *a)
{
	current = a != NULL ? *a : libc_allocator;
}

const struct strata_allocator *strata_alloc_get(void)
{
	return &current;
}

void *strata_malloc(size_t size)
{
	return current.malloc(size);
}

void *strata_calloc(size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size) {
		return NULL;
	}
	void *p = current.malloc(n * size);
	if (p != NULL) {
		memset(p, 0, n * size);
	}
	return p;
}

void *strata_realloc(void *ptr, size_t size)
{
	return current.realloc(ptr, size);
}

void strata_free(void *ptr)
{
	if (ptr != NULL) {
		current.free(ptr);
	}
}

char *strata_strndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = strata_malloc(len + 1);
	if (p == NULL) {
		return NULL;
	}
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *strata_strdup(const char *s)
{
	return strata_strndup(s, SIZE_MAX);
}

void strata_mem_release(void)
{
#ifdef __GLIBC__
	(void)malloc_trim(0);
#endif
}

size_t strata_mem_free_held(size_t *in_use)
{
#if defined(__GLIBC__) && \
        (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	struct mallinfo2 m = mallinfo2();
	if (in_use != NULL) {
		*in_use = m.uordblks;
	}
	return m.fordblks;
#else
	if (in_use != NULL) {
		*in_use = 0;
	}
	return 0;
#endif
}
