/* Record header encoding and the CRC32C of the local plugin's records
 * (common/crc32c.c, compiled into the plugin). */
#include "plugins/tier2/local/local_format.h"

#include "common/crc32c.h"

uint32_t local_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_extend(crc, buf, len);
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
