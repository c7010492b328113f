/* Integration helper: drives libstrata (the shared library, public API
 * only) against real strata-controller / strata-segmentstore processes
 * for client_test.py. Every command prints what it checked; exit 0 = ok. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "strata/batch.h"
#include "strata/readergroup.h"
#include "strata/txn.h"
#include "strata/writer.h"

static struct strata_client *cli;

#define CHECK(call, what)                                           \
	do {                                                        \
		int check_rc_ = (call);                             \
		if (check_rc_ != 0) {                               \
			fprintf(stderr, "%s: %s: %s\n", what,       \
			        strata_error_name(check_rc_), err); \
			exit(1);                                    \
		}                                                   \
	} while (0)

static void expect(int rc, int want, const char *what, const char *err)
{
	if (rc != want) {
		fprintf(stderr, "%s: got %s, want %s: %s\n", what,
		        strata_error_name(rc), strata_error_name(want), err);
		exit(1);
	}
	printf("ok %s -> %s: %s\n", what, strata_error_name(rc), err);
}

static int cmd_setup(const char *scope, const char *stream, unsigned nseg)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	int rc = strata_scope_create(cli, scope, err);
	if (rc != STRATA_EEXIST) {
		CHECK(rc, "create scope");
	}
	struct strata_stream_config cfg;
	strata_stream_config_default(&cfg);
	cfg.min_segments = nseg;
	CHECK(strata_stream_create(cli, scope, stream, &cfg, err),
	      "create stream");
	printf("created %s/%s with %u segments\n", scope, stream, nseg);
	return 0;
}

static atomic_ulong acked;
static atomic_ulong failed;

static void write_cb(void *arg, int code, const char *errmsg)
{
	(void)arg;
	if (code == 0) {
		atomic_fetch_add(&acked, 1);
	} else {
		if (atomic_fetch_add(&failed, 1) < 5) {
			fprintf(stderr, "write failed: %s: %s\n",
			        strata_error_name(code), errmsg);
		}
	}
}

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

/* Write n events over `keys` keys, "k<key>:<seq>:<pad>", rate events/s. */
/* Event i of a load over keys keys: key "key-<k>" (key[32]) and payload
 * "k<k>:<seq>:" padded to 50-200 bytes (ev[300]); seq[k] counts. */
static int load_event(unsigned long i, unsigned keys, unsigned long *seq,
                      char *key, char *ev)
{
	static const char pad[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	                          "xxxxxxxxxxxxxxxxxxxxx"
	                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	                          "xxxxxxxxxxxxxxxxxxxxx"
	                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	                          "xxxxxxxxxxxxxxxxxxxxx"
	                          "xxxx";
	unsigned k = (unsigned)(i % keys);
	snprintf(key, 32, "key-%u", k);
	return snprintf(ev, 300, "k%u:%lu:%s", k, seq[k]++, pad + (i % 150));
}

static int cmd_write(const char *scope, const char *stream, unsigned long n,
                     unsigned keys, unsigned rate)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_writer *w;
	struct strata_writer_config cfg;
	strata_writer_config_default(&cfg);
	cfg.max_batch_bytes = 16 * 1024;
	cfg.retry_timeout_ms = 90000;
	CHECK(strata_writer_new(cli, scope, stream, &cfg, &w, err),
	      "writer new");
	unsigned long *seq = calloc(keys, sizeof(*seq));
	for (unsigned long i = 0; i < n; i++) {
		char key[32];
		char ev[300];
		int len = load_event(i, keys, seq, key, ev);
		CHECK(strata_writer_write(w, key, strlen(key), ev, (size_t)len,
		                          write_cb, NULL, err),
		      "write");
		if (i % 1000 == 999) {
			printf("written %lu acked %lu\n", i + 1,
			       atomic_load(&acked));
			fflush(stdout);
		}
		if (rate > 0) {
			sleep_us(1000000L / rate);
		}
	}
	struct strata_writer_stats st;
	int rc = strata_writer_flush(w, err);
	strata_writer_get_stats(w, &st);
	strata_writer_close(w, NULL);
	printf("done written=%lu acked=%lu failed=%lu close=%s resyncs=%llu "
	       "duplicates=%llu blocks=%llu\n",
	       n, atomic_load(&acked), atomic_load(&failed),
	       strata_error_name(rc), (unsigned long long)st.resyncs,
	       (unsigned long long)st.duplicates,
	       (unsigned long long)st.blocks_sent);
	fflush(stdout);
	free(seq);
	return rc == 0 && atomic_load(&failed) == 0 && atomic_load(&acked) == n
	               ? 0
	               : 1;
}

/* As cmd_write, in transactions of per_txn events, each committed before
 * the next begins; "acked" counts the events of committed ones. */
static int cmd_txnwrite(const char *scope, const char *stream, unsigned long n,
                        unsigned keys, unsigned rate, unsigned long per_txn)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_txn_config cfg;
	strata_txn_config_default(&cfg);
	cfg.writer.max_batch_bytes = 16 * 1024;
	cfg.writer.retry_timeout_ms = 90000;
	unsigned long *seq = calloc(keys, sizeof(*seq));
	unsigned long committed = 0, txns = 0;
	struct strata_txn *t = NULL;
	for (unsigned long i = 0; i < n; i++) {
		if (t == NULL) {
			CHECK(strata_txn_begin(cli, scope, stream, &cfg, &t,
			                       err),
			      "txn begin");
		}
		char key[32];
		char ev[300];
		int len = load_event(i, keys, seq, key, ev);
		CHECK(strata_txn_write(t, key, strlen(key), ev, (size_t)len,
		                       err),
		      "txn write");
		if ((i + 1) % per_txn == 0 || i + 1 == n) {
			uint64_t id = strata_txn_id(t);
			int rc = strata_txn_commit(t, err);
			strata_txn_free(t);
			t = NULL;
			if (rc != 0) {
				fprintf(stderr,
				        "commit transaction %llu: %s: %s\n",
				        (unsigned long long)id,
				        strata_error_name(rc), err);
				break;
			}
			committed = i + 1;
			txns++;
		}
		if (i % 1000 == 999) {
			printf("written %lu acked %lu\n", i + 1, committed);
			fflush(stdout);
		}
		if (rate > 0) {
			sleep_us(1000000L / rate);
		}
	}
	printf("done written=%lu acked=%lu failed=%lu transactions=%lu\n", n,
	       committed, n - committed, txns);
	fflush(stdout);
	free(seq);
	return committed == n ? 0 : 1;
}

