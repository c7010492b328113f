/* Unit tests for client/wire.c: the SP req0 client on libstrata's I/O
 * thread, against real NNG rep0 servers (common/rpc) on 127.0.0.1, a
 * listener that speaks something else. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>
#include <nng/nng.h>

#include "client/loop.h"
#include "client/wire.h"
#include "common/rpc.h"
#include "common/sp.h"
#include "strata/error.h"

/* Not 1..99: the RPC layer answers those itself (ping). */
enum { M_ECHO = 401, M_FAIL, M_HOLD, M_BIG, M_REDIRECT };

#define BIG_LEN (3u << 20) /* a reply read straight into its message */
#define MAX_HELD 16
#define N_CALLS 200

/* ------------------------------------------------------------ servers */

/* The servers: NNG rep0 sockets (first run), Strata's own SP listener
 * (second run). */
static bool own_tcp;

struct svc {
	struct rpc_server *srv;
	pthread_mutex_t mu;
	struct rpc_call *held[MAX_HELD];
	int n_held;
	char redirect[RPC_MAX_URL_LEN + 1];
	uint8_t *big;
};

static void handler(void *arg, struct rpc_call *call, uint32_t method,
                    const uint8_t *body, size_t len)
{
	struct svc *s = arg;
	switch (method) {
	case M_ECHO:
		rpc_reply(call, 0, NULL, body, len);
		return;
	case M_FAIL:
		rpc_reply(call, STRATA_ENOENT, "stream 'x' not found", NULL, 0);
		return;
	case M_HOLD:
		pthread_mutex_lock(&s->mu);
		if (s->n_held < MAX_HELD) {
			s->held[s->n_held++] = call;
			call = NULL;
		}
		pthread_mutex_unlock(&s->mu);
		if (call != NULL) {
			rpc_reply(call, STRATA_EBUSY, "too many held", NULL, 0);
		}
		return;
	case M_BIG:
		rpc_reply(call, 0, NULL, s->big, BIG_LEN);
		return;
	case M_REDIRECT:
		if (s->redirect[0] == '\0') {
			rpc_reply(call, 0, NULL, (const uint8_t *)"here", 4);
		} else {
			rpc_reply_redirect(call, STRATA_EWRONGHOST, "not here",
			                   s->redirect);
		}
		return;
	default:
		rpc_reply_unknown_method(call, method);
	}
}

static void svc_start(struct svc *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	s->big = malloc(BIG_LEN);
	assert_non_null(s->big);
	for (size_t i = 0; i < BIG_LEN; i++) {
		s->big[i] = (uint8_t)(i * 7 + 3);
	}
	struct rpc_server_opts o;
	rpc_server_opts_default(&o);
	o.n_contexts = 64;
	o.drain_ms = 100;
	o.own_tcp = own_tcp;
	char err[STRATA_ERRMSG_SIZE];
	int rc = rpc_server_start(&s->srv, "tcp://127.0.0.1:0", &o, handler, s,
	                          err);
	if (rc != 0) {
		fail_msg("rpc_server_start: %s", err);
	}
}

static void svc_release_held(struct svc *s)
{
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->n_held; i++) {
		rpc_reply(s->held[i], 0, NULL, NULL, 0);
	}
	s->n_held = 0;
	pthread_mutex_unlock(&s->mu);
}

static void svc_stop(struct svc *s)
{
	if (s->srv != NULL) {
		svc_release_held(s);
		rpc_server_stop(s->srv);
		s->srv = NULL;
	}
	free(s->big);
	pthread_mutex_destroy(&s->mu);
}

