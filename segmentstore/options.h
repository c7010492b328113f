/* The configuration keys strata-segmentstore and strata-standalone spell
 * alike, and the code both use to check them and read them into a
 * struct ss_service_config. */
#ifndef SEGMENTSTORE_OPTIONS_H
#define SEGMENTSTORE_OPTIONS_H

#include "common/config.h"
#include "segmentstore/service.h"

/*
 * Schema entries (struct config_key initializers) that both binaries
 * declare with the same name, default, bounds and help, for their static
 * const schema tables. The other store keys differ between the two in
 * default or help text (--help shows them as they are) and stay in each
 * binary's table.
 */
#define SS_KEY_LIMITS_MAX_EVENT                                  \
	{                                                        \
		.name = "limits.max_event", .type = CONFIG_SIZE, \
		.def = "8MiB", .min = "1KiB", .max = "64MiB",    \
		.help = "Largest event payload accepted."        \
	}
#define SS_KEY_FLUSH_BYTES                                                 \
	{                                                                  \
		.name = "flush.bytes", .type = CONFIG_SIZE, .def = "4MiB", \
		.min = "1",                                                \
		.help = "Flush a segment to tier 2 once it has this many " \
		        "unflushed bytes."                                 \
	}
#define SS_KEY_CONTAINERS_RECOVER_AFTER                                      \
	{                                                                    \
		.name = "containers.recover_after", .type = CONFIG_DURATION, \
		.def = "30s", .min = "1s", .max = "1h",                      \
		.help = "Restart a container replica whose Raft log failed " \
		        "(full or failing disk) this long after, then at "   \
		        "doubling intervals up to 10m while it fails."       \
	}
#define SS_KEY_FLUSH_AGE                                                     \
	{                                                                    \
		.name = "flush.age", .type = CONFIG_DURATION, .def = "5s",   \
		.min = "1ms",                                                \
		.help = "... or once its oldest unflushed byte is this old." \
	}
#define SS_KEY_FLUSH_CHUNK_BYTES                                            \
	{                                                                   \
		.name = "flush.chunk_bytes", .type = CONFIG_SIZE,           \
		.def = "64MiB", .min = "4KiB",                              \
		.help = "Start a new tier-2 chunk at this size. Retention " \
		        "frees tier-2 space a chunk at a time."             \
	}

/*
 * Cross-key rules of the limits the schema cannot express: limits.max_message
 * must exceed limits.max_append by at least 4 KiB (a request carries the
 * block and its header), and limits.max_event plus its 4-byte frame must
 * fit in limits.max_append. cfg is loaded and has the limits.* keys. 0, or
 * STRATA_ECONFIG with errmsg (STRATA_ERRMSG_SIZE) naming both keys and
 * what to change.
 */
int ss_options_check(const struct config *cfg, char *errmsg);

/*
 * Set the fields of sc that both binaries read from the same keys:
 * server.n_contexts, server.max_msg_bytes, server.max_append_bytes,
 * server.backend.container_count, cluster.node_id and, in cluster.tmpl,
 * election_ms, max_event_bytes, max_append_bytes, unflushed_budget,
 * cache_budget, flush_bytes and flush_age_ms. Other fields are left as
 * they are. cfg (loaded, with the keys limits.max_event,
 * limits.max_append, limits.max_message, limits.requests,
 * limits.unflushed_budget, limits.cache_budget, flush.bytes, flush.age,
 * containers.count, node.id and raft.election_timeout) is borrowed for
 * the call.
 */
void ss_options_read(const struct config *cfg, struct ss_service_config *sc);

#endif /* SEGMENTSTORE_OPTIONS_H */
