/* stratactl write (events from stdin) and read (events to stdout). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cut.h"
#include "common/alloc.h"
#include "common/config.h"
#include "common/errmsg.h"
#include "strata/batch.h"
#include "strata/txn.h"
#include "strata/writer.h"

/* --------------------------------------------------------------- write */

static const struct cli_opt write_opts[] = {
        {"key", true, "KEY", "routing key of every event"},
        {"key-separator", true, "SEP",
         "each line is KEY, SEP, PAYLOAD ('\\t' = tab)"},
        {"length-prefixed", false, NULL,
         "stdin holds records: 4-byte little-endian length, bytes"},
        {"create", false, NULL,
         "create the scope and the stream first when missing"},
        {"segments", true, "N", "with --create: segments of a new stream"},
        {"max-event", true, "SIZE",
         "largest event accepted (8MiB, the stores' default)"},
        {"transaction", false, NULL,
         "all of stdin in one transaction: readers see every event at "
         "once after the commit at the end, or none (a bad record or an "
         "error aborts it)"},
        {"codec", true, "NAME",
         "compress each event with a codec plugin: zstd, lz4 or gzip "
         "(readers decode transparently)"},
        {"codec-level", true, "N",
         "compression level (zstd 1..19, lz4 0..12, gzip 1..9; default: "
         "the codec's)"},
};

/* Outcomes reported by the writer's callbacks (I/O thread). */
struct write_state {
	pthread_mutex_t mu;
	uint64_t acked;
	uint64_t acked_bytes;
	uint64_t failed;
	int first_code;
	char first_err[STRATA_ERRMSG_SIZE];
};

/* The fix when the stores refused an event the client let through. */
#define TOOBIG_AT_STORE                                                     \
	" (an event is larger than the stores' limits.max_event: raise "    \
	"that, or lower --max-event to it so that such events are refused " \
	"before they are sent)"

/* Per-event completion argument: its payload size. */
static void write_done(void *arg, int code, const char *errmsg)
{
	struct write_state *st = arg;
	pthread_mutex_lock(&st->mu);
	if (code == 0) {
		st->acked++;
	} else {
		st->failed++;
		if (st->first_code == 0) {
			st->first_code = code;
			snprintf(st->first_err, sizeof(st->first_err), "%s",
			         errmsg != NULL ? errmsg : "");
		}
	}
	pthread_mutex_unlock(&st->mu);
}

/* Create scope and stream unless they exist; 0 or the exit code. */
static int write_create(struct cli *c, struct strata_client *cl,
                        const char *scope, const char *stream, const char *full,
                        uint32_t segments)
{
	char err[STRATA_ERRMSG_SIZE];
	int rc = strata_scope_create(cl, scope, err);
	if (rc != 0 && rc != STRATA_EEXIST) {
		return cli_fail_op(c, rc, scope, err);
	}
	struct strata_stream_config cfg;
	strata_stream_config_default(&cfg);
	cfg.min_segments = segments;
	rc = strata_stream_create(cl, scope, stream, &cfg, err);
	if (rc != 0 && rc != STRATA_EEXIST) {
		return cli_fail_op(c, rc, full, err);
	}
	if (rc == 0) {
		cli_note(c, "created stream %s with %" PRIu32 " segment%s",
		         full, segments, segments == 1 ? "" : "s");
	}
	return 0;
}

/* Parsed write options. */
struct write_opts {
	const char *key;
	size_t keylen;
	char sep[64];
	size_t seplen; /* 0 = no separator */
	bool prefixed;
	uint64_t max_event;
	uint32_t segments;
	const char *codec; /* NULL: none */
	int codec_level;   /* 0: the codec's default */
};

