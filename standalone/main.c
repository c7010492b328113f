/* strata-standalone: a controller and a segment store in one process, with
 * a local tier-2 directory and defaults that need no config file. */

/*
 * Happy path: load the config (defaults, optional YAML, STRATA_*, flags),
 * lock the data directory, start the controller (single-replica Raft
 * group, client API, REST, ticker, workflow driver), then the segment
 * store (tier 2, Raft port, SS_* server, membership pointed at the
 * in-process controller's client URL), wait until the controller leads
 * and every container has a leader, print the ready line and the two
 * stratactl commands of a first event, and serve until SIGINT/SIGTERM.
 * Teardown runs in reverse: store first (it unregisters from the still
 * running controller), then the controller.
 *
 * Failure modes: a bad config or --check-config finding exits 2 before
 * anything binds; a port in use, an unusable data directory or tier-2
 * plugin, or a data directory held by another process exit 1 with a
 * message naming the key to change.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/config.h"
#include "common/files.h"
#include "common/http.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/plugin.h"
#include "common/process.h"
#include "common/rpc.h"
#include "common/version.h"
#include "controller/replica.h"
#include "raft/metrics.h"
#include "segmentstore/options.h"
#include "segmentstore/service.h"
#include "strata/error.h"
#include "strata/v1/cluster.pb-c.h"

#define COMP "standalone"
#define PROG "strata-standalone"
#define CLUSTER_STATUS_METHOD 304u /* cluster.proto CLUSTER_STATUS */

/* Exit codes (docs/operations.md, strata-standalone). */
#define EXIT_RUNTIME 1 /* could not start: port, data dir, plugin */
#define EXIT_CONFIG 2  /* bad configuration (also --check-config) */

/* Every key of strata-standalone (docs/operations.md). Controller keys
 * keep the names strata-controller uses; segment store keys carry the
 * prefix "store." where the two would collide. */
