/* Unit tests for raft/transport.c: handshake, TCP_NODELAY, groups sharing
 * one port, refused handshakes, reconnect, cancel, deadlines. Everything
 * runs on one libuv loop on 127.0.0.1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/process.h"
#include "raft/transport.h"
#include "strata/error.h"

/* ---- loop helpers -------------------------------------------------------- */

static void tick(uv_timer_t *t)
{
	(void)t;
}

/* Run loop until pred(arg) holds or ms pass; returns pred's last value. */
static bool run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg,
                      unsigned ms)
{
	uv_timer_t t;
	uv_timer_init(loop, &t);
	uv_timer_start(&t, tick, 5, 5);
	uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
	bool ok = pred(arg);
	while (!ok && uv_hrtime() < end) {
		uv_run(loop, UV_RUN_ONCE);
		ok = pred(arg);
	}
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return ok;
}

static void drain(uv_loop_t *loop)
{
	for (int i = 0; i < 1000 && uv_run(loop, UV_RUN_NOWAIT) != 0; i++) {
		usleep(1000);
	}
	assert_int_equal(uv_loop_close(loop), 0);
}

static struct raft_mux *mux_new(uv_loop_t *loop, unsigned handshake_ms)
{
	struct raft_mux_config cfg = {.bind_address = "127.0.0.1:0",
	                              .handshake_ms = handshake_ms};
	struct raft_mux *m = NULL;
	char errmsg[STRATA_ERRMSG_SIZE];
	assert_int_equal(raft_mux_new(loop, &cfg, &m, errmsg), 0);
	return m;
}

static int mux_closed_count;

static void mux_closed(void *arg)
{
	(void)arg;
	mux_closed_count++;
}

static void addr_of(struct raft_mux *m, char *buf, size_t n)
{
	snprintf(buf, n, "127.0.0.1:%u", raft_mux_port(m));
}

/* ---- direct transport use ------------------------------------------------ */

struct direct {
	uv_stream_t *accepted;  /* stream given to accept_cb */
	raft_id accepted_id;    /* id given to accept_cb */
	char accepted_addr[64]; /* address given to accept_cb */
	uv_stream_t *connected; /* stream given to connect cb */
	int connect_status;     /* status given to connect cb */
	int connect_calls;      /* connect cb count */
	int closes;             /* transport close cb count */
};

static struct direct D;

static void d_accept(struct raft_uv_transport *t, raft_id id,
                     const char *address, uv_stream_t *stream)
{
	(void)t;
	D.accepted = stream;
	D.accepted_id = id;
	snprintf(D.accepted_addr, sizeof(D.accepted_addr), "%s", address);
}

static void d_connect(struct raft_uv_connect *req, uv_stream_t *stream,
                      int status)
{
	(void)req;
	D.connected = stream;
	D.connect_status = status;
	D.connect_calls++;
}

static void d_closed(struct raft_uv_transport *t)
{
	(void)t;
	D.closes++;
}

static bool both_sides(void *arg)
{
	(void)arg;
	return D.accepted != NULL && D.connect_calls > 0;
}

static bool connect_done(void *arg)
{
	(void)arg;
	return D.connect_calls > 0;
}

static bool closes_two(void *arg)
{
	(void)arg;
	return D.closes == 2;
}

static int nodelay_of(uv_stream_t *s)
{
	uv_os_fd_t fd;
	assert_int_equal(uv_fileno((uv_handle_t *)s, &fd), 0);
	int v = -1;
	socklen_t len = sizeof(v);
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
	return v;
}

/* A connect completes the handshake, both sides learn who is who, and both
 * sockets have TCP_NODELAY set. */
