/* The s3 plugin's SigV2 transport: Debian's libs3 (2011), object ops only. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include <curl/curl.h>
#include <libs3.h>

#include "plugins/tier2/s3/s3_transport.h"

/*
 * libs3 2.0 signs with SigV2 and has put/get/delete/list but no multipart
 * upload, so this transport leaves the multipart ops NULL (the plugin then
 * reports concat as unsupported). libs3 has no timeouts of its own beyond
 * "less than 1 KiB/s for 15 s", so each request runs in its own
 * S3RequestContext driven here with select(): a request that makes no
 * progress (no callback) for io_timeout_ms is destroyed and reported as a
 * timeout. libs3 never verifies TLS certificates (it sets
 * CURLOPT_SSL_VERIFYPEER to 0); open() warns when https is used with it.
 * S3_initialize is process-global: reference-counted under a mutex.
 */

struct l3 {
	const struct strata_host *host; /* borrowed until destroy */
	const struct s3_config *cfg;    /* borrowed until destroy */
	S3BucketContext bucket;         /* strings point into cfg */
};

static int init_refs; /* open transports; S3_initialize while > 0 */

/* One request's state, shared with the libs3 callbacks. */
struct call {
	struct l3 *l;
	S3Status status;   /* from the complete callback */
	bool done;         /* complete callback ran */
	char message[160]; /* errorDetails->message */
	uint64_t progress; /* bumped by every callback */
	/* put */
	const char *body;
	size_t body_len, body_pos;
	/* get */
	char *out;
	size_t out_cap, out_len;
	bool overflow;
	/* list */
	s3_list_page_cb cb;
	void *arg;
	int cb_rc;
	bool truncated;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static S3Status on_props(const S3ResponseProperties *p, void *data)
{
	(void)p;
	struct call *c = data;
	c->progress++;
	return S3StatusOK;
}

static void on_complete(S3Status status, const S3ErrorDetails *e, void *data)
{
	struct call *c = data;
	c->status = status;
	c->done = true;
	c->progress++;
	if (e != NULL && e->message != NULL) {
		snprintf(c->message, sizeof(c->message), "%s", e->message);
	}
}

static int on_put_data(int size, char *buf, void *data)
{
	struct call *c = data;
	size_t n = c->body_len - c->body_pos;
	if (n > (size_t)size) {
		n = (size_t)size;
	}
	memcpy(buf, c->body + c->body_pos, n);
	c->body_pos += n;
	c->progress++;
	return (int)n;
}

static S3Status on_get_data(int size, const char *buf, void *data)
{
	struct call *c = data;
	size_t n = (size_t)size;
	c->progress++;
	if (n > c->out_cap - c->out_len) {
		c->overflow = true;
		return S3StatusAbortedByCallback;
	}
	memcpy(c->out + c->out_len, buf, n);
	c->out_len += n;
	return S3StatusOK;
}

static S3Status on_list(int truncated, const char *next_marker, int count,
                        const S3ListBucketContent *contents, int nprefixes,
                        const char **prefixes, void *data)
{
	(void)next_marker;
	(void)nprefixes;
	(void)prefixes;
	struct call *c = data;
	c->progress++;
	c->truncated = truncated != 0;
	if (count <= 0) {
		return S3StatusOK;
	}
	struct s3_object *objs =
	        c->l->host->malloc((size_t)count * sizeof(*objs));
	if (objs == NULL) {
		c->cb_rc = STRATA_ENOMEM;
		return S3StatusAbortedByCallback;
	}
	for (int i = 0; i < count; i++) {
		objs[i] = (struct s3_object){
		        .key = contents[i].key,
		        .size = contents[i].size,
		        .mtime_ns = contents[i].lastModified > 0
		                            ? contents[i].lastModified *
		                                      1000000000LL
		                            : 0,
		};
	}
	c->cb_rc = c->cb(c->arg, objs, (size_t)count);
	c->l->host->free(objs);
	return c->cb_rc != 0 ? S3StatusAbortedByCallback : S3StatusOK;
}

/* The HTTP status S3 uses for a libs3 error status; 0 if unknown. */
static int http_of(S3Status s)
{
	switch (s) {
	case S3StatusErrorNoSuchKey:
	case S3StatusErrorNoSuchBucket:
	case S3StatusHttpErrorNotFound:
		return 404;
	case S3StatusErrorAccessDenied:
	case S3StatusErrorSignatureDoesNotMatch:
	case S3StatusErrorInvalidAccessKeyId:
	case S3StatusHttpErrorForbidden:
		return 403;
	case S3StatusErrorInternalError:
		return 500;
	case S3StatusErrorSlowDown:
		return 503;
	case S3StatusErrorNotImplemented:
		return 501;
	case S3StatusErrorInvalidRange:
		return 416;
	case S3StatusHttpErrorConflict:
		return 409;
	case S3StatusHttpErrorMovedTemporarily:
		return 307;
	case S3StatusErrorRequestTimeout:
	case S3StatusHttpErrorBadRequest:
		return 400;
	case S3StatusHttpErrorUnknown:
		return 500; /* libs3's catch-all for status codes it lacks */
	default:
		return 0;
	}
}

/* Fill res from a finished call; 0 when it succeeded. */
static int outcome(struct call *c, bool timed_out, struct s3_result *res)
{
	memset(res, 0, sizeof(*res));
	if (timed_out) {
		res->net = S3_NET_TIMEOUT;
		snprintf(res->detail, sizeof(res->detail),
		         "no progress for %llu ms",
		         (unsigned long long)c->l->cfg->io_timeout_ms);
		return STRATA_EIO;
	}
	if (c->status == S3StatusOK && !c->overflow) {
		return 0;
	}
	const char *name = S3_get_status_name(c->status);
	switch (c->status) {
	case S3StatusOK:
		res->net = S3_NET_PROTO;
		snprintf(res->detail, sizeof(res->detail),
		         "the server sent more bytes than the range asked for");
		return STRATA_EIO;
	case S3StatusNameLookupError:
		res->net = S3_NET_RESOLVE;
		break;
	case S3StatusFailedToConnect:
		res->net = S3_NET_REFUSED;
		break;
	case S3StatusConnectionFailed:
	case S3StatusInterrupted:
		res->net = S3_NET_BROKEN;
		break;
	case S3StatusServerFailedVerification:
		res->net = S3_NET_TLS;
		break;
	case S3StatusXmlParseFailure:
		res->net = S3_NET_PROTO;
		break;
	case S3StatusOutOfMemory:
		res->net = S3_NET_LOCAL;
		snprintf(res->detail, sizeof(res->detail), "out of memory");
		return STRATA_ENOMEM;
	case S3StatusAbortedByCallback:
		res->net = S3_NET_LOCAL;
		res->http = c->cb_rc; /* the callback's value, for s3_store */
		snprintf(res->detail, sizeof(res->detail),
		         "stopped by its callback");
		return c->cb_rc == STRATA_ENOMEM ? STRATA_ENOMEM : STRATA_EIO;
	default:
		if (c->status >= S3StatusErrorAccessDenied) {
			res->http = http_of(c->status);
			if (strncmp(name, "Error", 5) == 0 &&
			    c->status != S3StatusErrorUnknown) {
				snprintf(res->code, sizeof(res->code), "%s",
				         name + 5);
			}
		} else {
			res->net = S3_NET_LOCAL;
		}
		break;
	}
	snprintf(res->detail, sizeof(res->detail), "%s",
	         c->message[0] != '\0' ? c->message : name);
	return STRATA_EIO;
}

typedef void (*issue_fn)(struct call *c, S3RequestContext *ctx, const void *a);

/* Run one request in its own context with a progress deadline. */
static int run(struct l3 *l, struct call *c, issue_fn issue, const void *a,
               struct s3_result *res)
{
	S3RequestContext *ctx = NULL;
	S3Status st = S3_create_request_context(&ctx);
	if (st != S3StatusOK) {
		memset(res, 0, sizeof(*res));
		res->net = S3_NET_LOCAL;
		snprintf(res->detail, sizeof(res->detail),
		         "S3_create_request_context: %s",
		         S3_get_status_name(st));
		return st == S3StatusOutOfMemory ? STRATA_ENOMEM : STRATA_EIO;
	}
	c->l = l;
	issue(c, ctx, a);
	uint64_t seen = c->progress;
	uint64_t last = now_ms();
	bool timed_out = false;
	for (;;) {
		int remaining = 0;
		st = S3_runonce_request_context(ctx, &remaining);
		if (c->progress != seen) {
			seen = c->progress;
			last = now_ms();
		}
		if (st != S3StatusOK || remaining == 0 || c->done) {
			break;
		}
		if (now_ms() - last > l->cfg->io_timeout_ms) {
			timed_out = true;
			break;
		}
		fd_set r, w, e;
		int maxfd = -1;
		FD_ZERO(&r);
		FD_ZERO(&w);
		FD_ZERO(&e);
		S3_get_request_context_fdsets(ctx, &r, &w, &e, &maxfd);
		int64_t to = S3_get_request_context_timeout(ctx);
		if (to < 0 || to > 50) {
			to = 50;
		}
		struct timeval tv = {0, (long)to * 1000};
		if (maxfd >= 0 && maxfd < FD_SETSIZE) {
			select(maxfd + 1, &r, &w, &e, &tv);
		} else {
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
	}
	S3_destroy_request_context(ctx); /* interrupts what is left */
	if (!c->done && !timed_out) {
		c->status = st != S3StatusOK ? st : S3StatusInterrupted;
	}
	return outcome(c, timed_out, res);
}

struct put_args {
	const char *key;
};

static void issue_put(struct call *c, S3RequestContext *ctx, const void *a)
{
	const struct put_args *p = a;
	S3PutObjectHandler h = {{on_props, on_complete}, on_put_data};
	S3PutProperties props;
	memset(&props, 0, sizeof(props));
	props.contentType = "application/octet-stream";
	props.expires = -1;
	S3_put_object(&c->l->bucket, p->key, c->body_len, &props, ctx, &h, c);
}

static int l3_put(void *t, const char *key, const void *buf, size_t len,
                  struct s3_result *res)
{
	struct call c = {.body = buf, .body_len = len};
	struct put_args a = {key};
	return run(t, &c, issue_put, &a, res);
}

struct get_args {
	const char *key;
	uint64_t off;
	size_t len;
};

static void issue_get(struct call *c, S3RequestContext *ctx, const void *a)
{
	const struct get_args *g = a;
	S3GetObjectHandler h = {{on_props, on_complete}, on_get_data};
	S3_get_object(&c->l->bucket, g->key, NULL, g->off, g->len, ctx, &h, c);
}

static int l3_get(void *t, const char *key, uint64_t off, size_t len, void *buf,
                  size_t *nread, struct s3_result *res)
{
	*nread = 0;
	if (len == 0) {
		return 0;
	}
	struct call c = {.out = buf, .out_cap = len};
	struct get_args a = {key, off, len};
	int rc = run(t, &c, issue_get, &a, res);
	*nread = c.out_len;
	return rc;
}

static void issue_del(struct call *c, S3RequestContext *ctx, const void *a)
{
	S3ResponseHandler h = {on_props, on_complete};
	S3_delete_object(&c->l->bucket, (const char *)a, ctx, &h, c);
}

static int l3_del(void *t, const char *key, struct s3_result *res)
{
	struct call c = {0};
	int rc = run(t, &c, issue_del, key, res);
	if (rc != 0 && res->http == 404 &&
	    strcmp(res->code, "NoSuchKey") == 0) {
		return 0; /* S3 says 204 here; some stores say 404 */
	}
	return rc;
}

struct copy_args {
	const char *src;
	const char *dst;
};

static void issue_copy(struct call *c, S3RequestContext *ctx, const void *a)
{
	const struct copy_args *g = a;
	S3ResponseHandler h = {on_props, on_complete};
	S3_copy_object(&c->l->bucket, g->src, c->l->bucket.bucketName, g->dst,
	               NULL, NULL, 0, NULL, ctx, &h, c);
}

static int l3_copy(void *t, const char *src_key, const char *key,
                   struct s3_result *res)
{
	struct call c = {0};
	struct copy_args a = {src_key, key};
	return run(t, &c, issue_copy, &a, res);
}

struct list_args {
	const char *prefix;
	const char *marker;
	bool direct_only;
	int max_keys;
};

static void issue_list(struct call *c, S3RequestContext *ctx, const void *a)
{
	const struct list_args *g = a;
	S3ListBucketHandler h = {{on_props, on_complete}, on_list};
	S3_list_bucket(&c->l->bucket, g->prefix,
	               g->marker[0] != '\0' ? g->marker : NULL,
	               g->direct_only ? "/" : NULL, g->max_keys, ctx, &h, c);
}

static int l3_list(void *t, const char *prefix, const char *marker,
                   bool direct_only, int max_keys, s3_list_page_cb cb,
                   void *arg, bool *truncated, struct s3_result *res)
{
	struct call c = {.cb = cb, .arg = arg};
	struct list_args a = {prefix, marker, direct_only, max_keys};
	int rc = run(t, &c, issue_list, &a, res);
	*truncated = c.truncated;
	return rc;
}

static void l3_destroy(void *t)
{
	struct l3 *l = t;
	pthread_mutex_lock(&s3_global_lock);
	if (--init_refs == 0) {
		S3_deinitialize();
		/* libs3 2.0 calls curl_global_init but never the cleanup. */
		curl_global_cleanup();
	}
	pthread_mutex_unlock(&s3_global_lock);
	l->host->free(l);
}

static const struct s3_transport_ops libs3_ops = {
        .name = "v2",
        .destroy = l3_destroy,
        .put = l3_put,
        .get = l3_get,
        .copy = l3_copy,
        .del = l3_del,
        .list = l3_list,
};

int s3_libs3_new(const struct strata_host *host, const struct s3_config *cfg,
                 void **t, const struct s3_transport_ops **ops, char *errmsg)
{
	struct l3 *l = host->malloc(sizeof(*l));
	if (l == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "open: out of memory");
		return STRATA_ENOMEM;
	}
	memset(l, 0, sizeof(*l));
	pthread_mutex_lock(&s3_global_lock);
	if (init_refs == 0) {
		S3Status st = S3_initialize("strata-tier2-s3", S3_INIT_ALL,
		                            cfg->host);
		if (st != S3StatusOK) {
			pthread_mutex_unlock(&s3_global_lock);
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "open: S3_initialize (libs3) failed: %s",
			         S3_get_status_name(st));
			host->free(l);
			return STRATA_EINTERNAL;
		}
	}
	init_refs++;
	pthread_mutex_unlock(&s3_global_lock);
	l->host = host;
	l->cfg = cfg;
	l->bucket = (S3BucketContext){
	        .hostName = cfg->host,
	        .bucketName = cfg->bucket,
	        .protocol = cfg->https ? S3ProtocolHTTPS : S3ProtocolHTTP,
	        .uriStyle = cfg->path_style ? S3UriStylePath
	                                    : S3UriStyleVirtualHost,
	        .accessKeyId = cfg->access_key,
	        .secretAccessKey = cfg->secret_key,
	};
	*t = l;
	*ops = &libs3_ops;
	return 0;
}
