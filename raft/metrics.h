/* Prometheus export of Raft group and host metrics (common/metrics.h). */
#ifndef RAFT_METRICS_H
#define RAFT_METRICS_H

#include <stddef.h>

#include "common/metrics.h"
#include "raft/group.h"

/*
 * Register g's metrics (role, ready, term, leader, commit/applied/last/
 * snapshot index, last contact, voters, leader changes, applied entries
 * and bytes, in-flight bytes, rejected applies, snapshots taken/installed
 * with durations) in reg as callbacks named strata_raft_*, with the
 * constant labels (copied), e.g. {group="7"} or {container="7"}. Any
 * thread. The registry has no unregister: once g stops, its series are
 * omitted from scrapes; a group started later and registered with the same
 * labels takes them over (counters restart, which Prometheus treats as a
 * reset). Errors: those of metrics_callback_register (errmsg says which),
 * STRATA_ENOMEM.
 */
int raft_group_register_metrics(struct raft_group *g,
                                struct metrics_registry *reg,
                                const struct metrics_label *labels,
                                size_t nlabels, char *errmsg);

/*
 * Export h's loop-stall probe as the histogram
 * strata_raft_loop_stall_seconds (buckets 1 ms .. 1.024 s, how late the
 * periodic probe fired) with labels (copied). Observations start now. reg
 * must outlive h, or pass reg NULL to detach first. Any thread. Errors:
 * those of metrics_histogram_register.
 */
int raft_host_register_metrics(struct raft_host *h,
                               struct metrics_registry *reg,
                               const struct metrics_label *labels,
                               size_t nlabels, char *errmsg);

/* Forget the bookkeeping kept for reg; call after metrics_registry_free
 * (or when no render can run any more). Any thread. */
void raft_metrics_forget(struct metrics_registry *reg);

/* Internal (raft/group.c): g is stopping; its series go silent. */
void raft_metrics_group_stopped(struct raft_group *g);

#endif /* RAFT_METRICS_H */
