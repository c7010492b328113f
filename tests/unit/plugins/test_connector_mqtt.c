/* Unit tests for the mqtt connector (plugins/connector/mqtt/): the real
 * connector-mqtt.so, dlopen()ed from $STRATA_PLUGIN_DIR, against a real
 * mosquitto broker (Debian package mosquitto) the tests start on a free
 * 127.0.0.1 port and stop at the end. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "strata/connector.h"
#include "tests/lib/check.h"
#include "tests/lib/connector.h"

#define MAX_LEN 4096 /* max_len of the polls */
#define PORT_LOW 20000
#define PORT_HIGH 32768 /* below Linux's ephemeral range (ports.py) */

static const struct strata_connector_ops *ops; /* its table */
static char err[STRATA_ERRMSG_SIZE];           /* the last op's message */
static char dir[] = "/tmp/test_connector_mqtt.XXXXXX"; /* broker files */
static pid_t broker_pid = -1; /* the running broker, -1 when none */
static int broker_port;       /* its port */
static char opt_broker[64];   /* "broker=mqtt://127.0.0.1:PORT\n" */

/* Milliseconds on the monotonic clock. */
static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A port in [PORT_LOW, PORT_HIGH) that a bind on 127.0.0.1 just found
 * free (released again: nothing listens on it). */
static int free_port(void)
{
	for (int i = 0; i < 200; i++) {
		int p = PORT_LOW + rand() % (PORT_HIGH - PORT_LOW);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0) {
			continue;
		}
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_port = htons((uint16_t)p),
		                        .sin_addr.s_addr = htonl(0x7f000001)};
		int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok) {
			return p;
		}
	}
	return -1;
}

/* The mosquitto binary: $MOSQUITTO, else /usr/sbin/mosquitto (Debian's
 * place, often not on a user's PATH), else mosquitto on the PATH. */
static const char *mosquitto_bin(void)
{
	const char *env = getenv("MOSQUITTO");
	if (env != NULL && env[0] != '\0') {
		return env;
	}
	if (access("/usr/sbin/mosquitto", X_OK) == 0) {
		return "/usr/sbin/mosquitto";
	}
	return "mosquitto";
}

/* Whether something accepts TCP connections on 127.0.0.1:port. */
static bool port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0) {
		return false;
	}
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(0x7f000001)};
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* Start mosquitto on port with persistence in dir; true once it
 * listens, false when it exited (the port was taken meanwhile; *missing_out
 * set when there is no mosquitto to run). */
static bool broker_try(int port, bool *missing_out)
{
	bool missing = false;
	char conf[128], line[1024];
	snprintf(conf, sizeof(conf), "%s/mosquitto.conf", dir);
	FILE *f = fopen(conf, "w");
	if (f == NULL) {
		return false;
	}
	fprintf(f,
	        "listener %d 127.0.0.1\nallow_anonymous true\n"
	        "persistence true\npersistence_location %s/\n"
	        "log_dest stderr\nlog_type all\n",
	        port, dir);
	if (geteuid() == 0) {
		fprintf(f, "user root\n"); /* else it drops to "mosquitto" */
	}
	fclose(f);
	snprintf(line, sizeof(line), "%s/broker.log", dir);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(line, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp(mosquitto_bin(), "mosquitto", "-c", conf, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", mosquitto_bin(),
		        strerror(errno));
		_exit(127);
	}
	if (pid < 0) {
		return false;
	}
	uint64_t deadline = now_ms() + 10000;
	while (now_ms() < deadline) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
				fprintf(stderr,
				        "mosquitto not found (%s): install "
				        "Debian's mosquitto package (apt-get "
				        "install mosquitto; scripts/deps.txt) "
				        "or set MOSQUITTO=/path/to/mosquitto\n",
				        mosquitto_bin());
				missing = true;
			}
			*missing_out = missing;
			return false;
		}
		if (port_open(port)) {
			broker_pid = pid;
			broker_port = port;
			snprintf(opt_broker, sizeof(opt_broker),
			         "broker=mqtt://127.0.0.1:%d\n", port);
			return true;
		}
		usleep(20 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return false;
}

