/* Unit tests for segmentstore/container.c: single-replica containers on a
 * real Raft host over 127.0.0.1 (and one 3-replica group in-process):
 * append/dedup/read round trips, validation, group commit, long-poll,
 * back-pressure, tier-2 flushing and reads, tier-2 failure and resume,
 * restart, fencing on leader change. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/metrics.h"
#include "common/plugin.h"
#include "common/process.h"
#include "raft/metrics.h"
#include "segmentstore/container.h"
#include "segmentstore/storage_writer.h"
#include "strata/codec.h"
#include "strata/error.h"

/* ---- synchronous calls ------------------------------------------------ */

struct call {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int code;
	struct container_reply reply; /* data and message copied below */
	uint8_t *data;
	char message[512];
};

static void call_done(void *arg, int code, const struct container_reply *r)
{
	struct call *c = arg;
	pthread_mutex_lock(&c->lock);
	c->code = code;
	c->reply = *r;
	c->data = NULL;
	if (r->data_len > 0) {
		c->data = malloc(r->data_len);
		memcpy(c->data, r->data, r->data_len);
	}
	c->reply.data = c->data;
	snprintf(c->message, sizeof(c->message), "%s",
	         r->message ? r->message : "");
	c->reply.message = c->message;
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void call_init(struct call *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
}

/* Wait up to ms for the call; false on timeout. */
static bool call_wait(struct call *c, unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->lock);
	while (!c->done) {
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) != 0) {
			break;
		}
	}
	bool done = c->done;
	pthread_mutex_unlock(&c->lock);
	return done;
}

static void call_free(struct call *c)
{
	free(c->data);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
}

/* Submit req and wait for its answer (10 s at most); returns the code. */
static int run(struct container *ct, const struct container_request *req,
               struct call *c)
{
	call_init(c);
	assert_int_equal(container_submit(ct, req, call_done, c), 0);
	if (!call_wait(c, 10000)) {
		fail_msg("request op %d got no answer", req->op);
	}
	return c->code;
}

/* ---- requests --------------------------------------------------------- */

static int op_simple(struct container *ct, enum container_op op,
                     const char *seg, struct container_reply *out)
{
	struct container_request r = {.op = op, .segment = seg};
	struct call c;
	int rv = run(ct, &r, &c);
	if (out != NULL) {
		*out = c.reply;
		out->data = NULL;
		out->message = NULL;
	}
	call_free(&c);
	return rv;
}

static int create(struct container *ct, const char *seg)
{
	return op_simple(ct, CONTAINER_CREATE, seg, NULL);
}

/* Frame count events "<prefix><i>" into buf; returns bytes. */
static size_t frame(uint8_t *buf, const char *prefix, int64_t first,
                    uint32_t count)
{
	size_t off = 0;
	for (uint32_t i = 0; i < count; i++) {
		char ev[64];
		int n = snprintf(ev, sizeof(ev), "%s%lld", prefix,
		                 (long long)(first + i));
		buf[off] = (uint8_t)n;
		buf[off + 1] = buf[off + 2] = buf[off + 3] = 0;
		memcpy(buf + off + 4, ev, (size_t)n);
		off += 4 + (size_t)n;
	}
	return off;
}

static const uint8_t W1[16] = {1, 2,  3,  4,  5,  6,  7,  8,
                               9, 10, 11, 12, 13, 14, 15, 16};

static int append(struct container *ct, const char *seg, int64_t first,
                  uint32_t count, struct container_reply *out)
{
	uint8_t buf[4096];
	size_t n = frame(buf, "event-", first, count);
	struct container_request r = {.op = CONTAINER_APPEND,
	                              .segment = seg,
	                              .first_event_number = first,
	                              .event_count = count,
	                              .data = buf,
	                              .len = n,
	                              .expected_offset = -1};
	memcpy(r.writer_id, W1, 16);
	struct call c;
	int rv = run(ct, &r, &c);
	if (out != NULL) {
		*out = c.reply;
		out->data = NULL;
		out->message = NULL;
	}
	call_free(&c);
	return rv;
}

/* Read everything of seg from offset into buf (cap bytes); returns the
 * bytes read. */
static size_t read_all(struct container *ct, const char *seg, uint64_t off,
                       uint8_t *buf, size_t cap)
{
	size_t got = 0;
	for (int i = 0; i < 10000; i++) {
		struct container_request r = {.op = CONTAINER_READ,
		                              .segment = seg,
		                              .offset = off + got,
		                              .max_bytes = 1000};
		struct call c;
		assert_int_equal(run(ct, &r, &c), 0);
		assert_true(got + c.reply.data_len <= cap);
		if (c.reply.data_len > 0) {
			memcpy(buf + got, c.data, c.reply.data_len);
		}
		got += c.reply.data_len;
		bool tail = c.reply.at_tail;
		call_free(&c);
		if (tail) {
			break;
		}
	}
	return got;
}

/* ---- rig -------------------------------------------------------------- */

struct rig {
	char base[64];
	struct raft_host *host;
	char addr[64];
	struct raft_group_peer peer;
	struct container *ct;
	struct container_config cfg;
	char dir[128];
	struct tier2 *t2;
	char fail_file[128];
};

