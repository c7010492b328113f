/* Benchmark results: the Markdown report, the targets check, the chart. */
#include "bench/report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median of n values (n <= LOAD_MAX_RUNS); the mean of the middle two
 * when n is even. */
static double median(const double *v, unsigned n)
{
	double s[LOAD_MAX_RUNS];
	if (n == 0)
		return 0;
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

void report_cell_set(struct report_cell *cell, const struct load_run *runs,
                     unsigned n)
{
	double ev[LOAD_MAX_RUNS], mb[LOAD_MAX_RUNS], p50[LOAD_MAX_RUNS],
	        p95[LOAD_MAX_RUNS], p99[LOAD_MAX_RUNS], cpu[LOAD_MAX_RUNS],
	        rss[LOAD_MAX_RUNS];
	double lo = 0, hi = 0;
	cell->errors = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct load_run *r = &runs[i];
		double secs = r->secs > 0 ? r->secs : 1;
		ev[i] = (double)r->events / secs;
		mb[i] = (double)r->bytes / 1e6 / secs;
		p50[i] = (double)hist_percentile(&r->lat, 50) / 1e6;
		p95[i] = (double)hist_percentile(&r->lat, 95) / 1e6;
		p99[i] = (double)hist_percentile(&r->lat, 99) / 1e6;
		cpu[i] = r->cpu_pct;
		rss[i] = (double)r->rss_kb / 1024.0;
		cell->errors += r->errors;
		if (i == 0 || ev[i] < lo)
			lo = ev[i];
		if (i == 0 || ev[i] > hi)
			hi = ev[i];
	}
	cell->runs = n;
	cell->ev_s = median(ev, n);
	cell->mb_s = median(mb, n);
	cell->p50_ms = median(p50, n);
	cell->p95_ms = median(p95, n);
	cell->p99_ms = median(p99, n);
	cell->cpu_pct = median(cpu, n);
	cell->rss_mb = median(rss, n);
	cell->spread_pct = cell->ev_s > 0 ? 100.0 * (hi - lo) / cell->ev_s : 0;
	cell->state = REPORT_OK;
}

