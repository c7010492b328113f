/* The client's I/O thread: a task queue and timers (see loop.h). */
#include "client/loop.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common/alloc.h"
#include "strata/error.h"

struct loop {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	struct loop_task *head; /* FIFO of posted tasks */
	struct loop_task *tail;
	struct loop_timer *timers; /* armed, sorted by due_ms */
	bool stopping;             /* drain everything, then exit */
	bool busy;                 /* a task or timer is running (any thread) */
	bool waiting_busy;         /* the loop thread waits for busy to end */
};

/* The loop whose task this thread runs inline (loop_run_or_post). */
static _Thread_local const struct loop *inline_loop;

uint64_t loop_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	pthread_mutex_lock(&l->mu);
	for (;;) {
		if (l->busy) { /* a task runs inline on another thread */
			l->waiting_busy = true;
			pthread_cond_wait(&l->cv, &l->mu);
			l->waiting_busy = false;
			continue;
		}
		uint64_t now = loop_now_ms();
		struct loop_timer *tm = l->timers;
		if (tm != NULL && (l->stopping || tm->due_ms <= now)) {
			l->timers = tm->next;
			tm->next = NULL;
			tm->armed = false;
			l->busy = true;
			pthread_mutex_unlock(&l->mu);
			tm->fn(tm->arg);
			pthread_mutex_lock(&l->mu);
			l->busy = false;
			continue;
		}
		struct loop_task *t = l->head;
		if (t != NULL) {
			l->head = t->next;
			if (l->head == NULL) {
				l->tail = NULL;
			}
			t->next = NULL;
			t->queued = false;
			l->busy = true;
			pthread_mutex_unlock(&l->mu);
			t->fn(t->arg);
			pthread_mutex_lock(&l->mu);
			l->busy = false;
			continue;
		}
		if (l->stopping) {
			break;
		}
		if (l->timers != NULL) {
			uint64_t due = l->timers->due_ms;
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t wait = due > now ? due - now : 0;
			ts.tv_sec += (time_t)(wait / 1000u);
			ts.tv_nsec += (long)(wait % 1000u) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&l->cv, &l->mu, &ts);
		} else {
			pthread_cond_wait(&l->cv, &l->mu);
		}
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

int loop_new(struct loop **out, const char *name)
{
	struct loop *l = strata_calloc(1, sizeof(*l));
	if (l == NULL) {
		return STRATA_ENOMEM;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&l->thread, NULL, loop_main, l) != 0) {
		pthread_cond_destroy(&l->cv);
		pthread_mutex_destroy(&l->mu);
		strata_free(l);
		return STRATA_EIO;
	}
	if (name != NULL) {
		pthread_setname_np(l->thread, name);
	}
	*out = l;
	return 0;
}

void loop_free(struct loop *l)
{
	if (l == NULL) {
		return;
	}
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	strata_free(l);
}

void loop_task_init(struct loop_task *t, loop_fn fn, void *arg)
{
	t->next = NULL;
	t->fn = fn;
	t->arg = arg;
	t->queued = false;
}

void loop_timer_init(struct loop_timer *t, loop_fn fn, void *arg)
{
	t->next = NULL;
	t->fn = fn;
	t->arg = arg;
	t->due_ms = 0;
	t->armed = false;
}

void loop_post(struct loop *l, struct loop_task *t)
{
	pthread_mutex_lock(&l->mu);
	if (!t->queued) {
		t->queued = true;
		t->next = NULL;
		if (l->tail != NULL) {
			l->tail->next = t;
		} else {
			l->head = t;
		}
		l->tail = t;
		pthread_cond_signal(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
}

void loop_run_or_post(struct loop *l, struct loop_task *t)
{
	pthread_mutex_lock(&l->mu);
	bool idle = !l->busy && l->head == NULL && !t->queued && !l->stopping &&
	            (l->timers == NULL || l->timers->due_ms > loop_now_ms());
	if (!idle) {
		pthread_mutex_unlock(&l->mu);
		loop_post(l, t);
		return;
	}
	l->busy = true;
	pthread_mutex_unlock(&l->mu);
	const struct loop *outer = inline_loop;
	inline_loop = l;
	t->fn(t->arg);
	inline_loop = outer;
	pthread_mutex_lock(&l->mu);
	l->busy = false;
	if (l->waiting_busy) {
		pthread_cond_signal(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
}

static void timer_unlink(struct loop *l, struct loop_timer *t)
{
	for (struct loop_timer **pp = &l->timers; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			t->next = NULL;
			t->armed = false;
			return;
		}
	}
}

void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t delay_ms)
{
	pthread_mutex_lock(&l->mu);
	if (t->armed) {
		timer_unlink(l, t);
	}
	t->due_ms = loop_now_ms() + delay_ms;
	t->armed = true;
	struct loop_timer **pp = &l->timers;
	while (*pp != NULL && (*pp)->due_ms <= t->due_ms) {
		pp = &(*pp)->next;
	}
	t->next = *pp;
	*pp = t;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

bool loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	pthread_mutex_lock(&l->mu);
	bool was = t->armed;
	if (was) {
		timer_unlink(l, t);
	}
	pthread_mutex_unlock(&l->mu);
	return was;
}

bool loop_on_thread(const struct loop *l)
{
	return l != NULL &&
	       (pthread_equal(pthread_self(), l->thread) || inline_loop == l);
}
