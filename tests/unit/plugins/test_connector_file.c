/* Unit tests for the file connector (plugins/connector/file/): the real
 * connector-file.so, dlopen()ed from $STRATA_PLUGIN_DIR with a test host
 * table, on files in a fresh temp directory per test. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "strata/connector.h"
#include "tests/lib/check.h"
#include "tests/lib/connector.h"

#define MAX_LEN 1024 /* max_len of most polls */

static const struct strata_connector_ops *ops; /* its table */
static char dir[64];                           /* this test's temp dir */
static char in_path[128];                      /* the source's file */
static char out_path[128];                     /* the sink's file */
static char err[STRATA_ERRMSG_SIZE];           /* the last op's message */

/* Group setup: load the plugin and take its table. */
static int load_plugin(void **state)
{
	(void)state;
	ops = test_connector_load("file");
	return ops != NULL ? 0 : -1;
}

/* Per test: a fresh temp dir holding (maybe) in.log and out.log. */
static int make_dir(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_connector_file.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		return -1;
	}
	snprintf(in_path, sizeof(in_path), "%s/in.log", dir);
	snprintf(out_path, sizeof(out_path), "%s/out.log", dir);
	err[0] = '\0';
	test_alloc_fail_at = 0;
	return 0;
}

/* Per test: remove the temp dir and what the test left in it. */
static int remove_dir(void **state)
{
	(void)state;
	unlink(in_path);
	unlink(out_path);
	return rmdir(dir);
}

