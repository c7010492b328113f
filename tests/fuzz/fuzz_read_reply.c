/* libFuzzer harness: the client's ReadReply decoder (read_reply_take),
 * which reads a store's plain replies in place (data left inside the
 * received message) and hands anything else to protobuf-c. On every
 * input it must agree with protobuf-c's own unpack, whether the body
 * lies in a received NNG message or in a strata_malloc'd buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "client/client_int.h"
#include "common/alloc.h"
#include "common/rpc.h"
#include "strata/error.h"
#include "strata/v1/segmentstore.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const Strata__V1__ReadReply *m, int rc,
                  const struct strata_read_result *r)
{
	if (r->offset != 42) {
		abort();
	}
	if (m == NULL) {
		if (rc == 0 || r->len != 0 || r->data != NULL) {
			abort();
		}
		return;
	}
	if (rc != 0) {
		if (rc != STRATA_ENOMEM) {
			abort();
		}
		return;
	}
	if (r->end_of_segment != m->end_of_segment ||
	    r->at_tail != m->at_tail || r->start_offset != m->start_offset ||
	    r->length != m->length || r->len != m->data.len ||
	    (r->len != 0) != (r->data != NULL) ||
	    (r->len != 0 && memcmp(r->data, m->data.data, r->len) != 0)) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Strata__V1__ReadReply *m = (Strata__V1__ReadReply *)rpc_pb_unpack(
	        &strata__v1__read_reply__descriptor, data, size);

	/* As the RPC layer hands it on: inside the received message. */
	nng_msg *msg = NULL;
	if (nng_msg_alloc(&msg, 0) == 0 &&
	    nng_msg_append(msg, "\x0a", 1) == 0 &&
	    nng_msg_append(msg, data, size) == 0) {
		struct rpc_body b = {.data = (uint8_t *)nng_msg_body(msg) + 1,
		                     .len = size,
		                     .msg = msg};
		struct strata_read_result r;
		int rc = read_reply_take(&b, 42, &r);
		if (b.data != NULL || b.msg != NULL) {
			abort(); /* taken, also on error */
		}
		check(m, rc, &r);
		strata_read_result_release(&r);
	} else if (msg != NULL) {
		nng_msg_free(msg);
	}

	/* A strata_malloc'd body (an envelope protobuf-c unpacked). */
	uint8_t *copy = size > 0 ? strata_malloc(size) : NULL;
	if (size == 0 || copy != NULL) {
		if (size > 0) {
			memcpy(copy, data, size);
		}
		struct rpc_body b = {.data = copy, .len = size, .msg = NULL};
		struct strata_read_result r;
		int rc = read_reply_take(&b, 42, &r);
		check(m, rc, &r);
		strata_read_result_release(&r);
	}
	rpc_pb_free(m ? &m->base : NULL);
	return 0;
}
