/* Integration helper: drives reader groups of libstrata (the shared
 * library, public API only) against real strata-controller and
 * strata-segmentstore processes for rg_test.py. One reader per process, so
 * that the test can kill -9 it. Exit 0 = ok. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "strata/readergroup.h"
#include "strata/txn.h"
#include "strata/writer.h"

static struct strata_client *cli;

#define CHECK(call, what)                                           \
	do {                                                        \
		int check_rc_ = (call);                             \
		if (check_rc_ != 0) {                               \
			fprintf(stderr, "%s: %s: %s\n", what,       \
			        strata_error_name(check_rc_), err); \
			exit(1);                                    \
		}                                                   \
	} while (0)

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

/* Create group reading scope/stream from its head; refresh_ms as given;
 * retention "auto" = AUTO_CHECKPOINT, NULL = none; automatic checkpoints
 * every cp_ms (0 = off). */
static int cmd_group(const char *scope, const char *stream, const char *group,
                     unsigned refresh_ms, const char *retention, unsigned cp_ms)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_stream_cut head = STRATA_STREAM_CUT_INIT;
	snprintf(head.scope, sizeof(head.scope), "%s", scope);
	snprintf(head.stream, sizeof(head.stream), "%s", stream);
	struct strata_reader_group_stream s = {&head, NULL};
	struct strata_reader_group_config cfg;
	strata_reader_group_config_default(&cfg);
	cfg.streams = &s;
	cfg.n_streams = 1;
	cfg.group_refresh_ms = refresh_ms;
	if (retention != NULL && strcmp(retention, "auto") == 0) {
		cfg.retention = STRATA_RG_RETENTION_AUTO_CHECKPOINT;
	}
	cfg.checkpoint_interval_ms = cp_ms;
	CHECK(strata_reader_group_create(cli, scope, group, &cfg, err),
	      "create group");
	int rc = strata_reader_group_create(cli, scope, group, &cfg, err);
	if (rc != STRATA_EEXIST) {
		fprintf(stderr, "create again: got %s, want EEXIST: %s\n",
		        strata_error_name(rc), err);
		return 1;
	}
	printf("created group %s/%s over %s (again: %s)\n", scope, group,
	       stream, err);
	return 0;
}

/*
 * Join group as reader and print what it reads, line-buffered:
 *   ev <monotonic ns> <segment id> <offset> <payload>
 *   cp <monotonic ns> <checkpoint name>
 * until the file stop exists (then leave the group cleanly), the group
 * ends, or limit_s pass. delay_us slows reading down (per event).
 */
static int cmd_read(const char *scope, const char *group, const char *reader,
                    const char *stop, long delay_us, unsigned limit_s)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_reader *r;
	setvbuf(stdout, NULL, _IOLBF, 0);
	CHECK(strata_reader_new(cli, scope, group, reader, &r, err),
	      "reader new");
	printf("joined %s\n", reader);
	uint64_t end = now_ns() + (uint64_t)limit_s * 1000000000u;
	unsigned long n = 0;
	int rc = 0;
	while (access(stop, F_OK) != 0) {
		if (now_ns() > end) {
			fprintf(stderr, "reader %s: still running after %us\n",
			        reader, limit_s);
			rc = 1;
			break;
		}
		struct strata_read ev;
		CHECK(strata_reader_next(r, 200, &ev, err), "reader next");
		if (ev.kind == STRATA_READ_EVENT) {
			printf("ev %llu %llu %llu %.*s\n",
			       (unsigned long long)now_ns(),
			       (unsigned long long)ev.segment_id,
			       (unsigned long long)ev.offset, (int)ev.len,
			       (const char *)ev.data);
			n++;
			if (delay_us > 0) {
				sleep_us(delay_us);
			}
		} else if (ev.kind == STRATA_READ_CHECKPOINT) {
			printf("cp %llu %s\n", (unsigned long long)now_ns(),
			       ev.checkpoint);
		} else if (ev.kind == STRATA_READ_END) {
			printf("end\n");
			break;
		}
	}
	CHECK(strata_reader_close(r, err), "reader close");
	printf("closed %s after %lu events\n", reader, n);
	return rc;
}

