/* Thread-safe metrics registry (counters, gauges, histograms) rendered in
 * the Prometheus text exposition format 0.0.4. */
#ifndef COMMON_METRICS_H
#define COMMON_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/*
 * Threading: registration and rendering take the registry lock; the
 * hot-path updates (counter_add, gauge_set/add, histogram_observe) are
 * lock-free atomics on the handle and may run on any thread at any time.
 * Handles stay valid until metrics_registry_free(); there is no
 * unregister.
 *
 * Identity: a series is a metric name plus its constant labels (label
 * order does not matter). Registering the same name and labels again
 * returns the existing handle when the type (and, for histograms, the
 * bucket bounds) agree, else fails STRATA_EEXIST. Series of one name share
 * one # HELP / # TYPE block (the first registration's help text) and are
 * rendered in registration order.
 *
 * Errors from registration: STRATA_EBADNAME (bad metric or label name),
 * STRATA_EINVAL (bad labels or bucket bounds), STRATA_EEXIST (same name,
 * different type), STRATA_ENOMEM. errmsg (STRATA_ERRMSG_SIZE bytes, may be
 * NULL) then says which metric and why.
 */

struct metrics_registry;
struct metrics_counter;
struct metrics_gauge;
struct metrics_histogram;

/* A constant label; both strings are copied at registration. Names match
 * [a-zA-Z_][a-zA-Z0-9_]* and do not start with "__"; values are any UTF-8
 * text (escaped when rendered). */
struct metrics_label {
	const char *name;
	const char *value;
};

/* What a callback metric reports as. */
enum metrics_type {
	METRICS_COUNTER = 0,
	METRICS_GAUGE = 1,
	METRICS_HISTOGRAM = 2,
};

/* Storage of a gauge: exact 64-bit integers or doubles. */
enum metrics_gauge_kind {
	METRICS_GAUGE_INT = 0,
	METRICS_GAUGE_DOUBLE = 1,
};

/* Evaluated at render time, under the registry lock: store the current
 * value in *value and return 0, or return non-zero to omit the sample from
 * this scrape. Must be thread-safe and must not call into the registry. */
typedef int (*metrics_value_fn)(void *arg, double *value);

/* Number of default histogram bounds (metrics_default_latency_bounds). */
#define METRICS_DEFAULT_BUCKETS 16

/* Default latency bucket bounds in seconds, 100 us to 10 s. */
extern const double metrics_default_latency_bounds[METRICS_DEFAULT_BUCKETS];

/* Histograms take at most this many bounds (the +Inf bucket is extra). */
#define METRICS_MAX_BUCKETS 64

/* Create an empty registry; *out is owned by the caller and freed with
 * metrics_registry_free. STRATA_ENOMEM. */
int metrics_registry_new(struct metrics_registry **out);

/* Free a registry and every handle it gave out. No other thread may use
 * it or its handles any more. NULL is a no-op. */
void metrics_registry_free(struct metrics_registry *reg);

/* True when name matches [a-zA-Z_:][a-zA-Z0-9_:]*. */
bool metrics_name_valid(const char *name);

/* Register (or find) a counter. name and help are copied; labels (nlabels
 * entries, may be NULL when 0) are copied. *out is borrowed from the
 * registry. */
int metrics_counter_register(struct metrics_registry *reg, const char *name,
                             const char *help,
                             const struct metrics_label *labels, size_t nlabels,
                             struct metrics_counter **out, char *errmsg);

/* Add delta to a counter. Lock-free; never fails. */
void metrics_counter_add(struct metrics_counter *c, uint64_t delta);

/* Add one to a counter. Lock-free; never fails. */
void metrics_counter_inc(struct metrics_counter *c);

/* Current value of a counter. */
uint64_t metrics_counter_get(const struct metrics_counter *c);

/* Register (or find) a gauge stored as kind; see counter_register for
 * ownership. A found gauge keeps its original kind. */
int metrics_gauge_register(struct metrics_registry *reg, const char *name,
                           const char *help, const struct metrics_label *labels,
                           size_t nlabels, enum metrics_gauge_kind kind,
                           struct metrics_gauge **out, char *errmsg);

/* Set / add to a gauge. Lock-free; never fail. The integer calls on a
 * DOUBLE gauge convert the value; the double calls on an INT gauge round
 * toward zero (saturating at the int64 range). */
void metrics_gauge_set(struct metrics_gauge *g, int64_t v);
void metrics_gauge_add(struct metrics_gauge *g, int64_t delta);
void metrics_gauge_set_double(struct metrics_gauge *g, double v);
void metrics_gauge_add_double(struct metrics_gauge *g, double delta);

/* Current value of a gauge (as a double for either kind). */
double metrics_gauge_get(const struct metrics_gauge *g);

/*
 * Register a metric whose value fn(arg) computes at render time; type is
 * METRICS_COUNTER or METRICS_GAUGE (else STRATA_EINVAL). arg is borrowed
 * until metrics_registry_free. Registering the same name and labels again
 * with the same type keeps the first fn and returns 0.
 */
int metrics_callback_register(struct metrics_registry *reg,
                              enum metrics_type type, const char *name,
                              const char *help,
                              const struct metrics_label *labels,
                              size_t nlabels, metrics_value_fn fn, void *arg,
                              char *errmsg);

/*
 * Register (or find) a histogram with nbounds strictly increasing finite
 * upper bounds (copied); bounds NULL uses metrics_default_latency_bounds.
 * At most METRICS_MAX_BUCKETS bounds. A bucket counts observations
 * v <= bound; the implicit +Inf bucket takes the rest (and NaN).
 */
int metrics_histogram_register(struct metrics_registry *reg, const char *name,
                               const char *help,
                               const struct metrics_label *labels,
                               size_t nlabels, const double *bounds,
                               size_t nbounds, struct metrics_histogram **out,
                               char *errmsg);

/* Record one observation. Lock-free; never fails. */
void metrics_histogram_observe(struct metrics_histogram *h, double v);

/* Observation count and sum so far (either pointer may be NULL). */
void metrics_histogram_get(const struct metrics_histogram *h, uint64_t *count,
                           double *sum);

/*
 * Append every metric to out in the Prometheus text format 0.0.4
 * (content type "text/plain; version=0.0.4; charset=utf-8"): # HELP,
 * # TYPE, then samples; histograms as cumulative _bucket{le=...} lines
 * ending with le="+Inf", then _sum and _count. Errors: those of buf
 * (STRATA_ENOMEM, STRATA_ETOOBIG); out then holds a partial rendering
 * the caller should discard.
 */
int metrics_render(struct metrics_registry *reg, struct buf *out);

/* Content type for metrics_render output. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Register the standard process metrics, read from /proc/self at render
 * time: process_resident_memory_bytes, process_cpu_seconds_total,
 * process_open_fds and process_start_time_seconds. Idempotent. Errors as
 * registration, or STRATA_EIO (with errmsg) when /proc cannot be read.
 */
int metrics_register_process(struct metrics_registry *reg, char *errmsg);

#endif /* COMMON_METRICS_H */
