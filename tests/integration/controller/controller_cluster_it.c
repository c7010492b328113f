/* Integration test of strata-controller: three real controller processes
 * and two test stand-in stores on 127.0.0.1. Creates scopes and streams
 * through the client API, kills -9 the leader in the middle of a scale
 * workflow, checks that a new leader finishes it and that the three
 * replicas hold identical state, does the same in the merge step of a
 * rolling transaction commit, restarts every replica and checks that
 * every scope, stream and epoch is kept, and checks that --help and
 * docs/configuration.md document every config key.
 *
 * usage: controller_cluster_it CONTROLLER_BIN TEST_STORE_BIN SOURCE_DIR
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/process.h"
#include "common/rpc.h"
#include "strata/error.h"
#include "strata/v1/controller.pb-c.h"

#define N_CTL 3    /* bootstrapped replicas */
#define MAX_CTL 4  /* plus one that joins later */
#define N_STORES 1 /* the stand-in does not replicate: one store */
#define CONTAINERS 4

static const char *ctl_bin, *store_bin, *src_dir, *stratactl_bin;
static char dir[256];
static pid_t ctl_pid[MAX_CTL], store_pid[N_STORES];
static int ctl_port[MAX_CTL], http_port[MAX_CTL], raft_port[MAX_CTL];
static char ctl_url[MAX_CTL][64];
static char members[1024];              /* the bootstrapped replicas */
static char members_join[1400];         /* those plus the joining one */
static struct rpc_client *all;          /* every controller, redirects */
static struct rpc_client *one[MAX_CTL]; /* one controller each */

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static void kill_all(void)
{
	for (int i = 0; i < MAX_CTL; i++) {
		if (ctl_pid[i] > 0) {
			kill(ctl_pid[i], SIGKILL);
			waitpid(ctl_pid[i], NULL, 0);
			ctl_pid[i] = 0;
		}
	}
	for (int i = 0; i < N_STORES; i++) {
		if (store_pid[i] > 0) {
			kill(store_pid[i], SIGKILL);
			waitpid(store_pid[i], NULL, 0);
			store_pid[i] = 0;
		}
	}
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));

static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "FAIL: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n(logs kept in %s)\n", dir);
	va_end(ap);
	kill_all();
	exit(1);
}

#define CHECK(cond, ...)                   \
	do {                               \
		if (!(cond)) {             \
			fail(__VA_ARGS__); \
		}                          \
	} while (0)

/* A port the kernel says is free, never one handed out before: the kernel
 * may give a just-closed port again, and two nodes' ports once collided
 * that way (a controller's client port equal to its Raft port: it exited
 * with "address already in use" and the cluster lost its quorum). */
static int free_port(void)
{
	static int given[64];
	static unsigned n_given;
	for (int attempt = 0; attempt < 100; attempt++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t len = sizeof(a);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		CHECK(fd >= 0 &&
		              bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		              getsockname(fd, (struct sockaddr *)&a, &len) == 0,
		      "cannot find a free port: %s", strerror(errno));
		close(fd);
		int port = ntohs(a.sin_port);
		bool dup = false;
		for (unsigned i = 0; i < n_given; i++) {
			dup = dup || given[i] == port;
		}
		if (!dup) {
			CHECK(n_given < 64, "too many ports");
			given[n_given++] = port;
			return port;
		}
	}
	fail("no new free port in 100 attempts");
}