/* Write text to path with fopen mode ("w" or "a"). */
static void put(const char *path, const char *mode, const char *text)
{
	FILE *f = fopen(path, mode);
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

/* The whole file at path, NUL-terminated, in a static buffer. */
static const char *slurp(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* The size of the file at path. */
static uint64_t file_size(const char *path)
{
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	return (uint64_t)sb.st_size;
}

/* Open the source on in_path with extra config lines. */
static int src_open(const char *extra, const char *restore, void **s)
{
	char config[512];
	snprintf(config, sizeof(config), "path=%s\n%s", in_path, extra);
	return ops->source_open(&test_connector_host, config, restore, s, err);
}

/* The source's position token in tok[STRATA_CONNECTOR_TOKEN_MAX]. */
static void position(void *s, char *tok)
{
	assert_int_equal(
	        ops->source_position(s, tok, STRATA_CONNECTOR_TOKEN_MAX, err),
	        0);
}

/* Append records to got as "data|" (got has size bytes). */
static void append_recs(char *got, size_t size,
                        const struct strata_connector_record *recs, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		size_t l = strlen(got);
		snprintf(got + l, size - l, "%.*s|", (int)recs[k].len,
		         (const char *)recs[k].data);
	}
}

/* Poll (wait 0, 3 records at a time) until the end or an empty poll;
 * the records as "data|" items in got. */
static void drain(void *s, char *got, size_t size, bool *end)
{
	got[0] = '\0';
	*end = false;
	for (int i = 0; i < 1000 && !*end; i++) {
		struct strata_connector_record recs[3];
		size_t n = 0;
		assert_int_equal(
		        ops->source_poll(s, 0, MAX_LEN, recs, 3, &n, end, err),
		        0);
		if (n == 0 && !*end) {
			return;
		}
		append_recs(got, size, recs, n);
	}
}

/* Milliseconds on the monotonic clock. */
static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------ table */

/* The table: a replayable source and an exactly-once sink whose data is
 * visible once written (no commit). */
static void test_table_fields(void **state)
{
	(void)state;
	test_connector_assert_table(ops, "file", true,
	                            STRATA_CONNECTOR_SOURCE_REPLAYABLE, true,
	                            STRATA_CONNECTOR_SINK_EXACTLY_ONCE, false);
}

/* ----------------------------------------------------------- source */

/* One record per line: empty lines are records, '\r' is kept, the last
 * unterminated line comes at EOF; the token after each poll is the offset
 * after the line returned; end comes with the last line and stays. */
static void test_source_poll_lines_and_tokens(void **state)
{
	(void)state;
	put(in_path, "w", "a\n\nccc\r\nlast");
	void *s;
	assert_int_equal(src_open("", NULL, &s), 0);
	static const char *const want[] = {"a", "", "ccc\r", "last"};
	static const char *const tokens[] = {"2", "3", "8", "12"};
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	position(s, tok);
	assert_string_equal(tok, "0");
	for (size_t i = 0; i < 4; i++) {
		struct strata_connector_record rec;
		size_t n = 9;
		bool end = true;
		assert_int_equal(
		        ops->source_poll(s, 0, MAX_LEN, &rec, 1, &n, &end, err),
		        0);
		assert_int_equal(n, 1);
		assert_int_equal(rec.len, strlen(want[i]));
		assert_memory_equal(rec.data, want[i], rec.len);
		/* The default key is the path: one key keeps the order. */
		assert_int_equal(rec.keylen, strlen(in_path));
		assert_memory_equal(rec.key, in_path, rec.keylen);
		assert_int_equal(end, i == 3);
		position(s, tok);
		assert_string_equal(tok, tokens[i]);
	}
	for (int i = 0; i < 2; i++) {
		struct strata_connector_record rec;
		size_t n = 9;
		bool end = false;
		assert_int_equal(ops->source_poll(s, 50, MAX_LEN, &rec, 1, &n,
		                                  &end, err),
		                 0);
		assert_int_equal(n, 0);
		assert_true(end);
	}
	ops->source_close(s);
}

/* key=k gives every record that key; key= (empty) gives none. */
static void test_source_poll_key_option(void **state)
{
	(void)state;
	put(in_path, "w", "x\ny\n");
	struct strata_connector_record recs[4];
	size_t n;
	bool end;
	void *s;
	assert_int_equal(src_open("key=tenant-7\n", NULL, &s), 0);
	assert_int_equal(
	        ops->source_poll(s, 0, MAX_LEN, recs, 4, &n, &end, err), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(recs[i].keylen, 8);
		assert_memory_equal(recs[i].key, "tenant-7", 8);
	}
	ops->source_close(s);
	assert_int_equal(src_open("key=\n", NULL, &s), 0);
	assert_int_equal(
	        ops->source_poll(s, 0, MAX_LEN, recs, 4, &n, &end, err), 0);
	assert_int_equal(n, 2);
	assert_null(recs[0].key);
	assert_int_equal(recs[0].keylen, 0);
	ops->source_close(s);
}

/* An empty file ends at once; its token is 0. */
static void test_source_poll_empty_file(void **state)
{
	(void)state;
	put(in_path, "w", "");
	void *s;
	assert_int_equal(src_open("", NULL, &s), 0);
	char got[64];
	bool end;
	drain(s, got, sizeof(got), &end);
	assert_true(end);
	assert_string_equal(got, "");
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	position(s, tok);
	assert_string_equal(tok, "0");
	ops->source_close(s);
}

/* Reopened at the token of every record, the source goes on with exactly
 * the records after it. */
static void test_source_open_restore_continues(void **state)
{
	(void)state;
	put(in_path, "w", "one\ntwo\n\nthree\nfour\nfive");
	static const char *const all[] = {"one",   "two",  "",
	                                  "three", "four", "five"};
	char tokens[7][STRATA_CONNECTOR_TOKEN_MAX];
	void *s;
	assert_int_equal(src_open("", NULL, &s), 0);
	position(s, tokens[0]);
	for (size_t i = 0; i < 6; i++) {
		struct strata_connector_record rec;
		size_t n;
		bool end;
		assert_int_equal(
		        ops->source_poll(s, 0, MAX_LEN, &rec, 1, &n, &end, err),
		        0);
		assert_int_equal(n, 1);
		position(s, tokens[i + 1]);
	}
	ops->source_close(s);
	for (size_t i = 0; i <= 6; i++) {
		char want[128] = "";
		for (size_t k = i; k < 6; k++) {
			strcat(want, all[k]);
			strcat(want, "|");
		}
		assert_int_equal(src_open("", tokens[i], &s), 0);
		char got[128];
		bool end;
		drain(s, got, sizeof(got), &end);
		assert_true(end);
		assert_string_equal(got, want);
		char tok[STRATA_CONNECTOR_TOKEN_MAX];
		position(s, tok);
		assert_string_equal(tok, "24"); /* the file's size */
		ops->source_close(s);
	}
}

/* The token after a last unterminated line (the file's size) reopens at
 * the end; once that line was continued it is refused, not read from the
 * middle of the line. */
static void test_source_open_restore_after_unterminated(void **state)
{
	(void)state;
	put(in_path, "w", "a\nbc");
	void *s;
	assert_int_equal(src_open("", "4", &s), 0);
	char got[64];
	bool end;
	drain(s, got, sizeof(got), &end);
	assert_true(end);
	assert_string_equal(got, "");
	ops->source_close(s);
	put(in_path, "a", "d\n");
	assert_int_equal(src_open("", "4", &s), STRATA_EINVAL);
	assert_contains(err, "not at the start of a line");
	assert_contains(err, in_path);
}

/* Tokens that are not decimal offsets, beyond the file or inside a line
 * are refused with the code and a message naming them. */
static void test_source_open_bad_tokens(void **state)
{
	(void)state;
	put(in_path, "w", "one\ntwo\n");
	static const char *const junk[] = {
	        "x1",   "",    "-1",
	        "+1",   " 1",  "1 ",
	        "0x10", "1.0", "18446744073709551616", /* UINT64_MAX + 1 */
	};
	void *s = NULL;
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		assert_int_equal(src_open("", junk[i], &s), STRATA_EINVAL);
		assert_contains(err, "not a byte offset");
		char quoted[64];
		snprintf(quoted, sizeof(quoted), "'%s'", junk[i]);
		assert_contains(err, quoted);
	}
	assert_int_equal(src_open("", "9", &s), STRATA_ERANGE);
	assert_contains(err, in_path);
	assert_contains(err, "position 9");
	assert_contains(err, "(8 bytes)");
	assert_int_equal(src_open("", "18446744073709551615", &s),
	                 STRATA_ERANGE);
	assert_int_equal(src_open("", "2", &s), STRATA_EINVAL);
	assert_contains(err, "position 2");
	assert_contains(err, "not at the start of a line");
	assert_int_equal(src_open("", "4", &s), 0); /* after "one\n" */
	ops->source_close(s);
	assert_int_equal(src_open("", "0008", &s), 0); /* digits: the end */
	ops->source_close(s);
}

