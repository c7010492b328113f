/* libFuzzer harness: the parser of what the peer of one of Strata's own
 * SP connections sends (common/sp.c: SP header, then length + request id +
 * envelope frames; client/wire.c and the rpc server's SP side use it). The
 * input's first byte picks the chunk size the bytes
 * arrive in (as a socket would split them), the second how many go
 * straight into an envelope (sp_rx_room/sp_rx_filled, as large
 * replies are received); every frame must be whole, within the limit and
 * carry an id with its high bit set, and every byte must be accounted for
 * until the parser says the stream is bad. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "common/sp.h"
#include "strata/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENVELOPE 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2) {
		return 0;
	}
	size_t chunk = (size_t)data[0] % 32 + 1;
	size_t direct = data[1] >> 1;
	unsigned peer = (data[1] & 1) != 0 ? SP_PROTO_REQ0 : SP_PROTO_REP0;
	data += 2;
	size -= 2;
	struct sp_rx rx;
	sp_rx_init(&rx, MAX_ENVELOPE, peer);
	size_t off = 0;
	while (off < size) {
		uint32_t id;
		void *msg = NULL;
		uint8_t *dst;
		size_t room = sp_rx_room(&rx, &dst);
		if (room > 0 && direct > 0) {
			size_t k = room < direct ? room : direct;
			if (k > size - off) {
				k = size - off;
			}
			memcpy(dst, data + off, k);
			off += k;
			if (sp_rx_filled(&rx, k, &id, &msg) &&
			    nng_msg_len(msg) > MAX_ENVELOPE) {
				abort();
			}
			nng_msg_free(msg);
			continue;
		}
		size_t n = size - off < chunk ? size - off : chunk;
		char err[STRATA_ERRMSG_SIZE];
		ssize_t k = sp_rx_feed(&rx, data + off, n, &id, &msg, err);
		if (k < 0) {
			if (msg != NULL || err[0] == '\0') {
				abort();
			}
			break;
		}
		if (k == 0 || (size_t)k > n ||
		    (msg == NULL && (size_t)k != n)) {
			abort(); /* progress, and all used unless a frame ended
			          */
		}
		if (msg != NULL) {
			if (nng_msg_len(msg) > MAX_ENVELOPE ||
			    (id & 0x80000000u) != 0) {
				abort();
			}
			nng_msg_free(msg);
		}
		off += (size_t)k;
	}
	sp_rx_reset(&rx);
	return 0;
}