/* Stop the broker (SIGTERM: it saves its sessions), if it runs. */
static void broker_stop(void)
{
	if (broker_pid > 0) {
		kill(broker_pid, SIGTERM);
		waitpid(broker_pid, NULL, 0);
		broker_pid = -1;
	}
}

static int teardown(void **state);

/* Group setup: load the plugin and start a broker on a free port (other
 * ports when one was taken meanwhile). */
static int setup(void **state)
{
	(void)state;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	fprintf(stderr, "test_connector_mqtt: seed %u\n", seed);
	srand(seed);
	ops = test_connector_load("mqtt");
	if (ops == NULL || mkdtemp(dir) == NULL) {
		return -1;
	}
	bool missing = false;
	for (int i = 0; i < 10 && !missing; i++) {
		int p = free_port();
		if (p > 0 && broker_try(p, &missing)) {
			return 0;
		}
	}
	if (!missing) {
		fprintf(stderr, "could not start mosquitto on 10 ports\n");
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "tail -20 %s/broker.log >&2", dir);
		if (system(cmd) != 0) {
			fprintf(stderr, "(no broker log)\n");
		}
	}
	teardown(state);
	return -1;
}

/* Group teardown: stop the broker, remove its files (kept, with its
 * log, when $TEST_KEEP_DIR is set), unload. */
static int teardown(void **state)
{
	broker_stop();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (getenv("TEST_KEEP_DIR") == NULL && system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", dir);
	}
	return test_connector_unload(state);
}

/* Options: the broker's line then extra. */
static const char *cfg(const char *extra)
{
	static char buf[1024];
	snprintf(buf, sizeof(buf), "%s%s", opt_broker, extra);
	return buf;
}

/* Poll s (100 ms each, at most timeout_ms in all) until want records
 * came; each appended to the string got[size] as "key|data\n". The
 * count. */
static size_t poll_some(void *s, size_t want, uint64_t timeout_ms, char *got,
                        size_t size)
{
	size_t have = 0;
	uint64_t deadline = now_ms() + timeout_ms;
	while (have < want && now_ms() < deadline) {
		struct strata_connector_record recs[16];
		size_t n = 0;
		bool end = true;
		assert_int_equal(ops->source_poll(s, 100, MAX_LEN, recs, 16, &n,
		                                  &end, err),
		                 0);
		assert_false(end);
		for (size_t k = 0; k < n; k++) {
			size_t l = strlen(got);
			snprintf(got + l, size - l, "%.*s|%.*s\n",
			         (int)recs[k].keylen, (const char *)recs[k].key,
			         (int)recs[k].len, (const char *)recs[k].data);
		}
		have += n;
	}
	return have;
}

/* Write count records "<prefix><i>" to sink s, one call each. */
static void write_n(void *s, const char *prefix, int from, int count)
{
	for (int i = from; i < from + count; i++) {
		char data[64];
		int len = snprintf(data, sizeof(data), "%s%d", prefix, i);
		struct strata_connector_record r = {.data = data,
		                                    .len = (size_t)len};
		assert_int_equal(ops->sink_write(s, &r, 1, err), 0);
	}
}

/* ------------------------------------------------------------ table */

/* The table: both sides, no flags (at least once both ways: not
 * replayable, not exactly once), no commit. */
static void test_table_fields(void **state)
{
	(void)state;
	test_connector_assert_table(ops, "mqtt", true, 0, true, 0, false);
}

/* ----------------------------------------------------------- config */

/* check accepts every key of each side, the defaults, IPv6 brackets and
 * clean sessions without a client_id, and connects nowhere (the broker
 * named does not exist). */
