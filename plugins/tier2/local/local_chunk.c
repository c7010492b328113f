/* Tier-2 "local" plugin: read-ahead, sparse index, scan, open-chunk LRU. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugins/tier2/local/local.h"
#include "plugins/tier2/local/local_format.h"
#include "strata/plugin.h"

#define INDEX_MAX 4096u          /* index entries per chunk, at most */
#define INDEX_STRIDE (16u << 10) /* initial logical bytes per entry */

/* ---- file I/O helpers ---- */

/* pread exactly len bytes unless EOF comes first; returns the count read
 * or -1 with errno set. */
ssize_t local_pread_full(int fd, void *buf, size_t len, uint64_t pos)
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

/* Point *out at file bytes [pos, pos + need) (need <= LOCAL_WINDOW), reading
 * ahead when they are not in the window. *avail is how many of them exist
 * (< need only at end of file). errno on failure. */
int local_win_get(int fd, struct window *w, uint64_t pos, size_t need,
                  const uint8_t **out, size_t *avail)
{
	*out = w->buf;
	*avail = 0;
	if (pos < w->pos || pos + need > w->pos + w->len) {
		ssize_t r = local_pread_full(fd, w->buf, LOCAL_WINDOW, pos);
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
int local_crc_range(int fd, struct window *w, uint64_t pos, uint64_t len,
                    uint32_t *crc)
{
	uint32_t c = *crc;
	while (len > 0) {
		size_t n = len < LOCAL_WINDOW ? (size_t)len : LOCAL_WINDOW;
		const uint8_t *p;
		size_t avail;
		int e = local_win_get(fd, w, pos, n, &p, &avail);
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

/* ---- the sparse index ---- */

/* Remember that a record starts at (off, pos), keeping at most INDEX_MAX
 * entries by doubling the stride. Never fails: the index is only a hint
 * (lookups fall back to an earlier entry or the start). */
void local_index_add(const struct local *l, struct chunk *c, uint64_t off,
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
struct index_entry local_index_find(const struct chunk *c, uint64_t off)
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
void local_index_trim(struct chunk *c, uint64_t length)
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
		*err = local_win_get(fd, w, q, LOCAL_RECORD_HDR, &h, &avail);
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
int local_scan(const struct local *l, int fd, uint64_t size, struct chunk *c,
               struct scan *s)
{
	struct window w = {0};
	w.buf = l->host->malloc(LOCAL_WINDOW);
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
		e = local_win_get(fd, &w, pos, LOCAL_RECORD_HDR, &h, &avail);
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
			local_index_add(l, c, off, pos);
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
		e = local_win_get(fd, &w, p, LOCAL_RECORD_HDR, &h, &avail);
		if (e != 0) {
			goto out;
		}
		(void)local_record_decode(h, &r); /* valid: checked above */
		e = local_crc_range(fd, &w, p + LOCAL_RECORD_HDR, r.length,
		                    &crc);
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
		local_index_trim(c, off);
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

void local_chunk_free(const struct local *l, struct chunk *c)
{
	chunk_unload(l, c);
	l->host->free(c->name);
	l->host->free(c);
}

/* Remember the file's identity after our own change; a failed fstat makes
 * the next op reload. */
void local_chunk_touch(struct chunk *c)
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
			local_errf(errmsg,
			           "%s chunk %s: %s/%s is not a chunk file", op,
			           c->name, l->root, c->name);
			return STRATA_ENOENT;
		}
		return local_sys_fail(l, errmsg, e, op, c->name, "open");
	}
	struct stat st;
	if (fstat(c->fd, &st) != 0) {
		int e = errno;
		chunk_unload(l, c);
		return local_sys_fail(l, errmsg, e, op, c->name, "stat");
	}
	if (!S_ISREG(st.st_mode)) {
		chunk_unload(l, c);
		local_errf(errmsg, "%s chunk %s: %s/%s is not a regular file",
		           op, c->name, l->root, c->name);
		return STRATA_ENOENT;
	}
	struct scan s;
	int e = local_scan(l, c->fd, (uint64_t)st.st_size, c, &s);
	if (e != 0) {
		chunk_unload(l, c);
		if (e == ENOMEM) {
			return local_nomem(errmsg, op, c->name);
		}
		return local_sys_fail(l, errmsg, e, op, c->name, "read");
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
		local_log(l, STRATA_LOG_WARN,
		          "chunk %s: %s at byte position %llu (%s); last good "
		          "length %llu",
		          c->name,
		          s.state == CHUNK_TORN ? "torn tail"
		                                : "corrupt record",
		          (unsigned long long)s.end_pos, s.why,
		          (unsigned long long)s.length);
		local_count(l,
		            s.state == CHUNK_TORN ? "torn_tails"
		                                  : "corrupt_chunks",
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
		local_chunk_free(l, victims);
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
	local_chunk_free(l, c);
}

/* Forget the chunk called name if cached and unreferenced. */
void local_chunk_forget(struct local *l, const char *name)
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
		local_chunk_free(l, c);
	}
}

/*
 * Reference the chunk called name (borrowed), loading it when it is not
 * cached or its file changed behind our back. Damaged chunks are returned
 * too (check c->state). Release with local_chunk_put(). Errors: STRATA_ENOENT,
 * STRATA_ENOMEM, mapped I/O errors, with errmsg.
 */
int local_chunk_get(struct local *l, const char *op, const char *name,
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
			return local_sys_fail(l, errmsg, e, op, name, "stat");
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
		return local_nomem(errmsg, op, name);
	}
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->stride = INDEX_STRIDE;
	size_t n = strlen(name);
	c->name = l->host->malloc(n + 1);
	if (c->name == NULL) {
		l->host->free(c);
		return local_nomem(errmsg, op, name);
	}
	memcpy(c->name, name, n + 1);
	rc = chunk_load(l, c, op, errmsg);
	if (rc != 0) {
		local_chunk_free(l, c);
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

void local_chunk_put(struct local *l, struct chunk *c)
{
	struct chunk *victims = NULL;
	pthread_mutex_lock(&l->lock);
	c->refs--;
	lru_evict(l, &victims);
	pthread_mutex_unlock(&l->lock);
	free_list(l, victims);
}
