/* Unit tests for plugins/tier2/hdfs against the WebHDFS test server. */
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/plugin.h"
#include "tests/lib/oom.h"

/*
 * One tests/webhdfs/webhdfs_server.py per run (block size 4, so truncates
 * off a 4-byte boundary put the file under lease recovery for 150 ms),
 * started with fork/exec on free 127.0.0.1 ports and stopped by PID.
 * Each test works under its own name prefix and resets the server's
 * failure rules and counters first.
 */

static char err[STRATA_ERRMSG_SIZE];
static pid_t server_pid;
static char server_root[64];
static int nn_port;
static int dn_port;
static char config[256];

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
	const char *src = getenv("STRATA_SOURCE_DIR");
	char script[512];
	char port_file[96];
	snprintf(script, sizeof(script), "%s/tests/webhdfs/webhdfs_server.py",
	         src != NULL ? src : ".");
	snprintf(server_root, sizeof(server_root), "/tmp/strata-hdfs-XXXXXX");
	if (mkdtemp(server_root) == NULL) {
		return -1;
	}
	snprintf(port_file, sizeof(port_file), "%s.ports", server_root);
	server_pid = fork();
	if (server_pid == 0) {
		execlp("python3", "python3", script, "--root", server_root,
		       "--port-file", port_file, "--block-size", "4",
		       "--recovery-ms", "150", "--deny-user", "intruder",
		       (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		FILE *f = fopen(port_file, "r");
		if (f != NULL) {
			int n = fscanf(f, "%d %d", &nn_port, &dn_port);
			fclose(f);
			unlink(port_file);
			if (n == 2) {
				snprintf(config, sizeof(config),
				         "namenode=http://127.0.0.1:%d/\n"
				         "base_path=/t\nretries=3\n"
				         "backoff_ms=5\nmax_backoff_ms=50",
				         nn_port);
				curl_global_init(CURL_GLOBAL_DEFAULT);
				return 0;
			}
		}
		usleep(50 * 1000);
	}
	fprintf(stderr, "webhdfs test server did not start (%s)\n", script);
	kill(server_pid, SIGKILL);
	waitpid(server_pid, NULL, 0);
	return -1;
}

static int stop_server(void **state)
{
	(void)state;
	kill(server_pid, SIGTERM);
	waitpid(server_pid, NULL, 0);
	nftw(server_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	curl_global_cleanup();
	return 0;
}

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
	char *buf = arg;
	size_t have = strlen(buf);
	size_t k = size * n;
	if (have + k >= 4096) {
		k = 4095 - have;
	}
	memcpy(buf + have, p, k);
	buf[have + k] = '\0';
	return size * n;
}

/* POST/GET a /_test endpoint of the server; returns the body (static). */
static const char *control(const char *method, const char *fmt, ...)
{
	static char body[4096];
	char path[512];
	char url[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", nn_port, path);
	body[0] = '\0';
	CURL *c = curl_easy_init();
	assert_non_null(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	}
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_cleanup(c);
	return body;
}

/* A counter of the server ("namenode.APPEND"), 0 when absent. */
static long stat_of(const char *key)
{
	const char *body = control("GET", "/_test/stats");
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	const char *p = strstr(body, pat);
	return p != NULL ? strtol(p + strlen(pat), NULL, 10) : 0;
}

static int reset(void **state)
{
	(void)state;
	control("POST", "/_test/reset");
	return 0;
}

static struct tier2 *open_hdfs(const char *extra)
{
	char cfg[512];
	snprintf(cfg, sizeof(cfg), "%s\n%s", config, extra ? extra : "");
	struct tier2 *t = NULL;
	if (tier2_load_open("hdfs", NULL, cfg, &t, err) != 0) {
		fail_msg("open hdfs: %s", err);
	}
	return t;
}

static void put(struct tier2 *t, const char *name, const char *data)
{
	if (tier2_create(t, name, err) != 0 ||
	    tier2_write(t, name, 0, data, strlen(data), err) != 0) {
		fail_msg("put %s: %s", name, err);
	}
}

static void expect(struct tier2 *t, const char *name, const char *data)
{
	char buf[256];
	size_t n = 0;
	if (tier2_read(t, name, 0, buf, sizeof(buf), &n, err) != 0) {
		fail_msg("read %s: %s", name, err);
	}
	assert_int_equal(n, strlen(data));
	assert_memory_equal(buf, data, n);
}

static bool exists(struct tier2 *t, const char *name)
{
	struct strata_tier2_chunk_info info;
	return tier2_stat(t, name, &info, err) == 0;
}

static bool contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL) {
		print_error("'%s' not in '%s'\n", needle, hay);
		return false;
	}
	return true;
}