static void test_check_good_options(void **state)
{
	(void)state;
	const struct strata_host *h = &test_connector_host;
	assert_int_equal(ops->check(h, "topic=a/b\n", false, err), 0);
	assert_int_equal(ops->check(h, "topic=a/#\nclient_id=imp\n", true, err),
	                 0);
	assert_int_equal(ops->check(h, "topic=+/x\nclean_session=true\nqos=0\n",
	                            true, err),
	                 0);
	assert_int_equal(
	        ops->check(h,
	                   "broker=mqtt://[::1]:1884\ntopic=a\nqos=2\n"
	                   "client_id=c\nclean_session=false\nusername=u\n"
	                   "password=p\nkeepalive_s=30\n"
	                   "connect_timeout_ms=500\nmax_inflight=5\n"
	                   "ack_timeout_ms=1000\n",
	                   false, err),
	        0);
	assert_int_equal(ops->check(h,
	                            "broker=mqtt://no.such.host.invalid\n"
	                            "topic=a/#\nclient_id=c\nusername=u\n",
	                            true, err),
	                 0);
}

/* Bad options: each STRATA_ECONFIG naming the key and what is wanted,
 * from check and from open alike (open fails before connecting). */
static void test_check_bad_options(void **state)
{
	(void)state;
	static const struct {
		bool source;
		const char *config;
		const char *want1, *want2;
	} bad[] = {
	        {false, "topic=a\ncolour=red\n", "'colour'",
	         "max_inflight, ack_timeout_ms)"},
	        {true, "topic=a\nclient_id=c\nmax_inflight=3\n",
	         "'max_inflight'", "connect_timeout_ms)"},
	        {false, "qos=1\n", "topic", "required"},
	        {true, "client_id=c\n", "topic", "sensors/#"},
	        {false, "topic=a\nqos=3\n", "qos", "0, 1 or 2"},
	        {false, "topic=a/#\n", "topic", "no '+' or '#'"},
	        {true, "topic=a/#/b\nclient_id=c\n", "topic", "filter"},
	        {false, "topic=a\nbroker=tcp://h:1\n", "broker",
	         "mqtt://HOST[:PORT]"},
	        {false, "topic=a\nbroker=mqtts://h:1\n", "broker", "TLS"},
	        {false, "topic=a\nbroker=mqtt://h:0\n", "broker",
	         "'mqtt://h:0'"},
	        {false, "topic=a\nbroker=mqtt://h:70000\n", "broker", "PORT"},
	        {false, "topic=a\nbroker=mqtt://\n", "broker", "PORT"},
	        {true, "topic=a\n", "client_id", "clean_session=false"},
	        {false, "topic=a\nclean_session=no\n", "client_id",
	         "clean_session=true"},
	        {false, "topic=a\nclean_session=maybe\n", "clean_session",
	         "true or false"},
	        {false, "topic=a\npassword=secret\n", "password", "username"},
	        {false, "topic=a\nkeepalive_s=2\n", "keepalive_s", "5..65535"},
	        {false, "topic=a\nmax_inflight=0\n", "max_inflight",
	         "1..65535"},
	        {false, "topic=a\nack_timeout_ms=5\n", "ack_timeout_ms",
	         "100.."},
	        {true, "topic=a\nclient_id=c\nconnect_timeout_ms=x\n",
	         "connect_timeout_ms", "100..600000"},
	        {false, "topic\n", "'topic'", "not key=value"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		int rc = ops->check(&test_connector_host, bad[i].config,
		                    bad[i].source, err);
		if (rc != STRATA_ECONFIG) {
			fprintf(stderr, "config %zu: %s\n", i, bad[i].config);
		}
		assert_int_equal(rc, STRATA_ECONFIG);
		assert_contains(err, bad[i].want1);
		assert_contains(err, bad[i].want2);
		assert_contains(err,
		                bad[i].source ? "mqtt source" : "mqtt sink");
		void *s = NULL;
		char err2[STRATA_ERRMSG_SIZE];
		rc = bad[i].source
		             ? ops->source_open(&test_connector_host,
		                                bad[i].config, NULL, &s, err2)
		             : ops->sink_open(&test_connector_host,
		                              bad[i].config, NULL, &s, err2);
		assert_int_equal(rc, STRATA_ECONFIG);
		assert_string_equal(err2, err);
	}
	/* A password is never echoed. */
	char longpw[400] = "topic=a\nusername=u\npassword=";
	memset(longpw + strlen(longpw), 'S', 300);
	assert_int_equal(ops->check(&test_connector_host, longpw, false, err),
	                 STRATA_ECONFIG);
	assert_contains(err, "password");
	assert_null(strstr(err, "SSS"));
}

/* A restore token is refused by the source (it cannot replay). */
static void test_source_open_restore_refused(void **state)
{
	(void)state;
	void *s = NULL;
	assert_int_equal(ops->source_open(&test_connector_host,
	                                  cfg("topic=a\nclient_id=r\n"), "n=5",
	                                  &s, err),
	                 STRATA_EINVAL);
	assert_contains(err, "cannot be replayed");
	assert_contains(err, "'n=5'");
	assert_contains(err, "guarantee=at-least-once");
}

/* Nothing listening on the broker's port: both sides fail at open with
 * STRATA_ECONNREFUSED naming the broker and saying to check that it
 * runs; quickly, not after connect_timeout_ms. */
static void test_open_broker_down(void **state)
{
	(void)state;
	int port = free_port();
	assert_true(port > 0);
	char conf[256], want[64];
	snprintf(conf, sizeof(conf),
	         "broker=mqtt://127.0.0.1:%d\ntopic=a\nclient_id=d\n"
	         "connect_timeout_ms=20000\n",
	         port);
	snprintf(want, sizeof(want), "mqtt://127.0.0.1:%d", port);
	void *s = NULL;
	uint64_t t0 = now_ms();
	assert_int_equal(
	        ops->sink_open(&test_connector_host, conf, NULL, &s, err),
	        STRATA_ECONNREFUSED);
	assert_contains(err, want);
	assert_contains(err, "refused");
	assert_contains(err, "broker is running");
	assert_int_equal(
	        ops->source_open(&test_connector_host, conf, NULL, &s, err),
	        STRATA_ECONNREFUSED);
	assert_contains(err, want);
	assert_contains(err, "broker is running");
	assert_true(now_ms() - t0 < 10000);
}

/* Out of memory at open: STRATA_ENOMEM, nothing leaked. */
static void test_open_out_of_memory(void **state)
{
	(void)state;
	void *s = NULL;
	test_alloc_calls = 0;
	test_alloc_fail_at = 1;
	int rc = ops->sink_open(&test_connector_host, cfg("topic=a\n"), NULL,
	                        &s, err);
	test_alloc_fail_at = 0;
	assert_int_equal(rc, STRATA_ENOMEM);
	assert_contains(err, "out of memory");
}

/* ------------------------------------------------------- round trip */

/* Three sinks (QoS 0, 1, 2) publish interleaved, in rounds the source
 * reads as they come (as strata-connect polls: a subscriber that lets a
 * backlog of mixed QoS pile up can stall Debian's mosquitto 2.0.11);
 * prepare returns once all are acknowledged ("n=<count>"); one source
 * subscribed to rt/# gets every message once, keyed by its topic, in
 * order per topic (an empty payload included); its position counts the
 * records. */
static void test_round_trip(void **state)
{
	(void)state;
	void *src = NULL;
	assert_int_equal(ops->source_open(&test_connector_host,
	                                  cfg("topic=rt/#\nclient_id=rt\n"
	                                      "qos=2\n"),
	                                  NULL, &src, err),
	                 0);
	/* The subscription is in place once the source has read its
	 * SUBACK: poll (nothing published yet). */
	static char got[16384];
	got[0] = '\0';
	assert_int_equal(poll_some(src, 1, 300, got, sizeof(got)), 0);
	void *snk[3];
	for (int q = 0; q < 3; q++) {
		char c[128];
		snprintf(c, sizeof(c), "topic=rt/q%d\nqos=%d\n", q, q);
		assert_int_equal(ops->sink_open(&test_connector_host, cfg(c),
		                                NULL, &snk[q], err),
		                 0);
	}
	struct strata_connector_record empty = {.data = "", .len = 0};
	assert_int_equal(ops->sink_write(snk[1], &empty, 1, err), 0);
	char tok[STRATA_CONNECTOR_TOKEN_MAX], want[16];
	for (int round = 0; round < 5; round++) {
		for (int i = round * 10; i < round * 10 + 10; i++) {
			for (int q = 0; q < 3; q++) {
				write_n(snk[q], "m", i, 1);
			}
		}
		for (int q = 0; q < 3; q++) {
			assert_int_equal(ops->sink_prepare(snk[q], tok,
			                                   sizeof(tok), err),
			                 0);
			snprintf(want, sizeof(want), "n=%d",
			         round * 10 + 10 + (q == 1 ? 1 : 0));
			assert_string_equal(tok, want);
		}
		size_t n = round == 0 ? 31 : 30;
		assert_int_equal(poll_some(src, n, 10000, got, sizeof(got)), n);
	}
	/* Per topic: in order, each once. */
	int next[3] = {0, 0, 0};
	bool saw_empty = false;
	for (char *ln = got, *nl; (nl = strchr(ln, '\n')) != NULL;
	     ln = nl + 1) {
		*nl = '\0';
		int q, i;
		if (strcmp(ln, "rt/q1|") == 0) {
			assert_false(saw_empty);
			assert_int_equal(next[1], 0); /* written first */
			saw_empty = true;
			continue;
		}
		assert_int_equal(sscanf(ln, "rt/q%d|m%d", &q, &i), 2);
		assert_true(q >= 0 && q < 3);
		assert_int_equal(i, next[q]);
		next[q]++;
	}
	assert_true(saw_empty);
	assert_int_equal(next[0], 50);
	assert_int_equal(next[1], 50);
	assert_int_equal(next[2], 50);
	assert_int_equal(ops->source_position(src, tok, sizeof(tok), err), 0);
	assert_string_equal(tok, "n=151");
	/* Nothing more. */
	got[0] = '\0';
	assert_int_equal(poll_some(src, 1, 200, got, sizeof(got)), 0);
	for (int q = 0; q < 3; q++) {
		ops->sink_close(snk[q]);
	}
	ops->source_close(src);
}

/* max_inflight=1: write blocks for each acknowledgement and still
 * publishes everything, in order; a restore token is ignored. */
static void test_sink_max_inflight_one(void **state)
{
	(void)state;
	void *src = NULL, *snk = NULL;
	assert_int_equal(
	        ops->source_open(&test_connector_host,
	                         cfg("topic=one\nclean_session=true\n"), NULL,
	                         &src, err),
	        0);
	char got[8192] = "";
	assert_int_equal(poll_some(src, 1, 300, got, sizeof(got)), 0);
	assert_int_equal(ops->sink_open(&test_connector_host,
	                                cfg("topic=one\nmax_inflight=1\n"),
	                                "n=7", &snk, err),
	                 0);
	struct strata_connector_record r[40];
	char data[40][8];
	for (int i = 0; i < 40; i++) {
		r[i].data = data[i];
		r[i].len = (size_t)snprintf(data[i], sizeof(data[i]), "%d", i);
	}
	assert_int_equal(ops->sink_write(snk, r, 40, err), 0);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->sink_prepare(snk, tok, sizeof(tok), err), 0);
	assert_string_equal(tok, "n=40");
	assert_int_equal(poll_some(src, 40, 10000, got, sizeof(got)), 40);
	char want[8192] = "";
	for (int i = 0; i < 40; i++) {
		size_t l = strlen(want);
		snprintf(want + l, sizeof(want) - l, "one|%d\n", i);
	}
	assert_string_equal(got, want);
	ops->sink_close(snk);
	ops->source_close(src);
}

