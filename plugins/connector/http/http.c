/*
 * Connector "http" (libcurl): a source reading a document served over
 * HTTP(S) line by line with ranged GETs, replayable from a byte offset and
 * optionally following the document as it grows, and a sink POSTing
 * records to a URL (at least once). docs/connect.md, "Connectors shipped".
 *
 * Source: the file connector's line rules (one record per line, '\n'
 * removed; a last line without '\n' is a record at the end unless
 * following). The position token is the decimal offset of the first byte
 * not yet returned. Every request asks for "Range: bytes=<offset>-" from
 * where the bytes received so far end: a server answering 206 sends just
 * those; one answering 200 (no range support) sends the whole document and
 * the bytes before the offset are dropped; 416 means nothing new yet. A
 * restore at offset P > 0 asks from P - 1 and checks that byte is '\n' (or
 * that P is the document's length), as the file source checks the file.
 * The body streams through a bounded buffer (the libcurl transfer is
 * paused while it is full): memory stays near max(64 KiB, max_len) + 16 KiB
 * whatever the document's size. Without follow the source ends after one
 * complete response; with follow it asks again every poll_ms. Connection
 * failures, 408, 429 and 5xx answers are retried (retries times, backoff
 * from 100 ms doubling to 5 s) from the byte reached; a document that
 * shrinks below what was read is an error, as is any other status.
 *
 * Sink: mode=lines (default) POSTs records as newline-terminated lines,
 * batch_bytes at a time (a record larger than that goes alone); mode=each
 * POSTs every record as its own body. A 2xx answer is success; failures
 * are retried as above and may therefore reach the server twice, and a
 * restart replays from the last checkpoint: at least once. The prepare
 * token is the count of records this instance delivered; a restore token
 * is accepted and ignored.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lines.h"

#define URL_CAP 4096          /* longest url + 1 */
#define KEY_CAP 4096          /* longest key + 1 */
#define CTYPE_CAP 256         /* longest content_type + 1 */
#define HEADER_CAP 8192       /* longest "Name: value" + 1 */
#define BACKOFF_FIRST_MS 100u /* first retry delay; doubles */
#define BACKOFF_MAX_MS 5000u  /* longest retry delay */
#define WAIT_STEP_MS 1000     /* longest single curl_multi_poll */
#define BODY_NOTE_CAP 160     /* response bytes kept for messages */

/* ------------------------------------------------------ libcurl setup */

/* libcurl's global state (and GnuTLS's under it) lives while an instance
 * does: the host may dlclose() the plugin after the last close. */
static pthread_mutex_t curl_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned curl_users;

static int curl_ref(char *errmsg)
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
	if (rc != CURLE_OK) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "curl_global_init failed: %s", curl_easy_strerror(rc));
		return STRATA_EIO;
	}
	return 0;
}

static void curl_unref(void)
{
	pthread_mutex_lock(&curl_lock);
	if (--curl_users == 0) {
		curl_global_cleanup();
	}
	pthread_mutex_unlock(&curl_lock);
}

