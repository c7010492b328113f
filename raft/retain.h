/* Which log entries a leader's snapshot keeps behind it (raft/retain.c). */
#ifndef RAFT_RETAIN_H
#define RAFT_RETAIN_H

#include <stdint.h>

#include <raft.h>

/* libraft's progress states of a follower (src/progress.h, not
 * installed), read from struct raft_progress.state. */
enum { RAFT_PROGRESS_PROBE, RAFT_PROGRESS_PIPELINE, RAFT_PROGRESS_SNAPSHOT };

/*
 * The trailing entry count for a snapshot r takes at r->last_applied:
 * at least `keep`, and on a leader enough to still hold the oldest entry a
 * live follower needs next, at most `cap` (>= keep). A follower counts when
 * it was heard from within the election timeout (its match index is what
 * it needs: libraft sends the entries after it with its term as
 * prevLogTerm, and sends a whole snapshot once that term is gone), or when
 * it is being sent a snapshot, sent less than the install timeout before
 * `now` (it needs that snapshot's last index: it is silent while it
 * installs, and asks for the entries after it next). An unknown match
 * index (0) counts for nothing. Result in [1, UINT_MAX / 2]. Pure: reads
 * r, changes nothing; loop thread of r.
 */
uint64_t raft_retain_trailing(const struct raft *r, raft_time now,
                              uint64_t keep, uint64_t cap);

#endif
