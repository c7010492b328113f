/* Test helper: an in-process fake controller + segment store behind the
 * libstrata transport seam (client/client_int.h), with fault injection. */
#ifndef TESTS_UNIT_CLIENT_FAKE_CLUSTER_H
#define TESTS_UNIT_CLIENT_FAKE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/client_int.h"

struct fake_cluster;

/* A fake with one scope/stream "sc/st" of n_segments equal ranges (epoch
 * 0). Requests are served in order on one worker thread. */
struct fake_cluster *fake_new(unsigned n_segments);

/* The ops and the transport pointer for client_new_with_transport; the
 * client owns neither: free the fake with fake_free after the client. */
extern const struct ct_ops fake_ops;

void fake_free(struct fake_cluster *f);

/* A client on the fake (controller URL only for messages); NULL, with
 * the reason on stderr, if it cannot be made. Free it before the fake. */
struct strata_client *fake_client(struct fake_cluster *f,
                                  int operation_timeout_ms);

/* A test fixture: a fake of n segments and a client on it (3 s
 * operation timeout); NULL when it cannot be made. */
struct fake_fixture {
	struct fake_cluster *f;
	struct strata_client *c;
};
struct fake_fixture *fake_fixture_new(unsigned n_segments);
void fake_fixture_free(struct fake_fixture *fx); /* NULL: no-op */

/* Wait until the client's I/O thread ran every task queued before this
 * call (tasks run in order): e.g. a writer's pump a flush posted. */
void fake_loop_drain(struct strata_client *c);

/* The next n appends fail with code, nothing applied. */
void fake_fail_appends(struct fake_cluster *f, unsigned n, int code);

/* Until called again with 0: every append that would apply (the next
 * events in order) is refused with code, as a store under back-pressure
 * refuses them (STRATA_EAGAIN); appends sent behind it then fail their
 * event numbers (STRATA_EBADEVENTNUM), as on a real store. */
void fake_refuse_in_order(struct fake_cluster *f, int code);

/* The next n appends are applied but answered with STRATA_ETIMEDOUT (a
 * lost acknowledgement). */
void fake_lose_acks(struct fake_cluster *f, unsigned n);

/* Reads stop at every multiple of `every` bytes (as a store's reads stop
 * at extent ends); 0 turns it off. */
void fake_clip_reads(struct fake_cluster *f, uint64_t every);

/* The next n successor queries answer as a controller replica that has
 * not applied the scale yet: no successors, the segment still open.
 * _left: how many of them are still to come. */
void fake_stale_successors(struct fake_cluster *f, unsigned n);
unsigned fake_stale_successors_left(struct fake_cluster *f);

/* The next n current-segment queries answer likewise: the newest
 * scale's predecessors instead of its successors (stream not sealed).
 * _left: how many of them are still to come. */
void fake_stale_current(struct fake_cluster *f, unsigned n);
unsigned fake_stale_current_left(struct fake_cluster *f);

/* CTL_LIST_STREAMS calls served: ten streams s00..s09, three a page to a
 * client that pages. */
unsigned fake_list_calls(struct fake_cluster *f);

/* Seal segment id and replace it by two successors splitting its range
 * (new epoch). Returns the number of the first successor. */
void fake_split(struct fake_cluster *f, uint64_t id);

/* Seal the adjacent current segments a and b and replace them by one
 * successor covering both ranges (new epoch). */
void fake_merge(struct fake_cluster *f, uint64_t a, uint64_t b);

/* Delete sealed, no longer current segment id as a truncation does: its
 * store answers ENOENT from now on (its data stays for the checks). */
void fake_delete_segment(struct fake_cluster *f, uint64_t id);

/* Seal every current segment (a sealed stream). */
void fake_seal_stream(struct fake_cluster *f);

/* Number of segments ever created / segment i's id and data (borrowed;
 * valid until fake_free; call while no writer runs). */
size_t fake_n_segments(struct fake_cluster *f);
uint64_t fake_segment_id(struct fake_cluster *f, size_t i);
const uint8_t *fake_segment_data(struct fake_cluster *f, size_t i, size_t *len);

/* Refuse the next n transaction begins with STRATA_EBUSY, as the
 * controller does while the stream scales or a commit rolls. */
void fake_busy_creates(struct fake_cluster *f, unsigned n);

/* Abort open transaction id as a lease that ran out does (its shadows
 * are dropped). */
void fake_expire_txn(struct fake_cluster *f, uint64_t id);

/* Whether segment i is not one of sc/st's (a reader group's state, a
 * transaction's shadow). */
bool fake_segment_internal(struct fake_cluster *f, size_t i);

/* CTL_PING_TXN calls served. */
unsigned fake_txn_pings(struct fake_cluster *f);

/* Segments that exist (shadows of open transactions included). */
size_t fake_live_segments(struct fake_cluster *f);

/* Counters. */
unsigned fake_appends(struct fake_cluster *f);      /* append requests */
unsigned fake_duplicates(struct fake_cluster *f);   /* deduplicated */
unsigned fake_reads_beyond(struct fake_cluster *f); /* past a length */

#endif /* TESTS_UNIT_CLIENT_FAKE_CLUSTER_H */