static pid_t spawn(char *const argv[], const char *out, const char *err)
{
	pid_t pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Die with the test, whatever ends it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int o = open(out, O_WRONLY | O_CREAT | O_APPEND, 0644);
		int e = open(err, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (o < 0 || e < 0) {
			_exit(127);
		}
		dup2(o, 1);
		dup2(e, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* Pick node i's ports and append its raft.members entry at dst (cap
 * bytes); the entry's length. */
static size_t set_ports(int i, char *dst, size_t cap)
{
	ctl_port[i] = free_port();
	http_port[i] = free_port();
	raft_port[i] = free_port();
	snprintf(ctl_url[i], sizeof(ctl_url[i]), "tcp://127.0.0.1:%d",
	         ctl_port[i]);
	return (size_t)snprintf(
	        dst, cap, "%s%d=127.0.0.1:%d,%s,http://127.0.0.1:%d",
	        i ? ";" : "", i + 1, raft_port[i], ctl_url[i], http_port[i]);
}

static void start_ctl(int i)
{
	char a[16][300];
	snprintf(a[0], sizeof(a[0]), "%s", ctl_bin);
	snprintf(a[1], sizeof(a[1]), "--node.id=%d", i + 1);
	snprintf(a[2], sizeof(a[2]), "--data-dir=%s/ctl%d", dir, i + 1);
	snprintf(a[3], sizeof(a[3]), "--listen=%s", ctl_url[i]);
	snprintf(a[4], sizeof(a[4]), "--http.listen=http://127.0.0.1:%d",
	         http_port[i]);
	snprintf(a[5], sizeof(a[5]), "--raft.listen=127.0.0.1:%d",
	         raft_port[i]);
	snprintf(a[6], sizeof(a[6]), "--containers.count=%d", CONTAINERS);
	snprintf(a[7], sizeof(a[7]), "--store.lease=6s");
	snprintf(a[8], sizeof(a[8]), "--api.wait-timeout=200ms");
	snprintf(a[9], sizeof(a[9]), "--raft.snapshot-bytes=64KiB");
	snprintf(a[10], sizeof(a[10]), "--driver.backoff-max=500ms");
	char *argv[14];
	for (int k = 0; k < 11; k++) {
		argv[k] = a[k];
	}
	char mem[1500];
	snprintf(mem, sizeof(mem), "--raft.members=%s",
	         i < N_CTL ? members : members_join);
	argv[11] = mem;
	argv[12] = i < N_CTL ? NULL : "--raft.join=true";
	argv[13] = NULL;
	char out[300], err[300];
	snprintf(out, sizeof(out), "%s/ctl%d.out", dir, i + 1);
	snprintf(err, sizeof(err), "%s/ctl%d.log", dir, i + 1);
	ctl_pid[i] = spawn(argv, out, err);
}

static void start_store(int i)
{
	char id[16], ctls[300], rec[300], delay[300], cont[16];
	snprintf(id, sizeof(id), "%d", i + 1);
	snprintf(ctls, sizeof(ctls), "%s,%s,%s", ctl_url[0], ctl_url[1],
	         ctl_url[2]);
	/* Each stand-in keeps its own segments and nothing replicates them,
	 * so the test runs one: it leads every container. */
	snprintf(rec, sizeof(rec), "%s/store%d.rec", dir, i + 1);
	snprintf(delay, sizeof(delay), "%s/delay_seal", dir);
	snprintf(cont, sizeof(cont), "%d", CONTAINERS);
	char *argv[] = {(char *)store_bin,
	                "--id",
	                id,
	                "--controllers",
	                ctls,
	                "--record",
	                rec,
	                "--containers",
	                cont,
	                "--delay-file",
	                delay,
	                NULL};
	char out[300], err[300];
	snprintf(out, sizeof(out), "%s/store%d.out", dir, i + 1);
	snprintf(err, sizeof(err), "%s/store%d.log", dir, i + 1);
	store_pid[i] = spawn(argv, out, err);
}

static void kill_ctl(int i)
{
	kill(ctl_pid[i], SIGKILL);
	waitpid(ctl_pid[i], NULL, 0);
	ctl_pid[i] = 0;
}

/* stratactl cluster status shows dead replica i as unreachable (the
 * replica answering knows only its own role and the leader's). */
static void check_status_unreachable(int i)
{
	if (stratactl_bin == NULL) {
		return;
	}
	char cmd[1024], out[8192], want[64];
	snprintf(cmd, sizeof(cmd),
	         "%s --controller %s,%s,%s cluster status --json 2>&1",
	         stratactl_bin, ctl_url[0], ctl_url[1], ctl_url[2]);
	FILE *p = popen(cmd, "r");
	CHECK(p != NULL, "popen stratactl: %s", strerror(errno));
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	pclose(p);
	snprintf(want, sizeof(want),
	         "{\"id\":%d,\"role\":\"unreachable\",\"reachable\":false",
	         i + 1);
	CHECK(strstr(out, want) != NULL,
	      "cluster status does not show node %d unreachable: %s", i + 1,
	      out);
	printf("cluster status shows the dead node %d unreachable\n", i + 1);
}

/* ------------------------------------------------------------ calls -- */

static int call(struct rpc_client *c, uint32_t method,
                const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *desc, void **rep, char *err)
{
	ProtobufCMessage *m = NULL;
	if (desc == NULL) {
		desc = &strata__v1__controller_reply__descriptor;
	}
	int rc = rpc_call_pb(c, method, 0, req, desc, &m, err);
	/* "No leader known yet" (an election, or a replica that has not
	 * heard from the new leader): retry for a while, as clients do. The
	 * per-replica clients (one[]) ask about that replica: no retry. */
	for (int i = 0; c == all && rc == STRATA_EUNAVAIL && i < 100; i++) {
		sleep_ms(100);
		rc = rpc_call_pb(c, method, 0, req, desc, &m, err);
	}
	if (rep != NULL) {
		*rep = m;
	} else {
		rpc_pb_free(m);
	}
	return rc;
}

/* Digest of replica i: 0 with its applied index, digest and leader. */
static int digest(int i, uint64_t *applied, uint64_t *dig, uint64_t *leader)
{
	Strata__V1__StateDigestRequest q =
	        STRATA__V1__STATE_DIGEST_REQUEST__INIT;
	Strata__V1__StateDigestReply *r;
	char err[STRATA_ERRMSG_SIZE];
	int rc = call(one[i],
	              STRATA__V1__CONTROLLER_METHOD__CTL_GET_STATE_DIGEST,
	              &q.base, &strata__v1__state_digest_reply__descriptor,
	              (void **)&r, err);
	if (rc == 0) {
		*applied = r->applied_index;
		*dig = r->digest;
		*leader = r->leader_id;
		rpc_pb_free(&r->base);
	}
	return rc;
}

/* The leader's index 0..N_CTL-1 as seen by any live replica; -1 none. */
static int find_leader(void)
{
	for (int i = 0; i < MAX_CTL; i++) {
		uint64_t a, d, l;
		if (ctl_pid[i] > 0 && digest(i, &a, &d, &l) == 0 && l > 0 &&
		    l <= MAX_CTL && ctl_pid[l - 1] > 0) {
			uint64_t a2, d2, l2;
			if (digest((int)l - 1, &a2, &d2, &l2) == 0 && l2 == l) {
				return (int)l - 1;
			}
		}
	}
	return -1;
}

static int wait_leader(unsigned ms)
{
	uint64_t end = mono_ms() + ms;
	while (mono_ms() < end) {
		int l = find_leader();
		if (l >= 0) {
			return l;
		}
		sleep_ms(100);
	}
	fail("no controller leader within %u ms", ms);
}

/* Wait until the live replicas report the same applied index and state
 * digest. */
static void wait_identical(unsigned ms, int expect_live)
{
	uint64_t end = mono_ms() + ms;
	uint64_t a[MAX_CTL], d[MAX_CTL], l;
	while (mono_ms() < end) {
		int n = 0;
		bool same = true;
		for (int i = 0; i < MAX_CTL; i++) {
			if (ctl_pid[i] <= 0) {
				continue;
			}
			if (digest(i, &a[n], &d[n], &l) != 0) {
				same = false;
				break;
			}
			if (n > 0 && (a[n] != a[0] || d[n] != d[0])) {
				same = false;
			}
			n++;
		}
		if (same && n == expect_live && a[0] > 0) {
			printf("replicas identical at index %" PRIu64
			       " (digest %016" PRIx64 ")\n",
			       a[0], d[0]);
			return;
		}
		sleep_ms(50);
	}
	fail("replicas did not converge to identical state within %u ms", ms);
}

static void create_scope(const char *scope)
{
	Strata__V1__CreateScopeRequest q =
	        STRATA__V1__CREATE_SCOPE_REQUEST__INIT;
	char err[STRATA_ERRMSG_SIZE];
	q.scope = (char *)scope;
	int rc = call(all, STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_SCOPE,
	              &q.base, NULL, NULL, err);
	CHECK(rc == 0 || rc == STRATA_EEXIST, "create scope %s: %s (%s)", scope,
	      strata_error_name(rc), err);
}

static Strata__V1__StreamInfo *get_stream(const char *scope, const char *stream,
                                          int *rc)
{
	Strata__V1__GetStreamRequest q = STRATA__V1__GET_STREAM_REQUEST__INIT;
	Strata__V1__StreamInfo *si = NULL;
	char err[STRATA_ERRMSG_SIZE];
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	*rc = call(all, STRATA__V1__CONTROLLER_METHOD__CTL_GET_STREAM, &q.base,
	           &strata__v1__stream_info__descriptor, (void **)&si, err);
	return si;
}

/* Wait until scope/stream is in state with current epoch epoch. */
static void wait_stream(const char *scope, const char *stream, int state,
                        uint32_t epoch, unsigned ms)
{
	uint64_t end = mono_ms() + ms;
	int last_state = -1, rc = 0;
	while (mono_ms() < end) {
		Strata__V1__StreamInfo *si = get_stream(scope, stream, &rc);
		if (si != NULL) {
			last_state = si->state;
			bool ok = (int)si->state == state &&
			          si->current_epoch == epoch;
			rpc_pb_free(&si->base);
			if (ok) {
				return;
			}
		}
		sleep_ms(100);
	}
	fail("stream %s/%s not in state %d epoch %u within %u ms (last "
	     "state %d, rc %s)",
	     scope, stream, state, epoch, ms, last_state,
	     strata_error_name(rc));
}

static void create_stream(const char *scope, const char *stream, uint32_t n)
{
	Strata__V1__CreateStreamRequest q =
	        STRATA__V1__CREATE_STREAM_REQUEST__INIT;
	Strata__V1__StreamConfig c = STRATA__V1__STREAM_CONFIG__INIT;
	Strata__V1__ScalingPolicy p = STRATA__V1__SCALING_POLICY__INIT;
	Strata__V1__FixedScaling f = STRATA__V1__FIXED_SCALING__INIT;
	char err[STRATA_ERRMSG_SIZE];
	f.min_segments = n;
	p.policy_case = STRATA__V1__SCALING_POLICY__POLICY_FIXED;
	p.fixed = &f;
	c.scaling = &p;
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	q.config = &c;
	int rc = call(all, STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_STREAM,
	              &q.base, NULL, NULL, err);
	CHECK(rc == 0 || rc == STRATA_EEXIST, "create stream %s/%s: %s (%s)",
	      scope, stream, strata_error_name(rc), err);
	wait_stream(scope, stream,
	            STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE, 0, 60000);
}

/* Packed GetStream + current segments of every stream of every scope:
 * the metadata a restart must keep. */
static char *metadata(size_t *len)
{
	char err[STRATA_ERRMSG_SIZE];
	Strata__V1__ListScopesRequest lq =
	        STRATA__V1__LIST_SCOPES_REQUEST__INIT;
	Strata__V1__ListScopesReply *ls;
	size_t cap = 1 << 16, n = 0;
	char *out = malloc(cap);
	int rc = call(all, STRATA__V1__CONTROLLER_METHOD__CTL_LIST_SCOPES,
	              &lq.base, &strata__v1__list_scopes_reply__descriptor,
	              (void **)&ls, err);
	CHECK(rc == 0, "list scopes: %s", err);
	for (size_t i = 0; i < ls->n_scopes; i++) {
		n += (size_t)snprintf(out + n, cap - n, "scope %s\n",
		                      ls->scopes[i]);
		Strata__V1__ListStreamsRequest sq =
		        STRATA__V1__LIST_STREAMS_REQUEST__INIT;
		Strata__V1__ListStreamsReply *st;
		sq.scope = ls->scopes[i];
		rc = call(all, STRATA__V1__CONTROLLER_METHOD__CTL_LIST_STREAMS,
		          &sq.base, &strata__v1__list_streams_reply__descriptor,
		          (void **)&st, err);
		CHECK(rc == 0, "list streams: %s", err);
		for (size_t j = 0; j < st->n_streams; j++) {
			Strata__V1__StreamInfo *si =
			        get_stream(ls->scopes[i], st->streams[j], &rc);
			CHECK(rc == 0, "get stream %s", st->streams[j]);
			Strata__V1__GetSegmentsRequest gq =
			        STRATA__V1__GET_SEGMENTS_REQUEST__INIT;
			Strata__V1__SegmentsReply *sr;
			gq.scope = ls->scopes[i];
			gq.stream = st->streams[j];
			rc = call(
			        all,
			        STRATA__V1__CONTROLLER_METHOD__CTL_GET_CURRENT_SEGMENTS,
			        &gq.base,
			        &strata__v1__segments_reply__descriptor,
			        (void **)&sr, err);
			CHECK(rc == 0, "segments: %s", err);
			n += (size_t)snprintf(
			        out + n, cap - n,
			        " stream %s state %d epoch %u:", st->streams[j],
			        si->state, si->current_epoch);
			for (size_t k = 0; k < sr->n_segments; k++) {
				n += (size_t)snprintf(
				        out + n, cap - n, " %s[%g,%g)@%u",
				        sr->segments[k]->qualified_name,
				        sr->segments[k]->segment->low,
				        sr->segments[k]->segment->high,
				        sr->segments[k]->container);
			}
			n += (size_t)snprintf(out + n, cap - n, "\n");
			rpc_pb_free(&si->base);
			rpc_pb_free(&sr->base);
		}
		rpc_pb_free(&st->base);
	}
	rpc_pb_free(&ls->base);
	*len = n;
	return out;
}

/* Count record lines (both stores) equal to line. */
static int count_lines(const char *line)
{
	int n = 0;
	for (int i = 0; i < N_STORES; i++) {
		char path[300], buf[1024];
		snprintf(path, sizeof(path), "%s/store%d.rec", dir, i + 1);
		FILE *f = fopen(path, "r");
		while (f != NULL && fgets(buf, sizeof(buf), f) != NULL) {
			buf[strcspn(buf, "\n")] = '\0';
			n += strcmp(buf, line) == 0;
		}
		if (f != NULL) {
			fclose(f);
		}
	}
	return n;
}

/* Count record lines starting with prefix. */
static int count_prefix(const char *prefix)
{
	int n = 0;
	for (int i = 0; i < N_STORES; i++) {
		char path[300], buf[1024];
		snprintf(path, sizeof(path), "%s/store%d.rec", dir, i + 1);
		FILE *f = fopen(path, "r");
		while (f != NULL && fgets(buf, sizeof(buf), f) != NULL) {
			n += strncmp(buf, prefix, strlen(prefix)) == 0;
		}
		if (f != NULL) {
			fclose(f);
		}
	}
	return n;
}

/* ------------------------------------------------------------- steps -- */

/* `ENV strata-controller --check-config ARGS`: its first line holds want,
 * and it exits 0 exactly when ok is true. */
static void check_config_says(const char *env, const char *args,
                              const char *want, bool ok)
{
	char cmd[600], line[512] = "";
	snprintf(cmd, sizeof(cmd), "%s %s --check-config %s 2>&1", env, ctl_bin,
	         args);
	FILE *p = popen(cmd, "r");
	CHECK(p != NULL, "run %s", cmd);
	bool got = fgets(line, sizeof(line), p) != NULL;
	int rc = pclose(p);
	CHECK(got && strstr(line, want) != NULL,
	      "%s: first line '%s' lacks '%s'", cmd, line, want);
	CHECK((rc == 0) == ok, "%s: exit status %d", cmd, rc);
}

static void check_help(void)
{
	static const char *const keys[] = {
	        "node.id",
	        "data_dir",
	        "listen",
	        "http.listen",
	        "raft.listen",
	        "raft.members",
	        "raft.election_timeout",
	        "raft.heartbeat",
	        "raft.snapshot_bytes",
	        "containers.count",
	        "store.lease",
	        "tick.interval",
	        "api.wait_timeout",
	        "api.read_staleness",
	        "driver.rpc_timeout",
	        "driver.backoff_max",
	        "retention.interval",
	        "scaling.interval",
	        "scaling.unit",
	        "scaling.cooldown",
	        "watermark.interval",
	        "watermark.writer_timeout",
	        "log.level",
	        "log.file",
	        "check_config",
	};
	char cmd[600], buf[256];
	static char help[65536], doc[1 << 18];
	size_t n = 0;
	snprintf(cmd, sizeof(cmd), "%s --help", ctl_bin);
	FILE *p = popen(cmd, "r");
	CHECK(p != NULL, "run --help");
	while (n + 1 < sizeof(help) && fgets(buf, sizeof(buf), p) != NULL) {
		n += (size_t)snprintf(help + n, sizeof(help) - n, "%s", buf);
	}
	CHECK(pclose(p) == 0, "--help exits 0");
	check_config_says("", "--raft.members='1=bad_host:1,tcp://x:1'",
	                  "host:port", false);
	/* The error names where each value came from (QA: a compose
	 * service's STRATA_NODE_ID was not named). */
	check_config_says("STRATA_NODE_ID=4",
	                  "--raft.members='1=127.0.0.1:1,tcp://127.0.0.1:2'",
	                  "node.id 4 (env STRATA_NODE_ID) is not in "
	                  "raft.members (flag --raft.members)",
	                  false);
	check_config_says("", "--node.id=3", "configuration OK", true);
	snprintf(cmd, sizeof(cmd), "%s/docs/configuration.md", src_dir);
	FILE *f = fopen(cmd, "r");
	CHECK(f != NULL, "open %s", cmd);
	size_t dl = fread(doc, 1, sizeof(doc) - 1, f);
	doc[dl] = '\0';
	fclose(f);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char env[128] = "STRATA_", tick[160];
		size_t k = 7;
		for (const char *c = keys[i]; *c != '\0' && k + 1 < sizeof(env);
		     c++) {
			env[k++] = *c == '.' ? '_'
			                     : (char)(*c >= 'a' && *c <= 'z'
			                                      ? *c - 32
			                                      : *c);
		}
		env[k] = '\0';
		CHECK(strstr(help, env) != NULL,
		      "--help does not document %s (%s)", keys[i], env);
		snprintf(tick, sizeof(tick), "`%s`", keys[i]);
		CHECK(strstr(doc, tick) != NULL,
		      "docs/configuration.md does not document `%s`", keys[i]);
	}
	printf("--help and docs/configuration.md document all %zu keys\n",
	       sizeof(keys) / sizeof(keys[0]));
}

/* A client of n controllers' urls with that many retries and timeout. */
static struct rpc_client *open_client(const char *const *urls, size_t n,
                                      int retries, int timeout_ms)
{
	char err[STRATA_ERRMSG_SIZE];
	struct rpc_client_opts o;
	rpc_client_opts_default(&o);
	o.timeout_ms = timeout_ms;
	o.connect_timeout_ms = 300;
	o.retries = retries;
	o.max_redirects = 4;
	struct rpc_client *c = NULL;
	CHECK(rpc_client_open(&c, urls, n, &o, err) == 0, "%s", err);
	return c;
}

/* A client of controller i alone (no retries, 1 s timeout). */
static void open_one(int i)
{
	const char *u = ctl_url[i];
	one[i] = open_client(&u, 1, 0, 1000);
}

static void open_clients(void)
{
	const char *urls[N_CTL];
	for (int i = 0; i < N_CTL; i++) {
		urls[i] = ctl_url[i];
	}
	all = open_client(urls, N_CTL, 4, 3000);
	for (int i = 0; i < N_CTL; i++) {
		open_one(i);
	}
}

/* Delay every seal of the stand-in store by 4 s (its delay_seal file);
 * path receives the file's name, for unlink. */
static void delay_seals(char *path, size_t size)
{
	snprintf(path, size, "%s/delay_seal", dir);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL, "create %s", path);
	fprintf(f, "4000\n");
	fclose(f);
}

