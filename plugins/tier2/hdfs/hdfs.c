/* Tier-2 "hdfs" plugin: chunks as HDFS files through the WebHDFS REST API. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plugins/tier2/hdfs/hdfs_json.h"
#include "strata/plugin.h"
#include "strata/plugin_config.h"

/*
 * A chunk "a/b/c" is the HDFS file <base_path>/a/b/c, reached over HTTP
 * with libcurl (WebHDFS: http://<namenode>/webhdfs/v1/<path>?op=...).
 *
 *   create   PUT CREATE (overwrite=false) -> 307 -> PUT to the datanode
 *            with an empty body -> 201
 *   write    GETFILESTATUS (offset must equal the length), then POST
 *            APPEND -> 307 -> POST the bytes to the datanode -> 200
 *   read     GET OPEN&offset&length -> 307 -> GET from the datanode
 *   stat     GETFILESTATUS; list: LISTSTATUS, walking subdirectories
 *   truncate GETFILESTATUS, then POST TRUNCATE&newlength
 *   concat   CONCAT when every non-empty source sits in the target's
 *            directory (HDFS's rule); otherwise a copy (OPEN + APPEND,
 *            cut back on failure) and DELETEs
 *   remove   DELETE, then DELETE (non-recursive) of emptied parents
 *
 * The redirects are followed by hand: the namenode is asked first WITHOUT
 * the data and the bytes go only to the Location it names, as the spec's
 * two-step protocol requires.
 *
 * happy path: each op is one or two HTTP exchanges on a pooled curl handle.
 * failure modes:
 *  - transport errors, timeouts, 5xx and the retriable RemoteExceptions
 *    (StandbyException, RetriableException, SafeModeException) are retried
 *    `retries` times with exponential backoff (backoff_ms doubling, at most
 *    max_backoff_ms) when the request is safe to repeat: every namenode
 *    step, OPEN, GETFILESTATUS, LISTSTATUS, TRUNCATE.
 *  - a failed datanode APPEND may have written some of the bytes: the
 *    plugin re-reads the length; if all the bytes are there and read back
 *    equal, the write succeeded (only the reply was lost); otherwise it
 *    TRUNCATEs back to the old length and retries. If even that fails the
 *    error says how to repair (truncate to the old length).
 *  - RecoveryInProgressException (a truncate that left the last block under
 *    lease recovery) is retried until recovery_wait_ms has passed.
 *  - DELETE answering false after a lost reply counts as done; CONCAT is
 *    checked against the target's length after a lost reply.
 */

#define HDFS_POOL_MAX 8               /* idle curl handles kept */
#define HDFS_JSON_MAX (64u << 20)     /* largest JSON answer accepted */
#define HDFS_COPY_PIECE (1u << 20)    /* concat copy buffer */
#define HDFS_URL_MAX 4096             /* longest URL the plugin builds */
#define HDFS_HIDDEN_PREFIX ".strata-" /* reserved name components */

struct hdfs {
	const struct strata_host *host; /* borrowed until close */
	char *namenode;                 /* "http://host:port", owned */
	char *base; /* "/strata" (no trailing '/'; "" = root), owned */
	char *user; /* percent-encoded user.name or NULL, owned */
	long connect_timeout_ms;   /* TCP connect limit per request */
	long timeout_ms;           /* whole-request limit */
	unsigned retries;          /* extra attempts for safe requests */
	long backoff_ms;           /* first retry delay */
	long max_backoff_ms;       /* retry delay cap */
	long recovery_wait_ms;     /* RecoveryInProgress retry budget */
	pthread_mutex_t lock;      /* guards the pool */
	CURL *pool[HDFS_POOL_MAX]; /* idle handles (connection reuse) */
	size_t npool;              /* handles in pool */
};

/* One HTTP exchange: the request and what came back. */
struct xfer {
	const char *method; /* GET, PUT, POST, DELETE */
	const char *url;
	const void *body; /* request body (PUT/POST), may be NULL */
	size_t body_len;
	/* Not safe to repeat: use a new connection. libcurl silently
	 * re-sends a request whose reused connection died without an answer,
	 * which would apply an APPEND, CONCAT or DELETE twice. */
	bool fresh;
	/* response */
	long status;                 /* HTTP status, 0 when none arrived */
	CURLcode cc;                 /* transport outcome */
	char location[HDFS_URL_MAX]; /* Location of a 3xx, "" if none */
	char *resp; /* body (non-sink requests), host-allocated */
	size_t resp_len;
	size_t resp_cap;
	bool too_big;        /* body exceeded HDFS_JSON_MAX or the sink */
	bool oom;            /* body buffer could not grow */
	unsigned char *sink; /* OPEN: caller's buffer, else NULL */
	size_t sink_cap;
	size_t sink_len;
	/* RemoteException of an error answer ("" when none) */
	char exception[96];
	char message[192];
	struct hdfs *h;
};

__attribute__((format(printf, 2, 3))) static void errf(char *errmsg,
                                                       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

static void *h_malloc(const struct hdfs *h, size_t n)
{
	return h->host->malloc(n);
}

static void h_free(const struct hdfs *h, void *p)
{
	h->host->free(p);
}

static char *h_strndup(const struct strata_host *host, const char *s, size_t n)
{
	char *c = host->malloc(n + 1);
	if (c != NULL) {
		memcpy(c, s, n);
		c[n] = '\0';
	}
	return c;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0) {
	}
}

/* Delay before retry number attempt (1 = first retry). */
static long backoff(const struct hdfs *h, unsigned attempt)
{
	long d = h->backoff_ms;
	for (unsigned i = 1; i < attempt && d < h->max_backoff_ms; i++) {
		d *= 2;
	}
	return d < h->max_backoff_ms ? d : h->max_backoff_ms;
}

/* ---- configuration ------------------------------------------------ */

/*
 * libcurl's global state (and GnuTLS's under it) lives while an instance
 * does: the host dlclose()s the plugin after the last close, and whatever
 * curl_global_init made would leak with the unloaded library.
 */
static pthread_mutex_t curl_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned curl_users;

static CURLcode curl_ref(void)
{
	CURLcode rc = CURLE_OK;
	pthread_mutex_lock(&curl_lock);
	if (curl_users == 0) {
		rc = curl_global_init(CURL_GLOBAL_DEFAULT);
	}
	if (rc == CURLE_OK) {
		curl_users++;
	}
	pthread_mutex_unlock(&curl_lock);
	return rc;
}

static void curl_unref(void)
{
	pthread_mutex_lock(&curl_lock);
	if (--curl_users == 0) {
		curl_global_cleanup();
	}
	pthread_mutex_unlock(&curl_lock);
}

static bool path_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* base_path: absolute, [A-Za-z0-9._-] components, no "." or ".."; stored
 * without a trailing '/' ("" for "/"). */
static int set_base(struct hdfs *h, const struct strata_config_item *it,
                    char *errmsg)
{
	const char *v = it->value;
	size_t n = it->value_len;
	bool ok = n > 0 && v[0] == '/';
	while (ok && n > 1 && v[n - 1] == '/') {
		n--;
	}
	for (size_t i = 1, comp = 1; ok && i <= n; i++) {
		if (i == n || v[i] == '/') {
			size_t clen = i - comp;
			if (n > 1 &&
			    (clen == 0 || (clen == 1 && v[comp] == '.') ||
			     (clen == 2 && v[comp] == '.' &&
			      v[comp + 1] == '.'))) {
				ok = false;
			}
			comp = i + 1;
		} else if (!path_char_ok(v[i])) {
			ok = false;
		}
	}
	if (!ok) {
		errf(errmsg,
		     "config %.*s: base_path must be an absolute HDFS path of "
		     "[A-Za-z0-9._-] components, e.g. /strata/tier2",
		     it->line_len, it->line);
		return STRATA_ECONFIG;
	}
	h_free(h, h->base);
	h->base = h_strndup(h->host, v, n == 1 ? 0 : n);
	return h->base == NULL ? STRATA_ENOMEM : 0;
}

