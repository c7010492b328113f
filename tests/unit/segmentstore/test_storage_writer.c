/* Unit tests for segmentstore/storage_writer.c: what is flushed when, chunk
 * naming per owner term, chunk roll-over, tier-2 failures (create, write,
 * stat, fail_file) with back-off and resume, garbage deletion, chunk locks.
 * Runs the writer against a container FSM directly (no Raft), with the mem
 * and faulty tier-2 plugins. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/plugin.h"
#include "segmentstore/storage_writer.h"
#include "tests/unit/segmentstore/fsm_helpers.h"

struct fixture {
	struct container_fsm f;
	struct tier2 *t2;
	struct storage_writer *w;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct sw_job *posted; /* job handed back */
	uint64_t failed[16];   /* segments reported failed */
	int n_failed;          /* entries in failed */
	char fail_file[64];    /* faulty's fail_file path */
};

static void post(void *arg, struct sw_job *job)
{
	struct fixture *x = arg;
	pthread_mutex_lock(&x->lock);
	x->posted = job;
	pthread_cond_signal(&x->cond);
	pthread_mutex_unlock(&x->lock);
}

static void on_failed(void *arg, uint64_t seg)
{
	struct fixture *x = arg;
	if (x->n_failed < 16) {
		x->failed[x->n_failed++] = seg;
	}
}

/* A fixture over tier 2 `config` of plugin `plugin`, writer cfg w. */
static struct fixture *fx_new(const char *plugin, const char *config,
                              struct storage_writer_config wc)
{
	char errmsg[STRATA_ERRMSG_SIZE];
	struct fixture *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	assert_int_equal(container_fsm_init(&x->f, NULL), 0);
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->cond, NULL);
	int rv = tier2_load_open(plugin, NULL, config, &x->t2, errmsg);
	if (rv != 0) {
		fail_msg("tier2 %s: %s", plugin, errmsg);
	}
	wc.container = 7;
	wc.tier2 = x->t2;
	wc.post = post;
	wc.post_arg = x;
	assert_int_equal(storage_writer_new(&wc, &x->w, errmsg), 0);
	return x;
}

static void fx_free(struct fixture *x)
{
	storage_writer_free(x->w);
	tier2_close(x->t2);
	container_fsm_close(&x->f);
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->cond);
	if (x->fail_file[0] != '\0') {
		unlink(x->fail_file);
	}
	free(x);
}

/* Wait for the posted job (5 s at most). */
static struct sw_job *wait_job(struct fixture *x)
{
	struct sw_job *j = NULL;
	for (int i = 0; i < 5000 && j == NULL; i++) {
		pthread_mutex_lock(&x->lock);
		j = x->posted;
		x->posted = NULL;
		pthread_mutex_unlock(&x->lock);
		if (j == NULL) {
			usleep(1000);
		}
	}
	assert_non_null(j);
	return j;
}

/* Plan (must start a job), write, complete with generation (= term here),
 * apply the ops to the FSM and report them committed. Returns the ops
 * added. */
static unsigned cycle(struct fixture *x, uint64_t plan_term,
                      uint64_t complete_term, uint64_t now, bool pressure)
{
	assert_true(storage_writer_plan(x->w, &x->f, plan_term, plan_term, now,
	                                pressure));
	assert_true(storage_writer_busy(x->w));
	struct sw_job *j = wait_job(x);
	struct entry_builder b;
	entry_builder_init(&b, 0);
	unsigned ops = storage_writer_complete(x->w, j, complete_term, &b, now,
	                                       on_failed, x);
	if (ops > 0) {
		struct container_result res[64];
		assert_true(ops <= 64);
		assert_int_equal(apply_builder(&x->f, &b, res, 64), 0);
		for (unsigned i = 0; i < ops; i++) {
			assert_int_equal(res[i].code, 0);
			if (res[i].segment != 0) {
				storage_writer_touch(x->w, &x->f,
				                     res[i].segment, now);
			}
		}
		assert_true(storage_writer_busy(x->w));
		storage_writer_committed(x->w, true);
	}
	entry_builder_close(&b);
	assert_false(storage_writer_busy(x->w));
	return ops;
}

