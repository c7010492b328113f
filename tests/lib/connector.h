/* What connector plugin tests share: a host table and the loader. */
#ifndef TESTS_LIB_CONNECTOR_H
#define TESTS_LIB_CONNECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/connector.h"

/* The host every op of a connector test gets: log lines to stderr (so a
 * failing test shows what the plugin said), counters ignored, and a
 * malloc/realloc that fail from the test_alloc_fail_at'th call on
 * (0: never), counting calls and the largest reallocation. */
extern const struct strata_host test_connector_host;
extern long test_alloc_fail_at; /* > 0: that call (1 = next) and later fail */
extern long test_alloc_calls;   /* mallocs and reallocs since armed */
extern size_t test_alloc_max;   /* largest reallocation asked for */

/* dlopen $STRATA_PLUGIN_DIR/connector-<name>.so (kept for
 * test_connector_unload) and return its table; NULL (why on stderr) when
 * it cannot. */
const struct strata_connector_ops *test_connector_load(const char *name);

/*
 * Assert what every connector table must hold: the current ABI, name,
 * zero reserved fields, check set; when source, every source op set and
 * source_flags as given, else every source op NULL (flags 0); the same
 * for the sink, whose commit is set exactly when commit.
 */
void test_connector_assert_table(const struct strata_connector_ops *ops,
                                 const char *name, bool source,
                                 uint32_t source_flags, bool sink,
                                 uint32_t sink_flags, bool commit);

/* A cmocka group teardown: dlclose what test_connector_load opened. */
int test_connector_unload(void **state);

#endif /* TESTS_LIB_CONNECTOR_H */
