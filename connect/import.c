/*
 * strata-connect import: a source endpoint into one stream, exactly once
 * through transactions (docs/connect.md, "Exactly once").
 *
 * happy path: load the checkpoint file -> settle a transaction it names
 * as prepared (commit it by id) -> open the source at the committed token
 * -> poll records into an open transaction -> every interval: flush the
 * transaction, record (txn, token after its last record) as prepared,
 * commit it, record the token as committed -> the source ends (or a
 * signal): a last checkpoint, exit 0.
 *
 * failure modes: the process dies anywhere -> the next run commits the
 * prepared transaction by id (idempotent) or learns it was aborted and
 * reads its records again from the committed token: every record lands
 * once. A transaction aborted under us (lease ran out: STRATA_ECONFLICT;
 * a scale the controller could not roll it across: STRATA_ENOSPC /
 * STRATA_ENOTSUP) -> reopen the source at the committed token and write
 * the interval again. The cluster unavailable
 * -> retry for retry_ms, then stop with the error (state file intact).
 * At least once (no transactions): a writer; the committed token is
 * recorded after a flush, so a crash between the two repeats records.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/errmsg.h"
#include "common/log.h"
#include "connect/connect.h"
#include "connect/state.h"
#include "strata/txn.h"
#include "strata/writer.h"

#define POLL_RECORDS 512   /* records per source poll */
#define POLL_WAIT_MS 100   /* longest wait of one poll */
#define MAX_REDO 5         /* aborted intervals in a row before giving up */
#define RETRY_SLEEP_MS 500 /* between attempts on an unavailable cluster */
#define STEP_REDO 1        /* checkpoint(): read the interval again */