/* Append n bytes of fill to seg as one event block of writer 1. */
static void append(struct fixture *x, uint64_t seg, int64_t ev, size_t n,
                   char fill, uint64_t now)
{
	char *d = malloc(n + 1);
	memset(d, fill, n);
	d[n] = '\0';
	assert_int_equal(do_append(&x->f, seg, 1, ev, 1, d).code, 0);
	free(d);
	assert_int_equal(storage_writer_touch(x->w, &x->f, seg, now), 0);
}

static const struct segment *seg_of(struct fixture *x, uint64_t id)
{
	const struct segment *s = container_fsm_segment(&x->f, id);
	assert_non_null(s);
	return s;
}

/* Bytes [off, off+n) of the segment read back through its chunk list. */
static void check_tier2(struct fixture *x, uint64_t id, uint64_t off, size_t n,
                        char fill)
{
	const struct segment *s = seg_of(x, id);
	size_t i = segment_find_extent(s, off);
	const struct extent *e = &s->extents[i];
	assert_int_equal(e->kind, EXTENT_CHUNK);
	char buf[256], errmsg[STRATA_ERRMSG_SIZE];
	size_t nread = 0;
	assert_true(n <= sizeof(buf));
	assert_int_equal(tier2_read(x->t2, e->chunk,
	                            e->chunk_offset + (off - e->offset), buf, n,
	                            &nread, errmsg),
	                 0);
	assert_int_equal(nread, n);
	for (size_t k = 0; k < n; k++) {
		assert_int_equal(buf[k], fill);
	}
}

/* A segment past flush_bytes is flushed into a chunk named after the
 * container, segment, term and offset; the tail leaves memory. */
static void test_plan_flushes_by_size(void **state)
{
	(void)state;
	struct fixture *x = fx_new(
	        "mem", NULL, (struct storage_writer_config){.flush_bytes = 10});
	uint64_t s = do_create(&x->f, "a/b/0.#epoch.0").segment;
	append(x, s, 0, 8, 'x', 100);
	assert_false(storage_writer_plan(x->w, &x->f, 3, 3, 100, false));
	append(x, s, 1, 8, 'y', 100);
	assert_int_equal(cycle(x, 3, 3, 100, false), 1);
	const struct segment *sg = seg_of(x, s);
	assert_int_equal(sg->unflushed, 0);
	assert_int_equal(segment_flushed_length(sg), 16);
	assert_string_equal(sg->extents[0].chunk, "c7/s1/t3-g3-o0-1");
	check_tier2(x, s, 0, 8, 'x');
	check_tier2(x, s, 8, 8, 'y');
	assert_false(storage_writer_degraded(x->w));
	/* Nothing left to do. */
	assert_false(storage_writer_plan(x->w, &x->f, 3, 3, 100, true));
	fx_free(x);
}

/* Small tails wait for flush_age_ms, or go at once under pressure. */
static void test_plan_waits_for_age_or_pressure(void **state)
{
	(void)state;
	struct fixture *x =
	        fx_new("mem", NULL,
	               (struct storage_writer_config){.flush_bytes = 1000,
	                                              .flush_age_ms = 500});
	uint64_t s = do_create(&x->f, "s").segment;
	append(x, s, 0, 5, 'a', 1000);
	assert_false(storage_writer_plan(x->w, &x->f, 1, 1, 1499, false));
	assert_int_equal(cycle(x, 1, 1, 1500, false), 1);
	append(x, s, 1, 5, 'b', 2000);
	assert_false(storage_writer_plan(x->w, &x->f, 1, 1, 2001, false));
	assert_int_equal(cycle(x, 1, 1, 2001, true), 1);
	assert_int_equal(seg_of(x, s)->unflushed, 0);
	fx_free(x);
}

/* A flush request forces a flush of a small, young tail. */
static void test_plan_request_forces_flush(void **state)
{
	(void)state;
	struct fixture *x =
	        fx_new("mem", NULL,
	               (struct storage_writer_config){.flush_bytes = 1000,
	                                              .flush_age_ms = 100000});
	uint64_t s = do_create(&x->f, "s").segment;
	append(x, s, 0, 5, 'a', 10);
	assert_false(storage_writer_plan(x->w, &x->f, 1, 1, 10, false));
	assert_int_equal(storage_writer_request(x->w, s, 5), 0);
	assert_int_equal(cycle(x, 1, 1, 10, false), 1);
	assert_int_equal(segment_flushed_length(seg_of(x, s)), 5);
	fx_free(x);
}

