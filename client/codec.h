/* Codecs in the client: codec plugins loaded once per process (by name for
 * writers, by encoding id for readers) and the encoded-event frame
 * (layout in strata/codec.h). */
#ifndef CLIENT_CODEC_H
#define CLIENT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "strata/codec.h"

/*
 * happy path: the first writer configured with "zstd" loads
 * <dir>/codec-zstd.so, checks its table and keeps a copy for the life of
 * the process (codecs are never unloaded: events in flight and readers
 * anywhere in the process may still use them); later lookups find it in
 * the table. dir is $STRATA_PLUGIN_DIR when set, else <directory of the
 * running program>/../plugins when that exists (the build tree), else
 * <that directory>/../lib/strata/plugins when it exists (an install
 * prefix), else strata/plugins beside libstrata.so when it exists (a
 * program elsewhere using an installed library), else the install
 * directory chosen at build time.
 * failure modes: no such file, no entry symbol, ABI outside
 * [STRATA_CODEC_ABI_MIN, STRATA_CODEC_ABI_VERSION], an incomplete table,
 * a table whose name or id differs from the one asked for: STRATA_EPLUGIN
 * or STRATA_EABI with a message naming the file and the fix. Unknown name
 * or id: STRATA_ENOENT naming the codecs this client knows.
 */

/* Codec by name ("zstd"); *out valid for the life of the process. */
int codec_by_name(const char *name, const struct strata_codec_ops **out,
                  char *errmsg);

/* Codec by encoding id (STRATA_CODEC_ID_*). */
int codec_by_id(uint32_t id, const struct strata_codec_ops **out, char *errmsg);

/* The level to use: 0 means the codec's default, else it must lie in the
 * codec's range (STRATA_EINVAL naming the range). */
int codec_level(const struct strata_codec_ops *ops, int level, int *out,
                char *errmsg);

/* Largest frame codec_frame_encode writes for a len-byte payload. */
size_t codec_frame_bound(const struct strata_codec_ops *ops, size_t len);

/*
 * Write the frame of a len-byte payload into out (codec_frame_bound bytes):
 * encoded when that is smaller than the payload, else plain (a codec
 * never makes an event bigger). *flen is the frame's size. Errors are the
 * codec's encode errors.
 */
int codec_frame_encode(const struct strata_codec_ops *ops, int level,
                       const void *data, size_t len, uint8_t *out, size_t *flen,
                       char *errmsg);

/*
 * Decode an encoded event's frame payload p[0..len) (codec header first)
 * into out (replacing its contents). A decoded length above max_decoded,
 * a bad header or input the codec rejects: STRATA_ECORRUPT; an unknown or
 * unloadable codec: its lookup error; STRATA_ENOMEM. errmsg says which,
 * without naming the segment (the caller adds where).
 */
int codec_event_decode(const uint8_t *p, size_t len, size_t max_decoded,
                       struct buf *out, char *errmsg);

#endif /* CLIENT_CODEC_H */