static int write_parse(struct cli *c, const struct cli_args *a,
                       struct write_opts *o)
{
	char err[STRATA_ERRMSG_SIZE];
	memset(o, 0, sizeof(*o));
	o->key = cli_args_get(a, "key");
	o->keylen = o->key != NULL ? strlen(o->key) : 0;
	o->prefixed = cli_args_has(a, "length-prefixed");
	const char *sep = cli_args_get(a, "key-separator");
	if (sep != NULL) {
		if (o->key != NULL) {
			return cli_fail(c, STRATA_EINVAL,
			                "give --key or --key-separator, not "
			                "both");
		}
		if (o->prefixed) {
			return cli_fail(
			        c, STRATA_EINVAL,
			        "--key-separator works on lines, not with "
			        "--length-prefixed (use --key)");
		}
		if (cli_unescape(sep, o->sep, sizeof(o->sep), &o->seplen,
		                 err) != 0) {
			return cli_fail(c, STRATA_EINVAL, "--key-separator: %s",
			                err);
		}
	}
	o->max_event = STRATA_DEFAULT_MAX_EVENT_BYTES;
	const char *me = cli_args_get(a, "max-event");
	if (me != NULL &&
	    (config_parse_size(me, &o->max_event) != 0 || o->max_event == 0 ||
	     o->max_event > STRATA_MAX_EVENT_BYTES)) {
		return cli_fail(c, STRATA_EINVAL,
		                "--max-event '%s' is not a size between 1 and "
		                "64MiB (the largest event readers take); e.g. "
		                "8MiB",
		                me);
	}
	o->codec = cli_args_get(a, "codec");
	const char *lv = cli_args_get(a, "codec-level");
	if (lv != NULL) {
		uint64_t n;
		if (o->codec == NULL) {
			return cli_fail(c, STRATA_EINVAL,
			                "--codec-level goes with --codec");
		}
		if (config_parse_uint(lv, &n) != 0 || n > 99) {
			return cli_fail(c, STRATA_EINVAL,
			                "--codec-level '%s' is not a level "
			                "(zstd 1..19, lz4 0..12, gzip 1..9)",
			                lv);
		}
		o->codec_level = (int)n;
	}
	o->segments = 1;
	const char *sg = cli_args_get(a, "segments");
	if (sg != NULL) {
		uint64_t n;
		if (!cli_args_has(a, "create")) {
			return cli_fail(c, STRATA_EINVAL,
			                "--segments goes with --create");
		}
		if (config_parse_uint(sg, &n) != 0 || n < 1 || n > 4096) {
			return cli_fail(c, STRATA_EINVAL,
			                "--segments '%s' is not a number in "
			                "1..4096",
			                sg);
		}
		o->segments = (uint32_t)n;
	}
	return 0;
}

/* Show the write progress line (terminal only). */
static void write_progress(const struct cli *c, uint64_t events, uint64_t bytes,
                           uint64_t t0)
{
	double s = (double)(cli_now_ms() - t0) / 1000.0;
	fprintf(stderr, "\r%" PRIu64 " events, %.1f MB, %.0f s", events,
	        (double)bytes / 1e6, s);
	(void)c;
}