/* Later flushes extend the open chunk until chunk_bytes, then roll. */
static void test_chunk_continues_then_rolls(void **state)
{
	(void)state;
	struct fixture *x =
	        fx_new("mem", NULL,
	               (struct storage_writer_config){.flush_bytes = 1,
	                                              .chunk_bytes = 16});
	uint64_t s = do_create(&x->f, "s").segment;
	append(x, s, 0, 10, 'a', 1);
	assert_int_equal(cycle(x, 2, 2, 1, false), 1);
	append(x, s, 1, 10, 'b', 1);
	assert_int_equal(cycle(x, 2, 2, 1, false), 1); /* 6 fit */
	assert_int_equal(cycle(x, 2, 2, 1, false), 1); /* 4 roll over */
	const struct segment *sg = seg_of(x, s);
	assert_int_equal(sg->unflushed, 0);
	assert_int_equal(sg->n_extents, 2);
	assert_int_equal(sg->extents[0].length, 16); /* extended */
	assert_string_equal(sg->extents[0].chunk, "c7/s1/t2-g2-o0-1");
	assert_string_equal(sg->extents[1].chunk, "c7/s1/t2-g2-o16-2");
	assert_int_equal(sg->extents[1].chunk_offset, 0);
	check_tier2(x, s, 0, 10, 'a');
	check_tier2(x, s, 10, 6, 'b');
	check_tier2(x, s, 16, 4, 'b');
	fx_free(x);
}

/* A new owner term never writes an old term's chunk. */
static void test_new_term_new_chunk(void **state)
{
	(void)state;
	struct fixture *x = fx_new(
	        "mem", NULL, (struct storage_writer_config){.flush_bytes = 1});
	uint64_t s = do_create(&x->f, "s").segment;
	append(x, s, 0, 4, 'a', 1);
	assert_int_equal(cycle(x, 5, 5, 1, false), 1);
	append(x, s, 1, 4, 'b', 1);
	assert_int_equal(cycle(x, 6, 6, 1, false), 1);
	const struct segment *sg = seg_of(x, s);
	assert_int_equal(sg->n_extents, 2);
	assert_string_equal(sg->extents[0].chunk, "c7/s1/t5-g5-o0-1");
	assert_string_equal(sg->extents[1].chunk, "c7/s1/t6-g6-o4-2");
	fx_free(x);
}

/* A job finishing after its owner's term ended commits nothing. */
static void test_stale_term_adds_no_ops(void **state)
{
	(void)state;
	struct fixture *x = fx_new(
	        "mem", NULL, (struct storage_writer_config){.flush_bytes = 1});
	uint64_t s = do_create(&x->f, "s").segment;
	append(x, s, 0, 4, 'a', 1);
	assert_int_equal(cycle(x, 5, 6, 1, false), 0);
	assert_int_equal(seg_of(x, s)->unflushed, 4);
	/* The next owner flushes into its own chunk. */
	assert_int_equal(cycle(x, 6, 6, 1, false), 1);
	assert_string_equal(seg_of(x, s)->extents[0].chunk, "c7/s1/t6-g6-o0-2");
	fx_free(x);
}

/* A failed chunk create keeps the bytes in memory, reports the segment,
 * degrades and backs off; the retry uses a new chunk and clears it. */
static void test_create_fails_then_resumes(void **state)
{
	(void)state;
	struct fixture *x =
	        fx_new("faulty", "parent=mem\nfail_op=create\nfail_nth=1",
	               (struct storage_writer_config){.flush_bytes = 1,
	                                              .backoff_min_ms = 100});
	uint64_t s = do_create(&x->f, "s").segment;
	append(x, s, 0, 4, 'a', 1000);
	assert_int_equal(cycle(x, 1, 1, 1000, false), 0);
	assert_int_equal(x->n_failed, 1);
	assert_int_equal(x->failed[0], s);
	assert_true(storage_writer_degraded(x->w));
	assert_int_equal(seg_of(x, s)->unflushed, 4);
	assert_false(storage_writer_plan(x->w, &x->f, 1, 1, 1099, false));
	assert_int_equal(cycle(x, 1, 1, 1100, false), 1);
	assert_false(storage_writer_degraded(x->w));
	assert_int_equal(seg_of(x, s)->unflushed, 0);
	assert_string_equal(seg_of(x, s)->extents[0].chunk, "c7/s1/t1-g1-o0-2");
	check_tier2(x, s, 0, 4, 'a');
	fx_free(x);
}

