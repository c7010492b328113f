/* Unit tests for common/plugin.c: the tier-2 loader, host and op wrappers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/plugin.h"
#include "strata/plugin_config.h"
#include "tests/lib/check.h"
#include "tests/lib/oom.h"

/* The table layout is ABI: pin every field's offset (LP64). */
_Static_assert(offsetof(struct strata_tier2_ops, abi_version) == 0, "abi");
_Static_assert(offsetof(struct strata_tier2_ops, reserved) == 4, "reserved");
_Static_assert(offsetof(struct strata_tier2_ops, name) == 8, "name");
_Static_assert(offsetof(struct strata_tier2_ops, open) == 16, "open");
_Static_assert(offsetof(struct strata_tier2_ops, close) == 24, "close");
_Static_assert(offsetof(struct strata_tier2_ops, create) == 32, "create");
_Static_assert(offsetof(struct strata_tier2_ops, write) == 40, "write");
_Static_assert(offsetof(struct strata_tier2_ops, read) == 48, "read");
_Static_assert(offsetof(struct strata_tier2_ops, stat) == 56, "stat");
_Static_assert(offsetof(struct strata_tier2_ops, list) == 64, "list");
_Static_assert(offsetof(struct strata_tier2_ops, truncate) == 72, "trunc");
_Static_assert(offsetof(struct strata_tier2_ops, concat) == 80, "concat");
_Static_assert(offsetof(struct strata_tier2_ops, remove) == 88, "remove");
_Static_assert(offsetof(struct strata_tier2_ops, check) == 96, "check");
_Static_assert(sizeof(struct strata_tier2_ops) == 104, "ops size");
_Static_assert(offsetof(struct strata_host, abi_version) == 0, "h abi");
_Static_assert(offsetof(struct strata_host, log) == 8, "h log");
_Static_assert(offsetof(struct strata_host, malloc) == 16, "h malloc");
_Static_assert(offsetof(struct strata_host, realloc) == 24, "h realloc");
_Static_assert(offsetof(struct strata_host, free) == 32, "h free");
_Static_assert(offsetof(struct strata_host, counter_add) == 40, "h ctr");
_Static_assert(offsetof(struct strata_host, host_data) == 48, "h data");
_Static_assert(offsetof(struct strata_host, open_tier2) == 56, "h open");
_Static_assert(sizeof(struct strata_host) == 64, "host size");
_Static_assert(sizeof(struct strata_tier2_chunk_info) == 16, "info size");
_Static_assert(STRATA_TIER2_ABI_VERSION == 2, "bump the pins above too");

static char errmsg[STRATA_ERRMSG_SIZE];

/* Path of a test plugin variant built beside this test. */
static const char *tp_path(const char *variant)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/tier2-%s.so", TEST_PLUGIN_DIR,
	         variant);
	return path;
}

static long calls_seen;
static long opens_seen;
static char last_plugin[32];

static void count_hook(const char *plugin, const char *name, uint64_t delta)
{
	snprintf(last_plugin, sizeof(last_plugin), "%s", plugin);
	if (strcmp(name, "calls") == 0) {
		calls_seen += (long)delta;
	} else if (strcmp(name, "opens") == 0) {
		opens_seen += (long)delta;
	}
}

static int setup(void **state)
{
	(void)state;
	unsetenv("STRATA_PLUGIN_DIR");
	memset(errmsg, 0, sizeof(errmsg));
	calls_seen = 0;
	opens_seen = 0;
	tier2_set_counter_hook(count_hook);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tier2_set_counter_hook(NULL);
	return 0;
}

static struct tier2 *open_tp(void)
{
	struct tier2 *t = NULL;
	int rc = tier2_load_open(tp_path("tp"), NULL, "", &t, errmsg);
	if (rc != 0) {
		fail_msg("open tp: %s", errmsg);
	}
	return t;
}

