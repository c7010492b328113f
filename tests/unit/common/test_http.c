/* Unit tests for common/http.c: real HTTP/1.1 over TCP on 127.0.0.1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/http.h"
#include "common/metrics.h"
#include "strata/error.h"
#include "tests/lib/oom.h"

#define ANY_PORT_URL "http://127.0.0.1:0"

/* One parsed HTTP response. */
struct reply {
	int status;         /* status code from the status line */
	char headers[4096]; /* raw header block, NUL-terminated */
	struct buf body;    /* body bytes, NUL-terminated */
};

/* Send raw (whole requests, the last with Connection: close) to
 * 127.0.0.1:port and read everything until the server closes. Fails the
 * test on a socket error or a 10 s timeout. */
static void http_raw(int port, const char *raw, struct buf *in)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	size_t len = strlen(raw);
	assert_int_equal(write(fd, raw, len), (ssize_t)len);
	buf_init(in, 1 << 20);
	assert_int_equal(buf_append(in, "", 0), 0);
	for (;;) {
		char chunk[4096];
		ssize_t n = read(fd, chunk, sizeof(chunk));
		assert_true(n >= 0); /* n < 0: timeout or error */
		if (n == 0) {
			break;
		}
		assert_int_equal(buf_append(in, chunk, (size_t)n), 0);
	}
	close(fd);
}

/* Send one request and parse its response. */
static void http_do(int port, const char *raw, struct reply *r)
{
	struct buf in;
	http_raw(port, raw, &in);
	char *hdr_end = strstr((char *)in.data, "\r\n\r\n");
	assert_non_null(hdr_end);
	assert_int_equal(sscanf((char *)in.data, "HTTP/1.1 %d", &r->status), 1);
	size_t hlen = (size_t)(hdr_end - (char *)in.data) + 4;
	assert_true(hlen < sizeof(r->headers));
	memcpy(r->headers, in.data, hlen);
	r->headers[hlen] = '\0';
	buf_init(&r->body, 0);
	assert_int_equal(buf_append(&r->body, in.data + hlen, in.len - hlen),
	                 0);
	buf_close(&in);
}

/* GET path with Connection: close. */
static void http_get(int port, const char *path, struct reply *r)
{
	char raw[512];
	snprintf(raw, sizeof(raw),
	         "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: "
	         "close\r\n\r\n",
	         path);
	http_do(port, raw, r);
}

static const char *body_str(struct reply *r)
{
	return r->body.data != NULL ? (const char *)r->body.data : "";
}

static void assert_header(const struct reply *r, const char *line)
{
	if (strcasestr(r->headers, line) == NULL) {
		print_error("header \"%s\" missing in:\n%s\n", line,
		            r->headers);
		fail();
	}
}

static struct http_server *start_any(struct metrics_registry *reg,
                                     http_ready_fn ready, void *arg)
{
	struct http_server_config cfg = {.url = ANY_PORT_URL,
	                                 .config_key = "metrics.listen",
	                                 .metrics = reg,
	                                 .ready = ready,
	                                 .ready_arg = arg};
	char errmsg[STRATA_ERRMSG_SIZE] = "";
	struct http_server *srv = NULL;
	int rv = http_server_start(&cfg, &srv, errmsg);
	if (rv != 0) {
		print_error("start: %s\n", errmsg);
	}
	assert_int_equal(rv, 0);
	assert_true(http_server_port(srv) > 0);
	return srv;
}

/* Port 0 picks a free port; /health/live answers 200 with JSON. */
static void test_http_start_port_zero_live(void **state)
{
	(void)state;
	struct http_server *srv = start_any(NULL, NULL, NULL);
	struct reply r;
	http_get(http_server_port(srv), "/health/live", &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "\r\nContent-Type: application/json\r\n");
	assert_string_equal(body_str(&r), "{\"status\":\"live\"}\n");
	buf_close(&r.body);
	/* Without a registry there is no /metrics. */
	http_get(http_server_port(srv), "/metrics", &r);
	assert_int_equal(r.status, 404);
	buf_close(&r.body);
	http_server_stop(srv);
}

