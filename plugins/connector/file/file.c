/*
 * Connector "file": a source reading a file line by line (replayable from
 * a byte offset, optionally following it as it grows) and a sink
 * appending to a file that a restore truncates back to a checkpoint's
 * length (exactly once). docs/connect.md, "Connectors shipped".
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lines.h"
#include "strata/plugin_config.h"

#define PATH_CAP 4096
#define FOLLOW_STEP_MS 20 /* how often a followed file is looked at */

/* ---------------------------------------------------------- options */

struct opts {
	char path[PATH_CAP];
	bool have_path;
	char key[PATH_CAP];
	bool have_key; /* key= given (maybe empty) */
	bool follow;
	bool raw;
	bool fsync;
};

/* Parse config for the side ("source" or "sink"); STRATA_ECONFIG naming
 * the key otherwise. */
static int parse_opts(const char *config, bool source, struct opts *o,
                      char *errmsg)
{
	memset(o, 0, sizeof(*o));
	o->fsync = true;
	const char *cur = config;
	struct strata_config_item it;
	const char *valid =
	        source ? "path, key, follow" : "path, format, fsync";
	while (strata_config_next(&cur, &it)) {
		bool ok = it.value != NULL;
		if (ok && strata_config_key_is(&it, "path")) {
			ok = it.value_len > 0 &&
			     strata_config_value_copy(&it, o->path,
			                              sizeof(o->path)) == 0;
			o->have_path = ok;
		} else if (ok && source && strata_config_key_is(&it, "key")) {
			ok = strata_config_value_copy(&it, o->key,
			                              sizeof(o->key)) == 0;
			o->have_key = true;
		} else if (ok && source &&
		           strata_config_key_is(&it, "follow")) {
			ok = conn_bool(it.value, it.value_len, &o->follow);
		} else if (ok && !source &&
		           strata_config_key_is(&it, "fsync")) {
			ok = conn_bool(it.value, it.value_len, &o->fsync);
		} else if (ok && !source &&
		           strata_config_key_is(&it, "format")) {
			if (it.value_len == 5 &&
			    memcmp(it.value, "lines", 5) == 0) {
				o->raw = false;
			} else if (it.value_len == 3 &&
			           memcmp(it.value, "raw", 3) == 0) {
				o->raw = true;
			} else {
				ok = false;
			}
		} else {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "unknown %s option '%.*s' (valid: %s)",
			         source ? "source" : "sink", (int)it.key_len,
			         it.key, valid);
			return STRATA_ECONFIG;
		}
		if (!ok) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "bad value in option '%.*s' (format: lines or "
			         "raw; follow/fsync: true or false; path: not "
			         "empty)",
			         it.line_len, it.line);
			return STRATA_ECONFIG;
		}
	}
	if (!o->have_path) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "option path is required (the file to %s)",
		         source ? "read" : "write");
		return STRATA_ECONFIG;
	}
	return 0;
}

/* A decimal token; false on anything else. */
static bool parse_token(const char *t, uint64_t *out)
{
	uint64_t v = 0;
	if (t[0] == '\0' || strlen(t) > 20) {
		return false;
	}
	for (const char *p = t; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			return false;
		}
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (UINT64_MAX - d) / 10) {
			return false;
		}
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static int sys_fail(char *errmsg, const char *what, const char *path)
{
	int e = errno;
	snprintf(errmsg, STRATA_ERRMSG_SIZE, "%s %.120s: %s", what, path,
	         strerror(e));
	return conn_errno_code(e);
}

/* ----------------------------------------------------------- source */

struct fsrc {
	const struct strata_host *host;
	struct opts o;
	int fd;
	struct lines l;
};

