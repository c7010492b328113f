/* strata-bench: Strata and its peers (Redis Streams, NATS JetStream) under
 * the same workload in one run; Markdown table, chart, targets. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench/backend.h"
#include "bench/diskbench.h"
#include "bench/load.h"
#include "bench/report.h"
#include "bench/servers.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/process.h"
#include "common/version.h"
#include "strata/error.h"

/* A system strata-bench knows; only those compiled in are listed. */
struct system_def {
	const char *name;  /* --systems key */
	const char *label; /* configuration, for the report */
	const char *ack;   /* what its acknowledgement means */
	const struct bench_backend_ops *ops; /* client side */
	enum server_kind kind;               /* server side */
	int restart_catchup;    /* catch-up again after a restart (tier 2) */
	uint64_t rss_budget_mb; /* configured memory budget, 0 = none */
};

#define STR_(x) #x
#define STR(x) STR_(x)
/* Strata's servers as bench/servers.c configures them, and the memory
 * budget that configuration implies per store: every container's
 * unflushed tail and tier-2 cache, plus a fixed allowance for Raft log
 * entries in memory, requests in flight and the process itself. The
 * controller's state is small (STRATA_CTL_BUDGET_MB). */
#define STRATA_CONF                                                                                                                \
	STR(SERVER_STRATA_CONTAINERS)                                                                                              \
	" containers, per container unflushed budget " STR(                                                                        \
	        SERVER_STRATA_UNFLUSHED_MB) " MiB and tier-2 cache " STR(SERVER_STRATA_CACHE_MB) " MiB, tier 2 = local directory " \
	                                                                                         "(fsync)"
#define STRATA_FIXED_MB 256
#define STRATA_CTL_BUDGET_MB 64
#define STRATA_STORE_BUDGET_MB                                           \
	(SERVER_STRATA_CONTAINERS *                                      \
	         (SERVER_STRATA_UNFLUSHED_MB + SERVER_STRATA_CACHE_MB) + \
	 STRATA_FIXED_MB)

static const struct system_def systems[] = {
#ifdef BENCH_HAVE_REDIS
        {"redis", "Redis 7 Streams (XADD), appendonly yes, appendfsync always",
         "XADD reply after the AOF write and fsync (group fsync per event "
         "loop iteration)",
         &bench_backend_redis, SERVER_REDIS, 0, 0},
#endif
#ifdef BENCH_HAVE_NATS
        {"nats", "NATS JetStream, file storage, 1 replica, defaults",
         "PubAck once stored in the file store's buffer: NO fsync per ack "
         "(2.9 syncs every 2 min)",
         &bench_backend_nats, SERVER_NATS, 0, 0},
#endif
#ifdef BENCH_HAVE_STRATA
        {"strata", "Strata standalone: 1 store, " STRATA_CONF,
         "append reply after the Raft commit = fdatasync of the entry "
         "(group commit)",
         &bench_backend_strata, SERVER_STRATA, 1,
         STRATA_STORE_BUDGET_MB + STRATA_CTL_BUDGET_MB},
        {"strata3",
         "Strata cluster: controller + 3 stores on this machine, every "
         "container on all 3, " STRATA_CONF,
         "append reply after the Raft commit = fdatasync on 2 of 3 "
         "replicas (leader included)",
         &bench_backend_strata, SERVER_STRATA3, 1,
         3 * STRATA_STORE_BUDGET_MB + STRATA_CTL_BUDGET_MB},
#endif
};
#if !defined(BENCH_HAVE_REDIS) && !defined(BENCH_HAVE_NATS) && \
        !defined(BENCH_HAVE_STRATA)
#error "strata-bench needs at least one backend (bench/CMakeLists.txt)"
#endif
#define NSYSTEMS (sizeof(systems) / sizeof(systems[0]))

/* Longest wait for a backlog to reach tier 2 before the restart. */
#define SETTLE_MS 120000

static const char *const default_cases[] = {"100B:1x1",  "100B:1x256",
                                            "100B:8x32", "1KB:1x1",
                                            "1KB:1x256", "1KB:8x32"};

