/* Unit tests for cli/args.c: stratactl option parsing, names, separators,
 * segment ids, bounds, bounded stdin records, JSON strings, exit codes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "cli/args.h"
#include "strata/error.h"
#include "tests/lib/oom.h"

static const struct cli_opt opts[] = {
        {"segments", true, "N", "segment count"},
        {"key-separator", true, "SEP", "separator"},
        {"create", false, NULL, "create first"},
        {"tag", true, "TAG", "a tag"},
};
#define N_OPTS (sizeof(opts) / sizeof(*opts))

/* Error codes map to the four documented exit codes. */
static void test_cli_exit_code_classes(void **state)
{
	(void)state;
	assert_int_equal(cli_exit_code(STRATA_OK), CLI_EXIT_OK);
	assert_int_equal(cli_exit_code(STRATA_ENOENT), CLI_EXIT_FAILED);
	assert_int_equal(cli_exit_code(STRATA_EEXIST), CLI_EXIT_FAILED);
	assert_int_equal(cli_exit_code(STRATA_ENOTSEALED), CLI_EXIT_FAILED);
	assert_int_equal(cli_exit_code(STRATA_EINVAL), CLI_EXIT_USAGE);
	assert_int_equal(cli_exit_code(STRATA_ETOOBIG), CLI_EXIT_USAGE);
	assert_int_equal(cli_exit_code(STRATA_EBADNAME), CLI_EXIT_USAGE);
	assert_int_equal(cli_exit_code(STRATA_EUNAVAIL), CLI_EXIT_UNREACHABLE);
	assert_int_equal(cli_exit_code(STRATA_ETIMEDOUT), CLI_EXIT_UNREACHABLE);
	/* A write the stores kept refusing (back-pressure) until --timeout
	 * is a timeout a script retries, not a refusal. */
	assert_int_equal(cli_exit_code(STRATA_EAGAIN), CLI_EXIT_UNREACHABLE);
	assert_int_equal(cli_exit_code(9999), CLI_EXIT_FAILED);
}

/* Options and positionals mix; both value forms work; repeats are kept;
 * '_' matches '-'. */
static void test_cli_args_parse_mixed(void **state)
{
	(void)state;
	char *argv[] = {"demo/first", "--segments", "3",    "--create",
	                "--tag=a",    "--tag",      "b",    "--key_separator",
	                "\\t",        "--",         "--odd"};
	struct cli_args a;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cli_args_parse(opts, N_OPTS, 11, argv, &a, err), 0);
	assert_int_equal(a.n_pos, 2);
	assert_string_equal(a.pos[0], "demo/first");
	assert_string_equal(a.pos[1], "--odd");
	assert_string_equal(cli_args_get(&a, "segments"), "3");
	assert_string_equal(cli_args_get(&a, "create"), "");
	assert_string_equal(cli_args_get(&a, "key-separator"), "\\t");
	assert_true(cli_args_has(&a, "create"));
	assert_false(a.help);
	const char *tags[4];
	assert_int_equal(cli_args_all(&a, "tag", tags, 4), 2);
	assert_string_equal(tags[0], "a");
	assert_string_equal(tags[1], "b");
	assert_string_equal(cli_args_get(&a, "tag"), "b");
	assert_null(cli_args_get(&a, "nope"));
}

/* An unknown option close to a known one suggests it. */
static void test_cli_args_parse_unknown_suggests(void **state)
{
	(void)state;
	char *argv[] = {"--segmnts", "3"};
	struct cli_args a;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cli_args_parse(opts, N_OPTS, 2, argv, &a, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "'--segmnts'"));
	assert_non_null(strstr(err, "did you mean '--segments'"));
	char *far[] = {"--zzzzzzzzzz"};
	assert_int_equal(cli_args_parse(opts, N_OPTS, 1, far, &a, err),
	                 STRATA_EINVAL);
	assert_null(strstr(err, "did you mean"));
	char *single[] = {"-x"};
	assert_int_equal(cli_args_parse(opts, N_OPTS, 1, single, &a, err),
	                 STRATA_EINVAL);
}

/* A missing value, or a value given to a flag, is an error. */
static void test_cli_args_parse_value_errors(void **state)
{
	(void)state;
	struct cli_args a;
	char err[STRATA_ERRMSG_SIZE];
	char *missing[] = {"--segments"};
	assert_int_equal(cli_args_parse(opts, N_OPTS, 1, missing, &a, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "needs a value (N)"));
	char *flagval[] = {"--create=maybe"};
	assert_int_equal(cli_args_parse(opts, N_OPTS, 1, flagval, &a, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "takes no value, or true or false"));
	assert_non_null(strstr(err, "'maybe'"));
}