static bool wait_ready(struct container *ct, unsigned ms)
{
	for (unsigned t = 0; t < ms; t += 5) {
		struct container_status st;
		container_status(ct, &st);
		if (st.ready) {
			return true;
		}
		usleep(5000);
	}
	return false;
}

static void rig_start(struct rig *r)
{
	char errmsg[STRATA_ERRMSG_SIZE];
	int rv = container_start(r->host, &r->cfg, &r->ct, errmsg);
	if (rv != 0) {
		fail_msg("container_start: %s", errmsg);
	}
	assert_true(wait_ready(r->ct, 10000));
}

/* A one-replica container; tier2 plugin "mem", "faulty" or NULL. */
static struct rig *rig_new(const char *plugin,
                           const struct container_config *tmpl)
{
	char errmsg[STRATA_ERRMSG_SIZE];
	struct rig *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	snprintf(r->base, sizeof(r->base), "/tmp/strata-ct-XXXXXX");
	assert_non_null(mkdtemp(r->base));
	struct raft_host_config hc = {.bind_address = "127.0.0.1:0"};
	assert_int_equal(raft_host_new(&hc, &r->host, errmsg), 0);
	snprintf(r->addr, sizeof(r->addr), "127.0.0.1:%u",
	         raft_host_port(r->host));
	r->peer.id = 1;
	r->peer.address = r->addr;
	if (plugin != NULL) {
		char config[256];
		snprintf(r->fail_file, sizeof(r->fail_file), "%s/fail",
		         r->base);
		snprintf(config, sizeof(config), "parent=mem\nfail_file=%s",
		         r->fail_file);
		bool faulty = strcmp(plugin, "faulty") == 0;
		int rv = tier2_load_open(plugin, NULL, faulty ? config : NULL,
		                         &r->t2, errmsg);
		if (rv != 0) {
			fail_msg("tier2: %s", errmsg);
		}
	}
	if (tmpl != NULL) {
		r->cfg = *tmpl;
	}
	snprintf(r->dir, sizeof(r->dir), "%s/c3", r->base);
	r->cfg.id = 3;
	r->cfg.node_id = 1;
	r->cfg.data_dir = r->dir;
	r->cfg.peers = &r->peer;
	r->cfg.n_peers = 1;
	r->cfg.election_ms = 200;
	r->cfg.heartbeat_ms = 40;
	r->cfg.tier2 = r->t2;
	rig_start(r);
	return r;
}

static void rig_free(struct rig *r)
{
	if (r->ct != NULL) {
		container_stop(r->ct);
	}
	raft_host_free(r->host);
	tier2_close(r->t2);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->base);
	assert_int_equal(system(cmd), 0);
	free(r);
}

static void set_fail(struct rig *r, bool on)
{
	if (on) {
		FILE *f = fopen(r->fail_file, "w");
		assert_non_null(f);
		fclose(f);
	} else {
		unlink(r->fail_file);
	}
}

/* ---- tests ------------------------------------------------------------ */

/* Create, append, read back, info, setup-append: one round trip each. */
static void test_append_read_roundtrip(void **state)
{
	(void)state;
	struct rig *r = rig_new(NULL, NULL);
	struct container_reply rep;
	assert_int_equal(create(r->ct, "s/t/0.#epoch.0"), 0);
	assert_int_equal(create(r->ct, "s/t/0.#epoch.0"), STRATA_EEXIST);
	struct container_request cr = {.op = CONTAINER_CREATE,
	                               .segment = "s/t/0.#epoch.0",
	                               .idempotent = true};
	struct call c;
	assert_int_equal(run(r->ct, &cr, &c), 0);
	call_free(&c);
	struct container_request su = {.op = CONTAINER_SETUP_APPEND,
	                               .segment = "s/t/0.#epoch.0"};
	memcpy(su.writer_id, W1, 16);
	assert_int_equal(run(r->ct, &su, &c), 0);
	assert_int_equal(c.reply.last_event_number, -1);
	call_free(&c);
	assert_int_equal(append(r->ct, "s/t/0.#epoch.0", 0, 3, &rep), 0);
	assert_int_equal(rep.offset, 0);
	assert_int_equal(rep.last_event_number, 2);
	assert_false(rep.duplicate);
	uint64_t len1 = rep.length;
	assert_int_equal(append(r->ct, "s/t/0.#epoch.0", 3, 2, &rep), 0);
	assert_int_equal(rep.offset, len1);
	assert_int_equal(rep.last_event_number, 4);
	uint8_t expect[4096], got[4096];
	size_t n = frame(expect, "event-", 0, 5);
	assert_int_equal(rep.length, n);
	assert_int_equal(read_all(r->ct, "s/t/0.#epoch.0", 0, got, sizeof(got)),
	                 n);
	assert_memory_equal(got, expect, n);
	assert_int_equal(
	        op_simple(r->ct, CONTAINER_INFO, "s/t/0.#epoch.0", &rep), 0);
	assert_int_equal(rep.length, n);
	assert_false(rep.sealed);
	assert_int_equal(run(r->ct, &su, &c), 0);
	assert_int_equal(c.reply.last_event_number, 4);
	assert_int_equal(c.reply.length, n);
	call_free(&c);
	struct container_status st;
	container_status(r->ct, &st);
	assert_int_equal(st.role, RAFT_GROUP_LEADER);
	assert_int_equal(st.segments, 1);
	assert_int_equal(st.unflushed_bytes, n);
	assert_int_equal(st.leader_id, 1);
	rig_free(r);
}

