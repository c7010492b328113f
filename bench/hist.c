/* Latency histogram for the benchmarks: HDR-like log buckets, fixed size. */
#include "bench/hist.h"

#include <string.h>

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

/* Bucket layout: index < HIST_SUB holds the exact values 0..HIST_SUB-1.
 * Above, a value with its highest bit at position e (e >= HIST_SUB_BITS)
 * goes to group g = e - HIST_SUB_BITS + 1, sub-bucket = the HIST_SUB_BITS
 * bits below the highest one. */
unsigned hist_bucket_of(uint64_t value)
{
	if (value < HIST_SUB)
		return (unsigned)value;
	unsigned e = 63u - (unsigned)__builtin_clzll(value);
	if (e >= HIST_EXP_MAX)
		return HIST_BUCKETS - 1;
	unsigned g = e - HIST_SUB_BITS + 1;
	unsigned sub =
	        (unsigned)(value >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
	return g * HIST_SUB + sub;
}

uint64_t hist_bucket_high(unsigned index)
{
	if (index < HIST_SUB)
		return index;
	if (index >= HIST_BUCKETS - 1)
		return UINT64_MAX;
	unsigned g = index / HIST_SUB;
	unsigned sub = index % HIST_SUB;
	unsigned e = g + HIST_SUB_BITS - 1;
	unsigned shift = e - HIST_SUB_BITS;
	uint64_t low = ((uint64_t)(HIST_SUB + sub)) << shift;
	return low + ((uint64_t)1 << shift) - 1;
}

void hist_record(struct hist *h, uint64_t value)
{
	h->bucket[hist_bucket_of(value)]++;
	h->count++;
	h->sum += (long double)value;
	if (value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (src->count == 0)
		return;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
	if (h->count == 0)
		return 0;
	if (p < 0)
		p = 0;
	if (p > 100)
		p = 100;
	uint64_t rank = (uint64_t)((p / 100.0) * (double)h->count + 0.9999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			uint64_t v = hist_bucket_high(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

double hist_mean(const struct hist *h)
{
	if (h->count == 0)
		return 0;
	return (double)(h->sum / (long double)h->count);
}