/* Bad or missing keys are STRATA_ECONFIG naming the key and the fix. */
static void test_hdfs_open_config_errors(void **state)
{
	(void)state;
	struct tier2 *t = NULL;
	assert_int_equal(tier2_load_open("hdfs", NULL, "", &t, err),
	                 STRATA_ECONFIG);
	assert_true(contains(err, "namenode is required"));
	assert_int_equal(
	        tier2_load_open("hdfs", NULL, "namenode=ftp://x:1", &t, err),
	        STRATA_ECONFIG);
	assert_true(contains(err, "http://namenode.example:9870"));
	/* No path (the plugin adds /webhdfs/v1: a path would move every
	 * chunk under it), and a real port. */
	const char *bad[] = {"namenode=http://x:1/webhdfs/v1",
	                     "namenode=http://x:99999",
	                     "namenode=http://x:", "namenode=http://x:0",
	                     "namenode=http://x:1a"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(tier2_load_open("hdfs", NULL, bad[i], &t, err),
		                 STRATA_ECONFIG);
		assert_true(contains(err, "with no path"));
	}
	const char *good[] = {"namenode=http://x", "namenode=https://x:9871/",
	                      "namenode=http://[::1]:9870"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(
		        tier2_load_open("hdfs", NULL, good[i], &t, err), 0);
		tier2_close(t);
	}
	assert_int_equal(
	        tier2_load_open("hdfs", NULL,
	                        "namenode=http://x:1\nbase_path=rel/dir", &t,
	                        err),
	        STRATA_ECONFIG);
	assert_true(contains(err, "base_path must be an absolute HDFS path"));
	assert_int_equal(
	        tier2_load_open("hdfs", NULL,
	                        "namenode=http://x:1\nbase_path=/a/../b", &t,
	                        err),
	        STRATA_ECONFIG);
	assert_int_equal(tier2_load_open("hdfs", NULL,
	                                 "namenode=http://x:1\ntimeout_ms=-4",
	                                 &t, err),
	                 STRATA_ECONFIG);
	assert_true(contains(err, "timeout_ms must be milliseconds"));
	assert_int_equal(tier2_load_open("hdfs", NULL,
	                                 "namenode=http://x:1\nbucket=b", &t,
	                                 err),
	                 STRATA_ECONFIG);
	assert_true(contains(err, "unknown key 'bucket'"));
	assert_true(contains(err, "recovery_wait_ms"));
}

/* check gives open's verdicts and contacts nobody (the namenode here does
 * not exist). */
static void test_hdfs_check(void **state)
{
	(void)state;
	struct tier2_plugin *p = NULL;
	assert_int_equal(tier2_load("hdfs", NULL, &p, err), 0);
	assert_int_equal(tier2_check(p, "namenode=http://127.0.0.1:1", err), 0);
	assert_int_equal(tier2_check(p, "namenode=http://x:1\nbucket=b", err),
	                 STRATA_ECONFIG);
	assert_true(contains(err, "unknown key 'bucket'"));
	assert_int_equal(tier2_check(p, "", err), STRATA_ECONFIG);
	assert_true(contains(err, "namenode is required"));
	tier2_unload(p);
}

/* RemoteExceptions map to Strata codes; messages carry the exception name
 * and the server's message (which names the HDFS path). */
