/* Segment store RPC server: decodes the SS_* methods of
 * proto/strata/v1/segmentstore.proto, routes each to the container that
 * owns the segment, and answers from the container's completion. */
#ifndef SEGMENTSTORE_SERVER_H
#define SEGMENTSTORE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "segmentstore/container.h"

struct metrics_registry;
struct rpc_server;

/* Method ids (proto/strata/v1/segmentstore.proto, SegmentStoreMethod). */
#define SS_METHOD_CREATE_SEGMENT 201u
#define SS_METHOD_SETUP_APPEND 202u
#define SS_METHOD_APPEND 203u
#define SS_METHOD_READ 204u
#define SS_METHOD_GET_INFO 205u
#define SS_METHOD_SEAL 206u
#define SS_METHOD_TRUNCATE 207u
#define SS_METHOD_MERGE 208u
#define SS_METHOD_GET_ATTRIBUTE 209u
#define SS_METHOD_UPDATE_ATTRIBUTE 210u
#define SS_METHOD_DELETE 211u
#define SS_METHOD_CONTAINER_STATUS 212u

struct ProtobufCMessageDescriptor;

/* The request message of method (SS_METHOD_*); NULL for an unknown one.
 * The server decodes with it; the request fuzzer builds bodies with it. */
const struct ProtobufCMessageDescriptor *ss_request_descriptor(uint32_t method);

/*
 * How the server reaches the containers: segmentstore/cluster.c in the
 * binary, fakes in tests. Every function is called from RPC threads,
 * concurrently, and must be thread-safe.
 */
struct ss_backend {
	void *arg;                /* passed to every function */
	uint32_t container_count; /* cluster-wide, > 0 */
	/*
	 * Queue req on this store's replica of container, with the
	 * contract of container_submit() (done fires exactly once, later,
	 * only when 0 is returned). STRATA_EWRONGHOST when this store hosts
	 * no replica of it; STRATA_ESHUTDOWN when stopping.
	 */
	int (*submit)(void *arg, uint32_t container,
	              const struct container_request *req,
	              container_done_fn done, void *done_arg);
	/* Write the client URL of the store leading container (or, when the
	 * leader is unknown, of a store hosting it) into url (size bytes,
	 * NUL-terminated); "" when unknown or when it is this store. */
	void (*leader_url)(void *arg, uint32_t container, char *url,
	                   size_t size);
	/* Status of this store's replica of container into *out, and the
	 * leader's client URL as leader_url() does. STRATA_ENOENT when this
	 * store hosts no replica of it. */
	int (*status)(void *arg, uint32_t container,
	              struct container_status *out, char *leader, size_t size);
};

/* Server settings. */
struct ss_server_config {
	const char *listen;        /* NNG URL, "tcp://0.0.0.0:12345" (copied) */
	const char *config_key;    /* key that set listen, named in errors */
	unsigned n_contexts;       /* requests served at once (1..1024) */
	size_t max_msg_bytes;      /* largest request accepted by NNG */
	uint64_t max_append_bytes; /* largest AppendRequest.data */
	unsigned max_connections;  /* client connections at once; 0 = 4096 */
	unsigned drain_ms;         /* ss_server_stop waits this for replies */
	struct ss_backend backend; /* copied; backend.arg borrowed until stop */
	struct metrics_registry *metrics; /* borrowed until stop; NULL = none */
};

struct ss_server;

/*
 * Start serving cfg->listen. On success *out is the server (stop with
 * ss_server_stop). Errors: those of rpc_server_start (STRATA_EINVAL,
 * STRATA_EBUSY with the address and key, STRATA_ENOMEM, STRATA_EIO) and
 * of metric registration; errmsg (STRATA_ERRMSG_SIZE) says which.
 */
int ss_server_start(const struct ss_server_config *cfg, struct ss_server **out,
                    char *errmsg);

/* The URL actually listened on (real port when 0 was asked); valid until
 * ss_server_stop. */
const char *ss_server_url(const struct ss_server *s);

/*
 * Stop: new requests are answered STRATA_ESHUTDOWN, requests in flight
 * get drain_ms to finish, then the listener closes and no handler runs
 * any more. Completions of requests still queued in containers may
 * arrive later (their replies are dropped; they may still call
 * backend.leader_url): stop the containers after the server and free the
 * backend after them. s itself is freed with the last completion.
 */
void ss_server_stop(struct ss_server *s);

#endif /* SEGMENTSTORE_SERVER_H */
