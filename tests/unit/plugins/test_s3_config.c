/* Unit tests for the s3 plugin's settings (config lines, AWS variables). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/plugin.h"
#include "plugins/tier2/s3/s3_config.h"
#include "tests/lib/oom.h"

static struct strata_host host = {
        .abi_version = STRATA_TIER2_ABI_VERSION,
        .malloc = strata_malloc,
        .realloc = strata_realloc,
        .free = strata_free,
};
static struct s3_config cfg;
static char err[STRATA_ERRMSG_SIZE];

static int setup(void **state)
{
	(void)state;
	const char *vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	                      "AWS_SESSION_TOKEN", "AWS_REGION",
	                      "AWS_DEFAULT_REGION"};
	for (size_t i = 0; i < 5; i++) {
		unsetenv(vars[i]);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	s3_config_free(&host, &cfg);
	return 0;
}

/* Without an endpoint: AWS, https, virtual-host addressing, SigV4, the
 * region from AWS_REGION and credentials from the AWS variables. */
static void test_s3_config_parse_aws_defaults(void **state)
{
	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "AK", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
	setenv("AWS_SESSION_TOKEN", "TOK", 1);
	setenv("AWS_REGION", "eu-west-1", 1);
	assert_int_equal(
	        s3_config_parse(&host, "bucket=b1\nprefix=strata", &cfg, err),
	        0);
	assert_string_equal(cfg.host, "s3.eu-west-1.amazonaws.com");
	assert_true(cfg.https);
	assert_false(cfg.path_style);
	assert_int_equal(cfg.signature, S3_SIG_V4);
	assert_string_equal(cfg.prefix, "strata/");
	assert_string_equal(cfg.region, "eu-west-1");
	assert_string_equal(cfg.access_key, "AK");
	assert_string_equal(cfg.secret_key, "SK");
	assert_string_equal(cfg.session_token, "TOK");
	assert_int_equal(cfg.retries, 4);
	assert_int_equal(cfg.multipart_min_part, 5 << 20);
	assert_true(cfg.checksum);
}

/* An endpoint URL sets scheme and host and defaults to path addressing;
 * keys from the config win over the environment. */
static void test_s3_config_parse_endpoint_and_overrides(void **state)
{
	(void)state;
	setenv("AWS_ACCESS_KEY_ID", "ENV", 1);
	assert_int_equal(
	        s3_config_parse(&host,
	                        "endpoint=http://127.0.0.1:9000/\nbucket=b\n"
	                        "access_key_id=CFG\nsecret_access_key=S\n"
	                        "signature=v2\nretries=0\nlist_page=7\n"
	                        "multipart_min_part=1k\nchecksum=none\n",
	                        &cfg, err),
	        0);
	assert_string_equal(cfg.host, "127.0.0.1:9000");
	assert_false(cfg.https);
	assert_true(cfg.path_style);
	assert_int_equal(cfg.signature, S3_SIG_V2);
	assert_string_equal(cfg.access_key, "CFG");
	assert_string_equal(cfg.prefix, "");
	assert_int_equal(cfg.retries, 0);
	assert_int_equal(cfg.list_page, 7);
	assert_int_equal(cfg.multipart_min_part, 1024);
	assert_false(cfg.checksum);
}

/* "@path" values are read from the file's first line, trimmed. */
static void test_s3_config_parse_values_from_files(void **state)
{
	(void)state;
	char dir[] = "/tmp/strata-s3cfg-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char ep[64];
	char sk[64];
	snprintf(ep, sizeof(ep), "%s/endpoint", dir);
	snprintf(sk, sizeof(sk), "%s/secret", dir);
	FILE *f = fopen(ep, "w");
	fputs("  https://minio.local:9000\n", f);
	fclose(f);
	f = fopen(sk, "w");
	fputs("s3cr3t\nignored\n", f);
	fclose(f);
	char conf[256];
	snprintf(conf, sizeof(conf),
	         "endpoint=@%s\nbucket=b\naccess_key_id=a\n"
	         "secret_access_key=@%s\n",
	         ep, sk);
	int rc = s3_config_parse(&host, conf, &cfg, err);
	unlink(ep);
	unlink(sk);
	rmdir(dir);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg.host, "minio.local:9000");
	assert_true(cfg.https);
	assert_string_equal(cfg.secret_key, "s3cr3t");
	s3_config_free(&host, &cfg);
	snprintf(conf, sizeof(conf), "bucket=b\naccess_key_id=@%s\n", ep);
	assert_int_equal(s3_config_parse(&host, conf, &cfg, err),
	                 STRATA_ECONFIG);
	assert_non_null(strstr(err, "cannot read"));
}

/* Bad settings fail with STRATA_ECONFIG naming the key and what is
 * allowed. */