/* A resent block is acknowledged as a duplicate; a gap is refused. */
static void test_append_dedup(void **state)
{
	(void)state;
	struct rig *r = rig_new(NULL, NULL);
	struct container_reply rep;
	assert_int_equal(create(r->ct, "d"), 0);
	assert_int_equal(append(r->ct, "d", 0, 2, &rep), 0);
	uint64_t len = rep.length;
	assert_int_equal(append(r->ct, "d", 0, 2, &rep), 0);
	assert_true(rep.duplicate);
	assert_int_equal(rep.offset, len);
	assert_int_equal(rep.last_event_number, 1);
	assert_int_equal(append(r->ct, "d", 5, 1, &rep), STRATA_EBADEVENTNUM);
	assert_int_equal(rep.last_event_number, 1);
	assert_int_equal(op_simple(r->ct, CONTAINER_INFO, "d", &rep), 0);
	assert_int_equal(rep.length, len);
	rig_free(r);
}

/* Bad framing, counts, sizes, unknown and sealed segments are refused
 * before Raft, with clear codes and messages. */
static void test_append_validation(void **state)
{
	(void)state;
	struct container_config cfg = {.max_event_bytes = 100};
	struct rig *r = rig_new(NULL, &cfg);
	struct call c;
	assert_int_equal(create(r->ct, "v"), 0);
	uint8_t buf[512];
	size_t n = frame(buf, "e", 0, 2);
	struct container_request a = {.op = CONTAINER_APPEND,
	                              .segment = "v",
	                              .event_count = 3,
	                              .data = buf,
	                              .len = n,
	                              .expected_offset = -1};
	assert_int_equal(run(r->ct, &a, &c), STRATA_EPROTO);
	assert_non_null(strstr(c.message, "event_count"));
	call_free(&c);
	a.event_count = 2;
	a.len = n - 1; /* cut the last event */
	assert_int_equal(run(r->ct, &a, &c), STRATA_EPROTO);
	call_free(&c);
	memset(buf, 0, 8);
	buf[0] = 200; /* one event of 200 bytes > 100 */
	a.len = 204;
	a.event_count = 1;
	assert_int_equal(run(r->ct, &a, &c), STRATA_ETOOBIG);
	call_free(&c);
	/* Encoded events (strata/codec.h): the marked length counts against
	 * the limit without its flag bit; a codec header is required. */
	memset(buf, 0, 64);
	buf[0] = 20;
	buf[3] = 0x80; /* 20 bytes, encoded */
	buf[4] = STRATA_CODEC_PROTOCOL;
	buf[5] = STRATA_CODEC_ID_ZSTD;
	a.len = 24;
	a.event_count = 1;
	a.first_event_number = 0;
	assert_int_equal(run(r->ct, &a, &c), 0);
	assert_false(c.reply.duplicate);
	call_free(&c);
	a.first_event_number = 1;
	buf[4] = 2; /* not protocol 1 */
	assert_int_equal(run(r->ct, &a, &c), STRATA_EPROTO);
	assert_non_null(strstr(c.message, "marked encoded"));
	call_free(&c);
	buf[0] = 5; /* shorter than a codec header */
	buf[4] = STRATA_CODEC_PROTOCOL;
	a.len = 9;
	assert_int_equal(run(r->ct, &a, &c), STRATA_EPROTO);
	call_free(&c);
	buf[0] = 200; /* encoded, 200 bytes > 100 */
	a.len = 204;
	assert_int_equal(run(r->ct, &a, &c), STRATA_ETOOBIG);
	call_free(&c);
	n = frame(buf, "e", 1, 1);
	a.len = n;
	a.first_event_number = -1;
	assert_int_equal(run(r->ct, &a, &c), STRATA_EINVAL);
	call_free(&c);
	a.first_event_number = 1;
	a.segment = "nope";
	assert_int_equal(run(r->ct, &a, &c), STRATA_ENOENT);
	assert_non_null(strstr(c.message, "nope"));
	call_free(&c);
	a.segment = "v";
	assert_int_equal(run(r->ct, &a, &c), 0);
	call_free(&c);
	assert_int_equal(op_simple(r->ct, CONTAINER_SEAL, "v", NULL), 0);
	/* A retry of an appended block is still a duplicate after the seal;
	 * a new one is refused. */
	assert_int_equal(run(r->ct, &a, &c), 0);
	assert_true(c.reply.duplicate);
	call_free(&c);
	n = frame(buf, "e", 2, 1);
	a.first_event_number = 2;
	a.len = n;
	assert_int_equal(run(r->ct, &a, &c), STRATA_ESEALED);
	call_free(&c);
	/* Conditional append at a wrong offset (a writer new to "w" starts
	 * at event 0). */
	assert_int_equal(create(r->ct, "w"), 0);
	a.segment = "w";
	a.first_event_number = 0;
	a.expected_offset = 5;
	assert_int_equal(run(r->ct, &a, &c), STRATA_EBADOFFSET);
	call_free(&c);
	a.expected_offset = 0;
	assert_int_equal(run(r->ct, &a, &c), 0);
	call_free(&c);
	rig_free(r);
}

struct many {
	atomic_int done;
	atomic_int ok;
	atomic_int dup;
};

