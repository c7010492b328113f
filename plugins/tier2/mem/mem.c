/* Tier-2 "mem" plugin: the in-memory reference implementation of every op. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "strata/plugin.h"
#include "strata/plugin_config.h"

/*
 * The simplest correct tier 2: chunks live in one array guarded by one
 * mutex, so every op is atomic. Data is lost when the instance closes.
 * Config (all optional):
 *   max_bytes=<n>[k|m|g|t]  total chunk bytes allowed; a write that would
 *                           exceed it fails with STRATA_ENOSPC, so tests
 *                           can simulate a full tier 2 (concat moves bytes
 *                           and never fails for space). 0 = unlimited.
 * Counters: bytes_written, bytes_read.
 */

struct chunk {
	char *name;          /* owned */
	unsigned char *data; /* owned; cap bytes */
	size_t len;          /* bytes of data in use */
	size_t cap;          /* bytes allocated */
	int64_t mtime_ns;    /* last create/write/truncate/concat */
};

struct mem {
	const struct strata_host *host; /* borrowed until close */
	pthread_mutex_t lock;           /* guards everything below */
	struct chunk *chunks;           /* owned array */
	size_t n;                       /* chunks in use */
	size_t cap;                     /* chunks allocated */
	uint64_t used;                  /* sum of lengths */
	uint64_t max_bytes;             /* 0 = unlimited */
};

__attribute__((format(printf, 2, 3))) static void errf(char *errmsg,
                                                       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Parse config (no side effect). 0 or STRATA_ECONFIG. */
static int parse_config(const char *config, uint64_t *max_bytes_out,
                        char *errmsg)
{
	uint64_t max_bytes = 0;
	const char *cur = config;
	struct strata_config_item it;
	while (strata_config_next(&cur, &it)) {
		if (strata_config_key_is(&it, "max_bytes")) {
			if (strata_config_value_u64(&it, &max_bytes) != 0) {
				errf(errmsg,
				     "config %.*s: max_bytes must be a byte "
				     "count such as 1048576 or 64m",
				     it.line_len, it.line);
				return STRATA_ECONFIG;
			}
		} else {
			char msg[STRATA_ERRMSG_SIZE];
			errf(errmsg, "config: %s",
			     strata_config_unknown_key(&it, "max_bytes", msg,
			                               sizeof(msg)));
			return STRATA_ECONFIG;
		}
	}
	*max_bytes_out = max_bytes;
	return 0;
}

static int mem_check(const struct strata_host *host, const char *config,
                     char *errmsg)
{
	(void)host;
	uint64_t max_bytes;
	return parse_config(config, &max_bytes, errmsg);
}

static int mem_open(const struct strata_host *host, const char *config,
                    void **state, char *errmsg)
{
	uint64_t max_bytes;
	int rc = parse_config(config, &max_bytes, errmsg);
	if (rc != 0) {
		return rc;
	}
	struct mem *m = host->malloc(sizeof(*m));
	if (m == NULL) {
		errf(errmsg, "open: out of memory");
		return STRATA_ENOMEM;
	}
	memset(m, 0, sizeof(*m));
	m->host = host;
	m->max_bytes = max_bytes;
	pthread_mutex_init(&m->lock, NULL);
	*state = m;
	return 0;
}

static void mem_close(void *state)
{
	struct mem *m = state;
	for (size_t i = 0; i < m->n; i++) {
		m->host->free(m->chunks[i].name);
		m->host->free(m->chunks[i].data);
	}
	m->host->free(m->chunks);
	pthread_mutex_destroy(&m->lock);
	m->host->free(m);
}

/* The chunk called name, or NULL. Lock held. */
static struct chunk *find(struct mem *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->chunks[i].name, name) == 0) {
			return &m->chunks[i];
		}
	}
	return NULL;
}

/* Make room for want bytes in c; STRATA_ENOMEM leaves c unchanged. */
static int reserve(struct mem *m, struct chunk *c, size_t want)
{
	if (want <= c->cap) {
		return 0;
	}
	size_t cap = c->cap < 64 ? 64 : c->cap;
	while (cap < want) {
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	}
	unsigned char *data = m->host->realloc(c->data, cap);
	if (data == NULL) {
		return STRATA_ENOMEM;
	}
	c->data = data;
	c->cap = cap;
	return 0;
}

