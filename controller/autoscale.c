/* Auto-scaling policy (see autoscale.h).
 *
 * Rates: every pass gives each current segment's counter (events or
 * bytes); the change over the time since the last pass is a rate, folded
 * into four exponentially weighted averages with time constants of 2, 5,
 * 10 and 20 units (a unit is a minute by default), so that irregular
 * passes weigh by the time they cover; they start at the first measured
 * rate, and a segment takes part in decisions only once it has been seen
 * for 2 units (a short burst on a new segment decides nothing). A
 * counter that went down (the store restarted, the container moved)
 * starts over from the new value.
 *
 * Decisions (DESIGN.md; Pravega's thresholds): a segment whose 2-unit
 * average exceeds 5x the target, its 5-unit one 2x, or its 10-unit one
 * 1x is split into ceil(rate / target) equal ranges, at least 2 and at
 * most the policy's factor (the hottest such segment first). Otherwise
 * two neighbours that are both cold (2-, 5- and 10-unit averages below
 * the target, 20-unit below half of it) merge, while the stream has more
 * than its minimum. One scale per stream per cooldown.
 */
#include "controller/autoscale.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

#define N_AVG 4
#define WARM_UNITS 2       /* a segment's averages count after this long */
#define MAX_SPLIT 64       /* ranges one split makes at most */
#define MAX_SEGMENTS 4096  /* CFSM_MAX_SEGMENTS */
#define STREAM_KEY_MAX 520 /* "scope/stream" */

static const double window_units[N_AVG] = {2, 5, 10, 20};
static const double split_over[N_AVG - 1] = {5, 2, 1};

struct seg_rate {
	uint64_t id;
	uint64_t first_ms;   /* first seen: decisions wait WARM_UNITS */
	uint64_t last_ms;    /* time of last_count */
	uint64_t last_count; /* counter then */
	bool have_rate;      /* avg is set */
	bool warm;           /* seen for WARM_UNITS: decisions may use it */
	double avg[N_AVG];   /* per second */
};

struct stream_state {
	char key[STREAM_KEY_MAX];
	uint64_t last_pass_ms;
	uint64_t last_scale_ms; /* 0 = never */
	struct seg_rate *segs;
	size_t n;
};

struct autoscale {
	struct autoscale_config cfg;
	struct stream_state *streams;
	size_t n, cap;
};

struct autoscale *autoscale_new(const struct autoscale_config *cfg)
{
	struct autoscale *a = strata_calloc(1, sizeof(*a));
	if (a != NULL) {
		a->cfg = *cfg;
		if (a->cfg.unit_ms == 0) {
			a->cfg.unit_ms = 60000;
		}
		if (a->cfg.cooldown_ms == 0) {
			a->cfg.cooldown_ms = 600000;
		}
	}
	return a;
}

void autoscale_free(struct autoscale *a)
{
	if (a == NULL) {
		return;
	}
	for (size_t i = 0; i < a->n; i++) {
		strata_free(a->streams[i].segs);
	}
	strata_free(a->streams);
	strata_free(a);
}

static struct stream_state *stream_get(struct autoscale *a, const char *key)
{
	for (size_t i = 0; i < a->n; i++) {
		if (strcmp(a->streams[i].key, key) == 0) {
			return &a->streams[i];
		}
	}
	if (a->n == a->cap) {
		size_t nc = a->cap == 0 ? 8 : a->cap * 2;
		struct stream_state *g =
		        strata_realloc(a->streams, nc * sizeof(*g));
		if (g == NULL) {
			return NULL;
		}
		a->streams = g;
		a->cap = nc;
	}
	struct stream_state *s = &a->streams[a->n++];
	memset(s, 0, sizeof(*s));
	snprintf(s->key, sizeof(s->key), "%s", key);
	return s;
}

/* Fold the counter sample into r. */
static void sample(const struct autoscale *a, struct seg_rate *r,
                   uint64_t now_ms, uint64_t count)
{
	if (count < r->last_count || now_ms < r->last_ms) {
		r->last_count = count; /* a restarted counter: start over */
		r->last_ms = now_ms;
		return;
	}
	uint64_t dt = now_ms - r->last_ms;
	if (dt == 0) {
		return;
	}
	double rate = (double)(count - r->last_count) * 1000.0 / (double)dt;
	for (int k = 0; k < N_AVG; k++) {
		if (!r->have_rate) {
			r->avg[k] = rate;
			continue;
		}
		double tau = window_units[k] * (double)a->cfg.unit_ms;
		double alpha = 1.0 - exp(-(double)dt / tau);
		r->avg[k] += alpha * (rate - r->avg[k]);
	}
	r->have_rate = true;
	r->last_count = count;
	r->last_ms = now_ms;
}

/* How far over its split threshold r is (> 1: split). */
static double heat(const struct seg_rate *r, double target)
{
	double h = 0;
	for (int k = 0; k < N_AVG - 1 && r->have_rate && r->warm; k++) {
		double x = r->avg[k] / (split_over[k] * target);
		h = x > h ? x : h;
	}
	return h;
}