/* A path that does not exist names the file, dlopen's reason and the key. */
static void test_tier2_load_nonexistent_path(void **state)
{
	(void)state;
	struct tier2_plugin *p = NULL;
	int rc = tier2_load("/nonexistent/tier2-x.so", NULL, &p, errmsg);
	assert_int_equal(rc, STRATA_EPLUGIN);
	assert_null(p);
	assert_contains(errmsg, "load tier-2 plugin /nonexistent/tier2-x.so: ");
	assert_contains(errmsg, "no such file");
	assert_contains(errmsg, "check tier2.plugin");
	/* dlerror()'s copy of the path is dropped: it appears once. */
	const char *first = strstr(errmsg, "/nonexistent/tier2-x.so");
	assert_null(strstr(first + 1, "/nonexistent/tier2-x.so"));
}

/* A name is looked up as <plugin_dir>/tier2-<name>.so and the message says
 * where it looked; STRATA_PLUGIN_DIR overrides plugin_dir. */
static void test_tier2_load_name_uses_plugin_dir(void **state)
{
	(void)state;
	struct tier2_plugin *p = NULL;
	int rc = tier2_load("nosuch", "/opt/none", &p, errmsg);
	assert_int_equal(rc, STRATA_EPLUGIN);
	assert_contains(errmsg, "/opt/none/tier2-nosuch.so: ");
	assert_contains(errmsg, "plugins are looked up in /opt/none");

	setenv("STRATA_PLUGIN_DIR", "/env/dir", 1);
	rc = tier2_load("nosuch", "/opt/none", &p, errmsg);
	assert_int_equal(rc, STRATA_EPLUGIN);
	assert_contains(errmsg, "/env/dir/tier2-nosuch.so: ");
	assert_contains(errmsg,
	                "looked up in /env/dir (from STRATA_PLUGIN_DIR)");

	setenv("STRATA_PLUGIN_DIR", TEST_PLUGIN_DIR, 1);
	rc = tier2_load("tp", "/opt/none", &p, errmsg);
	assert_int_equal(rc, 0);
	assert_string_equal(tier2_plugin_name(p), "tp");
	assert_string_equal(tier2_plugin_path(p), tp_path("tp"));
	tier2_unload(p);
	unsetenv("STRATA_PLUGIN_DIR");
}

/* Without a plugin_dir: ../plugins beside the program, which exists
 * for this test binary in the build tree. */
static void test_tier2_load_default_dir(void **state)
{
	(void)state;
	char buf[PATH_MAX];
	const char *beside = plugin_dir_beside_exe(buf, sizeof(buf));
	assert_non_null(beside);
	assert_contains(beside, "/../plugins");
	struct tier2_plugin *p = NULL;
	int rc = tier2_load("nosuch", NULL, &p, errmsg);
	assert_int_equal(rc, STRATA_EPLUGIN);
	assert_contains(errmsg, beside);
}

/* strata/plugins beside the file holding the library's code (this
 * statically linked test binary) is found once it exists. */
static void test_plugin_dir_beside_lib(void **state)
{
	(void)state;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	char top[PATH_MAX + 16];
	char dir[PATH_MAX + 32];
	snprintf(top, sizeof(top), "%s/strata", exe);
	snprintf(dir, sizeof(dir), "%s/strata/plugins", exe);
	rmdir(dir);
	rmdir(top);
	char buf[PATH_MAX];
	assert_null(plugin_dir_beside_lib(buf, sizeof(buf)));
	assert_int_equal(mkdir(top, 0755), 0);
	assert_int_equal(mkdir(dir, 0755), 0);
	const char *got = plugin_dir_beside_lib(buf, sizeof(buf));
	rmdir(dir);
	rmdir(top);
	assert_non_null(got);
	assert_string_equal(got, dir);
}

/* A name with characters outside [A-Za-z0-9_-] is rejected up front. */
static void test_tier2_load_bad_name(void **state)
{
	(void)state;
	struct tier2_plugin *p = NULL;
	assert_int_equal(tier2_load("two words", NULL, &p, errmsg),
	                 STRATA_EBADNAME);
	assert_contains(errmsg, "'two words': invalid plugin name");
	assert_int_equal(tier2_load("", NULL, &p, errmsg), STRATA_EBADNAME);
	assert_int_equal(tier2_load(NULL, NULL, &p, errmsg), STRATA_EBADNAME);
}

