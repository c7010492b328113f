/* libstrata's connections to the segment stores: NNG's SP protocol (req0
 * over TCP; any rep0 peer, NNG's or common/rpc_sp.c, answers) spoken by
 * the client's I/O thread itself. See docs/architecture.md, "Own SP
 * transport". */
#ifndef CLIENT_WIRE_H
#define CLIENT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "client/loop.h"
#include "common/rpc.h"

/* Look host (a DNS name) up: up to n addresses for port into addrs/lens,
 * their number, or 0 with errmsg saying why. Called on a thread of its
 * own; may block. */
typedef size_t (*wire_resolve_fn)(const char *host, unsigned port,
                                  struct sockaddr_storage *addrs,
                                  socklen_t *lens, size_t n, char *errmsg);

struct wire_opts {
	int timeout_ms;          /* a call's deadline, from its start */
	int poll_timeout_ms;     /* the same for long-polling reads */
	int connect_timeout_ms;  /* TCP connect + SP handshake */
	int max_redirects;       /* EWRONGHOST/ENOTLEADER hops followed */
	size_t max_msg_bytes;    /* largest request or reply envelope */
	wire_resolve_fn resolve; /* NULL: getaddrinfo (tests: a fake) */
};

struct wire;

/* Connections over loop l, none open yet. 0 or STRATA_ENOMEM. */
int wire_new(struct loop *l, const struct wire_opts *o, struct wire **out);

/* True for the URLs wire_call takes: tcp://IPV4:PORT, tcp://[IPV6]:PORT or
 * tcp://NAME:PORT (a DNS name, looked up at every connect on a thread of
 * its own; other URLs stay with common/rpc). */
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

#endif /* CLIENT_WIRE_H */
