/* The s3 plugin's chunk model: chunks as part objects, over a transport. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plugins/tier2/s3/s3_frame.h"
#include "plugins/tier2/s3/s3_store.h"

/*
 * Layout (s3_store.h): chunk "n" = objects "<prefix>n/<20-digit offset>",
 * with the suffix ".crc" when framed (s3_frame.h: a CRC32C per 64 KiB
 * block, checked before a byte of the block is returned). Offsets and
 * lengths are data bytes; a framed object's size gives its data length.
 * Invariants kept by every op, checked by every read of a chunk:
 *   - the object at offset 0 exists (an empty chunk is that empty object);
 *   - objects are contiguous: each starts where the previous one ends
 *     (an empty object at offset 0 left by a write of the other format,
 *     checksum changed, is allowed beside the first one).
 * Failure modes: every state between two requests of one op is a valid
 * chunk (a prefix of the old or of the new content), because objects are
 * added at the end, removed from the end, and replaced whole:
 *   write    PUT one new object at the end (or replaces the empty first);
 *   truncate deletes whole objects from the end, then rewrites the one that
 *            straddles the cut (GET its head, PUT it back shorter);
 *   remove   deletes from the last object to the first;
 *   concat   SigV4: one multipart upload (UploadPartCopy of each source
 *            object, small pieces re-uploaded to respect S3's 5 MiB part
 *            minimum) completed as ONE new object at the target's end:
 *            atomic. SigV2: CopyObject per source object, each at the
 *            target's end, undone (deleted) on error. Sources are deleted
 *            after the target is complete.
 * A write or copy whose answer was lost may still land; on such an error
 * the plugin deletes the object it tried to add (best effort, one try).
 */

#define KEY_MAX (512 + STRATA_TIER2_NAME_MAX + 64)
#define WHAT_MAX (STRATA_TIER2_NAME_MAX + 48)
#define MAX_COPY_PART ((uint64_t)5 << 30) /* S3's largest part */
#define MAX_PARTS 10000                   /* S3's most parts per upload */

__attribute__((format(printf, 2, 3))) static void errf(char *errmsg,
                                                       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

static uint64_t real_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void real_sleep_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0) {
	}
}

void s3_store_init(struct s3_store *s, const struct strata_host *host,
                   const struct s3_config *cfg,
                   const struct s3_transport_ops *ops, void *t)
{
	s->host = host;
	s->cfg = cfg;
	s->ops = ops;
	s->t = t;
	s->now_ms = real_now_ms;
	s->sleep_ms = real_sleep_ms;
}

bool s3_store_key(const struct s3_store *s, const char *name, uint64_t off,
                  bool framed, char *out, size_t size)
{
	int n = snprintf(out, size, "%s%s/%020" PRIu64 "%s", s->cfg->prefix,
	                 name, off, framed ? S3_FRAME_SUFFIX : "");
	return n > 0 && (size_t)n < size;
}

/* ---- retries and error mapping ---------------------------------------- */

/* Attempts of one request. */
struct
try {
	uint64_t start; /* now_ms() at the first attempt */
	int attempts;   /* made so far */
	uint64_t seed;  /* jitter */
};

static void try_init(struct s3_store *s, struct try *t, const char *key)
{
	t->start = s->now_ms();
	t->attempts = 0;
	uint64_t h = 1469598103934665603ULL ^ t->start;
	for (const char *p = key; *p; p++) {
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	}
	t->seed = h | 1;
}

static bool code_is(const struct s3_result *r, const char *code)
{
	return strcmp(r->code, code) == 0;
}

static bool throttled(const struct s3_result *r)
{
	return r->http == 429 || r->http == 503 || code_is(r, "SlowDown") ||
	       code_is(r, "Throttling") || code_is(r, "ThrottlingException") ||
	       code_is(r, "RequestLimitExceeded") ||
	       code_is(r, "TooManyRequestsException") ||
	       code_is(r, "ServiceUnavailable");
}

/* May the same request succeed if sent again? */
static bool retryable(const struct s3_result *r)
{
	switch (r->net) {
	case S3_NET_REFUSED:
	case S3_NET_TIMEOUT:
	case S3_NET_RESOLVE:
	case S3_NET_BROKEN:
	case S3_NET_PROTO:
		return true;
	case S3_NET_TLS:
	case S3_NET_LOCAL:
		return false;
	case S3_NET_NONE:
		break;
	}
	return (r->http >= 500 && r->http != 501) || throttled(r) ||
	       code_is(r, "RequestTimeout") || code_is(r, "InternalError");
}

/* After a failed attempt: sleep and return true to try again, or false. */
static bool again(struct s3_store *s, struct try *t, int rc,
                  const struct s3_result *res)
{
	t->attempts++;
	if (rc == 0 || rc == STRATA_ENOMEM || !retryable(res) ||
	    t->attempts > s->cfg->retries) {
		return false;
	}
	uint64_t spent = s->now_ms() - t->start;
	if (spent >= s->cfg->retry_budget_ms) {
		return false;
	}
	/* Exponential backoff with "equal jitter": [d/2, d]. */
	uint64_t d = s->cfg->retry_base_ms;
	for (int i = 1; i < t->attempts && d < s->cfg->retry_max_ms; i++) {
		d *= 2;
	}
	if (d > s->cfg->retry_max_ms) {
		d = s->cfg->retry_max_ms;
	}
	t->seed ^= t->seed << 13;
	t->seed ^= t->seed >> 7;
	t->seed ^= t->seed << 17;
	d = d / 2 + t->seed % (d / 2 + 1);
	if (d > s->cfg->retry_budget_ms - spent) {
		d = s->cfg->retry_budget_ms - spent;
	}
	s->host->counter_add(s->host, "retries", 1);
	s->sleep_ms(d);
	return true;
}

