/* Test fixture for the controller service: one or more replicas in this
 * process on 127.0.0.1, temporary data dirs, a synchronous API caller. */
#ifndef TESTS_UNIT_CONTROLLER_SVC_FIXTURE_H
#define TESTS_UNIT_CONTROLLER_SVC_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "controller/api.h"
#include "controller/cluster.h"
#include "controller/service.h"

#define FX_MAX 3

/* Replicas of one test cluster. */
struct fx {
	char dir[64];                          /* mkdtemp root */
	unsigned n;                            /* replicas */
	struct ctl_member members[FX_MAX];     /* their addresses */
	struct ctl_service *svc[FX_MAX];       /* NULL when stopped */
	struct ctl_api *api[FX_MAX];           /* one per running replica */
	struct cluster_ticker *ticker[FX_MAX]; /* leader clock, 100 ms */
	uint32_t containers;                   /* container count */
	unsigned wait_ms;                      /* api wait bound */
	uint64_t snapshot_bytes;               /* 0 = default */
	uint64_t lease_ms;                     /* store lease */
	unsigned join_from; /* replicas from this index join (default n) */
	bool no_ticker;     /* no leader ticks: the state stays still */
	uint64_t read_staleness_ms; /* api setting, 0 = default */
	unsigned recover_ms;        /* service setting, 0 = default */
};

/* A free TCP port on 127.0.0.1 (bind 0, read, close). */
int fx_free_port(void);

/* Prepare n replicas (addresses, temp dir) without starting them. */
void fx_init(struct fx *f, unsigned n);

/* Start replica i (and its API); asserts success. */
void fx_start(struct fx *f, unsigned i);

/* Stop replica i. */
void fx_stop(struct fx *f, unsigned i);

/* Stop everything and remove the temp dir. */
void fx_close(struct fx *f);

/* Index of the ready leader, waiting up to ms; asserts one appears. */
unsigned fx_wait_leader(struct fx *f, unsigned ms);

/* The outcome of a synchronous API call. */
struct fx_reply {
	int code;
	char msg[STRATA_ERRMSG_SIZE];
	char redirect[256];
	uint8_t *body; /* strata_malloc'd, may be NULL */
	size_t len;
};

/* Dispatch method with req (packed; NULL = empty) on api and wait. */
void fx_call(struct ctl_api *api, uint32_t method, const ProtobufCMessage *req,
             struct fx_reply *out);

/* Unpack out->body as desc (asserts it parses); free with rpc_pb_free. */
void *fx_unpack(const struct fx_reply *out,
                const ProtobufCMessageDescriptor *desc);

/* Free out->body. */
void fx_reply_free(struct fx_reply *out);

/* Poll pred(arg) every 20 ms for up to ms; true when it held. */
bool fx_eventually(bool (*pred)(void *arg), void *arg, unsigned ms);

/* Create a scope / a fixed(n) stream through api; return the code. */
int fx_create_scope(struct ctl_api *api, const char *scope);
int fx_create_stream(struct ctl_api *api, const char *scope, const char *stream,
                     uint32_t n);

/* Sleep ms milliseconds. */
void fx_sleep(unsigned ms);

#endif /* TESTS_UNIT_CONTROLLER_SVC_FIXTURE_H */