struct import {
	const struct connect_config *cfg;
	struct connector *conn;
	struct strata_client *c;
	struct connect_state st;
	void *src;               /* source instance */
	struct strata_txn *txn;  /* exactly once: the open transaction */
	struct strata_writer *w; /* at least once: the writer */
	uint64_t pending;        /* records since the last checkpoint */
	uint64_t total;          /* records committed by this run */
	int redo;                /* intervals aborted in a row */
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* A commit outcome that means the transaction is aborted for good. */
static bool txn_was_aborted(int rc)
{
	return rc == STRATA_ECONFLICT || rc == STRATA_ENOSPC ||
	       rc == STRATA_ENOTSUP;
}

static int save(struct import *im, char *errmsg)
{
	im->st.seq++;
	return connect_state_save(im->cfg->state_file, &im->st, errmsg);
}

/*
 * Settle the prepared transaction the state names: commit it by id
 * (idempotent), or learn it was aborted. Either way the state then holds
 * only the committed token, saved. 0 or the error that leaves it
 * undecided (the file still names it).
 */
static int settle_prepared(struct import *im, char *errmsg)
{
	const struct connect_config *cfg = im->cfg;
	uint64_t id = im->st.txn;
	if (id == 0) {
		return 0;
	}
	uint64_t deadline = connect_now_ms() + cfg->retry_ms;
	bool committed = false;
	for (;;) {
		char err[STRATA_ERRMSG_SIZE] = "";
		int rc = strata_txn_commit_id(im->c, cfg->scope, cfg->stream,
		                              id, err);
		if (rc == STRATA_ENOENT &&
		    cfg->unknown_txn != CONNECT_UNKNOWN_FAIL) {
			committed =
			        cfg->unknown_txn == CONNECT_UNKNOWN_COMMITTED;
			LOG_WARN("connect",
			         "transaction %" PRIu64 " is unknown to the "
			         "controller; recovery.unknown_txn says it %s",
			         id, committed ? "committed" : "aborted");
			break;
		}
		if (rc == 0) {
			committed = true;
			break;
		}
		if (txn_was_aborted(rc)) {
			LOG_WARN("connect",
			         "prepared transaction %" PRIu64 " was aborted "
			         "(%s): its records are read again from the "
			         "source",
			         id, err);
			break;
		}
		if (connect_transient(rc) && connect_now_ms() < deadline &&
		    !connect_stop) {
			sleep_ms(RETRY_SLEEP_MS);
			continue;
		}
		if (rc == STRATA_ENOENT) {
			/* The fix first: the message is cut at 255 bytes. */
			errmsg_set(errmsg,
			           "prepared transaction %" PRIu64
			           " is unknown "
			           "to the controller (forgotten an hour after "
			           "it completed): rerun with "
			           "--recovery.unknown_txn=committed or "
			           "=aborted, whichever %.60s/%.60s shows "
			           "(does it hold the interval's records?)",
			           id, cfg->scope, cfg->stream);
			return rc;
		}
		errmsg_set(errmsg,
		           "commit prepared transaction %" PRIu64 " of %s/%s: "
		           "%s",
		           id, cfg->scope, cfg->stream, err);
		return rc;
	}
	if (committed) {
		memcpy(im->st.committed, im->st.prepared,
		       sizeof(im->st.committed));
		im->st.have_committed = true;
		LOG_INFO("connect",
		         "transaction %" PRIu64 " committed: source at %s", id,
		         im->st.committed);
	}
	im->st.txn = 0;
	im->st.prepared[0] = '\0';
	return save(im, errmsg);
}

/* (Re)open the source at the committed token. */
static int open_source(struct import *im, char *errmsg)
{
	const struct strata_connector_ops *o = &im->conn->ops;
	if (im->src != NULL) {
		o->source_close(im->src);
		im->src = NULL;
	}
	char perr[STRATA_ERRMSG_SIZE] = "";
	/* A source that cannot go back starts where it is (stdin): at
	 * least once, as the guarantee check allowed. */
	bool replay =
	        (o->source_flags & STRATA_CONNECTOR_SOURCE_REPLAYABLE) != 0;
	const char *at =
	        im->st.have_committed && replay ? im->st.committed : NULL;
	int rc = o->source_open(&im->conn->host, im->cfg->plugin_config, at,
	                        &im->src, perr);
	if (rc != 0) {
		im->src = NULL;
		return connector_fail(im->conn, "open source", rc, perr,
		                      errmsg);
	}
	LOG_INFO("connect", "source %s open at %s", o->name,
	         at != NULL ? at : "its beginning");
	im->pending = 0;
	return 0;
}

/* The source's position token into token[STRATA_CONNECTOR_TOKEN_MAX]. */
static int position(struct import *im, char *token, char *errmsg)
{
	char perr[STRATA_ERRMSG_SIZE] = "";
	int rc = im->conn->ops.source_position(
	        im->src, token, STRATA_CONNECTOR_TOKEN_MAX, perr);
	if (rc != 0) {
		return connector_fail(im->conn, "position of source", rc, perr,
		                      errmsg);
	}
	if (!connect_token_ok(token)) {
		errmsg_set(errmsg,
		           "source %s returned a position token that is empty "
		           "or not printable ASCII: fix the plugin",
		           im->conn->ops.name);
		return STRATA_EPLUGIN;
	}
	return 0;
}

/* Write one record into the transaction (begun on the first) or the
 * writer. */
static int write_record(struct import *im,
                        const struct strata_connector_record *r, char *errmsg)
{
	const struct connect_config *cfg = im->cfg;
	char err[STRATA_ERRMSG_SIZE] = "";
	int rc;
	if (cfg->exactly_once) {
		if (im->txn == NULL) {
			struct strata_txn_config tc;
			strata_txn_config_default(&tc);
			tc.lease_ms = cfg->txn_lease_ms;
			tc.writer.codec = cfg->codec;
			tc.writer.codec_level = cfg->codec_level;
			tc.writer.max_event_bytes = cfg->max_event;
			tc.writer.retry_timeout_ms = connect_bound_ms(
			        cfg, tc.writer.retry_timeout_ms);
			rc = strata_txn_begin(im->c, cfg->scope, cfg->stream,
			                      &tc, &im->txn, err);
			if (rc != 0) {
				/* err names the stream and the call already */
				im->txn = NULL;
				errmsg_set(errmsg, "%s", err);
				return rc;
			}
		}
		rc = strata_txn_write(im->txn, r->key, r->keylen, r->data,
		                      r->len, err);
	} else {
		rc = strata_writer_write(im->w, r->key, r->keylen, r->data,
		                         r->len, NULL, NULL, err);
	}
	if (rc != 0) {
		errmsg_set(errmsg, "write to %s/%s: %s", cfg->scope,
		           cfg->stream, err);
	}
	return rc;
}

/* The transaction failed or was aborted: drop it, count the redo. */
static int redo_interval(struct import *im, const char *why, char *errmsg)
{
	if (im->txn != NULL) {
		strata_txn_free(im->txn); /* aborts it if still open */
		im->txn = NULL;
	}
	if (++im->redo > MAX_REDO) {
		errmsg_set(errmsg,
		           "%d intervals in a row could not be committed; the "
		           "last: %s",
		           MAX_REDO, why);
		return STRATA_EUNAVAIL;
	}
	LOG_WARN("connect",
	         "interval of %" PRIu64 " records not committed (%s): reading "
	         "it again from %s",
	         im->pending, why,
	         im->st.have_committed ? im->st.committed : "the beginning");
	int rc = open_source(im, errmsg);
	return rc != 0 ? rc : STEP_REDO;
}

/* Checkpoint, exactly once: flush, prepare, commit. 0, STEP_REDO (the
 * interval must be read again) or a fatal error. */
static int checkpoint_txn(struct import *im, char *errmsg)
{
	char pos[STRATA_CONNECTOR_TOKEN_MAX];
	int rc = position(im, pos, errmsg);
	if (rc != 0) {
		return rc;
	}
	if (im->txn == NULL) {
		if (!im->st.have_committed ||
		    strcmp(pos, im->st.committed) != 0) {
			memcpy(im->st.committed, pos, sizeof(pos));
			im->st.have_committed = true;
			return save(im, errmsg);
		}
		return 0;
	}
	char err[STRATA_ERRMSG_SIZE] = "";
	rc = strata_txn_flush(im->txn, err);
	if (rc == STRATA_ESEALED || rc == STRATA_ENOENT) {
		errmsg_set(errmsg, "flush to %s/%s: %s", im->cfg->scope,
		           im->cfg->stream, err);
		return rc;
	}
	if (rc != 0) {
		return redo_interval(im, err, errmsg);
	}
	uint64_t id = strata_txn_id(im->txn);
	im->st.txn = id;
	memcpy(im->st.prepared, pos, sizeof(pos));
	rc = save(im, errmsg);
	if (rc != 0) {
		return rc; /* the transaction's lease runs out: aborted */
	}
	rc = strata_txn_commit(im->txn, err);
	strata_txn_free(im->txn);
	im->txn = NULL;
	if (txn_was_aborted(rc)) {
		im->st.txn = 0;
		im->st.prepared[0] = '\0';
		int src = save(im, errmsg);
		return src != 0 ? src : redo_interval(im, err, errmsg);
	}
	if (rc != 0 && connect_transient(rc)) {
		LOG_WARN("connect",
		         "commit of transaction %" PRIu64 " unsure (%s): "
		         "settling it by id",
		         id, err);
		rc = settle_prepared(im, errmsg);
		if (rc != 0) {
			return rc;
		}
		if (!im->st.have_committed ||
		    strcmp(im->st.committed, pos) != 0) {
			return redo_interval(im, "aborted", errmsg);
		}
	} else if (rc != 0) {
		errmsg_set(errmsg,
		           "commit transaction %" PRIu64 " of %s/%s: %s", id,
		           im->cfg->scope, im->cfg->stream, err);
		return rc; /* the file names it prepared: the next run settles
		            */
	} else {
		memcpy(im->st.committed, pos, sizeof(pos));
		im->st.have_committed = true;
		im->st.txn = 0;
		im->st.prepared[0] = '\0';
		rc = save(im, errmsg);
		if (rc != 0) {
			return rc;
		}
	}
	im->total += im->pending;
	LOG_INFO("connect",
	         "checkpoint %" PRIu64 ": %" PRIu64 " records in transaction "
	         "%" PRIu64 " (%" PRIu64 " this run), source at %s",
	         im->st.seq, im->pending, id, im->total, im->st.committed);
	im->pending = 0;
	im->redo = 0;
	return 0;
}

/* Checkpoint, at least once: flush the writer, record the token. */
static int checkpoint_flush(struct import *im, char *errmsg)
{
	char pos[STRATA_CONNECTOR_TOKEN_MAX];
	int rc = position(im, pos, errmsg);
	if (rc != 0) {
		return rc;
	}
	char err[STRATA_ERRMSG_SIZE] = "";
	rc = strata_writer_flush(im->w, err);
	if (rc != 0) {
		errmsg_set(errmsg, "flush to %s/%s: %s", im->cfg->scope,
		           im->cfg->stream, err);
		return rc;
	}
	memcpy(im->st.committed, pos, sizeof(pos));
	im->st.have_committed = true;
	rc = save(im, errmsg);
	if (rc == 0 && im->pending != 0) {
		im->total += im->pending;
		LOG_INFO("connect",
		         "checkpoint %" PRIu64 ": %" PRIu64 " records (%" PRIu64
		         " this run), source at %s",
		         im->st.seq, im->pending, im->total, pos);
	}
	im->pending = 0;
	return rc;
}

/* Check the checkpoint file belongs to this pipeline. */
static int check_state(struct import *im, bool exists, const char *want,
                       char *errmsg)
{
	if (!exists) {
		connect_state_init(&im->st, CONNECT_IMPORT, want);
		return 0;
	}
	if (im->st.mode != CONNECT_IMPORT || strcmp(im->st.stream, want) != 0) {
		errmsg_set(
		        errmsg,
		        "checkpoint file %.200s belongs to the %s of %s, not "
		        "to an import into %s: give each pipeline its own "
		        "checkpoint.file",
		        im->cfg->state_file,
		        im->st.mode == CONNECT_IMPORT ? "import" : "export",
		        im->st.stream, want);
		return STRATA_EINVAL;
	}
	return 0;
}

static int run(struct import *im, char *errmsg)
{
	const struct connect_config *cfg = im->cfg;
	const struct strata_connector_ops *o = &im->conn->ops;
	char want[600];
	snprintf(want, sizeof(want), "%s/%s", cfg->scope, cfg->stream);
	bool exists = false;
	int rc = connect_state_load(cfg->state_file, &im->st, &exists, errmsg);
	if (rc == 0) {
		rc = check_state(im, exists, want, errmsg);
	}
	if (rc == 0) {
		rc = settle_prepared(im, errmsg);
	}
	if (rc == 0 && !cfg->exactly_once) {
		char err[STRATA_ERRMSG_SIZE] = "";
		struct strata_writer_config wc;
		strata_writer_config_default(&wc);
		wc.codec = cfg->codec;
		wc.codec_level = cfg->codec_level;
		wc.max_event_bytes = cfg->max_event;
		wc.retry_timeout_ms =
		        connect_bound_ms(cfg, wc.retry_timeout_ms);
		rc = strata_writer_new(im->c, cfg->scope, cfg->stream, &wc,
		                       &im->w, err);
		if (rc != 0) {
			im->w = NULL;
			errmsg_set(errmsg, "writer for %s: %s", want, err);
		}
	}
	if (rc == 0) {
		rc = open_source(im, errmsg);
	}
	struct strata_connector_record recs[POLL_RECORDS];
	uint64_t deadline = connect_now_ms() + cfg->interval_ms;
	while (rc == 0) {
		uint64_t now = connect_now_ms();
		uint64_t left = deadline > now ? deadline - now : 0;
		int wait = left < POLL_WAIT_MS ? (int)left : POLL_WAIT_MS;
		size_t n = 0;
		bool end = false;
		char perr[STRATA_ERRMSG_SIZE] = "";
		rc = o->source_poll(im->src, wait, cfg->max_event, recs,
		                    POLL_RECORDS, &n, &end, perr);
		if (rc != 0) {
			rc = connector_fail(im->conn, "read source", rc, perr,
			                    errmsg);
			break;
		}
		for (size_t i = 0; rc == 0 && i < n; i++) {
			rc = write_record(im, &recs[i], errmsg);
		}
		im->pending += n;
		if (rc != 0) {
			break;
		}
		if (!end && !connect_stop && connect_now_ms() < deadline) {
			continue;
		}
		rc = cfg->exactly_once ? checkpoint_txn(im, errmsg)
		                       : checkpoint_flush(im, errmsg);
		deadline = connect_now_ms() + cfg->interval_ms;
		if (rc == STEP_REDO) {
			rc = 0;
			continue;
		}
		if (rc == 0 && (end || connect_stop)) {
			break;
		}
	}
	if (rc == 0) {
		/* stderr, as for an export: stdout is kept for data. */
		fprintf(stderr,
		        "strata-connect: imported %" PRIu64 " records into %s "
		        "(%s); source at %s\n",
		        im->total, want,
		        cfg->exactly_once ? "exactly once" : "at least once",
		        im->st.have_committed ? im->st.committed : "its start");
	}
	return rc;
}

int connect_import_check(const struct connect_config *cfg,
                         const struct connector *conn, char *errmsg)
{
	if (conn->ops.source_open == NULL) {
		errmsg_set(errmsg,
		           "connector %s has no source: it cannot import; use "
		           "mode=export, or another connector",
		           conn->ops.name);
		return STRATA_ECONFIG;
	}
	if (cfg->exactly_once && (conn->ops.source_flags &
	                          STRATA_CONNECTOR_SOURCE_REPLAYABLE) == 0) {
		errmsg_set(errmsg,
		           "source %s cannot be read again from a position, so "
		           "it cannot be imported exactly once: set "
		           "guarantee=at-least-once",
		           conn->ops.name);
		return STRATA_ECONFIG;
	}
	return 0;
}

int connect_import(const struct connect_config *cfg, struct connector *conn,
                   struct strata_client *c, char *errmsg)
{
	int crc = connect_import_check(cfg, conn, errmsg);
	if (crc != 0) {
		return crc;
	}
	struct import im;
	memset(&im, 0, sizeof(im));
	im.cfg = cfg;
	im.conn = conn;
	im.c = c;
	int rc = run(&im, errmsg);
	if (im.txn != NULL) {
		strata_txn_free(im.txn); /* not prepared: aborted */
	}
	if (im.w != NULL) {
		char err[STRATA_ERRMSG_SIZE];
		strata_writer_close(im.w, err);
	}
	if (im.src != NULL) {
		conn->ops.source_close(im.src);
	}
	connect_state_clear(&im.st);
	return rc;
}