/* The Strata code for a final failure, and what the operator should do. */
static int map(const struct s3_result *r, const char **advice)
{
	*advice = "";
	switch (r->net) {
	case S3_NET_REFUSED:
		*advice = "; is the S3 endpoint up?";
		return STRATA_ECONNREFUSED;
	case S3_NET_TIMEOUT:
		*advice = "; is the S3 endpoint up and reachable?";
		return STRATA_ETIMEDOUT;
	case S3_NET_RESOLVE:
	case S3_NET_BROKEN:
		*advice = "; is the S3 endpoint up and reachable?";
		return STRATA_EUNAVAIL;
	case S3_NET_TLS:
		*advice = "; check the endpoint's certificate, ca_file or "
		          "tls_verify";
		return STRATA_EPERM;
	case S3_NET_PROTO:
		return STRATA_EPROTO;
	case S3_NET_LOCAL:
		return STRATA_EIO;
	case S3_NET_NONE:
		break;
	}
	if (code_is(r, "NoSuchKey")) {
		return STRATA_ENOENT;
	}
	if (code_is(r, "NoSuchBucket")) {
		*advice = "; create the bucket or fix tier2 bucket";
		return STRATA_ECONFIG;
	}
	if (r->http == 403 || code_is(r, "AccessDenied") ||
	    code_is(r, "InvalidAccessKeyId") ||
	    code_is(r, "SignatureDoesNotMatch") || code_is(r, "ExpiredToken") ||
	    code_is(r, "InvalidToken") || code_is(r, "AccountProblem")) {
		*advice = "; check the credentials, region and bucket policy";
		return STRATA_EPERM;
	}
	if (r->http == 416 || code_is(r, "InvalidRange")) {
		return STRATA_ERANGE;
	}
	if (code_is(r, "RequestTimeout")) {
		return STRATA_ETIMEDOUT;
	}
	if (throttled(r)) {
		*advice = "; the store is throttling: lower the load or raise "
		          "its limits";
		return STRATA_EUNAVAIL;
	}
	if (r->http == 501 || code_is(r, "NotImplemented")) {
		return STRATA_ENOTSUP;
	}
	if (code_is(r, "EntityTooLarge")) {
		return STRATA_ETOOBIG;
	}
	if (code_is(r, "QuotaExceeded") || code_is(r, "XMinioStorageFull") ||
	    r->http == 507) {
		return STRATA_ENOSPC;
	}
	if (r->http >= 500) {
		return STRATA_EUNAVAIL;
	}
	if (r->http == 404) {
		return STRATA_ENOENT;
	}
	if (r->http == 400) {
		return STRATA_EINVAL;
	}
	return STRATA_EIO;
}

static const char *net_name(enum s3_net n)
{
	switch (n) {
	case S3_NET_REFUSED:
		return "connection refused";
	case S3_NET_TIMEOUT:
		return "timed out";
	case S3_NET_RESOLVE:
		return "cannot resolve host";
	case S3_NET_TLS:
		return "TLS failure";
	case S3_NET_BROKEN:
		return "connection broken";
	case S3_NET_PROTO:
		return "bad answer";
	case S3_NET_LOCAL:
		return "local failure";
	case S3_NET_NONE:
		break;
	}
	return "";
}

/* Write the final error of a request into errmsg; return its code. */
static int report(struct s3_store *s, char *errmsg, const char *what,
                  const char *verb, const char *key, int rc,
                  const struct s3_result *r, const struct try *t)
{
	const char *advice = "";
	int code = rc == STRATA_ENOMEM ? STRATA_ENOMEM : map(r, &advice);
	char cause[96];
	if (r->net != S3_NET_NONE) {
		snprintf(cause, sizeof(cause), "%s", net_name(r->net));
	} else if (r->code[0] != '\0') {
		snprintf(cause, sizeof(cause), "%s (HTTP %d)", r->code,
		         r->http);
	} else {
		snprintf(cause, sizeof(cause), "HTTP %d", r->http);
	}
	errf(errmsg,
	     "%s: %s s3://%s/%s: %s [%s://%s, %d attempt%s, %llu ms]%s: %s",
	     what, verb, s->cfg->bucket, key, cause,
	     s->cfg->https ? "https" : "http", s->cfg->host, t->attempts,
	     t->attempts == 1 ? "" : "s",
	     (unsigned long long)(s->now_ms() - t->start), advice, r->detail);
	return code;
}

/* ---- single requests with retries -------------------------------------- */

static int do_put(struct s3_store *s, const char *what, const char *key,
                  const void *buf, size_t len, bool retry, char *errmsg)
{
	struct s3_result res;
	struct try t;
	int rc;
	try_init(s, &t, key);
	do {
		rc = s->ops->put(s->t, key, buf, len, &res);
	} while (rc != 0 && retry && again(s, &t, rc, &res));
	if (rc != 0) {
		if (!retry) {
			t.attempts = 1;
		}
		return report(s, errmsg, what, "PUT", key, rc, &res, &t);
	}
	return 0;
}

static int do_get(struct s3_store *s, const char *what, const char *key,
                  uint64_t off, void *buf, size_t len, char *errmsg)
{
	struct s3_result res;
	struct try t;
	size_t got = 0;
	int rc;
	try_init(s, &t, key);
	do {
		rc = s->ops->get(s->t, key, off, len, buf, &got, &res);
	} while (rc != 0 && again(s, &t, rc, &res));
	if (rc != 0) {
		if (map(&res, &(const char *){""}) == STRATA_ENOENT) {
			errf(errmsg,
			     "%s: object s3://%s/%s vanished while reading "
			     "(changed behind Strata's back?)",
			     what, s->cfg->bucket, key);
			return STRATA_ECORRUPT;
		}
		return report(s, errmsg, what, "GET", key, rc, &res, &t);
	}
	if (got != len) {
		errf(errmsg,
		     "%s: GET s3://%s/%s bytes %" PRIu64 "+%zu returned %zu "
		     "bytes: the object is shorter than listed",
		     what, s->cfg->bucket, key, off, len, got);
		return STRATA_ECORRUPT;
	}
	return 0;
}

static int do_del(struct s3_store *s, const char *what, const char *key,
                  bool retry, char *errmsg)
{
	struct s3_result res;
	struct try t;
	int rc;
	try_init(s, &t, key);
	do {
		rc = s->ops->del(s->t, key, &res);
	} while (rc != 0 && retry && again(s, &t, rc, &res));
	if (rc != 0) {
		if (!retry) {
			t.attempts = 1;
		}
		return report(s, errmsg, what, "DELETE", key, rc, &res, &t);
	}
	return 0;
}

/* ---- listings ------------------------------------------------------------ */

struct obj {
	char *key;        /* owned */
	uint64_t size;    /* bytes */
	int64_t mtime_ns; /* 0 unknown */
};

/* Objects of a listing page, copied out of the transport's callback. */
struct page {
	const struct strata_host *host;
	struct obj *v;
	size_t n, cap;
};

static void page_clear(struct page *p)
{
	for (size_t i = 0; i < p->n; i++) {
		p->host->free(p->v[i].key);
	}
	p->n = 0;
}

static void page_free(struct page *p)
{
	page_clear(p);
	p->host->free(p->v);
	p->v = NULL;
	p->cap = 0;
}