/* Start a scale of sc/stream splitting segment 0 ([0, 0.5)) in two; the
 * controller's reply (rpc_pb_free it). */
static Strata__V1__ControllerReply *split_first(const char *stream)
{
	char err[STRATA_ERRMSG_SIZE];
	Strata__V1__ScaleStreamRequest q =
	        STRATA__V1__SCALE_STREAM_REQUEST__INIT;
	Strata__V1__KeyRange r0 = STRATA__V1__KEY_RANGE__INIT;
	Strata__V1__KeyRange r1 = STRATA__V1__KEY_RANGE__INIT;
	Strata__V1__KeyRange *rs[2] = {&r0, &r1};
	uint64_t seal[1] = {0};
	r0.high = 0.25;
	r1.low = 0.25;
	r1.high = 0.5;
	q.scope = "sc";
	q.stream = (char *)stream;
	q.seal_segments = seal;
	q.n_seal_segments = 1;
	q.new_ranges = rs;
	q.n_new_ranges = 2;
	Strata__V1__ControllerReply *rep = NULL;
	int rc = call(all, STRATA__V1__CONTROLLER_METHOD__CTL_SCALE_STREAM,
	              &q.base, &strata__v1__controller_reply__descriptor,
	              (void **)&rep, err);
	CHECK(rc == 0 && rep != NULL, "scale sc/%s: %s (%s)", stream,
	      strata_error_name(rc), err);
	return rep;
}

