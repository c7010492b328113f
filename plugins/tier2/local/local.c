/* Tier-2 "local" plugin: chunks as checksummed record files under a dir. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "plugins/tier2/local/local_format.h"
#include "strata/plugin.h"
#include "strata/plugin_config.h"

/*
 * Config:
 *   root=<dir>         required; created (with parents) when missing
 *   fsync=true|false   default true; false skips every fsync/fdatasync
 *                      (tests, throwaway data: no crash guarantee at all)
 *   open_chunks=<n>    chunks kept open with their index, 1..4096, def. 64
 *
 * Every chunk is a file root/<name> ('/' in names makes subdirectories)
 * holding records (local_format.h). A chunk's in-memory state (open fd,
 * logical length, a sparse offset -> file position index) is built by one
 * scan of its record headers on first use and kept in a bounded LRU.
 *
 * happy path: get (cache hit, or open + scan) -> op -> put.
 * failure modes:
 *  - torn tail (a crash during the last write, or garbage at the end):
 *    stat/read/write return STRATA_ETORN naming the byte position and the
 *    last good length; truncate(name, <= that length) repairs the file.
 *  - damage followed by records of a LATER write: STRATA_ECORRUPT; the
 *    same truncate drops everything from the damage on (data loss: the
 *    operator's call).
 *  - a failed write or concat is cut back with ftruncate; if even that
 *    fails the cached state is dropped and the next scan reports the
 *    leftovers as a torn tail.
 * Bytes of a record are returned only after its CRC32C checks out.
 * concat copies the sources' records, fdatasyncs the target, renames the
 * sources to hidden ".strata-d.<name>" files (undone on failure) and
 * deletes those. docs/tier2.md ("local") has the full crash analysis.
 *
 * Concurrency: the host never runs two ops on one chunk at once, so a
 * chunk's state is used without a lock while it is referenced; one mutex
 * guards the LRU and another serialises directory creation/removal.
 */

#define INDEX_MAX 4096u          /* index entries per chunk, at most */
#define INDEX_STRIDE (16u << 10) /* initial logical bytes per entry */
#define WINDOW (64u << 10)       /* read-ahead of scans and reads */
#define OPEN_CHUNKS_DEFAULT 64u
#define OPEN_CHUNKS_MAX 4096u
#define BATCH_RECORDS 64u   /* records per pwritev */
#define RESERVED ".strata-" /* prefix of internal files, never chunks */

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

/* A chunk's cached state; see the file comment for its lifetime. */
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
	unsigned open_max;              /* LRU capacity */
	pthread_mutex_t lock;           /* guards head/tail/n_open */
	struct chunk *head;             /* most recently used */
	struct chunk *tail;             /* least recently used */
	unsigned n_open;                /* chunks in the LRU */
	pthread_mutex_t dir_lock;       /* mkdir/open vs rmdir */
};

/* A read-ahead window over a file: bytes [pos, pos + len) are in buf. */
struct window {
	uint8_t *buf; /* WINDOW bytes, owned by the op */
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

/* ---- errors ---- */

__attribute__((format(printf, 2, 3))) static void errf(char *errmsg,
                                                       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

static int map_errno(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return STRATA_ENOSPC;
	case EACCES:
	case EPERM:
	case EROFS:
		return STRATA_EPERM;
	case ENOENT:
	case ENOTDIR:
		return STRATA_ENOENT;
	case EEXIST:
		return STRATA_EEXIST;
	case ENOMEM:
		return STRATA_ENOMEM;
	default:
		return STRATA_EIO;
	}
}

static const char *errno_name(int e)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
	const char *n = strerrorname_np(e);
	return n != NULL ? n : "errno";
#else
	(void)e;
	return "errno";
#endif
}

/* Fill errmsg for a failed system call and return the mapped code:
 * "<op> chunk <name>: <action> <root>/<name>: <strerror> (<ENAME>)". */
static int sys_fail(const struct local *l, char *errmsg, int e, const char *op,
                    const char *name, const char *action)
{
	char buf[128];
	const char *s = strerror_r(e, buf, sizeof(buf));
	int code = map_errno(e);
	const char *hint = "";
	if (code == STRATA_ENOSPC) {
		hint = "; free space on the tier-2 volume";
	} else if (code == STRATA_EPERM) {
		hint = "; fix the permissions of the tier-2 root";
	}
	errf(errmsg, "%s chunk %s: %s %s/%s: %s (%s)%s", op, name, action,
	     l->root, name, s, errno_name(e), hint);
	return code;
}

static int nomem(char *errmsg, const char *op, const char *name)
{
	errf(errmsg, "%s chunk %s: out of memory", op, name);
	return STRATA_ENOMEM;
}

static void logf_(const struct local *l, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void logf_(const struct local *l, int level, const char *fmt, ...)
{
	if (l->host->log == NULL) {
		return;
	}
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	l->host->log(l->host, level, "%s", line);
}

static void count(const struct local *l, const char *name, uint64_t delta)
{
	if (l->host->counter_add != NULL && delta > 0) {
		l->host->counter_add(l->host, name, delta);
	}
}

/* The message and code for a chunk found damaged. The last good length
 * comes early so that it survives the host's prefix on long names. */
static int damaged(const struct chunk *c, char *errmsg, const char *op)
{
	if (c->state == CHUNK_TORN) {
		errf(errmsg,
		     "%s chunk %s: torn write at byte position %llu, last good "
		     "length %llu (%s); repair with truncate to at most %llu",
		     op, c->name, (unsigned long long)c->end_pos,
		     (unsigned long long)c->length, c->why,
		     (unsigned long long)c->length);
		return STRATA_ETORN;
	}
	errf(errmsg,
	     "%s chunk %s: corrupt record at byte position %llu, last good "
	     "length %llu (%s), valid data after it; restore the chunk, or "
	     "truncate to %llu to drop all data from there",
	     op, c->name, (unsigned long long)c->end_pos,
	     (unsigned long long)c->length, c->why,
	     (unsigned long long)c->length);
	return STRATA_ECORRUPT;
}

/* ---- names and directories ---- */

/* STRATA_EBADNAME unless name is a relative path of [A-Za-z0-9._-]
 * components, none empty, ".", ".." or starting with RESERVED. The host
 * checks too; this keeps the plugin safe on its own. */
static int check_name(const char *op, const char *name, char *errmsg)
{
	size_t n = strlen(name);
	if (n == 0 || n > STRATA_TIER2_NAME_MAX) {
		errf(errmsg, "%s chunk '%.64s': a name has 1..%d bytes", op,
		     name, STRATA_TIER2_NAME_MAX);
		return STRATA_EBADNAME;
	}
	const char *comp = name;
	for (const char *p = name;; p++) {
		char ch = *p;
		if (ch == '/' || ch == '\0') {
			size_t len = (size_t)(p - comp);
			if (len == 0 || (len == 1 && comp[0] == '.') ||
			    (len == 2 && comp[0] == '.' && comp[1] == '.')) {
				errf(errmsg,
				     "%s chunk '%s': empty, '.' or '..' path "
				     "component (names are relative paths "
				     "inside the tier-2 root)",
				     op, name);
				return STRATA_EBADNAME;
			}
			if (len >= strlen(RESERVED) &&
			    memcmp(comp, RESERVED, strlen(RESERVED)) == 0) {
				errf(errmsg,
				     "%s chunk '%s': components starting "
				     "with '" RESERVED "' are reserved",
				     op, name);
				return STRATA_EBADNAME;
			}
			if (ch == '\0') {
				return 0;
			}
			comp = p + 1;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-')) {
			errf(errmsg,
			     "%s chunk '%s': character 0x%02x is not allowed "
			     "(use [A-Za-z0-9._/-])",
			     op, name, (unsigned char)ch);
			return STRATA_EBADNAME;
		}
	}
}

/* fsync the directory dir, relative to the root ("." = the root). errno
 * on failure. */
static int fsync_dir(const struct local *l, const char *dir)
{
	int fd = openat(l->root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		return errno;
	}
	int e = fsync(fd) != 0 ? errno : 0;
	close(fd);
	return e;
}

/* fsync the directory holding name. errno on failure. */
static int fsync_parent(const struct local *l, const char *name)
{
	const char *slash = strrchr(name, '/');
	if (slash == NULL) {
		return fsync_dir(l, ".");
	}
	char dir[STRATA_TIER2_NAME_MAX + 1];
	size_t n = (size_t)(slash - name);
	memcpy(dir, name, n);
	dir[n] = '\0';
	return fsync_dir(l, dir);
}

/* Create the missing parent directories of name, fsyncing each new one's
 * parent. dir_lock held. errno on failure. */
static int make_parents(const struct local *l, const char *name)
{
	char dir[STRATA_TIER2_NAME_MAX + 1];
	for (const char *p = strchr(name, '/'); p != NULL;
	     p = strchr(p + 1, '/')) {
		size_t n = (size_t)(p - name);
		memcpy(dir, name, n);
		dir[n] = '\0';
		if (mkdirat(l->root_fd, dir, 0755) != 0) {
			if (errno == EEXIST) {
				continue;
			}
			return errno;
		}
		if (l->fsync) {
			int e = fsync_parent(l, dir);
			if (e != 0) {
				return e;
			}
		}
	}
	return 0;
}

/* Remove the now empty parent directories of a deleted name, deepest
 * first, stopping at the first that is not empty. Best effort. */
static void remove_empty_parents(struct local *l, const char *name)
{
	char dir[STRATA_TIER2_NAME_MAX + 1];
	size_t n = strlen(name);
	memcpy(dir, name, n + 1);
	pthread_mutex_lock(&l->dir_lock);
	char *slash;
	bool removed = false;
	bool stopped = false;
	while ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		if (unlinkat(l->root_fd, dir, AT_REMOVEDIR) != 0) {
			stopped = true; /* dir still exists: it held the last */
			break;
		}
		removed = true;
	}
	if (removed && l->fsync) {
		(void)fsync_dir(l, stopped ? dir : ".");
	}
	pthread_mutex_unlock(&l->dir_lock);
}

