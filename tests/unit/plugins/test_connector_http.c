/*
 * Unit tests for the http connector (plugins/connector/http/) against a
 * real HTTP server: tests/integration/lib/http_test_server.py, started
 * once per run with fork/exec on a free 127.0.0.1 port (it binds port 0
 * and writes the port to a file) and stopped by PID. Documents are files
 * in its directory; POSTs append to files there. Each test uses its own
 * document names.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "strata/connector.h"
#include "tests/lib/check.h"
#include "tests/lib/connector.h"

static const struct strata_connector_ops *ops;
static pid_t server_pid;
static char dir[64];
static int port;
static char err[STRATA_ERRMSG_SIZE];

#define MAX_LEN 4096 /* max_len of the polls unless a test says */
#define RECS 64      /* records per poll */

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int start_server(void **state)
{
	(void)state;
	ops = test_connector_load("http");
	if (ops == NULL) {
		return -1;
	}
	const char *src = getenv("STRATA_SOURCE_DIR");
	char script[512];
	char port_file[96];
	snprintf(script, sizeof(script),
	         "%s/tests/integration/lib/http_test_server.py",
	         src != NULL ? src : ".");
	snprintf(dir, sizeof(dir), "/tmp/strata-http-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		return -1;
	}
	snprintf(port_file, sizeof(port_file), "%s.port", dir);
	server_pid = fork();
	if (server_pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execlp("python3", "python3", script, "--dir", dir,
		       "--port-file", port_file, "--cut", "1000", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		FILE *f = fopen(port_file, "r");
		if (f != NULL) {
			int n = fscanf(f, "%d", &port);
			fclose(f);
			unlink(port_file);
			if (n == 1) {
				return 0;
			}
		}
		usleep(50 * 1000);
	}
	fprintf(stderr, "http test server did not start (python3 %s)\n",
	        script);
	kill(server_pid, SIGKILL);
	waitpid(server_pid, NULL, 0);
	return -1;
}

static int stop_server(void **state)
{
	kill(server_pid, SIGTERM);
	waitpid(server_pid, NULL, 0);
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return test_connector_unload(state);
}

/* Write (truncate) or append a document the server serves. */
static void put_doc(const char *name, const char *data, size_t len, bool append)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, append ? "ab" : "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Assert that the server's file name holds exactly want (text). */
static void assert_file(const char *name, const char *want)
{
	char path[256];
	char got[1024] = "";
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (f != NULL) {
		size_t n = fread(got, 1, sizeof(got) - 1, f);
		got[n] = '\0';
		fclose(f);
	}
	assert_string_equal(got, want);
}

/* "url=http://127.0.0.1:<port>/<path>\n" then extra lines. */
static const char *cfg(const char *path, const char *extra)
{
	static char buf[1024];
	snprintf(buf, sizeof(buf), "url=http://127.0.0.1:%d/%s\n%s", port, path,
	         extra != NULL ? extra : "");
	return buf;
}

/* Poll until the source ends (or, following, until want records came),
 * joining records as lines into out[cap]; the count of records. */
static size_t drain(void *s, size_t max_len, size_t want, char *out, size_t cap,
                    int *rc)
{
	struct strata_connector_record recs[RECS];
	size_t total = 0;
	size_t used = 0;
	out[0] = '\0';
	*rc = 0;
	for (int i = 0; i < 2000; i++) {
		size_t n = 0;
		bool end = false;
		*rc = ops->source_poll(s, 50, max_len, recs, RECS, &n, &end,
		                       err);
		if (*rc != 0) {
			return total;
		}
		for (size_t k = 0; k < n; k++) {
			if (used + recs[k].len + 2 < cap) {
				memcpy(out + used, recs[k].data, recs[k].len);
				used += recs[k].len;
				out[used++] = '\n';
				out[used] = '\0';
			}
		}
		total += n;
		if (end || (want > 0 && total >= want)) {
			return total;
		}
	}
	fail_msg("the source never ended");
	return total;
}

static void position(void *s, char *tok)
{
	assert_int_equal(
	        ops->source_position(s, tok, STRATA_CONNECTOR_TOKEN_MAX, err),
	        0);
}

/* The table: a replayable source, an at-least-once sink, no commit. */
static void test_http_table(void **unused)
{
	(void)unused;
	test_connector_assert_table(ops, "http", true,
	                            STRATA_CONNECTOR_SOURCE_REPLAYABLE, true, 0,
	                            false);
}

static void test_http_options(void **unused)
{
	(void)unused;
	static const struct {
		bool source;
		const char *config;
		const char *names;
	} bad[] = {
	        {true, "", "option url of the http source is required"},
	        {true, "url=ftp://x/y\n", "url"},
	        {true, "url=http://\n", "url"},
	        {true, "url=nourl\n", "url"},
	        {true, "url=http://h/x\nfollow=maybe\n", "follow"},
	        {true, "url=http://h/x\npoll_ms=0\n", "poll_ms"},
	        {true, "url=http://h/x\nretries=-1\n", "retries"},
	        {true, "url=http://h/x\nmode=each\n",
	         "unknown option 'mode' of the http source"},
	        {true, "url=http://h/x\nheader=Bad Name: 1\n", "header"},
	        {true, "url=http://h/x\nheader=: 1\n", "header"},
	        {true, "url=http://h/x\nheader=novalue\n", "Name: value"},
	        {true, "url=http://h/x\nheader_file=/nonexistent/h\n",
	         "open /nonexistent/h: No such file"},
	        {true, "url=http://h/x\nnonsense\n", "not key=value"},
	        {false, "url=http://h/x\nmode=some\n", "lines or each"},
	        {false, "url=http://h/x\nbatch_bytes=0\n", "batch_bytes"},
	        {false, "url=http://h/x\nfollow=true\n",
	         "unknown option 'follow' of the http sink"},
	        {false, "url=http://h/x\ntimeout_ms=x\n", "timeout_ms"},
	        {false, "url=http://h/x\ncontent_type=\n", "content_type"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		void *s = NULL;
		err[0] = '\0';
		int rc =
		        bad[i].source
		                ? ops->source_open(&test_connector_host,
		                                   bad[i].config, NULL, &s, err)
		                : ops->sink_open(&test_connector_host,
		                                 bad[i].config, NULL, &s, err);
		assert_int_equal(rc, STRATA_ECONFIG);
		assert_contains(err, bad[i].names);
		err[0] = '\0';
		assert_int_equal(ops->check(&test_connector_host, bad[i].config,
		                            bad[i].source, err),
		                 STRATA_ECONFIG);
		assert_contains(err, bad[i].names);
	}
	/* check contacts nothing: port 1 is never listened on here. */
	assert_int_equal(ops->check(&test_connector_host,
	                            "url=http://127.0.0.1:1/x\nfollow=true\n"
	                            "header=Authorization: Bearer t\n",
	                            true, err),
	                 0);
	assert_int_equal(ops->check(&test_connector_host,
	                            "url=https://127.0.0.1:1/x\nmode=each\n",
	                            false, err),
	                 0);
}

static void test_http_source_reads_lines(void **unused)
{
	(void)unused;
	static const char doc[] = "one\ntwo\n\nthree\nlast without newline";
	put_doc("lines", doc, sizeof(doc) - 1, false);
	void *s = NULL;
	int rc = 0;
	char out[512];
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->source_open(&test_connector_host,
	                                  cfg("doc/lines", NULL), NULL, &s,
	                                  err),
	                 0);
	assert_int_equal(drain(s, MAX_LEN, 0, out, sizeof(out), &rc), 5);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "one\ntwo\n\nthree\nlast without newline\n");
	position(s, tok);
	assert_string_equal(tok, "35");
	ops->source_close(s);

	/* The default key is the url; key= replaces it. */
	struct strata_connector_record recs[4];
	size_t n = 0;
	bool end = false;
	assert_int_equal(ops->source_open(&test_connector_host,
	                                  cfg("doc/lines", "key=k1\n"), NULL,
	                                  &s, err),
	                 0);
	assert_int_equal(
	        ops->source_poll(s, 2000, MAX_LEN, recs, 1, &n, &end, err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(recs[0].keylen, 2);
	assert_memory_equal(recs[0].key, "k1", 2);
	ops->source_close(s);
}

static void test_http_source_restore(void **unused)
{
	(void)unused;
	static const char doc[] = "alpha\nbeta\ngamma\ndelta";
	put_doc("restore", doc, sizeof(doc) - 1, false);
	static const struct {
		const char *path;
		const char *token;
		int rc;
		const char *out;
	} cases[] = {
	        {"doc/restore", "0", 0, "alpha\nbeta\ngamma\ndelta\n"},
	        {"doc/restore", "6", 0, "beta\ngamma\ndelta\n"},
	        {"doc/restore", "17", 0, "delta\n"},
	        {"doc/restore", "22", 0, ""}, /* the end, unterminated */
	        {"norange/restore", "11", 0, "gamma\ndelta\n"},
	        {"cut/restore", "6", 0, "beta\ngamma\ndelta\n"},
	        {"doc/restore", "7", STRATA_EINVAL, "not at the start"},
	        {"norange/restore", "7", STRATA_EINVAL, "not at the start"},
	        {"doc/restore", "23", STRATA_ERANGE, "beyond the end"},
	        {"doc/restore", "99", STRATA_ERANGE, "beyond the end"},
	        {"norange/restore", "99", STRATA_ERANGE, "beyond the end"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		void *s = NULL;
		int rc = 0;
		char out[256];
		assert_int_equal(
		        ops->source_open(&test_connector_host,
		                         cfg(cases[i].path, "retries=2\n"),
		                         cases[i].token, &s, err),
		        0);
		err[0] = '\0';
		drain(s, MAX_LEN, 0, out, sizeof(out), &rc);
		assert_int_equal(rc, cases[i].rc);
		if (rc == 0) {
			assert_string_equal(out, cases[i].out);
		} else {
			assert_contains(err, cases[i].out);
		}
		ops->source_close(s);
	}
	void *s = NULL;
	assert_int_equal(ops->source_open(&test_connector_host,
	                                  cfg("doc/restore", NULL), "x1", &s,
	                                  err),
	                 STRATA_EINVAL);
	assert_contains(err, "not a byte offset");
}

/* A document far larger than the buffer, in lines of 99 bytes: read in
 * order with memory bounded by the line limit, not the document; through
 * dropped connections (cut) as through one response. */
static void test_http_source_large_bounded(void **unused)
{
	(void)unused;
	size_t lines = 20000;
	char *doc = malloc(lines * 100 + 1);
	assert_non_null(doc);
	for (size_t i = 0; i < lines; i++) {
		snprintf(doc + i * 100, 101, "%099zu\n", i);
	}
	put_doc("big", doc, lines * 100, false);
	put_doc("bigcut", doc, 30 * 100, false);
	const char *paths[] = {"doc/big", "cut/bigcut"};
	size_t counts[] = {lines, 30};
	for (size_t p = 0; p < 2; p++) {
		void *s = NULL;
		assert_int_equal(ops->source_open(&test_connector_host,
		                                  cfg(paths[p], "retries=2\n"),
		                                  NULL, &s, err),
		                 0);
		test_alloc_max = 0;
		size_t seen = 0;
		bool end = false;
		struct strata_connector_record recs[RECS];
		for (int i = 0; i < 100000 && !end; i++) {
			size_t n = 0;
			assert_int_equal(ops->source_poll(s, 1000, 200, recs,
			                                  RECS, &n, &end, err),
			                 0);
			for (size_t k = 0; k < n; k++) {
				assert_int_equal(recs[k].len, 99);
				assert_memory_equal(recs[k].data,
				                    doc + (seen + k) * 100, 99);
			}
			seen += n;
		}
		assert_true(end);
		assert_int_equal(seen, counts[p]);
		/* 64 KiB (the line limit for max_len 200) + one callback. */
		assert_true(test_alloc_max <= 64 * 1024 + 16 * 1024);
		ops->source_close(s);
	}
	free(doc);
}

static void test_http_source_follow(void **unused)
{
	(void)unused;
	put_doc("grow", "a\nb\npartial", 11, false);
	void *s = NULL;
	int rc = 0;
	char out[256];
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(
	        ops->source_open(&test_connector_host,
	                         cfg("doc/grow", "follow=true\npoll_ms=10\n"),
	                         NULL, &s, err),
	        0);
	assert_int_equal(drain(s, MAX_LEN, 2, out, sizeof(out), &rc), 2);
	assert_string_equal(out, "a\nb\n");
	/* Nothing new: polls wait and return nothing, never the end or the
	 * unterminated line. */
	struct strata_connector_record recs[4];
	size_t n = 9;
	bool end = true;
	assert_int_equal(
	        ops->source_poll(s, 100, MAX_LEN, recs, 4, &n, &end, err), 0);
	assert_int_equal(n, 0);
	assert_false(end);
	position(s, tok);
	assert_string_equal(tok, "4");
	put_doc("grow", " line\nc\n", 8, true);
	assert_int_equal(drain(s, MAX_LEN, 2, out, sizeof(out), &rc), 2);
	assert_string_equal(out, "partial line\nc\n");
	position(s, tok);
	assert_string_equal(tok, "19");
	/* A document that shrinks below what was read is refused. */
	put_doc("grow", "short\n", 6, false);
	drain(s, MAX_LEN, 1, out, sizeof(out), &rc);
	assert_int_equal(rc, STRATA_ERANGE);
	assert_contains(err, "shrank to 6 bytes");
	ops->source_close(s);
}

static void test_http_source_errors(void **unused)
{
	(void)unused;
	put_doc("flaky", "x\ny\n", 4, false);
	put_doc("toolong", "0123456789abcdef\n", 17, false);
	static const struct {
		const char *path;
		const char *extra;
		int rc;
		const char *msg;
		size_t max_len;
	} cases[] = {
	        {"doc/flaky?fail=2", "retries=2\n", 0, "x\ny\n", MAX_LEN},
	        {"doc/flaky?fail=99", "retries=1\n", STRATA_EIO,
	         "HTTP 503 (2 attempts)", MAX_LEN},
	        {"doc/missing", NULL, STRATA_EIO, "HTTP 404: check url",
	         MAX_LEN},
	        {"status/403", NULL, STRATA_EIO, "check the credentials",
	         MAX_LEN},
	        {"redirect/flaky", NULL, 0, "x\ny\n", MAX_LEN},
	        {"doc/toolong", NULL, STRATA_ETOOBIG, "longer than 8 bytes", 8},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		void *s = NULL;
		int rc = 0;
		char out[256];
		assert_int_equal(
		        ops->source_open(&test_connector_host,
		                         cfg(cases[i].path, cases[i].extra),
		                         NULL, &s, err),
		        0);
		err[0] = '\0';
		drain(s, cases[i].max_len, 0, out, sizeof(out), &rc);
		assert_int_equal(rc, cases[i].rc);
		assert_contains(rc == 0 ? out : err, cases[i].msg);
		ops->source_close(s);
	}
}

/* A port nobody listens on: bound, never listened, closed. */
static int dead_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void test_http_server_down(void **unused)
{
	(void)unused;
	char c[256];
	snprintf(c, sizeof(c), "url=http://127.0.0.1:%d/doc/x\nretries=1\n",
	         dead_port());
	void *s = NULL;
	int rc = 0;
	char out[64];
	assert_int_equal(
	        ops->source_open(&test_connector_host, c, NULL, &s, err), 0);
	drain(s, MAX_LEN, 0, out, sizeof(out), &rc);
	assert_int_equal(rc, STRATA_EIO);
	assert_contains(err, "(2 attempts): check that the server is up");
	ops->source_close(s);

	struct strata_connector_record r = {.data = "x", .len = 1};
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->sink_open(&test_connector_host, c, NULL, &s, err),
	                 0);
	assert_int_equal(ops->sink_write(s, &r, 1, err), 0); /* buffered */
	assert_int_equal(ops->sink_prepare(s, tok, sizeof(tok), err),
	                 STRATA_EIO);
	assert_contains(err, "check that the server is up");
	ops->sink_close(s);
}

static void test_http_headers(void **unused)
{
	(void)unused;
	void *s = NULL;
	int rc = 0;
	char out[256];
	assert_int_equal(ops->source_open(&test_connector_host,
	                                  cfg("header/X-Token",
	                                      "header=X-Token:  s3cret 1\n"),
	                                  NULL, &s, err),
	                 0);
	assert_int_equal(drain(s, MAX_LEN, 0, out, sizeof(out), &rc), 1);
	assert_string_equal(out, "s3cret 1\n");
	ops->source_close(s);

	/* header_file: several headers, secrets kept off the command line. */
	char path[128];
	char extra[256];
	snprintf(path, sizeof(path), "%s.headers", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("# credentials\n\nX-Token: from file\nX-Other: 2\n", f);
	fclose(f);
	snprintf(extra, sizeof(extra), "header_file=%s\n", path);
	assert_int_equal(ops->source_open(&test_connector_host,
	                                  cfg("header/X-Token", extra), NULL,
	                                  &s, err),
	                 0);
	assert_int_equal(drain(s, MAX_LEN, 0, out, sizeof(out), &rc), 1);
	assert_string_equal(out, "from file\n");
	ops->source_close(s);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("X-Token: 1\nno colon here\n", f);
	fclose(f);
	assert_int_equal(ops->check(&test_connector_host, extra, false, err),
	                 STRATA_ECONFIG);
	assert_contains(err, "line 2 is not 'Name: value'");
	unlink(path);
}

/* Write recs (a string per record) and prepare; the token. */
static void sink_run(const char *config, const char *const *data, size_t n,
                     int want_rc, char *tok)
{
	void *s = NULL;
	assert_int_equal(
	        ops->sink_open(&test_connector_host, config, "7", &s, err), 0);
	struct strata_connector_record recs[16];
	assert_true(n <= 16);
	for (size_t i = 0; i < n; i++) {
		recs[i] = (struct strata_connector_record){
		        .data = data[i], .len = strlen(data[i])};
	}
	int rc = ops->sink_write(s, recs, n, err);
	if (rc == 0) {
		rc = ops->sink_prepare(s, tok, STRATA_CONNECTOR_TOKEN_MAX, err);
	}
	assert_int_equal(rc, want_rc);
	ops->sink_close(s);
}

static void test_http_sink(void **unused)
{
	(void)unused;
	static const char *const recs[] = {"one", "", "three", "a longer one"};
	char tok[STRATA_CONNECTOR_TOKEN_MAX];

	/* lines: one POST for all, newline-terminated. */
	sink_run(cfg("sink/l1", NULL), recs, 4, 0, tok);
	assert_string_equal(tok, "4");
	assert_file("l1", "one\n\nthree\na longer one\n");
	assert_file("l1.posts", "24\n");

	/* A small batch: POSTs of at most 8 bytes; a longer record alone. */
	sink_run(cfg("sink/l2", "batch_bytes=8\n"), recs, 4, 0, tok);
	assert_file("l2", "one\n\nthree\na longer one\n");
	assert_file("l2.posts", "5\n6\n13\n");

	/* each: a POST per record, bytes as they are. */
	sink_run(cfg("sink/e1", "mode=each\n"), recs, 4, 0, tok);
	assert_file("e1", "onethreea longer one");
	assert_file("e1.posts", "3\n0\n5\n12\n");

	/* 503s are retried; each record still arrives (once here). */
	sink_run(cfg("sink/f1?fail=2", "retries=2\nmode=each\n"), recs, 1, 0,
	         tok);
	assert_file("f1", "one");
	sink_run(cfg("sink/f2?fail=9", "retries=1\n"), recs, 2, STRATA_EIO,
	         tok);
	assert_contains(err, "HTTP 503 (busy) (2 attempts)");
	/* Other statuses are final, with what the server said. */
	sink_run(cfg("status/400", "retries=3\n"), recs, 1, STRATA_EIO, tok);
	assert_contains(err, "HTTP 400 (status 400) (1 attempt)");
	sink_run(cfg("status/401", "mode=each\n"), recs, 1, STRATA_EIO, tok);
	assert_contains(err, "check the credentials");
}

/* Every allocation of an open and a first poll failing in turn: an
 * error (ENOMEM), never a crash or a leak. */
static void test_http_oom(void **unused)
{
	(void)unused;
	put_doc("oom", "a\nb\n", 4, false);
	for (long at = 1; at < 10; at++) {
		void *s = NULL;
		test_alloc_fail_at = at;
		int rc = ops->source_open(&test_connector_host,
		                          cfg("doc/oom", NULL), NULL, &s, err);
		if (rc == 0) {
			struct strata_connector_record recs[4];
			size_t n = 0;
			bool end = false;
			for (int i = 0; i < 100 && rc == 0 && !end; i++) {
				rc = ops->source_poll(s, 100, MAX_LEN, recs, 4,
				                      &n, &end, err);
			}
			ops->source_close(s);
		}
		assert_true(rc == 0 || rc == STRATA_ENOMEM);
		rc = ops->sink_open(&test_connector_host, cfg("sink/oom", NULL),
		                    NULL, &s, err);
		if (rc == 0) {
			ops->sink_close(s);
		}
		assert_true(rc == 0 || rc == STRATA_ENOMEM);
	}
	test_alloc_fail_at = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_http_table),
	        cmocka_unit_test(test_http_options),
	        cmocka_unit_test(test_http_source_reads_lines),
	        cmocka_unit_test(test_http_source_restore),
	        cmocka_unit_test(test_http_source_large_bounded),
	        cmocka_unit_test(test_http_source_follow),
	        cmocka_unit_test(test_http_source_errors),
	        cmocka_unit_test(test_http_server_down),
	        cmocka_unit_test(test_http_headers),
	        cmocka_unit_test(test_http_sink),
	        cmocka_unit_test(test_http_oom),
	};
	return cmocka_run_group_tests(tests, start_server, stop_server);
}