/* Take checkpoint name (waiting up to timeout_ms) and print its cuts. */
static int cmd_checkpoint(const char *scope, const char *group,
                          const char *name, int timeout_ms)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_reader_group *rg;
	struct strata_checkpoint *cp;
	CHECK(strata_reader_group_open(cli, scope, group, &rg, err),
	      "open group");
	CHECK(strata_reader_group_initiate_checkpoint(rg, name, timeout_ms, &cp,
	                                              err),
	      "checkpoint");
	for (size_t i = 0; i < cp->n; i++) {
		char text[65536];
		strata_stream_cut_format(&cp->cuts[i], text, sizeof(text));
		printf("cut %s\n", text);
	}
	struct strata_checkpoint *again;
	int rc = strata_reader_group_initiate_checkpoint(rg, name, timeout_ms,
	                                                 &again, err);
	if (rc != STRATA_EEXIST) {
		fprintf(stderr, "checkpoint again: got %s, want EEXIST\n",
		        strata_error_name(rc));
		return 1;
	}
	/* The completed checkpoint is there to look up, with the same
	 * cuts; an unknown name is ENOENT. */
	CHECK(strata_reader_group_get_checkpoint(rg, name, &again, err),
	      "get checkpoint");
	for (size_t i = 0; i < cp->n; i++) {
		char a[65536], b[65536];
		strata_stream_cut_format(&cp->cuts[i], a, sizeof(a));
		strata_stream_cut_format(&again->cuts[i], b, sizeof(b));
		if (again->n != cp->n || strcmp(a, b) != 0) {
			fprintf(stderr, "get checkpoint: %s, want %s\n", b, a);
			return 1;
		}
	}
	strata_checkpoint_free(again);
	rc = strata_reader_group_get_checkpoint(rg, "no-such-cp", &again, err);
	if (rc != STRATA_ENOENT) {
		fprintf(stderr, "get unknown checkpoint: got %s, want ENOENT\n",
		        strata_error_name(rc));
		return 1;
	}
	strata_checkpoint_free(cp);
	strata_reader_group_close(rg);
	return 0;
}

/* Start checkpoint name without waiting: prints "pending" (readers have
 * yet to pass it) or "complete". */
static int cmd_cp_start(const char *scope, const char *group, const char *name)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_reader_group *rg;
	struct strata_checkpoint *cp = NULL;
	CHECK(strata_reader_group_open(cli, scope, group, &rg, err),
	      "open group");
	int rc = strata_reader_group_initiate_checkpoint(rg, name, 0, &cp, err);
	strata_reader_group_close(rg);
	if (rc != 0 && rc != STRATA_ETIMEDOUT) {
		fprintf(stderr, "checkpoint: %s: %s\n", strata_error_name(rc),
		        err);
		return 1;
	}
	printf("%s\n", rc == 0 ? "complete" : "pending");
	strata_checkpoint_free(cp);
	return 0;
}

/* Reset group to its stored checkpoint name. */
static int cmd_reset(const char *scope, const char *group, const char *name)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_reader_group *rg;
	struct strata_checkpoint cp = {0};
	snprintf(cp.name, sizeof(cp.name), "%s", name);
	CHECK(strata_reader_group_open(cli, scope, group, &rg, err),
	      "open group");
	CHECK(strata_reader_group_reset(rg, &cp, err), "reset");
	struct strata_names *on;
	CHECK(strata_reader_group_online_readers(rg, &on, err), "readers");
	if (on->n != 0) {
		fprintf(stderr, "%zu readers online after the reset\n", on->n);
		return 1;
	}
	strata_names_free(on);
	strata_reader_group_close(rg);
	printf("reset %s/%s to %s\n", scope, group, name);
	return 0;
}

/* Declare reader offline, then check that it is gone. */
static int cmd_offline(const char *scope, const char *group, const char *reader)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_reader_group *rg;
	CHECK(strata_reader_group_open(cli, scope, group, &rg, err),
	      "open group");
	CHECK(strata_reader_group_reader_offline(rg, reader, err), "offline");
	struct strata_names *on;
	CHECK(strata_reader_group_online_readers(rg, &on, err), "readers");
	for (size_t i = 0; i < on->n; i++) {
		if (strcmp(on->names[i], reader) == 0) {
			fprintf(stderr, "%s still online\n", reader);
			return 1;
		}
	}
	printf("%s offline; %zu readers online\n", reader, on->n);
	strata_names_free(on);
	strata_reader_group_close(rg);
	return 0;
}