static void many_done(void *arg, int code, const struct container_reply *rep)
{
	struct many *m = arg;
	if (code == 0) {
		atomic_fetch_add(&m->ok, 1);
		if (rep->duplicate) {
			atomic_fetch_add(&m->dup, 1);
		}
	}
	atomic_fetch_add(&m->done, 1);
}

/* Many appends in flight are grouped into few Raft entries and all acked
 * in order. */
static void test_group_commit(void **state)
{
	(void)state;
	struct rig *r = rig_new(NULL, NULL);
	assert_int_equal(create(r->ct, "g"), 0);
	struct raft_group_metrics m0, m1;
	raft_group_metrics(container_raft_group(r->ct), &m0);
	enum { N = 2000 };
	static uint8_t bufs[N][64];
	static size_t lens[N];
	struct many m;
	atomic_init(&m.done, 0);
	atomic_init(&m.ok, 0);
	atomic_init(&m.dup, 0);
	for (int i = 0; i < N; i++) {
		lens[i] = frame(bufs[i], "x", i, 1);
		struct container_request a = {.op = CONTAINER_APPEND,
		                              .segment = "g",
		                              .first_event_number = i,
		                              .event_count = 1,
		                              .data = bufs[i],
		                              .len = lens[i],
		                              .expected_offset = -1};
		memcpy(a.writer_id, W1, 16);
		assert_int_equal(container_submit(r->ct, &a, many_done, &m), 0);
	}
	for (int t = 0; t < 20000 && atomic_load(&m.done) < N; t++) {
		usleep(1000);
	}
	assert_int_equal(atomic_load(&m.done), N);
	assert_int_equal(atomic_load(&m.ok), N);
	assert_int_equal(atomic_load(&m.dup), 0);
	raft_group_metrics(container_raft_group(r->ct), &m1);
	uint64_t entries = m1.applied_entries - m0.applied_entries;
	print_message("%d appends in %llu entries\n", N,
	              (unsigned long long)entries);
	assert_true(entries < N / 10);
	struct container_reply rep;
	assert_int_equal(op_simple(r->ct, CONTAINER_INFO, "g", &rep), 0);
	size_t total = 0;
	for (int i = 0; i < N; i++) {
		total += lens[i];
	}
	assert_int_equal(rep.length, total);
	rig_free(r);
}

/* A read at the tail waits until an append arrives; another times out
 * with no data; a sealed segment answers end of segment. */