static void test_s3_config_parse_rejects_bad_settings(void **state)
{
	(void)state;
	static const struct {
		const char *conf;
		const char *want;
	} cases[] = {
	        /* The list is cut at a name, short of the message's end. */
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\nbogus=1",
	         "unknown key 'bogus' (allowed: endpoint, bucket, prefix, "
	         "region, addressing, scheme, signature, access_key_id, "
	         "secret_access_key, session_token, tls_verify, ca_file, ... "
	         "in the plugin's docs)"},
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\nretrys=3",
	         "config: unknown key 'retrys' (did you mean 'retries'?)"},
	        /* Never the value: under a mistyped name it may be a secret
	         * (QA: secret_key=... printed in full in a container log). */
	        {"bucket=b\naccess_key_id=a\nsecret_key=TopSecret123",
	         "config: unknown key 'secret_key' (did you mean "
	         "'secret_access_key'?)"},
	        {"bucket=b\naccess_key=a\nsecret_access_key=s",
	         "config: unknown key 'access_key' (did you mean "
	         "'access_key_id'?)"},
	        {"access_key_id=a\nsecret_access_key=s", "bucket is required"},
	        {"bucket=b", "no S3 credentials"},
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\n"
	         "signature=v3",
	         "must be v4"},
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\n"
	         "signature=v2\nsession_token=t",
	         "needs signature=v4"},
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\n"
	         "endpoint=ftp://x",
	         "only http:// and https://"},
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\n"
	         "endpoint=http://x/path",
	         "no path"},
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\n"
	         "endpoint=http://x\nscheme=https",
	         "agree with the endpoint"},
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\n"
	         "prefix=/abs",
	         "key prefix"},
	        /* A URL resolves dot components: x/../qa writes under qa/. */
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\n"
	         "prefix=x/../qa",
	         "without '.' or '..' components"},
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\n"
	         "prefix=../x",
	         "without '.' or '..' components"},
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\n"
	         "prefix=a/./b",
	         "without '.' or '..' components"},
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\n"
	         "prefix=a/..",
	         "without '.' or '..' components"},
	        {"bucket=B_b\naccess_key_id=a\nsecret_access_key=s\n"
	         "addressing=virtual",
	         "DNS-compatible"},
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\n"
	         "retries=101",
	         "retries must be"},
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\n"
	         "tls_verify=yes",
	         "true or false"},
	        {"bucket=b\naccess_key_id=a\nsecret_access_key=s\n"
	         "checksum=crc32",
	         "config checksum=crc32: must be block"},
	        {"bucket=b\nnovalue", "want key=value"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		int rc = s3_config_parse(&host, cases[i].conf, &cfg, err);
		if (rc != STRATA_ECONFIG ||
		    strstr(err, cases[i].want) == NULL ||
		    strstr(err, "TopSecret") != NULL) {
			fail_msg("case %zu: rc %d, errmsg '%s', want '%s'", i,
			         rc, err, cases[i].want);
		}
	}
	/* Dots inside a component are plain characters. */
	assert_int_equal(s3_config_parse(&host,
	                                 "bucket=b\naccess_key_id=a\n"
	                                 "secret_access_key=s\n"
	                                 "prefix=v1.2/..c/.d",
	                                 &cfg, err),
	                 0);
	assert_string_equal(cfg.prefix, "v1.2/..c/.d/");
	s3_config_free(&host, &cfg);
}

/* Out of memory at every allocation is STRATA_ENOMEM and leaks nothing. */
static void test_s3_config_parse_oom(void **state)
{
	(void)state;
	const char *conf = "endpoint=http://h:1\nbucket=b\nprefix=x\n"
	                   "access_key_id=a\nsecret_access_key=s\n";
	for (long n = 1;; n++) {
		oom_install(n);
		int rc = s3_config_parse(&host, conf, &cfg, err);
		oom_uninstall();
		if (rc == 0) {
			break;
		}
		assert_int_equal(rc, STRATA_ENOMEM);
	}
}

/* The plugin's check (tier2_check): s3_config_parse's verdicts, no
 * connection (nothing listens at the endpoint). */
static void test_s3_plugin_check(void **state)
{
	(void)state;
	struct tier2_plugin *p = NULL;
	assert_int_equal(tier2_load("s3", NULL, &p, err), 0);
	assert_int_equal(tier2_check(p,
	                             "bucket=b1\nendpoint=http://127.0.0.1:1\n"
	                             "access_key_id=a\nsecret_access_key=s",
	                             err),
	                 0);
	assert_int_equal(tier2_check(p, "bucket=b1\nbukket=b2", err),
	                 STRATA_ECONFIG);
	assert_non_null(strstr(err, "bukket"));
	tier2_unload(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	        T(test_s3_config_parse_aws_defaults),
	        cmocka_unit_test(test_s3_plugin_check),
	        T(test_s3_config_parse_endpoint_and_overrides),
	        T(test_s3_config_parse_values_from_files),
	        T(test_s3_config_parse_rejects_bad_settings),
	        T(test_s3_config_parse_oom),
#undef T
	};
	return cmocka_run_group_tests_name("s3_config", tests, NULL, NULL);
}