struct opts {
	char systems[256];         /* comma list */
	char cases[512];           /* comma list of SIZE:WxF */
	double duration;           /* s per run */
	double warmup;             /* s */
	unsigned runs;             /* per case */
	char out[PATH_MAX - 64];   /* results directory */
	char data[PATH_MAX - 128]; /* data directory base */
	uint64_t backlog_100;      /* catch-up events of 100 B */
	uint64_t backlog_1k;       /* catch-up events of 1 KB */
	double disk_s;             /* per raw-disk measurement, 0 = skip */
	int quick;                 /* bench-quick defaults and file name */
	int allow_tmpfs;           /* measure on tmpfs anyway */
	int keep_data;             /* leave server data behind */
	int thread_refill;         /* --refill thread */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: strata-bench [options]\n"
	        "Runs each system on 127.0.0.1 with its data on the same disk, "
	        "under the\nsame workload, and prints a Markdown table (also "
	        "written to OUT/<date>.md,\nwith a chart OUT/<date>.png).\n\n"
	        "  --systems LIST   comma list of systems (default: all "
	        "built:");
	for (size_t i = 0; i < NSYSTEMS; i++)
		fprintf(f, " %s", systems[i].name);
	fprintf(f,
	        ")\n"
	        "  --cases LIST     comma list of SIZE:WRITERSxINFLIGHT, SIZE "
	        "like 100B, 1KB\n"
	        "                   (1 KB = 1024 B), default "
	        "100B:1x1,100B:1x256,100B:8x32,\n"
	        "                   1KB:1x1,1KB:1x256,1KB:8x32\n"
	        "  --duration S     seconds per measured run (default 8)\n"
	        "  --runs N         runs per case and reads per catch-up, "
	        "median\n"
	        "                   shown (default 3)\n"
	        "  --warmup S       seconds of load before the first run "
	        "(default 2)\n"
	        "  --backlog N,M    catch-up backlog: N events of 100 B and M "
	        "of 1 KB\n"
	        "                   (default 1000000,500000; 0,0 skips "
	        "catch-up)\n"
	        "  --disk S         seconds per raw-disk measurement (default "
	        "2; 0 skips)\n"
	        "  --out DIR        results directory (default bench/results)\n"
	        "  --data-dir DIR   where servers keep their data (default: "
	        "/tmp if it is a\n"
	        "                   disk on the same device as the current "
	        "directory, else\n"
	        "                   ./bench-data); never tmpfs\n"
	        "  --allow-tmpfs    accept a tmpfs data directory (numbers "
	        "then mean nothing)\n"
	        "  --keep-data      leave the servers' data directories\n"
	        "  --refill MODE    ack (default): a Strata or NATS writer "
	        "sends its next\n"
	        "                   event from the ack callback (the client "
	        "library's thread),\n"
	        "                   as an async producer chains writes; "
	        "thread: every\n"
	        "                   writer's own thread wakes for acks and "
	        "refills its window\n"
	        "  --quick          CI smoke: 1 run of 3 s per case, 1 s "
	        "warm-up, backlog\n"
	        "                   100000,50000, disk 0.5 s; file "
	        "<date>-quick.md\n"
	        "  -h, --help       this text\n"
	        "  --version        version and git commit\n");
}

