/*
 * Connector "strata": a sink into a stream of another (or the same) Strata
 * cluster, exactly once: mirroring a stream between clusters with
 * strata-connect's export (docs/connect.md, "Connectors shipped").
 *
 * Each checkpoint interval's events go into one transaction on the
 * target stream. prepare releases it (flushed, durable in its shadow
 * segments, no longer renewed: strata_txn_release) and returns a token
 * naming every released transaction not yet committed; commit commits
 * them by id once strata-connect has recorded the token. A restore
 * commits the transactions its token names (idempotent) before anything
 * else, so the target holds exactly what the recorded checkpoint covers;
 * what was written after it sits in a transaction nobody commits, whose
 * lease ends it. The restart must come within the lease (lease_ms).
 *
 * The plugin uses libstrata (the shared library) for its own client; it
 * never sees strata-connect's.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lines.h"
#include "strata/client.h"
#include "strata/plugin_config.h"
#include "strata/txn.h"

#define MAX_URLS 16                  /* controller URLs of the target */
#define MAX_PENDING 32               /* released, uncommitted transactions */
#define DEFAULT_KEY "strata-connect" /* one key: the target keeps order */
#define DEFAULT_LEASE_MS 600000      /* the most a transaction may have */

/* The sink's options. */
struct opts {
	char controller[1024]; /* target controller URLs, comma separated
	                          (required; split in place at open) */
	char scope[STRATA_NAME_MAX + 1];
	char stream[STRATA_NAME_MAX + 1];
	char key[1024]; /* routing key of every event */
	bool have_key;  /* key= given (empty: none, spread at random) */
	char codec[32]; /* writer codec ("" none) */
	uint64_t lease_ms;
};

struct snk {
	const struct strata_host *host;
	struct opts o;
	struct strata_client *c;
	struct strata_txn *txn;        /* open, receiving writes */
	uint64_t pending[MAX_PENDING]; /* released, not yet committed */
	size_t n_pending;
};

static int parse_opts(const char *config, struct opts *o, char *errmsg)
{
	memset(o, 0, sizeof(*o));
	o->lease_ms = DEFAULT_LEASE_MS;
	const char *cur = config;
	struct strata_config_item it;
	char stream[2 * STRATA_NAME_MAX + 2] = "";
	while (strata_config_next(&cur, &it)) {
		bool ok = it.value != NULL;
		if (ok && strata_config_key_is(&it, "controller")) {
			ok = it.value_len > 0 &&
			     strata_config_value_copy(&it, o->controller,
			                              sizeof(o->controller)) ==
			             0;
		} else if (ok && strata_config_key_is(&it, "stream")) {
			ok = strata_config_value_copy(&it, stream,
			                              sizeof(stream)) == 0;
		} else if (ok && strata_config_key_is(&it, "key")) {
			ok = strata_config_value_copy(&it, o->key,
			                              sizeof(o->key)) == 0;
			o->have_key = true;
		} else if (ok && strata_config_key_is(&it, "codec")) {
			ok = strata_config_value_copy(&it, o->codec,
			                              sizeof(o->codec)) == 0;
		} else if (ok && strata_config_key_is(&it, "lease_ms")) {
			ok = strata_config_value_u64(&it, &o->lease_ms) == 0 &&
			     o->lease_ms >= 1000 && o->lease_ms <= 600000;
		} else {
			conn_err(errmsg,
			         "unknown sink option '%.*s' (valid: "
			         "controller, "
			         "stream, key, codec, lease_ms)",
			         (int)it.key_len, it.key);
			return STRATA_ECONFIG;
		}
		if (!ok) {
			conn_err(errmsg,
			         "bad value in option '%.*s' (lease_ms: 1000.."
			         "600000)",
			         it.line_len, it.line);
			return STRATA_ECONFIG;
		}
	}
	const char *slash = strchr(stream, '/');
	if (o->controller[0] == '\0' || slash == NULL || slash == stream ||
	    slash[1] == '\0' || (size_t)(slash - stream) > STRATA_NAME_MAX ||
	    strlen(slash + 1) > STRATA_NAME_MAX) {
		conn_err(errmsg,
		         "options controller (the target cluster's URL) and "
		         "stream (SCOPE/STREAM there) are required");
		return STRATA_ECONFIG;
	}
	memcpy(o->scope, stream, (size_t)(slash - stream));
	o->scope[slash - stream] = '\0';
	snprintf(o->stream, sizeof(o->stream), "%s", slash + 1);
	if (!o->have_key) {
		snprintf(o->key, sizeof(o->key), "%s", DEFAULT_KEY);
	}
	return 0;
}