/* Sleep for ms milliseconds (signals may cut it short). */
static void sleep_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000),
	                      (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* The delay before retry number attempt (1, 2, ...). */
static uint64_t backoff_ms(unsigned attempt)
{
	uint64_t d = BACKOFF_FIRST_MS;
	for (unsigned i = 1; i < attempt && d < BACKOFF_MAX_MS; i++) {
		d *= 2;
	}
	return d < BACKOFF_MAX_MS ? d : BACKOFF_MAX_MS;
}

/* An HTTP status worth asking again for: the server or a proxy is busy or
 * briefly down. */
static bool status_transient(long code)
{
	return code == 408 || code == 429 || code >= 500;
}

/* A libcurl error that a new attempt cannot fix (the request itself is
 * wrong); everything else (connect, TLS handshake, timeouts, resets) is
 * retried. */
static bool curl_error_final(CURLcode cc)
{
	return cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT ||
	       cc == CURLE_NOT_BUILT_IN || cc == CURLE_OUT_OF_MEMORY ||
	       cc == CURLE_WRITE_ERROR || cc == CURLE_ABORTED_BY_CALLBACK ||
	       cc == CURLE_BAD_FUNCTION_ARGUMENT;
}

/* A hint for a final HTTP status, for messages. */
static const char *status_hint(long code)
{
	switch (code) {
	case 401:
	case 403:
		return ": check the credentials (header, header_file)";
	case 404:
	case 410:
		return ": check url";
	default:
		return "";
	}
}

/* ---------------------------------------------------------- options */

/* The options of either side; sink-only fields stay at their defaults
 * for a source and the other way round. */
struct opts {
	char url[URL_CAP];            /* url= (required, http:// or https://) */
	char key[KEY_CAP];            /* key=: routing key of every record */
	bool have_key;                /* key= was given (maybe empty: none) */
	bool follow;                  /* follow=: ask again at the end */
	uint32_t poll_ms;             /* poll_ms=: follow's asking interval */
	bool each;                    /* mode=each: a POST per record */
	size_t batch_bytes;           /* batch_bytes=: mode=lines POST size */
	char content_type[CTYPE_CAP]; /* content_type= (sink) */
	uint32_t timeout_ms;          /* timeout_ms=: one POST, all of it */
	uint32_t connect_timeout_ms;  /* connect_timeout_ms= */
	uint32_t retries;             /* retries=: attempts after the first */
	struct curl_slist *headers;   /* header= and header_file= lines */
};

/* A header name: an RFC 9110 token. */
static bool header_name_ok(const char *n, size_t len)
{
	if (len == 0) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		char c = n[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') ||
		          strchr("!#$%&'*+.^_`|~-", c);
		if (!ok || c == '\0') {
			return false;
		}
	}
	return true;
}

/* Add the header line v[n] ("Name: value") to o->headers. NULL or what
 * a bad one should be. */
static const char *add_header(struct opts *o, const char *v, size_t n)
{
	const char *colon = memchr(v, ':', n);
	char line[HEADER_CAP];
	if (colon == NULL || !header_name_ok(v, (size_t)(colon - v))) {
		return "'Name: value' with a header name of letters, digits "
		       "and !#$%&'*+.^_`|~-";
	}
	if (memchr(v, '\r', n) != NULL || memchr(v, '\0', n) != NULL) {
		return "a header without CR or NUL";
	}
	if (n >= sizeof(line)) {
		return "a header of at most 8191 bytes";
	}
	size_t nlen = (size_t)(colon - v);
	const char *val = colon + 1;
	size_t vlen = n - nlen - 1;
	while (vlen > 0 && (*val == ' ' || *val == '\t')) {
		val++;
		vlen--;
	}
	/* "Name;" is how libcurl sends a header with an empty value. */
	if (vlen > 0) {
		snprintf(line, sizeof(line), "%.*s: %.*s", (int)nlen, v,
		         (int)vlen, val);
	} else {
		snprintf(line, sizeof(line), "%.*s;", (int)nlen, v);
	}
	struct curl_slist *l = curl_slist_append(o->headers, line);
	if (l == NULL) {
		return "a header that fits in memory";
	}
	o->headers = l;
	return NULL;
}

/* Add the headers of a header_file= (borrowed path): "Name: value" lines,
 * blank lines and '#' comments skipped. 0, or STRATA_ECONFIG with errmsg
 * naming the file (and the line). */
static int add_header_file(struct opts *o, const char *path, char *errmsg)
{
	char buf[HEADER_CAP];
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "option header_file of the http connector: open "
		         "%.150s: %s",
		         path, strerror(errno));
		return STRATA_ECONFIG;
	}
	int rc = 0;
	for (unsigned line = 1; fgets(buf, sizeof(buf), f) != NULL; line++) {
		size_t n = strlen(buf);
		bool whole = n > 0 && buf[n - 1] == '\n';
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
			n--;
		}
		const char *why = NULL;
		if (!whole && !feof(f)) {
			why = "a header of at most 8191 bytes";
		} else if (n > 0 && buf[0] != '#') {
			why = add_header(o, buf, n);
		}
		if (why != NULL) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "option header_file of the http connector: "
			         "%.120s line %u is not %s",
			         path, line, why);
			rc = STRATA_ECONFIG;
			break;
		}
	}
	fclose(f);
	return rc;
}

