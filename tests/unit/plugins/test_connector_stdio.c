/* Unit tests for the stdio connector (plugins/connector/stdio/): the real
 * connector-stdio.so, dlopen()ed from $STRATA_PLUGIN_DIR, with fd 0 and
 * fd 1 swapped for pipes (or a file) inside each test and put back after. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "strata/connector.h"
#include "tests/lib/check.h"
#include "tests/lib/connector.h"

#define MAX_LEN 1024 /* max_len of the polls */

static const struct strata_connector_ops *ops; /* its table */
static char err[STRATA_ERRMSG_SIZE];           /* the last op's message */
static int saved_in = -1;  /* the real fd 0 while a test replaced it */
static int saved_out = -1; /* the real fd 1 while a test replaced it */

/* Group setup: load the plugin and take its table. */
static int load_plugin(void **state)
{
	(void)state;
	ops = test_connector_load("stdio");
	return ops != NULL ? 0 : -1;
}

/* Per test: put back fd 0 and fd 1 if the test replaced them (also when
 * it failed half way). */
static int restore_fds(void **state)
{
	(void)state;
	if (saved_in >= 0) {
		dup2(saved_in, 0);
		close(saved_in);
		saved_in = -1;
	}
	if (saved_out >= 0) {
		fflush(stdout);
		dup2(saved_out, 1);
		close(saved_out);
		saved_out = -1;
	}
	return 0;
}

/* Put the read end of a new pipe on fd 0; returns its write end. */
static int pipe_stdin(void)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	saved_in = dup(0);
	assert_true(saved_in >= 0);
	assert_int_equal(dup2(p[0], 0), 0);
	close(p[0]);
	return p[1];
}

/* Put fd on fd 1 (cmocka's own output, flushed first, stays out of it
 * unless a check fails). */
static void swap_stdout(int fd)
{
	fflush(stdout);
	saved_out = dup(1);
	assert_true(saved_out >= 0);
	assert_int_equal(dup2(fd, 1), 1);
	close(fd);
}

/* Milliseconds on the monotonic clock. */
static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Poll (wait_ms each) until the end, at most tries polls; the records as
 * "data|" items in got[size]; every record's key must be key (NULL:
 * none). */
static void drain(void *s, int wait_ms, int tries, const char *key, char *got,
                  size_t size, bool *end)
{
	got[0] = '\0';
	*end = false;
	for (int i = 0; i < tries && !*end; i++) {
		struct strata_connector_record recs[3];
		size_t n = 0;
		assert_int_equal(ops->source_poll(s, wait_ms, MAX_LEN, recs, 3,
		                                  &n, end, err),
		                 0);
		for (size_t k = 0; k < n; k++) {
			if (key == NULL) {
				assert_null(recs[k].key);
				assert_int_equal(recs[k].keylen, 0);
			} else {
				assert_int_equal(recs[k].keylen, strlen(key));
				assert_memory_equal(recs[k].key, key,
				                    recs[k].keylen);
			}
			size_t l = strlen(got);
			snprintf(got + l, size - l, "%.*s|", (int)recs[k].len,
			         (const char *)recs[k].data);
		}
	}
}

/* ------------------------------------------------------------ table */

/* The table: both sides, no flags (at least once both ways), no commit. */
static void test_table_fields(void **state)
{
	(void)state;
	test_connector_assert_table(ops, "stdio", true, 0, true, 0, false);
}

/* ----------------------------------------------------------- source */

/* stdin lines (empty ones, '\r' kept, the last unterminated one at EOF)
 * and the end when stdin closes; no key by default; the token counts the
 * bytes consumed. A poll with nothing to read waits wait_ms. */
static void test_source_poll_lines_then_end(void **state)
{
	(void)state;
	int w = pipe_stdin();
	void *s;
	assert_int_equal(
	        ops->source_open(&test_connector_host, "", NULL, &s, err), 0);
	struct strata_connector_record recs[4];
	size_t n;
	bool end;
	uint64_t t0 = now_ms();
	assert_int_equal(
	        ops->source_poll(s, 60, MAX_LEN, recs, 4, &n, &end, err), 0);
	uint64_t waited = now_ms() - t0;
	assert_int_equal(n, 0);
	assert_false(end);
	assert_true(waited >= 55);
	assert_true(waited < 5000);
	assert_int_equal(write(w, "x\n\nyy\r\nz", 8), 8);
	close(w);
	char got[64];
	drain(s, 100, 20, NULL, got, sizeof(got), &end);
	assert_true(end);
	assert_string_equal(got, "x||yy\r|z|");
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->source_position(s, tok, sizeof(tok), err), 0);
	assert_string_equal(tok, "8");
	/* The end stays the end. */
	assert_int_equal(
	        ops->source_poll(s, 0, MAX_LEN, recs, 4, &n, &end, err), 0);
	assert_int_equal(n, 0);
	assert_true(end);
	ops->source_close(s);
}

