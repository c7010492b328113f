/* Line reader shared by the file and stdio connectors (see lines.h). */
#include "lines.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

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

int lines_fill(struct lines *l, int fd, size_t max_len)
{
	size_t want = max_len + 1 > LINES_MIN_CAP ? max_len + 1 : LINES_MIN_CAP;
	if (l->start > 0) {
		memmove(l->buf, l->buf + l->start, l->len - l->start);
		l->len -= l->start;
		l->start = 0;
	}
	if (l->cap < want) {
		uint8_t *nb = l->host->realloc(l->buf, want);
		if (nb == NULL) {
			return ENOMEM;
		}
		l->buf = nb;
		l->cap = want;
	}
	if (l->len == l->cap) {
		return ENOBUFS;
	}
	for (;;) {
		ssize_t r = read(fd, l->buf + l->len, l->cap - l->len);
		if (r < 0 && errno == EINTR) {
			continue;
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
	const uint8_t *p = l->buf != NULL ? l->buf + l->start : NULL;
	const uint8_t *nl = avail > 0 ? memchr(p, '\n', avail) : NULL;
	size_t n = nl != NULL ? (size_t)(nl - p) : avail;
	if (n > max_len) {
		*too_long = true;
		return false;
	}
	if (nl == NULL && (!take_partial || avail == 0)) {
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

bool conn_bool(const char *v, size_t n, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; i < 4; i++) {
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

int out_init(struct out *o, const struct strata_host *host, const char *name,
             int fd, bool lines, bool seekable, bool sync_each, uint64_t length,
             char *errmsg)
{
	memset(o, 0, sizeof(*o));
	o->host = host;
	o->name = name;
	o->fd = fd;
	o->lines = lines;
	o->seekable = seekable;
	o->sync = sync_each;
	o->length = length;
	o->cap = LINES_MIN_CAP * 16;
	o->buf = host->malloc(o->cap);
	if (o->buf == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	return 0;
}

void out_free(struct out *o)
{
	o->host->free(o->buf);
	o->buf = NULL;
}

/* Write iov fully at the offset the unbuffered bytes end at. */
static int out_writev(struct out *o, struct iovec *iov, int cnt, char *errmsg)
{
	size_t total = 0;
	for (int i = 0; i < cnt; i++) {
		total += iov[i].iov_len;
	}
	uint64_t at = o->length - o->used - total; /* where they go */
	if (!o->seekable) {
		at = 0;
	}
	while (cnt > 0) {
		ssize_t w = o->seekable ? pwritev(o->fd, iov, cnt, (off_t)at)
		                        : writev(o->fd, iov, cnt);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w < 0) {
			int e = errno;
			snprintf(errmsg, STRATA_ERRMSG_SIZE, "write %.120s: %s",
			         o->name, strerror(e));
			return conn_errno_code(e);
		}
		at += (uint64_t)w;
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
	if (o->used == 0) {
		return 0;
	}
	struct iovec iov = {o->buf, o->used};
	size_t n = o->used;
	o->used = 0; /* out_writev places it just before o->length */
	int rc = out_writev(o, &iov, 1, errmsg);
	if (rc != 0) {
		o->length -= n; /* not written: the buffer is dropped */
	}
	return rc;
}

int out_write(struct out *o, const struct strata_connector_record *recs,
              size_t n, char *errmsg)
{
	static const char nl = '\n';
	for (size_t i = 0; i < n; i++) {
		size_t need = recs[i].len + (o->lines ? 1 : 0);
		if (o->used + need > o->cap) {
			int rc = out_flush(o, errmsg);
			if (rc != 0) {
				return rc;
			}
		}
		if (need > o->cap) {
			struct iovec iov[2] = {
			        {(void *)recs[i].data, recs[i].len},
			        {(void *)&nl, 1}};
			o->length += need;
			int rc = out_writev(o, iov, o->lines ? 2 : 1, errmsg);
			if (rc != 0) {
				o->length -= need;
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
		o->length += need;
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
	if (rc == 0 && o->sync && fdatasync(o->fd) != 0) {
		int e = errno;
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "sync %.120s: %s", o->name,
		         strerror(e));
		rc = conn_errno_code(e);
	}
	if (rc == 0) {
		snprintf(token, size, "%" PRIu64, o->length);
	}
	return rc;
}
