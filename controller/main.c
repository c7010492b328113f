/* strata-controller: the Raft-replicated stream metadata service (client
 * API over NNG, store membership, workflow driver, REST, metrics). */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/files.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/process.h"
#include "common/rpc.h"
#include "common/version.h"
#include "controller/replica.h"

#define COMP "controller"

static const struct config_key schema[] = {
        {.name = "node.id",
         .type = CONFIG_UINT,
         .def = "1",
         .min = "1",
         .help = "Raft node id of this controller replica; must appear in "
                 "raft.members and never change."},
        {.name = "data_dir",
         .type = CONFIG_STRING,
         .def = "./data/controller",
         .help = "Directory of the Raft log and snapshots (created if "
                 "missing); a restart recovers from it."},
        {.name = "listen",
         .type = CONFIG_STRING,
         .def = "tcp://0.0.0.0:9090",
         .help = "NNG URL of the client API and of store registration "
                 "(port 0 picks a free port)."},
        RPC_KEY_LIMITS_CONNECTIONS,
        {.name = "http.listen",
         .type = CONFIG_STRING,
         .def = "http://0.0.0.0:9091",
         .help = "URL of the REST API, /health/live, /health/ready and "
                 "/metrics."},
        {.name = "raft.listen",
         .type = CONFIG_STRING,
         .def = "0.0.0.0:9190",
         .help = "IPv4:port the Raft port binds to."},
        {.name = "raft.members",
         .type = CONFIG_STRING,
         .help = "Every replica as ID=RAFT_ADDR,CLIENT_URL[,HTTP_URL] "
                 "separated by ';', e.g. \"1=10.0.0.1:9190,"
                 "tcp://10.0.0.1:9090;2=...\". Unset: a one-node cluster "
                 "of this node at raft.listen and listen (0.0.0.0 read "
                 "as 127.0.0.1)."},
        {.name = "raft.join",
         .type = CONFIG_BOOL,
         .def = "false",
         .help = "Start as a new replica of a running cluster: never "
                 "bootstrap; then add it with 'stratactl cluster "
                 "add-controller'. raft.members must list this node "
                 "and the running members."},
        {.name = "raft.election_timeout",
         .type = CONFIG_DURATION,
         .def = "1s",
         .min = "100ms",
         .max = "1m",
         .help = "Raft election timeout."},
        CTL_KEY_RAFT_HEARTBEAT,
        {.name = "raft.snapshot_bytes",
         .type = CONFIG_SIZE,
         .def = "8MiB",
         .min = "64KiB",
         .max = "1GiB",
         .help = "Take a snapshot after this many applied log bytes, so "
                 "the log stays bounded."},
        {.name = "raft.recover_after",
         .type = CONFIG_DURATION,
         .def = "30s",
         .min = "100ms",
         .max = "1h",
         .help = "A replica that left its Raft group because a write to "
                 "its log failed (full or failing disk) is restarted "
                 "in-process this long after, then at doubling intervals "
                 "up to 10m while it keeps failing; the restart reloads "
                 "the log from disk."},
        {.name = "containers.count",
         .type = CONFIG_UINT,
         .def = "4",
         .min = "1",
         .max = "65536",
         .help = "Number of segment containers, fixed for the cluster's "
                 "life; every store must use the same."},
        {.name = "store.lease",
         .type = CONFIG_DURATION,
         .def = "10s",
         .min = "1s",
         .max = "10m",
         .help = "Segment-store lease: a store that has not heartbeaten "
                 "for this long is dead and its containers move."},
        {.name = "tick.interval",
         .type = CONFIG_DURATION,
         .def = "1s",
         .min = "100ms",
         .max = "1m",
         .help = "How often the leader applies a clock tick (expires "
                 "store and transaction leases)."},
        {.name = "api.wait_timeout",
         .type = CONFIG_DURATION,
         .def = "3s",
         .min = "0ms",
         .max = "1m",
         .help = "How long a mutating call waits for its workflow to "
                 "finish before answering done=false."},
        {.name = "api.read_staleness",
         .type = CONFIG_DURATION,
         .def = "5s",
         .min = "100ms",
         .max = "1h",
         .help = "A follower answers reads only when the last leader "
                 "clock tick it applied is at most this old; else it "
                 "redirects the reader to the leader."},
        {.name = "driver.rpc_timeout",
         .type = CONFIG_DURATION,
         .def = "5s",
         .min = "100ms",
         .max = "5m",
         .help = "Timeout of one workflow call to a segment store."},
        {.name = "driver.backoff_max",
         .type = CONFIG_DURATION,
         .def = "5s",
         .min = "100ms",
         .max = "5m",
         .help = "Longest delay between retries of a failed workflow "
                 "step (starts at 100ms, doubles)."},
        CTL_KEYS_STREAM_JOBS,
        {.name = "check_config",
         .type = CONFIG_BOOL,
         .def = "false",
         .help = "Only check the configuration (keys, values, "
                 "raft.members, node.id among them): print \"configuration "
                 "OK\" and exit 0, or the error and exit 2."},
        LOG_KEY_LEVEL,
        LOG_KEY_FILE,
};
#define N_KEYS (sizeof(schema) / sizeof(schema[0]))

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: strata-controller [--config FILE] [--KEY=VALUE...]\n"
	        "\n"
	        "The Strata controller: scopes, streams, segments, "
	        "transactions and reader\ngroups in a Raft-replicated state "
	        "machine (run 1, 3 or 5 replicas), the\nworkflows that "
	        "carry changes out on the segment stores, store membership\n"
	        "and container assignment, an NNG client API, REST, health "
	        "and metrics.\nSIGINT or SIGTERM stops it. Keys (YAML file, "
	        "STRATA_* environment, flags):\n\n");
	config_print_help(schema, N_KEYS, out);
}

