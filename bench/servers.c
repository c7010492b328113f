/* Server manager for the benchmarks: start a system on 127.0.0.1, sample
 * its CPU and memory, stop it. */
#include "bench/servers.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "common/log.h"
#include "strata/error.h"

#define START_TIMEOUT_MS 20000
#define STRATA_START_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS 15000

static int is_strata(enum server_kind kind)
{
	return kind == SERVER_STRATA || kind == SERVER_STRATA3;
}

const char *server_kind_name(enum server_kind kind)
{
	switch (kind) {
	case SERVER_REDIS:
		return "redis";
	case SERVER_NATS:
		return "nats";
	case SERVER_STRATA:
		return "strata";
	case SERVER_STRATA3:
		return "strata3";
	case SERVER_NONE:
		break;
	}
	return "none";
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
	                      .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* A port the kernel says is free right now (a small race remains; the
 * start is retried on another port if the server fails to bind). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	int port = -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* Connect to 127.0.0.1:port, optionally send `hello`, and read until the
 * reply contains `expect`. 0 when it does. */
static int probe(int port, const char *hello, const char *expect)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = {.tv_sec = 1};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int rc = -1;
	char buf[512];
	size_t got = 0;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto out;
	if (hello && write(fd, hello, strlen(hello)) != (ssize_t)strlen(hello))
		goto out;
	while (got < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, expect)) {
			rc = 0;
			break;
		}
	}
out:
	close(fd);
	return rc;
}

/* First line of `prog --version` into out. */
static void read_version(const char *prog, char *out, size_t size)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "%s --version 2>&1", prog);
	out[0] = '\0';
	FILE *f = popen(cmd, "r");
	if (f == NULL)
		return;
	if (fgets(out, (int)size, f) == NULL)
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	pclose(f);
}

/* Last bytes of the log, for error messages. */
static void log_tail(const char *path, char *out, size_t size)
{
	out[0] = '\0';
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)size - 1 ? end - (off_t)size + 1 : 0;
	ssize_t n = pread(fd, out, size - 1, from);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

static int which(const char *prog)
{
	const char *path = getenv("PATH");
	if (path == NULL)
		path = "/usr/bin:/bin:/usr/sbin:/sbin";
	char buf[PATH_MAX];
	const char *p = path;
	while (*p) {
		size_t n = strcspn(p, ":");
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, prog);
		if (access(buf, X_OK) == 0)
			return 0;
		p += n;
		if (*p == ':')
			p++;
	}
	return -1;
}

/* Fork/exec argv with stdout+stderr to the log; dies with us. */
static pid_t spawn(char *const argv[], const char *logpath)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	int nul = open("/dev/null", O_RDONLY);
	if (nul >= 0) {
		dup2(nul, 0);
		close(nul);
	}
	setpgid(0, 0);
	execvp(argv[0], argv);
	_exit(127);
}

static pid_t start_redis(struct server *s)
{
	char port[16];
	snprintf(port, sizeof(port), "%d", s->port);
	char *const argv[] = {
	        "redis-server", "--port",           port,      "--bind",
	        "127.0.0.1",    "--protected-mode", "no",      "--dir",
	        s->dir,         "--appendonly",     "yes",     "--appendfsync",
	        "always",       "--save",           "",        "--daemonize",
	        "no",           "--loglevel",       "warning", NULL};
	return spawn(argv, s->log);
}

static pid_t start_nats(struct server *s)
{
	char port[16], store[PATH_MAX];
	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(store, sizeof(store), "%s/jetstream", s->dir);
	char *const argv[] = {"nats-server", "-a",  "127.0.0.1", "-p", port,
	                      "-js",         "-sd", store,       NULL};
	return spawn(argv, s->log);
}

/*
 * Strata's processes and ports (all on 127.0.0.1):
 *   ports[0..2]  controller raft, controller http, (standalone) store raft
 *   ports[3+3i]  store i: client, raft, http   (i = 0..2)
 * standalone: one strata-standalone process (controller s->port, store
 * ports[3]); otherwise strata-controller + 1 or 3 strata-segmentstore.
 * Every process appends to the one log; tier 2 is one local directory
 * shared by the stores (a new container leader reads what another
 * flushed), fsync'ed (the plugin's default).
 */
