/* Unit tests for common/config.c: schema, YAML file, env, flags, output. */
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/config.h"
#include "strata/error.h"
#include "tests/lib/oom.h"

#define N(a) (sizeof(a) / sizeof(*(a)))

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

static const struct config_key schema[] = {
        {.name = "node.id",
         .type = CONFIG_UINT,
         .def = "1",
         .min = "1",
         .max = "1000",
         .help = "Node id."},
        {.name = "node.name", .type = CONFIG_STRING, .help = "Node name."},
        {.name = "node.offset",
         .type = CONFIG_INT,
         .def = "0",
         .min = "-10",
         .max = "10",
         .help = "Clock offset."},
        {.name = "log.level",
         .type = CONFIG_ENUM,
         .def = "info",
         .allowed = levels,
         .help = "Lowest log level."},
        {.name = "log.json",
         .type = CONFIG_BOOL,
         .def = "false",
         .help = "Log as JSON."},
        {.name = "raft.election_timeout",
         .type = CONFIG_DURATION,
         .def = "1s",
         .min = "100ms",
         .max = "1m",
         .help = "Election timeout."},
        {.name = "raft.heartbeat_interval",
         .type = CONFIG_DURATION,
         .def = "100ms",
         .help = "Heartbeat interval."},
        {.name = "cache.size",
         .type = CONFIG_SIZE,
         .def = "64MiB",
         .max = "1TiB",
         .help = "Cache size."},
        {.name = "tier2.plugin",
         .type = CONFIG_STRING,
         .def = "local",
         .help = "Tier-2 plugin."},
        {.name = "tier2.options",
         .type = CONFIG_SECTION,
         .help = "Tier-2 plugin options."},
        {.name = "auth.token",
         .type = CONFIG_STRING,
         .flags = CONFIG_SECRET,
         .help = "Access token."},
};

static char dir[] = "/tmp/strata-test-config-XXXXXX";
static char yaml_path[sizeof(dir) + 32];

static int setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL) {
		return -1;
	}
	snprintf(yaml_path, sizeof(yaml_path), "%s/strata.yaml", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	DIR *d = opendir(dir);
	if (d != NULL) {
		struct dirent *e;
		char p[sizeof(dir) + 300];
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] != '.') {
				snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
				unlink(p);
			}
		}
		closedir(d);
	}
	rmdir(dir);
	return 0;
}

