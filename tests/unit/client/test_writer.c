/* Unit tests for client/writer.c against the in-process fake cluster:
 * exactly-once under failures, per-key order across scaling, limits. */
#include <stdarg.h>
#include <stdatomic.h>
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
#include "strata/writer.h"

#define KEYS 8

struct fixture {
	struct fake_cluster *f;
	struct strata_client *c;
	atomic_uint acked;
	atomic_uint failed;
	atomic_int last_code;
};

static struct fixture *fixture_new(unsigned segments)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	fx->f = fake_new(segments);
	fx->c = fake_client(fx->f, 5000);
	assert_non_null(fx->c);
	return fx;
}

static void fixture_free(struct fixture *fx)
{
	strata_client_free(fx->c);
	fake_free(fx->f);
	free(fx);
}

static void count_cb(void *arg, int code, const char *errmsg)
{
	(void)errmsg;
	struct fixture *fx = arg;
	if (code == 0) {
		atomic_fetch_add(&fx->acked, 1);
	} else {
		atomic_fetch_add(&fx->failed, 1);
		atomic_store(&fx->last_code, code);
	}
}

/* A writer on sc/st (cfg NULL: the defaults). */
static struct strata_writer *open_writer(struct fixture *fx,
                                         const struct strata_writer_config *cfg)
{
	struct strata_writer *w = NULL;
	char err[STRATA_ERRMSG_SIZE];
	if (strata_writer_new(fx->c, "sc", "st", cfg, &w, err) != 0) {
		fail_msg("strata_writer_new: %s", err);
	}
	return w;
}

/* Flush w: no failure, and n events acknowledged in all. */
static void flush_acked(struct fixture *fx, struct strata_writer *w, unsigned n)
{
	char err[STRATA_ERRMSG_SIZE];
	if (strata_writer_flush(w, err) != 0) {
		fail_msg("strata_writer_flush: %s", err);
	}
	assert_int_equal(atomic_load(&fx->acked), n);
}

/* Write n events "k<key>:<seq>" for KEYS keys, seq per key. */
static void write_events(struct fixture *fx, struct strata_writer *w,
                         unsigned from, unsigned n, unsigned *seqs)
{
	char err[STRATA_ERRMSG_SIZE];
	for (unsigned i = from; i < from + n; i++) {
		unsigned k = i % KEYS;
		char key[16];
		char payload[64];
		snprintf(key, sizeof(key), "key-%u", k);
		int len = snprintf(payload, sizeof(payload), "k%u:%u", k,
		                   seqs[k]++);
		assert_int_equal(strata_writer_write(w, key, strlen(key),
		                                     payload, (size_t)len,
		                                     count_cb, fx, err),
		                 0);
	}
}

static int cmp_epoch(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;
	/* (epoch, number) order == id order */
	return x < y ? -1 : x > y ? 1 : 0;
}

/* Every event exactly once, and each key's events in order, reading the
 * segments epoch by epoch (a key lives in one segment per epoch). */
static void verify(struct fake_cluster *f, const unsigned *seqs)
{
	size_t n = fake_n_segments(f);
	uint64_t ids[64];
	unsigned next[KEYS] = {0};
	for (size_t i = 0; i < n; i++) {
		ids[i] = fake_segment_id(f, i);
	}
	qsort(ids, n, sizeof(*ids), cmp_epoch);
	for (size_t j = 0; j < n; j++) {
		size_t i = 0;
		while (fake_segment_id(f, i) != ids[j]) {
			i++;
		}
		size_t len;
		const uint8_t *d = fake_segment_data(f, i, &len);
		size_t off = 0;
		while (off < len) {
			assert_true(off + 4 <= len);
			uint32_t l = (uint32_t)d[off] |
			             (uint32_t)d[off + 1] << 8 |
			             (uint32_t)d[off + 2] << 16 |
			             (uint32_t)d[off + 3] << 24;
			assert_true(off + 4 + l <= len);
			char ev[64];
			memcpy(ev, d + off + 4, l);
			ev[l] = '\0';
			unsigned k;
			unsigned s;
			assert_int_equal(sscanf(ev, "k%u:%u", &k, &s), 2);
			assert_true(k < KEYS);
			if (s != next[k]) {
				fail_msg("key %u: got seq %u, expected %u "
				         "(segment %zu)",
				         k, s, next[k], j);
			}
			next[k]++;
			off += 4 + l;
		}
	}
	for (unsigned k = 0; k < KEYS; k++) {
		assert_int_equal(next[k], seqs[k]);
	}
}