/* Events collected per range, for the order check. */
struct coll {
	pthread_mutex_t mu;
	size_t n_ranges;
	const struct strata_segment_ranges *ranges;
	char ***events; /* per range: array of strings */
	size_t *count;
	size_t *cap;
};

static int collect_cb(void *arg, const struct strata_segment_range *r,
                      const uint8_t *data, size_t len, uint64_t offset)
{
	(void)offset;
	struct coll *c = arg;
	size_t i = (size_t)(r - c->ranges->ranges);
	char *s = malloc(len + 1);
	memcpy(s, data, len);
	s[len] = '\0';
	pthread_mutex_lock(&c->mu);
	if (c->count[i] == c->cap[i]) {
		c->cap[i] = c->cap[i] ? c->cap[i] * 2 : 1024;
		c->events[i] =
		        realloc(c->events[i], c->cap[i] * sizeof(char *));
	}
	c->events[i][c->count[i]++] = s;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* Read the whole stream with the batch client; each key's events must be
 * 0..n_k-1 exactly once, in order; the total must be `expect`. */
static int cmd_verify(const char *scope, const char *stream,
                      unsigned long expect_n, unsigned keys)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_segment_ranges *ranges;
	CHECK(strata_batch_list_ranges(cli, scope, stream, NULL, NULL, &ranges,
	                               err),
	      "list ranges");
	struct coll c = {.n_ranges = ranges->n, .ranges = ranges};
	pthread_mutex_init(&c.mu, NULL);
	c.events = calloc(ranges->n + 1, sizeof(*c.events));
	c.count = calloc(ranges->n + 1, sizeof(size_t));
	c.cap = calloc(ranges->n + 1, sizeof(size_t));
	CHECK(strata_batch_read(cli, ranges, 0, collect_cb, &c, err),
	      "batch read");
	unsigned long *next = calloc(keys, sizeof(*next));
	unsigned long total = 0;
	int bad = 0;
	for (size_t i = 0; i < ranges->n; i++) {
		printf("range %s [%llu, %llu): %zu events\n",
		       ranges->ranges[i].segment,
		       (unsigned long long)ranges->ranges[i].start_offset,
		       (unsigned long long)ranges->ranges[i].end_offset,
		       c.count[i]);
		for (size_t j = 0; j < c.count[i]; j++) {
			unsigned k;
			unsigned long s;
			if (sscanf(c.events[i][j], "k%u:%lu:", &k, &s) != 2 ||
			    k >= keys) {
				fprintf(stderr, "bad event %.40s\n",
				        c.events[i][j]);
				bad = 1;
				continue;
			}
			if (s != next[k]) {
				if (bad < 10) {
					fprintf(stderr,
					        "key %u: seq %lu, expected %lu "
					        "(%s)\n",
					        k, s, next[k],
					        s < next[k] ? "duplicate"
					                    : "gap");
				}
				bad++;
			}
			next[k] = s + 1;
			total++;
			free(c.events[i][j]);
		}
		free(c.events[i]);
	}
	printf("verified total=%lu expected=%lu bad=%d\n", total, expect_n,
	       bad);
	strata_segment_ranges_free(ranges);
	free(next);
	free(c.events);
	free(c.count);
	free(c.cap);
	return bad == 0 && total == expect_n ? 0 : 1;
}

static int cmd_scale(const char *scope, const char *stream);
static uint64_t now_ms(void);

/* Read the stream from the head through a new reader group with one
 * reader (successors as a pipeline meets them): expect_n events, each
 * key's seqs 0, 1, 2... in order; the group is deleted after. */
/* Reader "r1" of a new group of scope reading stream from its head
 * (refreshing every 200 ms). */
static struct strata_reader *group_reader(const char *scope, const char *stream,
                                          const char *group)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_stream_cut head = STRATA_STREAM_CUT_INIT;
	snprintf(head.scope, sizeof(head.scope), "%s", scope);
	snprintf(head.stream, sizeof(head.stream), "%s", stream);
	struct strata_reader_group_stream rs = {.start = &head, .end = NULL};
	struct strata_reader_group_config cfg;
	strata_reader_group_config_default(&cfg);
	cfg.streams = &rs;
	cfg.n_streams = 1;
	cfg.group_refresh_ms = 200;
	CHECK(strata_reader_group_create(cli, scope, group, &cfg, err),
	      "reader group create");
	struct strata_reader *r = NULL;
	CHECK(strata_reader_new(cli, scope, group, "r1", &r, err),
	      "reader new");
	return r;
}

