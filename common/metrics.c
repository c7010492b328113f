/* Metrics registry: registration and lock-free updates (see metrics.h). */
#include "common/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/errmsg.h"
#include "common/metrics_impl.h"
#include "strata/error.h"

/* More constant labels than this on one series is a mistake. */
#define METRICS_MAX_LABELS 16

const double metrics_default_latency_bounds[METRICS_DEFAULT_BUCKETS] = {
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10,
};

static uint64_t dbl_bits(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	return u;
}

static double bits_dbl(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof(d));
	return d;
}

/* Lock-free *a += delta on a double stored as bits. */
static void atomic_add_double(atomic_uint_fast64_t *a, double delta)
{
	uint_fast64_t old = atomic_load_explicit(a, memory_order_relaxed);
	for (;;) {
		uint64_t next = dbl_bits(bits_dbl(old) + delta);
		if (atomic_compare_exchange_weak_explicit(
		            a, &old, next, memory_order_relaxed,
		            memory_order_relaxed)) {
			return;
		}
	}
}

/* double -> int64, rounding toward zero and saturating; NaN -> 0. */
static int64_t dbl_to_i64(double v)
{
	if (isnan(v)) {
		return 0;
	}
	if (v >= 9223372036854775807.0) {
		return INT64_MAX;
	}
	if (v <= -9223372036854775808.0) {
		return INT64_MIN;
	}
	return (int64_t)v;
}

bool metrics_name_valid(const char *name)
{
	if (name == NULL || name[0] == '\0') {
		return false;
	}
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		             c == '_' || c == ':';
		bool digit = c >= '0' && c <= '9';
		if (!alpha && !(digit && p != name)) {
			return false;
		}
	}
	return true;
}

static bool label_name_valid(const char *name)
{
	if (name == NULL || name[0] == '\0' ||
	    (name[0] == '_' && name[1] == '_')) {
		return false;
	}
	for (const char *p = name; *p != '\0'; p++) {
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		             c == '_';
		bool digit = c >= '0' && c <= '9';
		if (!alpha && !(digit && p != name)) {
			return false;
		}
	}
	return true;
}

/*
 * Validate labels and build their canonical form (sorted by name, values
 * escaped) into *canon (caller frees). Errors: STRATA_EBADNAME,
 * STRATA_EINVAL, STRATA_ENOMEM.
 */
static int canon_labels(const char *metric, const struct metrics_label *labels,
                        size_t n, char **canon, char *errmsg)
{
	const struct metrics_label *sorted[METRICS_MAX_LABELS];
	if (n > 0 && labels == NULL) {
		errmsg_set(errmsg, "metric %s: %zu labels given but no array",
		           metric, n);
		return STRATA_EINVAL;
	}
	if (n > METRICS_MAX_LABELS) {
		errmsg_set(errmsg, "metric %s: %zu labels, at most %d allowed",
		           metric, n, METRICS_MAX_LABELS);
		return STRATA_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!label_name_valid(labels[i].name)) {
			errmsg_set(errmsg,
			           "metric %s: invalid label name \"%s\" (use "
			           "[a-zA-Z_][a-zA-Z0-9_]*, not starting with "
			           "\"__\")",
			           metric,
			           labels[i].name != NULL ? labels[i].name
			                                  : "");
			return STRATA_EBADNAME;
		}
		if (labels[i].value == NULL) {
			errmsg_set(errmsg, "metric %s: label %s has no value",
			           metric, labels[i].name);
			return STRATA_EINVAL;
		}
		/* Insertion sort by name; n is small. */
		size_t j = i;
		while (j > 0 &&
		       strcmp(sorted[j - 1]->name, labels[i].name) > 0) {
			sorted[j] = sorted[j - 1];
			j--;
		}
		if (j > 0 && strcmp(sorted[j - 1]->name, labels[i].name) == 0) {
			errmsg_set(errmsg, "metric %s: label %s given twice",
			           metric, labels[i].name);
			return STRATA_EINVAL;
		}
		sorted[j] = &labels[i];
	}
	struct buf b;
	buf_init(&b, 0);
	int rv = buf_append(&b, "", 0);
	for (size_t i = 0; i < n && rv == 0; i++) {
		rv = buf_printf(&b, "%s%s=\"", i > 0 ? "," : "",
		                sorted[i]->name);
		if (rv == 0) {
			rv = metrics_append_escaped(&b, sorted[i]->value, true);
		}
		if (rv == 0) {
			rv = buf_append_u8(&b, '"');
		}
	}
	if (rv != 0) {
		buf_close(&b);
		errmsg_set(errmsg, "metric %s: out of memory", metric);
		return STRATA_ENOMEM;
	}
	*canon = (char *)buf_detach(&b, NULL);
	return 0;
}