static void test_hdfs_errors_map_remote_exceptions(void **state)
{
	(void)state;
	struct tier2 *t = open_hdfs(NULL);
	struct strata_tier2_chunk_info info;

	assert_int_equal(tier2_stat(t, "e1/none", &info, err), STRATA_ENOENT);
	assert_true(contains(err, "hdfs: stat chunk e1/none: no such chunk"));
	assert_true(contains(err, "FileNotFoundException"));
	assert_true(contains(err, "/t/e1/none"));

	put(t, "e1/a", "x");
	assert_int_equal(tier2_create(t, "e1/a", err), STRATA_EEXIST);
	assert_true(contains(err, "create chunk e1/a: it already exists"));

	/* Security off: the user is user.name; this one is refused. */
	struct tier2 *bad = open_hdfs("user=intruder");
	assert_int_equal(tier2_create(bad, "e1/b", err), STRATA_EPERM);
	assert_true(contains(err, "AccessControlException (HTTP 403)"));
	assert_true(contains(err, "user=intruder"));
	tier2_close(bad);

	/* A quota on the datanode write: ENOSPC, nothing appended. */
	control("POST", "/_test/fail?role=datanode&op=APPEND&status=403&"
	                "exception=DSQuotaExceededException&message="
	                "The+DiskSpace+quota+of+/t+is+exceeded");
	assert_int_equal(tier2_write(t, "e1/a", 1, "yz", 2, err),
	                 STRATA_ENOSPC);
	assert_true(contains(err, "DSQuotaExceededException"));
	assert_true(contains(err, "quota of /t is exceeded"));
	expect(t, "e1/a", "x");

	/* A bad request is not retried. */
	control("POST", "/_test/reset");
	control("POST", "/_test/fail?role=namenode&op=GETFILESTATUS&"
	                "status=400&exception=IllegalArgumentException");
	assert_int_equal(tier2_stat(t, "e1/a", &info, err), STRATA_EINVAL);
	assert_int_equal(stat_of("namenode.GETFILESTATUS"), 1);

	/* A standby namenode is retried, then reported. */
	control("POST", "/_test/fail?role=namenode&op=GETFILESTATUS&count=10&"
	                "status=403&exception=StandbyException&message="
	                "Operation+category+READ+is+not+supported");
	assert_int_equal(tier2_stat(t, "e1/a", &info, err), STRATA_EUNAVAIL);
	assert_true(contains(err, "StandbyException"));
	assert_true(contains(err, "(4 attempts)"));
	assert_int_equal(stat_of("namenode.GETFILESTATUS"), 1 + 4);

	/* A 5xx is retried and then succeeds. */
	control("POST", "/_test/reset");
	control("POST", "/_test/fail?role=namenode&op=GETFILESTATUS&count=2&"
	                "status=500&exception=RuntimeException");
	assert_int_equal(tier2_stat(t, "e1/a", &info, err), 0);
	assert_int_equal(info.length, 1);
	assert_int_equal(stat_of("namenode.GETFILESTATUS"), 3);
	tier2_close(t);
}

/* Data goes only to the datanode named by the namenode's 307: the
 * namenode never sees a body byte. */
static void test_hdfs_redirect_data_to_datanode(void **state)
{
	(void)state;
	struct tier2 *t = open_hdfs(NULL);
	char data[1000];
	memset(data, 'd', sizeof(data));
	assert_int_equal(tier2_create(t, "r1/a", err), 0);
	assert_int_equal(tier2_write(t, "r1/a", 0, data, sizeof(data), err), 0);
	char back[1200];
	size_t n = 0;
	assert_int_equal(tier2_read(t, "r1/a", 10, back, sizeof(back), &n, err),
	                 0);
	assert_int_equal(n, 990);
	assert_memory_equal(back, data, 990);
	assert_int_equal(stat_of("namenode.body_bytes"), 0);
	assert_int_equal(stat_of("datanode.body_bytes"), 1000);
	assert_int_equal(stat_of("namenode.CREATE"), 1);
	assert_int_equal(stat_of("datanode.CREATE"), 1);
	assert_int_equal(stat_of("namenode.APPEND"), 1);
	assert_int_equal(stat_of("datanode.APPEND"), 1);
	assert_int_equal(stat_of("namenode.OPEN"), 1);
	assert_int_equal(stat_of("datanode.OPEN"), 1);

	/* A namenode answering without a redirect is a protocol error. */
	control("POST", "/_test/fail?role=namenode&op=APPEND&status=200");
	assert_int_equal(tier2_write(t, "r1/a", 1000, "x", 1, err),
	                 STRATA_EPROTO);
	assert_true(contains(err, "expected 307 TEMPORARY_REDIRECT"));
	tier2_close(t);
}