static int parse_double(const char *flag, const char *v, double lo, double hi,
                        double *out)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || end == v || *end || d < lo || d > hi) {
		fprintf(stderr,
		        "strata-bench: %s %s: expected a number in "
		        "[%g, %g]\n",
		        flag, v, lo, hi);
		return STRATA_EINVAL;
	}
	*out = d;
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->duration = 8;
	o->warmup = 2;
	o->runs = 3;
	o->backlog_100 = 1000000;
	o->backlog_1k = 500000;
	o->disk_s = 2;
	snprintf(o->out, sizeof(o->out), "bench/results");
	int set_dur = 0, set_runs = 0, set_warm = 0, set_backlog = 0,
	    set_disk = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		double d;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--version") == 0) {
			strata_print_version(stdout, "strata-bench");
			exit(0);
		} else if (strcmp(a, "--quick") == 0) {
			o->quick = 1;
			continue;
		} else if (strcmp(a, "--allow-tmpfs") == 0) {
			o->allow_tmpfs = 1;
			continue;
		} else if (strcmp(a, "--keep-data") == 0) {
			o->keep_data = 1;
			continue;
		}
		if (v == NULL || strncmp(a, "--", 2) != 0) {
			fprintf(stderr,
			        "strata-bench: %s: unknown option or missing "
			        "value; see --help\n",
			        a);
			return STRATA_EINVAL;
		}
		i++;
		if (strcmp(a, "--systems") == 0) {
			snprintf(o->systems, sizeof(o->systems), "%s", v);
		} else if (strcmp(a, "--refill") == 0) {
			if (strcmp(v, "ack") != 0 && strcmp(v, "thread") != 0) {
				fprintf(stderr,
				        "strata-bench: --refill %s: expected "
				        "ack or thread\n",
				        v);
				return STRATA_EINVAL;
			}
			o->thread_refill = strcmp(v, "thread") == 0;
		} else if (strcmp(a, "--cases") == 0) {
			snprintf(o->cases, sizeof(o->cases), "%s", v);
		} else if (strcmp(a, "--duration") == 0) {
			if (parse_double(a, v, 0.1, 3600, &o->duration))
				return STRATA_EINVAL;
			set_dur = 1;
		} else if (strcmp(a, "--warmup") == 0) {
			if (parse_double(a, v, 0, 3600, &o->warmup))
				return STRATA_EINVAL;
			set_warm = 1;
		} else if (strcmp(a, "--runs") == 0) {
			if (parse_double(a, v, 1, LOAD_MAX_RUNS, &d))
				return STRATA_EINVAL;
			o->runs = (unsigned)d;
			set_runs = 1;
		} else if (strcmp(a, "--disk") == 0) {
			if (parse_double(a, v, 0, 60, &o->disk_s))
				return STRATA_EINVAL;
			set_disk = 1;
		} else if (strcmp(a, "--backlog") == 0) {
			unsigned long long n, m;
			char tail;
			if (sscanf(v, "%llu,%llu%c", &n, &m, &tail) != 2 ||
			    n > 100000000ull || m > 100000000ull) {
				fprintf(stderr,
				        "strata-bench: --backlog %s: expected "
				        "N,M (events of 100 B and of 1 KB, "
				        "each "
				        "at most 100000000)\n",
				        v);
				return STRATA_EINVAL;
			}
			o->backlog_100 = n;
			o->backlog_1k = m;
			set_backlog = 1;
		} else if (strcmp(a, "--out") == 0) {
			snprintf(o->out, sizeof(o->out), "%s", v);
		} else if (strcmp(a, "--data-dir") == 0) {
			snprintf(o->data, sizeof(o->data), "%s", v);
		} else {
			fprintf(stderr,
			        "strata-bench: unknown option %s; see --help\n",
			        a);
			return STRATA_EINVAL;
		}
	}
	if (o->quick) {
		if (!set_dur)
			o->duration = 3;
		if (!set_runs)
			o->runs = 1;
		if (!set_warm)
			o->warmup = 1;
		if (!set_backlog) {
			o->backlog_100 = 100000;
			o->backlog_1k = 50000;
		}
		if (!set_disk)
			o->disk_s = 0.5;
	}
	return 0;
}

/* "100B", "1KB", "1KiB", "1024" -> bytes. */
static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long n = strtoull(s, &end, 10);
	if (end == s)
		return STRATA_EINVAL;
	if (*end == '\0' || strcasecmp(end, "B") == 0)
		*out = n;
	else if (strcasecmp(end, "K") == 0 || strcasecmp(end, "KB") == 0 ||
	         strcasecmp(end, "KiB") == 0)
		*out = n * 1024;
	else
		return STRATA_EINVAL;
	return 0;
}

static void size_name(size_t n, char *out, size_t size)
{
	if (n >= 1024 && n % 1024 == 0)
		snprintf(out, size, "%zuKB", n / 1024);
	else
		snprintf(out, size, "%zuB", n);
}

