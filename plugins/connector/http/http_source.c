/* The http connector's source: a document read line by line with ranged
 * GETs through a paused-when-full libcurl transfer (the comment atop
 * http.c says what it guarantees). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http.h"

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
	} else if (http_status_transient(code)) {
		s->discard = true;
		s->transient = code;
	} else {
		src_fail(s, STRATA_EIO, "GET %.160s: HTTP %ld%s", s->o.url,
		         code, http_status_hint(code));
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
	if ((cc != CURLE_OK && http_curl_error_final(cc)) ||
	    s->attempts > s->o.retries) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "GET %.100s: %.80s (%u attempt%s): check that the "
		         "server is up",
		         s->o.url, why, s->attempts,
		         s->attempts == 1 ? "" : "s");
		return STRATA_EIO;
	}
	uint64_t d = http_backoff_ms(s->attempts);
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
			http_sleep_ms(until - now);
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
	http_opts_free(&s->o);
	s->host->free(s);
	http_curl_unref();
}

/* source_open: see connector.h and the comment atop this file. Nothing is
 * asked of the server before the first poll. */
int http_src_open(const struct strata_host *host, const char *config,
                  const char *restore, void **state, char *errmsg)
{
	uint64_t at = 0;
	int rc = http_curl_ref(errmsg);
	if (rc != 0) {
		return rc;
	}
	struct src *s = host->malloc(sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open the http source: out of memory");
		http_curl_unref();
		return STRATA_ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->host = host;
	lines_init(&s->in, host, 0);
	rc = http_parse_opts(config, true, &s->o, errmsg);
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
	http_easy_common(s->easy, &s->o, s->errbuf);
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
int http_src_poll(void *state, int wait_ms, size_t max_len,
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
int http_src_position(void *state, char *token, size_t size, char *errmsg)
{
	struct src *s = state;
	return conn_token(token, size, "", s->in.offset, "position of",
	                  s->o.url, errmsg);
}

void http_src_close(void *state)
{
	src_free(state);
}