static int cmd_rgverify(const char *scope, const char *stream,
                        unsigned long expect_n, unsigned keys)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	char group[64];
	snprintf(group, sizeof(group), "verify-%ld", (long)getpid());
	struct strata_reader *r = group_reader(scope, stream, group);
	unsigned long *next = calloc(keys, sizeof(*next));
	unsigned long total = 0;
	int bad = 0;
	uint64_t deadline = now_ms() + 60000;
	while (total < expect_n && now_ms() < deadline) {
		struct strata_read ev;
		CHECK(strata_reader_next(r, 500, &ev, err), "reader next");
		if (ev.kind != STRATA_READ_EVENT) {
			continue;
		}
		char text[64];
		unsigned k;
		unsigned long seq;
		snprintf(text, sizeof(text), "%.*s",
		         (int)(ev.len < 63 ? ev.len : 63),
		         (const char *)ev.data);
		if (sscanf(text, "k%u:%lu:", &k, &seq) != 2 || k >= keys ||
		    seq != next[k]) {
			if (bad++ < 10) {
				fprintf(stderr,
				        "reader: event \"%s\" out of order "
				        "(segment %llu offset %llu)\n",
				        text, (unsigned long long)ev.segment_id,
				        (unsigned long long)ev.offset);
			}
			continue;
		}
		next[k] = seq + 1;
		total++;
	}
	CHECK(strata_reader_close(r, err), "reader close");
	CHECK(strata_reader_group_delete(cli, scope, group, err),
	      "reader group delete");
	free(next);
	printf("reader group verified total=%lu expected=%lu bad=%d\n", total,
	       expect_n, bad);
	return bad == 0 && total == expect_n ? 0 : 1;
}

/* Events k<key>:<seq>: for keys [k0, k1), seqs [from, to) each, into a
 * transaction. */
static void txn_fill_keys(struct strata_txn *t, unsigned k0, unsigned k1,
                          unsigned long from, unsigned long to)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	char key[16], ev[64];
	for (unsigned long s = from; s < to; s++) {
		for (unsigned k = k0; k < k1; k++) {
			snprintf(key, sizeof(key), "k%u", k);
			int n = snprintf(ev, sizeof(ev), "k%u:%lu:txn", k, s);
			CHECK(strata_txn_write(t, key, strlen(key), ev,
			                       (size_t)n, err),
			      "txn write");
		}
	}
}

static void txn_fill(struct strata_txn *t, unsigned keys, unsigned long from,
                     unsigned long to)
{
	txn_fill_keys(t, 0, keys, from, to);
}

/* Commit transaction arg; the result code as the thread's result. */
static void *commit_thread(void *arg)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	int rc = strata_txn_commit(arg, err);
	if (rc != 0) {
		fprintf(stderr, "commit: %s: %s\n", strata_error_name(rc), err);
	}
	return (void *)(intptr_t)rc;
}

static struct strata_writer *plain_writer(const char *scope, const char *stream)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_writer *w = NULL;
	CHECK(strata_writer_new(cli, scope, stream, NULL, &w, err),
	      "writer new");
	return w;
}

/* Events k<key>:<seq>:w as txn_fill, through writer w, flushed. */
static void plain_fill(struct strata_writer *w, unsigned keys,
                       unsigned long from, unsigned long to)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	char key[16], ev[64];
	for (unsigned long s = from; s < to; s++) {
		for (unsigned k = 0; k < keys; k++) {
			snprintf(key, sizeof(key), "k%u", k);
			int n = snprintf(ev, sizeof(ev), "k%u:%lu:w", k, s);
			CHECK(strata_writer_write(w, key, strlen(key), ev,
			                          (size_t)n, NULL, NULL, err),
			      "write");
		}
	}
	CHECK(strata_writer_flush(w, err), "writer flush");
}

static struct strata_txn *txn_open(const char *scope, const char *stream,
                                   uint64_t lease_ms)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_txn_config tc;
	strata_txn_config_default(&tc);
	tc.lease_ms = lease_ms;
	struct strata_txn *t = NULL;
	CHECK(strata_txn_begin(cli, scope, stream, &tc, &t, err), "txn begin");
	printf("txn %llu open\n", (unsigned long long)strata_txn_id(t));
	return t;
}

/* Transactions: nothing visible before the commit, everything after;
 * an abort leaves nothing; a lease that ran out aborts; bad input. */
