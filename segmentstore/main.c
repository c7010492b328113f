/* strata-segmentstore: the segment store process (containers on Raft,
 * tier-2 plugin, SS_* RPC server, membership, metrics and health). */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/config.h"
#include "common/files.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/plugin.h"
#include "common/process.h"
#include "raft/metrics.h"
#include "common/rpc.h"
#include "common/version.h"
#include "segmentstore/options.h"
#include "segmentstore/service.h"
#include "strata/error.h"

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
        {.name = "raft.heartbeat",
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
        SS_KEY_CONTAINERS_RECOVER_AFTER,
        {.name = "tier2.plugin",
         .type = CONFIG_STRING,
         .def = "local",
         .help = "Tier-2 plugin: a name (local, s3, hdfs, mem, faulty) "
                 "found as tier2-<name>.so in tier2.plugin_dir, or a "
                 "path."},
        {.name = "tier2.plugin_dir",
         .type = CONFIG_STRING,
         .def = "",
         .help = "Directory of tier-2 plugins; empty = $STRATA_PLUGIN_DIR, "
                 "else ../plugins or ../lib/strata/plugins next to this "
                 "binary, else the install directory."},
        {.name = "tier2.options",
         .type = CONFIG_SECTION,
         .help = "Options of the tier-2 plugin (see its docs); for local, "
                 "root defaults to <data_dir>/tier2."},
        SS_KEY_LIMITS_MAX_EVENT,
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
        RPC_KEY_LIMITS_CONNECTIONS,
        SS_KEY_FLUSH_BYTES,
        SS_KEY_FLUSH_AGE,
        SS_KEY_FLUSH_CHUNK_BYTES,
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
        LOG_KEY_LEVEL,
        {.name = "log.file",
         .type = CONFIG_STRING,
         .def = "",
         .help = "Log file (appended); empty or - = stderr."},
};
#define N_KEYS (sizeof(schema) / sizeof(*schema))

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

/* Cross-key rules the schema cannot express; 0 or STRATA_ECONFIG with
 * errmsg. */