static int parse_cases(const char *list, struct report *r)
{
	char buf[512];
	if (list[0] == '\0') {
		buf[0] = '\0';
		for (size_t i = 0;
		     i < sizeof(default_cases) / sizeof(default_cases[0]);
		     i++) {
			size_t len = strlen(buf);
			snprintf(buf + len, sizeof(buf) - len, "%s%s",
			         i ? "," : "", default_cases[i]);
		}
	} else {
		snprintf(buf, sizeof(buf), "%s", list);
	}
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		char size[32];
		unsigned w, f;
		char tail;
		size_t payload;
		if (r->ncases == REPORT_MAX_CASES ||
		    sscanf(t, "%31[^:]:%ux%u%c", size, &w, &f, &tail) != 3 ||
		    parse_size(size, &payload) != 0 || payload < 8 ||
		    payload > (1u << 20) || w < 1 || w > LOAD_MAX_WRITERS ||
		    f < 1 || f > 65536) {
			fprintf(stderr,
			        "strata-bench: case '%s': expected "
			        "SIZE:WRITERSxINFLIGHT like 1KB:8x32 (8 B..1 "
			        "MiB, 1..%d writers, 1..65536 in flight, at "
			        "most "
			        "%d cases)\n",
			        t, LOAD_MAX_WRITERS, REPORT_MAX_CASES);
			return STRATA_EINVAL;
		}
		struct report_case *c = &r->cases[r->ncases++];
		char sn[16];
		size_name(payload, sn, sizeof(sn));
		snprintf(c->name, sizeof(c->name), "%s %ux%u", sn, w, f);
		c->payload = payload;
		c->writers = w;
		c->window = f;
	}
	return 0;
}

static int pick_systems(const char *list, const struct system_def **out,
                        unsigned *n)
{
	*n = 0;
	if (list[0] == '\0') {
		for (size_t i = 0; i < NSYSTEMS; i++)
			out[(*n)++] = &systems[i];
		return 0;
	}
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", list);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		size_t i;
		for (i = 0; i < NSYSTEMS; i++)
			if (strcmp(t, systems[i].name) == 0)
				break;
		if (i == NSYSTEMS || *n == REPORT_MAX_SYSTEMS) {
			fprintf(stderr,
			        "strata-bench: system '%s' is not built in; "
			        "built:",
			        t);
			for (i = 0; i < NSYSTEMS; i++)
				fprintf(stderr, " %s", systems[i].name);
			fprintf(stderr, " (redis needs libhiredis-dev, nats "
			                "libnats-dev: "
			                "scripts/install-deps.sh bench, then "
			                "rebuild; strata and strata3 need "
			                "libstrata, built in the same tree)\n");
			return STRATA_EINVAL;
		}
		out[(*n)++] = &systems[i];
	}
	return 0;
}

static const char *fs_name(long type)
{
	switch ((unsigned long)type) {
	case 0xEF53:
		return "ext2/3/4";
	case 0x58465342:
		return "xfs";
	case 0x9123683E:
		return "btrfs";
	case 0x01021994:
		return "tmpfs";
	case 0x794c7630:
		return "overlayfs";
	case 0x2FC12FC1:
		return "zfs";
	case 0x858458f6:
		return "ramfs";
	}
	return "other";
}

/* Pick and check the data directory: on a disk, never tmpfs. */
static int setup_data_dir(struct opts *o, struct report *r)
{
	struct stat cwd, tmp;
	struct statfs fs;
	if (o->data[0] == '\0') {
		const char *t = getenv("TMPDIR");
		if (t == NULL || t[0] == '\0')
			t = "/tmp";
		if (stat(".", &cwd) == 0 && stat(t, &tmp) == 0 &&
		    cwd.st_dev == tmp.st_dev && statfs(t, &fs) == 0 &&
		    (unsigned long)fs.f_type != 0x01021994 &&
		    (unsigned long)fs.f_type != 0x858458f6)
			snprintf(o->data, sizeof(o->data), "%s", t);
		else
			snprintf(o->data, sizeof(o->data), "bench-data");
	}
	if (mkdir(o->data, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "strata-bench: create data directory %s: %s\n",
		        o->data, strerror(errno));
		return STRATA_EIO;
	}
	char real[PATH_MAX];
	if (realpath(o->data, real) != NULL && strlen(real) < sizeof(o->data))
		memcpy(o->data, real, strlen(real) + 1);
	if (statfs(o->data, &fs) != 0) {
		fprintf(stderr, "strata-bench: statfs %s: %s\n", o->data,
		        strerror(errno));
		return STRATA_EIO;
	}
	const char *name = fs_name(fs.f_type);
	struct stat st;
	stat(o->data, &st);
	snprintf(r->data_dir, sizeof(r->data_dir), "%s", o->data);
	snprintf(r->data_fs, sizeof(r->data_fs), "%s, device %u:%u", name,
	         major(st.st_dev), minor(st.st_dev));
	if ((strcmp(name, "tmpfs") == 0 || strcmp(name, "ramfs") == 0) &&
	    !o->allow_tmpfs) {
		fprintf(stderr,
		        "strata-bench: data directory %s is on %s (memory): "
		        "fsync costs nothing there and the numbers would be "
		        "meaningless; pass --data-dir on a disk (or "
		        "--allow-tmpfs)\n",
		        o->data, name);
		return STRATA_EINVAL;
	}
	return 0;
}

