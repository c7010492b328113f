/* Unit tests for bench/report.c: the targets as the report checks
 * them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "bench/report.h"

/* A report with Redis and Strata in 1 KB 8x32 only. */
static void one_case(struct report *r, double strata_mb, double redis_mb)
{
	memset(r, 0, sizeof(*r));
	r->nsystems = 2;
	snprintf(r->systems[0].name, sizeof(r->systems[0].name), "redis");
	snprintf(r->systems[1].name, sizeof(r->systems[1].name), "strata");
	r->ncases = 1;
	snprintf(r->cases[0].name, sizeof(r->cases[0].name), "1KB 8x32");
	r->cases[0].payload = 1024;
	r->cases[0].writers = 8;
	r->cases[0].window = 32;
	double mb[2] = {redis_mb, strata_mb};
	for (int s = 0; s < 2; s++) {
		struct report_cell *c = &r->cells[s][0];
		c->state = REPORT_OK;
		c->runs = 1;
		c->mb_s = mb[s];
		c->ev_s = mb[s] * 1e6 / 1024;
	}
}

/* The 1 KB 8x32 target's verdict in the Markdown report. */
static const char *verdict_1kb(double strata_mb, double redis_mb)
{
	static struct report r;
	one_case(&r, strata_mb, redis_mb);
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	assert_non_null(f);
	report_markdown(f, &r);
	fclose(f);
	const char *line = strstr(out, "| 1 KB 8x32: >= 250 MB/s");
	assert_non_null(line);
	char row[512];
	snprintf(row, sizeof(row), "%.*s", (int)strcspn(line, "\n"), line);
	free(out);
	return strstr(row, "**met**") != NULL ? "met" : "missed";
}

/* "250 MB/s or 2x Redis, whichever is higher" needs both: 2x a slow Redis
 * below 250 MB/s is not enough (a run once reported 160 MB/s as met). */
static void test_report_1kb_target_needs_the_higher_bar(void **state)
{
	(void)state;
	assert_string_equal(verdict_1kb(160, 65), "missed");
	assert_string_equal(verdict_1kb(260, 140), "missed");
	assert_string_equal(verdict_1kb(260, 100), "met");
	assert_string_equal(verdict_1kb(300, 150), "met");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_report_1kb_target_needs_the_higher_bar),
	};
	return cmocka_run_group_tests_name("bench report", tests, NULL, NULL);
}
