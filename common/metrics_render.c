/* Prometheus text format 0.0.4 rendering of the metrics registry. */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/metrics.h"
#include "common/metrics_impl.h"

const char *const metrics_type_names[3] = {"counter", "gauge", "histogram"};

/* Append s with the given characters escaped: '\\' and '\n' always, '"'
 * when quote is set (label values; HELP text leaves quotes alone). */
int metrics_append_escaped(struct buf *out, const char *s, bool quote)
{
	int rv = 0;
	for (const char *p = s; *p != '\0' && rv == 0; p++) {
		switch (*p) {
		case '\\':
			rv = buf_append(out, "\\\\", 2);
			break;
		case '\n':
			rv = buf_append(out, "\\n", 2);
			break;
		case '"':
			rv = quote ? buf_append(out, "\\\"", 2)
			           : buf_append_u8(out, '"');
			break;
		default:
			rv = buf_append_u8(out, (uint8_t)*p);
			break;
		}
	}
	return rv;
}

/* Shortest of %.15g / %.17g that reads back exactly; Prometheus spellings
 * for NaN and infinities. */
static int append_double(struct buf *out, double v)
{
	if (isnan(v)) {
		return buf_append(out, "NaN", 3);
	}
	if (isinf(v)) {
		return v > 0 ? buf_append(out, "+Inf", 4)
		             : buf_append(out, "-Inf", 4);
	}
	char s[40];
	snprintf(s, sizeof(s), "%.15g", v);
	if (strtod(s, NULL) != v) {
		snprintf(s, sizeof(s), "%.17g", v);
	}
	return buf_append(out, s, strlen(s));
}

/* "name{labels} " or "name " */
static int append_head(struct buf *out, const char *name, const char *suffix,
                       const char *labels)
{
	if (labels[0] == '\0') {
		return buf_printf(out, "%s%s ", name, suffix);
	}
	return buf_printf(out, "%s%s{%s} ", name, suffix, labels);
}

static int render_histogram(struct buf *out, const char *name,
                            const struct series *s)
{
	const struct metrics_histogram *h = &s->u.hist;
	const char *sep = s->labels[0] != '\0' ? "," : "";
	uint64_t cum = 0;
	int rv = 0;
	for (size_t i = 0; i <= h->nbounds && rv == 0; i++) {
		cum += atomic_load_explicit(&h->counts[i],
		                            memory_order_relaxed);
		rv = buf_printf(out, "%s_bucket{%s%sle=\"", name, s->labels,
		                sep);
		if (rv == 0) {
			rv = i < h->nbounds ? append_double(out, h->bounds[i])
			                    : buf_append(out, "+Inf", 4);
		}
		if (rv == 0) {
			rv = buf_printf(out, "\"} %" PRIu64 "\n", cum);
		}
	}
	double sum;
	metrics_histogram_get(h, NULL, &sum);
	if (rv == 0) {
		rv = append_head(out, name, "_sum", s->labels);
	}
	if (rv == 0) {
		rv = append_double(out, sum);
	}
	if (rv == 0) {
		rv = buf_append_u8(out, '\n');
	}
	/* _count is the +Inf bucket, so the two always agree. */
	if (rv == 0) {
		rv = append_head(out, name, "_count", s->labels);
	}
	if (rv == 0) {
		rv = buf_printf(out, "%" PRIu64 "\n", cum);
	}
	return rv;
}

static int render_series(struct buf *out, const struct family *f,
                         struct series *s)
{
	int rv = 0;
	switch (s->kind) {
	case SERIES_COUNTER:
		rv = append_head(out, f->name, "", s->labels);
		if (rv == 0) {
			rv = buf_printf(out, "%" PRIu64 "\n",
			                metrics_counter_get(&s->u.counter));
		}
		break;
	case SERIES_GAUGE:
		rv = append_head(out, f->name, "", s->labels);
		if (rv == 0 && s->u.gauge.kind == METRICS_GAUGE_INT) {
			int64_t v = atomic_load_explicit(&s->u.gauge.i,
			                                 memory_order_relaxed);
			rv = buf_printf(out, "%" PRId64 "\n", v);
		} else if (rv == 0) {
			rv = append_double(out, metrics_gauge_get(&s->u.gauge));
			if (rv == 0) {
				rv = buf_append_u8(out, '\n');
			}
		}
		break;
	case SERIES_HISTOGRAM:
		rv = render_histogram(out, f->name, s);
		break;
	case SERIES_CALLBACK: {
		double v;
		if (s->u.cb.fn(s->u.cb.arg, &v) != 0) {
			break; /* omitted from this scrape */
		}
		rv = append_head(out, f->name, "", s->labels);
		if (rv == 0) {
			rv = append_double(out, v);
		}
		if (rv == 0) {
			rv = buf_append_u8(out, '\n');
		}
		break;
	}
	}
	return rv;
}

int metrics_render(struct metrics_registry *reg, struct buf *out)
{
	int rv = buf_append(out, "", 0);
	pthread_mutex_lock(&reg->lock);
	for (struct family *f = reg->head; f != NULL && rv == 0; f = f->next) {
		if (f->help[0] != '\0') {
			rv = buf_printf(out, "# HELP %s ", f->name);
			if (rv == 0) {
				rv = metrics_append_escaped(out, f->help,
				                            false);
			}
			if (rv == 0) {
				rv = buf_append_u8(out, '\n');
			}
		}
		if (rv == 0) {
			rv = buf_printf(out, "# TYPE %s %s\n", f->name,
			                metrics_type_names[f->type]);
		}
		for (struct series *s = f->head; s != NULL && rv == 0;
		     s = s->next) {
			rv = render_series(out, f, s);
		}
	}
	pthread_mutex_unlock(&reg->lock);
	return rv;
}