static void host_info(struct report *r)
{
	char model[96] = "unknown CPU";
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) == 0) {
			char *p = strchr(line, ':');
			if (p) {
				p += 1 + strspn(p + 1, " \t");
				p[strcspn(p, "\n")] = '\0';
				snprintf(model, sizeof(model), "%s", p);
			}
			break;
		}
	}
	if (f)
		fclose(f);
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	struct utsname u;
	if (uname(&u) != 0)
		snprintf(u.release, sizeof(u.release), "?");
	snprintf(r->host, sizeof(r->host),
	         "%s, %ld cores, %.0f GiB RAM, "
	         "Linux %s",
	         model, sysconf(_SC_NPROCESSORS_ONLN),
	         (double)pages * (double)psz / (1024.0 * 1024 * 1024),
	         u.release);
}

/* The first three fields of /proc/loadavg. */
static void load_avg(char *out, size_t size)
{
	snprintf(out, size, "?");
	FILE *f = fopen("/proc/loadavg", "r");
	if (f == NULL)
		return;
	double a, b, c;
	if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
		snprintf(out, size, "%.2f %.2f %.2f", a, b, c);
	fclose(f);
}

static void on_signal(int sig)
{
	(void)sig;
	load_interrupt();
}

/* Write-side cases of one system. */
static void run_cases(const struct system_def *def, unsigned si,
                      const struct server *srv, const struct opts *o,
                      struct report *r, int *failures)
{
	struct bench_endpoint ep = {.host = "127.0.0.1", .port = srv->port};
	struct load_run *runs = strata_calloc(o->runs, sizeof(*runs));
	for (unsigned c = 0; c < r->ncases && !load_interrupted(); c++) {
		struct report_cell *cell = &r->cells[si][c];
		const struct report_case *rc = &r->cases[c];
		if (runs == NULL) {
			cell->state = REPORT_FAILED;
			snprintf(cell->error, sizeof(cell->error),
			         "out of memory");
			(*failures)++;
			continue;
		}
		char stream[64];
		snprintf(stream, sizeof(stream), "c%u_%zub_%ux%u", c,
		         rc->payload, rc->writers, rc->window);
		LOG_INFO("bench", "%s: case %s: %.0f s warm-up + %u x %.0f s",
		         def->name, rc->name, o->warmup, o->runs, o->duration);
		void *state = NULL;
		int err = def->ops->open(&ep, stream, BENCH_OPEN_CREATE, &state,
		                         cell->error);
		if (err == 0) {
			struct load_case lc = {rc->payload, rc->writers,
			                       rc->window};
			struct load_opts lo = {o->warmup, o->duration, o->runs,
			                       UINT64_C(1) << 40};
			err = load_measure(def->ops, state, &lc, &lo, srv, runs,
			                   cell->error);
			def->ops->close(state, 1);
		}
		if (err != 0) {
			cell->state = REPORT_FAILED;
			(*failures)++;
			LOG_ERROR("bench", "%s: case %s: %s", def->name,
			          rc->name, cell->error);
			continue;
		}
		report_cell_set(cell, runs, o->runs);
		LOG_INFO("bench",
		         "%s: case %s: %.0f events/s, %.1f MB/s, p50 %.3f ms, "
		         "p99 %.3f ms, CPU %.0f%%, RSS %.0f MB",
		         def->name, rc->name, cell->ev_s, cell->mb_s,
		         cell->p50_ms, cell->p99_ms, cell->cpu_pct,
		         cell->rss_mb);
	}
	strata_free(runs);
}