/* A shared object without the entry symbol is not a plugin. */
static void test_tier2_load_missing_symbol(void **state)
{
	(void)state;
	struct tier2_plugin *p = NULL;
	int rc = tier2_load(tp_path("tp_noentry"), NULL, &p, errmsg);
	assert_int_equal(rc, STRATA_EPLUGIN);
	assert_contains(errmsg, tp_path("tp_noentry"));
	assert_contains(errmsg, "has no symbol strata_tier2_plugin: not a "
	                        "Strata tier-2 plugin");
}

/* A plugin built for a newer ABI is refused with the fix. */
static void test_tier2_load_abi_too_new(void **state)
{
	(void)state;
	struct tier2_plugin *p = NULL;
	int rc = tier2_load(tp_path("tp_abi7"), NULL, &p, errmsg);
	assert_int_equal(rc, STRATA_EABI);
	assert_contains(errmsg, tp_path("tp_abi7"));
	assert_contains(errmsg, "was built for tier-2 ABI 7; this Strata "
	                        "loads 1..2: rebuild it against this "
	                        "release's include/strata/plugin.h");
}

/* Version 0 (older than STRATA_TIER2_ABI_MIN) is refused too. */
static void test_tier2_load_abi_too_old(void **state)
{
	(void)state;
	struct tier2_plugin *p = NULL;
	int rc = tier2_load(tp_path("tp_abi0"), NULL, &p, errmsg);
	assert_int_equal(rc, STRATA_EABI);
	assert_contains(errmsg, tp_path("tp_abi0"));
	assert_contains(errmsg, "was built for tier-2 ABI 0");
}

/* A NULL required op is named. */
static void test_tier2_load_null_required_op(void **state)
{
	(void)state;
	struct tier2_plugin *p = NULL;
	int rc = tier2_load(tp_path("tp_nullwrite"), NULL, &p, errmsg);
	assert_int_equal(rc, STRATA_EPLUGIN);
	assert_contains(errmsg, tp_path("tp_nullwrite"));
	assert_contains(errmsg, "required op write is NULL");
}

/* An entry returning NULL, or a table without a name, is refused. */
static void test_tier2_load_null_table_or_name(void **state)
{
	(void)state;
	struct tier2_plugin *p = NULL;
	int rc = tier2_load(tp_path("tp_nulltable"), NULL, &p, errmsg);
	assert_int_equal(rc, STRATA_EPLUGIN);
	assert_contains(errmsg, "strata_tier2_plugin() returned NULL");
	rc = tier2_load(tp_path("tp_noname"), NULL, &p, errmsg);
	assert_int_equal(rc, STRATA_EPLUGIN);
	assert_contains(errmsg, "has no valid name");
}

/* A valid plugin loads; its table is copied and concat stays NULL. */
static void test_tier2_load_valid(void **state)
{
	(void)state;
	struct tier2_plugin *p = NULL;
	assert_int_equal(tier2_load(tp_path("tp"), NULL, &p, errmsg), 0);
	assert_string_equal(tier2_plugin_name(p), "tp");
	assert_int_equal(tier2_plugin_abi(p), 2);
	const struct strata_tier2_ops *ops = tier2_plugin_ops(p);
	assert_non_null(ops->write);
	assert_null(ops->concat);
	tier2_unload(p);
	tier2_unload(NULL);
}

/* open() gets working host services: log, allocator, counters. */
static void test_tier2_open_host_services(void **state)
{
	(void)state;
	struct tier2 *t = open_tp();
	assert_string_equal(tier2_name(t), "tp");
	assert_int_equal(opens_seen, 1);
	assert_string_equal(last_plugin, "tp");
	assert_false(tier2_supports_concat(t));
	tier2_close(t);
	tier2_close(NULL);
}

