/* Unit tests for segmentstore/options.c: the shared schema entries, the
 * limits check and reading the shared keys into a service config. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/config.h"
#include "common/rpc.h"
#include "segmentstore/options.h"
#include "strata/error.h"

/* The keys ss_options_read reads, with the shared entries as the binaries
 * use them. */
static const struct config_key schema[] = {
        SS_KEY_LIMITS_MAX_EVENT,
        {.name = "limits.max_append",
         .type = CONFIG_SIZE,
         .def = "16320KiB",
         .help = "h"},
        {.name = "limits.max_message",
         .type = CONFIG_SIZE,
         .def = "17MiB",
         .help = "h"},
        {.name = "limits.requests",
         .type = CONFIG_UINT,
         .def = "64",
         .help = "h"},
        {.name = "limits.unflushed_budget",
         .type = CONFIG_SIZE,
         .def = "256MiB",
         .help = "h"},
        {.name = "limits.cache_budget",
         .type = CONFIG_SIZE,
         .def = "64MiB",
         .help = "h"},
        RPC_KEY_LIMITS_CONNECTIONS,
        SS_KEY_CONTAINERS_RECOVER_AFTER,
        SS_KEY_FLUSH_BYTES,
        SS_KEY_FLUSH_AGE,
        SS_KEY_FLUSH_CHUNK_BYTES,
        {.name = "containers.count",
         .type = CONFIG_UINT,
         .def = "4",
         .help = "h"},
        {.name = "node.id", .type = CONFIG_UINT, .def = "1", .help = "h"},
        {.name = "raft.election_timeout",
         .type = CONFIG_DURATION,
         .def = "1s",
         .help = "h"},
};
#define N_KEYS (sizeof(schema) / sizeof(*schema))

/* Load schema with up to three flags (NULL ends them) and no environment. */
static void load(struct config *cfg, const char *f1, const char *f2,
                 const char *f3)
{
	char *argv[5] = {"test", (char *)f1, (char *)f2, (char *)f3, NULL};
	int argc = 1;
	while (argc < 4 && argv[argc] != NULL) {
		argc++;
	}
	char *envp[] = {NULL};
	assert_int_equal(config_init(cfg, schema, N_KEYS), 0);
	assert_int_equal(config_load(cfg, argc, argv, envp, NULL), 0);
}

/* The shared entries keep their names, defaults, bounds and help. */
static void test_ss_options_keys_as_documented(void **state)
{
	(void)state;
	static const struct config_key keys[] = {
	        SS_KEY_LIMITS_MAX_EVENT, SS_KEY_FLUSH_BYTES, SS_KEY_FLUSH_AGE,
	        RPC_KEY_LIMITS_CONNECTIONS};
	assert_string_equal(keys[0].name, "limits.max_event");
	assert_int_equal(keys[0].type, CONFIG_SIZE);
	assert_string_equal(keys[0].def, "8MiB");
	assert_string_equal(keys[0].min, "1KiB");
	assert_string_equal(keys[0].max, "64MiB");
	assert_string_equal(keys[1].name, "flush.bytes");
	assert_int_equal(keys[1].type, CONFIG_SIZE);
	assert_string_equal(keys[1].def, "4MiB");
	assert_string_equal(keys[1].min, "1");
	assert_null(keys[1].max);
	assert_string_equal(keys[2].name, "flush.age");
	assert_int_equal(keys[2].type, CONFIG_DURATION);
	assert_string_equal(keys[2].def, "5s");
	assert_string_equal(keys[2].min, "1ms");
	assert_null(keys[2].max);
	assert_string_equal(keys[3].name, "limits.connections");
	assert_int_equal(keys[3].type, CONFIG_UINT);
	assert_string_equal(keys[3].def, "4096");
	assert_string_equal(keys[3].min, "1");
	assert_string_equal(keys[3].max, "1048576");
	for (size_t i = 0; i < 4; i++) {
		assert_non_null(keys[i].help);
		assert_int_equal(keys[i].flags, 0);
	}
}

/* The defaults pass the limits check. */
static void test_ss_options_check_defaults_ok(void **state)
{
	(void)state;
	struct config cfg;
	load(&cfg, NULL, NULL, NULL);
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(ss_options_check(&cfg, err), 0);
	assert_string_equal(err, "");
	config_close(&cfg);
}

