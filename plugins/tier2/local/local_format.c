/* Record header encoding and a table-driven CRC32C for the local plugin. */
#include "plugins/tier2/local/local_format.h"

#include <pthread.h>

/* Slicing-by-8 tables for the reflected Castagnoli polynomial. */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++) {
			c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		}
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++) {
		for (int t = 1; t < 8; t++) {
			uint32_t prev = crc_table[t - 1][i];
			crc_table[t][i] =
			        (prev >> 8) ^ crc_table[0][prev & 0xff];
		}
	}
}

uint32_t local_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	pthread_once(&crc_once, crc_init);
	crc = ~crc;
	while (len >= 8) {
		uint32_t lo =
		        crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
		               (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		      crc_table[3][p[4]] ^ crc_table[2][p[5]] ^
		      crc_table[1][p[6]] ^ crc_table[0][p[7]];
		p += 8;
		len -= 8;
	}
	while (len-- > 0) {
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	}
	return ~crc;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void local_record_encode(const struct local_record *r, uint8_t *out)
{
	put32(out, LOCAL_RECORD_MAGIC);
	put32(out + 4, r->length);
	put64(out + 8, r->offset);
	put64(out + 16, r->write_start);
	put32(out + 24, r->flags);
	put32(out + 28, r->payload_crc);
	put32(out + 32, local_crc32c(0, out, 32));
}

bool local_record_decode(const uint8_t *in, struct local_record *r)
{
	if (get32(in) != LOCAL_RECORD_MAGIC) {
		return false;
	}
	r->length = get32(in + 4);
	r->offset = get64(in + 8);
	r->write_start = get64(in + 16);
	r->flags = get32(in + 24);
	r->payload_crc = get32(in + 28);
	return get32(in + 32) == local_crc32c(0, in, 32) && r->flags == 0 &&
	       r->length >= 1 && r->length <= LOCAL_RECORD_MAX;
}
