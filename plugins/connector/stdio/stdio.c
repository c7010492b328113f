/*
 * Connector "stdio": a source reading stdin (fd 0) line by line and a
 * sink writing to stdout (fd 1). Neither can go back (what was read from
 * a pipe is gone, what went out stays out), so both are at least once
 * (docs/connect.md, "Connectors shipped").
 *
 * Source: the file connector's line rules (one record per line, '\n'
 * removed, empty lines are records of length 0, a last line without '\n'
 * is a record at the end of input); it ends when stdin does. The
 * position token is the count of bytes consumed, for information only:
 * a restore is refused. Sink: format=lines (each record then '\n') or
 * raw; prepare writes everything out (and fdatasyncs when stdout is a
 * file; pipes and ttys cannot be synced); its token is the count of bytes
 * written by this instance. A restore token is accepted and ignored.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lines.h"

#define KEY_CAP 4096 /* longest key + 1 */

/*
 * Parse config (borrowed): key= for the source (into key[KEY_CAP]; empty
 * or absent = no key), format= for the sink (*raw). 0, or STRATA_ECONFIG
 * with errmsg naming the key (unknown ones with the valid ones listed).
 */
static int parse_opts(const char *config, bool source, char *key, bool *raw,
                      char *errmsg)
{
	const char *what =
	        source ? "stdio source (stdin)" : "stdio sink (stdout)";
	const char *cur = config;
	struct strata_config_item it;
	while (strata_config_next(&cur, &it)) {
		const char *want = NULL; /* what a bad value should be */
		if (it.value == NULL) {
			return conn_opt_not_kv(errmsg, what, &it);
		} else if (source && strata_config_key_is(&it, "key")) {
			if (!conn_opt_string(&it, key, KEY_CAP, false)) {
				want = "at most 4095 bytes";
			}
		} else if (!source && strata_config_key_is(&it, "format")) {
			*raw = conn_opt_value_is(&it, "raw");
			if (!*raw && !conn_opt_value_is(&it, "lines")) {
				want = "lines or raw";
			}
		} else {
			return conn_opt_unknown(errmsg, what, &it,
			                        source ? "key" : "format");
		}
		if (want != NULL) {
			return conn_opt_bad(errmsg, what, &it, want);
		}
	}
	return 0;
}

/* ----------------------------------------------------------- source */

/* An open stdin source. */
struct src {
	const struct strata_host *host; /* borrowed until close */
	size_t keylen;                  /* bytes of key; 0 = no key */
	struct lines in;                /* read, not yet returned */
	char key[KEY_CAP];              /* every record's routing key */
};

/* source_open: see connector.h; a restore token is STRATA_EINVAL. */
static int src_open(const struct strata_host *host, const char *config,
                    const char *restore, void **state, char *errmsg)
{
	char key[KEY_CAP] = "";
	bool raw = false;
	int rc = parse_opts(config, true, key, &raw, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (restore != NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "stdin cannot be replayed: it cannot resume at "
		         "position '%.64s' (run with guarantee=at-least-once: "
		         "each run reads stdin from where it is)",
		         restore);
		return STRATA_EINVAL;
	}
	struct src *s = host->malloc(sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open the stdio source: out of memory");
		return STRATA_ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->host = host;
	memcpy(s->key, key, sizeof(s->key));
	s->keylen = strlen(s->key);
	lines_init(&s->in, host, 0);
	*state = s;
	return 0;
}

/* source_poll: see connector.h. Waits with poll(2) on stdin until a line
 * is complete, stdin ends or wait_ms pass. */
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
		int rc = lines_take(&s->in, max_len, s->in.eof, "stdin", s->key,
		                    s->keylen, recs, max, n, end, errmsg);
		if (rc != 0) {
			return rc == LINES_RETURN ? 0 : rc;
		}
		uint64_t now = conn_now_ms();
		uint64_t left = deadline > now ? deadline - now : 0;
		struct pollfd p = {.fd = 0, .events = POLLIN};
		int pr = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (pr < 0 && errno == EINTR) {
			continue;
		}
		if (pr < 0) {
			return conn_sys_fail(errmsg, "poll", "stdin", errno);
		}
		if (pr == 0) {
			return 0; /* nothing complete within wait_ms */
		}
		if (p.revents & POLLNVAL) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "poll stdin: it is not open");
			return STRATA_EIO;
		}
		int e = lines_fill(&s->in, 0, max_len);
		if (e == ENOBUFS) {
			continue; /* lines_next reports the long line */
		}
		if (e != 0) {
			return conn_sys_fail(errmsg, "read", "stdin", e);
		}
	}
}

/* source_position: bytes of stdin consumed (informational). */
static int src_position(void *state, char *token, size_t size, char *errmsg)
{
	struct src *s = state;
	return conn_token(token, size, "", s->in.offset, "position of", "stdin",
	                  errmsg);
}

/* source_close: stdin itself stays open (it is not ours). */
static void src_close(void *state)
{
	struct src *s = state;
	lines_free(&s->in);
	s->host->free(s);
}

/* ------------------------------------------------------------- sink */

/* An open stdout sink. */
struct snk {
	struct out out; /* first: out_sink_write/prepare take the state */
	const struct strata_host *host; /* borrowed until close */
};

/* sink_open: see connector.h; restore is accepted and ignored (what went
 * out cannot be taken back: at least once). */
static int snk_open(const struct strata_host *host, const char *config,
                    const char *restore, void **state, char *errmsg)
{
	bool raw = false;
	int rc = parse_opts(config, false, NULL, &raw, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (restore != NULL) {
		host->log(host, STRATA_LOG_DEBUG,
		          "stdout: restore token %.64s ignored (at least once)",
		          restore);
	}
	struct snk *s = host->malloc(sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open the stdio sink: out of memory");
		return STRATA_ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->host = host;
	rc = out_init(&s->out, host, "stdout", 1, !raw, false, 0, errmsg);
	if (rc != 0) {
		host->free(s);
		return rc;
	}
	s->out.sync = true; /* stdout may be a file (> out.log) */
	s->out.sync_soft = true;
	*state = s;
	return 0;
}

/* sink_close: what is buffered still goes out (at least once: a restart
 * sends it again anyway, and output cut short helps no reader). */
static void snk_close(void *state)
{
	struct snk *s = state;
	char err[STRATA_ERRMSG_SIZE];
	if (out_flush(&s->out, err) != 0) {
		s->host->log(s->host, STRATA_LOG_WARN, "%s", err);
	}
	out_free(&s->out);
	s->host->free(s);
}

/* The table strata-connect loads (connector.h). */
/* Options checked as open would. */
static int check(const struct strata_host *host, const char *config,
                 bool source, char *errmsg)
{
	(void)host;
	char key[KEY_CAP];
	bool raw;
	return parse_opts(config, source, source ? key : NULL, &raw, errmsg);
}

static const struct strata_connector_ops ops = {
        .abi_version = STRATA_CONNECTOR_ABI_VERSION,
        .name = "stdio",
        .source_flags = 0,
        .source_open = src_open,
        .source_poll = src_poll,
        .source_position = src_position,
        .source_close = src_close,
        .sink_flags = 0,
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
