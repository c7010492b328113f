/* Unit tests for client/txn.c against the in-process fake cluster: all or
 * nothing, exactly once inside a transaction, expired leases, a stream
 * that scaled, bad input. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "client/client_int.h"
#include "fake_cluster.h"
#include "strata/txn.h"

#define KEYS 6

struct fixture {
	struct fake_cluster *f;
	struct strata_client *c;
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

static struct strata_txn *begin(struct fixture *fx)
{
	struct strata_txn *t = NULL;
	char err[STRATA_ERRMSG_SIZE];
	if (strata_txn_begin(fx->c, "sc", "st", NULL, &t, err) != 0) {
		fail_msg("strata_txn_begin: %s", err);
	}
	return t;
}

/* Events "k<key>:<seq>" for seqs [from, to) of every key. */
static void fill(struct strata_txn *t, unsigned from, unsigned to)
{
	char err[STRATA_ERRMSG_SIZE];
	for (unsigned s = from; s < to; s++) {
		for (unsigned k = 0; k < KEYS; k++) {
			char key[8], ev[32];
			snprintf(key, sizeof(key), "k%u", k);
			int n = snprintf(ev, sizeof(ev), "k%u:%u", k, s);
			if (strata_txn_write(t, key, strlen(key), ev, (size_t)n,
			                     err) != 0) {
				fail_msg("strata_txn_write: %s", err);
			}
		}
	}
}

/* Begin, write seqs [from, to), flush (pre-commit): the handle, *id. */
static struct strata_txn *prepared(struct fixture *fx, unsigned from,
                                   unsigned to, uint64_t *id)
{
	char err[STRATA_ERRMSG_SIZE];
	struct strata_txn *t = begin(fx);
	fill(t, from, to);
	assert_int_equal(strata_txn_flush(t, err), 0);
	*id = strata_txn_id(t);
	return t;
}

/* Events in the stream's segments (not the shadows); checks every key's
 * seqs are 0, 1, 2, ... with none twice. */
static unsigned stream_events(struct fixture *fx)
{
	unsigned next[KEYS] = {0};
	unsigned total = 0;
	for (size_t i = 0; i < fake_n_segments(fx->f); i++) {
		if (fake_segment_internal(fx->f, i)) {
			continue;
		}
		size_t len;
		const uint8_t *p = fake_segment_data(fx->f, i, &len);
		size_t off = 0;
		while (off + 4 <= len) {
			uint32_t n = (uint32_t)p[off] |
			             (uint32_t)p[off + 1] << 8 |
			             (uint32_t)p[off + 2] << 16 |
			             (uint32_t)p[off + 3] << 24;
			assert_true(off + 4 + n <= len);
			char ev[32] = "";
			memcpy(ev, p + off + 4, n < 31 ? n : 31);
			unsigned k, s;
			assert_int_equal(sscanf(ev, "k%u:%u", &k, &s), 2);
			assert_true(k < KEYS);
			assert_int_equal(s, next[k]);
			next[k]++;
			total++;
			off += 4 + n;
		}
	}
	return total;
}

/* Nothing before the commit, everything after, each key in order. */
static void test_txn_commit_all_at_once(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(3);
	size_t before = fake_live_segments(fx->f);
	struct strata_txn *t = begin(fx);
	assert_int_equal(fake_live_segments(fx->f), before + 3); /* shadows */
	fill(t, 0, 40);
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(strata_txn_flush(t, err), 0);
	assert_int_equal(stream_events(fx), 0);
	uint64_t id = strata_txn_id(t);
	assert_int_equal(strata_txn_commit(t, err), 0);
	assert_int_equal(stream_events(fx), 40 * KEYS);
	assert_int_equal(fake_live_segments(fx->f), before);
	enum strata_txn_state st;
	assert_int_equal(strata_txn_status(fx->c, "sc", "st", id, &st, err), 0);
	assert_int_equal(st, STRATA_TXN_COMMITTED);
	/* The handle is spent. */
	assert_int_equal(strata_txn_write(t, "k", 1, "x", 1, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "already committed or aborted"));
	assert_int_equal(strata_txn_commit(t, err), STRATA_EINVAL);
	strata_txn_free(t);
	/* A second one continues every key. */
	t = begin(fx);
	fill(t, 40, 50);
	assert_int_equal(strata_txn_commit(t, err), 0);
	strata_txn_free(t);
	assert_int_equal(stream_events(fx), 50 * KEYS);
	fixture_free(fx);
}

/* Aborted, or freed without a commit: none of it ever reaches the
 * stream. */
