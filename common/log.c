/* Logging (see log.h). */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "strata/error.h"

#define LOG_LINE_MAX 4096

static atomic_int min_level = STRATA_LOG_INFO;
static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

void log_set_level(int level)
{
	atomic_store(&min_level, level);
}

int log_get_level(void)
{
	return atomic_load(&min_level);
}

bool log_enabled(int level)
{
	return level >= atomic_load(&min_level);
}

int log_level_parse(const char *s, int *level)
{
	for (int i = 0; log_levels[i] != NULL; i++) {
		if (strcasecmp(s, log_levels[i]) == 0) {
			*level = i;
			return 0;
		}
	}
	return STRATA_EINVAL;
}

const char *log_level_name(int level)
{
	if (level < STRATA_LOG_DEBUG || level > STRATA_LOG_ERROR) {
		return "?";
	}
	return level_names[level];
}

int log_open(const char *path, char *errmsg)
{
	if (path == NULL || strcmp(path, "-") == 0) {
		log_close();
		return 0;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "open log file %s: %s (check the directory exists "
		         "and is writable)",
		         path, strerror(errno));
		return STRATA_EIO;
	}
	pthread_mutex_lock(&fd_lock);
	int old = log_fd;
	log_fd = fd;
	pthread_mutex_unlock(&fd_lock);
	if (old != STDERR_FILENO) {
		close(old);
	}
	return 0;
}

void log_close(void)
{
	pthread_mutex_lock(&fd_lock);
	int old = log_fd;
	log_fd = STDERR_FILENO;
	pthread_mutex_unlock(&fd_lock);
	if (old != STDERR_FILENO) {
		close(old);
	}
}

void log_vwrite(int level, const char *component, const char *fmt, va_list ap)
{
	if (!log_enabled(level)) {
		return;
	}
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line),
	                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	                 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
	                 log_level_name(level),
	                 component != NULL ? component : "-");
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2) {
		len = sizeof(line) - 2; /* truncated: keep the newline */
	}
	line[len++] = '\n';
	pthread_mutex_lock(&fd_lock);
	ssize_t w = write(log_fd, line, len);
	pthread_mutex_unlock(&fd_lock);
	(void)w; /* nowhere left to report a failed log write */
}

void log_write(int level, const char *component, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, component, fmt, ap);
	va_end(ap);
}