/* An open() error is returned with the plugin's message, prefixed. */
static void test_tier2_open_error_prefixed(void **state)
{
	(void)state;
	struct tier2 *t = NULL;
	int rc = tier2_load_open(tp_path("tp"), NULL, "fail=1", &t, errmsg);
	assert_int_equal(rc, STRATA_ECONFIG);
	assert_null(t);
	assert_string_equal(errmsg, "tp: config fail=1: asked to fail");
}

/* check (ABI 2) runs the plugin's check, not its open; its error comes
 * prefixed. A plugin built for ABI 1 has no check even if its table (built
 * with a newer header) sets one: the host reads only what ABI 1 declares. */
static void test_tier2_check(void **state)
{
	(void)state;
	struct tier2_plugin *p = NULL;
	assert_int_equal(tier2_load(tp_path("tp"), NULL, &p, errmsg), 0);
	int opens = opens_seen;
	assert_int_equal(tier2_check(p, "x=1", errmsg), 0);
	assert_int_equal(tier2_check(p, NULL, errmsg), 0);
	assert_int_equal(tier2_check(p, "fail=1", errmsg), STRATA_ECONFIG);
	assert_string_equal(errmsg, "tp: config fail=1: asked to fail");
	assert_int_equal(opens_seen, opens);
	tier2_unload(p);

	assert_int_equal(tier2_load(tp_path("tp_abi1"), NULL, &p, errmsg), 0);
	assert_int_equal(tier2_plugin_abi(p), 1);
	assert_null(tier2_plugin_ops(p)->check);
	assert_int_equal(tier2_check(p, "fail=1", errmsg), STRATA_ENOTSUP);
	assert_contains(errmsg, "tp: the plugin does not offer a check");
	struct tier2 *t = NULL;
	assert_int_equal(tier2_open(p, "", &t, errmsg), 0);
	tier2_close(t);
	tier2_unload(p);
}

/* The instance keeps the plugin loaded after the caller unloads it. */
static void test_tier2_unload_keeps_open_instance(void **state)
{
	(void)state;
	struct tier2_plugin *p = NULL;
	struct tier2 *t = NULL;
	assert_int_equal(tier2_load(tp_path("tp"), NULL, &p, errmsg), 0);
	assert_int_equal(tier2_open(p, NULL, &t, errmsg), 0);
	tier2_unload(p);
	assert_int_equal(tier2_create(t, "a/b", errmsg), 0);
	assert_string_equal(tier2_name(t), "tp");
	tier2_close(t);
}

/* Chunk name rules from plugin.h. */
static void test_tier2_chunk_name_valid_rules(void **state)
{
	(void)state;
	assert_true(tier2_chunk_name_valid("a"));
	assert_true(tier2_chunk_name_valid("scope/stream/0.e3/7"));
	assert_true(tier2_chunk_name_valid("A-Z_0.9/..x/x../.a"));
	const char *bad[] = {"",    "/a",   "a/",   "a//b",  ".",   "..",
	                     "a/.", "./a",  "a/..", "../a",  "a b", "a#b",
	                     "a\n", "a\\b", "é",    "a/../b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (tier2_chunk_name_valid(bad[i])) {
			fail_msg("'%s' accepted", bad[i]);
		}
	}
	assert_false(tier2_chunk_name_valid(NULL));
	char longname[STRATA_TIER2_NAME_MAX + 2];
	memset(longname, 'a', sizeof(longname));
	longname[STRATA_TIER2_NAME_MAX] = '\0';
	assert_true(tier2_chunk_name_valid(longname));
	longname[STRATA_TIER2_NAME_MAX] = 'a';
	longname[STRATA_TIER2_NAME_MAX + 1] = '\0';
	assert_false(tier2_chunk_name_valid(longname));
}