static int n_held(struct svc *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->n_held;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* A TCP listener on 127.0.0.1 (port into *port) that greets every
 * connection with an HTTP error: not an SP peer. */
struct junk {
	int fd;
	pthread_t thread;
};

static void *junk_main(void *arg)
{
	struct junk *j = arg;
	int c = accept(j->fd, NULL, NULL);
	if (c >= 0) {
		const char *m = "HTTP/1.1 400 Bad Request\r\n\r\n";
		ssize_t n = write(c, m, strlen(m));
		(void)n;
		char buf[64];
		while (read(c, buf, sizeof(buf)) > 0) {
		}
		close(c);
	}
	return NULL;
}

static void junk_start(struct junk *j, int *port)
{
	j->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(j->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(j->fd, 4), 0);
	socklen_t len = sizeof(a);
	getsockname(j->fd, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	pthread_create(&j->thread, NULL, junk_main, j);
}

/* ------------------------------------------------------------ results */

struct res {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int code[N_CALLS];
	char errmsg[N_CALLS][STRATA_ERRMSG_SIZE];
	struct rpc_body body[N_CALLS];
	atomic_bool off_loop; /* a callback ran off the loop thread */
	struct loop *l;
};

struct slot {
	struct res *r;
	int i;
};

static void on_done(void *arg, int code, const char *errmsg,
                    struct rpc_body *body)
{
	struct slot *s = arg;
	struct res *r = s->r;
	if (!loop_on_thread(r->l)) {
		atomic_store(&r->off_loop, true);
	}
	pthread_mutex_lock(&r->mu);
	r->code[s->i] = code;
	snprintf(r->errmsg[s->i], STRATA_ERRMSG_SIZE, "%s", errmsg);
	r->body[s->i] = *body;
	r->done++;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Wait until n callbacks ran (at most 10 s). */
static void wait_done(struct res *r, int n)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&r->mu);
	while (r->done < n) {
		if (pthread_cond_timedwait(&r->cv, &r->mu, &until) != 0) {
			break;
		}
	}
	int got = r->done;
	pthread_mutex_unlock(&r->mu);
	assert_int_equal(got, n);
}

struct fx {
	struct loop *l;
	struct wire *w;
	struct res r;
	struct slot slot[N_CALLS];
};

static struct fx *fx_new_resolver(int timeout_ms, wire_resolve_fn resolve)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(loop_new(&f->l, "wire-test"), 0);
	struct wire_opts o = {.timeout_ms = timeout_ms,
	                      .connect_timeout_ms = 1000,
	                      .max_redirects = 3,
	                      .max_msg_bytes = 16u << 20,
	                      .resolve = resolve};
	assert_int_equal(wire_new(f->l, &o, &f->w), 0);
	pthread_mutex_init(&f->r.mu, NULL);
	pthread_cond_init(&f->r.cv, NULL);
	f->r.l = f->l;
	for (int i = 0; i < N_CALLS; i++) {
		f->slot[i].r = &f->r;
		f->slot[i].i = i;
	}
	return f;
}

static struct fx *fx_new(int timeout_ms)
{
	return fx_new_resolver(timeout_ms, NULL);
}

static void fx_free(struct fx *f)
{
	wire_close(f->w);
	loop_free(f->l);
	wire_free(f->w);
	for (int i = 0; i < N_CALLS; i++) {
		rpc_body_free(&f->r.body[i]);
	}
	assert_false(atomic_load(&f->r.off_loop));
	pthread_cond_destroy(&f->r.cv);
	pthread_mutex_destroy(&f->r.mu);
	free(f);
}

static void call(struct fx *f, const char *url, int i, uint32_t method,
                 const void *req, size_t len)
{
	char err[STRATA_ERRMSG_SIZE];
	int rc = wire_call(f->w, url, method, req, len, on_done, &f->slot[i],
	                   err);
	if (rc != 0) {
		fail_msg("wire_call: %s", err);
	}
}

/* Call M_ECHO with text as call i and check its reply (the i calls
 * before it have completed). */
static void expect_echo(struct fx *f, const char *url, int i, const char *text)
{
	size_t n = strlen(text);
	call(f, url, i, M_ECHO, text, n);
	wait_done(&f->r, i + 1);
	assert_int_equal(f->r.code[i], 0);
	assert_int_equal(f->r.body[i].len, n);
	assert_memory_equal(f->r.body[i].data, text, n);
}

/* -------------------------------------------------------------- tests */

static void test_wire_url_ok(void **state)
{
	(void)state;
	assert_true(wire_url_ok("tcp://127.0.0.1:9090"));
	assert_true(wire_url_ok("tcp://[::1]:9090"));
	/* DNS names (looked up at connect). */
	assert_true(wire_url_ok("tcp://localhost:9090"));
	assert_true(wire_url_ok("tcp://store-0.store.ns.svc.cluster.local:1"));
	assert_true(wire_url_ok("tcp://store1.:12345"));
	assert_true(wire_url_ok("tcp://3com.example:80"));
	assert_false(wire_url_ok("tcp://-store:9090"));
	assert_false(wire_url_ok("tcp://store-:9090"));
	assert_false(wire_url_ok("tcp://a..b:9090"));
	assert_false(wire_url_ok("tcp://store_1:9090"));
	assert_false(wire_url_ok("tcp://[localhost]:9090"));
	assert_false(wire_url_ok("tcp://999.1.1.1:9090")); /* not a name */
	assert_false(wire_url_ok("tcp://:9090"));
	assert_false(wire_url_ok("tcp://localhost:0"));
	assert_false(wire_url_ok("tcp://127.0.0.1"));
	assert_false(wire_url_ok("tcp://127.0.0.1:0"));
	assert_false(wire_url_ok("tcp://127.0.0.1:65536"));
	assert_false(wire_url_ok("tcp://127.0.0.1:90x"));
	assert_false(wire_url_ok("tcp://[::1:9090"));
	assert_false(wire_url_ok("ipc:///tmp/x"));
	assert_false(wire_url_ok("inproc://x"));
	assert_false(wire_url_ok(NULL));
}

