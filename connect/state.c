/* strata-connect's checkpoint file (see state.h). */
#include "connect/state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/crc32c.h"
#include "common/errmsg.h"
#include "strata/error.h"

#define STATE_VERSION 1
#define CRC_KEY "crc32c="

void connect_state_init(struct connect_state *st, enum connect_mode mode,
                        const char *stream)
{
	memset(st, 0, sizeof(*st));
	st->mode = mode;
	snprintf(st->stream, sizeof(st->stream), "%s",
	         stream != NULL ? stream : "");
}

void connect_state_clear(struct connect_state *st)
{
	for (size_t i = 0; i < st->n_cuts; i++) {
		strata_free(st->cuts[i]);
		st->cuts[i] = NULL;
	}
	st->n_cuts = 0;
}

int connect_state_set_cuts(struct connect_state *st, char *const *texts,
                           size_t n)
{
	if (n > CONNECT_STATE_MAX_CUTS) {
		return STRATA_EINVAL;
	}
	char *copy[CONNECT_STATE_MAX_CUTS];
	for (size_t i = 0; i < n; i++) {
		copy[i] = strata_strdup(texts[i]);
		if (copy[i] == NULL) {
			while (i-- > 0) {
				strata_free(copy[i]);
			}
			return STRATA_ENOMEM;
		}
	}
	connect_state_clear(st);
	memcpy(st->cuts, copy, n * sizeof(*copy));
	st->n_cuts = n;
	return 0;
}