/* A failed write whose chunk kept its length (stat) keeps the chunk. */
static void test_write_fails_chunk_kept(void **state)
{
	(void)state;
	struct fixture *x =
	        fx_new("faulty", "parent=mem\nfail_op=write\nfail_nth=2",
	               (struct storage_writer_config){.flush_bytes = 1,
	                                              .backoff_min_ms = 10});
	uint64_t s = do_create(&x->f, "s").segment;
	append(x, s, 0, 4, 'a', 1000);
	assert_int_equal(cycle(x, 1, 1, 1000, false), 1);
	append(x, s, 1, 4, 'b', 1000);
	assert_int_equal(cycle(x, 1, 1, 1000, false), 0); /* write 2 fails */
	assert_true(storage_writer_degraded(x->w));
	assert_int_equal(cycle(x, 1, 1, 1010, false), 1);
	const struct segment *sg = seg_of(x, s);
	assert_int_equal(sg->n_extents, 1); /* same chunk, extended */
	assert_int_equal(sg->extents[0].length, 8);
	check_tier2(x, s, 4, 4, 'b');
	assert_false(storage_writer_degraded(x->w));
	fx_free(x);
}

/* A write reported failed after it happened (a lost reply) leaves the
 * chunk longer than expected: it is abandoned for a new one. */
static void test_write_lost_reply_abandons_chunk(void **state)
{
	(void)state;
	struct fixture *x =
	        fx_new("faulty",
	               "parent=mem\nfail_op=write\nfail_nth=2\nfail_when=after",
	               (struct storage_writer_config){.flush_bytes = 1,
	                                              .backoff_min_ms = 10});
	uint64_t s = do_create(&x->f, "s").segment;
	append(x, s, 0, 4, 'a', 1000);
	assert_int_equal(cycle(x, 1, 1, 1000, false), 1);
	append(x, s, 1, 4, 'b', 1000);
	assert_int_equal(cycle(x, 1, 1, 1000, false), 0);
	assert_int_equal(cycle(x, 1, 1, 1010, false), 1);
	const struct segment *sg = seg_of(x, s);
	assert_int_equal(sg->n_extents, 2);
	assert_string_equal(sg->extents[1].chunk, "c7/s1/t1-g1-o4-2");
	check_tier2(x, s, 4, 4, 'b');
	fx_free(x);
}

/* While fail_file exists every op (write and stat) fails: degraded, bytes
 * kept, chunk abandoned; once it is gone the writer resumes by itself. */
static void test_fail_file_degraded_then_resume(void **state)
{
	(void)state;
	char path[64];
	snprintf(path, sizeof(path), "/tmp/strata-sw-fail-%d", (int)getpid());
	char config[256];
	snprintf(config, sizeof(config), "parent=mem\nfail_file=%s", path);
	struct fixture *x =
	        fx_new("faulty", config,
	               (struct storage_writer_config){.flush_bytes = 1,
	                                              .backoff_min_ms = 10,
	                                              .backoff_max_ms = 40});
	snprintf(x->fail_file, sizeof(x->fail_file), "%s", path);
	uint64_t s = do_create(&x->f, "s").segment;
	append(x, s, 0, 4, 'a', 1000);
	assert_int_equal(cycle(x, 1, 1, 1000, false), 1);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	append(x, s, 1, 4, 'b', 1000);
	uint64_t now = 1000;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(cycle(x, 1, 1, now, false), 0);
		assert_true(storage_writer_degraded(x->w));
		now += 40; /* backoff capped at 40 ms */
	}
	assert_int_equal(seg_of(x, s)->unflushed, 4);
	unlink(path);
	assert_int_equal(cycle(x, 1, 1, now, false), 1);
	assert_false(storage_writer_degraded(x->w));
	const struct segment *sg = seg_of(x, s);
	assert_int_equal(sg->unflushed, 0);
	assert_int_equal(sg->n_extents, 2); /* old chunk abandoned */
	check_tier2(x, s, 0, 4, 'a');
	check_tier2(x, s, 4, 4, 'b');
	fx_free(x);
}

