/* Unit tests for controller/replica.c: the local-address helpers and one
 * replica (service, API, RPC, REST, ticker, driver) started and stopped
 * on 127.0.0.1. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/config.h"
#include "common/metrics.h"
#include "controller/replica.h"
#include "strata/error.h"
#include "svc_fixture.h"

/* The raft keys of ctl_replica_check_raft, the shared entry among them. */
static const struct config_key raft_schema[] = {
        {.name = "raft.election_timeout",
         .type = CONFIG_DURATION,
         .def = "1s",
         .help = "h"},
        CTL_KEY_RAFT_HEARTBEAT,
};

/* Check raft_schema loaded with one flag (NULL: none); errmsg in err. */
static int check_raft(const char *flag, char *err)
{
	char *argv[3] = {"test", (char *)flag, NULL};
	char *envp[] = {NULL};
	struct config cfg;
	assert_int_equal(config_init(&cfg, raft_schema, 2), 0);
	assert_int_equal(
	        config_load(&cfg, flag == NULL ? 1 : 2, argv, envp, NULL), 0);
	int rc = ctl_replica_check_raft(&cfg, err);
	config_close(&cfg);
	return rc;
}

/* The shared raft.heartbeat entry keeps its default, bounds and help. */
static void test_ctl_key_raft_heartbeat(void **state)
{
	(void)state;
	const struct config_key *k = &raft_schema[1];
	assert_string_equal(k->name, "raft.heartbeat");
	assert_int_equal(k->type, CONFIG_DURATION);
	assert_string_equal(k->def, "100ms");
	assert_string_equal(k->min, "10ms");
	assert_string_equal(k->max, "10s");
	assert_string_equal(
	        k->help,
	        "Raft heartbeat interval; below the election timeout.");
}

/* A heartbeat below the election timeout passes; equal or above fails
 * with both values named. */
static void test_ctl_replica_check_raft(void **state)
{
	(void)state;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(check_raft(NULL, err), 0);
	assert_int_equal(check_raft("--raft.heartbeat=999ms", err), 0);
	assert_int_equal(check_raft("--raft.heartbeat=1s", err),
	                 STRATA_ECONFIG);
	assert_string_equal(err, "raft.heartbeat (1000 ms) must be below "
	                         "raft.election_timeout (1000 ms); lower "
	                         "raft.heartbeat or raise "
	                         "raft.election_timeout");
	assert_int_equal(check_raft("--raft.heartbeat=2s", err),
	                 STRATA_ECONFIG);
	assert_string_equal(err, "raft.heartbeat (2000 ms) must be below "
	                         "raft.election_timeout (1000 ms); lower "
	                         "raft.heartbeat or raise "
	                         "raft.election_timeout");
}

/* The wildcard host becomes 127.0.0.1; anything else is copied. */
static void test_ctl_local_url_forms(void **state)
{
	(void)state;
	char out[64];
	ctl_local_url("tcp://0.0.0.0:9090", out, sizeof(out));
	assert_string_equal(out, "tcp://127.0.0.1:9090");
	ctl_local_url("0.0.0.0:9190", out, sizeof(out));
	assert_string_equal(out, "127.0.0.1:9190");
	ctl_local_url("http://10.0.0.1:80", out, sizeof(out));
	assert_string_equal(out, "http://10.0.0.1:80");
}

/* The one member of a single-replica cluster carries local addresses. */
static void test_ctl_member_local_fills(void **state)
{
	(void)state;
	struct ctl_member m;
	ctl_member_local(&m, 7, "0.0.0.0:1", "tcp://0.0.0.0:2", "http://h:3");
	assert_int_equal(m.id, 7);
	assert_string_equal(m.raft_address, "127.0.0.1:1");
	assert_string_equal(m.client_url, "tcp://127.0.0.1:2");
	assert_string_equal(m.http_url, "http://h:3");
}

/* A one-replica config on free ports under dir; urls hold the strings. */
struct setup {
	char raft[64], listen[64], http[64];
	struct ctl_member member;
	struct ctl_replica_config cfg;
};

static void setup_init(struct setup *s, const char *dir,
                       struct metrics_registry *m)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->raft, sizeof(s->raft), "127.0.0.1:%d", fx_free_port());
	snprintf(s->listen, sizeof(s->listen), "tcp://127.0.0.1:%d",
	         fx_free_port());
	snprintf(s->http, sizeof(s->http), "http://127.0.0.1:0");
	ctl_member_local(&s->member, 1, s->raft, s->listen, s->http);
	s->cfg.metrics = m;
	s->cfg.service.node_id = 1;
	s->cfg.service.data_dir = dir;
	s->cfg.service.raft_listen = s->raft;
	s->cfg.service.members = &s->member;
	s->cfg.service.n_members = 1;
	s->cfg.service.container_count = 2;
	s->cfg.service.election_ms = 200;
	s->cfg.service.heartbeat_ms = 20;
	s->cfg.service.wait_ms = 1000;
	s->cfg.api.store_lease_ms = 6000;
	s->cfg.listen = s->listen;
	s->cfg.listen_key = "listen";
	s->cfg.rest.url = s->http;
	s->cfg.rest.config_key = "http.listen";
	s->cfg.tick_ms = 100;
	s->cfg.driver.rpc_timeout_ms = 1000;
	s->cfg.driver.backoff_max_ms = 500;
}

static void remove_dir(const char *dir)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static bool replica_ready(void *arg)
{
	return ctl_service_is_ready(ctl_replica_service(arg));
}

/* A single replica starts, becomes the ready leader, serves its API at
 * the given URL and REST on a chosen port, and stops cleanly. */
static void test_ctl_replica_start_single(void **state)
{
	(void)state;
	char dir[] = "/tmp/strata-ctl-replica-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct metrics_registry *m = NULL;
	assert_int_equal(metrics_registry_new(&m), 0);
	struct setup s;
	setup_init(&s, dir, m);
	struct ctl_replica *r = NULL;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(ctl_replica_start(&s.cfg, &r, err), 0);
	assert_true(fx_eventually(replica_ready, r, 10000));
	assert_string_equal(ctl_replica_client_url(r), s.listen);
	assert_true(ctl_replica_rest_port(r) > 0);
	ctl_replica_stop(r);
	metrics_registry_free(m);
	remove_dir(dir);
}

/* A client URL that cannot be served fails the start with the key in the
 * message, after stopping the service it had started. */
static void test_ctl_replica_start_bad_listen(void **state)
{
	(void)state;
	char dir[] = "/tmp/strata-ctl-replica-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct metrics_registry *m = NULL;
	assert_int_equal(metrics_registry_new(&m), 0);
	struct setup s;
	setup_init(&s, dir, m);
	s.cfg.listen = "bogus://nowhere";
	struct ctl_replica *r = NULL;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_not_equal(ctl_replica_start(&s.cfg, &r, err), 0);
	assert_null(r);
	assert_non_null(strstr(err, "listen"));
	metrics_registry_free(m);
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ctl_key_raft_heartbeat),
	        cmocka_unit_test(test_ctl_replica_check_raft),
	        cmocka_unit_test(test_ctl_local_url_forms),
	        cmocka_unit_test(test_ctl_member_local_fills),
	        cmocka_unit_test(test_ctl_replica_start_single),
	        cmocka_unit_test(test_ctl_replica_start_bad_listen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