/* url: http:// or https:// and something libcurl parses. */
static bool url_ok(const char *url)
{
	if (strncasecmp(url, "http://", 7) != 0 &&
	    strncasecmp(url, "https://", 8) != 0) {
		return false;
	}
	CURLU *u = curl_url();
	if (u == NULL) {
		return false;
	}
	CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
	char *host = NULL;
	if (rc == CURLUE_OK) {
		rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
	}
	bool ok = rc == CURLUE_OK && host != NULL && host[0] != '\0';
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

static void opts_free(struct opts *o)
{
	curl_slist_free_all(o->headers);
	o->headers = NULL;
}

/*
 * Parse config (borrowed) for the source or the sink into *o (its headers
 * freed by opts_free, also after an error). 0, or STRATA_ECONFIG with
 * errmsg naming the key: unknown (the valid ones listed), a bad value, or
 * url missing.
 */
static int parse_opts(const char *config, bool source, struct opts *o,
                      char *errmsg)
{
	const char *what = source ? "http source" : "http sink";
	const char *valid =
	        source ? "url, key, follow, poll_ms, connect_timeout_ms, "
	                 "retries, header, header_file"
	               : "url, mode, batch_bytes, content_type, timeout_ms, "
	                 "connect_timeout_ms, retries, header, header_file";
	bool have_url = false;
	memset(o, 0, sizeof(*o));
	o->poll_ms = 1000;
	o->batch_bytes = 1024 * 1024;
	o->timeout_ms = 30000;
	o->connect_timeout_ms = 10000;
	o->retries = 5;
	const char *cur = config;
	struct strata_config_item it;
	while (strata_config_next(&cur, &it)) {
		const char *want = NULL; /* what a bad value should be */
		uint64_t v = 0;
		if (it.value == NULL) {
			return conn_opt_not_kv(errmsg, what, &it);
		} else if (strata_config_key_is(&it, "url")) {
			have_url = conn_opt_string(&it, o->url, sizeof(o->url),
			                           true) &&
			           url_ok(o->url);
			want = have_url ? NULL
			                : "an http:// or https:// URL of at "
			                  "most "
			                  "4095 bytes";
		} else if (strata_config_key_is(&it, "header")) {
			want = add_header(o, it.value, it.value_len);
		} else if (strata_config_key_is(&it, "header_file")) {
			char path[URL_CAP];
			if (!conn_opt_string(&it, path, sizeof(path), true)) {
				want = "a path of 1 to 4095 bytes";
			} else {
				int rc = add_header_file(o, path, errmsg);
				if (rc != 0) {
					return rc;
				}
			}
		} else if (strata_config_key_is(&it, "connect_timeout_ms")) {
			want = conn_opt_u64(&it, 1, 600000, &v) ? NULL
			                                        : "1..600000";
			o->connect_timeout_ms = (uint32_t)v;
		} else if (strata_config_key_is(&it, "retries")) {
			want = conn_opt_u64(&it, 0, 1000, &v) ? NULL
			                                      : "0..1000";
			o->retries = (uint32_t)v;
		} else if (source && strata_config_key_is(&it, "key")) {
			o->have_key = true;
			if (!conn_opt_string(&it, o->key, sizeof(o->key),
			                     false)) {
				want = "at most 4095 bytes";
			}
		} else if (source && strata_config_key_is(&it, "follow")) {
			if (!conn_bool(it.value, it.value_len, &o->follow)) {
				want = "true or false";
			}
		} else if (source && strata_config_key_is(&it, "poll_ms")) {
			want = conn_opt_u64(&it, 1, 3600000, &v) ? NULL
			                                         : "1..3600000";
			o->poll_ms = (uint32_t)v;
		} else if (!source && strata_config_key_is(&it, "mode")) {
			o->each = conn_opt_value_is(&it, "each");
			if (!o->each && !conn_opt_value_is(&it, "lines")) {
				want = "lines or each";
			}
		} else if (!source &&
		           strata_config_key_is(&it, "batch_bytes")) {
			want = conn_opt_u64(&it, 1, 256u * 1024 * 1024, &v)
			               ? NULL
			               : "1..268435456";
			o->batch_bytes = (size_t)v;
		} else if (!source &&
		           strata_config_key_is(&it, "content_type")) {
			if (!conn_opt_string(&it, o->content_type,
			                     sizeof(o->content_type), true) ||
			    strpbrk(o->content_type, "\r\n") != NULL) {
				want = "a media type of 1 to 255 bytes";
			}
		} else if (!source && strata_config_key_is(&it, "timeout_ms")) {
			want = conn_opt_u64(&it, 1, 3600000, &v) ? NULL
			                                         : "1..3600000";
			o->timeout_ms = (uint32_t)v;
		} else {
			return conn_opt_unknown(errmsg, what, &it, valid);
		}
		if (want != NULL) {
			return conn_opt_bad(errmsg, what, &it, want);
		}
	}
	if (!have_url) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "option url of the %s is required (the %s)", what,
		         source ? "document to read" : "endpoint to POST to");
		return STRATA_ECONFIG;
	}
	if (!source && o->content_type[0] == '\0') {
		snprintf(o->content_type, sizeof(o->content_type), "%s",
		         o->each ? "application/octet-stream"
		                 : "application/x-ndjson");
	}
	return 0;
}

/* The options every request of an instance shares. */
static void easy_common(CURL *e, const struct opts *o, char *errbuf)
{
	curl_easy_setopt(e, CURLOPT_URL, o->url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)o->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "strata-connect");
}

/* ----------------------------------------------------------- source */

/* An open http source. */
struct src {
	const struct strata_host *host; /* borrowed until close */
	struct opts o;                  /* url, key, headers */
	const char *key;                /* every record's key; NULL = none */
	size_t keylen;                  /* bytes of key */
	CURLM *multi;                   /* drives easy without blocking */
	CURL *easy;                     /* the one request at a time */
	char errbuf[CURL_ERROR_SIZE];   /* libcurl's last error detail */
	struct lines in;                /* received, not yet returned */
	size_t max_len;                 /* of the poll running the transfer */
	uint64_t restore;               /* restore offset still to check, 0 */
	bool active;                    /* easy is in multi */
	bool paused;                    /* the body waits for room in in */
	bool eof;                       /* the document is all received */
	uint64_t next_ms;               /* no request before this time */
	unsigned attempts;              /* failed attempts in a row that
	                                   brought no bytes */
	int failed;                     /* a final error: failmsg says it */
	char failmsg[STRATA_ERRMSG_SIZE];
	/* the response in flight */
	uint64_t req_from; /* the offset asked for */
	uint64_t floor;    /* the document must be at least this long */
	bool checked;      /* status and headers looked at */
	bool discard;      /* the body is not the document (416, errors) */
	long transient;    /* a status to retry (0: none) */
	uint64_t skip;     /* body bytes before req_from (a 200) */
	bool check_nl;     /* the first byte kept must be '\n' (restore) */
	bool cr_valid;     /* Content-Range seen */
	uint64_t cr_start; /* its first byte ("*": UINT64_MAX) */
	uint64_t cr_total; /* its total (UINT64_MAX: "*", unknown) */
	uint64_t got;      /* document bytes this response delivered */
};