static int mem_create(void *state, const char *name, char *errmsg)
{
	struct mem *m = state;
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	if (find(m, name) != NULL) {
		errf(errmsg, "create chunk %s: it already exists", name);
		rc = STRATA_EEXIST;
		goto out;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap == 0 ? 16 : m->cap * 2;
		struct chunk *a =
		        m->host->realloc(m->chunks, cap * sizeof(*m->chunks));
		if (a == NULL) {
			goto nomem;
		}
		m->chunks = a;
		m->cap = cap;
	}
	size_t nlen = strlen(name);
	char *copy = m->host->malloc(nlen + 1);
	if (copy == NULL) {
		goto nomem;
	}
	memcpy(copy, name, nlen + 1);
	m->chunks[m->n++] = (struct chunk){
	        .name = copy,
	        .mtime_ns = now_ns(),
	};
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
nomem:
	errf(errmsg, "create chunk %s: out of memory", name);
	rc = STRATA_ENOMEM;
	goto out;
}

static int mem_write(void *state, const char *name, uint64_t offset,
                     const void *buf, size_t len, char *errmsg)
{
	struct mem *m = state;
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	struct chunk *c = find(m, name);
	if (c == NULL) {
		errf(errmsg, "write chunk %s: no such chunk (create it first)",
		     name);
		rc = STRATA_ENOENT;
		goto out;
	}
	if (offset != c->len) {
		errf(errmsg,
		     "write chunk %s at offset %llu: the chunk is %zu bytes "
		     "long (appends go at its end)",
		     name, (unsigned long long)offset, c->len);
		rc = STRATA_EBADOFFSET;
		goto out;
	}
	if (m->max_bytes != 0 && len > m->max_bytes - m->used) {
		errf(errmsg,
		     "write chunk %s: %zu more bytes exceed max_bytes=%llu "
		     "(%llu in use; delete chunks or raise max_bytes)",
		     name, len, (unsigned long long)m->max_bytes,
		     (unsigned long long)m->used);
		rc = STRATA_ENOSPC;
		goto out;
	}
	if (len > SIZE_MAX - c->len || reserve(m, c, c->len + len) != 0) {
		errf(errmsg,
		     "write chunk %s: out of memory growing to %zu+%zu "
		     "bytes",
		     name, c->len, len);
		rc = STRATA_ENOMEM;
		goto out;
	}
	if (len > 0) {
		memcpy(c->data + c->len, buf, len);
	}
	c->len += len;
	m->used += len;
	c->mtime_ns = now_ns();
out:
	pthread_mutex_unlock(&m->lock);
	if (rc == 0) {
		m->host->counter_add(m->host, "bytes_written", len);
	}
	return rc;
}

static int mem_read(void *state, const char *name, uint64_t offset, void *buf,
                    size_t len, size_t *nread, char *errmsg)
{
	struct mem *m = state;
	int rc = 0;
	size_t n = 0;
	pthread_mutex_lock(&m->lock);
	struct chunk *c = find(m, name);
	if (c == NULL) {
		errf(errmsg, "read chunk %s: no such chunk", name);
		rc = STRATA_ENOENT;
		goto out;
	}
	if (offset > c->len) {
		errf(errmsg,
		     "read chunk %s at offset %llu: past its end (%zu bytes)",
		     name, (unsigned long long)offset, c->len);
		rc = STRATA_ERANGE;
		goto out;
	}
	n = c->len - (size_t)offset;
	if (n > len) {
		n = len;
	}
	if (n > 0) {
		memcpy(buf, c->data + offset, n);
	}
out:
	pthread_mutex_unlock(&m->lock);
	*nread = n;
	if (rc == 0) {
		m->host->counter_add(m->host, "bytes_read", n);
	}
	return rc;
}

