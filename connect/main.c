/* strata-connect: runs one pipeline between a Strata stream and a connector
 * endpoint, exactly once (docs/connect.md). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/config.h"
#include "common/errmsg.h"
#include "common/files.h"
#include "common/log.h"
#include "common/process.h"
#include "common/version.h"
#include "connect/connect.h"
#include "strata/error.h"

#define PROG "strata-connect"
#define EXIT_RUNTIME 1 /* the pipeline stopped on an error */
#define EXIT_CONFIG 2  /* bad configuration */

atomic_bool connect_stop;

uint64_t connect_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *const modes[] = {"import", "export", NULL};
static const char *const guarantees[] = {"exactly-once", "at-least-once", NULL};
static const char *const unknown[] = {"fail", "committed", "aborted", NULL};

/* Every key of strata-connect (docs/connect.md, "Configuration"). */
static const struct config_key schema[] = {
        {.name = "mode",
         .type = CONFIG_ENUM,
         .allowed = modes,
         .flags = CONFIG_REQUIRED,
         .help = "import: connector source -> stream; export: stream -> "
                 "connector sink."},
        {.name = "stream",
         .type = CONFIG_STRING,
         .flags = CONFIG_REQUIRED,
         .help = "SCOPE/STREAM written (import) or read (export); it "
                 "must exist (stratactl stream create)."},
        {.name = "controller",
         .type = CONFIG_STRING,
         .def = "tcp://127.0.0.1:9090",
         .help = "Controller client URL; several separated by commas."},
        {.name = "connector.plugin",
         .type = CONFIG_STRING,
         .flags = CONFIG_REQUIRED,
         .help = "Connector: a name (file, stdio, http, mqtt, strata) "
                 "found as connector-<name>.so in connector.plugin_dir, "
                 "or a path."},
        {.name = "connector.plugin_dir",
         .type = CONFIG_STRING,
         .def = "",
         .help = "Directory of connector plugins; empty = "
                 "$STRATA_PLUGIN_DIR, the build tree next to this binary, "
                 "or the install directory."},
        {.name = "connector.options",
         .type = CONFIG_SECTION,
         .help = "Options of the connector, e.g. file: path, key, "
                 "follow, format, fsync; mqtt: broker, topic, qos; "
                 "every connector's in docs/connect.md."},
        {.name = "checkpoint.file",
         .type = CONFIG_STRING,
         .flags = CONFIG_REQUIRED,
         .help = "Checkpoint file of this pipeline (created; replaced "
                 "atomically at every checkpoint). One per pipeline: it "
                 "is what a restart resumes from."},
        {.name = "checkpoint.interval",
         .type = CONFIG_DURATION,
         .def = "2s",
         .min = "100ms",
         .max = "1h",
         .help = "How often a checkpoint commits what was moved (import: "
                 "one transaction per interval)."},
        {.name = "guarantee",
         .type = CONFIG_ENUM,
         .def = "exactly-once",
         .allowed = guarantees,
         .help = "exactly-once needs a replayable source (import) or a "
                 "sink that can take back output (export); "
                 "at-least-once works with any."},
        {.name = "group",
         .type = CONFIG_STRING,
         .def = "",
         .help = "Export: reader group name (created on the first run); "
                 "empty = connect-<stream>."},
        {.name = "start",
         .type = CONFIG_STRING,
         .def = "head",
         .help = "Export, first run: where the group starts: head, tail "
                 "or a stream cut (as 'stratactl stream describe' or "
                 "'stratactl group checkpoint' print them)."},
        {.name = "hold_retention",
         .type = CONFIG_BOOL,
         .def = "false",
         .help = "Export, first run: create the group with manual "
                 "consumption-based retention and release each "
                 "checkpoint's cuts once the sink committed it: the "
                 "stream's retention policy then never drops events not "
                 "yet exported (down to the policy's max)."},
        {.name = "txn.lease",
         .type = CONFIG_DURATION,
         .def = "2m",
         .min = "1s",
         .max = "10m",
         .help = "Import: lease of each transaction; a restart must come "
                 "within it to commit the one it prepared."},
        {.name = "writer.codec",
         .type = CONFIG_STRING,
         .def = "",
         .help = "Import: compress events with this codec plugin (zstd, "
                 "lz4, gzip); empty = none."},
        {.name = "writer.codec_level",
         .type = CONFIG_INT,
         .def = "0",
         .min = "0",
         .max = "19",
         .help = "Import: codec level; 0 = the codec's default."},
        {.name = "limits.max_event",
         .type = CONFIG_SIZE,
         .def = "1MiB",
         .min = "1",
         .max = "8MiB",
         .help = "Import: largest record; a longer one stops the import "
                 "with an error naming where it is."},
        {.name = "recovery.unknown_txn",
         .type = CONFIG_ENUM,
         .def = "fail",
         .allowed = unknown,
         .help = "Import: a prepared transaction the controller forgot "
                 "(completed over an hour ago): fail, or assume it "
                 "committed / aborted."},
        {.name = "retry.timeout",
         .type = CONFIG_DURATION,
         .def = "2m",
         .min = "0ms",
         .max = "1h",
         .help = "Keep retrying an unavailable cluster this long before "
                 "stopping with the error."},
        {.name = "check_config",
         .type = CONFIG_BOOL,
         .def = "false",
         .help = "Only check the configuration and the connector's "
                 "options (nothing is created, nothing contacted): print "
                 "\"configuration OK\" and exit 0, or the error and "
                 "exit 2."},
        LOG_KEY_LEVEL,
        LOG_KEY_FILE,
};
#define N_KEYS (sizeof(schema) / sizeof(*schema))

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: " PROG " [--config FILE] [--KEY=VALUE...]\n"
	        "\n"
	        "Moves events between a Strata stream and a connector endpoint "
	        "(a file,\nstdin/stdout, your own plugin), exactly once across "
	        "crashes and restarts:\n"
	        "  import  source -> stream, one transaction per checkpoint "
	        "interval\n"
	        "  export  stream -> sink, through a reader group and its "
	        "checkpoints\n"
	        "State is kept in checkpoint.file; run the same command again "
	        "to resume.\nSIGINT or SIGTERM takes a last checkpoint and "
	        "stops.\n"
	        "\n"
	        "Example:\n"
	        "  " PROG " --mode=import --stream=demo/logs "
	        "--connector.plugin=file \\\n"
	        "      --connector.options.path=/var/log/app.log "
	        "--checkpoint.file=app.ckpt\n"
	        "\n"
	        "Exit codes: 0 the input ended or a signal stopped it, 1 "
	        "stopped on an\nerror (the message says which; rerun to "
	        "resume), 2 invalid configuration.\n"
	        "\n");
	config_print_help(schema, N_KEYS, out);
}

