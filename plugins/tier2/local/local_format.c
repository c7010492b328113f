/* Record header encoding and the CRC32C of the local plugin's records
 * (common/crc32c.c, compiled into the plugin). */
#include "plugins/tier2/local/local_format.h"

#include "common/crc32c.h"
#include "common/le.h"

uint32_t local_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_extend(crc, buf, len);
}

void local_record_encode(const struct local_record *r, uint8_t *out)
{
	le32_put(out, LOCAL_RECORD_MAGIC);
	le32_put(out + 4, r->length);
	le64_put(out + 8, r->offset);
	le64_put(out + 16, r->write_start);
	le32_put(out + 24, r->flags);
	le32_put(out + 28, r->payload_crc);
	le32_put(out + 32, local_crc32c(0, out, 32));
}

bool local_record_decode(const uint8_t *in, struct local_record *r)
{
	if (le32_get(in) != LOCAL_RECORD_MAGIC) {
		return false;
	}
	r->length = le32_get(in + 4);
	r->offset = le64_get(in + 8);
	r->write_start = le64_get(in + 16);
	r->flags = le32_get(in + 24);
	r->payload_crc = le32_get(in + 28);
	return le32_get(in + 32) == local_crc32c(0, in, 32) && r->flags == 0 &&
	       r->length >= 1 && r->length <= LOCAL_RECORD_MAX;
}
