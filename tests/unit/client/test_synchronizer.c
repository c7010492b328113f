/* Unit tests for client/synchronizer.c over an in-memory revisioned log
 * (framed like a segment: 4-byte length, then the record). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "client/rg_state.h"
#include "client/synchronizer.h"
#include "common/alloc.h"
#include "strata/error.h"

/* ------------------------------------------------------- the fake log -- */

struct memlog {
	struct buf data;           /* bytes from offset `start` on */
	uint64_t start;            /* truncation point */
	unsigned conflicts_forced; /* next n conditional appends conflict */
	unsigned reads;            /* read calls */
	int fail_read;             /* next read fails with this */
};

static uint64_t ml_end(const struct memlog *m)
{
	return m->start + m->data.len;
}

static int ml_read(void *log, uint64_t from, rlog_record_fn cb, void *arg,
                   uint64_t *end, char *errmsg)
{
	struct memlog *m = log;
	m->reads++;
	if (m->fail_read != 0) {
		int rc = m->fail_read;
		m->fail_read = 0;
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "injected");
		return rc;
	}
	if (from < m->start) {
		*end = m->start;
		return STRATA_ETRUNCATED;
	}
	uint64_t off = from;
	while (off < ml_end(m)) {
		const uint8_t *p = m->data.data + (off - m->start);
		uint32_t len = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		               (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		int rc = cb(arg, p + 4, len, off, off + 4 + len);
		if (rc != 0) {
			return rc;
		}
		off += 4 + len;
	}
	*end = off;
	return 0;
}

static int ml_append(void *log, const void *data, size_t len, uint64_t *offset,
                     char *errmsg)
{
	struct memlog *m = log;
	(void)errmsg;
	*offset = ml_end(m);
	assert_int_equal(buf_append_u32le(&m->data, (uint32_t)len), 0);
	assert_int_equal(buf_append(&m->data, data, len), 0);
	return 0;
}

static int ml_append_cond(void *log, uint64_t expected, const void *data,
                          size_t len, uint64_t *new_rev, char *errmsg)
{
	struct memlog *m = log;
	if (m->conflicts_forced > 0) {
		m->conflicts_forced--;
		return STRATA_ECONFLICT;
	}
	if (expected != ml_end(m)) {
		return STRATA_ECONFLICT;
	}
	uint64_t off;
	int rc = ml_append(log, data, len, &off, errmsg);
	*new_rev = ml_end(m);
	return rc;
}

static int ml_truncate(void *log, uint64_t rev, char *errmsg)
{
	struct memlog *m = log;
	(void)errmsg;
	assert_true(rev >= m->start && rev <= ml_end(m));
	size_t drop = (size_t)(rev - m->start);
	memmove(m->data.data, m->data.data + drop, m->data.len - drop);
	m->data.len -= drop;
	m->start = rev;
	return 0;
}

static int ml_bounds(void *log, uint64_t *start, uint64_t *end, char *errmsg)
{
	struct memlog *m = log;
	(void)errmsg;
	*start = m->start;
	*end = ml_end(m);
	return 0;
}

static const struct rlog_ops memlog_ops = {
        .read = ml_read,
        .append_cond = ml_append_cond,
        .append = ml_append,
        .truncate = ml_truncate,
        .bounds = ml_bounds,
};

/* ------------------------------------------- a toy state: a counter -- */

/* Records: 'F' u64 (full: set) or '+' u64 (add); anything else fails. */
struct counter {
	uint64_t value;
	unsigned applied;
};

static void counter_reset(void *state)
{
	memset(state, 0, sizeof(struct counter));
}

static bool counter_is_full(const uint8_t *rec, size_t len)
{
	return len > 0 && rec[0] == 'F';
}

static int counter_apply(void *state, const uint8_t *rec, size_t len,
                         char *errmsg)
{
	struct counter *c = state;
	uint64_t v;
	if (len != 9 || (rec[0] != 'F' && rec[0] != '+')) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "bad record");
		return STRATA_ECORRUPT;
	}
	memcpy(&v, rec + 1, 8);
	c->value = rec[0] == 'F' ? v : c->value + v;
	c->applied++;
	return 0;
}

