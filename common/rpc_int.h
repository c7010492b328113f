/* Internals of the RPC server shared by its two transports: NNG rep0
 * sockets (common/rpc.c; inproc:// and host names) and Strata's own SP
 * listener for numeric tcp:// URLs (common/rpc_sp.c). Not a public API. */
#ifndef COMMON_RPC_INT_H
#define COMMON_RPC_INT_H

#include <pthread.h>
#include <stdbool.h>

#include <nng/nng.h>

#include "common/rpc.h"

struct sp_conn;
struct sp_server;

/* One request slot (n_contexts of them: bounded concurrency). */
struct rpc_call {
	struct rpc_server *srv;
	/* NNG transport: the context and its two aios. */
	nng_ctx ctx;
	nng_aio *recv_aio;
	nng_aio *send_aio;
	/* SP transport: the connection the request came on (holding a
	 * reference), its request id, and the free-slot list link. */
	struct sp_conn *conn;
	uint32_t id;
	struct rpc_call *next_free;
	struct rpc_request req; /* decoded request; live until the reply */
	bool busy;              /* taken from the socket, not yet finished */
	bool counted;           /* given to the handler: counts in n_busy */
	bool in_handler;        /* the receive callback has not returned */
	bool replied;           /* rpc_reply*() was called */
	bool sent;              /* the reply send finished (or was skipped) */
};

struct rpc_server {
	pthread_mutex_t mtx;
	pthread_cond_t cv;    /* n_busy dropped */
	nng_socket sock;      /* NNG transport */
	struct sp_server *sp; /* SP transport (then no socket) */
	rpc_handler_fn handler;
	void *arg;
	struct rpc_server_opts opts;
	char url[RPC_MAX_URL_LEN + 32]; /* the bound URL */
	bool stopping;                  /* new requests get ESHUTDOWN */
	bool closed;     /* socket closed: no NNG calls any more */
	bool stop_done;  /* stop finished; late replies free the server */
	unsigned n_busy; /* requests given to the handler, not finished */
	/* NNG transport: connections past the pipe handshake and not yet
	 * removed (rejected ones included until NNG removes them), and when
	 * the limit was last warned about (0 never); under mtx. */
	unsigned n_pipes;
	uint64_t pipes_warned_ms;
	char limit_key[64]; /* opts.max_connections_key, copied */
	unsigned late;      /* unanswered at close, still pointing here */
	unsigned n_calls;
	struct rpc_call calls[]; /* one per context */
};

/* A request taken from the transport into call (a free slot): decode it
 * and hand it to the handler (or answer it: malformed, stopping, ping).
 * Called without srv->mtx. Takes msg: the request's body is read in
 * place, so msg lives until the reply releases the request. */
void rpc_server_dispatch(struct rpc_call *call, nng_msg *msg);

/* The listen error message for NNG and SP alike (EADDRINUSE etc.). */
void rpc_listen_errmsg(char *errmsg, const char *url, const char *key, int code,
                       const char *why);

/* ---- the SP transport (common/rpc_sp.c) ---- */

/* Listen on url (sp_url_addr with port 0 allowed) and serve on a new I/O
 * thread; srv->url gets the bound port. 0, or an error with errmsg. */
int rpc_sp_start(struct rpc_server *srv, const char *url, const char *key,
                 char *errmsg);

/* srv->mtx held: call's connection, with a reference for rpc_sp_send
 * (NULL when it has none). */
struct sp_conn *rpc_sp_hold_locked(struct rpc_call *call);

/* Bytes written after a reply message: len bytes at data, inside ref
 * (one reference, released once written or dropped). */
struct sp_tail {
	struct refbuf *ref; /* NULL: no tail */
	const uint8_t *data;
	size_t len;
};

/* No lock held: send the reply msg (nng_msg *, taken) followed by tail's
 * bytes (taken; NULL = none) for request id on conn and drop the
 * reference (NULL conn: msg and tail are released). */
void rpc_sp_send(struct rpc_server *srv, struct sp_conn *conn, uint32_t id,
                 void *msg, const struct sp_tail *tail);

/* srv->mtx held, not closed: call is free for the next request. */
void rpc_sp_recycle_locked(struct rpc_call *call);

/* After srv->closed is set (no lock held): stop the I/O thread (no
 * handler runs afterwards) and close every connection. */
void rpc_sp_close(struct rpc_server *srv);

/* Free what rpc_sp_start allocated (NULL sp ok). */
void rpc_sp_free(struct rpc_server *srv);

#endif /* COMMON_RPC_INT_H */