/* GET /metrics returns the registry's rendering with the 0.0.4 type. */
static void test_http_metrics_get(void **state)
{
	(void)state;
	struct metrics_registry *reg;
	assert_int_equal(metrics_registry_new(&reg), 0);
	struct metrics_counter *c;
	const struct metrics_label l[] = {{"container", "3"}};
	assert_int_equal(metrics_counter_register(reg, "strata_test_total",
	                                          "Test.", l, 1, &c, NULL),
	                 0);
	metrics_counter_add(c, 7);
	struct http_server *srv = start_any(reg, NULL, NULL);
	struct reply r;
	http_get(http_server_port(srv), "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "\r\nContent-Type: text/plain; version=0.0.4; "
	                  "charset=utf-8\r\n");
	assert_string_equal(body_str(&r),
	                    "# HELP strata_test_total Test.\n"
	                    "# TYPE strata_test_total counter\n"
	                    "strata_test_total{container=\"3\"} 7\n");
	buf_close(&r.body);
	http_server_stop(srv);
	metrics_registry_free(reg);
}

/* Unknown paths get 404, a known path with another method 405. */
static void test_http_not_found_and_wrong_method(void **state)
{
	(void)state;
	struct http_server *srv = start_any(NULL, NULL, NULL);
	int port = http_server_port(srv);
	struct reply r;
	http_get(port, "/nope", &r);
	assert_int_equal(r.status, 404);
	buf_close(&r.body);
	http_get(port, "/health/live/extra", &r);
	assert_int_equal(r.status, 404);
	buf_close(&r.body);
	http_do(port,
	        "POST /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	        "Content-Length: 2\r\nConnection: close\r\n\r\nhi",
	        &r);
	assert_int_equal(r.status, 405);
	buf_close(&r.body);
	http_do(port,
	        "DELETE /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	        "Connection: close\r\n\r\n",
	        &r);
	assert_int_equal(r.status, 405);
	buf_close(&r.body);
	http_server_stop(srv);
}

/* What the readiness probe in the next test reports. */
struct probe {
	enum http_readiness state; /* returned state */
	const char *detail;        /* appended JSON, or NULL */
	int calls;                 /* times called */
};

static enum http_readiness probe_ready(void *arg, struct buf *detail)
{
	struct probe *p = arg;
	p->calls++;
	if (p->detail != NULL) {
		(void)buf_printf(detail, "%s", p->detail);
	}
	return p->state;
}

/* /health/ready maps ready/degraded to 200 and not-ready to 503. */
static void test_http_ready_states(void **state)
{
	(void)state;
	struct probe p = {.state = HTTP_READY};
	struct http_server *srv = start_any(NULL, probe_ready, &p);
	int port = http_server_port(srv);
	struct reply r;
	http_get(port, "/health/ready", &r);
	assert_int_equal(r.status, 200);
	assert_header(&r, "\r\nContent-Type: application/json\r\n");
	assert_string_equal(body_str(&r),
	                    "{\"status\":\"ready\",\"detail\":null}\n");
	buf_close(&r.body);

	p.state = HTTP_DEGRADED;
	p.detail = "{\"tier2\":\"slow\"}";
	http_get(port, "/health/ready", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(body_str(&r), "{\"status\":\"degraded\",\"detail\":"
	                                  "{\"tier2\":\"slow\"}}\n");
	buf_close(&r.body);

	p.state = HTTP_NOT_READY;
	p.detail = "{\"raft\":\"no leader\"}";
	http_get(port, "/health/ready", &r);
	assert_int_equal(r.status, 503);
	assert_string_equal(body_str(&r), "{\"status\":\"not_ready\","
	                                  "\"detail\":{\"raft\":\"no "
	                                  "leader\"}}\n");
	buf_close(&r.body);
	assert_int_equal(p.calls, 3);

	/* Liveness does not depend on readiness. */
	http_get(port, "/health/live", &r);
	assert_int_equal(r.status, 200);
	buf_close(&r.body);
	http_server_stop(srv);
}

/* A port held by another socket fails EBUSY naming address and key. */
static void test_http_port_in_use(void **state)
{
	(void)state;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	socklen_t slen = sizeof(sa);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &slen), 0);
	int port = ntohs(sa.sin_port);

	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	struct http_server_config cfg = {.url = url,
	                                 .config_key = "metrics.listen"};
	char errmsg[STRATA_ERRMSG_SIZE] = "";
	struct http_server *srv = NULL;
	assert_int_equal(http_server_start(&cfg, &srv, errmsg), STRATA_EBUSY);
	assert_null(srv);
	char want[128];
	snprintf(want, sizeof(want),
	         "listen on http://127.0.0.1:%d: address already in use", port);
	assert_non_null(strstr(errmsg, want));
	assert_non_null(strstr(errmsg, "change metrics.listen"));
	close(fd);
}