/* Delete group; check bad names are refused up front. */
static int cmd_delete(const char *scope, const char *group)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	CHECK(strata_reader_group_delete(cli, scope, group, err),
	      "delete group");
	char longname[300];
	memset(longname, 'g', 253);
	longname[253] = '\0';
	struct strata_reader *r;
	int rc = strata_reader_new(cli, scope, longname, "x", &r, err);
	if (rc != STRATA_EBADNAME) {
		fprintf(stderr, "253-char group: got %s\n",
		        strata_error_name(rc));
		return 1;
	}
	printf("ok 253-char group -> %s: %s\n", strata_error_name(rc), err);
	rc = strata_reader_new(cli, scope, group, "x", &r, err);
	if (rc != STRATA_ENOENT) {
		fprintf(stderr, "deleted group: got %s\n",
		        strata_error_name(rc));
		return 1;
	}
	printf("ok deleted group -> %s: %s\n", strata_error_name(rc), err);
	return 0;
}

/* Manual scale: "split3" replaces the only segment by three; "merge"
 * replaces the two lowest current segments by one. */
static int cmd_scale(const char *scope, const char *stream, const char *how)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_segment_list *cur;
	CHECK(strata_stream_current_segments(cli, scope, stream, &cur, err),
	      "segments");
	uint64_t ids[2];
	double bounds[4];
	size_t n_ids, n_bounds;
	if (strcmp(how, "split3") == 0 && cur->n == 1) {
		ids[0] = cur->segments[0].id;
		n_ids = 1;
		bounds[0] = 0.0;
		bounds[1] = 1.0 / 3;
		bounds[2] = 2.0 / 3;
		bounds[3] = 1.0;
		n_bounds = 4;
	} else if (strcmp(how, "merge") == 0 && cur->n >= 2) {
		ids[0] = cur->segments[0].id;
		ids[1] = cur->segments[1].id;
		n_ids = 2;
		bounds[0] = cur->segments[0].low;
		bounds[1] = cur->segments[1].high;
		n_bounds = 2;
	} else {
		fprintf(stderr, "scale %s: %zu current segments\n", how,
		        cur->n);
		return 1;
	}
	strata_segment_list_free(cur);
	CHECK(strata_stream_scale(cli, scope, stream, ids, n_ids, bounds,
	                          n_bounds, err),
	      "scale");
	CHECK(strata_stream_current_segments(cli, scope, stream, &cur, err),
	      "segments");
	printf("scaled (%s): %zu segments now\n", how, cur->n);
	strata_segment_list_free(cur);
	return 0;
}

/*
 * Writer `name` first writes event "<name>W:0:0" (time 0), notes time 0,
 * prints "ready" and waits until the file go exists (so that every writer
 * counts before any writes more: a writer's events before its first note
 * are not covered). Then it writes n events to scope/stream: event i has key
 * name<i % 4>, payload "name<i % 4>:<i / 4>:<time>" with time = 10 i; after
 * every note_every events it notes time 10 (i + 1) (every later event's
 * time is >= it), prints "noted T" and sleeps 50 ms. Then it checks that a
 * time going back is refused, prints "holding", waits hold_ms without
 * noting (the controller's writer timeout may drop its mark meanwhile)
 * and closes.
 */
static int cmd_timed_write(const char *scope, const char *stream,
                           const char *name, long n, long note_every,
                           long hold_ms, const char *go)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_writer *w;
	struct strata_writer_config cfg;
	setvbuf(stdout, NULL, _IOLBF, 0);
	strata_writer_config_default(&cfg);
	CHECK(strata_writer_new(cli, scope, stream, &cfg, &w, err),
	      "writer new");
	char first[80];
	int fl = snprintf(first, sizeof(first), "%sW:0:0", name);
	CHECK(strata_writer_write(w, first, strlen(name) + 1, first, (size_t)fl,
	                          NULL, NULL, err),
	      "write");
	CHECK(strata_writer_note_time(w, 0, err), "note time");
	printf("ready\n");
	while (access(go, F_OK) != 0) {
		sleep_us(10000);
	}
	int64_t last = -1;
	for (long i = 0; i < n; i++) {
		char key[64], data[128];
		int kl = snprintf(key, sizeof(key), "%s%ld", name, i % 4);
		int dl = snprintf(data, sizeof(data), "%s:%ld:%ld", key, i / 4,
		                  10 * i);
		CHECK(strata_writer_write(w, key, (size_t)kl, data, (size_t)dl,
		                          NULL, NULL, err),
		      "write");
		if ((i + 1) % note_every == 0) {
			last = 10 * (i + 1);
			CHECK(strata_writer_note_time(w, last, err),
			      "note time");
			printf("noted %lld\n", (long long)last);
			sleep_us(50000);
		}
	}
	int rc = strata_writer_note_time(w, last - 1, err);
	if (rc != STRATA_EINVAL) {
		fprintf(stderr, "note time going back: got %s, want EINVAL\n",
		        strata_error_name(rc));
		return 1;
	}
	printf("going back refused: %s\n", err);
	printf("holding\n");
	sleep_us(hold_ms * 1000);
	CHECK(strata_writer_close(w, err), "writer close");
	printf("closed\n");
	return 0;
}