/* Close w (no error), check every event exactly once and in key order,
 * and free the fixture: the end of most tests. */
static void close_verify_free(struct fixture *fx, struct strata_writer *w,
                              const unsigned *seqs)
{
	char err[STRATA_ERRMSG_SIZE];
	if (strata_writer_close(w, err) != 0) {
		fail_msg("strata_writer_close: %s", err);
	}
	verify(fx->f, seqs);
	fixture_free(fx);
}

/* All events are acknowledged once, in order per key, over 3 segments. */
static void test_writer_write_basic_exactly_once(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(3);
	struct strata_writer *w;
	unsigned seqs[KEYS] = {0};
	w = open_writer(fx, NULL);
	write_events(fx, w, 0, 2000, seqs);
	flush_acked(fx, w, 2000);
	assert_int_equal(atomic_load(&fx->failed), 0);
	close_verify_free(fx, w, seqs);
}

/* Injected unavailability and lost acks are retried without loss or
 * duplicates (the store deduplicates the resent blocks). */
static void test_writer_write_retries_exactly_once(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(2);
	struct strata_writer *w;
	struct strata_writer_config cfg;
	unsigned seqs[KEYS] = {0};
	strata_writer_config_default(&cfg);
	cfg.max_batch_bytes = 64; /* many small blocks in flight */
	w = open_writer(fx, &cfg);
	write_events(fx, w, 0, 300, seqs);
	fake_lose_acks(fx->f, 5);
	write_events(fx, w, 300, 300, seqs);
	fake_fail_appends(fx->f, 4, STRATA_EUNAVAIL);
	write_events(fx, w, 600, 300, seqs);
	fake_fail_appends(fx->f, 3, STRATA_EWRONGHOST);
	write_events(fx, w, 900, 300, seqs);
	flush_acked(fx, w, 1200);
	assert_int_equal(atomic_load(&fx->failed), 0);
	struct strata_writer_stats st;
	strata_writer_get_stats(w, &st);
	assert_true(st.resyncs > 0);
	close_verify_free(fx, w, seqs);
}

/* A segment split while events are in flight: pending events move to the
 * successors and every key keeps its order. */
static void test_writer_write_follows_successors(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(2);
	struct strata_writer *w;
	struct strata_writer_config cfg;
	char err[STRATA_ERRMSG_SIZE];
	unsigned seqs[KEYS] = {0};
	strata_writer_config_default(&cfg);
	cfg.max_batch_bytes = 128;
	w = open_writer(fx, &cfg);
	write_events(fx, w, 0, 500, seqs);
	fake_split(fx->f, fake_segment_id(fx->f, 0));
	write_events(fx, w, 500, 500, seqs);
	fake_lose_acks(fx->f, 2);
	fake_split(fx->f, fake_segment_id(fx->f, 1));
	write_events(fx, w, 1000, 500, seqs);
	flush_acked(fx, w, 1500);
	assert_int_equal(atomic_load(&fx->failed), 0);
	struct strata_writer_stats st;
	strata_writer_get_stats(w, &st);
	print_message("reroutes %llu resyncs %llu dups %llu blocks %llu\n",
	              (unsigned long long)st.reroutes,
	              (unsigned long long)st.resyncs,
	              (unsigned long long)st.duplicates,
	              (unsigned long long)st.blocks_sent);
	assert_int_equal(strata_writer_close(w, err), 0);
	assert_int_equal(fake_n_segments(fx->f), 6);
	verify(fx->f, seqs);
	/* Successors got data. */
	size_t len;
	fake_segment_data(fx->f, 5, &len);
	assert_true(len > 0);
	fixture_free(fx);
}