/* Percent-encode s (n bytes) for a query value. */
static char *pct_encode(const struct strata_host *host, const char *s, size_t n)
{
	char *o = host->malloc(n * 3 + 1);
	if (o == NULL) {
		return NULL;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (path_char_ok((char)c) || c == '~') {
			o[k++] = (char)c;
		} else {
			k += (size_t)sprintf(o + k, "%%%02X", c);
		}
	}
	o[k] = '\0';
	return o;
}

static int set_long(const struct strata_config_item *it, long lo, long hi,
                    long *out, const char *what, char *errmsg)
{
	int64_t v;
	if (strata_config_value_i64(it, &v) != 0 || v < lo || v > hi) {
		errf(errmsg, "config %.*s: %.*s must be %s from %ld to %ld",
		     it->line_len, it->line, (int)it->key_len, it->key, what,
		     lo, hi);
		return STRATA_ECONFIG;
	}
	*out = (long)v;
	return 0;
}

static void hdfs_close(void *state);

/* v[0..n) = "http[s]://HOST[:PORT]" (scheme checked by the caller):
 * no path after the host, and a port, if any, of 1..65535. */
static bool authority_ok(const char *v, size_t n)
{
	const char *p = memchr(v, ':', n);
	size_t at = (size_t)(p - v) + 3; /* after "://" */
	if (at >= n || memchr(v + at, '/', n - at) != NULL) {
		return false;
	}
	const char *colon = NULL;
	for (size_t i = at; i < n; i++) {
		if (v[i] == ':') {
			colon = v + i;
		} else if (v[i] == ']') {
			colon = NULL; /* an IPv6 literal's colons */
		}
	}
	if (colon == NULL) {
		return true;
	}
	long port = 0;
	size_t digits = 0;
	for (const char *q = colon + 1; q < v + n; q++, digits++) {
		if (*q < '0' || *q > '9' || port > 65535) {
			return false;
		}
		port = port * 10 + (*q - '0');
	}
	return digits > 0 && port >= 1 && port <= 65535;
}

static int hdfs_open(const struct strata_host *host, const char *config,
                     void **state, char *errmsg)
{
	CURLcode cc = curl_ref();
	if (cc != CURLE_OK) {
		errf(errmsg, "open: curl_global_init failed: %s",
		     curl_easy_strerror(cc));
		return cc == CURLE_OUT_OF_MEMORY ? STRATA_ENOMEM
		                                 : STRATA_EINTERNAL;
	}
	struct hdfs *h = host->malloc(sizeof(*h));
	if (h == NULL) {
		curl_unref();
		errf(errmsg, "open: out of memory");
		return STRATA_ENOMEM;
	}
	memset(h, 0, sizeof(*h));
	h->host = host;
	h->connect_timeout_ms = 5000;
	h->timeout_ms = 60000;
	h->retries = 3;
	h->backoff_ms = 100;
	h->max_backoff_ms = 2000;
	h->recovery_wait_ms = 30000;
	pthread_mutex_init(&h->lock, NULL);
	h->base = h_strndup(host, "/strata", 7);
	h->user = h_strndup(host, "strata", 6);
	int rc = h->base == NULL || h->user == NULL ? STRATA_ENOMEM : 0;

	const char *cur = config;
	struct strata_config_item it;
	long retries = (long)h->retries;
	while (rc == 0 && strata_config_next(&cur, &it)) {
		if (it.value == NULL) {
			errf(errmsg, "config line '%.*s': expected key=value",
			     it.line_len, it.line);
			rc = STRATA_ECONFIG;
		} else if (strata_config_key_is(&it, "namenode")) {
			size_t n = it.value_len;
			while (n > 0 && it.value[n - 1] == '/') {
				n--;
			}
			bool ok = (n > 7 &&
			           strncmp(it.value, "http://", 7) == 0) ||
			          (n > 8 &&
			           strncmp(it.value, "https://", 8) == 0);
			for (size_t i = 0; ok && i < n; i++) {
				ok = it.value[i] > ' ' && it.value[i] < 127 &&
				     it.value[i] != '?' && it.value[i] != '#';
			}
			if (!ok || n > 512 || !authority_ok(it.value, n)) {
				errf(errmsg,
				     "config %.*s: namenode must be the "
				     "namenode's HTTP address, "
				     "http[s]://HOST[:PORT] with no path (the "
				     "plugin adds /webhdfs/v1), e.g. "
				     "http://namenode.example:9870",
				     it.line_len, it.line);
				rc = STRATA_ECONFIG;
				break;
			}
			h_free(h, h->namenode);
			h->namenode = h_strndup(host, it.value, n);
			rc = h->namenode == NULL ? STRATA_ENOMEM : 0;
		} else if (strata_config_key_is(&it, "base_path")) {
			rc = set_base(h, &it, errmsg);
		} else if (strata_config_key_is(&it, "user")) {
			h_free(h, h->user);
			h->user = NULL;
			if (it.value_len > 0) {
				h->user = pct_encode(host, it.value,
				                     it.value_len);
				rc = h->user == NULL ? STRATA_ENOMEM : 0;
			}
		} else if (strata_config_key_is(&it, "connect_timeout_ms")) {
			rc = set_long(&it, 1, 3600000, &h->connect_timeout_ms,
			              "milliseconds", errmsg);
		} else if (strata_config_key_is(&it, "timeout_ms")) {
			rc = set_long(&it, 1, 3600000, &h->timeout_ms,
			              "milliseconds", errmsg);
		} else if (strata_config_key_is(&it, "retries")) {
			rc = set_long(&it, 0, 100, &retries, "a count", errmsg);
		} else if (strata_config_key_is(&it, "backoff_ms")) {
			rc = set_long(&it, 1, 600000, &h->backoff_ms,
			              "milliseconds", errmsg);
		} else if (strata_config_key_is(&it, "max_backoff_ms")) {
			rc = set_long(&it, 1, 600000, &h->max_backoff_ms,
			              "milliseconds", errmsg);
		} else if (strata_config_key_is(&it, "recovery_wait_ms")) {
			rc = set_long(&it, 0, 3600000, &h->recovery_wait_ms,
			              "milliseconds", errmsg);
		} else {
			static const char allowed[] =
			        "namenode, base_path, user, "
			        "connect_timeout_ms, "
			        "timeout_ms, retries, backoff_ms, "
			        "max_backoff_ms, "
			        "recovery_wait_ms";
			char msg[STRATA_ERRMSG_SIZE];
			errf(errmsg, "config: %s",
			     strata_config_unknown_key(&it, allowed, msg,
			                               sizeof(msg)));
			rc = STRATA_ECONFIG;
		}
	}
	if (rc == 0 && h->namenode == NULL) {
		errf(errmsg, "config: namenode is required (the namenode's "
		             "WebHDFS address, e.g. "
		             "namenode=http://namenode.example:9870)");
		rc = STRATA_ECONFIG;
	}
	if (rc == STRATA_ENOMEM) {
		errf(errmsg, "open: out of memory");
	}
	if (rc != 0) {
		hdfs_close(h);
		return rc;
	}
	h->retries = (unsigned)retries;
	if (h->max_backoff_ms < h->backoff_ms) {
		h->max_backoff_ms = h->backoff_ms;
	}
	*state = h;
	return 0;
}

/* open() parses the config and connects to nothing (requests start with
 * the first op): a check is an open and a close. */
static int hdfs_check(const struct strata_host *host, const char *config,
                      char *errmsg)
{
	void *state;
	int rc = hdfs_open(host, config, &state, errmsg);
	if (rc == 0) {
		hdfs_close(state);
	}
	return rc;
}

static void hdfs_close(void *state)
{
	struct hdfs *h = state;
	for (size_t i = 0; i < h->npool; i++) {
		curl_easy_cleanup(h->pool[i]);
	}
	pthread_mutex_destroy(&h->lock);
	h_free(h, h->namenode);
	h_free(h, h->base);
	h_free(h, h->user);
	h_free(h, h);
	curl_unref();
}

/* ---- HTTP ------------------------------------------------------------ */

