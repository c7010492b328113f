/* Unit tests for controller/watermarks.c: writers' time marks, the
 * watermarks the leader's round derives from them, timeouts, scaling,
 * bounds and bad input. */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "tests/unit/controller/cfsm_helpers.h"

#define E(epoch, n) (((uint64_t)(epoch) << 32) | (n))
#define TIMEOUT 60000

/* Writer `who` (its id is 16 times that byte) notes time t at now with
 * the positions ids/offsets[0..n). */
static int note(struct cfsm *f, uint8_t who, int64_t t, uint64_t now,
                const uint64_t *ids, const int64_t *offsets, size_t n)
{
	uint8_t id[16];
	memset(id, who, sizeof(id));
	Strata__V1__SegmentOffset so[8], *sp[8];
	for (size_t i = 0; i < n; i++) {
		Strata__V1__SegmentOffset init =
		        STRATA__V1__SEGMENT_OFFSET__INIT;
		so[i] = init;
		so[i].segment_id = ids[i];
		so[i].offset = offsets[i];
		sp[i] = &so[i];
	}
	Strata__V1__NoteTimeRequest q = STRATA__V1__NOTE_TIME_REQUEST__INIT;
	q.scope = "sc";
	q.stream = "s";
	q.writer_id.data = id;
	q.writer_id.len = who == 0xee ? 15 : sizeof(id);
	q.time = t;
	q.positions = sp;
	q.n_positions = n;
	Strata__V1__NoteTimeCmd c = STRATA__V1__NOTE_TIME_CMD__INIT;
	c.request = &q;
	c.now_ms = now;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case = STRATA__V1__CONTROLLER_COMMAND__COMMAND_NOTE_TIME;
	cmd.note_time = &c;
	return h_apply(f, &cmd);
}

/* Note one position. */
static int note1(struct cfsm *f, uint8_t who, int64_t t, uint64_t now,
                 uint64_t id, int64_t off)
{
	return note(f, who, t, now, &id, &off, 1);
}

static int remove_writer(struct cfsm *f, uint8_t who)
{
	uint8_t id[16];
	memset(id, who, sizeof(id));
	Strata__V1__RemoveWriterRequest q =
	        STRATA__V1__REMOVE_WRITER_REQUEST__INIT;
	q.scope = "sc";
	q.stream = "s";
	q.writer_id.data = id;
	q.writer_id.len = sizeof(id);
	Strata__V1__RemoveWriterCmd c = STRATA__V1__REMOVE_WRITER_CMD__INIT;
	c.request = &q;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_REMOVE_WRITER;
	cmd.remove_writer = &c;
	return h_apply(f, &cmd);
}

static int compute(struct cfsm *f, uint64_t now)
{
	Strata__V1__ComputeWatermarkCmd c =
	        STRATA__V1__COMPUTE_WATERMARK_CMD__INIT;
	c.scope = "sc";
	c.stream = "s";
	c.now_ms = now;
	c.writer_timeout_ms = TIMEOUT;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_COMPUTE_WATERMARK;
	cmd.compute_watermark = &c;
	return h_apply(f, &cmd);
}

static const Strata__V1__StreamRecord *rec(const struct cfsm *f)
{
	const Strata__V1__StreamRecord *s = cfsm_find_stream(f, "sc", "s");
	assert_non_null(s);
	return s;
}

/* The newest watermark; fails the test when there is none. */
static const Strata__V1__Watermark *last(const struct cfsm *f)
{
	const Strata__V1__StreamRecord *s = rec(f);
	assert_true(s->n_watermarks > 0);
	return s->watermarks[s->n_watermarks - 1];
}

/* Offset of segment id in w, -1 when absent. */
static int64_t offset_of(const Strata__V1__Watermark *w, uint64_t id)
{
	for (size_t i = 0; i < w->n_positions; i++) {
		if (w->positions[i]->segment_id == id) {
			return w->positions[i]->offset;
		}
	}
	return -1;
}

