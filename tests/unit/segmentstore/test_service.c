/* Unit tests for segmentstore/service.c: the address and tier-2 option
 * helpers, and a whole segment store half started and stopped on
 * 127.0.0.1 with the mem tier-2 plugin. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/metrics.h"
#include "segmentstore/service.h"
#include "strata/error.h"

/* The keys ss_tier2_options reads, as both binaries declare them. */
static const struct config_key schema[] = {
        {.name = "data_dir", .type = CONFIG_STRING, .def = "/d", .help = "h"},
        {.name = "tier2.plugin",
         .type = CONFIG_STRING,
         .def = "local",
         .help = "h"},
        {.name = "tier2.options", .type = CONFIG_SECTION, .help = "h"},
};

/* Load schema from the flags (NULL-terminated) and flatten the options. */
static char *options_of(const char *flag1, const char *flag2)
{
	char *argv[4] = {"test", (char *)flag1, (char *)flag2, NULL};
	int argc = flag1 == NULL ? 1 : flag2 == NULL ? 2 : 3;
	char *envp[] = {NULL};
	struct config cfg;
	assert_int_equal(config_init(&cfg, schema, 3), 0);
	assert_int_equal(config_load(&cfg, argc, argv, envp, NULL), 0);
	char *out = NULL;
	assert_int_equal(ss_tier2_options(&cfg, &out), 0);
	config_close(&cfg);
	return out;
}

/* A port is the number after the last colon of the host part, else -1. */
static void test_ss_url_port_forms(void **state)
{
	(void)state;
	assert_int_equal(ss_url_port("tcp://127.0.0.1:12345"), 12345);
	assert_int_equal(ss_url_port("0.0.0.0:0"), 0);
	assert_int_equal(ss_url_port("http://h:80/x"), 80);
	assert_int_equal(ss_url_port("tcp://h"), -1);
	assert_int_equal(ss_url_port("tcp://h:"), -1);
	assert_int_equal(ss_url_port("h:12x"), -1);
	assert_int_equal(ss_url_port("h:65536"), -1);
}

/* A concrete host is kept, the port replaced by the real one. */
static void test_ss_advertised_keeps_host(void **state)
{
	(void)state;
	char out[64], err[STRATA_ERRMSG_SIZE];
	assert_int_equal(ss_advertised("tcp://10.1.2.3:0", 555, "listen", out,
	                               sizeof(out), err),
	                 0);
	assert_string_equal(out, "tcp://10.1.2.3:555");
	assert_int_equal(
	        ss_advertised("db.example:9", 9, "k", out, sizeof(out), err),
	        0);
	assert_string_equal(out, "db.example:9");
}

/* A wildcard or empty host becomes this host's IPv4 address. */
static void test_ss_advertised_wildcard(void **state)
{
	(void)state;
	const char *in[] = {"http://0.0.0.0:0", "http://*:0", "http://:0"};
	for (size_t i = 0; i < 3; i++) {
		char out[64], err[STRATA_ERRMSG_SIZE];
		assert_int_equal(ss_advertised(in[i], 7, "http.listen", out,
		                               sizeof(out), err),
		                 0);
		assert_true(strncmp(out, "http://", 7) == 0);
		assert_null(strstr(out, "0.0.0.0"));
		assert_null(strchr(out, '*'));
		assert_true(out[7] != ':');
		size_t n = strlen(out);
		assert_string_equal(out + n - 2, ":7");
	}
}

/* An address without a port is a config error naming the key. */
static void test_ss_advertised_no_port(void **state)
{
	(void)state;
	char out[64], err[STRATA_ERRMSG_SIZE];
	assert_int_equal(ss_advertised("tcp://host", 1, "store.listen", out,
	                               sizeof(out), err),
	                 STRATA_ECONFIG);
	assert_non_null(strstr(err, "store.listen: 'tcp://host' has no port"));
}

/* The local plugin gets root=<data_dir>/tier2 unless a root is given. */
static void test_ss_tier2_options_local_root(void **state)
{
	(void)state;
	char *o = options_of("--data-dir=/var/x", NULL);
	assert_string_equal(o, "root=/var/x/tier2\n");
	strata_free(o);
	o = options_of("--tier2.options.root=/y", NULL);
	assert_string_equal(o, "root=/y\n");
	strata_free(o);
}

/* Other plugins get their options unchanged. */
static void test_ss_tier2_options_other_plugin(void **state)
{
	(void)state;
	char *o = options_of("--tier2.plugin=mem", NULL);
	assert_string_equal(o, "");
	strata_free(o);
	o = options_of("--tier2.plugin=s3", "--tier2.options.bucket=b");
	assert_string_equal(o, "bucket=b\n");
	strata_free(o);
}