#define STRATA_NPORTS 12

static unsigned strata_stores(const struct server *s)
{
	return s->kind == SERVER_STRATA3 ? 3 : 1;
}

/* The configured limits, as flags (both programs use these keys). */
static void strata_limits(char unfl[64], char cache[64], char count[64])
{
	snprintf(unfl, 64, "--limits.unflushed-budget=%dMiB",
	         SERVER_STRATA_UNFLUSHED_MB);
	snprintf(cache, 64, "--limits.cache-budget=%dMiB",
	         SERVER_STRATA_CACHE_MB);
	snprintf(count, 64, "--containers.count=%d", SERVER_STRATA_CONTAINERS);
}

static int start_strata_standalone(struct server *s)
{
	char prog[PATH_MAX], data[PATH_MAX], listen[64], http[64], raft[64],
	        slisten[64], sraft[64], shttp[64], tier2[PATH_MAX];
	char unfl[64], cache[64], count[64];
	strata_limits(unfl, cache, count);
	snprintf(prog, sizeof(prog), "%s/strata-standalone", s->bin);
	snprintf(data, sizeof(data), "--data-dir=%s/data", s->dir);
	snprintf(tier2, sizeof(tier2), "--tier2.plugin-dir=%s/../plugins",
	         s->bin);
	snprintf(listen, sizeof(listen), "--listen=tcp://127.0.0.1:%d",
	         s->port);
	snprintf(http, sizeof(http), "--http.listen=http://127.0.0.1:%d",
	         s->ports[1]);
	snprintf(raft, sizeof(raft), "--raft.listen=127.0.0.1:%d", s->ports[0]);
	snprintf(slisten, sizeof(slisten), "--store.listen=tcp://127.0.0.1:%d",
	         s->ports[3]);
	snprintf(sraft, sizeof(sraft), "--store.raft.listen=127.0.0.1:%d",
	         s->ports[4]);
	snprintf(shttp, sizeof(shttp),
	         "--store.http.listen=http://127.0.0.1:%d", s->ports[5]);
	char *const argv[] = {prog,    data,  listen, http,  raft,
	                      slisten, sraft, shttp,  tier2, unfl,
	                      cache,   count, NULL};
	pid_t pid = spawn(argv, s->log);
	if (pid < 0)
		return -1;
	s->pid[s->npids++] = pid;
	return 0;
}

static int start_strata_controller(struct server *s)
{
	char prog[PATH_MAX], data[PATH_MAX], listen[64], http[64], raft[64];
	char unfl[64], cache[64], count[64];
	strata_limits(unfl, cache, count);
	snprintf(prog, sizeof(prog), "%s/strata-controller", s->bin);
	snprintf(data, sizeof(data), "--data-dir=%s/controller", s->dir);
	snprintf(listen, sizeof(listen), "--listen=tcp://127.0.0.1:%d",
	         s->port);
	snprintf(http, sizeof(http), "--http.listen=http://127.0.0.1:%d",
	         s->ports[1]);
	snprintf(raft, sizeof(raft), "--raft.listen=127.0.0.1:%d", s->ports[0]);
	char *const argv[] = {prog, "--node.id=1", data,  listen,
	                      http, raft,          count, NULL};
	pid_t pid = spawn(argv, s->log);
	if (pid < 0)
		return -1;
	s->pid[s->npids++] = pid;
	return 0;
}