static int find_system(const struct report *r, const char *name)
{
	for (unsigned i = 0; i < r->nsystems; i++)
		if (strcmp(r->systems[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int find_case(const struct report *r, size_t payload, unsigned writers,
                     unsigned window)
{
	for (unsigned i = 0; i < r->ncases; i++)
		if (r->cases[i].payload == payload &&
		    r->cases[i].writers == writers &&
		    r->cases[i].window == window)
			return (int)i;
	return -1;
}

static const struct report_cell *cell_of(const struct report *r, int sys, int c)
{
	if (sys < 0 || c < 0 || r->cells[sys][c].state != REPORT_OK)
		return NULL;
	return &r->cells[sys][c];
}

/* Latency with 3 significant digits. */
static void fmt_ms(char *out, size_t size, double ms)
{
	if (ms >= 100)
		snprintf(out, size, "%.0f", ms);
	else if (ms >= 10)
		snprintf(out, size, "%.1f", ms);
	else if (ms >= 1)
		snprintf(out, size, "%.2f", ms);
	else
		snprintf(out, size, "%.3f", ms);
}

static void print_writes(FILE *f, const struct report *r)
{
	int redis = find_system(r, "redis");
	fprintf(f, "## Writes: throughput and send-to-ack latency\n\n");
	fprintf(f,
	        "Median of %u run%s of %.0f s each after %.0f s of warm-up "
	        "(each metric's median on its own). Case = payload, "
	        "writers x events in flight per writer. MB = 10^6 bytes of "
	        "payload. CPU = server process CPU time over the window "
	        "(100 = one core). RSS = server resident memory at the end "
	        "of the window. *vs Redis* = events/s divided by Redis's in "
	        "the same case. *spread* = (max - min) / median of "
	        "events/s over the runs.\n\n",
	        r->runs, r->runs == 1 ? "" : "s", r->run_s, r->warmup_s);
	fprintf(f,
	        "Each writer has its own connection (Strata: its own client) "
	        "and keeps its events in flight: Redis's writer thread "
	        "pipelines XADDs and reads the replies itself; %s\n\n",
	        r->thread_refill
	                ? "NATS's and Strata's writer threads wake for their "
	                  "acks and refill (`--refill thread`)."
	                : "NATS's and Strata's write their next event from "
	                  "the ack callback, on the client library's thread, "
	                  "as an async producer chains writes (`--refill "
	                  "thread` wakes the writer's thread instead).");
	fprintf(f, "| system | case | events/s | MB/s | p50 ms | p95 ms | "
	           "p99 ms | server CPU %% | server RSS MB | vs Redis | "
	           "spread |\n");
	fprintf(f, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | "
	           "---: | ---: | ---: |\n");
	for (unsigned s = 0; s < r->nsystems; s++) {
		for (unsigned c = 0; c < r->ncases; c++) {
			const struct report_cell *x = &r->cells[s][c];
			if (x->state == REPORT_NOT_RUN)
				continue;
			if (x->state == REPORT_FAILED) {
				fprintf(f,
				        "| %s | %s | failed: %s | | | | | | | "
				        "| |\n",
				        r->systems[s].name, r->cases[c].name,
				        x->error);
				continue;
			}
			char p50[16], p95[16], p99[16], vs[16] = "-";
			fmt_ms(p50, sizeof(p50), x->p50_ms);
			fmt_ms(p95, sizeof(p95), x->p95_ms);
			fmt_ms(p99, sizeof(p99), x->p99_ms);
			const struct report_cell *rd =
			        cell_of(r, redis, (int)c);
			if (rd != NULL && rd->ev_s > 0)
				snprintf(vs, sizeof(vs), "%.2fx",
				         x->ev_s / rd->ev_s);
			fprintf(f,
			        "| %s | %s | %.0f | %.1f | %s | %s | %s | %.0f "
			        "| %.0f | %s | %.0f%% |\n",
			        r->systems[s].name, r->cases[c].name, x->ev_s,
			        x->mb_s, p50, p95, p99, x->cpu_pct, x->rss_mb,
			        vs, x->spread_pct);
			if (x->errors > 0)
				fprintf(f,
				        "| %s | %s | %llu failed acks | | | | "
				        "| "
				        "| | | |\n",
				        r->systems[s].name, r->cases[c].name,
				        (unsigned long long)x->errors);
		}
	}
	fprintf(f, "\n");
}

static void print_catchup(FILE *f, const struct report *r)
{
	int any = 0;
	for (unsigned s = 0; s < r->nsystems; s++)
		any |= r->ncatchup[s] > 0;
	if (!any)
		return;
	fprintf(f, "## Catch-up read of a backlog, from the head\n\n");
	fprintf(f, "The backlog is written first (8 writers x 32 in flight, "
	           "time shown as *fill s*), then read from the head by one "
	           "reader, once per run (each read a new reader from the "
	           "head); the median read is shown, *spread* = (max - min) "
	           "/ median MB/s of the reads. *order* checks that every "
	           "writer's sequence numbers come back complete and in "
	           "order, in every read.\n\n");
	fprintf(f, "| system | backlog | when | events/s | MB/s | read s | "
	           "order | server CPU %% | server RSS MB | fill s | reads | "
	           "spread |\n");
	fprintf(f, "| --- | --- | --- | ---: | ---: | ---: | --- | ---: | "
	           "---: | ---: | ---: | ---: |\n");
	for (unsigned s = 0; s < r->nsystems; s++) {
		for (unsigned k = 0; k < r->ncatchup[s]; k++) {
			const struct report_catchup *c = &r->catchup[s][k];
			char backlog[48];
			snprintf(backlog, sizeof(backlog), "%llu x %zu B",
			         (unsigned long long)c->backlog, c->payload);
			if (c->state != REPORT_OK) {
				fprintf(f,
				        "| %s | %s | %s | failed: %s | | | | | "
				        "| | | |\n",
				        r->systems[s].name, backlog, c->when,
				        c->error);
				continue;
			}
			const struct load_read *x = &c->r;
			double secs = x->secs > 0 ? x->secs : 1;
			char order[64];
			if (x->bad_order == 0 && x->bad_size == 0 &&
			    x->events == c->backlog)
				snprintf(order, sizeof(order), "ok");
			else
				snprintf(order, sizeof(order),
				         "%llu/%llu read, %llu out of order, "
				         "%llu bad size",
				         (unsigned long long)x->events,
				         (unsigned long long)c->backlog,
				         (unsigned long long)x->bad_order,
				         (unsigned long long)x->bad_size);
			fprintf(f,
			        "| %s | %s | %s | %.0f | %.1f | %.2f | %s | "
			        "%.0f | %.0f | %.1f | %u | %.0f%% |\n",
			        r->systems[s].name, backlog, c->when,
			        (double)x->events / secs,
			        (double)x->bytes / 1e6 / secs, x->secs, order,
			        x->cpu_pct, (double)x->rss_kb / 1024.0,
			        c->fill_s, c->reads, c->spread_pct);
		}
	}
	fprintf(f, "\n");
}

static void print_disk(FILE *f, const struct report *r)
{
	if (r->ndisk == 0 && r->disk_error[0] == '\0')
		return;
	fprintf(f, "## Raw disk: O_DIRECT + O_DSYNC sequential writes\n\n");
	fprintf(f, "What the disk under the data directory does alone: one "
	           "synchronous write at a time, to a growing file (append) "
	           "and to a preallocated one. The append writes/s bound "
	           "any system that syncs every acknowledgement without "
	           "grouping.\n\n");
	if (r->disk_error[0] != '\0')
		fprintf(f, "Failed: %s\n\n", r->disk_error);
	if (r->ndisk == 0)
		return;
	fprintf(f, "| mode | block | MB/s | writes/s | p50 ms | p99 ms |\n");
	fprintf(f, "| --- | ---: | ---: | ---: | ---: | ---: |\n");
	for (unsigned i = 0; i < r->ndisk; i++) {
		const struct disk_result *d = &r->disk[i];
		char p50[16], p99[16];
		fmt_ms(p50, sizeof(p50), (double)d->p50_ns / 1e6);
		fmt_ms(p99, sizeof(p99), (double)d->p99_ns / 1e6);
		fprintf(f, "| %s | %zu KiB | %.1f | %.0f | %s | %s |\n",
		        d->prealloc ? "prealloc" : "append", d->block / 1024,
		        d->mb_s, d->writes_s, p50, p99);
	}
	fprintf(f, "\n");
}

/* One line of the targets table. */
static void target(FILE *f, const char *what, int measured, int met,
                   const char *detail)
{
	fprintf(f, "| %s | %s | %s |\n", what,
	        !measured ? "not measured"
	        : met     ? "**met**"
	                  : "**missed**",
	        detail);
}

static void print_targets(FILE *f, const struct report *r)
{
	int st = find_system(r, "strata");
	int st3 = find_system(r, "strata3");
	int rd = find_system(r, "redis");
	char d[256];
	fprintf(f, "## Targets (issue 7: durable acks, same run)\n\n");
	fprintf(f, "| target | result | numbers |\n| --- | --- | --- |\n");
	const char *none = "needs the Strata backend (bench/backend_strata.c) "
	                   "and Redis in the same run";

	int c = find_case(r, 100, 8, 32);
	const struct report_cell *a = cell_of(r, st, c), *b = cell_of(r, rd, c);
	if (a && b)
		snprintf(d, sizeof(d), "%.0f vs %.0f events/s = %.2fx", a->ev_s,
		         b->ev_s, b->ev_s > 0 ? a->ev_s / b->ev_s : 0);
	target(f, "100 B 8x32: Strata standalone >= 2x Redis always-fsync",
	       a && b, a && b && a->ev_s >= 2 * b->ev_s, a && b ? d : none);

	c = find_case(r, 1024, 8, 32);
	a = cell_of(r, st, c);
	b = cell_of(r, rd, c);
	if (a && b)
		snprintf(d, sizeof(d), "%.1f MB/s vs %.1f MB/s = %.2fx",
		         a->mb_s, b->mb_s, b->mb_s > 0 ? a->mb_s / b->mb_s : 0);
	/* "250 MB/s or 2x Redis, whichever is higher": both. */
	target(f, "1 KB 8x32: >= 250 MB/s or >= 2x Redis, whichever is higher",
	       a && b, a && b && a->mb_s >= 250 && a->mb_s >= 2 * b->mb_s,
	       a && b ? d : none);

	static const size_t sizes[] = {100, 1024};
	for (int i = 0; i < 2; i++) {
		c = find_case(r, sizes[i], 1, 1);
		a = cell_of(r, st, c);
		b = cell_of(r, rd, c);
		char what[96];
		snprintf(what, sizeof(what),
		         "%zu B 1x1: p50 latency within 1.5x of Redis",
		         sizes[i]);
		if (a && b)
			snprintf(d, sizeof(d), "%.3f ms vs %.3f ms = %.2fx",
			         a->p50_ms, b->p50_ms,
			         b->p50_ms > 0 ? a->p50_ms / b->p50_ms : 0);
		target(f, what, a && b, a && b && a->p50_ms <= 1.5 * b->p50_ms,
		       a && b ? d : none);
	}

	const struct report_catchup *t2 = NULL;
	for (unsigned k = 0; st >= 0 && k < r->ncatchup[st]; k++) {
		const struct report_catchup *x = &r->catchup[st][k];
		if (x->state == REPORT_OK && x->payload == 1024 &&
		    strcmp(x->when, "after restart") == 0)
			t2 = x;
	}
	double t2mb = 0;
	if (t2) {
		t2mb = (double)t2->r.bytes / 1e6 /
		       (t2->r.secs > 0 ? t2->r.secs : 1);
		snprintf(d, sizeof(d), "%.0f MB/s", t2mb);
	}
	target(f, "catch-up read from tier 2 (1 KB events) >= 1 GB/s",
	       t2 != NULL, t2mb >= 1000,
	       t2 ? d : "needs the Strata backend with a restart catch-up");

	int n3 = 0, ok3 = 0;
	double worst = 1e9;
	for (unsigned k = 0; k < r->ncases; k++) {
		a = cell_of(r, st3, (int)k);
		b = cell_of(r, st, (int)k);
		if (!a || !b || b->ev_s <= 0)
			continue;
		n3++;
		double ratio = a->ev_s / b->ev_s;
		ok3 += ratio >= 0.5;
		if (ratio < worst)
			worst = ratio;
	}
	if (n3)
		snprintf(d, sizeof(d), "%d/%d cases; lowest ratio %.2f", ok3,
		         n3, worst);
	target(f, "3-replica >= 50% of standalone (events/s, every case)",
	       n3 > 0, n3 > 0 && ok3 == n3,
	       n3 ? d : "needs the Strata standalone and 3-replica systems");

	int nb = 0, okb = 0;
	d[0] = '\0';
	for (unsigned s = 0; s < r->nsystems; s++) {
		uint64_t budget = r->systems[s].rss_budget_mb;
		if (budget == 0)
			continue;
		double peak = 0;
		for (unsigned k = 0; k < r->ncases; k++)
			if (r->cells[s][k].state == REPORT_OK &&
			    r->cells[s][k].rss_mb > peak)
				peak = r->cells[s][k].rss_mb;
		nb++;
		okb += peak <= (double)budget;
		size_t len = strlen(d);
		snprintf(d + len, sizeof(d) - len, "%s%s %.0f of %llu MB",
		         len ? "; " : "", r->systems[s].name, peak,
		         (unsigned long long)budget);
	}
	target(f, "server RSS under its configured budget", nb > 0,
	       nb > 0 && okb == nb,
	       nb ? d : "no system in this run has a configured budget");
	fprintf(f, "\n");
}

void report_markdown(FILE *f, const struct report *r)
{
	fprintf(f, "# Strata benchmark, %s%s\n\n", r->date,
	        r->quick ? " (quick smoke run: numbers are indicative only)"
	                 : "");
	fprintf(f, "- started: %s UTC; took %.0f s\n", r->started, r->total_s);
	fprintf(f, "- host: %s\n", r->host);
	fprintf(f,
	        "- load average (1/5/15 min) at start: %s; at end: %s "
	        "(anything else running on the machine skews the numbers)\n",
	        r->load_start, r->load_end);
	fprintf(f, "- data: %s (%s); every server on 127.0.0.1\n", r->data_dir,
	        r->data_fs);
	fprintf(f,
	        "- method: docs/benchmarks.md; chart: %s beside this file\n\n",
	        r->chart);
	fprintf(f, "## Systems\n\n| system | configuration | an ack means | "
	           "version |\n| --- | --- | --- | --- |\n");
	for (unsigned s = 0; s < r->nsystems; s++)
		fprintf(f, "| %s | %s | %s | %s |\n", r->systems[s].name,
		        r->systems[s].label, r->systems[s].ack,
		        r->systems[s].version[0] ? r->systems[s].version : "-");
	fprintf(f, "\n");
	print_writes(f, r);
	print_catchup(f, r);
	print_disk(f, r);
	print_targets(f, r);
}

int report_chart(const struct report *r, const char *png, const char *tmpdir,
                 char *errmsg)
{
	char dat[4096], gp[4096];
	int any = 0;
	for (unsigned s = 0; s < r->nsystems; s++)
		for (unsigned c = 0; c < r->ncases; c++)
			any |= cell_of(r, (int)s, (int)c) != NULL;
	if (!any) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "chart: nothing measured, no chart drawn");
		return STRATA_ENOENT;
	}
	snprintf(dat, sizeof(dat), "%s/chart.dat", tmpdir);
	snprintf(gp, sizeof(gp), "%s/chart.gp", tmpdir);
	FILE *f = fopen(dat, "w");
	if (f == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "chart: write %.150s: %s",
		         dat, strerror(errno));
		return STRATA_EIO;
	}
	fprintf(f, "case");
	for (unsigned s = 0; s < r->nsystems; s++)
		fprintf(f, " %s", r->systems[s].name);
	for (unsigned s = 0; s < r->nsystems; s++)
		fprintf(f, " %s", r->systems[s].name);
	fprintf(f, "\n");
	for (unsigned c = 0; c < r->ncases; c++) {
		fprintf(f, "\"%s\"", r->cases[c].name);
		for (unsigned s = 0; s < r->nsystems; s++) {
			const struct report_cell *x =
			        cell_of(r, (int)s, (int)c);
			if (x && x->ev_s > 0)
				fprintf(f, " %.1f", x->ev_s);
			else
				fprintf(f, " ?");
		}
		for (unsigned s = 0; s < r->nsystems; s++) {
			const struct report_cell *x =
			        cell_of(r, (int)s, (int)c);
			if (x && x->p99_ms > 0)
				fprintf(f, " %.4f", x->p99_ms);
			else
				fprintf(f, " ?");
		}
		fprintf(f, "\n");
	}
	fclose(f);
	f = fopen(gp, "w");
	if (f == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "chart: write %.150s: %s",
		         gp, strerror(errno));
		unlink(dat);
		return STRATA_EIO;
	}
	unsigned n = r->nsystems;
	fprintf(f,
	        "set terminal pngcairo size 1600,650 font 'sans,10'\n"
	        "set output '%s'\n"
	        "set datafile missing '?'\n"
	        "set style data histograms\n"
	        "set style histogram clustered gap 1\n"
	        "set style fill solid 0.85 border -1\n"
	        "set logscale y\n"
	        "set grid ytics\n"
	        "set key top left\n"
	        "set xtics rotate by -25\n"
	        "set multiplot layout 1,2 title 'Strata benchmark %s%s'\n"
	        "set title 'Write throughput (events/s, median, log scale)'\n"
	        "plot for [i=2:%u] '%s' using i:xtic(1) title columnheader(i)\n"
	        "set title 'p99 send-to-ack latency (ms, log scale)'\n"
	        "plot for [i=%u:%u] '%s' using i:xtic(1) title "
	        "columnheader(i)\n"
	        "unset multiplot\n",
	        png, r->date, r->quick ? " (quick)" : "", n + 1, dat, n + 2,
	        2 * n + 1, dat);
	fclose(f);
	pid_t pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);
		if (nul >= 0)
			dup2(nul, 1);
		execlp("gnuplot", "gnuplot", gp, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	int rc = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "chart: cannot run gnuplot");
		rc = STRATA_EIO;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "chart: gnuplot not found: install gnuplot-nox "
		         "(scripts/install-deps.sh bench)");
		rc = STRATA_ENOENT;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "chart: gnuplot %.150s failed (status %d)", gp,
		         status);
		rc = STRATA_EIO;
	}
	unlink(dat);
	unlink(gp);
	return rc;
}