/* A persistent session (clean_session=false, the source's default): what
 * is published while the source is closed is delivered when it opens
 * again with the same client_id. */
static void test_source_session_kept_while_closed(void **state)
{
	(void)state;
	const char *c = cfg("topic=keep/#\nclient_id=keeper\n");
	char conf[1024];
	snprintf(conf, sizeof(conf), "%s", c);
	void *src = NULL, *snk = NULL;
	assert_int_equal(
	        ops->source_open(&test_connector_host, conf, NULL, &src, err),
	        0);
	char got[8192] = "";
	assert_int_equal(poll_some(src, 1, 300, got, sizeof(got)), 0);
	ops->source_close(src);
	assert_int_equal(ops->sink_open(&test_connector_host,
	                                cfg("topic=keep/x\n"), NULL, &snk, err),
	                 0);
	write_n(snk, "k", 0, 20);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->sink_prepare(snk, tok, sizeof(tok), err), 0);
	assert_string_equal(tok, "n=20");
	ops->sink_close(snk);
	assert_int_equal(
	        ops->source_open(&test_connector_host, conf, NULL, &src, err),
	        0);
	assert_int_equal(poll_some(src, 20, 10000, got, sizeof(got)), 20);
	char want[8192] = "";
	for (int i = 0; i < 20; i++) {
		size_t l = strlen(want);
		snprintf(want + l, sizeof(want) - l, "keep/x|k%d\n", i);
	}
	assert_string_equal(got, want);
	ops->source_close(src);
}

