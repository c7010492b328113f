/* What connector plugin tests share (see connector.h). */
#include "tests/lib/connector.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

long test_alloc_fail_at;
long test_alloc_calls;
size_t test_alloc_max;

__attribute__((format(printf, 3, 4))) static void
t_log(const struct strata_host *h, int level, const char *fmt, ...)
{
	(void)h;
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "[connector %d] ", level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void t_counter(const struct strata_host *h, const char *n, uint64_t d)
{
	(void)h;
	(void)n;
	(void)d;
}

static bool fail_now(void)
{
	test_alloc_calls++;
	return test_alloc_fail_at > 0 && test_alloc_calls >= test_alloc_fail_at;
}

static void *t_malloc(size_t size)
{
	return fail_now() ? NULL : malloc(size);
}

static void *t_realloc(void *p, size_t size)
{
	test_alloc_max = size > test_alloc_max ? size : test_alloc_max;
	return fail_now() ? NULL : realloc(p, size);
}

const struct strata_host test_connector_host = {
        .abi_version = STRATA_TIER2_ABI_VERSION,
        .log = t_log,
        .malloc = t_malloc,
        .realloc = t_realloc,
        .free = free,
        .counter_add = t_counter,
};

static void *loaded; /* the handle test_connector_load opened */

const struct strata_connector_ops *test_connector_load(const char *name)
{
	char path[4096];
	const char *pd = getenv("STRATA_PLUGIN_DIR");
	snprintf(path, sizeof(path), "%s/connector-%s.so",
	         pd != NULL ? pd : ".", name);
	loaded = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (loaded == NULL) {
		fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
		return NULL;
	}
	void *sym = dlsym(loaded, STRATA_CONNECTOR_ENTRY);
	if (sym == NULL) {
		fprintf(stderr, "%s: no %s\n", path, STRATA_CONNECTOR_ENTRY);
		return NULL;
	}
	return ((strata_connector_entry_fn)sym)();
}

int test_connector_unload(void **state)
{
	(void)state;
	if (loaded != NULL) {
		dlclose(loaded);
		loaded = NULL;
	}
	return 0;
}

void test_connector_assert_table(const struct strata_connector_ops *ops,
                                 const char *name, bool source,
                                 uint32_t source_flags, bool sink,
                                 uint32_t sink_flags, bool commit)
{
	assert_int_equal(ops->abi_version, STRATA_CONNECTOR_ABI_VERSION);
	assert_int_equal(ops->reserved, 0);
	assert_int_equal(ops->reserved2, 0);
	assert_int_equal(ops->reserved3, 0);
	assert_string_equal(ops->name, name);
	assert_int_equal(ops->source_flags, source ? source_flags : 0);
	assert_int_equal(ops->source_open != NULL, source);
	assert_int_equal(ops->source_poll != NULL, source);
	assert_int_equal(ops->source_position != NULL, source);
	assert_int_equal(ops->source_close != NULL, source);
	assert_int_equal(ops->sink_flags, sink ? sink_flags : 0);
	assert_int_equal(ops->sink_open != NULL, sink);
	assert_int_equal(ops->sink_write != NULL, sink);
	assert_int_equal(ops->sink_prepare != NULL, sink);
	assert_int_equal(ops->sink_commit != NULL, sink && commit);
	assert_int_equal(ops->sink_close != NULL, sink);
	assert_non_null(ops->check);
}
