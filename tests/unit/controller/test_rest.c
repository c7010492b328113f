/* Unit tests for controller/rest.c: the JSON helpers, the REST resources,
 * status codes, health, metrics and forwarding from a follower. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/metrics.h"
#include "common/rpc.h"
#include "controller/rest.h"
#include "tests/unit/controller/svc_fixture.h"

/* ------------------------------------------------------------- JSON -- */

struct strs {
	char v[4][32];
	int n;
};

static void collect(void *arg, const char *s)
{
	struct strs *c = arg;
	snprintf(c->v[c->n++ % 4], sizeof(c->v[0]), "%s", s);
}

/* Strings, integers and string arrays are found at the top level, nested
 * values skipped; absent keys are ENOENT and bad input EPROTO. */
static void test_rest_json_helpers(void **state)
{
	(void)state;
	const char *j =
	        " { \"nested\": {\"scope\": \"no\", \"a\": [1, {\"b\":"
	        " null}]}, \"scope\" : \"s\\u0041\\\"x\", \"n\": 42,"
	        " \"neg\": -1, \"tags\": [\"a\", \"b\\\\c\"], \"f\": 1.5,"
	        " \"t\": true }";
	size_t len = strlen(j);
	char out[32];
	uint64_t v;
	assert_int_equal(rest_json_string(j, len, "scope", out, sizeof(out)),
	                 0);
	assert_string_equal(out, "sA\"x");
	assert_int_equal(rest_json_uint(j, len, "n", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(rest_json_uint(j, len, "neg", &v), STRATA_EPROTO);
	assert_int_equal(rest_json_uint(j, len, "f", &v), STRATA_EPROTO);
	assert_int_equal(rest_json_uint(j, len, "scope", &v), STRATA_EPROTO);
	assert_int_equal(rest_json_string(j, len, "n", out, sizeof(out)),
	                 STRATA_EPROTO);
	assert_int_equal(rest_json_string(j, len, "missing", out, sizeof(out)),
	                 STRATA_ENOENT);
	struct strs c = {.n = 0};
	assert_int_equal(rest_json_strings(j, len, "tags", collect, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.v[0], "a");
	assert_string_equal(c.v[1], "b\\c");
	assert_int_equal(rest_json_strings(j, len, "n", collect, &c),
	                 STRATA_EPROTO);
	/* Too long for the buffer. */
	assert_int_equal(rest_json_string(j, len, "scope", out, 3),
	                 STRATA_EPROTO);
	/* Malformed documents. */
	static const char *const bad[] = {
	        "",
	        "[]",
	        "{",
	        "{\"scope\"}",
	        "{\"a\":}",
	        "{\"a\":1,",
	        "{\"a\":\"\\q\"}",
	        "{\"a\" 1}",
	        "{\"a\":\"x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = rest_json_string(bad[i], strlen(bad[i]), "scope", out,
		                          sizeof(out));
		if (rc != STRATA_EPROTO) {
			fail_msg("\"%s\" gave %d", bad[i], rc);
		}
	}
	assert_int_equal(rest_json_string("{}", 2, "scope", out, sizeof(out)),
	                 STRATA_ENOENT);
	/* Deep nesting is refused, not recursed into without bound. */
	char deep[200];
	size_t k = 0;
	k += (size_t)snprintf(deep, sizeof(deep), "{\"a\":");
	for (int i = 0; i < 60; i++) {
		deep[k++] = '[';
	}
	deep[k] = '\0';
	assert_int_equal(rest_json_string(deep, k, "scope", out, sizeof(out)),
	                 STRATA_EPROTO);

	/* Only known keys, each once: a typo is refused, naming it. */
	const char *known[] = {"stream", "min_segments", "tags"};
	char msg[STRATA_ERRMSG_SIZE];
	const char *ok =
	        "{\"stream\":\"s\",\"tags\":[\"a\"],\"min_segments\":3}";
	assert_int_equal(rest_json_keys(ok, strlen(ok), known, 3, msg), 0);
	assert_int_equal(rest_json_keys("{}", 2, known, 3, msg), 0);
	const char *typo = "{\"stream\":\"s\",\"min_segment\":5}";
	assert_int_equal(rest_json_keys(typo, strlen(typo), known, 3, msg),
	                 STRATA_EINVAL);
	assert_non_null(strstr(msg, "unknown field \"min_segment\""));
	assert_non_null(strstr(msg, "min_segments"));
	const char *twice = "{\"stream\":\"a\",\"stream\":\"b\"}";
	assert_int_equal(rest_json_keys(twice, strlen(twice), known, 3, msg),
	                 STRATA_EINVAL);
	assert_non_null(strstr(msg, "given twice"));
	char lng[600];
	int m = snprintf(lng, sizeof(lng), "{\"%0400d\":1}", 7);
	assert_int_equal(rest_json_keys(lng, (size_t)m, known, 3, msg),
	                 STRATA_EINVAL);
	assert_non_null(strstr(msg, "very long"));
	assert_int_equal(rest_json_keys("[1]", 3, known, 3, msg),
	                 STRATA_EPROTO);
	assert_int_equal(rest_json_keys("{\"stream\" 1}", 12, known, 3, msg),
	                 STRATA_EPROTO);
	/* Cut short, or followed by anything: malformed as a whole. */
	const char *cut = "{\"stream\":\"s\"";
	assert_int_equal(rest_json_keys(cut, strlen(cut), known, 3, msg),
	                 STRATA_EPROTO);
	const char *junk = "{\"stream\":\"s\"} and more";
	assert_int_equal(rest_json_keys(junk, strlen(junk), known, 3, msg),
	                 STRATA_EPROTO);
	assert_int_equal(rest_json_keys("{} x", 4, known, 3, msg),
	                 STRATA_EPROTO);
	const char *trail = "{\"stream\":\"s\"}\n ";
	assert_int_equal(rest_json_keys(trail, strlen(trail), known, 3, msg),
	                 0);
}

/* ------------------------------------------------------------- HTTP -- */

/* One request; returns the status; body (NUL-terminated) in out. */
static int http(int port, const char *method, const char *path,
                const char *body, char *out, size_t size)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	char req[2048];
	int n = snprintf(req, sizeof(req),
	                 "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	                 "Content-Length: %zu\r\n\r\n%s",
	                 method, path, body ? strlen(body) : 0,
	                 body ? body : "");
	assert_int_equal(write(fd, req, (size_t)n), n);
	static char resp[1 << 16];
	size_t got = 0;
	ssize_t r;
	while ((r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0) {
		got += (size_t)r;
	}
	close(fd);
	resp[got] = '\0';
	int status = 0;
	assert_int_equal(sscanf(resp, "HTTP/1.1 %d", &status), 1);
	const char *b = strstr(resp, "\r\n\r\n");
	snprintf(out, size, "%s", b != NULL ? b + 4 : "");
	return status;
}

struct rest_env {
	struct fx f;
	struct metrics_registry *reg[2];
	struct rest *rest[2];
	struct rpc_server *rpc[2];
};

static void rest_env_start(struct rest_env *e, unsigned n)
{
	char err[STRATA_ERRMSG_SIZE];
	fx_init(&e->f, n);
	for (unsigned i = 0; i < n; i++) {
		fx_start(&e->f, i);
		assert_int_equal(metrics_registry_new(&e->reg[i]), 0);
		struct rest_config rc = {.url = "http://127.0.0.1:0",
		                         .config_key = "http.listen",
		                         .svc = e->f.svc[i],
		                         .api = e->f.api[i],
		                         .metrics = e->reg[i]};
		assert_int_equal(rest_start(&rc, &e->rest[i], err), 0);
		assert_int_equal(rpc_server_start(&e->rpc[i],
		                                  e->f.members[i].client_url,
		                                  NULL, ctl_api_rpc_handler,
		                                  e->f.api[i], err),
		                 0);
	}
}

static void rest_env_stop(struct rest_env *e, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		rest_stop(e->rest[i]);
		rpc_server_stop(e->rpc[i]);
	}
	fx_close(&e->f);
	for (unsigned i = 0; i < n; i++) {
		metrics_registry_free(e->reg[i]);
	}
}

/* Scopes and streams over REST with the right status codes and JSON;
 * health and metrics on the same port. */
static void test_rest_resources(void **state)
{
	(void)state;
	struct rest_env e;
	char b[1 << 15];
	rest_env_start(&e, 1);
	fx_wait_leader(&e.f, 5000);
	int port = rest_port(e.rest[0]);

	assert_int_equal(http(port, "POST", "/v1/scopes", "{\"scope\":\"sc\"}",
	                      b, sizeof(b)),
	                 201);
	assert_non_null(strstr(b, "\"scope\":\"sc\""));
	assert_int_equal(http(port, "POST", "/v1/scopes", "{\"scope\":\"sc\"}",
	                      b, sizeof(b)),
	                 409);
	assert_non_null(strstr(b, "\"error\":\"STRATA_EEXIST\""));
	assert_int_equal(http(port, "POST", "/v1/scopes", "{\"scope\":\"a b\"}",
	                      b, sizeof(b)),
	                 400);
	assert_non_null(strstr(b, "STRATA_EBADNAME"));
	assert_int_equal(
	        http(port, "POST", "/v1/scopes", "not json", b, sizeof(b)),
	        400);
	/* A body cut short is refused whole, not acted on up to the cut. */
	assert_int_equal(http(port, "POST", "/v1/scopes", "{\"scope\":\"cut\"",
	                      b, sizeof(b)),
	                 400);
	assert_non_null(strstr(b, "not one well-formed JSON object"));
	assert_int_equal(http(port, "GET", "/v1/scopes", NULL, b, sizeof(b)),
	                 200);
	assert_non_null(strstr(b, "{\"scopes\":[\"sc\"]}"));

	assert_int_equal(http(port, "POST", "/v1/scopes/sc/streams",
	                      "{\"stream\":\"st\",\"min_segments\":2,"
	                      "\"tags\":[\"t1\"],\"retention\":\"by_time\","
	                      "\"retention_min\":60000}",
	                      b, sizeof(b)),
	                 201);
	assert_non_null(strstr(b, "\"workflow_id\":1"));
	assert_int_equal(http(port, "POST", "/v1/scopes/sc/streams",
	                      "{\"stream\":\"x\",\"scaling\":\"weird\"}", b,
	                      sizeof(b)),
	                 400);
	assert_non_null(strstr(b, "weird"));
	/* A typo is refused rather than left at its default. */
	assert_int_equal(http(port, "POST", "/v1/scopes/sc/streams",
	                      "{\"stream\":\"x\",\"min_segment\":5}", b,
	                      sizeof(b)),
	                 400);
	assert_non_null(strstr(b, "unknown field \\\"min_segment\\\""));
	assert_int_equal(http(port, "PUT", "/v1/scopes/sc/streams/st",
	                      "{\"stream\":\"other\"}", b, sizeof(b)),
	                 400);
	assert_non_null(strstr(b, "unknown field"));
	assert_int_equal(http(port, "GET", "/v1/scopes/sc/streams?tag=t1", NULL,
	                      b, sizeof(b)),
	                 200);
	assert_non_null(strstr(b, "[\"st\"]"));
	assert_int_equal(http(port, "GET", "/v1/scopes/sc/streams?tag=zz", NULL,
	                      b, sizeof(b)),
	                 200);
	assert_non_null(strstr(b, "\"streams\":[]"));
	assert_int_equal(http(port, "GET", "/v1/scopes/sc", NULL, b, sizeof(b)),
	                 200);
	assert_non_null(strstr(b, "\"scope\":\"sc\",\"streams\":[\"st\"]"));
	assert_int_equal(http(port, "GET", "/v1/scopes/sc/streams/st", NULL, b,
	                      sizeof(b)),
	                 200);
	assert_non_null(strstr(b, "\"state\":\"CREATING\""));
	assert_non_null(strstr(b, "\"type\":\"fixed\",\"min_segments\":2"));
	assert_non_null(strstr(b, "\"type\":\"by_time\",\"min\":60000"));
	assert_non_null(strstr(b, "\"name\":\"sc/st/1.#epoch.0\""));
	/* Reader groups: listed and shown, with what they released. */
	Strata__V1__ReaderGroupStream rs =
	        STRATA__V1__READER_GROUP_STREAM__INIT;
	Strata__V1__ReaderGroupStream *rsp[] = {&rs};
	Strata__V1__ReaderGroupConfig rg =
	        STRATA__V1__READER_GROUP_CONFIG__INIT;
	Strata__V1__CreateReaderGroupRequest rq =
	        STRATA__V1__CREATE_READER_GROUP_REQUEST__INIT;
	rs.stream = "st";
	rg.name = "g1";
	rg.streams = rsp;
	rg.n_streams = 1;
	rg.retention =
	        STRATA__V1__READER_GROUP_RETENTION__READER_GROUP_RETENTION_AUTO_CHECKPOINT;
	rg.checkpoint_interval_ms = 30000;
	rq.scope = "sc";
	rq.config = &rg;
	struct fx_reply fr;
	fx_call(e.f.api[0],
	        STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_READER_GROUP,
	        &rq.base, &fr);
	assert_int_equal(fr.code, 0);
	fx_reply_free(&fr);
	assert_int_equal(http(port, "GET", "/v1/scopes/sc/readergroups", NULL,
	                      b, sizeof(b)),
	                 200);
	assert_non_null(strstr(b, "{\"reader_groups\":[{\"name\":\"g1\""));
	assert_non_null(strstr(b, "\"retention\":\"AUTO_CHECKPOINT\""));
	assert_non_null(strstr(b, "\"stream\":\"st\",\"from\":\"head\","
	                          "\"to\":null,\"released\":\"head\""));
	assert_int_equal(http(port, "GET", "/v1/scopes/sc/readergroups/g1",
	                      NULL, b, sizeof(b)),
	                 200);
	assert_non_null(strstr(b, "\"checkpoint_interval_ms\":30000"));
	assert_int_equal(http(port, "GET", "/v1/scopes/sc/readergroups/nope",
	                      NULL, b, sizeof(b)),
	                 404);
	assert_int_equal(http(port, "POST", "/v1/scopes/sc/readergroups", "{}",
	                      b, sizeof(b)),
	                 405);
	/* A group's state stream is the group's: a refusal, not a fault. */
	assert_int_equal(http(port, "PUT", "/v1/scopes/sc/streams/_RGg1/state",
	                      "{\"state\":\"SEALED\"}", b, sizeof(b)),
	                 403);
	assert_non_null(strstr(b, "STRATA_EPERM"));

	/* The create workflow holds the stream: updates and seals wait. */
	assert_int_equal(http(port, "PUT", "/v1/scopes/sc/streams/st",
	                      "{\"min_segments\":3}", b, sizeof(b)),
	                 409);
	assert_non_null(strstr(b, "STRATA_EBUSY"));
	/* Paths are percent-decoded (%73 is 's'); an encoded '/' or NUL
	 * or a broken escape names nothing. */
	assert_int_equal(http(port, "GET", "/v1/scopes/%73c/streams/s%74", NULL,
	                      b, sizeof(b)),
	                 200);
	assert_non_null(strstr(b, "\"stream\":\"st\""));
	assert_int_equal(http(port, "GET", "/v1/scopes/sc%2Fx/streams", NULL, b,
	                      sizeof(b)),
	                 404);
	assert_int_equal(http(port, "GET", "/v1/scopes/sc%00/streams", NULL, b,
	                      sizeof(b)),
	                 404);
	assert_int_equal(
	        http(port, "GET", "/v1/scopes/sc%7", NULL, b, sizeof(b)), 404);
	assert_int_equal(
	        http(port, "GET", "/v1/scopes/sc%zz", NULL, b, sizeof(b)), 404);
	assert_int_equal(http(port, "PUT", "/v1/scopes/sc/streams/st/state",
	                      "{\"state\":\"OPEN\"}", b, sizeof(b)),
	                 400);
	assert_int_equal(http(port, "GET", "/v1/scopes/sc/streams/st/state",
	                      NULL, b, sizeof(b)),
	                 404);
	assert_int_equal(http(port, "PUT", "/v1/scopes/sc/streams/st/state",
	                      "{\"state\":\"SEALED\" this is not json", b,
	                      sizeof(b)),
	                 400);
	assert_non_null(strstr(b, "not one well-formed JSON object"));
	assert_int_equal(http(port, "PUT", "/v1/scopes/sc/streams/st/state",
	                      "{\"state\":\"SEALED\"}", b, sizeof(b)),
	                 409);
	int st = http(port, "DELETE", "/v1/scopes/sc/streams/st", NULL, b,
	              sizeof(b));
	assert_true(st == 409 || st == 412);
	assert_int_equal(
	        http(port, "DELETE", "/v1/scopes/sc", NULL, b, sizeof(b)), 409);
	assert_non_null(strstr(b, "STRATA_ENOTEMPTY"));
	assert_int_equal(http(port, "GET", "/v1/scopes/nope/streams/x", NULL, b,
	                      sizeof(b)),
	                 404);
	assert_int_equal(
	        http(port, "GET", "/v1/scopes/sc/other/x", NULL, b, sizeof(b)),
	        404);
	assert_int_equal(http(port, "PATCH", "/v1/scopes", NULL, b, sizeof(b)),
	                 405);
	assert_int_equal(http(port, "POST", "/v1/scopes", "{\"scope\":\"e\"}",
	                      b, sizeof(b)),
	                 201);
	assert_int_equal(
	        http(port, "DELETE", "/v1/scopes/e", NULL, b, sizeof(b)), 200);

	assert_int_equal(http(port, "GET", "/health/live", NULL, b, sizeof(b)),
	                 200);
	assert_int_equal(http(port, "GET", "/health/ready", NULL, b, sizeof(b)),
	                 200);
	assert_non_null(strstr(b, "\"role\":\"leader\""));
	assert_int_equal(http(port, "GET", "/metrics", NULL, b, sizeof(b)),
	                 200);
	assert_non_null(strstr(b, "strata_controller_raft_term 1"));
	assert_non_null(strstr(b, "strata_controller_raft_leader 1"));
	/* st's creation and that of g1's state stream _RGg1. */
	assert_non_null(strstr(b, "strata_controller_workflows_running{kind="
	                          "\"create_stream\"} 2"));
	assert_non_null(strstr(b, "strata_controller_streams 2"));
	assert_non_null(strstr(b, "strata_controller_workflows_running{kind="
	                          "\"roll_txn\"} 0"));
	rest_env_stop(&e, 1);
}

/* A follower forwards REST writes to the leader and serves reads. */
static void test_rest_follower_forwards(void **state)
{
	(void)state;
	struct rest_env e;
	char b[4096];
	rest_env_start(&e, 2);
	unsigned leader = fx_wait_leader(&e.f, 10000);
	unsigned follower = 1 - leader;
	int port = rest_port(e.rest[follower]);
	int st = 0;
	for (int i = 0; i < 100 && st != 201; i++) {
		st = http(port, "POST", "/v1/scopes", "{\"scope\":\"fw\"}", b,
		          sizeof(b));
		if (st != 201) {
			fx_sleep(50); /* until the follower knows the leader */
		}
	}
	assert_int_equal(st, 201);
	for (int i = 0; i < 100; i++) {
		st = http(port, "GET", "/v1/scopes", NULL, b, sizeof(b));
		if (st == 200 && strstr(b, "\"fw\"") != NULL) {
			break;
		}
		fx_sleep(50);
	}
	assert_non_null(strstr(b, "\"fw\""));
	assert_int_equal(http(port, "GET", "/health/ready", NULL, b, sizeof(b)),
	                 200);
	assert_non_null(strstr(b, "\"role\":\"follower\""));
	rest_env_stop(&e, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rest_json_helpers),
	        cmocka_unit_test(test_rest_resources),
	        cmocka_unit_test(test_rest_follower_forwards),
	};
	return cmocka_run_group_tests_name("controller_rest", tests, NULL,
	                                   NULL);
}