static int counter_encode(const void *state, struct buf *b)
{
	const struct counter *c = state;
	int rc = buf_append_u8(b, 'F');
	return rc != 0 ? rc : buf_append(b, &c->value, 8);
}

static const struct sync_state_ops counter_ops = {
        .reset = counter_reset,
        .is_full = counter_is_full,
        .apply = counter_apply,
        .encode = counter_encode,
};

/* Generator: add *(uint64_t *)arg unless the value is already >= 100. */
static int gen_add(void *arg, const void *state, struct buf *out, char *errmsg)
{
	const struct counter *c = state;
	(void)errmsg;
	if (c->value >= 100) {
		return 0;
	}
	int rc = buf_append_u8(out, '+');
	return rc != 0 ? rc : buf_append(out, arg, 8);
}

static char err[STRATA_ERRMSG_SIZE];

/* Fixture: one log, two synchronizers (two clients) over it. */
struct fix {
	struct memlog log;
	struct counter c1, c2;
	struct synchronizer s1, s2;
};

static int setup(void **state)
{
	struct fix *f = strata_calloc(1, sizeof(*f));
	buf_init(&f->log.data, 0);
	sync_init(&f->s1, &memlog_ops, &f->log, &counter_ops, &f->c1);
	sync_init(&f->s2, &memlog_ops, &f->log, &counter_ops, &f->c2);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	buf_close(&f->log.data);
	strata_free(f);
	return 0;
}

/* Updates from one client are folded by the other on fetch. */
static void test_sync_fetch_folds_records(void **state)
{
	struct fix *f = *state;
	uint64_t v = 5;
	bool w;
	assert_int_equal(sync_update(&f->s1, gen_add, &v, &w, err), 0);
	assert_true(w);
	assert_int_equal(sync_update(&f->s1, gen_add, &v, &w, err), 0);
	assert_int_equal(f->c1.value, 10);
	assert_int_equal(f->s1.revision, ml_end(&f->log));
	assert_int_equal(sync_fetch(&f->s2, err), 0);
	assert_int_equal(f->c2.value, 10);
	assert_int_equal(f->s2.revision, f->s1.revision);
	/* Nothing new: a fetch applies nothing. */
	unsigned before = f->c2.applied;
	assert_int_equal(sync_fetch(&f->s2, err), 0);
	assert_int_equal(f->c2.applied, before);
}

/* A client whose state is stale loses the conditional append, fetches,
 * asks its generator again and then writes on the fresh state. */
static void test_sync_update_conflict_refetches_and_retries(void **state)
{
	struct fix *f = *state;
	uint64_t v = 1;
	assert_int_equal(sync_fetch(&f->s2, err), 0); /* s2 at revision 0 */
	assert_int_equal(sync_update(&f->s1, gen_add, &v, NULL, err), 0);
	uint64_t v2 = 2;
	bool w;
	assert_int_equal(sync_update(&f->s2, gen_add, &v2, &w, err), 0);
	assert_true(w);
	assert_int_equal(f->s2.conflicts, 1);
	assert_int_equal(f->c2.value, 3);
	assert_int_equal(sync_fetch(&f->s1, err), 0);
	assert_int_equal(f->c1.value, 3);
}

/* The generator sees the fresh state after a conflict and may decide
 * that nothing is needed any more. */
static void test_sync_update_generator_declines_after_conflict(void **state)
{
	struct fix *f = *state;
	uint64_t big = 100, one = 1;
	assert_int_equal(sync_fetch(&f->s2, err), 0);
	assert_int_equal(sync_update(&f->s1, gen_add, &big, NULL, err), 0);
	bool w = true;
	assert_int_equal(sync_update(&f->s2, gen_add, &one, &w, err), 0);
	assert_false(w);
	assert_int_equal(f->c2.value, 100);
}

/* An update that keeps losing gives up with STRATA_EBUSY and a message. */
static void test_sync_update_gives_up_when_always_conflicting(void **state)
{
	struct fix *f = *state;
	uint64_t v = 1;
	f->s1.max_attempts = 5;
	f->log.conflicts_forced = 1000;
	assert_int_equal(sync_update(&f->s1, gen_add, &v, NULL, err),
	                 STRATA_EBUSY);
	assert_non_null(strstr(err, "retry"));
	assert_int_equal(f->c1.value, 0);
}

