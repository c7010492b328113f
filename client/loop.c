/* The client's I/O thread: a task queue, timers and socket watches (see
 * loop.h). It sleeps in epoll_wait; posting wakes it through an eventfd
 * only when it sleeps. */
#include "client/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "strata/error.h"

#define LOOP_EVENTS 32

struct loop {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* busy ended (waiting_busy) */
	pthread_t thread;
	int epfd;
	int wakefd;             /* eventfd: wakes epoll_wait */
	struct loop_task *head; /* FIFO of posted tasks */
	struct loop_task *tail;
	struct loop_timer *timers; /* armed, sorted by due_ms */
	bool stopping;             /* drain everything, then exit */
	bool busy;                 /* a task or timer is running (any thread) */
	bool waiting_busy;         /* the loop thread waits for busy to end */
	bool sleeping;             /* in epoll_wait: wake through wakefd */
	bool woken;                /* wakefd written since the last sleep */
	uint64_t io_dels;          /* watches removed (loop_io_del) */
};

/* The wakefd's watch (never run: loop_poll drains the eventfd). */
static struct loop_io wake_io = {.fd = -1};

/* The loop whose task this thread runs inline (loop_run_or_post). */
static _Thread_local const struct loop *inline_loop;

uint64_t loop_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wake the loop thread for new work (l->mu held). */
static void loop_wake(struct loop *l)
{
	if (l->waiting_busy) {
		pthread_cond_signal(&l->cv);
	}
	if (l->sleeping && !l->woken) {
		l->woken = true;
		uint64_t one = 1;
		ssize_t n = write(l->wakefd, &one, sizeof(one));
		(void)n; /* EAGAIN: the counter is already non-zero */
	}
}

/* Run fn(arg) as the one running task (l->mu held, dropped meanwhile). */
static void run_busy(struct loop *l, loop_fn fn, void *arg)
{
	l->busy = true;
	pthread_mutex_unlock(&l->mu);
	fn(arg);
	pthread_mutex_lock(&l->mu);
	l->busy = false;
}

/* Sleep in epoll_wait until an fd is ready, the wakefd is written or
 * timeout_ms (-1: none) passes; then run the ready watches (l->mu held).
 * Once a watch is removed the rest of the batch is dropped (it may name
 * the removed one): epoll is level-triggered, the next wait reports the
 * others again. */
static void loop_poll(struct loop *l, int timeout_ms)
{
	struct epoll_event evs[LOOP_EVENTS];
	uint64_t dels = l->io_dels;
	l->sleeping = true;
	l->woken = false;
	pthread_mutex_unlock(&l->mu);
	int n = epoll_wait(l->epfd, evs, LOOP_EVENTS, timeout_ms);
	pthread_mutex_lock(&l->mu);
	l->sleeping = false;
	for (int i = 0; i < n; i++) {
		struct loop_io *io = evs[i].data.ptr;
		if (io == &wake_io) {
			uint64_t v;
			ssize_t r = read(l->wakefd, &v, sizeof(v));
			(void)r;
			continue;
		}
		while (l->busy) { /* a task runs inline on another thread */
			l->waiting_busy = true;
			pthread_cond_wait(&l->cv, &l->mu);
			l->waiting_busy = false;
		}
		if (l->io_dels != dels) {
			return;
		}
		l->busy = true;
		pthread_mutex_unlock(&l->mu);
		io->fn(io->arg, evs[i].events);
		pthread_mutex_lock(&l->mu);
		l->busy = false;
	}
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
			run_busy(l, tm->fn, tm->arg);
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
			run_busy(l, t->fn, t->arg);
			continue;
		}
		if (l->stopping) {
			break;
		}
		int timeout = -1;
		if (l->timers != NULL) {
			uint64_t due = l->timers->due_ms;
			uint64_t wait = due > now ? due - now : 0;
			timeout = wait > INT32_MAX ? INT32_MAX : (int)wait;
		}
		loop_poll(l, timeout);
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
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &wake_io};
	if (l->epfd < 0 || l->wakefd < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) != 0) {
		goto err;
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
		goto err;
	}
	if (name != NULL) {
		pthread_setname_np(l->thread, name);
	}
	*out = l;
	return 0;
err:
	if (l->wakefd >= 0) {
		close(l->wakefd);
	}
	if (l->epfd >= 0) {
		close(l->epfd);
	}
	strata_free(l);
	return STRATA_EIO;
}

void loop_free(struct loop *l)
{
	if (l == NULL) {
		return;
	}
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	loop_wake(l);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	close(l->wakefd);
	close(l->epfd);
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
		loop_wake(l);
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
	} else if (l->head != NULL) {
		loop_wake(l); /* t posted work while the loop slept */
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
	if (l->timers == t) {
		loop_wake(l); /* the new earliest: the sleep must shorten */
	}
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

int loop_io_add(struct loop *l, struct loop_io *io, int fd, uint32_t events,
                loop_io_fn fn, void *arg)
{
	io->fd = fd;
	io->fn = fn;
	io->arg = arg;
	struct epoll_event ev = {.events = events, .data.ptr = io};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		io->fd = -1;
		return errno == ENOMEM || errno == ENOSPC ? STRATA_ENOMEM
		                                          : STRATA_EIO;
	}
	return 0;
}

int loop_io_mod(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = io};
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) == 0 ? 0
	                                                           : STRATA_EIO;
}

void loop_io_del(struct loop *l, struct loop_io *io)
{
	if (io->fd < 0) {
		return;
	}
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->fd = -1;
	pthread_mutex_lock(&l->mu);
	l->io_dels++;
	pthread_mutex_unlock(&l->mu);
}
