/* CRC32C (Castagnoli, reflected 0x82F63B78): the CPU's crc32 instruction
 * on x86-64 with SSE4.2 (chosen at run time; three chains in parallel on
 * long buffers), slicing-by-8 in portable C otherwise. */
#include "common/crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CRC32C_HW 1
#include <nmmintrin.h>
#endif

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_build(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++) {
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		}
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++) {
		for (int t = 1; t < 8; t++) {
			uint32_t prev = table[t - 1][i];
			table[t][i] = (prev >> 8) ^ table[0][prev & 0xFF];
		}
	}
}

uint32_t crc32c_extend_portable(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *s = p;
	pthread_once(&table_once, table_build);
	crc = ~crc;
	while (n >= 8) {
		uint32_t lo =
		        crc ^ ((uint32_t)s[0] | (uint32_t)s[1] << 8 |
		               (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24);
		uint32_t hi = (uint32_t)s[4] | (uint32_t)s[5] << 8 |
		              (uint32_t)s[6] << 16 | (uint32_t)s[7] << 24;
		crc = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^
		      table[5][(lo >> 16) & 0xFF] ^ table[4][lo >> 24] ^
		      table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^
		      table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
		s += 8;
		n -= 8;
	}
	while (n-- > 0) {
		crc = (crc >> 8) ^ table[0][(crc ^ *s++) & 0xFF];
	}
	return ~crc;
}

#ifdef CRC32C_HW
/*
 * The crc32 instruction has a latency of three cycles and a throughput of
 * one per cycle, so one dependent chain runs at a third of the speed the
 * CPU has. Long buffers are therefore cut into three lanes, each with its
 * own chain, and the lanes' CRCs are joined by shifting the first two
 * over the bytes that follow them: crc(A B) = shift(crc(A), |B|) ^ crc(B),
 * where the shift (multiplying by x^(8|B|) modulo the polynomial) is a
 * table lookup per byte of the CRC. This is Mark Adler's scheme
 * (crc32c.c, zlib licence, stackoverflow.com/a/17646775); the lanes are
 * LANE_LONG bytes while the buffer is long, then LANE_SHORT.
 */
#define LANE_LONG 8192
#define LANE_SHORT 256

static uint32_t shift_long[4][256];  /* x^(8 * LANE_LONG) mod P per byte */
static uint32_t shift_short[4][256]; /* x^(8 * LANE_SHORT) mod P per byte */
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

/* mat (32 columns of GF(2) bits) times vec. */
static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;
	for (; vec != 0; vec >>= 1, mat++) {
		if (vec & 1) {
			sum ^= *mat;
		}
	}
	return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat)
{
	for (int n = 0; n < 32; n++) {
		square[n] = gf2_times(mat, mat[n]);
	}
}

/* Tables that advance a CRC register over len zero bytes (len a power of
 * two, at least 2). */
static void shift_build(uint32_t tab[4][256], size_t len)
{
	uint32_t odd[32], even[32];
	odd[0] = 0x82F63B78u; /* one zero bit */
	for (int n = 1; n < 32; n++) {
		odd[n] = 1u << (n - 1);
	}
	gf2_square(even, odd); /* two zero bits */
	gf2_square(odd, even); /* four */
	/* Each square doubles: even holds 1 byte, odd 2 bytes, ... */
	const uint32_t *op = odd;
	for (;;) {
		gf2_square(even, odd);
		len >>= 1;
		if (len == 0) {
			op = even;
			break;
		}
		gf2_square(odd, even);
		len >>= 1;
		if (len == 0) {
			op = odd;
			break;
		}
	}
	for (uint32_t n = 0; n < 256; n++) {
		tab[0][n] = gf2_times(op, n);
		tab[1][n] = gf2_times(op, n << 8);
		tab[2][n] = gf2_times(op, n << 16);
		tab[3][n] = gf2_times(op, n << 24);
	}
}

static void shift_tables_build(void)
{
	shift_build(shift_long, LANE_LONG);
	shift_build(shift_short, LANE_SHORT);
}

static uint32_t shift(const uint32_t tab[4][256], uint32_t crc)
{
	return tab[0][crc & 0xFF] ^ tab[1][(crc >> 8) & 0xFF] ^
	       tab[2][(crc >> 16) & 0xFF] ^ tab[3][crc >> 24];
}

static uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* The register c0 advanced over the 3 * lane bytes at s: three chains of
 * lane bytes (a multiple of 8), joined with tab (shift by lane bytes). */
__attribute__((target("sse4.2"))) static uint64_t
crc_lanes(uint64_t c0, const uint8_t *s, size_t lane,
          const uint32_t tab[4][256])
{
	uint64_t c1 = 0, c2 = 0;
	const uint8_t *end = s + lane;
	do {
		c0 = _mm_crc32_u64(c0, load64(s));
		c1 = _mm_crc32_u64(c1, load64(s + lane));
		c2 = _mm_crc32_u64(c2, load64(s + 2 * lane));
		s += 8;
	} while (s < end);
	c0 = shift(tab, (uint32_t)c0) ^ c1;
	return shift(tab, (uint32_t)c0) ^ c2;
}

__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *s = p;
	uint64_t c = ~crc;
	if (n >= 3 * LANE_SHORT) {
		pthread_once(&shift_once, shift_tables_build);
		while (n >= 3 * LANE_LONG) {
			c = crc_lanes(c, s, LANE_LONG, shift_long);
			s += 3 * LANE_LONG;
			n -= 3 * LANE_LONG;
		}
		while (n >= 3 * LANE_SHORT) {
			c = crc_lanes(c, s, LANE_SHORT, shift_short);
			s += 3 * LANE_SHORT;
			n -= 3 * LANE_SHORT;
		}
	}
	while (n >= 8) {
		c = _mm_crc32_u64(c, load64(s));
		s += 8;
		n -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (n-- > 0) {
		c32 = _mm_crc32_u8(c32, *s++);
	}
	return ~c32;
}
#endif

static bool have_hw(void)
{
#ifdef CRC32C_HW
	return __builtin_cpu_supports("sse4.2");
#else
	return false;
#endif
}

uint32_t crc32c_extend(uint32_t crc, const void *p, size_t n)
{
#ifdef CRC32C_HW
	if (have_hw()) {
		return crc32c_hw(crc, p, n);
	}
#endif
	return crc32c_extend_portable(crc, p, n);
}

const char *crc32c_impl(void)
{
	return have_hw() ? "sse4.2" : "portable";
}