static void test_watermarks_from_marks(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(compute(f, 500), 0); /* no marks: nothing */
	assert_int_equal(rec(f)->n_watermarks, 0);
	assert_int_equal(note1(f, 0xa1, 100, 1000, E(0, 0), 10), 0);
	uint64_t ids[] = {E(0, 1), E(0, 0)};
	int64_t offs[] = {20, 5};
	assert_int_equal(note(f, 0xb2, 200, 1000, ids, offs, 2), 0);
	assert_int_equal(rec(f)->n_writer_marks, 2);
	assert_int_equal(compute(f, 2000), 0);
	const Strata__V1__Watermark *w = last(f);
	assert_int_equal(w->index, 1);
	assert_int_equal(w->lower_time, 100);
	assert_int_equal(w->upper_time, 200);
	assert_int_equal(w->created_ms, 2000);
	assert_int_equal(w->n_positions, 2);
	assert_int_equal(w->positions[0]->segment_id, E(0, 0));
	assert_int_equal(w->positions[0]->offset, 10); /* the highest */
	assert_true(w->positions[0]->low == 0.0 &&
	            w->positions[0]->high == 0.5);
	assert_int_equal(w->positions[1]->offset, 20);
	assert_true(w->positions[1]->low == 0.5 &&
	            w->positions[1]->high == 1.0);
	/* Nothing moved the lower bound: no new watermark. */
	assert_int_equal(note1(f, 0xb2, 250, 2500, E(0, 1), 40), 0);
	assert_int_equal(compute(f, 3000), 0);
	assert_int_equal(rec(f)->n_watermarks, 1);
	/* The slow writer moves on: lower 250 (b2), upper 300. */
	assert_int_equal(note1(f, 0xa1, 300, 3500, E(0, 0), 30), 0);
	assert_int_equal(compute(f, 4000), 0);
	w = last(f);
	assert_int_equal(w->index, 2);
	assert_int_equal(w->lower_time, 250);
	assert_int_equal(w->upper_time, 300);
	assert_int_equal(offset_of(w, E(0, 0)), 30);
	assert_int_equal(offset_of(w, E(0, 1)), 40);
	/* The query returns those after an index. */
	char err[STRATA_ERRMSG_SIZE];
	Strata__V1__WatermarksReply *r = NULL;
	assert_int_equal(cfsm_watermarks(f, "sc", "s", 1, &r, err), 0);
	assert_int_equal(r->n_watermarks, 1);
	assert_int_equal(r->watermarks[0]->index, 2);
	cfsm_msg_free(r);
	assert_int_equal(cfsm_watermarks(f, "sc", "s", 0, &r, err), 0);
	assert_int_equal(r->n_watermarks, 2);
	cfsm_msg_free(r);
	assert_int_equal(cfsm_watermarks(f, "sc", "nope", 0, &r, err),
	                 STRATA_ENOENT);
	/* A same-time note is fine; an earlier one is refused. */
	assert_int_equal(note1(f, 0xa1, 300, 3600, E(0, 0), 31), 0);
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(note1(f, 0xa1, 299, 3700, E(0, 0), 32), STRATA_EINVAL);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
}

static void test_watermarks_positions_never_go_back(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(note1(f, 0xa1, 100, 1000, E(0, 0), 50), 0);
	assert_int_equal(compute(f, 1000), 0);
	/* A new writer with a later time at an earlier offset: the new
	 * watermark keeps the previous offset (a reader past the old one
	 * stays past the new one). */
	assert_int_equal(remove_writer(f, 0xa1), 0);
	assert_int_equal(note1(f, 0xc3, 150, 1100, E(0, 0), 20), 0);
	assert_int_equal(compute(f, 1200), 0);
	const Strata__V1__Watermark *w = last(f);
	assert_int_equal(w->index, 2);
	assert_int_equal(w->lower_time, 150);
	assert_int_equal(offset_of(w, E(0, 0)), 50);
}

