/* Unit tests for common/metrics.c: registry, rendering, concurrency. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/metrics.h"
#include "strata/error.h"
#include "tests/lib/oom.h"

static struct metrics_registry *new_reg(void)
{
	struct metrics_registry *reg = NULL;
	assert_int_equal(metrics_registry_new(&reg), 0);
	assert_non_null(reg);
	return reg;
}

/* Render reg and compare with want, line by line for readable failures. */
static void assert_render(struct metrics_registry *reg, const char *want)
{
	struct buf out;
	buf_init(&out, 0);
	assert_int_equal(metrics_render(reg, &out), 0);
	const char *got = (const char *)out.data;
	const char *w = want;
	int line = 1;
	while (*got != '\0' || *w != '\0') {
		size_t gl = strcspn(got, "\n");
		size_t wl = strcspn(w, "\n");
		if (gl != wl || memcmp(got, w, gl) != 0) {
			print_error("line %d: got \"%.*s\", want \"%.*s\"\n",
			            line, (int)gl, got, (int)wl, w);
			fail();
		}
		got += gl + (got[gl] == '\n');
		w += wl + (w[wl] == '\n');
		line++;
	}
	assert_int_equal(out.len, strlen(want));
	buf_close(&out);
}

/* Counters and int/double gauges render HELP, TYPE and one sample each. */
static void test_metrics_render_counter_and_gauges(void **state)
{
	(void)state;
	struct metrics_registry *reg = new_reg();
	struct metrics_counter *c;
	struct metrics_gauge *gi, *gd;
	assert_int_equal(metrics_counter_register(reg, "strata_appends_total",
	                                          "Events appended.", NULL, 0,
	                                          &c, NULL),
	                 0);
	assert_int_equal(metrics_gauge_register(reg, "strata_open_segments",
	                                        "Open segments.", NULL, 0,
	                                        METRICS_GAUGE_INT, &gi, NULL),
	                 0);
	assert_int_equal(metrics_gauge_register(reg, "strata_ratio", "", NULL,
	                                        0, METRICS_GAUGE_DOUBLE, &gd,
	                                        NULL),
	                 0);
	metrics_counter_add(c, 41);
	metrics_counter_inc(c);
	metrics_gauge_set(gi, 10);
	metrics_gauge_add(gi, -13);
	metrics_gauge_set_double(gd, 0.25);
	metrics_gauge_add_double(gd, 0.5);
	assert_true(metrics_counter_get(c) == 42);
	assert_true(metrics_gauge_get(gi) == -3.0);
	assert_true(metrics_gauge_get(gd) == 0.75);
	assert_render(reg, "# HELP strata_appends_total Events appended.\n"
	                   "# TYPE strata_appends_total counter\n"
	                   "strata_appends_total 42\n"
	                   "# HELP strata_open_segments Open segments.\n"
	                   "# TYPE strata_open_segments gauge\n"
	                   "strata_open_segments -3\n"
	                   "# TYPE strata_ratio gauge\n"
	                   "strata_ratio 0.75\n");
	metrics_registry_free(reg);
}

/* Series of one name share one HELP/TYPE block; labels are sorted and
 * escaped; the same labels in another order are the same series. */
static void test_metrics_labels_group_sort_escape(void **state)
{
	(void)state;
	struct metrics_registry *reg = new_reg();
	struct metrics_counter *c1, *c2, *c3;
	const struct metrics_label l1[] = {{"container", "3"},
	                                   {"a", "x\"y\\z\nw"}};
	const struct metrics_label l1r[] = {{"a", "x\"y\\z\nw"},
	                                    {"container", "3"}};
	const struct metrics_label l2[] = {{"container", "4"}};
	assert_int_equal(
	        metrics_counter_register(reg, "reqs_total",
	                                 "Requests \\ with \"quotes\"\n"
	                                 "and lines.",
	                                 l1, 2, &c1, NULL),
	        0);
	assert_int_equal(metrics_counter_register(reg, "reqs_total", "ignored",
	                                          l2, 1, &c2, NULL),
	                 0);
	assert_int_equal(metrics_counter_register(reg, "reqs_total", "x", l1r,
	                                          2, &c3, NULL),
	                 0);
	assert_ptr_equal(c1, c3);
	assert_ptr_not_equal(c1, c2);
	metrics_counter_add(c1, 5);
	metrics_counter_add(c2, 7);
	assert_render(reg,
	              "# HELP reqs_total Requests \\\\ with \"quotes\"\\nand "
	              "lines.\n"
	              "# TYPE reqs_total counter\n"
	              "reqs_total{a=\"x\\\"y\\\\z\\nw\",container=\"3\"} 5\n"
	              "reqs_total{container=\"4\"} 7\n");
	metrics_registry_free(reg);
}