static void series_free(struct series *s)
{
	if (s->kind == SERIES_HISTOGRAM) {
		strata_free(s->u.hist.bounds);
		strata_free(s->u.hist.counts);
	}
	strata_free(s->labels);
	strata_free(s);
}

static void family_free(struct family *f)
{
	struct series *s = f->head;
	while (s != NULL) {
		struct series *next = s->next;
		series_free(s);
		s = next;
	}
	strata_free(f->name);
	strata_free(f->help);
	strata_free(f);
}

int metrics_registry_new(struct metrics_registry **out)
{
	struct metrics_registry *reg = strata_calloc(1, sizeof(*reg));
	if (reg == NULL) {
		return STRATA_ENOMEM;
	}
	pthread_mutex_init(&reg->lock, NULL);
	*out = reg;
	return 0;
}

void metrics_registry_free(struct metrics_registry *reg)
{
	if (reg == NULL) {
		return;
	}
	struct family *f = reg->head;
	while (f != NULL) {
		struct family *next = f->next;
		family_free(f);
		f = next;
	}
	pthread_mutex_destroy(&reg->lock);
	strata_free(reg);
}

/* What a registration asks for. */
struct want {
	enum metrics_type type;        /* family type */
	enum series_kind kind;         /* series storage */
	enum metrics_gauge_kind gkind; /* SERIES_GAUGE only */
	const double *bounds;          /* SERIES_HISTOGRAM only */
	size_t nbounds;                /* SERIES_HISTOGRAM only */
	metrics_value_fn fn;           /* SERIES_CALLBACK only */
	void *arg;                     /* SERIES_CALLBACK only */
};

static const char *kind_desc(enum series_kind k)
{
	switch (k) {
	case SERIES_COUNTER:
		return "counter";
	case SERIES_GAUGE:
		return "gauge";
	case SERIES_HISTOGRAM:
		return "histogram";
	default:
		return "callback";
	}
}

/* Create a series for w, unlinked. */
static int series_new(const struct want *w, char *labels, struct series **out)
{
	struct series *s = strata_calloc(1, sizeof(*s));
	if (s == NULL) {
		return STRATA_ENOMEM;
	}
	s->kind = w->kind;
	switch (w->kind) {
	case SERIES_COUNTER:
		atomic_init(&s->u.counter.value, 0);
		break;
	case SERIES_GAUGE:
		s->u.gauge.kind = w->gkind;
		atomic_init(&s->u.gauge.i, 0);
		atomic_init(&s->u.gauge.bits, dbl_bits(0.0));
		break;
	case SERIES_HISTOGRAM:
		s->u.hist.nbounds = w->nbounds;
		s->u.hist.bounds =
		        strata_calloc(w->nbounds + 1, sizeof(double));
		s->u.hist.counts = strata_calloc(w->nbounds + 1,
		                                 sizeof(atomic_uint_fast64_t));
		if (s->u.hist.bounds == NULL || s->u.hist.counts == NULL) {
			strata_free(s->u.hist.bounds);
			strata_free(s->u.hist.counts);
			strata_free(s);
			return STRATA_ENOMEM;
		}
		memcpy(s->u.hist.bounds, w->bounds,
		       w->nbounds * sizeof(double));
		for (size_t i = 0; i <= w->nbounds; i++) {
			atomic_init(&s->u.hist.counts[i], 0);
		}
		atomic_init(&s->u.hist.sum, dbl_bits(0.0));
		break;
	case SERIES_CALLBACK:
		s->u.cb.fn = w->fn;
		s->u.cb.arg = w->arg;
		break;
	}
	s->labels = labels;
	*out = s;
	return 0;
}

/* An existing series matches a request if storage (and buckets) agree. */
static bool series_matches(const struct series *s, const struct want *w)
{
	if (s->kind != w->kind) {
		return false;
	}
	if (s->kind == SERIES_HISTOGRAM) {
		return s->u.hist.nbounds == w->nbounds &&
		       memcmp(s->u.hist.bounds, w->bounds,
		              w->nbounds * sizeof(double)) == 0;
	}
	return true;
}