static void write_yaml(const char *text)
{
	FILE *f = fopen(yaml_path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Init with the test schema and load: yaml (NULL: no file), env (NULL-
 * terminated, NULL: empty) and extra flags (NULL-terminated). */
static int load(struct config *cfg, const char *yaml, char **env, ...)
{
	char *argv[32] = {"prog"};
	char *empty[] = {NULL};
	int argc = 1;
	va_list ap;
	if (yaml != NULL) {
		write_yaml(yaml);
		argv[argc++] = "--config";
		argv[argc++] = yaml_path;
	}
	va_start(ap, env);
	for (char *a = va_arg(ap, char *); a != NULL; a = va_arg(ap, char *)) {
		argv[argc++] = a;
	}
	va_end(ap);
	int rc = config_init(cfg, schema, N(schema));
	assert_int_equal(rc, 0);
	return config_load(cfg, argc, argv, env != NULL ? env : empty, NULL);
}

/* Assert msg contains every NULL-terminated substring. */
static void assert_has(const char *msg, ...)
{
	va_list ap;
	if (getenv("TEST_CONFIG_SHOW") != NULL) {
		fprintf(stderr, "MSG: %s\n", msg);
	}
	va_start(ap, msg);
	for (const char *s = va_arg(ap, const char *); s != NULL;
	     s = va_arg(ap, const char *)) {
		if (strstr(msg, s) == NULL) {
			fail_msg("message \"%s\" lacks \"%s\"", msg, s);
		}
	}
	va_end(ap);
}

/* Load yaml, expect STRATA_ECONFIG and a message with all substrings. */
#define ASSERT_YAML_FAILS(yaml, ...)                                           \
	do {                                                                   \
		struct config c_;                                              \
		assert_int_equal(load(&c_, yaml, NULL, NULL), STRATA_ECONFIG); \
		assert_has(config_errmsg(&c_), __VA_ARGS__, NULL);             \
		config_close(&c_);                                             \
	} while (0)

/* Booleans accept the usual spellings in any case and nothing else. */
static void test_config_parse_bool_spellings(void **state)
{
	(void)state;
	const char *yes[] = {"true", "TRUE", "yes", "on", "1", "On"};
	const char *no[] = {"false", "no", "off", "0", "False"};
	const char *bad[] = {"", "2", "y", "truee", "nope", " true"};
	bool b;
	for (size_t i = 0; i < N(yes); i++) {
		assert_int_equal(config_parse_bool(yes[i], &b), 0);
		assert_true(b);
	}
	for (size_t i = 0; i < N(no); i++) {
		assert_int_equal(config_parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	for (size_t i = 0; i < N(bad); i++) {
		assert_int_equal(config_parse_bool(bad[i], &b), STRATA_EINVAL);
	}
}

/* Integers parse the full int64/uint64 range and reject the rest. */
static void test_config_parse_int_and_uint_limits(void **state)
{
	(void)state;
	int64_t i;
	uint64_t u;
	assert_int_equal(config_parse_int("-9223372036854775808", &i), 0);
	assert_true(i == INT64_MIN);
	assert_int_equal(config_parse_int("+9223372036854775807", &i), 0);
	assert_true(i == INT64_MAX);
	assert_int_equal(config_parse_int("9223372036854775808", &i),
	                 STRATA_ERANGE);
	assert_int_equal(config_parse_int("-0", &i), 0);
	assert_int_equal(i, 0);
	assert_int_equal(config_parse_int("12a", &i), STRATA_EINVAL);
	assert_int_equal(config_parse_int("-", &i), STRATA_EINVAL);
	assert_int_equal(config_parse_int("", &i), STRATA_EINVAL);
	assert_int_equal(config_parse_int(" 1", &i), STRATA_EINVAL);
	assert_int_equal(config_parse_uint("18446744073709551615", &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(config_parse_uint("18446744073709551616", &u),
	                 STRATA_ERANGE);
	assert_int_equal(config_parse_uint("99999999999999999999x", &u),
	                 STRATA_EINVAL);
	assert_int_equal(config_parse_uint("-1", &u), STRATA_EINVAL);
	assert_int_equal(config_parse_uint("0x10", &u), STRATA_EINVAL);
}

/* Durations take ms, s, m, h, d (bare 0 only) and are stored as ms. */
static void test_config_parse_duration_units(void **state)
{
	(void)state;
	struct {
		const char *s;
		uint64_t ms;
	} ok[] = {{"500ms", 500},  {"2s", 2000},      {"1m", 60000},
	          {"1h", 3600000}, {"2d", 172800000}, {"0", 0},
	          {"0s", 0},       {"007ms", 7}};
	const char *bad[] = {"abc", "5",    "1.5s", "s", "10 s",
	                     "1S",  "1sec", "-1s",  ""};
	uint64_t ms;
	for (size_t i = 0; i < N(ok); i++) {
		assert_int_equal(config_parse_duration_ms(ok[i].s, &ms), 0);
		assert_true(ms == ok[i].ms);
	}
	for (size_t i = 0; i < N(bad); i++) {
		assert_int_equal(config_parse_duration_ms(bad[i], &ms),
		                 STRATA_EINVAL);
	}
	assert_int_equal(config_parse_duration_ms("99999999999999999d", &ms),
	                 STRATA_ERANGE);
}

/* Sizes take bytes, binary (KiB, K) and decimal (KB) units. */
static void test_config_parse_size_units(void **state)
{
	(void)state;
	struct {
		const char *s;
		uint64_t n;
	} ok[] = {{"512", 512},           {"512B", 512},
	          {"64KiB", 64 << 10},    {"64MiB", 64 << 20},
	          {"1GiB", 1ull << 30},   {"2TiB", 2ull << 40},
	          {"64MB", 64000000},     {"1kB", 1000},
	          {"3GB", 3000000000ull}, {"64m", 64 << 20},
	          {"8K", 8 << 10}};
	const char *bad[] = {"abc", "64 MiB", "64mib", "64Mb",
	                     "-1",  "1.5GiB", "",      "MiB"};
	uint64_t n;
	for (size_t i = 0; i < N(ok); i++) {
		assert_int_equal(config_parse_size(ok[i].s, &n), 0);
		assert_true(n == ok[i].n);
	}
	for (size_t i = 0; i < N(bad); i++) {
		assert_int_equal(config_parse_size(bad[i], &n), STRATA_EINVAL);
	}
	assert_int_equal(config_parse_size("17179869184GiB", &n),
	                 STRATA_ERANGE);
}

/* Without file, env or flags every key has its default and source. */
static void test_config_load_defaults(void **state)
{
	(void)state;
	struct config cfg;
	assert_int_equal(load(&cfg, NULL, NULL, NULL), 0);
	assert_true(config_get_uint(&cfg, "node.id") == 1);
	assert_null(config_get_string(&cfg, "node.name"));
	assert_true(config_get_int(&cfg, "node.offset") == 0);
	assert_string_equal(config_get_string(&cfg, "log.level"), "info");
	assert_int_equal(config_get_enum(&cfg, "log.level"), 1);
	assert_false(config_get_bool(&cfg, "log.json"));
	assert_true(config_get_duration_ms(&cfg, "raft.election_timeout") ==
	            1000);
	assert_true(config_get_size(&cfg, "cache.size") == 64 << 20);
	assert_string_equal(config_source(&cfg, "cache.size"), "default");
	assert_false(config_is_set(&cfg, "cache.size"));
	assert_false(config_is_set(&cfg, "tier2.options"));
	assert_null(config_file(&cfg));
	assert_false(config_help_requested(&cfg));
	config_close(&cfg);
}

/* The cross-key duration rule: below passes, equal or above fails with
 * both keys, both values and the fix; nothing is changed. */
static void test_config_check_duration_below(void **state)
{
	(void)state;
	struct config cfg;
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(load(&cfg, NULL, NULL, NULL), 0);
	assert_int_equal(
	        config_check_duration_below(&cfg, "raft.heartbeat_interval",
	                                    "raft.election_timeout", err),
	        0);
	config_close(&cfg);
	assert_int_equal(
	        load(&cfg, NULL, NULL, "--raft.heartbeat_interval=1s", NULL),
	        0);
	assert_int_equal(
	        config_check_duration_below(&cfg, "raft.heartbeat_interval",
	                                    "raft.election_timeout", err),
	        STRATA_ECONFIG);
	assert_string_equal(err, "raft.heartbeat_interval (1000 ms) must be "
	                         "below raft.election_timeout (1000 ms); lower "
	                         "raft.heartbeat_interval or raise "
	                         "raft.election_timeout");
	assert_true(config_get_duration_ms(&cfg, "raft.heartbeat_interval") ==
	            1000);
	config_close(&cfg);
}

/* Every type is read from the file, nested or dotted, quoted or not. */
/* Address keys: their form and port range, and no two listeners on one
 * port; the message names the key, where the value came from, the fix. */
static void test_config_check_addresses(void **state)
{
	(void)state;
	const struct config_addr a[] = {
	        {"node.name", CONFIG_ADDR_RPC, true},
	        {"tier2.plugin", CONFIG_ADDR_HTTP, true},
	        {"auth.token", CONFIG_ADDR_RPC_LIST, false},
	};
	const struct config_addr hp[] = {
	        {"node.name", CONFIG_ADDR_HOSTPORT, true}};
	struct config cfg;
	char err[STRATA_ERRMSG_SIZE] = "";
	struct {
		const char *rpc, *http, *list;
		int rc;
		const char *says;
	} cases[] = {
	        {"--node.name=tcp://0.0.0.0:9090",
	         "--tier2.plugin=http://127.0.0.1:9091/",
	         "--auth.token=tcp://a:1,tcp://[::1]:2", 0, NULL},
	        {"--node.name=ipc:///tmp/x", "--tier2.plugin=http://h:0",
	         "--auth.token=", 0, NULL},
	        {"--node.name=foo://bar", "--tier2.plugin=http://h:1",
	         "--auth.token=", STRATA_ECONFIG,
	         "node.name (flag --node.name)"},
	        {"--node.name=tcp://h:99999", "--tier2.plugin=http://h:1",
	         "--auth.token=", STRATA_ECONFIG, "0..65535"},
	        {"--node.name=tcp://h:1", "--tier2.plugin=h:2",
	         "--auth.token=", STRATA_ECONFIG, "http://HOST:PORT"},
	        {"--node.name=tcp://h:1", "--tier2.plugin=http://h:2",
	         "--auth.token=tcp://a:1,garbage", STRATA_ECONFIG,
	         "auth.token"},
	        {"--node.name=tcp://0.0.0.0:7", "--tier2.plugin=http://h:7",
	         "--auth.token=", STRATA_ECONFIG,
	         "node.name and tier2.plugin both listen on port 7"},
	        {"--node.name=tcp://a:7", "--tier2.plugin=http://b:7",
	         "--auth.token=", 0, NULL},
	};
	for (size_t i = 0; i < N(cases); i++) {
		assert_int_equal(load(&cfg, NULL, NULL, cases[i].rpc,
		                      cases[i].http, cases[i].list, NULL),
		                 0);
		assert_int_equal(config_check_addresses(&cfg, a, N(a), err),
		                 cases[i].rc);
		if (cases[i].says != NULL) {
			print_message("%s\n", err);
			assert_non_null(strstr(err, cases[i].says));
		}
		config_close(&cfg);
	}
	assert_int_equal(load(&cfg, NULL, NULL, "--node.name=h:65535", NULL),
	                 0);
	assert_int_equal(config_check_addresses(&cfg, hp, 1, err), 0);
	config_close(&cfg);
	assert_int_equal(load(&cfg, NULL, NULL, "--node.name=:80", NULL), 0);
	assert_int_equal(config_check_addresses(&cfg, hp, 1, err),
	                 STRATA_ECONFIG);
	config_close(&cfg);
	/* A Raft bind address: IPv4 only ("localhost" passed the check and
	 * then failed the start). */
	const struct config_addr v4[] = {
	        {"node.name", CONFIG_ADDR_IPV4PORT, true}};
	assert_int_equal(
	        load(&cfg, NULL, NULL, "--node.name=0.0.0.0:9190", NULL), 0);
	assert_int_equal(config_check_addresses(&cfg, v4, 1, err), 0);
	config_close(&cfg);
	assert_int_equal(
	        load(&cfg, NULL, NULL, "--node.name=localhost:9190", NULL), 0);
	assert_int_equal(config_check_addresses(&cfg, v4, 1, err),
	                 STRATA_ECONFIG);
	assert_non_null(strstr(err, "IPv4:PORT"));
	config_close(&cfg);
}

static void test_config_load_file_every_type(void **state)
{
	(void)state;
	struct config cfg;
	const char *yaml = "# comment\n"
	                   "node:\n"
	                   "  id: 7\n"
	                   "  name: \"node #7\"\n"
	                   "  offset: -3\n"
	                   "log: {level: WARN, json: yes}\n"
	                   "raft.election_timeout: 2s\n"
	                   "raft:\n"
	                   "  heartbeat_interval: '250ms'\n"
	                   "cache:\n"
	                   "  size: 1GiB\n"
	                   "tier2:\n"
	                   "  plugin: s3\n"
	                   "  options:\n"
	                   "    bucket: b1\n";
	assert_int_equal(load(&cfg, yaml, NULL, NULL), 0);
	assert_true(config_get_uint(&cfg, "node.id") == 7);
	assert_string_equal(config_get_string(&cfg, "node.name"), "node #7");
	assert_true(config_get_int(&cfg, "node.offset") == -3);
	assert_string_equal(config_get_string(&cfg, "log.level"), "warn");
	assert_true(config_get_bool(&cfg, "log.json"));
	assert_true(config_get_duration_ms(&cfg, "raft.election_timeout") ==
	            2000);
	assert_true(config_get_duration_ms(&cfg, "raft.heartbeat_interval") ==
	            250);
	assert_true(config_get_size(&cfg, "cache.size") == 1ull << 30);
	assert_string_equal(config_get_string(&cfg, "tier2.plugin"), "s3");
	assert_string_equal(config_file(&cfg), yaml_path);
	char want[sizeof(yaml_path) + 8];
	snprintf(want, sizeof(want), "%s:7", yaml_path);
	assert_string_equal(config_source(&cfg, "raft.election_timeout"), want);
	snprintf(want, sizeof(want), "%s:15", yaml_path);
	assert_string_equal(config_source(&cfg, "tier2.options.bucket"), want);
	assert_null(config_source(&cfg, "tier2.options.nope"));
	assert_true(config_is_set(&cfg, "tier2.options"));
	config_close(&cfg);
}

/* Empty files and documents are valid and change nothing. */
static void test_config_load_empty_file(void **state)
{
	(void)state;
	const char *empties[] = {"", "# only a comment\n", "---\n", "~\n",
	                         "raft:\n"};
	for (size_t i = 0; i < N(empties); i++) {
		struct config cfg;
		assert_int_equal(load(&cfg, empties[i], NULL, NULL), 0);
		assert_string_equal(config_source(&cfg, "node.id"), "default");
		config_close(&cfg);
	}
}

/* Bad values name file:line, the key, the value and what is allowed. */
static void test_config_load_bad_values(void **state)
{
	(void)state;
	ASSERT_YAML_FAILS("node:\n  id: abc\n", "strata.yaml:2: node.id: ",
	                  "'abc' is not a non-negative integer", "e.g. 42");
	ASSERT_YAML_FAILS("node.id: 0\n",
	                  "strata.yaml:1: node.id: ", "'0' is out of range",
	                  "from 1 to 1000");
	ASSERT_YAML_FAILS("node.id: -4\n", "strata.yaml:1: node.id",
	                  "'-4' is not a non-negative integer");
	ASSERT_YAML_FAILS("node.offset: 11\n", "strata.yaml:1: node.offset",
	                  "'11' is out of range", "from -10 to 10");
	ASSERT_YAML_FAILS("node.offset: x1\n", "'x1' is not an integer");
	ASSERT_YAML_FAILS("\n\nlog:\n  level: loud\n",
	                  "strata.yaml:4: log.level: ", "'loud' is not allowed",
	                  "one of: debug, info, warn, error");
	ASSERT_YAML_FAILS("log.json: maybe\n", "strata.yaml:1: log.json: ",
	                  "'maybe' is not a boolean",
	                  "true or false (or yes/no, on/off, 1/0)");
	ASSERT_YAML_FAILS("raft:\n  election_timeout: abc\n",
	                  "strata.yaml:2: raft.election_timeout: 'abc' is not "
	                  "a duration; use a number with ms, s, m, h or d, "
	                  "e.g. 500ms");
	ASSERT_YAML_FAILS("raft:\n  election_timeout: 2h\n",
	                  "strata.yaml:2: raft.election_timeout",
	                  "'2h' is out of range", "from 100ms to 1m");
	ASSERT_YAML_FAILS("cache.size: 2TiB\n", "cache.size: '2TiB' is out",
	                  "of at most 1TiB");
	ASSERT_YAML_FAILS("cache.size: lots\n", "'lots' is not a size", "KiB",
	                  "MB", "e.g. 64MiB");
	ASSERT_YAML_FAILS("node.id:\n", "strata.yaml:1: node.id has no value",
	                  "remove the line");
	ASSERT_YAML_FAILS("node.id: [1, 2]\n",
	                  "strata.yaml:1: node.id: expected one value, found "
	                  "a list");
	ASSERT_YAML_FAILS("node.name: {a: 1}\n",
	                  "node.name: expected one value, found a map",
	                  "quote the text");
}

/* Unknown keys get a suggestion and the list of keys at that level. */
static void test_config_load_unknown_key_suggests(void **state)
{
	(void)state;
	ASSERT_YAML_FAILS("raft:\n  heartbeat_interval: 1s\n"
	                  "  election_timout: 2s\n",
	                  "strata.yaml:3: unknown key "
	                  "'raft.election_timout' (did you mean "
	                  "'raft.election_timeout'?)",
	                  "keys under 'raft': election_timeout, "
	                  "heartbeat_interval");
	ASSERT_YAML_FAILS("rafft:\n  election_timeout: 2s\n",
	                  "strata.yaml:1: unknown key 'rafft' (did you mean "
	                  "'raft'?)",
	                  "top-level keys: node, log, raft, cache, tier2, "
	                  "auth");
	ASSERT_YAML_FAILS("zzz: 1\n", "unknown key 'zzz'; top-level keys");
	ASSERT_YAML_FAILS("node.Id: 3\n", "unknown key 'node.Id' (did you "
	                                  "mean 'node.id'?)");
	ASSERT_YAML_FAILS("raft: 5\n",
	                  "strata.yaml:1: 'raft' holds other keys "
	                  "(election_timeout, heartbeat_interval)",
	                  "found a value");
	ASSERT_YAML_FAILS("tier2:\n  options: 5\n",
	                  "strata.yaml:2: tier2.options is a section");
}

/* YAML syntax errors give file:line:col and libyaml's problem. */
static void test_config_load_yaml_syntax_error(void **state)
{
	(void)state;
	ASSERT_YAML_FAILS("node:\n  id: 1\n name: x\n",
	                  "strata.yaml:3:2: YAML syntax error: ");
	ASSERT_YAML_FAILS("node: {id: 1\n", "strata.yaml:2:1: YAML syntax "
	                                    "error: did not find expected");
	ASSERT_YAML_FAILS("node: \"abc\n", "YAML syntax error",
	                  "found unexpected end of stream");
	ASSERT_YAML_FAILS("a: \xff\xfe\n", "strata.yaml: cannot read the file",
	                  "UTF-8");
}

/* Other shapes that are valid YAML but not a config are rejected. */
static void test_config_load_structure_errors(void **state)
{
	(void)state;
	ASSERT_YAML_FAILS("- a\n- b\n", "strata.yaml:1: expected a map of "
	                                "key: value lines at the top, found "
	                                "a list");
	ASSERT_YAML_FAILS("node: {id: 1}\n---\nnode: {id: 2}\n",
	                  "strata.yaml:2: a second YAML document");
	ASSERT_YAML_FAILS("node:\n  id: &x 3\nlog:\n  json: *x\n",
	                  "strata.yaml:4: log.json: expected one value, "
	                  "found an alias");
	ASSERT_YAML_FAILS("? [a]\n: 1\n", "strata.yaml:1: a key must be a "
	                                  "plain name, not a list");
	ASSERT_YAML_FAILS("\"a\\0b\": 1\n", "a key contains a NUL byte");
	ASSERT_YAML_FAILS("node.name: \"a\\0b\"\n",
	                  "strata.yaml:1: node.name: the value contains a NUL "
	                  "byte");
}

/* The same key twice, in any spelling, is an error naming both lines. */
static void test_config_load_duplicate_key(void **state)
{
	(void)state;
	ASSERT_YAML_FAILS("node:\n  id: 1\n  id: 2\n",
	                  "strata.yaml:3: duplicate key 'node.id' (first at "
	                  "line 2)");
	ASSERT_YAML_FAILS("node.id: 1\nnode:\n  id: 2\n",
	                  "strata.yaml:3: duplicate key 'node.id' (first at "
	                  "line 1)");
	ASSERT_YAML_FAILS("raft: {}\nlog: {}\nraft: {}\n",
	                  "strata.yaml:3: duplicate key 'raft' (first at "
	                  "line 1)");
	ASSERT_YAML_FAILS("tier2.options:\n  a: 1\n  a: 2\n",
	                  "strata.yaml:3: duplicate key 'tier2.options.a'");
}

/* A missing file names the path, the cause and the fix. */
static void test_config_load_missing_file(void **state)
{
	(void)state;
	struct config cfg;
	char *empty[] = {NULL};
	char *argv[] = {"prog", "--config=/nonexistent/strata.yaml"};
	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 2, argv, empty, NULL),
	                 STRATA_ECONFIG);
	assert_has(config_errmsg(&cfg),
	           "open config file /nonexistent/strata.yaml: No such file "
	           "or directory",
	           "--config or STRATA_CONFIG", NULL);
	config_close(&cfg);
	char *argv2[] = {"prog", "--config", dir};
	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 3, argv2, empty, NULL),
	                 STRATA_ECONFIG);
	assert_has(config_errmsg(&cfg), "it is a directory", NULL);
	config_close(&cfg);
}

/* defaults < file < env < flags, each key reporting its source. */
static void test_config_load_precedence(void **state)
{
	(void)state;
	struct config cfg;
	const char *yaml = "node:\n"
	                   "  id: 2\n"
	                   "  offset: 2\n"
	                   "  name: file\n";
	char *env[] = {"STRATA_NODE_OFFSET=3", "STRATA_NODE_NAME=env",
	               "STRATA_PLUGIN_DIR=/unrelated", "PATH=/bin", NULL};
	assert_int_equal(load(&cfg, yaml, env, "--node.name=flag", NULL), 0);
	assert_true(config_get_uint(&cfg, "node.id") == 2);
	assert_true(config_get_int(&cfg, "node.offset") == 3);
	assert_string_equal(config_get_string(&cfg, "node.name"), "flag");
	assert_string_equal(config_get_string(&cfg, "log.level"), "info");
	char want[sizeof(yaml_path) + 8];
	snprintf(want, sizeof(want), "%s:2", yaml_path);
	assert_string_equal(config_source(&cfg, "node.id"), want);
	assert_string_equal(config_source(&cfg, "node.offset"),
	                    "env STRATA_NODE_OFFSET");
	assert_string_equal(config_source(&cfg, "node.name"),
	                    "flag --node.name");
	assert_string_equal(config_source(&cfg, "log.level"), "default");
	config_close(&cfg);
}

/* STRATA_CONFIG names the file when no --config is given. */
static void test_config_load_config_from_env(void **state)
{
	(void)state;
	struct config cfg;
	char var[sizeof(yaml_path) + 16];
	snprintf(var, sizeof(var), "STRATA_CONFIG=%s", yaml_path);
	char *env[] = {var, NULL};
	char *argv[] = {"prog"};
	write_yaml("node.id: 9\n");
	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 1, argv, env, NULL), 0);
	assert_true(config_get_uint(&cfg, "node.id") == 9);
	config_close(&cfg);
}