static int src_open(const struct strata_host *host, const char *config,
                    const char *restore, void **state, char *errmsg)
{
	struct fsrc *s = host->malloc(sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->host = host;
	int rc = parse_opts(config, true, &s->o, errmsg);
	if (rc != 0) {
		host->free(s);
		return rc;
	}
	s->fd = open(s->o.path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0) {
		rc = sys_fail(errmsg, "open", s->o.path);
		host->free(s);
		return rc;
	}
	uint64_t at = 0;
	if (restore != NULL) {
		struct stat sb;
		uint8_t prev = '\n';
		if (!parse_token(restore, &at)) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "position '%.64s' for %.120s is not a byte "
			         "offset",
			         restore, s->o.path);
			rc = STRATA_EINVAL;
		} else if (fstat(s->fd, &sb) != 0) {
			rc = sys_fail(errmsg, "stat", s->o.path);
		} else if (at > (uint64_t)sb.st_size) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "position %" PRIu64 " is beyond the end of "
			         "%.120s (%" PRIu64 " bytes): the file was "
			         "truncated or replaced",
			         at, s->o.path, (uint64_t)sb.st_size);
			rc = STRATA_ERANGE;
		} else if (at > 0 && at < (uint64_t)sb.st_size &&
		           pread(s->fd, &prev, 1, (off_t)at - 1) != 1) {
			rc = sys_fail(errmsg, "read", s->o.path);
		} else if (prev != '\n') {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "position %" PRIu64 " of %.120s is not at the "
			         "start of a line: the file was changed",
			         at, s->o.path);
			rc = STRATA_EINVAL;
		} else if (lseek(s->fd, (off_t)at, SEEK_SET) < 0) {
			rc = sys_fail(errmsg, "seek", s->o.path);
		}
		if (rc != 0) {
			close(s->fd);
			host->free(s);
			return rc;
		}
	}
	lines_init(&s->l, host, at);
	*state = s;
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int src_poll(void *state, int wait_ms, size_t max_len,
                    struct strata_connector_record *recs, size_t max, size_t *n,
                    bool *end, char *errmsg)
{
	struct fsrc *s = state;
	*n = 0;
	*end = false;
	int waited = 0;
	for (;;) {
		bool too_long = false;
		bool last = !s->o.follow && s->l.eof;
		while (*n < max &&
		       lines_next(&s->l, max_len, last, &recs[*n], &too_long)) {
			recs[*n].key = s->o.have_key ? s->o.key : s->o.path;
			recs[*n].keylen = strlen(recs[*n].key);
			(*n)++;
		}
		if (too_long) {
			if (*n > 0) {
				return 0; /* report it on the next poll */
			}
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "line at byte %" PRIu64 " of %.120s is longer "
			         "than %zu bytes (limits.max_event)",
			         s->l.offset, s->o.path, max_len);
			return STRATA_ETOOBIG;
		}
		if (*n > 0) {
			return 0;
		}
		if (last) {
			*end = true;
			return 0;
		}
		int e = lines_fill(&s->l, s->fd, max_len);
		if (e != 0) {
			errno = e;
			return sys_fail(errmsg, "read", s->o.path);
		}
		if (s->l.eof && s->o.follow) {
			if (waited >= wait_ms) {
				return 0;
			}
			int step = wait_ms - waited < FOLLOW_STEP_MS
			                   ? wait_ms - waited
			                   : FOLLOW_STEP_MS;
			sleep_ms(step);
			waited += step;
		}
	}
}

static int src_position(void *state, char *token, size_t size, char *errmsg)
{
	struct fsrc *s = state;
	(void)errmsg;
	snprintf(token, size, "%" PRIu64, s->l.offset);
	return 0;
}

static void src_close(void *state)
{
	struct fsrc *s = state;
	lines_free(&s->l);
	close(s->fd);
	s->host->free(s);
}

/* ------------------------------------------------------------- sink */

struct fsnk {
	struct out out; /* first: out_sink_write/prepare take the state */
	const struct strata_host *host;
	struct opts o;
	int fd;
};

static int snk_open(const struct strata_host *host, const char *config,
                    const char *restore, void **state, char *errmsg)
{
	struct fsnk *s = host->malloc(sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->host = host;
	s->fd = -1;
	int rc = parse_opts(config, false, &s->o, errmsg);
	if (rc == 0) {
		s->fd = open(s->o.path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (s->fd < 0) {
			rc = sys_fail(errmsg, "open", s->o.path);
		}
	}
	struct stat sb;
	if (rc == 0 && fstat(s->fd, &sb) != 0) {
		rc = sys_fail(errmsg, "stat", s->o.path);
	}
	uint64_t length = rc == 0 ? (uint64_t)sb.st_size : 0;
	if (rc == 0 && restore != NULL) {
		uint64_t want = 0;
		if (!parse_token(restore, &want)) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "token '%.64s' for %.120s is not a length",
			         restore, s->o.path);
			rc = STRATA_EINVAL;
		} else if (length < want) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "%.120s holds %" PRIu64 " bytes but the "
			         "checkpoint says %" PRIu64 ": it was changed "
			         "outside strata-connect",
			         s->o.path, length, want);
			rc = STRATA_ECORRUPT;
		} else if (length > want &&
		           (ftruncate(s->fd, (off_t)want) != 0 ||
		            fdatasync(s->fd) != 0)) {
			rc = sys_fail(errmsg, "truncate", s->o.path);
		} else {
			if (length > want) {
				host->log(host, STRATA_LOG_INFO,
				          "%s: %" PRIu64 " bytes after the "
				          "checkpoint dropped",
				          s->o.path, length - want);
			}
			length = want;
		}
	}
	if (rc == 0) {
		rc = out_init(&s->out, host, s->o.path, s->fd, !s->o.raw, true,
		              s->o.fsync, length, errmsg);
	}
	if (rc != 0) {
		if (s->fd >= 0) {
			close(s->fd);
		}
		host->free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static void snk_close(void *state)
{
	struct fsnk *s = state;
	/* What is still buffered came after the last prepare: not
	 * committed, so it is dropped rather than shown and taken back. */
	out_free(&s->out);
	close(s->fd);
	s->host->free(s);
}

static const struct strata_connector_ops ops = {
        .abi_version = STRATA_CONNECTOR_ABI_VERSION,
        .name = "file",
        .source_flags = STRATA_CONNECTOR_SOURCE_REPLAYABLE,
        .source_open = src_open,
        .source_poll = src_poll,
        .source_position = src_position,
        .source_close = src_close,
        .sink_flags = STRATA_CONNECTOR_SINK_EXACTLY_ONCE,
        .sink_open = snk_open,
        .sink_write = out_sink_write,
        .sink_prepare = out_sink_prepare,
        .sink_commit = NULL,
        .sink_close = snk_close,
};

STRATA_PLUGIN_EXPORT const struct strata_connector_ops *
strata_connector_plugin(void)
{
	return &ops;
}
