/* Unit tests for controller/nodes.c: membership and container assignment. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "tests/unit/controller/cfsm_helpers.h"

#define CONTAINERS 24

/* Replicas of every container as "c:a,b,c;" lines, for comparisons. */
static void dump(const struct cfsm *f, char *out, size_t size)
{
	size_t at = 0;
	out[0] = '\0';
	for (uint32_t c = 0; c < cfsm_container_count(f); c++) {
		const Strata__V1__ContainerAssignment *a =
		        cfsm_container_replicas(f, c);
		for (size_t i = 0; i < a->n_replicas; i++) {
			at += (size_t)snprintf(out + at, size - at, "%s%s",
			                       i ? "," : "", a->replicas[i]);
		}
		at += (size_t)snprintf(out + at, size - at, ";");
	}
}

/* Check R = min(3, live), distinct members, only live ones, and loads
 * within 1 of each other. */
static void check_balanced(const struct cfsm *f, const char **live,
                           size_t n_live)
{
	size_t R = n_live < 3 ? n_live : 3;
	size_t load[16] = {0};
	for (uint32_t c = 0; c < cfsm_container_count(f); c++) {
		const Strata__V1__ContainerAssignment *a =
		        cfsm_container_replicas(f, c);
		assert_int_equal(a->n_replicas, R);
		for (size_t i = 0; i < a->n_replicas; i++) {
			size_t k = n_live;
			for (size_t j = 0; j < n_live; j++) {
				if (strcmp(live[j], a->replicas[i]) == 0) {
					k = j;
				}
			}
			assert_true(k < n_live);
			load[k]++;
			if (i > 0) {
				assert_true(strcmp(a->replicas[i - 1],
				                   a->replicas[i]) < 0);
			}
		}
	}
	size_t lo = SIZE_MAX, hi = 0;
	for (size_t j = 0; j < n_live; j++) {
		lo = load[j] < lo ? load[j] : lo;
		hi = load[j] > hi ? load[j] : hi;
	}
	if (n_live > 0) {
		assert_true(hi - lo <= 1);
	}
}

/* Count replica slots that differ between two dumps' containers. */
static size_t moved(const struct cfsm *f, const char *before)
{
	char now[4096];
	dump(f, now, sizeof(now));
	size_t diff = 0;
	const char *a = before, *b = now;
	for (uint32_t c = 0; c < CONTAINERS; c++) {
		const char *ea = strchr(a, ';'), *eb = strchr(b, ';');
		char sa[64] = {0}, sb[64] = {0};
		memcpy(sa, a, (size_t)(ea - a));
		memcpy(sb, b, (size_t)(eb - b));
		/* members of sa missing from sb */
		for (char *tok = strtok(sa, ","); tok;
		     tok = strtok(NULL, ",")) {
			char pat[16];
			snprintf(pat, sizeof(pat), "%s", tok);
			if (strstr(sb, pat) == NULL) {
				diff++;
			}
		}
		a = ea + 1;
		b = eb + 1;
	}
	return diff;
}

/* 1, 2, 3 and 5 stores: every container gets min(3, N), balanced. */
static void test_nodes_assignment_1_2_3_5(void **state)
{
	(void)state;
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	const char *ids[] = {"ss1", "ss2", "ss3", "ss4", "ss5"};
	assert_int_equal(cfsm_init(&f, CONTAINERS, err), 0);
	check_balanced(&f, ids, 0);
	for (size_t n = 1; n <= 5; n++) {
		assert_int_equal(h_register(&f, ids[n - 1], 0, 10000), 0);
		check_balanced(&f, ids, n);
	}
	cfsm_close(&f);
}

/* The same commands give the same assignment (no hidden input). */
static void test_nodes_assignment_deterministic(void **state)
{
	(void)state;
	struct cfsm f, g;
	char err[STRATA_ERRMSG_SIZE], a[4096], b[4096];
	assert_int_equal(cfsm_init(&f, CONTAINERS, err), 0);
	assert_int_equal(cfsm_init(&g, CONTAINERS, err), 0);
	const char *ids[] = {"x", "b", "m", "a"};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(h_register(&f, ids[i], 0, 1000), 0);
		assert_int_equal(h_register(&g, ids[i], 0, 1000), 0);
	}
	dump(&f, a, sizeof(a));
	dump(&g, b, sizeof(b));
	assert_string_equal(a, b);
	cfsm_close(&f);
	cfsm_close(&g);
}

/* A store whose lease runs out is dropped and its replicas move to the
 * others; only those move. A joining store takes a fair share. */
static void test_nodes_death_and_join_move_little(void **state)
{
	(void)state;
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE], before[4096];
	const char *ids[] = {"ss1", "ss2", "ss3", "ss4"};
	assert_int_equal(cfsm_init(&f, CONTAINERS, err), 0);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(h_register(&f, ids[i], 0, 1000), 0);
	}
	check_balanced(&f, ids, 4);
	/* ss1..ss3 keep heartbeating; ss4 goes silent. */
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(h_heartbeat(&f, ids[i], 900, 1000), 0);
	}
	dump(&f, before, sizeof(before));
	assert_int_equal(h_tick(&f, 999), 0); /* nobody expired */
	assert_int_equal(moved(&f, before), 0);
	assert_int_equal(h_tick(&f, 1000), 0); /* ss4 expired */
	check_balanced(&f, ids, 3);
	/* ss4 held 24*3/4 = 18 replicas; exactly those moved. */
	assert_int_equal(moved(&f, before), 18);

	dump(&f, before, sizeof(before));
	assert_int_equal(h_register(&f, "ss5", 1000, 1000), 0);
	const char *ids5[] = {"ss1", "ss2", "ss3", "ss5"};
	check_balanced(&f, ids5, 4);
	assert_int_equal(moved(&f, before), 18); /* ss5's fair share */

	/* A dead store rejoining by heartbeat counts again. */
	dump(&f, before, sizeof(before));
	assert_int_equal(h_heartbeat(&f, "ss4", 1500, 1000), 0);
	check_balanced(&f, (const char *[]){"ss1", "ss2", "ss3", "ss4", "ss5"},
	               5);
	cfsm_close(&f);
}

/* Bad membership commands are refused and change nothing. */
static void test_nodes_rejections_change_nothing(void **state)
{
	(void)state;
	struct cfsm f;
	char err[STRATA_ERRMSG_SIZE];
	assert_int_equal(cfsm_init(&f, 4, err), 0);
	assert_int_equal(h_register(&f, "ss1", 0, 1000), 0);
	size_t len;
	uint8_t *snap = h_snap(&f, &len);
	assert_int_equal(h_heartbeat(&f, "nobody", 0, 1000), STRATA_ENOENT);
	assert_int_equal(h_register(&f, "bad id", 0, 1000), STRATA_EINVAL);
	assert_int_equal(h_register(&f, "", 0, 1000), STRATA_EINVAL);
	assert_int_equal(h_register(&f, "ss2", 0, 0), STRATA_EINVAL);
	assert_true(h_same(&f, snap, len));
	strata_free(snap);
	cfsm_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_nodes_assignment_1_2_3_5),
	        cmocka_unit_test(test_nodes_assignment_deterministic),
	        cmocka_unit_test(test_nodes_death_and_join_move_little),
	        cmocka_unit_test(test_nodes_rejections_change_nothing),
	};
	return cmocka_run_group_tests_name("controller_nodes", tests, NULL,
	                                   NULL);
}
