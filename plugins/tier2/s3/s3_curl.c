/* The s3 plugin's SigV4 transport: libcurl with CURLOPT_AWS_SIGV4. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "plugins/tier2/s3/s3_transport.h"
#include "plugins/tier2/s3/s3_xml.h"

/*
 * Every request is signed by libcurl (7.75+) with SigV4 for service "s3"
 * and carries "x-amz-content-sha256: UNSIGNED-PAYLOAD" (S3 requires the
 * header; the payload is protected by TLS, not by the signature). libcurl
 * 7.88 signs the path and query exactly as given, so this file builds them
 * already canonical: keys percent-encoded once, query parameters sorted
 * and encoded, "uploads=" rather than "uploads". Easy handles are pooled
 * so connections are reused across requests.
 */

#define POOL_MAX 8
#define XML_MAX (8u << 20) /* cap on a response body we parse */

struct curlt {
	const struct strata_host *host; /* borrowed until destroy */
	const struct s3_config *cfg;    /* borrowed until destroy */
	char sigv4[96];                 /* "aws:amz:<region>:s3" */
	char base[512];                 /* scheme://host[/bucket] */
	char token_hdr[2100];           /* x-amz-security-token or "" */
	bool range_copy_ok;             /* libcurl signs copy ranges right */
	pthread_mutex_t lock;           /* guards the pool */
	CURL *pool[POOL_MAX];           /* idle easy handles */
	size_t npool;
};

/* One request and what came back. */
struct req {
	const char *method; /* GET PUT POST DELETE */
	const char *key;    /* object key, NULL for the bucket */
	const char *query;  /* canonical query or NULL */
	const char *hdr[3]; /* extra headers or NULL */
	const char *body;   /* request body (PUT/POST) */
	size_t body_len;    /* its bytes */
	size_t body_pos;    /* bytes sent so far */
	char range[64];     /* "first-last" or "" */
	char *out;          /* GET sink (caller's), NULL = collect xml */
	size_t out_cap;     /* bytes out holds */
	size_t out_len;     /* bytes stored in out */
	uint64_t skip;      /* bytes to drop first (200 to a range GET) */
	bool overflow;      /* the server sent more than out holds */
	char *xml;          /* collected body (malloc) */
	size_t xml_len;     /* bytes in xml */
	size_t xml_cap;     /* bytes allocated */
	bool nomem;         /* collecting failed */
	long status;        /* HTTP status */
	char etag[128];     /* ETag response header, quotes kept */
};

/* curl_global_init/cleanup are not thread-safe: counted under the lock
 * libs3's S3_initialize (which calls curl_global_init) also takes. */
pthread_mutex_t s3_global_lock = PTHREAD_MUTEX_INITIALIZER;
static int init_refs;

bool s3_uri_encode(const char *s, bool keep_slash, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		            (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		            c == '.' || c == '~' || (keep_slash && c == '/');
		if (o + (keep ? 1 : 3) >= size) {
			return false;
		}
		if (keep) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (size == 0) {
		return false;
	}
	out[o] = '\0';
	return true;
}

static void fail_local(struct s3_result *res, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void fail_local(struct s3_result *res, const char *fmt, ...)
{
	memset(res, 0, sizeof(*res));
	res->net = S3_NET_LOCAL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
	va_end(ap);
}

static CURL *take(struct curlt *c)
{
	CURL *h = NULL;
	pthread_mutex_lock(&c->lock);
	if (c->npool > 0) {
		h = c->pool[--c->npool];
	}
	pthread_mutex_unlock(&c->lock);
	if (h == NULL) {
		h = curl_easy_init();
	} else {
		curl_easy_reset(h); /* options only; connections stay */
	}
	return h;
}

static void give(struct curlt *c, CURL *h)
{
	pthread_mutex_lock(&c->lock);
	if (c->npool < POOL_MAX) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h != NULL) {
		curl_easy_cleanup(h);
	}
}

static bool collect(struct curlt *c, struct req *r, const char *p, size_t n)
{
	if (r->xml_len + n > XML_MAX) {
		r->nomem = true;
		return false;
	}
	if (r->xml_len + n + 1 > r->xml_cap) {
		size_t cap = r->xml_cap < 4096 ? 4096 : r->xml_cap;
		while (cap < r->xml_len + n + 1) {
			cap *= 2;
		}
		char *x = c->host->realloc(r->xml, cap);
		if (x == NULL) {
			r->nomem = true;
			return false;
		}
		r->xml = x;
		r->xml_cap = cap;
	}
	memcpy(r->xml + r->xml_len, p, n);
	r->xml_len += n;
	r->xml[r->xml_len] = '\0';
	return true;
}

struct wctx {
	struct curlt *c;
	struct req *r;
	CURL *h;
};

static size_t on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct wctx *w = arg;
	struct req *r = w->r;
	size_t n = size * nmemb;
	long status = 0;
	curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status < 300 && r->out != NULL) {
		size_t k = n;
		if (r->skip > 0) {
			size_t s = r->skip < k ? (size_t)r->skip : k;
			r->skip -= s;
			p += s;
			k -= s;
		}
		if (k > r->out_cap - r->out_len) {
			k = r->out_cap - r->out_len;
			r->overflow = status != 200; /* 200: whole object */
		}
		memcpy(r->out + r->out_len, p, k);
		r->out_len += k;
		return n;
	}
	return collect(w->c, r, p, n) ? n : 0;
}

