/* strata-segmentstore: the segment store process (containers on Raft,
 * tier-2 plugin, SS_* RPC server, membership, metrics and health). */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/config.h"
#include "common/http.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/plugin.h"
#include "common/process.h"
#include "common/rpc.h"
#include "raft/group.h"
#include "raft/metrics.h"
#include "segmentstore/cluster.h"
#include "segmentstore/server.h"
#include "strata/error.h"

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

/* Every key of strata-segmentstore (docs/configuration.md, segment store
 * section). Defaults follow DESIGN.md section 7. */
static const struct config_key schema[] = {
        {.name = "node.id",
         .type = CONFIG_UINT,
         .def = "1",
         .min = "1",
         .help = "This store's node id: > 0, unique in the cluster, stable "
                 "across restarts (it is the Raft node id of every "
                 "replica)."},
        {.name = "data_dir",
         .type = CONFIG_STRING,
         .def = "/var/lib/strata/segmentstore",
         .help = "Directory of the container replicas (Raft logs and "
                 "snapshots, one container-<id> directory each)."},
        {.name = "listen",
         .type = CONFIG_STRING,
         .def = "tcp://0.0.0.0:12345",
         .help = "NNG URL serving the segment store protocol (SS_* "
                 "requests)."},
        {.name = "advertise",
         .type = CONFIG_STRING,
         .def = "",
         .help = "Client URL other processes use to reach this store; "
                 "empty = listen with a wildcard host replaced by this "
                 "host's IPv4 address."},
        {.name = "raft.listen",
         .type = CONFIG_STRING,
         .def = "0.0.0.0:12445",
         .help = "IPv4:port of the Raft port, shared by every container "
                 "replica of this store."},
        {.name = "raft.advertise",
         .type = CONFIG_STRING,
         .def = "",
         .help = "host:port other stores use for Raft (an IPv4 "
                 "address or a DNS name, resolved at every connect); "
                 "empty = "
                 "raft.listen with a wildcard host replaced by this "
                 "host's IPv4 address. Stored in the Raft configuration: "
                 "keep it stable."},
        {.name = "raft.election_timeout",
         .type = CONFIG_DURATION,
         .def = "1s",
         .min = "100ms",
         .max = "1m",
         .help = "Raft election timeout of the container groups."},
        {.name = "raft.heartbeat_interval",
         .type = CONFIG_DURATION,
         .def = "100ms",
         .min = "10ms",
         .max = "10s",
         .help = "Raft heartbeat interval; well below the election "
                 "timeout."},
        {.name = "raft.snapshot_bytes",
         .type = CONFIG_SIZE,
         .def = "16MiB",
         .min = "64KiB",
         .max = "4GiB",
         .help = "Snapshot a container after this many bytes of log."},
        {.name = "raft.segment_bytes",
         .type = CONFIG_SIZE,
         .def = "64MiB",
         .min = "1MiB",
         .max = "4GiB",
         .help = "Size of one Raft log segment file."},
        {.name = "http.listen",
         .type = CONFIG_STRING,
         .def = "http://0.0.0.0:12346",
         .help = "HTTP URL of /metrics, /health/live and /health/ready."},
        {.name = "http.advertise",
         .type = CONFIG_STRING,
         .def = "",
         .help = "HTTP URL reported to the controller; empty = derived "
                 "from http.listen like advertise."},
        {.name = "controller",
         .type = CONFIG_STRING,
         .def = "",
         .help = "Comma-separated controller client URLs "
                 "(tcp://host:9090,...); empty = standalone: this store "
                 "hosts every container as a single-replica group."},
        {.name = "cluster.rpc_timeout",
         .type = CONFIG_DURATION,
         .def = "2s",
         .min = "100ms",
         .max = "1m",
         .help = "Timeout of one register or heartbeat call to the "
                 "controller."},
        {.name = "cluster.settle",
         .type = CONFIG_DURATION,
         .def = "3s",
         .min = "0",
         .max = "10m",
         .help = "A new container group starts only once its replica set "
                 "has been unchanged this long (stores joining together "
                 "bootstrap the same voters)."},
        {.name = "containers.count",
         .type = CONFIG_UINT,
         .def = "4",
         .min = "1",
         .max = "4096",
         .help = "Number of segment containers; fixed for the cluster's "
                 "life and equal on every process."},
        {.name = "tier2.plugin",
         .type = CONFIG_STRING,
         .def = "local",
         .help = "Tier-2 plugin: a name (local, s3, hdfs, mem, faulty) "
                 "found as tier2-<name>.so in tier2.plugin_dir, or a "
                 "path."},
        {.name = "tier2.plugin_dir",
         .type = CONFIG_STRING,
         .def = "",
         .help = "Directory of tier-2 plugins; empty = $STRATA_PLUGIN_DIR "
                 "or the install directory."},
        {.name = "tier2.options",
         .type = CONFIG_SECTION,
         .help = "Options of the tier-2 plugin (see its docs); for local, "
                 "root defaults to <data_dir>/tier2."},
        {.name = "limits.max_event",
         .type = CONFIG_SIZE,
         .def = "8MiB",
         .min = "1KiB",
         .max = "64MiB",
         .help = "Largest event payload accepted."},
        {.name = "limits.max_append",
         .type = CONFIG_SIZE,
         .def = "16320KiB",
         .min = "4KiB",
         .max = "512MiB",
         .help = "Largest append block (framed events) per request; the "
                 "same on every store."},
        {.name = "limits.max_message",
         .type = CONFIG_SIZE,
         .def = "17MiB",
         .min = "64KiB",
         .max = "1GiB",
         .help = "Largest request NNG accepts (larger ones drop the "
                 "connection); must exceed limits.max_append."},
        {.name = "limits.unflushed_budget",
         .type = CONFIG_SIZE,
         .def = "256MiB",
         .min = "1MiB",
         .help = "Per container: unflushed bytes above which appends get "
                 "back-pressure (STRATA_EAGAIN)."},
        {.name = "limits.cache_budget",
         .type = CONFIG_SIZE,
         .def = "256MiB",
         .min = "0",
         .help = "Per container: read cache of tier-2 data."},
        {.name = "limits.batch_bytes",
         .type = CONFIG_SIZE,
         .def = "256KiB",
         .min = "4KiB",
         .max = "64MiB",
         .help = "Group commit: target size of one Raft entry."},
        {.name = "limits.requests",
         .type = CONFIG_UINT,
         .def = "256",
         .min = "1",
         .max = "1024",
         .help = "Requests served at once (long-polling reads included); "
                 "memory is bounded by this times limits.max_message."},
        {.name = "flush.bytes",
         .type = CONFIG_SIZE,
         .def = "4MiB",
         .min = "1",
         .help = "Flush a segment to tier 2 once it has this many "
                 "unflushed bytes."},
        {.name = "flush.age",
         .type = CONFIG_DURATION,
         .def = "5s",
         .min = "1ms",
         .help = "... or once its oldest unflushed byte is this old."},
        {.name = "flush.chunk_bytes",
         .type = CONFIG_SIZE,
         .def = "64MiB",
         .min = "4KiB",
         .help = "Start a new tier-2 chunk at this size."},
        {.name = "shutdown.drain",
         .type = CONFIG_DURATION,
         .def = "5s",
         .min = "0",
         .max = "5m",
         .help = "On SIGTERM/SIGINT, time given to requests in flight."},
        {.name = "check_config",
         .type = CONFIG_BOOL,
         .def = "false",
         .help = "Only check the configuration (keys, values, limits, the "
                 "tier-2 plugin loads): print \"configuration OK\" and "
                 "exit 0, or the error and exit 2. Binds nothing, writes "
                 "nothing."},
        {.name = "log.level",
         .type = CONFIG_ENUM,
         .def = "info",
         .allowed = levels,
         .help = "Lowest log level written."},
        {.name = "log.file",
         .type = CONFIG_STRING,
         .def = "",
         .help = "Log file (appended); empty or - = stderr."},
};
#define N_KEYS (sizeof(schema) / sizeof(*schema))

