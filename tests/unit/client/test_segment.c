/* Unit tests for client/segment.c against the fake cluster: raw reads,
 * the event iterator, revisioned segments. */
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
#include "strata/segment.h"
#include "strata/writer.h"

#define SEG0 "sc/st/0.#epoch.0"

static int setup(void **state)
{
	*state = fake_fixture_new(1);
	return *state != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	fake_fixture_free(*state);
	return 0;
}

/* Write n events "e<i>" (one key) and wait. */
static void write_n(struct fake_fixture *fx, int n)
{
	struct strata_writer *w;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(strata_writer_new(fx->c, "sc", "st", NULL, &w, err),
	                 0);
	for (int i = 0; i < n; i++) {
		char ev[32];
		int len = snprintf(ev, sizeof(ev), "e%d", i);
		assert_int_equal(strata_writer_write(w, "k", 1, ev, (size_t)len,
		                                     NULL, NULL, err),
		                 0);
	}
	assert_int_equal(strata_writer_close(w, err), 0);
}

/* Read-ahead: data appended after a read ahead found the tail is still
 * read (the empty read ahead is dropped, not taken for the answer), and
 * an iterator freed with a read ahead in flight waits for it. */
static void test_event_iter_read_ahead_sees_new_data(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_event_iter *it;
	struct strata_event ev;
	write_n(fx, 20);
	assert_int_equal(
	        strata_event_iter_new(fx->c, SEG0, 0, UINT64_MAX, 16, &it, err),
	        0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(strata_event_iter_next(it, 0, &ev, err), 0);
		assert_non_null(ev.data);
	}
	assert_int_equal(strata_event_iter_next(it, 0, &ev, err), 0);
	assert_null(ev.data);
	write_n(fx, 5); /* "e0".."e4" again, after the 20 */
	for (int i = 0; i < 5; i++) {
		char want[32];
		int len = snprintf(want, sizeof(want), "e%d", i);
		assert_int_equal(strata_event_iter_next(it, 1000, &ev, err), 0);
		assert_non_null(ev.data);
		assert_memory_equal(ev.data, want, (size_t)len);
	}
	strata_event_iter_free(it);
	/* Freed right after the first event: its read ahead is in flight. */
	for (int round = 0; round < 20; round++) {
		assert_int_equal(strata_event_iter_new(fx->c, SEG0, 0,
		                                       UINT64_MAX, 8, &it, err),
		                 0);
		assert_int_equal(strata_event_iter_next(it, 0, &ev, err), 0);
		assert_non_null(ev.data);
		strata_event_iter_free(it);
	}
}

/* Reads that come back short (the store stops at extent ends) leave gaps
 * between the reads started ahead: the iterator reads each gap itself
 * and still returns every event once, in order. */
static void test_event_iter_next_fills_short_read_gaps(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_event_iter *it;
	struct strata_event ev;
	write_n(fx, 200);
	fake_clip_reads(fx->f, 37);
	assert_int_equal(
	        strata_event_iter_new(fx->c, SEG0, 0, UINT64_MAX, 16, &it, err),
	        0);
	uint64_t next = 0;
	for (int i = 0; i < 200; i++) {
		char want[32];
		int len = snprintf(want, sizeof(want), "e%d", i);
		assert_int_equal(strata_event_iter_next(it, 1000, &ev, err), 0);
		assert_non_null(ev.data);
		assert_int_equal(ev.offset, next);
		assert_int_equal(ev.len, (size_t)len);
		assert_memory_equal(ev.data, want, (size_t)len);
		next = ev.next_offset;
	}
	assert_int_equal(strata_event_iter_next(it, 0, &ev, err), 0);
	assert_null(ev.data);
	strata_event_iter_free(it);
	fake_clip_reads(fx->f, 0);
}

/* Reads ahead stop at the segment length the store reported: a reader
 * that reaches the tail asks for no offset beyond it, and a read result
 * carries that length. */
static void test_event_iter_reads_ahead_within_length(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_event_iter *it;
	struct strata_event ev;
	write_n(fx, 200);
	struct strata_read_result r;
	assert_int_equal(strata_segment_read(fx->c, SEG0, 0, 16, 0, &r, err),
	                 0);
	uint64_t length = r.length;
	assert_true(length > 16);
	strata_read_result_release(&r);
	assert_int_equal(
	        strata_event_iter_new(fx->c, SEG0, 0, UINT64_MAX, 16, &it, err),
	        0);
	int got = 0;
	for (;;) {
		assert_int_equal(strata_event_iter_next(it, 0, &ev, err), 0);
		if (ev.data == NULL) {
			break;
		}
		got++;
	}
	assert_int_equal(got, 200);
	assert_int_equal(strata_event_iter_position(it), length);
	strata_event_iter_free(it);
	assert_int_equal(fake_reads_beyond(fx->f), 0);
}