static int page_cb(void *arg, const struct s3_object *o, size_t n)
{
	struct page *p = arg;
	if (p->n + n > p->cap) {
		size_t cap = p->cap == 0 ? 64 : p->cap;
		while (cap < p->n + n) {
			cap *= 2;
		}
		struct obj *v = p->host->realloc(p->v, cap * sizeof(*v));
		if (v == NULL) {
			return STRATA_ENOMEM;
		}
		p->v = v;
		p->cap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(o[i].key);
		char *k = p->host->malloc(len + 1);
		if (k == NULL) {
			return STRATA_ENOMEM;
		}
		memcpy(k, o[i].key, len + 1);
		p->v[p->n++] = (struct obj){k, o[i].size, o[i].mtime_ns};
	}
	return 0;
}

/* One page of keys under prefix after marker, into pg (cleared first). */
static int list_page(struct s3_store *s, const char *what, const char *prefix,
                     const char *marker, bool direct, int max, struct page *pg,
                     bool *truncated, char *errmsg)
{
	struct s3_result res;
	struct try t;
	int rc;
	try_init(s, &t, prefix);
	do {
		page_clear(pg);
		*truncated = false;
		rc = s->ops->list(s->t, prefix, marker, direct, max, page_cb,
		                  pg, truncated, &res);
	} while (rc != 0 && again(s, &t, rc, &res));
	if (rc != 0) {
		page_clear(pg);
		char where[KEY_MAX + 16];
		snprintf(where, sizeof(where), "?prefix=%s", prefix);
		return report(s, errmsg, what, "GET", where, rc, &res, &t);
	}
	return 0;
}

/* 20 digits after the chunk's "name/", then ".crc" (*framed) or nothing;
 * false if key is not a part. */
static bool parse_off(const char *suffix, uint64_t *off, bool *framed)
{
	uint64_t v = 0;
	for (int i = 0; i < 20; i++) {
		char c = suffix[i];
		if (c < '0' || c > '9') {
			return false;
		}
		uint64_t d = (uint64_t)(c - '0');
		if (v > (UINT64_MAX - d) / 10) {
			return false;
		}
		v = v * 10 + d;
	}
	*off = v;
	*framed = strcmp(suffix + 20, S3_FRAME_SUFFIX) == 0;
	return *framed || suffix[20] == '\0';
}

/* The data length of a listed object; false when a framed object's size
 * is not a whole frame (cut short, or changed behind Strata's back). */
static bool data_len(bool framed, uint64_t size, uint64_t *len)
{
	if (!framed) {
		*len = size;
		return true;
	}
	return s3_frame_len(size, len);
}

struct part {
	uint64_t off;  /* chunk offset of its first byte */
	uint64_t size; /* data bytes */
	bool framed;   /* ".crc" object: size framed bytes */
};

/* The key of part p of chunk name into out (KEY_MAX bytes). */
static bool part_key(const struct s3_store *s, const char *name,
                     const struct part *p, char *out)
{
	return s3_store_key(s, name, p->off, p->framed, out, KEY_MAX);
}

/* A chunk as listed: its objects in order. */
struct chunk {
	struct part *v; /* host-allocated */
	size_t n;
	uint64_t len;     /* end of the last part */
	int64_t mtime_ns; /* newest part */
};

static void chunk_free(struct s3_store *s, struct chunk *c)
{
	s->host->free(c->v);
	c->v = NULL;
	c->n = 0;
}

/* List the parts of chunk name into *c and check the invariants. Errors:
 * STRATA_ENOENT (no objects), STRATA_ECORRUPT, transport errors. */
static int load_chunk(struct s3_store *s, const char *what, const char *name,
                      struct chunk *c, char *errmsg)
{
	char pfx[KEY_MAX];
	char marker[KEY_MAX] = "";
	struct page pg = {.host = s->host};
	size_t cap = 0;
	bool more = true;
	int rc = 0;
	memset(c, 0, sizeof(*c));
	snprintf(pfx, sizeof(pfx), "%s%s/", s->cfg->prefix, name);
	size_t plen = strlen(pfx);
	while (more && rc == 0) {
		rc = list_page(s, what, pfx, marker, true, s->cfg->list_page,
		               &pg, &more, errmsg);
		for (size_t i = 0; rc == 0 && i < pg.n; i++) {
			const struct obj *o = &pg.v[i];
			uint64_t off = 0;
			uint64_t len = 0;
			bool framed = false;
			if (strncmp(o->key, pfx, plen) != 0 ||
			    !parse_off(o->key + plen, &off, &framed)) {
				errf(errmsg,
				     "%s: object s3://%s/%s is not a part of "
				     "the chunk (want <chunk>/<20 digits> or "
				     "<chunk>/<20 digits>.crc); remove it",
				     what, s->cfg->bucket, o->key);
				rc = STRATA_ECORRUPT;
				break;
			}
			if (!data_len(framed, o->size, &len)) {
				errf(errmsg,
				     "%s: an object of %" PRIu64
				     " bytes is no whole number of checksummed "
				     "blocks (cut short or changed behind "
				     "Strata's back; restore it from a "
				     "backup): s3://%s/%s",
				     what, o->size, s->cfg->bucket, o->key);
				rc = STRATA_ECORRUPT;
				break;
			}
			/* An empty first object of the other format, left by
			 * the first write after checksum changed, goes
			 * first: it holds nothing. */
			bool stray = off == 0 && len == 0 && c->n > 0;
			uint64_t want = c->n == 0 ? 0 : c->len;
			if (off != want && !stray) {
				errf(errmsg,
				     "%s: object s3://%s/%s starts at %" PRIu64
				     " but the chunk's objects end at %" PRIu64
				     " (missing or extra object)",
				     what, s->cfg->bucket, o->key, off, want);
				rc = STRATA_ECORRUPT;
				break;
			}
			if (c->n == cap) {
				size_t ncap = cap == 0 ? 8 : cap * 2;
				struct part *v = s->host->realloc(
				        c->v, ncap * sizeof(*v));
				if (v == NULL) {
					errf(errmsg, "%s: out of memory", what);
					rc = STRATA_ENOMEM;
					break;
				}
				c->v = v;
				cap = ncap;
			}
			if (stray) {
				memmove(&c->v[1], &c->v[0],
				        c->n * sizeof(c->v[0]));
				c->v[0] = (struct part){0, 0, framed};
				c->n++;
			} else {
				c->v[c->n++] = (struct part){off, len, framed};
				c->len = off + len;
			}
			if (o->mtime_ns > c->mtime_ns) {
				c->mtime_ns = o->mtime_ns;
			}
		}
		if (rc == 0 && more) {
			if (pg.n == 0) {
				break; /* truncated with nothing: stop */
			}
			snprintf(marker, sizeof(marker), "%s",
			         pg.v[pg.n - 1].key);
		}
	}
	page_free(&pg);
	if (rc == 0 && c->n == 0) {
		errf(errmsg, "%s: no such chunk (no objects under s3://%s/%s)",
		     what, s->cfg->bucket, pfx);
		rc = STRATA_ENOENT;
	}
	if (rc != 0) {
		chunk_free(s, c);
	}
	return rc;
}

