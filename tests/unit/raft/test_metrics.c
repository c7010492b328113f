/* Unit tests for raft/metrics.c: a group's metrics and the host's
 * loop-stall histogram rendered in the Prometheus text format. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/metrics.h"
#include "common/process.h"
#include "raft/group.h"
#include "raft/metrics.h"
#include "strata/error.h"

static _Atomic uint64_t applied;

static int t_apply(void *data, uint64_t index, const void *buf, size_t len,
                   void **result)
{
	(void)data;
	(void)index;
	(void)buf;
	(void)len;
	*result = NULL;
	atomic_fetch_add(&applied, 1);
	return 0;
}

static int t_snapshot(void *data, void **buf, size_t *len)
{
	(void)data;
	*buf = strata_malloc(1);
	*len = 1;
	return *buf == NULL ? STRATA_ENOMEM : 0;
}

static int t_restore(void *data, const void *buf, size_t len)
{
	(void)data;
	(void)buf;
	(void)len;
	return 0;
}

static const struct raft_group_fsm hooks = {
        .apply = t_apply, .snapshot = t_snapshot, .restore = t_restore};

struct rig {
	char dir[64];           /* temp dir */
	char addr[64];          /* host address */
	struct raft_host *host; /* the host */
	struct raft_group *g;   /* one-replica group */
};

static void rig_start_group(struct rig *r)
{
	char errmsg[STRATA_ERRMSG_SIZE];
	struct raft_group_peer self = {1, r->addr};
	struct raft_group_config c = {.group_id = 1,
	                              .node_id = 1,
	                              .data_dir = r->dir,
	                              .peers = &self,
	                              .n_peers = 1,
	                              .election_ms = 300,
	                              .heartbeat_ms = 50,
	                              .segment_bytes = 1u << 20};
	if (raft_group_start(r->host, &c, &hooks, &r->g, errmsg) != 0) {
		fail_msg("start: %s", errmsg);
	}
	for (int t = 0; t < 2000 && !raft_group_is_ready(r->g); t++) {
		usleep(5000);
	}
	assert_true(raft_group_is_ready(r->g));
}

static void rig_init(struct rig *r)
{
	char errmsg[STRATA_ERRMSG_SIZE];
	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "/tmp/strata-raft-me-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	struct raft_host_config hc = {.bind_address = "127.0.0.1:0",
	                              .stall_tick_ms = 5};
	assert_int_equal(raft_host_new(&hc, &r->host, errmsg), 0);
	snprintf(r->addr, sizeof(r->addr), "127.0.0.1:%u",
	         raft_host_port(r->host));
	rig_start_group(r);
}

static void rig_free(struct rig *r)
{
	if (r->g != NULL) {
		raft_group_stop(r->g);
	}
	raft_host_free(r->host);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
	assert_int_equal(system(cmd), 0);
}

static void done_cb(void *arg, int status, void *result)
{
	(void)result;
	assert_int_equal(status, 0);
	atomic_fetch_add((_Atomic int *)arg, 1);
}

static void apply_n(struct raft_group *g, int n)
{
	_Atomic int done = 0;
	for (int i = 0; i < n; i++) {
		assert_int_equal(raft_group_apply(g, "abcd", 4, done_cb, &done),
		                 0);
	}
	for (int t = 0; t < 2000 && atomic_load(&done) < n; t++) {
		usleep(1000);
	}
	assert_int_equal(atomic_load(&done), n);
}

/* Render reg into a NUL-terminated string (caller frees). */
static char *render(struct metrics_registry *reg)
{
	struct buf out;
	buf_init(&out, 0);
	assert_int_equal(metrics_render(reg, &out), 0);
	char *s = malloc(out.len + 1);
	assert_non_null(s);
	memcpy(s, out.data, out.len);
	s[out.len] = '\0';
	buf_close(&out);
	return s;
}

/* Wait (up to 2 s, metrics refresh every tick) until the rendering
 * contains line; fail with the rendering otherwise. */
static void wait_line(struct metrics_registry *reg, const char *line)
{
	char *s = NULL;
	for (int t = 0; t < 400; t++) {
		free(s);
		s = render(reg);
		if (strstr(s, line) != NULL) {
			free(s);
			return;
		}
		usleep(5000);
	}
	fprintf(stderr, "%s", s);
	fail_msg("no line \"%s\" in the rendering above", line);
}

