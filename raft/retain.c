/* Which log entries a leader's snapshot keeps behind it (see retain.h).
 *
 * Why: libraft trims its log to a fixed trailing count after each
 * snapshot. A follower further behind than that when the leader snapshots,
 * or one still installing the previous snapshot, then finds its next entry
 * gone and is sent a new snapshot; under a heavy write load a restarted
 * follower installed snapshot after snapshot (261 in 20 s) and never
 * caught up with the tail (docs/raft.md, "Snapshots"). Keeping the log
 * back to what live followers need, bounded by a cap, lets them go on with
 * entries; the slow-follower hold (raft/group.c) then bounds their lag.
 */
#include "raft/retain.h"

#include <limits.h>

uint64_t raft_retain_trailing(const struct raft *r, raft_time now,
                              uint64_t keep, uint64_t cap)
{
	raft_index applied = r->last_applied;
	if (r->state == RAFT_LEADER && r->leader_state.progress != NULL) {
		for (unsigned i = 0; i < r->configuration.n; i++) {
			const struct raft_server *s =
			        &r->configuration.servers[i];
			const struct raft_progress *p =
			        &r->leader_state.progress[i];
			raft_index need;
			if (s->id == r->id || s->role == RAFT_SPARE) {
				continue;
			}
			if (p->state == RAFT_PROGRESS_SNAPSHOT) {
				if (now - p->snapshot_last_send >=
				    r->install_snapshot_timeout) {
					continue;
				}
				need = p->snapshot_index;
			} else if (p->recent_recv) {
				need = p->match_index;
			} else {
				continue;
			}
			if (need == 0 || need > applied) {
				continue;
			}
			if (applied - need + 1 > keep) {
				keep = applied - need + 1;
			}
		}
	}
	if (keep > cap) {
		keep = cap;
	}
	if (keep < 1) {
		keep = 1;
	}
	if (keep > UINT_MAX / 2) {
		keep = UINT_MAX / 2;
	}
	return keep;
}