/* The document bytes received so far: returned or buffered. */
static uint64_t src_read_to(const struct src *s)
{
	return s->in.offset + (s->in.len - s->in.start);
}

/* Record a final error found inside a libcurl callback; the callback then
 * aborts the transfer and the poll reports it. */
static void src_fail(struct src *s, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void src_fail(struct src *s, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->failmsg, sizeof(s->failmsg), fmt, ap);
	va_end(ap);
	s->failed = code;
}

/* Parse "bytes A-B/T" or "bytes * /T" (no space) of a Content-Range. */
static void src_content_range(struct src *s, const char *v, size_t n)
{
	char buf[96];
	unsigned long long a = 0, b = 0, t = 0;
	char tail[2];
	if (n >= sizeof(buf)) {
		return;
	}
	memcpy(buf, v, n);
	buf[n] = '\0';
	s->cr_valid = false;
	if (sscanf(buf, "bytes %llu-%llu/%llu%1s", &a, &b, &t, tail) == 3) {
		s->cr_start = a;
		s->cr_total = t;
		s->cr_valid = true;
	} else if (sscanf(buf, "bytes %llu-%llu/*%1s", &a, &b, tail) == 2) {
		s->cr_start = a;
		s->cr_total = UINT64_MAX;
		s->cr_valid = true;
	} else if (sscanf(buf, "bytes */%llu%1s", &t, tail) == 1) {
		s->cr_start = UINT64_MAX;
		s->cr_total = t;
		s->cr_valid = true;
	}
}

/* CURLOPT_HEADERFUNCTION: a status line starts a response (redirects and
 * 1xx answers come first); Content-Range is kept. */
static size_t src_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct src *s = arg;
	size_t n = size * nmemb;
	static const char cr[] = "content-range:";
	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		s->checked = s->discard = s->cr_valid = false;
		s->transient = 0;
	} else if (n > sizeof(cr) - 1 &&
	           strncasecmp(p, cr, sizeof(cr) - 1) == 0) {
		const char *v = p + sizeof(cr) - 1;
		size_t vn = n - (sizeof(cr) - 1);
		while (vn > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vn--;
		}
		while (vn > 0 && (v[vn - 1] == '\r' || v[vn - 1] == '\n' ||
		                  v[vn - 1] == ' ')) {
			vn--;
		}
		src_content_range(s, v, vn);
	}
	return n;
}

/* The document's length from the response, UINT64_MAX when unknown. */
static uint64_t src_total(const struct src *s, long code)
{
	if (s->cr_valid) {
		return s->cr_total;
	}
	curl_off_t len = -1;
	if (code == 200 &&
	    curl_easy_getinfo(s->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
	                      &len) == CURLE_OK &&
	    len >= 0) {
		return (uint64_t)len;
	}
	return UINT64_MAX;
}

/* Look at a response's status and headers once, before its body: sets
 * skip, discard and transient, or fails the source. */
static void src_check_response(struct src *s)
{
	long code = 0;
	s->checked = true;
	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
	uint64_t total = src_total(s, code);
	if (code == 206 || code == 200 || code == 416) {
		if (total != UINT64_MAX && total < s->floor) {
			if (s->restore > 0) {
				src_fail(s, STRATA_ERANGE,
				         "position %" PRIu64
				         " is beyond the end "
				         "of %.120s (%" PRIu64 " bytes): the "
				         "document was truncated or replaced",
				         s->restore, s->o.url, total);
			} else {
				src_fail(s, STRATA_ERANGE,
				         "%.120s shrank to %" PRIu64 " bytes "
				         "while it was read up to byte %" PRIu64
				         ": it was truncated or replaced",
				         s->o.url, total, s->floor);
			}
			return;
		}
	}
	if (code == 206) {
		if (!s->cr_valid || s->cr_start != s->req_from) {
			src_fail(s, STRATA_EPROTO,
			         "GET %.120s: a 206 answer to a request for "
			         "bytes %" PRIu64 "- does not start there "
			         "(Content-Range missing or elsewhere)",
			         s->o.url, s->req_from);
			return;
		}
		s->skip = 0;
	} else if (code == 200) {
		s->skip = s->req_from;
		if (s->req_from > 0) {
			s->host->log(s->host, STRATA_LOG_DEBUG,
			             "%s: the server ignores Range: reading "
			             "from the start, skipping %" PRIu64
			             " bytes",
			             s->o.url, s->req_from);
		}
	} else if (code == 416) {
		s->discard = true; /* nothing at req_from yet */
	} else if (status_transient(code)) {
		s->discard = true;
		s->transient = code;
	} else {
		src_fail(s, STRATA_EIO, "GET %.160s: HTTP %ld%s", s->o.url,
		         code, status_hint(code));
	}
}

