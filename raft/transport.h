/* Raft transport over libuv TCP: one listening port per process carries
 * every Raft group of that process; TCP_NODELAY on every connection. */
#ifndef RAFT_TRANSPORT_H
#define RAFT_TRANSPORT_H

#include <stdbool.h>
#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>

/*
 * Wire format (all integers little-endian). A connection carries one
 * direction of one Raft group between two nodes, as with libraft's own TCP
 * transport. The connecting side sends a handshake:
 *
 *   [4] magic "STRH"   [2] version (1)   [2] address length L (1..255)
 *   [8] group id       [8] sender node id [8] receiver node id
 *   [8] reserved (0)   [L] sender address ("IPv4:port", no NUL)
 *
 * and the accepting side answers with 8 bytes:
 *
 *   [4] magic "STRA"   [2] status (enum raft_transport_status)  [2] 0
 *
 * After status OK the stream belongs to libraft (its own message framing);
 * any other status closes the connection and both sides log why.
 */
#define RAFT_TRANSPORT_VERSION 1
#define RAFT_TRANSPORT_HS_FIXED 40  /* handshake bytes before the address */
#define RAFT_TRANSPORT_ADDR_MAX 255 /* longest address in a handshake */
#define RAFT_TRANSPORT_REPLY_SIZE 8 /* reply bytes */

/* Handshake reply status. */
enum raft_transport_status {
	RAFT_TRANSPORT_OK = 0,
	RAFT_TRANSPORT_BAD_MAGIC = 1,     /* not a Strata Raft peer */
	RAFT_TRANSPORT_BAD_VERSION = 2,   /* protocol version not supported */
	RAFT_TRANSPORT_UNKNOWN_GROUP = 3, /* no such group on this process */
	RAFT_TRANSPORT_WRONG_NODE = 4,    /* group here has another node id */
	RAFT_TRANSPORT_NOT_READY = 5,     /* group not listening or closing */
	RAFT_TRANSPORT_BAD_ADDRESS = 6,   /* address length 0 or too long */
	RAFT_TRANSPORT_BUSY = 7,          /* too many handshakes in progress */
};

/* Short text for a status ("unknown group"); never NULL. */
const char *raft_transport_status_str(int status);

/* Tunables of a mux; zero fields take the defaults noted. */
struct raft_mux_config {
	const char *bind_address; /* "IPv4:port"; port 0 picks one */
	bool tcp_nodelay_off;     /* true disables TCP_NODELAY (bench) */
	unsigned handshake_ms;    /* handshake deadline (default 5000) */
	unsigned max_handshakes;  /* concurrent incoming (default 1024) */
	unsigned backoff_min_ms;  /* first reconnect delay (default 25) */
	unsigned backoff_max_ms;  /* longest reconnect delay (default 1000) */
};

/* Counters of a mux (read on the loop thread). */
struct raft_mux_stats {
	uint64_t accepted;           /* incoming connections handed to raft */
	uint64_t rejected;           /* incoming handshakes refused */
	uint64_t connected;          /* outgoing connections handed to raft */
	uint64_t connect_failed;     /* outgoing attempts that failed */
	uint64_t handshake_timeouts; /* either side, deadline passed */
	uint64_t nodelay_set;        /* sockets on which TCP_NODELAY was set */
};

/* The per-process listener and registry of groups. Loop thread only. */
struct raft_mux;

/*
 * Bind and listen on cfg->bind_address on loop (borrowed until the mux is
 * closed). *out is owned by the caller and released by raft_mux_close.
 * Errors: STRATA_EINVAL (malformed address), STRATA_EIO (bind or listen
 * failed, e.g. port in use), STRATA_ENOMEM; errmsg says which.
 */
int raft_mux_new(uv_loop_t *loop, const struct raft_mux_config *cfg,
                 struct raft_mux **out, char *errmsg);

/* Port actually bound (useful with port 0). */
uint16_t raft_mux_port(const struct raft_mux *m);

/* Copy the counters into *out. */
void raft_mux_stats(const struct raft_mux *m, struct raft_mux_stats *out);

/* Called once the mux is fully closed and freed. */
typedef void (*raft_mux_close_cb)(void *arg);

/*
 * Stop listening, drop handshakes in progress and free the mux; cb(arg)
 * fires on the loop thread after the last handle closed, never from inside
 * this call. Every transport created on the mux must be closed first.
 */
void raft_mux_close(struct raft_mux *m, raft_mux_close_cb cb, void *arg);

/*
 * Fill t as a raft_uv_transport for group_id on mux m; pass t to
 * raft_uv_init. libraft then calls init/listen/connect/close; the group
 * registers on the mux at listen and leaves it at close. Release with
 * raft_transport_close after libraft's io is closed (in raft_close's
 * callback). Errors: STRATA_ENOMEM.
 */
int raft_transport_init(struct raft_uv_transport *t, struct raft_mux *m,
                        uint64_t group_id);

/* Free what raft_transport_init allocated. t's close (if libraft started
 * it) must have completed. */
void raft_transport_close(struct raft_uv_transport *t);

#endif /* RAFT_TRANSPORT_H */
