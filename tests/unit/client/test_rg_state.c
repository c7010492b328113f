/* Unit tests for client/rg_state.c: the reader-group state fold, its
 * record codec and the readers' decisions. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "client/rg_state.h"
#include "common/alloc.h"
#include "strata/error.h"
#include "tests/lib/oom.h"

#define SEG(epoch, num) (((uint64_t)(epoch) << 32) | (num))

static char err[STRATA_ERRMSG_SIZE];

/* A state reading one stream "sc/st" from n equal segments of epoch 0. */
static void make_state(struct rg_state *st, unsigned n)
{
	rg_state_init(st);
	uint32_t idx;
	assert_int_equal(rg_state_add_stream(st, "sc", "st", NULL, 0, &idx), 0);
	assert_int_equal(idx, 0);
	for (unsigned i = 0; i < n; i++) {
		struct rg_pos p = {0, SEG(0, i), 0, (double)i / n,
		                   (double)(i + 1) / n};
		assert_int_equal(rg_state_add_segment(st, &p), 0);
	}
}

/* Apply the record in b to st (must succeed) and empty b. */
static void apply(struct rg_state *st, struct buf *b)
{
	err[0] = '\0';
	int rc = rg_state_apply(st, b->data, b->len, err);
	if (rc != 0) {
		print_error("apply: %s\n", err);
	}
	assert_int_equal(rc, 0);
	buf_reset(b);
}

static void add_reader(struct rg_state *st, const char *name)
{
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(rg_rec_add_reader(&b, name), 0);
	apply(st, &b);
	buf_close(&b);
}

/* Plan and apply an acquire for name; returns how many it took. */
static size_t acquire(struct rg_state *st, const char *name)
{
	struct rg_pos want[16];
	size_t n = rg_state_plan_acquire(st, name, want, 16);
	if (n > 0) {
		struct buf b;
		buf_init(&b, 0);
		assert_int_equal(rg_rec_acquire(&b, name, want, n), 0);
		apply(st, &b);
		buf_close(&b);
	}
	return n;
}

static uint32_t rid(const struct rg_state *st, const char *name)
{
	const struct rg_reader *r = rg_state_reader(st, name);
	assert_non_null(r);
	return r->rid;
}

/* Complete (stream 0, id) at end for name with successors. */
static void complete(struct rg_state *st, const char *name, uint64_t id,
                     uint64_t end, const struct rg_successor *succ, size_t n)
{
	const struct rg_seg *s = rg_state_seg(st, 0, id);
	assert_non_null(s);
	struct rg_pos at = s->pos;
	at.offset = end;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(rg_rec_complete(&b, name, &at, succ, n), 0);
	apply(st, &b);
	buf_close(&b);
}

/* The FULL record of st, as an allocated buffer. */
static uint8_t *encode(const struct rg_state *st, size_t *len)
{
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(rg_state_encode(st, &b), 0);
	return buf_detach(&b, len);
}

/* A state with readers, owners, a waiting successor and checkpoints
 * encodes, decodes and re-encodes to the same bytes. */
static void test_rg_state_encode_apply_roundtrip(void **state)
{
	(void)state;
	struct rg_state st, back;
	make_state(&st, 3);
	st.epoch = 7;
	st.checkpoint_ms = 1000;
	add_reader(&st, "b");
	add_reader(&st, "a");
	assert_int_equal(acquire(&st, "a"), 2);
	uint64_t preds[] = {SEG(0, 0), SEG(0, 1)};
	struct rg_successor succ = {SEG(1, 3), 0.0, 2.0 / 3, 2, preds};
	complete(&st, "a", SEG(0, 0), 100, &succ, 1);
	assert_int_equal(st.n_futures, 1);
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(rg_rec_cp_create(&b, "cp1"), 0);
	apply(&st, &b);
	buf_close(&b);

	size_t len1, len2;
	uint8_t *e1 = encode(&st, &len1);
	rg_state_init(&back);
	assert_int_equal(rg_state_apply(&back, e1, len1, err), 0);
	uint8_t *e2 = encode(&back, &len2);
	assert_int_equal(len1, len2);
	assert_memory_equal(e1, e2, len1);
	assert_int_equal(back.epoch, 7);
	assert_int_equal(back.n_readers, 2);
	assert_string_equal(back.readers[0].name, "a");
	assert_non_null(rg_state_checkpoint(&back, "cp1"));
	strata_free(e1);
	strata_free(e2);
	rg_state_close(&back);
	rg_state_close(&st);
}