static int cmd_txn(const char *scope, const char *stream)
{
	enum { KEYS = 6 };
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_txn *a = txn_open(scope, stream, 30000);
	txn_fill(a, KEYS, 0, 50);
	CHECK(strata_txn_flush(a, err), "txn flush");
	if (cmd_verify(scope, stream, 0, KEYS) != 0) {
		fprintf(stderr, "flushed transaction events are visible\n");
		return 1;
	}
	uint64_t a_id = strata_txn_id(a);
	CHECK(strata_txn_commit(a, err), "txn commit");
	expect(strata_txn_write(a, "k0", 2, "x", 1, err), STRATA_EINVAL,
	       "write after commit", err);
	strata_txn_free(a);
	if (cmd_verify(scope, stream, 50 * KEYS, KEYS) != 0) {
		fprintf(stderr, "committed events missing\n");
		return 1;
	}
	enum strata_txn_state st;
	CHECK(strata_txn_status(cli, scope, stream, a_id, &st, err), "status");
	expect(st == STRATA_TXN_COMMITTED ? 0 : 1, 0, "status committed", "");

	/* Aborted: none of it is ever read (seqs that would break the
	 * per-key order if they leaked). */
	struct strata_txn *b = txn_open(scope, stream, 30000);
	txn_fill(b, KEYS, 50, 70);
	CHECK(strata_txn_flush(b, err), "txn flush");
	CHECK(strata_txn_abort(b, err), "txn abort");
	strata_txn_free(b);

	/* Idle for twice its lease: renewed in the background, it stays
	 * open and commits. */
	struct strata_txn *c = txn_open(scope, stream, 1500);
	txn_fill(c, KEYS, 50, 60);
	CHECK(strata_txn_flush(c, err), "txn flush");
	usleep(3000000);
	CHECK(strata_txn_status(cli, scope, stream, strata_txn_id(c), &st, err),
	      "status");
	expect(st == STRATA_TXN_OPEN ? 0 : 1, 0, "idle past its lease: open",
	       "");
	CHECK(strata_txn_commit(c, err), "commit after an idle while");
	strata_txn_free(c);

	/* A second committed transaction continues every key's order. */
	struct strata_txn *d = txn_open(scope, stream, 30000);
	txn_fill(d, KEYS, 60, 100);
	CHECK(strata_txn_commit(d, err), "txn commit");
	strata_txn_free(d);

	/* The stream scales under an open transaction; its commit rolls it
	 * into new epochs. Per key: the events a writer wrote before the
	 * commit, then the transaction's, then what that writer (open all
	 * along) and a new transaction write after it. */
	/* Two such transactions (half the keys each) commit at once, as a
	 * pipeline's parallel writers do: one roll takes both, or they
	 * roll one after the other. */
	struct strata_txn *e[2];
	for (int i = 0; i < 2; i++) {
		e[i] = txn_open(scope, stream, 30000);
		txn_fill_keys(e[i], i * KEYS / 2, (i + 1) * KEYS / 2, 105, 115);
		CHECK(strata_txn_flush(e[i], err), "txn flush");
	}
	if (cmd_scale(scope, stream) != 0) {
		return 1;
	}
	struct strata_writer *w = plain_writer(scope, stream);
	plain_fill(w, KEYS, 100, 105);
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		CHECK(pthread_create(&th[i], NULL, commit_thread, e[i]),
		      "commit thread");
	}
	for (int i = 0; i < 2; i++) {
		void *rc = NULL;
		pthread_join(th[i], &rc);
		CHECK((int)(intptr_t)rc, "commit of a rolled transaction");
		strata_txn_free(e[i]);
	}
	plain_fill(w, KEYS, 115, 120);
	CHECK(strata_writer_close(w, err), "writer close");
	struct strata_txn *g = txn_open(scope, stream, 30000);
	txn_fill(g, KEYS, 120, 130);
	CHECK(strata_txn_commit(g, err), "txn commit after the roll");
	strata_txn_free(g);

	struct strata_txn *x = NULL;
	expect(strata_txn_begin(cli, scope, "no-such-stream", NULL, &x, err),
	       STRATA_ENOENT, "begin on an unknown stream", err);
	struct strata_txn_config bad;
	strata_txn_config_default(&bad);
	bad.lease_ms = 0;
	expect(strata_txn_begin(cli, scope, stream, &bad, &x, err),
	       STRATA_EINVAL, "lease 0", err);
	if (cmd_verify(scope, stream, 130 * KEYS, KEYS) != 0) {
		fprintf(stderr, "events of the aborted transactions leaked, "
		                "or committed ones are missing\n");
		return 1;
	}
	printf("txn: committed, aborted, idle, rolled across a scale: ok\n");
	return 0;
}

/* A transaction whose process dies: begin (lease 1500 ms), write,
 * flush, print its id and leave without committing or aborting (nothing
 * renews its lease any more). */
static int cmd_txnorphan(const char *scope, const char *stream)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_txn *t = txn_open(scope, stream, 1500);
	txn_fill(t, 2, 1000, 1010);
	CHECK(strata_txn_flush(t, err), "txn flush");
	printf("orphan %llu\n", (unsigned long long)strata_txn_id(t));
	fflush(stdout);
	_exit(0); /* as a crash: no commit, no abort, no renewal */
}

/* The first phase of a two-phase commit, then a crash: begin (lease
 * 20 s), write seqs [from, to) of 2 keys, flush (pre-commit), print the
 * id (what a pipeline records in its checkpoint) and leave. */
static int cmd_txnprepare(const char *scope, const char *stream,
                          unsigned long from, unsigned long to)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_txn *t = txn_open(scope, stream, 20000);
	txn_fill(t, 2, from, to);
	CHECK(strata_txn_flush(t, err), "txn flush");
	printf("prepared %llu\n", (unsigned long long)strata_txn_id(t));
	fflush(stdout);
	_exit(0); /* as a crash after the checkpoint */
}

/* The second phase from another process: commit id by its id, twice
 * (a restore may repeat it), then abort must conflict. */
static int cmd_txncommit(const char *scope, const char *stream, uint64_t id)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	CHECK(strata_txn_commit_id(cli, scope, stream, id, err), "commit id");
	CHECK(strata_txn_commit_id(cli, scope, stream, id, err),
	      "commit id again");
	expect(strata_txn_abort_id(cli, scope, stream, id, err),
	       STRATA_ECONFLICT, "abort after commit", err);
	enum strata_txn_state st = STRATA_TXN_UNKNOWN;
	CHECK(strata_txn_status(cli, scope, stream, id, &st, err), "status");
	if (st != STRATA_TXN_COMMITTED) {
		fprintf(stderr, "transaction %llu is %d, not COMMITTED\n",
		        (unsigned long long)id, (int)st);
		return 1;
	}
	printf("transaction %llu committed by id\n", (unsigned long long)id);
	return 0;
}

/* Wait up to 20 s for transaction id to be ABORTED. */
static int cmd_txnaborted(const char *scope, const char *stream, uint64_t id)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	enum strata_txn_state st = STRATA_TXN_UNKNOWN;
	for (int i = 0; i < 200; i++) {
		CHECK(strata_txn_status(cli, scope, stream, id, &st, err),
		      "status");
		if (st == STRATA_TXN_ABORTED) {
			printf("transaction %llu aborted after %d ms\n",
			       (unsigned long long)id, i * 100);
			return 0;
		}
		usleep(100000);
	}
	fprintf(stderr, "transaction %llu still in state %d\n",
	        (unsigned long long)id, (int)st);
	return 1;
}

