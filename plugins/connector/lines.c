/* Line reader, buffered writer and helpers of the file and stdio
 * connectors (see lines.h). */
#include "lines.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ reader */

void lines_init(struct lines *l, const struct strata_host *host,
                uint64_t offset)
{
	memset(l, 0, sizeof(*l));
	l->host = host;
	l->offset = offset;
}

void lines_free(struct lines *l)
{
	l->host->free(l->buf);
	l->buf = NULL;
	l->cap = l->len = l->start = 0;
}

size_t lines_limit(size_t max_len)
{
	if (max_len >= SIZE_MAX - 1) {
		return SIZE_MAX; /* no limit from the host: never reached */
	}
	return max_len + 1 > LINES_MIN_CAP ? max_len + 1 : LINES_MIN_CAP;
}

int lines_reserve(struct lines *l, size_t want, size_t limit)
{
	if (l->start > 0) {
		memmove(l->buf, l->buf + l->start, l->len - l->start);
		l->len -= l->start;
		l->start = 0;
	}
	if (l->cap - l->len >= want) {
		return 0;
	}
	/* Grow by doubling, never beyond the limit (lines_next reports a
	 * line over max_len before a fill needs more). */
	if (limit - l->len < want) {
		return ENOBUFS;
	}
	size_t cap = l->cap == 0 ? LINES_MIN_CAP : l->cap;
	while (cap - l->len < want) {
		cap = cap > limit / 2 ? limit : cap * 2;
	}
	if (cap > limit) {
		cap = limit;
	}
	uint8_t *nb = l->host->realloc(l->buf, cap);
	if (nb == NULL) {
		return ENOMEM;
	}
	l->buf = nb;
	l->cap = cap;
	return 0;
}

int lines_fill(struct lines *l, int fd, size_t max_len)
{
	int rc = lines_reserve(l, 1, lines_limit(max_len));
	if (rc != 0) {
		return rc;
	}
	for (;;) {
		ssize_t r = read(fd, l->buf + l->len, l->cap - l->len);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			l->eof = false; /* a non-blocking descriptor: not yet */
			return 0;
		}
		if (r < 0) {
			return errno;
		}
		l->eof = r == 0;
		l->len += (size_t)r;
		return 0;
	}
}

bool lines_next(struct lines *l, size_t max_len, bool take_partial,
                struct strata_connector_record *rec, bool *too_long)
{
	*too_long = false;
	size_t avail = l->len - l->start;
	if (avail == 0) {
		return false;
	}
	const uint8_t *p = l->buf + l->start;
	const uint8_t *nl = memchr(p, '\n', avail);
	size_t n = nl != NULL ? (size_t)(nl - p) : avail;
	if (n > max_len) {
		*too_long = true;
		return false;
	}
	if (nl == NULL && !take_partial) {
		return false;
	}
	memset(rec, 0, sizeof(*rec));
	rec->data = p;
	rec->len = n;
	size_t used = nl != NULL ? n + 1 : n;
	l->start += used;
	l->offset += used;
	return true;
}

/* ------------------------------------------------------------ writer */

int lines_take(struct lines *l, size_t max_len, bool last, const char *name,
               const char *key, size_t keylen,
               struct strata_connector_record *recs, size_t max, size_t *n,
               bool *end, char *errmsg)
{
	bool too_long = false;
	while (*n < max && lines_next(l, max_len, last, &recs[*n], &too_long)) {
		recs[*n].key = keylen > 0 ? key : NULL;
		recs[*n].keylen = keylen;
		(*n)++;
	}
	if (too_long && *n == 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "%.150s: the line at byte %" PRIu64 " is longer than "
		         "%zu bytes",
		         name, l->offset, max_len);
		return STRATA_ETOOBIG;
	}
	if (*n > 0 || too_long) {
		/* The end is known once the last bytes are out; a long line
		 * is reported by the next poll. */
		*end = last && l->start == l->len;
		return LINES_RETURN;
	}
	if (last) {
		*end = true;
		return LINES_RETURN;
	}
	return 0;
}

