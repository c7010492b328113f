/* Internal state and cross-file helpers of the tier-2 "local" plugin. */
#ifndef PLUGINS_TIER2_LOCAL_LOCAL_H
#define PLUGINS_TIER2_LOCAL_LOCAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "strata/plugin.h"

/*
 * The plugin is split by concern (local.c has the design comment):
 *   local.c        ops table, open/close and config, error messages
 *   local_dir.c    chunk names, directories; create, list, delete
 *   local_chunk.c  read-ahead window, sparse index, scan (torn-tail and
 *                  corruption detection), LRU cache of open chunks
 *   local_io.c     write, read, stat, truncate, concat
 *   local_format.c the record format and CRC32C (local_format.h)
 * Every helper here is internal to the plugin (hidden visibility).
 */

#define LOCAL_WINDOW (64u << 10)  /* read-ahead of scans and reads */
#define LOCAL_RESERVED ".strata-" /* prefix of internal files */

enum chunk_state {
	CHUNK_OK = 0,
	CHUNK_TORN,    /* damage confined to the last write */
	CHUNK_CORRUPT, /* damage followed by a later write's records */
};

/* Sparse index entry: a record starts at logical off, file position pos. */
struct index_entry {
	uint64_t off; /* logical offset of the record's payload */
	uint64_t pos; /* file position of its header */
};

/* A chunk's cached state; see local.c for its lifetime. */
struct chunk {
	struct chunk *prev;      /* LRU neighbour, more recent */
	struct chunk *next;      /* LRU neighbour, less recent */
	char *name;              /* owned */
	int fd;                  /* O_RDWR, -1 when not loaded */
	unsigned refs;           /* ops using it; evictable at 0 */
	bool stale;              /* reload before next use */
	dev_t dev;               /* identity of the file as last seen */
	ino_t ino;               /* ... */
	off_t size;              /* ... */
	struct timespec mtime;   /* ... */
	int state;               /* enum chunk_state */
	uint64_t length;         /* logical length (good prefix if damaged) */
	uint64_t end_pos;        /* file position where the good prefix ends */
	char why[80];            /* what is wrong when state != CHUNK_OK */
	struct index_entry *idx; /* owned; n_idx used of cap_idx */
	uint32_t n_idx;          /* entries in use */
	uint32_t cap_idx;        /* entries allocated */
	uint64_t stride;         /* logical bytes between entries */
};

/* An instance. */
struct local {
	const struct strata_host *host; /* borrowed until close */
	char *root;                     /* owned; the root directory */
	int root_fd;                    /* O_DIRECTORY on root */
	bool fsync;                     /* fsync/fdatasync at all */
	bool drop_cache;                /* DONTNEED synced writes' pages */
	unsigned open_max;              /* LRU capacity */
	pthread_mutex_t lock;           /* guards head/tail/n_open */
	struct chunk *head;             /* most recently used */
	struct chunk *tail;             /* least recently used */
	unsigned n_open;                /* chunks in the LRU */
	pthread_mutex_t dir_lock;       /* mkdir/open vs rmdir */
};

/* A read-ahead window over a file: bytes [pos, pos + len) are in buf. */
struct window {
	uint8_t *buf; /* LOCAL_WINDOW bytes, owned by the op */
	uint64_t pos; /* file position of buf[0] */
	size_t len;   /* valid bytes */
};

/* Outcome of a scan. */
struct scan {
	int state;        /* enum chunk_state */
	uint64_t length;  /* logical length of the good prefix */
	uint64_t end_pos; /* file position where it ends (= bad position) */
	char why[80];     /* what is wrong, when damaged */
};

/* ---- local.c: errors, log and counters ---- */

/* Format a message into errmsg (STRATA_ERRMSG_SIZE bytes). */
__attribute__((format(printf, 2, 3))) void local_errf(char *errmsg,
                                                      const char *fmt, ...);

/* Fill errmsg for a failed system call (errno e) and return the mapped
 * code: "<op> chunk <name>: <action> <root>/<name>: <strerror> (<ENAME>)"
 * plus a hint for ENOSPC and EPERM. */
int local_sys_fail(const struct local *l, char *errmsg, int e, const char *op,
                   const char *name, const char *action);