static size_t on_read(char *p, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t n = size * nmemb;
	size_t left = r->body_len - r->body_pos;
	if (n > left) {
		n = left;
	}
	memcpy(p, r->body + r->body_pos, n);
	r->body_pos += n;
	return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct req *r = arg;
	size_t n = size * nmemb;
	if (n > 5 && strncasecmp(p, "etag:", 5) == 0) {
		const char *v = p + 5;
		size_t len = n - 5;
		while (len > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			len--;
		}
		while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' ||
		                   v[len - 1] == ' ')) {
			len--;
		}
		snprintf(r->etag, sizeof(r->etag), "%.*s", (int)len, v);
	}
	return n;
}

static enum s3_net net_of(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		return S3_NET_REFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return S3_NET_TIMEOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return S3_NET_RESOLVE;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		return S3_NET_TLS;
	case CURLE_OUT_OF_MEMORY:
	case CURLE_URL_MALFORMAT:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_NOT_BUILT_IN:
		return S3_NET_LOCAL;
	default:
		return S3_NET_BROKEN;
	}
}

/* Run r; 0 on a 2xx answer, else STRATA_EIO/ENOMEM with *res set. */
static int perform(struct curlt *c, struct req *r, struct s3_result *res)
{
	const struct s3_config *cfg = c->cfg;
	char ekey[3 * STRATA_TIER2_NAME_MAX + 1600];
	char url[sizeof(ekey) + 3200];
	if (r->key != NULL &&
	    !s3_uri_encode(r->key, true, ekey, sizeof(ekey))) {
		fail_local(res, "key too long");
		return STRATA_EIO;
	}
	int un = snprintf(url, sizeof(url), "%s/%s%s%s", c->base,
	                  r->key != NULL ? ekey : "",
	                  r->query != NULL ? "?" : "",
	                  r->query != NULL ? r->query : "");
	if (un < 0 || (size_t)un >= sizeof(url)) {
		fail_local(res, "request URL too long");
		return STRATA_EIO;
	}
	if (r->key == NULL && cfg->path_style) {
		/* "<base>/?q" would sign the path "/bucket/"; use "/bucket". */
		size_t bl = strlen(c->base);
		memmove(url + bl, url + bl + 1, strlen(url + bl + 1) + 1);
	}
	CURL *h = take(c);
	if (h == NULL) {
		fail_local(res, "out of memory (curl handle)");
		return STRATA_ENOMEM;
	}
	struct curl_slist *hl = NULL;
	struct curl_slist *tmp;
	int rc = 0;
	const char *std_hdrs[] = {
	        "x-amz-content-sha256: UNSIGNED-PAYLOAD",
	        c->token_hdr[0] != '\0' ? c->token_hdr : NULL,
	        r->hdr[0],
	        r->hdr[1],
	        r->hdr[2],
	};
	for (size_t i = 0; i < sizeof(std_hdrs) / sizeof(std_hdrs[0]); i++) {
		if (std_hdrs[i] == NULL) {
			continue;
		}
		if ((tmp = curl_slist_append(hl, std_hdrs[i])) == NULL) {
			fail_local(res, "out of memory (headers)");
			rc = STRATA_ENOMEM;
			goto out;
		}
		hl = tmp;
	}
	struct wctx w = {c, r, h};
	curl_easy_setopt(h, CURLOPT_URL, url);
	/* Keys are sent as they are: no "." or ".." resolved (the config
	 * refuses them in the prefix; this keeps any other key whole). */
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
	curl_easy_setopt(h, CURLOPT_USERNAME, cfg->access_key);
	curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->secret_key);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "strata-tier2-s3/1");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)cfg->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
	                 (long)((cfg->io_timeout_ms + 999) / 1000));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, cfg->tls_verify ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, cfg->tls_verify ? 2L : 0L);
	if (cfg->ca_file[0] != '\0') {
		curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
	}
	if (r->range[0] != '\0') {
		curl_easy_setopt(h, CURLOPT_RANGE, r->range);
	}
	if (strcmp(r->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, r);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
		                 (curl_off_t)r->body_len);
	} else if (strcmp(r->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS,
		                 r->body != NULL ? r->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)r->body_len);
	} else if (strcmp(r->method, "DELETE") == 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
	CURLcode cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	memset(res, 0, sizeof(*res));
	res->http = (int)r->status;
	if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && r->nomem)) {
		res->net = net_of(cc);
		res->http = 0;
		snprintf(res->detail, sizeof(res->detail), "%s",
		         curl_easy_strerror(cc));
		rc = res->net == S3_NET_LOCAL && cc == CURLE_OUT_OF_MEMORY
		             ? STRATA_ENOMEM
		             : STRATA_EIO;
		goto out;
	}
	if (r->nomem) {
		fail_local(res, "response body over %u bytes or out of memory",
		           XML_MAX);
		rc = STRATA_ENOMEM;
		goto out;
	}
	if (r->status >= 200 && r->status < 300) {
		/* CompleteMultipartUpload may answer 200 with an <Error>. */
		if (r->out == NULL && r->xml_len > 0 &&
		    s3_xml_error(r->xml, r->xml_len, res->code,
		                 sizeof(res->code), res->detail,
		                 sizeof(res->detail))) {
			rc = STRATA_EIO;
			goto out;
		}
		if (r->overflow) {
			res->net = S3_NET_PROTO;
			snprintf(res->detail, sizeof(res->detail),
			         "the server sent more bytes than the range "
			         "asked for");
			rc = STRATA_EIO;
		}
		goto out;
	}
	if (!s3_xml_error(r->xml, r->xml_len, res->code, sizeof(res->code),
	                  res->detail, sizeof(res->detail))) {
		snprintf(res->detail, sizeof(res->detail), "HTTP %ld",
		         r->status);
	}
	rc = STRATA_EIO;