static int mem_stat(void *state, const char *name,
                    struct strata_tier2_chunk_info *info, char *errmsg)
{
	struct mem *m = state;
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	struct chunk *c = find(m, name);
	if (c == NULL) {
		errf(errmsg, "stat chunk %s: no such chunk", name);
		rc = STRATA_ENOENT;
	} else {
		info->length = c->len;
		info->mtime_ns = c->mtime_ns;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* One listed chunk, copied so the callback runs without the lock. */
struct listed {
	char *name;
	struct strata_tier2_chunk_info info;
};

static int mem_list(void *state, const char *prefix, strata_tier2_list_cb cb,
                    void *arg, char *errmsg)
{
	struct mem *m = state;
	size_t plen = strlen(prefix);
	size_t k = 0;
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	struct listed *l = m->host->malloc((m->n + 1) * sizeof(*l));
	if (l == NULL) {
		pthread_mutex_unlock(&m->lock);
		goto nomem;
	}
	for (size_t i = 0; i < m->n; i++) {
		struct chunk *c = &m->chunks[i];
		if (strncmp(c->name, prefix, plen) != 0) {
			continue;
		}
		size_t nlen = strlen(c->name);
		l[k].name = m->host->malloc(nlen + 1);
		if (l[k].name == NULL) {
			pthread_mutex_unlock(&m->lock);
			goto nomem_free;
		}
		memcpy(l[k].name, c->name, nlen + 1);
		l[k].info.length = c->len;
		l[k].info.mtime_ns = c->mtime_ns;
		k++;
	}
	pthread_mutex_unlock(&m->lock);
	for (size_t i = 0; i < k && rc == 0; i++) {
		rc = cb(arg, l[i].name, &l[i].info);
	}
	for (size_t i = 0; i < k; i++) {
		m->host->free(l[i].name);
	}
	m->host->free(l);
	return rc;

nomem_free:
	for (size_t i = 0; i < k; i++) {
		m->host->free(l[i].name);
	}
	m->host->free(l);
nomem:
	errf(errmsg, "list prefix '%s': out of memory", prefix);
	return STRATA_ENOMEM;
}

static int mem_truncate(void *state, const char *name, uint64_t length,
                        char *errmsg)
{
	struct mem *m = state;
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	struct chunk *c = find(m, name);
	if (c == NULL) {
		errf(errmsg, "truncate chunk %s: no such chunk", name);
		rc = STRATA_ENOENT;
	} else if (length > c->len) {
		errf(errmsg,
		     "truncate chunk %s to %llu bytes: it is only %zu bytes "
		     "long",
		     name, (unsigned long long)length, c->len);
		rc = STRATA_ERANGE;
	} else {
		m->used -= c->len - (size_t)length;
		c->len = (size_t)length;
		c->mtime_ns = now_ns();
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* Remove chunk c from the array. Lock held. */
static void drop(struct mem *m, struct chunk *c)
{
	m->used -= c->len;
	m->host->free(c->name);
	m->host->free(c->data);
	*c = m->chunks[--m->n];
}

static int mem_concat(void *state, const char *target,
                      const char *const *sources, size_t n, char *errmsg)
{
	struct mem *m = state;
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	struct chunk *t = find(m, target);
	if (t == NULL) {
		errf(errmsg, "concat into chunk %s: no such chunk", target);
		rc = STRATA_ENOENT;
		goto out;
	}
	size_t total = t->len;
	for (size_t i = 0; i < n; i++) {
		struct chunk *s = find(m, sources[i]);
		if (s == NULL) {
			errf(errmsg,
			     "concat into chunk %s: source chunk %s does not "
			     "exist",
			     target, sources[i]);
			rc = STRATA_ENOENT;
			goto out;
		}
		if (s == t) {
			errf(errmsg,
			     "concat into chunk %s: it is also a source",
			     target);
			rc = STRATA_EINVAL;
			goto out;
		}
		if (s->len > SIZE_MAX - total) {
			goto nomem;
		}
		total += s->len;
	}
	if (reserve(m, t, total) != 0) {
		goto nomem;
	}
	for (size_t i = 0; i < n; i++) {
		struct chunk *s = find(m, sources[i]);
		if (s->len > 0) {
			memcpy(t->data + t->len, s->data, s->len);
		}
		t->len += s->len;
		m->used += s->len;
		/* drop() may move the target into the source's slot. */
		size_t ti = (size_t)(t - m->chunks);
		bool moved = ti == m->n - 1;
		size_t si = (size_t)(s - m->chunks);
		drop(m, s);
		if (moved) {
			t = &m->chunks[si];
		}
	}
	t->mtime_ns = now_ns();
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
nomem:
	errf(errmsg, "concat into chunk %s: out of memory", target);
	rc = STRATA_ENOMEM;
	goto out;
}

static int mem_delete(void *state, const char *name, char *errmsg)
{
	struct mem *m = state;
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	struct chunk *c = find(m, name);
	if (c == NULL) {
		errf(errmsg, "delete chunk %s: no such chunk", name);
		rc = STRATA_ENOENT;
	} else {
		drop(m, c);
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static const struct strata_tier2_ops mem_ops = {
        .abi_version = STRATA_TIER2_ABI_VERSION,
        .name = "mem",
        .open = mem_open,
        .close = mem_close,
        .create = mem_create,
        .write = mem_write,
        .read = mem_read,
        .stat = mem_stat,
        .list = mem_list,
        .truncate = mem_truncate,
        .concat = mem_concat,
        .remove = mem_delete,
        .check = mem_check,
};

STRATA_PLUGIN_EXPORT const struct strata_tier2_ops *strata_tier2_plugin(void);

/* The plugin's one exported symbol. */
const struct strata_tier2_ops *strata_tier2_plugin(void)
{
	return &mem_ops;
}