static const struct config_key schema[] = {
        {.name = "node.id",
         .type = CONFIG_UINT,
         .def = "1",
         .min = "1",
         .help = "Node id of the controller replica and of the segment "
                 "store; keep it stable across restarts."},
        {.name = "data_dir",
         .type = CONFIG_STRING,
         .def = "./strata-data",
         .help = "Directory of all state: controller/ (Raft log), "
                 "segmentstore/ (container logs) and tier2/ (the local "
                 "tier-2 root unless tier2.options.root is set). Created "
                 "if missing; one process at a time."},
        {.name = "listen",
         .type = CONFIG_STRING,
         .def = "tcp://127.0.0.1:9090",
         .help = "NNG URL of the controller client API (what stratactl "
                 "and libstrata connect to)."},
        {.name = "http.listen",
         .type = CONFIG_STRING,
         .def = "http://127.0.0.1:9091",
         .help = "Controller REST API, /health/live, /health/ready and "
                 "/metrics (every metric of the process)."},
        {.name = "raft.listen",
         .type = CONFIG_STRING,
         .def = "127.0.0.1:9190",
         .help = "IPv4:port of the controller's Raft port."},
        {.name = "raft.election_timeout",
         .type = CONFIG_DURATION,
         .def = "1s",
         .min = "100ms",
         .max = "1m",
         .help = "Raft election timeout (controller and containers)."},
        CTL_KEY_RAFT_HEARTBEAT,
        {.name = "containers.count",
         .type = CONFIG_UINT,
         .def = "4",
         .min = "1",
         .max = "4096",
         .help = "Number of segment containers; fixed for the life of "
                 "the data directory."},
        SS_KEY_CONTAINERS_RECOVER_AFTER,
        {.name = "store.listen",
         .type = CONFIG_STRING,
         .def = "tcp://127.0.0.1:12345",
         .help = "NNG URL of the segment store protocol (clients read and "
                 "write here after asking the controller)."},
        {.name = "store.advertise",
         .type = CONFIG_STRING,
         .def = "",
         .help = "Segment store URL given to clients; empty = "
                 "store.listen, a wildcard host replaced by this host's "
                 "IPv4 address."},
        {.name = "store.raft.listen",
         .type = CONFIG_STRING,
         .def = "127.0.0.1:12445",
         .help = "IPv4:port of the segment store's Raft port (shared by "
                 "every container)."},
        {.name = "store.http.listen",
         .type = CONFIG_STRING,
         .def = "http://127.0.0.1:12346",
         .help = "Segment store /metrics, /health/live and "
                 "/health/ready."},
        CTL_KEYS_STREAM_JOBS,
        {.name = "tier2.plugin",
         .type = CONFIG_STRING,
         .def = "local",
         .help = "Tier-2 plugin: a name (local, s3, hdfs, mem) found as "
                 "tier2-<name>.so in tier2.plugin_dir, or a path."},
        {.name = "tier2.plugin_dir",
         .type = CONFIG_STRING,
         .def = "",
         .help = "Directory of tier-2 plugins; empty = $STRATA_PLUGIN_DIR, "
                 "else ../plugins or ../lib/strata/plugins next to this "
                 "binary, else the install directory."},
        {.name = "tier2.options",
         .type = CONFIG_SECTION,
         .help = "Options of the tier-2 plugin; for local, root defaults "
                 "to <data_dir>/tier2."},
        SS_KEY_LIMITS_MAX_EVENT,
        {.name = "limits.max_append",
         .type = CONFIG_SIZE,
         .def = "16320KiB",
         .min = "4KiB",
         .max = "512MiB",
         .help = "Largest append block (framed events) per request."},
        {.name = "limits.max_message",
         .type = CONFIG_SIZE,
         .def = "17MiB",
         .min = "64KiB",
         .max = "1GiB",
         .help = "Largest request the store accepts; must exceed "
                 "limits.max_append by 4KiB."},
        {.name = "limits.requests",
         .type = CONFIG_UINT,
         .def = "64",
         .min = "1",
         .max = "1024",
         .help = "Segment store requests served at once (long-polling "
                 "reads included)."},
        RPC_KEY_LIMITS_CONNECTIONS,
        {.name = "limits.unflushed_budget",
         .type = CONFIG_SIZE,
         .def = "256MiB",
         .min = "1MiB",
         .help = "Per container: unflushed bytes above which appends get "
                 "back-pressure."},
        {.name = "limits.cache_budget",
         .type = CONFIG_SIZE,
         .def = "64MiB",
         .min = "0",
         .help = "Per container: read cache of tier-2 data."},
        SS_KEY_FLUSH_BYTES,
        SS_KEY_FLUSH_AGE,
        SS_KEY_FLUSH_CHUNK_BYTES,
        LOG_KEY_LEVEL,
        LOG_KEY_FILE,
};
#define N_KEYS (sizeof(schema) / sizeof(*schema))

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: " PROG " [--config FILE] [--check-config] "
	        "[--KEY=VALUE...]\n"
	        "\n"
	        "Strata on one machine: a controller and a segment store in "
	        "one process,\ntier 2 in a local directory. Needs no config "
	        "file: the defaults listen on\n127.0.0.1 (controller "
	        "tcp://127.0.0.1:9090) and keep everything in\n"
	        "./strata-data. Once it prints a line starting with \"" PROG
	        " ready\" it\nserves; SIGINT or SIGTERM stops it.\n"
	        "\n"
	        "  --check-config  load and validate the configuration, print "
	        "OK or the\n                  error, exit 0 (valid) or 2 "
	        "(invalid); binds nothing\n"
	        "\n"
	        "Exit codes: 0 stopped by a signal or --check-config OK, 1 "
	        "could not start\n(port in use, data directory, plugin), 2 "
	        "invalid configuration.\n"
	        "\n");
	config_print_help(schema, N_KEYS, out);
}