out:
	curl_slist_free_all(hl);
	give(c, h);
	return rc;
}

static void req_done(struct curlt *c, struct req *r)
{
	c->host->free(r->xml);
	r->xml = NULL;
}

static int ct_put(void *t, const char *key, const void *buf, size_t len,
                  struct s3_result *res)
{
	struct curlt *c = t;
	struct req r = {
	        .method = "PUT", .key = key, .body = buf, .body_len = len};
	r.hdr[0] = "Content-Type: application/octet-stream";
	int rc = perform(c, &r, res);
	req_done(c, &r);
	return rc;
}

static int ct_get(void *t, const char *key, uint64_t off, size_t len, void *buf,
                  size_t *nread, struct s3_result *res)
{
	struct curlt *c = t;
	*nread = 0;
	if (len == 0) {
		return 0;
	}
	struct req r = {
	        .method = "GET", .key = key, .out = buf, .out_cap = len};
	snprintf(r.range, sizeof(r.range), "%llu-%llu", (unsigned long long)off,
	         (unsigned long long)(off + len - 1));
	int rc = perform(c, &r, res);
	if (rc == 0 && r.status == 200 && off > 0) {
		/* The server ignored the range: redo, dropping the head. */
		req_done(c, &r);
		r = (struct req){.method = "GET",
		                 .key = key,
		                 .out = buf,
		                 .out_cap = len,
		                 .skip = off};
		rc = perform(c, &r, res);
	}
	*nread = r.out_len;
	req_done(c, &r);
	return rc;
}

