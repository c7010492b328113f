/* Leader-only workflow driver: carries out the FSM's pending actions on
 * the segment stores and reports finished steps back through Raft. */
#ifndef CONTROLLER_DRIVER_H
#define CONTROLLER_DRIVER_H

#include <stdint.h>

#include "controller/service.h"

struct metrics_registry;

struct driver_config {
	struct ctl_service *svc;          /* borrowed for the driver's life */
	struct metrics_registry *metrics; /* step/failure counters; NULL ok */
	unsigned rpc_timeout_ms;          /* per segment-store call (5000) */
	unsigned backoff_min_ms;          /* first retry delay (100) */
	unsigned backoff_max_ms;          /* longest retry delay (5000) */
	unsigned retention_ms;    /* how often streams with a retention policy
	                             get their tail recorded (60000) */
	unsigned scaling_ms;      /* how often rate-scaled streams are sampled
	                             (10000) */
	uint64_t scaling_unit_ms; /* auto-scaling averages span 2, 5, 10
	                             and 20 of these (60000) */
	uint64_t scaling_cooldown_ms; /* between auto-scales of a stream
	                                 (600000) */
	unsigned watermark_ms;        /* how often streams whose writers note
	                                 time get a watermark (10000) */
	uint64_t writer_timeout_ms;   /* a writer silent this long no longer
	                                 holds watermarks back (60000) */
};

struct driver;

/* Start the driver thread. It acts only while the service is the ready
 * leader. *out is freed by driver_stop. STRATA_ENOMEM / STRATA_EIO, or a
 * metric registration error; errmsg says which. */
int driver_start(const struct driver_config *cfg, struct driver **out,
                 char *errmsg);

/* Stop the thread (a segment-store call in progress finishes or times
 * out first), close the store connections and free d. Call before
 * ctl_service_stop. NULL is a no-op. */
void driver_stop(struct driver *d);

#endif /* CONTROLLER_DRIVER_H */
