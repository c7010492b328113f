/* The load generator: writer threads with an in-flight window, measured
 * windows, backlog fill and catch-up read with order check. */
#include "bench/load.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "strata/error.h"

/*
 * happy path: main starts N writer threads; each opens its own writer and
 * keeps `window` events in flight (send while fewer are outstanding, then
 * poll for acks; with a send_from_ack backend the thread fills the window
 * once and each ack sends the next event from the library's callback, as
 * an async producer chains writes, unless --refill thread). The main
 * thread moves a shared phase through warm-up (-1), windows 0..runs-1 and
 * stop (runs), sampling the server at each edge; an ack is attributed to
 * the phase current when it arrives. On stop each writer waits (bounded)
 * for its outstanding acks, closes and exits.
 * failure modes: a writer that cannot connect or whose poll fails records
 * its error and exits; main notices (all writers gone, or the error after
 * join) and reports the first error. Every loop is bounded in events and
 * in time.
 *
 * Sequence numbers: seq = writer id << 48 | n, n = 0, 1, 2... per writer,
 * written little-endian in the payload's first 8 bytes. The send time of
 * an in-flight event lives in a slot ring indexed by n (4x the window);
 * a slot is reused only after its ack.
 */

#define SEQ_BITS 48
#define SEQ_MASK ((UINT64_C(1) << SEQ_BITS) - 1)
#define MAX_PAYLOAD (2u << 20)
#define POLL_MS 50
#define DRAIN_MS 10000
#define CONNECT_MS 10000

static atomic_int interrupted;
static int thread_refill; /* set before any writer thread starts */

void load_set_thread_refill(int on)
{
	thread_refill = on;
}

/* Whether a case's acks refill its windows. */
static int refill_from_ack(const struct bench_backend_ops *ops)
{
	return ops->send_from_ack && !thread_refill;
}

void load_interrupt(void)
{
	atomic_store(&interrupted, 1);
}

int load_interrupted(void)
{
	return atomic_load(&interrupted);
}

uint64_t load_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* A writer's pool of incompressible bytes: its payloads are windows at
 * random offsets of it, each stamped with its seq while it is sent. At
 * least 1 MiB (L2-sized, so that cutting a payload is not a trip to memory
 * for the sending thread) and 4 payloads. */
static size_t pool_size(size_t payload)
{
	size_t n = (size_t)1 << 20;
	return n > 4 * payload ? n : 4 * payload;
}

static void pool_fill(unsigned char *pool, size_t n, uint64_t seed)
{
	uint64_t s = UINT64_C(0x9e3779b97f4a7c15) ^ seed;
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t v = xorshift(&s);
		memcpy(pool + i, &v, 8);
	}
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

struct shared {
	const struct bench_backend_ops *ops; /* the system */
	void *state;                         /* its open stream */
	size_t payload;                      /* bytes per event */
	unsigned window;                     /* in flight per writer */
	unsigned runs;                       /* measured windows */
	atomic_int phase;     /* -1 warm-up, 0..runs-1 window, runs stop */
	atomic_uint opened;   /* writers that finished writer_open */
	atomic_uint finished; /* writer threads done */
	_Atomic uint64_t deadline_ns; /* hard end of the whole loop */
	int from_ack; /* the acks refill the windows (send_from_ack) */
};

