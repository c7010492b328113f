/* Unit tests for the stdio connector (plugins/connector/stdio/): stdin and
 * stdout replaced by pipes inside the test. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "strata/connector.h"

static const struct strata_connector_ops *ops;

__attribute__((format(printf, 3, 4))) static void
t_log(const struct strata_host *h, int level, const char *fmt, ...)
{
	(void)h;
	(void)level;
	(void)fmt;
}

static void t_counter(const struct strata_host *h, const char *n, uint64_t d)
{
	(void)h;
	(void)n;
	(void)d;
}

static const struct strata_host host = {
        .abi_version = STRATA_TIER2_ABI_VERSION,
        .log = t_log,
        .malloc = malloc,
        .realloc = realloc,
        .free = free,
        .counter_add = t_counter,
};

static int setup(void **unused)
{
	(void)unused;
	char path[4096];
	snprintf(path, sizeof(path), "%s/connector-stdio.so",
	         getenv("STRATA_PLUGIN_DIR"));
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(h);
	ops = ((strata_connector_entry_fn)dlsym(h, STRATA_CONNECTOR_ENTRY))();
	return 0;
}

/* Put the read end of a new pipe on fd (0); returns the write end and
 * the saved fd in *saved. */
static int pipe_in(int *saved)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	*saved = dup(0);
	dup2(p[0], 0);
	close(p[0]);
	return p[1];
}

static void test_stdio_table(void **unused)
{
	(void)unused;
	assert_int_equal(ops->abi_version, STRATA_CONNECTOR_ABI_VERSION);
	assert_string_equal(ops->name, "stdio");
	assert_int_equal(ops->source_flags & STRATA_CONNECTOR_SOURCE_REPLAYABLE,
	                 0);
	assert_int_equal(ops->sink_flags & STRATA_CONNECTOR_SINK_EXACTLY_ONCE,
	                 0);
}

static void test_stdio_source_lines_then_end(void **unused)
{
	(void)unused;
	int saved;
	int w = pipe_in(&saved);
	void *s;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(ops->source_open(&host, "key=k1\n", NULL, &s, err), 0);
	struct strata_connector_record recs[4];
	size_t n;
	bool end;
	/* Nothing yet: waits, returns nothing, not the end. */
	assert_int_equal(ops->source_poll(s, 20, 100, recs, 4, &n, &end, err),
	                 0);
	assert_int_equal(n, 0);
	assert_false(end);
	assert_int_equal(write(w, "x\nyy\nz", 6), 6);
	close(w); /* EOF: the unterminated "z" is a record */
	char got[64] = "";
	for (int i = 0; i < 10 && !end; i++) {
		assert_int_equal(
		        ops->source_poll(s, 100, 100, recs, 4, &n, &end, err),
		        0);
		for (size_t k = 0; k < n; k++) {
			assert_int_equal(recs[k].keylen, 2);
			size_t l = strlen(got);
			snprintf(got + l, sizeof(got) - l, "%.*s|",
			         (int)recs[k].len, (const char *)recs[k].data);
		}
	}
	assert_true(end);
	assert_string_equal(got, "x|yy|z|");
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->source_position(s, tok, sizeof(tok), err), 0);
	assert_string_equal(tok, "6");
	ops->source_close(s);
	dup2(saved, 0);
	close(saved);
}

static void test_stdio_source_cannot_replay(void **unused)
{
	(void)unused;
	void *s;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(ops->source_open(&host, "", "10", &s, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "cannot be replayed"));
	assert_int_equal(ops->source_open(&host, "path=x\n", NULL, &s, err),
	                 STRATA_ECONFIG);
	assert_non_null(strstr(err, "path"));
}

static void test_stdio_sink_lines(void **unused)
{
	(void)unused;
	int p[2];
	assert_int_equal(pipe(p), 0);
	int saved = dup(1);
	dup2(p[1], 1);
	close(p[1]);
	void *s;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(ops->sink_open(&host, "", "123", &s, err), 0);
	struct strata_connector_record r[2] = {{.data = "a", .len = 1},
	                                       {.data = "bc", .len = 2}};
	assert_int_equal(ops->sink_write(s, r, 2, err), 0);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->sink_prepare(s, tok, sizeof(tok), err), 0);
	assert_string_equal(tok, "5");
	ops->sink_close(s);
	dup2(saved, 1);
	close(saved);
	char buf[16] = "";
	assert_int_equal(read(p[0], buf, sizeof(buf) - 1), 5);
	assert_string_equal(buf, "a\nbc\n");
	close(p[0]);
	assert_int_equal(ops->sink_open(&host, "format=json\n", NULL, &s, err),
	                 STRATA_ECONFIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stdio_table),
	        cmocka_unit_test(test_stdio_source_lines_then_end),
	        cmocka_unit_test(test_stdio_source_cannot_replay),
	        cmocka_unit_test(test_stdio_sink_lines),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