static void test_txn_abort_leaves_nothing(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(2);
	size_t before = fake_live_segments(fx->f);
	char err[STRATA_ERRMSG_SIZE];
	struct strata_txn *t = begin(fx);
	fill(t, 0, 20);
	assert_int_equal(strata_txn_abort(t, err), 0);
	assert_int_equal(strata_txn_abort(t, err), STRATA_EINVAL);
	uint64_t id = strata_txn_id(t);
	strata_txn_free(t);
	enum strata_txn_state st;
	assert_int_equal(strata_txn_status(fx->c, "sc", "st", id, &st, err), 0);
	assert_int_equal(st, STRATA_TXN_ABORTED);
	t = begin(fx);
	fill(t, 0, 5);
	id = strata_txn_id(t);
	strata_txn_free(t); /* aborts */
	assert_int_equal(strata_txn_status(fx->c, "sc", "st", id, &st, err), 0);
	assert_int_equal(st, STRATA_TXN_ABORTED);
	assert_int_equal(stream_events(fx), 0);
	assert_int_equal(fake_live_segments(fx->f), before);
	assert_int_equal(strata_txn_status(fx->c, "sc", "st", 999, &st, err),
	                 0);
	assert_int_equal(st, STRATA_TXN_UNKNOWN);
	fixture_free(fx);
}

/* Lost acknowledgements and failed appends inside a transaction are
 * retried by the writer without duplicates. */
static void test_txn_exactly_once_inside(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(2);
	char err[STRATA_ERRMSG_SIZE];
	struct strata_txn *t = begin(fx);
	fake_lose_acks(fx->f, 3);
	fill(t, 0, 30);
	fake_fail_appends(fx->f, 2, STRATA_EUNAVAIL);
	fill(t, 30, 60);
	assert_int_equal(strata_txn_commit(t, err), 0);
	strata_txn_free(t);
	assert_int_equal(stream_events(fx), 60 * KEYS);
	fixture_free(fx);
}

/* An event failed and strata_txn_flush said so: the commit that follows
 * still aborts (all or nothing), it does not commit the rest. */
static void test_txn_failed_flush_then_commit_aborts(void **state)
{
	(void)state;
	struct fake_cluster *f = fake_new(2);
	struct strata_client *c = fake_client(f, 500);
	assert_non_null(c);
	char err[STRATA_ERRMSG_SIZE];
	struct strata_txn_config cfg;
	strata_txn_config_default(&cfg);
	cfg.writer.retry_timeout_ms = 300; /* the event fails soon */
	struct strata_txn *t = NULL;
	assert_int_equal(strata_txn_begin(c, "sc", "st", &cfg, &t, err), 0);
	uint64_t id = strata_txn_id(t);
	fake_fail_appends(f, 100000, STRATA_EUNAVAIL);
	assert_int_equal(strata_txn_write(t, "k0", 2, "k0:0", 4, err), 0);
	assert_int_not_equal(strata_txn_flush(t, err), 0);
	fake_fail_appends(f, 0, 0);
	assert_int_not_equal(strata_txn_commit(t, err), 0);
	assert_non_null(strstr(err, "aborted"));
	strata_txn_free(t);
	enum strata_txn_state st;
	assert_int_equal(strata_txn_status(c, "sc", "st", id, &st, err), 0);
	assert_int_equal(st, STRATA_TXN_ABORTED);
	strata_client_free(c);
	fake_free(f);
}

/* Its lease ran out (the controller aborted it): ping and commit say so,
 * nothing reaches the stream. */
static void test_txn_lease_ran_out(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(2);
	char err[STRATA_ERRMSG_SIZE];
	uint64_t id;
	struct strata_txn *t = prepared(fx, 0, 10, &id);
	fake_expire_txn(fx->f, id);
	assert_int_equal(strata_txn_ping(t, err), STRATA_ECONFLICT);
	assert_int_equal(strata_txn_commit(t, err), STRATA_ECONFLICT);
	strata_txn_free(t);
	assert_int_equal(stream_events(fx), 0);
	fixture_free(fx);
}

/* The lease is renewed in the background every third of it while the
 * handle is open, not after the commit. */
static void test_txn_lease_renewed(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(1);
	char err[STRATA_ERRMSG_SIZE];
	struct strata_txn_config cfg;
	strata_txn_config_default(&cfg);
	cfg.lease_ms = 300;
	struct strata_txn *t = NULL;
	assert_int_equal(strata_txn_begin(fx->c, "sc", "st", &cfg, &t, err), 0);
	fill(t, 0, 5);
	usleep(750 * 1000); /* idle: renewed at 100, 200, ... ms */
	unsigned pings = fake_txn_pings(fx->f);
	assert_true(pings >= 3);
	assert_int_equal(strata_txn_commit(t, err), 0);
	unsigned after = fake_txn_pings(fx->f);
	usleep(300 * 1000);
	assert_int_equal(fake_txn_pings(fx->f), after); /* stopped */
	strata_txn_free(t);
	assert_int_equal(stream_events(fx), 5 * KEYS);
	fixture_free(fx);
}

