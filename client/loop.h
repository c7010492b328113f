/* The client's I/O thread: a task queue, timers and socket watches, run
 * one at a time. */
#ifndef CLIENT_LOOP_H
#define CLIENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

/*
 * One thread runs posted tasks and due timers, one at a time, in order
 * (loop_run_or_post may run a task on its caller's thread instead, still
 * one at a time).
 * Tasks and timers are intrusive (embedded in the caller's objects), so
 * posting never allocates and never fails: RPC completions on other
 * threads post their result this way. Everything is thread-safe.
 */
struct loop;

typedef void (*loop_fn)(void *arg);

/* A task: post it to run fn(arg) once on the loop thread. */
struct loop_task {
	struct loop_task *next; /* queue link (loop-owned while queued) */
	loop_fn fn;
	void *arg;
	bool queued; /* posted, not yet started */
};

/* A timer: armed, it runs fn(arg) once on the loop thread when due. */
struct loop_timer {
	struct loop_timer *next; /* sorted list link (loop-owned) */
	loop_fn fn;
	void *arg;
	uint64_t due_ms; /* monotonic */
	bool armed;
};

/* A watch: while added, fn(arg, epoll events) runs on the loop thread
 * whenever fd is ready (level-triggered). */
typedef void (*loop_io_fn)(void *arg, uint32_t events);
struct loop_io {
	int fd; /* -1 when not added */
	loop_io_fn fn;
	void *arg;
};

/* Monotonic milliseconds. */
uint64_t loop_now_ms(void);

/* Start a loop thread (name: thread name, <= 15 chars). STRATA_ENOMEM /
 * STRATA_EIO. */
int loop_new(struct loop **out, const char *name);

/*
 * Stop: runs every posted task and fires every armed timer at once (due
 * or not; objects see their closing flags) until both are empty, then
 * joins the thread and frees the loop. Must not be called on the loop
 * thread.
 */
void loop_free(struct loop *l);

/* Initialise a task / timer (fn and arg fixed for its life). */
void loop_task_init(struct loop_task *t, loop_fn fn, void *arg);
void loop_timer_init(struct loop_timer *t, loop_fn fn, void *arg);

/* Queue t; a no-op when it is already queued (coalescing). */
void loop_post(struct loop *l, struct loop_task *t);

/*
 * Run t at once on the calling thread when the loop is idle (nothing
 * queued or running, no timer due), else queue it as loop_post does.
 * Tasks still run one at a time and in order, and while t runs here
 * loop_on_thread() is true on this thread. For completions that arrive on
 * another library thread (an RPC reply on an NNG thread): the loop thread
 * is not woken, one thread hop less. The caller must hold no lock a task
 * may take, and must not be inside a task of l (that would run t
 * nested: it is queued instead only when the loop is busy).
 */
void loop_run_or_post(struct loop *l, struct loop_task *t);

/* Arm t to fire in delay_ms (re-arming moves it). */
void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t delay_ms);

/* Disarm t; true when it was armed (it will not fire). */
bool loop_timer_cancel(struct loop *l, struct loop_timer *t);

/*
 * Watch fd for events (EPOLLIN, EPOLLOUT; errors and hang-ups always
 * wake it). These three are called on the loop thread only (inside a
 * task, timer or watch). Add: 0, or STRATA_ENOMEM / STRATA_EIO. Del
 * removes the watch (its fn is not called again; io may then be freed)
 * and leaves closing fd to the caller.
 */
int loop_io_add(struct loop *l, struct loop_io *io, int fd, uint32_t events,
                loop_io_fn fn, void *arg);
int loop_io_mod(struct loop *l, struct loop_io *io, uint32_t events);
void loop_io_del(struct loop *l, struct loop_io *io);

/* True on the loop's own thread. */
bool loop_on_thread(const struct loop *l);

#endif /* CLIENT_LOOP_H */