static int start_strata_store(struct server *s, unsigned i)
{
	char prog[PATH_MAX], data[PATH_MAX], node[32], listen[64], http[64],
	        raft[64], ctl[64], pdir[PATH_MAX], root[PATH_MAX];
	char unfl[64], cache[64], count[64];
	strata_limits(unfl, cache, count);
	const int *p = &s->ports[3 + 3 * i];
	snprintf(prog, sizeof(prog), "%s/strata-segmentstore", s->bin);
	snprintf(node, sizeof(node), "--node.id=%u", i + 1);
	snprintf(data, sizeof(data), "--data-dir=%s/store%u", s->dir, i + 1);
	snprintf(listen, sizeof(listen), "--listen=tcp://127.0.0.1:%d", p[0]);
	snprintf(raft, sizeof(raft), "--raft.listen=127.0.0.1:%d", p[1]);
	snprintf(http, sizeof(http), "--http.listen=http://127.0.0.1:%d", p[2]);
	snprintf(ctl, sizeof(ctl), "--controller=tcp://127.0.0.1:%d", s->port);
	snprintf(pdir, sizeof(pdir), "--tier2.plugin-dir=%s/../plugins",
	         s->bin);
	snprintf(root, sizeof(root), "--tier2.options.root=%s/tier2", s->dir);
	char *const argv[] = {prog,
	                      node,
	                      data,
	                      listen,
	                      raft,
	                      http,
	                      ctl,
	                      "--cluster.settle=1s",
	                      "--tier2.plugin=local",
	                      pdir,
	                      root,
	                      unfl,
	                      cache,
	                      count,
	                      NULL};
	pid_t pid = spawn(argv, s->log);
	if (pid < 0)
		return -1;
	s->pid[s->npids++] = pid;
	return 0;
}

static int start_strata(struct server *s)
{
	if (s->standalone)
		return start_strata_standalone(s);
	if (start_strata_controller(s) != 0)
		return -1;
	for (unsigned i = 0; i < strata_stores(s); i++)
		if (start_strata_store(s, i) != 0)
			return -1;
	return 0;
}

/* GET /health/ready on 127.0.0.1:port answers `expect`. */
static int probe_ready(int port, const char *expect)
{
	return probe(port,
	             "GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	             "Connection: close\r\n\r\n",
	             expect);
}

/* Ready: the controller leads, and every store hosts every container
 * (replicated on all three stores for strata3) and knows its leaders. */
static int strata_ready(const struct server *s)
{
	char hosted[64];
	snprintf(hosted, sizeof(hosted), "\"containers\":%d,",
	         SERVER_STRATA_CONTAINERS);
	if (probe_ready(s->ports[1], "\"status\":\"ready\"") != 0)
		return -1;
	for (unsigned i = 0; i < strata_stores(s); i++) {
		int http = s->ports[3 + 3 * i + 2];
		if (probe_ready(http, "\"status\":\"ready\"") != 0 ||
		    probe_ready(http, hosted) != 0)
			return -1;
	}
	return 0;
}

static int ready(const struct server *s)
{
	switch (s->kind) {
	case SERVER_REDIS:
		return probe(s->port, "PING\r\n", "+PONG");
	case SERVER_NATS:
		return probe(s->port, NULL, "INFO ");
	case SERVER_STRATA:
	case SERVER_STRATA3:
		return strata_ready(s);
	case SERVER_NONE:
		break;
	}
	return 0;
}

static const char *prog_name(const struct server *s)
{
	switch (s->kind) {
	case SERVER_REDIS:
		return "redis-server";
	case SERVER_NATS:
		return "nats-server";
	case SERVER_STRATA:
		return s->standalone
		               ? "strata-standalone"
		               : "strata-controller + strata-segmentstore";
	case SERVER_STRATA3:
		return "strata-controller + 3 strata-segmentstore";
	case SERVER_NONE:
		break;
	}
	return "none";
}