int out_init(struct out *o, const struct strata_host *host, const char *name,
             int fd, bool lines, bool seekable, uint64_t written, char *errmsg)
{
	memset(o, 0, sizeof(*o));
	o->host = host;
	o->name = name;
	o->fd = fd;
	o->lines = lines;
	o->seekable = seekable;
	o->written = written;
	o->buf = host->malloc(OUT_CAP);
	if (o->buf == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open %.200s: out of memory (%u bytes of buffer)",
		         name, OUT_CAP);
		return STRATA_ENOMEM;
	}
	return 0;
}

void out_free(struct out *o)
{
	o->host->free(o->buf);
	o->buf = NULL;
	o->used = 0;
}

/* The error of a writer that failed earlier, for every later call. */
static int out_broken(const struct out *o, char *errmsg)
{
	snprintf(errmsg, STRATA_ERRMSG_SIZE,
	         "write %.120s: an earlier write failed (%s): the output is "
	         "unknown; reopen the sink",
	         o->name, strerror(o->failed));
	return conn_errno_code(o->failed);
}

/* Write iov[cnt] (consumed as it goes) fully after o->written. A failure
 * breaks the writer (part of iov may be out). */
static int out_writev(struct out *o, struct iovec *iov, int cnt, char *errmsg)
{
	while (cnt > 0) {
		ssize_t w = o->seekable ? pwritev(o->fd, iov, cnt,
		                                  (off_t)o->written)
		                        : writev(o->fd, iov, cnt);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w < 0) {
			o->failed = errno;
			return conn_sys_fail(errmsg, "write", o->name, errno);
		}
		o->written += (uint64_t)w;
		size_t left = (size_t)w;
		while (cnt > 0 && left >= iov[0].iov_len) {
			left -= iov[0].iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov[0].iov_base = (uint8_t *)iov[0].iov_base + left;
			iov[0].iov_len -= left;
		}
	}
	return 0;
}

int out_flush(struct out *o, char *errmsg)
{
	if (o->failed != 0) {
		return out_broken(o, errmsg);
	}
	if (o->used == 0) {
		return 0;
	}
	struct iovec iov = {o->buf, o->used};
	o->used = 0; /* written, or the writer is broken */
	return out_writev(o, &iov, 1, errmsg);
}

int out_write(struct out *o, const struct strata_connector_record *recs,
              size_t n, char *errmsg)
{
	static const char nl = '\n';
	if (o->failed != 0) {
		return out_broken(o, errmsg);
	}
	for (size_t i = 0; i < n; i++) {
		size_t need = recs[i].len + (o->lines ? 1 : 0);
		if (need > OUT_CAP - o->used) {
			int rc = out_flush(o, errmsg);
			if (rc != 0) {
				return rc;
			}
		}
		if (need > OUT_CAP) {
			struct iovec iov[2] = {
			        {(void *)recs[i].data, recs[i].len},
			        {(void *)&nl, 1}};
			int rc = out_writev(o, iov, o->lines ? 2 : 1, errmsg);
			if (rc != 0) {
				return rc;
			}
			continue;
		}
		if (recs[i].len > 0) {
			memcpy(o->buf + o->used, recs[i].data, recs[i].len);
		}
		if (o->lines) {
			o->buf[o->used + recs[i].len] = '\n';
		}
		o->used += need;
	}
	return 0;
}

int out_sink_write(void *state, const struct strata_connector_record *recs,
                   size_t n, char *errmsg)
{
	return out_write(state, recs, n, errmsg);
}