static void test_raft_transport_handshake_sets_nodelay(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	memset(&D, 0, sizeof(D));
	struct raft_mux *ma = mux_new(&loop, 0);
	struct raft_mux *mb = mux_new(&loop, 0);
	char aa[64], ab[64];
	addr_of(ma, aa, sizeof(aa));
	addr_of(mb, ab, sizeof(ab));
	assert_int_not_equal(raft_mux_port(ma), raft_mux_port(mb));

	struct raft_uv_transport ta, tb;
	assert_int_equal(raft_transport_init(&ta, ma, 7), 0);
	assert_int_equal(raft_transport_init(&tb, mb, 7), 0);
	assert_int_equal(ta.init(&ta, 1, aa), 0);
	assert_int_equal(tb.init(&tb, 2, ab), 0);
	assert_int_equal(tb.listen(&tb, d_accept), 0);
	struct raft_uv_connect req;
	assert_int_equal(ta.connect(&ta, &req, 2, ab, d_connect), 0);
	assert_true(run_until(&loop, both_sides, NULL, 5000));

	assert_int_equal(D.connect_status, 0);
	assert_non_null(D.connected);
	assert_int_equal(D.accepted_id, 1);
	assert_string_equal(D.accepted_addr, aa);
	assert_int_equal(nodelay_of(D.connected), 1);
	assert_int_equal(nodelay_of(D.accepted), 1);
	struct raft_mux_stats sa, sb;
	raft_mux_stats(ma, &sa);
	raft_mux_stats(mb, &sb);
	assert_int_equal(sa.connected, 1);
	assert_int_equal(sb.accepted, 1);
	assert_int_equal(sb.rejected, 0);

	uv_close((uv_handle_t *)D.connected, (uv_close_cb)raft_free);
	uv_close((uv_handle_t *)D.accepted, (uv_close_cb)raft_free);
	ta.close(&ta, d_closed);
	tb.close(&tb, d_closed);
	assert_int_equal(D.closes, 0); /* never from inside close() */
	assert_true(run_until(&loop, closes_two, NULL, 2000));
	raft_transport_close(&ta);
	raft_transport_close(&tb);
	mux_closed_count = 0;
	raft_mux_close(ma, mux_closed, NULL);
	raft_mux_close(mb, mux_closed, NULL);
	drain(&loop);
	assert_int_equal(mux_closed_count, 2);
}

/* With TCP_NODELAY turned off (bench), sockets keep Nagle on. */
static void test_raft_transport_nodelay_off(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	memset(&D, 0, sizeof(D));
	struct raft_mux_config cfg = {.bind_address = "127.0.0.1:0",
	                              .tcp_nodelay_off = true};
	struct raft_mux *ma = NULL, *mb = NULL;
	char errmsg[STRATA_ERRMSG_SIZE];
	assert_int_equal(raft_mux_new(&loop, &cfg, &ma, errmsg), 0);
	assert_int_equal(raft_mux_new(&loop, &cfg, &mb, errmsg), 0);
	char aa[64], ab[64];
	addr_of(ma, aa, sizeof(aa));
	addr_of(mb, ab, sizeof(ab));
	struct raft_uv_transport ta, tb;
	assert_int_equal(raft_transport_init(&ta, ma, 1), 0);
	assert_int_equal(raft_transport_init(&tb, mb, 1), 0);
	assert_int_equal(ta.init(&ta, 1, aa), 0);
	assert_int_equal(tb.init(&tb, 2, ab), 0);
	assert_int_equal(tb.listen(&tb, d_accept), 0);
	struct raft_uv_connect req;
	assert_int_equal(ta.connect(&ta, &req, 2, ab, d_connect), 0);
	assert_true(run_until(&loop, both_sides, NULL, 5000));
	assert_int_equal(nodelay_of(D.connected), 0);
	assert_int_equal(nodelay_of(D.accepted), 0);
	uv_close((uv_handle_t *)D.connected, (uv_close_cb)raft_free);
	uv_close((uv_handle_t *)D.accepted, (uv_close_cb)raft_free);
	ta.close(&ta, d_closed);
	tb.close(&tb, d_closed);
	assert_true(run_until(&loop, closes_two, NULL, 2000));
	raft_transport_close(&ta);
	raft_transport_close(&tb);
	raft_mux_close(ma, NULL, NULL);
	raft_mux_close(mb, NULL, NULL);
	drain(&loop);
}

/* Connecting for a group the peer does not host, or to the wrong node id,
 * fails with RAFT_NOCONNECTION and an error message that says why. */