/* Buckets count v <= bound, cumulatively, with exact edges and +Inf. */
static void test_metrics_histogram_bucket_edges(void **state)
{
	(void)state;
	struct metrics_registry *reg = new_reg();
	struct metrics_histogram *h;
	const double bounds[] = {0.25, 1, 10};
	const struct metrics_label l[] = {{"op", "read"}};
	assert_int_equal(metrics_histogram_register(reg, "lat_seconds",
	                                            "Latency.", l, 1, bounds, 3,
	                                            &h, NULL),
	                 0);
	metrics_histogram_observe(h, 0.25);  /* exactly on the first edge */
	metrics_histogram_observe(h, -1);    /* below everything */
	metrics_histogram_observe(h, 0.375); /* just above the first edge */
	metrics_histogram_observe(h, 1);     /* exactly on the second edge */
	metrics_histogram_observe(h, 10);    /* exactly on the last edge */
	metrics_histogram_observe(h, 10.5);  /* above: +Inf only */
	uint64_t count;
	double sum;
	metrics_histogram_get(h, &count, &sum);
	assert_int_equal(count, 6);
	assert_true(sum == 21.125);
	assert_render(reg, "# HELP lat_seconds Latency.\n"
	                   "# TYPE lat_seconds histogram\n"
	                   "lat_seconds_bucket{op=\"read\",le=\"0.25\"} 2\n"
	                   "lat_seconds_bucket{op=\"read\",le=\"1\"} 4\n"
	                   "lat_seconds_bucket{op=\"read\",le=\"10\"} 5\n"
	                   "lat_seconds_bucket{op=\"read\",le=\"+Inf\"} 6\n"
	                   "lat_seconds_sum{op=\"read\"} 21.125\n"
	                   "lat_seconds_count{op=\"read\"} 6\n");
	metrics_registry_free(reg);
}

