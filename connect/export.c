/*
 * strata-connect export: one stream into a sink endpoint, exactly once
 * through reader-group checkpoints and a two-phase sink (docs/connect.md,
 * "Exactly once").
 *
 * happy path: load the checkpoint file -> first run: create the reader
 * group at the start cut, open the sink fresh and record its starting
 * token; later runs: reset the group to the recorded checkpoint and open
 * the sink at the recorded token (it drops what was written after) ->
 * the reader thread (this one) reads events into the sink; every
 * interval the checkpoint thread starts a group checkpoint; the reader,
 * at its marker, prepares the sink (durable; token); once the checkpoint
 * completes the reader records (checkpoint, cuts, token) and commits the
 * sink -> the group reaches its end (sealed stream, end cut) or a
 * signal: a last checkpoint, exit 0.
 *
 * failure modes: the process dies anywhere -> the next run resets the
 * group and the sink to the last recorded checkpoint: what was written
 * after it is written again, once. A checkpoint that times out (reader
 * slow) is skipped; the next interval starts another. A run that died
 * before its first checkpoint recreates the group from the start cut and
 * restores the sink to its starting token. The cluster unavailable ->
 * retry for retry_ms, then stop with the error.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "connect/connect.h"
#include "connect/state.h"
#include "strata/readergroup.h"

#define READ_WAIT_MS 100    /* longest wait of one read */
#define STOP_GRACE_MS 30000 /* last checkpoint on a signal, at most */
#define READER_NAME "connect"

struct export
{
	const struct connect_config *cfg;
	struct connector *conn;
	struct strata_client *c;
	struct connect_state st;
	struct strata_reader_group *rg;
	struct strata_reader *r;
	void *sink;
	char stream[600]; /* scope/stream */

	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* checkpoint thread -> reader thread (mu) */
	struct strata_checkpoint *done; /* completed, not yet recorded */
	int cp_rc;                      /* the checkpoint thread failed */
	char cp_err[STRATA_ERRMSG_SIZE];
	bool last_recorded; /* the checkpoint asked for by a stop is in */
	/* reader thread -> checkpoint thread (mu) */
	bool finished;   /* reader thread done: checkpoint thread exits */
	bool at_end;     /* the group reached its end: a last checkpoint */
	uint64_t cp_seq; /* names connect-<seq> */

	/* reader thread only */
	char marker[256];                       /* last marker passed */
	char token[STRATA_CONNECTOR_TOKEN_MAX]; /* sink token at it */
	uint64_t pending; /* events since the last recorded checkpoint */
	uint64_t total;   /* events recorded by this run */
};

/* ------------------------------------------------ checkpoint thread */

/* Wait on ex->cv (mu held) until ms pass, the reader finished or, when
 * stop_too, a stop was asked for. */
static void wait_ms(struct export *ex, uint64_t ms, bool stop_too)
{
	uint64_t until = connect_now_ms() + ms;
	while (!ex->finished && !(stop_too && (connect_stop || ex->at_end)) &&
	       connect_now_ms() < until) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&ex->cv, &ex->mu, &ts);
	}
}

/*
 * Start checkpoint name and poll until it completes (0, *cp), the reader
 * finishes (STRATA_ECLOSED), or timeout_ms pass (STRATA_ETIMEDOUT: it
 * stays pending). Polling, not the blocking initiate, so that a reader
 * that stops is never kept waiting for a checkpoint it will not pass.
 * mu held on entry and return.
 */
static int take_checkpoint(struct export *ex, const char *name, int timeout_ms,
                           struct strata_checkpoint **cp, char *err)
{
	pthread_mutex_unlock(&ex->mu);
	int rc = strata_reader_group_initiate_checkpoint(ex->rg, name, 0, cp,
	                                                 err);
	pthread_mutex_lock(&ex->mu);
	uint64_t deadline = connect_now_ms() + (uint64_t)timeout_ms;
	while (rc == STRATA_ETIMEDOUT || rc == STRATA_EAGAIN) {
		if (ex->finished) {
			return STRATA_ECLOSED;
		}
		if (connect_now_ms() >= deadline) {
			errmsg_set(err,
			           "the reader did not pass it within %d ms",
			           timeout_ms);
			return STRATA_ETIMEDOUT;
		}
		wait_ms(ex, 20, false);
		pthread_mutex_unlock(&ex->mu);
		rc = strata_reader_group_get_checkpoint(ex->rg, name, cp, err);
		pthread_mutex_lock(&ex->mu);
	}
	return rc;
}