/* Every op rejects bad names before the plugin sees them. */
static void test_tier2_ops_reject_bad_names(void **state)
{
	(void)state;
	struct tier2 *t = open_tp();
	char buf[4];
	size_t n;
	struct strata_tier2_chunk_info info;
	const char *srcs[] = {"fine", "../x"};
	calls_seen = 0;
	assert_int_equal(tier2_create(t, "a//b", errmsg), STRATA_EBADNAME);
	assert_string_equal(errmsg,
	                    "tp: create chunk name 'a//b': invalid chunk name "
	                    "(a relative path of [A-Za-z0-9._/-], 1..1024 "
	                    "bytes, without empty, '.' or '..' components)");
	assert_int_equal(tier2_write(t, "/a", 0, "x", 1, errmsg),
	                 STRATA_EBADNAME);
	assert_int_equal(tier2_read(t, "..", 0, buf, 4, &n, errmsg),
	                 STRATA_EBADNAME);
	assert_int_equal(tier2_stat(t, "", &info, errmsg), STRATA_EBADNAME);
	assert_int_equal(tier2_list(t, "../", NULL, NULL, errmsg),
	                 STRATA_EBADNAME);
	assert_int_equal(tier2_list(t, "/x", NULL, NULL, errmsg),
	                 STRATA_EBADNAME);
	assert_int_equal(tier2_truncate(t, "a b", 0, errmsg), STRATA_EBADNAME);
	assert_int_equal(tier2_concat(t, "ok", srcs, 2, errmsg),
	                 STRATA_EBADNAME);
	assert_int_equal(tier2_concat(t, "a\n", srcs, 1, errmsg),
	                 STRATA_EBADNAME);
	assert_contains(errmsg, "'a?'");
	assert_int_equal(tier2_delete(t, "a/./b", errmsg), STRATA_EBADNAME);
	assert_int_equal(calls_seen, 0);
	tier2_close(t);
}

/* Good names reach the plugin; prefixes may end in '/' or be partial. */
static void test_tier2_ops_pass_good_names(void **state)
{
	(void)state;
	struct tier2 *t = open_tp();
	char buf[4];
	size_t n = 99;
	struct strata_tier2_chunk_info info;
	int listed = 0;
	assert_int_equal(tier2_create(t, "s/t/0", errmsg), 0);
	assert_int_equal(tier2_write(t, "s/t/0", 0, "x", 1, errmsg), 0);
	assert_int_equal(tier2_write(t, "s/t/0", 0, NULL, 0, errmsg), 0);
	assert_int_equal(tier2_read(t, "s/t/0", 0, buf, 4, &n, errmsg), 0);
	assert_int_equal(n, 0);
	assert_int_equal(tier2_stat(t, "s/t/0", &info, errmsg), 0);
	assert_int_equal(tier2_list(t, "", count_list_cb, &listed, errmsg), 0);
	assert_int_equal(tier2_list(t, NULL, count_list_cb, &listed, errmsg),
	                 0);
	assert_int_equal(tier2_list(t, "s/t/", count_list_cb, &listed, errmsg),
	                 0);
	assert_int_equal(tier2_list(t, "s/t/.", count_list_cb, &listed, errmsg),
	                 0);
	assert_int_equal(listed, 4);
	assert_int_equal(tier2_truncate(t, "s/t/0", 0, errmsg), 0);
	assert_int_equal(tier2_delete(t, "s/t/0", errmsg), 0);
	assert_int_equal(calls_seen, 11);
	tier2_close(t);
}

/* Bad arguments are STRATA_EINVAL without calling the plugin. */
static void test_tier2_ops_reject_bad_args(void **state)
{
	(void)state;
	struct tier2 *t = open_tp();
	size_t n;
	const char *dup[] = {"b", "b"};
	const char *self[] = {"a"};
	calls_seen = 0;
	assert_int_equal(tier2_write(t, "a", 0, NULL, 1, errmsg),
	                 STRATA_EINVAL);
	assert_int_equal(tier2_read(t, "a", 0, NULL, 1, &n, errmsg),
	                 STRATA_EINVAL);
	assert_int_equal(tier2_read(t, "a", 0, &n, 1, NULL, errmsg),
	                 STRATA_EINVAL);
	assert_int_equal(tier2_stat(t, "a", NULL, errmsg), STRATA_EINVAL);
	assert_int_equal(tier2_list(t, "", NULL, NULL, errmsg), STRATA_EINVAL);
	assert_int_equal(tier2_concat(t, "a", NULL, 0, errmsg), STRATA_EINVAL);
	assert_int_equal(tier2_concat(t, "a", self, 1, errmsg), STRATA_EINVAL);
	assert_contains(errmsg, "the target is also a source");
	assert_int_equal(tier2_concat(t, "a", dup, 2, errmsg), STRATA_EINVAL);
	assert_contains(errmsg, "named twice");
	assert_int_equal(calls_seen, 0);
	tier2_close(t);
}

