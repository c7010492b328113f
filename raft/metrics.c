/* Prometheus export of Raft group metrics through common/metrics.h
 * callbacks (see metrics.h).
 *
 * The registry keeps a callback's argument forever and has no unregister,
 * while groups come and go. So each (registry, label set) gets one slot
 * that lives until raft_metrics_forget; the callbacks point at the slot,
 * and the slot points at the group that registered last (NULL once it
 * stopped: the samples are then omitted). One process-wide mutex guards
 * the slots; lock order: registry (render) -> slots -> group metrics.
 */
#include "raft/metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "strata/error.h"

/* What a callback reports. */
enum field {
	F_ROLE,
	F_READY,
	F_TERM,
	F_LEADER,
	F_COMMIT,
	F_APPLIED,
	F_LAST,
	F_SNAPSHOT,
	F_CONTACT,
	F_VOTERS,
	F_LEADER_CHANGES,
	F_APPLIED_ENTRIES,
	F_APPLIED_BYTES,
	F_INFLIGHT,
	F_REJECTED,
	F_SNAPS_TAKEN,
	F_SNAP_LAST,
	F_SNAP_TOTAL,
	F_SNAPS_INSTALLED,
	F_INSTALL_LAST,
	F_LAG_HOLDS,
	F_SNAPS_RETAINED,
	F_SNAPS_FAILED,
	F_INSTALLS_FAILED,
	F_COUNT
};

struct field_def {
	const char *name;       /* metric name */
	enum metrics_type type; /* counter or gauge */
	const char *help;       /* # HELP text */
};

static const struct field_def fields[F_COUNT] = {
        [F_ROLE] = {"strata_raft_role", METRICS_GAUGE,
                    "Raft role: 0 unavailable, 1 follower, 2 candidate, 3 "
                    "leader"},
        [F_READY] = {"strata_raft_ready", METRICS_GAUGE,
                     "1 when leader and its barrier committed (may serve)"},
        [F_TERM] = {"strata_raft_term", METRICS_GAUGE, "Current Raft term"},
        [F_LEADER] = {"strata_raft_leader_id", METRICS_GAUGE,
                      "Node id of the known leader, 0 if none"},
        [F_COMMIT] = {"strata_raft_commit_index", METRICS_GAUGE,
                      "Highest committed log index"},
        [F_APPLIED] = {"strata_raft_applied_index", METRICS_GAUGE,
                       "Highest applied log index"},
        [F_LAST] = {"strata_raft_last_index", METRICS_GAUGE,
                    "Last index in the local log"},
        [F_SNAPSHOT] = {"strata_raft_snapshot_index", METRICS_GAUGE,
                        "Index of the last snapshot"},
        [F_CONTACT] = {"strata_raft_last_contact_seconds", METRICS_GAUGE,
                       "Follower: seconds since the leader was heard"},
        [F_VOTERS] = {"strata_raft_voters", METRICS_GAUGE,
                      "Voters in the configuration this replica follows"},
        [F_LEADER_CHANGES] = {"strata_raft_leader_changes_total",
                              METRICS_COUNTER, "New leaders seen"},
        [F_APPLIED_ENTRIES] = {"strata_raft_applied_entries_total",
                               METRICS_COUNTER, "Commands applied"},
        [F_APPLIED_BYTES] = {"strata_raft_applied_bytes_total", METRICS_COUNTER,
                             "Bytes of commands applied"},
        [F_INFLIGHT] = {"strata_raft_inflight_bytes", METRICS_GAUGE,
                        "Apply budget in use (queued + uncommitted)"},
        [F_REJECTED] = {"strata_raft_rejected_full_total", METRICS_COUNTER,
                        "Applies refused because the budget was full"},
        [F_SNAPS_TAKEN] = {"strata_raft_snapshots_taken_total", METRICS_COUNTER,
                           "Snapshots stored"},
        [F_SNAP_LAST] = {"strata_raft_snapshot_last_seconds", METRICS_GAUGE,
                         "Duration of the last snapshot"},
        [F_SNAP_TOTAL] = {"strata_raft_snapshot_seconds_total", METRICS_COUNTER,
                          "Time spent taking snapshots"},
        [F_SNAPS_INSTALLED] = {"strata_raft_snapshots_installed_total",
                               METRICS_COUNTER,
                               "Snapshots installed from a leader"},
        [F_INSTALL_LAST] = {"strata_raft_install_last_seconds", METRICS_GAUGE,
                            "Restore duration of the last installed snapshot"},
        [F_LAG_HOLDS] = {"strata_raft_lag_holds_total", METRICS_COUNTER,
                         "Times new applies waited for a slow follower"},
        [F_SNAPS_RETAINED] = {"strata_raft_snapshots_retained_total",
                              METRICS_COUNTER,
                              "Snapshots that kept extra log for a lagging "
                              "follower"},
        [F_SNAPS_FAILED] = {"strata_raft_snapshot_failures_total",
                            METRICS_COUNTER,
                            "Snapshots that could not be stored (the log "
                            "is not trimmed until one is)"},
        [F_INSTALLS_FAILED] = {"strata_raft_snapshot_install_failures_total",
                               METRICS_COUNTER,
                               "Snapshots from the leader that could not be "
                               "stored or restored (this replica stays "
                               "behind until one is)"},
};

