/* Unit tests for client/loop.c: the client's I/O thread. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <setjmp.h>

#include <cmocka.h>

#include "client/loop.h"

struct rec {
	struct loop *l;
	atomic_int order[8];
	atomic_int n;
	atomic_bool on_thread;
};

struct item {
	struct rec *r;
	int id;
	struct loop_task task;
	struct loop_timer timer;
};

static void note(void *arg)
{
	struct item *it = arg;
	int i = atomic_fetch_add(&it->r->n, 1);
	if (i < 8) {
		atomic_store(&it->r->order[i], it->id);
	}
	if (!loop_on_thread(it->r->l)) {
		atomic_store(&it->r->on_thread, false);
	}
}

static void wait_n(struct rec *r, int n)
{
	for (int i = 0; i < 2000 && atomic_load(&r->n) < n; i++) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

/* Tasks run in order on the loop thread; posting twice runs once. */
static void test_loop_post_fifo_coalesced(void **state)
{
	(void)state;
	struct rec r = {.n = 0, .on_thread = true};
	struct item it[3];
	assert_int_equal(loop_new(&r.l, "test-loop"), 0);
	assert_false(loop_on_thread(r.l));
	for (int i = 0; i < 3; i++) {
		it[i].r = &r;
		it[i].id = i;
		loop_task_init(&it[i].task, note, &it[i]);
	}
	loop_post(r.l, &it[0].task);
	loop_post(r.l, &it[1].task);
	loop_post(r.l, &it[2].task);
	wait_n(&r, 3);
	assert_int_equal(atomic_load(&r.order[0]), 0);
	assert_int_equal(atomic_load(&r.order[2]), 2);
	assert_true(atomic_load(&r.on_thread));
	loop_free(r.l);
}

/* Timers fire in due order; a cancelled one never fires; loop_free fires
 * the armed ones at once. */
static void test_loop_timer_order_cancel_drain(void **state)
{
	(void)state;
	struct rec r = {.n = 0, .on_thread = true};
	struct item it[4];
	assert_int_equal(loop_new(&r.l, "test-loop"), 0);
	for (int i = 0; i < 4; i++) {
		it[i].r = &r;
		it[i].id = i;
		loop_timer_init(&it[i].timer, note, &it[i]);
	}
	loop_timer_arm(r.l, &it[0].timer, 60);
	loop_timer_arm(r.l, &it[1].timer, 20);
	loop_timer_arm(r.l, &it[2].timer, 40);
	loop_timer_arm(r.l, &it[3].timer, 100000);
	assert_true(loop_timer_cancel(r.l, &it[2].timer));
	assert_false(loop_timer_cancel(r.l, &it[2].timer));
	wait_n(&r, 2);
	assert_int_equal(atomic_load(&r.order[0]), 1);
	assert_int_equal(atomic_load(&r.order[1]), 0);
	loop_free(r.l); /* fires timer 3 now */
	assert_int_equal(atomic_load(&r.n), 3);
	assert_int_equal(atomic_load(&r.order[2]), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_loop_post_fifo_coalesced),
	        cmocka_unit_test(test_loop_timer_order_cancel_drain),
	};
	return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