static void scale_and_kill_leader(void)
{
	char path[300], err[STRATA_ERRMSG_SIZE];
	delay_seals(path, sizeof(path));
	int leader = wait_leader(60000);
	Strata__V1__ControllerReply *rep = split_first("st");
	CHECK(rep->n_segment_ids == 2 &&
	              rep->segment_ids[0] == ((1ull << 32) | 2) &&
	              rep->segment_ids[1] == ((1ull << 32) | 3),
	      "scale returned unexpected successor ids");
	CHECK(!rep->done, "scale finished although seals are delayed");
	printf("scale started: workflow %" PRIu64 "\n", rep->workflow_id);
	rpc_pb_free(&rep->base);

	/* Wait until a store is inside the seal step, then kill -9 the
	 * leader driving it. */
	uint64_t end = mono_ms() + 60000;
	while (count_lines("SEAL_BEGIN sc/st/0.#epoch.0") == 0) {
		CHECK(mono_ms() < end, "the seal step never started");
		sleep_ms(20);
	}
	CHECK(count_prefix("SEAL sc/st/0.#epoch.0") == 0,
	      "the seal finished before the leader could be killed");
	CHECK(count_lines("CREATE sc/st/2.#epoch.1 new") == 1 &&
	              count_lines("CREATE sc/st/3.#epoch.1 new") == 1,
	      "successors not created before the seal step");
	int now_leader = find_leader();
	if (now_leader >= 0) {
		leader = now_leader;
	}
	printf("killing leader node %d in the middle of the seal step\n",
	       leader + 1);
	kill_ctl(leader);

	/* A new leader finishes the workflow. */
	wait_stream("sc", "st", STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE,
	            1, 60000);
	int nl = wait_leader(60000);
	CHECK(nl != leader, "old leader still leads");
	printf("node %d finished the scale\n", nl + 1);
	check_status_unreachable(leader);
	CHECK(count_prefix("SEAL sc/st/0.#epoch.0 ") >= 1,
	      "predecessor never sealed");
	unlink(path);

	/* Segments of epoch 1 and successors with predecessors. */
	Strata__V1__GetSegmentsRequest gq =
	        STRATA__V1__GET_SEGMENTS_REQUEST__INIT;
	Strata__V1__SegmentsReply *sr;
	gq.scope = "sc";
	gq.stream = "st";
	int rc = call(all,
	              STRATA__V1__CONTROLLER_METHOD__CTL_GET_CURRENT_SEGMENTS,
	              &gq.base, &strata__v1__segments_reply__descriptor,
	              (void **)&sr, err);
	CHECK(rc == 0 && sr->n_segments == 3, "current segments: %s", err);
	CHECK(sr->segments[0]->segment->id == ((1ull << 32) | 2) &&
	              sr->segments[1]->segment->id == ((1ull << 32) | 3) &&
	              sr->segments[2]->segment->id == 1,
	      "epoch 1 is not {2, 3, 1}");
	rpc_pb_free(&sr->base);
	Strata__V1__GetSuccessorsRequest sq =
	        STRATA__V1__GET_SUCCESSORS_REQUEST__INIT;
	Strata__V1__SuccessorsReply *su;
	sq.scope = "sc";
	sq.stream = "st";
	sq.segment_id = 0;
	rc = call(all, STRATA__V1__CONTROLLER_METHOD__CTL_GET_SUCCESSORS,
	          &sq.base, &strata__v1__successors_reply__descriptor,
	          (void **)&su, err);
	CHECK(rc == 0 && su->n_successors == 2 &&
	              su->successors[0]->n_predecessors == 1 &&
	              su->successors[0]->predecessors[0] == 0,
	      "successors of segment 0: %s", err);
	rpc_pb_free(&su->base);

	/* The killed replica comes back and catches up. */
	start_ctl(leader);
	wait_identical(60000, N_CTL);
}