static int cmd_write(struct cli *c, const struct cli_args *a)
{
	char scope[STRATA_NAME_MAX + 1], stream[STRATA_NAME_MAX + 1];
	char err[STRATA_ERRMSG_SIZE];
	const char *full = a->pos[0];
	struct write_opts o;
	if (cli_split_stream(full, scope, stream, err) != 0) {
		return cli_fail(c, STRATA_EINVAL, "%s", err);
	}
	int ex = write_parse(c, a, &o);
	struct strata_client *cl;
	if (ex == 0) {
		ex = cli_client(c, &cl);
	}
	if (ex == 0 && cli_args_has(a, "create")) {
		ex = write_create(c, cl, scope, stream, full, o.segments);
	}
	if (ex != 0) {
		return ex;
	}
	struct strata_writer_config wc;
	strata_writer_config_default(&wc);
	wc.max_event_bytes = o.max_event;
	wc.retry_timeout_ms = (int)c->timeout_ms;
	wc.codec = o.codec;
	wc.codec_level = o.codec_level;
	struct strata_writer *w = NULL;
	struct strata_txn *txn = NULL;
	int rc;
	if (cli_args_has(a, "transaction")) {
		struct strata_txn_config tc;
		strata_txn_config_default(&tc);
		tc.writer = wc;
		rc = strata_txn_begin(cl, scope, stream, &tc, &txn, err);
	} else {
		rc = strata_writer_new(cl, scope, stream, &wc, &w, err);
	}
	if (rc == STRATA_ENOENT) {
		return cli_fail(c, rc, "%s (or pass --create)", err);
	}
	if (rc != 0) {
		return cli_fail_op(c, rc, full, err);
	}
	if (txn != NULL) {
		/* Its id, for 'txn status' should this process be lost. */
		cli_note(c, "transaction %" PRIu64 " begun on %s",
		         strata_txn_id(txn), full);
	}

	struct write_state st;
	memset(&st, 0, sizeof(st));
	pthread_mutex_init(&st.mu, NULL);
	struct cli_reader rd;
	size_t max_rec = o.max_event + (o.seplen > 0 ? 65536 : 0);
	cli_reader_init(&rd, stdin, o.prefixed, max_rec);
	uint64_t t0 = cli_now_ms(), last = t0;
	uint64_t events = 0, bytes = 0;
	int in_rc = 0, in_ex = 0;
	bool shown = false;
	for (;;) {
		const uint8_t *data;
		size_t len;
		in_rc = cli_reader_next(&rd, &data, &len, err);
		if (in_rc != 0) {
			in_ex = cli_fail(c, in_rc, "stdin: %s%s", err,
			                 in_rc == STRATA_ETOOBIG
			                         ? " (raise --max-event up to "
			                           "the stores' "
			                           "limits.max_event)"
			                         : "");
			break;
		}
		if (data == NULL) {
			break;
		}
		if (!o.prefixed && len == 0) {
			continue; /* empty lines carry no event */
		}
		const void *key = o.key;
		size_t keylen = o.keylen;
		if (o.seplen > 0) {
			const uint8_t *p = memmem(data, len, o.sep, o.seplen);
			if (p != NULL) {
				key = data;
				keylen = (size_t)(p - data);
				len -= keylen + o.seplen;
				data = p + o.seplen;
			} else {
				key = NULL;
				keylen = 0;
			}
		}
		rc = txn != NULL
		             ? strata_txn_write(txn, key, keylen, data, len,
		                                err)
		             : strata_writer_write(w, key, keylen, data, len,
		                                   write_done, &st, err);
		if (rc != 0) {
			/* Appends are asynchronous: a refusal of an earlier
			 * record by the stores surfaces at a later write. */
			pthread_mutex_lock(&st.mu);
			bool earlier = st.first_code != 0;
			pthread_mutex_unlock(&st.mu);
			in_rc = rc;
			in_ex = cli_fail(
			        c, rc, "%s %" PRIu64 ": %s%s",
			        earlier ? "stopped before record" : "record",
			        rd.record, err,
			        rc != STRATA_ETOOBIG ? ""
			        : earlier            ? TOOBIG_AT_STORE
			                  : " (raise --max-event up to the "
			                    "stores' limits.max_event)");
			break;
		}
		events++;
		bytes += len;
		if (c->tty && !c->quiet) {
			uint64_t now = cli_now_ms();
			if (now - last >= 1000) {
				last = now;
				write_progress(c, events, bytes, t0);
				shown = true;
			}
		}
	}
	cli_reader_close(&rd);
	if (shown) {
		fputs("\r\033[K", stderr);
	}
	char cerr[STRATA_ERRMSG_SIZE] = "";
	int close_rc;
	uint64_t stored = 0; /* frame bytes sent (plain writer only) */
	uint64_t txn_id = 0;
	bool commit_unknown = false; /* neither committed nor aborted */
	bool commit_partial = false; /* committed by id without all events */
	if (txn != NULL) {
		/* All or nothing: a bad record aborts what came before it. */
		uint64_t id = strata_txn_id(txn);
		txn_id = id;
		cli_progress_begin(c, in_ex != 0
		                              ? "aborting the transaction"
		                              : "committing the transaction");
		close_rc = in_ex != 0 ? strata_txn_abort(txn, cerr)
		                      : strata_txn_commit(txn, cerr);
		cli_progress_end(c);
		strata_txn_free(txn);
		if (in_ex != 0) {
			cli_note(c,
			         "transaction %" PRIu64 " aborted: none of its "
			         "%" PRIu64 " events were written",
			         id, events);
			return in_ex;
		}
		if (close_rc != 0 && close_rc != STRATA_ECONFLICT &&
		    close_rc != STRATA_ENOTSUP) {
			/* Its reply may have been lost after the commit was
			 * recorded: settle it, committed or aborted. */
			char aerr[STRATA_ERRMSG_SIZE];
			int arc = strata_txn_abort_id(cl, scope, stream, id,
			                              aerr);
			if (arc == STRATA_ECONFLICT) {
				close_rc = 0; /* it was committed */
			} else if (arc != 0) {
				commit_unknown = true;
			}
		} else if (close_rc == STRATA_ECONFLICT) {
			/* Aborted (its lease ran out), or committed by
			 * someone else before all its events were in. */
			enum strata_txn_state ts = STRATA_TXN_UNKNOWN;
			char serr[STRATA_ERRMSG_SIZE];
			commit_partial =
			        strata_txn_status(cl, scope, stream, id, &ts,
			                          serr) == 0 &&
			        ts == STRATA_TXN_COMMITTED;
		}
		pthread_mutex_lock(&st.mu);
		if (close_rc == 0) {
			st.acked = events;
			cli_note(c, "transaction %" PRIu64 " committed", id);
		} else {
			st.failed = events;
			st.first_code = close_rc;
			errmsg_set(st.first_err,
			           "transaction %" PRIu64 ": %s%s", id, cerr,
			           commit_unknown || commit_partial
			                   ? ""
			                   : " (it is aborted: write them "
			                     "again)");
		}
		pthread_mutex_unlock(&st.mu);
	} else {
		struct strata_writer_stats ws;
		strata_writer_get_stats(w, &ws);
		stored = ws.stored_bytes;
		cli_progress_begin(c, "waiting for acknowledgements");
		close_rc = strata_writer_close(w, cerr);
		cli_progress_end(c);
	}
	double secs = (double)(cli_now_ms() - t0) / 1000.0;
	pthread_mutex_lock(&st.mu);
	uint64_t acked = st.acked, failed = st.failed;
	int first = st.first_code;
	char first_err[STRATA_ERRMSG_SIZE];
	snprintf(first_err, sizeof(first_err), "%s", st.first_err);
	pthread_mutex_unlock(&st.mu);
	pthread_mutex_destroy(&st.mu);

	if (c->json) {
		printf("{\"stream\":");
		cli_json_string(stdout, full, strlen(full));
		printf(",\"events\":%" PRIu64 ",\"bytes\":%" PRIu64
		       ",\"failed\":%" PRIu64 ",\"seconds\":%.3f",
		       acked, bytes, failed, secs);
		if (txn_id != 0) {
			printf(",\"transaction\":%" PRIu64, txn_id);
		}
		if (commit_unknown || commit_partial) {
			printf(",\"commit\":\"%s\"",
			       commit_partial ? "partial" : "unknown");
		}
		if (o.codec != NULL && stored > 0) {
			printf(",\"codec\":");
			cli_json_string(stdout, o.codec, strlen(o.codec));
			printf(",\"stored_bytes\":%" PRIu64, stored);
		}
		printf("}\n");
	}
	if (!c->quiet) {
		/* bytes: what was read from stdin; all of it when every
		 * event was written. */
		fprintf(stderr,
		        "wrote %" PRIu64 " event%s (%" PRIu64 " bytes%s) to %s "
		        "in %.2f s",
		        acked, acked == 1 ? "" : "s", bytes,
		        failed > 0 || acked < events ? " read" : "", full,
		        secs);
		if (o.codec != NULL && stored > 0 && failed == 0) {
			fprintf(stderr, ", stored as %" PRIu64 " bytes with %s",
			        stored, o.codec);
		}
		if (secs >= CLI_RATE_MIN_SECS && acked > 0) {
			fprintf(stderr, ", %.0f events/s",
			        (double)acked / secs);
		}
		fputc('\n', stderr);
	}
	if (commit_unknown) {
		return cli_fail(
		        c, close_rc,
		        "transaction %" PRIu64 " of %s: whether its "
		        "commit of %" PRIu64 " events went through is "
		        "unknown (%s); check with 'stratactl txn status "
		        "%s %" PRIu64 "' before writing them again",
		        txn_id, full, events, cerr, full, txn_id);
	}
	if (commit_partial) {
		return cli_fail(
		        c, close_rc,
		        "transaction %" PRIu64 " of %s was committed by "
		        "another client ('stratactl txn commit') before "
		        "all of its %" PRIu64 " events were written: "
		        "only some of them are in the stream",
		        txn_id, full, events);
	}
	if (failed > 0 || (close_rc != 0 && first == 0)) {
		int code = first != 0 ? first : close_rc;
		const char *msg = first != 0 ? first_err : cerr;
		/* Refused for what it is, an event was not stored. Any other
		 * failure may have come while its append was in flight
		 * (a store killed, an election): it may be in the stream. A
		 * transaction's events are all or nothing. */
		bool refused =
		        code == STRATA_ETOOBIG || code == STRATA_EINVAL ||
		        code == STRATA_EBADNAME || code == STRATA_ECONFIG ||
		        code == STRATA_EPERM || code == STRATA_ENOENT;
		bool maybe = txn_id == 0 && !refused;
		int fex = cli_fail(
		        c, code,
		        "%" PRIu64 " of %" PRIu64 " events were not %s: %s%s",
		        failed > 0 ? failed : events - acked, events,
		        maybe ? "acknowledged (some may be in the stream: "
		                "read its tail before sending them again)"
		              : "written",
		        msg[0] != '\0' ? msg : strata_strerror(code),
		        code == STRATA_ETOOBIG && in_ex == 0 ? TOOBIG_AT_STORE
		                                             : "");
		return in_ex != 0 ? in_ex : fex;
	}
	return in_ex;
}