struct slot;

/* A callback argument: which slot, which field. */
struct ref {
	struct slot *slot;
	enum field f;
};

struct slot {
	struct slot *next;            /* all slots */
	struct metrics_registry *reg; /* registry (identity only) */
	char *key;                    /* sorted "name=value\n" labels */
	struct raft_group *g;         /* current group, NULL: silent */
	struct ref refs[F_COUNT];     /* callback arguments */
};

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *slots; /* guarded by slots_lock */

static int label_cmp(const void *a, const void *b)
{
	const struct metrics_label *x = a, *y = b;
	return strcmp(x->name, y->name);
}

/* Canonical key of a label set (order-free); NULL when out of memory. */
static char *labels_key(const struct metrics_label *labels, size_t n)
{
	struct metrics_label *sorted = NULL;
	size_t len = 1;
	if (n > 0) {
		sorted = strata_malloc(n * sizeof(*sorted));
		if (sorted == NULL) {
			return NULL;
		}
		memcpy(sorted, labels, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), label_cmp);
	}
	for (size_t i = 0; i < n; i++) {
		len += strlen(sorted[i].name) + strlen(sorted[i].value) + 2;
	}
	char *key = strata_malloc(len);
	if (key != NULL) {
		char *p = key;
		*p = '\0';
		for (size_t i = 0; i < n; i++) {
			p += sprintf(p, "%s=%s\n", sorted[i].name,
			             sorted[i].value);
		}
	}
	strata_free(sorted);
	return key;
}

