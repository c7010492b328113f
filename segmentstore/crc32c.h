/* CRC32C (Castagnoli) checksum used by container log entries and snapshots. */
#ifndef SEGMENTSTORE_CRC32C_H
#define SEGMENTSTORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extend crc (0 to start) over n bytes at p (borrowed; may be NULL when n
 * is 0) and return the new CRC32C. Chaining calls over consecutive pieces
 * gives the CRC of their concatenation. Pure, thread-safe, never fails.
 */
uint32_t crc32c_extend(uint32_t crc, const void *p, size_t n);

#endif /* SEGMENTSTORE_CRC32C_H */
