/* Segment-store membership on the controller: register / heartbeat /
 * unregister / status (proto/strata/v1/cluster.proto) and the leader's
 * once-a-second TickCmd that expires leases. */
#ifndef CONTROLLER_CLUSTER_H
#define CONTROLLER_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "controller/service.h"
#include "strata/v1/cluster.pb-c.h"

/*
 * The store-facing methods are served by cluster_dispatch() (declared in
 * controller/api.h) through the same RPC server as the client API.
 * Store ids: cluster.proto's uint64 node_id is kept in the FSM as its
 * decimal string.
 */

/* Assignment reply built from the FSM; fields borrow FSM strings, so use
 * it only under the service lock, then cluster_assignment_close(). */
struct cluster_assignment {
	Strata__V1__AssignmentReply reply;   /* the message */
	Strata__V1__ContainerReplicas *cr;   /* one per container */
	Strata__V1__ContainerReplicas **crp; /* pointers to cr */
	Strata__V1__StoreEndpoint *ep;       /* replica endpoints */
	Strata__V1__StoreEndpoint **epp;     /* pointers to ep */
};

/* Build the assignment of every container from f (borrowed, locked) with
 * the given lease. STRATA_ENOMEM. */
int cluster_assignment_build(const struct cfsm *f, uint64_t lease_ms,
                             struct cluster_assignment *a);
void cluster_assignment_close(struct cluster_assignment *a);

struct cluster_ticker;

/* Start a thread that, while this replica is the ready leader, proposes
 * TickCmd{now} every period_ms (one at a time). *out is freed by
 * cluster_ticker_stop. STRATA_ENOMEM / STRATA_EIO. */
int cluster_ticker_start(struct ctl_service *svc, unsigned period_ms,
                         struct cluster_ticker **out);

/* Stop the ticker thread (no new ticks). Call before ctl_service_stop;
 * a second call does nothing. From one thread at a time. */
void cluster_ticker_stop(struct cluster_ticker *t);

/* Free a stopped ticker; call after ctl_service_stop (a tick in flight
 * reports to it until then). NULL is a no-op. */
void cluster_ticker_free(struct cluster_ticker *t);

#endif /* CONTROLLER_CLUSTER_H */