/* Parse a token ("none" or "txn=ID[,ID...]") into ids[MAX_PENDING]. */
static int parse_token(const char *token, uint64_t *ids, size_t *n,
                       char *errmsg)
{
	*n = 0;
	if (strcmp(token, "none") == 0) {
		return 0;
	}
	const char *p = strncmp(token, "txn=", 4) == 0 ? token + 4 : NULL;
	while (p != NULL && *n < MAX_PENDING) {
		char num[24];
		size_t len = strcspn(p, ",");
		if (len == 0 || len >= sizeof(num)) {
			break;
		}
		memcpy(num, p, len);
		num[len] = '\0';
		if (!conn_u64(num, &ids[*n]) || ids[*n] == 0) {
			break;
		}
		(*n)++;
		if (p[len] == '\0') {
			return 0;
		}
		p += len + 1;
	}
	conn_err(errmsg,
	         "token '%.64s' is not \"none\" nor \"txn=ID[,ID...]\" (at "
	         "most %d ids)",
	         token, MAX_PENDING);
	return STRATA_EINVAL;
}

/* Commit ids[0..n) by id; a failure names the transaction. */
static int commit_ids(struct snk *s, const uint64_t *ids, size_t n,
                      char *errmsg)
{
	for (size_t i = 0; i < n; i++) {
		char err[STRATA_ERRMSG_SIZE] = "";
		int rc = strata_txn_commit_id(s->c, s->o.scope, s->o.stream,
		                              ids[i], err);
		if (rc != 0) {
			conn_err(errmsg,
			         "commit transaction %" PRIu64 " of %.64s/%.64s"
			         "%s: %.120s",
			         ids[i], s->o.scope, s->o.stream,
			         rc == STRATA_ECONFLICT
			                 ? " (aborted: restart within lease_ms)"
			                 : "",
			         err);
			return rc;
		}
		/* Committed: no longer pending. */
		for (size_t k = 0; k < s->n_pending; k++) {
			if (s->pending[k] == ids[i]) {
				s->pending[k] = s->pending[--s->n_pending];
				break;
			}
		}
	}
	return 0;
}

static void snk_free(struct snk *s)
{
	if (s->txn != NULL) {
		strata_txn_free(s->txn); /* never prepared: aborted */
	}
	strata_client_free(s->c);
	s->host->free(s);
}