/* NULL bounds give the default latency buckets; NaN goes to +Inf. */
static void test_metrics_histogram_default_bounds(void **state)
{
	(void)state;
	struct metrics_registry *reg = new_reg();
	struct metrics_histogram *h;
	assert_int_equal(metrics_histogram_register(reg, "op_seconds", "", NULL,
	                                            0, NULL, 0, &h, NULL),
	                 0);
	metrics_histogram_observe(h, 0.0001);
	metrics_histogram_observe(h, 0.003);
	metrics_histogram_observe(h, NAN);
	struct buf out;
	buf_init(&out, 0);
	assert_int_equal(metrics_render(reg, &out), 0);
	const char *s = (const char *)out.data;
	assert_non_null(strstr(s, "op_seconds_bucket{le=\"0.0001\"} 1\n"));
	assert_non_null(strstr(s, "op_seconds_bucket{le=\"0.0025\"} 1\n"));
	assert_non_null(strstr(s, "op_seconds_bucket{le=\"0.005\"} 2\n"));
	assert_non_null(strstr(s, "op_seconds_bucket{le=\"10\"} 2\n"));
	assert_non_null(strstr(s, "op_seconds_bucket{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(s, "op_seconds_sum NaN\n"));
	assert_non_null(strstr(s, "op_seconds_count 3\n"));
	int buckets = 0;
	for (const char *p = s; (p = strstr(p, "_bucket{")) != NULL; p++) {
		buckets++;
	}
	assert_int_equal(buckets, METRICS_DEFAULT_BUCKETS + 1);
	buf_close(&out);
	metrics_registry_free(reg);
}

/* Doubles print in their shortest exact form and Prometheus spellings. */
static void test_metrics_render_double_format(void **state)
{
	(void)state;
	struct metrics_registry *reg = new_reg();
	struct metrics_gauge *g[5];
	const char *names[] = {"g_a", "g_b", "g_c", "g_d", "g_e"};
	for (int i = 0; i < 5; i++) {
		assert_int_equal(metrics_gauge_register(reg, names[i], "", NULL,
		                                        0, METRICS_GAUGE_DOUBLE,
		                                        &g[i], NULL),
		                 0);
	}
	metrics_gauge_set_double(g[0], 0.1);
	metrics_gauge_set_double(g[1], 1e-7);
	metrics_gauge_set_double(g[2], INFINITY);
	metrics_gauge_set_double(g[3], -INFINITY);
	metrics_gauge_set_double(g[4], 0.1 + 0.2);
	assert_render(reg, "# TYPE g_a gauge\ng_a 0.1\n"
	                   "# TYPE g_b gauge\ng_b 1e-07\n"
	                   "# TYPE g_c gauge\ng_c +Inf\n"
	                   "# TYPE g_d gauge\ng_d -Inf\n"
	                   "# TYPE g_e gauge\ng_e 0.30000000000000004\n");
	metrics_registry_free(reg);
}

/* Integer calls on double gauges convert; double calls on int gauges
 * truncate and saturate. */
static void test_metrics_gauge_kind_conversions(void **state)
{
	(void)state;
	struct metrics_registry *reg = new_reg();
	struct metrics_gauge *gi, *gd;
	assert_int_equal(metrics_gauge_register(reg, "gi", "", NULL, 0,
	                                        METRICS_GAUGE_INT, &gi, NULL),
	                 0);
	assert_int_equal(metrics_gauge_register(reg, "gd", "", NULL, 0,
	                                        METRICS_GAUGE_DOUBLE, &gd,
	                                        NULL),
	                 0);
	metrics_gauge_set_double(gi, 2.9);
	assert_true(metrics_gauge_get(gi) == 2.0);
	metrics_gauge_add_double(gi, -5.5);
	assert_true(metrics_gauge_get(gi) == -3.0);
	metrics_gauge_set_double(gi, 1e300);
	assert_true(metrics_gauge_get(gi) == (double)INT64_MAX);
	metrics_gauge_set_double(gi, NAN);
	assert_true(metrics_gauge_get(gi) == 0.0);
	metrics_gauge_set(gi, INT64_MAX);
	assert_render(reg, "# TYPE gi gauge\ngi 9223372036854775807\n"
	                   "# TYPE gd gauge\ngd 0\n");
	metrics_gauge_set(gd, 3);
	metrics_gauge_add(gd, 4);
	assert_true(metrics_gauge_get(gd) == 7.0);
	metrics_registry_free(reg);
}

/* Same name with another type, or a histogram with other bounds, fails
 * EEXIST and names the metric. */
static void test_metrics_register_type_conflict(void **state)
{
	(void)state;
	struct metrics_registry *reg = new_reg();
	char errmsg[STRATA_ERRMSG_SIZE] = "";
	struct metrics_counter *c;
	struct metrics_gauge *g;
	struct metrics_histogram *h, *h2;
	assert_int_equal(
	        metrics_counter_register(reg, "m", "", NULL, 0, &c, errmsg), 0);
	assert_int_equal(metrics_gauge_register(reg, "m", "", NULL, 0,
	                                        METRICS_GAUGE_INT, &g, errmsg),
	                 STRATA_EEXIST);
	assert_non_null(strstr(errmsg, "metric m is already registered as a "
	                               "counter, not a gauge"));
	const double b1[] = {1, 2};
	const double b2[] = {1, 3};
	assert_int_equal(metrics_histogram_register(reg, "h", "", NULL, 0, b1,
	                                            2, &h, errmsg),
	                 0);
	assert_int_equal(metrics_histogram_register(reg, "h", "", NULL, 0, b1,
	                                            2, &h2, errmsg),
	                 0);
	assert_ptr_equal(h, h2);
	assert_int_equal(metrics_histogram_register(reg, "h", "", NULL, 0, b2,
	                                            2, &h2, errmsg),
	                 STRATA_EEXIST);
	assert_non_null(strstr(errmsg, "different settings"));
	assert_int_equal(metrics_callback_register(reg, METRICS_COUNTER, "m",
	                                           "", NULL, 0, NULL, NULL,
	                                           errmsg),
	                 STRATA_EINVAL);
	metrics_registry_free(reg);
}

static int value_42(void *arg, double *v)
{
	(void)arg;
	*v = 42;
	return 0;
}

static int value_fails(void *arg, double *v)
{
	(void)arg;
	(void)v;
	return STRATA_EIO;
}

static int value_from_arg(void *arg, double *v)
{
	*v = *(const double *)arg;
	return 0;
}

/* Callbacks run at render time; a failing one omits only its sample; a
 * callback and a stored counter with the same labels conflict. */
static void test_metrics_callback_render(void **state)
{
	(void)state;
	struct metrics_registry *reg = new_reg();
	double x = 1.5;
	const struct metrics_label la[] = {{"k", "a"}};
	const struct metrics_label lb[] = {{"k", "b"}};
	const struct metrics_label lc[] = {{"k", "c"}};
	assert_int_equal(metrics_callback_register(reg, METRICS_GAUGE, "cb",
	                                           "Computed.", la, 1,
	                                           value_from_arg, &x, NULL),
	                 0);
	assert_int_equal(metrics_callback_register(reg, METRICS_GAUGE, "cb", "",
	                                           lb, 1, value_fails, NULL,
	                                           NULL),
	                 0);
	assert_int_equal(metrics_callback_register(reg, METRICS_GAUGE, "cb", "",
	                                           lc, 1, value_42, NULL, NULL),
	                 0);
	/* Idempotent: the first function stays. */
	assert_int_equal(metrics_callback_register(reg, METRICS_GAUGE, "cb", "",
	                                           la, 1, value_42, NULL, NULL),
	                 0);
	assert_int_equal(metrics_callback_register(reg, METRICS_COUNTER,
	                                           "cb_total", "", NULL, 0,
	                                           value_42, NULL, NULL),
	                 0);
	struct metrics_counter *c;
	assert_int_equal(metrics_counter_register(reg, "cb_total", "", NULL, 0,
	                                          &c, NULL),
	                 STRATA_EEXIST);
	x = 2.5;
	assert_render(reg, "# HELP cb Computed.\n"
	                   "# TYPE cb gauge\n"
	                   "cb{k=\"a\"} 2.5\n"
	                   "cb{k=\"c\"} 42\n"
	                   "# TYPE cb_total counter\n"
	                   "cb_total 42\n");
	metrics_registry_free(reg);
}

/* Metric names follow [a-zA-Z_:][a-zA-Z0-9_:]*; label names and bucket
 * bounds are checked too. */
static void test_metrics_invalid_names(void **state)
{
	(void)state;
	struct metrics_registry *reg = new_reg();
	char errmsg[STRATA_ERRMSG_SIZE] = "";
	struct metrics_counter *c;
	struct metrics_histogram *h;
	const char *bad[] = {"",    "1abc", "a-b", "a b", "caf\xc3\xa9",
	                     "a.b", "a{b}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(metrics_name_valid(bad[i]));
		assert_int_equal(metrics_counter_register(reg, bad[i], "", NULL,
		                                          0, &c, errmsg),
		                 STRATA_EBADNAME);
		assert_non_null(strstr(errmsg, "invalid metric name"));
	}
	assert_false(metrics_name_valid(NULL));
	assert_int_equal(
	        metrics_counter_register(reg, NULL, "", NULL, 0, &c, errmsg),
	        STRATA_EBADNAME);
	const char *good[] = {"a", "_x", ":x", "a:b_c9", "A9"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_true(metrics_name_valid(good[i]));
		assert_int_equal(metrics_counter_register(reg, good[i], "",
		                                          NULL, 0, &c, errmsg),
		                 0);
	}
	const struct metrics_label lbad[][1] = {
	        {{"__x", "v"}}, {{"1a", "v"}}, {{"a:b", "v"}}, {{"", "v"}}};
	for (size_t i = 0; i < sizeof(lbad) / sizeof(lbad[0]); i++) {
		assert_int_equal(metrics_counter_register(
		                         reg, "lm", "", lbad[i], 1, &c, errmsg),
		                 STRATA_EBADNAME);
		assert_non_null(strstr(errmsg, "invalid label name"));
	}
	const struct metrics_label ldup[] = {{"a", "1"}, {"a", "2"}};
	assert_int_equal(
	        metrics_counter_register(reg, "lm", "", ldup, 2, &c, errmsg),
	        STRATA_EINVAL);
	assert_non_null(strstr(errmsg, "label a given twice"));
	const struct metrics_label lnull[] = {{"a", NULL}};
	assert_int_equal(
	        metrics_counter_register(reg, "lm", "", lnull, 1, &c, errmsg),
	        STRATA_EINVAL);
	const struct metrics_label lle[] = {{"le", "1"}};
	assert_int_equal(metrics_histogram_register(reg, "hm", "", lle, 1, NULL,
	                                            0, &h, errmsg),
	                 STRATA_EBADNAME);
	const double dec[] = {1, 1};
	const double nan_b[] = {1, NAN};
	const double inf_b[] = {INFINITY};
	assert_int_equal(metrics_histogram_register(reg, "hm", "", NULL, 0, dec,
	                                            2, &h, errmsg),
	                 STRATA_EINVAL);
	assert_non_null(strstr(errmsg, "greater than the one before"));
	assert_int_equal(metrics_histogram_register(reg, "hm", "", NULL, 0,
	                                            nan_b, 2, &h, errmsg),
	                 STRATA_EINVAL);
	assert_int_equal(metrics_histogram_register(reg, "hm", "", NULL, 0,
	                                            inf_b, 1, &h, errmsg),
	                 STRATA_EINVAL);
	assert_int_equal(metrics_histogram_register(reg, "hm", "", NULL, 0, dec,
	                                            0, &h, errmsg),
	                 STRATA_EINVAL);
	metrics_registry_free(reg);
}

#define THREADS 4
#define INCREMENTS 100000

struct worker {
	struct metrics_counter *c;
	struct metrics_histogram *h;
	struct metrics_gauge *g;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < INCREMENTS; i++) {
		metrics_counter_inc(w->c);
		metrics_histogram_observe(w->h, (i & 1) ? 1.0 : 0.5);
		metrics_gauge_add_double(w->g, 1.0);
	}
	return NULL;
}

/* 4 threads x 100k updates lose nothing; rendering runs concurrently. */
static void test_metrics_concurrent_increments(void **state)
{
	(void)state;
	struct metrics_registry *reg = new_reg();
	struct worker w;
	const double bounds[] = {0.5, 1};
	assert_int_equal(metrics_counter_register(reg, "n_total", "", NULL, 0,
	                                          &w.c, NULL),
	                 0);
	assert_int_equal(metrics_histogram_register(reg, "h", "", NULL, 0,
	                                            bounds, 2, &w.h, NULL),
	                 0);
	assert_int_equal(metrics_gauge_register(reg, "g", "", NULL, 0,
	                                        METRICS_GAUGE_DOUBLE, &w.g,
	                                        NULL),
	                 0);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w),
		                 0);
	}
	struct buf out;
	buf_init(&out, 0);
	for (int i = 0; i < 20; i++) {
		buf_reset(&out);
		assert_int_equal(metrics_render(reg, &out), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
	}
	uint64_t count;
	double sum;
	metrics_histogram_get(w.h, &count, &sum);
	assert_true(metrics_counter_get(w.c) == THREADS * INCREMENTS);
	assert_true(count == THREADS * INCREMENTS);
	assert_true(sum == THREADS * INCREMENTS * 0.75);
	assert_true(metrics_gauge_get(w.g) == THREADS * INCREMENTS);
	assert_render(reg, "# TYPE n_total counter\n"
	                   "n_total 400000\n"
	                   "# TYPE h histogram\n"
	                   "h_bucket{le=\"0.5\"} 200000\n"
	                   "h_bucket{le=\"1\"} 400000\n"
	                   "h_bucket{le=\"+Inf\"} 400000\n"
	                   "h_sum 300000\n"
	                   "h_count 400000\n"
	                   "# TYPE g gauge\n"
	                   "g 400000\n");
	buf_close(&out);
	metrics_registry_free(reg);
}

