/* On-disk record format of the local tier-2 plugin, and its CRC32C. */
#ifndef PLUGINS_TIER2_LOCAL_LOCAL_FORMAT_H
#define PLUGINS_TIER2_LOCAL_LOCAL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A chunk file is a sequence of records and nothing else (an empty file is
 * an empty chunk). Every record is a 36-byte header followed by its
 * payload; all integers are little-endian:
 *
 *   0  u32 magic        LOCAL_RECORD_MAGIC ("LST2")
 *   4  u32 length       payload bytes, 1..LOCAL_RECORD_MAX
 *   8  u64 offset       logical chunk offset of the payload's first byte
 *  16  u64 write_start  logical offset at which the write() that produced
 *                       this record began (equal for all its records)
 *  24  u32 flags        0 in this version (anything else is invalid)
 *  28  u32 payload_crc  CRC32C of the payload
 *  32  u32 header_crc   CRC32C of bytes 0..31
 *
 * One write() becomes ceil(len / LOCAL_RECORD_MAX) records. See
 * docs/tier2.md ("local") for how a torn tail is told from corruption.
 */
#define LOCAL_RECORD_MAGIC 0x3254534cu /* "LST2" as little-endian bytes */
#define LOCAL_RECORD_HDR 36u
#define LOCAL_RECORD_MAX (1u << 20) /* largest payload of one record */

/* A decoded record header. */
struct local_record {
	uint32_t length;      /* payload bytes */
	uint64_t offset;      /* logical offset of the payload */
	uint64_t write_start; /* logical offset where its write began */
	uint32_t flags;       /* 0 */
	uint32_t payload_crc; /* CRC32C of the payload */
};

/* CRC32C (Castagnoli) of len bytes, continuing from crc (0 to start).
 * Thread-safe; no allocation. */
uint32_t local_crc32c(uint32_t crc, const void *buf, size_t len);

/* Encode r into the LOCAL_RECORD_HDR bytes at out, magic and header CRC
 * included. */
void local_record_encode(const struct local_record *r, uint8_t *out);

/* Decode the LOCAL_RECORD_HDR bytes at in into *r. True only when the
 * magic, header CRC, flags and length (1..LOCAL_RECORD_MAX) are all valid;
 * *r is filled either way when the magic matches. */
bool local_record_decode(const uint8_t *in, struct local_record *r);

#endif /* PLUGINS_TIER2_LOCAL_LOCAL_FORMAT_H */
