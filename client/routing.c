/* Routing keys: the stable key -> [0,1) hash and the range lookup. */
#include "client/client_int.h"
#include "common/segname.h"

uint64_t routing_fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

double strata_routing_key_position(const void *key, size_t len)
{
	uint64_t h = routing_fmix64(segname_fnv1a(key, len));
	return (double)(h >> 11) * 0x1.0p-53;
}

size_t routing_find(const double *lows, size_t n, double pos)
{
	size_t lo = 0;
	size_t hi = n;
	/* Invariant: lows[lo] <= pos (lows[0] == 0), answer in [lo, hi). */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (lows[mid] <= pos) {
			lo = mid;
		} else {
			hi = mid;
		}
	}
	return lo;
}

size_t strata_segment_name(char *buf, size_t size, const char *scope,
                           const char *stream, uint64_t id)
{
	int n = segname_format(buf, size, scope, stream, id);
	return n < 0 ? 0 : (size_t)n;
}
