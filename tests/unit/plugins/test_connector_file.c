/* Unit tests for the file connector (plugins/connector/file/), loaded from
 * $STRATA_PLUGIN_DIR as strata-connect loads it. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "strata/connector.h"

static const struct strata_connector_ops *ops;
static char dir[64];
static char in_path[128], out_path[128];

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
	snprintf(path, sizeof(path), "%s/connector-file.so",
	         getenv("STRATA_PLUGIN_DIR"));
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	assert_non_null(h);
	strata_connector_entry_fn entry =
	        (strata_connector_entry_fn)dlsym(h, STRATA_CONNECTOR_ENTRY);
	assert_non_null(entry);
	ops = entry();
	snprintf(dir, sizeof(dir), "/tmp/test_connector_file.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(in_path, sizeof(in_path), "%s/in.log", dir);
	snprintf(out_path, sizeof(out_path), "%s/out.log", dir);
	return 0;
}

static int teardown(void **unused)
{
	(void)unused;
	unlink(in_path);
	unlink(out_path);
	rmdir(dir);
	return 0;
}

static void put(const char *path, const char *mode, const char *text)
{
	FILE *f = fopen(path, mode);
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *slurp(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* Open the source on in_path with extra config lines. */
static int src_open(const char *extra, const char *restore, void **s, char *err)
{
	char config[512];
	snprintf(config, sizeof(config), "path=%s\n%s", in_path, extra);
	return ops->source_open(&host, config, restore, s, err);
}

/* Poll everything until end (or nothing within wait) into one string of
 * "data|" items. */
static void drain(void *s, char *got, size_t size, bool *end)
{
	got[0] = '\0';
	*end = false;
	for (int i = 0; i < 100 && !*end; i++) {
		struct strata_connector_record recs[3];
		size_t n = 0;
		char err[STRATA_ERRMSG_SIZE] = "";
		assert_int_equal(
		        ops->source_poll(s, 0, 1024, recs, 3, &n, end, err), 0);
		if (n == 0 && !*end) {
			return;
		}
		for (size_t k = 0; k < n; k++) {
			size_t l = strlen(got);
			snprintf(got + l, size - l, "%.*s|", (int)recs[k].len,
			         (const char *)recs[k].data);
		}
	}
}

static void position(void *s, char *tok)
{
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(
	        ops->source_position(s, tok, STRATA_CONNECTOR_TOKEN_MAX, err),
	        0);
}

static void test_file_table(void **unused)
{
	(void)unused;
	assert_int_equal(ops->abi_version, STRATA_CONNECTOR_ABI_VERSION);
	assert_string_equal(ops->name, "file");
	assert_true(ops->source_flags & STRATA_CONNECTOR_SOURCE_REPLAYABLE);
	assert_true(ops->sink_flags & STRATA_CONNECTOR_SINK_EXACTLY_ONCE);
	assert_non_null(ops->source_poll);
	assert_non_null(ops->sink_prepare);
}

static void test_file_source_lines(void **unused)
{
	(void)unused;
	put(in_path, "w", "a\n\nccc\nlast");
	void *s;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(src_open("", NULL, &s, err), 0);
	struct strata_connector_record recs[8];
	size_t n;
	bool end;
	/* The complete lines first; the unterminated one once the end of
	 * the file is seen. */
	assert_int_equal(ops->source_poll(s, 0, 1024, recs, 8, &n, &end, err),
	                 0);
	assert_int_equal(n, 3);
	assert_int_equal(recs[1].len, 0); /* the empty line */
	assert_memory_equal(recs[2].data, "ccc", 3);
	assert_int_equal(recs[0].keylen, strlen(in_path)); /* key = path */
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	position(s, tok);
	assert_string_equal(tok, "7");
	assert_int_equal(ops->source_poll(s, 0, 1024, recs, 8, &n, &end, err),
	                 0);
	assert_int_equal(n, 1);
	assert_memory_equal(recs[0].data, "last", 4);
	position(s, tok);
	assert_string_equal(tok, "11");
	assert_int_equal(ops->source_poll(s, 0, 1024, recs, 8, &n, &end, err),
	                 0);
	assert_int_equal(n, 0);
	assert_true(end);
	ops->source_close(s);
}