/* Bad environment values name the variable, key and allowed values. */
static void test_config_load_env_errors(void **state)
{
	(void)state;
	struct config cfg;
	char *env[] = {"STRATA_RAFT_ELECTION_TIMEOUT=abc", NULL};
	assert_int_equal(load(&cfg, NULL, env, NULL), STRATA_ECONFIG);
	assert_string_equal(config_errmsg(&cfg),
	                    "env STRATA_RAFT_ELECTION_TIMEOUT: "
	                    "raft.election_timeout: 'abc' is not a duration; "
	                    "use a number with ms, s, m, h or d, e.g. 500ms");
	config_close(&cfg);
	char *env2[] = {"STRATA_TIER2_OPTIONS_=x", NULL};
	assert_int_equal(load(&cfg, NULL, env2, NULL), STRATA_ECONFIG);
	assert_has(config_errmsg(&cfg),
	           "env STRATA_TIER2_OPTIONS_: ", "STRATA_TIER2_OPTIONS_<KEY>",
	           NULL);
	config_close(&cfg);
}

/* Flag forms: =, separate value, '-' or '_', bare bools, positionals. */
static void test_config_load_flag_forms(void **state)
{
	(void)state;
	struct config cfg;
	char *empty[] = {NULL};
	char *argv[] = {"prog",
	                "--raft.election-timeout=3s",
	                "--node.id",
	                "5",
	                "--log.json",
	                "--node.offset",
	                "-4",
	                "--cache.size=2MB",
	                "--raft.heartbeat_interval",
	                "300ms",
	                "stream",
	                "create"};
	int first = -1;
	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 12, argv, empty, &first), 0);
	assert_int_equal(first, 10);
	assert_true(config_get_duration_ms(&cfg, "raft.election_timeout") ==
	            3000);
	assert_true(config_get_uint(&cfg, "node.id") == 5);
	assert_true(config_get_bool(&cfg, "log.json"));
	assert_true(config_get_int(&cfg, "node.offset") == -4);
	assert_true(config_get_size(&cfg, "cache.size") == 2000000);
	assert_true(config_get_duration_ms(&cfg, "raft.heartbeat_interval") ==
	            300);
	assert_string_equal(config_source(&cfg, "node.id"), "flag --node.id");
	assert_string_equal(config_source(&cfg, "raft.heartbeat_interval"),
	                    "flag --raft.heartbeat_interval");
	config_close(&cfg);

	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 0, NULL, empty, &first), 0);
	assert_int_equal(first, 0);
	config_close(&cfg);

	char *argv2[] = {"prog", "--log.json=off", "--", "--node.id=3"};
	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 4, argv2, empty, &first), 0);
	assert_int_equal(first, 3);
	assert_false(config_get_bool(&cfg, "log.json"));
	assert_true(config_get_uint(&cfg, "node.id") == 1);
	config_close(&cfg);
}