/* ---------------------------------------------------------------- read */

static const struct cli_opt read_opts[] = {
        {"from", true, "head|tail|CUT", "where to start (head)"},
        {"to", true, "tail|CUT", "where to stop (tail: the end as it is now)"},
        {"follow", false, NULL,
         "no end: keep printing new events until interrupted"},
        {"length-prefixed", false, NULL,
         "write 4-byte little-endian length + bytes, not lines"},
        {"max-events", true, "N", "stop after N events"},
        {"group", true, "[SCOPE/]GROUP",
         "read as a member of this reader group (see 'group create')"},
        {"reader", true, "NAME",
         "with --group: reader name (stratactl-<host>-<pid>)"},
};

#define READ_STOP 1000   /* callback: --max-events reached */
#define READ_OUTERR 1001 /* callback: stdout failed */

struct read_state {
	const struct cli *c;
	bool prefixed;
	uint64_t max;    /* 0 = no limit */
	uint64_t events; /* printed */
	uint64_t bytes;
	int out_errno;       /* stdout error, 0 if none */
	bool skip_truncated; /* reading from the head: follow it */
	uint64_t skipped;    /* bytes truncated before they were read */
	/* --follow: how far each segment was read, and whether this round
	 * (started over at the head) skips what was printed already. */
	struct read_mark *marks;
	size_t n_marks, cap_marks;
	bool dedupe;
};