/* A flag takes a boolean after '=': the last occurrence wins, and =false
 * is told apart from not given. */
static void test_cli_args_parse_flag_bool(void **state)
{
	(void)state;
	struct cli_args a;
	char err[STRATA_ERRMSG_SIZE];
	char *on[] = {"--create=yes"};
	assert_int_equal(cli_args_parse(opts, N_OPTS, 1, on, &a, err), 0);
	assert_true(cli_args_has(&a, "create"));
	assert_true(cli_args_given(&a, "create"));
	char *off[] = {"--create", "--create=false"};
	assert_int_equal(cli_args_parse(opts, N_OPTS, 2, off, &a, err), 0);
	assert_false(cli_args_has(&a, "create"));
	assert_true(cli_args_given(&a, "create"));
	char *again[] = {"--create=0", "--create"};
	assert_int_equal(cli_args_parse(opts, N_OPTS, 2, again, &a, err), 0);
	assert_true(cli_args_has(&a, "create"));
	char *none[] = {"x"};
	assert_int_equal(cli_args_parse(opts, N_OPTS, 1, none, &a, err), 0);
	assert_false(cli_args_given(&a, "create"));
}

/* --help and -h set help; "-" alone is a positional. */
static void test_cli_args_parse_help_and_dash(void **state)
{
	(void)state;
	char *argv[] = {"-", "-h"};
	struct cli_args a;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cli_args_parse(opts, N_OPTS, 2, argv, &a, err), 0);
	assert_true(a.help);
	assert_int_equal(a.n_pos, 1);
	assert_string_equal(a.pos[0], "-");
}

/* More positionals than CLI_MAX_POS are refused. */
static void test_cli_args_parse_too_many(void **state)
{
	(void)state;
	char *argv[CLI_MAX_POS + 1];
	for (size_t i = 0; i <= CLI_MAX_POS; i++) {
		argv[i] = "x";
	}
	struct cli_args a;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(
	        cli_args_parse(opts, N_OPTS, CLI_MAX_POS + 1, argv, &a, err),
	        STRATA_EINVAL);
}

/* SCOPE/STREAM splits; malformed forms are refused with a message. */
static void test_cli_split_stream_forms(void **state)
{
	(void)state;
	char scope[STRATA_NAME_MAX + 1], stream[STRATA_NAME_MAX + 1];
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cli_split_stream("demo/first", scope, stream, err), 0);
	assert_string_equal(scope, "demo");
	assert_string_equal(stream, "first");
	assert_int_equal(cli_split_stream("demo", scope, stream, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "SCOPE/STREAM"));
	assert_int_equal(cli_split_stream("a/b/c", scope, stream, err),
	                 STRATA_EINVAL);
	assert_int_equal(cli_split_stream("/b", scope, stream, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "scope name is empty"));
	assert_int_equal(cli_split_stream("a/", scope, stream, err),
	                 STRATA_EINVAL);
	char big[STRATA_NAME_MAX + 8];
	memset(big, 'x', sizeof(big));
	big[0] = 'a';
	big[1] = '/';
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(cli_split_stream(big, scope, stream, err),
	                 STRATA_EINVAL);
}

/* Separators decode C escapes; bad ones are refused. */
static void test_cli_unescape_forms(void **state)
{
	(void)state;
	char out[16];
	size_t len;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cli_unescape("\\t", out, sizeof(out), &len, err), 0);
	assert_int_equal(len, 1);
	assert_int_equal(out[0], '\t');
	assert_int_equal(cli_unescape("\t", out, sizeof(out), &len, err), 0);
	assert_int_equal(out[0], '\t');
	assert_int_equal(
	        cli_unescape("a\\x1f\\\\", out, sizeof(out), &len, err), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(out, "a\x1f\\", 3);
	assert_int_equal(cli_unescape("::", out, sizeof(out), &len, err), 0);
	assert_string_equal(out, "::");
	assert_int_equal(cli_unescape("", out, sizeof(out), &len, err),
	                 STRATA_EINVAL);
	assert_int_equal(cli_unescape("\\q", out, sizeof(out), &len, err),
	                 STRATA_EINVAL);
	assert_int_equal(cli_unescape("\\x4", out, sizeof(out), &len, err),
	                 STRATA_EINVAL);
	assert_int_equal(cli_unescape("\\n", out, sizeof(out), &len, err),
	                 STRATA_EINVAL);
	assert_int_equal(cli_unescape("\\x00", out, sizeof(out), &len, err),
	                 STRATA_EINVAL);
	assert_int_equal(
	        cli_unescape("0123456789abcdefg", out, sizeof(out), &len, err),
	        STRATA_EINVAL);
}