/* State of transaction id of scope/stream (0 when unknown). */
static int txn_state(const char *scope, const char *stream, uint64_t id)
{
	Strata__V1__GetTxnRequest q = STRATA__V1__GET_TXN_REQUEST__INIT;
	Strata__V1__Txn *t = NULL;
	char err[STRATA_ERRMSG_SIZE];
	q.scope = (char *)scope;
	q.stream = (char *)stream;
	q.txn_id = id;
	int rc = call(all, STRATA__V1__CONTROLLER_METHOD__CTL_GET_TXN, &q.base,
	              &strata__v1__txn__descriptor, (void **)&t, err);
	int state = rc == 0 && t != NULL ? (int)t->state : 0;
	rpc_pb_free(t != NULL ? &t->base : NULL);
	return state;
}

/* A transaction opened before a scale commits after it: the controller
 * rolls it (copies of epoch 0 as epoch 2, of epoch 1 as epoch 3). The
 * leader is killed while the merge step seals the shadow; the new leader
 * finishes the roll: the transaction is COMMITTED, each copy was created
 * once and each shadow merged into its parent's copy. */
static void roll_and_kill_leader(void)
{
	char path[300], err[STRATA_ERRMSG_SIZE];
	create_stream("sc", "tx", 2);
	Strata__V1__CreateTxnRequest cq = STRATA__V1__CREATE_TXN_REQUEST__INIT;
	cq.scope = "sc";
	cq.stream = "tx";
	cq.lease_ms = 120000;
	Strata__V1__ControllerReply *rep = NULL;
	int rc = call(all, STRATA__V1__CONTROLLER_METHOD__CTL_CREATE_TXN,
	              &cq.base, NULL, (void **)&rep, err);
	CHECK(rc == 0 && rep != NULL && rep->txn_id != 0, "create txn: %s (%s)",
	      strata_error_name(rc), err);
	uint64_t id = rep->txn_id;
	rpc_pb_free(&rep->base);

	rpc_pb_free(&split_first("tx")->base);
	wait_stream("sc", "tx", STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE,
	            1, 60000);

	delay_seals(path, sizeof(path));
	Strata__V1__EndTxnRequest eq = STRATA__V1__END_TXN_REQUEST__INIT;
	eq.scope = "sc";
	eq.stream = "tx";
	eq.txn_id = id;
	eq.commit = true;
	uint64_t end = mono_ms() + 60000;
	do { /* EBUSY until the shadows exist */
		rc = call(all, STRATA__V1__CONTROLLER_METHOD__CTL_COMMIT_TXN,
		          &eq.base, NULL, NULL, err);
		if (rc == STRATA_EBUSY) {
			sleep_ms(50);
		}
	} while (rc == STRATA_EBUSY && mono_ms() < end);
	CHECK(rc == 0, "commit after the scale: %s (%s)", strata_error_name(rc),
	      err);
	char shadow[200];
	snprintf(shadow, sizeof(shadow),
	         "SEAL_BEGIN sc/tx/0.#epoch.0#transaction.%" PRIu64, id);
	while (count_lines(shadow) == 0) {
		CHECK(mono_ms() < end, "the merge step never started");
		sleep_ms(20);
	}
	int leader = find_leader();
	CHECK(leader >= 0, "no leader during the roll");
	printf("killing leader node %d in the middle of the roll's merge\n",
	       leader + 1);
	kill_ctl(leader);

	wait_stream("sc", "tx", STRATA__V1__STREAM_STATE__STREAM_STATE_ACTIVE,
	            3, 60000);
	end = mono_ms() + 60000;
	while (txn_state("sc", "tx", id) !=
	       STRATA__V1__TXN_STATE__TXN_STATE_COMMITTED) {
		CHECK(mono_ms() < end,
		      "the rolled transaction never committed");
		sleep_ms(100);
	}
	unlink(path);
	/* Each copy created once; both shadows merged into epoch-2 copies
	 * (the merge of a shadow is recorded once: a replay finds it gone). */
	/* Created new: 2 of epoch 0, their 2 shadows, 2 successors of the
	 * scale, 2 copies of epoch 0 and 3 of epoch 1. */
	int created = 0;
	for (int e = 0; e <= 3; e++) {
		for (int n = 0; n < 64; n++) {
			char line[200];
			snprintf(line, sizeof(line),
			         "CREATE sc/tx/%d.#epoch.%d new", n, e);
			int c = count_lines(line);
			CHECK(c <= 1, "roll: %s created %d times", line + 7, c);
			created += c;
			snprintf(
			        line, sizeof(line),
			        "CREATE sc/tx/%d.#epoch.%d#transaction.%" PRIu64
			        " new",
			        n, e, id);
			created += count_lines(line);
		}
	}
	CHECK(created == 2 + 2 + 2 + 2 + 3,
	      "roll: %d segments and shadows created, expected 11", created);
	CHECK(count_prefix("MERGE sc/tx/") == 2, "roll: %d merges, expected 2",
	      count_prefix("MERGE sc/tx/"));
	Strata__V1__GetSegmentsRequest gq =
	        STRATA__V1__GET_SEGMENTS_REQUEST__INIT;
	Strata__V1__SegmentsReply *sr;
	gq.scope = "sc";
	gq.stream = "tx";
	rc = call(all, STRATA__V1__CONTROLLER_METHOD__CTL_GET_CURRENT_SEGMENTS,
	          &gq.base, &strata__v1__segments_reply__descriptor,
	          (void **)&sr, err);
	CHECK(rc == 0 && sr->n_segments == 3 &&
	              (sr->segments[0]->segment->id >> 32) == 3,
	      "after the roll the current epoch is not 3 segments of "
	      "epoch 3: %s",
	      err);
	rpc_pb_free(&sr->base);
	printf("node %d finished the roll: transaction %" PRIu64 " committed\n",
	       wait_leader(60000) + 1, id);
	start_ctl(leader);
	wait_identical(60000, N_CTL);
}