/* Reopening at any token continues with exactly the next line. */
static void test_file_source_resume(void **unused)
{
	(void)unused;
	put(in_path, "w", "one\ntwo\nthree\nfour\n");
	void *s;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(src_open("key=\n", NULL, &s, err), 0);
	struct strata_connector_record recs[2];
	size_t n;
	bool end;
	assert_int_equal(ops->source_poll(s, 0, 1024, recs, 2, &n, &end, err),
	                 0);
	assert_int_equal(n, 2);
	assert_int_equal(recs[0].keylen, 0); /* key= : none */
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	position(s, tok);
	assert_string_equal(tok, "8");
	ops->source_close(s);
	assert_int_equal(src_open("", tok, &s, err), 0);
	char got[256];
	drain(s, got, sizeof(got), &end);
	assert_string_equal(got, "three|four|");
	assert_true(end);
	ops->source_close(s);
}

static void test_file_source_bad_tokens(void **unused)
{
	(void)unused;
	put(in_path, "w", "one\ntwo\n");
	void *s;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(src_open("", "x1", &s, err), STRATA_EINVAL);
	assert_non_null(strstr(err, "not a byte offset"));
	assert_int_equal(src_open("", "99", &s, err), STRATA_ERANGE);
	assert_non_null(strstr(err, in_path));
	assert_int_equal(src_open("", "2", &s, err), STRATA_EINVAL);
	assert_non_null(strstr(err, "start of a line"));
	assert_int_equal(src_open("", "8", &s, err), 0); /* the end */
	ops->source_close(s);
}

static void test_file_source_too_long(void **unused)
{
	(void)unused;
	char line[3000];
	memset(line, 'x', sizeof(line) - 2);
	line[sizeof(line) - 2] = '\n';
	line[sizeof(line) - 1] = '\0';
	put(in_path, "w", "ok\n");
	put(in_path, "a", line);
	void *s;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(src_open("", NULL, &s, err), 0);
	struct strata_connector_record recs[4];
	size_t n;
	bool end;
	/* The good line first, the long one reported on the next poll. */
	assert_int_equal(ops->source_poll(s, 0, 1024, recs, 4, &n, &end, err),
	                 0);
	assert_int_equal(n, 1);
	assert_int_equal(ops->source_poll(s, 0, 1024, recs, 4, &n, &end, err),
	                 STRATA_ETOOBIG);
	assert_non_null(strstr(err, "byte 3"));
	ops->source_close(s);
}

static void test_file_source_follow(void **unused)
{
	(void)unused;
	put(in_path, "w", "a\npart");
	void *s;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(src_open("follow=true\n", NULL, &s, err), 0);
	char got[256];
	bool end;
	drain(s, got, sizeof(got), &end);
	assert_string_equal(got, "a|"); /* the partial line is held */
	assert_false(end);
	struct strata_connector_record recs[4];
	size_t n;
	assert_int_equal(ops->source_poll(s, 30, 1024, recs, 4, &n, &end, err),
	                 0); /* waits 30 ms, nothing */
	assert_int_equal(n, 0);
	assert_false(end);
	put(in_path, "a", "ial\nb\n");
	drain(s, got, sizeof(got), &end);
	assert_string_equal(got, "partial|b|");
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	position(s, tok);
	assert_string_equal(tok, "12");
	ops->source_close(s);
}

static void test_file_source_config_errors(void **unused)
{
	(void)unused;
	void *s;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(ops->source_open(&host, "key=k\n", NULL, &s, err),
	                 STRATA_ECONFIG);
	assert_non_null(strstr(err, "path"));
	assert_int_equal(src_open("colour=red\n", NULL, &s, err),
	                 STRATA_ECONFIG);
	assert_non_null(strstr(err, "colour"));
	assert_int_equal(src_open("follow=maybe\n", NULL, &s, err),
	                 STRATA_ECONFIG);
	assert_int_equal(
	        ops->source_open(&host, "path=/nonexistent/x\n", NULL, &s, err),
	        STRATA_ENOENT);
	assert_non_null(strstr(err, "/nonexistent/x"));
}

/* Open the sink on out_path. */
static int snk_open(const char *extra, const char *restore, void **s, char *err)
{
	char config[512];
	snprintf(config, sizeof(config), "path=%s\n%s", out_path, extra);
	return ops->sink_open(&host, config, restore, s, err);
}

static void write_all(void *s, const char *const *items, size_t n)
{
	struct strata_connector_record recs[8];
	for (size_t i = 0; i < n; i++) {
		recs[i] = (struct strata_connector_record){
		        .data = items[i], .len = strlen(items[i])};
	}
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(ops->sink_write(s, recs, n, err), 0);
}