/* The process: what main builds and tears down. */
struct app {
	struct metrics_registry *metrics;
	struct tier2 *tier2;
	struct raft_host *raft;
	struct ss_cluster *_Atomic cluster; /* NULL until started */
	struct ss_backend backend;          /* the cluster's */
	struct ss_server *server;
	struct http_server *http;
};

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
static int app_submit(void *arg, uint32_t container,
                      const struct container_request *req,
                      container_done_fn done, void *done_arg)
{
	struct app *a = arg;
	if (atomic_load(&a->cluster) == NULL) {
		return STRATA_EUNAVAIL;
	}
	return a->backend.submit(a->backend.arg, container, req, done,
	                         done_arg);
}

static void app_leader_url(void *arg, uint32_t container, char *url,
                           size_t size)
{
	struct app *a = arg;
	url[0] = '\0';
	if (atomic_load(&a->cluster) != NULL) {
		a->backend.leader_url(a->backend.arg, container, url, size);
	}
}

static int app_status(void *arg, uint32_t container,
                      struct container_status *out, char *leader, size_t size)
{
	struct app *a = arg;
	if (atomic_load(&a->cluster) == NULL) {
		return STRATA_ENOENT;
	}
	return a->backend.status(a->backend.arg, container, out, leader, size);
}

static enum http_readiness app_ready(void *arg, struct buf *detail)
{
	struct app *a = arg;
	struct ss_cluster *c = atomic_load(&a->cluster);
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

/*
 * Advertised form of a listen address "[scheme://]host:port": a wildcard
 * or empty host becomes this host's IPv4 address and port 0 the real
 * port. Returns STRATA_ECONFIG (errmsg names key) when it has no port.
 */
static int advertised(const char *listen, int real_port, const char *key,
                      char *out, size_t size, char *errmsg)
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

/* Port of "[scheme://]host:port" (0 if none). */
static int url_port(const char *url)
{
	const char *colon = strrchr(url, ':');
	return colon != NULL ? atoi(colon + 1) : 0;
}

/* tier2.options flattened, with root=<data_dir>/tier2 added for the local
 * plugin when not set. */
static int tier2_options(const struct config *cfg, char **out)
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

/* Exit status of a bad configuration: 2 under --check-config (known
 * before the configuration parses, hence the look at argv), else 1. */
static int config_status(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			break;
		}
		if (strncmp(argv[i], "--check-config", 14) == 0 ||
		    strncmp(argv[i], "--check_config", 14) == 0) {
			return 2;
		}
	}
	return 1;
}

