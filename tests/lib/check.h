/* Test helpers shared by cmocka tests: substring checks, list counting,
 * deterministic test data. */
#ifndef TESTS_LIB_CHECK_H
#define TESTS_LIB_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "strata/plugin.h"

/* Fail the running cmocka test unless part occurs in s (both printed). */
void assert_contains(const char *s, const char *part);

/* A strata_tier2_list_cb that counts the chunks listed: arg is an int
 * incremented once per chunk. Always returns 0 (keep listing). */
int count_list_cb(void *arg, const char *name,
                  const struct strata_tier2_chunk_info *info);

/* Fill buf with n bytes of xorshift64 output from seed (non-zero): the
 * same bytes on every run. */
void fill_pseudo_random(uint8_t *buf, size_t n, uint64_t seed);

#endif /* TESTS_LIB_CHECK_H */