static void test_read_long_poll(void **state)
{
	(void)state;
	struct rig *r = rig_new(NULL, NULL);
	assert_int_equal(create(r->ct, "p"), 0);
	struct container_request rd = {.op = CONTAINER_READ,
	                               .segment = "p",
	                               .offset = 0,
	                               .max_bytes = 100,
	                               .wait_ms = 8000};
	struct call c;
	call_init(&c);
	assert_int_equal(container_submit(r->ct, &rd, call_done, &c), 0);
	assert_false(call_wait(&c, 100));
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(append(r->ct, "p", 0, 1, NULL), 0);
	assert_true(call_wait(&c, 5000));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(c.code, 0);
	assert_int_equal(c.reply.data_len, 11); /* 4 + "event-0" */
	assert_true(c.reply.at_tail);
	assert_true(t1.tv_sec - t0.tv_sec < 3);
	call_free(&c);
	/* Timeout. */
	rd.offset = 11;
	rd.wait_ms = 100;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(run(r->ct, &rd, &c), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	          (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 90);
	assert_int_equal(c.reply.data_len, 0);
	assert_true(c.reply.at_tail);
	assert_false(c.reply.end_of_segment);
	call_free(&c);
	/* A long-poll is answered by the seal with end of segment. */
	rd.wait_ms = 8000;
	call_init(&c);
	assert_int_equal(container_submit(r->ct, &rd, call_done, &c), 0);
	assert_false(call_wait(&c, 50));
	assert_int_equal(op_simple(r->ct, CONTAINER_SEAL, "p", NULL), 0);
	assert_true(call_wait(&c, 5000));
	assert_int_equal(c.code, 0);
	assert_true(c.reply.end_of_segment);
	call_free(&c);
	/* Beyond the end. */
	rd.offset = 12;
	assert_int_equal(run(r->ct, &rd, &c), STRATA_ERANGE);
	call_free(&c);
	/* A pending long-poll is answered at stop. */
	assert_int_equal(create(r->ct, "q"), 0);
	rd.segment = "q";
	rd.offset = 0;
	call_init(&c);
	assert_int_equal(container_submit(r->ct, &rd, call_done, &c), 0);
	assert_false(call_wait(&c, 50));
	container_stop(r->ct);
	r->ct = NULL;
	assert_true(call_wait(&c, 0));
	assert_int_equal(c.code, STRATA_ESHUTDOWN);
	call_free(&c);
	rig_free(r);
}

/* Without tier 2 the unflushed budget fills up: appends get EAGAIN. */
static void test_back_pressure(void **state)
{
	(void)state;
	struct container_config cfg = {.unflushed_budget = 200};
	struct rig *r = rig_new(NULL, &cfg);
	assert_int_equal(create(r->ct, "b"), 0);
	int rv = 0;
	int64_t ev = 0;
	for (; ev < 100; ev++) {
		struct call c;
		uint8_t buf[64];
		struct container_request a = {
		        .op = CONTAINER_APPEND,
		        .segment = "b",
		        .first_event_number = ev,
		        .event_count = 1,
		        .data = buf,
		        .len = frame(buf, "event-", ev, 1),
		        .expected_offset = -1};
		rv = run(r->ct, &a, &c);
		if (rv == STRATA_EAGAIN) {
			assert_non_null(strstr(c.message, "retry later"));
		}
		call_free(&c);
		if (rv != 0) {
			break;
		}
	}
	assert_int_equal(rv, STRATA_EAGAIN);
	assert_true(ev > 5 && ev < 30);
	struct container_status st;
	container_status(r->ct, &st);
	assert_true(st.unflushed_bytes <= 200);
	rig_free(r);
}

/* With tier 2, data is flushed into chunks, the tail leaves memory, and
 * reads are served from tier 2; SEAL answers once flushed. */
static void test_tier2_flush_and_read(void **state)
{
	(void)state;
	struct container_config cfg = {.flush_bytes = 100,
	                               .cache_budget = 1 << 16};
	struct rig *r = rig_new("mem", &cfg);
	assert_int_equal(create(r->ct, "f"), 0);
	for (int64_t ev = 0; ev < 200; ev += 10) {
		assert_int_equal(append(r->ct, "f", ev, 10, NULL), 0);
	}
	struct container_reply rep;
	assert_int_equal(op_simple(r->ct, CONTAINER_SEAL, "f", &rep), 0);
	assert_true(rep.sealed);
	assert_int_equal(rep.flushed_length, rep.length);
	struct container_status st;
	container_status(r->ct, &st);
	assert_int_equal(st.unflushed_bytes, 0);
	assert_false(st.tier2_degraded);
	static uint8_t expect[8192], got[8192];
	size_t n = 0;
	for (int64_t ev = 0; ev < 200; ev += 10) {
		n += frame(expect + n, "event-", ev, 10);
	}
	assert_int_equal(rep.length, n);
	assert_int_equal(read_all(r->ct, "f", 0, got, sizeof(got)), n);
	assert_memory_equal(got, expect, n);
	/* Again, now from the cache. */
	assert_int_equal(read_all(r->ct, "f", 0, got, sizeof(got)), n);
	assert_memory_equal(got, expect, n);
	container_status(r->ct, &st);
	assert_true(st.cache_bytes > 0);
	/* Truncation: reads below the start fail. */
	struct container_request tr = {
	        .op = CONTAINER_TRUNCATE, .segment = "f", .offset = 100};
	struct call c;
	assert_int_equal(run(r->ct, &tr, &c), 0);
	assert_int_equal(c.reply.start_offset, 100);
	call_free(&c);
	struct container_request rd = {.op = CONTAINER_READ,
	                               .segment = "f",
	                               .offset = 50,
	                               .max_bytes = 10};
	assert_int_equal(run(r->ct, &rd, &c), STRATA_ETRUNCATED);
	assert_int_equal(c.reply.start_offset, 100);
	call_free(&c);
	rig_free(r);
}

/* Chunk names in tier 2 of container 3 (at most max), and the highest
 * owner generation among them. */
struct chunk_list {
	char names[64][128];
	size_t n;
	uint64_t max_gen;
};

static int list_cb(void *arg, const char *name,
                   const struct strata_tier2_chunk_info *info)
{
	struct chunk_list *l = arg;
	uint64_t gen = 0;
	(void)info;
	if (storage_writer_chunk_gen(3, name, &gen) && gen > l->max_gen) {
		l->max_gen = gen;
	}
	if (l->n < 64) {
		snprintf(l->names[l->n++], sizeof(l->names[0]), "%s", name);
	}
	return 0;
}

static void list_chunks(struct rig *r, struct chunk_list *l)
{
	char errmsg[STRATA_ERRMSG_SIZE];
	memset(l, 0, sizeof(*l));
	assert_int_equal(tier2_list(r->t2, "c3/", list_cb, l, errmsg), 0);
}

static bool has_chunk(const struct chunk_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->names[i], name) == 0) {
			return true;
		}
	}
	return false;
}

/* Restart on the same directory keeps every acknowledged append, with and
 * without tier 2 chunks. The restarted owner names its chunks after a new
 * generation (the single-replica group keeps its term, so the term alone
 * would repeat names) and its takeover sweep deletes orphan chunks of
 * older generations, keeping referenced and foreign ones. */