static void test_raft_transport_unknown_group_and_wrong_node(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	memset(&D, 0, sizeof(D));
	struct raft_mux *ma = mux_new(&loop, 0);
	struct raft_mux *mb = mux_new(&loop, 0);
	char aa[64], ab[64];
	addr_of(ma, aa, sizeof(aa));
	addr_of(mb, ab, sizeof(ab));
	struct raft_uv_transport ta, tb, tc;
	assert_int_equal(raft_transport_init(&ta, ma, 5), 0); /* group 5 */
	assert_int_equal(raft_transport_init(&tb, mb, 6), 0); /* group 6 */
	assert_int_equal(raft_transport_init(&tc, ma, 6), 0); /* group 6 */
	assert_int_equal(ta.init(&ta, 1, aa), 0);
	assert_int_equal(tb.init(&tb, 2, ab), 0);
	assert_int_equal(tc.init(&tc, 1, aa), 0);
	assert_int_equal(tb.listen(&tb, d_accept), 0);

	struct raft_uv_connect req;
	assert_int_equal(ta.connect(&ta, &req, 2, ab, d_connect), 0);
	assert_true(run_until(&loop, connect_done, NULL, 5000));
	assert_int_equal(D.connect_status, RAFT_NOCONNECTION);
	assert_null(D.connected);
	assert_non_null(strstr(ta.errmsg, "unknown group"));

	D.connect_calls = 0;
	assert_int_equal(tc.connect(&tc, &req, 3, ab, d_connect), 0);
	assert_true(run_until(&loop, connect_done, NULL, 5000));
	assert_int_equal(D.connect_status, RAFT_NOCONNECTION);
	assert_non_null(strstr(tc.errmsg, "wrong node"));
	assert_null(D.accepted);
	struct raft_mux_stats sb;
	raft_mux_stats(mb, &sb);
	assert_int_equal(sb.rejected, 2);
	assert_int_equal(sb.accepted, 0);

	D.closes = -1; /* three closes bring it to 2 */
	ta.close(&ta, d_closed);
	tb.close(&tb, d_closed);
	tc.close(&tc, d_closed);
	assert_true(run_until(&loop, closes_two, NULL, 2000));
	raft_transport_close(&ta);
	raft_transport_close(&tb);
	raft_transport_close(&tc);
	raft_mux_close(ma, NULL, NULL);
	raft_mux_close(mb, NULL, NULL);
	drain(&loop);
}

/* ---- raw sockets ----------------------------------------------------------
 */

