/* Failing allocator for OOM tests (see oom.h). */
#include "tests/lib/oom.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "common/alloc.h"

static atomic_long calls;
static long fail_at;

static int should_fail(void)
{
	long n = atomic_fetch_add(&calls, 1) + 1;
	return fail_at > 0 && n >= fail_at;
}

static void *oom_malloc(size_t size)
{
	return should_fail() ? NULL : malloc(size);
}

static void *oom_realloc(void *ptr, size_t size)
{
	return should_fail() ? NULL : realloc(ptr, size);
}

void oom_install(long n)
{
	static const struct strata_allocator a = {
	        .malloc = oom_malloc,
	        .realloc = oom_realloc,
	        .free = free,
	};
	atomic_store(&calls, 0);
	fail_at = n;
	strata_alloc_set(&a);
}

long oom_uninstall(void)
{
	strata_alloc_set(NULL);
	return atomic_load(&calls);
}
