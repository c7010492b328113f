/* Helpers compiled into the line-based connectors (file, stdio, http): a
 * line reader that splits what a descriptor (or a libcurl transfer)
 * delivers into records in bounded memory, the buffered writer behind the
 * file and stdio sinks, and option/errno helpers. */
#ifndef PLUGINS_CONNECTOR_LINES_H
#define PLUGINS_CONNECTOR_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/connector.h"
#include "strata/plugin_config.h"

#define LINES_MIN_CAP (64u * 1024) /* reader buffer to start with */
#define OUT_CAP (1024u * 1024)     /* writer buffer; larger records bypass */

/* ------------------------------------------------------------ reader */

/*
 * Bytes read from a descriptor and not yet returned as records. Records
 * point into buf: they stay valid until the next lines_fill (which moves
 * data) or lines_free. buf starts at LINES_MIN_CAP bytes and doubles only
 * while one line does not fit, up to lines_limit(max_len): a line longer
 * than max_len is an error, never a bigger buffer.
 */
struct lines {
	const struct strata_host *host; /* allocator; borrowed */
	uint8_t *buf;    /* host->malloc'ed; NULL before the first fill */
	size_t cap;      /* bytes allocated at buf */
	size_t start;    /* first byte of buf not yet returned */
	size_t len;      /* bytes of buf holding data */
	uint64_t offset; /* input offset of buf[start]: the position token */
	bool eof;        /* the last read returned 0 (end of input for now) */
};

/* Set up an empty reader whose first byte is at input offset. */
void lines_init(struct lines *l, const struct strata_host *host,
                uint64_t offset);

/* Free the buffer (records from it become invalid). */
void lines_free(struct lines *l);

/* Bytes the buffer may grow to for lines of at most max_len bytes:
 * max(LINES_MIN_CAP, max_len + 1), the '\n' included. */
size_t lines_limit(size_t max_len);

/*
 * Make room for want more bytes at buf + len: move the bytes not yet
 * returned to the front (records returned before become invalid), then
 * grow by doubling up to limit bytes. 0, ENOMEM, or ENOBUFS when limit
 * bytes cannot hold them.
 */
int lines_reserve(struct lines *l, size_t want, size_t limit);

/*
 * Read once from fd into the buffer, after moving the bytes not yet
 * returned to its front (records returned before become invalid); grows
 * the buffer when it is full, up to lines_limit(max_len). Returns 0 (with
 * l->eof set when read returned 0; EAGAIN reads nothing and is not an
 * error), the errno of the read, ENOMEM, or ENOBUFS when the buffer is at
 * its limit and full (a line longer than max_len: lines_next says so
 * first).
 */
int lines_fill(struct lines *l, int fd, size_t max_len);

/*
 * Take the next line as a record (data without its '\n', key unset);
 * with take_partial, also a last line that has no '\n' (end of input).
 * false when there is none; then *too_long says whether the line at
 * l->offset is (or, unterminated, already is) longer than max_len.
 */
bool lines_next(struct lines *l, size_t max_len, bool take_partial,
                struct strata_connector_record *rec, bool *too_long);

/*
 * The record-taking step both line sources' polls share: take lines from
 * l into recs[*n..max) (with key/keylen; NULL when keylen is 0), an
 * unterminated last one too when last (the input ended). Returns
 * LINES_RETURN when the poll should return 0 now (records taken, or a
 * line too long to report on the next poll; *end set once last and all
 * is out), 0 when the caller must read more, or STRATA_ETOOBIG with
 * errmsg naming name and the line's offset when nothing was taken
 * before a line longer than max_len.
 */
#define LINES_RETURN (-1)
int lines_take(struct lines *l, size_t max_len, bool last, const char *name,
               const char *key, size_t keylen,
               struct strata_connector_record *recs, size_t max, size_t *n,
               bool *end, char *errmsg);

/* ------------------------------------------------------------ writer */

/*
 * The sink side of both connectors: records appended to fd through an
 * OUT_CAP buffer, each followed by '\n' when lines. A record larger than
 * the buffer goes straight out with writev. A failed write leaves the
 * output unknown (part of it may be out): the writer then refuses every
 * later write and prepare with the same error, until closed.
 */