/* Format a message into err (STRATA_ERRMSG_SIZE bytes), truncating. */
__attribute__((format(printf, 2, 3))) static void errf(char *err,
                                                       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------- validation */

/* Every check that needs no socket and no file: key syntax and the
 * cross-key rules. 0 or STRATA_ECONFIG with err naming the key. */
static int validate(const struct config *cfg, char *err)
{
	static const char *const url_keys[] = {
	        "listen", "http.listen", "store.listen", "store.http.listen"};
	static const char *const schemes[] = {"tcp://", "http://", "tcp://",
	                                      "http://"};
	for (size_t i = 0; i < 4; i++) {
		const char *v = config_get_string(cfg, url_keys[i]);
		if (strncmp(v, schemes[i], strlen(schemes[i])) != 0 ||
		    ss_url_port(v) < 0) {
			errf(err,
			     "%s: '%s' is not a %sHOST:PORT URL, e.g. "
			     "%s127.0.0.1:%s",
			     url_keys[i], v, schemes[i], schemes[i],
			     i == 0 ? "9090" : "9091");
			return STRATA_ECONFIG;
		}
	}
	static const struct config_addr addrs[] = {
	        {"listen", CONFIG_ADDR_RPC, true},
	        {"http.listen", CONFIG_ADDR_HTTP, true},
	        {"raft.listen", CONFIG_ADDR_IPV4PORT, true},
	        {"store.listen", CONFIG_ADDR_RPC, true},
	        {"store.http.listen", CONFIG_ADDR_HTTP, true},
	        {"store.raft.listen", CONFIG_ADDR_IPV4PORT, true},
	        {"store.advertise", CONFIG_ADDR_RPC, false},
	};
	if (config_check_addresses(cfg, addrs, sizeof(addrs) / sizeof(*addrs),
	                           err) != 0) {
		return STRATA_ECONFIG;
	}
	static const char *const raft_keys[] = {"raft.listen",
	                                        "store.raft.listen"};
	for (size_t i = 0; i < 2; i++) {
		if (ss_url_port(config_get_string(cfg, raft_keys[i])) == 0) {
			errf(err,
			     "%s: port 0 is not supported (the Raft address "
			     "is recorded by the peers); give a port such as "
			     "9190",
			     raft_keys[i]);
			return STRATA_ECONFIG;
		}
	}
	if (ss_url_port(config_get_string(cfg, "listen")) == 0) {
		errf(err, "listen: port 0 is not supported (the controller "
		          "advertises its client URL); give a port such as "
		          "9090");
		return STRATA_ECONFIG;
	}
	if (ctl_replica_check_raft(cfg, err) != 0) {
		return STRATA_ECONFIG;
	}
	if (ss_options_check(cfg, err) != 0) {
		return STRATA_ECONFIG;
	}
	const char *data_dir = config_get_string(cfg, "data_dir");
	if (data_dir[0] == '\0' || strlen(data_dir) > PATH_MAX - 64) {
		errf(err,
		     "data_dir: '%s' is empty or too long; give a "
		     "directory such as ./strata-data",
		     data_dir);
		return STRATA_ECONFIG;
	}
	return 0;
}

/* --------------------------------------------------------- data dir */

/* -------------------------------------------------------- tier 2 */

/* The plugin directory: the key, else $STRATA_PLUGIN_DIR, else
 * <dir of this binary>/../plugins when it exists (the build tree, so
 * `make run` works uninstalled), else ../lib/strata/plugins beside it (an
 * install prefix), else NULL (the install directory). */
static const char *plugin_dir(const struct config *cfg, char *buf, size_t size)
{
	const char *d = config_get_string(cfg, "tier2.plugin_dir");
	if (d[0] != '\0') {
		return d;
	}
	const char *env = getenv("STRATA_PLUGIN_DIR");
	if (env != NULL && env[0] != '\0') {
		return env;
	}
	return plugin_dir_beside_exe(buf, size);
}

/* ----------------------------------------------------------- process */

/* Everything main builds and tears down. */
struct app {
	int lock_fd;
	struct metrics_registry *metrics;
	struct ctl_replica *ctl; /* controller */
	/* segment store */
	struct ss_service *store;
};

/* Start the controller half. 0 or an error with err. */
static int start_controller(struct app *a, const struct config *cfg,
                            char *client_url, size_t url_size, char *err)
{
	struct ctl_member member;
	ctl_member_local(&member, config_get_uint(cfg, "node.id"),
	                 config_get_string(cfg, "raft.listen"),
	                 config_get_string(cfg, "listen"),
	                 config_get_string(cfg, "http.listen"));
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/controller",
	         config_get_string(cfg, "data_dir"));
	struct ctl_replica_config rcfg = {
	        .metrics = a->metrics,
	        .service =
	                {
	                        .node_id = member.id,
	                        .data_dir = dir,
	                        .raft_listen =
	                                config_get_string(cfg, "raft.listen"),
	                        .members = &member,
	                        .n_members = 1,
	                        .container_count = (uint32_t)config_get_uint(
	                                cfg, "containers.count"),
	                        .election_ms = (unsigned)config_get_duration_ms(
	                                cfg, "raft.election_timeout"),
	                        .heartbeat_ms =
	                                (unsigned)config_get_duration_ms(
	                                        cfg, "raft.heartbeat"),
	                        .snapshot_bytes = 8u << 20,
	                        .wait_ms = 3000,
	                        /* as the containers' replicas */
	                        .recover_ms = (unsigned)config_get_duration_ms(
	                                cfg, "containers.recover_after"),
	                        .on_fatal = strata_process_fatal,
	                },
	        .api = {.store_lease_ms = 6000}, /* heartbeat every 2 s */
	        .listen = config_get_string(cfg, "listen"),
	        .listen_key = "listen",
	        .max_connections =
	                (unsigned)config_get_uint(cfg, "limits.connections"),
	        .rest = {.url = config_get_string(cfg, "http.listen"),
	                 .config_key = "http.listen"},
	        .tick_ms = 1000,
	        .driver = {.rpc_timeout_ms = 5000, .backoff_max_ms = 2000},
	};
	ctl_stream_jobs_config(cfg, &rcfg.driver);
	int rc = ctl_replica_start(&rcfg, &a->ctl, err);
	if (rc != 0) {
		return rc;
	}
	ctl_local_url(ctl_replica_client_url(a->ctl), client_url, url_size);
	return 0;
}