/* A writer on fx (blocks of batch bytes, retry_timeout_ms retry_ms; 0:
 * the defaults) that wrote events 0..n and had them acknowledged. */
static struct strata_writer *writer_after(struct fixture *fx, size_t batch,
                                          int retry_ms, unsigned n,
                                          unsigned *seqs)
{
	struct strata_writer_config cfg;
	strata_writer_config_default(&cfg);
	if (batch != 0) {
		cfg.max_batch_bytes = batch;
	}
	if (retry_ms != 0) {
		cfg.retry_timeout_ms = retry_ms;
	}
	struct strata_writer *w = open_writer(fx, &cfg);
	write_events(fx, w, 0, n, seqs);
	flush_acked(fx, w, n);
	return w;
}

/* Wait up to 5 s until n events are acknowledged (and, when failed_too,
 * counting the failed ones). */
static void wait_resolved(struct fixture *fx, unsigned n, bool failed_too)
{
	for (int i = 0; i < 500; i++) {
		unsigned got = atomic_load(&fx->acked) +
		               (failed_too ? atomic_load(&fx->failed) : 0);
		if (got >= n) {
			return;
		}
		nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
	}
}

/* A split answered first by a controller replica that has not applied
 * it (the sealed segment still current, the stream not sealed): the
 * writer asks again instead of taking the stream for sealed, and every
 * event lands in the successors. */
static void test_writer_stale_current_segments(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(2);
	unsigned seqs[KEYS] = {0};
	struct strata_writer *w = writer_after(fx, 128, 0, 300, seqs);
	fake_stale_current(fx->f, 3);
	fake_split(fx->f, fake_segment_id(fx->f, 0));
	write_events(fx, w, 300, 300, seqs);
	flush_acked(fx, w, 600);
	assert_int_equal(atomic_load(&fx->failed), 0);
	assert_int_equal(fake_stale_current_left(fx->f), 0);
	close_verify_free(fx, w, seqs);
}

/* A segment taken for the stream's end (every answer until the retry
 * timeout came from before its scale) that a later answer shows retired
 * retires: the successors created blocked by it get their events. They
 * used to wait for it for ever, and the writer's flush and close hung. */
static void test_writer_dead_segment_retires_later(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(2);
	char err[STRATA_ERRMSG_SIZE];
	unsigned seqs[KEYS] = {0};
	/* 1.5 s: a loaded machine stays within it */
	struct strata_writer *w = writer_after(fx, 128, 1500, 100, seqs);
	fake_stale_current(fx->f, 1000);
	fake_split(fx->f, fake_segment_id(fx->f, 0));
	write_events(fx, w, 100, 100, seqs);
	(void)strata_writer_flush(w, err); /* segment 0's events fail */
	assert_true(atomic_load(&fx->failed) > 0);
	fake_stale_current(fx->f, 0);
	fake_split(fx->f, fake_segment_id(fx->f, 1));
	/* These go to the dead segment (failed) or to the sealed one,
	 * whose refresh now shows segment 0 retired too. */
	unsigned done = atomic_load(&fx->acked) + atomic_load(&fx->failed);
	write_events(fx, w, 200, 100, seqs);
	wait_resolved(fx, done + 100, true);
	/* Every key now goes to a successor: all are written. */
	unsigned acked = atomic_load(&fx->acked);
	write_events(fx, w, 300, 100, seqs);
	wait_resolved(fx, acked + 100, false);
	assert_int_equal(atomic_load(&fx->acked), acked + 100);
	(void)strata_writer_close(w, err); /* reports the earlier failure */
	fixture_free(fx);
}

