/* A small JSON reader for WebHDFS responses (FileStatus, RemoteException). */
#ifndef PLUGINS_TIER2_HDFS_HDFS_JSON_H
#define PLUGINS_TIER2_HDFS_HDFS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Parses a whole JSON text into a tree of nodes. Bytes come from the
 * network, so the parser is strict (RFC 8259 grammar, nesting at most
 * HDFS_JSON_MAX_DEPTH, no trailing garbage) and never reads past len.
 * Nodes are allocated with the alloc/free pair given to hdfs_json_parse()
 * (the plugin passes the host allocator, so OOM tests reach it).
 */

#define HDFS_JSON_MAX_DEPTH 32

enum hdfs_json_type {
	HDFS_JSON_NULL,
	HDFS_JSON_BOOL,
	HDFS_JSON_NUMBER,
	HDFS_JSON_STRING,
	HDFS_JSON_ARRAY,
	HDFS_JSON_OBJECT,
};

struct hdfs_json {
	enum hdfs_json_type type;
	char *key;               /* member name inside an object, else NULL */
	char *str;               /* STRING: decoded UTF-8, NUL-terminated */
	bool boolean;            /* BOOL */
	bool is_int;             /* NUMBER: an integer that fits int64 */
	int64_t integer;         /* NUMBER when is_int */
	struct hdfs_json *child; /* ARRAY/OBJECT: first element or member */
	struct hdfs_json *next;  /* next sibling */
};

struct hdfs_json_alloc {
	void *(*malloc)(size_t size);
	void (*free)(void *ptr);
};

/*
 * Parse len bytes of text (need not be NUL-terminated). On success *out is
 * the root (free with hdfs_json_free). Returns 0, STRATA_EPROTO (not JSON;
 * errmsg, if not NULL, gets STRATA_ERRMSG_SIZE bytes saying where) or
 * STRATA_ENOMEM. a is borrowed and must stay valid until hdfs_json_free.
 */
int hdfs_json_parse(const char *text, size_t len,
                    const struct hdfs_json_alloc *a, struct hdfs_json **out,
                    char *errmsg);

/* Free a tree from hdfs_json_parse; NULL is a no-op. */
void hdfs_json_free(struct hdfs_json *v, const struct hdfs_json_alloc *a);

/* The member called key of an object, or NULL (also when v is not an
 * object or is NULL). */
const struct hdfs_json *hdfs_json_get(const struct hdfs_json *v,
                                      const char *key);

/* The string of a STRING node, or NULL. */
const char *hdfs_json_str(const struct hdfs_json *v);

/* True and *out set when v is an integer NUMBER. */
bool hdfs_json_int(const struct hdfs_json *v, int64_t *out);

#endif /* PLUGINS_TIER2_HDFS_HDFS_JSON_H */