/* A plugin without concat gets STRATA_ENOTSUP with a clear message. */
static void test_tier2_concat_null_is_enotsup(void **state)
{
	(void)state;
	struct tier2 *t = open_tp();
	const char *srcs[] = {"b", "c"};
	assert_int_equal(tier2_concat(t, "a", srcs, 2, errmsg), STRATA_ENOTSUP);
	assert_string_equal(errmsg,
	                    "tp: concat into chunk a: not supported by this "
	                    "plugin (copy the sources with read and write "
	                    "instead)");
	tier2_close(t);
}

/* Plugin messages are prefixed and always NUL-terminated; a missing one
 * is replaced by the code's description. */
static void test_tier2_errmsg_prefixed_and_terminated(void **state)
{
	(void)state;
	struct tier2 *t = open_tp();
	memset(errmsg, 'z', sizeof(errmsg));
	assert_int_equal(tier2_create(t, "longmsg", errmsg), STRATA_EIO);
	assert_true(strlen(errmsg) < STRATA_ERRMSG_SIZE);
	assert_true(strncmp(errmsg, "tp: xxxx", 8) == 0);
	assert_int_equal(tier2_delete(t, "nomsg", errmsg), STRATA_EIO);
	assert_string_equal(errmsg, "tp: delete nomsg: input/output error "
	                            "(the plugin gave no details)");
	tier2_close(t);
}

/* An invalid code (negative) from a plugin becomes STRATA_EINTERNAL. */
static void test_tier2_invalid_code_is_einternal(void **state)
{
	(void)state;
	struct tier2 *t = open_tp();
	assert_int_equal(tier2_write(t, "neg", 0, "x", 1, errmsg),
	                 STRATA_EINTERNAL);
	assert_string_equal(errmsg, "tp: write neg: invalid error code -1 "
	                            "(a plugin bug: report it to its author)");
	tier2_close(t);
}

/* A read reporting more bytes than the buffer holds is a plugin bug. */
static void test_tier2_read_overreport_is_einternal(void **state)
{
	(void)state;
	struct tier2 *t = open_tp();
	char buf[8];
	size_t n = 5;
	assert_int_equal(tier2_read(t, "overread", 0, buf, 8, &n, errmsg),
	                 STRATA_EINTERNAL);
	assert_int_equal(n, 0);
	assert_contains(errmsg, "9 bytes read into a 8-byte buffer");
	tier2_close(t);
}

/* Every allocation failure in load + open is STRATA_ENOMEM without leaks. */
static void test_tier2_load_open_oom(void **state)
{
	(void)state;
	struct tier2 *t = NULL;
	int rc = STRATA_ENOMEM;
	long n;
	for (n = 1; rc != 0 && n < 100; n++) {
		oom_install(n);
		rc = tier2_load_open(tp_path("tp"), NULL, "", &t, errmsg);
		oom_uninstall();
		if (rc != 0) {
			assert_int_equal(rc, STRATA_ENOMEM);
			assert_contains(errmsg, "out of memory");
		}
	}
	assert_int_equal(rc, 0);
	assert_true(n > 3);
	tier2_close(t);
}