static bool cold(const struct seg_rate *r, double target)
{
	return r->have_rate && r->warm && r->avg[0] < target &&
	       r->avg[1] < target && r->avg[2] < target &&
	       r->avg[3] < target / 2;
}

static bool decide(const struct stream_state *st,
                   const struct autoscale_segment *segs, size_t n,
                   double target, uint32_t factor, uint32_t min_segments,
                   struct autoscale_scale *out)
{
	size_t hot = n;
	double best = 1.0;
	for (size_t i = 0; i < n; i++) {
		double h = heat(&st->segs[i], target);
		if (h > best) {
			best = h;
			hot = i;
		}
	}
	if (hot < n) {
		const struct seg_rate *r = &st->segs[hot];
		double top = r->avg[0];
		for (int k = 1; k < N_AVG - 1; k++) {
			top = r->avg[k] > top ? r->avg[k] : top;
		}
		double want = ceil(top / target);
		size_t k = want > MAX_SPLIT ? MAX_SPLIT : (size_t)want;
		size_t cap = factor < 2 ? 2 : factor;
		k = k > cap ? cap : k;
		k = k < 2 ? 2 : k;
		if (n - 1 + k > MAX_SEGMENTS) {
			return false;
		}
		double lo = segs[hot].low, hi = segs[hot].high;
		out->seal[0] = segs[hot].id;
		out->n_seal = 1;
		out->n_bounds = k + 1;
		for (size_t i = 0; i <= k; i++) {
			out->bounds[i] =
			        i == k ? hi
			               : lo + (hi - lo) * (double)i / (double)k;
		}
		out->rate = top;
		return true;
	}
	if (n <= min_segments || n < 2) {
		return false;
	}
	size_t pick = n;
	double coolest = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		const struct seg_rate *x = &st->segs[i], *y = &st->segs[i + 1];
		double sum = x->avg[3] + y->avg[3];
		if (cold(x, target) && cold(y, target) &&
		    (pick == n || sum < coolest)) {
			pick = i;
			coolest = sum;
		}
	}
	if (pick == n) {
		return false;
	}
	out->seal[0] = segs[pick].id;
	out->seal[1] = segs[pick + 1].id;
	out->n_seal = 2;
	out->bounds[0] = segs[pick].low;
	out->bounds[1] = segs[pick + 1].high;
	out->n_bounds = 2;
	out->rate = coolest;
	return true;
}

bool autoscale_pass(struct autoscale *a, const char *scope, const char *stream,
                    const struct autoscale_segment *segs, size_t n,
                    double target, uint32_t factor, uint32_t min_segments,
                    uint64_t now_ms, struct autoscale_scale *out)
{
	char key[STREAM_KEY_MAX];
	snprintf(key, sizeof(key), "%s/%s", scope, stream);
	struct stream_state *st = stream_get(a, key);
	struct seg_rate *next = strata_calloc(n + 1, sizeof(*next));
	if (st == NULL || next == NULL || target <= 0) {
		strata_free(next);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		struct seg_rate *r = &next[i];
		bool known = false;
		for (size_t j = 0; j < st->n && !known; j++) {
			if (st->segs[j].id == segs[i].id) {
				*r = st->segs[j];
				known = true;
			}
		}
		if (known) {
			sample(a, r, now_ms, segs[i].count);
		} else {
			r->id = segs[i].id;
			r->first_ms = now_ms;
			r->last_ms = now_ms;
			r->last_count = segs[i].count;
		}
		r->warm = now_ms - r->first_ms >= WARM_UNITS * a->cfg.unit_ms;
	}
	strata_free(st->segs);
	st->segs = next;
	st->n = n;
	st->last_pass_ms = now_ms;
	if (st->last_scale_ms != 0 &&
	    now_ms - st->last_scale_ms < a->cfg.cooldown_ms) {
		return false;
	}
	return decide(st, segs, n, target, factor, min_segments, out);
}

void autoscale_scaled(struct autoscale *a, const char *scope,
                      const char *stream, uint64_t now_ms)
{
	char key[STREAM_KEY_MAX];
	snprintf(key, sizeof(key), "%s/%s", scope, stream);
	struct stream_state *st = stream_get(a, key);
	if (st != NULL) {
		st->last_scale_ms = now_ms;
	}
}

void autoscale_scaled_at_least(struct autoscale *a, const char *scope,
                               const char *stream, uint64_t at_ms)
{
	char key[STREAM_KEY_MAX];
	snprintf(key, sizeof(key), "%s/%s", scope, stream);
	struct stream_state *st = stream_get(a, key);
	if (st != NULL && st->last_scale_ms < at_ms) {
		st->last_scale_ms = at_ms;
	}
}

void autoscale_prune(struct autoscale *a, uint64_t now_ms, uint64_t keep_ms)
{
	size_t out = 0;
	for (size_t i = 0; i < a->n; i++) {
		/* A pass after now_ms (the caller read its clock before the
		 * passes) is recent, not 2^64 ms old. */
		uint64_t last = a->streams[i].last_pass_ms;
		if (now_ms > last && now_ms - last > keep_ms) {
			strata_free(a->streams[i].segs);
			continue;
		}
		a->streams[out++] = a->streams[i];
	}
	a->n = out;
}