static void test_watermarks_writer_timeout_and_removal(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(note1(f, 0xa1, 100, 1000, E(0, 0), 10), 0);
	assert_int_equal(note1(f, 0xb2, 500, 5000, E(0, 1), 10), 0);
	assert_int_equal(compute(f, 6000), 0);
	assert_int_equal(last(f)->lower_time, 100);
	/* a1 silent for longer than the timeout: it goes, b2 counts. */
	assert_int_equal(compute(f, 1000 + TIMEOUT + 1), 0);
	assert_int_equal(rec(f)->n_writer_marks, 1);
	assert_int_equal(last(f)->lower_time, 500);
	/* A closed writer goes at once; unknown ones are no-ops. */
	assert_int_equal(remove_writer(f, 0xb2), 0);
	assert_int_equal(remove_writer(f, 0x77), 0);
	assert_int_equal(rec(f)->n_writer_marks, 0);
	/* Every mark timed out: they go, no watermark. */
	assert_int_equal(note1(f, 0xa1, 900, 70000, E(0, 0), 20), 0);
	assert_int_equal(compute(f, 70000 + TIMEOUT + 1), 0);
	assert_int_equal(rec(f)->n_writer_marks, 0);
	assert_int_equal(last(f)->lower_time, 500);
}

static void test_watermarks_across_a_scale(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(note1(f, 0xa1, 100, 1000, E(0, 0), 10), 0);
	assert_int_equal(note1(f, 0xb2, 100, 1000, E(0, 1), 10), 0);
	assert_int_equal(compute(f, 1000), 0);
	uint64_t seal[] = {E(0, 0)};
	double lo[] = {0.0, 0.25}, hi[] = {0.25, 0.5};
	assert_int_equal(h_scale(f, "sc", "s", seal, 1, lo, hi, 2), 0);
	/* a1 moved to the successors; the old segment leaves the cut. */
	uint64_t ids[] = {E(1, 2), E(1, 3)};
	int64_t offs[] = {7, 8};
	assert_int_equal(note(f, 0xa1, 200, 2000, ids, offs, 2), 0);
	assert_int_equal(note1(f, 0xb2, 200, 2000, E(0, 1), 30), 0);
	assert_int_equal(compute(f, 2000), 0);
	const Strata__V1__Watermark *w = last(f);
	assert_int_equal(w->n_positions, 3);
	assert_int_equal(offset_of(w, E(0, 0)), -1);
	assert_int_equal(offset_of(w, E(0, 1)), 30);
	assert_int_equal(offset_of(w, E(1, 2)), 7);
	assert_int_equal(offset_of(w, E(1, 3)), 8);
}

/* 1 when a round of sc/s at now would change it, else 0. */
static int due(const struct cfsm *f, uint64_t now)
{
	return cfsm_watermark_due(rec(f), now, TIMEOUT) ? 1 : 0;
}

static void test_watermarks_round_only_when_due(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(due(f, 1000), 0); /* no marks */
	assert_int_equal(note1(f, 0xa1, 100, 1000, E(0, 0), 10), 0);
	assert_int_equal(due(f, 1000), 1); /* a first watermark */
	assert_int_equal(compute(f, 1000), 0);
	assert_int_equal(due(f, 2000), 0); /* nothing new: no entry */
	assert_int_equal(note1(f, 0xa1, 100, 2000, E(0, 0), 20), 0);
	assert_int_equal(due(f, 2000), 0); /* same time: nothing to record */
	assert_int_equal(note1(f, 0xa1, 150, 3000, E(0, 0), 30), 0);
	assert_int_equal(due(f, 3000), 1);
	assert_int_equal(compute(f, 3000), 0);
	assert_int_equal(due(f, 3000 + TIMEOUT), 0);
	assert_int_equal(due(f, 3000 + TIMEOUT + 1), 1); /* a mark expires */
	assert_int_equal(compute(f, 3000 + TIMEOUT + 1), 0);
	assert_int_equal(due(f, 3000 + TIMEOUT + 1), 0);
	assert_int_equal(rec(f)->n_writer_marks, 0);
}

static void test_watermarks_bound_and_snapshot(void **state)
{
	struct cfsm *f = *state;
	for (int64_t i = 1; i <= 1030; i++) {
		assert_int_equal(note1(f, 0xa1, i, (uint64_t)i, E(0, 0), i), 0);
		assert_int_equal(compute(f, (uint64_t)i), 0);
	}
	const Strata__V1__StreamRecord *s = rec(f);
	assert_int_equal(s->n_watermarks, 1024);
	assert_int_equal(s->watermarks[0]->index, 7);
	assert_int_equal(last(f)->index, 1030);
	/* Marks and watermarks survive a snapshot. */
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	static struct cfsm g;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&g, 4, err), 0);
	assert_int_equal(cfsm_restore(&g, snap, len, err), 0);
	assert_true(h_same(&g, snap, len));
	assert_int_equal(cfsm_find_stream(&g, "sc", "s")->n_writer_marks, 1);
	cfsm_close(&g);
	strata_free(snap);
}