/* ---- ops ------------------------------------------------------------------
 */

int s3_store_create(struct s3_store *s, const char *name, char *errmsg)
{
	char what[WHAT_MAX];
	char key[KEY_MAX];
	struct chunk c;
	snprintf(what, sizeof(what), "create chunk %s", name);
	int rc = load_chunk(s, what, name, &c, errmsg);
	if (rc == 0) {
		errf(errmsg, "%s: it already exists (%" PRIu64 " bytes)", what,
		     c.len);
		chunk_free(s, &c);
		return STRATA_EEXIST;
	}
	if (rc != STRATA_ENOENT) {
		return rc;
	}
	if (!s3_store_key(s, name, 0, s->cfg->checksum, key, sizeof(key))) {
		errf(errmsg, "%s: key too long", what);
		return STRATA_EBADNAME;
	}
	return do_put(s, what, key, "", 0, true, errmsg);
}

/* PUT len bytes of buf as the object key: framed (a ".crc" key) or as
 * they are. */
static int put_data(struct s3_store *s, const char *what, const char *key,
                    bool framed, const void *buf, size_t len, char *errmsg)
{
	if (!framed || len == 0) {
		return do_put(s, what, key, buf, len, true, errmsg);
	}
	size_t flen = (size_t)s3_frame_size(len);
	char *fb = s->host->malloc(flen);
	if (fb == NULL) {
		errf(errmsg, "%s: out of memory (%zu bytes)", what, flen);
		return STRATA_ENOMEM;
	}
	s3_frame_encode(fb, buf, len);
	int rc = do_put(s, what, key, fb, flen, true, errmsg);
	s->host->free(fb);
	return rc;
}

/*
 * Data [from, from+n) of part p of chunk name into dst: a plain object's
 * bytes as they are; a framed one's whole blocks holding them, one ranged
 * GET, each block checked before a byte of it is used.
 */
static int read_part(struct s3_store *s, const char *what, const char *name,
                     const struct part *p, uint64_t from, size_t n, void *dst,
                     char *errmsg)
{
	char key[KEY_MAX];
	if (!part_key(s, name, p, key)) {
		errf(errmsg, "%s: key too long", what);
		return STRATA_EBADNAME;
	}
	if (!p->framed) {
		return do_get(s, what, key, from, dst, n, errmsg);
	}
	uint64_t boff, foff, flen;
	s3_frame_span(from, n, p->size, &boff, &foff, &flen);
	char *fb = s->host->malloc((size_t)flen);
	if (fb == NULL) {
		errf(errmsg, "%s: out of memory (%" PRIu64 " bytes)", what,
		     flen);
		return STRATA_ENOMEM;
	}
	int rc = do_get(s, what, key, foff, fb, (size_t)flen, errmsg);
	size_t bad = 0;
	if (rc == 0 && !s3_frame_decode(fb, (size_t)flen, fb, &bad)) {
		uint64_t at = boff + bad * S3_FRAME_BLOCK;
		uint64_t end = at + S3_FRAME_BLOCK;
		/* The cause first: a long key is what a cut message loses. */
		errf(errmsg,
		     "%s: fails its checksum at chunk bytes %" PRIu64
		     "..%" PRIu64 " (changed since it was written; restore "
		     "it from a backup): object s3://%s/%s",
		     what, p->off + at,
		     p->off + (end < p->size ? end : p->size), s->cfg->bucket,
		     key);
		s->host->counter_add(s->host, "checksum_failures", 1);
		rc = STRATA_ECORRUPT;
	}
	if (rc == 0) {
		memcpy(dst, fb + (from - boff), n);
	}
	s->host->free(fb);
	return rc;
}

/* Undo a PUT of key that failed without a clear "not stored" answer. */
static void undo_put(struct s3_store *s, const char *what, const char *key,
                     bool first)
{
	char ignored[STRATA_ERRMSG_SIZE];
	int rc = first ? do_put(s, what, key, "", 0, false, ignored)
	               : do_del(s, what, key, false, ignored);
	if (rc != 0) {
		s->host->log(s->host, STRATA_LOG_WARN,
		             "%s: could not undo the failed request on "
		             "s3://%s/%s (%s); it may still land",
		             what, s->cfg->bucket, key, ignored);
	}
}

int s3_store_write(struct s3_store *s, const char *name, uint64_t offset,
                   const void *buf, size_t len, char *errmsg)
{
	char what[WHAT_MAX];
	char key[KEY_MAX];
	struct chunk c;
	snprintf(what, sizeof(what), "write chunk %s", name);
	int rc = load_chunk(s, what, name, &c, errmsg);
	if (rc != 0) {
		if (rc == STRATA_ENOENT) {
			errf(errmsg, "%s: no such chunk (create it first)",
			     what);
		}
		return rc;
	}
	bool framed = s->cfg->checksum;
	if (offset != c.len) {
		errf(errmsg,
		     "%s at offset %" PRIu64 ": the chunk is %" PRIu64
		     " bytes long (appends go at its end)",
		     what, offset, c.len);
		rc = STRATA_EBADOFFSET;
	} else if (len == 0) {
		rc = 0;
	} else if (!s3_store_key(s, name, offset, framed, key, sizeof(key))) {
		errf(errmsg, "%s: key too long", what);
		rc = STRATA_EBADNAME;
	} else {
		rc = put_data(s, what, key, framed, buf, len, errmsg);
		if (rc != 0 && rc != STRATA_EPERM && rc != STRATA_ECONFIG &&
		    rc != STRATA_EINVAL) {
			undo_put(s, what, key, offset == 0);
		}
		if (rc == 0) {
			s->host->counter_add(s->host, "bytes_written", len);
		}
	}
	/* A first write replaced the empty first object of its own format
	 * only: one of the other format (checksum changed) goes now. */
	for (size_t i = 0; rc == 0 && len > 0 && offset == 0 && i < c.n; i++) {
		char err[STRATA_ERRMSG_SIZE];
		if (c.v[i].framed != framed && c.v[i].size == 0 &&
		    part_key(s, name, &c.v[i], key) &&
		    do_del(s, what, key, true, err) != 0) {
			s->host->log(s->host, STRATA_LOG_WARN,
			             "%s: could not delete the empty object "
			             "s3://%s/%s (%s); it is harmless",
			             what, s->cfg->bucket, key, err);
		}
	}
	chunk_free(s, &c);
	return rc;
}