static void check_segments_created_once(void)
{
	static const char *const names[] = {
	        "sc/st/0.#epoch.0", "sc/st/1.#epoch.0",    "sc/st/2.#epoch.1",
	        "sc/st/3.#epoch.1", "sc/other/0.#epoch.0", "sc2/a/0.#epoch.0",
	        "sc2/a/1.#epoch.0", "sc2/a/2.#epoch.0",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char line[300];
		snprintf(line, sizeof(line), "CREATE %s new", names[i]);
		CHECK(count_lines(line) == 1,
		      "segment %s created %d times, expected once", names[i],
		      count_lines(line));
	}
	CHECK(count_prefix("CREATE ") - count_prefix("CREATE sc/st/2") -
	                      count_prefix("CREATE sc/st/3") >=
	              6,
	      "missing creations");
	CHECK(count_prefix("SEAL sc/st/1.") == 0 &&
	              count_prefix("SEAL sc/st/2.") == 0,
	      "a segment that must stay open was sealed");
	int replays = 0;
	char buf[1024], path[300];
	snprintf(path, sizeof(path), "%s/store1.rec", dir);
	FILE *f = fopen(path, "r");
	while (f != NULL && fgets(buf, sizeof(buf), f) != NULL) {
		replays += strstr(buf, " replay\n") != NULL;
	}
	if (f != NULL) {
		fclose(f);
	}
	printf("every segment created exactly once (%d idempotent replays), "
	       "predecessor sealed\n",
	       replays);
}

