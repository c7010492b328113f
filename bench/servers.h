/* Server manager for the benchmarks: start a system on 127.0.0.1, sample
 * its CPU and memory, stop it. */
#ifndef BENCH_SERVERS_H
#define BENCH_SERVERS_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

/* Kinds of server the manager knows how to run. */
enum server_kind {
	SERVER_NONE = 0, /* nothing to start (e.g. an external system) */
	SERVER_REDIS,    /* redis-server, AOF on, appendfsync always */
	SERVER_NATS,     /* nats-server -js, file store */
	SERVER_STRATA,   /* strata-standalone, or strata-controller + one
	                    strata-segmentstore: single-replica containers */
	SERVER_STRATA3,  /* strata-controller + 3 strata-segmentstore: every
	                    container replicated on the 3 stores */
};

#define SERVER_MAX_PROCS 8
#define SERVER_MAX_PORTS 16

/* Strata servers' configuration, shared with the budget strata-bench
 * reports (bench/strata-bench.c): containers per cluster, and per
 * container the unflushed-bytes and tier-2 cache budgets in MiB. */
#define SERVER_STRATA_CONTAINERS 4
#define SERVER_STRATA_UNFLUSHED_MB 256
#define SERVER_STRATA_CACHE_MB 64

struct server {
	enum server_kind kind;       /* what runs */
	char dir[PATH_MAX - 64];     /* data directory (mkdtemp) */
	char log[PATH_MAX];          /* its stdout/stderr + own log */
	int port;                    /* client port on 127.0.0.1 */
	pid_t pid[SERVER_MAX_PROCS]; /* processes; 0 = not running */
	unsigned npids;              /* entries used in pid[] */
	char version[96];            /* "--version" output, first line */
	int ports[SERVER_MAX_PORTS]; /* Strata: every other port it uses */
	char bin[PATH_MAX - 128];    /* Strata: directory of its binaries */
	int standalone;              /* Strata: runs strata-standalone */
};

/* CPU and memory of a server's processes, summed. */
struct server_sample {
	uint64_t cpu_ticks; /* utime+stime(+children), clock ticks */
	uint64_t rss_kb;    /* VmRSS */
	uint64_t hwm_kb;    /* VmHWM (peak RSS) */
};

/*
 * Start a server of `kind` with a fresh data directory under base_dir (on
 * the disk being measured; never tmpfs) on a free 127.0.0.1 port and wait
 * until it answers (up to 20 s; Strata: 60 s, until every container has a
 * leader). The child is killed if this process dies. Strata's binaries
 * are taken from the directory of the running executable (the build
 * tree's bin/), its tier-2 plugins from ../plugins beside it; s->port is
 * then the controller's client port.
 * Returns 0, or STRATA_ENOENT (binary missing: errmsg says to run
 * scripts/install-deps.sh bench), STRATA_EIO (failed to start: errmsg
 * quotes its log), STRATA_ETIMEDOUT.
 */
int server_start(struct server *s, enum server_kind kind, const char *base_dir,
                 char *errmsg);

/* Stop the server (SIGTERM, SIGKILL after 15 s) keeping its data, then
 * start it again on the same port and data directory. Same errors as
 * server_start. */
int server_restart(struct server *s, char *errmsg);

/* Stop the server (SIGTERM, then SIGKILL after 15 s) and, if remove_data,
 * delete its data directory. Safe to call twice or on a zeroed struct. */
void server_stop(struct server *s, int remove_data);

/* Sample CPU time and RSS of all the server's processes from /proc.
 * Returns 0 or STRATA_EIO (process gone). */
int server_sample(const struct server *s, struct server_sample *out);

/* Short name of a kind ("redis", "strata3"). */
const char *server_kind_name(enum server_kind kind);

/* Remove a directory tree (no symlink following). 0 or STRATA_EIO. */
int server_rmtree(const char *path);

#endif /* BENCH_SERVERS_H */
