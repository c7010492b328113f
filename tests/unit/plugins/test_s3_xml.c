/* Unit tests for the s3 plugin's parsing of S3 XML answers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "plugins/tier2/s3/s3_xml.h"

static struct strata_host host = {
        .abi_version = STRATA_TIER2_ABI_VERSION,
        .malloc = strata_malloc,
        .realloc = strata_realloc,
        .free = strata_free,
};

struct seen {
	char keys[512];
	uint64_t total;
	int64_t mtime;
	int calls;
};

static int page(void *arg, const struct s3_object *o, size_t n)
{
	struct seen *s = arg;
	s->calls++;
	for (size_t i = 0; i < n; i++) {
		size_t k = strlen(s->keys);
		snprintf(s->keys + k, sizeof(s->keys) - k, "%s;", o[i].key);
		s->total += o[i].size;
		s->mtime = o[i].mtime_ns;
	}
	return 0;
}

static int stop(void *arg, const struct s3_object *o, size_t n)
{
	(void)arg;
	(void)o;
	(void)n;
	return 42;
}

static const char listing[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Name>b</Name><Prefix>p/</Prefix><IsTruncated>true</IsTruncated>"
        "<Contents><Key>p/a&amp;b/00000000000000000000</Key>"
        "<LastModified>2026-11-26T12:58:25.250Z</LastModified>"
        "<ETag>&quot;x&quot;</ETag><Size>5</Size></Contents>"
        "<Contents><Key>p/c/00000000000000000000</Key>"
        "<LastModified>2026-11-26T12:58:26.000Z</LastModified>"
        "<Size>7</Size></Contents>"
        "<CommonPrefixes><Prefix>p/d/</Prefix></CommonPrefixes>"
        "</ListBucketResult>";

/* A listing yields its objects in order, entities decoded, sizes, times
 * and the truncation flag. */
static void test_s3_xml_list_objects_and_truncated(void **state)
{
	(void)state;
	struct seen s = {0};
	bool truncated = false;
	int cb_rc = 0;
	assert_int_equal(s3_xml_list(&host, listing, strlen(listing), page, &s,
	                             &truncated, &cb_rc),
	                 0);
	assert_int_equal(cb_rc, 0);
	assert_true(truncated);
	assert_int_equal(s.calls, 1);
	assert_string_equal(s.keys, "p/a&b/00000000000000000000;"
	                            "p/c/00000000000000000000;");
	assert_int_equal(s.total, 12);
	assert_int_equal(s.mtime, s3_xml_time("2026-11-26T12:58:26Z"));
	assert_int_equal(s3_xml_list(&host, listing, strlen(listing), stop, &s,
	                             &truncated, &cb_rc),
	                 0);
	assert_int_equal(cb_rc, 42);
}

/* Garbage, a truncated document, another root or a bad size is
 * STRATA_EPROTO, never a partial listing. */
static void test_s3_xml_list_rejects_malformed(void **state)
{
	(void)state;
	struct seen s = {0};
	bool truncated;
	int cb_rc;
	const char *bad[] = {
	        "not xml at all",
	        "<ListBucketResult><Contents><Key>k</Key>",
	        "<Error><Code>x</Code></Error>",
	        "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size>"
	        "</Contents></ListBucketResult>",
	        "<ListBucketResult><Contents><Size>1</Size></Contents>"
	        "</ListBucketResult>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(s3_xml_list(&host, bad[i], strlen(bad[i]),
		                             page, &s, &truncated, &cb_rc),
		                 STRATA_EPROTO);
	}
	assert_int_equal(s.calls, 0);
	assert_int_equal(
	        s3_xml_list(&host, "", 0, page, &s, &truncated, &cb_rc),
	        STRATA_EPROTO);
}

/* An <Error> document gives its code and message; other documents are not
 * errors. */
static void test_s3_xml_error_code_and_message(void **state)
{
	(void)state;
	const char *e = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code>"
	                "<Message>The key &lt;x&gt; does not exist</Message>"
	                "<Key>x</Key></Error>";
	char code[32];
	char msg[64];
	assert_true(s3_xml_error(e, strlen(e), code, sizeof(code), msg,
	                         sizeof(msg)));
	assert_string_equal(code, "NoSuchKey");
	assert_string_equal(msg, "The key <x> does not exist");
	assert_false(s3_xml_error(listing, strlen(listing), code, sizeof(code),
	                          msg, sizeof(msg)));
	assert_false(
	        s3_xml_error("<<<", 3, code, sizeof(code), msg, sizeof(msg)));
}

/* s3_xml_text finds an element at any depth and truncates to the buffer. */
static void test_s3_xml_text_finds_and_truncates(void **state)
{
	(void)state;
	const char *d = "<InitiateMultipartUploadResult><Bucket>b</Bucket>"
	                "<Key>k</Key><UploadId>abcdef</UploadId>"
	                "</InitiateMultipartUploadResult>";
	char out[4];
	assert_int_equal(
	        s3_xml_text(d, strlen(d), "UploadId", out, sizeof(out)), 0);
	assert_string_equal(out, "abc");
	assert_int_equal(s3_xml_text(d, strlen(d), "ETag", out, sizeof(out)),
	                 STRATA_ENOENT);
	assert_int_equal(s3_xml_text("x", 1, "ETag", out, sizeof(out)),
	                 STRATA_EPROTO);
}

/* ISO 8601 times parse to ns with fractions; garbage gives 0. */
static void test_s3_xml_time_parses_iso8601(void **state)
{
	(void)state;
	assert_int_equal(s3_xml_time("1970-01-01T00:00:01.5Z"), 1500000000);
	assert_int_equal(s3_xml_time("2000-01-01T00:00:00Z"),
	                 946684800LL * 1000000000);
	assert_int_equal(s3_xml_time("yesterday"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_s3_xml_list_objects_and_truncated),
	        cmocka_unit_test(test_s3_xml_list_rejects_malformed),
	        cmocka_unit_test(test_s3_xml_error_code_and_message),
	        cmocka_unit_test(test_s3_xml_text_finds_and_truncates),
	        cmocka_unit_test(test_s3_xml_time_parses_iso8601),
	};
	return cmocka_run_group_tests_name("s3_xml", tests, NULL, NULL);
}
