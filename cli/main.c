/* stratactl: the Strata command line: scopes, streams, events in and out,
 * reader groups and cluster status (docs/stratactl.md). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/alloc.h"
#include "common/config.h"
#include "common/log.h"
#include "common/process.h"
#include "common/rpc.h"
#include "common/version.h"
#include "strata/plugin_config.h"

#define PROG "stratactl"

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

/* Global settings: file, STRATA_* environment, flags before the command. */
static const struct config_key schema[] = {
        {.name = "controller",
         .type = CONFIG_STRING,
         .def = "tcp://127.0.0.1:9090",
         .help = "Controller client URLs, comma-separated (every replica "
                 "of a cluster, or strata-standalone's)."},
        {.name = "json",
         .type = CONFIG_BOOL,
         .def = "false",
         .help = "Machine-readable JSON on stdout instead of text."},
        {.name = "quiet",
         .type = CONFIG_BOOL,
         .def = "false",
         .help = "No progress and no summary on stderr (errors still)."},
        {.name = "timeout",
         .type = CONFIG_DURATION,
         .def = "60s",
         .min = "100ms",
         .max = "1d",
         .help = "Longest time one operation may take, retries and "
                 "workflow waits included."},
        {.name = "connect_timeout",
         .type = CONFIG_DURATION,
         .def = "3s",
         .min = "100ms",
         .max = "10m",
         .help = "How long to wait for the controller to answer before "
                 "giving up with exit code 3."},
        {.name = "log.level",
         .type = CONFIG_ENUM,
         .def = "warn",
         .allowed = levels,
         .help = "Lowest level of library log lines on stderr."},
};
#define N_KEYS (sizeof(schema) / sizeof(*schema))

/* The global options as a command also accepts them (after its name). */
static const struct cli_opt global_opts[] = {
        {"controller", true, "URL[,URL...]",
         "controller client URLs (env STRATA_CONTROLLER)"},
        {"json", false, NULL, "JSON on stdout"},
        {"quiet", false, NULL, "no progress or summary on stderr"},
        {"timeout", true, "DURATION", "bound of the operation (60s)"},
        {"connect-timeout", true, "DURATION",
         "wait this long for the controller (3s)"},
};
#define N_GLOBAL (sizeof(global_opts) / sizeof(*global_opts))

static const struct cli_cmd *const tables[] = {
        cli_admin_cmds,
        cli_members_cmds,
        cli_io_cmds,
#ifdef STRATA_CLI_GROUPS
        cli_group_cmds,
#endif
};
#define N_TABLES (sizeof(tables) / sizeof(*tables))

/* ------------------------------------------------------------ messages */

int cli_fail(const struct cli *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, PROG "%s%s: ", c->cmd_name != NULL ? " " : "",
	        c->cmd_name != NULL ? c->cmd_name : "");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return cli_exit_code(code);
}

int cli_fail_op(const struct cli *c, int code, const char *what,
                const char *errmsg)
{
	const char *hint = "";
	switch (code) {
	case STRATA_ETIMEDOUT:
		hint = " (timed out after --timeout; a change may still "
		       "complete: check its state again (e.g. 'stratactl "
		       "stream describe' or 'group describe') or raise "
		       "--timeout)";
		break;
	case STRATA_EBUSY:
		/* The controller's own messages say what is busy and what
		 * to do (e.g. "10000 unfinished transactions"). */
		if (errmsg == NULL || errmsg[0] == '\0') {
			hint = " (another change runs on it: retry shortly)";
		}
		break;
	default:
		break;
	}
	/* libstrata messages name their input and say what to do. */
	if (errmsg != NULL && errmsg[0] != '\0') {
		return cli_fail(c, code, "%s%s", errmsg, hint);
	}
	return cli_fail(c, code, "%s: %s%s", what, strata_strerror(code), hint);
}

void cli_note(const struct cli *c, const char *fmt, ...)
{
	if (c->quiet) {
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

uint64_t cli_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *cli_stream_state_name(int state)
{
	static const char *const names[] = {"unknown", "creating",   "active",
	                                    "scaling", "truncating", "sealing",
	                                    "sealed",  "deleting"};
	return state >= 0 && state < 8 ? names[state] : "unknown";
}

/* ------------------------------------------------------------ progress */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool running; /* thread started, not yet told to stop */
	bool stop;
	const char *what;
	uint64_t t0;
	bool shown; /* a progress line is on the terminal */
} prog = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *progress_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&prog.mu);
	while (!prog.stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&prog.cv, &prog.mu, &ts);
		if (prog.stop) {
			break;
		}
		uint64_t s = (cli_now_ms() - prog.t0) / 1000;
		fprintf(stderr, "\r%s... %llus", prog.what,
		        (unsigned long long)s);
		fflush(stderr);
		prog.shown = true;
	}
	pthread_mutex_unlock(&prog.mu);
	return NULL;
}