/* A message longer than max_len: the records before it come out, then
 * STRATA_ETOOBIG naming its size and topic. */
static void test_source_message_too_big(void **state)
{
	(void)state;
	void *src = NULL, *snk = NULL;
	assert_int_equal(ops->source_open(&test_connector_host,
	                                  cfg("topic=big/#\nclient_id=big\n"),
	                                  NULL, &src, err),
	                 0);
	char got[512] = "";
	assert_int_equal(poll_some(src, 1, 300, got, sizeof(got)), 0);
	assert_int_equal(ops->sink_open(&test_connector_host,
	                                cfg("topic=big/t\n"), NULL, &snk, err),
	                 0);
	char big[100];
	memset(big, 'b', sizeof(big));
	struct strata_connector_record r[2] = {{.data = "small", .len = 5},
	                                       {.data = big, .len = 100}};
	assert_int_equal(ops->sink_write(snk, r, 2, err), 0);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->sink_prepare(snk, tok, sizeof(tok), err), 0);
	ops->sink_close(snk);
	struct strata_connector_record recs[4];
	size_t n = 0, total = 0;
	bool end;
	int rc = 0;
	uint64_t deadline = now_ms() + 10000;
	while (rc == 0 && now_ms() < deadline) {
		rc = ops->source_poll(src, 100, 64, recs, 4, &n, &end, err);
		if (rc == 0 && n > 0) {
			assert_int_equal(n, 1);
			assert_memory_equal(recs[0].data, "small", 5);
		}
		total += n;
	}
	assert_int_equal(total, 1);
	assert_int_equal(rc, STRATA_ETOOBIG);
	assert_contains(err, "100 bytes");
	assert_contains(err, "topic 'big/t'");
	assert_contains(err, "longer than 64 bytes");
	ops->source_close(src);
}