/* The iterator reassembles events from tiny reads, reports "nothing yet"
 * at the tail of an open segment and "end" once it is sealed. */
static void test_event_iter_next_reassembles(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_event_iter *it;
	struct strata_event ev;
	write_n(fx, 50);
	assert_int_equal(
	        strata_event_iter_new(fx->c, SEG0, 0, UINT64_MAX, 3, &it, err),
	        0);
	for (int i = 0; i < 50; i++) {
		char want[32];
		int len = snprintf(want, sizeof(want), "e%d", i);
		assert_int_equal(strata_event_iter_next(it, 0, &ev, err), 0);
		assert_non_null(ev.data);
		assert_int_equal(ev.len, (size_t)len);
		assert_memory_equal(ev.data, want, (size_t)len);
		assert_int_equal(ev.next_offset, ev.offset + 4 + ev.len);
	}
	assert_int_equal(strata_event_iter_next(it, 0, &ev, err), 0);
	assert_null(ev.data);
	assert_false(ev.end);
	uint64_t len;
	assert_int_equal(strata_segment_seal(fx->c, SEG0, &len, err), 0);
	assert_int_equal(strata_event_iter_position(it), len);
	assert_int_equal(strata_event_iter_next(it, 0, &ev, err), 0);
	assert_true(ev.end);
	strata_event_iter_free(it);
}

/* A bounded iterator stops at its end offset. */
static void test_event_iter_next_bounded(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_event_iter *it;
	struct strata_event ev;
	write_n(fx, 10); /* "e0".."e9": 6 bytes each framed */
	assert_int_equal(
	        strata_event_iter_new(fx->c, SEG0, 12, 30, 0, &it, err), 0);
	int n = 0;
	for (;;) {
		assert_int_equal(strata_event_iter_next(it, 0, &ev, err), 0);
		if (ev.end) {
			break;
		}
		assert_non_null(ev.data);
		n++;
	}
	assert_int_equal(n, 3);
	strata_event_iter_free(it);
}

/* Raw reads return bytes, at_tail, and ETRUNCATED with the start. */
static void test_segment_read_truncated(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_read_result r;
	struct strata_segment_stat st;
	write_n(fx, 4);
	assert_int_equal(strata_segment_read(fx->c, SEG0, 0, 1000, 0, &r, err),
	                 0);
	assert_int_equal(r.len, 24);
	assert_true(r.at_tail);
	assert_false(r.end_of_segment);
	strata_read_result_release(&r);
	assert_int_equal(strata_segment_truncate(fx->c, SEG0, 12, err), 0);
	assert_int_equal(strata_segment_get_stat(fx->c, SEG0, &st, err), 0);
	assert_int_equal(st.start_offset, 12);
	assert_int_equal(st.length, 24);
	assert_int_equal(strata_segment_read(fx->c, SEG0, 0, 1000, 0, &r, err),
	                 STRATA_ETRUNCATED);
	assert_int_equal(r.start_offset, 12);
	strata_read_result_release(&r);
}

/* An iterator overtaken by a truncation says what it lost once and goes
 * on from the new start. */
static void test_event_iter_overtaken_by_truncation(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_event_iter *it;
	struct strata_event ev;
	write_n(fx, 4); /* 6 bytes each */
	assert_int_equal(
	        strata_event_iter_new(fx->c, SEG0, 0, UINT64_MAX, 0, &it, err),
	        0);
	assert_int_equal(strata_segment_truncate(fx->c, SEG0, 12, err), 0);
	assert_int_equal(strata_event_iter_next(it, 0, &ev, err),
	                 STRATA_ETRUNCATED);
	assert_int_equal(ev.offset, 0);
	assert_int_equal(ev.next_offset, 12);
	assert_non_null(strstr(err, "bytes 0..12 were truncated"));
	assert_int_equal(strata_event_iter_position(it), 12);
	assert_int_equal(strata_event_iter_next(it, 0, &ev, err), 0);
	assert_int_equal(ev.offset, 12);
	assert_memory_equal(ev.data, "e2", 2);
	assert_int_equal(strata_event_iter_next(it, 0, &ev, err), 0);
	assert_memory_equal(ev.data, "e3", 2);
	strata_event_iter_free(it);
	/* One that ends before the new start loses only its own bytes. */
	assert_int_equal(strata_event_iter_new(fx->c, SEG0, 6, 12, 0, &it, err),
	                 0);
	assert_int_equal(strata_segment_truncate(fx->c, SEG0, 18, err), 0);
	assert_int_equal(strata_event_iter_next(it, 0, &ev, err),
	                 STRATA_ETRUNCATED);
	assert_int_equal(ev.offset, 6);
	assert_int_equal(ev.next_offset, 12);
	assert_int_equal(strata_event_iter_next(it, 0, &ev, err), 0);
	assert_true(ev.end);
	strata_event_iter_free(it);
}

