/* Unit tests for include/strata/error.h and common/err.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "strata/error.h"
#include "strata/v1/error.pb-c.h"

/* The proto enum mirrors the X-macro list: same numbers, same names. */
static void test_error_proto_enum_matches_list(void **state)
{
	(void)state;
	const ProtobufCEnumDescriptor *d = &strata__v1__error_code__descriptor;
	size_t n = 0;
#define CHECK_ONE(sym, num, msg)                                      \
	do {                                                          \
		const ProtobufCEnumValue *v =                         \
		        protobuf_c_enum_descriptor_get_value(d, num); \
		assert_non_null(v);                                   \
		assert_string_equal(v->name + strlen("ERROR_CODE_"),  \
		                    #sym + strlen("STRATA_"));        \
		n++;                                                  \
	} while (0);
	STRATA_ERRORS(CHECK_ONE)
#undef CHECK_ONE
	assert_int_equal(d->n_values, n);
}

/* Numbers are dense from 0: a gap means someone deleted a code. */
static void test_error_numbers_dense(void **state)
{
	(void)state;
	int expect = 0;
#define CHECK_DENSE(sym, num, msg) assert_int_equal(num, expect++);
	STRATA_ERRORS(CHECK_DENSE)
#undef CHECK_DENSE
}

/* strerror and name cover known and unknown codes. */
static void test_error_strerror_known_and_unknown(void **state)
{
	(void)state;
	assert_string_equal(strata_strerror(STRATA_OK), "success");
	assert_string_equal(strata_strerror(STRATA_ENOENT), "no such object");
	assert_string_equal(strata_strerror(99999), "unknown error");
	assert_string_equal(strata_strerror(-1), "unknown error");
	assert_string_equal(strata_error_name(STRATA_ETORN), "STRATA_ETORN");
	assert_string_equal(strata_error_name(12345), "STRATA_EUNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_error_proto_enum_matches_list),
	        cmocka_unit_test(test_error_numbers_dense),
	        cmocka_unit_test(test_error_strerror_known_and_unknown),
	};
	return cmocka_run_group_tests_name("error", tests, NULL, NULL);
}