/* Flag mistakes: unknown (with suggestion), missing value, positional. */
static void test_config_load_flag_errors(void **state)
{
	(void)state;
	struct {
		char *args[3];
		const char *msg;
	} cases[] = {
	        {{"--raft.election-timout=2s"},
	         "unknown flag '--raft.election-timout' (did you mean "
	         "'--raft.election-timeout'?); run with --help"},
	        {{"--bogus"}, "unknown flag '--bogus'; run with --help"},
	        {{"-x"}, "unknown flag '-x'"},
	        {{"--raft=1"}, "unknown flag '--raft'"},
	        {{"--node.id"}, "flag --node.id needs a value"},
	        {{"--node.id", "--log.json"}, "flag --node.id needs a value"},
	        {{"--config"}, "flag --config needs a value: --config=FILE"},
	        {{"--config="}, "flag --config needs a file name"},
	        {{"stream"},
	         "unexpected argument 'stream'; this program "
	         "takes only --flags"},
	        {{"--node.id=x"},
	         "flag --node.id: node.id: 'x' is not a "
	         "non-negative integer"},
	        {{"--tier2.options=x"},
	         "flag --tier2.options: 'tier2.options' "
	         "is a section"},
	        {{"--log.level", "LOUD"},
	         "'LOUD' is not allowed; use one of: "
	         "debug, info, warn, error"},
	};
	for (size_t i = 0; i < N(cases); i++) {
		struct config cfg;
		int rc = load(&cfg, NULL, NULL, cases[i].args[0],
		              cases[i].args[1], cases[i].args[2], NULL);
		assert_int_equal(rc, STRATA_ECONFIG);
		assert_has(config_errmsg(&cfg), cases[i].msg, NULL);
		config_close(&cfg);
	}
}

