/* Unit tests for client/reader.c (reader groups, readers, checkpoints)
 * against the fake cluster: the group's state segment is a real revisioned
 * segment of the fake store. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>

#include <cmocka.h>

#include "client/client_int.h"
#include "fake_cluster.h"
#include "strata/readergroup.h"
#include "strata/segment.h"
#include "strata/writer.h"

#define N_EVENTS 200
#define N_KEYS 8

static int setup(void **state)
{
	*state = fake_fixture_new(2);
	return *state != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	fake_fixture_free(*state);
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Write events "i" for i in [from, to), key k<i % N_KEYS>, flushed. */
static void write_range(struct fake_fixture *fx, int from, int to)
{
	char err[STRATA_ERRMSG_SIZE];
	struct strata_writer *w;
	assert_int_equal(strata_writer_new(fx->c, "sc", "st", NULL, &w, err),
	                 0);
	for (int i = from; i < to; i++) {
		char key[16];
		char ev[32];
		snprintf(key, sizeof(key), "k%d", i % N_KEYS);
		int len = snprintf(ev, sizeof(ev), "%d", i);
		assert_int_equal(strata_writer_write(w, key, strlen(key), ev,
		                                     (size_t)len, NULL, NULL,
		                                     err),
		                 0);
	}
	assert_int_equal(strata_writer_close(w, err), 0);
}

/* Create group g over sc/st from its head, refreshing every 20 ms. */
static void create_group(struct fake_fixture *fx, const char *g)
{
	char err[STRATA_ERRMSG_SIZE];
	struct strata_stream_cut head = STRATA_STREAM_CUT_INIT;
	snprintf(head.scope, sizeof(head.scope), "sc");
	snprintf(head.stream, sizeof(head.stream), "st");
	struct strata_reader_group_stream s = {&head, NULL};
	struct strata_reader_group_config cfg;
	strata_reader_group_config_default(&cfg);
	cfg.streams = &s;
	cfg.n_streams = 1;
	cfg.group_refresh_ms = 20;
	int rc = strata_reader_group_create(fx->c, "sc", g, &cfg, err);
	if (rc != 0) {
		fail_msg("create group %s: %s", g, err);
	}
}

/* What the readers returned, in the order the test saw it. */
struct log {
	int count[N_EVENTS];
	int order[N_EVENTS * 2]; /* event numbers as returned */
	size_t n;
	size_t per_reader[4];
};

/* One strata_reader_next of reader i: an event is logged. Returns the
 * kind. */
static enum strata_read_kind step(struct strata_reader *r, size_t i,
                                  struct log *lg, int wait_ms)
{
	char err[STRATA_ERRMSG_SIZE];
	struct strata_read ev;
	int rc = strata_reader_next(r, wait_ms, &ev, err);
	if (rc != 0) {
		fail_msg("reader %zu: %s: %s", i, strata_error_name(rc), err);
	}
	if (ev.kind == STRATA_READ_EVENT) {
		char buf[32];
		assert_true(ev.len < sizeof(buf));
		memcpy(buf, ev.data, ev.len);
		buf[ev.len] = '\0';
		int e = atoi(buf);
		assert_true(e >= 0 && e < N_EVENTS);
		assert_string_equal(ev.stream, "st");
		lg->count[e]++;
		lg->order[lg->n++] = e;
		lg->per_reader[i]++;
	}
	return ev.kind;
}

/* Every event in [0, n) exactly once; per key in increasing order. */
static void check_log(const struct log *lg, int n)
{
	for (int e = 0; e < n; e++) {
		if (lg->count[e] != 1) {
			fail_msg("event %d read %d times", e, lg->count[e]);
		}
	}
	int last[N_KEYS];
	for (int k = 0; k < N_KEYS; k++) {
		last[k] = -1;
	}
	for (size_t i = 0; i < lg->n; i++) {
		int e = lg->order[i];
		if (e <= last[e % N_KEYS]) {
			fail_msg("key %d: event %d after %d", e % N_KEYS, e,
			         last[e % N_KEYS]);
		}
		last[e % N_KEYS] = e;
	}
}

/* Names are checked before any call; a second create is EEXIST; unknown
 * and deleted groups are ENOENT. */