/* Bad input gives a clear message and code. */
static int cmd_badinput(const char *scope, const char *stream)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_writer *w = NULL;
	expect(strata_writer_new(cli, scope, "no-such-stream", NULL, &w, err),
	       STRATA_ENOENT, "writer on unknown stream", err);
	struct strata_stream_info *info = NULL;
	expect(strata_stream_get_info(cli, scope, "no-such-stream", &info, err),
	       STRATA_ENOENT, "info of unknown stream", err);
	struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
	expect(strata_stream_cut_parse("orders:0.0=1", &cut, err),
	       STRATA_EINVAL, "malformed cut (no scope)", err);
	expect(strata_stream_cut_parse("a/b:0.0=x", &cut, err), STRATA_EINVAL,
	       "malformed cut (offset)", err);
	char text[600];
	snprintf(text, sizeof(text), "%s/%s:77.0=0", scope, stream);
	CHECK(strata_stream_cut_parse(text, &cut, err), "parse");
	expect(strata_stream_truncate(cli, &cut, err), STRATA_EINVAL,
	       "truncate at a cut of an unknown segment", err);
	struct strata_segment_ranges *rg = NULL;
	expect(strata_batch_list_ranges(cli, scope, stream, &cut, NULL, &rg,
	                                err),
	       STRATA_EINVAL, "batch from an invalid cut", err);
	strata_stream_cut_clear(&cut);
	struct strata_writer_config cfg;
	strata_writer_config_default(&cfg);
	CHECK(strata_writer_new(cli, scope, stream, &cfg, &w, err),
	      "writer new");
	size_t big = cfg.max_event_bytes + 1;
	char *data = calloc(1, big);
	expect(strata_writer_write(w, "k", 1, data, big, NULL, NULL, err),
	       STRATA_ETOOBIG, "event over the size limit", err);
	/* Raise the client limit: the store refuses it too. */
	strata_writer_close(w, err);
	cfg.max_event_bytes = big;
	CHECK(strata_writer_new(cli, scope, stream, &cfg, &w, err),
	      "writer new");
	expect(strata_writer_write_sync(w, "k", 1, data, big, err),
	       STRATA_ETOOBIG, "event over the store's limit", err);
	strata_writer_close(w, err);
	free(data);
	expect(strata_stream_create(cli, scope, "bad name", NULL, err),
	       STRATA_EBADNAME, "bad stream name", err);
	return 0;
}

static void print_cut(const char *what, const struct strata_stream_cut *c)
{
	char buf[1024];
	strata_stream_cut_format(c, buf, sizeof(buf));
	printf("%s %s\n", what, buf);
}

/* Stream manager round trip: info, scale, truncate, seal, delete. */
static int cmd_manage(const char *scope, const char *stream)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_writer *w;
	CHECK(strata_writer_new(cli, scope, stream, NULL, &w, err),
	      "writer new");
	for (int i = 0; i < 100; i++) {
		char key[16];
		char ev[64];
		snprintf(key, sizeof(key), "key-%d", i % 10);
		int len = snprintf(ev, sizeof(ev), "k%d:%d:", i % 10, i / 10);
		CHECK(strata_writer_write(w, key, strlen(key), ev, (size_t)len,
		                          NULL, NULL, err),
		      "write");
	}
	CHECK(strata_writer_flush(w, err), "flush");
	struct strata_stream_info *info;
	CHECK(strata_stream_get_info(cli, scope, stream, &info, err), "info");
	print_cut("head", &info->head);
	print_cut("tail", &info->tail);
	if (info->state != STRATA_STREAM_ACTIVE || info->tail.n != 2 ||
	    info->config.min_segments != 2) {
		fprintf(stderr, "unexpected info: state %d, %zu segments\n",
		        (int)info->state, info->tail.n);
		return 1;
	}
	struct strata_stream_cut mid = STRATA_STREAM_CUT_INIT;
	CHECK(strata_stream_cut_copy(&mid, &info->tail), "copy");
	strata_stream_info_free(info);
	/* Scale segment 0 ([0, 0.5)) into two while the writer runs. */
	struct strata_segment_list *cur;
	CHECK(strata_stream_current_segments(cli, scope, stream, &cur, err),
	      "segments");
	uint64_t seal = cur->segments[0].id;
	double bounds[3] = {cur->segments[0].low,
	                    (cur->segments[0].low + cur->segments[0].high) / 2,
	                    cur->segments[0].high};
	strata_segment_list_free(cur);
	for (int i = 100; i < 200; i++) {
		char key[16];
		char ev[64];
		snprintf(key, sizeof(key), "key-%d", i % 10);
		int len = snprintf(ev, sizeof(ev), "k%d:%d:", i % 10, i / 10);
		CHECK(strata_writer_write(w, key, strlen(key), ev, (size_t)len,
		                          NULL, NULL, err),
		      "write");
		if (i == 150) {
			CHECK(strata_stream_scale(cli, scope, stream, &seal, 1,
			                          bounds, 3, err),
			      "scale");
			printf("scaled segment %llu\n",
			       (unsigned long long)seal);
		}
	}
	CHECK(strata_writer_flush(w, err), "flush after scale");
	struct strata_segment_list *succ;
	CHECK(strata_stream_successors(cli, scope, stream, seal, &succ, err),
	      "successors");
	printf("successors of %llu: %zu\n", (unsigned long long)seal, succ->n);
	if (succ->n != 2) {
		return 1;
	}
	strata_segment_list_free(succ);
	/* Batch ranges between the cut before the scale and the tail. */
	struct strata_segment_ranges *rg;
	CHECK(strata_batch_list_ranges(cli, scope, stream, &mid, NULL, &rg,
	                               err),
	      "ranges");
	printf("ranges from mid: %zu\n", rg->n);
	strata_segment_ranges_free(rg);
	/* Truncate at the tail now: the scaled segment goes entirely. */
	CHECK(strata_stream_get_info(cli, scope, stream, &info, err), "info");
	print_cut("tail after scale", &info->tail);
	if (info->tail.n != 3) {
		fprintf(stderr, "expected 3 current segments\n");
		return 1;
	}
	CHECK(strata_stream_truncate(cli, &info->tail, err), "truncate");
	strata_stream_info_free(info);
	CHECK(strata_stream_get_info(cli, scope, stream, &info, err), "info");
	print_cut("head after truncate", &info->head);
	for (size_t i = 0; i < info->head.n; i++) {
		if (info->head.positions[i].segment_id == seal) {
			fprintf(stderr, "segment %llu still in the head\n",
			        (unsigned long long)seal);
			return 1;
		}
	}
	strata_stream_info_free(info);
	strata_stream_cut_clear(&mid);
	CHECK(strata_stream_seal(cli, scope, stream, err), "seal");
	expect(strata_writer_write_sync(w, "key-1", 5, "x", 1, err),
	       STRATA_ESEALED, "write after seal", err);
	strata_writer_close(w, err);
	CHECK(strata_stream_delete(cli, scope, stream, err), "delete");
	struct strata_names *names;
	CHECK(strata_stream_list(cli, scope, NULL, &names, err), "list");
	for (size_t i = 0; i < names->n; i++) {
		if (strcmp(names->names[i], stream) == 0) {
			fprintf(stderr, "stream still listed after delete\n");
			return 1;
		}
	}
	strata_names_free(names);
	printf("manage ok\n");
	return 0;
}