/* A begin while the stream scales (or a commit rolls) is refused with
 * EBUSY: the client waits and retries within its operation timeout. */
static void test_txn_begin_waits_while_busy(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(2);
	char err[STRATA_ERRMSG_SIZE];
	fake_busy_creates(fx->f, 3);
	struct strata_txn *t = begin(fx);
	fill(t, 0, 5);
	assert_int_equal(strata_txn_commit(t, err), 0);
	strata_txn_free(t);
	assert_int_equal(stream_events(fx), 5 * KEYS);
	/* Busy for longer than the operation timeout (here 500 ms): the
	 * begin gives up with EBUSY. */
	struct strata_client *quick = fake_client(fx->f, 500);
	assert_non_null(quick);
	fake_busy_creates(fx->f, 1000);
	t = NULL;
	assert_int_equal(strata_txn_begin(quick, "sc", "st", NULL, &t, err),
	                 STRATA_EBUSY);
	assert_null(t);
	assert_non_null(strstr(err, "scaling"));
	strata_client_free(quick);
	fixture_free(fx);
}

/* The stream scaled after the begin and the controller refuses the
 * commit for good (it cannot roll it: ENOSPC): the client aborts it. */
static void test_txn_stream_scaled(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(2);
	char err[STRATA_ERRMSG_SIZE];
	uint64_t id;
	struct strata_txn *t = prepared(fx, 0, 10, &id);
	fake_split(fx->f, fake_segment_id(fx->f, 0));
	assert_int_equal(strata_txn_commit(t, err), STRATA_ENOSPC);
	strata_txn_free(t);
	enum strata_txn_state st;
	assert_int_equal(strata_txn_status(fx->c, "sc", "st", id, &st, err), 0);
	assert_int_equal(st, STRATA_TXN_ABORTED);
	assert_int_equal(stream_events(fx), 0);
	/* A new one is on the new epoch's segments. */
	t = begin(fx);
	fill(t, 0, 10);
	assert_int_equal(strata_txn_commit(t, err), 0);
	strata_txn_free(t);
	assert_int_equal(stream_events(fx), 10 * KEYS);
	fixture_free(fx);
}

/* Two-phase commit: a transaction flushed through one handle is
 * committed by its id from another client (a restored pipeline), which
 * may repeat it; by-id abort and commit conflict with the other outcome;
 * unknown ids are ENOENT. */
static void test_txn_by_id(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(2);
	struct strata_client *other = fake_client(fx->f, 5000);
	assert_non_null(other);
	char err[STRATA_ERRMSG_SIZE];
	uint64_t id;
	struct strata_txn *t = prepared(fx, 0, 25, &id);
	assert_int_equal(stream_events(fx), 0);
	assert_int_equal(strata_txn_commit_id(other, "sc", "st", id, err), 0);
	assert_int_equal(stream_events(fx), 25 * KEYS);
	assert_int_equal(strata_txn_commit_id(other, "sc", "st", id, err), 0);
	assert_int_equal(strata_txn_abort_id(other, "sc", "st", id, err),
	                 STRATA_ECONFLICT);
	assert_non_null(strstr(err, "committed"));
	/* The old handle writes on: its events fail (no longer open), and
	 * its commit says it was committed elsewhere with part of them (it
	 * said "so it was aborted"). Once its flush has heard the shadow is
	 * gone, further writes fail at once. */
	const char ev[] = "k0:25";
	if (strata_txn_write(t, "k0", 2, ev, sizeof(ev) - 1, err) == 0) {
		assert_int_not_equal(strata_txn_flush(t, err), 0);
	}
	assert_non_null(strstr(err, "no longer open"));
	assert_int_not_equal(strata_txn_write(t, "k1", 2, "k1:25", 5, err), 0);
	assert_non_null(strstr(err, "no longer open"));
	assert_int_equal(strata_txn_commit(t, err), STRATA_ECONFLICT);
	assert_non_null(strstr(err, "committed by another client"));
	/* Freeing it (an abort the controller refuses) changes nothing. */
	strata_txn_free(t);
	assert_int_equal(stream_events(fx), 25 * KEYS);

	/* Abort by id; a commit by id then conflicts. */
	t = prepared(fx, 25, 30, &id);
	assert_int_equal(strata_txn_abort_id(other, "sc", "st", id, err), 0);
	assert_int_equal(strata_txn_abort_id(other, "sc", "st", id, err), 0);
	assert_int_equal(strata_txn_commit_id(other, "sc", "st", id, err),
	                 STRATA_ECONFLICT);
	assert_non_null(strstr(err, "aborted"));
	strata_txn_free(t);
	assert_int_equal(stream_events(fx), 25 * KEYS);

	/* After a scale a commit by id the controller refuses for good
	 * aborts the transaction, as through a handle. */
	t = prepared(fx, 25, 30, &id);
	fake_split(fx->f, fake_segment_id(fx->f, 0));
	assert_int_equal(strata_txn_commit_id(other, "sc", "st", id, err),
	                 STRATA_ENOSPC);
	assert_non_null(strstr(err, "it is aborted"));
	strata_txn_free(t);
	enum strata_txn_state st;
	assert_int_equal(strata_txn_status(other, "sc", "st", id, &st, err), 0);
	assert_int_equal(st, STRATA_TXN_ABORTED);

	assert_int_equal(strata_txn_commit_id(other, "sc", "st", 4242, err),
	                 STRATA_ENOENT);
	assert_non_null(strstr(err, "4242"));
	assert_int_equal(strata_txn_commit_id(other, "sc", "", 1, err),
	                 STRATA_EBADNAME);
	strata_client_free(other);
	fixture_free(fx);
}