/* A datanode that drops the connection before writing is retried; one
 * that wrote and lost the reply is not appended to twice. */
static void test_hdfs_write_lost_reply_not_duplicated(void **state)
{
	(void)state;
	struct tier2 *t = open_hdfs(NULL);
	put(t, "w1/a", "abc");
	control("POST", "/_test/fail?role=datanode&op=APPEND&mode=drop");
	assert_int_equal(tier2_write(t, "w1/a", 3, "def", 3, err), 0);
	expect(t, "w1/a", "abcdef");
	assert_int_equal(stat_of("datanode.APPEND"), 3); /* put + 2 */

	control("POST", "/_test/fail?role=datanode&op=APPEND&"
	                "mode=applied_drop");
	assert_int_equal(tier2_write(t, "w1/a", 6, "ghi", 3, err), 0);
	expect(t, "w1/a", "abcdefghi");

	/* Drops every time: the error names the datanode URL, and nothing
	 * of the write is left behind. */
	control("POST", "/_test/fail?role=datanode&op=APPEND&"
	                "mode=applied_drop&count=20");
	assert_int_equal(tier2_write(t, "w1/a", 9, "jkl", 3, err), 0);
	expect(t, "w1/a", "abcdefghijkl"); /* verified by reading back */
	control("POST", "/_test/reset");
	control("POST", "/_test/fail?role=datanode&op=APPEND&mode=drop&"
	                "count=20");
	assert_int_equal(tier2_write(t, "w1/a", 12, "mno", 3, err), STRATA_EIO);
	/* The cause first, then the request (a long URL is cut last). */
	assert_true(contains(err, "write chunk w1/a at offset 12: Server "
	                          "returned nothing"));
	assert_true(contains(err, "[POST http://127.0.0.1:"));
	assert_true(contains(err, "op=APPEND"));
	expect(t, "w1/a", "abcdefghijkl");
	tier2_close(t);
}

/* A truncate off a block boundary leaves the file under lease recovery
 * (TRUNCATE answers false); the next append waits for it. */
static void test_hdfs_truncate_then_append_waits_recovery(void **state)
{
	(void)state;
	struct tier2 *t = open_hdfs(NULL);
	put(t, "t1/a", "0123456789");
	assert_int_equal(tier2_truncate(t, "t1/a", 8, err), 0); /* boundary */
	assert_int_equal(tier2_truncate(t, "t1/a", 5, err), 0);
	int64_t t0 = now_ms();
	assert_int_equal(tier2_write(t, "t1/a", 5, "XY", 2, err), 0);
	expect(t, "t1/a", "01234XY");
	assert_true(now_ms() - t0 < 5000);
	assert_true(stat_of("datanode.APPEND") >=
	            3); /* refused at least once */
	assert_int_equal(tier2_truncate(t, "t1/a", 9, err), STRATA_ERANGE);
	assert_true(contains(err, "it is only 7 bytes long"));
	tier2_close(t);
}

/* concat uses HDFS CONCAT for non-empty sources in the target's directory
 * (empty ones are just deleted) and copies from other directories. */
