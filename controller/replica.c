/* One controller replica as a process runs it: service, client API, RPC
 * server, REST, ticker and driver started and stopped as one
 * (replica.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/config.h"
#include "common/rpc.h"
#include "controller/cluster.h"
#include "controller/replica.h"
#include "strata/error.h"

struct ctl_replica {
	struct ctl_service *svc;       /* the Raft service */
	struct ctl_api *api;           /* client API handlers */
	struct rpc_server *rpc;        /* NNG server of the API */
	struct rest *rest;             /* REST, health, metrics */
	struct cluster_ticker *ticker; /* leader clock ticks */
	struct driver *drv;            /* workflow driver */
};

int ctl_replica_check_raft(const struct config *cfg, char *errmsg)
{
	return config_check_duration_below(cfg, "raft.heartbeat",
	                                   "raft.election_timeout", errmsg);
}

void ctl_local_url(const char *in, char *out, size_t size)
{
	const char *any = strstr(in, "0.0.0.0");
	if (any == NULL) {
		snprintf(out, size, "%s", in);
		return;
	}
	snprintf(out, size, "%.*s127.0.0.1%s", (int)(any - in), in, any + 7);
}

void ctl_member_local(struct ctl_member *m, uint64_t id,
                      const char *raft_listen, const char *listen,
                      const char *http_listen)
{
	memset(m, 0, sizeof(*m));
	m->id = id;
	ctl_local_url(raft_listen, m->raft_address, sizeof(m->raft_address));
	ctl_local_url(listen, m->client_url, sizeof(m->client_url));
	ctl_local_url(http_listen, m->http_url, sizeof(m->http_url));
}

/* Every part after the service, in start order. */
static int start_parts(struct ctl_replica *r,
                       const struct ctl_replica_config *cfg, char *errmsg)
{
	struct ctl_api_config ac = cfg->api;
	ac.svc = r->svc;
	ac.metrics = cfg->metrics;
	int rc = ctl_api_new(&ac, &r->api, errmsg);
	if (rc != 0) {
		return rc;
	}
	struct rpc_server_opts ro;
	rpc_server_opts_default(&ro);
	ro.config_key = cfg->listen_key;
	if (cfg->max_connections != 0) {
		ro.max_connections = cfg->max_connections;
	}
	ro.max_connections_key = "limits.connections";
	rc = rpc_server_start(&r->rpc, cfg->listen, &ro, ctl_api_rpc_handler,
	                      r->api, errmsg);
	if (rc != 0) {
		return rc;
	}
	struct rest_config rcfg = cfg->rest;
	rcfg.svc = r->svc;
	rcfg.api = r->api;
	rcfg.metrics = cfg->metrics;
	rc = rest_start(&rcfg, &r->rest, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = cluster_ticker_start(r->svc, cfg->tick_ms, &r->ticker);
	if (rc != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "cannot start the controller ticker: %s",
		         strata_strerror(rc));
		return rc;
	}
	struct driver_config dc = cfg->driver;
	dc.svc = r->svc;
	dc.metrics = cfg->metrics;
	return driver_start(&dc, &r->drv, errmsg);
}

int ctl_replica_start(const struct ctl_replica_config *cfg,
                      struct ctl_replica **out, char *errmsg)
{
	struct ctl_replica *r = strata_malloc(sizeof(*r));
	if (r == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	memset(r, 0, sizeof(*r));
	int rc = ctl_service_start(&cfg->service, &r->svc, errmsg);
	if (rc == 0) {
		rc = start_parts(r, cfg, errmsg);
	}
	if (rc != 0) {
		ctl_replica_stop(r);
		return rc;
	}
	*out = r;
	return 0;
}

void ctl_replica_stop(struct ctl_replica *r)
{
	if (r == NULL) {
		return;
	}
	driver_stop(r->drv);
	cluster_ticker_stop(r->ticker);
	rest_stop(r->rest);
	if (r->rpc != NULL) {
		rpc_server_stop(r->rpc);
	}
	ctl_api_drain(r->api);
	ctl_service_stop(r->svc);
	cluster_ticker_free(r->ticker);
	ctl_api_free(r->api);
	strata_free(r);
}

struct ctl_service *ctl_replica_service(const struct ctl_replica *r)
{
	return r->svc;
}

const char *ctl_replica_client_url(const struct ctl_replica *r)
{
	return rpc_server_url(r->rpc);
}

int ctl_replica_rest_port(const struct ctl_replica *r)
{
	return rest_port(r->rest);
}

void ctl_stream_jobs_config(const struct config *cfg, struct driver_config *d)
{
	d->retention_ms =
	        (unsigned)config_get_duration_ms(cfg, "retention.interval");
	d->scaling_ms =
	        (unsigned)config_get_duration_ms(cfg, "scaling.interval");
	d->scaling_unit_ms = config_get_duration_ms(cfg, "scaling.unit");
	d->scaling_cooldown_ms =
	        config_get_duration_ms(cfg, "scaling.cooldown");
	d->watermark_ms =
	        (unsigned)config_get_duration_ms(cfg, "watermark.interval");
	d->writer_timeout_ms =
	        config_get_duration_ms(cfg, "watermark.writer_timeout");
}