/* What a read across a truncation saw. */
struct trunc_seen {
	uint64_t bytes;       /* reported truncated */
	unsigned calls;       /* truncation callbacks */
	unsigned long events; /* events read */
	unsigned long late;   /* of them, written after the cut */
};

static int trunc_cb(void *arg, const struct strata_segment_range *r,
                    uint64_t from, uint64_t to)
{
	struct trunc_seen *t = arg;
	t->bytes += to - from;
	t->calls++;
	printf("truncated %s [%llu, %llu)\n", r->segment,
	       (unsigned long long)from, (unsigned long long)to);
	return 0;
}

/* Events "k<key>:<seq>:w": seq >= 8 were written after the cut. */
static bool trunc_late(const uint8_t *data, size_t len)
{
	char text[64];
	unsigned k;
	unsigned long seq;
	snprintf(text, sizeof(text), "%.*s", (int)(len < 63 ? len : 63),
	         (const char *)data);
	return sscanf(text, "k%u:%lu:", &k, &seq) == 2 && seq >= 8;
}

static int trunc_event(void *arg, const struct strata_segment_range *r,
                       const uint8_t *data, size_t len, uint64_t offset)
{
	(void)r;
	(void)offset;
	struct trunc_seen *t = arg;
	t->events++;
	t->late += trunc_late(data, len);
	return 0;
}

/* Readers that a truncation overtook. A group reader is in the middle of
 * the first segment and batch ranges are listed; the segment is scaled
 * and the stream truncated at a cut in its successors (the segment is
 * deleted, its successors lose their heads). A plain batch read fails
 * with STRATA_ETRUNCATED; one with on_truncated is told of every dropped
 * byte and reads just the events after the cut; the group reader gets
 * STRATA_ETRUNCATED and goes on with every event after the cut, once, in
 * order per key. */