int out_sink_prepare(void *state, char *token, size_t size, char *errmsg)
{
	struct out *o = state;
	int rc = out_flush(o, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (o->sync && fdatasync(o->fd) != 0 &&
	    !(o->sync_soft && (errno == EINVAL || errno == EROFS))) {
		/* A failed sync may have dropped written pages: the output
		 * is unknown from here on. */
		o->failed = errno;
		return conn_sys_fail(errmsg, "sync", o->name, errno);
	}
	return conn_token(token, size, "", o->written, "prepare", o->name,
	                  errmsg);
}

/* ----------------------------------------------------------- options */

int conn_opt_not_kv(char *errmsg, const char *what,
                    const struct strata_config_item *it)
{
	snprintf(errmsg, STRATA_ERRMSG_SIZE,
	         "option line '%.*s' of the %.40s is not key=value",
	         it->line_len > 100 ? 100 : it->line_len, it->line, what);
	return STRATA_ECONFIG;
}

int conn_opt_unknown(char *errmsg, const char *what,
                     const struct strata_config_item *it, const char *valid)
{
	snprintf(errmsg, STRATA_ERRMSG_SIZE,
	         "unknown option '%.*s' of the %.40s (valid: %.160s)",
	         it->key_len > 60 ? 60 : (int)it->key_len, it->key, what,
	         valid);
	return STRATA_ECONFIG;
}

int conn_opt_bad(char *errmsg, const char *what,
                 const struct strata_config_item *it, const char *want)
{
	snprintf(errmsg, STRATA_ERRMSG_SIZE,
	         "option %.*s of the %.40s: '%.*s' is not %.80s",
	         it->key_len > 40 ? 40 : (int)it->key_len, it->key, what,
	         it->value_len > 60 ? 60 : (int)it->value_len, it->value, want);
	return STRATA_ECONFIG;
}

bool conn_opt_string(const struct strata_config_item *it, char *buf,
                     size_t size, bool nonempty)
{
	return strata_config_value_copy(it, buf, size) == 0 &&
	       (!nonempty || it->value_len > 0);
}

bool conn_opt_value_is(const struct strata_config_item *it, const char *s)
{
	size_t n = strlen(s);
	return it->value != NULL && it->value_len == n &&
	       memcmp(it->value, s, n) == 0;
}

bool conn_opt_u64(const struct strata_config_item *it, uint64_t min,
                  uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (strata_config_value_u64(it, &v) != 0 || v < min || v > max) {
		return false;
	}
	*out = v;
	return true;
}

/* ----------------------------------------------------------- helpers */

bool conn_bool(const char *v, size_t n, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strlen(yes[i]) == n && strncasecmp(v, yes[i], n) == 0) {
			*out = true;
			return true;
		}
		if (strlen(no[i]) == n && strncasecmp(v, no[i], n) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

bool conn_u64(const char *t, uint64_t *out)
{
	uint64_t v = 0;
	if (*t == '\0') {
		return false;
	}
	for (const char *p = t; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			return false;
		}
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (UINT64_MAX - d) / 10) {
			return false;
		}
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

int conn_errno_code(int err)
{
	switch (err) {
	case ENOSPC:
	case EDQUOT:
		return STRATA_ENOSPC;
	case ENOENT:
		return STRATA_ENOENT;
	case EACCES:
	case EPERM:
	case EROFS:
		return STRATA_EPERM;
	case ENOMEM:
		return STRATA_ENOMEM;
	default:
		return STRATA_EIO;
	}
}

int conn_sys_fail(char *errmsg, const char *what, const char *name, int err)
{
	snprintf(errmsg, STRATA_ERRMSG_SIZE, "%s %.200s: %s", what, name,
	         strerror(err));
	return conn_errno_code(err);
}

void conn_err(char *errmsg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

int conn_token(char *token, size_t size, const char *prefix, uint64_t v,
               const char *op, const char *name, char *errmsg)
{
	int w = snprintf(token, size, "%s%" PRIu64, prefix, v);
	if (w < 0 || (size_t)w >= size) {
		conn_err(errmsg,
		         "%s %s: a token buffer of %zu bytes is too small", op,
		         name, size);
		return STRATA_ERANGE;
	}
	return 0;
}

uint64_t conn_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
