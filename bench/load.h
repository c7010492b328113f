/* The load generator: writer threads with an in-flight window, measured
 * windows, backlog fill and catch-up read with order check. */
#ifndef BENCH_LOAD_H
#define BENCH_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "bench/backend.h"
#include "bench/hist.h"
#include "bench/servers.h"

#define LOAD_MAX_WRITERS 64
#define LOAD_MAX_RUNS 16

/* One workload case: payload size, writers x in-flight per writer. */
struct load_case {
	size_t payload;   /* bytes per event, >= 8 (seq in the first 8) */
	unsigned writers; /* writer threads, each with its own connection */
	unsigned window;  /* events in flight per writer */
};

/* Timing of a measurement. */
struct load_opts {
	double warmup_s;     /* load before the first measured window */
	double run_s;        /* length of each measured window */
	unsigned runs;       /* measured windows, back to back */
	uint64_t max_events; /* per writer, over the whole case (bound) */
};

/* What one measured window gave. */
struct load_run {
	double secs;     /* window length actually measured */
	uint64_t events; /* events acked in the window */
	uint64_t bytes;  /* their payload bytes */
	uint64_t errors; /* failed acks in the window */
	struct hist lat; /* send-to-ack latency of those acks (ns) */
	double cpu_pct;  /* server CPU over the window, % of one core */
	uint64_t rss_kb; /* server RSS at the end of the window */
};

/*
 * Run case c against an opened backend: warm up, then o->runs windows of
 * o->run_s each, filling runs[0..o->runs-1]; srv (may be NULL) is sampled
 * for CPU and RSS at the window edges. Acks are counted in the window they
 * arrive in. Bounded: o->max_events per writer and the total time plus
 * 20 s for connects and the final drain. Returns 0, or an error with
 * errmsg when a writer could not connect or failed (connection lost).
 */
int load_measure(const struct bench_backend_ops *ops, void *state,
                 const struct load_case *c, const struct load_opts *o,
                 const struct server *srv, struct load_run *runs, char *errmsg);

/*
 * Write `total` events of c->payload bytes (split over c->writers) as fast
 * as the window allows, for a catch-up backlog; gives up after max_s
 * seconds (STRATA_ETIMEDOUT). *acked = events durably acked.
 */
int load_fill(const struct bench_backend_ops *ops, void *state,
              const struct load_case *c, uint64_t total, double max_s,
              uint64_t *acked, double *secs, char *errmsg);

/* Result of a catch-up read. */
struct load_read {
	uint64_t events;    /* events read */
	uint64_t bytes;     /* their payload bytes */
	uint64_t bad_order; /* events not next in their writer's sequence */
	uint64_t bad_size;  /* events of the wrong size */
	double secs;        /* wall time of the read */
	double cpu_pct;     /* server CPU during the read */
	uint64_t rss_kb;    /* server RSS after it */
};

/* Read `expect` events of `payload` bytes from the head of the stream,
 * checking each writer's sequence numbers come back complete and in
 * order. Bounded by timeout_ms. */
int load_read_all(const struct bench_backend_ops *ops, void *state,
                  uint64_t expect, size_t payload, int timeout_ms,
                  const struct server *srv, struct load_read *out,
                  char *errmsg);

/* Monotonic clock in ns. */
uint64_t load_now_ns(void);

/* on != 0: every writer refills its window from its own thread after
 * waking for acks, also with backends that could send from the ack
 * callback (send_from_ack); for comparing the two (--refill thread). Set
 * it before load_measure or load_fill start writers. */
void load_set_thread_refill(int on);

/* Ask every running load loop to stop soon (signal-safe). */
void load_interrupt(void);

/* True once load_interrupt was called. */
int load_interrupted(void);

#endif /* BENCH_LOAD_H */