static int raw_connect(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons(port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

struct raw_read {
	int fd;                /* socket */
	unsigned char buf[16]; /* bytes read */
	size_t got;            /* count */
	bool eof;              /* peer closed */
};

static bool raw_poll(void *arg)
{
	struct raw_read *r = arg;
	ssize_t n = recv(r->fd, r->buf + r->got, sizeof(r->buf) - r->got,
	                 MSG_DONTWAIT);
	if (n > 0) {
		r->got += (size_t)n;
	} else if (n == 0) {
		r->eof = true;
	}
	return r->eof;
}

static bool file_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		return false;
	}
	char line[1024];
	bool found = false;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, needle) != NULL) {
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* A connection that does not speak the protocol gets a BAD_MAGIC reply, is
 * closed, and the refusal is logged with the peer address and a hint. */
static void test_raft_transport_bad_handshake_rejected(void **state)
{
	(void)state;
	char dir[] = "/tmp/strata-raft-tr-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char logpath[128];
	snprintf(logpath, sizeof(logpath), "%s/log", dir);
	char errmsg[STRATA_ERRMSG_SIZE];
	assert_int_equal(log_open(logpath, errmsg), 0);

	uv_loop_t loop;
	uv_loop_init(&loop);
	struct raft_mux *m = mux_new(&loop, 0);
	int fd = raw_connect(raft_mux_port(m));
	char junk[RAFT_TRANSPORT_HS_FIXED];
	memset(junk, 'G', sizeof(junk));
	assert_int_equal(send(fd, junk, sizeof(junk), 0),
	                 (ssize_t)sizeof(junk));
	struct raw_read r = {.fd = fd};
	assert_true(run_until(&loop, raw_poll, &r, 5000));
	assert_int_equal(r.got, RAFT_TRANSPORT_REPLY_SIZE);
	assert_memory_equal(r.buf, "STRA", 4);
	assert_int_equal(r.buf[4] | (r.buf[5] << 8), RAFT_TRANSPORT_BAD_MAGIC);
	close(fd);
	struct raft_mux_stats st;
	raft_mux_stats(m, &st);
	assert_int_equal(st.rejected, 1);
	raft_mux_close(m, NULL, NULL);
	drain(&loop);
	log_close();
	assert_true(file_contains(logpath, "refused Raft connection from "
	                                   "127.0.0.1:"));
	assert_true(file_contains(logpath, "not a Strata Raft handshake"));
	unlink(logpath);
	rmdir(dir);
}

/* A connection that sends nothing is closed at the handshake deadline. */
static void test_raft_transport_handshake_deadline(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct raft_mux *m = mux_new(&loop, 100);
	int fd = raw_connect(raft_mux_port(m));
	struct raw_read r = {.fd = fd};
	assert_true(run_until(&loop, raw_poll, &r, 5000));
	assert_int_equal(r.got, 0);
	struct raft_mux_stats st;
	raft_mux_stats(m, &st);
	assert_int_equal(st.handshake_timeouts, 1);
	close(fd);
	raft_mux_close(m, NULL, NULL);
	drain(&loop);
}

/* A failed connect makes the next attempt wait a backoff; closing the
 * transport during that wait cancels it (callback RAFT_CANCELED) before the
 * close callback fires. */
static void test_raft_transport_close_cancels_connect(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	memset(&D, 0, sizeof(D));
	struct raft_mux *ma = mux_new(&loop, 0);
	/* A port with nothing listening: bind a mux, note it, close it. */
	struct raft_mux *mz = mux_new(&loop, 0);
	char az[64], aa[64];
	addr_of(mz, az, sizeof(az));
	addr_of(ma, aa, sizeof(aa));
	raft_mux_close(mz, NULL, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);

	struct raft_uv_transport ta;
	assert_int_equal(raft_transport_init(&ta, ma, 1), 0);
	assert_int_equal(ta.init(&ta, 1, aa), 0);
	struct raft_uv_connect req;
	assert_int_equal(ta.connect(&ta, &req, 2, az, d_connect), 0);
	assert_true(run_until(&loop, connect_done, NULL, 5000));
	assert_int_equal(D.connect_status, RAFT_NOCONNECTION);
	assert_non_null(strstr(ta.errmsg, "refused"));

	D.connect_calls = 0;
	assert_int_equal(ta.connect(&ta, &req, 2, az, d_connect), 0);
	ta.close(&ta, d_closed);
	assert_int_equal(D.connect_calls, 0);
	D.closes = 1; /* wait for exactly one close */
	assert_true(run_until(&loop, closes_two, NULL, 2000));
	assert_int_equal(D.connect_calls, 1);
	assert_int_equal(D.connect_status, RAFT_CANCELED);
	raft_transport_close(&ta);
	raft_mux_close(ma, NULL, NULL);
	drain(&loop);
}

/* A second listen for the same group on one port is refused; malformed
 * bind addresses and busy ports fail with a message. */
static void test_raft_transport_config_errors(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	char errmsg[STRATA_ERRMSG_SIZE];
	struct raft_mux *m = NULL;
	struct raft_mux_config bad = {.bind_address = "localhost"};
	assert_int_equal(raft_mux_new(&loop, &bad, &m, errmsg), STRATA_EINVAL);
	assert_non_null(strstr(errmsg, "localhost"));

	m = mux_new(&loop, 0);
	char a[64];
	addr_of(m, a, sizeof(a));
	struct raft_mux_config busy = {.bind_address = a};
	struct raft_mux *m2 = NULL;
	assert_int_equal(raft_mux_new(&loop, &busy, &m2, errmsg), STRATA_EIO);
	assert_non_null(strstr(errmsg, a));

	memset(&D, 0, sizeof(D));
	struct raft_uv_transport t1, t2;
	assert_int_equal(raft_transport_init(&t1, m, 3), 0);
	assert_int_equal(raft_transport_init(&t2, m, 3), 0);
	assert_int_equal(t1.init(&t1, 1, a), 0);
	assert_int_equal(t2.init(&t2, 1, a), 0);
	assert_int_equal(t1.listen(&t1, d_accept), 0);
	assert_int_equal(t2.listen(&t2, d_accept), RAFT_INVALID);
	assert_non_null(strstr(t2.errmsg, "already served"));
	t1.close(&t1, d_closed);
	t2.close(&t2, d_closed);
	assert_true(run_until(&loop, closes_two, NULL, 2000));
	raft_transport_close(&t1);
	raft_transport_close(&t2);
	raft_mux_close(m, NULL, NULL);
	drain(&loop);
}

/* ---- real raft instances ---------------------------------------------------
 * N nodes, each a mux (one port) hosting G groups, all on one loop. */

#define NODES 3
#define GROUPS 2

struct counter_fsm {
	uint64_t count; /* entries applied */
	uint64_t sum;   /* sum of the first byte values */
};

static int cf_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
                    void **result)
{
	struct counter_fsm *c = fsm->data;
	c->count++;
	c->sum += ((unsigned char *)buf->base)[0];
	*result = NULL;
	return 0;
}

