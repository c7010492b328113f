/* The http connector's sink: records POSTed as lines in batches or one
 * per request, retried, at least once (the comment atop http.c). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "http.h"

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
			retry = !http_curl_error_final(cc);
		} else {
			snprintf(why, sizeof(why), "HTTP %ld%s%s%s", code,
			         s->note_len > 0 ? " (" : "", s->note,
			         s->note_len > 0 ? ")" : "");
			retry = http_status_transient(code);
		}
		if (!retry || attempt >= s->o.retries) {
			snprintf(
			        errmsg, STRATA_ERRMSG_SIZE,
			        "POST %.100s: %.70s (%u attempt%s)%s", s->o.url,
			        why, attempt + 1, attempt == 0 ? "" : "s",
			        cc != CURLE_OK ? ": check that the server is up"
			                       : http_status_hint(code));
			return STRATA_EIO;
		}
		uint64_t d = http_backoff_ms(attempt + 1);
		s->host->log(s->host, STRATA_LOG_WARN,
		             "POST %s: %s; sending %zu record%s again in "
		             "%" PRIu64 " ms (retry %u of %u)",
		             s->o.url, why, records, records == 1 ? "" : "s", d,
		             attempt + 1, s->o.retries);
		http_sleep_ms(d);
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
int http_snk_write(void *state, const struct strata_connector_record *recs,
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
int http_snk_prepare(void *state, char *token, size_t size, char *errmsg)
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
	http_opts_free(&s->o);
	s->host->free(s);
	http_curl_unref();
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
int http_snk_open(const struct strata_host *host, const char *config,
                  const char *restore, void **state, char *errmsg)
{
	int rc = http_curl_ref(errmsg);
	if (rc != 0) {
		return rc;
	}
	struct snk *s = host->malloc(sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open the http sink: out of memory");
		http_curl_unref();
		return STRATA_ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->host = host;
	rc = http_parse_opts(config, false, &s->o, errmsg);
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
	http_easy_common(s->easy, &s->o, s->errbuf);
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
void http_snk_close(void *state)
{
	snk_free(state);
}