static void test_hdfs_concat_native_or_copy(void **state)
{
	(void)state;
	struct tier2 *t = open_hdfs(NULL);
	put(t, "k1/t", "ab");
	put(t, "k1/s1", "cd");
	put(t, "k1/s2", "");
	put(t, "k1/s3", "ef");
	const char *same[] = {"k1/s1", "k1/s2", "k1/s3"};
	assert_int_equal(tier2_concat(t, "k1/t", same, 3, err), 0);
	expect(t, "k1/t", "abcdef");
	assert_int_equal(stat_of("namenode.CONCAT"), 1);
	assert_false(exists(t, "k1/s1"));
	assert_false(exists(t, "k1/s2"));
	assert_false(exists(t, "k1/s3"));

	control("POST", "/_test/reset");
	put(t, "k1/x/s4", "gh");
	put(t, "k1/s5", "ij");
	const char *other[] = {"k1/x/s4", "k1/s5"};
	assert_int_equal(tier2_concat(t, "k1/t", other, 2, err), 0);
	expect(t, "k1/t", "abcdefghij");
	assert_int_equal(stat_of("namenode.CONCAT"), 0);
	assert_false(exists(t, "k1/x/s4"));
	assert_false(exists(t, "k1/s5"));
	char dir[128];
	snprintf(dir, sizeof(dir), "%s/t/k1/x", server_root);
	struct stat st;
	assert_int_equal(stat(dir, &st), -1); /* emptied dir removed */

	/* A lost CONCAT reply: the target's length shows it happened. */
	put(t, "k1/s6", "kl");
	control("POST", "/_test/fail?role=namenode&op=CONCAT&"
	                "mode=applied_drop");
	const char *one[] = {"k1/s6"};
	assert_int_equal(tier2_concat(t, "k1/t", one, 1, err), 0);
	expect(t, "k1/t", "abcdefghijkl");
	assert_false(exists(t, "k1/s6"));
	tier2_close(t);
}

/* delete of a missing chunk is STRATA_ENOENT (HDFS says false); a delete
 * removes the directories it empties, not others. */
static void test_hdfs_delete_missing_and_prunes(void **state)
{
	(void)state;
	struct tier2 *t = open_hdfs(NULL);
	assert_int_equal(tier2_delete(t, "d1/none", err), STRATA_ENOENT);
	assert_true(contains(err, "delete chunk d1/none: no such chunk"));
	put(t, "d1/keep", "k");
	put(t, "d1/a/b/c", "c");
	assert_int_equal(tier2_delete(t, "d1/a/b/c", err), 0);
	char dir[128];
	struct stat st;
	snprintf(dir, sizeof(dir), "%s/t/d1/a", server_root);
	assert_int_equal(stat(dir, &st), -1);
	snprintf(dir, sizeof(dir), "%s/t/d1", server_root);
	assert_int_equal(stat(dir, &st), 0);
	/* A lost DELETE reply: the retry's false means it was done. */
	control("POST", "/_test/fail?role=namenode&op=DELETE&"
	                "mode=applied_drop");
	assert_int_equal(tier2_delete(t, "d1/keep", err), 0);
	assert_false(exists(t, "d1/keep"));
	tier2_close(t);
}

/* A namenode that is down gives a bounded error naming the URL. */
static void test_hdfs_namenode_down_bounded_error(void **state)
{
	(void)state;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
	int port = ntohs(a.sin_port);
	close(s); /* nobody listens there now */

	char cfg[256];
	snprintf(cfg, sizeof(cfg),
	         "namenode=http://127.0.0.1:%d\nretries=2\nbackoff_ms=10",
	         port);
	struct tier2 *t = NULL;
	assert_int_equal(tier2_load_open("hdfs", NULL, cfg, &t, err), 0);
	struct strata_tier2_chunk_info info;
	int64_t t0 = now_ms();
	assert_int_equal(tier2_stat(t, "x/y", &info, err), STRATA_ECONNREFUSED);
	assert_true(now_ms() - t0 < 3000);
	char url[96];
	snprintf(url, sizeof(url),
	         "GET http://127.0.0.1:%d/webhdfs/v1/strata/x/y?op="
	         "GETFILESTATUS",
	         port);
	assert_true(contains(err, url));
	assert_true(contains(err, "(3 attempts)"));
	assert_true(contains(err, "is HDFS up and namenode= right?"));
	tier2_close(t);
}

/* A namenode that accepts but never answers times out within the
 * configured bound. */