/* Many calls in flight on one connection: each gets its own reply;
 * errors carry the server's message; a big reply arrives whole. */
static void test_wire_calls(void **state)
{
	(void)state;
	struct svc s;
	svc_start(&s);
	struct fx *f = fx_new(5000);
	const char *url = rpc_server_url(s.srv);
	char req[N_CALLS][16];
	for (int i = 0; i < N_CALLS - 2; i++) {
		snprintf(req[i], sizeof(req[i]), "call %d", i);
		call(f, url, i, M_ECHO, req[i], strlen(req[i]));
	}
	call(f, url, N_CALLS - 2, M_FAIL, NULL, 0);
	call(f, url, N_CALLS - 1, M_BIG, NULL, 0);
	wait_done(&f->r, N_CALLS);
	for (int i = 0; i < N_CALLS - 2; i++) {
		assert_int_equal(f->r.code[i], 0);
		assert_int_equal(f->r.body[i].len, strlen(req[i]));
		assert_memory_equal(f->r.body[i].data, req[i], strlen(req[i]));
	}
	assert_int_equal(f->r.code[N_CALLS - 2], STRATA_ENOENT);
	assert_string_equal(f->r.errmsg[N_CALLS - 2], "stream 'x' not found");
	assert_int_equal(f->r.code[N_CALLS - 1], 0);
	assert_int_equal(f->r.body[N_CALLS - 1].len, BIG_LEN);
	assert_memory_equal(f->r.body[N_CALLS - 1].data, s.big, BIG_LEN);
	fx_free(f);
	svc_stop(&s);
}

/* Nobody listens: STRATA_EUNAVAIL naming the URL; so does a listener that
 * is not an SP rep0 peer. */
static void test_wire_unavailable(void **state)
{
	(void)state;
	struct svc s;
	svc_start(&s);
	char url[64];
	snprintf(url, sizeof(url), "%s", rpc_server_url(s.srv));
	svc_stop(&s); /* the port is free now */
	struct fx *f = fx_new(5000);
	call(f, url, 0, M_ECHO, "x", 1);
	wait_done(&f->r, 1);
	assert_int_equal(f->r.code[0], STRATA_EUNAVAIL);
	assert_non_null(strstr(f->r.errmsg[0], url));
	assert_non_null(strstr(f->r.errmsg[0], "request not sent"));

	struct junk j;
	int port;
	junk_start(&j, &port);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
	call(f, url, 1, M_ECHO, "x", 1);
	wait_done(&f->r, 2);
	assert_int_equal(f->r.code[1], STRATA_EUNAVAIL);
	assert_non_null(strstr(f->r.errmsg[1], "not an NNG/SP server"));
	fx_free(f);
	pthread_join(j.thread, NULL);
	close(j.fd);
}

/* No reply in time: STRATA_ETIMEDOUT; the late reply is dropped and the
 * connection keeps serving. */
static void test_wire_timeout(void **state)
{
	(void)state;
	struct svc s;
	svc_start(&s);
	struct fx *f = fx_new(300);
	const char *url = rpc_server_url(s.srv);
	call(f, url, 0, M_HOLD, NULL, 0);
	wait_done(&f->r, 1);
	assert_int_equal(f->r.code[0], STRATA_ETIMEDOUT);
	assert_non_null(strstr(f->r.errmsg[0], "no reply within 300 ms"));
	svc_release_held(&s); /* a late reply */
	expect_echo(f, url, 1, "again");
	fx_free(f);
	svc_stop(&s);
}

/* The server goes away with calls in flight: they end with
 * STRATA_EUNAVAIL (may have been executed); closing ends held calls with
 * STRATA_ECLOSED and later calls fail at once. */