static int snk_open(const struct strata_host *host, const char *config,
                    const char *restore, void **state, char *errmsg)
{
	struct snk *s = host->malloc(sizeof(*s));
	if (s == NULL) {
		conn_err(errmsg, "out of memory");
		return STRATA_ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->host = host;
	uint64_t ids[MAX_PENDING];
	size_t n = 0;
	int rc = parse_opts(config, &s->o, errmsg);
	if (rc == 0 && restore != NULL) {
		rc = parse_token(restore, ids, &n, errmsg);
	}
	if (rc == 0) {
		/* controller is a comma-separated list, as strata-connect's. */
		const char *urls[MAX_URLS];
		size_t n_urls = 0;
		char *save = NULL;
		for (char *u = strtok_r(s->o.controller, ",", &save);
		     u != NULL && n_urls < MAX_URLS;
		     u = strtok_r(NULL, ",", &save)) {
			urls[n_urls++] = u;
		}
		struct strata_client_config cc;
		strata_client_config_default(&cc);
		cc.controller_urls = urls;
		cc.n_controller_urls = n_urls;
		char err[STRATA_ERRMSG_SIZE] = "";
		rc = strata_client_new(&cc, &s->c, err);
		if (rc != 0) {
			s->c = NULL;
			conn_err(errmsg, "client for %.120s: %.120s",
			         s->o.controller, err);
		}
	}
	if (rc == 0) {
		rc = commit_ids(s, ids, n, errmsg);
	}
	if (rc != 0) {
		snk_free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static int snk_write(void *state, const struct strata_connector_record *recs,
                     size_t n, char *errmsg)
{
	struct snk *s = state;
	char err[STRATA_ERRMSG_SIZE] = "";
	if (s->txn == NULL) {
		struct strata_txn_config tc;
		strata_txn_config_default(&tc);
		tc.lease_ms = s->o.lease_ms;
		tc.writer.codec = s->o.codec[0] != '\0' ? s->o.codec : NULL;
		int rc = strata_txn_begin(s->c, s->o.scope, s->o.stream, &tc,
		                          &s->txn, err);
		if (rc != 0) {
			s->txn = NULL;
			conn_err(errmsg,
			         "begin a transaction on %.64s/%.64s: %.120s",
			         s->o.scope, s->o.stream, err);
			return rc;
		}
	}
	for (size_t i = 0; i < n; i++) {
		int rc = strata_txn_write(s->txn, s->o.key, strlen(s->o.key),
		                          recs[i].data, recs[i].len, err);
		if (rc != 0) {
			conn_err(errmsg, "write to %.64s/%.64s: %.120s",
			         s->o.scope, s->o.stream, err);
			return rc;
		}
	}
	return 0;
}

static int snk_prepare(void *state, char *token, size_t size, char *errmsg)
{
	struct snk *s = state;
	if (s->txn != NULL) {
		if (s->n_pending == MAX_PENDING) {
			conn_err(errmsg,
			         "%d transactions prepared and none committed: "
			         "checkpoints are not completing",
			         MAX_PENDING);
			return STRATA_EBUSY;
		}
		char err[STRATA_ERRMSG_SIZE] = "";
		uint64_t id = strata_txn_id(s->txn);
		int rc = strata_txn_release(s->txn, err);
		strata_txn_free(s->txn);
		s->txn = NULL;
		if (rc != 0) {
			conn_err(errmsg, "flush to %.64s/%.64s: %.120s",
			         s->o.scope, s->o.stream, err);
			return rc;
		}
		s->pending[s->n_pending++] = id;
	}
	if (s->n_pending == 0) {
		snprintf(token, size, "none");
		return 0;
	}
	size_t off = (size_t)snprintf(token, size, "txn=");
	for (size_t i = 0; i < s->n_pending && off < size; i++) {
		off += (size_t)snprintf(token + off, size - off, "%s%" PRIu64,
		                        i == 0 ? "" : ",", s->pending[i]);
	}
	return 0;
}

static int snk_commit(void *state, const char *token, char *errmsg)
{
	struct snk *s = state;
	uint64_t ids[MAX_PENDING];
	size_t n = 0;
	int rc = parse_token(token, ids, &n, errmsg);
	return rc != 0 ? rc : commit_ids(s, ids, n, errmsg);
}

static void snk_close(void *state)
{
	snk_free(state);
}

/* Options checked as open would, without connecting. */
static int check(const struct strata_host *host, const char *config,
                 bool source, char *errmsg)
{
	(void)host;
	if (source) {
		conn_err(errmsg, "the strata connector has no source");
		return STRATA_ENOTSUP;
	}
	struct opts o;
	return parse_opts(config, &o, errmsg);
}

static const struct strata_connector_ops ops = {
        .abi_version = STRATA_CONNECTOR_ABI_VERSION,
        .name = "strata",
        .sink_flags = STRATA_CONNECTOR_SINK_EXACTLY_ONCE,
        .sink_open = snk_open,
        .sink_write = snk_write,
        .sink_prepare = snk_prepare,
        .sink_commit = snk_commit,
        .sink_close = snk_close,
        .check = check,
};

STRATA_PLUGIN_EXPORT const struct strata_connector_ops *
strata_connector_plugin(void)
{
	return &ops;
}