/* Every strict prefix of a valid record, a bad version and an unknown
 * type are rejected as corrupt with a message, never read past the end. */
static void test_rg_state_apply_rejects_malformed(void **state)
{
	(void)state;
	struct rg_state st, tgt;
	make_state(&st, 4);
	add_reader(&st, "r1");
	acquire(&st, "r1");
	size_t len;
	uint8_t *e = encode(&st, &len);
	rg_state_init(&tgt);
	for (size_t i = 0; i < len; i++) {
		uint8_t *copy = strata_malloc(i + 1);
		memcpy(copy, e, i);
		err[0] = '\0';
		assert_int_equal(rg_state_apply(&tgt, copy, i, err),
		                 STRATA_ECORRUPT);
		assert_true(strlen(err) > 0);
		strata_free(copy);
	}
	uint8_t bad_ver[] = {9, RG_REC_FULL};
	assert_int_equal(rg_state_apply(&tgt, bad_ver, 2, err),
	                 STRATA_ECORRUPT);
	assert_non_null(strstr(err, "version"));
	uint8_t bad_type[] = {RG_REC_VERSION, 77, 1, 0, 0, 0, 'x'};
	assert_int_equal(rg_state_apply(&tgt, bad_type, sizeof(bad_type), err),
	                 STRATA_ECORRUPT);
	/* Trailing bytes after a valid record. */
	uint8_t *longer = strata_malloc(len + 1);
	memcpy(longer, e, len);
	longer[len] = 0;
	assert_int_equal(rg_state_apply(&tgt, longer, len + 1, err),
	                 STRATA_ECORRUPT);
	strata_free(longer);
	strata_free(e);
	rg_state_close(&tgt);
	rg_state_close(&st);
}

/* Three readers over four segments take 2, 1, 1: the fair share
 * ceil(4/3) = 2 each, limited by what is left. */
static void test_rg_state_acquire_fair_share(void **state)
{
	(void)state;
	struct rg_state st;
	make_state(&st, 4);
	add_reader(&st, "r1");
	add_reader(&st, "r2");
	add_reader(&st, "r3");
	assert_int_equal(acquire(&st, "r1"), 2);
	assert_int_equal(acquire(&st, "r2"), 2);
	assert_int_equal(acquire(&st, "r3"), 0);
	assert_int_equal(acquire(&st, "r1"), 0);
	assert_int_equal(rg_state_count_owned(&st, 0), 0);
	/* r3 has nothing: r1 or r2 must give one (2 more than the least). */
	struct rg_pos owned[4];
	uint64_t unread[4] = {0};
	size_t n = 0;
	for (size_t i = 0; i < st.n_segs; i++) {
		if (st.segs[i].owner == rid(&st, "r1")) {
			owned[n++] = st.segs[i].pos;
		}
	}
	struct rg_pos out;
	assert_true(rg_state_plan_release(&st, "r1", owned, unread, n, &out));
	assert_int_equal(out.id, SEG(0, 1));
	struct buf b;
	buf_init(&b, 0);
	out.offset = 42;
	assert_int_equal(rg_rec_release(&b, "r1", &out), 0);
	apply(&st, &b);
	buf_close(&b);
	assert_int_equal(rg_state_seg(&st, 0, SEG(0, 1))->owner, 0);
	assert_int_equal(rg_state_seg(&st, 0, SEG(0, 1))->pos.offset, 42);
	assert_int_equal(acquire(&st, "r3"), 1);
	assert_int_equal(rg_state_seg(&st, 0, SEG(0, 1))->owner,
	                 rid(&st, "r3"));
	/* Balanced now (2,1,1 minus one = 1,2,1): r1 keeps its last one. */
	assert_false(rg_state_plan_release(&st, "r1", owned, unread, 1, &out));
	rg_state_close(&st);
}

