/* The monotonic clock in the units Strata's timeouts and metrics use,
 * and the wall clock where times are shared between processes. */
#ifndef COMMON_CLOCK_H
#define COMMON_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* How often a warning that keeps being true is repeated in the log. */
#define CLOCK_WARN_EVERY_MS 60000

/* CLOCK_MONOTONIC in nanoseconds. Any thread. */
static inline uint64_t clock_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC in milliseconds. Any thread. */
static inline uint64_t clock_mono_ms(void)
{
	return clock_mono_ns() / 1000000u;
}

/* CLOCK_REALTIME (wall clock: may jump) in milliseconds since the epoch.
 * Any thread. For times shared between processes, never for timeouts. */
static inline uint64_t clock_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Sleep ms milliseconds (a signal may end it early). Any thread. */
static inline void clock_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
	                      .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Rate limit: true, and *last_ms = now_ms, when nothing was let through
 * yet (*last_ms == 0) or the last time is every_ms old. The caller
 * serialises the calls on one *last_ms. */
static inline bool clock_due(uint64_t *last_ms, uint64_t now_ms,
                             uint64_t every_ms)
{
	if (*last_ms != 0 && now_ms - *last_ms < every_ms) {
		return false;
	}
	*last_ms = now_ms;
	return true;
}

#endif /* COMMON_CLOCK_H */