/* A second server on the same address in this process is refused; after
 * stop the address is free again. */
static void test_http_same_address_twice_then_reuse(void **state)
{
	(void)state;
	struct http_server *a = start_any(NULL, NULL, NULL);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", http_server_port(a));
	struct http_server_config cfg = {.url = url,
	                                 .config_key = "rest.listen"};
	char errmsg[STRATA_ERRMSG_SIZE] = "";
	struct http_server *b = NULL;
	assert_int_equal(http_server_start(&cfg, &b, errmsg), STRATA_EBUSY);
	assert_non_null(strstr(errmsg, "this process already serves"));
	assert_non_null(strstr(errmsg, "rest.listen"));
	int port = http_server_port(a);
	http_server_stop(a);
	assert_int_equal(http_server_start(&cfg, &b, errmsg), 0);
	assert_int_equal(http_server_port(b), port);
	struct reply r;
	http_get(port, "/health/live", &r);
	assert_int_equal(r.status, 200);
	buf_close(&r.body);
	http_server_stop(b);
	http_server_stop(NULL);
}

/* Bad URLs fail ECONFIG and name the URL and the config key. */
static void test_http_bad_url(void **state)
{
	(void)state;
	const char *bad[] = {"",
	                     "127.0.0.1:9091",
	                     "tcp://127.0.0.1:9091",
	                     "https://127.0.0.1:9091",
	                     "http://127.0.0.1:99999",
	                     "http://127.0.0.1:80/some/path",
	                     "http://:9091"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_server_config cfg = {
		        .url = bad[i], .config_key = "metrics.listen"};
		char errmsg[STRATA_ERRMSG_SIZE] = "";
		struct http_server *srv = NULL;
		assert_int_equal(http_server_start(&cfg, &srv, errmsg),
		                 STRATA_ECONFIG);
		assert_null(srv);
		assert_non_null(strstr(errmsg, bad[i]));
		assert_non_null(strstr(errmsg, "metrics.listen"));
	}
}

static int echo_handler(void *arg, const struct http_request *req,
                        struct http_response *res)
{
	(void)arg;
	const char *x = http_request_header(req, "x-test");
	snprintf(res->content_type, sizeof(res->content_type),
	         "application/octet-stream");
	res->status = 201;
	int rv = buf_printf(&res->body, "%s %s x=%s len=%zu:", req->method,
	                    req->uri, x != NULL ? x : "(none)", req->body_len);
	if (rv == 0) {
		rv = buf_append(&res->body, req->body, req->body_len);
	}
	return rv;
}

static int failing_handler(void *arg, const struct http_request *req,
                           struct http_response *res)
{
	(void)arg;
	(void)req;
	(void)buf_printf(&res->body, "partial output that must not leak");
	return STRATA_EIO;
}

/* User handlers see method, URI, headers and body; subtrees work; an
 * error becomes 500; duplicates and bad paths are refused. */
