/*
 * Connector "stdio": a source reading stdin line by line and a sink
 * writing to stdout. Neither can go back (a pipe is read once, output
 * once written stays written), so both are at least once
 * (docs/connect.md, "Connectors shipped").
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lines.h"
#include "strata/plugin_config.h"

/* Parse config: key (source), format (sink). */
static int parse_opts(const char *config, bool source, char *key,
                      size_t key_size, bool *have_key, bool *raw, char *errmsg)
{
	const char *cur = config;
	struct strata_config_item it;
	*have_key = false;
	*raw = false;
	while (strata_config_next(&cur, &it)) {
		bool ok = it.value != NULL;
		if (ok && source && strata_config_key_is(&it, "key")) {
			ok = strata_config_value_copy(&it, key, key_size) == 0;
			*have_key = it.value_len > 0;
		} else if (ok && !source &&
		           strata_config_key_is(&it, "format")) {
			*raw = it.value_len == 3 &&
			       memcmp(it.value, "raw", 3) == 0;
			ok = *raw || (it.value_len == 5 &&
			              memcmp(it.value, "lines", 5) == 0);
		} else {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "unknown %s option '%.*s' (valid: %s)",
			         source ? "source" : "sink", (int)it.key_len,
			         it.key, source ? "key" : "format");
			return STRATA_ECONFIG;
		}
		if (!ok) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "bad value in option '%.*s' (format: lines or "
			         "raw)",
			         it.line_len, it.line);
			return STRATA_ECONFIG;
		}
	}
	return 0;
}

/* ----------------------------------------------------------- source */

struct ssrc {
	const struct strata_host *host;
	char key[1024];
	bool have_key;
	struct lines l;
};

static int src_open(const struct strata_host *host, const char *config,
                    const char *restore, void **state, char *errmsg)
{
	if (restore != NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "stdin cannot be replayed: it cannot resume at "
		         "position %.64s (use guarantee=at-least-once and a "
		         "new checkpoint file per run)",
		         restore);
		return STRATA_EINVAL;
	}
	struct ssrc *s = host->malloc(sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->host = host;
	bool raw;
	int rc = parse_opts(config, true, s->key, sizeof(s->key), &s->have_key,
	                    &raw, errmsg);
	if (rc != 0) {
		host->free(s);
		return rc;
	}
	lines_init(&s->l, host, 0);
	*state = s;
	return 0;
}

static int src_poll(void *state, int wait_ms, size_t max_len,
                    struct strata_connector_record *recs, size_t max, size_t *n,
                    bool *end, char *errmsg)
{
	struct ssrc *s = state;
	*n = 0;
	*end = false;
	bool waited = false;
	for (;;) {
		bool too_long = false;
		while (*n < max && lines_next(&s->l, max_len, s->l.eof,
		                              &recs[*n], &too_long)) {
			recs[*n].key = s->have_key ? s->key : NULL;
			recs[*n].keylen = s->have_key ? strlen(s->key) : 0;
			(*n)++;
		}
		if (too_long && *n == 0) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "stdin: line at byte %" PRIu64 " is longer "
			         "than %zu bytes (limits.max_event)",
			         s->l.offset, max_len);
			return STRATA_ETOOBIG;
		}
		if (*n > 0 || too_long) {
			return 0;
		}
		if (s->l.eof) {
			*end = true;
			return 0;
		}
		if (waited) {
			return 0;
		}
		struct pollfd p = {.fd = 0, .events = POLLIN};
		int pr = poll(&p, 1, wait_ms);
		if (pr < 0 && errno != EINTR) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE, "poll stdin: %s",
			         strerror(errno));
			return STRATA_EIO;
		}
		if (pr <= 0) {
			return 0;
		}
		waited = true;
		int e = lines_fill(&s->l, 0, max_len);
		if (e != 0) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE, "read stdin: %s",
			         strerror(e));
			return conn_errno_code(e);
		}
	}
}

static int src_position(void *state, char *token, size_t size, char *errmsg)
{
	struct ssrc *s = state;
	(void)errmsg;
	snprintf(token, size, "%" PRIu64, s->l.offset);
	return 0;
}

static void src_close(void *state)
{
	struct ssrc *s = state;
	lines_free(&s->l);
	s->host->free(s);
}

/* ------------------------------------------------------------- sink */

struct ssnk {
	struct out out; /* first: out_sink_write/prepare take the state */
	const struct strata_host *host;
};

static int snk_open(const struct strata_host *host, const char *config,
                    const char *restore, void **state, char *errmsg)
{
	(void)restore; /* what went out stays out: at least once */
	char key[8];
	bool have_key, raw;
	int rc = parse_opts(config, false, key, sizeof(key), &have_key, &raw,
	                    errmsg);
	if (rc != 0) {
		return rc;
	}
	struct ssnk *s = host->malloc(sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	s->host = host;
	rc = out_init(&s->out, host, "stdout", 1, !raw, false, false, 0,
	              errmsg);
	if (rc != 0) {
		host->free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static void snk_close(void *state)
{
	struct ssnk *s = state;
	char err[STRATA_ERRMSG_SIZE];
	out_flush(&s->out, err);
	out_free(&s->out);
	s->host->free(s);
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
        .sink_commit = NULL,
        .sink_close = snk_close,
};

STRATA_PLUGIN_EXPORT const struct strata_connector_ops *
strata_connector_plugin(void)
{
	return &ops;
}