void cli_progress_begin(struct cli *c, const char *what)
{
	if (!c->tty || c->quiet || prog.running) {
		return;
	}
	prog.what = what;
	prog.t0 = cli_now_ms();
	prog.stop = false;
	prog.shown = false;
	prog.running =
	        pthread_create(&prog.thread, NULL, progress_main, NULL) == 0;
}

void cli_progress_end(struct cli *c)
{
	(void)c;
	if (!prog.running) {
		return;
	}
	pthread_mutex_lock(&prog.mu);
	prog.stop = true;
	pthread_cond_signal(&prog.cv);
	pthread_mutex_unlock(&prog.mu);
	pthread_join(prog.thread, NULL);
	prog.running = false;
	if (prog.shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
}

/* -------------------------------------------------------------- client */

/* Split c->urls_buf at commas into c->urls. */
static int split_urls(struct cli *c)
{
	c->n_urls = 0;
	char *save = NULL;
	for (char *t = strtok_r(c->urls_buf, ",", &save); t != NULL;
	     t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ') {
			t++;
		}
		size_t l = strlen(t);
		while (l > 0 && t[l - 1] == ' ') {
			t[--l] = '\0';
		}
		if (l == 0) {
			continue;
		}
		if (c->n_urls == CLI_MAX_URLS) {
			return cli_fail(c, STRATA_EINVAL,
			                "--controller: more than %d URLs",
			                CLI_MAX_URLS);
		}
		if (strstr(t, "://") == NULL) {
			return cli_fail(c, STRATA_EINVAL,
			                "--controller: '%s' is not a URL; "
			                "write tcp://HOST:PORT, e.g. "
			                "tcp://127.0.0.1:9090",
			                t);
		}
		c->urls[c->n_urls++] = t;
	}
	if (c->n_urls == 0) {
		return cli_fail(c, STRATA_EINVAL,
		                "--controller is empty; give "
		                "tcp://HOST:PORT[,...]");
	}
	return 0;
}

/* Text of the URLs for messages. */
static void urls_text(const struct cli *c, char *buf, size_t size)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < c->n_urls && off + 1 < size; i++) {
		int n = snprintf(buf + off, size - off, "%s%s", i ? "," : "",
		                 c->urls[i]);
		if (n < 0) {
			break;
		}
		off += (size_t)n;
	}
}

/* One RPC_METHOD_PING to the controllers: 0 or the exit code. */
static int ping(struct cli *c)
{
	char err[STRATA_ERRMSG_SIZE];
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.connect_timeout_ms = (int)c->connect_timeout_ms;
	o.timeout_ms = (int)c->connect_timeout_ms;
	o.retries = (int)c->n_urls - 1;
	o.backoff_base_ms = 10;
	o.backoff_max_ms = 50;
	struct rpc_client *rc = NULL;
	int code = rpc_client_open(&rc, c->urls, c->n_urls, &o, err);
	if (code != 0) {
		return cli_fail(c, code, "--controller: %s", err);
	}
	uint8_t *reply = NULL;
	size_t len = 0;
	code = rpc_call(rc, RPC_METHOD_PING, RPC_IDEMPOTENT, NULL, 0, &reply,
	                &len, err);
	strata_free(reply);
	rpc_client_close(rc);
	if (code == 0) {
		return 0;
	}
	char urls[256];
	urls_text(c, urls, sizeof(urls));
	if (cli_exit_code(code) == CLI_EXIT_UNREACHABLE) {
		code = STRATA_EUNAVAIL;
	}
	if (strstr(err, "right after accepting it") != NULL) {
		/* Reached, but turned away (common/rpc.c says why). */
		return cli_fail(c, code,
		                "controller unreachable at %s: it closed the "
		                "connection right after accepting it: it is "
		                "stopping, or at its connection limit "
		                "(limits.connections) until others close; see "
		                "its log",
		                urls);
	}
	return cli_fail(c, code,
	                "controller unreachable at %s (no answer within "
	                "%llu ms: %s); check --controller or "
	                "STRATA_CONTROLLER, and that strata-standalone or "
	                "strata-controller runs there",
	                urls, (unsigned long long)c->connect_timeout_ms,
	                strata_strerror(code));
}