struct wctx {
	struct shared *sh;       /* common state */
	pthread_t thread;        /* this writer's thread */
	unsigned id;             /* writer id (seq high bits) */
	void *w;                 /* backend writer */
	uint64_t limit;          /* events to send at most */
	uint64_t next;           /* next n to send */
	unsigned mask;           /* slot ring size - 1 */
	_Atomic uint64_t *slot;  /* seq+1 of the in-flight event, 0 = free */
	uint64_t *sent_ns;       /* its send time */
	atomic_uint inflight;    /* events sent and not yet acked */
	uint64_t rng;            /* payload offsets */
	pthread_mutex_t send_mu; /* from_ack: one sender at a time */
	int stop_sending;        /* from_ack: no refills (send_mu) */
	unsigned char *pool;     /* random bytes payloads are cut from */
	size_t pool_len;         /* its size */
	/* written by the ack callback only (one at a time per writer) */
	struct hist *hist;               /* [runs] latency per window */
	uint64_t *events;                /* [runs] acks per window */
	uint64_t *errors;                /* [runs] failed acks per window */
	uint64_t acked;                  /* all successful acks */
	uint64_t failed;                 /* all failed acks */
	uint64_t bogus;                  /* acks for no in-flight event */
	int rc;                          /* first error of this writer */
	char errmsg[STRATA_ERRMSG_SIZE]; /* its message */
};

static int fill(struct wctx *c);

static void on_ack(void *arg, uint64_t seq, int status)
{
	struct wctx *c = arg;
	uint64_t t = load_now_ns();
	unsigned i = (unsigned)(seq & SEQ_MASK) & c->mask;
	if (atomic_load_explicit(&c->slot[i], memory_order_acquire) !=
	    seq + 1) {
		c->bogus++;
		return;
	}
	uint64_t lat = t - c->sent_ns[i];
	atomic_store_explicit(&c->slot[i], 0, memory_order_release);
	int ph = atomic_load_explicit(&c->sh->phase, memory_order_acquire);
	if (status == 0)
		c->acked++;
	else
		c->failed++;
	if (ph >= 0 && ph < (int)c->sh->runs) {
		if (status == 0) {
			hist_record(&c->hist[ph], lat);
			c->events[ph]++;
		} else {
			c->errors[ph]++;
		}
	}
	atomic_fetch_sub_explicit(&c->inflight, 1, memory_order_release);
	if (c->sh->from_ack && ph < (int)c->sh->runs) {
		pthread_mutex_lock(&c->send_mu);
		if (!c->stop_sending)
			(void)fill(c);
		pthread_mutex_unlock(&c->send_mu);
	}
}

static int send_one(struct wctx *c)
{
	struct shared *sh = c->sh;
	unsigned i = (unsigned)c->next & c->mask;
	if (atomic_load_explicit(&c->slot[i], memory_order_acquire) != 0)
		return STRATA_EAGAIN; /* an old event still holds the slot */
	uint64_t seq = ((uint64_t)c->id << SEQ_BITS) | c->next;
	size_t off = (size_t)(xorshift(&c->rng) % (c->pool_len - sh->payload));
	unsigned char *payload = c->pool + off, saved[8];
	memcpy(saved, payload, 8);
	put_le64(payload, seq);
	c->sent_ns[i] = load_now_ns();
	atomic_store_explicit(&c->slot[i], seq + 1, memory_order_release);
	atomic_fetch_add_explicit(&c->inflight, 1, memory_order_acq_rel);
	int rc = sh->ops->writer_send(c->w, seq, payload, sh->payload);
	memcpy(payload, saved, 8); /* sent or copied: the pool stays random */
	if (rc != 0) {
		atomic_store(&c->slot[i], 0);
		atomic_fetch_sub(&c->inflight, 1);
		return rc;
	}
	c->next++;
	return 0;
}

/* Send while fewer than `window` events are in flight and the writer has
 * events left. A failed send is recorded in c->rc (the first one) and
 * stops further sends; returns it. */
static int fill(struct wctx *c)
{
	struct shared *sh = c->sh;
	if (c->rc != 0)
		return c->rc;
	while (c->next < c->limit &&
	       atomic_load_explicit(&c->inflight, memory_order_acquire) <
	               sh->window) {
		int rc = send_one(c);
		if (rc == STRATA_EAGAIN)
			break;
		if (rc != 0) {
			c->rc = rc;
			snprintf(c->errmsg, sizeof(c->errmsg),
			         "%s: writer %u: send failed: %s",
			         sh->ops->name, c->id, strata_strerror(rc));
			return rc;
		}
	}
	return 0;
}