/* Out of memory for a message read (already acknowledged): the poll
 * fails saying a message was lost. */
static void test_source_out_of_memory(void **state)
{
	(void)state;
	void *src = NULL, *snk = NULL;
	assert_int_equal(ops->source_open(&test_connector_host,
	                                  cfg("topic=oom\nclient_id=oom\n"),
	                                  NULL, &src, err),
	                 0);
	char got[512] = "";
	assert_int_equal(poll_some(src, 1, 300, got, sizeof(got)), 0);
	assert_int_equal(ops->sink_open(&test_connector_host,
	                                cfg("topic=oom\n"), NULL, &snk, err),
	                 0);
	write_n(snk, "x", 0, 1);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->sink_prepare(snk, tok, sizeof(tok), err), 0);
	ops->sink_close(snk);
	test_alloc_calls = 0;
	test_alloc_fail_at = 1;
	struct strata_connector_record recs[4];
	size_t n = 0;
	bool end;
	int rc = 0;
	uint64_t deadline = now_ms() + 10000;
	while (rc == 0 && now_ms() < deadline) {
		rc = ops->source_poll(src, 100, MAX_LEN, recs, 4, &n, &end,
		                      err);
		assert_int_equal(n, 0);
	}
	test_alloc_fail_at = 0;
	assert_int_equal(rc, STRATA_ENOMEM);
	assert_contains(err, "lost");
	ops->source_close(src);
}