/* Segment ids parse as NUMBER.EPOCH or decimal and format back. */
static void test_cli_parse_segment_id_forms(void **state)
{
	(void)state;
	uint64_t id;
	char err[STRATA_ERRMSG_SIZE];
	char buf[32];
	assert_int_equal(cli_parse_segment_id("3.1", &id, err), 0);
	assert_int_equal(id, (1ull << 32) | 3);
	cli_format_segment_id(id, buf, sizeof(buf));
	assert_string_equal(buf, "3.1");
	assert_int_equal(cli_parse_segment_id("4294967299", &id, err), 0);
	assert_int_equal(id, (1ull << 32) | 3);
	assert_int_equal(cli_parse_segment_id("0.0", &id, err), 0);
	assert_int_equal(id, 0);
	assert_int_equal(cli_parse_segment_id("x", &id, err), STRATA_EINVAL);
	assert_non_null(strstr(err, "NUMBER.EPOCH"));
	assert_int_equal(cli_parse_segment_id("1.", &id, err), STRATA_EINVAL);
	assert_int_equal(cli_parse_segment_id("4294967296.0", &id, err),
	                 STRATA_EINVAL);
	assert_int_equal(cli_parse_segment_id("-1", &id, err), STRATA_EINVAL);
	assert_int_equal(cli_parse_segment_id("", &id, err), STRATA_EINVAL);
}

/* Bounds must be increasing numbers in [0,1], at least two. */
static void test_cli_parse_bounds_forms(void **state)
{
	(void)state;
	double b[4];
	size_t n;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cli_parse_bounds("0,0.5,1", b, 4, &n, err), 0);
	assert_int_equal(n, 3);
	assert_true(b[1] == 0.5);
	assert_int_equal(cli_parse_bounds("0.5,0.2", b, 4, &n, err),
	                 STRATA_EINVAL);
	assert_non_null(strstr(err, "increase"));
	assert_int_equal(cli_parse_bounds("0,1.5", b, 4, &n, err),
	                 STRATA_EINVAL);
	assert_int_equal(cli_parse_bounds("0", b, 4, &n, err), STRATA_EINVAL);
	assert_int_equal(cli_parse_bounds("0,x", b, 4, &n, err), STRATA_EINVAL);
	assert_int_equal(cli_parse_bounds("0,0.1,0.2,0.3,1", b, 4, &n, err),
	                 STRATA_EINVAL);
}

/* Lines come back without '\n'; a last line without one counts; empty
 * lines are records of length 0. */
static void test_cli_reader_next_lines(void **state)
{
	(void)state;
	char text[] = "a\tb\n\nlast";
	FILE *f = fmemopen(text, strlen(text), "r");
	assert_non_null(f);
	struct cli_reader r;
	cli_reader_init(&r, f, false, 16);
	const uint8_t *d;
	size_t len;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cli_reader_next(&r, &d, &len, err), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(d, "a\tb", 3);
	assert_int_equal(cli_reader_next(&r, &d, &len, err), 0);
	assert_non_null(d);
	assert_int_equal(len, 0);
	assert_int_equal(cli_reader_next(&r, &d, &len, err), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(d, "last", 4);
	assert_int_equal(r.record, 3);
	assert_int_equal(cli_reader_next(&r, &d, &len, err), 0);
	assert_null(d);
	cli_reader_close(&r);
	fclose(f);
}

/* A line longer than the limit is refused, naming its number. */
static void test_cli_reader_next_line_too_long(void **state)
{
	(void)state;
	char text[] = "ok\n0123456789\n";
	FILE *f = fmemopen(text, strlen(text), "r");
	struct cli_reader r;
	cli_reader_init(&r, f, false, 8);
	const uint8_t *d;
	size_t len;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cli_reader_next(&r, &d, &len, err), 0);
	assert_int_equal(cli_reader_next(&r, &d, &len, err), STRATA_ETOOBIG);
	assert_non_null(strstr(err, "line 2"));
	assert_non_null(strstr(err, "8 bytes"));
	cli_reader_close(&r);
	fclose(f);
}

/* Length-prefixed records: little-endian length, then the bytes; zero
 * length is a record. */