/* Start the segment store half, registered with the controller at
 * ctl_url. 0 or an error with err. */
static int start_store(struct app *a, const struct config *cfg,
                       const char *ctl_url, char *err)
{
	char *opts = NULL;
	int rc = ss_tier2_options(cfg, &opts);
	if (rc != 0) {
		errf(err, "out of memory");
		return rc;
	}
	char pbuf[PATH_MAX];
	struct ss_service_config sc = {
	        .metrics = a->metrics,
	        .http_listen = config_get_string(cfg, "store.http.listen"),
	        .http_key = "store.http.listen",
	        .tier2_plugin = config_get_string(cfg, "tier2.plugin"),
	        .tier2_plugin_dir = plugin_dir(cfg, pbuf, sizeof(pbuf)),
	        .tier2_options = opts,
	        .raft_listen = config_get_string(cfg, "store.raft.listen"),
	        .raft_key = "store.raft.listen",
	        .raft_metrics = true, /* its loop stalls, as a store's */
	        .advertise = config_get_string(cfg, "store.advertise"),
	};
	ss_options_read(cfg, &sc);
	sc.server.listen = config_get_string(cfg, "store.listen");
	sc.server.config_key = "store.listen";
	sc.server.drain_ms = 2000;

	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/segmentstore",
	         config_get_string(cfg, "data_dir"));
	struct ss_cluster_config *cc = &sc.cluster;
	cc->data_dir = dir;
	cc->controllers = ctl_url;
	cc->on_fatal = strata_process_fatal;
	cc->rpc_timeout_ms = 2000;
	cc->settle_ms = 100; /* one store: no peer to wait for */
	struct container_config *t = &cc->tmpl;
	t->heartbeat_ms =
	        (unsigned)config_get_duration_ms(cfg, "raft.heartbeat");
	t->snapshot_bytes = 16u << 20;
	t->segment_bytes = 64u << 20;
	t->batch_bytes = 256u << 10;
	rc = ss_service_start(&sc, &a->store, err);
	strata_free(opts);
	return rc;
}