/* A line longer than max_len is STRATA_ETOOBIG naming the file and where
 * the line starts, after the good lines before it were returned; a line
 * of exactly max_len bytes is fine. */
static void test_source_poll_line_too_long(void **state)
{
	(void)state;
	char line[MAX_LEN + 3];
	memset(line, 'x', MAX_LEN);
	line[MAX_LEN] = '\n';
	line[MAX_LEN + 1] = '\0';
	put(in_path, "w", "ok\n");
	put(in_path, "a", line); /* exactly MAX_LEN: fine */
	line[MAX_LEN] = 'x';     /* one byte more */
	line[MAX_LEN + 1] = '\n';
	line[MAX_LEN + 2] = '\0';
	put(in_path, "a", line);
	put(in_path, "a", "after\n");
	void *s;
	assert_int_equal(src_open("", NULL, &s), 0);
	struct strata_connector_record recs[4];
	size_t n;
	bool end;
	assert_int_equal(
	        ops->source_poll(s, 0, MAX_LEN, recs, 4, &n, &end, err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(recs[1].len, MAX_LEN);
	assert_false(end);
	assert_int_equal(
	        ops->source_poll(s, 0, MAX_LEN, recs, 4, &n, &end, err),
	        STRATA_ETOOBIG);
	assert_contains(err, in_path);
	char where[64];
	snprintf(where, sizeof(where), "byte %d ", 3 + MAX_LEN + 1);
	assert_contains(err, where);
	ops->source_close(s);

	/* Unterminated at the end of the file: too long all the same. */
	memset(line, 'y', MAX_LEN + 1);
	line[MAX_LEN + 1] = '\0';
	put(in_path, "w", line);
	assert_int_equal(src_open("", NULL, &s), 0);
	assert_int_equal(
	        ops->source_poll(s, 0, MAX_LEN, recs, 4, &n, &end, err),
	        STRATA_ETOOBIG);
	assert_contains(err, "byte 0 ");
	ops->source_close(s);
}

/* Lines longer than the 64 KiB first buffer are read when max_len allows
 * them: the line buffer grows to max_len + 1 bytes, no more. */
static void test_source_poll_long_lines_grow_buffer(void **state)
{
	(void)state;
	size_t big = 200 * 1024;
	char *line = malloc(big + 2);
	assert_non_null(line);
	for (size_t i = 0; i < big; i++) {
		line[i] = (char)('a' + i % 26);
	}
	line[big] = '\n';
	line[big + 1] = '\0';
	put(in_path, "w", line);
	put(in_path, "a", "short\n");
	put(in_path, "a", line);
	void *s;
	assert_int_equal(src_open("", NULL, &s), 0);
	test_alloc_max = 0;
	struct strata_connector_record recs[4];
	size_t got = 0;
	bool end = false;
	size_t lens[3] = {0};
	for (int i = 0; i < 100 && !end; i++) {
		size_t n;
		assert_int_equal(
		        ops->source_poll(s, 0, big, recs, 4, &n, &end, err), 0);
		for (size_t k = 0; k < n; k++) {
			assert_true(got < 3);
			if (recs[k].len == big) {
				assert_memory_equal(recs[k].data, line, big);
			}
			lens[got++] = recs[k].len;
		}
	}
	assert_true(end);
	assert_int_equal(got, 3);
	assert_int_equal(lens[0], big);
	assert_int_equal(lens[1], 5);
	assert_int_equal(lens[2], big);
	assert_int_equal(test_alloc_max, big + 1);
	ops->source_close(s);
	/* With max_len one byte short, the first line is too long. */
	assert_int_equal(src_open("", NULL, &s), 0);
	test_alloc_max = 0;
	size_t n;
	assert_int_equal(
	        ops->source_poll(s, 0, big - 1, recs, 4, &n, &end, err),
	        STRATA_ETOOBIG);
	assert_contains(err, "byte 0 ");
	assert_int_equal(test_alloc_max, big);
	ops->source_close(s);
	free(line);
}

/* Many short lines spread over several 64 KiB reads come out whole, in
 * order, and the final token is the file's size. */
static void test_source_poll_many_reads(void **state)
{
	(void)state;
	FILE *f = fopen(in_path, "w");
	assert_non_null(f);
	for (int i = 0; i < 30000; i++) {
		fprintf(f, "event %d\n", i);
	}
	fclose(f);
	void *s;
	assert_int_equal(src_open("", NULL, &s), 0);
	struct strata_connector_record recs[100];
	int next = 0;
	bool end = false;
	while (!end) {
		size_t n;
		assert_int_equal(ops->source_poll(s, 0, MAX_LEN, recs, 100, &n,
		                                  &end, err),
		                 0);
		for (size_t k = 0; k < n; k++) {
			char want[32];
			int len = snprintf(want, sizeof(want), "event %d",
			                   next++);
			assert_int_equal(recs[k].len, (size_t)len);
			assert_memory_equal(recs[k].data, want, (size_t)len);
		}
	}
	assert_int_equal(next, 30000);
	char tok[STRATA_CONNECTOR_TOKEN_MAX], size[32];
	position(s, tok);
	snprintf(size, sizeof(size), "%llu",
	         (unsigned long long)file_size(in_path));
	assert_string_equal(tok, size);
	ops->source_close(s);
}

/* With follow the source never ends: a partial last line is held back
 * (the token stays before it), a poll waits wait_ms for more, and data
 * appended later comes out. */
static void test_source_poll_follow(void **state)
{
	(void)state;
	put(in_path, "w", "a\npart");
	void *s;
	assert_int_equal(src_open("follow=true\n", NULL, &s), 0);
	char got[256];
	bool end;
	drain(s, got, sizeof(got), &end);
	assert_string_equal(got, "a|");
	assert_false(end);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	position(s, tok);
	assert_string_equal(tok, "2");
	struct strata_connector_record recs[4];
	size_t n;
	uint64_t t0 = now_ms();
	assert_int_equal(
	        ops->source_poll(s, 60, MAX_LEN, recs, 4, &n, &end, err), 0);
	uint64_t waited = now_ms() - t0;
	assert_int_equal(n, 0);
	assert_false(end);
	assert_true(waited >= 55);
	assert_true(waited < 5000);
	put(in_path, "a", "ial\nb\n");
	drain(s, got, sizeof(got), &end);
	assert_string_equal(got, "partial|b|");
	assert_false(end);
	position(s, tok);
	assert_string_equal(tok, "12");
	ops->source_close(s);
}

/* A followed file appended to while a poll waits: the poll returns the
 * new line well before its wait_ms. */
static void test_source_poll_follow_wakes_on_append(void **state)
{
	(void)state;
	put(in_path, "w", "");
	void *s;
	assert_int_equal(src_open("follow=true\n", NULL, &s), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		usleep(100 * 1000);
		int fd = open(in_path, O_WRONLY | O_APPEND);
		_exit(fd >= 0 && write(fd, "late\n", 5) == 5 ? 0 : 1);
	}
	struct strata_connector_record rec;
	size_t n;
	bool end;
	uint64_t t0 = now_ms();
	assert_int_equal(
	        ops->source_poll(s, 10000, MAX_LEN, &rec, 1, &n, &end, err), 0);
	assert_true(now_ms() - t0 < 9000);
	assert_int_equal(n, 1);
	assert_memory_equal(rec.data, "late", 4);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	ops->source_close(s);
}

/* A followed file truncated below what was read is an error, not a
 * silent stall. */
static void test_source_poll_follow_truncated(void **state)
{
	(void)state;
	put(in_path, "w", "a\nb\n");
	void *s;
	assert_int_equal(src_open("follow=yes\n", NULL, &s), 0);
	char got[64];
	bool end;
	drain(s, got, sizeof(got), &end);
	assert_string_equal(got, "a|b|");
	assert_int_equal(truncate(in_path, 0), 0);
	struct strata_connector_record rec;
	size_t n;
	assert_int_equal(
	        ops->source_poll(s, 0, MAX_LEN, &rec, 1, &n, &end, err),
	        STRATA_ERANGE);
	assert_contains(err, in_path);
	assert_contains(err, "truncated");
	ops->source_close(s);
}

/* Config errors name the key (unknown ones with the valid ones); a
 * missing file is STRATA_ENOENT naming it; a directory is refused. */
static void test_source_open_config_errors(void **state)
{
	(void)state;
	void *s = NULL;
	assert_int_equal(ops->source_open(&test_connector_host, "key=k\n", NULL,
	                                  &s, err),
	                 STRATA_ECONFIG);
	assert_contains(err, "path");
	assert_contains(err, "required");
	assert_int_equal(ops->source_open(&test_connector_host, "path=\n", NULL,
	                                  &s, err),
	                 STRATA_ECONFIG);
	assert_contains(err, "path");
	assert_int_equal(src_open("colour=red\n", NULL, &s), STRATA_ECONFIG);
	assert_contains(err, "'colour'");
	assert_contains(err, "path, key, follow");
	assert_int_equal(src_open("format=raw\n", NULL, &s), STRATA_ECONFIG);
	assert_contains(err, "'format'"); /* a sink option */
	assert_int_equal(src_open("follow=maybe\n", NULL, &s), STRATA_ECONFIG);
	assert_contains(err, "follow");
	assert_contains(err, "maybe");
	assert_int_equal(src_open("follow\n", NULL, &s), STRATA_ECONFIG);
	assert_contains(err, "key=value");
	assert_int_equal(ops->source_open(&test_connector_host,
	                                  "path=/nonexistent/x\n", NULL, &s,
	                                  err),
	                 STRATA_ENOENT);
	assert_contains(err, "open /nonexistent/x: No such file");
	char config[128];
	snprintf(config, sizeof(config), "path=%s\n", dir);
	assert_int_equal(
	        ops->source_open(&test_connector_host, config, NULL, &s, err),
	        STRATA_EINVAL);
	assert_contains(err, dir);
}

/* Out of memory at any allocation fails cleanly with STRATA_ENOMEM (and
 * nothing leaks: ASan checks). */
static void test_source_out_of_memory(void **state)
{
	(void)state;
	put(in_path, "w", "a\n");
	int rc = STRATA_ENOMEM;
	for (long at = 1; rc == STRATA_ENOMEM; at++) {
		test_alloc_calls = 0;
		test_alloc_fail_at = at;
		void *s = NULL;
		rc = src_open("", NULL, &s);
		if (rc != 0) {
			assert_int_equal(rc, STRATA_ENOMEM);
			continue;
		}
		struct strata_connector_record rec;
		size_t n;
		bool end;
		rc = ops->source_poll(s, 0, MAX_LEN, &rec, 1, &n, &end, err);
		if (rc == STRATA_ENOMEM) {
			assert_contains(err, in_path);
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(n, 1);
		}
		ops->source_close(s);
	}
	test_alloc_fail_at = 0;
}

/* ------------------------------------------------------------- sink */

/* Open the sink on out_path with extra config lines. */
static int snk_open(const char *extra, const char *restore, void **s)
{
	char config[512];
	snprintf(config, sizeof(config), "path=%s\n%s", out_path, extra);
	return ops->sink_open(&test_connector_host, config, restore, s, err);
}

/* sink_write the n strings; must succeed. */
static void write_strs(void *s, const char *const *items, size_t n)
{
	struct strata_connector_record recs[8];
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		recs[i] = (struct strata_connector_record){
		        .data = items[i], .len = strlen(items[i])};
	}
	assert_int_equal(ops->sink_write(s, recs, n, err), 0);
}

/* sink_prepare; must succeed; the token in tok. */
static void prepare(void *s, char *tok)
{
	assert_int_equal(
	        ops->sink_prepare(s, tok, STRATA_CONNECTOR_TOKEN_MAX, err), 0);
}

/* format=lines (the default): each record then '\n'; prepare writes it
 * out (the file holds it before close) and its token is the length. */
static void test_sink_prepare_lines(void **state)
{
	(void)state;
	void *s;
	assert_int_equal(snk_open("", NULL, &s), 0);
	assert_int_equal(file_size(out_path), 0); /* created */
	mode_t mask = umask(0);
	umask(mask);
	struct stat sb;
	assert_int_equal(stat(out_path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644 & ~mask);
	static const char *const a[] = {"one", "", "two\r"};
	write_strs(s, a, 3);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	prepare(s, tok);
	assert_string_equal(tok, "10");
	assert_string_equal(slurp(out_path), "one\n\ntwo\r\n");
	prepare(s, tok); /* nothing new: same token */
	assert_string_equal(tok, "10");
	ops->sink_close(s);
	assert_string_equal(slurp(out_path), "one\n\ntwo\r\n");
}

/* format=raw: the bytes as they are, nothing added. */
static void test_sink_prepare_raw(void **state)
{
	(void)state;
	void *s;
	assert_int_equal(snk_open("format=raw\nfsync=false\n", NULL, &s), 0);
	static const char *const a[] = {"ab", "", "c\n", "d"};
	write_strs(s, a, 4);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	prepare(s, tok);
	assert_string_equal(tok, "5");
	ops->sink_close(s);
	assert_string_equal(slurp(out_path), "abc\nd");
}

/* Without a restore token the sink appends to what the file holds. */
static void test_sink_open_appends(void **state)
{
	(void)state;
	put(out_path, "w", "old\n");
	void *s;
	assert_int_equal(snk_open("", NULL, &s), 0);
	static const char *const a[] = {"new"};
	write_strs(s, a, 1);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	prepare(s, tok);
	assert_string_equal(tok, "8");
	ops->sink_close(s);
	assert_string_equal(slurp(out_path), "old\nnew\n");
}

/* Records larger than the 1 MiB buffer go straight out, in order with
 * the buffered ones around them. */
static void test_sink_write_big_record(void **state)
{
	(void)state;
	void *s;
	assert_int_equal(snk_open("fsync=false\n", NULL, &s), 0);
	static const char *const a[] = {"ab", "cd"};
	write_strs(s, a, 2);
	size_t big = 3u << 20;
	char *data = malloc(big);
	assert_non_null(data);
	memset(data, 'z', big);
	struct strata_connector_record r = {.data = data, .len = big};
	assert_int_equal(ops->sink_write(s, &r, 1, err), 0);
	write_strs(s, a, 1);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	prepare(s, tok);
	ops->sink_close(s);
	uint64_t want = 3 + 3 + big + 1 + 3;
	assert_int_equal(file_size(out_path), want);
	assert_int_equal(strtoull(tok, NULL, 10), want);
	FILE *f = fopen(out_path, "r");
	assert_non_null(f);
	char *back = malloc(want);
	assert_non_null(back);
	assert_int_equal(fread(back, 1, want, f), want);
	fclose(f);
	assert_memory_equal(back, "ab\ncd\n", 6);
	assert_memory_equal(back + 6, data, big);
	assert_memory_equal(back + 6 + big, "\nab\n", 4);
	free(back);
	free(data);
}

/* Reopened with an older token the file is cut back to it; what was
 * buffered but never prepared is dropped at close. */
static void test_sink_open_restore_truncates(void **state)
{
	(void)state;
	void *s;
	assert_int_equal(snk_open("", NULL, &s), 0);
	static const char *const a[] = {"one", "two"};
	static const char *const b[] = {"three"};
	write_strs(s, a, 2);
	char tok1[STRATA_CONNECTOR_TOKEN_MAX], tok2[STRATA_CONNECTOR_TOKEN_MAX];
	prepare(s, tok1);
	assert_string_equal(tok1, "8");
	write_strs(s, b, 1);
	prepare(s, tok2);
	assert_string_equal(tok2, "14");
	write_strs(s, b, 1); /* never prepared */
	ops->sink_close(s);
	assert_string_equal(slurp(out_path), "one\ntwo\nthree\n");
	/* At the latest token: nothing to cut. */
	assert_int_equal(snk_open("", tok2, &s), 0);
	ops->sink_close(s);
	assert_string_equal(slurp(out_path), "one\ntwo\nthree\n");
	/* At the older one: what came after it is gone. */
	assert_int_equal(snk_open("", tok1, &s), 0);
	assert_string_equal(slurp(out_path), "one\ntwo\n");
	static const char *const c[] = {"again"};
	write_strs(s, c, 1);
	prepare(s, tok2);
	assert_string_equal(tok2, "14");
	ops->sink_close(s);
	assert_string_equal(slurp(out_path), "one\ntwo\nagain\n");
	assert_int_equal(snk_open("", "0", &s), 0);
	ops->sink_close(s);
	assert_int_equal(file_size(out_path), 0);
}

/* A token beyond the file's length means it was changed outside:
 * STRATA_ECORRUPT naming both lengths, nothing truncated; a token that is
 * not a length is STRATA_EINVAL. */
static void test_sink_open_restore_bad_tokens(void **state)
{
	(void)state;
	put(out_path, "w", "one\ntwo\n");
	void *s = NULL;
	assert_int_equal(snk_open("", "999", &s), STRATA_ECORRUPT);
	char want[256];
	snprintf(want, sizeof(want),
	         "%s holds 8 bytes but the checkpoint says 999: it was "
	         "changed outside strata-connect",
	         out_path);
	assert_string_equal(err, want);
	static const char *const junk[] = {"1a", "", "-1",
	                                   "9223372036854775808"};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		assert_int_equal(snk_open("", junk[i], &s), STRATA_EINVAL);
		assert_contains(err, "not a file length");
	}
	assert_string_equal(slurp(out_path), "one\ntwo\n");
}

/* Config errors name the key; nothing is created on a config error. */
static void test_sink_open_config_errors(void **state)
{
	(void)state;
	void *s = NULL;
	assert_int_equal(ops->sink_open(&test_connector_host, "format=raw\n",
	                                NULL, &s, err),
	                 STRATA_ECONFIG);
	assert_contains(err, "path");
	assert_contains(err, "required");
	assert_int_equal(snk_open("follow=true\n", NULL, &s), STRATA_ECONFIG);
	assert_contains(err, "'follow'"); /* a source option */
	assert_contains(err, "path, format, fsync");
	assert_int_equal(snk_open("format=xml\n", NULL, &s), STRATA_ECONFIG);
	assert_contains(err, "format");
	assert_contains(err, "lines or raw");
	assert_int_equal(snk_open("fsync=sometimes\n", NULL, &s),
	                 STRATA_ECONFIG);
	assert_contains(err, "fsync");
	assert_int_equal(access(out_path, F_OK), -1);
	assert_int_equal(ops->sink_open(&test_connector_host,
	                                "path=/nonexistent/d/x\n", NULL, &s,
	                                err),
	                 STRATA_ENOENT);
	assert_contains(err, "open /nonexistent/d/x: No such file");
}

/* A full disk is STRATA_ENOSPC naming the file; the sink then refuses
 * every later write and prepare (its output is unknown). */
static void test_sink_prepare_disk_full(void **state)
{
	(void)state;
	void *s;
	assert_int_equal(ops->sink_open(&test_connector_host,
	                                "path=/dev/full\nfsync=false\n", NULL,
	                                &s, err),
	                 0);
	static const char *const a[] = {"x"};
	write_strs(s, a, 1); /* buffered */
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->sink_prepare(s, tok, sizeof(tok), err),
	                 STRATA_ENOSPC);
	assert_string_equal(err, "write /dev/full: No space left on device");
	struct strata_connector_record r = {.data = "y", .len = 1};
	assert_int_equal(ops->sink_write(s, &r, 1, err), STRATA_ENOSPC);
	assert_contains(err, "earlier write failed");
	assert_int_equal(ops->sink_prepare(s, tok, sizeof(tok), err),
	                 STRATA_ENOSPC);
	ops->sink_close(s);
}