static int ct_copy(void *t, const char *src_key, const char *key,
                   struct s3_result *res)
{
	struct curlt *c = t;
	char src[3 * STRATA_TIER2_NAME_MAX + 1600];
	char esrc[sizeof(src)];
	char h_src[sizeof(src) + 400];
	snprintf(src, sizeof(src), "%s/%s", c->cfg->bucket, src_key);
	if (!s3_uri_encode(src, true, esrc, sizeof(esrc))) {
		fail_local(res, "copy source too long");
		return STRATA_EIO;
	}
	snprintf(h_src, sizeof(h_src), "x-amz-copy-source: /%s", esrc);
	struct req r = {.method = "PUT", .key = key};
	r.hdr[0] = h_src;
	int rc = perform(c, &r, res);
	req_done(c, &r);
	return rc;
}

static int ct_del(void *t, const char *key, struct s3_result *res)
{
	struct curlt *c = t;
	struct req r = {.method = "DELETE", .key = key};
	int rc = perform(c, &r, res);
	req_done(c, &r);
	return rc;
}

/* "name=value&" appended to q (value encoded); false if it does not fit. */
static bool qadd(char *q, size_t size, const char *name, const char *value)
{
	size_t n = strlen(q);
	char enc[3 * 2048 + 1];
	if (!s3_uri_encode(value, false, enc, sizeof(enc))) {
		return false;
	}
	int k = snprintf(q + n, size - n, "%s%s=%s", n > 0 ? "&" : "", name,
	                 enc);
	return k >= 0 && (size_t)k < size - n;
}

static int ct_list(void *t, const char *prefix, const char *marker,
                   bool direct_only, int max_keys, s3_list_page_cb cb,
                   void *arg, bool *truncated, struct s3_result *res)
{
	struct curlt *c = t;
	char q[8192] = "";
	char mk[16];
	snprintf(mk, sizeof(mk), "%d", max_keys);
	/* Sorted by name: delimiter, marker, max-keys, prefix. */
	if ((direct_only && !qadd(q, sizeof(q), "delimiter", "/")) ||
	    (marker[0] != '\0' && !qadd(q, sizeof(q), "marker", marker)) ||
	    !qadd(q, sizeof(q), "max-keys", mk) ||
	    !qadd(q, sizeof(q), "prefix", prefix)) {
		fail_local(res, "list query too long");
		return STRATA_EIO;
	}
	struct req r = {.method = "GET", .query = q};
	int rc = perform(c, &r, res);
	if (rc == 0) {
		int cb_rc = 0;
		rc = s3_xml_list(c->host, r.xml, r.xml_len, cb, arg, truncated,
		                 &cb_rc);
		if (rc == 0 && cb_rc != 0) {
			fail_local(res, "listing stopped by its callback");
			res->http = cb_rc; /* the value, for s3_store */
			rc = STRATA_EIO;
		} else if (rc != 0) {
			fail_local(res, "%s",
			           rc == STRATA_ENOMEM ? "out of memory"
			                               : "malformed listing");
			res->net = rc == STRATA_ENOMEM ? S3_NET_LOCAL
			                               : S3_NET_PROTO;
			rc = rc == STRATA_ENOMEM ? STRATA_ENOMEM : STRATA_EIO;
		}
	}
	req_done(c, &r);
	return rc;
}

static int ct_mp_create(void *t, const char *key, char *id, size_t id_size,
                        struct s3_result *res)
{
	struct curlt *c = t;
	struct req r = {.method = "POST", .key = key, .query = "uploads="};
	r.hdr[0] = "Content-Type: application/octet-stream";
	int rc = perform(c, &r, res);
	if (rc == 0 &&
	    s3_xml_text(r.xml, r.xml_len, "UploadId", id, id_size) != 0) {
		fail_local(res, "CreateMultipartUpload answer has no UploadId");
		res->net = S3_NET_PROTO;
		rc = STRATA_EIO;
	}
	req_done(c, &r);
	return rc;
}

static int part_query(char *q, size_t size, const char *id, int number)
{
	char n[16];
	snprintf(n, sizeof(n), "%d", number);
	q[0] = '\0';
	return qadd(q, size, "partNumber", n) && qadd(q, size, "uploadId", id)
	               ? 0
	               : STRATA_EIO;
}

