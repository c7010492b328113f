/* CRC32C (Castagnoli, reflected 0x82F63B78): the CPU's crc32 instruction
 * on x86-64 with SSE4.2 (chosen at run time), slicing-by-8 in portable C
 * otherwise. */
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
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const void *p, size_t n)
{
	const uint8_t *s = p;
	uint64_t c = ~crc;
	while (n >= 8) {
		uint64_t v;
		memcpy(&v, s, 8);
		c = _mm_crc32_u64(c, v);
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