/* Read the backlog from the head `reads` times (each read is a new reader
 * from the head; a single read of 0.4 s was seen bimodal on a 2-core VM)
 * into c: the median read by time, its spread, and order/size problems
 * of every read (one bad read shows). */
static int read_backlog(const struct system_def *def, void *state,
                        uint64_t acked, size_t payload, unsigned reads,
                        const struct server *srv, struct report_catchup *c)
{
	struct load_read rs[8];
	if (reads == 0)
		reads = 1;
	if (reads > sizeof(rs) / sizeof(rs[0]))
		reads = sizeof(rs) / sizeof(rs[0]);
	for (unsigned i = 0; i < reads; i++) {
		int err = load_read_all(def->ops, state, acked, payload, 600000,
		                        srv, &rs[i], c->error);
		if (err != 0)
			return err;
	}
	/* Insertion sort by time: reads is small. */
	uint64_t bad_order = 0, bad_size = 0, fewest = UINT64_MAX;
	for (unsigned i = 0; i < reads; i++) {
		bad_order += rs[i].bad_order;
		bad_size += rs[i].bad_size;
		if (rs[i].events < fewest)
			fewest = rs[i].events;
		for (unsigned j = i; j > 0 && rs[j].secs < rs[j - 1].secs;
		     j--) {
			struct load_read t = rs[j];
			rs[j] = rs[j - 1];
			rs[j - 1] = t;
		}
	}
	c->r = rs[reads / 2];
	c->r.bad_order = bad_order;
	c->r.bad_size = bad_size;
	if (fewest < c->r.events) {
		/* A short read shows as short, at the median's time. */
		c->r.bytes = c->r.bytes / c->r.events * fewest;
		c->r.events = fewest;
	}
	c->reads = reads;
	double mid = c->r.secs > 0 ? 1.0 / c->r.secs : 0;
	double lo = rs[reads - 1].secs > 0 ? 1.0 / rs[reads - 1].secs : 0;
	double hi = rs[0].secs > 0 ? 1.0 / rs[0].secs : 0;
	c->spread_pct = mid > 0 ? 100.0 * (hi - lo) / mid : 0;
	return 0;
}

/* Catch-up reads of one system: backlog from the head, and for systems
 * with tier 2 again after a restart. */
