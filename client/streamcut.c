/* Stream cuts: text form, parser, copies. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "common/alloc.h"

void strata_stream_cut_clear(struct strata_stream_cut *cut)
{
	if (cut == NULL) {
		return;
	}
	strata_free(cut->positions);
	cut->positions = NULL;
	cut->n = 0;
}

int strata_stream_cut_copy(struct strata_stream_cut *dst,
                           const struct strata_stream_cut *src)
{
	struct strata_segment_position *p = NULL;
	if (src->n > 0) {
		p = strata_calloc(src->n, sizeof(*p));
		if (p == NULL) {
			return STRATA_ENOMEM;
		}
		memcpy(p, src->positions, src->n * sizeof(*p));
	}
	strata_free(dst->positions);
	memcpy(dst->scope, src->scope, sizeof(dst->scope));
	memcpy(dst->stream, src->stream, sizeof(dst->stream));
	dst->scope[STRATA_NAME_MAX] = '\0';
	dst->stream[STRATA_NAME_MAX] = '\0';
	dst->n = src->n;
	dst->positions = p;
	return 0;
}

static int pos_cmp(const void *a, const void *b)
{
	const struct strata_segment_position *x = a;
	const struct strata_segment_position *y = b;
	return x->segment_id < y->segment_id   ? -1
	       : x->segment_id > y->segment_id ? 1
	                                       : 0;
}

size_t strata_stream_cut_format(const struct strata_stream_cut *cut, char *buf,
                                size_t size)
{
	/* Sorted view without touching the caller's cut. */
	struct strata_segment_position small[16];
	struct strata_segment_position *sorted = small;
	if (cut->n > 16) {
		sorted = strata_calloc(cut->n, sizeof(*sorted));
	}
	if (sorted != NULL && cut->n > 0) {
		memcpy(sorted, cut->positions, cut->n * sizeof(*sorted));
		qsort(sorted, cut->n, sizeof(*sorted), pos_cmp);
	}
	const struct strata_segment_position *p =
	        sorted != NULL ? sorted : cut->positions;
	size_t need = 0;
	char tmp[64];
	int n = snprintf(buf, size, "%s/%s:", cut->scope, cut->stream);
	need = n > 0 ? (size_t)n : 0;
	for (size_t i = 0; i < cut->n; i++) {
		uint64_t id = p[i].segment_id;
		n = snprintf(tmp, sizeof(tmp),
		             "%s%" PRIu32 ".%" PRIu32 "=%" PRId64,
		             i > 0 ? "," : "", (uint32_t)(id & 0xffffffffu),
		             (uint32_t)(id >> 32), p[i].offset);
		size_t l = n > 0 ? (size_t)n : 0;
		if (need < size) {
			size_t room = size - need;
			memcpy(buf + need, tmp, l < room ? l : room);
		}
		need += l;
	}
	if (size > 0) {
		buf[need < size ? need : size - 1] = '\0';
	}
	if (sorted != small) {
		strata_free(sorted);
	}
	return need;
}

/* Parse a decimal uint64 at *s (no sign, no leading zeros unless "0"),
 * at most max; advances *s. */
static bool parse_dec(const char **s, uint64_t max, uint64_t *out)
{
	const char *p = *s;
	if (*p < '0' || *p > '9') {
		return false;
	}
	if (*p == '0' && p[1] >= '0' && p[1] <= '9') {
		return false;
	}
	uint64_t v = 0;
	while (*p >= '0' && *p <= '9') {
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (max - d) / 10) {
			return false;
		}
		v = v * 10 + d;
		p++;
	}
	*s = p;
	*out = v;
	return true;
}

#define CUT_FORMAT "expected scope/stream:NUMBER.EPOCH=OFFSET[,...]"