static int cf_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                       unsigned *n)
{
	struct counter_fsm *c = fsm->data;
	*bufs = raft_malloc(sizeof(**bufs));
	(*bufs)[0].len = sizeof(*c);
	(*bufs)[0].base = raft_malloc(sizeof(*c));
	memcpy((*bufs)[0].base, c, sizeof(*c));
	*n = 1;
	return 0;
}

static int cf_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct counter_fsm *c = fsm->data;
	memcpy(c, buf->base, sizeof(*c));
	raft_free(buf->base);
	return 0;
}

struct node_group {
	struct raft r;              /* raft instance */
	struct raft_io io;          /* its io */
	struct raft_uv_transport t; /* our transport */
	struct raft_fsm fsm;        /* counting fsm */
	struct counter_fsm c;       /* its state */
	char dir[128];              /* data dir */
	bool up;                    /* started */
	struct cluster *owner;      /* owner */
};

struct cluster {
	uv_loop_t loop;
	char base[64];
	struct raft_mux *mux[NODES];
	char addr[NODES][64];
	uint16_t port[NODES];
	struct node_group g[NODES][GROUPS];
	int closed;
};

static const uint64_t group_ids[GROUPS] = {7, 9};

static void ng_closed(struct raft *r)
{
	struct node_group *ng = r->data;
	struct cluster *c = ng->owner;
	raft_uv_close(&ng->io);
	raft_transport_close(&ng->t);
	c->closed++;
}

static void node_start(struct cluster *c, int n, bool bootstrap)
{
	char errmsg[STRATA_ERRMSG_SIZE];
	char bind[64];
	snprintf(bind, sizeof(bind), "127.0.0.1:%u", c->port[n]);
	struct raft_mux_config cfg = {.bind_address = bind};
	/* Port 0 the first time; the same port on restart. */
	assert_int_equal(raft_mux_new(&c->loop, &cfg, &c->mux[n], errmsg), 0);
	c->port[n] = raft_mux_port(c->mux[n]);
	snprintf(c->addr[n], sizeof(c->addr[n]), "127.0.0.1:%u", c->port[n]);
	(void)bootstrap;
}