/* ---- file I/O helpers ---- */

/* pread exactly len bytes unless EOF comes first; returns the count read
 * or -1 with errno set. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t pos)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = pread(fd, (uint8_t *)buf + done, len - done,
		                  (off_t)(pos + done));
		if (r < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -1;
		}
		if (r == 0) {
			break;
		}
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* Point *out at file bytes [pos, pos + need) (need <= WINDOW), reading
 * ahead when they are not in the window. *avail is how many of them exist
 * (< need only at end of file). errno on failure. */
static int win_get(int fd, struct window *w, uint64_t pos, size_t need,
                   const uint8_t **out, size_t *avail)
{
	*out = w->buf;
	*avail = 0;
	if (pos < w->pos || pos + need > w->pos + w->len) {
		ssize_t r = pread_full(fd, w->buf, WINDOW, pos);
		if (r < 0) {
			return errno;
		}
		w->pos = pos;
		w->len = (size_t)r;
	}
	size_t have = (size_t)(w->pos + w->len - pos);
	*avail = have < need ? have : need;
	*out = w->buf + (pos - w->pos);
	return 0;
}

/* Continue the CRC32C in *crc over len file bytes at pos, read through the
 * window. errno on failure; ENODATA when the file ends first. */
static int crc_range(int fd, struct window *w, uint64_t pos, uint64_t len,
                     uint32_t *crc)
{
	uint32_t c = *crc;
	while (len > 0) {
		size_t n = len < WINDOW ? (size_t)len : WINDOW;
		const uint8_t *p;
		size_t avail;
		int e = win_get(fd, w, pos, n, &p, &avail);
		if (e != 0) {
			return e;
		}
		if (avail < n) {
			return ENODATA;
		}
		c = local_crc32c(c, p, n);
		pos += n;
		len -= n;
	}
	*crc = c;
	return 0;
}

/* pwritev all of iov[0..n) at pos, retrying short writes. errno on
 * failure. iov is consumed. */