static void test_file_sink_lines_and_restore(void **unused)
{
	(void)unused;
	unlink(out_path);
	void *s;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(snk_open("", NULL, &s, err), 0);
	const char *a[] = {"one", "two"};
	write_all(s, a, 2);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->sink_prepare(s, tok, sizeof(tok), err), 0);
	assert_string_equal(tok, "8");
	assert_string_equal(slurp(out_path), "one\ntwo\n");
	const char *b[] = {"three"};
	write_all(s, b, 1);
	char tok2[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->sink_prepare(s, tok2, sizeof(tok2), err), 0);
	assert_string_equal(tok2, "14");
	write_all(s, b, 1); /* buffered, never prepared: dropped */
	ops->sink_close(s);
	assert_string_equal(slurp(out_path), "one\ntwo\nthree\n");
	/* Back to the first token: what came after it is gone. */
	assert_int_equal(snk_open("", tok, &s, err), 0);
	assert_string_equal(slurp(out_path), "one\ntwo\n");
	const char *c[] = {"again"};
	write_all(s, c, 1);
	assert_int_equal(ops->sink_prepare(s, tok2, sizeof(tok2), err), 0);
	assert_string_equal(tok2, "14");
	ops->sink_close(s);
	assert_string_equal(slurp(out_path), "one\ntwo\nagain\n");
	/* A token beyond the file: changed outside, nothing truncated. */
	assert_int_equal(snk_open("", "999", &s, err), STRATA_ECORRUPT);
	assert_non_null(strstr(err, "changed outside"));
	assert_int_equal(snk_open("", "1a", &s, err), STRATA_EINVAL);
	assert_string_equal(slurp(out_path), "one\ntwo\nagain\n");
}

static void test_file_sink_raw_and_big(void **unused)
{
	(void)unused;
	unlink(out_path);
	void *s;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(snk_open("format=raw\nfsync=false\n", NULL, &s, err),
	                 0);
	const char *a[] = {"ab", "cd"};
	write_all(s, a, 2);
	/* A record larger than the buffer goes straight out, in order. */
	size_t big = 3u << 20;
	char *data = malloc(big);
	memset(data, 'z', big);
	struct strata_connector_record r = {.data = data, .len = big};
	assert_int_equal(ops->sink_write(s, &r, 1, err), 0);
	write_all(s, a, 1);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->sink_prepare(s, tok, sizeof(tok), err), 0);
	ops->sink_close(s);
	struct stat sb;
	assert_int_equal(stat(out_path, &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, big + 6);
	assert_int_equal(strtoull(tok, NULL, 10), big + 6);
	FILE *f = fopen(out_path, "r");
	char head[5] = "", tail[3] = "";
	assert_int_equal(fread(head, 1, 4, f), 4);
	fseek(f, -2, SEEK_END);
	assert_int_equal(fread(tail, 1, 2, f), 2);
	fclose(f);
	assert_string_equal(head, "abcd");
	assert_string_equal(tail, "ab");
	free(data);
}

static void test_file_sink_config_errors(void **unused)
{
	(void)unused;
	void *s;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(ops->sink_open(&host, "", NULL, &s, err),
	                 STRATA_ECONFIG);
	assert_non_null(strstr(err, "path"));
	assert_int_equal(snk_open("format=xml\n", NULL, &s, err),
	                 STRATA_ECONFIG);
	assert_int_equal(snk_open("follow=true\n", NULL, &s, err),
	                 STRATA_ECONFIG); /* a source key */
	assert_non_null(strstr(err, "follow"));
	assert_int_equal(
	        ops->sink_open(&host, "path=/nonexistent/d/x\n", NULL, &s, err),
	        STRATA_ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_file_table),
	        cmocka_unit_test(test_file_source_lines),
	        cmocka_unit_test(test_file_source_resume),
	        cmocka_unit_test(test_file_source_bad_tokens),
	        cmocka_unit_test(test_file_source_too_long),
	        cmocka_unit_test(test_file_source_follow),
	        cmocka_unit_test(test_file_source_config_errors),
	        cmocka_unit_test(test_file_sink_lines_and_restore),
	        cmocka_unit_test(test_file_sink_raw_and_big),
	        cmocka_unit_test(test_file_sink_config_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