bool connect_token_ok(const char *token)
{
	size_t n = strlen(token);
	if (n == 0 || n >= STRATA_CONNECTOR_TOKEN_MAX) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)token[i];
		if (ch < 0x20 || ch > 0x7e) {
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------- format */

char *connect_state_format(const struct connect_state *st)
{
	struct buf b;
	buf_init(&b, 0);
	bool ok =
	        buf_printf(&b,
	                   "# strata-connect checkpoint (docs/connect.md): "
	                   "written at every checkpoint, do not edit\n"
	                   "version=%d\nmode=%s\nstream=%s\nseq=%" PRIu64 "\n",
	                   STATE_VERSION,
	                   st->mode == CONNECT_IMPORT ? "import" : "export",
	                   st->stream, st->seq) == 0;
	if (st->mode == CONNECT_IMPORT) {
		if (ok && st->have_committed) {
			ok = buf_printf(&b, "committed=%s\n", st->committed) ==
			     0;
		}
		if (ok && st->txn != 0) {
			ok = buf_printf(&b, "txn=%" PRIu64 "\nprepared=%s\n",
			                st->txn, st->prepared) == 0;
		}
	} else {
		ok = ok && buf_printf(&b, "group=%s\n", st->group) == 0;
		if (ok && st->checkpoint[0] != '\0') {
			ok = buf_printf(&b, "checkpoint=%s\n",
			                st->checkpoint) == 0;
		}
		if (ok && st->sink[0] != '\0') {
			ok = buf_printf(&b, "sink=%s\n", st->sink) == 0;
		}
		for (size_t i = 0; ok && i < st->n_cuts; i++) {
			ok = buf_printf(&b, "cut=%s\n", st->cuts[i]) == 0;
		}
	}
	if (ok) {
		uint32_t crc = crc32c_extend(0, b.data, b.len);
		ok = buf_printf(&b, CRC_KEY "%08" PRIx32 "\n", crc) == 0;
	}
	if (!ok) {
		buf_close(&b);
		return NULL;
	}
	return (char *)buf_detach(&b, NULL);
}

/* -------------------------------------------------------------- parse */

/* Decimal u64 of s[0..n), strictly; false on anything else. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 20) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return false;
		}
		uint64_t d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10) {
			return false;
		}
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* Copy value v[0..n) into dst[size] as a token (or a name when !token);
 * false when it does not fit or has bytes a token may not. */
static bool copy_value(char *dst, size_t size, const char *v, size_t n)
{
	if (n == 0 || n >= size || memchr(v, '\0', n) != NULL) {
		return false;
	}
	memcpy(dst, v, n);
	dst[n] = '\0';
	return connect_token_ok(dst);
}

/* line 0: the file as a whole (its size, its checksum). */
static int corrupt(char *errmsg, const char *origin, int line, const char *why)
{
	char where[32] = "";
	if (line > 0) {
		snprintf(where, sizeof(where), "line %d: ", line);
	}
	errmsg_set(errmsg,
	           "checkpoint file %.200s is corrupt (%s%s): restore it from "
	           "a backup, or remove it to start the pipeline afresh "
	           "(docs/connect.md, \"Checkpoint file\")",
	           origin, where, why);
	return STRATA_ECORRUPT;
}

/* The bits of keys seen, to refuse duplicates and find missing ones. */
enum {
	SEEN_VERSION = 1 << 0,
	SEEN_MODE = 1 << 1,
	SEEN_STREAM = 1 << 2,
	SEEN_SEQ = 1 << 3,
	SEEN_COMMITTED = 1 << 4,
	SEEN_TXN = 1 << 5,
	SEEN_PREPARED = 1 << 6,
	SEEN_GROUP = 1 << 7,
	SEEN_CHECKPOINT = 1 << 8,
	SEEN_SINK = 1 << 9,
};

/* Apply one "key=value" line; NULL or why it is wrong. */
static const char *apply(struct connect_state *st, unsigned *seen,
                         const char *k, size_t kn, const char *v, size_t vn,
                         int *rc)
{
	static const struct {
		const char *key;
		unsigned bit;
	} keys[] = {
	        {"version", SEEN_VERSION},
	        {"mode", SEEN_MODE},
	        {"stream", SEEN_STREAM},
	        {"seq", SEEN_SEQ},
	        {"committed", SEEN_COMMITTED},
	        {"txn", SEEN_TXN},
	        {"prepared", SEEN_PREPARED},
	        {"group", SEEN_GROUP},
	        {"checkpoint", SEEN_CHECKPOINT},
	        {"sink", SEEN_SINK},
	        {"cut", 0},
	};
	size_t i = 0;
	while (i < sizeof(keys) / sizeof(keys[0]) &&
	       !(strlen(keys[i].key) == kn &&
	         memcmp(keys[i].key, k, kn) == 0)) {
		i++;
	}
	if (i == sizeof(keys) / sizeof(keys[0])) {
		return "unknown key";
	}
	if ((*seen & keys[i].bit) != 0) {
		return "key given twice";
	}
	*seen |= keys[i].bit;
	uint64_t u = 0;
	switch (keys[i].bit) {
	case SEEN_VERSION:
		return parse_u64(v, vn, &u) && u == STATE_VERSION
		               ? NULL
		               : "version is not 1 (written by a newer "
		                 "strata-connect?)";
	case SEEN_MODE:
		if (vn == 6 && memcmp(v, "import", 6) == 0) {
			st->mode = CONNECT_IMPORT;
		} else if (vn == 6 && memcmp(v, "export", 6) == 0) {
			st->mode = CONNECT_EXPORT;
		} else {
			return "mode is neither import nor export";
		}
		return NULL;
	case SEEN_STREAM:
		return copy_value(st->stream, sizeof(st->stream), v, vn)
		               ? NULL
		               : "bad stream";
	case SEEN_SEQ:
		return parse_u64(v, vn, &st->seq) ? NULL : "bad seq";
	case SEEN_COMMITTED:
		st->have_committed = true;
		return copy_value(st->committed, sizeof(st->committed), v, vn)
		               ? NULL
		               : "bad committed token";
	case SEEN_TXN:
		return parse_u64(v, vn, &st->txn) && st->txn != 0 ? NULL
		                                                  : "bad txn";
	case SEEN_PREPARED:
		return copy_value(st->prepared, sizeof(st->prepared), v, vn)
		               ? NULL
		               : "bad prepared token";
	case SEEN_GROUP:
		return copy_value(st->group, sizeof(st->group), v, vn)
		               ? NULL
		               : "bad group";
	case SEEN_CHECKPOINT:
		return copy_value(st->checkpoint, sizeof(st->checkpoint), v, vn)
		               ? NULL
		               : "bad checkpoint name";
	case SEEN_SINK:
		return copy_value(st->sink, sizeof(st->sink), v, vn)
		               ? NULL
		               : "bad sink token";
	default: /* cut */
		if (st->n_cuts == CONNECT_STATE_MAX_CUTS) {
			return "too many cuts";
		}
		if (vn == 0 || vn > 65536 || memchr(v, '\0', vn) != NULL) {
			return "bad cut";
		}
		char *c = strata_malloc(vn + 1);
		if (c == NULL) {
			*rc = STRATA_ENOMEM;
			return "out of memory";
		}
		memcpy(c, v, vn);
		c[vn] = '\0';
		st->cuts[st->n_cuts++] = c;
		return NULL;
	}
}

int connect_state_parse(const char *origin, const char *text, size_t len,
                        struct connect_state *st, char *errmsg)
{
	connect_state_init(st, CONNECT_IMPORT, "");
	if (len == 0 || len > CONNECT_STATE_FILE_MAX || text[len - 1] != '\n') {
		return corrupt(errmsg, origin, 0,
		               len == 0 ? "empty" : "not whole");
	}
	/* The CRC line is the last one and covers everything before it. */
	const char *last = text + len - 1;
	while (last > text && last[-1] != '\n') {
		last--;
	}
	size_t ck = strlen(CRC_KEY);
	uint64_t crc = 0;
	bool crc_ok = (size_t)(text + len - last) == ck + 9 &&
	              memcmp(last, CRC_KEY, ck) == 0;
	for (size_t i = 0; crc_ok && i < 8; i++) {
		char ch = last[ck + i];
		int d = ch >= '0' && ch <= '9'   ? ch - '0'
		        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
		                                 : -1;
		crc_ok = d >= 0;
		crc = crc * 16 + (uint64_t)(d < 0 ? 0 : d);
	}
	if (!crc_ok) {
		return corrupt(errmsg, origin, 0, "no crc32c line at the end");
	}
	size_t body = (size_t)(last - text);
	if (crc32c_extend(0, text, body) != (uint32_t)crc) {
		return corrupt(errmsg, origin, 0, "crc32c does not match");
	}
	unsigned seen = 0;
	int line = 0;
	int rc = 0;
	for (const char *p = text; p < last;) {
		const char *nl = memchr(p, '\n', (size_t)(last - p));
		line++;
		const char *eq = memchr(p, '=', (size_t)(nl - p));
		const char *why = NULL;
		if (*p == '#') {
			why = NULL;
		} else if (eq == NULL) {
			why = "not key=value";
		} else {
			why = apply(st, &seen, p, (size_t)(eq - p), eq + 1,
			            (size_t)(nl - eq - 1), &rc);
		}
		if (why != NULL) {
			connect_state_clear(st);
			return rc != 0 ? rc
			               : corrupt(errmsg, origin, line, why);
		}
		p = nl + 1;
	}
	const char *why = NULL;
	unsigned need = SEEN_VERSION | SEEN_MODE | SEEN_STREAM | SEEN_SEQ;
	unsigned import_only = SEEN_COMMITTED | SEEN_TXN | SEEN_PREPARED;
	unsigned export_only = SEEN_GROUP | SEEN_CHECKPOINT | SEEN_SINK;
	if ((seen & need) != need) {
		why = "version, mode, stream or seq missing";
	} else if (st->mode == CONNECT_IMPORT &&
	           ((seen & export_only) != 0 || st->n_cuts != 0)) {
		why = "export keys in an import checkpoint";
	} else if (st->mode == CONNECT_EXPORT && (seen & import_only) != 0) {
		why = "import keys in an export checkpoint";
	} else if (((seen & SEEN_TXN) != 0) != ((seen & SEEN_PREPARED) != 0)) {
		why = "txn without prepared, or prepared without txn";
	} else if ((seen & SEEN_CHECKPOINT) != 0 && (seen & SEEN_SINK) == 0) {
		why = "checkpoint without sink";
	} else if (st->mode == CONNECT_EXPORT && (seen & SEEN_GROUP) == 0) {
		why = "group missing";
	} else if ((seen & SEEN_CHECKPOINT) != 0 && st->n_cuts == 0) {
		why = "checkpoint without its cuts";
	}
	if (why != NULL) {
		connect_state_clear(st);
		return corrupt(errmsg, origin, line, why);
	}
	return 0;
}

/* ------------------------------------------------------------ file I/O */

static int io_fail(char *errmsg, const char *what, const char *path, int err)
{
	errmsg_set(errmsg, "%s checkpoint file %.200s: %s", what, path,
	           strerror(err));
	return err == ENOSPC ? STRATA_ENOSPC : STRATA_EIO;
}

int connect_state_load(const char *path, struct connect_state *st, bool *exists,
                       char *errmsg)
{
	connect_state_init(st, CONNECT_IMPORT, "");
	*exists = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return errno == ENOENT ? 0
		                       : io_fail(errmsg, "open", path, errno);
	}
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		int e = errno;
		close(fd);
		return io_fail(errmsg, "stat", path, e);
	}
	if (sb.st_size > (off_t)CONNECT_STATE_FILE_MAX) {
		close(fd);
		return corrupt(errmsg, path, 0, "larger than 1 MiB");
	}
	size_t len = (size_t)sb.st_size;
	char *text = strata_malloc(len + 1);
	if (text == NULL) {
		close(fd);
		return STRATA_ENOMEM;
	}
	size_t got = 0;
	while (got < len) {
		ssize_t r = read(fd, text + got, len - got);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			strata_free(text);
			close(fd);
			return io_fail(errmsg, "read", path, e);
		}
		got += (size_t)r;
	}
	close(fd);
	text[len] = '\0';
	int rc = connect_state_parse(path, text, len, st, errmsg);
	strata_free(text);
	*exists = rc == 0;
	return rc;
}

