/* Unit tests for the s3 plugin's chunk model over an in-memory fake S3. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "plugins/tier2/s3/s3_frame.h"
#include "plugins/tier2/s3/s3_store.h"
#include "tests/lib/check.h"
#include "tests/lib/oom.h"

/*
 * The fake is a sorted array of objects plus a failure script: fail the
 * next `fail_n` calls of `fail_verb` ("put", "get", "list", "del", "copy",
 * "complete", ... or "any") with fail_res; with fail_after the request
 * happens before it "fails" (a lost reply). A fake clock and sleep record
 * the backoff.
 */

#define MAXOBJ 256

struct fobj {
	char key[512];
	unsigned char *data;
	size_t len;
};

struct fake_upload {
	char key[512];
	char id[32];
	unsigned char *part[64];
	size_t part_len[64];
	bool copied[64];
	bool open;
};

static struct {
	struct fobj o[MAXOBJ];
	size_t n;
	struct fake_upload up;
	int next_id;
	const char *fail_verb;
	int fail_n;
	bool fail_after;
	struct s3_result fail_res;
	int calls[16];
	char log[4096]; /* "verb key;" per request */
	uint64_t clock_ms;
	uint64_t tick_ms; /* clock advance per request */
	uint64_t slept[32];
	int nslept;
	bool no_ranges; /* ranged UploadPartCopy answers 501 */
} F;

static const char *verbs[] = {"put",      "get",    "del",    "list",
                              "copy",     "create", "mpcopy", "upload",
                              "complete", "abort"};

static int vidx(const char *v)
{
	for (int i = 0; i < 10; i++) {
		if (strcmp(verbs[i], v) == 0) {
			return i;
		}
	}
	return 15;
}

static void logreq(const char *verb, const char *key)
{
	size_t n = strlen(F.log);
	snprintf(F.log + n, sizeof(F.log) - n, "%s %s;", verb, key);
}

/* Should this call fail? Fills res when so. */
static bool failing(const char *verb, struct s3_result *res)
{
	F.calls[vidx(verb)]++;
	F.clock_ms += F.tick_ms;
	if (F.fail_n != 0 && (strcmp(F.fail_verb, verb) == 0 ||
	                      strcmp(F.fail_verb, "any") == 0)) {
		if (F.fail_n > 0) {
			F.fail_n--;
		}
		*res = F.fail_res;
		return true;
	}
	return false;
}

static struct fobj *find(const char *key)
{
	for (size_t i = 0; i < F.n; i++) {
		if (strcmp(F.o[i].key, key) == 0) {
			return &F.o[i];
		}
	}
	return NULL;
}

static void fput(const char *key, const void *buf, size_t len)
{
	struct fobj *o = find(key);
	if (o == NULL) {
		size_t i = 0;
		while (i < F.n && strcmp(F.o[i].key, key) < 0) {
			i++;
		}
		memmove(&F.o[i + 1], &F.o[i], (F.n - i) * sizeof(F.o[0]));
		F.n++;
		o = &F.o[i];
		memset(o, 0, sizeof(*o));
		snprintf(o->key, sizeof(o->key), "%s", key);
	}
	free(o->data);
	o->data = malloc(len + 1);
	memcpy(o->data, buf, len);
	o->len = len;
}

static void fdel(const char *key)
{
	struct fobj *o = find(key);
	if (o != NULL) {
		free(o->data);
		size_t i = (size_t)(o - F.o);
		memmove(&F.o[i], &F.o[i + 1], (F.n - i - 1) * sizeof(F.o[0]));
		F.n--;
	}
}

static void nosuchkey(struct s3_result *res)
{
	memset(res, 0, sizeof(*res));
	res->http = 404;
	snprintf(res->code, sizeof(res->code), "NoSuchKey");
}

static int f_put(void *t, const char *key, const void *buf, size_t len,
                 struct s3_result *res)
{
	(void)t;
	logreq("put", key);
	bool f = failing("put", res);
	if (f && !F.fail_after) {
		return STRATA_EIO;
	}
	fput(key, buf, len);
	return f ? STRATA_EIO : 0;
}

static int f_get(void *t, const char *key, uint64_t off, size_t len, void *buf,
                 size_t *nread, struct s3_result *res)
{
	(void)t;
	logreq("get", key);
	*nread = 0;
	if (failing("get", res)) {
		return STRATA_EIO;
	}
	struct fobj *o = find(key);
	if (o == NULL) {
		nosuchkey(res);
		return STRATA_EIO;
	}
	size_t n = off >= o->len ? 0 : o->len - (size_t)off;
	n = n < len ? n : len;
	memcpy(buf, o->data + off, n);
	*nread = n;
	return 0;
}

static int f_copy(void *t, const char *src, const char *key,
                  struct s3_result *res)
{
	(void)t;
	logreq("copy", key);
	bool f = failing("copy", res);
	if (f && !F.fail_after) {
		return STRATA_EIO;
	}
	struct fobj *o = find(src);
	if (o == NULL) {
		nosuchkey(res);
		return STRATA_EIO;
	}
	unsigned char *d = malloc(o->len + 1);
	memcpy(d, o->data, o->len);
	fput(key, d, o->len);
	free(d);
	return f ? STRATA_EIO : 0;
}

static int f_del(void *t, const char *key, struct s3_result *res)
{
	(void)t;
	logreq("del", key);
	bool f = failing("del", res);
	if (f && !F.fail_after) {
		return STRATA_EIO;
	}
	fdel(key);
	return f ? STRATA_EIO : 0;
}