/* A writer idle while its segment was scaled and then deleted by a
 * truncation meets "no such segment": that segment retires like a
 * sealed one, and the events go to its successors. They used to fail
 * with STRATA_ENOENT on a stream that is not sealed. */
static void test_writer_segment_deleted_while_idle(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(2);
	unsigned seqs[KEYS] = {0};
	struct strata_writer *w = writer_after(fx, 0, 0, 100, seqs);
	uint64_t old = fake_segment_id(fx->f, 0);
	fake_split(fx->f, old);
	fake_delete_segment(fx->f, old);
	write_events(fx, w, 100, 200, seqs);
	flush_acked(fx, w, 300);
	assert_int_equal(atomic_load(&fx->failed), 0);
	close_verify_free(fx, w, seqs);
}

/* A segment that kept failing past retry_timeout_ms fails its events and
 * the writer takes no more: a later event of their keys written after
 * them would leave a hole in the key's order. */
static void test_writer_retry_timeout_breaks_writer(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(1);
	char err[STRATA_ERRMSG_SIZE];
	unsigned seqs[KEYS] = {0};
	struct strata_writer *w = writer_after(fx, 0, 300, 10, seqs);
	fake_fail_appends(fx->f, 100000, STRATA_EUNAVAIL);
	write_events(fx, w, 10, 10, seqs);
	assert_int_equal(strata_writer_flush(w, err), STRATA_EUNAVAIL);
	assert_int_equal(atomic_load(&fx->failed), 10);
	fake_fail_appends(fx->f, 0, 0);
	assert_int_equal(strata_writer_write(w, "key-0", 5, "k0:99", 5,
	                                     count_cb, fx, err),
	                 STRATA_EUNAVAIL);
	assert_non_null(strstr(err, "takes no more events"));
	(void)strata_writer_close(w, err);
	fixture_free(fx);
}

/* Under back-pressure the store refuses the next block and fails the
 * blocks pipelined behind it for their event numbers; when the retry
 * timeout runs out the writer reports the back-pressure, the cause, not
 * the event numbers (a QA run read "events 5822..5999 do not follow the
 * writer's last event number 3733 ...; set up the append again"). */
static void test_writer_retry_timeout_keeps_the_cause(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(1);
	char err[STRATA_ERRMSG_SIZE];
	unsigned seqs[KEYS] = {0};
	struct strata_writer *w = writer_after(fx, 16, 300, 10, seqs);
	fake_refuse_in_order(fx->f, STRATA_EAGAIN);
	write_events(fx, w, 10, 40, seqs);
	assert_int_equal(strata_writer_flush(w, err), STRATA_EAGAIN);
	assert_non_null(strstr(err, "fake: refused STRATA_EAGAIN"));
	assert_null(strstr(err, "fake: event"));
	fake_refuse_in_order(fx->f, 0);
	(void)strata_writer_close(w, err);
	fixture_free(fx);
}

/* Writing to a sealed stream fails with STRATA_ESEALED. */
static void test_writer_write_sealed_stream(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(1);
	struct strata_writer *w;
	char err[STRATA_ERRMSG_SIZE];
	w = open_writer(fx, NULL);
	assert_int_equal(strata_writer_write_sync(w, "a", 1, "x", 1, err), 0);
	fake_seal_stream(fx->f);
	assert_int_equal(strata_writer_write_sync(w, "a", 1, "y", 1, err),
	                 STRATA_ESEALED);
	assert_non_null(strstr(err, "sealed"));
	assert_int_equal(strata_writer_close(w, err), STRATA_ESEALED);
	fixture_free(fx);
}