/* The config helper splits, trims and parses lines. */
static void test_tier2_config_helper_parses_lines(void **state)
{
	(void)state;
	const char *cfg = "# c\n a = 1 \n\nb=64m\r\nbad\nc=x=y\n=v\nneg=-5";
	const char *cur = cfg;
	struct strata_config_item it;
	uint64_t u;
	int64_t i;
	char buf[8];
	assert_true(strata_config_next(&cur, &it));
	assert_true(strata_config_key_is(&it, "a"));
	assert_int_equal(strata_config_value_u64(&it, &u), 0);
	assert_int_equal(u, 1);
	assert_true(strata_config_next(&cur, &it));
	assert_true(strata_config_key_is(&it, "b"));
	assert_int_equal(strata_config_value_u64(&it, &u), 0);
	assert_int_equal(u, 64u << 20);
	assert_true(strata_config_next(&cur, &it));
	assert_true(strata_config_key_is(&it, "bad"));
	assert_null(it.value);
	assert_int_equal(strata_config_value_u64(&it, &u), STRATA_ECONFIG);
	assert_true(strata_config_next(&cur, &it));
	assert_true(strata_config_key_has_prefix(&it, "c"));
	assert_int_equal(strata_config_value_copy(&it, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "x=y");
	assert_int_equal(strata_config_value_copy(&it, buf, 3), STRATA_ECONFIG);
	assert_int_equal(strata_config_value_u64(&it, &u), STRATA_ECONFIG);
	assert_true(strata_config_next(&cur, &it));
	assert_int_equal(it.key_len, 0);
	assert_true(strata_config_next(&cur, &it));
	assert_int_equal(strata_config_value_i64(&it, &i), 0);
	assert_int_equal(i, -5);
	assert_false(strata_config_next(&cur, &it));
	cur = NULL;
	assert_false(strata_config_next(&cur, &it));
	const char *ovf = "x=99999999999999999999\ny=1t\nz=9223372036854775808";
	cur = ovf;
	assert_true(strata_config_next(&cur, &it));
	assert_int_equal(strata_config_value_u64(&it, &u), STRATA_ECONFIG);
	assert_true(strata_config_next(&cur, &it));
	assert_int_equal(strata_config_value_u64(&it, &u), 0);
	assert_int_equal(u, 1ull << 40);
	assert_true(strata_config_next(&cur, &it));
	assert_int_equal(strata_config_value_i64(&it, &i), STRATA_ECONFIG);
	/* Sizes take the same units as the host's config keys. */
	const char *units =
	        "a=64MiB\nb=64MB\nc=2KB\nd=3B\ne=1k\nf=1Mx\ng=1KiBB";
	const uint64_t want[] = {64ull << 20, 64000000, 2000, 3, 1024};
	cur = units;
	for (size_t k = 0; k < 5; k++) {
		assert_true(strata_config_next(&cur, &it));
		assert_int_equal(strata_config_value_u64(&it, &u), 0);
		assert_int_equal(u, want[k]);
	}
	for (size_t k = 0; k < 2; k++) {
		assert_true(strata_config_next(&cur, &it));
		assert_int_equal(strata_config_value_u64(&it, &u),
		                 STRATA_ECONFIG);
	}
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_tier2_load_nonexistent_path),
	        T(test_tier2_load_name_uses_plugin_dir),
	        T(test_tier2_load_default_dir),
	        T(test_plugin_dir_beside_lib),
	        T(test_tier2_load_bad_name),
	        T(test_tier2_load_missing_symbol),
	        T(test_tier2_load_abi_too_new),
	        T(test_tier2_load_abi_too_old),
	        T(test_tier2_load_null_required_op),
	        T(test_tier2_load_null_table_or_name),
	        T(test_tier2_load_valid),
	        T(test_tier2_open_host_services),
	        T(test_tier2_open_error_prefixed),
	        T(test_tier2_check),
	        T(test_tier2_unload_keeps_open_instance),
	        T(test_tier2_chunk_name_valid_rules),
	        T(test_tier2_ops_reject_bad_names),
	        T(test_tier2_ops_pass_good_names),
	        T(test_tier2_ops_reject_bad_args),
	        T(test_tier2_concat_null_is_enotsup),
	        T(test_tier2_errmsg_prefixed_and_terminated),
	        T(test_tier2_invalid_code_is_einternal),
	        T(test_tier2_read_overreport_is_einternal),
	        T(test_tier2_load_open_oom),
	        T(test_tier2_config_helper_parses_lines),
	};
#undef T
	return cmocka_run_group_tests_name("plugin", tests, NULL, NULL);
}