/* Drop the restore check byte: '\n', or the last byte of a document
 * whose length is the restore offset. false (and the source failed)
 * otherwise. */
static bool src_check_restore_byte(struct src *s, char c)
{
	long code = 0;
	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
	if (c == '\n' || src_total(s, code) == s->restore) {
		s->check_nl = false;
		s->restore = 0;
		return true;
	}
	src_fail(s, STRATA_EINVAL,
	         "position %" PRIu64 " of %.150s is not at the start of a "
	         "line: the document was changed",
	         s->restore, s->o.url);
	return false;
}

/* CURLOPT_WRITEFUNCTION: body bytes into s->in, pausing the transfer
 * while the buffer holds a full line's worth not yet returned. */
static size_t src_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct src *s = arg;
	size_t n = size * nmemb;
	if (!s->checked) {
		src_check_response(s);
	}
	if (s->failed != 0) {
		return 0; /* CURLE_WRITE_ERROR ends the transfer */
	}
	if (s->discard) {
		return n;
	}
	size_t skip = s->skip < n ? (size_t)s->skip : n;
	size_t keep = n - skip;
	if (keep == 0) {
		s->skip -= skip;
		return n;
	}
	size_t nl = s->check_nl ? 1 : 0;
	size_t data = keep - nl;
	if (data > 0) {
		size_t limit = lines_limit(s->max_len);
		size_t unreturned = s->in.len - s->in.start;
		if (unreturned >= limit) {
			s->paused = true; /* the same bytes come again */
			return CURL_WRITEFUNC_PAUSE;
		}
		/* Room for all of it: at most one callback's bytes beyond the
		 * limit, so a full buffer always holds a line or proves one
		 * too long. */
		size_t cap =
		        unreturned + data > limit ? unreturned + data : limit;
		int e = lines_reserve(&s->in, data, cap);
		if (e != 0) {
			src_fail(s, STRATA_ENOMEM,
			         "read %.150s: out of memory for %zu bytes",
			         s->o.url, s->in.len + data);
			return 0;
		}
	}
	s->skip -= skip;
	if (nl > 0 && !src_check_restore_byte(s, p[skip])) {
		return 0;
	}
	if (data > 0) {
		memcpy(s->in.buf + s->in.len, p + skip + nl, data);
		s->in.len += data;
		s->got += data;
	}
	return n;
}

/* Put easy in multi for the next request: from the restore check byte,
 * or from where the received bytes end. */
static int src_request(struct src *s, char *errmsg)
{
	char range[32];
	s->check_nl = s->restore > 0;
	s->req_from = s->restore > 0 ? s->restore - 1 : src_read_to(s);
	s->floor = s->restore > 0 ? s->restore : s->req_from;
	s->checked = s->discard = s->cr_valid = false;
	s->transient = 0;
	s->skip = 0;
	s->got = 0;
	s->errbuf[0] = '\0';
	snprintf(range, sizeof(range), "%" PRIu64 "-", s->req_from);
	curl_easy_setopt(s->easy, CURLOPT_RANGE,
	                 s->req_from > 0 ? range : NULL);
	CURLMcode mc = curl_multi_add_handle(s->multi, s->easy);
	if (mc != CURLM_OK) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "GET %.150s: %s", s->o.url,
		         curl_multi_strerror(mc));
		return STRATA_EIO;
	}
	s->active = true;
	return 0;
}

/* A request finished with cc: the document is complete, ask again later
 * (follow, or a retry), or fail. */
static int src_done(struct src *s, CURLcode cc, char *errmsg)
{
	curl_multi_remove_handle(s->multi, s->easy);
	s->active = false;
	s->paused = false;
	if (cc == CURLE_OK && !s->checked) {
		src_check_response(s); /* no body at all */
	}
	if (s->failed != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "%s", s->failmsg);
		return s->failed;
	}
	uint64_t now = conn_now_ms();
	if (cc == CURLE_OK && s->transient == 0) {
		s->attempts = 0;
		if (s->check_nl) {
			/* An empty answer where the check byte should be. */
			src_fail(s, STRATA_ERANGE,
			         "position %" PRIu64 " is beyond the end of "
			         "%.150s",
			         s->restore, s->o.url);
			snprintf(errmsg, STRATA_ERRMSG_SIZE, "%s", s->failmsg);
			return s->failed;
		}
		if (!s->o.follow) {
			s->eof = true;
		} else {
			s->next_ms = s->got > 0 ? now : now + s->o.poll_ms;
		}
		return 0;
	}
	char why[CURL_ERROR_SIZE + 64];
	if (cc != CURLE_OK) {
		snprintf(why, sizeof(why), "%s",
		         s->errbuf[0] != '\0' ? s->errbuf
		                              : curl_easy_strerror(cc));
	} else {
		snprintf(why, sizeof(why), "HTTP %ld", s->transient);
	}
	if (s->got > 0) {
		s->attempts = 0; /* it moved on: a new run of attempts */
	}
	s->attempts++;
	if ((cc != CURLE_OK && curl_error_final(cc)) ||
	    s->attempts > s->o.retries) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "GET %.100s: %.80s (%u attempt%s): check that the "
		         "server is up",
		         s->o.url, why, s->attempts,
		         s->attempts == 1 ? "" : "s");
		return STRATA_EIO;
	}
	uint64_t d = backoff_ms(s->attempts);
	s->host->log(s->host, STRATA_LOG_WARN,
	             "GET %s: %s; trying again from byte %" PRIu64
	             " in %" PRIu64 " ms (retry %u of %u)",
	             s->o.url, why, src_read_to(s), d, s->attempts,
	             s->o.retries);
	s->next_ms = now + d;
	return 0;
}

