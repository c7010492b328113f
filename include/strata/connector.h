/* Connector plugin ABI: source and sink endpoints run by strata-connect;
 * the one header a connector plugin author needs. */
#ifndef STRATA_CONNECTOR_H
#define STRATA_CONNECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/error.h"
#include "strata/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A connector moves events between Strata and something else. strata-connect
 * (docs/connect.md) runs one pipeline per process:
 *
 *   import:  source endpoint -> one Strata stream   (transactions)
 *   export:  Strata stream(s) -> sink endpoint      (reader group)
 *
 * and makes it exactly-once with a checkpoint file it owns, as the Flink
 * connector does with Flink's checkpoints (docs/connect.md, "Exactly
 * once"):
 *
 * - A source names its read position with a token (a short string such as
 *   a byte offset). An import writes each interval's records in one
 *   transaction, flushes it, records "transaction T covers the source up
 *   to token P" in the checkpoint file, then commits T. A restart commits
 *   T by id (or learns it was aborted) and reopens the source at the token
 *   the stream now holds: every record lands once. A source that cannot
 *   reopen at a token (stdin) is not REPLAYABLE: at least once at best.
 * - A sink is a two-phase participant. At each reader-group checkpoint
 *   the runtime calls prepare (everything written so far durable, but not
 *   necessarily visible) and records the token prepare returned together
 *   with the group's stream cuts; then it calls commit (make it visible).
 *   A restart resets the reader group to the recorded cuts and opens the
 *   sink with the recorded token: the sink must then hold exactly what
 *   was written before that prepare (a file truncates back to the length
 *   the token names; a transactional sink commits the transaction it
 *   names). A sink that can do that sets EXACTLY_ONCE; others are at least
 *   once.
 *
 * A connector plugin is a shared object named connector-<name>.so that
 * exports ONE symbol, STRATA_CONNECTOR_ENTRY, returning a pointer to a
 * static const struct strata_connector_ops (build with
 * -fvisibility=hidden, mark the entry with STRATA_PLUGIN_EXPORT). It may
 * offer a source, a sink or both. The table is APPEND ONLY: every appended
 * field bumps STRATA_CONNECTOR_ABI_VERSION; the host accepts
 * [STRATA_CONNECTOR_ABI_MIN, STRATA_CONNECTOR_ABI_VERSION], copies only
 * the fields the plugin's version declares and never writes the table.
 *
 * Threads: the runtime calls a source's ops from one thread and a sink's
 * ops from one thread (never two ops of one instance at once). Ops may
 * block (that is their point: files, sockets); poll honours wait_ms
 * (>= 0), gets max >= 1 and the same max_len on every call of an
 * instance. After an op of an instance fails the host calls only its
 * close (an exactly-once sink that failed a write cannot know what
 * reached its output; the next run restores it from the last token).
 *
 * Tokens (source positions, sink tokens) are 1..STRATA_CONNECTOR_TOKEN_MAX
 * - 1 bytes of printable ASCII (0x20..0x7e): the host stores them in its
 * line-based checkpoint file and refuses others.
 * Errors: 0 or a positive STRATA_E* code and, on error, a message of at
 * most STRATA_ERRMSG_SIZE bytes (NUL included) in errmsg naming the input
 * and the cause ("read /var/log/app.log: Input/output error"); the host
 * prefixes the plugin's name. Config is "key=value" lines
 * (strata/plugin_config.h); an unknown key is STRATA_ECONFIG naming it.
 * host is the host table every plugin kind shares (struct strata_host,
 * strata/plugin.h: log, allocator, counters; a connector has no use for
 * its open_tier2), valid while the instance is open.
 */

#define STRATA_CONNECTOR_ABI_VERSION 2 /* bumped on EVERY append */
#define STRATA_CONNECTOR_ABI_MIN 1     /* oldest version the host loads */
#define STRATA_CONNECTOR_ENTRY "strata_connector_plugin"
#define STRATA_CONNECTOR_TOKEN_MAX 1024 /* position / sink token, NUL incl. */

