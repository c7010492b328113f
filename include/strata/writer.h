/* libstrata public API: the event writer (exactly-once, pipelined). */
#ifndef STRATA_WRITER_H
#define STRATA_WRITER_H

#include "strata/client.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * An event writer appends events to one stream. The routing key picks the
 * segment (strata_routing_key_position); events with the same key keep
 * their order, also across scaling (a sealed segment's pending events move
 * to its successors only after its in-flight appends are resolved).
 * Events without a key are spread at random over the segments and keep no
 * order. Appends are batched and pipelined; each carries the writer id (16
 * random bytes) and a per-segment event number, so retries after timeouts,
 * reconnects and segment-store fail-over never duplicate and never lose an
 * acknowledged event (docs/client.md, "Writer").
 */
struct strata_writer;

struct strata_writer_config {
	size_t max_inflight_bytes;     /* window: bytes accepted, not yet
	                                  acknowledged (default 32 MiB) */
	uint32_t max_inflight_events;  /* window in events (default 65536) */
	uint32_t linger_ms;            /* wait this long for more events before
	                                  sending a small batch (default 0) */
	size_t max_batch_bytes;        /* largest append block (default 1 MiB;
	                                  a larger single event goes alone) */
	uint32_t max_inflight_batches; /* pipelined blocks per segment
	                                  (default 8) */
	size_t max_event_bytes;        /* largest payload accepted (default
	                                  STRATA_DEFAULT_MAX_EVENT_BYTES) */
	int retry_timeout_ms; /* keep retrying a failing segment this long
	                         before failing its events; the writer
	                         then takes no more (default 120000) */
	bool block_when_full; /* write waits for room in the window
	                         (default true); false: STRATA_EAGAIN */
	const char *codec;    /* compress each event with this codec plugin:
	                         "zstd", "lz4" or "gzip" (codec-<name>.so in
	                         $STRATA_PLUGIN_DIR); NULL or "" = none
	                         (default). Borrowed for strata_writer_new.
	                         Readers decode transparently; an event the
	                         codec does not shrink is stored plain. */
	int codec_level;      /* 0 = the codec's default (zstd 3, lz4 0 =
	                         fast, gzip 6); else within its range (zstd
	                         1..19, lz4 0..12, gzip 1..9) */
};

/* Fill cfg with the defaults above. */
STRATA_API void strata_writer_config_default(struct strata_writer_config *cfg);

/*
 * Completion of one write: code 0 once the event is durable (acknowledged
 * after the segment store's Raft commit), or the error that made the
 * writer give up on it (errmsg borrowed for the call). Runs exactly once,
 * in the client's I/O context (see strata/client.h), never from inside
 * strata_writer_write(); it must not block.
 */
typedef void (*strata_write_cb)(void *arg, int code, const char *errmsg);

/*
 * Create a writer for scope/stream (cfg NULL = defaults); asks the
 * controller for the current segments. Errors: STRATA_ENOENT (no such
 * stream), STRATA_EUNAVAIL (controller unreachable), STRATA_EINVAL (bad
 * config), STRATA_ENOMEM. Close it with strata_writer_close().
 */
STRATA_API int strata_writer_new(struct strata_client *c, const char *scope,
                                 const char *stream,
                                 const struct strata_writer_config *cfg,
                                 struct strata_writer **out, char *errmsg);

/*
 * Queue one event: key[0..keylen) (NULL/0 = no key) and data[0..len) are
 * copied. Returns 0 once queued: cb (may be NULL) then reports the
 * outcome. Errors without calling cb: STRATA_ETOOBIG (len >
 * max_event_bytes), STRATA_EAGAIN (window full and !block_when_full, or
 * called from a callback with a full window), STRATA_ECLOSED (writer
 * closing), STRATA_ENOMEM, and the error that failed earlier events for
 * good (an event the stores refuse, or a segment failing past
 * retry_timeout_ms): a later event of their key would leave a hole in
 * its order, so the writer takes no more (create a new one). Waits for
 * room in the window when it is full.
 */