static CURL *handle_get(struct hdfs *h)
{
	CURL *c = NULL;
	pthread_mutex_lock(&h->lock);
	if (h->npool > 0) {
		c = h->pool[--h->npool];
	}
	pthread_mutex_unlock(&h->lock);
	if (c == NULL) {
		c = curl_easy_init();
	} else {
		curl_easy_reset(c);
	}
	return c;
}

static void handle_put(struct hdfs *h, CURL *c)
{
	pthread_mutex_lock(&h->lock);
	if (h->npool < HDFS_POOL_MAX) {
		h->pool[h->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->lock);
	if (c != NULL) {
		curl_easy_cleanup(c);
	}
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	if (x->sink != NULL && x->status / 100 == 2) {
		if (n > x->sink_cap - x->sink_len) {
			x->too_big = true;
			return 0;
		}
		memcpy(x->sink + x->sink_len, data, n);
		x->sink_len += n;
		return n;
	}
	if (n > HDFS_JSON_MAX - x->resp_len) {
		x->too_big = true;
		return 0;
	}
	if (x->resp_len + n + 1 > x->resp_cap) {
		size_t cap = x->resp_cap < 4096 ? 4096 : x->resp_cap;
		while (cap < x->resp_len + n + 1) {
			cap *= 2;
		}
		char *p = x->h->host->realloc(x->resp, cap);
		if (p == NULL) {
			x->oom = true;
			return 0;
		}
		x->resp = p;
		x->resp_cap = cap;
	}
	memcpy(x->resp + x->resp_len, data, n);
	x->resp_len += n;
	x->resp[x->resp_len] = '\0';
	return n;
}

/* Learn the status as soon as the headers end, so on_body knows whether
 * the body is data (2xx, into the sink) or an error document. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		const char *sp = memchr(data, ' ', n);
		x->status = sp != NULL ? strtol(sp + 1, NULL, 10) : 0;
	}
	return n;
}

/* The JSON document of the answer, or NULL. */
static struct hdfs_json *resp_json(struct xfer *x, int *rc)
{
	struct hdfs_json_alloc a = {x->h->host->malloc, x->h->host->free};
	struct hdfs_json *v = NULL;
	*rc = hdfs_json_parse(x->resp != NULL ? x->resp : "", x->resp_len, &a,
	                      &v, NULL);
	return v;
}

static void free_json(struct hdfs *h, struct hdfs_json *v)
{
	struct hdfs_json_alloc a = {h->host->malloc, h->host->free};
	hdfs_json_free(v, &a);
}

/* A 2xx answer that is not the JSON document expected (or no memory to
 * parse it): sets errmsg, returns the code. */
static int bad_answer(int parse_rc, const char *what, const char *doc,
                      char *errmsg)
{
	if (parse_rc == STRATA_ENOMEM) {
		errf(errmsg, "%s: out of memory parsing the answer", what);
		return STRATA_ENOMEM;
	}
	errf(errmsg, "%s: the answer is not a %s JSON object", what, doc);
	return STRATA_EPROTO;
}

/* Pull exception/message out of a RemoteException answer, if any. */
static void parse_remote_exception(struct xfer *x)
{
	x->exception[0] = '\0';
	x->message[0] = '\0';
	int rc;
	struct hdfs_json *v = resp_json(x, &rc);
	const struct hdfs_json *re = hdfs_json_get(v, "RemoteException");
	const char *exc = hdfs_json_str(hdfs_json_get(re, "exception"));
	const char *msg = hdfs_json_str(hdfs_json_get(re, "message"));
	if (exc == NULL) {
		/* Older servers only send javaClassName; keep its tail. */
		exc = hdfs_json_str(hdfs_json_get(re, "javaClassName"));
		const char *dot = exc != NULL ? strrchr(exc, '.') : NULL;
		exc = dot != NULL ? dot + 1 : exc;
	}
	if (exc != NULL) {
		snprintf(x->exception, sizeof(x->exception), "%s", exc);
		snprintf(x->message, sizeof(x->message), "%s",
		         msg != NULL ? msg : "");
	}
	free_json(x->h, v);
}

static void xfer_reset(struct xfer *x)
{
	x->status = 0;
	x->cc = CURLE_OK;
	x->location[0] = '\0';
	x->resp_len = 0;
	x->too_big = false;
	x->oom = false;
	x->sink_len = 0;
	x->exception[0] = '\0';
	x->message[0] = '\0';
}

static void xfer_done(struct xfer *x)
{
	if (x->resp != NULL) {
		x->h->host->free(x->resp); /* set by http_once */
	}
	x->resp = NULL;
	x->resp_cap = 0;
	x->resp_len = 0;
}

/* One HTTP request, no retries. Fills x->status/cc/location/resp and the
 * RemoteException fields of a 4xx/5xx answer. */
static void http_once(struct hdfs *h, struct xfer *x)
{
	xfer_reset(x);
	x->h = h;
	h->host->counter_add(h->host, "requests", 1);
	CURL *c = handle_get(h);
	if (c == NULL) {
		x->cc = CURLE_OUT_OF_MEMORY;
		return;
	}
	struct curl_slist *hdrs = NULL;
	struct curl_slist *tmp = curl_slist_append(hdrs, "Expect:");
	if (tmp != NULL) {
		hdrs = tmp;
	}
	bool with_body =
	        strcmp(x->method, "PUT") == 0 || strcmp(x->method, "POST") == 0;
	if (with_body) {
		tmp = curl_slist_append(
		        hdrs, "Content-Type: application/octet-stream");
		if (tmp != NULL) {
			hdrs = tmp;
		}
	}
	curl_easy_setopt(c, CURLOPT_URL, x->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, x->fresh ? 1L : 0L);
	if (with_body) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS,
		                 x->body != NULL ? x->body : "");
		curl_easy_setopt(
		        c, CURLOPT_POSTFIELDSIZE_LARGE,
		        (curl_off_t)(x->body != NULL ? x->body_len : 0));
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, x->method);
	} else if (strcmp(x->method, "DELETE") == 0) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	x->cc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (x->cc == CURLE_OK || status != 0) {
		x->status = status;
	}
	char *loc = NULL;
	if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK &&
	    loc != NULL) {
		snprintf(x->location, sizeof(x->location), "%s", loc);
	}
	curl_slist_free_all(hdrs);
	if (x->cc == CURLE_OK) {
		handle_put(h, c);
	} else {
		curl_easy_cleanup(c); /* drop a broken connection */
	}
	if (x->cc == CURLE_OK && x->status >= 400) {
		parse_remote_exception(x);
	}
}

static bool exc_is(const struct xfer *x, const char *name)
{
	return strcmp(x->exception, name) == 0;
}

/* Worth repeating (when the request is safe to repeat)? */
static bool transient(const struct xfer *x)
{
	if (x->cc != CURLE_OK) {
		return x->cc != CURLE_OUT_OF_MEMORY && !x->too_big && !x->oom &&
		       x->cc != CURLE_URL_MALFORMAT &&
		       x->cc != CURLE_UNSUPPORTED_PROTOCOL;
	}
	if (x->status >= 500 && x->status != 501) {
		return true;
	}
	return exc_is(x, "StandbyException") ||
	       exc_is(x, "RetriableException") ||
	       exc_is(x, "SafeModeException");
}