/* Wait for SIGINT/SIGTERM (blocked in every thread) and ask the
 * pipeline to stop: a last checkpoint, then exit. */
/* How long a signalled pipeline may take for its last checkpoint before
 * the process exits without it (docs/connect.md: "within 30 s"); the
 * export's own bound is 30 s, this one catches a call that does not
 * return (a flush waiting out the writer's retries, a read retrying). */
#define STOP_HARD_MS 32000

static void *signal_main(void *arg)
{
	const sigset_t *sigs = arg; /* static: outlives main's return */
	int sig = 0;
	while (sigwait(sigs, &sig) != 0) {
	}
	LOG_INFO("connect", "%s: taking a last checkpoint, then stopping",
	         sig == SIGINT ? "SIGINT" : "SIGTERM");
	connect_stop = true;
	/* A second signal, or the bound, stops it as a crash would: the
	 * next run resumes from the last checkpoint, so nothing is lost or
	 * doubled. */
	uint64_t until = connect_now_ms() + STOP_HARD_MS;
	bool again = false;
	for (;;) {
		uint64_t now = connect_now_ms();
		if (now >= until) {
			break;
		}
		struct timespec t = {(time_t)((until - now) / 1000),
		                     (long)((until - now) % 1000) * 1000000L};
		if (sigtimedwait(sigs, NULL, &t) > 0) {
			again = true;
			break;
		}
		/* EAGAIN: the time is up (checked above); EINTR: again. */
	}
	LOG_ERROR("connect",
	          "%s; stopping without a last checkpoint: the next run "
	          "resumes from the previous one",
	          again ? "a second signal"
	                : "the last checkpoint did not complete within 30 s "
	                  "(the cluster or the endpoint does not answer)");
	fflush(NULL);
	_exit(EXIT_RUNTIME);
	return NULL;
}

/* Split "scope/stream" into cfg; STRATA_ECONFIG naming it otherwise. */
static int split_stream(const char *s, struct connect_config *cfg, char *err)
{
	const char *slash = strchr(s, '/');
	if (slash == NULL || slash == s || slash[1] == '\0' ||
	    strchr(slash + 1, '/') != NULL ||
	    (size_t)(slash - s) >= sizeof(cfg->scope) ||
	    strlen(slash + 1) >= sizeof(cfg->stream)) {
		errmsg_set(err,
		           "stream: '%.200s' is not SCOPE/STREAM (e.g. "
		           "--stream=demo/logs)",
		           s);
		return STRATA_ECONFIG;
	}
	memcpy(cfg->scope, s, (size_t)(slash - s));
	cfg->scope[slash - s] = '\0';
	snprintf(cfg->stream, sizeof(cfg->stream), "%s", slash + 1);
	return 0;
}

/* --check-config: the connector has the side the mode needs and takes
 * the options (its check op, ABI 2; an older plugin is only loaded). */