static void run_catchup(const struct system_def *def, unsigned si,
                        struct server *srv, const struct opts *o,
                        struct report *r, int *failures)
{
	const size_t sizes[2] = {100, 1024};
	const uint64_t counts[2] = {o->backlog_100, o->backlog_1k};
	for (int k = 0; k < 2 && !load_interrupted(); k++) {
		if (counts[k] == 0)
			continue;
		struct report_catchup *c = &r->catchup[si][r->ncatchup[si]++];
		c->when = "from head";
		c->payload = sizes[k];
		c->backlog = counts[k];
		char stream[64];
		snprintf(stream, sizeof(stream), "backlog_%zub", sizes[k]);
		struct bench_endpoint ep = {.host = "127.0.0.1",
		                            .port = srv->port};
		void *state = NULL;
		LOG_INFO("bench", "%s: catch-up: writing %" PRIu64 " x %zu B",
		         def->name, counts[k], sizes[k]);
		int err = def->ops->open(&ep, stream, BENCH_OPEN_CREATE, &state,
		                         c->error);
		if (err != 0)
			goto fail;
		struct load_case lc = {sizes[k], 8, 32};
		uint64_t acked = 0;
		err = load_fill(def->ops, state, &lc, counts[k], 600, &acked,
		                &c->fill_s, c->error);
		if (err == 0) {
			c->backlog = acked;
			err = read_backlog(def, state, acked, sizes[k], o->runs,
			                   srv, c);
		}
		if (err != 0) {
			def->ops->close(state, 1);
			goto fail;
		}
		c->state = REPORT_OK;
		LOG_INFO("bench", "%s: catch-up %zu B from head: %.0f MB/s",
		         def->name, sizes[k],
		         (double)c->r.bytes / 1e6 /
		                 (c->r.secs ? c->r.secs : 1));
		if (def->restart_catchup &&
		    r->ncatchup[si] < REPORT_MAX_CATCHUP) {
			struct report_catchup *c2 =
			        &r->catchup[si][r->ncatchup[si]++];
			*c2 = *c;
			memset(&c2->r, 0, sizeof(c2->r));
			c2->state = REPORT_FAILED;
			c2->when = "after restart";
			err = def->ops->settle
			              ? def->ops->settle(state, SETTLE_MS,
			                                 c2->error)
			              : 0;
			def->ops->close(state, 0);
			state = NULL;
			if (err == 0)
				err = server_restart(srv, c2->error);
			if (err == 0)
				err = def->ops->open(&ep, stream,
				                     BENCH_OPEN_ATTACH, &state,
				                     c2->error);
			if (err == 0)
				err = read_backlog(def, state, acked, sizes[k],
				                   o->runs, srv, c2);
			if (err == 0) {
				c2->state = REPORT_OK;
			} else {
				(*failures)++;
				LOG_ERROR("bench",
				          "%s: catch-up after restart: %s",
				          def->name, c2->error);
			}
		}
		if (state != NULL)
			def->ops->close(state, 1);
		continue;
	fail:
		c->state = REPORT_FAILED;
		(*failures)++;
		LOG_ERROR("bench", "%s: catch-up %zu B: %s", def->name,
		          sizes[k], c->error);
	}
}

static void run_disk(const struct opts *o, struct report *r)
{
	static const size_t blocks[] = {4096, 65536, 262144, 1048576};
	for (int pre = 0; pre <= 1; pre++) {
		for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]);
		     i++) {
			if (load_interrupted() || r->ndisk == REPORT_MAX_DISK)
				return;
			struct disk_result *d = &r->disk[r->ndisk];
			int err =
			        disk_bench(o->data, blocks[i], pre, o->disk_s,
			                   UINT64_C(1) << 30, d, r->disk_error);
			if (err != 0) {
				LOG_ERROR("bench", "%s", r->disk_error);
				return;
			}
			r->ndisk++;
			LOG_INFO("bench",
			         "disk %s %zu KiB: %.1f MB/s, %.0f writes/s",
			         pre ? "prealloc" : "append", blocks[i] / 1024,
			         d->mb_s, d->writes_s);
		}
	}
}

/* Report to stdout and OUT/<date>[-quick].md, chart beside it. */
static int write_outputs(const struct opts *o, const struct report *r)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	if (mem == NULL) {
		report_markdown(stdout, r);
		return STRATA_ENOMEM;
	}
	report_markdown(mem, r);
	fclose(mem);
	fputs(text, stdout);
	fflush(stdout);
	int rc = 0;
	char base[PATH_MAX], path[PATH_MAX + 8];
	if (mkdir(o->out, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "strata-bench: create %s: %s\n", o->out,
		        strerror(errno));
		free(text); /* open_memstream: libc heap */
		return STRATA_EIO;
	}
	snprintf(base, sizeof(base), "%s/%s%s", o->out, r->date,
	         o->quick ? "-quick" : "");
	snprintf(path, sizeof(path), "%s.md", base);
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0) {
		fprintf(stderr, "strata-bench: write %s: %s\n", path,
		        strerror(errno));
		rc = STRATA_EIO;
	}
	if (f != NULL && fclose(f) != 0)
		rc = STRATA_EIO;
	free(text); /* open_memstream: libc heap */
	if (rc == 0)
		fprintf(stderr, "strata-bench: wrote %s\n", path);
	snprintf(path, sizeof(path), "%s.png", base);
	char errmsg[STRATA_ERRMSG_SIZE];
	if (report_chart(r, path, o->data, errmsg) != 0)
		fprintf(stderr, "strata-bench: %s\n", errmsg);
	else
		fprintf(stderr, "strata-bench: wrote %s\n", path);
	return rc;
}