/* Tear down whatever a holds, store first, then the controller. */
static void app_stop(struct app *a)
{
	ss_service_stop(a->store);
	a->store = NULL;
	ctl_replica_stop(a->ctl);
	a->ctl = NULL;
	metrics_registry_free(a->metrics);
	raft_metrics_forget(a->metrics);
	if (a->lock_fd >= 0) {
		close(a->lock_fd);
	}
}

/* True when the controller, asked through its client URL like stratactl
 * cluster status, knows a leader for every container ("" detail) or
 * false with why in detail. */
static bool cluster_healthy(struct rpc_client *rc, char *detail, size_t size)
{
	Strata__V1__ClusterStatusRequest req =
	        STRATA__V1__CLUSTER_STATUS_REQUEST__INIT;
	ProtobufCMessage *m = NULL;
	char err[STRATA_ERRMSG_SIZE];
	int code = rpc_call_pb(
	        rc, CLUSTER_STATUS_METHOD, RPC_IDEMPOTENT, &req.base,
	        &strata__v1__cluster_status_reply__descriptor, &m, err);
	if (code != 0) {
		snprintf(detail, size, "cluster status: %.120s", err);
		return false;
	}
	const Strata__V1__ClusterStatusReply *r = (const void *)m;
	size_t missing = 0, total = 0;
	if (r->assignment != NULL) {
		total = r->assignment->n_containers;
		for (size_t i = 0; i < total; i++) {
			missing +=
			        r->assignment->containers[i]->leader_node_id ==
			        0;
		}
	}
	bool ok = r->leader_id != 0 && total > 0 && missing == 0;
	snprintf(detail, size,
	         "controller leader %" PRIu64 ", %zu of %zu containers "
	         "without a reported leader",
	         r->leader_id, missing, total);
	rpc_pb_free(m);
	return ok;
}

/* Wait until the controller leads, every container has a leader and the
 * controller has heard so from the store (what 'stratactl cluster status'
 * calls healthy), or a signal arrives (*sig set, false returned). */
static bool wait_ready(struct app *a, const char *ctl_url, const sigset_t *sigs,
                       int *sig)
{
	struct timespec tick = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
	unsigned waited_ms = 0;
	struct rpc_client *rc = NULL;
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.timeout_ms = 2000;
	o.retries = 0;
	char err[STRATA_ERRMSG_SIZE];
	if (rpc_client_open(&rc, &ctl_url, 1, &o, err) != 0) {
		LOG_WARN(COMP, "cannot check readiness through %s: %s", ctl_url,
		         err);
	}
	bool ready = false;
	for (;;) {
		struct buf detail;
		buf_init(&detail, 4096);
		char why[160] = "";
		bool ok = ctl_service_is_ready(ctl_replica_service(a->ctl)) &&
		          ss_service_ready(a->store, &detail) != HTTP_NOT_READY;
		if (ok && rc != NULL && waited_ms % 500 == 0) {
			ok = cluster_healthy(rc, why, sizeof(why));
		} else if (ok && rc != NULL) {
			ok = false;
		}
		if (!ok && waited_ms > 0 && waited_ms % 10000 == 0) {
			LOG_WARN(COMP,
			         "not ready after %u s: controller %s, store "
			         "%.*s %s",
			         waited_ms / 1000,
			         ctl_service_is_ready(
			                 ctl_replica_service(a->ctl))
			                 ? "ready"
			                 : "electing",
			         (int)detail.len, (const char *)detail.data,
			         why);
		}
		buf_close(&detail);
		if (ok) {
			ready = true;
			break;
		}
		int s = sigtimedwait(sigs, NULL, &tick);
		if (s > 0) {
			*sig = s;
			break;
		}
		waited_ms += 100;
	}
	if (rc != NULL) {
		rpc_client_close(rc);
	}
	return ready;
}