/* Strata code for a failed exchange. */
static int map_error(const struct xfer *x)
{
	if (x->cc != CURLE_OK) {
		if (x->too_big) {
			return STRATA_EPROTO;
		}
		if (x->oom) {
			return STRATA_ENOMEM;
		}
		switch (x->cc) {
		case CURLE_COULDNT_CONNECT:
			return STRATA_ECONNREFUSED;
		case CURLE_OPERATION_TIMEDOUT:
			return STRATA_ETIMEDOUT;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
			return STRATA_EUNAVAIL;
		case CURLE_OUT_OF_MEMORY:
			return STRATA_ENOMEM;
		default:
			return STRATA_EIO;
		}
	}
	static const struct {
		const char *exception;
		int code;
	} table[] = {
	        {"FileNotFoundException", STRATA_ENOENT},
	        {"FileAlreadyExistsException", STRATA_EEXIST},
	        {"AlreadyBeingCreatedException", STRATA_EBUSY},
	        {"RecoveryInProgressException", STRATA_EBUSY},
	        {"LeaseExpiredException", STRATA_EBUSY},
	        {"AccessControlException", STRATA_EPERM},
	        {"AuthorizationException", STRATA_EPERM},
	        {"SecurityException", STRATA_EPERM},
	        {"DSQuotaExceededException", STRATA_ENOSPC},
	        {"NSQuotaExceededException", STRATA_ENOSPC},
	        {"QuotaExceededException", STRATA_ENOSPC},
	        {"DiskOutOfSpaceException", STRATA_ENOSPC},
	        {"PathIsNotEmptyDirectoryException", STRATA_ENOTEMPTY},
	        {"StandbyException", STRATA_EUNAVAIL},
	        {"SafeModeException", STRATA_EUNAVAIL},
	        {"RetriableException", STRATA_EUNAVAIL},
	        {"IllegalArgumentException", STRATA_EINVAL},
	        {"HadoopIllegalArgumentException", STRATA_EINVAL},
	        {"InvalidPathException", STRATA_EINVAL},
	        {"UnsupportedOperationException", STRATA_ENOTSUP},
	        {"EOFException", STRATA_ERANGE},
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (exc_is(x, table[i].exception)) {
			return table[i].code;
		}
	}
	switch (x->status) {
	case 401:
		return STRATA_EPERM;
	case 404:
		return STRATA_ENOENT;
	case 501:
		return STRATA_ENOTSUP;
	case 502:
	case 503:
	case 504:
		return STRATA_EUNAVAIL;
	default:
		return STRATA_EIO;
	}
}

/* "<what>: <cause>" for a failed exchange, into errmsg. attempts > 1 is
 * mentioned. */
static void describe(const struct hdfs *h, const struct xfer *x,
                     unsigned attempts, const char *what, char *errmsg)
{
	char tries[40] = "";
	if (attempts > 1) {
		snprintf(tries, sizeof(tries), " (%u attempts)", attempts);
	}
	if (x->cc != CURLE_OK) {
		const char *hint = "";
		if (x->cc == CURLE_COULDNT_CONNECT ||
		    x->cc == CURLE_OPERATION_TIMEDOUT ||
		    x->cc == CURLE_COULDNT_RESOLVE_HOST) {
			hint = "; is HDFS up and namenode= right?";
		}
		/* Cause and hint first: the URL is long and errmsg is
		 * cut at STRATA_ERRMSG_SIZE. */
		errf(errmsg, "%s: %s%s%s [%s %s]", what,
		     x->too_big ? "answer larger than expected"
		     : x->oom   ? "out of memory"
		                : curl_easy_strerror(x->cc),
		     tries, hint, x->method, x->url);
	} else if (x->exception[0] != '\0') {
		/* A datanode answers a namenode request this way. */
		bool datanode =
		        strstr(x->message, "namenoderpcaddress") != NULL;
		errf(errmsg, "%s: %s (HTTP %ld): %s%s%s", what, x->exception,
		     x->status,
		     datanode ? "namenode= points at a datanode; give the "
		                "namenode's HTTP address: "
		              : "",
		     x->message, tries);
	} else {
		errf(errmsg, "%s: HTTP %ld%s [%s %s]", what, x->status, tries,
		     x->method, x->url);
	}
	(void)h;
}

#define RETRY_SAFE 1u     /* repeat on transient failures */
#define RETRY_RECOVERY 2u /* repeat on RecoveryInProgressException */

/*
 * Send x, repeating per flags. Returns 0 when the final answer is 2xx or
 * 3xx (x holds it), else the mapped code with errmsg "<what>: cause"; the
 * caller may still look at x->status/exception to special-case.
 * *attempts_out (may be NULL) counts the requests sent.
 */
static int call(struct hdfs *h, struct xfer *x, unsigned flags,
                const char *what, char *errmsg, unsigned *attempts_out)
{
	unsigned attempt = 0;
	int64_t recovery_deadline = mono_ms() + h->recovery_wait_ms;
	unsigned recovery_tries = 0;
	for (;;) {
		attempt++;
		http_once(h, x);
		if (x->cc == CURLE_OK && x->status >= 200 && x->status < 400) {
			break;
		}
		bool again = false;
		long delay = 0;
		if ((flags & RETRY_SAFE) && transient(x) &&
		    attempt - recovery_tries <= h->retries) {
			again = true;
			delay = backoff(h, attempt - recovery_tries);
		} else if ((flags & RETRY_RECOVERY) && x->cc == CURLE_OK &&
		           (exc_is(x, "RecoveryInProgressException") ||
		            exc_is(x, "AlreadyBeingCreatedException")) &&
		           mono_ms() < recovery_deadline) {
			again = true;
			recovery_tries++;
			delay = backoff(h, recovery_tries);
		}
		if (!again) {
			if (attempts_out != NULL) {
				*attempts_out = attempt;
			}
			describe(h, x, attempt, what, errmsg);
			return map_error(x);
		}
		h->host->counter_add(h->host, "retries", 1);
		if (attempt == 1 || attempt % 8 == 0) {
			char m[STRATA_ERRMSG_SIZE];
			describe(h, x, attempt, what, m);
			h->host->log(h->host, STRATA_LOG_WARN,
			             "%s; retrying in %ld ms", m, delay);
		}
		sleep_ms(delay);
	}
	if (attempts_out != NULL) {
		*attempts_out = attempt;
	}
	return 0;
}

/* ---- URLs ------------------------------------------------------------ */

/* The absolute HDFS path of a chunk name ("" = the base itself). */
static int hdfs_path(const struct hdfs *h, const char *name, char *out,
                     size_t size)
{
	int n = snprintf(out, size, "%s%s%s", h->base, name[0] ? "/" : "",
	                 name);
	if (n < 0 || (size_t)n >= size) {
		return STRATA_EBADNAME;
	}
	if (out[0] == '\0') {
		snprintf(out, size, "/");
	}
	return 0;
}

/* http://nn/webhdfs/v1<path>?op=<op><extra>&user.name=<user>. */
static int make_url(const struct hdfs *h, const char *name, const char *op,
                    const char *extra, char *url, char *errmsg,
                    const char *what)
{
	char path[HDFS_URL_MAX];
	int n = -1;
	if (hdfs_path(h, name, path, sizeof(path)) == 0) {
		n = snprintf(url, HDFS_URL_MAX, "%s/webhdfs/v1%s?op=%s%s%s%s",
		             h->namenode, path, op, extra,
		             h->user != NULL ? "&user.name=" : "",
		             h->user != NULL ? h->user : "");
	}
	if (n < 0 || n >= HDFS_URL_MAX) {
		errf(errmsg, "%s: the WebHDFS URL would exceed %d bytes", what,
		     HDFS_URL_MAX);
		return STRATA_EBADNAME;
	}
	return 0;
}

/* Names whose components start with ".strata-" are the plugin's own. */
static bool reserved_name(const char *name)
{
	size_t plen = strlen(HDFS_HIDDEN_PREFIX);
	for (const char *c = name; c != NULL;) {
		if (strncmp(c, HDFS_HIDDEN_PREFIX, plen) == 0) {
			return true;
		}
		c = strchr(c, '/');
		c = c != NULL ? c + 1 : NULL;
	}
	return false;
}

static int check_name(const char *name, const char *what, char *errmsg)
{
	if (reserved_name(name)) {
		errf(errmsg,
		     "%s: name components starting with '" HDFS_HIDDEN_PREFIX
		     "' are reserved",
		     what);
		return STRATA_EBADNAME;
	}
	return 0;
}

/* ---- status ---------------------------------------------------------- */

