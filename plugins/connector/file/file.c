/*
 * Connector "file": a source reading a file line by line, replayable from
 * a byte offset and optionally following the file as it grows, and a sink
 * appending to a file that a restore truncates back to a prepared length
 * (exactly once). docs/connect.md, "Connectors shipped".
 *
 * Source: one record per line, its '\n' removed (a '\r' before it is data
 * like any other byte); an empty line is a record of length 0. Without
 * follow, a last line lacking '\n' is a record at the end of the file;
 * with follow it is held back until its '\n' arrives. The position token
 * is the decimal offset of the first byte not yet returned: just after
 * the last returned line's '\n', or the end of the file after a last
 * unterminated line. A restore accepts an offset that is 0, the file's
 * current length, or just after a '\n'; anything else (a file changed
 * since, including a last unterminated line that was continued
 * afterwards) is refused rather than read from the middle of a line.
 * Rotation (the path renamed and recreated) is not followed; a followed
 * file that shrinks below the read position is an error.
 *
 * Sink: each record then '\n' (format=lines) or the bytes as they are
 * (format=raw), appended through a 1 MiB buffer. The token is the file's
 * length at the prepare (written out and fdatasync'ed when fsync=true);
 * a restore truncates the file back to it. What is buffered at close was
 * never prepared and is dropped.
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

#define PATH_CAP 4096     /* longest path + 1 */
#define KEY_CAP 4096      /* longest key + 1 */
#define FOLLOW_STEP_MS 20 /* how often a followed file is looked at */

/* ---------------------------------------------------------- options */

/* The options of either side; sink-only fields stay at their defaults
 * for a source and the other way round. */
struct opts {
	char path[PATH_CAP]; /* path= (required, not empty) */
	char key[KEY_CAP];   /* key=: routing key of every record */
	bool have_key;       /* key= was given (maybe empty: no key) */
	bool follow;         /* follow=: wait at the end for more data */
	bool raw;            /* format=raw: no '\n' after records */
	bool fsync;          /* fsync=: fdatasync at every prepare */
};

/*
 * Parse config (borrowed) for the source or the sink into *o. 0, or
 * STRATA_ECONFIG with errmsg naming the key: unknown (the valid ones
 * listed), a bad value, or path missing.
 */
static int parse_opts(const char *config, bool source, struct opts *o,
                      char *errmsg)
{
	const char *what = source ? "file source" : "file sink";
	const char *valid =
	        source ? "path, key, follow" : "path, format, fsync";
	bool have_path = false;
	memset(o, 0, sizeof(*o));
	o->fsync = true;
	const char *cur = config;
	struct strata_config_item it;
	while (strata_config_next(&cur, &it)) {
		const char *want = NULL; /* what a bad value should be */
		if (it.value == NULL) {
			return conn_opt_not_kv(errmsg, what, &it);
		} else if (strata_config_key_is(&it, "path")) {
			have_path = conn_opt_string(&it, o->path,
			                            sizeof(o->path), true);
			want = have_path ? NULL : "a path of 1 to 4095 bytes";
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
		} else if (!source && strata_config_key_is(&it, "fsync")) {
			if (!conn_bool(it.value, it.value_len, &o->fsync)) {
				want = "true or false";
			}
		} else if (!source && strata_config_key_is(&it, "format")) {
			o->raw = conn_opt_value_is(&it, "raw");
			if (!o->raw && !conn_opt_value_is(&it, "lines")) {
				want = "lines or raw";
			}
		} else {
			return conn_opt_unknown(errmsg, what, &it, valid);
		}
		if (want != NULL) {
			return conn_opt_bad(errmsg, what, &it, want);
		}
	}
	if (!have_path) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "option path of the %s is required (the file to %s)",
		         what, source ? "read" : "write");
		return STRATA_ECONFIG;
	}
	return 0;
}

/* ----------------------------------------------------------- source */

/* An open file source. */
struct src {
	const struct strata_host *host; /* borrowed until close */
	int fd;                         /* the file, read sequentially */
	bool follow;                    /* never end; hold a partial line */
	const char *key;                /* every record's key; NULL = none */
	size_t keylen;                  /* bytes of key */
	struct lines in;                /* read ahead, not yet returned */
	struct opts o;                  /* path and key live here */
};

/* Check restore (borrowed) against the open file of size bytes and seek
 * s->fd to it (*at): 0, or STRATA_EINVAL/STRATA_ERANGE (or an I/O code)
 * with errmsg. */
