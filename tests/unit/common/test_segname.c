/* Unit tests for common/segname.c: qualified names and the container hash. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/segname.h"
#include "strata/error.h"

/* FNV-1a 64 matches the published test vectors. */
static void test_segname_fnv1a_vectors(void **state)
{
	(void)state;
	assert_true(segname_fnv1a("", 0) == 0xcbf29ce484222325ull);
	assert_true(segname_fnv1a("a", 1) == 0xaf63dc4c8601ec8cull);
	assert_true(segname_fnv1a("foobar", 6) == 0x85944171f73967e8ull);
}

/* Formatting writes number then epoch, and a transaction suffix. */
static void test_segname_format_plain_and_txn(void **state)
{
	(void)state;
	char buf[128];
	char txn[160];
	int n = segname_format(buf, sizeof(buf), "sc", "st", SEGNAME_ID(3, 7));
	assert_int_equal(n, 16);
	assert_string_equal(buf, "sc/st/7.#epoch.3");
	segname_format_txn(txn, sizeof(txn), buf, 42);
	assert_string_equal(txn, "sc/st/7.#epoch.3#transaction.42");
	/* Truncation reports the length needed, like snprintf. */
	assert_int_equal(segname_format(buf, 4, "sc", "st", 0), 16);
	assert_string_equal(buf, "sc/");
}

/* Parse is the inverse of format, for plain and transaction names. */
static void test_segname_parse_roundtrip(void **state)
{
	(void)state;
	struct segname_parts p;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(segname_parse("_sys/my-st.1/4294967295.#epoch."
	                               "4294967295",
	                               &p, err),
	                 0);
	assert_string_equal(p.scope, "_sys");
	assert_string_equal(p.stream, "my-st.1");
	assert_true(p.segment_id == UINT64_MAX);
	assert_false(p.is_txn);
	assert_int_equal(segname_parse("a/b/0.#epoch.2#transaction."
	                               "18446744073709551615",
	                               &p, err),
	                 0);
	assert_true(p.segment_id == SEGNAME_ID(2, 0));
	assert_true(p.is_txn);
	assert_true(p.txn_id == UINT64_MAX);
}

/* Malformed names fail STRATA_EBADNAME with a message naming the part. */
static void test_segname_parse_rejects(void **state)
{
	(void)state;
	static const char *const badnames[] = {
	        "",
	        "foo",
	        "a/b",
	        "a/b/",
	        "a/b/1",
	        "a/b/1.#epoch.",
	        "a/b/01.#epoch.0",
	        "a/b/1.#epoch.4294967296",
	        "a/b/1.#epoch.0x",
	        "a/b/1.#epoch.0#transaction.",
	        "a/b/1.#epoch.0#transaction.1x",
	        "/b/1.#epoch.0",
	        "a//1.#epoch.0",
	        "a/./1.#epoch.0",
	        "a b/c/1.#epoch.0",
	        "a/_b_/1.#epoch.0",
	        "a/b/c/1.#epoch.0",
	};
	struct segname_parts p;
	char err[STRATA_ERRMSG_SIZE];
	for (size_t i = 0; i < sizeof(badnames) / sizeof(*badnames); i++) {
		err[0] = '\0';
		assert_int_equal(segname_parse(badnames[i], &p, err),
		                 STRATA_EBADNAME);
		assert_true(strlen(err) > 0);
	}
	assert_int_equal(segname_parse(NULL, &p, NULL), STRATA_EBADNAME);
	assert_int_equal(segname_parse("a b/c/1.#epoch.0", &p, err),
	                 STRATA_EBADNAME);
	assert_non_null(strstr(err, "scope"));
	assert_non_null(strstr(err, "0x20"));
	char longname[SEGNAME_MAX + 2];
	memset(longname, 'a', sizeof(longname));
	longname[SEGNAME_MAX + 1] = '\0';
	assert_int_equal(segname_parse(longname, &p, err), STRATA_EBADNAME);
	assert_non_null(strstr(err, "too long"));
}

/* The container is FNV-1a of the parent name modulo the count; a
 * transaction segment lands in its parent's container. */
static void test_segname_container_parent_hash(void **state)
{
	(void)state;
	uint64_t h = segname_fnv1a("sc/st/7.#epoch.3", 16);
	assert_int_equal(segname_container("sc/st/7.#epoch.3", 13),
	                 (uint32_t)(h % 13));
	assert_int_equal(segname_container_of(13, "sc", "st", SEGNAME_ID(3, 7)),
	                 (uint32_t)(h % 13));
	assert_int_equal(
	        segname_container("sc/st/7.#epoch.3#transaction.9", 13),
	        (uint32_t)(h % 13));
	assert_int_equal(segname_parent_len("sc/st/7.#epoch.3#transaction.9"),
	                 16);
	assert_int_equal(segname_container("x", 0), 0);
	for (uint32_t i = 0; i < 100; i++) {
		assert_true(segname_container_of(7, "s", "t", i) < 7);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_segname_fnv1a_vectors),
	        cmocka_unit_test(test_segname_format_plain_and_txn),
	        cmocka_unit_test(test_segname_parse_roundtrip),
	        cmocka_unit_test(test_segname_parse_rejects),
	        cmocka_unit_test(test_segname_container_parent_hash),
	};
	return cmocka_run_group_tests_name("segname", tests, NULL, NULL);
}
