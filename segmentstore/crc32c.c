/* CRC32C (Castagnoli, reflected 0x82F63B78), slicing-by-8 in portable C. */
#include "segmentstore/crc32c.h"

#include <pthread.h>

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

uint32_t crc32c_extend(uint32_t crc, const void *p, size_t n)
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