static void test_cli_reader_next_prefixed(void **state)
{
	(void)state;
	uint8_t in[] = {3, 0, 0, 0, 'a', 'b', 'c', 0,
	                0, 0, 0, 1, 0,   0,   0,   '\n'};
	FILE *f = fmemopen(in, sizeof(in), "r");
	struct cli_reader r;
	cli_reader_init(&r, f, true, 16);
	const uint8_t *d;
	size_t len;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cli_reader_next(&r, &d, &len, err), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(d, "abc", 3);
	assert_int_equal(cli_reader_next(&r, &d, &len, err), 0);
	assert_non_null(d);
	assert_int_equal(len, 0);
	assert_int_equal(cli_reader_next(&r, &d, &len, err), 0);
	assert_int_equal(len, 1);
	assert_int_equal(d[0], '\n');
	assert_int_equal(cli_reader_next(&r, &d, &len, err), 0);
	assert_null(d);
	cli_reader_close(&r);
	fclose(f);
}

/* Truncated headers and bodies, and oversized records, are errors. */
static void test_cli_reader_next_prefixed_bad(void **state)
{
	(void)state;
	const uint8_t *d;
	size_t len;
	char err[STRATA_ERRMSG_SIZE];
	struct cli_reader r;

	uint8_t head[] = {3, 0};
	FILE *f = fmemopen(head, sizeof(head), "r");
	cli_reader_init(&r, f, true, 16);
	assert_int_equal(cli_reader_next(&r, &d, &len, err), STRATA_EINVAL);
	assert_non_null(strstr(err, "record 1"));
	cli_reader_close(&r);
	fclose(f);

	uint8_t body[] = {3, 0, 0, 0, 'a'};
	f = fmemopen(body, sizeof(body), "r");
	cli_reader_init(&r, f, true, 16);
	assert_int_equal(cli_reader_next(&r, &d, &len, err), STRATA_EINVAL);
	cli_reader_close(&r);
	fclose(f);

	uint8_t big[] = {0xff, 0xff, 0xff, 0x7f, 'a'};
	f = fmemopen(big, sizeof(big), "r");
	cli_reader_init(&r, f, true, 16);
	assert_int_equal(cli_reader_next(&r, &d, &len, err), STRATA_ETOOBIG);
	assert_non_null(strstr(err, "over the limit"));
	cli_reader_close(&r);
	fclose(f);
}

/* Out of memory while growing the record buffer is reported. */
static void test_cli_reader_next_oom(void **state)
{
	(void)state;
	char text[] = "hello\n";
	FILE *f = fmemopen(text, strlen(text), "r");
	struct cli_reader r;
	cli_reader_init(&r, f, false, 64);
	const uint8_t *d;
	size_t len;
	char err[STRATA_ERRMSG_SIZE];
	oom_install(1);
	int rc = cli_reader_next(&r, &d, &len, err);
	oom_uninstall();
	assert_int_equal(rc, STRATA_ENOMEM);
	cli_reader_close(&r);
	fclose(f);
}

/* JSON strings escape quotes, controls and invalid UTF-8; valid UTF-8
 * passes through. */
static void test_cli_json_string_escapes(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	assert_non_null(f);
	const char in[] = "a\"b\\c\n\t\x01\xc3\xa9\xff";
	cli_json_string(f, in, sizeof(in) - 1);
	fclose(f);
	assert_string_equal(buf, "\"a\\\"b\\\\c\\n\\t\\u0001\xc3\xa9\\u00ff\"");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cli_exit_code_classes),
	        cmocka_unit_test(test_cli_args_parse_mixed),
	        cmocka_unit_test(test_cli_args_parse_unknown_suggests),
	        cmocka_unit_test(test_cli_args_parse_value_errors),
	        cmocka_unit_test(test_cli_args_parse_flag_bool),
	        cmocka_unit_test(test_cli_args_parse_help_and_dash),
	        cmocka_unit_test(test_cli_args_parse_too_many),
	        cmocka_unit_test(test_cli_split_stream_forms),
	        cmocka_unit_test(test_cli_unescape_forms),
	        cmocka_unit_test(test_cli_parse_segment_id_forms),
	        cmocka_unit_test(test_cli_parse_bounds_forms),
	        cmocka_unit_test(test_cli_reader_next_lines),
	        cmocka_unit_test(test_cli_reader_next_line_too_long),
	        cmocka_unit_test(test_cli_reader_next_prefixed),
	        cmocka_unit_test(test_cli_reader_next_prefixed_bad),
	        cmocka_unit_test(test_cli_reader_next_oom),
	        cmocka_unit_test(test_cli_json_string_escapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