/* Start on s->port (already chosen) and wait until ready. */
static int launch(struct server *s, char *errmsg)
{
	const char *prog = prog_name(s);
	int rc = 0;
	s->npids = 0;
	if (is_strata(s->kind)) {
		rc = start_strata(s);
	} else {
		pid_t pid = s->kind == SERVER_REDIS ? start_redis(s)
		                                    : start_nats(s);
		if (pid < 0)
			rc = -1;
		else
			s->pid[s->npids++] = pid;
	}
	if (rc != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "start %s: fork: %s", prog,
		         strerror(errno));
		server_stop(s, 0);
		return STRATA_EIO;
	}
	int timeout =
	        is_strata(s->kind) ? STRATA_START_TIMEOUT_MS : START_TIMEOUT_MS;
	int64_t deadline = now_ms() + timeout;
	while (now_ms() < deadline) {
		for (unsigned i = 0; i < s->npids; i++) {
			int status;
			if (waitpid(s->pid[i], &status, WNOHANG) != s->pid[i])
				continue;
			s->pid[i] = 0;
			server_stop(s, 0);
			char tail[160];
			log_tail(s->log, tail, sizeof(tail));
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "start %s on 127.0.0.1:%d exited (status %d); "
			         "log %.100s ends: %.60s",
			         prog, s->port, status, s->log, tail);
			return STRATA_EIO;
		}
		if (ready(s) == 0)
			return 0;
		sleep_ms(is_strata(s->kind) ? 200 : 50);
	}
	snprintf(errmsg, STRATA_ERRMSG_SIZE,
	         "start %s on 127.0.0.1:%d: not answering after %d ms; see "
	         "%.120s",
	         prog, s->port, timeout, s->log);
	server_stop(s, 0);
	return STRATA_ETIMEDOUT;
}

/* Directory of the running executable (strata-bench's bin/). */
static int self_dir(char *out, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	if (strlen(exe) >= size)
		return -1;
	memcpy(out, exe, strlen(exe) + 1);
	return 0;
}

/* Find Strata's binaries beside strata-bench; prefer strata-standalone
 * for the single-node kind. */
static int strata_find(struct server *s, char *errmsg)
{
	if (self_dir(s->bin, sizeof(s->bin)) != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "cannot find the directory of strata-bench "
		         "(/proc/self/exe)");
		return STRATA_ENOENT;
	}
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/strata-standalone", s->bin);
	s->standalone =
	        s->kind == SERVER_STRATA && access(path, X_OK) == 0 ? 1 : 0;
	const char *need[] = {"strata-controller", "strata-segmentstore",
	                      "../plugins/tier2-local.so"};
	for (size_t i = s->standalone ? 2 : 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", s->bin, need[i]);
		if (access(path, R_OK) != 0) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "%.120s not found: build it first (`make "
			         "bench` builds strata-bench with the Strata "
			         "servers)",
			         path);
			return STRATA_ENOENT;
		}
	}
	FILE *f = popen("git rev-parse --short HEAD 2>/dev/null", "r");
	char rev[32] = "";
	if (f != NULL) {
		if (fgets(rev, sizeof(rev), f) == NULL)
			rev[0] = '\0';
		rev[strcspn(rev, "\n")] = '\0';
		pclose(f);
	}
	snprintf(s->version, sizeof(s->version), "%s, git %s",
	         s->standalone               ? "strata-standalone"
	         : s->kind == SERVER_STRATA3 ? "3 strata-segmentstore"
	                                     : "strata-segmentstore",
	         rev[0] ? rev : "?");
	return 0;
}

int server_start(struct server *s, enum server_kind kind, const char *base_dir,
                 char *errmsg)
{
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	if (kind == SERVER_NONE)
		return 0;
	const char *prog =
	        kind == SERVER_REDIS ? "redis-server" : "nats-server";
	if (is_strata(kind)) {
		int rc = strata_find(s, errmsg);
		if (rc != 0)
			return rc;
		prog = prog_name(s);
	} else if (which(prog) != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "%s not found in PATH: install it with "
		         "`scripts/install-deps.sh bench` (Debian package %s)",
		         prog, prog);
		return STRATA_ENOENT;
	} else {
		read_version(prog, s->version, sizeof(s->version));
	}
	snprintf(s->dir, sizeof(s->dir), "%s/%s-XXXXXX", base_dir,
	         server_kind_name(kind));
	if (mkdtemp(s->dir) == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "create data directory %.150s: %s; check --data-dir",
		         s->dir, strerror(errno));
		s->dir[0] = '\0';
		return STRATA_EIO;
	}
	snprintf(s->log, sizeof(s->log), "%s/server.log", s->dir);
	int rc = STRATA_EIO;
	for (int attempt = 0; attempt < 3; attempt++) {
		s->port = free_port();
		for (int i = 0; is_strata(kind) && i < STRATA_NPORTS; i++) {
			s->ports[i] = -1;
			for (int tries = 0; tries < 50 && s->ports[i] < 0;
			     tries++) {
				int p = free_port();
				for (int j = 0; j < i && p > 0; j++)
					if (s->ports[j] == p)
						p = -1;
				if (p != s->port)
					s->ports[i] = p;
			}
			if (s->ports[i] < 0)
				s->port = -1;
		}
		if (s->port < 0) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "no free port on 127.0.0.1: %s",
			         strerror(errno));
			return STRATA_EIO;
		}
		rc = launch(s, errmsg);
		if (rc == 0) {
			LOG_INFO("bench",
			         "%s started: %u process(es), pid %d port %d "
			         "dir %s",
			         prog, s->npids, (int)s->pid[0], s->port,
			         s->dir);
			return 0;
		}
	}
	return rc;
}