static void groups_start(struct cluster *c, int n)
{
	for (int gi = 0; gi < GROUPS; gi++) {
		struct node_group *ng = &c->g[n][gi];
		snprintf(ng->dir, sizeof(ng->dir), "%s/n%d-g%d", c->base, n,
		         gi);
		mkdir(ng->dir, 0755);
		assert_int_equal(
		        raft_transport_init(&ng->t, c->mux[n], group_ids[gi]),
		        0);
		assert_int_equal(
		        raft_uv_init(&ng->io, &c->loop, ng->dir, &ng->t), 0);
		ng->owner = c;
		raft_uv_set_connect_retry_delay(&ng->io, 50);
		ng->fsm.version = 1;
		ng->fsm.data = &ng->c;
		ng->fsm.apply = cf_apply;
		ng->fsm.snapshot = cf_snapshot;
		ng->fsm.restore = cf_restore;
		assert_int_equal(raft_init(&ng->r, &ng->io, &ng->fsm,
		                           (raft_id)(n + 1), c->addr[n]),
		                 0);
		ng->r.data = ng;
		raft_set_election_timeout(&ng->r, 300);
		raft_set_heartbeat_timeout(&ng->r, 50);
		raft_set_pre_vote(&ng->r, true);
		struct raft_configuration conf;
		raft_configuration_init(&conf);
		for (int k = 0; k < NODES; k++) {
			raft_configuration_add(&conf, (raft_id)(k + 1),
			                       c->addr[k], RAFT_VOTER);
		}
		int rv = raft_bootstrap(&ng->r, &conf);
		assert_true(rv == 0 || rv == RAFT_CANTBOOTSTRAP);
		raft_configuration_close(&conf);
		assert_int_equal(raft_start(&ng->r), 0);
		ng->up = true;
	}
}

static void cluster_start(struct cluster *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->base, sizeof(c->base), "/tmp/strata-raft-tr-XXXXXX");
	assert_non_null(mkdtemp(c->base));
	uv_loop_init(&c->loop);
	for (int n = 0; n < NODES; n++) {
		node_start(c, n, true);
	}
	for (int n = 0; n < NODES; n++) {
		groups_start(c, n);
	}
}

static void node_stop(struct cluster *c, int n)
{
	int want = c->closed + GROUPS;
	for (int gi = 0; gi < GROUPS; gi++) {
		c->g[n][gi].up = false;
		raft_close(&c->g[n][gi].r, ng_closed);
	}
	while (c->closed < want) {
		uv_run(&c->loop, UV_RUN_ONCE);
	}
	raft_mux_close(c->mux[n], NULL, NULL);
	uv_run(&c->loop, UV_RUN_NOWAIT);
}

static void rm_rf(const char *path)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
}

static void cluster_stop(struct cluster *c)
{
	for (int n = 0; n < NODES; n++) {
		if (c->g[n][0].up) {
			node_stop(c, n);
		}
	}
	drain(&c->loop);
	rm_rf(c->base);
}

static struct cluster C;

/* Every group has exactly one leader (seen by an up node). */
static bool all_have_leader(void *arg)
{
	struct cluster *c = arg;
	for (int gi = 0; gi < GROUPS; gi++) {
		int leaders = 0;
		for (int n = 0; n < NODES; n++) {
			if (c->g[n][gi].up &&
			    raft_state(&c->g[n][gi].r) == RAFT_LEADER) {
				leaders++;
			}
		}
		if (leaders != 1) {
			return false;
		}
	}
	return true;
}

static struct node_group *leader_of(struct cluster *c, int gi, int *node)
{
	for (int n = 0; n < NODES; n++) {
		if (c->g[n][gi].up &&
		    raft_state(&c->g[n][gi].r) == RAFT_LEADER) {
			if (node != NULL) {
				*node = n;
			}
			return &c->g[n][gi];
		}
	}
	return NULL;
}

static void apply_done(struct raft_apply *req, int status, void *result)
{
	(void)status;
	(void)result;
	raft_free(req);
}

/* Apply n entries whose first byte is value on every group's leader. */
static void apply_all(struct cluster *c, int n, unsigned char value)
{
	for (int gi = 0; gi < GROUPS; gi++) {
		struct node_group *l = leader_of(c, gi, NULL);
		assert_non_null(l);
		for (int i = 0; i < n; i++) {
			struct raft_buffer buf = {.len = 8};
			buf.base = raft_malloc(8);
			memset(buf.base, value + gi, 8);
			struct raft_apply *req = raft_malloc(sizeof(*req));
			assert_int_equal(
			        raft_apply(&l->r, req, &buf, 1, apply_done), 0);
		}
	}
}

