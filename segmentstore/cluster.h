/* Segment store membership: which container replicas this store runs.
 * Standalone (no controller): every container as a single-replica group.
 * With controllers: register, heartbeat per proto/strata/v1/cluster.proto
 * and start/stop replicas as the assignment says. Also the backend the RPC
 * server routes through, per-container metrics and readiness. */
#ifndef SEGMENTSTORE_CLUSTER_H
#define SEGMENTSTORE_CLUSTER_H

#include <stdint.h>

#include "common/http.h"
#include "segmentstore/container.h"
#include "segmentstore/server.h"

struct metrics_registry;
struct raft_host;

/* Membership settings. Strings are copied. */
struct ss_cluster_config {
	uint64_t node_id;         /* > 0; Raft node id of every replica */
	const char *data_dir;     /* replicas in <data_dir>/container-<id> */
	const char *client_url;   /* advertised SS_* URL */
	const char *raft_address; /* advertised Raft "IPv4:port" */
	const char *http_url;     /* advertised metrics/health URL */
	const char *controllers;  /* comma-separated controller client URLs;
	                           * NULL or "" = standalone */
	uint32_t container_count; /* > 0, the cluster's */
	struct container_config tmpl; /* limits, raft tuning, tier2 for every
	                               * replica; id, node_id, data_dir and
	                               * peers are filled in here */
	struct raft_host *host;       /* borrowed until ss_cluster_stop */
	struct metrics_registry *metrics; /* borrowed; NULL = none */
	unsigned rpc_timeout_ms;          /* controller calls (default 2000) */
	unsigned settle_ms;  /* a new group is bootstrapped only after
	                      * its assignment is this old (3000) */
	unsigned recover_ms; /* a replica whose Raft log failed is restarted
	                      * this long after (30000), then at doubling
	                      * intervals up to 10 min while it keeps
	                      * failing */
	/* Called once (membership thread) when the store cannot join: the
	 * controller has another container count, or is another cluster
	 * than the one this store's data belongs to (<data_dir>/cluster-id,
	 * written when it first joined). message says what and the fix;
	 * the process should exit. NULL: keep retrying. */
	void (*on_fatal)(void *arg, const char *message);
	void *fatal_arg;
};

struct ss_cluster;

/*
 * Start membership. Standalone: starts every container now (blocks while
 * each loads its log) and fails if one cannot start. With controllers:
 * starts a thread that registers (retrying until a controller answers)
 * and heartbeats; replicas start as assignments arrive. Either way a
 * thread restarts, after recover_ms, a replica that left its group
 * because its Raft log failed (a full or failing disk): it reloads its log
 * from disk, so a disk that has space again recovers without a process
 * restart. *out is freed by
 * ss_cluster_stop. Errors: STRATA_EINVAL (bad config), STRATA_ENOMEM,
 * STRATA_EIO, a container_start() error; errmsg (STRATA_ERRMSG_SIZE)
 * says which.
 */
int ss_cluster_start(const struct ss_cluster_config *cfg,
                     struct ss_cluster **out, char *errmsg);

/*
 * Stop heartbeating, unregister from the controller (best effort, one
 * try), stop every replica (their pending requests complete with
 * STRATA_ESHUTDOWN) and free c. Call after ss_server_stop. Blocks.
 */
void ss_cluster_stop(struct ss_cluster *c);

/* Fill *out with the routing functions of c for ss_server (c borrowed
 * until ss_cluster_stop). */
void ss_cluster_backend(struct ss_cluster *c, struct ss_backend *out);

/* Readiness for GET /health/ready (an http_ready_fn; arg is the cluster):
 * not ready while a hosted container has no leader or nothing is hosted
 * yet; degraded while tier 2 is failing; detail says which. */
enum http_readiness ss_cluster_ready(void *arg, struct buf *detail);

/* Wait up to timeout_ms until every hosted container knows its leader;
 * true when it does (used at start-up and by tests). */
bool ss_cluster_wait_leaders(struct ss_cluster *c, unsigned timeout_ms);

#endif /* SEGMENTSTORE_CLUSTER_H */