static void test_reader_group_create_names(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	char longname[300];
	memset(longname, 'g', 253);
	longname[253] = '\0';
	struct strata_reader *r;
	assert_int_equal(strata_reader_new(fx->c, "sc", longname, "r", &r, err),
	                 STRATA_EBADNAME);
	assert_non_null(strstr(err, "252"));
	assert_int_equal(strata_reader_new(fx->c, "sc", "_x", "r", &r, err),
	                 STRATA_EBADNAME);
	assert_int_equal(strata_reader_new(fx->c, "sc", "nope", "r", &r, err),
	                 STRATA_ENOENT);
	create_group(fx, "g");
	struct strata_stream_cut head = STRATA_STREAM_CUT_INIT;
	snprintf(head.scope, sizeof(head.scope), "sc");
	snprintf(head.stream, sizeof(head.stream), "st");
	struct strata_reader_group_stream s = {&head, NULL};
	struct strata_reader_group_config cfg;
	strata_reader_group_config_default(&cfg);
	cfg.streams = &s;
	cfg.n_streams = 1;
	assert_int_equal(
	        strata_reader_group_create(fx->c, "sc", "g", &cfg, err),
	        STRATA_EEXIST);
	/* Reader and checkpoint names are printed one per line: no
	 * control characters. */
	assert_int_equal(strata_reader_new(fx->c, "sc", "g", "a\nb", &r, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "control character (0x0a) at byte 1"));
	assert_int_equal(strata_reader_new(fx->c, "sc", "g", "", &r, err),
	                 STRATA_EINVAL);
	struct strata_reader_group *rg;
	assert_int_equal(strata_reader_group_open(fx->c, "sc", "g", &rg, err),
	                 0);
	struct strata_checkpoint *cp;
	assert_int_equal(strata_reader_group_initiate_checkpoint(rg, "cp\t1",
	                                                         100, &cp, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "checkpoint name has a control"));
	strata_reader_group_close(rg);
	assert_int_equal(strata_reader_new(fx->c, "sc", "g", "r", &r, err), 0);
	struct strata_reader *r2;
	assert_int_equal(strata_reader_new(fx->c, "sc", "g", "r", &r2, err),
	                 STRATA_EEXIST);
	assert_int_equal(strata_reader_close(r, err), 0);
	assert_int_equal(strata_reader_group_delete(fx->c, "sc", "g", err), 0);
	assert_int_equal(strata_reader_new(fx->c, "sc", "g", "r", &r, err),
	                 STRATA_ENOENT);
}

/* Two readers share two segments (one each after balancing) and read
 * every event exactly once, in order per key. */
static void test_reader_next_shares_segments(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	create_group(fx, "g");
	struct strata_reader *r[2];
	assert_int_equal(strata_reader_new(fx->c, "sc", "g", "a", &r[0], err),
	                 0);
	assert_int_equal(strata_reader_new(fx->c, "sc", "g", "b", &r[1], err),
	                 0);
	static struct log lg;
	memset(&lg, 0, sizeof(lg));
	/* Let them balance (a takes both, releases one to b). */
	uint64_t end = now_ms() + 300;
	while (now_ms() < end) {
		step(r[0], 0, &lg, 5);
		step(r[1], 1, &lg, 5);
	}
	write_range(fx, 0, N_EVENTS);
	end = now_ms() + 5000;
	while (lg.n < N_EVENTS && now_ms() < end) {
		step(r[0], 0, &lg, 5);
		step(r[1], 1, &lg, 5);
	}
	check_log(&lg, N_EVENTS);
	assert_true(lg.per_reader[0] > 0);
	assert_true(lg.per_reader[1] > 0);
	assert_int_equal(strata_reader_close(r[0], err), 0);
	assert_int_equal(strata_reader_close(r[1], err), 0);
}

/* After a split, successors are read only once their predecessor is
 * complete (per-key order across readers); a sealed stream ends. */