/* An event over max_event_bytes is refused at once with a clear message. */
static void test_writer_write_too_big(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(1);
	struct strata_writer *w;
	struct strata_writer_config cfg;
	char err[STRATA_ERRMSG_SIZE];
	static char big[2048];
	strata_writer_config_default(&cfg);
	cfg.max_event_bytes = 1024;
	w = open_writer(fx, &cfg);
	assert_int_equal(strata_writer_write(w, NULL, 0, big, sizeof(big), NULL,
	                                     NULL, err),
	                 STRATA_ETOOBIG);
	assert_non_null(strstr(err, "max_event_bytes"));
	assert_int_equal(strata_writer_close(w, err), 0);
	fixture_free(fx);
}

/* A block the store refuses for good (STRATA_ETOOBIG) fails its events
 * and every event after them, so no key's order gets a hole: the writer
 * takes no more, and a new writer goes on. */
static void test_writer_refused_block_fails_the_rest(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(1);
	struct strata_writer_config cfg;
	char err[STRATA_ERRMSG_SIZE];
	strata_writer_config_default(&cfg);
	cfg.max_batch_bytes = 16; /* a block per event or two */
	struct strata_writer *w = open_writer(fx, &cfg);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(strata_writer_write(w, "k", 1, "ok", 2,
		                                     count_cb, fx, err),
		                 0);
	}
	assert_int_equal(strata_writer_flush(w, err), 0);
	assert_int_equal(atomic_load(&fx->acked), 5);
	fake_fail_appends(fx->f, 1, STRATA_ETOOBIG);
	/* Once the refusal came back (it may, before the loop ends), the
	 * writer takes no more: those are refused at once. */
	unsigned queued = 0;
	for (int i = 0; i < 6; i++) {
		int rc = strata_writer_write(w, "k", 1, "no", 2, count_cb, fx,
		                             err);
		if (rc == 0) {
			queued++;
		} else {
			assert_int_equal(rc, STRATA_ETOOBIG);
		}
	}
	assert_true(queued >= 1);
	assert_int_not_equal(strata_writer_flush(w, err), 0);
	assert_int_equal(atomic_load(&fx->acked), 5);
	assert_int_equal(atomic_load(&fx->failed), queued);
	assert_int_equal(atomic_load(&fx->last_code), STRATA_ETOOBIG);
	/* This writer refuses later events; a new one takes them. */
	assert_int_equal(
	        strata_writer_write(w, "k", 1, "no", 2, count_cb, fx, err),
	        STRATA_ETOOBIG);
	assert_non_null(strstr(err, "create a new one"));
	assert_int_equal(strata_writer_close(w, err), 0);
	w = open_writer(fx, &cfg);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(strata_writer_write(w, "k", 1, "ok", 2,
		                                     count_cb, fx, err),
		                 0);
	}
	assert_int_equal(strata_writer_flush(w, err), 0);
	assert_int_equal(atomic_load(&fx->acked), 8);
	size_t len;
	const uint8_t *d = fake_segment_data(fx->f, 0, &len);
	assert_int_equal(len, 8 * 6); /* 8 framed events of 2 bytes */
	for (size_t off = 0; off < len; off += 6) {
		assert_memory_equal(d + off + 4, "ok", 2);
	}
	assert_int_equal(strata_writer_close(w, err), 0);
	fixture_free(fx);
}

/* A full window answers STRATA_EAGAIN when blocking is off; the events
 * go through once the store accepts again. */
static void test_writer_write_window_full(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(1);
	struct strata_writer *w;
	struct strata_writer_config cfg;
	char err[STRATA_ERRMSG_SIZE];
	strata_writer_config_default(&cfg);
	cfg.max_inflight_events = 4;
	cfg.block_when_full = false;
	fake_fail_appends(fx->f, 1000000, STRATA_EAGAIN);
	w = open_writer(fx, &cfg);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(strata_writer_write(w, "k", 1, "v", 1,
		                                     count_cb, fx, err),
		                 0);
	}
	assert_int_equal(
	        strata_writer_write(w, "k", 1, "v", 1, count_cb, fx, err),
	        STRATA_EAGAIN);
	assert_non_null(strstr(err, "window"));
	fake_fail_appends(fx->f, 0, 0);
	flush_acked(fx, w, 4);
	assert_int_equal(strata_writer_close(w, err), 0);
	fixture_free(fx);
}

