/* Header-only parser for the "key=value" lines a plugin gets in open(). */
#ifndef STRATA_PLUGIN_CONFIG_H
#define STRATA_PLUGIN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "strata/error.h"

/*
 * A plugin's config is one NUL-terminated string of lines "key=value"
 * (the host flattens the YAML tier2.options mapping into it). Blank lines
 * and lines starting with '#' are skipped; spaces and tabs around keys and
 * values are trimmed; a value may contain '=' and spaces inside. Nothing
 * here allocates, so plugins can use it without linking anything.
 *
 *	const char *cur = config;
 *	struct strata_config_item it;
 *	while (strata_config_next(&cur, &it)) {
 *		if (it.value == NULL) -> malformed line it.line
 *		else if (strata_config_key_is(&it, "max_bytes")) ...
 *		else -> unknown key: STRATA_ECONFIG naming it
 *	}
 */

/* One line of a config; all pointers point into the config string. */
struct strata_config_item {
	const char *key;   /* not NUL-terminated; key_len bytes */
	size_t key_len;    /* 0 for a line like "=x" */
	const char *value; /* NULL when the line has no '=' */
	size_t value_len;  /* bytes of value, possibly 0 */
	const char *line;  /* the whole line (for messages) */
	int line_len;      /* its length, an int for "%.*s" */
};

/* Fill *item with the next non-blank, non-comment line at *cursor and
 * advance it; false at the end (*item then empty). A NULL *cursor is an
 * empty config. */
static inline bool strata_config_next(const char **cursor,
                                      struct strata_config_item *item)
{
	const char *p = *cursor;
	memset(item, 0, sizeof(*item));
	if (p == NULL) {
		return false;
	}
	for (;;) {
		if (*p == '\0') {
			*cursor = p;
			return false;
		}
		const char *end = strchr(p, '\n');
		if (end == NULL) {
			end = p + strlen(p);
		}
		const char *next = *end == '\n' ? end + 1 : end;
		const char *b = p;
		const char *e = end;
		while (b < e && (*b == ' ' || *b == '\t')) {
			b++;
		}
		while (e > b &&
		       (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
			e--;
		}
		if (b == e || *b == '#') {
			p = next;
			continue;
		}
		item->line = b;
		item->line_len = (int)(e - b > 4096 ? 4096 : e - b);
		const char *eq = memchr(b, '=', (size_t)(e - b));
		const char *ke = eq != NULL ? eq : e;
		while (ke > b && (ke[-1] == ' ' || ke[-1] == '\t')) {
			ke--;
		}
		item->key = b;
		item->key_len = (size_t)(ke - b);
		item->value = NULL;
		item->value_len = 0;
		if (eq != NULL) {
			const char *v = eq + 1;
			while (v < e && (*v == ' ' || *v == '\t')) {
				v++;
			}
			item->value = v;
			item->value_len = (size_t)(e - v);
		}
		*cursor = next;
		return true;
	}
}

/* True when the item's key is exactly key. */
static inline bool strata_config_key_is(const struct strata_config_item *item,
                                        const char *key)
{
	size_t n = strlen(key);
	return item->key_len == n && memcmp(item->key, key, n) == 0;
}

/* Longest strings strata_edit_distance compares. */
#define STRATA_EDIT_MAX 128

/* Levenshtein distance between a[0..al) and b[0..bl); SIZE_MAX when either
 * is longer than STRATA_EDIT_MAX. For "did you mean" suggestions (the host
 * uses this one too). */
static inline size_t strata_edit_distance(const char *a, size_t al,
                                          const char *b, size_t bl)
{
	size_t row[STRATA_EDIT_MAX + 1];
	if (al > STRATA_EDIT_MAX || bl > STRATA_EDIT_MAX) {
		return SIZE_MAX;
	}
	for (size_t j = 0; j <= bl; j++) {
		row[j] = j;
	}
	for (size_t i = 1; i <= al; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= bl; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best) {
				best = up + 1;
			}
			if (row[j - 1] + 1 < best) {
				best = row[j - 1] + 1;
			}
			row[j] = best;
			diag = up;
		}
	}
	return row[bl];
}

/* Whether key (kn bytes) has two or more '_'-separated words and each
 * is a word of name (n bytes): secret_key and access_key are within
 * secret_access_key, access_key within access_key_id. */
static inline bool strata_config_words_within(const char *key, size_t kn,
                                              const char *name, size_t n)
{
	size_t words = 0;
	for (size_t i = 0; i < kn;) {
		size_t w = 0;
		while (i + w < kn && key[i + w] != '_') {
			w++;
		}
		bool found = false;
		for (size_t j = 0; j < n && !found && w > 0;) {
			size_t v = 0;
			while (j + v < n && name[j + v] != '_') {
				v++;
			}
			found = v == w && memcmp(key + i, name + j, w) == 0;
			j += v + 1;
		}
		if (!found) {
			return false;
		}
		words++;
		i += w + 1;
	}
	return words >= 2;
}

/*
 * "did you mean 'KEY'? " for the key of allowed (names separated by ", ")
 * nearest to the item's key, written into buf (size bytes): at most 2
 * edits away, or holding every word of it (secret_key: secret_access_key);
 * the fewest edits wins. "" when none is that near. For messages such as
 * "unknown key 'retrys' (did you mean 'retries'?)".
 */