/* ping() once per invocation: 0 or the exit code. */
static int reach(struct cli *c)
{
	if (c->reached) {
		return 0;
	}
	int ex = ping(c);
	c->reached = ex == 0;
	return ex;
}

int cli_client(struct cli *c, struct strata_client **out)
{
	if (c->client != NULL) {
		*out = c->client;
		return 0;
	}
	int ex = reach(c);
	if (ex != 0) {
		return ex;
	}
	struct strata_client_config cfg;
	strata_client_config_default(&cfg);
	cfg.controller_urls = c->urls;
	cfg.n_controller_urls = c->n_urls;
	cfg.operation_timeout_ms = (int)c->timeout_ms;
	if (cfg.request_timeout_ms > (int)c->timeout_ms) {
		cfg.request_timeout_ms = (int)c->timeout_ms;
	}
	char err[STRATA_ERRMSG_SIZE];
	int code = strata_client_new(&cfg, &c->client, err);
	if (code != 0) {
		return cli_fail(c, code, "cannot create the client: %s", err);
	}
	*out = c->client;
	return 0;
}

int cli_rpc(struct cli *c, uint32_t method, unsigned flags,
            const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *reply_desc,
            ProtobufCMessage **reply, const char *what)
{
	*reply = NULL;
	int ex = reach(c);
	if (ex != 0) {
		return ex;
	}
	bool again = (flags & RPC_IDEMPOTENT) != 0;
	char err[STRATA_ERRMSG_SIZE];
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.connect_timeout_ms = (int)c->connect_timeout_ms;
	o.timeout_ms =
	        (int)(again && c->timeout_ms > 10000 ? 10000 : c->timeout_ms);
	o.retries = (int)c->n_urls;
	struct rpc_client *rc = NULL;
	int code = rpc_client_open(&rc, c->urls, c->n_urls, &o, err);
	if (code != 0) {
		return cli_fail(c, code, "--controller: %s", err);
	}
	code = rpc_call_pb(rc, method, flags, req, reply_desc, reply, err);
	rpc_client_close(rc);
	if (code != 0) {
		return cli_fail_op(c, code, what, err);
	}
	return 0;
}

/* ---------------------------------------------------------------- help */

static void cmd_title(const struct cli_cmd *k, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s", k->group != NULL ? k->group : "",
	         k->group != NULL ? " " : "", k->name);
}

/* Print text from column col, wrapped at 79 columns, continuation lines
 * indented to col. */
static void print_wrapped(FILE *out, const char *text, int col)
{
	int at = col;
	const char *p = text;
	while (*p != '\0') {
		size_t w = strcspn(p, " ");
		if (at > col && at + 1 + (int)w > 79) {
			fprintf(out, "\n%*s", col, "");
			at = col;
		} else if (at > col) {
			fputc(' ', out);
			at++;
		}
		fwrite(p, 1, w, out);
		at += (int)w;
		p += w;
		while (*p == ' ') {
			p++;
		}
	}
	fputc('\n', out);
}

static void list_commands(FILE *out, const char *group)
{
	for (size_t t = 0; t < N_TABLES; t++) {
		for (const struct cli_cmd *k = tables[t]; k->name != NULL;
		     k++) {
			if (group != NULL && (k->group == NULL ||
			                      strcmp(k->group, group) != 0)) {
				continue;
			}
			char title[128];
			char head[160];
			cmd_title(k, title, sizeof(title));
			snprintf(head, sizeof(head), "%s %s", title, k->args);
			if (strlen(head) <= 30) {
				fprintf(out, "  %-30s ", head);
			} else {
				fprintf(out, "  %s\n%33s", head, "");
			}
			print_wrapped(out, k->summary, 33);
		}
	}
}

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: " PROG " [GLOBAL OPTIONS] COMMAND [ARGUMENTS] "
	        "[OPTIONS]\n"
	        "\n"
	        "Manage and use a Strata cluster: scopes, streams, events in "
	        "and out,\nreader groups, cluster status.\n"
	        "\n"
	        "Commands:\n");
	list_commands(out, NULL);
	fprintf(out,
	        "\n"
	        "Run '" PROG " COMMAND --help' for a command's options. "
	        "Global options may\nalso follow the command "
	        "(--controller, --json, --quiet, --timeout,\n"
	        "--connect-timeout).\n"
	        "\n"
	        "Exit codes: 0 success; 1 the operation failed (the cluster "
	        "refused it:\nno such stream, already exists, not sealed...); "
	        "2 bad usage or input\n(unknown option, malformed stream cut, "
	        "event over the size limit); 3 the\ncontroller or a segment "
	        "store is unreachable, or the operation timed out.\n"
	        "\n"
	        "Example:\n"
	        "  " PROG " scope create demo\n"
	        "  " PROG " stream create demo/first --segments 2\n"
	        "  echo hello | " PROG " write demo/first\n"
	        "  " PROG " read demo/first --from head --to tail\n"
	        "\n"
	        "Global ");
	config_print_help(schema, N_KEYS, out);
}