struct async_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int code;
	size_t len;
};

static void async_cb(void *arg, int code, const char *errmsg,
                     struct strata_read_result *result)
{
	(void)errmsg;
	struct async_wait *a = arg;
	pthread_mutex_lock(&a->mu);
	a->code = code;
	a->len = result->len;
	strata_read_result_release(result);
	a->done = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

/* An async read completes once with the data. */
static void test_segment_read_async_completes(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct async_wait a = {.done = false};
	pthread_mutex_init(&a.mu, NULL);
	pthread_cond_init(&a.cv, NULL);
	write_n(fx, 2);
	assert_int_equal(strata_segment_read_async(fx->c, SEG0, 0, 100, 0,
	                                           async_cb, &a, err),
	                 0);
	pthread_mutex_lock(&a.mu);
	while (!a.done) {
		pthread_cond_wait(&a.cv, &a.mu);
	}
	pthread_mutex_unlock(&a.mu);
	assert_int_equal(a.code, 0);
	assert_int_equal(a.len, 12);
	pthread_cond_destroy(&a.cv);
	pthread_mutex_destroy(&a.mu);
}

/* Conditional appends: the stale revision conflicts and reports the
 * current one; a lost acknowledgement is retried exactly once. */
static void test_rsegment_append_conditional(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_rsegment *a;
	struct strata_rsegment *b;
	uint64_t rev = 0;
	assert_int_equal(strata_rsegment_open(fx->c, SEG0, &a, err), 0);
	assert_int_equal(strata_rsegment_open(fx->c, SEG0, &b, err), 0);
	assert_string_equal(strata_rsegment_name(a), SEG0);
	assert_int_equal(strata_rsegment_append(a, 0, "one", 3, &rev, err), 0);
	assert_int_equal(rev, 7);
	uint64_t cur = 0;
	assert_int_equal(strata_rsegment_append(b, 0, "two", 3, &cur, err),
	                 STRATA_ECONFLICT);
	assert_int_equal(cur, 7);
	fake_lose_acks(fx->f, 1);
	assert_int_equal(strata_rsegment_append(b, cur, "two", 3, &rev, err),
	                 0);
	assert_true(fake_duplicates(fx->f) >= 1);
	uint64_t start;
	assert_int_equal(strata_rsegment_revision(a, &rev, &start, err), 0);
	assert_int_equal(rev, 14); /* exactly two events */
	assert_int_equal(start, 0);
	uint64_t off;
	assert_int_equal(strata_rsegment_append_any(a, "3", 1, &off, err), 0);
	assert_int_equal(off, 14);
	assert_int_equal(strata_rsegment_truncate(a, 7, err), 0);
	assert_int_equal(strata_rsegment_revision(a, &rev, &start, err), 0);
	assert_int_equal(start, 7);
	strata_rsegment_close(a);
	strata_rsegment_close(b);
}

/* A name that is not a qualified segment name is refused locally. */
static void test_rsegment_open_bad_name(void **state)
{
	struct fake_fixture *fx = *state;
	char err[STRATA_ERRMSG_SIZE];
	struct strata_rsegment *a = NULL;
	assert_int_equal(strata_rsegment_open(fx->c, "sc/st", &a, err),
	                 STRATA_EBADNAME);
	assert_non_null(strstr(err, "sc/st"));
	assert_int_equal(
	        strata_rsegment_open(fx->c, "sc/st/9.#epoch.0", &a, err),
	        STRATA_ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                test_event_iter_overtaken_by_truncation, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_event_iter_next_reassembles, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_event_iter_next_fills_short_read_gaps, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_event_iter_reads_ahead_within_length, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_event_iter_read_ahead_sees_new_data, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(test_event_iter_next_bounded,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_segment_read_truncated,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_segment_read_async_completes, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_rsegment_append_conditional, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_rsegment_open_bad_name,
	                                        setup, teardown),
	};
	return cmocka_run_group_tests_name("segment", tests, NULL, NULL);
}