/* Chunks of deleted segments are deleted and CHUNK_DELETED committed. */
static void test_garbage_deleted(void **state)
{
	(void)state;
	struct fixture *x = fx_new(
	        "mem", NULL, (struct storage_writer_config){.flush_bytes = 1});
	uint64_t s = do_create(&x->f, "s").segment;
	append(x, s, 0, 4, 'a', 1);
	assert_int_equal(cycle(x, 1, 1, 1, false), 1);
	char chunk[128];
	snprintf(chunk, sizeof(chunk), "%s", seg_of(x, s)->extents[0].chunk);
	assert_int_equal(do_delete(&x->f, s).code, 0);
	storage_writer_sweep(x->w, &x->f, 1);
	assert_int_equal(container_fsm_garbage_count(&x->f), 1);
	assert_int_equal(cycle(x, 1, 1, 1, false), 1);
	assert_int_equal(container_fsm_garbage_count(&x->f), 0);
	struct strata_tier2_chunk_info info;
	char errmsg[STRATA_ERRMSG_SIZE];
	assert_int_equal(tier2_stat(x->t2, chunk, &info, errmsg),
	                 STRATA_ENOENT);
	fx_free(x);
}

/* A job that hangs (tier 2 accepts and never answers) reports degraded
 * once it has run stuck_ms, not only when the plugin's timeouts end it
 * (minutes for hdfs); done, it is not degraded. */
static void test_stuck_job_is_degraded(void **state)
{
	(void)state;
	struct fixture *x = fx_new("faulty", "parent=mem\ndelay_ms=800",
	                           (struct storage_writer_config){
	                                   .flush_bytes = 1, .stuck_ms = 100});
	uint64_t s = do_create(&x->f, "s").segment;
	append(x, s, 0, 4, 'a', 1);
	assert_true(storage_writer_plan(x->w, &x->f, 1, 1, 1, false));
	assert_false(storage_writer_degraded(x->w));
	bool seen = false;
	for (int i = 0; i < 600 && !seen; i++) {
		seen = storage_writer_degraded(x->w);
		usleep(1000);
	}
	assert_true(seen);
	struct sw_job *j = wait_job(x);
	struct entry_builder b;
	entry_builder_init(&b, 0);
	assert_int_equal(
	        storage_writer_complete(x->w, j, 1, &b, 2, on_failed, x), 1);
	entry_builder_close(&b);
	assert_false(storage_writer_degraded(x->w));
	storage_writer_committed(x->w, false);
	fx_free(x);
}

/* A chunk that cannot be deleted does not hold up the others of the same
 * job (a QA run: one damaged s3 chunk at the head of the list stopped
 * every later delete of its container). */
static void test_garbage_failing_does_not_hold_others(void **state)
{
	(void)state;
	struct fixture *x =
	        fx_new("faulty", "parent=mem\nfail_op=delete\nfail_nth=1",
	               (struct storage_writer_config){.flush_bytes = 1});
	uint64_t d1 = do_create(&x->f, "d1").segment;
	uint64_t d2 = do_create(&x->f, "d2").segment;
	append(x, d1, 0, 4, 'a', 1);
	append(x, d2, 0, 4, 'b', 1);
	assert_int_equal(cycle(x, 1, 1, 1, false), 2);
	assert_int_equal(do_delete(&x->f, d1).code, 0);
	assert_int_equal(do_delete(&x->f, d2).code, 0);
	assert_int_equal(container_fsm_garbage_count(&x->f), 2);
	/* The first delete fails, the second is done and committed. */
	assert_int_equal(cycle(x, 1, 1, 2, false), 1);
	assert_int_equal(container_fsm_garbage_count(&x->f), 1);
	fx_free(x);
}

/* A chunk that cannot be deleted (no delete permission, an object lock)
 * stays in the garbage list and its deletes back off alone: flushing goes
 * on, undegraded, job after job (a QA run's container was held to one
 * flush per 5 s by one undeletable chunk); once deletes work it goes. */