static int f_list(void *t, const char *prefix, const char *marker,
                  bool direct_only, int max_keys, s3_list_page_cb cb, void *arg,
                  bool *truncated, struct s3_result *res)
{
	(void)t;
	logreq("list", prefix);
	*truncated = false;
	if (failing("list", res)) {
		return STRATA_EIO;
	}
	struct s3_object objs[MAXOBJ];
	size_t k = 0;
	size_t plen = strlen(prefix);
	for (size_t i = 0; i < F.n; i++) {
		const char *key = F.o[i].key;
		if (strncmp(key, prefix, plen) != 0 ||
		    (marker[0] != '\0' && strcmp(key, marker) <= 0) ||
		    (direct_only && strchr(key + plen, '/') != NULL)) {
			continue;
		}
		if ((int)k == max_keys) {
			*truncated = true;
			break;
		}
		objs[k++] = (struct s3_object){key, F.o[i].len, 1000000000};
	}
	int rc = cb(arg, objs, k);
	if (rc != 0) {
		memset(res, 0, sizeof(*res));
		res->net = S3_NET_LOCAL;
		return rc == STRATA_ENOMEM ? STRATA_ENOMEM : STRATA_EIO;
	}
	return 0;
}

static int f_mp_create(void *t, const char *key, char *id, size_t id_size,
                       struct s3_result *res)
{
	(void)t;
	logreq("create", key);
	if (failing("create", res)) {
		return STRATA_EIO;
	}
	assert_false(F.up.open);
	memset(&F.up, 0, sizeof(F.up));
	F.up.open = true;
	snprintf(F.up.key, sizeof(F.up.key), "%s", key);
	snprintf(F.up.id, sizeof(F.up.id), "up%d", ++F.next_id);
	snprintf(id, id_size, "%s", F.up.id);
	return 0;
}

static int f_mp_copy(void *t, const char *key, const char *id, int number,
                     const char *src_key, uint64_t first, uint64_t last,
                     char *etag, size_t etag_size, struct s3_result *res)
{
	(void)t;
	logreq("mpcopy", src_key);
	if (failing("mpcopy", res)) {
		return STRATA_EIO;
	}
	assert_string_equal(key, F.up.key);
	assert_string_equal(id, F.up.id);
	struct fobj *o = find(src_key);
	assert_non_null(o);
	if (last == UINT64_MAX) {
		assert_int_equal(first, 0);
		last = o->len - 1;
	}
	if (F.no_ranges && last + 1 - first != o->len) {
		memset(res, 0, sizeof(*res));
		res->http = 501;
		snprintf(res->code, sizeof(res->code), "NotImplemented");
		return STRATA_EIO;
	}
	assert_true(last < o->len && first <= last);
	size_t n = (size_t)(last - first + 1);
	F.up.part[number] = malloc(n);
	memcpy(F.up.part[number], o->data + first, n);
	F.up.part_len[number] = n;
	F.up.copied[number] = true;
	snprintf(etag, etag_size, "\"e%d\"", number);
	return 0;
}

static int f_mp_upload(void *t, const char *key, const char *id, int number,
                       const void *buf, size_t len, char *etag,
                       size_t etag_size, struct s3_result *res)
{
	(void)t;
	logreq("upload", key);
	if (failing("upload", res)) {
		return STRATA_EIO;
	}
	assert_string_equal(id, F.up.id);
	F.up.part[number] = malloc(len);
	memcpy(F.up.part[number], buf, len);
	F.up.part_len[number] = len;
	snprintf(etag, etag_size, "\"e%d\"", number);
	return 0;
}

static uint64_t min_part = 4;

static void up_free(void)
{
	for (int i = 0; i < 64; i++) {
		free(F.up.part[i]);
		F.up.part[i] = NULL;
	}
	F.up.open = false;
}

static int f_mp_complete(void *t, const char *key, const char *id,
                         const struct s3_part *parts, size_t n,
                         struct s3_result *res)
{
	(void)t;
	logreq("complete", key);
	if (!F.up.open || strcmp(id, F.up.id) != 0) {
		memset(res, 0, sizeof(*res));
		res->http = 404;
		snprintf(res->code, sizeof(res->code), "NoSuchUpload");
		return STRATA_EIO;
	}
	bool f = failing("complete", res);
	if (f && !F.fail_after) {
		return STRATA_EIO;
	}
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(parts[i].number, (int)i + 1);
		size_t len = F.up.part_len[parts[i].number];
		/* S3's rule: every part but the last is >= the minimum. */
		if (i + 1 < n) {
			assert_true(len >= min_part);
		}
		total += len;
	}
	unsigned char *d = malloc(total + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(d + o, F.up.part[parts[i].number],
		       F.up.part_len[parts[i].number]);
		o += F.up.part_len[parts[i].number];
	}
	fput(key, d, total);
	free(d);
	up_free();
	return f ? STRATA_EIO : 0;
}

static int f_mp_abort(void *t, const char *key, const char *id,
                      struct s3_result *res)
{
	(void)t;
	(void)id;
	(void)res;
	logreq("abort", key);
	up_free();
	return 0;
}

static void f_destroy(void *t)
{
	(void)t;
}

static const struct s3_transport_ops fake_v4 = {
        .name = "fake4",
        .destroy = f_destroy,
        .put = f_put,
        .get = f_get,
        .copy = f_copy,
        .del = f_del,
        .list = f_list,
        .mp_create = f_mp_create,
        .mp_copy = f_mp_copy,
        .mp_upload = f_mp_upload,
        .mp_complete = f_mp_complete,
        .mp_abort = f_mp_abort,
};

static const struct s3_transport_ops fake_v2 = {
        .name = "fake2",
        .destroy = f_destroy,
        .put = f_put,
        .get = f_get,
        .copy = f_copy,
        .del = f_del,
        .list = f_list,
};

