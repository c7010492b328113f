/* The s3 plugin's chunk model: chunks as part objects, over a transport. */
#ifndef PLUGINS_TIER2_S3_S3_STORE_H
#define PLUGINS_TIER2_S3_S3_STORE_H

#include <stdint.h>

#include "plugins/tier2/s3/s3_config.h"
#include "plugins/tier2/s3/s3_transport.h"
#include "strata/plugin.h"

/*
 * Chunk "<name>" is the objects "<prefix><name>/<offset>[.crc]", <offset>
 * being 20 decimal digits: the chunk offset of the object's first byte.
 * ".crc" objects are framed (s3_frame.h: a CRC32C per 64 KiB block,
 * checked on every read); the others are plain bytes (checksum=none, or
 * written by an older Strata). One write() is one object; the chunk's
 * length is the end of its last object. The object at offset 0 always
 * exists (empty after create), so a chunk exists iff it has objects. See
 * docs/tier2.md, "s3".
 *
 * Every s3_store_* op has the contract of the same-named op in
 * include/strata/plugin.h (errors, errmsg); s3_store retries transport
 * failures that may pass (5xx, throttling, timeouts, broken connections)
 * with exponential backoff and jitter, at most cfg->retries times and
 * within cfg->retry_budget_ms, and maps the final failure to a Strata code
 * with a message naming the chunk, the object (s3://bucket/key), the
 * server's error code and the endpoint.
 */
struct s3_store {
	const struct strata_host *host;     /* borrowed */
	const struct s3_config *cfg;        /* borrowed */
	const struct s3_transport_ops *ops; /* borrowed */
	void *t;                            /* the transport (borrowed) */
	uint64_t (*now_ms)(void);           /* monotonic clock (tests: fake) */
	void (*sleep_ms)(uint64_t ms);      /* backoff sleep (tests: fake) */
};

/* Fill s; all pointers are borrowed and must outlive it. */
void s3_store_init(struct s3_store *s, const struct strata_host *host,
                   const struct s3_config *cfg,
                   const struct s3_transport_ops *ops, void *t);

int s3_store_create(struct s3_store *s, const char *name, char *errmsg);
int s3_store_write(struct s3_store *s, const char *name, uint64_t offset,
                   const void *buf, size_t len, char *errmsg);
int s3_store_read(struct s3_store *s, const char *name, uint64_t offset,
                  void *buf, size_t len, size_t *nread, char *errmsg);
int s3_store_stat(struct s3_store *s, const char *name,
                  struct strata_tier2_chunk_info *info, char *errmsg);
int s3_store_list(struct s3_store *s, const char *prefix,
                  strata_tier2_list_cb cb, void *arg, char *errmsg);
int s3_store_truncate(struct s3_store *s, const char *name, uint64_t length,
                      char *errmsg);
/* Multipart upload-part-copy into one new object when the transport has
 * multipart (SigV4); otherwise one CopyObject per source object, undone
 * on error. */
int s3_store_concat(struct s3_store *s, const char *target,
                    const char *const *sources, size_t n, char *errmsg);
int s3_store_remove(struct s3_store *s, const char *name, char *errmsg);

/* Write the object key of chunk name at offset into out (size bytes),
 * with the ".crc" suffix when framed; false when it does not fit. */
bool s3_store_key(const struct s3_store *s, const char *name, uint64_t off,
                  bool framed, char *out, size_t size);

#endif /* PLUGINS_TIER2_S3_S3_STORE_H */