struct want_count {
	struct cluster *c;
	uint64_t count; /* every up FSM has applied this many */
};

static bool all_applied(void *arg)
{
	struct want_count *w = arg;
	for (int n = 0; n < NODES; n++) {
		for (int gi = 0; gi < GROUPS; gi++) {
			if (w->c->g[n][gi].up &&
			    w->c->g[n][gi].c.count != w->count) {
				return false;
			}
		}
	}
	return true;
}

/* Three nodes with one port each carry two groups; both elect a leader and
 * replicate to all three FSMs. */
static void test_raft_transport_multiplex_two_groups(void **state)
{
	(void)state;
	struct cluster *c = &C;
	cluster_start(c);
	assert_true(run_until(&c->loop, all_have_leader, c, 10000));
	apply_all(c, 50, 10);
	struct want_count w = {.c = c, .count = 50};
	assert_true(run_until(&c->loop, all_applied, &w, 10000));
	uint64_t accepted = 0;
	for (int n = 0; n < NODES; n++) {
		for (int gi = 0; gi < GROUPS; gi++) {
			assert_int_equal(c->g[n][gi].c.sum,
			                 50u * (10u + (unsigned)gi));
		}
		struct raft_mux_stats st;
		raft_mux_stats(c->mux[n], &st);
		/* Each node accepts at least one connection per group. */
		assert_true(st.accepted >= GROUPS);
		accepted += st.accepted;
	}
	/* Per group: leader to both followers and both followers back. */
	assert_true(accepted >= 4 * GROUPS);
	cluster_stop(c);
}

/* A follower node (its port, all its groups) stops and restarts on the same
 * port and data; the others reconnect and it catches up. */
static void test_raft_transport_reconnect_after_restart(void **state)
{
	(void)state;
	struct cluster *c = &C;
	cluster_start(c);
	assert_true(run_until(&c->loop, all_have_leader, c, 10000));
	apply_all(c, 20, 1);
	struct want_count w = {.c = c, .count = 20};
	assert_true(run_until(&c->loop, all_applied, &w, 10000));

	/* Pick a node that leads no group, if any; else any node. */
	int victim = 0;
	for (int n = 0; n < NODES; n++) {
		bool leads = false;
		for (int gi = 0; gi < GROUPS; gi++) {
			leads |= raft_state(&c->g[n][gi].r) == RAFT_LEADER;
		}
		if (!leads) {
			victim = n;
			break;
		}
	}
	node_stop(c, victim);
	assert_true(run_until(&c->loop, all_have_leader, c, 10000));
	apply_all(c, 20, 1);
	w.count = 40;
	/* The two live nodes apply; the victim is down. */
	assert_true(run_until(&c->loop, all_applied, &w, 10000));

	memset(c->g[victim], 0, sizeof(c->g[victim]));
	node_start(c, victim, false);
	groups_start(c, victim);
	assert_true(run_until(&c->loop, all_applied, &w, 15000));
	struct raft_mux_stats st;
	raft_mux_stats(c->mux[victim], &st);
	assert_true(st.accepted >= 2);
	cluster_stop(c);
}

int main(void)
{
	/* Peers of a closed node see EPIPE; without this the test dies. */
	assert_int_equal(strata_process_init(NULL), 0);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_raft_transport_handshake_sets_nodelay),
	        cmocka_unit_test(test_raft_transport_nodelay_off),
	        cmocka_unit_test(
	                test_raft_transport_unknown_group_and_wrong_node),
	        cmocka_unit_test(test_raft_transport_bad_handshake_rejected),
	        cmocka_unit_test(test_raft_transport_handshake_deadline),
	        cmocka_unit_test(test_raft_transport_close_cancels_connect),
	        cmocka_unit_test(test_raft_transport_config_errors),
	        cmocka_unit_test(test_raft_transport_multiplex_two_groups),
	        cmocka_unit_test(test_raft_transport_reconnect_after_restart),
	};
	return cmocka_run_group_tests_name("raft_transport", tests, NULL, NULL);
}