static uint64_t fake_now(void)
{
	return F.clock_ms;
}

static void fake_sleep(uint64_t ms)
{
	if (F.nslept < 32) {
		F.slept[F.nslept++] = ms;
	}
	F.clock_ms += ms;
}

static void h_log(const struct strata_host *h, int level, const char *fmt, ...)
{
	(void)h;
	(void)level;
	(void)fmt;
}

static void h_counter(const struct strata_host *h, const char *name,
                      uint64_t delta)
{
	(void)h;
	(void)name;
	(void)delta;
}

static struct strata_host host;
static struct s3_config cfg;
static struct s3_store st;
static char err[STRATA_ERRMSG_SIZE];

static void fx(const struct s3_transport_ops *ops, const char *extra)
{
	for (size_t i = 0; i < F.n; i++) {
		free(F.o[i].data);
	}
	up_free();
	memset(&F, 0, sizeof(F));
	host = (struct strata_host){.abi_version = STRATA_TIER2_ABI_VERSION,
	                            .log = h_log,
	                            .malloc = strata_malloc,
	                            .realloc = strata_realloc,
	                            .free = strata_free,
	                            .counter_add = h_counter};
	char conf[512];
	snprintf(conf, sizeof(conf),
	         "endpoint=http://127.0.0.1:9\nbucket=bk\nprefix=p\n"
	         "access_key_id=a\nsecret_access_key=s\nretries=3\n"
	         "retry_base_ms=100\nretry_max_ms=400\n"
	         "multipart_min_part=4\nlist_page=2\nchecksum=none\n%s",
	         extra);
	assert_int_equal(s3_config_parse(&host, conf, &cfg, err), 0);
	s3_store_init(&st, &host, &cfg, ops, NULL);
	st.now_ms = fake_now;
	st.sleep_ms = fake_sleep;
}

static int teardown(void **state)
{
	(void)state;
	s3_config_free(&host, &cfg);
	for (size_t i = 0; i < F.n; i++) {
		free(F.o[i].data);
	}
	F.n = 0;
	up_free();
	return 0;
}

static void fail_with(const char *verb, int n, int http, const char *code,
                      enum s3_net net)
{
	F.fail_verb = verb;
	F.fail_n = n;
	memset(&F.fail_res, 0, sizeof(F.fail_res));
	F.fail_res.http = http;
	F.fail_res.net = net;
	snprintf(F.fail_res.code, sizeof(F.fail_res.code), "%s", code);
	snprintf(F.fail_res.detail, sizeof(F.fail_res.detail), "fake %s",
	         code[0] ? code : "failure");
}

static void put_chunk(const char *name, const char *data)
{
	assert_int_equal(s3_store_create(&st, name, err), 0);
	if (data[0] != '\0') {
		assert_int_equal(
		        s3_store_write(&st, name, 0, data, strlen(data), err),
		        0);
	}
}

static void expect_chunk(const char *name, const char *data)
{
	char buf[256];
	size_t n = 0;
	int rc = s3_store_read(&st, name, 0, buf, sizeof(buf), &n, err);
	if (rc != 0) {
		fail_msg("read %s: %s", name, err);
	}
	assert_int_equal(n, strlen(data));
	assert_memory_equal(buf, data, n);
}

/* The tests up to the framed ones run with checksum=none: plain objects,
 * the layout older Strata wrote and still read. */

/* Each write is one object named by its offset; an empty chunk is one
 * empty object at offset 0 that the first write replaces. */
static void test_s3_store_layout_one_object_per_write(void **state)
{
	(void)state;
	fx(&fake_v4, "");
	assert_int_equal(s3_store_create(&st, "s/c", err), 0);
	assert_int_equal(F.n, 1);
	assert_string_equal(F.o[0].key, "p/s/c/00000000000000000000");
	assert_int_equal(F.o[0].len, 0);
	assert_int_equal(s3_store_write(&st, "s/c", 0, "hello", 5, err), 0);
	assert_int_equal(s3_store_write(&st, "s/c", 5, "", 0, err), 0);
	assert_int_equal(s3_store_write(&st, "s/c", 5, " world", 6, err), 0);
	assert_int_equal(F.n, 2);
	assert_string_equal(F.o[1].key, "p/s/c/00000000000000000005");
	expect_chunk("s/c", "hello world");
	char buf[8];
	size_t n = 0;
	assert_int_equal(s3_store_read(&st, "s/c", 3, buf, 5, &n, err), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "lo wo", 5);
}

/* 503 SlowDown twice, then success: the write succeeds after two backoff
 * sleeps that grow and stay within retry_max_ms. */
static void test_s3_store_retry_throttling_then_success(void **state)
{
	(void)state;
	fx(&fake_v4, "");
	put_chunk("c", "");
	memset(F.calls, 0, sizeof(F.calls));
	fail_with("put", 2, 503, "SlowDown", S3_NET_NONE);
	assert_int_equal(s3_store_write(&st, "c", 0, "abc", 3, err), 0);
	assert_int_equal(F.calls[vidx("put")], 3);
	assert_int_equal(F.nslept, 2);
	assert_true(F.slept[0] >= 50 && F.slept[0] <= 100);
	assert_true(F.slept[1] >= 100 && F.slept[1] <= 200);
	expect_chunk("c", "abc");
}

/* A 500 that never clears: retries+1 attempts, then STRATA_EUNAVAIL whose
 * message names the chunk, bucket, key, server code and endpoint. */