static void *checkpoint_main(void *arg)
{
	struct export *ex = arg;
	const struct connect_config *cfg = ex->cfg;
	int timeout =
	        (int)(cfg->interval_ms * 3 < 30000 ? 30000
	                                           : cfg->interval_ms * 3);
	pthread_mutex_lock(&ex->mu);
	bool last = false;
	while (!ex->finished && !last) {
		wait_ms(ex, cfg->interval_ms, true); /* a stop cuts it short */
		if (ex->finished) {
			break;
		}
		last = connect_stop || ex->at_end;
		char name[64];
		snprintf(name, sizeof(name), "connect-%" PRIu64, ++ex->cp_seq);
		char err[STRATA_ERRMSG_SIZE] = "";
		struct strata_checkpoint *cp = NULL;
		int rc = take_checkpoint(ex, name, timeout, &cp, err);
		if (rc == STRATA_ECLOSED) {
			break;
		}
		if (rc == STRATA_EEXIST || rc == STRATA_ETIMEDOUT ||
		    rc == STRATA_EBUSY || rc == STRATA_EUNAVAIL) {
			/* EEXIST: a run that died left the name; ETIMEDOUT:
			 * it completes later, unrecorded: the next one will
			 * do. */
			LOG_WARN("connect", "checkpoint %s skipped: %s", name,
			         err);
			continue;
		}
		if (rc != 0) {
			ex->cp_rc = rc;
			errmsg_set(ex->cp_err, "checkpoint %s of group %s: %s",
			           name, cfg->group, err);
			break;
		}
		ex->done = cp;
		pthread_cond_broadcast(&ex->cv);
		while (ex->done != NULL && !ex->finished) {
			pthread_cond_wait(&ex->cv, &ex->mu);
		}
	}
	/* The last checkpoint after a stop is in (or could not be taken). */
	ex->last_recorded = true;
	pthread_cond_broadcast(&ex->cv);
	pthread_mutex_unlock(&ex->mu);
	return NULL;
}

/* ---------------------------------------------------- reader thread */

static int sink_prepare(struct export *ex, char *token, char *errmsg)
{
	char perr[STRATA_ERRMSG_SIZE] = "";
	int rc = ex->conn->ops.sink_prepare(ex->sink, token,
	                                    STRATA_CONNECTOR_TOKEN_MAX, perr);
	if (rc != 0) {
		return connector_fail(ex->conn, "prepare sink", rc, perr,
		                      errmsg);
	}
	if (!connect_token_ok(token)) {
		errmsg_set(errmsg,
		           "sink %s returned a token that is empty or not "
		           "printable ASCII: fix the plugin",
		           ex->conn->ops.name);
		return STRATA_EPLUGIN;
	}
	return 0;
}

static int sink_commit(struct export *ex, const char *token, char *errmsg)
{
	if (ex->conn->ops.sink_commit == NULL) {
		return 0;
	}
	char perr[STRATA_ERRMSG_SIZE] = "";
	int rc = ex->conn->ops.sink_commit(ex->sink, token, perr);
	return rc != 0 ? connector_fail(ex->conn, "commit sink", rc, perr,
	                                errmsg)
	               : 0;
}

/* Record completed checkpoint cp (its marker passed: ex->token is the
 * sink's token there), then commit the sink up to it. */