/* max_message must exceed max_append by 4 KiB: exactly 4 KiB passes. */
static void test_ss_options_check_boundary(void **state)
{
	(void)state;
	struct config cfg;
	char err[STRATA_ERRMSG_SIZE];
	load(&cfg, "--limits.max-append=1MiB", "--limits.max-message=1028KiB",
	     "--limits.max-event=1048572");
	assert_int_equal(ss_options_check(&cfg, err), 0);
	config_close(&cfg);
	load(&cfg, "--limits.max-append=1MiB", "--limits.max-message=1052671",
	     "--limits.max-event=1KiB");
	assert_int_equal(ss_options_check(&cfg, err), STRATA_ECONFIG);
	config_close(&cfg);
}

/* An event and its 4-byte frame must fit in one append: one byte more is
 * refused, naming both keys (the store's --check-config passed it, the
 * standalone's did not). */
static void test_ss_options_check_event_fits_append(void **state)
{
	(void)state;
	struct config cfg;
	char err[STRATA_ERRMSG_SIZE];
	load(&cfg, "--limits.max-append=1MiB", "--limits.max-message=2MiB",
	     "--limits.max-event=1048573");
	assert_int_equal(ss_options_check(&cfg, err), STRATA_ECONFIG);
	assert_non_null(strstr(err, "limits.max_event (1048573)"));
	assert_non_null(strstr(err, "limits.max_append (1048576)"));
	config_close(&cfg);
}

/* A too small max_message fails with a message naming both keys. */
static void test_ss_options_check_message(void **state)
{
	(void)state;
	struct config cfg;
	char err[STRATA_ERRMSG_SIZE];
	load(&cfg, "--limits.max-message=8MiB", NULL, NULL);
	assert_int_equal(ss_options_check(&cfg, err), STRATA_ECONFIG);
	assert_string_equal(err, "limits.max_message (8388608) must exceed "
	                         "limits.max_append (16711680) by at least "
	                         "4KiB; raise limits.max_message");
	config_close(&cfg);
}

/* Every shared key lands in its field; the others stay untouched. */
static void test_ss_options_read_fields(void **state)
{
	(void)state;
	struct config cfg;
	load(&cfg, "--limits.requests=7", "--flush.age=250ms",
	     "--limits.connections=9");
	struct ss_service_config sc;
	memset(&sc, 0, sizeof(sc));
	sc.server.drain_ms = 123;
	sc.cluster.tmpl.heartbeat_ms = 45;
	ss_options_read(&cfg, &sc);
	assert_int_equal(sc.server.n_contexts, 7);
	assert_int_equal(sc.server.max_connections, 9);
	assert_int_equal(sc.server.max_msg_bytes, 17u << 20);
	assert_int_equal(sc.server.max_append_bytes, 16320u << 10);
	assert_int_equal(sc.server.backend.container_count, 4);
	assert_int_equal(sc.cluster.node_id, 1);
	assert_int_equal(sc.cluster.recover_ms, 30000);
	const struct container_config *t = &sc.cluster.tmpl;
	assert_int_equal(t->election_ms, 1000);
	assert_int_equal(t->max_event_bytes, 8u << 20);
	assert_int_equal(t->max_append_bytes, 16320u << 10);
	assert_int_equal(t->unflushed_budget, 256u << 20);
	assert_int_equal(t->cache_budget, 64u << 20);
	assert_int_equal(t->flush_bytes, 4u << 20);
	assert_int_equal(t->flush_age_ms, 250);
	assert_int_equal(t->chunk_bytes, 64u << 20);
	assert_int_equal(sc.server.drain_ms, 123);
	assert_int_equal(t->heartbeat_ms, 45);
	assert_int_equal(t->snapshot_bytes, 0);
	assert_null(sc.server.listen);
	assert_null(sc.cluster.data_dir);
	config_close(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ss_options_keys_as_documented),
	        cmocka_unit_test(test_ss_options_check_defaults_ok),
	        cmocka_unit_test(test_ss_options_check_boundary),
	        cmocka_unit_test(test_ss_options_check_event_fits_append),
	        cmocka_unit_test(test_ss_options_check_message),
	        cmocka_unit_test(test_ss_options_read_fields),
	};
	return cmocka_run_group_tests_name("ss_options", tests, NULL, NULL);
}