int connect_state_save(const char *path, const struct connect_state *st,
                       char *errmsg)
{
	char *text = connect_state_format(st);
	if (text == NULL) {
		return STRATA_ENOMEM;
	}
	size_t plen = strlen(path);
	char *tmp = strata_malloc(plen + 8);
	if (tmp == NULL) {
		strata_free(text);
		return STRATA_ENOMEM;
	}
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp", 5);
	int rc = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = io_fail(errmsg, "create", tmp, errno);
		goto out;
	}
	size_t len = strlen(text), off = 0;
	while (rc == 0 && off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w < 0) {
			rc = io_fail(errmsg, "write", tmp, errno);
		} else {
			off += (size_t)w;
		}
	}
	if (rc == 0 && fdatasync(fd) != 0) {
		rc = io_fail(errmsg, "sync", tmp, errno);
	}
	if (close(fd) != 0 && rc == 0) {
		rc = io_fail(errmsg, "close", tmp, errno);
	}
	if (rc == 0 && rename(tmp, path) != 0) {
		rc = io_fail(errmsg, "rename to", path, errno);
	}
	if (rc != 0) {
		unlink(tmp);
		goto out;
	}
	/* The rename is durable once the directory is. */
	char *dir = strata_strdup(path);
	char *slash = dir != NULL ? strrchr(dir, '/') : NULL;
	const char *d = slash == NULL ? "." : dir;
	if (slash == dir) {
		d = "/";
	} else if (slash != NULL) {
		*slash = '\0';
	}
	int dfd =
	        dir != NULL ? open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (dfd < 0 || fsync(dfd) != 0) {
		rc = io_fail(errmsg, "sync the directory of", path,
		             dir == NULL ? ENOMEM : errno);
	}
	if (dfd >= 0) {
		close(dfd);
	}
	strata_free(dir);
out:
	strata_free(tmp);
	strata_free(text);
	return rc;
}