/*
 * Move the transfer on until body bytes arrive, the document ends, or
 * deadline (monotonic ms) passes: 0 (look at s->in again), ETIMEDOUT, or
 * a STRATA_E* code with errmsg.
 */
static int src_pump(struct src *s, uint64_t deadline, char *errmsg)
{
	if (s->failed != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "%s", s->failmsg);
		return s->failed;
	}
	uint64_t now = conn_now_ms();
	if (!s->active) {
		if (now < s->next_ms) {
			if (now >= deadline) {
				return ETIMEDOUT;
			}
			uint64_t until =
			        s->next_ms < deadline ? s->next_ms : deadline;
			sleep_ms(until - now);
			return 0;
		}
		int rc = src_request(s, errmsg);
		if (rc != 0) {
			return rc;
		}
	}
	uint64_t before = s->got;
	if (s->paused) {
		s->paused = false;
		curl_easy_pause(s->easy, CURLPAUSE_CONT); /* may deliver now */
	}
	int running = 0;
	CURLMcode mc = curl_multi_perform(s->multi, &running);
	if (mc != CURLM_OK) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "GET %.150s: %s", s->o.url,
		         curl_multi_strerror(mc));
		return STRATA_EIO;
	}
	CURLMsg *m;
	int left = 0;
	while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
		if (m->msg == CURLMSG_DONE) {
			int rc = src_done(s, m->data.result, errmsg);
			if (rc != 0) {
				return rc;
			}
		}
	}
	if (s->got != before || s->eof || s->paused || !s->active) {
		return 0;
	}
	now = conn_now_ms();
	if (now >= deadline) {
		return ETIMEDOUT;
	}
	uint64_t wait = deadline - now;
	curl_multi_poll(s->multi, NULL, 0,
	                wait < WAIT_STEP_MS ? (int)wait : WAIT_STEP_MS, NULL);
	return 0;
}

static void src_free(struct src *s)
{
	if (s->easy != NULL) {
		if (s->active) {
			curl_multi_remove_handle(s->multi, s->easy);
		}
		curl_easy_cleanup(s->easy);
	}
	if (s->multi != NULL) {
		curl_multi_cleanup(s->multi);
	}
	lines_free(&s->in);
	opts_free(&s->o);
	s->host->free(s);
	curl_unref();
}

/* source_open: see connector.h and the comment atop this file. Nothing is
 * asked of the server before the first poll. */
static int src_open(const struct strata_host *host, const char *config,
                    const char *restore, void **state, char *errmsg)
{
	uint64_t at = 0;
	int rc = curl_ref(errmsg);
	if (rc != 0) {
		return rc;
	}
	struct src *s = host->malloc(sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open the http source: out of memory");
		curl_unref();
		return STRATA_ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->host = host;
	lines_init(&s->in, host, 0);
	rc = parse_opts(config, true, &s->o, errmsg);
	if (rc != 0) {
		goto err;
	}
	if (restore != NULL && !conn_u64(restore, &at)) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "position '%.64s' for %.120s is not a byte offset "
		         "(decimal digits)",
		         restore, s->o.url);
		rc = STRATA_EINVAL;
		goto err;
	}
	s->in.offset = at;
	s->restore = at;
	s->key = s->o.have_key ? s->o.key : s->o.url;
	s->keylen = strlen(s->key);
	if (s->keylen == 0) {
		s->key = NULL;
	}
	s->multi = curl_multi_init();
	s->easy = curl_easy_init();
	if (s->multi == NULL || s->easy == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open the http source %.150s: out of memory",
		         s->o.url);
		rc = STRATA_ENOMEM;
		goto err;
	}
	easy_common(s->easy, &s->o, s->errbuf);
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->o.headers);
	curl_easy_setopt(s->easy, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(s->easy, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(s->easy, CURLOPT_HEADERFUNCTION, src_header);
	curl_easy_setopt(s->easy, CURLOPT_HEADERDATA, s);
	curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, src_body);
	curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
	*state = s;
	return 0;

err:
	src_free(s);
	return rc;
}

/* source_poll: see connector.h. Records point into s->in. */
static int src_poll(void *state, int wait_ms, size_t max_len,
                    struct strata_connector_record *recs, size_t max, size_t *n,
                    bool *end, char *errmsg)
{
	struct src *s = state;
	uint64_t deadline =
	        conn_now_ms() + (wait_ms > 0 ? (uint64_t)wait_ms : 0);
	*n = 0;
	*end = false;
	if (max == 0) {
		return 0;
	}
	s->max_len = max_len;
	for (;;) {
		int rc = lines_take(&s->in, max_len, s->eof, s->o.url, s->key,
		                    s->keylen, recs, max, n, end, errmsg);
		if (rc != 0) {
			return rc == LINES_RETURN ? 0 : rc;
		}
		rc = src_pump(s, deadline, errmsg);
		if (rc == ETIMEDOUT) {
			return 0;
		}
		if (rc != 0) {
			return rc;
		}
	}
}