static int ct_mp_copy(void *t, const char *key, const char *id, int number,
                      const char *src_key, uint64_t first, uint64_t last,
                      char *etag, size_t etag_size, struct s3_result *res)
{
	struct curlt *c = t;
	char q[4096];
	char src[3 * STRATA_TIER2_NAME_MAX + 1600];
	char h_src[sizeof(src) + 400];
	char h_range[96];
	char esrc[sizeof(src)];
	snprintf(src, sizeof(src), "%s/%s", c->cfg->bucket, src_key);
	if (part_query(q, sizeof(q), id, number) != 0 ||
	    !s3_uri_encode(src, true, esrc, sizeof(esrc))) {
		fail_local(res, "copy request too long");
		return STRATA_EIO;
	}
	bool ranged = last != UINT64_MAX;
	if (ranged && !c->range_copy_ok) {
		/* libcurl before 8.10 sorts x-amz-copy-source-range before
		 * x-amz-copy-source in SignedHeaders (curl PR 14370): AWS
		 * would answer SignatureDoesNotMatch. */
		fail_local(res,
		           "ranged UploadPartCopy needs libcurl >= 8.10 "
		           "(this is %s)",
		           curl_version_info(CURLVERSION_NOW)->version);
		res->net = S3_NET_NONE;
		res->http = 501;
		snprintf(res->code, sizeof(res->code), "NotImplemented");
		return STRATA_EIO;
	}
	snprintf(h_src, sizeof(h_src), "x-amz-copy-source: /%s", esrc);
	snprintf(h_range, sizeof(h_range),
	         "x-amz-copy-source-range: bytes=%llu-%llu",
	         (unsigned long long)first, (unsigned long long)last);
	struct req r = {.method = "PUT", .key = key, .query = q};
	r.hdr[0] = h_src;
	r.hdr[1] = ranged ? h_range : NULL;
	int rc = perform(c, &r, res);
	if (rc == 0 &&
	    s3_xml_text(r.xml, r.xml_len, "ETag", etag, etag_size) != 0) {
		fail_local(res, "UploadPartCopy answer has no ETag");
		res->net = S3_NET_PROTO;
		rc = STRATA_EIO;
	}
	req_done(c, &r);
	return rc;
}

static int ct_mp_upload(void *t, const char *key, const char *id, int number,
                        const void *buf, size_t len, char *etag,
                        size_t etag_size, struct s3_result *res)
{
	struct curlt *c = t;
	char q[4096];
	if (part_query(q, sizeof(q), id, number) != 0) {
		fail_local(res, "upload id too long");
		return STRATA_EIO;
	}
	struct req r = {.method = "PUT",
	                .key = key,
	                .query = q,
	                .body = buf,
	                .body_len = len};
	int rc = perform(c, &r, res);
	if (rc == 0) {
		if (r.etag[0] == '\0') {
			fail_local(res, "UploadPart answer has no ETag");
			res->net = S3_NET_PROTO;
			rc = STRATA_EIO;
		} else {
			snprintf(etag, etag_size, "%s", r.etag);
		}
	}
	req_done(c, &r);
	return rc;
}

static int ct_mp_complete(void *t, const char *key, const char *id,
                          const struct s3_part *parts, size_t n,
                          struct s3_result *res)
{
	struct curlt *c = t;
	char q[4096] = "";
	size_t cap = 128 + n * 256;
	char *body = c->host->malloc(cap);
	if (body == NULL) {
		fail_local(res, "out of memory");
		return STRATA_ENOMEM;
	}
	size_t o = (size_t)snprintf(body, cap, "<CompleteMultipartUpload>");
	for (size_t i = 0; i < n; i++) {
		/* ETags are quoted hex; escape the quotes for XML. */
		char e[160] = "";
		size_t k = 0;
		for (const char *p = parts[i].etag; *p && k + 7 < sizeof(e);
		     p++) {
			if (*p == '"') {
				memcpy(e + k, "&quot;", 6);
				k += 6;
			} else if (*p != '<' && *p != '>' && *p != '&') {
				e[k++] = *p;
			}
		}
		e[k] = '\0';
		o += (size_t)snprintf(body + o, cap - o,
		                      "<Part><PartNumber>%d</PartNumber>"
		                      "<ETag>%s</ETag></Part>",
		                      parts[i].number, e);
	}
	o += (size_t)snprintf(body + o, cap - o, "</CompleteMultipartUpload>");
	if (!qadd(q, sizeof(q), "uploadId", id)) {
		c->host->free(body);
		fail_local(res, "upload id too long");
		return STRATA_EIO;
	}
	struct req r = {.method = "POST",
	                .key = key,
	                .query = q,
	                .body = body,
	                .body_len = o};
	r.hdr[0] = "Content-Type: application/xml";
	int rc = perform(c, &r, res);
	req_done(c, &r);
	c->host->free(body);
	return rc;
}