static void test_s3_store_retry_bounded_by_count(void **state)
{
	(void)state;
	fx(&fake_v4, "");
	put_chunk("c", "");
	memset(F.calls, 0, sizeof(F.calls));
	fail_with("put", -1, 500, "InternalError", S3_NET_NONE);
	assert_int_equal(s3_store_write(&st, "c", 0, "abc", 3, err),
	                 STRATA_EUNAVAIL);
	assert_int_equal(F.calls[vidx("put")], 4 + 1); /* + undo */
	assert_int_equal(F.nslept, 3);
	for (int i = 0; i < F.nslept; i++) {
		assert_true(F.slept[i] <= 400);
	}
	assert_non_null(strstr(err, "write chunk c"));
	assert_non_null(strstr(err, "s3://bk/p/c/00000000000000000000"));
	assert_non_null(strstr(err, "InternalError (HTTP 500)"));
	assert_non_null(strstr(err, "http://127.0.0.1:9"));
	assert_non_null(strstr(err, "4 attempts"));
}

/* Slow failures stop at retry_budget_ms before the retry count. */
static void test_s3_store_retry_bounded_by_time(void **state)
{
	(void)state;
	fx(&fake_v4, "retries=50\nretry_budget_ms=2500\n");
	put_chunk("c", "");
	F.tick_ms = 1000;
	memset(F.calls, 0, sizeof(F.calls));
	fail_with("get", -1, 0, "", S3_NET_TIMEOUT);
	char buf[4];
	size_t n;
	assert_int_equal(s3_store_write(&st, "c", 0, "abc", 3, err), 0);
	uint64_t t0 = F.clock_ms;
	int rc = s3_store_read(&st, "c", 0, buf, 3, &n, err);
	assert_int_equal(rc, STRATA_ETIMEDOUT);
	assert_true(F.calls[vidx("get")] <= 3);
	/* one listing, then attempts until the budget; the last may start
	 * just before it ends */
	assert_true(F.clock_ms - t0 <= 1000 + 2500 + 1000);
	assert_non_null(strstr(err, "timed out"));
	assert_non_null(strstr(err, "http://127.0.0.1:9"));
}

/* Permanent errors are not retried and map to their Strata codes. */
static void test_s3_store_permanent_errors_not_retried(void **state)
{
	(void)state;
	fx(&fake_v4, "");
	memset(F.calls, 0, sizeof(F.calls));
	fail_with("list", 1, 403, "AccessDenied", S3_NET_NONE);
	assert_int_equal(s3_store_create(&st, "c", err), STRATA_EPERM);
	assert_int_equal(F.calls[vidx("list")], 1);
	assert_non_null(strstr(err, "AccessDenied (HTTP 403)"));
	assert_non_null(strstr(err, "credentials"));
	fail_with("list", 1, 404, "NoSuchBucket", S3_NET_NONE);
	assert_int_equal(s3_store_create(&st, "c", err), STRATA_ECONFIG);
	assert_non_null(strstr(err, "create the bucket"));
	fail_with("list", 1, 0, "", S3_NET_TLS);
	assert_int_equal(s3_store_create(&st, "c", err), STRATA_EPERM);
	assert_int_equal(F.nslept, 0);
	fail_with("list", -1, 0, "", S3_NET_REFUSED);
	assert_int_equal(s3_store_create(&st, "c", err), STRATA_ECONNREFUSED);
	assert_non_null(strstr(err, "connection refused"));
}

/* list callback: "name=length;" appended to arg (256 bytes). */
static int count_cb(void *arg, const char *name,
                    const struct strata_tier2_chunk_info *info)
{
	char *out = arg;
	size_t n = strlen(out);
	snprintf(out + n, 256 - n, "%s=%llu;", name,
	         (unsigned long long)info->length);
	return 0;
}

/* A chunk whose objects do not line up, or with a foreign object, is
 * STRATA_ECORRUPT naming the object; never data. A listing still names
 * it, with length 0 (nothing reads from it), and a delete removes every
 * object under it (else it would block its container's deletes). */
static void test_s3_store_damaged_chunk_is_corrupt(void **state)
{
	(void)state;
	fx(&fake_v4, "");
	struct strata_tier2_chunk_info info;
	char buf[16];
	size_t n;
	fput("p/g/00000000000000000000", "abcde", 5);
	fput("p/g/00000000000000000007", "xy", 2);
	assert_int_equal(s3_store_stat(&st, "g", &info, err), STRATA_ECORRUPT);
	assert_non_null(strstr(err, "p/g/00000000000000000007"));
	assert_int_equal(s3_store_read(&st, "g", 0, buf, 16, &n, err),
	                 STRATA_ECORRUPT);
	fput("p/h/00000000000000000003", "abc", 3);
	assert_int_equal(s3_store_stat(&st, "h", &info, err), STRATA_ECORRUPT);
	fput("p/f/00000000000000000000", "abc", 3);
	fput("p/f/notapart", "zz", 2);
	assert_int_equal(s3_store_stat(&st, "f", &info, err), STRATA_ECORRUPT);
	assert_non_null(strstr(err, "p/f/notapart"));
	put_chunk("ok", "fine");
	char out[256] = "";
	assert_int_equal(s3_store_list(&st, "", count_cb, out, err), 0);
	assert_string_equal(out, "f=3;g=0;h=0;ok=4;");
	assert_int_equal(s3_store_remove(&st, "g", err), 0);
	assert_int_equal(s3_store_remove(&st, "h", err), 0);
	assert_int_equal(s3_store_remove(&st, "f", err), 0);
	assert_null(find("p/f/notapart"));
	assert_int_equal(F.n, 1);
	assert_int_equal(s3_store_remove(&st, "g", err), STRATA_ENOENT);
	expect_chunk("ok", "fine");
}