static int check_only(const struct connect_config *cc,
                      const struct connector *conn, bool import,
                      const char *options, char *err)
{
	const struct strata_connector_ops *o = &conn->ops;
	int rc = import ? connect_import_check(cc, conn, err)
	                : connect_export_check(cc, conn, err);
	if (rc != 0) {
		return rc;
	}
	if (o->check == NULL) {
		printf("connector %s has no check: its options are checked "
		       "when it opens\n",
		       o->name);
		return 0;
	}
	char perr[STRATA_ERRMSG_SIZE] = "";
	rc = o->check(&conn->host, options, import, perr);
	return rc != 0 ? connector_fail(conn, import ? "source" : "sink", rc,
	                                perr, err)
	               : 0;
}

/* The client for the controller URL list (commas). */
static int make_client(const struct connect_config *cfg, const char *urls,
                       struct strata_client **out, char *err)
{
	char *copy = strata_strdup(urls);
	if (copy == NULL) {
		return STRATA_ENOMEM;
	}
	const char *list[16];
	size_t n = 0;
	for (char *save = NULL, *t = strtok_r(copy, ",", &save);
	     t != NULL && n < 16; t = strtok_r(NULL, ",", &save)) {
		list[n++] = t;
	}
	struct strata_client_config cc;
	strata_client_config_default(&cc);
	cc.controller_urls = list;
	cc.n_controller_urls = n;
	cc.operation_timeout_ms =
	        connect_bound_ms(cfg, cc.operation_timeout_ms);
	int rc = n == 0 ? STRATA_EINVAL : strata_client_new(&cc, out, err);
	if (n == 0) {
		errmsg_set(err, "controller: no URL given");
	}
	strata_free(copy);
	return rc;
}

/* One run per pipeline: an exclusive lock on <checkpoint.file>.lock for
 * the run's life (the checkpoint file itself is replaced by a rename at
 * every checkpoint, so it cannot carry the lock). Two runs of one
 * pipeline would each write what the source gives them: its records
 * twice. 0, or STRATA_EBUSY / STRATA_EIO with err. */
static int lock_pipeline(const char *state_file, int *fd, char *err)
{
	char path[4096 + 8], holder[32];
	if (strlen(state_file) > 4096) {
		errmsg_set(err, "checkpoint.file: longer than 4096 bytes");
		return STRATA_EIO;
	}
	snprintf(path, sizeof(path), "%s.lock", state_file);
	int e = files_lock(path, fd, holder, sizeof(holder));
	if (e == EWOULDBLOCK) {
		errmsg_set(err,
		           "checkpoint.file %.120s is in use by another "
		           "strata-connect (pid %s); a pipeline runs once at "
		           "a time: stop that run first",
		           state_file, holder[0] != '\0' ? holder : "unknown");
		return STRATA_EBUSY;
	}
	if (e != 0) {
		errmsg_set(err,
		           "checkpoint.file: cannot open its lock file "
		           "%.120s: %s; give a file in a writable directory",
		           path, strerror(e));
		return STRATA_EIO;
	}
	return 0;
}

