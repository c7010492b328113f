/* Unit tests for client/manager.c against the fake cluster: the stream
 * manager's queries. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "fake_cluster.h"
#include "strata/client.h"

/* A scope's stream names come page by page (QA: 66000 long names made
 * one reply larger than an RPC message may be, and the list failed):
 * the client asks after the last name until the controller says no more
 * follow, and returns them all, in order, once. */
static void test_stream_list_pages(void **state)
{
	(void)state;
	struct fake_fixture *fx = fake_fixture_new(1);
	assert_non_null(fx);
	struct strata_names *names = NULL;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(strata_stream_list(fx->c, "sc", NULL, &names, err), 0);
	assert_int_equal(names->n, 10);
	for (size_t i = 0; i < names->n; i++) {
		char want[24];
		snprintf(want, sizeof(want), "s%02zu", i);
		assert_string_equal(names->names[i], want);
	}
	assert_int_equal(fake_list_calls(fx->f), 4); /* 3 + 3 + 3 + 1 */
	strata_names_free(names);
	assert_int_equal(
	        strata_stream_list(fx->c, "bad scope!", NULL, &names, err),
	        STRATA_EBADNAME);
	fake_fixture_free(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stream_list_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