static int cmd_truncread(const char *scope, const char *stream)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	enum { KEYS = 16 };
	struct strata_writer *w = plain_writer(scope, stream);
	plain_fill(w, KEYS, 0, 4);

	struct strata_reader *r = group_reader(scope, stream, "overtaken");
	unsigned long early = 0;
	uint64_t deadline = now_ms() + 30000;
	while (early < 5 && now_ms() < deadline) {
		struct strata_read ev;
		CHECK(strata_reader_next(r, 500, &ev, err), "reader next");
		early += ev.kind == STRATA_READ_EVENT;
	}

	struct strata_segment_list *cur;
	CHECK(strata_stream_current_segments(cli, scope, stream, &cur, err),
	      "segments");
	uint64_t seal = cur->segments[0].id;
	double bounds[3] = {0, 0.5, 1};
	strata_segment_list_free(cur);
	CHECK(strata_stream_scale(cli, scope, stream, &seal, 1, bounds, 3, err),
	      "scale");
	plain_fill(w, KEYS, 4, 8);
	struct strata_stream_info *info;
	CHECK(strata_stream_get_info(cli, scope, stream, &info, err), "info");
	struct strata_stream_cut cut = STRATA_STREAM_CUT_INIT;
	CHECK(strata_stream_cut_copy(&cut, &info->tail), "copy");
	strata_stream_info_free(info);
	plain_fill(w, KEYS, 8, 11);
	strata_writer_close(w, err);
	struct strata_segment_ranges *rg;
	CHECK(strata_batch_list_ranges(cli, scope, stream, NULL, NULL, &rg,
	                               err),
	      "ranges");
	uint64_t before = 0; /* bytes before the cut */
	for (size_t i = 0; i < rg->n; i++) {
		const struct strata_segment_range *x = &rg->ranges[i];
		uint64_t end = x->end_offset;
		for (size_t j = 0; j < cut.n; j++) {
			if (cut.positions[j].segment_id == x->segment_id) {
				end = (uint64_t)cut.positions[j].offset;
			}
		}
		before += end - x->start_offset;
	}
	CHECK(strata_stream_truncate(cli, &cut, err), "truncate");
	strata_stream_cut_clear(&cut);

	struct trunc_seen strict = {0};
	expect(strata_batch_read(cli, rg, 1, trunc_event, &strict, err),
	       STRATA_ETRUNCATED, "batch read of ranges truncated since", err);
	struct trunc_seen t = {0};
	struct strata_batch_read_opts o = {.parallelism = 2,
	                                   .on_truncated = trunc_cb};
	CHECK(strata_batch_read_with(cli, rg, &o, trunc_event, &t, err),
	      "batch read following the head");
	strata_segment_ranges_free(rg);
	printf("batch: %lu events (%lu after the cut), %u truncations of "
	       "%llu bytes (%llu before the cut)\n",
	       t.events, t.late, t.calls, (unsigned long long)t.bytes,
	       (unsigned long long)before);
	if (t.events != KEYS * 3 || t.late != t.events || t.bytes != before) {
		fprintf(stderr, "the batch read did not skip exactly the "
		                "truncated part\n");
		return 1;
	}

	unsigned long next[KEYS] = {0};
	unsigned long late = 0, stale = 0;
	unsigned truncations = 0;
	int bad = 0;
	deadline = now_ms() + 60000;
	while (late < KEYS * 3 && now_ms() < deadline) {
		struct strata_read ev;
		int rc = strata_reader_next(r, 500, &ev, err);
		if (rc == STRATA_ETRUNCATED) {
			printf("reader: %s\n", err);
			truncations++;
			continue;
		}
		CHECK(rc, "reader next");
		if (ev.kind != STRATA_READ_EVENT) {
			continue;
		}
		unsigned k;
		unsigned long seq;
		char text[64];
		snprintf(text, sizeof(text), "%.*s",
		         (int)(ev.len < 63 ? ev.len : 63),
		         (const char *)ev.data);
		if (sscanf(text, "k%u:%lu:", &k, &seq) != 2 || k >= KEYS ||
		    seq < next[k]) {
			bad++;
			fprintf(stderr, "reader: \"%s\" out of order\n", text);
			continue;
		}
		next[k] = seq + 1;
		if (seq >= 8) {
			late++;
		} else {
			stale++; /* read ahead before the truncation */
		}
	}
	CHECK(strata_reader_close(r, err), "reader close");
	printf("reader: %lu events after the cut, %lu from before, %u "
	       "truncations\n",
	       late, stale, truncations);
	if (bad != 0 || late != KEYS * 3 || truncations == 0) {
		fprintf(stderr, "the reader did not go on past the "
		                "truncation\n");
		return 1;
	}
	for (unsigned k = 0; k < KEYS; k++) {
		if (next[k] != 11) {
			fprintf(stderr, "key %u: last seq %lu, want 10\n", k,
			        next[k] - 1);
			return 1;
		}
	}
	printf("truncread ok\n");
	return 0;
}

/* Split the current segment with the widest range in two. */
static int cmd_scale(const char *scope, const char *stream)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	struct strata_segment_list *cur;
	CHECK(strata_stream_current_segments(cli, scope, stream, &cur, err),
	      "segments");
	size_t best = 0;
	for (size_t i = 1; i < cur->n; i++) {
		if (cur->segments[i].high - cur->segments[i].low >
		    cur->segments[best].high - cur->segments[best].low) {
			best = i;
		}
	}
	const struct strata_segment_desc *d = &cur->segments[best];
	uint64_t id = d->id;
	double bounds[3] = {d->low, (d->low + d->high) / 2, d->high};
	strata_segment_list_free(cur);
	CHECK(strata_stream_scale(cli, scope, stream, &id, 1, bounds, 3, err),
	      "scale");
	printf("split segment %u.%u [%g, %g)\n", (unsigned)(id & 0xffffffffu),
	       (unsigned)(id >> 32), bounds[0], bounds[2]);
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Segment primitives on a 1-segment stream: conditional appends from two
 * handles, the event iterator's long poll at the tail, attributes. */
