/* The http connector's parts (plugins/connector/http/: http.c options,
 * libcurl setup and the table; http_source.c; http_sink.c). What the
 * connector does: the comment atop http.c. */
#ifndef PLUGINS_CONNECTOR_HTTP_H
#define PLUGINS_CONNECTOR_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lines.h"

#define URL_CAP 4096          /* longest url + 1 */
#define KEY_CAP 4096          /* longest key + 1 */
#define CTYPE_CAP 256         /* longest content_type + 1 */
#define HEADER_CAP 8192       /* longest "Name: value" + 1 */
#define BACKOFF_FIRST_MS 100u /* first retry delay; doubles */
#define BACKOFF_MAX_MS 5000u  /* longest retry delay */
#define WAIT_STEP_MS 1000     /* longest single curl_multi_poll */
#define BODY_NOTE_CAP 160     /* response bytes kept for messages */

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

/* libcurl's global state, counted: held while an instance is open. 0 or
 * STRATA_EIO with errmsg. */
int http_curl_ref(char *errmsg);
void http_curl_unref(void);

/* Sleep for ms milliseconds (signals may cut it short). */
void http_sleep_ms(uint64_t ms);

/* The delay before retry number attempt (1, 2, ...): 100 ms doubling to
 * 5 s. */
uint64_t http_backoff_ms(unsigned attempt);

/* A status worth asking again for (408, 429, 5xx). */
bool http_status_transient(long code);

/* A libcurl error a new attempt cannot fix (the request is wrong). */
bool http_curl_error_final(CURLcode cc);

/* A hint after a final HTTP status, for messages ("" when none). */
const char *http_status_hint(long code);

/*
 * Parse config (borrowed) for the source or the sink into *o (free with
 * http_opts_free, also after an error). 0, or STRATA_ECONFIG with errmsg
 * naming the key.
 */
int http_parse_opts(const char *config, bool source, struct opts *o,
                    char *errmsg);
void http_opts_free(struct opts *o);

/* The options every request of an instance shares (url, timeouts, the
 * error buffer errbuf[CURL_ERROR_SIZE], protocols). */
void http_easy_common(CURL *e, const struct opts *o, char *errbuf);

/* The source's ops (http_source.c); see connector.h. */
int http_src_open(const struct strata_host *host, const char *config,
                  const char *restore, void **state, char *errmsg);
int http_src_poll(void *state, int wait_ms, size_t max_len,
                  struct strata_connector_record *recs, size_t max, size_t *n,
                  bool *end, char *errmsg);
int http_src_position(void *state, char *token, size_t size, char *errmsg);
void http_src_close(void *state);

/* The sink's ops (http_sink.c); see connector.h. */
int http_snk_open(const struct strata_host *host, const char *config,
                  const char *restore, void **state, char *errmsg);
int http_snk_write(void *state, const struct strata_connector_record *recs,
                   size_t n, char *errmsg);
int http_snk_prepare(void *state, char *token, size_t size, char *errmsg);
void http_snk_close(void *state);

#endif /* PLUGINS_CONNECTOR_HTTP_H */