/* The broker stops: a sink with nothing in flight tries to reconnect and
 * fails naming the broker; later ops repeat the error; a source's poll
 * reports the lost connection. Last: it stops the group's broker. */
static void test_broker_stops(void **state)
{
	(void)state;
	void *src = NULL, *snk = NULL;
	assert_int_equal(ops->source_open(&test_connector_host,
	                                  cfg("topic=gone\nclient_id=gone\n"),
	                                  NULL, &src, err),
	                 0);
	assert_int_equal(ops->sink_open(&test_connector_host,
	                                cfg("topic=gone\n"), NULL, &snk, err),
	                 0);
	write_n(snk, "g", 0, 3);
	char tok[STRATA_CONNECTOR_TOKEN_MAX];
	assert_int_equal(ops->sink_prepare(snk, tok, sizeof(tok), err), 0);
	char got[512] = "";
	assert_int_equal(poll_some(src, 3, 10000, got, sizeof(got)), 3);
	broker_stop();
	char want[64];
	snprintf(want, sizeof(want), "mqtt://127.0.0.1:%d", broker_port);
	int rc = 0;
	uint64_t deadline = now_ms() + 10000;
	while (rc == 0 && now_ms() < deadline) {
		struct strata_connector_record recs[4];
		size_t n = 0;
		bool end;
		rc = ops->source_poll(src, 100, MAX_LEN, recs, 4, &n, &end,
		                      err);
		assert_int_equal(n, 0);
	}
	assert_int_equal(rc, STRATA_EUNAVAIL);
	assert_contains(err, "connection to broker ");
	assert_contains(err, want);
	assert_contains(err, "lost");
	ops->source_close(src);
	struct strata_connector_record r = {.data = "z", .len = 1};
	rc = ops->sink_write(snk, &r, 1, err);
	assert_int_equal(rc, STRATA_ECONNREFUSED);
	assert_contains(err, want);
	assert_contains(err, "broker is running");
	assert_int_equal(ops->sink_prepare(snk, tok, sizeof(tok), err),
	                 STRATA_ECONNREFUSED);
	assert_contains(err, "an earlier operation failed");
	assert_contains(err, want);
	ops->sink_close(snk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_table_fields),
	        cmocka_unit_test(test_check_good_options),
	        cmocka_unit_test(test_check_bad_options),
	        cmocka_unit_test(test_source_open_restore_refused),
	        cmocka_unit_test(test_open_broker_down),
	        cmocka_unit_test(test_open_out_of_memory),
	        cmocka_unit_test(test_round_trip),
	        cmocka_unit_test(test_sink_max_inflight_one),
	        cmocka_unit_test(test_source_session_kept_while_closed),
	        cmocka_unit_test(test_source_message_too_big),
	        cmocka_unit_test(test_source_out_of_memory),
	        cmocka_unit_test(test_broker_stops), /* last: stops it */
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
