/* Logging: levels, UTC timestamps, component name; to stderr or a file.
 * One line per call, written with a single write(2): thread-safe and never
 * interleaved. */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "strata/plugin.h" /* enum strata_log_level */

/* Lowest level written (default STRATA_LOG_INFO). */
void log_set_level(int level);
int log_get_level(void);

/* True when a message at level would be written. */
bool log_enabled(int level);

/* Parse "debug", "info", "warn" or "error" into *level; STRATA_EINVAL
 * otherwise. */
int log_level_parse(const char *s, int *level);

/* "debug", "info", "warn", "error", NULL: the values log_level_parse takes,
 * indexed by level; the allowed values of a log.level config key. */
extern const char *const log_levels[];

/*
 * Schema entries (struct config_key initializers, common/config.h) of the
 * log keys that the server binaries declare alike, for their static const
 * schema tables: log.level, and log.file where "-" is stderr.
 */
#define LOG_KEY_LEVEL                                                      \
	{                                                                  \
		.name = "log.level", .type = CONFIG_ENUM, .def = "info",   \
		.allowed = log_levels, .help = "Lowest log level written." \
	}
#define LOG_KEY_FILE                                                   \
	{                                                              \
		.name = "log.file", .type = CONFIG_STRING, .def = "-", \
		.help = "Log file (appended); \"-\" is stderr."        \
	}

/* Name of a level ("INFO"); "?" for an unknown one. */
const char *log_level_name(int level);

/*
 * Send lines to path (appended, created 0644) instead of stderr; NULL or
 * "-" means stderr. On error returns STRATA_EIO with errmsg naming the path
 * and the cause, and keeps the current destination.
 */
int log_open(const char *path, char *errmsg);

/* Close a file destination and go back to stderr. */
void log_close(void);

/* Write one line: "2026-11-26T12:00:00.123Z INFO  [component] message".
 * component is a short module name ("raft", "tier2.local"). */
void log_write(int level, const char *component, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void log_vwrite(int level, const char *component, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

#define LOG_DEBUG(comp, ...)                                            \
	do {                                                            \
		if (log_enabled(STRATA_LOG_DEBUG))                      \
			log_write(STRATA_LOG_DEBUG, comp, __VA_ARGS__); \
	} while (0)
#define LOG_INFO(comp, ...) log_write(STRATA_LOG_INFO, comp, __VA_ARGS__)
#define LOG_WARN(comp, ...) log_write(STRATA_LOG_WARN, comp, __VA_ARGS__)
#define LOG_ERROR(comp, ...) log_write(STRATA_LOG_ERROR, comp, __VA_ARGS__)

#endif /* COMMON_LOG_H */
