/* The segment store half of a process: starts and stops HTTP, tier 2, the
 * Raft port, the SS_* server and the containers as one (service.h). */

/*
 * Happy path: ss_service_start binds HTTP (live at once, "starting" for
 * readiness), opens tier 2, binds the Raft port and the SS_* server (which
 * answers STRATA_EUNAVAIL until the cluster exists), works out the
 * advertised addresses, then starts the cluster and publishes it to the
 * server and readiness through an atomic pointer. ss_service_stop undoes
 * it in reverse: server, HTTP, cluster, Raft port, tier 2.
 *
 * Failure modes: any step failing stops the steps before it (the same
 * path as ss_service_stop) and returns its error with errmsg naming the
 * config key involved.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/config.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/plugin.h"
#include "common/rpc.h"
#include "raft/group.h"
#include "raft/metrics.h"
#include "segmentstore/service.h"
#include "strata/error.h"

struct ss_service {
	struct metrics_registry *metrics;   /* borrowed */
	struct http_server *http;           /* metrics and health */
	struct tier2 *tier2;                /* the plugin instance */
	struct raft_host *raft;             /* Raft port of every replica */
	struct ss_server *server;           /* SS_* requests */
	struct ss_cluster *_Atomic cluster; /* NULL until started */
	struct ss_backend backend;          /* the cluster's */
	char client_url[RPC_MAX_URL_LEN];   /* advertised addresses */
	char raft_address[64];
	char http_url[256];
};

/* Registry of the counter hook (one segment store per process). */
static struct metrics_registry *hook_registry;

/* Plugin counters (host->counter_add) as strata_tier2_plugin_events_total.
 */
static void tier2_counter_hook(const char *plugin, const char *name,
                               uint64_t delta)
{
	struct metrics_label l[2] = {{"plugin", plugin}, {"counter", name}};
	struct metrics_counter *c = NULL;
	if (hook_registry != NULL &&
	    metrics_counter_register(hook_registry,
	                             "strata_tier2_plugin_events_total",
	                             "Counters reported by the tier-2 plugin.",
	                             l, 2, &c, NULL) == 0) {
		metrics_counter_add(c, delta);
	}
}

/* Backend seen by the server: the cluster's once it exists. */
static int service_submit(void *arg, uint32_t container,
                          const struct container_request *req,
                          container_done_fn done, void *done_arg)
{
	struct ss_service *s = arg;
	if (atomic_load(&s->cluster) == NULL) {
		return STRATA_EUNAVAIL;
	}
	return s->backend.submit(s->backend.arg, container, req, done,
	                         done_arg);
}

static void service_leader_url(void *arg, uint32_t container, char *url,
                               size_t size)
{
	struct ss_service *s = arg;
	url[0] = '\0';
	if (atomic_load(&s->cluster) != NULL) {
		s->backend.leader_url(s->backend.arg, container, url, size);
	}
}

static int service_status(void *arg, uint32_t container,
                          struct container_status *out, char *leader,
                          size_t size)
{
	struct ss_service *s = arg;
	if (atomic_load(&s->cluster) == NULL) {
		return STRATA_ENOENT;
	}
	return s->backend.status(s->backend.arg, container, out, leader, size);
}

enum http_readiness ss_service_ready(void *arg, struct buf *detail)
{
	struct ss_service *s = arg;
	struct ss_cluster *c = atomic_load(&s->cluster);
	if (c == NULL) {
		(void)buf_printf(detail, "\"starting\"");
		return HTTP_NOT_READY;
	}
	return ss_cluster_ready(c, detail);
}

/* This host's first IPv4 address (for wildcard listen addresses). */
static void host_ipv4(char *out, size_t size)
{
	char name[256];
	snprintf(out, size, "127.0.0.1");
	if (gethostname(name, sizeof(name)) != 0) {
		return;
	}
	name[sizeof(name) - 1] = '\0';
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	struct addrinfo *res = NULL;
	if (getaddrinfo(name, NULL, &hints, &res) != 0 || res == NULL) {
		return;
	}
	const struct sockaddr_in *sin = (const void *)res->ai_addr;
	inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)size);
	freeaddrinfo(res);
}