static void test_http_custom_handlers(void **state)
{
	(void)state;
	struct http_server *srv = start_any(NULL, NULL, NULL);
	int port = http_server_port(srv);
	assert_int_equal(http_server_add_handler(srv, "POST", "/echo",
	                                         echo_handler, NULL),
	                 0);
	assert_int_equal(http_server_add_handler(srv, "POST", "/echo",
	                                         echo_handler, NULL),
	                 STRATA_EEXIST);
	assert_int_equal(
	        http_server_add_handler(srv, NULL, "/v1/*", echo_handler, NULL),
	        0);
	assert_int_equal(http_server_add_handler(srv, "GET", "/fail",
	                                         failing_handler, NULL),
	                 0);
	assert_int_equal(http_server_add_handler(srv, "GET", "relative",
	                                         echo_handler, NULL),
	                 STRATA_EINVAL);
	assert_int_equal(http_server_add_handler(srv, "GET", "/x", NULL, NULL),
	                 STRATA_EINVAL);

	struct reply r;
	http_do(port,
	        "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Test: yes\r\n"
	        "Content-Length: 5\r\nConnection: close\r\n\r\nhello",
	        &r);
	assert_int_equal(r.status, 201);
	assert_header(&r, "\r\nContent-Type: application/octet-stream\r\n");
	assert_string_equal(body_str(&r), "POST /echo x=yes len=5:hello");
	buf_close(&r.body);

	http_do(port,
	        "DELETE /v1/scopes/s1?force=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	        "Connection: close\r\n\r\n",
	        &r);
	assert_int_equal(r.status, 201);
	assert_string_equal(body_str(&r),
	                    "DELETE /v1/scopes/s1?force=1 x=(none) len=0:");
	buf_close(&r.body);

	http_get(port, "/fail", &r);
	assert_int_equal(r.status, 500);
	assert_null(strstr(body_str(&r), "partial"));
	assert_non_null(strstr(body_str(&r), "input/output error"));
	buf_close(&r.body);

	/* HEAD follows GET without a body. */
	http_do(port,
	        "HEAD /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	        "Connection: close\r\n\r\n",
	        &r);
	assert_int_equal(r.status, 200);
	buf_close(&r.body);
	http_server_stop(srv);
}

/* Pipelined requests on one keep-alive connection are all answered, in
 * order. */
static void test_http_keep_alive_pipelined(void **state)
{
	(void)state;
	struct probe p = {.state = HTTP_NOT_READY};
	struct http_server *srv = start_any(NULL, probe_ready, &p);
	struct buf in;
	http_raw(http_server_port(srv),
	         "GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	         "GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
	         "GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	         "Connection: close\r\n\r\n",
	         &in);
	const char *s = (const char *)in.data;
	const char *r1 = strstr(s, "HTTP/1.1 200");
	const char *r2 = strstr(s, "HTTP/1.1 404");
	const char *r3 = strstr(s, "HTTP/1.1 503");
	assert_non_null(r1);
	assert_non_null(r2);
	assert_non_null(r3);
	assert_true(r1 < r2 && r2 < r3);
	assert_non_null(strstr(r3, "{\"status\":\"not_ready\""));
	buf_close(&in);
	http_server_stop(srv);
}

/* Every allocation in start may fail: ENOMEM, nothing leaks, and a later
 * start works. */
static void test_http_start_oom(void **state)
{
	(void)state;
	struct metrics_registry *reg;
	assert_int_equal(metrics_registry_new(&reg), 0);
	struct http_server_config cfg = {.url = ANY_PORT_URL,
	                                 .config_key = "metrics.listen",
	                                 .metrics = reg};
	char errmsg[STRATA_ERRMSG_SIZE];
	long n;
	for (n = 1; n < 100; n++) {
		struct http_server *srv = NULL;
		oom_install(n);
		int rv = http_server_start(&cfg, &srv, errmsg);
		long calls = oom_uninstall();
		if (rv == 0) {
			assert_true(calls < n);
			http_server_stop(srv);
			break;
		}
		assert_int_equal(rv, STRATA_ENOMEM);
		assert_null(srv);
	}
	assert_true(n > 3 && n < 100);
	metrics_registry_free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_http_start_port_zero_live),
	        cmocka_unit_test(test_http_metrics_get),
	        cmocka_unit_test(test_http_not_found_and_wrong_method),
	        cmocka_unit_test(test_http_ready_states),
	        cmocka_unit_test(test_http_port_in_use),
	        cmocka_unit_test(test_http_same_address_twice_then_reuse),
	        cmocka_unit_test(test_http_bad_url),
	        cmocka_unit_test(test_http_custom_handlers),
	        cmocka_unit_test(test_http_keep_alive_pipelined),
	        cmocka_unit_test(test_http_start_oom),
	};
	return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