/* Two readers that decided on the same state both try to take the same
 * segment: the second record is a no-op, the first owner keeps it. */
static void test_rg_state_acquire_race_second_is_noop(void **state)
{
	(void)state;
	struct rg_state st;
	make_state(&st, 1);
	add_reader(&st, "a");
	add_reader(&st, "b");
	struct rg_pos pa[1], pb[1];
	assert_int_equal(rg_state_plan_acquire(&st, "a", pa, 1), 1);
	assert_int_equal(rg_state_plan_acquire(&st, "b", pb, 1), 1);
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(rg_rec_acquire(&b, "a", pa, 1), 0);
	apply(&st, &b);
	assert_int_equal(rg_rec_acquire(&b, "b", pb, 1), 0);
	apply(&st, &b);
	buf_close(&b);
	assert_int_equal(st.segs[0].owner, rid(&st, "a"));
	rg_state_close(&st);
}

/* Unread bytes move a segment from a loaded reader to an idle one with
 * the same count, picking one no bigger than half the difference. */
static void test_rg_state_release_by_unread_bytes(void **state)
{
	(void)state;
	struct rg_state st;
	make_state(&st, 3);
	add_reader(&st, "a");
	add_reader(&st, "b");
	assert_int_equal(acquire(&st, "a"), 2);
	assert_int_equal(acquire(&st, "b"), 1);
	struct rg_pos owned[2] = {st.segs[0].pos, st.segs[1].pos};
	struct rg_pos out;
	/* Small imbalance: nothing moves. */
	uint64_t small[2] = {1000, 2000};
	assert_false(rg_state_plan_release(&st, "a", owned, small, 2, &out));
	/* 30 MiB + 8 MiB unread vs b's 1 MiB: the 8 MiB one goes (the 30
	 * MiB one is more than half the difference and would flip). */
	uint64_t big[2] = {30u << 20, 8u << 20};
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(rg_rec_progress(&b, "b", 1u << 20, NULL, 0), 0);
	apply(&st, &b);
	buf_close(&b);
	assert_true(rg_state_plan_release(&st, "a", owned, big, 2, &out));
	assert_int_equal(out.id, owned[1].id);
	/* b may not shed its only segment. */
	struct rg_pos bo[1] = {st.segs[2].pos};
	uint64_t bu[1] = {100u << 20};
	assert_false(rg_state_plan_release(&st, "b", bo, bu, 1, &out));
	rg_state_close(&st);
}

/* A merge successor becomes readable only once both predecessors are
 * completed; a split's successors become readable at once. */