static int src_seek(struct src *s, const char *restore, uint64_t size,
                    uint64_t *at, char *errmsg)
{
	const char *path = s->o.path;
	if (!conn_u64(restore, at)) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "position '%.64s' for %.120s is not a byte offset "
		         "(decimal digits)",
		         restore, path);
		return STRATA_EINVAL;
	}
	if (*at > size) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "position %" PRIu64
		         " is beyond the end of %.120s (%" PRIu64
		         " bytes): the file was truncated or replaced",
		         *at, path, size);
		return STRATA_ERANGE;
	}
	if (*at > 0 && *at < size) {
		uint8_t prev = 0;
		ssize_t r = pread(s->fd, &prev, 1, (off_t)(*at - 1));
		if (r < 0) {
			return conn_sys_fail(errmsg, "read", path, errno);
		}
		if (r != 1 || prev != '\n') {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "position %" PRIu64 " of %.150s is not at the "
			         "start of a line: the file was changed",
			         *at, path);
			return STRATA_EINVAL;
		}
	}
	if (lseek(s->fd, (off_t)*at, SEEK_SET) < 0) {
		return conn_sys_fail(errmsg, "seek", path, errno);
	}
	return 0;
}

/* source_open: see connector.h and the comment atop this file. */
static int src_open(const struct strata_host *host, const char *config,
                    const char *restore, void **state, char *errmsg)
{
	struct src *s = host->malloc(sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open the file source: out of memory");
		return STRATA_ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->host = host;
	uint64_t at = 0;
	int rc = parse_opts(config, true, &s->o, errmsg);
	if (rc != 0) {
		goto err_free;
	}
	s->follow = s->o.follow;
	s->key = s->o.have_key ? s->o.key : s->o.path;
	s->keylen = strlen(s->key);
	if (s->keylen == 0) {
		s->key = NULL;
	}
	s->fd = open(s->o.path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0) {
		rc = conn_sys_fail(errmsg, "open", s->o.path, errno);
		goto err_free;
	}
	struct stat sb;
	if (fstat(s->fd, &sb) != 0) {
		rc = conn_sys_fail(errmsg, "stat", s->o.path, errno);
		goto err_close_fd;
	}
	if (S_ISDIR(sb.st_mode)) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open %.200s: Is a directory (path names the file "
		         "to read)",
		         s->o.path);
		rc = STRATA_EINVAL;
		goto err_close_fd;
	}
	if (restore != NULL) {
		rc = src_seek(s, restore, (uint64_t)sb.st_size, &at, errmsg);
		if (rc != 0) {
			goto err_close_fd;
		}
	}
	lines_init(&s->in, host, at);
	*state = s;
	return 0;

err_close_fd:
	close(s->fd);
err_free:
	host->free(s);
	return rc;
}

/* Sleep for ms milliseconds (signals may cut it short). */
static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* A followed file at its end: STRATA_ERANGE when it shrank below what
 * was read (truncated in place: reading on would skip or repeat). */
static int src_check_shrunk(struct src *s, char *errmsg)
{
	struct stat sb;
	uint64_t read_to = s->in.offset + (s->in.len - s->in.start);
	if (fstat(s->fd, &sb) != 0) {
		return conn_sys_fail(errmsg, "stat", s->o.path, errno);
	}
	if ((uint64_t)sb.st_size < read_to) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "%.120s shrank to %" PRIu64 " bytes while it was "
		         "read up to byte %" PRIu64 ": it was truncated",
		         s->o.path, (uint64_t)sb.st_size, read_to);
		return STRATA_ERANGE;
	}
	return 0;
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
		return 0; /* no room: nothing read, nothing skipped */
	}
	for (;;) {
		int rc = lines_take(&s->in, max_len, !s->follow && s->in.eof,
		                    s->o.path, s->key, s->keylen, recs, max, n,
		                    end, errmsg);
		if (rc != 0) {
			return rc == LINES_RETURN ? 0 : rc;
		}
		int e = lines_fill(&s->in, s->fd, max_len);
		if (e == ENOBUFS) {
			continue; /* lines_next reports the long line */
		}
		if (e != 0) {
			return conn_sys_fail(errmsg, "read", s->o.path, e);
		}
		if (s->in.eof && s->follow) {
			rc = src_check_shrunk(s, errmsg);
			if (rc != 0) {
				return rc;
			}
			uint64_t now = conn_now_ms();
			if (now >= deadline) {
				return 0;
			}
			uint64_t left = deadline - now;
			sleep_ms(left < FOLLOW_STEP_MS ? (int)left
			                               : FOLLOW_STEP_MS);
		}
	}
}