static void stop_pids(struct server *s)
{
	for (unsigned i = 0; i < s->npids; i++)
		if (s->pid[i] > 0)
			kill(s->pid[i], SIGTERM);
	int64_t deadline = now_ms() + STOP_TIMEOUT_MS;
	for (unsigned i = 0; i < s->npids; i++) {
		if (s->pid[i] <= 0)
			continue;
		for (;;) {
			pid_t r = waitpid(s->pid[i], NULL, WNOHANG);
			if (r == s->pid[i] || (r < 0 && errno == ECHILD))
				break;
			if (now_ms() > deadline) {
				LOG_WARN("bench",
				         "pid %d ignored SIGTERM for "
				         "%d ms: SIGKILL",
				         (int)s->pid[i], STOP_TIMEOUT_MS);
				kill(s->pid[i], SIGKILL);
				waitpid(s->pid[i], NULL, 0);
				break;
			}
			sleep_ms(20);
		}
		s->pid[i] = 0;
	}
	s->npids = 0;
}

int server_restart(struct server *s, char *errmsg)
{
	if (s->kind == SERVER_NONE)
		return 0;
	stop_pids(s);
	return launch(s, errmsg);
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int server_rmtree(const char *path)
{
	if (path[0] == '\0')
		return 0;
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0 &&
	    errno != ENOENT)
		return STRATA_EIO;
	return 0;
}

void server_stop(struct server *s, int remove_data)
{
	stop_pids(s);
	if (remove_data && s->dir[0] != '\0') {
		if (server_rmtree(s->dir) != 0)
			LOG_WARN("bench", "remove %s: %s", s->dir,
			         strerror(errno));
		s->dir[0] = '\0';
	}
}

/* utime+stime+cutime+cstime (fields 14-17) of /proc/<pid>/stat. */
static int proc_ticks(pid_t pid, uint64_t *ticks)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	p++;
	/* after ')': field 3 is token 0; fields 14..17 are tokens 11..14 */
	uint64_t v[4] = {0};
	for (int tok = 0; tok <= 14; tok++) {
		while (*p == ' ')
			p++;
		char *end;
		unsigned long long x = strtoull(p, &end, 10);
		if (tok >= 11)
			v[tok - 11] = x;
		p = strchr(p, ' ');
		if (p == NULL)
			return tok == 14 ? 0 : -1;
	}
	*ticks = v[0] + v[1] + v[2] + v[3];
	return 0;
}

static int proc_status_kb(pid_t pid, const char *key, uint64_t *kb)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t klen = strlen(key);
	int rc = -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			*kb = strtoull(line + klen + 1, NULL, 10);
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

int server_sample(const struct server *s, struct server_sample *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < s->npids; i++) {
		uint64_t t = 0, rss = 0, hwm = 0;
		if (s->pid[i] <= 0 || proc_ticks(s->pid[i], &t) != 0 ||
		    proc_status_kb(s->pid[i], "VmRSS", &rss) != 0)
			return STRATA_EIO;
		proc_status_kb(s->pid[i], "VmHWM", &hwm);
		out->cpu_ticks += t;
		out->rss_kb += rss;
		out->hwm_kb += hwm;
	}
	return 0;
}