static int cmd_segments(const char *scope, const char *stream)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	char name[600];
	strata_segment_name(name, sizeof(name), scope, stream, 0);
	struct strata_rsegment *a;
	struct strata_rsegment *b;
	CHECK(strata_rsegment_open(cli, name, &a, err), "open a");
	CHECK(strata_rsegment_open(cli, name, &b, err), "open b");
	uint64_t rev = 0;
	uint64_t start = 0;
	CHECK(strata_rsegment_revision(a, &rev, &start, err), "revision");
	uint64_t r1 = 0;
	CHECK(strata_rsegment_append(a, rev, "update-1", 8, &r1, err),
	      "append a");
	printf("a appended at %llu -> revision %llu\n", (unsigned long long)rev,
	       (unsigned long long)r1);
	uint64_t cur = 0;
	expect(strata_rsegment_append(b, rev, "update-2", 8, &cur, err),
	       STRATA_ECONFLICT, "stale conditional append", err);
	if (cur != r1) {
		fprintf(stderr, "conflict reported revision %llu, want %llu\n",
		        (unsigned long long)cur, (unsigned long long)r1);
		return 1;
	}
	uint64_t r2 = 0;
	CHECK(strata_rsegment_append(b, cur, "update-2", 8, &r2, err),
	      "append b");
	/* Read both updates back, then long-poll at the tail. */
	struct strata_event_iter *it;
	struct strata_event ev;
	CHECK(strata_event_iter_new(cli, name, rev, UINT64_MAX, 0, &it, err),
	      "iter");
	for (int i = 1; i <= 2; i++) {
		char want[16];
		snprintf(want, sizeof(want), "update-%d", i);
		CHECK(strata_event_iter_next(it, 1000, &ev, err), "next");
		if (ev.data == NULL || ev.len != 8 ||
		    memcmp(ev.data, want, 8) != 0) {
			fprintf(stderr, "event %d is not %s\n", i, want);
			return 1;
		}
	}
	uint64_t t0 = now_ms();
	CHECK(strata_event_iter_next(it, 700, &ev, err), "next at tail");
	uint64_t waited = now_ms() - t0;
	if (ev.data != NULL || ev.end || waited < 500) {
		fprintf(stderr, "tail read: data %p end %d after %llu ms\n",
		        (void *)ev.data, ev.end, (unsigned long long)waited);
		return 1;
	}
	printf("ok tail long poll returned nothing after %llu ms\n",
	       (unsigned long long)waited);
	strata_event_iter_free(it);
	uint8_t key[16] = {1, 2, 3};
	bool present = true;
	int64_t value = 0;
	CHECK(strata_segment_attribute_get(cli, name, key, &present, &value,
	                                   err),
	      "attribute get");
	if (present) {
		fprintf(stderr, "fresh attribute is present\n");
		return 1;
	}
	CHECK(strata_segment_attribute_update(cli, name, key, 5, true,
	                                      INT64_MIN, err),
	      "attribute set");
	expect(strata_segment_attribute_update(cli, name, key, 6, true, 4, err),
	       STRATA_ECONFLICT, "attribute compare-and-set", err);
	CHECK(strata_rsegment_truncate(a, r1, err), "truncate");
	CHECK(strata_rsegment_revision(a, &rev, &start, err), "revision");
	if (start != r1 || rev != r2) {
		fprintf(stderr, "after truncate: start %llu rev %llu\n",
		        (unsigned long long)start, (unsigned long long)rev);
		return 1;
	}
	struct strata_read_result rr;
	expect(strata_segment_read(cli, name, 0, 100, 0, &rr, err),
	       STRATA_ETRUNCATED, "read below the start", err);
	strata_read_result_release(&rr);
	strata_rsegment_close(a);
	strata_rsegment_close(b);
	printf("segments ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr,
		        "usage: client_tool CONTROLLER_URL CMD SCOPE STREAM "
		        "[args]\n"
		        "  setup SCOPE STREAM NSEG | write SCOPE STREAM N KEYS "
		        "RATE\n"
		        "  verify SCOPE STREAM N KEYS | rgverify SCOPE STREAM "
		        "N KEYS\n"
		        "  | badinput SCOPE STREAM "
		        "| "
		        "manage SCOPE STREAM | truncread SCOPE STREAM | "
		        "txn SCOPE STREAM\n"
		        "  txnwrite SCOPE STREAM N KEYS RATE PER_TXN\n"
		        "  txnprepare SCOPE STREAM FROM TO | txncommit SCOPE "
		        "STREAM ID\n");
		return 2;
	}
	struct strata_client_config cfg;
	char err[STRATA_ERRMSG_SIZE] = "";
	const char *urls[1] = {argv[1]};
	strata_client_config_default(&cfg);
	cfg.controller_urls = urls;
	cfg.n_controller_urls = 1;
	cfg.operation_timeout_ms = 60000;
	CHECK(strata_client_new(&cfg, &cli, err), "client");
	const char *cmd = argv[2];
	int rc = 2;
	if (strcmp(cmd, "setup") == 0 && argc == 6) {
		rc = cmd_setup(argv[3], argv[4], (unsigned)atoi(argv[5]));
	} else if (strcmp(cmd, "write") == 0 && argc == 8) {
		rc = cmd_write(argv[3], argv[4], strtoul(argv[5], NULL, 10),
		               (unsigned)atoi(argv[6]),
		               (unsigned)atoi(argv[7]));
	} else if (strcmp(cmd, "verify") == 0 && argc == 7) {
		rc = cmd_verify(argv[3], argv[4], strtoul(argv[5], NULL, 10),
		                (unsigned)atoi(argv[6]));
	} else if (strcmp(cmd, "badinput") == 0 && argc == 5) {
		rc = cmd_badinput(argv[3], argv[4]);
	} else if (strcmp(cmd, "rgverify") == 0 && argc == 7) {
		rc = cmd_rgverify(argv[3], argv[4], strtoul(argv[5], NULL, 10),
		                  (unsigned)atoi(argv[6]));
	} else if (strcmp(cmd, "scale") == 0 && argc == 5) {
		rc = cmd_scale(argv[3], argv[4]);
	} else if (strcmp(cmd, "segments") == 0 && argc == 5) {
		rc = cmd_segments(argv[3], argv[4]);
	} else if (strcmp(cmd, "manage") == 0 && argc == 5) {
		rc = cmd_manage(argv[3], argv[4]);
	} else if (strcmp(cmd, "truncread") == 0 && argc == 5) {
		rc = cmd_truncread(argv[3], argv[4]);
	} else if (strcmp(cmd, "txnwrite") == 0 && argc == 9) {
		rc = cmd_txnwrite(argv[3], argv[4], strtoul(argv[5], NULL, 10),
		                  (unsigned)atoi(argv[6]),
		                  (unsigned)atoi(argv[7]),
		                  strtoul(argv[8], NULL, 10));
	} else if (strcmp(cmd, "txnorphan") == 0 && argc == 5) {
		rc = cmd_txnorphan(argv[3], argv[4]);
	} else if (strcmp(cmd, "txnaborted") == 0 && argc == 6) {
		rc = cmd_txnaborted(argv[3], argv[4],
		                    strtoull(argv[5], NULL, 10));
	} else if (strcmp(cmd, "txnprepare") == 0 && argc == 7) {
		rc = cmd_txnprepare(argv[3], argv[4],
		                    strtoul(argv[5], NULL, 10),
		                    strtoul(argv[6], NULL, 10));
	} else if (strcmp(cmd, "txncommit") == 0 && argc == 6) {
		rc = cmd_txncommit(argv[3], argv[4],
		                   strtoull(argv[5], NULL, 10));
	} else if (strcmp(cmd, "txn") == 0 && argc == 5) {
		rc = cmd_txn(argv[3], argv[4]);
	} else {
		fprintf(stderr, "bad command line\n");
	}
	strata_client_free(cli);
	return rc;
}