/* source_position: the offset just after the last record returned. */
static int src_position(void *state, char *token, size_t size, char *errmsg)
{
	struct src *s = state;
	return conn_token(token, size, "", s->in.offset, "position of",
	                  s->o.path, errmsg);
}

/* source_close: the records polled last become invalid. */
static void src_close(void *state)
{
	struct src *s = state;
	lines_free(&s->in);
	close(s->fd);
	s->host->free(s);
}

/* ------------------------------------------------------------- sink */

/* An open file sink. */
struct snk {
	struct out out; /* first: out_sink_write/prepare take the state */
	const struct strata_host *host; /* borrowed until close */
	int fd;                         /* the file, O_WRONLY */
	struct opts o;                  /* path (out.name points to it) */
};

/* Cut the file behind s->fd back to the length restore (borrowed) names,
 * durably when fsync; *length is its length before and after. 0, or
 * STRATA_EINVAL (not a length), STRATA_ECORRUPT (the file is shorter than
 * that: changed outside) or an I/O code, with errmsg. */
static int snk_restore(struct snk *s, const char *restore, uint64_t *length,
                       char *errmsg)
{
	const char *path = s->o.path;
	uint64_t want = 0;
	if (!conn_u64(restore, &want) || want > INT64_MAX) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "token '%.64s' for %.120s is not a file length "
		         "(decimal digits)",
		         restore, path);
		return STRATA_EINVAL;
	}
	if (*length < want) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "%.120s holds %" PRIu64 " bytes but the checkpoint "
		         "says %" PRIu64 ": it was changed outside "
		         "strata-connect",
		         path, *length, want);
		return STRATA_ECORRUPT;
	}
	if (ftruncate(s->fd, (off_t)want) != 0) {
		return conn_sys_fail(errmsg, "truncate", path, errno);
	}
	if (s->o.fsync && fdatasync(s->fd) != 0) {
		return conn_sys_fail(errmsg, "sync", path, errno);
	}
	if (*length > want) {
		s->host->log(s->host, STRATA_LOG_INFO,
		             "%s: dropped the %" PRIu64 " bytes written after "
		             "the checkpoint",
		             path, *length - want);
	}
	*length = want;
	return 0;
}

/* sink_open: see connector.h and the comment atop this file. */
static int snk_open(const struct strata_host *host, const char *config,
                    const char *restore, void **state, char *errmsg)
{
	struct snk *s = host->malloc(sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open the file sink: out of memory");
		return STRATA_ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->host = host;
	int rc = parse_opts(config, false, &s->o, errmsg);
	if (rc != 0) {
		goto err_free;
	}
	s->fd = open(s->o.path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (s->fd < 0) {
		rc = conn_sys_fail(errmsg, "open", s->o.path, errno);
		goto err_free;
	}
	struct stat sb;
	if (fstat(s->fd, &sb) != 0) {
		rc = conn_sys_fail(errmsg, "stat", s->o.path, errno);
		goto err_close_fd;
	}
	uint64_t length = (uint64_t)sb.st_size;
	if (restore != NULL) {
		rc = snk_restore(s, restore, &length, errmsg);
		if (rc != 0) {
			goto err_close_fd;
		}
	}
	rc = out_init(&s->out, host, s->o.path, s->fd, !s->o.raw, true, length,
	              errmsg);
	if (rc != 0) {
		goto err_close_fd;
	}
	s->out.sync = s->o.fsync;
	*state = s;
	return 0;

err_close_fd:
	close(s->fd);
err_free:
	host->free(s);
	return rc;
}

/* sink_close: what is still buffered came after the last prepare, so no
 * checkpoint names it: it is dropped, not written and later cut off. */
static void snk_close(void *state)
{
	struct snk *s = state;
	out_free(&s->out);
	close(s->fd);
	s->host->free(s);
}

/* The table strata-connect loads (connector.h). */
/* Options checked as open would; a source's file must be readable.
 * Nothing is created or opened. */
static int check(const struct strata_host *host, const char *config,
                 bool source, char *errmsg)
{
	(void)host;
	struct opts o;
	int rc = parse_opts(config, source, &o, errmsg);
	if (rc == 0 && source && access(o.path, R_OK) != 0) {
		rc = conn_sys_fail(errmsg, "open", o.path, errno);
	}
	return rc;
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
        .sink_commit = NULL, /* written data is visible already */
        .sink_close = snk_close,
        .check = check,
};

/* The connector's one exported symbol (STRATA_CONNECTOR_ENTRY). */
STRATA_PLUGIN_EXPORT const struct strata_connector_ops *
strata_connector_plugin(void)
{
	return &ops;
}