/* A config of one container on 127.0.0.1 with free ports, tier 2 mem. */
static void base_config(struct ss_service_config *c, struct metrics_registry *m,
                        const char *dir)
{
	memset(c, 0, sizeof(*c));
	c->metrics = m;
	c->http_listen = "http://127.0.0.1:0";
	c->http_key = "store.http.listen";
	c->tier2_plugin = "mem";
	c->raft_listen = "127.0.0.1:0";
	c->raft_key = "store.raft.listen";
	c->server.listen = "tcp://127.0.0.1:0";
	c->server.config_key = "store.listen";
	c->server.n_contexts = 4;
	c->server.max_msg_bytes = 1u << 20;
	c->server.max_append_bytes = 512u << 10;
	c->server.drain_ms = 100;
	c->server.backend.container_count = 1;
	c->cluster.node_id = 1;
	c->cluster.data_dir = dir;
	c->cluster.settle_ms = 1;
	c->cluster.tmpl.election_ms = 200;
	c->cluster.tmpl.heartbeat_ms = 20;
	c->cluster.tmpl.max_append_bytes = 512u << 10;
	c->cluster.tmpl.max_event_bytes = 256u << 10;
}

/* Standalone (no controller): starts, advertises the real ports, becomes
 * ready once its container has a leader, and stops cleanly. */
static void test_ss_service_start_standalone(void **state)
{
	(void)state;
	char dir[] = "/tmp/strata-ss-service-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct metrics_registry *m = NULL;
	assert_int_equal(metrics_registry_new(&m), 0);
	struct ss_service_config c;
	base_config(&c, m, dir);
	c.advertise = "tcp://store.example:1";
	struct ss_service *s = NULL;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(ss_service_start(&c, &s, err), 0);
	assert_string_equal(ss_service_client_url(s), "tcp://store.example:1");
	assert_true(strncmp(ss_service_raft_address(s), "127.0.0.1:", 10) == 0);
	assert_true(ss_url_port(ss_service_raft_address(s)) > 0);
	assert_true(strncmp(ss_service_http_url(s), "http://127.0.0.1:", 17) ==
	            0);
	assert_true(ss_url_port(ss_service_http_url(s)) > 0);
	assert_string_equal(ss_service_tier2_name(s), "mem");
	enum http_readiness r = HTTP_NOT_READY;
	for (int i = 0; i < 200 && r == HTTP_NOT_READY; i++) {
		struct buf detail;
		buf_init(&detail, 4096);
		r = ss_service_ready(s, &detail);
		buf_close(&detail);
		if (r == HTTP_NOT_READY) {
			struct timespec ts = {0, 50 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	assert_int_not_equal(r, HTTP_NOT_READY);
	ss_service_stop(s);
	metrics_registry_free(m);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A plugin that does not load fails the start with the keys to check,
 * and what had started (HTTP) is stopped again. */
static void test_ss_service_start_bad_plugin(void **state)
{
	(void)state;
	struct metrics_registry *m = NULL;
	assert_int_equal(metrics_registry_new(&m), 0);
	struct ss_service_config c;
	base_config(&c, m, "/nonexistent");
	c.tier2_plugin = "no-such-plugin";
	struct ss_service *s = NULL;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_not_equal(ss_service_start(&c, &s, err), 0);
	assert_null(s);
	assert_non_null(strstr(err, "tier2-no-such-plugin.so: no such file"));
	assert_non_null(strstr(err, "check tier2.plugin"));
	metrics_registry_free(m);
}

/* A bad Raft address fails the start naming the key given. */
static void test_ss_service_start_bad_raft_address(void **state)
{
	(void)state;
	struct metrics_registry *m = NULL;
	assert_int_equal(metrics_registry_new(&m), 0);
	struct ss_service_config c;
	base_config(&c, m, "/nonexistent");
	c.raft_listen = "not-an-address";
	struct ss_service *s = NULL;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_not_equal(ss_service_start(&c, &s, err), 0);
	assert_true(strncmp(err, "store.raft.listen 'not-an-address': ", 36) ==
	            0);
	metrics_registry_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ss_url_port_forms),
	        cmocka_unit_test(test_ss_advertised_keeps_host),
	        cmocka_unit_test(test_ss_advertised_wildcard),
	        cmocka_unit_test(test_ss_advertised_no_port),
	        cmocka_unit_test(test_ss_tier2_options_local_root),
	        cmocka_unit_test(test_ss_tier2_options_other_plugin),
	        cmocka_unit_test(test_ss_service_start_standalone),
	        cmocka_unit_test(test_ss_service_start_bad_plugin),
	        cmocka_unit_test(test_ss_service_start_bad_raft_address),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
