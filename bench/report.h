/* Benchmark results: the Markdown report, the targets check, the chart. */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "bench/diskbench.h"
#include "bench/load.h"
#include "strata/error.h"

#define REPORT_MAX_SYSTEMS 8
#define REPORT_MAX_CASES 16
#define REPORT_MAX_CATCHUP 4
#define REPORT_MAX_DISK 8

enum report_state {
	REPORT_NOT_RUN = 0, /* not measured (system or case skipped) */
	REPORT_OK,          /* measured */
	REPORT_FAILED,      /* tried; error says why */
};

/* A workload case, named like "100B 8x32". */
struct report_case {
	char name[32];    /* "100B 8x32" */
	size_t payload;   /* bytes per event */
	unsigned writers; /* writer connections */
	unsigned window;  /* in flight per writer */
};

/* A benchmarked system. */
struct report_system {
	char name[16];          /* "redis", "nats", "strata", "strata3" */
	char label[200];        /* human name and configuration */
	char ack[128];          /* what an acknowledgement means */
	char version[96];       /* server version string */
	uint64_t rss_budget_mb; /* configured memory budget, 0 = none */
};

/* Median over the runs of one system x case. */
struct report_cell {
	enum report_state state;        /* measured or not */
	char error[STRATA_ERRMSG_SIZE]; /* why it failed */
	unsigned runs;                  /* runs measured */
	double ev_s;                    /* events/s */
	double mb_s;                    /* payload MB/s (10^6 B) */
	double p50_ms, p95_ms, p99_ms;  /* send-to-ack latency */
	double cpu_pct;                 /* server CPU, % of one core */
	double rss_mb;                  /* server RSS (MiB) */
	double spread_pct;              /* (max - min) / median events/s */
	uint64_t errors;                /* failed acks over all runs */
};

/* One catch-up read. */
struct report_catchup {
	enum report_state state;        /* measured or not */
	char error[STRATA_ERRMSG_SIZE]; /* why it failed */
	const char *when;               /* "from head", "after restart" */
	size_t payload;                 /* event size */
	uint64_t backlog;               /* events written before */
	double fill_s;                  /* time to write the backlog */
	struct load_read r;             /* the median read (by time) */
	unsigned reads;                 /* reads made (median shown) */
	double spread_pct;              /* (max - min) / median MB/s */
};

struct report {
	char date[16];           /* UTC YYYY-MM-DD */
	char chart[64];          /* chart file name, beside the report */
	char started[32];        /* UTC start time */
	char host[192];          /* CPU, cores, memory, kernel */
	char load_start[48];     /* /proc/loadavg at the start */
	char load_end[48];       /* and at the end */
	char data_dir[PATH_MAX]; /* where servers keep data */
	char data_fs[96];        /* its filesystem */
	double warmup_s, run_s;  /* timing */
	unsigned runs;           /* runs per case */
	int quick;               /* bench-quick */
	int thread_refill;       /* --refill thread */
	double total_s;          /* wall time of the whole run */
	unsigned nsystems, ncases;
	struct report_system systems[REPORT_MAX_SYSTEMS];
	struct report_case cases[REPORT_MAX_CASES];
	struct report_cell cells[REPORT_MAX_SYSTEMS][REPORT_MAX_CASES];
	unsigned ncatchup[REPORT_MAX_SYSTEMS];
	struct report_catchup catchup[REPORT_MAX_SYSTEMS][REPORT_MAX_CATCHUP];
	unsigned ndisk;                           /* disk rows */
	struct disk_result disk[REPORT_MAX_DISK]; /* raw-disk baseline */
	char disk_error[STRATA_ERRMSG_SIZE];      /* if it failed */
};

/* Fill a cell with the per-metric medians of runs[0..n-1]. */
void report_cell_set(struct report_cell *cell, const struct load_run *runs,
                     unsigned n);

/* Write the whole report as Markdown (systems, throughput/latency table
 * with the ratio to Redis, catch-up, raw disk, targets). */
void report_markdown(FILE *f, const struct report *r);

/*
 * Draw throughput and p99 per case and system into png with gnuplot
 * (work files in tmpdir, removed after). Returns 0, STRATA_ENOENT when
 * gnuplot is missing (errmsg: install gnuplot-nox) or STRATA_EIO.
 */
int report_chart(const struct report *r, const char *png, const char *tmpdir,
                 char *errmsg);

#endif /* BENCH_REPORT_H */
