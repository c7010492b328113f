/* Unit tests for raft/retain.c: how many entries a leader's snapshot keeps
 * behind it for followers that still need them. A struct raft is filled in
 * by hand: the function only reads its role, configuration, progress
 * array, applied index and install timeout. */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#include "raft/retain.h"

#define PIPELINE 1
#define SNAPSHOT 2
#define APPLIED 10000
#define TIMEOUT 5000
#define NOW 100000

struct leader {
	struct raft r;
	struct raft_server servers[4];
	struct raft_progress progress[4];
};

/* A leader (id 1) with followers 2 and 3 in pipeline mode, heard from,
 * matching the last applied entry. */
static void leader_init(struct leader *l)
{
	memset(l, 0, sizeof(*l));
	l->r.id = 1;
	l->r.state = RAFT_LEADER;
	l->r.last_applied = APPLIED;
	l->r.install_snapshot_timeout = TIMEOUT;
	l->r.configuration.n = 3;
	l->r.configuration.servers = l->servers;
	l->r.leader_state.progress = l->progress;
	for (unsigned i = 0; i < 3; i++) {
		l->servers[i].id = i + 1;
		l->servers[i].role = RAFT_VOTER;
		l->progress[i].state = PIPELINE;
		l->progress[i].match_index = APPLIED;
		l->progress[i].recent_recv = true;
	}
}

/* Followers that keep up need nothing beyond the base count. */
static void test_retain_followers_in_step(void **state)
{
	(void)state;
	struct leader l;
	leader_init(&l);
	assert_int_equal(raft_retain_trailing(&l.r, NOW, 100, 5000), 100);
	l.progress[1].match_index = APPLIED - 50; /* within the base */
	assert_int_equal(raft_retain_trailing(&l.r, NOW, 100, 5000), 100);
}

/* A live follower further behind keeps its match index (the prevLogTerm of
 * what it is sent next), up to the cap. */
static void test_retain_lagging_follower(void **state)
{
	(void)state;
	struct leader l;
	leader_init(&l);
	l.progress[2].match_index = APPLIED - 700;
	assert_int_equal(raft_retain_trailing(&l.r, NOW, 100, 5000), 701);
	l.progress[1].match_index = APPLIED - 900; /* the oldest counts */
	assert_int_equal(raft_retain_trailing(&l.r, NOW, 100, 5000), 901);
	assert_int_equal(raft_retain_trailing(&l.r, NOW, 100, 800), 800);
}

/* A follower not heard from within the election timeout (down, or cut
 * off) keeps nothing: it may never come back. So does an unknown match
 * index, the leader itself, and a spare (not replicated to). */
static void test_retain_ignores_dead_unknown_self_spare(void **state)
{
	(void)state;
	struct leader l;
	leader_init(&l);
	l.progress[1].match_index = APPLIED - 900;
	l.progress[1].recent_recv = false;
	l.progress[2].match_index = 0;
	l.progress[0].match_index = 1; /* the leader's own slot */
	assert_int_equal(raft_retain_trailing(&l.r, NOW, 100, 5000), 100);
	l.progress[1].recent_recv = true;
	l.servers[1].role = RAFT_SPARE;
	assert_int_equal(raft_retain_trailing(&l.r, NOW, 100, 5000), 100);
	l.servers[1].role = RAFT_STANDBY; /* replicated to: counts */
	assert_int_equal(raft_retain_trailing(&l.r, NOW, 100, 5000), 901);
}

/* A follower being sent a snapshot is silent while it installs it; until
 * the install timeout the entries after that snapshot stay, from its last
 * index on. After the timeout it counts as gone. */
static void test_retain_installing_follower(void **state)
{
	(void)state;
	struct leader l;
	leader_init(&l);
	l.progress[2].state = SNAPSHOT;
	l.progress[2].recent_recv = false;
	l.progress[2].match_index = 3;
	l.progress[2].snapshot_index = APPLIED - 2000;
	l.progress[2].snapshot_last_send = NOW - TIMEOUT + 1;
	assert_int_equal(raft_retain_trailing(&l.r, NOW, 100, 5000), 2001);
	l.progress[2].snapshot_last_send = NOW - TIMEOUT;
	assert_int_equal(raft_retain_trailing(&l.r, NOW, 100, 5000), 100);
}

/* Not a leader: no progress to read; only the base, clamped to
 * [1, UINT_MAX / 2] as libraft's trailing count is an unsigned. */
static void test_retain_follower_and_bounds(void **state)
{
	(void)state;
	struct leader l;
	leader_init(&l);
	l.r.state = RAFT_FOLLOWER;
	l.r.leader_state.progress = NULL;
	assert_int_equal(raft_retain_trailing(&l.r, NOW, 100, 5000), 100);
	assert_int_equal(raft_retain_trailing(&l.r, NOW, 0, 5000), 1);
	assert_int_equal(
	        raft_retain_trailing(&l.r, NOW, UINT64_MAX, UINT64_MAX),
	        UINT_MAX / 2);
	/* A match index ahead of the applied one (acknowledged, not yet
	 * applied here) needs nothing kept. */
	leader_init(&l);
	l.progress[1].match_index = APPLIED + 5;
	assert_int_equal(raft_retain_trailing(&l.r, NOW, 100, 5000), 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_retain_followers_in_step),
	        cmocka_unit_test(test_retain_lagging_follower),
	        cmocka_unit_test(test_retain_ignores_dead_unknown_self_spare),
	        cmocka_unit_test(test_retain_installing_follower),
	        cmocka_unit_test(test_retain_follower_and_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
