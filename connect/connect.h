/* strata-connect: one pipeline between Strata and a connector endpoint. */
#ifndef CONNECT_CONNECT_H
#define CONNECT_CONNECT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connect/connector.h"
#include "strata/error.h"
#include "strata/client.h"

/* What to do with a prepared transaction the controller no longer knows
 * (it forgets completed ones after an hour). */
enum connect_unknown_txn {
	CONNECT_UNKNOWN_FAIL = 0,      /* stop and say so (default) */
	CONNECT_UNKNOWN_COMMITTED = 1, /* assume it committed */
	CONNECT_UNKNOWN_ABORTED = 2,   /* assume it aborted: read it again */
};

/* A pipeline's settings (docs/connect.md); strings borrowed. */
struct connect_config {
	const char *controller;    /* controller URL */
	char scope[256];           /* the stream's scope */
	char stream[256];          /* and name */
	const char *state_file;    /* checkpoint file */
	uint64_t interval_ms;      /* checkpoint interval */
	bool exactly_once;         /* else at least once */
	uint64_t txn_lease_ms;     /* import: transaction lease */
	const char *codec;         /* import: writer codec ("" none) */
	int codec_level;           /* and its level (0 default) */
	size_t max_event;          /* import: largest record */
	const char *plugin_config; /* connector options (key=value lines) */
	const char *group;         /* export: reader group */
	const char *start;         /* export: "head", "tail" or a cut */
	bool hold_retention;       /* export: the group holds retention
	                              back until the sink committed */
	enum connect_unknown_txn unknown_txn; /* import recovery */
	uint64_t retry_ms; /* keep retrying an unavailable cluster */
};

/* Set by the signal thread on SIGINT/SIGTERM (read by every thread):
 * take a last checkpoint and stop. */
extern atomic_bool connect_stop;

/* Run an import (source -> stream) until the source ends
 * or connect_stop. 0, or the error that stopped it with errmsg. */
int connect_import(const struct connect_config *cfg, struct connector *conn,
                   struct strata_client *c, char *errmsg);

/* Run an export (stream -> sink) likewise. */
int connect_export(const struct connect_config *cfg, struct connector *conn,
                   struct strata_client *c, char *errmsg);

/* Whether conn can run cfg's import (export): it has a source (sink), and
 * one that can give the guarantee asked. 0 or STRATA_ECONFIG with errmsg;
 * connect_import (connect_export) and --check-config both ask. */
int connect_import_check(const struct connect_config *cfg,
                         const struct connector *conn, char *errmsg);
int connect_export_check(const struct connect_config *cfg,
                         const struct connector *conn, char *errmsg);

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t connect_now_ms(void);

/* The client's bound on one call or one writer's retries (default
 * def_ms), lowered to retry.timeout so that a cluster down stops the run
 * about retry.timeout after it went away, not after the defaults. */
static inline int connect_bound_ms(const struct connect_config *cfg, int def_ms)
{
	uint64_t ms = cfg->retry_ms < 1000 ? 1000 : cfg->retry_ms;
	return ms < (uint64_t)def_ms ? (int)ms : def_ms;
}

/* True for the errors worth retrying (for retry_ms) while the cluster
 * recovers: unavailable, timed out, busy, leader lost, refused. */
static inline bool connect_transient(int rc)
{
	return rc == STRATA_EUNAVAIL || rc == STRATA_ETIMEDOUT ||
	       rc == STRATA_EBUSY || rc == STRATA_ELEADERLOST ||
	       rc == STRATA_ECONNREFUSED;
}

#endif /* CONNECT_CONNECT_H */