static void test_watermarks_bad_input(void **state)
{
	struct cfsm *f = *state;
	assert_int_equal(note1(f, 0xa1, 100, 1000, E(0, 0), 10), 0);
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(note1(f, 0xb2, 100, 1000, E(0, 9), 10),
	                 STRATA_EINVAL); /* unknown segment */
	assert_int_equal(note1(f, 0xb2, 100, 1000, E(0, 0), -1), STRATA_EINVAL);
	assert_int_equal(note(f, 0xb2, 100, 1000, NULL, NULL, 0),
	                 STRATA_EINVAL); /* no positions */
	assert_int_equal(note1(f, 0xee, 100, 1000, E(0, 0), 1),
	                 STRATA_EINVAL); /* 15-byte id */
	Strata__V1__ComputeWatermarkCmd c =
	        STRATA__V1__COMPUTE_WATERMARK_CMD__INIT;
	c.scope = "sc";
	c.stream = "s";
	c.now_ms = 5000;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_COMPUTE_WATERMARK;
	cmd.compute_watermark = &c;
	assert_int_equal(h_apply(f, &cmd), STRATA_EINVAL); /* timeout 0 */
	c.stream = "nope";
	c.writer_timeout_ms = 1;
	assert_int_equal(h_apply(f, &cmd), STRATA_ENOENT);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
	/* Too many writers. */
	for (unsigned i = 1; i < 1024; i++) {
		uint8_t id[16] = {0};
		memcpy(id, &i, sizeof(i));
		Strata__V1__SegmentOffset so = STRATA__V1__SEGMENT_OFFSET__INIT;
		Strata__V1__SegmentOffset *sp = &so;
		so.segment_id = E(0, 1);
		Strata__V1__NoteTimeRequest q =
		        STRATA__V1__NOTE_TIME_REQUEST__INIT;
		q.scope = "sc";
		q.stream = "s";
		q.writer_id.data = id;
		q.writer_id.len = 16;
		q.positions = &sp;
		q.n_positions = 1;
		Strata__V1__NoteTimeCmd nc = STRATA__V1__NOTE_TIME_CMD__INIT;
		nc.request = &q;
		Strata__V1__ControllerCommand ncmd =
		        STRATA__V1__CONTROLLER_COMMAND__INIT;
		ncmd.command_case =
		        STRATA__V1__CONTROLLER_COMMAND__COMMAND_NOTE_TIME;
		ncmd.note_time = &nc;
		assert_int_equal(h_apply(f, &ncmd), 0);
	}
	assert_int_equal(rec(f)->n_writer_marks, 1024);
	assert_int_equal(note1(f, 0xb2, 100, 1000, E(0, 0), 10), STRATA_ENOSPC);
	assert_int_equal(note1(f, 0xa1, 101, 1000, E(0, 0), 10), 0);
	/* Sealed: no notes. */
	assert_int_equal(h_seal(f, "sc", "s"), 0);
	assert_int_equal(note1(f, 0xa1, 102, 2000, E(0, 0), 10),
	                 STRATA_ESEALED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_watermarks_from_marks,
	                                        h_setup_sc_s, h_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_watermarks_positions_never_go_back, h_setup_sc_s,
	                h_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_watermarks_writer_timeout_and_removal,
	                h_setup_sc_s, h_teardown),
	        cmocka_unit_test_setup_teardown(test_watermarks_across_a_scale,
	                                        h_setup_sc_s, h_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_watermarks_round_only_when_due, h_setup_sc_s,
	                h_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_watermarks_bound_and_snapshot, h_setup_sc_s,
	                h_teardown),
	        cmocka_unit_test_setup_teardown(test_watermarks_bad_input,
	                                        h_setup_sc_s, h_teardown),
	};
	return cmocka_run_group_tests_name("controller_watermarks", tests, NULL,
	                                   NULL);
}