/*
 * A transactional producer "C": n events "C<i % 4>:<i / 4>:<t0 + i>" in
 * one transaction, committed, then time t0 + n noted for id 16 x 'C' with
 * strata_stream_note_time (the stream's tail); prints "noted T". With
 * remove, it then removes the mark (and an unknown id's, which is no
 * error) instead.
 */
static int cmd_txn_note(const char *scope, const char *stream, long n, long t0,
                        const char *what)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	uint8_t id[16];
	memset(id, 'C', sizeof(id));
	if (strcmp(what, "remove") == 0) {
		CHECK(strata_stream_remove_time_mark(cli, scope, stream, id,
		                                     err),
		      "remove time mark");
		memset(id, 'Z', sizeof(id));
		CHECK(strata_stream_remove_time_mark(cli, scope, stream, id,
		                                     err),
		      "remove an unknown time mark");
		printf("removed\n");
		return 0;
	}
	struct strata_txn *t;
	CHECK(strata_txn_begin(cli, scope, stream, NULL, &t, err), "begin");
	for (long i = 0; i < n; i++) {
		char key[16], data[64];
		int kl = snprintf(key, sizeof(key), "C%ld", i % 4);
		int dl = snprintf(data, sizeof(data), "%s:%ld:%ld", key, i / 4,
		                  t0 + i);
		CHECK(strata_txn_write(t, key, (size_t)kl, data, (size_t)dl,
		                       err),
		      "txn write");
	}
	CHECK(strata_txn_commit(t, err), "commit");
	strata_txn_free(t);
	CHECK(strata_stream_note_time(cli, scope, stream, id, t0 + n, err),
	      "stream note time");
	int rc = strata_stream_note_time(cli, scope, stream, id, t0, err);
	if (rc != STRATA_EINVAL) {
		fprintf(stderr, "stream note time going back: got %s\n",
		        strata_error_name(rc));
		return 1;
	}
	printf("noted %ld\n", t0 + n);
	return 0;
}

/* "-" or the bound. */
static const char *bound(bool has, int64_t v, char *buf, size_t size)
{
	if (!has) {
		return "-";
	}
	snprintf(buf, size, "%lld", (long long)v);
	return buf;
}

/*
 * Join group as reader of scope/stream and read n events, printing after
 * each its time window: "ev <ns> <segment> <offset> <payload> <lower>
 * <upper>" ("-" = unknown); then print "win <ns> <lower> <upper>" each time
 * the window changes until the stop file exists or limit_s pass. Also
 * checks that a stream the group does not read is refused.
 */