/* Fill info from a FileStatus object; false when it is not a file. */
static bool file_info(const struct hdfs_json *fs,
                      struct strata_tier2_chunk_info *info, bool *is_dir)
{
	const char *type = hdfs_json_str(hdfs_json_get(fs, "type"));
	int64_t len = 0;
	int64_t mtime = 0;
	*is_dir = type != NULL && strcmp(type, "DIRECTORY") == 0;
	if (type == NULL || strcmp(type, "FILE") != 0 ||
	    !hdfs_json_int(hdfs_json_get(fs, "length"), &len) || len < 0) {
		return false;
	}
	if (!hdfs_json_int(hdfs_json_get(fs, "modificationTime"), &mtime) ||
	    mtime < 0 || mtime > INT64_MAX / 1000000) {
		mtime = 0;
	}
	info->length = (uint64_t)len;
	info->mtime_ns = mtime * 1000000;
	return true;
}

/* GETFILESTATUS of a chunk. what names the op for messages. */
static int get_status(struct hdfs *h, const char *name,
                      struct strata_tier2_chunk_info *info, const char *what,
                      char *errmsg)
{
	char url[HDFS_URL_MAX];
	int rc = make_url(h, name, "GETFILESTATUS", "", url, errmsg, what);
	if (rc != 0) {
		return rc;
	}
	struct xfer x = {.method = "GET", .url = url};
	rc = call(h, &x, RETRY_SAFE, what, errmsg, NULL);
	if (rc == STRATA_ENOENT) {
		errf(errmsg, "%s: no such chunk (%s: %s)", what, x.exception,
		     x.message);
	}
	if (rc == 0) {
		struct hdfs_json *v = resp_json(&x, &rc);
		bool is_dir = false;
		if (rc != 0 ||
		    !file_info(hdfs_json_get(v, "FileStatus"), info, &is_dir)) {
			if (rc == 0 && is_dir) {
				errf(errmsg,
				     "%s: no such chunk (HDFS has a directory "
				     "there)",
				     what);
				rc = STRATA_ENOENT;
			} else {
				rc = bad_answer(rc, what, "FileStatus", errmsg);
			}
		}
		free_json(h, v);
	}
	xfer_done(&x);
	return rc;
}

static int hdfs_stat(void *state, const char *name,
                     struct strata_tier2_chunk_info *info, char *errmsg)
{
	struct hdfs *h = state;
	char what[STRATA_TIER2_NAME_MAX + 32];
	snprintf(what, sizeof(what), "stat chunk %s", name);
	int rc = check_name(name, what, errmsg);
	return rc != 0 ? rc : get_status(h, name, info, what, errmsg);
}

/* ---- two-step data operations ---------------------------------------- */

/*
 * Step 1 of CREATE/APPEND/OPEN: ask the namenode (no data) and return the
 * datanode Location in loc. Safe to repeat.
 */
static int redirect_step(struct hdfs *h, const char *method, const char *url,
                         char *loc, const char *what, char *errmsg)
{
	struct xfer x = {.method = method, .url = url};
	int rc = call(h, &x, RETRY_SAFE, what, errmsg, NULL);
	if (rc == 0 && (x.status != 307 || x.location[0] == '\0')) {
		errf(errmsg,
		     "%s: %s %s answered HTTP %ld without a datanode "
		     "Location (expected 307 TEMPORARY_REDIRECT)",
		     what, method, url, x.status);
		rc = STRATA_EPROTO;
	}
	if (rc == 0) {
		h->host->counter_add(h->host, "redirects", 1);
		memcpy(loc, x.location, sizeof(x.location));
	}
	xfer_done(&x);
	return rc;
}

/* POST TRUNCATE newlength (safe to repeat); *done is the boolean. */
static int truncate_req(struct hdfs *h, const char *name, uint64_t length,
                        bool *done, const char *what, char *errmsg)
{
	char url[HDFS_URL_MAX];
	char extra[40];
	snprintf(extra, sizeof(extra), "&newlength=%llu",
	         (unsigned long long)length);
	int rc = make_url(h, name, "TRUNCATE", extra, url, errmsg, what);
	if (rc != 0) {
		return rc;
	}
	struct xfer x = {.method = "POST", .url = url, .fresh = true};
	rc = call(h, &x, RETRY_SAFE | RETRY_RECOVERY, what, errmsg, NULL);
	if (rc == 0) {
		struct hdfs_json *v = resp_json(&x, &rc);
		const struct hdfs_json *b = hdfs_json_get(v, "boolean");
		if (rc != 0 || b == NULL || b->type != HDFS_JSON_BOOL) {
			rc = bad_answer(rc, what, "boolean", errmsg);
		} else {
			*done = b->boolean;
		}
		free_json(h, v);
	}
	xfer_done(&x);
	return rc;
}

/* OPEN offset/len into buf; *nread bytes. Does not special-case ranges. */
static int open_req(struct hdfs *h, const char *name, uint64_t offset,
                    void *buf, size_t len, size_t *nread, struct xfer *x,
                    const char *what, char *errmsg)
{
	char url[HDFS_URL_MAX];
	char loc[HDFS_URL_MAX];
	char extra[64];
	snprintf(extra, sizeof(extra), "&offset=%llu&length=%zu",
	         (unsigned long long)offset, len);
	int rc = make_url(h, name, "OPEN", extra, url, errmsg, what);
	for (unsigned attempt = 0; rc == 0; attempt++) {
		struct xfer n1 = {.method = "GET", .url = url};
		rc = call(h, &n1, RETRY_SAFE, what, errmsg, NULL);
		if (rc == 0 && (n1.status != 307 || n1.location[0] == '\0')) {
			errf(errmsg,
			     "%s: OPEN answered HTTP %ld without a datanode "
			     "Location (expected 307 TEMPORARY_REDIRECT)",
			     what, n1.status);
			rc = STRATA_EPROTO;
		}
		if (rc != 0) {
			/* Hand the namenode's answer to the caller. */
			xfer_done(x);
			*x = n1;
			return rc;
		}
		memcpy(loc, n1.location, sizeof(loc));
		xfer_done(&n1);
		h->host->counter_add(h->host, "redirects", 1);
		xfer_done(x);
		*x = (struct xfer){.method = "GET",
		                   .url = loc,
		                   .sink = buf,
		                   .sink_cap = len};
		rc = call(h, x, 0, what, errmsg, NULL);
		if (rc == 0 && x->status != 200) {
			errf(errmsg, "%s: datanode answered HTTP %ld to OPEN",
			     what, x->status);
			rc = STRATA_EPROTO;
		}
		if (rc != 0 && transient(x) && attempt < h->retries) {
			/* Ask the namenode again: it may pick another
			 * datanode. */
			sleep_ms(backoff(h, attempt + 1));
			h->host->counter_add(h->host, "retries", 1);
			rc = 0;
			continue;
		}
		break;
	}
	if (rc == 0) {
		*nread = x->sink_len;
	}
	return rc;
}

static int hdfs_read(void *state, const char *name, uint64_t offset, void *buf,
                     size_t len, size_t *nread, char *errmsg)
{
	struct hdfs *h = state;
	char what[STRATA_TIER2_NAME_MAX + 64];
	snprintf(what, sizeof(what), "read chunk %s at offset %llu", name,
	         (unsigned long long)offset);
	*nread = 0;
	int rc = check_name(name, what, errmsg);
	if (rc != 0) {
		return rc;
	}
	struct xfer x = {.method = "GET"};
	if (len > 0 && offset <= INT64_MAX) {
		rc = open_req(h, name, offset, buf, len, nread, &x, what,
		              errmsg);
	}
	/*
	 * HDFS refuses OPEN at an offset >= the length of a non-empty file
	 * (IOException, 403) and a datanode refuses to seek past the end
	 * (EOFException); a zero-length read sends nothing. Decide those
	 * with the length.
	 */
	if (len == 0 || offset > INT64_MAX ||
	    (rc != 0 && rc != STRATA_ENOENT && x.cc == CURLE_OK &&
	     (exc_is(&x, "IOException") || exc_is(&x, "EOFException")))) {
		char saved[STRATA_ERRMSG_SIZE];
		memcpy(saved, errmsg, sizeof(saved));
		struct strata_tier2_chunk_info info;
		int src = get_status(h, name, &info, what, errmsg);
		if (src != 0) {
			rc = src;
		} else if (offset > info.length) {
			errf(errmsg, "%s: past its end (%llu bytes)", what,
			     (unsigned long long)info.length);
			rc = STRATA_ERANGE;
		} else if (offset == info.length || len == 0) {
			rc = 0;
			*nread = 0;
		} else {
			memcpy(errmsg, saved, sizeof(saved));
		}
	} else if (rc == STRATA_ENOENT) {
		errf(errmsg, "%s: no such chunk (%s: %s)", what, x.exception,
		     x.message);
	}
	xfer_done(&x);
	if (rc == 0) {
		h->host->counter_add(h->host, "bytes_read", *nread);
	}
	return rc;
}