static int pwritev_full(int fd, struct iovec *iov, int n, uint64_t pos)
{
	while (n > 0) {
		ssize_t r = pwritev(fd, iov, n, (off_t)pos);
		if (r < 0) {
			if (errno == EINTR) {
				continue;
			}
			return errno;
		}
		if (r == 0) {
			return EIO;
		}
		pos += (uint64_t)r;
		size_t left = (size_t)r;
		while (n > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

/* ---- the sparse index ---- */

/* Remember that a record starts at (off, pos), keeping at most INDEX_MAX
 * entries by doubling the stride. Never fails: the index is only a hint
 * (lookups fall back to an earlier entry or the start). */
static void index_add(const struct local *l, struct chunk *c, uint64_t off,
                      uint64_t pos)
{
	if (c->n_idx > 0 && off < c->idx[c->n_idx - 1].off + c->stride) {
		return;
	}
	if (c->n_idx == c->cap_idx) {
		if (c->cap_idx == INDEX_MAX) {
			uint32_t k = 0;
			for (uint32_t i = 0; i < c->n_idx; i += 2) {
				c->idx[k++] = c->idx[i];
			}
			c->n_idx = k;
			c->stride *= 2;
		} else {
			uint32_t cap = c->cap_idx == 0 ? 16 : c->cap_idx * 2;
			struct index_entry *p =
			        l->host->realloc(c->idx, cap * sizeof(*p));
			if (p == NULL) {
				return;
			}
			c->idx = p;
			c->cap_idx = cap;
		}
	}
	c->idx[c->n_idx].off = off;
	c->idx[c->n_idx].pos = pos;
	c->n_idx++;
}

/* The last entry at or before logical offset off ({0, 0} if none). */
static struct index_entry index_find(const struct chunk *c, uint64_t off)
{
	struct index_entry e = {0, 0};
	uint32_t lo = 0;
	uint32_t hi = c->n_idx;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (c->idx[mid].off <= off) {
			e = c->idx[mid];
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return e;
}

/* Drop entries for records starting at or after logical offset length. */
static void index_trim(struct chunk *c, uint64_t length)
{
	while (c->n_idx > 0 && c->idx[c->n_idx - 1].off >= length) {
		c->n_idx--;
	}
}

/* ---- scanning ---- */

/* True when a valid header of a write that started after logical offset
 * off exists anywhere in file bytes (from, size). errno in *err. */
static bool later_write_exists(int fd, struct window *w, uint64_t from,
                               uint64_t size, uint64_t off, int *err)
{
	for (uint64_t q = from; q + LOCAL_RECORD_HDR <= size; q++) {
		const uint8_t *h;
		size_t avail;
		*err = win_get(fd, w, q, LOCAL_RECORD_HDR, &h, &avail);
		if (*err != 0 || avail < LOCAL_RECORD_HDR) {
			return false;
		}
		struct local_record r;
		if (h[0] == (LOCAL_RECORD_MAGIC & 0xff) &&
		    local_record_decode(h, &r) && r.write_start > off &&
		    r.offset >= r.write_start) {
			return true;
		}
	}
	return false;
}

/*
 * Scan the record headers of a file of size bytes, check the payload
 * CRCs of the last write (the only one a crash can tear when fsync is on)
 * and classify the first damage as torn or corrupt (see the file
 * comment). Fills *s; adds index entries to c when not NULL. Returns 0 or
 * an errno (I/O error, ENOMEM).
 */
static int scan_file(const struct local *l, int fd, uint64_t size,
                     struct chunk *c, struct scan *s)
{
	struct window w = {0};
	w.buf = l->host->malloc(WINDOW);
	if (w.buf == NULL) {
		return ENOMEM;
	}
	uint64_t pos = 0;
	uint64_t off = 0;
	uint64_t ws_last = UINT64_MAX;
	uint64_t wpos = 0; /* first record of the last write seen */
	uint64_t woff = 0;
	bool bad = false;
	int e = 0;
	s->why[0] = '\0';
	while (pos < size) {
		const uint8_t *h;
		size_t avail;
		struct local_record r;
		e = win_get(fd, &w, pos, LOCAL_RECORD_HDR, &h, &avail);
		if (e != 0) {
			goto out;
		}
		bad = true;
		if (avail < LOCAL_RECORD_HDR) {
			snprintf(s->why, sizeof(s->why),
			         "record header cut short: %zu of %u bytes",
			         avail, LOCAL_RECORD_HDR);
			break;
		}
		if (!local_record_decode(h, &r)) {
			snprintf(s->why, sizeof(s->why),
			         "invalid record header");
			break;
		}
		if (r.offset != off) {
			snprintf(s->why, sizeof(s->why),
			         "record for offset %llu where %llu was due",
			         (unsigned long long)r.offset,
			         (unsigned long long)off);
			break;
		}
		if (r.write_start != ws_last) {
			if (r.write_start != off) {
				snprintf(s->why, sizeof(s->why),
				         "record of a write at %llu out of "
				         "place",
				         (unsigned long long)r.write_start);
				break;
			}
			wpos = pos;
			woff = off;
			ws_last = r.write_start;
		}
		if (size - pos - LOCAL_RECORD_HDR < r.length) {
			snprintf(s->why, sizeof(s->why),
			         "record payload cut short: %llu of %u bytes",
			         (unsigned long long)(size - pos -
			                              LOCAL_RECORD_HDR),
			         r.length);
			break;
		}
		bad = false;
		if (c != NULL) {
			index_add(l, c, off, pos);
		}
		pos += LOCAL_RECORD_HDR + r.length;
		off += r.length;
	}
	/* Payload CRCs of the last write, up to the damage or the end. */
	uint64_t p = wpos;
	uint64_t o = woff;
	while (p < pos) {
		const uint8_t *h;
		size_t avail;
		struct local_record r;
		uint32_t crc = 0;
		e = win_get(fd, &w, p, LOCAL_RECORD_HDR, &h, &avail);
		if (e != 0) {
			goto out;
		}
		(void)local_record_decode(h, &r); /* valid: checked above */
		e = crc_range(fd, &w, p + LOCAL_RECORD_HDR, r.length, &crc);
		if (e == ENODATA) {
			e = EIO; /* the file shrank under us */
		}
		if (e != 0) {
			goto out;
		}
		if (crc != r.payload_crc) {
			bad = true;
			pos = p;
			off = o;
			snprintf(s->why, sizeof(s->why),
			         "payload checksum mismatch");
			break;
		}
		p += LOCAL_RECORD_HDR + r.length;
		o += r.length;
	}
	s->length = off;
	s->end_pos = pos;
	s->state = CHUNK_OK;
	if (bad) {
		s->state = later_write_exists(fd, &w, pos + 1, size, off, &e)
		                   ? CHUNK_CORRUPT
		                   : CHUNK_TORN;
	}
	if (c != NULL) {
		index_trim(c, off);
	}
out:
	l->host->free(w.buf);
	return e;
}

/* ---- the chunk cache ---- */

static void chunk_unload(const struct local *l, struct chunk *c)
{
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	l->host->free(c->idx);
	c->idx = NULL;
	c->n_idx = 0;
	c->cap_idx = 0;
	c->stride = INDEX_STRIDE;
}

static void chunk_free(const struct local *l, struct chunk *c)
{
	chunk_unload(l, c);
	l->host->free(c->name);
	l->host->free(c);
}

/* Remember the file's identity after our own change; a failed fstat makes
 * the next op reload. */
static void chunk_touch(struct chunk *c)
{
	struct stat st;
	if (fstat(c->fd, &st) != 0) {
		c->stale = true;
		return;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->size = st.st_size;
	c->mtime = st.st_mtim;
}

/* Open and scan c->name into c (unloaded). Error code with errmsg. */
static int chunk_load(const struct local *l, struct chunk *c, const char *op,
                      char *errmsg)
{
	c->fd = openat(l->root_fd, c->name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (c->fd < 0) {
		int e = errno;
		if (e == EISDIR || e == ELOOP) {
			errf(errmsg, "%s chunk %s: %s/%s is not a chunk file",
			     op, c->name, l->root, c->name);
			return STRATA_ENOENT;
		}
		return sys_fail(l, errmsg, e, op, c->name, "open");
	}
	struct stat st;
	if (fstat(c->fd, &st) != 0) {
		int e = errno;
		chunk_unload(l, c);
		return sys_fail(l, errmsg, e, op, c->name, "stat");
	}
	if (!S_ISREG(st.st_mode)) {
		chunk_unload(l, c);
		errf(errmsg, "%s chunk %s: %s/%s is not a regular file", op,
		     c->name, l->root, c->name);
		return STRATA_ENOENT;
	}
	struct scan s;
	int e = scan_file(l, c->fd, (uint64_t)st.st_size, c, &s);
	if (e != 0) {
		chunk_unload(l, c);
		if (e == ENOMEM) {
			return nomem(errmsg, op, c->name);
		}
		return sys_fail(l, errmsg, e, op, c->name, "read");
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->size = st.st_size;
	c->mtime = st.st_mtim;
	c->state = s.state;
	c->length = s.length;
	c->end_pos = s.end_pos;
	c->stale = false;
	memcpy(c->why, s.why, sizeof(c->why));
	if (s.state != CHUNK_OK) {
		logf_(l, STRATA_LOG_WARN,
		      "chunk %s: %s at byte position %llu (%s); last good "
		      "length %llu",
		      c->name,
		      s.state == CHUNK_TORN ? "torn tail" : "corrupt record",
		      (unsigned long long)s.end_pos, s.why,
		      (unsigned long long)s.length);
		count(l,
		      s.state == CHUNK_TORN ? "torn_tails" : "corrupt_chunks",
		      1);
	}
	return 0;
}

/* LRU: unlink c. lock held. */
static void lru_remove(struct local *l, struct chunk *c)
{
	if (c->prev != NULL) {
		c->prev->next = c->next;
	} else {
		l->head = c->next;
	}
	if (c->next != NULL) {
		c->next->prev = c->prev;
	} else {
		l->tail = c->prev;
	}
	c->prev = c->next = NULL;
	l->n_open--;
}

/* LRU: insert c as most recent. lock held. */
static void lru_push(struct local *l, struct chunk *c)
{
	c->prev = NULL;
	c->next = l->head;
	if (l->head != NULL) {
		l->head->prev = c;
	} else {
		l->tail = c;
	}
	l->head = c;
	l->n_open++;
}

/* Unlink unreferenced chunks beyond capacity onto *victims. lock held. */
static void lru_evict(struct local *l, struct chunk **victims)
{
	struct chunk *c = l->tail;
	while (l->n_open > l->open_max && c != NULL) {
		struct chunk *prev = c->prev;
		if (c->refs == 0) {
			lru_remove(l, c);
			c->next = *victims;
			*victims = c;
		}
		c = prev;
	}
}

static void free_list(const struct local *l, struct chunk *victims)
{
	while (victims != NULL) {
		struct chunk *next = victims->next;
		chunk_free(l, victims);
		victims = next;
	}
}

static struct chunk *lru_find(const struct local *l, const char *name)
{
	for (struct chunk *c = l->head; c != NULL; c = c->next) {
		if (strcmp(c->name, name) == 0) {
			return c;
		}
	}
	return NULL;
}

/* Forget a referenced chunk (deleted, or its state is unknown). */
static void chunk_discard(struct local *l, struct chunk *c)
{
	pthread_mutex_lock(&l->lock);
	lru_remove(l, c);
	pthread_mutex_unlock(&l->lock);
	chunk_free(l, c);
}

/* Forget the chunk called name if cached and unreferenced. */
static void chunk_forget(struct local *l, const char *name)
{
	pthread_mutex_lock(&l->lock);
	struct chunk *c = lru_find(l, name);
	if (c != NULL && c->refs == 0) {
		lru_remove(l, c);
	} else {
		c = NULL;
	}
	pthread_mutex_unlock(&l->lock);
	if (c != NULL) {
		chunk_free(l, c);
	}
}

/*
 * Reference the chunk called name (borrowed), loading it when it is not
 * cached or its file changed behind our back. Damaged chunks are returned
 * too (check c->state). Release with chunk_put(). Errors: STRATA_ENOENT,
 * STRATA_ENOMEM, mapped I/O errors, with errmsg.
 */
static int chunk_get(struct local *l, const char *op, const char *name,
                     struct chunk **out, char *errmsg)
{
	pthread_mutex_lock(&l->lock);
	struct chunk *c = lru_find(l, name);
	if (c != NULL) {
		c->refs++;
		if (c != l->head) {
			lru_remove(l, c);
			lru_push(l, c);
		}
	}
	pthread_mutex_unlock(&l->lock);
	int rc;
	if (c != NULL) {
		struct stat st;
		if (fstatat(l->root_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			int e = errno;
			chunk_discard(l, c);
			return sys_fail(l, errmsg, e, op, name, "stat");
		}
		if (c->stale || st.st_dev != c->dev || st.st_ino != c->ino ||
		    st.st_size != c->size ||
		    st.st_mtim.tv_sec != c->mtime.tv_sec ||
		    st.st_mtim.tv_nsec != c->mtime.tv_nsec) {
			chunk_unload(l, c);
			rc = chunk_load(l, c, op, errmsg);
			if (rc != 0) {
				chunk_discard(l, c);
				return rc;
			}
		}
		*out = c;
		return 0;
	}
	c = l->host->malloc(sizeof(*c));
	if (c == NULL) {
		return nomem(errmsg, op, name);
	}
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->stride = INDEX_STRIDE;
	size_t n = strlen(name);
	c->name = l->host->malloc(n + 1);
	if (c->name == NULL) {
		l->host->free(c);
		return nomem(errmsg, op, name);
	}
	memcpy(c->name, name, n + 1);
	rc = chunk_load(l, c, op, errmsg);
	if (rc != 0) {
		chunk_free(l, c);
		return rc;
	}
	c->refs = 1;
	struct chunk *victims = NULL;
	pthread_mutex_lock(&l->lock);
	lru_push(l, c);
	lru_evict(l, &victims);
	pthread_mutex_unlock(&l->lock);
	free_list(l, victims);
	*out = c;
	return 0;
}

static void chunk_put(struct local *l, struct chunk *c)
{
	struct chunk *victims = NULL;
	pthread_mutex_lock(&l->lock);
	c->refs--;
	lru_evict(l, &victims);
	pthread_mutex_unlock(&l->lock);
	free_list(l, victims);
}

/* ---- ops ---- */

static int local_open(const struct strata_host *host, const char *config,
                      void **state, char *errmsg)
{
	char root[PATH_MAX];
	bool do_fsync = true;
	uint64_t open_max = OPEN_CHUNKS_DEFAULT;
	root[0] = '\0';
	if (host == NULL || host->malloc == NULL || host->realloc == NULL ||
	    host->free == NULL) {
		errf(errmsg, "open: the host passed no allocator");
		return STRATA_EINVAL;
	}
	const char *cur = config;
	struct strata_config_item it;
	while (strata_config_next(&cur, &it)) {
		if (strata_config_key_is(&it, "root")) {
			if (strata_config_value_copy(&it, root, sizeof(root)) !=
			            0 ||
			    root[0] == '\0') {
				errf(errmsg,
				     "config %.*s: root must be a directory "
				     "path of 1..%d bytes",
				     it.line_len, it.line, PATH_MAX - 1);
				return STRATA_ECONFIG;
			}
		} else if (strata_config_key_is(&it, "fsync")) {
			char v[8];
			if (strata_config_value_copy(&it, v, sizeof(v)) == 0 &&
			    strcmp(v, "true") == 0) {
				do_fsync = true;
			} else if (strata_config_value_copy(&it, v,
			                                    sizeof(v)) == 0 &&
			           strcmp(v, "false") == 0) {
				do_fsync = false;
			} else {
				errf(errmsg,
				     "config %.*s: fsync must be true or false",
				     it.line_len, it.line);
				return STRATA_ECONFIG;
			}
		} else if (strata_config_key_is(&it, "open_chunks")) {
			if (strata_config_value_u64(&it, &open_max) != 0 ||
			    open_max < 1 || open_max > OPEN_CHUNKS_MAX) {
				errf(errmsg,
				     "config %.*s: open_chunks must be a "
				     "count in 1..%u",
				     it.line_len, it.line, OPEN_CHUNKS_MAX);
				return STRATA_ECONFIG;
			}
		} else {
			errf(errmsg,
			     "config %.*s: unknown key '%.*s' (allowed: root, "
			     "fsync, open_chunks)",
			     it.line_len, it.line, (int)it.key_len, it.key);
			return STRATA_ECONFIG;
		}
	}
	if (root[0] == '\0') {
		errf(errmsg, "config: missing required key root (set "
		             "root=<directory for chunk files>)");
		return STRATA_ECONFIG;
	}
	/* mkdir -p root */
	for (char *p = root + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char save = *p;
			*p = '\0';
			int r = mkdir(root, 0755);
			int e = errno;
			*p = save;
			if (r != 0 && e != EEXIST) {
				char buf[128];
				errf(errmsg,
				     "open: cannot create tier-2 root %s: %s "
				     "(%s); create it or fix the permissions",
				     root, strerror_r(e, buf, sizeof(buf)),
				     errno_name(e));
				return map_errno(e);
			}
			if (save == '\0') {
				break;
			}
		}
	}
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || access(root, R_OK | W_OK | X_OK) != 0) {
		int e = errno;
		char buf[128];
		if (fd >= 0) {
			close(fd);
		}
		errf(errmsg,
		     "open: tier-2 root %s is not a usable directory: %s (%s); "
		     "fix the path or its permissions",
		     root, strerror_r(e, buf, sizeof(buf)), errno_name(e));
		return e == ENOTDIR ? STRATA_ECONFIG : map_errno(e);
	}
	struct local *l = host->malloc(sizeof(*l));
	if (l == NULL) {
		goto err_close_fd;
	}
	memset(l, 0, sizeof(*l));
	size_t n = strlen(root);
	l->root = host->malloc(n + 1);
	if (l->root == NULL) {
		goto err_free_l;
	}
	memcpy(l->root, root, n + 1);
	l->host = host;
	l->root_fd = fd;
	l->fsync = do_fsync;
	l->open_max = (unsigned)open_max;
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->dir_lock, NULL);
	logf_(l, STRATA_LOG_INFO, "root %s, fsync %s, open_chunks %u", l->root,
	      l->fsync ? "true" : "false", l->open_max);
	*state = l;
	return 0;

err_free_l:
	host->free(l);
err_close_fd:
	close(fd);
	errf(errmsg, "open: out of memory");
	return STRATA_ENOMEM;
}

static void local_close(void *state)
{
	struct local *l = state;
	struct chunk *c = l->head;
	while (c != NULL) {
		struct chunk *next = c->next;
		chunk_free(l, c);
		c = next;
	}
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->dir_lock);
	close(l->root_fd);
	l->host->free(l->root);
	l->host->free(l);
}

static int local_create(void *state, const char *name, char *errmsg)
{
	struct local *l = state;
	int rc = check_name("create", name, errmsg);
	if (rc != 0) {
		return rc;
	}
	pthread_mutex_lock(&l->dir_lock);
	int e = make_parents(l, name);
	if (e != 0) {
		pthread_mutex_unlock(&l->dir_lock);
		if (e == EEXIST || e == ENOTDIR) {
			goto err_parent_is_chunk;
		}
		return sys_fail(l, errmsg, e, "create", name,
		                "create directories for");
	}
	int fd = openat(l->root_fd, name,
	                O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	                0644);
	e = errno;
	pthread_mutex_unlock(&l->dir_lock);
	if (fd < 0) {
		if (e == EEXIST) {
			errf(errmsg, "create chunk %s: it already exists",
			     name);
			return STRATA_EEXIST;
		}
		if (e == ENOTDIR) {
			goto err_parent_is_chunk;
		}
		return sys_fail(l, errmsg, e, "create", name, "create");
	}
	if (l->fsync) {
		e = fsync(fd) != 0 ? errno : fsync_parent(l, name);
		if (e != 0) {
			close(fd);
			(void)unlinkat(l->root_fd, name, 0);
			return sys_fail(l, errmsg, e, "create", name, "fsync");
		}
	}
	close(fd);
	/* A cached entry of an older file by that name is stale now. */
	chunk_forget(l, name);
	return 0;

err_parent_is_chunk:
	errf(errmsg,
	     "create chunk %s: a leading part of the name is an existing "
	     "chunk, so it cannot be a directory",
	     name);
	return STRATA_EEXIST;
}

/* Append len bytes of buf as records of the write that began at logical
 * offset write_start, at the end of c (c->end_pos, c->length), then
 * fdatasync when sync and fsync are on. On failure cut the file back (or
 * mark c stale when even that fails). errno on failure. */
static int append_records(struct local *l, struct chunk *c, const void *buf,
                          size_t len, uint64_t write_start, bool sync)
{
	uint8_t hdrs[BATCH_RECORDS][LOCAL_RECORD_HDR];
	struct iovec iov[2 * BATCH_RECORDS];
	const uint8_t *p = buf;
	uint64_t off = c->length;
	uint64_t pos = c->end_pos;
	size_t left = len;
	int e = 0;
	while (left > 0) {
		int n = 0;
		uint64_t bpos = pos;
		while (left > 0 && n < (int)BATCH_RECORDS) {
			size_t m = left < LOCAL_RECORD_MAX ? left
			                                   : LOCAL_RECORD_MAX;
			struct local_record r = {
			        .length = (uint32_t)m,
			        .offset = off,
			        .write_start = write_start,
			        .flags = 0,
			        .payload_crc = local_crc32c(0, p, m),
			};
			local_record_encode(&r, hdrs[n]);
			iov[2 * n].iov_base = hdrs[n];
			iov[2 * n].iov_len = LOCAL_RECORD_HDR;
			iov[2 * n + 1].iov_base = (void *)p;
			iov[2 * n + 1].iov_len = m;
			p += m;
			off += m;
			left -= m;
			pos += LOCAL_RECORD_HDR + m;
			n++;
		}
		e = pwritev_full(c->fd, iov, 2 * n, bpos);
		if (e != 0) {
			goto err_cut;
		}
	}
	if (sync && l->fsync && fdatasync(c->fd) != 0) {
		e = errno;
		goto err_cut;
	}
	/* Index the new records (hint only, cannot fail). */
	off = c->length;
	pos = c->end_pos;
	for (size_t done = 0; done < len;) {
		size_t m = len - done < LOCAL_RECORD_MAX ? len - done
		                                         : LOCAL_RECORD_MAX;
		index_add(l, c, off, pos);
		off += m;
		pos += LOCAL_RECORD_HDR + m;
		done += m;
	}
	c->length = off;
	c->end_pos = pos;
	chunk_touch(c);
	return 0;

err_cut:
	if (ftruncate(c->fd, (off_t)c->end_pos) != 0 ||
	    (l->fsync && fsync(c->fd) != 0)) {
		logf_(l, STRATA_LOG_ERROR,
		      "chunk %s: could not cut a failed write back to byte "
		      "%llu: %s; the next access reports a torn tail",
		      c->name, (unsigned long long)c->end_pos, strerror(errno));
		c->stale = true;
	} else {
		chunk_touch(c);
	}
	return e;
}

static int local_write(void *state, const char *name, uint64_t offset,
                       const void *buf, size_t len, char *errmsg)
{
	struct local *l = state;
	struct chunk *c;
	int rc = check_name("write", name, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = chunk_get(l, "write", name, &c, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (c->state != CHUNK_OK) {
		rc = damaged(c, errmsg, "write");
		goto out;
	}
	if (offset != c->length) {
		errf(errmsg,
		     "write chunk %s at offset %llu: the chunk is %llu bytes "
		     "long; appends go at its length",
		     name, (unsigned long long)offset,
		     (unsigned long long)c->length);
		rc = STRATA_EBADOFFSET;
		goto out;
	}
	if (len == 0) {
		goto out;
	}
	if (len > UINT64_MAX - offset) {
		errf(errmsg, "write chunk %s: %zu bytes at %llu overflow", name,
		     len, (unsigned long long)offset);
		rc = STRATA_ERANGE;
		goto out;
	}
	int e = append_records(l, c, buf, len, offset, true);
	if (e != 0) {
		rc = sys_fail(l, errmsg, e, "write", name, "append to");
		goto out;
	}
	count(l, "bytes_written", len);
out:
	chunk_put(l, c);
	return rc;
}

static int local_read(void *state, const char *name, uint64_t offset, void *buf,
                      size_t len, size_t *nread, char *errmsg)
{
	struct local *l = state;
	struct chunk *c;
	struct window w = {0};
	*nread = 0;
	int rc = check_name("read", name, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = chunk_get(l, "read", name, &c, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (c->state != CHUNK_OK) {
		rc = damaged(c, errmsg, "read");
		goto out;
	}
	if (offset > c->length) {
		errf(errmsg,
		     "read chunk %s at offset %llu: beyond its length %llu",
		     name, (unsigned long long)offset,
		     (unsigned long long)c->length);
		rc = STRATA_ERANGE;
		goto out;
	}
	uint64_t end = len < c->length - offset ? offset + len : c->length;
	if (end == offset) {
		goto out;
	}
	w.buf = l->host->malloc(WINDOW);
	if (w.buf == NULL) {
		rc = nomem(errmsg, "read", name);
		goto out;
	}
	struct index_entry ie = index_find(c, offset);
	uint64_t pos = ie.pos;
	uint64_t off = ie.off;
	uint8_t *dst = buf;
	while (off < end) {
		const uint8_t *h;
		size_t avail;
		struct local_record r;
		int e = win_get(c->fd, &w, pos, LOCAL_RECORD_HDR, &h, &avail);
		if (e != 0) {
			rc = sys_fail(l, errmsg, e, "read", name, "read");
			goto err_wipe;
		}
		if (avail < LOCAL_RECORD_HDR || !local_record_decode(h, &r) ||
		    r.offset != off ||
		    pos + LOCAL_RECORD_HDR + r.length > c->end_pos) {
			errf(errmsg,
			     "read chunk %s: corrupt record header at byte "
			     "position %llu (offset %llu); restore the chunk",
			     name, (unsigned long long)pos,
			     (unsigned long long)off);
			rc = STRATA_ECORRUPT;
			goto err_wipe;
		}
		uint64_t rend = off + r.length;
		uint64_t ppos = pos + LOCAL_RECORD_HDR;
		if (rend <= offset) {
			pos = ppos + r.length;
			off = rend;
			continue;
		}
		uint32_t crc = 0;
		if (off >= offset && rend <= end) {
			/* Whole record wanted: copy it from the window when
			 * it is there, else read it in place. */
			uint8_t *d = dst + (off - offset);
			ssize_t got = (ssize_t)r.length;
			if (ppos >= w.pos && ppos + r.length <= w.pos + w.len) {
				memcpy(d, w.buf + (ppos - w.pos), r.length);
			} else {
				got = pread_full(c->fd, d, r.length, ppos);
			}
			if (got < 0) {
				rc = sys_fail(l, errmsg, errno, "read", name,
				              "read");
				goto err_wipe;
			}
			if ((size_t)got < r.length) {
				e = ENODATA;
			} else {
				crc = local_crc32c(0, d, r.length);
			}
		} else {
			/* Part of it wanted: stream it all for the CRC. */
			uint64_t from = offset > off ? offset : off;
			uint64_t to = end < rend ? end : rend;
			uint64_t q = ppos;
			uint64_t qo = off;
			while (e == 0 && qo < rend) {
				size_t m = rend - qo < WINDOW
				                   ? (size_t)(rend - qo)
				                   : WINDOW;
				const uint8_t *s;
				e = win_get(c->fd, &w, q, m, &s, &avail);
				if (e == 0 && avail < m) {
					e = ENODATA;
				}
				if (e != 0) {
					break;
				}
				crc = local_crc32c(crc, s, m);
				uint64_t a = qo > from ? qo : from;
				uint64_t b = qo + m < to ? qo + m : to;
				if (a < b) {
					memcpy(dst + (a - offset), s + (a - qo),
					       (size_t)(b - a));
				}
				q += m;
				qo += m;
			}
		}
		if (e != 0 && e != ENODATA) {
			rc = sys_fail(l, errmsg, e, "read", name, "read");
			goto err_wipe;
		}
		if (e == ENODATA || crc != r.payload_crc) {
			errf(errmsg,
			     "read chunk %s: payload checksum mismatch in the "
			     "record at byte position %llu (offset %llu); "
			     "restore the chunk",
			     name, (unsigned long long)pos,
			     (unsigned long long)off);
			count(l, "corrupt_reads", 1);
			rc = STRATA_ECORRUPT;
			goto err_wipe;
		}
		pos = ppos + r.length;
		off = rend;
	}
	*nread = (size_t)(end - offset);
	count(l, "bytes_read", *nread);
	goto out;

err_wipe:
	/* Nothing unverified may look like data. */
	memset(buf, 0, (size_t)(end - offset));
out:
	l->host->free(w.buf);
	chunk_put(l, c);
	return rc;
}

static int local_stat(void *state, const char *name,
                      struct strata_tier2_chunk_info *info, char *errmsg)
{
	struct local *l = state;
	struct chunk *c;
	int rc = check_name("stat", name, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = chunk_get(l, "stat", name, &c, errmsg);
	if (rc != 0) {
		return rc;
	}
	/* A damaged chunk still reports its last good length in info (for
	 * recovery: truncate to it), along with ETORN/ECORRUPT. */
	info->length = c->length;
	info->mtime_ns =
	        (int64_t)c->mtime.tv_sec * 1000000000 + c->mtime.tv_nsec;
	if (c->state != CHUNK_OK) {
		rc = damaged(c, errmsg, "stat");
	}
	chunk_put(l, c);
	return rc;
}

/* State of one list() walk. */
struct walk {
	struct local *l;
	const char *prefix;
	size_t plen;
	strata_tier2_list_cb cb;
	void *arg;
	char *errmsg;
	char path[STRATA_TIER2_NAME_MAX + NAME_MAX + 2]; /* current name */
};

/* Length and mtime of the chunk file at w->path without the cache (the
 * callback may use the chunk meanwhile). 0, -1 = vanished, or an error code. */
static int list_info(struct walk *w, struct strata_tier2_chunk_info *info)
{
	struct local *l = w->l;
	int fd = openat(l->root_fd, w->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT) {
			return -1;
		}
		return sys_fail(l, w->errmsg, errno, "list", w->path, "open");
	}
	struct stat st;
	struct scan s;
	int e = fstat(fd, &st) != 0
	                ? errno
	                : scan_file(l, fd, (uint64_t)st.st_size, NULL, &s);
	close(fd);
	if (e == ENOMEM) {
		return nomem(w->errmsg, "list", w->path);
	}
	if (e != 0) {
		return sys_fail(l, w->errmsg, e, "list", w->path, "scan");
	}
	if (s.state != CHUNK_OK) {
		logf_(l, STRATA_LOG_WARN,
		      "list: chunk %s is %s at byte position %llu (%s); "
		      "listing its good length %llu",
		      w->path, s.state == CHUNK_TORN ? "torn" : "corrupt",
		      (unsigned long long)s.end_pos, s.why,
		      (unsigned long long)s.length);
	}
	info->length = s.length;
	info->mtime_ns =
	        (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return 0;
}

/* List the directory w->path (len bytes; 0 = root). */
static int walk_dir(struct walk *w, size_t len)
{
	struct local *l = w->l;
	int dfd = openat(l->root_fd, len == 0 ? "." : w->path,
	                 O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0) {
		if (errno == ENOENT) {
			return 0; /* removed meanwhile */
		}
		return sys_fail(l, w->errmsg, errno, "list",
		                len == 0 ? "(root)" : w->path,
		                "open directory");
	}
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		int e = errno;
		close(dfd);
		return sys_fail(l, w->errmsg, e, "list", w->path, "read");
	}
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno != 0) {
				rc = sys_fail(l, w->errmsg, errno, "list",
				              len == 0 ? "(root)" : w->path,
				              "read directory");
			}
			break;
		}
		const char *n = de->d_name;
		size_t nl = strlen(n);
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
		    strncmp(n, RESERVED, strlen(RESERVED)) == 0 ||
		    len + 1 + nl > STRATA_TIER2_NAME_MAX) {
			continue;
		}
		size_t k = len;
		if (k > 0) {
			w->path[k++] = '/';
		}
		memcpy(w->path + k, n, nl + 1);
		k += nl;
		unsigned char type = de->d_type;
		if (type == DT_UNKNOWN) {
			struct stat st;
			if (fstatat(l->root_fd, w->path, &st,
			            AT_SYMLINK_NOFOLLOW) != 0) {
				continue;
			}
			type = S_ISDIR(st.st_mode)   ? DT_DIR
			       : S_ISREG(st.st_mode) ? DT_REG
			                             : DT_UNKNOWN;
		}
		if (type == DT_DIR) {
			/* Descend only where names can match the prefix. */
			size_t m = k < w->plen ? k : w->plen;
			if (strncmp(w->path, w->prefix, m) == 0 &&
			    (k >= w->plen || w->prefix[k] == '/')) {
				rc = walk_dir(w, k);
			}
		} else if (type == DT_REG && k >= w->plen &&
		           strncmp(w->path, w->prefix, w->plen) == 0) {
			struct strata_tier2_chunk_info info;
			rc = list_info(w, &info);
			if (rc == -1) {
				rc = 0;
			} else if (rc == 0) {
				rc = w->cb(w->arg, w->path, &info);
			}
		}
		w->path[len] = '\0';
		if (rc != 0) {
			break;
		}
	}
	closedir(d);
	return rc;
}

static int local_list(void *state, const char *prefix, strata_tier2_list_cb cb,
                      void *arg, char *errmsg)
{
	struct local *l = state;
	struct walk *w = l->host->malloc(sizeof(*w));
	if (w == NULL) {
		errf(errmsg, "list prefix '%s': out of memory", prefix);
		return STRATA_ENOMEM;
	}
	w->l = l;
	w->prefix = prefix;
	w->plen = strlen(prefix);
	w->cb = cb;
	w->arg = arg;
	w->errmsg = errmsg;
	w->path[0] = '\0';
	int rc = walk_dir(w, 0);
	l->host->free(w);
	return rc;
}

/* Cut c at logical length (<= c->length, c->state OK): at a record
 * boundary with one ftruncate, inside a record by cutting what follows
 * it, then rewriting its header for the shorter payload (see docs for the
 * crash analysis). Error code with errmsg. */
static int cut(struct local *l, struct chunk *c, uint64_t length, char *errmsg)
{
	const char *op = "truncate";
	struct window w = {0};
	int rc = 0;
	int e = 0;
	w.buf = l->host->malloc(WINDOW);
	if (w.buf == NULL) {
		return nomem(errmsg, op, c->name);
	}
	struct index_entry ie = index_find(c, length);
	uint64_t pos = ie.pos;
	uint64_t off = ie.off;
	struct local_record r;
	while (off < length) {
		const uint8_t *h;
		size_t avail;
		e = win_get(c->fd, &w, pos, LOCAL_RECORD_HDR, &h, &avail);
		if (e != 0) {
			goto err_sys;
		}
		if (avail < LOCAL_RECORD_HDR || !local_record_decode(h, &r) ||
		    r.offset != off) {
			errf(errmsg,
			     "truncate chunk %s: corrupt record header at "
			     "byte position %llu; restore the chunk",
			     c->name, (unsigned long long)pos);
			rc = STRATA_ECORRUPT;
			goto out;
		}
		if (off + r.length > length) {
			break;
		}
		pos += LOCAL_RECORD_HDR + r.length;
		off += r.length;
	}
	if (off == length) {
		if (ftruncate(c->fd, (off_t)pos) != 0 ||
		    (l->fsync && fsync(c->fd) != 0)) {
			e = errno;
			goto err_sys;
		}
	} else {
		/* Inside the record at pos: check all of it, CRC the kept
		 * part, drop what follows, then shorten it. */
		uint32_t keep = (uint32_t)(length - off);
		uint32_t crc_keep = 0;
		e = crc_range(c->fd, &w, pos + LOCAL_RECORD_HDR, keep,
		              &crc_keep);
		uint32_t crc_all = crc_keep;
		if (e == 0) {
			e = crc_range(c->fd, &w, pos + LOCAL_RECORD_HDR + keep,
			              r.length - keep, &crc_all);
		}
		if (e == ENODATA || (e == 0 && crc_all != r.payload_crc)) {
			errf(errmsg,
			     "truncate chunk %s: payload checksum mismatch in "
			     "the record at byte position %llu; restore the "
			     "chunk",
			     c->name, (unsigned long long)pos);
			rc = STRATA_ECORRUPT;
			goto out;
		}
		if (e != 0) {
			goto err_sys;
		}
		uint64_t rec_end = pos + LOCAL_RECORD_HDR + r.length;
		uint8_t hdr[LOCAL_RECORD_HDR];
		r.length = keep;
		r.payload_crc = crc_keep;
		local_record_encode(&r, hdr);
		/* 1: drop later records (a crash leaves a sound file). */
		if (c->end_pos > rec_end &&
		    (ftruncate(c->fd, (off_t)rec_end) != 0 ||
		     (l->fsync && fsync(c->fd) != 0))) {
			e = errno;
			goto err_sys;
		}
		/* 2: shorter header (a crash leaves a torn tail at length). */
		ssize_t wr = pwrite(c->fd, hdr, sizeof(hdr), (off_t)pos);
		if (wr != (ssize_t)sizeof(hdr)) {
			e = wr < 0 ? errno : EIO;
			goto err_sys;
		}
		/* 3: drop the rest of the old payload. */
		if (ftruncate(c->fd, (off_t)(pos + LOCAL_RECORD_HDR + keep)) !=
		            0 ||
		    (l->fsync && fsync(c->fd) != 0)) {
			e = errno;
			goto err_sys;
		}
		pos += LOCAL_RECORD_HDR + keep;
	}
	c->length = length;
	c->end_pos = pos;
	index_trim(c, length);
	chunk_touch(c);
	goto out;

err_sys:
	c->stale = true;
	rc = sys_fail(l, errmsg, e, op, c->name, "truncate");
out:
	l->host->free(w.buf);
	return rc;
}

static int local_truncate(void *state, const char *name, uint64_t length,
                          char *errmsg)
{
	struct local *l = state;
	struct chunk *c;
	int rc = check_name("truncate", name, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = chunk_get(l, "truncate", name, &c, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (c->state != CHUNK_OK) {
		if (length > c->length) {
			rc = damaged(c, errmsg, "truncate");
			goto out;
		}
		/* Repair: cut the damage off, then truncate a sound file. */
		uint64_t cut_bytes = (uint64_t)c->size - c->end_pos;
		if (ftruncate(c->fd, (off_t)c->end_pos) != 0 ||
		    (l->fsync && fsync(c->fd) != 0)) {
			c->stale = true;
			rc = sys_fail(l, errmsg, errno, "truncate", name,
			              "cut the damaged tail of");
			goto out;
		}
		logf_(l, STRATA_LOG_WARN,
		      "chunk %s: repaired: cut %llu damaged bytes from byte "
		      "position %llu; length now %llu",
		      name, (unsigned long long)cut_bytes,
		      (unsigned long long)c->end_pos,
		      (unsigned long long)c->length);
		count(l, "repairs", 1);
		c->state = CHUNK_OK;
		chunk_touch(c);
	} else if (length > c->length) {
		errf(errmsg,
		     "truncate chunk %s to %llu bytes: it is only %llu bytes "
		     "long",
		     name, (unsigned long long)length,
		     (unsigned long long)c->length);
		rc = STRATA_ERANGE;
		goto out;
	}
	if (length < c->length) {
		rc = cut(l, c, length, errmsg);
	}
out:
	chunk_put(l, c);
	return rc;
}

/* Append every record of source s to target t, coalescing payloads into
 * records of up to LOCAL_RECORD_MAX bytes (buf has that many) and checking
 * each source CRC on the way. Each new record counts as a write of its
 * own, so opening the target later checks at most one record's payload
 * (see scan_file). No fdatasync. Error code with errmsg. */
static int copy_records(struct local *l, struct chunk *t, struct chunk *s,
                        uint8_t *buf, struct window *w, char *errmsg)
{
	uint64_t pos = 0;
	uint64_t off = 0;
	size_t fill = 0;
	int e;
	while (pos < s->end_pos) {
		const uint8_t *h;
		size_t avail;
		struct local_record r;
		e = win_get(s->fd, w, pos, LOCAL_RECORD_HDR, &h, &avail);
		if (e != 0) {
			return sys_fail(l, errmsg, e, "concat", s->name,
			                "read");
		}
		if (avail < LOCAL_RECORD_HDR || !local_record_decode(h, &r) ||
		    r.offset != off ||
		    pos + LOCAL_RECORD_HDR + r.length > s->end_pos) {
			errf(errmsg,
			     "concat source chunk %s: corrupt record header "
			     "at byte position %llu; restore the chunk",
			     s->name, (unsigned long long)pos);
			return STRATA_ECORRUPT;
		}
		if (fill + r.length > LOCAL_RECORD_MAX) {
			e = append_records(l, t, buf, fill, t->length, false);
			if (e != 0) {
				return sys_fail(l, errmsg, e, "concat", t->name,
				                "append to");
			}
			fill = 0;
		}
		ssize_t got = pread_full(s->fd, buf + fill, r.length,
		                         pos + LOCAL_RECORD_HDR);
		if (got < 0) {
			return sys_fail(l, errmsg, errno, "concat", s->name,
			                "read");
		}
		if ((size_t)got != r.length ||
		    local_crc32c(0, buf + fill, r.length) != r.payload_crc) {
			errf(errmsg,
			     "concat source chunk %s: payload checksum "
			     "mismatch in the record at byte position %llu; "
			     "restore the chunk",
			     s->name, (unsigned long long)pos);
			return STRATA_ECORRUPT;
		}
		fill += r.length;
		pos += LOCAL_RECORD_HDR + r.length;
		off += r.length;
	}
	if (fill > 0) {
		e = append_records(l, t, buf, fill, t->length, false);
		if (e != 0) {
			return sys_fail(l, errmsg, e, "concat", t->name,
			                "append to");
		}
	}
	return 0;
}

/* The hidden name a concat source is moved to before it is deleted:
 * "<dir>/.strata-d.<base>" (list skips it, names cannot clash with it). */
static void trash_name(const char *name, char *out, size_t size)
{
	const char *slash = strrchr(name, '/');
	int dlen = slash != NULL ? (int)(slash - name + 1) : 0;
	snprintf(out, size, "%.*s" RESERVED "d.%s", dlen, name, name + dlen);
}

static int local_concat(void *state, const char *target,
                        const char *const *sources, size_t n, char *errmsg)
{
	struct local *l = state;
	struct chunk *t;
	struct chunk *s;
	struct window w = {0};
	uint8_t *buf = NULL;
	char trash[STRATA_TIER2_NAME_MAX + 32];
	char back[STRATA_TIER2_NAME_MAX + 32];
	size_t moved = 0;
	int rc = check_name("concat into", target, errmsg);
	if (rc != 0) {
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		rc = check_name("concat from", sources[i], errmsg);
		if (rc != 0) {
			return rc;
		}
		for (size_t j = 0; j <= i; j++) {
			const char *other = j < i ? sources[j] : target;
			if (strcmp(sources[i], other) == 0) {
				errf(errmsg,
				     "concat into chunk %s: chunk %s is named "
				     "twice",
				     target, sources[i]);
				return STRATA_EINVAL;
			}
		}
	}
	rc = chunk_get(l, "concat into", target, &t, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (t->state != CHUNK_OK) {
		rc = damaged(t, errmsg, "concat into");
		goto out;
	}
	/* Check every source first: nothing changes if one is unusable. */
	for (size_t i = 0; i < n; i++) {
		rc = chunk_get(l, "concat from", sources[i], &s, errmsg);
		if (rc != 0) {
			goto out;
		}
		if (s->state != CHUNK_OK) {
			rc = damaged(s, errmsg, "concat from");
		}
		chunk_put(l, s);
		if (rc != 0) {
			goto out;
		}
	}
	uint64_t old_len = t->length;
	uint64_t old_end = t->end_pos;
	buf = l->host->malloc(LOCAL_RECORD_MAX);
	w.buf = l->host->malloc(WINDOW);
	if (buf == NULL || w.buf == NULL) {
		rc = nomem(errmsg, "concat into", target);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		rc = chunk_get(l, "concat from", sources[i], &s, errmsg);
		if (rc != 0) {
			goto err_rollback;
		}
		w.len = 0;
		rc = copy_records(l, t, s, buf, &w, errmsg);
		chunk_put(l, s);
		if (rc != 0) {
			goto err_rollback;
		}
	}
	if (l->fsync && t->length > old_len && fdatasync(t->fd) != 0) {
		rc = sys_fail(l, errmsg, errno, "concat into", target, "sync");
		goto err_rollback;
	}
	/* Commit: move every source out of sight (reversible), then drop. */
	for (moved = 0; moved < n; moved++) {
		trash_name(sources[moved], trash, sizeof(trash));
		if (renameat(l->root_fd, sources[moved], l->root_fd, trash) !=
		    0) {
			rc = sys_fail(l, errmsg, errno, "concat from",
			              sources[moved], "hide");
			goto err_unhide;
		}
	}
	for (size_t i = 0; i < n; i++) {
		chunk_forget(l, sources[i]);
		trash_name(sources[i], trash, sizeof(trash));
		int e = unlinkat(l->root_fd, trash, 0) != 0 ? errno : 0;
		if (e == 0 && l->fsync) {
			e = fsync_parent(l, trash);
		}
		if (e != 0) {
			logf_(l, STRATA_LOG_WARN,
			      "concat into chunk %s: source %s was merged but "
			      "removing %s/%s failed: %s",
			      target, sources[i], l->root, trash, strerror(e));
		}
		remove_empty_parents(l, sources[i]);
	}
	count(l, "bytes_concatenated", t->length - old_len);
	goto out;

err_unhide:
	while (moved-- > 0) {
		trash_name(sources[moved], back, sizeof(back));
		if (renameat(l->root_fd, back, l->root_fd, sources[moved]) !=
		    0) {
			logf_(l, STRATA_LOG_ERROR,
			      "concat into chunk %s: could not move %s/%s back "
			      "to %s: %s",
			      target, l->root, back, sources[moved],
			      strerror(errno));
		}
	}
err_rollback:
	if (ftruncate(t->fd, (off_t)old_end) != 0 ||
	    (l->fsync && fsync(t->fd) != 0)) {
		logf_(l, STRATA_LOG_ERROR,
		      "concat into chunk %s: could not cut it back to %llu "
		      "bytes: %s",
		      target, (unsigned long long)old_len, strerror(errno));
		t->stale = true;
	} else {
		t->length = old_len;
		t->end_pos = old_end;
		index_trim(t, old_len);
		chunk_touch(t);
	}
out:
	l->host->free(buf);
	l->host->free(w.buf);
	chunk_put(l, t);
	return rc;
}

static int local_delete(void *state, const char *name, char *errmsg)
{
	struct local *l = state;
	int rc = check_name("delete", name, errmsg);
	if (rc != 0) {
		return rc;
	}
	chunk_forget(l, name);
	if (unlinkat(l->root_fd, name, 0) != 0) {
		if (errno == EISDIR) {
			errf(errmsg, "delete chunk %s: %s/%s is a directory",
			     name, l->root, name);
			return STRATA_ENOENT;
		}
		return sys_fail(l, errmsg, errno, "delete", name, "unlink");
	}
	if (l->fsync) {
		int e = fsync_parent(l, name);
		if (e != 0) {
			return sys_fail(l, errmsg, e, "delete", name,
			                "sync the directory of");
		}
	}
	remove_empty_parents(l, name);
	return 0;
}

static const struct strata_tier2_ops local_ops = {
        .abi_version = STRATA_TIER2_ABI_VERSION,
        .name = "local",
        .open = local_open,
        .close = local_close,
        .create = local_create,
        .write = local_write,
        .read = local_read,
        .stat = local_stat,
        .list = local_list,
        .truncate = local_truncate,
        .concat = local_concat,
        .remove = local_delete,
};

STRATA_PLUGIN_EXPORT const struct strata_tier2_ops *strata_tier2_plugin(void);

const struct strata_tier2_ops *strata_tier2_plugin(void)
{
	return &local_ops;
}
