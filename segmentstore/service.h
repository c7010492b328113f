/* The segment store half of a process (strata-segmentstore, and
 * strata-standalone beside a controller): HTTP, tier 2, Raft port, SS_*
 * server, advertised addresses and container membership, started and
 * stopped as one; plus the config helpers both binaries share. */
#ifndef SEGMENTSTORE_SERVICE_H
#define SEGMENTSTORE_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/http.h"
#include "segmentstore/cluster.h"
#include "segmentstore/server.h"

struct config;
struct metrics_registry;

/*
 * What to start. Strings are borrowed for the duration of
 * ss_service_start only. Every *_key names the config key of the address
 * beside it, for error messages.
 */
struct ss_service_config {
	struct metrics_registry *metrics; /* borrowed until ss_service_stop;
	                                   * required */
	const char *http_listen;          /* metrics/health URL to bind */
	const char *http_key;             /* e.g. "http.listen" */
	const char *http_advertise; /* NULL or "" = derived from http_listen */
	const char *tier2_plugin;   /* name or path (tier2_load_open) */
	const char *tier2_plugin_dir; /* NULL = the default search */
	const char *tier2_options;    /* flattened key=value lines; NULL ok */
	const char *raft_listen;      /* Raft port, "IPv4:port" */
	const char *raft_key;         /* e.g. "raft.listen" */
	const char *raft_advertise;   /* NULL or "" = derived */
	bool raft_metrics;     /* register the Raft port's loop-stall metrics */
	const char *advertise; /* client URL; NULL or "" = derived from the
	                        * server's bound URL */
	struct ss_server_config server;   /* everything but backend.arg,
	                                   * submit, leader_url, status and
	                                   * metrics, which are set here */
	struct ss_cluster_config cluster; /* everything but client_url,
	                                   * raft_address, http_url, host,
	                                   * metrics, container_count and
	                                   * tmpl.tier2, which are set here */
};

struct ss_service;

/*
 * Start, in this order, the HTTP server (liveness answers while the
 * containers load; readiness is ss_service_ready), tier 2, the Raft port,
 * the SS_* server (STRATA_EUNAVAIL until the containers exist), then the
 * containers (ss_cluster_start) with the advertised addresses. Installs
 * the tier-2 counter hook (strata_tier2_plugin_events_total in
 * cfg->metrics). *out is freed by ss_service_stop. On error everything
 * started is stopped again and errmsg (STRATA_ERRMSG_SIZE) says what
 * failed, naming the key to change. Errors: those of http_server_start,
 * tier2_load_open, raft_host_new, ss_server_start, ss_cluster_start;
 * STRATA_ECONFIG (a listen address without a port); STRATA_ENOMEM.
 */
int ss_service_start(const struct ss_service_config *cfg,
                     struct ss_service **out, char *errmsg);

/*
 * Stop in the order that keeps every borrowed pointer valid: no new
 * requests, no scrapes (metric callbacks read the cluster), then the
 * containers, the Raft port and tier 2; remove the counter hook and free
 * s. NULL is a no-op. Blocks. The metrics registry stays the caller's.
 */
void ss_service_stop(struct ss_service *s);

/* Advertised client URL, Raft address and HTTP URL; valid until
 * ss_service_stop. */
const char *ss_service_client_url(const struct ss_service *s);
const char *ss_service_raft_address(const struct ss_service *s);
const char *ss_service_http_url(const struct ss_service *s);

/* Name of the tier-2 plugin in use; valid until ss_service_stop. */
const char *ss_service_tier2_name(const struct ss_service *s);

/* Readiness (an http_ready_fn; arg is the service): "starting" until the
 * containers exist, then ss_cluster_ready. */
enum http_readiness ss_service_ready(void *arg, struct buf *detail);

/* Port of "[scheme://]host:port", or -1 when it has none or it is not a
 * number in 0..65535. */
int ss_url_port(const char *url);

/*
 * Advertised form of a listen address "[scheme://]host:port" into out
 * (size bytes): a wildcard ("0.0.0.0", "*") or empty host becomes this
 * host's first IPv4 address, the port real_port. STRATA_ECONFIG when
 * listen has no port or too long a host; errmsg names key.
 */
int ss_advertised(const char *listen, int real_port, const char *key, char *out,
                  size_t size, char *errmsg);

/*
 * The keys tier2.options flattened (config_section_flatten), with
 * root=<data_dir>/tier2 added when tier2.plugin is "local" and no root is
 * set. *out is strata_malloc'd, the caller frees it. Errors: STRATA_ENOMEM.
 */
int ss_tier2_options(const struct config *cfg, char **out);

/*
 * --check-config's tier-2 part: load tier2.plugin from plugin_dir (NULL =
 * the install directory) and check the options the server would open it
 * with (ss_tier2_options), without side effects. 0 with *checked true, or
 * 0 with *checked false when the plugin offers no check (older ABI);
 * otherwise the loader's or plugin's error, errmsg naming the keys to fix.
 */
int ss_check_tier2(const struct config *cfg, const char *plugin_dir,
                   bool *checked, char *errmsg);

#endif /* SEGMENTSTORE_SERVICE_H */