static int record(struct export *ex, const struct strata_checkpoint *cp,
                  char *errmsg)
{
	if (strcmp(cp->name, ex->marker) != 0) {
		errmsg_set(
		        errmsg,
		        "checkpoint %s completed but this reader last passed "
		        "%s: another reader is in group %s (one export "
		        "process per group)",
		        cp->name, ex->marker, ex->cfg->group);
		return STRATA_ECONFLICT;
	}
	char *texts[CONNECT_STATE_MAX_CUTS];
	size_t n =
	        cp->n < CONNECT_STATE_MAX_CUTS ? cp->n : CONNECT_STATE_MAX_CUTS;
	int rc = 0;
	size_t made = 0;
	for (; made < n && rc == 0; made++) {
		size_t need =
		        strata_stream_cut_format(&cp->cuts[made], NULL, 0);
		texts[made] = strata_malloc(need + 1);
		if (texts[made] == NULL) {
			rc = STRATA_ENOMEM;
			break;
		}
		strata_stream_cut_format(&cp->cuts[made], texts[made],
		                         need + 1);
	}
	if (rc == 0) {
		rc = connect_state_set_cuts(&ex->st, texts, n);
	}
	for (size_t i = 0; i < made; i++) {
		strata_free(texts[i]);
	}
	if (rc != 0) {
		return rc;
	}
	snprintf(ex->st.checkpoint, sizeof(ex->st.checkpoint), "%s", cp->name);
	memcpy(ex->st.sink, ex->token, sizeof(ex->st.sink));
	ex->st.seq++;
	rc = connect_state_save(ex->cfg->state_file, &ex->st, errmsg);
	if (rc == 0) {
		rc = sink_commit(ex, ex->token, errmsg);
	}
	if (rc == 0) {
		ex->total += ex->pending;
		LOG_INFO("connect",
		         "checkpoint %s: %" PRIu64 " events (%" PRIu64
		         " this run), sink at %s",
		         cp->name, ex->pending, ex->total, ex->token);
		ex->pending = 0;
	}
	if (rc == 0 && ex->cfg->hold_retention) {
		/* Exported and committed: retention may drop what is before
		 * it. A failure only holds more back until the next one. */
		char err[STRATA_ERRMSG_SIZE] = "";
		int r2 = strata_reader_group_update_retention_cut(
		        ex->rg, cp->cuts, cp->n, err);
		if (r2 != 0) {
			LOG_WARN("connect",
			         "checkpoint %s: could not release its cuts to "
			         "retention (%s); retention holds at the "
			         "previous one until the next checkpoint",
			         cp->name, err);
		}
	}
	return rc;
}

/* Take a completed checkpoint from the checkpoint thread, if any. */
static int take_done(struct export *ex, char *errmsg)
{
	pthread_mutex_lock(&ex->mu);
	struct strata_checkpoint *cp = ex->done;
	int rc = ex->cp_rc;
	if (rc != 0) {
		errmsg_set(errmsg, "%s", ex->cp_err);
	}
	pthread_mutex_unlock(&ex->mu);
	if (rc == 0 && cp != NULL) {
		rc = record(ex, cp, errmsg);
		strata_checkpoint_free(cp);
		pthread_mutex_lock(&ex->mu);
		ex->done = NULL;
		pthread_cond_broadcast(&ex->cv);
		pthread_mutex_unlock(&ex->mu);
	}
	return rc;
}

