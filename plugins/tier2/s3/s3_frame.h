/* The s3 plugin's checked object format: data in 64 KiB blocks, each
 * followed by its CRC32C. */
#ifndef PLUGINS_TIER2_S3_S3_FRAME_H
#define PLUGINS_TIER2_S3_S3_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A framed object holds its data in blocks of S3_FRAME_BLOCK bytes (the
 * last one shorter), each followed by the CRC32C of that block, little
 * endian:
 *
 *     data[0, 64Ki) crc | data[64Ki, 128Ki) crc | ... | data[k, len) crc
 *
 * so an object of len data bytes is s3_frame_size(len) bytes long and a
 * listing's object size alone gives the data length back. A range of data
 * is read as the whole blocks that hold it, one ranged GET, each block
 * checked before any of its bytes is returned. The frame starts at the
 * object's first byte: every object (one write, or one concat) is framed
 * on its own, so copying an object whole keeps it valid.
 */
#define S3_FRAME_BLOCK ((uint64_t)65536)
#define S3_FRAME_CRC ((uint64_t)4)
/* The key suffix of a framed object ("<chunk>/<20 digits>.crc"); a key
 * without it is a plain object (checksum=none, or older Strata). */
#define S3_FRAME_SUFFIX ".crc"

/* Bytes of an object framing len data bytes. */
uint64_t s3_frame_size(uint64_t len);

/* The data length of a framed object of size bytes; false when no data
 * length frames to that size (a last block of 1..4 bytes: cut short). */
bool s3_frame_len(uint64_t size, uint64_t *len);

/* Frame len bytes of src into dst, which holds s3_frame_size(len). */
void s3_frame_encode(void *dst, const void *src, size_t len);

/*
 * Data [off, off+n) of an object of olen data bytes (off + n <= olen,
 * n > 0) lies in the blocks starting at data offset *boff; those blocks
 * are the object's bytes [*foff, *foff + *flen).
 */
void s3_frame_span(uint64_t off, uint64_t n, uint64_t olen, uint64_t *boff,
                   uint64_t *foff, uint64_t *flen);

/*
 * Check the framed blocks in src (flen bytes, as s3_frame_span gave them,
 * starting at a block boundary) and copy their data to dst (flen minus
 * the CRCs; dst may be src: the data moves down in place). Returns true
 * when every block's CRC matches; else false with *bad the index (0-based,
 * within src) of the first block that does not.
 */
bool s3_frame_decode(const void *src, size_t flen, void *dst, size_t *bad);

#endif /* PLUGINS_TIER2_S3_S3_FRAME_H */
