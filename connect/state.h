/* strata-connect's checkpoint file: what a pipeline resumes from. */
#ifndef CONNECT_STATE_H
#define CONNECT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/connector.h"

#define CONNECT_STATE_MAX_CUTS 64         /* streams of a reader group */
#define CONNECT_STATE_FILE_MAX (1u << 20) /* larger files are corrupt */

enum connect_mode {
	CONNECT_IMPORT = 1, /* source -> stream, transactions */
	CONNECT_EXPORT = 2, /* stream -> sink, reader-group checkpoints */
};

/*
 * The checkpoint file's content. One file per pipeline, replaced
 * atomically (write a temporary, fdatasync, rename, fsync the directory)
 * at every checkpoint, so a crash leaves the old or the new one. It is
 * text ("key=value" lines) ending in a CRC32C line; docs/connect.md
 * shows one. Import: the source token the stream holds (`committed`) and,
 * between a transaction's flush and its commit, that transaction and
 * the token it covers (`txn`, `prepared`). Export: the reader-group
 * checkpoint last completed (`checkpoint`, its cuts) and the sink token
 * prepared at it (`sink`).
 */
struct connect_state {
	enum connect_mode mode;
	char stream[512]; /* "scope/stream" of the pipeline */
	uint64_t seq;     /* checkpoints taken (names connect-<seq>) */
	/* import */
	bool have_committed;
	char committed[STRATA_CONNECTOR_TOKEN_MAX]; /* source token in stream */
	uint64_t txn; /* != 0: prepared transaction */
	char prepared[STRATA_CONNECTOR_TOKEN_MAX]; /* token txn covers */
	/* export */
	char group[256];      /* reader group */
	char checkpoint[256]; /* its last completed checkpoint ("" none) */
	char sink[STRATA_CONNECTOR_TOKEN_MAX]; /* sink token prepared at it
	                                          (or at the start, before
	                                          the first checkpoint) */
	size_t n_cuts;
	char *cuts[CONNECT_STATE_MAX_CUTS]; /* strata_stream_cut_format text,
	                                       owned */
};

/* Empty state of mode for stream (copied). */
void connect_state_init(struct connect_state *st, enum connect_mode mode,
                        const char *stream);

/* Free the cuts. */
void connect_state_clear(struct connect_state *st);

/* Replace the cuts with texts[0..n) (copied). STRATA_ENOMEM,
 * STRATA_EINVAL (more than CONNECT_STATE_MAX_CUTS). */
int connect_state_set_cuts(struct connect_state *st, char *const *texts,
                           size_t n);

/* True when token can be stored: 1..STRATA_CONNECTOR_TOKEN_MAX-1 bytes of
 * printable ASCII (no newline, no control byte). */
bool connect_token_ok(const char *token);

/*
 * Parse text[0..len) (untrusted: fuzzed) into *st (initialised by the
 * call; clear it after). STRATA_ECORRUPT with errmsg naming origin (a
 * path, for messages) and the line for anything but a well-formed file
 * whose CRC matches; STRATA_ENOMEM.
 */
int connect_state_parse(const char *origin, const char *text, size_t len,
                        struct connect_state *st, char *errmsg);

/* The text of st (strata_malloc'd, NUL-terminated), CRC line included;
 * NULL on out of memory. */
char *connect_state_format(const struct connect_state *st);

/*
 * Read path into *st. *exists = false (st initialised empty) when there
 * is no file. Errors: STRATA_ECORRUPT (parse), STRATA_EIO naming the
 * path, STRATA_ENOMEM.
 */
int connect_state_load(const char *path, struct connect_state *st, bool *exists,
                       char *errmsg);

/* Replace path atomically with st and make it durable. STRATA_EIO /
 * STRATA_ENOSPC naming the path, STRATA_ENOMEM. The old file stays
 * whole on any failure. */
int connect_state_save(const char *path, const struct connect_state *st,
                       char *errmsg);

#endif /* CONNECT_STATE_H */