/* Cross-key rules the schema cannot express; 0 or -1 with errmsg. */
static int check_rules(const struct config *cfg, char *errmsg)
{
	uint64_t msg = config_get_size(cfg, "limits.max_message");
	uint64_t app = config_get_size(cfg, "limits.max_append");
	uint64_t hb = config_get_duration_ms(cfg, "raft.heartbeat_interval");
	uint64_t el = config_get_duration_ms(cfg, "raft.election_timeout");
	if (msg < app + 4096) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "limits.max_message (%" PRIu64
		         ") must exceed limits.max_append (%" PRIu64
		         ") by at least 4KiB; raise limits.max_message",
		         msg, app);
		return -1;
	}
	if (hb >= el) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "raft.heartbeat_interval (%" PRIu64
		         " ms) must be below raft.election_timeout (%" PRIu64
		         " ms); lower the heartbeat or raise the timeout",
		         hb, el);
		return -1;
	}
	return 0;
}

/* --check-config: the rules above and the tier-2 plugin loads (dlopen and
 * ABI only: opening it could create directories or connect). */
static int check_only(const struct config *cfg)
{
	char err[STRATA_ERRMSG_SIZE];
	struct tier2_plugin *p = NULL;
	const char *name = config_get_string(cfg, "tier2.plugin");
	const char *pdir = config_get_string(cfg, "tier2.plugin_dir");
	int rc = tier2_load(name, pdir[0] != '\0' ? pdir : NULL, &p, err);
	if (rc != 0) {
		fprintf(stderr,
		        "strata-segmentstore: tier2.plugin '%s': %s; check "
		        "tier2.plugin and tier2.plugin_dir\n",
		        name, err);
		return 2;
	}
	tier2_unload(p);
	const char *ctl = config_get_string(cfg, "controller");
	printf("configuration OK (node %" PRIu64 ", %" PRIu64
	       " containers, tier 2 '%s', %s)\n",
	       config_get_uint(cfg, "node.id"),
	       config_get_uint(cfg, "containers.count"), name,
	       ctl[0] != '\0' ? "cluster mode" : "standalone");
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: strata-segmentstore [--config FILE] [--KEY=VALUE...]\n"
	        "\n"
	        "The Strata segment store: hosts segment containers (each a "
	        "Raft group),\nserves the segment store protocol, flushes "
	        "to tier 2. Without a\ncontroller it runs standalone. Keys "
	        "(file, STRATA_* environment, flags):\n\n");
	config_print_help(schema, N_KEYS, out);
}