/* A PUT whose reply is lost (it landed, then timed out) is undone, so the
 * chunk keeps its length; the first write restores the empty object. */
static void test_s3_store_failed_write_is_undone(void **state)
{
	(void)state;
	fx(&fake_v4, "retries=0\n");
	struct strata_tier2_chunk_info info;
	put_chunk("c", "abc");
	F.fail_after = true;
	fail_with("put", 1, 0, "", S3_NET_TIMEOUT);
	assert_int_equal(s3_store_write(&st, "c", 3, "def", 3, err),
	                 STRATA_ETIMEDOUT);
	F.fail_after = false;
	assert_int_equal(s3_store_stat(&st, "c", &info, err), 0);
	assert_int_equal(info.length, 3);
	put_chunk("d", "");
	F.fail_after = true;
	fail_with("put", 1, 502, "", S3_NET_NONE);
	assert_int_equal(s3_store_write(&st, "d", 0, "xyz", 3, err),
	                 STRATA_EUNAVAIL);
	F.fail_after = false;
	expect_chunk("d", "");
}

/* truncate removes whole objects from the end first, then rewrites the one
 * that straddles the cut. */
static void test_s3_store_truncate_from_the_end(void **state)
{
	(void)state;
	fx(&fake_v4, "");
	put_chunk("t", "abc");
	assert_int_equal(s3_store_write(&st, "t", 3, "defg", 4, err), 0);
	assert_int_equal(s3_store_write(&st, "t", 7, "hi", 2, err), 0);
	F.log[0] = '\0';
	assert_int_equal(s3_store_truncate(&st, "t", 5, err), 0);
	assert_non_null(strstr(F.log, "del p/t/00000000000000000007;get "
	                              "p/t/00000000000000000003;put "
	                              "p/t/00000000000000000003;"));
	expect_chunk("t", "abcde");
	assert_int_equal(s3_store_truncate(&st, "t", 0, err), 0);
	expect_chunk("t", "");
	assert_int_equal(F.n, 1);
	assert_int_equal(s3_store_write(&st, "t", 0, "z", 1, err), 0);
	expect_chunk("t", "z");
}

/* list pages through many objects (page size 2) and folds each chunk's
 * objects into one entry with its length. */
static void test_s3_store_list_pages_and_folds(void **state)
{
	(void)state;
	fx(&fake_v4, "");
	put_chunk("a/x", "1");
	assert_int_equal(s3_store_write(&st, "a/x", 1, "22", 2, err), 0);
	assert_int_equal(s3_store_write(&st, "a/x", 3, "333", 3, err), 0);
	put_chunk("a/y", "");
	put_chunk("a/z/w", "4444");
	put_chunk("b", "5");
	char out[256] = "";
	assert_int_equal(s3_store_list(&st, "a/", count_cb, out, err), 0);
	assert_string_equal(out, "a/x=6;a/y=0;a/z/w=4;");
	out[0] = '\0';
	assert_int_equal(s3_store_list(&st, "", count_cb, out, err), 0);
	assert_string_equal(out, "a/x=6;a/y=0;a/z/w=4;b=1;");
}

/* SigV4 concat: one multipart upload whose parts all meet the minimum
 * (small source objects are re-uploaded, large ones copied), completed as
 * one object at the target's end; the sources are deleted. */
static void test_s3_store_concat_multipart_min_part(void **state)
{
	(void)state;
	fx(&fake_v4, "");
	put_chunk("t", "ab");
	put_chunk("s1", "c"); /* small */
	assert_int_equal(s3_store_write(&st, "s1", 1, "defghij", 7, err), 0);
	put_chunk("s2", "");           /* empty */
	put_chunk("s3", "klmnopqrst"); /* big */
	put_chunk("s4", "uv");         /* last */
	const char *srcs[] = {"s1", "s2", "s3", "s4"};
	assert_int_equal(s3_store_concat(&st, "t", srcs, 4, err), 0);
	expect_chunk("t", "abcdefghijklmnopqrstuv");
	assert_non_null(find("p/t/00000000000000000002"));
	assert_null(find("p/s1/00000000000000000000"));
	assert_null(find("p/s3/00000000000000000000"));
	struct strata_tier2_chunk_info info;
	assert_int_equal(s3_store_stat(&st, "s2", &info, err), STRATA_ENOENT);
	assert_true(F.calls[vidx("mpcopy")] >= 1);
	assert_true(F.calls[vidx("upload")] >= 1);
}

/* A store without UploadPartCopy (501 NotImplemented, as s3rver 3.7) gets
 * the bytes uploaded instead, in parts of the minimum size; no retries. */
static void test_s3_store_concat_without_part_copy(void **state)
{
	(void)state;
	fx(&fake_v4, "");
	put_chunk("t", "ab");
	put_chunk("s", "cdefghijk");
	fail_with("mpcopy", -1, 501, "NotImplemented", S3_NET_NONE);
	const char *srcs[] = {"s"};
	assert_int_equal(s3_store_concat(&st, "t", srcs, 1, err), 0);
	assert_int_equal(F.calls[vidx("mpcopy")], 1);
	assert_int_equal(F.calls[vidx("upload")], 3); /* 4 + 4 + 1 */
	assert_int_equal(F.nslept, 0);
	expect_chunk("t", "abcdefghijk");
}

/* Without ranged UploadPartCopy, whole objects are still copied and only
 * the rest of a partly consumed object moves through the process. */