/* One turn of a writer's thread: fill the window. With from_ack the acks
 * send too, so the turn holds send_mu and hands its burst over at once
 * (writer_poll without waiting) before an ack may send after it. Returns
 * the send error (in c->rc) or the hand-over's; *sent_all = every event
 * of the writer's limit was sent. */
static int writer_turn(struct wctx *c, int *sent_all)
{
	struct shared *sh = c->sh;
	if (sh->from_ack)
		pthread_mutex_lock(&c->send_mu);
	int rc = fill(c);
	*sent_all = c->next >= c->limit;
	if (rc == 0 && sh->from_ack)
		rc = sh->ops->writer_poll(c->w, 0);
	if (sh->from_ack)
		pthread_mutex_unlock(&c->send_mu);
	return rc;
}

/* Wait for acks: poll for them, or with from_ack (the acks refill the
 * window themselves) only watch the clock. */
static int writer_wait(struct wctx *c)
{
	if (!c->sh->from_ack)
		return c->sh->ops->writer_poll(c->w, POLL_MS);
	struct timespec ts = {.tv_nsec = POLL_MS * 1000000L};
	nanosleep(&ts, NULL);
	return 0;
}

/* No more sends from the acks; rc != 0 also records the writer's first
 * error (a failed send recorded its own in fill), under send_mu where
 * the acks' sends read and record theirs. */
static void stop_sending(struct wctx *c, int rc)
{
	pthread_mutex_lock(&c->send_mu);
	c->stop_sending = 1;
	if (rc != 0 && c->rc == 0) {
		c->rc = rc;
		snprintf(c->errmsg, sizeof(c->errmsg),
		         "%s: writer %u: connection failed: %s; see the server "
		         "log",
		         c->sh->ops->name, c->id, strata_strerror(rc));
	}
	pthread_mutex_unlock(&c->send_mu);
}

static void *writer_main(void *arg)
{
	struct wctx *c = arg;
	struct shared *sh = c->sh;
	c->rc = sh->ops->writer_open(sh->state, sh->window, on_ack, c, &c->w,
	                             c->errmsg);
	atomic_fetch_add(&sh->opened, 1);
	if (c->rc != 0)
		goto out;
	int rc = 0;
	for (;;) {
		if (atomic_load(&sh->phase) >= (int)sh->runs ||
		    load_interrupted() || load_now_ns() > sh->deadline_ns)
			break;
		int sent_all;
		rc = writer_turn(c, &sent_all);
		if (rc == 0 && sent_all && atomic_load(&c->inflight) == 0)
			break;
		if (rc == 0)
			rc = writer_wait(c);
		if (rc != 0)
			break;
	}
	stop_sending(c, rc);
	/* Drain: collect the acks still outstanding, bounded in time. */
	uint64_t until = load_now_ns() + (uint64_t)DRAIN_MS * 1000000u;
	while (rc == 0 && atomic_load(&c->inflight) > 0 &&
	       load_now_ns() < until) {
		if (sh->ops->writer_poll(c->w, POLL_MS) != 0)
			break;
	}
	sh->ops->writer_close(c->w);
	c->w = NULL;
out:
	atomic_fetch_add(&sh->finished, 1);
	return NULL;
}

static void wctx_free(struct wctx *c)
{
	pthread_mutex_destroy(&c->send_mu);
	strata_free((void *)c->slot);
	strata_free(c->sent_ns);
	strata_free(c->pool);
	strata_free(c->hist);
	strata_free(c->events);
	strata_free(c->errors);
}