static void test_rg_state_successor_waits_for_all_predecessors(void **state)
{
	(void)state;
	struct rg_state st;
	make_state(&st, 2);
	add_reader(&st, "a");
	assert_int_equal(acquire(&st, "a"), 2);
	uint64_t preds[] = {SEG(0, 0), SEG(0, 1)};
	struct rg_successor merged = {SEG(1, 2), 0.0, 1.0, 2, preds};
	complete(&st, "a", SEG(0, 0), 10, &merged, 1);
	assert_null(rg_state_seg(&st, 0, SEG(0, 0)));
	assert_null(rg_state_seg(&st, 0, SEG(1, 2)));
	assert_int_equal(st.n_futures, 1);
	/* The group's positions cover [0,1): seg 0 at its end, seg 1. */
	struct rg_pos *pos;
	size_t n;
	assert_int_equal(rg_state_positions(&st, &pos, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(pos[0].id, SEG(0, 0));
	assert_int_equal(pos[0].offset, 10);
	strata_free(pos);
	complete(&st, "a", SEG(0, 1), 20, &merged, 1);
	assert_int_equal(st.n_futures, 0);
	const struct rg_seg *s = rg_state_seg(&st, 0, SEG(1, 2));
	assert_non_null(s);
	assert_int_equal(s->owner, 0);
	assert_int_equal(s->pos.offset, 0);
	/* Split of the merged segment. */
	assert_int_equal(acquire(&st, "a"), 1);
	uint64_t p2[] = {SEG(1, 2)};
	struct rg_successor split[2] = {{SEG(2, 3), 0.0, 0.5, 1, p2},
	                                {SEG(2, 4), 0.5, 1.0, 1, p2}};
	complete(&st, "a", SEG(1, 2), 5, split, 2);
	assert_non_null(rg_state_seg(&st, 0, SEG(2, 3)));
	assert_non_null(rg_state_seg(&st, 0, SEG(2, 4)));
	assert_int_equal(rg_state_count_owned(&st, 0), 2);
	rg_state_close(&st);
}

/* A completion by a reader that does not own the segment changes
 * nothing. */
static void test_rg_state_complete_by_non_owner_is_noop(void **state)
{
	(void)state;
	struct rg_state st;
	make_state(&st, 1);
	add_reader(&st, "a");
	add_reader(&st, "b");
	assert_int_equal(acquire(&st, "a"), 1);
	complete(&st, "b", SEG(0, 0), 10, NULL, 0);
	assert_non_null(rg_state_seg(&st, 0, SEG(0, 0)));
	rg_state_close(&st);
}

/* A segment of the end cut stops at its end offset and its successors
 * (and any successor of an end-cut segment) are never read. */
static void test_rg_state_end_cut_stops_successors(void **state)
{
	(void)state;
	struct rg_state st;
	rg_state_init(&st);
	struct rg_pos end[2] = {{0, SEG(0, 0), 500, 0.0, 0.5},
	                        {0, SEG(0, 1), 700, 0.5, 1.0}};
	uint32_t idx;
	assert_int_equal(rg_state_add_stream(&st, "sc", "st", end, 2, &idx), 0);
	struct rg_pos p = {0, SEG(0, 0), 0, 0.0, 0.5};
	assert_int_equal(rg_state_add_segment(&st, &p), 0);
	p.id = SEG(0, 1);
	p.low = 0.5;
	p.high = 1.0;
	assert_int_equal(rg_state_add_segment(&st, &p), 0);
	assert_int_equal(rg_state_seg(&st, 0, SEG(0, 0))->end, 500);
	add_reader(&st, "a");
	assert_int_equal(acquire(&st, "a"), 2);
	uint64_t preds[] = {SEG(0, 0)};
	struct rg_successor succ = {SEG(1, 2), 0.0, 0.5, 1, preds};
	complete(&st, "a", SEG(0, 0), 500, &succ, 1);
	assert_null(rg_state_seg(&st, 0, SEG(1, 2)));
	assert_int_equal(st.n_futures, 0);
	assert_int_equal(st.n_segs, 1);
	rg_state_close(&st);
}

/* A checkpoint records the unassigned segments at once and each reader's
 * positions when it passes; it completes when the last reader passed,
 * and meanwhile waiting readers neither acquire nor release. */
static void test_rg_state_checkpoint_completes_when_all_pass(void **state)
{
	(void)state;
	struct rg_state st;
	make_state(&st, 4);
	add_reader(&st, "a");
	add_reader(&st, "b");
	assert_int_equal(acquire(&st, "a"), 2);
	struct buf b;
	buf_init(&b, 0);
	/* b takes one of the two left; one stays unassigned. */
	assert_int_equal(rg_rec_acquire(&b, "b", &st.segs[2].pos, 1), 0);
	apply(&st, &b);
	assert_int_equal(rg_rec_cp_create(&b, "cp"), 0);
	apply(&st, &b);
	const struct rg_checkpoint *cp = rg_state_checkpoint(&st, "cp");
	assert_non_null(cp);
	assert_int_equal(cp->n_waiting, 2);
	assert_int_equal(cp->n_pos, 1); /* the unassigned one */
	assert_int_equal(rg_state_pending_checkpoints(&st), 1);
	assert_ptr_equal(rg_state_checkpoint_for_reader(&st, "a"), cp);
	struct rg_pos tmp[4];
	assert_int_equal(rg_state_plan_acquire(&st, "b", tmp, 4), 0);
	struct rg_pos owned[2] = {st.segs[0].pos, st.segs[1].pos};
	uint64_t unread[2] = {0, 0};
	/* "a" owns 2 vs b's 1 and fair is 2: no release anyway; with a
	 * pending checkpoint certainly none. */
	assert_false(rg_state_plan_release(&st, "a", owned, unread, 2, tmp));

	/* a passes at offsets 11 and 12 (a position for b's segment is
	 * ignored). */
	struct rg_pos apos[3] = {st.segs[0].pos, st.segs[1].pos,
	                         st.segs[2].pos};
	apos[0].offset = 11;
	apos[1].offset = 12;
	apos[2].offset = 999;
	assert_int_equal(rg_rec_cp_reader(&b, "cp", "a", apos, 3), 0);
	apply(&st, &b);
	cp = rg_state_checkpoint(&st, "cp");
	assert_int_equal(cp->n_waiting, 1);
	assert_null(rg_state_checkpoint_for_reader(&st, "a"));
	/* a passing again is a no-op. */
	assert_int_equal(rg_rec_cp_reader(&b, "cp", "a", apos, 3), 0);
	apply(&st, &b);
	struct rg_pos bpos = st.segs[2].pos;
	bpos.offset = 33;
	assert_int_equal(rg_rec_cp_reader(&b, "cp", "b", &bpos, 1), 0);
	apply(&st, &b);
	cp = rg_state_checkpoint(&st, "cp");
	assert_int_equal(cp->n_waiting, 0);
	assert_int_equal(rg_state_pending_checkpoints(&st), 0);
	assert_int_equal(cp->n_pos, 4);
	assert_int_equal(cp->pos[0].offset, 11);
	assert_int_equal(cp->pos[1].offset, 12);
	assert_int_equal(cp->pos[2].offset, 33);
	assert_int_equal(cp->pos[3].offset, 0);
	/* A second checkpoint of the same name is a no-op. */
	assert_int_equal(rg_rec_cp_create(&b, "cp"), 0);
	apply(&st, &b);
	assert_int_equal(st.n_cps, 1);
	buf_close(&b);
	rg_state_close(&st);
}

/* A reader declared offline during a checkpoint counts as passed at the
 * positions given (or those last recorded), and its segments go back. */
static void test_rg_state_offline_reader_passes_checkpoint(void **state)
{
	(void)state;
	struct rg_state st;
	make_state(&st, 2);
	add_reader(&st, "a");
	add_reader(&st, "b");
	assert_int_equal(acquire(&st, "a"), 1);
	assert_int_equal(acquire(&st, "b"), 1);
	struct buf b;
	buf_init(&b, 0);
	struct rg_pos prog = st.segs[1].pos;
	prog.offset = 77;
	assert_int_equal(rg_rec_progress(&b, "b", 5, &prog, 1), 0);
	apply(&st, &b);
	assert_int_equal(rg_rec_cp_create(&b, "cp"), 0);
	apply(&st, &b);
	/* a leaves with its position; b is declared offline without. */
	struct rg_pos apos = st.segs[0].pos;
	apos.offset = 66;
	assert_int_equal(rg_rec_remove_reader(&b, "a", true, &apos, 1), 0);
	apply(&st, &b);
	assert_int_equal(rg_rec_remove_reader(&b, "b", false, NULL, 0), 0);
	apply(&st, &b);
	buf_close(&b);
	assert_int_equal(st.n_readers, 0);
	assert_int_equal(rg_state_count_owned(&st, 0), 2);
	assert_int_equal(st.segs[0].pos.offset, 66);
	assert_int_equal(st.segs[1].pos.offset, 77);
	const struct rg_checkpoint *cp = rg_state_checkpoint(&st, "cp");
	assert_int_equal(cp->n_waiting, 0);
	assert_int_equal(cp->n_pos, 2);
	assert_int_equal(cp->pos[0].offset, 66);
	assert_int_equal(cp->pos[1].offset, 77);
	rg_state_close(&st);
}

/* No more than max_outstanding checkpoints are pending; completed ones
 * are forgotten beyond RG_KEEP_COMPLETED. */
static void test_rg_state_checkpoint_limits(void **state)
{
	(void)state;
	struct rg_state st;
	make_state(&st, 1);
	add_reader(&st, "a");
	st.max_outstanding = 2;
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(rg_rec_cp_create(&b, "c1"), 0);
	apply(&st, &b);
	assert_int_equal(rg_rec_cp_create(&b, "c2"), 0);
	apply(&st, &b);
	assert_int_equal(rg_rec_cp_create(&b, "c3"), 0);
	apply(&st, &b);
	assert_int_equal(st.n_cps, 2);
	assert_null(rg_state_checkpoint(&st, "c3"));
	/* The oldest pending comes first for the reader. */
	assert_string_equal(rg_state_checkpoint_for_reader(&st, "a")->name,
	                    "c1");
	char name[16];
	for (int i = 0; i < 20; i++) {
		const struct rg_checkpoint *cp =
		        rg_state_checkpoint_for_reader(&st, "a");
		if (cp != NULL) {
			assert_int_equal(
			        rg_rec_cp_reader(&b, cp->name, "a", NULL, 0),
			        0);
			apply(&st, &b);
		}
		snprintf(name, sizeof(name), "n%d", i);
		assert_int_equal(rg_rec_cp_create(&b, name), 0);
		apply(&st, &b);
	}
	assert_true(st.n_cps <= RG_KEEP_COMPLETED + 2);
	assert_non_null(rg_state_checkpoint(&st, "n19"));
	assert_null(rg_state_checkpoint(&st, "c1"));
	buf_close(&b);
	rg_state_close(&st);
}

/* A checkpoint taken while a merge waits records the completed
 * predecessor at its end, and a reset to it puts every position back as
 * unassigned, bumps the epoch and drops readers and checkpoints; the
 * completed predecessor completed again yields the waiting successor. */
static void test_rg_state_reset_to_checkpoint(void **state)
{
	(void)state;
	struct rg_state st, rs;
	make_state(&st, 2);
	add_reader(&st, "a");
	assert_int_equal(acquire(&st, "a"), 2);
	uint64_t preds[] = {SEG(0, 0), SEG(0, 1)};
	struct rg_successor merged = {SEG(1, 2), 0.0, 1.0, 2, preds};
	complete(&st, "a", SEG(0, 0), 10, &merged, 1);
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(rg_rec_cp_create(&b, "cp"), 0);
	apply(&st, &b);
	struct rg_pos ap = st.segs[0].pos;
	ap.offset = 4;
	assert_int_equal(rg_rec_cp_reader(&b, "cp", "a", &ap, 1), 0);
	apply(&st, &b);
	buf_close(&b);
	const struct rg_checkpoint *cp = rg_state_checkpoint(&st, "cp");
	assert_int_equal(cp->n_waiting, 0);
	assert_int_equal(cp->n_pos, 2);
	assert_int_equal(cp->pos[0].id, SEG(0, 0));
	assert_int_equal(cp->pos[0].offset, 10);
	assert_int_equal(cp->pos[1].offset, 4);

	rg_state_init(&rs);
	assert_int_equal(rg_state_reset(&rs, &st, cp->pos, cp->n_pos, err), 0);
	assert_int_equal(rs.epoch, st.epoch + 1);
	assert_int_equal(rs.n_readers, 0);
	assert_int_equal(rs.n_cps, 0);
	assert_int_equal(rs.n_segs, 2);
	assert_int_equal(rs.segs[1].pos.offset, 4);
	/* Segment 0 is known complete: finishing it (unowned) makes the
	 * merge wait for segment 1 again. */
	int rc;
	struct rg_pos done = rs.segs[0].pos;
	assert_true(rg_state_complete(&rs, 0, &done, &merged, 1, &rc));
	assert_int_equal(rc, 0);
	assert_int_equal(rs.n_futures, 1);
	assert_int_equal(rs.n_segs, 1);
	/* Twice the same segment is refused. */
	struct rg_pos twice[2] = {cp->pos[1], cp->pos[1]};
	assert_int_equal(rg_state_reset(&rs, &st, twice, 2, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "twice"));
	rg_state_close(&rs);
	rg_state_close(&st);
}

/* A reader that is gone cannot act: its acquire, release, progress and
 * completion records are no-ops; adding it twice gives one reader. */
static void test_rg_state_offline_reader_records_are_noops(void **state)
{
	(void)state;
	struct rg_state st;
	make_state(&st, 2);
	add_reader(&st, "a");
	add_reader(&st, "a");
	assert_int_equal(st.n_readers, 1);
	struct buf b;
	buf_init(&b, 0);
	struct rg_pos p = st.segs[0].pos;
	assert_int_equal(rg_rec_acquire(&b, "ghost", &p, 1), 0);
	apply(&st, &b);
	assert_int_equal(rg_state_count_owned(&st, 0), 2);
	assert_int_equal(rg_rec_release(&b, "ghost", &p), 0);
	apply(&st, &b);
	assert_int_equal(rg_rec_progress(&b, "ghost", 1, &p, 1), 0);
	apply(&st, &b);
	assert_int_equal(rg_rec_remove_reader(&b, "ghost", false, NULL, 0), 0);
	apply(&st, &b);
	assert_int_equal(st.n_readers, 1);
	/* Names are checked when records are built. */
	assert_int_equal(rg_rec_add_reader(&b, ""), STRATA_EINVAL);
	char longname[RG_MAX_NAME + 2];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(rg_rec_add_reader(&b, longname), STRATA_EINVAL);
	assert_int_equal(b.len, 0);
	buf_close(&b);
	rg_state_close(&st);
}

/* Out of memory at any allocation while decoding a full state or adding
 * a reader fails cleanly with STRATA_ENOMEM and leaks nothing. */
static void test_rg_state_apply_oom(void **state)
{
	(void)state;
	struct rg_state st;
	make_state(&st, 3);
	add_reader(&st, "a");
	acquire(&st, "a");
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(rg_rec_cp_create(&b, "cp"), 0);
	apply(&st, &b);
	buf_close(&b);
	size_t len;
	uint8_t *e = encode(&st, &len);
	for (long n = 1;; n++) {
		struct rg_state t;
		rg_state_init(&t);
		oom_install(n);
		int rc = rg_state_apply(&t, e, len, err);
		long used = oom_uninstall();
		rg_state_close(&t);
		if (rc == 0) {
			assert_true(used < n);
			break;
		}
		assert_int_equal(rc, STRATA_ENOMEM);
	}
	strata_free(e);
	rg_state_close(&st);
}

/* rg_state_stream finds a stream by scope and name. */
static void test_rg_state_stream_index(void **state)
{
	(void)state;
	struct rg_state st;
	make_state(&st, 1);
	uint32_t idx;
	assert_int_equal(rg_state_add_stream(&st, "sc", "other", NULL, 0, &idx),
	                 0);
	assert_int_equal(rg_state_stream(&st, "sc", "st"), 0);
	assert_int_equal(rg_state_stream(&st, "sc", "other"), idx);
	assert_int_equal(rg_state_stream(&st, "xx", "st"), UINT32_MAX);
	assert_int_equal(rg_state_stream(&st, NULL, "st"), UINT32_MAX);
	rg_state_close(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rg_state_stream_index),
	        cmocka_unit_test(test_rg_state_encode_apply_roundtrip),
	        cmocka_unit_test(test_rg_state_apply_rejects_malformed),
	        cmocka_unit_test(test_rg_state_acquire_fair_share),
	        cmocka_unit_test(test_rg_state_acquire_race_second_is_noop),
	        cmocka_unit_test(test_rg_state_release_by_unread_bytes),
	        cmocka_unit_test(
	                test_rg_state_successor_waits_for_all_predecessors),
	        cmocka_unit_test(test_rg_state_complete_by_non_owner_is_noop),
	        cmocka_unit_test(test_rg_state_end_cut_stops_successors),
	        cmocka_unit_test(
	                test_rg_state_checkpoint_completes_when_all_pass),
	        cmocka_unit_test(
	                test_rg_state_offline_reader_passes_checkpoint),
	        cmocka_unit_test(test_rg_state_checkpoint_limits),
	        cmocka_unit_test(test_rg_state_reset_to_checkpoint),
	        cmocka_unit_test(
	                test_rg_state_offline_reader_records_are_noops),
	        cmocka_unit_test(test_rg_state_apply_oom),
	};
	return cmocka_run_group_tests_name("rg_state", tests, NULL, NULL);
}