static void test_garbage_failing_does_not_hold_flushes(void **state)
{
	(void)state;
	struct fixture *x =
	        fx_new("faulty", "parent=mem\nfail_op=delete\nfail_nth=1",
	               (struct storage_writer_config){.flush_bytes = 1,
	                                              .backoff_min_ms = 1000,
	                                              .backoff_max_ms = 4000});
	uint64_t d = do_create(&x->f, "d").segment;
	append(x, d, 0, 4, 'a', 1);
	assert_int_equal(cycle(x, 1, 1, 1, false), 1);
	assert_int_equal(do_delete(&x->f, d).code, 0);
	assert_int_equal(container_fsm_garbage_count(&x->f), 1);
	uint64_t s = do_create(&x->f, "s").segment;
	uint64_t now = 10;
	for (int i = 0; i < 3; i++) {
		/* Each round flushes at once, though the delete failed. */
		append(x, s, (uint64_t)i, 4, (char)('b' + i), now);
		assert_int_equal(cycle(x, 1, 1, now, false), 1);
		assert_false(storage_writer_degraded(x->w));
		assert_int_equal(seg_of(x, s)->unflushed, 0);
		assert_int_equal(container_fsm_garbage_count(&x->f), 1);
		now += 1;
	}
	/* Past the deletes' back-off (1 s), the next job deletes it: a
	 * flush and a CHUNK_DELETED. */
	now += 1000;
	append(x, s, 3, 4, 'e', now);
	assert_int_equal(cycle(x, 1, 1, now, false), 2);
	assert_int_equal(container_fsm_garbage_count(&x->f), 0);
	fx_free(x);
}

/* The first job of a new owner generation sweeps the container's prefix:
 * unreferenced chunks of older generations go; referenced ones, chunks of
 * this or a newer generation, garbage and foreign names stay. */
static void test_orphan_sweep(void **state)
{
	(void)state;
	struct fixture *x = fx_new(
	        "mem", NULL, (struct storage_writer_config){.flush_bytes = 1});
	uint64_t s = do_create(&x->f, "s").segment;
	append(x, s, 0, 4, 'a', 1);
	assert_int_equal(cycle(x, 1, 1, 1, false), 1);
	assert_string_equal(seg_of(x, s)->extents[0].chunk, "c7/s1/t1-g1-o0-1");
	char errmsg[STRATA_ERRMSG_SIZE];
	static const char *const made[] = {
	        "c7/s1/t1-g1-o4-9",  /* orphan of generation 1 */
	        "c7/s9/t4-g4-o0-3",  /* orphan of generation 4 */
	        "c7/s2/t5-g5-o0-1",  /* this generation: kept */
	        "c7/s1/t9-g9-o0-1",  /* a newer owner's: kept */
	        "c7/s1/t1-g01-o0-1", /* not a name we make: kept */
	        "c7/junk",           /* foreign: kept */
	        "c70/s1/t1-g1-o0-1", /* container 70: kept */
	};
	for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
		assert_int_equal(tier2_create(x->t2, made[i], errmsg), 0);
	}
	uint64_t gen = 0;
	assert_true(storage_writer_chunk_gen(7, "c7/s1/t1-g1-o4-9", &gen));
	assert_int_equal(gen, 1);
	assert_false(storage_writer_chunk_gen(7, "c7/s1/t1-g01-o0-1", &gen));
	assert_false(storage_writer_chunk_gen(7, "c70/s1/t1-g1-o0-1", &gen));
	assert_false(storage_writer_chunk_gen(7, "c7/s1/t1-g1-o0-1x", &gen));
	/* Nothing is due but the sweep: the job runs for it alone. */
	assert_false(storage_writer_plan(x->w, &x->f, 5, 5, 2, false));
	assert_int_equal(storage_writer_set_owner(x->w, &x->f, 5), 0);
	assert_int_equal(cycle(x, 5, 5, 2, false), 0);
	struct strata_tier2_chunk_info info;
	assert_int_equal(tier2_stat(x->t2, "c7/s1/t1-g1-o0-1", &info, errmsg),
	                 0);
	assert_int_equal(tier2_stat(x->t2, made[0], &info, errmsg),
	                 STRATA_ENOENT);
	assert_int_equal(tier2_stat(x->t2, made[1], &info, errmsg),
	                 STRATA_ENOENT);
	for (size_t i = 2; i < sizeof(made) / sizeof(made[0]); i++) {
		assert_int_equal(tier2_stat(x->t2, made[i], &info, errmsg), 0);
	}
	check_tier2(x, s, 0, 4, 'a');
	/* Once done, the sweep does not run again. */
	assert_false(storage_writer_plan(x->w, &x->f, 5, 5, 3, false));
	fx_free(x);
}