static int wctx_init(struct wctx *c, struct shared *sh, unsigned id,
                     uint64_t limit)
{
	memset(c, 0, sizeof(*c));
	c->sh = sh;
	c->id = id;
	c->limit = limit;
	c->rng = UINT64_C(0x2545F4914F6CDD1D) * (id + 1);
	pthread_mutex_init(&c->send_mu, NULL);
	unsigned ring = 1;
	while (ring < 4 * sh->window)
		ring <<= 1;
	c->mask = ring - 1;
	c->slot = strata_calloc(ring, sizeof(*c->slot));
	c->sent_ns = strata_calloc(ring, sizeof(*c->sent_ns));
	c->pool_len = pool_size(sh->payload);
	c->pool = strata_malloc(c->pool_len);
	if (c->pool != NULL)
		pool_fill(c->pool, c->pool_len, id);
	c->hist = strata_calloc(sh->runs, sizeof(*c->hist));
	c->events = strata_calloc(sh->runs, sizeof(*c->events));
	c->errors = strata_calloc(sh->runs, sizeof(*c->errors));
	if (!c->slot || !c->sent_ns || !c->pool || !c->hist || !c->events ||
	    !c->errors) {
		wctx_free(c);
		return STRATA_ENOMEM;
	}
	for (unsigned r = 0; r < sh->runs; r++)
		hist_init(&c->hist[r]);
	return 0;
}

/* Validate, allocate and start the writers. */
static int start_writers(struct shared *sh, const struct load_case *lc,
                         uint64_t per_writer, struct wctx **out, char *errmsg)
{
	if (lc->payload < 8 || lc->payload > MAX_PAYLOAD || lc->writers == 0 ||
	    lc->writers > LOAD_MAX_WRITERS || lc->window == 0 ||
	    lc->window > 65536) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "case %zu B %ux%u: payload must be 8..%u bytes, "
		         "writers 1..%d, in-flight 1..65536",
		         lc->payload, lc->writers, lc->window, MAX_PAYLOAD,
		         LOAD_MAX_WRITERS);
		return STRATA_EINVAL;
	}
	struct wctx *cs = strata_calloc(lc->writers, sizeof(*cs));
	if (cs == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	unsigned started = 0;
	int rc = 0;
	for (unsigned i = 0; i < lc->writers; i++) {
		rc = wctx_init(&cs[i], sh, i, per_writer);
		if (rc != 0) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
			break;
		}
		if (pthread_create(&cs[i].thread, NULL, writer_main, &cs[i]) !=
		    0) {
			wctx_free(&cs[i]);
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "cannot start writer thread %u", i);
			rc = STRATA_EIO;
			break;
		}
		started++;
	}
	if (rc != 0) {
		atomic_store(&sh->phase, (int)sh->runs);
		for (unsigned i = 0; i < started; i++) {
			pthread_join(cs[i].thread, NULL);
			wctx_free(&cs[i]);
		}
		strata_free(cs);
		return rc;
	}
	*out = cs;
	return 0;
}

/* Join the writers; first writer error into errmsg. */
static int join_writers(struct shared *sh, struct wctx *cs, unsigned n,
                        char *errmsg)
{
	int rc = 0;
	atomic_store(&sh->phase, (int)sh->runs);
	for (unsigned i = 0; i < n; i++) {
		pthread_join(cs[i].thread, NULL);
		if (cs[i].rc != 0 && rc == 0) {
			rc = cs[i].rc;
			snprintf(errmsg, STRATA_ERRMSG_SIZE, "%s",
			         cs[i].errmsg);
		}
		if (cs[i].bogus > 0)
			LOG_WARN("bench",
			         "%s: writer %u got %" PRIu64
			         " acks for events not in flight",
			         sh->ops->name, i, cs[i].bogus);
	}
	return rc;
}

static void free_writers(struct wctx *cs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		wctx_free(&cs[i]);
	strata_free(cs);
}

/* Sleep until t_ns (monotonic), waking early when every writer is done or
 * on interrupt. Returns 0, or 1 when cut short. */
static int sleep_until(struct shared *sh, unsigned writers, uint64_t t_ns)
{
	for (;;) {
		uint64_t now = load_now_ns();
		if (now >= t_ns)
			return 0;
		if (load_interrupted() || atomic_load(&sh->finished) == writers)
			return 1;
		uint64_t step = t_ns - now;
		if (step > 100000000u)
			step = 100000000u;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step};
		nanosleep(&ts, NULL);
	}
}