static void test_wire_lost_and_close(void **state)
{
	(void)state;
	struct svc s;
	svc_start(&s);
	struct fx *f = fx_new(5000);
	char url[64];
	snprintf(url, sizeof(url), "%s", rpc_server_url(s.srv));
	call(f, url, 0, M_HOLD, NULL, 0);
	call(f, url, 1, M_HOLD, NULL, 0);
	for (int i = 0; i < 200 && n_held(&s) < 2; i++) {
		usleep(5000);
	}
	assert_int_equal(n_held(&s), 2);
	/* Unanswered: the server stops under them (replied to afterwards,
	 * late, which sends nothing and frees the server's memory). */
	pthread_mutex_lock(&s.mu);
	struct rpc_call *late[2] = {s.held[0], s.held[1]};
	s.n_held = 0;
	pthread_mutex_unlock(&s.mu);
	rpc_server_stop(s.srv);
	s.srv = NULL;
	wait_done(&f->r, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(rpc_reply(late[i], 0, NULL, NULL, 0),
		                 STRATA_ECLOSED);
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(f->r.code[i], STRATA_EUNAVAIL);
		assert_non_null(
		        strstr(f->r.errmsg[i], "may have been executed"));
	}
	svc_stop(&s);

	struct svc s2;
	svc_start(&s2);
	call(f, rpc_server_url(s2.srv), 2, M_HOLD, NULL, 0);
	for (int i = 0; i < 200 && n_held(&s2) < 1; i++) {
		usleep(5000);
	}
	wire_close(f->w);
	wait_done(&f->r, 3);
	assert_int_equal(f->r.code[2], STRATA_ECLOSED);
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(wire_call(f->w, rpc_server_url(s2.srv), M_ECHO, NULL,
	                           0, on_done, &f->slot[3], err),
	                 STRATA_ECLOSED);
	fx_free(f);
	svc_stop(&s2);
}

/* EWRONGHOST with a redirect is followed to the named store, at most
 * max_redirects times. */
static void test_wire_redirect(void **state)
{
	(void)state;
	struct svc a, b;
	svc_start(&a);
	svc_start(&b);
	snprintf(a.redirect, sizeof(a.redirect), "%s", rpc_server_url(b.srv));
	struct fx *f = fx_new(5000);
	call(f, rpc_server_url(a.srv), 0, M_REDIRECT, NULL, 0);
	wait_done(&f->r, 1);
	assert_int_equal(f->r.code[0], 0);
	assert_memory_equal(f->r.body[0].data, "here", 4);
	/* Now b sends back to a: the ping-pong ends after 3 hops. */
	snprintf(b.redirect, sizeof(b.redirect), "%s", rpc_server_url(a.srv));
	call(f, rpc_server_url(a.srv), 1, M_REDIRECT, NULL, 0);
	wait_done(&f->r, 2);
	assert_int_equal(f->r.code[1], STRATA_EWRONGHOST);
	assert_string_equal(f->r.errmsg[1], "not here");
	fx_free(f);
	svc_stop(&a);
	svc_stop(&b);
}

/* ------------------------------------------------------- host names */

/* The port a test server listens on. */
static unsigned svc_port(struct svc *s)
{
	char host[64];
	unsigned port;
	assert_true(sp_url_host_port(rpc_server_url(s->srv), false, host,
	                             sizeof(host), &port));
	return port;
}

/* A fake resolver (wire_opts.resolve): answers for "store.test" with a
 * closed port first and then the port asked for, after fake_ms;
 * "none.test" does not resolve. Counts the lookups that returned. */
static int fake_closed; /* a port nobody listens on */
static int fake_ms;     /* how long a lookup takes */
static atomic_int fake_returned;

static size_t fake_resolve(const char *host, unsigned port,
                           struct sockaddr_storage *addrs, socklen_t *lens,
                           size_t n, char *errmsg)
{
	assert_true(n >= 2);
	usleep((useconds_t)fake_ms * 1000);
	size_t k = 0;
	if (strcmp(host, "store.test") == 0) {
		int ports[2] = {fake_closed, (int)port};
		for (k = 0; k < 2; k++) {
			struct sockaddr_in *a = (struct sockaddr_in *)&addrs[k];
			memset(a, 0, sizeof(*a));
			a->sin_family = AF_INET;
			a->sin_port = htons((uint16_t)ports[k]);
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			lens[k] = sizeof(*a);
		}
	} else {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "host name %s does not resolve: Name or service not "
		         "known",
		         host);
	}
	atomic_fetch_add(&fake_returned, 1);
	return k;
}

