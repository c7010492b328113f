/* Test helpers shared by cmocka tests: substring checks, list counting. */
#ifndef TESTS_LIB_CHECK_H
#define TESTS_LIB_CHECK_H

#include "strata/plugin.h"

/* Fail the running cmocka test unless part occurs in s (both printed). */
void assert_contains(const char *s, const char *part);

/* A strata_tier2_list_cb that counts the chunks listed: arg is an int
 * incremented once per chunk. Always returns 0 (keep listing). */
int count_list_cb(void *arg, const char *name,
                  const struct strata_tier2_chunk_info *info);

#endif /* TESTS_LIB_CHECK_H */