int ss_url_port(const char *url)
{
	const char *sep = strstr(url, "://");
	const char *host = sep != NULL ? sep + 3 : url;
	const char *colon = strrchr(host, ':');
	if (colon == NULL || colon[1] == '\0') {
		return -1;
	}
	char *end = NULL;
	long p = strtol(colon + 1, &end, 10);
	if (*end != '\0' && *end != '/') {
		return -1;
	}
	return p >= 0 && p <= 65535 ? (int)p : -1;
}

int ss_advertised(const char *listen, int real_port, const char *key, char *out,
                  size_t size, char *errmsg)
{
	const char *sep = strstr(listen, "://");
	const char *host = sep != NULL ? sep + 3 : listen;
	const char *colon = strrchr(host, ':');
	if (colon == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "%s: '%s' has no port; write host:port", key, listen);
		return STRATA_ECONFIG;
	}
	char h[128];
	size_t hl = (size_t)(colon - host);
	if (hl >= sizeof(h)) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "%s: host of '%s' is too long", key, listen);
		return STRATA_ECONFIG;
	}
	memcpy(h, host, hl);
	h[hl] = '\0';
	if (hl == 0 || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "*") == 0) {
		host_ipv4(h, sizeof(h));
	}
	snprintf(out, size, "%.*s%s:%d",
	         sep != NULL ? (int)(sep + 3 - listen) : 0, listen, h,
	         real_port);
	return 0;
}

int ss_tier2_options(const struct config *cfg, char **out)
{
	char *opts = NULL;
	int rc = config_section_flatten(cfg, "tier2.options", &opts);
	if (rc != 0) {
		return rc;
	}
	const char *plugin = config_get_string(cfg, "tier2.plugin");
	bool has_root = strncmp(opts, "root=", 5) == 0 ||
	                strstr(opts, "\nroot=") != NULL;
	if (strcmp(plugin, "local") == 0 && !has_root) {
		const char *dir = config_get_string(cfg, "data_dir");
		size_t n = strlen(opts) + strlen(dir) + 32;
		char *more = strata_malloc(n);
		if (more == NULL) {
			strata_free(opts);
			return STRATA_ENOMEM;
		}
		snprintf(more, n, "%sroot=%s/tier2\n", opts, dir);
		strata_free(opts);
		opts = more;
	}
	*out = opts;
	return 0;
}

int ss_check_tier2(const struct config *cfg, const char *plugin_dir,
                   bool *checked, char *errmsg)
{
	*checked = false;
	const char *name = config_get_string(cfg, "tier2.plugin");
	char err[STRATA_ERRMSG_SIZE];
	struct tier2_plugin *p = NULL;
	int rc = tier2_load(name, plugin_dir, &p, err);
	if (rc != 0) {
		/* The loader's message names the file and the keys. */
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "%s", err);
		return rc;
	}
	char *opts = NULL;
	rc = ss_tier2_options(cfg, &opts);
	if (rc != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		goto out;
	}
	rc = tier2_check(p, opts, err);
	if (rc == STRATA_ENOTSUP) {
		rc = 0;
	} else if (rc == 0) {
		*checked = true;
	} else {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "tier2.options: %.180s; fix tier2.options", err);
	}
out:
	strata_free(opts);
	tier2_unload(p);
	return rc;
}

/* Copy of given into out when set, else the advertised form of listen. */
static int pick_address(const char *given, const char *listen, int port,
                        const char *key, char *out, size_t size, char *errmsg)
{
	if (given != NULL && given[0] != '\0') {
		snprintf(out, size, "%s", given);
		return 0;
	}
	return ss_advertised(listen, port, key, out, size, errmsg);
}