static void seal_and_delete(void)
{
	char err[STRATA_ERRMSG_SIZE];
	create_stream("sc", "tmp", 2);
	Strata__V1__SealStreamRequest s = STRATA__V1__SEAL_STREAM_REQUEST__INIT;
	s.scope = "sc";
	s.stream = "tmp";
	int rc = call(all, STRATA__V1__CONTROLLER_METHOD__CTL_SEAL_STREAM,
	              &s.base, NULL, NULL, err);
	CHECK(rc == 0, "seal sc/tmp: %s", err);
	wait_stream("sc", "tmp", STRATA__V1__STREAM_STATE__STREAM_STATE_SEALED,
	            0, 60000);
	Strata__V1__DeleteStreamRequest d =
	        STRATA__V1__DELETE_STREAM_REQUEST__INIT;
	d.scope = "sc";
	d.stream = "tmp";
	rc = call(all, STRATA__V1__CONTROLLER_METHOD__CTL_DELETE_STREAM,
	          &d.base, NULL, NULL, err);
	CHECK(rc == 0, "delete sc/tmp: %s", err);
	uint64_t end = mono_ms() + 60000;
	for (;;) {
		Strata__V1__StreamInfo *si = get_stream("sc", "tmp", &rc);
		rpc_pb_free(si != NULL ? &si->base : NULL);
		if (rc == STRATA_ENOENT) {
			break;
		}
		CHECK(mono_ms() < end, "sc/tmp not deleted");
		sleep_ms(100);
	}
	CHECK(count_lines("DELETE sc/tmp/0.#epoch.0 ok") == 1 &&
	              count_lines("DELETE sc/tmp/1.#epoch.0 ok") == 1,
	      "segments of sc/tmp not deleted once each");
	printf("seal and delete workflows done\n");
}

static int count_voters(int via)
{
	Strata__V1__ListControllersRequest q =
	        STRATA__V1__LIST_CONTROLLERS_REQUEST__INIT;
	Strata__V1__ListControllersReply *l;
	char err[STRATA_ERRMSG_SIZE];
	int rc = call(one[via],
	              STRATA__V1__CONTROLLER_METHOD__CTL_LIST_CONTROLLERS,
	              &q.base, &strata__v1__list_controllers_reply__descriptor,
	              (void **)&l, err);
	CHECK(rc == 0, "list controllers: %s", err);
	int n = 0;
	for (size_t i = 0; i < l->n_controllers; i++) {
		n += l->controllers[i]->role == 1;
	}
	rpc_pb_free(&l->base);
	return n;
}

/* A fourth controller joins (raft.join + CTL_ADD_CONTROLLER), catches up
 * to identical state, and is removed again. */