static int value_fn(void *arg, double *value)
{
	struct ref *r = arg;
	struct raft_group_metrics m;
	unsigned voters = 0;
	pthread_mutex_lock(&slots_lock);
	struct raft_group *g = r->slot->g;
	if (g == NULL) {
		pthread_mutex_unlock(&slots_lock);
		return 1;
	}
	raft_group_metrics(g, &m);
	if (r->f == F_VOTERS) {
		struct raft_group_member mem[16];
		unsigned n = raft_group_members(g, mem, 16, NULL);
		for (unsigned i = 0; i < n && i < 16; i++) {
			voters += mem[i].role == RAFT_MEMBER_VOTER;
		}
	}
	pthread_mutex_unlock(&slots_lock);
	double v = 0;
	switch (r->f) {
	case F_ROLE:
		v = m.role;
		break;
	case F_READY:
		v = m.ready ? 1 : 0;
		break;
	case F_TERM:
		v = (double)m.term;
		break;
	case F_LEADER:
		v = (double)m.leader_id;
		break;
	case F_COMMIT:
		v = (double)m.commit_index;
		break;
	case F_APPLIED:
		v = (double)m.applied_index;
		break;
	case F_LAST:
		v = (double)m.last_index;
		break;
	case F_SNAPSHOT:
		v = (double)m.snapshot_index;
		break;
	case F_CONTACT:
		v = (double)m.last_contact_ms / 1e3;
		break;
	case F_VOTERS:
		v = voters;
		break;
	case F_LEADER_CHANGES:
		v = (double)m.leader_changes;
		break;
	case F_APPLIED_ENTRIES:
		v = (double)m.applied_entries;
		break;
	case F_APPLIED_BYTES:
		v = (double)m.applied_bytes;
		break;
	case F_INFLIGHT:
		v = (double)m.inflight_bytes;
		break;
	case F_REJECTED:
		v = (double)m.rejected_full;
		break;
	case F_SNAPS_TAKEN:
		v = (double)m.snapshots_taken;
		break;
	case F_SNAP_LAST:
		v = (double)m.snapshot_last_us / 1e6;
		break;
	case F_SNAP_TOTAL:
		v = (double)m.snapshot_total_us / 1e6;
		break;
	case F_SNAPS_INSTALLED:
		v = (double)m.snapshots_installed;
		break;
	case F_INSTALL_LAST:
		v = (double)m.install_last_us / 1e6;
		break;
	case F_LAG_HOLDS:
		v = (double)m.lag_holds;
		break;
	case F_SNAPS_RETAINED:
		v = (double)m.snapshots_retained;
		break;
	case F_SNAPS_FAILED:
		v = (double)m.snapshots_failed;
		break;
	case F_INSTALLS_FAILED:
		v = (double)m.installs_failed;
		break;
	case F_COUNT:
		return 1;
	}
	*value = v;
	return 0;
}

int raft_group_register_metrics(struct raft_group *g,
                                struct metrics_registry *reg,
                                const struct metrics_label *labels,
                                size_t nlabels, char *errmsg)
{
	char *key = labels_key(labels, nlabels);
	if (key == NULL) {
		if (errmsg != NULL) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "raft metrics: out of memory");
		}
		return STRATA_ENOMEM;
	}
	pthread_mutex_lock(&slots_lock);
	struct slot *s = slots;
	while (s != NULL && (s->reg != reg || strcmp(s->key, key) != 0)) {
		s = s->next;
	}
	if (s != NULL) {
		/* Same series: the registry keeps the first callbacks, which
		 * point at this slot. */
		s->g = g;
		pthread_mutex_unlock(&slots_lock);
		strata_free(key);
		return 0;
	}
	s = strata_calloc(1, sizeof(*s));
	if (s == NULL) {
		pthread_mutex_unlock(&slots_lock);
		strata_free(key);
		if (errmsg != NULL) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "raft metrics: out of memory");
		}
		return STRATA_ENOMEM;
	}
	s->reg = reg;
	s->key = key;
	s->g = g;
	s->next = slots;
	slots = s;
	pthread_mutex_unlock(&slots_lock);
	/* Registration takes the registry lock: never under slots_lock. The
	 * slot stays even if a registration fails (a retry finds it). */
	for (int f = 0; f < F_COUNT; f++) {
		s->refs[f].slot = s;
		s->refs[f].f = (enum field)f;
		int rv = metrics_callback_register(
		        reg, fields[f].type, fields[f].name, fields[f].help,
		        labels, nlabels, value_fn, &s->refs[f], errmsg);
		if (rv != 0) {
			return rv;
		}
	}
	return 0;
}

void raft_metrics_group_stopped(struct raft_group *g)
{
	pthread_mutex_lock(&slots_lock);
	for (struct slot *s = slots; s != NULL; s = s->next) {
		if (s->g == g) {
			s->g = NULL;
		}
	}
	pthread_mutex_unlock(&slots_lock);
}

void raft_metrics_forget(struct metrics_registry *reg)
{
	pthread_mutex_lock(&slots_lock);
	struct slot **pp = &slots;
	while (*pp != NULL) {
		struct slot *s = *pp;
		if (s->reg == reg) {
			*pp = s->next;
			strata_free(s->key);
			strata_free(s);
		} else {
			pp = &s->next;
		}
	}
	pthread_mutex_unlock(&slots_lock);
}