int s3_store_read(struct s3_store *s, const char *name, uint64_t offset,
                  void *buf, size_t len, size_t *nread, char *errmsg)
{
	char what[WHAT_MAX];
	struct chunk c;
	*nread = 0;
	snprintf(what, sizeof(what), "read chunk %s", name);
	int rc = load_chunk(s, what, name, &c, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (offset > c.len) {
		errf(errmsg,
		     "%s at offset %" PRIu64 ": past its end (%" PRIu64
		     " bytes)",
		     what, offset, c.len);
		chunk_free(s, &c);
		return STRATA_ERANGE;
	}
	uint64_t want = c.len - offset < len ? c.len - offset : len;
	uint64_t pos = offset;
	uint64_t end = offset + want;
	for (size_t i = 0; rc == 0 && i < c.n && pos < end; i++) {
		const struct part *p = &c.v[i];
		if (p->off + p->size <= pos) {
			continue;
		}
		uint64_t from = pos - p->off;
		uint64_t n = p->size - from;
		if (n > end - pos) {
			n = end - pos;
		}
		rc = read_part(s, what, name, p, from, (size_t)n,
		               (char *)buf + (pos - offset), errmsg);
		pos += n;
	}
	chunk_free(s, &c);
	if (rc == 0) {
		*nread = (size_t)want;
		s->host->counter_add(s->host, "bytes_read", want);
	}
	return rc;
}

int s3_store_stat(struct s3_store *s, const char *name,
                  struct strata_tier2_chunk_info *info, char *errmsg)
{
	char what[WHAT_MAX];
	struct chunk c;
	snprintf(what, sizeof(what), "stat chunk %s", name);
	int rc = load_chunk(s, what, name, &c, errmsg);
	if (rc == 0) {
		info->length = c.len;
		info->mtime_ns = c.mtime_ns;
		chunk_free(s, &c);
	}
	return rc;
}

/* The chunk being assembled while a listing streams by. */
struct agg {
	char name[STRATA_TIER2_NAME_MAX + 1]; /* "" = none yet */
	struct strata_tier2_chunk_info info;
	bool bad; /* damaged: not contiguous from 0, or a bad frame size */
	char bad_key[KEY_MAX];
	const char *why; /* what is wrong with bad_key */
};

/* Hand the assembled chunk to cb. A damaged one is listed too, with
 * length 0 (nothing reads from it), so that callers that sweep or check
 * names see it; its reads and stats say what is wrong. */
static int agg_flush(struct s3_store *s, const char *what, struct agg *a,
                     strata_tier2_list_cb cb, void *arg)
{
	if (a->name[0] == '\0') {
		return 0;
	}
	if (a->bad) {
		s->host->log(s->host, STRATA_LOG_WARN,
		             "%s: chunk %s is damaged: object s3://%s/%s %s; "
		             "listed with length 0",
		             what, a->name, s->cfg->bucket, a->bad_key, a->why);
		a->info.length = 0;
	}
	return cb(arg, a->name, &a->info);
}

int s3_store_list(struct s3_store *s, const char *prefix,
                  strata_tier2_list_cb cb, void *arg, char *errmsg)
{
	char what[WHAT_MAX];
	char pfx[KEY_MAX];
	char marker[KEY_MAX] = "";
	struct page pg = {.host = s->host};
	struct agg *a = s->host->malloc(sizeof(*a));
	bool more = true;
	int rc = 0;
	snprintf(what, sizeof(what), "list prefix '%s'", prefix);
	if (a == NULL) {
		errf(errmsg, "%s: out of memory", what);
		return STRATA_ENOMEM;
	}
	a->name[0] = '\0';
	snprintf(pfx, sizeof(pfx), "%s%s", s->cfg->prefix, prefix);
	size_t base = strlen(s->cfg->prefix);
	while (more && rc == 0) {
		rc = list_page(s, what, pfx, marker, false, s->cfg->list_page,
		               &pg, &more, errmsg);
		for (size_t i = 0; rc == 0 && i < pg.n; i++) {
			const struct obj *o = &pg.v[i];
			const char *rel = o->key + base;
			const char *slash = strrchr(rel, '/');
			uint64_t off = 0;
			uint64_t len = 0;
			bool framed = false;
			if (strncmp(o->key, s->cfg->prefix, base) != 0 ||
			    slash == NULL || slash == rel ||
			    (size_t)(slash - rel) > STRATA_TIER2_NAME_MAX ||
			    !parse_off(slash + 1, &off, &framed)) {
				continue; /* not ours: ignored */
			}
			bool sized = data_len(framed, o->size, &len);
			size_t nlen = (size_t)(slash - rel);
			bool same = strncmp(a->name, rel, nlen) == 0 &&
			            a->name[nlen] == '\0';
			if (!same) {
				if ((rc = agg_flush(s, what, a, cb, arg)) !=
				    0) {
					break;
				}
				memcpy(a->name, rel, nlen);
				a->name[nlen] = '\0';
				a->info.length = 0;
				a->info.mtime_ns = 0;
				a->bad = false;
			}
			/* (an empty object at 0 is a stray, see load_chunk) */
			bool follows = off == a->info.length ||
			               (same && off == 0 && len == 0);
			if (!a->bad && (!sized || !follows)) {
				a->bad = true;
				snprintf(a->bad_key, sizeof(a->bad_key), "%s",
				         o->key);
				a->why = sized ? "does not follow its "
				                 "predecessor"
				               : "is no whole number of "
				                 "checksummed blocks";
			}
			if (!a->bad && (off > 0 || len > 0)) {
				a->info.length = off + len;
			}
			if (o->mtime_ns > a->info.mtime_ns) {
				a->info.mtime_ns = o->mtime_ns;
			}
		}
		if (rc == 0 && more) {
			if (pg.n == 0) {
				break;
			}
			snprintf(marker, sizeof(marker), "%s",
			         pg.v[pg.n - 1].key);
		}
	}
	if (rc == 0) {
		rc = agg_flush(s, what, a, cb, arg);
	}
	page_free(&pg);
	s->host->free(a);
	return rc;
}

int s3_store_truncate(struct s3_store *s, const char *name, uint64_t length,
                      char *errmsg)
{
	char what[WHAT_MAX];
	char key[KEY_MAX];
	struct chunk c;
	snprintf(what, sizeof(what), "truncate chunk %s", name);
	int rc = load_chunk(s, what, name, &c, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (length > c.len) {
		errf(errmsg,
		     "%s to %" PRIu64 " bytes: it is only %" PRIu64
		     " bytes long",
		     what, length, c.len);
		rc = STRATA_ERANGE;
		goto out;
	}
	/* Whole objects past the cut go first, last one first. */
	size_t k = c.n;
	while (k > 1 && c.v[k - 1].off >= length) {
		k--;
		if (!part_key(s, name, &c.v[k], key)) {
			rc = STRATA_EBADNAME;
			errf(errmsg, "%s: key too long", what);
			goto out;
		}
		if ((rc = do_del(s, what, key, true, errmsg)) != 0) {
			goto out;
		}
	}
	/* Then the object that straddles it (or the first, for 0). */
	const struct part *p = &c.v[k - 1];
	if (p->off + p->size > length) {
		size_t keep = (size_t)(length - p->off);
		char *buf = s->host->malloc(keep > 0 ? keep : 1);
		if (buf == NULL) {
			errf(errmsg, "%s: out of memory (%zu bytes)", what,
			     keep);
			rc = STRATA_ENOMEM;
			goto out;
		}
		part_key(s, name, p, key);
		rc = keep > 0
		             ? read_part(s, what, name, p, 0, keep, buf, errmsg)
		             : 0;
		if (rc == 0) {
			rc = put_data(s, what, key, p->framed, buf, keep,
			              errmsg);
		}
		s->host->free(buf);
	}
out:
	chunk_free(s, &c);
	return rc;
}

/* Delete every object of c, last first. */
static int delete_parts(struct s3_store *s, const char *what, const char *name,
                        const struct chunk *c, char *errmsg)
{
	char key[KEY_MAX];
	for (size_t i = c->n; i > 0; i--) {
		if (!part_key(s, name, &c->v[i - 1], key)) {
			errf(errmsg, "%s: key too long", what);
			return STRATA_EBADNAME;
		}
		int rc = do_del(s, what, key, true, errmsg);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

/* Delete every key directly under damaged chunk name, last first: its
 * layout is not to be trusted, so by key, not by part. */
static int remove_keys(struct s3_store *s, const char *what, const char *name,
                       char *errmsg)
{
	char pfx[KEY_MAX];
	char marker[KEY_MAX] = "";
	struct page pg = {.host = s->host};
	char **keys = NULL;
	size_t n = 0, cap = 0;
	bool more = true;
	int rc = 0;
	snprintf(pfx, sizeof(pfx), "%s%s/", s->cfg->prefix, name);
	while (more && rc == 0) {
		rc = list_page(s, what, pfx, marker, true, s->cfg->list_page,
		               &pg, &more, errmsg);
		for (size_t i = 0; rc == 0 && i < pg.n; i++) {
			if (n == cap) {
				cap = cap == 0 ? 8 : 2 * cap;
				char **v = s->host->realloc(keys,
				                            cap * sizeof(*v));
				if (v == NULL) {
					rc = STRATA_ENOMEM;
					break;
				}
				keys = v;
			}
			size_t len = strlen(pg.v[i].key) + 1;
			if ((keys[n] = s->host->malloc(len)) == NULL) {
				rc = STRATA_ENOMEM;
				break;
			}
			memcpy(keys[n++], pg.v[i].key, len);
		}
		if (rc == 0 && more) {
			if (pg.n == 0) {
				break;
			}
			snprintf(marker, sizeof(marker), "%s", keys[n - 1]);
		}
	}
	page_free(&pg);
	if (rc == STRATA_ENOMEM) {
		errf(errmsg, "%s: out of memory", what);
	}
	for (size_t i = n; rc == 0 && i > 0; i--) {
		rc = do_del(s, what, keys[i - 1], true, errmsg);
	}
	for (size_t i = 0; i < n; i++) {
		s->host->free(keys[i]);
	}
	s->host->free(keys);
	return rc;
}

int s3_store_remove(struct s3_store *s, const char *name, char *errmsg)
{
	char what[WHAT_MAX];
	struct chunk c;
	snprintf(what, sizeof(what), "delete chunk %s", name);
	int rc = load_chunk(s, what, name, &c, errmsg);
	if (rc == STRATA_ECORRUPT) {
		/* A damaged chunk is deleted too: else it blocks its
		 * container's garbage list (deletes go in order) for ever. */
		s->host->log(s->host, STRATA_LOG_WARN,
		             "%s: it is damaged (%s); deleting every object "
		             "under it",
		             what, errmsg);
		return remove_keys(s, what, name, errmsg);
	}
	if (rc != 0) {
		return rc;
	}
	rc = delete_parts(s, what, name, &c, errmsg);
	chunk_free(s, &c);
	return rc;
}

/* ---- concat -----------------------------------------------------------------
 */

/* One source object with bytes, in concat order. */
struct seg {
	size_t src;    /* index into sources */
	struct part p; /* the object */
};

/*
 * State of a multipart concat. The new object is framed when checksum is
 * on: its blocks then start at its own first byte, so a part can only be
 * a server-side copy of a framed source object whose data is a whole
 * number of blocks (or the last part); the rest moves through this
 * process, checked on the way in and framed on the way out, in parts of
 * a whole number of blocks.
 */
struct mp {
	struct s3_store *s;
	const char *what;
	const char *key; /* the new object */
	bool framed;     /* it is (".crc") */
	char id[1024];   /* upload id */
	struct s3_part *parts;
	size_t n, cap;
	char *pend; /* data waiting to be uploaded as one part */
	size_t pend_len;
	size_t pend_cap;    /* a full part: multipart_min_part, in whole
	                       blocks when framed */
	char *fbuf;         /* pend framed (framed only) */
	bool no_copy;       /* no UploadPartCopy: upload the bytes instead */
	bool no_range_copy; /* no ranged UploadPartCopy: likewise */
};

static int mp_next(struct mp *m, char *errmsg)
{
	if (m->n == MAX_PARTS) {
		errf(errmsg,
		     "%s: more than %d multipart parts needed; raise "
		     "multipart_min_part",
		     m->what, MAX_PARTS);
		return STRATA_ETOOBIG;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap == 0 ? 16 : m->cap * 2;
		struct s3_part *v =
		        m->s->host->realloc(m->parts, cap * sizeof(*v));
		if (v == NULL) {
			errf(errmsg, "%s: out of memory", m->what);
			return STRATA_ENOMEM;
		}
		m->parts = v;
		m->cap = cap;
	}
	m->parts[m->n].number = (int)m->n + 1;
	m->parts[m->n].etag[0] = '\0';
	return 0;
}

static int mp_copy(struct mp *m, const char *src, uint64_t first, uint64_t last,
                   char *errmsg)
{
	struct s3_store *s = m->s;
	int rc = mp_next(m, errmsg);
	if (rc != 0) {
		return rc;
	}
	struct s3_part *p = &m->parts[m->n];
	struct s3_result res;
	struct try t;
	try_init(s, &t, src);
	do {
		rc = s->ops->mp_copy(s->t, m->key, m->id, p->number, src, first,
		                     last, p->etag, sizeof(p->etag), &res);
	} while (rc != 0 && again(s, &t, rc, &res));
	if (rc != 0) {
		return report(s, errmsg, m->what, "UploadPartCopy", src, rc,
		              &res, &t);
	}
	m->n++;
	return 0;
}

static int mp_flush(struct mp *m, char *errmsg)
{
	struct s3_store *s = m->s;
	if (m->pend_len == 0) {
		return 0;
	}
	int rc = mp_next(m, errmsg);
	if (rc != 0) {
		return rc;
	}
	struct s3_part *p = &m->parts[m->n];
	struct s3_result res;
	struct try t;
	const char *body = m->pend;
	size_t len = m->pend_len;
	if (m->framed) {
		s3_frame_encode(m->fbuf, m->pend, m->pend_len);
		body = m->fbuf;
		len = (size_t)s3_frame_size(m->pend_len);
	}
	try_init(s, &t, m->key);
	do {
		rc = s->ops->mp_upload(s->t, m->key, m->id, p->number, body,
		                       len, p->etag, sizeof(p->etag), &res);
	} while (rc != 0 && again(s, &t, rc, &res));
	if (rc != 0) {
		return report(s, errmsg, m->what, "UploadPart", m->key, rc,
		              &res, &t);
	}
	m->n++;
	m->pend_len = 0;
	return 0;
}

/* May bytes [a, a+n) of g (left of it from a on) be a server-side copy? */
static bool mp_can_copy(const struct mp *m, const struct seg *g, uint64_t a,
                        uint64_t n, uint64_t left, bool last_seg)
{
	bool whole = a == 0 && n == g->p.size;
	if (m->no_copy || m->pend_len > 0 ||
	    (left < m->s->cfg->multipart_min_part && !last_seg) ||
	    g->p.framed != m->framed) {
		return false;
	}
	if (m->framed) {
		return whole && s3_frame_size(n) <= MAX_COPY_PART &&
		       (n % S3_FRAME_BLOCK == 0 || last_seg);
	}
	return whole || !m->no_range_copy;
}

/* Feed the multipart upload the segments, respecting min/max part sizes. */
static int mp_feed(struct mp *m, const char *const *sources,
                   const struct seg *segs, size_t nseg, char *errmsg)
{
	struct s3_store *s = m->s;
	uint64_t min = s->cfg->multipart_min_part;
	char key[KEY_MAX];
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < nseg; i++) {
		const struct seg *g = &segs[i];
		bool last_seg = i + 1 == nseg;
		if (!part_key(s, sources[g->src], &g->p, key)) {
			errf(errmsg, "%s: key too long", m->what);
			return STRATA_EBADNAME;
		}
		uint64_t a = 0;
		while (rc == 0 && a < g->p.size) {
			uint64_t left = g->p.size - a;
			uint64_t n = left;
			if (n > MAX_COPY_PART) {
				n = left - MAX_COPY_PART >= min ? MAX_COPY_PART
				                                : left - min;
			}
			bool whole = a == 0 && n == g->p.size;
			if (mp_can_copy(m, g, a, n, left, last_seg)) {
				rc = whole ? mp_copy(m, key, 0, UINT64_MAX,
				                     errmsg)
				           : mp_copy(m, key, a, a + n - 1,
				                     errmsg);
				if (rc == STRATA_ENOTSUP) {
					/* No UploadPartCopy (s3rver 3.7), or
					 * no correctly signed ranged one
					 * (libcurl < 8.10): move those bytes
					 * through this process instead, in
					 * min-part pieces. */
					s->host->log(s->host, STRATA_LOG_INFO,
					             "%s: %s; copying through "
					             "this process",
					             m->what, errmsg);
					if (whole) {
						m->no_copy = true;
					} else {
						m->no_range_copy = true;
					}
					rc = 0;
					continue;
				}
				a += n;
				continue;
			}
			uint64_t take = m->pend_cap - m->pend_len;
			if (take > left) {
				take = left;
			}
			rc = read_part(s, m->what, sources[g->src], &g->p, a,
			               (size_t)take, m->pend + m->pend_len,
			               errmsg);
			m->pend_len += (size_t)take;
			a += take;
			if (rc == 0 && m->pend_len == m->pend_cap) {
				rc = mp_flush(m, errmsg);
			}
		}
	}
	if (rc == 0) {
		rc = mp_flush(m, errmsg);
	}
	return rc;
}

/* SigV4: all segments into one new object key, atomically. */
static int concat_multipart(struct s3_store *s, const char *what,
                            const char *target, uint64_t tlen, uint64_t total,
                            const char *const *sources, const struct seg *segs,
                            size_t nseg, char *errmsg)
{
	char key[KEY_MAX];
	struct mp m = {
	        .s = s, .what = what, .key = key, .framed = s->cfg->checksum};
	struct s3_result res;
	struct try t;
	int rc;
	if (!s3_store_key(s, target, tlen, m.framed, key, sizeof(key))) {
		errf(errmsg, "%s: key too long", what);
		return STRATA_EBADNAME;
	}
	uint64_t cap = s->cfg->multipart_min_part;
	if (m.framed) {
		cap = (cap + S3_FRAME_BLOCK - 1) / S3_FRAME_BLOCK *
		      S3_FRAME_BLOCK;
	}
	m.pend_cap = (size_t)cap;
	cap = cap < total ? cap : total;
	m.pend = s->host->malloc((size_t)cap + 1);
	m.fbuf = m.framed ? s->host->malloc((size_t)s3_frame_size(cap) + 1)
	                  : NULL;
	if (m.pend == NULL || (m.framed && m.fbuf == NULL)) {
		errf(errmsg, "%s: out of memory", what);
		rc = STRATA_ENOMEM;
		goto out;
	}
	try_init(s, &t, key);
	do {
		rc = s->ops->mp_create(s->t, key, m.id, sizeof(m.id), &res);
	} while (rc != 0 && again(s, &t, rc, &res));
	if (rc != 0) {
		rc = report(s, errmsg, what, "CreateMultipartUpload", key, rc,
		            &res, &t);
		goto out;
	}
	rc = mp_feed(&m, sources, segs, nseg, errmsg);
	if (rc == 0) {
		try_init(s, &t, key);
		do {
			rc = s->ops->mp_complete(s->t, key, m.id, m.parts, m.n,
			                         &res);
		} while (rc != 0 && again(s, &t, rc, &res));
		if (rc != 0 && t.attempts > 1 &&
		    code_is(&res, "NoSuchUpload")) {
			/* An earlier attempt completed it; check. */
			struct chunk c;
			char tmp[STRATA_ERRMSG_SIZE];
			if (load_chunk(s, what, target, &c, tmp) == 0) {
				if (c.len == tlen + total) {
					rc = 0;
				}
				chunk_free(s, &c);
			}
		}
		if (rc != 0) {
			rc = report(s, errmsg, what, "CompleteMultipartUpload",
			            key, rc, &res, &t);
		}
	}
	if (rc != 0) {
		struct s3_result ares;
		if (s->ops->mp_abort(s->t, key, m.id, &ares) != 0) {
			s->host->log(s->host, STRATA_LOG_WARN,
			             "%s: could not abort multipart upload %s "
			             "of s3://%s/%s (%s); a bucket lifecycle "
			             "rule for incomplete uploads cleans it",
			             what, m.id, s->cfg->bucket, key,
			             ares.detail);
		}
	}
out:
	s->host->free(m.pend);
	s->host->free(m.fbuf);
	s->host->free(m.parts);
	return rc;
}

/* SigV2: one CopyObject per segment (each keeps its format), undone on
 * error. */
static int concat_copy(struct s3_store *s, const char *what, const char *target,
                       uint64_t tlen, const char *const *sources,
                       const struct seg *segs, size_t nseg, char *errmsg)
{
	char src[KEY_MAX];
	char dst[KEY_MAX];
	uint64_t at = tlen;
	size_t done = 0;
	int rc = 0;
	for (; done < nseg; done++) {
		const struct seg *g = &segs[done];
		if (!part_key(s, sources[g->src], &g->p, src) ||
		    !s3_store_key(s, target, at, g->p.framed, dst,
		                  sizeof(dst))) {
			errf(errmsg, "%s: key too long", what);
			rc = STRATA_EBADNAME;
			break;
		}
		struct s3_result res;
		struct try t;
		try_init(s, &t, dst);
		do {
			rc = s->ops->copy(s->t, src, dst, &res);
		} while (rc != 0 && again(s, &t, rc, &res));
		if (rc != 0) {
			rc = report(s, errmsg, what, "PUT (copy)", dst, rc,
			            &res, &t);
			undo_put(s, what, dst, at == 0);
			break;
		}
		at += g->p.size;
	}
	if (rc != 0) {
		/* Remove the copies already made, last first. */
		for (size_t i = done; i > 0; i--) {
			at -= segs[i - 1].p.size;
			s3_store_key(s, target, at, segs[i - 1].p.framed, dst,
			             sizeof(dst));
			undo_put(s, what, dst, at == 0);
		}
	}
	return rc;
}

int s3_store_concat(struct s3_store *s, const char *target,
                    const char *const *sources, size_t n, char *errmsg)
{
	char what[WHAT_MAX];
	struct chunk tc;
	struct chunk *sc = NULL;
	struct seg *segs = NULL;
	size_t nseg = 0;
	size_t loaded = 0;
	uint64_t total = 0;
	snprintf(what, sizeof(what), "concat into chunk %s", target);
	int rc = load_chunk(s, what, target, &tc, errmsg);
	if (rc != 0) {
		return rc;
	}
	sc = s->host->malloc((n + 1) * sizeof(*sc));
	if (sc == NULL) {
		errf(errmsg, "%s: out of memory", what);
		rc = STRATA_ENOMEM;
		goto out;
	}
	size_t nparts = 0;
	for (; loaded < n; loaded++) {
		if (strcmp(sources[loaded], target) == 0) {
			errf(errmsg, "%s: it is also a source", what);
			rc = STRATA_EINVAL;
			goto out;
		}
		rc = load_chunk(s, what, sources[loaded], &sc[loaded], errmsg);
		if (rc == STRATA_ENOENT) {
			errf(errmsg, "%s: source chunk %s does not exist", what,
			     sources[loaded]);
		}
		if (rc != 0) {
			goto out;
		}
		nparts += sc[loaded].n;
	}
	segs = s->host->malloc((nparts + 1) * sizeof(*segs));
	if (segs == NULL) {
		errf(errmsg, "%s: out of memory", what);
		rc = STRATA_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < sc[i].n; j++) {
			if (sc[i].v[j].size > 0) {
				segs[nseg++] = (struct seg){i, sc[i].v[j]};
				total += sc[i].v[j].size;
			}
		}
	}
	if (nseg > 0) {
		rc = s->ops->mp_create != NULL
		             ? concat_multipart(s, what, target, tc.len, total,
		                                sources, segs, nseg, errmsg)
		             : concat_copy(s, what, target, tc.len, sources,
		                           segs, nseg, errmsg);
		if (rc != 0) {
			goto out;
		}
	}
	/* The target is complete: the sources go. A failure here leaves a
	 * source behind (a prefix of it, as deletes go last object first)
	 * but the concat itself happened, so it is logged, not returned. */
	for (size_t i = 0; i < n; i++) {
		char err[STRATA_ERRMSG_SIZE];
		if (delete_parts(s, what, sources[i], &sc[i], err) != 0) {
			s->host->log(s->host, STRATA_LOG_WARN,
			             "%s: done, but source chunk %s was not "
			             "fully deleted: %s; delete it by hand",
			             what, sources[i], err);
		}
	}
out:
	for (size_t i = 0; i < loaded && sc != NULL; i++) {
		chunk_free(s, &sc[i]);
	}
	s->host->free(sc);
	s->host->free(segs);
	chunk_free(s, &tc);
	return rc;
}
