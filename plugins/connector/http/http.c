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
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http.h"

/* ------------------------------------------------------ libcurl setup */

/* libcurl's global state (and GnuTLS's under it) lives while an instance
 * does: the host may dlclose() the plugin after the last close. */
static pthread_mutex_t curl_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned curl_users;

int http_curl_ref(char *errmsg)
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

void http_curl_unref(void)
{
	pthread_mutex_lock(&curl_lock);
	if (--curl_users == 0) {
		curl_global_cleanup();
	}
	pthread_mutex_unlock(&curl_lock);
}

/* Sleep for ms milliseconds (signals may cut it short). */
void http_sleep_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000),
	                      (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* The delay before retry number attempt (1, 2, ...). */
uint64_t http_backoff_ms(unsigned attempt)
{
	uint64_t d = BACKOFF_FIRST_MS;
	for (unsigned i = 1; i < attempt && d < BACKOFF_MAX_MS; i++) {
		d *= 2;
	}
	return d < BACKOFF_MAX_MS ? d : BACKOFF_MAX_MS;
}

/* An HTTP status worth asking again for: the server or a proxy is busy or
 * briefly down. */
bool http_status_transient(long code)
{
	return code == 408 || code == 429 || code >= 500;
}

/* A libcurl error that a new attempt cannot fix (the request itself is
 * wrong); everything else (connect, TLS handshake, timeouts, resets) is
 * retried. */
bool http_curl_error_final(CURLcode cc)
{
	return cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_URL_MALFORMAT ||
	       cc == CURLE_NOT_BUILT_IN || cc == CURLE_OUT_OF_MEMORY ||
	       cc == CURLE_WRITE_ERROR || cc == CURLE_ABORTED_BY_CALLBACK ||
	       cc == CURLE_BAD_FUNCTION_ARGUMENT;
}

/* A hint for a final HTTP status, for messages. */
const char *http_status_hint(long code)
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

void http_opts_free(struct opts *o)
{
	curl_slist_free_all(o->headers);
	o->headers = NULL;
}

/*
 * Parse config (borrowed) for the source or the sink into *o (its headers
 * freed by http_opts_free, also after an error). 0, or STRATA_ECONFIG with
 * errmsg naming the key: unknown (the valid ones listed), a bad value, or
 * url missing.
 */
int http_parse_opts(const char *config, bool source, struct opts *o,
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
void http_easy_common(CURL *e, const struct opts *o, char *errbuf)
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

/* Options checked as open would; nothing is contacted. */
static int check(const struct strata_host *host, const char *config,
                 bool source, char *errmsg)
{
	(void)host;
	struct opts o;
	int rc = http_parse_opts(config, source, &o, errmsg);
	http_opts_free(&o);
	return rc;
}

/* The table strata-connect loads (connector.h). */
static const struct strata_connector_ops ops = {
        .abi_version = STRATA_CONNECTOR_ABI_VERSION,
        .name = "http",
        .source_flags = STRATA_CONNECTOR_SOURCE_REPLAYABLE,
        .source_open = http_src_open,
        .source_poll = http_src_poll,
        .source_position = http_src_position,
        .source_close = http_src_close,
        .sink_flags = 0, /* at least once */
        .sink_open = http_snk_open,
        .sink_write = http_snk_write,
        .sink_prepare = http_snk_prepare,
        .sink_commit = NULL, /* a 2xx answer is visible already */
        .sink_close = http_snk_close,
        .check = check,
};

/* The connector's one exported symbol (STRATA_CONNECTOR_ENTRY). */
STRATA_PLUGIN_EXPORT const struct strata_connector_ops *
strata_connector_plugin(void)
{
	return &ops;
}