static int check_rules(const struct config *cfg, char *errmsg)
{
	static const struct config_addr addrs[] = {
	        {"listen", CONFIG_ADDR_RPC, true},
	        {"http.listen", CONFIG_ADDR_HTTP, true},
	        {"raft.listen", CONFIG_ADDR_IPV4PORT, true},
	        {"advertise", CONFIG_ADDR_RPC, false},
	        {"http.advertise", CONFIG_ADDR_HTTP, false},
	        {"raft.advertise", CONFIG_ADDR_HOSTPORT, false},
	        {"controller", CONFIG_ADDR_RPC_LIST, false},
	};
	int rc = ss_options_check(cfg, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = config_check_addresses(cfg, addrs, sizeof(addrs) / sizeof(*addrs),
	                            errmsg);
	if (rc != 0) {
		return rc;
	}
	return config_check_duration_below(cfg, "raft.heartbeat",
	                                   "raft.election_timeout", errmsg);
}

/* --check-config: the rules above, the tier-2 plugin loads (dlopen and
 * ABI) and its options pass its check (no directory created, nothing
 * connected). */
static int check_only(const struct config *cfg)
{
	char err[STRATA_ERRMSG_SIZE];
	const char *pdir = config_get_string(cfg, "tier2.plugin_dir");
	bool checked;
	if (ss_check_tier2(cfg, pdir[0] != '\0' ? pdir : NULL, &checked, err) !=
	    0) {
		fprintf(stderr, "strata-segmentstore: %s\n", err);
		return 2;
	}
	const char *ctl = config_get_string(cfg, "controller");
	printf("configuration OK (node %" PRIu64 ", %" PRIu64
	       " containers, tier 2 '%s'%s, %s)\n",
	       config_get_uint(cfg, "node.id"),
	       config_get_uint(cfg, "containers.count"),
	       config_get_string(cfg, "tier2.plugin"),
	       checked ? ""
	               : " (its options not checked: the plugin has no "
	                 "check)",
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
	if (config_version_requested(&cfg)) {
		strata_print_version(stdout, "strata-segmentstore");
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
	LOG_INFO("segmentstore",
	         "strata-segmentstore %s (commit %s) starting, node %" PRIu64,
	         strata_version(), strata_git_commit(),
	         config_get_uint(&cfg, "node.id"));
	/* Signals are taken synchronously below; every thread inherits the
	 * mask. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	int status = 1;
	struct metrics_registry *metrics = NULL;
	struct ss_service *svc = NULL;
	char *opts = NULL;
	int lock_fd = -1;
	if (files_lock_data_dir(config_get_string(&cfg, "data_dir"), &lock_fd,
	                        err) != 0) {
		fprintf(stderr, "strata-segmentstore: %s\n", err);
		goto out_cfg;
	}
	if (metrics_registry_new(&metrics) != 0) {
		fprintf(stderr, "strata-segmentstore: out of memory\n");
		goto out_cfg;
	}
	(void)metrics_register_process(metrics, NULL);
	if (ss_tier2_options(&cfg, &opts) != 0) {
		fprintf(stderr, "strata-segmentstore: out of memory\n");
		goto out_metrics;
	}
	const char *pdir = config_get_string(&cfg, "tier2.plugin_dir");
	struct ss_service_config sc = {
	        .metrics = metrics,
	        .http_listen = config_get_string(&cfg, "http.listen"),
	        .http_key = "http.listen",
	        .http_advertise = config_get_string(&cfg, "http.advertise"),
	        .tier2_plugin = config_get_string(&cfg, "tier2.plugin"),
	        .tier2_plugin_dir = pdir[0] != '\0' ? pdir : NULL,
	        .tier2_options = opts,
	        .raft_listen = config_get_string(&cfg, "raft.listen"),
	        .raft_key = "raft.listen",
	        .raft_advertise = config_get_string(&cfg, "raft.advertise"),
	        .raft_metrics = true,
	        .advertise = config_get_string(&cfg, "advertise"),
	};
	ss_options_read(&cfg, &sc);
	sc.server.listen = config_get_string(&cfg, "listen");
	sc.server.config_key = "listen";
	sc.server.drain_ms =
	        (unsigned)config_get_duration_ms(&cfg, "shutdown.drain");
	if (sc.server.drain_ms == 0) {
		sc.server.drain_ms = 1;
	}
	struct ss_cluster_config *cc = &sc.cluster;
	cc->data_dir = config_get_string(&cfg, "data_dir");
	cc->controllers = config_get_string(&cfg, "controller");
	cc->on_fatal = strata_process_fatal;
	cc->rpc_timeout_ms =
	        (unsigned)config_get_duration_ms(&cfg, "cluster.rpc_timeout");
	cc->settle_ms =
	        (unsigned)config_get_duration_ms(&cfg, "cluster.settle");
	if (cc->settle_ms == 0) {
		cc->settle_ms = 1;
	}
	struct container_config *t = &cc->tmpl;
	t->heartbeat_ms =
	        (unsigned)config_get_duration_ms(&cfg, "raft.heartbeat");
	t->snapshot_bytes = config_get_size(&cfg, "raft.snapshot_bytes");
	t->segment_bytes = config_get_size(&cfg, "raft.segment_bytes");
	t->batch_bytes = config_get_size(&cfg, "limits.batch_bytes");
	rc = ss_service_start(&sc, &svc, err);
	strata_free(opts);
	if (rc != 0) {
		fprintf(stderr, "strata-segmentstore: %s\n", err);
		goto out_metrics;
	}

	LOG_INFO("segmentstore",
	         "node %" PRIu64 " up: client %s, raft %s, http %s, %" PRIu32
	         " containers, tier 2 '%s', %s",
	         cc->node_id, ss_service_client_url(svc),
	         ss_service_raft_address(svc), ss_service_http_url(svc),
	         sc.server.backend.container_count, ss_service_tier2_name(svc),
	         cc->controllers[0] != '\0' ? "cluster mode" : "standalone");
	/* One machine-readable line for scripts and tests. */
	printf("strata-segmentstore ready node=%" PRIu64
	       " client=%s raft=%s http=%s\n",
	       cc->node_id, ss_service_client_url(svc),
	       ss_service_raft_address(svc), ss_service_http_url(svc));
	fflush(stdout);

	int sig = 0;
	while (sigwait(&sigs, &sig) != 0) {
	}
	const char *fatal = strata_process_fatal_message();
	if (fatal != NULL) {
		fprintf(stderr, "strata-segmentstore: %s\n", fatal);
		status = 2;
	} else {
		LOG_INFO("segmentstore", "%s received: shutting down",
		         sig == SIGINT ? "SIGINT" : "SIGTERM");
		status = 0;
	}
	ss_service_stop(svc);
out_metrics:
	metrics_registry_free(metrics);
	raft_metrics_forget(metrics);
out_cfg:
	config_close(&cfg);
	if (status == 0) {
		LOG_INFO("segmentstore", "stopped cleanly");
	}
	log_close();
	if (lock_fd >= 0) {
		close(lock_fd);
	}
	return status;
}