static void test_reader_next_successors_in_order(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	write_range(fx, 0, N_EVENTS / 2);
	fake_split(fx->f, fake_segment_id(fx->f, 0));
	fake_split(fx->f, fake_segment_id(fx->f, 1));
	write_range(fx, N_EVENTS / 2, N_EVENTS);
	fake_seal_stream(fx->f);
	/* The first answers come from a replica behind the scale: a
	 * sealed segment must not look like the end of the stream. */
	fake_stale_successors(fx->f, 3);
	create_group(fx, "g");
	struct strata_reader *r[2];
	assert_int_equal(strata_reader_new(fx->c, "sc", "g", "a", &r[0], err),
	                 0);
	assert_int_equal(strata_reader_new(fx->c, "sc", "g", "b", &r[1], err),
	                 0);
	static struct log lg;
	memset(&lg, 0, sizeof(lg));
	bool ended[2] = {false, false};
	uint64_t end = now_ms() + 10000;
	while (!(ended[0] && ended[1]) && now_ms() < end) {
		for (size_t i = 0; i < 2; i++) {
			if (!ended[i]) {
				ended[i] = step(r[i], i, &lg, 5) ==
				           STRATA_READ_END;
			}
		}
	}
	assert_true(ended[0] && ended[1]);
	check_log(&lg, N_EVENTS);
	assert_int_equal(fake_stale_successors_left(fx->f), 0);
	assert_int_equal(strata_reader_close(r[0], err), 0);
	assert_int_equal(strata_reader_close(r[1], err), 0);
}

struct cp_thread {
	struct strata_reader_group *rg;
	const char *name;
	int rc;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_checkpoint *cp;
};

static void *cp_main(void *arg)
{
	struct cp_thread *t = arg;
	t->rc = strata_reader_group_initiate_checkpoint(t->rg, t->name, 5000,
	                                                &t->cp, t->err);
	return NULL;
}

/* A checkpoint completes once the reader passed it; its cut holds the
 * offsets right after the events the reader returned before it. */
static void test_checkpoint_positions(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	write_range(fx, 0, N_EVENTS);
	create_group(fx, "g");
	struct strata_reader *r;
	assert_int_equal(strata_reader_new(fx->c, "sc", "g", "a", &r, err), 0);
	uint64_t next[2] = {0, 0}; /* per segment id (0, 1): next offset */
	int got = 0;
	while (got < 50) {
		struct strata_read ev;
		assert_int_equal(strata_reader_next(r, 10, &ev, err), 0);
		if (ev.kind == STRATA_READ_EVENT) {
			assert_true(ev.segment_id < 2);
			next[ev.segment_id] =
			        ev.offset + STRATA_FRAME_HEADER + ev.len;
			got++;
		}
	}
	struct cp_thread t = {0};
	assert_int_equal(strata_reader_group_open(fx->c, "sc", "g", &t.rg, err),
	                 0);
	t.name = "cp1";
	pthread_t th;
	pthread_create(&th, NULL, cp_main, &t);
	bool passed = false;
	uint64_t end = now_ms() + 5000;
	while (!passed && now_ms() < end) {
		struct strata_read ev;
		assert_int_equal(strata_reader_next(r, 10, &ev, err), 0);
		if (ev.kind == STRATA_READ_EVENT) {
			next[ev.segment_id] =
			        ev.offset + STRATA_FRAME_HEADER + ev.len;
		}
		if (ev.kind == STRATA_READ_CHECKPOINT) {
			assert_string_equal(ev.checkpoint, "cp1");
			passed = true;
		}
	}
	pthread_join(th, NULL);
	assert_true(passed);
	if (t.rc != 0) {
		fail_msg("checkpoint: %s", t.err);
	}
	assert_int_equal(t.cp->n, 1);
	const struct strata_stream_cut *cut = &t.cp->cuts[0];
	assert_string_equal(cut->stream, "st");
	assert_int_equal(cut->n, 2);
	for (size_t i = 0; i < cut->n; i++) {
		uint64_t id = cut->positions[i].segment_id;
		assert_true(id < 2);
		assert_int_equal((uint64_t)cut->positions[i].offset, next[id]);
	}
	strata_checkpoint_free(t.cp);
	/* The name is taken now. */
	struct strata_checkpoint *cp2;
	assert_int_equal(strata_reader_group_initiate_checkpoint(t.rg, "cp1", 0,
	                                                         &cp2, err),
	                 STRATA_EEXIST);
	strata_reader_group_close(t.rg);
	assert_int_equal(strata_reader_close(r, err), 0);
}

/* Reset to a checkpoint: running readers get ENOENT; a new reader reads
 * exactly what followed the checkpoint. */
