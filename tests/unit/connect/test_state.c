/* Unit tests for connect/state.c: the strata-connect checkpoint file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/crc32c.h"
#include "connect/state.h"
#include "strata/error.h"

static char dir[64];
static char path[128];

static int setup(void **unused)
{
	(void)unused;
	snprintf(dir, sizeof(dir), "/tmp/test_connect_state.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/pipe.ckpt", dir);
	return 0;
}

static int teardown(void **unused)
{
	(void)unused;
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	unlink(path);
	rmdir(dir);
	return 0;
}

/* Parse text (NUL-terminated) and return the code. */
static int parse(const char *text, struct connect_state *st, char *err)
{
	return connect_state_parse("x.ckpt", text, strlen(text), st, err);
}

static void test_state_import_round_trip(void **unused)
{
	(void)unused;
	struct connect_state st, back;
	connect_state_init(&st, CONNECT_IMPORT, "demo/logs");
	st.seq = 7;
	st.have_committed = true;
	snprintf(st.committed, sizeof(st.committed), "1234");
	st.txn = 99;
	snprintf(st.prepared, sizeof(st.prepared), "5678");
	char *text = connect_state_format(&st);
	assert_non_null(text);
	assert_non_null(strstr(text, "\nmode=import\n"));
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(parse(text, &back, err), 0);
	assert_int_equal(back.mode, CONNECT_IMPORT);
	assert_string_equal(back.stream, "demo/logs");
	assert_int_equal(back.seq, 7);
	assert_true(back.have_committed);
	assert_string_equal(back.committed, "1234");
	assert_int_equal(back.txn, 99);
	assert_string_equal(back.prepared, "5678");
	connect_state_clear(&back);
	strata_free(text);
}

static void test_state_export_round_trip(void **unused)
{
	(void)unused;
	struct connect_state st, back;
	connect_state_init(&st, CONNECT_EXPORT, "demo/logs");
	snprintf(st.group, sizeof(st.group), "connect-logs");
	snprintf(st.checkpoint, sizeof(st.checkpoint), "connect-3");
	snprintf(st.sink, sizeof(st.sink), "4096");
	char *cuts[] = {"demo/logs:0.0=4096,1.0=12"};
	assert_int_equal(connect_state_set_cuts(&st, cuts, 1), 0);
	char *text = connect_state_format(&st);
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(parse(text, &back, err), 0);
	assert_int_equal(back.mode, CONNECT_EXPORT);
	assert_string_equal(back.group, "connect-logs");
	assert_string_equal(back.checkpoint, "connect-3");
	assert_string_equal(back.sink, "4096");
	assert_int_equal(back.n_cuts, 1);
	assert_string_equal(back.cuts[0], cuts[0]);
	connect_state_clear(&back);
	connect_state_clear(&st);
	strata_free(text);
}

/* A sink token before the first checkpoint (no cuts yet) is kept. */
static void test_state_export_start_token(void **unused)
{
	(void)unused;
	struct connect_state st, back;
	connect_state_init(&st, CONNECT_EXPORT, "demo/logs");
	snprintf(st.group, sizeof(st.group), "g");
	snprintf(st.sink, sizeof(st.sink), "0");
	char *text = connect_state_format(&st);
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(parse(text, &back, err), 0);
	assert_string_equal(back.sink, "0");
	assert_string_equal(back.checkpoint, "");
	connect_state_clear(&back);
	strata_free(text);
}

/* Any flipped byte is caught by the CRC, truncation by the last line. */
static void test_state_parse_rejects_damage(void **unused)
{
	(void)unused;
	struct connect_state st, back;
	connect_state_init(&st, CONNECT_IMPORT, "demo/logs");
	st.have_committed = true;
	snprintf(st.committed, sizeof(st.committed), "42");
	char *text = connect_state_format(&st);
	size_t len = strlen(text);
	char err[STRATA_ERRMSG_SIZE];
	for (size_t i = 0; i < len; i++) {
		text[i] ^= 0x01;
		assert_int_equal(
		        connect_state_parse("x.ckpt", text, len, &back, err),
		        STRATA_ECORRUPT);
		text[i] ^= 0x01;
	}
	for (size_t cut = 0; cut < len; cut++) {
		assert_int_equal(
		        connect_state_parse("x.ckpt", text, cut, &back, err),
		        STRATA_ECORRUPT);
	}
	assert_non_null(strstr(err, "x.ckpt"));
	assert_non_null(strstr(err, "corrupt"));
	strata_free(text);
}