/* key=k gives every record that key. */
static void test_source_poll_key_option(void **state)
{
	(void)state;
	int w = pipe_stdin();
	void *s;
	assert_int_equal(ops->source_open(&test_connector_host, "key=k1\n",
	                                  NULL, &s, err),
	                 0);
	assert_int_equal(write(w, "a\nb\n", 4), 4);
	close(w);
	char got[64];
	bool end;
	drain(s, 100, 20, "k1", got, sizeof(got), &end);
	assert_true(end);
	assert_string_equal(got, "a|b|");
	ops->source_close(s);
}

/* A line written while a poll waits comes out well before wait_ms; a
 * partial line waits for its '\n'. */
static void test_source_poll_wakes_on_data(void **state)
{
	(void)state;
	int w = pipe_stdin();
	void *s;
	assert_int_equal(
	        ops->source_open(&test_connector_host, "", NULL, &s, err), 0);
	assert_int_equal(write(w, "par", 3), 3);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		usleep(100 * 1000);
		_exit(write(w, "tial\n", 5) == 5 ? 0 : 1);
	}
	struct strata_connector_record rec;
	size_t n;
	bool end;
	uint64_t t0 = now_ms();
	assert_int_equal(
	        ops->source_poll(s, 10000, MAX_LEN, &rec, 1, &n, &end, err), 0);
	assert_true(now_ms() - t0 < 9000);
	assert_int_equal(n, 1);
	assert_int_equal(rec.len, 7);
	assert_memory_equal(rec.data, "partial", 7);
	assert_false(end);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	close(w);
	ops->source_close(s);
}

/* A line longer than max_len is STRATA_ETOOBIG naming stdin and where
 * the line starts, after the good lines before it. */
static void test_source_poll_line_too_long(void **state)
{
	(void)state;
	int w = pipe_stdin();
	void *s;
	assert_int_equal(
	        ops->source_open(&test_connector_host, "", NULL, &s, err), 0);
	char line[MAX_LEN + 2];
	memset(line, 'x', sizeof(line));
	line[MAX_LEN + 1] = '\n';
	assert_int_equal(write(w, "ok\n", 3), 3);
	assert_int_equal(write(w, line, sizeof(line)), sizeof(line));
	close(w);
	struct strata_connector_record recs[4];
	size_t n;
	bool end;
	assert_int_equal(
	        ops->source_poll(s, 100, MAX_LEN, recs, 4, &n, &end, err), 0);
	assert_int_equal(n, 1);
	int rc = 0;
	for (int i = 0; i < 10 && rc == 0; i++) {
		rc = ops->source_poll(s, 100, MAX_LEN, recs, 4, &n, &end, err);
		assert_int_equal(n, 0);
	}
	assert_int_equal(rc, STRATA_ETOOBIG);
	assert_contains(err, "stdin");
	assert_contains(err, "byte 3 ");
	ops->source_close(s);
}

/* stdin cannot be replayed: a restore token is STRATA_EINVAL; config
 * errors name the key and the valid ones. */
static void test_source_open_errors(void **state)
{
	(void)state;
	void *s = NULL;
	assert_int_equal(
	        ops->source_open(&test_connector_host, "", "10", &s, err),
	        STRATA_EINVAL);
	assert_contains(err, "stdin cannot be replayed: ");
	assert_contains(err, "'10'");
	assert_int_equal(ops->source_open(&test_connector_host, "path=x\n",
	                                  NULL, &s, err),
	                 STRATA_ECONFIG);
	assert_contains(err, "'path'");
	assert_contains(err, "(valid: key)");
	assert_int_equal(ops->source_open(&test_connector_host, "format=raw\n",
	                                  NULL, &s, err),
	                 STRATA_ECONFIG);
	assert_contains(err, "'format'"); /* a sink option */
}