struct read_mark {
	uint64_t segment_id;
	uint64_t end; /* read up to here */
};

static struct read_mark *mark_find(const struct read_state *st, uint64_t id)
{
	for (size_t i = 0; i < st->n_marks; i++) {
		if (st->marks[i].segment_id == id) {
			return &st->marks[i];
		}
	}
	return NULL;
}

/* Note that ranges rs were read to their ends; false when out of memory
 * (then a later start over may print some events again). */
static bool marks_note(struct read_state *st,
                       const struct strata_segment_ranges *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		const struct strata_segment_range *r = &rs->ranges[i];
		struct read_mark *m = mark_find(st, r->segment_id);
		if (m == NULL) {
			if (st->n_marks == st->cap_marks) {
				size_t cap =
				        st->cap_marks ? st->cap_marks * 2 : 16;
				void *p = strata_realloc(
				        st->marks, cap * sizeof(*st->marks));
				if (p == NULL) {
					return false;
				}
				st->marks = p;
				st->cap_marks = cap;
			}
			m = &st->marks[st->n_marks++];
			m->segment_id = r->segment_id;
			m->end = 0;
		}
		if (r->end_offset > m->end) {
			m->end = r->end_offset;
		}
	}
	return true;
}

bool cli_print_event(const struct cli *c, bool prefixed, const char *scope,
                     const char *stream, uint64_t segment_id, uint64_t offset,
                     const uint8_t *data, size_t len)
{
	bool ok;
	errno = 0;
	if (c->json) {
		char id[32];
		cli_format_segment_id(segment_id, id, sizeof(id));
		fputc('{', stdout);
		if (scope != NULL && stream != NULL) {
			char full[2 * 256 + 2];
			snprintf(full, sizeof(full), "%s/%s", scope, stream);
			fputs("\"stream\":", stdout);
			cli_json_string(stdout, full, strlen(full));
			fputc(',', stdout);
		}
		printf("\"segment\":\"%s\",\"offset\":%" PRIu64 ",\"data\":",
		       id, offset);
		cli_json_string(stdout, data, len);
		ok = fputs("}\n", stdout) >= 0;
	} else if (prefixed) {
		uint8_t h[4] = {(uint8_t)len, (uint8_t)(len >> 8),
		                (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
		ok = fwrite(h, 1, 4, stdout) == 4 &&
		     fwrite(data, 1, len, stdout) == len;
	} else {
		ok = fwrite(data, 1, len, stdout) == len &&
		     putchar('\n') != EOF;
	}
	return ok && !ferror(stdout);
}

static int read_event(void *arg, const struct strata_segment_range *r,
                      const uint8_t *data, size_t len, uint64_t offset)
{
	struct read_state *st = arg;
	if (st->max != 0 && st->events >= st->max) {
		return READ_STOP;
	}
	if (st->dedupe) {
		const struct read_mark *m = mark_find(st, r->segment_id);
		if (m != NULL && offset < m->end) {
			return 0; /* printed by an earlier round */
		}
	}
	if (!cli_print_event(st->c, st->prefixed, NULL, NULL, r->segment_id,
	                     offset, data, len)) {
		st->out_errno = errno != 0 ? errno : EIO;
		return READ_OUTERR;
	}
	st->events++;
	st->bytes += len;
	if (st->max != 0 && st->events >= st->max) {
		return READ_STOP;
	}
	return 0;
}

/* Retention (or a truncate) dropped part of a segment before we read it.
 * Reading from the head follows the head, so that is not an error, but
 * it is said; bytes, not events: what was dropped is not read. */
static int read_truncated(void *arg, const struct strata_segment_range *r,
                          uint64_t from, uint64_t to)
{
	struct read_state *st = arg;
	st->skipped += to - from;
	fflush(stdout);
	fprintf(stderr,
	        "stratactl read: %s: bytes %" PRIu64 "..%" PRIu64
	        " were truncated before they were read; going on from "
	        "%" PRIu64 "\n",
	        r->segment, from, to, to);
	return 0;
}

/* Read every event between from and to (NULL = tail now); returns the
 * batch result (0, READ_STOP, READ_OUTERR or an error with err). */
static int read_between(struct strata_client *cl, const char *scope,
                        const char *stream,
                        const struct strata_stream_cut *from,
                        const struct strata_stream_cut *to,
                        struct read_state *st, char *err)
{
	struct strata_segment_ranges *rs = NULL;
	int rc =
	        strata_batch_list_ranges(cl, scope, stream, from, to, &rs, err);
	if (rc != 0) {
		return rc;
	}
	struct strata_batch_read_opts o = {
	        .parallelism = 1,
	        .on_truncated = st->skip_truncated ? read_truncated : NULL};
	rc = strata_batch_read_with(cl, rs, &o, read_event, st, err);
	if (rc == 0 && st->skip_truncated) {
		(void)marks_note(st, rs);
	}
	strata_segment_ranges_free(rs);
	return rc;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
	                      .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int cmd_read(struct cli *c, const struct cli_args *a)
{
	char scope[STRATA_NAME_MAX + 1], stream[STRATA_NAME_MAX + 1];
	char err[STRATA_ERRMSG_SIZE];
	const char *full = a->n_pos > 0 ? a->pos[0] : NULL;
	bool group = cli_args_has(a, "group");
	if (full == NULL && !group) {
		return cli_fail(c, STRATA_EINVAL,
		                "give SCOPE/STREAM (or --group SCOPE/GROUP); "
		                "run 'stratactl read --help'");
	}
	if (full != NULL && cli_split_stream(full, scope, stream, err) != 0) {
		return cli_fail(c, STRATA_EINVAL, "%s", err);
	}
	bool follow = cli_args_has(a, "follow");
	const char *from_s = cli_args_get(a, "from");
	const char *to_s = cli_args_get(a, "to");
	if (follow && to_s != NULL) {
		return cli_fail(
		        c, STRATA_EINVAL,
		        "--follow reads without an end: leave out --to");
	}
	if (c->json && cli_args_has(a, "length-prefixed")) {
		return cli_fail(c, STRATA_EINVAL,
		                "--json and --length-prefixed exclude each "
		                "other");
	}
	struct read_state st;
	memset(&st, 0, sizeof(st));
	st.c = c;
	st.prefixed = cli_args_has(a, "length-prefixed");
	const char *mx = cli_args_get(a, "max-events");
	if (mx != NULL &&
	    (config_parse_uint(mx, &st.max) != 0 || st.max == 0)) {
		return cli_fail(c, STRATA_EINVAL,
		                "--max-events '%s' is not a number >= 1", mx);
	}
	if (cli_args_has(a, "reader") && !group) {
		return cli_fail(c, STRATA_EINVAL, "--reader goes with --group");
	}
	if (group) {
		if (from_s != NULL || to_s != NULL) {
			return cli_fail(
			        c, STRATA_EINVAL,
			        "--group reads from where the group is: "
			        "leave out --from and --to (set them with "
			        "'group create')");
		}
#ifdef STRATA_CLI_GROUPS
		return cli_read_group(c, a, full != NULL ? scope : NULL, follow,
		                      st.prefixed, st.max);
#else
		return cli_fail(c, STRATA_ENOTSUP,
		                "--group: this stratactl was built without "
		                "reader groups");
#endif
	}
	struct strata_client *cl;
	int ex = cli_client(c, &cl);
	if (ex != 0) {
		return ex;
	}
	/* The stream must exist: a clear message before anything else. */
	struct strata_stream_info *info = NULL;
	int rc = strata_stream_get_info(cl, scope, stream, &info, err);
	if (rc != 0) {
		return cli_fail_op(c, rc, full, err);
	}
	strata_stream_info_free(info);

	struct strata_stream_cut from = STRATA_STREAM_CUT_INIT;
	struct strata_stream_cut to = STRATA_STREAM_CUT_INIT;
	ex = cli_cut_resolve(c, cl, scope, stream, "from",
	                     from_s != NULL ? from_s : "head", true, &from);
	if (ex == 0 && to_s != NULL && strcmp(to_s, "tail") != 0) {
		ex = cli_cut_resolve(c, cl, scope, stream, "to", to_s, false,
		                     &to);
	}
	if (ex != 0) {
		strata_stream_cut_clear(&from);
		return ex;
	}
	/* From the head, the head is what is read: when retention moves it
	 * during the read, go on from where it is. From a cut the user
	 * named, data that is gone is an error. */
	st.skip_truncated = from_s == NULL || strcmp(from_s, "head") == 0;
	uint64_t t0 = cli_now_ms();
	if (!follow) {
		rc = read_between(cl, scope, stream, &from,
		                  to.n > 0 ? &to : NULL, &st, err);
	} else {
		/* Poll: read up to the tail as it is now, then from there;
		 * a sealed stream ends once its tail is read. */
		for (;;) {
			struct strata_stream_info *in = NULL;
			rc = strata_stream_get_info(cl, scope, stream, &in,
			                            err);
			if (rc != 0) {
				break;
			}
			struct strata_stream_cut now = STRATA_STREAM_CUT_INIT;
			bool sealed = in->state == STRATA_STREAM_SEALED;
			rc = strata_stream_cut_copy(&now, &in->tail);
			strata_stream_info_free(in);
			if (rc != 0) {
				break;
			}
			uint64_t before = st.events;
			rc = read_between(cl, scope, stream, &from, &now, &st,
			                  err);
			if (rc == STRATA_ETRUNCATED && st.skip_truncated &&
			    from.n > 0) {
				/* Truncation deleted a segment of where the
				 * last round ended: start over at the head,
				 * skipping what was printed. */
				struct strata_stream_cut head =
				        STRATA_STREAM_CUT_INIT;
				snprintf(head.scope, sizeof(head.scope), "%s",
				         scope);
				snprintf(head.stream, sizeof(head.stream), "%s",
				         stream);
				st.dedupe = true;
				rc = read_between(cl, scope, stream, &head,
				                  &now, &st, err);
				st.dedupe = false;
			}
			strata_stream_cut_clear(&from);
			from = now;
			if (rc != 0 || sealed) {
				break;
			}
			fflush(stdout);
			if (st.events == before) {
				sleep_ms(200);
			}
		}
	}
	strata_stream_cut_clear(&from);
	strata_stream_cut_clear(&to);
	strata_free(st.marks);
	if (ex != 0) {
		return ex;
	}
	double secs = (double)(cli_now_ms() - t0) / 1000.0;
	if (rc == READ_OUTERR) {
		if (st.out_errno == EPIPE) {
			return 0; /* the reader of our stdout went away */
		}
		return cli_fail(c, STRATA_EIO, "writing to stdout: %s",
		                strerror(st.out_errno));
	}
	if (rc != 0 && rc != READ_STOP) {
		return cli_fail_op(c, rc, full, err);
	}
	if (!c->quiet && !c->json) {
		fflush(stdout);
		char skipped[96] = "";
		if (st.skipped > 0) {
			snprintf(skipped, sizeof(skipped),
			         "; %" PRIu64 " bytes truncated before they "
			         "were read",
			         st.skipped);
		}
		fprintf(stderr,
		        "read %" PRIu64 " event%s (%" PRIu64 " bytes) from %s "
		        "in %.2f s%s\n",
		        st.events, st.events == 1 ? "" : "s", st.bytes, full,
		        secs, skipped);
	}
	return 0;
}

/* ------------------------------------------------------------ txn ... */

static const char *txn_state_name(enum strata_txn_state st)
{
	switch (st) {
	case STRATA_TXN_OPEN:
		return "OPEN";
	case STRATA_TXN_COMMITTING:
		return "COMMITTING";
	case STRATA_TXN_COMMITTED:
		return "COMMITTED";
	case STRATA_TXN_ABORTING:
		return "ABORTING";
	case STRATA_TXN_ABORTED:
		return "ABORTED";
	default:
		return "UNKNOWN";
	}
}

/* SCOPE/STREAM and ID of a txn command; 0 or the exit code. */
static int txn_args(struct cli *c, const struct cli_args *a, char *scope,
                    char *stream, uint64_t *id, struct strata_client **cl)
{
	char err[STRATA_ERRMSG_SIZE];
	if (cli_split_stream(a->pos[0], scope, stream, err) != 0) {
		return cli_fail(c, STRATA_EINVAL, "%s", err);
	}
	if (config_parse_uint(a->pos[1], id) != 0 || *id == 0) {
		return cli_fail(c, STRATA_EINVAL,
		                "'%s' is not a transaction id (a number >= 1, "
		                "as 'write --transaction' and libstrata's "
		                "strata_txn_id give it)",
		                a->pos[1]);
	}
	return cli_client(c, cl);
}

enum txn_op { TXN_STATUS, TXN_COMMIT, TXN_ABORT };

static int txn_run(struct cli *c, const struct cli_args *a, enum txn_op op)
{
	char scope[STRATA_NAME_MAX + 1], stream[STRATA_NAME_MAX + 1];
	char err[STRATA_ERRMSG_SIZE];
	uint64_t id;
	struct strata_client *cl;
	int ex = txn_args(c, a, scope, stream, &id, &cl);
	if (ex != 0) {
		return ex;
	}
	int rc;
	if (op == TXN_STATUS) {
		enum strata_txn_state st;
		/* UNKNOWN must not hide a stream that is not there. */
		struct strata_stream_info *info = NULL;
		rc = strata_stream_get_info(cl, scope, stream, &info, err);
		strata_stream_info_free(info);
		if (rc == 0) {
			rc = strata_txn_status(cl, scope, stream, id, &st, err);
		}
		if (rc == 0 && c->json) {
			printf("{\"id\":%" PRIu64 ",\"state\":\"%s\"}\n", id,
			       txn_state_name(st));
		} else if (rc == 0) {
			printf("%s%s\n", txn_state_name(st),
			       st == STRATA_TXN_UNKNOWN
			               ? " (never begun, or completed over an "
			                 "hour ago)"
			               : "");
		}
	} else {
		bool commit = op == TXN_COMMIT;
		cli_progress_begin(c, commit ? "committing" : "aborting");
		rc = commit ? strata_txn_commit_id(cl, scope, stream, id, err)
		            : strata_txn_abort_id(cl, scope, stream, id, err);
		cli_progress_end(c);
		if (rc == 0 && c->json) {
			printf("{\"id\":%" PRIu64 ",\"state\":\"%s\"}\n", id,
			       commit ? "COMMITTED" : "ABORTED");
		} else if (rc == 0) {
			printf("transaction %" PRIu64 " of %s %s\n", id,
			       a->pos[0], commit ? "committed" : "aborted");
		}
	}
	return rc != 0 ? cli_fail_op(c, rc, a->pos[0], err) : 0;
}

static int cmd_txn_status(struct cli *c, const struct cli_args *a)
{
	return txn_run(c, a, TXN_STATUS);
}

static int cmd_txn_commit(struct cli *c, const struct cli_args *a)
{
	return txn_run(c, a, TXN_COMMIT);
}

static int cmd_txn_abort(struct cli *c, const struct cli_args *a)
{
	return txn_run(c, a, TXN_ABORT);
}

/* ---------------------------------------------------------------- table */

#define OPTS(x) x, sizeof(x) / sizeof(*(x))

const struct cli_cmd cli_io_cmds[] = {
        {NULL, "write", "SCOPE/STREAM",
         "Write events read from stdin, one per line",
         "Each line of stdin is one event (the newline removed; empty "
         "lines are\nskipped); with --length-prefixed, stdin holds "
         "records of a 4-byte\nlittle-endian length and that many "
         "bytes. Events with the same routing\nkey keep their order. "
         "Exit code 0 means every event is durable\n(acknowledged after "
         "the segment store's Raft commit). A summary (events,\nbytes, "
         "seconds) goes to stderr, progress too when it is a "
         "terminal.\n",
         OPTS(write_opts), 1, 1, cmd_write},
        {NULL, "read", "SCOPE/STREAM", "Print events to stdout, one per line",
         "Reads every event between two positions, predecessors before "
         "successors,\nso events of one routing key come in order. "
         "--from and --to take head,\ntail or a stream cut "
         "(SCOPE/STREAM:NUMBER.EPOCH=OFFSET,..., the prefix may\nbe left "
         "out) as 'stream describe' prints it. --json prints one JSON\n"
         "object per event: {\"segment\",\"offset\",\"data\"}, with "
         "\"stream\" first\nfor --group. With "
         "--group it reads\nas one reader of a reader group, from where "
         "the group is, and stops after\n2 s without an event (unless "
         "--follow); SCOPE/STREAM may be left out then.\n",
         OPTS(read_opts), 0, 1, cmd_read},
        {"txn", "status", "SCOPE/STREAM ID",
         "Show a transaction's state (OPEN, COMMITTED, ...)",
         "UNKNOWN: never begun, or completed over an hour ago.\n", NULL, 0, 2,
         2, cmd_txn_status},
        {"txn", "commit", "SCOPE/STREAM ID",
         "Commit a transaction by its id (two-phase commit recovery)",
         "What a pipeline restoring from a checkpoint does with a "
         "transaction it\nflushed but did not commit: idempotent (exit 0 "
         "when already committed);\nwaits until its events are in the "
         "stream (a stream that scaled since it\nbegan is fine: the "
         "controller rolls it into new epochs). Exit 1 when it\nwas "
         "aborted (its lease ran out).\n",
         NULL, 0, 2, 2, cmd_txn_commit},
        {"txn", "abort", "SCOPE/STREAM ID",
         "Abort a transaction by its id: none of its events is ever read",
         "Idempotent; exit 1 when it was committed.\n", NULL, 0, 2, 2,
         cmd_txn_abort},
        {NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, NULL},
};
