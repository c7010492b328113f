/* Latency histogram for the benchmarks: HDR-like log buckets, fixed size. */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

/*
 * Values (nanoseconds) are bucketed by power of two, each power split into
 * HIST_SUB linear sub-buckets: the relative error of a reported percentile
 * is at most 1/HIST_SUB (1.6%). Values below HIST_SUB are exact; values at
 * or above 2^HIST_EXP_MAX (~18 minutes) land in the last bucket. No
 * allocation: a histogram is a plain struct, zeroed by hist_init.
 */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_EXP_MAX 40
#define HIST_BUCKETS ((HIST_EXP_MAX - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count;                /* values recorded */
	uint64_t min;                  /* smallest value (UINT64_MAX if none) */
	uint64_t max;                  /* largest value (0 if none) */
	long double sum;               /* sum of values, for the mean */
	uint64_t bucket[HIST_BUCKETS]; /* counts per log-linear bucket */
};

/* Empty the histogram. */
void hist_init(struct hist *h);

/* Record one value (ns). Not thread-safe: one writer per histogram. */
void hist_record(struct hist *h, uint64_t value);

/* Add every value of src to dst (src unchanged). */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * Value at percentile p (0..100): the upper bound of the bucket holding the
 * ceil(p% * count)-th smallest value, clamped to [min, max]; 0 when empty.
 */
uint64_t hist_percentile(const struct hist *h, double p);

/* Mean of the recorded values; 0 when empty. */
double hist_mean(const struct hist *h);

/* Bucket index of a value, and the largest value of a bucket (for tests). */
unsigned hist_bucket_of(uint64_t value);
uint64_t hist_bucket_high(unsigned index);

#endif /* BENCH_HIST_H */