static void test_s3_store_concat_without_ranged_copy(void **state)
{
	(void)state;
	fx(&fake_v4, "");
	F.no_ranges = true;
	put_chunk("t", "ab");
	put_chunk("s1", "c");
	put_chunk("s2", "defghij");
	put_chunk("s3", "klmnopq");
	const char *srcs[] = {"s1", "s2", "s3"};
	assert_int_equal(s3_store_concat(&st, "t", srcs, 3, err), 0);
	expect_chunk("t", "abcdefghijklmnopq");
	assert_int_equal(F.calls[vidx("mpcopy")], 2); /* 1 ranged, 1 whole */
}

/* A CompleteMultipartUpload whose reply was lost is retried; the retry's
 * NoSuchUpload is recognised as done when the target has the new bytes. */
static void test_s3_store_concat_complete_lost_reply(void **state)
{
	(void)state;
	fx(&fake_v4, "");
	put_chunk("t", "ab");
	put_chunk("s", "cdefgh");
	F.fail_after = true;
	fail_with("complete", 1, 500, "InternalError", S3_NET_NONE);
	const char *srcs[] = {"s"};
	assert_int_equal(s3_store_concat(&st, "t", srcs, 1, err), 0);
	F.fail_after = false;
	expect_chunk("t", "abcdefgh");
}

/* A failed multipart concat is aborted and leaves target and sources. */
static void test_s3_store_concat_failure_changes_nothing(void **state)
{
	(void)state;
	fx(&fake_v4, "");
	put_chunk("t", "ab");
	put_chunk("s", "cdefgh");
	fail_with("mpcopy", -1, 403, "AccessDenied", S3_NET_NONE);
	const char *srcs[] = {"s"};
	assert_int_equal(s3_store_concat(&st, "t", srcs, 1, err), STRATA_EPERM);
	assert_non_null(strstr(F.log, "abort "));
	expect_chunk("t", "ab");
	expect_chunk("s", "cdefgh");
}

/* SigV2 (no multipart): one copy per source object; a failing copy undoes
 * the copies made, so the target keeps its length and sources stay. */
static void test_s3_store_concat_copy_undone_on_error(void **state)
{
	(void)state;
	fx(&fake_v2, "retries=0\n");
	put_chunk("t", "ab");
	put_chunk("s1", "cd");
	put_chunk("s2", "ef");
	assert_int_equal(s3_store_write(&st, "s2", 2, "gh", 2, err), 0);
	F.fail_after = true;
	fail_with("copy", -1, 0, "", S3_NET_BROKEN);
	const char *srcs[] = {"s1", "s2"};
	/* The first copy "lands then fails": everything is undone. */
	assert_int_equal(s3_store_concat(&st, "t", srcs, 2, err),
	                 STRATA_EUNAVAIL);
	F.fail_after = false;
	F.fail_n = 0;
	expect_chunk("t", "ab");
	expect_chunk("s1", "cd");
	assert_int_equal(s3_store_concat(&st, "t", srcs, 2, err), 0);
	expect_chunk("t", "abcdefgh");
	struct strata_tier2_chunk_info info;
	assert_int_equal(s3_store_stat(&st, "s1", &info, err), STRATA_ENOENT);
}

/* ---- checksum=block: framed ".crc" objects ----------------------------- */

#define BLK S3_FRAME_BLOCK

static unsigned char *pattern(size_t n, unsigned seed)
{
	unsigned char *p = malloc(n + 1);
	assert_non_null(p);
	fill_pseudo_random(p, n, 2463534242u ^ seed);
	return p;
}

/* Read [off, off+n) of chunk name and compare it with want. */
static void expect_range(const char *name, uint64_t off, size_t n,
                         const unsigned char *want)
{
	unsigned char *buf = malloc(n + 1);
	assert_non_null(buf);
	size_t got = 0;
	int rc = s3_store_read(&st, name, off, buf, n, &got, err);
	if (rc != 0) {
		fail_msg("read %s at %llu: %s", name, (unsigned long long)off,
		         err);
	}
	assert_int_equal(got, n);
	assert_memory_equal(buf, want, n);
	free(buf);
}

/* Objects are "<offset>.crc", framed, so a listing's size gives the data
 * length; any range reads back across block and object boundaries. */
static void test_s3_store_framed_layout(void **state)
{
	(void)state;
	fx(&fake_v4, "checksum=block\n");
	size_t len = 3 * BLK + 100;
	unsigned char *d = pattern(len + 10, 1);
	assert_int_equal(s3_store_create(&st, "s/c", err), 0);
	assert_string_equal(F.o[0].key, "p/s/c/00000000000000000000.crc");
	assert_int_equal(F.o[0].len, 0);
	assert_int_equal(s3_store_write(&st, "s/c", 0, d, len, err), 0);
	assert_int_equal(s3_store_write(&st, "s/c", len, d + len, 10, err), 0);
	assert_int_equal(F.n, 2);
	assert_int_equal(F.o[0].len, s3_frame_size(len));
	assert_string_equal(F.o[1].key, "p/s/c/00000000000000196708.crc");
	struct strata_tier2_chunk_info info;
	assert_int_equal(s3_store_stat(&st, "s/c", &info, err), 0);
	assert_int_equal(info.length, len + 10);
	char out[256] = "";
	assert_int_equal(s3_store_list(&st, "s/", count_cb, out, err), 0);
	assert_string_equal(out, "s/c=196718;");
	expect_range("s/c", 0, len + 10, d);
	expect_range("s/c", BLK - 2, 5, d + BLK - 2);
	expect_range("s/c", len - 3, 8, d + len - 3);
	/* The bytes stored are not the data: each block carries its CRC. */
	assert_memory_equal(F.o[0].data, d, BLK);
	assert_memory_not_equal(F.o[0].data + BLK, d + BLK, 4);
	free(d);
}

/* A byte changed in a stored object fails the read of its block with
 * STRATA_ECORRUPT naming the object and the chunk bytes; other blocks
 * still read. An object cut short is a damaged chunk for every op. */