/* "./build/bin/stratactl" next to this binary (relative to the working
 * directory when below it), or "stratactl" when it is not there. */
static void stratactl_path(char *out, size_t size)
{
	char exe[PATH_MAX], cwd[PATH_MAX];
	snprintf(out, size, "stratactl");
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		return;
	}
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash == NULL) {
		return;
	}
	*slash = '\0';
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/stratactl", exe);
	if (access(path, X_OK) != 0) {
		return;
	}
	size_t cl = 0;
	if (getcwd(cwd, sizeof(cwd)) != NULL) {
		cl = strlen(cwd);
	}
	if (cl > 1 && strncmp(path, cwd, cl) == 0 && path[cl] == '/') {
		snprintf(out, size, "%s", path + cl + 1);
	} else {
		snprintf(out, size, "%s", path);
	}
}

/* Print the ready line (machine-readable) and how to write and read a
 * first event. */
static void print_ready(const struct app *a, const struct config *cfg,
                        const char *ctl_url, const char *store_url)
{
	printf(PROG " ready controller=%s http=http://127.0.0.1:%d store=%s "
	            "data=%s\n",
	       ctl_url, ctl_replica_rest_port(a->ctl), store_url,
	       config_get_string(cfg, "data_dir"));
	char ctl[PATH_MAX + 32];
	stratactl_path(ctl, sizeof(ctl));
	char flag[CTL_URL_MAX + 32] = "";
	if (strcmp(ctl_url, "tcp://127.0.0.1:9090") != 0) {
		snprintf(flag, sizeof(flag), " --controller %s", ctl_url);
	}
	printf("\nWrite and read a first event (in another terminal):\n"
	       "  echo 'hello, strata' | %s%s write demo/first --create\n"
	       "  %s%s read demo/first --from head --to tail\n"
	       "\nStop with Ctrl-C (data stays in %s).\n",
	       ctl, flag, ctl, flag, config_get_string(cfg, "data_dir"));
	fflush(stdout);
}

/* Remove "--check-config" (before any "--") from argv; true if found. */
static bool take_check_flag(int *argc, char **argv)
{
	bool found = false;
	int out = 1;
	bool done = false;
	for (int i = 1; i < *argc; i++) {
		if (!done && strcmp(argv[i], "--") == 0) {
			done = true;
		}
		if (!done && (strcmp(argv[i], "--check-config") == 0 ||
		              strcmp(argv[i], "--check_config") == 0)) {
			found = true;
			continue;
		}
		argv[out++] = argv[i];
	}
	argv[out] = NULL;
	*argc = out;
	return found;
}

