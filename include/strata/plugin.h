/* Tier-2 storage plugin ABI: the one header a plugin author needs. */
#ifndef STRATA_PLUGIN_H
#define STRATA_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A tier-2 plugin is a shared object that exports ONE symbol,
 * STRATA_TIER2_ENTRY, a function returning a pointer to a static const
 * struct strata_tier2_ops. Build it with -fvisibility=hidden and mark the
 * entry with STRATA_PLUGIN_EXPORT.
 *
 * Versioning (SQLite-VFS / Redis-module style): the table is APPEND ONLY.
 * Every appended field bumps STRATA_TIER2_ABI_VERSION. A plugin sets
 * abi_version to the version it was built against; the host accepts
 * versions in [STRATA_TIER2_ABI_MIN, STRATA_TIER2_ABI_VERSION], copies only
 * the fields that version declares and treats later ones as NULL. The host
 * never writes the table.
 *
 * Storage model: tier 2 stores CHUNKS, flat byte files named by the host.
 * A name is a relative path of [A-Za-z0-9._/-], 1..STRATA_TIER2_NAME_MAX
 * bytes, whose '/'-separated components are never empty, "." or ".." (so
 * no leading, trailing or doubled '/'). The host checks every name before
 * a plugin sees it. A chunk grows only by appending at its current length.
 * Strata never writes one chunk from two owners, and never uses a chunk's
 * name as a directory of another ("a" and "a/b" never both exist), so
 * names map directly onto file paths or object keys.
 *
 * Threading: every op is synchronous and runs on a host worker thread,
 * never on an event loop. Ops on DIFFERENT chunks may run concurrently;
 * the host never runs two ops on the SAME chunk at once. A plugin never
 * sees libuv, NNG or protobuf; it reaches the host only through
 * struct strata_host.
 *
 * Errors: every op returns 0 or a positive STRATA_E* code (never -1, never
 * errno) and, on error, writes a human-readable message of at most
 * STRATA_ERRMSG_SIZE bytes (NUL included) into errmsg that names the chunk
 * and the cause, e.g. "write chunk scope/stream/0.e3/7: disk full (ENOSPC)".
 * The host prefixes it with the plugin's name.
 */

#define STRATA_TIER2_ABI_VERSION 2 /* bumped on EVERY append to the table */
#define STRATA_TIER2_ABI_MIN 1     /* oldest version the host still loads */
#define STRATA_TIER2_ENTRY "strata_tier2_plugin"
#define STRATA_TIER2_NAME_MAX 1024

#define STRATA_PLUGIN_EXPORT __attribute__((visibility("default")))

/* Log levels shared by the host and plugins. */
enum strata_log_level {
	STRATA_LOG_DEBUG = 0,
	STRATA_LOG_INFO = 1,
	STRATA_LOG_WARN = 2,
	STRATA_LOG_ERROR = 3,
};

struct strata_tier2_ops;

/*
 * Services the host offers a plugin; valid from open() until close()
 * returns. APPEND ONLY, like the ops table; abi_version tells which fields
 * exist.
 */
struct strata_host {
	uint32_t abi_version; /* STRATA_TIER2_ABI_VERSION of the host */
	uint32_t reserved;    /* zero */
	/* Log one line under the plugin's name; printf-style, thread-safe. */
	void (*log)(const struct strata_host *host, int level, const char *fmt,
	            ...) __attribute__((format(printf, 3, 4)));
	/* The host's swappable allocator (tests inject OOM through it). */
	void *(*malloc)(size_t size);
	void *(*realloc)(void *ptr, size_t size);
	void (*free)(void *ptr);
	/* Add delta to the host counter strata_tier2_<name>_total{plugin=..};
	 * name is [a-z0-9_]; thread-safe; never fails. */
	void (*counter_add)(const struct strata_host *host, const char *name,
	                    uint64_t delta);
	void *host_data; /* host private; plugins leave it alone */
	/*
	 * Open an instance of ANOTHER tier-2 plugin through the host's own
	 * loader, for wrapper plugins (faulty, caches, encryption). plugin is
	 * a name or a path, resolved like the tier2.plugin config key; config
	 * is its "key=value" lines; both borrowed. On success *ops is a
	 * host-owned table and *state the instance: call (*ops)->close(*state)
	 * exactly once to release it. That table's open is NULL, its concat is
	 * NULL when the child has none, and each op checks chunk names and
	 * prefixes the child's messages with its name, as for top-level
	 * instances. Errors: STRATA_EPLUGIN, STRATA_EABI (could not load),
	 * STRATA_ECONFIG or the child's own open() error; errmsg says which.
	 */
	int (*open_tier2)(const struct strata_host *host, const char *plugin,
	                  const char *config,
	                  const struct strata_tier2_ops **ops, void **state,
	                  char *errmsg);
};

