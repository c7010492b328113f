/* Unit tests for client/loop.c: the client's I/O thread. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
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

/* A task that records its thread and, once, posts `then` from inside. */
struct inl {
	struct rec *r;
	pthread_t ran_on;
	struct loop_task task;
	struct item *then;
};

static void inl_run(void *arg)
{
	struct inl *x = arg;
	x->ran_on = pthread_self();
	if (!loop_on_thread(x->r->l)) {
		atomic_store(&x->r->on_thread, false);
	}
	if (x->then != NULL) {
		loop_post(x->r->l, &x->then->task); /* queued: x still runs */
		struct timespec ts = {0, 20000000};
		nanosleep(&ts, NULL); /* the loop thread must wait for us */
		atomic_store(&x->r->order[7], atomic_load(&x->r->n));
	}
	atomic_fetch_add(&x->r->n, 1);
}

/* A gate task holding the loop busy until opened. */
struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool open, entered;
	struct loop_task task;
};

static void gate_run(void *arg)
{
	struct gate *g = arg;
	pthread_mutex_lock(&g->mu);
	g->entered = true;
	pthread_cond_broadcast(&g->cv);
	while (!g->open) {
		pthread_cond_wait(&g->cv, &g->mu);
	}
	pthread_mutex_unlock(&g->mu);
}

/* Idle: the task runs on the caller's thread, which counts as the loop's
 * meanwhile; what it posts runs after it, on the loop thread. Busy: the
 * task is queued behind the running one. */
static void test_loop_run_or_post(void **state)
{
	(void)state;
	struct rec r = {.n = 0, .on_thread = true};
	assert_int_equal(loop_new(&r.l, "test-loop"), 0);
	struct item after = {.r = &r, .id = 5};
	loop_task_init(&after.task, note, &after);
	struct inl x = {.r = &r, .then = &after};
	loop_task_init(&x.task, inl_run, &x);
	loop_run_or_post(r.l, &x.task); /* idle: runs here, now */
	assert_true(pthread_equal(x.ran_on, pthread_self()));
	assert_true(atomic_load(&r.on_thread));
	assert_false(loop_on_thread(r.l));             /* only while it ran */
	assert_int_equal(atomic_load(&r.order[7]), 0); /* `after` waited */
	wait_n(&r, 2);
	assert_int_equal(atomic_load(&r.order[1]), 5);

	struct gate g = {.open = false, .entered = false};
	pthread_mutex_init(&g.mu, NULL);
	pthread_cond_init(&g.cv, NULL);
	loop_task_init(&g.task, gate_run, &g);
	loop_post(r.l, &g.task);
	pthread_mutex_lock(&g.mu);
	while (!g.entered) {
		pthread_cond_wait(&g.cv, &g.mu);
	}
	pthread_mutex_unlock(&g.mu);
	struct inl y = {.r = &r};
	loop_task_init(&y.task, inl_run, &y);
	loop_run_or_post(r.l, &y.task); /* busy: queued */
	assert_int_equal(atomic_load(&r.n), 2);
	pthread_mutex_lock(&g.mu);
	g.open = true;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	wait_n(&r, 3);
	assert_int_equal(atomic_load(&r.n), 3);
	assert_false(pthread_equal(y.ran_on, pthread_self()));
	assert_true(atomic_load(&r.on_thread));
	loop_free(r.l);
	pthread_cond_destroy(&g.cv);
	pthread_mutex_destroy(&g.mu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_loop_post_fifo_coalesced),
	        cmocka_unit_test(test_loop_timer_order_cancel_drain),
	        cmocka_unit_test(test_loop_run_or_post),
	};
	return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