/* POST APPEND of buf to a chunk of old_len bytes; either all of it is
 * appended and 0 returned, or (as far as HDFS lets us) none. */
static int append(struct hdfs *h, const char *name, uint64_t old_len,
                  const void *buf, size_t len, const char *what, char *errmsg)
{
	char url[HDFS_URL_MAX];
	char loc[HDFS_URL_MAX];
	int rc = make_url(h, name, "APPEND", "", url, errmsg, what);
	int64_t recovery_deadline = mono_ms() + h->recovery_wait_ms;
	unsigned attempt = 0;
	unsigned recovery_tries = 0;
	while (rc == 0) {
		attempt++;
		rc = redirect_step(h, "POST", url, loc, what, errmsg);
		if (rc != 0) {
			break;
		}
		struct xfer x = {.method = "POST",
		                 .url = loc,
		                 .body = buf,
		                 .body_len = len,
		                 .fresh = true};
		rc = call(h, &x, 0, what, errmsg, NULL);
		if (rc == 0 && x.status != 200) {
			errf(errmsg, "%s: datanode answered HTTP %ld to APPEND",
			     what, x.status);
			rc = STRATA_EPROTO;
		}
		bool recovering = rc != 0 && x.cc == CURLE_OK &&
		                  (exc_is(&x, "RecoveryInProgressException") ||
		                   exc_is(&x, "AlreadyBeingCreatedException"));
		bool lost = rc != 0 && transient(&x);
		xfer_done(&x);
		if (rc == 0) {
			break;
		}
		if (recovering && mono_ms() < recovery_deadline) {
			/* A truncate left the last block under recovery;
			 * nothing was written. */
			recovery_tries++;
			attempt--;
			h->host->counter_add(h->host, "retries", 1);
			sleep_ms(backoff(h, recovery_tries));
			rc = 0;
			continue;
		}
		if (!lost) {
			break; /* HDFS refused: nothing was appended */
		}
		/*
		 * The answer was lost or the datanode failed: some, all or
		 * none of the bytes may be in the file. Look.
		 */
		char saved[STRATA_ERRMSG_SIZE];
		char m[STRATA_ERRMSG_SIZE];
		memcpy(saved, errmsg, sizeof(saved));
		struct strata_tier2_chunk_info info;
		int src = get_status(h, name, &info, what, m);
		if (src == 0 && info.length == old_len + len) {
			/* All there: the same bytes? */
			void *back = h_malloc(h, len);
			size_t got = 0;
			struct xfer rx = {.method = "GET"};
			int rrc = back == NULL
			                  ? STRATA_ENOMEM
			                  : open_req(h, name, old_len, back,
			                             len, &got, &rx, what, m);
			bool same = rrc == 0 && got == len &&
			            memcmp(back, buf, len) == 0;
			xfer_done(&rx);
			h_free(h, back);
			if (same) {
				rc = 0;
				break;
			}
		}
		bool clean = src == 0 && info.length == old_len;
		if (src == 0 && info.length > old_len) {
			bool done;
			src = truncate_req(h, name, old_len, &done, what, m);
			clean = src == 0;
		}
		if (!clean) {
			errf(errmsg,
			     "%.120s; and the chunk's state is unknown "
			     "(%.60s): "
			     "truncate it to %llu before writing again",
			     saved, src != 0 ? m : "length changed",
			     (unsigned long long)old_len);
			break;
		}
		memcpy(errmsg, saved, sizeof(saved));
		if (attempt > h->retries) {
			break;
		}
		h->host->counter_add(h->host, "retries", 1);
		sleep_ms(backoff(h, attempt));
		rc = 0;
	}
	return rc;
}

static int hdfs_write(void *state, const char *name, uint64_t offset,
                      const void *buf, size_t len, char *errmsg)
{
	struct hdfs *h = state;
	char what[STRATA_TIER2_NAME_MAX + 64];
	snprintf(what, sizeof(what), "write chunk %s at offset %llu", name,
	         (unsigned long long)offset);
	int rc = check_name(name, what, errmsg);
	struct strata_tier2_chunk_info info;
	if (rc == 0) {
		rc = get_status(h, name, &info, what, errmsg);
	}
	if (rc == STRATA_ENOENT) {
		errf(errmsg, "%s: no such chunk (create it first)", what);
	}
	if (rc == 0 && offset != info.length) {
		errf(errmsg,
		     "%s: the chunk is %llu bytes long (appends go at its "
		     "end)",
		     what, (unsigned long long)info.length);
		rc = STRATA_EBADOFFSET;
	}
	if (rc == 0 && len > 0) {
		rc = append(h, name, offset, buf, len, what, errmsg);
		if (rc == 0) {
			h->host->counter_add(h->host, "bytes_written", len);
		}
	}
	return rc;
}

static int hdfs_create(void *state, const char *name, char *errmsg)
{
	struct hdfs *h = state;
	char what[STRATA_TIER2_NAME_MAX + 32];
	char url[HDFS_URL_MAX];
	char loc[HDFS_URL_MAX];
	snprintf(what, sizeof(what), "create chunk %s", name);
	int rc = check_name(name, what, errmsg);
	if (rc == 0) {
		rc = make_url(h, name, "CREATE", "&overwrite=false", url,
		              errmsg, what);
	}
	bool lost_before = false;
	for (unsigned attempt = 0; rc == 0; attempt++) {
		rc = redirect_step(h, "PUT", url, loc, what, errmsg);
		if (rc != 0) {
			break;
		}
		struct xfer x = {.method = "PUT", .url = loc, .fresh = true};
		rc = call(h, &x, 0, what, errmsg, NULL);
		if (rc == 0 && x.status != 201 && x.status != 200) {
			errf(errmsg, "%s: datanode answered HTTP %ld to CREATE",
			     what, x.status);
			rc = STRATA_EPROTO;
		}
		bool lost = rc != 0 && transient(&x);
		xfer_done(&x);
		if (rc == STRATA_EEXIST && lost_before) {
			/* Our earlier attempt made it; an empty file is
			 * what we wanted. */
			struct strata_tier2_chunk_info info;
			char m[STRATA_ERRMSG_SIZE];
			if (get_status(h, name, &info, what, m) == 0 &&
			    info.length == 0) {
				rc = 0;
			}
		}
		if (rc == STRATA_EEXIST) {
			errf(errmsg, "%s: it already exists", what);
		}
		if (rc == 0 || !lost || attempt >= h->retries) {
			break;
		}
		lost_before = true;
		h->host->counter_add(h->host, "retries", 1);
		sleep_ms(backoff(h, attempt + 1));
		rc = 0;
	}
	return rc;
}

static int hdfs_truncate(void *state, const char *name, uint64_t length,
                         char *errmsg)
{
	struct hdfs *h = state;
	char what[STRATA_TIER2_NAME_MAX + 64];
	snprintf(what, sizeof(what), "truncate chunk %s to %llu bytes", name,
	         (unsigned long long)length);
	struct strata_tier2_chunk_info info;
	int rc = check_name(name, what, errmsg);
	if (rc == 0) {
		rc = get_status(h, name, &info, what, errmsg);
	}
	if (rc == 0 && length > info.length) {
		errf(errmsg, "%s: it is only %llu bytes long", what,
		     (unsigned long long)info.length);
		rc = STRATA_ERANGE;
	}
	if (rc == 0 && length < info.length) {
		/* false = the last block is being recovered; HDFS finishes
		 * that alone and a following APPEND waits for it. */
		bool done = true;
		rc = truncate_req(h, name, length, &done, what, errmsg);
		if (rc == 0 && !done) {
			h->host->counter_add(h->host, "truncate_recoveries", 1);
		}
	}
	return rc;
}