static void test_s3_store_framed_damage_is_corrupt(void **state)
{
	(void)state;
	fx(&fake_v4, "checksum=block\n");
	size_t len = 3 * BLK + 100;
	unsigned char *d = pattern(len, 2);
	assert_int_equal(s3_store_create(&st, "c", err), 0);
	assert_int_equal(s3_store_write(&st, "c", 0, d, len, err), 0);
	F.o[0].data[2 * (BLK + 4) + 7] ^= 0x01; /* block 2, chunk 131079 */
	expect_range("c", 0, 2 * BLK, d);
	unsigned char buf[64];
	size_t n = 0;
	assert_int_equal(
	        s3_store_read(&st, "c", 2 * BLK - 10, buf, 20, &n, err),
	        STRATA_ECORRUPT);
	assert_int_equal(n, 0);
	assert_non_null(strstr(err, "p/c/00000000000000000000.crc"));
	assert_non_null(strstr(err, "fails its checksum"));
	assert_non_null(strstr(err, "131072..196608"));
	F.o[0].data[2 * (BLK + 4) + 7] ^= 0x01;
	F.o[0].data[BLK + 1] ^= 0x80; /* block 0's CRC */
	assert_int_equal(s3_store_read(&st, "c", 5, buf, 1, &n, err),
	                 STRATA_ECORRUPT);
	assert_non_null(strstr(err, "0..65536"));
	F.o[0].data[BLK + 1] ^= 0x80;
	expect_range("c", 0, len, d);
	/* Cut so that the last block keeps 1..4 bytes: no framed size. */
	F.o[0].len = 3 * (BLK + 4) + 2;
	struct strata_tier2_chunk_info info;
	assert_int_equal(s3_store_stat(&st, "c", &info, err), STRATA_ECORRUPT);
	assert_non_null(strstr(err, "no whole number of checksummed blocks"));
	char out[256] = "";
	assert_int_equal(s3_store_list(&st, "", count_cb, out, err), 0);
	assert_string_equal(out, "c=0;"); /* damaged: listed, length 0 */
	/* Cut inside the last block's data: its CRC no longer matches. */
	F.o[0].len = 3 * (BLK + 4) + 50;
	assert_int_equal(s3_store_stat(&st, "c", &info, err), 0);
	assert_int_equal(s3_store_read(&st, "c", 3 * BLK, buf, 10, &n, err),
	                 STRATA_ECORRUPT);
	free(d);
}

/* Objects of both formats read as one chunk; truncate rewrites the object
 * it cuts in that object's own format. */
static void test_s3_store_framed_mixed_with_plain(void **state)
{
	(void)state;
	fx(&fake_v4, "checksum=block\n");
	fput("p/m/00000000000000000000", "abc", 3); /* older Strata */
	assert_int_equal(s3_store_write(&st, "m", 3, "defg", 4, err), 0);
	assert_non_null(find("p/m/00000000000000000003.crc"));
	expect_chunk("m", "abcdefg");
	assert_int_equal(s3_store_truncate(&st, "m", 5, err), 0);
	expect_chunk("m", "abcde");
	assert_int_equal(find("p/m/00000000000000000003.crc")->len, 6);
	assert_int_equal(s3_store_truncate(&st, "m", 2, err), 0);
	assert_null(find("p/m/00000000000000000003.crc"));
	assert_int_equal(find("p/m/00000000000000000000")->len, 2);
	expect_chunk("m", "ab");
}

/* After checksum changes, the first write lands beside the empty first
 * object of the other format, then deletes it; a crash between the two
 * leaves a chunk that still reads, truncates and lists right. */
static void test_s3_store_framed_format_switch(void **state)
{
	(void)state;
	fx(&fake_v4, "checksum=block\n");
	fput("p/e/00000000000000000000", "", 0);
	assert_int_equal(s3_store_write(&st, "e", 0, "hello", 5, err), 0);
	assert_int_equal(F.n, 1);
	assert_string_equal(F.o[0].key, "p/e/00000000000000000000.crc");
	expect_chunk("e", "hello");
	/* The crash state the other way round: plain data, empty framed. */
	fput("p/f/00000000000000000000", "hi", 2);
	fput("p/f/00000000000000000000.crc", "", 0);
	expect_chunk("f", "hi");
	assert_int_equal(s3_store_write(&st, "f", 2, "!", 1, err), 0);
	expect_chunk("f", "hi!");
	char out[256] = "";
	assert_int_equal(s3_store_list(&st, "f", count_cb, out, err), 0);
	assert_string_equal(out, "f=3;");
	assert_int_equal(s3_store_truncate(&st, "f", 1, err), 0);
	expect_chunk("f", "h");
	assert_int_equal(s3_store_truncate(&st, "f", 0, err), 0);
	expect_chunk("f", "");
	assert_int_equal(s3_store_remove(&st, "f", err), 0);
	assert_int_equal(F.n, 1);
}

/* SigV4 concat into a framed object: a source object of whole blocks is
 * copied server side; the rest moves through the process, checked on the
 * way in and framed in parts of whole blocks; plain sources too. */
