/* The s3 plugin's request transports (SigV4 curl, SigV2 libs3): one API. */
#ifndef PLUGINS_TIER2_S3_S3_TRANSPORT_H
#define PLUGINS_TIER2_S3_S3_TRANSPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugins/tier2/s3/s3_config.h"
#include "strata/plugin.h"

/*
 * A transport performs ONE S3 request per call, with no retries and no
 * interpretation beyond success or failure: s3_store.c decides what a
 * failure means (retry, which Strata error, which message). Every op
 * returns 0 on a 2xx answer, STRATA_ENOMEM when it could not allocate, or
 * STRATA_EIO for anything else, and then fills *res. All string arguments
 * are borrowed for the call. Ops are thread-safe: several threads may call
 * them at once on one transport.
 */

/* Why a request got no HTTP answer. */
enum s3_net {
	S3_NET_NONE = 0, /* the server answered: see http/code */
	S3_NET_REFUSED,  /* connection refused or reset while connecting */
	S3_NET_TIMEOUT,  /* connect or transfer stalled past the timeouts */
	S3_NET_RESOLVE,  /* host name did not resolve */
	S3_NET_TLS,      /* TLS handshake or certificate failure */
	S3_NET_BROKEN,   /* connection broke mid-request (send/recv error) */
	S3_NET_PROTO,    /* the answer was not valid HTTP/XML */
	S3_NET_LOCAL,    /* local failure (out of memory, bad request) */
};

/* The outcome of one failed request. */
struct s3_result {
	int http;         /* HTTP status, 0 when unknown */
	enum s3_net net;  /* transport-level failure class */
	char code[64];    /* S3 error code ("NoSuchKey"), "" if none */
	char detail[160]; /* server message or transport error text */
};

/* One object of a listing; borrowed for the callback only. */
struct s3_object {
	const char *key;  /* full key */
	uint64_t size;    /* bytes */
	int64_t mtime_ns; /* LastModified, ns since the epoch; 0 unknown */
};

/* Called with the objects of a listing page, possibly in several calls;
 * non-zero aborts the listing: the transport then returns STRATA_ENOMEM if
 * that was the value, else STRATA_EIO with net LOCAL. */
typedef int (*s3_list_page_cb)(void *arg, const struct s3_object *objs,
                               size_t n);

/* One part of a multipart upload, for complete. */
struct s3_part {
	int number;     /* 1..10000 */
	char etag[128]; /* as the server returned it, quotes included */
};

/* The transport interface. Multipart ops are NULL when unsupported. */
struct s3_transport_ops {
	const char *name; /* "sigv4" or "v2" */
	/* Free the transport; no request is in flight. */
	void (*destroy)(void *t);
	/* PUT the whole object key = len bytes of buf. */
	int (*put)(void *t, const char *key, const void *buf, size_t len,
	           struct s3_result *res);
	/* GET bytes [off, off+len) of key into buf; *nread = bytes got. */
	int (*get)(void *t, const char *key, uint64_t off, size_t len,
	           void *buf, size_t *nread, struct s3_result *res);
	/* CopyObject src_key to key (whole object, same bucket). */
	int (*copy)(void *t, const char *src_key, const char *key,
	            struct s3_result *res);
	/* DELETE key (a missing key is success, as in S3). */
	int (*del)(void *t, const char *key, struct s3_result *res);
	/*
	 * One page of ListObjects (v1): keys starting with prefix and
	 * greater than marker ("" = from the start), at most max_keys,
	 * delimiter "/" when direct_only (keys with a further '/' after
	 * prefix are left out). cb gets the page; *truncated says whether
	 * more follow (continue with the last key as marker).
	 */
	int (*list)(void *t, const char *prefix, const char *marker,
	            bool direct_only, int max_keys, s3_list_page_cb cb,
	            void *arg, bool *truncated, struct s3_result *res);
	/* CreateMultipartUpload for key; the upload id goes into id. */
	int (*mp_create)(void *t, const char *key, char *id, size_t id_size,
	                 struct s3_result *res);
	/* UploadPartCopy: bytes [first, last] (inclusive) of src_key become
	 * part number of upload id of key; the part's ETag into etag.
	 * last == UINT64_MAX copies the whole object (no range header). A
	 * transport that cannot send a range fails with http 501 and code
	 * NotImplemented, without a request. */
	int (*mp_copy)(void *t, const char *key, const char *id, int number,
	               const char *src_key, uint64_t first, uint64_t last,
	               char *etag, size_t etag_size, struct s3_result *res);
	/* UploadPart: len bytes of buf become part number; ETag into etag. */
	int (*mp_upload)(void *t, const char *key, const char *id, int number,
	                 const void *buf, size_t len, char *etag,
	                 size_t etag_size, struct s3_result *res);
	/* CompleteMultipartUpload with parts[0..n) in order. */
	int (*mp_complete)(void *t, const char *key, const char *id,
	                   const struct s3_part *parts, size_t n,
	                   struct s3_result *res);
	/* AbortMultipartUpload. */
	int (*mp_abort)(void *t, const char *key, const char *id,
	                struct s3_result *res);
};

/*
 * Create the SigV4 transport (libcurl, CURLOPT_AWS_SIGV4) or the SigV2 one
 * (libs3) for cfg, which is borrowed until destroy. *t is the transport,
 * *ops its table. Errors: STRATA_ENOMEM, STRATA_EINTERNAL (library
 * initialisation failed), with errmsg set.
 */
int s3_curl_new(const struct strata_host *host, const struct s3_config *cfg,
                void **t, const struct s3_transport_ops **ops, char *errmsg);
int s3_libs3_new(const struct strata_host *host, const struct s3_config *cfg,
                 void **t, const struct s3_transport_ops **ops, char *errmsg);

/* Serialises the process-global library set-up of both transports
 * (curl_global_init/cleanup, S3_initialize/deinitialize). */
extern pthread_mutex_t s3_global_lock;

/* Percent-encode s per SigV4 (unreserved A-Za-z0-9-_.~ kept; '/' kept
 * when keep_slash) into out of size bytes; false when it does not fit. */
bool s3_uri_encode(const char *s, bool keep_slash, char *out, size_t size);

#endif /* PLUGINS_TIER2_S3_S3_TRANSPORT_H */