/* With a linger, small events are batched into few appends. */
static void test_writer_write_linger_batches(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(1);
	struct strata_writer *w;
	struct strata_writer_config cfg;
	unsigned seqs[KEYS] = {0};
	strata_writer_config_default(&cfg);
	cfg.linger_ms = 200;
	w = open_writer(fx, &cfg);
	write_events(fx, w, 0, 200, seqs);
	flush_acked(fx, w, 200);
	assert_true(fake_appends(fx->f) <= 3);
	close_verify_free(fx, w, seqs);
}

/* Batch events "k<key>:<seq>" like write_events, in one call. */
static int write_batch(struct fixture *fx, struct strata_writer *w,
                       unsigned from, unsigned n, unsigned *seqs,
                       size_t *queued, char *err)
{
	struct strata_write *evs = calloc(n, sizeof(*evs));
	char(*keys)[16] = calloc(n, 16);
	char(*payloads)[64] = calloc(n, 64);
	for (unsigned j = 0; j < n; j++) {
		unsigned k = (from + j) % KEYS;
		snprintf(keys[j], 16, "key-%u", k);
		int len = snprintf(payloads[j], 64, "k%u:%u", k, seqs[k]++);
		evs[j] = (struct strata_write){.key = keys[j],
		                               .keylen = strlen(keys[j]),
		                               .data = payloads[j],
		                               .len = (size_t)len,
		                               .cb = count_cb,
		                               .arg = fx};
	}
	int rc = strata_writer_write_batch(w, evs, n, queued, err);
	free(payloads);
	free(keys);
	free(evs);
	return rc;
}

/* A batch is queued whole and sent in one append (the writer was set up
 * before); every event once, in order per key. */
static void test_writer_write_batch_one_append(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(1);
	struct strata_writer *w;
	char err[STRATA_ERRMSG_SIZE];
	unsigned seqs[KEYS] = {0};
	w = open_writer(fx, NULL);
	write_events(fx, w, 0, 1, seqs);
	assert_int_equal(strata_writer_flush(w, err), 0);
	/* The flush posted a pump that may still be queued (the ack can
	 * beat it): run it first, or it would send part of the batch while
	 * the batch is being queued (seen once in fresh-check). */
	fake_loop_drain(fx->c);
	unsigned before = fake_appends(fx->f);
	size_t queued = 0;
	assert_int_equal(write_batch(fx, w, 1, 300, seqs, &queued, err), 0);
	assert_int_equal(queued, 300);
	flush_acked(fx, w, 301);
	assert_int_equal(fake_appends(fx->f) - before, 1);
	/* Empty batches and bad arguments. */
	assert_int_equal(strata_writer_write_batch(w, NULL, 0, &queued, err),
	                 0);
	assert_int_equal(queued, 0);
	assert_int_equal(strata_writer_write_batch(w, NULL, 2, &queued, err),
	                 STRATA_EINVAL);
	assert_int_equal(queued, 0);
	close_verify_free(fx, w, seqs);
}

/* An event that cannot be queued stops the batch there: the ones before
 * it are queued and acknowledged, it and the rest are not. */