/* Out of memory at any allocation of open is STRATA_ENOMEM, no leak. */
static void test_sink_out_of_memory(void **state)
{
	(void)state;
	int rc = STRATA_ENOMEM;
	for (long at = 1; rc == STRATA_ENOMEM; at++) {
		test_alloc_calls = 0;
		test_alloc_fail_at = at;
		void *s = NULL;
		rc = snk_open("", NULL, &s);
		if (rc == 0) {
			ops->sink_close(s);
		} else {
			assert_int_equal(rc, STRATA_ENOMEM);
			assert_contains(err, "out of memory");
		}
	}
	test_alloc_fail_at = 0;
}

/* check: the options as open takes them, with nothing created. */
static void test_check_options(void **unused)
{
	(void)unused;
	char config[512];
	put(in_path, "w", "a\n");
	snprintf(config, sizeof(config), "path=%s\nfollow=true\n", in_path);
	assert_int_equal(ops->check(&test_connector_host, config, true, err),
	                 0);
	snprintf(config, sizeof(config), "path=%s\n", out_path);
	assert_int_equal(ops->check(&test_connector_host, config, false, err),
	                 0);
	struct stat sb;
	assert_int_not_equal(stat(out_path, &sb), 0); /* not created */
	assert_int_equal(ops->check(&test_connector_host, config, true, err),
	                 STRATA_ENOENT); /* a source's file must exist */
	assert_contains(err, out_path);
	snprintf(config, sizeof(config), "path=%s\nfsync=maybe\n", out_path);
	assert_int_equal(ops->check(&test_connector_host, config, false, err),
	                 STRATA_ECONFIG);
	assert_contains(err, "fsync");
	assert_int_equal(
	        ops->check(&test_connector_host, "follow=true\n", true, err),
	        STRATA_ECONFIG);
	assert_contains(err, "path");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, make_dir, remove_dir)
	const struct CMUnitTest tests[] = {
	        T(test_table_fields),
	        T(test_source_poll_lines_and_tokens),
	        T(test_source_poll_key_option),
	        T(test_source_poll_empty_file),
	        T(test_source_open_restore_continues),
	        T(test_source_open_restore_after_unterminated),
	        T(test_source_open_bad_tokens),
	        T(test_source_poll_line_too_long),
	        T(test_source_poll_long_lines_grow_buffer),
	        T(test_source_poll_many_reads),
	        T(test_source_poll_follow),
	        T(test_source_poll_follow_wakes_on_append),
	        T(test_source_poll_follow_truncated),
	        T(test_source_open_config_errors),
	        T(test_source_out_of_memory),
	        T(test_sink_prepare_lines),
	        T(test_sink_prepare_raw),
	        T(test_sink_open_appends),
	        T(test_sink_write_big_record),
	        T(test_sink_open_restore_truncates),
	        T(test_sink_open_restore_bad_tokens),
	        T(test_sink_open_config_errors),
	        T(test_sink_prepare_disk_full),
	        T(test_sink_out_of_memory),
	        T(test_check_options),
	};
#undef T
	return cmocka_run_group_tests(tests, load_plugin,
	                              test_connector_unload);
}