/* source_position: the offset just after the last record returned. */
static int src_position(void *state, char *token, size_t size, char *errmsg)
{
	struct src *s = state;
	return conn_token(token, size, "", s->in.offset, "position of",
	                  s->o.url, errmsg);
}

static void src_close(void *state)
{
	src_free(state);
}

/* ------------------------------------------------------------- sink */

/* An open http sink. */
struct snk {
	const struct strata_host *host; /* borrowed until close */
	struct opts o;                  /* url, mode, headers */
	CURL *easy;                     /* one connection, kept alive */
	struct curl_slist *headers;     /* o.headers + Content-Type, Expect */
	char errbuf[CURL_ERROR_SIZE];   /* libcurl's last error detail */
	uint8_t *buf;                   /* mode=lines: batch_bytes */
	size_t used;                    /* bytes in buf */
	size_t buffered;                /* records in buf */
	uint64_t delivered;             /* records answered 2xx */
	char note[BODY_NOTE_CAP];       /* the last answer's first bytes */
	size_t note_len;
};

/* CURLOPT_WRITEFUNCTION: keep the first bytes of an answer (messages). */
static size_t snk_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct snk *s = arg;
	size_t n = size * nmemb;
	for (size_t i = 0; i < n && s->note_len < sizeof(s->note) - 1; i++) {
		char c = p[i];
		s->note[s->note_len++] = c >= 0x20 && c < 0x7f ? c : ' ';
	}
	s->note[s->note_len] = '\0';
	return n;
}

/* POST body[len] (records of it) until a 2xx answer; retried as the
 * comment atop this file says. 0 or STRATA_EIO with errmsg. */
static int snk_post(struct snk *s, const void *body, size_t len, size_t records,
                    char *errmsg)
{
	for (unsigned attempt = 0;; attempt++) {
		long code = 0;
		s->note_len = 0;
		s->note[0] = '\0';
		s->errbuf[0] = '\0';
		curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)len);
		CURLcode cc = curl_easy_perform(s->easy);
		curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
		if (cc == CURLE_OK && code >= 200 && code < 300) {
			s->delivered += records;
			return 0;
		}
		char why[CURL_ERROR_SIZE + BODY_NOTE_CAP + 64];
		bool retry;
		if (cc != CURLE_OK) {
			snprintf(why, sizeof(why), "%s",
			         s->errbuf[0] != '\0' ? s->errbuf
			                              : curl_easy_strerror(cc));
			retry = !curl_error_final(cc);
		} else {
			snprintf(why, sizeof(why), "HTTP %ld%s%s%s", code,
			         s->note_len > 0 ? " (" : "", s->note,
			         s->note_len > 0 ? ")" : "");
			retry = status_transient(code);
		}
		if (!retry || attempt >= s->o.retries) {
			snprintf(
			        errmsg, STRATA_ERRMSG_SIZE,
			        "POST %.100s: %.70s (%u attempt%s)%s", s->o.url,
			        why, attempt + 1, attempt == 0 ? "" : "s",
			        cc != CURLE_OK ? ": check that the server is up"
			                       : status_hint(code));
			return STRATA_EIO;
		}
		uint64_t d = backoff_ms(attempt + 1);
		s->host->log(s->host, STRATA_LOG_WARN,
		             "POST %s: %s; sending %zu record%s again in "
		             "%" PRIu64 " ms (retry %u of %u)",
		             s->o.url, why, records, records == 1 ? "" : "s", d,
		             attempt + 1, s->o.retries);
		sleep_ms(d);
	}
}

/* POST what mode=lines buffered. */
static int snk_flush(struct snk *s, char *errmsg)
{
	if (s->buffered == 0) {
		return 0;
	}
	int rc = snk_post(s, s->buf, s->used, s->buffered, errmsg);
	s->used = s->buffered = 0; /* sent, or the sink failed */
	return rc;
}

/* A mode=lines record longer than the batch: a body of its own. */
static int snk_post_line(struct snk *s, const struct strata_connector_record *r,
                         char *errmsg)
{
	uint8_t *b = s->host->malloc(r->len + 1);
	if (b == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "POST %.150s: out of memory for a %zu-byte record",
		         s->o.url, r->len);
		return STRATA_ENOMEM;
	}
	memcpy(b, r->data, r->len);
	b[r->len] = '\n';
	int rc = snk_post(s, b, r->len + 1, 1, errmsg);
	s->host->free(b);
	return rc;
}