/* "<op> chunk <name>: out of memory" into errmsg; STRATA_ENOMEM. */
int local_nomem(char *errmsg, const char *op, const char *name);

/* Log through the host, when it offers logging. */
__attribute__((format(printf, 3, 4))) void
local_log(const struct local *l, int level, const char *fmt, ...);

/* Add delta (> 0) to the host counter name, when the host has counters. */
void local_count(const struct local *l, const char *name, uint64_t delta);

/* The message and code (STRATA_ETORN or STRATA_ECORRUPT) for damaged c. */
int local_damaged(const struct chunk *c, char *errmsg, const char *op);

/* ---- local_dir.c: names and directories ---- */

/* STRATA_EBADNAME (with errmsg) unless name is a valid chunk name. */
int local_check_name(const char *op, const char *name, char *errmsg);

/* fsync the directory holding name. errno on failure. */
int local_fsync_parent(const struct local *l, const char *name);

/* Remove the now empty parent directories of a deleted name. Best
 * effort; takes dir_lock. */
void local_remove_empty_parents(struct local *l, const char *name);

/* ---- local_chunk.c: window, index, scan and cache ---- */

/* pread exactly len bytes unless EOF comes first; returns the count read
 * or -1 with errno set. */
ssize_t local_pread_full(int fd, void *buf, size_t len, uint64_t pos);

/* Point *out at file bytes [pos, pos + need) (need <= LOCAL_WINDOW),
 * reading ahead into w when they are not in it. *avail is how many of them
 * exist (< need only at end of file). errno on failure. */
int local_win_get(int fd, struct window *w, uint64_t pos, size_t need,
                  const uint8_t **out, size_t *avail);

/* Continue the CRC32C in *crc over len file bytes at pos, read through w.
 * errno on failure; ENODATA when the file ends first. */
int local_crc_range(int fd, struct window *w, uint64_t pos, uint64_t len,
                    uint32_t *crc);

/* Remember that a record of c starts at (off, pos). A hint only: never
 * fails. */
void local_index_add(const struct local *l, struct chunk *c, uint64_t off,
                     uint64_t pos);

/* The last index entry of c at or before logical offset off ({0, 0} if
 * none). */
struct index_entry local_index_find(const struct chunk *c, uint64_t off);

/* Drop index entries of c for records starting at or after length. */
void local_index_trim(struct chunk *c, uint64_t length);

/* Scan the records of an open file of size bytes and classify any damage
 * into *s; adds index entries to c when not NULL. 0 or an errno. */
int local_scan(const struct local *l, int fd, uint64_t size, struct chunk *c,
               struct scan *s);

/* Reference the chunk called name in *out (borrowed until
 * local_chunk_put), loading it when needed; damaged chunks are returned
 * too. Error code with errmsg. */
int local_chunk_get(struct local *l, const char *op, const char *name,
                    struct chunk **out, char *errmsg);

/* Release a reference taken by local_chunk_get. */
void local_chunk_put(struct local *l, struct chunk *c);

/* Forget the chunk called name if cached and unreferenced. */
void local_chunk_forget(struct local *l, const char *name);

/* Remember c's file identity after our own change. */
void local_chunk_touch(struct chunk *c);

/* Close and free c (not in the LRU any more). */
void local_chunk_free(const struct local *l, struct chunk *c);

/* ---- ops (contracts in strata/plugin.h) ---- */

/* local_dir.c */
int local_create(void *state, const char *name, char *errmsg);
int local_list(void *state, const char *prefix, strata_tier2_list_cb cb,
               void *arg, char *errmsg);
int local_delete(void *state, const char *name, char *errmsg);

/* local_io.c */
int local_write(void *state, const char *name, uint64_t offset, const void *buf,
                size_t len, char *errmsg);
int local_read(void *state, const char *name, uint64_t offset, void *buf,
               size_t len, size_t *nread, char *errmsg);
int local_stat(void *state, const char *name,
               struct strata_tier2_chunk_info *info, char *errmsg);
int local_truncate(void *state, const char *name, uint64_t length,
                   char *errmsg);
int local_concat(void *state, const char *target, const char *const *sources,
                 size_t n, char *errmsg);

#endif /* PLUGINS_TIER2_LOCAL_LOCAL_H */