int main(int argc, char **argv)
{
	char err[STRATA_ERRMSG_SIZE];
	if (strata_process_init(err) != 0) {
		fprintf(stderr, "strata-segmentstore: %s\n", err);
		return 1;
	}
	struct config cfg;
	int rc = config_init(&cfg, schema, N_KEYS);
	if (rc == 0) {
		rc = config_load(&cfg, argc, argv, NULL, NULL);
	}
	if (rc != 0) {
		fprintf(stderr, "strata-segmentstore: %s\n",
		        config_errmsg(&cfg));
		config_close(&cfg);
		return config_status(argc, argv);
	}
	if (config_help_requested(&cfg)) {
		usage(stdout);
		config_close(&cfg);
		return 0;
	}
	bool check = config_get_bool(&cfg, "check_config");
	if (check_rules(&cfg, err) != 0) {
		fprintf(stderr, "strata-segmentstore: %s\n", err);
		config_close(&cfg);
		return check ? 2 : 1;
	}
	if (check) {
		rc = check_only(&cfg);
		config_close(&cfg);
		return rc;
	}
	int level = STRATA_LOG_INFO;
	log_level_parse(config_get_string(&cfg, "log.level"), &level);
	log_set_level(level);
	const char *log_file = config_get_string(&cfg, "log.file");
	if (log_file[0] != '\0' && log_open(log_file, err) != 0) {
		fprintf(stderr, "strata-segmentstore: log.file: %s\n", err);
		config_close(&cfg);
		return 1;
	}
	/* Signals are taken synchronously below; every thread inherits the
	 * mask. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	int status = 1;
	struct app app;
	memset(&app, 0, sizeof(app));
	atomic_init(&app.cluster, NULL);
	const char *data_dir = config_get_string(&cfg, "data_dir");

	if (metrics_registry_new(&app.metrics) != 0) {
		fprintf(stderr, "strata-segmentstore: out of memory\n");
		goto out_cfg;
	}
	(void)metrics_register_process(app.metrics, NULL);
	hook_registry = app.metrics;
	tier2_set_counter_hook(tier2_counter_hook);

	/* HTTP first: liveness answers while the containers load. */
	struct http_server_config hc = {
	        .url = config_get_string(&cfg, "http.listen"),
	        .config_key = "http.listen",
	        .metrics = app.metrics,
	        .ready = app_ready,
	        .ready_arg = &app,
	};
	rc = http_server_start(&hc, &app.http, err);
	if (rc != 0) {
		fprintf(stderr, "strata-segmentstore: %s\n", err);
		goto out_metrics;
	}

	/* Tier 2. */
	char *opts = NULL;
	if (tier2_options(&cfg, &opts) != 0) {
		fprintf(stderr, "strata-segmentstore: out of memory\n");
		goto out_http;
	}
	const char *pdir = config_get_string(&cfg, "tier2.plugin_dir");
	rc = tier2_load_open(config_get_string(&cfg, "tier2.plugin"),
	                     pdir[0] != '\0' ? pdir : NULL, opts, &app.tier2,
	                     err);
	strata_free(opts);
	if (rc != 0) {
		fprintf(stderr,
		        "strata-segmentstore: tier2.plugin '%s': %s; check "
		        "tier2.plugin, tier2.plugin_dir and tier2.options\n",
		        config_get_string(&cfg, "tier2.plugin"), err);
		goto out_http;
	}

	/* Raft port. */
	struct raft_host_config rhc;
	memset(&rhc, 0, sizeof(rhc));
	rhc.bind_address = config_get_string(&cfg, "raft.listen");
	rc = raft_host_new(&rhc, &app.raft, err);
	if (rc != 0) {
		fprintf(stderr, "strata-segmentstore: raft.listen '%s': %s\n",
		        rhc.bind_address, err);
		goto out_tier2;
	}
	if (raft_host_register_metrics(app.raft, app.metrics, NULL, 0, err) !=
	    0) {
		LOG_WARN("segmentstore", "raft loop-stall metrics: %s", err);
	}

	/* RPC server (routes to the cluster once it exists). */
	struct ss_server_config sc;
	memset(&sc, 0, sizeof(sc));
	sc.listen = config_get_string(&cfg, "listen");
	sc.config_key = "listen";
	sc.n_contexts = (unsigned)config_get_uint(&cfg, "limits.requests");
	sc.max_msg_bytes = config_get_size(&cfg, "limits.max_message");
	sc.max_append_bytes = config_get_size(&cfg, "limits.max_append");
	sc.drain_ms = (unsigned)config_get_duration_ms(&cfg, "shutdown.drain");
	if (sc.drain_ms == 0) {
		sc.drain_ms = 1;
	}
	sc.backend.arg = &app;
	sc.backend.container_count =
	        (uint32_t)config_get_uint(&cfg, "containers.count");
	sc.backend.submit = app_submit;
	sc.backend.leader_url = app_leader_url;
	sc.backend.status = app_status;
	sc.metrics = app.metrics;
	rc = ss_server_start(&sc, &app.server, err);
	if (rc != 0) {
		fprintf(stderr, "strata-segmentstore: %s\n", err);
		goto out_raft;
	}

	/* Advertised addresses. */
	char client_url[RPC_MAX_URL_LEN], raft_addr[64], http_url[256];
	const char *adv = config_get_string(&cfg, "advertise");
	const char *radv = config_get_string(&cfg, "raft.advertise");
	const char *hadv = config_get_string(&cfg, "http.advertise");
	rc = 0;
	if (adv[0] != '\0') {
		snprintf(client_url, sizeof(client_url), "%s", adv);
	} else {
		rc = advertised(ss_server_url(app.server),
		                url_port(ss_server_url(app.server)), "listen",
		                client_url, sizeof(client_url), err);
	}
	if (rc == 0 && radv[0] != '\0') {
		snprintf(raft_addr, sizeof(raft_addr), "%s", radv);
	} else if (rc == 0) {
		rc = advertised(rhc.bind_address, raft_host_port(app.raft),
		                "raft.listen", raft_addr, sizeof(raft_addr),
		                err);
	}
	if (rc == 0 && hadv[0] != '\0') {
		snprintf(http_url, sizeof(http_url), "%s", hadv);
	} else if (rc == 0) {
		rc = advertised(hc.url, http_server_port(app.http),
		                "http.listen", http_url, sizeof(http_url), err);
	}
	if (rc != 0) {
		fprintf(stderr, "strata-segmentstore: %s\n", err);
		goto out_server;
	}

	/* Containers. */
	struct ss_cluster_config cc;
	memset(&cc, 0, sizeof(cc));
	cc.node_id = config_get_uint(&cfg, "node.id");
	cc.data_dir = data_dir;
	cc.client_url = client_url;
	cc.raft_address = raft_addr;
	cc.http_url = http_url;
	cc.controllers = config_get_string(&cfg, "controller");
	cc.container_count = sc.backend.container_count;
	cc.host = app.raft;
	cc.metrics = app.metrics;
	cc.rpc_timeout_ms =
	        (unsigned)config_get_duration_ms(&cfg, "cluster.rpc_timeout");
	cc.settle_ms = (unsigned)config_get_duration_ms(&cfg, "cluster.settle");
	if (cc.settle_ms == 0) {
		cc.settle_ms = 1;
	}
	struct container_config *t = &cc.tmpl;
	t->election_ms =
	        (unsigned)config_get_duration_ms(&cfg, "raft.election_timeout");
	t->heartbeat_ms = (unsigned)config_get_duration_ms(
	        &cfg, "raft.heartbeat_interval");
	t->snapshot_bytes = config_get_size(&cfg, "raft.snapshot_bytes");
	t->segment_bytes = config_get_size(&cfg, "raft.segment_bytes");
	t->max_event_bytes = config_get_size(&cfg, "limits.max_event");
	t->max_append_bytes = sc.max_append_bytes;
	t->batch_bytes = config_get_size(&cfg, "limits.batch_bytes");
	t->unflushed_budget = config_get_size(&cfg, "limits.unflushed_budget");
	t->cache_budget = config_get_size(&cfg, "limits.cache_budget");
	t->tier2 = app.tier2;
	t->flush_bytes = config_get_size(&cfg, "flush.bytes");
	t->flush_age_ms = config_get_duration_ms(&cfg, "flush.age");
	t->chunk_bytes = config_get_size(&cfg, "flush.chunk_bytes");
	struct ss_cluster *cluster = NULL;
	rc = ss_cluster_start(&cc, &cluster, err);
	if (rc != 0) {
		fprintf(stderr, "strata-segmentstore: %s\n", err);
		goto out_server;
	}
	ss_cluster_backend(cluster, &app.backend);
	atomic_store(&app.cluster, cluster);

	LOG_INFO("segmentstore",
	         "node %" PRIu64 " up: client %s, raft %s, http %s, %" PRIu32
	         " containers, tier 2 '%s', %s",
	         cc.node_id, client_url, raft_addr, http_url,
	         cc.container_count, tier2_name(app.tier2),
	         cc.controllers[0] != '\0' ? "cluster mode" : "standalone");
	/* One machine-readable line for scripts and tests. */
	printf("strata-segmentstore ready node=%" PRIu64
	       " client=%s raft=%s http=%s\n",
	       cc.node_id, client_url, raft_addr, http_url);
	fflush(stdout);

	int sig = 0;
	while (sigwait(&sigs, &sig) != 0) {
	}
	LOG_INFO("segmentstore", "%s received: shutting down",
	         sig == SIGINT ? "SIGINT" : "SIGTERM");
	status = 0;

	/* Teardown: no new requests, no scrapes (metric callbacks read the
	 * cluster), then no containers. */
	ss_server_stop(app.server);
	app.server = NULL;
	http_server_stop(app.http);
	app.http = NULL;
	atomic_store(&app.cluster, NULL);
	ss_cluster_stop(cluster);
out_server:
	if (app.server != NULL) {
		ss_server_stop(app.server);
	}
out_raft:
	raft_host_free(app.raft);
out_tier2:
	tier2_close(app.tier2);
out_http:
	http_server_stop(app.http);
out_metrics:
	tier2_set_counter_hook(NULL);
	hook_registry = NULL;
	metrics_registry_free(app.metrics);
	raft_metrics_forget(app.metrics);
out_cfg:
	config_close(&cfg);
	if (status == 0) {
		LOG_INFO("segmentstore", "stopped cleanly");
	}
	log_close();
	return status;
}