/* Find or create the series (name, labels) described by w. */
static int metrics_register(struct metrics_registry *reg, const char *name,
                            const char *help,
                            const struct metrics_label *labels, size_t nlabels,
                            const struct want *w, struct series **out,
                            char *errmsg)
{
	if (!metrics_name_valid(name)) {
		errmsg_set(errmsg,
		           "invalid metric name \"%s\" (use "
		           "[a-zA-Z_:][a-zA-Z0-9_:]*)",
		           name != NULL ? name : "");
		return STRATA_EBADNAME;
	}
	if (w->kind == SERIES_HISTOGRAM) {
		for (size_t i = 0; i < nlabels; i++) {
			if (labels != NULL && labels[i].name != NULL &&
			    strcmp(labels[i].name, "le") == 0) {
				errmsg_set(errmsg,
				           "histogram %s: label \"le\" is "
				           "reserved for buckets",
				           name);
				return STRATA_EBADNAME;
			}
		}
	}
	char *canon;
	int rv = canon_labels(name, labels, nlabels, &canon, errmsg);
	if (rv != 0) {
		return rv;
	}

	pthread_mutex_lock(&reg->lock);
	struct family *f = reg->head;
	while (f != NULL && strcmp(f->name, name) != 0) {
		f = f->next;
	}
	if (f != NULL && f->type != w->type) {
		errmsg_set(errmsg,
		           "metric %s is already registered as a %s, not a %s",
		           name, metrics_type_names[f->type],
		           metrics_type_names[w->type]);
		rv = STRATA_EEXIST;
		goto err_unlock;
	}
	if (f != NULL) {
		for (struct series *s = f->head; s != NULL; s = s->next) {
			if (strcmp(s->labels, canon) != 0) {
				continue;
			}
			if (!series_matches(s, w)) {
				errmsg_set(
				        errmsg,
				        "metric %s{%s} is already registered "
				        "as a %s with different settings",
				        name, canon, kind_desc(s->kind));
				rv = STRATA_EEXIST;
				goto err_unlock;
			}
			pthread_mutex_unlock(&reg->lock);
			strata_free(canon);
			*out = s;
			return 0;
		}
	}

	struct family *nf = NULL;
	if (f == NULL) {
		nf = strata_calloc(1, sizeof(*nf));
		if (nf == NULL) {
			goto err_nomem;
		}
		nf->type = w->type;
		nf->name = strata_strdup(name);
		nf->help = strata_strdup(help != NULL ? help : "");
		if (nf->name == NULL || nf->help == NULL) {
			goto err_free_family;
		}
	}
	struct series *s;
	if (series_new(w, canon, &s) != 0) {
		goto err_free_family;
	}
	if (nf != NULL) {
		f = nf;
		if (reg->tail != NULL) {
			reg->tail->next = f;
		} else {
			reg->head = f;
		}
		reg->tail = f;
	}
	if (f->tail != NULL) {
		f->tail->next = s;
	} else {
		f->head = s;
	}
	f->tail = s;
	pthread_mutex_unlock(&reg->lock);
	*out = s;
	return 0;

err_free_family:
	if (nf != NULL) {
		family_free(nf);
	}
err_nomem:
	errmsg_set(errmsg, "register metric %s: out of memory", name);
	rv = STRATA_ENOMEM;
err_unlock:
	pthread_mutex_unlock(&reg->lock);
	strata_free(canon);
	return rv;
}

int metrics_counter_register(struct metrics_registry *reg, const char *name,
                             const char *help,
                             const struct metrics_label *labels, size_t nlabels,
                             struct metrics_counter **out, char *errmsg)
{
	struct want w = {.type = METRICS_COUNTER, .kind = SERIES_COUNTER};
	struct series *s;
	int rv = metrics_register(reg, name, help, labels, nlabels, &w, &s,
	                          errmsg);
	if (rv == 0) {
		*out = &s->u.counter;
	}
	return rv;
}

void metrics_counter_add(struct metrics_counter *c, uint64_t delta)
{
	atomic_fetch_add_explicit(&c->value, delta, memory_order_relaxed);
}

void metrics_counter_inc(struct metrics_counter *c)
{
	atomic_fetch_add_explicit(&c->value, 1, memory_order_relaxed);
}

uint64_t metrics_counter_get(const struct metrics_counter *c)
{
	return atomic_load_explicit(&c->value, memory_order_relaxed);
}

int metrics_gauge_register(struct metrics_registry *reg, const char *name,
                           const char *help, const struct metrics_label *labels,
                           size_t nlabels, enum metrics_gauge_kind kind,
                           struct metrics_gauge **out, char *errmsg)
{
	if (kind != METRICS_GAUGE_INT && kind != METRICS_GAUGE_DOUBLE) {
		errmsg_set(errmsg, "gauge %s: unknown kind %d",
		           name != NULL ? name : "", (int)kind);
		return STRATA_EINVAL;
	}
	struct want w = {
	        .type = METRICS_GAUGE, .kind = SERIES_GAUGE, .gkind = kind};
	struct series *s;
	int rv = metrics_register(reg, name, help, labels, nlabels, &w, &s,
	                          errmsg);
	if (rv == 0) {
		*out = &s->u.gauge;
	}
	return rv;
}

void metrics_gauge_set(struct metrics_gauge *g, int64_t v)
{
	if (g->kind == METRICS_GAUGE_INT) {
		atomic_store_explicit(&g->i, v, memory_order_relaxed);
	} else {
		atomic_store_explicit(&g->bits, dbl_bits((double)v),
		                      memory_order_relaxed);
	}
}

