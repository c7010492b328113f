/* libstrata's connections to the segment stores: NNG's SP protocol
 * (req0 over TCP, the stores' rep0 sockets are unchanged) spoken by the
 * client's I/O thread itself. See docs/architecture.md, "Client wire". */
#ifndef CLIENT_WIRE_H
#define CLIENT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "client/loop.h"
#include "common/rpc.h"

/* SP protocol numbers (NNG: major << 4 | minor). */
#define WIRE_PROTO_REQ0 0x30u
#define WIRE_PROTO_REP0 0x31u

struct wire_opts {
	int timeout_ms;         /* a call's deadline, from its start */
	int poll_timeout_ms;    /* the same for long-polling reads */
	int connect_timeout_ms; /* TCP connect + SP handshake */
	int max_redirects;      /* EWRONGHOST/ENOTLEADER hops followed */
	size_t max_msg_bytes;   /* largest request or reply envelope */
};

struct wire;

/* Connections over loop l, none open yet. 0 or STRATA_ENOMEM. */
int wire_new(struct loop *l, const struct wire_opts *o, struct wire **out);

/* True for the URLs wire_call takes: tcp://IPV4:PORT or tcp://[IPV6]:PORT
 * (numeric: resolving a name would block the I/O thread; other URLs stay
 * with common/rpc). */
bool wire_url_ok(const char *url);

/*
 * Send method with req[0..len) (copied) to the store at url (wire_url_ok)
 * on its connection, from any thread. As
 * common/rpc with no retries: 0, then cb exactly once on the loop thread
 * (never in here) with the reply or STRATA_EUNAVAIL (no connection, or it
 * was lost), STRATA_ETIMEDOUT, STRATA_ECLOSED; redirects are followed.
 * Errors without cb: STRATA_ETOOBIG, STRATA_ENOMEM, STRATA_ECLOSED.
 */
int wire_call(struct wire *w, const char *url, uint32_t method,
              const uint8_t *req, size_t len, rpc_done_fn cb, void *arg,
              char *errmsg);

/* End every call with STRATA_ECLOSED (their callbacks have returned when
 * this does) and close the connections; later calls fail. Needs the loop
 * running; not from a callback. */
void wire_close(struct wire *w);

/* Free after wire_close (the loop may be gone). NULL ok. */
void wire_free(struct wire *w);

/* ------------------------------------------- receive side (untrusted) -- */

/* Parser of what a rep0 peer sends: its 8-byte SP header, then frames of
 * an 8-byte big-endian length, a 4-byte request id (high bit set) and
 * the reply envelope. Pure: fuzzed by tests/fuzz/fuzz_wire_rx.c. */
struct wire_rx {
	size_t max;      /* largest envelope accepted */
	int state;       /* WIRE_RX_* in wire.c */
	uint8_t hdr[12]; /* SP header, then length + id */
	size_t have;     /* bytes of hdr, or of the body, received */
	uint32_t id;     /* the frame's request id, high bit cleared */
	void *msg;       /* nng_msg * being filled (the envelope) */
	size_t len;      /* its length */
};

void wire_rx_init(struct wire_rx *rx, size_t max);
void wire_rx_reset(struct wire_rx *rx); /* frees a partial message */

/*
 * Take bytes p[0..n). Returns how many it used; when a frame completed,
 * *msg (an nng_msg *, transferred) and *id are set and it stops there
 * (call again with the rest). -1 with errmsg on a protocol violation (not
 * a rep0 peer, a frame over max, an id without its high bit) or
 * STRATA_ENOMEM (*msg NULL, errmsg says which).
 */
ssize_t wire_rx_feed(struct wire_rx *rx, const uint8_t *p, size_t n,
                     uint32_t *id, void **msg, char *errmsg);

/* While a frame's envelope is being filled: where its next bytes go and
 * how many are missing (0: not in an envelope), to receive straight into
 * it; then wire_rx_filled(n) as wire_rx_feed would. */
size_t wire_rx_room(const struct wire_rx *rx, uint8_t **dst);
bool wire_rx_filled(struct wire_rx *rx, size_t n, uint32_t *id, void **msg);

#endif /* CLIENT_WIRE_H */