/* Find "name value\n" in s and parse value. */
static double sample_value(const char *s, const char *name)
{
	char key[128];
	snprintf(key, sizeof(key), "\n%s ", name);
	const char *p = strstr(s, key);
	assert_non_null(p);
	return strtod(p + strlen(key), NULL);
}

/* Process metrics come from /proc with plausible values; idempotent. */
static void test_metrics_process_metrics(void **state)
{
	(void)state;
	struct metrics_registry *reg = new_reg();
	char errmsg[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(metrics_register_process(reg, errmsg), 0);
	assert_int_equal(metrics_register_process(reg, errmsg), 0);
	struct buf out;
	buf_init(&out, 0);
	assert_int_equal(metrics_render(reg, &out), 0);
	const char *s = (const char *)out.data;
	assert_non_null(
	        strstr(s, "# TYPE process_resident_memory_bytes gauge\n"));
	assert_non_null(
	        strstr(s, "# TYPE process_cpu_seconds_total counter\n"));
	assert_non_null(strstr(s, "# TYPE process_open_fds gauge\n"));
	assert_non_null(strstr(s, "# TYPE process_start_time_seconds gauge\n"));
	assert_true(sample_value(s, "process_resident_memory_bytes") > 1e5);
	assert_true(sample_value(s, "process_cpu_seconds_total") >= 0);
	assert_true(sample_value(s, "process_open_fds") >= 3);
	double start = sample_value(s, "process_start_time_seconds");
	double now = (double)time(NULL);
	assert_true(start <= now + 1);
	assert_true(start > now - 3600);
	/* One sample each even after registering twice. */
	int n = 0;
	for (const char *p = s; (p = strstr(p, "\nprocess_open_fds ")) != NULL;
	     p++) {
		n++;
	}
	assert_int_equal(n, 1);
	buf_close(&out);
	metrics_registry_free(reg);
}

/* Rendering into a bounded buffer fails ETOOBIG. */
static void test_metrics_render_too_big(void **state)
{
	(void)state;
	struct metrics_registry *reg = new_reg();
	struct metrics_counter *c;
	assert_int_equal(metrics_counter_register(reg, "a_long_metric_name",
	                                          "help", NULL, 0, &c, NULL),
	                 0);
	struct buf out;
	buf_init(&out, 16);
	assert_int_equal(metrics_render(reg, &out), STRATA_ETOOBIG);
	buf_close(&out);
	metrics_registry_free(reg);
}

/* Build a registry with every kind of metric and render it. */
static int oom_scenario(char *errmsg)
{
	struct metrics_registry *reg;
	int rv = metrics_registry_new(&reg);
	if (rv != 0) {
		return rv;
	}
	const struct metrics_label l[] = {{"container", "3"}, {"b", "x\"y"}};
	struct metrics_counter *c;
	struct metrics_gauge *g;
	struct metrics_histogram *h;
	struct buf out;
	buf_init(&out, 0);
	rv = metrics_counter_register(reg, "c_total", "C.", l, 2, &c, errmsg);
	if (rv == 0) {
		rv = metrics_counter_register(reg, "c_total", "C.", l, 1, &c,
		                              errmsg);
	}
	if (rv == 0) {
		rv = metrics_gauge_register(reg, "g", "G.", NULL, 0,
		                            METRICS_GAUGE_INT, &g, errmsg);
	}
	if (rv == 0) {
		rv = metrics_histogram_register(reg, "h", "H.", l, 2, NULL, 0,
		                                &h, errmsg);
	}
	if (rv == 0) {
		rv = metrics_callback_register(reg, METRICS_GAUGE, "cb", "",
		                               NULL, 0, value_42, NULL, errmsg);
	}
	if (rv == 0) {
		metrics_histogram_observe(h, 0.2);
		rv = metrics_render(reg, &out);
	}
	buf_close(&out);
	metrics_registry_free(reg);
	return rv;
}

/* Every allocation may fail: the error is ENOMEM and nothing leaks
 * (LeakSanitizer checks at exit). */
static void test_metrics_oom(void **state)
{
	(void)state;
	char errmsg[STRATA_ERRMSG_SIZE];
	long n;
	for (n = 1;; n++) {
		oom_install(n);
		int rv = oom_scenario(errmsg);
		long calls = oom_uninstall();
		if (rv == 0) {
			assert_true(calls < n);
			break;
		}
		assert_int_equal(rv, STRATA_ENOMEM);
		assert_true(n < 1000);
	}
	assert_true(n > 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_metrics_render_counter_and_gauges),
	        cmocka_unit_test(test_metrics_labels_group_sort_escape),
	        cmocka_unit_test(test_metrics_histogram_bucket_edges),
	        cmocka_unit_test(test_metrics_histogram_default_bounds),
	        cmocka_unit_test(test_metrics_render_double_format),
	        cmocka_unit_test(test_metrics_gauge_kind_conversions),
	        cmocka_unit_test(test_metrics_register_type_conflict),
	        cmocka_unit_test(test_metrics_callback_render),
	        cmocka_unit_test(test_metrics_invalid_names),
	        cmocka_unit_test(test_metrics_concurrent_increments),
	        cmocka_unit_test(test_metrics_process_metrics),
	        cmocka_unit_test(test_metrics_render_too_big),
	        cmocka_unit_test(test_metrics_oom),
	};
	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