static int members_from_config(const struct config *cfg, struct ctl_member *m,
                               unsigned *n, char *err)
{
	const char *spec = config_get_string(cfg, "raft.members");
	if (spec != NULL) {
		return ctl_members_parse(spec, m, n, err);
	}
	ctl_member_local(m, config_get_uint(cfg, "node.id"),
	                 config_get_string(cfg, "raft.listen"),
	                 config_get_string(cfg, "listen"),
	                 config_get_string(cfg, "http.listen"));
	*n = 1;
	return 0;
}

/* Exit status for a bad configuration: 2 when only checking it
 * (--check-config, like the segment store and standalone), else 1. */
static int bad_config_status(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--check-config", 14) == 0 ||
		    strncmp(argv[i], "--check_config", 14) == 0) {
			return 2;
		}
	}
	return 1;
}

int main(int argc, char **argv)
{
	char err[STRATA_ERRMSG_SIZE];
	struct config cfg;
	int status = 1;
	if (strata_process_init(err) != 0) {
		fprintf(stderr, "strata-controller: %s\n", err);
		return 1;
	}
	int rc = config_init(&cfg, schema, N_KEYS);
	if (rc == 0) {
		rc = config_load(&cfg, argc, argv, NULL, NULL);
	}
	if (rc != 0) {
		fprintf(stderr, "strata-controller: %s\n", config_errmsg(&cfg));
		config_close(&cfg);
		return bad_config_status(argc, argv);
	}
	if (config_help_requested(&cfg)) {
		usage(stdout);
		config_close(&cfg);
		return 0;
	}
	if (config_version_requested(&cfg)) {
		strata_print_version(stdout, "strata-controller");
		config_close(&cfg);
		return 0;
	}
	int level;
	log_level_parse(config_get_string(&cfg, "log.level"), &level);
	log_set_level(level);
	if (log_open(config_get_string(&cfg, "log.file"), err) != 0) {
		fprintf(stderr, "strata-controller: log.file: %s\n", err);
		config_close(&cfg);
		return bad_config_status(argc, argv);
	}
	static struct ctl_member members[CTL_MAX_MEMBERS];
	unsigned n_members = 0;
	if (members_from_config(&cfg, members, &n_members, err) != 0) {
		fprintf(stderr, "strata-controller: %s\n", err);
		config_close(&cfg);
		return bad_config_status(argc, argv);
	}
	static const struct config_addr addrs[] = {
	        {"listen", CONFIG_ADDR_RPC, true},
	        {"http.listen", CONFIG_ADDR_HTTP, true},
	        {"raft.listen", CONFIG_ADDR_IPV4PORT, true},
	};
	if (ctl_replica_check_raft(&cfg, err) != 0 ||
	    config_check_addresses(&cfg, addrs, sizeof(addrs) / sizeof(*addrs),
	                           err) != 0) {
		fprintf(stderr, "strata-controller: %s\n", err);
		config_close(&cfg);
		return bad_config_status(argc, argv);
	}

	if (ctl_member_find(members, n_members,
	                    config_get_uint(&cfg, "node.id")) == NULL) {
		fprintf(stderr,
		        "strata-controller: node.id %" PRIu64
		        " (%s) is not in raft.members (%s); add it or fix "
		        "node.id\n",
		        config_get_uint(&cfg, "node.id"),
		        config_source(&cfg, "node.id"),
		        config_source(&cfg, "raft.members"));
		config_close(&cfg);
		return bad_config_status(argc, argv);
	}
	if (config_get_bool(&cfg, "check_config")) {
		printf("configuration OK (node %" PRIu64 ", %u members)\n",
		       config_get_uint(&cfg, "node.id"), n_members);
		config_close(&cfg);
		return 0;
	}

	LOG_INFO(COMP,
	         "strata-controller %s (commit %s) starting, node %" PRIu64,
	         strata_version(), strata_git_commit(),
	         config_get_uint(&cfg, "node.id"));
	/* SIGINT/SIGTERM are taken by sigwait below: block them before any
	 * thread starts so that every thread inherits the mask. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	struct metrics_registry *reg = NULL;
	struct ctl_replica *rep = NULL;
	int lock_fd = -1;

	if (files_lock_data_dir(config_get_string(&cfg, "data_dir"), &lock_fd,
	                        err) != 0) {
		fprintf(stderr, "strata-controller: %s\n", err);
		goto out;
	}
	if (metrics_registry_new(&reg) != 0) {
		fprintf(stderr, "strata-controller: out of memory\n");
		goto out;
	}
	metrics_register_process(reg, err);

	struct ctl_replica_config rcfg;
	memset(&rcfg, 0, sizeof(rcfg));
	rcfg.metrics = reg;
	struct ctl_service_config *sc = &rcfg.service;
	sc->node_id = config_get_uint(&cfg, "node.id");
	sc->data_dir = config_get_string(&cfg, "data_dir");
	sc->raft_listen = config_get_string(&cfg, "raft.listen");
	sc->members = members;
	sc->n_members = n_members;
	sc->container_count =
	        (uint32_t)config_get_uint(&cfg, "containers.count");
	sc->election_ms =
	        (unsigned)config_get_duration_ms(&cfg, "raft.election_timeout");
	sc->heartbeat_ms =
	        (unsigned)config_get_duration_ms(&cfg, "raft.heartbeat");
	sc->snapshot_bytes = config_get_size(&cfg, "raft.snapshot_bytes");
	sc->recover_ms =
	        (unsigned)config_get_duration_ms(&cfg, "raft.recover_after");
	sc->wait_ms =
	        (unsigned)config_get_duration_ms(&cfg, "api.wait_timeout");
	sc->join = config_get_bool(&cfg, "raft.join");
	sc->on_fatal = strata_process_fatal;
	rcfg.api.store_lease_ms = config_get_duration_ms(&cfg, "store.lease");
	rcfg.api.read_staleness_ms =
	        config_get_duration_ms(&cfg, "api.read_staleness");
	rcfg.listen = config_get_string(&cfg, "listen");
	rcfg.listen_key = "listen";
	rcfg.max_connections =
	        (unsigned)config_get_uint(&cfg, "limits.connections");
	rcfg.rest.url = config_get_string(&cfg, "http.listen");
	rcfg.rest.config_key = "http.listen";
	rcfg.tick_ms = (unsigned)config_get_duration_ms(&cfg, "tick.interval");
	rcfg.driver.rpc_timeout_ms =
	        (unsigned)config_get_duration_ms(&cfg, "driver.rpc_timeout");
	rcfg.driver.backoff_max_ms =
	        (unsigned)config_get_duration_ms(&cfg, "driver.backoff_max");
	ctl_stream_jobs_config(&cfg, &rcfg.driver);
	int src = ctl_replica_start(&rcfg, &rep, err);
	if (src != 0) {
		fprintf(stderr, "strata-controller: %s\n", err);
		/* e.g. a node.id other than the one of the data's Raft log */
		status = src == STRATA_ECONFIG ? 2 : 1;
		goto out;
	}
	uint64_t node_id = sc->node_id;
	LOG_INFO(COMP,
	         "node %" PRIu64 " serving: client %s, http port %d, %u "
	         "members",
	         node_id, ctl_replica_client_url(rep),
	         ctl_replica_rest_port(rep), n_members);
	printf("READY node=%" PRIu64 " client=%s http=%d\n", node_id,
	       ctl_replica_client_url(rep), ctl_replica_rest_port(rep));
	fflush(stdout);

	int sig = 0;
	sigwait(&sigs, &sig);
	const char *fatal = strata_process_fatal_message();
	if (fatal != NULL) {
		fprintf(stderr, "strata-controller: %s\n", fatal);
		status = 2;
		goto out;
	}
	LOG_INFO(COMP, "signal %d: shutting down", sig);
	status = 0;
out:
	ctl_replica_stop(rep);
	metrics_registry_free(reg);
	config_close(&cfg);
	log_close();
	if (lock_fd >= 0) {
		close(lock_fd);
	}
	return status;
}
