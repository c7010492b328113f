/* Internals shared by the metrics registry (metrics.c) and its
 * Prometheus renderer (metrics_render.c); nothing else includes this. */
#ifndef COMMON_METRICS_IMPL_H
#define COMMON_METRICS_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/metrics.h"

struct metrics_counter {
	atomic_uint_fast64_t value; /* monotonic count */
};

struct metrics_gauge {
	enum metrics_gauge_kind kind; /* fixed at registration */
	atomic_int_fast64_t i;        /* value of an INT gauge */
	atomic_uint_fast64_t bits;    /* IEEE-754 bits of a DOUBLE gauge */
};

struct metrics_histogram {
	size_t nbounds;               /* finite bounds; buckets = nbounds + 1 */
	double *bounds;               /* strictly increasing upper bounds */
	atomic_uint_fast64_t *counts; /* per bucket, NOT cumulative */
	atomic_uint_fast64_t sum;     /* IEEE-754 bits of the sum */
};

/* How a series stores its value. */
enum series_kind {
	SERIES_COUNTER,
	SERIES_GAUGE,
	SERIES_HISTOGRAM,
	SERIES_CALLBACK,
};

/* One name + label set. */
struct series {
	struct series *next;   /* registration order within the family */
	char *labels;          /* canonical 'a="x",b="y"'; "" if none */
	enum series_kind kind; /* which member below is live */
	union {
		struct metrics_counter counter;
		struct metrics_gauge gauge;
		struct metrics_histogram hist;
		struct {
			metrics_value_fn fn; /* computes the value */
			void *arg;           /* borrowed, passed to fn */
		} cb;
	} u;
};

/* All series of one metric name. */
struct family {
	struct family *next;    /* registration order */
	char *name;             /* validated metric name */
	char *help;             /* first registration's help; may be "" */
	enum metrics_type type; /* rendered # TYPE */
	struct series *head;    /* first series */
	struct series *tail;    /* last series, for appending */
};

struct metrics_registry {
	pthread_mutex_t lock; /* guards the lists, not the values */
	struct family *head;  /* first family */
	struct family *tail;  /* last family */
};

/* "counter", "gauge", "histogram": the # TYPE of each enum metrics_type. */
extern const char *const metrics_type_names[3];

/* Append s to out with the given characters escaped: '\\' and '\n'
 * always, '"' when quote is set (label values; HELP text leaves quotes
 * alone). Errors: those of buf. */
int metrics_append_escaped(struct buf *out, const char *s, bool quote);

#endif /* COMMON_METRICS_IMPL_H */