/* Bad input: clear errors, nothing created. */
static void test_txn_bad_input(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(1);
	char err[STRATA_ERRMSG_SIZE];
	struct strata_txn *t = NULL;
	assert_int_equal(strata_txn_begin(fx->c, "sc", "nope", NULL, &t, err),
	                 STRATA_ENOENT);
	assert_null(t);
	assert_int_equal(
	        strata_txn_begin(fx->c, "sc", "bad name", NULL, &t, err),
	        STRATA_EBADNAME);
	struct strata_txn_config cfg;
	strata_txn_config_default(&cfg);
	cfg.lease_ms = 600001;
	assert_int_equal(strata_txn_begin(fx->c, "sc", "st", &cfg, &t, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "lease_ms 600001"));
	/* A bad writer config is refused before anything is created. */
	size_t live = fake_live_segments(fx->f);
	cfg.lease_ms = 1000;
	cfg.writer.codec = "snappy";
	assert_int_equal(strata_txn_begin(fx->c, "sc", "st", &cfg, &t, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "unknown codec 'snappy'"));
	assert_null(t);
	assert_int_equal(fake_live_segments(fx->f), live);
	cfg.writer.codec = NULL;
	cfg.writer.max_event_bytes = 16;
	assert_int_equal(strata_txn_begin(fx->c, "sc", "st", &cfg, &t, err), 0);
	char big[64] = {0};
	assert_int_equal(strata_txn_write(t, NULL, 0, big, sizeof(big), err),
	                 STRATA_ETOOBIG);
	assert_int_equal(strata_txn_commit(t, err), 0); /* empty: fine */
	strata_txn_free(t);
	strata_txn_free(NULL);
	assert_int_equal(stream_events(fx), 0);
	fixture_free(fx);
}

/* Released: the handle is freed without aborting; the transaction
 * stays open until committed by id; the handle takes nothing more. */
static void test_txn_release(void **state)
{
	(void)state;
	struct fixture *fx = fixture_new(2);
	char err[STRATA_ERRMSG_SIZE];
	struct strata_txn *t = begin(fx);
	fill(t, 0, 20);
	uint64_t id = strata_txn_id(t);
	assert_int_equal(strata_txn_release(t, err), 0);
	assert_int_equal(strata_txn_write(t, NULL, 0, "x", 1, err),
	                 STRATA_EINVAL);
	assert_int_equal(strata_txn_release(t, err), STRATA_EINVAL);
	strata_txn_free(t);
	enum strata_txn_state st;
	assert_int_equal(strata_txn_status(fx->c, "sc", "st", id, &st, err), 0);
	assert_int_equal(st, STRATA_TXN_OPEN);
	assert_int_equal(stream_events(fx), 0);
	assert_int_equal(strata_txn_commit_id(fx->c, "sc", "st", id, err), 0);
	assert_int_equal(stream_events(fx), 20 * KEYS);
	fixture_free(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_txn_commit_all_at_once),
	        cmocka_unit_test(test_txn_abort_leaves_nothing),
	        cmocka_unit_test(test_txn_exactly_once_inside),
	        cmocka_unit_test(test_txn_failed_flush_then_commit_aborts),
	        cmocka_unit_test(test_txn_lease_ran_out),
	        cmocka_unit_test(test_txn_lease_renewed),
	        cmocka_unit_test(test_txn_begin_waits_while_busy),
	        cmocka_unit_test(test_txn_stream_scaled),
	        cmocka_unit_test(test_txn_by_id),
	        cmocka_unit_test(test_txn_release),
	        cmocka_unit_test(test_txn_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
