/* The configuration keys the segment store binaries share: the cross-key
 * check of the limits and the reading of them into a service config. */
#include "segmentstore/options.h"

#include <inttypes.h>
#include <stdio.h>

#include "strata/error.h"

int ss_options_check(const struct config *cfg, char *errmsg)
{
	uint64_t msg = config_get_size(cfg, "limits.max_message");
	uint64_t app = config_get_size(cfg, "limits.max_append");
	if (msg < app + 4096) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "limits.max_message (%" PRIu64
		         ") must exceed limits.max_append (%" PRIu64
		         ") by at least 4KiB; raise limits.max_message",
		         msg, app);
		return STRATA_ECONFIG;
	}
	uint64_t ev = config_get_size(cfg, "limits.max_event");
	if (ev + 4 > app) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE,
		         "limits.max_event (%" PRIu64 ") plus its 4-byte frame "
		         "must fit in limits.max_append (%" PRIu64
		         "); lower limits.max_event or raise limits.max_append",
		         ev, app);
		return STRATA_ECONFIG;
	}
	return 0;
}

void ss_options_read(const struct config *cfg, struct ss_service_config *sc)
{
	struct ss_server_config *s = &sc->server;
	s->n_contexts = (unsigned)config_get_uint(cfg, "limits.requests");
	s->max_msg_bytes = config_get_size(cfg, "limits.max_message");
	s->max_append_bytes = config_get_size(cfg, "limits.max_append");
	s->max_connections =
	        (unsigned)config_get_uint(cfg, "limits.connections");
	s->backend.container_count =
	        (uint32_t)config_get_uint(cfg, "containers.count");
	sc->cluster.node_id = config_get_uint(cfg, "node.id");
	sc->cluster.recover_ms = (unsigned)config_get_duration_ms(
	        cfg, "containers.recover_after");
	struct container_config *t = &sc->cluster.tmpl;
	t->election_ms =
	        (unsigned)config_get_duration_ms(cfg, "raft.election_timeout");
	t->max_event_bytes = config_get_size(cfg, "limits.max_event");
	t->max_append_bytes = s->max_append_bytes;
	t->unflushed_budget = config_get_size(cfg, "limits.unflushed_budget");
	t->cache_budget = config_get_size(cfg, "limits.cache_budget");
	t->flush_bytes = config_get_size(cfg, "flush.bytes");
	t->flush_age_ms = config_get_duration_ms(cfg, "flush.age");
	t->chunk_bytes = config_get_size(cfg, "flush.chunk_bytes");
}
