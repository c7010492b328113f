/* libFuzzer harness: RPC envelope decoders on untrusted bytes. The input
 * goes through the server's request decode (rpc_request_decode, exactly
 * what rpc_server_dispatch runs) and the client's reply decode; what
 * decodes must re-encode to an equal envelope. Both decoders read plain
 * envelopes in place (body borrowed from the input) and leave the rest to
 * protobuf-c: both must agree with protobuf-c on every input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/rpc.h"
#include "strata/error.h"
#include "strata/v1/rpc.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_errmsg(int rc, const char *err)
{
	if (rc != STRATA_EPROTO && rc != STRATA_ENOMEM) {
		abort();
	}
	if (strnlen(err, STRATA_ERRMSG_SIZE) >= STRATA_ERRMSG_SIZE) {
		abort();
	}
}

/* The request decode (rc, req) against protobuf-c's own unpack. */
static void request_same_as_protobuf_c(const uint8_t *data, size_t size, int rc,
                                       const struct rpc_request *req)
{
	Strata__V1__RpcRequest *m = (Strata__V1__RpcRequest *)rpc_pb_unpack(
	        &strata__v1__rpc_request__descriptor, data, size);
	if (m == NULL) {
		if (rc == 0) {
			abort(); /* accepted what protobuf-c rejects */
		}
		return;
	}
	if (m->method == 0) {
		if (rc != STRATA_EPROTO) {
			abort();
		}
	} else if (rc != 0) {
		if (rc != STRATA_ENOMEM) {
			abort(); /* rejected what protobuf-c accepts */
		}
	} else if (req->method != m->method || req->len != m->body.len ||
	           (req->len != 0 &&
	            memcmp(req->body, m->body.data, req->len) != 0)) {
		abort();
	}
	rpc_pb_free(&m->base);
}

static void fuzz_request(const uint8_t *data, size_t size)
{
	struct rpc_request req;
	char err[STRATA_ERRMSG_SIZE];
	int rc = rpc_request_decode(data, size, &req, err);
	request_same_as_protobuf_c(data, size, rc, &req);
	if (rc != 0) {
		check_errmsg(rc, err);
		return;
	}
	if (req.method == 0 || (req.len != 0) != (req.body != NULL)) {
		abort();
	}
	uint8_t *buf;
	size_t n;
	if (rpc_request_encode(req.method, req.body, req.len, &buf, &n) == 0) {
		struct rpc_request again;
		if (rpc_request_decode(buf, n, &again, err) != 0 ||
		    again.method != req.method || again.len != req.len ||
		    (req.len != 0 && memcmp(again.body, req.body, req.len))) {
			abort();
		}
		rpc_request_release(&again);
		strata_free(buf);
	}
	rpc_request_release(&req);
}

/* rep (rc from rpc_reply_decode) against protobuf-c's own unpack. */
static void same_as_protobuf_c(const uint8_t *data, size_t size, int rc,
                               const struct rpc_reply_info *rep)
{
	Strata__V1__RpcReply *m = (Strata__V1__RpcReply *)rpc_pb_unpack(
	        &strata__v1__rpc_reply__descriptor, data, size);
	if (m == NULL) {
		if (rc == 0) {
			abort(); /* accepted what protobuf-c rejects */
		}
		return;
	}
	const Strata__V1__Status *st = m->status;
	int code = st != NULL ? (int)st->code : 0;
	if (code < 0) {
		if (rc != STRATA_EPROTO) {
			abort();
		}
	} else if (rc != 0) {
		if (rc != STRATA_ENOMEM) {
			abort(); /* rejected what protobuf-c accepts */
		}
	} else {
		const char *msg = st != NULL && st->message ? st->message : "";
		const char *red =
		        st != NULL && st->redirect ? st->redirect : "";
		if (rep->code != code || strcmp(rep->message, msg) != 0 ||
		    strcmp(rep->redirect, red) != 0 ||
		    rep->len != m->body.len ||
		    (rep->len != 0 &&
		     memcmp(rep->body, m->body.data, rep->len) != 0)) {
			abort();
		}
	}
	rpc_pb_free(&m->base);
}

static void fuzz_reply(const uint8_t *data, size_t size)
{
	struct rpc_reply_info rep;
	char err[STRATA_ERRMSG_SIZE];
	int rc = rpc_reply_decode(data, size, &rep, err);
	same_as_protobuf_c(data, size, rc, &rep);
	if (rc != 0) {
		check_errmsg(rc, err);
		return;
	}
	if (rep.code < 0 || (rep.len != 0) != (rep.body != NULL)) {
		abort();
	}
	uint8_t *buf;
	size_t n;
	if (rpc_reply_encode(rep.code, rep.message, rep.redirect, rep.body,
	                     rep.len, &buf, &n) == 0) {
		struct rpc_reply_info again;
		if (rpc_reply_decode(buf, n, &again, err) != 0 ||
		    again.code != rep.code || again.len != rep.len ||
		    strcmp(again.message, rep.message) != 0 ||
		    strcmp(again.redirect, rep.redirect) != 0 ||
		    (rep.len != 0 && memcmp(again.body, rep.body, rep.len))) {
			abort();
		}
		rpc_reply_release(&again);
		strata_free(buf);
	}
	rpc_reply_release(&rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_request(data, size);
	fuzz_reply(data, size);
	return 0;
}