static int read_loop(struct export *ex, char *errmsg)
{
	const struct strata_connector_ops *o = &ex->conn->ops;
	uint64_t stop_deadline = 0;
	uint64_t retry_until = 0;
	for (;;) {
		struct strata_read rd;
		char err[STRATA_ERRMSG_SIZE] = "";
		int rc = strata_reader_next(ex->r, READ_WAIT_MS, &rd, err);
		if (rc == STRATA_ETRUNCATED) {
			/* The stream's retention went past the group (its
			 * max bound): what it dropped cannot be exported. */
			LOG_WARN("connect", "read %s: %s", ex->stream, err);
			continue;
		}
		if (rc != 0 && connect_transient(rc)) {
			uint64_t now = connect_now_ms();
			if (retry_until == 0) {
				retry_until = now + ex->cfg->retry_ms;
				LOG_WARN("connect", "read %s: %s; retrying",
				         ex->stream, err);
			}
			if (now < retry_until && !connect_stop) {
				continue;
			}
		}
		if (rc != 0) {
			errmsg_set(errmsg, "read %s (group %s): %s", ex->stream,
			           ex->cfg->group, err);
			return rc;
		}
		retry_until = 0;
		if (rd.kind == STRATA_READ_EVENT) {
			struct strata_connector_record rec = {.data = rd.data,
			                                      .len = rd.len};
			char perr[STRATA_ERRMSG_SIZE] = "";
			rc = o->sink_write(ex->sink, &rec, 1, perr);
			if (rc != 0) {
				return connector_fail(ex->conn, "write sink",
				                      rc, perr, errmsg);
			}
			ex->pending++;
		} else if (rd.kind == STRATA_READ_CHECKPOINT) {
			rc = sink_prepare(ex, ex->token, errmsg);
			if (rc != 0) {
				return rc;
			}
			snprintf(ex->marker, sizeof(ex->marker), "%s",
			         rd.checkpoint);
		} else if (rd.kind == STRATA_READ_END) {
			/* Everything is read. What was written since the
			 * last checkpoint is made visible only by a
			 * recorded one (a rerun then starts at it), never
			 * by committing unrecorded output: ask for a last
			 * checkpoint and wind down as on a stop. */
			if (!ex->at_end) {
				LOG_INFO("connect",
				         "group %s reached its end: taking a "
				         "last checkpoint",
				         ex->cfg->group);
			}
			pthread_mutex_lock(&ex->mu);
			ex->at_end = true;
			pthread_cond_broadcast(&ex->cv);
			pthread_mutex_unlock(&ex->mu);
			struct timespec ts = {0, 20 * 1000000L};
			nanosleep(&ts, NULL); /* END comes back at once */
		}
		rc = take_done(ex, errmsg);
		if (rc != 0) {
			return rc;
		}
		if (connect_stop || ex->at_end) {
			uint64_t now = connect_now_ms();
			if (stop_deadline == 0) {
				stop_deadline = now + STOP_GRACE_MS;
				pthread_mutex_lock(&ex->mu);
				pthread_cond_broadcast(&ex->cv);
				pthread_mutex_unlock(&ex->mu);
			}
			pthread_mutex_lock(&ex->mu);
			bool in = ex->last_recorded;
			pthread_mutex_unlock(&ex->mu);
			if (in || now >= stop_deadline) {
				if (!in) {
					LOG_WARN("connect",
					         "stopping without a last "
					         "checkpoint: the next run "
					         "starts from %s",
					         ex->st.checkpoint[0] != '\0'
					                 ? ex->st.checkpoint
					                 : "the start");
				}
				return 0;
			}
		}
	}
}

/* ------------------------------------------------------------ set-up */

/* The start cut of a new group (head, tail or cut text). */
static int start_cut(struct export *ex, struct strata_stream_cut *cut,
                     char *errmsg)
{
	const struct connect_config *cfg = ex->cfg;
	char err[STRATA_ERRMSG_SIZE] = "";
	int rc = 0;
	if (strcmp(cfg->start, "head") == 0) {
		snprintf(cut->scope, sizeof(cut->scope), "%s", cfg->scope);
		snprintf(cut->stream, sizeof(cut->stream), "%s", cfg->stream);
		return 0;
	}
	if (strcmp(cfg->start, "tail") == 0) {
		struct strata_stream_info *info = NULL;
		rc = strata_stream_get_info(ex->c, cfg->scope, cfg->stream,
		                            &info, err);
		if (rc == 0) {
			rc = strata_stream_cut_copy(cut, &info->tail);
			strata_stream_info_free(info);
		}
	} else {
		rc = strata_stream_cut_parse(cfg->start, cut, err);
		if (rc == 0 && (strcmp(cut->scope, cfg->scope) != 0 ||
		                strcmp(cut->stream, cfg->stream) != 0)) {
			errmsg_set(err, "the cut is of %s/%s", cut->scope,
			           cut->stream);
			rc = STRATA_EINVAL;
		}
	}
	if (rc != 0) {
		errmsg_set(errmsg, "start %.100s of %s: %s", cfg->start,
		           ex->stream, err);
	}
	return rc;
}