int strata_stream_cut_parse(const char *text, struct strata_stream_cut *out,
                            char *errmsg)
{
	char msg[STRATA_ERRMSG_SIZE];
	strata_stream_cut_clear(out);
	out->scope[0] = '\0';
	out->stream[0] = '\0';
	if (text == NULL) {
		client_err(errmsg, "stream cut is NULL; " CUT_FORMAT);
		return STRATA_EINVAL;
	}
	const char *slash = strchr(text, '/');
	const char *colon = strchr(text, ':');
	if (slash == NULL || colon == NULL || colon < slash) {
		client_err(errmsg,
		           "stream cut \"%.80s\": no \"scope/stream:\" "
		           "prefix; " CUT_FORMAT,
		           text);
		return STRATA_EINVAL;
	}
	size_t sl = (size_t)(slash - text);
	size_t tl = (size_t)(colon - slash - 1);
	if (sl == 0 || sl > STRATA_NAME_MAX || tl == 0 ||
	    tl > STRATA_NAME_MAX) {
		client_err(errmsg,
		           "stream cut \"%.80s\": scope and stream must be "
		           "1-255 characters; " CUT_FORMAT,
		           text);
		return STRATA_EINVAL;
	}
	memcpy(out->scope, text, sl);
	out->scope[sl] = '\0';
	memcpy(out->stream, slash + 1, tl);
	out->stream[tl] = '\0';
	if (client_check_name(out->scope, "scope", msg) != 0 ||
	    client_check_name(out->stream, "stream", msg) != 0) {
		client_err(errmsg, "stream cut \"%.60s\": %s", text, msg);
		out->scope[0] = out->stream[0] = '\0';
		return STRATA_EINVAL;
	}
	const char *p = colon + 1;
	size_t cap = 0;
	struct strata_segment_position *pos = NULL;
	size_t n = 0;
	int rc = 0;
	while (*p != '\0') {
		const char *start = p;
		uint64_t num;
		uint64_t epoch;
		uint64_t off;
		const char *what = NULL;
		if (n > 0) {
			if (*p != ',') {
				what = "expected ',' between positions";
				goto bad;
			}
			p++;
			start = p;
		}
		if (!parse_dec(&p, UINT32_MAX, &num)) {
			what = "segment number is not a decimal uint32";
			goto bad;
		}
		if (*p++ != '.') {
			what = "expected '.' after the segment number";
			p--;
			goto bad;
		}
		if (!parse_dec(&p, UINT32_MAX, &epoch)) {
			what = "epoch is not a decimal uint32";
			goto bad;
		}
		if (*p++ != '=') {
			what = "expected '=' before the offset";
			p--;
			goto bad;
		}
		if (!parse_dec(&p, INT64_MAX, &off)) {
			what = "offset is not a decimal integer in [0, 2^63)";
			goto bad;
		}
		if (*p != '\0' && *p != ',') {
			what = "unexpected character after the offset";
			goto bad;
		}
		uint64_t id = (epoch << 32) | num;
		for (size_t i = 0; i < n; i++) {
			if (pos[i].segment_id == id) {
				what = "segment listed twice";
				goto bad;
			}
		}
		if (n == STRATA_CUT_MAX_POSITIONS) {
			what = "too many positions (limit 4096)";
			goto bad;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct strata_segment_position *np =
			        strata_realloc(pos, ncap * sizeof(*np));
			if (np == NULL) {
				rc = STRATA_ENOMEM;
				client_err(errmsg, "out of memory parsing a "
				                   "stream cut");
				goto err;
			}
			pos = np;
			cap = ncap;
		}
		pos[n].segment_id = id;
		pos[n].offset = (int64_t)off;
		n++;
		continue;
	bad:
		client_err(errmsg,
		           "stream cut \"%.60s%s\": position %zu (\"%.24s\"): "
		           "%s; " CUT_FORMAT,
		           text, strlen(text) > 60 ? "..." : "", n + 1, start,
		           what);
		rc = STRATA_EINVAL;
		goto err;
	}
	if (n > 0) {
		qsort(pos, n, sizeof(*pos), pos_cmp);
	}
	out->positions = pos;
	out->n = n;
	return 0;
err:
	strata_free(pos);
	out->scope[0] = '\0';
	out->stream[0] = '\0';
	return rc;
}