/* DELETE path (recursive=false); *deleted is the boolean answer. */
static int delete_req(struct hdfs *h, const char *name, unsigned flags,
                      bool *deleted, unsigned *attempts, const char *what,
                      char *errmsg)
{
	char url[HDFS_URL_MAX];
	int rc = make_url(h, name, "DELETE", "&recursive=false", url, errmsg,
	                  what);
	if (rc != 0) {
		return rc;
	}
	struct xfer x = {.method = "DELETE", .url = url, .fresh = true};
	rc = call(h, &x, flags, what, errmsg, attempts);
	if (rc == 0) {
		struct hdfs_json *v = resp_json(&x, &rc);
		const struct hdfs_json *b = hdfs_json_get(v, "boolean");
		if (rc != 0 || b == NULL || b->type != HDFS_JSON_BOOL) {
			rc = bad_answer(rc, what, "boolean", errmsg);
		} else {
			*deleted = b->boolean;
		}
		free_json(h, v);
	}
	xfer_done(&x);
	return rc;
}

/* Remove the directories of name that are now empty, deepest first,
 * stopping at the first that is not (one DELETE each; errors ignored). */
static void prune_parents(struct hdfs *h, const char *name)
{
	char dir[STRATA_TIER2_NAME_MAX + 1];
	char m[STRATA_ERRMSG_SIZE];
	snprintf(dir, sizeof(dir), "%s", name);
	for (;;) {
		char *slash = strrchr(dir, '/');
		if (slash == NULL) {
			return;
		}
		*slash = '\0';
		bool deleted = false;
		if (delete_req(h, dir, 0, &deleted, NULL, "prune", m) != 0 ||
		    !deleted) {
			return;
		}
	}
}

/* Delete one chunk; missing = STRATA_ENOENT. */
static int delete_chunk(struct hdfs *h, const char *name, const char *what,
                        char *errmsg)
{
	bool deleted = false;
	unsigned attempts = 0;
	int rc = delete_req(h, name, RETRY_SAFE, &deleted, &attempts, what,
	                    errmsg);
	if (rc == 0 && !deleted && attempts == 1) {
		errf(errmsg, "%s: no such chunk", what);
		rc = STRATA_ENOENT;
	}
	/* false after a failed attempt: that attempt deleted it. */
	if (rc == 0) {
		prune_parents(h, name);
	}
	return rc;
}

static int hdfs_delete(void *state, const char *name, char *errmsg)
{
	struct hdfs *h = state;
	char what[STRATA_TIER2_NAME_MAX + 32];
	snprintf(what, sizeof(what), "delete chunk %s", name);
	int rc = check_name(name, what, errmsg);
	return rc != 0 ? rc : delete_chunk(h, name, what, errmsg);
}

/* ---- list ------------------------------------------------------------ */

/* A stack of directories (chunk-name prefixes) still to list. */
struct dirstack {
	char **v;
	size_t n;
	size_t cap;
};

static int push_dir(struct hdfs *h, struct dirstack *s, const char *dir,
                    const char *sub)
{
	if (s->n == s->cap) {
		size_t cap = s->cap == 0 ? 16 : s->cap * 2;
		char **v = h->host->realloc(s->v, cap * sizeof(*v));
		if (v == NULL) {
			return STRATA_ENOMEM;
		}
		s->v = v;
		s->cap = cap;
	}
	size_t dl = strlen(dir);
	size_t sl = strlen(sub);
	char *p = h_malloc(h, dl + sl + 2);
	if (p == NULL) {
		return STRATA_ENOMEM;
	}
	memcpy(p, dir, dl);
	size_t k = dl;
	if (dl > 0) {
		p[k++] = '/';
	}
	memcpy(p + k, sub, sl + 1);
	s->v[s->n++] = p;
	return 0;
}

/* LISTSTATUS of one directory: files whose suffix starts with filter go
 * to cb, subdirectories matching it onto the stack. */
static int list_dir(struct hdfs *h, const char *dir, const char *filter,
                    struct dirstack *stack, strata_tier2_list_cb cb, void *arg,
                    const char *what, char *errmsg)
{
	char url[HDFS_URL_MAX];
	int rc = make_url(h, dir, "LISTSTATUS", "", url, errmsg, what);
	if (rc != 0) {
		return rc;
	}
	struct xfer x = {.method = "GET", .url = url};
	rc = call(h, &x, RETRY_SAFE, what, errmsg, NULL);
	if (rc == STRATA_ENOENT) {
		xfer_done(&x);
		return 0; /* nothing under this prefix */
	}
	struct hdfs_json *v = NULL;
	if (rc == 0) {
		v = resp_json(&x, &rc);
		if (rc != 0) {
			rc = bad_answer(rc, what, "FileStatuses", errmsg);
		}
	}
	xfer_done(&x);
	const struct hdfs_json *arr =
	        hdfs_json_get(hdfs_json_get(v, "FileStatuses"), "FileStatus");
	if (rc == 0 && (arr == NULL || arr->type != HDFS_JSON_ARRAY)) {
		rc = bad_answer(0, what, "FileStatuses", errmsg);
	}
	size_t flen = strlen(filter);
	size_t dlen = strlen(dir);
	char *full = NULL;
	for (const struct hdfs_json *e = arr != NULL ? arr->child : NULL;
	     rc == 0 && e != NULL; e = e->next) {
		const char *sfx = hdfs_json_str(hdfs_json_get(e, "pathSuffix"));
		if (sfx == NULL || sfx[0] == '\0' || strchr(sfx, '/') ||
		    strncmp(sfx, filter, flen) != 0 ||
		    strncmp(sfx, HDFS_HIDDEN_PREFIX,
		            strlen(HDFS_HIDDEN_PREFIX)) == 0) {
			continue; /* "" = dir is a file itself */
		}
		struct strata_tier2_chunk_info info;
		bool is_dir = false;
		if (!file_info(e, &info, &is_dir)) {
			if (is_dir) {
				rc = push_dir(h, stack, dir, sfx);
				if (rc == STRATA_ENOMEM) {
					errf(errmsg, "%s: out of memory", what);
				}
			}
			continue;
		}
		size_t slen = strlen(sfx);
		if (dlen + slen + 2 > STRATA_TIER2_NAME_MAX + 1) {
			continue; /* not a name Strata could have made */
		}
		h_free(h, full);
		full = h_malloc(h, dlen + slen + 2);
		if (full == NULL) {
			errf(errmsg, "%s: out of memory", what);
			rc = STRATA_ENOMEM;
			break;
		}
		snprintf(full, dlen + slen + 2, "%s%s%s", dir,
		         dlen > 0 ? "/" : "", sfx);
		rc = cb(arg, full, &info);
	}
	h_free(h, full);
	free_json(h, v);
	return rc;
}

static int hdfs_list(void *state, const char *prefix, strata_tier2_list_cb cb,
                     void *arg, char *errmsg)
{
	struct hdfs *h = state;
	char what[STRATA_TIER2_NAME_MAX + 32];
	snprintf(what, sizeof(what), "list prefix '%s'", prefix);
	/* Directory part and the start of the names in it. */
	const char *slash = strrchr(prefix, '/');
	size_t dlen = slash != NULL ? (size_t)(slash - prefix) : 0;
	char *dir = h_strndup(h->host, prefix, dlen);
	struct dirstack stack = {0};
	if (dir == NULL) {
		errf(errmsg, "%s: out of memory", what);
		return STRATA_ENOMEM;
	}
	int rc = 0;
	if (reserved_name(prefix)) {
		goto out; /* nothing of ours is ever listed */
	}
	rc = list_dir(h, dir, slash != NULL ? slash + 1 : prefix, &stack, cb,
	              arg, what, errmsg);
	while (rc == 0 && stack.n > 0) {
		char *d = stack.v[--stack.n];
		rc = list_dir(h, d, "", &stack, cb, arg, what, errmsg);
		h_free(h, d);
	}
out:
	for (size_t i = 0; i < stack.n; i++) {
		h_free(h, stack.v[i]);
	}
	h_free(h, stack.v);
	h_free(h, dir);
	return rc;
}