/* After a merge the target's unflushed runs are flushed one at a time. */
static void test_flush_after_merge(void **state)
{
	(void)state;
	struct fixture *x = fx_new(
	        "mem", NULL, (struct storage_writer_config){.flush_bytes = 1});
	uint64_t t = do_create(&x->f, "t").segment;
	uint64_t s = do_create(&x->f, "s").segment;
	append(x, t, 0, 4, 't', 1);
	append(x, s, 0, 4, 's', 1);
	assert_int_equal(cycle(x, 1, 1, 1, false), 2); /* both segments */
	append(x, t, 1, 3, 'u', 1);
	append(x, s, 1, 3, 'v', 1);
	assert_int_equal(do_seal(&x->f, s).code, 0);
	assert_int_equal(do_merge(&x->f, t, s).code, 0);
	storage_writer_sweep(x->w, &x->f, 1);
	/* t = [chunk 4][mem 3][chunk 4][mem 3] */
	assert_int_equal(cycle(x, 1, 1, 1, false), 1);
	assert_int_equal(cycle(x, 1, 1, 1, false), 1);
	const struct segment *sg = seg_of(x, t);
	assert_int_equal(sg->unflushed, 0);
	check_tier2(x, t, 4, 3, 'u');
	check_tier2(x, t, 11, 3, 'v');
	check_tier2(x, t, 7, 4, 's');
	fx_free(x);
}

struct locker {
	struct storage_writer *w;
	atomic_int got;
};

static void *lock_thread(void *arg)
{
	struct locker *l = arg;
	assert_int_equal(storage_writer_lock_chunk(l->w, "c/x"), 0);
	atomic_store(&l->got, 1);
	storage_writer_unlock_chunk(l->w, "c/x");
	return NULL;
}

/* A chunk lock excludes a second holder until released; others pass. */
static void test_lock_chunk_excludes(void **state)
{
	(void)state;
	struct fixture *x =
	        fx_new("mem", NULL, (struct storage_writer_config){0});
	struct locker l = {.w = x->w};
	atomic_init(&l.got, 0);
	assert_int_equal(storage_writer_lock_chunk(x->w, "c/x"), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, lock_thread, &l), 0);
	assert_int_equal(storage_writer_lock_chunk(x->w, "c/y"), 0);
	storage_writer_unlock_chunk(x->w, "c/y");
	usleep(50000);
	assert_int_equal(atomic_load(&l.got), 0);
	storage_writer_unlock_chunk(x->w, "c/x");
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&l.got), 1);
	fx_free(x);
}

/* No tier 2 or no post callback is a configuration error. */
static void test_new_rejects_missing_parts(void **state)
{
	(void)state;
	char errmsg[STRATA_ERRMSG_SIZE];
	struct storage_writer *w = NULL;
	struct storage_writer_config wc = {0};
	assert_int_equal(storage_writer_new(&wc, &w, errmsg), STRATA_EINVAL);
	assert_non_null(strstr(errmsg, "tier 2"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_plan_flushes_by_size),
	        cmocka_unit_test(test_plan_waits_for_age_or_pressure),
	        cmocka_unit_test(test_plan_request_forces_flush),
	        cmocka_unit_test(test_chunk_continues_then_rolls),
	        cmocka_unit_test(test_new_term_new_chunk),
	        cmocka_unit_test(test_stale_term_adds_no_ops),
	        cmocka_unit_test(test_create_fails_then_resumes),
	        cmocka_unit_test(test_write_fails_chunk_kept),
	        cmocka_unit_test(test_write_lost_reply_abandons_chunk),
	        cmocka_unit_test(test_fail_file_degraded_then_resume),
	        cmocka_unit_test(test_garbage_deleted),
	        cmocka_unit_test(test_garbage_failing_does_not_hold_flushes),
	        cmocka_unit_test(test_garbage_failing_does_not_hold_others),
	        cmocka_unit_test(test_stuck_job_is_degraded),
	        cmocka_unit_test(test_orphan_sweep),
	        cmocka_unit_test(test_flush_after_merge),
	        cmocka_unit_test(test_lock_chunk_excludes),
	        cmocka_unit_test(test_new_rejects_missing_parts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