/* --help wins over bad flags and files, and reads no file. */
static void test_config_load_help_flag(void **state)
{
	(void)state;
	struct config cfg;
	char *empty[] = {NULL};
	char *argv[] = {"prog", "--config=/nonexistent.yaml", "--help",
	                "--bogus"};
	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 4, argv, empty, NULL), 0);
	assert_true(config_help_requested(&cfg));
	config_close(&cfg);
	char *argv2[] = {"prog", "--node.id=x", "--bogus", "-h"};
	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 4, argv2, empty, NULL), 0);
	assert_true(config_help_requested(&cfg));
	config_close(&cfg);
	char *argv3[] = {"prog", "--bogus", "--", "-h"};
	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 4, argv3, empty, NULL),
	                 STRATA_ECONFIG);
	assert_false(config_help_requested(&cfg));
	config_close(&cfg);
}

/* --version wins over bad flags and files, reads no file, and yields to
 * --help wherever that is. */
static void test_config_load_version_flag(void **state)
{
	(void)state;
	struct config cfg;
	char *empty[] = {NULL};
	char *argv[] = {"prog", "--config=/nonexistent.yaml", "--version",
	                "--bogus"};
	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 4, argv, empty, NULL), 0);
	assert_true(config_version_requested(&cfg));
	assert_false(config_help_requested(&cfg));
	config_close(&cfg);
	char *argv2[] = {"prog", "--bogus", "--version"};
	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 3, argv2, empty, NULL), 0);
	assert_true(config_version_requested(&cfg));
	config_close(&cfg);
	char *argv3[] = {"prog", "--version", "--help"};
	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 3, argv3, empty, NULL), 0);
	assert_true(config_help_requested(&cfg));
	assert_false(config_version_requested(&cfg));
	config_close(&cfg);
	char *argv4[] = {"prog", "--bogus", "--", "--version"};
	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 4, argv4, empty, NULL),
	                 STRATA_ECONFIG);
	assert_false(config_version_requested(&cfg));
	config_close(&cfg);
	char *argv5[] = {"prog", "--node.id=3"};
	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 2, argv5, empty, NULL), 0);
	assert_false(config_version_requested(&cfg));
	config_close(&cfg);
}