static void test_reader_group_reset(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	write_range(fx, 0, N_EVENTS);
	create_group(fx, "g");
	struct strata_reader *r;
	assert_int_equal(strata_reader_new(fx->c, "sc", "g", "a", &r, err), 0);
	static struct log before, after;
	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	while (before.n < 60) {
		step(r, 0, &before, 10);
	}
	struct strata_reader_group *rg;
	struct strata_checkpoint *cp = NULL;
	assert_int_equal(strata_reader_group_open(fx->c, "sc", "g", &rg, err),
	                 0);
	/* Pending: the reader has not passed it yet. */
	assert_int_equal(
	        strata_reader_group_initiate_checkpoint(rg, "cp1", 0, &cp, err),
	        STRATA_ETIMEDOUT);
	/* The reader sees it at its next refresh (due after 20 ms); events
	 * until then are before the checkpoint. */
	struct timespec ts = {0, 50 * 1000000L};
	nanosleep(&ts, NULL);
	struct strata_read ev;
	uint64_t end = now_ms() + 3000;
	while (step(r, 0, &before, 10) != STRATA_READ_CHECKPOINT &&
	       now_ms() < end) {
	}
	/* Read on past the checkpoint: these are read again after the
	 * reset. */
	static struct log lost;
	memset(&lost, 0, sizeof(lost));
	end = now_ms() + 3000;
	while (lost.n < 40 && now_ms() < end) {
		step(r, 0, &lost, 10);
	}
	assert_int_equal(lost.n, 40);
	struct strata_checkpoint named = {0};
	snprintf(named.name, sizeof(named.name), "cp1");
	assert_int_equal(strata_reader_group_reset(rg, &named, err), 0);
	int rc = 0;
	end = now_ms() + 3000;
	while (rc == 0 && now_ms() < end) {
		rc = strata_reader_next(r, 10, &ev, err);
	}
	assert_int_equal(rc, STRATA_ENOENT);
	assert_int_equal(strata_reader_close(r, err), 0);
	assert_int_equal(strata_reader_new(fx->c, "sc", "g", "a", &r, err), 0);
	end = now_ms() + 5000;
	while (after.n < N_EVENTS - before.n && now_ms() < end) {
		step(r, 0, &after, 10);
	}
	assert_int_equal(after.n, N_EVENTS - before.n);
	/* before + after = every event once. */
	for (int e = 0; e < N_EVENTS; e++) {
		if (before.count[e] + after.count[e] != 1) {
			fail_msg("event %d: %d before, %d after the reset", e,
			         before.count[e], after.count[e]);
		}
	}
	assert_int_equal(strata_reader_close(r, err), 0);
	strata_reader_group_close(rg);
}

/* A reader declared offline gets ENOENT; its segments go to the others. */
static void test_reader_group_reader_offline(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	write_range(fx, 0, N_EVENTS);
	create_group(fx, "g");
	struct strata_reader *a, *b;
	assert_int_equal(strata_reader_new(fx->c, "sc", "g", "a", &a, err), 0);
	static struct log lg;
	memset(&lg, 0, sizeof(lg));
	step(a, 0, &lg, 10);
	struct strata_reader_group *rg;
	assert_int_equal(strata_reader_group_open(fx->c, "sc", "g", &rg, err),
	                 0);
	assert_int_equal(strata_reader_group_reader_offline(rg, "a", err), 0);
	assert_int_equal(strata_reader_group_reader_offline(rg, "zz", err), 0);
	struct strata_names *on;
	assert_int_equal(strata_reader_group_online_readers(rg, &on, err), 0);
	assert_int_equal(on->n, 0);
	strata_names_free(on);
	struct strata_read ev;
	int rc = 0;
	uint64_t end = now_ms() + 3000;
	while (rc == 0 && now_ms() < end) {
		rc = strata_reader_next(a, 10, &ev, err);
	}
	assert_int_equal(rc, STRATA_ENOENT);
	assert_int_equal(strata_reader_close(a, err), 0);
	/* b gets both segments: every event at least once (the one a read
	 * is read again: a never recorded a position past it). */
	assert_int_equal(strata_reader_new(fx->c, "sc", "g", "b", &b, err), 0);
	static struct log lb;
	memset(&lb, 0, sizeof(lb));
	end = now_ms() + 5000;
	while (lb.n < N_EVENTS && now_ms() < end) {
		step(b, 1, &lb, 10);
	}
	check_log(&lb, N_EVENTS);
	assert_int_equal(strata_reader_close(b, err), 0);
	strata_reader_group_close(rg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_reader_group_create_names,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_reader_next_shares_segments, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_reader_next_successors_in_order, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_checkpoint_positions,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_reader_group_reset, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_reader_group_reader_offline, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