static void test_s3_store_framed_concat_multipart(void **state)
{
	(void)state;
	fx(&fake_v4, "checksum=block\n");
	unsigned char *d = pattern(4 * BLK, 3);
	assert_int_equal(s3_store_create(&st, "t", err), 0);
	assert_int_equal(s3_store_write(&st, "t", 0, d, 10, err), 0);
	assert_int_equal(s3_store_create(&st, "s1", err), 0);
	assert_int_equal(s3_store_write(&st, "s1", 0, d + 10, BLK, err), 0);
	fput("p/s2/00000000000000000000", d + 10 + BLK, 20); /* plain */
	assert_int_equal(s3_store_create(&st, "s3", err), 0);
	assert_int_equal(
	        s3_store_write(&st, "s3", 0, d + 30 + BLK, BLK + 70, err), 0);
	const char *srcs[] = {"s1", "s2", "s3"};
	assert_int_equal(s3_store_concat(&st, "t", srcs, 3, err), 0);
	assert_int_equal(F.calls[vidx("mpcopy")], 1); /* s1 */
	struct fobj *o = find("p/t/00000000000000000010.crc");
	assert_non_null(o);
	assert_int_equal(o->len, s3_frame_size(2 * BLK + 90));
	expect_range("t", 0, 2 * BLK + 100, d);
	expect_range("t", BLK + 5, 100, d + BLK + 5);
	assert_null(find("p/s2/00000000000000000000"));
	free(d);
}

/* A damaged source block moved through the process fails the concat,
 * which changes nothing; one copied server side keeps its CRC, so the
 * damage is caught when the target is read. SigV2 concat copies framed
 * objects whole, keeping ".crc". */
static void test_s3_store_framed_concat_checks_and_copies(void **state)
{
	(void)state;
	fx(&fake_v4, "checksum=block\n");
	put_chunk("t", "ab");
	put_chunk("s0", "xy"); /* small: s then moves through the process */
	put_chunk("s", "cdefgh");
	find("p/s/00000000000000000000.crc")->data[3] ^= 0x01;
	const char *two[] = {"s0", "s"};
	assert_int_equal(s3_store_concat(&st, "t", two, 2, err),
	                 STRATA_ECORRUPT);
	assert_non_null(strstr(err, "fails its checksum"));
	expect_chunk("t", "ab");
	expect_chunk("s0", "xy");
	const char *srcs[] = {"s"};
	assert_int_equal(s3_store_concat(&st, "t", srcs, 1, err), 0);
	assert_int_equal(F.calls[vidx("mpcopy")], 1);
	char buf[8];
	size_t n = 0;
	assert_int_equal(s3_store_read(&st, "t", 0, buf, 2, &n, err), 0);
	assert_int_equal(s3_store_read(&st, "t", 2, buf, 1, &n, err),
	                 STRATA_ECORRUPT);
	teardown(NULL);
	fx(&fake_v2, "checksum=block\n");
	put_chunk("t", "ab");
	put_chunk("s", "cdefgh");
	assert_int_equal(s3_store_concat(&st, "t", srcs, 1, err), 0);
	assert_non_null(find("p/t/00000000000000000002.crc"));
	expect_chunk("t", "abcdefgh");
	find("p/t/00000000000000000002.crc")->data[0] ^= 0x01;
	assert_int_equal(s3_store_read(&st, "t", 0, buf, 2, &n, err), 0);
	assert_int_equal(s3_store_read(&st, "t", 2, buf, 1, &n, err),
	                 STRATA_ECORRUPT);
}

/* Out of memory anywhere in a write, read or list is STRATA_ENOMEM, no
 * crash, in both formats. */
static void test_s3_store_oom(void **state)
{
	(void)state;
	const char *modes[] = {"", "checksum=block\n"};
	for (size_t m = 0; m < 2; m++) {
		if (m > 0) {
			teardown(NULL);
		}
		fx(&fake_v4, modes[m]);
		put_chunk("o", "abc");
		for (long n = 1; n < 20; n++) {
			char out[256] = "";
			char buf[8];
			size_t got = 0;
			oom_install(n);
			int rc = s3_store_list(&st, "", count_cb, out, err);
			int rc2 = s3_store_write(&st, "o", 3, "d", 1, err);
			int rc3 = s3_store_read(&st, "o", 1, buf, 3, &got, err);
			oom_uninstall();
			assert_true(rc == 0 || rc == STRATA_ENOMEM);
			assert_true(rc2 == 0 || rc2 == STRATA_ENOMEM);
			assert_true(rc3 == 0 || rc3 == STRATA_ENOMEM);
			if (rc2 == 0) {
				assert_int_equal(
				        s3_store_truncate(&st, "o", 3, err), 0);
			}
		}
		expect_chunk("o", "abc");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_teardown(f, teardown)
	        T(test_s3_store_layout_one_object_per_write),
	        T(test_s3_store_retry_throttling_then_success),
	        T(test_s3_store_retry_bounded_by_count),
	        T(test_s3_store_retry_bounded_by_time),
	        T(test_s3_store_permanent_errors_not_retried),
	        T(test_s3_store_damaged_chunk_is_corrupt),
	        T(test_s3_store_failed_write_is_undone),
	        T(test_s3_store_truncate_from_the_end),
	        T(test_s3_store_list_pages_and_folds),
	        T(test_s3_store_concat_multipart_min_part),
	        T(test_s3_store_concat_without_part_copy),
	        T(test_s3_store_concat_without_ranged_copy),
	        T(test_s3_store_concat_complete_lost_reply),
	        T(test_s3_store_concat_failure_changes_nothing),
	        T(test_s3_store_concat_copy_undone_on_error),
	        T(test_s3_store_framed_layout),
	        T(test_s3_store_framed_damage_is_corrupt),
	        T(test_s3_store_framed_mixed_with_plain),
	        T(test_s3_store_framed_format_switch),
	        T(test_s3_store_framed_concat_multipart),
	        T(test_s3_store_framed_concat_checks_and_copies),
	        T(test_s3_store_oom),
#undef T
	};
	return cmocka_run_group_tests_name("s3_store", tests, NULL, NULL);
}