/* What stat() reports about a chunk. */
struct strata_tier2_chunk_info {
	uint64_t length;  /* bytes readable from offset 0 */
	int64_t mtime_ns; /* last modification, ns since epoch; 0 if unknown */
};

/* Called by list() once per chunk with its full name; returning non-zero
 * stops the listing and list() returns that value. name is borrowed for
 * the call only. The callback may call ops of the same instance that do
 * not change the chunks being listed (stat, read). */
typedef int (*strata_tier2_list_cb)(void *arg, const char *name,
                                    const struct strata_tier2_chunk_info *info);

struct strata_tier2_ops {
	uint32_t abi_version; /* version the plugin was built with */
	uint32_t reserved;    /* zero */
	const char *name;     /* "local", "s3", "hdfs", "mem", "faulty" */

	/*
	 * Open an instance. config is a NUL-terminated list of "key=value"
	 * lines (the host flattens the tier2 section of its YAML config; it
	 * is borrowed for the call). On success *state is the instance,
	 * passed to every later op. Unknown or bad keys must fail with
	 * STRATA_ECONFIG and a message naming the key and what is allowed.
	 */
	int (*open)(const struct strata_host *host, const char *config,
	            void **state, char *errmsg);
	/* Release an instance; no op is in flight. Never fails. */
	void (*close)(void *state);

	/* Create an empty chunk; STRATA_EEXIST if it exists. */
	int (*create)(void *state, const char *name, char *errmsg);
	/*
	 * Append len bytes (borrowed) at offset, which must equal the current
	 * length (else STRATA_EBADOFFSET, nothing written). Durable when it
	 * returns 0. On any error nothing partial may later be returned by
	 * read() as data.
	 */
	int (*write)(void *state, const char *name, uint64_t offset,
	             const void *buf, size_t len, char *errmsg);
	/*
	 * Read up to len bytes at offset into buf (caller's); *nread is the
	 * count, short only at the end of the chunk. offset == length reads
	 * 0 bytes; offset > length is STRATA_ERANGE. A torn or corrupt tail
	 * is STRATA_ETORN/STRATA_ECORRUPT, never data.
	 */
	int (*read)(void *state, const char *name, uint64_t offset, void *buf,
	            size_t len, size_t *nread, char *errmsg);
	/* Stat a chunk; STRATA_ENOENT if it does not exist. */
	int (*stat)(void *state, const char *name,
	            struct strata_tier2_chunk_info *info, char *errmsg);
	/* Call cb for every chunk whose name starts with prefix ("" = all),
	 * in no particular order. */
	int (*list)(void *state, const char *prefix, strata_tier2_list_cb cb,
	            void *arg, char *errmsg);
	/* Cut a chunk to length (<= current length, else STRATA_ERANGE). */
	int (*truncate)(void *state, const char *name, uint64_t length,
	                char *errmsg);
	/*
	 * OPTIONAL (NULL = unsupported): append the whole of each of the n
	 * source chunks, in order, to target, then delete the sources. Either
	 * all of it happens or, on error, target keeps its old length.
	 */
	int (*concat)(void *state, const char *target,
	              const char *const *sources, size_t n, char *errmsg);
	/* Delete a chunk; STRATA_ENOENT if it does not exist. (Named remove,
	 * not delete, so C++ plugins can include this header.) */
	int (*remove)(void *state, const char *name, char *errmsg);

	/* ---- ABI 2 ---- */
	/*
	 * OPTIONAL (NULL = not offered): check config as open() would, with
	 * no side effect (no directory created, no connection made): 0, or
	 * the code and message open() would give for it. Servers call it for
	 * --check-config.
	 */
	int (*check)(const struct strata_host *host, const char *config,
	             char *errmsg);
};

/* The one symbol a tier-2 plugin exports. Returns a static table. */
typedef const struct strata_tier2_ops *(*strata_tier2_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_PLUGIN_H */
