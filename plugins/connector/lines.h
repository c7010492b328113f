/* Line reader shared by the file and stdio connectors: splits what a
 * descriptor delivers into newline-terminated records, in bounded memory. */
#ifndef PLUGINS_CONNECTOR_LINES_H
#define PLUGINS_CONNECTOR_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/connector.h"

/*
 * The buffer holds bytes read but not yet returned: [start, len). Records
 * point into it and stay valid until the next lines_fill or lines_next
 * that moves data (the caller returns them before reading more). It grows
 * to at most max(LINES_MIN_CAP, max_len + 1) bytes: a line longer than
 * max_len is an error, never a bigger buffer.
 */
struct lines {
	const struct strata_host *host;
	uint8_t *buf;
	size_t cap;
	size_t start;    /* first byte not yet returned */
	size_t len;      /* bytes in buf */
	uint64_t offset; /* stream offset of buf[start] */
	bool eof;        /* the descriptor said end of file */
};

#define LINES_MIN_CAP (64u * 1024)

void lines_init(struct lines *l, const struct strata_host *host,
                uint64_t offset);
void lines_free(struct lines *l);

/*
 * Read once from fd into the buffer (moving unreturned bytes to its
 * front first) for records of at most max_len bytes. 0 (l->eof set when
 * read returned 0), or errno of the read, or ENOMEM; ENOBUFS when the
 * buffer is full of one line longer than max_len.
 */
int lines_fill(struct lines *l, int fd, size_t max_len);

/*
 * The next complete line as a record (data without its '\n'); with
 * take_partial, a last line without '\n' too (end of input). false when
 * there is none. *too_long is set when the line in the buffer exceeds
 * max_len (its offset is l->offset).
 */
bool lines_next(struct lines *l, size_t max_len, bool take_partial,
                struct strata_connector_record *rec, bool *too_long);

/* ---- helpers both connectors use ---- */

/* Parse a bool option value (true/false, yes/no, on/off, 1/0). */
bool conn_bool(const char *v, size_t n, bool *out);

/* Map errno to a STRATA_E* code (ENOSPC, ENOENT, EACCES, else EIO). */
int conn_errno_code(int err);

/*
 * The sink side both connectors share: records appended to fd at
 * offset length through a user-space buffer of LINES_MIN_CAP * 16
 * bytes, one '\n' after each when lines. Larger records go straight
 * out. name is for messages.
 */
struct out {
	const struct strata_host *host;
	const char *name;
	int fd;
	bool lines;    /* append '\n' to each record */
	bool seekable; /* pwrite at length (a file) or write (a pipe) */
	bool sync;     /* fdatasync at every prepare */
	uint8_t *buf;
	size_t cap;
	size_t used;
	uint64_t length; /* bytes written or buffered so far */
};

int out_init(struct out *o, const struct strata_host *host, const char *name,
             int fd, bool lines, bool seekable, bool sync_each, uint64_t length,
             char *errmsg);
void out_free(struct out *o);
int out_write(struct out *o, const struct strata_connector_record *recs,
              size_t n, char *errmsg);
/* Write the buffer out. */
int out_flush(struct out *o, char *errmsg);

/* sink_write and sink_prepare for a sink state whose FIRST member is its
 * struct out: prepare writes the buffer out, syncs when o->sync and
 * gives the output's length as the token. */
int out_sink_write(void *state, const struct strata_connector_record *recs,
                   size_t n, char *errmsg);
int out_sink_prepare(void *state, char *token, size_t size, char *errmsg);

#endif /* PLUGINS_CONNECTOR_LINES_H */