void metrics_gauge_add(struct metrics_gauge *g, int64_t delta)
{
	if (g->kind == METRICS_GAUGE_INT) {
		atomic_fetch_add_explicit(&g->i, delta, memory_order_relaxed);
	} else {
		atomic_add_double(&g->bits, (double)delta);
	}
}

void metrics_gauge_set_double(struct metrics_gauge *g, double v)
{
	if (g->kind == METRICS_GAUGE_INT) {
		atomic_store_explicit(&g->i, dbl_to_i64(v),
		                      memory_order_relaxed);
	} else {
		atomic_store_explicit(&g->bits, dbl_bits(v),
		                      memory_order_relaxed);
	}
}

void metrics_gauge_add_double(struct metrics_gauge *g, double delta)
{
	if (g->kind == METRICS_GAUGE_DOUBLE) {
		atomic_add_double(&g->bits, delta);
		return;
	}
	int_fast64_t old = atomic_load_explicit(&g->i, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(
	        &g->i, &old, dbl_to_i64((double)old + delta),
	        memory_order_relaxed, memory_order_relaxed)) {
	}
}

double metrics_gauge_get(const struct metrics_gauge *g)
{
	if (g->kind == METRICS_GAUGE_INT) {
		return (double)atomic_load_explicit(&g->i,
		                                    memory_order_relaxed);
	}
	return bits_dbl(atomic_load_explicit(&g->bits, memory_order_relaxed));
}

int metrics_callback_register(struct metrics_registry *reg,
                              enum metrics_type type, const char *name,
                              const char *help,
                              const struct metrics_label *labels,
                              size_t nlabels, metrics_value_fn fn, void *arg,
                              char *errmsg)
{
	if ((type != METRICS_COUNTER && type != METRICS_GAUGE) || fn == NULL) {
		errmsg_set(errmsg,
		           "callback metric %s: needs a function and type "
		           "counter or gauge",
		           name != NULL ? name : "");
		return STRATA_EINVAL;
	}
	struct want w = {
	        .type = type, .kind = SERIES_CALLBACK, .fn = fn, .arg = arg};
	struct series *s;
	return metrics_register(reg, name, help, labels, nlabels, &w, &s,
	                        errmsg);
}

int metrics_histogram_register(struct metrics_registry *reg, const char *name,
                               const char *help,
                               const struct metrics_label *labels,
                               size_t nlabels, const double *bounds,
                               size_t nbounds, struct metrics_histogram **out,
                               char *errmsg)
{
	if (bounds == NULL) {
		bounds = metrics_default_latency_bounds;
		nbounds = METRICS_DEFAULT_BUCKETS;
	}
	if (nbounds == 0 || nbounds > METRICS_MAX_BUCKETS) {
		errmsg_set(
		        errmsg, "histogram %s: %zu bucket bounds, need 1 to %d",
		        name != NULL ? name : "", nbounds, METRICS_MAX_BUCKETS);
		return STRATA_EINVAL;
	}
	for (size_t i = 0; i < nbounds; i++) {
		if (!isfinite(bounds[i]) ||
		    (i > 0 && !(bounds[i] > bounds[i - 1]))) {
			errmsg_set(
			        errmsg,
			        "histogram %s: bucket bound %zu (%g) must be "
			        "finite and greater than the one before",
			        name != NULL ? name : "", i, bounds[i]);
			return STRATA_EINVAL;
		}
	}
	struct want w = {.type = METRICS_HISTOGRAM,
	                 .kind = SERIES_HISTOGRAM,
	                 .bounds = bounds,
	                 .nbounds = nbounds};
	struct series *s;
	int rv = metrics_register(reg, name, help, labels, nlabels, &w, &s,
	                          errmsg);
	if (rv == 0) {
		*out = &s->u.hist;
	}
	return rv;
}

void metrics_histogram_observe(struct metrics_histogram *h, double v)
{
	/* First bucket whose bound is >= v; NaN lands in +Inf. */
	size_t lo = 0, hi = h->nbounds;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v <= h->bounds[mid]) {
			hi = mid;
		} else if (isnan(v)) {
			lo = hi = h->nbounds;
		} else {
			lo = mid + 1;
		}
	}
	atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
	atomic_add_double(&h->sum, v);
}

void metrics_histogram_get(const struct metrics_histogram *h, uint64_t *count,
                           double *sum)
{
	if (count != NULL) {
		uint64_t n = 0;
		for (size_t i = 0; i <= h->nbounds; i++) {
			n += atomic_load_explicit(&h->counts[i],
			                          memory_order_relaxed);
		}
		*count = n;
	}
	if (sum != NULL) {
		*sum = bits_dbl(
		        atomic_load_explicit(&h->sum, memory_order_relaxed));
	}
}