static void test_restart_keeps_acked(void **state)
{
	(void)state;
	struct container_config cfg = {.flush_bytes = 300,
	                               .segment_bytes = 1 << 20,
	                               .max_append_bytes = 256 << 10};
	struct rig *r = rig_new("mem", &cfg);
	assert_int_equal(create(r->ct, "r"), 0);
	int64_t ev = 0;
	for (; ev < 300; ev += 5) {
		assert_int_equal(append(r->ct, "r", ev, 5, NULL), 0);
	}
	static uint8_t before[16384], after[16384];
	size_t n = read_all(r->ct, "r", 0, before, sizeof(before));
	struct container_status st0, st1;
	container_status(r->ct, &st0);
	struct chunk_list l0, l1;
	for (int t = 0; t < 500; t++) {
		list_chunks(r, &l0);
		if (l0.n > 0) {
			break;
		}
		usleep(10000);
	}
	assert_true(l0.n > 0);
	assert_true(l0.max_gen > 0);
	container_stop(r->ct);
	r->ct = NULL;
	/* Orphans as a crashed owner leaves them (FLUSH never committed),
	 * and a chunk this container does not name. */
	char errmsg[STRATA_ERRMSG_SIZE];
	assert_int_equal(tier2_create(r->t2, "c3/s1/t1-g1-o0-99", errmsg), 0);
	assert_int_equal(
	        tier2_write(r->t2, "c3/s1/t1-g1-o0-99", 0, "zz", 2, errmsg), 0);
	assert_int_equal(tier2_create(r->t2, "c3/not-a-chunk", errmsg), 0);
	rig_start(r);
	container_status(r->ct, &st1);
	assert_true(st1.term >= st0.term);
	assert_int_equal(read_all(r->ct, "r", 0, after, sizeof(after)), n);
	assert_memory_equal(before, after, n);
	/* The writer continues where it was. */
	struct container_request su = {.op = CONTAINER_SETUP_APPEND,
	                               .segment = "r"};
	memcpy(su.writer_id, W1, 16);
	struct call c;
	assert_int_equal(run(r->ct, &su, &c), 0);
	assert_int_equal(c.reply.last_event_number, ev - 1);
	call_free(&c);
	for (int k = 0; k < 20; k++, ev++) {
		assert_int_equal(append(r->ct, "r", ev, 1, NULL), 0);
	}
	/* SEAL answers once everything is in tier 2. */
	struct container_reply rep;
	assert_int_equal(op_simple(r->ct, CONTAINER_SEAL, "r", &rep), 0);
	assert_int_equal(rep.flushed_length, rep.length);
	list_chunks(r, &l1);
	assert_true(l1.max_gen > l0.max_gen);
	assert_false(has_chunk(&l1, "c3/s1/t1-g1-o0-99"));
	assert_true(has_chunk(&l1, "c3/not-a-chunk"));
	for (size_t i = 0; i < l0.n; i++) {
		assert_true(has_chunk(&l1, l0.names[i]));
	}
	/* Every byte, old and new, reads back through tier 2. */
	size_t m = read_all(r->ct, "r", 0, after, sizeof(after));
	assert_int_equal(m, rep.length);
	assert_memory_equal(before, after, n);
	rig_free(r);
}

/* Value of the sample line starting with `series` (name and labels) in
 * the rendering of reg; -1 when absent. */