/* An unconditional update lands after whatever others wrote, and the
 * writer folds both. */
static void test_sync_update_any_appends_and_fetches(void **state)
{
	struct fix *f = *state;
	uint64_t v = 4;
	assert_int_equal(sync_update(&f->s2, gen_add, &v, NULL, err), 0);
	uint8_t rec[9] = {'+'};
	uint64_t seven = 7;
	memcpy(rec + 1, &seven, 8);
	assert_int_equal(sync_update_any(&f->s1, rec, sizeof(rec), err), 0);
	assert_int_equal(f->c1.value, 11);
}

/* Compaction writes the full state and truncates before it: a client at
 * an older revision rebuilds from the full record; the bytes since the
 * last compaction restart from zero. */
static void test_sync_compact_truncates_and_others_rebuild(void **state)
{
	struct fix *f = *state;
	uint64_t v = 3;
	assert_int_equal(sync_fetch(&f->s2, err), 0);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(sync_update(&f->s1, gen_add, &v, NULL, err),
		                 0);
	}
	assert_true(sync_bytes_since_compaction(&f->s1) >= 10 * 13);
	uint64_t before = ml_end(&f->log);
	assert_int_equal(sync_compact(&f->s1, err), 0);
	assert_int_equal(f->log.start, before);
	assert_int_equal(sync_bytes_since_compaction(&f->s1), 13);
	assert_int_equal(f->c1.value, 30);
	/* s2 is at revision 0 < start: it rebuilds from the full state. */
	assert_int_equal(sync_fetch(&f->s2, err), 0);
	assert_int_equal(f->c2.value, 30);
	assert_int_equal(f->c2.applied, 1);
	assert_int_equal(sync_bytes_since_compaction(&f->s2), 13);
	/* And keeps updating from there. */
	assert_int_equal(sync_update(&f->s2, gen_add, &v, NULL, err), 0);
	assert_int_equal(sync_fetch(&f->s1, err), 0);
	assert_int_equal(f->c1.value, 33);
}

/* A record the state cannot apply fails the fetch and resets the state;
 * a read error leaves the next fetch starting over from the log start. */
static void test_sync_fetch_errors_reset_state(void **state)
{
	struct fix *f = *state;
	uint64_t v = 2;
	assert_int_equal(sync_update(&f->s1, gen_add, &v, NULL, err), 0);
	f->log.fail_read = STRATA_EUNAVAIL;
	assert_int_equal(sync_fetch(&f->s2, err), STRATA_EUNAVAIL);
	assert_false(f->s2.loaded);
	assert_int_equal(sync_fetch(&f->s2, err), 0);
	assert_int_equal(f->c2.value, 2);
	uint64_t off;
	assert_int_equal(ml_append(&f->log, "junk", 4, &off, err), 0);
	assert_int_equal(sync_fetch(&f->s2, err), STRATA_ECORRUPT);
	assert_int_equal(f->c2.value, 0);
	assert_false(f->s2.loaded);
}

/* ------------------------------------------ reader-group state on it -- */

struct acq_arg {
	const char *reader;
};

/* Generator: join if needed, else take the fair share, else give one
 * segment back when the group is unbalanced. */
static int gen_join_or_acquire(void *arg, const void *state, struct buf *out,
                               char *errmsg)
{
	const struct acq_arg *a = arg;
	const struct rg_state *st = state;
	(void)errmsg;
	if (rg_state_reader(st, a->reader) == NULL) {
		return rg_rec_add_reader(out, a->reader);
	}
	struct rg_pos want[8];
	size_t n = rg_state_plan_acquire(st, a->reader, want, 8);
	if (n > 0) {
		return rg_rec_acquire(out, a->reader, want, n);
	}
	uint32_t rid = rg_state_reader(st, a->reader)->rid;
	uint64_t unread[8] = {0};
	for (size_t i = 0; i < st->n_segs && n < 8; i++) {
		if (st->segs[i].owner == rid) {
			want[n++] = st->segs[i].pos;
		}
	}
	struct rg_pos give;
	if (rg_state_plan_release(st, a->reader, want, unread, n, &give)) {
		return rg_rec_release(out, a->reader, &give);
	}
	return 0;
}

