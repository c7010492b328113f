/* Unit tests for controller/readergroups.c: reader-group configurations. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "tests/unit/controller/cfsm_helpers.h"

static int setup(void **state)
{
	static struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 4, err), 0);
	assert_int_equal(h_create_scope(&f, "sc"), 0);
	assert_int_equal(h_create_stream(&f, "sc", "s", 2), 0);
	assert_int_equal(h_create_stream(&f, "sc", "t", 1), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	cfsm_close(*state);
	return 0;
}

/* Create (update when gen != UINT64_MAX) group name reading streams. */
static int rg(struct cfsm *f, const char *name, const char **streams, size_t n,
              uint64_t gen)
{
	Strata__V1__ReaderGroupStream rs[4], *rsp[4];
	for (size_t i = 0; i < n; i++) {
		Strata__V1__ReaderGroupStream x =
		        STRATA__V1__READER_GROUP_STREAM__INIT;
		x.stream = (char *)streams[i];
		rs[i] = x;
		rsp[i] = &rs[i];
	}
	Strata__V1__ReaderGroupConfig cfg =
	        STRATA__V1__READER_GROUP_CONFIG__INIT;
	cfg.name = (char *)name;
	cfg.streams = rsp;
	cfg.n_streams = n;
	cfg.checkpoint_interval_ms = 30000;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	Strata__V1__CreateReaderGroupRequest cr =
	        STRATA__V1__CREATE_READER_GROUP_REQUEST__INIT;
	Strata__V1__CreateReaderGroupCmd cc =
	        STRATA__V1__CREATE_READER_GROUP_CMD__INIT;
	Strata__V1__UpdateReaderGroupRequest ur =
	        STRATA__V1__UPDATE_READER_GROUP_REQUEST__INIT;
	Strata__V1__UpdateReaderGroupCmd uc =
	        STRATA__V1__UPDATE_READER_GROUP_CMD__INIT;
	if (gen == UINT64_MAX) {
		cr.scope = "sc";
		cr.config = &cfg;
		cc.request = &cr;
		cmd.command_case =
		        STRATA__V1__CONTROLLER_COMMAND__COMMAND_CREATE_READER_GROUP;
		cmd.create_reader_group = &cc;
	} else {
		cfg.generation = gen;
		ur.scope = "sc";
		ur.config = &cfg;
		uc.request = &ur;
		cmd.command_case =
		        STRATA__V1__CONTROLLER_COMMAND__COMMAND_UPDATE_READER_GROUP;
		cmd.update_reader_group = &uc;
	}
	return h_apply(f, &cmd);
}

static int rg_del(struct cfsm *f, const char *name)
{
	Strata__V1__DeleteReaderGroupRequest r =
	        STRATA__V1__DELETE_READER_GROUP_REQUEST__INIT;
	Strata__V1__DeleteReaderGroupCmd c =
	        STRATA__V1__DELETE_READER_GROUP_CMD__INIT;
	r.scope = "sc";
	r.name = (char *)name;
	c.request = &r;
	Strata__V1__ControllerCommand cmd =
	        STRATA__V1__CONTROLLER_COMMAND__INIT;
	cmd.command_case =
	        STRATA__V1__CONTROLLER_COMMAND__COMMAND_DELETE_READER_GROUP;
	cmd.delete_reader_group = &c;
	return h_apply(f, &cmd);
}

/* Create fills defaults; get/list return copies; update bumps the
 * generation; delete removes it and frees the scope. */
static void test_readergroups_lifecycle(void **state)
{
	struct cfsm *f = *state;
	char err[STRATA_ERRMSG_SIZE];
	const char *both[] = {"s", "t"};
	assert_int_equal(rg(f, "g2", both, 2, UINT64_MAX), 0);
	assert_int_equal(rg(f, "g1", both, 1, UINT64_MAX), 0);
	Strata__V1__ReaderGroupConfig *c;
	assert_int_equal(cfsm_get_reader_group(f, "sc", "g2", &c, err), 0);
	assert_int_equal(c->n_streams, 2);
	assert_string_equal(c->streams[0]->scope, "sc");
	assert_int_equal(c->group_refresh_ms, 3000);
	assert_int_equal(c->max_outstanding_checkpoints, 3);
	assert_int_equal(c->generation, 0);
	cfsm_msg_free(c);
	Strata__V1__ListReaderGroupsReply *l;
	assert_int_equal(cfsm_list_reader_groups(f, "sc", &l, err), 0);
	assert_int_equal(l->n_groups, 2);
	assert_string_equal(l->groups[0]->name, "g1");
	cfsm_msg_free(l);
	assert_int_equal(rg(f, "g1", both, 2, 0), 0);
	assert_int_equal(cfsm_get_reader_group(f, "sc", "g1", &c, err), 0);
	assert_int_equal(c->generation, 1);
	assert_int_equal(c->n_streams, 2);
	cfsm_msg_free(c);
	assert_int_equal(rg_del(f, "g1"), 0);
	assert_int_equal(rg_del(f, "g2"), 0);
	assert_int_equal(cfsm_get_reader_group(f, "sc", "g1", &c, err),
	                 STRATA_ENOENT);
}

/* Duplicates, unknown streams, stale generations and bad names are
 * refused and leave the state byte-identical. */
static void test_readergroups_rejections_change_nothing(void **state)
{
	struct cfsm *f = *state;
	const char *one[] = {"s"}, *dup[] = {"s", "s"}, *bad[] = {"nope"};
	assert_int_equal(rg(f, "g", one, 1, UINT64_MAX), 0);
	size_t len;
	uint8_t *snap = h_snap(f, &len);
	assert_int_equal(rg(f, "g", one, 1, UINT64_MAX), STRATA_EEXIST);
	assert_int_equal(rg(f, "h", bad, 1, UINT64_MAX), STRATA_ENOENT);
	assert_int_equal(rg(f, "h", dup, 2, UINT64_MAX), STRATA_EINVAL);
	assert_int_equal(rg(f, "h", one, 0, UINT64_MAX), STRATA_EINVAL);
	assert_int_equal(rg(f, "h h", one, 1, UINT64_MAX), STRATA_EBADNAME);
	assert_int_equal(rg(f, "g", one, 1, 5), STRATA_ECONFLICT);
	assert_int_equal(rg(f, "x", one, 1, 0), STRATA_ENOENT);
	assert_int_equal(rg_del(f, "x"), STRATA_ENOENT);
	assert_int_equal(h_delete_scope(f, "sc"), STRATA_ENOTEMPTY);
	assert_true(h_same(f, snap, len));
	strata_free(snap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_readergroups_lifecycle,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_readergroups_rejections_change_nothing, setup,
	                teardown),
	};
	return cmocka_run_group_tests_name("controller_readergroups", tests,
	                                   NULL, NULL);
}