STRATA_API int strata_writer_write(struct strata_writer *w, const void *key,
                                   size_t keylen, const void *data, size_t len,
                                   strata_write_cb cb, void *arg, char *errmsg);

/* One event of strata_writer_write_batch(): the arguments of one
 * strata_writer_write() call. */
struct strata_write {
	const void *key; /* routing key (NULL/0 = none) */
	size_t keylen;
	const void *data; /* payload */
	size_t len;
	strata_write_cb cb; /* may be NULL */
	void *arg;
};

/*
 * Queue evs[0..n) as n calls of strata_writer_write() would, in order,
 * then hand them to the I/O thread at once: a burst wakes it once and
 * travels in as few appends as max_batch_bytes allows, where single
 * writes each hand over as they come (the first of a burst alone). For
 * producers that have several events ready (a buffer, a poll's worth of
 * readings); not atomic: each event has its own outcome. *queued (may be
 * NULL) is set to how many were queued: on an error, evs[0..*queued) are
 * queued and their callbacks will run, the rest are not (no callback).
 * Errors as strata_writer_write(). When the window fills up the events
 * queued so far are handed over before it waits for room.
 */
STRATA_API int strata_writer_write_batch(struct strata_writer *w,
                                         const struct strata_write *evs,
                                         size_t n, size_t *queued,
                                         char *errmsg);

/* Write one event and wait until it is durable or failed; returns its
 * outcome. Must not be called from a callback (STRATA_EINVAL). */
STRATA_API int strata_writer_write_sync(struct strata_writer *w,
                                        const void *key, size_t keylen,
                                        const void *data, size_t len,
                                        char *errmsg);

/*
 * Send everything queued now (linger ignored) and wait until every event
 * written before the call is resolved and its callback has returned.
 * Returns 0, or the code and message of the last event that failed since
 * the previous flush. Must not be called from a callback (STRATA_EINVAL).
 */
STRATA_API int strata_writer_flush(struct strata_writer *w, char *errmsg);

/*
 * Note the application's time `time` (any int64 that rises: event time,
 * ingest time, a file number) at this writer's position: flushes, then
 * tells the controller the time and, per segment written to, the end of
 * the writer's last acknowledged append. The controller turns the notes of
 * a stream's writers into watermarks (docs/client.md, "Watermarks");
 * readers see them through strata_reader_time_window. Call it every so
 * often (each Flink watermark, each second); a writer silent for the
 * controller's watermark.writer_timeout stops holding watermarks back,
 * and closing the writer removes its note. Errors: STRATA_EINVAL (time
 * below this writer's last note, nothing written yet, a transaction's
 * writer), the flush's errors, the controller's. Not from a callback.
 */
STRATA_API int strata_writer_note_time(struct strata_writer *w, int64_t time,
                                       char *errmsg);

/* Flush, then free the writer; returns the flush's result. The writer is
 * freed in every case. Must not be called from a callback. */
STRATA_API int strata_writer_close(struct strata_writer *w, char *errmsg);

/* The writer's 16-byte id (as stored in segment attributes). */
STRATA_API void strata_writer_id(const struct strata_writer *w, uint8_t id[16]);

/* Counters of a writer, for monitoring and tests. */
struct strata_writer_stats {
	uint64_t events_written; /* accepted by strata_writer_write */
	uint64_t events_acked;   /* acknowledged durable */
	uint64_t events_failed;  /* failed (callback got an error) */
	uint64_t blocks_sent;    /* append requests sent (retries included) */
	uint64_t resyncs;        /* SETUP_APPEND after a failure */
	uint64_t reroutes;       /* events moved to successor segments */
	uint64_t duplicates;     /* blocks the store had already applied */
	uint64_t payload_bytes;  /* payload bytes accepted */
	uint64_t stored_bytes;   /* their frames as sent (4-byte header and,
	                            with a codec, after encoding) */
};
STRATA_API void strata_writer_get_stats(struct strata_writer *w,
                                        struct strata_writer_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_WRITER_H */