/* A required key must come from a file, variable or flag. */
static void test_config_load_required_missing(void **state)
{
	(void)state;
	static const struct config_key req[] = {
	        {.name = "cluster.name",
	         .type = CONFIG_STRING,
	         .flags = CONFIG_REQUIRED,
	         .help = "Cluster name."},
	};
	struct config cfg;
	char *empty[] = {NULL};
	char *argv[] = {"prog", "--cluster.name=c1"};
	assert_int_equal(config_init(&cfg, req, 1), 0);
	assert_int_equal(config_load(&cfg, 1, argv, empty, NULL),
	                 STRATA_ECONFIG);
	assert_string_equal(config_errmsg(&cfg),
	                    "missing required key 'cluster.name' (Cluster "
	                    "name.); set it in the config file, as "
	                    "STRATA_CLUSTER_NAME in the environment or with "
	                    "--cluster.name=VALUE");
	config_close(&cfg);
	assert_int_equal(config_init(&cfg, req, 1), 0);
	assert_int_equal(config_load(&cfg, 2, argv, empty, NULL), 0);
	assert_string_equal(config_get_string(&cfg, "cluster.name"), "c1");
	config_close(&cfg);
}

/* Sections flatten to key=value lines from all three layers. */
static void test_config_section_flatten_nested(void **state)
{
	(void)state;
	struct config cfg;
	const char *yaml = "tier2:\n"
	                   "  options:\n"
	                   "    bucket: b1\n"
	                   "    s3:\n"
	                   "      region: eu-1\n"
	                   "      retries: 3\n"
	                   "    endpoint: \"http://127.0.0.1:9000\"\n"
	                   "tier2.options.top: t\n";
	char *env[] = {"STRATA_TIER2_OPTIONS_ACCESS_KEY=AK",
	               "STRATA_TIER2_OPTIONS_BUCKET=b2", NULL};
	assert_int_equal(load(&cfg, yaml, env, "--tier2.options.s3.retries=5",
	                      "--tier2.options.new-key", "v", NULL),
	                 0);
	char *s = NULL;
	assert_int_equal(config_section_flatten(&cfg, "tier2.options", &s), 0);
	assert_string_equal(s, "bucket=b2\n"
	                       "s3.region=eu-1\n"
	                       "s3.retries=5\n"
	                       "endpoint=http://127.0.0.1:9000\n"
	                       "top=t\n"
	                       "access_key=AK\n"
	                       "new_key=v\n");
	strata_free(s);
	assert_string_equal(config_source(&cfg, "tier2.options.access_key"),
	                    "env STRATA_TIER2_OPTIONS_ACCESS_KEY");
	config_close(&cfg);

	assert_int_equal(load(&cfg, NULL, NULL, NULL), 0);
	assert_int_equal(config_section_flatten(&cfg, "tier2.options", &s), 0);
	assert_string_equal(s, "");
	strata_free(s);
	config_close(&cfg);
}

/* Section leaves must be one-line scalars with plain key names. */
static void test_config_section_rejects_bad_leaves(void **state)
{
	(void)state;
	ASSERT_YAML_FAILS("tier2.options:\n  list: [1, 2]\n",
	                  "strata.yaml:2: tier2.options.list: expected one "
	                  "value, found a list; write a list as one "
	                  "comma-separated string");
	ASSERT_YAML_FAILS("tier2.options:\n  Bad-Key: 1\n",
	                  "strata.yaml:2: 'tier2.options.Bad-Key' is not a "
	                  "valid key in section 'tier2.options'");
	ASSERT_YAML_FAILS("tier2.options:\n  k: \"a\\nb\"\n",
	                  "tier2.options.k: values in section "
	                  "'tier2.options' must fit on one line");
	ASSERT_YAML_FAILS("tier2.options:\n  k: 1\n  k.x: 2\n",
	                  "strata.yaml:3: 'tier2.options.k.x' clashes with "
	                  "'tier2.options.k'");
	ASSERT_YAML_FAILS("tier2.options:\n  k:\n",
	                  "strata.yaml:2: tier2.options.k has no value");
}