static void test_hdfs_namenode_silent_times_out(void **state)
{
	(void)state;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s, 16), 0); /* never accepted */
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
	char cfg[256];
	snprintf(cfg, sizeof(cfg),
	         "namenode=http://127.0.0.1:%d\nretries=1\nbackoff_ms=10\n"
	         "timeout_ms=300",
	         ntohs(a.sin_port));
	struct tier2 *t = NULL;
	assert_int_equal(tier2_load_open("hdfs", NULL, cfg, &t, err), 0);
	struct strata_tier2_chunk_info info;
	int64_t t0 = now_ms();
	assert_int_equal(tier2_stat(t, "x", &info, err), STRATA_ETIMEDOUT);
	int64_t took = now_ms() - t0;
	assert_true(took >= 550 && took < 3000);
	assert_true(contains(err, "(2 attempts)"));
	tier2_close(t);
	close(s);
}

static int count_cb(void *arg, const char *name,
                    const struct strata_tier2_chunk_info *info)
{
	(void)name;
	(void)info;
	(*(int *)arg)++;
	return 0;
}

/* namenode= given a datanode's address: the datanode's answer is turned
 * into what to fix. */
static void test_hdfs_namenode_is_a_datanode(void **state)
{
	(void)state;
	char conf[128];
	snprintf(conf, sizeof(conf), "namenode=http://127.0.0.1:%d\nretries=0",
	         dn_port);
	struct tier2 *t = NULL;
	assert_int_equal(tier2_load_open("hdfs", NULL, conf, &t, err), 0);
	struct strata_tier2_chunk_info info;
	assert_int_not_equal(tier2_stat(t, "x", &info, err), 0);
	assert_true(contains(err, "namenode= points at a datanode"));
	tier2_close(t);
}

/* Out of memory at any allocation fails cleanly (no leak, no crash) and
 * leaves the chunk as it was or fully written. */
static void test_hdfs_oom_every_allocation(void **state)
{
	(void)state;
	struct tier2 *t = open_hdfs(NULL);
	put(t, "o1/a", "ab");
	put(t, "o1/b/c", "x");
	int rc = -1;
	for (long n = 1; rc != 0 && n < 200; n++) {
		struct strata_tier2_chunk_info info;
		char buf[8];
		size_t got;
		int seen = 0;
		oom_install(n);
		rc = tier2_stat(t, "o1/a", &info, err);
		if (rc == 0) {
			rc = tier2_read(t, "o1/a", 0, buf, sizeof(buf), &got,
			                err);
		}
		if (rc == 0) {
			rc = tier2_list(t, "o1/", count_cb, &seen, err);
		}
		oom_uninstall();
		assert_true(rc == 0 || rc == STRATA_ENOMEM);
		if (rc == 0) {
			assert_int_equal(got, 2);
			assert_int_equal(seen, 2);
		}
	}
	assert_int_equal(rc, 0);
	tier2_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hdfs_open_config_errors),
	        cmocka_unit_test(test_hdfs_check),
	        cmocka_unit_test_setup(test_hdfs_namenode_is_a_datanode, reset),
	        cmocka_unit_test_setup(test_hdfs_errors_map_remote_exceptions,
	                               reset),
	        cmocka_unit_test_setup(test_hdfs_redirect_data_to_datanode,
	                               reset),
	        cmocka_unit_test_setup(
	                test_hdfs_write_lost_reply_not_duplicated, reset),
	        cmocka_unit_test_setup(
	                test_hdfs_truncate_then_append_waits_recovery, reset),
	        cmocka_unit_test_setup(test_hdfs_concat_native_or_copy, reset),
	        cmocka_unit_test_setup(test_hdfs_delete_missing_and_prunes,
	                               reset),
	        cmocka_unit_test(test_hdfs_namenode_down_bounded_error),
	        cmocka_unit_test(test_hdfs_namenode_silent_times_out),
	        cmocka_unit_test_setup(test_hdfs_oom_every_allocation, reset),
	};
	return cmocka_run_group_tests_name("hdfs", tests, start_server,
	                                   stop_server);
}