/* Create the group at the start cut (deleting a leftover first when
 * replace). */
static int create_group(struct export *ex, bool replace, char *errmsg)
{
	const struct connect_config *cfg = ex->cfg;
	char err[STRATA_ERRMSG_SIZE] = "";
	if (replace) {
		int rc = strata_reader_group_delete(ex->c, cfg->scope,
		                                    cfg->group, err);
		if (rc != 0 && rc != STRATA_ENOENT) {
			errmsg_set(errmsg, "delete reader group %s/%s: %s",
			           cfg->scope, cfg->group, err);
			return rc;
		}
	}
	struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
	int rc = start_cut(ex, &cut, errmsg);
	if (rc != 0) {
		return rc;
	}
	struct strata_reader_group_stream s = {.start = &cut, .end = NULL};
	struct strata_reader_group_config gc;
	strata_reader_group_config_default(&gc);
	gc.streams = &s;
	gc.n_streams = 1;
	if (cfg->hold_retention) {
		/* Released in record(), after the sink commit. */
		gc.retention = STRATA_RG_RETENTION_MANUAL;
	}
	/* The reader sees a checkpoint when it fetches the group's state:
	 * twice per interval, so one completes well inside it. */
	uint64_t refresh = cfg->interval_ms / 2;
	gc.group_refresh_ms = (uint32_t)(refresh < 50     ? 50
	                                 : refresh > 3000 ? 3000
	                                                  : refresh);
	/* Right after a delete (replace), the old group's state stream may
	 * still be being removed (STRATA_EBUSY): wait for it, as for an
	 * unavailable cluster. */
	uint64_t until = connect_now_ms() + cfg->retry_ms;
	unsigned delay = 50;
	for (;;) {
		rc = strata_reader_group_create(ex->c, cfg->scope, cfg->group,
		                                &gc, err);
		if (rc != STRATA_EBUSY || connect_now_ms() + delay > until ||
		    connect_stop) {
			break;
		}
		clock_sleep_ms(delay);
		delay = delay < 1000 ? 2 * delay : delay;
	}
	strata_stream_cut_clear(&cut);
	if (rc == STRATA_EEXIST) {
		errmsg_set(errmsg,
		           "reader group %s/%s exists but %.200s holds no "
		           "checkpoint of it: give the checkpoint file that "
		           "goes with it, or delete the group (stratactl group "
		           "delete %s/%s) to export from %s again",
		           cfg->scope, cfg->group, cfg->state_file, cfg->scope,
		           cfg->group, cfg->start);
	} else if (rc != 0) {
		errmsg_set(errmsg, "create reader group %s/%s: %s", cfg->scope,
		           cfg->group, err);
	}
	return rc;
}

static int open_sink(struct export *ex, const char *restore, char *errmsg)
{
	char perr[STRATA_ERRMSG_SIZE] = "";
	int rc =
	        ex->conn->ops.sink_open(&ex->conn->host, ex->cfg->plugin_config,
	                                restore, &ex->sink, perr);
	if (rc != 0) {
		ex->sink = NULL;
		return connector_fail(ex->conn, "open sink", rc, perr, errmsg);
	}
	LOG_INFO("connect", "sink %s open%s%s", ex->conn->ops.name,
	         restore != NULL ? " at " : "", restore != NULL ? restore : "");
	return 0;
}

/* Bring the group and the sink to the last recorded checkpoint (or to
 * the start on a first run) and join as the reader. */