static int cmd_read_windows(const char *scope, const char *group,
                            const char *reader, const char *stream, long n,
                            const char *stop, unsigned limit_s)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_reader *r;
	struct strata_time_window win;
	char lo[32], up[32];
	setvbuf(stdout, NULL, _IOLBF, 0);
	CHECK(strata_reader_new(cli, scope, group, reader, &r, err),
	      "reader new");
	int rc = strata_reader_time_window(r, scope, "not-read", &win, err);
	if (rc != STRATA_EINVAL) {
		fprintf(stderr, "window of another stream: got %s\n",
		        strata_error_name(rc));
		return 1;
	}
	printf("joined %s\n", reader);
	uint64_t end = now_ns() + (uint64_t)limit_s * 1000000000u;
	long got = 0;
	while (got < n) {
		if (now_ns() > end) {
			fprintf(stderr, "reader %s: %ld of %ld events in %us\n",
			        reader, got, n, limit_s);
			return 1;
		}
		struct strata_read ev;
		CHECK(strata_reader_next(r, 200, &ev, err), "reader next");
		if (ev.kind != STRATA_READ_EVENT) {
			continue;
		}
		got++;
		CHECK(strata_reader_time_window(r, scope, stream, &win, err),
		      "time window");
		printf("ev %llu %llu %llu %.*s %s %s\n",
		       (unsigned long long)now_ns(),
		       (unsigned long long)ev.segment_id,
		       (unsigned long long)ev.offset, (int)ev.len,
		       (const char *)ev.data,
		       bound(win.has_lower, win.lower, lo, sizeof(lo)),
		       bound(win.has_upper, win.upper, up, sizeof(up)));
	}
	struct strata_time_window prev = win;
	while (access(stop, F_OK) != 0 && now_ns() < end) {
		sleep_us(100000);
		CHECK(strata_reader_time_window(r, scope, stream, &win, err),
		      "time window");
		if (memcmp(&win, &prev, sizeof(win)) != 0) {
			printf("win %llu %s %s\n", (unsigned long long)now_ns(),
			       bound(win.has_lower, win.lower, lo, sizeof(lo)),
			       bound(win.has_upper, win.upper, up, sizeof(up)));
			prev = win;
		}
	}
	CHECK(strata_reader_close(r, err), "reader close");
	printf("closed %s\n", reader);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr,
		        "usage: rg_tool CONTROLLER_URL CMD SCOPE ARGS...\n"
		        "  group SCOPE STREAM GROUP REFRESH_MS [auto|none "
		        "[CP_MS]]\n"
		        "  cp-start SCOPE GROUP NAME\n"
		        "  read SCOPE GROUP READER STOPFILE DELAY_US LIMIT_S\n"
		        "  checkpoint SCOPE GROUP NAME TIMEOUT_MS\n"
		        "  reset SCOPE GROUP NAME | offline SCOPE GROUP "
		        "READER\n"
		        "  delete SCOPE GROUP | scale SCOPE STREAM "
		        "split3|merge\n"
		        "  timed-write SCOPE STREAM NAME N NOTE_EVERY HOLD_MS "
		        "GOFILE\n"
		        "  read-windows SCOPE GROUP READER STREAM N STOPFILE "
		        "LIMIT_S\n"
		        "  txn-note SCOPE STREAM N T0 note|remove\n");
		return 2;
	}
	struct strata_client_config cfg;
	char err[STRATA_ERRMSG_SIZE] = "";
	const char *urls[1] = {argv[1]};
	strata_client_config_default(&cfg);
	cfg.controller_urls = urls;
	cfg.n_controller_urls = 1;
	CHECK(strata_client_new(&cfg, &cli, err), "client");
	const char *cmd = argv[2];
	int rc = 2;
	if (strcmp(cmd, "group") == 0 && argc >= 7 && argc <= 9) {
		rc = cmd_group(argv[3], argv[4], argv[5],
		               (unsigned)atoi(argv[6]),
		               argc >= 8 ? argv[7] : NULL,
		               argc == 9 ? (unsigned)atoi(argv[8]) : 0);
	} else if (strcmp(cmd, "cp-start") == 0 && argc == 6) {
		rc = cmd_cp_start(argv[3], argv[4], argv[5]);
	} else if (strcmp(cmd, "read") == 0 && argc == 9) {
		rc = cmd_read(argv[3], argv[4], argv[5], argv[6], atol(argv[7]),
		              (unsigned)atoi(argv[8]));
	} else if (strcmp(cmd, "checkpoint") == 0 && argc == 7) {
		rc = cmd_checkpoint(argv[3], argv[4], argv[5], atoi(argv[6]));
	} else if (strcmp(cmd, "reset") == 0 && argc == 6) {
		rc = cmd_reset(argv[3], argv[4], argv[5]);
	} else if (strcmp(cmd, "offline") == 0 && argc == 6) {
		rc = cmd_offline(argv[3], argv[4], argv[5]);
	} else if (strcmp(cmd, "delete") == 0 && argc == 5) {
		rc = cmd_delete(argv[3], argv[4]);
	} else if (strcmp(cmd, "scale") == 0 && argc == 6) {
		rc = cmd_scale(argv[3], argv[4], argv[5]);
	} else if (strcmp(cmd, "timed-write") == 0 && argc == 10) {
		rc = cmd_timed_write(argv[3], argv[4], argv[5], atol(argv[6]),
		                     atol(argv[7]), atol(argv[8]), argv[9]);
	} else if (strcmp(cmd, "txn-note") == 0 && argc == 8) {
		rc = cmd_txn_note(argv[3], argv[4], atol(argv[5]),
		                  atol(argv[6]), argv[7]);
	} else if (strcmp(cmd, "read-windows") == 0 && argc == 10) {
		rc = cmd_read_windows(argv[3], argv[4], argv[5], argv[6],
		                      atol(argv[7]), argv[8],
		                      (unsigned)atoi(argv[9]));
	} else {
		fprintf(stderr, "bad command line\n");
	}
	strata_client_free(cli);
	return rc;
}
