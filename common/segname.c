/* Qualified segment names: format, parse, container hash. */
#include "common/segname.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "strata/error.h"

__attribute__((format(printf, 2, 3))) static int bad(char *errmsg,
                                                     const char *fmt, ...)
{
	if (errmsg != NULL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(errmsg, STRATA_ERRMSG_SIZE, fmt, ap);
		va_end(ap);
	}
	return STRATA_EBADNAME;
}

uint64_t segname_fnv1a(const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t h = 14695981039346656037ull; /* FNV-1a 64 offset basis */
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ull; /* FNV-1a 64 prime */
	}
	return h;
}

int segname_format(char *buf, size_t size, const char *scope,
                   const char *stream, uint64_t segment_id)
{
	return snprintf(buf, size, "%s/%s/%" PRIu32 ".#epoch.%" PRIu32, scope,
	                stream, SEGNAME_NUMBER(segment_id),
	                SEGNAME_EPOCH(segment_id));
}

int segname_format_txn(char *buf, size_t size, const char *parent,
                       uint64_t txn_id)
{
	return snprintf(buf, size, "%s" SEGNAME_TXN_SEP "%" PRIu64, parent,
	                txn_id);
}

/* Copy the scope or stream part [p, p+len) into out after checking it. */
static int parse_part(const char *name, const char *p, size_t len,
                      const char *what, char *out, char *errmsg)
{
	if (len == 0 || len > SEGNAME_PART_MAX) {
		return bad(errmsg,
		           "segment name \"%.80s\": %s name of %zu characters; "
		           "use 1..%d characters of [A-Za-z0-9.-]",
		           name, what, len, SEGNAME_PART_MAX);
	}
	if ((len == 1 && p[0] == '.') ||
	    (len == 2 && p[0] == '.' && p[1] == '.')) {
		return bad(errmsg,
		           "segment name \"%.80s\": %s name \"%.*s\" is "
		           "reserved",
		           name, what, (int)len, p);
	}
	for (size_t i = 0; i < len; i++) {
		char c = p[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		          (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		          (c == '_' && i == 0);
		if (!ok) {
			return bad(errmsg,
			           "segment name \"%.80s\": %s name has the "
			           "invalid character 0x%02x at position %zu; "
			           "use [A-Za-z0-9.-]",
			           name, what, (unsigned)(unsigned char)c, i);
		}
	}
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

/* Parse a decimal without sign or leading zeros from *pp, at most max;
 * advance *pp past it. */
static bool parse_dec(const char **pp, uint64_t max, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;
	if (*p < '0' || *p > '9' ||
	    (p[0] == '0' && p[1] >= '0' && p[1] <= '9')) {
		return false;
	}
	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (v > (max - d) / 10) {
			return false;
		}
		v = v * 10 + d;
		p++;
	}
	*pp = p;
	*out = v;
	return true;
}

int segname_parse(const char *name, struct segname_parts *out, char *errmsg)
{
	static const char epoch_tag[] = ".#epoch.";
	static const char form[] =
	        "scope/stream/<number>.#epoch.<epoch>[#transaction.<id>]";
	if (name == NULL || name[0] == '\0') {
		return bad(errmsg, "empty segment name; use %s", form);
	}
	size_t total = strlen(name);
	if (total > SEGNAME_MAX) {
		return bad(errmsg,
		           "segment name of %zu bytes is too long; at most %d",
		           total, SEGNAME_MAX);
	}
	memset(out, 0, sizeof(*out));
	const char *s1 = strchr(name, '/');
	const char *s2 = s1 != NULL ? strchr(s1 + 1, '/') : NULL;
	if (s2 == NULL) {
		return bad(errmsg,
		           "segment name \"%.80s\" is not of the form %s", name,
		           form);
	}
	int rc = parse_part(name, name, (size_t)(s1 - name), "scope",
	                    out->scope, errmsg);
	if (rc == 0) {
		rc = parse_part(name, s1 + 1, (size_t)(s2 - s1 - 1), "stream",
		                out->stream, errmsg);
	}
	if (rc != 0) {
		return rc;
	}
	const char *p = s2 + 1;
	uint64_t number = 0;
	uint64_t epoch = 0;
	if (!parse_dec(&p, UINT32_MAX, &number) ||
	    strncmp(p, epoch_tag, sizeof(epoch_tag) - 1) != 0) {
		return bad(errmsg,
		           "segment name \"%.80s\": expected <number>.#epoch."
		           "<epoch> after the stream; use %s",
		           name, form);
	}
	p += sizeof(epoch_tag) - 1;
	if (!parse_dec(&p, UINT32_MAX, &epoch)) {
		return bad(errmsg,
		           "segment name \"%.80s\": the epoch is not a decimal "
		           "number up to %" PRIu32,
		           name, UINT32_MAX);
	}
	out->segment_id = SEGNAME_ID(epoch, number);
	if (*p == '\0') {
		return 0;
	}
	size_t sep = strlen(SEGNAME_TXN_SEP);
	if (strncmp(p, SEGNAME_TXN_SEP, sep) != 0) {
		return bad(
		        errmsg,
		        "segment name \"%.80s\" has trailing text \"%.40s\"; "
		        "use %s",
		        name, p, form);
	}
	p += sep;
	if (!parse_dec(&p, UINT64_MAX, &out->txn_id) || *p != '\0') {
		return bad(
		        errmsg,
		        "segment name \"%.80s\": the transaction id is not a "
		        "decimal number",
		        name);
	}
	out->is_txn = true;
	return 0;
}

size_t segname_parent_len(const char *name)
{
	const char *t = strstr(name, SEGNAME_TXN_SEP);
	return t != NULL ? (size_t)(t - name) : strlen(name);
}

uint32_t segname_container(const char *name, uint32_t container_count)
{
	if (container_count == 0) {
		return 0;
	}
	return (uint32_t)(segname_fnv1a(name, segname_parent_len(name)) %
	                  container_count);
}

uint32_t segname_container_of(uint32_t container_count, const char *scope,
                              const char *stream, uint64_t segment_id)
{
	/* Parts are at most 255 bytes: the name fits. */
	char buf[2 * SEGNAME_PART_MAX + 64];
	int len = segname_format(buf, sizeof(buf), scope, stream, segment_id);
	if (len < 0 || (size_t)len >= sizeof(buf)) {
		buf[sizeof(buf) - 1] = '\0';
	}
	return segname_container(buf, container_count);
}