static void sample(const struct server *srv, struct server_sample *s)
{
	memset(s, 0, sizeof(*s));
	if (srv != NULL)
		server_sample(srv, s);
}

static double cpu_pct(const struct server_sample *a,
                      const struct server_sample *b, double secs)
{
	long hz = sysconf(_SC_CLK_TCK);
	if (secs <= 0 || hz <= 0 || b->cpu_ticks < a->cpu_ticks)
		return 0;
	return 100.0 * (double)(b->cpu_ticks - a->cpu_ticks) / (double)hz /
	       secs;
}

int load_measure(const struct bench_backend_ops *ops, void *state,
                 const struct load_case *lc, const struct load_opts *o,
                 const struct server *srv, struct load_run *runs, char *errmsg)
{
	if (o->runs == 0 || o->runs > LOAD_MAX_RUNS || o->run_s <= 0 ||
	    o->warmup_s < 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "runs must be 1..%d and durations positive",
		         LOAD_MAX_RUNS);
		return STRATA_EINVAL;
	}
	memset(runs, 0, sizeof(*runs) * o->runs);
	struct shared sh = {.ops = ops,
	                    .state = state,
	                    .payload = lc->payload,
	                    .window = lc->window,
	                    .runs = o->runs,
	                    .from_ack = refill_from_ack(ops)};
	atomic_init(&sh.phase, -1);
	double total = o->warmup_s + o->run_s * o->runs;
	sh.deadline_ns =
	        load_now_ns() + (uint64_t)((total + CONNECT_MS / 1000.0) * 1e9);
	struct wctx *cs;
	int rc = start_writers(&sh, lc,
	                       o->max_events ? o->max_events : UINT64_MAX, &cs,
	                       errmsg);
	if (rc != 0)
		return rc;
	/* Wait for every writer to connect before the clock starts. */
	uint64_t t = load_now_ns() + (uint64_t)CONNECT_MS * 1000000u;
	while (atomic_load(&sh.opened) < lc->writers && load_now_ns() < t &&
	       !load_interrupted()) {
		struct timespec ts = {.tv_nsec = 10000000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&sh.deadline_ns, load_now_ns() + (uint64_t)(total * 1e9) +
	                                      (uint64_t)CONNECT_MS * 1000000u);
	uint64_t edge = load_now_ns() + (uint64_t)(o->warmup_s * 1e9);
	int cut = sleep_until(&sh, lc->writers, edge);
	unsigned done = 0;
	struct server_sample s0, s1;
	sample(srv, &s0);
	uint64_t t0 = load_now_ns();
	for (unsigned r = 0; r < o->runs && !cut; r++) {
		atomic_store(&sh.phase, (int)r);
		edge = t0 + (uint64_t)(o->run_s * 1e9);
		cut = sleep_until(&sh, lc->writers, edge);
		uint64_t t1 = load_now_ns();
		sample(srv, &s1);
		atomic_store(&sh.phase, (int)r + 1);
		runs[r].secs = (double)(t1 - t0) / 1e9;
		runs[r].cpu_pct = cpu_pct(&s0, &s1, runs[r].secs);
		runs[r].rss_kb = s1.rss_kb;
		s0 = s1;
		t0 = t1;
		if (!cut)
			done++;
	}
	rc = join_writers(&sh, cs, lc->writers, errmsg);
	for (unsigned r = 0; r < o->runs; r++) {
		hist_init(&runs[r].lat);
		for (unsigned i = 0; i < lc->writers; i++) {
			hist_merge(&runs[r].lat, &cs[i].hist[r]);
			runs[r].events += cs[i].events[r];
			runs[r].errors += cs[i].errors[r];
		}
		runs[r].bytes = runs[r].events * lc->payload;
	}
	free_writers(cs, lc->writers);
	if (rc == 0 && done < o->runs) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "%s: stopped after %u of %u runs%s", ops->name, done,
		         o->runs,
		         load_interrupted() ? " (interrupted)"
		                            : ": every writer stopped");
		rc = load_interrupted() ? STRATA_ESHUTDOWN : STRATA_EIO;
	}
	return rc;
}