int main(int argc, char **argv)
{
	char err[STRATA_ERRMSG_SIZE];
	if (strata_process_init(err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return EXIT_RUNTIME;
	}
	bool check_only = take_check_flag(&argc, argv);
	struct config cfg;
	int rc = config_init(&cfg, schema, N_KEYS);
	if (rc == 0) {
		rc = config_load(&cfg, argc, argv, NULL, NULL);
	}
	if (rc != 0) {
		fprintf(stderr, PROG ": %s\n", config_errmsg(&cfg));
		config_close(&cfg);
		return EXIT_CONFIG;
	}
	if (config_help_requested(&cfg)) {
		usage(stdout);
		config_close(&cfg);
		return 0;
	}
	if (config_version_requested(&cfg)) {
		strata_print_version(stdout, PROG);
		config_close(&cfg);
		return 0;
	}
	if (validate(&cfg, err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		config_close(&cfg);
		return EXIT_CONFIG;
	}
	if (check_only) {
		/* The tier-2 plugin loads and accepts its options (checked
		 * without side effects). */
		char pbuf[PATH_MAX];
		bool checked;
		if (ss_check_tier2(&cfg, plugin_dir(&cfg, pbuf, sizeof(pbuf)),
		                   &checked, err) != 0) {
			fprintf(stderr, PROG ": %s\n", err);
			config_close(&cfg);
			return EXIT_CONFIG;
		}
		const char *file = config_file(&cfg);
		printf("OK: configuration %s%s is valid%s\n",
		       file != NULL ? "file "
		                    : "(defaults, environment, flags)",
		       file != NULL ? file : "",
		       checked ? ""
		               : " (tier-2 options not checked: the "
		                 "plugin has no check)");
		config_close(&cfg);
		return 0;
	}
	int level = STRATA_LOG_INFO;
	log_level_parse(config_get_string(&cfg, "log.level"), &level);
	log_set_level(level);
	if (log_open(config_get_string(&cfg, "log.file"), err) != 0) {
		fprintf(stderr, PROG ": log.file: %s\n", err);
		config_close(&cfg);
		return EXIT_RUNTIME;
	}

	/* Signals are taken synchronously; every thread inherits the mask. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	int status = EXIT_RUNTIME;
	struct app app;
	memset(&app, 0, sizeof(app));
	app.lock_fd = -1;
	const char *data_dir = config_get_string(&cfg, "data_dir");
	char ctl_url[RPC_MAX_URL_LEN];

	if (files_lock_data_dir(data_dir, &app.lock_fd, err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	if (metrics_registry_new(&app.metrics) != 0) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	(void)metrics_register_process(app.metrics, NULL);

	/* The tier-2 plugin and its options first, as --check-config does:
	 * refused before the controller makes a new cluster in an empty
	 * data_dir (exit 2 for bad options, 1 for a plugin that does not
	 * load, as documented). */
	char pbuf[PATH_MAX];
	bool checked;
	int trc = ss_check_tier2(&cfg, plugin_dir(&cfg, pbuf, sizeof(pbuf)),
	                         &checked, err);
	if (trc != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		status = trc == STRATA_ECONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
		goto out;
	}
	int src = start_controller(&app, &cfg, ctl_url, sizeof(ctl_url), err);
	if (src != 0) {
		fprintf(stderr, PROG ": controller: %s\n", err);
		/* e.g. a node.id other than the one of the data's Raft log */
		status = src == STRATA_ECONFIG ? EXIT_CONFIG : EXIT_RUNTIME;
		goto out;
	}
	if (start_store(&app, &cfg, ctl_url, err) != 0) {
		fprintf(stderr, PROG ": segment store: %s\n", err);
		goto out;
	}
	LOG_INFO(COMP,
	         "started %s (commit %s): controller %s (REST port %d), "
	         "segment store %s, %" PRIu64 " containers, tier 2 '%s', "
	         "data %s",
	         strata_version(), strata_git_commit(), ctl_url,
	         ctl_replica_rest_port(app.ctl),
	         ss_service_client_url(app.store),
	         config_get_uint(&cfg, "containers.count"),
	         ss_service_tier2_name(app.store), data_dir);

	int sig = 0;
	if (wait_ready(&app, ctl_url, &sigs, &sig) &&
	    strata_process_fatal_message() == NULL) {
		print_ready(&app, &cfg, ctl_url,
		            ss_service_client_url(app.store));
		while (sigwait(&sigs, &sig) != 0) {
		}
	}
	const char *fatal = strata_process_fatal_message();
	if (fatal != NULL) {
		fprintf(stderr, PROG ": %s\n", fatal);
		status = EXIT_CONFIG;
		goto out;
	}
	LOG_INFO(COMP, "%s received: shutting down",
	         sig == SIGINT ? "SIGINT" : "SIGTERM");
	status = 0;
out:
	app_stop(&app);
	config_close(&cfg);
	if (status == 0) {
		LOG_INFO(COMP, "stopped cleanly");
	}
	log_close();
	return status;
}