/* Three readers with stale views race to join, acquire and rebalance
 * four segments over one log: every segment ends up owned by exactly one
 * reader, each owns one or two, and every copy of the state agrees. */
static void test_sync_rg_readers_race_for_segments(void **state)
{
	(void)state;
	struct memlog log = {0};
	buf_init(&log.data, 0);
	struct rg_state init, st[3];
	rg_state_init(&init);
	uint32_t idx;
	assert_int_equal(rg_state_add_stream(&init, "sc", "st", NULL, 0, &idx),
	                 0);
	for (unsigned i = 0; i < 4; i++) {
		struct rg_pos p = {0, i, 0, i / 4.0, (i + 1) / 4.0};
		assert_int_equal(rg_state_add_segment(&init, &p), 0);
	}
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(rg_state_encode(&init, &b), 0);
	uint64_t off;
	assert_int_equal(ml_append(&log, b.data, b.len, &off, err), 0);
	buf_close(&b);
	rg_state_close(&init);

	struct synchronizer s[3];
	struct acq_arg args[3] = {{"r0"}, {"r1"}, {"r2"}};
	for (int i = 0; i < 3; i++) {
		rg_state_init(&st[i]);
		sync_init(&s[i], &memlog_ops, &log, &rg_sync_ops, &st[i]);
		assert_int_equal(sync_fetch(&s[i], err), 0);
	}
	/* Interleave: each round every reader makes one decision on its
	 * (possibly stale) state; a decision not to write is not checked
	 * against the log, so readers refresh now and then. */
	for (int round = 0; round < 8; round++) {
		for (int i = 0; i < 3; i++) {
			/* Odd rounds: a periodic refresh first. */
			if (round % 2 == 1) {
				assert_int_equal(sync_fetch(&s[i], err), 0);
			}
			assert_int_equal(sync_update(&s[i], gen_join_or_acquire,
			                             &args[i], NULL, err),
			                 0);
		}
	}
	uint64_t conflicts = 0;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sync_fetch(&s[i], err), 0);
		conflicts += s[i].conflicts;
	}
	assert_true(conflicts > 0);
	assert_int_equal(rg_state_count_owned(&st[0], 0), 0);
	size_t total = 0;
	for (int i = 0; i < 3; i++) {
		size_t n = rg_state_count_owned(
		        &st[0], rg_state_reader(&st[0], args[i].reader)->rid);
		assert_true(n >= 1 && n <= 2);
		total += n;
	}
	assert_int_equal(total, 4);
	/* All copies agree byte for byte. */
	struct buf e0, e;
	buf_init(&e0, 0);
	buf_init(&e, 0);
	assert_int_equal(rg_state_encode(&st[0], &e0), 0);
	for (int i = 1; i < 3; i++) {
		buf_reset(&e);
		assert_int_equal(rg_state_encode(&st[i], &e), 0);
		assert_int_equal(e.len, e0.len);
		assert_memory_equal(e.data, e0.data, e.len);
	}
	/* Compaction by one, fetch by the others: still the same. */
	assert_int_equal(sync_compact(&s[1], err), 0);
	assert_int_equal(sync_fetch(&s[2], err), 0);
	buf_reset(&e);
	assert_int_equal(rg_state_encode(&st[2], &e), 0);
	assert_memory_equal(e.data, e0.data, e.len);
	buf_close(&e);
	buf_close(&e0);
	for (int i = 0; i < 3; i++) {
		rg_state_close(&st[i]);
	}
	buf_close(&log.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_sync_fetch_folds_records,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_sync_update_conflict_refetches_and_retries, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_sync_update_generator_declines_after_conflict,
	                setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_sync_update_gives_up_when_always_conflicting,
	                setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_sync_update_any_appends_and_fetches, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_sync_compact_truncates_and_others_rebuild, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_sync_fetch_errors_reset_state, setup, teardown),
	        cmocka_unit_test(test_sync_rg_readers_race_for_segments),
	};
	return cmocka_run_group_tests_name("synchronizer", tests, NULL, NULL);
}