/* ------------------------------------------------------------- sink */

/* format=lines: each record then '\n' on stdout once prepared; the token
 * counts the bytes written so far; a restore token is ignored. */
static void test_sink_prepare_writes_lines(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	swap_stdout(p[1]);
	void *s;
	assert_int_equal(
	        ops->sink_open(&test_connector_host, "", "123", &s, err), 0);
	struct strata_connector_record r[3] = {{.data = "a", .len = 1},
	                                       {.data = "", .len = 0},
	                                       {.data = "bc", .len = 2}};
	assert_int_equal(ops->sink_write(s, r, 3, err), 0);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->sink_prepare(s, tok, sizeof(tok), err), 0);
	assert_string_equal(tok, "6");
	char buf[16] = "";
	assert_int_equal(read(p[0], buf, sizeof(buf) - 1), 6);
	assert_string_equal(buf, "a\n\nbc\n");
	assert_int_equal(ops->sink_write(s, r, 1, err), 0);
	assert_int_equal(ops->sink_prepare(s, tok, sizeof(tok), err), 0);
	assert_string_equal(tok, "8");
	ops->sink_close(s);
	restore_fds(NULL);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(read(p[0], buf, sizeof(buf) - 1), 2);
	assert_string_equal(buf, "a\n");
	close(p[0]);
}

/* format=raw: the bytes as they are; close writes out what is still
 * buffered. */
static void test_sink_close_flushes_raw(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	swap_stdout(p[1]);
	void *s;
	assert_int_equal(ops->sink_open(&test_connector_host, "format=raw\n",
	                                NULL, &s, err),
	                 0);
	struct strata_connector_record r[2] = {{.data = "ab", .len = 2},
	                                       {.data = "c\n", .len = 2}};
	assert_int_equal(ops->sink_write(s, r, 2, err), 0);
	ops->sink_close(s);
	restore_fds(NULL); /* the last write end: EOF after the data */
	char buf[16] = "";
	assert_int_equal(read(p[0], buf, sizeof(buf) - 1), 4);
	assert_string_equal(buf, "abc\n");
	assert_int_equal(read(p[0], buf, sizeof(buf) - 1), 0);
	close(p[0]);
}

/* stdout redirected to a file: prepare syncs it and succeeds. */
static void test_sink_prepare_regular_file(void **state)
{
	(void)state;
	char path[] = "/tmp/test_connector_stdio.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	swap_stdout(fd);
	void *s;
	assert_int_equal(
	        ops->sink_open(&test_connector_host, "", NULL, &s, err), 0);
	struct strata_connector_record r = {.data = "line", .len = 4};
	assert_int_equal(ops->sink_write(s, &r, 1, err), 0);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->sink_prepare(s, tok, sizeof(tok), err), 0);
	assert_string_equal(tok, "5");
	ops->sink_close(s);
	restore_fds(NULL);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char buf[16] = "";
	assert_int_equal(fread(buf, 1, sizeof(buf) - 1, f), 5);
	fclose(f);
	unlink(path);
	assert_string_equal(buf, "line\n");
}

/* Config errors name the key and the valid ones. */
static void test_sink_open_config_errors(void **state)
{
	(void)state;
	void *s = NULL;
	assert_int_equal(ops->sink_open(&test_connector_host, "format=json\n",
	                                NULL, &s, err),
	                 STRATA_ECONFIG);
	assert_contains(err, "format");
	assert_contains(err, "lines or raw");
	assert_int_equal(
	        ops->sink_open(&test_connector_host, "key=k\n", NULL, &s, err),
	        STRATA_ECONFIG);
	assert_contains(err, "'key'"); /* a source option */
	assert_contains(err, "(valid: format)");
}

int main(void)
{
#define T(f) cmocka_unit_test_teardown(f, restore_fds)
	const struct CMUnitTest tests[] = {
	        T(test_table_fields),
	        T(test_source_poll_lines_then_end),
	        T(test_source_poll_key_option),
	        T(test_source_poll_wakes_on_data),
	        T(test_source_poll_line_too_long),
	        T(test_source_open_errors),
	        T(test_sink_prepare_writes_lines),
	        T(test_sink_close_flushes_raw),
	        T(test_sink_prepare_regular_file),
	        T(test_sink_open_config_errors),
	};
#undef T
	return cmocka_run_group_tests(tests, load_plugin,
	                              test_connector_unload);
}