/* Wait until n fake lookups have returned (their threads end at once). */
static void wait_fake_returned(int n)
{
	for (int i = 0; i < 1000 && atomic_load(&fake_returned) < n; i++) {
		usleep(5000);
	}
	assert_int_equal(atomic_load(&fake_returned), n);
	usleep(20000); /* the thread's last steps after the count */
}

static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t len = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd); /* bound, never listened: connects are refused */
	return ntohs(a.sin_port);
}

/* A host name is looked up off the I/O thread and its addresses tried in
 * order (the first refuses); a name that does not resolve, and one that
 * resolves too late, end the call with STRATA_EUNAVAIL naming the URL;
 * a client closing during a lookup ends the call with STRATA_ECLOSED and
 * the lookup's late result is dropped. */
static void test_wire_host_names(void **state)
{
	(void)state;
	struct svc s;
	svc_start(&s);
	unsigned port = svc_port(&s);
	fake_closed = closed_port();
	fake_ms = 0;
	atomic_store(&fake_returned, 0);
	struct fx *f = fx_new_resolver(5000, fake_resolve);
	char url[64];
	snprintf(url, sizeof(url), "tcp://store.test:%u", port);
	call(f, url, 0, M_ECHO, "one", 3);
	call(f, url, 1, M_ECHO, "two", 3);
	wait_done(&f->r, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(f->r.code[i], 0);
		assert_int_equal(f->r.body[i].len, 3);
	}
	assert_int_equal(atomic_load(&fake_returned), 1); /* one connect */

	snprintf(url, sizeof(url), "tcp://none.test:%u", port);
	call(f, url, 2, M_ECHO, "x", 1);
	wait_done(&f->r, 3);
	assert_int_equal(f->r.code[2], STRATA_EUNAVAIL);
	assert_non_null(strstr(f->r.errmsg[2], url));
	assert_non_null(strstr(f->r.errmsg[2], "does not resolve"));
	assert_non_null(strstr(f->r.errmsg[2], "request not sent"));

	/* Slower than the connect timeout (1000 ms). */
	fake_ms = 1500;
	snprintf(url, sizeof(url), "tcp://store.test.:%u", port);
	call(f, url, 3, M_ECHO, "x", 1);
	wait_done(&f->r, 4);
	assert_int_equal(f->r.code[3], STRATA_EUNAVAIL);
	assert_non_null(strstr(f->r.errmsg[3], "did not resolve within"));
	wait_fake_returned(3);

	/* Closed while looking up. */
	fake_ms = 300;
	snprintf(url, sizeof(url), "tcp://store.test:%u", port);
	struct fx *g = fx_new_resolver(5000, fake_resolve);
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(wire_call(g->w, url, M_ECHO, (const uint8_t *)"x", 1,
	                           on_done, &g->slot[0], err),
	                 0);
	usleep(50000);
	wire_close(g->w);
	wait_done(&g->r, 1);
	assert_int_equal(g->r.code[0], STRATA_ECLOSED);
	fx_free(g);
	wait_fake_returned(4);
	fx_free(f);
	svc_stop(&s);
}

/* The system resolver: "localhost" (from /etc/hosts) reaches the server
 * on 127.0.0.1, also when ::1 comes first and refuses. */
static void test_wire_localhost(void **state)
{
	(void)state;
	struct addrinfo *ai = NULL;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
	if (getaddrinfo("localhost", "1", &hints, &ai) != 0) {
		print_message("localhost does not resolve here: skipped\n");
		skip();
	}
	freeaddrinfo(ai);
	struct svc s;
	svc_start(&s);
	unsigned port = svc_port(&s);
	struct fx *f = fx_new(5000);
	char url[64];
	snprintf(url, sizeof(url), "tcp://localhost:%u", port);
	expect_echo(f, url, 0, "hi");
	fx_free(f);
	svc_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_wire_url_ok),
	        cmocka_unit_test(test_wire_calls),
	        cmocka_unit_test(test_wire_unavailable),
	        cmocka_unit_test(test_wire_timeout),
	        cmocka_unit_test(test_wire_lost_and_close),
	        cmocka_unit_test(test_wire_redirect),
	        cmocka_unit_test(test_wire_host_names),
	        cmocka_unit_test(test_wire_localhost),
	};
	int rc = cmocka_run_group_tests_name("wire, NNG servers", tests, NULL,
	                                     NULL);
	own_tcp = true;
	rc |= cmocka_run_group_tests_name("wire, own SP servers", tests, NULL,
	                                  NULL);
	return rc;
}