/* Help lists every key as a flag with type, default, range and env. */
static void test_config_print_help_every_key(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	config_print_help(schema, N(schema), f);
	fclose(f);
	for (size_t i = 0; i < N(schema); i++) {
		char flag[160];
		char env[160];
		size_t j = 0;
		for (const char *p = schema[i].name; *p; p++) {
			flag[j++] = *p == '_' ? '-' : *p;
		}
		flag[j] = '\0';
		j = 0;
		for (const char *p = schema[i].name; *p; p++) {
			env[j++] = *p == '.'                  ? '_'
			           : (*p >= 'a' && *p <= 'z') ? (char)(*p - 32)
			                                      : *p;
		}
		env[j] = '\0';
		assert_has(buf, flag, env, schema[i].help, NULL);
	}
	assert_has(buf,
	           "  --raft.election-timeout=DURATION\n"
	           "      Election timeout.\n"
	           "      Default: 1s. Range: 100ms..1m. Env: "
	           "STRATA_RAFT_ELECTION_TIMEOUT.\n",
	           "--log.level=debug|info|warn|error", "--log.json[=BOOL]",
	           "--tier2.options.<key>=VALUE",
	           "Env: STRATA_TIER2_OPTIONS_<KEY>.", "--config=FILE",
	           "Default: unset.", NULL);
	free(buf);
}

/* The dump is nested YAML with sources, secrets redacted, reloadable. */
static void test_config_dump_yaml_with_sources(void **state)
{
	(void)state;
	struct config cfg;
	char *env[] = {"STRATA_LOG_JSON=on", "STRATA_AUTH_TOKEN=hunter2", NULL};
	assert_int_equal(load(&cfg,
	                      "node: {name: \"a \\\"q\\\"\"}\n"
	                      "tier2.options: {path: /d, s3: {a: 1}, "
	                      "secret_key: sk}\n",
	                      env, "--cache.size=1GiB", NULL),
	                 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(config_dump(&cfg, f), 0);
	fclose(f);
	assert_has(buf,
	           "auth:\n  token: \"<redacted>\"  # env "
	           "STRATA_AUTH_TOKEN\n",
	           "cache:\n  size: 1GiB  # flag --cache.size\n",
	           "log:\n  json: on  # env STRATA_LOG_JSON\n"
	           "  level: \"info\"  # default\n",
	           "node:\n  id: 1  # default\n  name: \"a \\\"q\\\"\"  # ",
	           "strata.yaml:1\n  offset: 0  # default\n",
	           "tier2:\n  options:\n    path: \"/d\"  # ",
	           "    s3:\n      a: \"1\"  # ",
	           "    secret_key: \"<redacted>\"", "  plugin: \"local\"",
	           NULL);
	assert_null(strstr(buf, "hunter2"));
	config_close(&cfg);

	/* Without secrets, the dump loads back to the same values. */
	assert_int_equal(load(&cfg, "node: {name: \"x\\ty\"}\n", NULL,
	                      "--raft.election-timeout=5s", NULL),
	                 0);
	f = fopen(yaml_path, "w");
	assert_non_null(f);
	assert_int_equal(config_dump(&cfg, f), 0);
	fclose(f);
	config_close(&cfg);
	char *argv[] = {"prog", "--config", yaml_path};
	char *empty[] = {NULL};
	assert_int_equal(config_init(&cfg, schema, N(schema)), 0);
	assert_int_equal(config_load(&cfg, 3, argv, empty, NULL), 0);
	assert_string_equal(config_get_string(&cfg, "node.name"), "x\ty");
	assert_true(config_get_duration_ms(&cfg, "raft.election_timeout") ==
	            5000);
	config_close(&cfg);
	free(buf);
}

/* Programming errors in a schema are reported by config_init. */
static void test_config_init_rejects_bad_schema(void **state)
{
	(void)state;
	static const char *const none[] = {NULL};
	struct {
		struct config_key k[2];
		size_t n;
		const char *msg;
	} cases[] = {
	        {{{.name = "Bad", .type = CONFIG_INT, .def = "1", .help = "h"}},
	         1,
	         "name 'Bad' is not"},
	        {{{.name = "a..b",
	           .type = CONFIG_INT,
	           .def = "1",
	           .help = "h"}},
	         1,
	         "name 'a..b'"},
	        {{{.name = "config",
	           .type = CONFIG_BOOL,
	           .def = "1",
	           .help = "h"}},
	         1,
	         "reserved"},
	        {{{.name = "version",
	           .type = CONFIG_BOOL,
	           .def = "1",
	           .help = "h"}},
	         1,
	         "reserved"},
	        {{{.name = "a", .type = CONFIG_INT, .def = "1", .help = "h"},
	          {.name = "a", .type = CONFIG_INT, .def = "1", .help = "h"}},
	         2,
	         "key 'a' is declared twice"},
	        {{{.name = "a", .type = CONFIG_INT, .def = "1", .help = "h"},
	          {.name = "a.b", .type = CONFIG_INT, .def = "1", .help = "h"}},
	         2,
	         "a key cannot also be a group"},
	        {{{.name = "a.b_c",
	           .type = CONFIG_INT,
	           .def = "1",
	           .help = "h"},
	          {.name = "a_b.c",
	           .type = CONFIG_INT,
	           .def = "1",
	           .help = "h"}},
	         2,
	         "clash in the environment"},
	        {{{.name = "s", .type = CONFIG_SECTION, .help = "h"},
	          {.name = "s_x", .type = CONFIG_INT, .def = "1", .help = "h"}},
	         2,
	         "clash in the environment"},
	        {{{.name = "a", .type = CONFIG_INT, .help = "h"}},
	         1,
	         "needs a default or CONFIG_REQUIRED"},
	        {{{.name = "a", .type = CONFIG_INT, .def = "x", .help = "h"}},
	         1,
	         "default 'x' is not an integer"},
	        {{{.name = "a",
	           .type = CONFIG_INT,
	           .def = "20",
	           .max = "10",
	           .help = "h"}},
	         1,
	         "default '20' is out of range"},
	        {{{.name = "a",
	           .type = CONFIG_INT,
	           .def = "5",
	           .min = "10",
	           .max = "1",
	           .help = "h"}},
	         1,
	         "bad bounds [10, 1]"},
	        {{{.name = "a",
	           .type = CONFIG_BOOL,
	           .def = "1",
	           .max = "1",
	           .help = "h"}},
	         1,
	         "min/max are for numeric types"},
	        {{{.name = "a",
	           .type = CONFIG_ENUM,
	           .def = "x",
	           .allowed = none,
	           .help = "h"}},
	         1,
	         "allowed (non-empty) for enums"},
	        {{{.name = "a", .type = CONFIG_INT, .def = "1"}},
	         1,
	         "needs help text"},
	        {{{.name = "a",
	           .type = CONFIG_STRING,
	           .def = "x",
	           .flags = CONFIG_REQUIRED,
	           .help = "h"}},
	         1,
	         "a required key has no default"},
	        {{{.name = "s",
	           .type = CONFIG_SECTION,
	           .def = "x",
	           .help = "h"}},
	         1,
	         "a section has no default"},
	};
	for (size_t i = 0; i < N(cases); i++) {
		struct config cfg;
		assert_int_equal(config_init(&cfg, cases[i].k, cases[i].n),
		                 STRATA_EINVAL);
		assert_has(config_errmsg(&cfg), "config schema: ", cases[i].msg,
		           NULL);
		config_close(&cfg);
	}
}

/* A getter of the wrong type or an unknown key aborts (in a child). */
static void test_config_get_wrong_type_aborts(void **state)
{
	(void)state;
	for (int which = 0; which < 2; which++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct config cfg;
			if (config_init(&cfg, schema, N(schema)) != 0) {
				_exit(1);
			}
			fclose(stderr);
			if (which == 0) {
				(void)config_get_int(&cfg, "node.id");
			} else {
				(void)config_get_bool(&cfg, "no.such.key");
			}
			_exit(0);
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGABRT);
	}
}