static double sample(struct metrics_registry *reg, const char *series)
{
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(metrics_render(reg, &b), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	double v = -1;
	size_t n = strlen(series);
	for (const char *p = (const char *)b.data; p != NULL && *p != '\0';) {
		if (strncmp(p, series, n) == 0 && p[n] == ' ') {
			v = strtod(p + n + 1, NULL);
			break;
		}
		p = strchr(p, '\n');
		p = p != NULL ? p + 1 : NULL;
	}
	buf_close(&b);
	return v;
}

/* With a registry, tier-2 writes and reads, appends and the Raft group
 * are exported per container. */
static void test_metrics_exported(void **state)
{
	(void)state;
	struct metrics_registry *reg = NULL;
	assert_int_equal(metrics_registry_new(&reg), 0);
	struct container_config cfg = {
	        .flush_bytes = 100, .cache_budget = 1 << 16, .metrics = reg};
	struct rig *r = rig_new("mem", &cfg);
	assert_int_equal(create(r->ct, "x"), 0);
	for (int64_t ev = 0; ev < 100; ev += 10) {
		assert_int_equal(append(r->ct, "x", ev, 10, NULL), 0);
	}
	struct container_reply rep;
	assert_int_equal(op_simple(r->ct, CONTAINER_SEAL, "x", &rep), 0);
	static uint8_t got[8192];
	assert_int_equal(read_all(r->ct, "x", 0, got, sizeof(got)), rep.length);
	const char *l = "{container=\"3\"}";
	char name[128];
	static const char *const positive[] = {
	        "strata_segmentstore_tier2_writes_total",
	        "strata_segmentstore_tier2_written_bytes_total",
	        "strata_segmentstore_tier2_write_seconds_count",
	        "strata_segmentstore_tier2_reads_total",
	        "strata_segmentstore_tier2_read_bytes_total",
	        "strata_segmentstore_tier2_read_seconds_count",
	        "strata_segmentstore_container_appends_total",
	        "strata_segmentstore_container_appended_bytes_total",
	        "strata_segmentstore_container_append_seconds_count",
	        "strata_raft_term",
	        "strata_raft_applied_index",
	};
	for (size_t i = 0; i < sizeof(positive) / sizeof(positive[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", positive[i], l);
		double v = sample(reg, name);
		if (v <= 0) {
			fail_msg("%s is %g", name, v);
		}
	}
	snprintf(name, sizeof(name), "%s%s",
	         "strata_segmentstore_container_appends_total", l);
	assert_true(sample(reg, name) == 10);
	snprintf(name, sizeof(name), "%s%s",
	         "strata_segmentstore_tier2_written_bytes_total", l);
	assert_true(sample(reg, name) >= (double)rep.length);
	snprintf(name, sizeof(name), "%s%s",
	         "strata_segmentstore_tier2_write_errors_total", l);
	assert_true(sample(reg, name) == 0);
	rig_free(r);
	metrics_registry_free(reg);
	raft_metrics_forget(reg);
}

/* Tier 2 failing: appends continue into Tier 1 until the budget, then
 * EAGAIN, status degraded; when tier 2 is back flushing resumes by itself
 * and no acknowledged byte is lost. */
static void test_tier2_outage_and_resume(void **state)
{
	(void)state;
	struct container_config cfg = {.flush_bytes = 50,
	                               .unflushed_budget = 2000};
	struct rig *r = rig_new("faulty", &cfg);
	assert_int_equal(create(r->ct, "o"), 0);
	set_fail(r, true);
	static uint8_t expect[65536], got[65536];
	size_t n = 0;
	int64_t ev = 0;
	int rv = 0;
	for (; ev < 1000; ev++) {
		struct call c;
		uint8_t buf[64];
		size_t len = frame(buf, "event-", ev, 1);
		struct container_request a = {.op = CONTAINER_APPEND,
		                              .segment = "o",
		                              .first_event_number = ev,
		                              .event_count = 1,
		                              .data = buf,
		                              .len = len,
		                              .expected_offset = -1};
		memcpy(a.writer_id, W1, 16);
		rv = run(r->ct, &a, &c);
		call_free(&c);
		if (rv != 0) {
			break;
		}
		memcpy(expect + n, buf, len);
		n += len;
	}
	assert_int_equal(rv, STRATA_EAGAIN);
	struct container_status st;
	container_status(r->ct, &st);
	assert_true(st.tier2_degraded);
	assert_true(st.unflushed_bytes > 1000);
	/* Reads of the tail still work. */
	assert_int_equal(read_all(r->ct, "o", 0, got, sizeof(got)), n);
	assert_memory_equal(got, expect, n);
	set_fail(r, false);
	for (int t = 0; t < 1000; t++) {
		container_status(r->ct, &st);
		if (!st.tier2_degraded && st.unflushed_bytes < 100) {
			break;
		}
		usleep(10000);
	}
	assert_false(st.tier2_degraded);
	assert_true(st.unflushed_bytes < 100);
	/* Appends are accepted again. */
	for (int k = 0; k < 20; k++, ev++) {
		uint8_t buf[64];
		size_t len = frame(buf, "event-", ev, 1);
		assert_int_equal(append(r->ct, "o", ev, 1, NULL), 0);
		memcpy(expect + n, buf, len);
		n += len;
	}
	assert_int_equal(read_all(r->ct, "o", 0, got, sizeof(got)), n);
	assert_memory_equal(got, expect, n);
	rig_free(r);
}

/* Attributes, merge and delete. */
static void test_attrs_merge_delete(void **state)
{
	(void)state;
	struct rig *r = rig_new("mem", NULL);
	struct call c;
	assert_int_equal(create(r->ct, "m"), 0);
	assert_int_equal(create(r->ct, "m#transaction.1"), 0);
	struct container_request ua = {
	        .op = CONTAINER_UPDATE_ATTR, .segment = "m", .attr_value = 42};
	ua.attr_key[0] = 9;
	assert_int_equal(run(r->ct, &ua, &c), 0);
	assert_int_equal(c.reply.attr_value, 42);
	call_free(&c);
	ua.attr_compare = true;
	ua.attr_expected = 41;
	ua.attr_value = 43;
	assert_int_equal(run(r->ct, &ua, &c), STRATA_ECONFLICT);
	assert_int_equal(c.reply.attr_value, 42);
	call_free(&c);
	struct container_request ga = {.op = CONTAINER_GET_ATTR,
	                               .segment = "m"};
	ga.attr_key[0] = 9;
	assert_int_equal(run(r->ct, &ga, &c), 0);
	assert_true(c.reply.attr_present);
	assert_int_equal(c.reply.attr_value, 42);
	call_free(&c);
	ga.attr_key[0] = 8;
	assert_int_equal(run(r->ct, &ga, &c), 0);
	assert_false(c.reply.attr_present);
	call_free(&c);
	assert_int_equal(append(r->ct, "m", 0, 2, NULL), 0);
	assert_int_equal(append(r->ct, "m#transaction.1", 0, 3, NULL), 0);
	struct container_request mg = {.op = CONTAINER_MERGE,
	                               .segment = "m",
	                               .source = "m#transaction.1"};
	assert_int_equal(run(r->ct, &mg, &c), STRATA_ENOTSEALED);
	call_free(&c);
	assert_int_equal(
	        op_simple(r->ct, CONTAINER_SEAL, "m#transaction.1", NULL), 0);
	assert_int_equal(run(r->ct, &mg, &c), 0);
	uint64_t src_at = c.reply.offset;
	assert_int_equal(c.reply.flushed_length, c.reply.length);
	call_free(&c);
	static uint8_t expect[4096], got[4096];
	size_t n = frame(expect, "event-", 0, 2);
	assert_int_equal(src_at, n);
	n += frame(expect + n, "event-", 0, 3);
	assert_int_equal(read_all(r->ct, "m", 0, got, sizeof(got)), n);
	assert_memory_equal(got, expect, n);
	assert_int_equal(
	        op_simple(r->ct, CONTAINER_INFO, "m#transaction.1", NULL),
	        STRATA_ENOENT);
	assert_int_equal(op_simple(r->ct, CONTAINER_DELETE, "m", NULL), 0);
	assert_int_equal(op_simple(r->ct, CONTAINER_INFO, "m", NULL),
	                 STRATA_ENOENT);
	struct container_status st;
	container_status(r->ct, &st);
	assert_int_equal(st.segments, 0);
	rig_free(r);
}

/* Bad arguments are refused by container_submit itself. */
static void test_submit_rejects_bad_args(void **state)
{
	(void)state;
	struct rig *r = rig_new(NULL, NULL);
	struct container_request q = {.op = (enum container_op)99};
	assert_int_equal(container_submit(r->ct, &q, call_done, NULL),
	                 STRATA_EINVAL);
	q.op = CONTAINER_INFO;
	assert_int_equal(container_submit(r->ct, &q, NULL, NULL),
	                 STRATA_EINVAL);
	struct call c;
	assert_int_equal(run(r->ct, &q, &c), STRATA_ENOENT);
	call_free(&c);
	rig_free(r);
}

/* Three replicas in one process: followers refuse with ENOTLEADER naming
 * the leader; after the leader stops, a new one serves every
 * acknowledged append. */
static void test_three_replicas_failover(void **state)
{
	(void)state;
	char errmsg[STRATA_ERRMSG_SIZE], base[64];
	snprintf(base, sizeof(base), "/tmp/strata-ct3-XXXXXX");
	assert_non_null(mkdtemp(base));
	struct raft_host *h[3];
	char addr[3][64], dir[3][128];
	struct raft_group_peer peers[3];
	struct container *ct[3];
	for (int i = 0; i < 3; i++) {
		struct raft_host_config hc = {.bind_address = "127.0.0.1:0"};
		assert_int_equal(raft_host_new(&hc, &h[i], errmsg), 0);
		snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%u",
		         raft_host_port(h[i]));
		peers[i].id = (uint64_t)i + 1;
		peers[i].address = addr[i];
	}
	for (int i = 0; i < 3; i++) {
		snprintf(dir[i], sizeof(dir[i]), "%s/n%d", base, i + 1);
		struct container_config cfg = {.id = 0,
		                               .node_id = (uint64_t)i + 1,
		                               .data_dir = dir[i],
		                               .peers = peers,
		                               .n_peers = 3,
		                               .election_ms = 300,
		                               .heartbeat_ms = 50};
		assert_int_equal(container_start(h[i], &cfg, &ct[i], errmsg),
		                 0);
	}
	int leader = -1;
	for (int t = 0; t < 2000 && leader < 0; t++) {
		for (int i = 0; i < 3; i++) {
			struct container_status st;
			container_status(ct[i], &st);
			if (st.ready) {
				leader = i;
			}
		}
		usleep(5000);
	}
	assert_true(leader >= 0);
	assert_int_equal(create(ct[leader], "x"), 0);
	for (int64_t ev = 0; ev < 50; ev += 5) {
		assert_int_equal(append(ct[leader], "x", ev, 5, NULL), 0);
	}
	int follower = (leader + 1) % 3;
	struct call c;
	struct container_request info = {.op = CONTAINER_INFO, .segment = "x"};
	for (int t = 0; t < 200; t++) {
		struct container_status st;
		container_status(ct[follower], &st);
		if (st.leader_id != 0) {
			break;
		}
		usleep(10000);
	}
	assert_int_equal(run(ct[follower], &info, &c), STRATA_ENOTLEADER);
	char want[32];
	snprintf(want, sizeof(want), "node %d", leader + 1);
	assert_non_null(strstr(c.message, want));
	call_free(&c);
	static uint8_t expect[8192], got[8192];
	size_t n = read_all(ct[leader], "x", 0, expect, sizeof(expect));
	container_stop(ct[leader]);
	ct[leader] = NULL;
	int nl = -1;
	for (int t = 0; t < 2000 && nl < 0; t++) {
		for (int i = 0; i < 3; i++) {
			struct container_status st;
			if (ct[i] == NULL) {
				continue;
			}
			container_status(ct[i], &st);
			if (st.ready) {
				nl = i;
			}
		}
		usleep(5000);
	}
	assert_true(nl >= 0 && nl != leader);
	assert_int_equal(read_all(ct[nl], "x", 0, got, sizeof(got)), n);
	assert_memory_equal(got, expect, n);
	assert_int_equal(append(ct[nl], "x", 50, 1, NULL), 0);
	for (int i = 0; i < 3; i++) {
		if (ct[i] != NULL) {
			container_stop(ct[i]);
		}
	}
	for (int i = 0; i < 3; i++) {
		raft_host_free(h[i]);
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	assert_int_equal(strata_process_init(NULL), 0);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_append_read_roundtrip),
	        cmocka_unit_test(test_append_dedup),
	        cmocka_unit_test(test_append_validation),
	        cmocka_unit_test(test_group_commit),
	        cmocka_unit_test(test_read_long_poll),
	        cmocka_unit_test(test_back_pressure),
	        cmocka_unit_test(test_tier2_flush_and_read),
	        cmocka_unit_test(test_metrics_exported),
	        cmocka_unit_test(test_restart_keeps_acked),
	        cmocka_unit_test(test_tier2_outage_and_resume),
	        cmocka_unit_test(test_attrs_merge_delete),
	        cmocka_unit_test(test_submit_rejects_bad_args),
	        cmocka_unit_test(test_three_replicas_failover),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
