/* Auto-scaling policy (pure: no network, no FSM): per-segment rate
 * averages from counter samples, and the split or merge a stream's rate
 * policy asks for. The leader's driver feeds it segment counters and
 * proposes the scales it returns (docs/controller.md, "Auto-scaling"). */
#ifndef CONTROLLER_AUTOSCALE_H
#define CONTROLLER_AUTOSCALE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct autoscale_config {
	uint64_t unit_ms;     /* the averages span 2, 5, 10, 20 units (60000) */
	uint64_t cooldown_ms; /* no scale of a stream this soon after one of
	                         its scales (600000) */
};

/* A current segment of a stream, as the driver read it. */
struct autoscale_segment {
	uint64_t id;
	double low, high; /* key range */
	uint64_t count;   /* events or bytes appended (the policy's unit) */
};

/* A scale to propose: seal seal[0..n_seal) (adjacent, sorted by low) and
 * replace them by the ranges [bounds[i], bounds[i+1]). */
struct autoscale_scale {
	uint64_t seal[2];
	size_t n_seal;
	double bounds[65];
	size_t n_bounds;
	double rate; /* the average that decided it, per second */
};

struct autoscale;

/* NULL on OOM. */
struct autoscale *autoscale_new(const struct autoscale_config *cfg);
void autoscale_free(struct autoscale *a);

/*
 * One pass over a stream: record the counters of its current segments
 * segs[0..n) (sorted by low) at now_ms, then decide. target: per-segment
 * rate per second (events, or bytes for a data-rate policy: pass KiB/s x
 * 1024); factor: most segments one split makes (>= 1, 2 at least is
 * used); min_segments: never merge below. Returns true with *out filled
 * when the stream should scale now, false otherwise (also within the
 * cooldown after autoscale_scaled). The stream key is scope/stream; state of
 * segments no longer current is dropped here. OOM only loses history (no
 * decision).
 */
bool autoscale_pass(struct autoscale *a, const char *scope, const char *stream,
                    const struct autoscale_segment *segs, size_t n,
                    double target, uint32_t factor, uint32_t min_segments,
                    uint64_t now_ms, struct autoscale_scale *out);

/* The scale autoscale_pass asked for was made at now_ms: the stream's
 * cooldown starts. (A scale that could not be made, say because another
 * workflow runs, is asked for again at the next pass.) */
void autoscale_scaled(struct autoscale *a, const char *scope,
                      const char *stream, uint64_t now_ms);

/* The stream last scaled at at_ms (same clock as now_ms), as the
 * replicated state says: a leader that did not make that scale keeps
 * its cooldown. Never moves the last scale back. */
void autoscale_scaled_at_least(struct autoscale *a, const char *scope,
                               const char *stream, uint64_t at_ms);

/* Forget streams not passed since before now_ms - keep_ms (deleted,
 * scaled to fixed, or another replica leads). A stream passed after
 * now_ms is kept. */
void autoscale_prune(struct autoscale *a, uint64_t now_ms, uint64_t keep_ms);

#endif /* CONTROLLER_AUTOSCALE_H */