static void join_and_remove(void)
{
	char err[STRATA_ERRMSG_SIZE], raft[64], http[64];
	/* Its ports are picked now, not with the others': under a parallel
	 * ctest another test once took one in the half minute between
	 * ("address already in use"), and the join timed out. A port taken
	 * between the pick and the bind still makes it exit: pick again. */
	for (int attempt = 1;; attempt++) {
		size_t at = (size_t)snprintf(members_join, sizeof(members_join),
		                             "%s", members);
		set_ports(N_CTL, members_join + at, sizeof(members_join) - at);
		start_ctl(N_CTL);
		sleep_ms(500);
		if (waitpid(ctl_pid[N_CTL], NULL, WNOHANG) == 0) {
			break; /* up */
		}
		ctl_pid[N_CTL] = 0;
		CHECK(attempt < 3,
		      "controller 4 exited at start (see %s/ctl4.log)", dir);
		printf("controller 4 exited at start (a port taken?); again\n");
	}
	open_one(N_CTL);
	Strata__V1__ControllerEndpoint ep =
	        STRATA__V1__CONTROLLER_ENDPOINT__INIT;
	Strata__V1__AddControllerRequest aq =
	        STRATA__V1__ADD_CONTROLLER_REQUEST__INIT;
	snprintf(raft, sizeof(raft), "127.0.0.1:%d", raft_port[N_CTL]);
	snprintf(http, sizeof(http), "http://127.0.0.1:%d", http_port[N_CTL]);
	ep.id = N_CTL + 1;
	ep.raft_address = raft;
	ep.client_url = ctl_url[N_CTL];
	ep.http_url = http;
	aq.endpoint = &ep;
	int rc = -1;
	uint64_t end = mono_ms() + 30000;
	while (rc != 0 && mono_ms() < end) {
		rc = call(all,
		          STRATA__V1__CONTROLLER_METHOD__CTL_ADD_CONTROLLER,
		          &aq.base, NULL, NULL, err);
		if (rc != 0) {
			sleep_ms(200);
		}
	}
	CHECK(rc == 0, "add controller 4: %s (%s)", strata_error_name(rc), err);
	int l = wait_leader(60000);
	CHECK(count_voters(l) == N_CTL + 1, "controller 4 is not a voter");
	wait_identical(60000, N_CTL + 1);
	printf("controller 4 joined and holds identical state\n");

	Strata__V1__RemoveControllerRequest rq =
	        STRATA__V1__REMOVE_CONTROLLER_REQUEST__INIT;
	rq.id = N_CTL + 1;
	rc = call(all, STRATA__V1__CONTROLLER_METHOD__CTL_REMOVE_CONTROLLER,
	          &rq.base, NULL, NULL, err);
	CHECK(rc == 0, "remove controller 4: %s (%s)", strata_error_name(rc),
	      err);
	l = wait_leader(60000);
	CHECK(count_voters(l) == N_CTL, "controller 4 still a voter");
	kill_ctl(N_CTL);
	create_scope("after-remove");
	wait_identical(60000, N_CTL);
	printf("controller 4 removed; %d voters serve\n", N_CTL);
}

int main(int argc, char **argv)
{
	char err[STRATA_ERRMSG_SIZE];
	if (argc != 4 && argc != 5) {
		fprintf(stderr,
		        "usage: %s CONTROLLER_BIN TEST_STORE_BIN "
		        "SOURCE_DIR [STRATACTL_BIN]\n",
		        argv[0]);
		return 2;
	}
	ctl_bin = argv[1];
	store_bin = argv[2];
	src_dir = argv[3];
	stratactl_bin = argc == 5 ? argv[4] : NULL;
	strata_process_init(err);
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(dir, sizeof(dir), "/tmp/strata-ctl-it-XXXXXX");
	CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
	uint64_t t0 = mono_ms();

	check_help();

	size_t at = 0;
	for (int i = 0; i < N_CTL; i++) {
		at += set_ports(i, members + at, sizeof(members) - at);
	}
	for (int i = 0; i < N_CTL; i++) {
		start_ctl(i);
	}
	open_clients();
	int leader = wait_leader(60000);
	printf("controllers up, leader node %d (%" PRIu64 " ms)\n", leader + 1,
	       mono_ms() - t0);
	for (int i = 0; i < N_STORES; i++) {
		start_store(i);
	}

	create_scope("sc");
	create_scope("sc2");
	create_stream("sc", "st", 2);
	create_stream("sc", "other", 1);
	create_stream("sc2", "a", 3);
	printf("scopes and streams created (%" PRIu64 " ms)\n", mono_ms() - t0);

	scale_and_kill_leader();
	printf("scale survived the leader's death (%" PRIu64 " ms)\n",
	       mono_ms() - t0);
	seal_and_delete();
	check_segments_created_once();
	roll_and_kill_leader();

	/* Restart every replica: everything stays. Replica 1 dies with
	 * kill -9, the others stop with SIGTERM and must exit 0 (a clean
	 * shutdown; under ASan also free of leaks). */
	size_t before_len, after_len;
	char *before = metadata(&before_len);
	kill_ctl(0);
	for (int i = 1; i < N_CTL; i++) {
		int st = 0;
		kill(ctl_pid[i], SIGTERM);
		CHECK(waitpid(ctl_pid[i], &st, 0) == ctl_pid[i], "waitpid");
		ctl_pid[i] = 0;
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "controller %d did not stop cleanly on SIGTERM (status "
		      "0x%x): see ctl%d.log",
		      i + 1, st, i + 1);
	}
	for (int i = 0; i < N_CTL; i++) {
		start_ctl(i);
	}
	wait_leader(60000);
	char *after = metadata(&after_len);
	if (before_len != after_len || memcmp(before, after, before_len) != 0) {
		fprintf(stderr, "before:\n%.*s\nafter:\n%.*s\n",
		        (int)before_len, before, (int)after_len, after);
		fail("metadata changed across a restart of every replica");
	}
	printf("restart of all replicas kept:\n%.*s", (int)before_len, before);
	free(before);
	free(after);
	wait_identical(60000, N_CTL);
	join_and_remove();

	for (int i = 0; i < MAX_CTL; i++) {
		rpc_client_close(one[i]);
	}
	rpc_client_close(all);
	kill_all();
	char rm[300];
	snprintf(rm, sizeof(rm), "rm -rf %s", dir);
	if (system(rm) != 0) {
		fprintf(stderr, "could not remove %s\n", dir);
	}
	printf("PASS (%" PRIu64 " ms)\n", mono_ms() - t0);
	return 0;
}