int main(int argc, char **argv)
{
	char errmsg[STRATA_ERRMSG_SIZE];
	if (strata_process_init(errmsg) != 0) {
		fprintf(stderr, "strata-bench: %s\n", errmsg);
		return 1;
	}
	struct opts o;
	if (parse_args(argc, argv, &o) != 0)
		return 2;
	struct report *r = strata_calloc(1, sizeof(*r));
	if (r == NULL) {
		fprintf(stderr, "strata-bench: out of memory\n");
		return 1;
	}
	const struct system_def *picked[REPORT_MAX_SYSTEMS];
	unsigned npicked = 0;
	int exit_code = 2;
	if (parse_cases(o.cases, r) != 0 ||
	    pick_systems(o.systems, picked, &npicked) != 0)
		goto out;
	if (npicked == 0) {
		fprintf(stderr, "strata-bench: no system built in: install "
		                "the client libraries (scripts/install-deps.sh "
		                "bench) and rebuild\n");
		goto out;
	}
	if (setup_data_dir(&o, r) != 0)
		goto out;
	exit_code = 1;
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(r->date, sizeof(r->date), "%Y-%m-%d", &tm);
	snprintf(r->chart, sizeof(r->chart), "%s%s.png", r->date,
	         o.quick ? "-quick" : "");
	strftime(r->started, sizeof(r->started), "%Y-%m-%d %H:%M:%S", &tm);
	host_info(r);
	load_avg(r->load_start, sizeof(r->load_start));
	r->warmup_s = o.warmup;
	r->run_s = o.duration;
	r->runs = o.runs;
	r->quick = o.quick;
	r->thread_refill = o.thread_refill;
	load_set_thread_refill(o.thread_refill);
	uint64_t t_start = load_now_ns();
	double est = (o.warmup + o.duration * o.runs) * r->ncases * npicked;
	LOG_INFO("bench",
	         "%u system(s) x %u case(s): about %.0f s of load plus "
	         "catch-up; data in %s (%s)",
	         npicked, r->ncases, est, r->data_dir, r->data_fs);

	if (o.disk_s > 0)
		run_disk(&o, r);
	int failures = r->disk_error[0] ? 1 : 0;
	for (unsigned s = 0; s < npicked && !load_interrupted(); s++) {
		const struct system_def *def = picked[s];
		struct report_system *rs = &r->systems[r->nsystems++];
		snprintf(rs->name, sizeof(rs->name), "%s", def->name);
		snprintf(rs->label, sizeof(rs->label), "%s", def->label);
		snprintf(rs->ack, sizeof(rs->ack), "%s", def->ack);
		rs->rss_budget_mb = def->rss_budget_mb;
		struct server srv;
		char err[STRATA_ERRMSG_SIZE];
		if (server_start(&srv, def->kind, o.data, err) != 0) {
			LOG_ERROR("bench", "%s: %s", def->name, err);
			for (unsigned c = 0; c < r->ncases; c++) {
				r->cells[s][c].state = REPORT_FAILED;
				snprintf(r->cells[s][c].error,
				         sizeof(r->cells[s][c].error), "%s",
				         err);
			}
			failures++;
			server_stop(&srv, !o.keep_data);
			continue;
		}
		snprintf(rs->version, sizeof(rs->version), "%s", srv.version);
		run_cases(def, s, &srv, &o, r, &failures);
		if (!load_interrupted())
			run_catchup(def, s, &srv, &o, r, &failures);
		server_stop(&srv, !o.keep_data);
	}
	r->total_s = (double)(load_now_ns() - t_start) / 1e9;
	load_avg(r->load_end, sizeof(r->load_end));
	if (load_interrupted())
		fprintf(stderr, "strata-bench: interrupted; partial results\n");
	if (write_outputs(&o, r) == 0 && failures == 0 && !load_interrupted())
		exit_code = 0;
	else if (failures)
		fprintf(stderr,
		        "strata-bench: %d measurement(s) failed; see "
		        "the table\n",
		        failures);
out:
	for (size_t i = 0; i < NSYSTEMS; i++)
		if (systems[i].ops->cleanup)
			systems[i].ops->cleanup();
	strata_free(r);
	return exit_code;
}