/* A registered leader renders its role, readiness, indexes, counters and
 * voters with the given labels; the host exports its stall histogram. */
static void test_raft_group_register_metrics_renders(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	struct metrics_registry *reg = NULL;
	assert_int_equal(metrics_registry_new(&reg), 0);
	char errmsg[STRATA_ERRMSG_SIZE];
	struct metrics_label lab[2] = {{"component", "test"}, {"group", "1"}};
	assert_int_equal(raft_group_register_metrics(r.g, reg, lab, 2, errmsg),
	                 0);
	assert_int_equal(
	        raft_host_register_metrics(r.host, reg, lab, 1, errmsg), 0);
	apply_n(r.g, 10);
	wait_line(reg, "strata_raft_applied_entries_total{component=\"test\","
	               "group=\"1\"} 10\n");
	wait_line(reg, "strata_raft_applied_bytes_total{component=\"test\","
	               "group=\"1\"} 40\n");
	wait_line(reg, "strata_raft_role{component=\"test\",group=\"1\"} 3\n");
	wait_line(reg, "strata_raft_ready{component=\"test\",group=\"1\"} 1\n");
	wait_line(reg, "strata_raft_leader_id{component=\"test\",group=\"1\"} "
	               "1\n");
	wait_line(reg,
	          "strata_raft_voters{component=\"test\",group=\"1\"} 1\n");
	wait_line(reg, "strata_raft_inflight_bytes{component=\"test\","
	               "group=\"1\"} 0\n");
	wait_line(reg, "# TYPE strata_raft_leader_changes_total counter\n");
	wait_line(reg, "# TYPE strata_raft_loop_stall_seconds histogram\n");
	wait_line(reg, "strata_raft_loop_stall_seconds_bucket{component="
	               "\"test\",le=\"0.001\"}");
	wait_line(reg, "strata_raft_loop_stall_seconds_bucket{component="
	               "\"test\",le=\"+Inf\"}");
	char *s = render(reg);
	assert_non_null(strstr(s, "strata_raft_commit_index{"));
	assert_non_null(strstr(s, "strata_raft_snapshots_taken_total{"));
	assert_non_null(strstr(s, "strata_raft_install_last_seconds{"));
	assert_non_null(strstr(s, "strata_raft_snapshots_retained_total{"));
	free(s);
	raft_host_register_metrics(r.host, NULL, NULL, 0, NULL);
	rig_free(&r);
	metrics_registry_free(reg);
	raft_metrics_forget(reg);
}

/* A stopped group's samples disappear; a new group registered with the
 * same labels takes the series over (counters restart). */
static void test_raft_group_register_metrics_survives_restart(void **state)
{
	(void)state;
	struct rig r;
	rig_init(&r);
	struct metrics_registry *reg = NULL;
	assert_int_equal(metrics_registry_new(&reg), 0);
	struct metrics_label lab = {"group", "1"};
	assert_int_equal(raft_group_register_metrics(r.g, reg, &lab, 1, NULL),
	                 0);
	apply_n(r.g, 3);
	wait_line(reg, "strata_raft_applied_entries_total{group=\"1\"} 3\n");
	raft_group_stop(r.g);
	r.g = NULL;
	char *s = render(reg);
	assert_null(strstr(s, "strata_raft_role{"));
	free(s);
	rig_start_group(&r); /* replays 3 entries from its log */
	assert_int_equal(raft_group_register_metrics(r.g, reg, &lab, 1, NULL),
	                 0);
	apply_n(r.g, 2);
	wait_line(reg, "strata_raft_applied_entries_total{group=\"1\"} 5\n");
	wait_line(reg, "strata_raft_role{group=\"1\"} 3\n");
	rig_free(&r);
	metrics_registry_free(reg);
	raft_metrics_forget(reg);
}

int main(void)
{
	assert_int_equal(strata_process_init(NULL), 0);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_raft_group_register_metrics_renders),
	        cmocka_unit_test(
	                test_raft_group_register_metrics_survives_restart),
	};
	return cmocka_run_group_tests_name("raft_metrics", tests, NULL, NULL);
}