static void cmd_usage(const struct cli_cmd *k, FILE *out)
{
	char title[128];
	cmd_title(k, title, sizeof(title));
	fprintf(out, "Usage: " PROG " %s %s [OPTIONS]\n\n%s.\n", title, k->args,
	        k->summary);
	if (k->details != NULL) {
		fprintf(out, "\n%s", k->details);
	}
	if (k->n_opts > 0) {
		fprintf(out, "\nOptions:\n");
		cli_opts_print(k->opts, k->n_opts, out);
	}
	fprintf(out, "\nGlobal options:\n");
	cli_opts_print(global_opts, N_GLOBAL, out);
	fprintf(out, "  %-22s %s\n", "--help", "this help");
	fprintf(out, "\nExit codes: 0 ok, 1 operation failed, 2 bad usage or "
	             "input, 3 unreachable\nor timed out.\n");
}

/* -------------------------------------------------------------- lookup */

static const struct cli_cmd *find_cmd(const char *group, const char *name)
{
	for (size_t t = 0; t < N_TABLES; t++) {
		for (const struct cli_cmd *k = tables[t]; k->name != NULL;
		     k++) {
			if (group == NULL && k->group == NULL &&
			    strcmp(k->name, name) == 0) {
				return k;
			}
			if (group != NULL && k->group != NULL &&
			    strcmp(k->group, group) == 0 &&
			    strcmp(k->name, name) == 0) {
				return k;
			}
		}
	}
	return NULL;
}

static bool is_group(const char *name)
{
	for (size_t t = 0; t < N_TABLES; t++) {
		for (const struct cli_cmd *k = tables[t]; k->name != NULL;
		     k++) {
			if (k->group != NULL && strcmp(k->group, name) == 0) {
				return true;
			}
		}
	}
	return false;
}

/* The group or top-level command name closest to word (at most 2 edits
 * away), or NULL. */
static const char *nearest_word(const char *word)
{
	const char *best = NULL;
	size_t best_d = 3;
	size_t wl = strlen(word);
	for (size_t t = 0; t < N_TABLES; t++) {
		for (const struct cli_cmd *k = tables[t]; k->name != NULL;
		     k++) {
			const char *cand =
			        k->group != NULL ? k->group : k->name;
			size_t d = strata_edit_distance(word, wl, cand,
			                                strlen(cand));
			if (d < best_d) {
				best_d = d;
				best = cand;
			}
		}
	}
	return best;
}

/* Apply the global options given after the command. 0 or exit code. */
static int apply_globals(struct cli *c, const struct cli_args *a)
{
	const char *v = cli_args_get(a, "controller");
	if (v != NULL) {
		strata_free(c->urls_buf);
		c->urls_buf = strata_strdup(v);
		if (c->urls_buf == NULL) {
			return cli_fail(c, STRATA_ENOMEM, "out of memory");
		}
	}
	if (cli_args_given(a, "json")) {
		c->json = cli_args_has(a, "json");
	}
	if (cli_args_given(a, "quiet")) {
		c->quiet = cli_args_has(a, "quiet");
	}
	static const char *const durs[] = {"timeout", "connect-timeout"};
	uint64_t *dst[] = {&c->timeout_ms, &c->connect_timeout_ms};
	for (size_t i = 0; i < 2; i++) {
		v = cli_args_get(a, durs[i]);
		if (v == NULL) {
			continue;
		}
		uint64_t ms;
		if (config_parse_duration_ms(v, &ms) != 0 || ms < 100 ||
		    ms > 86400000u) {
			return cli_fail(c, STRATA_EINVAL,
			                "--%s '%s' is not a duration between "
			                "100ms and 1d; e.g. 30s",
			                durs[i], v);
		}
		*dst[i] = ms;
	}
	return 0;
}

