/* Unit tests for client/batch.c against the fake cluster: segment ranges
 * between cuts across a scale, and the parallel reader. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "client/client_int.h"
#include "fake_cluster.h"
#include "strata/batch.h"
#include "strata/writer.h"

#define N_EVENTS 400

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

/* Write events i in [from, to) with 16 keys, flushed. */
static void write_range(struct strata_writer *w, int from, int to)
{
	char err[STRATA_ERRMSG_SIZE];
	for (int i = from; i < to; i++) {
		char key[16];
		char ev[32];
		snprintf(key, sizeof(key), "k%d", i % 16);
		int len = snprintf(ev, sizeof(ev), "%d", i);
		assert_int_equal(strata_writer_write(w, key, strlen(key), ev,
		                                     (size_t)len, NULL, NULL,
		                                     err),
		                 0);
	}
	assert_int_equal(strata_writer_flush(w, err), 0);
}

struct seen {
	pthread_mutex_t mu;
	unsigned char count[N_EVENTS];
	unsigned total;
};

static int seen_cb(void *arg, const struct strata_segment_range *r,
                   const uint8_t *data, size_t len, uint64_t offset)
{
	(void)r;
	(void)offset;
	struct seen *s = arg;
	char buf[32];
	memcpy(buf, data, len);
	buf[len] = '\0';
	int i = atoi(buf);
	pthread_mutex_lock(&s->mu);
	if (i >= 0 && i < N_EVENTS) {
		s->count[i]++;
	}
	s->total++;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* Head to tail across a split: the sealed segment whole, then its
 * successors; reading every range in parallel yields each event once. */
static void test_batch_list_ranges_across_scale(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_writer *w;
	assert_int_equal(strata_writer_new(fx->c, "sc", "st", NULL, &w, err),
	                 0);
	write_range(w, 0, 200);
	fake_split(fx->f, fake_segment_id(fx->f, 0));
	write_range(w, 200, N_EVENTS);
	assert_int_equal(strata_writer_close(w, err), 0);
	struct strata_segment_ranges *rg;
	assert_int_equal(strata_batch_list_ranges(fx->c, "sc", "st", NULL, NULL,
	                                          &rg, err),
	                 0);
	assert_int_equal(rg->n, 4);
	assert_int_equal(rg->ranges[0].segment_id, fake_segment_id(fx->f, 0));
	assert_int_equal(rg->ranges[0].start_offset, 0);
	assert_true(rg->ranges[2].segment_id >> 32 == 1);
	struct seen s = {.total = 0};
	pthread_mutex_init(&s.mu, NULL);
	assert_int_equal(strata_batch_read(fx->c, rg, 3, seen_cb, &s, err), 0);
	assert_int_equal(s.total, N_EVENTS);
	for (int i = 0; i < N_EVENTS; i++) {
		assert_int_equal(s.count[i], 1);
	}
	strata_segment_ranges_free(rg);
	pthread_mutex_destroy(&s.mu);
}

/* A merge of segments from different epochs: the merged segment is
 * listed after both predecessors (the walk meets it through the older
 * one first), so reading the ranges in order keeps every key's order. */
static void test_batch_list_ranges_merge_across_epochs(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_writer *w;
	assert_int_equal(strata_writer_new(fx->c, "sc", "st", NULL, &w, err),
	                 0);
	uint64_t s0 = fake_segment_id(fx->f, 0); /* [0, .5) */
	uint64_t s1 = fake_segment_id(fx->f, 1); /* [.5, 1) */
	write_range(w, 0, 100);
	fake_split(fx->f, s1); /* 2.1 [.5, .75), 3.1 */
	write_range(w, 100, 200);
	fake_split(fx->f, fake_segment_id(fx->f, 2)); /* 4.2 [.5, .625) */
	write_range(w, 200, 300);
	fake_merge(fx->f, s0, fake_segment_id(fx->f, 4)); /* 6.3 */
	write_range(w, 300, N_EVENTS);
	assert_int_equal(strata_writer_close(w, err), 0);
	assert_int_equal(fake_n_segments(fx->f), 7);
	struct strata_segment_ranges *rg;
	assert_int_equal(strata_batch_list_ranges(fx->c, "sc", "st", NULL, NULL,
	                                          &rg, err),
	                 0);
	size_t at_pred = rg->n, at_merged = rg->n;
	for (size_t i = 0; i < rg->n; i++) {
		if (i > 0) {
			assert_true(rg->ranges[i - 1].segment_id >> 32 <=
			            rg->ranges[i].segment_id >> 32);
		}
		if (rg->ranges[i].segment_id == fake_segment_id(fx->f, 4)) {
			at_pred = i;
		}
		if (rg->ranges[i].segment_id == fake_segment_id(fx->f, 6)) {
			at_merged = i;
		}
	}
	assert_true(at_pred < at_merged && at_merged < rg->n);
	/* Read in order: each key's events rise. */
	int last[16];
	memset(last, -1, sizeof(last));
	unsigned total = 0;
	for (size_t i = 0; i < rg->n; i++) {
		struct strata_event_iter *it;
		assert_int_equal(strata_batch_range_iter(fx->c, &rg->ranges[i],
		                                         &it, err),
		                 0);
		struct strata_event ev;
		for (;;) {
			assert_int_equal(
			        strata_event_iter_next(it, 1000, &ev, err), 0);
			if (ev.end) {
				break;
			}
			assert_non_null(ev.data);
			char buf[32];
			memcpy(buf, ev.data, ev.len);
			buf[ev.len] = '\0';
			int n = atoi(buf);
			assert_true(n > last[n % 16]);
			last[n % 16] = n;
			total++;
		}
		strata_event_iter_free(it);
	}
	assert_int_equal(total, N_EVENTS);
	strata_segment_ranges_free(rg);
}

/* Between two cuts only the bytes between them are listed; a cut of
 * another stream and an end before the start are refused. */
static void test_batch_list_ranges_between_cuts(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_writer *w;
	assert_int_equal(strata_writer_new(fx->c, "sc", "st", NULL, &w, err),
	                 0);
	write_range(w, 0, 100);
	struct strata_stream_cut from = STRATA_STREAM_CUT_INIT;
	char text[128];
	size_t l0;
	size_t l1;
	fake_segment_data(fx->f, 0, &l0);
	fake_segment_data(fx->f, 1, &l1);
	snprintf(text, sizeof(text), "sc/st:0.0=%zu,1.0=%zu", l0, l1);
	assert_int_equal(strata_stream_cut_parse(text, &from, err), 0);
	write_range(w, 100, 200);
	assert_int_equal(strata_writer_close(w, err), 0);
	struct strata_segment_ranges *rg;
	assert_int_equal(strata_batch_list_ranges(fx->c, "sc", "st", &from,
	                                          NULL, &rg, err),
	                 0);
	assert_int_equal(rg->n, 2);
	assert_int_equal(rg->ranges[0].start_offset, l0);
	struct seen s = {.total = 0};
	pthread_mutex_init(&s.mu, NULL);
	assert_int_equal(strata_batch_read(fx->c, rg, 0, seen_cb, &s, err), 0);
	assert_int_equal(s.total, 100);
	for (int i = 100; i < 200; i++) {
		assert_int_equal(s.count[i], 1);
	}
	strata_segment_ranges_free(rg);
	pthread_mutex_destroy(&s.mu);
	/* to before from */
	struct strata_stream_cut to = STRATA_STREAM_CUT_INIT;
	assert_int_equal(strata_stream_cut_parse("sc/st:0.0=0,1.0=0", &to, err),
	                 0);
	assert_int_equal(strata_batch_list_ranges(fx->c, "sc", "st", &from, &to,
	                                          &rg, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "before"));
	strata_stream_cut_clear(&to);
	assert_int_equal(strata_stream_cut_parse("sc/other:0.0=0", &to, err),
	                 0);
	assert_int_equal(strata_batch_list_ranges(fx->c, "sc", "st", &to, NULL,
	                                          &rg, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "sc/other"));
	strata_stream_cut_clear(&to);
	strata_stream_cut_clear(&from);
}

static int stop_cb(void *arg, const struct strata_segment_range *r,
                   const uint8_t *data, size_t len, uint64_t offset)
{
	(void)arg;
	(void)r;
	(void)data;
	(void)len;
	(void)offset;
	return 42;
}

/* A callback's non-zero return stops the read and is returned. */
static void test_batch_read_stops(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_writer *w;
	assert_int_equal(strata_writer_new(fx->c, "sc", "st", NULL, &w, err),
	                 0);
	write_range(w, 0, 50);
	assert_int_equal(strata_writer_close(w, err), 0);
	struct strata_segment_ranges *rg;
	assert_int_equal(strata_batch_list_ranges(fx->c, "sc", "st", NULL, NULL,
	                                          &rg, err),
	                 0);
	assert_int_equal(strata_batch_read(fx->c, rg, 2, stop_cb, NULL, err),
	                 42);
	strata_segment_ranges_free(rg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                test_batch_list_ranges_across_scale, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_batch_list_ranges_between_cuts, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_batch_list_ranges_merge_across_epochs, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_batch_read_stops, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests_name("batch", tests, NULL, NULL);
}
