/* Standard process_* metrics, read from /proc/self at render time. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/errmsg.h"
#include "common/metrics.h"
#include "strata/error.h"

/* Read up to size-1 bytes of a small /proc file into s, NUL-terminated.
 * Returns 0 or STRATA_EIO. */
static int read_proc(const char *path, char *s, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return STRATA_EIO;
	}
	size_t n = 0;
	while (n < size - 1) {
		ssize_t r = read(fd, s + n, size - 1 - n);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			break;
		}
		n += (size_t)r;
	}
	close(fd);
	s[n] = '\0';
	return n > 0 ? 0 : STRATA_EIO;
}

/* Field k (1-based as in proc(5)) of /proc/self/stat, k >= 3. */
static int proc_stat_field(int k, unsigned long long *v)
{
	char s[1024];
	if (read_proc("/proc/self/stat", s, sizeof(s)) != 0) {
		return STRATA_EIO;
	}
	/* comm (field 2) may hold spaces and ')': skip to the last ')'. */
	char *p = strrchr(s, ')');
	if (p == NULL) {
		return STRATA_EIO;
	}
	p++;
	for (int field = 3; field <= k; field++) {
		while (*p == ' ') {
			p++;
		}
		if (*p == '\0') {
			return STRATA_EIO;
		}
		if (field == k) {
			char *end;
			errno = 0;
			*v = strtoull(p, &end, 10);
			return (end == p || errno != 0) ? STRATA_EIO : 0;
		}
		while (*p != ' ' && *p != '\0') {
			p++;
		}
	}
	return STRATA_EIO;
}

static int proc_rss(void *arg, double *v)
{
	(void)arg;
	char s[256];
	unsigned long long size, resident;
	if (read_proc("/proc/self/statm", s, sizeof(s)) != 0 ||
	    sscanf(s, "%llu %llu", &size, &resident) != 2) {
		return STRATA_EIO;
	}
	*v = (double)resident * (double)sysconf(_SC_PAGESIZE);
	return 0;
}

static int proc_cpu(void *arg, double *v)
{
	(void)arg;
	unsigned long long utime, stime;
	if (proc_stat_field(14, &utime) != 0 ||
	    proc_stat_field(15, &stime) != 0) {
		return STRATA_EIO;
	}
	*v = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

static int proc_open_fds(void *arg, double *v)
{
	(void)arg;
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL) {
		return STRATA_EIO;
	}
	long n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.') {
			n++;
		}
	}
	closedir(d);
	*v = (double)(n - 1); /* the directory's own descriptor */
	return 0;
}

/* Process start as seconds since the epoch: boot time + start ticks. */
static int proc_start_time(double *v)
{
	unsigned long long start;
	char s[8192];
	if (proc_stat_field(22, &start) != 0 ||
	    read_proc("/proc/stat", s, sizeof(s)) != 0) {
		return STRATA_EIO;
	}
	char *p = strstr(s, "\nbtime ");
	unsigned long long btime;
	if (p == NULL || sscanf(p + 7, "%llu", &btime) != 1) {
		return STRATA_EIO;
	}
	*v = (double)btime + (double)start / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

int metrics_register_process(struct metrics_registry *reg, char *errmsg)
{
	double start;
	if (proc_start_time(&start) != 0) {
		errmsg_set(errmsg,
		           "process metrics: cannot read /proc/self/stat "
		           "or /proc/stat (is /proc mounted?)");
		return STRATA_EIO;
	}
	int rv = metrics_callback_register(reg, METRICS_GAUGE,
	                                   "process_resident_memory_bytes",
	                                   "Resident memory size in bytes.",
	                                   NULL, 0, proc_rss, NULL, errmsg);
	if (rv == 0) {
		rv = metrics_callback_register(
		        reg, METRICS_COUNTER, "process_cpu_seconds_total",
		        "Total user and system CPU time spent in seconds.",
		        NULL, 0, proc_cpu, NULL, errmsg);
	}
	if (rv == 0) {
		rv = metrics_callback_register(
		        reg, METRICS_GAUGE, "process_open_fds",
		        "Number of open file descriptors.", NULL, 0,
		        proc_open_fds, NULL, errmsg);
	}
	struct metrics_gauge *g;
	if (rv == 0) {
		rv = metrics_gauge_register(
		        reg, "process_start_time_seconds",
		        "Start time of the process since unix epoch in "
		        "seconds.",
		        NULL, 0, METRICS_GAUGE_DOUBLE, &g, errmsg);
	}
	if (rv == 0) {
		metrics_gauge_set_double(g, start);
	}
	return rv;
}
