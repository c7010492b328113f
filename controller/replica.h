/* One controller replica as a process runs it (strata-controller, and
 * strata-standalone beside a segment store): the Raft service, client API
 * over NNG, REST, clock ticker and workflow driver started and stopped as
 * one. */
#ifndef CONTROLLER_REPLICA_H
#define CONTROLLER_REPLICA_H

#include <stddef.h>
#include <stdint.h>

#include "controller/api.h"
#include "controller/driver.h"
#include "controller/rest.h"
#include "controller/service.h"

struct config;
struct metrics_registry;

/* Schema entry (a struct config_key initializer, common/config.h) of the
 * key strata-controller and strata-standalone declare alike, for their
 * static const schema tables. */
#define CTL_KEY_RAFT_HEARTBEAT                                                 \
	{                                                                      \
		.name = "raft.heartbeat", .type = CONFIG_DURATION,             \
		.def = "100ms", .min = "10ms", .max = "10s",                   \
		.help = "Raft heartbeat interval; below the election timeout." \
	}

/* The leader's stream jobs (docs/controller.md, "Auto-scaling" and
 * "Retention"): keys strata-controller and strata-standalone declare
 * alike. */
#define CTL_KEY_SCALING_INTERVAL                                             \
	{                                                                    \
		.name = "scaling.interval", .type = CONFIG_DURATION,         \
		.def = "10s", .min = "100ms", .max = "1h",                   \
		.help = "How often the leader samples the segments of "      \
		        "streams with a rate scaling policy (auto-scaling)." \
	}
#define CTL_KEY_SCALING_UNIT                                                  \
	{                                                                     \
		.name = "scaling.unit", .type = CONFIG_DURATION, .def = "1m", \
		.min = "100ms", .max = "1h",                                  \
		.help = "Auto-scaling rate averages span 2, 5, 10 and 20 "    \
		        "of these."                                           \
	}
#define CTL_KEY_SCALING_COOLDOWN                                         \
	{                                                                \
		.name = "scaling.cooldown", .type = CONFIG_DURATION,     \
		.def = "10m", .min = "0s", .max = "1d",                  \
		.help = "No auto-scale of a stream this soon after its " \
		        "last one."                                      \
	}
#define CTL_KEY_RETENTION_INTERVAL                                       \
	{                                                                \
		.name = "retention.interval", .type = CONFIG_DURATION,   \
		.def = "1m", .min = "100ms", .max = "1d",                \
		.help = "How often the leader records the tail of each " \
		        "stream with a retention policy and truncates "  \
		        "what the policy lets go of."                    \
	}
#define CTL_KEY_WATERMARK_INTERVAL                                      \
	{                                                               \
		.name = "watermark.interval", .type = CONFIG_DURATION,  \
		.def = "10s", .min = "100ms", .max = "1h",              \
		.help = "How often the leader turns the times writers " \
		        "noted into a watermark of each stream."        \
	}
#define CTL_KEY_WATERMARK_WRITER_TIMEOUT                                     \
	{                                                                    \
		.name = "watermark.writer_timeout", .type = CONFIG_DURATION, \
		.def = "1m", .min = "100ms", .max = "7d",                    \
		.help = "A writer that noted no time for this long no "      \
		        "longer holds a stream's watermarks back."           \
	}
#define CTL_KEYS_STREAM_JOBS                                          \
	CTL_KEY_SCALING_INTERVAL, CTL_KEY_SCALING_UNIT,               \
	        CTL_KEY_SCALING_COOLDOWN, CTL_KEY_RETENTION_INTERVAL, \
	        CTL_KEY_WATERMARK_INTERVAL, CTL_KEY_WATERMARK_WRITER_TIMEOUT

struct config;

/* Fill the stream-job fields of d from those keys of cfg. */
void ctl_stream_jobs_config(const struct config *cfg, struct driver_config *d);

/* What to start. Strings are borrowed for the duration of
 * ctl_replica_start only. */
struct ctl_replica_config {
	struct metrics_registry *metrics;  /* borrowed until ctl_replica_stop;
	                                    * NULL = none */
	struct ctl_service_config service; /* the Raft service */
	struct ctl_api_config api;   /* all but svc and metrics (set here) */
	const char *listen;          /* NNG URL of the client API */
	const char *listen_key;      /* its config key, e.g. "listen" */
	unsigned max_connections;    /* its connection bound, 0 = default;
	                              * named "limits.connections" */
	struct rest_config rest;     /* url, config_key, forward timeout;
	                              * svc, api, metrics are set here */
	unsigned tick_ms;            /* clock tick period of the leader */
	struct driver_config driver; /* all but svc and metrics (set here) */
};

struct ctl_replica;

/*
 * Start, in this order, the service (blocks while the Raft log loads), the
 * client API, its RPC server, REST, the ticker and the driver. *out is
 * freed by ctl_replica_stop. On error whatever started is stopped again
 * and errmsg (STRATA_ERRMSG_SIZE) says what failed. Errors: those of
 * ctl_service_start, ctl_api_new, rpc_server_start, rest_start,
 * cluster_ticker_start, driver_start.
 */
int ctl_replica_start(const struct ctl_replica_config *cfg,
                      struct ctl_replica **out, char *errmsg);

/* Stop in reverse (driver, ticker, REST, RPC server, service, then free
 * the API) and free r. NULL is a no-op. Blocks; not from a loop thread. */
void ctl_replica_stop(struct ctl_replica *r);

/* The running service (readiness, leadership); borrowed until
 * ctl_replica_stop. */
struct ctl_service *ctl_replica_service(const struct ctl_replica *r);

/* The client API's bound URL (the real port for port 0); valid until
 * ctl_replica_stop. */
const char *ctl_replica_client_url(const struct ctl_replica *r);

/* The REST port (the real one for port 0). */
int ctl_replica_rest_port(const struct ctl_replica *r);

/*
 * Cross-key rule of a loaded cfg with the keys raft.heartbeat and
 * raft.election_timeout that the schema cannot express: the heartbeat
 * must be below the election timeout. 0, or STRATA_ECONFIG with errmsg
 * (STRATA_ERRMSG_SIZE) naming both keys and their values.
 */
int ctl_replica_check_raft(const struct config *cfg, char *errmsg);

/* Copy in into out (size bytes) with a host "0.0.0.0" replaced by
 * 127.0.0.1: the address other local processes dial. */
void ctl_local_url(const char *in, char *out, size_t size);

/* *m = the single member of a one-replica cluster: id and its Raft,
 * client and HTTP addresses, each through ctl_local_url (copied). */
void ctl_member_local(struct ctl_member *m, uint64_t id,
                      const char *raft_listen, const char *listen,
                      const char *http_listen);

#endif /* CONTROLLER_REPLICA_H */