/* sink_write: mode=each POSTs each record now; mode=lines batches. */
static int snk_write(void *state, const struct strata_connector_record *recs,
                     size_t n, char *errmsg)
{
	struct snk *s = state;
	for (size_t i = 0; i < n; i++) {
		const struct strata_connector_record *r = &recs[i];
		int rc = 0;
		if (s->o.each) {
			rc = snk_post(s, r->len > 0 ? r->data : "", r->len, 1,
			              errmsg);
		} else if (r->len + 1 > s->o.batch_bytes) {
			rc = snk_flush(s, errmsg);
			if (rc == 0) {
				rc = snk_post_line(s, r, errmsg);
			}
		} else {
			if (r->len + 1 > s->o.batch_bytes - s->used) {
				rc = snk_flush(s, errmsg);
			}
			if (rc == 0) {
				if (r->len > 0) {
					memcpy(s->buf + s->used, r->data,
					       r->len);
				}
				s->buf[s->used + r->len] = '\n';
				s->used += r->len + 1;
				s->buffered++;
			}
		}
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

/* sink_prepare: everything written is answered 2xx; the token is the
 * count of records this instance delivered. */
static int snk_prepare(void *state, char *token, size_t size, char *errmsg)
{
	struct snk *s = state;
	int rc = snk_flush(s, errmsg);
	if (rc != 0) {
		return rc;
	}
	return conn_token(token, size, "", s->delivered, "prepare", s->o.url,
	                  errmsg);
}

static void snk_free(struct snk *s)
{
	if (s->easy != NULL) {
		curl_easy_cleanup(s->easy);
	}
	curl_slist_free_all(s->headers);
	s->host->free(s->buf);
	opts_free(&s->o);
	s->host->free(s);
	curl_unref();
}

/* Content-Type, and no "Expect: 100-continue" round trip before large
 * bodies: the sink's own headers after the user's. */
static int snk_headers(struct snk *s)
{
	char ct[CTYPE_CAP + 16];
	snprintf(ct, sizeof(ct), "Content-Type: %s", s->o.content_type);
	const char *own[] = {ct, "Expect:"};
	for (const struct curl_slist *h = s->o.headers; h != NULL;
	     h = h->next) {
		struct curl_slist *l = curl_slist_append(s->headers, h->data);
		if (l == NULL) {
			return STRATA_ENOMEM;
		}
		s->headers = l;
	}
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
		struct curl_slist *l = curl_slist_append(s->headers, own[i]);
		if (l == NULL) {
			return STRATA_ENOMEM;
		}
		s->headers = l;
	}
	return 0;
}

/* sink_open: see connector.h; restore is accepted and ignored (at least
 * once: what was POSTed stays POSTed). Nothing is sent before the first
 * write. */
static int snk_open(const struct strata_host *host, const char *config,
                    const char *restore, void **state, char *errmsg)
{
	int rc = curl_ref(errmsg);
	if (rc != 0) {
		return rc;
	}
	struct snk *s = host->malloc(sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open the http sink: out of memory");
		curl_unref();
		return STRATA_ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->host = host;
	rc = parse_opts(config, false, &s->o, errmsg);
	if (rc != 0) {
		goto err;
	}
	if (restore != NULL) {
		host->log(host, STRATA_LOG_INFO,
		          "%s: restore token %.64s ignored (at least once)",
		          s->o.url, restore);
	}
	s->easy = curl_easy_init();
	if (s->easy == NULL || snk_headers(s) != 0 ||
	    (!s->o.each && (s->buf = host->malloc(s->o.batch_bytes)) == NULL)) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open the http sink %.150s: out of memory", s->o.url);
		rc = STRATA_ENOMEM;
		goto err;
	}
	easy_common(s->easy, &s->o, s->errbuf);
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(s->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, (long)s->o.timeout_ms);
	curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, snk_body);
	curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
	*state = s;
	return 0;

err:
	snk_free(s);
	return rc;
}

/* sink_close: what is still buffered came after the last prepare; the
 * next run replays it from the checkpoint, so it is dropped here. */
static void snk_close(void *state)
{
	snk_free(state);
}

/* Options checked as open would; nothing is contacted. */
static int check(const struct strata_host *host, const char *config,
                 bool source, char *errmsg)
{
	(void)host;
	struct opts o;
	int rc = parse_opts(config, source, &o, errmsg);
	opts_free(&o);
	return rc;
}

/* The table strata-connect loads (connector.h). */
static const struct strata_connector_ops ops = {
        .abi_version = STRATA_CONNECTOR_ABI_VERSION,
        .name = "http",
        .source_flags = STRATA_CONNECTOR_SOURCE_REPLAYABLE,
        .source_open = src_open,
        .source_poll = src_poll,
        .source_position = src_position,
        .source_close = src_close,
        .sink_flags = 0, /* at least once */
        .sink_open = snk_open,
        .sink_write = snk_write,
        .sink_prepare = snk_prepare,
        .sink_commit = NULL, /* a 2xx answer is visible already */
        .sink_close = snk_close,
        .check = check,
};

/* The connector's one exported symbol (STRATA_CONNECTOR_ENTRY). */
STRATA_PLUGIN_EXPORT const struct strata_connector_ops *
strata_connector_plugin(void)
{
	return &ops;
}