struct out {
	const struct strata_host *host; /* allocator and log; borrowed */
	const char *name; /* "stdout" or the path, for messages; borrowed */
	int fd;           /* the output; not owned */
	bool lines;       /* append '\n' after each record (format=lines) */
	bool seekable;    /* a file: pwritev at written; else write in order */
	bool sync;        /* fdatasync at every prepare */
	bool sync_soft;   /* ignore fdatasync EINVAL/EROFS (pipes, ttys) */
	int failed;       /* 0, or errno of the write that broke the output */
	uint8_t *buf;     /* OUT_CAP bytes, host->malloc'ed */
	size_t used;      /* bytes buffered in buf */
	uint64_t written; /* bytes out in fd (a file: its length) */
};

/*
 * Set up a writer for fd whose output already holds written bytes; name
 * is borrowed for the writer's life. 0 or STRATA_ENOMEM with errmsg.
 */
int out_init(struct out *o, const struct strata_host *host, const char *name,
             int fd, bool lines, bool seekable, uint64_t written, char *errmsg);

/* Free the buffer; what is still in it is dropped (never written). */
void out_free(struct out *o);

/* Append n records (borrowed for the call); 0 or a STRATA_E* code with
 * errmsg naming o->name and the cause. */
int out_write(struct out *o, const struct strata_connector_record *recs,
              size_t n, char *errmsg);

/* Write the buffer out (short writes and EINTR retried); 0 or a code. */
int out_flush(struct out *o, char *errmsg);

/*
 * sink_write and sink_prepare for a sink state whose FIRST member is its
 * struct out. Prepare flushes, fdatasyncs when o->sync and puts the
 * output's length (decimal) in token[size].
 */
int out_sink_write(void *state, const struct strata_connector_record *recs,
                   size_t n, char *errmsg);
int out_sink_prepare(void *state, char *token, size_t size, char *errmsg);

/* ----------------------------------------------------------- options */

/*
 * The option errors every connector reports, naming the connector and its
 * side in what ("file source", "stdio sink (stdout)"): a line that is not
 * key=value, an unknown key (valid lists the known ones), a bad value
 * (want says what it should be). Each puts the message in errmsg and
 * returns STRATA_ECONFIG.
 */
int conn_opt_not_kv(char *errmsg, const char *what,
                    const struct strata_config_item *it);
int conn_opt_unknown(char *errmsg, const char *what,
                     const struct strata_config_item *it, const char *valid);
int conn_opt_bad(char *errmsg, const char *what,
                 const struct strata_config_item *it, const char *want);

/* Copy the value of it into buf[size]; false when it does not fit or,
 * with nonempty, is empty. */
bool conn_opt_string(const struct strata_config_item *it, char *buf,
                     size_t size, bool nonempty);

/* The value of it is exactly s. */
bool conn_opt_value_is(const struct strata_config_item *it, const char *s);

/* Parse the value of it as a decimal (strata_config_value_u64: units
 * such as 64KiB allowed) in [min, max] into *out. */
bool conn_opt_u64(const struct strata_config_item *it, uint64_t min,
                  uint64_t max, uint64_t *out);

/* ----------------------------------------------------------- helpers */

/* Parse an option's bool value: true/false, yes/no, on/off, 1/0 (any
 * case). false when it is none of them. */
bool conn_bool(const char *v, size_t n, bool *out);

/* Parse a token as a decimal uint64: digits only (at least one), no sign,
 * no spaces, no overflow. false otherwise. */
bool conn_u64(const char *t, uint64_t *out);

/* Map an errno to a STRATA_E* code: ENOSPC/EDQUOT -> STRATA_ENOSPC,
 * ENOENT -> STRATA_ENOENT, EACCES/EPERM/EROFS -> STRATA_EPERM, ENOMEM ->
 * STRATA_ENOMEM, anything else -> STRATA_EIO. */
int conn_errno_code(int err);

/* Put "<what> <name>: <strerror(err)>" in errmsg; the code for err. */
int conn_sys_fail(char *errmsg, const char *what, const char *name, int err);

/* Format errmsg (STRATA_ERRMSG_SIZE bytes, truncated). */
void conn_err(char *errmsg, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/*
 * Put prefix and v in decimal ("n=42") into token[size] (a position or
 * prepare token): 0, or STRATA_ERANGE with errmsg "<op> <name>: a token
 * buffer of <size> bytes is too small".
 */
int conn_token(char *token, size_t size, const char *prefix, uint64_t v,
               const char *op, const char *name, char *errmsg);

/* Milliseconds on the monotonic clock (poll deadlines). */
uint64_t conn_now_ms(void);

#endif /* PLUGINS_CONNECTOR_LINES_H */
