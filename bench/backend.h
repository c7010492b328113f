/* The interface every benchmarked system implements (Redis, NATS, Strata). */
#ifndef BENCH_BACKEND_H
#define BENCH_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/*
 * How strata-bench drives a system (bench/load.c):
 *
 *   open(endpoint, stream, CREATE)    once per case: connect, create a fresh
 *                                     stream (delete a leftover one first);
 *                                     ATTACH instead reconnects to it (after
 *                                     a server restart)
 *   writer_open(state, window, cb)    once per writer thread: its OWN
 *                                     connection/client, window = in-flight
 *   loop: writer_send(...) while fewer than `window` events are in flight,
 *         writer_poll(w, timeout)     flush and collect acks
 *   writer_close(w)                   after the measured window
 *   read_all(state, expect, cb)       catch-up: read the stream from its head
 *   close(state, drop)                disconnect; drop = delete the stream
 *
 * Threads: open/read_all/close run on the main thread; each writer is used
 * by exactly one writer thread (send, poll, close). The ack callback may run
 * on that writer thread (inside writer_send or writer_poll) or on a thread
 * of the client library (NATS), but never concurrently for one writer and
 * never after writer_close has returned.
 *
 * An ACK means the system's durable acknowledgement as configured for the
 * run (Redis: XADD reply with appendfsync always = fsync'ed; Strata: after
 * the Raft commit = fdatasync on a majority; NATS: JetStream PubAck, which
 * in nats-server 2.9 does NOT wait for fsync; the report labels it).
 *
 * Errors: every function returns 0 or a positive STRATA_E* code; functions
 * taking errmsg (STRATA_ERRMSG_SIZE bytes) fill it with what failed, with
 * what input, and what to do.
 *
 * How Strata was added (bench/backend_strata.c):
 *  - implement the ops below on the client library: open = create scope
 *    "bench" and stream `stream` with fixed(1) scaling (one segment, so the
 *    catch-up read is one ordered sequence); writer_open = one event writer
 *    per thread with its in-flight window set to `window`; writer_send =
 *    the async write with a completion callback that calls cb(arg, seq, rc);
 *    writer_poll = run the client's loop/wait up to timeout_ms; read_all =
 *    a reader from the head of the stream; close = delete stream + scope.
 *  - export `const struct bench_backend_ops bench_backend_strata;` and add
 *    it, with the server kinds in bench/servers.c (standalone and a
 *    3-replica cluster), to the systems table in bench/strata-bench.c with
 *    .restart_catchup = true (catch-up again after a restart, from tier 2;
 *    settle() first waits until the stream is flushed to tier 2).
 */

/* open() modes. */
#define BENCH_OPEN_CREATE 0
#define BENCH_OPEN_ATTACH 1

/* Where a system's client port is. */
struct bench_endpoint {
	const char *host; /* always "127.0.0.1" */
	int port;         /* client port of the first (or only) server */
	const char *urls; /* backend-specific list of all servers, or NULL */
};

/* Acknowledgement of event seq: status 0 = durably acked, otherwise a
 * STRATA_E* code (the event is lost/failed). */
typedef void (*bench_ack_cb)(void *arg, uint64_t seq, int status);

/* One event read during catch-up; payload borrowed for the call. Return 0
 * to go on, non-zero to stop reading (that value is returned by
 * read_all). */
typedef int (*bench_read_cb)(void *arg, const void *payload, size_t len);

struct bench_backend_ops {
	const char *name; /* short name: "redis", "nats", "strata" */
	/* (ops are appended only; a backend leaves new ones NULL) */

	/* Connect, and create a fresh stream named `stream` ([a-z0-9_]+,
	 * deleting a leftover one) when mode is BENCH_OPEN_CREATE, or use the
	 * existing one (BENCH_OPEN_ATTACH). *state is freed by close(). */
	int (*open)(const struct bench_endpoint *ep, const char *stream,
	            int mode, void **state, char *errmsg);

	/* A writer with its own connection; at most `window` events will be
	 * in flight on it. cb/arg are kept until writer_close. */
	int (*writer_open)(void *state, unsigned window, bench_ack_cb cb,
	                   void *arg, void **writer, char *errmsg);

	/* Queue one event (payload copied or sent before return; its first 8
	 * bytes hold seq, little-endian). May send at once or on poll. Never
	 * blocks waiting for acks: the harness respects the window. */
	int (*writer_send)(void *writer, uint64_t seq, const void *payload,
	                   size_t len);

	/* Send what is queued and wait up to timeout_ms for at least one ack
	 * (returns 0 on timeout too); acks are delivered through cb. An error
	 * means the writer is unusable (connection lost). */
	int (*writer_poll)(void *writer, int timeout_ms);

	/* Disconnect; events still in flight get no callback. */
	void (*writer_close)(void *writer);

	/* Read the stream from its head, calling cb per event, until `expect`
	 * events were read, cb returns non-zero, or timeout_ms passed
	 * (STRATA_ETIMEDOUT). */
	int (*read_all)(void *state, uint64_t expect, int timeout_ms,
	                bench_read_cb cb, void *arg, char *errmsg);

	/* Disconnect and free state; drop != 0 first deletes the stream
	 * (best effort: failures are logged). */
	void (*close)(void *state, int drop);

	/* Process-wide teardown of the client library at exit, or NULL. */
	void (*cleanup)(void);

	/* Wait up to timeout_ms until the stream's data is all in long-term
	 * storage (Strata: tier 2), so that a read after a restart comes
	 * from there; called before the restart catch-up. NULL = nothing
	 * to wait for. */
	int (*settle)(void *state, int timeout_ms, char *errmsg);
	/* Non-zero: writer_send may also be called from inside the ack
	 * callback, and an event sent there is handed over without a poll
	 * (the client library's completion context chains the next write,
	 * as an async producer does). The harness then refills each writer's
	 * window from its acks instead of waking its thread per ack. */
	int send_from_ack;
};

/* The backends (each compiled in when its client library is found). */
extern const struct bench_backend_ops bench_backend_redis;
extern const struct bench_backend_ops bench_backend_nats;
extern const struct bench_backend_ops bench_backend_strata;

#endif /* BENCH_BACKEND_H */