static int ct_mp_abort(void *t, const char *key, const char *id,
                       struct s3_result *res)
{
	struct curlt *c = t;
	char q[4096] = "";
	if (!qadd(q, sizeof(q), "uploadId", id)) {
		fail_local(res, "upload id too long");
		return STRATA_EIO;
	}
	struct req r = {.method = "DELETE", .key = key, .query = q};
	int rc = perform(c, &r, res);
	req_done(c, &r);
	return rc;
}

static void global_release(void)
{
	pthread_mutex_lock(&s3_global_lock);
	if (--init_refs == 0) {
		curl_global_cleanup();
	}
	pthread_mutex_unlock(&s3_global_lock);
}

static void ct_destroy(void *t)
{
	struct curlt *c = t;
	for (size_t i = 0; i < c->npool; i++) {
		curl_easy_cleanup(c->pool[i]);
	}
	pthread_mutex_destroy(&c->lock);
	c->host->free(c);
	global_release();
}

static const struct s3_transport_ops curl_ops = {
        .name = "sigv4",
        .destroy = ct_destroy,
        .put = ct_put,
        .get = ct_get,
        .copy = ct_copy,
        .del = ct_del,
        .list = ct_list,
        .mp_create = ct_mp_create,
        .mp_copy = ct_mp_copy,
        .mp_upload = ct_mp_upload,
        .mp_complete = ct_mp_complete,
        .mp_abort = ct_mp_abort,
};

int s3_curl_new(const struct strata_host *host, const struct s3_config *cfg,
                void **t, const struct s3_transport_ops **ops, char *errmsg)
{
	s3_xml_init();
	struct curlt *c = host->malloc(sizeof(*c));
	if (c == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "open: out of memory");
		return STRATA_ENOMEM;
	}
	pthread_mutex_lock(&s3_global_lock);
	CURLcode cc = init_refs == 0 ? curl_global_init(CURL_GLOBAL_DEFAULT)
	                             : CURLE_OK;
	init_refs += cc == CURLE_OK;
	pthread_mutex_unlock(&s3_global_lock);
	if (cc != CURLE_OK) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open: curl_global_init failed: %s",
		         curl_easy_strerror(cc));
		host->free(c);
		return STRATA_EINTERNAL;
	}
	memset(c, 0, sizeof(*c));
	c->host = host;
	c->cfg = cfg;
	snprintf(c->sigv4, sizeof(c->sigv4), "aws:amz:%s:s3", cfg->region);
	const char *scheme = cfg->https ? "https" : "http";
	int n;
	if (cfg->path_style) {
		n = snprintf(c->base, sizeof(c->base), "%s://%s/%s", scheme,
		             cfg->host, cfg->bucket);
	} else {
		n = snprintf(c->base, sizeof(c->base), "%s://%s.%s", scheme,
		             cfg->bucket, cfg->host);
	}
	int tk = 0;
	if (cfg->session_token[0] != '\0') {
		tk = snprintf(c->token_hdr, sizeof(c->token_hdr),
		              "x-amz-security-token: %s", cfg->session_token);
	}
	if (n < 0 || (size_t)n >= sizeof(c->base) || tk < 0 ||
	    (size_t)tk >= sizeof(c->token_hdr)) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open: endpoint, bucket or credentials too long");
		host->free(c);
		global_release();
		return STRATA_ECONFIG;
	}
	c->range_copy_ok =
	        curl_version_info(CURLVERSION_NOW)->version_num >= 0x080a00;
	pthread_mutex_init(&c->lock, NULL);
	*t = c;
	*ops = &curl_ops;
	return 0;
}