/* Source flag: source_open at any token the source returned goes on
 * right after it. */
#define STRATA_CONNECTOR_SOURCE_REPLAYABLE 0x1u
/* Sink flag: sink_open(token) restores the output of that prepare. */
#define STRATA_CONNECTOR_SINK_EXACTLY_ONCE 0x1u

/* One record: an event's routing key (sources only; NULL/0 = none) and
 * payload. Memory is the plugin's (source) or the host's (sink), valid
 * until the next call on the instance. */
struct strata_connector_record {
	const void *key;
	size_t keylen;
	const void *data;
	size_t len;
};

struct strata_connector_ops {
	uint32_t abi_version; /* STRATA_CONNECTOR_ABI_VERSION it was built with
	                       */
	uint32_t reserved;    /* zero */
	const char *name;     /* "file", "stdio": connector-<name>.so */

	/* ------------------------------------------------ source (optional) */
	uint32_t source_flags; /* STRATA_CONNECTOR_SOURCE_* */
	uint32_t reserved2;    /* zero */
	/*
	 * Open a source. restore NULL: from the beginning; else a token this
	 * source's position op returned (REPLAYABLE sources only): the next
	 * record polled is the one after it. A token it cannot use (corrupt,
	 * beyond the data) is STRATA_EINVAL or STRATA_ERANGE naming it.
	 */
	int (*source_open)(const struct strata_host *host, const char *config,
	                   const char *restore, void **state, char *errmsg);
	/*
	 * Up to max records into recs (*n of them), waiting at most wait_ms
	 * (0: do not wait) when none is ready. *end = true once there will
	 * never be more (end of a file not followed, stdin closed). A record
	 * larger than max_len is STRATA_ETOOBIG naming where it is.
	 */
	int (*source_poll)(void *state, int wait_ms, size_t max_len,
	                   struct strata_connector_record *recs, size_t max,
	                   size_t *n, bool *end, char *errmsg);
	/* The token of the position after the last record polled (what open
	 * takes to go on from there), NUL-terminated in token[size]. */
	int (*source_position)(void *state, char *token, size_t size,
	                       char *errmsg);
	void (*source_close)(void *state);

	/* -------------------------------------------------- sink (optional) */
	uint32_t sink_flags; /* STRATA_CONNECTOR_SINK_* */
	uint32_t reserved3;  /* zero */
	/*
	 * Open a sink. restore NULL: a fresh start; else the token of the
	 * last prepare the runtime recorded: the output must then hold
	 * exactly what was written before it and is visible (EXACTLY_ONCE
	 * sinks; others may keep more, at least once).
	 */
	int (*sink_open)(const struct strata_host *host, const char *config,
	                 const char *restore, void **state, char *errmsg);
	/* Write n records (data only; keys are not kept in streams). */
	int (*sink_write)(void *state,
	                  const struct strata_connector_record *recs, size_t n,
	                  char *errmsg);
	/* Make everything written so far durable and say how to restore to
	 * here: token[size], NUL-terminated. */
	int (*sink_prepare)(void *state, char *token, size_t size,
	                    char *errmsg);
	/* The checkpoint holding token is recorded: make the output up to it
	 * visible (NULL: it already is). Called again after a restart for
	 * the restored token may happen: must be idempotent. */
	int (*sink_commit)(void *state, const char *token, char *errmsg);
	void (*sink_close)(void *state);

	/* ------------------------------------------- ABI 2 (optional) */
	/*
	 * Check config for the source (source true) or the sink as open
	 * would, without side effects: no file created, no connection
	 * made (strata-connect --check-config). 0 or the error open would
	 * give for it (usually STRATA_ECONFIG naming the key).
	 */
	int (*check)(const struct strata_host *host, const char *config,
	             bool source, char *errmsg);
};

typedef const struct strata_connector_ops *(*strata_connector_entry_fn)(void);

/* The entry point every connector plugin defines (and exports). */
STRATA_PLUGIN_EXPORT const struct strata_connector_ops *
strata_connector_plugin(void);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_CONNECTOR_H */