static int restore(struct export *ex, bool exists, char *errmsg)
{
	const struct connect_config *cfg = ex->cfg;
	char err[STRATA_ERRMSG_SIZE] = "";
	int rc;
	if (!exists) {
		/* First run: the group at the start, the sink's starting
		 * token recorded before anything is read. */
		connect_state_init(&ex->st, CONNECT_EXPORT, ex->stream);
		snprintf(ex->st.group, sizeof(ex->st.group), "%s", cfg->group);
		/* The sink first: one that cannot open (a bad path) leaves
		 * no group behind to refuse the corrected run. */
		rc = open_sink(ex, NULL, errmsg);
		if (rc == 0) {
			rc = create_group(ex, false, errmsg);
		}
		if (rc == 0) {
			rc = sink_prepare(ex, ex->st.sink, errmsg);
		}
		if (rc == 0) {
			ex->st.seq++;
			rc = connect_state_save(cfg->state_file, &ex->st,
			                        errmsg);
		}
	} else if (ex->st.checkpoint[0] == '\0') {
		/* Died before its first checkpoint: start over. */
		LOG_INFO("connect",
		         "no checkpoint recorded yet: recreating group %s at "
		         "%s",
		         cfg->group, cfg->start);
		rc = create_group(ex, true, errmsg);
		if (rc == 0) {
			rc = open_sink(
			        ex, ex->st.sink[0] != '\0' ? ex->st.sink : NULL,
			        errmsg);
		}
	} else {
		struct strata_checkpoint cp;
		memset(&cp, 0, sizeof(cp));
		snprintf(cp.name, sizeof(cp.name), "%s", ex->st.checkpoint);
		struct strata_stream_cut cuts[CONNECT_STATE_MAX_CUTS];
		memset(cuts, 0, sizeof(cuts));
		rc = 0;
		for (size_t i = 0; rc == 0 && i < ex->st.n_cuts; i++) {
			rc = strata_stream_cut_parse(ex->st.cuts[i], &cuts[i],
			                             err);
			cp.n = i + 1;
		}
		cp.cuts = cuts;
		if (rc != 0) {
			errmsg_set(errmsg, "checkpoint file %.200s: cut: %s",
			           cfg->state_file, err);
		}
		struct strata_reader_group *rg = NULL;
		if (rc == 0) {
			rc = strata_reader_group_open(ex->c, cfg->scope,
			                              cfg->group, &rg, err);
			if (rc == 0) {
				rc = strata_reader_group_reset(rg, &cp, err);
				strata_reader_group_close(rg);
			}
			if (rc != 0) {
				errmsg_set(errmsg,
				           "reset reader group %s/%s to "
				           "checkpoint "
				           "%s: %s",
				           cfg->scope, cfg->group, cp.name,
				           err);
			}
		}
		for (size_t i = 0; i < cp.n; i++) {
			strata_stream_cut_clear(&cuts[i]);
		}
		if (rc == 0) {
			LOG_INFO("connect", "group %s reset to checkpoint %s",
			         cfg->group, cp.name);
			rc = open_sink(ex, ex->st.sink, errmsg);
		}
		if (rc == 0) {
			rc = sink_commit(ex, ex->st.sink, errmsg);
		}
	}
	if (rc == 0) {
		rc = strata_reader_group_open(ex->c, cfg->scope, cfg->group,
		                              &ex->rg, err);
		if (rc != 0) {
			ex->rg = NULL;
			errmsg_set(errmsg, "open reader group %s/%s: %s",
			           cfg->scope, cfg->group, err);
		}
	}
	if (rc == 0) {
		rc = strata_reader_new(ex->c, cfg->scope, cfg->group,
		                       READER_NAME, &ex->r, err);
		if (rc != 0) {
			ex->r = NULL;
			errmsg_set(errmsg, "join reader group %s/%s: %s",
			           cfg->scope, cfg->group, err);
		}
	}
	return rc;
}

