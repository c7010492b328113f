/* Codec plugin ABI and the encoded-event format: the one header a codec
 * plugin author needs. */
#ifndef STRATA_CODEC_H
#define STRATA_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "strata/error.h"
#include "strata/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A codec compresses (later: encrypts) one event's payload on the writer
 * and restores it on every reader. The writer records which codec in the
 * event itself, so readers decode transparently and one stream may hold
 * events of several codecs (and plain ones).
 *
 * Event frames in a segment (the bytes a store keeps and serves):
 *
 *   plain:   u32le len            | len bytes of payload
 *   encoded: u32le len | 0x80000000 | len bytes:
 *              u8    protocol      STRATA_CODEC_PROTOCOL (1)
 *              u32le encoding id   the codec (STRATA_CODEC_ID_*)
 *              u32le decoded len   payload bytes after decoding
 *              ...   the codec's output (len - STRATA_CODEC_HEADER bytes)
 *
 * The high bit of the length word marks an encoded event, so no payload
 * byte is ever taken for a header (a plain event may start with any
 * byte). Stores never decode; they check frames as usual with the bit
 * masked off. Encoding ids are global and never reused (schema-registry
 * style); a reader finds the plugin for an id through the names below.
 *
 * A codec plugin is a shared object named codec-<name>.so that exports
 * ONE symbol, STRATA_CODEC_ENTRY, returning a pointer to a static const
 * struct strata_codec_ops (build with -fvisibility=hidden and mark the
 * entry with STRATA_PLUGIN_EXPORT). The table is APPEND ONLY: every
 * appended field bumps STRATA_CODEC_ABI_VERSION; the host accepts
 * [STRATA_CODEC_ABI_MIN, STRATA_CODEC_ABI_VERSION] and copies only the
 * fields the plugin's version declares. The host never writes the table.
 *
 * Ops are stateless and thread-safe: the host calls them from any thread,
 * concurrently. They return 0 or a positive STRATA_E* code and, on error,
 * write a message of at most STRATA_ERRMSG_SIZE bytes (NUL included) into
 * errmsg. Decoding input is untrusted: a plugin must never read or write
 * outside the buffers it is given, whatever the bytes.
 */

#define STRATA_CODEC_ABI_VERSION 1 /* bumped on EVERY append to the table */
#define STRATA_CODEC_ABI_MIN 1     /* oldest version the host still loads */
#define STRATA_CODEC_ENTRY "strata_codec_plugin"

#define STRATA_FRAME_ENCODED 0x80000000u /* length-word bit: encoded */
#define STRATA_CODEC_PROTOCOL 1          /* first header byte */
#define STRATA_CODEC_HEADER 9            /* protocol + id + decoded len */

/* Registered encoding ids (never reused). */
#define STRATA_CODEC_ID_ZSTD 1
#define STRATA_CODEC_ID_LZ4 2
#define STRATA_CODEC_ID_GZIP 3

struct strata_codec_ops {
	uint32_t abi_version; /* version the plugin was built with */
	uint32_t reserved;    /* zero */
	const char *name;     /* "zstd", "lz4", "gzip": [a-z0-9_-], as in
	                         the file name codec-<name>.so */
	uint32_t encoding_id; /* STRATA_CODEC_ID_* recorded in each event */
	int level_min;        /* accepted compression levels ... */
	int level_max;
	int level_default; /* ... and the one used when none is given */

	/* Largest output encode() can produce for len input bytes. */
	size_t (*bound)(size_t len);
	/*
	 * Encode len bytes of in at level (within [level_min, level_max])
	 * into out (cap bytes, at least bound(len)); *out_len is the size.
	 * STRATA_EINVAL (bad level), STRATA_ENOMEM, STRATA_ETOOBIG.
	 */
	int (*encode)(int level, const void *in, size_t len, void *out,
	              size_t cap, size_t *out_len, char *errmsg);
	/*
	 * Decode len bytes of in into out, which holds exactly out_len bytes
	 * (the decoded length the event recorded). 0 only when the input is
	 * a complete encoding of exactly out_len bytes; STRATA_ECORRUPT for
	 * anything else (truncated, garbage, longer or shorter output),
	 * STRATA_ENOMEM.
	 */
	int (*decode)(const void *in, size_t len, void *out, size_t out_len,
	              char *errmsg);
};

typedef const struct strata_codec_ops *(*strata_codec_entry_fn)(void);

/* The entry every codec plugin defines (declared here so plugins build
 * with -Wmissing-prototypes). */
STRATA_PLUGIN_EXPORT const struct strata_codec_ops *strata_codec_plugin(void);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_CODEC_H */