/* Unknown STRATA_* variables are ignored, not errors. */
static void test_config_load_ignores_unrelated_env(void **state)
{
	(void)state;
	struct config cfg;
	char *env[] = {"STRATA_SOMETHING_ELSE=1", "STRATA_NODE_IDD=3",
	               "STRATA_NODE_ID", NULL};
	assert_int_equal(load(&cfg, NULL, env, NULL), 0);
	assert_true(config_get_uint(&cfg, "node.id") == 1);
	config_close(&cfg);
}

/* Every allocation failure gives STRATA_ENOMEM and leaks nothing. */
static void test_config_load_oom(void **state)
{
	(void)state;
	write_yaml("node: {id: 3, name: n}\n"
	           "raft.election_timeout: 2s\n"
	           "tier2:\n  options:\n    a: 1\n    b: {c: 2}\n");
	char *argv[] = {"prog", "--config", yaml_path, "--log.level=warn",
	                "--tier2.options.d=4"};
	char *env[] = {"STRATA_NODE_OFFSET=1", "STRATA_TIER2_OPTIONS_E=5",
	               NULL};
	long n;
	for (n = 1; n < 1000; n++) {
		struct config cfg;
		char *flat = NULL;
		oom_install(n);
		int rc = config_init(&cfg, schema, N(schema));
		if (rc == 0) {
			rc = config_load(&cfg, 5, argv, env, NULL);
		}
		if (rc != 0) {
			oom_uninstall();
			assert_int_equal(rc, STRATA_ENOMEM);
			assert_has(config_errmsg(&cfg), "out of memory", NULL);
			config_close(&cfg);
			continue;
		}
		if (rc == 0) {
			rc = config_section_flatten(&cfg, "tier2.options",
			                            &flat);
		}
		if (rc == 0) {
			FILE *f = fopen("/dev/null", "w");
			rc = config_dump(&cfg, f);
			fclose(f);
		}
		long calls = oom_uninstall();
		if (rc == 0) {
			assert_string_equal(flat, "a=1\nb.c=2\ne=5\nd=4\n");
			strata_free(flat);
			config_close(&cfg);
			assert_true(calls < n);
			break;
		}
		assert_int_equal(rc, STRATA_ENOMEM);
		strata_free(flat);
		config_close(&cfg);
	}
	assert_true(n > 10 && n < 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_config_parse_bool_spellings),
	        cmocka_unit_test(test_config_parse_int_and_uint_limits),
	        cmocka_unit_test(test_config_parse_duration_units),
	        cmocka_unit_test(test_config_parse_size_units),
	        cmocka_unit_test(test_config_load_defaults),
	        cmocka_unit_test(test_config_check_addresses),
	        cmocka_unit_test(test_config_load_file_every_type),
	        cmocka_unit_test(test_config_load_empty_file),
	        cmocka_unit_test(test_config_load_bad_values),
	        cmocka_unit_test(test_config_load_unknown_key_suggests),
	        cmocka_unit_test(test_config_load_yaml_syntax_error),
	        cmocka_unit_test(test_config_load_structure_errors),
	        cmocka_unit_test(test_config_load_duplicate_key),
	        cmocka_unit_test(test_config_load_missing_file),
	        cmocka_unit_test(test_config_load_precedence),
	        cmocka_unit_test(test_config_load_config_from_env),
	        cmocka_unit_test(test_config_load_env_errors),
	        cmocka_unit_test(test_config_load_flag_forms),
	        cmocka_unit_test(test_config_load_flag_errors),
	        cmocka_unit_test(test_config_load_help_flag),
	        cmocka_unit_test(test_config_load_version_flag),
	        cmocka_unit_test(test_config_load_required_missing),
	        cmocka_unit_test(test_config_section_flatten_nested),
	        cmocka_unit_test(test_config_section_rejects_bad_leaves),
	        cmocka_unit_test(test_config_print_help_every_key),
	        cmocka_unit_test(test_config_dump_yaml_with_sources),
	        cmocka_unit_test(test_config_init_rejects_bad_schema),
	        cmocka_unit_test(test_config_get_wrong_type_aborts),
	        cmocka_unit_test(test_config_load_ignores_unrelated_env),
	        cmocka_unit_test(test_config_load_oom),
	        cmocka_unit_test(test_config_check_duration_below),
	};
	return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
