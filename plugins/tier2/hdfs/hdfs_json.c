/* A small JSON reader for WebHDFS responses (FileStatus, RemoteException). */
#include "plugins/tier2/hdfs/hdfs_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/hex.h"
#include "strata/error.h"

struct parser {
	const char *p;   /* next byte */
	const char *end; /* one past the last byte */
	const char *start;
	const struct hdfs_json_alloc *a;
	char *errmsg; /* may be NULL */
	int rc;       /* first error, 0 while fine */
};

__attribute__((format(printf, 2, 3))) static void fail(struct parser *ps,
                                                       const char *fmt, ...)
{
	if (ps->rc != 0) {
		return;
	}
	ps->rc = STRATA_EPROTO;
	if (ps->errmsg != NULL) {
		char what[128];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
		snprintf(ps->errmsg, STRATA_ERRMSG_SIZE,
		         "malformed JSON at byte %zu: %s",
		         (size_t)(ps->p - ps->start), what);
	}
}

static void oom(struct parser *ps)
{
	if (ps->rc == 0) {
		ps->rc = STRATA_ENOMEM;
		if (ps->errmsg != NULL) {
			snprintf(ps->errmsg, STRATA_ERRMSG_SIZE,
			         "out of memory parsing JSON");
		}
	}
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
	                           *ps->p == '\n' || *ps->p == '\r')) {
		ps->p++;
	}
}

static bool literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
		return false;
	}
	ps->p += n;
	return true;
}

/* Four hex digits after "\u"; -1 when malformed. */
static long hex4(struct parser *ps)
{
	if (ps->end - ps->p < 4) {
		return -1;
	}
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int d = hex_value(ps->p[i]);
		if (d < 0) {
			return -1;
		}
		v = v * 16 + d;
	}
	ps->p += 4;
	return v;
}

static size_t put_utf8(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* A string starting at the opening quote; returns an allocated copy with
 * escapes decoded, or NULL (ps->rc set). */
static char *parse_string(struct parser *ps)
{
	ps->p++; /* opening quote */
	const char *q = ps->p;
	size_t raw = 0;
	while (q < ps->end && *q != '"') {
		if (*q == '\\') {
			q++;
			raw++;
		}
		q++;
		raw++;
	}
	if (q >= ps->end) {
		fail(ps, "unterminated string");
		return NULL;
	}
	/* Decoded text is never longer than the raw text (\uXXXX is 6 bytes
	 * for at most 3, a surrogate pair 12 bytes for 4). */
	char *out = ps->a->malloc(raw + 1);
	if (out == NULL) {
		oom(ps);
		return NULL;
	}
	size_t n = 0;
	while (*ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;
		if (c < 0x20) {
			fail(ps, "control character in a string");
			goto err;
		}
		if (c != '\\') {
			out[n++] = (char)c;
			ps->p++;
			continue;
		}
		ps->p++;
		char e = *ps->p++;
		switch (e) {
		case '"':
		case '\\':
		case '/':
			out[n++] = e;
			break;
		case 'b':
			out[n++] = '\b';
			break;
		case 'f':
			out[n++] = '\f';
			break;
		case 'n':
			out[n++] = '\n';
			break;
		case 'r':
			out[n++] = '\r';
			break;
		case 't':
			out[n++] = '\t';
			break;
		case 'u': {
			long cp = hex4(ps);
			if (cp < 0) {
				fail(ps, "bad \\u escape");
				goto err;
			}
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				long lo = -1;
				if (ps->end - ps->p >= 2 && ps->p[0] == '\\' &&
				    ps->p[1] == 'u') {
					ps->p += 2;
					lo = hex4(ps);
				}
				if (lo < 0xDC00 || lo > 0xDFFF) {
					fail(ps, "unpaired surrogate");
					goto err;
				}
				cp = 0x10000 + ((cp - 0xD800) << 10) +
				     (lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				fail(ps, "unpaired surrogate");
				goto err;
			}
			if (cp == 0) {
				fail(ps, "NUL in a string");
				goto err;
			}
			n += put_utf8(out + n, (unsigned long)cp);
			break;
		}
		default:
			ps->p--;
			fail(ps, "bad escape");
			goto err;
		}
	}
	ps->p++; /* closing quote */
	out[n] = '\0';
	return out;
err:
	ps->a->free(out);
	return NULL;
}

static void parse_number(struct parser *ps, struct hdfs_json *v)
{
	const char *s = ps->p;
	bool neg = false;
	bool frac = false;
	if (ps->p < ps->end && *ps->p == '-') {
		neg = true;
		ps->p++;
	}
	if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
		fail(ps, "bad number");
		return;
	}
	uint64_t mag = 0;
	bool overflow = false;
	if (*ps->p == '0') {
		ps->p++;
	} else {
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
			uint64_t d = (uint64_t)(*ps->p - '0');
			if (mag > (UINT64_MAX - d) / 10) {
				overflow = true;
			} else {
				mag = mag * 10 + d;
			}
			ps->p++;
		}
	}
	if (ps->p < ps->end && *ps->p == '.') {
		frac = true;
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
			fail(ps, "bad number");
			return;
		}
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
			ps->p++;
		}
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		frac = true;
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) {
			ps->p++;
		}
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
			fail(ps, "bad number");
			return;
		}
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
			ps->p++;
		}
	}
	(void)s;
	v->type = HDFS_JSON_NUMBER;
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (!frac && !overflow && mag <= limit) {
		v->is_int = true;
		if (neg) {
			v->integer = mag == (uint64_t)INT64_MAX + 1
			                     ? INT64_MIN
			                     : -(int64_t)mag;
		} else {
			v->integer = (int64_t)mag;
		}
	}
}