int connect_export_check(const struct connect_config *cfg,
                         const struct connector *conn, char *errmsg)
{
	if (strcmp(cfg->start, "head") != 0 &&
	    strcmp(cfg->start, "tail") != 0) {
		char err[STRATA_ERRMSG_SIZE] = "";
		struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
		int rc = strata_stream_cut_parse(cfg->start, &cut, err);
		if (rc == 0 && (strcmp(cut.scope, cfg->scope) != 0 ||
		                strcmp(cut.stream, cfg->stream) != 0)) {
			errmsg_set(err, "the cut is of %s/%s, not of %s/%s",
			           cut.scope, cut.stream, cfg->scope,
			           cfg->stream);
			rc = STRATA_EINVAL;
		}
		strata_stream_cut_clear(&cut);
		if (rc != 0) {
			errmsg_set(errmsg,
			           "start %.100s: %s; give head, tail or a "
			           "stream cut of the exported stream",
			           cfg->start, err);
			return STRATA_ECONFIG;
		}
	}
	if (conn->ops.sink_open == NULL) {
		errmsg_set(errmsg,
		           "connector %s has no sink: it cannot export; use "
		           "mode=import, or another connector",
		           conn->ops.name);
		return STRATA_ECONFIG;
	}
	if (cfg->exactly_once &&
	    (conn->ops.sink_flags & STRATA_CONNECTOR_SINK_EXACTLY_ONCE) == 0) {
		errmsg_set(errmsg,
		           "sink %s cannot take back what it wrote after a "
		           "checkpoint, so it cannot be exported to exactly "
		           "once: set guarantee=at-least-once",
		           conn->ops.name);
		return STRATA_ECONFIG;
	}
	return 0;
}

int connect_export(const struct connect_config *cfg, struct connector *conn,
                   struct strata_client *c, char *errmsg)
{
	int crc = connect_export_check(cfg, conn, errmsg);
	if (crc != 0) {
		return crc;
	}
	struct export *ex = strata_calloc(1, sizeof(*ex));
	if (ex == NULL) {
		return STRATA_ENOMEM;
	}
	ex->cfg = cfg;
	ex->conn = conn;
	ex->c = c;
	snprintf(ex->stream, sizeof(ex->stream), "%s/%s", cfg->scope,
	         cfg->stream);
	pthread_mutex_init(&ex->mu, NULL);
	pthread_cond_init(&ex->cv, NULL);
	bool exists = false;
	int rc = connect_state_load(cfg->state_file, &ex->st, &exists, errmsg);
	if (rc == 0 && exists &&
	    (ex->st.mode != CONNECT_EXPORT ||
	     strcmp(ex->st.stream, ex->stream) ||
	     strcmp(ex->st.group, cfg->group) != 0)) {
		errmsg_set(errmsg,
		           "checkpoint file %.200s belongs to the %s of %s "
		           "(group %s), not to an export of %s through group "
		           "%s: give each pipeline its own checkpoint.file",
		           cfg->state_file,
		           ex->st.mode == CONNECT_IMPORT ? "import" : "export",
		           ex->st.stream, ex->st.group, ex->stream, cfg->group);
		rc = STRATA_EINVAL;
	}
	if (rc == 0) {
		rc = restore(ex, exists, errmsg);
	}
	pthread_t th;
	bool started = false;
	if (rc == 0) {
		ex->cp_seq = ex->st.seq;
		started = pthread_create(&th, NULL, checkpoint_main, ex) == 0;
		rc = started ? 0 : STRATA_ENOMEM;
	}
	if (rc == 0) {
		rc = read_loop(ex, errmsg);
	}
	if (started) {
		pthread_mutex_lock(&ex->mu);
		ex->finished = true;
		pthread_cond_broadcast(&ex->cv);
		pthread_mutex_unlock(&ex->mu);
		pthread_join(th, NULL);
		if (ex->done != NULL) {
			strata_checkpoint_free(ex->done);
		}
	}
	if (rc == 0) {
		/* stderr: stdout may be the data (the stdio sink). */
		fprintf(stderr,
		        "strata-connect: exported %" PRIu64
		        " events of %s to %s (%s)\n",
		        ex->total, ex->stream, conn->ops.name,
		        cfg->exactly_once ? "exactly once" : "at least once");
	}
	char err[STRATA_ERRMSG_SIZE];
	if (ex->r != NULL) {
		strata_reader_close(ex->r, err);
	}
	if (ex->rg != NULL) {
		strata_reader_group_close(ex->rg);
	}
	if (ex->sink != NULL) {
		conn->ops.sink_close(ex->sink);
	}
	connect_state_clear(&ex->st);
	pthread_cond_destroy(&ex->cv);
	pthread_mutex_destroy(&ex->mu);
	strata_free(ex);
	return rc;
}