static void test_writer_write_batch_partial(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(1);
	struct strata_writer *w;
	struct strata_writer_config cfg;
	char err[STRATA_ERRMSG_SIZE];
	static char big[2048];
	strata_writer_config_default(&cfg);
	cfg.max_event_bytes = 1024;
	w = open_writer(fx, &cfg);
	struct strata_write evs[4] = {
	        {.data = "a", .len = 1, .cb = count_cb, .arg = fx},
	        {.data = "b", .len = 1, .cb = count_cb, .arg = fx},
	        {.data = big, .len = sizeof(big), .cb = count_cb, .arg = fx},
	        {.data = "d", .len = 1, .cb = count_cb, .arg = fx},
	};
	size_t queued = 99;
	assert_int_equal(strata_writer_write_batch(w, evs, 4, &queued, err),
	                 STRATA_ETOOBIG);
	assert_int_equal(queued, 2);
	assert_non_null(strstr(err, "max_event_bytes"));
	flush_acked(fx, w, 2);
	assert_int_equal(atomic_load(&fx->failed), 0);
	assert_int_equal(strata_writer_close(w, err), 0);
	fixture_free(fx);
}

/* A batch larger than the window: blocking, it hands over what it holds
 * before waiting for room (else it would wait forever) and queues all;
 * not blocking, it stops at the window with STRATA_EAGAIN. */
static void test_writer_write_batch_window(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(2);
	struct strata_writer *w;
	struct strata_writer_config cfg;
	char err[STRATA_ERRMSG_SIZE];
	unsigned seqs[KEYS] = {0};
	strata_writer_config_default(&cfg);
	cfg.max_inflight_events = 4;
	w = open_writer(fx, &cfg);
	size_t queued = 0;
	assert_int_equal(write_batch(fx, w, 0, 50, seqs, &queued, err), 0);
	assert_int_equal(queued, 50);
	flush_acked(fx, w, 50);
	assert_int_equal(strata_writer_close(w, err), 0);
	verify(fx->f, seqs);

	cfg.block_when_full = false;
	fake_fail_appends(fx->f, 1000000, STRATA_EAGAIN);
	w = open_writer(fx, &cfg);
	assert_int_equal(write_batch(fx, w, 50, 10, seqs, &queued, err),
	                 STRATA_EAGAIN);
	assert_int_equal(queued, 4);
	fake_fail_appends(fx->f, 0, 0);
	flush_acked(fx, w, 54);
	assert_int_equal(strata_writer_close(w, err), 0);
	fixture_free(fx);
}

/* A stream the controller does not know gives STRATA_ENOENT naming it. */
static void test_writer_new_unknown_stream(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(1);
	struct strata_writer *w = NULL;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(strata_writer_new(fx->c, "sc", "nope", NULL, &w, err),
	                 STRATA_ENOENT);
	assert_non_null(strstr(err, "sc/nope"));
	assert_int_equal(
	        strata_writer_new(fx->c, "sc", "bad/name", NULL, &w, err),
	        STRATA_EBADNAME);
	fixture_free(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_writer_write_basic_exactly_once),
	        cmocka_unit_test(test_writer_write_retries_exactly_once),
	        cmocka_unit_test(test_writer_write_follows_successors),
	        cmocka_unit_test(test_writer_stale_current_segments),
	        cmocka_unit_test(test_writer_dead_segment_retires_later),
	        cmocka_unit_test(test_writer_segment_deleted_while_idle),
	        cmocka_unit_test(test_writer_retry_timeout_breaks_writer),
	        cmocka_unit_test(test_writer_retry_timeout_keeps_the_cause),
	        cmocka_unit_test(test_writer_write_sealed_stream),
	        cmocka_unit_test(test_writer_write_too_big),
	        cmocka_unit_test(test_writer_refused_block_fails_the_rest),
	        cmocka_unit_test(test_writer_write_window_full),
	        cmocka_unit_test(test_writer_write_linger_batches),
	        cmocka_unit_test(test_writer_write_batch_one_append),
	        cmocka_unit_test(test_writer_write_batch_partial),
	        cmocka_unit_test(test_writer_write_batch_window),
	        cmocka_unit_test(test_writer_new_unknown_stream),
	};
	return cmocka_run_group_tests_name("writer", tests, NULL, NULL);
}