/* Everything after HTTP: tier 2, Raft port, server, addresses, cluster. */
static int start_rest(struct ss_service *s, const struct ss_service_config *cfg,
                      char *errmsg)
{
	char err[STRATA_ERRMSG_SIZE]; /* a part's error, wrapped into errmsg */
	int rc = tier2_load_open(cfg->tier2_plugin, cfg->tier2_plugin_dir,
	                         cfg->tier2_options, &s->tier2, err);
	if (rc == STRATA_EPLUGIN) {
		/* The loader's message names the file and the keys. */
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "%s", err);
		return rc;
	}
	if (rc != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "tier2.plugin '%.64s': %.117s; check tier2.plugin, "
		         "tier2.plugin_dir and tier2.options",
		         cfg->tier2_plugin, err);
		return rc;
	}

	struct raft_host_config rhc;
	memset(&rhc, 0, sizeof(rhc));
	rhc.bind_address = cfg->raft_listen;
	rc = raft_host_new(&rhc, &s->raft, err);
	if (rc != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "%.40s '%.64s': %.140s",
		         cfg->raft_key, cfg->raft_listen, err);
		return rc;
	}
	if (cfg->raft_metrics &&
	    raft_host_register_metrics(s->raft, s->metrics, NULL, 0, err) !=
	            0) {
		LOG_WARN("segmentstore", "raft loop-stall metrics: %s", err);
	}

	struct ss_server_config sc = cfg->server;
	sc.backend.arg = s;
	sc.backend.submit = service_submit;
	sc.backend.leader_url = service_leader_url;
	sc.backend.status = service_status;
	sc.metrics = s->metrics;
	rc = ss_server_start(&sc, &s->server, errmsg);
	if (rc != 0) {
		return rc;
	}

	const char *url = ss_server_url(s->server);
	rc = pick_address(cfg->advertise, url, ss_url_port(url), sc.config_key,
	                  s->client_url, sizeof(s->client_url), errmsg);
	if (rc == 0) {
		rc = pick_address(cfg->raft_advertise, cfg->raft_listen,
		                  raft_host_port(s->raft), cfg->raft_key,
		                  s->raft_address, sizeof(s->raft_address),
		                  errmsg);
	}
	if (rc == 0) {
		rc = pick_address(cfg->http_advertise, cfg->http_listen,
		                  http_server_port(s->http), cfg->http_key,
		                  s->http_url, sizeof(s->http_url), errmsg);
	}
	if (rc != 0) {
		return rc;
	}

	struct ss_cluster_config cc = cfg->cluster;
	cc.client_url = s->client_url;
	cc.raft_address = s->raft_address;
	cc.http_url = s->http_url;
	cc.container_count = sc.backend.container_count;
	cc.host = s->raft;
	cc.metrics = s->metrics;
	cc.tmpl.tier2 = s->tier2;
	struct ss_cluster *cluster = NULL;
	rc = ss_cluster_start(&cc, &cluster, errmsg);
	if (rc != 0) {
		return rc;
	}
	ss_cluster_backend(cluster, &s->backend);
	atomic_store(&s->cluster, cluster);
	return 0;
}

int ss_service_start(const struct ss_service_config *cfg,
                     struct ss_service **out, char *errmsg)
{
	struct ss_service *s = strata_malloc(sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "out of memory");
		return STRATA_ENOMEM;
	}
	memset(s, 0, sizeof(*s));
	atomic_init(&s->cluster, NULL);
	s->metrics = cfg->metrics;
	hook_registry = cfg->metrics;
	tier2_set_counter_hook(tier2_counter_hook);

	/* HTTP first: liveness answers while the containers load. */
	struct http_server_config hc = {
	        .url = cfg->http_listen,
	        .config_key = cfg->http_key,
	        .metrics = cfg->metrics,
	        .ready = ss_service_ready,
	        .ready_arg = s,
	};
	int rc = http_server_start(&hc, &s->http, errmsg);
	if (rc == 0) {
		rc = start_rest(s, cfg, errmsg);
	}
	if (rc != 0) {
		ss_service_stop(s);
		return rc;
	}
	*out = s;
	return 0;
}

void ss_service_stop(struct ss_service *s)
{
	if (s == NULL) {
		return;
	}
	ss_server_stop(s->server);
	http_server_stop(s->http);
	ss_cluster_stop(atomic_exchange(&s->cluster, NULL));
	raft_host_free(s->raft);
	tier2_close(s->tier2);
	tier2_set_counter_hook(NULL);
	hook_registry = NULL;
	strata_free(s);
}

const char *ss_service_client_url(const struct ss_service *s)
{
	return s->client_url;
}

const char *ss_service_raft_address(const struct ss_service *s)
{
	return s->raft_address;
}

const char *ss_service_http_url(const struct ss_service *s)
{
	return s->http_url;
}

const char *ss_service_tier2_name(const struct ss_service *s)
{
	return tier2_name(s->tier2);
}