static inline const char *
strata_config_suggest(const struct strata_config_item *item,
                      const char *allowed, char *buf, size_t size)
{
	const char *best = NULL;
	size_t best_len = 0;
	size_t best_d = (size_t)-1;
	if (size > 0) {
		buf[0] = '\0';
	}
	for (const char *p = allowed; *p != '\0';) {
		size_t n = strcspn(p, ", ");
		size_t d = strata_edit_distance(item->key, item->key_len, p, n);
		bool near = d < 3 || strata_config_words_within(
		                             item->key, item->key_len, p, n);
		if (n > 0 && near && d < best_d) {
			best_d = d;
			best = p;
			best_len = n;
		}
		p += n;
		p += strspn(p, ", ");
	}
	if (best != NULL && size > 0) {
		snprintf(buf, size, "did you mean '%.*s'? ", (int)best_len,
		         best);
	}
	return buf;
}

/*
 * The message for an unknown key, written into buf (size bytes):
 * "unknown key 'KEY' (did you mean 'NEAR'?)" when a key of allowed is
 * near (strata_config_suggest), else "unknown key 'KEY' (allowed: LIST)".
 * Never the value: under a mistyped name it may be a secret, and the
 * message ends up in logs.
 */
static inline const char *
strata_config_unknown_key(const struct strata_config_item *item,
                          const char *allowed, char *buf, size_t size)
{
	char near[160];
	strata_config_suggest(item, allowed, near, sizeof(near));
	if (near[0] != '\0') {
		near[strlen(near) - 1] = '\0'; /* the space after '?' */
		snprintf(buf, size, "unknown key '%.*s' (%s)",
		         (int)item->key_len, item->key, near);
	} else {
		/* A long list is cut at a name, so that the message still
		 * ends within STRATA_ERRMSG_SIZE with the host's fix. */
		size_t n = strlen(allowed);
		size_t cut = n;
		while (cut > 140) {
			const char *p = allowed;
			const char *last = NULL;
			while ((p = strstr(p, ", ")) != NULL &&
			       p < allowed + 140) {
				last = p;
				p += 2;
			}
			cut = last != NULL ? (size_t)(last - allowed) : 140;
		}
		snprintf(buf, size, "unknown key '%.*s' (allowed: %.*s%s)",
		         (int)item->key_len, item->key, (int)cut, allowed,
		         cut < n ? ", ... in the plugin's docs" : "");
	}
	return buf;
}

/* True when the item's key starts with prefix (e.g. "parent."). */
static inline bool
strata_config_key_has_prefix(const struct strata_config_item *item,
                             const char *prefix)
{
	size_t n = strlen(prefix);
	return item->key_len >= n && memcmp(item->key, prefix, n) == 0;
}

/* Copy the value, NUL-terminated, into buf of size bytes. STRATA_ECONFIG
 * when there is no value or it does not fit. */
static inline int
strata_config_value_copy(const struct strata_config_item *item, char *buf,
                         size_t size)
{
	if (item->value == NULL || item->value_len >= size) {
		return STRATA_ECONFIG;
	}
	memcpy(buf, item->value, item->value_len);
	buf[item->value_len] = '\0';
	return 0;
}

/* Parse the value as a decimal unsigned integer with an optional binary
 * unit, the same as the host's size keys: K, KiB (either case for the
 * letter) = 1024, KB = 1000, likewise M, G, T; B = bytes (64m = 64MiB =
 * 67108864, 64MB = 64000000). STRATA_ECONFIG when it is empty, malformed
 * or overflows. */
static inline int strata_config_value_u64(const struct strata_config_item *item,
                                          uint64_t *out)
{
	if (item->value == NULL || item->value_len == 0) {
		return STRATA_ECONFIG;
	}
	const char *p = item->value;
	const char *end = p + item->value_len;
	uint64_t v = 0;
	if (*p < '0' || *p > '9') {
		return STRATA_ECONFIG;
	}
	while (p < end && *p >= '0' && *p <= '9') {
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (UINT64_MAX - d) / 10) {
			return STRATA_ECONFIG;
		}
		v = v * 10 + d;
		p++;
	}
	if (p < end) {
		/* Same units as the host's size keys: K, KiB = 1024; KB = 1000;
		 * likewise M, G, T; a lone B means bytes. */
		static const char units[] = "KMGT";
		const char *u = strchr(units, *p >= 'a' ? *p - 32 : *p);
		size_t rest = (size_t)(end - p);
		uint64_t mult = 1;
		if (*p == 'B' && rest == 1) {
			mult = 1;
		} else if (u == NULL || *p == '\0') {
			return STRATA_ECONFIG;
		} else {
			int power = (int)(u - units) + 1;
			uint64_t base = 1024;
			if (rest == 2 && p[1] == 'B') {
				base = 1000;
			} else if (!(rest == 1 || (rest == 3 && p[1] == 'i' &&
			                           p[2] == 'B'))) {
				return STRATA_ECONFIG;
			}
			for (int i = 0; i < power; i++) {
				mult *= base;
			}
		}
		if (v > UINT64_MAX / mult) {
			return STRATA_ECONFIG;
		}
		v *= mult;
	}
	*out = v;
	return 0;
}

/* Parse the value as a decimal signed integer (no suffix); STRATA_ECONFIG
 * when it is empty, malformed or out of int64 range. */
static inline int strata_config_value_i64(const struct strata_config_item *item,
                                          int64_t *out)
{
	if (item->value == NULL || item->value_len == 0) {
		return STRATA_ECONFIG;
	}
	const char *p = item->value;
	const char *end = p + item->value_len;
	bool neg = *p == '-';
	if (neg) {
		p++;
	}
	if (p == end) {
		return STRATA_ECONFIG;
	}
	uint64_t v = 0;
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9') {
			return STRATA_ECONFIG;
		}
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (limit - d) / 10) {
			return STRATA_ECONFIG;
		}
		v = v * 10 + d;
	}
	if (neg) {
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		*out = (int64_t)v;
	}
	return 0;
}

#endif /* STRATA_PLUGIN_CONFIG_H */