/* ---- concat ---------------------------------------------------------- */

static bool same_dir(const char *a, const char *b)
{
	const char *sa = strrchr(a, '/');
	const char *sb = strrchr(b, '/');
	size_t la = sa != NULL ? (size_t)(sa - a) : 0;
	size_t lb = sb != NULL ? (size_t)(sb - b) : 0;
	return la == lb && strncmp(a, b, la) == 0;
}

/* CONCAT of the non-empty sources (all in target's directory). */
static int native_concat(struct hdfs *h, const char *target,
                         const char *const *sources, const uint64_t *lens,
                         size_t n, uint64_t old_len, uint64_t total,
                         const char *what, char *errmsg)
{
	size_t cap = 16;
	for (size_t i = 0; i < n; i++) {
		cap += strlen(h->base) + strlen(sources[i]) + 2;
	}
	char *extra = h_malloc(h, cap);
	if (extra == NULL) {
		errf(errmsg, "%s: out of memory", what);
		return STRATA_ENOMEM;
	}
	size_t k = (size_t)snprintf(extra, cap, "&sources=");
	bool first = true;
	for (size_t i = 0; i < n; i++) {
		if (lens[i] == 0) {
			continue;
		}
		k += (size_t)snprintf(extra + k, cap - k, "%s%s/%s",
		                      first ? "" : ",", h->base, sources[i]);
		first = false;
	}
	char url[HDFS_URL_MAX];
	int rc = make_url(h, target, "CONCAT", extra, url, errmsg, what);
	h_free(h, extra);
	for (unsigned attempt = 0; rc == 0; attempt++) {
		struct xfer x = {.method = "POST", .url = url, .fresh = true};
		rc = call(h, &x, 0, what, errmsg, NULL);
		bool lost = rc != 0 && transient(&x);
		xfer_done(&x);
		if (rc == 0 || !lost) {
			break;
		}
		/* Did the lost request happen? The target's length says. */
		struct strata_tier2_chunk_info info;
		char m[STRATA_ERRMSG_SIZE];
		if (get_status(h, target, &info, what, m) == 0) {
			if (info.length == old_len + total) {
				rc = 0;
				break;
			}
			if (info.length == old_len && attempt < h->retries) {
				h->host->counter_add(h->host, "retries", 1);
				sleep_ms(backoff(h, attempt + 1));
				rc = 0;
				continue;
			}
		}
		break;
	}
	return rc;
}

/* Copy the non-empty sources onto the end of target through the client;
 * on failure cut the target back to old_len. */
static int copy_concat(struct hdfs *h, const char *target,
                       const char *const *sources, const uint64_t *lens,
                       size_t n, uint64_t old_len, const char *what,
                       char *errmsg)
{
	unsigned char *buf = h_malloc(h, HDFS_COPY_PIECE);
	if (buf == NULL) {
		errf(errmsg, "%s: out of memory", what);
		return STRATA_ENOMEM;
	}
	int rc = 0;
	uint64_t at = old_len;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		for (uint64_t off = 0; rc == 0 && off < lens[i];) {
			size_t want = lens[i] - off < HDFS_COPY_PIECE
			                      ? (size_t)(lens[i] - off)
			                      : HDFS_COPY_PIECE;
			size_t got = 0;
			struct xfer x = {.method = "GET"};
			rc = open_req(h, sources[i], off, buf, want, &got, &x,
			              what, errmsg);
			xfer_done(&x);
			if (rc == 0 && got != want) {
				errf(errmsg,
				     "%s: source chunk %s shrank while being "
				     "copied",
				     what, sources[i]);
				rc = STRATA_EIO;
			}
			if (rc == 0) {
				rc = append(h, target, at, buf, got, what,
				            errmsg);
			}
			off += got;
			at += got;
		}
	}
	h_free(h, buf);
	if (rc != 0 && at > old_len) {
		bool done;
		char m[STRATA_ERRMSG_SIZE];
		if (truncate_req(h, target, old_len, &done, what, m) != 0) {
			char saved[STRATA_ERRMSG_SIZE];
			memcpy(saved, errmsg, sizeof(saved));
			errf(errmsg,
			     "%.140s; cutting the target back also failed: "
			     "truncate it to %llu",
			     saved, (unsigned long long)old_len);
		}
	}
	return rc;
}

static int hdfs_concat(void *state, const char *target,
                       const char *const *sources, size_t n, char *errmsg)
{
	struct hdfs *h = state;
	char what[STRATA_TIER2_NAME_MAX + 32];
	snprintf(what, sizeof(what), "concat into chunk %s", target);
	struct strata_tier2_chunk_info info;
	int rc = check_name(target, what, errmsg);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = check_name(sources[i], what, errmsg);
	}
	if (rc == 0) {
		rc = get_status(h, target, &info, what, errmsg);
	}
	if (rc != 0) {
		return rc;
	}
	uint64_t old_len = info.length;
	uint64_t *lens = h_malloc(h, (n + 1) * sizeof(*lens));
	if (lens == NULL) {
		errf(errmsg, "%s: out of memory", what);
		return STRATA_ENOMEM;
	}
	uint64_t total = 0;
	bool native = true;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char sw[STRATA_TIER2_NAME_MAX + 80];
		snprintf(sw, sizeof(sw), "concat into chunk %s: source %s",
		         target, sources[i]);
		rc = get_status(h, sources[i], &info, sw, errmsg);
		lens[i] = info.length;
		total += info.length;
		for (size_t j = 0; rc == 0 && j < i; j++) {
			if (strcmp(sources[i], sources[j]) == 0) {
				errf(errmsg, "%s: source %s is given twice",
				     what, sources[i]);
				rc = STRATA_EINVAL;
			}
		}
		if (info.length > 0 && !same_dir(sources[i], target)) {
			native = false;
		}
	}
	/*
	 * HDFS concatenates only non-empty files of the target's directory;
	 * empty sources are just deleted, others are copied.
	 */
	if (rc == 0 && total > 0) {
		rc = native ? native_concat(h, target, sources, lens, n,
		                            old_len, total, what, errmsg)
		            : copy_concat(h, target, sources, lens, n, old_len,
		                          what, errmsg);
		h->host->counter_add(
		        h->host, native ? "concat_native" : "concat_copied", 1);
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (native && lens[i] > 0) {
			prune_parents(h, sources[i]); /* CONCAT removed it */
			continue;
		}
		char m[STRATA_ERRMSG_SIZE];
		int drc = delete_chunk(h, sources[i], what, m);
		if (drc != 0 && drc != STRATA_ENOENT) {
			errf(errmsg,
			     "%s: the data is in the target but deleting "
			     "source %s failed (%.80s): delete it",
			     what, sources[i], m);
			rc = drc;
		}
	}
	h_free(h, lens);
	return rc;
}

static const struct strata_tier2_ops hdfs_ops = {
        .abi_version = STRATA_TIER2_ABI_VERSION,
        .name = "hdfs",
        .open = hdfs_open,
        .close = hdfs_close,
        .create = hdfs_create,
        .write = hdfs_write,
        .read = hdfs_read,
        .stat = hdfs_stat,
        .list = hdfs_list,
        .truncate = hdfs_truncate,
        .concat = hdfs_concat,
        .remove = hdfs_delete,
        .check = hdfs_check,
};

STRATA_PLUGIN_EXPORT const struct strata_tier2_ops *strata_tier2_plugin(void);

/* The plugin's one exported symbol. */
const struct strata_tier2_ops *strata_tier2_plugin(void)
{
	return &hdfs_ops;
}