/* Parse a command's arguments and run it. */
static int run_cmd(struct cli *c, const struct cli_cmd *k, int argc,
                   char **argv)
{
	struct cli_opt all[48];
	size_t n = 0;
	for (size_t i = 0; i < k->n_opts && n < 48; i++) {
		all[n++] = k->opts[i];
	}
	for (size_t i = 0; i < N_GLOBAL && n < 48; i++) {
		all[n++] = global_opts[i];
	}
	struct cli_args a;
	char err[STRATA_ERRMSG_SIZE];
	if (cli_args_parse(all, n, argc, argv, &a, err) != 0) {
		return cli_fail(c, STRATA_EINVAL,
		                "%s; run '" PROG " %s --help'", err,
		                c->cmd_name);
	}
	if (a.help) {
		cmd_usage(k, stdout);
		return 0;
	}
	if (a.n_pos < k->min_pos || a.n_pos > k->max_pos) {
		return cli_fail(c, STRATA_EINVAL,
		                "expected %s, got %zu argument%s; run '" PROG
		                " %s --help'",
		                k->args, a.n_pos, a.n_pos == 1 ? "" : "s",
		                c->cmd_name);
	}
	int ex = apply_globals(c, &a);
	if (ex == 0) {
		ex = split_urls(c);
	}
	if (ex != 0) {
		return ex;
	}
	return k->run(c, &a);
}

int main(int argc, char **argv)
{
	char err[STRATA_ERRMSG_SIZE];
	if (strata_process_init(err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return CLI_EXIT_FAILED;
	}
	struct config cfg;
	int first = argc;
	int rc = config_init(&cfg, schema, N_KEYS);
	if (rc == 0) {
		rc = config_load(&cfg, argc, argv, NULL, &first);
	}
	if (rc != 0) {
		fprintf(stderr, PROG ": %s\n", config_errmsg(&cfg));
		config_close(&cfg);
		return CLI_EXIT_USAGE;
	}
	if (config_version_requested(&cfg)) {
		strata_print_version(stdout, PROG);
		config_close(&cfg);
		return CLI_EXIT_OK;
	}
	if (config_help_requested(&cfg) || first >= argc) {
		bool help = config_help_requested(&cfg);
		usage(help ? stdout : stderr);
		config_close(&cfg);
		return help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	int level = STRATA_LOG_WARN;
	log_level_parse(config_get_string(&cfg, "log.level"), &level);
	log_set_level(level);

	struct cli c;
	memset(&c, 0, sizeof(c));
	c.json = config_get_bool(&cfg, "json");
	c.quiet = config_get_bool(&cfg, "quiet");
	c.timeout_ms = config_get_duration_ms(&cfg, "timeout");
	c.connect_timeout_ms = config_get_duration_ms(&cfg, "connect_timeout");
	c.tty = isatty(STDERR_FILENO) == 1;
	c.urls_buf = strata_strdup(config_get_string(&cfg, "controller"));
	config_close(&cfg);
	if (c.urls_buf == NULL) {
		fprintf(stderr, PROG ": out of memory\n");
		return CLI_EXIT_FAILED;
	}

	const char *word = argv[first];
	const struct cli_cmd *k = NULL;
	int used = 1;
	char title[128];
	if (is_group(word)) {
		const char *sub = first + 1 < argc ? argv[first + 1] : NULL;
		if (sub == NULL || strcmp(sub, "--help") == 0 ||
		    strcmp(sub, "-h") == 0) {
			FILE *out = sub != NULL ? stdout : stderr;
			fprintf(out, "Usage: " PROG " %s COMMAND ...\n\n",
			        word);
			list_commands(out, word);
			strata_free(c.urls_buf);
			return sub != NULL ? CLI_EXIT_OK : CLI_EXIT_USAGE;
		}
		k = find_cmd(word, sub);
		used = 2;
		if (k == NULL) {
			fprintf(stderr,
			        PROG ": unknown command '%s %s'; the %s "
			             "commands are:\n",
			        word, sub, word);
			list_commands(stderr, word);
			strata_free(c.urls_buf);
			return CLI_EXIT_USAGE;
		}
	} else {
		k = find_cmd(NULL, word);
		if (k == NULL) {
			const char *near = nearest_word(word);
			fprintf(stderr, PROG ": unknown command '%s'", word);
			if (near != NULL) {
				fprintf(stderr, " (did you mean '%s'?)", near);
			}
			fprintf(stderr,
			        "; run '" PROG " --help' for the list\n");
			strata_free(c.urls_buf);
			return CLI_EXIT_USAGE;
		}
	}
	cmd_title(k, title, sizeof(title));
	c.cmd_name = title;
	int ex = run_cmd(&c, k, argc - first - used, argv + first + used);
	if (fflush(stdout) != 0 && errno != EPIPE && ex == 0) {
		ex = cli_fail(&c, STRATA_EIO, "writing to stdout: %s",
		              strerror(errno));
	}
	strata_client_free(c.client);
	strata_free(c.urls_buf);
	log_close();
	return ex;
}