int load_fill(const struct bench_backend_ops *ops, void *state,
              const struct load_case *lc, uint64_t total, double max_s,
              uint64_t *acked, double *secs, char *errmsg)
{
	struct shared sh = {.ops = ops,
	                    .state = state,
	                    .payload = lc->payload,
	                    .window = lc->window,
	                    .runs = 1,
	                    .from_ack = refill_from_ack(ops)};
	atomic_init(&sh.phase, 0);
	uint64_t start = load_now_ns();
	sh.deadline_ns = start + (uint64_t)(max_s * 1e9);
	uint64_t per = (total + lc->writers - 1) / lc->writers;
	struct wctx *cs;
	int rc = start_writers(&sh, lc, per, &cs, errmsg);
	if (rc != 0)
		return rc;
	/* Writers stop by themselves (limit reached, deadline, error). */
	for (unsigned i = 0; i < lc->writers; i++)
		pthread_join(cs[i].thread, NULL);
	*secs = (double)(load_now_ns() - start) / 1e9;
	*acked = 0;
	uint64_t failed = 0;
	for (unsigned i = 0; i < lc->writers; i++) {
		*acked += cs[i].acked;
		failed += cs[i].failed;
		if (cs[i].rc != 0 && rc == 0) {
			rc = cs[i].rc;
			snprintf(errmsg, STRATA_ERRMSG_SIZE, "%s",
			         cs[i].errmsg);
		}
	}
	free_writers(cs, lc->writers);
	if (rc == 0 && *acked < per * lc->writers) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "%s: backlog of %" PRIu64 " events: only %" PRIu64
		         " acked (%" PRIu64 " failed) within %.0f s",
		         ops->name, per * lc->writers, *acked, failed, max_s);
		rc = failed ? STRATA_EIO : STRATA_ETIMEDOUT;
	}
	return rc;
}

struct verify {
	size_t payload;                  /* expected size */
	uint64_t next[LOAD_MAX_WRITERS]; /* next n expected per writer */
	struct load_read *out;           /* counters */
};

static int verify_event(void *arg, const void *payload, size_t len)
{
	struct verify *v = arg;
	v->out->events++;
	v->out->bytes += len;
	if (len != v->payload || len < 8) {
		v->out->bad_size++;
		return 0;
	}
	uint64_t seq = get_le64(payload);
	uint64_t id = seq >> SEQ_BITS;
	if (id >= LOAD_MAX_WRITERS || (seq & SEQ_MASK) != v->next[id]) {
		v->out->bad_order++;
		if (id < LOAD_MAX_WRITERS)
			v->next[id] = (seq & SEQ_MASK) + 1;
		return 0;
	}
	v->next[id]++;
	return 0;
}

int load_read_all(const struct bench_backend_ops *ops, void *state,
                  uint64_t expect, size_t payload, int timeout_ms,
                  const struct server *srv, struct load_read *out, char *errmsg)
{
	struct verify v;
	memset(&v, 0, sizeof(v));
	memset(out, 0, sizeof(*out));
	v.payload = payload;
	v.out = out;
	struct server_sample s0, s1;
	sample(srv, &s0);
	uint64_t t0 = load_now_ns();
	int rc = ops->read_all(state, expect, timeout_ms, verify_event, &v,
	                       errmsg);
	uint64_t t1 = load_now_ns();
	sample(srv, &s1);
	out->secs = (double)(t1 - t0) / 1e9;
	out->cpu_pct = cpu_pct(&s0, &s1, out->secs);
	out->rss_kb = s1.rss_kb;
	return rc;
}