int main(int argc, char **argv)
{
	char err[STRATA_ERRMSG_SIZE] = "";
	if (strata_process_init(err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return EXIT_RUNTIME;
	}
	struct config cfg;
	int rc = config_init(&cfg, schema, N_KEYS);
	if (rc == 0) {
		rc = config_load(&cfg, argc, argv, NULL, NULL);
	}
	if (rc == 0 && config_help_requested(&cfg)) {
		usage(stdout);
		config_close(&cfg);
		return 0;
	}
	if (rc == 0 && config_version_requested(&cfg)) {
		strata_print_version(stdout, PROG);
		config_close(&cfg);
		return 0;
	}
	if (rc != 0) {
		fprintf(stderr, PROG ": %s\n(" PROG " --help lists the keys)\n",
		        config_errmsg(&cfg));
		config_close(&cfg);
		return EXIT_CONFIG;
	}
	struct connect_config cc;
	memset(&cc, 0, sizeof(cc));
	char *options = NULL;
	char group[300];
	rc = split_stream(config_get_string(&cfg, "stream"), &cc, err);
	if (rc == 0) {
		rc = config_section_flatten(&cfg, "connector.options",
		                            &options);
	}
	if (rc == 0) {
		const char *g = config_get_string(&cfg, "group");
		snprintf(group, sizeof(group), "%s", g[0] != '\0' ? g : "");
		if (g[0] == '\0') {
			snprintf(group, sizeof(group), "connect-%s", cc.stream);
		}
		bool import = config_get_enum(&cfg, "mode") == 0;
		cc.controller = config_get_string(&cfg, "controller");
		cc.state_file = config_get_string(&cfg, "checkpoint.file");
		cc.interval_ms =
		        config_get_duration_ms(&cfg, "checkpoint.interval");
		cc.exactly_once = config_get_enum(&cfg, "guarantee") == 0;
		cc.txn_lease_ms = config_get_duration_ms(&cfg, "txn.lease");
		cc.codec = config_get_string(&cfg, "writer.codec");
		cc.codec_level =
		        (int)config_get_int(&cfg, "writer.codec_level");
		cc.max_event = config_get_size(&cfg, "limits.max_event");
		cc.plugin_config = options;
		cc.group = group;
		cc.start = config_get_string(&cfg, "start");
		cc.hold_retention = config_get_bool(&cfg, "hold_retention");
		cc.unknown_txn = (enum connect_unknown_txn)config_get_enum(
		        &cfg, "recovery.unknown_txn");
		cc.retry_ms = config_get_duration_ms(&cfg, "retry.timeout");
		int level = STRATA_LOG_INFO;
		log_level_parse(config_get_string(&cfg, "log.level"), &level);
		log_set_level(level);
		if (cc.state_file[0] == '\0') {
			errmsg_set(err, "checkpoint.file: empty; name a file");
			rc = STRATA_ECONFIG;
		}
		if (rc == 0 &&
		    log_open(config_get_string(&cfg, "log.file"), err) != 0) {
			fprintf(stderr, PROG ": log.file: %s\n", err);
			strata_free(options);
			config_close(&cfg);
			return EXIT_RUNTIME;
		}
		/* A key of the other mode does nothing: say so. */
		static const char *const export_only[] = {"group", "start",
		                                          "hold_retention"};
		static const char *const import_only[] = {
		        "txn.lease", "writer.codec", "writer.codec_level",
		        "limits.max_event", "recovery.unknown_txn"};
		const char *const *other = import ? export_only : import_only;
		size_t n_other = import ? sizeof(export_only) / sizeof(*other)
		                        : sizeof(import_only) / sizeof(*other);
		for (size_t i = 0; rc == 0 && i < n_other; i++) {
			if (config_is_set(&cfg, other[i])) {
				LOG_WARN("connect",
				         "%s applies to %s only: ignored "
				         "with --mode=%s",
				         other[i],
				         import ? "exports" : "imports",
				         import ? "import" : "export");
			}
		}
		struct connector *conn = NULL;
		if (rc == 0) {
			rc = connector_load(
			        config_get_string(&cfg, "connector.plugin"),
			        config_get_string(&cfg, "connector.plugin_dir"),
			        &conn, err);
		}
		if (rc == 0 && config_get_bool(&cfg, "check_config")) {
			rc = check_only(&cc, conn, import, options, err);
			if (rc == 0) {
				printf("configuration OK\n");
			}
			connector_unload(conn);
			conn = NULL;
			strata_free(options);
			config_close(&cfg);
			if (rc != 0) {
				fprintf(stderr, PROG ": %s\n", err);
			}
			return rc == 0 ? 0 : EXIT_CONFIG;
		}
		if (rc != 0) {
			fprintf(stderr, PROG ": %s\n", err);
			strata_free(options);
			config_close(&cfg);
			return EXIT_CONFIG;
		}
		int lock_fd = -1;
		if (lock_pipeline(cc.state_file, &lock_fd, err) != 0) {
			fprintf(stderr, PROG ": %s\n", err);
			connector_unload(conn);
			strata_free(options);
			config_close(&cfg);
			return EXIT_RUNTIME;
		}
		/* Signals are taken by one thread (sigwait), so no other
		 * thread's system call is ever interrupted by them. */
		/* Static: the signal thread may still wait in it while the
		 * process exits after main returned. */
		static sigset_t sigs;
		sigemptyset(&sigs);
		sigaddset(&sigs, SIGINT);
		sigaddset(&sigs, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &sigs, NULL);
		pthread_t sig_thread;
		pthread_create(&sig_thread, NULL, signal_main, &sigs);
		pthread_detach(sig_thread);
		struct strata_client *client = NULL;
		rc = make_client(&cc, cc.controller, &client, err);
		if (rc == 0) {
			rc = import ? connect_import(&cc, conn, client, err)
			            : connect_export(&cc, conn, client, err);
		}
		strata_client_free(client);
		connector_unload(conn);
		close(lock_fd);
		if (rc != 0) {
			fprintf(stderr, PROG ": %s\n", err);
		}
		strata_free(options);
		config_close(&cfg);
		return rc == 0 ? 0
		       : rc == STRATA_ECONFIG || rc == STRATA_EPLUGIN ||
		                       rc == STRATA_EABI
		               ? EXIT_CONFIG
		               : EXIT_RUNTIME;
	}
	fprintf(stderr, PROG ": %s\n", err);
	strata_free(options);
	config_close(&cfg);
	return EXIT_CONFIG;
}
