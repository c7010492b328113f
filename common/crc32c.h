/* CRC32C (Castagnoli): container log entries and snapshots, and the local
 * tier-2 plugin's records (which compiles this file into itself). */
#ifndef COMMON_CRC32C_H
#define COMMON_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Extend crc (0 to start) over n bytes at p (borrowed; may be NULL when n
 * is 0) and return the new CRC32C. Chaining calls over consecutive pieces
 * gives the CRC of their concatenation. Pure, thread-safe, never fails.
 * Uses the CPU's crc32 instruction where there is one (x86-64 SSE4.2).
 */
uint32_t crc32c_extend(uint32_t crc, const void *p, size_t n);

/* The same in portable C (slicing-by-8), whatever the CPU: for tests that
 * compare the two. */
uint32_t crc32c_extend_portable(uint32_t crc, const void *p, size_t n);

/* Which one crc32c_extend uses on this CPU: "sse4.2" or "portable". */
const char *crc32c_impl(void);

#endif /* COMMON_CRC32C_H */