static struct hdfs_json *parse_value(struct parser *ps, int depth);

/* Elements of an array or members of an object, after the opening
 * bracket; closer is ']' or '}'. */
static void parse_items(struct parser *ps, struct hdfs_json *v, char closer,
                        int depth)
{
	struct hdfs_json **tail = &v->child;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == closer) {
		ps->p++;
		return;
	}
	for (;;) {
		char *key = NULL;
		skip_ws(ps);
		if (closer == '}') {
			if (ps->p >= ps->end || *ps->p != '"') {
				fail(ps, "expected a member name");
				return;
			}
			key = parse_string(ps);
			if (key == NULL) {
				return;
			}
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				ps->a->free(key);
				fail(ps, "expected ':'");
				return;
			}
			ps->p++;
		}
		struct hdfs_json *item = parse_value(ps, depth + 1);
		if (item == NULL) {
			ps->a->free(key);
			return;
		}
		item->key = key;
		*tail = item;
		tail = &item->next;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == closer) {
			ps->p++;
			return;
		}
		fail(ps, "expected ',' or '%c'", closer);
		return;
	}
}

static struct hdfs_json *parse_value(struct parser *ps, int depth)
{
	if (depth > HDFS_JSON_MAX_DEPTH) {
		fail(ps, "nested deeper than %d", HDFS_JSON_MAX_DEPTH);
		return NULL;
	}
	skip_ws(ps);
	if (ps->p >= ps->end) {
		fail(ps, "unexpected end");
		return NULL;
	}
	struct hdfs_json *v = ps->a->malloc(sizeof(*v));
	if (v == NULL) {
		oom(ps);
		return NULL;
	}
	memset(v, 0, sizeof(*v));
	char c = *ps->p;
	if (c == '{' || c == '[') {
		ps->p++;
		v->type = c == '{' ? HDFS_JSON_OBJECT : HDFS_JSON_ARRAY;
		parse_items(ps, v, c == '{' ? '}' : ']', depth);
	} else if (c == '"') {
		v->type = HDFS_JSON_STRING;
		v->str = parse_string(ps);
	} else if (c == '-' || (c >= '0' && c <= '9')) {
		parse_number(ps, v);
	} else if (literal(ps, "true")) {
		v->type = HDFS_JSON_BOOL;
		v->boolean = true;
	} else if (literal(ps, "false")) {
		v->type = HDFS_JSON_BOOL;
	} else if (literal(ps, "null")) {
		v->type = HDFS_JSON_NULL;
	} else {
		fail(ps, "unexpected character 0x%02x", (unsigned char)c);
	}
	if (ps->rc != 0) {
		hdfs_json_free(v, ps->a);
		return NULL;
	}
	return v;
}

int hdfs_json_parse(const char *text, size_t len,
                    const struct hdfs_json_alloc *a, struct hdfs_json **out,
                    char *errmsg)
{
	struct parser ps = {
	        .p = text,
	        .end = text + len,
	        .start = text,
	        .a = a,
	        .errmsg = errmsg,
	};
	*out = NULL;
	struct hdfs_json *v = parse_value(&ps, 0);
	if (v != NULL) {
		skip_ws(&ps);
		if (ps.p != ps.end) {
			fail(&ps, "trailing bytes after the value");
			hdfs_json_free(v, a);
			v = NULL;
		}
	}
	if (v == NULL) {
		return ps.rc != 0 ? ps.rc : STRATA_EPROTO;
	}
	*out = v;
	return 0;
}

void hdfs_json_free(struct hdfs_json *v, const struct hdfs_json_alloc *a)
{
	while (v != NULL) {
		struct hdfs_json *next = v->next;
		hdfs_json_free(v->child, a);
		a->free(v->key);
		a->free(v->str);
		a->free(v);
		v = next;
	}
}

const struct hdfs_json *hdfs_json_get(const struct hdfs_json *v,
                                      const char *key)
{
	if (v == NULL || v->type != HDFS_JSON_OBJECT) {
		return NULL;
	}
	for (const struct hdfs_json *m = v->child; m != NULL; m = m->next) {
		if (m->key != NULL && strcmp(m->key, key) == 0) {
			return m;
		}
	}
	return NULL;
}

const char *hdfs_json_str(const struct hdfs_json *v)
{
	return v != NULL && v->type == HDFS_JSON_STRING ? v->str : NULL;
}

bool hdfs_json_int(const struct hdfs_json *v, int64_t *out)
{
	if (v == NULL || v->type != HDFS_JSON_NUMBER || !v->is_int) {
		return false;
	}
	*out = v->integer;
	return true;
}