/* Well-formed (CRC right) but wrong content: each names the line. */
static void test_state_parse_rejects_bad_content(void **unused)
{
	(void)unused;
	static const char *const bodies[] = {
	        "version=2\nmode=import\nstream=a/b\nseq=1\n",
	        "version=1\nmode=sideways\nstream=a/b\nseq=1\n",
	        "version=1\nmode=import\nstream=a/b\n",
	        "version=1\nmode=import\nstream=a/b\nseq=1\nseq=2\n",
	        "version=1\nmode=import\nstream=a/b\nseq=1\ntxn=5\n",
	        "version=1\nmode=import\nstream=a/b\nseq=x\n",
	        "version=1\nmode=import\nstream=a/b\nseq=1\ngroup=g\n",
	        "version=1\nmode=export\nstream=a/b\nseq=1\n",
	        "version=1\nmode=export\nstream=a/b\nseq=1\ngroup=g\n"
	        "checkpoint=c\nsink=1\n",
	        "version=1\nmode=import\nstream=a/b\nseq=1\nbogus=1\n",
	        "version=1\nmode=import\nstream=a/b\nseq=1\nno equals\n",
	        "version=1\nmode=import\nstream=a/b\nseq=1\ntxn=0\n"
	        "prepared=1\n",
	        "version=1\nmode=import\nstream=a/b\nseq="
	        "99999999999999999999999\n",
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		char text[512];
		size_t n =
		        (size_t)snprintf(text, sizeof(text), "%s", bodies[i]);
		/* Sign it the way format does. */
		struct connect_state st;
		char err[STRATA_ERRMSG_SIZE] = "";
		snprintf(text + n, sizeof(text) - n, "crc32c=%08x\n",
		         crc32c_extend(0, text, n));
		assert_int_equal(parse(text, &st, err), STRATA_ECORRUPT);
		assert_non_null(strstr(err, "line"));
	}
}

static void test_state_token_rules(void **unused)
{
	(void)unused;
	assert_true(connect_token_ok("123"));
	assert_true(connect_token_ok("offset 5 / inode 7"));
	assert_false(connect_token_ok(""));
	assert_false(connect_token_ok("a\nb"));
	assert_false(connect_token_ok("tab\there"));
	char big[STRATA_CONNECTOR_TOKEN_MAX + 1];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_false(connect_token_ok(big));
	big[STRATA_CONNECTOR_TOKEN_MAX - 1] = '\0';
	assert_true(connect_token_ok(big));
}

static void test_state_save_load(void **unused)
{
	(void)unused;
	struct connect_state st, back;
	char err[STRATA_ERRMSG_SIZE] = "";
	bool exists = true;
	assert_int_equal(connect_state_load(path, &back, &exists, err), 0);
	assert_false(exists);
	connect_state_init(&st, CONNECT_IMPORT, "demo/logs");
	st.have_committed = true;
	snprintf(st.committed, sizeof(st.committed), "10");
	assert_int_equal(connect_state_save(path, &st, err), 0);
	snprintf(st.committed, sizeof(st.committed), "20");
	assert_int_equal(connect_state_save(path, &st, err), 0);
	assert_int_equal(connect_state_load(path, &back, &exists, err), 0);
	assert_true(exists);
	assert_string_equal(back.committed, "20");
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	struct stat sb;
	assert_int_not_equal(stat(tmp, &sb), 0); /* renamed away */
	/* A damaged file is reported, not taken for an empty one. */
	FILE *f = fopen(path, "r+");
	assert_non_null(f);
	fseek(f, 20, SEEK_SET);
	fputc('#', f);
	fclose(f);
	assert_int_equal(connect_state_load(path, &back, &exists, err),
	                 STRATA_ECORRUPT);
	assert_false(exists);
	assert_non_null(strstr(err, path));
}

static void test_state_save_unwritable_dir(void **unused)
{
	(void)unused;
	struct connect_state st;
	connect_state_init(&st, CONNECT_IMPORT, "demo/logs");
	char err[STRATA_ERRMSG_SIZE] = "";
	assert_int_equal(
	        connect_state_save("/nonexistent-dir/x.ckpt", &st, err),
	        STRATA_EIO);
	assert_non_null(strstr(err, "/nonexistent-dir/x.ckpt"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_state_import_round_trip),
	        cmocka_unit_test(test_state_export_round_trip),
	        cmocka_unit_test(test_state_export_start_token),
	        cmocka_unit_test(test_state_parse_rejects_damage),
	        cmocka_unit_test(test_state_parse_rejects_bad_content),
	        cmocka_unit_test(test_state_token_rules),
	        cmocka_unit_test(test_state_save_load),
	        cmocka_unit_test(test_state_save_unwritable_dir),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
